/* graph.c - IR graph containers: values and nodes in growable arrays from the graph's
 * arena, name lookup, attribute access and topological ordering. Subgraphs share the
 * main graph's arena, so destroying the main graph frees everything. */
#include <stdio.h>
#include <string.h>

#include "ir/graph.h"

mixrt_status mixrt_graph_create(mixrt_context_t ctx, struct mixrt_graph *parent, struct mixrt_graph **out) {
    struct mixrt_arena *arena = NULL;
    mixrt_status status;
    if (parent) arena = parent->arena;
    else if ((status = mixrt_arena_create(ctx, &arena)) != MIXRT_STATUS_OK) return status;
    struct mixrt_graph *g = mixrt_arena_calloc(arena, 1, sizeof(*g));
    if (!g) {
        if (!parent) mixrt_arena_destroy(arena);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    g->ctx = ctx;
    g->arena = arena;
    g->parent = parent;
    g->name = "";
    if (parent) {
        g->opsets = parent->opsets;
        g->n_opsets = parent->n_opsets;
        g->ir_version = parent->ir_version;
    }
    *out = g;
    return MIXRT_STATUS_OK;
}

/* Tensors (initializers, attribute tensors) hold data from the context allocator or
 * an mmap owned elsewhere; release them here, graphs nested in attributes included. */
static void graph_release(struct mixrt_graph *g) {
    if (!g) return;
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].init) mixrt_tensor_release(g->ctx, g->values[i].init);
    for (int i = 0; i < g->n_nodes; i++) {
        struct mixrt_node *n = &g->nodes[i];
        for (int a = 0; a < n->n_attrs; a++) {
            struct mixrt_attr *at = &n->attrs[a];
            if (at->t) mixrt_tensor_release(g->ctx, at->t);
            for (size_t j = 0; at->tensors && j < at->n; j++) mixrt_tensor_release(g->ctx, at->tensors[j]);
            if (at->g) graph_release(at->g);
            for (size_t j = 0; at->graphs && j < at->n; j++) graph_release(at->graphs[j]);
        }
    }
}

void mixrt_graph_destroy(struct mixrt_graph *g) {
    if (!g) return;
    graph_release(g);
    if (!g->parent) mixrt_arena_destroy(g->arena);
}

int mixrt_graph_find_value(const struct mixrt_graph *g, const char *name) {
    /* Linear scan from the end: recent values are looked up most. Graphs here are small
     * enough (thousands of values) that the importer's hash index is not needed. */
    for (int i = g->n_values - 1; i >= 0; i--)
        if (!strcmp(g->values[i].name, name)) return i;
    return -1;
}

static bool grow(struct mixrt_graph *g, void **arr, int *cap, size_t elem) {
    int ncap = *cap ? *cap * 2 : 16;
    void *p = mixrt_arena_calloc(g->arena, (size_t)ncap, elem);
    if (!p) return false;
    if (*cap) memcpy(p, *arr, (size_t)*cap * elem);
    *arr = p;
    *cap = ncap;
    return true;
}

int mixrt_graph_get_or_add_value(struct mixrt_graph *g, const char *name) {
    int i = mixrt_graph_find_value(g, name);
    if (i >= 0) return i;
    if (g->n_values == g->cap_values && !grow(g, (void **)&g->values, &g->cap_values, sizeof(*g->values)))
        return -1;
    struct mixrt_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof(*v));
    v->name = mixrt_arena_strdup(g->arena, name);
    if (!v->name) return -1;
    v->rank = -1;
    v->producer = -1;
    return g->n_values++;
}

int mixrt_graph_add_node(struct mixrt_graph *g, const char *name, const char *op_type, const char *domain) {
    if (g->n_nodes == g->cap_nodes && !grow(g, (void **)&g->nodes, &g->cap_nodes, sizeof(*g->nodes))) return -1;
    struct mixrt_node *n = &g->nodes[g->n_nodes];
    memset(n, 0, sizeof(*n));
    n->name = mixrt_arena_strdup(g->arena, name);
    n->op_type = mixrt_arena_strdup(g->arena, op_type);
    n->domain = mixrt_arena_strdup(g->arena, domain);
    if (!n->name || !n->op_type || !n->domain) return -1;
    return g->n_nodes++;
}

int64_t mixrt_graph_opset(const struct mixrt_graph *g, const char *domain) {
    if (!strcmp(domain, "ai.onnx")) domain = "";
    for (int i = 0; i < g->n_opsets; i++)
        if (!strcmp(g->opsets[i].domain, domain)) return g->opsets[i].version;
    return -1;
}

mixrt_status mixrt_graph_require_opset(struct mixrt_graph *g, const char *domain, int64_t version) {
    int64_t have = mixrt_graph_opset(g, domain);
    if (have == version) return MIXRT_STATUS_OK;
    if (have >= 0)
        return mixrt_error(g->ctx, MIXRT_STATUS_INVALID_MODEL, "the model imports domain '%s' at version %lld; mixrt "
                           "needs version %lld of it", domain, (long long)have, (long long)version);
    struct mixrt_opset *o = mixrt_arena_alloc(g->arena, sizeof(*o) * (size_t)(g->n_opsets + 1), _Alignof(struct mixrt_opset));
    const char *d = mixrt_arena_strdup(g->arena, domain);
    if (!o || !d) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int i = 0; i < g->n_opsets; i++) o[i] = g->opsets[i];
    o[g->n_opsets].domain = d;
    o[g->n_opsets].version = version;
    g->opsets = o;
    g->n_opsets++;
    return MIXRT_STATUS_OK;
}

const struct mixrt_attr *mixrt_node_attr(const struct mixrt_node *n, const char *name) {
    for (int i = 0; i < n->n_attrs; i++)
        if (!strcmp(n->attrs[i].name, name)) return &n->attrs[i];
    return NULL;
}

int64_t mixrt_node_attr_int(const struct mixrt_node *n, const char *name, int64_t dflt) {
    const struct mixrt_attr *a = mixrt_node_attr(n, name);
    if (!a) return dflt;
    if (a->type == MIXRT_ATTR_FLOAT) {
        /* A float where an int belongs: truncate, saturating (NaN gives 0), never UB. */
        double f = a->f;
        if (f != f) return 0;
        if (f >= 9223372036854775807.0) return INT64_MAX;
        if (f <= -9223372036854775808.0) return INT64_MIN;
        return (int64_t)f;
    }
    return a->i;
}

float mixrt_node_attr_float(const struct mixrt_node *n, const char *name, float dflt) {
    const struct mixrt_attr *a = mixrt_node_attr(n, name);
    if (!a) return dflt;
    if (a->type == MIXRT_ATTR_INT) return (float)a->i;
    return a->f;
}

const char *mixrt_node_attr_string(const struct mixrt_node *n, const char *name, const char *dflt) {
    const struct mixrt_attr *a = mixrt_node_attr(n, name);
    return a && a->s ? a->s : dflt;
}

const int64_t *mixrt_node_attr_ints(const struct mixrt_node *n, const char *name, size_t *count) {
    const struct mixrt_attr *a = mixrt_node_attr(n, name);
    if (!a || a->type != MIXRT_ATTR_INTS) {
        *count = 0;
        return NULL;
    }
    *count = a->n;
    return a->ints;
}

bool mixrt_node_attr_ints_all(const struct mixrt_node *n, const char *name, int64_t v, size_t count) {
    if (!mixrt_node_attr(n, name)) return true;
    size_t cnt = 0;
    const int64_t *a = mixrt_node_attr_ints(n, name, &cnt);
    if (count && cnt != count) return false;
    for (size_t i = 0; i < cnt; i++)
        if (a[i] != v) return false;
    return true;
}

bool mixrt_node_mean_hw(const struct mixrt_graph *g, const struct mixrt_node *n) {
    if (n->domain[0] || strcmp(n->op_type, "ReduceMean") || n->n_inputs < 1 || n->n_outputs != 1 || n->inputs[0] < 0 ||
        n->outputs[0] < 0 || g->values[n->inputs[0]].rank != 4 || !mixrt_dtype_is_float(g->values[n->inputs[0]].dtype))
        return false;
    int64_t ax[2];
    if (n->opset >= 18) {
        if (n->n_inputs < 2 || n->inputs[1] < 0 || !mixrt_graph_is_fixed_const(g, n->inputs[1])) return false;
        const struct mixrt_tensor *t = g->values[n->inputs[1]].init;
        if (mixrt_tensor_numel(t) != 2 || !mixrt_dtype_is_int(t->dtype)) return false;
        ax[0] = mixrt_load_i64(t->data, t->dtype, 0), ax[1] = mixrt_load_i64(t->data, t->dtype, 1);
    } else {
        size_t na = 0;
        const int64_t *a = mixrt_node_attr_ints(n, "axes", &na);
        if (!a || na != 2) return false;
        ax[0] = a[0], ax[1] = a[1];
    }
    for (int i = 0; i < 2; i++) ax[i] += ax[i] < 0 ? 4 : 0;
    return (ax[0] == 2 && ax[1] == 3) || (ax[0] == 3 && ax[1] == 2);
}

const float *mixrt_node_attr_floats(const struct mixrt_node *n, const char *name, size_t *count) {
    const struct mixrt_attr *a = mixrt_node_attr(n, name);
    if (!a || a->type != MIXRT_ATTR_FLOATS) {
        *count = 0;
        return NULL;
    }
    *count = a->n;
    return a->floats;
}

/* A value is available before any node runs when it is a graph input, has constant
 * data, or comes from an enclosing graph. */
static bool value_ready_at_start(const struct mixrt_value *v) {
    return (v->flags & (MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_OUTER)) || v->init;
}

/* Are all names that subgraph sub (or graphs nested in it) reads from outside, and that
 * g defines, ready? Implicit inputs order a node as much as its explicit ones. */
static bool outer_ready(const struct mixrt_graph *g, const struct mixrt_graph *sub, const bool *ready) {
    for (int i = 0; i < sub->n_values; i++) {
        if (!(sub->values[i].flags & MIXRT_VALUE_OUTER)) continue;
        int vi = mixrt_graph_find_value(g, sub->values[i].name);
        if (vi >= 0 && !ready[vi] && !(g->values[vi].flags & MIXRT_VALUE_OUTER)) return false;
    }
    for (int n = 0; n < sub->n_nodes; n++)
        for (int a = 0; a < sub->nodes[n].n_attrs; a++) {
            const struct mixrt_attr *at = &sub->nodes[n].attrs[a];
            if (at->g && !outer_ready(g, at->g, ready)) return false;
            for (size_t j = 0; at->graphs && j < at->n; j++)
                if (!outer_ready(g, at->graphs[j], ready)) return false;
        }
    return true;
}

mixrt_status mixrt_graph_toposort(struct mixrt_graph *g, int **order_out) {
    mixrt_context_t ctx = g->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    int n = g->n_nodes;
    int *order = mixrt_arena_calloc(g->arena, (size_t)(n ? n : 1), sizeof(int));
    bool *done = mixrt_calloc(ctx, (size_t)(n ? n : 1), sizeof(bool));
    bool *ready = mixrt_calloc(ctx, (size_t)(g->n_values ? g->n_values : 1), sizeof(bool));
    if (!order || !done || !ready) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (int i = 0; i < g->n_values; i++) ready[i] = value_ready_at_start(&g->values[i]);
    /* Nodes are usually already sorted: repeated forward sweeps are O(n) in that case. */
    int count = 0;
    for (bool progress = true; progress && count < n;) {
        progress = false;
        for (int i = 0; i < n; i++) {
            if (done[i]) continue;
            const struct mixrt_node *nd = &g->nodes[i];
            bool ok = true;
            for (int j = 0; j < nd->n_inputs && ok; j++)
                if (nd->inputs[j] >= 0 && !ready[nd->inputs[j]]) ok = false;
            for (int a = 0; a < nd->n_attrs && ok; a++) {
                const struct mixrt_attr *at = &nd->attrs[a];
                if (at->g && !outer_ready(g, at->g, ready)) ok = false;
                for (size_t j = 0; at->graphs && j < at->n && ok; j++)
                    if (!outer_ready(g, at->graphs[j], ready)) ok = false;
            }
            if (!ok) continue;
            done[i] = true;
            order[count++] = i;
            for (int j = 0; j < nd->n_outputs; j++)
                if (nd->outputs[j] >= 0) ready[nd->outputs[j]] = true;
            progress = true;
        }
    }
    if (count < n) {
        for (int i = 0; i < n; i++) {
            if (done[i]) continue;
            const struct mixrt_node *nd = &g->nodes[i];
            for (int j = 0; j < nd->n_inputs; j++) {
                int v = nd->inputs[j];
                if (v >= 0 && !ready[v] && g->values[v].producer < 0) {
                    status = mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL,
                                         "invalid model: %s node '%s': input #%d '%s' is not produced by any node, "
                                         "graph input or initializer",
                                         nd->op_type, nd->name, j, g->values[v].name);
                    goto fail;
                }
            }
        }
        for (int i = 0; i < n; i++)
            if (!done[i]) {
                status = mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "invalid model: graph '%s' has a cycle through %s node '%s'",
                                     g->name, g->nodes[i].op_type, g->nodes[i].name);
                goto fail;
            }
    }
    *order_out = order;
fail:
    mixrt_free(ctx, done, (size_t)(n ? n : 1) * sizeof(bool));
    mixrt_free(ctx, ready, (size_t)(g->n_values ? g->n_values : 1) * sizeof(bool));
    return status;
}

static void mark_outer_reads(const struct mixrt_graph *g, const struct mixrt_graph *sub, bool *used) {
    for (int i = 0; i < sub->n_values; i++) {
        if (!(sub->values[i].flags & MIXRT_VALUE_OUTER)) continue;
        int vi = mixrt_graph_find_value(g, sub->values[i].name);
        if (vi >= 0) used[vi] = true;
    }
    for (int n = 0; n < sub->n_nodes; n++) mixrt_node_mark_outer_reads(g, &sub->nodes[n], used);
}

void mixrt_node_mark_outer_reads(const struct mixrt_graph *g, const struct mixrt_node *n, bool *used) {
    for (int a = 0; a < n->n_attrs; a++) {
        const struct mixrt_attr *at = &n->attrs[a];
        if (at->g) mark_outer_reads(g, at->g, used);
        for (size_t j = 0; at->graphs && j < at->n; j++)
            if (at->graphs[j]) mark_outer_reads(g, at->graphs[j], used);
    }
}

int mixrt_graph_add_unique_value(struct mixrt_graph *g, const char *base, const char *suffix) {
    char name[600];
    for (int k = 0; k < 10000; k++) {
        if (k) snprintf(name, sizeof(name), "%.500s%s_%d", base, suffix, k);
        else snprintf(name, sizeof(name), "%.500s%s", base, suffix);
        if (mixrt_graph_find_value(g, name) < 0) return mixrt_graph_get_or_add_value(g, name);
    }
    return -1;
}
