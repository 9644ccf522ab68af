/* pool.cu - 2-D pooling (MaxPool / AveragePool / GlobalAveragePool, NCHW or channels-last
 * NHWC) and the conv epilogue y = act(y + bias[channel] + z) in one pass. Invariant: a window
 * reads only positions inside the input (padding is never materialized; it counts only for
 * count_include_pad), sums are f32, and each output is rounded once. Launchers only launch;
 * checks live in pool.c. */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_types.cuh"

namespace {

/* Output index i -> (n, c, oh, ow) in the layout; the window's sum / max over inside
 * positions, as the CPU reference (ref_nn_pool.c) defines it: max takes the first inside
 * value and then any greater one or a NaN (NaN propagates); an empty window gives -inf
 * (max) or NaN (average: 0 / 0). */
template <typename T> __device__ __forceinline__ float pool_window(const T *x, const mixrt_cuda_pool_args &a, long long n,
                                                                   long long c, long long oh, long long ow, int lane,
                                                                   int lanes) {
    const long long h0 = oh * a.sh - a.pt, w0 = ow * a.sw - a.pl;
    float acc = a.avg ? 0.0f : -INFINITY;
    bool any = false;
    long long cnt = 0;
    const int kk = a.kh * a.kw;
    for (int t = lane; t < kk; t += lanes) {
        long long hi = h0 + (long long)(t / a.kw) * a.dh, wi = w0 + (long long)(t % a.kw) * a.dw;
        if (hi < 0 || hi >= a.h || wi < 0 || wi >= a.w) {
            /* Inside the padded extent [-pad_begin, size + pad_end): counts for include_pad. */
            if (a.include_pad && hi >= -a.pt && hi < a.h + a.pb && wi >= -a.pl && wi < a.w + a.pr) cnt++;
            continue;
        }
        size_t src = a.nhwc ? (size_t)(((n * a.h + hi) * a.w + wi) * a.c + c) : (size_t)(((n * a.c + c) * a.h + hi) * a.w + wi);
        float v = mixrt_cu_load(x, src);
        if (a.avg) {
            acc += v;
            cnt++;
        } else if (!any || v > acc || (v != v && acc == acc)) {
            acc = v;
        }
        any = true;
    }
    if (lanes > 1) { /* warp-wide: combine the lanes' partial sums / maxima */
        for (int o = 16; o > 0; o >>= 1) {
            float w = __shfl_xor_sync(0xffffffffu, acc, o);
            long long cw = __shfl_xor_sync(0xffffffffu, cnt, o);
            int aw = __shfl_xor_sync(0xffffffffu, (int)any, o);
            if (a.avg) acc += w, cnt += cw;
            else if (aw && (!any || w > acc || (w != w && acc == acc))) acc = w;
            any = any || aw;
        }
    }
    if (a.avg) return cnt ? acc / (float)cnt : __int_as_float(0x7fc00000);
    return acc;
}

template <typename T> __global__ void pool_kernel(const T *x, T *y, size_t n_out, mixrt_cuda_pool_args a) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n_out; i += (size_t)gridDim.x * blockDim.x) {
        long long n, c, oh, ow;
        size_t r = i;
        if (a.nhwc) {
            c = (long long)(r % (size_t)a.c), r /= (size_t)a.c;
            ow = (long long)(r % (size_t)a.ow), r /= (size_t)a.ow;
            oh = (long long)(r % (size_t)a.oh), n = (long long)(r / (size_t)a.oh);
        } else {
            ow = (long long)(r % (size_t)a.ow), r /= (size_t)a.ow;
            oh = (long long)(r % (size_t)a.oh), r /= (size_t)a.oh;
            c = (long long)(r % (size_t)a.c), n = (long long)(r / (size_t)a.c);
        }
        mixrt_cu_store(y, i, pool_window(x, a, n, c, oh, ow, 0, 1));
    }
}

/* One warp per output (NCHW windows of many elements: a global pool over a plane). */
template <typename T> __global__ void pool_warp_kernel(const T *x, T *y, size_t n_out, mixrt_cuda_pool_args a) {
    size_t warps = (size_t)gridDim.x * (blockDim.x / 32);
    int lane = threadIdx.x & 31;
    for (size_t i = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; i < n_out; i += warps) {
        size_t r = i;
        long long ow = (long long)(r % (size_t)a.ow);
        r /= (size_t)a.ow;
        long long oh = (long long)(r % (size_t)a.oh);
        r /= (size_t)a.oh;
        long long c = (long long)(r % (size_t)a.c), n = (long long)(r / (size_t)a.c);
        float v = pool_window(x, a, n, c, oh, ow, lane, 32);
        if (lane == 0) mixrt_cu_store(y, i, v);
    }
}

/* Channels-last pools with VEC channels per thread (16-byte loads and stores; C % VEC == 0,
 * buffers 16-byte aligned, fewer than 2^31 input and output elements: 32-bit index math).
 * The same window rules as pool_window, per channel. */
template <typename T, int VEC>
__global__ void pool_nhwc_vec_kernel(const T *x, T *y, unsigned n_items, mixrt_cuda_pool_args a) {
    const unsigned CV = (unsigned)a.c / VEC, OW = (unsigned)a.ow, OH = (unsigned)a.oh, H = (unsigned)a.h,
                   W = (unsigned)a.w, C = (unsigned)a.c;
    for (unsigned i = blockIdx.x * blockDim.x + threadIdx.x; i < n_items; i += gridDim.x * blockDim.x) {
        unsigned cv = i % CV, pix = i / CV, ow = pix % OW, t = pix / OW, oh = t % OH, n = t / OH;
        float acc[VEC];
#pragma unroll
        for (int k = 0; k < VEC; k++) acc[k] = a.avg ? 0.0f : -INFINITY;
        bool any = false;
        int cnt = 0;
        const int h0 = (int)oh * a.sh - a.pt, w0 = (int)ow * a.sw - a.pl;
        for (int r = 0; r < a.kh; r++) {
            int hi = h0 + r * a.dh;
            for (int q = 0; q < a.kw; q++) {
                int wi = w0 + q * a.dw;
                if (hi < 0 || hi >= (int)H || wi < 0 || wi >= (int)W) {
                    if (a.include_pad && hi >= -a.pt && hi < (int)H + a.pb && wi >= -a.pl && wi < (int)W + a.pr) cnt++;
                    continue;
                }
                __align__(16) T v[VEC];
                *(uint4 *)v = __ldg((const uint4 *)(x + (((size_t)n * H + (unsigned)hi) * W + (unsigned)wi) * C + cv * VEC));
#pragma unroll
                for (int k = 0; k < VEC; k++) {
                    float f = mixrt_cu_load(v, (size_t)k);
                    if (a.avg) acc[k] += f;
                    else if (!any || f > acc[k] || (f != f && acc[k] == acc[k])) acc[k] = f;
                }
                any = true;
                cnt++;
            }
        }
        __align__(16) T o[VEC];
        float inv = a.avg ? (cnt ? 1.0f / (float)cnt : __int_as_float(0x7fc00000)) : 1.0f;
#pragma unroll
        for (int k = 0; k < VEC; k++) mixrt_cu_store(o, (size_t)k, a.avg ? (cnt ? acc[k] * inv : inv) : acc[k]);
        *(uint4 *)(y + (size_t)pix * C + cv * VEC) = *(const uint4 *)o;
    }
}

/* Channels-last global average pool: block (channel slice of tx vectors of VEC channels, image
 * n, pixel slice z of S), its 256 threads as tx columns x (256 / tx) rows striding over the
 * slice's pixels, f32 partial sums reduced through shared memory; with S > 1 each block writes
 * its f32 sums to part[z][n][c] and gap_finish_kernel adds the S of them (a block per image and
 * channel slice alone left 32-64 blocks for EfficientNet's squeeze-excite pools: 0.41 ms of its
 * 2.9 at batch 32). VEC > 1 needs C % VEC == 0 and 16-byte aligned buffers. */
template <typename T, int VEC>
__global__ void gap_nhwc_kernel(const T *x, T *y, float *part, long long hw, long long c, int tx) {
    __shared__ float sm[256 * VEC];
    const int col = threadIdx.x % tx, row = threadIdx.x / tx, rows = blockDim.x / tx;
    const long long n = blockIdx.y, cvecs = (c + VEC - 1) / VEC, cv = (long long)blockIdx.x * tx + col;
    const long long S = gridDim.z, p0 = hw * blockIdx.z / S, p1 = hw * (blockIdx.z + 1) / S;
    float acc[VEC];
#pragma unroll
    for (int k = 0; k < VEC; k++) acc[k] = 0.0f;
    bool live = row < rows && cv < cvecs;
    if (live) {
        const T *base = x + (size_t)n * (size_t)hw * (size_t)c + (size_t)cv * VEC;
        for (long long p = p0 + row; p < p1; p += rows) {
            if (VEC > 1) {
                __align__(16) T v[VEC];
                *(uint4 *)v = __ldg((const uint4 *)(base + (size_t)p * (size_t)c));
#pragma unroll
                for (int k = 0; k < VEC; k++) acc[k] += mixrt_cu_load(v, (size_t)k);
            } else {
                acc[0] += mixrt_cu_load(base, (size_t)p * (size_t)c);
            }
        }
    }
#pragma unroll
    for (int k = 0; k < VEC; k++) sm[threadIdx.x * VEC + k] = live ? acc[k] : 0.0f;
    __syncthreads();
    if (row == 0 && cv < cvecs) {
        for (int r = 1; r < rows; r++)
#pragma unroll
            for (int k = 0; k < VEC; k++) acc[k] += sm[(r * tx + col) * VEC + k];
        const size_t o = (size_t)n * (size_t)c + (size_t)cv * VEC;
        if (part) {
            float *pp = part + (size_t)blockIdx.z * (size_t)gridDim.y * (size_t)c + o;
#pragma unroll
            for (int k = 0; k < VEC; k++)
                if (cv * VEC + k < c) pp[k] = acc[k];
            return;
        }
        /* 0 / 0 for an empty image: NaN, as the reference gives. */
        float inv = hw ? 1.0f / (float)hw : __int_as_float(0x7fc00000);
#pragma unroll
        for (int k = 0; k < VEC; k++)
            if (cv * VEC + k < c) mixrt_cu_store(y, o + k, hw ? acc[k] * inv : inv);
    }
}

/* y[i] = (sum over the S slices of part[s][i]) / hw, i over N * C. */
template <typename T> __global__ void gap_finish_kernel(const float *part, T *y, size_t nc, int S, long long hw) {
    size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= nc) return;
    float acc = 0.0f;
    for (int z = 0; z < S; z++) acc += part[(size_t)z * nc + i];
    mixrt_cu_store(y, i, acc * (1.0f / (float)hw));
}

__device__ __forceinline__ float act_apply(int op, float x) {
    switch (op) {
    case 0: return x < 0.0f ? 0.0f : x; /* NaN stays NaN */
    case 1: return 0.5f * x * (1.0f + erff(x * 0.70710678118654752f));
    case 2: return 0.5f * x * (1.0f + tanhf(0.79788456080286536f * (x + 0.044715f * x * x * x)));
    case 3: return 1.0f / (1.0f + expf(-x));
    case 4: return x / (1.0f + expf(-x));
    case 5: return tanhf(x);
    case 6: return x < 0.0f ? 0.0f : x > 6.0f ? 6.0f : x; /* NaN stays NaN */
    case 7:
    case 8: {
        float h = x * (1.0f / 6.0f) + 0.5f;
        h = h < 0.0f ? 0.0f : h > 1.0f ? 1.0f : h; /* NaN stays NaN */
        return op == 7 ? x * h : h;
    }
    default: return x;
    }
}

/* y[i] = act(y[i] + bias[(i / inner) % channels] + z[i]) (bias, z optional; act < 0: none). */
template <typename T>
__global__ void bias_act_kernel(T *y, const T *bias, size_t channels, size_t inner, const T *z, int act, size_t n) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        float v = mixrt_cu_load(y, i);
        if (bias) v += mixrt_cu_load(bias, (i / inner) % channels);
        if (z) v += mixrt_cu_load(z, i);
        mixrt_cu_store(y, i, act_apply(act, v));
    }
}

/* Depthwise convolution, channels-last (mixrt_cuda_dwconv): a thread per (output pixel, V
 * channels), V = 16 / sizeof(T) with 16-byte loads and stores (c % V == 0, aligned buffers)
 * or 1; consecutive threads take consecutive channel groups of one pixel, so every access of
 * a warp is contiguous. f32 sums from the bias, one rounding after the activation. */
template <typename T, int V> struct alignas(V * sizeof(T)) dw_vec {
    T v[V];
};

template <typename T, int V>
__global__ void dwconv_nhwc_kernel(const T *x, const T *w, const T *bias, T *y, mixrt_cuda_dwconv_args a) {
    const long long cg = a.c / V, total = a.n * a.oh * a.ow * cg;
    for (long long t = (long long)blockIdx.x * blockDim.x + threadIdx.x; t < total;
         t += (long long)gridDim.x * blockDim.x) {
        long long q = t;
        const long long c0 = (q % cg) * V;
        q /= cg;
        const long long ow = q % a.ow;
        q /= a.ow;
        const long long oh = q % a.oh, n = q / a.oh;
        float acc[V];
#pragma unroll
        for (int j = 0; j < V; j++) acc[j] = bias ? mixrt_cu_load(bias, (size_t)(c0 + j)) : 0.0f;
        for (int r = 0; r < a.r; r++) {
            const long long ih = oh * a.sh - a.ph + (long long)r * a.dh;
            if (ih < 0 || ih >= a.h) continue;
            for (int sx = 0; sx < a.s; sx++) {
                const long long iw = ow * a.sw - a.pw + (long long)sx * a.dw;
                if (iw < 0 || iw >= a.w) continue;
                const dw_vec<T, V> xv = *(const dw_vec<T, V> *)(x + ((n * a.h + ih) * a.w + iw) * a.c + c0);
                const dw_vec<T, V> wv = *(const dw_vec<T, V> *)(w + ((long long)r * a.s + sx) * a.c + c0);
#pragma unroll
                for (int j = 0; j < V; j++) acc[j] += mixrt_cu_load(xv.v, j) * mixrt_cu_load(wv.v, j);
            }
        }
        dw_vec<T, V> o;
#pragma unroll
        for (int j = 0; j < V; j++) mixrt_cu_store(o.v, j, act_apply(a.act, acc[j]));
        *(dw_vec<T, V> *)(y + ((n * a.oh + oh) * a.ow + ow) * a.c + c0) = o;
    }
}

template <typename T>
static cudaError_t dwconv_launch(cudaStream_t s, int max_blocks, const T *x, const T *w, const T *bias, T *y,
                                 const mixrt_cuda_dwconv_args &a) {
    constexpr int V = 16 / sizeof(T);
    const bool vec = a.c % V == 0 && ((uintptr_t)x | (uintptr_t)w | (uintptr_t)y) % 16 == 0;
    const long long total = a.n * a.oh * a.ow * (vec ? a.c / V : a.c);
    long long blocks = (total + 255) / 256;
    if (blocks > (long long)max_blocks * 8) blocks = (long long)max_blocks * 8;
    if (blocks < 1) blocks = 1;
    if (vec) dwconv_nhwc_kernel<T, V><<<(unsigned)blocks, 256, 0, s>>>(x, w, bias, y, a);
    else dwconv_nhwc_kernel<T, 1><<<(unsigned)blocks, 256, 0, s>>>(x, w, bias, y, a);
    return cudaGetLastError();
}

/* A block per output row (image n, output row oh: grid (oh, n)); its threads take the ow x
 * ldc / 8 chunks of 8 consecutive columns of that row's pixels: 8 values gathered from x,
 * then stored as 16-byte chunks (ldc % 8 == 0, col 16-byte aligned). 32-bit index math
 * inside a row (64-bit divisions per chunk ran the ResNet stem's im2col at ~4x its bytes'
 * time). Each column's (kernel row offset, kernel column offset, channel) comes from a table
 * built once per block. */
template <typename T> __global__ void im2col_nhwc_kernel(const T *x, T *col, mixrt_cuda_im2col_args a) {
    extern __shared__ int itab[]; /* [ldc] each: di, dj, ch (ch -1: a zero column) */
    int *tdi = itab, *tdj = itab + a.ldc, *tch = itab + 2 * a.ldc;
    const int rsc = a.r * a.s * (int)a.c;
    for (int j = threadIdx.x; j < a.ldc; j += blockDim.x) {
        if (j < rsc) {
            int ch = j % (int)a.c, t = j / (int)a.c;
            tdi[j] = (t / a.s) * a.dh - a.ph, tdj[j] = (t % a.s) * a.dw - a.pw, tch[j] = ch;
        } else {
            tdi[j] = tdj[j] = 0, tch[j] = -1;
        }
    }
    __syncthreads();
    const unsigned q8 = (unsigned)a.ldc / 8, items = (unsigned)a.ow * q8;
    const int ih0 = (int)blockIdx.x * a.sh, H = (int)a.h, W = (int)a.w, C = (int)a.c;
    const T *xn = x + (size_t)blockIdx.y * (size_t)(a.h * a.w * a.c);
    T *cr = col + ((size_t)blockIdx.y * (size_t)a.oh + blockIdx.x) * (size_t)a.ow * (size_t)a.ldc;
    for (unsigned it = threadIdx.x; it < items; it += blockDim.x) {
        const unsigned p = it / q8;
        const int j0 = (int)(it - p * q8) * 8, iw0 = (int)p * a.sw;
        __align__(16) T v[8];
#pragma unroll
        for (int e = 0; e < 8; e++) {
            const int j = j0 + e, ch = tch[j], ih = ih0 + tdi[j], iw = iw0 + tdj[j];
            float f = 0.0f;
            if (ch >= 0 && ih >= 0 && ih < H && iw >= 0 && iw < W) f = mixrt_cu_load(xn, (size_t)((ih * W + iw) * C + ch));
            mixrt_cu_store(v, (size_t)e, f);
        }
        uint4 *dst = (uint4 *)(cr + (size_t)p * (size_t)a.ldc + (size_t)j0);
#pragma unroll
        for (int k = 0; k < (int)(8 * sizeof(T) / 16); k++) dst[k] = ((const uint4 *)v)[k];
    }
}

unsigned grid_of(size_t items, int per_block, int max_blocks) {
    size_t blocks = (items + (size_t)per_block - 1) / (size_t)per_block;
    unsigned g = (unsigned)(blocks < (size_t)max_blocks ? blocks : (size_t)max_blocks);
    return g ? g : 1;
}

template <typename T> cudaError_t pool_launch(cudaStream_t s, int max_blocks, const void *x, void *y, size_t n_out,
                                              const mixrt_cuda_pool_args &a, void *scratch, size_t scratch_bytes) {
    const int VEC = 16 / (int)sizeof(T);
    size_t n_in = (size_t)a.n * (size_t)a.c * (size_t)a.h * (size_t)a.w;
    /* A global average over the whole image, channels-last: gap_nhwc_kernel. */
    if (a.nhwc && a.avg && a.oh == 1 && a.ow == 1 && a.kh == a.h && a.kw == a.w && !a.pt && !a.pl && !a.pb && !a.pr &&
        a.n < 65536 && a.c > 0) {
        bool vec = a.c % VEC == 0 && ((uintptr_t)x & 15) == 0 && ((uintptr_t)y & 15) == 0;
        long long cvecs = vec ? a.c / VEC : a.c;
        int tx = cvecs < 32 ? (int)cvecs : 32;
        long long hw = a.h * a.w, blocks = (cvecs + tx - 1) / tx * a.n;
        /* Pixel slices until the grid has ~2 blocks per SM (max_blocks is 8 per SM), each
         * slice at least 4 pixel rows per thread, the partial sums within the scratch. */
        long long S = 1, want = max_blocks / 4, rows = 256 / tx;
        if (scratch && blocks < want && hw >= 8 * rows) {
            S = (want + blocks - 1) / blocks;
            if (S > hw / (4 * rows)) S = hw / (4 * rows);
            long long cap = (long long)(scratch_bytes / ((size_t)a.n * (size_t)a.c * sizeof(float)));
            if (S > cap) S = cap;
            if (S > 65535) S = 65535;
            if (S < 1) S = 1;
        }
        float *part = S > 1 ? (float *)scratch : NULL;
        dim3 grid((unsigned)((cvecs + tx - 1) / tx), (unsigned)a.n, (unsigned)S);
        if (vec)
            gap_nhwc_kernel<T, 16 / sizeof(T)><<<grid, 256, 0, s>>>((const T *)x, (T *)y, part, hw, a.c, tx);
        else
            gap_nhwc_kernel<T, 1><<<grid, 256, 0, s>>>((const T *)x, (T *)y, part, hw, a.c, tx);
        if (part) {
            size_t nc = (size_t)a.n * (size_t)a.c;
            gap_finish_kernel<T><<<(unsigned)((nc + 255) / 256), 256, 0, s>>>(part, (T *)y, nc, (int)S, hw);
        }
        return cudaGetLastError();
    }
    if (a.nhwc && a.c % VEC == 0 && ((uintptr_t)x & 15) == 0 && ((uintptr_t)y & 15) == 0 && n_in < (1u << 31) &&
        n_out < (1u << 31) && a.h < (1 << 30) && a.w < (1 << 30)) {
        unsigned items = (unsigned)(n_out / VEC);
        pool_nhwc_vec_kernel<T, 16 / sizeof(T)><<<grid_of(items, 256, max_blocks), 256, 0, s>>>((const T *)x, (T *)y,
                                                                                               items, a);
        return cudaGetLastError();
    }
    if (!a.nhwc && a.kh * a.kw >= 64)
        pool_warp_kernel<<<grid_of(n_out, 8, max_blocks), 256, 0, s>>>((const T *)x, (T *)y, n_out, a);
    else
        pool_kernel<<<grid_of(n_out, 256, max_blocks), 256, 0, s>>>((const T *)x, (T *)y, n_out, a);
    return cudaGetLastError();
}

/* Resize: one thread per output element; the two taps per axis from the tables. */
template <typename T>
__global__ void resize_kernel(const T *x, T *y, size_t n, mixrt_cuda_resize_args a) {
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
        size_t c = 0, ow, oh, img;
        if (a.nhwc) {
            c = i % (size_t)a.c;
            size_t p = i / (size_t)a.c;
            ow = p % (size_t)a.ow, p /= (size_t)a.ow;
            oh = p % (size_t)a.oh, img = p / (size_t)a.oh;
        } else {
            ow = i % (size_t)a.ow;
            size_t p = i / (size_t)a.ow;
            oh = p % (size_t)a.oh, img = p / (size_t)a.oh; /* img: the (n, c) plane */
        }
        const mixrt_cuda_resize_tap th = a.taps_h[oh], tw = a.taps_w[ow];
        const size_t cs = a.nhwc ? (size_t)a.c : 1, rs = (size_t)a.w * cs;
        const T *base = x + (a.nhwc ? img * (size_t)a.h * rs + c : img * (size_t)a.h * (size_t)a.w);
        const T *r0 = base + (size_t)th.i0 * rs, *r1 = base + (size_t)th.i1 * rs;
        float v0 = tw.w0 * mixrt_cu_load(r0, (size_t)tw.i0 * cs) + tw.w1 * mixrt_cu_load(r0, (size_t)tw.i1 * cs);
        float v1 = tw.w0 * mixrt_cu_load(r1, (size_t)tw.i0 * cs) + tw.w1 * mixrt_cu_load(r1, (size_t)tw.i1 * cs);
        mixrt_cu_store(y, i, th.w0 * v0 + th.w1 * v1);
    }
}

} // namespace

extern "C" cudaError_t mixrt_cuda_launch_resize(cudaStream_t s, int max_blocks, int elem, const void *x, void *y,
                                                const struct mixrt_cuda_resize_args *a) {
    size_t n = (size_t)(a->n * a->c * a->oh * a->ow), blocks = (n + 255) / 256;
    unsigned g = (unsigned)(blocks < (size_t)max_blocks ? blocks : (size_t)max_blocks);
    if (g == 0) g = 1;
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32: resize_kernel<<<g, 256, 0, s>>>((const float *)x, (float *)y, n, *a); break;
    case MIXRT_CUDA_ELEM_BF16:
        resize_kernel<<<g, 256, 0, s>>>((const mixrt_cu_bf16 *)x, (mixrt_cu_bf16 *)y, n, *a);
        break;
    case MIXRT_CUDA_ELEM_F16: resize_kernel<<<g, 256, 0, s>>>((const __half *)x, (__half *)y, n, *a); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t mixrt_cuda_launch_pool(cudaStream_t s, int max_blocks, int elem, const void *x, void *y,
                                              size_t n_out, const struct mixrt_cuda_pool_args *a, void *scratch,
                                              size_t scratch_bytes) {
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32: return pool_launch<float>(s, max_blocks, x, y, n_out, *a, scratch, scratch_bytes);
    case MIXRT_CUDA_ELEM_BF16: return pool_launch<mixrt_cu_bf16>(s, max_blocks, x, y, n_out, *a, scratch, scratch_bytes);
    case MIXRT_CUDA_ELEM_F16: return pool_launch<__half>(s, max_blocks, x, y, n_out, *a, scratch, scratch_bytes);
    default: return cudaErrorInvalidValue;
    }
}

extern "C" cudaError_t mixrt_cuda_launch_im2col(cudaStream_t s, int max_blocks, int elem, const void *x, void *col,
                                                const struct mixrt_cuda_im2col_args *a) {
    (void)max_blocks;
    /* the caller checked: n, oh <= 65535, n h w c < 2^31; a row's ow * ldc / 8 chunks fit 32 bits */
    if (a->ldc % 8 || (uintptr_t)col % 16 || a->ow * (a->ldc / 8) >= (1LL << 31)) return cudaErrorInvalidValue;
    dim3 grid((unsigned)a->oh, (unsigned)a->n);
    size_t smem = (size_t)3 * (size_t)a->ldc * sizeof(int);
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32: im2col_nhwc_kernel<<<grid, 256, smem, s>>>((const float *)x, (float *)col, *a); break;
    case MIXRT_CUDA_ELEM_BF16:
        im2col_nhwc_kernel<<<grid, 256, smem, s>>>((const mixrt_cu_bf16 *)x, (mixrt_cu_bf16 *)col, *a);
        break;
    case MIXRT_CUDA_ELEM_F16: im2col_nhwc_kernel<<<grid, 256, smem, s>>>((const __half *)x, (__half *)col, *a); break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

extern "C" cudaError_t mixrt_cuda_launch_bias_act(cudaStream_t s, int max_blocks, int elem, void *y, const void *bias,
                                                  size_t channels, size_t inner, const void *z, int act, size_t n) {
    unsigned g = grid_of(n, 256, max_blocks);
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32:
        bias_act_kernel<<<g, 256, 0, s>>>((float *)y, (const float *)bias, channels, inner, (const float *)z, act, n);
        break;
    case MIXRT_CUDA_ELEM_BF16:
        bias_act_kernel<<<g, 256, 0, s>>>((mixrt_cu_bf16 *)y, (const mixrt_cu_bf16 *)bias, channels, inner,
                                          (const mixrt_cu_bf16 *)z, act, n);
        break;
    case MIXRT_CUDA_ELEM_F16:
        bias_act_kernel<<<g, 256, 0, s>>>((__half *)y, (const __half *)bias, channels, inner, (const __half *)z, act, n);
        break;
    default: return cudaErrorInvalidValue;
    }
    return cudaGetLastError();
}

/* The edge columns of a row-grouped product (mixrt_cuda_edge_scatter): row r of y (group
 * r % groups, first product column c0) takes its columns [0, c0) from e's [0, c0) and [c0 +
 * nc, n) from e's [left + c0, left + n - nc): e holds every row's product with the union of
 * edge columns ([0, left) and [nc, n) of W), computed by a small dense cuBLASLt product.
 * Element copies of es bytes; a thread per (row, edge column). Own kernels that summed the
 * edge columns themselves ran 70-110 us under ncu at GPT-2 b32 (notes/cuda.md, session 17). */
template <typename T> __global__ void edge_scatter_kernel(const T *e, T *y, mixrt_cuda_edge_args a) {
    const int ne = (int)(a.n - a.nc);
    const long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x, r = i / ne;
    if (r >= a.rows) return;
    const int j = (int)(i % ne), c0 = a.c0[r % a.groups];
    y[r * a.n + (j < c0 ? j : a.nc + j)] = e[r * a.ld_e + (j < c0 ? j : a.left + j)];
}

extern "C" cudaError_t mixrt_cuda_launch_edge_scatter(cudaStream_t s, size_t es, const void *e, void *y,
                                                     const struct mixrt_cuda_edge_args *a) {
    /* the caller checked: groups in 1..16, 0 <= c0 <= n - nc <= left + n - nc <= ld_e, work to do */
    const long long total = a->rows * (a->n - a->nc);
    const unsigned blocks = (unsigned)((total + 255) / 256);
    if (es == 4) edge_scatter_kernel<<<blocks, 256, 0, s>>>((const uint32_t *)e, (uint32_t *)y, *a);
    else if (es == 2) edge_scatter_kernel<<<blocks, 256, 0, s>>>((const uint16_t *)e, (uint16_t *)y, *a);
    else return cudaErrorInvalidValue;
    return cudaGetLastError();
}

extern "C" cudaError_t mixrt_cuda_launch_dwconv(cudaStream_t s, int max_blocks, int elem, const void *x, const void *w,
                                                const void *bias, void *y, const struct mixrt_cuda_dwconv_args *a) {
    /* the caller checked the geometry and that there is an output */
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32:
        return dwconv_launch(s, max_blocks, (const float *)x, (const float *)w, (const float *)bias, (float *)y, *a);
    case MIXRT_CUDA_ELEM_BF16:
        return dwconv_launch(s, max_blocks, (const mixrt_cu_bf16 *)x, (const mixrt_cu_bf16 *)w,
                             (const mixrt_cu_bf16 *)bias, (mixrt_cu_bf16 *)y, *a);
    case MIXRT_CUDA_ELEM_F16:
        return dwconv_launch(s, max_blocks, (const __half *)x, (const __half *)w, (const __half *)bias, (__half *)y, *a);
    default: return cudaErrorInvalidValue;
    }
}
