/* wino2_impl.h - private to the bf16 Winograd F(2x2, 3x3) channels-last convolution (wino2.c:
 * driver, weight transform and scalar twins; wino2_avx512.c: the AVX-512 transforms).
 *
 * With the points 0, 1, -1 and infinity:
 *   B^T = [1  0 -1  0]   G = [1    0    0  ]   A^T = [1  1  1  0]
 *         [0  1  1  0]       [1/2  1/2  1/2]         [0  1 -1 -1]
 *         [0 -1  1  0]       [1/2 -1/2  1/2]
 *         [0  1  0 -1]       [0    0    1  ]
 * A 4x4 input tile d (rows iy0.., columns ix0..; zeros outside the image: the pads) becomes
 * V = B^T d B, each 3x3 kernel g becomes U = G g G^T, the 16 products V (.) U are summed over
 * the input channels (one bf16 product per position: pwconv's tile kernel, f32 sums), and the
 * 2x2 output tile is A^T M A. V is exact in f32 (sums of four bf16 values) and rounded once to
 * bf16; U is computed in f64 from W and rounded once; A^T M A is in f32. */
#ifndef MIXRT_BACKEND_CPU_WINO2_IMPL_H
#define MIXRT_BACKEND_CPU_WINO2_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/pwconv_impl.h"

#define MIXRT_WINO2_XI 16 /* positions of a transformed tile */

/* One tile's input transform: channels [0, c) of the 4x4 window at (iy0, ix0) of x (one image,
 * [h][w][c] bf16) into position xi's row at v + xi * ld (bf16, c elements each). */
struct mixrt_wino2_in {
    const uint16_t *x;
    int64_t h, w, c, iy0, ix0;
    uint16_t *v;
    size_t ld;
};

/* One tile's output transform: position xi's f32 row of m channels at mm + xi * ld; pixel
 * (a, b) of the 2x2 tile (a < rows, b < cols) at y + a * row + b * m (z's at z + a * zrow +
 * b * m, bf16, or NULL): y = act(A^T M A + bias + z), as bf16, or as f32 when y_f32 (a staging
 * row: the driver applies the activations the transform lacks). bias: at least m floats. */
struct mixrt_wino2_out {
    const float *mm;
    size_t ld;
    int64_t m;
    const float *bias;
    const uint16_t *z;
    void *y;
    bool y_f32;
    size_t row, zrow;
    int rows, cols;
    enum mixrt_pw_act act;
    float p0, p1;
};

/* Call only where the CPU has AVX-512 F/BW/VL/DQ and AVX512-BF16. */
void mixrt_wino2_in_avx512(const struct mixrt_wino2_in *a);
void mixrt_wino2_out_avx512(const struct mixrt_wino2_out *a);

/* Tests: the scalar twins (transforms and products) instead of the AVX-512 ones (and no CPUID
 * refusal in supports); how many runs handed their case to the reference kernel. */
void mixrt_wino2_force_scalar(bool scalar);
/* The fewest input channels supports() takes (64; tests lower it to run small cases). */
void mixrt_wino2_min_channels(int64_t c);
/* Tests: 1 runs every case by the grouped schedule (tile groups a thread), 0 by the blocked one,
 * -1 (default) the grouped one where U is small (wino2.c). */
void mixrt_wino2_force_groups(int on);
unsigned long mixrt_wino2_ref_runs(void);
/* How many weight transforms (U) prepares have made: one per constant W and shape, shared by
 * the nodes that read it. */
unsigned long mixrt_wino2_transforms(void);

#endif /* MIXRT_BACKEND_CPU_WINO2_IMPL_H */
