/* ref_loss.c - reference kernels: NegativeLogLikelihoodLoss and SoftmaxCrossEntropyLoss.
 * Invariant: both share one gather-and-reduce over [N, C, D] (D = product of d1..dk) in f64;
 * a target equal to ignore_index contributes loss 0 and weight 0, any other target outside
 * [0, C) is an error before anything is read through it. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/ref.h"

static const char *in_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

enum loss_reduction { RED_NONE, RED_SUM, RED_MEAN };

/* Validated inputs of either op: scores/log-probs [N, C, d...], target [N, d...], weight [C]. */
struct loss {
    const struct mixrt_tensor *x, *target, *weight;
    int64_t n, c, d; /* d: product of the trailing dims (1 for rank 2) */
    enum loss_reduction reduction;
    bool has_ignore;
    int64_t ignore_index;
};

static mixrt_status loss_prepare(struct mixrt_kernel_ctx *k, struct loss *p) {
    mixrt_status status = MIXRT_STATUS_OK;
    char dx[256], dt[256];
    static const mixrt_dtype index_types[] = {MIXRT_DTYPE_I32, MIXRT_DTYPE_I64, MIXRT_DTYPE_UNDEFINED};
    memset(p, 0, sizeof(*p));
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    MIXRT_TRY(mixrt_kernel_input(k, 0, &p->x));
    MIXRT_TRY(mixrt_kernel_check_dtype(k, 1, index_types));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &p->target));
    p->weight = mixrt_kernel_opt_input(k, 2);
    if (p->weight) MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, 2));

    const char *red = mixrt_node_attr_string(k->node, "reduction", "mean");
    if (!strcmp(red, "none"))
        p->reduction = RED_NONE;
    else if (!strcmp(red, "sum"))
        p->reduction = RED_SUM;
    else if (!strcmp(red, "mean"))
        p->reduction = RED_MEAN;
    else
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "attribute 'reduction' is '%s', expected none, sum or mean", red);
    p->has_ignore = mixrt_node_attr(k->node, "ignore_index") != NULL;
    p->ignore_index = mixrt_node_attr_int(k->node, "ignore_index", 0);

    const struct mixrt_tensor *x = p->x, *t = p->target;
    if (x->rank < 2)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "input #0 '%s' is %s, expected rank >= 2 [N, C, d1, ...]", in_name(k, 0),
                                  mixrt_tensor_desc(dx, sizeof(dx), x));
    bool ok = t->rank == x->rank - 1 && t->dims[0] == x->dims[0];
    for (int i = 1; ok && i < t->rank; i++) ok = t->dims[i] == x->dims[i + 1];
    if (!ok)
        return mixrt_kernel_error(
            k, MIXRT_STATUS_INVALID_MODEL,
            "input #1 '%s' is %s but input #0 '%s' is %s: the target must be [N, d1, ...] of [N, C, d1, ...]",
            in_name(k, 1), mixrt_tensor_desc(dt, sizeof(dt), t), in_name(k, 0), mixrt_tensor_desc(dx, sizeof(dx), x));
    p->n = x->dims[0];
    p->c = x->dims[1];
    size_t dn = 0; /* with N or C zero the trailing dims are not bounded by any data */
    if (!mixrt_dims_numel(x->rank - 2, x->dims + 2, &dn) || dn > INT64_MAX)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #0 '%s' is %s: d1*...*dk overflows",
                                  in_name(k, 0), mixrt_tensor_desc(dx, sizeof(dx), x));
    p->d = (int64_t)dn;
    if (p->weight && (p->weight->rank != 1 || p->weight->dims[0] != p->c))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "input #2 '%s' is %s, expected [%lld] (one weight per class)", in_name(k, 2),
                                  mixrt_tensor_desc(dt, sizeof(dt), p->weight), (long long)p->c);
    size_t nt = mixrt_tensor_numel(t);
    for (size_t i = 0; i < nt; i++) {
        int64_t v = mixrt_load_i64(t->data, t->dtype, i);
        if (p->has_ignore && v == p->ignore_index) continue;
        if (v < 0 || v >= p->c)
            return mixrt_kernel_error(
                k, MIXRT_STATUS_INVALID_MODEL,
                "input #1 '%s': target %lld at element %zu is outside [0, %lld) and not ignore_index", in_name(k, 1),
                (long long)v, i, (long long)p->c);
    }
fail:
    return status;
}

/* Loss from log-probabilities lp [N, C, D] into output #0 (per element, or reduced). */
static mixrt_status loss_finish(struct mixrt_kernel_ctx *k, const struct loss *p, const double *lp) {
    mixrt_status status = MIXRT_STATUS_OK;
    double *w = NULL, *out = NULL;
    size_t nt = mixrt_tensor_numel(p->target);
    struct mixrt_tensor *o = NULL;
    if (p->weight) MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, p->weight, &w));
    out = mixrt_calloc(k->ctx, nt ? nt : 1, sizeof(double));
    if (!out) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    double sum = 0.0, wsum = 0.0;
    for (int64_t n = 0; n < p->n; n++) {
        for (int64_t d = 0; d < p->d; d++) {
            size_t i = (size_t)(n * p->d + d);
            int64_t c = mixrt_load_i64(p->target->data, p->target->dtype, i);
            if (p->has_ignore && c == p->ignore_index) continue; /* loss and weight 0 */
            double wc = w ? w[c] : 1.0;
            out[i] = -lp[(size_t)((n * p->c + c) * p->d + d)] * wc;
            sum += out[i];
            wsum += wc;
        }
    }
    if (p->reduction == RED_NONE) {
        MIXRT_TRY(mixrt_kernel_output(k, 0, p->x->dtype, p->target->rank, p->target->dims, &o));
        if (nt) MIXRT_TRY(mixrt_convert(o->data, o->dtype, out, MIXRT_DTYPE_F64, nt));
    } else {
        MIXRT_TRY(mixrt_kernel_output(k, 0, p->x->dtype, 0, NULL, &o));
        /* mean divides by the weights taken (the count of kept targets without a weight
         * input); no kept target gives 0/0 = NaN, like the NumPy reference */
        mixrt_store_f64(o->data, o->dtype, 0, p->reduction == RED_SUM ? sum : sum / wsum);
    }
fail:
    if (w) mixrt_free(k->ctx, w, (size_t)(p->c ? p->c : 1) * sizeof(double));
    if (out) mixrt_free(k->ctx, out, (nt ? nt : 1) * sizeof(double));
    return status;
}

static mixrt_status run_nll_loss(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct loss p;
    double *x = NULL;
    MIXRT_TRY(loss_prepare(k, &p));
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, p.x, &x));
    MIXRT_TRY(loss_finish(k, &p, x));
fail:
    if (x) {
        size_t n = mixrt_tensor_numel(p.x);
        mixrt_free(k->ctx, x, (n ? n : 1) * sizeof(double));
    }
    return status;
}

/* log_softmax over axis 1, computed as x - max - log(sum(exp(x - max))) so that no exp
 * overflows and the largest class is exact. */
static mixrt_status run_sce_loss(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct loss p;
    double *x = NULL;
    size_t nx = 0;
    MIXRT_TRY(loss_prepare(k, &p));
    nx = mixrt_tensor_numel(p.x);
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, p.x, &x));
    for (int64_t n = 0; n < p.n; n++) {
        for (int64_t d = 0; d < p.d; d++) {
            double *row = x + (size_t)(n * p.c * p.d + d);
            double mx = -INFINITY, s = 0.0;
            for (int64_t c = 0; c < p.c; c++)
                if (row[c * p.d] > mx || isnan(row[c * p.d])) mx = row[c * p.d];
            for (int64_t c = 0; c < p.c; c++) s += exp(row[c * p.d] - mx);
            double ls = log(s);
            for (int64_t c = 0; c < p.c; c++) row[c * p.d] = row[c * p.d] - mx - ls;
        }
    }
    MIXRT_TRY(loss_finish(k, &p, x));
    if (k->n_out > 1 && (!k->out_wanted || k->out_wanted[1])) {
        struct mixrt_tensor *lp = NULL;
        MIXRT_TRY(mixrt_kernel_output(k, 1, p.x->dtype, p.x->rank, p.x->dims, &lp));
        if (nx) MIXRT_TRY(mixrt_convert(lp->data, lp->dtype, x, MIXRT_DTYPE_F64, nx));
    }
fail:
    if (x) mixrt_free(k->ctx, x, (nx ? nx : 1) * sizeof(double));
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_loss[] = {
    {"", "NegativeLogLikelihoodLoss", 12, 23, run_nll_loss},
    {"", "SoftmaxCrossEntropyLoss", 12, 23, run_sce_loss},
    {NULL, NULL, 0, 0, NULL},
};
