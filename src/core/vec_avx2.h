/* vec_avx2.h - 8-lane f32 helpers of the AVX2 + FMA kernels (nnops_avx2.c, attention_avx2.c):
 * e^x and horizontal sum / max. Include only from files compiled with -mavx2 -mfma. */
#ifndef MIXRT_CORE_VEC_AVX2_H
#define MIXRT_CORE_VEC_AVX2_H

#include <immintrin.h>

/* exp(x) = 2^j exp(r), j = round(x log2 e), r = x - j ln 2 (ln 2 in two parts, the high one
 * short so j * hi is exact), exp(r) by its Taylor series to r^7; 2^j as two factors built in
 * the exponent bits (each normal for j in [-159, 128], so subnormal results round once more
 * but stay), x held to [-110, ln(FLT_MAX)]: below, 0; above, inf; NaN lanes pass through. */
static inline __m256 mixrt_v256_exp(__m256 x) {
    const __m256 lo = _mm256_set1_ps(-110.0f), hi = _mm256_set1_ps(88.72283935f);
    __m256 nan = _mm256_cmp_ps(x, x, _CMP_UNORD_Q), under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ),
           over = _mm256_cmp_ps(x, hi, _CMP_GT_OQ);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, lo), hi);
    __m256 j = _mm256_round_ps(_mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(j, _mm256_set1_ps(0.693359375f), xc);
    r = _mm256_fnmadd_ps(j, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.0f / 5040.0f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 720.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
    /* 2^j = 2^h 2^(j - h), h = floor(j / 2) */
    __m256i ji = _mm256_cvtps_epi32(j), h = _mm256_srai_epi32(ji, 1);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, _mm256_set1_epi32(127)), 23));
    __m256 s2 = _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ji, h), _mm256_set1_epi32(127)), 23));
    p = _mm256_mul_ps(_mm256_mul_ps(p, s1), s2);
    p = _mm256_andnot_ps(under, p);
    p = _mm256_blendv_ps(p, _mm256_set1_ps(INFINITY), over);
    return _mm256_blendv_ps(p, x, nan);
}

static inline float mixrt_v256_hsum(__m256 v) {
    __m128 m = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_add_ps(m, _mm_movehl_ps(m, m));
    m = _mm_add_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

/* The largest lane (no NaN handling: callers rule NaN out first). */
static inline float mixrt_v256_hmax(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

#endif /* MIXRT_CORE_VEC_AVX2_H */
