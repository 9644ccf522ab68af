/* mixrt_io.h - tensor files: NumPy .npy (every numeric dtype; bf16 has no NumPy type)
 * and ONNX TensorProto .pb (every dtype, exact). */
#ifndef MIXRT_IO_H
#define MIXRT_IO_H

#include "mixrt.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Reads a .npy file (format 1.0/2.0/3.0, C or Fortran order, either byte order) into a
 * new tensor. '<u2' and '|V2' arrays come back as U16 (the caller may take them as raw
 * bf16 bits). name_out, when not NULL, is left NULL (npy has no name). Destroy the
 * result with mixrt_tensor_destroy. */
MIXRT_API mixrt_status mixrt_npy_read(mixrt_context_t ctx, const char *path,
                                      struct mixrt_tensor **out);
/* Writes a tensor as .npy (format 1.0, little-endian, C order). BF16 cannot be
 * written (NumPy has no bf16): the caller widens it to f32 first. */
MIXRT_API mixrt_status mixrt_npy_write(mixrt_context_t ctx, const char *path,
                                       const struct mixrt_tensor *t);

/* Reads a serialized ONNX TensorProto. *name_out (may be NULL) receives the tensor's
 * name allocated with mixrt_alloc (free with mixrt_free(ctx, p, strlen(p) + 1)) or
 * NULL when the file has none. BF16/F16 from raw_data or the low 16 bits of
 * int32_data. */
MIXRT_API mixrt_status mixrt_pb_read(mixrt_context_t ctx, const char *path,
                                     struct mixrt_tensor **out, char **name_out);
/* Writes a TensorProto with dims, data_type, name (may be NULL) and raw_data
 * (string_data for STRING). */
MIXRT_API mixrt_status mixrt_pb_write(mixrt_context_t ctx, const char *path,
                                      const struct mixrt_tensor *t, const char *name);

#ifdef __cplusplus
}
#endif
#endif /* MIXRT_IO_H */
