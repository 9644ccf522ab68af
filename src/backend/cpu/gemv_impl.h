/* gemv_impl.h - private to the small-row 1x1 convolution (gemv.c: driver and scalar span;
 * gemv_avx512.c: the AVX-512 span). */
#ifndef MIXRT_BACKEND_CPU_GEMV_IMPL_H
#define MIXRT_BACKEND_CPU_GEMV_IMPL_H

#include <stddef.h>
#include <stdint.h>

/* y[j] += sum_i x[i] w[i * m + j] for j < m (f32; the products in order of i, one fma each).
 * Call only where the CPU has AVX-512F. */
void mixrt_gemv_row_avx512(const float *x, size_t k, const float *w, size_t m, float *y);
/* The same with w in bf16 (bits; widened exactly). */
void mixrt_gemv_row_bf16w_avx512(const float *x, size_t k, const uint16_t *w, size_t m, float *y);
/* Tests: the scalar span (and the scalar element-wise activations' dispatch left as is) for the
 * runs that follow (not thread-safe). */
void mixrt_gemv_force_scalar(int on);

#endif /* MIXRT_BACKEND_CPU_GEMV_IMPL_H */
