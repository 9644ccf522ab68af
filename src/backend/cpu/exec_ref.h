/* exec_ref.h - the CPU reference executor: runs a graph node by node in topological
 * order with the reference kernels, freeing each intermediate after its last use. An
 * engine may hand it a memory plan (intermediates placed in one arena, reshapes run as
 * views) and caller-owned output tensors to write into. */
#ifndef MIXRT_BACKEND_CPU_EXEC_REF_H
#define MIXRT_BACKEND_CPU_EXEC_REF_H

#include "backend/cpu/ref.h"

/* Runs g. Inputs bind positionally to g->inputs: in_t[i] (borrowed, must outlive the
 * call) or in_s[i] for a sequence, both NULL to use the input's initializer (an error
 * when it has none). n_in may be less than g->n_inputs (missing ones as NULL); in_s may
 * be NULL. parent is the enclosing graph's environment (for outer-scope names) or NULL.
 * Outputs: outs[g->n_outputs] and out_seqs/out_is_seq (may be NULL when no output is
 * a sequence) receive owned results; on failure nothing is left in them. */
mixrt_status mixrt_exec_graph(mixrt_context_t ctx, const struct mixrt_graph *g, struct mixrt_exec_env *parent,
                              int n_in, const struct mixrt_tensor *const *in_t, const struct mixrt_seq *const *in_s,
                              struct mixrt_tensor *outs, struct mixrt_seq *out_seqs, bool *out_is_seq);

/* Private tensor flags the executor sets on k->out[i] before a kernel runs (never on a
 * tensor a kernel sees after mixrt_kernel_output): PREBOUND means data/capacity name a
 * buffer the executor planned for that output, used when the kernel asks for exactly
 * capacity bytes; UNINIT means the kernel writes every element, so the buffer is not
 * zeroed first. A tensor with none of the MIXRT_TENSOR_OWNS_* flags borrows its data
 * (arena slice, view of a constant or input, caller buffer): release only empties it. */
#define MIXRT_TENSOR_PREBOUND (1u << 16)
#define MIXRT_TENSOR_UNINIT (1u << 17)

/* Per-node flags of a memory plan. */
enum {
    MIXRT_EXEC_NODE_VIEW = 1u << 0,    /* Reshape-like: output 0 is input 0's bytes, shape of the value */
    MIXRT_EXEC_NODE_NO_ZERO = 1u << 1, /* the kernel writes every element of its outputs */
};

/* A memory plan for the main graph (src/engine/memplan.c makes it). offset[v] >= 0: value
 * v lives at arena + offset[v], bytes[v] long (values in one view chain share a slice);
 * -1: allocated per run. node_flags indexed by node index. */
struct mixrt_exec_memory {
    uint8_t *arena;
    const int64_t *offset;
    const size_t *bytes;
    const uint8_t *node_flags;
};

/* Engine execution of the main graph: per-node kernel overrides and an observer.
 * fns[node] (indexed by node index, not order) replaces the reference kernel when
 * non-NULL, with states[node] passed as k->state. observe, when set, sees every tensor
 * output of every node right after it is produced (borrowed, valid during the call).
 * mem: a memory plan for g (NULL: every output allocated per run). out_into[i] (NULL
 * array or entry: allocate): a caller tensor output i is written into; its dtype and dims
 * must be the output's (named error otherwise), outs[i] then borrows its data. */
/* A kernel scratch buffer (mixrt_kernel_scratch) from the context's allocator, grown to the
 * largest request and kept: by an engine across its runs (freed at its destroy), or by one run. */
struct mixrt_exec_scratch {
    void *p;
    size_t bytes;
};

/* The kernels an engine chose for the nodes of one subgraph body (engine.c, bodies_prepare):
 * fns[node] / states[node] indexed by node index, NULL entries run the reference. A run whose
 * options list them runs body g (a Loop's, If's or Scan's, at any depth) with them. */
struct mixrt_exec_sub {
    const struct mixrt_graph *g;
    const mixrt_kernel_fn *fns;
    void *const *states;
};

struct mixrt_exec_opts {
    const mixrt_kernel_fn *fns;
    void *const *states;
    void (*observe)(void *user, const struct mixrt_graph *g, int node, int output, const struct mixrt_tensor *t);
    void *user;
    const struct mixrt_exec_memory *mem;
    struct mixrt_tensor *const *out_into;
    struct mixrt_exec_scratch *scratch; /* NULL: the run keeps its own, freed when it ends */
    const struct mixrt_exec_sub *subs; /* n_subs bodies with kernels of their own (NULL: none) */
    int n_subs;
};

/* An environment over main graph g whose values are vals[v] (those of rank >= 0; others
 * resolve to their initializer or nothing), for running one node outside mixrt_exec_graph
 * (a CUDA engine's CPU layer): its subgraphs find outer-scope names there (k->env). vals
 * is borrowed and must outlive the environment; free it with mixrt_exec_env_free. */
mixrt_status mixrt_exec_env_bind(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_tensor *vals,
                                 struct mixrt_exec_env **out);
void mixrt_exec_env_free(struct mixrt_exec_env *env);

/* The step (position in g->order) of each value's last read, counting reads by the
 * subgraphs of a node as reads at that node; graph outputs get g->n_nodes, values never
 * read -1. last_use has g->n_values entries. */
void mixrt_exec_last_uses(const struct mixrt_graph *g, int *last_use);
mixrt_status mixrt_exec_graph_opts(mixrt_context_t ctx, const struct mixrt_graph *g, struct mixrt_exec_env *parent,
                                   int n_in, const struct mixrt_tensor *const *in_t,
                                   const struct mixrt_seq *const *in_s, struct mixrt_tensor *outs,
                                   struct mixrt_seq *out_seqs, bool *out_is_seq, const struct mixrt_exec_opts *opts);

#endif
