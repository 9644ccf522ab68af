/* slim.h - a serialized ModelProto without its main graph's initializer raw_data (slim.c). */
#ifndef MIXRT_ONNX_SLIM_H
#define MIXRT_ONNX_SLIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

/* Where initializer i's raw_data lies in the original bytes (has: it had one). */
struct mixrt_onnx_raw {
    size_t off, len;
    bool has;
};

struct mixrt_onnx_slim {
    mixrt_context_t ctx;
    struct mixrt_buf msg; /* the message without those raw_data fields */
    struct mixrt_onnx_raw *raw; /* one per initializer of the main graph, in order */
    size_t n_init, cap;
};

/* false (nothing held) when the bytes are not the shape it expects, or on out of memory:
 * parse the original bytes then. Free with mixrt_onnx_slim_free. */
bool mixrt_onnx_slim(mixrt_context_t ctx, const uint8_t *data, size_t size, struct mixrt_onnx_slim *s);
void mixrt_onnx_slim_free(struct mixrt_onnx_slim *s);

#endif /* MIXRT_ONNX_SLIM_H */
