/* engine_impl.h - what the command line and tests may see of an engine beyond the
 * public API: its planned graph, each layer's kernel, a run that shows every
 * intermediate tensor, and the f64 reference engine `mixrt check` compares against. */
#ifndef MIXRT_ENGINE_IMPL_H
#define MIXRT_ENGINE_IMPL_H

#include "ir/graph.h"
#include "mixrt/mixrt_engine.h"

/* The planned graph (passes applied, precisions planned, I/O casts inserted, weights
 * converted). Node i's kernel is mixrt_engine_node_kernel(e, i). Lives as long as e. */
const struct mixrt_graph *mixrt_engine_graph(mixrt_engine_t e);
/* Name of the kernel chosen for node index i of the planned graph ("ref", "dnnl_conv"...).
 * Node indices are graph positions; mixrt_engine_get_layer counts in execution order
 * (layer k is node g->order[k]). */
const char *mixrt_engine_node_kernel(mixrt_engine_t e, int node);
/* Best time of node i measured while building (ns), or -1 when not timed. */
double mixrt_engine_node_time_ns(mixrt_engine_t e, int node);
/* The target the engine was built for ("cpu x86_64 avx512_bf16 ...") and its build id. */
const char *mixrt_engine_target(mixrt_engine_t e);
const char *mixrt_engine_build_id(mixrt_engine_t e);
/* Timing-cache lookups of the build that made e: entries found in the cache file, and
 * tactics measured for lack of one (0/0 for a loaded plan). Build time in seconds. */
void mixrt_engine_build_stats(mixrt_engine_t e, int *cache_hits, int *cache_misses, double *seconds);
/* Activation memory the engine plans for: the size of its activation arena (memplan.c:
 * offsets from value lifetimes; graph inputs, outputs and weights excluded), from the
 * static shapes; -1 when some intermediate's size is not known statically. */
int64_t mixrt_engine_activation_bytes(mixrt_engine_t e);
/* The options it was built with (strings owned by the engine). */
const struct mixrt_build_options *mixrt_engine_options(mixrt_engine_t e);

/* Called for every tensor output of every node as it is produced (borrowed for the call):
 * value is the planned graph's value index, name its name. */
typedef void (*mixrt_engine_observer)(void *user, const struct mixrt_graph *g, int node, int value,
                                      const struct mixrt_tensor *t);
/* mixrt_engine_run with an observer (NULL: plain run). */
mixrt_status mixrt_engine_run_observed(mixrt_engine_t e, size_t n_inputs, const char *const *names,
                                       const struct mixrt_tensor *const *inputs, struct mixrt_tensor **outputs,
                                       mixrt_engine_observer observe, void *user);

/* The oracle engine of `mixrt check`: the model with every float tensor (f16, bf16, f32)
 * widened to f64 inside (I/O keeps the model's dtypes, cast at the boundary), reference
 * kernels only, no precision planning. Value names of the model's nodes are kept, so its
 * intermediates can be matched by name with another engine's. shapes as in --shape. */
mixrt_status mixrt_engine_build_reference(mixrt_context_t ctx, const char *model_path,
                                          const struct mixrt_input_shape *shapes, size_t n_shapes,
                                          mixrt_engine_t *out);

/* mixrt_engine_load from a plan image in memory (fuzzers, tests). data is borrowed: it
 * must outlive the engine and stay 64-byte aligned for the weights to be aligned. */
mixrt_status mixrt_engine_load_buffer(mixrt_context_t ctx, const void *data, size_t size, const char *what,
                                      mixrt_engine_t *out);

/* Constants the engine dropped after packing (engine.c, try_release): their count,
 * and their bytes in *bytes (may be NULL). */
int mixrt_engine_released(mixrt_engine_t e, size_t *bytes);

#endif /* MIXRT_ENGINE_IMPL_H */
