/* datamove_impl.h - what datamove.c (driver, scalar twins) and datamove_avx512.c (register
 * tile transposes) share: the 2-D transpose primitive both implement, the ISA switch and the
 * test hooks. */
#ifndef MIXRT_BACKEND_CPU_DATAMOVE_IMPL_H
#define MIXRT_BACKEND_CPU_DATAMOVE_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* dst[a*dst_ld + b] = src[b*src_ld + a] for a < na, b < nb, elements of es bytes (1, 2, 4 or
 * 8): the B x A matrix at src (row stride src_ld elements) written transposed to dst. */
typedef void (*mixrt_dm_transpose2d_fn)(size_t es, const void *src, size_t src_ld, void *dst, size_t dst_ld,
                                        size_t na, size_t nb);

void mixrt_dm_transpose2d_scalar(size_t es, const void *src, size_t src_ld, void *dst, size_t dst_ld, size_t na,
                                 size_t nb);
/* 16x16 register tiles for es 2 and 4 (other sizes and the ragged edges: the scalar twin).
 * Call only when mixrt_dm_has_avx512() (illegal instruction otherwise). */
void mixrt_dm_transpose2d_avx512(size_t es, const void *src, size_t src_ld, void *dst, size_t dst_ld, size_t na,
                                 size_t nb);

/* Planar f32 rows to packed bf16 (an NCHW image of nb channels to NHWC, cast on the way):
 * dst[a*nb + b] = bf16(src[b*src_ld + a]) for a < na, b < nb (1..8), rounded to nearest even
 * (NaN made quiet), bit for bit mixrt_convert's. The AVX-512 form: call only when
 * mixrt_dm_has_avx512(). */
void mixrt_dm_narrow_f32_bf16_scalar(const float *src, size_t src_ld, uint16_t *dst, size_t na, size_t nb);
void mixrt_dm_narrow_f32_bf16_avx512(const float *src, size_t src_ld, uint16_t *dst, size_t na, size_t nb);
/* The same from f16 rows (an f16 model's image): each value widened exactly, rounded once. */
void mixrt_dm_narrow_f16_bf16_scalar(const uint16_t *src, size_t src_ld, uint16_t *dst, size_t na, size_t nb);
void mixrt_dm_narrow_f16_bf16_avx512(const uint16_t *src, size_t src_ld, uint16_t *dst, size_t na, size_t nb);

/* AVX512F/BW/VL usable and not forced off (MIXRT_DATAMOVE_ISA=scalar, or the test hook). */
bool mixrt_dm_has_avx512(void);
/* Test hook: true makes the kernels use the scalar twins from now on (process-wide). */
void mixrt_dm_force_scalar(bool on);
/* "avx512" or "scalar": what the kernels use now. */
const char *mixrt_dm_isa(void);
/* Test/bench hook: copies of at least this many bytes are split over the OpenMP threads
 * (0: the built-in threshold; SIZE_MAX: never). Process-wide. */
void mixrt_dm_set_parallel_bytes(size_t bytes);

#endif /* MIXRT_BACKEND_CPU_DATAMOVE_IMPL_H */
