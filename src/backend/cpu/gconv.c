/* gconv.c - "gconv4_nhwc", "gconv8_nhwc" and "gconv16_nhwc": com.mixrt FusedConv when it is a
 * 2-D grouped channels-last conv of G input and G output channels a group. gconv4 / gconv8: G = 4
 * (or 8) input and output channels a group (C = M = G * group; ResNeXt-50 32x4d's first
 * (second) stage) on channels-last f32, with W repacked once to f32 [taps][G][C] (gconv_impl.h).
 * oneDNN 2.6's jit kernels want 8 channels a group on AVX2, so it ran G = 4 on its gemm-based
 * code at ~7 GFLOP/s; on AVX-512 it ran ResNeXt-50's G = 4 and G = 8 convs at 40-117 GFLOP/s.
 * Rows of output run in parallel (OpenMP); the AVX-512 row kernel where the CPU has it and C is
 * a multiple of 16, else (G = 4) the AVX2 one, else the scalar twin, the same sums in the same
 * order (taps, then the group's inputs). G = 8 is refused without AVX-512 (oneDNN's AVX2 jit
 * takes it). bf16 X, Z and Y (AVX-512 only): X and Z widened as loaded, each row summed in f32
 * and rounded once (ResNeXt-50 {fp32,bf16} had run its first stage's convs f32 between Casts:
 * 146 us + 50 us of Casts against oneDNN's bf16 208 us). Timed against oneDNN's kernels like
 * every candidate.
 * gconv16: G a multiple of 16 (C = M = G * group) on bf16 X, Y and Z, on CPUs with AVX512-BF16,
 * or on f32 ones with AVX-512 (gconv16_avx512.c's kernel; the scalar twin below otherwise only
 * when forced by the tests). W is packed once to bf16 pairs, or f32 (gconv_impl.h); sums in f32.
 * oneDNN 2.6 ran RegNet-X-400MF's grouped 3x3 convs (group width 16) at 220-420 GFLOP/s in bf16,
 * and RegNet-Y's (group width 64) at ~320 GFLOP/s in f32 (HF RegNet: 10.8 of 22.6 ms). Work items are (image, output
 * rows, vector of 16 output channels), split statically between the threads by rows or by
 * vectors (dp_run). Activations the kernel lacks in register (GELU, tanh, ...) run over an f32 Y
 * afterwards, then one rounding.
 * Timed against oneDNN's kernels like every candidate; `MIXRT_GCONV=off` leaves all three out.
 * Invariant: anything the kernels cannot do as prepare saw it goes to the reference kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/gconv_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/pwconv_impl.h"

static int g_force_scalar, g_force_avx2; /* tests only */
void mixrt_gconv_force_scalar(bool scalar);
void mixrt_gconv_force_scalar(bool scalar) { g_force_scalar = scalar; }
void mixrt_gconv_force_avx2(bool avx2);
void mixrt_gconv_force_avx2(bool avx2) { g_force_avx2 = avx2; }
static int g_force_scalar16; /* tests only: gconv16's scalar twin */
void mixrt_gconv16_force_scalar(bool scalar);
void mixrt_gconv16_force_scalar(bool scalar) { g_force_scalar16 = scalar; }

static inline float ldx(const void *p, bool bf, int64_t i) {
    return bf ? mixrt_bf16_to_float(((const mixrt_bf16 *)p)[i]) : ((const float *)p)[i];
}

static void row_scalar(const struct mixrt_gconv_row *r) {
    const int64_t C = r->c, ih0 = r->oy * r->sh - r->pt;
    for (int64_t ox = 0; ox < r->ow; ox++)
        for (int64_t m = 0; m < C; m++) {
            float v = r->b[m];
            for (int64_t ky = 0; ky < r->kh; ky++) {
                const int64_t ih = ih0 + ky * r->dh;
                if (ih < 0 || ih >= r->h) continue;
                for (int64_t kx = 0; kx < r->kw; kx++) {
                    const int64_t iw = ox * r->sw - r->pl + kx * r->dw;
                    if (iw < 0 || iw >= r->wd) continue;
                    const int64_t xo = (ih * r->wd + iw) * C + m / r->g * r->g;
                    const float *wp = r->w + (ky * r->kw + kx) * r->g * C + m;
                    for (int64_t ci = 0; ci < r->g; ci++) v = fmaf(ldx(r->x, r->xbf16, xo + ci), wp[ci * C], v);
                }
            }
            if (r->z) v += ldx(r->z, r->xbf16, ox * C + m);
            r->y[ox * C + m] = v;
        }
}

static inline float bfv(uint16_t h) { return mixrt_bf16_to_float((mixrt_bf16){h}); }

/* gconv16's scalar twin of one call: the kernel's sums in its order (taps' rows, units, taps'
 * columns; a bf16 pair's odd product first, an f32 unit one fused multiply-add), then Z, the
 * activation and, in bf16, one rounding. */
static void gdp_scalar(const struct mixrt_gdp_call *c) {
    const int64_t C = c->c, G = c->g, cb = c->m0 / G * G;
    const float *xf = c->x, *zf = c->z, *wf = c->w;
    const uint16_t *xh = c->x, *zh = c->z, *wh = c->w;
    for (int64_t oy = c->oy; oy < c->oy + c->rows; oy++)
        for (int64_t ox = 0; ox < c->ow; ox++)
            for (int64_t m = c->m0; m < c->m0 + 16; m++) {
                float v = c->b[m];
                for (int64_t ky = 0; ky < c->kh; ky++) {
                    const int64_t ih = oy * c->sh - c->pt + ky * c->dh;
                    if (ih < 0 || ih >= c->h) continue;
                    for (int64_t ci = 0; ci < G; ci += c->f32 ? 1 : 2)
                        for (int64_t kx = 0; kx < c->kw; kx++) {
                            const int64_t iw = ox * c->sw - c->pl + kx * c->dw, tap = ky * c->kw + kx;
                            if (iw < 0 || iw >= c->wd) continue;
                            const int64_t xi = (ih * c->wd + iw) * C + cb + ci;
                            if (c->f32) {
                                v = fmaf(xf[xi], wf[(tap * G + ci) * C + m], v);
                                continue;
                            }
                            const size_t wi = mixrt_gdp_widx(C, G, tap, ci, m);
                            v += bfv(xh[xi + 1]) * bfv(wh[wi + 1]);
                            v += bfv(xh[xi]) * bfv(wh[wi]);
                        }
                }
                const size_t off = (size_t)((oy * c->ow + ox) * C + m);
                if (c->z) v += c->f32 ? zf[off] : bfv(zh[off]);
                v = mixrt_pw_act_scalar((enum mixrt_pw_act)c->act, c->p0, c->p1, v);
                if (c->y_f32)
                    ((float *)c->y)[off] = v;
                else
                    ((mixrt_bf16 *)c->y)[off] = mixrt_bf16_from_float(v);
            }
}

static bool refuse(char *why, size_t why_size, const char *msg) {
    if (why && why_size) snprintf(why, why_size, "%s", msg);
    return false;
}

/* What every grouped kernel asks of the node first: not disabled, X, W and Y present, a readable
 * activation, channels-last. */
static bool gconv_node_ok(const struct mixrt_node *n, char *why, size_t why_size) {
    enum mixrt_fconv_act act;
    float p0, p1;
    const char *env = getenv("MIXRT_GCONV");
    if (env && !strcmp(env, "off")) return refuse(why, why_size, "disabled by MIXRT_GCONV=off");
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
        return refuse(why, why_size, "X, W or Y absent");
    if (!mixrt_fconv_read_act(n, &act, &p0, &p1))
        return refuse(why, why_size, "attribute 'activation' or 'activation_params' is malformed");
    if (mixrt_node_attr_int(n, "channels_last", 0) != 1) return refuse(why, why_size, "not channels-last");
    return true;
}

static bool gconv_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size,
                           int64_t G) {
    if (!gconv_node_ok(n, why, why_size)) return false;
    const struct mixrt_value *xv = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if ((xv->dtype != MIXRT_DTYPE_F32 && xv->dtype != MIXRT_DTYPE_BF16) || yv->dtype != xv->dtype)
        return refuse(why, why_size, "X and Y not both f32 or both bf16");
    if (n->n_inputs > 3 && n->inputs[3] >= 0 && g->values[n->inputs[3]].dtype != xv->dtype)
        return refuse(why, why_size, "Z's dtype differs from X's");
    if (xv->dtype == MIXRT_DTYPE_BF16 && !g_force_scalar && (!mixrt_cpu_avx512() || xv->dims[3].value % 16))
        return refuse(why, why_size, "bf16 needs AVX-512 F/BW/VL/DQ and C a multiple of 16");
    if (xv->rank != 4) return refuse(why, why_size, "not a 2-D conv (X's rank is not 4)");
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "W is not a constant initializer");
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    const int64_t group = mixrt_node_attr_int(n, "group", 1);
    if (!mixrt_dtype_is_float(w->dtype) || w->rank != 4 || w->dims[1] != G || group < 2 || w->dims[0] != G * group ||
        w->dims[2] < 1 || w->dims[3] < 1)
        return refuse(why, why_size, G == 4 ? "not a conv of 4 input and 4 output channels a group"
                                            : "not a conv of 8 input and 8 output channels a group");
    if (xv->dims[3].value != G * group || (G * group) % (G == 4 ? 8 : 16))
        return refuse(why, why_size, G == 4 ? "C != 4 * group, or not a multiple of 8"
                                            : "C != 8 * group, or not a multiple of 16");
    if (G == 8 && !g_force_scalar && !mixrt_cpu_avx512())
        return refuse(why, why_size, "needs AVX-512 F/BW/VL/DQ (oneDNN's AVX2 kernels take 8 channels a group)");
    size_t nk = 0;
    const int64_t *ks = mixrt_node_attr_ints(n, "kernel_shape", &nk);
    if (ks && (nk != 2 || ks[0] != w->dims[2] || ks[1] != w->dims[3]))
        return refuse(why, why_size, "attribute 'kernel_shape' differs from W's");
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (ap[0] && strcmp(ap, "NOTSET") && strcmp(ap, "VALID")) return refuse(why, why_size, "auto_pad SAME_*");
    if (n->n_inputs > 2 && n->inputs[2] >= 0 && !mixrt_dtype_is_float(g->values[n->inputs[2]].dtype))
        return refuse(why, why_size, "B is not a float tensor");
    return true;
}

static bool g4_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return gconv_supports(g, n, why, why_size, 4);
}
static bool g8_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return gconv_supports(g, n, why, why_size, 8);
}

static bool gdp_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    int64_t s[2], d[2], pads[4];
    if (!gconv_node_ok(n, why, why_size)) return false;
    const struct mixrt_value *xv = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if ((xv->dtype != MIXRT_DTYPE_BF16 && xv->dtype != MIXRT_DTYPE_F32) || yv->dtype != xv->dtype)
        return refuse(why, why_size, "X and Y not both bf16 or both f32");
    if (xv->dtype == MIXRT_DTYPE_BF16 && !g_force_scalar16 && !mixrt_pw_hw())
        return refuse(why, why_size, "bf16 and the CPU has no AVX512-BF16");
    if (xv->dtype == MIXRT_DTYPE_F32 && !g_force_scalar16 && !mixrt_cpu_avx512())
        return refuse(why, why_size, "f32 and the CPU has no AVX-512 F/BW/VL/DQ");
    if (n->n_inputs > 3 && n->inputs[3] >= 0 && g->values[n->inputs[3]].dtype != xv->dtype)
        return refuse(why, why_size, "Z's dtype differs from X's");
    if (n->n_inputs > 2 && n->inputs[2] >= 0 && !mixrt_dtype_is_float(g->values[n->inputs[2]].dtype))
        return refuse(why, why_size, "B is not a float tensor");
    if (xv->rank != 4) return refuse(why, why_size, "not a 2-D conv (X's rank is not 4)");
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "W is not a constant initializer");
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    const int64_t group = mixrt_node_attr_int(n, "group", 1);
    if (!mixrt_dtype_is_float(w->dtype) || w->rank != 4 || w->dims[1] < 16 || w->dims[1] % 16 || group < 2 ||
        w->dims[0] != w->dims[1] * group || w->dims[0] > 65536 || w->dims[2] < 1 || w->dims[3] < 1 ||
        w->dims[2] > 16 || w->dims[3] > 16)
        return refuse(why, why_size,
                      "not a grouped conv of G input and G output channels a group, G a multiple of 16 (kernel <= 16)");
    if (xv->dims[3].value != w->dims[0]) return refuse(why, why_size, "X's channels differ from W's");
    size_t nk = 0;
    const int64_t *ks = mixrt_node_attr_ints(n, "kernel_shape", &nk);
    if (ks && (nk != 2 || ks[0] != w->dims[2] || ks[1] != w->dims[3]))
        return refuse(why, why_size, "attribute 'kernel_shape' differs from W's");
    if (!mixrt_fconv_two_ints(n, "strides", s) || !mixrt_fconv_two_ints(n, "dilations", d))
        return refuse(why, why_size, "strides or dilations malformed or over 64");
    if (!mixrt_fconv_explicit_pads(n, pads, 1024)) return refuse(why, why_size, "auto_pad SAME or malformed pads");
    return true;
}

struct gconv_state {
    int64_t c, kh, kw, g;
    bool dp;   /* gconv16: W packed bf16 (mixrt_gdp_widx) unless f32; else f32 [taps][G][C] */
    bool f32;  /* gconv16 on f32 X, Y and Z: W f32 [taps][G][C] */
    void *w;
    float *b;  /* the constant bias (zeros when none), or NULL: read at run */
    size_t w_bytes;
};

static void gconv_release(mixrt_context_t ctx, void *state) {
    struct gconv_state *st = state;
    if (!st) return;
    if (st->w) mixrt_free(ctx, st->w, st->w_bytes);
    if (st->b) mixrt_free(ctx, st->b, (size_t)st->c * sizeof(float));
    mixrt_free(ctx, st, sizeof(*st));
}

static mixrt_status gconv_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                  void **state, int64_t G) { /* G 4, 8, or 0: gconv16 (G from W) */
    mixrt_status status = MIXRT_STATUS_OK;
    char why[160] = "";
    if (G ? !gconv_supports(g, n, why, sizeof(why), G) : !gdp_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build FusedConv node '%s' with gconv%d_nhwc: %s",
                           n->name, G ? (int)G : 16, why);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    const int bi = n->n_inputs > 2 ? n->inputs[2] : -1;
    const struct mixrt_tensor *b = bi >= 0 && mixrt_graph_is_fixed_const(g, bi) ? g->values[bi].init : NULL;
    struct gconv_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    st->dp = G == 0, G = w->dims[1];
    st->f32 = st->dp && g->values[n->inputs[0]].dtype == MIXRT_DTYPE_F32;
    const bool wbf = st->dp && !st->f32; /* W packed to bf16 pairs */
    st->c = w->dims[0], st->kh = w->dims[2], st->kw = w->dims[3], st->g = G;
    const int64_t taps = st->kh * st->kw;
    st->w_bytes = (size_t)(taps * G * st->c) * (wbf ? sizeof(uint16_t) : sizeof(float));
    st->w = mixrt_alloc(ctx, st->w_bytes);
    if (!st->w) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    /* ONNX W [M, G, KH, KW] -> [tap][ci][m] f32, or gconv16's [tap][pair][m][2] bf16 */
    for (int64_t m = 0; m < st->c; m++)
        for (int64_t ci = 0; ci < G; ci++)
            for (int64_t t = 0; t < taps; t++) {
                const size_t i = (size_t)((m * G + ci) * taps + t);
                if (wbf)
                    ((uint16_t *)st->w)[mixrt_gdp_widx(st->c, G, t, ci, m)] = mixrt_pw_wbits(w, i);
                else
                    ((float *)st->w)[(t * G + ci) * st->c + m] = (float)mixrt_load_f64(w->data, w->dtype, i);
            }
    if (bi < 0 || b) {
        st->b = mixrt_alloc(ctx, (size_t)st->c * sizeof(float));
        if (!st->b) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
        MIXRT_CHECK(ctx, !b || (b->rank == 1 && b->dims[0] == st->c), MIXRT_STATUS_INVALID_MODEL,
                    "cannot build FusedConv node '%s': input #2 (B) has %lld elements, expected %lld", n->name,
                    b ? (long long)mixrt_tensor_numel(b) : 0LL, (long long)st->c);
        for (int64_t m = 0; m < st->c; m++) st->b[m] = b ? (float)mixrt_load_f64(b->data, b->dtype, (size_t)m) : 0.0f;
    }
    *state = st;
    return MIXRT_STATUS_OK;
fail:
    gconv_release(ctx, st);
    return status;
}

static mixrt_status g4_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                               void **state) {
    return gconv_prepare(ctx, g, n, state, 4);
}
static mixrt_status g8_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                               void **state) {
    return gconv_prepare(ctx, g, n, state, 8);
}
static mixrt_status g16_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                void **state) {
    return gconv_prepare(ctx, g, n, state, 0);
}

/* gconv16's run after gconv_run's checks: Y (X's dtype) from X, Z, the bias, per the attributes read. */
static mixrt_status dp_run(struct mixrt_kernel_ctx *k, const struct gconv_state *st, const struct mixrt_tensor *x,
                           const struct mixrt_tensor *z, struct mixrt_tensor *y, const float *bias, const int64_t *in,
                           const int64_t *out, const int64_t *s, const int64_t *d, const int64_t *p,
                           enum mixrt_fconv_act act, float p0, float p1) {
    mixrt_status status = MIXRT_STATUS_OK;
    float *yf = NULL;
    size_t yf_bytes = 0;
    bool owned = false;
    const int64_t ydims[4] = {x->dims[0], out[0], out[1], st->c};
    /* Activations the kernel lacks in register: an f32 Y, the activation over it, one rounding
     * (an f32 conv: over Y itself, and SiLU too: the kernel's is of bf16's precision). */
    const enum mixrt_pw_act pa = st->f32 && act == MIXRT_FCONV_SILU ? MIXRT_PW_ACT_NONE : mixrt_pw_act_of(act);
    const bool act_after = act != MIXRT_FCONV_NONE && pa == MIXRT_PW_ACT_NONE, y_f32 = act_after || st->f32;
    const size_t ny = (size_t)mixrt_tensor_numel(y);
    if (act_after && !st->f32) {
        yf_bytes = ny * sizeof(float);
        if (!(yf = mixrt_kernel_scratch(k, yf_bytes, &owned)))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of scratch", yf_bytes));
    }
    void (*run)(const struct mixrt_gdp_call *) = gdp_scalar;
#if defined(__x86_64__)
    if (!g_force_scalar16 && (st->f32 ? mixrt_cpu_avx512() : mixrt_pw_hw())) run = mixrt_gdp_run_avx512;
#endif
    /* Rows a work item: two where rows are 8 pixels or fewer (the kernel then takes two rows a
     * block), else one. */
    const int64_t R = out[1] <= 8 ? 2 : 1, nrt = (out[0] + R - 1) / R, nv = st->c / 16, nimg = ydims[0];
    const int64_t items = nv * nimg * nrt, x_img = in[0] * in[1] * st->c, y_img = out[0] * out[1] * st->c;
    /* The items' order, and so each thread's share (static schedule): by rows where the input
     * outweighs the weights (each thread reads the rows its share needs, most of them written by
     * the same thread's share of the layer before: RegNet-X-400MF's 112x112x32 conv ran 146-162
     * us in the engine split by vectors, 75 by rows), else by vectors (each thread reads only its
     * groups' weights: the 7x7x400 convs, 115 KB of weights, ran 18 us against 22). */
    const bool by_rows = in[0] * in[1] * st->c * nimg >= st->kh * st->kw * st->g * st->c;
    const size_t es = st->f32 ? sizeof(float) : sizeof(uint16_t);
    const char *xd = x->data, *zd = z ? z->data : NULL;
    char *yd = act_after && !st->f32 ? (char *)yf : y->data;
    const size_t ye = y_f32 ? sizeof(float) : sizeof(uint16_t);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (items > 1)
#endif
    for (int64_t t = 0; t < items; t++) {
        const int64_t v = by_rows ? t % nv : t / (nimg * nrt), img = by_rows ? t / nv / nrt : t % (nimg * nrt) / nrt,
                      rt = by_rows ? t / nv % nrt : t % nrt;
        const struct mixrt_gdp_call c = {
            .x = xd + (size_t)(img * x_img) * es, .z = zd ? zd + (size_t)(img * y_img) * es : NULL,
            .y = yd + (size_t)(img * y_img) * ye, .y_f32 = y_f32, .f32 = st->f32,
            .w = st->w, .b = bias, .h = in[0], .wd = in[1], .c = st->c, .g = st->g, .ow = out[1], .kh = st->kh,
            .kw = st->kw, .sh = s[0], .sw = s[1], .dh = d[0], .dw = d[1], .pt = p[0], .pl = p[1], .oy = rt * R,
            .rows = rt * R + R <= out[0] ? R : out[0] - rt * R, .m0 = v * 16, .act = (int)pa, .p0 = p0, .p1 = p1};
        run(&c);
    }
    if (act_after && st->f32)
        mixrt_elt_fconv_act(act, p0, p1, y->data, ny);
    else if (act_after) {
        mixrt_elt_fconv_act(act, p0, p1, yf, ny);
        mixrt_f32_to_bf16(yf, (mixrt_bf16 *)y->data, ny);
    }
fail:
    if (owned) mixrt_free(k->ctx, yf, yf_bytes);
    return status;
}

static mixrt_status gconv_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct gconv_state *st = k->state;
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1),
                              *b = mixrt_kernel_opt_input(k, 2), *z = mixrt_kernel_opt_input(k, 3);
    float *braw = NULL, *scratch = NULL;
    size_t scratch_bytes = 0;
    bool owned = false;
    enum mixrt_fconv_act act;
    float p0, p1;
    if (!st || !x || !w || (x->dtype != MIXRT_DTYPE_F32 && x->dtype != MIXRT_DTYPE_BF16) || x->rank != 4 ||
        x->dims[3] != st->c || w->rank != 4 || w->dims[0] != st->c || w->dims[1] != st->g || w->dims[2] != st->kh ||
        w->dims[3] != st->kw || mixrt_node_attr_int(k->node, "group", 1) != st->c / st->g ||
        !mixrt_fconv_read_act(k->node, &act, &p0, &p1) || (b && (b->rank != 1 || b->dims[0] != st->c)) ||
        (!st->b && !b) || mixrt_tensor_numel(x) == 0 ||
        (st->dp && x->dtype != (st->f32 ? MIXRT_DTYPE_F32 : MIXRT_DTYPE_BF16)))
        return mixrt_cpu_run_reference(k);
    const bool bf = x->dtype == MIXRT_DTYPE_BF16;
    int64_t s[2], d[2], p[4];
    MIXRT_TRY(mixrt_kernel_attr_ints_n(k, "strides", 2, 1, 1, INT32_MAX, s));
    MIXRT_TRY(mixrt_kernel_attr_ints_n(k, "dilations", 2, 1, 1, INT32_MAX, d));
    MIXRT_TRY(mixrt_kernel_attr_ints_n(k, "pads", 4, 0, 0, INT32_MAX, p));
    const bool valid = !strcmp(mixrt_node_attr_string(k->node, "auto_pad", "NOTSET"), "VALID");
    if (valid) memset(p, 0, sizeof(p));
    const int64_t in[2] = {x->dims[1], x->dims[2]}, ks[2] = {st->kh, st->kw};
    int64_t out[2];
    for (int i = 0; i < 2; i++) {
        const int64_t dk = (ks[i] - 1) * d[i] + 1;
        if (in[i] + p[i] + p[2 + i] < dk) return mixrt_cpu_run_reference(k); /* the reference words it */
        out[i] = (in[i] + p[i] + p[2 + i] - dk) / s[i] + 1;
    }
    const int64_t ydims[4] = {x->dims[0], out[0], out[1], st->c};
    if (z && (z->dtype != x->dtype || z->rank != 4 || memcmp(z->dims, ydims, sizeof(ydims))))
        return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, 4, ydims, &y));
    const float *bias = st->b;
    if (!bias) {
        if (!(braw = mixrt_alloc(k->ctx, (size_t)st->c * sizeof(float))))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the bias"));
        for (int64_t m = 0; m < st->c; m++) braw[m] = (float)mixrt_load_f64(b->data, b->dtype, (size_t)m);
        bias = braw;
    }
    if (st->dp) {
        status = dp_run(k, st, x, z, y, bias, in, out, s, d, p, act, p0, p1);
        goto fail;
    }
    /* The row kernel: AVX-512 (C a multiple of 16), else AVX2 (G = 4, f32), else the scalar twin. */
    void (*row_fn)(const struct mixrt_gconv_row *) = row_scalar;
#if defined(__x86_64__)
    if (!g_force_scalar && !g_force_avx2 && mixrt_cpu_avx512() && st->c % 16 == 0)
        row_fn = st->g == 4 ? (bf ? mixrt_gconv4_row_avx512_bf16 : mixrt_gconv4_row_avx512)
                            : (bf ? mixrt_gconv8_row_avx512_bf16 : mixrt_gconv8_row_avx512);
    else if (!bf && !g_force_scalar && st->g == 4 && mixrt_cpu_features()->avx2 && mixrt_cpu_features()->fma)
        row_fn = mixrt_gconv4_row_avx2;
#endif
    const int64_t rows = ydims[0] * out[0], row_len = out[1] * st->c, x_img = in[0] * in[1] * st->c;
    const size_t esz = bf ? sizeof(mixrt_bf16) : sizeof(float);
    const char *xd = x->data, *zd = z ? z->data : NULL;
    char *yd = y->data;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
#endif
    /* bf16 Y: each row summed into an f32 row of the thread's scratch, the activation over it,
     * then one rounding to bf16. */
    if (bf) {
        scratch_bytes = (size_t)nt * (size_t)row_len * sizeof(float);
        if (!(scratch = mixrt_kernel_scratch(k, scratch_bytes, &owned)))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of scratch",
                                         scratch_bytes));
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (rows > 1)
#endif
    for (int64_t t = 0; t < rows; t++) {
        const int64_t n = t / out[0];
        int tid = 0;
#ifdef _OPENMP
        tid = omp_get_thread_num();
#endif
        float *yrow = bf ? scratch + (size_t)tid * (size_t)row_len : (float *)(yd + (size_t)(t * row_len) * esz);
        struct mixrt_gconv_row r = {.x = xd + (size_t)(n * x_img) * esz, .w = st->w, .b = bias,
                                    .z = zd ? zd + (size_t)(t * row_len) * esz : NULL, .y = yrow, .xbf16 = bf,
                                    .h = in[0], .wd = in[1], .c = st->c, .ow = out[1], .kh = st->kh, .kw = st->kw,
                                    .sh = s[0], .sw = s[1], .dh = d[0], .dw = d[1], .pt = p[0], .pl = p[1],
                                    .oy = t % out[0], .g = st->g};
        row_fn(&r);
        if (act != MIXRT_FCONV_NONE) mixrt_elt_fconv_act(act, p0, p1, yrow, (size_t)row_len);
        if (bf) mixrt_f32_to_bf16(yrow, (mixrt_bf16 *)yd + t * row_len, (size_t)row_len);
    }
fail:
    if (braw) mixrt_free(k->ctx, braw, (size_t)st->c * sizeof(float));
    if (owned) mixrt_free(k->ctx, scratch, scratch_bytes);
    return status;
}

const struct mixrt_cpu_kernel mixrt_gconv_kernels[] = {
    {"gconv4_nhwc", MIXRT_DOMAIN, "FusedConv", g4_supports, g4_prepare, gconv_release, gconv_run},
    {"gconv8_nhwc", MIXRT_DOMAIN, "FusedConv", g8_supports, g8_prepare, gconv_release, gconv_run},
    {"gconv16_nhwc", MIXRT_DOMAIN, "FusedConv", gdp_supports, g16_prepare, gconv_release, gconv_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
