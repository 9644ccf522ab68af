/* ref_quant.c - reference kernels for the quantization operators: Quantize/DequantizeLinear
 * (per-tensor, per-axis, blocked), DynamicQuantizeLinear, MatMulInteger, QLinearMatMul,
 * ConvInteger and QLinearConv. Invariant: integer arithmetic is exact (int64, zero points
 * subtracted first, so padding contributes nothing); the one float step rounds half to even
 * and then saturates to the quantized type, with NaN mapped to the zero point. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/ref.h"

/* Geometric attributes and dims of convolutions are bounded so that products of two of
 * them (out * stride, (k - 1) * dilation) stay far from int64 overflow. */
#define QCONV_ATTR_MAX INT64_C(0x7fffffff)

/* ---- messages ---------------------------------------------------------------------------- */

static const char *in_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

/* "input #i 'name' is <dtype> [dims], <what>" with status st. */
static mixrt_status bad_input(struct mixrt_kernel_ctx *k, mixrt_status st, int i, const struct mixrt_tensor *t,
                              const char *fmt, ...) MIXRT_PRINTF(5, 6);
static mixrt_status bad_input(struct mixrt_kernel_ctx *k, mixrt_status st, int i, const struct mixrt_tensor *t,
                              const char *fmt, ...) {
    char what[512], d[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return mixrt_kernel_error(k, st, "input #%d '%s' is %s, %s", i, in_name(k, i), mixrt_tensor_desc(d, sizeof(d), t),
                              what);
}

/* ---- quantized types ------------------------------------------------------------------------ */

enum { QT_8 = 1, QT_16 = 2, QT_32 = 4 }; /* which integer quantized types an operand allows */

/* The saturation range of an integer quantized type; false for any other type. */
static bool qrange(mixrt_dtype dt, int64_t *lo, int64_t *hi) {
    switch (dt) {
    case MIXRT_DTYPE_I8:
        *lo = INT8_MIN, *hi = INT8_MAX;
        return true;
    case MIXRT_DTYPE_U8:
        *lo = 0, *hi = UINT8_MAX;
        return true;
    case MIXRT_DTYPE_I16:
        *lo = INT16_MIN, *hi = INT16_MAX;
        return true;
    case MIXRT_DTYPE_U16:
        *lo = 0, *hi = UINT16_MAX;
        return true;
    case MIXRT_DTYPE_I32:
        *lo = INT32_MIN, *hi = INT32_MAX;
        return true;
    default:
        return false;
    }
}

/* Why dt cannot be a quantized type of this operand at this opset (NULL when it can), with
 * the status to report: float8 and sub-byte types are valid ONNX that mixrt cannot store
 * (UNSUPPORTED_DTYPE); anything else outside `allowed` is a wrong model. */
static const char *qtype_refusal(const struct mixrt_kernel_ctx *k, mixrt_dtype dt, unsigned allowed, mixrt_status *st,
                                 char *buf, size_t size) {
    *st = MIXRT_STATUS_UNSUPPORTED_DTYPE;
    switch (dt) {
    case MIXRT_DTYPE_F8E4M3FN:
    case MIXRT_DTYPE_F8E4M3FNUZ:
    case MIXRT_DTYPE_F8E5M2:
    case MIXRT_DTYPE_F8E5M2FNUZ:
    case MIXRT_DTYPE_F8E8M0:
        return "float8 quantization is not supported by the reference kernels (only int8, uint8, int16, uint16)";
    case MIXRT_DTYPE_I4:
    case MIXRT_DTYPE_U4:
    case MIXRT_DTYPE_I2:
    case MIXRT_DTYPE_U2:
    case MIXRT_DTYPE_F4E2M1:
        return "sub-byte quantization is not supported by the reference kernels (only int8, uint8, int16, uint16)";
    default:
        break;
    }
    *st = MIXRT_STATUS_INVALID_MODEL;
    bool is8 = dt == MIXRT_DTYPE_I8 || dt == MIXRT_DTYPE_U8, is16 = dt == MIXRT_DTYPE_I16 || dt == MIXRT_DTYPE_U16;
    if (is8 || (is16 && (allowed & QT_16) && k->opset >= 21) || (dt == MIXRT_DTYPE_I32 && (allowed & QT_32)))
        return NULL;
    if (is16 && (allowed & QT_16)) {
        snprintf(buf, size, "int16 and uint16 quantization needs opset 21 (the node has opset %lld)",
                 (long long)k->opset);
        return buf;
    }
    snprintf(buf, size, "expected int8, uint8%s%s", (allowed & QT_16) ? ", int16, uint16" : "",
             (allowed & QT_32) ? ", int32" : "");
    return buf;
}

/* Input i must have a quantized type of the `allowed` kinds. */
static mixrt_status check_qinput(struct mixrt_kernel_ctx *k, int i, const struct mixrt_tensor *t, unsigned allowed) {
    char buf[160];
    mixrt_status st;
    const char *why = qtype_refusal(k, t->dtype, allowed, &st, buf, sizeof(buf));
    return why ? bad_input(k, st, i, t, "%s", why) : MIXRT_STATUS_OK;
}

/* Zero point input zi, when present, must have the dtype of the tensor it belongs to (input
 * ti); a scalar-only zero point (per_tensor) must hold one element. */
static mixrt_status check_zero_point(struct mixrt_kernel_ctx *k, int zi, const struct mixrt_tensor *zp, int ti,
                                     const struct mixrt_tensor *t, bool per_tensor) {
    if (!zp) return MIXRT_STATUS_OK;
    if (zp->dtype != t->dtype)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, zi, zp, "expected the dtype of input #%d '%s' (%s)", ti,
                         in_name(k, ti), mixrt_dtype_name(t->dtype));
    if (per_tensor && mixrt_tensor_numel(zp) != 1)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, zi, zp, "expected a scalar (per-tensor zero point)");
    return MIXRT_STATUS_OK;
}

/* Input i, a float scale (f32, f16, bf16; f64 too): scalar when per_tensor. */
static mixrt_status check_scale(struct mixrt_kernel_ctx *k, int i, const struct mixrt_tensor **out, bool per_tensor) {
    mixrt_status status = mixrt_kernel_input(k, i, out);
    if (status == MIXRT_STATUS_OK) status = mixrt_kernel_check_float(k, i);
    if (status == MIXRT_STATUS_OK && per_tensor && mixrt_tensor_numel(*out) != 1)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, *out, "expected a scalar (per-tensor scale)");
    return status;
}

/* round(q) + zp, half to even, saturated to [lo, hi]; NaN gives the zero point (saturated).
 * zp and the bounds fit in 32 bits, so the double sum and comparisons are exact. */
static int64_t q_saturate(double q, int64_t zp, int64_t lo, int64_t hi) {
    double v = (isnan(q) ? 0.0 : nearbyint(q)) + (double)zp;
    if (v <= (double)lo) return lo;
    if (v >= (double)hi) return hi;
    return (int64_t)v;
}

/* The requantization multiplier scale_in / scale_out: in float when every scale is a float
 * narrower than f64, as ONNX's reference computes it, so that ties land the same way. */
static double q_multiplier(double sa, double sb, double sy, bool narrow) {
    if (narrow) {
        float m = (float)sa * (float)sb;
        m = m / (float)sy;
        return (double)m;
    }
    return sa * sb / sy;
}

static bool narrow_float(mixrt_dtype dt) { return dt != MIXRT_DTYPE_F64; }

/* Ceil of a / b for a >= 0, b > 0, without forming a + b (block_size may be near INT64_MAX). */
static int64_t ceil_div(int64_t a, int64_t b) { return a / b + (a % b != 0); }

/* ---- QuantizeLinear / DequantizeLinear --------------------------------------------------- */

/* Which scale/zero-point element applies to element i of x: one for all (per tensor), one per
 * index of x's axis (per axis), or one per block of `block` indices along the axis with the
 * other dims matching x (blocked; scale dims[axis] = ceil(D / block)). */
enum qmode { QMODE_TENSOR, QMODE_AXIS, QMODE_BLOCK };
struct qlayout {
    enum qmode mode;
    size_t D, inner, block, sd; /* x's axis dim, elements after the axis, block size, scale's axis dim */
};

static size_t qlayout_index(const struct qlayout *p, size_t i) {
    if (p->mode == QMODE_TENSOR) return 0;
    size_t a = (i / p->inner) % p->D;
    if (p->mode == QMODE_AXIS) return a;
    size_t outer = i / (p->inner * p->D);
    return (outer * p->sd + a / p->block) * p->inner + i % p->inner;
}

/* Reads axis/block_size and checks the shapes of scale (input 1) and zero point (input 2,
 * optional) against x (input 0). */
static mixrt_status qlayout_init(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x,
                                 const struct mixrt_tensor *scale, const struct mixrt_tensor *zp, struct qlayout *p) {
    char d[256];
    memset(p, 0, sizeof(*p));
    int64_t block = mixrt_node_attr_int(k->node, "block_size", 0), axis_attr = mixrt_node_attr_int(k->node, "axis", 1);
    int64_t axis = 0;
    if (block < 0)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'block_size' is %lld, expected >= 0",
                                  (long long)block);
    if (block > 0 && k->opset < 21)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "attribute 'block_size' (blocked quantization) needs opset 21 (the node has opset "
                                  "%lld)",
                                  (long long)k->opset);
    size_t ns = mixrt_tensor_numel(scale);
    if (block == 0 && ns == 1 && scale->rank <= 1) {
        p->mode = QMODE_TENSOR;
    } else {
        if (block == 0 && scale->rank != 1)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, scale,
                             "expected a scalar (per-tensor) or a 1-D tensor (per-axis) scale");
        if (block == 0 && k->opset < 13)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, scale,
                             "expected a scalar: per-axis scales need opset 13 (the node has opset %lld)",
                             (long long)k->opset);
        if (!mixrt_norm_axis(axis_attr, x->rank, &axis))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "attribute 'axis' is %lld, out of range for input #0 '%s' of rank %d",
                                      (long long)axis_attr, in_name(k, 0), x->rank);
        p->D = (size_t)x->dims[axis];
        p->inner = 1;
        for (int i = (int)axis + 1; i < x->rank; i++) p->inner *= (size_t)x->dims[i];
        if (block == 0) {
            if (scale->dims[0] != x->dims[axis])
                return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, scale,
                                 "expected [%lld] (dim %lld of input #0 '%s' %s) for per-axis quantization",
                                 (long long)x->dims[axis], (long long)axis, in_name(k, 0),
                                 mixrt_dims_str(d, sizeof(d), x->rank, x->dims));
            p->mode = QMODE_AXIS;
        } else {
            int64_t want = ceil_div(x->dims[axis], block);
            bool ok = scale->rank == x->rank;
            for (int i = 0; ok && i < x->rank; i++) ok = scale->dims[i] == (i == axis ? want : x->dims[i]);
            if (!ok)
                return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, scale,
                                 "expected the shape of input #0 '%s' %s with dim %lld = ceil(%lld / block_size %lld) "
                                 "= %lld for blocked quantization",
                                 in_name(k, 0), mixrt_dims_str(d, sizeof(d), x->rank, x->dims), (long long)axis,
                                 (long long)x->dims[axis], (long long)block, (long long)want);
            p->mode = QMODE_BLOCK;
            p->block = (size_t)block;
            p->sd = (size_t)want;
        }
    }
    if (zp) {
        bool same = zp->rank == scale->rank || (mixrt_tensor_numel(zp) == 1 && ns == 1 && zp->rank <= 1);
        for (int i = 0; same && i < zp->rank && zp->rank == scale->rank; i++) same = zp->dims[i] == scale->dims[i];
        if (!same)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, zp, "expected the shape of input #1 '%s' %s",
                             in_name(k, 1), mixrt_dims_str(d, sizeof(d), scale->rank, scale->dims));
    }
    return MIXRT_STATUS_OK;
}

static const mixrt_dtype quantize_x_types[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_F16, MIXRT_DTYPE_BF16,
                                               MIXRT_DTYPE_F64, MIXRT_DTYPE_I32, MIXRT_DTYPE_UNDEFINED};

/* y = saturate(round(x / y_scale) + y_zero_point). The quotient is taken in f32 when x and
 * the scale are both f32/f16/bf16 (as ONNX's reference and ONNX Runtime do, so ties round the
 * same way), in f64 for int32 or f64 operands. */
static mixrt_status run_quantize_linear(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *scale = NULL, *zp = mixrt_kernel_opt_input(k, 2);
    double *dx = NULL, *ds = NULL;
    int64_t *iz = NULL;
    size_t nx = 0, ns = 0, nz = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_check_dtype(k, 0, quantize_x_types));
    MIXRT_TRY(check_scale(k, 1, &scale, false));
    int64_t odt_attr = mixrt_node_attr_int(k->node, "output_dtype", 0);
    mixrt_dtype ydt = zp ? zp->dtype : odt_attr ? (mixrt_dtype)odt_attr : MIXRT_DTYPE_U8;
    if (odt_attr && (odt_attr < 0 || odt_attr >= MIXRT_DTYPE_COUNT))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'output_dtype' is %lld, not a dtype",
                                  (long long)odt_attr);
    if (odt_attr && zp && (mixrt_dtype)odt_attr != zp->dtype)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, zp, "but attribute 'output_dtype' is %s",
                         mixrt_dtype_name((mixrt_dtype)odt_attr));
    if (zp) {
        MIXRT_TRY(check_qinput(k, 2, zp, QT_8 | QT_16));
    } else {
        char buf[160];
        mixrt_status st;
        const char *why = qtype_refusal(k, ydt, QT_8 | QT_16, &st, buf, sizeof(buf));
        if (why) return mixrt_kernel_error(k, st, "attribute 'output_dtype' is %s: %s", mixrt_dtype_name(ydt), why);
    }
    struct qlayout lay;
    MIXRT_TRY(qlayout_init(k, x, scale, zp, &lay));
    int64_t lo = 0, hi = 0;
    qrange(ydt, &lo, &hi);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, ydt, x->rank, x->dims, &y));
    nx = mixrt_tensor_numel(x);
    if (nx == 0) goto fail;
    ns = mixrt_tensor_numel(scale);
    nz = zp ? mixrt_tensor_numel(zp) : 0;
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, x, &dx));
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, scale, &ds));
    if (zp) MIXRT_TRY(mixrt_tensor_to_i64(k->ctx, zp, &iz));
    bool f32_div = x->dtype != MIXRT_DTYPE_I32 && x->dtype != MIXRT_DTYPE_F64 && narrow_float(scale->dtype);
    for (size_t i = 0; i < nx; i++) {
        size_t p = qlayout_index(&lay, i);
        double q;
        if (f32_div) {
            float qf = (float)dx[i] / (float)ds[p];
            q = qf;
        } else {
            q = dx[i] / ds[p];
        }
        mixrt_store_i64(y->data, ydt, i, q_saturate(q, iz ? iz[p] : 0, lo, hi));
    }
fail:
    if (dx) mixrt_free(k->ctx, dx, (nx ? nx : 1) * sizeof(double));
    if (ds) mixrt_free(k->ctx, ds, (ns ? ns : 1) * sizeof(double));
    if (iz) mixrt_free(k->ctx, iz, (nz ? nz : 1) * sizeof(int64_t));
    return status;
}

/* y = (x - x_zero_point) * x_scale: the difference is exact in int64, the product is rounded
 * once into the output type (the scale's dtype, or attribute output_dtype when set). */
static mixrt_status run_dequantize_linear(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *scale = NULL, *zp = mixrt_kernel_opt_input(k, 2);
    double *ds = NULL;
    int64_t *ix = NULL, *iz = NULL;
    size_t nx = 0, ns = 0, nz = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(check_qinput(k, 0, x, QT_8 | QT_16 | QT_32));
    MIXRT_TRY(check_scale(k, 1, &scale, false));
    MIXRT_TRY(check_zero_point(k, 2, zp, 0, x, false));
    mixrt_dtype ydt = scale->dtype;
    int64_t odt_attr = mixrt_node_attr_int(k->node, "output_dtype", 0);
    if (odt_attr) {
        if (odt_attr < 0 || odt_attr >= MIXRT_DTYPE_COUNT || !mixrt_dtype_is_float((mixrt_dtype)odt_attr))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "attribute 'output_dtype' is %lld, expected a float dtype (f32, f16, bf16)",
                                      (long long)odt_attr);
        ydt = (mixrt_dtype)odt_attr;
    }
    struct qlayout lay;
    MIXRT_TRY(qlayout_init(k, x, scale, zp, &lay));
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, ydt, x->rank, x->dims, &y));
    nx = mixrt_tensor_numel(x);
    if (nx == 0) goto fail;
    ns = mixrt_tensor_numel(scale);
    nz = zp ? mixrt_tensor_numel(zp) : 0;
    MIXRT_TRY(mixrt_tensor_to_i64(k->ctx, x, &ix));
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, scale, &ds));
    if (zp) MIXRT_TRY(mixrt_tensor_to_i64(k->ctx, zp, &iz));
    for (size_t i = 0; i < nx; i++) {
        size_t p = qlayout_index(&lay, i);
        mixrt_store_f64(y->data, ydt, i, (double)(ix[i] - (iz ? iz[p] : 0)) * ds[p]);
    }
fail:
    if (ix) mixrt_free(k->ctx, ix, (nx ? nx : 1) * sizeof(int64_t));
    if (ds) mixrt_free(k->ctx, ds, (ns ? ns : 1) * sizeof(double));
    if (iz) mixrt_free(k->ctx, iz, (nz ? nz : 1) * sizeof(int64_t));
    return status;
}

/* uint8 dynamic quantization, all in f32 as the spec's formula is written: the range is
 * widened to include 0, scale = (max - min) / 255, zero point = saturate(round(-min / scale)).
 * An all-zero (or empty) x has scale 0: zero point 0 and y 0 rather than 0/0. NaNs are
 * ignored by the range and quantize to the zero point. */
static mixrt_status run_dynamic_quantize_linear(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    float *fx = NULL;
    size_t nx = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    struct mixrt_tensor *y = NULL, *ys = NULL, *yz = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_U8, x->rank, x->dims, &y));
    if (k->n_out > 1) MIXRT_TRY(mixrt_kernel_output(k, 1, MIXRT_DTYPE_F32, 0, NULL, &ys));
    if (k->n_out > 2) MIXRT_TRY(mixrt_kernel_output(k, 2, MIXRT_DTYPE_U8, 0, NULL, &yz));
    nx = mixrt_tensor_numel(x);
    if (nx) MIXRT_TRY(mixrt_tensor_to_f32(k->ctx, x, &fx));
    float mn = 0.0f, mx = 0.0f;
    for (size_t i = 0; i < nx; i++) {
        if (fx[i] < mn) mn = fx[i];
        if (fx[i] > mx) mx = fx[i];
    }
    float scale = (mx - mn) / 255.0f;
    int64_t zp = 0;
    if (scale != 0.0f) {
        float zf = 0.0f - mn / scale;
        zp = q_saturate(zf, 0, 0, UINT8_MAX);
    }
    for (size_t i = 0; i < nx; i++) {
        int64_t v = 0;
        if (scale != 0.0f) {
            float q = fx[i] / scale;
            v = q_saturate(q, zp, 0, UINT8_MAX);
        }
        ((uint8_t *)y->data)[i] = (uint8_t)v;
    }
    if (ys) ((float *)ys->data)[0] = scale;
    if (yz) ((uint8_t *)yz->data)[0] = (uint8_t)zp;
fail:
    if (fx) mixrt_free(k->ctx, fx, nx * sizeof(float));
    return status;
}

/* ---- integer matmul ------------------------------------------------------------------------ */

/* numpy matmul geometry: A [..., M, K] (or [K]) times B [..., K, N] (or [K]) with the batch
 * dims broadcast. abatch/bbatch give, per output batch, the flat matrix index in A and B. */
struct qmm {
    int64_t M, K, N;
    int yrank;
    int64_t ydims[MIXRT_MAX_RANK];
    size_t nbatch, na_mat, nb_mat; /* output batches; matrices in A; in B */
    size_t *abatch, *bbatch;
    int arank_b, brank_b, yrank_b; /* batch ranks */
    int64_t adims_b[MIXRT_MAX_RANK], bdims_b[MIXRT_MAX_RANK], ydims_b[MIXRT_MAX_RANK];
};

static void qmm_release(struct mixrt_kernel_ctx *k, struct qmm *g) {
    size_t n = g->nbatch ? g->nbatch : 1;
    if (g->abatch) mixrt_free(k->ctx, g->abatch, n * sizeof(size_t));
    if (g->bbatch) mixrt_free(k->ctx, g->bbatch, n * sizeof(size_t));
    g->abatch = g->bbatch = NULL;
}

/* Shapes of A (input ia) and B (input ib); fills g (batch maps allocated, release with
 * qmm_release). */
static mixrt_status qmm_init(struct mixrt_kernel_ctx *k, int ia, const struct mixrt_tensor *a, int ib,
                             const struct mixrt_tensor *b, struct qmm *g) {
    char d[256];
    memset(g, 0, sizeof(*g));
    if (a->rank < 1) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, ia, a, "expected rank >= 1 for matmul");
    if (b->rank < 1) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, ib, b, "expected rank >= 1 for matmul");
    g->M = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    g->K = a->dims[a->rank - 1];
    g->N = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    int64_t kb = b->rank >= 2 ? b->dims[b->rank - 2] : b->dims[0];
    if (kb != g->K)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, ib, b,
                         "expected %lld rows to match the last dim of input #%d '%s' %s", (long long)g->K, ia,
                         in_name(k, ia), mixrt_dims_str(d, sizeof(d), a->rank, a->dims));
    g->arank_b = a->rank > 2 ? a->rank - 2 : 0;
    g->brank_b = b->rank > 2 ? b->rank - 2 : 0;
    memcpy(g->adims_b, a->dims, (size_t)g->arank_b * sizeof(int64_t));
    memcpy(g->bdims_b, b->dims, (size_t)g->brank_b * sizeof(int64_t));
    if (!mixrt_broadcast_shape(g->arank_b, g->adims_b, g->brank_b, g->bdims_b, &g->yrank_b, g->ydims_b))
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, ib, b, "batch dims do not broadcast with input #%d '%s' %s", ia,
                         in_name(k, ia), mixrt_dims_str(d, sizeof(d), a->rank, a->dims));
    g->yrank = g->yrank_b;
    memcpy(g->ydims, g->ydims_b, (size_t)g->yrank_b * sizeof(int64_t));
    if (a->rank >= 2) g->ydims[g->yrank++] = g->M;
    if (b->rank >= 2) g->ydims[g->yrank++] = g->N;
    return MIXRT_STATUS_OK;
}

/* Allocates the batch maps; called once the output (and so its size) is known non-empty. */
static mixrt_status qmm_map_batches(struct mixrt_kernel_ctx *k, struct qmm *g) {
    g->nbatch = 1;
    for (int i = 0; i < g->yrank_b; i++) g->nbatch *= (size_t)g->ydims_b[i];
    g->na_mat = g->nb_mat = 1;
    for (int i = 0; i < g->arank_b; i++) g->na_mat *= (size_t)g->adims_b[i];
    for (int i = 0; i < g->brank_b; i++) g->nb_mat *= (size_t)g->bdims_b[i];
    size_t n = g->nbatch ? g->nbatch : 1;
    g->abatch = mixrt_calloc(k->ctx, n, sizeof(size_t));
    g->bbatch = mixrt_calloc(k->ctx, n, sizeof(size_t));
    if (!g->abatch || !g->bbatch) return MIXRT_STATUS_OUT_OF_MEMORY;
    int64_t as[MIXRT_MAX_RANK], bs[MIXRT_MAX_RANK], idx[MIXRT_MAX_RANK] = {0};
    mixrt_broadcast_strides(g->arank_b, g->adims_b, g->yrank_b, g->ydims_b, as);
    mixrt_broadcast_strides(g->brank_b, g->bdims_b, g->yrank_b, g->ydims_b, bs);
    for (size_t ob = 0; ob < g->nbatch; ob++) {
        int64_t ai = 0, bi = 0;
        for (int i = 0; i < g->yrank_b; i++) ai += idx[i] * as[i], bi += idx[i] * bs[i];
        g->abatch[ob] = (size_t)ai;
        g->bbatch[ob] = (size_t)bi;
        for (int i = g->yrank_b - 1; i >= 0 && ++idx[i] == g->ydims_b[i]; i--) idx[i] = 0;
    }
    return MIXRT_STATUS_OK;
}

/* The shape a per-row (A side) or per-column (B side) parameter p (input pi: scale or zero
 * point) must broadcast to: [batch..., R, 1] (rows) or [batch..., 1, R] (columns), R = M or N.
 * p is a scalar, a 1-D vector of R, or an N-D tensor broadcastable to that shape; *pr/pdims
 * get p's shape as it broadcasts (a row vector stands for [M, 1]). */
static mixrt_status qmm_param_shape(struct mixrt_kernel_ctx *k, const struct qmm *g, int pi,
                                    const struct mixrt_tensor *p, bool rows, int *tr, int64_t *tdims, int *pr,
                                    int64_t *pdims) {
    char d[256];
    int64_t R = rows ? g->M : g->N;
    int r = rows ? g->arank_b : g->brank_b;
    memcpy(tdims, rows ? g->adims_b : g->bdims_b, (size_t)r * sizeof(int64_t));
    tdims[r] = rows ? R : 1;
    tdims[r + 1] = rows ? 1 : R;
    *tr = r + 2;
    *pr = p->rank;
    memcpy(pdims, p->dims, (size_t)p->rank * sizeof(int64_t));
    if (mixrt_tensor_numel(p) == 1) {
        *pr = 0; /* per tensor */
        return MIXRT_STATUS_OK;
    }
    if (p->rank == 1 && rows) pdims[1] = 1, *pr = 2;
    bool ok = *pr <= *tr && *pr >= 1;
    for (int i = 0; ok && i < *pr; i++) {
        int64_t pd = pdims[*pr - 1 - i], td = tdims[*tr - 1 - i];
        ok = pd == td || pd == 1;
    }
    if (!ok)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, pi, p,
                         "expected a scalar, a vector of %lld (per %s) or a tensor broadcastable to %s", (long long)R,
                         rows ? "row" : "column", mixrt_dims_str(d, sizeof(d), *tr, tdims));
    return MIXRT_STATUS_OK;
}

static mixrt_status qmm_check_param(struct mixrt_kernel_ctx *k, const struct qmm *g, int pi,
                                    const struct mixrt_tensor *p, bool rows) {
    int tr, pr;
    int64_t tdims[MIXRT_MAX_RANK + 2], pdims[MIXRT_MAX_RANK + 2];
    return p ? qmm_param_shape(k, g, pi, p, rows, &tr, tdims, &pr, pdims) : MIXRT_STATUS_OK;
}

/* Maps parameter p onto the rows (or columns) of its operand's matrices: out[mat * R + r] is
 * the flat index in p of the entry for row/column r of matrix mat. */
static mixrt_status qmm_param_map(struct mixrt_kernel_ctx *k, const struct qmm *g, int pi, const struct mixrt_tensor *p,
                                  bool rows, size_t *out) {
    int tr, pr;
    int64_t tdims[MIXRT_MAX_RANK + 2], pdims[MIXRT_MAX_RANK + 2];
    mixrt_status status = qmm_param_shape(k, g, pi, p, rows, &tr, tdims, &pr, pdims);
    if (status != MIXRT_STATUS_OK) return status;
    size_t total = (rows ? g->na_mat : g->nb_mat) * (size_t)(rows ? g->M : g->N);
    /* tr is the operand's rank (2 for a vector operand), so at most MIXRT_MAX_RANK. */
    int64_t st[MIXRT_MAX_RANK + 2], idx[MIXRT_MAX_RANK + 2] = {0};
    mixrt_broadcast_strides(pr, pdims, tr, tdims, st);
    for (size_t j = 0; j < total; j++) {
        int64_t off = 0;
        for (int i = 0; i < tr; i++) off += idx[i] * st[i];
        out[j] = (size_t)off;
        for (int i = tr - 1; i >= 0 && ++idx[i] == tdims[i]; i--) idx[i] = 0;
    }
    return MIXRT_STATUS_OK;
}

/* Loads operand t as int64 minus its zero point (zp may be NULL): A side rows, B side columns. */
static mixrt_status qmm_load(struct mixrt_kernel_ctx *k, const struct qmm *g, const struct mixrt_tensor *t, int zi,
                             const struct mixrt_tensor *zp, bool rows, int64_t **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    size_t n = mixrt_tensor_numel(t), R = (size_t)(rows ? g->M : g->N);
    size_t nmap = (rows ? g->na_mat : g->nb_mat) * R;
    size_t *map = NULL;
    int64_t *v = NULL;
    MIXRT_TRY(mixrt_tensor_to_i64(k->ctx, t, &v));
    if (zp && n) {
        map = mixrt_calloc(k->ctx, nmap ? nmap : 1, sizeof(size_t));
        if (!map) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
        MIXRT_TRY(qmm_param_map(k, g, zi, zp, rows, map));
        size_t KN = (size_t)(g->K * g->N);
        for (size_t e = 0; e < n; e++) {
            /* A: row index over all matrices is e / K; B: matrix e / (K*N), column e % N. */
            size_t j = rows ? e / (size_t)g->K : (e / KN) * R + e % R;
            v[e] -= mixrt_load_i64(zp->data, zp->dtype, map[j]);
        }
    }
    *out = v;
    v = NULL;
fail:
    if (map) mixrt_free(k->ctx, map, (nmap ? nmap : 1) * sizeof(size_t));
    if (v) mixrt_free(k->ctx, v, (n ? n : 1) * sizeof(int64_t));
    return status;
}

/* acc[ob, m, n] = sum_k A[abatch[ob], m, k] * B[bbatch[ob], k, n], exact in int64. */
static void qmm_compute(const struct qmm *g, const int64_t *a, const int64_t *b, int64_t *acc) {
    size_t M = (size_t)g->M, K = (size_t)g->K, N = (size_t)g->N;
    for (size_t ob = 0; ob < g->nbatch; ob++) {
        const int64_t *A = a + g->abatch[ob] * M * K, *B = b + g->bbatch[ob] * K * N;
        int64_t *C = acc + ob * M * N;
        for (size_t m = 0; m < M; m++)
            for (size_t n = 0; n < N; n++) {
                int64_t s = 0;
                for (size_t q = 0; q < K; q++) s += A[m * K + q] * B[q * N + n];
                C[m * N + n] = s;
            }
    }
}

/* Runs the shared part of MatMulInteger and QLinearMatMul: the int64 accumulators of the
 * zero-point-corrected product, into a new buffer of numel(y) entries. */
static mixrt_status qmm_accumulate(struct mixrt_kernel_ctx *k, struct qmm *g, int ia, const struct mixrt_tensor *a,
                                   int iaz, const struct mixrt_tensor *az, int ib, const struct mixrt_tensor *b,
                                   int ibz, const struct mixrt_tensor *bz, size_t ny, int64_t **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    int64_t *va = NULL, *vb = NULL, *acc = NULL;
    size_t na = mixrt_tensor_numel(a), nb = mixrt_tensor_numel(b);
    (void)ia, (void)ib;
    MIXRT_TRY(qmm_map_batches(k, g));
    MIXRT_TRY(qmm_load(k, g, a, iaz, az, true, &va));
    MIXRT_TRY(qmm_load(k, g, b, ibz, bz, false, &vb));
    acc = mixrt_calloc(k->ctx, ny ? ny : 1, sizeof(int64_t));
    if (!acc) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    qmm_compute(g, va, vb, acc);
    *out = acc;
fail:
    if (va) mixrt_free(k->ctx, va, (na ? na : 1) * sizeof(int64_t));
    if (vb) mixrt_free(k->ctx, vb, (nb ? nb : 1) * sizeof(int64_t));
    return status;
}

static mixrt_status run_matmul_integer(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *a = NULL, *b = NULL, *az = mixrt_kernel_opt_input(k, 2),
                              *bz = mixrt_kernel_opt_input(k, 3);
    int64_t *acc = NULL;
    size_t ny = 0;
    struct qmm g;
    memset(&g, 0, sizeof(g));
    MIXRT_TRY(mixrt_kernel_input(k, 0, &a));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &b));
    MIXRT_TRY(check_qinput(k, 0, a, QT_8));
    MIXRT_TRY(check_qinput(k, 1, b, QT_8));
    MIXRT_TRY(check_zero_point(k, 2, az, 0, a, false));
    MIXRT_TRY(check_zero_point(k, 3, bz, 1, b, false));
    MIXRT_TRY(qmm_init(k, 0, a, 1, b, &g));
    MIXRT_TRY(qmm_check_param(k, &g, 2, az, true));
    MIXRT_TRY(qmm_check_param(k, &g, 3, bz, false));
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_I32, g.yrank, g.ydims, &y));
    ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    MIXRT_TRY(qmm_accumulate(k, &g, 0, a, 2, az, 1, b, 3, bz, ny, &acc));
    /* The spec lets accumulation overflow only in 32 bits: keep the low 32 bits. */
    for (size_t i = 0; i < ny; i++) ((int32_t *)y->data)[i] = (int32_t)(uint32_t)(uint64_t)acc[i];
fail:
    if (acc) mixrt_free(k->ctx, acc, (ny ? ny : 1) * sizeof(int64_t));
    qmm_release(k, &g);
    return status;
}

/* y = saturate(round(acc * (a_scale * b_scale / y_scale)) + y_zero_point); a_scale per row,
 * b_scale per column as the zero points; y's scale and zero point per tensor. */
static mixrt_status run_qlinear_matmul(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *a = NULL, *as = NULL, *az = mixrt_kernel_opt_input(k, 2), *b = NULL, *bs = NULL,
                              *bz = mixrt_kernel_opt_input(k, 5), *ys = NULL, *yz = NULL;
    int64_t *acc = NULL;
    size_t *amap = NULL, *bmap = NULL, ny = 0, nam = 0, nbm = 0;
    struct qmm g;
    memset(&g, 0, sizeof(g));
    MIXRT_TRY(mixrt_kernel_input(k, 0, &a));
    MIXRT_TRY(mixrt_kernel_input(k, 3, &b));
    MIXRT_TRY(mixrt_kernel_input(k, 7, &yz));
    MIXRT_TRY(check_qinput(k, 0, a, QT_8));
    MIXRT_TRY(check_qinput(k, 3, b, QT_8));
    MIXRT_TRY(check_qinput(k, 7, yz, QT_8));
    MIXRT_TRY(check_scale(k, 1, &as, false));
    MIXRT_TRY(check_scale(k, 4, &bs, false));
    MIXRT_TRY(check_scale(k, 6, &ys, true));
    MIXRT_TRY(check_zero_point(k, 2, az, 0, a, false));
    MIXRT_TRY(check_zero_point(k, 5, bz, 3, b, false));
    if (mixrt_tensor_numel(yz) != 1)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 7, yz, "expected a scalar (per-tensor zero point)");
    MIXRT_TRY(qmm_init(k, 0, a, 3, b, &g));
    MIXRT_TRY(qmm_check_param(k, &g, 1, as, true));
    MIXRT_TRY(qmm_check_param(k, &g, 2, az, true));
    MIXRT_TRY(qmm_check_param(k, &g, 4, bs, false));
    MIXRT_TRY(qmm_check_param(k, &g, 5, bz, false));
    int64_t lo = 0, hi = 0;
    qrange(yz->dtype, &lo, &hi);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, yz->dtype, g.yrank, g.ydims, &y));
    ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    MIXRT_TRY(qmm_accumulate(k, &g, 0, a, 2, az, 3, b, 5, bz, ny, &acc));
    nam = g.na_mat * (size_t)g.M;
    nbm = g.nb_mat * (size_t)g.N;
    amap = mixrt_calloc(k->ctx, nam ? nam : 1, sizeof(size_t));
    bmap = mixrt_calloc(k->ctx, nbm ? nbm : 1, sizeof(size_t));
    if (!amap || !bmap) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    MIXRT_TRY(qmm_param_map(k, &g, 1, as, true, amap));
    MIXRT_TRY(qmm_param_map(k, &g, 4, bs, false, bmap));
    bool narrow = narrow_float(as->dtype) && narrow_float(bs->dtype) && narrow_float(ys->dtype);
    double sy = mixrt_load_f64(ys->data, ys->dtype, 0);
    int64_t zy = mixrt_load_i64(yz->data, yz->dtype, 0);
    size_t M = (size_t)g.M, N = (size_t)g.N;
    for (size_t ob = 0; ob < g.nbatch; ob++)
        for (size_t m = 0; m < M; m++)
            for (size_t n = 0; n < N; n++) {
                double sa = mixrt_load_f64(as->data, as->dtype, amap[g.abatch[ob] * M + m]);
                double sb = mixrt_load_f64(bs->data, bs->dtype, bmap[g.bbatch[ob] * N + n]);
                size_t i = (ob * M + m) * N + n;
                double q = (double)acc[i] * q_multiplier(sa, sb, sy, narrow);
                mixrt_store_i64(y->data, y->dtype, i, q_saturate(q, zy, lo, hi));
            }
fail:
    if (acc) mixrt_free(k->ctx, acc, (ny ? ny : 1) * sizeof(int64_t));
    if (amap) mixrt_free(k->ctx, amap, (nam ? nam : 1) * sizeof(size_t));
    if (bmap) mixrt_free(k->ctx, bmap, (nbm ? nbm : 1) * sizeof(size_t));
    qmm_release(k, &g);
    return status;
}

/* ---- integer convolution ------------------------------------------------------------------- */

struct qconv {
    int nd;
    int64_t N, C, M, group;
    int64_t in[MIXRT_MAX_RANK], out[MIXRT_MAX_RANK], kd[MIXRT_MAX_RANK];
    int64_t s[MIXRT_MAX_RANK], d[MIXRT_MAX_RANK], pb[MIXRT_MAX_RANK], pe[MIXRT_MAX_RANK];
};

/* Shapes of x (input 0) and w (input iw), the window attributes and the output dims. */
static mixrt_status qconv_init(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x, int iw,
                               const struct mixrt_tensor *w, struct qconv *g) {
    mixrt_status status;
    char d[256];
    memset(g, 0, sizeof(*g));
    if (x->rank < 3)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x, "expected [N, C, D1, ...] with at least one spatial dim");
    g->nd = x->rank - 2;
    g->N = x->dims[0], g->C = x->dims[1];
    g->group = mixrt_node_attr_int(k->node, "group", 1);
    if (g->group < 1 || g->group > QCONV_ATTR_MAX)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'group' is %lld, expected >= 1",
                                  (long long)g->group);
    if (g->C % g->group)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x, "expected C divisible by group=%lld",
                         (long long)g->group);
    if (w->rank != x->rank || w->dims[1] != g->C / g->group || w->dims[0] % g->group)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, iw, w,
                         "expected [M, C/group=%lld, k1..k%d] (rank %d) with M divisible by group=%lld",
                         (long long)(g->C / g->group), g->nd, x->rank, (long long)g->group);
    g->M = w->dims[0];
    for (int i = 0; i < g->nd; i++) {
        g->kd[i] = w->dims[2 + i], g->in[i] = x->dims[2 + i];
        if (g->kd[i] < 1 || g->kd[i] > QCONV_ATTR_MAX)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, iw, w, "kernel dim %d is %lld, expected 1..%lld", i,
                             (long long)g->kd[i], (long long)QCONV_ATTR_MAX);
        if (g->in[i] > QCONV_ATTR_MAX)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x, "spatial dim %d exceeds %lld", i,
                             (long long)QCONV_ATTR_MAX);
    }
    size_t cnt = 0;
    const int64_t *ks = mixrt_node_attr_ints(k->node, "kernel_shape", &cnt);
    if (ks) {
        bool ok = cnt == (size_t)g->nd;
        for (int i = 0; ok && i < g->nd; i++) ok = ks[i] == g->kd[i];
        if (!ok)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, iw, w, "but attribute 'kernel_shape' is %s",
                             mixrt_dims_str(d, sizeof(d), (int)cnt, ks));
    }
    if ((status = mixrt_kernel_attr_ints_n(k, "strides", g->nd, 1, 1, QCONV_ATTR_MAX, g->s)) != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_kernel_attr_ints_n(k, "dilations", g->nd, 1, 1, QCONV_ATTR_MAX, g->d)) != MIXRT_STATUS_OK) return status;
    int64_t pads[2 * MIXRT_MAX_RANK];
    if ((status = mixrt_kernel_attr_ints_n(k, "pads", 2 * g->nd, 0, 0, QCONV_ATTR_MAX, pads)) != MIXRT_STATUS_OK) return status;
    const char *ap = mixrt_node_attr_string(k->node, "auto_pad", "NOTSET");
    bool same_upper = !strcmp(ap, "SAME_UPPER"), same_lower = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!same_upper && !same_lower && !valid && strcmp(ap, "NOTSET") && ap[0])
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "attribute 'auto_pad' is '%s', expected NOTSET, SAME_UPPER, SAME_LOWER or VALID", ap);
    for (int i = 0; i < g->nd; i++) {
        int64_t in = g->in[i], s = g->s[i], dk = (g->kd[i] - 1) * g->d[i] + 1;
        if (same_upper || same_lower) {
            int64_t out = ceil_div(in, s), total = (out - 1) * s + dk - in;
            if (total < 0) total = 0;
            g->pb[i] = same_upper ? total / 2 : total - total / 2;
            g->pe[i] = total - g->pb[i];
            g->out[i] = out;
            continue;
        }
        g->pb[i] = valid ? 0 : pads[i];
        g->pe[i] = valid ? 0 : pads[g->nd + i];
        int64_t span = in + g->pb[i] + g->pe[i] - dk;
        if (span < 0)
            return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x,
                             "spatial axis %d: the dilated kernel extent %lld exceeds the padded input %lld (pads "
                             "%lld+%lld)",
                             i, (long long)dk, (long long)(in + g->pb[i] + g->pe[i]), (long long)g->pb[i],
                             (long long)g->pe[i]);
        g->out[i] = span / s + 1;
    }
    return MIXRT_STATUS_OK;
}

/* Per-channel parameter p (input pi) of the M output channels: a scalar or a vector of M. */
static mixrt_status qconv_check_channel_param(struct mixrt_kernel_ctx *k, const struct qconv *g, int pi,
                                              const struct mixrt_tensor *p) {
    if (!p || mixrt_tensor_numel(p) == 1) return MIXRT_STATUS_OK;
    if (p->rank != 1 || p->dims[0] != g->M)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, pi, p,
                         "expected a scalar or a vector of M=%lld (per output channel)", (long long)g->M);
    return MIXRT_STATUS_OK;
}

static int64_t channel_i64(const struct mixrt_tensor *p, int64_t m) {
    if (!p) return 0;
    return mixrt_load_i64(p->data, p->dtype, mixrt_tensor_numel(p) == 1 ? 0 : (size_t)m);
}

/* acc[n, m, out...] = sum over channels c of m's group and taps t landing inside x of
 * (x[n, c, pos] - x_zp) * (w[m, c, t] - w_zp[m]). Only taps inside x are summed: padding
 * holds x's zero point, whose corrected value is 0. acc has numel(y) entries. */
static mixrt_status qconv_accumulate(struct mixrt_kernel_ctx *k, const struct qconv *g, const struct mixrt_tensor *x,
                                     const struct mixrt_tensor *xz, const struct mixrt_tensor *w,
                                     const struct mixrt_tensor *wz, int64_t *acc) {
    mixrt_status status = MIXRT_STATUS_OK;
    int64_t *vx = NULL, *vw = NULL;
    size_t nx = mixrt_tensor_numel(x), nw = mixrt_tensor_numel(w);
    MIXRT_TRY(mixrt_tensor_to_i64(k->ctx, x, &vx));
    MIXRT_TRY(mixrt_tensor_to_i64(k->ctx, w, &vw));
    int nd = g->nd;
    int64_t in_sp = 1, out_sp = 1, k_sp = 1, istr[MIXRT_MAX_RANK];
    for (int i = nd - 1; i >= 0; i--) istr[i] = in_sp, in_sp *= g->in[i];
    for (int i = 0; i < nd; i++) out_sp *= g->out[i], k_sp *= g->kd[i];
    int64_t Cg = g->C / g->group, Mg = g->M / g->group, zx = channel_i64(xz, 0);
    for (size_t i = 0; i < nx; i++) vx[i] -= zx;
    if (k_sp * Cg > 0)
        for (size_t i = 0; i < nw; i++) vw[i] -= channel_i64(wz, (int64_t)(i / (size_t)(Cg * k_sp)));
    int64_t o[MIXRT_MAX_RANK], t[MIXRT_MAX_RANK];
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t m = 0; m < g->M; m++) {
            int64_t grp = m / Mg;
            const int64_t *xb = vx + (n * g->C + grp * Cg) * in_sp, *wb = vw + m * Cg * k_sp;
            int64_t *yb = acc + (n * g->M + m) * out_sp;
            memset(o, 0, sizeof(o));
            for (int64_t oi = 0; oi < out_sp; oi++) {
                int64_t sum = 0;
                memset(t, 0, sizeof(t));
                for (int64_t ti = 0; ti < k_sp; ti++) {
                    bool inside = true;
                    int64_t flat = 0;
                    for (int i = 0; i < nd && inside; i++) {
                        int64_t pos = o[i] * g->s[i] - g->pb[i] + t[i] * g->d[i];
                        inside = pos >= 0 && pos < g->in[i];
                        if (inside) flat += pos * istr[i];
                    }
                    if (inside)
                        for (int64_t c = 0; c < Cg; c++) sum += xb[c * in_sp + flat] * wb[c * k_sp + ti];
                    for (int i = nd - 1; i >= 0 && ++t[i] == g->kd[i]; i--) t[i] = 0;
                }
                yb[oi] = sum;
                for (int i = nd - 1; i >= 0 && ++o[i] == g->out[i]; i--) o[i] = 0;
            }
        }
fail:
    if (vx) mixrt_free(k->ctx, vx, (nx ? nx : 1) * sizeof(int64_t));
    if (vw) mixrt_free(k->ctx, vw, (nw ? nw : 1) * sizeof(int64_t));
    return status;
}

static void qconv_ydims(const struct qconv *g, int64_t *ydims) {
    ydims[0] = g->N, ydims[1] = g->M;
    for (int i = 0; i < g->nd; i++) ydims[2 + i] = g->out[i];
}

static mixrt_status run_conv_integer(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *w = NULL, *xz = mixrt_kernel_opt_input(k, 2),
                              *wz = mixrt_kernel_opt_input(k, 3);
    int64_t *acc = NULL;
    size_t ny = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &w));
    MIXRT_TRY(check_qinput(k, 0, x, QT_8));
    MIXRT_TRY(check_qinput(k, 1, w, QT_8));
    MIXRT_TRY(check_zero_point(k, 2, xz, 0, x, true));
    MIXRT_TRY(check_zero_point(k, 3, wz, 1, w, false));
    struct qconv g;
    MIXRT_TRY(qconv_init(k, x, 1, w, &g));
    MIXRT_TRY(qconv_check_channel_param(k, &g, 3, wz));
    int64_t ydims[MIXRT_MAX_RANK];
    qconv_ydims(&g, ydims);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_I32, x->rank, ydims, &y));
    ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    acc = mixrt_calloc(k->ctx, ny, sizeof(int64_t));
    if (!acc) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    MIXRT_TRY(qconv_accumulate(k, &g, x, xz, w, wz, acc));
    /* Accumulation may overflow only in 32 bits (spec): keep the low 32 bits. */
    for (size_t i = 0; i < ny; i++) ((int32_t *)y->data)[i] = (int32_t)(uint32_t)(uint64_t)acc[i];
fail:
    if (acc) mixrt_free(k->ctx, acc, ny * sizeof(int64_t));
    return status;
}

/* y = saturate(round((acc + B[m]) * (x_scale * w_scale[m] / y_scale)) + y_zero_point). */
static mixrt_status run_qlinear_conv(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *xs = NULL, *xz = mixrt_kernel_opt_input(k, 2), *w = NULL, *ws = NULL,
                              *wz = mixrt_kernel_opt_input(k, 5), *ys = NULL, *yz = NULL,
                              *bias = mixrt_kernel_opt_input(k, 8);
    int64_t *acc = NULL;
    size_t ny = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_input(k, 3, &w));
    MIXRT_TRY(mixrt_kernel_input(k, 7, &yz));
    MIXRT_TRY(check_qinput(k, 0, x, QT_8));
    MIXRT_TRY(check_qinput(k, 3, w, QT_8));
    MIXRT_TRY(check_qinput(k, 7, yz, QT_8));
    MIXRT_TRY(check_scale(k, 1, &xs, true));
    MIXRT_TRY(check_scale(k, 4, &ws, false));
    MIXRT_TRY(check_scale(k, 6, &ys, true));
    MIXRT_TRY(check_zero_point(k, 2, xz, 0, x, true));
    MIXRT_TRY(check_zero_point(k, 5, wz, 3, w, false));
    if (mixrt_tensor_numel(yz) != 1)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 7, yz, "expected a scalar (per-tensor zero point)");
    struct qconv g;
    MIXRT_TRY(qconv_init(k, x, 3, w, &g));
    MIXRT_TRY(qconv_check_channel_param(k, &g, 4, ws));
    MIXRT_TRY(qconv_check_channel_param(k, &g, 5, wz));
    if (bias && (bias->dtype != MIXRT_DTYPE_I32 || bias->rank != 1 || bias->dims[0] != g.M))
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 8, bias, "expected int32 [M=%lld]", (long long)g.M);
    int64_t ydims[MIXRT_MAX_RANK], lo = 0, hi = 0;
    qconv_ydims(&g, ydims);
    qrange(yz->dtype, &lo, &hi);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, yz->dtype, x->rank, ydims, &y));
    ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    acc = mixrt_calloc(k->ctx, ny, sizeof(int64_t));
    if (!acc) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    MIXRT_TRY(qconv_accumulate(k, &g, x, xz, w, wz, acc));
    bool narrow = narrow_float(xs->dtype) && narrow_float(ws->dtype) && narrow_float(ys->dtype);
    double sx = mixrt_load_f64(xs->data, xs->dtype, 0), sy = mixrt_load_f64(ys->data, ys->dtype, 0);
    int64_t zy = mixrt_load_i64(yz->data, yz->dtype, 0);
    size_t out_sp = ny / (size_t)(g.N * g.M);
    for (size_t i = 0; i < ny; i++) {
        int64_t m = (int64_t)((i / out_sp) % (size_t)g.M);
        double sw = mixrt_load_f64(ws->data, ws->dtype, mixrt_tensor_numel(ws) == 1 ? 0 : (size_t)m);
        double q = (double)(acc[i] + channel_i64(bias, m)) * q_multiplier(sx, sw, sy, narrow);
        mixrt_store_i64(y->data, y->dtype, i, q_saturate(q, zy, lo, hi));
    }
fail:
    if (acc) mixrt_free(k->ctx, acc, ny * sizeof(int64_t));
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_quant[] = {
    {"", "QuantizeLinear", 10, 23, run_quantize_linear},
    {"", "DequantizeLinear", 10, 23, run_dequantize_linear},
    {"", "DynamicQuantizeLinear", 11, 23, run_dynamic_quantize_linear},
    {"", "MatMulInteger", 10, 23, run_matmul_integer},
    {"", "QLinearMatMul", 10, 23, run_qlinear_matmul},
    {"", "ConvInteger", 10, 23, run_conv_integer},
    {"", "QLinearConv", 10, 23, run_qlinear_conv},
    {NULL, NULL, 0, 0, NULL},
};
