/* graph_build.h - the helpers the pass and kernel tests use to build graphs by hand: a typed
 * value, a graph input or output, node attributes. Header-only (static inline), for
 * tests/test_*.c. */
#ifndef MIXRT_TESTS_GRAPH_BUILD_H
#define MIXRT_TESTS_GRAPH_BUILD_H

#include <string.h>

#include "backend/cpu/ref.h"
#include "core/core.h"
#include "ir/graph.h"
#include "testutil.h"

/* Value name (added when new) with dtype dt and static dims[rank]. */
static inline int add_value(struct mixrt_graph *g, const char *name, mixrt_dtype dt, int rank, const int64_t *dims) {
    int vi = mixrt_graph_get_or_add_value(g, name);
    struct mixrt_value *v = &g->values[vi];
    v->dtype = dt;
    v->rank = rank;
    for (int i = 0; i < rank; i++) {
        v->dims[i].value = dims[i];
        v->dims[i].param = NULL;
    }
    return vi;
}

/* add_value, declared as the graph's next input. */
static inline int add_input(struct mixrt_graph *g, const char *name, mixrt_dtype dt, int rank, const int64_t *dims) {
    int vi = add_value(g, name, dt, rank, dims);
    g->values[vi].flags |= MIXRT_VALUE_GRAPH_INPUT;
    int *ins = mixrt_arena_calloc(g->arena, (size_t)g->n_inputs + 1, sizeof(int));
    if (g->n_inputs) memcpy(ins, g->inputs, (size_t)g->n_inputs * sizeof(int));
    ins[g->n_inputs++] = vi;
    g->inputs = ins;
    return vi;
}

/* Declares value vi the graph's next output. */
static inline void graph_set_output(struct mixrt_graph *g, int vi) {
    int *outs = mixrt_arena_calloc(g->arena, (size_t)g->n_outputs + 1, sizeof(int));
    if (g->n_outputs) memcpy(outs, g->outputs, (size_t)g->n_outputs * sizeof(int));
    outs[g->n_outputs++] = vi;
    g->outputs = outs;
    g->values[vi].flags |= MIXRT_VALUE_GRAPH_OUTPUT;
}

/* Appends attribute name of type to node index ni (arena storage); the caller fills it. */
static inline struct mixrt_attr *node_attr_add(struct mixrt_graph *g, int ni, const char *name,
                                               enum mixrt_attr_type type) {
    struct mixrt_node *nd = &g->nodes[ni];
    struct mixrt_attr *a = mixrt_arena_calloc(g->arena, (size_t)nd->n_attrs + 1, sizeof(*a));
    if (nd->n_attrs) memcpy(a, nd->attrs, (size_t)nd->n_attrs * sizeof(*a));
    nd->attrs = a;
    a[nd->n_attrs].name = name;
    a[nd->n_attrs].type = type;
    return &a[nd->n_attrs++];
}
static inline void node_attr_ints(struct mixrt_graph *g, int ni, const char *name, size_t n, const int64_t *v) {
    struct mixrt_attr *a = node_attr_add(g, ni, name, MIXRT_ATTR_INTS);
    a->n = n;
    a->ints = mixrt_arena_calloc(g->arena, n ? n : 1, sizeof(int64_t));
    if (n) memcpy(a->ints, v, n * sizeof(int64_t));
}
static inline void node_attr_int(struct mixrt_graph *g, int ni, const char *name, int64_t v) {
    node_attr_add(g, ni, name, MIXRT_ATTR_INT)->i = v;
}
static inline void node_attr_str(struct mixrt_graph *g, int ni, const char *name, const char *s) {
    struct mixrt_attr *a = node_attr_add(g, ni, name, MIXRT_ATTR_STRING);
    a->s = s;
    a->s_len = strlen(s);
}
static inline void node_attr_floats(struct mixrt_graph *g, int ni, const char *name, size_t n, const float *v) {
    struct mixrt_attr *a = node_attr_add(g, ni, name, MIXRT_ATTR_FLOATS);
    a->n = n;
    a->floats = mixrt_arena_calloc(g->arena, n ? n : 1, sizeof(float));
    if (n) memcpy(a->floats, v, n * sizeof(float));
}

/* A constant initializer name (dtype dt, dims[rank]) holding vals (numel of them, stored in dt). */
static inline int add_const_values(mixrt_context_t ctx, struct mixrt_graph *g, const char *name, mixrt_dtype dt,
                                   int rank, const int64_t *dims, const double *vals) {
    int vi = add_value(g, name, dt, rank, dims);
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    TU_CHECK(mixrt_tensor_init(ctx, t, dt, rank, dims) == MIXRT_STATUS_OK, "const %s", name);
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) mixrt_store_f64(t->data, dt, i, vals[i]);
    g->values[vi].init = t;
    g->values[vi].flags |= MIXRT_VALUE_INITIALIZER;
    return vi;
}

/* A constant initializer, uniform random in [-a, a] (tu_uniform: never all zeros). */
static inline int add_const_uniform(mixrt_context_t ctx, struct mixrt_graph *g, const char *name, mixrt_dtype dt,
                                    int rank, const int64_t *dims, double a) {
    int vi = add_value(g, name, dt, rank, dims);
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    TU_CHECK(mixrt_tensor_init(ctx, t, dt, rank, dims) == MIXRT_STATUS_OK, "const %s", name);
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) mixrt_store_f64(t->data, dt, i, tu_uniform(-a, a));
    g->values[vi].init = t;
    g->values[vi].flags |= MIXRT_VALUE_INITIALIZER;
    return vi;
}

/* Node op (default domain, opset 17, named out) reading ins[n_in] and writing value out (typed
 * later by inference); returns out's index. */
static inline int add_op_node(struct mixrt_graph *g, const char *op, int n_in, const int *ins, const char *out) {
    int ni = mixrt_graph_add_node(g, out, op, "");
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 17;
    n->n_inputs = n_in;
    n->inputs = mixrt_arena_calloc(g->arena, (size_t)(n_in ? n_in : 1), sizeof(int));
    if (n_in) memcpy(n->inputs, ins, (size_t)n_in * sizeof(int));
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs[0] = mixrt_graph_get_or_add_value(g, out);
    g->values[n->outputs[0]].producer = ni;
    return n->outputs[0];
}

/* A channels-last 2-D com.mixrt FusedConv node `name` (opset 1, one group): X, W, B, Z (value
 * indices, -1 absent; Z makes it four inputs) -> a new value yname of dtype ydt and dims yd, with
 * kernel_shape kh x kw, strides 1 and pads[4]; the activation and its parameters are the
 * caller's. Returns the node's index. */
static inline int add_fused_conv_nhwc(struct mixrt_graph *g, const char *name, int x, int w, int b, int z,
                                      const char *yname, mixrt_dtype ydt, const int64_t *yd, int64_t kh, int64_t kw,
                                      const int64_t *pads) {
    int ni = mixrt_graph_add_node(g, name, "FusedConv", MIXRT_DOMAIN);
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 1;
    n->n_inputs = z >= 0 ? 4 : 3;
    n->inputs = mixrt_arena_calloc(g->arena, 4, sizeof(int));
    n->inputs[0] = x, n->inputs[1] = w, n->inputs[2] = b, n->inputs[3] = z;
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs[0] = add_value(g, yname, ydt, 4, yd);
    g->values[n->outputs[0]].producer = ni;
    node_attr_ints(g, ni, "kernel_shape", 2, (int64_t[]){kh, kw});
    node_attr_ints(g, ni, "strides", 2, (int64_t[]){1, 1});
    node_attr_ints(g, ni, "pads", 4, pads);
    node_attr_int(g, ni, "group", 1);
    node_attr_int(g, ni, "channels_last", 1);
    return ni;
}

/* Runs kernel fn (its prepared state, or NULL: the reference) on node ni of g with inputs
 * in[0..n_in) (at most 8) and one wanted output, *out as the caller left it: zeroed (the kernel
 * allocates it, owned by the caller after) or a buffer bound with MIXRT_TENSOR_PREBOUND.
 * scratch may be NULL. */
static inline mixrt_status run_node_into(mixrt_context_t ctx, mixrt_kernel_fn fn, void *state, struct mixrt_graph *g,
                                         int ni, int n_in, const struct mixrt_tensor **in, struct mixrt_tensor *out,
                                         struct mixrt_exec_scratch *scratch) {
    const struct mixrt_seq *in_seq[8] = {NULL};
    bool wanted[1] = {true}, is_seq[1] = {false};
    if (n_in < 0 || n_in > 8) return MIXRT_STATUS_INVALID_ARGUMENT;
    struct mixrt_kernel_ctx k = {.ctx = ctx, .graph = g, .node = &g->nodes[ni], .opset = 1, .n_in = n_in,
                                 .in = in, .in_seq = in_seq, .n_out = 1, .out = out, .out_is_seq = is_seq,
                                 .out_wanted = wanted, .state = state, .scratch = scratch};
    return fn(&k);
}

/* The same into a fresh output: *out is zeroed first, and owned by the caller after. */
static inline mixrt_status run_node(mixrt_context_t ctx, mixrt_kernel_fn fn, void *state, struct mixrt_graph *g,
                                    int ni, int n_in, const struct mixrt_tensor **in, struct mixrt_tensor *out) {
    memset(out, 0, sizeof(*out));
    return run_node_into(ctx, fn, state, g, ni, n_in, in, out, NULL);
}

#endif /* MIXRT_TESTS_GRAPH_BUILD_H */
