/* gconv_impl.h - private to the grouped channels-last FusedConvs of G = 4 or 8 channels a group
 * (gconv.c: driver and scalar twin; gconv_avx2.c: the AVX2 row kernel of G = 4;
 * gconv_avx512.c: the AVX-512 row kernels of G = 4 and 8). */
#ifndef MIXRT_BACKEND_CPU_GCONV_IMPL_H
#define MIXRT_BACKEND_CPU_GCONV_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One output row (image n, row oy) of a conv with groups of G input and G output channels:
 * X [H][W][C] of image n, Y's row [OW][C] (C = M = G * groups), W packed f32 [KH * KW][G][C]
 * (tap, input channel of the group, output channel): y[ow][m] = b[m] (+ z[ow][m]) + sum over
 * taps t inside X and ci < G of x[ih][iw][m / G * G + ci] * w[t][ci][m]. */
struct mixrt_gconv_row {
    const void *x, *z; /* X and the residual's row (or NULL): f32, or bf16 where xbf16 */
    const float *w, *b;
    float *y; /* f32 (a bf16 Y is rounded from it by the caller) */
    bool xbf16;
    int64_t h, wd, c, ow, kh, kw, sh, sw, dh, dw, pt, pl, oy;
    int64_t g; /* G: channels a group */
};

/* The AVX2 row kernel of G = 4 (gconv_avx2.c, x86-64 only; C a multiple of 8; f32 X only). */
void mixrt_gconv4_row_avx2(const struct mixrt_gconv_row *r);
/* The AVX-512 row kernels of G = 4 and G = 8 (gconv_avx512.c, x86-64 only; C a multiple of 16;
 * call only where the CPU has AVX-512 F/BW/VL/DQ): f32 X and Z, and (_bf16) bf16 X and Z. */
void mixrt_gconv4_row_avx512(const struct mixrt_gconv_row *r);
void mixrt_gconv8_row_avx512(const struct mixrt_gconv_row *r);
void mixrt_gconv4_row_avx512_bf16(const struct mixrt_gconv_row *r);
void mixrt_gconv8_row_avx512_bf16(const struct mixrt_gconv_row *r);

#endif /* MIXRT_BACKEND_CPU_GCONV_IMPL_H */
