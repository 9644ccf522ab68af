/* attention_gemm.cu - the softmax stage of attention done as two batched cuBLASLt products
 * (engine_cuda.c: S = scale * Q K^T in f32, then P V): P = softmax(S + causal fill + mask)
 * row by row, f32 math, P rounded once to the Q/K/V type. Invariant: the same score rules
 * as attention_kernel (engine_ops.cu): the causal fill replaces a score, the mask adds. */
#include "backend/cuda/cuda_impl.h"
#include "backend/cuda/cuda_types.cuh"

namespace {

/* Score j of row (bh, i) after the causal fill and the mask. */
template <typename MT>
__device__ __forceinline__ float att_score(const float *srow, const MT *mask, size_t mb, long long ms3, long long j,
                                           long long lim, const mixrt_cuda_attention_args &a) {
    float s = srow[j];
    if (a.causal && j > lim) s = a.causal_add ? s + a.fill : a.fill;
    if (mask && !(a.causal_add && j > lim)) s += mixrt_cu_load(mask, mb + (size_t)(j * ms3));
    return s;
}

/* One warp per row of S [b*h*sq, sk]: max, sum of exp, then P = exp(s - max) / sum. */
template <typename T, typename MT>
__global__ void att_softmax_kernel(const float *s, T *p, const MT *mask, mixrt_cuda_attention_args a, size_t rows) {
    const int lane = threadIdx.x & 31;
    size_t warps = (size_t)gridDim.x * (blockDim.x / 32);
    for (size_t r = (size_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32; r < rows; r += warps) {
        long long i = (long long)(r % (size_t)a.sq), bh = (long long)(r / (size_t)a.sq);
        long long h = bh % a.h, b = bh / a.h;
        const long long *Ms = a.mask_strides;
        size_t mb = (size_t)(b * Ms[0] + h * Ms[1] + i * Ms[2]);
        long long lim = i + (a.sk - a.sq);
        const float *srow = s + r * (size_t)a.sk;
        T *prow = p + r * (size_t)a.sk;
        float mx = -INFINITY;
        for (long long j = lane; j < a.sk; j += 32) mx = fmaxf(mx, att_score(srow, mask, mb, Ms[3], j, lim, a));
        for (int o = 16; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
        if (a.nan_zero && !isfinite(mx)) { /* the softmax would be NaN: P = 0 */
            for (long long j = lane; j < a.sk; j += 32) mixrt_cu_store(prow, (size_t)j, 0.0f);
            continue;
        }
        float sum = 0.0f;
        for (long long j = lane; j < a.sk; j += 32) sum += __expf(att_score(srow, mask, mb, Ms[3], j, lim, a) - mx);
        for (int o = 16; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
        float inv = 1.0f / sum;
        for (long long j = lane; j < a.sk; j += 32)
            mixrt_cu_store(prow, (size_t)j, __expf(att_score(srow, mask, mb, Ms[3], j, lim, a) - mx) * inv);
    }
}

template <typename T>
cudaError_t att_softmax_launch(cudaStream_t st, int max_blocks, const float *s, void *p, const void *mask,
                               const mixrt_cuda_attention_args &a, size_t rows) {
    size_t blocks = (rows + 7) / 8;
    unsigned g = (unsigned)(blocks < (size_t)max_blocks ? blocks : (size_t)max_blocks);
    if (g == 0) g = 1;
    if (a.mask_f32 || !mask)
        att_softmax_kernel<<<g, 256, 0, st>>>(s, (T *)p, (const float *)mask, a, rows);
    else
        att_softmax_kernel<<<g, 256, 0, st>>>(s, (T *)p, (const T *)mask, a, rows);
    return cudaGetLastError();
}

} // namespace

extern "C" cudaError_t mixrt_cuda_launch_att_softmax(cudaStream_t st, int max_blocks, int elem, const float *s,
                                                     void *p, const void *mask,
                                                     const struct mixrt_cuda_attention_args *a) {
    size_t rows = (size_t)a->b * (size_t)a->h * (size_t)a->sq;
    switch (elem) {
    case MIXRT_CUDA_ELEM_F32: return att_softmax_launch<float>(st, max_blocks, s, p, mask, *a, rows);
    case MIXRT_CUDA_ELEM_BF16: return att_softmax_launch<mixrt_cu_bf16>(st, max_blocks, s, p, mask, *a, rows);
    case MIXRT_CUDA_ELEM_F16: return att_softmax_launch<__half>(st, max_blocks, s, p, mask, *a, rows);
    default: return cudaErrorInvalidValue;
    }
}
