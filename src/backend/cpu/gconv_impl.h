/* gconv_impl.h - private to the grouped channels-last FusedConv of four channels a group
 * (gconv.c: driver and scalar twin; gconv_avx2.c: the AVX2 row kernel). */
#ifndef MIXRT_BACKEND_CPU_GCONV_IMPL_H
#define MIXRT_BACKEND_CPU_GCONV_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One output row (image n, row oy) of a conv with groups of 4 input and 4 output channels:
 * X [H][W][C] of image n, Y's row [OW][C] (C = M = 4 * groups), W packed f32 [KH * KW][4][C]
 * (tap, input channel of the group, output channel): y[ow][m] = b[m] (+ z[ow][m]) + sum over
 * taps t inside X and ci < 4 of x[ih][iw][m / 4 * 4 + ci] * w[t][ci][m]. */
struct mixrt_gconv_row {
    const float *x, *w, *b, *z; /* z: the residual's row or NULL */
    float *y;
    int64_t h, wd, c, ow, kh, kw, sh, sw, dh, dw, pt, pl, oy;
};

/* The AVX2 row kernel (gconv_avx2.c, x86-64 only; C a multiple of 8). */
void mixrt_gconv4_row_avx2(const struct mixrt_gconv_row *r);

#endif /* MIXRT_BACKEND_CPU_GCONV_IMPL_H */
