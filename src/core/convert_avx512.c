/* convert_avx512.c - AVX-512 f32<->bf16 (AVX512-BF16 vcvtneps2bf16) and f32<->f16 (F16C
 * on 512-bit vectors) conversions. Bit-identical to the scalar _ref twins in convert.c:
 * vcvtneps2bf16 flushes f32 subnormal inputs to zero, so those lanes are redone with the
 * integer round-to-nearest-even. Compiled with AVX-512 flags; called only after CPUID. */
#include <immintrin.h>

#include "core/convert_impl.h"
#include "core/core.h"

void mixrt_f32_to_bf16_avx512bf16(const float *src, mixrt_bf16 *dst, size_t n) {
    size_t i = 0;
    const __m512i expmask = _mm512_set1_epi32(0x7f800000);
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(src + i);
        __m256i r = (__m256i)_mm512_cvtneps_pbh(x);
        __m512i u = _mm512_castps_si512(x);
        /* lanes with a zero exponent and a non-zero mantissa are subnormal */
        __mmask16 sub = _mm512_cmpeq_epi32_mask(_mm512_and_si512(u, expmask), _mm512_setzero_si512()) &
                        _mm512_test_epi32_mask(u, _mm512_set1_epi32(0x007fffff));
        if (sub) {
            __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
            __m512i rr = _mm512_srli_epi32(_mm512_add_epi32(u, _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7fff))), 16);
            __m256i rn = _mm512_cvtepi32_epi16(rr);
            r = _mm256_mask_blend_epi16(sub, r, rn);
        }
        _mm256_storeu_si256((__m256i *)(dst + i), r);
    }
    mixrt_f32_to_bf16_ref(src + i, dst + i, n - i);
}

void mixrt_bf16_to_f32_avx512(const mixrt_bf16 *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(src + i));
        __m512i w = _mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16);
        _mm512_storeu_si512(dst + i, w);
    }
    mixrt_bf16_to_f32_ref(src + i, dst + i, n - i);
}

void mixrt_f32_to_f16_avx512(const float *src, mixrt_f16 *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 x = _mm512_loadu_ps(src + i);
        __m256i h = _mm512_cvtps_ph(x, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        _mm256_storeu_si256((__m256i *)(dst + i), h);
    }
    mixrt_f32_to_f16_ref(src + i, dst + i, n - i);
}

void mixrt_f16_to_f32_avx512(const mixrt_f16 *src, float *dst, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m256i h = _mm256_loadu_si256((const __m256i *)(src + i));
        _mm512_storeu_ps(dst + i, _mm512_cvtph_ps(h));
    }
    mixrt_f16_to_f32_ref(src + i, dst + i, n - i);
}
