/* vec_avx512.h - small 16-lane helpers of the AVX-512 kernels. Include only from files compiled
 * with the AVX-512 flags. */
#ifndef MIXRT_CORE_VEC_AVX512_H
#define MIXRT_CORE_VEC_AVX512_H

#include <immintrin.h>
#include <stdint.h>

/* Lanes 0..n-1 of a vector: all 16 for n >= 16, none for n <= 0 (a tail's masked loads and
 * stores). */
static inline __mmask16 mixrt_v512_mask(int64_t n) {
    return n >= 16 ? (__mmask16)0xffff : n <= 0 ? (__mmask16)0 : (__mmask16)((1u << n) - 1u);
}

/* The max of acc and v keeping a NaN from either side (the reference pools' and reductions'
 * rule): vmaxps returns its second operand when either is NaN, which covers a NaN in v; a NaN
 * already in acc is put back by the mask. */
static inline __m512 mixrt_v512_max_nan(__m512 acc, __m512 v) {
    return _mm512_mask_mov_ps(_mm512_max_ps(acc, v), _mm512_cmp_ps_mask(acc, acc, _CMP_UNORD_Q), acc);
}

#endif /* MIXRT_CORE_VEC_AVX512_H */
