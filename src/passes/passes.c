/* passes.c - the graph passes of passes.h over a main graph. Nodes are only marked dead
 * while a pass runs; compact() then rewrites g->nodes, value producers and g->order in
 * one place, so between passes the graph is always consistent and sorted. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/ref.h"
#include "passes/passes_impl.h"

#define pass_state mixrt_pass_state

static bool node_has_subgraph(const struct mixrt_node *n) {
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].g || n->attrs[a].graphs) return true;
    return false;
}

/* (Re)allocates the per-pass arrays for the graph's current size. */
static mixrt_status state_begin(struct pass_state *st) {
    struct mixrt_graph *g = st->g;
    st->n_dead = g->n_nodes;
    size_t nn = (size_t)(g->n_nodes > 0 ? g->n_nodes : 1), nv = (size_t)(g->n_values > 0 ? g->n_values : 1);
    st->dead = mixrt_calloc(g->ctx, nn, sizeof(bool));
    st->outer_used = mixrt_calloc(g->ctx, nv, sizeof(bool));
    st->is_output = mixrt_calloc(g->ctx, nv, sizeof(bool));
    if (!st->dead || !st->outer_used || !st->is_output) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int i = 0; i < g->n_nodes; i++) mixrt_node_mark_outer_reads(g, &g->nodes[i], st->outer_used);
    for (int i = 0; i < g->n_outputs; i++) st->is_output[g->outputs[i]] = true;
    return MIXRT_STATUS_OK;
}

static void state_end(struct pass_state *st, int nn, int nv) {
    mixrt_context_t ctx = st->g->ctx;
    mixrt_free(ctx, st->dead, (size_t)(nn > 0 ? nn : 1) * sizeof(bool));
    mixrt_free(ctx, st->outer_used, (size_t)(nv > 0 ? nv : 1) * sizeof(bool));
    mixrt_free(ctx, st->is_output, (size_t)(nv > 0 ? nv : 1) * sizeof(bool));
    st->dead = st->outer_used = st->is_output = NULL;
}

static void release_graph_data(mixrt_context_t ctx, struct mixrt_graph *g);

/* Tensors held by a node's attributes (and its subgraphs' constants) are released by
 * mixrt_graph_destroy only for nodes still in the graph: a dropped node releases its own.
 * The pointers are cleared so nothing can release them twice. */
static void release_node_data(mixrt_context_t ctx, struct mixrt_node *n) {
    for (int a = 0; a < n->n_attrs; a++) {
        struct mixrt_attr *at = &n->attrs[a];
        if (at->t) mixrt_tensor_release(ctx, at->t);
        at->t = NULL;
        for (size_t j = 0; at->tensors && j < at->n; j++) mixrt_tensor_release(ctx, at->tensors[j]);
        at->tensors = NULL;
        if (at->g) release_graph_data(ctx, at->g);
        at->g = NULL;
        for (size_t j = 0; at->graphs && j < at->n; j++) release_graph_data(ctx, at->graphs[j]);
        at->graphs = NULL;
    }
    n->n_attrs = 0;
}

static void release_graph_data(mixrt_context_t ctx, struct mixrt_graph *g) {
    for (int i = 0; i < g->n_values; i++) {
        if (g->values[i].init) mixrt_tensor_release(ctx, g->values[i].init);
        g->values[i].init = NULL;
    }
    for (int i = 0; i < g->n_nodes; i++) release_node_data(ctx, &g->nodes[i]);
}

/* Drops dead nodes, renumbers producers and re-sorts. The arena keeps the old node
 * storage; nodes are small. */
static mixrt_status compact(struct pass_state *st) {
    struct mixrt_graph *g = st->g;
    int n = 0;
    int *map = mixrt_calloc(g->ctx, (size_t)(g->n_nodes > 0 ? g->n_nodes : 1), sizeof(int));
    if (!map) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int i = 0; i < g->n_nodes; i++) {
        if (i < st->n_dead && st->dead[i]) {
            release_node_data(g->ctx, &g->nodes[i]);
            map[i] = -1;
            continue;
        }
        map[i] = n;
        if (n != i) g->nodes[n] = g->nodes[i];
        n++;
    }
    for (int i = 0; i < g->n_values; i++) {
        int p = g->values[i].producer;
        if (p >= 0 && p < g->n_nodes) g->values[i].producer = map[p];
    }
    int old = g->n_nodes;
    g->n_nodes = n;
    mixrt_free(g->ctx, map, (size_t)(old > 0 ? old : 1) * sizeof(int));
    memset(st->dead, 0, (size_t)(st->n_dead > 0 ? st->n_dead : 1) * sizeof(bool));
    return mixrt_graph_toposort(g, &g->order);
}

/* Uses of value vi by live nodes of g (inputs), plus one when it is a graph output or
 * read by a subgraph. */
int mixrt_pass_count_uses(const struct pass_state *st, int vi) {
    const struct mixrt_graph *g = st->g;
    int uses = vi < st->n_values && (st->is_output[vi] || st->outer_used[vi]);
    for (int i = 0; i < g->n_nodes; i++) {
        if (mixrt_pass_is_dead(st, i)) continue;
        for (int j = 0; j < g->nodes[i].n_inputs; j++) uses += g->nodes[i].inputs[j] == vi;
    }
    return uses;
}

int mixrt_pass_sole_reader(const struct pass_state *st, int vi) {
    if (mixrt_pass_count_uses(st, vi) != 1) return -1;
    const struct mixrt_graph *g = st->g;
    for (int i = 0; i < g->n_nodes; i++) {
        if (mixrt_pass_is_dead(st, i)) continue;
        for (int j = 0; j < g->nodes[i].n_inputs; j++)
            if (g->nodes[i].inputs[j] == vi) return i;
    }
    return -1;
}

/* Makes value vi a constant holding t (an arena struct owning its data). */
struct mixrt_attr *mixrt_pass_attr_add(struct mixrt_graph *g, int ni, const char *name, enum mixrt_attr_type type) {
    struct mixrt_node *nd = &g->nodes[ni];
    struct mixrt_attr *a = mixrt_arena_calloc(g->arena, (size_t)nd->n_attrs + 1, sizeof(*a));
    if (!a) return NULL;
    if (nd->n_attrs) memcpy(a, nd->attrs, (size_t)nd->n_attrs * sizeof(*a));
    nd->attrs = a;
    a[nd->n_attrs].name = name;
    a[nd->n_attrs].type = type;
    return &a[nd->n_attrs++];
}

void mixrt_pass_set_const(struct mixrt_graph *g, int vi, struct mixrt_tensor *t) {
    struct mixrt_value *v = &g->values[vi];
    v->init = t;
    v->producer = -1;
    v->flags |= MIXRT_VALUE_CONSTANT;
    v->dtype = t->dtype;
    v->rank = t->rank;
    for (int i = 0; i < t->rank; i++) {
        v->dims[i].value = t->dims[i];
        v->dims[i].param = NULL;
    }
}

/* ---- constants no node reads --------------------------------------------------------- */

/* Lets go of value vi's constant data when nothing can read it: the caller knows no live node
 * does; it is neither a graph input or output nor read by name from a subgraph. Weights that
 * folding or a fusion replaced by copies otherwise stayed beside them until the engine's drop
 * after all passes: BEiT fp32's build went 376 -> 638 MiB in constant folding (its weights'
 * Transposes) and on to 763 in the transformer fusions, against ONNX Runtime's 710 peak. */
static void const_let_go(struct pass_state *st, int vi) {
    struct mixrt_value *v = &st->g->values[vi];
    if (!v->init || (v->flags & (MIXRT_VALUE_GRAPH_INPUT | MIXRT_VALUE_GRAPH_OUTPUT)) ||
        (vi < st->n_values && (st->outer_used[vi] || st->is_output[vi])))
        return;
    mixrt_tensor_release(st->g->ctx, v->init);
    v->init = NULL;
}

/* After a pass: every constant no live node reads any more. */
static mixrt_status consts_let_go(struct pass_state *st) {
    struct mixrt_graph *g = st->g;
    size_t nv = (size_t)(g->n_values > 0 ? g->n_values : 1);
    bool *read = mixrt_calloc(g->ctx, nv, sizeof(bool));
    if (!read) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int i = 0; i < g->n_nodes; i++) {
        if (mixrt_pass_is_dead(st, i)) continue;
        for (int j = 0; j < g->nodes[i].n_inputs; j++)
            if (g->nodes[i].inputs[j] >= 0) read[g->nodes[i].inputs[j]] = true;
    }
    for (int v = 0; v < g->n_values; v++)
        if (!read[v]) const_let_go(st, v);
    mixrt_free(g->ctx, read, nv * sizeof(bool));
    return MIXRT_STATUS_OK;
}

/* ---- constant folding ---------------------------------------------------------------- */

/* Ops whose result is not a function of their inputs, or that have effects. */
static bool foldable_op(const struct mixrt_node *n) {
    static const char *const never[] = {
        "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli", "Multinomial",
        "Dropout", "If", "Loop", "Scan", "Optional", "OptionalGetElement", "OptionalHasElement", NULL,
    };
    if (n->domain[0]) return false; /* other domains' semantics are not ours to assume */
    for (int i = 0; never[i]; i++)
        if (!strcmp(n->op_type, never[i])) return false;
    return !node_has_subgraph(n);
}

/* A default-domain node whose op_type is one of ops (NULL-terminated). */
static bool plain_op(const struct mixrt_node *n, const char *const *ops) {
    for (int i = 0; !n->domain[0] && ops[i]; i++)
        if (!strcmp(n->op_type, ops[i])) return true;
    return false;
}

/* Ops that only move or relabel their input 0's values (their other inputs are shapes and
 * axes). */
static const char *const data_moves[] = {"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", NULL};

/* The size cap on node n's folded outputs: larger for element moves no larger than their
 * input (see MIXRT_PASS_FOLD_MOVE_MAX_BYTES). */
static size_t fold_cap(const struct mixrt_graph *g, const struct mixrt_node *n) {
    static const char *const cast[] = {"Cast", NULL};
    const bool move = plain_op(n, data_moves) || plain_op(n, cast);
    if (!move || n->n_inputs < 1 || n->inputs[0] < 0 || !g->values[n->inputs[0]].init) return MIXRT_PASS_FOLD_MAX_BYTES;
    size_t in = g->values[n->inputs[0]].init->nbytes;
    return in < MIXRT_PASS_FOLD_MOVE_MAX_BYTES ? (in > MIXRT_PASS_FOLD_MAX_BYTES ? in : MIXRT_PASS_FOLD_MAX_BYTES)
                                               : MIXRT_PASS_FOLD_MOVE_MAX_BYTES;
}

/* Runs node ni with the reference kernel and turns its outputs into constants. Returns
 * true in *folded when it did; a kernel error or an output over cap bytes leaves it alone. */
static mixrt_status fold_node(struct pass_state *st, int ni, size_t cap, bool *folded) {
    struct mixrt_graph *g = st->g;
    mixrt_context_t ctx = g->ctx;
    struct mixrt_node *nd = &g->nodes[ni];
    mixrt_status status = MIXRT_STATUS_OK;
    *folded = false;
    mixrt_kernel_fn fn;
    if (mixrt_ref_find(ctx, nd, &fn) != MIXRT_STATUS_OK) return MIXRT_STATUS_OK;
    size_t ni_n = (size_t)(nd->n_inputs > 0 ? nd->n_inputs : 1), no_n = (size_t)(nd->n_outputs > 0 ? nd->n_outputs : 1);
    const struct mixrt_tensor **in = mixrt_calloc(ctx, ni_n, sizeof(*in));
    const struct mixrt_seq **in_seq = mixrt_calloc(ctx, ni_n, sizeof(*in_seq));
    struct mixrt_tensor *out = mixrt_calloc(ctx, no_n, sizeof(*out));
    struct mixrt_seq *out_seq = mixrt_calloc(ctx, no_n, sizeof(*out_seq));
    bool *is_seq = mixrt_calloc(ctx, no_n, sizeof(bool)), *wanted = mixrt_calloc(ctx, no_n, sizeof(bool));
    struct mixrt_tensor **keep = mixrt_calloc(ctx, no_n, sizeof(*keep));
    if (!in || !in_seq || !out || !out_seq || !is_seq || !wanted || !keep) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto done;
    }
    for (int j = 0; j < nd->n_inputs; j++) in[j] = nd->inputs[j] >= 0 ? g->values[nd->inputs[j]].init : NULL;
    for (int j = 0; j < nd->n_outputs; j++) wanted[j] = nd->outputs[j] >= 0;
    struct mixrt_kernel_ctx k = {
        .ctx = ctx, .graph = g, .node = nd, .opset = nd->opset, .n_in = nd->n_inputs, .in = in, .in_seq = in_seq,
        .n_out = nd->n_outputs, .out = out, .out_seq = out_seq, .out_is_seq = is_seq, .out_wanted = wanted, .env = NULL,
    };
    /* A kernel error here would also happen at run time: leave the node to report it. */
    if (fn(&k) != MIXRT_STATUS_OK) goto done;
    bool ok = true;
    for (int j = 0; j < nd->n_outputs && ok; j++) {
        if (nd->outputs[j] < 0) continue;
        if (is_seq[j] || out[j].dtype == MIXRT_DTYPE_UNDEFINED || out[j].nbytes > cap) ok = false;
    }
    for (int j = 0; j < nd->n_outputs && ok; j++) {
        if (nd->outputs[j] < 0) continue;
        keep[j] = mixrt_arena_calloc(g->arena, 1, sizeof(struct mixrt_tensor));
        if (!keep[j]) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto done;
        }
    }
    if (!ok) goto done;
    for (int j = 0; j < nd->n_outputs; j++) {
        if (nd->outputs[j] < 0) continue;
        *keep[j] = out[j];
        memset(&out[j], 0, sizeof(out[j]));
        mixrt_pass_set_const(g, nd->outputs[j], keep[j]);
    }
    st->dead[ni] = true;
    *folded = true;
done:
    for (size_t j = 0; out && j < no_n && j < (size_t)nd->n_outputs; j++) {
        mixrt_tensor_release(ctx, &out[j]);
        if (out_seq) mixrt_seq_release(ctx, &out_seq[j]);
    }
    mixrt_free(ctx, in, ni_n * sizeof(*in));
    mixrt_free(ctx, in_seq, ni_n * sizeof(*in_seq));
    mixrt_free(ctx, out, no_n * sizeof(*out));
    mixrt_free(ctx, out_seq, no_n * sizeof(*out_seq));
    mixrt_free(ctx, is_seq, no_n * sizeof(bool));
    mixrt_free(ctx, wanted, no_n * sizeof(bool));
    mixrt_free(ctx, keep, no_n * sizeof(*keep));
    return status;
}

/* Slice data[s0[i], e0[i]) on every axis i < r (axes a constant [0, r)) into a new value; -1 when
 * out of memory. */
static int box_slice(struct mixrt_graph *g, const char *base, int data, int axes, const int64_t *s0, const int64_t *e0,
                     int r, int64_t opset) {
    int sv = mixrt_pass_i64_const(g, base, "_starts", s0, r), ev = mixrt_pass_i64_const(g, base, "_ends", e0, r);
    int pv = sv >= 0 && ev >= 0 ? mixrt_graph_add_unique_value(g, base, "_part") : -1;
    if (pv < 0 || mixrt_pass_add_node(g, base, "_slice", "Slice", opset, (int[]){data, sv, ev, axes}, 4, pv) < 0)
        return -1;
    return pv;
}

/* ScatterND(data, indices, updates) whose constant indices list, in order, every element (or
 * every slice over the trailing axes) of one box of data (start[a] + i on axis a, the box of
 * updates' shape) is data with that box replaced: data's slices around the box concatenated
 * with the updates, axis by axis from the last (the result's own elements, moved).
 * TorchScript's MViT writes its relative-position terms into attn[:, :, 1:, 1:] so, by indices
 * of up to 629 MB built by Expands and a Concat (3.5 s of a 5.4 s run when rebuilt each run,
 * 3.3 GB of its plan when folded and kept); its dynamo export writes rows of the same terms
 * by [k, 1] indices. */
static mixrt_status scatter_box(struct pass_state *st, int ni, bool *done) {
    struct mixrt_graph *g = st->g;
    const struct mixrt_node *n = &g->nodes[ni];
    *done = false;
    if (n->domain[0] || strcmp(n->op_type, "ScatterND") || n->n_inputs != 3 || n->n_outputs != 1 || n->outputs[0] < 0 ||
        n->inputs[0] < 0 || n->inputs[2] < 0 || strcmp(mixrt_node_attr_string(n, "reduction", "none"), "none") ||
        !mixrt_graph_is_fixed_const(g, n->inputs[1]))
        return MIXRT_STATUS_OK;
    const struct mixrt_value *dv = &g->values[n->inputs[0]], *uv = &g->values[n->inputs[2]];
    const struct mixrt_tensor *ix = g->values[n->inputs[1]].init;
    const int r = dv->rank, k = ix->rank >= 2 ? (int)ix->dims[ix->rank - 1] : 0;
    int64_t opset = mixrt_graph_opset(g, "");
    /* indices [n_0 .. n_k-1, k]: one row per element (k == r) or per slice over the last r - k
     * axes; updates [n_0 .. n_k-1, d_k .. d_r-1] */
    if (r < 1 || uv->rank != r || k < 1 || k > r || ix->rank != k + 1 || !mixrt_dtype_is_int(ix->dtype) || opset < 11 ||
        mixrt_tensor_numel(ix) == 0)
        return MIXRT_STATUS_OK;
    int64_t d[MIXRT_MAX_RANK], start[MIXRT_MAX_RANK], cnt[MIXRT_MAX_RANK], at[MIXRT_MAX_RANK];
    for (int a = 0; a < r; a++) {
        d[a] = dv->dims[a].value, cnt[a] = a < k ? ix->dims[a] : d[a];
        if (d[a] < 1 || cnt[a] < 1 || uv->dims[a].value != cnt[a]) return MIXRT_STATUS_OK;
        start[a] = a < k ? mixrt_load_i64(ix->data, ix->dtype, (size_t)a) : 0;
        if (start[a] < 0 || start[a] + cnt[a] > d[a]) return MIXRT_STATUS_OK;
        at[a] = 0;
    }
    /* every row of the indices: the box's element (or slice) at the same place */
    size_t rows = mixrt_tensor_numel(ix) / (size_t)k;
    for (size_t p = 0; p < rows; p++) {
        for (int a = 0; a < k; a++)
            if (mixrt_load_i64(ix->data, ix->dtype, p * (size_t)k + (size_t)a) != start[a] + at[a]) return MIXRT_STATUS_OK;
        for (int a = k - 1; a >= 0 && ++at[a] == cnt[a]; a--) at[a] = 0;
    }
    int outer = -1; /* the first axis the box does not cover whole: its Concat writes the output */
    for (int a = r - 1; a >= 0; a--)
        if (start[a] != 0 || cnt[a] != d[a]) outer = a;
    const int data = n->inputs[0], out = n->outputs[0];
    int cur = n->inputs[2];
    const char *base = n->name;
    st->dead[ni] = true;
    *done = true;
    if (outer < 0) /* the box is all of data */
        return mixrt_pass_add_node(g, base, "_box", "Identity", opset, &cur, 1, out) < 0 ? MIXRT_STATUS_OUT_OF_MEMORY
                                                                                       : MIXRT_STATUS_OK;
    int64_t axes[MIXRT_MAX_RANK];
    for (int a = 0; a < r; a++) axes[a] = a;
    int ax = mixrt_pass_i64_const(g, base, "_axes", axes, r);
    if (ax < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int a = r - 1; a >= outer; a--) {
        if (start[a] == 0 && cnt[a] == d[a]) continue;
        /* cur covers the box on the axes before a and all of the axes after it */
        int64_t s0[MIXRT_MAX_RANK], e0[MIXRT_MAX_RANK];
        for (int b = 0; b < r; b++) s0[b] = b < a ? start[b] : 0, e0[b] = b < a ? start[b] + cnt[b] : d[b];
        int parts[3], np = 0;
        if (start[a] > 0) {
            e0[a] = start[a];
            if ((parts[np++] = box_slice(g, base, data, ax, s0, e0, r, opset)) < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        parts[np++] = cur;
        if (start[a] + cnt[a] < d[a]) {
            s0[a] = start[a] + cnt[a], e0[a] = d[a];
            if ((parts[np++] = box_slice(g, base, data, ax, s0, e0, r, opset)) < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        int next = a == outer ? out : mixrt_graph_add_unique_value(g, base, "_box");
        int ci = next >= 0 ? mixrt_pass_add_node(g, base, "_concat", "Concat", opset, parts, np, next) : -1;
        struct mixrt_attr *at_ = ci >= 0 ? mixrt_pass_attr_add(g, ci, "axis", MIXRT_ATTR_INT) : NULL;
        if (!at_) return MIXRT_STATUS_OUT_OF_MEMORY;
        at_->i = a;
        cur = next;
    }
    return MIXRT_STATUS_OK;
}

/* Value v reaches a ScatterND's indices through sole readers only, each a default-domain op
 * of one output (the Unsqueezes, Expands and Concat that build them), within 8 steps. */
static bool feeds_scatter_indices(const struct pass_state *st, int v) {
    const struct mixrt_graph *g = st->g;
    for (int step = 0; step < 8 && v >= 0; step++) {
        int r = mixrt_pass_sole_reader(st, v);
        const struct mixrt_node *rd = r >= 0 ? &g->nodes[r] : NULL;
        if (!rd || rd->domain[0] || rd->n_outputs != 1) return false;
        if (!strcmp(rd->op_type, "ScatterND")) return rd->n_inputs == 3 && rd->inputs[1] == v;
        v = rd->outputs[0];
    }
    return false;
}

static mixrt_status pass_const_fold(struct pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    /* Live readers per value: a constant whose last reader folds goes at once, so each
     * folded weight's original does not outlive the pass beside its copy. */
    size_t nv = (size_t)(g->n_values > 0 ? g->n_values : 1);
    int *uses = mixrt_calloc(g->ctx, nv, sizeof(int));
    if (!uses) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int i = 0; i < g->n_nodes; i++)
        for (int j = 0; j < g->nodes[i].n_inputs; j++)
            if (g->nodes[i].inputs[j] >= 0) uses[g->nodes[i].inputs[j]]++;
    mixrt_status status = MIXRT_STATUS_OK;
    for (int s = 0; s < st->n_dead; s++) { /* the nodes the pass began with (scatter_box adds some) */
        int ni = g->order[s];
        const struct mixrt_node *nd = &g->nodes[ni];
        if (!foldable_op(nd)) continue;
        int n_present = 0;
        bool all_const = true;
        for (int j = 0; j < nd->n_inputs && all_const; j++) {
            if (nd->inputs[j] < 0) continue;
            n_present++;
            all_const = mixrt_graph_is_fixed_const(g, nd->inputs[j]);
        }
        if (!all_const) {
            bool boxed = false;
            int ix = nd->n_inputs > 1 ? nd->inputs[1] : -1;
            if ((status = scatter_box(st, ni, &boxed)) != MIXRT_STATUS_OK) break;
            if (boxed) {
                (*removed)++;
                if (ix >= 0 && (size_t)ix < nv && --uses[ix] == 0) const_let_go(st, ix);
            }
            continue;
        }
        if (n_present == 0) continue;
        /* An Identity of a constant: its readers read the constant itself. Folded, it would be a
         * copy, and every layer of a weight-tied model exported by TorchScript (ALBERT: one
         * Identity of each shared weight per layer) would hold and pack its own. */
        if (!strcmp(nd->op_type, "Identity") && nd->n_inputs == 1 && nd->n_outputs == 1 && nd->outputs[0] >= 0 &&
            !st->is_output[nd->outputs[0]] && !st->outer_used[nd->outputs[0]]) {
            int x = nd->inputs[0], y = nd->outputs[0];
            mixrt_pass_replace_uses(st, y, x);
            if ((size_t)x < nv && (size_t)y < nv) uses[x] += uses[y] - 1, uses[y] = 0;
            g->values[y].producer = -1;
            st->dead[ni] = true;
            (*removed)++;
            continue;
        }
        /* Where inference knows an output is too large, do not even compute it. The indices of
         * a ScatterND (and what builds them) may be larger: scatter_box then turns them into
         * slices and lets them go. */
        size_t cap = fold_cap(g, nd);
        bool too_big = false;
        for (int j = 0; j < nd->n_outputs && !too_big; j++) {
            const struct mixrt_value *v = nd->outputs[j] >= 0 ? &g->values[nd->outputs[j]] : NULL;
            if (!v || v->rank < 0 || v->dtype == MIXRT_DTYPE_UNDEFINED || !mixrt_dtype_size(v->dtype)) continue;
            double bytes = (double)mixrt_dtype_size(v->dtype);
            for (int d = 0; d < v->rank; d++) bytes *= v->dims[d].value >= 0 ? (double)v->dims[d].value : 1.0;
            too_big = bytes > (double)cap;
        }
        if (too_big && nd->n_outputs == 1 && feeds_scatter_indices(st, nd->outputs[0])) {
            cap = MIXRT_PASS_FOLD_INDEX_MAX_BYTES;
            too_big = false;
        }
        if (too_big) continue;
        bool folded;
        if ((status = fold_node(st, ni, cap, &folded)) != MIXRT_STATUS_OK) break;
        if (!folded) continue;
        (*removed)++;
        for (int j = 0; j < nd->n_inputs; j++) {
            int v = nd->inputs[j];
            if (v >= 0 && (size_t)v < nv && --uses[v] == 0) const_let_go(st, v);
        }
    }
    mixrt_free(g->ctx, uses, nv * sizeof(int));
    return status;
}

/* ---- shape-subgraph folding ------------------------------------------------------------ */

/* The dims [start, end) Shape node nd (opset 15's attributes) gives of a rank-r input. */
static void shape_range(const struct mixrt_node *nd, int64_t r, int64_t *start, int64_t *end) {
    int64_t s = mixrt_node_attr_int(nd, "start", 0), e = mixrt_node_attr_int(nd, "end", r);
    if (s < 0) s += r;
    if (e < 0) e += r;
    s = s < 0 ? 0 : s > r ? r : s;
    e = e < 0 ? 0 : e > r ? r : e;
    *start = s, *end = e < s ? s : e;
}

/* Shape (with opset-15 start/end) and Size of an input whose static shape is fully known
 * become constants; constant folding then collapses what computes on them. */
static mixrt_status pass_shape_fold(struct pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    for (int ni = 0; ni < g->n_nodes; ni++) {
        const struct mixrt_node *nd = &g->nodes[ni];
        bool is_shape = !strcmp(nd->op_type, "Shape"), is_size = !strcmp(nd->op_type, "Size");
        if (nd->domain[0] || (!is_shape && !is_size) || nd->n_inputs < 1 || nd->inputs[0] < 0 || nd->n_outputs < 1 ||
            nd->outputs[0] < 0)
            continue;
        const struct mixrt_value *x = &g->values[nd->inputs[0]];
        /* An input with a default may be fed another shape: only a declared shape binds. */
        if (x->rank < 0 || (x->flags & (MIXRT_VALUE_SEQUENCE | MIXRT_VALUE_OPTIONAL)) ||
            ((x->flags & MIXRT_VALUE_GRAPH_INPUT) && x->init))
            continue;
        bool known = true;
        for (int i = 0; i < x->rank; i++) known = known && x->dims[i].value >= 0;
        if (!known) continue;
        int64_t r = x->rank, start = 0, end = r;
        if (is_shape) shape_range(nd, r, &start, &end);
        struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
        if (!t) return MIXRT_STATUS_OUT_OF_MEMORY;
        int64_t len = end - start;
        mixrt_status status = mixrt_tensor_init(g->ctx, t, MIXRT_DTYPE_I64, is_shape ? 1 : 0, &len);
        if (status != MIXRT_STATUS_OK) return status;
        int64_t *d = t->data;
        if (is_shape) {
            for (int64_t i = start; i < end; i++) d[i - start] = x->dims[i].value;
        } else {
            int64_t n = 1;
            for (int i = 0; i < x->rank; i++) n *= x->dims[i].value; /* dims were checked at import */
            d[0] = n;
        }
        mixrt_pass_set_const(g, nd->outputs[0], t);
        st->dead[ni] = true;
        (*removed)++;
    }
    /* Gather of constant indices from a Shape whose input has those dims known, others not:
     * torch exports read one dim at a time (x.shape[1]), and a data-dependent batch elsewhere
     * in the shape kept the channel count and spatial size unknown downstream (Mask R-CNN's
     * MultiScaleRoIAlign zeros of [boxes, C, 14, 14]). */
    for (int ni = 0; ni < g->n_nodes; ni++) {
        const struct mixrt_node *nd = &g->nodes[ni];
        if (nd->domain[0] || strcmp(nd->op_type, "Gather") || nd->n_inputs != 2 || nd->n_outputs < 1 ||
            nd->outputs[0] < 0 || st->dead[ni] || mixrt_node_attr_int(nd, "axis", 0) != 0)
            continue;
        const struct mixrt_value *sv = nd->inputs[0] >= 0 ? &g->values[nd->inputs[0]] : NULL;
        const struct mixrt_value *iv = nd->inputs[1] >= 0 ? &g->values[nd->inputs[1]] : NULL;
        const struct mixrt_node *sh = sv && sv->producer >= 0 ? &g->nodes[sv->producer] : NULL;
        if (!sh || !iv || sh->domain[0] || strcmp(sh->op_type, "Shape") || sh->n_inputs < 1 || sh->inputs[0] < 0 ||
            !iv->init || !iv->init->data || iv->init->rank > 1 ||
            (iv->init->dtype != MIXRT_DTYPE_I64 && iv->init->dtype != MIXRT_DTYPE_I32))
            continue;
        const struct mixrt_value *x = &g->values[sh->inputs[0]];
        if (x->rank < 0 || (x->flags & (MIXRT_VALUE_SEQUENCE | MIXRT_VALUE_OPTIONAL)) ||
            ((x->flags & MIXRT_VALUE_GRAPH_INPUT) && x->init))
            continue;
        int64_t r = x->rank, start, end;
        shape_range(sh, r, &start, &end);
        size_t cnt = mixrt_tensor_numel(iv->init);
        int64_t len = end - start, dims[MIXRT_MAX_RANK];
        bool ok = cnt > 0 && cnt <= MIXRT_MAX_RANK;
        for (size_t i = 0; ok && i < cnt; i++) {
            int64_t k = mixrt_load_i64(iv->init->data, iv->init->dtype, i);
            if (k < 0) k += len;
            ok = k >= 0 && k < len && x->dims[start + k].value >= 0;
            if (ok) dims[i] = x->dims[start + k].value;
        }
        if (!ok) continue;
        struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
        if (!t) return MIXRT_STATUS_OUT_OF_MEMORY;
        int64_t tl = (int64_t)cnt;
        mixrt_status status = mixrt_tensor_init(g->ctx, t, MIXRT_DTYPE_I64, iv->init->rank, &tl);
        if (status != MIXRT_STATUS_OK) return status;
        memcpy(t->data, dims, cnt * sizeof(int64_t));
        mixrt_pass_set_const(g, nd->outputs[0], t);
        st->dead[ni] = true;
        (*removed)++;
    }
    return MIXRT_STATUS_OK;
}

/* ---- dead-code elimination ------------------------------------------------------------- */

static mixrt_status pass_dce(struct pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    mixrt_context_t ctx = g->ctx;
    size_t nv = (size_t)(g->n_values > 0 ? g->n_values : 1);
    bool *live = mixrt_calloc(ctx, nv, sizeof(bool));
    if (!live) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int i = 0; i < g->n_values; i++) live[i] = st->is_output[i];
    /* Reverse topological order: a node lives when one of its outputs does; then its
     * inputs and whatever its subgraphs read from here live too. */
    for (int s = g->n_nodes - 1; s >= 0; s--) {
        int ni = g->order[s];
        const struct mixrt_node *nd = &g->nodes[ni];
        bool needed = false;
        for (int j = 0; j < nd->n_outputs && !needed; j++) needed = nd->outputs[j] >= 0 && live[nd->outputs[j]];
        if (!needed) {
            st->dead[ni] = true;
            (*removed)++;
            continue;
        }
        for (int j = 0; j < nd->n_inputs; j++)
            if (nd->inputs[j] >= 0) live[nd->inputs[j]] = true;
        mixrt_node_mark_outer_reads(g, nd, live);
    }
    /* Values whose producer is gone have no producer. */
    for (int i = 0; i < g->n_values; i++)
        if (g->values[i].producer >= 0 && st->dead[g->values[i].producer]) g->values[i].producer = -1;
    mixrt_free(ctx, live, nv * sizeof(bool));
    return MIXRT_STATUS_OK;
}

/* ---- Cast elimination ------------------------------------------------------------------ */

static bool is_int(mixrt_dtype t, bool *sign, int *bits) {
    switch (t) {
    case MIXRT_DTYPE_I8: *sign = true; *bits = 8; return true;
    case MIXRT_DTYPE_I16: *sign = true; *bits = 16; return true;
    case MIXRT_DTYPE_I32: *sign = true; *bits = 32; return true;
    case MIXRT_DTYPE_I64: *sign = true; *bits = 64; return true;
    case MIXRT_DTYPE_U8: *sign = false; *bits = 8; return true;
    case MIXRT_DTYPE_U16: *sign = false; *bits = 16; return true;
    case MIXRT_DTYPE_U32: *sign = false; *bits = 32; return true;
    case MIXRT_DTYPE_U64: *sign = false; *bits = 64; return true;
    default: return false;
    }
}

/* Significand bits (implicit one included) of the float types, 0 for others. */
static int float_digits(mixrt_dtype t) {
    switch (t) {
    case MIXRT_DTYPE_F16: return 11;
    case MIXRT_DTYPE_BF16: return 8;
    case MIXRT_DTYPE_F32: return 24;
    case MIXRT_DTYPE_F64: return 53;
    default: return 0;
    }
}

/* True when every value of a is exactly representable in b, so a->b->a is the identity. */
static bool holds_exactly(mixrt_dtype a, mixrt_dtype b) {
    bool sa, sb;
    int ba, bb;
    if (a == b) return true;
    if (a == MIXRT_DTYPE_BOOL) return is_int(b, &sb, &bb) || float_digits(b) > 0; /* 0/1 survive, back via != 0 */
    if (is_int(a, &sa, &ba)) {
        if (is_int(b, &sb, &bb)) return sa == sb ? bb >= ba : (!sa && sb && bb > ba);
        int fd = float_digits(b);
        return fd > 0 && (sa ? ba - 1 : ba) <= fd; /* every integer up to 2^digits is exact */
    }
    int fa = float_digits(a), fb = float_digits(b);
    if (!fa || !fb) return false;
    /* f16 -> f32/f64, bf16 -> f32/f64, f32 -> f64: wider significand and exponent range.
     * f16 <-> bf16 lose either way. */
    if (a == MIXRT_DTYPE_F16) return b == MIXRT_DTYPE_F32 || b == MIXRT_DTYPE_F64;
    if (a == MIXRT_DTYPE_BF16) return b == MIXRT_DTYPE_F32 || b == MIXRT_DTYPE_F64;
    if (a == MIXRT_DTYPE_F32) return b == MIXRT_DTYPE_F64;
    return false;
}

static bool is_cast(const struct mixrt_node *n) {
    return !n->domain[0] && !strcmp(n->op_type, "Cast") && n->n_inputs >= 1 && n->inputs[0] >= 0 && n->n_outputs >= 1 &&
           n->outputs[0] >= 0 && mixrt_node_attr(n, "to");
}

/* Replaces every use of value from by value to among live nodes. */
void mixrt_pass_replace_uses(struct pass_state *st, int from, int to) {
    struct mixrt_graph *g = st->g;
    for (int i = 0; i < g->n_nodes; i++) {
        if (mixrt_pass_is_dead(st, i)) continue;
        for (int j = 0; j < g->nodes[i].n_inputs; j++)
            if (g->nodes[i].inputs[j] == from) g->nodes[i].inputs[j] = to;
    }
}

/* A Cast to its input's own dtype, and the second Cast of a lossless pair A->B->A, reads
 * the original value instead: it is bypassed (its readers use that value) unless its
 * output is a graph output or read by a subgraph by name, where it becomes an Identity.
 * The first Cast of a pair goes too when nothing else reads it. After a lossless Cast A->B,
 * a Cast B->C (C not A) reads A itself: the same values come in (a 16-bit model's logits:
 * bf16 -> f32 -> f16 became one bf16 -> f16, no f32 copy of 6.4 M values). */
/* Node ni (one output) goes when nothing reads its output any more: no node, no graph output,
 * no outer graph (mixrt_pass_count_uses counts all three). */
static void drop_if_unread(struct pass_state *st, int ni, int *removed) {
    const int v = st->g->nodes[ni].outputs[0];
    if (mixrt_pass_count_uses(st, v) != 0) return;
    st->dead[ni] = true;
    st->g->values[v].producer = -1;
    (*removed)++;
}

static mixrt_status pass_cast_elim(struct pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    for (int s = 0; s < g->n_nodes; s++) {
        int ni = g->order[s];
        struct mixrt_node *nd = &g->nodes[ni];
        if (st->dead[ni] || !is_cast(nd)) continue;
        int x = nd->inputs[0], y = nd->outputs[0];
        mixrt_dtype to = (mixrt_dtype)mixrt_node_attr_int(nd, "to", 0);
        mixrt_dtype xt = g->values[x].dtype;
        int src = -1, first = -1;
        if (xt != MIXRT_DTYPE_UNDEFINED && xt == to && !(g->values[x].flags & MIXRT_VALUE_SEQUENCE)) {
            src = x;
        } else if (g->values[x].producer >= 0 && !st->dead[g->values[x].producer] &&
                   is_cast(&g->nodes[g->values[x].producer])) {
            first = g->values[x].producer;
            const struct mixrt_node *c1 = &g->nodes[first];
            int w = c1->inputs[0];
            mixrt_dtype wt = g->values[w].dtype;
            mixrt_dtype mid = (mixrt_dtype)mixrt_node_attr_int(c1, "to", 0);
            if (wt != MIXRT_DTYPE_UNDEFINED && wt == to && holds_exactly(wt, mid)) {
                src = w;
            } else if (wt != MIXRT_DTYPE_UNDEFINED && mid != MIXRT_DTYPE_UNDEFINED && holds_exactly(wt, mid) &&
                       !(g->values[w].flags & MIXRT_VALUE_SEQUENCE)) {
                nd->inputs[0] = w; /* A -> C directly */
                drop_if_unread(st, first, removed);
                continue;
            }
        }
        if (src < 0) continue;
        int sp = g->values[src].producer;
        if ((st->is_output[y] || st->outer_used[y]) && sp >= 0 && !st->dead[sp] && !st->is_output[src] &&
            !st->outer_used[src] && mixrt_pass_count_uses(st, src) == 1 &&
            (first < 0 || (!st->is_output[x] && !st->outer_used[x] && mixrt_pass_count_uses(st, x) == 1))) {
            /* The graph output is a no-op cast (or lossless cast pair) of a value nothing
             * else reads: its producer writes the output directly (no copy, and no Identity
             * left at the engine boundary). */
            struct mixrt_node *pn = &g->nodes[sp];
            for (int j = 0; j < pn->n_outputs; j++)
                if (pn->outputs[j] == src) pn->outputs[j] = y;
            g->values[y].producer = sp;
            g->values[src].producer = -1;
            st->dead[ni] = true;
            (*removed)++;
            if (first >= 0) {
                st->dead[first] = true;
                g->values[x].producer = -1;
                (*removed)++;
            }
            continue;
        }
        if (st->is_output[y] || st->outer_used[y]) {
            nd->op_type = "Identity";
            release_node_data(g->ctx, nd);
            nd->inputs[0] = src;
            nd->n_inputs = 1;
        } else {
            mixrt_pass_replace_uses(st, y, src);
            st->dead[ni] = true;
            g->values[y].producer = -1;
            (*removed)++;
        }
        if (first >= 0) drop_if_unread(st, first, removed);
    }
    return MIXRT_STATUS_OK;
}

/* ---- a move between a widening Cast and the Cast back (MIXRT_PASS_CAST_ELIM) ----------------- */

static bool pure_move(const struct mixrt_node *n) {
    return plain_op(n, data_moves) && n->n_outputs == 1 && n->n_inputs >= 1 && n->inputs[0] >= 0;
}

/* Cast A -> B (lossless), a move, Cast B -> A: the move reads the A value and writes the second
 * Cast's output, and both Casts go (the first stays while something else reads it). A 16-bit
 * model's image on any backend: the planner's boundary Cast to f32, the layout pass's NHWC
 * Transpose, the Cast back to bf16 for the first conv (three kernels on CUDA, f32 in the middle;
 * now one Transpose of the bf16 input). Every value comes back as it went in, NaNs included, so
 * the output's bits are the same. */
static mixrt_status pass_move_uncast(struct pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    for (int s = 0; s < g->n_nodes; s++) {
        const int ci = g->order[s];
        const struct mixrt_node *c = &g->nodes[ci];
        if (st->dead[ci] || !is_cast(c) || c->n_outputs != 1) continue;
        const int x = c->inputs[0], y = c->outputs[0], ti = g->values[x].producer;
        const mixrt_dtype to = (mixrt_dtype)mixrt_node_attr_int(c, "to", 0);
        if (ti < 0 || st->dead[ti] || !mixrt_dtype_is_float(to) || g->values[y].dtype != to ||
            (g->values[x].flags & MIXRT_VALUE_SEQUENCE) || st->is_output[x] || st->outer_used[x] ||
            mixrt_pass_count_uses(st, x) != 1 || !pure_move(&g->nodes[ti]))
            continue;
        const int x0 = g->nodes[ti].inputs[0], wi = g->values[x0].producer;
        if (wi < 0 || st->dead[wi] || !is_cast(&g->nodes[wi]) || g->nodes[wi].n_inputs != 1) continue;
        const int w = g->nodes[wi].inputs[0];
        if (g->values[w].dtype != to || (g->values[w].flags & MIXRT_VALUE_SEQUENCE) ||
            !holds_exactly(to, g->values[x0].dtype))
            continue;
        struct mixrt_node *tn = &g->nodes[ti];
        tn->inputs[0] = w;
        tn->outputs[0] = y;
        g->values[y].producer = ti;
        g->values[x].producer = -1;
        st->dead[ci] = true;
        (*removed)++;
        drop_if_unread(st, wi, removed);
    }
    return MIXRT_STATUS_OK;
}

/* ---- Transpose + Cast as one pass over the data (MIXRT_PASS_TRANSPOSE_CAST) ------------------- */

/* A float Cast whose input only a default-domain Transpose writes and only it reads (the image of
 * a CNN: NCHW f32 -> NHWC by the layout pass, then to bf16 by the planner) becomes one com.mixrt
 * TransposeCast (the Transpose's perm, the Cast's to): one read of the f32 and one write of the
 * narrow result, no f32 copy in between. Where the Transpose reads a lossless widening Cast (a
 * 16-bit model's image: the planner's boundary cast to f32), it becomes a TransposeCast from that
 * Cast's input (f16 -> bf16: the values the f32 held, rounded once as before); back to the same
 * dtype (bf16 -> f32 -> bf16) is pass_move_uncast's, a plain Transpose. */
static mixrt_status pass_transpose_cast(struct pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    for (int s = 0; s < g->n_nodes; s++) {
        int ci = g->order[s];
        const struct mixrt_node *c = &g->nodes[ci];
        if (st->dead[ci] || !is_cast(c) || c->n_outputs != 1) continue;
        int x = c->inputs[0], y = c->outputs[0], ti = g->values[x].producer;
        mixrt_dtype to = (mixrt_dtype)mixrt_node_attr_int(c, "to", 0), xt = g->values[x].dtype;
        if (ti < 0 || st->dead[ti] || !mixrt_dtype_is_float(to) || !mixrt_dtype_is_float(xt) || to == xt ||
            g->values[y].dtype != to || (g->values[x].flags & MIXRT_VALUE_SEQUENCE) || st->is_output[x] ||
            st->outer_used[x] || mixrt_pass_count_uses(st, x) != 1)
            continue;
        const struct mixrt_node *t = &g->nodes[ti];
        if (t->domain[0] || strcmp(t->op_type, "Transpose") || t->n_inputs != 1 || t->n_outputs != 1 ||
            t->inputs[0] < 0 || g->values[t->inputs[0]].dtype != xt)
            continue;
        /* The Transpose's input: a lossless widening Cast of w? Then it moves w, converted
         * once from w's dtype (the same values: the widening changed none). */
        const int x0 = t->inputs[0], wi = g->values[x0].producer;
        const int w = wi >= 0 && !st->dead[wi] && is_cast(&g->nodes[wi]) && g->nodes[wi].n_inputs == 1
                          ? g->nodes[wi].inputs[0]
                          : -1;
        const bool widened = w >= 0 && mixrt_dtype_is_float(g->values[w].dtype) &&
                             !(g->values[w].flags & MIXRT_VALUE_SEQUENCE) && holds_exactly(g->values[w].dtype, xt);
        if (widened && g->values[w].dtype == to) continue; /* pass_move_uncast's (Cast elimination) */
        if (widened) {
            g->nodes[ti].inputs[0] = w; /* a TransposeCast from w's dtype, below */
            drop_if_unread(st, wi, removed);
        }
        mixrt_status status = mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION);
        if (status != MIXRT_STATUS_OK) return status;
        struct mixrt_attr *a = mixrt_pass_attr_add(g, ti, "to", MIXRT_ATTR_INT);
        if (!a) return MIXRT_STATUS_OUT_OF_MEMORY;
        a->i = (int64_t)to;
        struct mixrt_node *tn = &g->nodes[ti];
        tn->op_type = "TransposeCast";
        tn->domain = MIXRT_DOMAIN;
        tn->opset = MIXRT_DOMAIN_VERSION;
        tn->outputs[0] = y;
        g->values[y].producer = ti;
        g->values[x].producer = -1;
        st->dead[ci] = true;
        (*removed)++;
    }
    return MIXRT_STATUS_OK;
}

/* ---- canonical forms: Transposes that move no data, ReduceMean as a pool ---------------------- */

static bool shape_reader(const struct mixrt_node *n) {
    static const char *const ops[] = {"Shape", "Size", NULL};
    return plain_op(n, ops) && n->n_inputs == 1;
}

/* The one live node reading value v, as its input 0, besides Shape and Size nodes; or -1. */
static int reader_besides_shapes(struct pass_state *st, int v) {
    int uses = v >= 0 && v < st->n_values ? mixrt_pass_count_uses(st, v) : 0, found = -1;
    for (int i = 0; i < st->g->n_nodes && uses > 0; i++) {
        const struct mixrt_node *n = &st->g->nodes[i];
        if (mixrt_pass_is_dead(st, i) || n->n_inputs < 1 || n->inputs[0] != v) continue;
        if (shape_reader(n)) uses--;
        else if (found < 0) found = i;
    }
    return uses == 1 ? found : -1;
}

/* mixrt_pass_sole_reader of v when it reads v as its input 0 (the data of a move or selection). */
static int data_reader(struct pass_state *st, int v) {
    int r = mixrt_pass_sole_reader(st, v);
    return r >= 0 && st->g->nodes[r].inputs[0] == v ? r : -1;
}

/* A unary element-wise op whose result only moves (Flatten, Reshape, Squeeze, Unsqueeze,
 * Transpose, up to 4 of them; Shape and Size may read it too) into a Gather or Slice of its
 * data runs after that selection
 * instead: the two commute, and the selection is usually much smaller (Mask R-CNN applies its
 * Sigmoid to 91 classes' masks and keeps one: 12 ms of its bf16 run). Not where a fusion would
 * take the op into its producer. *done when moved. */
static mixrt_status sink_unary(struct pass_state *st, int ui, bool *done) {
    static const char *const unary[] = {"Sigmoid", "Relu", "Tanh", "Exp", "Neg", "Abs", "Erf", "Softplus", NULL};
    static const char *const moves[] = {"Flatten", "Reshape", "Squeeze", "Unsqueeze", "Transpose", NULL};
    static const char *const selects[] = {"Gather", "Slice", NULL};
    struct mixrt_graph *g = st->g;
    *done = false;
    const struct mixrt_node *u = &g->nodes[ui];
    if (!plain_op(u, unary) || u->n_inputs != 1 || u->n_outputs != 1 || u->inputs[0] < 0 || u->outputs[0] < 0)
        return MIXRT_STATUS_OK;
    const int x = u->inputs[0], y = u->outputs[0];
    /* Left where the fusions would take it into its producer (a conv, product, residual add or
     * norm epilogue) - they need it to be x's only reader; Mask R-CNN's mask logits are also
     * read by a Shape. */
    static const char *const fusable[] = {"Conv", "ConvTranspose", "MatMul", "Gemm", "Add", "BatchNormalization",
                                          "InstanceNormalization", "LayerNormalization", NULL};
    const int xp = x < st->n_values ? g->values[x].producer : -1;
    if (xp >= 0 && !mixrt_pass_is_dead(st, xp) && plain_op(&g->nodes[xp], fusable) && mixrt_pass_count_uses(st, x) == 1)
        return MIXRT_STATUS_OK;
    /* chain[0..n): the movers, then the selection */
    int chain[5], n = 0, cur = reader_besides_shapes(st, y);
    while (cur >= 0 && n < 5) {
        const struct mixrt_node *m = &g->nodes[cur];
        if (m->n_outputs != 1 || m->outputs[0] < 0 || !(plain_op(m, selects) || plain_op(m, moves))) break;
        chain[n++] = cur;
        if (plain_op(m, selects)) break;
        cur = data_reader(st, m->outputs[0]);
    }
    if (!n || !plain_op(&g->nodes[chain[n - 1]], selects)) return MIXRT_STATUS_OK;
    const int first = chain[0], sel = chain[n - 1], s = g->nodes[sel].outputs[0];
    if (s >= st->n_values || g->values[s].dtype != g->values[y].dtype) return MIXRT_STATUS_OK;
    /* The movers' outputs and y now hold U's input moved: renamed "<name>/before_<U>", so that
     * nothing matching values by name (mixrt check's layer trace) takes them for what they were. */
    for (int c = 0; c < n; c++) {
        int v = c == n - 1 ? y : g->nodes[chain[c]].outputs[0];
        const char *old_name = g->values[v].name, *op = g->nodes[ui].op_type;
        size_t lo = strlen(old_name), lp = strlen(op);
        char *nm = mixrt_arena_alloc(g->arena, lo + lp + 9, 1);
        if (!nm) return MIXRT_STATUS_OUT_OF_MEMORY;
        memcpy(nm, old_name, lo);
        memcpy(nm + lo, "/before_", 8);
        memcpy(nm + lo + 8, op, lp + 1);
        g->values[v].name = nm;
    }
    /* x -> movers -> selection -> y -> U -> s: y takes the selection's shape; the Shapes of y
     * read x (the same dims). */
    for (int i = 0; i < g->n_nodes; i++)
        if (!mixrt_pass_is_dead(st, i) && shape_reader(&g->nodes[i]) && g->nodes[i].inputs[0] == y)
            g->nodes[i].inputs[0] = x;
    g->nodes[first].inputs[0] = x;
    g->nodes[sel].outputs[0] = y;
    g->values[y].rank = g->values[s].rank;
    memcpy(g->values[y].dims, g->values[s].dims, sizeof(g->values[y].dims));
    g->values[y].producer = sel;
    g->nodes[ui].inputs[0] = y;
    g->nodes[ui].outputs[0] = s;
    g->values[s].producer = ui;
    *done = true;
    return MIXRT_STATUS_OK;
}

/* A Transpose whose non-1 axes keep their order moves no element: a Reshape (a view) to its
 * output dims (torch's sequence-first attention at batch 1 swaps [L, 1, E] and [1, L, E]).
 * ReduceMean over H, W with keepdims is GlobalAveragePool (torch's adaptive_avg_pool2d to
 * 1x1), which the layout pass keeps channels-last. */
/* An AveragePool or MaxPool whose one window covers its whole input: no pads, dilation 1, the
 * kernel at least the input on every spatial axis and one output position (ceil_mode lets a
 * kernel run past the input: HF EfficientNet pools its 7x7 map with kernel and stride 2560).
 * The window clipped to the input is all of it, so it is a global pool - which the fast kernels
 * run, where they refuse (and the reference would walk) a 2560x2560 window. */
static bool whole_window_pool(const struct mixrt_graph *g, const struct mixrt_node *n) {
    /* com.mixrt's pools are the layout pass's channels-last ones (a shape may be known only
     * after that pass has run): spatial axes from 1 there, from 2 in ONNX's */
    bool last = !strcmp(n->domain, MIXRT_DOMAIN);
    bool avg = !strcmp(n->op_type, "AveragePool"), max = !strcmp(n->op_type, "MaxPool");
    if ((n->domain[0] && !last) || (!avg && !max) || n->n_inputs != 1 || n->n_outputs != 1 || n->inputs[0] < 0 ||
        n->outputs[0] < 0)
        return false;
    const struct mixrt_value *x = &g->values[n->inputs[0]];
    int nd = x->rank - 2, sp = last ? 1 : 2;
    if (nd < 1 || !mixrt_dtype_is_float(x->dtype)) return false;
    size_t nk = 0, ns = 0, np = 0, ndl = 0;
    const int64_t *ks = mixrt_node_attr_ints(n, "kernel_shape", &nk), *sd = mixrt_node_attr_ints(n, "strides", &ns),
                  *pd = mixrt_node_attr_ints(n, "pads", &np), *dl = mixrt_node_attr_ints(n, "dilations", &ndl);
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (!ks || nk != (size_t)nd || (sd && ns != (size_t)nd) || (pd && np != 2 * (size_t)nd) ||
        (dl && ndl != (size_t)nd) || (strcmp(ap, "NOTSET") && strcmp(ap, "VALID") && ap[0]))
        return false;
    if (max && (mixrt_node_attr_int(n, "storage_order", 0) != 0)) return false;
    bool ceil_mode = mixrt_node_attr_int(n, "ceil_mode", 0) != 0;
    for (int i = 0; i < nd; i++) {
        int64_t in = x->dims[sp + i].value, k = ks[i], s = sd ? sd[i] : 1;
        if (in < 1 || k < in || s < 1 || (dl && dl[i] != 1) || (pd && (pd[i] != 0 || pd[nd + i] != 0))) return false;
        /* one output: the kernel fits exactly, or ceil_mode rounds the overhang up to one window */
        if (k > in && !(ceil_mode && k - in < s)) return false;
    }
    return true;
}

/* ReduceMean over H, W without keepdims (torch's x.mean([2, 3]): MnasNet, ConvNeXt) becomes
 * GlobalAveragePool, which the layout pass keeps channels-last, and a Reshape (a view) of its
 * [N, C, 1, 1] to [N, C]; left a ReduceMean, it would read an NCHW copy of its input. */
static mixrt_status mean_hw_flat(struct pass_state *st, int ni) {
    struct mixrt_graph *g = st->g;
    const int x = g->nodes[ni].inputs[0], y = g->nodes[ni].outputs[0];
    static const int64_t keep_n[2] = {0, -1}; /* 0: N as it is */
    int pv = mixrt_graph_add_unique_value(g, g->values[y].name, "_pooled");
    int sv = pv >= 0 ? mixrt_pass_i64_const(g, g->nodes[ni].name, "_shape", keep_n, 2) : -1;
    if (sv < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
    struct mixrt_value *p = &g->values[pv];
    p->dtype = g->values[x].dtype;
    p->rank = 4;
    p->dims[0] = g->values[x].dims[0], p->dims[1] = g->values[x].dims[1];
    p->dims[2] = p->dims[3] = (struct mixrt_dim){1, NULL};
    const int ins[2] = {pv, sv};
    if (mixrt_pass_add_node(g, g->nodes[ni].name, "/flat", "Reshape", 14, ins, 2, y) < 0)
        return MIXRT_STATUS_OUT_OF_MEMORY;
    struct mixrt_node *n = &g->nodes[ni];
    n->op_type = "GlobalAveragePool", n->n_inputs = 1, n->n_attrs = 0, n->attrs = NULL, n->opset = 1;
    n->outputs[0] = pv;
    g->values[pv].producer = ni;
    return MIXRT_STATUS_OK;
}

static mixrt_status pass_canonicalize(struct pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    for (int ni = 0; ni < st->n_dead; ni++) {
        bool sunk = false;
        mixrt_status ss = st->dead[ni] ? MIXRT_STATUS_OK : sink_unary(st, ni, &sunk);
        if (ss != MIXRT_STATUS_OK) return ss;
        if (sunk) {
            (*removed)++;
            continue;
        }
        struct mixrt_node *n = &g->nodes[ni];
        if (!st->dead[ni] && mixrt_node_mean_hw(g, n) && mixrt_node_attr_int(n, "keepdims", 1) == 1) {
            n->op_type = "GlobalAveragePool", n->n_inputs = 1, n->n_attrs = 0, n->attrs = NULL, n->opset = 1;
            (*removed)++;
            continue;
        }
        if (!st->dead[ni] && mixrt_node_mean_hw(g, n) && mixrt_node_attr_int(n, "keepdims", 1) == 0) {
            mixrt_status ms = mean_hw_flat(st, ni);
            if (ms != MIXRT_STATUS_OK) return ms;
            (*removed)++;
            continue;
        }
        if (!st->dead[ni] && whole_window_pool(g, n)) {
            /* the node's opset stays: the global pools read the same at every version */
            n->op_type = !strcmp(n->op_type, "MaxPool") ? "GlobalMaxPool" : "GlobalAveragePool";
            n->n_attrs = 0, n->attrs = NULL;
            (*removed)++;
            continue;
        }
        if (st->dead[ni] || n->domain[0] || strcmp(n->op_type, "Transpose") || n->n_inputs != 1 || n->n_outputs != 1 ||
            n->inputs[0] < 0 || n->outputs[0] < 0)
            continue;
        const struct mixrt_value *xv = &g->values[n->inputs[0]];
        int r = xv->rank;
        if (r < 2 || r > MIXRT_MAX_RANK) continue;
        size_t np = 0;
        const int64_t *perm = mixrt_node_attr_ints(n, "perm", &np);
        if (perm && np != (size_t)r) continue;
        int64_t yd[MIXRT_MAX_RANK], last = -1;
        bool ok = true;
        for (int i = 0; i < r && ok; i++) {
            int64_t a = perm ? perm[i] : r - 1 - i;
            if (a < 0 || a >= r || xv->dims[a].value < 1) {
                ok = false;
                break;
            }
            yd[i] = xv->dims[a].value;
            if (yd[i] == 1) continue;
            ok = a > last;
            last = a;
        }
        if (!ok) continue;
        struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
        int64_t rr = r;
        int *ins = t ? mixrt_arena_calloc(g->arena, 2, sizeof(int)) : NULL;
        if (!ins || mixrt_tensor_init(g->ctx, t, MIXRT_DTYPE_I64, 1, &rr) != MIXRT_STATUS_OK)
            return MIXRT_STATUS_OUT_OF_MEMORY;
        memcpy(t->data, yd, (size_t)r * sizeof(int64_t));
        int sv = mixrt_graph_add_unique_value(g, n->name, "_shape");
        if (sv < 0) {
            mixrt_tensor_release(g->ctx, t);
            return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        mixrt_pass_set_const(g, sv, t);
        n = &g->nodes[ni];
        ins[0] = n->inputs[0], ins[1] = sv;
        n->op_type = "Reshape", n->inputs = ins, n->n_inputs = 2, n->n_attrs = 0, n->attrs = NULL;
        if (n->opset < 5) n->opset = 5;
        (*removed)++;
    }
    return MIXRT_STATUS_OK;
}

/* ---- Conv + BatchNormalization folding ---------------------------------------------------- */

static bool is_float(mixrt_dtype t) { return float_digits(t) > 0; }

/* bn is a BatchNormalization that runs in inference mode, its extra outputs unread, its scale,
 * bias, mean and var fixed float constants: a constant per-channel affine map. */
static bool bn_inference(struct pass_state *st, const struct mixrt_node *bn) {
    const struct mixrt_graph *g = st->g;
    if (bn->domain[0] || strcmp(bn->op_type, "BatchNormalization") || bn->n_inputs != 5 || bn->n_outputs < 1 ||
        bn->outputs[0] < 0 || bn->inputs[0] < 0)
        return false;
    if (mixrt_node_attr_int(bn, "training_mode", 0) != 0 || mixrt_node_attr_int(bn, "spatial", 1) != 1 ||
        (bn->opset < 7 && mixrt_node_attr_int(bn, "is_test", 0) == 0)) /* old opsets: training unless is_test */
        return false;
    for (int j = 1; j < bn->n_outputs; j++)
        if (bn->outputs[j] >= 0 && mixrt_pass_count_uses(st, bn->outputs[j]) > 0) return false;
    for (int j = 1; j < 5; j++)
        if (!mixrt_graph_is_fixed_const(g, bn->inputs[j]) || !is_float(g->values[bn->inputs[j]].init->dtype)) return false;
    return true;
}

/* bn's four parameters (bn_inference) are vectors of C. */
static bool bn_params_of(const struct mixrt_graph *g, const struct mixrt_node *bn, int64_t C) {
    for (int j = 1; j < 5; j++) {
        const struct mixrt_tensor *t = g->values[bn->inputs[j]].init;
        if (t->rank != 1 || t->dims[0] != C) return false;
    }
    return true;
}

/* Two new constant values "<base><sw>" and "<base><sb>" holding tw and tb (arena structs
 * owning their data); on failure both tensors are released and -1 is returned in *vw. */
static mixrt_status add_weight_pair(struct mixrt_graph *g, const char *base, const char *sw, struct mixrt_tensor *tw,
                                    const char *sb, struct mixrt_tensor *tb, int *vw, int *vb) {
    *vw = mixrt_graph_add_unique_value(g, base, sw);
    *vb = *vw >= 0 ? mixrt_graph_add_unique_value(g, base, sb) : -1;
    if (*vw < 0 || *vb < 0) {
        mixrt_tensor_release(g->ctx, tw);
        mixrt_tensor_release(g->ctx, tb);
        *vw = -1;
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    mixrt_pass_set_const(g, *vw, tw);
    mixrt_pass_set_const(g, *vb, tb);
    return MIXRT_STATUS_OK;
}

/* New weights shaped like W and a bias [co], both W's dtype, uninitialized (arena structs owning
 * their data); on failure neither is left allocated. */
static mixrt_status new_weight_pair(struct mixrt_graph *g, const struct mixrt_tensor *W, int64_t co,
                                    struct mixrt_tensor **tw, struct mixrt_tensor **tb) {
    *tw = mixrt_arena_calloc(g->arena, 1, sizeof(**tw));
    *tb = mixrt_arena_calloc(g->arena, 1, sizeof(**tb));
    if (!*tw || !*tb) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = mixrt_tensor_init(g->ctx, *tw, W->dtype, W->rank, W->dims);
    if (status != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_tensor_init(g->ctx, *tb, W->dtype, 1, &co)) != MIXRT_STATUS_OK) mixrt_tensor_release(g->ctx, *tw);
    return status;
}

/* Conv conv_i takes the new weights vw and bias vb (ins: its new input array, 3 ints) and the
 * output of node ni, which it absorbs (ni dead, the Conv's old output c unproduced). */
static void conv_absorb(struct pass_state *st, int conv_i, int *ins, int vw, int vb, int ni, int c) {
    struct mixrt_graph *g = st->g;
    struct mixrt_node *cv = &g->nodes[conv_i];
    ins[0] = cv->inputs[0], ins[1] = vw, ins[2] = vb;
    cv->inputs = ins;
    cv->n_inputs = 3;
    int y = g->nodes[ni].outputs[0];
    cv->outputs[0] = y;
    g->values[y].producer = conv_i;
    g->values[c].producer = -1;
    st->dead[ni] = true;
}

/* Folds BN(Conv(x, W, B)) into Conv(x, W', B') when the BN runs in inference mode, only
 * the Conv reads into it, and W, B and the BN parameters are fixed constants:
 * s = scale / sqrt(var + eps), W' = W * s[o], B' = (B - mean) * s + bias, in double,
 * stored in W's dtype. */
static mixrt_status fold_conv_bn(struct pass_state *st, int bn_i, bool *done) {
    struct mixrt_graph *g = st->g;
    mixrt_context_t ctx = g->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    double *w = NULL, *b = NULL, *p[4] = {NULL, NULL, NULL, NULL};
    size_t nw = 0, np[4] = {0, 0, 0, 0};
    struct mixrt_tensor *tw = NULL, *tb = NULL;
    *done = false;
    const struct mixrt_node *bn = &g->nodes[bn_i];
    if (!bn_inference(st, bn)) return MIXRT_STATUS_OK;
    int c = bn->inputs[0];
    int conv_i = g->values[c].producer;
    if (conv_i < 0 || st->dead[conv_i] || mixrt_pass_count_uses(st, c) != 1) return MIXRT_STATUS_OK;
    const struct mixrt_node *conv = &g->nodes[conv_i];
    if (conv->domain[0] || strcmp(conv->op_type, "Conv") || conv->n_inputs < 2 || conv->n_outputs != 1 ||
        conv->outputs[0] != c || !mixrt_graph_is_fixed_const(g, conv->inputs[1]))
        return MIXRT_STATUS_OK;
    bool has_b = conv->n_inputs >= 3 && conv->inputs[2] >= 0;
    if (has_b && !mixrt_graph_is_fixed_const(g, conv->inputs[2])) return MIXRT_STATUS_OK;
    const struct mixrt_tensor *W = g->values[conv->inputs[1]].init;
    const struct mixrt_tensor *B = has_b ? g->values[conv->inputs[2]].init : NULL;
    if (!is_float(W->dtype) || W->rank < 3 || (B && (B->dtype != W->dtype || B->rank != 1))) return MIXRT_STATUS_OK;
    int64_t co = W->dims[0];
    if (co <= 0 || (B && B->dims[0] != co) || !bn_params_of(g, bn, co)) return MIXRT_STATUS_OK;
    double eps = mixrt_node_attr_float(bn, "epsilon", 1e-5f);

    nw = mixrt_tensor_numel(W);
    status = mixrt_tensor_to_f64(ctx, W, &w);
    if (status != MIXRT_STATUS_OK) goto fail;
    if (B && (status = mixrt_tensor_to_f64(ctx, B, &b)) != MIXRT_STATUS_OK) goto fail;
    for (int j = 0; j < 4; j++) {
        np[j] = (size_t)co;
        if ((status = mixrt_tensor_to_f64(ctx, g->values[bn->inputs[j + 1]].init, &p[j])) != MIXRT_STATUS_OK) goto fail;
    }
    if ((status = new_weight_pair(g, W, co, &tw, &tb)) != MIXRT_STATUS_OK) goto fail;
    size_t per = nw / (size_t)co;
    for (int64_t o = 0; o < co; o++) {
        double s = p[0][o] / sqrt(p[3][o] + eps);
        for (size_t i = 0; i < per; i++) mixrt_store_f64(tw->data, tw->dtype, (size_t)o * per + i, w[(size_t)o * per + i] * s);
        mixrt_store_f64(tb->data, tb->dtype, (size_t)o, ((b ? b[o] : 0.0) - p[2][o]) * s + p[1][o]);
    }
    /* Names: the Conv's node name keeps them readable and unique. */
    int vw, vb;
    int *ins = mixrt_arena_calloc(g->arena, 3, sizeof(int));
    if (!ins) {
        mixrt_tensor_release(ctx, tw);
        mixrt_tensor_release(ctx, tb);
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    if ((status = add_weight_pair(g, g->nodes[conv_i].name, "_bnfold_W", tw, "_bnfold_B", tb, &vw, &vb)) != MIXRT_STATUS_OK)
        goto fail;
    conv_absorb(st, conv_i, ins, vw, vb, bn_i, c);
    *done = true;
fail:
    if (w) mixrt_free(ctx, w, (nw ? nw : 1) * sizeof(double));
    if (b) mixrt_free(ctx, b, (size_t)(co > 0 ? co : 1) * sizeof(double));
    for (int j = 0; j < 4; j++)
        if (p[j]) mixrt_free(ctx, p[j], (np[j] ? np[j] : 1) * sizeof(double));
    return status;
}

/* Folds Mul(Conv(x, W, B), c) (either operand order) into Conv(x, W', B') when c is a fixed
 * float constant of one value per output channel (or one value), laid along the Conv output's
 * channel axis (PoolFormer's and ConvNeXt-style layer scales, [C, 1, 1]), and only the Mul
 * reads the Conv: W' = W * c[o], B' = B * c[o] (0 without B), in double, stored in W's dtype.
 * A residual Add after it then fuses with the Conv like any. */
static mixrt_status fold_conv_mul(struct pass_state *st, int mul_i, bool *done) {
    struct mixrt_graph *g = st->g;
    mixrt_context_t ctx = g->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    double *w = NULL, *b = NULL, *cv = NULL;
    size_t nw = 0, nc = 0;
    *done = false;
    const struct mixrt_node *mul = &g->nodes[mul_i];
    if (mul->domain[0] || strcmp(mul->op_type, "Mul") || mul->opset < 7 || mul->n_inputs != 2 || mul->n_outputs != 1 ||
        mul->inputs[0] < 0 || mul->inputs[1] < 0 || mul->outputs[0] < 0)
        return MIXRT_STATUS_OK;
    int side = -1;
    for (int s2 = 0; s2 < 2 && side < 0; s2++) {
        int p = g->values[mul->inputs[s2]].producer;
        if (p >= 0 && !st->dead[p] && !g->nodes[p].domain[0] && !strcmp(g->nodes[p].op_type, "Conv") &&
            mixrt_graph_is_fixed_const(g, mul->inputs[1 - s2]))
            side = s2;
    }
    if (side < 0) return MIXRT_STATUS_OK;
    int c = mul->inputs[side], k = mul->inputs[1 - side];
    int conv_i = g->values[c].producer;
    if (mixrt_pass_count_uses(st, c) != 1) return MIXRT_STATUS_OK;
    const struct mixrt_node *conv = &g->nodes[conv_i];
    if (conv->n_inputs < 2 || conv->n_outputs != 1 || conv->outputs[0] != c || !mixrt_graph_is_fixed_const(g, conv->inputs[1]))
        return MIXRT_STATUS_OK;
    bool has_b = conv->n_inputs >= 3 && conv->inputs[2] >= 0;
    if (has_b && !mixrt_graph_is_fixed_const(g, conv->inputs[2])) return MIXRT_STATUS_OK;
    const struct mixrt_tensor *W = g->values[conv->inputs[1]].init, *K = g->values[k].init;
    const struct mixrt_tensor *B = has_b ? g->values[conv->inputs[2]].init : NULL;
    const struct mixrt_value *cvv = &g->values[c], *yv = &g->values[mul->outputs[0]];
    if (!is_float(W->dtype) || W->rank < 3 || (B && (B->dtype != W->dtype || B->rank != 1)) || !is_float(K->dtype))
        return MIXRT_STATUS_OK;
    int64_t co = W->dims[0];
    /* c: one value, or co values on the Conv output's axis 1 (all its other dims 1), no wider
     * than the output; the Mul's output keeps the Conv's dtype and shape. */
    int r = cvv->rank;
    size_t kn = mixrt_tensor_numel(K);
    if (co <= 0 || (B && B->dims[0] != co) || r < 3 || K->rank > r || yv->dtype != cvv->dtype || yv->rank != r ||
        cvv->dtype != W->dtype || (kn != 1 && kn != (size_t)co))
        return MIXRT_STATUS_OK;
    for (int i = 0; i < K->rank; i++) {
        int ax = r - K->rank + i;
        if (K->dims[i] != 1 && !(ax == 1 && K->dims[i] == co)) return MIXRT_STATUS_OK;
    }
    for (int i = 0; i < r; i++)
        if (yv->dims[i].value != cvv->dims[i].value) return MIXRT_STATUS_OK;

    nw = mixrt_tensor_numel(W), nc = kn;
    struct mixrt_tensor *tw = NULL, *tb = NULL;
    int *ins = mixrt_arena_calloc(g->arena, 3, sizeof(int));
    if (!ins) return MIXRT_STATUS_OUT_OF_MEMORY;
    if ((status = mixrt_tensor_to_f64(ctx, W, &w)) != MIXRT_STATUS_OK) goto fail;
    if (B && (status = mixrt_tensor_to_f64(ctx, B, &b)) != MIXRT_STATUS_OK) goto fail;
    if ((status = mixrt_tensor_to_f64(ctx, K, &cv)) != MIXRT_STATUS_OK) goto fail;
    if ((status = new_weight_pair(g, W, co, &tw, &tb)) != MIXRT_STATUS_OK) goto fail;
    size_t per = nw / (size_t)co;
    for (int64_t o = 0; o < co; o++) {
        double s = cv[nc == 1 ? 0 : (size_t)o];
        for (size_t i = 0; i < per; i++)
            mixrt_store_f64(tw->data, tw->dtype, (size_t)o * per + i, w[(size_t)o * per + i] * s);
        mixrt_store_f64(tb->data, tb->dtype, (size_t)o, (b ? b[o] : 0.0) * s);
    }
    int vw, vb;
    if ((status = add_weight_pair(g, g->nodes[conv_i].name, "_mulfold_W", tw, "_mulfold_B", tb, &vw, &vb)) !=
        MIXRT_STATUS_OK)
        goto fail;
    conv_absorb(st, conv_i, ins, vw, vb, mul_i, c);
    *done = true;
fail:
    if (w) mixrt_free(ctx, w, (nw ? nw : 1) * sizeof(double));
    if (b) mixrt_free(ctx, b, (size_t)co * sizeof(double));
    if (cv) mixrt_free(ctx, cv, (nc ? nc : 1) * sizeof(double));
    return status;
}

/* An inference BatchNormalization of a rank-4 tensor that no Conv absorbs (DenseNet's and
 * pre-activation ResNets' BN after a Concat or an Add) becomes a depthwise 1x1 Conv with
 * W[c] = s = scale / sqrt(var + eps) and B[c] = bias - mean * s (computed in double, rounded
 * once to x's dtype): the layout pass keeps it channels-last with the convolutions around it
 * and the ReLU after it fuses into its epilogue. */
static mixrt_status bn_to_affine(struct pass_state *st, int bn_i, bool *done) {
    struct mixrt_graph *g = st->g;
    mixrt_context_t ctx = g->ctx;
    mixrt_status status = MIXRT_STATUS_OK;
    double *p[4] = {NULL, NULL, NULL, NULL};
    *done = false;
    const struct mixrt_node *bn = &g->nodes[bn_i];
    if (bn->opset < 9 || !bn_inference(st, bn)) return MIXRT_STATUS_OK;
    const struct mixrt_value *xv = &g->values[bn->inputs[0]];
    int64_t C = xv->rank == 4 ? xv->dims[1].value : -1;
    if (C < 1 || !is_float(xv->dtype) || g->values[bn->outputs[0]].dtype != xv->dtype || !bn_params_of(g, bn, C))
        return MIXRT_STATUS_OK;
    double eps = mixrt_node_attr_float(bn, "epsilon", 1e-5f);
    struct mixrt_tensor *tw = mixrt_arena_calloc(g->arena, 1, sizeof(*tw)), *tb = mixrt_arena_calloc(g->arena, 1, sizeof(*tb));
    int64_t wd[4] = {C, 1, 1, 1};
    if (!tw || !tb) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int j = 0; j < 4; j++)
        if ((status = mixrt_tensor_to_f64(ctx, g->values[bn->inputs[j + 1]].init, &p[j])) != MIXRT_STATUS_OK) goto fail;
    if ((status = mixrt_tensor_init(ctx, tw, xv->dtype, 4, wd)) != MIXRT_STATUS_OK) goto fail;
    if ((status = mixrt_tensor_init(ctx, tb, xv->dtype, 1, &C)) != MIXRT_STATUS_OK) {
        mixrt_tensor_release(ctx, tw);
        goto fail;
    }
    for (int64_t c = 0; c < C; c++) {
        double s = p[0][c] / sqrt(p[3][c] + eps);
        mixrt_store_f64(tw->data, tw->dtype, (size_t)c, s);
        mixrt_store_f64(tb->data, tb->dtype, (size_t)c, p[1][c] - p[2][c] * s);
    }
    int vw, vb;
    int *ins = mixrt_arena_calloc(g->arena, 3, sizeof(int));
    int64_t *ks = ins ? mixrt_arena_calloc(g->arena, 2, sizeof(int64_t)) : NULL;
    struct mixrt_attr *at = ks ? mixrt_arena_calloc(g->arena, 2, sizeof(*at)) : NULL;
    if (!at) {
        mixrt_tensor_release(ctx, tw);
        mixrt_tensor_release(ctx, tb);
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    if ((status = add_weight_pair(g, bn->name, "_bn_W", tw, "_bn_B", tb, &vw, &vb)) != MIXRT_STATUS_OK) goto fail;
    struct mixrt_node *cn = &g->nodes[bn_i];
    ks[0] = ks[1] = 1;
    at[0].name = "group", at[0].type = MIXRT_ATTR_INT, at[0].i = C;
    at[1].name = "kernel_shape", at[1].type = MIXRT_ATTR_INTS, at[1].ints = ks, at[1].n = 2;
    ins[0] = cn->inputs[0], ins[1] = vw, ins[2] = vb;
    cn->op_type = "Conv";
    cn->inputs = ins, cn->n_inputs = 3, cn->n_outputs = 1, cn->attrs = at, cn->n_attrs = 2;
    *done = true;
fail:
    for (int j = 0; j < 4; j++)
        if (p[j]) mixrt_free(ctx, p[j], (size_t)C * sizeof(double));
    return status;
}

/* The DepthToSpace di's output y read only by an element-wise activation a (Relu, LeakyRelu,
 * Sigmoid, Tanh, HardSwish; not a graph output): a runs on di's input and di reads a's result
 * (the two commute: di only moves elements). */
static mixrt_status act_before_d2s(struct pass_state *st, int di) {
    struct mixrt_graph *g = st->g;
    static const char *const acts[] = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", NULL};
    const int x = g->nodes[di].inputs[0], y = g->nodes[di].outputs[0];
    const int ai = y < st->n_values ? mixrt_pass_sole_reader(st, y) : -1;
    if (ai < 0) return MIXRT_STATUS_OK;
    const struct mixrt_node *a = &g->nodes[ai];
    if (!plain_op(a, acts) || a->n_inputs != 1 || a->n_outputs != 1 || a->outputs[0] < 0 ||
        g->values[a->outputs[0]].dtype != g->values[y].dtype)
        return MIXRT_STATUS_OK;
    const int z = a->outputs[0];
    /* y becomes the activation's output on the pre-permutation shape: x's. */
    g->values[y].rank = g->values[x].rank;
    memcpy(g->values[y].dims, g->values[x].dims, sizeof(g->values[y].dims));
    g->nodes[ai].inputs[0] = x, g->nodes[ai].outputs[0] = y;
    g->nodes[di].inputs[0] = y, g->nodes[di].outputs[0] = z;
    g->values[y].producer = ai;
    g->values[z].producer = di;
    return MIXRT_STATUS_OK;
}

/* A ConvTranspose whose kernel equals its stride (2-D, square, no padding, output padding or
 * dilation, one group, constant weights: each output pixel has exactly one tap) becomes a 1x1
 * Conv to Co * s * s channels and DepthToSpace(s, DCR) (MIXRT_PASS_CONV_CPU): the convolution
 * takes the fast conv kernels, bf16 and the layout pass, where oneDNN 2.6's deconvolution in bf16
 * was no faster than in f32 (Mask R-CNN's 2x2 mask-head upsampler: 280 ms in bf16).
 * W'[(i * s + j) * Co + co, ci] = W[ci, co, i, j]; B'[(i * s + j) * Co + co] = B[co]. DCR puts
 * each output pixel's Co channels side by side, so the channels-last DepthToSpace (fuse_conv.c)
 * moves them as one run. An element-wise activation that is the sole reader of the result moves
 * before the DepthToSpace (a permutation: they commute), where fuse_conv takes it into the
 * convolution (Mask R-CNN: its ReLU). */
static mixrt_status deconv_to_d2s(struct pass_state *st, int ni, bool *done) {
    struct mixrt_graph *g = st->g;
    *done = false;
    const struct mixrt_node *n = &g->nodes[ni];
    if (!(st->flags & MIXRT_PASS_CONV_CPU) || n->domain[0] || strcmp(n->op_type, "ConvTranspose") || n->opset < 11 ||
        n->n_inputs < 2 || n->n_inputs > 3 || n->n_outputs != 1 || n->outputs[0] < 0 ||
        !mixrt_graph_is_fixed_const(g, n->inputs[1]))
        return MIXRT_STATUS_OK;
    bool has_b = n->n_inputs == 3 && n->inputs[2] >= 0;
    if (has_b && !mixrt_graph_is_fixed_const(g, n->inputs[2])) return MIXRT_STATUS_OK;
    const struct mixrt_tensor *W = g->values[n->inputs[1]].init, *B = has_b ? g->values[n->inputs[2]].init : NULL;
    const struct mixrt_value *xv = &g->values[n->inputs[0]];
    if (!is_float(W->dtype) || W->rank != 4 || W->dims[2] != W->dims[3] || W->dims[2] < 1 || W->dims[2] > 64 ||
        (xv->rank >= 0 && xv->rank != 4) || (B && (B->dtype != W->dtype || B->rank != 1 || B->dims[0] != W->dims[1])))
        return MIXRT_STATUS_OK;
    const int64_t s = W->dims[2], ci = W->dims[0], co = W->dims[1];
    size_t cnt = 0;
    const int64_t *st2 = mixrt_node_attr_ints(n, "strides", &cnt);
    const int64_t *ks = NULL;
    size_t kc = 0;
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (!st2 || cnt != 2 || st2[0] != s || st2[1] != s || mixrt_node_attr_int(n, "group", 1) != 1 ||
        (strcmp(ap, "NOTSET") && strcmp(ap, "VALID")) || !mixrt_node_attr_ints_all(n, "pads", 0, 4) ||
        !mixrt_node_attr_ints_all(n, "dilations", 1, 2) || !mixrt_node_attr_ints_all(n, "output_padding", 0, 0) ||
        mixrt_node_attr(n, "output_shape"))
        return MIXRT_STATUS_OK;
    if ((ks = mixrt_node_attr_ints(n, "kernel_shape", &kc)) && (kc != 2 || ks[0] != s || ks[1] != s))
        return MIXRT_STATUS_OK;
    mixrt_context_t ctx = g->ctx;
    const int64_t oc = co * s * s, wd[4] = {oc, ci, 1, 1};
    struct mixrt_tensor *tw = mixrt_arena_calloc(g->arena, 1, sizeof(*tw));
    struct mixrt_tensor *tb = B ? mixrt_arena_calloc(g->arena, 1, sizeof(*tb)) : NULL;
    if (!tw || (B && !tb)) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (mixrt_tensor_init(ctx, tw, W->dtype, 4, wd) != MIXRT_STATUS_OK) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (B && mixrt_tensor_init(ctx, tb, W->dtype, 1, &oc) != MIXRT_STATUS_OK) {
        mixrt_tensor_release(ctx, tw);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    const size_t es = mixrt_dtype_size(W->dtype);
    for (int64_t a = 0; a < ci; a++)
        for (int64_t o = 0; o < co; o++)
            for (int64_t q = 0; q < s * s; q++) /* q = i * s + j */
                memcpy((char *)tw->data + (size_t)(((q * co + o) * ci) + a) * es,
                       (const char *)W->data + (size_t)((a * co + o) * s * s + q) * es, es);
    for (int64_t o = 0; B && o < co; o++)
        for (int64_t q = 0; q < s * s; q++)
            memcpy((char *)tb->data + (size_t)(q * co + o) * es, (const char *)B->data + (size_t)o * es, es);
    const char *base = n->name;
    int vw = mixrt_graph_add_unique_value(g, base, "_d2s_W");
    int vb = B && vw >= 0 ? mixrt_graph_add_unique_value(g, base, "_d2s_B") : -1;
    int vt = vw >= 0 ? mixrt_graph_add_unique_value(g, base, "_d2s_in") : -1;
    size_t lb = strlen(base);
    char *dname = vt >= 0 ? mixrt_arena_alloc(g->arena, lb + 5, 1) : NULL;
    int di = dname ? (memcpy(dname, base, lb), memcpy(dname + lb, "/d2s", 5), mixrt_graph_add_node(g, dname, "DepthToSpace", ""))
                   : -1;
    int *io = di >= 0 ? mixrt_arena_calloc(g->arena, 6, sizeof(int)) : NULL; /* no slot shared: passes rewire them */
    int64_t *one = io ? mixrt_arena_calloc(g->arena, 2, sizeof(int64_t)) : NULL;
    struct mixrt_attr *at = one ? mixrt_arena_calloc(g->arena, 1, sizeof(*at)) : NULL;
    struct mixrt_attr *bs = at ? mixrt_pass_attr_add(g, di, "blocksize", MIXRT_ATTR_INT) : NULL;
    if (bs) bs->i = s; /* set before the next attribute: adding one may move the array */
    struct mixrt_attr *md = bs ? mixrt_pass_attr_add(g, di, "mode", MIXRT_ATTR_STRING) : NULL;
    if (!md || (B && vb < 0)) {
        mixrt_tensor_release(ctx, tw);
        if (tb) mixrt_tensor_release(ctx, tb);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    md->s = "DCR", md->s_len = 3;
    mixrt_pass_set_const(g, vw, tw);
    if (B) mixrt_pass_set_const(g, vb, tb);
    struct mixrt_node *cv = &g->nodes[ni], *d = &g->nodes[di]; /* after add_node: nodes may move */
    const int y = cv->outputs[0];
    g->values[vt].dtype = g->values[y].dtype;
    if (g->values[cv->inputs[0]].rank == 4) { /* [N, Co * s * s, H, W]: the layout pass reads it this round */
        g->values[vt].rank = 4;
        memcpy(g->values[vt].dims, g->values[cv->inputs[0]].dims, 4 * sizeof(g->values[vt].dims[0]));
        g->values[vt].dims[1] = (struct mixrt_dim){oc, NULL};
    }
    io[0] = cv->inputs[0], io[1] = vw, io[2] = vb, io[3] = vt, io[4] = vt, io[5] = y;
    one[0] = one[1] = 1;
    at[0].name = "kernel_shape", at[0].type = MIXRT_ATTR_INTS, at[0].ints = one, at[0].n = 2;
    cv->op_type = "Conv";
    cv->inputs = io, cv->n_inputs = B ? 3 : 2;
    cv->outputs = io + 3, cv->n_outputs = 1;
    cv->attrs = at, cv->n_attrs = 1;
    d->opset = cv->opset;
    d->inputs = io + 4, d->n_inputs = 1;
    d->outputs = io + 5, d->n_outputs = 1;
    g->values[vt].producer = ni;
    g->values[y].producer = di;
    *done = true;
    return act_before_d2s(st, di);
}

int mixrt_pass_add_node(struct mixrt_graph *g, const char *base, const char *sfx, const char *op, int64_t opset,
                        const int *in, int n_in, int out) {
    size_t lb = strlen(base), ls = strlen(sfx);
    char *name = mixrt_arena_alloc(g->arena, lb + ls + 1, 1);
    int *io = name ? mixrt_arena_calloc(g->arena, (size_t)n_in + 1, sizeof(int)) : NULL;
    if (!io) return -1;
    memcpy(name, base, lb);
    memcpy(name + lb, sfx, ls + 1);
    int ni = mixrt_graph_add_node(g, name, op, "");
    if (ni < 0) return -1;
    memcpy(io, in, (size_t)n_in * sizeof(int));
    io[n_in] = out;
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = opset;
    n->inputs = io, n->n_inputs = n_in;
    n->outputs = io + n_in, n->n_outputs = 1;
    g->values[out].producer = ni;
    return ni;
}

int mixrt_pass_add_const(struct mixrt_graph *g, const char *base, const char *suffix, struct mixrt_tensor *t) {
    int cv = mixrt_graph_add_unique_value(g, base, suffix);
    if (cv < 0) {
        mixrt_tensor_release(g->ctx, t);
        return -1;
    }
    mixrt_pass_set_const(g, cv, t);
    return cv;
}

int mixrt_pass_i64_const(struct mixrt_graph *g, const char *base, const char *suffix, const int64_t *v, int64_t n) {
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    if (!t || mixrt_tensor_init(g->ctx, t, MIXRT_DTYPE_I64, 1, &n) != MIXRT_STATUS_OK) return -1;
    if (n) memcpy(t->data, v, (size_t)n * sizeof(int64_t));
    return mixrt_pass_add_const(g, base, suffix, t);
}

/* A new int64 value named after base with rank r (dims unknown but the last, when last >= 0). */
static int i64_value(struct mixrt_graph *g, const char *base, const char *sfx, int r, int64_t last) {
    int v = mixrt_graph_add_unique_value(g, base, sfx);
    if (v < 0) return -1;
    g->values[v].dtype = MIXRT_DTYPE_I64;
    g->values[v].rank = r;
    for (int i = 0; i < r; i++) g->values[v].dims[i] = (struct mixrt_dim){-1, NULL};
    if (last >= 0) g->values[v].dims[r - 1] = (struct mixrt_dim){last, NULL};
    return v;
}

/* ScatterElements(data, Expand(r, s), updates, axis 0) with r [k, 1, ..., 1] - every element of
 * a row sent to row r[i] (torchvision's MultiScaleRoIAlign filling each level's boxes in) - is
 * ScatterND(data, Expand(Reshape(r, [-1, 1]), [k', 1]), updates), k' = updates' rows: whole rows
 * copied, and no index per element made and read (Mask R-CNN: an [N, 256, 14, 14] int64 index
 * tensor a level, 8 ScatterElements and Expands, ~30 ms of its bf16 run). Exact where the
 * trailing dims of data and updates are known and equal (MIXRT_PASS_CONV_CPU). */
static mixrt_status scatter_rows(struct pass_state *st, int ni, bool *done) {
    struct mixrt_graph *g = st->g;
    *done = false;
    const struct mixrt_node *n = &g->nodes[ni];
    const int64_t opset = mixrt_graph_opset(g, "");
    if (!(st->flags & MIXRT_PASS_CONV_CPU) || n->domain[0] || strcmp(n->op_type, "ScatterElements") || n->opset < 11 ||
        opset < 15 || n->n_inputs != 3 || n->n_outputs != 1 || n->inputs[0] < 0 || n->inputs[1] < 0 ||
        n->inputs[2] < 0 || n->outputs[0] < 0 || strcmp(mixrt_node_attr_string(n, "reduction", "none"), "none"))
        return MIXRT_STATUS_OK;
    const struct mixrt_value *x = &g->values[n->inputs[0]], *u = &g->values[n->inputs[2]];
    const int R = x->rank, ei = g->values[n->inputs[1]].producer;
    int64_t axis = mixrt_node_attr_int(n, "axis", 0);
    if (R < 2 || u->rank != R || (axis != 0 && axis != -R) || ei < 0 || mixrt_pass_is_dead(st, ei) ||
        g->nodes[ei].domain[0] || strcmp(g->nodes[ei].op_type, "Expand") || g->nodes[ei].n_inputs != 2 ||
        g->nodes[ei].inputs[0] < 0)
        return MIXRT_STATUS_OK;
    const int r = g->nodes[ei].inputs[0];
    const struct mixrt_value *rv = &g->values[r];
    if (rv->rank != R || rv->dtype != MIXRT_DTYPE_I64) return MIXRT_STATUS_OK; /* ScatterND's indices: int64 */
    for (int d = 1; d < R; d++)
        if (rv->dims[d].value != 1 || x->dims[d].value < 0 || u->dims[d].value != x->dims[d].value)
            return MIXRT_STATUS_OK;
    const char *base = n->name;
    const int64_t m1[2] = {-1, 1}, one = 1;
    int c_m1 = mixrt_pass_i64_const(g, base, "_const", m1, 2);
    int c_one = c_m1 >= 0 ? mixrt_pass_i64_const(g, base, "_const", &one, 1) : -1;
    int r2 = c_one >= 0 ? i64_value(g, base, "_rows", 2, 1) : -1;
    int kd = r2 >= 0 ? i64_value(g, base, "_count", 1, 1) : -1;
    int ts = kd >= 0 ? i64_value(g, base, "_rows_shape", 1, 2) : -1;
    int ix = ts >= 0 ? i64_value(g, base, "_row_index", 2, 1) : -1;
    if (ix < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
    const int u_in = n->inputs[2];
    int a = mixrt_pass_add_node(g, base, "/rows", "Reshape", opset, (int[]){r, c_m1}, 2, r2);
    int b = a >= 0 ? mixrt_pass_add_node(g, base, "/count", "Shape", opset, (int[]){u_in}, 1, kd) : -1;
    int c = b >= 0 ? mixrt_pass_add_node(g, base, "/rows_shape", "Concat", opset, (int[]){kd, c_one}, 2, ts) : -1;
    int e = c >= 0 ? mixrt_pass_add_node(g, base, "/row_index", "Expand", opset, (int[]){r2, ts}, 2, ix) : -1;
    struct mixrt_attr *end = e >= 0 ? mixrt_pass_attr_add(g, b, "end", MIXRT_ATTR_INT) : NULL;
    if (end) end->i = 1; /* set before the next attribute: adding one may move the array */
    struct mixrt_attr *ax = end ? mixrt_pass_attr_add(g, c, "axis", MIXRT_ATTR_INT) : NULL;
    int *ins = ax ? mixrt_arena_calloc(g->arena, 3, sizeof(int)) : NULL;
    if (!ins) return MIXRT_STATUS_OUT_OF_MEMORY;
    ax->i = 0;
    struct mixrt_node *sn = &g->nodes[ni]; /* after add_node: nodes may move */
    ins[0] = sn->inputs[0], ins[1] = ix, ins[2] = u_in;
    sn->op_type = "ScatterND";
    sn->inputs = ins;
    sn->n_attrs = 0; /* axis (0) is in the indices now; reduction is none */
    *done = true;
    return MIXRT_STATUS_OK;
}

/* Conv(Pad(x)) with the Pad zeros on the spatial axes only (constant mode, value 0, pads >= 0,
 * none on N or C) and the Conv its only reader: Conv(x) with those pads added to its own, as
 * TensorFlow-style "same" padding exports (HF MobileNetV2: 52 Pads, each a layout break with a
 * Transpose on either side, 55 % of its f32 run). Pad's pads and value come from its inputs
 * (opset >= 11; no axes) or attributes (before). Without MIXRT_PASS_CONV_CPU (CUDA engines,
 * whose convolutions pad evenly) only where the sums are even on every axis. */
static mixrt_status pad_into_conv(struct pass_state *st, int ci, bool *done) {
    struct mixrt_graph *g = st->g;
    *done = false;
    const struct mixrt_node *conv = &g->nodes[ci];
    if (conv->domain[0] || strcmp(conv->op_type, "Conv") || conv->n_inputs < 2 || conv->inputs[0] < 0) return MIXRT_STATUS_OK;
    const char *ap = mixrt_node_attr_string(conv, "auto_pad", "NOTSET");
    bool valid = !strcmp(ap, "VALID"); /* no pads of its own (HF EfficientNet's depthwise convs) */
    int pv = conv->inputs[0], pi = g->values[pv].producer, r = g->values[pv].rank, nd = r - 2;
    /* pi past n_dead: a node this pass added (deconv_to_d2s), left for the next round */
    if ((ap[0] && strcmp(ap, "NOTSET") && !valid) || pi < 0 || pi >= st->n_dead || st->dead[pi] || nd < 1 || nd > 3 ||
        mixrt_pass_sole_reader(st, pv) != ci)
        return MIXRT_STATUS_OK;
    const struct mixrt_node *pad = &g->nodes[pi];
    if (pad->domain[0] || strcmp(pad->op_type, "Pad") || pad->n_inputs < 1 || pad->inputs[0] < 0 ||
        strcmp(mixrt_node_attr_string(pad, "mode", "constant"), "constant"))
        return MIXRT_STATUS_OK;
    int64_t pp[2 * MIXRT_MAX_RANK];
    if (pad->opset >= 11) {
        if (pad->n_inputs < 2 || pad->inputs[1] < 0 || !mixrt_graph_is_fixed_const(g, pad->inputs[1]) ||
            (pad->n_inputs > 3 && pad->inputs[3] >= 0))
            return MIXRT_STATUS_OK;
        const struct mixrt_tensor *t = g->values[pad->inputs[1]].init;
        if (t->rank != 1 || t->dims[0] != 2 * r) return MIXRT_STATUS_OK;
        for (int i = 0; i < 2 * r; i++) pp[i] = mixrt_load_i64(t->data, t->dtype, (size_t)i);
        if (pad->n_inputs > 2 && pad->inputs[2] >= 0) {
            const struct mixrt_value *cv = &g->values[pad->inputs[2]];
            if (!mixrt_graph_is_fixed_const(g, pad->inputs[2]) || mixrt_tensor_numel(cv->init) != 1 ||
                mixrt_load_f64(cv->init->data, cv->init->dtype, 0) != 0.0)
                return MIXRT_STATUS_OK;
        }
    } else {
        size_t np = 0;
        const int64_t *a = mixrt_node_attr_ints(pad, pad->opset >= 2 ? "pads" : "paddings", &np);
        if (!a || np != (size_t)(2 * r) || mixrt_node_attr_float(pad, "value", 0.0f) != 0.0f) return MIXRT_STATUS_OK;
        memcpy(pp, a, np * sizeof(int64_t));
    }
    for (int i = 0; i < 2 * r; i++)
        if (pp[i] < 0 || ((i % r) < 2 && pp[i] != 0)) return MIXRT_STATUS_OK;
    size_t nc = 0;
    const int64_t *cp = valid ? NULL : mixrt_node_attr_ints(conv, "pads", &nc);
    if (cp && nc != (size_t)(2 * nd)) return MIXRT_STATUS_OK;
    int64_t *np = mixrt_arena_calloc(g->arena, (size_t)(2 * nd), sizeof(int64_t));
    if (!np) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int i = 0; i < nd; i++) {
        np[i] = (cp ? cp[i] : 0) + pp[2 + i];
        np[nd + i] = (cp ? cp[nd + i] : 0) + pp[r + 2 + i];
        /* the CUDA backend's convolutions pad symmetrically (cuDNN): an uneven fold would send
         * the conv to the CPU there (HF EfficientNet's stride-2 pads are 0 before, 1 after) */
        if (!(st->flags & MIXRT_PASS_CONV_CPU) && np[i] != np[nd + i]) return MIXRT_STATUS_OK;
    }
    struct mixrt_attr *a = (struct mixrt_attr *)mixrt_node_attr(conv, "pads");
    if (!a && !(a = mixrt_pass_attr_add(g, ci, "pads", MIXRT_ATTR_INTS))) return MIXRT_STATUS_OUT_OF_MEMORY;
    a->type = MIXRT_ATTR_INTS, a->ints = np, a->n = (size_t)(2 * nd);
    if (valid) {
        struct mixrt_attr *apa = (struct mixrt_attr *)mixrt_node_attr(&g->nodes[ci], "auto_pad");
        apa->s = "NOTSET", apa->s_len = 6;
    }
    g->nodes[ci].inputs[0] = g->nodes[pi].inputs[0];
    st->dead[pi] = true;
    *done = true;
    return MIXRT_STATUS_OK;
}

/* A pool node op (of n's opset) over x -> y with a 2-D window: kernel k, strides s, pads p
 * (begin h, w, end h, w), n's ceil_mode and count_include_pad; -1 when out of memory. */
static int pool2d_node(struct mixrt_graph *g, const struct mixrt_node *n, const char *sfx, int x, int y,
                       const int64_t *k, const int64_t *s, const int64_t *p, int64_t ceil, int64_t cip) {
    int ni = mixrt_pass_add_node(g, n->name, sfx, n->op_type, n->opset, &x, 1, y);
    int64_t *v = ni >= 0 ? mixrt_arena_calloc(g->arena, 8, sizeof(int64_t)) : NULL;
    if (!v) return -1;
    memcpy(v, k, 2 * sizeof(int64_t)), memcpy(v + 2, s, 2 * sizeof(int64_t)), memcpy(v + 4, p, 4 * sizeof(int64_t));
    static const char *const names[] = {"kernel_shape", "strides", "pads"};
    for (int i = 0; i < 3; i++) {
        struct mixrt_attr *a = mixrt_pass_attr_add(g, ni, names[i], MIXRT_ATTR_INTS);
        if (!a) return -1;
        a->ints = v + 2 * i, a->n = i == 2 ? 4 : 2; /* kernel at 0, strides at 2, pads at 4 */
    }
    struct mixrt_attr *a = mixrt_pass_attr_add(g, ni, "ceil_mode", MIXRT_ATTR_INT);
    if (!a) return -1;
    a->i = ceil;
    if (cip >= 0) {
        if (!(a = mixrt_pass_attr_add(g, ni, "count_include_pad", MIXRT_ATTR_INT))) return -1;
        a->i = cip;
    }
    return ni;
}

/* A value "<v's name><sfx>" of v's dtype with static dims d[0..r); -1 when out of memory. */
static int static_value(struct mixrt_graph *g, int v, const char *sfx, const int64_t *d, int r) {
    int nv = mixrt_graph_add_unique_value(g, g->values[v].name, sfx);
    if (nv < 0) return -1;
    g->values[nv].dtype = g->values[v].dtype, g->values[nv].rank = r;
    for (int i = 0; i < r; i++) g->values[nv].dims[i] = (struct mixrt_dim){d[i], NULL};
    return nv;
}

/* A 3-D MaxPool / AveragePool (S3D's 13, on the reference: 2.26 s of a 2.54 s run) as two 2-D
 * pools over reshaped views: [N, C*D, H, W] pooled over H, W, then [N, C, D, H'*W'] over D. A
 * max and an average over a box are separable (the average's divisor, pads counted or not and
 * ceil_mode's overhang never, is the product of each axis's count). Static shapes, no dilation,
 * explicit pads, no Indices output. */
static mixrt_status pool3d_split(struct pass_state *st, int ni, bool *done) {
    struct mixrt_graph *g = st->g;
    *done = false;
    const struct mixrt_node *n = &g->nodes[ni];
    bool max = !n->domain[0] && !strcmp(n->op_type, "MaxPool"), avg = !n->domain[0] && !strcmp(n->op_type, "AveragePool");
    if ((!max && !avg) || n->n_inputs != 1 || n->n_outputs != 1 || n->inputs[0] < 0 || n->outputs[0] < 0)
        return MIXRT_STATUS_OK;
    int x = n->inputs[0], y = n->outputs[0];
    if (g->values[x].rank != 5 || g->values[y].rank != 5 || !mixrt_dtype_is_float(g->values[x].dtype))
        return MIXRT_STATUS_OK;
    /* First round of a CPU engine's passes: whole, for a 3-D region to take (the channels-last
     * pool runs 3-D natively); the next round splits what no region took. */
    if (st->flags & MIXRT_PASS_DEFER_POOL3D) return MIXRT_STATUS_OK;
    int64_t xd[5], yd[5];
    for (int i = 0; i < 5; i++)
        if ((xd[i] = g->values[x].dims[i].value) < 1 || (yd[i] = g->values[y].dims[i].value) < 1)
            return MIXRT_STATUS_OK;
    size_t nk = 0, ns = 0, np = 0;
    const int64_t *k = mixrt_node_attr_ints(n, "kernel_shape", &nk), *s = mixrt_node_attr_ints(n, "strides", &ns),
                  *p = mixrt_node_attr_ints(n, "pads", &np);
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (!k || nk != 3 || (s && ns != 3) || (p && np != 6) || (ap[0] && strcmp(ap, "NOTSET")) ||
        !mixrt_node_attr_ints_all(n, "dilations", 1, 3) || mixrt_node_attr_int(n, "storage_order", 0) != 0)
        return MIXRT_STATUS_OK;
    int64_t sd = s ? s[0] : 1, sh = s ? s[1] : 1, sw = s ? s[2] : 1, ceil = mixrt_node_attr_int(n, "ceil_mode", 0);
    int64_t cip = avg ? mixrt_node_attr_int(n, "count_include_pad", 0) : -1;
    int64_t p6[6] = {0, 0, 0, 0, 0, 0};
    if (p) memcpy(p6, p, sizeof(p6));
    const int64_t d1[4] = {xd[0], xd[1] * xd[2], xd[3], xd[4]}, d2[4] = {xd[0], xd[1] * xd[2], yd[3], yd[4]},
                  d3[4] = {xd[0], xd[1], xd[2], yd[3] * yd[4]}, d4[4] = {xd[0], xd[1], yd[2], yd[3] * yd[4]};
    int64_t opset = mixrt_graph_opset(g, ""), ropset = opset > 5 ? opset : 5; /* Reshape with its shape an input */
    int s1 = mixrt_pass_i64_const(g, n->name, "/pool3d_s1", d1, 4), s3 = mixrt_pass_i64_const(g, n->name, "/pool3d_s3", d3, 4);
    int s5 = mixrt_pass_i64_const(g, n->name, "/pool3d_s5", yd, 5);
    int v1 = static_value(g, x, "/pool3d_hw_in", d1, 4), v2 = static_value(g, x, "/pool3d_hw", d2, 4);
    int v3 = static_value(g, x, "/pool3d_d_in", d3, 4), v4 = static_value(g, x, "/pool3d_d", d4, 4);
    if (s1 < 0 || s3 < 0 || s5 < 0 || v1 < 0 || v2 < 0 || v3 < 0 || v4 < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
    struct mixrt_node copy = g->nodes[ni]; /* the nodes array grows below */
    const int64_t khw[2] = {k[1], k[2]}, shw[2] = {sh, sw}, phw[4] = {p6[1], p6[2], p6[4], p6[5]};
    const int64_t kd[2] = {k[0], 1}, sdd[2] = {sd, 1}, pd[4] = {p6[0], 0, p6[3], 0};
    if (mixrt_pass_add_node(g, copy.name, "/pool3d_r1", "Reshape", ropset, (int[]){x, s1}, 2, v1) < 0 ||
        pool2d_node(g, &copy, "/pool3d_hw", v1, v2, khw, shw, phw, ceil, cip) < 0 ||
        mixrt_pass_add_node(g, copy.name, "/pool3d_r3", "Reshape", ropset, (int[]){v2, s3}, 2, v3) < 0 ||
        pool2d_node(g, &copy, "/pool3d_d", v3, v4, kd, sdd, pd, ceil, cip) < 0 ||
        mixrt_pass_add_node(g, copy.name, "/pool3d_r5", "Reshape", ropset, (int[]){v4, s5}, 2, y) < 0)
        return MIXRT_STATUS_OUT_OF_MEMORY;
    st->dead[ni] = true;
    *done = true;
    return MIXRT_STATUS_OK;
}

/* Sets n's ints attribute `name` to v[0..k) (a copy in the graph's arena). */
static mixrt_status set_ints_attr(struct mixrt_graph *g, int ni, const char *name, const int64_t *v, size_t k) {
    int64_t *c = mixrt_arena_calloc(g->arena, k ? k : 1, sizeof(int64_t));
    if (!c) return MIXRT_STATUS_OUT_OF_MEMORY;
    memcpy(c, v, k * sizeof(int64_t));
    struct mixrt_attr *a = (struct mixrt_attr *)mixrt_node_attr(&g->nodes[ni], name);
    if (!a && !(a = mixrt_pass_attr_add(g, ni, name, MIXRT_ATTR_INTS))) return MIXRT_STATUS_OUT_OF_MEMORY;
    a->type = MIXRT_ATTR_INTS, a->ints = c, a->n = k;
    return MIXRT_STATUS_OK;
}

/* A Conv whose first or last kernel taps on a spatial axis read only padding, for every output
 * position: DeepLabV3's ASPP runs 3x3 convs at dilations 12, 24 and 36 on a map of 14x14 (at a
 * 224 input; 33x33 at 520), where the outer taps of the last two never meet the input and add
 * zeros (2048 or 960 input channels each). The kernel cut to the taps from the first to the last
 * that read the input, the pads moved by the cut, computes the same sums with the same outputs
 * (a cut to one tap is a 1x1 conv: dilation 1 there). Static spatial input dims, explicit pads
 * (auto_pad NOTSET), constant W; pads that would go negative leave the conv as it is. */
static mixrt_status conv_dead_taps(struct pass_state *st, int ci, bool *done) {
    struct mixrt_graph *g = st->g;
    *done = false;
    const struct mixrt_node *n = &g->nodes[ci];
    if (n->domain[0] || strcmp(n->op_type, "Conv") || n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 ||
        !mixrt_graph_is_fixed_const(g, n->inputs[1]) || strcmp(mixrt_node_attr_string(n, "auto_pad", "NOTSET"), "NOTSET"))
        return MIXRT_STATUS_OK;
    const struct mixrt_tensor *W = g->values[n->inputs[1]].init;
    const struct mixrt_value *x = &g->values[n->inputs[0]];
    const int r = W->rank, nd = r - 2;
    if (nd < 1 || nd > 3 || x->rank != r) return MIXRT_STATUS_OK;
    size_t ns = 0, ndl = 0, np = 0, nk = 0;
    const int64_t *sa = mixrt_node_attr_ints(n, "strides", &ns), *da = mixrt_node_attr_ints(n, "dilations", &ndl),
                  *pa = mixrt_node_attr_ints(n, "pads", &np), *ka = mixrt_node_attr_ints(n, "kernel_shape", &nk);
    if ((sa && ns != (size_t)nd) || (da && ndl != (size_t)nd) || (pa && np != (size_t)(2 * nd)) ||
        (ka && nk != (size_t)nd))
        return MIXRT_STATUS_OK;
    int64_t k0[3], k1[3], pads[6], dil[3], kern[3];
    bool cut = false;
    for (int i = 0; i < nd; i++) {
        const int64_t I = x->dims[2 + i].value, K = W->dims[2 + i], s = sa ? sa[i] : 1, d = da ? da[i] : 1;
        const int64_t pb = pa ? pa[i] : 0, pe = pa ? pa[nd + i] : 0;
        if (I < 1 || K < 1 || s < 1 || d < 1 || pb < 0 || pe < 0 || (ka && ka[i] != K)) return MIXRT_STATUS_OK;
        const int64_t O = (I + pb + pe - d * (K - 1) - 1) / s + 1;
        if (O < 1) return MIXRT_STATUS_OK;
        k0[i] = -1, k1[i] = -1;
        for (int64_t k = 0; k < K; k++) {
            /* the first output whose tap k lies at or past the input's start, then inside? */
            int64_t lo = pb - k * d <= 0 ? 0 : (pb - k * d + s - 1) / s;
            if (lo < O && lo * s - pb + k * d < I) {
                if (k0[i] < 0) k0[i] = k;
                k1[i] = k;
            }
        }
        if (k0[i] < 0) return MIXRT_STATUS_OK; /* no tap reads the input: left to the kernels */
        pads[i] = pb - k0[i] * d, pads[nd + i] = pe - (K - 1 - k1[i]) * d;
        if (pads[i] < 0 || pads[nd + i] < 0) return MIXRT_STATUS_OK;
        kern[i] = k1[i] - k0[i] + 1;
        dil[i] = kern[i] == 1 ? 1 : d;
        cut |= kern[i] != K;
    }
    if (!cut) return MIXRT_STATUS_OK;
    /* W [M, C/g, K...] cut to [M, C/g, kern...] */
    int64_t dims[5] = {W->dims[0], W->dims[1], 1, 1, 1};
    for (int i = 0; i < nd; i++) dims[2 + i] = kern[i];
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    if (!t || mixrt_tensor_init(g->ctx, t, W->dtype, r, dims) != MIXRT_STATUS_OK) return MIXRT_STATUS_OUT_OF_MEMORY;
    const size_t es = mixrt_dtype_size(W->dtype);
    const int64_t K0 = W->dims[2], K1 = nd > 1 ? W->dims[3] : 1, K2 = nd > 2 ? W->dims[4] : 1;
    const int64_t c0 = k0[0], c1 = nd > 1 ? k0[1] : 0, c2 = nd > 2 ? k0[2] : 0;
    const int64_t n0 = kern[0], n1 = nd > 1 ? kern[1] : 1, n2 = nd > 2 ? kern[2] : 1;
    size_t o = 0;
    for (int64_t mc = 0; mc < W->dims[0] * W->dims[1]; mc++)
        for (int64_t a = 0; a < n0; a++)
            for (int64_t b = 0; b < n1; b++, o += (size_t)n2)
                memcpy((char *)t->data + o * es,
                       (const char *)W->data + (size_t)(((mc * K0 + c0 + a) * K1 + c1 + b) * K2 + c2) * es, (size_t)n2 * es);
    int vw = mixrt_pass_add_const(g, g->nodes[ci].name, "_taps_W", t);
    if (vw < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status;
    if ((status = set_ints_attr(g, ci, "pads", pads, (size_t)(2 * nd))) != MIXRT_STATUS_OK ||
        (status = set_ints_attr(g, ci, "dilations", dil, (size_t)nd)) != MIXRT_STATUS_OK ||
        (status = set_ints_attr(g, ci, "kernel_shape", kern, (size_t)nd)) != MIXRT_STATUS_OK)
        return status;
    g->nodes[ci].inputs[1] = vw;
    *done = true;
    return MIXRT_STATUS_OK;
}

/* A Conv with auto_pad SAME_UPPER, SAME_LOWER or VALID and static spatial input dims gets the
 * explicit pads they stand for (ONNX: SAME gives ceil(in / stride) outputs, the padding split
 * evenly, the odd one at the end for SAME_UPPER, at the start for SAME_LOWER; VALID none), so
 * that kernels written for explicit pads take it: Hugging Face's EfficientNet pads every conv
 * "same", and its 1x1 expand convs went to oneDNN's direct convolution at 40-60 GFLOP/s instead
 * of the 1x1-as-product kernels. */
static mixrt_status conv_explicit_pads(struct pass_state *st, int ci, bool *done) {
    struct mixrt_graph *g = st->g;
    *done = false;
    const struct mixrt_node *n = &g->nodes[ci];
    if (n->domain[0] || strcmp(n->op_type, "Conv") || n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0)
        return MIXRT_STATUS_OK;
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    const bool upper = !strcmp(ap, "SAME_UPPER"), lower = !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!upper && !lower && !valid) return MIXRT_STATUS_OK;
    const struct mixrt_value *x = &g->values[n->inputs[0]], *w = &g->values[n->inputs[1]];
    const int r = x->rank, nd = r - 2;
    if (nd < 1 || nd > 3 || w->rank != r) return MIXRT_STATUS_OK;
    size_t ns = 0, ndl = 0, nk = 0;
    const int64_t *sa = mixrt_node_attr_ints(n, "strides", &ns), *da = mixrt_node_attr_ints(n, "dilations", &ndl),
                  *ka = mixrt_node_attr_ints(n, "kernel_shape", &nk);
    if ((sa && ns != (size_t)nd) || (da && ndl != (size_t)nd) || (ka && nk != (size_t)nd)) return MIXRT_STATUS_OK;
    int64_t pads[6] = {0};
    for (int i = 0; i < nd && !valid; i++) {
        const int64_t I = x->dims[2 + i].value, K = ka ? ka[i] : w->dims[2 + i].value, s = sa ? sa[i] : 1,
                      d = da ? da[i] : 1;
        if (I < 0 || K < 1 || s < 1 || d < 1) return MIXRT_STATUS_OK;
        const int64_t O = (I + s - 1) / s, need = (O - 1) * s + (K - 1) * d + 1 - I, total = need > 0 ? need : 0;
        pads[i] = upper ? total / 2 : total - total / 2;
        pads[nd + i] = total - pads[i];
    }
    mixrt_status status = set_ints_attr(g, ci, "pads", pads, (size_t)(2 * nd));
    if (status != MIXRT_STATUS_OK) return status;
    struct mixrt_attr *a = (struct mixrt_attr *)mixrt_node_attr(&g->nodes[ci], "auto_pad");
    a->s = "NOTSET", a->s_len = 6;
    *done = true;
    return MIXRT_STATUS_OK;
}

static mixrt_status pass_conv_bn(struct pass_state *st, int *removed) {
    for (int ni = 0; ni < st->n_dead; ni++) { /* the nodes the pass began with (deconv_to_d2s appends) */
        if (st->dead[ni]) continue;
        bool done;
        bool explicit_pads; /* and on: a Pad before it may fold in now (pad_into_conv) */
        mixrt_status status = conv_explicit_pads(st, ni, &explicit_pads);
        if (status == MIXRT_STATUS_OK) status = pad_into_conv(st, ni, &done);
        if (status == MIXRT_STATUS_OK && !done) status = conv_dead_taps(st, ni, &done);
        if (status == MIXRT_STATUS_OK && !done) status = pool3d_split(st, ni, &done);
        if (status == MIXRT_STATUS_OK && !done) status = fold_conv_bn(st, ni, &done);
        if (status == MIXRT_STATUS_OK && !done) status = fold_conv_mul(st, ni, &done);
        if (status == MIXRT_STATUS_OK && !done) status = bn_to_affine(st, ni, &done);
        if (status == MIXRT_STATUS_OK && !done) status = deconv_to_d2s(st, ni, &done);
        if (status == MIXRT_STATUS_OK && !done) status = scatter_rows(st, ni, &done);
        if (status != MIXRT_STATUS_OK) return status;
        if (done || explicit_pads) (*removed)++;
    }
    return MIXRT_STATUS_OK;
}

/* ---- driver ----------------------------------------------------------------------------- */

typedef mixrt_pass_fn pass_fn;

/* Runs one pass with fresh per-pass state, then compacts. */
static mixrt_status run_one(struct mixrt_graph *g, unsigned flags, pass_fn fn, int *count, bool *changed) {
    struct pass_state st = {g, NULL, NULL, NULL, 0, g->n_values, flags};
    int nn = g->n_nodes, nv = g->n_values, removed = 0;
    mixrt_status status = state_begin(&st);
    if (status == MIXRT_STATUS_OK) status = fn(&st, &removed);
    /* The pass may have added values: the flag arrays are sized for the old count, and
     * compact only reads dead[], sized for the nodes, which passes never add. */
    if (status == MIXRT_STATUS_OK && removed) status = compact(&st);
    if (status == MIXRT_STATUS_OK && removed) status = consts_let_go(&st);
    state_end(&st, nn, nv);
    *count += removed;
    if (removed) *changed = true;
    return status;
}

/* g has a 3-D MaxPool / AveragePool of the default domain (pool3d_split's kind). */
static bool has_pool3d(const struct mixrt_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mixrt_node *n = &g->nodes[i];
        if (!n->domain[0] && (!strcmp(n->op_type, "MaxPool") || !strcmp(n->op_type, "AveragePool")) &&
            n->n_inputs >= 1 && n->inputs[0] >= 0 && g->values[n->inputs[0]].rank == 5)
            return true;
    }
    return false;
}

mixrt_status mixrt_passes_run(struct mixrt_graph *g, unsigned flags0, struct mixrt_pass_stats *stats) {
    struct mixrt_pass_stats local;
    if (!stats) stats = &local;
    memset(stats, 0, sizeof(*stats));
    if (!g) return MIXRT_STATUS_INVALID_ARGUMENT;
    if (g->parent)
        return mixrt_error(g->ctx, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_passes_run: graph '%s' is a subgraph; the "
                           "passes rewrite main graphs only", g->name);
    mixrt_status status = mixrt_graph_toposort(g, &g->order);
    if (status != MIXRT_STATUS_OK) return status;
    bool changed = true;
    const bool defer3d = (flags0 & MIXRT_PASS_CONV_CPU) && (flags0 & MIXRT_PASS_LAYOUT) &&
                         mixrt_pass_layout_3d_on() && has_pool3d(g);
    for (int iter = 0; changed && iter < 64; iter++) { /* torch exports fold shapes one block per round */
        const unsigned flags = iter == 0 && defer3d ? flags0 | MIXRT_PASS_DEFER_POOL3D : flags0;
        changed = iter == 0 && defer3d; /* a second round splits the 3-D pools no region took */
        /* Shape folding, the fold size check and Cast elimination read inferred types. */
        if ((flags & (MIXRT_PASS_SHAPE_FOLD | MIXRT_PASS_CONST_FOLD | MIXRT_PASS_CAST_ELIM)) &&
            (status = mixrt_graph_infer(g, NULL)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_SHAPE_FOLD) &&
            (status = run_one(g, flags, pass_shape_fold, &stats->shape_folded, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_CONST_FOLD) &&
            (status = run_one(g, flags, pass_const_fold, &stats->const_folded, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_CONST_FOLD) &&
            (status = run_one(g, flags, mixrt_pass_unroll_loop, &stats->loops_unrolled, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_CAST_ELIM) &&
            (status = run_one(g, flags, pass_cast_elim, &stats->casts_removed, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_CAST_ELIM) &&
            (status = run_one(g, flags, pass_move_uncast, &stats->casts_removed, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_CAST_ELIM) &&
            (status = run_one(g, flags, pass_canonicalize, &stats->canonicalized, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_TRANSPOSE_CAST) &&
            (status = run_one(g, flags, pass_transpose_cast, &stats->casts_removed, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_MBCONV) &&
            (status = run_one(g, flags, mixrt_pass_mbconv, &stats->conv_fused, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_STEM_POOL) &&
            (status = run_one(g, flags, mixrt_pass_stem_pool, &stats->conv_fused, &changed)) != MIXRT_STATUS_OK)
            return status;
        /* Folding can make shapes known (a position-id Range over Shape becomes a constant):
         * the fusions below read them, and the ops they make are not re-inferred later. */
        if (changed && (status = mixrt_graph_infer(g, NULL)) != MIXRT_STATUS_OK) return status;
        if ((flags & MIXRT_PASS_CONV_BN) &&
            (status = run_one(g, flags, pass_conv_bn, &stats->conv_bn_folded, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_LOWER_EINSUM) &&
            (status = run_one(g, flags, mixrt_pass_lower_einsum, &stats->einsum_lowered, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_FUSE_ATTENTION) &&
            (status = run_one(g, flags, mixrt_pass_fuse_attention, &stats->attention_fused, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_FUSE_TRANSFORMER) &&
            (status = run_one(g, flags, mixrt_pass_fuse_transformer, &stats->transformer_fused, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_FUSE_CONV) &&
            (status = run_one(g, flags, mixrt_pass_fuse_conv, &stats->conv_fused, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_LAYOUT) &&
            (status = run_one(g, flags, mixrt_pass_layout, &stats->layout_changed, &changed)) != MIXRT_STATUS_OK)
            return status;
        /* A Concat and the per-channel affine after it, once the layout pass made both
         * channels-last. */
        if ((flags & MIXRT_PASS_LAYOUT) && (flags & MIXRT_PASS_CONV_CPU) && !changed &&
            (status = run_one(g, flags, mixrt_pass_concat_affine, &stats->conv_fused, &changed)) != MIXRT_STATUS_OK)
            return status;
        /* Element-wise chains only once the passes above have nothing left to do: their
         * patterns (GELU, bias + activation, conv epilogues, layout) win over a chain. */
        if ((flags & MIXRT_PASS_FUSE_ELTWISE) && !changed &&
            (status = run_one(g, flags, mixrt_pass_fuse_eltwise, &stats->eltwise_fused, &changed)) != MIXRT_STATUS_OK)
            return status;
        /* Sibling products merge last: a product merged has no residual or activation left
         * for the fusions to take. */
        if ((flags & MIXRT_PASS_MERGE_MATMUL) && !changed &&
            (status = run_one(g, flags, mixrt_pass_merge_matmul, &stats->matmul_merged, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_MERGE_CONV) && !changed &&
            (status = run_one(g, flags, mixrt_pass_merge_conv, &stats->conv_merged, &changed)) != MIXRT_STATUS_OK)
            return status;
        /* Products still bare then become FusedMatMul (their kernels pack the weights). */
        if ((flags & MIXRT_PASS_FUSE_TRANSFORMER) && !changed &&
            (status = run_one(g, flags, mixrt_pass_bare_matmul, &stats->transformer_fused, &changed)) != MIXRT_STATUS_OK)
            return status;
        if ((flags & MIXRT_PASS_DCE) && (status = run_one(g, flags, pass_dce, &stats->dead_removed, &changed)) != MIXRT_STATUS_OK)
            return status;
    }
    return MIXRT_STATUS_OK;
}
