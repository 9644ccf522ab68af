/* attention_avx2.c - AVX2 + FMA twins of the f32 block primitives of the Attention kernel
 * (scores, softmax, P.V) for x86-64 CPUs without AVX-512 (Zen 2 / 3, most client chips): the
 * scalar twins ran BERT-base's attention at ~2 GFLOP/s on a Zen 3. Compiled with -mavx2
 * -mfma; reached only through mixrt_attention_isa() after its CPUID check. The bf16 pair
 * primitives and the packing stay the scalar ones (such CPUs have no bf16 dot product). */
#include "backend/cpu/attention_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "core/vec_avx2.h"

#define PANEL MIXRT_ATTN_PANEL

/* Rows per register tile: 3 rows x 4 vectors of 8 = 12 accumulators, a broadcast, and
 * the 4 panel vectors: within the 16 ymm registers. The accumulators are named variables and
 * the row count a constant of each instance (as arrays indexed in loops that stop at `rows`,
 * gcc 12 kept them on the stack, a store per fma: BERT-base's attention at ~44 GFLOP/s). */
#define TR 3

/* One row of the 3 x 32 register tile: scale * its 4 vectors into dst (cols of them, <= 32). */
static inline __attribute__((always_inline)) void row_store(float *dst, __m256 x0, __m256 x1, __m256 x2, __m256 x3,
                                                            __m256 sc, size_t cols) {
    x0 = _mm256_mul_ps(x0, sc), x1 = _mm256_mul_ps(x1, sc), x2 = _mm256_mul_ps(x2, sc), x3 = _mm256_mul_ps(x3, sc);
    if (cols == PANEL) {
        _mm256_storeu_ps(dst, x0), _mm256_storeu_ps(dst + 8, x1);
        _mm256_storeu_ps(dst + 16, x2), _mm256_storeu_ps(dst + 24, x3);
        return;
    }
    float tmp[PANEL];
    _mm256_storeu_ps(tmp, x0), _mm256_storeu_ps(tmp + 8, x1), _mm256_storeu_ps(tmp + 16, x2);
    _mm256_storeu_ps(tmp + 24, x3);
    memcpy(dst, tmp, cols * sizeof(float));
}

/* acc_r += x[r * ldx + t] * panel[t * 32 .. + 32) for t < n, rows r < R; then row_store of each
 * row with scale sc(r) into out + r * ldo. */
#define TILE_BODY(R, x, ldx, panel, n, sc, out, ldo, cols)                                                             \
    do {                                                                                                               \
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00,            \
               a13 = a00, a20 = a00, a21 = a00, a22 = a00, a23 = a00;                                                  \
        const float *x0 = (x), *x1 = R > 1 ? x0 + (ldx) : x0, *x2 = R > 2 ? x0 + 2 * (ldx) : x0;                       \
        for (size_t t = 0; t < (n); t++) {                                                                             \
            const float *pt = (panel) + t * PANEL;                                                                     \
            const __m256 v0 = _mm256_loadu_ps(pt), v1 = _mm256_loadu_ps(pt + 8), v2 = _mm256_loadu_ps(pt + 16),       \
                         v3 = _mm256_loadu_ps(pt + 24);                                                                \
            __m256 b = _mm256_broadcast_ss(x0 + t);                                                                    \
            a00 = _mm256_fmadd_ps(b, v0, a00), a01 = _mm256_fmadd_ps(b, v1, a01);                                      \
            a02 = _mm256_fmadd_ps(b, v2, a02), a03 = _mm256_fmadd_ps(b, v3, a03);                                      \
            if (R > 1) {                                                                                               \
                b = _mm256_broadcast_ss(x1 + t);                                                                       \
                a10 = _mm256_fmadd_ps(b, v0, a10), a11 = _mm256_fmadd_ps(b, v1, a11);                                  \
                a12 = _mm256_fmadd_ps(b, v2, a12), a13 = _mm256_fmadd_ps(b, v3, a13);                                  \
            }                                                                                                          \
            if (R > 2) {                                                                                               \
                b = _mm256_broadcast_ss(x2 + t);                                                                       \
                a20 = _mm256_fmadd_ps(b, v0, a20), a21 = _mm256_fmadd_ps(b, v1, a21);                                  \
                a22 = _mm256_fmadd_ps(b, v2, a22), a23 = _mm256_fmadd_ps(b, v3, a23);                                  \
            }                                                                                                          \
        }                                                                                                              \
        row_store((out), a00, a01, a02, a03, sc(0), cols);                                                             \
        if (R > 1) row_store((out) + (ldo), a10, a11, a12, a13, sc(1), cols);                                          \
        if (R > 2) row_store((out) + 2 * (ldo), a20, a21, a22, a23, sc(2), cols);                                      \
    } while (0)

static inline __attribute__((always_inline)) void scores_tile(const int R, const float *q, size_t ldq,
                                                              const float *panel, size_t d, float scale, float *s,
                                                              size_t lds) {
    const __m256 vs = _mm256_set1_ps(scale);
#define SCORE_SCALE(r) vs
    TILE_BODY(R, q, ldq, panel, d, SCORE_SCALE, s, lds, PANEL);
#undef SCORE_SCALE
}

/* s[r * lds + j] for j up to the next multiple of 32 (the panels are zero past n). */
void mixrt_attn_scores_avx2(const float *q, size_t ldq, int rows, const float *kp, size_t d, size_t n, float scale,
                            float *s, size_t lds) {
    for (size_t j0 = 0; j0 < n; j0 += PANEL)
        for (int r0 = 0; r0 < rows; r0 += TR) {
            const float *qr = q + (size_t)r0 * ldq, *panel = kp + j0 * d;
            float *sr = s + (size_t)r0 * lds + j0;
            switch (rows - r0 < TR ? rows - r0 : TR) {
            case 3: scores_tile(3, qr, ldq, panel, d, scale, sr, lds); break;
            case 2: scores_tile(2, qr, ldq, panel, d, scale, sr, lds); break;
            default: scores_tile(1, qr, ldq, panel, d, scale, sr, lds); break;
            }
        }
}

static bool softmax_row(float *sr, size_t n, float *inv) {
    __m256 mx = _mm256_set1_ps(-INFINITY), nan = _mm256_setzero_ps();
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        __m256 v = _mm256_loadu_ps(sr + j);
        nan = _mm256_or_ps(nan, _mm256_cmp_ps(v, v, _CMP_UNORD_Q));
        mx = _mm256_max_ps(mx, v);
    }
    float m = mixrt_v256_hmax(mx);
    bool bad = _mm256_movemask_ps(nan) != 0;
    for (; j < n; j++) {
        bad = bad || sr[j] != sr[j];
        m = sr[j] > m ? sr[j] : m;
    }
    if (bad || !(m > -INFINITY) || m == INFINITY) return false;
    __m256 vm = _mm256_set1_ps(m), sum = _mm256_setzero_ps();
    for (j = 0; j + 8 <= n; j += 8) {
        __m256 e = mixrt_v256_exp(_mm256_sub_ps(_mm256_loadu_ps(sr + j), vm));
        _mm256_storeu_ps(sr + j, e);
        sum = _mm256_add_ps(sum, e);
    }
    float total = mixrt_v256_hsum(sum);
    if (j < n) {
        float tail[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
        memcpy(tail, sr + j, (n - j) * sizeof(float));
        __m256 e = mixrt_v256_exp(_mm256_sub_ps(_mm256_loadu_ps(tail), vm));
        _mm256_storeu_ps(tail, e);
        memcpy(sr + j, tail, (n - j) * sizeof(float));
        total += mixrt_v256_hsum(e);
    }
    *inv = 1.0f / total;
    return true;
}

void mixrt_attn_softmax_avx2(float *s, size_t lds, int rows, size_t n, float *inv) {
    for (int r = 0; r < rows; r++)
        if (!softmax_row(s + (size_t)r * lds, n, inv + r))
            mixrt_attention_isa_scalar.softmax(s + (size_t)r * lds, lds, 1, n, inv + r);
}

/* o = inv * P V for up to TR rows and one 32-column panel of V (cols <= 32 of them kept). */
static inline __attribute__((always_inline)) void pv_tile(const int R, const float *p, size_t ldp, const float *panel,
                                                          size_t n, const float *inv, float *o, size_t ldo,
                                                          size_t cols) {
#define PV_SCALE(r) _mm256_set1_ps(inv[r])
    TILE_BODY(R, p, ldp, panel, n, PV_SCALE, o, ldo, cols);
#undef PV_SCALE
}

void mixrt_attn_pv_avx2(const float *p, size_t ldp, int rows, const float *vp, size_t ldj, size_t n, size_t dv,
                        const float *inv, float *o, size_t ldo) {
    for (size_t c0 = 0; c0 < dv; c0 += PANEL)
        for (int r0 = 0; r0 < rows; r0 += TR) {
            const float *pr = p + (size_t)r0 * ldp, *panel = vp + c0 * ldj;
            float *orow = o + (size_t)r0 * ldo + c0;
            const size_t cols = dv - c0 < PANEL ? dv - c0 : PANEL;
            switch (rows - r0 < TR ? rows - r0 : TR) {
            case 3: pv_tile(3, pr, ldp, panel, n, inv + r0, orow, ldo, cols); break;
            case 2: pv_tile(2, pr, ldp, panel, n, inv + r0, orow, ldo, cols); break;
            default: pv_tile(1, pr, ldp, panel, n, inv + r0, orow, ldo, cols); break;
            }
        }
}

#endif /* __x86_64__ */
