/* convert_avx512.c - AVX-512 f32<->bf16 (AVX512-BF16 vcvtneps2bf16, or integer rounding
 * on AVX-512F) and f32<->f16 (vcvtps2ph/vcvtph2ps on 512-bit vectors). Bit-identical to
 * the scalar _ref twins in convert.c for every input, tails included (masked, not scalar).
 * Compiled with AVX-512 flags; called only after the CPUID checks in convert.c. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "core/bf16_avx512.h"
#include "core/convert_impl.h"
#include "core/core.h"

/* Lanes [0, k) of a 16-lane mask, k <= 16. */
static inline __mmask16 tail_mask(size_t k) { return (__mmask16)((1u << k) - 1u); }

/* vcvtneps2bf16 treats subnormal inputs as zero (DAZ regardless of MXCSR); those lanes
 * take the integer rounding instead. Normal inputs cannot round to a bf16 subnormal (same
 * exponent range), NaN and Inf handling already agree. */
static inline __m256i bf16_round_hw(__m512 x) {
    __m256i r = (__m256i)_mm512_cvtneps_pbh(x);
    __m512i u = _mm512_castps_si512(x);
    __mmask16 sub = _mm512_testn_epi32_mask(u, _mm512_set1_epi32(0x7f800000)) &
                    _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x007fffff));
    if (sub) r = _mm256_mask_blend_epi16(sub, r, mixrt_v_bf16_rne(x));
    return r;
}

void mixrt_f32_to_bf16_avx512bf16(const float *src, mixrt_bf16 *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(dst + i), bf16_round_hw(_mm512_loadu_ps(src + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm256_mask_storeu_epi16(dst + i, m, bf16_round_hw(_mm512_maskz_loadu_ps(m, src + i)));
    }
}

void mixrt_f32_to_bf16_avx512(const float *src, mixrt_bf16 *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm256_storeu_si256((__m256i *)(dst + i), mixrt_v_bf16_rne(_mm512_loadu_ps(src + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm256_mask_storeu_epi16(dst + i, m, mixrt_v_bf16_rne(_mm512_maskz_loadu_ps(m, src + i)));
    }
}

/* bf16 -> f32 is exact: a shift, plus setting the quiet bit of NaNs. */
static inline __m512i bf16_widen(__m256i h) {
    __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
    __m512i abs = _mm512_and_si512(w, _mm512_set1_epi32(0x7fffffff));
    __mmask16 nan = _mm512_cmpgt_epu32_mask(abs, _mm512_set1_epi32(0x7f800000));
    return _mm512_mask_or_epi32(w, nan, w, _mm512_set1_epi32(0x00400000));
}

void mixrt_bf16_to_f32_avx512(const mixrt_bf16 *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_si512(dst + i, bf16_widen(_mm256_loadu_si256((const __m256i *)(src + i))));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_epi32(dst + i, m, bf16_widen(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}

/* vcvtps2ph with an immediate RNE (MXCSR not consulted), exceptions suppressed. It rounds
 * subnormal f16 results exactly, and f32 subnormal inputs are far below half the smallest
 * f16 subnormal, so DAZ could not change a result either. */
#define F16_ROUND (_MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC)

void mixrt_f32_to_f16_avx512(const float *src, mixrt_f16 *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm256_storeu_si256((__m256i *)(dst + i), _mm512_cvtps_ph(_mm512_loadu_ps(src + i), F16_ROUND));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm256_mask_storeu_epi16(dst + i, m, _mm512_cvtps_ph(_mm512_maskz_loadu_ps(m, src + i), F16_ROUND));
    }
}

void mixrt_f16_to_f32_avx512(const mixrt_f16 *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(src + i))));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(dst + i, m, _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(m, src + i)));
    }
}
#else
/* Not x86-64: convert.c never references the kernels. ISO C wants a declaration here. */
typedef int mixrt_convert_avx512_unused;
#endif
