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

/* A graph input as a model file declares it: name (not NUL-terminated, into the bytes), rank
 * (-1: no shape declared) and dims (-1: open, a dim_param or nothing). */
struct mixrt_onnx_decl {
    const char *name;
    size_t name_len;
    int rank;
    int64_t dims[MIXRT_MAX_RANK];
};

/* The main graph's inputs that are not initializers, as serialized ModelProto bytes declare
 * them (a walk of the wire format: no parse, the weights' bytes untouched), the first cap
 * into out; returns how many there are, or -1 when the bytes are not a ModelProto with a
 * graph. For tools that must know open dims before building (the CLI). */
int mixrt_onnx_declared_inputs(const uint8_t *data, size_t size, struct mixrt_onnx_decl *out, int cap);

#endif /* MIXRT_ONNX_SLIM_H */
