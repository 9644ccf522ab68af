/* fuse_transformer.c - transformer fusions into com.mixrt ops: GELU (erf and tanh forms) into
 * Gelu, decomposed LayerNorm into LayerNormalization (RMSNorm into RMSNormalization), and MatMul/Gemm with a constant weight
 * plus bias/residual/activation into FusedMatMul. Invariant: a pattern is rewritten only when
 * every intermediate it swallows has exactly one reader (no graph output, no subgraph read),
 * and the root's output value is kept, so readers, dtypes and shapes stay as they were. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes_impl.h"

/* Exported constants differ by the model's dtype (bf16 rounds sqrt(2/pi) to 0.797, 0.5% off);
 * anything closer than this is taken as the exact constant of the formula. */
#define CONST_RTOL 6e-3
#define SQRT2 1.4142135623730951
#define SQRT_2_OVER_PI 0.7978845608028654

/* Node ni when live, in the default domain, op_type op, with one output. */
static bool is_op(const struct mixrt_pass_state *st, int ni, const char *op) {
    /* Nodes added during this run (past n_dead: no dead[] slot) wait for the next run. */
    if (ni < 0 || ni >= st->n_dead || mixrt_pass_is_dead(st, ni)) return false;
    const struct mixrt_node *n = &st->g->nodes[ni];
    return !n->domain[0] && !strcmp(n->op_type, op) && n->n_outputs >= 1 && n->outputs[0] >= 0;
}

/* The live producer of value vi when it is op (default domain) and vi has exactly one
 * reader; else -1. The pattern's intermediates go through here. */
static int sole_producer(const struct mixrt_pass_state *st, int vi, const char *op) {
    if (vi < 0) return -1;
    int p = st->g->values[vi].producer;
    if (!is_op(st, p, op) || st->g->nodes[p].outputs[0] != vi) return -1;
    for (int j = 1; j < st->g->nodes[p].n_outputs; j++)
        if (st->g->nodes[p].outputs[j] >= 0 && mixrt_pass_count_uses(st, st->g->nodes[p].outputs[j]) > 0) return -1;
    return mixrt_pass_count_uses(st, vi) == 1 ? p : -1;
}

/* A fixed scalar float constant (any rank, one element) in *v. */
static bool scalar_const(const struct mixrt_graph *g, int vi, double *v) {
    if (!mixrt_graph_is_fixed_const(g, vi)) return false;
    const struct mixrt_tensor *t = g->values[vi].init;
    if (!mixrt_dtype_is_float(t->dtype) || mixrt_tensor_numel(t) != 1) return false;
    *v = mixrt_load_f64(t->data, t->dtype, 0);
    return true;
}

static bool const_near(const struct mixrt_graph *g, int vi, double want) {
    double v;
    return scalar_const(g, vi, &v) && fabs(v - want) <= CONST_RTOL * fabs(want);
}

/* For a binary node: which input (0/1) is the constant near want; -1 if none. */
static int binary_const_side(const struct mixrt_graph *g, const struct mixrt_node *n, double want) {
    if (n->n_inputs != 2) return -1;
    if (const_near(g, n->inputs[1], want)) return 1;
    if (const_near(g, n->inputs[0], want)) return 0;
    return -1;
}

/* Nodes a match swallows; dead only when the whole pattern matched. */
struct match {
    int nodes[16];
    int n;
};

static bool take(struct match *m, int ni) {
    if (ni < 0 || m->n >= (int)(sizeof(m->nodes) / sizeof(m->nodes[0]))) return false;
    for (int i = 0; i < m->n; i++)
        if (m->nodes[i] == ni) return false; /* the same node twice: not a tree */
    m->nodes[m->n++] = ni;
    return true;
}

static mixrt_status require_domain(struct mixrt_pass_state *st, bool *done) {
    if (*done) return MIXRT_STATUS_OK;
    *done = true;
    return mixrt_graph_require_opset(st->g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION);
}

/* Turns node ni in place into the com.mixrt op with the given inputs (-1: absent) and
 * attributes, writing value out; the swallowed nodes die. */
static mixrt_status rewrite(struct mixrt_pass_state *st, int ni, const char *op, int n_in, const int *ins,
                            const struct mixrt_attr *attrs, int n_attrs, int out, const struct match *m) {
    struct mixrt_graph *g = st->g;
    int *in = mixrt_arena_calloc(g->arena, (size_t)n_in, sizeof(int));
    int *outs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    struct mixrt_attr *at = n_attrs ? mixrt_arena_calloc(g->arena, (size_t)n_attrs, sizeof(*at)) : NULL;
    if (!in || !outs || (n_attrs && !at)) return MIXRT_STATUS_OUT_OF_MEMORY;
    memcpy(in, ins, (size_t)n_in * sizeof(int));
    if (n_attrs) memcpy(at, attrs, (size_t)n_attrs * sizeof(*at));
    struct mixrt_node *n = &g->nodes[ni];
    /* The old outputs lose their producer (a swallowed value has no reader left). */
    for (int j = 0; j < n->n_outputs; j++)
        if (n->outputs[j] >= 0 && g->values[n->outputs[j]].producer == ni) g->values[n->outputs[j]].producer = -1;
    for (int i = 0; i < m->n; i++) {
        const struct mixrt_node *d = &g->nodes[m->nodes[i]];
        for (int j = 0; j < d->n_outputs; j++)
            if (d->outputs[j] >= 0 && g->values[d->outputs[j]].producer == m->nodes[i]) g->values[d->outputs[j]].producer = -1;
        st->dead[m->nodes[i]] = true;
    }
    n->op_type = op;
    n->domain = MIXRT_DOMAIN;
    n->opset = MIXRT_DOMAIN_VERSION;
    n->n_inputs = n_in;
    n->inputs = in;
    n->n_outputs = 1;
    outs[0] = out;
    n->outputs = outs;
    n->n_attrs = n_attrs;
    n->attrs = at;
    g->values[out].producer = ni;
    return MIXRT_STATUS_OK;
}

static struct mixrt_attr attr_string(const char *name, const char *s) {
    struct mixrt_attr a;
    memset(&a, 0, sizeof(a));
    a.name = name;
    a.type = MIXRT_ATTR_STRING;
    a.s = s;
    a.s_len = strlen(s);
    return a;
}
static struct mixrt_attr attr_float(const char *name, float f) {
    struct mixrt_attr a;
    memset(&a, 0, sizeof(a));
    a.name = name;
    a.type = MIXRT_ATTR_FLOAT;
    a.f = f;
    return a;
}
static struct mixrt_attr attr_int(const char *name, int64_t i) {
    struct mixrt_attr a;
    memset(&a, 0, sizeof(a));
    a.name = name;
    a.type = MIXRT_ATTR_INT;
    a.i = i;
    return a;
}

/* ---- GELU ------------------------------------------------------------------------------------
 * Root: a Mul whose product tree (Muls with one reader, at most three leaves) is
 * x * 0.5 * (1 + E), where E = erf(x/sqrt2) (Div by sqrt2 or Mul by 1/sqrt2) or
 * E = tanh(sqrt(2/pi) * (x + 0.044715 * x^3)) (x^3 as Pow(x, 3) or x*x*x). */

static void mul_leaves(const struct mixrt_pass_state *st, int vi, int depth, int *leaves, int *nl, struct match *m,
                       bool *ok) {
    int p = depth > 0 ? sole_producer(st, vi, "Mul") : -1;
    if (p >= 0 && depth < 3 && st->g->nodes[p].n_inputs == 2) {
        *ok = *ok && take(m, p);
        mul_leaves(st, st->g->nodes[p].inputs[0], depth + 1, leaves, nl, m, ok);
        mul_leaves(st, st->g->nodes[p].inputs[1], depth + 1, leaves, nl, m, ok);
        return;
    }
    if (*nl >= 3) {
        *ok = false;
        return;
    }
    leaves[(*nl)++] = vi;
}

/* v == x*x*x (Pow(x, 3), or Muls of x with one reader each). */
static bool is_cube(const struct mixrt_pass_state *st, int v, int x, struct match *m) {
    const struct mixrt_graph *g = st->g;
    int p = sole_producer(st, v, "Pow");
    if (p >= 0) return g->nodes[p].n_inputs == 2 && g->nodes[p].inputs[0] == x && const_near(g, g->nodes[p].inputs[1], 3.0) && take(m, p);
    p = sole_producer(st, v, "Mul");
    if (p < 0 || g->nodes[p].n_inputs != 2 || !take(m, p)) return false;
    int a = g->nodes[p].inputs[0], b = g->nodes[p].inputs[1];
    int other = a == x ? b : b == x ? a : -1;
    if (other < 0) return false;
    int q = sole_producer(st, other, "Mul");
    return q >= 0 && g->nodes[q].n_inputs == 2 && g->nodes[q].inputs[0] == x && g->nodes[q].inputs[1] == x && take(m, q);
}

/* e is erf(x/sqrt2) (approx "none") or the tanh form (approx "tanh"); x is found here. */
static bool gelu_inner(const struct mixrt_pass_state *st, int e, int *x, bool *tanh_form, struct match *m) {
    const struct mixrt_graph *g = st->g;
    int p = sole_producer(st, e, "Erf");
    if (p >= 0) {
        if (!take(m, p)) return false;
        *tanh_form = false;
        int arg = g->nodes[p].inputs[0];
        int d = sole_producer(st, arg, "Div");
        if (d >= 0) {
            if (!const_near(g, g->nodes[d].inputs[1], SQRT2) || !take(m, d)) return false;
            *x = g->nodes[d].inputs[0];
            return true;
        }
        d = sole_producer(st, arg, "Mul");
        int side = d >= 0 ? binary_const_side(g, &g->nodes[d], (1.0 / SQRT2)) : -1;
        if (side < 0 || !take(m, d)) return false;
        *x = g->nodes[d].inputs[1 - side];
        return true;
    }
    p = sole_producer(st, e, "Tanh");
    if (p < 0 || !take(m, p)) return false;
    *tanh_form = true;
    int s = sole_producer(st, g->nodes[p].inputs[0], "Mul");
    int side = s >= 0 ? binary_const_side(g, &g->nodes[s], SQRT_2_OVER_PI) : -1;
    if (side < 0 || !take(m, s)) return false;
    int a = sole_producer(st, g->nodes[s].inputs[1 - side], "Add");
    if (a < 0 || g->nodes[a].n_inputs != 2 || !take(m, a)) return false;
    /* x + 0.044715 * x^3, either order. */
    for (int k = 0; k < 2; k++) {
        int xv = g->nodes[a].inputs[k], t = g->nodes[a].inputs[1 - k];
        int c = sole_producer(st, t, "Mul");
        int cs = c >= 0 ? binary_const_side(g, &g->nodes[c], 0.044715) : -1;
        if (cs < 0) continue;
        struct match save = *m;
        if (take(m, c) && is_cube(st, g->nodes[c].inputs[1 - cs], xv, m)) {
            *x = xv;
            return true;
        }
        *m = save;
    }
    return false;
}

static mixrt_status match_gelu(struct mixrt_pass_state *st, int root, bool *domain_done, bool *done) {
    struct mixrt_graph *g = st->g;
    const struct mixrt_node *r = &g->nodes[root];
    *done = false;
    if (!is_op(st, root, "Mul") || r->n_inputs != 2 || r->n_outputs != 1) return MIXRT_STATUS_OK;
    struct match m = {.n = 0};
    int leaves[3], nl = 0;
    bool ok = true;
    mul_leaves(st, r->inputs[0], 1, leaves, &nl, &m, &ok);
    mul_leaves(st, r->inputs[1], 1, leaves, &nl, &m, &ok);
    if (!ok || nl != 3) return MIXRT_STATUS_OK;
    int half = -1;
    for (int i = 0; i < 3 && half < 0; i++)
        if (const_near(g, leaves[i], 0.5)) half = i;
    if (half < 0) return MIXRT_STATUS_OK;
    /* One of the other two leaves is 1 + E and the other is x. */
    for (int k = 0; k < 3; k++) {
        if (k == half) continue;
        int xv = leaves[3 - half - k];
        int a = sole_producer(st, leaves[k], "Add");
        int side = a >= 0 ? binary_const_side(g, &g->nodes[a], 1.0) : -1;
        if (side < 0) continue;
        struct match mm = m;
        int x = -1;
        bool tanh_form = false;
        if (!take(&mm, a) || !gelu_inner(st, g->nodes[a].inputs[1 - side], &x, &tanh_form, &mm) || x != xv) continue;
        const struct mixrt_value *xval = &g->values[x];
        if (xval->dtype != MIXRT_DTYPE_UNDEFINED && !mixrt_dtype_is_float(xval->dtype)) return MIXRT_STATUS_OK;
        mixrt_status status = require_domain(st, domain_done);
        if (status != MIXRT_STATUS_OK) return status;
        struct mixrt_attr at = attr_string("approximate", tanh_form ? "tanh" : "none");
        status = rewrite(st, root, "Gelu", 1, &x, &at, 1, r->outputs[0], &mm);
        *done = status == MIXRT_STATUS_OK;
        return status;
    }
    return MIXRT_STATUS_OK;
}

/* ---- LayerNorm ---------------------------------------------------------------------------------
 * Root: Add(Mul(Div(d, Sqrt(Add(ReduceMean(Pow(d, 2)), eps))), gamma), beta), d = Sub(x,
 * ReduceMean(x)), both means over the last axis with keepdims; gamma and beta constants. */

/* A ReduceMean over exactly the last axis of its input with keepdims=1. */
static bool mean_last_axis(const struct mixrt_graph *g, int ni) {
    const struct mixrt_node *n = &g->nodes[ni];
    if (mixrt_node_attr_int(n, "keepdims", 1) != 1 || n->n_inputs < 1) return false;
    int r = g->values[n->inputs[0]].rank;
    const int64_t *axes = NULL;
    size_t na = 0;
    int64_t a0 = 0;
    if (n->opset >= 18) {
        if (n->n_inputs < 2 || !mixrt_graph_is_fixed_const(g, n->inputs[1])) return false;
        const struct mixrt_tensor *t = g->values[n->inputs[1]].init;
        if (t->dtype != MIXRT_DTYPE_I64 || mixrt_tensor_numel(t) != 1) return false;
        a0 = ((const int64_t *)t->data)[0];
        na = 1;
    } else {
        axes = mixrt_node_attr_ints(n, "axes", &na);
        if (na == 1) a0 = axes[0];
    }
    return na == 1 && (a0 == -1 || (r > 0 && a0 == r - 1));
}

static bool ln_param(const struct mixrt_graph *g, int vi, int x) {
    if (!mixrt_graph_is_fixed_const(g, vi)) return false;
    const struct mixrt_tensor *t = g->values[vi].init;
    const struct mixrt_value *xv = &g->values[x];
    if (!mixrt_dtype_is_float(t->dtype) || t->rank != 1) return false;
    return xv->rank < 1 || xv->dims[xv->rank - 1].value < 0 || xv->dims[xv->rank - 1].value == t->dims[0];
}

/* s = Sqrt(Add(ReduceMean(Pow(v, 2) or Mul(v, v)), eps)), the mean over the last axis with
 * keepdims and eps a constant in [0, 0.1]: the denominator LayerNorm and RMSNorm share, its nodes
 * taken into m. *sq_mul: the square was Mul(v, v) (v has one reader more). */
static bool norm_den(struct mixrt_pass_state *st, int s, int v, struct match *m, double *eps, bool *sq_mul) {
    const struct mixrt_graph *g = st->g;
    int sq = s >= 0 ? sole_producer(st, s, "Sqrt") : -1;
    int ae = sq >= 0 ? sole_producer(st, g->nodes[sq].inputs[0], "Add") : -1;
    if (ae < 0 || !take(m, sq) || !take(m, ae) || g->nodes[ae].n_inputs != 2) return false;
    int es = -1;
    if (scalar_const(g, g->nodes[ae].inputs[1], eps)) es = 1;
    else if (scalar_const(g, g->nodes[ae].inputs[0], eps)) es = 0;
    if (es < 0 || !(*eps >= 0) || *eps > 1e-1) return false;
    int var = sole_producer(st, g->nodes[ae].inputs[1 - es], "ReduceMean");
    if (var < 0 || !mean_last_axis(g, var) || !take(m, var)) return false;
    int sqv = g->nodes[var].inputs[0];
    int pw = sole_producer(st, sqv, "Pow");
    int sqr = pw < 0 ? sole_producer(st, sqv, "Mul") : -1;
    *sq_mul = pw < 0;
    if (pw >= 0)
        return g->nodes[pw].n_inputs == 2 && g->nodes[pw].inputs[0] == v && const_near(g, g->nodes[pw].inputs[1], 2.0) &&
               take(m, pw);
    return sqr >= 0 && g->nodes[sqr].n_inputs == 2 && g->nodes[sqr].inputs[0] == v && g->nodes[sqr].inputs[1] == v &&
           take(m, sqr);
}

static mixrt_status match_layernorm(struct mixrt_pass_state *st, int root, bool *domain_done, bool *done) {
    struct mixrt_graph *g = st->g;
    *done = false;
    if (!is_op(st, root, "Add") || g->nodes[root].n_inputs != 2 || g->nodes[root].n_outputs != 1) return MIXRT_STATUS_OK;
    struct match m = {.n = 0};
    for (int kb = 0; kb < 2; kb++) {
        m.n = 0;
        const struct mixrt_node *r = &g->nodes[root];
        int beta = r->inputs[kb];
        int mul = sole_producer(st, r->inputs[1 - kb], "Mul");
        if (mul < 0 || !take(&m, mul) || g->nodes[mul].n_inputs != 2) continue;
        for (int kg = 0; kg < 2; kg++) {
            struct match m2 = m;
            int gamma = g->nodes[mul].inputs[kg];
            int div = sole_producer(st, g->nodes[mul].inputs[1 - kg], "Div");
            if (div < 0 || !take(&m2, div) || g->nodes[div].n_inputs != 2) continue;
            int d = g->nodes[div].inputs[0];
            double eps = 0;
            bool sq_mul = false;
            if (!norm_den(st, g->nodes[div].inputs[1], d, &m2, &eps, &sq_mul)) continue;
            /* d is read by the square and the Div only: 2 uses (3 when squared as Mul(d, d)). */
            int sub = g->values[d].producer;
            if (!is_op(st, sub, "Sub") || g->nodes[sub].n_inputs != 2 ||
                mixrt_pass_count_uses(st, d) != (sq_mul ? 3 : 2) || !take(&m2, sub))
                continue;
            int x = g->nodes[sub].inputs[0];
            int mean = sole_producer(st, g->nodes[sub].inputs[1], "ReduceMean");
            if (mean < 0 || g->nodes[mean].inputs[0] != x || !mean_last_axis(g, mean) || !take(&m2, mean)) continue;
            if (!ln_param(g, gamma, x) || !ln_param(g, beta, x)) continue;
            mixrt_status status = require_domain(st, domain_done);
            if (status != MIXRT_STATUS_OK) return status;
            struct mixrt_attr at[2] = {attr_int("axis", -1), attr_float("epsilon", (float)eps)};
            int ins[3] = {x, gamma, beta};
            status = rewrite(st, root, "LayerNormalization", 3, ins, at, 2, g->nodes[root].outputs[0], &m2);
            *done = status == MIXRT_STATUS_OK;
            return status;
        }
    }
    return MIXRT_STATUS_OK;
}

/* ---- RMSNorm ------------------------------------------------------------------------------------
 * Root: Mul(gamma, t) with t = Mul(x, Reciprocal(S)), Mul(x, Div(1, S)) or Div(x, S), S =
 * Sqrt(Add(ReduceMean(Pow(x, 2) or Mul(x, x)), eps)), the mean over the last axis with keepdims,
 * gamma a constant [C] on either side: Llama / Mistral / Qwen2 / T5's norm, as both exporters
 * write it -> com.mixrt RMSNormalization(x, gamma). CPU engines only (MIXRT_PASS_RMSNORM). */

/* S of t = x * (1 / S) or x / S, its nodes into m; -1 when t is neither. */
static int rms_inv(struct mixrt_pass_state *st, int t, int *x, struct match *m) {
    const struct mixrt_graph *g = st->g;
    int dv = sole_producer(st, t, "Div");
    if (dv >= 0 && g->nodes[dv].n_inputs == 2) {
        *x = g->nodes[dv].inputs[0];
        return take(m, dv) ? g->nodes[dv].inputs[1] : -1;
    }
    int mx = sole_producer(st, t, "Mul");
    if (mx < 0 || g->nodes[mx].n_inputs != 2) return -1;
    for (int kx = 0; kx < 2; kx++) {
        int rv = g->nodes[mx].inputs[1 - kx], s = -1;
        int rc = sole_producer(st, rv, "Reciprocal");
        int d1 = rc < 0 ? sole_producer(st, rv, "Div") : -1;
        struct match m2 = *m;
        if (rc >= 0 && take(&m2, rc)) s = g->nodes[rc].inputs[0];
        else if (d1 >= 0 && g->nodes[d1].n_inputs == 2 && const_near(g, g->nodes[d1].inputs[0], 1.0) && take(&m2, d1))
            s = g->nodes[d1].inputs[1];
        if (s >= 0 && take(&m2, mx)) {
            *x = g->nodes[mx].inputs[kx];
            *m = m2;
            return s;
        }
    }
    return -1;
}

static mixrt_status match_rmsnorm(struct mixrt_pass_state *st, int root, bool *domain_done, bool *done) {
    struct mixrt_graph *g = st->g;
    *done = false;
    if (!(st->flags & MIXRT_PASS_RMSNORM) || !is_op(st, root, "Mul") || g->nodes[root].n_inputs != 2 ||
        g->nodes[root].n_outputs != 1)
        return MIXRT_STATUS_OK;
    for (int kg = 0; kg < 2; kg++) {
        struct match m = {.n = 0};
        int gamma = g->nodes[root].inputs[kg], x = -1;
        int s = rms_inv(st, g->nodes[root].inputs[1 - kg], &x, &m);
        double eps = 0;
        bool sq_mul = false;
        if (s < 0 || !norm_den(st, s, x, &m, &eps, &sq_mul)) continue;
        if (!mixrt_dtype_is_float(g->values[x].dtype) || !ln_param(g, gamma, x)) continue;
        mixrt_status status = require_domain(st, domain_done);
        if (status != MIXRT_STATUS_OK) return status;
        struct mixrt_attr at[2] = {attr_int("axis", -1), attr_float("epsilon", (float)eps)};
        int ins[2] = {x, gamma};
        status = rewrite(st, root, "RMSNormalization", 2, ins, at, 2, g->nodes[root].outputs[0], &m);
        *done = status == MIXRT_STATUS_OK;
        return status;
    }
    return MIXRT_STATUS_OK;
}

/* ---- FusedMatMul -------------------------------------------------------------------------------
 * MatMul(A, B) (or Gemm(A, B, C?) with alpha = beta = 1, transA = 0), B a constant matrix,
 * then, each optional but at least one: Add(bias [N] constant), Add(Z of exactly Y's shape),
 * an activation. FusedMatMul(A, B, bias?, Z?) computes act(A.B + bias + Z). */

static bool same_shape(const struct mixrt_value *a, const struct mixrt_value *b) {
    if (a->rank < 0 || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++) {
        const struct mixrt_dim *x = &a->dims[i], *y = &b->dims[i];
        if (x->value >= 0 ? x->value != y->value : !(x->param && y->param && !strcmp(x->param, y->param))) return false;
    }
    return true;
}

/* The activation name FusedMatMul uses for node ni, or NULL. */
static const char *activation_of(const struct mixrt_graph *g, int ni) {
    const struct mixrt_node *n = &g->nodes[ni];
    if (n->n_inputs != 1 || n->n_outputs != 1) return NULL;
    bool ours = !strcmp(n->domain, MIXRT_DOMAIN);
    if (!ours && n->domain[0]) return NULL;
    if (!strcmp(n->op_type, "Gelu") && (ours || n->opset >= 20)) {
        const char *ap = mixrt_node_attr_string(n, "approximate", "none");
        return !strcmp(ap, "tanh") ? "gelu_tanh" : !strcmp(ap, "none") ? "gelu" : NULL;
    }
    if (ours) return NULL;
    if (!strcmp(n->op_type, "Relu")) return "relu";
    if (!strcmp(n->op_type, "Sigmoid")) return "sigmoid";
    if (!strcmp(n->op_type, "Tanh")) return "tanh";
    return NULL;
}

/* A new constant value named after base (suffix) holding t. */
static int new_const(struct mixrt_graph *g, int base, const char *suffix, struct mixrt_tensor *t) {
    int vi = mixrt_graph_add_unique_value(g, g->values[base].name, suffix);
    if (vi >= 0) mixrt_pass_set_const(g, vi, t);
    return vi;
}

/* Copies of weight w ([K, N], or [N, K] when trans_b) and bias (-1: none) with output
 * column n multiplied by sc (one value, or N of them), each product rounded once to the
 * weight's dtype, in *sw and *sb. */
static mixrt_status scale_columns(struct mixrt_pass_state *st, int w, int bias, const struct mixrt_tensor *sc,
                                  int64_t trans_b, int *sw, int *sb) {
    struct mixrt_graph *g = st->g;
    mixrt_context_t ctx = g->ctx;
    const struct mixrt_tensor *W = g->values[w].init, *B = bias >= 0 ? g->values[bias].init : NULL;
    struct mixrt_tensor *tw = mixrt_arena_calloc(g->arena, 1, sizeof(*tw));
    struct mixrt_tensor *tb = B ? mixrt_arena_calloc(g->arena, 1, sizeof(*tb)) : NULL;
    if (!tw || (B && !tb)) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = mixrt_tensor_init(ctx, tw, W->dtype, W->rank, W->dims);
    if (status != MIXRT_STATUS_OK) return status;
    if (B && (status = mixrt_tensor_init(ctx, tb, B->dtype, B->rank, B->dims)) != MIXRT_STATUS_OK) {
        mixrt_tensor_release(ctx, tw);
        return status;
    }
    size_t ns = mixrt_tensor_numel(sc), rows = (size_t)W->dims[0], cols = (size_t)W->dims[1];
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            size_t i = r * cols + c, n = trans_b ? r : c;
            double f = mixrt_load_f64(sc->data, sc->dtype, ns == 1 ? 0 : n);
            mixrt_store_f64(tw->data, tw->dtype, i, mixrt_load_f64(W->data, W->dtype, i) * f);
        }
    for (size_t n = 0; B && n < (size_t)B->dims[0]; n++)
        mixrt_store_f64(tb->data, tb->dtype, n,
                        mixrt_load_f64(B->data, B->dtype, n) * mixrt_load_f64(sc->data, sc->dtype, ns == 1 ? 0 : n));
    *sw = new_const(g, w, "_scaled", tw);
    *sb = B && *sw >= 0 ? new_const(g, bias, "_scaled", tb) : -1;
    if (*sw < 0 || (B && *sb < 0)) {
        if (*sw < 0) mixrt_tensor_release(ctx, tw);
        if (B) mixrt_tensor_release(ctx, tb);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    return MIXRT_STATUS_OK;
}

/* Node nx when it is Mul(cur, constant of dtype dt, one value or [.., 1, n_cols]) of cur's
 * shape, a layer scale: the constant, else NULL. */
static const struct mixrt_tensor *layer_scale(const struct mixrt_pass_state *st, int nx, int cur, mixrt_dtype dt,
                                              int64_t n_cols) {
    const struct mixrt_graph *g = st->g;
    if (!is_op(st, nx, "Mul") || g->nodes[nx].n_inputs != 2) return NULL;
    int other = g->nodes[nx].inputs[0] == cur ? g->nodes[nx].inputs[1] : g->nodes[nx].inputs[0];
    const struct mixrt_tensor *sc = other != cur && mixrt_graph_is_fixed_const(g, other) ? g->values[other].init : NULL;
    if (!sc || sc->dtype != dt || sc->rank > g->values[cur].rank) return NULL;
    for (int i = 0; i + 1 < sc->rank; i++)
        if (sc->dims[i] != 1) return NULL;
    if (mixrt_tensor_numel(sc) != 1 && (sc->rank < 1 || sc->dims[sc->rank - 1] != n_cols)) return NULL;
    return same_shape(&g->values[g->nodes[nx].outputs[0]], &g->values[cur]) ? sc : NULL;
}

/* Node nx when it is Add(cur, Z) with Z of cur's shape and dtype dt (no broadcast): Z, else -1. */
static int residual_of(const struct mixrt_pass_state *st, int nx, int cur, mixrt_dtype dt) {
    const struct mixrt_graph *g = st->g;
    if (!is_op(st, nx, "Add") || g->nodes[nx].n_inputs != 2) return -1;
    int other = g->nodes[nx].inputs[0] == cur ? g->nodes[nx].inputs[1] : g->nodes[nx].inputs[0];
    const struct mixrt_value *ov = other >= 0 ? &g->values[other] : NULL;
    if (!ov || other == cur || ov->dtype != dt || !same_shape(ov, &g->values[cur]) ||
        !same_shape(&g->values[g->nodes[nx].outputs[0]], &g->values[cur]))
        return -1;
    return other;
}

/* bare: a MatMul of a constant B with nothing to fuse becomes FusedMatMul too (the deferred
 * pass below; a Gemm does so always). */
static mixrt_status matmul_rewrite(struct mixrt_pass_state *st, int root, bool *domain_done, bool *done, bool bare) {
    struct mixrt_graph *g = st->g;
    *done = false;
    bool gemm = is_op(st, root, "Gemm");
    if (!gemm && !is_op(st, root, "MatMul")) return MIXRT_STATUS_OK;
    const struct mixrt_node *r = &g->nodes[root];
    if (r->n_inputs < 2 || r->n_outputs != 1 || r->inputs[0] < 0) return MIXRT_STATUS_OK;
    int a = r->inputs[0], b = r->inputs[1];
    /* Both non-constant: an attention MatMul (fused elsewhere). Both constant: folding's. */
    if (!mixrt_graph_is_fixed_const(g, b) || mixrt_graph_is_fixed_const(g, a)) return MIXRT_STATUS_OK;
    const struct mixrt_tensor *w = g->values[b].init;
    mixrt_dtype dt = w->dtype;
    if (!mixrt_dtype_is_float(dt) || w->rank != 2 || (g->values[a].dtype != MIXRT_DTYPE_UNDEFINED && g->values[a].dtype != dt))
        return MIXRT_STATUS_OK;
    int64_t trans_b = 0, n_cols;
    int bias = -1, z = -1;
    const char *act = "none";
    struct match m = {.n = 0};
    if (gemm) {
        trans_b = mixrt_node_attr_int(r, "transB", 0) != 0;
        if (mixrt_node_attr_int(r, "transA", 0) != 0 || mixrt_node_attr_float(r, "alpha", 1.0f) != 1.0f ||
            mixrt_node_attr_float(r, "beta", 1.0f) != 1.0f || g->values[a].rank != 2)
            return MIXRT_STATUS_OK;
    } else if (g->values[a].rank < 1) {
        return MIXRT_STATUS_OK;
    }
    n_cols = trans_b ? w->dims[0] : w->dims[1];
    if (gemm && r->n_inputs > 2 && r->inputs[2] >= 0) {
        int c = r->inputs[2];
        const struct mixrt_tensor *ct = mixrt_graph_is_fixed_const(g, c) ? g->values[c].init : NULL;
        if (!ct || ct->dtype != dt || ct->rank != 1 || ct->dims[0] != n_cols) return MIXRT_STATUS_OK;
        bias = c;
    }
    int cur = r->outputs[0];
    /* Bias: Add(cur, constant [N]). */
    int nx = mixrt_pass_sole_reader(st, cur);
    if (bias < 0 && is_op(st, nx, "Add") && g->nodes[nx].n_inputs == 2) {
        int other = g->nodes[nx].inputs[0] == cur ? g->nodes[nx].inputs[1] : g->nodes[nx].inputs[0];
        const struct mixrt_tensor *bt = mixrt_graph_is_fixed_const(g, other) ? g->values[other].init : NULL;
        if (other != cur && bt && bt->dtype == dt && bt->rank == 1 && bt->dims[0] == n_cols) {
            bias = other;
            take(&m, nx);
            cur = g->nodes[nx].outputs[0];
            nx = mixrt_pass_sole_reader(st, cur);
        }
    }
    /* Layer scale (ConvNeXt, CaiT): Mul(cur, constant [N] or scalar) folds into the weight's
     * columns and the bias: copies scaled once here, the originals left to other readers. */
    int scaled_w = -1, scaled_b = -1;
    const struct mixrt_tensor *sc = layer_scale(st, nx, cur, dt, n_cols);
    if (sc) {
        mixrt_status status = scale_columns(st, b, bias, sc, trans_b, &scaled_w, &scaled_b);
        if (status != MIXRT_STATUS_OK) return status;
        take(&m, nx);
        cur = g->nodes[nx].outputs[0];
        nx = mixrt_pass_sole_reader(st, cur);
    }
    /* Residual: Add(cur, Z) with Z exactly cur's shape (no broadcast). */
    if ((z = residual_of(st, nx, cur, dt)) >= 0) {
        take(&m, nx);
        cur = g->nodes[nx].outputs[0];
        nx = mixrt_pass_sole_reader(st, cur);
    }
    if (nx >= 0 && !mixrt_pass_is_dead(st, nx) && activation_of(g, nx) && g->nodes[nx].outputs[0] >= 0) {
        act = activation_of(g, nx);
        take(&m, nx);
        cur = g->nodes[nx].outputs[0];
    }
    /* Nothing to fuse: a Gemm of a constant B goes on as FusedMatMul all the same, for its
     * kernels (dnnl_gemm read MobileNetV3 dynamo exports' bias-less batch-1 classifier at ~11
     * GB/s); a MatMul stays until nothing else fuses (other patterns look for it: a Gemm
     * between Reshapes becomes one, then takes its bias), then mixrt_pass_bare_matmul. */
    if (m.n == 0 && bias < 0 && !gemm && !bare) return MIXRT_STATUS_OK;
    mixrt_status status = require_domain(st, domain_done);
    if (status != MIXRT_STATUS_OK) return status;
    if (scaled_w >= 0) b = scaled_w, bias = bias >= 0 ? scaled_b : -1;
    int ins[4] = {a, b, bias, z};
    int n_in = z >= 0 ? 4 : bias >= 0 ? 3 : 2;
    struct mixrt_attr at[2] = {attr_string("activation", act), attr_int("transB", trans_b)};
    status = rewrite(st, root, "FusedMatMul", n_in, ins, at, trans_b ? 2 : 1, cur, &m);
    *done = status == MIXRT_STATUS_OK;
    return status;
}

/* Reshape(Gemm(Reshape(x, [M, K]), B, C?), [d.., N]) with x [d.., K] (M = prod d), B a constant
 * [K, N] (or [N, K] with transB: transposed once here), C absent or a constant [N]: torch's
 * dynamo export of a Conv1D/addmm
 * (GPT-2) flattens the tokens around a 2-D Gemm. Rewritten as MatMul(x, B) [+ Add(C)] on the
 * tokens' own shape, so that the bias, residual and activation after it fuse as for any
 * MatMul (match_matmul, next phase). */
static mixrt_status match_gemm_reshape(struct mixrt_pass_state *st, int root, bool *domain_done, bool *done) {
    (void)domain_done;
    struct mixrt_graph *g = st->g;
    *done = false;
    if (!is_op(st, root, "Gemm")) return MIXRT_STATUS_OK;
    struct mixrt_node *r = &g->nodes[root];
    if (r->n_inputs < 2 || r->n_outputs != 1 || mixrt_node_attr_int(r, "transA", 0) != 0 ||
        mixrt_node_attr_float(r, "alpha", 1.0f) != 1.0f || mixrt_node_attr_float(r, "beta", 1.0f) != 1.0f)
        return MIXRT_STATUS_OK;
    bool trans_b = mixrt_node_attr_int(r, "transB", 0) != 0;
    int a = r->inputs[0], b = r->inputs[1], c = r->n_inputs > 2 ? r->inputs[2] : -1, y2 = r->outputs[0];
    if (!mixrt_graph_is_fixed_const(g, b) || g->values[b].init->rank != 2) return MIXRT_STATUS_OK;
    const struct mixrt_tensor *w = g->values[b].init;
    int64_t K = w->dims[trans_b], N = w->dims[!trans_b];
    if (c >= 0) {
        const struct mixrt_tensor *ct = mixrt_graph_is_fixed_const(g, c) ? g->values[c].init : NULL;
        if (!ct || ct->dtype != w->dtype || ct->rank != 1 || ct->dims[0] != N) return MIXRT_STATUS_OK;
    }
    int ra = sole_producer(st, a, "Reshape"), rb = mixrt_pass_sole_reader(st, y2);
    if (ra < 0 || !is_op(st, rb, "Reshape") || g->nodes[rb].inputs[0] != y2) return MIXRT_STATUS_OK;
    int x = g->nodes[ra].inputs[0], y = g->nodes[rb].outputs[0];
    const struct mixrt_value *xv = &g->values[x], *yv = &g->values[y];
    if (yv->rank < 3 || yv->rank > MIXRT_MAX_RANK || xv->dtype != w->dtype || yv->dims[yv->rank - 1].value != N ||
        g->values[a].rank != 2 || g->values[a].dims[1].value != K)
        return MIXRT_STATUS_OK;
    bool same = xv->rank == yv->rank && xv->dims[xv->rank - 1].value == K;
    int64_t m = 1;
    for (int i = 0; i + 1 < yv->rank; i++) {
        if (yv->dims[i].value < 0) return MIXRT_STATUS_OK;
        m *= yv->dims[i].value;
        same = same && xv->dims[i].value == yv->dims[i].value;
    }
    if (m != g->values[a].dims[0].value) return MIXRT_STATUS_OK;
    bool keep_ra = !same; /* x is not [d.., K] (GPT-2's attention heads [B, S, H, D]): the first
                           * Reshape stays, retargeted to [d.., K] */
    if (keep_ra) {
        struct mixrt_tensor *st4 = mixrt_arena_calloc(g->arena, 1, sizeof(*st4));
        int64_t rk = yv->rank;
        if (!st4 || mixrt_tensor_init(g->ctx, st4, MIXRT_DTYPE_I64, 1, &rk) != MIXRT_STATUS_OK)
            return MIXRT_STATUS_OUT_OF_MEMORY;
        for (int i = 0; i < yv->rank; i++) ((int64_t *)st4->data)[i] = i + 1 < yv->rank ? yv->dims[i].value : K;
        int sv = new_const(g, a, "/shape", st4);
        int av = sv >= 0 ? mixrt_graph_add_unique_value(g, g->values[a].name, "/tokens") : -1;
        int *rin = av >= 0 ? mixrt_arena_calloc(g->arena, 2, sizeof(int)) : NULL;
        int *rout = rin ? mixrt_arena_calloc(g->arena, 1, sizeof(int)) : NULL;
        if (!rout) return MIXRT_STATUS_OUT_OF_MEMORY;
        yv = &g->values[y];
        struct mixrt_value *avv = &g->values[av];
        avv->dtype = g->values[a].dtype, avv->rank = yv->rank;
        for (int i = 0; i < yv->rank; i++) avv->dims[i] = yv->dims[i];
        avv->dims[yv->rank - 1].value = K;
        struct mixrt_node *rn = &g->nodes[ra];
        rin[0] = rn->inputs[0], rin[1] = sv, rout[0] = av;
        g->values[a].producer = -1;
        rn->inputs = rin, rn->n_inputs = 2, rn->outputs = rout, rn->n_outputs = 1;
        rn->n_attrs = 0, rn->attrs = NULL; /* allowzero 0: the target has no zeros */
        g->values[av].producer = ra;
        x = av;
    }
    if (trans_b) { /* nn.Linear's [N, K] weight (torchvision's attention out_proj): a [K, N] copy */
        struct mixrt_tensor *wt = mixrt_arena_calloc(g->arena, 1, sizeof(*wt));
        int64_t wd[2] = {K, N};
        if (!wt || mixrt_tensor_init(g->ctx, wt, w->dtype, 2, wd) != MIXRT_STATUS_OK) return MIXRT_STATUS_OUT_OF_MEMORY;
        size_t es = mixrt_dtype_size(w->dtype);
        for (int64_t k = 0; k < K; k++)
            for (int64_t nn = 0; nn < N; nn++)
                memcpy((char *)wt->data + (size_t)(k * N + nn) * es, (const char *)w->data + (size_t)(nn * K + k) * es, es);
        int bt = new_const(g, b, "/T", wt);
        if (bt < 0) {
            mixrt_tensor_release(g->ctx, wt);
            return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        b = bt;
    }
    int t = y;
    if (c >= 0) { /* MatMul into t, then Add(t, C) into y */
        if ((t = mixrt_graph_add_unique_value(g, g->values[y].name, "/matmul")) < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        struct mixrt_value *tv = &g->values[t];
        yv = &g->values[y];
        tv->dtype = yv->dtype, tv->rank = yv->rank;
        for (int i = 0; i < yv->rank; i++) tv->dims[i] = yv->dims[i];
        size_t ln = strlen(r->name);
        char *name = mixrt_arena_alloc(g->arena, ln + 6, 1);
        int ni = name ? mixrt_graph_add_node(g, name, "Add", "") : -1;
        int *io = ni >= 0 ? mixrt_arena_calloc(g->arena, 3, sizeof(int)) : NULL;
        if (!io) return MIXRT_STATUS_OUT_OF_MEMORY;
        memcpy(name, r->name, ln);
        memcpy(name + ln, "/bias", 6);
        r = &g->nodes[root]; /* the node array may have moved */
        struct mixrt_node *an = &g->nodes[ni];
        int64_t opset = mixrt_graph_opset(g, "");
        an->opset = opset > 0 ? opset : 13;
        io[0] = t, io[1] = c, io[2] = y;
        an->inputs = io, an->n_inputs = 2, an->outputs = io + 2, an->n_outputs = 1;
        g->values[y].producer = ni;
    }
    int *in = mixrt_arena_calloc(g->arena, 2, sizeof(int)), *out = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    if (!in || !out) return MIXRT_STATUS_OUT_OF_MEMORY;
    in[0] = x, in[1] = b, out[0] = t;
    if (!keep_ra) g->values[a].producer = -1, st->dead[ra] = true;
    g->values[y2].producer = -1;
    st->dead[rb] = true;
    r->op_type = "MatMul";
    r->inputs = in, r->n_inputs = 2, r->outputs = out, r->n_outputs = 1;
    r->n_attrs = 0, r->attrs = NULL;
    if (r->opset < 13) r->opset = 13;
    g->values[t].producer = root;
    *done = true;
    return MIXRT_STATUS_OK;
}

static mixrt_status match_matmul(struct mixrt_pass_state *st, int root, bool *domain_done, bool *done) {
    return matmul_rewrite(st, root, domain_done, done, false);
}

/* A FusedMatMul without residual or activation whose sole reader is a constant layer scale
 * (folded as in match_matmul) and/or Add(Y, Z) with Z of Y's shape: the Add becomes its
 * residual. This happens when the Add only met the product after
 * another pass (the layout pass drops a ConvNeXt block's Transpose between them). */
static mixrt_status match_residual(struct mixrt_pass_state *st, int root, bool *domain_done, bool *done) {
    (void)domain_done;
    struct mixrt_graph *g = st->g;
    *done = false;
    if (root < 0 || mixrt_pass_is_dead(st, root)) return MIXRT_STATUS_OK;
    struct mixrt_node *r = &g->nodes[root];
    if (strcmp(r->domain, MIXRT_DOMAIN) || strcmp(r->op_type, "FusedMatMul") || r->n_outputs != 1 ||
        r->outputs[0] < 0 || r->n_inputs < 2 || (r->n_inputs > 3 && r->inputs[3] >= 0) ||
        strcmp(mixrt_node_attr_string(r, "activation", "none"), "none"))
        return MIXRT_STATUS_OK;
    int cur = r->outputs[0], nx = mixrt_pass_sole_reader(st, cur);
    int w = r->inputs[1], bias = r->n_inputs > 2 ? r->inputs[2] : -1;
    const struct mixrt_tensor *wt = mixrt_graph_is_fixed_const(g, w) ? g->values[w].init : NULL;
    int64_t trans_b = mixrt_node_attr_int(r, "transB", 0) != 0;
    int *ins = mixrt_arena_calloc(g->arena, 4, sizeof(int));
    if (!ins) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (int j = 0; j < 4; j++) ins[j] = j < r->n_inputs ? r->inputs[j] : -1;
    /* A layer scale first (as in match_matmul), then the residual. */
    const struct mixrt_tensor *sc =
        wt && wt->rank == 2 && (bias < 0 || mixrt_graph_is_fixed_const(g, bias))
            ? layer_scale(st, nx, cur, wt->dtype, trans_b ? wt->dims[0] : wt->dims[1])
            : NULL;
    if (sc) {
        int sw, sb;
        mixrt_status status = scale_columns(st, w, bias, sc, trans_b, &sw, &sb);
        if (status != MIXRT_STATUS_OK) return status;
        ins[1] = sw, ins[2] = bias >= 0 ? sb : -1;
        int y = g->nodes[nx].outputs[0];
        g->values[cur].producer = -1;
        r->inputs = ins, r->n_inputs = bias >= 0 ? 3 : 2;
        r->outputs[0] = y;
        g->values[y].producer = root;
        st->dead[nx] = true;
        *done = true;
        cur = y, nx = mixrt_pass_sole_reader(st, cur);
    }
    int other = residual_of(st, nx, cur, g->values[cur].dtype);
    if (other < 0) return MIXRT_STATUS_OK;
    ins[3] = other;
    int y = g->nodes[nx].outputs[0];
    r->inputs = ins, r->n_inputs = 4;
    g->values[cur].producer = -1;
    r->outputs[0] = y;
    g->values[y].producer = root;
    st->dead[nx] = true;
    *done = true;
    return MIXRT_STATUS_OK;
}

/* A measurement knob: MIXRT_FUSE_TRANSFORMER=off builds what the graph gave without these
 * fusions (the bare products' pass below included), to compare engines of one binary. */
static bool fusions_off(void) {
    const char *env = getenv("MIXRT_FUSE_TRANSFORMER");
    return env && !strcmp(env, "off");
}

mixrt_status mixrt_pass_fuse_transformer(struct mixrt_pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    if (fusions_off()) return MIXRT_STATUS_OK;
    bool domain_done = false;
    typedef mixrt_status (*matcher)(struct mixrt_pass_state *, int, bool *, bool *);
    /* GELU and LayerNorm first: the MatMul fusion takes a Gelu as its activation. */
    static const matcher phases[] = {match_gelu,          match_layernorm, match_rmsnorm,
                                     match_gemm_reshape, match_matmul,    match_residual};
    for (size_t p = 0; p < sizeof(phases) / sizeof(phases[0]); p++) {
        for (int s = 0; s < st->n_dead; s++) {
            int ni = g->order[s];
            if (st->dead[ni]) continue;
            int before = 0;
            for (int i = 0; i < st->n_dead; i++) before += st->dead[i];
            bool done = false;
            mixrt_status status = phases[p](st, ni, &domain_done, &done);
            if (status != MIXRT_STATUS_OK) return status;
            if (!done) continue;
            int after = 0;
            for (int i = 0; i < st->n_dead; i++) after += st->dead[i];
            /* The root is rewritten, not removed: a fusion that swallowed nothing (Gemm with
             * its own bias) still changed the graph. */
            *removed += after - before > 0 ? after - before : 1;
        }
    }
    return MIXRT_STATUS_OK;
}

/* Products of a constant B left bare once the other passes have nothing left to do become
 * FusedMatMul, for its kernels (weights packed once at build, the fmm_* kernels): dynamo
 * exports of freshly initialized models drop zero biases, and BERT's bias-less 768 x 768
 * projections ran on dnnl_matmul at 465 GFLOP/s bf16 (`bench --profile`), where its
 * FusedMatMul layers' total puts dnnl_fused_matmul's at ~630. */
mixrt_status mixrt_pass_bare_matmul(struct mixrt_pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    if (fusions_off()) return MIXRT_STATUS_OK;
    bool domain_done = false;
    for (int s = 0; s < st->n_dead; s++) {
        int ni = g->order[s];
        if (st->dead[ni] || !is_op(st, ni, "MatMul")) continue;
        bool done = false;
        mixrt_status status = matmul_rewrite(st, ni, &domain_done, &done, true);
        if (status != MIXRT_STATUS_OK) return status;
        if (done) ++*removed;
    }
    return MIXRT_STATUS_OK;
}
