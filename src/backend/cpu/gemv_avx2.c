/* gemv_avx2.c - AVX2 + FMA spans of the small-row products (gemv.c): the 1x1 convolution's
 * y += x W and fmm_gemv's y = A B for 1-4 rows, B f32 or bf16 (widened exactly), for x86-64
 * CPUs without AVX-512. 8 lanes; columns past the last full vector and K past the last full
 * step go through scalar fmas. Compiled with -mavx2 -mfma; gemv.c calls them only where the
 * CPU has AVX2 and FMA. */
#include "backend/cpu/gemv_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/vec_avx2.h"

static inline __attribute__((always_inline)) __m256 wload(const void *w, size_t p, const bool bf) {
    if (bf)
        return _mm256_castsi256_ps(
            _mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)((const uint16_t *)w + p))), 16));
    return _mm256_loadu_ps((const float *)w + p);
}

static inline float wat(const void *w, size_t p, const bool bf) {
    if (bf) {
        uint32_t u = (uint32_t)((const uint16_t *)w)[p] << 16;
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    return ((const float *)w)[p];
}

/* y [R][N], columns [j0, j1) (+)= a[:, k0:k1] B[k0:k1, :] with B [K][N] k-major and a's rows
 * lda apart; acc: add to y (the 1x1 conv's bias already there) or overwrite it. 32 columns
 * a step (R x 4 accumulators), then 8, then single columns. */
static inline __attribute__((always_inline)) void kn(const float *a, const int R, size_t lda, size_t k0, size_t k1,
                                                     const void *b, const bool bf, size_t N, size_t j0, size_t j1,
                                                     float *y, const bool acc_y) {
    size_t j = j0;
    for (; j + 32 <= j1; j += 32) {
        __m256 acc[4][4];
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 4; q++)
                acc[r][q] = acc_y ? _mm256_loadu_ps(y + (size_t)r * N + j + 8 * (size_t)q) : _mm256_setzero_ps();
        for (size_t i = k0; i < k1; i++) {
            const size_t p = i * N + j;
            /* B's strip is K rows N apart: the hardware prefetchers miss that stride from memory */
            if (i + 16 < k1) {
                __builtin_prefetch((const char *)b + (p + 16 * N) * (bf ? 2u : 4u), 0, 0);
                if (!bf) __builtin_prefetch((const char *)b + (p + 16 * N) * 4u + 64, 0, 0);
            }
            const __m256 w0 = wload(b, p, bf), w1 = wload(b, p + 8, bf), w2 = wload(b, p + 16, bf),
                         w3 = wload(b, p + 24, bf);
            for (int r = 0; r < R; r++) {
                const __m256 x = _mm256_set1_ps(a[(size_t)r * lda + i]);
                acc[r][0] = _mm256_fmadd_ps(x, w0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(x, w1, acc[r][1]);
                acc[r][2] = _mm256_fmadd_ps(x, w2, acc[r][2]);
                acc[r][3] = _mm256_fmadd_ps(x, w3, acc[r][3]);
            }
        }
        for (int r = 0; r < R; r++)
            for (int q = 0; q < 4; q++) _mm256_storeu_ps(y + (size_t)r * N + j + 8 * (size_t)q, acc[r][q]);
    }
    for (; j + 8 <= j1; j += 8) {
        __m256 acc[4];
        for (int r = 0; r < R; r++) acc[r] = acc_y ? _mm256_loadu_ps(y + (size_t)r * N + j) : _mm256_setzero_ps();
        for (size_t i = k0; i < k1; i++) {
            const __m256 w = wload(b, i * N + j, bf);
            for (int r = 0; r < R; r++) acc[r] = _mm256_fmadd_ps(_mm256_set1_ps(a[(size_t)r * lda + i]), w, acc[r]);
        }
        for (int r = 0; r < R; r++) _mm256_storeu_ps(y + (size_t)r * N + j, acc[r]);
    }
    for (; j < j1; j++)
        for (int r = 0; r < R; r++) {
            float s = acc_y ? y[(size_t)r * N + j] : 0.0f;
            for (size_t i = k0; i < k1; i++) s = fmaf(a[(size_t)r * lda + i], wat(b, i * N + j, bf), s);
            y[(size_t)r * N + j] = s;
        }
}

/* kn for one row of A over a block of B past the caches (a decoding step's products): B read
 * row by row, four rows a step, into y's columns held in L1 by chunks of 2048. kn's 32-column
 * strips read 64 bytes of every row of B (rows N apart), which the prefetchers follow badly
 * from memory: GPT-2's 48 products at one token ran at ~15 GB/s of bf16 that way. Every y is
 * the same fmas in the same order (k ascending, from zero) as kn's. */
static inline __attribute__((always_inline)) void kn_rows(const float *a, size_t k0, size_t k1, const void *b,
                                                          const bool bf, size_t N, size_t j0, size_t j1, float *y) {
    enum { CH = 2048 };
    for (size_t c0 = j0; c0 < j1; c0 += CH) {
        const size_t c1 = c0 + CH < j1 ? c0 + CH : j1;
        memset(y + c0, 0, (c1 - c0) * sizeof(float));
        size_t i = k0;
        for (; i + 4 <= k1; i += 4) {
            const __m256 x0 = _mm256_set1_ps(a[i]), x1 = _mm256_set1_ps(a[i + 1]), x2 = _mm256_set1_ps(a[i + 2]),
                         x3 = _mm256_set1_ps(a[i + 3]);
            const size_t p = i * N;
            size_t j = c0;
            for (; j + 8 <= c1; j += 8) {
                __m256 acc = _mm256_loadu_ps(y + j);
                acc = _mm256_fmadd_ps(x0, wload(b, p + j, bf), acc);
                acc = _mm256_fmadd_ps(x1, wload(b, p + N + j, bf), acc);
                acc = _mm256_fmadd_ps(x2, wload(b, p + 2 * N + j, bf), acc);
                acc = _mm256_fmadd_ps(x3, wload(b, p + 3 * N + j, bf), acc);
                _mm256_storeu_ps(y + j, acc);
            }
            for (; j < c1; j++) {
                float s = y[j];
                for (size_t q = 0; q < 4; q++) s = fmaf(a[i + q], wat(b, p + q * N + j, bf), s);
                y[j] = s;
            }
        }
        for (; i < k1; i++) {
            const __m256 x = _mm256_set1_ps(a[i]);
            const size_t p = i * N;
            size_t j = c0;
            for (; j + 8 <= c1; j += 8) _mm256_storeu_ps(y + j, _mm256_fmadd_ps(x, wload(b, p + j, bf), _mm256_loadu_ps(y + j)));
            for (; j < c1; j++) y[j] = fmaf(a[i], wat(b, p + j, bf), y[j]);
        }
    }
}

/* Whether a block of B of rows [k0, k1) is past the caches' reach for kn's strips. */
static inline bool rows_wanted(int R, size_t k0, size_t k1, size_t N, bool bf) {
    return R == 1 && (k1 - k0) * N * (bf ? 2u : 4u) >= ((size_t)1 << 20);
}

/* y [R][N], columns [j0, j1) = A B^T with B [N][K]: one row of B at a time, so that a thread's
 * share of B (contiguous rows) is one linear stream, prefetched MIXRT_FMV_PF_BYTES ahead (as the
 * AVX-512 nk in gemv_avx512.c; four rows a step made four streams); 16 of K a step in two
 * accumulators per row of A, one horizontal sum per output, K's tail by scalar fmas. */
static inline __attribute__((always_inline)) void nk(const float *a, const int R, size_t K, const void *b,
                                                     const bool bf, size_t N, size_t j0, size_t j1, float *y) {
    const size_t kv = K & ~(size_t)15, es = bf ? 2 : 4;
    for (size_t j = j0; j < j1; j++) {
        const size_t row = j * K;
        __m256 acc[4][2];
        for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
        for (size_t i = 0; i < kv; i += 16) {
            _mm_prefetch((const char *)b + (row + i) * es + MIXRT_FMV_PF_BYTES, _MM_HINT_T0);
            if (!bf) _mm_prefetch((const char *)b + (row + i) * es + MIXRT_FMV_PF_BYTES + 32, _MM_HINT_T0);
            const __m256 w0 = wload(b, row + i, bf), w1 = wload(b, row + i + 8, bf);
            for (int r = 0; r < R; r++) {
                acc[r][0] = _mm256_fmadd_ps(_mm256_loadu_ps(a + (size_t)r * K + i), w0, acc[r][0]);
                acc[r][1] = _mm256_fmadd_ps(_mm256_loadu_ps(a + (size_t)r * K + i + 8), w1, acc[r][1]);
            }
        }
        for (int r = 0; r < R; r++) {
            float s = mixrt_v256_hsum(_mm256_add_ps(acc[r][0], acc[r][1]));
            for (size_t i = kv; i < K; i++) s = fmaf(a[(size_t)r * K + i], wat(b, row + i, bf), s);
            y[(size_t)r * N + j] = s;
        }
    }
}

void mixrt_gemv_row_avx2(const float *x, size_t k, const float *w, size_t m, float *y) {
    kn(x, 1, k, 0, k, w, false, m, 0, m, y, true);
}

void mixrt_gemv_row_bf16w_avx2(const float *x, size_t k, const uint16_t *w, size_t m, float *y) {
    kn(x, 1, k, 0, k, w, true, m, 0, m, y, true);
}

#define BY_R(CALL_F32, CALL_BF)                                                                                        \
    switch (R * 2 + bf) {                                                                                              \
    case 2: CALL_F32(1); break;                                                                                        \
    case 3: CALL_BF(1); break;                                                                                         \
    case 4: CALL_F32(2); break;                                                                                        \
    case 5: CALL_BF(2); break;                                                                                         \
    case 6: CALL_F32(3); break;                                                                                        \
    case 7: CALL_BF(3); break;                                                                                         \
    case 8: CALL_F32(4); break;                                                                                        \
    default: CALL_BF(4); break;                                                                                        \
    }

void mixrt_fmv_kn_avx2(const float *a, int R, size_t K, const void *b, bool bf, size_t N, size_t j0, size_t j1,
                       float *y) {
    if (rows_wanted(R, 0, K, j1 - j0, bf)) {
        if (bf) kn_rows(a, 0, K, b, true, N, j0, j1, y);
        else kn_rows(a, 0, K, b, false, N, j0, j1, y);
        return;
    }
#define F(RR) kn(a, RR, K, 0, K, b, false, N, j0, j1, y, false)
#define B(RR) kn(a, RR, K, 0, K, b, true, N, j0, j1, y, false)
    BY_R(F, B)
#undef F
#undef B
}

void mixrt_fmv_kn_krange_avx2(const float *a, int R, size_t lda, size_t k0, size_t k1, const void *b, bool bf,
                              size_t N, float *y) {
    if (rows_wanted(R, k0, k1, N, bf)) {
        if (bf) kn_rows(a, k0, k1, b, true, N, 0, N, y);
        else kn_rows(a, k0, k1, b, false, N, 0, N, y);
        return;
    }
#define F(RR) kn(a, RR, lda, k0, k1, b, false, N, 0, N, y, false)
#define B(RR) kn(a, RR, lda, k0, k1, b, true, N, 0, N, y, false)
    BY_R(F, B)
#undef F
#undef B
}

void mixrt_fmv_nk_avx2(const float *a, int R, size_t K, const void *b, bool bf, size_t N, size_t j0, size_t j1,
                       float *y) {
#define F(RR) nk(a, RR, K, b, false, N, j0, j1, y)
#define B(RR) nk(a, RR, K, b, true, N, j0, j1, y)
    BY_R(F, B)
#undef F
#undef B
}
#else
typedef int mixrt_gemv_avx2_unused; /* ISO C wants a declaration in every translation unit */
#endif
