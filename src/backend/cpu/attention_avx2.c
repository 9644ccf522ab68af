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
 * the 4 panel vectors read as memory operands: within the 16 ymm registers. */
#define TR 3

static inline void scores_tile(const float *q, size_t ldq, int rows, const float *panel, size_t d, float scale,
                               float *s, size_t lds) {
    __m256 acc[TR][4];
    for (int r = 0; r < TR; r++)
        for (int v = 0; v < 4; v++) acc[r][v] = _mm256_setzero_ps();
    for (size_t c = 0; c < d; c++) {
        const float *kc = panel + c * PANEL;
        __m256 k0 = _mm256_loadu_ps(kc), k1 = _mm256_loadu_ps(kc + 8), k2 = _mm256_loadu_ps(kc + 16),
               k3 = _mm256_loadu_ps(kc + 24);
        for (int r = 0; r < TR; r++) {
            if (r >= rows) break;
            __m256 b = _mm256_broadcast_ss(q + (size_t)r * ldq + c);
            acc[r][0] = _mm256_fmadd_ps(b, k0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(b, k1, acc[r][1]);
            acc[r][2] = _mm256_fmadd_ps(b, k2, acc[r][2]);
            acc[r][3] = _mm256_fmadd_ps(b, k3, acc[r][3]);
        }
    }
    __m256 sc = _mm256_set1_ps(scale);
    for (int r = 0; r < rows; r++)
        for (int v = 0; v < 4; v++) _mm256_storeu_ps(s + (size_t)r * lds + v * 8, _mm256_mul_ps(acc[r][v], sc));
}

/* s[r * lds + j] for j up to the next multiple of 32 (the panels are zero past n). */
void mixrt_attn_scores_avx2(const float *q, size_t ldq, int rows, const float *kp, size_t d, size_t n, float scale,
                            float *s, size_t lds) {
    for (size_t j0 = 0; j0 < n; j0 += PANEL)
        for (int r0 = 0; r0 < rows; r0 += TR)
            scores_tile(q + (size_t)r0 * ldq, ldq, rows - r0 < TR ? rows - r0 : TR, kp + j0 * d, d, scale,
                        s + (size_t)r0 * lds + j0, lds);
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
static inline void pv_tile(const float *p, size_t ldp, int rows, const float *panel, size_t n, const float *inv,
                           float *o, size_t ldo, size_t cols) {
    __m256 acc[TR][4];
    for (int r = 0; r < TR; r++)
        for (int v = 0; v < 4; v++) acc[r][v] = _mm256_setzero_ps();
    for (size_t j = 0; j < n; j++) {
        const float *vj = panel + j * PANEL;
        __m256 v0 = _mm256_loadu_ps(vj), v1 = _mm256_loadu_ps(vj + 8), v2 = _mm256_loadu_ps(vj + 16),
               v3 = _mm256_loadu_ps(vj + 24);
        for (int r = 0; r < TR; r++) {
            if (r >= rows) break;
            __m256 b = _mm256_broadcast_ss(p + (size_t)r * ldp + j);
            acc[r][0] = _mm256_fmadd_ps(b, v0, acc[r][0]);
            acc[r][1] = _mm256_fmadd_ps(b, v1, acc[r][1]);
            acc[r][2] = _mm256_fmadd_ps(b, v2, acc[r][2]);
            acc[r][3] = _mm256_fmadd_ps(b, v3, acc[r][3]);
        }
    }
    for (int r = 0; r < rows; r++) {
        __m256 sc = _mm256_set1_ps(inv[r]);
        float *orow = o + (size_t)r * ldo;
        if (cols == PANEL) {
            for (int v = 0; v < 4; v++) _mm256_storeu_ps(orow + v * 8, _mm256_mul_ps(acc[r][v], sc));
        } else {
            float tmp[PANEL];
            for (int v = 0; v < 4; v++) _mm256_storeu_ps(tmp + v * 8, _mm256_mul_ps(acc[r][v], sc));
            memcpy(orow, tmp, cols * sizeof(float));
        }
    }
}

void mixrt_attn_pv_avx2(const float *p, size_t ldp, int rows, const float *vp, size_t ldj, size_t n, size_t dv,
                        const float *inv, float *o, size_t ldo) {
    for (size_t c0 = 0; c0 < dv; c0 += PANEL)
        for (int r0 = 0; r0 < rows; r0 += TR)
            pv_tile(p + (size_t)r0 * ldp, ldp, rows - r0 < TR ? rows - r0 : TR, vp + c0 * ldj, n, inv + r0,
                    o + (size_t)r0 * ldo + c0, ldo, dv - c0 < PANEL ? dv - c0 : PANEL);
}

#endif /* __x86_64__ */
