/* gemv_avx512.c - the AVX-512 spans of the small-row 1x1 convolution (gemv.c): y += x W for
 * one row x of k values and W k-major [k][m] in f32 or bf16. Compiled with MIXRT_AVX512_FLAGS;
 * gemv.c calls them only where the CPU has AVX-512F. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/gemv_impl.h"

static inline __mmask16 left_mask(size_t left) {
    return left >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << left) - 1u);
}

/* 16 weights from element p of W (masked lanes 0): f32, or bf16 widened exactly by a shift. */
static inline __attribute__((always_inline)) __m512 wload(const void *w, size_t p, __mmask16 m, const bool bf) {
    if (bf)
        return _mm512_castsi512_ps(
            _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)w + p)), 16));
    return _mm512_maskz_loadu_ps(m, (const float *)w + p);
}

/* 64 outputs at a time in four accumulators (the weights stream once, row by row), the last
 * block masked. */
static inline __attribute__((always_inline)) void span(const float *x, size_t k, const void *w, size_t m, float *y,
                                                       const bool bf) {
    for (size_t j = 0; j < m; j += 64) {
        const __mmask16 m0 = left_mask(m - j), m1 = j + 16 < m ? left_mask(m - j - 16) : 0,
                        m2 = j + 32 < m ? left_mask(m - j - 32) : 0, m3 = j + 48 < m ? left_mask(m - j - 48) : 0;
        __m512 a0 = _mm512_maskz_loadu_ps(m0, y + j), a1 = _mm512_maskz_loadu_ps(m1, y + j + 16),
               a2 = _mm512_maskz_loadu_ps(m2, y + j + 32), a3 = _mm512_maskz_loadu_ps(m3, y + j + 48);
        for (size_t i = 0, r = j; i < k; i++, r += m) {
            const __m512 xb = _mm512_set1_ps(x[i]);
            a0 = _mm512_fmadd_ps(xb, wload(w, r, m0, bf), a0);
            if (m1) a1 = _mm512_fmadd_ps(xb, wload(w, r + 16, m1, bf), a1);
            if (m2) a2 = _mm512_fmadd_ps(xb, wload(w, r + 32, m2, bf), a2);
            if (m3) a3 = _mm512_fmadd_ps(xb, wload(w, r + 48, m3, bf), a3);
        }
        _mm512_mask_storeu_ps(y + j, m0, a0);
        if (m1) _mm512_mask_storeu_ps(y + j + 16, m1, a1);
        if (m2) _mm512_mask_storeu_ps(y + j + 32, m2, a2);
        if (m3) _mm512_mask_storeu_ps(y + j + 48, m3, a3);
    }
}

void mixrt_gemv_row_avx512(const float *x, size_t k, const float *w, size_t m, float *y) { span(x, k, w, m, y, false); }

void mixrt_gemv_row_bf16w_avx512(const float *x, size_t k, const uint16_t *w, size_t m, float *y) {
    span(x, k, w, m, y, true);
}
#else
typedef int mixrt_gemv_avx512_unused; /* ISO C wants a declaration in every translation unit */
#endif
