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
 * done, so a product merged here has no residual or activation left to take.
 *
 * mixrt_pass_merge_conv does the same for channels-last 1x1 FusedConvs (CPU engines): those
 * that read the same X with constant [M_i, C, 1, 1] weights, stride 1, no pads, dilation or
 * group, no residual, one weight dtype, one activation with the same parameters, all with or
 * all without a bias, become one FusedConv over [sum M_i, C, 1, 1] and a Split of its last
 * (channel) axis. An Inception block's three 1x1 convs of its input (GoogLeNet 4a: 192, 96 and
 * 16 output channels from 480 on 14x14) ran as three small products, 19-62 us each, mostly the
 * fixed cost of each call; the Split copies what the merged conv wrote (bf16: 120 KB there). */
#include <stdlib.h>
#include <string.h>

#include "passes/passes_impl.h"

#define MAX_MERGE 8

/* Node ni when it is a product this pass can merge: its weight and bias (-1: none) values. */
static bool mm_member(const struct mixrt_pass_state *st, int ni, int *w, int *bias) {
    const struct mixrt_graph *g = st->g;
    if (mixrt_pass_is_dead(st, ni)) return false;
    const struct mixrt_node *n = &g->nodes[ni];
    bool mm = !n->domain[0] && !strcmp(n->op_type, "MatMul") && n->n_inputs == 2;
    bool fused = !strcmp(n->domain, MIXRT_DOMAIN) && !strcmp(n->op_type, "FusedMatMul") && n->n_inputs >= 2 &&
                 (n->n_inputs < 4 || n->inputs[3] < 0) && mixrt_node_attr_int(n, "transB", 0) == 0;
    if ((!mm && !fused) || n->n_outputs != 1 || n->outputs[0] < 0 || n->inputs[0] < 0) return false;
    *w = n->inputs[1];
    *bias = fused && n->n_inputs > 2 ? n->inputs[2] : -1;
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

/* A new constant named after value vals[0] + "_merged": the members' tensors side by side,
 * along their first axis (first: [M_i, ...] -> [sum M_i, ...], conv weights, biases) or
 * their last ([K, N_i] -> [K, sum N_i], product weights). */
static int concat_consts(struct mixrt_graph *g, const int *vals, int k, bool first) {
    const struct mixrt_tensor *t0 = g->values[vals[0]].init;
    int64_t dims[MIXRT_MAX_RANK];
    memcpy(dims, t0->dims, (size_t)t0->rank * sizeof(int64_t));
    const int ax = first ? 0 : t0->rank - 1;
    const int64_t rows = first ? 1 : t0->dims[0];
    dims[ax] = 0;
    for (int i = 0; i < k; i++) dims[ax] += g->values[vals[i]].init->dims[ax];
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    if (!t || mixrt_tensor_init(g->ctx, t, t0->dtype, t0->rank, dims) != MIXRT_STATUS_OK) return -1;
    const size_t orow = t->nbytes / (size_t)rows;
    size_t off = 0;
    for (int i = 0; i < k; i++) {
        const struct mixrt_tensor *s = g->values[vals[i]].init;
        const size_t piece = s->nbytes / (size_t)rows; /* bytes of one row (first: all of it) */
        for (int64_t r = 0; r < rows; r++)
            memcpy((char *)t->data + (size_t)r * orow + off, (const char *)s->data + (size_t)r * piece, piece);
        off += piece;
    }
    int vi = mixrt_graph_add_unique_value(g, g->values[vals[0]].name, "_merged");
    if (vi < 0) {
        mixrt_tensor_release(g->ctx, t);
        return -1;
    }
    mixrt_pass_set_const(g, vi, t);
    return vi;
}

/* A new value y like member m[0]'s output but sum cols[i] wide on its last axis, written by
 * m[0], and a Split of it into the members' outputs; *out set to y. */
static mixrt_status split_outputs(struct mixrt_pass_state *st, const int *m, int k, const int64_t *cols, int *out) {
    struct mixrt_graph *g = st->g;
    int outs[MAX_MERGE];
    for (int i = 0; i < k; i++) outs[i] = g->nodes[m[i]].outputs[0];
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
    g->nodes[m[0]].outputs[0] = y;
    for (int i = 1; i < k; i++) st->dead[m[i]] = true;
    *out = y;
    return MIXRT_STATUS_OK;
}

/* Node ni when it is a 1x1 channels-last FusedConv this pass can merge: its W and B (-1: none). */
static bool conv_member(const struct mixrt_pass_state *st, int ni, int *w, int *bias) {
    const struct mixrt_graph *g = st->g;
    if (mixrt_pass_is_dead(st, ni)) return false;
    const struct mixrt_node *n = &g->nodes[ni];
    if (strcmp(n->domain, MIXRT_DOMAIN) || strcmp(n->op_type, "FusedConv") || n->n_inputs < 2 || n->inputs[0] < 0 ||
        n->n_outputs != 1 || n->outputs[0] < 0 || (n->n_inputs > 3 && n->inputs[3] >= 0))
        return false;
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (mixrt_node_attr_int(n, "channels_last", 0) != 1 || mixrt_node_attr_int(n, "group", 1) != 1 ||
        !mixrt_node_attr_ints_all(n, "strides", 1, 0) || !mixrt_node_attr_ints_all(n, "pads", 0, 0) ||
        !mixrt_node_attr_ints_all(n, "dilations", 1, 0) || (strcmp(ap, "NOTSET") && strcmp(ap, "VALID") && ap[0]))
        return false;
    *w = n->inputs[1];
    *bias = n->n_inputs > 2 ? n->inputs[2] : -1;
    if (!mixrt_graph_is_fixed_const(g, *w)) return false;
    const struct mixrt_tensor *wt = g->values[*w].init;
    if (!mixrt_dtype_is_float(wt->dtype) || wt->rank != 4 || wt->dims[2] != 1 || wt->dims[3] != 1) return false;
    if (*bias >= 0) {
        const struct mixrt_tensor *bt = mixrt_graph_is_fixed_const(g, *bias) ? g->values[*bias].init : NULL;
        if (!bt || bt->dtype != wt->dtype || bt->rank != 1 || bt->dims[0] != wt->dims[0]) return false;
    }
    /* Y is [N, H, W, M] of X's N, H, W. */
    const struct mixrt_value *y = &g->values[n->outputs[0]], *x = &g->values[n->inputs[0]];
    return y->rank == 4 && x->rank == 4 && y->dims[3].value == wt->dims[0];
}

/* The same activation with the same parameters. */
static bool same_act(const struct mixrt_node *a, const struct mixrt_node *b) {
    size_t na = 0, nb = 0;
    const float *pa = mixrt_node_attr_floats(a, "activation_params", &na),
                *pb = mixrt_node_attr_floats(b, "activation_params", &nb);
    return !strcmp(mixrt_node_attr_string(a, "activation", ""), mixrt_node_attr_string(b, "activation", "")) &&
           na == nb && (!na || !memcmp(pa, pb, na * sizeof(float)));
}

/* What the two kinds of sibling differ in: which nodes may merge (their W and B, -1 none),
 * which two of one input may merge with each other, and the merged weights' layout. */
struct siblings {
    bool (*member)(const struct mixrt_pass_state *st, int ni, int *w, int *bias);
    bool (*match)(const struct mixrt_graph *g, const struct mixrt_node *a, const struct mixrt_node *b);
    bool conv; /* W [M_i, C, 1, 1] merged along M; else [K, N_i] along N */
};

/* The same activation (a MatMul's is none) and K. */
static bool mm_match(const struct mixrt_graph *g, const struct mixrt_node *a, const struct mixrt_node *b) {
    return !strcmp(mixrt_node_attr_string(a, "activation", "none"), mixrt_node_attr_string(b, "activation", "none")) &&
           g->values[a->inputs[1]].init->dims[0] == g->values[b->inputs[1]].init->dims[0];
}

/* The same activation with the same parameters, and C. */
static bool conv_match(const struct mixrt_graph *g, const struct mixrt_node *a, const struct mixrt_node *b) {
    return same_act(a, b) && g->values[a->inputs[1]].init->dims[1] == g->values[b->inputs[1]].init->dims[1];
}

/* Members m[0..k) (m[0] first in order) become m[0] over the merged weights writing a new
 * value, and a Split of it into the members' outputs. */
static mixrt_status merge(struct mixrt_pass_state *st, const int *m, int k, bool conv) {
    struct mixrt_graph *g = st->g;
    int ws[MAX_MERGE], bs[MAX_MERGE], y;
    int64_t cols[MAX_MERGE];
    for (int i = 0; i < k; i++) {
        const struct mixrt_node *n = &g->nodes[m[i]];
        ws[i] = n->inputs[1];
        bs[i] = n->n_inputs > 2 ? n->inputs[2] : -1;
        cols[i] = g->values[ws[i]].init->dims[conv ? 0 : 1];
    }
    int w = concat_consts(g, ws, k, conv);
    int b = w >= 0 && bs[0] >= 0 ? concat_consts(g, bs, k, true) : -1;
    if (w < 0 || (bs[0] >= 0 && b < 0)) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = split_outputs(st, m, k, cols, &y);
    if (status != MIXRT_STATUS_OK) return status;
    /* m[0] becomes the merged product (a FusedMatMul, also when it was a MatMul) or conv. */
    struct mixrt_node *r = &g->nodes[m[0]];
    int *ins = mixrt_arena_calloc(g->arena, 3, sizeof(int));
    if (!ins) return MIXRT_STATUS_OUT_OF_MEMORY;
    ins[0] = r->inputs[0], ins[1] = w, ins[2] = b;
    if (r->domain[0] == '\0') {
        status = mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION);
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
    return MIXRT_STATUS_OK;
}

/* Each member of kind with later members that read its input and match it: merged (at most
 * MAX_MERGE together); *removed counts the nodes merged into another. */
static mixrt_status merge_siblings(struct mixrt_pass_state *st, const struct siblings *kind, int *removed) {
    struct mixrt_graph *g = st->g;
    bool *taken = calloc((size_t)st->n_dead + 1, 1);
    if (!taken) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = MIXRT_STATUS_OK;
    for (int s = 0; s < st->n_dead && status == MIXRT_STATUS_OK; s++) {
        int ni = g->order[s], w, bias;
        if (taken[ni] || !kind->member(st, ni, &w, &bias)) continue;
        const struct mixrt_node *n0 = &g->nodes[ni];
        int m[MAX_MERGE], k = 0;
        m[k++] = ni;
        for (int s2 = s + 1; s2 < st->n_dead && k < MAX_MERGE; s2++) {
            int nj = g->order[s2], w2, b2;
            const struct mixrt_node *n = &g->nodes[nj];
            if (taken[nj] || n->n_inputs < 1 || n->inputs[0] != n0->inputs[0] || !kind->member(st, nj, &w2, &b2) ||
                !kind->match(g, n0, n) || g->values[w2].init->dtype != g->values[w].init->dtype ||
                (b2 >= 0) != (bias >= 0) || g->values[n->outputs[0]].dtype != g->values[n0->outputs[0]].dtype)
                continue;
            m[k++] = nj;
        }
        if (k < 2) continue;
        for (int i = 0; i < k; i++) taken[m[i]] = true;
        if ((status = merge(st, m, k, kind->conv)) == MIXRT_STATUS_OK) *removed += k - 1;
    }
    free(taken);
    return status;
}

mixrt_status mixrt_pass_merge_matmul(struct mixrt_pass_state *st, int *removed) {
    static const struct siblings mm = {mm_member, mm_match, false};
    return merge_siblings(st, &mm, removed);
}

mixrt_status mixrt_pass_merge_conv(struct mixrt_pass_state *st, int *removed) {
    static const struct siblings conv = {conv_member, conv_match, true};
    return merge_siblings(st, &conv, removed);
}
