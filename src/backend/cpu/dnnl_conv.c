/* dnnl_conv.c - Conv and com.mixrt FusedConv (residual, activation as post-ops; NCHW reordered to
 * oneDNN's blocked layouts, channels-last passed as is) on oneDNN, f32/bf16, 1-3 spatial dims.
 * Invariant: constant-initializer weights are reordered once per chosen layout. */
#ifdef MIXRT_HAVE_DNNL
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_impl.h"
#include "backend/cpu/eltwise_impl.h"

/* Attribute values above this are refused, which keeps the window arithmetic in int64. */
#define CONV_ATTR_MAX INT32_MAX

struct conv_geom {
    int nd;
    int64_t N, C, M, G;
    int64_t in[3], k[3], s[3], d[3], pb[3], pe[3], out[3];
    int64_t ydims[5];
};

/* Validates X, W, B and the attributes; fills g (output dims, resolved pads). */
static mixrt_status conv_geom(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x, const struct mixrt_tensor *w,
                              const struct mixrt_tensor *b, struct conv_geom *g) {
    mixrt_status status;
    if (x->rank < 3)
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x,
                                    "expected [N, C, D1, ...] with at least one spatial dim");
    if (x->rank > 5)
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_UNSUPPORTED, 0, x, "the oneDNN kernel takes 1 to 3 spatial dims");
    g->nd = x->rank - 2;
    g->N = x->dims[0], g->C = x->dims[1];
    g->G = mixrt_node_attr_int(k->node, "group", 1);
    if (g->G < 1 || g->G > CONV_ATTR_MAX)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'group' is %lld, expected >= 1",
                                  (long long)g->G);
    if (g->C % g->G)
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x, "expected C=%lld divisible by group=%lld",
                                    (long long)g->C, (long long)g->G);
    int64_t cg = g->C / g->G;
    g->M = w->rank >= 1 ? w->dims[0] : 0;
    if (w->rank != x->rank || w->dims[1] != cg || g->M % g->G)
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, w,
                                    "expected [M, C/group=%lld, k1..k%d] (rank %d) with M divisible by group=%lld",
                                    (long long)cg, g->nd, x->rank, (long long)g->G);
    size_t kcnt = 0;
    const int64_t *ks = mixrt_node_attr_ints(k->node, "kernel_shape", &kcnt);
    for (int i = 0; i < g->nd; i++) {
        g->k[i] = w->dims[2 + i];
        g->in[i] = x->dims[2 + i];
        if (g->k[i] < 1 || g->k[i] > CONV_ATTR_MAX || (ks && (kcnt != (size_t)g->nd || ks[i] != g->k[i]))) {
            char d[256] = "";
            if (ks) mixrt_dims_str(d, sizeof(d), (int)kcnt, ks);
            return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, w, "expected kernel dims in 1..%lld%s%s",
                                        (long long)CONV_ATTR_MAX, ks ? " equal to attribute 'kernel_shape' " : "", d);
        }
    }
    if (b && (b->rank != 1 || b->dims[0] != g->M))
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, b, "expected [M=%lld]", (long long)g->M);
    const char *ap = mixrt_node_attr_string(k->node, "auto_pad", "NOTSET");
    bool same_upper = !strcmp(ap, "SAME_UPPER"), same_lower = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(ap, "NOTSET") && ap[0])
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "attribute 'auto_pad' is '%s', expected NOTSET, SAME_UPPER, SAME_LOWER or VALID", ap);
    int64_t pads[6];
    if ((status = mixrt_kernel_attr_ints_n(k, "strides", g->nd, 1, 1, CONV_ATTR_MAX, g->s)) != MIXRT_STATUS_OK ||
        (status = mixrt_kernel_attr_ints_n(k, "dilations", g->nd, 1, 1, CONV_ATTR_MAX, g->d)) != MIXRT_STATUS_OK ||
        (status = mixrt_kernel_attr_ints_n(k, "pads", 2 * g->nd, 0, 0, CONV_ATTR_MAX, pads)) != MIXRT_STATUS_OK)
        return status;
    g->ydims[0] = g->N, g->ydims[1] = g->M;
    for (int i = 0; i < g->nd; i++) {
        int64_t in = g->in[i], s = g->s[i], dk = (g->k[i] - 1) * g->d[i] + 1;
        if (same_upper || same_lower) {
            /* Output ceil(in / s); the total padding that needs, the odd one at the end
             * (SAME_UPPER) or the beginning (SAME_LOWER). */
            int64_t out = (in + s - 1) / s, total = (out - 1) * s + dk - in;
            if (total < 0) total = 0;
            g->pb[i] = same_upper ? total / 2 : total - total / 2;
            g->pe[i] = total - g->pb[i];
            g->out[i] = out;
        } else {
            g->pb[i] = valid ? 0 : pads[i];
            g->pe[i] = valid ? 0 : pads[g->nd + i];
            int64_t span = in + g->pb[i] + g->pe[i] - dk;
            if (span < 0)
                return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                          "spatial axis %d: the dilated kernel extent %lld exceeds the padded input "
                                          "%lld: output dim would be < 1",
                                          i, (long long)dk, (long long)(in + g->pb[i] + g->pe[i]));
            g->out[i] = span / s + 1;
        }
        g->ydims[2 + i] = g->out[i];
    }
    return MIXRT_STATUS_OK;
}

/* A channels-last 3-D convolution that is a 2-D one on the same bytes, as that 2-D one: oneDNN
 * 2.6's 2-D kernels (and its Winograd, for 3x3) run these far faster than its 3-D ones (R(2+1)D's
 * factored convs here: the 1x3x3 64 -> 144 at 16x56x56 50 ms as 3-D, 24.5 by 2-D Winograd; the 3x1x1
 * 144 -> 64 25 ms, 18 as 2-D). [N, D, H, W, C] in memory is
 * - with a 1 x kh x kw kernel, depth stride 1 and no depth pads: a 2-D [N * D, H, W, C];
 * - with a kd x 1 x 1 kernel, unit height and width strides and no pads there: a 2-D [N, D, H * W, C]
 *   by a kd x 1 kernel.
 * The weights [M, C/G, 1, kh, kw] or [M, C/G, kd, 1, 1] are the same buffer as the 2-D ones. g's
 * ydims become the 2-D output's (same bytes); the caller keeps the node's own for Y. */
static void conv_geom_as_2d(struct conv_geom *g) {
    if (g->nd != 3) return;
    if (g->k[0] == 1 && g->s[0] == 1 && g->pb[0] == 0 && g->pe[0] == 0) {
        g->N *= g->in[0];
        for (int i = 0; i < 2; i++) {
            g->in[i] = g->in[i + 1], g->k[i] = g->k[i + 1], g->s[i] = g->s[i + 1], g->d[i] = g->d[i + 1];
            g->pb[i] = g->pb[i + 1], g->pe[i] = g->pe[i + 1], g->out[i] = g->out[i + 1];
        }
    } else if (g->k[1] == 1 && g->k[2] == 1 && g->s[1] == 1 && g->s[2] == 1 && g->pb[1] == 0 && g->pe[1] == 0 &&
               g->pb[2] == 0 && g->pe[2] == 0) {
        const int64_t hw = g->in[1] * g->in[2];
        g->in[1] = hw, g->k[1] = 1, g->s[1] = 1, g->d[1] = 1, g->pb[1] = 0, g->pe[1] = 0, g->out[1] = hw;
    } else {
        return;
    }
    g->nd = 2;
    g->ydims[0] = g->N, g->ydims[1] = g->M, g->ydims[2] = g->out[0], g->ydims[3] = g->out[1], g->ydims[4] = 0;
}

/* Plain user-side weights: [G, M/G, C/G, k...] is the same buffer as ONNX's [M, C/G, k...]. */
static int weights_dims(const struct conv_geom *g, int64_t *wd) {
    int r = 0;
    if (g->G > 1) wd[r++] = g->G;
    wd[r++] = g->M / g->G;
    wd[r++] = g->C / g->G;
    for (int i = 0; i < g->nd; i++) wd[r++] = g->k[i];
    return r;
}

#define DNNL_DO(expr)                                                                                                  \
    do {                                                                                                               \
        call = #expr;                                                                                                  \
        if ((s = (expr)) != dnnl_success) goto dnnl_fail;                                                              \
    } while (0)

/* A reorder primitive from -> to; its scratchpad the runs' (user mode) when user_sp. */
dnnl_status_t mixrt_dnnl_make_reorder(dnnl_engine_t eng, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                      bool user_sp, dnnl_primitive_t *out) {
    dnnl_primitive_desc_t pd = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_status_t s = user_sp ? mixrt_dnnl_attr_user_scratchpad(&attr) : dnnl_success;
    if (s == dnnl_success) s = dnnl_reorder_primitive_desc_create(&pd, from, eng, to, eng, attr);
    if (s == dnnl_success) s = dnnl_primitive_create(out, pd);
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return s;
}

/* Reorders between the plain tensors at the boundary and the layouts st->pd chose (src and
 * dst; Z into dst too when sum; their buffers are the engine's scratch at each run), and the
 * weights memory: kept from before a rebuild when its layout is the same, else made for the
 * chosen layout (none when that is the plain one). */
dnnl_status_t mixrt_dnnl_boundary(dnnl_engine_t eng, struct mixrt_dnnl_state *st, bool sum) {
    dnnl_status_t s;
#define TRY_DNNL(expr)                                                                                                 \
    do {                                                                                                               \
        if ((s = (expr)) != dnnl_success) return s;                                                                    \
    } while (0)
    const dnnl_memory_desc_t *x_md = dnnl_primitive_desc_query_md(st->pd, dnnl_query_src_md, 0);
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(st->pd, dnnl_query_weights_md, 0);
    const dnnl_memory_desc_t *y_md = dnnl_primitive_desc_query_md(st->pd, dnnl_query_dst_md, 0);
    if (!x_md || !w_md || !y_md) return dnnl_runtime_error;
    if (!dnnl_memory_desc_equal(x_md, &st->src_user_md)) {
        TRY_DNNL(mixrt_dnnl_make_reorder(eng, &st->src_user_md, x_md, false, &st->src_reorder));
        TRY_DNNL(dnnl_memory_create(&st->src_mem, x_md, eng, DNNL_MEMORY_NONE));
    }
    if (!st->silu_split && !dnnl_memory_desc_equal(y_md, &st->dst_user_md)) {
        TRY_DNNL(mixrt_dnnl_make_reorder(eng, y_md, &st->dst_user_md, false, &st->dst_reorder));
        TRY_DNNL(dnnl_memory_create(&st->dst_mem, y_md, eng, DNNL_MEMORY_NONE));
        if (sum) TRY_DNNL(mixrt_dnnl_make_reorder(eng, &st->dst_user_md, y_md, false, &st->dst_in_reorder));
    }
    /* Weights kept from before the rebuild stay only if the new layout is the same. */
    if (st->wei_mem) {
        const dnnl_memory_desc_t *kept = NULL;
        if (dnnl_memory_get_memory_desc(st->wei_mem, &kept) != dnnl_success || !kept ||
            !dnnl_memory_desc_equal(kept, w_md))
            mixrt_dnnl_wei_drop(st);
    }
    if (!dnnl_memory_desc_equal(w_md, &st->wei_user_md)) {
        TRY_DNNL(mixrt_dnnl_make_reorder(eng, &st->wei_user_md, w_md, true, &st->wei_reorder));
        if (!st->wei_mem) TRY_DNNL(mixrt_dnnl_wei_alloc(eng, st, w_md)); /* maybe another node's, filled */
    } else if (st->wei_mem) {
        mixrt_dnnl_wei_drop(st);
    }
#undef TRY_DNNL
    return dnnl_success;
}

/* Builds st's convolution for g (layouts left to oneDNN) and the boundary reorders. */
/* Channels-last memory descriptor of logical dims [N, C, D1..] (rank r): C innermost. */
static dnnl_status_t channels_last_md(dnnl_memory_desc_t *md, int r, const int64_t *dims, dnnl_data_type_t dt) {
    dnnl_dims_t d, str;
    int64_t stride = 1;
    for (int i = 0; i < r; i++) d[i] = dims[i];
    str[1] = stride, stride *= dims[1] > 0 ? dims[1] : 1;
    for (int i = r - 1; i >= 2; i--) str[i] = stride, stride *= dims[i] > 0 ? dims[i] : 1;
    str[0] = stride;
    return dnnl_memory_desc_init_by_strides(md, r, d, dt, str);
}

/* The first implementation, in oneDNN's order of preference, whose primitive can be made.
 * oneDNN 2.6 lists some (bf16 grouped convolutions with a logistic or swish post-op) whose
 * JIT then fails with runtime_error; the next one in the list runs the same math. */
/* Limits on a Winograd candidate (wino_too_big); NULL for none. */
struct wino_limit {
    const int64_t *xd, *wd, *yd;
    int rx, rw;
};
static bool wino_too_big(const_dnnl_primitive_desc_t pd, const struct wino_limit *l);

static dnnl_status_t first_working_impl(const dnnl_convolution_desc_t *cd, const_dnnl_primitive_attr_t attr,
                                        dnnl_engine_t eng, dnnl_primitive_desc_t *pd, dnnl_primitive_t *prim,
                                        const struct wino_limit *lim) {
    dnnl_primitive_desc_iterator_t it = NULL;
    dnnl_status_t s = dnnl_primitive_desc_iterator_create(&it, cd, attr, eng, NULL);
    if (s != dnnl_success) return s;
    for (;;) {
        dnnl_primitive_desc_t cand = dnnl_primitive_desc_iterator_fetch(it);
        if (!cand) {
            s = dnnl_runtime_error;
            break;
        }
        if (lim && wino_too_big(cand, lim)) { /* the next implementation may need less */
            s = dnnl_unimplemented;
        } else if ((s = dnnl_primitive_create(prim, cand)) == dnnl_success) {
            *pd = cand;
            break;
        }
        dnnl_primitive_desc_destroy(cand);
        if ((s = dnnl_primitive_desc_iterator_next(it)) != dnnl_success) break; /* dnnl_iterator_ends: none worked */
    }
    dnnl_primitive_desc_iterator_destroy(it);
    return s;
}

static const struct mixrt_dnnl_conv_opts plain_opts = {false, false, dnnl_alg_kind_undef, 0.0f, 0.0f, false, false};

/* A Winograd implementation whose own memory (oneDNN's memory_consumption: its scratchpad of
 * transformed tiles and weights) is over MIXRT_DNNL_WINO_MAX_MB (256 by default) and over the layer's
 * f32 weights, input and output together is skipped: the next implementation oneDNN offers is
 * tried (F(2x2, 3x3), ...), else the direct convolution runs the layer - TensorRT's workspace
 * limit, per layer. Measured on FCN-ResNet50's head conv (2048 -> 512 at 28x28, F(4x4, 3x3): 175
 * MB against 46): with it the fp32 engine runs in 201-206 ms and peaks at 569 MiB (ONNX Runtime
 * 233-241 ms, 500 MiB); capped at 64 MiB, 251-257 ms and 275-302 MiB. The default keeps the speed.
 * Other shapes measured: 512 -> 512 at 7x7 3.2 MB, at 14x14 8.3 MB, 256 -> 256 at 28x28 19.3 MB. */
static bool wino_too_big(const_dnnl_primitive_desc_t pd, const struct wino_limit *l) {
    int64_t mc = 0;
    if (dnnl_primitive_desc_query(pd, dnnl_query_memory_consumption_s64, 0, &mc) != dnnl_success) return false;
    /* In the user scratchpad mode its scratchpad is not in memory_consumption: added back. */
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    if (sp) mc += (int64_t)dnnl_memory_desc_get_size(sp);
    const char *e = getenv("MIXRT_DNNL_WINO_MAX_MB");
    double cap = (e && atof(e) > 0 ? atof(e) : 256.0) * 1024 * 1024, nx = 1, nw = 1, ny = 1;
    for (int i = 0; i < l->rx; i++) nx *= (double)l->xd[i], ny *= (double)l->yd[i];
    for (int i = 0; i < l->rw; i++) nw *= (double)l->wd[i];
    return (double)mc > cap && (double)mc > 4.0 * (nx + nw + ny);
}

static mixrt_status conv_build(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st, const struct conv_geom *g,
                               mixrt_dtype dt, const struct mixrt_tensor *b, const struct mixrt_dnnl_conv_opts *o) {
    mixrt_status status = MIXRT_STATUS_OK;
    dnnl_status_t s;
    const char *call = "";
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_engine_t eng;
    MIXRT_TRY(mixrt_dnnl_get(k->ctx, &eng, NULL));
    dnnl_data_type_t ddt = mixrt_dnnl_dtype(dt);
    int64_t xd[5] = {g->N, g->C}, wd[6];
    for (int i = 0; i < g->nd; i++) xd[2 + i] = g->in[i];
    int rx = g->nd + 2, rw = weights_dims(g, wd);
    dnnl_dims_t xdd, wdd, ydd, str, dil, pl, pr;
    for (int i = 0; i < rx; i++) xdd[i] = xd[i], ydd[i] = g->ydims[i];
    for (int i = 0; i < rw; i++) wdd[i] = wd[i];
    for (int i = 0; i < g->nd; i++) str[i] = g->s[i], dil[i] = g->d[i] - 1, pl[i] = g->pb[i], pr[i] = g->pe[i];
    dnnl_memory_desc_t x_any, w_any, y_any, b_md;
    DNNL_DO(dnnl_memory_desc_init_by_tag(&w_any, rw, wdd, ddt, dnnl_format_tag_any));
    if (b) DNNL_DO(mixrt_dnnl_plain_md(&b_md, 1, &g->M, mixrt_dnnl_dtype(b->dtype)));
    DNNL_DO(mixrt_dnnl_plain_md(&st->wei_user_md, rw, wd, ddt));
    if (o->channels_last) {
        /* oneDNN's convolutions run channels-last natively: no reorders at the boundary.
         * Its Winograd convolutions want blocked layouts: reorders then. */
        DNNL_DO(channels_last_md(&st->src_user_md, rx, xd, ddt));
        DNNL_DO(channels_last_md(&st->dst_user_md, rx, g->ydims, ddt));
        x_any = st->src_user_md, y_any = st->dst_user_md;
        if (o->winograd) {
            DNNL_DO(dnnl_memory_desc_init_by_tag(&x_any, rx, xdd, ddt, dnnl_format_tag_any));
            DNNL_DO(dnnl_memory_desc_init_by_tag(&y_any, rx, ydd, ddt, dnnl_format_tag_any));
        }
    } else {
        DNNL_DO(dnnl_memory_desc_init_by_tag(&x_any, rx, xdd, ddt, dnnl_format_tag_any));
        DNNL_DO(dnnl_memory_desc_init_by_tag(&y_any, rx, ydd, ddt, dnnl_format_tag_any));
        DNNL_DO(mixrt_dnnl_plain_md(&st->src_user_md, rx, xd, ddt));
        DNNL_DO(mixrt_dnnl_plain_md(&st->dst_user_md, rx, g->ydims, ddt));
    }
    /* Y = act(conv + B + Z). Channels-last, Z is a binary-add post-op operand read in place:
     * copying it into dst for a sum post-op measured about twice the time of the binary add
     * (1x1 conv 64->256 at 56x56, f32 and bf16). Where the binary add would cost a reference
     * implementation, and for the blocked dst of the channels-first case (Z reordered in),
     * the sum post-op. */
    dnnl_convolution_desc_t cd;
    /* Winograd first when asked; where oneDNN has none for this shape (or this dtype or ISA),
     * the direct convolution on the user's layouts below. */
    bool wino = o->winograd && ddt == dnnl_f32;
    if (wino) {
        s = dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_winograd, &x_any,
                                                       &w_any, b ? &b_md : NULL, &y_any, str, dil, pl, pr);
        st->z_binary = false;
        if (s == dnnl_success) {
            DNNL_DO(mixrt_dnnl_attr_user_scratchpad(&attr));
            DNNL_DO(dnnl_post_ops_create(&po));
            if (o->sum) DNNL_DO(dnnl_post_ops_append_sum(po, 1.0f));
            if (o->act != dnnl_alg_kind_undef)
                DNNL_DO(dnnl_post_ops_append_eltwise(po, 1.0f, o->act, o->alpha, o->beta));
            DNNL_DO(dnnl_primitive_attr_set_post_ops(attr, po));
            const struct wino_limit lim = {xd, wd, g->ydims, rx, rw};
            s = first_working_impl(&cd, attr, eng, &st->pd, &st->prim, &lim);
            dnnl_post_ops_destroy(po);
            dnnl_primitive_attr_destroy(attr);
            po = NULL, attr = NULL;
        }
        wino = s == dnnl_success;
        if (!wino && o->channels_last) x_any = st->src_user_md, y_any = st->dst_user_md;
    }
    st->silu_split = !wino && o->channels_last && !o->swish_post && mixrt_dnnl_silu_split(o->act, o->alpha, dt, o->sum);
    if (st->silu_split) {
        DNNL_DO(channels_last_md(&st->dst_f32_md, rx, g->ydims, dnnl_f32));
        y_any = st->dst_f32_md;
    }
    if (!wino)
        DNNL_DO(dnnl_dilated_convolution_forward_desc_init(&cd, dnnl_forward_inference, dnnl_convolution_direct,
                                                           &x_any, &w_any, b ? &b_md : NULL, &y_any, str, dil, pl, pr));
    st->z_binary = !wino && o->sum && o->channels_last;
    for (int attempt = 0; !wino && attempt < 2; attempt++) {
        DNNL_DO(mixrt_dnnl_attr_user_scratchpad(&attr));
        DNNL_DO(dnnl_post_ops_create(&po));
        if (st->z_binary) DNNL_DO(dnnl_post_ops_append_binary(po, dnnl_binary_add, &st->dst_user_md));
        else if (o->sum) DNNL_DO(dnnl_post_ops_append_sum(po, 1.0f));
        if (o->act != dnnl_alg_kind_undef && !st->silu_split)
            DNNL_DO(dnnl_post_ops_append_eltwise(po, 1.0f, o->act, o->alpha, o->beta));
        DNNL_DO(dnnl_primitive_attr_set_post_ops(attr, po));
        dnnl_status_t made = first_working_impl(&cd, attr, eng, &st->pd, &st->prim, NULL);
        dnnl_post_ops_destroy(po);
        dnnl_primitive_attr_destroy(attr);
        po = NULL, attr = NULL;
        /* oneDNN 2.6's gemm-based convolution ("gemm:jit") adds a binary post-op operand wrongly
         * where output pixels read padding only under some taps (rel. error ~1 on a 3x3 conv
         * at dilation 9 on 7x7, a 1x1 conv padded by 3; test_fuse_conv): the sum post-op there */
        const char *impl = made == dnnl_success ? mixrt_dnnl_state_impl(st) : "";
        bool slow = made == dnnl_success && (!strncmp(impl, "ref", 3) || strstr(impl, "gemm:") != NULL);
        if (!st->z_binary || (made == dnnl_success && !slow)) {
            DNNL_DO(made);
            break;
        }
        if (st->prim) dnnl_primitive_destroy(st->prim);
        if (st->pd) dnnl_primitive_desc_destroy(st->pd);
        st->prim = NULL, st->pd = NULL;
        st->z_binary = false;
    }
    DNNL_DO(mixrt_dnnl_boundary(eng, st, o->sum));
    goto fail;
dnnl_fail:
    status = mixrt_dnnl_fail(k, s, call);
    mixrt_dnnl_state_clear(st);
fail:
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return status;
}

/* Runs reorder r from src to dst on the stream; k: r was made with user_sp, its scratchpad
 * taken from k's scratch (which the caller must not hold) and the run waited for. */
dnnl_status_t mixrt_dnnl_run_reorder(struct mixrt_kernel_ctx *k, dnnl_primitive_t r, dnnl_stream_t strm,
                                     dnnl_memory_t from, dnnl_memory_t to) {
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, from}, {DNNL_ARG_TO, to}};
    if (!k) return dnnl_primitive_execute(r, strm, 2, args);
    const_dnnl_primitive_desc_t pd = NULL;
    struct mixrt_dnnl_scratch sc;
    dnnl_status_t s = dnnl_primitive_get_primitive_desc(r, &pd);
    if (s != dnnl_success) return s;
    if (mixrt_dnnl_scratch_take(k, pd, 0, &sc) != MIXRT_STATUS_OK) return dnnl_out_of_memory;
    if (sc.sp) args[2] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sc.sp};
    s = dnnl_primitive_execute(r, strm, sc.sp ? 3 : 2, args);
    if (s == dnnl_success) s = dnnl_stream_wait(strm);
    mixrt_dnnl_scratch_put(k->ctx, &sc);
    return s;
}

/* ---- packed weights in plan files (hooks: kernels.h) ---- */

/* "onednn <major>.<minor>.<patch> <hash> isa <n>": what decides the layouts oneDNN picks and
 * the bytes it packs, so packed weights are only reused under the same string. */
static char packed_lib[128];
static pthread_once_t packed_lib_once = PTHREAD_ONCE_INIT;
static void packed_lib_init(void) {
    const dnnl_version_t *v = dnnl_version();
    snprintf(packed_lib, sizeof packed_lib, "onednn %d.%d.%d %.40s isa %u", v->major, v->minor, v->patch,
             v->hash ? v->hash : "-", (unsigned)dnnl_get_effective_cpu_isa());
}
const char *mixrt_dnnl_packed_lib(void) {
    pthread_once(&packed_lib_once, packed_lib_init);
    return packed_lib;
}

size_t mixrt_dnnl_packed_layout_size(void) { return sizeof(dnnl_memory_desc_t); }

/* Makes *mem read the offered packed weights p when they are in exactly the layout want
 * (the primitive's weights descriptor): in place where p's bytes are 64-aligned (a mapped
 * plan; the mapping outlives the engine), else a copy. Anything that does not match is
 * refused with the reason (mixrt_cpu_packed_took), never trusted. */
static bool packed_adopt(const struct mixrt_cpu_packed *p, const dnnl_memory_desc_t *want, dnnl_memory_t *mem) {
    char why[160];
    dnnl_memory_desc_t have;
    dnnl_engine_t eng;
    dnnl_memory_t m = NULL;
    void *h = NULL;
    if (!want || p->layout_size != sizeof(have) || !p->layout) {
        snprintf(why, sizeof why, "its layout descriptor has %zu bytes, this oneDNN's has %zu", p->layout_size,
                 sizeof(have));
        goto refuse;
    }
    memcpy(&have, p->layout, sizeof(have));
    /* Bounded before oneDNN compares: its comparison indexes arrays by these counts. */
    if (have.ndims < 1 || have.ndims > DNNL_MAX_NDIMS || have.ndims != want->ndims ||
        have.format_kind != want->format_kind ||
        (have.format_kind == dnnl_blocked &&
         (have.format_desc.blocking.inner_nblks < 0 || have.format_desc.blocking.inner_nblks > DNNL_MAX_NDIMS)) ||
        !dnnl_memory_desc_equal(want, &have)) {
        snprintf(why, sizeof why, "the primitive built here wants another weights layout");
        goto refuse;
    }
    if (dnnl_memory_desc_get_size(want) != p->size) {
        snprintf(why, sizeof why, "it has %zu bytes, its layout %zu", p->size, dnnl_memory_desc_get_size(want));
        goto refuse;
    }
    if (mixrt_dnnl_get(NULL, &eng, NULL) != MIXRT_STATUS_OK) {
        snprintf(why, sizeof why, "oneDNN has no engine");
        goto refuse;
    }
    bool aligned = ((uintptr_t)p->data & 63) == 0;
    /* oneDNN only reads weights; the cast drops const for its memory object. */
    if (dnnl_memory_create(&m, want, eng, aligned ? (void *)p->data : DNNL_MEMORY_ALLOCATE) != dnnl_success ||
        (!aligned && (dnnl_memory_get_data_handle(m, &h) != dnnl_success || !h))) {
        snprintf(why, sizeof why, "oneDNN could not make a memory object for it");
        goto refuse;
    }
    if (!aligned) memcpy(h, p->data, p->size);
    if (*mem) dnnl_memory_destroy(*mem);
    *mem = m;
    mixrt_cpu_packed_took(true, NULL);
    return true;
refuse:
    if (m) dnnl_memory_destroy(m);
    mixrt_cpu_packed_took(false, why);
    return false;
}

bool mixrt_dnnl_packed_adopt(const struct mixrt_cpu_packed *p, const void *want_md, void **mem) {
    dnnl_memory_t m = *mem;
    bool ok = packed_adopt(p, want_md, &m);
    *mem = m;
    return ok;
}

/* Adopts the plan's packed weights offered for k's node into st->wei_mem (see packed_adopt). */
static bool conv_adopt(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st) {
    const struct mixrt_cpu_packed *p = mixrt_cpu_packed_offered(k->node);
    dnnl_memory_t m = NULL;
    if (!p || !packed_adopt(p, dnnl_primitive_desc_query_md(st->pd, dnnl_query_weights_md, 0), &m)) return false;
    mixrt_dnnl_wei_drop(st);
    st->wei_mem = m;
    st->wei_ready = true;
    return true;
}

bool mixrt_dnnl_packed_describe(dnnl_memory_t m, struct mixrt_cpu_packed *out) {
    const dnnl_memory_desc_t *md = NULL;
    void *h = NULL;
    if (!m || dnnl_memory_get_memory_desc(m, &md) != dnnl_success || !md ||
        dnnl_memory_get_data_handle(m, &h) != dnnl_success || !h)
        return false;
    out->lib = mixrt_dnnl_packed_lib();
    out->layout = md;
    out->layout_size = sizeof(*md);
    out->data = h;
    out->size = dnnl_memory_desc_get_size(md);
    return true;
}

/* st holds constant weights reordered into a library layout (the packing hooks' case). */
static bool holds_packed(const struct mixrt_dnnl_state *st) {
    return st && st->wei_const && st->wei_reorder && st->wei_ready;
}

bool mixrt_dnnl_conv_packed_get(const void *state, struct mixrt_cpu_packed *out) {
    const struct mixrt_dnnl_state *st = state;
    return holds_packed(st) && mixrt_dnnl_packed_describe(st->wei_mem, out);
}

bool mixrt_dnnl_unpack(mixrt_context_t ctx, dnnl_memory_t packed, const dnnl_memory_desc_t *user, void *dst,
                       size_t size) {
    const dnnl_memory_desc_t *md = NULL;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_t r = NULL;
    dnnl_memory_t um = NULL;
    if (!packed || !dst || dnnl_memory_get_memory_desc(packed, &md) != dnnl_success || !md ||
        dnnl_memory_desc_get_size(user) != size || mixrt_dnnl_get(ctx, &eng, &strm) != MIXRT_STATUS_OK)
        return false;
    bool ok = mixrt_dnnl_make_reorder(eng, md, user, false, &r) == dnnl_success &&
              dnnl_memory_create(&um, user, eng, dst) == dnnl_success &&
              mixrt_dnnl_run_reorder(NULL, r, strm, packed, um) == dnnl_success && dnnl_stream_wait(strm) == dnnl_success;
    if (um) dnnl_memory_destroy(um);
    if (r) dnnl_primitive_destroy(r);
    return ok;
}

int mixrt_dnnl_unpack_same(mixrt_context_t ctx, dnnl_memory_t packed, const dnnl_memory_desc_t *user, const void *ref,
                           size_t size) {
    enum { SLICE_BYTES = 8 << 20 };
    const dnnl_memory_desc_t *md = NULL;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    void *handle = NULL;
    if (!packed || !ref || dnnl_memory_get_memory_desc(packed, &md) != dnnl_success || !md)
        return -1;
    /* Winograd's transformed weights (dnnl_format_kind_wino) hold other numbers: no reorder
     * gives the graph's bytes back, so none is tried (a whole unpack would only fail). */
    if (md->format_kind == dnnl_format_kind_wino) return 0;
    if (dnnl_memory_get_data_handle(packed, &handle) != dnnl_success || !handle || user->format_kind != dnnl_blocked ||
        md->format_kind != dnnl_blocked || user->format_desc.blocking.inner_nblks != 0 ||
        dnnl_memory_desc_get_size(user) != size || mixrt_dnnl_get(ctx, &eng, &strm) != MIXRT_STATUS_OK)
        return -1;
    /* The user layout is dense (its size is its element count's): the outermost axis's
     * slices are byte ranges of ref. Slices start at multiples of the packed layout's block
     * on that axis, so each is a sub-memory of the packed copy. */
    const int nd = user->ndims;
    const dnnl_dim_t *us = user->format_desc.blocking.strides;
    int ax = 0;
    for (int d = 1; d < nd; d++)
        if (us[d] > us[ax]) ax = d;
    size_t es = dnnl_data_type_size(user->data_type), row = (size_t)us[ax] * es;
    if (!row || row * (size_t)user->dims[ax] != size) return -1;
    dnnl_dim_t blk = 1;
    for (int i = 0; i < md->format_desc.blocking.inner_nblks; i++)
        if (md->format_desc.blocking.inner_idxs[i] == ax) blk *= md->format_desc.blocking.inner_blks[i];
    dnnl_dim_t rows = (dnnl_dim_t)(SLICE_BYTES / row) / blk * blk;
    if (rows < blk) rows = blk;
    if (rows >= user->dims[ax]) return -1; /* one slice: the whole unpack is no larger */
    uint8_t *tmp = mixrt_alloc(ctx, (size_t)rows * row);
    if (!tmp) return -1;
    int same = 1;
    for (dnnl_dim_t r0 = 0; r0 < user->dims[ax] && same == 1; r0 += rows) {
        dnnl_dims_t sd, off = {0};
        for (int d = 0; d < nd; d++) sd[d] = user->dims[d];
        sd[ax] = r0 + rows <= user->dims[ax] ? rows : user->dims[ax] - r0;
        off[ax] = r0;
        dnnl_memory_desc_t psub, tsub;
        dnnl_primitive_t r = NULL;
        dnnl_memory_t pm = NULL, tm = NULL;
        bool ok = dnnl_memory_desc_init_submemory(&psub, md, sd, off) == dnnl_success &&
                  dnnl_memory_desc_init_by_strides(&tsub, nd, sd, user->data_type, us) == dnnl_success &&
                  mixrt_dnnl_make_reorder(eng, &psub, &tsub, false, &r) == dnnl_success &&
                  dnnl_memory_create(&pm, &psub, eng, handle) == dnnl_success &&
                  dnnl_memory_create(&tm, &tsub, eng, tmp) == dnnl_success &&
                  mixrt_dnnl_run_reorder(NULL, r, strm, pm, tm) == dnnl_success && dnnl_stream_wait(strm) == dnnl_success;
        if (!ok) same = -1;
        else if (memcmp(tmp, (const uint8_t *)ref + (size_t)r0 * row, (size_t)sd[ax] * row)) same = 0;
        if (tm) dnnl_memory_destroy(tm);
        if (pm) dnnl_memory_destroy(pm);
        if (r) dnnl_primitive_destroy(r);
    }
    mixrt_free(ctx, tmp, (size_t)rows * row);
    return same;
}

int mixrt_dnnl_conv_same(mixrt_context_t ctx, const void *state, const void *ref, size_t size) {
    const struct mixrt_dnnl_state *st = state;
    return holds_packed(st) ? mixrt_dnnl_unpack_same(ctx, st->wei_mem, &st->wei_user_md, ref, size) : 0;
}

bool mixrt_dnnl_conv_unpack(mixrt_context_t ctx, const void *state, void *dst, size_t size) {
    const struct mixrt_dnnl_state *st = state;
    return holds_packed(st) && mixrt_dnnl_unpack(ctx, st->wei_mem, &st->wei_user_md, dst, size);
}

/* Brings st to x/w/b's shapes (rebuilding when they changed) and, for constant weights, the
 * reordered weights up to date. Called with st->lock held. */
static mixrt_status conv_ensure(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st, const struct conv_geom *g,
                                mixrt_dtype dt, const struct mixrt_tensor *w, const struct mixrt_tensor *b,
                                const struct mixrt_dnnl_conv_opts *o) {
    mixrt_status status = MIXRT_STATUS_OK;
    if (!mixrt_dnnl_state_matches(st, k, 3)) MIXRT_TRY(conv_build(k, st, g, dt, b, o));
    if ((!st->wei_reorder || !st->wei_ready) && !w->data && w->nbytes) return mixrt_cpu_released_error(k, 1);
    /* A plan's bytes for this node are read in place, before another node's shared copy. */
    bool adopted = st->wei_const && st->wei_reorder && (!st->wei_ready || st->wshared) &&
                   mixrt_cpu_packed_offered(k->node) && conv_adopt(k, st);
    if (!adopted && st->wei_const && st->wei_reorder && !st->wei_ready && w->data)
        MIXRT_TRY(mixrt_dnnl_weights_reorder(k, st, w));
fail:
    return status;
}

mixrt_status mixrt_dnnl_weights_reorder(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st,
                                        const struct mixrt_tensor *w) {
    mixrt_status status = MIXRT_STATUS_OK;
    dnnl_status_t s = dnnl_success;
    const char *call = "";
    dnnl_memory_t wu = NULL;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    mixrt_cpu_weight_reorder_counted();
    MIXRT_TRY(mixrt_dnnl_get(k->ctx, &eng, &strm));
    DNNL_DO(dnnl_memory_create(&wu, &st->wei_user_md, eng, w->data));
    DNNL_DO(mixrt_dnnl_run_reorder(k, st->wei_reorder, strm, wu, st->wei_mem));
    DNNL_DO(dnnl_stream_wait(strm));
    st->wei_ready = true;
    mixrt_dnnl_wei_filled(st);
    goto fail;
dnnl_fail:
    status = mixrt_dnnl_fail(k, s, call);
fail:
    if (wu) dnnl_memory_destroy(wu);
    return status;
}

mixrt_status mixrt_dnnl_conv_exec(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st, const struct mixrt_tensor *x,
                                  const struct mixrt_tensor *w, const struct mixrt_tensor *b, const struct mixrt_tensor *z,
                                  bool z_binary, struct mixrt_tensor *y) {
    mixrt_status status = MIXRT_STATUS_OK;
    dnnl_status_t s = dnnl_success;
    const char *call = "";
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_memory_t xu = NULL, wu = NULL, yu = NULL, bu = NULL, zu = NULL;
    void *ys = NULL; /* SiLU split: oneDNN's f32 output before the activation */
    struct mixrt_dnnl_scratch sc = {0};
    MIXRT_TRY(mixrt_dnnl_get(k->ctx, &eng, &strm));
    /* The engine's scratch, one buffer every layer reuses, warm in cache (a buffer per node
     * measured 8 % slower on EfficientNet-B0; one per call or per run 3-5 %): the SiLU split's
     * f32 output, the blocked src and dst where oneDNN chose those, then its scratchpad. */
    size_t ys_bytes = st->silu_split ? mixrt_tensor_numel(y) * sizeof(float) : 0;
    size_t src_off = mixrt_dnnl_align64(ys_bytes), dst_off = src_off;
    const dnnl_memory_desc_t *md = NULL;
    if (st->src_mem && dnnl_memory_get_memory_desc(st->src_mem, &md) == dnnl_success && md)
        dst_off += mixrt_dnnl_align64(dnnl_memory_desc_get_size(md));
    size_t extra = dst_off;
    if (st->dst_mem && dnnl_memory_get_memory_desc(st->dst_mem, &md) == dnnl_success && md)
        extra += dnnl_memory_desc_get_size(md);
    if (!st->wei_reorder || !st->wei_ready)
        DNNL_DO(dnnl_memory_create(&wu, &st->wei_user_md, eng, (void *)w->data));
    if (st->wei_reorder && !st->wei_ready) { /* before the scratch is taken: the reorder takes it too */
        DNNL_DO(mixrt_dnnl_run_reorder(k, st->wei_reorder, strm, wu, st->wei_mem));
        if (st->wei_const) st->wei_ready = true;
    }
    if ((status = mixrt_dnnl_scratch_take(k, st->pd, extra, &sc)) != MIXRT_STATUS_OK) goto fail;
    if (st->src_mem) DNNL_DO(dnnl_memory_set_data_handle(st->src_mem, (char *)sc.p + src_off));
    if (st->dst_mem) DNNL_DO(dnnl_memory_set_data_handle(st->dst_mem, (char *)sc.p + dst_off));
    /* oneDNN only reads the inputs; the casts drop const for its memory objects. */
    DNNL_DO(dnnl_memory_create(&xu, &st->src_user_md, eng, (void *)x->data));
    if (st->silu_split) {
        ys = sc.p;
        DNNL_DO(dnnl_memory_create(&yu, &st->dst_f32_md, eng, ys));
    } else {
        DNNL_DO(dnnl_memory_create(&yu, &st->dst_user_md, eng, y->data));
    }
    if (b) {
        const dnnl_memory_desc_t *bmd = dnnl_primitive_desc_query_md(st->pd, dnnl_query_weights_md, 1);
        call = "dnnl_primitive_desc_query_md(bias)";
        s = dnnl_runtime_error;
        if (!bmd) goto dnnl_fail;
        DNNL_DO(dnnl_memory_create(&bu, bmd, eng, (void *)b->data));
    }
    if (st->src_reorder) DNNL_DO(mixrt_dnnl_run_reorder(NULL, st->src_reorder, strm, xu, st->src_mem));
    if (z && st->dst_in_reorder) {
        DNNL_DO(dnnl_memory_create(&zu, &st->dst_user_md, eng, (void *)z->data));
        DNNL_DO(mixrt_dnnl_run_reorder(NULL, st->dst_in_reorder, strm, zu, st->dst_mem));
    } else if (z && z_binary) {
        DNNL_DO(dnnl_memory_create(&zu, &st->dst_user_md, eng, (void *)z->data));
    } else if (z) {
        memcpy(y->data, z->data, y->nbytes);
    }
    dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, st->src_reorder ? st->src_mem : xu},
                               {DNNL_ARG_WEIGHTS, st->wei_reorder ? st->wei_mem : wu},
                               {DNNL_ARG_DST, st->dst_reorder ? st->dst_mem : yu}};
    int nargs = 3;
    if (sc.sp) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sc.sp};
    if (b) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, bu};
    if (z && z_binary) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, zu};
    DNNL_DO(dnnl_primitive_execute(st->prim, strm, nargs, args));
    if (st->dst_reorder) DNNL_DO(mixrt_dnnl_run_reorder(NULL, st->dst_reorder, strm, st->dst_mem, yu));
    DNNL_DO(dnnl_stream_wait(strm));
    if (ys) mixrt_elt_silu_to_bf16(ys, y->data, mixrt_tensor_numel(y));
    goto fail;
dnnl_fail:
    status = mixrt_dnnl_fail(k, s, call);
fail:
    if (xu) dnnl_memory_destroy(xu);
    if (wu) dnnl_memory_destroy(wu);
    if (yu) dnnl_memory_destroy(yu);
    if (bu) dnnl_memory_destroy(bu);
    if (zu) dnnl_memory_destroy(zu);
    mixrt_dnnl_scratch_put(k->ctx, &sc);
    return status;
}
#undef DNNL_DO

bool mixrt_dnnl_conv_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!mixrt_dnnl_supports_common(g, n, 2, 2, 3, 5, why, why_size)) return false;
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") && strcmp(ap, "SAME_UPPER") && strcmp(ap, "SAME_LOWER") && strcmp(ap, "VALID") && ap[0]) {
        if (why && why_size) snprintf(why, why_size, "attribute 'auto_pad' is '%s'", ap);
        return false;
    }
    return true;
}

/* t's header with its dims in channels-first order (the data pointer shared): the geometry
 * code reads [N, C, D1..]. */
static struct mixrt_tensor channels_first_view(const struct mixrt_tensor *t, bool last) {
    struct mixrt_tensor v = *t;
    if (last && t->rank >= 3) {
        v.dims[1] = t->dims[t->rank - 1];
        for (int i = 2; i < t->rank; i++) v.dims[i] = t->dims[i - 1];
    }
    return v;
}

mixrt_status mixrt_dnnl_conv_prepare_opts(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                          const struct mixrt_dnnl_conv_opts *o, void **state) {
    mixrt_status status = mixrt_dnnl_get(ctx, NULL, NULL);
    if (status != MIXRT_STATUS_OK) return status;
    struct mixrt_dnnl_state *st = NULL;
    if ((status = mixrt_dnnl_state_create(ctx, &st)) != MIXRT_STATUS_OK) return status;
    const struct mixrt_value *wv = n->n_inputs > 1 && n->inputs[1] >= 0 ? &g->values[n->inputs[1]] : NULL;
    /* An initializer that is also a graph input can be overridden, so it is not constant. */
    st->wei_const = wv && wv->init && !(wv->flags & MIXRT_VALUE_GRAPH_INPUT);
    if (st->wei_const) mixrt_dnnl_wei_key(st, g, n);
    /* With X's shape (and the bias's) known now, build and reorder the weights here, once;
     * otherwise the first run does. Shapes that do not validate are left to that run too. */
    const struct mixrt_value *xv = n->n_inputs > 0 && n->inputs[0] >= 0 ? &g->values[n->inputs[0]] : NULL;
    const struct mixrt_value *bv = n->n_inputs > 2 && n->inputs[2] >= 0 ? &g->values[n->inputs[2]] : NULL;
    bool known = st->wei_const && xv && xv->rank >= 3 && xv->rank <= 5 && xv->dtype == wv->init->dtype &&
                 (!bv || (bv->rank == 1 && bv->dims[0].value >= 0 && mixrt_dnnl_dtype(bv->dtype)));
    struct mixrt_tensor fx = {0}, fb = {0};
    for (int i = 0; known && i < xv->rank; i++) known = xv->dims[i].value >= 0;
    if (known) {
        fx.dtype = xv->dtype, fx.rank = xv->rank;
        for (int i = 0; i < xv->rank; i++) fx.dims[i] = xv->dims[i].value;
        if (bv) fb.dtype = bv->dtype, fb.rank = 1, fb.dims[0] = bv->dims[0].value;
        const struct mixrt_tensor *in[3] = {&fx, wv->init, bv ? &fb : NULL};
        const struct mixrt_seq *in_seq[3] = {NULL, NULL, NULL};
        struct mixrt_kernel_ctx k = {.ctx = ctx, .graph = g, .node = n, .opset = n->opset, .n_in = n->n_inputs < 3 ? n->n_inputs : 3,
                                     .in = in, .in_seq = in_seq};
        struct conv_geom geom;
        struct mixrt_tensor view = channels_first_view(&fx, o->channels_last);
        mixrt_dtype dt;
        if (mixrt_dnnl_check_dtypes(&k, 2, 2, &dt) == MIXRT_STATUS_OK && conv_geom(&k, &view, wv->init, in[2], &geom) == MIXRT_STATUS_OK &&
            mixrt_tensor_numel(wv->init) > 0 && geom.N > 0 && geom.C > 0) {
            if (o->channels_last) conv_geom_as_2d(&geom);
            pthread_mutex_lock(&st->lock);
            status = conv_ensure(&k, st, &geom, dt, wv->init, in[2], o);
            pthread_mutex_unlock(&st->lock);
        }
    }
    if (status != MIXRT_STATUS_OK) {
        mixrt_dnnl_state_release(ctx, st);
        return status;
    }
    *state = st;
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_dnnl_conv_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                     void **state) {
    return mixrt_dnnl_conv_prepare_opts(ctx, g, n, &plain_opts, state);
}

mixrt_status mixrt_dnnl_conv_run_opts(struct mixrt_kernel_ctx *k, const struct mixrt_dnnl_conv_opts *o) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_dnnl_state local, *st = k->state;
    bool own = st == NULL, locked = false;
    if (own) mixrt_dnnl_state_init(st = &local);
    const struct mixrt_tensor *x = NULL, *w = NULL, *b = mixrt_kernel_opt_input(k, 2);
    const struct mixrt_tensor *z = o->sum ? mixrt_kernel_opt_input(k, 3) : NULL;
    mixrt_dtype dt;
    struct conv_geom g;
    struct mixrt_tensor *y = NULL, xview;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &w));
    MIXRT_TRY(mixrt_dnnl_check_dtypes(k, 2, 2, &dt));
    if (o->sum && !z) MIXRT_TRY(mixrt_kernel_input(k, 3, &z));
    xview = channels_first_view(x, o->channels_last);
    MIXRT_TRY(conv_geom(k, &xview, w, b, &g));
    int64_t ydims[5];
    memcpy(ydims, g.ydims, sizeof(ydims));
    if (o->channels_last) {
        for (int i = 0; i < g.nd; i++) ydims[1 + i] = g.ydims[2 + i];
        ydims[g.nd + 1] = g.M;
    }
    if (z && (z->dtype != dt || z->rank != x->rank || memcmp(z->dims, ydims, sizeof(int64_t) * (size_t)x->rank))) {
        char d[256];
        MIXRT_TRY(mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 3, z, "expected %s %s (Y's dtype and shape)",
                                       mixrt_dtype_name(dt), mixrt_dims_str(d, sizeof(d), x->rank, ydims)));
    }
    /* every element is written below (oneDNN's dst, or the C = 0 answer): no zeroing first */
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, dt, x->rank, ydims, &y));
    size_t ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    if (g.C == 0) {
        /* No input channels: every output is its channel's bias (or 0); the fused ops send
         * this case to their reference kernel before calling here. */
        size_t per = ny / (size_t)(g.N * g.M);
        if (!b) memset(y->data, 0, y->nbytes);
        for (size_t i = 0; b && i < ny; i++)
            mixrt_store_f64(y->data, dt, i, mixrt_load_f64(b->data, b->dtype, (i / per) % (size_t)g.M));
        goto fail;
    }
    if (o->channels_last) conv_geom_as_2d(&g); /* Y's dims are taken above */
    pthread_mutex_lock(&st->lock);
    locked = true;
    MIXRT_TRY(conv_ensure(k, st, &g, dt, w, b, o));
    MIXRT_TRY(mixrt_dnnl_conv_exec(k, st, x, w, b, z, st->z_binary, y));
fail:
    if (locked) pthread_mutex_unlock(&st->lock);
    if (own) {
        mixrt_dnnl_state_clear(st);
        pthread_mutex_destroy(&st->lock);
    }
    return status;
}

mixrt_status mixrt_dnnl_conv_run(struct mixrt_kernel_ctx *k) { return mixrt_dnnl_conv_run_opts(k, &plain_opts); }

#else
typedef int mixrt_dnnl_conv_unused; /* ISO C wants a declaration in every translation unit */
#endif /* MIXRT_HAVE_DNNL */
