/* mixrt_engine.h - engines: a model compiled for a target under a precision policy,
 * saved as a plan file and run. An engine owns its planned graph, its weights (already
 * converted to the planned precisions; mapped from the plan file when loaded) and its
 * kernels' state. */
#ifndef MIXRT_ENGINE_H
#define MIXRT_ENGINE_H

#include "mixrt.h"
#include "mixrt_onnx.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct mixrt_engine *mixrt_engine_t;

/* Enabled precisions, a bit set; fp32 is always allowed. */
enum mixrt_precision {
    MIXRT_PRECISION_FP32 = 1u << 0,
    MIXRT_PRECISION_FP16 = 1u << 1,
    MIXRT_PRECISION_BF16 = 1u << 2,
};

enum mixrt_precision_constraints {
    MIXRT_CONSTRAINTS_NONE = 0,   /* --layer-precision is a hint: one more candidate */
    MIXRT_CONSTRAINTS_PREFER = 1, /* use it; warn and fall back where it cannot be */
    MIXRT_CONSTRAINTS_OBEY = 2,   /* use it; a named error where it cannot be */
};

enum mixrt_unsupported_dtype {
    MIXRT_UNSUPPORTED_DTYPE_ERROR = 0,    /* stop the build naming the tensor, dtype and flag */
    MIXRT_UNSUPPORTED_DTYPE_FALLBACK = 1, /* convert to f32, one warning per dtype */
};

/* --layer-precision GLOB:TYPE: nodes whose name matches glob (fnmatch) run in dtype. */
struct mixrt_layer_precision {
    const char *glob;
    mixrt_dtype dtype; /* F32, F16 or BF16 */
};

/* --shape NAME:D1xD2x...: fixes an input's dims for the build (symbolic ones stay free
 * at run time only where not given). */
struct mixrt_input_shape {
    const char *name;
    int rank;
    int64_t dims[MIXRT_MAX_RANK];
};

struct mixrt_build_options {
    unsigned precisions;  /* MIXRT_PRECISION_* bits; fp32 is added */
    int strongly_typed;   /* every tensor keeps its declared dtype; precisions ignored */
    const char *backend;  /* "cpu" (NULL means cpu) */
    const struct mixrt_layer_precision *layer_precisions;
    size_t n_layer_precisions;
    enum mixrt_precision_constraints constraints;
    enum mixrt_unsupported_dtype unsupported_dtype;
    const struct mixrt_input_shape *shapes;
    size_t n_shapes;
    const char *timing_cache; /* file read if present and rewritten after the build; NULL none */
    int require_full;         /* a node the backend cannot run is an error instead of a CPU
                               * fallback (the cpu backend runs every node) */
    int verbose;              /* log each layer's choice and the candidates refused */
};

/* Defaults: fp32 only, weak typing, cpu, constraints none, unsupported dtype error. */
MIXRT_API void mixrt_build_options_init(struct mixrt_build_options *opts);
/* Parses a comma list of fp32, fp16 and bf16 (e.g. "fp32,bf16")
 * into MIXRT_PRECISION_* bits. INVALID_ARGUMENT naming the bad item. */
MIXRT_API mixrt_status mixrt_precisions_parse(mixrt_context_t ctx, const char *list, unsigned *out);

/* Builds an engine from an ONNX file. opts NULL means defaults. The options' strings are
 * copied. *out is written only on success; destroy it before ctx. */
MIXRT_API mixrt_status mixrt_engine_build(mixrt_context_t ctx, const char *model_path,
                                          const struct mixrt_build_options *opts, mixrt_engine_t *out);
/* Writes the engine as a plan file (replaced atomically: written beside, then renamed). */
MIXRT_API mixrt_status mixrt_engine_save(mixrt_engine_t engine, const char *plan_path);
/* Loads a plan file, validating every section before use; a plan for another format
 * version or target is refused with a message saying which. Weights are mapped from
 * the file, which may be deleted afterwards. */
MIXRT_API mixrt_status mixrt_engine_load(mixrt_context_t ctx, const char *plan_path, mixrt_engine_t *out);
/* NULL is fine. */
MIXRT_API void mixrt_engine_destroy(mixrt_engine_t engine);

/* The engine's I/O: the model's declared inputs and outputs (the I/O contract). */
MIXRT_API size_t mixrt_engine_input_count(mixrt_engine_t engine);
MIXRT_API size_t mixrt_engine_output_count(mixrt_engine_t engine);
MIXRT_API mixrt_status mixrt_engine_get_input(mixrt_engine_t engine, size_t index, struct mixrt_value_info *out);
MIXRT_API mixrt_status mixrt_engine_get_output(mixrt_engine_t engine, size_t index, struct mixrt_value_info *out);

/* Runs the engine; same contract as mixrt_model_run (inputs by name, validated; each
 * output a new tensor the caller destroys). Not reentrant on one engine. */
MIXRT_API mixrt_status mixrt_engine_run(mixrt_engine_t engine, size_t n_inputs, const char *const *names,
                                        const struct mixrt_tensor *const *inputs,
                                        struct mixrt_tensor **outputs);

/* Runs the engine writing each output straight into the caller's tensor outputs[i]
 * (outputs has mixrt_engine_output_count entries, none NULL): a tensor of the output's
 * dtype and exact shape whose data (nbytes) the caller owns and which must not overlap
 * an input. Inputs as in mixrt_engine_run, read in place (never copied). A tensor of
 * the wrong dtype or shape is INVALID_ARGUMENT naming the output (checked before the
 * run against the declared shape, after it against dynamic dims); on failure the
 * outputs' contents are unspecified. Nothing is allocated for outputs. Not reentrant. */
MIXRT_API mixrt_status mixrt_engine_run_into(mixrt_engine_t engine, size_t n_inputs, const char *const *names,
                                             const struct mixrt_tensor *const *inputs,
                                             struct mixrt_tensor *const *outputs);

/* ---- device tensors (engines built with --backend cuda) ------------------------------
 * A tensor whose flags include MIXRT_TENSOR_DEVICE_CUDA holds in data a CUDA device address
 * on the engine's GPU: from mixrt_engine_device_alloc, or any other allocation of this
 * process on that GPU (e.g. a torch CUDA tensor's data_ptr()); mixrt never frees it. The
 * run calls of a CUDA engine take such tensors as inputs (mixrt_engine_run, run_into,
 * run_device) and as outputs (run_into): inputs are copied device to device into the
 * engine's memory, outputs device to device out of it, on the engine's stream, and the
 * call returns when the outputs are complete (no stream to wait on). The data of a device
 * input must be complete when the call is made: the engine's stream does not wait on other
 * streams. Host and device tensors may be mixed in one call; a value produced or read by a
 * layer on the CPU is copied through the host as needed. The dtype and shape rules are the
 * host ones (INVALID_ARGUMENT naming the tensor); nbytes must equal numel * dtype size and
 * data must not be NULL then. A CPU engine refuses device tensors (UNSUPPORTED naming the
 * tensor), as do the calls below. */

/* Allocates a device tensor of dtype and dims (rank 0..MIXRT_MAX_RANK, dims >= 0) on the
 * engine's GPU; contents undefined. UNSUPPORTED for a CPU engine, OUT_OF_MEMORY naming
 * cudaMalloc. *out is written only on success; free it with mixrt_engine_device_free
 * (mixrt_tensor_destroy would leak the device memory) before destroying the engine. */
MIXRT_API mixrt_status mixrt_engine_device_alloc(mixrt_engine_t engine, mixrt_dtype dtype, int rank,
                                                 const int64_t *dims, struct mixrt_tensor **out);
/* Frees a tensor made by mixrt_engine_device_alloc and its device memory (waits for the
 * engine's pending work first). NULL is fine. */
MIXRT_API void mixrt_engine_device_free(mixrt_engine_t engine, struct mixrt_tensor *t);
/* Copies src into dst, each a host or a device tensor (host to device, device to host,
 * device to device or host to host), of the same dtype and dims (INVALID_ARGUMENT
 * otherwise); returns when the copy is complete. UNSUPPORTED for a CPU engine. */
MIXRT_API mixrt_status mixrt_engine_device_copy(mixrt_engine_t engine, struct mixrt_tensor *dst,
                                                const struct mixrt_tensor *src);
/* Runs the engine and hands back device views of its outputs, no copy: views has
 * mixrt_engine_output_count entries, each filled with the output's dtype and dims, data =
 * its device address inside the engine's memory, flags MIXRT_TENSOR_DEVICE_CUDA (not
 * owned: never free or destroy them). A view is valid, and complete, until the next run or
 * the engine's destruction; copy it (mixrt_engine_device_copy) to keep it. Inputs as in
 * mixrt_engine_run (host or device tensors). An output not left on the device (produced by
 * a layer on the CPU, or a constant or an input passed through) is UNSUPPORTED naming it
 * (use mixrt_engine_run_into with a device tensor); UNSUPPORTED for a CPU engine. On
 * failure views are zeroed. Not reentrant. */
MIXRT_API mixrt_status mixrt_engine_run_device(mixrt_engine_t engine, size_t n_inputs, const char *const *names,
                                               const struct mixrt_tensor *const *inputs,
                                               struct mixrt_tensor *views);

/* A layer (node of the planned graph) as built. Strings live as long as the engine. */
struct mixrt_layer_info {
    const char *name;
    const char *op_type;
    const char *kernel;      /* "dnnl_conv", "ref", ... */
    mixrt_dtype precision;   /* dtype its float data is computed in; UNDEFINED when none */
};
MIXRT_API size_t mixrt_engine_layer_count(mixrt_engine_t engine);
MIXRT_API mixrt_status mixrt_engine_get_layer(mixrt_engine_t engine, size_t index, struct mixrt_layer_info *out);

#ifdef __cplusplus
}
#endif
#endif /* MIXRT_ENGINE_H */
