/* eltwise.c - fast element-wise kernel candidates (f32 and bf16): numpy-broadcast binary
 * arithmetic, activations and math, Pow by 2 or 0.5, Cast among f32/bf16/f16, Identity.
 * Invariant: values compute in f32 (bf16 widened exactly, rounded once to bf16 on output);
 * broadcasting is reduced to contiguous or one-value spans run by the AVX-512 code or its
 * scalar twin here, which evaluate the same formulas (eltwise_impl.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/kernels.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- scalar twins ------------------------------------------------------------------------ */

/* a*b + c rounded once from double: the product is exact in double, so this is the fused
 * result except in rare double-rounding ties (1 ulp), and unlike fmaf it needs no libm call
 * on CPUs without FMA, where the scalar twins run. Exact whenever a*b + c fits 53 bits, as
 * for the t*t - fl(t*t) error term. */
static inline float s_fma(float a, float b, float c) { return (float)((double)a * (double)b + (double)c); }

static float s_poly(const float *c, int n, float x) {
    float p = c[n - 1];
    for (int i = n - 2; i >= 0; i--) p = s_fma(p, x, c[i]);
    return p;
}

static float s_nanfix(float r, float x) { return isnan(x) ? x + x : r; }

/* 2^n for n in [-126, 127], from its bits. */
static inline float s_pow2(int n) {
    uint32_t bits = (uint32_t)(n + 127) << 23;
    float f;
    memcpy(&f, &bits, sizeof(f));
    return f;
}

static float s_exp_raw(float x) {
    float xc = fminf(fmaxf(x, ELT_EXP_LO), ELT_EXP_HI);
    /* round to nearest even by the 1.5*2^23 trick (|x*log2e| < 2^22): no libm call */
    float n = (xc * ELT_LOG2E + 12582912.0f) - 12582912.0f;
    float r = s_fma(-n, ELT_LN2_HI, xc);
    r = s_fma(-n, ELT_LN2_LO, r);
    /* p * 2^n as two exact power-of-two factors (each a normal float for n in [-150, 128]):
     * the first product is exact, the second rounds once, also into subnormals or to Inf,
     * as scalef does; no ldexpf call */
    int ni = (int)n, n1 = ni / 2, n2 = ni - n1;
    return (s_poly(ELT_EXP_P, 8, r) * s_pow2(n1)) * s_pow2(n2);
}

static float s_exp_neg_sq(float t, float scale) {
    float t2 = t * t;
    float e = s_fma(t, t, -t2);
    return s_exp_raw(scale * (0.0f - t2)) * s_fma(-scale, e, 1.0f);
}

static float s_tail(float t) {
    float v = 1.0f / t;
    return s_poly(t >= ELT_TAIL_SPLIT ? ELT_TAIL_P1 : ELT_TAIL_P0, 9, v) * v;
}

static float s_erf(float x) {
    float a = fabsf(x), r;
    if (a < 1.0f) {
        r = x * s_poly(ELT_ERF_P, 7, x * x);
    } else {
        float ac = fminf(a, 6.0f);
        float q = s_exp_neg_sq(ac, 1.0f) * s_tail(ac * ELT_SQRT2);
        r = copysignf(1.0f - q, x);
    }
    return s_nanfix(r, x);
}

static float s_tanh(float x) {
    float a = fabsf(x), r;
    if (a < 0.55f) {
        r = x * s_poly(ELT_TANH_P, 6, x * x);
    } else {
        float e = s_exp_raw(fminf(a, 10.0f) * 2.0f);
        r = copysignf(1.0f - 2.0f / (e + 1.0f), x);
    }
    return s_nanfix(r, x);
}

static float s_sigmoid(float x) {
    float e = s_exp_raw(0.0f - fabsf(x));
    float d = 1.0f + e;
    return s_nanfix((x < 0.0f ? e : 1.0f) / d, x);
}

static float s_gelu(float x) {
    float a = fabsf(x), phi;
    if (a < ELT_SQRT2) {
        float z = x * ELT_SQRT1_2;
        float erfv = z * s_poly(ELT_ERF_P, 7, z * z);
        phi = s_fma(0.5f, erfv, 0.5f);
    } else {
        float t = fminf(a, 15.0f);
        float q = (0.5f * s_exp_neg_sq(t, 0.5f)) * s_tail(t);
        phi = x < 0.0f ? q : 1.0f - q;
    }
    return s_nanfix(x * phi, x);
}

static float s_gelu_tanh(float x) {
    float k = ELT_GELU_K, c2 = 2.0f * ELT_GELU_C;
    float xc = fminf(fmaxf(x, -12.0f), 12.0f);
    float x2 = xc * xc, x2e = s_fma(xc, xc, -x2);
    float w = s_fma(k, x2, 1.0f);
    float we = s_fma(k, x2e, s_fma(k, x2, 1.0f - w));
    float v = xc * w, ve = s_fma(xc, we, s_fma(xc, w, -v));
    float y = c2 * v, ye = s_fma(c2, ve, s_fma(c2, v, -y));
    float sye = y < 0.0f || (y == 0.0f && signbit(y)) ? -ye : ye;
    float e = s_exp_raw(0.0f - fabsf(y));
    e = s_fma(-e, sye, e);
    float sig = (y < 0.0f ? e : 1.0f) / (1.0f + e);
    return s_nanfix(x * sig, x);
}

static float s_softplus(float x) {
    float e = s_exp_raw(0.0f - fabsf(x));
    float s = e / (2.0f + e);
    float lp = (s + s) * s_poly(ELT_LOG1P_P, 9, s * s);
    return s_nanfix((x > 0.0f ? x : 0.0f) + lp, x);
}

/* x tanh(log(1 + u)) with u = e^x is x n / (n + 2), n = u (u + 2): no cancellation for
 * x << 0 (n ~ 2u), and the ratio is 1 in f32 from x = 20 on (u clamped there). Below -20 the
 * ratio is u to f32 precision, and x e^x is taken as (x e^(x + 40)) e^-40, so that a
 * subnormal result is rounded once (u itself would be subnormal, with few bits, below -87). */
#define ELT_EXP_M40 4.2483542552915889e-18f /* e^-40 */
static float s_mish(float x) {
    if (x < -20.0f) return (x * s_exp_raw(x + 40.0f)) * ELT_EXP_M40;
    float u = s_exp_raw(fminf(x, 20.0f));
    float n = u * (u + 2.0f);
    return s_nanfix(x * (n / (n + 2.0f)), x);
}

/* log x = e ln2 + log m with x = m 2^e, m in [sqrt(1/2), sqrt(2)), and log m = 2 atanh(s),
 * s = (m - 1)/(m + 1) (|s| < 0.172; the log1p series of Softplus); subnormals scaled by 2^23
 * first. ln2 in two parts, so e ln2 adds no rounding of its own. */
static float s_log(float x) {
    if (!(x > 0.0f) || x == INFINITY) return x == 0.0f ? -INFINITY : x == INFINITY ? x : x != x ? x + x : NAN;
    int e = 0;
    if (x < 1.17549435e-38f) x *= 8388608.0f, e = -23;
    uint32_t b;
    memcpy(&b, &x, sizeof(b));
    e += (int)(b >> 23) - 127;
    b = (b & 0x7fffffu) | 0x3f800000u;
    float m;
    memcpy(&m, &b, sizeof(m));
    if (m > 1.41421356f) m *= 0.5f, e += 1;
    float s = (m - 1.0f) / (m + 1.0f);
    float lm = (s + s) * s_poly(ELT_LOG1P_P, 9, s * s);
    return s_fma((float)e, ELT_LN2_HI, s_fma((float)e, ELT_LN2_LO, lm));
}

static inline float s_unary(enum mixrt_elt_op op, const struct mixrt_elt_params *p, float x) {
    switch (op) {
    case ELT_RELU: return x < 0.0f ? 0.0f : x;
    case ELT_LEAKY: return x < 0.0f ? x * p->alpha : x;
    case ELT_SIGMOID: return s_sigmoid(x);
    case ELT_TANH: return s_tanh(x);
    case ELT_ERF: return s_erf(x);
    case ELT_EXP: return s_nanfix(s_exp_raw(x), x);
    case ELT_SQRT: return sqrtf(x);
    case ELT_RECIP: return 1.0f / x;
    case ELT_NEG: return -x;
    case ELT_ABS: return fabsf(x);
    case ELT_CLIP: {
        float r = x < p->lo ? p->lo : x;
        return r > p->hi ? p->hi : r;
    }
    case ELT_HARDSIGMOID: {
        float v = s_fma(p->alpha, x, p->beta);
        v = v < 1.0f ? v : 1.0f; /* 1 for NaN, as the reference's fmin(1, v) */
        return v > 0.0f ? v : 0.0f;
    }
    case ELT_HARDSWISH: {
        float v = (x + 3.0f) * (1.0f / 6.0f); /* x/6 + 0.5 would cancel near -3 */
        v = v < 1.0f ? v : 1.0f;
        return x * (v > 0.0f ? v : 0.0f);
    }
    case ELT_GELU: return s_gelu(x);
    case ELT_GELU_TANH: return s_gelu_tanh(x);
    case ELT_SOFTPLUS: return s_softplus(x);
    case ELT_MISH: return s_mish(x);
    case ELT_LOG: return s_log(x);
    case ELT_SQUARE: return x * x;
    case ELT_POW_HALF: return x == -INFINITY ? INFINITY : sqrtf(x + 0.0f);
    default: return x;
    }
}

void mixrt_elt_unary_scalar(enum mixrt_elt_op op, const struct mixrt_elt_params *p, const float *x, float *y,
                            size_t n) {
    /* one loop per op, so the op's switch is resolved outside the loop */
    switch (op) {
#define UCASE(OP)                                                                                                      \
    case OP:                                                                                                           \
        for (size_t i = 0; i < n; i++) y[i] = s_unary(OP, p, x[i]);                                                    \
        break;
        UCASE(ELT_RELU) UCASE(ELT_LEAKY) UCASE(ELT_SIGMOID) UCASE(ELT_TANH) UCASE(ELT_ERF) UCASE(ELT_EXP)
        UCASE(ELT_SQRT) UCASE(ELT_RECIP) UCASE(ELT_NEG) UCASE(ELT_ABS) UCASE(ELT_CLIP) UCASE(ELT_HARDSIGMOID)
        UCASE(ELT_HARDSWISH) UCASE(ELT_GELU) UCASE(ELT_GELU_TANH) UCASE(ELT_SOFTPLUS) UCASE(ELT_SQUARE)
        UCASE(ELT_POW_HALF) UCASE(ELT_MISH) UCASE(ELT_LOG)
#undef UCASE
    default:
        if (y != x) memmove(y, x, n * sizeof(float));
        break;
    }
}

static inline float s_binary(enum mixrt_elt_op op, float a, float b) {
    switch (op) {
    case ELT_ADD: return a + b;
    case ELT_SUB: return a - b;
    case ELT_MUL: return a * b;
    case ELT_DIV: return a / b;
    case ELT_MAX: return (b > a || isnan(b)) ? b : a;
    case ELT_MIN: return (b < a || isnan(b)) ? b : a;
    default: return a;
    }
}

void mixrt_elt_binary_scalar(enum mixrt_elt_op op, const float *a, int sa, const float *b, int sb, float *y, size_t n) {
    switch (op) {
#define BCASE(OP)                                                                                                      \
    case OP:                                                                                                           \
        if (sa && sb) for (size_t i = 0; i < n; i++) y[i] = s_binary(OP, a[i], b[i]);                                  \
        else if (sa) for (size_t i = 0; i < n; i++) y[i] = s_binary(OP, a[i], b[0]);                                   \
        else if (sb) for (size_t i = 0; i < n; i++) y[i] = s_binary(OP, a[0], b[i]);                                   \
        else for (size_t i = 0; i < n; i++) y[i] = s_binary(OP, a[0], b[0]);                                           \
        break;
        BCASE(ELT_ADD) BCASE(ELT_SUB) BCASE(ELT_MUL) BCASE(ELT_DIV) BCASE(ELT_MAX) BCASE(ELT_MIN)
#undef BCASE
    default:
        for (size_t i = 0; i < n; i++) y[i] = s_binary(op, a[sa ? i : 0], b[sb ? i : 0]);
        break;
    }
}

/* ---- dispatch ------------------------------------------------------------------------------ */

static bool forced_scalar, forced_avx2;

void mixrt_elt_force_scalar(bool on) { forced_scalar = on; }
void mixrt_elt_force_avx2(bool on) { forced_avx2 = on; }

/* MIXRT_ELTWISE_ISA=scalar, read once: the dispatch runs per span, and getenv scans the
 * environment (~80 ns a span call, two reads: a 1x1 conv applying ReLU6 row by row, 96
 * columns a row, spent 4x its product's time there). */
static bool env_scalar(void) {
    static int cached = -1;
    int c = __atomic_load_n(&cached, __ATOMIC_RELAXED);
    if (c < 0) {
        const char *e = getenv("MIXRT_ELTWISE_ISA");
        c = e && !strcmp(e, "scalar");
        __atomic_store_n(&cached, c, __ATOMIC_RELAXED);
    }
    return c != 0;
}

bool mixrt_elt_has_avx512(void) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    return f->avx512f && f->avx512dq && f->avx512bw && f->avx512vl && !forced_scalar && !env_scalar();
#else
    return false;
#endif
}

bool mixrt_elt_has_avx2(void) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    return f->avx2 && f->fma && !forced_scalar && !env_scalar();
#else
    return false;
#endif
}

const char *mixrt_elt_isa(void) {
    return mixrt_elt_has_avx512() && !forced_avx2 ? "avx512" : mixrt_elt_has_avx2() ? "avx2" : "scalar";
}

mixrt_elt_unary_fn mixrt_elt_unary_isa(void) {
#if defined(__x86_64__)
    if (mixrt_elt_has_avx512() && !forced_avx2) return mixrt_elt_unary_avx512;
    if (mixrt_elt_has_avx2()) return mixrt_elt_unary_avx2;
#endif
    return mixrt_elt_unary_scalar;
}

mixrt_elt_binary_fn mixrt_elt_binary_isa(void) {
#if defined(__x86_64__)
    if (mixrt_elt_has_avx512() && !forced_avx2) return mixrt_elt_binary_avx512;
    if (mixrt_elt_has_avx2()) return mixrt_elt_binary_avx2;
#endif
    return mixrt_elt_binary_scalar;
}

static mixrt_elt_unary_fn unary_fn(void) { return mixrt_elt_unary_isa(); }
static mixrt_elt_binary_fn binary_fn(void) { return mixrt_elt_binary_isa(); }

void mixrt_elt_fconv_act(enum mixrt_fconv_act act, float p0, float p1, float *v, size_t n) {
    const mixrt_elt_unary_fn un = unary_fn();
    struct mixrt_elt_params p = {0.0f, 0.0f, 0.0f, 0.0f};
    switch (act) {
    case MIXRT_FCONV_RELU: un(ELT_RELU, &p, v, v, n); break;
    case MIXRT_FCONV_CLIP:
        p.lo = p0, p.hi = p1;
        un(ELT_CLIP, &p, v, v, n);
        break;
    case MIXRT_FCONV_LEAKY_RELU:
        p.alpha = p0;
        un(ELT_LEAKY, &p, v, v, n);
        break;
    case MIXRT_FCONV_SIGMOID: un(ELT_SIGMOID, &p, v, v, n); break;
    case MIXRT_FCONV_HARD_SWISH: un(ELT_HARDSWISH, &p, v, v, n); break;
    case MIXRT_FCONV_TANH: un(ELT_TANH, &p, v, v, n); break;
    case MIXRT_FCONV_GELU: un(ELT_GELU, &p, v, v, n); break;
    case MIXRT_FCONV_GELU_TANH: un(ELT_GELU_TANH, &p, v, v, n); break;
    case MIXRT_FCONV_SILU: {
        float sg[256];
        for (size_t i = 0; i < n; i += 256) {
            size_t m = n - i < 256 ? n - i : 256;
            un(ELT_SIGMOID, &p, v + i, sg, m);
            for (size_t j = 0; j < m; j++) v[i + j] *= sg[j];
        }
        break;
    }
    default: break;
    }
}

void mixrt_elt_silu_to_bf16(const float *x, mixrt_bf16 *y, size_t n) {
    enum { CHUNK = 2048 };
    const bool vec = mixrt_elt_has_avx512();
    const int64_t chunks = (int64_t)((n + CHUNK - 1) / CHUNK);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (chunks > 1)
#endif
    for (int64_t c = 0; c < chunks; c++) {
        float t[CHUNK];
        const size_t i0 = (size_t)c * CHUNK, m = n - i0 < CHUNK ? n - i0 : CHUNK;
#if defined(__x86_64__)
        if (vec) mixrt_elt_silu_bf16_avx512(x + i0, t, m);
        else
#endif
            for (size_t j = 0; j < m; j++) t[j] = x[i0 + j] / (1.0f + expf(-x[i0 + j]));
        mixrt_f32_to_bf16(t, y + i0, m);
    }
    (void)vec;
}

/* ---- ops and their graph-level checks ------------------------------------------------------ */

enum kind { K_BINARY, K_UNARY, K_POW, K_CAST, K_COMPARE };
enum cmp_op { CMP_NONE, CMP_GT, CMP_LT, CMP_EQ, CMP_GE, CMP_LE };

struct op_info {
    const char *op_type;
    enum kind kind;
    enum mixrt_elt_op op; /* Gelu: ELT_GELU, made ELT_GELU_TANH by its attribute */
    int min_opset;        /* the op's first version in the default domain (numpy broadcasting) */
    enum cmp_op cmp;      /* K_COMPARE */
};

static const struct op_info op_infos[] = {
    {"Add", K_BINARY, ELT_ADD, 1, CMP_NONE},
    {"Sub", K_BINARY, ELT_SUB, 1, CMP_NONE},
    {"Mul", K_BINARY, ELT_MUL, 1, CMP_NONE},
    {"Div", K_BINARY, ELT_DIV, 1, CMP_NONE},
    {"Max", K_BINARY, ELT_MAX, 1, CMP_NONE},
    {"Min", K_BINARY, ELT_MIN, 1, CMP_NONE},
    {"Pow", K_POW, ELT_SQUARE, 1, CMP_NONE},
    {"Relu", K_UNARY, ELT_RELU, 1, CMP_NONE},
    {"LeakyRelu", K_UNARY, ELT_LEAKY, 1, CMP_NONE},
    {"Sigmoid", K_UNARY, ELT_SIGMOID, 1, CMP_NONE},
    {"Tanh", K_UNARY, ELT_TANH, 1, CMP_NONE},
    {"Erf", K_UNARY, ELT_ERF, 9, CMP_NONE},
    {"Exp", K_UNARY, ELT_EXP, 1, CMP_NONE},
    {"Sqrt", K_UNARY, ELT_SQRT, 1, CMP_NONE},
    {"Reciprocal", K_UNARY, ELT_RECIP, 1, CMP_NONE},
    {"Neg", K_UNARY, ELT_NEG, 1, CMP_NONE},
    {"Abs", K_UNARY, ELT_ABS, 1, CMP_NONE},
    {"Clip", K_UNARY, ELT_CLIP, 1, CMP_NONE},
    {"HardSigmoid", K_UNARY, ELT_HARDSIGMOID, 1, CMP_NONE},
    {"HardSwish", K_UNARY, ELT_HARDSWISH, 14, CMP_NONE},
    {"Gelu", K_UNARY, ELT_GELU, 20, CMP_NONE},
    {"Softplus", K_UNARY, ELT_SOFTPLUS, 1, CMP_NONE},
    {"Mish", K_UNARY, ELT_MISH, 18, CMP_NONE},
    {"Log", K_UNARY, ELT_LOG, 1, CMP_NONE},
    {"Identity", K_UNARY, ELT_IDENTITY, 1, CMP_NONE},
    {"Cast", K_CAST, ELT_IDENTITY, 1, CMP_NONE},
    {"Greater", K_COMPARE, ELT_IDENTITY, 7, CMP_GT},
    {"Less", K_COMPARE, ELT_IDENTITY, 7, CMP_LT},
    {"Equal", K_COMPARE, ELT_IDENTITY, 7, CMP_EQ},
    {"GreaterOrEqual", K_COMPARE, ELT_IDENTITY, 12, CMP_GE},
    {"LessOrEqual", K_COMPARE, ELT_IDENTITY, 12, CMP_LE},
};

static const struct op_info *find_op(const struct mixrt_node *n) {
    if (strcmp(n->domain, "")) return NULL;
    for (size_t i = 0; i < sizeof(op_infos) / sizeof(op_infos[0]); i++)
        if (!strcmp(op_infos[i].op_type, n->op_type)) return &op_infos[i];
    return NULL;
}

static bool fast_dtype(mixrt_dtype dt) { return dt == MIXRT_DTYPE_F32 || dt == MIXRT_DTYPE_BF16; }
static bool cast_dtype(mixrt_dtype dt) { return fast_dtype(dt) || dt == MIXRT_DTYPE_F16; }

/* The graph value of input (out: output) i, or NULL when absent. */
static const struct mixrt_value *in_value(const struct mixrt_graph *g, const struct mixrt_node *n, int i) {
    return i < n->n_inputs && n->inputs[i] >= 0 ? &g->values[n->inputs[i]] : NULL;
}
static const struct mixrt_value *out_value(const struct mixrt_graph *g, const struct mixrt_node *n, int i) {
    return i < n->n_outputs && n->outputs[i] >= 0 ? &g->values[n->outputs[i]] : NULL;
}

static bool no(char *why, size_t why_size, const char *fmt, const char *arg) {
    if (why && why_size) snprintf(why, why_size, fmt, arg);
    return false;
}

/* A constant scalar Pow exponent we can run: 2 (square) or 0.5 (square root). */
static bool pow_exponent(const struct mixrt_tensor *e, enum mixrt_elt_op *op) {
    if (!e || mixrt_tensor_numel(e) != 1 || !(mixrt_dtype_is_float(e->dtype) || mixrt_dtype_is_int(e->dtype)))
        return false;
    double v = mixrt_load_f64(e->data, e->dtype, 0);
    if (v == 2.0) *op = ELT_SQUARE;
    else if (v == 0.5) *op = ELT_POW_HALF;
    else return false;
    return true;
}

static bool elt_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    const struct op_info *info = find_op(n);
    if (!info) return no(why, why_size, "no element-wise kernel for %s", n->op_type);
    /* opsets 1..23 are the ones whose semantics these kernels know (as the reference) */
    if (n->opset < info->min_opset || n->opset > 23)
        return no(why, why_size, "%s: no element-wise kernel at this opset", n->op_type);
    const struct mixrt_value *x = in_value(g, n, 0), *y = out_value(g, n, 0);
    if (!x || !y || n->n_outputs != 1) return no(why, why_size, "%s needs input 0 and exactly one output", n->op_type);
    if ((x->flags | y->flags) & (MIXRT_VALUE_SEQUENCE | MIXRT_VALUE_OPTIONAL))
        return no(why, why_size, "%s on a sequence or optional value", n->op_type);
    if (info->kind == K_COMPARE) {
        const struct mixrt_value *b = in_value(g, n, 1);
        if (n->n_inputs != 2 || !b) return no(why, why_size, "%s: needs two inputs", n->op_type);
        if (!fast_dtype(x->dtype) || b->dtype != x->dtype)
            return no(why, why_size, "%s: only f32 or bf16 inputs of one dtype", n->op_type);
        if (y->dtype != MIXRT_DTYPE_BOOL && y->dtype != MIXRT_DTYPE_UNDEFINED)
            return no(why, why_size, "output is %s, not bool", mixrt_dtype_name(y->dtype));
        return true;
    }
    if (info->kind == K_CAST) {
        const struct mixrt_attr *to = mixrt_node_attr(n, "to");
        if (!cast_dtype(x->dtype) || !to || to->type != MIXRT_ATTR_INT || to->i <= 0 || to->i >= MIXRT_DTYPE_COUNT ||
            !cast_dtype((mixrt_dtype)to->i))
            return no(why, why_size, "%s", "Cast only among f32, bf16 and f16");
        return true;
    }
    if (!fast_dtype(x->dtype)) return no(why, why_size, "input 0 is %s, not f32 or bf16", mixrt_dtype_name(x->dtype));
    if (y->dtype != x->dtype && y->dtype != MIXRT_DTYPE_UNDEFINED)
        return no(why, why_size, "output is %s, not the input's dtype", mixrt_dtype_name(y->dtype));
    if (info->kind == K_BINARY) {
        const struct mixrt_value *b = in_value(g, n, 1);
        if (n->n_inputs != 2 || !b) return no(why, why_size, "%s: only the two-input form", n->op_type);
        if (n->opset < 7 || ((info->op == ELT_MAX || info->op == ELT_MIN) && n->opset < 8))
            return no(why, why_size, "%s: legacy broadcasting (old opset)", n->op_type);
        if (b->dtype != x->dtype) return no(why, why_size, "input 1 is %s, not the same as input 0", mixrt_dtype_name(b->dtype));
        return true;
    }
    if (info->kind == K_POW) {
        const struct mixrt_value *e = in_value(g, n, 1);
        enum mixrt_elt_op op;
        if (n->opset < 7) return no(why, why_size, "%s: legacy broadcasting (old opset)", n->op_type);
        if (!e || !e->init || !pow_exponent(e->init, &op))
            return no(why, why_size, "%s", "Pow only by a constant scalar exponent 2 or 0.5");
        return true;
    }
    if (info->op == ELT_GELU) {
        const char *a = mixrt_node_attr_string(n, "approximate", "none");
        if (strcmp(a, "none") && strcmp(a, "tanh")) return no(why, why_size, "Gelu approximate='%s'", a);
    }
    if (info->op == ELT_CLIP && n->opset >= 11) {
        for (int i = 1; i < 3; i++) {
            const struct mixrt_value *v = in_value(g, n, i);
            if (v && v->dtype != x->dtype) return no(why, why_size, "Clip bound dtype %s differs from input 0", mixrt_dtype_name(v->dtype));
        }
    }
    return true;
}

/* ---- run ----------------------------------------------------------------------------------- */

static const char *in_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

static mixrt_status bad_input(struct mixrt_kernel_ctx *k, mixrt_status st, int i, const struct mixrt_tensor *t,
                              const char *expected) {
    char d[256];
    return mixrt_kernel_error(k, st, "input #%d '%s' is %s, expected %s", i, in_name(k, i),
                              mixrt_tensor_desc(d, sizeof(d), t), expected);
}

#define CHUNK 512 /* f32 staging for bf16: three buffers fit in L1 */

static void unary_run_span(enum mixrt_elt_op op, const struct mixrt_elt_params *p, const void *x, void *y,
                           mixrt_dtype dt, size_t n) {
    mixrt_elt_unary_fn fn = unary_fn();
    if (dt == MIXRT_DTYPE_F32) {
        fn(op, p, x, y, n);
        return;
    }
    float buf[CHUNK];
    const mixrt_bf16 *xb = x;
    mixrt_bf16 *yb = y;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        mixrt_bf16_to_f32(xb + i, buf, m);
        fn(op, p, buf, buf, m);
        mixrt_f32_to_bf16(buf, yb + i, m);
    }
}

/* Reads Clip's optional bound i (opset >= 11) into *v when present. */
static mixrt_status clip_bound(struct mixrt_kernel_ctx *k, int i, const struct mixrt_tensor *x, float *v) {
    const struct mixrt_tensor *t = mixrt_kernel_opt_input(k, i);
    if (!t) return MIXRT_STATUS_OK;
    if (t->dtype != x->dtype) return mixrt_kernel_check_same_dtype(k, 0, i);
    if (mixrt_tensor_numel(t) != 1) return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, t, "a scalar");
    *v = (float)mixrt_load_f64(t->data, t->dtype, 0); /* exact: f32 or bf16 */
    return MIXRT_STATUS_OK;
}

static mixrt_status run_unary(struct mixrt_kernel_ctx *k, enum mixrt_elt_op op) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *out = NULL;
    struct mixrt_elt_params p = {0.0f, 0.0f, -INFINITY, INFINITY};
    if ((status = mixrt_kernel_input(k, 0, &x)) != MIXRT_STATUS_OK) return status;
    if (!fast_dtype(x->dtype)) return bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, x, "f32 or bf16");
    switch (op) {
    case ELT_LEAKY: p.alpha = mixrt_node_attr_float(k->node, "alpha", 0.01f); break;
    case ELT_HARDSIGMOID:
        p.alpha = mixrt_node_attr_float(k->node, "alpha", 0.2f);
        p.beta = mixrt_node_attr_float(k->node, "beta", 0.5f);
        break;
    case ELT_CLIP:
        if (k->opset < 11) {
            p.lo = mixrt_node_attr_float(k->node, "min", -INFINITY);
            p.hi = mixrt_node_attr_float(k->node, "max", INFINITY);
        } else {
            if ((status = clip_bound(k, 1, x, &p.lo)) != MIXRT_STATUS_OK) return status;
            if ((status = clip_bound(k, 2, x, &p.hi)) != MIXRT_STATUS_OK) return status;
        }
        break;
    case ELT_GELU: {
        const char *a = mixrt_node_attr_string(k->node, "approximate", "none");
        if (!strcmp(a, "tanh")) op = ELT_GELU_TANH;
        else if (strcmp(a, "none"))
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "attribute 'approximate' is '%s', expected none or tanh", a);
        break;
    }
    default: break;
    }
    if ((status = mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &out)) != MIXRT_STATUS_OK) return status;
    size_t n = mixrt_tensor_numel(x);
    if (n == 0) return MIXRT_STATUS_OK;
    if (op == ELT_IDENTITY) memcpy(out->data, x->data, x->nbytes); /* bits as they are, NaN payloads too */
    else unary_run_span(op, &p, x->data, out->data, x->dtype, n);
    return MIXRT_STATUS_OK;
}

static mixrt_status run_pow(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL, *e = NULL;
    struct mixrt_tensor *out = NULL;
    enum mixrt_elt_op op;
    int r;
    int64_t d[MIXRT_MAX_RANK];
    if ((status = mixrt_kernel_input(k, 0, &x)) != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_kernel_input(k, 1, &e)) != MIXRT_STATUS_OK) return status;
    if (!fast_dtype(x->dtype)) return bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, x, "f32 or bf16");
    if (!pow_exponent(e, &op)) return bad_input(k, MIXRT_STATUS_UNSUPPORTED, 1, e, "a scalar 2 or 0.5");
    /* a one-element exponent of higher rank still adds leading 1s to the output shape */
    if (!mixrt_broadcast_shape(x->rank, x->dims, e->rank, e->dims, &r, d))
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, e, "a shape that broadcasts with input #0's");
    if ((status = mixrt_kernel_output(k, 0, x->dtype, r, d, &out)) != MIXRT_STATUS_OK) return status;
    size_t n = mixrt_tensor_numel(out);
    if (n) unary_run_span(op, NULL, x->data, out->data, x->dtype, n);
    return MIXRT_STATUS_OK;
}

/* The broadcast iteration reduced: output dims of size 1 dropped, neighbours merged where
 * both inputs step through them contiguously (or both stay put), so the innermost dim is a
 * span with input strides 0 or 1 and the outer dims only move the span's start. */
struct loops {
    int m;
    int64_t d[MIXRT_MAX_RANK], sa[MIXRT_MAX_RANK], sb[MIXRT_MAX_RANK];
};

static void loops_make(int r, const int64_t *dout, const int64_t *sa, const int64_t *sb, struct loops *L) {
    L->m = 0;
    for (int i = 0; i < r; i++) {
        if (dout[i] == 1) continue;
        int o = L->m - 1;
        if (o >= 0 && L->sa[o] == sa[i] * dout[i] && L->sb[o] == sb[i] * dout[i]) {
            L->d[o] *= dout[i];
            L->sa[o] = sa[i];
            L->sb[o] = sb[i];
            continue;
        }
        L->d[L->m] = dout[i];
        L->sa[L->m] = sa[i];
        L->sb[L->m] = sb[i];
        L->m++;
    }
    if (L->m == 0) { /* every dim 1: one element */
        L->d[0] = 1;
        L->sa[0] = L->sb[0] = 0;
        L->m = 1;
    }
}

/* bf16 spans through f32 staging. A span of at most CHUNK that the previous call of this range
 * already widened (a per-channel operand read again at every pixel) is not widened again:
 * *ka / *kb hold the widened span's start, NULL when none. */
struct bf16_stage {
    float fa[CHUNK], fb[CHUNK], fy[CHUNK];
    const mixrt_bf16 *ka, *kb;
};

static void binary_span_bf16(mixrt_elt_binary_fn fn, enum mixrt_elt_op op, const mixrt_bf16 *a, int ia,
                             const mixrt_bf16 *b, int ib, mixrt_bf16 *y, size_t n, struct bf16_stage *S) {
    bool one = n <= CHUNK;
    if (!ia && S->ka != a) mixrt_bf16_to_f32(a, S->fa, 1), S->ka = one && !ia ? a : NULL;
    if (!ib && S->kb != b) mixrt_bf16_to_f32(b, S->fb, 1), S->kb = one && !ib ? b : NULL;
    for (size_t i = 0; i < n; i += CHUNK) {
        size_t m = n - i < CHUNK ? n - i : CHUNK;
        if (ia && !(one && S->ka == a)) mixrt_bf16_to_f32(a + i, S->fa, m), S->ka = one ? a : NULL;
        if (ib && !(one && S->kb == b)) mixrt_bf16_to_f32(b + i, S->fb, m), S->kb = one ? b : NULL;
        fn(op, S->fa, ia, S->fb, ib, S->fy, m);
        mixrt_f32_to_bf16(S->fy, y + i, m);
    }
}

/* One broadcast binary op over its output spans [o0, o1) (see struct loops). */
struct binary_job {
    mixrt_elt_binary_fn fn;
    enum mixrt_elt_op op;
    const struct loops *L;
    const void *a, *b;
    void *y;
    bool f32;
    size_t inner;
};

/* Steps the outer counters ctr of L one span on, and the inputs' span offsets with them. */
static inline void next_span(const struct loops *L, int64_t *ctr, size_t *oa, size_t *ob) {
    for (int j = L->m - 2; j >= 0; j--) {
        *oa += (size_t)L->sa[j];
        *ob += (size_t)L->sb[j];
        if (++ctr[j] < L->d[j]) break;
        *oa -= (size_t)(L->sa[j] * L->d[j]);
        *ob -= (size_t)(L->sb[j] * L->d[j]);
        ctr[j] = 0;
    }
}

static void binary_range(const struct binary_job *J, size_t o0, size_t o1) {
    const struct loops *L = J->L;
    int m = L->m - 1, ia = L->sa[m] != 0, ib = L->sb[m] != 0;
    int64_t ctr[MIXRT_MAX_RANK] = {0};
    size_t oa = 0, ob = 0, rem = o0;
    for (int j = m - 1; j >= 0; j--) { /* the outer index of span o0 */
        ctr[j] = (int64_t)(rem % (size_t)L->d[j]);
        rem /= (size_t)L->d[j];
        oa += (size_t)(ctr[j] * L->sa[j]);
        ob += (size_t)(ctr[j] * L->sb[j]);
    }
    struct bf16_stage S;
    S.ka = S.kb = NULL;
    /* Short spans where one input steps through consecutive spans and the other reads the
     * same span again (a per-channel operand of NHWC): runs of spans go as one long span
     * against the repeated operand tiled once (up to CHUNK elements), not one call each. */
    size_t inner = J->inner;
    int rows = m >= 1 && ia && ib
                   ? (L->sa[m - 1] == (int64_t)inner && L->sb[m - 1] == 0   ? 0
                      : L->sb[m - 1] == (int64_t)inner && L->sa[m - 1] == 0 ? 1
                                                                            : -1)
                   : -1;
    int full = inner <= CHUNK / 4 ? rows : -1;
#if defined(__x86_64__)
    /* bf16 rows against one repeated row (squeeze-excite's gate over 24-1152 channels, the
     * row a per-channel operand of NHWC): widened, combined and rounded in one AVX-512 pass,
     * the repeated row widened once per change and tiled, so that a run of short rows goes as
     * one long call (one call per row of 24-72 elements cost more than the pass itself). */
    if (rows >= 0 && !J->f32 && inner <= 4096 && J->fn == mixrt_elt_binary_avx512) {
        float rowf[4096]; /* 16 KB of stack */
        const size_t per = 4096 / inner;
        size_t widened_at = (size_t)-1;
        for (size_t o = o0; o < o1;) {
            size_t g = (size_t)(L->d[m - 1] - ctr[m - 1]);
            if (g > o1 - o) g = o1 - o;
            if (g > per) g = per;
            size_t rep = rows == 0 ? ob : oa, go = rows == 0 ? oa : ob;
            const mixrt_bf16 *rp = (const mixrt_bf16 *)(rows == 0 ? J->b : J->a) + rep;
            if (widened_at != rep) {
                mixrt_bf16_to_f32(rp, rowf, inner);
                size_t want = (per < (size_t)L->d[m - 1] ? per : (size_t)L->d[m - 1]) * inner;
                for (size_t have = inner; have < want;) { /* copies by doubling */
                    size_t c = have < want - have ? have : want - have;
                    memcpy(rowf + have, rowf, c * sizeof(float));
                    have += c;
                }
                widened_at = rep;
            }
            mixrt_elt_binary_row_bf16_avx512(J->op, (const mixrt_bf16 *)(rows == 0 ? J->a : J->b) + go, rowf, rows == 1,
                                             (mixrt_bf16 *)J->y + o * inner, g * inner);
            o += g;
            for (size_t k = 0; k < g; k++) next_span(L, ctr, &oa, &ob);
        }
        return;
    }
#endif
    if (full >= 0) {
        size_t per = CHUNK / inner, tiled_at = (size_t)-1;
        float tile[CHUNK], fx[CHUNK], fy[CHUNK];
        for (size_t o = o0; o < o1;) {
            size_t run = (size_t)(L->d[m - 1] - ctr[m - 1]), g = o1 - o;
            if (g > run) g = run;
            if (g > per) g = per;
            size_t rep = full == 0 ? ob : oa, go = full == 0 ? oa : ob, n = g * inner;
            const char *rp = (const char *)(full == 0 ? J->b : J->a), *gp = (const char *)(full == 0 ? J->a : J->b);
            if (tiled_at != rep) { /* the repeated span, widened and tiled per times */
                if (J->f32) memcpy(tile, (const float *)rp + rep, inner * sizeof(float));
                else mixrt_bf16_to_f32((const mixrt_bf16 *)rp + rep, tile, inner);
                /* as many copies as a run can use, by doubling (RAFT's [784,1,1,2] + [1,7,7,2]: 49 of
                 * 2 floats, where 512 one-span copies a row had taken 0.38 ms) */
                size_t want = (per < (size_t)L->d[m - 1] ? per : (size_t)L->d[m - 1]) * inner;
                for (size_t have = inner; have < want;) {
                    size_t c = have < want - have ? have : want - have;
                    memcpy(tile + have, tile, c * sizeof(float));
                    have += c;
                }
                tiled_at = rep;
            }
            const float *x = J->f32 ? (const float *)gp + go : fx;
            float *y = J->f32 ? (float *)J->y + o * inner : fy;
            if (!J->f32) mixrt_bf16_to_f32((const mixrt_bf16 *)gp + go, fx, n);
            if (full == 0) J->fn(J->op, x, 1, tile, 1, y, n);
            else J->fn(J->op, tile, 1, x, 1, y, n);
            if (!J->f32) mixrt_f32_to_bf16(fy, (mixrt_bf16 *)J->y + o * inner, n);
            o += g;
            for (size_t k = 0; k < g; k++) next_span(L, ctr, &oa, &ob);
        }
        return;
    }
#if defined(__x86_64__)
    /* bf16 spans of both inputs (PoolFormer's pooling residuals): one AVX-512 pass widening,
     * combining and rounding, not three through f32 staging. */
    if (!J->f32 && ia && ib && J->fn == mixrt_elt_binary_avx512) {
        for (size_t o = o0; o < o1; o++) {
            mixrt_elt_binary_bf16_avx512(J->op, (const mixrt_bf16 *)J->a + oa, (const mixrt_bf16 *)J->b + ob,
                                         (mixrt_bf16 *)J->y + o * J->inner, J->inner);
            next_span(L, ctr, &oa, &ob);
        }
        return;
    }
#endif
    for (size_t o = o0; o < o1; o++) {
        if (J->f32)
            J->fn(J->op, (const float *)J->a + oa, ia, (const float *)J->b + ob, ib, (float *)J->y + o * J->inner,
                  J->inner);
        else
            binary_span_bf16(J->fn, J->op, (const mixrt_bf16 *)J->a + oa, ia, (const mixrt_bf16 *)J->b + ob, ib,
                             (mixrt_bf16 *)J->y + o * J->inner, J->inner, &S);
        next_span(L, ctr, &oa, &ob);
    }
}

/* Two f32/bf16 inputs of one dtype broadcast to an output of out_dt (UNDEFINED: theirs): the
 * output made, the iteration reduced into *L (struct loops) and its outer span count in
 * *outer; *out stays NULL when the output is empty. */
static mixrt_status broadcast_setup(struct mixrt_kernel_ctx *k, mixrt_dtype out_dt, const struct mixrt_tensor **pa,
                                    const struct mixrt_tensor **pb, struct mixrt_tensor **pout, struct loops *L,
                                    size_t *outer) {
    mixrt_status status;
    const struct mixrt_tensor *a = NULL, *b = NULL;
    struct mixrt_tensor *out = NULL;
    int r;
    int64_t d[MIXRT_MAX_RANK], sa[MIXRT_MAX_RANK], sb[MIXRT_MAX_RANK];
    *pout = NULL;
    if ((status = mixrt_kernel_input(k, 0, &a)) != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_kernel_input(k, 1, &b)) != MIXRT_STATUS_OK) return status;
    if (k->n_in != 2) return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "only the two-input form runs here");
    if (!fast_dtype(a->dtype)) return bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, a, "f32 or bf16");
    if (b->dtype != a->dtype) return mixrt_kernel_check_same_dtype(k, 0, 1);
    if (!mixrt_broadcast_shape(a->rank, a->dims, b->rank, b->dims, &r, d)) {
        char da[256], db[256];
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "input #0 '%s' is %s and input #1 '%s' is %s: shapes do not broadcast", in_name(k, 0),
                                  mixrt_tensor_desc(da, sizeof(da), a), in_name(k, 1),
                                  mixrt_tensor_desc(db, sizeof(db), b));
    }
    if (out_dt == MIXRT_DTYPE_UNDEFINED) out_dt = a->dtype;
    if ((status = mixrt_kernel_output(k, 0, out_dt, r, d, &out)) != MIXRT_STATUS_OK) return status;
    *pa = a, *pb = b;
    if (mixrt_tensor_numel(out) == 0) return MIXRT_STATUS_OK;
    mixrt_broadcast_strides(a->rank, a->dims, r, d, sa);
    mixrt_broadcast_strides(b->rank, b->dims, r, d, sb);
    loops_make(r, d, sa, sb, L);
    *outer = 1;
    for (int i = 0; i < L->m - 1; i++) *outer *= (size_t)L->d[i];
    *pout = out;
    return MIXRT_STATUS_OK;
}

static mixrt_status run_binary(struct mixrt_kernel_ctx *k, enum mixrt_elt_op op) {
    const struct mixrt_tensor *a = NULL, *b = NULL;
    struct mixrt_tensor *out = NULL;
    struct loops L;
    size_t outer = 1;
    if (k->opset < 7 || ((op == ELT_MAX || op == ELT_MIN) && k->opset < 8))
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "legacy broadcasting (opset %lld) is the reference's",
                                  (long long)k->opset);
    mixrt_status status = broadcast_setup(k, MIXRT_DTYPE_UNDEFINED, &a, &b, &out, &L, &outer);
    if (status != MIXRT_STATUS_OK || !out) return status;
    int m = L.m - 1;
    struct binary_job J = {binary_fn(), op, &L, a->data, b->data, out->data, a->dtype == MIXRT_DTYPE_F32,
                           (size_t)L.d[m]};
    /* Threads for outputs of 64K elements and more (an image-sized tensor), split by spans. */
    int nt = 1;
#ifdef _OPENMP
    if (mixrt_tensor_numel(out) >= 65536 && outer >= 2) nt = omp_get_max_threads();
    if ((size_t)nt > outer) nt = (int)outer;
#endif
    if (nt > 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int t = 0; t < nt; t++) binary_range(&J, outer * (size_t)t / (size_t)nt, outer * (size_t)(t + 1) / (size_t)nt);
    } else {
        binary_range(&J, 0, outer);
    }
    return MIXRT_STATUS_OK;
}

/* Comparisons of f32 spans into bool bytes (a, b strides 0 or 1), branch-free so the compiler
 * vectorizes each stride case; NaN compares false, -0 equals +0 (IEEE, as the reference). */
#define CMP_SPAN(EXPR)                                                                                                 \
    do {                                                                                                               \
        if (ia && ib)                                                                                                  \
            for (size_t i = 0; i < n; i++) { float x = a[i], z = b[i]; y[i] = (uint8_t)(EXPR); }                         \
        else if (ia)                                                                                                   \
            for (size_t i = 0; i < n; i++) { float x = a[i], z = b[0]; y[i] = (uint8_t)(EXPR); }                         \
        else if (ib)                                                                                                   \
            for (size_t i = 0; i < n; i++) { float x = a[0], z = b[i]; y[i] = (uint8_t)(EXPR); }                         \
        else                                                                                                           \
            for (size_t i = 0; i < n; i++) { float x = a[0], z = b[0]; y[i] = (uint8_t)(EXPR); }                         \
    } while (0)

static void compare_span(enum cmp_op op, const float *a, int ia, const float *b, int ib, uint8_t *y, size_t n) {
    switch (op) {
    case CMP_GT: CMP_SPAN(x > z); break;
    case CMP_LT: CMP_SPAN(x < z); break;
    case CMP_EQ: CMP_SPAN(x == z); break;
    case CMP_GE: CMP_SPAN(x >= z); break;
    case CMP_LE: CMP_SPAN(x <= z); break;
    default: break;
    }
}

static mixrt_status run_compare(struct mixrt_kernel_ctx *k, enum cmp_op op) {
    const struct mixrt_tensor *a = NULL, *b = NULL;
    struct mixrt_tensor *out = NULL;
    struct loops L;
    size_t outer = 1;
    mixrt_status status = broadcast_setup(k, MIXRT_DTYPE_BOOL, &a, &b, &out, &L, &outer);
    if (status != MIXRT_STATUS_OK || !out) return status;
    int m = L.m - 1, ia = L.sa[m] != 0, ib = L.sb[m] != 0;
    size_t inner = (size_t)L.d[m];
    int64_t ctr[MIXRT_MAX_RANK] = {0};
    size_t oa = 0, ob = 0;
    float fa[CHUNK], fb[CHUNK];
    bool f32 = a->dtype == MIXRT_DTYPE_F32;
    for (size_t o = 0; o < outer; o++) {
        uint8_t *y = (uint8_t *)out->data + o * inner;
        if (f32) {
            compare_span(op, (const float *)a->data + oa, ia, (const float *)b->data + ob, ib, y, inner);
        } else { /* bf16 widened exactly, CHUNK at a time */
            for (size_t i = 0; i < inner; i += CHUNK) {
                size_t c = inner - i < CHUNK ? inner - i : CHUNK;
                mixrt_bf16_to_f32((const mixrt_bf16 *)a->data + oa + (ia ? i : 0), fa, ia ? c : 1);
                mixrt_bf16_to_f32((const mixrt_bf16 *)b->data + ob + (ib ? i : 0), fb, ib ? c : 1);
                compare_span(op, fa, ia, fb, ib, y + i, c);
            }
        }
        next_span(&L, ctr, &oa, &ob);
    }
    return MIXRT_STATUS_OK;
}

static mixrt_status run_cast(struct mixrt_kernel_ctx *k) {
    mixrt_status status;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *out = NULL;
    if ((status = mixrt_kernel_input(k, 0, &x)) != MIXRT_STATUS_OK) return status;
    const struct mixrt_attr *to = mixrt_node_attr(k->node, "to");
    if (!to) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "required attribute 'to' is missing");
    if (!cast_dtype(x->dtype)) return bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, x, "f32, bf16 or f16");
    if (to->i <= 0 || to->i >= MIXRT_DTYPE_COUNT || !cast_dtype((mixrt_dtype)to->i))
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "target type %lld is not f32, bf16 or f16",
                                  (long long)to->i);
    mixrt_dtype dt = (mixrt_dtype)to->i;
    if ((status = mixrt_kernel_output(k, 0, dt, x->rank, x->dims, &out)) != MIXRT_STATUS_OK) return status;
    size_t n = mixrt_tensor_numel(x);
    if (n == 0) return MIXRT_STATUS_OK;
    if (dt == x->dtype) {
        memcpy(out->data, x->data, x->nbytes);
        return MIXRT_STATUS_OK;
    }
    /* Large casts (GPT-2's logits: 6.4 M values) in pieces over the threads; the pieces are
     * whole 64-byte lines of the output for every pair of these dtypes. */
    enum { PIECE = (size_t)1 << 16 };
    const int64_t pieces = (int64_t)((n + PIECE - 1) / PIECE);
    const size_t xs = mixrt_dtype_size(x->dtype), ys = mixrt_dtype_size(dt);
    /* one piece: no parallel region at all (an inactive one, `if (0)`, still cost ~1.4 us here,
     * a futex call in libgomp: 14 times a 64-value cast's own time) */
    if (pieces == 1) {
        (void)mixrt_convert(out->data, dt, x->data, x->dtype, n);
        return MIXRT_STATUS_OK;
    }
#ifdef _OPENMP
#pragma omp parallel for schedule(static)
#endif
    for (int64_t c = 0; c < pieces; c++) { /* both dtypes checked above: the conversion cannot fail */
        const size_t i0 = (size_t)c * PIECE, m = n - i0 < PIECE ? n - i0 : PIECE;
        (void)mixrt_convert((char *)out->data + i0 * ys, dt, (const char *)x->data + i0 * xs, x->dtype, m);
    }
    return MIXRT_STATUS_OK;
}

static mixrt_status elt_run(struct mixrt_kernel_ctx *k) {
    const struct op_info *info = find_op(k->node);
    if (!info) return mixrt_kernel_error(k, MIXRT_STATUS_INTERNAL, "no element-wise kernel for this op");
    switch (info->kind) {
    case K_BINARY: return run_binary(k, info->op);
    case K_POW: return run_pow(k);
    case K_CAST: return run_cast(k);
    case K_COMPARE: return run_compare(k, info->cmp);
    default: return run_unary(k, info->op);
    }
}

#define ELT(name, op) {name, "", op, elt_supports, NULL, NULL, elt_run}
const struct mixrt_cpu_kernel mixrt_eltwise_kernels[] = {
    ELT("elt_add", "Add"),
    ELT("elt_sub", "Sub"),
    ELT("elt_mul", "Mul"),
    ELT("elt_div", "Div"),
    ELT("elt_max", "Max"),
    ELT("elt_min", "Min"),
    ELT("elt_pow", "Pow"),
    ELT("elt_relu", "Relu"),
    ELT("elt_leakyrelu", "LeakyRelu"),
    ELT("elt_sigmoid", "Sigmoid"),
    ELT("elt_tanh", "Tanh"),
    ELT("elt_erf", "Erf"),
    ELT("elt_exp", "Exp"),
    ELT("elt_sqrt", "Sqrt"),
    ELT("elt_reciprocal", "Reciprocal"),
    ELT("elt_neg", "Neg"),
    ELT("elt_abs", "Abs"),
    ELT("elt_clip", "Clip"),
    ELT("elt_hardsigmoid", "HardSigmoid"),
    ELT("elt_hardswish", "HardSwish"),
    ELT("elt_gelu", "Gelu"),
    ELT("elt_softplus", "Softplus"),
    ELT("elt_mish", "Mish"),
    ELT("elt_log", "Log"),
    ELT("elt_identity", "Identity"),
    ELT("elt_cast", "Cast"),
    ELT("elt_greater", "Greater"),
    ELT("elt_less", "Less"),
    ELT("elt_equal", "Equal"),
    ELT("elt_greaterorequal", "GreaterOrEqual"),
    ELT("elt_lessorequal", "LessOrEqual"),
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
