/* gconv_avx512.c - the AVX-512 row kernels of the grouped convs of G = 4 or 8 input and output
 * channels a group (gconv.c; ResNeXt-50 32x4d's first two stages), for f32 and bf16 X (the body
 * is gconv_avx512_impl.h, included once per dtype). A vector of 16 output
 * channels covers 16 / G groups, and the 16 input channels at the same offset are those groups'
 * inputs: input channel ci of each group is spread over the group's lanes by one permute
 * (vpermilps within the 128-bit lanes for G = 4, vpermps by a constant index for G = 8), then
 * one fma per (tap, ci), in the scalar twin's order (taps, then the group's inputs). Four pixels
 * by 32 channels (G = 4) or by 16 (G = 8: its 8 weight and 8 index vectors fill the registers)
 * a step. Compiled with AVX-512 F/BW/VL/DQ; gconv.c calls it only where the CPU has them and C
 * is a multiple of 16. */
#include "backend/cpu/gconv_impl.h"

#if defined(__x86_64__)
#include <immintrin.h>

/* f32 X */
#define XT float
#define LDX(p) _mm512_loadu_ps(p)
#define GC_FN(name) name##_f32
#define GC_EXPORT(name) name
#include "backend/cpu/gconv_avx512_impl.h"
#undef XT
#undef LDX
#undef GC_FN
#undef GC_EXPORT

/* bf16 X and Z: each vector widened exactly as it is loaded (vpmovzxwd, vpslld) */
#define XT uint16_t
#define LDX(p)                                                                                                         \
    _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(p))), 16))
#define GC_FN(name) name##_bf16
#define GC_EXPORT(name) name##_bf16
#include "backend/cpu/gconv_avx512_impl.h"
#undef XT
#undef LDX
#undef GC_FN
#undef GC_EXPORT

#else
typedef int mixrt_gconv_avx512_unused; /* ISO C wants a declaration in every translation unit */
#endif
