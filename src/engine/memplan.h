/* memplan.h - the activation memory plan of an engine: every intermediate whose size is
 * static gets an offset in one arena, from value lifetimes in execution order; Reshape-
 * like nodes become views sharing their input's slice. Graph inputs, outputs and
 * constants are never placed in the arena. */
#ifndef MIXRT_ENGINE_MEMPLAN_H
#define MIXRT_ENGINE_MEMPLAN_H

#include "backend/cpu/exec_ref.h"
#include "backend/cpu/kernels.h"
#include "mixrt/mixrt_engine.h"

#define MIXRT_MEMPLAN_ALIGN 64

struct mixrt_memplan {
    int n_values, n_nodes;
    size_t arena_bytes;     /* the arena's size: what the engine reports as activation memory */
    size_t sum_bytes;       /* the planned slices' aligned sizes added up (each view chain once) */
    size_t peak_live_bytes; /* the most aligned bytes of planned slices alive at one step */
    bool all_static;        /* every intermediate has a static size (none allocated per run) */
    int64_t *offset;        /* per value: offset in the arena, -1 when not planned */
    size_t *bytes;          /* per value: exact bytes when planned */
    int *first, *last;      /* per value: steps its slice is reserved for (the whole view chain) */
    int *root;              /* per value: the value whose slice it uses (itself unless a view) */
    uint8_t *node_flags;    /* per node index: MIXRT_EXEC_NODE_* */
    void *arena;            /* arena_bytes from the context (NULL when 0) */
    struct mixrt_exec_memory mem; /* what the executor reads */
};

/* Plans g's activations. writes_all[node] (may be NULL) says the node's kernel writes
 * every element of its outputs (its planned buffers are then not zeroed). The arena is
 * allocated from ctx. *out is written only on success; destroy with
 * mixrt_memplan_destroy. */
mixrt_status mixrt_memplan_create(mixrt_context_t ctx, const struct mixrt_graph *g, const bool *writes_all,
                                  struct mixrt_memplan **out);
/* NULL is fine. */
void mixrt_memplan_destroy(mixrt_context_t ctx, struct mixrt_memplan *p);
/* Exact static byte size of v, false when not static (or not a plain tensor). */
bool mixrt_memplan_value_bytes(const struct mixrt_value *v, size_t *out);
/* True when the CPU kernel is known to write every element of its outputs. */
bool mixrt_memplan_kernel_writes_all(const struct mixrt_cpu_kernel *k);

/* Engine hooks (engine.c). The plan an engine runs with, NULL when it has none (no
 * nodes, or planning switched off). */
const struct mixrt_memplan *mixrt_engine_memplan(mixrt_engine_t e);
/* Turns the plan off (runs allocate every output, as the executor did before plans) or
 * back on (planning again). For tests comparing the two; MIXRT_MEMPLAN=off in the
 * environment starts engines with it off. */
mixrt_status mixrt_engine_memplan_enable(mixrt_engine_t e, bool on);

#endif /* MIXRT_ENGINE_MEMPLAN_H */
