/* plan.c - saving engines as plan files and loading them (placeholder until the plan
 * container and the graph export land). */
#include "engine/engine_internal.h"

void mixrt_engine_plan_release(struct mixrt_engine *e) { (void)e; }

mixrt_status mixrt_engine_save(mixrt_engine_t e, const char *path) {
    (void)path;
    return mixrt_error(e->ctx, MIXRT_STATUS_UNSUPPORTED, "saving plans is not available yet");
}

mixrt_status mixrt_engine_load(mixrt_context_t ctx, const char *path, mixrt_engine_t *out) {
    (void)out;
    return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "'%s': loading plans is not available yet", path);
}
