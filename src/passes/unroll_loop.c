/* unroll_loop.c - a Loop with a constant trip count and a condition that stays true becomes its
 * body copied once per trip into the main graph (the trip number a constant, the loop-carried
 * values threaded from copy to copy, scan outputs stacked by Unsqueeze + Concat); then
 * SequenceAt and SequenceLength of a sequence whose elements are known (SequenceEmpty or
 * SequenceConstruct, then appending SequenceInserts) read the element or the count directly.
 * TorchScript exports a Python loop over a tensor's pieces this way: torchvision's MViT makes
 * each attention block's q, k, v pieces by a Loop of Slices into a sequence, read back by
 * SequenceAt. Left as they were, every shape after the first Loop is unknown, and the convs,
 * products and Einsums behind it ran on the f64 reference (20.5 s a run, where the dynamo export
 * of the same model took 1.9 s).
 * Invariant: the copies compute what the Loop computed, in the same order and precision; a
 * Loop the rewrite cannot prove that for (a data-dependent trip count or condition, a body
 * with subgraphs or tensor attributes, a name it cannot resolve) is left as it is. */
#include <stdio.h>
#include <string.h>

#include "passes/passes_impl.h"

/* Trips, and body nodes over all trips, beyond which a Loop stays a Loop. */
#define UNROLL_MAX_TRIPS 64
#define UNROLL_MAX_NODES 4096

static const struct mixrt_graph *body_of(const struct mixrt_node *n) {
    const struct mixrt_attr *a = mixrt_node_attr(n, "body");
    return a && a->type == MIXRT_ATTR_GRAPH ? a->g : NULL;
}

/* Value v of g holds one integer; *out gets it. */
static bool const_int(const struct mixrt_graph *g, int v, int64_t *out) {
    if (!mixrt_graph_is_fixed_const(g, v)) return false;
    const struct mixrt_tensor *t = g->values[v].init;
    if (!mixrt_dtype_is_int(t->dtype) || mixrt_tensor_numel(t) != 1) return false;
    *out = mixrt_load_i64(t->data, t->dtype, 0);
    return true;
}

/* Value v of g holds one bool; *out gets it. */
static bool const_bool(const struct mixrt_graph *g, int v, bool *out) {
    if (!mixrt_graph_is_fixed_const(g, v)) return false;
    const struct mixrt_tensor *t = g->values[v].init;
    if (t->dtype != MIXRT_DTYPE_BOOL || mixrt_tensor_numel(t) != 1) return false;
    *out = ((const uint8_t *)t->data)[0] != 0;
    return true;
}

static bool const_true(const struct mixrt_graph *g, int v) {
    bool b = false;
    return const_bool(g, v, &b) && b;
}

/* The body's condition output is true on every trip that starts with it true: a true
 * constant (the body's own or the main graph's), the condition input passed through, or an
 * Identity of either. */
static bool cond_stays_true(const struct mixrt_graph *main, const struct mixrt_graph *b) {
    int v = b->outputs[0];
    for (int hops = 0; hops < 16 && v >= 0; hops++) {
        const struct mixrt_value *bv = &b->values[v];
        if (v == b->inputs[1]) return true;
        if (bv->flags & MIXRT_VALUE_OUTER) return const_true(main, mixrt_graph_find_value(main, bv->name));
        if (bv->init) return !(bv->flags & MIXRT_VALUE_GRAPH_INPUT) && const_true(b, v);
        if (bv->producer < 0) return false;
        const struct mixrt_node *p = &b->nodes[bv->producer];
        if (p->domain[0] || strcmp(p->op_type, "Identity") || p->n_inputs != 1) return false;
        v = p->inputs[0];
    }
    return false;
}

/* Body value bv has a definition the copies can map: an outer name the main graph has, a
 * constant, an input of the body, or a node's output. */
static bool defined(const struct mixrt_graph *main, const struct mixrt_value *bv) {
    if (bv->flags & MIXRT_VALUE_OUTER) return mixrt_graph_find_value(main, bv->name) >= 0;
    return bv->producer >= 0 || bv->init || (bv->flags & MIXRT_VALUE_GRAPH_INPUT);
}

/* A body the copies can take: no subgraphs or tensor attributes (the copies share the
 * attribute data, which the Loop's release would free), every value it reads defined. */
static bool body_copyable(const struct mixrt_graph *main, const struct mixrt_graph *b) {
    for (int i = 0; i < b->n_nodes; i++) {
        const struct mixrt_node *n = &b->nodes[i];
        for (int a = 0; a < n->n_attrs; a++)
            if (n->attrs[a].g || n->attrs[a].graphs || n->attrs[a].t || n->attrs[a].tensors) return false;
        for (int j = 0; j < n->n_inputs; j++)
            if (n->inputs[j] >= 0 && !defined(main, &b->values[n->inputs[j]])) return false;
    }
    for (int i = 0; i < b->n_outputs; i++)
        if (!defined(main, &b->values[b->outputs[i]])) return false;
    return true;
}

/* A new rank-0 constant of dtype t holding v (0 / 1 for bool). */
static int scalar_const(struct mixrt_graph *g, const char *base, const char *sfx, mixrt_dtype t, int64_t v) {
    struct mixrt_tensor *tt = mixrt_arena_calloc(g->arena, 1, sizeof(*tt));
    if (!tt || mixrt_tensor_init(g->ctx, tt, t, 0, NULL) != MIXRT_STATUS_OK) return -1;
    if (t == MIXRT_DTYPE_BOOL) ((uint8_t *)tt->data)[0] = v != 0;
    else mixrt_store_i64(tt->data, t, 0, v);
    return mixrt_pass_add_const(g, base, sfx, tt);
}

/* Loop outputs take value v: their readers read v instead, or (a graph output, a name a
 * subgraph reads) an Identity of v writes them. */
static mixrt_status give_value(struct mixrt_pass_state *st, const char *base, int out, int v) {
    struct mixrt_graph *g = st->g;
    if (out < 0) return MIXRT_STATUS_OK;
    if (out < st->n_values && (st->is_output[out] || st->outer_used[out])) {
        int64_t opset = mixrt_graph_opset(g, "");
        return mixrt_pass_add_node(g, base, "_out", "Identity", opset > 0 ? opset : 1, &v, 1, out) < 0
                   ? MIXRT_STATUS_OUT_OF_MEMORY
                   : MIXRT_STATUS_OK;
    }
    mixrt_pass_replace_uses(st, out, v);
    g->values[out].producer = -1;
    return MIXRT_STATUS_OK;
}

/* The stacked scan output: Unsqueeze(v[t], 0) for every trip, concatenated along axis 0. */
static mixrt_status stack_scan(struct mixrt_pass_state *st, const char *base, const int *v, int64_t trips, int out) {
    struct mixrt_graph *g = st->g;
    int64_t opset = mixrt_graph_opset(g, ""), zero = 0;
    int axes = opset >= 13 ? mixrt_pass_i64_const(g, base, "_axes", &zero, 1) : -2;
    int *parts = mixrt_arena_calloc(g->arena, (size_t)trips, sizeof(int));
    if (axes == -1 || !parts) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int64_t t = 0; t < trips; t++) {
        int in[2] = {v[t], axes}, u = trips == 1 ? out : mixrt_graph_add_unique_value(g, base, "_scan");
        if (u < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        int ni = mixrt_pass_add_node(g, base, "_unsqueeze", "Unsqueeze", opset, in, opset >= 13 ? 2 : 1, u);
        if (ni < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        if (opset < 13) {
            struct mixrt_attr *a = mixrt_pass_attr_add(g, ni, "axes", MIXRT_ATTR_INTS);
            int64_t *ax = a ? mixrt_arena_calloc(g->arena, 1, sizeof(int64_t)) : NULL;
            if (!ax) return MIXRT_STATUS_OUT_OF_MEMORY;
            a->ints = ax, a->n = 1;
        }
        parts[t] = u;
    }
    if (trips == 1) return MIXRT_STATUS_OK;
    int ci = mixrt_pass_add_node(g, base, "_stack", "Concat", opset, parts, (int)trips, out);
    struct mixrt_attr *a = ci >= 0 ? mixrt_pass_attr_add(g, ci, "axis", MIXRT_ATTR_INT) : NULL;
    if (!a) return MIXRT_STATUS_OUT_OF_MEMORY;
    a->i = 0;
    return MIXRT_STATUS_OK;
}

/* One copy of body node bn into g, its inputs through map, its outputs new values (recorded in
 * map) named after the body's with sfx. */
static mixrt_status copy_node(struct mixrt_graph *g, const struct mixrt_graph *b, const struct mixrt_node *bn,
                              int *map, const char *sfx) {
    size_t ln = strlen(bn->name), ls = strlen(sfx);
    char *name = mixrt_arena_alloc(g->arena, ln + ls + 1, 1);
    int *io = name ? mixrt_arena_calloc(g->arena, (size_t)(bn->n_inputs + bn->n_outputs) + 1, sizeof(int)) : NULL;
    struct mixrt_attr *attrs = io && bn->n_attrs ? mixrt_arena_calloc(g->arena, (size_t)bn->n_attrs, sizeof(*attrs)) : NULL;
    if (!io || (bn->n_attrs && !attrs)) return MIXRT_STATUS_OUT_OF_MEMORY;
    memcpy(name, bn->name, ln);
    memcpy(name + ln, sfx, ls + 1);
    for (int j = 0; j < bn->n_inputs; j++) io[j] = bn->inputs[j] < 0 ? -1 : map[bn->inputs[j]];
    for (int j = 0; j < bn->n_outputs; j++) {
        int bv = bn->outputs[j];
        if (bv < 0) {
            io[bn->n_inputs + j] = -1;
            continue;
        }
        int v = mixrt_graph_add_unique_value(g, b->values[bv].name, sfx);
        if (v < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        const struct mixrt_value *src = &b->values[bv];
        struct mixrt_value *dst = &g->values[v];
        dst->dtype = src->dtype, dst->rank = src->rank;
        memcpy(dst->dims, src->dims, sizeof(dst->dims));
        dst->flags |= src->flags & (MIXRT_VALUE_SEQUENCE | MIXRT_VALUE_OPTIONAL);
        io[bn->n_inputs + j] = v;
        map[bv] = v;
    }
    if (bn->n_attrs) memcpy(attrs, bn->attrs, (size_t)bn->n_attrs * sizeof(*attrs));
    int ni = mixrt_graph_add_node(g, name, bn->op_type, bn->domain);
    if (ni < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = bn->opset;
    n->inputs = io, n->n_inputs = bn->n_inputs;
    n->outputs = io + bn->n_inputs, n->n_outputs = bn->n_outputs;
    n->attrs = attrs, n->n_attrs = bn->n_attrs;
    for (int j = 0; j < bn->n_outputs; j++)
        if (n->outputs[j] >= 0) g->values[n->outputs[j]].producer = ni;
    return MIXRT_STATUS_OK;
}

/* map[v] for the values of body b that do not change from copy to copy: outer names (their
 * main-graph value) and b's constants (copied into g once); -1 for the rest. */
static mixrt_status map_shared(struct mixrt_graph *g, const struct mixrt_graph *b, int *map) {
    for (int v = 0; v < b->n_values; v++) {
        const struct mixrt_value *bv = &b->values[v];
        map[v] = -1;
        if (bv->flags & MIXRT_VALUE_OUTER) {
            map[v] = mixrt_graph_find_value(g, bv->name);
        } else if (bv->init && !(bv->flags & MIXRT_VALUE_GRAPH_INPUT)) {
            struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
            if (!t || mixrt_tensor_copy(g->ctx, t, bv->init) != MIXRT_STATUS_OK ||
                (map[v] = mixrt_pass_add_const(g, bv->name, "_c", t)) < 0)
                return MIXRT_STATUS_OUT_OF_MEMORY;
        }
    }
    return MIXRT_STATUS_OK;
}

/* If with a constant condition: the chosen branch's nodes copied into g, the If's outputs
 * given the branch's. */
static mixrt_status inline_if(struct mixrt_pass_state *st, int ni, bool *done) {
    struct mixrt_graph *g = st->g;
    const struct mixrt_node *n = &g->nodes[ni];
    *done = false;
    bool take_then = false;
    if (n->domain[0] || strcmp(n->op_type, "If") || n->n_inputs < 1 || n->inputs[0] < 0 ||
        !const_bool(g, n->inputs[0], &take_then))
        return MIXRT_STATUS_OK;
    const struct mixrt_attr *a = mixrt_node_attr(n, take_then ? "then_branch" : "else_branch");
    const struct mixrt_graph *b = a && a->type == MIXRT_ATTR_GRAPH ? a->g : NULL;
    if (!b || b->n_inputs || b->n_outputs < n->n_outputs || (int64_t)b->n_nodes > UNROLL_MAX_NODES ||
        !body_copyable(g, b))
        return MIXRT_STATUS_OK;
    size_t nv = (size_t)(b->n_values > 0 ? b->n_values : 1);
    int *map = mixrt_calloc(g->ctx, nv, sizeof(int));
    mixrt_status status = map ? map_shared(g, b, map) : MIXRT_STATUS_OUT_OF_MEMORY;
    const char *sfx = take_then ? "_then" : "_else";
    for (int s = 0; status == MIXRT_STATUS_OK && s < b->n_nodes; s++)
        status = copy_node(g, b, &b->nodes[b->order ? b->order[s] : s], map, sfx);
    if (status == MIXRT_STATUS_OK) {
        n = &g->nodes[ni];
        st->dead[ni] = true;
        for (int k = 0; status == MIXRT_STATUS_OK && k < n->n_outputs; k++)
            status = map[b->outputs[k]] < 0 ? MIXRT_STATUS_INTERNAL : give_value(st, n->name, n->outputs[k], map[b->outputs[k]]);
        *done = status == MIXRT_STATUS_OK;
    }
    if (map) mixrt_free(g->ctx, map, nv * sizeof(int));
    return status;
}

static mixrt_status unroll(struct mixrt_pass_state *st, int li, bool *done) {
    struct mixrt_graph *g = st->g;
    const struct mixrt_node *n = &g->nodes[li];
    *done = false;
    if (n->domain[0] || strcmp(n->op_type, "Loop") || n->n_inputs < 2) return MIXRT_STATUS_OK;
    const struct mixrt_graph *b = body_of(n);
    int64_t trips = 0;
    if (!b || n->inputs[0] < 0 || !const_int(g, n->inputs[0], &trips) || trips < 1 || trips > UNROLL_MAX_TRIPS)
        return MIXRT_STATUS_OK;
    if (n->inputs[1] >= 0 && !const_true(g, n->inputs[1])) return MIXRT_STATUS_OK;
    const int carried = n->n_inputs - 2, scans = b->n_outputs - 1 - carried;
    if (b->n_inputs != 2 + carried || scans < 0 || n->n_outputs > carried + scans ||
        (int64_t)b->n_nodes * trips > UNROLL_MAX_NODES || !cond_stays_true(g, b) || !body_copyable(g, b))
        return MIXRT_STATUS_OK;
    for (int k = 0; k < carried; k++)
        if (n->inputs[2 + k] < 0) return MIXRT_STATUS_OK;

    mixrt_status status = MIXRT_STATUS_OK;
    const char *base = n->name;
    size_t nv = (size_t)(b->n_values > 0 ? b->n_values : 1), ncur = (size_t)(carried > 0 ? carried : 1);
    int *map = mixrt_calloc(g->ctx, nv, sizeof(int)), *cur = mixrt_calloc(g->ctx, ncur, sizeof(int));
    int *scan_v = scans ? mixrt_arena_calloc(g->arena, (size_t)scans * (size_t)trips, sizeof(int)) : NULL;
    if (!map || !cur || (scans && !scan_v)) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto out;
    }
    /* What every trip reads alike: outer names, the body's constants (copied once), true. */
    if ((status = map_shared(g, b, map)) != MIXRT_STATUS_OK) goto out;
    int cond = scalar_const(g, base, "_cond", MIXRT_DTYPE_BOOL, 1);
    if (cond < 0) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto out;
    }
    n = &g->nodes[li];
    for (int k = 0; k < carried; k++) cur[k] = n->inputs[2 + k];
    for (int64_t t = 0; t < trips; t++) {
        char sfx[32];
        snprintf(sfx, sizeof(sfx), "_trip%lld", (long long)t);
        int it = scalar_const(g, base, sfx, MIXRT_DTYPE_I64, t);
        if (it < 0) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto out;
        }
        map[b->inputs[0]] = it, map[b->inputs[1]] = cond;
        for (int k = 0; k < carried; k++) map[b->inputs[2 + k]] = cur[k];
        snprintf(sfx, sizeof(sfx), "_%lld", (long long)t);
        for (int s = 0; s < b->n_nodes; s++) {
            const struct mixrt_node *bn = &b->nodes[b->order ? b->order[s] : s];
            if ((status = copy_node(g, b, bn, map, sfx)) != MIXRT_STATUS_OK) goto out;
        }
        for (int k = 0; k < carried; k++) cur[k] = map[b->outputs[1 + k]];
        for (int s = 0; s < scans; s++) scan_v[(int64_t)s * trips + t] = map[b->outputs[1 + carried + s]];
    }
    n = &g->nodes[li];
    const int *outs = n->outputs;
    const int n_out = n->n_outputs;
    st->dead[li] = true;
    for (int k = 0; k < carried && k < n_out; k++)
        if ((status = give_value(st, base, outs[k], cur[k])) != MIXRT_STATUS_OK) goto out;
    for (int s = 0; s < scans && carried + s < n_out; s++)
        if (outs[carried + s] >= 0 &&
            (status = stack_scan(st, base, scan_v + (int64_t)s * trips, trips, outs[carried + s])) != MIXRT_STATUS_OK)
            goto out;
    *done = true;
out:
    if (map) mixrt_free(g->ctx, map, nv * sizeof(int));
    if (cur) mixrt_free(g->ctx, cur, ncur * sizeof(int));
    return status;
}

/* The elements of sequence value v when a live SequenceEmpty or SequenceConstruct and then
 * appending SequenceInserts make it: their count, the values into el[cap]; -1 otherwise. */
static int seq_elements(const struct mixrt_pass_state *st, int v, int *el, int cap) {
    const struct mixrt_graph *g = st->g;
    int tail[UNROLL_MAX_TRIPS * 4], nt = 0;
    for (;;) {
        int p = v >= 0 ? g->values[v].producer : -1;
        if (p < 0 || mixrt_pass_is_dead(st, p)) return -1;
        const struct mixrt_node *n = &g->nodes[p];
        if (n->domain[0]) return -1;
        if (!strcmp(n->op_type, "SequenceInsert") && n->n_inputs >= 2 && n->inputs[1] >= 0 &&
            (n->n_inputs < 3 || n->inputs[2] < 0)) {
            if (nt == (int)(sizeof(tail) / sizeof(tail[0]))) return -1;
            tail[nt++] = n->inputs[1];
            v = n->inputs[0];
            continue;
        }
        int k = 0;
        if (!strcmp(n->op_type, "SequenceConstruct")) {
            for (int j = 0; j < n->n_inputs; j++) {
                if (n->inputs[j] < 0 || k == cap) return -1;
                el[k++] = n->inputs[j];
            }
        } else if (strcmp(n->op_type, "SequenceEmpty")) {
            return -1;
        }
        while (nt > 0) {
            if (k == cap) return -1;
            el[k++] = tail[--nt];
        }
        return k;
    }
}

/* SequenceAt(S, constant i) reads S's element i; SequenceLength(S) is a constant. */
static mixrt_status fold_sequence_read(struct mixrt_pass_state *st, int ni, bool *done) {
    struct mixrt_graph *g = st->g;
    const struct mixrt_node *n = &g->nodes[ni];
    *done = false;
    bool at = !strcmp(n->op_type, "SequenceAt"), len = !strcmp(n->op_type, "SequenceLength");
    if (n->domain[0] || !(at || len) || n->n_inputs < (at ? 2 : 1) || n->n_outputs < 1 || n->outputs[0] < 0)
        return MIXRT_STATUS_OK;
    int el[UNROLL_MAX_TRIPS * 4];
    int k = seq_elements(st, n->inputs[0], el, (int)(sizeof(el) / sizeof(el[0])));
    if (k < 0) return MIXRT_STATUS_OK;
    int out = n->outputs[0];
    if (len) {
        if (out < st->n_values && (st->is_output[out] || st->outer_used[out])) return MIXRT_STATUS_OK;
        int c = scalar_const(g, n->name, "_len", MIXRT_DTYPE_I64, k);
        if (c < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        mixrt_pass_replace_uses(st, out, c);
        g->values[out].producer = -1;
    } else { /* give_value leaves out's producer -1 or the Identity it adds */
        int64_t i = 0;
        if (!const_int(g, n->inputs[1], &i) || i < -k || i >= k) return MIXRT_STATUS_OK;
        mixrt_status s = give_value(st, n->name, out, el[i < 0 ? i + k : i]);
        if (s != MIXRT_STATUS_OK) return s;
    }
    st->dead[ni] = true;
    *done = true;
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_pass_unroll_loop(struct mixrt_pass_state *st, int *removed) {
    for (int ni = 0; ni < st->n_dead; ni++) {
        if (st->dead[ni]) continue;
        bool done = false;
        mixrt_status s = unroll(st, ni, &done);
        if (s == MIXRT_STATUS_OK && !done) s = inline_if(st, ni, &done);
        if (s == MIXRT_STATUS_OK && !done) s = fold_sequence_read(st, ni, &done);
        if (s != MIXRT_STATUS_OK) return s;
        if (done) (*removed)++;
    }
    return MIXRT_STATUS_OK;
}
