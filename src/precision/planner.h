/* planner.h - the precision planner: turns an imported graph into a typed graph under
 * a precision policy (DESIGN.md "Precision semantics"). Weak typing first canonicalizes
 * every f16/bf16/f32 tensor to f32 inside the graph (the model's dtypes stay only at the
 * I/O, with casts at the boundary), then lowers precision-flexible layers to the enabled
 * precisions, choosing per layer by timed tactics; casts are inserted only where a
 * consumer needs another dtype, and constant weights are converted instead of cast. */
#ifndef MIXRT_PRECISION_PLANNER_H
#define MIXRT_PRECISION_PLANNER_H

#include "ir/graph.h"
#include "mixrt/mixrt_engine.h"

struct mixrt_timing_cache;

/* Checks every tensor of g (inputs, outputs, weights, intermediates, subgraphs) for
 * dtypes the CPU backend cannot compute (float8, 4-bit and 2-bit ints and floats,
 * complex, string fed to a numeric op). policy ERROR: UNSUPPORTED_DTYPE naming the first
 * tensor, its kind and dtype, and the flag. FALLBACK: each becomes f32 (Cast targets too)
 * with one warning per dtype. */
mixrt_status mixrt_plan_check_dtypes(struct mixrt_graph *g, enum mixrt_unsupported_dtype policy);

/* Rewrites g so every float tensor of dtype f16/bf16/f32 (and f64 too when to is F64)
 * computes in `to`: weights converted (exactly when widening), graph inputs and outputs
 * keep their declared dtypes with a Cast at the boundary, Cast nodes between float types
 * become casts to `to` (weak typing: the model's float dtypes are only its I/O contract),
 * dtype attributes (ConstantOfShape value, Random*, EyeLike) follow. */
mixrt_status mixrt_plan_canonicalize(struct mixrt_graph *g, mixrt_dtype to);

/* Lowers the canonical f32 graph g to the enabled precisions (weak typing) and applies
 * --layer-precision under the constraints. Timed layers (those with an optimized kernel
 * in some precision) are measured per precision through tc; the others follow their
 * inputs. Casts are inserted where dtypes meet; outputs are cast back to their declared
 * dtypes. verbose logs each decision. */
mixrt_status mixrt_plan_lower(struct mixrt_graph *g, const struct mixrt_build_options *opts,
                              struct mixrt_timing_cache *tc);

/* Checks --layer-precision against a strongly typed build (layers keep their dtypes):
 * obey fails, prefer warns, none is silent. */
mixrt_status mixrt_plan_check_strong(struct mixrt_graph *g, const struct mixrt_build_options *opts);

/* Whether op is precision-flexible (may run in any float precision). */
bool mixrt_plan_op_flexible(const struct mixrt_node *n);

#endif /* MIXRT_PRECISION_PLANNER_H */
