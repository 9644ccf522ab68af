/* mixrt_onnx.h - loading ONNX models and running them with the CPU reference
 * executor. A model owns its IR graph (in a per-graph arena) and its weights; the
 * protobuf objects are freed once the model is lowered. */
#ifndef MIXRT_ONNX_H
#define MIXRT_ONNX_H

#include "mixrt.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mixrt_model *mixrt_model_t;

/* Loads an ONNX model file. External data files are resolved relative to the model's
 * folder and may not leave it. *out is written only on success; the model keeps a
 * reference to ctx and must be destroyed before it. */
MIXRT_API mixrt_status mixrt_model_load(mixrt_context_t ctx, const char *path,
                                        mixrt_model_t *out);
/* Same from memory (copied as needed; the buffer may be freed after the call).
 * base_dir is where external data files live; NULL refuses external data. */
MIXRT_API mixrt_status mixrt_model_load_buffer(mixrt_context_t ctx, const void *data,
                                               size_t size, const char *base_dir,
                                               mixrt_model_t *out);
/* NULL is fine. */
MIXRT_API void mixrt_model_destroy(mixrt_model_t model);

/* A graph input or output as declared by the model. dims[i] < 0 is unknown or
 * symbolic (dim_params[i] names it, or NULL). rank < 0: unknown rank. Strings point
 * into the model and live as long as it. */
struct mixrt_value_info {
    const char *name;
    mixrt_dtype dtype;
    int rank;
    int64_t dims[MIXRT_MAX_RANK];
    const char *dim_params[MIXRT_MAX_RANK];
    int has_initializer; /* an input that also has an initializer (optional to feed) */
};

/* Graph inputs (initializer-backed ones last-wins overridable, has_initializer set)
 * and outputs. index must be < the count. */
MIXRT_API size_t mixrt_model_input_count(mixrt_model_t model);
MIXRT_API size_t mixrt_model_output_count(mixrt_model_t model);
MIXRT_API mixrt_status mixrt_model_get_input(mixrt_model_t model, size_t index,
                                             struct mixrt_value_info *out);
MIXRT_API mixrt_status mixrt_model_get_output(mixrt_model_t model, size_t index,
                                              struct mixrt_value_info *out);

/* Runs the model with the CPU reference executor. inputs[i] is bound to the graph
 * input named names[i]; every input without an initializer must be given, and each
 * must match the declared dtype, rank and fixed dims (symbolic dims are bound from
 * the inputs and must agree wherever they repeat). The caller keeps ownership of the
 * inputs. outputs must have room for mixrt_model_output_count pointers; each receives
 * a new tensor the caller destroys with mixrt_tensor_destroy. On failure no outputs
 * are written. */
MIXRT_API mixrt_status mixrt_model_run(mixrt_model_t model, size_t n_inputs,
                                       const char *const *names,
                                       const struct mixrt_tensor *const *inputs,
                                       struct mixrt_tensor **outputs);

#ifdef __cplusplus
}
#endif
#endif /* MIXRT_ONNX_H */
