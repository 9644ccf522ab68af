/* passes_impl.h - what a pass file needs from the pass driver (passes.c): the per-pass
 * state and the use/replace helpers. A pass marks nodes dead (st->dead) instead of
 * removing them; the driver compacts and re-sorts after each pass that reports a removal.
 * A pass may append nodes and values (mixrt_graph_add_node, mixrt_graph_add_unique_value):
 * nodes added after the pass began are never dead, and values added after it began are
 * neither graph outputs nor read by subgraphs. */
#ifndef MIXRT_PASSES_PASSES_IMPL_H
#define MIXRT_PASSES_PASSES_IMPL_H

#include "passes/passes.h"

struct mixrt_pass_state {
    struct mixrt_graph *g;
    bool *dead;       /* [n_dead]: removed by the current pass */
    bool *outer_used; /* [n_values]: read by name from some subgraph */
    bool *is_output;  /* [n_values]: a graph output */
    int n_dead;       /* node count when the pass began */
    int n_values;     /* value count when the pass began */
    unsigned flags;   /* the mixrt_pass_flags the driver runs under */
};

/* A pass: rewrites st->g, adds the number of nodes it removed (or fused away) to *removed.
 * When it changes the graph without removing a node it must still count at least 1, so
 * the driver re-sorts and iterates. */
typedef mixrt_status (*mixrt_pass_fn)(struct mixrt_pass_state *st, int *removed);

static inline bool mixrt_pass_is_dead(const struct mixrt_pass_state *st, int node) {
    return node >= 0 && node < st->n_dead && st->dead[node];
}
/* Uses of value vi by live nodes (inputs), plus one when it is a graph output or read by a
 * subgraph by name. */
int mixrt_pass_count_uses(const struct mixrt_pass_state *st, int vi);
/* Replaces every use of value from by value to among live nodes. */
void mixrt_pass_replace_uses(struct mixrt_pass_state *st, int from, int to);
/* Makes value vi the constant t (its dtype and shape; no producer). */
void mixrt_pass_set_const(struct mixrt_graph *g, int vi, struct mixrt_tensor *t);

/* The one live node reading value vi when vi has exactly one use (so it is no graph output
 * and no subgraph reads it), else -1. */
int mixrt_pass_sole_reader(const struct mixrt_pass_state *st, int vi);
/* Appends node op (default domain, opset) named "<base><sfx>" reading in[0..n_in) and writing
 * out (its producer now); the node's index, or -1 when out of memory. */
int mixrt_pass_add_node(struct mixrt_graph *g, const char *base, const char *sfx, const char *op, int64_t opset,
                        const int *in, int n_in, int out);
/* A new constant value "<base><suffix>" holding t (an arena struct owning its data, released
 * when the value cannot be added); its index, or -1 when out of memory. */
int mixrt_pass_add_const(struct mixrt_graph *g, const char *base, const char *suffix, struct mixrt_tensor *t);
/* A new constant value "<base><suffix>": the n int64 values v, 1-D; -1 when out of memory. */
int mixrt_pass_i64_const(struct mixrt_graph *g, const char *base, const char *suffix, const int64_t *v, int64_t n);

/* Appends attribute name of the given type to node ni (the caller sets its value); NULL on
 * out-of-memory. */
struct mixrt_attr *mixrt_pass_attr_add(struct mixrt_graph *g, int ni, const char *name, enum mixrt_attr_type type);

/* The fusion and layout passes, each in its own file. */
mixrt_status mixrt_pass_fuse_transformer(struct mixrt_pass_state *st, int *removed); /* fuse_transformer.c */
mixrt_status mixrt_pass_bare_matmul(struct mixrt_pass_state *st, int *removed);      /* fuse_transformer.c */
mixrt_status mixrt_pass_fuse_conv(struct mixrt_pass_state *st, int *removed);        /* fuse_conv.c */
mixrt_status mixrt_pass_layout(struct mixrt_pass_state *st, int *removed);           /* fuse_conv.c */
mixrt_status mixrt_pass_mbconv(struct mixrt_pass_state *st, int *removed);           /* fuse_conv.c */
mixrt_status mixrt_pass_stem_pool(struct mixrt_pass_state *st, int *removed);        /* fuse_conv.c */
/* A channel Concat read only by a depthwise 1x1 conv (an unfolded BatchNorm) -> com.mixrt
 * ConcatAffine (MIXRT_PASS_CONV_CPU engines; MIXRT_CONCAT_AFFINE=off: not). fuse_conv.c. */
mixrt_status mixrt_pass_concat_affine(struct mixrt_pass_state *st, int *removed);
/* Whether the layout pass makes 3-D channels-last regions (MIXRT_PASS_CONV_CPU engines;
 * MIXRT_LAYOUT_3D=off: not). fuse_conv.c. */
bool mixrt_pass_layout_3d_on(void);
mixrt_status mixrt_pass_fuse_attention(struct mixrt_pass_state *st, int *removed);   /* fuse_attention.c */
mixrt_status mixrt_pass_fuse_eltwise(struct mixrt_pass_state *st, int *removed);     /* fuse_eltwise.c */
mixrt_status mixrt_pass_lower_einsum(struct mixrt_pass_state *st, int *removed);     /* lower_einsum.c */
mixrt_status mixrt_pass_merge_matmul(struct mixrt_pass_state *st, int *removed);     /* merge_matmul.c */
mixrt_status mixrt_pass_merge_conv(struct mixrt_pass_state *st, int *removed);       /* merge_matmul.c */
mixrt_status mixrt_pass_unroll_loop(struct mixrt_pass_state *st, int *removed);      /* unroll_loop.c */

#endif /* MIXRT_PASSES_PASSES_IMPL_H */
