/* cuda_types.cuh - device-side element access shared by the .cu files: loads widen to f32
 * exactly, stores round to nearest even (bf16 by hand, so NaN stays a quiet NaN with its
 * sign, exactly like the CPU converters), and block-wide f32 reductions. */
#ifndef MIXRT_BACKEND_CUDA_TYPES_CUH
#define MIXRT_BACKEND_CUDA_TYPES_CUH

#include <cuda_fp16.h>
#include <stdint.h>

/* bf16 travels as its bits: the rounding below is ours, not a library's. */
struct mixrt_cu_bf16 {
    uint16_t bits;
};

__device__ __forceinline__ float mixrt_cu_load(const float *p, size_t i) { return p[i]; }
/* f16 NaNs by hand, like the CPU converters (quiet bit set, sign and leading payload
 * kept); the intrinsics give a canonical NaN. Every other value converts exactly / RNE. */
__device__ __forceinline__ float mixrt_cu_load(const __half *p, size_t i) {
    uint16_t h = __half_as_ushort(p[i]);
    if ((h & 0x7c00u) == 0x7c00u && (h & 0x3ffu))
        return __uint_as_float(((uint32_t)(h & 0x8000u) << 16) | 0x7fc00000u | ((uint32_t)(h & 0x3ffu) << 13));
    return __half2float(p[i]);
}
__device__ __forceinline__ float mixrt_cu_load(const mixrt_cu_bf16 *p, size_t i) {
    return __uint_as_float((uint32_t)p[i].bits << 16);
}

__device__ __forceinline__ uint16_t mixrt_cu_f32_to_bf16_bits(float f) {
    uint32_t u = __float_as_uint(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40u); /* quiet NaN, sign kept */
    return (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

__device__ __forceinline__ void mixrt_cu_store(float *p, size_t i, float v) { p[i] = v; }
__device__ __forceinline__ void mixrt_cu_store(__half *p, size_t i, float v) {
    uint32_t u = __float_as_uint(v), a = u & 0x7fffffffu;
    if (a > 0x7f800000u)
        p[i] = __ushort_as_half((uint16_t)(((u >> 16) & 0x8000u) | 0x7e00u | ((a >> 13) & 0x3ffu)));
    else
        p[i] = __float2half_rn(v);
}
__device__ __forceinline__ void mixrt_cu_store(mixrt_cu_bf16 *p, size_t i, float v) {
    p[i].bits = mixrt_cu_f32_to_bf16_bits(v);
}

/* Sum (or max) over the block; every thread gets the result. blockDim.x is a multiple of
 * 32, at most 1024. The leading barrier lets callers reduce several times in a row. */
template <bool Max> __device__ __forceinline__ float mixrt_cu_block_reduce(float v) {
    __shared__ float part[32];
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = Max ? fmaxf(v, w) : v + w;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    v = lane < nw ? part[lane] : (Max ? -INFINITY : 0.0f);
    for (int o = 16; o > 0; o >>= 1) {
        float w = __shfl_xor_sync(0xffffffffu, v, o);
        v = Max ? fmaxf(v, w) : v + w;
    }
    return v;
}

#endif /* MIXRT_BACKEND_CUDA_TYPES_CUH */
