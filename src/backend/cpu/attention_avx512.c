/* attention_avx512.c - the AVX-512 twins of the Attention block primitives (attention.c):
 * register-blocked scores (4 query rows x 32 keys) and P.V (4 rows x 64 columns) with FMA,
 * and a fused max / exp / sum. Tails are masked. Compiled with AVX-512 flags; reached only
 * through mixrt_attention_isa() after its CPUID check. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>

#include "backend/cpu/attention_impl.h"

static inline __mmask16 tail_mask(size_t k) { return k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << k) - 1u); }

/* s rows for R query rows (R <= 4) over keys [0, n), 32 then 16 at a time; kt rows are
 * ldk >= round16(n) long, so the last 16-block reads padding, never past the row. */
static inline __attribute__((always_inline)) void scores_rows(const float *q, const int R, const float *kt,
                                                              size_t ldk, size_t d, size_t n, float *s, size_t lds) {
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 acc[4][2];
        for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        const float *kp = kt + j;
        for (size_t c = 0; c < d; c++, kp += ldk) {
            __m512 k0 = _mm512_loadu_ps(kp), k1 = _mm512_loadu_ps(kp + 16);
            for (int r = 0; r < R; r++) {
                __m512 qv = _mm512_set1_ps(q[(size_t)r * d + c]);
                acc[r][0] = _mm512_fmadd_ps(qv, k0, acc[r][0]);
                acc[r][1] = _mm512_fmadd_ps(qv, k1, acc[r][1]);
            }
        }
        for (int r = 0; r < R; r++) {
            _mm512_storeu_ps(s + (size_t)r * lds + j, acc[r][0]);
            _mm512_storeu_ps(s + (size_t)r * lds + j + 16, acc[r][1]);
        }
    }
    for (; j < n; j += 16) {
        __m512 acc[4];
        for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
        const float *kp = kt + j;
        for (size_t c = 0; c < d; c++, kp += ldk) {
            __m512 k0 = _mm512_loadu_ps(kp);
            for (int r = 0; r < R; r++) acc[r] = _mm512_fmadd_ps(_mm512_set1_ps(q[(size_t)r * d + c]), k0, acc[r]);
        }
        __mmask16 m = tail_mask(n - j);
        for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(s + (size_t)r * lds + j, m, acc[r]);
    }
}

static void scores_avx512(const float *q, int rows, const float *kt, size_t ldk, size_t d, size_t n, float *s,
                          size_t lds) {
    switch (rows) {
    case 4: scores_rows(q, 4, kt, ldk, d, n, s, lds); break;
    case 3: scores_rows(q, 3, kt, ldk, d, n, s, lds); break;
    case 2: scores_rows(q, 2, kt, ldk, d, n, s, lds); break;
    default:
        for (int r = 0; r < rows; r++) scores_rows(q + (size_t)r * d, 1, kt, ldk, d, n, s + (size_t)r * lds, lds);
        break;
    }
}

/* exp(x) for x <= 0 or NaN: 2^k * e^f with |f| <= ln2/2 (degree-6 Taylor, ~2 ulp);
 * x below -104 gives 0, NaN stays NaN (max keeps its second operand when one is NaN). */
static inline __m512 exp_neg(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    __m512 kf = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_fnmadd_ps(kf, _mm512_set1_ps(0.693359375f), x);
    f = _mm512_fnmadd_ps(kf, _mm512_set1_ps(-2.12194440e-4f), f);
    __m512 p = _mm512_set1_ps(1.0f / 720.0f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 120.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 24.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, kf);
}

/* One past the highest set lane of m in a 16-block at j (0 when m is empty). */
static inline size_t last_lane(__mmask16 m, size_t j, size_t cur) {
    return m ? j + 32 - (size_t)__builtin_clz((unsigned)m) : cur;
}

static float exp_sum_avx512(float *s, size_t n, float *mx, size_t *nz) {
    __m512 m = _mm512_set1_ps(-INFINITY);
    __mmask16 nan = 0;
    size_t j = 0;
    for (; j + 16 <= n; j += 16) {
        __m512 x = _mm512_loadu_ps(s + j);
        nan |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, x);
    }
    if (j < n) {
        __mmask16 t = tail_mask(n - j);
        __m512 x = _mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), t, s + j);
        nan |= _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
        m = _mm512_max_ps(m, x);
    }
    float mv = nan ? NAN : _mm512_reduce_max_ps(m);
    __m512 vm = _mm512_set1_ps(mv), a0 = _mm512_setzero_ps(), a1 = a0, zero = _mm512_setzero_ps();
    size_t last = 0;
    for (j = 0; j + 32 <= n; j += 32) {
        __m512 e0 = exp_neg(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
        __m512 e1 = exp_neg(_mm512_sub_ps(_mm512_loadu_ps(s + j + 16), vm));
        _mm512_storeu_ps(s + j, e0);
        _mm512_storeu_ps(s + j + 16, e1);
        a0 = _mm512_add_ps(a0, e0);
        a1 = _mm512_add_ps(a1, e1);
        last = last_lane(_mm512_cmp_ps_mask(e0, zero, _CMP_NEQ_UQ), j, last);
        last = last_lane(_mm512_cmp_ps_mask(e1, zero, _CMP_NEQ_UQ), j + 16, last);
    }
    for (; j < n; j += 16) {
        __mmask16 t = tail_mask(n - j);
        __m512 e = exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, s + j), vm));
        _mm512_mask_storeu_ps(s + j, t, e);
        a0 = _mm512_mask_add_ps(a0, t, a0, e);
        last = last_lane(_mm512_mask_cmp_ps_mask(t, e, zero, _CMP_NEQ_UQ), j, last);
    }
    *mx = mv;
    *nz = last;
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

/* o rows for R rows (R <= 4) over columns [c0, c0 + 16 * nv), nv <= 4, the last masked. */
static inline __attribute__((always_inline)) void pv_block(const float *p, const int R, size_t ldp, const float *v,
                                                           size_t ldv, size_t n, size_t dv, float *o, size_t c0,
                                                           int nv, __mmask16 last) {
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < nv; t++) acc[r][t] = _mm512_setzero_ps();
    const float *vp = v + c0;
    for (size_t j = 0; j < n; j++, vp += ldv) {
        __m512 vv[4];
        for (int t = 0; t < nv; t++)
            vv[t] = t == nv - 1 ? _mm512_maskz_loadu_ps(last, vp + 16 * t) : _mm512_loadu_ps(vp + 16 * t);
        for (int r = 0; r < R; r++) {
            __m512 pb = _mm512_set1_ps(p[(size_t)r * ldp + j]);
            for (int t = 0; t < nv; t++) acc[r][t] = _mm512_fmadd_ps(pb, vv[t], acc[r][t]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < nv; t++)
            _mm512_mask_storeu_ps(o + (size_t)r * dv + c0 + 16 * (size_t)t, t == nv - 1 ? last : (__mmask16)0xffff,
                                  acc[r][t]);
}

static inline __attribute__((always_inline)) void pv_rows(const float *p, const int R, size_t ldp, const float *v,
                                                          size_t ldv, size_t n, size_t dv, float *o) {
    for (size_t c0 = 0; c0 < dv; c0 += 64) {
        size_t w = dv - c0 < 64 ? dv - c0 : 64;
        int nv = (int)((w + 15) / 16);
        __mmask16 last = tail_mask(w - 16 * (size_t)(nv - 1));
        switch (nv) {
        case 4: pv_block(p, R, ldp, v, ldv, n, dv, o, c0, 4, last); break;
        case 3: pv_block(p, R, ldp, v, ldv, n, dv, o, c0, 3, last); break;
        case 2: pv_block(p, R, ldp, v, ldv, n, dv, o, c0, 2, last); break;
        default: pv_block(p, R, ldp, v, ldv, n, dv, o, c0, 1, last); break;
        }
    }
}

static void pv_avx512(const float *p, int rows, size_t ldp, const float *v, size_t ldv, size_t n, size_t dv,
                      float *o) {
    switch (rows) {
    case 4: pv_rows(p, 4, ldp, v, ldv, n, dv, o); break;
    case 3: pv_rows(p, 3, ldp, v, ldv, n, dv, o); break;
    case 2: pv_rows(p, 2, ldp, v, ldv, n, dv, o); break;
    default:
        for (int r = 0; r < rows; r++) pv_rows(p + (size_t)r * ldp, 1, ldp, v, ldv, n, dv, o + (size_t)r * dv);
        break;
    }
}

/* ---- bf16 pairs with vdpbf16ps ---- */

static inline __m512 dp_pair(__m512 acc, const uint32_t *pairs16, uint32_t bcast) {
    return _mm512_dpbf16_ps(acc, (__m512bh)_mm512_loadu_si512(pairs16), (__m512bh)_mm512_set1_epi32((int)bcast));
}

static inline __attribute__((always_inline)) void scores_bf16_rows(const uint32_t *qp, const int R, size_t dp,
                                                                   const uint32_t *kp, size_t ldk, size_t n, float *s,
                                                                   size_t lds) {
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 acc[4][2];
        for (int r = 0; r < R; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
        const uint32_t *kr = kp + j;
        for (size_t t = 0; t < dp; t++, kr += ldk)
            for (int r = 0; r < R; r++) {
                uint32_t q2 = qp[(size_t)r * dp + t];
                acc[r][0] = dp_pair(acc[r][0], kr, q2);
                acc[r][1] = dp_pair(acc[r][1], kr + 16, q2);
            }
        for (int r = 0; r < R; r++) {
            _mm512_storeu_ps(s + (size_t)r * lds + j, acc[r][0]);
            _mm512_storeu_ps(s + (size_t)r * lds + j + 16, acc[r][1]);
        }
    }
    for (; j < n; j += 16) {
        __m512 acc[4];
        for (int r = 0; r < R; r++) acc[r] = _mm512_setzero_ps();
        const uint32_t *kr = kp + j;
        for (size_t t = 0; t < dp; t++, kr += ldk)
            for (int r = 0; r < R; r++) acc[r] = dp_pair(acc[r], kr, qp[(size_t)r * dp + t]);
        __mmask16 m = tail_mask(n - j);
        for (int r = 0; r < R; r++) _mm512_mask_storeu_ps(s + (size_t)r * lds + j, m, acc[r]);
    }
}

static void scores_bf16_avx512(const uint32_t *qp, int rows, size_t dp, const uint32_t *kp, size_t ldk, size_t n,
                               float *s, size_t lds) {
    switch (rows) {
    case 4: scores_bf16_rows(qp, 4, dp, kp, ldk, n, s, lds); break;
    case 3: scores_bf16_rows(qp, 3, dp, kp, ldk, n, s, lds); break;
    case 2: scores_bf16_rows(qp, 2, dp, kp, ldk, n, s, lds); break;
    default:
        for (int r = 0; r < rows; r++)
            scores_bf16_rows(qp + (size_t)r * dp, 1, dp, kp, ldk, n, s + (size_t)r * lds, lds);
        break;
    }
}

/* Columns [c0, c0 + 16 * nv) of R rows; vp rows are ldv (>= c0 + 16 * nv) pairs long. */
static inline __attribute__((always_inline)) void pv_bf16_block(const uint32_t *pp, const int R, size_t ldp,
                                                                const uint32_t *vp, size_t ldv, size_t np, size_t dv,
                                                                float *o, size_t c0, int nv, __mmask16 last) {
    __m512 acc[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < nv; t++) acc[r][t] = _mm512_setzero_ps();
    const uint32_t *vr = vp + c0;
    for (size_t j = 0; j < np; j++, vr += ldv)
        for (int r = 0; r < R; r++) {
            uint32_t p2 = pp[(size_t)r * ldp + j];
            for (int t = 0; t < nv; t++) acc[r][t] = dp_pair(acc[r][t], vr + 16 * t, p2);
        }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < nv; t++)
            _mm512_mask_storeu_ps(o + (size_t)r * dv + c0 + 16 * (size_t)t, t == nv - 1 ? last : (__mmask16)0xffff,
                                  acc[r][t]);
}

static inline __attribute__((always_inline)) void pv_bf16_rows(const uint32_t *pp, const int R, size_t ldp,
                                                               const uint32_t *vp, size_t ldv, size_t np, size_t dv,
                                                               float *o) {
    for (size_t c0 = 0; c0 < dv; c0 += 64) {
        size_t w = dv - c0 < 64 ? dv - c0 : 64;
        int nv = (int)((w + 15) / 16);
        __mmask16 last = tail_mask(w - 16 * (size_t)(nv - 1));
        switch (nv) {
        case 4: pv_bf16_block(pp, R, ldp, vp, ldv, np, dv, o, c0, 4, last); break;
        case 3: pv_bf16_block(pp, R, ldp, vp, ldv, np, dv, o, c0, 3, last); break;
        case 2: pv_bf16_block(pp, R, ldp, vp, ldv, np, dv, o, c0, 2, last); break;
        default: pv_bf16_block(pp, R, ldp, vp, ldv, np, dv, o, c0, 1, last); break;
        }
    }
}

static void pv_bf16_avx512(const uint32_t *pp, int rows, size_t ldp, const uint32_t *vp, size_t ldv, size_t np,
                           size_t dv, float *o) {
    switch (rows) {
    case 4: pv_bf16_rows(pp, 4, ldp, vp, ldv, np, dv, o); break;
    case 3: pv_bf16_rows(pp, 3, ldp, vp, ldv, np, dv, o); break;
    case 2: pv_bf16_rows(pp, 2, ldp, vp, ldv, np, dv, o); break;
    default:
        for (int r = 0; r < rows; r++) pv_bf16_rows(pp + (size_t)r * ldp, 1, ldp, vp, ldv, np, dv, o + (size_t)r * dv);
        break;
    }
}

const struct mixrt_attention_isa mixrt_attention_isa_avx512 = {"avx512",  scores_avx512, exp_sum_avx512,
                                                               pv_avx512, NULL,          NULL};
const struct mixrt_attention_isa mixrt_attention_isa_avx512bf16 = {
    "avx512bf16", scores_avx512, exp_sum_avx512, pv_avx512, scores_bf16_avx512, pv_bf16_avx512};

#endif /* __x86_64__ */
