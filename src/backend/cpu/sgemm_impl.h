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

#define MIXRT_SG_NR 16
#define MIXRT_SG_MR 6

enum {
    MIXRT_SG_FIRST = 1, /* C = the block's sum (C not read) */
    MIXRT_SG_LAST = 2,  /* then + bias, + Z */
    MIXRT_SG_RELU = 4,  /* with LAST: x < 0 ? 0 : x (-0 and NaN kept, as the element-wise ReLU) */
    MIXRT_SG_CLIP = 8,  /* with LAST: x < lo ? lo : x, then > hi ? hi (NaN kept, as Clip) */
};

/* One tile: C [mr][nr] (rows ldc apart) from A [mr][kc] (row r at a[r], from the block's first
 * k: a matrix's rows, or a convolution's input pixels, a row of zeros where it is padding) and
 * the panel's block bp [kc][16]. bias: 16 f32 (the panel's, zero padded) or NULL; z: Z
 * at the tile (rows ldz apart) or NULL. Only nr columns of C and Z are touched. mr 1..6, nr
 * 1..16, kc >= 1. lo, hi: MIXRT_SG_CLIP's bounds. */
typedef void (*mixrt_sg_tile_fn)(int mr, int nr, size_t kc, const float *const *a, const float *bp, float *c,
                                 size_t ldc, int flags, const float *bias, const float *z, size_t ldz, float lo,
                                 float hi);
/* Call only where the CPU has AVX2 and FMA. */
void mixrt_sg_tile_avx2(int mr, int nr, size_t kc, const float *const *a, const float *bp, float *c, size_t ldc,
                        int flags, const float *bias, const float *z, size_t ldz, float lo, float hi);

/* Tests: 1 runs the scalar tile for the products that follow, 0 the widest (not thread-safe). */
void mixrt_sgemm_force_scalar(int on);

#endif /* MIXRT_BACKEND_CPU_SGEMM_IMPL_H */
