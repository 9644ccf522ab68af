/* gconv_impl.h - private to the grouped channels-last FusedConvs of G = 4 or 8 channels a group
 * (gconv.c: driver and scalar twin; gconv_avx2.c: the AVX2 row kernel of G = 4;
 * gconv_avx512.c: the AVX-512 row kernels of G = 4 and 8) and of G a multiple of 16 in bf16 or
 * f32 (gconv.c too; gconv16_avx512.c: the AVX-512 kernel). */
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

/* gconv16_nhwc's packed W in bf16: per tap, per pair of a group's input channels, per output
 * channel the pair's two weights (word 0 the even channel): [KH * KW][G / 2][C][2], so the 16
 * output channels of a vector have their pair's weights in one 64-byte line. In f32 it is
 * [KH * KW][G][C] f32 (as gconv4 / gconv8's): again one line a vector, tap and unit. */
static inline size_t mixrt_gdp_widx(int64_t c, int64_t g, int64_t tap, int64_t ci, int64_t m) {
    return (((size_t)tap * (size_t)(g / 2) + (size_t)(ci / 2)) * (size_t)c + (size_t)m) * 2 + (size_t)(ci % 2);
}

/* One call of gconv16_nhwc: output rows [oy, oy + rows) of one image, output channels [m0, m0 +
 * 16) (within one group: G is a multiple of 16), every column: y = act(b + sum over taps inside X,
 * and the group's input channels by units, of x w, + z), summed in f32 in the order taps' rows
 * (ky), units, taps' columns (kx). bf16: a unit is a pair of channels, its odd product first
 * (vdpbf16ps's order), then one rounding to bf16 (or an f32 Y for the driver's activations).
 * f32 (X, Z, W and Y): a unit is one channel, each product one fused multiply-add. */
struct mixrt_gdp_call {
    const void *x; /* X of the image, [H][W][C]: bf16, or f32 where f32 */
    const void *z; /* Z of the image, [OH][OW][C] (X's dtype), or NULL */
    void *y;       /* the image's Y [OH][OW][C]: bf16, or f32 where y_f32 (always where f32) */
    bool y_f32, f32;
    const void *w; /* packed: bf16 (mixrt_gdp_widx), or f32 [tap][G][C] where f32 */
    const float *b;    /* [C]: the bias, zeros without one */
    int64_t h, wd, c, g, ow, kh, kw, sh, sw, dh, dw, pt, pl;
    int64_t oy, rows, m0;
    int act; /* enum mixrt_pw_act */
    float p0, p1;
};
/* The AVX-512 kernel (gconv16_avx512.c; CPUs with AVX-512 F/BW/VL/DQ, and AVX512-BF16 for bf16). */
void mixrt_gdp_run_avx512(const struct mixrt_gdp_call *c);

#endif /* MIXRT_BACKEND_CPU_GCONV_IMPL_H */
