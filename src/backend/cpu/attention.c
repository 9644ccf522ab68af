/* attention.c - the fast CPU kernel of com.mixrt Attention ("attention_fused") for f32 and
 * bf16: per (batch, head), K^T and V are packed once as f32, then blocks of query rows go
 * scores -> causal fill + mask -> softmax (f32, max-subtracted) -> P.V, all in per-thread
 * scratch of O(S * D) floats (never S x S). Heads run in parallel (OpenMP). Anything else
 * (other dtypes, mixed Q/K/V dtypes) goes to the reference kernel. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/attention_impl.h"

/* ---- scalar twins of the block primitives ---------------------------------------------- */

static void scores_scalar(const float *q, int rows, const float *kt, size_t ldk, size_t d, size_t n, float *s,
                          size_t lds) {
    for (int r = 0; r < rows; r++) {
        float *sr = s + (size_t)r * lds;
        for (size_t j = 0; j < n; j++) sr[j] = 0.0f;
        for (size_t c = 0; c < d; c++) {
            float qv = q[(size_t)r * d + c];
            const float *kr = kt + c * ldk;
            for (size_t j = 0; j < n; j++) sr[j] += qv * kr[j];
        }
    }
}

static float exp_sum_scalar(float *s, size_t n, float *mx, size_t *nz) {
    float m = -INFINITY, sum = 0.0f;
    size_t last = 0;
    for (size_t j = 0; j < n; j++)
        if (s[j] > m || s[j] != s[j]) m = m != m ? m : s[j];
    for (size_t j = 0; j < n; j++) {
        sum += (s[j] = expf(s[j] - m));
        if (s[j] != 0.0f) last = j + 1;
    }
    *mx = m;
    *nz = last;
    return sum;
}

static void pv_scalar(const float *p, int rows, size_t ldp, const float *v, size_t ldv, size_t n, size_t dv,
                      float *o) {
    for (int r = 0; r < rows; r++) {
        float *orow = o + (size_t)r * dv;
        for (size_t c = 0; c < dv; c++) orow[c] = 0.0f;
        for (size_t j = 0; j < n; j++) {
            float pj = p[(size_t)r * ldp + j];
            const float *vr = v + j * ldv;
            for (size_t c = 0; c < dv; c++) orow[c] += pj * vr[c];
        }
    }
}

static inline float pair_lo(uint32_t p) { return mixrt_bf16_to_float((mixrt_bf16){(uint16_t)(p & 0xffffu)}); }
static inline float pair_hi(uint32_t p) { return mixrt_bf16_to_float((mixrt_bf16){(uint16_t)(p >> 16)}); }

static void scores_bf16_scalar(const uint32_t *qp, int rows, size_t dp, const uint32_t *kp, size_t ldk, size_t n,
                               float *s, size_t lds) {
    for (int r = 0; r < rows; r++)
        for (size_t j = 0; j < n; j++) {
            float acc = 0.0f;
            for (size_t t = 0; t < dp; t++) {
                uint32_t a = qp[(size_t)r * dp + t], b = kp[t * ldk + j];
                acc += pair_lo(a) * pair_lo(b) + pair_hi(a) * pair_hi(b);
            }
            s[(size_t)r * lds + j] = acc;
        }
}

static void pv_bf16_scalar(const uint32_t *pp, int rows, size_t ldp, const uint32_t *vp, size_t ldv, size_t np,
                           size_t dv, float *o) {
    for (int r = 0; r < rows; r++)
        for (size_t c = 0; c < dv; c++) {
            float acc = 0.0f;
            for (size_t t = 0; t < np; t++) {
                uint32_t a = pp[(size_t)r * ldp + t], b = vp[t * ldv + c];
                acc += pair_lo(a) * pair_lo(b) + pair_hi(a) * pair_hi(b);
            }
            o[(size_t)r * dv + c] = acc;
        }
}

const struct mixrt_attention_isa mixrt_attention_isa_scalar = {"scalar",  scores_scalar,      exp_sum_scalar,
                                                               pv_scalar, scores_bf16_scalar, pv_bf16_scalar};

static int g_force_scalar; /* tests only */

void mixrt_attention_force_scalar(bool scalar) { g_force_scalar = scalar; }

const struct mixrt_attention_isa *mixrt_attention_isa(void) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    /* attention_avx512.c is compiled with F/BW/VL/DQ enabled: all four must be there. */
    if (!g_force_scalar && f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq)
        return f->avx512_bf16 ? &mixrt_attention_isa_avx512bf16 : &mixrt_attention_isa_avx512;
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
    for (int i = 0; i < n->n_inputs && i < 4; i++) {
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
    bool pairs;         /* bf16 Q/K/V through the pair primitives */
    size_t ldk, ldv, dp; /* K^T row length (keys, multiple of 16); V pair row length; Q pairs */
    size_t per_thread;
    size_t kt, v, q, s, o, pp; /* offsets (floats) of the parts in one thread's block */
};

static inline uint32_t pair_of(const mixrt_bf16 *p, size_t i0, size_t stride, bool have_hi) {
    return (uint32_t)p[i0].bits | (have_hi ? (uint32_t)p[i0 + stride].bits << 16 : 0u);
}

/* bf16 through pairs: K^T as pairs along D, V as pairs along keys, P rounded to bf16. */
static void run_head_pairs(const struct mixrt_attention_geom *a, const struct mixrt_attention_isa *isa,
                           const struct attn_scratch *sc, float *w, int64_t b, int64_t h, void *ydata);

/* Causal fill and mask for row i over s[0..sk), then the softmax numerators in s and
 * 1 / their sum in *inv (applied to the output row, not to every probability); returns the
 * count of leading keys that hold every non-zero one. */
static size_t row_softmax(const struct mixrt_attention_geom *a, const struct mixrt_attention_isa *isa, float *sr,
                          int64_t b, int64_t h, int64_t i, float *inv) {
    const size_t sk = (size_t)a->sk;
    const int64_t *ms = a->mask_strides;
    size_t jend = sk;
    if (a->causal) {
        int64_t e = i + (a->sk - a->sq) + 1;
        jend = e < 0 ? 0 : e > a->sk ? sk : (size_t)e;
    }
    for (size_t j = jend; j < sk; j++) sr[j] = a->fill;
    if (a->mask) {
        size_t mb = (size_t)(b * ms[0] + h * ms[1] + i * ms[2]);
        if (ms[3] == 0) {
            float mv = load_f(a->mask->data, a->mask->dtype, mb);
            for (size_t j = 0; j < sk; j++) sr[j] += mv;
        } else if (a->mask->dtype == MIXRT_DTYPE_F32) {
            const float *mr = (const float *)a->mask->data + mb;
            for (size_t j = 0; j < sk; j++) sr[j] += mr[j];
        } else {
            for (size_t j = 0; j < sk; j++) sr[j] += load_f(a->mask->data, a->mask->dtype, mb + j);
        }
    }
    float mx;
    size_t nz;
    float sum = isa->exp_sum(sr, sk, &mx, &nz);
    *inv = 1.0f / sum;
    return nz;
}

/* Keys the scores of rows [i0, i0 + rows) need: all, or up to the last row's causal end. */
static size_t block_keys(const struct mixrt_attention_geom *a, int64_t i0, int rows) {
    if (!a->causal) return (size_t)a->sk;
    int64_t e = i0 + rows - 1 + (a->sk - a->sq) + 1;
    return e < 0 ? 0 : e > a->sk ? (size_t)a->sk : (size_t)e;
}

/* Output rows r < rows: ob rows times inv[r], rounded to the output dtype. */
static void store_rows(const struct mixrt_attention_geom *a, float *ob, const float *inv, int rows, int64_t b,
                       int64_t h, int64_t i0, void *ydata) {
    const size_t dv = (size_t)a->dv;
    for (int r = 0; r < rows; r++) {
        size_t yb = (size_t)(b * a->ystrides[0] + h * a->ystrides[1] + (i0 + r) * a->ystrides[2]);
        float *orow = ob + (size_t)r * dv;
        for (size_t c = 0; c < dv; c++) orow[c] *= inv[r];
        if (a->x[0]->dtype == MIXRT_DTYPE_F32) {
            float *y = ydata;
            if (a->ystrides[3] == 1)
                memcpy(y + yb, orow, dv * sizeof(float));
            else
                for (size_t c = 0; c < dv; c++) y[yb + c * (size_t)a->ystrides[3]] = orow[c];
        } else {
            mixrt_bf16 *y = ydata;
            if (a->ystrides[3] == 1)
                mixrt_f32_to_bf16(orow, y + yb, dv);
            else
                for (size_t c = 0; c < dv; c++) y[yb + c * (size_t)a->ystrides[3]] = mixrt_bf16_from_float(orow[c]);
        }
    }
}

static void run_head_pairs(const struct mixrt_attention_geom *a, const struct mixrt_attention_isa *isa,
                           const struct attn_scratch *sc, float *w, int64_t b, int64_t h, void *ydata) {
    const size_t sk = (size_t)a->sk, d = (size_t)a->d, dv = (size_t)a->dv, ldk = sc->ldk, ldv = sc->ldv, dp = sc->dp;
    uint32_t *kp = (uint32_t *)(w + sc->kt), *vp = (uint32_t *)(w + sc->v), *qp = (uint32_t *)(w + sc->q);
    uint32_t *pp = (uint32_t *)(w + sc->pp);
    float *s = w + sc->s, *ob = w + sc->o;
    const mixrt_bf16 *q = a->x[0]->data, *k = a->x[1]->data, *v = a->x[2]->data;
    const int64_t *qs = a->strides[0], *ks = a->strides[1], *vs = a->strides[2];
    size_t kbase = (size_t)(b * ks[0] + h * ks[1]), vbase = (size_t)(b * vs[0] + h * vs[1]);
    size_t kd = (size_t)ks[3], vj = (size_t)vs[2], qd = (size_t)qs[3];
    if (kd == 1 && d % 2 == 0) { /* a key row is dp pairs in memory already */
        for (size_t j = 0; j < sk; j++) {
            const mixrt_bf16 *kr = k + kbase + j * (size_t)ks[2];
            for (size_t t = 0; t < dp; t++) {
                uint32_t pr;
                memcpy(&pr, kr + 2 * t, sizeof(pr));
                kp[t * ldk + j] = pr;
            }
        }
    } else {
        for (size_t t = 0; t < dp; t++)
            for (size_t j = 0; j < sk; j++)
                kp[t * ldk + j] = pair_of(k, kbase + j * (size_t)ks[2] + 2 * t * kd, kd, 2 * t + 1 < d);
    }
    for (size_t t = 0; t < dp; t++)
        for (size_t j = sk; j < ldk; j++) kp[t * ldk + j] = 0;
    for (size_t t = 0; t < (sk + 1) / 2; t++) {
        uint32_t *row = vp + t * ldv;
        for (size_t c = 0; c < dv; c++) row[c] = pair_of(v, vbase + 2 * t * vj + c * (size_t)vs[3], vj, 2 * t + 1 < sk);
        for (size_t c = dv; c < ldv; c++) row[c] = 0;
    }
    const size_t ldp = ldk / 2 + 1;
    for (int64_t i0 = 0; i0 < a->sq; i0 += MIXRT_ATTN_ROWS) {
        int rows = a->sq - i0 < MIXRT_ATTN_ROWS ? (int)(a->sq - i0) : MIXRT_ATTN_ROWS;
        for (int r = 0; r < rows; r++) {
            size_t qbase = (size_t)(b * qs[0] + h * qs[1] + (i0 + r) * qs[2]);
            if (qd == 1 && d % 2 == 0)
                memcpy(qp + (size_t)r * dp, q + qbase, d * sizeof(mixrt_bf16));
            else
                for (size_t t = 0; t < dp; t++) qp[(size_t)r * dp + t] = pair_of(q, qbase + 2 * t * qd, qd, 2 * t + 1 < d);
        }
        size_t n = block_keys(a, i0, rows), n2 = 0;
        float inv[MIXRT_ATTN_ROWS];
        isa->scores_bf16(qp, rows, dp, kp, ldk, n, s, ldk);
        for (int r = 0; r < rows; r++) {
            float *sr = s + (size_t)r * ldk;
            for (size_t j = 0; j < n; j++) sr[j] *= a->scale;
            size_t nz = row_softmax(a, isa, sr, b, h, i0 + r, &inv[r]);
            if (nz > n2) n2 = nz;
        }
        size_t np = (n2 + 1) / 2;
        for (int r = 0; r < rows; r++) { /* bf16 pairs are consecutive bf16 values */
            mixrt_bf16 *pr = (mixrt_bf16 *)(pp + (size_t)r * ldp);
            mixrt_f32_to_bf16(s + (size_t)r * ldk, pr, n2);
            if (n2 % 2) pr[n2].bits = 0;
        }
        isa->pv_bf16(pp, rows, ldp, vp, ldv, np, dv, ob);
        store_rows(a, ob, inv, rows, b, h, i0, ydata);
    }
}

/* One (batch, head): the whole row loop. */
static void run_head(const struct mixrt_attention_geom *a, const struct mixrt_attention_isa *isa,
                     const struct attn_scratch *sc, float *w, int64_t b, int64_t h, void *ydata) {
    if (sc->pairs) {
        run_head_pairs(a, isa, sc, w, b, h, ydata);
        return;
    }
    const size_t sk = (size_t)a->sk, d = (size_t)a->d, dv = (size_t)a->dv, ldk = sc->ldk;
    float *kt = w + sc->kt, *v = w + sc->v, *qb = w + sc->q, *s = w + sc->s, *ob = w + sc->o;
    const void *q = a->x[0]->data, *k = a->x[1]->data, *vd = a->x[2]->data;
    mixrt_dtype t = a->x[0]->dtype;
    const int64_t *qs = a->strides[0], *ks = a->strides[1], *vs = a->strides[2];
    size_t kbase = (size_t)(b * ks[0] + h * ks[1]), vbase = (size_t)(b * vs[0] + h * vs[1]);
    for (size_t j = 0; j < sk; j++) { /* qb is free until the row loop: a staging row */
        load_row(k, t, kbase + j * (size_t)ks[2], (size_t)ks[3], d, qb);
        for (size_t c = 0; c < d; c++) kt[c * ldk + j] = qb[c];
    }
    for (size_t c = 0; c < d; c++)
        for (size_t j = sk; j < ldk; j++) kt[c * ldk + j] = 0.0f;
    for (size_t j = 0; j < sk; j++) load_row(vd, t, vbase + j * (size_t)vs[2], (size_t)vs[3], dv, v + j * dv);
    for (int64_t i0 = 0; i0 < a->sq; i0 += MIXRT_ATTN_ROWS) {
        int rows = a->sq - i0 < MIXRT_ATTN_ROWS ? (int)(a->sq - i0) : MIXRT_ATTN_ROWS;
        for (int r = 0; r < rows; r++) {
            size_t qbase = (size_t)(b * qs[0] + h * qs[1] + (i0 + r) * qs[2]);
            float *qr = qb + (size_t)r * d;
            load_row(q, t, qbase, (size_t)qs[3], d, qr);
            for (size_t c = 0; c < d; c++) qr[c] *= a->scale;
        }
        size_t n = block_keys(a, i0, rows), n2 = 0;
        float inv[MIXRT_ATTN_ROWS];
        isa->scores(qb, rows, kt, ldk, d, n, s, ldk);
        for (int r = 0; r < rows; r++) {
            size_t nz = row_softmax(a, isa, s + (size_t)r * ldk, b, h, i0 + r, &inv[r]);
            if (nz > n2) n2 = nz;
        }
        /* Exact zeros (masked keys) add nothing to P.V: the trailing ones are skipped. */
        isa->pv(s, rows, ldk, v, dv, n2, dv, ob);
        store_rows(a, ob, inv, rows, b, h, i0, ydata);
    }
}

static mixrt_status run_reference(struct mixrt_kernel_ctx *k) {
    mixrt_kernel_fn fn;
    mixrt_status status = mixrt_ref_find(k->ctx, k->node, &fn);
    return status == MIXRT_STATUS_OK ? fn(k) : status;
}

/* Scratch layout for one thread; false when it overflows or passes ATTN_MAX_SCRATCH. pairs:
 * the bf16 pair layout (K^T and V as uint32 pairs, P pairs) instead of f32 copies. */
static bool plan_scratch(const struct mixrt_attention_geom *a, bool pairs, struct attn_scratch *sc) {
    size_t sk = (size_t)a->sk, d = (size_t)a->d, dv = (size_t)a->dv;
    if (sk > ATTN_MAX_SCRATCH || d > ATTN_MAX_SCRATCH || dv > ATTN_MAX_SCRATCH) return false;
    sc->pairs = pairs;
    sc->ldk = (sk + 15) & ~(size_t)15;
    if (sc->ldk == 0) sc->ldk = 16;
    sc->ldv = (dv + 15) & ~(size_t)15;
    sc->dp = (d + 1) / 2;
    /* Each part rounded to 16 floats (64 bytes) so every part stays aligned. */
    size_t parts[6], off = 0;
    parts[0] = pairs ? sc->dp * sc->ldk : d * sc->ldk;             /* K^T */
    parts[1] = pairs ? (sk + 1) / 2 * sc->ldv : sk * dv;           /* V */
    parts[2] = (size_t)MIXRT_ATTN_ROWS * d;                        /* Q rows (pairs: half used) */
    parts[3] = (size_t)MIXRT_ATTN_ROWS * sc->ldk;                  /* scores / probabilities */
    parts[4] = (size_t)MIXRT_ATTN_ROWS * dv;                       /* output rows */
    parts[5] = pairs ? (size_t)MIXRT_ATTN_ROWS * (sc->ldk / 2 + 1) : 0; /* P pairs */
    size_t *offs[6] = {&sc->kt, &sc->v, &sc->q, &sc->s, &sc->o, &sc->pp};
    for (int i = 0; i < 6; i++) {
        *offs[i] = off;
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
    float *scratch = NULL, *mask32 = NULL;
    void *raw = NULL;
    size_t raw_size = 0, mask_n = 0;
    struct mixrt_tensor mask_f32;
    for (int i = 0; i < 3; i++)
        if (i >= k->n_in || !k->in[i] || !fast_dtype(k->in[i]->dtype) || k->in[i]->dtype != k->in[0]->dtype)
            return run_reference(k);
    if (k->n_in > 3 && k->in[3] && !fast_dtype(k->in[3]->dtype)) return run_reference(k);
    MIXRT_TRY(mixrt_attention_geometry(k, &a));
    const struct mixrt_attention_isa *isa = mixrt_attention_isa();
    bool pairs = a.x[0]->dtype == MIXRT_DTYPE_BF16 && isa->scores_bf16 && isa->pv_bf16;
    if (!plan_scratch(&a, pairs, &sc)) return run_reference(k);
    struct mixrt_tensor *y;
    MIXRT_TRY(mixrt_kernel_output(k, 0, a.x[0]->dtype, 4, a.ydims, &y));
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
        return run_reference(k);
    raw = mixrt_alloc(k->ctx, raw_size);
    if (!raw) MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of scratch", raw_size));
    scratch = (float *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    if (a.mask && a.mask->dtype != MIXRT_DTYPE_F32) { /* widened once, not per row and head */
        mask_n = mixrt_tensor_numel(a.mask);
        if (!(mask32 = mixrt_alloc(k->ctx, (mask_n ? mask_n : 1) * sizeof(float))))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the f32 mask"));
        mixrt_bf16_to_f32(a.mask->data, mask32, mask_n);
        mask_f32 = *a.mask;
        mask_f32.dtype = MIXRT_DTYPE_F32;
        mask_f32.data = mask32;
        a.mask = &mask_f32;
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
    if (mask32) mixrt_free(k->ctx, mask32, (mask_n ? mask_n : 1) * sizeof(float));
    return status;
}

const struct mixrt_cpu_kernel mixrt_attention_kernels[] = {
    {"attention_fused", MIXRT_DOMAIN, "Attention", attention_supports, NULL, NULL, run_attention_fast},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
