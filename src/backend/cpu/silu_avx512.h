/* silu_avx512.h - x sigmoid(x) for values rounded to bf16 next (and HardSwish), as inlines for the AVX-512
 * translation units (compiled with MIXRT_AVX512_FLAGS; include from nowhere else). The
 * depthwise kernel's epilogue and the element-wise span after oneDNN's bf16 convolutions
 * (eltwise_avx512.c) share it, so both round the same values the same way. */
#ifndef MIXRT_BACKEND_CPU_SILU_AVX512_H
#define MIXRT_BACKEND_CPU_SILU_AVX512_H

#include <immintrin.h>

/* e^-x = 2^t with t = -x log2(e), held at or above -150 (2^t is then 0 and the result x, +Inf
 * included); 2^(t - n) for n = round(t) by a degree-4 polynomial fitted here for relative error
 * (2.7e-6 on [-1/2, 1/2]); 1 / (1 + 2^t) by vrcp14ps (2^-14). Under 1e-4 relative in all,
 * against bf16's half ulp of 2^-9; where bf16 results are not wanted the exact form is used.
 * Past t = 128 the sum is +Inf and the result -0 (the true value is below 1e-36 in magnitude);
 * NaN stays NaN (max keeps the bound, the last product carries x). */
static inline __attribute__((always_inline)) __m512 mixrt_v_silu_bf16(__m512 x) {
    const __m512 t = _mm512_max_ps(_mm512_mul_ps(x, _mm512_set1_ps(-1.44269504f)), _mm512_set1_ps(-150.0f));
    const __m512 n = _mm512_roundscale_ps(t, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m512 f = _mm512_sub_ps(t, n);
    __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(0.009569965f), f, _mm512_set1_ps(0.055917505f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.24024744f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.69312185f));
    p = _mm512_fmadd_ps(p, f, _mm512_set1_ps(0.99999928f));
    const __m512 d = _mm512_add_ps(_mm512_scalef_ps(p, n), _mm512_set1_ps(1.0f));
    return _mm512_mul_ps(x, _mm512_rcp14_ps(d));
}

/* HardSwish as the element-wise kernel computes it: x min(max((x + 3) / 6, 0), 1) (no
 * cancellation near -3); the depthwise and pointwise conv epilogues share it. */
static inline __attribute__((always_inline)) __m512 mixrt_v_hardswish(__m512 x) {
    const __m512 h = _mm512_mul_ps(_mm512_add_ps(x, _mm512_set1_ps(3.0f)), _mm512_set1_ps(1.0f / 6.0f));
    return _mm512_mul_ps(x, _mm512_max_ps(_mm512_min_ps(h, _mm512_set1_ps(1.0f)), _mm512_setzero_ps()));
}

#endif /* MIXRT_BACKEND_CPU_SILU_AVX512_H */
