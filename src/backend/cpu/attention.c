/* attention.c - the fast CPU kernel of com.mixrt Attention ("attention_fused") for f32 and
 * bf16: per (batch, head), K and V are packed once into 32-wide panels (f32, or bf16 pairs for
 * vdpbf16ps), then blocks of MIXRT_ATTN_ROWS query rows go scores -> causal fill + mask ->
 * softmax (f32, max-subtracted) -> P.V, all in per-thread scratch of O(S * D) floats (never
 * S x S). A causal block scores only the keys up to its last row's diagonal when the rest is
 * negligible (tail_negligible), so results match scoring every key. Heads run in parallel
 * (OpenMP). Anything else (other dtypes, mixed Q/K/V dtypes) goes to the reference kernel. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/attention_impl.h"

/* ---- scalar twins of the block primitives ---------------------------------------------- */

#define PANEL MIXRT_ATTN_PANEL

static void scores_scalar(const float *q, size_t ldq, int rows, const float *kp, size_t d, size_t n, float scale,
                          float *s, size_t lds) {
    for (int r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++) {
            const float *kr = kp + j / PANEL * PANEL * d + j % PANEL;
            float acc = 0.0f;
            for (size_t c = 0; c < d; c++) acc += q[(size_t)r * ldq + c] * kr[c * PANEL];
            s[(size_t)r * lds + j] = acc * scale;
        }
}

/* max(s[0..n)), NaN when one is NaN. */
static float max_scalar(const float *s, size_t n) {
    float m = -INFINITY;
    for (size_t j = 0; j < n; j++)
        if (s[j] > m || s[j] != s[j]) m = m != m ? m : s[j];
    return m;
}

static void softmax_scalar(float *s, size_t lds, int rows, size_t n, float *inv) {
    for (int r = 0; r < rows; r++) {
        float *sr = s + (size_t)r * lds, m = max_scalar(sr, n), sum = 0.0f;
        for (size_t j = 0; j < n; j++) sum += (sr[j] = expf(sr[j] - m));
        inv[r] = 1.0f / sum;
    }
}

static void softmax_bf16_scalar(const float *s, size_t lds, int rows, size_t n, uint16_t *p, size_t ldp, float *inv) {
    for (int r = 0; r < rows; r++) {
        const float *sr = s + (size_t)r * lds;
        float m = max_scalar(sr, n), sum = 0.0f;
        for (size_t j = 0; j < n; j++) {
            float e = expf(sr[j] - m);
            p[(size_t)r * ldp + j] = mixrt_bf16_from_float(e).bits;
            sum += e;
        }
        inv[r] = 1.0f / sum;
    }
}

static void pv_scalar(const float *p, size_t ldp, int rows, const float *vp, size_t ldj, size_t n, size_t dv,
                      const float *inv, float *o, size_t ldo) {
    for (int r = 0; r < rows; r++)
        for (size_t c = 0; c < dv; c++) {
            const float *vc = vp + c / PANEL * PANEL * ldj + c % PANEL;
            float acc = 0.0f;
            for (size_t j = 0; j < n; j++) acc += p[(size_t)r * ldp + j] * vc[j * PANEL];
            o[(size_t)r * ldo + c] = acc * inv[r];
        }
}

static inline float pair_lo(uint32_t p) { return mixrt_bf16_to_float((mixrt_bf16){(uint16_t)(p & 0xffffu)}); }
static inline float pair_hi(uint32_t p) { return mixrt_bf16_to_float((mixrt_bf16){(uint16_t)(p >> 16)}); }
static inline uint32_t load_pair(const uint32_t *p) {
    uint32_t v;
    memcpy(&v, p, sizeof(v));
    return v;
}

static void scores_bf16_scalar(const uint32_t *qp, size_t ldq, int rows, const uint32_t *kp, size_t dp, size_t n,
                               float scale, float *s, size_t lds) {
    for (int r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++) {
            const uint32_t *kr = kp + j / PANEL * PANEL * dp + j % PANEL;
            float acc = 0.0f;
            for (size_t t = 0; t < dp; t++) {
                uint32_t a = load_pair(qp + (size_t)r * ldq + t), b = kr[t * PANEL];
                acc += pair_lo(a) * pair_lo(b) + pair_hi(a) * pair_hi(b);
            }
            s[(size_t)r * lds + j] = acc * scale;
        }
}

static void pv_bf16_scalar(const uint32_t *pp, size_t ldp, int rows, const uint32_t *vp, size_t ldj, size_t np,
                           size_t dv, const float *inv, float *o, size_t ldo) {
    for (int r = 0; r < rows; r++)
        for (size_t c = 0; c < dv; c++) {
            const uint32_t *vc = vp + c / PANEL * PANEL * ldj + c % PANEL;
            float acc = 0.0f;
            for (size_t t = 0; t < np; t++) {
                uint32_t a = load_pair(pp + (size_t)r * ldp + t), b = vc[t * PANEL];
                acc += pair_lo(a) * pair_lo(b) + pair_hi(a) * pair_hi(b);
            }
            o[(size_t)r * ldo + c] = acc * inv[r];
        }
}

static void pack_k_scalar(const uint32_t *src, size_t lds, size_t n, size_t m, uint32_t *dst) {
    size_t n32 = (n + PANEL - 1) / PANEL * PANEL;
    for (size_t j = 0; j < n32; j++) {
        uint32_t *col = dst + j / PANEL * PANEL * m + j % PANEL;
        for (size_t c = 0; c < m; c++) col[c * PANEL] = j < n ? load_pair(src + j * lds + c) : 0u;
    }
}

static void pack_v_scalar(const float *src, size_t lds, size_t n, size_t dv, float *dst, size_t ldj) {
    size_t dv32 = (dv + PANEL - 1) / PANEL * PANEL;
    for (size_t j = 0; j < n; j++)
        for (size_t c = 0; c < dv32; c++) dst[c / PANEL * PANEL * ldj + j * PANEL + c % PANEL] = c < dv ? src[j * lds + c] : 0.0f;
}

static void pack_v_pairs_scalar(const uint16_t *src, size_t lds, size_t n, size_t dv, uint32_t *dst, size_t ldj) {
    size_t dv32 = (dv + PANEL - 1) / PANEL * PANEL;
    for (size_t t = 0; t < (n + 1) / 2; t++)
        for (size_t c = 0; c < dv32; c++) {
            uint32_t lo = c < dv ? src[2 * t * lds + c] : 0u, hi = c < dv && 2 * t + 1 < n ? src[(2 * t + 1) * lds + c] : 0u;
            dst[c / PANEL * PANEL * ldj + t * PANEL + c % PANEL] = lo | hi << 16;
        }
}

const struct mixrt_attention_isa mixrt_attention_isa_scalar = {
    .name = "scalar",
    .scores = scores_scalar,
    .softmax = softmax_scalar,
    .softmax_bf16 = softmax_bf16_scalar,
    .pv = pv_scalar,
    .scores_bf16 = scores_bf16_scalar,
    .pv_bf16 = pv_bf16_scalar,
    .pack_k = pack_k_scalar,
    .pack_v = pack_v_scalar,
    .pack_v_pairs = pack_v_pairs_scalar,
};

#if defined(__x86_64__)
const struct mixrt_attention_isa mixrt_attention_isa_avx2 = {
    .name = "avx2",
    .scores = mixrt_attn_scores_avx2,
    .softmax = mixrt_attn_softmax_avx2,
    .softmax_bf16 = softmax_bf16_scalar,
    .pv = mixrt_attn_pv_avx2,
    .scores_bf16 = scores_bf16_scalar,
    .pv_bf16 = pv_bf16_scalar,
    .pack_k = pack_k_scalar,
    .pack_v = pack_v_scalar,
    .pack_v_pairs = pack_v_pairs_scalar,
};
#endif

static int g_force_scalar, g_force_avx2; /* tests only */

void mixrt_attention_force_scalar(bool scalar) { g_force_scalar = scalar; }
void mixrt_attention_force_avx2(bool avx2) { g_force_avx2 = avx2; }

const struct mixrt_attention_isa *mixrt_attention_isa(void) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    /* attention_avx512.c is compiled with F/BW/VL/DQ enabled: all four must be there. */
    if (!g_force_scalar && !g_force_avx2 && mixrt_cpu_avx512())
        return f->avx512_bf16 ? &mixrt_attention_isa_avx512bf16 : &mixrt_attention_isa_avx512;
    if (!g_force_scalar && f->avx2 && f->fma) return &mixrt_attention_isa_avx2;
#endif
    return &mixrt_attention_isa_scalar;
}

/* ---- the kernel ------------------------------------------------------------------------- */

/* Per-thread scratch above this many floats (1 GiB) is left to the reference kernel. */
#define ATTN_MAX_SCRATCH ((size_t)1 << 28)

static bool fast_dtype(mixrt_dtype t) { return t == MIXRT_DTYPE_F32 || t == MIXRT_DTYPE_BF16; }

static void say(char *why, size_t why_size, const char *msg) {
    if (why && why_size) snprintf(why, why_size, "%s", msg);
}

static bool attention_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (n->n_inputs < 3 || n->n_outputs < 1 || n->outputs[0] < 0) {
        say(why, why_size, "fewer than 3 inputs or no output");
        return false;
    }
    mixrt_dtype t = MIXRT_DTYPE_UNDEFINED;
    for (int i = 0; i < n->n_inputs && i < 5; i++) {
        if (n->inputs[i] < 0) {
            if (i < 3) {
                say(why, why_size, "Q, K or V absent");
                return false;
            }
            continue;
        }
        mixrt_dtype it = g->values[n->inputs[i]].dtype;
        if (!fast_dtype(it)) {
            say(why, why_size, "an input is not f32 or bf16");
            return false;
        }
        if (i == 0) t = it;
        else if (i < 3 && it != t) {
            say(why, why_size, "Q, K and V differ in dtype");
            return false;
        }
    }
    if (g->values[n->outputs[0]].dtype != t) {
        say(why, why_size, "the output's dtype differs from Q's");
        return false;
    }
    return true;
}

static float load_f(const void *p, mixrt_dtype t, size_t i) {
    return t == MIXRT_DTYPE_F32 ? ((const float *)p)[i] : mixrt_bf16_to_float(((const mixrt_bf16 *)p)[i]);
}

/* dst[0..n) = p[base + i * stride] as f32; contiguous rows convert in bulk. */
static void load_row(const void *p, mixrt_dtype t, size_t base, size_t stride, size_t n, float *dst) {
    if (stride == 1 && t == MIXRT_DTYPE_F32) {
        memcpy(dst, (const float *)p + base, n * sizeof(float));
    } else if (stride == 1) {
        mixrt_bf16_to_f32((const mixrt_bf16 *)p + base, dst, n);
    } else {
        for (size_t i = 0; i < n; i++) dst[i] = load_f(p, t, base + i * stride);
    }
}

struct attn_scratch {
    bool pairs;       /* bf16 Q/K/V through the pair primitives */
    size_t m;         /* words per packed K row: d (f32) or dp = ceil(d / 2) (pairs) */
    size_t ldj;       /* V panel rows: sk (f32) or ceil(sk / 2) key pairs */
    size_t lds;       /* score row length: sk rounded up to 32 */
    size_t per_thread; /* floats */
    size_t kp, vp, stage, q, s, p, o; /* offsets (floats) of the parts in one thread's block */
};

static inline uint32_t pair_of(const mixrt_bf16 *p, size_t i0, size_t stride, bool have_hi) {
    return (uint32_t)p[i0].bits | (have_hi ? (uint32_t)p[i0 + stride].bits << 16 : 0u);
}

/* Causal fill and mask for row i over s[0..n). */
static void row_fill_mask(const struct mixrt_attention_geom *a, float *sr, size_t n, int64_t b, int64_t h, int64_t i) {
    const int64_t *ms = a->mask_strides;
    if (a->causal) {
        int64_t e = i + (a->sk - a->sq) + 1;
        size_t jend = e < 0 ? 0 : e > (int64_t)n ? n : (size_t)e;
        for (size_t j = jend; j < n; j++) sr[j] = a->fill;
    }
    if (a->mask) { /* f32 here: run_attention_fast widens other mask dtypes once */
        size_t mb = (size_t)(b * ms[0] + h * ms[1] + i * ms[2]);
        const float *mr = (const float *)a->mask->data + mb;
        if (ms[3] == 0)
            for (size_t j = 0; j < n; j++) sr[j] += mr[0];
        else
            for (size_t j = 0; j < n; j++) sr[j] += mr[j];
    }
    if (a->mask2) { /* the second mask (Swin's window mask beside its position bias), added after */
        const int64_t *m2 = a->mask2_strides;
        const float *mr = (const float *)a->mask2->data + (size_t)(b * m2[0] + h * m2[1] + i * m2[2]);
        if (m2[3] == 0)
            for (size_t j = 0; j < n; j++) sr[j] += mr[0];
        else
            for (size_t j = 0; j < n; j++) sr[j] += mr[j];
    }
}

/* Whether the keys past n, which a causal block never scores (their value is the fill plus
 * the mask), are negligible for rows [i0, i0 + rows): below each row's own diagonal score
 * by more than 104, so their exp under the row max is under 1e-45 of the max's. Any other
 * fill (0, positive, or a mask that lifts it) sends the block through all keys. */
static bool tail_negligible(const struct mixrt_attention_geom *a, const float *s, size_t lds, int rows, size_t n,
                            int64_t b, int64_t h, int64_t i0) {
    const size_t sk = (size_t)a->sk;
    const int64_t *ms = a->mask_strides;
    if (n >= sk) return true;
    if (a->mask2) return false; /* two masks: every key is scored */
    float top = a->fill;
    for (int r = 0; r < rows; r++) {
        int64_t i = i0 + r, jd = i + (a->sk - a->sq);
        if (jd < 0 || jd >= (int64_t)n) return false;
        if (a->mask && (r == 0 || ms[2] != 0)) { /* the mask's largest value past n */
            const float *mr = (const float *)a->mask->data + (size_t)(b * ms[0] + h * ms[1] + i * ms[2]);
            float mmax = -INFINITY;
            for (size_t j = n; j < sk; j++) {
                float mv = mr[ms[3] ? j : 0];
                if (!(mv <= mmax)) mmax = mv; /* NaN sticks */
            }
            top = a->fill + mmax;
        }
        if (!(top - s[(size_t)r * lds + (size_t)jd] < -104.0f)) return false;
    }
    return true;
}

/* nan_zero: bit r set where row r's softmax is NaN - its scores have no finite maximum
 * (all -inf: a fully masked row; a NaN or +inf) - so the row's output becomes zeros. */
static uint32_t nan_rows(const struct mixrt_attention_geom *a, const float *s, size_t lds, int rows, size_t n) {
    uint32_t dead = 0;
    if (!a->nan_zero) return 0;
    for (int r = 0; r < rows; r++) {
        const float *sr = s + (size_t)r * lds;
        float m = -INFINITY;
        bool nan = false;
        for (size_t j = 0; j < n; j++) {
            m = sr[j] > m ? sr[j] : m;
            nan |= sr[j] != sr[j];
        }
        if (nan || !isfinite(m)) dead |= 1u << r;
    }
    return dead;
}

static void zero_rows(uint32_t dead, int rows, float *o, size_t ldo, size_t dv) {
    for (int r = 0; r < rows && dead; r++)
        if (dead >> r & 1u) memset(o + (size_t)r * ldo, 0, dv * sizeof(float));
}

/* Keys the scores of rows [i0, i0 + rows) need: all, or up to the last row's causal end. */
static size_t block_keys(const struct mixrt_attention_geom *a, int64_t i0, int rows) {
    if (!a->causal) return (size_t)a->sk;
    int64_t e = i0 + rows - 1 + (a->sk - a->sq) + 1;
    return e < 0 ? 0 : e > a->sk ? (size_t)a->sk : (size_t)e;
}

/* Output rows r < rows from ob (dv floats apart), rounded to the output dtype. */
static void store_rows(const struct mixrt_attention_geom *a, const float *ob, int rows, int64_t b, int64_t h,
                       int64_t i0, void *ydata) {
    const size_t dv = (size_t)a->dv, yc = (size_t)a->ystrides[3];
    for (int r = 0; r < rows; r++) {
        size_t yb = (size_t)(b * a->ystrides[0] + h * a->ystrides[1] + (i0 + r) * a->ystrides[2]);
        const float *orow = ob + (size_t)r * dv;
        if (a->x[0]->dtype == MIXRT_DTYPE_F32) {
            float *y = ydata;
            for (size_t c = 0; c < dv; c++) y[yb + c * yc] = orow[c];
        } else {
            mixrt_bf16 *y = ydata;
            if (yc == 1)
                mixrt_f32_to_bf16(orow, y + yb, dv);
            else
                for (size_t c = 0; c < dv; c++) y[yb + c * yc] = mixrt_bf16_from_float(orow[c]);
        }
    }
}

/* Where P.V writes rows [i0, ...): straight into an f32 output with unit column stride,
 * else into the scratch rows that store_rows copies out. */
static float *out_rows(const struct mixrt_attention_geom *a, float *ob, int64_t b, int64_t h, int64_t i0,
                       void *ydata, size_t *ldo) {
    if (a->x[0]->dtype == MIXRT_DTYPE_F32 && a->ystrides[3] == 1) {
        *ldo = (size_t)a->ystrides[2];
        return (float *)ydata + (size_t)(b * a->ystrides[0] + h * a->ystrides[1] + i0 * a->ystrides[2]);
    }
    *ldo = (size_t)a->dv;
    return ob;
}

/* bf16 through pairs: K as pairs along D, V as pairs along keys, P rounded to bf16. */
static void run_head_pairs(const struct mixrt_attention_geom *a, const struct mixrt_attention_isa *isa,
                           const struct attn_scratch *sc, float *w, int64_t b, int64_t h, void *ydata) {
    const size_t sk = (size_t)a->sk, d = (size_t)a->d, dv = (size_t)a->dv, dp = sc->m, ldj = sc->ldj, lds = sc->lds;
    uint32_t *kp = (uint32_t *)(w + sc->kp), *vp = (uint32_t *)(w + sc->vp), *stage = (uint32_t *)(w + sc->stage);
    uint32_t *qs32 = (uint32_t *)(w + sc->q);
    uint16_t *p16 = (uint16_t *)(w + sc->p);
    float *s = w + sc->s, *ob = w + sc->o;
    const mixrt_bf16 *q = a->x[0]->data, *k = a->x[1]->data, *v = a->x[2]->data;
    const int64_t *qs = a->strides[0], *ks = a->strides[1], *vs = a->strides[2];
    size_t kbase = (size_t)(b * ks[0] + h * ks[1]), vbase = (size_t)(b * vs[0] + h * vs[1]);
    size_t kd = (size_t)ks[3], vj = (size_t)vs[2], vc = (size_t)vs[3], qd = (size_t)qs[3];
    /* K rows are dp pairs in memory already when D is the unit-stride axis and even (then
     * every other stride is a multiple of D, so the pairs are 4-byte aligned with the data). */
    if (kd == 1 && d % 2 == 0 && ((uintptr_t)(k + kbase) & 3) == 0) {
        isa->pack_k((const uint32_t *)(const void *)(k + kbase), (size_t)ks[2] / 2, sk, dp, kp);
    } else {
        for (size_t j = 0; j < sk; j++)
            for (size_t t = 0; t < dp; t++)
                stage[j * dp + t] = pair_of(k, kbase + j * (size_t)ks[2] + 2 * t * kd, kd, 2 * t + 1 < d);
        isa->pack_k(stage, dp, sk, dp, kp);
    }
    /* V pairs along keys: contiguous rows pack straight from the input, others via the stage. */
    if (vc == 1) {
        isa->pack_v_pairs((const uint16_t *)(const void *)(v + vbase), vj, sk, dv, vp, ldj);
    } else {
        uint16_t *st16 = (uint16_t *)stage;
        for (size_t j = 0; j < sk; j++)
            for (size_t c = 0; c < dv; c++) st16[j * dv + c] = v[vbase + j * vj + c * vc].bits;
        isa->pack_v_pairs(st16, dv, sk, dv, vp, ldj);
    }
    bool direct_q = qd == 1 && d % 2 == 0;
    for (int64_t i0 = 0; i0 < a->sq; i0 += MIXRT_ATTN_ROWS) {
        int rows = a->sq - i0 < MIXRT_ATTN_ROWS ? (int)(a->sq - i0) : MIXRT_ATTN_ROWS;
        const uint32_t *qp = qs32;
        size_t ldq = dp, q0 = (size_t)(b * qs[0] + h * qs[1] + i0 * qs[2]);
        if (direct_q && ((uintptr_t)(q + q0) & 3) == 0) {
            qp = (const uint32_t *)(const void *)(q + q0);
            ldq = (size_t)qs[2] / 2;
        } else {
            for (int r = 0; r < rows; r++)
                for (size_t t = 0; t < dp; t++)
                    qs32[(size_t)r * dp + t] = pair_of(q, q0 + (size_t)r * (size_t)qs[2] + 2 * t * qd, qd, 2 * t + 1 < d);
        }
        size_t n = block_keys(a, i0, rows), n2;
        float inv[MIXRT_ATTN_ROWS];
        bool masked = a->causal || a->mask || a->mask2;
        for (;;) { /* a causal block's keys, or all when the rest is not negligible */
            isa->scores_bf16(qp, ldq, rows, kp, dp, n, a->scale, s, lds);
            if (masked)
                for (int r = 0; r < rows; r++) row_fill_mask(a, s + (size_t)r * lds, n, b, h, i0 + r);
            if (tail_negligible(a, s, lds, rows, n, b, h, i0)) break;
            n = (size_t)a->sk;
        }
        n2 = n;
        uint32_t dead = nan_rows(a, s, lds, rows, n);
        isa->softmax_bf16(s, lds, rows, n, p16, lds, inv);
        if (masked) n2 = 0;
        for (int r = 0; r < rows; r++) {
            uint16_t *pr = p16 + (size_t)r * lds;
            pr[n] = 0; /* an odd n: the last pair's high half */
            size_t nz = n; /* exact zeros at the end (masked keys) add nothing */
            while (masked && nz > n2 && pr[nz - 1] == 0) nz--;
            if (masked) n2 = nz;
        }
        size_t ldo;
        float *o = out_rows(a, ob, b, h, i0, ydata, &ldo);
        isa->pv_bf16((const uint32_t *)(const void *)p16, lds / 2, rows, vp, ldj, (n2 + 1) / 2, dv, inv, o, ldo);
        zero_rows(dead, rows, o, ldo, dv);
        if (o == ob) store_rows(a, ob, rows, b, h, i0, ydata);
    }
}

/* One (batch, head): pack K and V, then the row-block loop. */
static void run_head(const struct mixrt_attention_geom *a, const struct mixrt_attention_isa *isa,
                     const struct attn_scratch *sc, float *w, int64_t b, int64_t h, void *ydata) {
    if (sc->pairs) {
        run_head_pairs(a, isa, sc, w, b, h, ydata);
        return;
    }
    const size_t sk = (size_t)a->sk, d = (size_t)a->d, dv = (size_t)a->dv, ldj = sc->ldj, lds = sc->lds;
    float *kp = w + sc->kp, *vp = w + sc->vp, *stage = w + sc->stage, *qb = w + sc->q, *s = w + sc->s;
    float *ob = w + sc->o;
    const void *q = a->x[0]->data, *k = a->x[1]->data, *vd = a->x[2]->data;
    mixrt_dtype t = a->x[0]->dtype;
    const int64_t *qs = a->strides[0], *ks = a->strides[1], *vs = a->strides[2];
    size_t kbase = (size_t)(b * ks[0] + h * ks[1]), vbase = (size_t)(b * vs[0] + h * vs[1]);
    if (t == MIXRT_DTYPE_F32 && ks[3] == 1) {
        isa->pack_k((const uint32_t *)((const float *)k + kbase), (size_t)ks[2], sk, d, (uint32_t *)kp);
    } else {
        for (size_t j = 0; j < sk; j++) load_row(k, t, kbase + j * (size_t)ks[2], (size_t)ks[3], d, stage + j * d);
        isa->pack_k((const uint32_t *)stage, d, sk, d, (uint32_t *)kp);
    }
    if (t == MIXRT_DTYPE_F32 && vs[3] == 1) { /* V in panels of 32 columns */
        isa->pack_v((const float *)vd + vbase, (size_t)vs[2], sk, dv, vp, ldj);
    } else {
        for (size_t j = 0; j < sk; j++) load_row(vd, t, vbase + j * (size_t)vs[2], (size_t)vs[3], dv, stage + j * dv);
        isa->pack_v(stage, dv, sk, dv, vp, ldj);
    }
    bool direct_q = t == MIXRT_DTYPE_F32 && qs[3] == 1;
    for (int64_t i0 = 0; i0 < a->sq; i0 += MIXRT_ATTN_ROWS) {
        int rows = a->sq - i0 < MIXRT_ATTN_ROWS ? (int)(a->sq - i0) : MIXRT_ATTN_ROWS;
        size_t q0 = (size_t)(b * qs[0] + h * qs[1] + i0 * qs[2]), ldq = d;
        const float *qr = qb;
        if (direct_q) {
            qr = (const float *)q + q0;
            ldq = (size_t)qs[2];
        } else {
            for (int r = 0; r < rows; r++) load_row(q, t, q0 + (size_t)r * (size_t)qs[2], (size_t)qs[3], d, qb + (size_t)r * d);
        }
        size_t n = block_keys(a, i0, rows), n2;
        float inv[MIXRT_ATTN_ROWS];
        bool masked = a->causal || a->mask || a->mask2;
        for (;;) { /* a causal block's keys, or all when the rest is not negligible */
            isa->scores(qr, ldq, rows, kp, d, n, a->scale, s, lds);
            if (masked)
                for (int r = 0; r < rows; r++) row_fill_mask(a, s + (size_t)r * lds, n, b, h, i0 + r);
            if (tail_negligible(a, s, lds, rows, n, b, h, i0)) break;
            n = (size_t)a->sk;
        }
        n2 = n;
        uint32_t dead = nan_rows(a, s, lds, rows, n);
        isa->softmax(s, lds, rows, n, inv);
        if (masked) { /* exact zeros at the end (masked keys) add nothing */
            n2 = 0;
            for (int r = 0; r < rows; r++) {
                const float *sr = s + (size_t)r * lds;
                size_t nz = n;
                while (nz > n2 && sr[nz - 1] == 0.0f) nz--;
                n2 = nz;
            }
        }
        size_t ldo;
        float *o = out_rows(a, ob, b, h, i0, ydata, &ldo);
        isa->pv(s, lds, rows, vp, ldj, n2, dv, inv, o, ldo);
        zero_rows(dead, rows, o, ldo, dv);
        if (o == ob) store_rows(a, ob, rows, b, h, i0, ydata);
    }
}

/* Scratch layout for one thread; false when it overflows or passes ATTN_MAX_SCRATCH. pairs:
 * the bf16 pair layout (K and V as uint32 pairs, P as bf16) instead of f32 copies. */
static bool plan_scratch(const struct mixrt_attention_geom *a, bool pairs, struct attn_scratch *sc) {
    size_t sk = (size_t)a->sk, d = (size_t)a->d, dv = (size_t)a->dv;
    if (sk > ATTN_MAX_SCRATCH || d > ATTN_MAX_SCRATCH || dv > ATTN_MAX_SCRATCH) return false;
    sc->pairs = pairs;
    sc->m = pairs ? (d + 1) / 2 : d;
    sc->ldj = pairs ? (sk + 1) / 2 : sk;
    sc->lds = (sk + PANEL) / PANEL * PANEL; /* > sk: room for the zero after an odd bf16 row */
    size_t sk32 = sc->lds, dv32 = (dv + PANEL - 1) / PANEL * PANEL, rows = MIXRT_ATTN_ROWS;
    size_t parts[7], off = 0;
    parts[0] = sk32 * sc->m;                  /* K panels */
    parts[1] = dv32 * sc->ldj;                /* V panels */
    parts[2] = sk * (sc->m > dv ? sc->m : dv); /* staged K rows, then staged V rows */
    parts[3] = rows * sc->m;                  /* staged Q rows */
    parts[4] = rows * sc->lds;                /* scores / probabilities */
    parts[5] = pairs ? rows * sc->lds / 2 : 0; /* bf16 probabilities */
    parts[6] = rows * dv;                     /* output rows */
    size_t *offs[7] = {&sc->kp, &sc->vp, &sc->stage, &sc->q, &sc->s, &sc->p, &sc->o};
    for (int i = 0; i < 7; i++) { /* each part rounded to 16 floats (64 bytes): all stay aligned */
        *offs[i] = off;
        if (parts[i] > ATTN_MAX_SCRATCH) return false;
        off += (parts[i] + 15) & ~(size_t)15;
        if (off > ATTN_MAX_SCRATCH) return false;
    }
    sc->per_thread = off;
    return true;
}

static mixrt_status run_attention_fast(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_attention_geom a;
    struct attn_scratch sc;
    float *scratch = NULL, *mask32[2] = {NULL, NULL};
    void *raw = NULL;
    size_t raw_size = 0, mask_n[2] = {0, 0};
    struct mixrt_tensor mask_f32[2];
    for (int i = 0; i < 3; i++)
        if (i >= k->n_in || !k->in[i] || !fast_dtype(k->in[i]->dtype) || k->in[i]->dtype != k->in[0]->dtype)
            return mixrt_cpu_run_reference(k);
    for (int i = 3; i < k->n_in && i < 5; i++)
        if (k->in[i] && !fast_dtype(k->in[i]->dtype)) return mixrt_cpu_run_reference(k);
    MIXRT_TRY(mixrt_attention_geometry(k, &a));
    const struct mixrt_attention_isa *isa = mixrt_attention_isa();
    bool pairs = a.x[0]->dtype == MIXRT_DTYPE_BF16 && isa->scores_bf16 && isa->pv_bf16;
    if (!plan_scratch(&a, pairs, &sc)) return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *y;
    /* Every element is written below (each (b, h, i) row gets dv values). */
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, a.x[0]->dtype, 4, a.ydims, &y));
    int64_t tasks = a.b * a.h;
    if (tasks == 0 || a.sq == 0) return MIXRT_STATUS_OK;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
    if (nt > tasks) nt = (int)tasks;
#endif
    size_t total;
    if (!mixrt_mul_size(sc.per_thread, (size_t)nt, &total) || !mixrt_mul_size(total, sizeof(float), &total) ||
        !mixrt_add_size(total, 64, &raw_size))
        return mixrt_cpu_run_reference(k);
    raw = mixrt_alloc(k->ctx, raw_size);
    if (!raw) MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of scratch", raw_size));
    scratch = (float *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    const struct mixrt_tensor **mp[2] = {&a.mask, &a.mask2};
    for (int m = 0; m < 2; m++) {
        if (!*mp[m] || (*mp[m])->dtype == MIXRT_DTYPE_F32) continue;
        /* widened once, not per row and head */
        mask_n[m] = mixrt_tensor_numel(*mp[m]);
        if (!(mask32[m] = mixrt_alloc(k->ctx, (mask_n[m] ? mask_n[m] : 1) * sizeof(float))))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the f32 mask"));
        mixrt_bf16_to_f32((*mp[m])->data, mask32[m], mask_n[m]);
        mask_f32[m] = **mp[m];
        mask_f32[m].dtype = MIXRT_DTYPE_F32;
        mask_f32[m].data = mask32[m];
        *mp[m] = &mask_f32[m];
    }
    void *ydata = y->data;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(dynamic, 1)
#endif
    for (int64_t t = 0; t < tasks; t++) {
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        run_head(&a, isa, &sc, scratch + (size_t)tid * sc.per_thread, t / a.h, t % a.h, ydata);
    }
fail:
    if (raw) mixrt_free(k->ctx, raw, raw_size);
    for (int m = 0; m < 2; m++)
        if (mask32[m]) mixrt_free(k->ctx, mask32[m], (mask_n[m] ? mask_n[m] : 1) * sizeof(float));
    return status;
}

const struct mixrt_cpu_kernel mixrt_attention_kernels[] = {
    {"attention_fused", MIXRT_DOMAIN, "Attention", attention_supports, NULL, NULL, run_attention_fast},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
