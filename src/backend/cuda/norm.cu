/* norm.cu - row-wise CUDA kernels over the last axis: LayerNormalization and Softmax. One
 * block per row, f32 math whatever the storage dtype; LayerNorm takes the variance of the
 * centred values (a second pass over the row, not E[x^2] - mean^2, which cancels badly),
 * Softmax subtracts the row maximum before exp. */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_types.cuh"

namespace {

int threads_for(size_t cols) {
    size_t t = (cols + 31) / 32 * 32;
    return t >= 256 ? 256 : (int)t;
}

template <typename T>
__global__ void layer_norm_kernel(const T *x, const T *scale, const T *bias, T *y, int cols, float eps) {
    size_t base = (size_t)blockIdx.x * (size_t)cols;
    float s = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) s += mixrt_cu_load(x, base + c);
    float mean = mixrt_cu_block_reduce<false>(s) / (float)cols;
    float v = 0.0f;
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float d = mixrt_cu_load(x, base + c) - mean;
        v += d * d;
    }
    float rstd = 1.0f / sqrtf(mixrt_cu_block_reduce<false>(v) / (float)cols + eps);
    for (int c = threadIdx.x; c < cols; c += blockDim.x) {
        float o = (mixrt_cu_load(x, base + c) - mean) * rstd * mixrt_cu_load(scale, c);
        if (bias) o += mixrt_cu_load(bias, c);
        mixrt_cu_store(y, base + c, o);
    }
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
    int t = threads_for(cols);
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32:
        layer_norm_kernel<<<(unsigned)rows, t, 0, s>>>((const float *)x, (const float *)scale, (const float *)bias,
                                                        (float *)y, (int)cols, eps);
        break;
    case MIXRT_CUDA_ELEM_BF16:
        layer_norm_kernel<<<(unsigned)rows, t, 0, s>>>((const mixrt_cu_bf16 *)x, (const mixrt_cu_bf16 *)scale,
                                                        (const mixrt_cu_bf16 *)bias, (mixrt_cu_bf16 *)y, (int)cols,
                                                        eps);
        break;
    default:
        layer_norm_kernel<<<(unsigned)rows, t, 0, s>>>((const __half *)x, (const __half *)scale,
                                                        (const __half *)bias, (__half *)y, (int)cols, eps);
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
