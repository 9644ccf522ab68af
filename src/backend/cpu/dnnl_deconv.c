/* dnnl_deconv.c - ConvTranspose on oneDNN's deconvolution, f32/bf16, 1-3 spatial dims, groups,
 * strides, dilations, pads and output_padding (taken as less padding at the end). NCHW at the
 * boundary, reordered to the layouts oneDNN picks. Invariant: constant-initializer weights are
 * reordered once per chosen layout; what oneDNN cannot express (output_shape, auto_pad SAME_*,
 * output_padding beyond the end pad) is refused in supports(), so the reference runs it. */
#ifdef MIXRT_HAVE_DNNL
#include <stdio.h>
#include <string.h>

#include "backend/cpu/dnnl_impl.h"

/* Attribute values above this are refused, which keeps the window arithmetic in int64. */
#define DECONV_ATTR_MAX INT32_MAX

struct deconv_geom {
    int nd;
    int64_t N, C, M, G;
    int64_t in[3], k[3], s[3], d[3], pl[3], pr[3], out[3]; /* pr: the end pad less output_padding */
    int64_t ydims[5];
};

/* Validates X [N, C, D..], W [C, M/G, k..], B [M] and the attributes; fills g. */
static mixrt_status deconv_geom(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x, const struct mixrt_tensor *w,
                                const struct mixrt_tensor *b, struct deconv_geom *g) {
    mixrt_status status;
    if (x->rank < 3 || x->rank > 5)
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_UNSUPPORTED, 0, x, "the oneDNN kernel takes 1 to 3 spatial dims");
    g->nd = x->rank - 2;
    g->N = x->dims[0], g->C = x->dims[1];
    g->G = mixrt_node_attr_int(k->node, "group", 1);
    if (g->G < 1 || g->G > DECONV_ATTR_MAX || g->C % g->G)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'group' is %lld, expected >= 1 dividing C=%lld",
                                  (long long)g->G, (long long)g->C);
    if (w->rank != x->rank || w->dims[0] != g->C || w->dims[1] < 1)
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, w, "expected [C=%lld, M/group, k1..k%d] (rank %d)",
                                    (long long)g->C, g->nd, x->rank);
    g->M = w->dims[1] * g->G;
    if (b && (b->rank != 1 || b->dims[0] != g->M))
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, b, "expected [M=%lld]", (long long)g->M);
    size_t kcnt = 0;
    const int64_t *ks = mixrt_node_attr_ints(k->node, "kernel_shape", &kcnt);
    int64_t pads[6], opad[3];
    if ((status = mixrt_kernel_attr_ints_n(k, "strides", g->nd, 1, 1, DECONV_ATTR_MAX, g->s)) != MIXRT_STATUS_OK ||
        (status = mixrt_kernel_attr_ints_n(k, "dilations", g->nd, 1, 1, DECONV_ATTR_MAX, g->d)) != MIXRT_STATUS_OK ||
        (status = mixrt_kernel_attr_ints_n(k, "pads", 2 * g->nd, 0, 0, DECONV_ATTR_MAX, pads)) != MIXRT_STATUS_OK ||
        (status = mixrt_kernel_attr_ints_n(k, "output_padding", g->nd, 0, 0, DECONV_ATTR_MAX, opad)) != MIXRT_STATUS_OK)
        return status;
    bool valid = !strcmp(mixrt_node_attr_string(k->node, "auto_pad", "NOTSET"), "VALID");
    g->ydims[0] = g->N, g->ydims[1] = g->M;
    for (int i = 0; i < g->nd; i++) {
        g->k[i] = w->dims[2 + i];
        g->in[i] = x->dims[2 + i];
        if (g->k[i] < 1 || g->k[i] > DECONV_ATTR_MAX || (ks && (kcnt != (size_t)g->nd || ks[i] != g->k[i])))
            return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, w,
                                        "expected kernel dims in 1..%lld (and equal to attribute 'kernel_shape')",
                                        (long long)DECONV_ATTR_MAX);
        g->pl[i] = valid ? 0 : pads[i];
        g->pr[i] = (valid ? 0 : pads[g->nd + i]) - opad[i];
        if (g->pr[i] < 0)
            return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED,
                                      "spatial axis %d: output_padding %lld exceeds the end pad (the oneDNN kernel "
                                      "cannot extend the output)", i, (long long)opad[i]);
        int64_t dk = (g->k[i] - 1) * g->d[i] + 1;
        g->out[i] = g->s[i] * (g->in[i] - 1) + dk - g->pl[i] - g->pr[i];
        if (g->out[i] < 1)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "spatial axis %d: output dim %lld < 1 (input %lld, stride %lld, kernel extent "
                                      "%lld, pads %lld+%lld, output_padding %lld)",
                                      i, (long long)g->out[i], (long long)g->in[i], (long long)g->s[i], (long long)dk,
                                      (long long)g->pl[i], (long long)(g->pr[i] + opad[i]), (long long)opad[i]);
        g->ydims[2 + i] = g->out[i];
    }
    return MIXRT_STATUS_OK;
}

#define DNNL_DO(expr)                                                                                                  \
    do {                                                                                                               \
        call = #expr;                                                                                                  \
        if ((s = (expr)) != dnnl_success) goto dnnl_fail;                                                              \
    } while (0)

/* ONNX's W [C, M/G, k..] as oneDNN's deconvolution weights (G, M/G, C/G, k..) (no G axis
 * without groups): the same buffer, read at the strides of ONNX's order. */
static dnnl_status_t user_weights_md(dnnl_memory_desc_t *md, const struct deconv_geom *g, dnnl_data_type_t dt) {
    dnnl_dims_t d, st;
    int64_t kprod = 1, r = 0;
    for (int i = 0; i < g->nd; i++) kprod *= g->k[i];
    int64_t mg = g->M / g->G, cg = g->C / g->G;
    if (g->G > 1) d[r] = g->G, st[r++] = cg * mg * kprod;
    d[r] = mg, st[r++] = kprod;
    d[r] = cg, st[r++] = mg * kprod;
    for (int i = 0, inner = (int)kprod; i < g->nd; i++) {
        inner /= (int)g->k[i];
        d[r] = g->k[i], st[r++] = inner;
    }
    return dnnl_memory_desc_init_by_strides(md, (int)r, d, dt, st);
}

/* oneDNN's first implementation of dd, or (gemm) its first GEMM-based one ("x64:gemm:jit": a
 * product of the weights and the input, then the columns scattered into the output), which
 * beat the direct JIT kernel of oneDNN 2.6 on strided deconvolutions by a wide margin; where
 * there is none, the first one (a duplicate candidate is harmless, a failing one is not). */
static dnnl_status_t pick_impl(const dnnl_deconvolution_desc_t *dd, dnnl_engine_t eng, bool gemm,
                               dnnl_primitive_desc_t *pd) {
    dnnl_primitive_desc_iterator_t it = NULL;
    dnnl_primitive_attr_t attr = NULL; /* the engine's scratch: dnnl_impl.h */
    dnnl_status_t s = mixrt_dnnl_attr_user_scratchpad(&attr);
    if (s == dnnl_success) s = dnnl_primitive_desc_iterator_create(&it, dd, attr, eng, NULL);
    if (attr) dnnl_primitive_attr_destroy(attr);
    if (s != dnnl_success) return s;
    for (;;) {
        dnnl_primitive_desc_t cand = dnnl_primitive_desc_iterator_fetch(it);
        const char *impl = NULL;
        if (!cand) {
            s = dnnl_runtime_error;
            break;
        }
        if (!gemm || (dnnl_primitive_desc_query(cand, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
                      strstr(impl, "gemm"))) {
            *pd = cand;
            break;
        }
        dnnl_primitive_desc_destroy(cand);
        if ((s = dnnl_primitive_desc_iterator_next(it)) != dnnl_success) {
            dnnl_primitive_desc_iterator_destroy(it);
            return gemm ? pick_impl(dd, eng, false, pd) : s;
        }
    }
    dnnl_primitive_desc_iterator_destroy(it);
    return s;
}

/* Builds st's deconvolution for g (layouts left to oneDNN) and the boundary reorders. */
static mixrt_status deconv_build(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st, const struct deconv_geom *g,
                                 mixrt_dtype dt, const struct mixrt_tensor *b, bool gemm) {
    mixrt_status status = MIXRT_STATUS_OK;
    dnnl_status_t s;
    const char *call = "";
    dnnl_engine_t eng;
    MIXRT_TRY(mixrt_dnnl_get(k->ctx, &eng, NULL));
    dnnl_data_type_t ddt = mixrt_dnnl_dtype(dt);
    int rx = g->nd + 2;
    int64_t xd[5] = {g->N, g->C};
    for (int i = 0; i < g->nd; i++) xd[2 + i] = g->in[i];
    dnnl_dims_t xdd, ydd, str, dil, pl, pr;
    for (int i = 0; i < rx; i++) xdd[i] = xd[i], ydd[i] = g->ydims[i];
    for (int i = 0; i < g->nd; i++) str[i] = g->s[i], dil[i] = g->d[i] - 1, pl[i] = g->pl[i], pr[i] = g->pr[i];
    dnnl_memory_desc_t x_any, w_any, y_any, b_md;
    DNNL_DO(user_weights_md(&st->wei_user_md, g, ddt));
    DNNL_DO(dnnl_memory_desc_init_by_tag(&w_any, st->wei_user_md.ndims, st->wei_user_md.dims, ddt,
                                         dnnl_format_tag_any));
    DNNL_DO(dnnl_memory_desc_init_by_tag(&x_any, rx, xdd, ddt, dnnl_format_tag_any));
    DNNL_DO(dnnl_memory_desc_init_by_tag(&y_any, rx, ydd, ddt, dnnl_format_tag_any));
    DNNL_DO(mixrt_dnnl_plain_md(&st->src_user_md, rx, xd, ddt));
    DNNL_DO(mixrt_dnnl_plain_md(&st->dst_user_md, rx, g->ydims, ddt));
    if (b) DNNL_DO(mixrt_dnnl_plain_md(&b_md, 1, &g->M, mixrt_dnnl_dtype(b->dtype)));
    /* oneDNN's GEMM-based implementations take plain layouts only. */
    if (gemm) x_any = st->src_user_md, y_any = st->dst_user_md;
    dnnl_deconvolution_desc_t dd;
    DNNL_DO(dnnl_dilated_deconvolution_forward_desc_init(&dd, dnnl_forward_inference, dnnl_deconvolution_direct, &x_any,
                                                         &w_any, b ? &b_md : NULL, &y_any, str, dil, pl, pr));
    DNNL_DO(pick_impl(&dd, eng, gemm, &st->pd));
    DNNL_DO(dnnl_primitive_create(&st->prim, st->pd));
    DNNL_DO(mixrt_dnnl_boundary(eng, st, false));
    return MIXRT_STATUS_OK;
dnnl_fail:
    status = mixrt_dnnl_fail(k, s, call);
    mixrt_dnnl_state_clear(st);
fail:
    return status;
}

/* Brings st to k's input shapes and, for constant weights, the reordered weights up to date.
 * Called with st->lock held. */
static mixrt_status deconv_ensure(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st, const struct deconv_geom *g,
                                  mixrt_dtype dt, const struct mixrt_tensor *w, const struct mixrt_tensor *b, bool gemm) {
    mixrt_status status = MIXRT_STATUS_OK;
    if (!mixrt_dnnl_state_matches(st, k, 3)) MIXRT_TRY(deconv_build(k, st, g, dt, b, gemm));
    if (st->wei_const && st->wei_reorder && !st->wei_ready && w->data) MIXRT_TRY(mixrt_dnnl_weights_reorder(k, st, w));
fail:
    return status;
}

#undef DNNL_DO

bool mixrt_dnnl_deconv_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!mixrt_dnnl_supports_common(g, n, 2, 2, 3, 5, why, why_size)) return false;
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    size_t cnt = 0, pcnt = 0;
    const char *no = NULL;
    if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID") && ap[0]) no = "attribute 'auto_pad' other than NOTSET or VALID";
    else if (mixrt_node_attr_ints(n, "output_shape", &cnt)) no = "attribute 'output_shape'";
    const int64_t *op = mixrt_node_attr_ints(n, "output_padding", &cnt);
    const int64_t *pads = mixrt_node_attr_ints(n, "pads", &pcnt);
    bool valid = !strcmp(ap, "VALID");
    for (size_t i = 0; !no && op && i < cnt; i++)
        if (op[i] > (valid || !pads || pcnt != 2 * cnt ? 0 : pads[cnt + i]))
            no = "output_padding beyond the end pad (oneDNN cannot extend the output)";
    if (no) {
        if (why && why_size) snprintf(why, why_size, "%s", no);
        return false;
    }
    return true;
}

/* Runs (and, with a state, caches) the deconvolution; the entry of both prepare and run. */
static mixrt_status deconv_run(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st, bool output, bool gemm) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *w = NULL, *b = mixrt_kernel_opt_input(k, 2);
    mixrt_dtype dt;
    struct deconv_geom g;
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &w));
    MIXRT_TRY(mixrt_dnnl_check_dtypes(k, 2, 2, &dt));
    MIXRT_TRY(deconv_geom(k, x, w, b, &g));
    if (!output) {
        if (g.N > 0 && g.C > 0 && mixrt_tensor_numel(w) > 0) status = deconv_ensure(k, st, &g, dt, w, b, gemm);
        goto fail;
    }
    MIXRT_TRY(mixrt_kernel_output(k, 0, dt, x->rank, g.ydims, &y));
    size_t ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    if (g.C == 0) {
        /* No input channels: every output is its channel's bias (or 0). */
        size_t per = ny / (size_t)(g.N * g.M);
        for (size_t i = 0; i < ny; i++)
            mixrt_store_f64(y->data, dt, i, b ? mixrt_load_f64(b->data, b->dtype, (i / per) % (size_t)g.M) : 0.0);
        goto fail;
    }
    MIXRT_TRY(deconv_ensure(k, st, &g, dt, w, b, gemm));
    status = mixrt_dnnl_conv_exec(k, st, x, w, b, NULL, false, y);
fail:
    return status;
}

static mixrt_status deconv_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                   void **state, bool gemm) {
    mixrt_status status = mixrt_dnnl_get(ctx, NULL, NULL);
    if (status != MIXRT_STATUS_OK) return status;
    struct mixrt_dnnl_state *st = NULL;
    if ((status = mixrt_dnnl_state_create(ctx, &st)) != MIXRT_STATUS_OK) return status;
    const struct mixrt_value *xv = n->n_inputs > 0 && n->inputs[0] >= 0 ? &g->values[n->inputs[0]] : NULL;
    const struct mixrt_value *wv = n->n_inputs > 1 && n->inputs[1] >= 0 ? &g->values[n->inputs[1]] : NULL;
    const struct mixrt_value *bv = n->n_inputs > 2 && n->inputs[2] >= 0 ? &g->values[n->inputs[2]] : NULL;
    /* An initializer that is also a graph input can be overridden, so it is not constant. */
    st->wei_const = wv && wv->init && !(wv->flags & MIXRT_VALUE_GRAPH_INPUT);
    if (st->wei_const) mixrt_dnnl_wei_key(st, g, n);
    /* With X's shape known now, build and reorder the weights here, once; otherwise (or when
     * the shapes do not validate) the first run does, and reports. */
    bool known = st->wei_const && xv && xv->rank >= 3 && xv->rank <= 5 && xv->dtype == wv->init->dtype &&
                 (!bv || (bv->rank == 1 && bv->dims[0].value >= 0 && mixrt_dnnl_dtype(bv->dtype)));
    for (int i = 0; known && i < xv->rank; i++) known = xv->dims[i].value >= 0;
    if (known) {
        struct mixrt_tensor fx = {0}, fb = {0};
        fx.dtype = xv->dtype, fx.rank = xv->rank;
        for (int i = 0; i < xv->rank; i++) fx.dims[i] = xv->dims[i].value;
        if (bv) fb.dtype = bv->dtype, fb.rank = 1, fb.dims[0] = bv->dims[0].value;
        const struct mixrt_tensor *in[3] = {&fx, wv->init, bv ? &fb : NULL};
        const struct mixrt_seq *in_seq[3] = {NULL, NULL, NULL};
        struct mixrt_kernel_ctx k = {.ctx = ctx, .graph = g, .node = n, .opset = n->opset,
                                     .n_in = n->n_inputs < 3 ? n->n_inputs : 3, .in = in, .in_seq = in_seq};
        pthread_mutex_lock(&st->lock);
        /* A failure here is left for the run to report with its real inputs. */
        (void)deconv_run(&k, st, false, gemm);
        pthread_mutex_unlock(&st->lock);
    }
    *state = st;
    return MIXRT_STATUS_OK;
}

static mixrt_status deconv_run_state(struct mixrt_kernel_ctx *k, bool gemm) {
    struct mixrt_dnnl_state local, *st = k->state;
    bool own = st == NULL;
    if (own) mixrt_dnnl_state_init(st = &local);
    pthread_mutex_lock(&st->lock);
    mixrt_status status = deconv_run(k, st, true, gemm);
    pthread_mutex_unlock(&st->lock);
    if (own) {
        mixrt_dnnl_state_clear(st);
        pthread_mutex_destroy(&st->lock);
    }
    return status;
}

mixrt_status mixrt_dnnl_deconv_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                       void **state) {
    return deconv_prepare(ctx, g, n, state, false);
}
mixrt_status mixrt_dnnl_deconv_run(struct mixrt_kernel_ctx *k) { return deconv_run_state(k, false); }
mixrt_status mixrt_dnnl_deconv_gemm_prepare(mixrt_context_t ctx, const struct mixrt_graph *g,
                                            const struct mixrt_node *n, void **state) {
    return deconv_prepare(ctx, g, n, state, true);
}
mixrt_status mixrt_dnnl_deconv_gemm_run(struct mixrt_kernel_ctx *k) { return deconv_run_state(k, true); }

/* f32 only: oneDNN 2.6's gemm deconvolution in bf16 took 278 ms on Mask R-CNN's mask head (the
 * default implementation ~2x less), and the builder takes it untimed where shapes are unknown. */
bool mixrt_dnnl_deconv_gemm_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why,
                                     size_t why_size) {
    if (!mixrt_dnnl_deconv_supports(g, n, why, why_size)) return false;
    if (g->values[n->inputs[0]].dtype != MIXRT_DTYPE_F32) {
        if (why && why_size) snprintf(why, why_size, "gemm deconvolution in %s (f32 only)",
                                      mixrt_dtype_name(g->values[n->inputs[0]].dtype));
        return false;
    }
    return true;
}

#else
typedef int mixrt_dnnl_deconv_unused; /* ISO C wants a declaration in every translation unit */
#endif /* MIXRT_HAVE_DNNL */
