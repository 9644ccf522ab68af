/* eltwise_avx2.c - AVX2 + FMA spans of the element-wise kernels for x86-64 CPUs without
 * AVX-512: 8 f32 lanes, tails through a padded copy. Invariant: as eltwise_avx512.c, every
 * op evaluates its scalar twin's formula (eltwise.c) with the same coefficients
 * (eltwise_impl.h) in the same order, and NaN inputs come out NaN; Log goes to the scalar
 * twin (no getexp / getmant here). Compiled with -mavx2 -mfma; called only after the CPUID
 * check (mixrt_elt_has_avx2). */
#include "backend/cpu/eltwise_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>
#include <string.h>

#define V1(c) _mm256_set1_ps(c)

static inline __m256 v_abs(__m256 x) { return _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff))); }
static inline __m256 v_signbit(__m256 x) {
    return _mm256_and_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)));
}
/* |r| with the sign bit of s. */
static inline __m256 v_copysign(__m256 r, __m256 s) { return _mm256_or_ps(v_abs(r), v_signbit(s)); }
static inline __m256 v_isnan(__m256 x) { return _mm256_cmp_ps(x, x, _CMP_UNORD_Q); }
static inline __m256 v_nanfix(__m256 r, __m256 x) { return _mm256_blendv_ps(r, _mm256_add_ps(x, x), v_isnan(x)); }
static inline __m256 v_lt(__m256 a, __m256 b) { return _mm256_cmp_ps(a, b, _CMP_LT_OQ); }
static inline bool v_any(__m256 m) { return _mm256_movemask_ps(m) != 0; }
static inline bool v_all(__m256 m) { return _mm256_movemask_ps(m) == 0xff; }

/* Horner from the highest coefficient: c[0] + c[1] x + ... + c[n-1] x^(n-1). */
static inline __m256 v_poly(const float *c, int n, __m256 x) {
    __m256 p = V1(c[n - 1]);
    for (int i = n - 2; i >= 0; i--) p = _mm256_fmadd_ps(p, x, V1(c[i]));
    return p;
}

/* e^x, NaN lanes unspecified (callers fix them). 2^n as 2^h 2^(n - h), h = floor(n / 2):
 * both factors normal for n in [-150, 128] (x held to [ELT_EXP_LO, ELT_EXP_HI]), so underflow
 * and overflow come out as the AVX-512 twin's vscalefps gives them. */
static inline __m256 v_exp_raw(__m256 x) {
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, V1(ELT_EXP_LO)), V1(ELT_EXP_HI));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(xc, V1(ELT_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, V1(ELT_LN2_HI), xc);
    r = _mm256_fnmadd_ps(n, V1(ELT_LN2_LO), r);
    __m256i ni = _mm256_cvtps_epi32(n), h = _mm256_srai_epi32(ni, 1), bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(h, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_sub_epi32(ni, h), bias), 23));
    return _mm256_mul_ps(_mm256_mul_ps(v_poly(ELT_EXP_P, 8, r), s1), s2);
}

/* e^(-scale t*t) for t >= 0 finite, the rounding error of t*t put back (see the AVX-512 twin). */
static inline __m256 v_exp_neg_sq(__m256 t, float scale) {
    __m256 t2 = _mm256_mul_ps(t, t);
    __m256 e = _mm256_fmsub_ps(t, t, t2);
    __m256 s = V1(scale);
    return _mm256_mul_ps(v_exp_raw(_mm256_mul_ps(s, _mm256_sub_ps(_mm256_setzero_ps(), t2))),
                         _mm256_fnmadd_ps(s, e, V1(1.0f)));
}

/* h(t) = F(1/t)/t (see eltwise_impl.h), t >= sqrt2. */
static inline __m256 v_tail(__m256 t) {
    __m256 v = _mm256_div_ps(V1(1.0f), t);
    __m256 far = _mm256_cmp_ps(t, V1(ELT_TAIL_SPLIT), _CMP_GE_OQ);
    __m256 p = _mm256_blendv_ps(V1(ELT_TAIL_P0[8]), V1(ELT_TAIL_P1[8]), far);
    for (int i = 7; i >= 0; i--) p = _mm256_fmadd_ps(p, v, _mm256_blendv_ps(V1(ELT_TAIL_P0[i]), V1(ELT_TAIL_P1[i]), far));
    return _mm256_mul_ps(p, v);
}

static inline __m256 v_erf(__m256 x) {
    __m256 a = v_abs(x), small = v_lt(a, V1(1.0f));
    __m256 r = _mm256_setzero_ps();
    if (v_any(small)) r = _mm256_mul_ps(x, v_poly(ELT_ERF_P, 7, _mm256_mul_ps(x, x)));
    if (!v_all(small)) {
        __m256 ac = _mm256_min_ps(a, V1(6.0f));
        __m256 q = _mm256_mul_ps(v_exp_neg_sq(ac, 1.0f), v_tail(_mm256_mul_ps(ac, V1(ELT_SQRT2))));
        r = _mm256_blendv_ps(v_copysign(_mm256_sub_ps(V1(1.0f), q), x), r, small);
    }
    return v_nanfix(r, x);
}

static inline __m256 v_tanh(__m256 x) {
    __m256 a = v_abs(x), small = v_lt(a, V1(0.55f));
    __m256 r = _mm256_setzero_ps();
    if (v_any(small)) r = _mm256_mul_ps(x, v_poly(ELT_TANH_P, 6, _mm256_mul_ps(x, x)));
    if (!v_all(small)) {
        __m256 e = v_exp_raw(_mm256_mul_ps(_mm256_min_ps(a, V1(10.0f)), V1(2.0f)));
        __m256 t = _mm256_sub_ps(V1(1.0f), _mm256_div_ps(V1(2.0f), _mm256_add_ps(e, V1(1.0f))));
        r = _mm256_blendv_ps(v_copysign(t, x), r, small);
    }
    return v_nanfix(r, x);
}

static inline __m256 v_sigmoid(__m256 x) {
    __m256 e = v_exp_raw(_mm256_sub_ps(_mm256_setzero_ps(), v_abs(x)));
    __m256 d = _mm256_add_ps(V1(1.0f), e);
    __m256 num = _mm256_blendv_ps(V1(1.0f), e, v_lt(x, _mm256_setzero_ps()));
    return v_nanfix(_mm256_div_ps(num, d), x);
}

static inline __m256 v_gelu(__m256 x) {
    __m256 a = v_abs(x), small = v_lt(a, V1(ELT_SQRT2));
    __m256 phi = _mm256_setzero_ps();
    if (v_any(small)) {
        __m256 z = _mm256_mul_ps(x, V1(ELT_SQRT1_2));
        __m256 erfv = _mm256_mul_ps(z, v_poly(ELT_ERF_P, 7, _mm256_mul_ps(z, z)));
        phi = _mm256_fmadd_ps(V1(0.5f), erfv, V1(0.5f));
    }
    if (!v_all(small)) {
        __m256 t = _mm256_min_ps(a, V1(15.0f));
        __m256 q = _mm256_mul_ps(_mm256_mul_ps(V1(0.5f), v_exp_neg_sq(t, 0.5f)), v_tail(t));
        __m256 big = _mm256_blendv_ps(_mm256_sub_ps(V1(1.0f), q), q, v_lt(x, _mm256_setzero_ps()));
        phi = _mm256_blendv_ps(big, phi, small);
    }
    return v_nanfix(_mm256_mul_ps(x, phi), x);
}

/* x sigmoid(2y) with 2y carried as hi + lo (see the AVX-512 twin). */
static inline __m256 v_gelu_tanh(__m256 x) {
    __m256 one = V1(1.0f), k = V1(ELT_GELU_K), c2 = V1(2.0f * ELT_GELU_C);
    __m256 xc = _mm256_min_ps(_mm256_max_ps(x, V1(-12.0f)), V1(12.0f));
    __m256 x2 = _mm256_mul_ps(xc, xc), x2e = _mm256_fmsub_ps(xc, xc, x2);
    __m256 w = _mm256_fmadd_ps(k, x2, one);
    __m256 we = _mm256_fmadd_ps(k, x2e, _mm256_fmadd_ps(k, x2, _mm256_sub_ps(one, w)));
    __m256 v = _mm256_mul_ps(xc, w), ve = _mm256_fmadd_ps(xc, we, _mm256_fmsub_ps(xc, w, v));
    __m256 y = _mm256_mul_ps(c2, v), ye = _mm256_fmadd_ps(c2, ve, _mm256_fmsub_ps(c2, v, y));
    __m256 sye = _mm256_xor_ps(ye, v_signbit(y));
    __m256 e = v_exp_raw(_mm256_sub_ps(_mm256_setzero_ps(), v_abs(y)));
    e = _mm256_fnmadd_ps(e, sye, e);
    __m256 sig = _mm256_div_ps(_mm256_blendv_ps(one, e, v_lt(y, _mm256_setzero_ps())), _mm256_add_ps(one, e));
    return v_nanfix(_mm256_mul_ps(x, sig), x);
}

static inline __m256 v_softplus(__m256 x) {
    __m256 e = v_exp_raw(_mm256_sub_ps(_mm256_setzero_ps(), v_abs(x)));
    __m256 s = _mm256_div_ps(e, _mm256_add_ps(V1(2.0f), e));
    __m256 lp = _mm256_mul_ps(_mm256_add_ps(s, s), v_poly(ELT_LOG1P_P, 9, _mm256_mul_ps(s, s)));
    __m256 pos = _mm256_cmp_ps(x, _mm256_setzero_ps(), _CMP_GT_OQ);
    return v_nanfix(_mm256_add_ps(_mm256_and_ps(pos, x), lp), x);
}

static inline __m256 v_mish(__m256 x) {
    __m256 u = v_exp_raw(_mm256_min_ps(x, V1(20.0f)));
    __m256 n = _mm256_mul_ps(u, _mm256_add_ps(u, V1(2.0f)));
    __m256 y = _mm256_mul_ps(x, _mm256_div_ps(n, _mm256_add_ps(n, V1(2.0f))));
    __m256 tail = _mm256_mul_ps(_mm256_mul_ps(x, v_exp_raw(_mm256_add_ps(x, V1(40.0f)))), V1(4.2483542552915889e-18f));
    return v_nanfix(_mm256_blendv_ps(y, tail, v_lt(x, V1(-20.0f))), x);
}

static inline __m256 v_unary(enum mixrt_elt_op op, const struct mixrt_elt_params *p, __m256 x) {
    __m256 zero = _mm256_setzero_ps();
    switch (op) {
    case ELT_RELU: return _mm256_andnot_ps(v_lt(x, zero), x); /* keeps -0, NaN */
    case ELT_LEAKY: return _mm256_blendv_ps(x, _mm256_mul_ps(x, V1(p->alpha)), v_lt(x, zero));
    case ELT_SIGMOID: return v_sigmoid(x);
    case ELT_TANH: return v_tanh(x);
    case ELT_ERF: return v_erf(x);
    case ELT_EXP: return v_nanfix(v_exp_raw(x), x);
    case ELT_SQRT: return _mm256_sqrt_ps(x);
    case ELT_RECIP: return _mm256_div_ps(V1(1.0f), x);
    case ELT_NEG: return _mm256_xor_ps(x, _mm256_castsi256_ps(_mm256_set1_epi32((int)0x80000000u)));
    case ELT_ABS: return v_abs(x);
    case ELT_CLIP: {
        __m256 r = _mm256_blendv_ps(x, V1(p->lo), v_lt(x, V1(p->lo)));
        return _mm256_blendv_ps(r, V1(p->hi), _mm256_cmp_ps(r, V1(p->hi), _CMP_GT_OQ));
    }
    case ELT_HARDSIGMOID:
        /* min(v, 1) as the AVX-512 twin: vminps gives its second operand (1) for a NaN v */
        return _mm256_max_ps(_mm256_min_ps(_mm256_fmadd_ps(V1(p->alpha), x, V1(p->beta)), V1(1.0f)), zero);
    case ELT_HARDSWISH:
        return _mm256_mul_ps(
            x, _mm256_max_ps(_mm256_min_ps(_mm256_mul_ps(_mm256_add_ps(x, V1(3.0f)), V1(1.0f / 6.0f)), V1(1.0f)), zero));
    case ELT_GELU: return v_gelu(x);
    case ELT_GELU_TANH: return v_gelu_tanh(x);
    case ELT_SOFTPLUS: return v_softplus(x);
    case ELT_MISH: return v_mish(x);
    case ELT_SQUARE: return _mm256_mul_ps(x, x);
    case ELT_POW_HALF: {
        __m256 r = _mm256_sqrt_ps(_mm256_add_ps(x, zero)); /* -0 + 0 = +0 */
        return _mm256_blendv_ps(r, V1(__builtin_inff()), _mm256_cmp_ps(x, V1(-__builtin_inff()), _CMP_EQ_OQ));
    }
    default: return x; /* ELT_IDENTITY */
    }
}

void mixrt_elt_unary_avx2(enum mixrt_elt_op op, const struct mixrt_elt_params *p, const float *x, float *y, size_t n) {
    if (op == ELT_LOG) {
        mixrt_elt_unary_scalar(op, p, x, y, n);
        return;
    }
    size_t i = 0;
    switch (op) {
#define UCASE(OP)                                                                                                      \
    case OP:                                                                                                           \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, v_unary(OP, p, _mm256_loadu_ps(x + i)));                    \
        break;
        UCASE(ELT_RELU) UCASE(ELT_LEAKY) UCASE(ELT_SIGMOID) UCASE(ELT_TANH) UCASE(ELT_ERF) UCASE(ELT_EXP)
        UCASE(ELT_SQRT) UCASE(ELT_RECIP) UCASE(ELT_NEG) UCASE(ELT_ABS) UCASE(ELT_CLIP) UCASE(ELT_HARDSIGMOID)
        UCASE(ELT_HARDSWISH) UCASE(ELT_GELU) UCASE(ELT_GELU_TANH) UCASE(ELT_SOFTPLUS) UCASE(ELT_SQUARE)
        UCASE(ELT_POW_HALF) UCASE(ELT_MISH)
#undef UCASE
    default:
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, _mm256_loadu_ps(x + i));
        break;
    }
    if (i < n) {
        float t[8] = {0};
        memcpy(t, x + i, (n - i) * sizeof(float));
        _mm256_storeu_ps(t, v_unary(op, p, _mm256_loadu_ps(t)));
        memcpy(y + i, t, (n - i) * sizeof(float));
    }
}

static inline __m256 v_binary(enum mixrt_elt_op op, __m256 a, __m256 b) {
    switch (op) {
    case ELT_ADD: return _mm256_add_ps(a, b);
    case ELT_SUB: return _mm256_sub_ps(a, b);
    case ELT_MUL: return _mm256_mul_ps(a, b);
    case ELT_DIV: return _mm256_div_ps(a, b);
    /* b where b > a (or b < a) or b is NaN, else a (see the AVX-512 twin) */
    case ELT_MAX: return _mm256_blendv_ps(a, b, _mm256_or_ps(_mm256_cmp_ps(b, a, _CMP_GT_OQ), v_isnan(b)));
    case ELT_MIN: return _mm256_blendv_ps(a, b, _mm256_or_ps(_mm256_cmp_ps(b, a, _CMP_LT_OQ), v_isnan(b)));
    default: return a;
    }
}

#define BIN_LOOP(OP, LA, LB)                                                                                           \
    do {                                                                                                               \
        for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, v_binary(OP, LA, LB));                                      \
    } while (0)

void mixrt_elt_binary_avx2(enum mixrt_elt_op op, const float *a, int sa, const float *b, int sb, float *y, size_t n) {
    size_t i = 0;
    __m256 a0 = sa ? _mm256_setzero_ps() : V1(a[0]), b0 = sb ? _mm256_setzero_ps() : V1(b[0]);
    switch (op) {
#define BCASE(OP)                                                                                                      \
    case OP:                                                                                                           \
        if (sa && sb) BIN_LOOP(OP, _mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i));                                    \
        else if (sa) BIN_LOOP(OP, _mm256_loadu_ps(a + i), b0);                                                         \
        else if (sb) BIN_LOOP(OP, a0, _mm256_loadu_ps(b + i));                                                         \
        else BIN_LOOP(OP, a0, b0);                                                                                     \
        break;
        BCASE(ELT_ADD) BCASE(ELT_SUB) BCASE(ELT_MUL) BCASE(ELT_DIV) BCASE(ELT_MAX) BCASE(ELT_MIN)
#undef BCASE
    default: break;
    }
    while (i < n) { /* the tail (and every lane of an op without a loop above) */
        size_t k = n - i < 8 ? n - i : 8;
        float ta[8] = {0}, tb[8] = {0}, ty[8];
        if (sa) memcpy(ta, a + i, k * sizeof(float));
        if (sb) memcpy(tb, b + i, k * sizeof(float));
        _mm256_storeu_ps(ty, v_binary(op, sa ? _mm256_loadu_ps(ta) : a0, sb ? _mm256_loadu_ps(tb) : b0));
        memcpy(y + i, ty, k * sizeof(float));
        i += k;
    }
}
#else
typedef int mixrt_eltwise_avx2_unused; /* ISO C: a translation unit needs a declaration */
#endif
