/* stemconv_impl.h - private to the few-input-channel channels-last FusedConv kernel (stemconv.c:
 * driver and scalar twin; stemconv_avx512.c: the AVX-512 row kernel): one output row's
 * operands. */
#ifndef MIXRT_BACKEND_CPU_STEMCONV_IMPL_H
#define MIXRT_BACKEND_CPU_STEMCONV_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/cpu/pwconv_impl.h"

/* Input channels this kernel takes (an image's RGB or RGBA: every network's first conv). */
#define MIXRT_STEM_MAX_C 4
/* Output channels a block of the packed weights (one AVX-512 vector of f32). */
#define MIXRT_STEM_MBLK 16

/* One output row: y[ox][j] = act(b[j] + sum over the taps inside X of x * w), the products and
 * sums in f32, the taps in the order kh, kw, c. */
struct mixrt_stem_row {
    const float *xrow[16]; /* per kh: the input row it reads ([w][c] f32), NULL above or below X */
    int64_t w, c;          /* the input row's width and channels */
    int64_t ow;            /* the output row's width */
    int64_t kh, kw, sw, pl; /* kernel, column stride, left pad */
    int64_t m, mp;          /* output channels; mp: rounded up to MIXRT_STEM_MBLK */
    const float *wp;        /* packed W: [kh][kw][c][mp], zeros past m */
    const float *b;         /* [mp]: the bias, zeros without one and past m */
    void *y;                /* the output row, [ow][m]: f32 when y_f32, else bf16 */
    bool y_f32;
    enum mixrt_pw_act act; /* applied in register (NONE: none, or the driver's afterwards) */
    float p0, p1;
};

/* Call only where the CPU has AVX-512 F/BW/VL/DQ. */
void mixrt_stem_row_avx512(const struct mixrt_stem_row *r);

/* One output row of a bf16 X by vdpbf16ps: in NHWC a window row's kw * c taps are consecutive,
 * so they are taken in pairs (np = ceil(kw * c / 2) of them a kernel row), each pair's two input
 * values broadcast as one 32-bit lane and multiplied by a 16-channel vector of weight pairs. An
 * odd kw * c has a last pair whose second weight is zero and whose input value is the next one
 * in the row (the driver pads the rows for it, and takes this kernel only for finite X: an
 * infinity times that zero would be NaN). Rows are padded copies of X: pl zero columns on the
 * left and enough on the right that every window lies inside, so the kernel has no edge cases;
 * kernel rows above or below X are NULL (skipped). */
struct mixrt_stem_dp_row {
    const uint16_t *xrow[16]; /* per kh: the padded bf16 row ([.][c]), pixel ox's window at ox * sw * c; NULL: zero */
    int64_t c, ow, kh, sw, np;
    int64_t m, mp;
    const uint16_t *wq; /* packed W: [kh][np][mp][2] bf16, zeros past m and past kw * c */
    const float *b;     /* [mp] */
    void *y;            /* the output row, [ow][m]: f32 when y_f32, else bf16 */
    bool y_f32;
    enum mixrt_pw_act act;
    float p0, p1;
};

/* Call only where the CPU has AVX-512 F/BW/VL/DQ and AVX512-BF16. */
void mixrt_stem_dp_row_avx512(const struct mixrt_stem_dp_row *r);

/* The pool in two passes, across then down (max is separable; NaN wins, as in the reference
 * MaxPool). Across: out [pw][m] = the max over each of pw windows (kw columns from px * sw - pl,
 * clipped to [0, ow)) of one f32 conv row [ow][m]. Down: y [n] = the max of nrows such rows
 * (-inf for none), f32 when y_f32, else rounded to bf16 (max and rounding commute: rounding
 * keeps order). AVX-512 F/BW only. */
void mixrt_stem_hpool_avx512(const float *row, int64_t ow, int64_t m, int64_t pw, int64_t kw, int64_t sw, int64_t pl,
                             float *out);
void mixrt_stem_vpool_avx512(const float *const *rows, int nrows, size_t n, void *y, bool y_f32);

/* Copies n bf16 values from src to dst; false when one of them is an infinity or a NaN. AVX-512
 * F/BW only. */
bool mixrt_stem_copy_finite_avx512(const uint16_t *src, uint16_t *dst, size_t n);

/* Tests: the scalar twin instead of the AVX-512 row kernel; how many runs handed their case to
 * the reference kernel; how many bf16 runs took the f32 path for a non-finite X. */
void mixrt_stemconv_force_scalar(bool scalar);
unsigned long mixrt_stemconv_ref_runs(void);
unsigned long mixrt_stemconv_f32_runs(void);

#endif /* MIXRT_BACKEND_CPU_STEMCONV_IMPL_H */
