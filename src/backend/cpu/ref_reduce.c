/* ref_reduce.c - reference kernels that reduce or normalize along axes: Reduce*, ArgMax/ArgMin,
 * Softmax/LogSoftmax/Hardmax, CumSum, TopK, LpNormalization.
 * Invariant: float accumulation is in double and each output rounds once; integer Sum/Prod/
 * Max/Min/L1/SumSquare/Mean accumulate exactly in int64 (u64 compared unsigned). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/ref.h"

static const char *in_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

static mixrt_status bad_dtype(struct mixrt_kernel_ctx *k, int i, const struct mixrt_tensor *t, const char *expected) {
    char d[256];
    return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "input #%d '%s' is %s, expected %s", i,
                              in_name(k, i), mixrt_tensor_desc(d, sizeof(d), t), expected);
}

static mixrt_status bad_axis(struct mixrt_kernel_ctx *k, int64_t axis, const struct mixrt_tensor *t) {
    char d[256];
    return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "axis %lld is out of range for input #0 '%s' (%s)",
                              (long long)axis, in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), t));
}

static int icmp(int64_t a, int64_t b, bool u64) {
    if (u64) return (uint64_t)a < (uint64_t)b ? -1 : (uint64_t)a > (uint64_t)b;
    return a < b ? -1 : a > b;
}

/* The smallest and largest value of an integer dtype, as loaded by mixrt_load_i64. */
static void int_limits(mixrt_dtype dt, int64_t *lo, int64_t *hi) {
    switch (dt) {
    case MIXRT_DTYPE_I8: *lo = INT8_MIN, *hi = INT8_MAX; break;
    case MIXRT_DTYPE_U8: *lo = 0, *hi = UINT8_MAX; break;
    case MIXRT_DTYPE_I16: *lo = INT16_MIN, *hi = INT16_MAX; break;
    case MIXRT_DTYPE_U16: *lo = 0, *hi = UINT16_MAX; break;
    case MIXRT_DTYPE_I32: *lo = INT32_MIN, *hi = INT32_MAX; break;
    case MIXRT_DTYPE_U32: *lo = 0, *hi = UINT32_MAX; break;
    case MIXRT_DTYPE_U64: *lo = 0, *hi = -1; break; /* all ones: UINT64_MAX */
    default: *lo = INT64_MIN, *hi = INT64_MAX; break;
    }
}

/* Splits dims around axis: outer = prod(dims[:axis]), len = dims[axis], inner = prod(dims[axis+1:]). */
static void split_axis(const struct mixrt_tensor *t, int axis, size_t *outer, size_t *len, size_t *inner) {
    size_t o = 1, in = 1;
    for (int i = 0; i < axis; i++) o *= (size_t)t->dims[i];
    for (int i = axis + 1; i < t->rank; i++) in *= (size_t)t->dims[i];
    *outer = o;
    *len = (size_t)t->dims[axis];
    *inner = in;
}

/* ---- Reduce* ----------------------------------------------------------------------------- */

enum redop { R_SUM, R_MEAN, R_MAX, R_MIN, R_PROD, R_L1, R_L2, R_LOGSUM, R_LOGSUMEXP, R_SUMSQ };

/* Fills mask[d] for each reduced dim. Axes are an attribute before ReduceSum-13 / the rest-18
 * and an optional input after; empty axes reduce everything unless noop_with_empty_axes. */
static mixrt_status reduce_axes(struct mixrt_kernel_ctx *k, enum redop op, const struct mixrt_tensor *x, bool *mask,
                                bool *noop) {
    int64_t axes[MIXRT_MAX_RANK * 4];
    size_t n = 0;
    bool input_form = (op == R_SUM && k->opset >= 13) || k->opset >= 18;
    *noop = false;
    if (input_form) {
        const struct mixrt_tensor *t = mixrt_kernel_opt_input(k, 1);
        if (t) {
            mixrt_status status = mixrt_kernel_read_ints(k, 1, axes, sizeof(axes) / sizeof(axes[0]), &n);
            if (status != MIXRT_STATUS_OK) return status;
        }
        if (n == 0 && mixrt_node_attr_int(k->node, "noop_with_empty_axes", 0)) {
            *noop = true;
            return MIXRT_STATUS_OK;
        }
    } else {
        size_t cnt = 0;
        const int64_t *a = mixrt_node_attr_ints(k->node, "axes", &cnt);
        if (cnt > sizeof(axes) / sizeof(axes[0]))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'axes' has %zu entries", cnt);
        for (size_t i = 0; i < cnt; i++) axes[i] = a[i];
        n = cnt;
    }
    for (int d = 0; d < x->rank; d++) mask[d] = n == 0;
    for (size_t i = 0; i < n; i++) {
        int64_t ax;
        if (!mixrt_norm_axis(axes[i], x->rank, &ax)) return bad_axis(k, axes[i], x);
        if (mask[ax])
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "axis %lld appears twice in axes",
                                      (long long)axes[i]);
        mask[ax] = true;
    }
    return MIXRT_STATUS_OK;
}

/* For each input element, the flat index of the output element it reduces into. */
static mixrt_status reduce_index(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x, const bool *mask,
                                 size_t n, size_t **out) {
    int64_t ostride[MIXRT_MAX_RANK], ctr[MIXRT_MAX_RANK];
    int64_t s = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        ostride[d] = mask[d] ? 0 : s;
        if (!mask[d]) s *= x->dims[d];
        ctr[d] = 0;
    }
    size_t *idx = mixrt_alloc(k->ctx, (n ? n : 1) * sizeof(size_t));
    if (!idx) return MIXRT_STATUS_OUT_OF_MEMORY;
    int64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        idx[i] = (size_t)off;
        for (int d = x->rank - 1; d >= 0; d--) {
            off += ostride[d];
            if (++ctr[d] < x->dims[d]) break;
            off -= ostride[d] * x->dims[d];
            ctr[d] = 0;
        }
    }
    *out = idx;
    return MIXRT_STATUS_OK;
}

static mixrt_status run_reduce(struct mixrt_kernel_ctx *k, enum redop op) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *out = NULL;
    bool mask[MIXRT_MAX_RANK], noop = false;
    size_t *idx = NULL, n = 0, nout = 0;
    double *facc = NULL, *fmx = NULL;
    int64_t *iacc = NULL;
    if ((status = mixrt_kernel_input(k, 0, &x)) != MIXRT_STATUS_OK) return status;
    mixrt_dtype dt = x->dtype;
    if (!mixrt_dtype_is_float(dt) && !mixrt_dtype_is_int(dt)) return bad_dtype(k, 0, x, "a float or integer type");
    if ((status = reduce_axes(k, op, x, mask, &noop)) != MIXRT_STATUS_OK) return status;
    if (noop) {
        if ((status = mixrt_kernel_output(k, 0, dt, x->rank, x->dims, &out)) != MIXRT_STATUS_OK) return status;
        if (x->nbytes) memcpy(out->data, x->data, x->nbytes);
        return MIXRT_STATUS_OK;
    }
    bool keep = mixrt_node_attr_int(k->node, "keepdims", 1) != 0;
    int orank = 0;
    int64_t odims[MIXRT_MAX_RANK];
    size_t m = 1; /* elements per reduction */
    for (int d = 0; d < x->rank; d++) {
        if (mask[d]) m *= (size_t)x->dims[d];
        if (!mask[d]) odims[orank++] = x->dims[d];
        else if (keep) odims[orank++] = 1;
    }
    if ((status = mixrt_kernel_output(k, 0, dt, orank, odims, &out)) != MIXRT_STATUS_OK) return status;
    n = mixrt_tensor_numel(x);
    nout = mixrt_tensor_numel(out);
    MIXRT_TRY(reduce_index(k, x, mask, n, &idx));

    bool int_exact = mixrt_dtype_is_int(dt) &&
                     (op == R_SUM || op == R_MEAN || op == R_MAX || op == R_MIN || op == R_PROD || op == R_L1 ||
                      op == R_SUMSQ);
    if (int_exact) {
        bool u64 = dt == MIXRT_DTYPE_U64;
        int64_t lo, hi;
        int_limits(dt, &lo, &hi);
        iacc = mixrt_calloc(k->ctx, nout ? nout : 1, sizeof(int64_t));
        if (!iacc) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        /* empty reductions: Max gives the type's lowest value, Min its highest, Prod 1 */
        for (size_t j = 0; j < nout; j++) iacc[j] = op == R_MAX ? lo : op == R_MIN ? hi : op == R_PROD ? 1 : 0;
        for (size_t i = 0; i < n; i++) {
            int64_t v = mixrt_load_i64(x->data, dt, i), *a = &iacc[idx[i]];
            uint64_t ua = (uint64_t)*a, uv = (uint64_t)v;
            switch (op) {
            case R_MAX: if (icmp(v, *a, u64) > 0) *a = v; break;
            case R_MIN: if (icmp(v, *a, u64) < 0) *a = v; break;
            case R_PROD: *a = (int64_t)(ua * uv); break;
            case R_L1: *a = (int64_t)(ua + (!u64 && v < 0 ? 0 - uv : uv)); break;
            case R_SUMSQ: *a = (int64_t)(ua + uv * uv); break;
            default: *a = (int64_t)(ua + uv); break;
            }
        }
        for (size_t j = 0; j < nout; j++) {
            int64_t v = iacc[j];
            if (op == R_MEAN) v = m == 0 ? 0 : u64 ? (int64_t)((uint64_t)v / m) : v / (int64_t)m;
            mixrt_store_i64(out->data, dt, j, v);
        }
        status = MIXRT_STATUS_OK;
        goto fail;
    }

    facc = mixrt_calloc(k->ctx, nout ? nout : 1, sizeof(double));
    if (!facc) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    if (op == R_LOGSUMEXP) {
        /* shift by the maximum so exp cannot overflow */
        fmx = mixrt_calloc(k->ctx, nout ? nout : 1, sizeof(double));
        if (!fmx) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        for (size_t j = 0; j < nout; j++) fmx[j] = -INFINITY;
        for (size_t i = 0; i < n; i++) {
            double v = mixrt_load_f64(x->data, dt, i);
            if (v > fmx[idx[i]] || isnan(v)) fmx[idx[i]] = v;
        }
        for (size_t j = 0; j < nout; j++)
            if (isinf(fmx[j])) fmx[j] = 0; /* all -inf (or any +inf): the plain formula is right */
    }
    for (size_t j = 0; j < nout; j++) facc[j] = op == R_MAX ? -INFINITY : op == R_MIN ? INFINITY : op == R_PROD ? 1 : 0;
    for (size_t i = 0; i < n; i++) {
        double v = mixrt_load_f64(x->data, dt, i), *a = &facc[idx[i]];
        switch (op) {
        case R_MAX: if (v > *a || isnan(v)) *a = v; break;
        case R_MIN: if (v < *a || isnan(v)) *a = v; break;
        case R_PROD: *a *= v; break;
        case R_L1: *a += fabs(v); break;
        case R_L2:
        case R_SUMSQ: *a += v * v; break;
        case R_LOGSUMEXP: *a += exp(v - fmx[idx[i]]); break;
        default: *a += v; break;
        }
    }
    for (size_t j = 0; j < nout; j++) {
        double v = facc[j];
        switch (op) {
        case R_MEAN: v = v / (double)m; break; /* empty: 0/0 = NaN */
        case R_L2: v = sqrt(v); break;
        case R_LOGSUM: v = log(v); break;
        case R_LOGSUMEXP: v = fmx[j] + log(v); break;
        default: break;
        }
        mixrt_store_f64(out->data, dt, j, v);
    }
    status = MIXRT_STATUS_OK;
fail:
    if (idx) mixrt_free(k->ctx, idx, (n ? n : 1) * sizeof(size_t));
    if (iacc) mixrt_free(k->ctx, iacc, (nout ? nout : 1) * sizeof(int64_t));
    if (facc) mixrt_free(k->ctx, facc, (nout ? nout : 1) * sizeof(double));
    if (fmx) mixrt_free(k->ctx, fmx, (nout ? nout : 1) * sizeof(double));
    return status;
}

#define REDUCE_KERNEL(fn, op) \
    static mixrt_status fn(struct mixrt_kernel_ctx *k) { return run_reduce(k, op); }
REDUCE_KERNEL(run_reduce_sum, R_SUM)
REDUCE_KERNEL(run_reduce_mean, R_MEAN)
REDUCE_KERNEL(run_reduce_max, R_MAX)
REDUCE_KERNEL(run_reduce_min, R_MIN)
REDUCE_KERNEL(run_reduce_prod, R_PROD)
REDUCE_KERNEL(run_reduce_l1, R_L1)
REDUCE_KERNEL(run_reduce_l2, R_L2)
REDUCE_KERNEL(run_reduce_log_sum, R_LOGSUM)
REDUCE_KERNEL(run_reduce_log_sum_exp, R_LOGSUMEXP)
REDUCE_KERNEL(run_reduce_sum_square, R_SUMSQ)

/* ---- ArgMax / ArgMin ---------------------------------------------------------------------- */

static mixrt_status run_arg(struct mixrt_kernel_ctx *k, bool is_max) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *out = NULL;
    if ((status = mixrt_kernel_input(k, 0, &x)) != MIXRT_STATUS_OK) return status;
    mixrt_dtype dt = x->dtype;
    if (!mixrt_dtype_is_float(dt) && !mixrt_dtype_is_int(dt)) return bad_dtype(k, 0, x, "a float or integer type");
    int64_t axis_raw = mixrt_node_attr_int(k->node, "axis", 0), axis;
    if (!mixrt_norm_axis(axis_raw, x->rank, &axis)) return bad_axis(k, axis_raw, x);
    bool keep = mixrt_node_attr_int(k->node, "keepdims", 1) != 0;
    bool last = k->opset >= 12 && mixrt_node_attr_int(k->node, "select_last_index", 0) != 0;
    size_t outer, len, inner;
    split_axis(x, (int)axis, &outer, &len, &inner);
    int orank = 0;
    int64_t odims[MIXRT_MAX_RANK];
    for (int d = 0; d < x->rank; d++) {
        if (d != axis) odims[orank++] = x->dims[d];
        else if (keep) odims[orank++] = 1;
    }
    if (len == 0 && outer * inner != 0) {
        char d[256];
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #0 '%s' (%s) is empty along axis %lld",
                                  in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), x), (long long)axis);
    }
    if ((status = mixrt_kernel_output(k, 0, MIXRT_DTYPE_I64, orank, odims, &out)) != MIXRT_STATUS_OK) return status;
    int64_t *o = out->data;
    bool isint = mixrt_dtype_is_int(dt), u64 = dt == MIXRT_DTYPE_U64;
    if (dt == MIXRT_DTYPE_F32) {
        /* The same comparisons on f32 read in place, the best value held in a register (a
         * vocabulary-sized axis: the loads through mixrt_load_f64 dominated). */
        const float *xf = x->data;
        for (size_t a = 0; a < outer; a++)
            for (size_t c = 0; c < inner; c++) {
                size_t base = a * len * inner + c, best = 0;
                float bv = len ? xf[base] : 0.0f;
                bool bnan = isnan(bv);
                for (size_t j = 1; j < len; j++) {
                    float v = xf[base + j * inner];
                    bool vnan = isnan(v);
                    int cmp = vnan ? (bnan ? 0 : (is_max ? 1 : -1)) : bnan ? (is_max ? -1 : 1) : (v > bv) - (v < bv);
                    if (!is_max) cmp = -cmp;
                    if (cmp > 0 || (cmp == 0 && last)) best = j, bv = v, bnan = vnan;
                }
                o[a * inner + c] = (int64_t)best;
            }
        return MIXRT_STATUS_OK;
    }
    for (size_t a = 0; a < outer; a++)
        for (size_t c = 0; c < inner; c++) {
            size_t base = a * len * inner + c, best = 0;
            for (size_t j = 1; j < len; j++) {
                size_t e = base + j * inner, b = base + best * inner;
                int cmp;
                if (isint) {
                    cmp = icmp(mixrt_load_i64(x->data, dt, e), mixrt_load_i64(x->data, dt, b), u64);
                } else {
                    double ve = mixrt_load_f64(x->data, dt, e), vb = mixrt_load_f64(x->data, dt, b);
                    /* NaN wins, like numpy: the first NaN (or last with select_last_index) */
                    cmp = isnan(ve) ? (isnan(vb) ? 0 : (is_max ? 1 : -1))
                          : isnan(vb) ? (is_max ? -1 : 1)
                                      : (ve > vb) - (ve < vb);
                }
                if (!is_max) cmp = -cmp;
                if (cmp > 0 || (cmp == 0 && last)) best = j;
            }
            o[a * inner + c] = (int64_t)best;
        }
    return MIXRT_STATUS_OK;
}

static mixrt_status run_argmax(struct mixrt_kernel_ctx *k) { return run_arg(k, true); }
static mixrt_status run_argmin(struct mixrt_kernel_ctx *k) { return run_arg(k, false); }

/* ---- Softmax / LogSoftmax / Hardmax -------------------------------------------------------- */

enum smop { S_SOFTMAX, S_LOGSOFTMAX, S_HARDMAX };

static mixrt_status run_softmax_family(struct mixrt_kernel_ctx *k, enum smop op) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *out = NULL;
    double *fx = NULL;
    if ((status = mixrt_kernel_check_float(k, 0)) != MIXRT_STATUS_OK) return status;
    x = k->in[0];
    bool legacy = k->opset < 13;
    int64_t axis_raw = mixrt_node_attr_int(k->node, "axis", legacy ? 1 : -1), axis = 0;
    size_t outer = 1, len = 1, inner = 1;
    if (x->rank == 0) {
        if (axis_raw < -1 || axis_raw > 1) return bad_axis(k, axis_raw, x);
    } else if (legacy) {
        /* opset < 13: the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])] and
         * each row is normalized as a whole; axis == rank is allowed (rows of one element) */
        if (axis_raw < -(int64_t)x->rank || axis_raw > x->rank) return bad_axis(k, axis_raw, x);
        axis = axis_raw < 0 ? axis_raw + x->rank : axis_raw;
        for (int d = 0; d < x->rank; d++) {
            if (d < axis) outer *= (size_t)x->dims[d];
            else len *= (size_t)x->dims[d];
        }
    } else {
        if (!mixrt_norm_axis(axis_raw, x->rank, &axis)) return bad_axis(k, axis_raw, x);
        split_axis(x, (int)axis, &outer, &len, &inner);
    }
    if ((status = mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &out)) != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_tensor_to_f64(k->ctx, x, &fx)) != MIXRT_STATUS_OK) return status;
    for (size_t a = 0; a < outer; a++)
        for (size_t c = 0; c < inner; c++) {
            size_t base = a * len * inner + c;
            if (len == 0) continue;
            double mx = fx[base];
            size_t best = 0;
            for (size_t j = 1; j < len; j++)
                if (fx[base + j * inner] > mx) {
                    mx = fx[base + j * inner];
                    best = j;
                }
            if (op == S_HARDMAX) {
                for (size_t j = 0; j < len; j++) mixrt_store_f64(out->data, x->dtype, base + j * inner, j == best);
                continue;
            }
            double sum = 0;
            for (size_t j = 0; j < len; j++) sum += exp(fx[base + j * inner] - mx);
            for (size_t j = 0; j < len; j++) {
                double v = fx[base + j * inner] - mx;
                mixrt_store_f64(out->data, x->dtype, base + j * inner, op == S_SOFTMAX ? exp(v) / sum : v - log(sum));
            }
        }
    mixrt_free(k->ctx, fx, (mixrt_tensor_numel(x) ? mixrt_tensor_numel(x) : 1) * sizeof(double));
    return MIXRT_STATUS_OK;
}

static mixrt_status run_softmax(struct mixrt_kernel_ctx *k) { return run_softmax_family(k, S_SOFTMAX); }
static mixrt_status run_log_softmax(struct mixrt_kernel_ctx *k) { return run_softmax_family(k, S_LOGSOFTMAX); }
static mixrt_status run_hardmax(struct mixrt_kernel_ctx *k) { return run_softmax_family(k, S_HARDMAX); }

/* ---- CumSum ----------------------------------------------------------------------------------- */

/* Reads a one-element integer input (scalar or [1]) with a named error. */
static mixrt_status read_scalar_int(struct mixrt_kernel_ctx *k, int i, int64_t *v) {
    int64_t buf[1];
    size_t n = 0;
    mixrt_status status = mixrt_kernel_read_ints(k, i, buf, 1, &n);
    if (status != MIXRT_STATUS_OK) return status;
    if (n != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is empty, expected one integer", i,
                                  in_name(k, i));
    *v = buf[0];
    return MIXRT_STATUS_OK;
}

static mixrt_status run_cumsum(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *out = NULL;
    int64_t axis_raw, axis;
    if ((status = mixrt_kernel_input(k, 0, &x)) != MIXRT_STATUS_OK) return status;
    mixrt_dtype dt = x->dtype;
    if (!mixrt_dtype_is_float(dt) && !mixrt_dtype_is_int(dt)) return bad_dtype(k, 0, x, "a float or integer type");
    if ((status = read_scalar_int(k, 1, &axis_raw)) != MIXRT_STATUS_OK) return status;
    if (!mixrt_norm_axis(axis_raw, x->rank, &axis)) return bad_axis(k, axis_raw, x);
    bool excl = mixrt_node_attr_int(k->node, "exclusive", 0) != 0;
    bool rev = mixrt_node_attr_int(k->node, "reverse", 0) != 0;
    size_t outer, len, inner;
    split_axis(x, (int)axis, &outer, &len, &inner);
    if ((status = mixrt_kernel_output(k, 0, dt, x->rank, x->dims, &out)) != MIXRT_STATUS_OK) return status;
    bool isint = mixrt_dtype_is_int(dt);
    for (size_t a = 0; a < outer; a++)
        for (size_t c = 0; c < inner; c++) {
            size_t base = a * len * inner + c;
            double fs = 0;
            uint64_t is = 0;
            for (size_t s = 0; s < len; s++) {
                size_t j = rev ? len - 1 - s : s, e = base + j * inner;
                if (isint) {
                    uint64_t v = (uint64_t)mixrt_load_i64(x->data, dt, e);
                    if (!excl) is += v;
                    mixrt_store_i64(out->data, dt, e, (int64_t)is);
                    if (excl) is += v;
                } else {
                    double v = mixrt_load_f64(x->data, dt, e);
                    if (!excl) fs += v;
                    mixrt_store_f64(out->data, dt, e, fs);
                    if (excl) fs += v;
                }
            }
        }
    return MIXRT_STATUS_OK;
}

/* ---- TopK --------------------------------------------------------------------------------- */

struct topk_item {
    double v;
    int64_t iv;
    int64_t idx;
};

/* Ascending value order with NaN above everything; ties keep the smaller index first. */
static int key_cmp_f(const struct topk_item *a, const struct topk_item *b) {
    if (isnan(a->v) || isnan(b->v)) return isnan(a->v) - isnan(b->v);
    return (a->v > b->v) - (a->v < b->v);
}
static int idx_cmp(const struct topk_item *a, const struct topk_item *b) { return (a->idx > b->idx) - (a->idx < b->idx); }
static int topk_largest_f(const void *pa, const void *pb) {
    int c = -key_cmp_f(pa, pb);
    return c ? c : idx_cmp(pa, pb);
}
static int topk_smallest_f(const void *pa, const void *pb) {
    int c = key_cmp_f(pa, pb);
    return c ? c : idx_cmp(pa, pb);
}
static int topk_largest_i(const void *pa, const void *pb) {
    const struct topk_item *a = pa, *b = pb;
    int c = (a->iv < b->iv) - (a->iv > b->iv);
    return c ? c : idx_cmp(a, b);
}
static int topk_smallest_i(const void *pa, const void *pb) {
    const struct topk_item *a = pa, *b = pb;
    int c = (a->iv > b->iv) - (a->iv < b->iv);
    return c ? c : idx_cmp(a, b);
}
static int topk_largest_u(const void *pa, const void *pb) {
    const struct topk_item *a = pa, *b = pb;
    uint64_t x = (uint64_t)a->iv, y = (uint64_t)b->iv;
    int c = (x < y) - (x > y);
    return c ? c : idx_cmp(a, b);
}
static int topk_smallest_u(const void *pa, const void *pb) {
    const struct topk_item *a = pa, *b = pb;
    uint64_t x = (uint64_t)a->iv, y = (uint64_t)b->iv;
    int c = (x > y) - (x < y);
    return c ? c : idx_cmp(a, b);
}

/* Inserts it into the best-so-far items[0..*n) (sorted by cmp, at most K): it goes in at its
 * place, the K-th one dropping out when all K are held. */
static void topk_insert(struct topk_item *items, size_t *n, size_t K, struct topk_item it,
                        int (*cmp)(const void *, const void *)) {
    size_t pos = *n < K ? (*n)++ : K - 1;
    while (pos > 0 && cmp(&it, &items[pos - 1]) < 0) {
        items[pos] = items[pos - 1];
        pos--;
    }
    items[pos] = it;
}

/* The first K of items[0..len) in cmp's order, into items[0..K) sorted: the same result as
 * sorting everything (cmp is a total order: ties go by index), but one comparison for most
 * items once K are held (a vocabulary of 50257 per row, K = 5: 1 s -> well under 0.1 s). */
static void topk_select(struct topk_item *items, size_t len, size_t K, int (*cmp)(const void *, const void *)) {
    size_t n = 0; /* items[0..n) hold the best so far; n <= j, so items[j] is unread */
    for (size_t j = 0; j < len; j++) {
        struct topk_item it = items[j];
        if (n == K && cmp(&it, &items[K - 1]) >= 0) continue;
        topk_insert(items, &n, K, it, cmp);
    }
}

/* topk_select for a float axis read in place (element j at base + j * inner): most values are
 * rejected by one comparison with the k-th held value, with cmp's rules (NaN above every
 * number; an equal value loses, its index being higher than every held one). */
static void topk_select_float(const struct mixrt_tensor *x, size_t base, size_t inner, size_t len, size_t K,
                              bool largest, struct topk_item *items, int (*cmp)(const void *, const void *)) {
    size_t n = 0;
    bool f32 = x->dtype == MIXRT_DTYPE_F32;
    for (size_t j = 0; j < len; j++) {
        size_t e = base + j * inner;
        double v = f32 ? (double)((const float *)x->data)[e] : mixrt_load_f64(x->data, x->dtype, e);
        if (n == K) {
            double w = items[K - 1].v;
            if (largest ? isnan(w) || (!isnan(v) && v <= w) : isnan(v) || (!isnan(w) && v >= w)) continue;
        }
        topk_insert(items, &n, K, (struct topk_item){.v = v, .idx = (int64_t)j}, cmp);
    }
}

static mixrt_status run_topk(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *vals = NULL, *inds = NULL;
    struct topk_item *items = NULL;
    size_t len = 0;
    int64_t kk, axis_raw = mixrt_node_attr_int(k->node, "axis", -1), axis;
    if ((status = mixrt_kernel_input(k, 0, &x)) != MIXRT_STATUS_OK) return status;
    mixrt_dtype dt = x->dtype;
    if (!mixrt_dtype_is_float(dt) && !mixrt_dtype_is_int(dt)) return bad_dtype(k, 0, x, "a float or integer type");
    if (!mixrt_norm_axis(axis_raw, x->rank, &axis)) return bad_axis(k, axis_raw, x);
    if (k->opset < 10) {
        if (!mixrt_node_attr(k->node, "k"))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "required attribute 'k' is missing");
        kk = mixrt_node_attr_int(k->node, "k", 0);
    } else if ((status = read_scalar_int(k, 1, &kk)) != MIXRT_STATUS_OK) {
        return status;
    }
    bool largest = k->opset < 11 || mixrt_node_attr_int(k->node, "largest", 1) != 0;
    /* sorted=0 leaves the order unspecified; sorted output satisfies it too */
    size_t outer, inner;
    split_axis(x, (int)axis, &outer, &len, &inner);
    if (kk < 0 || (uint64_t)kk > len) {
        char d[256];
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "k = %lld is outside [0, %zu] for input #0 '%s' (%s)",
                                  (long long)kk, len, in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), x));
    }
    int64_t odims[MIXRT_MAX_RANK];
    memcpy(odims, x->dims, sizeof(odims));
    odims[axis] = kk;
    if ((status = mixrt_kernel_output(k, 0, dt, x->rank, odims, &vals)) != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_kernel_output(k, 1, MIXRT_DTYPE_I64, x->rank, odims, &inds)) != MIXRT_STATUS_OK) return status;
    items = mixrt_calloc(k->ctx, len ? len : 1, sizeof(*items));
    if (!items) return MIXRT_STATUS_OUT_OF_MEMORY;
    int (*cmp)(const void *, const void *);
    if (mixrt_dtype_is_float(dt)) cmp = largest ? topk_largest_f : topk_smallest_f;
    else if (dt == MIXRT_DTYPE_U64) cmp = largest ? topk_largest_u : topk_smallest_u;
    else cmp = largest ? topk_largest_i : topk_smallest_i;
    size_t es = mixrt_dtype_size(dt), K = (size_t)kk;
    int64_t *oi = inds->data;
    for (size_t a = 0; a < outer; a++)
        for (size_t c = 0; c < inner; c++) {
            size_t base = a * len * inner + c, obase = a * K * inner + c;
            bool select = K > 0 && K * 16 < len;
            if (select && mixrt_dtype_is_float(dt)) topk_select_float(x, base, inner, len, K, largest, items, cmp);
            for (size_t j = 0; !(select && mixrt_dtype_is_float(dt)) && j < len; j++) {
                size_t e = base + j * inner;
                items[j].idx = (int64_t)j;
                if (mixrt_dtype_is_float(dt)) items[j].v = mixrt_load_f64(x->data, dt, e);
                else items[j].iv = mixrt_load_i64(x->data, dt, e);
            }
            if (select && !mixrt_dtype_is_float(dt)) topk_select(items, len, K, cmp);
            else if (!select && len > 1) qsort(items, len, sizeof(*items), cmp);
            for (size_t j = 0; j < K; j++) {
                size_t src = base + (size_t)items[j].idx * inner, dst = obase + j * inner;
                memcpy((char *)vals->data + dst * es, (const char *)x->data + src * es, es);
                oi[dst] = items[j].idx;
            }
        }
    mixrt_free(k->ctx, items, (len ? len : 1) * sizeof(*items));
    return MIXRT_STATUS_OK;
}

/* ---- LpNormalization ------------------------------------------------------------------------ */

static mixrt_status run_lp_normalization(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *out = NULL;
    double *fx = NULL;
    if ((status = mixrt_kernel_check_float(k, 0)) != MIXRT_STATUS_OK) return status;
    x = k->in[0];
    int64_t axis_raw = mixrt_node_attr_int(k->node, "axis", -1), axis;
    int64_t p = mixrt_node_attr_int(k->node, "p", 2);
    if (p != 1 && p != 2)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'p' is %lld, expected 1 or 2", (long long)p);
    if (!mixrt_norm_axis(axis_raw, x->rank, &axis)) return bad_axis(k, axis_raw, x);
    size_t outer, len, inner;
    split_axis(x, (int)axis, &outer, &len, &inner);
    if ((status = mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &out)) != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_tensor_to_f64(k->ctx, x, &fx)) != MIXRT_STATUS_OK) return status;
    for (size_t a = 0; a < outer; a++)
        for (size_t c = 0; c < inner; c++) {
            size_t base = a * len * inner + c;
            double norm = 0;
            for (size_t j = 0; j < len; j++) {
                double v = fx[base + j * inner];
                norm += p == 1 ? fabs(v) : v * v;
            }
            if (p == 2) norm = sqrt(norm);
            /* an all-zero vector stays zero instead of becoming 0/0 */
            for (size_t j = 0; j < len; j++)
                mixrt_store_f64(out->data, x->dtype, base + j * inner, norm == 0 ? 0.0 : fx[base + j * inner] / norm);
        }
    mixrt_free(k->ctx, fx, (mixrt_tensor_numel(x) ? mixrt_tensor_numel(x) : 1) * sizeof(double));
    return MIXRT_STATUS_OK;
}

const struct mixrt_op_def mixrt_ref_ops_reduce[] = {
    {"", "ReduceSum", 1, 23, run_reduce_sum},
    {"", "ReduceMean", 1, 23, run_reduce_mean},
    {"", "ReduceMax", 1, 23, run_reduce_max},
    {"", "ReduceMin", 1, 23, run_reduce_min},
    {"", "ReduceProd", 1, 23, run_reduce_prod},
    {"", "ReduceL1", 1, 23, run_reduce_l1},
    {"", "ReduceL2", 1, 23, run_reduce_l2},
    {"", "ReduceLogSum", 1, 23, run_reduce_log_sum},
    {"", "ReduceLogSumExp", 1, 23, run_reduce_log_sum_exp},
    {"", "ReduceSumSquare", 1, 23, run_reduce_sum_square},
    {"", "ArgMax", 1, 23, run_argmax},
    {"", "ArgMin", 1, 23, run_argmin},
    {"", "Softmax", 1, 23, run_softmax},
    {"", "LogSoftmax", 1, 23, run_log_softmax},
    {"", "Hardmax", 1, 23, run_hardmax},
    {"", "CumSum", 11, 23, run_cumsum},
    {"", "TopK", 1, 23, run_topk},
    {"", "LpNormalization", 1, 23, run_lp_normalization},
    {NULL, NULL, 0, 0, NULL},
};
