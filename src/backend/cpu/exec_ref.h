/* exec_ref.h - the CPU reference executor: runs a graph node by node in topological
 * order with the reference kernels, freeing each intermediate after its last use. */
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

/* Engine execution of the main graph: per-node kernel overrides and an observer.
 * fns[node] (indexed by node index, not order) replaces the reference kernel when
 * non-NULL, with states[node] passed as k->state. observe, when set, sees every tensor
 * output of every node right after it is produced (borrowed, valid during the call). */
struct mixrt_exec_opts {
    const mixrt_kernel_fn *fns;
    void *const *states;
    void (*observe)(void *user, const struct mixrt_graph *g, int node, int output, const struct mixrt_tensor *t);
    void *user;
};
mixrt_status mixrt_exec_graph_opts(mixrt_context_t ctx, const struct mixrt_graph *g, struct mixrt_exec_env *parent,
                                   int n_in, const struct mixrt_tensor *const *in_t,
                                   const struct mixrt_seq *const *in_s, struct mixrt_tensor *outs,
                                   struct mixrt_seq *out_seqs, bool *out_is_seq, const struct mixrt_exec_opts *opts);

#endif
