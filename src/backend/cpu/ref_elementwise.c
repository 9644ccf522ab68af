/* ref_elementwise.c - reference kernels: unary math and activations, numpy-broadcast binary
 * arithmetic, logic, bitwise and comparison ops, Where, variadic Max/Min/Sum/Mean, Cast/CastLike.
 * Invariant: floats compute in f64 and round once into the output dtype; integers compute in
 * int64 (u64 as uint64) so no value is ever squeezed through a double, and no input can trap:
 * integer x/0 and x%0 give 0, INT_MIN/-1 wraps. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/ref.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static const char *in_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

static mixrt_status bad_dtype(struct mixrt_kernel_ctx *k, int i, const struct mixrt_tensor *t, const char *expected) {
    char d[256];
    return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "input #%d '%s' is %s, expected %s", i,
                              in_name(k, i), mixrt_tensor_desc(d, sizeof(d), t), expected);
}

static bool is_unsigned(mixrt_dtype dt) {
    return dt == MIXRT_DTYPE_U8 || dt == MIXRT_DTYPE_U16 || dt == MIXRT_DTYPE_U32 || dt == MIXRT_DTYPE_U64;
}

/* Bit width of an integer dtype (for shift counts). */
static int int_bits(mixrt_dtype dt) { return (int)mixrt_dtype_size(dt) * 8; }

/* Three-way compare of two integers loaded with mixrt_load_i64; u64 values above INT64_MAX
 * come back negative, so they compare as unsigned. */
static int icmp(int64_t a, int64_t b, bool u64) {
    if (u64) return (uint64_t)a < (uint64_t)b ? -1 : (uint64_t)a > (uint64_t)b;
    return a < b ? -1 : a > b;
}

/* Flat offsets into a tensor of shape (r, dims) for each element of the broadcast output
 * shape (rout, dout), in row-major output order. Free with (max(n,1) * sizeof(size_t)). */
static mixrt_status bcast_index(struct mixrt_kernel_ctx *k, int r, const int64_t *dims, int rout,
                                const int64_t *dout, size_t n, size_t **out) {
    int64_t strides[MIXRT_MAX_RANK], ctr[MIXRT_MAX_RANK];
    mixrt_broadcast_strides(r, dims, rout, dout, strides);
    size_t *idx = mixrt_alloc(k->ctx, (n ? n : 1) * sizeof(size_t));
    if (!idx) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int d = 0; d < rout; d++) ctr[d] = 0;
    int64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        idx[i] = (size_t)off;
        for (int d = rout - 1; d >= 0; d--) {
            off += strides[d];
            if (++ctr[d] < dout[d]) break;
            off -= strides[d] * dout[d];
            ctr[d] = 0;
        }
    }
    *out = idx;
    return MIXRT_STATUS_OK;
}

static void free_index(mixrt_context_t ctx, size_t *idx, size_t n) {
    if (idx) mixrt_free(ctx, idx, (n ? n : 1) * sizeof(size_t));
}

static void free_f64(mixrt_context_t ctx, double *p, const struct mixrt_tensor *t) {
    if (p) mixrt_free(ctx, p, (t && mixrt_tensor_numel(t) ? mixrt_tensor_numel(t) : 1) * sizeof(double));
}

static bool same_shape(const struct mixrt_tensor *a, const struct mixrt_tensor *b) {
    if (a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    return true;
}

static mixrt_status shape_mismatch(struct mixrt_kernel_ctx *k, int ia, const struct mixrt_tensor *a, int ib,
                                   const struct mixrt_tensor *b, const char *how) {
    char da[256], db[256];
    return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is %s and input #%d '%s' is %s: %s", ia,
                              in_name(k, ia), mixrt_tensor_desc(da, sizeof(da), a), ib, in_name(k, ib),
                              mixrt_tensor_desc(db, sizeof(db), b), how);
}

/* ---- binary broadcasting ------------------------------------------------------------ */

/* Two inputs broadcast to one output shape; ia/ib map each output element to its inputs. */
struct binary {
    const struct mixrt_tensor *a, *b;
    int rank;
    int64_t dims[MIXRT_MAX_RANK];
    size_t n;
    size_t *ia, *ib;
};

static void binary_release(struct mixrt_kernel_ctx *k, struct binary *p) {
    free_index(k->ctx, p->ia, p->n);
    free_index(k->ctx, p->ib, p->n);
    p->ia = p->ib = NULL;
}

/* Before opset 7 the arithmetic, logic and comparison ops did not broadcast numpy-style:
 * with broadcast=1, B's dims line up with A's starting at `axis` (suffix-aligned when axis
 * is absent) and the result has A's shape; with broadcast=0 the shapes must be equal. */
static mixrt_status binary_prepare(struct mixrt_kernel_ctx *k, struct binary *p) {
    mixrt_status status;
    memset(p, 0, sizeof(*p));
    if ((status = mixrt_kernel_input(k, 0, &p->a)) != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_kernel_input(k, 1, &p->b)) != MIXRT_STATUS_OK) return status;
    const struct mixrt_tensor *a = p->a, *b = p->b;
    int64_t bdims[MIXRT_MAX_RANK];
    int brank = b->rank;
    memcpy(bdims, b->dims, sizeof(bdims));
    if (k->opset < 7 && mixrt_node_attr(k->node, "broadcast")) {
        if (mixrt_node_attr_int(k->node, "broadcast", 0) == 0) {
            if (!same_shape(a, b)) return shape_mismatch(k, 0, a, 1, b, "shapes must be equal when broadcast=0");
        } else {
            int64_t axis = a->rank - b->rank;
            if (mixrt_node_attr(k->node, "axis")) axis = mixrt_node_attr_int(k->node, "axis", 0);
            if (axis < 0) axis += a->rank;
            if (axis < 0 || axis + b->rank > a->rank)
                return shape_mismatch(k, 0, a, 1, b, "legacy broadcast axis does not fit B into A");
            brank = a->rank;
            for (int i = 0; i < a->rank; i++) bdims[i] = 1;
            for (int i = 0; i < b->rank; i++) {
                int64_t d = b->dims[i], ad = a->dims[axis + i];
                if (d != ad && d != 1)
                    return shape_mismatch(k, 0, a, 1, b, "legacy broadcast: B's dims must match A's at axis");
                bdims[axis + i] = d;
            }
        }
        p->rank = a->rank;
        memcpy(p->dims, a->dims, sizeof(p->dims));
    } else if (k->opset < 7 && !same_shape(a, b)) {
        /* broadcast attribute absent: defaults to 0, so the shapes must agree */
        return shape_mismatch(k, 0, a, 1, b, "shapes must be equal without the broadcast attribute (opset < 7)");
    } else {
        if (!mixrt_broadcast_shape(a->rank, a->dims, b->rank, b->dims, &p->rank, p->dims))
            return shape_mismatch(k, 0, a, 1, b, "shapes do not broadcast");
    }
    if (!mixrt_dims_numel(p->rank, p->dims, &p->n))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "broadcast output size overflows");
    if ((status = bcast_index(k, a->rank, a->dims, p->rank, p->dims, p->n, &p->ia)) != MIXRT_STATUS_OK) goto fail;
    if ((status = bcast_index(k, brank, bdims, p->rank, p->dims, p->n, &p->ib)) != MIXRT_STATUS_OK) goto fail;
    return MIXRT_STATUS_OK;
fail:
    binary_release(k, p);
    return status;
}

enum binop {
    B_ADD, B_SUB, B_MUL, B_DIV, B_MOD, B_POW,
    B_BITAND, B_BITOR, B_BITXOR, B_SHL, B_SHR,
    B_AND, B_OR, B_XOR,
    B_EQ, B_LT, B_LE, B_GT, B_GE,
};

static double float_binop(enum binop op, double a, double b, bool fmod_mode) {
    switch (op) {
    case B_ADD: return a + b;
    case B_SUB: return a - b;
    case B_MUL: return a * b;
    case B_DIV: return a / b;
    case B_POW: return pow(a, b);
    case B_MOD: {
        double r = fmod(a, b);
        /* fmod=0 (numpy mod): the result takes the divisor's sign */
        if (!fmod_mode && r != 0 && ((r < 0) != (b < 0))) r += b;
        return r;
    }
    default: return 0;
    }
}

static int64_t int_pow(int64_t base, int64_t e) {
    if (e < 0) { /* integer result of 1/base^|e| truncates to 0 unless |base| == 1 */
        if (base == 1) return 1;
        if (base == -1) return (e & 1) ? -1 : 1;
        return 0;
    }
    uint64_t r = 1, b = (uint64_t)base;
    uint64_t ue = (uint64_t)e;
    while (ue) {
        if (ue & 1) r *= b;
        b *= b;
        ue >>= 1;
    }
    return (int64_t)r;
}

/* Integer arithmetic with wraparound in uint64 (stores truncate to the dtype). */
static int64_t int_binop(enum binop op, int64_t a, int64_t b, bool u64, int bits, bool fmod_mode) {
    uint64_t ua = (uint64_t)a, ub = (uint64_t)b;
    switch (op) {
    case B_ADD: return (int64_t)(ua + ub);
    case B_SUB: return (int64_t)(ua - ub);
    case B_MUL: return (int64_t)(ua * ub);
    case B_DIV:
        if (b == 0) return 0;
        if (u64) return (int64_t)(ua / ub);
        if (a == INT64_MIN && b == -1) return INT64_MIN;
        return a / b; /* truncates toward zero, like C and ONNX Runtime */
    case B_MOD: {
        if (b == 0) return 0;
        if (u64) return (int64_t)(ua % ub);
        if (b == -1) return 0;
        int64_t r = a % b;
        if (!fmod_mode && r != 0 && ((r < 0) != (b < 0))) r += b;
        return r;
    }
    case B_POW: return int_pow(a, b);
    case B_BITAND: return a & b;
    case B_BITOR: return a | b;
    case B_BITXOR: return a ^ b;
    case B_SHL: return ub >= (uint64_t)bits ? 0 : (int64_t)(ua << ub);
    case B_SHR: {
        /* unsigned types only: mask the loaded value to the dtype's width first */
        uint64_t mask = bits >= 64 ? UINT64_MAX : ((1ull << bits) - 1);
        return ub >= (uint64_t)bits ? 0 : (int64_t)((ua & mask) >> ub);
    }
    default: return 0;
    }
}

static bool compare(enum binop op, int c) {
    switch (op) {
    case B_EQ: return c == 0;
    case B_LT: return c < 0;
    case B_LE: return c <= 0;
    case B_GT: return c > 0;
    case B_GE: return c >= 0;
    default: return false;
    }
}

static int fcmp(double a, double b) { return a < b ? -1 : a > b ? 1 : 0; }

static int string_cmp(const struct mixrt_string *a, const struct mixrt_string *b) {
    size_t m = a->len < b->len ? a->len : b->len;
    int c = m ? memcmp(a->ptr, b->ptr, m) : 0;
    if (c) return c < 0 ? -1 : 1;
    return a->len < b->len ? -1 : a->len > b->len;
}

static mixrt_status run_binary(struct mixrt_kernel_ctx *k, enum binop op) {
    mixrt_status status;
    struct binary p;
    double *fa = NULL, *fb = NULL;
    struct mixrt_tensor *out = NULL;
    if ((status = binary_prepare(k, &p)) != MIXRT_STATUS_OK) return status;
    const struct mixrt_tensor *a = p.a, *b = p.b;
    mixrt_dtype dt = a->dtype;
    bool is_cmp = op >= B_EQ, is_logic = op >= B_AND && op <= B_XOR;
    bool fmod_mode = mixrt_node_attr_int(k->node, "fmod", 0) != 0;

    /* dtype rules */
    if (op != B_POW && a->dtype != b->dtype) {
        status = mixrt_kernel_check_same_dtype(k, 0, 1);
        goto fail;
    }
    if (is_logic) {
        if (dt != MIXRT_DTYPE_BOOL) {
            status = bad_dtype(k, 0, a, "bool");
            goto fail;
        }
    } else if (op == B_SHL || op == B_SHR) {
        if (!is_unsigned(dt)) {
            status = bad_dtype(k, 0, a, "u8, u16, u32 or u64");
            goto fail;
        }
    } else if (op >= B_BITAND && op <= B_BITXOR) {
        if (!mixrt_dtype_is_int(dt)) {
            status = bad_dtype(k, 0, a, "an integer type");
            goto fail;
        }
    } else if (is_cmp) {
        bool ok = mixrt_dtype_is_float(dt) || mixrt_dtype_is_int(dt) || dt == MIXRT_DTYPE_BOOL ||
                  (op == B_EQ && dt == MIXRT_DTYPE_STRING);
        if (!ok) {
            status = bad_dtype(k, 0, a, "a numeric or bool type");
            goto fail;
        }
    } else {
        if (!mixrt_dtype_is_float(dt) && !mixrt_dtype_is_int(dt)) {
            status = bad_dtype(k, 0, a, "a float or integer type");
            goto fail;
        }
        if (op == B_POW && !mixrt_dtype_is_float(b->dtype) && !mixrt_dtype_is_int(b->dtype)) {
            status = bad_dtype(k, 1, b, "a float or integer type");
            goto fail;
        }
    }

    mixrt_dtype odt = (is_cmp || is_logic) ? MIXRT_DTYPE_BOOL : dt;
    if ((status = mixrt_kernel_output(k, 0, odt, p.rank, p.dims, &out)) != MIXRT_STATUS_OK) goto fail;
    uint8_t *ob = out->data;

    if (dt == MIXRT_DTYPE_STRING) {
        const struct mixrt_string *sa = a->data, *sb = b->data;
        for (size_t i = 0; i < p.n; i++) ob[i] = string_cmp(&sa[p.ia[i]], &sb[p.ib[i]]) == 0;
    } else if (is_logic) {
        const uint8_t *la = a->data, *lb = b->data;
        for (size_t i = 0; i < p.n; i++) {
            bool x = la[p.ia[i]] != 0, y = lb[p.ib[i]] != 0;
            ob[i] = op == B_AND ? (x && y) : op == B_OR ? (x || y) : (x != y);
        }
    } else if (mixrt_dtype_is_float(dt) || (op == B_POW && mixrt_dtype_is_float(b->dtype))) {
        /* float math; an integer base with a float exponent computes in double and truncates */
        if ((status = mixrt_tensor_to_f64(k->ctx, a, &fa)) != MIXRT_STATUS_OK) goto fail;
        if ((status = mixrt_tensor_to_f64(k->ctx, b, &fb)) != MIXRT_STATUS_OK) goto fail;
        for (size_t i = 0; i < p.n; i++) {
            double x = fa[p.ia[i]], y = fb[p.ib[i]];
            if (is_cmp) ob[i] = compare(op, fcmp(x, y)) && !isnan(x) && !isnan(y);
            else mixrt_store_f64(out->data, odt, i, float_binop(op, x, y, fmod_mode));
        }
    } else {
        bool u64 = dt == MIXRT_DTYPE_U64;
        int bits = int_bits(dt);
        for (size_t i = 0; i < p.n; i++) {
            int64_t x = mixrt_load_i64(a->data, a->dtype, p.ia[i]);
            int64_t y = mixrt_load_i64(b->data, b->dtype, p.ib[i]);
            if (is_cmp) ob[i] = compare(op, dt == MIXRT_DTYPE_BOOL ? icmp(x != 0, y != 0, false) : icmp(x, y, u64));
            else mixrt_store_i64(out->data, odt, i, int_binop(op, x, y, u64, bits, fmod_mode));
        }
    }
    status = MIXRT_STATUS_OK;
fail:
    free_f64(k->ctx, fa, a);
    free_f64(k->ctx, fb, b);
    binary_release(k, &p);
    return status;
}

#define BINARY_KERNEL(fn, op) \
    static mixrt_status fn(struct mixrt_kernel_ctx *k) { return run_binary(k, op); }
BINARY_KERNEL(run_add, B_ADD)
BINARY_KERNEL(run_sub, B_SUB)
BINARY_KERNEL(run_mul, B_MUL)
BINARY_KERNEL(run_div, B_DIV)
BINARY_KERNEL(run_mod, B_MOD)
BINARY_KERNEL(run_pow, B_POW)
BINARY_KERNEL(run_bitwise_and, B_BITAND)
BINARY_KERNEL(run_bitwise_or, B_BITOR)
BINARY_KERNEL(run_bitwise_xor, B_BITXOR)
BINARY_KERNEL(run_and, B_AND)
BINARY_KERNEL(run_or, B_OR)
BINARY_KERNEL(run_xor, B_XOR)
BINARY_KERNEL(run_equal, B_EQ)
BINARY_KERNEL(run_less, B_LT)
BINARY_KERNEL(run_less_equal, B_LE)
BINARY_KERNEL(run_greater, B_GT)
BINARY_KERNEL(run_greater_equal, B_GE)

static mixrt_status run_bitshift(struct mixrt_kernel_ctx *k) {
    const char *dir = mixrt_node_attr_string(k->node, "direction", "");
    if (!strcmp(dir, "LEFT")) return run_binary(k, B_SHL);
    if (!strcmp(dir, "RIGHT")) return run_binary(k, B_SHR);
    return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'direction' is '%s', expected LEFT or RIGHT",
                              dir);
}

/* ---- unary ------------------------------------------------------------------------- */

enum unop {
    U_ABS, U_NEG, U_EXP, U_LOG, U_SQRT, U_RECIP, U_FLOOR, U_CEIL, U_ROUND, U_SIGN,
    U_SIN, U_COS, U_TAN, U_ASIN, U_ACOS, U_ATAN, U_SINH, U_COSH, U_ASINH, U_ACOSH, U_ATANH, U_ERF,
    U_RELU, U_LEAKY, U_ELU, U_SELU, U_SIGMOID, U_HARDSIGMOID, U_HARDSWISH, U_SOFTPLUS, U_SOFTSIGN,
    U_TANH, U_THRESHRELU, U_CELU, U_GELU, U_GELU_TANH, U_MISH, U_SHRINK,
    U_NOT, U_BITNOT, U_ISNAN, U_ISINF,
};

struct unparams {
    double alpha, beta, gamma, lambd, bias;
    bool neg_inf, pos_inf;
};

static double softplus(double x) {
    /* log(1 + e^x) without overflow for large x */
    return x > 0 ? x + log1p(exp(-x)) : log1p(exp(x));
}

static double float_unop(enum unop op, double x, const struct unparams *q) {
    switch (op) {
    case U_ABS: return fabs(x);
    case U_NEG: return -x;
    case U_EXP: return exp(x);
    case U_LOG: return log(x);
    case U_SQRT: return sqrt(x);
    case U_RECIP: return 1.0 / x;
    case U_FLOOR: return floor(x);
    case U_CEIL: return ceil(x);
    case U_ROUND: return nearbyint(x); /* half to even under the default rounding mode */
    case U_SIGN: return isnan(x) ? x : x > 0 ? 1.0 : x < 0 ? -1.0 : 0.0;
    case U_SIN: return sin(x);
    case U_COS: return cos(x);
    case U_TAN: return tan(x);
    case U_ASIN: return asin(x);
    case U_ACOS: return acos(x);
    case U_ATAN: return atan(x);
    case U_SINH: return sinh(x);
    case U_COSH: return cosh(x);
    case U_ASINH: return asinh(x);
    case U_ACOSH: return acosh(x);
    case U_ATANH: return atanh(x);
    case U_ERF: return erf(x);
    case U_RELU: return x < 0 ? 0.0 : x;
    case U_LEAKY: return x < 0 ? q->alpha * x : x;
    case U_ELU: return x < 0 ? q->alpha * (exp(x) - 1.0) : x;
    case U_SELU: return x > 0 ? q->gamma * x : q->gamma * (q->alpha * exp(x) - q->alpha);
    case U_SIGMOID:
        /* both branches keep exp's argument <= 0 */
        return x >= 0 ? 1.0 / (1.0 + exp(-x)) : exp(x) / (1.0 + exp(x));
    case U_HARDSIGMOID: return fmax(0.0, fmin(1.0, q->alpha * x + q->beta));
    case U_HARDSWISH: return x * fmax(0.0, fmin(1.0, x / 6.0 + 0.5));
    case U_SOFTPLUS: return softplus(x);
    case U_SOFTSIGN: return x / (1.0 + fabs(x));
    case U_TANH: return tanh(x);
    case U_THRESHRELU: return x > q->alpha ? x : 0.0;
    case U_CELU: return fmax(0.0, x) + fmin(0.0, q->alpha * (exp(x / q->alpha) - 1.0));
    case U_GELU: return 0.5 * x * (1.0 + erf(x / sqrt(2.0)));
    case U_GELU_TANH: return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
    case U_MISH: return x * tanh(softplus(x));
    case U_SHRINK: return x < -q->lambd ? x + q->bias : x > q->lambd ? x - q->bias : 0.0;
    default: return x;
    }
}

/* Ops defined on integers, computed exactly in int64 (u64 via its bits). */
static int64_t int_unop(enum unop op, int64_t x, bool is_unsigned_type) {
    switch (op) {
    case U_ABS: return is_unsigned_type ? x : x < 0 ? (int64_t)(0 - (uint64_t)x) : x;
    case U_NEG: return (int64_t)(0 - (uint64_t)x);
    case U_SIGN: return is_unsigned_type ? x != 0 : (x > 0) - (x < 0);
    case U_RELU: return !is_unsigned_type && x < 0 ? 0 : x;
    case U_BITNOT: return ~x;
    default: return x;
    }
}

static mixrt_status run_unary(struct mixrt_kernel_ctx *k, enum unop op, const struct unparams *q) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *out = NULL;
    double *fx = NULL;
    if ((status = mixrt_kernel_input(k, 0, &x)) != MIXRT_STATUS_OK) return status;
    size_t n = mixrt_tensor_numel(x);
    mixrt_dtype dt = x->dtype;
    bool isf = mixrt_dtype_is_float(dt), isi = mixrt_dtype_is_int(dt);
    bool int_ok = op == U_ABS || op == U_NEG || op == U_SIGN || op == U_RELU || op == U_SHRINK || op == U_BITNOT;

    if (op == U_NOT) {
        if (dt != MIXRT_DTYPE_BOOL) return bad_dtype(k, 0, x, "bool");
        if ((status = mixrt_kernel_output(k, 0, dt, x->rank, x->dims, &out)) != MIXRT_STATUS_OK) return status;
        for (size_t i = 0; i < n; i++) ((uint8_t *)out->data)[i] = !((const uint8_t *)x->data)[i];
        return MIXRT_STATUS_OK;
    }
    if (op == U_BITNOT && !isi) return bad_dtype(k, 0, x, "an integer type");
    if (!isf && !(isi && int_ok)) return bad_dtype(k, 0, x, int_ok ? "a float or integer type" : "f32, f64, f16 or bf16");

    if (op == U_ISNAN || op == U_ISINF) {
        if ((status = mixrt_kernel_output(k, 0, MIXRT_DTYPE_BOOL, x->rank, x->dims, &out)) != MIXRT_STATUS_OK)
            return status;
        uint8_t *ob = out->data;
        for (size_t i = 0; i < n; i++) {
            double v = mixrt_load_f64(x->data, dt, i);
            ob[i] = op == U_ISNAN ? isnan(v) != 0 : isinf(v) && ((v > 0 && q->pos_inf) || (v < 0 && q->neg_inf));
        }
        return MIXRT_STATUS_OK;
    }
    if ((status = mixrt_kernel_output(k, 0, dt, x->rank, x->dims, &out)) != MIXRT_STATUS_OK) return status;
    if (isi && op != U_SHRINK) {
        bool uns = is_unsigned(dt);
        for (size_t i = 0; i < n; i++)
            mixrt_store_i64(out->data, dt, i, int_unop(op, mixrt_load_i64(x->data, dt, i), uns));
        return MIXRT_STATUS_OK;
    }
    if ((status = mixrt_tensor_to_f64(k->ctx, x, &fx)) != MIXRT_STATUS_OK) return status;
    for (size_t i = 0; i < n; i++) mixrt_store_f64(out->data, dt, i, float_unop(op, fx[i], q));
    free_f64(k->ctx, fx, x);
    return MIXRT_STATUS_OK;
}

#define UNARY_KERNEL(fn, op)                                                                                 \
    static mixrt_status fn(struct mixrt_kernel_ctx *k) {                                                    \
        struct unparams q = {0};                                                                            \
        return run_unary(k, op, &q);                                                                        \
    }
UNARY_KERNEL(run_abs, U_ABS)
UNARY_KERNEL(run_neg, U_NEG)
UNARY_KERNEL(run_exp, U_EXP)
UNARY_KERNEL(run_log, U_LOG)
UNARY_KERNEL(run_sqrt, U_SQRT)
UNARY_KERNEL(run_reciprocal, U_RECIP)
UNARY_KERNEL(run_floor, U_FLOOR)
UNARY_KERNEL(run_ceil, U_CEIL)
UNARY_KERNEL(run_round, U_ROUND)
UNARY_KERNEL(run_sign, U_SIGN)
UNARY_KERNEL(run_sin, U_SIN)
UNARY_KERNEL(run_cos, U_COS)
UNARY_KERNEL(run_tan, U_TAN)
UNARY_KERNEL(run_asin, U_ASIN)
UNARY_KERNEL(run_acos, U_ACOS)
UNARY_KERNEL(run_atan, U_ATAN)
UNARY_KERNEL(run_sinh, U_SINH)
UNARY_KERNEL(run_cosh, U_COSH)
UNARY_KERNEL(run_asinh, U_ASINH)
UNARY_KERNEL(run_acosh, U_ACOSH)
UNARY_KERNEL(run_atanh, U_ATANH)
UNARY_KERNEL(run_erf, U_ERF)
UNARY_KERNEL(run_relu, U_RELU)
UNARY_KERNEL(run_sigmoid, U_SIGMOID)
UNARY_KERNEL(run_hardswish, U_HARDSWISH)
UNARY_KERNEL(run_softplus, U_SOFTPLUS)
UNARY_KERNEL(run_softsign, U_SOFTSIGN)
UNARY_KERNEL(run_tanh, U_TANH)
UNARY_KERNEL(run_mish, U_MISH)
UNARY_KERNEL(run_not, U_NOT)
UNARY_KERNEL(run_bitwise_not, U_BITNOT)
UNARY_KERNEL(run_isnan, U_ISNAN)

/* Float attributes are float32 in ONNX; widening them keeps the value the model holds. */
static double fattr(struct mixrt_kernel_ctx *k, const char *name, float dflt) {
    return (double)mixrt_node_attr_float(k->node, name, dflt);
}

static mixrt_status run_leaky_relu(struct mixrt_kernel_ctx *k) {
    struct unparams q = {.alpha = fattr(k, "alpha", 0.01f)};
    return run_unary(k, U_LEAKY, &q);
}
static mixrt_status run_elu(struct mixrt_kernel_ctx *k) {
    struct unparams q = {.alpha = fattr(k, "alpha", 1.0f)};
    return run_unary(k, U_ELU, &q);
}
static mixrt_status run_selu(struct mixrt_kernel_ctx *k) {
    struct unparams q = {.alpha = fattr(k, "alpha", 1.67326319217681884765625f),
                         .gamma = fattr(k, "gamma", 1.05070102214813232421875f)};
    return run_unary(k, U_SELU, &q);
}
static mixrt_status run_hard_sigmoid(struct mixrt_kernel_ctx *k) {
    struct unparams q = {.alpha = fattr(k, "alpha", 0.2f), .beta = fattr(k, "beta", 0.5f)};
    return run_unary(k, U_HARDSIGMOID, &q);
}
static mixrt_status run_thresholded_relu(struct mixrt_kernel_ctx *k) {
    struct unparams q = {.alpha = fattr(k, "alpha", 1.0f)};
    return run_unary(k, U_THRESHRELU, &q);
}
static mixrt_status run_celu(struct mixrt_kernel_ctx *k) {
    struct unparams q = {.alpha = fattr(k, "alpha", 1.0f)};
    if (q.alpha == 0) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'alpha' must not be 0");
    return run_unary(k, U_CELU, &q);
}
static mixrt_status run_shrink(struct mixrt_kernel_ctx *k) {
    struct unparams q = {.lambd = fattr(k, "lambd", 0.5f), .bias = fattr(k, "bias", 0.0f)};
    return run_unary(k, U_SHRINK, &q);
}
static mixrt_status run_gelu(struct mixrt_kernel_ctx *k) {
    struct unparams q = {0};
    const char *approx = mixrt_node_attr_string(k->node, "approximate", "none");
    if (!strcmp(approx, "none")) return run_unary(k, U_GELU, &q);
    if (!strcmp(approx, "tanh")) return run_unary(k, U_GELU_TANH, &q);
    return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'approximate' is '%s', expected none or tanh",
                              approx);
}
static mixrt_status run_isinf(struct mixrt_kernel_ctx *k) {
    struct unparams q = {.neg_inf = mixrt_node_attr_int(k->node, "detect_negative", 1) != 0,
                         .pos_inf = mixrt_node_attr_int(k->node, "detect_positive", 1) != 0};
    return run_unary(k, U_ISINF, &q);
}

/* ---- Clip ---------------------------------------------------------------------------- */

/* Reads optional scalar bound input i (opset >= 11): absent or empty-named leaves *present false. */
static mixrt_status clip_bound(struct mixrt_kernel_ctx *k, int i, const struct mixrt_tensor *x, bool *present) {
    const struct mixrt_tensor *t = mixrt_kernel_opt_input(k, i);
    *present = false;
    if (!t) return MIXRT_STATUS_OK;
    char d[256];
    if (t->dtype != x->dtype) return mixrt_kernel_check_same_dtype(k, 0, i);
    if (mixrt_tensor_numel(t) != 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is %s, expected a scalar", i,
                                  in_name(k, i), mixrt_tensor_desc(d, sizeof(d), t));
    *present = true;
    return MIXRT_STATUS_OK;
}

static mixrt_status run_clip(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *out = NULL;
    if ((status = mixrt_kernel_input(k, 0, &x)) != MIXRT_STATUS_OK) return status;
    mixrt_dtype dt = x->dtype;
    size_t n = mixrt_tensor_numel(x);
    bool has_lo = false, has_hi = false;
    if (!mixrt_dtype_is_float(dt) && !(mixrt_dtype_is_int(dt) && k->opset >= 11))
        return bad_dtype(k, 0, x, k->opset >= 11 ? "a float or integer type" : "f32, f64, f16 or bf16");
    if (k->opset >= 11) {
        if ((status = clip_bound(k, 1, x, &has_lo)) != MIXRT_STATUS_OK) return status;
        if ((status = clip_bound(k, 2, x, &has_hi)) != MIXRT_STATUS_OK) return status;
    }
    if ((status = mixrt_kernel_output(k, 0, dt, x->rank, x->dims, &out)) != MIXRT_STATUS_OK) return status;
    if (mixrt_dtype_is_int(dt)) {
        bool u64 = dt == MIXRT_DTYPE_U64;
        int64_t lo = has_lo ? mixrt_load_i64(k->in[1]->data, dt, 0) : 0;
        int64_t hi = has_hi ? mixrt_load_i64(k->in[2]->data, dt, 0) : 0;
        for (size_t i = 0; i < n; i++) {
            int64_t v = mixrt_load_i64(x->data, dt, i);
            if (has_lo && icmp(v, lo, u64) < 0) v = lo;
            if (has_hi && icmp(v, hi, u64) > 0) v = hi;
            mixrt_store_i64(out->data, dt, i, v);
        }
        return MIXRT_STATUS_OK;
    }
    double lo = -INFINITY, hi = INFINITY;
    if (k->opset < 11) {
        lo = fattr(k, "min", -INFINITY);
        hi = fattr(k, "max", INFINITY);
    } else {
        if (has_lo) lo = mixrt_load_f64(k->in[1]->data, dt, 0);
        if (has_hi) hi = mixrt_load_f64(k->in[2]->data, dt, 0);
    }
    /* min > max gives max everywhere, as the spec says; NaN inputs pass through */
    for (size_t i = 0; i < n; i++) {
        double v = mixrt_load_f64(x->data, dt, i);
        if (v < lo) v = lo;
        if (v > hi) v = hi;
        mixrt_store_f64(out->data, dt, i, v);
    }
    return MIXRT_STATUS_OK;
}

/* ---- PRelu ----------------------------------------------------------------------------- */

static mixrt_status run_prelu(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL, *s = NULL;
    struct mixrt_tensor *out = NULL;
    size_t *is = NULL, n = 0;
    double *fx = NULL, *fs = NULL;
    if ((status = mixrt_kernel_input(k, 0, &x)) != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_kernel_input(k, 1, &s)) != MIXRT_STATUS_OK) return status;
    if (!mixrt_dtype_is_float(x->dtype) && !mixrt_dtype_is_int(x->dtype))
        return bad_dtype(k, 0, x, "a float or integer type");
    if ((status = mixrt_kernel_check_same_dtype(k, 0, 1)) != MIXRT_STATUS_OK) return status;
    n = mixrt_tensor_numel(x);

    /* slope's shape as seen from x: unidirectional numpy broadcast; before opset 7 also a
     * per-channel [C] slope along axis 1 (the Caffe2 form older exporters wrote) */
    int srank = s->rank;
    int64_t sdims[MIXRT_MAX_RANK];
    memcpy(sdims, s->dims, sizeof(sdims));
    int rb;
    int64_t db[MIXRT_MAX_RANK];
    bool uni = mixrt_broadcast_shape(x->rank, x->dims, s->rank, s->dims, &rb, db) && rb == x->rank &&
               !memcmp(db, x->dims, sizeof(int64_t) * (size_t)rb);
    if (!uni) {
        if (k->opset < 7 && x->rank >= 2 && mixrt_tensor_numel(s) == (size_t)x->dims[1]) {
            srank = x->rank;
            for (int i = 0; i < srank; i++) sdims[i] = i == 1 ? x->dims[1] : 1;
        } else if (k->opset < 7 && mixrt_tensor_numel(s) == 1) {
            srank = 0;
        } else {
            return shape_mismatch(k, 0, x, 1, s, "slope does not broadcast to X");
        }
    }
    if ((status = mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &out)) != MIXRT_STATUS_OK) return status;
    if ((status = bcast_index(k, srank, sdims, x->rank, x->dims, n, &is)) != MIXRT_STATUS_OK) return status;
    if (mixrt_dtype_is_int(x->dtype)) {
        bool uns = is_unsigned(x->dtype);
        for (size_t i = 0; i < n; i++) {
            int64_t v = mixrt_load_i64(x->data, x->dtype, i);
            if (!uns && v < 0) v = (int64_t)((uint64_t)v * (uint64_t)mixrt_load_i64(s->data, s->dtype, is[i]));
            mixrt_store_i64(out->data, x->dtype, i, v);
        }
    } else {
        if ((status = mixrt_tensor_to_f64(k->ctx, x, &fx)) != MIXRT_STATUS_OK) goto fail;
        if ((status = mixrt_tensor_to_f64(k->ctx, s, &fs)) != MIXRT_STATUS_OK) goto fail;
        for (size_t i = 0; i < n; i++) {
            double v = fx[i];
            mixrt_store_f64(out->data, x->dtype, i, v < 0 ? v * fs[is[i]] : v);
        }
    }
    status = MIXRT_STATUS_OK;
fail:
    free_f64(k->ctx, fx, x);
    free_f64(k->ctx, fs, s);
    free_index(k->ctx, is, n);
    return status;
}

/* ---- Where ---------------------------------------------------------------------------- */

static mixrt_status copy_string(mixrt_context_t ctx, struct mixrt_string *dst, const struct mixrt_string *src) {
    dst->ptr = mixrt_alloc(ctx, src->len + 1);
    if (!dst->ptr) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (src->len) memcpy(dst->ptr, src->ptr, src->len);
    dst->ptr[src->len] = 0;
    dst->len = src->len;
    return MIXRT_STATUS_OK;
}

static mixrt_status run_where(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *c = NULL, *x = NULL, *y = NULL;
    struct mixrt_tensor *out = NULL;
    size_t *ic = NULL, *ix = NULL, *iy = NULL, n = 0;
    int r1, r;
    int64_t d1[MIXRT_MAX_RANK], d[MIXRT_MAX_RANK];
    if ((status = mixrt_kernel_input(k, 0, &c)) != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_kernel_input(k, 1, &x)) != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_kernel_input(k, 2, &y)) != MIXRT_STATUS_OK) return status;
    if (c->dtype != MIXRT_DTYPE_BOOL) return bad_dtype(k, 0, c, "bool");
    if ((status = mixrt_kernel_check_same_dtype(k, 1, 2)) != MIXRT_STATUS_OK) return status;
    size_t es = mixrt_dtype_size(x->dtype);
    if (es == 0) return bad_dtype(k, 1, x, "a type with a byte size");
    if (!mixrt_broadcast_shape(c->rank, c->dims, x->rank, x->dims, &r1, d1))
        return shape_mismatch(k, 0, c, 1, x, "shapes do not broadcast");
    if (!mixrt_broadcast_shape(r1, d1, y->rank, y->dims, &r, d))
        return shape_mismatch(k, 1, x, 2, y, "shapes do not broadcast with the condition's");
    if ((status = mixrt_kernel_output(k, 0, x->dtype, r, d, &out)) != MIXRT_STATUS_OK) return status;
    n = mixrt_tensor_numel(out);
    if ((status = bcast_index(k, c->rank, c->dims, r, d, n, &ic)) != MIXRT_STATUS_OK) goto fail;
    if ((status = bcast_index(k, x->rank, x->dims, r, d, n, &ix)) != MIXRT_STATUS_OK) goto fail;
    if ((status = bcast_index(k, y->rank, y->dims, r, d, n, &iy)) != MIXRT_STATUS_OK) goto fail;
    const uint8_t *cb = c->data;
    for (size_t i = 0; i < n; i++) {
        const struct mixrt_tensor *src = cb[ic[i]] ? x : y;
        size_t j = cb[ic[i]] ? ix[i] : iy[i];
        if (x->dtype == MIXRT_DTYPE_STRING)
            MIXRT_TRY(copy_string(k->ctx, &((struct mixrt_string *)out->data)[i],
                                  &((const struct mixrt_string *)src->data)[j]));
        else
            memcpy((char *)out->data + i * es, (const char *)src->data + j * es, es);
    }
    status = MIXRT_STATUS_OK;
fail:
    free_index(k->ctx, ic, n);
    free_index(k->ctx, ix, n);
    free_index(k->ctx, iy, n);
    return status;
}

/* ---- variadic Max / Min / Sum / Mean ---------------------------------------------------- */

enum varop { V_MAX, V_MIN, V_SUM, V_MEAN };

static mixrt_status run_variadic(struct mixrt_kernel_ctx *k, enum varop op) {
    mixrt_status status;
    struct mixrt_tensor *out = NULL;
    const struct mixrt_tensor *first = NULL;
    size_t *idx = NULL, n = 0;
    double *facc = NULL;
    int64_t *iacc = NULL;
    int r = 0;
    int64_t d[MIXRT_MAX_RANK];
    if (k->n_in < 1) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "needs at least one input");
    if ((status = mixrt_kernel_input(k, 0, &first)) != MIXRT_STATUS_OK) return status;
    mixrt_dtype dt = first->dtype;
    bool isint = mixrt_dtype_is_int(dt);
    if (!mixrt_dtype_is_float(dt) && !isint) return bad_dtype(k, 0, first, "a float or integer type");
    r = first->rank;
    memcpy(d, first->dims, sizeof(d));
    for (int i = 1; i < k->n_in; i++) {
        const struct mixrt_tensor *t = NULL;
        if ((status = mixrt_kernel_input(k, i, &t)) != MIXRT_STATUS_OK) return status;
        if ((status = mixrt_kernel_check_same_dtype(k, 0, i)) != MIXRT_STATUS_OK) return status;
        /* opset < 8: no broadcasting, every input has the same shape */
        if (k->opset < 8 && !same_shape(first, t))
            return shape_mismatch(k, 0, first, i, t, "shapes must be equal before opset 8");
        int64_t prev[MIXRT_MAX_RANK]; /* mixrt_broadcast_shape may not write over its input */
        memcpy(prev, d, sizeof(prev));
        if (!mixrt_broadcast_shape(r, prev, t->rank, t->dims, &r, d))
            return shape_mismatch(k, 0, first, i, t, "shapes do not broadcast");
    }
    if ((status = mixrt_kernel_output(k, 0, dt, r, d, &out)) != MIXRT_STATUS_OK) return status;
    n = mixrt_tensor_numel(out);
    if (isint) iacc = mixrt_calloc(k->ctx, n ? n : 1, sizeof(int64_t));
    else facc = mixrt_calloc(k->ctx, n ? n : 1, sizeof(double));
    if (!iacc && !facc) return MIXRT_STATUS_OUT_OF_MEMORY;
    bool u64 = dt == MIXRT_DTYPE_U64;
    for (int i = 0; i < k->n_in; i++) {
        const struct mixrt_tensor *t = k->in[i];
        MIXRT_TRY(bcast_index(k, t->rank, t->dims, r, d, n, &idx));
        for (size_t j = 0; j < n; j++) {
            if (isint) {
                int64_t v = mixrt_load_i64(t->data, dt, idx[j]);
                int64_t *a = &iacc[j];
                if (i == 0) *a = v;
                else if (op == V_MAX) *a = icmp(v, *a, u64) > 0 ? v : *a;
                else if (op == V_MIN) *a = icmp(v, *a, u64) < 0 ? v : *a;
                else *a = (int64_t)((uint64_t)*a + (uint64_t)v);
            } else {
                double v = mixrt_load_f64(t->data, dt, idx[j]);
                double *a = &facc[j];
                if (i == 0) *a = v;
                else if (op == V_MAX) *a = (v > *a || isnan(v)) ? v : *a; /* NaN propagates */
                else if (op == V_MIN) *a = (v < *a || isnan(v)) ? v : *a;
                else *a += v;
            }
        }
        free_index(k->ctx, idx, n);
        idx = NULL;
    }
    for (size_t j = 0; j < n; j++) {
        if (isint) {
            int64_t v = iacc[j];
            if (op == V_MEAN) v = u64 ? (int64_t)((uint64_t)v / (uint64_t)k->n_in) : v / k->n_in;
            mixrt_store_i64(out->data, dt, j, v);
        } else {
            mixrt_store_f64(out->data, dt, j, op == V_MEAN ? facc[j] / k->n_in : facc[j]);
        }
    }
    status = MIXRT_STATUS_OK;
fail:
    free_index(k->ctx, idx, n);
    if (iacc) mixrt_free(k->ctx, iacc, (n ? n : 1) * sizeof(int64_t));
    if (facc) mixrt_free(k->ctx, facc, (n ? n : 1) * sizeof(double));
    return status;
}

static mixrt_status run_max(struct mixrt_kernel_ctx *k) { return run_variadic(k, V_MAX); }
static mixrt_status run_min(struct mixrt_kernel_ctx *k) { return run_variadic(k, V_MIN); }
static mixrt_status run_sum(struct mixrt_kernel_ctx *k) { return run_variadic(k, V_SUM); }
static mixrt_status run_mean(struct mixrt_kernel_ctx *k) { return run_variadic(k, V_MEAN); }

/* ---- Cast / CastLike -------------------------------------------------------------------- */

/* Shortest decimal that reads back to the same value in dtype (numpy's repr style). */
static int format_float(char *buf, size_t size, double v, mixrt_dtype dt) {
    if (isnan(v)) return snprintf(buf, size, "NaN");
    if (isinf(v)) return snprintf(buf, size, v < 0 ? "-INF" : "INF");
    int len = 0;
    for (int prec = 1; prec <= 17; prec++) {
        len = snprintf(buf, size, "%.*g", prec, v);
        double back = strtod(buf, NULL);
        bool same;
        switch (dt) {
        case MIXRT_DTYPE_F32: same = (float)back == (float)v; break;
        case MIXRT_DTYPE_F16: same = mixrt_f16_from_double(back).bits == mixrt_f16_from_double(v).bits; break;
        case MIXRT_DTYPE_BF16: same = mixrt_bf16_from_double(back).bits == mixrt_bf16_from_double(v).bits; break;
        default: same = back == v; break;
        }
        if (same) break;
    }
    return len;
}

static mixrt_status cast_to_string(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x,
                                   struct mixrt_tensor *out) {
    struct mixrt_string *s = out->data;
    size_t n = mixrt_tensor_numel(x);
    char buf[64];
    for (size_t i = 0; i < n; i++) {
        int len;
        if (mixrt_dtype_is_float(x->dtype)) len = format_float(buf, sizeof(buf), mixrt_load_f64(x->data, x->dtype, i), x->dtype);
        else if (x->dtype == MIXRT_DTYPE_U64)
            len = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)((const uint64_t *)x->data)[i]);
        else len = snprintf(buf, sizeof(buf), "%lld", (long long)mixrt_load_i64(x->data, x->dtype, i));
        struct mixrt_string tmp = {buf, (size_t)len};
        mixrt_status status = copy_string(k->ctx, &s[i], &tmp);
        if (status != MIXRT_STATUS_OK) return status;
    }
    return MIXRT_STATUS_OK;
}

static mixrt_status cast_from_string(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x,
                                     struct mixrt_tensor *out) {
    const struct mixrt_string *s = x->data;
    size_t n = mixrt_tensor_numel(x);
    char buf[128];
    for (size_t i = 0; i < n; i++) {
        /* numbers longer than any plain literal are refused rather than parsed in part */
        if (s[i].len >= sizeof(buf))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT,
                                      "input #0 '%s' element %zu is a %zu-byte string, too long for a number",
                                      in_name(k, 0), i, s[i].len);
        size_t len = s[i].len;
        if (len) memcpy(buf, s[i].ptr, len);
        buf[len] = 0;
        char *end = NULL;
        if (mixrt_dtype_is_float(out->dtype)) {
            double v = out->dtype == MIXRT_DTYPE_F32 ? (double)strtof(buf, &end) : strtod(buf, &end);
            if (end != buf + len || len == 0) goto bad;
            mixrt_store_f64(out->data, out->dtype, i, v);
        } else if (out->dtype == MIXRT_DTYPE_U64) {
            unsigned long long v = strtoull(buf, &end, 10);
            if (end != buf + len || len == 0) goto bad;
            ((uint64_t *)out->data)[i] = v;
        } else {
            long long v = strtoll(buf, &end, 10);
            if (end == buf + len && len) {
                mixrt_store_i64(out->data, out->dtype, i, v);
                continue;
            }
            double f = strtod(buf, &end); /* "1.5" or "1e3" into an integer type truncates */
            if (end != buf + len || len == 0) goto bad;
            mixrt_store_f64(out->data, out->dtype, i, f);
        }
        continue;
    bad:
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_ARGUMENT,
                                  "input #0 '%s' element %zu \"%.*s\" is not a %s number", in_name(k, 0), i,
                                  (int)len, buf, mixrt_dtype_name(out->dtype));
    }
    return MIXRT_STATUS_OK;
}

static mixrt_status cast_run(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x, int64_t to_raw) {
    mixrt_status status;
    struct mixrt_tensor *out = NULL;
    char d[256];
    if (to_raw <= 0 || to_raw >= MIXRT_DTYPE_COUNT)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "target type %lld is not an ONNX tensor type",
                                  (long long)to_raw);
    mixrt_dtype to = (mixrt_dtype)to_raw;
    bool num_in = mixrt_dtype_is_float(x->dtype) || mixrt_dtype_is_int(x->dtype) || x->dtype == MIXRT_DTYPE_BOOL;
    bool num_out = mixrt_dtype_is_float(to) || mixrt_dtype_is_int(to) || to == MIXRT_DTYPE_BOOL;
    if ((!num_in && x->dtype != MIXRT_DTYPE_STRING) || (!num_out && to != MIXRT_DTYPE_STRING) ||
        (x->dtype == MIXRT_DTYPE_STRING && to == MIXRT_DTYPE_BOOL) ||
        (x->dtype == MIXRT_DTYPE_BOOL && to == MIXRT_DTYPE_STRING))
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot cast input #0 '%s' (%s) to %s",
                                  in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), x), mixrt_dtype_name(to));
    if ((status = mixrt_kernel_output(k, 0, to, x->rank, x->dims, &out)) != MIXRT_STATUS_OK) return status;
    size_t n = mixrt_tensor_numel(x);
    if (x->dtype == MIXRT_DTYPE_STRING && to == MIXRT_DTYPE_STRING) {
        for (size_t i = 0; i < n; i++)
            if ((status = copy_string(k->ctx, &((struct mixrt_string *)out->data)[i],
                                      &((const struct mixrt_string *)x->data)[i])) != MIXRT_STATUS_OK)
                return status;
        return MIXRT_STATUS_OK;
    }
    if (to == MIXRT_DTYPE_STRING) return cast_to_string(k, x, out);
    if (x->dtype == MIXRT_DTYPE_STRING) return cast_from_string(k, x, out);
    if ((x->dtype == MIXRT_DTYPE_I64 || x->dtype == MIXRT_DTYPE_U64) && to == MIXRT_DTYPE_F32) {
        /* straight to float: going through double would round twice */
        for (size_t i = 0; i < n; i++)
            ((float *)out->data)[i] = x->dtype == MIXRT_DTYPE_I64 ? (float)((const int64_t *)x->data)[i]
                                                                  : (float)((const uint64_t *)x->data)[i];
        return MIXRT_STATUS_OK;
    }
    if (n && mixrt_convert(out->data, to, x->data, x->dtype, n) != MIXRT_STATUS_OK)
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot cast input #0 '%s' (%s) to %s",
                                  in_name(k, 0), mixrt_tensor_desc(d, sizeof(d), x), mixrt_dtype_name(to));
    return MIXRT_STATUS_OK;
}

static mixrt_status run_cast(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = NULL;
    mixrt_status status = mixrt_kernel_input(k, 0, &x);
    if (status != MIXRT_STATUS_OK) return status;
    if (!mixrt_node_attr(k->node, "to"))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "required attribute 'to' is missing");
    /* `saturate` (opset 19) only affects float8 targets, which are refused above */
    return cast_run(k, x, mixrt_node_attr_int(k->node, "to", 0));
}

static mixrt_status run_cast_like(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = NULL, *like = NULL;
    mixrt_status status = mixrt_kernel_input(k, 0, &x);
    if (status == MIXRT_STATUS_OK) status = mixrt_kernel_input(k, 1, &like);
    if (status != MIXRT_STATUS_OK) return status;
    return cast_run(k, x, like->dtype);
}

const struct mixrt_op_def mixrt_ref_ops_elementwise[] = {
    {"", "Abs", 1, 23, run_abs},
    {"", "Neg", 1, 23, run_neg},
    {"", "Exp", 1, 23, run_exp},
    {"", "Log", 1, 23, run_log},
    {"", "Sqrt", 1, 23, run_sqrt},
    {"", "Reciprocal", 1, 23, run_reciprocal},
    {"", "Floor", 1, 23, run_floor},
    {"", "Ceil", 1, 23, run_ceil},
    {"", "Round", 11, 23, run_round},
    {"", "Sign", 9, 23, run_sign},
    {"", "Sin", 7, 23, run_sin},
    {"", "Cos", 7, 23, run_cos},
    {"", "Tan", 7, 23, run_tan},
    {"", "Asin", 7, 23, run_asin},
    {"", "Acos", 7, 23, run_acos},
    {"", "Atan", 7, 23, run_atan},
    {"", "Sinh", 9, 23, run_sinh},
    {"", "Cosh", 9, 23, run_cosh},
    {"", "Asinh", 9, 23, run_asinh},
    {"", "Acosh", 9, 23, run_acosh},
    {"", "Atanh", 9, 23, run_atanh},
    {"", "Erf", 9, 23, run_erf},
    {"", "Not", 1, 23, run_not},
    {"", "IsNaN", 9, 23, run_isnan},
    {"", "IsInf", 10, 23, run_isinf},
    {"", "BitwiseNot", 18, 23, run_bitwise_not},
    {"", "Relu", 1, 23, run_relu},
    {"", "LeakyRelu", 1, 23, run_leaky_relu},
    {"", "PRelu", 1, 23, run_prelu},
    {"", "Elu", 1, 23, run_elu},
    {"", "Selu", 1, 23, run_selu},
    {"", "Sigmoid", 1, 23, run_sigmoid},
    {"", "HardSigmoid", 1, 23, run_hard_sigmoid},
    {"", "HardSwish", 14, 23, run_hardswish},
    {"", "Softplus", 1, 23, run_softplus},
    {"", "Softsign", 1, 23, run_softsign},
    {"", "Tanh", 1, 23, run_tanh},
    {"", "ThresholdedRelu", 10, 23, run_thresholded_relu},
    {"", "Celu", 12, 23, run_celu},
    {"", "Gelu", 20, 23, run_gelu},
    {"", "Mish", 18, 23, run_mish},
    {"", "Shrink", 9, 23, run_shrink},
    {"", "Clip", 1, 23, run_clip},
    {"", "Add", 1, 23, run_add},
    {"", "Sub", 1, 23, run_sub},
    {"", "Mul", 1, 23, run_mul},
    {"", "Div", 1, 23, run_div},
    {"", "Pow", 1, 23, run_pow},
    {"", "Mod", 10, 23, run_mod},
    {"", "BitShift", 11, 23, run_bitshift},
    {"", "BitwiseAnd", 18, 23, run_bitwise_and},
    {"", "BitwiseOr", 18, 23, run_bitwise_or},
    {"", "BitwiseXor", 18, 23, run_bitwise_xor},
    {"", "And", 1, 23, run_and},
    {"", "Or", 1, 23, run_or},
    {"", "Xor", 1, 23, run_xor},
    {"", "Equal", 1, 23, run_equal},
    {"", "Less", 1, 23, run_less},
    {"", "LessOrEqual", 12, 23, run_less_equal},
    {"", "Greater", 1, 23, run_greater},
    {"", "GreaterOrEqual", 12, 23, run_greater_equal},
    {"", "Where", 9, 23, run_where},
    {"", "Max", 1, 23, run_max},
    {"", "Min", 1, 23, run_min},
    {"", "Sum", 1, 23, run_sum},
    {"", "Mean", 1, 23, run_mean},
    {"", "Cast", 1, 23, run_cast},
    {"", "CastLike", 15, 23, run_cast_like},
    {NULL, NULL, 0, 0, NULL},
};
