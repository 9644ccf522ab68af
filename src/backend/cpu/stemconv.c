/* stemconv.c - "stem_conv_nhwc": com.mixrt FusedConv of at most 4 input channels (an image's
 * first conv: MobileNet's and EfficientNet's 3x3 stride-2 stems, ResNet's 7x7, ConvNeXt's 4x4
 * patches) on channels-last f32 or bf16 X and Y, one group, no dilation, explicit pads, any
 * stride, no Z; and "stem_pool_nhwc": the same conv with the MaxPool that alone read it
 * (com.mixrt FusedConvMaxPool, fuse_conv.c's stem_pool pass), each conv row pooled while it is
 * in cache, so the conv's output is never written out.
 * oneDNN's f32 direct conv has no good blocking for 3 input channels (HF EfficientNet's 3 -> 64
 * 3x3 stem: 0.45 ms timed alone, 1.3 ms in the model). Here, for f32 X (and a bf16 X on CPUs
 * without AVX512-BF16, widened exactly, once), each output pixel is the sum over its kh kw c
 * taps of a broadcast input times a vector of output channels, weights packed once at prepare
 * as [kh][kw][c][M padded to 16] f32. A bf16 X with bf16 W on a CPU with AVX512-BF16 takes
 * vdpbf16ps over pairs of consecutive taps of a kernel row (in NHWC a window row's kw * c taps
 * are consecutive: ResNet's 7 x 3 = 21 make 11 pairs, the last with a zero weight), on a copy of
 * X whose rows are padded so every window lies inside: 7 x 11 products a pixel where padding the
 * channels to 4 (as oneDNN's bf16 conv does, and a try of this kernel did, losing 113 vs 94 us
 * on MobileNetV2's stem) takes 7 x 14. Rows of output in parallel; the activation in register
 * where the tile kernels have it (pwconv_impl.h), else over the f32 row afterwards. Timed
 * against oneDNN like every candidate; `MIXRT_STEM_CONV=off` leaves it out. Measured (Zen 5, 2
 * vCPUs): f32 stems 0.40 vs 0.45 ms (HF EfficientNet), 0.22 vs 0.29-0.34 ms in
 * EfficientNet-B0, ties on ResNet's 7x7 and MobileNetV2's; ResNet's bf16 7x7 stem 0.34-0.36 ms
 * against oneDNN's 0.39-0.42, and with its MaxPool fused 0.357 against 0.374 (ours, then
 * oneDNN's pool) and 0.435 (oneDNN's both).
 * Scalar twin for CPUs without AVX-512.
 * Invariant: anything outside the case prepare saw goes to the reference kernel. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/stemconv_impl.h"

static int g_force_scalar; /* tests only */
void mixrt_stemconv_force_scalar(bool scalar) { g_force_scalar = scalar; }

/* The scalar twin of mixrt_stem_row_avx512: the same taps in the same order, by fmaf. */
static void row_scalar(const struct mixrt_stem_row *r) {
    for (int64_t ox = 0; ox < r->ow; ox++) {
        const int64_t ix0 = ox * r->sw - r->pl;
        const int64_t kw0 = ix0 < 0 ? -ix0 : 0, kw1 = r->w - ix0 < r->kw ? r->w - ix0 : r->kw;
        for (int64_t j = 0; j < r->m; j++) {
            float v = r->b[j];
            for (int64_t kh = 0; kh < r->kh; kh++)
                for (int64_t t = kw0 * r->c; r->xrow[kh] && t < kw1 * r->c; t++)
                    v = fmaf(r->xrow[kh][ix0 * r->c + t], r->wp[(size_t)(kh * r->kw * r->c + t) * (size_t)r->mp + (size_t)j],
                             v);
            v = mixrt_pw_act_scalar(r->act, r->p0, r->p1, v);
            if (r->y_f32) ((float *)r->y)[ox * r->m + j] = v;
            else ((mixrt_bf16 *)r->y)[ox * r->m + j] = mixrt_bf16_from_float(v);
        }
    }
}

static bool refuse(char *why, size_t why_size, const char *msg) {
    if (why && why_size) snprintf(why, why_size, "%s", msg);
    return false;
}

/* The explicit pads, at most 1024 each. */
static bool stem_pads(const struct mixrt_node *n, int64_t *p) { return mixrt_fconv_explicit_pads(n, p, 1024); }

/* Strides (2, each 1..64), false when malformed. */
static bool stem_strides(const struct mixrt_node *n, int64_t *s) {
    size_t ns = 0;
    const int64_t *sd = mixrt_node_attr_ints(n, "strides", &ns);
    if (sd && ns != 2) return false;
    for (int i = 0; i < 2; i++) {
        s[i] = sd ? sd[i] : 1;
        if (s[i] < 1 || s[i] > 64) return false;
    }
    return true;
}

/* stem_conv_nhwc's case, and the conv part of stem_pool_nhwc's. */
static bool stem_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    const char *env = getenv("MIXRT_STEM_CONV"); /* for measuring against oneDNN on the same build */
    if (env && !strcmp(env, "off") && !strcmp(n->op_type, "FusedConv"))
        return refuse(why, why_size, "disabled by MIXRT_STEM_CONV=off");
    if (!g_force_scalar && !mixrt_cpu_avx512()) return refuse(why, why_size, "the CPU has no AVX-512");
    enum mixrt_fconv_act act;
    float p0, p1;
    int64_t pads[4], strides[2];
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
        return refuse(why, why_size, "X, W or Y absent");
    if (n->n_inputs > 3 && n->inputs[3] >= 0) return refuse(why, why_size, "a Z input (residual)");
    if (!mixrt_fconv_read_act(n, &act, &p0, &p1)) return refuse(why, why_size, "malformed activation");
    if (mixrt_node_attr_int(n, "channels_last", 0) != 1) return refuse(why, why_size, "not channels-last");
    if (mixrt_node_attr_int(n, "group", 1) != 1) return refuse(why, why_size, "grouped");
    const struct mixrt_value *xv = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if ((xv->dtype != MIXRT_DTYPE_F32 && xv->dtype != MIXRT_DTYPE_BF16) || yv->dtype != xv->dtype)
        return refuse(why, why_size, "X and Y not both f32 or both bf16");
    if (n->n_inputs > 2 && n->inputs[2] >= 0 && !mixrt_graph_is_fixed_const(g, n->inputs[2]))
        return refuse(why, why_size, "B is not a constant");
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "W is not a constant initializer");
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    if (!mixrt_dtype_is_float(w->dtype) || w->rank != 4 || w->dims[1] < 1 || w->dims[1] > MIXRT_STEM_MAX_C ||
        w->dims[0] < 1 || w->dims[0] > 1024 || w->dims[2] < 1 || w->dims[2] > 16 || w->dims[3] < 1 || w->dims[3] > 16)
        return refuse(why, why_size, "W is not a float [M, C, KH, KW] tensor of C <= 4, M <= 1024, KH and KW <= 16");
    if (!mixrt_node_attr_ints_all(n, "dilations", 1, 0)) return refuse(why, why_size, "dilated");
    if (!stem_strides(n, strides)) return refuse(why, why_size, "malformed strides");
    if (!stem_pads(n, pads)) return refuse(why, why_size, "auto_pad SAME or malformed pads");
    if (xv->rank >= 0 && xv->rank != 4) return refuse(why, why_size, "X's rank is not 4");
    if (xv->rank == 4 && xv->dims[3].value >= 0 && xv->dims[3].value != w->dims[1])
        return refuse(why, why_size, "X's channels differ from W's");
    return true;
}

/* The pool of a FusedConvMaxPool: kernel (2, each 1..16), strides (1..16), pads (each below its
 * kernel), ceil_mode 0 or 1; false when malformed. */
static bool pool_attrs(const struct mixrt_node *n, int64_t *k, int64_t *s, int64_t *p, bool *ceil_mode) {
    size_t nk = 0, ns = 0, np = 0;
    const int64_t *kd = mixrt_node_attr_ints(n, "pool_kernel_shape", &nk), *sd = mixrt_node_attr_ints(n, "pool_strides", &ns),
                  *pd = mixrt_node_attr_ints(n, "pool_pads", &np);
    const int64_t cm = mixrt_node_attr_int(n, "pool_ceil_mode", 0);
    if (!kd || nk != 2 || (sd && ns != 2) || (pd && np != 4) || (cm != 0 && cm != 1)) return false;
    for (int i = 0; i < 2; i++) {
        k[i] = kd[i], s[i] = sd ? sd[i] : 1;
        if (k[i] < 1 || k[i] > 16 || s[i] < 1 || s[i] > 16) return false;
    }
    for (int i = 0; i < 4; i++) {
        p[i] = pd ? pd[i] : 0;
        if (p[i] < 0 || p[i] >= k[i % 2]) return false;
    }
    *ceil_mode = cm == 1;
    return true;
}

static bool pool_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    int64_t k[2], s[2], p[4];
    bool cm;
    if (!pool_attrs(n, k, s, p, &cm))
        return refuse(why, why_size, "pool_kernel_shape, pool_strides, pool_pads or pool_ceil_mode malformed");
    if (mixrt_node_attr(n, "pool_dilations")) return refuse(why, why_size, "a dilated pool");
    return stem_supports(g, n, why, why_size);
}

struct stem_state {
    int64_t m, c, kh, kw, mp, sh, sw, pt, pl, pb, pr;
    int64_t np;               /* bf16 pairs kernel: tap pairs a kernel row (0: not packed) */
    int64_t pk[2], ps[2], pp[4]; /* FusedConvMaxPool's pool */
    bool pool, pool_ceil;
    float *wp, *b; /* one allocation: packed W, then the bias */
    uint16_t *wq;  /* the pairs kernel's W: [kh][np][mp][2] bf16 */
    size_t bytes, wq_bytes;
};

static void stem_release(mixrt_context_t ctx, void *state) {
    struct stem_state *st = state;
    if (!st) return;
    if (st->wp) mixrt_free(ctx, st->wp, st->bytes);
    if (st->wq) mixrt_free(ctx, st->wq, st->wq_bytes);
    mixrt_free(ctx, st, sizeof(*st));
}

static mixrt_status stem_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                 void **state) {
    mixrt_status status = MIXRT_STATUS_OK;
    char why[160] = "";
    const bool pool = !strcmp(n->op_type, "FusedConvMaxPool");
    if (!(pool ? pool_supports : stem_supports)(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build %s node '%s' with %s: %s", n->op_type, n->name,
                           pool ? "stem_pool_nhwc" : "stem_conv_nhwc", why);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    const int bi = n->n_inputs > 2 ? n->inputs[2] : -1;
    const struct mixrt_tensor *b = bi >= 0 ? g->values[bi].init : NULL;
    struct stem_state *st = NULL;
    MIXRT_CHECK(ctx, w->data, MIXRT_STATUS_INTERNAL, "%s node '%s': W's bytes are gone (dropped after packing)",
                n->op_type, n->name);
    st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    int64_t pads[4] = {0, 0, 0, 0}, strides[2] = {1, 1};
    (void)stem_pads(n, pads);
    (void)stem_strides(n, strides);
    st->pt = pads[0], st->pl = pads[1], st->pb = pads[2], st->pr = pads[3], st->sh = strides[0], st->sw = strides[1];
    st->m = w->dims[0], st->c = w->dims[1], st->kh = w->dims[2], st->kw = w->dims[3];
    st->mp = (st->m + MIXRT_STEM_MBLK - 1) / MIXRT_STEM_MBLK * MIXRT_STEM_MBLK;
    st->pool = pool;
    if (pool) (void)pool_attrs(n, st->pk, st->ps, st->pp, &st->pool_ceil);
    const size_t taps = (size_t)(st->kh * st->kw * st->c);
    st->bytes = (taps + 1) * (size_t)st->mp * sizeof(float);
    st->wp = mixrt_alloc(ctx, st->bytes);
    if (!st->wp) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    memset(st->wp, 0, st->bytes);
    st->b = st->wp + taps * (size_t)st->mp;
    for (int64_t j = 0; j < st->m; j++)
        for (int64_t ci = 0; ci < st->c; ci++)
            for (int64_t y = 0; y < st->kh; y++)
                for (int64_t x = 0; x < st->kw; x++)
                    st->wp[(size_t)((y * st->kw + x) * st->c + ci) * (size_t)st->mp + (size_t)j] =
                        (float)mixrt_load_f64(w->data, w->dtype, (size_t)(((j * st->c + ci) * st->kh + y) * st->kw + x));
    if (b) {
        MIXRT_CHECK(ctx, b->rank == 1 && b->dims[0] == st->m, MIXRT_STATUS_INVALID_MODEL,
                    "cannot build %s node '%s': input #2 (B) has %lld elements, expected %lld", n->op_type, n->name,
                    (long long)mixrt_tensor_numel(b), (long long)st->m);
        for (int64_t j = 0; j < st->m; j++) st->b[j] = (float)mixrt_load_f64(b->data, b->dtype, (size_t)j);
    }
    /* A bf16 X and W (a bf16 engine's W is converted at build) on a CPU with AVX512-BF16: W in
     * pairs of consecutive taps of a kernel row for the vdpbf16ps kernel. */
    if (g->values[n->inputs[0]].dtype == MIXRT_DTYPE_BF16 && w->dtype == MIXRT_DTYPE_BF16 &&
        mixrt_cpu_features()->avx512_bf16 && !g_force_scalar) {
        const int64_t kwc = st->kw * st->c;
        st->np = (kwc + 1) / 2;
        st->wq_bytes = (size_t)(st->kh * st->np * st->mp * 2) * sizeof(uint16_t);
        st->wq = mixrt_alloc(ctx, st->wq_bytes);
        if (!st->wq) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
        memset(st->wq, 0, st->wq_bytes);
        for (int64_t y = 0; y < st->kh; y++)
            for (int64_t t = 0; t < kwc; t++)
                for (int64_t j = 0; j < st->m; j++)
                    st->wq[(size_t)(((y * st->np + t / 2) * st->mp + j) * 2 + t % 2)] = mixrt_bf16_from_float(
                        st->wp[(size_t)(y * kwc + t) * (size_t)st->mp + (size_t)j]).bits;
    }
    *state = st;
    return MIXRT_STATUS_OK;
fail:
    stem_release(ctx, st);
    return status;
}

static _Atomic unsigned long g_ref_runs, g_f32_runs;
unsigned long mixrt_stemconv_ref_runs(void) { return g_ref_runs; }
unsigned long mixrt_stemconv_f32_runs(void) { return g_f32_runs; }

static mixrt_status run_ref(struct mixrt_kernel_ctx *k) {
    g_ref_runs++;
    return mixrt_cpu_run_reference(k);
}

/* One run's operands, shared by the threads. */
struct stem_run {
    const struct stem_state *st;
    int64_t h, wd, oh, ow;
    bool dp;            /* the bf16 pairs kernel over xp's padded rows */
    const float *xf;    /* else: X as f32 (itself, or widened) */
    const uint16_t *xp; /* dp: [N * h][L] */
    size_t in_row, img, L;
    enum mixrt_fconv_act act;
    enum mixrt_pw_act ka; /* in register; NONE with staged set: over the f32 row afterwards */
    bool staged, scalar;
    float p0, p1;
};

/* Conv output row q (image q / oh, row q % oh) into y, activated: f32 when y_f32, else bf16 (sf:
 * an f32 row of staging for a bf16 y whose activation is staged). */
static void conv_row(const struct stem_run *R, int64_t q, void *y, bool y_f32, float *sf) {
    const struct stem_state *st = R->st;
    const int64_t b = q / R->oh, oy = q % R->oh, top = oy * st->sh - st->pt;
    const bool via_sf = R->staged && !y_f32;
    void *dst = via_sf ? (void *)sf : y;
    const bool dst_f32 = y_f32 || via_sf;
#if defined(__x86_64__)
    if (R->dp) {
        struct mixrt_stem_dp_row r = {.c = st->c, .ow = R->ow, .kh = st->kh, .sw = st->sw, .np = st->np, .m = st->m,
                                      .mp = st->mp, .wq = st->wq, .b = st->b, .y = dst, .y_f32 = dst_f32, .act = R->ka,
                                      .p0 = R->p0, .p1 = R->p1};
        for (int64_t i = 0; i < st->kh; i++) {
            const int64_t iy = top + i;
            r.xrow[i] = iy < 0 || iy >= R->h ? NULL : R->xp + (size_t)(b * R->h + iy) * R->L;
        }
        mixrt_stem_dp_row_avx512(&r);
    } else
#endif
    {
        struct mixrt_stem_row r = {.w = R->wd, .c = st->c, .ow = R->ow, .kh = st->kh, .kw = st->kw, .sw = st->sw,
                                   .pl = st->pl, .m = st->m, .mp = st->mp, .wp = st->wp, .b = st->b, .y = dst,
                                   .y_f32 = dst_f32, .act = R->ka, .p0 = R->p0, .p1 = R->p1};
        const float *xf = R->xf + (size_t)b * R->img;
        for (int64_t i = 0; i < st->kh; i++) {
            const int64_t iy = top + i;
            r.xrow[i] = iy < 0 || iy >= R->h ? NULL : xf + (size_t)iy * R->in_row;
        }
#if defined(__x86_64__)
        if (!R->scalar) mixrt_stem_row_avx512(&r);
        else row_scalar(&r);
#else
        row_scalar(&r);
#endif
    }
    if (R->staged) {
        const size_t n = (size_t)(R->ow * st->m);
        mixrt_elt_fconv_act(R->act, R->p0, R->p1, (float *)dst, n);
        if (via_sf) mixrt_f32_to_bf16(sf, (mixrt_bf16 *)y, n);
    }
}

/* The running max with NaN winning (the reference's rule). */
static inline float max_nan(float acc, float v) { return v > acc || (isnan(v) && !isnan(acc)) ? v : acc; }

/* The scalar twins of mixrt_stem_hpool_avx512 and mixrt_stem_vpool_avx512 (stemconv_impl.h). */
static void hpool_scalar(const float *row, int64_t ow, int64_t m, int64_t pw, int64_t kw, int64_t sw, int64_t pl,
                         float *out) {
    for (int64_t px = 0; px < pw; px++) {
        int64_t c0 = px * sw - pl, c1 = c0 + kw;
        if (c0 < 0) c0 = 0;
        if (c1 > ow) c1 = ow;
        for (int64_t j = 0; j < m; j++) {
            float acc = -INFINITY;
            for (int64_t cx = c0; cx < c1; cx++) acc = max_nan(acc, row[cx * m + j]);
            out[px * m + j] = acc;
        }
    }
}

static void vpool_scalar(const float *const *rows, int nrows, size_t n, void *y, bool y_f32) {
    for (size_t i = 0; i < n; i++) {
        float acc = -INFINITY;
        for (int r = 0; r < nrows; r++) acc = max_nan(acc, rows[r][i]);
        if (y_f32) ((float *)y)[i] = acc;
        else ((mixrt_bf16 *)y)[i] = mixrt_bf16_from_float(acc);
    }
}

static mixrt_status stem_run(struct mixrt_kernel_ctx *k) {
    const struct stem_state *st = k->state;
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1);
    enum mixrt_fconv_act act;
    float p0, p1;
    /* Whatever is not the case prepare saw (the reference words the errors). */
    if (!st || !x || !w || (x->dtype != MIXRT_DTYPE_F32 && x->dtype != MIXRT_DTYPE_BF16) || x->rank != 4 ||
        x->dims[3] != st->c || w->rank != 4 || w->dims[0] != st->m || w->dims[1] != st->c || w->dims[2] != st->kh ||
        w->dims[3] != st->kw || !mixrt_fconv_read_act(k->node, &act, &p0, &p1) || mixrt_tensor_numel(x) == 0 ||
        mixrt_kernel_opt_input(k, 3))
        return run_ref(k);
    const int64_t oh = (x->dims[1] + st->pt + st->pb - st->kh) / st->sh + 1,
                  ow = (x->dims[2] + st->pl + st->pr - st->kw) / st->sw + 1;
    if (x->dims[1] + st->pt + st->pb < st->kh || x->dims[2] + st->pl + st->pr < st->kw) return run_ref(k);
    int64_t ph = oh, pw = ow;
    if (st->pool) {
        ph = mixrt_window_out(oh, st->pk[0], st->ps[0], st->pp[0], st->pp[2], st->pool_ceil);
        pw = mixrt_window_out(ow, st->pk[1], st->ps[1], st->pp[1], st->pp[3], st->pool_ceil);
        if (ph < 1 || pw < 1) return run_ref(k);
    }
    const int64_t yd[4] = {x->dims[0], ph, pw, st->m};
    const bool bf = x->dtype == MIXRT_DTYPE_BF16;
    struct mixrt_tensor *y = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, 4, yd, &y);
    if (status != MIXRT_STATUS_OK) return status;
    /* In register: ReLU, Clip, LeakyRelu, HardSwish, and SiLU into bf16 (its approximation is
     * for bf16 outputs); the others over f32 rows (staged for a bf16 Y, in Y for f32). */
    struct stem_run R = {.st = st, .h = x->dims[1], .wd = x->dims[2], .oh = oh, .ow = ow, .act = act, .p0 = p0, .p1 = p1};
    R.ka = mixrt_pw_act_of(act);
    if (R.ka == MIXRT_PW_ACT_SILU && !bf) R.ka = MIXRT_PW_ACT_NONE;
    R.staged = act != MIXRT_FCONV_NONE && R.ka == MIXRT_PW_ACT_NONE;
    R.scalar = g_force_scalar || !mixrt_cpu_avx512();
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
#endif
    const int64_t rows = x->dims[0] * ph, in_rows = x->dims[0] * R.h;
    if (nt > rows) nt = (int)rows;
    R.in_row = (size_t)(R.wd * st->c), R.img = (size_t)R.h * R.in_row;
    /* The bf16 pairs kernel reads rows padded to L values: pl zero columns, X's, zeros to the
     * last window's end and one value past it (an odd kw * c's last pair). */
    int64_t lc = st->pl + R.wd;
    if ((ow - 1) * st->sw + st->kw > lc) lc = (ow - 1) * st->sw + st->kw;
    R.L = (size_t)((lc * st->c + 2 + 1) / 2 * 2);
    const bool try_dp = bf && st->wq && !R.scalar;
    /* per thread: the pool's ring of conv rows (f32), or the f32 row staged for a bf16 Y's
     * activation; after them X's copy: padded bf16 rows, or a bf16 X widened to f32 once (every
     * input row feeds about kh / sh output rows) */
    const size_t row_floats = (size_t)(ow * st->m);
    /* the pool's: one conv row, then pk[0] slots of rows pooled across (f32, 64-byte multiples) */
    const size_t slot_f = ((size_t)(pw * st->m) + 15) / 16 * 16;
    const size_t ring_f = st->pool ? row_floats + (size_t)st->pk[0] * slot_f : 0;
    const size_t stage_f = st->pool ? ring_f : R.staged && bf ? row_floats : 0;
    const size_t widen_f = bf ? (size_t)in_rows * R.in_row : 0, pad_f = try_dp ? ((size_t)in_rows * R.L + 1) / 2 : 0;
    const size_t copy_f = widen_f > pad_f ? widen_f : pad_f;
    const size_t scratch_bytes = ((size_t)nt * stage_f + copy_f) * sizeof(float);
    bool owned = false;
    float *scratch = scratch_bytes ? mixrt_kernel_scratch(k, scratch_bytes, &owned) : NULL;
    if (scratch_bytes && !scratch)
        return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of rows", scratch_bytes);
    float *copy = scratch + (size_t)nt * stage_f;
    R.xf = bf ? copy : (const float *)x->data;
#if defined(__x86_64__)
    if (try_dp) {
        uint16_t *xp = (uint16_t *)copy;
        const size_t left = (size_t)(st->pl * st->c);
        int finite = 1;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1) reduction(&& : finite)
#endif
        for (int64_t i = 0; i < in_rows; i++) {
            uint16_t *d = xp + (size_t)i * R.L;
            memset(d, 0, left * sizeof(uint16_t));
            if (!mixrt_stem_copy_finite_avx512((const uint16_t *)x->data + (size_t)i * R.in_row, d + left, R.in_row))
                finite = 0;
            memset(d + left + R.in_row, 0, (R.L - left - R.in_row) * sizeof(uint16_t));
        }
        /* an infinity or NaN in X would meet the zero weight of an odd row's last pair */
        R.dp = finite || (st->kw * st->c) % 2 == 0;
        R.xp = xp;
        if (!R.dp) g_f32_runs++;
    }
#endif
    if (bf && !R.dp) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
        for (int64_t i = 0; i < in_rows; i++)
            mixrt_bf16_to_f32((const mixrt_bf16 *)x->data + (size_t)i * R.in_row, copy + (size_t)i * R.in_row,
                              R.in_row);
    }
    const size_t xes = bf ? 2 : 4;
    if (!st->pool) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
        for (int64_t q = 0; q < rows; q++) {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            conv_row(&R, q, (char *)y->data + (size_t)q * row_floats * xes, !bf,
                     stage_f ? scratch + (size_t)tid * stage_f : NULL);
        }
    } else {
        /* Each thread its run of pooled rows. Max is separable: each conv row is pooled across
         * as soon as it is computed (while it is in L1), into a ring of pk[0] slots (conv row cy
         * in slot cy % pk[0]) of rows half as wide or less; then each pooled row is
         * the max down its window's slots. A thread computes each conv row once (the rows two
         * threads' windows share, twice). Pooling down the f32 conv rows themselves first (a
         * ring of 28 KB rows, beyond L1) took 0.57 of the conv's own time in SqueezeNet 1.1's
         * bf16 stem (perf samples), this 0.33; its FusedConvMaxPool in the model 0.18-0.20 ->
         * 0.165-0.18 ms, the model's ratio to ONNX Runtime 0.530 / 0.533 -> 0.523 / 0.516. */
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
        {
            int tid = 0;
#ifdef _OPENMP
            tid = omp_get_thread_num();
#endif
            float *crow = scratch + (size_t)tid * stage_f, *ring = crow + row_floats;
            int64_t tag[16];
            for (int i = 0; i < 16; i++) tag[i] = -1;
            const int64_t r0 = rows * tid / nt, r1 = rows * (tid + 1) / nt, kh = st->pk[0];
            const size_t pn = (size_t)(pw * st->m);
            for (int64_t pr = r0; pr < r1; pr++) {
                const int64_t b = pr / ph, py = pr % ph, cy0 = py * st->ps[0] - st->pp[0];
                const float *src[16];
                int nr = 0;
                for (int64_t i = 0; i < kh; i++) {
                    const int64_t cy = cy0 + i;
                    if (cy < 0 || cy >= oh) continue;
                    const int slot = (int)(cy % kh);
                    float *hrow = ring + (size_t)slot * slot_f;
                    if (tag[slot] != b * oh + cy) {
                        conv_row(&R, b * oh + cy, crow, true, NULL);
#if defined(__x86_64__)
                        if (!R.scalar)
                            mixrt_stem_hpool_avx512(crow, ow, st->m, pw, st->pk[1], st->ps[1], st->pp[1], hrow);
                        else
#endif
                            hpool_scalar(crow, ow, st->m, pw, st->pk[1], st->ps[1], st->pp[1], hrow);
                        tag[slot] = b * oh + cy;
                    }
                    src[nr++] = hrow;
                }
                void *yrow = (char *)y->data + (size_t)pr * pn * xes;
#if defined(__x86_64__)
                if (!R.scalar) mixrt_stem_vpool_avx512(src, nr, pn, yrow, !bf);
                else
#endif
                    vpool_scalar(src, nr, pn, yrow, !bf);
            }
        }
    }
    if (owned) mixrt_free(k->ctx, scratch, scratch_bytes);
    return MIXRT_STATUS_OK;
}

const struct mixrt_cpu_kernel mixrt_stemconv_kernels[] = {
    {"stem_conv_nhwc", MIXRT_DOMAIN, "FusedConv", stem_supports, stem_prepare, stem_release, stem_run},
    {"stem_pool_nhwc", MIXRT_DOMAIN, "FusedConvMaxPool", pool_supports, stem_prepare, stem_release, stem_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
