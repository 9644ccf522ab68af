/* memplan.c - plans an engine's activation arena. Invariant: two slices whose lifetimes
 * (steps from the first write to the last read of any value using the slice) share a
 * step never share a byte; every offset is a multiple of MIXRT_MEMPLAN_ALIGN. Values in
 * a view chain (Reshape of a value, Flatten of that, ...) share one slice whose lifetime
 * covers them all, so a view never outlives the memory it reads. */
#include <stdlib.h>
#include <string.h>

#include "engine/memplan.h"

/* A Reshape-like node: its output is its input's bytes with another shape. */
static bool is_view_op(const struct mixrt_graph *g, const struct mixrt_node *nd) {
    static const char *const ops[] = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"};
    if (nd->domain[0]) return false;
    bool found = false;
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]) && !found; i++) found = !strcmp(nd->op_type, ops[i]);
    if (!found || nd->n_inputs < 1 || nd->inputs[0] < 0 || nd->n_outputs < 1 || nd->outputs[0] < 0) return false;
    if (!strcmp(nd->op_type, "Dropout")) {
        /* Inference only: no mask wanted, and training mode off. */
        if (nd->n_outputs > 1 && nd->outputs[1] >= 0) return false;
        if (nd->opset >= 12) {
            if (nd->n_inputs > 2 && nd->inputs[2] >= 0) {
                const struct mixrt_tensor *t = g->values[nd->inputs[2]].init;
                if (!t || !mixrt_graph_is_fixed_const(g, nd->inputs[2]) || t->dtype != MIXRT_DTYPE_BOOL || t->nbytes != 1 ||
                    ((const uint8_t *)t->data)[0])
                    return false;
            }
        } else if (nd->opset < 7 && mixrt_node_attr_int(nd, "is_test", 0) == 0) {
            return false;
        }
    } else if (nd->n_outputs != 1) {
        return false;
    }
    const struct mixrt_value *x = &g->values[nd->inputs[0]], *y = &g->values[nd->outputs[0]];
    if ((x->flags | y->flags) & MIXRT_VALUE_SEQUENCE) return false;
    if (y->flags & MIXRT_VALUE_GRAPH_OUTPUT) return false; /* its kernel writes it where the caller wants it */
    return x->dtype == y->dtype && x->dtype != MIXRT_DTYPE_UNDEFINED && x->dtype != MIXRT_DTYPE_STRING;
}

/* Exact static byte size of v, false when not static (or not a plain tensor). */
bool mixrt_memplan_value_bytes(const struct mixrt_value *v, size_t *out) {
    size_t esz = mixrt_dtype_size(v->dtype), n = esz;
    if (!esz || v->dtype == MIXRT_DTYPE_STRING || v->rank < 0 || (v->flags & MIXRT_VALUE_SEQUENCE)) return false;
    for (int d = 0; d < v->rank; d++) {
        if (v->dims[d].value < 0 || (uint64_t)v->dims[d].value > SIZE_MAX) return false;
        if (!mixrt_mul_size(n, (size_t)v->dims[d].value, &n)) return false;
    }
    *out = n;
    return true;
}

static size_t align_up(size_t n) { return (n + MIXRT_MEMPLAN_ALIGN - 1) & ~(size_t)(MIXRT_MEMPLAN_ALIGN - 1); }

bool mixrt_memplan_kernel_writes_all(const struct mixrt_cpu_kernel *k) {
    /* Kernels read to write every output element whatever the input (the degenerate
     * empty-input cases, which rely on a zeroed output, are excluded by the planner).
     * Kernels that may hand a node to the reference kernel are not listed. New kernels
     * can instead call mixrt_kernel_output_uninit. */
    static const char *const names[] = {"dnnl_conv", "dnnl_matmul", "dnnl_gemm"};
    if (!k || !k->name) return false;
    if (!strncmp(k->name, "elt_", 4)) return true;
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(k->name, names[i])) return true;
    return false;
}

struct slice {
    int root;
    size_t size; /* aligned */
    int first, last;
    int64_t offset;
};

static int by_size_desc(const void *a, const void *b) {
    const struct slice *x = a, *y = b;
    if (x->size != y->size) return x->size < y->size ? 1 : -1;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->root < y->root ? -1 : x->root > y->root;
}

static int by_offset(const void *a, const void *b) {
    const struct slice *const *x = a, *const *y = b;
    return (*x)->offset < (*y)->offset ? -1 : (*x)->offset > (*y)->offset;
}

void mixrt_memplan_destroy(mixrt_context_t ctx, struct mixrt_memplan *p) {
    if (!p) return;
    size_t nv = (size_t)(p->n_values > 0 ? p->n_values : 1), nn = (size_t)(p->n_nodes > 0 ? p->n_nodes : 1);
    mixrt_free(ctx, p->offset, nv * sizeof(*p->offset));
    mixrt_free(ctx, p->bytes, nv * sizeof(*p->bytes));
    mixrt_free(ctx, p->first, nv * sizeof(*p->first));
    mixrt_free(ctx, p->last, nv * sizeof(*p->last));
    mixrt_free(ctx, p->root, nv * sizeof(*p->root));
    mixrt_free(ctx, p->node_flags, nn);
    mixrt_free(ctx, p->arena, p->arena_bytes);
    mixrt_free(ctx, p, sizeof(*p));
}

mixrt_status mixrt_memplan_create(mixrt_context_t ctx, const struct mixrt_graph *g, const bool *writes_all,
                                  struct mixrt_memplan **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    int nv = g->n_values, nn = g->n_nodes;
    size_t nvs = (size_t)(nv > 0 ? nv : 1), nns = (size_t)(nn > 0 ? nn : 1);
    struct mixrt_memplan *p = mixrt_calloc(ctx, 1, sizeof(*p));
    int *last_use = NULL, *step = NULL;
    struct slice *sl = NULL, **placed = NULL;
    int n_sl = 0;
    if (!p) return MIXRT_STATUS_OUT_OF_MEMORY;
    p->n_values = nv;
    p->n_nodes = nn;
    p->all_static = true;
    p->offset = mixrt_calloc(ctx, nvs, sizeof(*p->offset));
    p->bytes = mixrt_calloc(ctx, nvs, sizeof(*p->bytes));
    p->first = mixrt_calloc(ctx, nvs, sizeof(*p->first));
    p->last = mixrt_calloc(ctx, nvs, sizeof(*p->last));
    p->root = mixrt_calloc(ctx, nvs, sizeof(*p->root));
    p->node_flags = mixrt_calloc(ctx, nns, 1);
    last_use = mixrt_calloc(ctx, nvs, sizeof(int));
    step = mixrt_calloc(ctx, nns, sizeof(int));
    sl = mixrt_calloc(ctx, nvs, sizeof(*sl));
    placed = mixrt_calloc(ctx, nvs, sizeof(*placed));
    if (!p->offset || !p->bytes || !p->first || !p->last || !p->root || !p->node_flags || !last_use || !step || !sl ||
        !placed) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    MIXRT_CHECK(ctx, nn == 0 || g->order, MIXRT_STATUS_INTERNAL, "memory plan: the graph has no execution order");
    mixrt_exec_last_uses(g, last_use);
    for (int s = 0; s < nn; s++) step[g->order[s]] = s;

    /* Which values get a slice of their own: intermediates of static size. */
    for (int v = 0; v < nv; v++) {
        const struct mixrt_value *val = &g->values[v];
        p->offset[v] = -1;
        p->root[v] = -1;
        p->first[v] = p->last[v] = -1;
        if (val->init || val->producer < 0 || (val->flags & (MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_GRAPH_OUTPUT)))
            continue;
        size_t b;
        if (!mixrt_memplan_value_bytes(val, &b)) {
            p->all_static = false;
            continue;
        }
        if (b == 0) continue; /* no data at all */
        p->bytes[v] = b;
        p->root[v] = v;
        int def = step[val->producer];
        p->first[v] = def;
        p->last[v] = last_use[v] > def ? last_use[v] : def; /* never read: alive while its node runs */
    }

    /* Views join their input's slice (in execution order, so chains fold to one root). */
    for (int s = 0; s < nn; s++) {
        int ni = g->order[s];
        const struct mixrt_node *nd = &g->nodes[ni];
        if (writes_all && writes_all[ni]) {
            /* Empty inputs take kernels down paths that rely on a zeroed output. */
            bool nonempty = true;
            for (int j = 0; j < nd->n_inputs && nonempty; j++) {
                size_t b;
                if (nd->inputs[j] >= 0) nonempty = mixrt_memplan_value_bytes(&g->values[nd->inputs[j]], &b) && b > 0;
            }
            if (nonempty) p->node_flags[ni] |= MIXRT_EXEC_NODE_NO_ZERO;
        }
        if (!is_view_op(g, nd)) continue;
        int x = nd->inputs[0], y = nd->outputs[0];
        size_t by;
        if (!mixrt_memplan_value_bytes(&g->values[y], &by)) continue;
        if (p->root[x] >= 0 && p->root[y] >= 0 && p->bytes[x] == p->bytes[y]) {
            int r = p->root[x];
            p->root[y] = r;
            if (p->last[y] > p->last[r]) p->last[r] = p->last[y];
        } else if (p->root[x] >= 0 || (p->root[y] >= 0 && g->values[x].producer >= 0 &&
                                       !(g->values[x].flags & MIXRT_VALUE_GRAPH_INPUT))) {
            continue; /* sizes disagree, or a dynamic producer: let the kernel copy */
        }
        /* Inputs that are constants or graph inputs are viewed without a slice. */
        if (p->root[y] == y) {
            p->root[y] = -1;
            p->bytes[y] = 0;
        }
        p->node_flags[ni] |= MIXRT_EXEC_NODE_VIEW;
    }

    /* One slice per root; lifetimes of the members were merged into the root's. */
    for (int v = 0; v < nv; v++)
        if (p->root[v] == v) {
            sl[n_sl].root = v;
            sl[n_sl].size = align_up(p->bytes[v]);
            sl[n_sl].first = p->first[v];
            sl[n_sl].last = p->last[v];
            sl[n_sl].offset = -1;
            MIXRT_CHECK(ctx, sl[n_sl].size >= p->bytes[v], MIXRT_STATUS_INVALID_MODEL,
                        "memory plan: value '%s' is too large", g->values[v].name);
            n_sl++;
        }
    qsort(sl, (size_t)n_sl, sizeof(*sl), by_size_desc);
    /* Greedy by size: each slice goes into the smallest gap between the slices already
     * placed whose lifetimes overlap its own, or after the last of them. */
    for (int i = 0; i < n_sl; i++) {
        int np = 0;
        for (int j = 0; j < i; j++)
            if (sl[j].first <= sl[i].last && sl[i].first <= sl[j].last) placed[np++] = &sl[j];
        qsort(placed, (size_t)np, sizeof(*placed), by_offset);
        size_t at = 0, best = SIZE_MAX, best_gap = SIZE_MAX;
        for (int j = 0; j < np; j++) {
            size_t o = (size_t)placed[j]->offset;
            if (o > at && o - at >= sl[i].size && o - at < best_gap) {
                best = at;
                best_gap = o - at;
            }
            size_t end = o + placed[j]->size;
            if (end > at) at = end;
        }
        if (best == SIZE_MAX) best = at;
        MIXRT_CHECK(ctx, best <= SIZE_MAX - sl[i].size && best <= (size_t)INT64_MAX, MIXRT_STATUS_INVALID_MODEL,
                    "memory plan: the arena size overflows");
        sl[i].offset = (int64_t)best;
        if (best + sl[i].size > p->arena_bytes) p->arena_bytes = best + sl[i].size;
        MIXRT_CHECK(ctx, p->sum_bytes <= SIZE_MAX - sl[i].size, MIXRT_STATUS_INVALID_MODEL,
                    "memory plan: the activation sizes overflow");
        p->sum_bytes += sl[i].size;
    }
    for (int s = 0; s < nn; s++) {
        size_t live = 0;
        for (int i = 0; i < n_sl; i++)
            if (sl[i].first <= s && s <= sl[i].last) live += sl[i].size;
        if (live > p->peak_live_bytes) p->peak_live_bytes = live;
    }
    for (int i = 0; i < n_sl; i++) {
        int r = sl[i].root;
        p->offset[r] = sl[i].offset;
    }
    for (int v = 0; v < nv; v++)
        if (p->root[v] >= 0 && p->root[v] != v) {
            int r = p->root[v];
            p->offset[v] = p->offset[r];
            p->first[v] = p->first[r];
            p->last[v] = p->last[r];
        }
    if (p->arena_bytes) {
        p->arena = mixrt_alloc(ctx, p->arena_bytes);
        if (!p->arena) {
            status = mixrt_error(ctx, MIXRT_STATUS_OUT_OF_MEMORY, "cannot allocate the %zu-byte activation arena",
                                 p->arena_bytes);
            p->arena_bytes = 0;
            goto fail;
        }
    }
    p->mem.arena = p->arena;
    p->mem.offset = p->offset;
    p->mem.bytes = p->bytes;
    p->mem.node_flags = p->node_flags;
fail:
    mixrt_free(ctx, last_use, nvs * sizeof(int));
    mixrt_free(ctx, step, nns * sizeof(int));
    mixrt_free(ctx, sl, nvs * sizeof(*sl));
    mixrt_free(ctx, placed, nvs * sizeof(*placed));
    if (status != MIXRT_STATUS_OK) {
        mixrt_memplan_destroy(ctx, p);
        return status;
    }
    *out = p;
    return MIXRT_STATUS_OK;
}
