/* import.h - ONNX ModelProto bytes -> IR graph. */
#ifndef MIXRT_ONNX_IMPORT_H
#define MIXRT_ONNX_IMPORT_H

#include "ir/graph.h"
#include "onnx/tensorproto.h"

#define MIXRT_ONNX_MAX_IR_VERSION 11

/* Parses and lowers a serialized ModelProto. `what` names the source in messages (a
 * path). External data follows ext. *out (a main graph) is written only on success. */
mixrt_status mixrt_onnx_import(mixrt_context_t ctx, const uint8_t *data, size_t size, const char *what,
                               const struct mixrt_external_policy *ext, struct mixrt_graph **out);

#endif
