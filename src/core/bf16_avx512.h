/* bf16_avx512.h - f32 -> bf16 rounding of one AVX-512 vector, as an inline for the AVX-512
 * translation units (compiled with MIXRT_AVX512_FLAGS; include from nowhere else): the
 * conversions (convert_avx512.c) and the kernels that round in registers share one rule. */
#ifndef MIXRT_CORE_BF16_AVX512_H
#define MIXRT_CORE_BF16_AVX512_H

#include <immintrin.h>

/* f32 -> bf16 bits by integer round-to-nearest-even; NaN -> quiet NaN with the top payload
 * bits (the rule of vcvtneps2bf16 and of the scalar mixrt_bf16_from_float). */
static inline __attribute__((always_inline)) __m256i mixrt_v_bf16_rne(__m512 v) {
    const __m512i u = _mm512_castps_si512(v), hi = _mm512_srli_epi32(u, 16);
    const __mmask16 nan = _mm512_cmpgt_epu32_mask(_mm512_and_si512(u, _mm512_set1_epi32(0x7fffffff)),
                                                  _mm512_set1_epi32(0x7f800000));
    __m512i r = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_and_si512(hi, _mm512_set1_epi32(1)),
                                                     _mm512_set1_epi32(0x7fff)));
    r = _mm512_mask_or_epi32(_mm512_srli_epi32(r, 16), nan, hi, _mm512_set1_epi32(0x40));
    return _mm512_cvtepi32_epi16(r); /* values < 2^16: the truncation is exact */
}

/* mixrt_v_bf16_rne by vcvtneps2bf16 (CPUs with AVX512-BF16 only), which rounds the same way
 * but reads subnormal inputs as zero: those lanes (rare) take the integer rounding. */
static inline __attribute__((always_inline)) __m256i mixrt_v_bf16_hw(__m512 v) {
    __m256i h = (__m256i)_mm512_cvtneps_pbh(v);
    const __m512i u = _mm512_castps_si512(v);
    const __mmask16 sub = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000)) &
                          _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x007fffff));
    if (__builtin_expect(sub != 0, 0)) h = _mm256_mask_blend_epi16(sub, h, mixrt_v_bf16_rne(v));
    return h;
}

#endif /* MIXRT_CORE_BF16_AVX512_H */
