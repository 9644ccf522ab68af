/* attention_avx512.c - the AVX-512 twins of the Attention block primitives (attention.c):
 * register tiles of 12 query rows x 32 keys (scores) and 12 rows x 32 columns (P.V) with 24
 * accumulators (2 panel loads and 12 broadcasts per 24 FMAs) over K / V panels packed once per
 * head (32 wide); softmax over a block's rows at once; a 16 x 16 transpose for packing K.
 * Compiled with AVX-512 flags; reached only through mixrt_attention_isa() after its CPUID
 * check. */
#if defined(__x86_64__)
#include <immintrin.h>
#include <math.h>
#include <stdbool.h>
#include <string.h>

#include "backend/cpu/attention_impl.h"
#include "core/vec_avx512.h"

#define AI static inline __attribute__((always_inline))
#define PANEL MIXRT_ATTN_PANEL
#define TILE_ROWS 12 /* register tile height (24 accumulators of 32); blocks are split into these */


static inline uint32_t ld32(const uint32_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

/* ---- f32 ---------------------------------------------------------------------------------- */

/* Scores of R rows against one K panel: NV (1 or 2) vectors of 16 keys. */
AI void scores_tile(const float *q, size_t ldq, const int R, const float *panel, size_t d, const int NV, __m512 scale,
                    float *s, size_t lds) {
    __m512 acc[TILE_ROWS][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    const float *kr = panel;
    for (size_t c = 0; c < d; c++, kr += PANEL) {
        __m512 k0 = _mm512_loadu_ps(kr), k1 = NV > 1 ? _mm512_loadu_ps(kr + 16) : k0;
        for (int r = 0; r < R; r++) {
            __m512 qv = _mm512_set1_ps(q[(size_t)r * ldq + c]);
            acc[r][0] = _mm512_fmadd_ps(qv, k0, acc[r][0]);
            if (NV > 1) acc[r][1] = _mm512_fmadd_ps(qv, k1, acc[r][1]);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(s + (size_t)r * lds + 16 * v, _mm512_mul_ps(acc[r][v], scale));
}

/* One K panel against every 12-row group of the block: the panel (32 keys x D) stays in L1
 * while the groups reuse it. */
static void scores_avx512(const float *q, size_t ldq, int rows, const float *kp, size_t d, size_t n, float scale,
                          float *s, size_t lds) {
    __m512 vs = _mm512_set1_ps(scale);
    for (size_t j = 0; j < n; j += PANEL) {
        const float *panel = kp + j * d;
        bool two = n - j > 16;
        for (int r0 = 0; r0 < rows; r0 += TILE_ROWS) {
            const float *qr = q + (size_t)r0 * ldq;
            float *sr = s + (size_t)r0 * lds + j;
            switch ((rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS) * 2 + two) {
#define SCORES_CASE(R)                                                                                                 \
    case 2 * R: scores_tile(qr, ldq, R, panel, d, 1, vs, sr, lds); break;                                             \
    case 2 * R + 1: scores_tile(qr, ldq, R, panel, d, 2, vs, sr, lds); break;
                SCORES_CASE(12) SCORES_CASE(11) SCORES_CASE(10) SCORES_CASE(9) SCORES_CASE(8) SCORES_CASE(7) SCORES_CASE(6) SCORES_CASE(5)
                SCORES_CASE(4) SCORES_CASE(3) SCORES_CASE(2) SCORES_CASE(1)
            default: break;
            }
        }
    }
}

/* exp(x) for x <= 0 or NaN: 2^k * e^f with |f| <= ln2/2 (degree-6 Taylor, ~2 ulp);
 * x below -104 gives 0, NaN stays NaN (max keeps its second operand when one is NaN). */
AI __m512 exp_neg(__m512 x) {
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

/* max(s[0..n)) ignoring NaNs (-inf for n == 0 or all NaN): a NaN score still makes its
 * exp, the row's sum and so its whole output row NaN, as the reference softmax does.
 * max_ps(x, m) returns m when x is NaN. */
static inline float row_max(const float *s, size_t n) {
    __m512 m0 = _mm512_set1_ps(-INFINITY), m1 = m0;
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        m0 = _mm512_max_ps(_mm512_loadu_ps(s + j), m0);
        m1 = _mm512_max_ps(_mm512_loadu_ps(s + j + 16), m1);
    }
    for (; j < n; j += 16) m0 = _mm512_max_ps(_mm512_mask_loadu_ps(_mm512_set1_ps(-INFINITY), mixrt_v512_mask(n - j), s + j), m0);
    return _mm512_reduce_max_ps(_mm512_max_ps(m0, m1));
}

/* exp(s - m) in place over s[0..n); returns the sum. */
AI float exp_row(float *s, size_t n, float m) {
    __m512 vm = _mm512_set1_ps(m), a0 = _mm512_setzero_ps(), a1 = a0;
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 e0 = exp_neg(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
        __m512 e1 = exp_neg(_mm512_sub_ps(_mm512_loadu_ps(s + j + 16), vm));
        _mm512_storeu_ps(s + j, e0);
        _mm512_storeu_ps(s + j + 16, e1);
        a0 = _mm512_add_ps(a0, e0);
        a1 = _mm512_add_ps(a1, e1);
    }
    for (; j < n; j += 16) {
        __mmask16 t = mixrt_v512_mask(n - j);
        __m512 e = exp_neg(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, s + j), vm));
        _mm512_mask_storeu_ps(s + j, t, e);
        a0 = _mm512_mask_add_ps(a0, t, a0, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

/* All maxima first, so no row's exp loop waits on its own max reduction. */
static void softmax_avx512(float *s, size_t lds, int rows, size_t n, float *inv) {
    float mx[MIXRT_ATTN_ROWS];
    for (int r = 0; r < rows; r++) mx[r] = row_max(s + (size_t)r * lds, n);
    for (int r = 0; r < rows; r++) inv[r] = 1.0f / exp_row(s + (size_t)r * lds, n, mx[r]);
}

/* exp(x) for x <= 0 or NaN to about 5e-5 relative (one-step reduction by ln2 in f32, degree-4
 * Taylor on |f| <= ln2/2): enough for probabilities rounded to bf16 next (half an ulp there is
 * 2e-3). */
AI __m512 exp_neg_bf16(__m512 x) {
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    __m512 kf = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
                                     _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 f = _mm512_fnmadd_ps(kf, _mm512_set1_ps(0.693147180559945309f), x);
    __m512 p = _mm512_set1_ps(1.0f / 24.0f);
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f / 6.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.5f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(1.0f));
    return _mm512_scalef_ps(p, kf);
}

/* e rounded to bf16 (vcvtneps2bf16: nearest even) stored at p[0..16) under mask t. */
AI void store_bf16(__m512 e, uint16_t *p, __mmask16 t) {
    _mm256_mask_storeu_epi16(p, t, (__m256i)_mm512_cvtneps_pbh(e));
}

AI float exp_row_bf16(const float *s, size_t n, float m, uint16_t *p) {
    __m512 vm = _mm512_set1_ps(m), a0 = _mm512_setzero_ps(), a1 = a0;
    size_t j = 0;
    for (; j + 32 <= n; j += 32) {
        __m512 e0 = exp_neg_bf16(_mm512_sub_ps(_mm512_loadu_ps(s + j), vm));
        __m512 e1 = exp_neg_bf16(_mm512_sub_ps(_mm512_loadu_ps(s + j + 16), vm));
        store_bf16(e0, p + j, 0xffff);
        store_bf16(e1, p + j + 16, 0xffff);
        a0 = _mm512_add_ps(a0, e0);
        a1 = _mm512_add_ps(a1, e1);
    }
    for (; j < n; j += 16) {
        __mmask16 t = mixrt_v512_mask(n - j);
        __m512 e = exp_neg_bf16(_mm512_sub_ps(_mm512_maskz_loadu_ps(t, s + j), vm));
        store_bf16(e, p + j, t);
        a0 = _mm512_mask_add_ps(a0, t, a0, e);
    }
    return _mm512_reduce_add_ps(_mm512_add_ps(a0, a1));
}

static void softmax_bf16_avx512bf16(const float *s, size_t lds, int rows, size_t n, uint16_t *p, size_t ldp,
                                    float *inv) {
    float mx[MIXRT_ATTN_ROWS];
    for (int r = 0; r < rows; r++) mx[r] = row_max(s + (size_t)r * lds, n);
    for (int r = 0; r < rows; r++) inv[r] = 1.0f / exp_row_bf16(s + (size_t)r * lds, n, mx[r], p + (size_t)r * ldp);
}

/* P.V of R rows over one V panel: NV (1 or 2) vectors of 16 columns, the last masked. */
AI void pv_tile(const float *p, size_t ldp, const int R, const float *panel, size_t n, const int NV, __mmask16 last,
                const float *inv, float *o, size_t ldo) {
    __m512 acc[TILE_ROWS][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    const float *vr = panel;
    for (size_t j = 0; j < n; j++, vr += PANEL) {
        __m512 v0 = _mm512_loadu_ps(vr), v1 = NV > 1 ? _mm512_loadu_ps(vr + 16) : v0;
        for (int r = 0; r < R; r++) {
            __m512 pb = _mm512_set1_ps(p[(size_t)r * ldp + j]);
            acc[r][0] = _mm512_fmadd_ps(pb, v0, acc[r][0]);
            if (NV > 1) acc[r][1] = _mm512_fmadd_ps(pb, v1, acc[r][1]);
        }
    }
    for (int r = 0; r < R; r++) {
        __m512 sc = _mm512_set1_ps(inv[r]);
        for (int v = 0; v < NV; v++)
            _mm512_mask_storeu_ps(o + (size_t)r * ldo + 16 * v, v == NV - 1 ? last : (__mmask16)0xffff,
                                  _mm512_mul_ps(acc[r][v], sc));
    }
}

/* One V panel (32 columns x n keys) for every 12-row group of the block, so it stays in L1. */
static void pv_avx512(const float *p, size_t ldp, int rows, const float *vp, size_t ldj, size_t n, size_t dv,
                      const float *inv, float *o, size_t ldo) {
    for (size_t c0 = 0; c0 < dv; c0 += PANEL) {
        size_t w = dv - c0;
        const float *panel = vp + c0 * ldj;
        bool two = w > 16;
        __mmask16 last = mixrt_v512_mask(two ? w - 16 : w);
        for (int r0 = 0; r0 < rows; r0 += TILE_ROWS) {
            const float *pr = p + (size_t)r0 * ldp;
            const float *iv = inv + r0;
            float *orow = o + (size_t)r0 * ldo + c0;
            switch ((rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS) * 2 + two) {
#define PV_CASE(R)                                                                                                     \
    case 2 * R: pv_tile(pr, ldp, R, panel, n, 1, last, iv, orow, ldo); break;                                         \
    case 2 * R + 1: pv_tile(pr, ldp, R, panel, n, 2, last, iv, orow, ldo); break;
                PV_CASE(12) PV_CASE(11) PV_CASE(10) PV_CASE(9) PV_CASE(8) PV_CASE(7) PV_CASE(6) PV_CASE(5) PV_CASE(4) PV_CASE(3) PV_CASE(2) PV_CASE(1)
            default: break;
            }
        }
    }
}

/* ---- bf16 pairs with vdpbf16ps ------------------------------------------------------------ */

AI __m512 dp_pair(__m512 acc, __m512i pairs16, uint32_t bcast) {
    return _mm512_dpbf16_ps(acc, (__m512bh)pairs16, (__m512bh)_mm512_set1_epi32((int)bcast));
}

AI void scores_bf16_tile(const uint32_t *qp, size_t ldq, const int R, const uint32_t *panel, size_t dp, const int NV,
                         __m512 scale, float *s, size_t lds) {
    __m512 acc[TILE_ROWS][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    const uint32_t *kr = panel;
    for (size_t t = 0; t < dp; t++, kr += PANEL) {
        __m512i k0 = _mm512_loadu_si512(kr), k1 = NV > 1 ? _mm512_loadu_si512(kr + 16) : k0;
        for (int r = 0; r < R; r++) {
            uint32_t q2 = ld32(qp + (size_t)r * ldq + t);
            acc[r][0] = dp_pair(acc[r][0], k0, q2);
            if (NV > 1) acc[r][1] = dp_pair(acc[r][1], k1, q2);
        }
    }
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) _mm512_storeu_ps(s + (size_t)r * lds + 16 * v, _mm512_mul_ps(acc[r][v], scale));
}

static void scores_bf16_avx512(const uint32_t *qp, size_t ldq, int rows, const uint32_t *kp, size_t dp, size_t n,
                               float scale, float *s, size_t lds) {
    __m512 vs = _mm512_set1_ps(scale);
    for (size_t j = 0; j < n; j += PANEL) {
        const uint32_t *panel = kp + j * dp;
        bool two = n - j > 16;
        for (int r0 = 0; r0 < rows; r0 += TILE_ROWS) {
            const uint32_t *qr = qp + (size_t)r0 * ldq;
            float *sr = s + (size_t)r0 * lds + j;
            switch ((rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS) * 2 + two) {
#define SCORES_BF16_CASE(R)                                                                                            \
    case 2 * R: scores_bf16_tile(qr, ldq, R, panel, dp, 1, vs, sr, lds); break;                                       \
    case 2 * R + 1: scores_bf16_tile(qr, ldq, R, panel, dp, 2, vs, sr, lds); break;
                SCORES_BF16_CASE(12) SCORES_BF16_CASE(11) SCORES_BF16_CASE(10) SCORES_BF16_CASE(9) SCORES_BF16_CASE(8) SCORES_BF16_CASE(7) SCORES_BF16_CASE(6) SCORES_BF16_CASE(5)
                SCORES_BF16_CASE(4) SCORES_BF16_CASE(3) SCORES_BF16_CASE(2) SCORES_BF16_CASE(1)
            default: break;
            }
        }
    }
}

AI void pv_bf16_tile(const uint32_t *pp, size_t ldp, const int R, const uint32_t *panel, size_t np, const int NV,
                     __mmask16 last, const float *inv, float *o, size_t ldo) {
    __m512 acc[TILE_ROWS][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_ps();
    const uint32_t *vr = panel;
    for (size_t t = 0; t < np; t++, vr += PANEL) {
        __m512i v0 = _mm512_loadu_si512(vr), v1 = NV > 1 ? _mm512_loadu_si512(vr + 16) : v0;
        for (int r = 0; r < R; r++) {
            uint32_t p2 = ld32(pp + (size_t)r * ldp + t);
            acc[r][0] = dp_pair(acc[r][0], v0, p2);
            if (NV > 1) acc[r][1] = dp_pair(acc[r][1], v1, p2);
        }
    }
    for (int r = 0; r < R; r++) {
        __m512 sc = _mm512_set1_ps(inv[r]);
        for (int v = 0; v < NV; v++)
            _mm512_mask_storeu_ps(o + (size_t)r * ldo + 16 * v, v == NV - 1 ? last : (__mmask16)0xffff,
                                  _mm512_mul_ps(acc[r][v], sc));
    }
}

static void pv_bf16_avx512(const uint32_t *pp, size_t ldp, int rows, const uint32_t *vp, size_t ldj, size_t np,
                           size_t dv, const float *inv, float *o, size_t ldo) {
    for (size_t c0 = 0; c0 < dv; c0 += PANEL) {
        size_t w = dv - c0;
        const uint32_t *panel = vp + c0 * ldj;
        bool two = w > 16;
        __mmask16 last = mixrt_v512_mask(two ? w - 16 : w);
        for (int r0 = 0; r0 < rows; r0 += TILE_ROWS) {
            const uint32_t *pr = pp + (size_t)r0 * ldp;
            const float *iv = inv + r0;
            float *orow = o + (size_t)r0 * ldo + c0;
            switch ((rows - r0 < TILE_ROWS ? rows - r0 : TILE_ROWS) * 2 + two) {
#define PV_BF16_CASE(R)                                                                                                \
    case 2 * R: pv_bf16_tile(pr, ldp, R, panel, np, 1, last, iv, orow, ldo); break;                                   \
    case 2 * R + 1: pv_bf16_tile(pr, ldp, R, panel, np, 2, last, iv, orow, ldo); break;
                PV_BF16_CASE(12) PV_BF16_CASE(11) PV_BF16_CASE(10) PV_BF16_CASE(9) PV_BF16_CASE(8) PV_BF16_CASE(7) PV_BF16_CASE(6) PV_BF16_CASE(5)
                PV_BF16_CASE(4) PV_BF16_CASE(3) PV_BF16_CASE(2) PV_BF16_CASE(1)
            default: break;
            }
        }
    }
}

/* ---- packing -------------------------------------------------------------------------------- */

/* In-register transpose of 16 rows of 16 words. */
static inline void transpose16(__m512i r[16]) {
    __m512i t[16];
    for (int i = 0; i < 16; i += 2) {
        t[i] = _mm512_unpacklo_epi32(r[i], r[i + 1]);
        t[i + 1] = _mm512_unpackhi_epi32(r[i], r[i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r[i] = _mm512_unpacklo_epi64(t[i], t[i + 2]);
        r[i + 1] = _mm512_unpackhi_epi64(t[i], t[i + 2]);
        r[i + 2] = _mm512_unpacklo_epi64(t[i + 1], t[i + 3]);
        r[i + 3] = _mm512_unpackhi_epi64(t[i + 1], t[i + 3]);
    }
    /* r[4g + k] holds, in 128-bit lane L, column 4L + k of rows 4g .. 4g + 3; output row
     * 4L + k gathers lane L of r[k], r[4 + k], r[8 + k], r[12 + k] into its lanes 0..3. */
    for (int k = 0; k < 4; k++) {
        __m512i a = _mm512_shuffle_i32x4(r[k], r[4 + k], 0x88), b = _mm512_shuffle_i32x4(r[k], r[4 + k], 0xdd);
        __m512i c = _mm512_shuffle_i32x4(r[8 + k], r[12 + k], 0x88), e = _mm512_shuffle_i32x4(r[8 + k], r[12 + k], 0xdd);
        t[k] = _mm512_shuffle_i32x4(a, c, 0x88);
        t[8 + k] = _mm512_shuffle_i32x4(a, c, 0xdd);
        t[4 + k] = _mm512_shuffle_i32x4(b, e, 0x88);
        t[12 + k] = _mm512_shuffle_i32x4(b, e, 0xdd);
    }
    for (int i = 0; i < 16; i++) r[i] = t[i];
}

static void pack_k_avx512(const uint32_t *src, size_t lds, size_t n, size_t m, uint32_t *dst) {
    size_t n32 = (n + PANEL - 1) / PANEL * PANEL;
    for (size_t j0 = 0; j0 < n32; j0 += 16) {
        uint32_t *pan = dst + j0 / PANEL * PANEL * m + j0 % PANEL;
        size_t rows = j0 < n ? (n - j0 < 16 ? n - j0 : 16) : 0;
        for (size_t c0 = 0; c0 < m; c0 += 16) {
            size_t w = m - c0 < 16 ? m - c0 : 16;
            __mmask16 cm = mixrt_v512_mask(w);
            __m512i r[16];
            for (size_t i = 0; i < 16; i++)
                r[i] = i < rows ? _mm512_maskz_loadu_epi32(cm, src + (j0 + i) * lds + c0) : _mm512_setzero_si512();
            transpose16(r);
            for (size_t c = 0; c < w; c++) _mm512_storeu_si512(pan + (c0 + c) * PANEL, r[c]);
        }
    }
}

static void pack_v_avx512(const float *src, size_t lds, size_t n, size_t dv, float *dst, size_t ldj) {
    for (size_t c0 = 0; c0 < dv; c0 += PANEL) {
        size_t w = dv - c0;
        __mmask16 m0 = mixrt_v512_mask(w), m1 = mixrt_v512_mask(w > 16 ? w - 16 : 0);
        float *panel = dst + c0 * ldj;
        for (size_t j = 0; j < n; j++) {
            const float *r = src + j * lds + c0;
            _mm512_storeu_ps(panel + j * PANEL, _mm512_maskz_loadu_ps(m0, r));
            _mm512_storeu_ps(panel + j * PANEL + 16, _mm512_maskz_loadu_ps(m1, r + 16));
        }
    }
}

static void pack_v_pairs_avx512(const uint16_t *src, size_t lds, size_t n, size_t dv, uint32_t *dst, size_t ldj) {
    for (size_t c0 = 0; c0 < dv; c0 += PANEL) {
        size_t w = dv - c0;
        __mmask16 m0 = mixrt_v512_mask(w), m1 = mixrt_v512_mask(w > 16 ? w - 16 : 0);
        uint32_t *panel = dst + c0 * ldj;
        for (size_t t = 0; t < (n + 1) / 2; t++) {
            const uint16_t *r0 = src + 2 * t * lds + c0, *r1 = r0 + lds;
            bool hi = 2 * t + 1 < n;
            for (int v = 0; v < 2; v++) {
                __mmask16 m = v ? m1 : m0;
                __m512i lo = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r0 + 16 * v));
                __m512i up = hi ? _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, r1 + 16 * v)) : _mm512_setzero_si512();
                _mm512_storeu_si512(panel + t * PANEL + 16 * v, _mm512_or_si512(lo, _mm512_slli_epi32(up, 16)));
            }
        }
    }
}

const struct mixrt_attention_isa mixrt_attention_isa_avx512 = {
    .name = "avx512",
    .scores = scores_avx512,
    .softmax = softmax_avx512,
    .pv = pv_avx512,
    .pack_k = pack_k_avx512,
    .pack_v = pack_v_avx512,
};
const struct mixrt_attention_isa mixrt_attention_isa_avx512bf16 = {
    .name = "avx512bf16",
    .scores = scores_avx512,
    .softmax = softmax_avx512,
    .softmax_bf16 = softmax_bf16_avx512bf16,
    .pv = pv_avx512,
    .scores_bf16 = scores_bf16_avx512,
    .pv_bf16 = pv_bf16_avx512,
    .pack_k = pack_k_avx512,
    .pack_v = pack_v_avx512,
    .pack_v_pairs = pack_v_pairs_avx512,
};

#endif /* __x86_64__ */
