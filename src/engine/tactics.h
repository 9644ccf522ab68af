/* tactics.h - timing candidate kernels (tactics) for one node, and the timing cache that
 * makes rebuilds fast and reproducible. A cache entry is keyed by everything the timing
 * depends on (target, op, opset, attributes, input dtypes/shapes/constness, kernel) and
 * never by the model's own dtype, so an f32 and a bf16 model of one network share it. */
#ifndef MIXRT_ENGINE_TACTICS_H
#define MIXRT_ENGINE_TACTICS_H

#include "backend/cpu/kernels.h"

struct mixrt_timing_cache;

/* An empty cache for target (copied). */
mixrt_status mixrt_timing_cache_create(mixrt_context_t ctx, const char *target, struct mixrt_timing_cache **out);
/* Reads path into the cache when it exists. A file for another target is ignored with a
 * warning; a malformed file is an error naming the line. */
mixrt_status mixrt_timing_cache_load(struct mixrt_timing_cache *tc, const char *path);
/* Writes the cache (atomically: beside, then renamed). */
mixrt_status mixrt_timing_cache_save(struct mixrt_timing_cache *tc, const char *path);
void mixrt_timing_cache_destroy(struct mixrt_timing_cache *tc);
/* Hits and misses so far (for the build summary). */
void mixrt_timing_cache_stats(const struct mixrt_timing_cache *tc, int *hits, int *misses);

/* Times every kernel that supports node ni of g (g typed as it will run; shapes must be
 * known, else nothing is timed) and returns the fastest in *best with its best time
 * in *best_ns. The reference kernel is timed only when it is the sole candidate and
 * time_ref is set; otherwise it is the fallback with *best_ns = -1. remeasure ignores
 * cached times and keeps the faster of the new and the cached one (a second timing
 * window). *measured (may be NULL) is set when something was timed, not just looked up.
 * *alt (may be NULL): the fastest timed candidate that holds its weights at their own size
 * (mixrt_cpu_kernel_weight_growth 1; kern NULL when none), for a build's memory budget. */
struct mixrt_tactic_alt {
    const struct mixrt_cpu_kernel *kern;
    double ns;
};
mixrt_status mixrt_tactics_choose(struct mixrt_graph *g, int ni, struct mixrt_timing_cache *tc, bool time_ref,
                                  int verbose, bool remeasure, const struct mixrt_cpu_kernel **best, double *best_ns,
                                  bool *measured, struct mixrt_tactic_alt *alt);

/* Whether conv-like node nd's 4-d input has only its batch unknown (a detector head on the boxes
 * found), with its per-image Winograd scratchpad estimate in *img_bytes then: F(4x4, 3x3) input
 * and output tiles, 36 values each per 4x4 block of the image, for C + M channels in f32. The Winograd budget weighs these together, and the precision planner times them
 * on their non-Winograd kernels. */
bool mixrt_tactics_data_batch(const struct mixrt_graph *g, const struct mixrt_node *nd, double *img_bytes);

/* The bytes oneDNN's Winograd convolutions may add to graph g (see engine.c's wino_budget):
 * MIXRT_WINO_BUDGET (default 1; "off": no limit, -1 returned) times g's constant bytes, at
 * least MIXRT_WINO_BUDGET_MIN_MB (64) MB of them. *factor and *consts (may be NULL) give the
 * two for a log. Data-batch layers' scratchpads are counted at MIXRT_WINO_DATA_BATCH boxes
 * (torchvision's detections per image). */
double mixrt_wino_budget_bytes(const struct mixrt_graph *g, double *factor, double *consts);
/* The same budget for consts bytes of constants (*factor may be NULL). */
double mixrt_wino_budget_for(double consts, double *factor);
enum { MIXRT_WINO_DATA_BATCH = 100 };

/* A number measured about node n of g with kernel (tag names which: the bytes of its packed
 * weights, ...), kept for this process under the key its timings use (so a second build of
 * the same shapes finds it); get is false when none was put. */
bool mixrt_tactics_memo_get(const struct mixrt_graph *g, const struct mixrt_node *n, const char *kernel,
                            const char *tag, double *v);
void mixrt_tactics_memo_put(const struct mixrt_graph *g, const struct mixrt_node *n, const char *kernel,
                            const char *tag, double v);

/* The CPU target string of this machine: "cpu x86_64 <features>". */
const char *mixrt_cpu_target(void);

#endif /* MIXRT_ENGINE_TACTICS_H */
