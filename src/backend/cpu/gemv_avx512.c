/* gemv_avx512.c - the AVX-512 span of the small-row 1x1 convolution (gemv.c): y += x W for
 * one row x of k values and W k-major [k][m] in f32. Compiled with MIXRT_AVX512_FLAGS; gemv.c
 * calls it only where the CPU has AVX-512F. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/gemv_impl.h"

static inline __mmask16 left_mask(size_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

void mixrt_gemv_row_avx512(const float *x, size_t k, const float *w, size_t m, float *y) {
    /* 64 outputs at a time in four accumulators (the weights stream once, row by row), the
     * last block masked. */
    for (size_t j = 0; j < m; j += 64) {
        const __mmask16 m0 = left_mask(m - j), m1 = j + 16 < m ? left_mask(m - j - 16) : 0,
                        m2 = j + 32 < m ? left_mask(m - j - 32) : 0, m3 = j + 48 < m ? left_mask(m - j - 48) : 0;
        __m512 a0 = _mm512_maskz_loadu_ps(m0, y + j), a1 = _mm512_maskz_loadu_ps(m1, y + j + 16),
               a2 = _mm512_maskz_loadu_ps(m2, y + j + 32), a3 = _mm512_maskz_loadu_ps(m3, y + j + 48);
        const float *wr = w + j;
        for (size_t i = 0; i < k; i++, wr += m) {
            const __m512 xb = _mm512_set1_ps(x[i]);
            a0 = _mm512_fmadd_ps(xb, _mm512_maskz_loadu_ps(m0, wr), a0);
            if (m1) a1 = _mm512_fmadd_ps(xb, _mm512_maskz_loadu_ps(m1, wr + 16), a1);
            if (m2) a2 = _mm512_fmadd_ps(xb, _mm512_maskz_loadu_ps(m2, wr + 32), a2);
            if (m3) a3 = _mm512_fmadd_ps(xb, _mm512_maskz_loadu_ps(m3, wr + 48), a3);
        }
        _mm512_mask_storeu_ps(y + j, m0, a0);
        if (m1) _mm512_mask_storeu_ps(y + j + 16, m1, a1);
        if (m2) _mm512_mask_storeu_ps(y + j + 32, m2, a2);
        if (m3) _mm512_mask_storeu_ps(y + j + 48, m3, a3);
    }
}

/* The same with W in bf16 (widened exactly by a shift): half the bytes of a product that
 * streams its weights from memory once per run. */
void mixrt_gemv_row_bf16w_avx512(const float *x, size_t k, const uint16_t *w, size_t m, float *y) {
#define WB(p, msk) _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(msk, p)), 16))
    for (size_t j = 0; j < m; j += 64) {
        const __mmask16 m0 = left_mask(m - j), m1 = j + 16 < m ? left_mask(m - j - 16) : 0,
                        m2 = j + 32 < m ? left_mask(m - j - 32) : 0, m3 = j + 48 < m ? left_mask(m - j - 48) : 0;
        __m512 a0 = _mm512_maskz_loadu_ps(m0, y + j), a1 = _mm512_maskz_loadu_ps(m1, y + j + 16),
               a2 = _mm512_maskz_loadu_ps(m2, y + j + 32), a3 = _mm512_maskz_loadu_ps(m3, y + j + 48);
        const uint16_t *wr = w + j;
        for (size_t i = 0; i < k; i++, wr += m) {
            const __m512 xb = _mm512_set1_ps(x[i]);
            a0 = _mm512_fmadd_ps(xb, WB(wr, m0), a0);
            if (m1) a1 = _mm512_fmadd_ps(xb, WB(wr + 16, m1), a1);
            if (m2) a2 = _mm512_fmadd_ps(xb, WB(wr + 32, m2), a2);
            if (m3) a3 = _mm512_fmadd_ps(xb, WB(wr + 48, m3), a3);
        }
        _mm512_mask_storeu_ps(y + j, m0, a0);
        if (m1) _mm512_mask_storeu_ps(y + j + 16, m1, a1);
        if (m2) _mm512_mask_storeu_ps(y + j + 32, m2, a2);
        if (m3) _mm512_mask_storeu_ps(y + j + 48, m3, a3);
    }
#undef WB
}
#else
typedef int mixrt_gemv_avx512_unused; /* ISO C wants a declaration in every translation unit */
#endif
