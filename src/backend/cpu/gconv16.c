/* gconv16.c - "gconv16_nhwc": com.mixrt FusedConv when it is a 2-D grouped conv of G input and G
 * output channels a group, G a multiple of 16 (C = M = G * group), on channels-last bf16 X, Y
 * and Z, on CPUs with AVX512-BF16 (gconv16_avx512.c's kernel; the scalar twin below otherwise
 * only when forced by the tests). W is packed once to bf16 pairs (gconv_impl.h); sums in f32.
 * oneDNN 2.6 ran RegNet-X-400MF's grouped 3x3 convs (group width 16) at 220-420 GFLOP/s in bf16
 * and gconv.c's kernels take G = 4 and 8 only. Work items are (image, output rows, vector of 16
 * output channels), split statically between the threads by rows or by vectors (below). Activations the kernel lacks in register (GELU, tanh, ...) run over
 * an f32 Y afterwards, then one rounding. Timed against oneDNN's kernels like every candidate;
 * `MIXRT_GCONV=off` leaves it out with gconv.c's.
 * Invariant: anything the run cannot do as prepare saw it goes to the reference kernel. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/gconv_impl.h"
#include "backend/cpu/pwconv_impl.h"

static int g_force_scalar; /* tests only */
void mixrt_gconv16_force_scalar(bool scalar);
void mixrt_gconv16_force_scalar(bool scalar) { g_force_scalar = scalar; }

static inline float bfv(uint16_t h) { return mixrt_bf16_to_float((mixrt_bf16){h}); }

/* The scalar twin of one call: the kernel's sums in its order (taps' rows, pairs, taps' columns,
 * each pair's odd product first), then Z, the activation and one rounding. */
static void gdp_scalar(const struct mixrt_gdp_call *c) {
    const int64_t C = c->c, G = c->g, cb = c->m0 / G * G;
    for (int64_t oy = c->oy; oy < c->oy + c->rows; oy++)
        for (int64_t ox = 0; ox < c->ow; ox++)
            for (int64_t m = c->m0; m < c->m0 + 16; m++) {
                float v = c->b[m];
                for (int64_t ky = 0; ky < c->kh; ky++) {
                    const int64_t ih = oy * c->sh - c->pt + ky * c->dh;
                    if (ih < 0 || ih >= c->h) continue;
                    for (int64_t ci = 0; ci < G; ci += 2)
                        for (int64_t kx = 0; kx < c->kw; kx++) {
                            const int64_t iw = ox * c->sw - c->pl + kx * c->dw;
                            if (iw < 0 || iw >= c->wd) continue;
                            const uint16_t *x = c->x + (ih * c->wd + iw) * C + cb + ci;
                            const size_t wi = mixrt_gdp_widx(C, G, ky * c->kw + kx, ci, m);
                            v += bfv(x[1]) * bfv(c->w[wi + 1]);
                            v += bfv(x[0]) * bfv(c->w[wi]);
                        }
                }
                const size_t off = (size_t)((oy * c->ow + ox) * C + m);
                if (c->z) v += bfv(c->z[off]);
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

static bool two_ints(const struct mixrt_node *n, const char *name, int64_t *v) {
    size_t k = 0;
    const int64_t *a = mixrt_node_attr_ints(n, name, &k);
    v[0] = v[1] = 1;
    if (!a) return true;
    if (k != 2 || a[0] < 1 || a[1] < 1 || a[0] > 64 || a[1] > 64) return false;
    v[0] = a[0], v[1] = a[1];
    return true;
}

static bool gdp_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    enum mixrt_fconv_act act;
    float p0, p1;
    int64_t s[2], d[2], pads[4];
    const char *env = getenv("MIXRT_GCONV");
    if (env && !strcmp(env, "off")) return refuse(why, why_size, "disabled by MIXRT_GCONV=off");
    if (!g_force_scalar && !mixrt_pw_hw()) return refuse(why, why_size, "the CPU has no AVX512-BF16");
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
        return refuse(why, why_size, "X, W or Y absent");
    if (!mixrt_fconv_read_act(n, &act, &p0, &p1))
        return refuse(why, why_size, "attribute 'activation' or 'activation_params' is malformed");
    if (mixrt_node_attr_int(n, "channels_last", 0) != 1) return refuse(why, why_size, "not channels-last");
    const struct mixrt_value *xv = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if (xv->dtype != MIXRT_DTYPE_BF16 || yv->dtype != MIXRT_DTYPE_BF16) return refuse(why, why_size, "X and Y not both bf16");
    if (n->n_inputs > 3 && n->inputs[3] >= 0 && g->values[n->inputs[3]].dtype != MIXRT_DTYPE_BF16)
        return refuse(why, why_size, "Z is not bf16");
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
    if (!two_ints(n, "strides", s) || !two_ints(n, "dilations", d))
        return refuse(why, why_size, "strides or dilations malformed or over 64");
    if (!mixrt_fconv_explicit_pads(n, pads, 1024)) return refuse(why, why_size, "auto_pad SAME or malformed pads");
    return true;
}

struct gdp_state {
    int64_t c, g, kh, kw;
    uint16_t *w; /* packed (mixrt_gdp_widx) */
    float *b;    /* the constant bias (zeros when none), or NULL: read at run */
    size_t w_bytes;
};

static void gdp_release(mixrt_context_t ctx, void *state) {
    struct gdp_state *st = state;
    if (!st) return;
    if (st->w) mixrt_free(ctx, st->w, st->w_bytes);
    if (st->b) mixrt_free(ctx, st->b, (size_t)st->c * sizeof(float));
    mixrt_free(ctx, st, sizeof(*st));
}

static mixrt_status gdp_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                void **state) {
    mixrt_status status = MIXRT_STATUS_OK;
    char why[160] = "";
    if (!gdp_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build FusedConv node '%s' with gconv16_nhwc: %s",
                           n->name, why);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    const int bi = n->n_inputs > 2 ? n->inputs[2] : -1;
    const struct mixrt_tensor *b = bi >= 0 && mixrt_graph_is_fixed_const(g, bi) ? g->values[bi].init : NULL;
    struct gdp_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    st->c = w->dims[0], st->g = w->dims[1], st->kh = w->dims[2], st->kw = w->dims[3];
    const int64_t taps = st->kh * st->kw;
    st->w_bytes = (size_t)(taps * st->g * st->c) * sizeof(uint16_t);
    if (!(st->w = mixrt_alloc(ctx, st->w_bytes))) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    /* ONNX W [M, G, KH, KW] -> [tap][pair][m][2] */
    for (int64_t m = 0; m < st->c; m++)
        for (int64_t ci = 0; ci < st->g; ci++)
            for (int64_t t = 0; t < taps; t++)
                st->w[mixrt_gdp_widx(st->c, st->g, t, ci, m)] = mixrt_pw_wbits(w, (size_t)((m * st->g + ci) * taps + t));
    if (bi < 0 || b) {
        MIXRT_CHECK(ctx, !b || (b->rank == 1 && b->dims[0] == st->c), MIXRT_STATUS_INVALID_MODEL,
                    "cannot build FusedConv node '%s': input #2 (B) has %lld elements, expected %lld", n->name,
                    b ? (long long)mixrt_tensor_numel(b) : 0LL, (long long)st->c);
        if (!(st->b = mixrt_alloc(ctx, (size_t)st->c * sizeof(float)))) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
        for (int64_t m = 0; m < st->c; m++) st->b[m] = b ? (float)mixrt_load_f64(b->data, b->dtype, (size_t)m) : 0.0f;
    }
    *state = st;
    return MIXRT_STATUS_OK;
fail:
    gdp_release(ctx, st);
    return status;
}

static mixrt_status gdp_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct gdp_state *st = k->state;
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1),
                              *b = mixrt_kernel_opt_input(k, 2), *z = mixrt_kernel_opt_input(k, 3);
    float *braw = NULL, *yf = NULL;
    size_t yf_bytes = 0;
    bool owned = false;
    enum mixrt_fconv_act act;
    float p0, p1;
    int64_t s[2], d[2], p[4];
    if (!st || !x || !w || x->dtype != MIXRT_DTYPE_BF16 || x->rank != 4 || x->dims[3] != st->c || w->rank != 4 ||
        w->dims[0] != st->c || w->dims[1] != st->g || w->dims[2] != st->kh || w->dims[3] != st->kw ||
        mixrt_node_attr_int(k->node, "group", 1) != st->c / st->g || !mixrt_fconv_read_act(k->node, &act, &p0, &p1) ||
        (b && (b->rank != 1 || b->dims[0] != st->c)) || (!st->b && !b) || mixrt_tensor_numel(x) == 0 ||
        !two_ints(k->node, "strides", s) || !two_ints(k->node, "dilations", d) ||
        !mixrt_fconv_explicit_pads(k->node, p, 1024))
        return mixrt_cpu_run_reference(k);
    const int64_t in[2] = {x->dims[1], x->dims[2]}, ks[2] = {st->kh, st->kw};
    int64_t out[2];
    for (int i = 0; i < 2; i++) {
        const int64_t dk = (ks[i] - 1) * d[i] + 1;
        if (in[i] + p[i] + p[2 + i] < dk) return mixrt_cpu_run_reference(k); /* the reference words it */
        out[i] = (in[i] + p[i] + p[2 + i] - dk) / s[i] + 1;
    }
    const int64_t ydims[4] = {x->dims[0], out[0], out[1], st->c};
    if (z && (z->dtype != MIXRT_DTYPE_BF16 || z->rank != 4 || memcmp(z->dims, ydims, sizeof(ydims))))
        return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_BF16, 4, ydims, &y));
    const float *bias = st->b;
    if (!bias) {
        if (!(braw = mixrt_alloc(k->ctx, (size_t)st->c * sizeof(float))))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the bias"));
        for (int64_t m = 0; m < st->c; m++) braw[m] = (float)mixrt_load_f64(b->data, b->dtype, (size_t)m);
        bias = braw;
    }
    /* Activations the kernel lacks in register: an f32 Y, the activation over it, one rounding. */
    const enum mixrt_pw_act pa = mixrt_pw_act_of(act);
    const bool y_f32 = act != MIXRT_FCONV_NONE && pa == MIXRT_PW_ACT_NONE;
    const size_t ny = (size_t)mixrt_tensor_numel(y);
    if (y_f32) {
        yf_bytes = ny * sizeof(float);
        if (!(yf = mixrt_kernel_scratch(k, yf_bytes, &owned)))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of scratch", yf_bytes));
    }
    void (*run)(const struct mixrt_gdp_call *) = gdp_scalar;
#if defined(__x86_64__)
    if (!g_force_scalar && mixrt_pw_hw()) run = mixrt_gdp_run_avx512;
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
    const uint16_t *xd = x->data, *zd = z ? z->data : NULL;
    void *yd = y_f32 ? (void *)yf : y->data;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (items > 1)
#endif
    for (int64_t t = 0; t < items; t++) {
        const int64_t v = by_rows ? t % nv : t / (nimg * nrt), img = by_rows ? t / nv / nrt : t % (nimg * nrt) / nrt,
                      rt = by_rows ? t / nv % nrt : t % nrt;
        const struct mixrt_gdp_call c = {
            .x = xd + img * x_img, .z = zd ? zd + img * y_img : NULL,
            .y = y_f32 ? (void *)((float *)yd + img * y_img) : (void *)((uint16_t *)yd + img * y_img), .y_f32 = y_f32,
            .w = st->w, .b = bias, .h = in[0], .wd = in[1], .c = st->c, .g = st->g, .ow = out[1], .kh = st->kh,
            .kw = st->kw, .sh = s[0], .sw = s[1], .dh = d[0], .dw = d[1], .pt = p[0], .pl = p[1], .oy = rt * R,
            .rows = rt * R + R <= out[0] ? R : out[0] - rt * R, .m0 = v * 16, .act = (int)pa, .p0 = p0, .p1 = p1};
        run(&c);
    }
    if (y_f32) {
        mixrt_elt_fconv_act(act, p0, p1, yf, ny);
        mixrt_f32_to_bf16(yf, (mixrt_bf16 *)y->data, ny);
    }
fail:
    if (braw) mixrt_free(k->ctx, braw, (size_t)st->c * sizeof(float));
    if (owned) mixrt_free(k->ctx, yf, yf_bytes);
    return status;
}

const struct mixrt_cpu_kernel mixrt_gconv16_kernels[] = {
    {"gconv16_nhwc", MIXRT_DOMAIN, "FusedConv", gdp_supports, gdp_prepare, gdp_release, gdp_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
