/* fuse_eltwise.c - chains of element-wise float ops into one com.mixrt ElementwiseChain node,
 * so the running value stays in cache between steps. Invariant: only values read by exactly
 * one node (the next step; no graph output, no subgraph read) disappear, and every step keeps
 * the running value's full shape, so the rewrite changes no other value and no broadcast.
 *
 * com.mixrt ElementwiseChain, opset 1 (MIXRT_DOMAIN); type T: f32, f64, f16, bf16.
 *   inputs:  X0 (T): the chain's start; the output has its shape and dtype.
 *            X1..Xk (T): operands of the binary steps, each exactly X0's shape, a single
 *            element of any rank <= X0's (broadcast to every element), or a vector along
 *            X0's last axis: [1, ..., 1, C] of rank <= X0's, C > 1 X0's last dim (a per-channel
 *            scale or shift of a channels-last tensor, broadcast to every row).
 *   attributes (steps s = 0..n-1, 1 <= n <= 64):
 *            ops (ints[n], required): the step codes below.
 *            operands (ints[n], required): a binary step's operand input index (1..k; the
 *            same input may serve several steps); 0 for a unary step.
 *            swapped (ints[n], default all 0): 1 when the operand is the LEFT side
 *            (v = X op v, for Sub/Div; any binary step may set it), else v = v op X.
 *            params (floats[4n], default per step {0, 0, -inf, +inf}): alpha, beta, lo, hi.
 *   output:  Y (T, X0's shape): v = X0, then v = step_s(v) for each s in order.
 *   Step codes (stable: stored in plans, only grow at the end; 0 is invalid):
 *      1 Add   2 Sub   3 Mul   4 Div   5 Max   6 Min      binary; Max/Min propagate NaN
 *      7 Relu                    8 LeakyRelu (v < 0 ? alpha*v : v)
 *      9 Sigmoid  10 Tanh  11 Erf  12 Exp  13 Sqrt  14 Reciprocal  15 Neg  16 Abs
 *     17 Clip (v < lo ? lo : v, then > hi ? hi: lo > hi gives hi; NaN passes)
 *     18 HardSigmoid (max(0, min(1, alpha*v + beta)))   19 HardSwish (v*max(0, min(1, v/6 + 1/2)))
 *     20 Softplus  21 Gelu (erf form)  22 Gelu (tanh approximation)
 *   Malformed attributes or inputs are INVALID_MODEL naming the node and attribute or input
 *   (both kernels check: a plan or a fuzzer may hand them such a node). The codes and the
 *   check live in src/backend/cpu/eltwise_chain_impl.h.
 *
 * Chains: >= 2 consecutive steps in a main graph, each a default-domain op of the table (or
 * com.mixrt Gelu), float, opsets with numpy broadcasting; Clip bounds and other operands of
 * one element must be constants (Clip) or of static single-element shape (others); Clip's
 * bounds must be exact as floats. Longer chains split into nodes of at most CHAIN_STEPS. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/eltwise_chain_impl.h"
#include "passes/passes_impl.h"

#define CHAIN_STEPS 32

static const struct {
    const char *op;
    enum mixrt_chain_op code;
    int min_opset; /* numpy broadcasting (binary) or the op's first version */
} step_ops[] = {
    {"Add", MIXRT_CHAIN_ADD, 7},
    {"Sub", MIXRT_CHAIN_SUB, 7},
    {"Mul", MIXRT_CHAIN_MUL, 7},
    {"Div", MIXRT_CHAIN_DIV, 7},
    {"Max", MIXRT_CHAIN_MAX, 8},
    {"Min", MIXRT_CHAIN_MIN, 8},
    {"Relu", MIXRT_CHAIN_RELU, 6},
    {"LeakyRelu", MIXRT_CHAIN_LEAKY_RELU, 6},
    {"Sigmoid", MIXRT_CHAIN_SIGMOID, 6},
    {"Tanh", MIXRT_CHAIN_TANH, 6},
    {"Erf", MIXRT_CHAIN_ERF, 9},
    {"Exp", MIXRT_CHAIN_EXP, 6},
    {"Sqrt", MIXRT_CHAIN_SQRT, 6},
    {"Reciprocal", MIXRT_CHAIN_RECIPROCAL, 6},
    {"Neg", MIXRT_CHAIN_NEG, 6},
    {"Abs", MIXRT_CHAIN_ABS, 6},
    {"Clip", MIXRT_CHAIN_CLIP, 6},
    {"HardSigmoid", MIXRT_CHAIN_HARD_SIGMOID, 6},
    {"HardSwish", MIXRT_CHAIN_HARD_SWISH, 14},
    {"Softplus", MIXRT_CHAIN_SOFTPLUS, 1},
    {"Gelu", MIXRT_CHAIN_GELU, 20},
};

struct step {
    int node;
    enum mixrt_chain_op code;
    int operand; /* value index of a binary step's other side, else -1 */
    bool swapped;
    float p[4];
};

static bool is_float(mixrt_dtype t) {
    return t == MIXRT_DTYPE_F32 || t == MIXRT_DTYPE_F64 || t == MIXRT_DTYPE_F16 || t == MIXRT_DTYPE_BF16;
}

/* Statically the same shape: ranks known and equal, each dim known and equal or the same
 * symbol. */
static bool same_shape(const struct mixrt_value *a, const struct mixrt_value *b) {
    if (a->rank < 0 || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++) {
        const struct mixrt_dim *x = &a->dims[i], *y = &b->dims[i];
        if (x->value >= 0 ? x->value != y->value : !(x->param && y->param && !strcmp(x->param, y->param))) return false;
    }
    return true;
}

/* Statically one element, rank <= rank. */
static bool one_element(const struct mixrt_value *v, int rank) {
    if (v->rank < 0 || v->rank > rank) return false;
    for (int i = 0; i < v->rank; i++)
        if (v->dims[i].value != 1) return false;
    return true;
}

/* Statically a vector along x's last axis: [1, ..., 1, C], rank <= x's, C > 1 x's (known) last dim. */
static bool last_axis_vector(const struct mixrt_value *v, const struct mixrt_value *x) {
    if (v->rank < 1 || x->rank < 1 || v->rank > x->rank) return false;
    int64_t c = x->dims[x->rank - 1].value;
    if (c <= 1 || v->dims[v->rank - 1].value != c) return false;
    for (int i = 0; i < v->rank - 1; i++)
        if (v->dims[i].value != 1) return false;
    return true;
}

static bool plain_value(const struct mixrt_value *v) {
    return !(v->flags & (MIXRT_VALUE_SEQUENCE | MIXRT_VALUE_OPTIONAL)) && is_float(v->dtype);
}

/* A Clip bound input: absent, or a fixed one-element constant of dtype dt exact as a float. */
static bool clip_bound(const struct mixrt_graph *g, const struct mixrt_node *n, int i, mixrt_dtype dt, float *out) {
    if (i >= n->n_inputs || n->inputs[i] < 0) return true;
    int vi = n->inputs[i];
    if (!mixrt_graph_is_fixed_const(g, vi)) return false;
    const struct mixrt_tensor *t = g->values[vi].init;
    if (t->dtype != dt || mixrt_tensor_numel(t) != 1) return false;
    double v = mixrt_load_f64(t->data, t->dtype, 0);
    if (!isnan(v) && (double)(float)v != v) return false;
    *out = (float)v;
    return true;
}

/* Node ni as a step on the running value x: *s filled when it is one (x its main input, its
 * output x's dtype and shape). */
static bool match_step(const struct mixrt_graph *g, int ni, int x, struct step *s) {
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_value *xv = &g->values[x];
    if (n->n_outputs != 1 || n->outputs[0] < 0 || n->n_inputs < 1) return false;
    for (int a = 0; a < n->n_attrs; a++)
        if (n->attrs[a].g || n->attrs[a].graphs) return false;
    const struct mixrt_value *yv = &g->values[n->outputs[0]];
    if (!plain_value(xv) || !plain_value(yv) || yv->dtype != xv->dtype || !same_shape(xv, yv)) return false;
    s->node = ni, s->operand = -1, s->swapped = false;
    s->p[0] = s->p[1] = 0.0f, s->p[2] = -INFINITY, s->p[3] = INFINITY;
    int found = -1;
    if (!strcmp(n->domain, MIXRT_DOMAIN) && !strcmp(n->op_type, "Gelu")) {
        if (n->opset != MIXRT_DOMAIN_VERSION) return false;
        found = (int)(sizeof(step_ops) / sizeof(step_ops[0])) - 1;
    } else if (!n->domain[0]) {
        for (size_t i = 0; i < sizeof(step_ops) / sizeof(step_ops[0]); i++)
            if (!strcmp(step_ops[i].op, n->op_type)) found = (int)i;
        if (found < 0 || n->opset < step_ops[found].min_opset) return false;
    }
    if (found < 0) return false;
    s->code = step_ops[found].code;
    if (mixrt_chain_op_binary(s->code)) {
        if (n->n_inputs != 2) return false;
        int side = n->inputs[0] == x ? 0 : n->inputs[1] == x ? 1 : -1;
        if (side < 0) return false;
        int o = n->inputs[1 - side];
        if (o < 0) return false;
        const struct mixrt_value *ov = &g->values[o];
        if (!plain_value(ov) || ov->dtype != xv->dtype ||
            !(same_shape(ov, xv) || one_element(ov, xv->rank) || last_axis_vector(ov, xv)))
            return false;
        s->operand = o;
        s->swapped = side == 1;
        return true;
    }
    if (n->inputs[0] != x) return false;
    switch (s->code) {
    case MIXRT_CHAIN_LEAKY_RELU: s->p[0] = mixrt_node_attr_float(n, "alpha", 0.01f); break;
    case MIXRT_CHAIN_HARD_SIGMOID:
        s->p[0] = mixrt_node_attr_float(n, "alpha", 0.2f);
        s->p[1] = mixrt_node_attr_float(n, "beta", 0.5f);
        break;
    case MIXRT_CHAIN_CLIP:
        if (n->opset < 11) {
            s->p[2] = mixrt_node_attr_float(n, "min", -INFINITY);
            s->p[3] = mixrt_node_attr_float(n, "max", INFINITY);
        } else if (!clip_bound(g, n, 1, xv->dtype, &s->p[2]) || !clip_bound(g, n, 2, xv->dtype, &s->p[3])) {
            return false;
        }
        break;
    case MIXRT_CHAIN_GELU: {
        const char *ap = mixrt_node_attr_string(n, "approximate", "none");
        if (!strcmp(ap, "tanh")) s->code = MIXRT_CHAIN_GELU_TANH;
        else if (strcmp(ap, "none")) return false;
        break;
    }
    default: break;
    }
    return true;
}

/* The chain's start at node ni: its main input (input 0 unless that is the broadcast side). */
static bool match_start(const struct mixrt_graph *g, int ni, struct step *s, int *x0) {
    const struct mixrt_node *n = &g->nodes[ni];
    for (int side = 0; side < 2 && side < n->n_inputs; side++) {
        int x = n->inputs[side];
        if (x < 0) continue;
        if (match_step(g, ni, x, s)) {
            *x0 = x;
            return true;
        }
        if (side == 0 && !(n->n_inputs == 2 && !n->domain[0] && n->opset >= 7)) break; /* only binary ops swap */
    }
    return false;
}

static struct mixrt_attr *attr_at(struct mixrt_attr *at, const char *name, enum mixrt_attr_type type, size_t n) {
    at->name = name;
    at->type = type;
    at->n = n;
    return at;
}

/* Replaces steps c[0..n) (on x0) by one ElementwiseChain node writing the last step's output. */
static mixrt_status rewrite(struct mixrt_pass_state *st, int x0, const struct step *c, int n) {
    struct mixrt_graph *g = st->g;
    mixrt_status status = MIXRT_STATUS_OK;
    char name[512];
    snprintf(name, sizeof(name), "%s_chain", g->nodes[c[0].node].name);
    int y = g->nodes[c[n - 1].node].outputs[0];
    MIXRT_TRY(mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION));
    int ni = mixrt_graph_add_node(g, name, "ElementwiseChain", MIXRT_DOMAIN);
    int *ins = mixrt_arena_calloc(g->arena, (size_t)n + 1, sizeof(int));
    int *outs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    struct mixrt_attr *at = mixrt_arena_calloc(g->arena, 4, sizeof(*at));
    int64_t *ops = mixrt_arena_calloc(g->arena, (size_t)n, sizeof(int64_t));
    int64_t *opd = mixrt_arena_calloc(g->arena, (size_t)n, sizeof(int64_t));
    int64_t *sw = mixrt_arena_calloc(g->arena, (size_t)n, sizeof(int64_t));
    float *prm = mixrt_arena_calloc(g->arena, 4 * (size_t)n, sizeof(float));
    MIXRT_CHECK(g->ctx, ni >= 0 && ins && outs && at && ops && opd && sw && prm, MIXRT_STATUS_OUT_OF_MEMORY,
                "out of memory fusing the element-wise chain at node '%s'", name);
    int n_in = 1;
    ins[0] = x0;
    for (int s = 0; s < n; s++) {
        ops[s] = c[s].code;
        sw[s] = c[s].swapped;
        memcpy(prm + 4 * s, c[s].p, sizeof(c[s].p));
        if (c[s].operand < 0) continue;
        int j = 1;
        while (j < n_in && ins[j] != c[s].operand) j++; /* one input per distinct operand */
        if (j == n_in) ins[n_in++] = c[s].operand;
        opd[s] = j;
    }
    struct mixrt_node *nd = &g->nodes[ni];
    nd->opset = MIXRT_DOMAIN_VERSION;
    nd->inputs = ins;
    nd->n_inputs = n_in;
    outs[0] = y;
    nd->outputs = outs;
    nd->n_outputs = 1;
    attr_at(&at[0], "ops", MIXRT_ATTR_INTS, (size_t)n)->ints = ops;
    attr_at(&at[1], "operands", MIXRT_ATTR_INTS, (size_t)n)->ints = opd;
    attr_at(&at[2], "swapped", MIXRT_ATTR_INTS, (size_t)n)->ints = sw;
    attr_at(&at[3], "params", MIXRT_ATTR_FLOATS, 4 * (size_t)n)->floats = prm;
    nd->attrs = at;
    nd->n_attrs = 4;
    for (int s = 0; s < n; s++) {
        st->dead[c[s].node] = true;
        g->values[g->nodes[c[s].node].outputs[0]].producer = -1;
    }
    g->values[y].producer = ni;
fail:
    return status;
}

mixrt_status mixrt_pass_fuse_eltwise(struct mixrt_pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    mixrt_status status = MIXRT_STATUS_OK;
    int nn = st->n_dead, nv = st->n_values;
    /* Readers per value, and the last one: a chain's intermediates keep theirs through the
     * rewrites (the chain node reads only X0 and operands, as its steps did). */
    int *uses = mixrt_calloc(g->ctx, (size_t)(nv > 0 ? nv : 1), sizeof(int));
    int *reader = mixrt_calloc(g->ctx, (size_t)(nv > 0 ? nv : 1), sizeof(int));
    bool *taken = mixrt_calloc(g->ctx, (size_t)(nn > 0 ? nn : 1), sizeof(bool));
    struct step c[CHAIN_STEPS];
    MIXRT_CHECK(g->ctx, uses && reader && taken, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory in the element-wise fusion");
    for (int v = 0; v < nv; v++) uses[v] = st->is_output[v] || st->outer_used[v];
    for (int i = 0; i < nn; i++) {
        if (st->dead[i]) continue;
        for (int j = 0; j < g->nodes[i].n_inputs; j++) {
            int v = g->nodes[i].inputs[j];
            if (v < 0 || v >= nv) continue;
            uses[v]++;
            reader[v] = i;
        }
    }
    for (int k = 0; k < nn; k++) {
        int ni = g->order[k], x0, n = 0;
        if (st->dead[ni] || taken[ni] || !match_start(g, ni, &c[0], &x0)) continue;
        n = 1;
        while (n < CHAIN_STEPS) {
            int v = g->nodes[c[n - 1].node].outputs[0];
            if (v >= nv || uses[v] != 1) break;
            int r = reader[v];
            if (st->dead[r] || taken[r] || !match_step(g, r, v, &c[n])) break;
            n++;
        }
        for (int s = 0; s < n; s++) taken[c[s].node] = true;
        if (n < 2) continue;
        MIXRT_TRY(rewrite(st, x0, c, n));
        *removed += n;
    }
fail:
    mixrt_free(g->ctx, uses, (size_t)(nv > 0 ? nv : 1) * sizeof(int));
    mixrt_free(g->ctx, reader, (size_t)(nv > 0 ? nv : 1) * sizeof(int));
    mixrt_free(g->ctx, taken, (size_t)(nn > 0 ? nn : 1) * sizeof(bool));
    return status;
}
