/* convert_impl.h - the ISA-specific conversion kernels the dispatcher in convert.c picks
 * from (convert_avx512.c, compiled with AVX-512 flags), and the CPUID checks that say
 * whether they may run. Each kernel agrees bit for bit with its scalar _ref twin in
 * mixrt.h for every input; tests call them directly to prove it. */
#ifndef MIXRT_CONVERT_IMPL_H
#define MIXRT_CONVERT_IMPL_H

#include <stdbool.h>

#include "mixrt/mixrt.h"

/* AVX512F + AVX512BW + AVX512VL + F16C usable (CPUID and OS state): the _avx512 kernels. */
bool mixrt_convert_has_avx512(void);
/* The above plus AVX512-BF16: mixrt_f32_to_bf16_avx512bf16. */
bool mixrt_convert_has_avx512bf16(void);

/* Call only when mixrt_convert_has_avx512() (illegal instruction otherwise). */
void mixrt_f32_to_bf16_avx512(const float *src, mixrt_bf16 *dst, size_t n); /* integer RNE */
void mixrt_bf16_to_f32_avx512(const mixrt_bf16 *src, float *dst, size_t n);
void mixrt_f32_to_f16_avx512(const float *src, mixrt_f16 *dst, size_t n);
void mixrt_f16_to_f32_avx512(const mixrt_f16 *src, float *dst, size_t n);
/* Call only when mixrt_convert_has_avx512bf16() (vcvtneps2bf16). */
void mixrt_f32_to_bf16_avx512bf16(const float *src, mixrt_bf16 *dst, size_t n);

#endif
