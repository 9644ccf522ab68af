/* norm.cu - row-wise CUDA kernels over the last axis: LayerNormalization, Softmax, the
 * ReduceMean / ReduceSum of rows and InstanceNormalization (a row per image and channel). One
 * block per row (LayerNorm rows of <= 1024 values: one warp per row, the row read once into
 * registers, 16-byte accesses where the row length and alignment allow), f32 math whatever the
 * storage dtype; the norms take the variance of the centred values (a second pass over the row,
 * not E[x^2] - mean^2, which cancels badly), Softmax subtracts the row maximum before exp. */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_types.cuh"

namespace {

int threads_for(size_t cols) {
    size_t t = (cols + 31) / 32 * 32;
    return t >= 256 ? 256 : (int)t;
}

/* The mean and 1 / sqrt(variance + eps) of the cols values at x + base, read by the whole block
 * in two passes (the variance of the centred values). */
template <typename T, typename I>
__device__ __forceinline__ void block_row_stats(const T *x, size_t base, I cols, float eps, float *mean, float *rstd) {
    float s = 0.0f;
    for (I c = threadIdx.x; c < cols; c += blockDim.x) s += mixrt_cu_load(x, base + c);
    const float m = mixrt_cu_block_reduce<false>(s) / (float)cols;
    float v = 0.0f;
    for (I c = threadIdx.x; c < cols; c += blockDim.x) {
        float d = mixrt_cu_load(x, base + c) - m;
        v += d * d;
    }
    *mean = m;
    *rstd = 1.0f / sqrtf(mixrt_cu_block_reduce<false>(v) / (float)cols + eps);
}

template <typename T>
__global__ void layer_norm_kernel(const T *x, const T *scale, const T *bias, T *y, int cols, float eps) {
    size_t base = (size_t)blockIdx.x * (size_t)cols;
    float mean, rstd;
    block_row_stats(x, base, cols, eps, &mean, &rstd);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float o = (mixrt_cu_load(x, base + c) - mean) * rstd * mixrt_cu_load(scale, c);
        if (bias) o += mixrt_cu_load(bias, c);
        mixrt_cu_store(y, base + c, o);
    }
}

/* One warp per row, cols <= 32 * 32: lane l holds columns l, l + 32, ...; the unrolled
 * loops keep the row in registers, so x is read once (the block kernel reads it 3 times). */
template <typename T>
__global__ void layer_norm_warp_kernel(const T *x, const T *scale, const T *bias, T *y, size_t rows, int cols,
                                       float eps) {
    size_t row = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= rows) return;
    size_t base = row * (size_t)cols;
    float v[32];
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int c = lane + 32 * i;
        v[i] = c < cols ? mixrt_cu_load(x, base + c) : 0.0f;
        s += v[i];
    }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    float mean = s / (float)cols, q = 0.0f;
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int c = lane + 32 * i;
        float d = c < cols ? v[i] - mean : 0.0f;
        q += d * d;
    }
    for (int o = 16; o > 0; o >>= 1) q += __shfl_xor_sync(0xffffffffu, q, o);
    float rstd = 1.0f / sqrtf(q / (float)cols + eps);
#pragma unroll
    for (int i = 0; i < 32; i++) {
        int c = lane + 32 * i;
        if (c < cols) {
            float o = (v[i] - mean) * rstd * mixrt_cu_load(scale, c);
            if (bias) o += mixrt_cu_load(bias, c);
            mixrt_cu_store(y, base + c, o);
        }
    }
}

/* The same with 16-byte accesses (rows of cols % (16 / sizeof(T)) == 0, 16-byte aligned
 * buffers): lane l holds vectors l, l + 32, ..., VPL of them, so a 768-wide bf16 row is 3
 * loads per lane instead of 24 (the 2-byte kernel above ran 13-17 us per BERT LayerNorm,
 * ~4x its bytes' time, notes/cuda.md call 14). Rows per block: blockDim.x / 32. */
template <typename T> struct __align__(16) ln_vec {
    static const int N = 16 / sizeof(T);
    T v[N];
};

template <typename T, int VPL>
__global__ void layer_norm_vec_kernel(const T *x, const T *scale, const T *bias, T *y, size_t rows, int cols,
                                      float eps) {
    const int N = ln_vec<T>::N;
    size_t row = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x & 31, nv = cols / N;
    if (row >= rows) return;
    /* The row stays as loaded (VPL 16-byte vectors, widened at each use): 55 registers instead
     * of 89 at VPL 3 bf16, so GPT-2's 4096 rows are resident at once (4.73 against 5.52 us per
     * LayerNorm in a graph after a producer, notes/cuda.md session 43). */
    ln_vec<T> t[VPL];
    const ln_vec<T> *xr = (const ln_vec<T> *)(x + row * (size_t)cols);
#pragma unroll
    for (int i = 0; i < VPL; i++)
        if (lane + 32 * i < nv) t[i] = xr[lane + 32 * i];
    float s = 0.0f;
#pragma unroll
    for (int i = 0; i < VPL; i++)
        if (lane + 32 * i < nv) {
#pragma unroll
            for (int j = 0; j < N; j++) s += mixrt_cu_load(t[i].v, j);
        }
    for (int o = 16; o > 0; o >>= 1) s += __shfl_xor_sync(0xffffffffu, s, o);
    float mean = s / (float)cols, q = 0.0f;
#pragma unroll
    for (int i = 0; i < VPL; i++)
        if (lane + 32 * i < nv) {
#pragma unroll
            for (int j = 0; j < N; j++) {
                float d = mixrt_cu_load(t[i].v, j) - mean;
                q += d * d;
            }
        }
    for (int o = 16; o > 0; o >>= 1) q += __shfl_xor_sync(0xffffffffu, q, o);
    float rstd = 1.0f / sqrtf(q / (float)cols + eps);
    ln_vec<T> *yr = (ln_vec<T> *)(y + row * (size_t)cols);
#pragma unroll
    for (int i = 0; i < VPL; i++) {
        int c = lane + 32 * i;
        if (c < nv) {
            ln_vec<T> g = ((const ln_vec<T> *)scale)[c], b, o;
            if (bias) b = ((const ln_vec<T> *)bias)[c];
#pragma unroll
            for (int j = 0; j < N; j++) {
                float r = (mixrt_cu_load(t[i].v, j) - mean) * rstd * mixrt_cu_load(g.v, j);
                if (bias) r += mixrt_cu_load(b.v, j);
                mixrt_cu_store(o.v, j, r);
            }
            yr[c] = o;
        }
    }
}

template <typename T, int VPL>
void layer_norm_vec_launch(cudaStream_t s, const T *x, const T *scale, const T *bias, T *y, size_t rows, int cols,
                           float eps) {
    /* Small row counts (batch 1): 2 rows per block so more SMs take part. */
    int wpb = rows >= 2048 ? 4 : 2;
    unsigned grid = (unsigned)((rows + wpb - 1) / wpb);
    layer_norm_vec_kernel<T, VPL><<<grid, 32 * wpb, 0, s>>>(x, scale, bias, y, rows, cols, eps);
}

template <typename T>
void layer_norm_launch(cudaStream_t s, const T *x, const T *scale, const T *bias, T *y, size_t rows, size_t cols,
                       float eps) {
    const size_t N = 16 / sizeof(T);
    bool vec_ok = cols % N == 0 && cols <= 32 * 8 * N &&
                  (((uintptr_t)x | (uintptr_t)scale | (uintptr_t)bias | (uintptr_t)y) & 15u) == 0;
    if (vec_ok) {
        int vpl = (int)((cols / N + 31) / 32), c = (int)cols;
        switch (vpl) {
        case 1: layer_norm_vec_launch<T, 1>(s, x, scale, bias, y, rows, c, eps); return;
        case 2: layer_norm_vec_launch<T, 2>(s, x, scale, bias, y, rows, c, eps); return;
        case 3: layer_norm_vec_launch<T, 3>(s, x, scale, bias, y, rows, c, eps); return;
        case 4: layer_norm_vec_launch<T, 4>(s, x, scale, bias, y, rows, c, eps); return;
        case 5: case 6: layer_norm_vec_launch<T, 6>(s, x, scale, bias, y, rows, c, eps); return;
        default: layer_norm_vec_launch<T, 8>(s, x, scale, bias, y, rows, c, eps); return;
        }
    }
    if (cols <= 1024) {
        int wpb = rows >= 1024 ? 4 : 1; /* small row counts: more, smaller blocks */
        unsigned grid = (unsigned)((rows + wpb - 1) / wpb);
        layer_norm_warp_kernel<<<grid, 32 * wpb, 0, s>>>(x, scale, bias, y, rows, (int)cols, eps);
    } else {
        layer_norm_kernel<<<(unsigned)rows, threads_for(cols), 0, s>>>(x, scale, bias, y, (int)cols, eps);
    }
}

/* ReduceMean / ReduceSum over the last cols values of each row: one block per row, f32 sums. */
template <typename T> __global__ void reduce_rows_kernel(const T *x, T *y, size_t cols, bool mean) {
    size_t base = (size_t)blockIdx.x * cols;
    float s = 0.0f;
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x) s += mixrt_cu_load(x, base + c);
    s = mixrt_cu_block_reduce<false>(s);
    if (threadIdx.x == 0) mixrt_cu_store(y, blockIdx.x, mean ? s / (float)cols : s);
}

/* InstanceNormalization of a row (one image's channel, its spatial values): block_row_stats,
 * then the channel's scale and bias (row % channels). */
template <typename T>
__global__ void instance_norm_kernel(const T *x, const T *scale, const T *bias, T *y, size_t cols, size_t channels,
                                     float eps) {
    size_t base = (size_t)blockIdx.x * cols, ch = (size_t)blockIdx.x % channels;
    float mean, rstd;
    block_row_stats(x, base, cols, eps, &mean, &rstd);
    float g = mixrt_cu_load(scale, ch) * rstd, b = mixrt_cu_load(bias, ch);
    for (size_t c = threadIdx.x; c < cols; c += blockDim.x)
        mixrt_cu_store(y, base + c, (mixrt_cu_load(x, base + c) - mean) * g + b);
}

template <typename T> __global__ void softmax_kernel(const T *x, T *y, int cols) {
    size_t base = (size_t)blockIdx.x * (size_t)cols;
    float m = -INFINITY;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) m = fmaxf(m, mixrt_cu_load(x, base + c));
    m = mixrt_cu_block_reduce<true>(m);
    float s = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += expf(mixrt_cu_load(x, base + c) - m);
    float inv = 1.0f / mixrt_cu_block_reduce<false>(s);
    for (int c = threadIdx.x; c < cols; c += blockDim.x)
        mixrt_cu_store(y, base + c, expf(mixrt_cu_load(x, base + c) - m) * inv);
}

} // namespace

extern "C" cudaError_t mixrt_cuda_launch_layer_norm(cudaStream_t s, int elem, const void *x, const void *scale,
                                                    const void *bias, void *y, size_t rows, size_t cols, float eps) {
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32:
        layer_norm_launch(s, (const float *)x, (const float *)scale, (const float *)bias, (float *)y, rows, cols, eps);
        break;
    case MIXRT_CUDA_ELEM_BF16:
        layer_norm_launch(s, (const mixrt_cu_bf16 *)x, (const mixrt_cu_bf16 *)scale, (const mixrt_cu_bf16 *)bias,
                          (mixrt_cu_bf16 *)y, rows, cols, eps);
        break;
    default:
        layer_norm_launch(s, (const __half *)x, (const __half *)scale, (const __half *)bias, (__half *)y, rows, cols,
                          eps);
        break;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t mixrt_cuda_launch_softmax(cudaStream_t s, int elem, const void *x, void *y, size_t rows,
                                                 size_t cols) {
    int t = threads_for(cols);
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32: softmax_kernel<<<(unsigned)rows, t, 0, s>>>((const float *)x, (float *)y, (int)cols); break;
    case MIXRT_CUDA_ELEM_BF16:
        softmax_kernel<<<(unsigned)rows, t, 0, s>>>((const mixrt_cu_bf16 *)x, (mixrt_cu_bf16 *)y, (int)cols);
        break;
    default: softmax_kernel<<<(unsigned)rows, t, 0, s>>>((const __half *)x, (__half *)y, (int)cols); break;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t mixrt_cuda_launch_reduce_rows(cudaStream_t s, int elem, const void *x, void *y, size_t rows,
                                                     size_t cols, int mean) {
    int t = threads_for(cols);
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32: reduce_rows_kernel<<<(unsigned)rows, t, 0, s>>>((const float *)x, (float *)y, cols, mean); break;
    case MIXRT_CUDA_ELEM_BF16:
        reduce_rows_kernel<<<(unsigned)rows, t, 0, s>>>((const mixrt_cu_bf16 *)x, (mixrt_cu_bf16 *)y, cols, mean);
        break;
    default: reduce_rows_kernel<<<(unsigned)rows, t, 0, s>>>((const __half *)x, (__half *)y, cols, mean); break;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t mixrt_cuda_launch_instance_norm(cudaStream_t s, int elem, const void *x, const void *scale,
                                                       const void *bias, void *y, size_t rows, size_t cols,
                                                       size_t channels, float eps) {
    int t = threads_for(cols);
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32:
        instance_norm_kernel<<<(unsigned)rows, t, 0, s>>>((const float *)x, (const float *)scale, (const float *)bias,
                                                          (float *)y, cols, channels, eps);
        break;
    case MIXRT_CUDA_ELEM_BF16:
        instance_norm_kernel<<<(unsigned)rows, t, 0, s>>>((const mixrt_cu_bf16 *)x, (const mixrt_cu_bf16 *)scale,
                                                          (const mixrt_cu_bf16 *)bias, (mixrt_cu_bf16 *)y, cols,
                                                          channels, eps);
        break;
    default:
        instance_norm_kernel<<<(unsigned)rows, t, 0, s>>>((const __half *)x, (const __half *)scale,
                                                          (const __half *)bias, (__half *)y, cols, channels, eps);
        break;
    }
    return cudaGetLastError();
}
