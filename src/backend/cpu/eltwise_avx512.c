/* eltwise_avx512.c - the AVX-512 spans of the element-wise kernels: 16 f32 lanes, masked
 * tails (no scalar remainder loop). Invariant: every op evaluates the same formula, in the
 * same order, as its scalar twin in eltwise.c (same coefficients from eltwise_impl.h), and
 * NaN inputs come out NaN. Compiled with AVX-512 flags; called only after the CPUID check. */
#if defined(__x86_64__)
#include <immintrin.h>

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/silu_avx512.h"
#include "core/bf16_avx512.h"

#define V1(c) _mm512_set1_ps(c)

static inline __mmask16 tail_mask(size_t k) { return (__mmask16)((1u << k) - 1u); }

static inline __m512 v_abs(__m512 x) {
    return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(x), _mm512_set1_epi32(0x7fffffff)));
}
/* |r| with the sign bit of s. */
static inline __m512 v_copysign(__m512 r, __m512 s) {
    __m512i sign = _mm512_and_si512(_mm512_castps_si512(s), _mm512_set1_epi32((int)0x80000000u));
    return _mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(v_abs(r)), sign));
}
static inline __m512 v_nanfix(__m512 r, __m512 x) {
    __mmask16 nan = _mm512_cmp_ps_mask(x, x, _CMP_UNORD_Q);
    return _mm512_mask_add_ps(r, nan, x, x); /* NaN in, quiet NaN out */
}

/* Horner from the highest coefficient: c[0] + c[1] x + ... + c[n-1] x^(n-1). */
static inline __m512 v_poly(const float *c, int n, __m512 x) {
    __m512 p = V1(c[n - 1]);
    for (int i = n - 2; i >= 0; i--) p = _mm512_fmadd_ps(p, x, V1(c[i]));
    return p;
}

/* e^x, NaN lanes unspecified (callers fix them). */
static inline __m512 v_exp_raw(__m512 x) {
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, V1(ELT_EXP_LO)), V1(ELT_EXP_HI));
    __m512 n = _mm512_roundscale_ps(_mm512_mul_ps(xc, V1(ELT_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, V1(ELT_LN2_HI), xc);
    r = _mm512_fnmadd_ps(n, V1(ELT_LN2_LO), r);
    return _mm512_scalef_ps(v_poly(ELT_EXP_P, 8, r), n);
}

/* e^(-t*t) for t >= 0 finite, with the rounding error of t*t put back (e = t*t - fl(t*t)
 * exactly by fma), so the result keeps its relative accuracy where t*t is large. */
static inline __m512 v_exp_neg_sq(__m512 t, float scale) {
    __m512 t2 = _mm512_mul_ps(t, t);
    __m512 e = _mm512_fmsub_ps(t, t, t2);
    __m512 s = V1(scale);
    return _mm512_mul_ps(v_exp_raw(_mm512_mul_ps(s, _mm512_sub_ps(_mm512_setzero_ps(), t2))),
                         _mm512_fnmadd_ps(s, e, V1(1.0f)));
}

/* h(t) = F(1/t)/t (see eltwise_impl.h), t >= sqrt2. */
static inline __m512 v_tail(__m512 t) {
    __m512 v = _mm512_div_ps(V1(1.0f), t);
    __mmask16 far = _mm512_cmp_ps_mask(t, V1(ELT_TAIL_SPLIT), _CMP_GE_OQ);
    __m512 p = _mm512_mask_blend_ps(far, V1(ELT_TAIL_P0[8]), V1(ELT_TAIL_P1[8]));
    for (int i = 7; i >= 0; i--)
        p = _mm512_fmadd_ps(p, v, _mm512_mask_blend_ps(far, V1(ELT_TAIL_P0[i]), V1(ELT_TAIL_P1[i])));
    return _mm512_mul_ps(p, v);
}

static inline __m512 v_erf(__m512 x) {
    __m512 a = v_abs(x);
    __mmask16 small = _mm512_cmp_ps_mask(a, V1(1.0f), _CMP_LT_OQ);
    __m512 r = _mm512_setzero_ps();
    if (small) r = _mm512_mul_ps(x, v_poly(ELT_ERF_P, 7, _mm512_mul_ps(x, x)));
    if (small != (__mmask16)0xffff) {
        __m512 ac = _mm512_min_ps(a, V1(6.0f)); /* erf(6) is 1 in f32; keeps t*t finite */
        __m512 q = _mm512_mul_ps(v_exp_neg_sq(ac, 1.0f), v_tail(_mm512_mul_ps(ac, V1(ELT_SQRT2))));
        r = _mm512_mask_mov_ps(r, (__mmask16)~small, v_copysign(_mm512_sub_ps(V1(1.0f), q), x));
    }
    return v_nanfix(r, x);
}

static inline __m512 v_tanh(__m512 x) {
    __m512 a = v_abs(x);
    __mmask16 small = _mm512_cmp_ps_mask(a, V1(0.55f), _CMP_LT_OQ);
    __m512 r = _mm512_setzero_ps();
    if (small) r = _mm512_mul_ps(x, v_poly(ELT_TANH_P, 6, _mm512_mul_ps(x, x)));
    if (small != (__mmask16)0xffff) {
        __m512 e = v_exp_raw(_mm512_mul_ps(_mm512_min_ps(a, V1(10.0f)), V1(2.0f)));
        __m512 t = _mm512_sub_ps(V1(1.0f), _mm512_div_ps(V1(2.0f), _mm512_add_ps(e, V1(1.0f))));
        r = _mm512_mask_mov_ps(r, (__mmask16)~small, v_copysign(t, x));
    }
    return v_nanfix(r, x);
}

/* 1/(1+e^-x) for x >= 0, e^x/(1+e^x) below: e^ never overflows, no cancellation. */
static inline __m512 v_sigmoid(__m512 x) {
    __m512 e = v_exp_raw(_mm512_sub_ps(_mm512_setzero_ps(), v_abs(x)));
    __m512 d = _mm512_add_ps(V1(1.0f), e);
    __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 num = _mm512_mask_mov_ps(V1(1.0f), neg, e);
    return v_nanfix(_mm512_div_ps(num, d), x);
}

/* x * Phi(x): Phi = (1 + erf(x/sqrt2))/2 for |x| < sqrt2, the tail h(|x|) beyond. */
static inline __m512 v_gelu(__m512 x) {
    __m512 a = v_abs(x);
    __mmask16 small = _mm512_cmp_ps_mask(a, V1(ELT_SQRT2), _CMP_LT_OQ);
    __m512 phi = _mm512_setzero_ps();
    if (small) {
        __m512 z = _mm512_mul_ps(x, V1(ELT_SQRT1_2));
        __m512 erfv = _mm512_mul_ps(z, v_poly(ELT_ERF_P, 7, _mm512_mul_ps(z, z)));
        phi = _mm512_fmadd_ps(V1(0.5f), erfv, V1(0.5f));
    }
    if (small != (__mmask16)0xffff) {
        __m512 t = _mm512_min_ps(a, V1(15.0f)); /* Phi(-15) is 0 in f32 */
        __m512 q = _mm512_mul_ps(_mm512_mul_ps(V1(0.5f), v_exp_neg_sq(t, 0.5f)), v_tail(t));
        __mmask16 neg = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_LT_OQ);
        __m512 big = _mm512_mask_mov_ps(_mm512_sub_ps(V1(1.0f), q), neg, q);
        phi = _mm512_mask_mov_ps(phi, (__mmask16)~small, big);
    }
    return v_nanfix(_mm512_mul_ps(x, phi), x);
}

/* x * sigmoid(2y), y = sqrt(2/pi) x (1 + 0.044715 x^2): the same as x (1 + tanh y)/2 without
 * its cancellation. Below zero sigmoid(2y) ~ e^2y magnifies the error of 2y by |2y| (~14
 * where the result is 1e-6), so 2y is carried as hi + lo (fma error terms) and the exp
 * gets the first-order correction e^lo ~ 1 + lo. |x| is clamped at 12 for y: beyond it
 * sigmoid is 0 or 1 in f32 anyway. */
static inline __m512 v_gelu_tanh(__m512 x) {
    __m512 one = V1(1.0f), k = V1(ELT_GELU_K), c2 = V1(2.0f * ELT_GELU_C);
    __m512 xc = _mm512_min_ps(_mm512_max_ps(x, V1(-12.0f)), V1(12.0f));
    __m512 x2 = _mm512_mul_ps(xc, xc), x2e = _mm512_fmsub_ps(xc, xc, x2);
    __m512 w = _mm512_fmadd_ps(k, x2, one);
    __m512 we = _mm512_fmadd_ps(k, x2e, _mm512_fmadd_ps(k, x2, _mm512_sub_ps(one, w)));
    __m512 v = _mm512_mul_ps(xc, w), ve = _mm512_fmadd_ps(xc, we, _mm512_fmsub_ps(xc, w, v));
    __m512 y = _mm512_mul_ps(c2, v), ye = _mm512_fmadd_ps(c2, ve, _mm512_fmsub_ps(c2, v, y));
    /* e = e^-|y + ye| = e^-|y| * e^-(sgn(y) ye) */
    __m512 sye = _mm512_castsi512_ps(_mm512_xor_si512(
        _mm512_castps_si512(ye), _mm512_and_si512(_mm512_castps_si512(y), _mm512_set1_epi32((int)0x80000000u))));
    __m512 e = v_exp_raw(_mm512_sub_ps(_mm512_setzero_ps(), v_abs(y)));
    e = _mm512_fnmadd_ps(e, sye, e);
    __mmask16 neg = _mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_LT_OQ);
    __m512 sig = _mm512_div_ps(_mm512_mask_mov_ps(one, neg, e), _mm512_add_ps(one, e));
    return v_nanfix(_mm512_mul_ps(x, sig), x);
}

/* max(x, 0) + log1p(e^-|x|). */
static inline __m512 v_softplus(__m512 x) {
    __m512 e = v_exp_raw(_mm512_sub_ps(_mm512_setzero_ps(), v_abs(x)));
    __m512 s = _mm512_div_ps(e, _mm512_add_ps(V1(2.0f), e));
    __m512 lp = _mm512_mul_ps(_mm512_add_ps(s, s), v_poly(ELT_LOG1P_P, 9, _mm512_mul_ps(s, s)));
    __mmask16 pos = _mm512_cmp_ps_mask(x, _mm512_setzero_ps(), _CMP_GT_OQ);
    return v_nanfix(_mm512_add_ps(_mm512_maskz_mov_ps(pos, x), lp), x);
}

/* x n / (n + 2), n = u (u + 2), u = e^min(x, 20): the scalar twin's form (eltwise.c). */
static inline __m512 v_mish(__m512 x) {
    __m512 u = v_exp_raw(_mm512_min_ps(x, V1(20.0f)));
    __m512 n = _mm512_mul_ps(u, _mm512_add_ps(u, V1(2.0f)));
    __m512 y = _mm512_mul_ps(x, _mm512_div_ps(n, _mm512_add_ps(n, V1(2.0f))));
    __m512 tail = _mm512_mul_ps(_mm512_mul_ps(x, v_exp_raw(_mm512_add_ps(x, V1(40.0f)))), V1(4.2483542552915889e-18f));
    return v_nanfix(_mm512_mask_mov_ps(y, _mm512_cmp_ps_mask(x, V1(-20.0f), _CMP_LT_OQ), tail), x);
}

/* The scalar twin's log (eltwise.c): getexp/getmant give e and m in [1, 2) (subnormals
 * included), m above sqrt(2) halved; 0 gives -Inf, below 0 NaN, +Inf itself. */
static inline __m512 v_log(__m512 x) {
    __m512 e = _mm512_getexp_ps(x), m = _mm512_getmant_ps(x, _MM_MANT_NORM_1_2, _MM_MANT_SIGN_zero);
    __mmask16 big = _mm512_cmp_ps_mask(m, V1(1.41421356f), _CMP_GT_OQ);
    m = _mm512_mask_mul_ps(m, big, m, V1(0.5f));
    e = _mm512_mask_add_ps(e, big, e, V1(1.0f));
    __m512 s = _mm512_div_ps(_mm512_sub_ps(m, V1(1.0f)), _mm512_add_ps(m, V1(1.0f)));
    __m512 lm = _mm512_mul_ps(_mm512_add_ps(s, s), v_poly(ELT_LOG1P_P, 9, _mm512_mul_ps(s, s)));
    __m512 r = _mm512_fmadd_ps(e, V1(ELT_LN2_HI), _mm512_fmadd_ps(e, V1(ELT_LN2_LO), lm));
    __m512 zero = _mm512_setzero_ps();
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, zero, _CMP_EQ_OQ), V1(-__builtin_inff()));
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), V1(__builtin_nanf("")));
    r = _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, V1(__builtin_inff()), _CMP_EQ_OQ), x);
    return v_nanfix(r, x);
}

static inline __m512 v_unary(enum mixrt_elt_op op, const struct mixrt_elt_params *p, __m512 x) {
    __m512 zero = _mm512_setzero_ps();
    switch (op) {
    case ELT_RELU: return _mm512_maskz_mov_ps(~_mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x); /* keeps -0, NaN */
    case ELT_LEAKY: return _mm512_mask_mul_ps(x, _mm512_cmp_ps_mask(x, zero, _CMP_LT_OQ), x, V1(p->alpha));
    case ELT_SIGMOID: return v_sigmoid(x);
    case ELT_TANH: return v_tanh(x);
    case ELT_ERF: return v_erf(x);
    case ELT_EXP: return v_nanfix(v_exp_raw(x), x);
    case ELT_SQRT: return _mm512_sqrt_ps(x);
    case ELT_RECIP: return _mm512_div_ps(V1(1.0f), x);
    case ELT_NEG:
        return _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(x), _mm512_set1_epi32((int)0x80000000u)));
    case ELT_ABS: return v_abs(x);
    case ELT_CLIP: {
        __m512 r = _mm512_mask_mov_ps(x, _mm512_cmp_ps_mask(x, V1(p->lo), _CMP_LT_OQ), V1(p->lo));
        return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(r, V1(p->hi), _CMP_GT_OQ), V1(p->hi));
    }
    case ELT_HARDSIGMOID:
        /* min_ps(v, 1) gives 1 for NaN v, as fmin(1, v) in the reference */
        return _mm512_max_ps(_mm512_min_ps(_mm512_fmadd_ps(V1(p->alpha), x, V1(p->beta)), V1(1.0f)), zero);
    case ELT_HARDSWISH:
        /* (x + 3)/6, not x/6 + 0.5, which cancels near x = -3 */
        return _mm512_mul_ps(
            x, _mm512_max_ps(_mm512_min_ps(_mm512_mul_ps(_mm512_add_ps(x, V1(3.0f)), V1(1.0f / 6.0f)), V1(1.0f)), zero));
    case ELT_GELU: return v_gelu(x);
    case ELT_GELU_TANH: return v_gelu_tanh(x);
    case ELT_SOFTPLUS: return v_softplus(x);
    case ELT_MISH: return v_mish(x);
    case ELT_LOG: return v_log(x);
    case ELT_SQUARE: return _mm512_mul_ps(x, x);
    case ELT_POW_HALF: {
        __m512 r = _mm512_sqrt_ps(_mm512_add_ps(x, zero)); /* -0 + 0 = +0 */
        return _mm512_mask_mov_ps(r, _mm512_cmp_ps_mask(x, V1(-__builtin_inff()), _CMP_EQ_OQ), V1(__builtin_inff()));
    }
    default: return x; /* ELT_IDENTITY */
    }
}

void mixrt_elt_unary_avx512(enum mixrt_elt_op op, const struct mixrt_elt_params *p, const float *x, float *y,
                            size_t n) {
    size_t i = 0;
    /* op is loop-invariant: the switch in v_unary is hoisted by the compiler per case */
    switch (op) {
#define UCASE(OP)                                                                                                      \
    case OP:                                                                                                           \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, v_unary(OP, p, _mm512_loadu_ps(x + i)));                 \
        break;
        UCASE(ELT_RELU) UCASE(ELT_LEAKY) UCASE(ELT_SIGMOID) UCASE(ELT_TANH) UCASE(ELT_ERF) UCASE(ELT_EXP)
        UCASE(ELT_SQRT) UCASE(ELT_RECIP) UCASE(ELT_NEG) UCASE(ELT_ABS) UCASE(ELT_CLIP) UCASE(ELT_HARDSIGMOID)
        UCASE(ELT_HARDSWISH) UCASE(ELT_GELU) UCASE(ELT_GELU_TANH) UCASE(ELT_SOFTPLUS) UCASE(ELT_SQUARE)
        UCASE(ELT_POW_HALF) UCASE(ELT_MISH) UCASE(ELT_LOG)
#undef UCASE
    default:
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, _mm512_loadu_ps(x + i));
        break;
    }
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, v_unary(op, p, _mm512_maskz_loadu_ps(m, x + i)));
    }
}

static inline __m512 v_binary(enum mixrt_elt_op op, __m512 a, __m512 b) {
    switch (op) {
    case ELT_ADD: return _mm512_add_ps(a, b);
    case ELT_SUB: return _mm512_sub_ps(a, b);
    case ELT_MUL: return _mm512_mul_ps(a, b);
    case ELT_DIV: return _mm512_div_ps(a, b);
    /* b where b > a (or b < a) or b is NaN, else a: NaN propagates from either side, and
     * ties (+0 vs -0) keep a, as the reference's variadic fold does */
    case ELT_MAX:
        return _mm512_mask_mov_ps(a, _mm512_cmp_ps_mask(b, a, _CMP_GT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), b);
    case ELT_MIN:
        return _mm512_mask_mov_ps(a, _mm512_cmp_ps_mask(b, a, _CMP_LT_OQ) | _mm512_cmp_ps_mask(b, b, _CMP_UNORD_Q), b);
    default: return a;
    }
}

/* One loop per (op, broadcast side): the strides are loop-invariant constants. */
#define BIN_LOOP(OP, LA, LB)                                                                                           \
    do {                                                                                                               \
        for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, v_binary(OP, LA, LB));                                    \
    } while (0)

void mixrt_elt_binary_avx512(enum mixrt_elt_op op, const float *a, int sa, const float *b, int sb, float *y, size_t n) {
    size_t i = 0;
    __m512 a0 = sa ? _mm512_setzero_ps() : V1(a[0]), b0 = sb ? _mm512_setzero_ps() : V1(b[0]);
    switch (op) {
#define BCASE(OP)                                                                                                      \
    case OP:                                                                                                           \
        if (sa && sb) BIN_LOOP(OP, _mm512_loadu_ps(a + i), _mm512_loadu_ps(b + i));                                    \
        else if (sa) BIN_LOOP(OP, _mm512_loadu_ps(a + i), b0);                                                         \
        else if (sb) BIN_LOOP(OP, a0, _mm512_loadu_ps(b + i));                                                         \
        else BIN_LOOP(OP, a0, b0);                                                                                     \
        break;
        BCASE(ELT_ADD) BCASE(ELT_SUB) BCASE(ELT_MUL) BCASE(ELT_DIV) BCASE(ELT_MAX) BCASE(ELT_MIN)
#undef BCASE
    default: break;
    }
    while (i < n) { /* the tail (and every lane of an op without a loop above) */
        size_t k = n - i < 16 ? n - i : 16;
        __mmask16 m = k == 16 ? (__mmask16)0xffff : tail_mask(k);
        __m512 va = sa ? _mm512_maskz_loadu_ps(m, a + i) : a0, vb = sb ? _mm512_maskz_loadu_ps(m, b + i) : b0;
        _mm512_mask_storeu_ps(y + i, m, v_binary(op, va, vb));
        i += k;
    }
}

/* One loop per (op, side): the op is a loop-invariant constant, not a switch per vector. */
#define ROW_LOOP(OP, RF)                                                                                               \
    {                                                                                                                  \
        size_t i = 0;                                                                                                  \
        for (; i + 16 <= n; i += 16) { /* whole vectors unmasked: masked stores are slow on Zen */                     \
            const __m512 gv = _mm512_castsi512_ps(_mm512_slli_epi32(                                                   \
                _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(gb + i))), 16));                             \
            const __m512 rv = _mm512_loadu_ps(row + i);                                                                \
            _mm256_storeu_si256((__m256i *)(yb + i),                                                                   \
                                mixrt_v_bf16_rne(RF ? v_binary(OP, rv, gv) : v_binary(OP, gv, rv)));                  \
        }                                                                                                              \
        if (i < n) {                                                                                                   \
            const __mmask16 m = tail_mask(n - i);                                                                      \
            const __m512 gv = _mm512_castsi512_ps(                                                                     \
                _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, gb + i)), 16));                   \
            const __m512 rv = _mm512_maskz_loadu_ps(m, row + i);                                                       \
            _mm256_mask_storeu_epi16(yb + i, m, mixrt_v_bf16_rne(RF ? v_binary(OP, rv, gv) : v_binary(OP, gv, rv)));   \
        }                                                                                                              \
    }

void mixrt_elt_binary_row_bf16_avx512(enum mixrt_elt_op op, const mixrt_bf16 *g, const float *row, int row_first,
                                      mixrt_bf16 *y, size_t n) {
    const uint16_t *gb = (const uint16_t *)g;
    uint16_t *yb = (uint16_t *)y;
    if (op == ELT_MUL) { /* commutative: either side */
        ROW_LOOP(ELT_MUL, 0)
    } else if (op == ELT_ADD) {
        ROW_LOOP(ELT_ADD, 0)
    } else if (row_first) {
        ROW_LOOP(op, 1)
    } else {
        ROW_LOOP(op, 0)
    }
}
#undef ROW_LOOP

/* y = a op b over n bf16 elements of both: widened exactly, combined in f32, rounded once. */
#define BF16_BIN_LOOP(OP)                                                                                              \
    {                                                                                                                  \
        size_t i = 0;                                                                                                  \
        for (; i + 16 <= n; i += 16) { /* whole vectors unmasked, as ROW_LOOP */                                       \
            const __m512 av = _mm512_castsi512_ps(                                                                     \
                _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(ab + i))), 16));         \
            const __m512 bv = _mm512_castsi512_ps(                                                                     \
                _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(bb + i))), 16));         \
            _mm256_storeu_si256((__m256i *)(yb + i), mixrt_v_bf16_rne(v_binary(OP, av, bv)));                         \
        }                                                                                                              \
        if (i < n) {                                                                                                   \
            const __mmask16 m = tail_mask(n - i);                                                                      \
            const __m512 av = _mm512_castsi512_ps(                                                                     \
                _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, ab + i)), 16));                   \
            const __m512 bv = _mm512_castsi512_ps(                                                                     \
                _mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, bb + i)), 16));                   \
            _mm256_mask_storeu_epi16(yb + i, m, mixrt_v_bf16_rne(v_binary(OP, av, bv)));                              \
        }                                                                                                              \
    }

void mixrt_elt_binary_bf16_avx512(enum mixrt_elt_op op, const mixrt_bf16 *a, const mixrt_bf16 *b, mixrt_bf16 *y,
                                  size_t n) {
    const uint16_t *ab = (const uint16_t *)a, *bb = (const uint16_t *)b;
    uint16_t *yb = (uint16_t *)y;
    switch (op) {
    case ELT_ADD: BF16_BIN_LOOP(ELT_ADD) break;
    case ELT_SUB: BF16_BIN_LOOP(ELT_SUB) break;
    case ELT_MUL: BF16_BIN_LOOP(ELT_MUL) break;
    default: BF16_BIN_LOOP(op) break;
    }
}
#undef BF16_BIN_LOOP

void mixrt_elt_affine_row_avx512(const void *x, bool bf, const float *s, const float *b, float *y, size_t n) {
    for (size_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xffff : tail_mask(n - i);
        const __m512 v = bf ? _mm512_castsi512_ps(_mm512_slli_epi32(
                                  _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)x + i)), 16))
                            : _mm512_maskz_loadu_ps(m, (const float *)x + i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, s + i), _mm512_maskz_loadu_ps(m, b + i)));
    }
}

/* One vector of mixrt_elt_affine_rows_avx512: x at xo (m: lanes), the affine, activation ACT,
 * the store (bf16 by vcvtneps2bf16 when HW). */
#define AFFINE_VEC(ACT, HW, m, xo, so, yo)                                                                             \
    do {                                                                                                               \
        __m512 v = bf ? _mm512_castsi512_ps(_mm512_slli_epi32(                                                         \
                            _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, (const uint16_t *)x + (xo))), 16))       \
                      : _mm512_maskz_loadu_ps(m, (const float *)x + (xo));                                             \
        v = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m, s + (so)), _mm512_maskz_loadu_ps(m, b + (so)));                \
        if (ACT == 1) v = _mm512_max_ps(v, zero);                                                                      \
        if (ACT == 2) v = _mm512_min_ps(hi, _mm512_max_ps(lo, v));                                                     \
        if (ACT == 3) v = _mm512_mask_mul_ps(v, _mm512_cmp_ps_mask(v, zero, _CMP_LT_OQ), v, lo);                       \
        if (bf) _mm256_mask_storeu_epi16((uint16_t *)y + (yo), m, HW ? mixrt_v_bf16_hw(v) : mixrt_v_bf16_rne(v));      \
        else _mm512_mask_storeu_ps((float *)y + (yo), m, v);                                                           \
    } while (0)

#define AFFINE_ROWS(ACT, HW)                                                                                           \
    for (size_t r = 0; r < rows; r++) {                                                                                \
        size_t i = 0;                                                                                                  \
        for (; i + 16 <= len; i += 16) AFFINE_VEC(ACT, HW, full, r * len + i, i, r * ld + i);                          \
        if (i < len) AFFINE_VEC(ACT, HW, tm, r * len + i, i, r * ld + i);                                              \
    }

void mixrt_elt_affine_rows_avx512(const void *x, size_t len, size_t rows, bool bf, const float *s, const float *b,
                                  void *y, size_t ld, int act, float p0, float p1, bool hw) {
    const __m512 lo = _mm512_set1_ps(p0), hi = _mm512_set1_ps(p1), zero = _mm512_setzero_ps();
    const __mmask16 full = (__mmask16)0xffff, tm = tail_mask(len % 16);
    switch (act * 2 + (hw && bf)) { /* as the depthwise kernel's epilogue: NaN kept */
    case 2: AFFINE_ROWS(1, 0) break;
    case 3: AFFINE_ROWS(1, 1) break;
    case 4: AFFINE_ROWS(2, 0) break;
    case 5: AFFINE_ROWS(2, 1) break;
    case 6: AFFINE_ROWS(3, 0) break;
    case 7: AFFINE_ROWS(3, 1) break;
    case 1: AFFINE_ROWS(0, 1) break;
    default: AFFINE_ROWS(0, 0) break;
    }
}
#undef AFFINE_ROWS
#undef AFFINE_VEC

void mixrt_elt_silu_bf16_avx512(const float *x, float *y, size_t n) {
    size_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, mixrt_v_silu_bf16(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, mixrt_v_silu_bf16(_mm512_maskz_loadu_ps(m, x + i)));
    }
}
#else
/* Not x86-64: eltwise.c never references these. ISO C wants a declaration here. */
typedef int mixrt_eltwise_avx512_unused;
#endif
