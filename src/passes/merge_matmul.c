/* merge_matmul.c - sibling products as one: MatMul / FusedMatMul nodes that read the same
 * activation A with constant [K, N_i] weights (no transB, no residual), one weight dtype, one
 * activation and all with or all without a constant [N_i] bias, become one FusedMatMul over
 * the weights' columns side by side [K, sum N_i] (biases likewise), then one Split on the last
 * axis into the original output values. A transformer's Q, K and V projections become one
 * product three times as wide (BERT at batch 32: 4096 x 2304 x 768 instead of three of
 * 768 columns, which cuBLASLt ran at half the rate of the wider ones); the CUDA backend
 * then runs the Split as views when only the attention reads its outputs.
 * Invariant: each output value keeps its dtype, shape and readers; every element is the same
 * sum of the same products as before (columns do not mix). Runs once the other fusions are
 * done, so a product merged here has no residual or activation left to take. */
#include <stdlib.h>
#include <string.h>

#include "passes/passes_impl.h"

#define MAX_MERGE 8

/* Node ni when it is a product this pass can merge: its activation in *act, weight and
 * bias (-1: none) values. */
static bool mergeable(const struct mixrt_pass_state *st, int ni, const char **act, int *w, int *bias) {
    const struct mixrt_graph *g = st->g;
    if (mixrt_pass_is_dead(st, ni)) return false;
    const struct mixrt_node *n = &g->nodes[ni];
    bool mm = !n->domain[0] && !strcmp(n->op_type, "MatMul") && n->n_inputs == 2;
    bool fused = !strcmp(n->domain, MIXRT_DOMAIN) && !strcmp(n->op_type, "FusedMatMul") && n->n_inputs >= 2 &&
                 (n->n_inputs < 4 || n->inputs[3] < 0) && mixrt_node_attr_int(n, "transB", 0) == 0;
    if ((!mm && !fused) || n->n_outputs != 1 || n->outputs[0] < 0 || n->inputs[0] < 0) return false;
    *w = n->inputs[1];
    *bias = fused && n->n_inputs > 2 ? n->inputs[2] : -1;
    *act = fused ? mixrt_node_attr_string(n, "activation", "none") : "none";
    if (!mixrt_graph_is_fixed_const(g, *w)) return false;
    const struct mixrt_tensor *wt = g->values[*w].init;
    if (!mixrt_dtype_is_float(wt->dtype) || wt->rank != 2) return false;
    if (*bias >= 0) {
        const struct mixrt_tensor *bt = mixrt_graph_is_fixed_const(g, *bias) ? g->values[*bias].init : NULL;
        if (!bt || bt->dtype != wt->dtype || bt->rank != 1 || bt->dims[0] != wt->dims[1]) return false;
    }
    /* The output's last axis is the weight's columns; its other axes are A's. */
    const struct mixrt_value *y = &g->values[n->outputs[0]], *a = &g->values[n->inputs[0]];
    if (y->rank < 1 || y->rank != a->rank || y->dims[y->rank - 1].value != wt->dims[1]) return false;
    return true;
}

/* A new constant named after value base + suffix: the [K, sum N] weights (or [sum N]
 * biases, rank 1) of members m[0..k) side by side. */
static int concat_columns(struct mixrt_graph *g, const int *vals, int k, int rank, const char *suffix) {
    const struct mixrt_tensor *t0 = g->values[vals[0]].init;
    int64_t rows = rank == 2 ? t0->dims[0] : 1, total = 0;
    for (int i = 0; i < k; i++) total += g->values[vals[i]].init->dims[rank - 1];
    int64_t dims[2] = {rows, total};
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    if (!t || mixrt_tensor_init(g->ctx, t, t0->dtype, rank, rank == 2 ? dims : dims + 1) != MIXRT_STATUS_OK) return -1;
    size_t es = mixrt_dtype_size(t0->dtype), off = 0;
    for (int i = 0; i < k; i++) {
        const struct mixrt_tensor *s = g->values[vals[i]].init;
        size_t cols = (size_t)s->dims[rank - 1];
        for (int64_t r = 0; r < rows; r++)
            memcpy((char *)t->data + ((size_t)r * (size_t)total + off) * es, (const char *)s->data + (size_t)r * cols * es,
                   cols * es);
        off += cols;
    }
    int vi = mixrt_graph_add_unique_value(g, g->values[vals[0]].name, suffix);
    if (vi < 0) {
        mixrt_tensor_release(g->ctx, t);
        return -1;
    }
    mixrt_pass_set_const(g, vi, t);
    return vi;
}

/* Members m[0..k) (m[0] first in order) become m[0] over the merged weights writing a new
 * value, and a Split of it into the members' outputs. */
static mixrt_status merge(struct mixrt_pass_state *st, const int *m, int k) {
    struct mixrt_graph *g = st->g;
    int ws[MAX_MERGE], bs[MAX_MERGE], outs[MAX_MERGE];
    int64_t cols[MAX_MERGE];
    for (int i = 0; i < k; i++) {
        const struct mixrt_node *n = &g->nodes[m[i]];
        ws[i] = n->inputs[1];
        bs[i] = n->n_inputs > 2 ? n->inputs[2] : -1;
        outs[i] = n->outputs[0];
        cols[i] = g->values[ws[i]].init->dims[1];
    }
    int w = concat_columns(g, ws, k, 2, "_merged");
    int b = w >= 0 && bs[0] >= 0 ? concat_columns(g, bs, k, 1, "_merged") : -1;
    if (w < 0 || (bs[0] >= 0 && b < 0)) return MIXRT_STATUS_OUT_OF_MEMORY;
    int y = mixrt_graph_add_unique_value(g, g->values[outs[0]].name, "_merged");
    if (y < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
    struct mixrt_value *vy = &g->values[y];
    const struct mixrt_value *v0 = &g->values[outs[0]];
    vy->dtype = v0->dtype;
    vy->rank = v0->rank;
    for (int i = 0; i < v0->rank; i++) vy->dims[i] = v0->dims[i];
    int64_t total = 0;
    for (int i = 0; i < k; i++) total += cols[i];
    vy->dims[vy->rank - 1].value = total;
    vy->dims[vy->rank - 1].param = NULL;
    /* The Split: opset 13 on takes the sizes as an input, earlier ones as an attribute. */
    int64_t opset = mixrt_graph_opset(g, "");
    if (opset <= 0) opset = 13;
    int sizes = -1;
    int64_t *sv = mixrt_arena_calloc(g->arena, (size_t)k, sizeof(int64_t));
    if (!sv) return MIXRT_STATUS_OUT_OF_MEMORY;
    memcpy(sv, cols, (size_t)k * sizeof(int64_t));
    if (opset >= 13) {
        struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
        int64_t n = k;
        if (!t || mixrt_tensor_init(g->ctx, t, MIXRT_DTYPE_I64, 1, &n) != MIXRT_STATUS_OK)
            return MIXRT_STATUS_OUT_OF_MEMORY;
        memcpy(t->data, cols, (size_t)k * sizeof(int64_t));
        if ((sizes = mixrt_graph_add_unique_value(g, g->values[y].name, "_sizes")) < 0) {
            mixrt_tensor_release(g->ctx, t);
            return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        mixrt_pass_set_const(g, sizes, t);
    }
    const char *base = g->nodes[m[0]].name;
    size_t lb = strlen(base);
    char *name = mixrt_arena_alloc(g->arena, lb + sizeof("/merged_split"), 1);
    if (!name) return MIXRT_STATUS_OUT_OF_MEMORY;
    memcpy(name, base, lb);
    memcpy(name + lb, "/merged_split", sizeof("/merged_split"));
    int si = mixrt_graph_add_node(g, name, "Split", "");
    int *io = si >= 0 ? mixrt_arena_calloc(g->arena, (size_t)k + 2, sizeof(int)) : NULL;
    struct mixrt_attr *ax = io ? mixrt_pass_attr_add(g, si, "axis", MIXRT_ATTR_INT) : NULL;
    if (!ax) return MIXRT_STATUS_OUT_OF_MEMORY;
    ax->i = g->values[y].rank - 1;
    if (opset < 13) {
        struct mixrt_attr *sa = mixrt_pass_attr_add(g, si, "split", MIXRT_ATTR_INTS);
        if (!sa) return MIXRT_STATUS_OUT_OF_MEMORY;
        sa->ints = sv, sa->n = (size_t)k;
    }
    struct mixrt_node *sn = &g->nodes[si];
    sn->opset = opset;
    io[0] = y, io[1] = sizes;
    sn->inputs = io, sn->n_inputs = sizes >= 0 ? 2 : 1;
    sn->outputs = io + 2, sn->n_outputs = k;
    for (int i = 0; i < k; i++) {
        io[2 + i] = outs[i];
        g->values[outs[i]].producer = si;
    }
    g->values[y].producer = m[0];
    /* m[0] becomes the merged product (a FusedMatMul, also when it was a MatMul). */
    struct mixrt_node *r = &g->nodes[m[0]];
    int *ins = mixrt_arena_calloc(g->arena, 3, sizeof(int));
    if (!ins) return MIXRT_STATUS_OUT_OF_MEMORY;
    ins[0] = r->inputs[0], ins[1] = w, ins[2] = b;
    if (r->domain[0] == '\0') {
        mixrt_status status = mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION);
        struct mixrt_attr *aa =
            status == MIXRT_STATUS_OK ? mixrt_pass_attr_add(g, m[0], "activation", MIXRT_ATTR_STRING) : NULL;
        if (!aa) return status == MIXRT_STATUS_OK ? MIXRT_STATUS_OUT_OF_MEMORY : status;
        aa->s = "none", aa->s_len = 4;
        r = &g->nodes[m[0]];
        r->op_type = "FusedMatMul";
        r->domain = MIXRT_DOMAIN;
        r->opset = MIXRT_DOMAIN_VERSION;
    }
    r->inputs = ins, r->n_inputs = b >= 0 ? 3 : 2;
    r->outputs[0] = y;
    for (int i = 1; i < k; i++) st->dead[m[i]] = true;
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_pass_merge_matmul(struct mixrt_pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    bool *taken = calloc((size_t)st->n_dead + 1, 1);
    if (!taken) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = MIXRT_STATUS_OK;
    for (int s = 0; s < st->n_dead && status == MIXRT_STATUS_OK; s++) {
        int ni = g->order[s];
        const char *act;
        int w, bias;
        if (taken[ni] || !mergeable(st, ni, &act, &w, &bias)) continue;
        const struct mixrt_node *n0 = &g->nodes[ni];
        int a = n0->inputs[0];
        mixrt_dtype dt = g->values[w].init->dtype;
        int64_t kdim = g->values[w].init->dims[0];
        int m[MAX_MERGE], k = 0;
        m[k++] = ni;
        for (int s2 = s + 1; s2 < st->n_dead && k < MAX_MERGE; s2++) {
            int nj = g->order[s2];
            const char *act2;
            int w2, b2;
            if (taken[nj] || g->nodes[nj].n_inputs < 1 || g->nodes[nj].inputs[0] != a ||
                !mergeable(st, nj, &act2, &w2, &b2))
                continue;
            const struct mixrt_tensor *t2 = g->values[w2].init;
            if (strcmp(act, act2) || t2->dtype != dt || t2->dims[0] != kdim || (b2 >= 0) != (bias >= 0) ||
                g->values[g->nodes[nj].outputs[0]].dtype != g->values[n0->outputs[0]].dtype)
                continue;
            m[k++] = nj;
        }
        if (k < 2) continue;
        for (int i = 0; i < k; i++) taken[m[i]] = true;
        if ((status = merge(st, m, k)) == MIXRT_STATUS_OK) *removed += k - 1;
    }
    free(taken);
    return status;
}
