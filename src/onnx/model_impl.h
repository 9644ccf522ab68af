/* model_impl.h - what the command line and tests may see of a model beyond the public
 * API: its IR graph, and loading without requiring a kernel for every node (inspect). */
#ifndef MIXRT_ONNX_MODEL_IMPL_H
#define MIXRT_ONNX_MODEL_IMPL_H

#include <stdbool.h>

#include "ir/graph.h"
#include "mixrt/mixrt_onnx.h"

/* mixrt_model_load, but with need_kernels false a node without a kernel is not an
 * error (the model can be described, not run). */
mixrt_status mixrt_model_load_opts(mixrt_context_t ctx, const char *path, bool need_kernels, mixrt_model_t *out);
/* mixrt_model_load_opts; with converted non-NULL, weights of dtypes mixrt cannot compute
 * are decoded to f32 (--unsupported-dtype fallback) and counted per dtype in
 * converted[MIXRT_DTYPE_COUNT]. */
mixrt_status mixrt_model_load_fallback(mixrt_context_t ctx, const char *path, bool need_kernels, int *converted,
                                       mixrt_model_t *out);
/* The model's main graph; lives as long as the model. */
const struct mixrt_graph *mixrt_model_graph(mixrt_model_t model);

/* The graph, for the engine builder, which rewrites it in place. */
struct mixrt_graph *mixrt_model_graph_mut(mixrt_model_t model);
struct mixrt_exec_opts;
/* mixrt_model_run with the executor's per-node kernels and observer (opts may be NULL). */
mixrt_status mixrt_model_run_opts(mixrt_model_t model, size_t n_inputs, const char *const *names,
                                  const struct mixrt_tensor *const *inputs, struct mixrt_tensor **outputs,
                                  const struct mixrt_exec_opts *opts);

struct mixrt_external_policy;
/* mixrt_model_load_buffer with a full external-data policy (tensorproto.h): with
 * ext->blob set, tensors whose location is ext->blob_location borrow the blob in place,
 * so it must outlive the model. what names the source in messages; ext may be NULL
 * (no external data). */
mixrt_status mixrt_model_load_buffer_ext(mixrt_context_t ctx, const void *data, size_t size, const char *what,
                                         const struct mixrt_external_policy *ext, bool need_kernels,
                                         mixrt_model_t *out);

#endif
