/* ref_fused_transformer.c - reference kernels of the com.mixrt transformer fusions: FusedMatMul
 * (act(A.B + bias + Z), numpy MatMul, optional transB), Gelu (approximate none/tanh) and
 * LayerNormalization (ONNX opset-17 semantics), RMSNormalization (over the last axis). Everything computes in f64 from the widened
 * inputs and rounds once into the output dtype, so they are the oracle for the fast kernels. */
#include <math.h>
#include <string.h>

#include "backend/cpu/ref.h"
#include "backend/cpu/ref_nn_impl.h"

enum fmm_act { ACT_NONE, ACT_RELU, ACT_GELU, ACT_GELU_TANH, ACT_SIGMOID, ACT_TANH };

static double apply_act(enum fmm_act a, double x) {
    switch (a) {
    case ACT_RELU: return x > 0 ? x : (x == x ? 0.0 : x);
    case ACT_GELU: return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440));
    case ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case ACT_TANH: return tanh(x);
    default: return x;
    }
}

static mixrt_status float_input(struct mixrt_kernel_ctx *k, int i, bool required, const struct mixrt_tensor **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    *out = mixrt_kernel_opt_input(k, i);
    if (!*out && !required) return MIXRT_STATUS_OK;
    MIXRT_TRY(mixrt_kernel_input(k, i, out));
    MIXRT_TRY(mixrt_kernel_check_float(k, i));
fail:
    return status;
}

/* ---- FusedMatMul ------------------------------------------------------------------------------ */

static mixrt_status bad_shape(struct mixrt_kernel_ctx *k, int i, const struct mixrt_tensor *t, const char *what) {
    char d[256];
    int vi = i < k->node->n_inputs ? k->node->inputs[i] : -1;
    return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is %s, %s", i,
                              vi >= 0 ? k->graph->values[vi].name : "", mixrt_tensor_desc(d, sizeof(d), t), what);
}

static mixrt_status run_fused_matmul(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *a = NULL, *b = NULL, *bias = NULL, *z = NULL;
    double *da = NULL, *db = NULL, *dbias = NULL, *dz = NULL;
    size_t na = 0, nb = 0, nbias = 0, nz = 0;
    MIXRT_TRY(float_input(k, 0, true, &a));
    MIXRT_TRY(float_input(k, 1, true, &b));
    MIXRT_TRY(float_input(k, 2, false, &bias));
    MIXRT_TRY(float_input(k, 3, false, &z));
    const char *an = mixrt_node_attr_string(k->node, "activation", "none");
    static const char *const names[] = {"none", "relu", "gelu", "gelu_tanh", "sigmoid", "tanh"};
    int act = -1;
    for (int i = 0; i < 6; i++)
        if (!strcmp(an, names[i])) act = i;
    if (act < 0)
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                     "attribute 'activation' is '%s', expected none, relu, gelu, gelu_tanh, sigmoid "
                                     "or tanh", an));
    bool tb = mixrt_node_attr_int(k->node, "transB", 0) != 0;
    if (a->rank < 1) MIXRT_TRY(bad_shape(k, 0, a, "expected rank >= 1"));
    if (b->rank < 1 || (tb && b->rank != 2)) MIXRT_TRY(bad_shape(k, 1, b, tb ? "expected rank 2 with transB" : "expected rank >= 1"));
    /* numpy matmul: 1-D A is [1,K], 1-D B is [K,1]; the added dims leave the output. */
    int64_t M = a->rank == 1 ? 1 : a->dims[a->rank - 2], K = a->dims[a->rank - 1];
    int64_t KB = b->rank == 1 ? b->dims[0] : tb ? b->dims[1] : b->dims[b->rank - 2];
    int64_t N = b->rank == 1 ? 1 : tb ? b->dims[0] : b->dims[b->rank - 1];
    if (KB != K) MIXRT_TRY(bad_shape(k, 1, b, "its K does not match input #0's last dim (numpy matmul)"));
    int ba = a->rank > 2 ? a->rank - 2 : 0, bb = b->rank > 2 ? b->rank - 2 : 0, nbd = ba > bb ? ba : bb;
    int64_t yd[MIXRT_MAX_RANK], bda[MIXRT_MAX_RANK], bdb[MIXRT_MAX_RANK];
    int yr = 0;
    for (int i = 0; i < nbd; i++) {
        bda[i] = i >= nbd - ba ? a->dims[i - (nbd - ba)] : 1;
        bdb[i] = i >= nbd - bb ? b->dims[i - (nbd - bb)] : 1;
        if (bda[i] != bdb[i] && bda[i] != 1 && bdb[i] != 1) MIXRT_TRY(bad_shape(k, 1, b, "its batch dims do not broadcast with input #0's"));
        yd[yr++] = bda[i] == 1 ? bdb[i] : bda[i];
    }
    if (a->rank >= 2) yd[yr++] = M;
    if (b->rank >= 2) yd[yr++] = N;
    if (bias && (bias->rank != 1 || bias->dims[0] != N)) MIXRT_TRY(bad_shape(k, 2, bias, "expected a 1-D bias of N elements"));
    if (z) {
        bool same = z->rank == yr;
        for (int i = 0; same && i < yr; i++) same = z->dims[i] == yd[i];
        if (!same) {
            char d[256];
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #3 'Z' must have the output's shape %s",
                                         mixrt_dims_str(d, sizeof(d), yr, yd)));
        }
    }
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, a->dtype, yr, yd, &y));
    na = mixrt_tensor_numel(a), nb = mixrt_tensor_numel(b);
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, a, &da));
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, b, &db));
    if (bias) nbias = mixrt_tensor_numel(bias), status = mixrt_tensor_to_f64(k->ctx, bias, &dbias);
    if (status != MIXRT_STATUS_OK) goto fail;
    if (z) nz = mixrt_tensor_numel(z), status = mixrt_tensor_to_f64(k->ctx, z, &dz);
    if (status != MIXRT_STATUS_OK) goto fail;
    size_t batches = 1;
    for (int i = 0; i < nbd; i++) batches *= (size_t)yd[i];
    size_t out = 0;
    for (size_t bi = 0; bi < batches; bi++) {
        /* Offsets of this batch in A and B (broadcast dims of 1 stay at 0). */
        size_t rem = bi, oa = 0, ob = 0, sa = 1, sb = 1;
        for (int i = nbd - 1; i >= 0; i--) {
            size_t idx = rem % (size_t)yd[i];
            rem /= (size_t)yd[i];
            if (bda[i] != 1) oa += idx * sa;
            if (bdb[i] != 1) ob += idx * sb;
            sa *= (size_t)bda[i], sb *= (size_t)bdb[i];
        }
        const double *pa = da + oa * (size_t)(M * K), *pb = db + ob * (size_t)(K * N);
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++, out++) {
                double s = 0;
                for (int64_t q = 0; q < K; q++) s += pa[i * K + q] * (tb ? pb[j * K + q] : pb[q * N + j]);
                if (dbias) s += dbias[j];
                if (dz) s += dz[out];
                mixrt_store_f64(y->data, y->dtype, out, apply_act((enum fmm_act)act, s));
            }
    }
fail:
    if (da) mixrt_free(k->ctx, da, na * sizeof(double));
    if (db) mixrt_free(k->ctx, db, nb * sizeof(double));
    if (dbias) mixrt_free(k->ctx, dbias, nbias * sizeof(double));
    if (dz) mixrt_free(k->ctx, dz, nz * sizeof(double));
    return status;
}

/* ---- Gelu ----------------------------------------------------------------------------------- */

static mixrt_status run_gelu(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    MIXRT_TRY(float_input(k, 0, true, &x));
    const char *ap = mixrt_node_attr_string(k->node, "approximate", "none");
    bool th = !strcmp(ap, "tanh");
    if (!th && strcmp(ap, "none"))
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'approximate' is '%s', expected none or tanh",
                                     ap));
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &y));
    size_t n = mixrt_tensor_numel(x);
    for (size_t i = 0; i < n; i++)
        mixrt_store_f64(y->data, y->dtype, i, apply_act(th ? ACT_GELU_TANH : ACT_GELU, mixrt_load_f64(x->data, x->dtype, i)));
fail:
    return status;
}

/* ---- RMSNormalization ----------------------------------------------------------------------------
 * Y = X / sqrt(mean(X^2 over the last axis) + epsilon) * Scale, Scale [C] (C = X's last dim). */
static mixrt_status run_rms_norm(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *s = NULL;
    MIXRT_TRY(float_input(k, 0, true, &x));
    MIXRT_TRY(float_input(k, 1, true, &s));
    int64_t axis = mixrt_node_attr_int(k->node, "axis", -1);
    if (x->rank < 1 || (axis != -1 && axis != x->rank - 1))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'axis' %lld: only the last axis of a rank-%d X",
                                  (long long)axis, x->rank);
    int64_t c = x->dims[x->rank - 1];
    if (s->rank != 1 || s->dims[0] != c) MIXRT_TRY(bad_shape(k, 1, s, "expected [C], C = X's last dim"));
    double eps = mixrt_node_attr_float(k->node, "epsilon", 1e-5f);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &y));
    size_t rows = c ? mixrt_tensor_numel(x) / (size_t)c : 0;
    for (size_t r = 0; r < rows; r++) {
        double ss = 0;
        for (int64_t j = 0; j < c; j++) {
            double v = mixrt_load_f64(x->data, x->dtype, r * (size_t)c + (size_t)j);
            ss += v * v;
        }
        double inv = 1.0 / sqrt(ss / (double)c + eps);
        for (int64_t j = 0; j < c; j++) {
            size_t i = r * (size_t)c + (size_t)j;
            mixrt_store_f64(y->data, y->dtype, i,
                            mixrt_load_f64(x->data, x->dtype, i) * inv * mixrt_load_f64(s->data, s->dtype, (size_t)j));
        }
    }
fail:
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_fused_transformer[] = {
    {MIXRT_DOMAIN, "FusedMatMul", 1, 1, run_fused_matmul},
    {MIXRT_DOMAIN, "Gelu", 1, 1, run_gelu},
    /* The ONNX opset-17 op (same kernel), made by the pass for models of older opsets. */
    {MIXRT_DOMAIN, "LayerNormalization", 1, 1, mixrt_nn_run_layer_norm},
    {MIXRT_DOMAIN, "RMSNormalization", 1, 1, run_rms_norm},
    {NULL, NULL, 0, 0, NULL},
};
