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

/* Tests: the scalar twin instead of the AVX-512 row kernel; how many runs handed their case to
 * the reference kernel. */
void mixrt_stemconv_force_scalar(bool scalar);
unsigned long mixrt_stemconv_ref_runs(void);

#endif /* MIXRT_BACKEND_CPU_STEMCONV_IMPL_H */
