/* convert_impl.h - the ISA-specific conversion kernels the dispatcher in convert.c picks
 * from (convert_avx512.c, compiled with AVX-512 flags; called only after CPUID says so). */
#ifndef MIXRT_CONVERT_IMPL_H
#define MIXRT_CONVERT_IMPL_H

#include "mixrt/mixrt.h"

void mixrt_f32_to_bf16_avx512bf16(const float *src, mixrt_bf16 *dst, size_t n);
void mixrt_bf16_to_f32_avx512(const mixrt_bf16 *src, float *dst, size_t n);
void mixrt_f32_to_f16_avx512(const float *src, mixrt_f16 *dst, size_t n);
void mixrt_f16_to_f32_avx512(const mixrt_f16 *src, float *dst, size_t n);

#endif
