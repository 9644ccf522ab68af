/* engine_cuda.h - the CUDA side of an engine built with --backend cuda: which layers run on
 * the GPU, the segments they form, the device memory plan and the run. libmixrt reaches
 * the device layer only through the table libmixrt_cuda.so exports (loaded with dlopen), so
 * nothing here needs CUDA headers or libraries. */
#ifndef MIXRT_ENGINE_CUDA_H
#define MIXRT_ENGINE_CUDA_H

#include <stdio.h>

#include "engine/engine_internal.h"

struct mixrt_engine_cuda;

/* Loads libmixrt_cuda.so (MIXRT_CUDA_LIBRARY=path, else beside libmixrt / the program,
 * else the default search path) and opens GPU 0 into e->cuda. Named errors:
 * "--backend cuda: cannot load libmixrt_cuda.so: <dlerror>", "no CUDA device: <reason>". */
mixrt_status mixrt_engine_cuda_open(struct mixrt_engine *e);
/* Decides per node of the planned graph whether CUDA runs it (op, dtypes, static shapes).
 * With require_full, a node left on the CPU is an UNSUPPORTED error listing those ops. */
mixrt_status mixrt_engine_cuda_assign(struct mixrt_engine *e);
/* True when node index i runs on CUDA (false without a CUDA side). */
bool mixrt_engine_cuda_claims(const struct mixrt_engine *e, int node);
/* After CPU kernel selection: device memory plan, weights uploaded in their planned dtype,
 * GEMM plans created and tuned. */
mixrt_status mixrt_engine_cuda_prepare(struct mixrt_engine *e);
/* Runs the engine (same contract as mixrt_engine_run / run_into: out_into NULL allocates
 * outputs into outputs[], else writes the caller's tensors). observe (may be NULL) sees
 * the outputs of the layers run on the CPU only (device tensors are not copied back). */
mixrt_status mixrt_engine_cuda_run(struct mixrt_engine *e, size_t n_inputs, const char *const *names,
                                   const struct mixrt_tensor *const *inputs, struct mixrt_tensor **outputs,
                                   struct mixrt_tensor *const *out_into, mixrt_engine_observer observe, void *user);
void mixrt_engine_cuda_destroy(struct mixrt_engine_cuda *c);
/* For the CPU engine's run calls: UNSUPPORTED naming the first input or output that is a
 * CUDA device tensor (MIXRT_TENSOR_DEVICE_CUDA); OK for a CUDA engine. outputs may be NULL. */
mixrt_status mixrt_engine_device_check_host(struct mixrt_engine *e, size_t n_inputs, const char *const *names,
                                            const struct mixrt_tensor *const *inputs,
                                            struct mixrt_tensor *const *outputs);

/* Views for tools: the CUDA kernel name of a claimed node ("cuda_gemm", ...; NULL when not
 * claimed), the backend of a node ("cuda" / "cpu"), and a summary (segments, copies,
 * arena, device) written to f. */
const char *mixrt_engine_cuda_node_kernel(const struct mixrt_engine *e, int node);
const char *mixrt_engine_node_backend(mixrt_engine_t e, int node);
void mixrt_engine_cuda_describe(mixrt_engine_t e, FILE *f);
/* Segments (maximal runs, in execution order, of layers on one backend) and the copies
 * between host and device per run; 0 for a CPU engine. */
void mixrt_engine_cuda_counts(mixrt_engine_t e, int *segments, int *cuda_segments, int *h2d, int *d2h);

#endif /* MIXRT_ENGINE_CUDA_H */
