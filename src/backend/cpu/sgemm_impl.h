/* sgemm_impl.h - private to the packed f32 product (sgemm.c: driver, packing, scalar tile,
 * kernel table; sgemm_avx2.c: the AVX2 + FMA tile).
 *
 * B (a constant) is packed once into panels of MIXRT_SG_NR columns: panel p holds B[k][16p + j]
 * at bp[(p * K + k) * 16 + j], columns past N zero. A tile computes up to MIXRT_SG_MR rows by one
 * panel over a K block [k0, k0 + kc). Every element is one f32 sum over the block in order of k
 * (one fma per k, from zero), added to C unless the block is the first; the last block then
 * adds the bias and Z (in that order) and applies ReLU when asked. The scalar and the AVX2 tiles
 * do exactly these operations, so their results are equal bit for bit. */
#ifndef MIXRT_BACKEND_CPU_SGEMM_IMPL_H
#define MIXRT_BACKEND_CPU_SGEMM_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MIXRT_SG_NR 16
#define MIXRT_SG_MR 6
#define MIXRT_SG_NP512 4 /* panels the AVX-512 tile takes at once */

enum {
    MIXRT_SG_FIRST = 1, /* C = the block's sum (C not read) */
    MIXRT_SG_LAST = 2,  /* then + bias, + Z */
    MIXRT_SG_RELU = 4,  /* with LAST: x < 0 ? 0 : x (-0 and NaN kept, as the element-wise ReLU) */
    MIXRT_SG_CLIP = 8,  /* with LAST: x < lo ? lo : x, then > hi ? hi (NaN kept, as Clip) */
};

/* One tile: C [mr][nr] (rows ldc apart) from A [mr][kc] (row r at a[r], from the block's first
 * k: a matrix's rows, or a convolution's input pixels, a row of zeros where it is padding) and
 * the blocks bp [kc][16] of the ceil(nr / 16) panels it spans, ps floats apart (panel q's at
 * bp + q * ps, for C's columns 16q..16q+15). bias: 16 f32 a panel (zero padded) or NULL; z: Z
 * at the tile (rows ldz apart) or NULL. Only nr columns of C and Z are touched. mr 1..6, nr
 * 1..16 (AVX2) or 1..16 * MIXRT_SG_NP512 (AVX-512, scalar), kc >= 0. lo, hi: MIXRT_SG_CLIP's
 * bounds. */
typedef void (*mixrt_sg_tile_fn)(int mr, int nr, size_t kc, const float *const *a, const float *bp, size_t ps,
                                 float *c, size_t ldc, int flags, const float *bias, const float *z, size_t ldz,
                                 float lo, float hi);
/* Call only where the CPU has AVX2 and FMA (one panel: nr <= 16). */
void mixrt_sg_tile_avx2(int mr, int nr, size_t kc, const float *const *a, const float *bp, size_t ps, float *c,
                        size_t ldc, int flags, const float *bias, const float *z, size_t ldz, float lo, float hi);
/* Call only where the CPU has AVX-512F (up to MIXRT_SG_NP512 panels). */
void mixrt_sg_tile_avx512(int mr, int nr, size_t kc, const float *const *a, const float *bp, size_t ps, float *c,
                          size_t ldc, int flags, const float *bias, const float *z, size_t ldz, float lo, float hi);

/* Winograd F(4x4, 3x3) (conv_wino, sgemm.c) with the points 0, +-1, +-2 and infinity:
 *   B^T = [4 0 -5 0 1 0; 0 -4 -4 1 1 0; 0 4 -4 -1 1 0; 0 -2 -1 2 1 0; 0 2 -1 -2 1 0; 0 4 0 -5 0 1]
 *   G   = [1/4 0 0; -1/6 -1/6 -1/6; -1/6 1/6 -1/6; 1/24 1/12 1/6; 1/24 -1/12 1/6; 0 0 1]
 *   A^T = [1 1 1 1 1 0; 0 1 -1 2 -2 0; 0 1 1 4 4 0; 0 1 -1 8 -8 1]
 * The 36 transformed values of a tile are 36 matrices, ld floats apart; within each, a tile's
 * row (its channels) starts at the pointer given.
 * in: the 6x6 input tile at (iy0, ix0) of an image x [h][w][c] (zeros outside) -> v.
 * out: tile rows mm (mc channels each) -> A^T M A (+ bias, + Z) at y, output pixels mc floats
 * apart and rows row_stride apart, the first rows x cols of the 4x4 tile only; bias padded to a
 * multiple of 16 or NULL, z laid out as y or NULL. Call only where the CPU has AVX2 and FMA. */
void mixrt_wino_in_avx2(const float *x, int64_t h, int64_t w, int64_t c, int64_t iy0, int64_t ix0, float *v,
                        size_t ld);
void mixrt_wino_out_avx2(const float *mm, size_t ld, int64_t mc, const float *bias, const float *z, float *y,
                         size_t row_stride, int rows, int cols);
/* The same (equal bits, 16 channels a vector); call only where the CPU has AVX-512F. */
void mixrt_wino_in_avx512(const float *x, int64_t h, int64_t w, int64_t c, int64_t iy0, int64_t ix0, float *v,
                          size_t ld);
void mixrt_wino_out_avx512(const float *mm, size_t ld, int64_t mc, const float *bias, const float *z, float *y,
                           size_t row_stride, int rows, int cols);

/* Winograd F(2x2, 3x3) (conv_wino2, sgemm.c) with the points 0, +-1 and infinity:
 *   B^T = [1 0 -1 0; 0 1 1 0; 0 -1 1 0; 0 1 0 -1]
 *   G   = [1 0 0; 1/2 1/2 1/2; 1/2 -1/2 1/2; 0 0 1]
 *   A^T = [1 1 1 0; 0 1 -1 -1]
 * As above with 4x4 input tiles (16 matrices) and 2x2 output tiles: 16 / 9 the weights' bytes
 * for 2.25x fewer multiplications, where F(4x4, 3x3) takes 4x the bytes for 4x. */
void mixrt_wino2f_in_avx2(const float *x, int64_t h, int64_t w, int64_t c, int64_t iy0, int64_t ix0, float *v,
                          size_t ld);
void mixrt_wino2f_out_avx2(const float *mm, size_t ld, int64_t mc, const float *bias, const float *z, float *y,
                           size_t row_stride, int rows, int cols);
void mixrt_wino2f_in_avx512(const float *x, int64_t h, int64_t w, int64_t c, int64_t iy0, int64_t ix0, float *v,
                            size_t ld);
void mixrt_wino2f_out_avx512(const float *mm, size_t ld, int64_t mc, const float *bias, const float *z, float *y,
                             size_t row_stride, int rows, int cols);

/* Tests: 1 runs the scalar tile for the products that follow, 2 the AVX2 one, 0 the widest the
 * CPU has (not thread-safe). */
void mixrt_sgemm_force_scalar(int on);
/* Tests: conv_sgemm takes 1x1 convs with a residual Z also where oneDNN is built in. */
void mixrt_sgemm_conv_z1x1(bool take);

#endif /* MIXRT_BACKEND_CPU_SGEMM_IMPL_H */
