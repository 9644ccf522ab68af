/* ref_fused_conv.c - reference kernels of com.mixrt FusedConv, the channels-last pools and
 * InstanceNormalization: the ONNX reference kernel on f64 channels-first copies, residual and
 * activation in f64. Invariant: one rounding, to the output dtype, at the end (the oracle for
 * fused_conv.c). */
#include <string.h>

#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/ref.h"

/* Channels-last [N, S.., C] <-> channels-first [N, C, S..] for f64 buffers; S = product of the
 * spatial dims. */
static void perm_to_first(const double *src, double *dst, int64_t N, int64_t C, int64_t S) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t c = 0; c < C; c++) dst[(n * C + c) * S + s] = src[(n * S + s) * C + c];
}
static void perm_to_last(const double *src, double *dst, int64_t N, int64_t C, int64_t S) {
    for (int64_t n = 0; n < N; n++)
        for (int64_t s = 0; s < S; s++)
            for (int64_t c = 0; c < C; c++) dst[(n * S + s) * C + c] = src[(n * C + c) * S + s];
}

/* An f64 copy of t into *out (initialized here), permuted to channels-first when asked. */
static mixrt_status load_f64(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *t, bool to_first,
                             struct mixrt_tensor *out) {
    int64_t dims[MIXRT_MAX_RANK];
    memcpy(dims, t->dims, sizeof(int64_t) * (size_t)t->rank);
    if (to_first) {
        dims[1] = t->dims[t->rank - 1];
        for (int i = 2; i < t->rank; i++) dims[i] = t->dims[i - 1];
    }
    mixrt_status status = mixrt_tensor_init(k->ctx, out, MIXRT_DTYPE_F64, t->rank, dims);
    if (status != MIXRT_STATUS_OK) return status;
    size_t n = mixrt_tensor_numel(t);
    double *d = out->data;
    if (!to_first || n == 0) {
        for (size_t i = 0; i < n; i++) d[i] = mixrt_load_f64(t->data, t->dtype, i);
        return MIXRT_STATUS_OK;
    }
    double *tmp = mixrt_alloc(k->ctx, n * sizeof(double));
    if (!tmp) {
        mixrt_tensor_release(k->ctx, out);
        return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
    }
    for (size_t i = 0; i < n; i++) tmp[i] = mixrt_load_f64(t->data, t->dtype, i);
    int64_t S = (int64_t)n / (dims[0] * dims[1]);
    perm_to_first(tmp, d, dims[0], dims[1], S);
    mixrt_free(k->ctx, tmp, n * sizeof(double));
    return MIXRT_STATUS_OK;
}

/* Runs the ONNX op (domain "", opset) of k's node on f64 inputs in[0..n_in) and leaves the
 * f64 result in *y (owned by the caller). Messages still name k's node and its op. */
static mixrt_status run_onnx(struct mixrt_kernel_ctx *k, const char *op, int64_t opset, int n_in,
                             const struct mixrt_tensor *const *in, struct mixrt_tensor *y) {
    struct mixrt_node node = *k->node;
    node.op_type = op, node.domain = "", node.opset = opset;
    mixrt_kernel_fn fn;
    mixrt_status status = mixrt_ref_find(k->ctx, &node, &fn);
    if (status != MIXRT_STATUS_OK) return status;
    node.op_type = k->node->op_type;
    const struct mixrt_seq *in_seq[4] = {NULL, NULL, NULL, NULL};
    struct mixrt_tensor out[2];
    memset(out, 0, sizeof(out));
    bool wanted[2] = {true, false}, is_seq[2] = {false, false};
    struct mixrt_kernel_ctx sub = {.ctx = k->ctx,
                                   .graph = k->graph,
                                   .node = &node,
                                   .opset = opset,
                                   .n_in = n_in,
                                   .in = in,
                                   .in_seq = in_seq,
                                   .n_out = 1,
                                   .out = out,
                                   .out_is_seq = is_seq,
                                   .out_wanted = wanted,
                                   .env = k->env,
                                   .scratch = k->scratch};
    status = fn(&sub);
    if (status == MIXRT_STATUS_OK)
        *y = out[0];
    else
        mixrt_tensor_release(k->ctx, &out[0]);
    return status;
}

/* Writes the f64 channels-first result yf to output 0 in dtype dt (channels-last when asked),
 * adding Z (already checked to have the output's dims) and applying act on the way. */
static mixrt_status store_out(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *yf, bool last, mixrt_dtype dt,
                              const struct mixrt_tensor *z, enum mixrt_fconv_act act, double p0, double p1) {
    mixrt_status status = MIXRT_STATUS_OK;
    int64_t dims[MIXRT_MAX_RANK];
    int r = yf->rank;
    memcpy(dims, yf->dims, sizeof(int64_t) * (size_t)r);
    if (last) {
        for (int i = 1; i + 1 < r; i++) dims[i] = yf->dims[i + 1];
        dims[r - 1] = yf->dims[1];
    }
    size_t n = mixrt_tensor_numel(yf);
    double *tmp = NULL;
    struct mixrt_tensor *y = NULL;
    if (z) {
        bool same = z->rank == r && !memcmp(z->dims, dims, sizeof(int64_t) * (size_t)r);
        if (!same) {
            char a[256], b[256];
            int vi = k->node->n_inputs > 3 ? k->node->inputs[3] : -1;
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #3 '%s' is %s, expected Y's shape %s",
                                      vi >= 0 ? k->graph->values[vi].name : "", mixrt_tensor_desc(a, sizeof(a), z),
                                      mixrt_dims_str(b, sizeof(b), r, dims));
        }
    }
    MIXRT_TRY(mixrt_kernel_output(k, 0, dt, r, dims, &y));
    if (n == 0) goto fail;
    const double *src = yf->data;
    if (last) {
        tmp = mixrt_alloc(k->ctx, n * sizeof(double));
        if (!tmp) MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory"));
        perm_to_last(src, tmp, yf->dims[0], yf->dims[1], (int64_t)n / (yf->dims[0] * yf->dims[1]));
        src = tmp;
    }
    for (size_t i = 0; i < n; i++) {
        double v = src[i];
        if (z) v += mixrt_load_f64(z->data, z->dtype, i);
        mixrt_store_f64(y->data, dt, i, mixrt_fconv_apply(act, p0, p1, v));
    }
fail:
    if (tmp) mixrt_free(k->ctx, tmp, n * sizeof(double));
    return status;
}

/* The node's activation (FusedConv's attributes, also the channels-last InstanceNormalization's). */
static mixrt_status read_act(struct mixrt_kernel_ctx *k, enum mixrt_fconv_act *act, float *p0, float *p1) {
    if (mixrt_fconv_read_act(k->node, act, p0, p1)) return MIXRT_STATUS_OK;
    return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                              "attribute 'activation' is '%s' with %s 'activation_params', expected '', Relu, "
                              "Clip [min, max], LeakyRelu [alpha], Sigmoid, HardSwish, SiLU, Tanh, Gelu or GeluTanh",
                              mixrt_node_attr_string(k->node, "activation", ""),
                              mixrt_node_attr(k->node, "activation_params") ? "these" : "no");
}

static mixrt_status run_fused_conv(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_tensor xf = {0}, wf = {0}, bf = {0}, yf = {0};
    const struct mixrt_tensor *x = NULL, *w = NULL, *b = mixrt_kernel_opt_input(k, 2), *z = mixrt_kernel_opt_input(k, 3);
    enum mixrt_fconv_act act;
    float p0, p1;
    MIXRT_TRY(read_act(k, &act, &p0, &p1));
    int64_t last = mixrt_node_attr_int(k->node, "channels_last", 0);
    if (last != 0 && last != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'channels_last' is %lld, expected 0 or 1",
                                  (long long)last);
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &w));
    for (int i = 0; i < 4; i++)
        if (mixrt_kernel_opt_input(k, i)) MIXRT_TRY(mixrt_kernel_check_float(k, i));
    if (x->rank < 3)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #0 has rank %d, expected at least 3", x->rank);
    MIXRT_TRY(load_f64(k, x, last == 1, &xf));
    MIXRT_TRY(load_f64(k, w, false, &wf));
    if (b) MIXRT_TRY(load_f64(k, b, false, &bf));
    const struct mixrt_tensor *in[3] = {&xf, &wf, b ? &bf : NULL};
    MIXRT_TRY(run_onnx(k, "Conv", 11, 3, in, &yf));
    MIXRT_TRY(store_out(k, &yf, last == 1, x->dtype, z, act, p0, p1));
fail:
    mixrt_tensor_release(k->ctx, &xf);
    mixrt_tensor_release(k->ctx, &wf);
    mixrt_tensor_release(k->ctx, &bf);
    mixrt_tensor_release(k->ctx, &yf);
    return status;
}

/* The channels-last pools: the ONNX reference on the channels-first copy. */
static mixrt_status run_pool(struct mixrt_kernel_ctx *k, const char *op, int64_t opset) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_tensor xf = {0}, yf = {0};
    const struct mixrt_tensor *x = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    if (x->rank < 3)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #0 has rank %d, expected at least 3", x->rank);
    if (k->n_out > 1 && (!k->out_wanted || k->out_wanted[1]))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "the channels-last %s has no Indices output", op);
    MIXRT_TRY(load_f64(k, x, true, &xf));
    const struct mixrt_tensor *in[1] = {&xf};
    MIXRT_TRY(run_onnx(k, op, opset, 1, in, &yf));
    MIXRT_TRY(store_out(k, &yf, true, x->dtype, NULL, MIXRT_FCONV_NONE, 0, 0));
fail:
    mixrt_tensor_release(k->ctx, &xf);
    mixrt_tensor_release(k->ctx, &yf);
    return status;
}

/* The channels-last InstanceNormalization(X, scale, bias) of the layout pass: the ONNX reference
 * on the channels-first f64 copy, the activation in f64. With num_groups (a group norm; scale and
 * bias per channel) it is GroupNormalization-21's. */
static mixrt_status run_instance_norm_last(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_tensor xf = {0}, sf = {0}, bf = {0}, yf = {0};
    const struct mixrt_tensor *x = NULL, *s = NULL, *b = NULL;
    enum mixrt_fconv_act act;
    float p0, p1;
    MIXRT_TRY(read_act(k, &act, &p0, &p1));
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &s));
    MIXRT_TRY(mixrt_kernel_input(k, 2, &b));
    for (int i = 0; i < 3; i++) MIXRT_TRY(mixrt_kernel_check_float(k, i));
    if (x->rank < 3)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #0 has rank %d, expected at least 3", x->rank);
    MIXRT_TRY(load_f64(k, x, true, &xf));
    MIXRT_TRY(load_f64(k, s, false, &sf));
    MIXRT_TRY(load_f64(k, b, false, &bf));
    const struct mixrt_tensor *in[3] = {&xf, &sf, &bf};
    if (mixrt_node_attr(k->node, "num_groups"))
        MIXRT_TRY(run_onnx(k, "GroupNormalization", 21, 3, in, &yf));
    else
        MIXRT_TRY(run_onnx(k, "InstanceNormalization", 6, 3, in, &yf));
    MIXRT_TRY(store_out(k, &yf, true, x->dtype, NULL, act, p0, p1));
fail:
    mixrt_tensor_release(k->ctx, &xf);
    mixrt_tensor_release(k->ctx, &sf);
    mixrt_tensor_release(k->ctx, &bf);
    mixrt_tensor_release(k->ctx, &yf);
    return status;
}

/* The channels-last Resize of the layout pass (N and C kept): the ONNX reference at opset 19 (its
 * attributes a superset of 11-18's) on the channels-first f64 copy; roi, scales and sizes as the
 * node has them, in channels-first order. */
static mixrt_status run_resize_last(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_tensor xf = {0}, yf = {0};
    const struct mixrt_tensor *x = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    if (x->rank != 4)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #0 has rank %d, expected 4 (N, H, W, C)", x->rank);
    if (!mixrt_dtype_is_float(x->dtype)) {
        /* nearest mode moves values of any dtype: f64 would round 64-bit integers */
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "the channels-last Resize takes floats, not %s",
                                  mixrt_dtype_name(x->dtype));
    }
    MIXRT_TRY(load_f64(k, x, true, &xf));
    const struct mixrt_tensor *in[4] = {&xf, NULL, NULL, NULL};
    int n_in = k->n_in < 4 ? k->n_in : 4;
    for (int i = 1; i < n_in; i++) in[i] = mixrt_kernel_opt_input(k, i);
    MIXRT_TRY(run_onnx(k, "Resize", 19, n_in, in, &yf));
    MIXRT_TRY(store_out(k, &yf, true, x->dtype, NULL, MIXRT_FCONV_NONE, 0, 0));
fail:
    mixrt_tensor_release(k->ctx, &xf);
    mixrt_tensor_release(k->ctx, &yf);
    return status;
}

/* The channels-last DepthToSpace of the layout pass: the ONNX reference (blocksize, mode as the
 * node has them) on the channels-first f64 copy. */
static mixrt_status run_depth_to_space_last(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_tensor xf = {0}, yf = {0};
    const struct mixrt_tensor *x = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    if (x->rank != 4)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #0 has rank %d, expected 4 (N, H, W, C)", x->rank);
    MIXRT_TRY(load_f64(k, x, true, &xf));
    const struct mixrt_tensor *in[1] = {&xf};
    MIXRT_TRY(run_onnx(k, "DepthToSpace", 13, 1, in, &yf));
    MIXRT_TRY(store_out(k, &yf, true, x->dtype, NULL, MIXRT_FCONV_NONE, 0, 0));
fail:
    mixrt_tensor_release(k->ctx, &xf);
    mixrt_tensor_release(k->ctx, &yf);
    return status;
}

/* TransposeCast (passes.c fuses a Transpose and the Cast that was its only reader): the ONNX
 * reference Transpose (the node's perm), then mixrt_convert to the dtype 'to'. */
static mixrt_status run_transpose_cast(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_tensor t = {0}, *o = NULL;
    const struct mixrt_tensor *x = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    mixrt_dtype to = (mixrt_dtype)mixrt_node_attr_int(k->node, "to", 0);
    if (!mixrt_dtype_is_float(to))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'to' is %s, not a float type",
                                  mixrt_dtype_name(to));
    const struct mixrt_tensor *in[1] = {x};
    MIXRT_TRY(run_onnx(k, "Transpose", 21, 1, in, &t));
    MIXRT_TRY(mixrt_kernel_output(k, 0, to, t.rank, t.dims, &o));
    MIXRT_TRY(mixrt_convert(o->data, to, t.data, t.dtype, mixrt_tensor_numel(&t)));
fail:
    mixrt_tensor_release(k->ctx, &t);
    return status;
}

/* Opsets: the newest ONNX versions, whose attribute sets are supersets of the older ones. */
static mixrt_status run_max_pool(struct mixrt_kernel_ctx *k) { return run_pool(k, "MaxPool", 12); }
static mixrt_status run_average_pool(struct mixrt_kernel_ctx *k) { return run_pool(k, "AveragePool", 19); }
static mixrt_status run_global_average_pool(struct mixrt_kernel_ctx *k) {
    return run_pool(k, "GlobalAveragePool", 1);
}

/* v as dtype dt holds it (the unfused graph stores each conv's output in X's dtype). */
static double round_to(mixrt_dtype dt, double v) {
    uint64_t buf = 0;
    mixrt_store_f64(&buf, dt, 0, v);
    return mixrt_load_f64(&buf, dt, 0);
}

/* com.mixrt FusedMBConv (channels-last): expand 1x1 conv (W1 [E, C, 1, 1], B1, expand_activation;
 * W1 and B1 absent: no expand, E = C) -> depthwise conv (W2 [E, 1, KH, KW], B2, the node's kernel_shape / strides / pads / dilations,
 * activation) -> project 1x1 conv (W3 [M, E, 1, 1], B3, project_activation, residual Z), each
 * stage's output rounded to X's dtype as the three FusedConvs it replaces store them; sums in
 * f64. */
static mixrt_status run_fused_mbconv(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *w1 = NULL, *w2 = NULL, *w3 = NULL;
    const struct mixrt_tensor *b1 = mixrt_kernel_opt_input(k, 2), *b2 = mixrt_kernel_opt_input(k, 4),
                              *b3 = mixrt_kernel_opt_input(k, 6), *z = mixrt_kernel_opt_input(k, 7);
    double *e = NULL, *d = NULL;
    size_t e_n = 0, d_n = 0;
    enum mixrt_fconv_act a1, a2, a3;
    float p[6];
    if (!mixrt_fconv_read_act_attrs(k->node, "expand_activation", "expand_activation_params", &a1, &p[0], &p[1]) ||
        !mixrt_fconv_read_act_attrs(k->node, "activation", "activation_params", &a2, &p[2], &p[3]) ||
        !mixrt_fconv_read_act_attrs(k->node, "project_activation", "project_activation_params", &a3, &p[4], &p[5]))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "an activation attribute is malformed");
    if (mixrt_node_attr_int(k->node, "channels_last", 0) != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'channels_last' is not 1");
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    w1 = mixrt_kernel_opt_input(k, 1); /* absent (with B1): a block without expand, X is the depthwise input */
    if (!w1 && b1) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "B1 without W1");
    MIXRT_TRY(mixrt_kernel_input(k, 3, &w2));
    MIXRT_TRY(mixrt_kernel_input(k, 5, &w3));
    for (int i = 0; i < 8; i++)
        if (mixrt_kernel_opt_input(k, i)) MIXRT_TRY(mixrt_kernel_check_float(k, i));
    if (x->rank != 4 || (w1 && w1->rank != 4) || w2->rank != 4 || w3->rank != 4)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "X, W1, W2 and W3 must have rank 4");
    const int64_t N = x->dims[0], H = x->dims[1], W = x->dims[2], C = x->dims[3], E = w1 ? w1->dims[0] : C,
                  M = w3->dims[0], KH = w2->dims[2], KW = w2->dims[3];
    if ((w1 && (w1->dims[1] != C || w1->dims[2] != 1 || w1->dims[3] != 1)) || w2->dims[0] != E || w2->dims[1] != 1 ||
        w3->dims[1] != E || w3->dims[2] != 1 || w3->dims[3] != 1 || (b1 && mixrt_tensor_numel(b1) != (size_t)E) ||
        (b2 && mixrt_tensor_numel(b2) != (size_t)E) || (b3 && mixrt_tensor_numel(b3) != (size_t)M) ||
        mixrt_node_attr_int(k->node, "group", 1) != E)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "weights do not chain: X [.., %lld], W1 [%lld, %lld], W2 [%lld, 1, %lld, %lld], W3 "
                                  "[%lld, %lld], group %lld",
                                  (long long)C, (long long)E, (long long)(w1 ? w1->dims[1] : C), (long long)w2->dims[0],
                                  (long long)KH, (long long)KW, (long long)M, (long long)w3->dims[1],
                                  (long long)mixrt_node_attr_int(k->node, "group", 1));
    int64_t s[2], dl[2], pd[4];
    MIXRT_TRY(mixrt_kernel_attr_ints_n(k, "strides", 2, 1, 1, INT32_MAX, s));
    MIXRT_TRY(mixrt_kernel_attr_ints_n(k, "dilations", 2, 1, 1, INT32_MAX, dl));
    MIXRT_TRY(mixrt_kernel_attr_ints_n(k, "pads", 4, 0, 0, INT32_MAX, pd));
    const char *ap = mixrt_node_attr_string(k->node, "auto_pad", "NOTSET");
    if (ap[0] && strcmp(ap, "NOTSET"))
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "attribute 'auto_pad' is '%s', expected NOTSET", ap);
    const int64_t ekh = (KH - 1) * dl[0] + 1, ekw = (KW - 1) * dl[1] + 1;
    if (H + pd[0] + pd[2] < ekh || W + pd[1] + pd[3] < ekw)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "the depthwise kernel is larger than the padded input");
    const int64_t OH = (H + pd[0] + pd[2] - ekh) / s[0] + 1, OW = (W + pd[1] + pd[3] - ekw) / s[1] + 1;
    const int64_t ydims[4] = {N, OH, OW, M};
    if (z && (z->rank != 4 || memcmp(z->dims, ydims, sizeof(ydims))))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #7 (Z) is not [%lld, %lld, %lld, %lld]",
                                  (long long)N, (long long)OH, (long long)OW, (long long)M);
    const mixrt_dtype dt = x->dtype;
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, dt, 4, ydims, &y));
    e_n = (size_t)(H * W * E), d_n = (size_t)(OH * OW * E);
    e = mixrt_alloc(k->ctx, (e_n ? e_n : 1) * sizeof(double));
    d = mixrt_alloc(k->ctx, (d_n ? d_n : 1) * sizeof(double));
    if (!e || !d) MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory"));
    for (int64_t n = 0; n < N; n++) {
        const size_t xo = (size_t)(n * H * W * C);
        for (int64_t q = 0; q < H * W; q++)
            for (int64_t j = 0; j < E; j++) {
                if (!w1) { /* no expand: the depthwise conv reads X */
                    e[q * E + j] = mixrt_load_f64(x->data, dt, xo + (size_t)(q * C + j));
                    continue;
                }
                double v = b1 ? mixrt_load_f64(b1->data, b1->dtype, (size_t)j) : 0.0;
                for (int64_t c = 0; c < C; c++)
                    v += mixrt_load_f64(x->data, dt, xo + (size_t)(q * C + c)) *
                         mixrt_load_f64(w1->data, w1->dtype, (size_t)(j * C + c));
                e[q * E + j] = round_to(dt, mixrt_fconv_apply(a1, p[0], p[1], v));
            }
        for (int64_t oy = 0; oy < OH; oy++)
            for (int64_t ox = 0; ox < OW; ox++)
                for (int64_t j = 0; j < E; j++) {
                    double v = b2 ? mixrt_load_f64(b2->data, b2->dtype, (size_t)j) : 0.0;
                    for (int64_t ky = 0; ky < KH; ky++)
                        for (int64_t kx = 0; kx < KW; kx++) {
                            const int64_t iy = oy * s[0] - pd[0] + ky * dl[0], ix = ox * s[1] - pd[1] + kx * dl[1];
                            if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                            v += e[(iy * W + ix) * E + j] *
                                 mixrt_load_f64(w2->data, w2->dtype, (size_t)((j * KH + ky) * KW + kx));
                        }
                    d[(oy * OW + ox) * E + j] = round_to(dt, mixrt_fconv_apply(a2, p[2], p[3], v));
                }
        const size_t yo = (size_t)(n * OH * OW * M);
        for (int64_t q = 0; q < OH * OW; q++)
            for (int64_t m = 0; m < M; m++) {
                double v = b3 ? mixrt_load_f64(b3->data, b3->dtype, (size_t)m) : 0.0;
                for (int64_t j = 0; j < E; j++)
                    v += d[q * E + j] * mixrt_load_f64(w3->data, w3->dtype, (size_t)(m * E + j));
                if (z) v += mixrt_load_f64(z->data, z->dtype, yo + (size_t)(q * M + m));
                mixrt_store_f64(y->data, dt, yo + (size_t)(q * M + m), mixrt_fconv_apply(a3, p[4], p[5], v));
            }
    }
fail:
    if (e) mixrt_free(k->ctx, e, (e_n ? e_n : 1) * sizeof(double));
    if (d) mixrt_free(k->ctx, d, (d_n ? d_n : 1) * sizeof(double));
    return status;
}

/* com.mixrt FusedConvMaxPool (the stem_pool pass): the channels-last FusedConv of X, W, B (the
 * node's conv attributes and activation), stored in X's dtype as the FusedConv it replaces stored
 * it, then the channels-last MaxPool of pool_kernel_shape, pool_strides, pool_pads and
 * pool_ceil_mode (the pool's attributes renamed) into output 0. */
static mixrt_status run_fused_conv_max_pool(struct mixrt_kernel_ctx *k) {
    static const char *const names[4][2] = {
        {"pool_kernel_shape", "kernel_shape"}, {"pool_strides", "strides"}, {"pool_pads", "pads"},
        {"pool_ceil_mode", "ceil_mode"}};
    if (mixrt_kernel_opt_input(k, 3)) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #3 (a residual) is not taken");
    if (mixrt_node_attr_int(k->node, "channels_last", 0) != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'channels_last' is not 1");
    if (!mixrt_node_attr(k->node, "pool_kernel_shape"))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'pool_kernel_shape' is required");
    struct mixrt_attr pa[4];
    int n_pa = 0;
    for (int i = 0; i < 4; i++) {
        const struct mixrt_attr *a = mixrt_node_attr(k->node, names[i][0]);
        if (!a) continue;
        pa[n_pa] = *a;
        pa[n_pa++].name = names[i][1];
    }
    struct mixrt_node cn = *k->node, pn = *k->node;
    cn.op_type = "FusedConv";
    pn.op_type = "MaxPool", pn.n_inputs = 1, pn.n_outputs = 1, pn.attrs = pa, pn.n_attrs = n_pa;
    struct mixrt_tensor mid[1];
    memset(mid, 0, sizeof(mid));
    bool wanted[1] = {true}, is_seq[1] = {false};
    struct mixrt_kernel_ctx conv = *k;
    conv.node = &cn, conv.n_in = k->n_in < 3 ? k->n_in : 3, conv.n_out = 1, conv.out = mid, conv.out_seq = NULL;
    conv.out_is_seq = is_seq, conv.out_wanted = wanted, conv.state = NULL;
    mixrt_status status = run_fused_conv(&conv);
    if (status == MIXRT_STATUS_OK) {
        const struct mixrt_tensor *in[1] = {&mid[0]};
        struct mixrt_kernel_ctx pool = *k;
        pool.node = &pn, pool.opset = MIXRT_DOMAIN_VERSION, pool.n_in = 1, pool.in = in, pool.n_out = 1,
        pool.state = NULL;
        status = run_max_pool(&pool);
    }
    mixrt_tensor_release(k->ctx, &mid[0]);
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_fused_conv[] = {
    {MIXRT_DOMAIN, "FusedConv", 1, 1, run_fused_conv},
    {MIXRT_DOMAIN, "FusedMBConv", 1, 1, run_fused_mbconv},
    {MIXRT_DOMAIN, "FusedConvMaxPool", 1, 1, run_fused_conv_max_pool},
    {MIXRT_DOMAIN, "MaxPool", 1, 1, run_max_pool},
    {MIXRT_DOMAIN, "AveragePool", 1, 1, run_average_pool},
    {MIXRT_DOMAIN, "GlobalAveragePool", 1, 1, run_global_average_pool},
    {MIXRT_DOMAIN, "InstanceNormalization", 1, 1, run_instance_norm_last},
    {MIXRT_DOMAIN, "Resize", 1, 1, run_resize_last},
    {MIXRT_DOMAIN, "DepthToSpace", 1, 1, run_depth_to_space_last},
    {MIXRT_DOMAIN, "TransposeCast", 1, 1, run_transpose_cast},
    {NULL, NULL, 0, 0, NULL},
};
