/* eltwise_impl.h - what eltwise.c (driver, scalar twins) and eltwise_avx512.c (AVX-512
 * spans) share: the op codes, their parameters, the span kernels on f32 arrays and the
 * polynomial coefficients, so both ISAs evaluate the same formulas in the same order. */
#ifndef MIXRT_BACKEND_CPU_ELTWISE_IMPL_H
#define MIXRT_BACKEND_CPU_ELTWISE_IMPL_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/cpu/fused_conv_impl.h"
#include "core/core.h"

enum mixrt_elt_op {
    /* binary: y = a op b */
    ELT_ADD, ELT_SUB, ELT_MUL, ELT_DIV, ELT_MAX, ELT_MIN,
    /* unary: y = f(x) */
    ELT_RELU, ELT_LEAKY, ELT_SIGMOID, ELT_TANH, ELT_ERF, ELT_EXP, ELT_SQRT, ELT_RECIP, ELT_NEG, ELT_ABS,
    ELT_CLIP, ELT_HARDSIGMOID, ELT_HARDSWISH, ELT_GELU, ELT_GELU_TANH, ELT_SOFTPLUS, ELT_IDENTITY,
    ELT_SQUARE,   /* Pow with exponent 2 */
    ELT_POW_HALF, /* Pow with exponent 0.5: sqrt, but +0 for -0 and +Inf for -Inf as pow() */
    ELT_MISH,     /* x tanh(softplus(x)) */
    ELT_LOG,      /* natural log: NaN below 0, -Inf at 0 */
};

/* LeakyRelu: alpha. HardSigmoid: alpha, beta. Clip: lo, hi (either may be +-Inf). */
struct mixrt_elt_params {
    float alpha, beta, lo, hi;
};

/* y[i] = a[i*sa] op b[i*sb] for i < n, sa and sb each 0 (broadcast one value) or 1. */
typedef void (*mixrt_elt_binary_fn)(enum mixrt_elt_op op, const float *a, int sa, const float *b, int sb, float *y,
                                    size_t n);
/* y[i] = op(x[i]) for i < n; y may equal x. */
typedef void (*mixrt_elt_unary_fn)(enum mixrt_elt_op op, const struct mixrt_elt_params *p, const float *x, float *y,
                                   size_t n);

void mixrt_elt_binary_scalar(enum mixrt_elt_op op, const float *a, int sa, const float *b, int sb, float *y, size_t n);
void mixrt_elt_unary_scalar(enum mixrt_elt_op op, const struct mixrt_elt_params *p, const float *x, float *y,
                            size_t n);
/* Call only when mixrt_elt_has_avx512() (illegal instruction otherwise). */
void mixrt_elt_binary_avx512(enum mixrt_elt_op op, const float *a, int sa, const float *b, int sb, float *y, size_t n);
void mixrt_elt_unary_avx512(enum mixrt_elt_op op, const struct mixrt_elt_params *p, const float *x, float *y,
                            size_t n);

/* The AVX2 + FMA spans (eltwise_avx2.c; Log through the scalar twin). Call only when
 * mixrt_elt_has_avx2(). */
void mixrt_elt_binary_avx2(enum mixrt_elt_op op, const float *a, int sa, const float *b, int sb, float *y, size_t n);
void mixrt_elt_unary_avx2(enum mixrt_elt_op op, const struct mixrt_elt_params *p, const float *x, float *y, size_t n);
/* The spans the kernels use: AVX-512 where mixrt_elt_has_avx512(), else AVX2 where
 * mixrt_elt_has_avx2(), else scalar. */
mixrt_elt_unary_fn mixrt_elt_unary_isa(void);
mixrt_elt_binary_fn mixrt_elt_binary_isa(void);

/* A FusedConv activation (enum mixrt_fconv_act, fused_conv_impl.h; p0, p1 its parameters) in
 * place over v[0..n), by the unary spans above (exact forms) on this CPU's ISA: the kernels that
 * finish an f32 row themselves (conv1x1_gemv, the depthwise kernel's staged rows). */
void mixrt_elt_fconv_act(enum mixrt_fconv_act act, float p0, float p1, float *v, size_t n);
/* y[j] = op(a[j], b[j]) for j < n, binary ops only, both bf16: widened exactly, the op in f32, one
 * rounding as mixrt_f32_to_bf16. Call only when mixrt_elt_has_avx512(). */
void mixrt_elt_binary_bf16_avx512(enum mixrt_elt_op op, const mixrt_bf16 *a, const mixrt_bf16 *b, mixrt_bf16 *y,
                                  size_t n);
/* y[j] = op(g[j], row[j]) (row_first: op(row[j], g[j])) for j < n, binary ops only: g widened
 * exactly, the op in f32, one rounding to bf16 as mixrt_f32_to_bf16. A per-channel operand
 * (squeeze-excite's gate) against rows of channels too long for the staged spans' tiles.
 * Call only when mixrt_elt_has_avx512(). */
void mixrt_elt_binary_row_bf16_avx512(enum mixrt_elt_op op, const mixrt_bf16 *g, const float *row, int row_first,
                                      mixrt_bf16 *y, size_t n);
/* y[j] = x[j] * s[j] + b[j] in f32 for j < n (x f32, or bf16 widened exactly when bf; one fma a
 * value). Call only when mixrt_elt_has_avx512(). */
void mixrt_elt_affine_row_avx512(const void *x, bool bf, const float *s, const float *b, float *y, size_t n);
/* Rows r < rows of x [rows, len] (f32, or bf16 when bf): y[r * ld + j] = act(x * s[j] + b[j]), the
 * output in x's dtype (bf16 rounded once, as mixrt_f32_to_bf16; by vcvtneps2bf16 when hw, which
 * needs AVX512-BF16); act 0 none, 1 ReLU, 2 Clip [p0, p1], 3 LeakyRelu (p0). Call only when
 * mixrt_elt_has_avx512(). */
void mixrt_elt_affine_rows_avx512(const void *x, size_t len, size_t rows, bool bf, const float *s, const float *b,
                                  void *y, size_t ld, int act, float p0, float p1, bool hw);
/* y[i] = x[i] sigmoid(x[i]) to about 1e-4 relative, for values rounded to bf16 next
 * (silu_avx512.h); y may equal x. Call only when mixrt_elt_has_avx512(). */
void mixrt_elt_silu_bf16_avx512(const float *x, float *y, size_t n);
/* y = bf16(x sigmoid(x)) over n values, in parallel (OpenMP): the fast form above where the
 * CPU has AVX-512, else x / (1 + e^-x) in f32; one rounding to bf16 either way. */
void mixrt_elt_silu_to_bf16(const float *x, mixrt_bf16 *y, size_t n);

/* AVX512F/DQ/BW/VL usable and not forced off (MIXRT_ELTWISE_ISA=scalar, read at the first call,
 * or the test hook). */
bool mixrt_elt_has_avx512(void);
/* AVX2 and FMA usable and not forced off (as above). */
bool mixrt_elt_has_avx2(void);
/* Test hook: true makes the kernels use the scalar twins from now on (process-wide). */
void mixrt_elt_force_scalar(bool on);
/* Test hook: true makes the span kernels use the AVX2 twins where the CPU has AVX2 and FMA
 * (process-wide; the AVX-512-only kernels are not affected). */
void mixrt_elt_force_avx2(bool on);
/* "avx512", "avx2" or "scalar": the spans the kernels use now. */
const char *mixrt_elt_isa(void);

/* ---- shared constants of the transcendental approximations ----
 * exp(x) = 2^n * e^r, n = round(x*log2(e)), r = x - n*ln2 (Cody-Waite split: n*LN2_HI is
 * exact for |n| <= 256), e^r by its Taylor series to r^7 (|r| <= 0.35: truncation 6e-9). */
#define ELT_LOG2E 1.44269504f
#define ELT_LN2_HI 0.693359375f
#define ELT_LN2_LO (-2.12194440e-4f)
#define ELT_EXP_LO (-104.0f) /* exp below underflows to 0 in f32 */
#define ELT_EXP_HI 89.0f     /* exp above overflows to +Inf */
MIXRT_UNUSED static const float ELT_EXP_P[8] = {1.0f, 1.0f, 0.5f, 1.66666672e-1f, 4.16666679e-2f, 8.33333377e-3f, 1.38888892e-3f,
                                   1.98412701e-4f};
/* erf(z) = z * P(z^2) for |z| < 1 (fitted here by weighted least squares, rel error 3e-9). */
MIXRT_UNUSED static const float ELT_ERF_P[7] = {1.12837911f,    -0.37612626f,     0.112835869f,    -0.0268541109f,
                                   0.00518919621f, -0.000801988936f, 7.89163096e-05f};
/* tanh(x) = x * P(x^2) for |x| < 0.55 (fitted, rel error 2e-9); above, 1 - 2/(e^2|x| + 1). */
MIXRT_UNUSED static const float ELT_TANH_P[6] = {1.0f, -0.333333105f, 0.133324668f, -0.0538453422f, 0.0210550688f,
                                    -0.00626169611f};
/* The normal tail: h(t) = e^(t^2/2) * erfc(t/sqrt2) = F(1/t) / t for t >= sqrt2, so that
 * erfc(z) = e^-z^2 h(sqrt2 z) and Phi(-t) = e^(-t^2/2) h(t) / 2 need no 1 - erf cancellation.
 * F fitted in two pieces: t < 4 (degree 8, rel error 3e-8) and t >= 4 (degree 6). */
#define ELT_TAIL_SPLIT 4.0f
MIXRT_UNUSED static const float ELT_TAIL_P0[9] = {0.796902597f, 0.0195814874f, -0.954790294f, 0.576557875f, 2.06947803f,
                                     -5.28633022f, 5.8215518f,    -3.30916142f,  0.790795505f};
MIXRT_UNUSED static const float ELT_TAIL_P1[9] = {0.797892332f, -0.000465724646f, -0.786067426f, -0.164659932f, 3.75671172f,
                                     -6.63573551f, 4.16489935f,      0.0f,          0.0f};
/* log1p(y) = 2 atanh(s), s = y/(2+y) in [0, 1/3] for y in [0, 1]: 2s * sum s^2k/(2k+1), k <= 8
 * (truncation 2e-10). Used by Softplus with y = e^-|x|. */
MIXRT_UNUSED static const float ELT_LOG1P_P[9] = {1.0f,        3.33333343e-1f, 2.0e-1f,        1.42857149e-1f, 1.11111112e-1f,
                                     9.09090936e-2f, 7.69230798e-2f, 6.66666701e-2f, 5.88235296e-2f};
#define ELT_SQRT2 1.41421354f
#define ELT_SQRT1_2 0.707106769f
#define ELT_GELU_C 0.797884583f /* sqrt(2/pi) */
#define ELT_GELU_K 0.044715f

#endif /* MIXRT_BACKEND_CPU_ELTWISE_IMPL_H */
