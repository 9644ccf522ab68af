/* resize_impl.h - what resize.c (driver, scalar twin) and resize_avx512.c share: the column
 * tables of a linear resize done as two passes per output row (the two input rows blended into
 * one f32 row, then each output column from its two taps in that row), and the test hooks. */
#ifndef MIXRT_BACKEND_CPU_RESIZE_IMPL_H
#define MIXRT_BACKEND_CPU_RESIZE_IMPL_H

#include <stdbool.h>
#include <stdint.h>

#include "mixrt/mixrt.h"

/* The output columns of one resize, padded to whole blocks of 16 (pad entries: tap 0, weight 0).
 * Column w reads t[i0[w]] * w0[w] and, when bit w % 16 of two[w / 16] is set, t[i1[w]] * w1[w]
 * (one tap: i1 = i0, w1 = 0, bit clear, so an infinite input stays infinite). Block b's taps lie
 * in t[base[b] .. base[b] + 32) when base[b] >= 0, at r0 / r1 = i - base[b]; else (a strong
 * downscale) they are gathered. */
struct mixrt_rz_cols {
    int64_t n, blocks;
    const int32_t *i0, *i1, *r0, *r1, *base;
    const float *w0, *w1;
    const uint16_t *two;
};

/* t[j] = wa * xa[j] (+ wb * xb[j] when xb) for j < n; xa, xb rows of dt (f32, bf16 or f16).
 * scratch: n floats (the scalar twin's widened row). */
void mixrt_rz_vpass_scalar(mixrt_dtype dt, const void *xa, const void *xb, float wa, float wb, float *t,
                           float *scratch, int64_t n);
/* y[w] for w < c->n from the blended row t (32 readable floats past its last column). */
void mixrt_rz_hpass_scalar(const struct mixrt_rz_cols *c, const float *t, float *y);
/* The AVX-512 twins: call only when mixrt_rz_has_avx512(). */
void mixrt_rz_vpass_avx512(mixrt_dtype dt, const void *xa, const void *xb, float wa, float wb, float *t,
                           float *scratch, int64_t n);
void mixrt_rz_hpass_avx512(const struct mixrt_rz_cols *c, const float *t, float *y);

/* Channels-last: y[w, :C] = w0[w] * t[i0[w], :C] (+ w1[w] * t[i1[w], :C]) for w < c->n (the
 * blocks and windows unused). */
void mixrt_rz_hpass_nhwc_scalar(const struct mixrt_rz_cols *c, int64_t C, const float *t, float *y);
void mixrt_rz_hpass_nhwc_avx512(const struct mixrt_rz_cols *c, int64_t C, const float *t, float *y);

/* Any number of taps per output (rz_taps: the reference's taps in every mode): column w sums
 * w[j * np + w] * t[idx[j * np + w]] over the taps j < T whose bit w % 16 of mask[j * blocks + w / 16]
 * is set (unset taps are not read, so an infinite input lands where the reference puts it).
 * Columns padded to blocks of 16: np = blocks * 16, pad entries tap 0 with weight 0, bit clear. */
struct mixrt_rz_taps_cols {
    int64_t n, blocks, np;
    int T;
    const int32_t *idx;
    const float *w;
    const uint16_t *mask;
};
/* t[j] = sum over k < cnt of wts[k] * rows[k][j], j < n (rows of dt; cnt >= 1). */
void mixrt_rz_vtaps_scalar(mixrt_dtype dt, const void *const *rows, const float *wts, int cnt, float *t,
                           float *scratch, int64_t n);
void mixrt_rz_htaps_scalar(const struct mixrt_rz_taps_cols *c, const float *t, float *y);
void mixrt_rz_vtaps_avx512(mixrt_dtype dt, const void *const *rows, const float *wts, int cnt, float *t,
                           float *scratch, int64_t n);
void mixrt_rz_htaps_avx512(const struct mixrt_rz_taps_cols *c, const float *t, float *y);

/* AVX512F/BW/VL usable and not forced off (MIXRT_RESIZE_ISA=scalar, or the test hook). */
bool mixrt_rz_has_avx512(void);
/* Test hooks: the scalar twins from now on; rows split over threads from this many output
 * bytes (0: the built-in threshold, SIZE_MAX: never). Process-wide. */
void mixrt_rz_force_scalar(bool on);
void mixrt_rz_set_parallel_bytes(size_t bytes);

#endif /* MIXRT_BACKEND_CPU_RESIZE_IMPL_H */
