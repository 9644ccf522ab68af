/* fused_conv.c - fast kernels of com.mixrt FusedConv (oneDNN conv with post-ops, via dnnl_conv.c)
 * and the channels-last pools (oneDNN pooling on NHWC), f32 and native bf16. Invariant: cases
 * oneDNN cannot do exactly go to the reference kernel, never approximated; empty without oneDNN. */
#include "backend/cpu/kernels.h"

#ifdef MIXRT_HAVE_DNNL
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_impl.h"
#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/fused_conv_impl.h"

/* The post-ops of a FusedConv node; false when its activation attributes are malformed. */
bool mixrt_dnnl_fconv_opts(const struct mixrt_node *n, struct mixrt_dnnl_conv_opts *o) {
    enum mixrt_fconv_act act;
    float p0, p1;
    if (!mixrt_fconv_read_act(n, &act, &p0, &p1)) return false;
    memset(o, 0, sizeof(*o));
    o->channels_last = mixrt_node_attr_int(n, "channels_last", 0) == 1;
    o->sum = n->n_inputs > 3 && n->inputs[3] >= 0;
    o->act = dnnl_alg_kind_undef;
    switch (act) {
    case MIXRT_FCONV_NONE: break;
    case MIXRT_FCONV_RELU: o->act = dnnl_eltwise_relu; break;
    case MIXRT_FCONV_LEAKY_RELU: o->act = dnnl_eltwise_relu, o->alpha = p0; break;
    case MIXRT_FCONV_CLIP: o->act = dnnl_eltwise_clip_v2, o->alpha = p0, o->beta = p1; break;
    case MIXRT_FCONV_SIGMOID: o->act = dnnl_eltwise_logistic; break;
    case MIXRT_FCONV_HARD_SWISH: o->act = dnnl_eltwise_hardswish; break;
    case MIXRT_FCONV_SILU: o->act = dnnl_eltwise_swish, o->alpha = 1.0f; break;
    case MIXRT_FCONV_TANH: o->act = dnnl_eltwise_tanh; break;
    case MIXRT_FCONV_GELU: o->act = dnnl_eltwise_gelu_erf; break;
    case MIXRT_FCONV_GELU_TANH: o->act = dnnl_eltwise_gelu_tanh; break;
    default: return false;
    }
    return true;
}

static bool refuse(char *why, size_t why_size, const char *msg) {
    if (why && why_size) snprintf(why, why_size, "%s", msg);
    return false;
}

static bool fused_conv_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    struct mixrt_dnnl_conv_opts o;
    if (!mixrt_dnnl_fconv_opts(n, &o)) return refuse(why, why_size, "attribute 'activation' or 'activation_params' is malformed");
    int64_t last = mixrt_node_attr_int(n, "channels_last", 0);
    if (last != 0 && last != 1) return refuse(why, why_size, "attribute 'channels_last' is not 0 or 1");
    if (!mixrt_dnnl_conv_supports(g, n, why, why_size)) return false;
    if (o.sum && g->values[n->inputs[3]].dtype != g->values[n->outputs[0]].dtype)
        return refuse(why, why_size, "input #3 (Z) differs from the output's dtype");
    return true;
}

/* Prepares node n's convolution, by Winograd when wino, SiLU as the post-op when swish. */
static mixrt_status prepare_as(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                              bool wino, bool swish, void **state) {
    struct mixrt_dnnl_conv_opts o;
    if (!mixrt_dnnl_fconv_opts(n, &o))
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "cannot build FusedConv node '%s': malformed activation",
                           n->name);
    o.winograd = wino, o.swish_post = swish;
    return mixrt_dnnl_conv_prepare_opts(ctx, g, n, &o, state);
}

static mixrt_status fused_conv_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                       void **state) {
    return prepare_as(ctx, g, n, false, false, state);
}

/* ---- bf16 SiLU as oneDNN's post-op --------------------------------------------------------
 * dnnl_fused_conv splits a bf16 SiLU off (f32 output, then mixrt_elt_silu_to_bf16): half
 * oneDNN's instructions for the activation, but twice the bytes through memory, which loses
 * where the output leaves the cache (EfficientNet-B0's 16 -> 96 1x1 conv at 112x112: 0.34 ms as
 * the post-op against over 0.5 split). This twin keeps the post-op; the builder times both. */
bool mixrt_dnnl_fconv_splits_silu(const struct mixrt_graph *g, const struct mixrt_node *n) {
    struct mixrt_dnnl_conv_opts o;
    return n->n_outputs > 0 && n->outputs[0] >= 0 && mixrt_dnnl_fconv_opts(n, &o) && o.channels_last &&
           mixrt_dnnl_silu_split(o.act, o.alpha, g->values[n->outputs[0]].dtype, o.sum);
}

static bool swish_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!fused_conv_supports(g, n, why, why_size)) return false;
    if (!mixrt_dnnl_fconv_splits_silu(g, n)) return refuse(why, why_size, "no bf16 SiLU split to keep as a post-op");
    return true;
}

static mixrt_status swish_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                  void **state) {
    return prepare_as(ctx, g, n, false, true, state);
}

/* ---- Winograd: f32 3x3 stride-1 convolutions ----------------------------------------------
 * oneDNN's Winograd convolutions (F(2x2,3x3) and F(4x4,3x3) on blocked layouts) do about half
 * the multiplies of the direct ones; with the reorders at the boundary they measured 1.3-1.9x
 * faster on ResNet-50's 3x3 layers here. Rounding differs from the direct sum (transforms in
 * f32), within f32's usual few-ulp-times-depth error. MIXRT_DNNL_WINOGRAD=0 leaves it out. */

static bool wino_enabled(void) {
    const char *e = getenv("MIXRT_DNNL_WINOGRAD");
    return !e || strcmp(e, "0");
}

static bool wino_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!wino_enabled()) return refuse(why, why_size, "MIXRT_DNNL_WINOGRAD=0");
    /* oneDNN 2.6 has Winograd kernels for AVX-512 (F/BW/VL/DQ) only: elsewhere its Winograd
     * request fails and this kernel would run the direct convolution under its name. */
    if (!mixrt_cpu_avx512())
        return refuse(why, why_size, "oneDNN's Winograd needs AVX-512 (this CPU has none)");
    if (!fused_conv_supports(g, n, why, why_size)) return false;
    if (g->values[n->outputs[0]].dtype != MIXRT_DTYPE_F32) return refuse(why, why_size, "not f32");
    /* What oneDNN 2.6's Winograd kernels take (others fall back to direct, measured in
     * test_fuse_conv): pads of at most 1; no activation as a post-op but ReLU (wino_opts runs
     * the others over Y afterwards). */
    size_t cnt = 0;
    const int64_t *v = mixrt_node_attr_ints(n, "pads", &cnt);
    for (size_t i = 0; v && i < cnt; i++)
        if (v[i] > 1) return refuse(why, why_size, "a pad over 1");
    const struct mixrt_value *w = &g->values[n->inputs[1]];
    /* Not the 3-D convs that run as 2-D ones (dnnl_conv.c, conv_geom_as_2d): their batch is N x D,
     * and oneDNN's Winograd scratch of transformed tiles grows with it, outside the engine's
     * Winograd budget (R(2+1)D-18 fp32: 297 ms against 401 without, but a 420 MiB peak against
     * 207, ONNX Runtime's 354). */
    if (w->rank != 4 || w->dims[2].value != 3 || w->dims[3].value != 3)
        return refuse(why, why_size, "weights are not [M, C, 3, 3]");
    /* oneDNN's Winograd kernels work on 16-channel blocks. */
    if (w->dims[0].value % 16 || w->dims[1].value % 16 || w->dims[0].value <= 0 || w->dims[1].value <= 0)
        return refuse(why, why_size, "channels are not a multiple of 16");
    if (mixrt_node_attr_int(n, "group", 1) != 1) return refuse(why, why_size, "grouped");
    v = mixrt_node_attr_ints(n, "strides", &cnt);
    for (size_t i = 0; v && i < cnt; i++)
        if (v[i] != 1) return refuse(why, why_size, "strided");
    v = mixrt_node_attr_ints(n, "dilations", &cnt);
    for (size_t i = 0; v && i < cnt; i++)
        if (v[i] != 1) return refuse(why, why_size, "dilated");
    return true;
}

/* n's options for oneDNN's Winograd primitive: an activation other than ReLU is left out of it
 * (oneDNN 2.6 would run the direct convolution for it) and true returned: wino_run applies it
 * over Y (f32) afterwards, after B and Z (EfficientNetV2's fused-MBConv 3x3 convs with SiLU:
 * 2.6 ms direct at 56x56, 48 -> 192 channels). */
static bool wino_opts(const struct mixrt_node *n, struct mixrt_dnnl_conv_opts *o) {
    if (!mixrt_dnnl_fconv_opts(n, o)) return false;
    o->winograd = true, o->swish_post = false;
    if (o->act == dnnl_alg_kind_undef || (o->act == dnnl_eltwise_relu && o->alpha == 0.0f)) return false;
    o->act = dnnl_alg_kind_undef, o->alpha = o->beta = 0.0f;
    return true;
}

static mixrt_status wino_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                 void **state) {
    struct mixrt_dnnl_conv_opts o;
    if (!mixrt_dnnl_fconv_opts(n, &o))
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "cannot build FusedConv node '%s': malformed activation",
                           n->name);
    (void)wino_opts(n, &o);
    return mixrt_dnnl_conv_prepare_opts(ctx, g, n, &o, state);
}

/* Runs k's node, by Winograd when wino, SiLU as the post-op when swish. */
static mixrt_status run_as(struct mixrt_kernel_ctx *k, bool wino, bool swish) {
    struct mixrt_dnnl_conv_opts o;
    if (!mixrt_dnnl_fconv_opts(k->node, &o)) return mixrt_cpu_run_reference(k); /* it words the error */
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1);
    /* Empty tensors (C == 0 leaves Y = act(B + Z)): nothing for oneDNN to do fast. */
    if (!x || !w || mixrt_tensor_numel(x) == 0 || mixrt_tensor_numel(w) == 0) return mixrt_cpu_run_reference(k);
    o.winograd = wino, o.swish_post = swish;
    return mixrt_dnnl_conv_run_opts(k, &o);
}

static mixrt_status fused_conv_run(struct mixrt_kernel_ctx *k) { return run_as(k, false, false); }
static mixrt_status wino_run(struct mixrt_kernel_ctx *k) {
    struct mixrt_dnnl_conv_opts o;
    enum mixrt_fconv_act act;
    float p0, p1;
    if (!mixrt_dnnl_fconv_opts(k->node, &o) || !mixrt_fconv_read_act(k->node, &act, &p0, &p1))
        return mixrt_cpu_run_reference(k); /* it words the error */
    const bool post = wino_opts(k->node, &o);
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1);
    /* empty tensors, or (never from supports) not f32: the activation pass below is f32 */
    if (!x || !w || mixrt_tensor_numel(x) == 0 || mixrt_tensor_numel(w) == 0 || (post && x->dtype != MIXRT_DTYPE_F32))
        return mixrt_cpu_run_reference(k);
    mixrt_status status = mixrt_dnnl_conv_run_opts(k, &o);
    if (status == MIXRT_STATUS_OK && post)
        mixrt_elt_fconv_act(act, p0, p1, k->out[0].data, mixrt_tensor_numel(&k->out[0]));
    return status;
}
static mixrt_status swish_run(struct mixrt_kernel_ctx *k) { return run_as(k, false, true); }

/* ---- channels-last pools on oneDNN ----------------------------------------------------- */

struct pool_geom {
    int nd;
    int64_t xd[5], yd[5]; /* logical [N, C, D..] */
    dnnl_dims_t k, s, d, pl, pr;
    dnnl_alg_kind_t alg;
};

/* The geometry of k's pool for input x ([N, D.., C]); UNSUPPORTED for what oneDNN cannot do
 * the ONNX way (then the caller runs the reference). */
static mixrt_status pool_geom(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x, struct pool_geom *p) {
    mixrt_status status = MIXRT_STATUS_OK;
    const char *op = k->node->op_type;
    bool global = !strcmp(op, "GlobalAveragePool"), avg = global || !strcmp(op, "AveragePool");
    if (x->rank < 3 || x->rank > 5) return MIXRT_STATUS_UNSUPPORTED;
    p->nd = x->rank - 2;
    p->xd[0] = p->yd[0] = x->dims[0];
    p->xd[1] = p->yd[1] = x->dims[x->rank - 1];
    int64_t ks[3], st[3], dl[3], pads[6];
    for (int i = 0; i < p->nd; i++) p->xd[2 + i] = x->dims[1 + i];
    if (global) {
        for (int i = 0; i < p->nd; i++) ks[i] = p->xd[2 + i], st[i] = 1, dl[i] = 1, pads[i] = pads[p->nd + i] = 0;
        p->alg = dnnl_pooling_avg_exclude_padding;
    } else {
        size_t nk = 0;
        const int64_t *kk = mixrt_node_attr_ints(k->node, "kernel_shape", &nk);
        if (!kk || nk != (size_t)p->nd) return MIXRT_STATUS_UNSUPPORTED;
        for (int i = 0; i < p->nd; i++) {
            if (kk[i] < 1 || kk[i] > INT32_MAX) return MIXRT_STATUS_UNSUPPORTED;
            ks[i] = kk[i];
        }
        if ((status = mixrt_kernel_attr_ints_n(k, "strides", p->nd, 1, 1, INT32_MAX, st)) != MIXRT_STATUS_OK ||
            (status = mixrt_kernel_attr_ints_n(k, "dilations", p->nd, 1, 1, INT32_MAX, dl)) != MIXRT_STATUS_OK ||
            (status = mixrt_kernel_attr_ints_n(k, "pads", 2 * p->nd, 0, 0, INT32_MAX, pads)) != MIXRT_STATUS_OK)
            return status;
        p->alg = !avg ? dnnl_pooling_max
                 : mixrt_node_attr_int(k->node, "count_include_pad", 0) ? dnnl_pooling_avg_include_padding
                                                                          : dnnl_pooling_avg_exclude_padding;
    }
    const char *ap = global ? "VALID" : mixrt_node_attr_string(k->node, "auto_pad", "NOTSET");
    bool ceil_mode = !global && mixrt_node_attr_int(k->node, "ceil_mode", 0) != 0;
    bool same_upper = !strcmp(ap, "SAME_UPPER"), same_lower = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(ap, "NOTSET") && ap[0]) return MIXRT_STATUS_UNSUPPORTED;
    for (int i = 0; i < p->nd; i++) {
        int64_t in = p->xd[2 + i], dk = (ks[i] - 1) * dl[i] + 1, pb, pe, out;
        if (same_upper || same_lower) {
            out = (in + st[i] - 1) / st[i];
            int64_t total = (out - 1) * st[i] + dk - in;
            if (total < 0) total = 0;
            pb = same_upper ? total / 2 : total - total / 2;
            pe = total - pb;
        } else {
            pb = valid ? 0 : pads[i], pe = valid ? 0 : pads[p->nd + i];
            if (in + pb + pe < dk) return MIXRT_STATUS_UNSUPPORTED; /* the reference words it */
            /* ceil_mode: a last window may hang past the end padding (oneDNN pads it further,
             * as padding: no tap for max, none counted for exclude-padding averages), but it
             * must start inside the input or the begin padding (mixrt_window_out's rule). */
            out = mixrt_window_out(in, dk, st[i], pb, pe, ceil_mode);
        }
        /* oneDNN wants every window to touch the input. */
        if (pb >= dk || pe >= dk) return MIXRT_STATUS_UNSUPPORTED;
        p->yd[2 + i] = out;
        p->k[i] = ks[i], p->s[i] = st[i], p->d[i] = dl[i] - 1, p->pl[i] = pb;
        p->pr[i] = (out - 1) * st[i] + dk - in - pb;
        /* An include-padding average counts the explicit end padding but not what ceil_mode
         * hangs past it: oneDNN would count both. */
        if (p->pr[i] > pe && p->alg == dnnl_pooling_avg_include_padding) return MIXRT_STATUS_UNSUPPORTED;
        if (p->pr[i] >= dk) return MIXRT_STATUS_UNSUPPORTED;
    }
    return MIXRT_STATUS_OK;
}

#define DNNL_CALL(expr)                                                                                                \
    do {                                                                                                               \
        call = #expr;                                                                                                  \
        if ((s = (expr)) != dnnl_success) goto dnnl_fail;                                                              \
    } while (0)

static dnnl_format_tag_t last_tag(int rank) {
    return rank == 3 ? dnnl_nwc : rank == 4 ? dnnl_nhwc : dnnl_ndhwc;
}

static bool pool_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!mixrt_dnnl_supports_common(g, n, 1, -1, 3, 5, why, why_size)) return false;
    if (n->n_outputs > 1 && n->outputs[1] >= 0) return refuse(why, why_size, "the Indices output is wanted");
    return true;
}

static mixrt_status pool_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                 void **state) {
    (void)g, (void)n;
    mixrt_status status = mixrt_dnnl_get(ctx, NULL, NULL);
    if (status != MIXRT_STATUS_OK) return status;
    struct mixrt_dnnl_state *st = NULL;
    if ((status = mixrt_dnnl_state_create(ctx, &st)) != MIXRT_STATUS_OK) return status;
    *state = st;
    return MIXRT_STATUS_OK;
}

static mixrt_status pool_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    dnnl_status_t s = dnnl_success;
    const char *call = "";
    struct mixrt_dnnl_state local, *st = k->state;
    bool own = st == NULL, locked = false;
    if (own) mixrt_dnnl_state_init(st = &local);
    dnnl_memory_t xm = NULL, ym = NULL;
    dnnl_primitive_attr_t attr = NULL;
    struct mixrt_dnnl_scratch sc = {0};
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *y = NULL;
    struct pool_geom p;
    mixrt_dtype dt;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_dnnl_check_dtypes(k, 1, -1, &dt));
    mixrt_status gs = mixrt_tensor_numel(x) ? pool_geom(k, x, &p) : MIXRT_STATUS_UNSUPPORTED;
    if (gs == MIXRT_STATUS_UNSUPPORTED) {
        status = mixrt_cpu_run_reference(k);
        goto fail;
    }
    MIXRT_TRY(gs);
    int64_t ydims[5];
    ydims[0] = p.yd[0];
    for (int i = 0; i < p.nd; i++) ydims[1 + i] = p.yd[2 + i];
    ydims[p.nd + 1] = p.yd[1];
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, dt, x->rank, ydims, &y)); /* oneDNN's pooling writes all of it */
    if (mixrt_tensor_numel(y) == 0) goto fail;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    MIXRT_TRY(mixrt_dnnl_get(k->ctx, &eng, &strm));
    pthread_mutex_lock(&st->lock);
    locked = true;
    dnnl_memory_desc_t xmd, ymd;
    dnnl_dims_t xdd, ydd;
    for (int i = 0; i < x->rank; i++) xdd[i] = p.xd[i], ydd[i] = p.yd[i];
    DNNL_CALL(dnnl_memory_desc_init_by_tag(&xmd, x->rank, xdd, mixrt_dnnl_dtype(dt), last_tag(x->rank)));
    DNNL_CALL(dnnl_memory_desc_init_by_tag(&ymd, x->rank, ydd, mixrt_dnnl_dtype(dt), last_tag(x->rank)));
    if (!mixrt_dnnl_state_matches(st, k, 1)) {
        dnnl_pooling_v2_desc_t pd;
        DNNL_CALL(dnnl_pooling_v2_forward_desc_init(&pd, dnnl_forward_inference, p.alg, &xmd, &ymd, p.s, p.k, p.d,
                                                    p.pl, p.pr));
        DNNL_CALL(mixrt_dnnl_attr_user_scratchpad(&attr));
        DNNL_CALL(dnnl_primitive_desc_create(&st->pd, &pd, attr, eng, NULL));
        DNNL_CALL(dnnl_primitive_create(&st->prim, st->pd));
    }
    if ((status = mixrt_dnnl_scratch_take(k, st->pd, 0, &sc)) != MIXRT_STATUS_OK) goto fail;
    DNNL_CALL(dnnl_memory_create(&xm, &xmd, eng, (void *)x->data));
    DNNL_CALL(dnnl_memory_create(&ym, &ymd, eng, y->data));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_SRC, xm}, {DNNL_ARG_DST, ym}};
    if (sc.sp) args[2] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sc.sp};
    DNNL_CALL(dnnl_primitive_execute(st->prim, strm, sc.sp ? 3 : 2, args));
    DNNL_CALL(dnnl_stream_wait(strm));
    goto fail;
dnnl_fail:
    status = mixrt_dnnl_fail(k, s, call);
    mixrt_dnnl_state_clear(st);
fail:
    if (xm) dnnl_memory_destroy(xm);
    if (ym) dnnl_memory_destroy(ym);
    if (attr) dnnl_primitive_attr_destroy(attr);
    mixrt_dnnl_scratch_put(k->ctx, &sc);
    if (locked) pthread_mutex_unlock(&st->lock);
    if (own) {
        mixrt_dnnl_state_clear(st);
        pthread_mutex_destroy(&st->lock);
    }
    return status;
}

#undef DNNL_CALL

const struct mixrt_cpu_kernel mixrt_fused_conv_kernels[] = {
    {"dnnl_fused_conv", MIXRT_DOMAIN, "FusedConv", fused_conv_supports, fused_conv_prepare, mixrt_dnnl_state_release,
     fused_conv_run},
    {"dnnl_wino_conv", MIXRT_DOMAIN, "FusedConv", wino_supports, wino_prepare, mixrt_dnnl_state_release, wino_run},
    {"dnnl_fused_conv_swish", MIXRT_DOMAIN, "FusedConv", swish_supports, swish_prepare, mixrt_dnnl_state_release,
     swish_run},
    {"dnnl_pool_nhwc", MIXRT_DOMAIN, "MaxPool", pool_supports, pool_prepare, mixrt_dnnl_state_release, pool_run},
    {"dnnl_pool_nhwc", MIXRT_DOMAIN, "AveragePool", pool_supports, pool_prepare, mixrt_dnnl_state_release, pool_run},
    {"dnnl_pool_nhwc", MIXRT_DOMAIN, "GlobalAveragePool", pool_supports, pool_prepare, mixrt_dnnl_state_release,
     pool_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
#else
const struct mixrt_cpu_kernel mixrt_fused_conv_kernels[] = {{NULL, NULL, NULL, NULL, NULL, NULL, NULL}};
#endif /* MIXRT_HAVE_DNNL */
