/* engine_internal.h - the engine object, shared by engine.c (build, run) and plan.c
 * (save, load). */
#ifndef MIXRT_ENGINE_INTERNAL_H
#define MIXRT_ENGINE_INTERNAL_H

#include "backend/cpu/kernels.h"
#include "backend/cpu/exec_ref.h"
#include "engine/engine_impl.h"

struct mixrt_engine {
    mixrt_context_t ctx;
    struct mixrt_arena *arena; /* option copies, strings */
    mixrt_model_t model;       /* owns the planned graph */
    int n_nodes;
    const struct mixrt_cpu_kernel **kernels; /* per node index */
    mixrt_kernel_fn *fns;
    void **states;
    double *time_ns; /* measured while building; -1 untimed */
    struct mixrt_build_options opts;
    char target[160];
    char build_id[40];
    double build_seconds;
    int tc_hits, tc_misses;
    void *plan; /* the open plan file when loaded from one (plan.c) */
    struct mixrt_memplan *memplan; /* activation arena plan (memplan.c); NULL: none */
    struct mixrt_exec_scratch scratch; /* kernels' scratch (mixrt_kernel_scratch), kept across runs */
    bool memplan_off;              /* planning switched off (tests, MIXRT_MEMPLAN=off) */
    struct mixrt_engine_cuda *cuda; /* --backend cuda: the CUDA side (engine_cuda.c); NULL on cpu */
    /* Constants whose graph copy was dropped after their kernels packed them (engine.c,
     * try_release): data NULL, nbytes kept; mixrt_engine_weights_restore brings
     * them back from a packed copy (plan saving). */
    int n_released;
    size_t released_bytes;
    /* Per value: the checksum of a constant dropped whose bytes are read back from the model file
     * (its packed copy does not unpack to them: Winograd's transformed weights); 0 for the
     * rest. NULL until the first. */
    uint64_t *file_hash;
    /* Subgraph bodies (Loop, If, Scan at any depth) with kernels of their own
     * (mixrt_engine_bodies_prepare): subs[i] for the executor, body_kernels[i] (per body node
     * index, NULL: the reference) for releasing their states. */
    struct mixrt_exec_sub *subs;
    const struct mixrt_cpu_kernel ***body_kernels;
    int n_subs, cap_subs;
};

mixrt_status mixrt_engine_alloc(mixrt_context_t ctx, struct mixrt_engine **out);
/* Sizes the per-node arrays for the model's graph. */
mixrt_status mixrt_engine_alloc_nodes(struct mixrt_engine *e);
/* Sets node i's kernel and runs its prepare. */
mixrt_status mixrt_engine_prepare_node(struct mixrt_engine *e, int i, const struct mixrt_cpu_kernel *k);
/* Chooses kernels for the nodes of every subgraph body of the planned graph: the first
 * candidate of the families that need no build-time state (data movement, element-wise,
 * selection, reductions, Resize) whose supports() takes the node as typed, untimed (a body's
 * shapes are seldom known); everything else keeps the reference. Types the bodies first: the
 * dtypes and shapes of the outer values they read, the dtypes of a Loop's or Scan's body inputs,
 * then inference. No-op with MIXRT_BODY_KERNELS=off and on CUDA engines. */
mixrt_status mixrt_engine_bodies_prepare(struct mixrt_engine *e);
/* Brings back every released constant (see n_released) from its kernel's packed copy. */
mixrt_status mixrt_engine_weights_restore(struct mixrt_engine *e);
/* Releases the plan file an engine was loaded from (plan.c). */
void mixrt_engine_plan_release(struct mixrt_engine *e);

#endif
