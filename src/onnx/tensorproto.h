/* tensorproto.h - ONNX TensorProto <-> mixrt_tensor. Shared by the model importer
 * (initializers, Constant values, tensor attributes) and the .pb tensor files. */
#ifndef MIXRT_ONNX_TENSORPROTO_H
#define MIXRT_ONNX_TENSORPROTO_H

#include "core/core.h"
#include "onnx.pb-c.h"

/* Where external data may come from: files inside base_dir only (NULL refuses
 * external data), or, for a location equal to blob_location (exact string), the
 * in-memory blob: such tensors BORROW blob + offset (offset + length within
 * blob_size, length the tensor's exact byte size, offset aligned to the element
 * size) and never touch the file system; the blob must outlive them. */
struct mixrt_external_policy {
    const char *base_dir;
    const uint8_t *blob;       /* NULL: no blob */
    uint64_t blob_size;
    const char *blob_location; /* e.g. "@weights"; NULL: no blob */
    /* --unsupported-dtype fallback: tensors of a dtype mixrt cannot compute (float8,
     * float4, 4/2-bit ints, complex: real part) held in raw_data are decoded to f32, and
     * converted[dtype] (when set) counts them; otherwise they are UNSUPPORTED_DTYPE. */
    bool unsupported_to_f32;
    int *converted; /* [MIXRT_DTYPE_COUNT] or NULL */
    /* The model's bytes are a private read-only file mapping (mixrt_model_load): the
     * importer drops the pages of weights it has copied (mixrt_unmap_range). */
    bool data_mapped;
};

/* Decodes tp into *out (initialized by the call; owns its data, or an mmap of the
 * external file). Data from raw_data (little-endian), the typed fields (f16/bf16 in the
 * low 16 bits of int32_data; bool/int8/uint8/int16/uint16 in int32_data; uint32/uint64
 * in uint64_data; ...), string_data, or external data (location/offset/length checked:
 * no absolute paths, no "..", no symlink escape, offset+length within the file). The
 * element count implied by dims must match the data exactly. Errors name the tensor
 * ("initializer 'w': ..."), its dtype and what was wrong; unsupported dtypes (float8,
 * int4, complex, ...) give UNSUPPORTED_DTYPE naming the tensor and dtype. */
mixrt_status mixrt_onnx_tensor_from_proto(mixrt_context_t ctx, const Onnx__TensorProto *tp,
                                          const struct mixrt_external_policy *ext,
                                          struct mixrt_tensor *out);

/* Fills *tp (zero-initialized with onnx__tensor_proto__init by the call) from t: dims,
 * data_type, name (may be NULL), raw_data pointing at t->data (not copied: t must outlive
 * tp) or string_data for STRING (arrays allocated from ctx). Release the arrays with
 * mixrt_onnx_tensor_proto_release. */
mixrt_status mixrt_onnx_tensor_to_proto(mixrt_context_t ctx, const struct mixrt_tensor *t,
                                        const char *name, Onnx__TensorProto *tp);
void mixrt_onnx_tensor_proto_release(mixrt_context_t ctx, Onnx__TensorProto *tp);

#endif
