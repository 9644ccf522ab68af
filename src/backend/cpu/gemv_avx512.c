/* gemv_avx512.c - the AVX-512 spans of the small-row 1x1 convolution (gemv.c): y += x W for
 * one row x of k values and W k-major [k][m] in f32 or bf16. Compiled with MIXRT_AVX512_FLAGS;
 * gemv.c calls them only where the CPU has AVX-512F. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/gemv_impl.h"
#include "core/vec_avx512.h"

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
        const __mmask16 m0 = mixrt_v512_mask(m - j), m1 = j + 16 < m ? mixrt_v512_mask(m - j - 16) : 0,
                        m2 = j + 32 < m ? mixrt_v512_mask(m - j - 32) : 0, m3 = j + 48 < m ? mixrt_v512_mask(m - j - 48) : 0;
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
/* fmm_gemv's spans. kn: 64 columns at a time, each row of B read once for the R rows of A
 * (R x 4 accumulators). nk: one row of B at a time (below), one horizontal sum per output at
 * the end. R is a constant in each instance (the switches below). */
/* y [R][N], columns [j0, j1) = a[:, k0:k1] B[k0:k1, j0:j1] (B [K][N], a's rows lda apart):
 * 8 rows of B at a time, each read along the span's contiguous columns (8 sequential streams),
 * y's span accumulated across the steps. The 8 rows of a step lie (k1 - k0) / 8 rows apart, so
 * each stream walks its own contiguous eighth of the range: with 8 consecutive rows a step (the
 * first form), narrow rows put several streams in one 4 KiB page, where the prefetchers lose them
 * (GPT-2's c_proj at one decoding step, 3072 x 768 bf16, a thread's half: ~13-22 GB/s that way,
 * 27-28 spread, in alternating runs; c_fc, 768 x 3072, the same both ways). The rows
 * left over (fewer than 8) go as one last step. Serves a wide span on one thread (the 64-column
 * strips below walk all K rows at B's row pitch: on GPT-2's tied LM head, 768 x 50257 f32, a
 * 201 KB pitch, one page per 256 bytes read, ~20 GB/s) and a thread's share of K over all
 * columns (one contiguous block of B). */
#define KN_RB 8
static inline __attribute__((always_inline)) void kn_step(const float *a, const int R, size_t lda, const size_t *rows,
                                                          const int nr, bool first, const void *b, const bool bf,
                                                          size_t N, size_t j0, size_t j1, float *y) {
    __m512 x[4][KN_RB];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < KN_RB; t++) x[r][t] = _mm512_set1_ps(t < nr ? a[(size_t)r * lda + rows[t]] : 0.0f);
    for (size_t j = j0; j < j1; j += 16) {
        const __mmask16 m = mixrt_v512_mask(j1 - j);
        __m512 acc[4];
        for (int r = 0; r < R; r++)
            acc[r] = !first ? _mm512_maskz_loadu_ps(m, y + (size_t)r * N + j) : _mm512_setzero_ps();
        for (int t = 0; t < nr; t++) {
            _mm_prefetch((const char *)b + (rows[t] * N + j) * (bf ? 2 : 4) + MIXRT_FMV_PF_BYTES, _MM_HINT_T0);
            const __m512 w = wload(b, rows[t] * N + j, m, bf);
            for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(x[r][t], w, acc[r]);
        }
        for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(y + (size_t)r * N + j, m, acc[r]);
    }
}

static inline __attribute__((always_inline)) void kn_krange(const float *a, const int R, size_t lda, size_t k0,
                                                            size_t k1, const void *b, const bool bf, size_t N,
                                                            size_t j0, size_t j1, float *y) {
    const size_t L = (k1 - k0) / KN_RB;
    size_t rows[KN_RB] = {0};
    for (size_t i = 0; i < L; i++) {
        for (int t = 0; t < KN_RB; t++) rows[t] = k0 + i + (size_t)t * L;
        kn_step(a, R, lda, rows, KN_RB, i == 0, b, bf, N, j0, j1, y);
    }
    const int left = (int)(k1 - k0 - L * KN_RB);
    if (left > 0 || L == 0) {
        for (int t = 0; t < left; t++) rows[t] = k0 + L * KN_RB + (size_t)t;
        kn_step(a, R, lda, rows, left, L == 0, b, bf, N, j0, j1, y);
    }
}

static inline __attribute__((always_inline)) void kn_rows(const float *a, const int R, size_t K, const void *b,
                                                          const bool bf, size_t N, size_t j0, size_t j1, float *y) {
    if (j1 - j0 >= 1024) {
        kn_krange(a, R, K, 0, K, b, bf, N, j0, j1, y);
        return;
    }
    for (size_t j = j0; j < j1; j += 64) {
        __mmask16 m[4];
        for (int q = 0; q < 4; q++) m[q] = j + 16 * (size_t)q < j1 ? mixrt_v512_mask(j1 - j - 16 * (size_t)q) : 0;
        __m512 acc[4][4];
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
        for (size_t i = 0; i < K; i++) {
            const size_t p = i * N + j;
            __m512 w[4];
            for (int q = 0; q < 4; q++) w[q] = m[q] ? wload(b, p + 16 * (size_t)q, m[q], bf) : _mm512_setzero_ps();
            for (int r = 0; r < R; r++) {
                const __m512 x = _mm512_set1_ps(a[(size_t)r * K + i]);
                for (int q = 0; q < 4; q++) acc[r][q] = _mm512_fmadd_ps(x, w[q], acc[r][q]);
            }
        }
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 4; q++)
                if (m[q]) _mm512_mask_storeu_ps(y + (size_t)r * N + j + 16 * (size_t)q, m[q], acc[r][q]);
    }
}

/* nk: four rows of B a step (four streams a thread, each prefetched MIXRT_FMV_PF_BYTES ahead,
 * one load of A for the four), then the rows left over (fewer than four) one at a time. On
 * AlexNet's classifier in f32 (B [4096, 9216] then [4096, 4096], 218 MB read from memory every
 * run), timed against ONNX Runtime in the same run: one row a step ran at 0.80-0.86x ONNX
 * Runtime's speed, four rows 1.31-1.34x (prefetch 512 B ahead: 1.25, 768 B: 1.19-1.31, 2 KiB:
 * 1.24-1.26). An earlier scratch benchmark had found one row a step faster (64-79 GB/s against
 * 57-60 with a four-row form); in the model, with ONNX Runtime's run between ours, it is not.
 * Per output, accumulators of 16 lanes summed horizontally at the end.
 * With A and B both bf16 (AVX512-BF16): 32 of K a step (one cache line of each row), pairs by
 * vdpbf16ps (widening B costs more instructions than memory leaves time for). */
static inline __attribute__((always_inline)) void nk_rows_dp(const uint16_t *a, const int R, size_t K,
                                                             const uint16_t *b, size_t N, size_t j0, size_t j1,
                                                             float *y) {
    for (; j0 + 4 <= j1; j0 += 4) {
        const uint16_t *br = b + j0 * K;
        __m512 acc[4][4];
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
        size_t i = 0;
        for (; i + 32 <= K; i += 32) {
            __m512i w[4];
            for (int q = 0; q < 4; q++) {
                _mm_prefetch((const char *)(br + (size_t)q * K + i) + MIXRT_FMV_PF_BYTES, _MM_HINT_T0);
                w[q] = _mm512_loadu_si512(br + (size_t)q * K + i);
            }
            for (int r = 0; r < R; r++) {
                const __m512i x = _mm512_loadu_si512(a + (size_t)r * K + i);
                for (int q = 0; q < 4; q++) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], (__m512bh)x, (__m512bh)w[q]);
            }
        }
        if (i < K) {
            const __mmask32 m = (__mmask32)((1u << (K - i)) - 1u);
            __m512i w[4];
            for (int q = 0; q < 4; q++) w[q] = _mm512_maskz_loadu_epi16(m, br + (size_t)q * K + i);
            for (int r = 0; r < R; r++) {
                const __m512i x = _mm512_maskz_loadu_epi16(m, a + (size_t)r * K + i);
                for (int q = 0; q < 4; q++) acc[r][q] = _mm512_dpbf16_ps(acc[r][q], (__m512bh)x, (__m512bh)w[q]);
            }
        }
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 4; q++) y[(size_t)r * N + j0 + (size_t)q] = _mm512_reduce_add_ps(acc[r][q]);
    }
    for (size_t j = j0; j < j1; j++) {
        const uint16_t *br = b + j * K;
        __m512 acc[4][2];
        for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        size_t i = 0;
        for (; i + 64 <= K; i += 64) {
            _mm_prefetch((const char *)(br + i) + MIXRT_FMV_PF_BYTES, _MM_HINT_T0);
            _mm_prefetch((const char *)(br + i) + MIXRT_FMV_PF_BYTES + 64, _MM_HINT_T0);
            const __m512i w0 = _mm512_loadu_si512(br + i), w1 = _mm512_loadu_si512(br + i + 32);
            for (int r = 0; r < R; r++) {
                const __m512i x0 = _mm512_loadu_si512(a + (size_t)r * K + i),
                              x1 = _mm512_loadu_si512(a + (size_t)r * K + i + 32);
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)x0, (__m512bh)w0);
                acc[r][1] = _mm512_dpbf16_ps(acc[r][1], (__m512bh)x1, (__m512bh)w1);
            }
        }
        for (; i < K; i += 32) {
            const __mmask32 m = K - i >= 32 ? (__mmask32)0xffffffffu : (__mmask32)((1u << (K - i)) - 1u);
            const __m512i w = _mm512_maskz_loadu_epi16(m, br + i);
            for (int r = 0; r < R; r++)
                acc[r][0] = _mm512_dpbf16_ps(acc[r][0], (__m512bh)_mm512_maskz_loadu_epi16(m, a + (size_t)r * K + i),
                                             (__m512bh)w);
        }
        for (int r = 0; r < R; r++) y[(size_t)r * N + j] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
    }
}

/* nk with f32 A: B f32, or bf16 widened exactly; four rows of B by 16 of K a step (a bf16 row's
 * line holds two steps: prefetched every other one), the rows left over by 32 of K. */
static inline __attribute__((always_inline)) void nk_rows(const float *a, const int R, size_t K, const void *b,
                                                          const bool bf, size_t N, size_t j0, size_t j1, float *y) {
    const size_t es = bf ? 2 : 4;
    for (; j0 + 4 <= j1; j0 += 4) {
        const size_t row = j0 * K;
        __m512 acc[4][4];
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 4; q++) acc[r][q] = _mm512_setzero_ps();
        size_t i = 0;
        for (; i + 16 <= K; i += 16) {
            __m512 w[4];
            for (int q = 0; q < 4; q++) {
                if (!bf || !(i & 16))
                    _mm_prefetch((const char *)b + (row + (size_t)q * K + i) * es + MIXRT_FMV_PF_BYTES, _MM_HINT_T0);
                w[q] = wload(b, row + (size_t)q * K + i, 0xffff, bf);
            }
            for (int r = 0; r < R; r++) {
                const __m512 x = _mm512_loadu_ps(a + (size_t)r * K + i);
                for (int q = 0; q < 4; q++) acc[r][q] = _mm512_fmadd_ps(x, w[q], acc[r][q]);
            }
        }
        if (i < K) {
            const __mmask16 m = mixrt_v512_mask(K - i);
            __m512 w[4];
            for (int q = 0; q < 4; q++) w[q] = wload(b, row + (size_t)q * K + i, m, bf);
            for (int r = 0; r < R; r++) {
                const __m512 x = _mm512_maskz_loadu_ps(m, a + (size_t)r * K + i);
                for (int q = 0; q < 4; q++) acc[r][q] = _mm512_fmadd_ps(x, w[q], acc[r][q]);
            }
        }
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 4; q++) y[(size_t)r * N + j0 + (size_t)q] = _mm512_reduce_add_ps(acc[r][q]);
    }
    for (size_t j = j0; j < j1; j++) {
        const size_t row = j * K;
        __m512 acc[4][2];
        for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        size_t i = 0;
        for (; i + 32 <= K; i += 32) {
            _mm_prefetch((const char *)b + (row + i) * es + MIXRT_FMV_PF_BYTES, _MM_HINT_T0);
            if (!bf) _mm_prefetch((const char *)b + (row + i) * es + MIXRT_FMV_PF_BYTES + 64, _MM_HINT_T0);
            const __m512 w0 = wload(b, row + i, 0xffff, bf), w1 = wload(b, row + i + 16, 0xffff, bf);
            for (int r = 0; r < R; r++) {
                acc[r][0] = _mm512_fmadd_ps(_mm512_loadu_ps(a + (size_t)r * K + i), w0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(_mm512_loadu_ps(a + (size_t)r * K + i + 16), w1, acc[r][1]);
            }
        }
        for (; i < K; i += 16) {
            const __mmask16 m = mixrt_v512_mask(K - i);
            const __m512 w = wload(b, row + i, m, bf);
            for (int r = 0; r < R; r++)
                acc[r][0] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + (size_t)r * K + i), w, acc[r][0]);
        }
        for (int r = 0; r < R; r++) y[(size_t)r * N + j] = _mm512_reduce_add_ps(_mm512_add_ps(acc[r][0], acc[r][1]));
    }
}

void mixrt_fmv_nk_dp_avx512(const uint16_t *a, int R, size_t K, const uint16_t *b, size_t N, size_t j0, size_t j1,
                            float *y) {
    switch (R) {
    case 1: nk_rows_dp(a, 1, K, b, N, j0, j1, y); break;
    case 2: nk_rows_dp(a, 2, K, b, N, j0, j1, y); break;
    case 3: nk_rows_dp(a, 3, K, b, N, j0, j1, y); break;
    default: nk_rows_dp(a, 4, K, b, N, j0, j1, y); break;
    }
}

void mixrt_fmv_kn_avx512(const float *a, int R, size_t K, const void *b, bool bf, size_t N, size_t j0, size_t j1,
                         float *y) {
    switch (R * 2 + bf) {
    case 2: kn_rows(a, 1, K, b, false, N, j0, j1, y); break;
    case 3: kn_rows(a, 1, K, b, true, N, j0, j1, y); break;
    case 4: kn_rows(a, 2, K, b, false, N, j0, j1, y); break;
    case 5: kn_rows(a, 2, K, b, true, N, j0, j1, y); break;
    case 6: kn_rows(a, 3, K, b, false, N, j0, j1, y); break;
    case 7: kn_rows(a, 3, K, b, true, N, j0, j1, y); break;
    case 8: kn_rows(a, 4, K, b, false, N, j0, j1, y); break;
    default: kn_rows(a, 4, K, b, true, N, j0, j1, y); break;
    }
}

void mixrt_fmv_kn_krange_avx512(const float *a, int R, size_t lda, size_t k0, size_t k1, const void *b, bool bf,
                                size_t N, float *y) {
    switch (R * 2 + bf) {
    case 2: kn_krange(a, 1, lda, k0, k1, b, false, N, 0, N, y); break;
    case 3: kn_krange(a, 1, lda, k0, k1, b, true, N, 0, N, y); break;
    case 4: kn_krange(a, 2, lda, k0, k1, b, false, N, 0, N, y); break;
    case 5: kn_krange(a, 2, lda, k0, k1, b, true, N, 0, N, y); break;
    case 6: kn_krange(a, 3, lda, k0, k1, b, false, N, 0, N, y); break;
    case 7: kn_krange(a, 3, lda, k0, k1, b, true, N, 0, N, y); break;
    case 8: kn_krange(a, 4, lda, k0, k1, b, false, N, 0, N, y); break;
    default: kn_krange(a, 4, lda, k0, k1, b, true, N, 0, N, y); break;
    }
}

void mixrt_fmv_nk_avx512(const float *a, int R, size_t K, const void *b, bool bf, size_t N, size_t j0, size_t j1,
                         float *y) {
    switch (R * 2 + bf) {
    case 2: nk_rows(a, 1, K, b, false, N, j0, j1, y); break;
    case 3: nk_rows(a, 1, K, b, true, N, j0, j1, y); break;
    case 4: nk_rows(a, 2, K, b, false, N, j0, j1, y); break;
    case 5: nk_rows(a, 2, K, b, true, N, j0, j1, y); break;
    case 6: nk_rows(a, 3, K, b, false, N, j0, j1, y); break;
    case 7: nk_rows(a, 3, K, b, true, N, j0, j1, y); break;
    case 8: nk_rows(a, 4, K, b, false, N, j0, j1, y); break;
    default: nk_rows(a, 4, K, b, true, N, j0, j1, y); break;
    }
}
#else
typedef int mixrt_gemv_avx512_unused; /* ISO C wants a declaration in every translation unit */
#endif
