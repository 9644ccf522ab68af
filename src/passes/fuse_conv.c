/* fuse_conv.c - Conv(+Add)(+activation) into com.mixrt FusedConv, per-channel affine ops and an
 * activation into the channels-last InstanceNormalization, and the layout pass keeping CNN
 * activations channels-last with Transposes only at region edges. Invariant: values read outside
 * a fused chain or a region keep their names and layout, so their readers never change. */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/stemconv_impl.h"
#include "passes/passes_impl.h"

static bool is_op(const struct mixrt_node *n, const char *op) { return !n->domain[0] && !strcmp(n->op_type, op); }

/* Appends an attribute to node ni (arena storage); NULL on out-of-memory. */

/* Sets (or adds) int attribute name of node ni. */
static mixrt_status attr_set_int(struct mixrt_graph *g, int ni, const char *name, int64_t v) {
    struct mixrt_node *nd = &g->nodes[ni];
    for (int a = 0; a < nd->n_attrs; a++)
        if (!strcmp(nd->attrs[a].name, name)) {
            nd->attrs[a].type = MIXRT_ATTR_INT;
            nd->attrs[a].i = v;
            return MIXRT_STATUS_OK;
        }
    struct mixrt_attr *a = mixrt_pass_attr_add(g, ni, name, MIXRT_ATTR_INT);
    if (!a) return MIXRT_STATUS_OUT_OF_MEMORY;
    a->i = v;
    return MIXRT_STATUS_OK;
}

/* Two values have provably the same shape (rank and every dim known, or the same symbol). */
static bool same_shape(const struct mixrt_value *a, const struct mixrt_value *b) {
    if (a->rank < 0 || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++) {
        const struct mixrt_dim *x = &a->dims[i], *y = &b->dims[i];
        if (x->value >= 0 ? x->value != y->value : !(x->param && y->param && !strcmp(x->param, y->param)))
            return false;
    }
    return true;
}

/* A fixed scalar constant's value (absent input: dflt). False when it is neither. */
static bool const_scalar(const struct mixrt_graph *g, const struct mixrt_node *n, int j, double dflt, double *out) {
    if (j >= n->n_inputs || n->inputs[j] < 0) {
        *out = dflt;
        return true;
    }
    if (!mixrt_graph_is_fixed_const(g, n->inputs[j])) return false;
    const struct mixrt_tensor *t = g->values[n->inputs[j]].init;
    if (mixrt_tensor_numel(t) != 1 || !mixrt_dtype_is_float(t->dtype)) return false;
    *out = mixrt_load_f64(t->data, t->dtype, 0);
    return true;
}

/* What a chain Conv -> [Add(Z)] -> [activation] absorbs. */
struct chain {
    int z;            /* residual value, or -1 */
    int add;          /* the Add node, or -1 */
    int act_nodes[2]; /* the activation's nodes (SiLU: Sigmoid and Mul), -1 when unused */
    enum mixrt_fconv_act act;
    float p0, p1;
    int out; /* the chain's last value */
};

/* Matches an activation reading cur (cur's only reader(s)); fills c and returns true. */
static bool match_act(const struct mixrt_pass_state *st, int cur, struct chain *c) {
    const struct mixrt_graph *g = st->g;
    int ni = mixrt_pass_sole_reader(st, cur);
    if (ni < 0) {
        /* SiLU: cur read by exactly Sigmoid(cur) and Mul(cur, that). */
        if (mixrt_pass_count_uses(st, cur) != 2) return false;
        int s = -1, m = -1;
        for (int i = 0; i < g->n_nodes; i++) {
            if (mixrt_pass_is_dead(st, i)) continue;
            const struct mixrt_node *n = &g->nodes[i];
            for (int j = 0; j < n->n_inputs; j++)
                if (n->inputs[j] == cur) {
                    if (is_op(n, "Sigmoid") && n->n_inputs == 1) s = i;
                    else if (is_op(n, "Mul") && n->n_inputs == 2) m = i;
                    break;
                }
        }
        if (s < 0 || m < 0 || g->nodes[s].n_outputs != 1) return false;
        int so = g->nodes[s].outputs[0];
        const struct mixrt_node *mn = &g->nodes[m];
        if (so < 0 || mixrt_pass_sole_reader(st, so) != m || mn->n_outputs != 1 || mn->outputs[0] < 0) return false;
        if (!((mn->inputs[0] == cur && mn->inputs[1] == so) || (mn->inputs[1] == cur && mn->inputs[0] == so)))
            return false;
        if (!same_shape(&g->values[mn->outputs[0]], &g->values[cur])) return false;
        c->act = MIXRT_FCONV_SILU, c->act_nodes[0] = s, c->act_nodes[1] = m, c->out = mn->outputs[0];
        return true;
    }
    const struct mixrt_node *n = &g->nodes[ni];
    if (n->n_outputs < 1 || n->outputs[0] < 0 || n->inputs[0] != cur) return false;
    for (int j = 1; j < n->n_outputs; j++)
        if (n->outputs[j] >= 0) return false;
    double lo, hi;
    if (is_op(n, "Relu") && n->n_inputs == 1) {
        c->act = MIXRT_FCONV_RELU;
    } else if (is_op(n, "LeakyRelu") && n->n_inputs == 1) {
        c->act = MIXRT_FCONV_LEAKY_RELU, c->p0 = mixrt_node_attr_float(n, "alpha", 0.01f);
    } else if (is_op(n, "Sigmoid") && n->n_inputs == 1) {
        c->act = MIXRT_FCONV_SIGMOID;
    } else if (is_op(n, "Tanh") && n->n_inputs == 1) {
        c->act = MIXRT_FCONV_TANH;
    } else if (is_op(n, "HardSwish") && n->n_inputs == 1) {
        c->act = MIXRT_FCONV_HARD_SWISH;
    } else if (is_op(n, "Clip") && n->opset < 11 && n->n_inputs == 1) {
        c->act = MIXRT_FCONV_CLIP;
        c->p0 = mixrt_node_attr_float(n, "min", -INFINITY), c->p1 = mixrt_node_attr_float(n, "max", INFINITY);
    } else if (is_op(n, "Clip") && n->opset >= 11 && const_scalar(g, n, 1, -INFINITY, &lo) &&
               const_scalar(g, n, 2, INFINITY, &hi)) {
        c->act = MIXRT_FCONV_CLIP, c->p0 = (float)lo, c->p1 = (float)hi;
    } else if ((st->flags & MIXRT_PASS_CONV_CPU) && n->n_inputs == 1 && !strcmp(n->op_type, "Gelu") &&
               ((is_op(n, "Gelu") && n->opset >= 20) || !strcmp(n->domain, MIXRT_DOMAIN))) {
        /* wav2vec2's feature extractor: a Gelu after each conv, as oneDNN's gelu post-op. */
        const char *ap = mixrt_node_attr_string(n, "approximate", "none");
        if (strcmp(ap, "none") && strcmp(ap, "tanh")) return false;
        c->act = strcmp(ap, "none") ? MIXRT_FCONV_GELU_TANH : MIXRT_FCONV_GELU;
    } else {
        return false;
    }
    c->act_nodes[0] = ni;
    c->out = n->outputs[0];
    return true;
}

/* Adds node ni's activation and activation_params attributes: c's activation. */
static mixrt_status attr_add_act(struct mixrt_graph *g, int ni, const struct chain *c) {
    struct mixrt_attr *an = mixrt_pass_attr_add(g, ni, "activation", MIXRT_ATTR_STRING);
    struct mixrt_attr *ap = an ? mixrt_pass_attr_add(g, ni, "activation_params", MIXRT_ATTR_FLOATS) : NULL;
    float *pv = mixrt_arena_calloc(g->arena, 2, sizeof(float));
    if (!an || !ap || !pv) return MIXRT_STATUS_OUT_OF_MEMORY;
    an = &g->nodes[ni].attrs[g->nodes[ni].n_attrs - 2]; /* the second add may have moved the first */
    an->s = mixrt_fconv_act_names[c->act];
    an->s_len = strlen(an->s);
    pv[0] = c->p0, pv[1] = c->p1;
    ap->floats = pv;
    ap->n = c->act == MIXRT_FCONV_CLIP ? 2 : c->act == MIXRT_FCONV_LEAKY_RELU ? 1 : 0;
    return MIXRT_STATUS_OK;
}

/* Marks node ni (taken into a fused node) dead; its outputs lose their producer. */
static void absorb(struct mixrt_pass_state *st, int ni) {
    const struct mixrt_node *d = &st->g->nodes[ni];
    for (int j = 0; j < d->n_outputs; j++)
        if (d->outputs[j] >= 0) st->g->values[d->outputs[j]].producer = -1;
    st->dead[ni] = true;
}

/* Fuses the chain that starts at Conv node ci, if there is one; *absorbed counts its nodes. */
static mixrt_status fuse_one(struct mixrt_pass_state *st, int ci, int *absorbed) {
    struct mixrt_graph *g = st->g;
    const struct mixrt_node *cv = &g->nodes[ci];
    *absorbed = 0;
    if (!is_op(cv, "Conv") || cv->n_inputs < 2 || cv->n_inputs > 3 || cv->n_outputs != 1 || cv->outputs[0] < 0 ||
        cv->inputs[0] < 0 || cv->inputs[1] < 0)
        return MIXRT_STATUS_OK;
    int y = cv->outputs[0];
    if (!mixrt_dtype_is_float(g->values[y].dtype)) return MIXRT_STATUS_OK;
    struct chain c = {.z = -1, .add = -1, .act_nodes = {-1, -1}, .act = MIXRT_FCONV_NONE, .out = y};
    int ai = mixrt_pass_sole_reader(st, y);
    if (ai >= 0) {
        const struct mixrt_node *a = &g->nodes[ai];
        if (is_op(a, "Add") && a->opset >= 7 && a->n_inputs == 2 && a->n_outputs == 1 && a->outputs[0] >= 0) {
            int z = a->inputs[0] == y ? a->inputs[1] : a->inputs[0];
            /* Z exactly Y's shape: a broadcast Add is left alone. */
            if (z >= 0 && z != y && g->values[z].dtype == g->values[y].dtype && same_shape(&g->values[z], &g->values[y]) &&
                same_shape(&g->values[a->outputs[0]], &g->values[y]))
                c.z = z, c.add = ai, c.out = a->outputs[0];
        }
    }
    struct chain with_act = c;
    if (match_act(st, c.out, &with_act)) c = with_act;
    if (c.add < 0 && c.act == MIXRT_FCONV_NONE) return MIXRT_STATUS_OK;

    mixrt_status status = mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION);
    if (status != MIXRT_STATUS_OK) return status;
    int *ins = mixrt_arena_calloc(g->arena, 4, sizeof(int));
    if (!ins) return MIXRT_STATUS_OUT_OF_MEMORY;
    if ((status = attr_add_act(g, ci, &c)) != MIXRT_STATUS_OK) return status;
    struct mixrt_node *n = &g->nodes[ci];
    ins[0] = n->inputs[0], ins[1] = n->inputs[1], ins[2] = n->n_inputs > 2 ? n->inputs[2] : -1, ins[3] = c.z;
    n->inputs = ins;
    n->n_inputs = c.z >= 0 ? 4 : n->n_inputs;
    n->op_type = "FusedConv";
    n->domain = MIXRT_DOMAIN;
    n->opset = MIXRT_DOMAIN_VERSION;
    int dead[3] = {c.add, c.act_nodes[0], c.act_nodes[1]};
    for (int i = 0; i < 3; i++)
        if (dead[i] >= 0) absorb(st, dead[i]), (*absorbed)++;
    g->values[y].producer = -1;
    n->outputs[0] = c.out;
    g->values[c.out].producer = ci;
    return MIXRT_STATUS_OK;
}

/* ---- channels-last InstanceNormalization epilogues (1-D regions) ------------------------ */

/* Constant k is per channel for y [.., C]: one value, or C along its last axis with every other
 * dim 1 and no more dims than y, so an element-wise op with it broadcasts over y's other axes
 * only. */
static bool chan_const(const struct mixrt_graph *g, int k, int y) {
    if (!mixrt_graph_is_fixed_const(g, k)) return false;
    const struct mixrt_tensor *t = g->values[k].init;
    const struct mixrt_value *yv = &g->values[y];
    if (t->dtype != yv->dtype || yv->rank < 1 || t->rank > yv->rank) return false;
    for (int i = 0; i + 1 < t->rank; i++)
        if (t->dims[i] != 1) return false;
    return mixrt_tensor_numel(t) == 1 || t->dims[t->rank - 1] == yv->dims[yv->rank - 1].value;
}

/* One Mul, Add or Sub of a per-channel constant reading the output y of the channels-last
 * InstanceNormalization ni (and nothing else reading y) goes into its scale and bias:
 * IN(x, s, b) * g + h = IN(x, s g, b g + h), h - IN = IN(x, -s, h - b). New constants, computed
 * in f64 and stored in the old ones' dtype (those may have other readers). *done: folded. */
static mixrt_status norm_fold_affine(struct mixrt_pass_state *st, int ni, bool *done) {
    struct mixrt_graph *g = st->g;
    *done = false;
    const struct mixrt_node *n = &g->nodes[ni];
    int y = n->outputs[0], mi = mixrt_pass_sole_reader(st, y);
    if (mi < 0 || mi >= st->n_dead) return MIXRT_STATUS_OK;
    const struct mixrt_node *m = &g->nodes[mi];
    bool mul = is_op(m, "Mul"), add = is_op(m, "Add"), sub = is_op(m, "Sub");
    if (!(mul || add || sub) || m->opset < 7 || m->n_inputs != 2 || m->n_outputs != 1 || m->outputs[0] < 0)
        return MIXRT_STATUS_OK;
    bool y_first = m->inputs[0] == y;
    int k = y_first ? m->inputs[1] : m->inputs[0], out = m->outputs[0];
    if (k == y || !chan_const(g, k, y) || g->values[out].dtype != g->values[y].dtype ||
        !same_shape(&g->values[out], &g->values[y]))
        return MIXRT_STATUS_OK;
    const struct mixrt_tensor *ts = g->values[n->inputs[1]].init, *tb = g->values[n->inputs[2]].init,
                              *tk = g->values[k].init;
    size_t C = mixrt_tensor_numel(ts), nk = mixrt_tensor_numel(tk);
    struct mixrt_tensor *ns = mixrt_arena_calloc(g->arena, 1, sizeof(*ns));
    struct mixrt_tensor *nb = mixrt_arena_calloc(g->arena, 1, sizeof(*nb));
    if (!ns || !nb) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = mixrt_tensor_init(g->ctx, ns, ts->dtype, ts->rank, ts->dims);
    if (status != MIXRT_STATUS_OK) return status;
    if ((status = mixrt_tensor_init(g->ctx, nb, tb->dtype, tb->rank, tb->dims)) != MIXRT_STATUS_OK) {
        mixrt_tensor_release(g->ctx, ns);
        return status;
    }
    for (size_t c = 0; c < C; c++) {
        double sv = mixrt_load_f64(ts->data, ts->dtype, c), bv = mixrt_load_f64(tb->data, tb->dtype, c);
        double kv = mixrt_load_f64(tk->data, tk->dtype, nk == 1 ? 0 : c);
        if (mul) sv *= kv, bv *= kv;
        else if (add || y_first) bv += add ? kv : -kv;
        else sv = -sv, bv = kv - bv;
        mixrt_store_f64(ns->data, ns->dtype, c, sv);
        mixrt_store_f64(nb->data, nb->dtype, c, bv);
    }
    int vs = mixrt_graph_add_unique_value(g, g->nodes[ni].name, "_scale");
    int vb = vs >= 0 ? mixrt_graph_add_unique_value(g, g->nodes[ni].name, "_bias") : -1;
    if (vb < 0) {
        mixrt_tensor_release(g->ctx, ns);
        mixrt_tensor_release(g->ctx, nb);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    mixrt_pass_set_const(g, vs, ns);
    mixrt_pass_set_const(g, vb, nb);
    struct mixrt_node *nn = &g->nodes[ni];
    nn->inputs[1] = vs, nn->inputs[2] = vb;
    absorb(st, mi);
    g->values[y].producer = -1;
    nn->outputs[0] = out;
    g->values[out].producer = ni;
    *done = true;
    return MIXRT_STATUS_OK;
}

/* The channels-last InstanceNormalization ni (fuse_conv.c's, CPU engines) takes the per-channel
 * affine ops after it, then an activation (FusedConv's set); *absorbed counts their nodes. */
static mixrt_status fuse_norm(struct mixrt_pass_state *st, int ni, int *absorbed) {
    struct mixrt_graph *g = st->g;
    const struct mixrt_node *n = &g->nodes[ni];
    *absorbed = 0;
    if (!(st->flags & MIXRT_PASS_CONV_CPU) || strcmp(n->domain, MIXRT_DOMAIN) ||
        strcmp(n->op_type, "InstanceNormalization") || n->n_inputs != 3 || n->n_outputs != 1 || n->outputs[0] < 0 ||
        mixrt_node_attr(n, "activation")) /* one already: nothing after it folds */
        return MIXRT_STATUS_OK;
    int y = n->outputs[0];
    const struct mixrt_value *yv = &g->values[y];
    int64_t C = yv->rank >= 1 ? yv->dims[yv->rank - 1].value : -1;
    if (C < 1 || !mixrt_dtype_is_float(yv->dtype)) return MIXRT_STATUS_OK;
    bool affine = true;
    for (int j = 1; j < 3; j++) {
        int v = n->inputs[j];
        affine = affine && mixrt_graph_is_fixed_const(g, v) && mixrt_dtype_is_float(g->values[v].init->dtype) &&
                 mixrt_tensor_numel(g->values[v].init) == (size_t)C;
    }
    mixrt_status status = MIXRT_STATUS_OK;
    for (bool done = affine; done;) {
        if ((status = norm_fold_affine(st, ni, &done)) != MIXRT_STATUS_OK) return status;
        *absorbed += done;
    }
    y = g->nodes[ni].outputs[0];
    struct chain c = {.z = -1, .add = -1, .act_nodes = {-1, -1}, .act = MIXRT_FCONV_NONE, .out = y};
    if (!match_act(st, y, &c) || c.act_nodes[0] >= st->n_dead || c.act_nodes[1] >= st->n_dead) return status;
    if ((status = attr_add_act(g, ni, &c)) != MIXRT_STATUS_OK) return status;
    for (int i = 0; i < 2; i++)
        if (c.act_nodes[i] >= 0) absorb(st, c.act_nodes[i]), (*absorbed)++;
    g->values[y].producer = -1;
    g->nodes[ni].outputs[0] = c.out;
    g->values[c.out].producer = ni;
    return status;
}

mixrt_status mixrt_pass_fuse_conv(struct mixrt_pass_state *st, int *removed) {
    for (int ni = 0; ni < st->n_dead; ni++) {
        if (st->dead[ni]) continue;
        int absorbed;
        mixrt_status status = fuse_one(st, ni, &absorbed);
        if (status == MIXRT_STATUS_OK && !absorbed) status = fuse_norm(st, ni, &absorbed);
        if (status != MIXRT_STATUS_OK) return status;
        *removed += absorbed;
    }
    return MIXRT_STATUS_OK;
}

/* ---- layout: channels-last regions ------------------------------------------------------ */

static const int64_t to_last_perm[4] = {0, 2, 3, 1}, to_first_perm[4] = {0, 3, 1, 2};
/* A rank-3 per-channel operand [C, 1, 1] (broadcast against [N, C, H, W]) to [1, 1, C]. */
static const int64_t op3_perm[3] = {1, 2, 0};
/* 1-D regions (MIXRT_PASS_CONV_CPU): [N, C, L] <-> [N, L, C] both ways, and the per-channel
 * operand [C, 1] (broadcast against [N, C, L]) to [1, C]. */
static const int64_t swap3_perm[3] = {0, 2, 1}, op2_perm[2] = {1, 0};
/* 3-D regions (MIXRT_PASS_CONV_CPU): [N, C, D, H, W] <-> [N, D, H, W, C] (video models' convs). */
static const int64_t to_last5_perm[5] = {0, 2, 3, 4, 1}, to_first5_perm[5] = {0, 4, 1, 2, 3};

static int perm_rank(const int64_t *perm) {
    return perm == op2_perm                                ? 2
           : perm == op3_perm || perm == swap3_perm        ? 3
           : perm == to_last5_perm || perm == to_first5_perm ? 5
                                                           : 4;
}

/* The channels-first <-> channels-last perms of a region of rank r (3, 4 or 5). */
static const int64_t *to_last_of(int r) { return r == 5 ? to_last5_perm : r == 4 ? to_last_perm : swap3_perm; }
static const int64_t *to_first_of(int r) { return r == 5 ? to_first5_perm : r == 4 ? to_first_perm : swap3_perm; }

/* Node n is a Transpose with exactly perm p (of p's rank). */
static bool is_transpose(const struct mixrt_node *n, const int64_t *p) {
    if (!is_op(n, "Transpose") || n->n_inputs != 1 || n->n_outputs != 1) return false;
    size_t np = 0;
    const int64_t *q = mixrt_node_attr_ints(n, "perm", &np);
    const int r = perm_rank(p);
    return q && np == (size_t)r && !memcmp(p, q, (size_t)r * sizeof(int64_t));
}

/* MIXRT_LAYOUT_TOKENS=off keeps the Transposes at token-sequence edges (see
 * twin_from_tokens): for measuring. */
static bool g_tokens_on(void) {
    const char *e = getenv("MIXRT_LAYOUT_TOKENS");
    return !(e && !strcmp(e, "off"));
}

struct layout {
    struct mixrt_pass_state *st;
    int *last; /* [st->n_values]: the channels-last twin of a channels-first value, or -1 */
    int64_t opset; /* the default domain's version, for the Transposes */
};

static bool float_rank(const struct mixrt_graph *g, int vi, int r) {
    return vi >= 0 && g->values[vi].rank == r && mixrt_dtype_is_float(g->values[vi].dtype);
}

/* MIXRT_LAYOUT_3D=off keeps 3-D convolutions channels-first (each then reorders its input and
 * output to oneDNN's layouts and back): for measuring. */
bool mixrt_pass_layout_3d_on(void) {
    const char *e = getenv("MIXRT_LAYOUT_3D");
    return !(e && !strcmp(e, "off"));
}

/* The rank of the region node ni's output would join: 4, or 3 and 5 when 1-D and 3-D regions
 * are on (MIXRT_PASS_CONV_CPU); 0 for none. */
static int region_rank(const struct mixrt_pass_state *st, int ni) {
    const struct mixrt_node *n = &st->g->nodes[ni];
    int r = n->n_outputs >= 1 && n->outputs[0] >= 0 ? st->g->values[n->outputs[0]].rank : 0;
    const bool cpu = (st->flags & MIXRT_PASS_CONV_CPU) != 0;
    return r == 4 || (r == 3 && cpu) || (r == 5 && cpu && mixrt_pass_layout_3d_on()) ? r : 0;
}

/* The channels-last twin of value v when one exists already (made earlier in this pass, or v
 * is the output of a channels-last -> channels-first Transpose: its input), else -1. */
static int twin_of(struct layout *L, int v) {
    struct mixrt_graph *g = L->st->g;
    if (v < 0 || v >= L->st->n_values) return -1;
    if (L->last[v] >= 0) return L->last[v];
    int p = g->values[v].producer;
    if (p >= 0 && !mixrt_pass_is_dead(L->st, p) &&
        is_transpose(&g->nodes[p], g->values[v].rank == 5 ? to_first5_perm : to_first_perm))
        return g->nodes[p].inputs[0];
    return -1;
}

/* A new value "<v's name><suffix>" with v's dtype and rank-4 dims permuted by perm. */
static int permuted_value(struct mixrt_graph *g, int v, const char *suffix, const int64_t *perm) {
    int nv = mixrt_graph_add_unique_value(g, g->values[v].name, suffix);
    if (nv < 0) return -1;
    struct mixrt_value *d = &g->values[nv];
    const struct mixrt_value *s = &g->values[v];
    int r = perm_rank(perm);
    d->dtype = s->dtype;
    d->rank = r;
    for (int i = 0; i < r; i++) d->dims[i] = s->dims[perm[i]];
    return nv;
}

/* Appends Transpose(in) -> out with perm, named "<out>/nchw" (to_first) or "<out>/nhwc". */
static mixrt_status add_transpose(struct layout *L, int in, int out, const int64_t *perm, bool to_first) {
    struct mixrt_graph *g = L->st->g;
    const char *base = g->values[out].name, *sfx = to_first ? "/nchw" : "/nhwc";
    size_t lb = strlen(base), ls = strlen(sfx);
    char *name = mixrt_arena_alloc(g->arena, lb + ls + 1, 1);
    if (!name) return MIXRT_STATUS_OUT_OF_MEMORY;
    memcpy(name, base, lb);
    memcpy(name + lb, sfx, ls + 1);
    int ni = mixrt_graph_add_node(g, name, "Transpose", "");
    int r = perm_rank(perm);
    int *io = ni >= 0 ? mixrt_arena_calloc(g->arena, 2, sizeof(int)) : NULL;
    int64_t *p = io ? mixrt_arena_calloc(g->arena, 5, sizeof(int64_t)) : NULL;
    struct mixrt_attr *a = p ? mixrt_pass_attr_add(g, ni, "perm", MIXRT_ATTR_INTS) : NULL;
    if (!a) return MIXRT_STATUS_OUT_OF_MEMORY;
    memcpy(p, perm, (size_t)r * sizeof(int64_t));
    a->ints = p, a->n = r;
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = L->opset;
    io[0] = in, io[1] = out;
    n->inputs = io, n->n_inputs = 1;
    n->outputs = io + 1, n->n_outputs = 1;
    g->values[out].producer = ni;
    return MIXRT_STATUS_OK;
}

/* Static dims of value v (rank r) into d; false when v is not of rank r or a dim is unknown. */
static bool dims_of(const struct mixrt_graph *g, int v, int r, int64_t *d) {
    if (v < 0 || g->values[v].rank != r) return false;
    for (int i = 0; i < r; i++)
        if ((d[i] = g->values[v].dims[i].value) < 0) return false;
    return true;
}

/* Node n is a live Transpose of rank 3 with perm (0, 2, 1): tokens [B, S, C] <-> [B, C, S]. */
static bool is_swap12(const struct mixrt_pass_state *st, int ni) {
    if (ni < 0 || mixrt_pass_is_dead(st, ni)) return false;
    const struct mixrt_node *n = &st->g->nodes[ni];
    if (!is_op(n, "Transpose") || n->n_inputs != 1 || n->n_outputs != 1) return false;
    size_t np = 0;
    const int64_t *q = mixrt_node_attr_ints(n, "perm", &np);
    return q && np == 3 && q[0] == 0 && q[1] == 2 && q[2] == 1;
}

/* Node ni is a live Reshape, reading value *in (the callers ask its output's dims, known
 * statically, for what it does: no question of allowzero or -1 then). */
static bool is_plain_reshape(const struct mixrt_pass_state *st, int ni, int *in) {
    if (ni < 0 || mixrt_pass_is_dead(st, ni)) return false;
    const struct mixrt_node *n = &st->g->nodes[ni];
    if (!is_op(n, "Reshape") || n->n_inputs != 2 || n->n_outputs != 1 || n->inputs[0] < 0) return false;
    *in = n->inputs[0];
    return true;
}

/* Token sequences around convolutions (SegFormer, PVT, Swin's patch merging: x.flatten(2)
 * .transpose(1, 2) after a conv, x.transpose(1, 2).reshape(B, C, H, W) before one): in
 * channels-last memory [B, H, W, C] and [B, H*W, C] are the same bytes, so the Transpose
 * pairs the region's edges would add are a Reshape instead. This one is the entry side:
 * v = Reshape(Transpose(u, (0, 2, 1)), [B, C, H, W]) with u [B, H*W, C] has the twin
 * Reshape(u, [B, H, W, C]). -1 when v is not so made (or out of memory). */
/* The tokens u [B, H*W, C] that v [B, C, H, W] = Reshape(Transpose(u, (0, 2, 1))) views, or -1
 * (no graph change). */
static int tokens_of(struct layout *L, int v) {
    struct mixrt_pass_state *st = L->st;
    struct mixrt_graph *g = st->g;
    int r, u;
    int64_t vd[4], rd[3], ud[3];
    int p = v >= 0 ? g->values[v].producer : -1;
    if (!is_plain_reshape(st, p, &r) || !dims_of(g, v, 4, vd) || !dims_of(g, r, 3, rd)) return -1;
    int q = g->values[r].producer;
    if (!is_swap12(st, q) || !dims_of(g, u = g->nodes[q].inputs[0], 3, ud)) return -1;
    if (!(vd[0] == ud[0] && vd[1] == ud[2] && vd[2] * vd[3] == ud[1] && rd[1] == vd[1] && rd[2] == ud[1]) ||
        g->values[u].dtype != g->values[v].dtype)
        return -1;
    return u;
}

static int twin_from_tokens(struct layout *L, int v) {
    struct mixrt_graph *g = L->st->g;
    int u = tokens_of(L, v);
    int64_t vd[4];
    if (u < 0 || !dims_of(g, v, 4, vd)) return -1;
    int64_t td[4] = {vd[0], vd[2], vd[3], vd[1]};
    int sv = mixrt_pass_i64_const(g, g->values[v].name, "_shape", td, 4);
    int t = sv >= 0 ? permuted_value(g, v, "_nhwc", to_last_perm) : -1;
    int ni = t >= 0 ? mixrt_graph_add_node(g, g->values[t].name, "Reshape", "") : -1;
    int *io = ni >= 0 ? mixrt_arena_calloc(g->arena, 3, sizeof(int)) : NULL;
    if (!io) return -1;
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = L->opset < 5 ? 5 : L->opset;
    io[0] = u, io[1] = sv, io[2] = t;
    n->inputs = io, n->n_inputs = 2;
    n->outputs = io + 2, n->n_outputs = 1;
    g->values[t].producer = ni;
    return t;
}

/* The exit side: Transpose(Reshape(v, [B, C, H*W]), (0, 2, 1)) (node ni) of a v with a
 * channels-last twin t becomes Reshape(t, [B, H*W, C]) in place. */
static mixrt_status tokens_from_twin(struct layout *L, int ni, bool *done) {
    struct mixrt_pass_state *st = L->st;
    struct mixrt_graph *g = st->g;
    *done = false;
    int r = g->nodes[ni].inputs[0], y = g->nodes[ni].outputs[0], v, t;
    int64_t vd[4], rd[3], yd[3];
    if (!is_swap12(st, ni) || r < 0 || r >= st->n_values || st->is_output[r] || st->outer_used[r] ||
        mixrt_pass_count_uses(st, r) != 1 || !is_plain_reshape(st, g->values[r].producer, &v) ||
        (t = twin_of(L, v)) < 0 || !dims_of(g, v, 4, vd) || !dims_of(g, r, 3, rd) || !dims_of(g, y, 3, yd))
        return MIXRT_STATUS_OK;
    if (!(rd[0] == vd[0] && rd[1] == vd[1] && rd[2] == vd[2] * vd[3] && yd[1] == rd[2] && yd[2] == rd[1]) ||
        g->values[t].dtype != g->values[y].dtype)
        return MIXRT_STATUS_OK;
    int sv = mixrt_pass_i64_const(g, g->nodes[ni].name, "_shape", yd, 3);
    int *ins = sv >= 0 ? mixrt_arena_calloc(g->arena, 2, sizeof(int)) : NULL;
    if (!ins) return MIXRT_STATUS_OUT_OF_MEMORY;
    struct mixrt_node *n = &g->nodes[ni];
    ins[0] = t, ins[1] = sv;
    n->op_type = "Reshape", n->inputs = ins, n->n_inputs = 2, n->n_attrs = 0, n->attrs = NULL;
    if (n->opset < 5) n->opset = 5;
    *done = true;
    return MIXRT_STATUS_OK;
}

/* The channels-last twin of v, made by an entry Transpose when there is none yet; rr is the
 * region's rank (v of a lower rank is a per-channel operand). */
static mixrt_status twin_make(struct layout *L, int v, int rr, int *out) {
    struct mixrt_graph *g = L->st->g;
    int t = twin_of(L, v);
    if (t < 0 && rr == 4 && g_tokens_on()) t = twin_from_tokens(L, v);
    /* [N, L, C] -> Transpose (0, 2, 1) -> [N, C, L] (wav2vec2's positional conv): its input. */
    int p = v >= 0 ? g->values[v].producer : -1;
    if (t < 0 && rr == 3 && g->values[v].rank == 3 && is_swap12(L->st, p) &&
        g->values[g->nodes[p].inputs[0]].dtype == g->values[v].dtype)
        t = g->nodes[p].inputs[0];
    if (t < 0) {
        int vr = g->values[v].rank;
        if (rr == 5 && vr != 5) return MIXRT_STATUS_INTERNAL; /* layout_kind lets no such operand in */
        const int64_t *perm = rr == 5   ? to_last5_perm
                              : rr == 4 ? (vr == 3 ? op3_perm : to_last_perm)
                                        : (vr == 2 ? op2_perm : swap3_perm);
        if ((t = permuted_value(g, v, "_nhwc", perm)) < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        mixrt_status status = add_transpose(L, v, t, perm, false);
        if (status != MIXRT_STATUS_OK) return status;
    }
    if (v < L->st->n_values) L->last[v] = t;
    *out = t;
    return MIXRT_STATUS_OK;
}

enum { KIND_NONE, KIND_CONV, KIND_POOL, KIND_ELTWISE, KIND_CONCAT, KIND_NORM, KIND_RESIZE, KIND_D2S };

/* A Resize the channels-last kernels take (MIXRT_PASS_CONV_CPU): linear or nearest in the fast
 * path, constant roi / scales / sizes, and N and C kept (scales 1, or sizes equal to X's); the
 * half_pixel_symmetric mode only where the node's opset has it (the com.mixrt op reads the
 * attributes as opset 19 does). Not one whose output is a graph output: a segmentation head's
 * final upsampling would then leave through a Transpose of the large result, where staying
 * channels-first transposes only its small input (FCN-ResNet50: 21x28x28 against 21x224x224). */
static bool resize_nc_kept(const struct mixrt_graph *g, const struct mixrt_node *n) {
    if (n->opset < 11 || n->n_inputs < 3 || n->n_outputs != 1 || !mixrt_resize_supports(g, n, false, NULL, 0) ||
        (g->values[n->outputs[0]].flags & MIXRT_VALUE_GRAPH_OUTPUT))
        return false;
    if (n->opset < 19 && !strcmp(mixrt_node_attr_string(n, "coordinate_transformation_mode", ""), "half_pixel_symmetric"))
        return false;
    const struct mixrt_value *x = &g->values[n->inputs[0]];
    const struct mixrt_tensor *sc = n->inputs[2] >= 0 ? g->values[n->inputs[2]].init : NULL;
    const struct mixrt_tensor *sz = n->n_inputs > 3 && n->inputs[3] >= 0 ? g->values[n->inputs[3]].init : NULL;
    if (sc && mixrt_tensor_numel(sc) == 0) sc = NULL;
    if (sz && mixrt_tensor_numel(sz) == 0) sz = NULL;
    if (!sc == !sz) return false;
    const struct mixrt_tensor *t = sc ? sc : sz;
    if (mixrt_tensor_numel(t) != 4) return false;
    for (int i = 0; i < 2; i++) {
        if (sc && mixrt_load_f64(t->data, t->dtype, (size_t)i) != 1.0) return false;
        if (sz && (x->dims[i].value < 0 || mixrt_load_i64(t->data, t->dtype, (size_t)i) != x->dims[i].value))
            return false;
    }
    return true;
}

/* v broadcasts against the rank-4 y the same way in both layouts once v is transposed too:
 * rank 4 with H = W = 1 and N, C each 1 or y's; rank 3 [C, 1, 1] (to [1, 1, C]); or every
 * dim 1 (any rank, left as it is). */
static bool chan_operand(const struct mixrt_value *v, const struct mixrt_value *y) {
    if (v->rank < 0 || v->rank > 4 || !mixrt_dtype_is_float(v->dtype)) return false;
    bool ones = true;
    for (int i = 0; i < v->rank; i++) ones = ones && v->dims[i].value == 1;
    if (ones) return true;
    if (y->rank == 5) return false; /* 3-D regions: full-size operands only */
    if (y->rank == 3) /* 1-D region: [C, 1] per channel (wav2vec2's group-norm affine) */
        return v->rank == 2 && v->dims[1].value == 1 && v->dims[0].value == y->dims[1].value;
    if (v->rank == 3) /* [C, 1, 1]: per channel */
        return v->dims[1].value == 1 && v->dims[2].value == 1 && v->dims[0].value == y->dims[1].value;
    if (v->rank != 4 || v->dims[2].value != 1 || v->dims[3].value != 1) return false;
    for (int i = 0; i < 2; i++)
        if (v->dims[i].value != 1 && (v->dims[i].value < 0 || v->dims[i].value != y->dims[i].value)) return false;
    return true;
}

/* How node ni may join a channels-last region. Convolutions start regions; pools and
 * element-wise ops join only when an input already has a channels-last twin (alone they would
 * only add Transposes). */
static int layout_kind(struct layout *L, int ni) {
    const struct mixrt_graph *g = L->st->g;
    const struct mixrt_node *n = &g->nodes[ni];
    const int r = region_rank(L->st, ni);
    /* Input 0 is the activation, except for a binary op whose first input is the small operand. */
    if (!r || n->n_outputs < 1 || !float_rank(g, n->outputs[0], r) || n->n_inputs < 1 ||
        !(float_rank(g, n->inputs[0], r) || (n->n_inputs == 2 && float_rank(g, n->inputs[1], r))))
        return KIND_NONE;
    for (int j = 1; j < n->n_outputs; j++)
        if (n->outputs[j] >= 0) return KIND_NONE;
    bool conv = (is_op(n, "Conv") && n->n_inputs >= 2 && n->n_inputs <= 3) ||
                (!strcmp(n->domain, MIXRT_DOMAIN) && !strcmp(n->op_type, "FusedConv") &&
                 mixrt_node_attr_int(n, "channels_last", 0) == 0);
    if (conv)
        return float_rank(g, n->inputs[0], r) && n->inputs[1] >= 0 && g->values[n->inputs[1]].rank == r ? KIND_CONV
                                                                                                      : KIND_NONE;
    /* An upsampling in the middle of a network (segmentation heads, feature pyramids): the
     * channels-last Resize, each output pixel a few input pixels' channel vectors; its input may
     * also be transformer tokens viewed as an image (SegFormer's decoder: a Reshape, no copy). */
    if ((L->st->flags & MIXRT_PASS_CONV_CPU) && r == 4 && is_op(n, "Resize") && resize_nc_kept(g, n))
        return twin_of(L, n->inputs[0]) >= 0 || (g_tokens_on() && tokens_of(L, n->inputs[0]) >= 0) ? KIND_RESIZE
                                                                                                 : KIND_NONE;
    if (twin_of(L, n->inputs[0]) < 0 && !(n->n_inputs == 2 && twin_of(L, n->inputs[1]) >= 0)) return KIND_NONE;
    /* A DepthToSpace after a convolution (the 1x1 one a ConvTranspose became, passes.c): the
     * channels-last one moves each output pixel's channels as one run in DCR mode. */
    if ((L->st->flags & MIXRT_PASS_CONV_CPU) && r == 4 && is_op(n, "DepthToSpace") && n->n_inputs == 1) {
        const char *mode = mixrt_node_attr_string(n, "mode", "DCR");
        return mixrt_node_attr_int(n, "blocksize", 0) > 0 && (!strcmp(mode, "DCR") || !strcmp(mode, "CRD"))
                   ? KIND_D2S
                   : KIND_NONE;
    }
    /* 1-D regions: InstanceNormalization (wav2vec2's group norm with one channel per group)
     * as com.mixrt's channels-last one; Gelu as an element-wise op. */
    if (r == 3 && is_op(n, "InstanceNormalization") && n->n_inputs == 3 && n->inputs[1] >= 0 && n->inputs[2] >= 0)
        return KIND_NORM;
    if ((L->st->flags & MIXRT_PASS_CONV_CPU) && n->n_inputs == 1 && !strcmp(n->op_type, "Gelu") &&
        ((is_op(n, "Gelu") && n->opset >= 20) || !strcmp(n->domain, MIXRT_DOMAIN)))
        return KIND_ELTWISE;
    /* Unary ops in 2-D and 1-D regions alike (the channels-last InstanceNormalization takes
     * them as its activation). */
    static const char *const unary[] = {"Relu", "LeakyRelu", "Sigmoid", "Tanh", "HardSwish", "Clip", NULL};
    for (int i = 0; unary[i]; i++)
        if (is_op(n, unary[i])) {
            /* Clip's min and max are scalars: they stay as they are. */
            for (int j = 1; j < n->n_inputs; j++)
                if (n->inputs[j] >= 0 && g->values[n->inputs[j]].rank != 0) return KIND_NONE;
            return KIND_ELTWISE;
        }
    if (r != 4 && r != 5 && !is_op(n, "Add") && !is_op(n, "Mul") && !is_op(n, "Sub") && !is_op(n, "Div"))
        return KIND_NONE;
    if ((is_op(n, "MaxPool") && mixrt_node_attr_int(n, "storage_order", 0) == 0) || is_op(n, "AveragePool") ||
        is_op(n, "GlobalAveragePool"))
        return n->n_inputs == 1 ? KIND_POOL : KIND_NONE;
    /* Concat over channels (Inception, SqueezeNet's fire modules, DenseNet) of values that are
     * all channels-last already: the same Concat on the last axis. */
    if (is_op(n, "Concat") && n->opset >= 4) {
        int64_t axis = mixrt_node_attr_int(n, "axis", 0);
        if (axis != 1 && axis != 1 - r) return KIND_NONE;
        for (int j = 0; j < n->n_inputs; j++)
            if (!float_rank(g, n->inputs[j], r) || twin_of(L, n->inputs[j]) < 0) return KIND_NONE;
        return KIND_CONCAT;
    }
    static const char *const binary[] = {"Add", "Mul", "Sub", "Div", NULL};
    for (int i = 0; binary[i]; i++)
        if (is_op(n, binary[i]) && n->opset >= 7 && n->n_inputs == 2 && n->inputs[1] >= 0) {
            const struct mixrt_value *a = &g->values[n->inputs[0]], *b = &g->values[n->inputs[1]],
                                     *y = &g->values[n->outputs[0]];
            /* Both full-size, or one full-size and the other a per-channel or per-image
             * operand (a squeeze-excite scale: [N|1, C|1, 1, 1], or all ones): its twin is a
             * Transpose of a few values, where the alternative is two of the full tensor. */
            if (same_shape(a, y) && same_shape(b, y)) return KIND_ELTWISE;
            /* ... and then only when the full-size one is channels-last already. */
            if ((same_shape(a, y) && chan_operand(b, y) && twin_of(L, n->inputs[0]) >= 0) ||
                (same_shape(b, y) && chan_operand(a, y) && twin_of(L, n->inputs[1]) >= 0))
                return KIND_ELTWISE;
        }
    return KIND_NONE;
}

/* Moves node ni into the channels-last world: its rank-4 activation inputs read their twins,
 * it writes a twin of its output, and an exit Transpose rebuilds the original output for
 * readers outside (dead-code elimination drops it when nobody reads it). */
static mixrt_status relayout(struct layout *L, int ni, int kind) {
    struct mixrt_graph *g = L->st->g;
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_node *n0 = &g->nodes[ni];
    const int r = region_rank(L->st, ni);
    int n_in = n0->n_inputs, *ins = mixrt_arena_calloc(g->arena, (size_t)(n_in < 4 ? 4 : n_in), sizeof(int));
    if (!ins) return MIXRT_STATUS_OUT_OF_MEMORY;
    memcpy(ins, n0->inputs, (size_t)n_in * sizeof(int));
    for (int j = 0; j < n_in; j++) {
        /* Conv: X and Z (input 3) are activations; W and B keep their layout. */
        bool act = kind == KIND_CONV ? (j == 0 || j == 3)
                   : kind == KIND_POOL || kind == KIND_NORM || kind == KIND_RESIZE || kind == KIND_D2S ? j == 0
                                                            : float_rank(g, ins[j], r);
        /* An element-wise op's per-channel operand ([C, 1, 1], or [C, 1] in a 1-D region; C > 1)
         * is transposed too. */
        if (kind == KIND_ELTWISE && ins[j] >= 0 && g->values[ins[j]].rank == r - 1 &&
            g->values[ins[j]].dims[0].value > 1)
            act = true;
        if (act && ins[j] >= 0) MIXRT_TRY(twin_make(L, ins[j], r, &ins[j]));
    }
    int y = g->nodes[ni].outputs[0];
    int yt = permuted_value(g, y, "_nhwc", to_last_of(r));
    if (yt < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
    struct mixrt_node *n = &g->nodes[ni];
    n->inputs = ins;
    if (kind == KIND_CONV) {
        if (is_op(n, "Conv")) {
            MIXRT_TRY(mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION));
            n = &g->nodes[ni];
            n->op_type = "FusedConv", n->domain = MIXRT_DOMAIN, n->opset = MIXRT_DOMAIN_VERSION;
        }
        MIXRT_TRY(attr_set_int(g, ni, "channels_last", 1));
    } else if (kind == KIND_POOL || kind == KIND_NORM || kind == KIND_RESIZE || kind == KIND_D2S) {
        MIXRT_TRY(mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION));
        n = &g->nodes[ni];
        n->domain = MIXRT_DOMAIN, n->opset = MIXRT_DOMAIN_VERSION, n->n_outputs = 1;
    } else if (kind == KIND_CONCAT) {
        MIXRT_TRY(attr_set_int(g, ni, "axis", r - 1));
    }
    n = &g->nodes[ni];
    n->outputs[0] = yt;
    g->values[yt].producer = ni;
    MIXRT_TRY(add_transpose(L, yt, y, to_first_of(r), true));
    L->last[y] = yt;
fail:
    return status;
}

/* A group norm as torch exports it - x [N, C, H, W] -> Reshape [N, G, K] -> InstanceNormalization
 * (G scales and biases) -> Reshape back to [N, C, H, W] - on an x with a channels-last twin
 * (FCOS's heads, between convolutions): one com.mixrt InstanceNormalization of the twin with
 * num_groups G and per-channel scale and bias (each group's value repeated), writing the twin of
 * the result. The Transpose pair around the channels-first chain goes (FCOS: 111 Transposes,
 * 5 % of its bf16 run), and fuse_norm takes the per-channel affine and activation after it.
 * Node ni is the InstanceNormalization; *done when rewritten (the second Reshape is then dead). */
static mixrt_status group_norm_last(struct layout *L, int ni, bool *done) {
    struct mixrt_pass_state *st = L->st;
    struct mixrt_graph *g = st->g;
    *done = false;
    const struct mixrt_node *n = &g->nodes[ni];
    if (!(st->flags & MIXRT_PASS_CONV_CPU) || !is_op(n, "InstanceNormalization") || n->n_inputs != 3 ||
        n->n_outputs != 1 || n->inputs[0] < 0 || n->outputs[0] < 0)
        return MIXRT_STATUS_OK;
    int a = n->inputs[0], b = n->outputs[0], x, t, r2, bin, y;
    int64_t xd[4], ad[3], yd[4];
    if (b >= st->n_values || st->is_output[b] || st->outer_used[b] || !is_plain_reshape(st, g->values[a].producer, &x) ||
        !dims_of(g, x, 4, xd) || !dims_of(g, a, 3, ad) || (t = twin_of(L, x)) < 0 ||
        (r2 = mixrt_pass_sole_reader(st, b)) < 0 || r2 >= st->n_dead || !is_plain_reshape(st, r2, &bin) || bin != b ||
        (y = g->nodes[r2].outputs[0]) < 0 || y >= st->n_values || !dims_of(g, y, 4, yd))
        return MIXRT_STATUS_OK;
    const int64_t C = xd[1], G = ad[1];
    if (memcmp(xd, yd, sizeof(xd)) || ad[0] != xd[0] || G < 1 || C % G || ad[2] != C / G * xd[2] * xd[3] ||
        !mixrt_dtype_is_float(g->values[x].dtype) || g->values[t].dtype != g->values[x].dtype ||
        g->values[a].dtype != g->values[x].dtype || g->values[y].dtype != g->values[x].dtype)
        return MIXRT_STATUS_OK;
    const struct mixrt_tensor *p[2];
    for (int j = 0; j < 2; j++) {
        int v = n->inputs[1 + j];
        if (!mixrt_graph_is_fixed_const(g, v) || !mixrt_dtype_is_float(g->values[v].init->dtype) ||
            mixrt_tensor_numel(g->values[v].init) != (size_t)G)
            return MIXRT_STATUS_OK;
        p[j] = g->values[v].init;
    }
    int pv[2];
    for (int j = 0; j < 2; j++) {
        struct mixrt_tensor *e = mixrt_arena_calloc(g->arena, 1, sizeof(*e));
        if (!e) return MIXRT_STATUS_OUT_OF_MEMORY;
        mixrt_status status = mixrt_tensor_init(g->ctx, e, p[j]->dtype, 1, &C);
        if (status != MIXRT_STATUS_OK) return status;
        for (int64_t c = 0; c < C; c++)
            mixrt_store_f64(e->data, e->dtype, (size_t)c, mixrt_load_f64(p[j]->data, p[j]->dtype, (size_t)(c / (C / G))));
        pv[j] = mixrt_graph_add_unique_value(g, g->nodes[ni].name, j ? "_bias" : "_scale");
        if (pv[j] < 0) {
            mixrt_tensor_release(g->ctx, e);
            return MIXRT_STATUS_OUT_OF_MEMORY;
        }
        mixrt_pass_set_const(g, pv[j], e);
    }
    int yt = permuted_value(g, y, "_nhwc", to_last_perm);
    if (yt < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION);
    if (status == MIXRT_STATUS_OK) status = attr_set_int(g, ni, "num_groups", G);
    if (status != MIXRT_STATUS_OK) return status;
    struct mixrt_node *m = &g->nodes[ni];
    m->domain = MIXRT_DOMAIN, m->opset = MIXRT_DOMAIN_VERSION;
    m->inputs[0] = t, m->inputs[1] = pv[0], m->inputs[2] = pv[1];
    m->outputs[0] = yt;
    g->values[yt].producer = ni;
    g->values[b].producer = -1;
    st->dead[r2] = true;
    MIXRT_TRY(add_transpose(L, yt, y, to_first_perm, true));
    L->last[y] = yt;
    *done = true;
fail:
    return status;
}

/* Shape(Transpose(t, perm)) -> Gather(Shape(t), perm[start:end]): a shape read alone no longer
 * keeps the layout's exit Transpose of a large value alive (Mask R-CNN's mask logits, 7.1 M
 * values, transposed only for the Shape that sizes the per-box gather). *done when rewritten. */
static mixrt_status shape_through_transpose(struct layout *L, int ni, bool *done) {
    struct mixrt_pass_state *st = L->st;
    struct mixrt_graph *g = st->g;
    *done = false;
    const struct mixrt_node *n = &g->nodes[ni];
    if (!is_op(n, "Shape") || n->n_inputs != 1 || n->n_outputs != 1 || n->inputs[0] < 0 || n->outputs[0] < 0)
        return MIXRT_STATUS_OK;
    const int v = n->inputs[0], tp = g->values[v].producer;
    if (tp < 0 || mixrt_pass_is_dead(st, tp) || !is_op(&g->nodes[tp], "Transpose") || g->nodes[tp].n_inputs != 1 ||
        g->nodes[tp].inputs[0] < 0)
        return MIXRT_STATUS_OK;
    const int t = g->nodes[tp].inputs[0], r = g->values[t].rank;
    size_t np = 0;
    const int64_t *perm = mixrt_node_attr_ints(&g->nodes[tp], "perm", &np);
    if (r < 1 || r > MIXRT_MAX_RANK || (perm && np != (size_t)r)) return MIXRT_STATUS_OK;
    int64_t q[MIXRT_MAX_RANK], start = mixrt_node_attr_int(n, "start", 0), end = mixrt_node_attr_int(n, "end", r);
    for (int i = 0; i < r; i++) q[i] = perm ? perm[i] : r - 1 - i; /* no perm: the dims reversed */
    if (start < 0) start += r;
    if (end < 0) end += r;
    start = start < 0 ? 0 : start > r ? r : start;
    end = end < start ? start : end > r ? r : end;
    const int y = n->outputs[0];
    const char *yn = g->values[y].name;
    int idx = mixrt_pass_i64_const(g, yn, "_shape", q + start, end - start);
    int s2 = idx >= 0 ? mixrt_graph_add_unique_value(g, yn, "_full") : -1;
    int gi = s2 >= 0 ? mixrt_pass_add_node(g, yn, "/gather", "Gather", L->opset, (int[]){s2, idx}, 2, y) : -1;
    struct mixrt_attr *ax = gi >= 0 ? mixrt_pass_attr_add(g, gi, "axis", MIXRT_ATTR_INT) : NULL;
    if (!ax) return MIXRT_STATUS_OUT_OF_MEMORY;
    ax->i = 0;
    g->values[s2].dtype = MIXRT_DTYPE_I64;
    g->values[s2].rank = 1;
    g->values[s2].dims[0] = (struct mixrt_dim){r, NULL};
    struct mixrt_node *sh = &g->nodes[ni]; /* after add_node: nodes may move */
    sh->inputs[0] = t, sh->outputs[0] = s2;
    sh->n_attrs = 0; /* start and end, Shape's only attributes, are in the indices now */
    g->values[s2].producer = ni;
    *done = true;
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_pass_layout(struct mixrt_pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    size_t nv = (size_t)(st->n_values > 0 ? st->n_values : 1);
    struct layout L = {st, mixrt_calloc(g->ctx, nv, sizeof(int)), mixrt_graph_opset(g, "")};
    if (!L.last) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (L.opset < 1) L.opset = 13;
    for (size_t i = 0; i < nv; i++) L.last[i] = -1;
    mixrt_status status = MIXRT_STATUS_OK;
    int n_old = st->n_dead, convs = 0;
    /* One convolution alone gains nothing: its entry and exit Transposes cost what the
     * kernel's own reorders would. Regions pay off from two convolutions on. */
    for (int ni = 0; ni < n_old; ni++)
        convs += !st->dead[ni] && layout_kind(&L, ni) == KIND_CONV;
    const bool regions = convs >= 2;
    /* g->order is the topological order of the nodes the pass began with: producers first, so
     * a region grows forward from its convolutions in one sweep. */
    for (int s = 0; s < n_old; s++) {
        int ni = g->order[s];
        if (st->dead[ni]) continue;
        bool shaped;
        if ((status = shape_through_transpose(&L, ni, &shaped)) != MIXRT_STATUS_OK) break;
        if (shaped) {
            (*removed)++;
            continue;
        }
        if (!regions) continue; /* later rounds: the regions are made, their Shapes still rewritten */
        /* The model's own NCHW -> NHWC Transpose of a value that has a channels-last twin
         * (ConvNeXt: conv, then Transpose for the LayerNorm): its readers read the twin. */
        const struct mixrt_node *n = &g->nodes[ni];
        /* 1-D: wav2vec2's Transpose (0, 2, 1) after the feature extractor, the same way. */
        bool tr3 = (st->flags & MIXRT_PASS_CONV_CPU) && is_swap12(st, ni) && g->values[n->inputs[0]].rank == 3;
        if (is_transpose(n, to_last_perm) || tr3) {
            int v = n->inputs[0], y = n->outputs[0], t = twin_of(&L, v);
            if (t >= 0 && y >= 0 && y < st->n_values && !st->is_output[y] && !st->outer_used[y] &&
                g->values[t].dtype == g->values[y].dtype && same_shape(&g->values[t], &g->values[y])) {
                mixrt_pass_replace_uses(st, y, t);
                st->dead[ni] = true;
                (*removed)++;
                continue;
            }
        }
        /* 1-D: a Reshape to the shape it already has (the dynamo export's group norm) reads the
         * same twin. */
        int rin;
        if ((st->flags & MIXRT_PASS_CONV_CPU) && is_plain_reshape(st, ni, &rin) && n->outputs[0] >= 0 &&
            n->outputs[0] < st->n_values && g->values[rin].rank == 3 && twin_of(&L, rin) >= 0 &&
            same_shape(&g->values[rin], &g->values[n->outputs[0]]) && g->values[rin].dims[0].value >= 0 &&
            g->values[rin].dims[1].value >= 0 && g->values[rin].dims[2].value >= 0) {
            L.last[n->outputs[0]] = twin_of(&L, rin);
            continue;
        }
        bool grouped;
        if ((status = group_norm_last(&L, ni, &grouped)) != MIXRT_STATUS_OK) break;
        if (grouped) {
            (*removed)++;
            continue;
        }
        if (g_tokens_on()) {
            bool done;
            if ((status = tokens_from_twin(&L, ni, &done)) != MIXRT_STATUS_OK) break;
            if (done) {
                (*removed)++;
                continue;
            }
        }
        int kind = layout_kind(&L, ni);
        if (kind == KIND_NONE) continue;
        if ((status = relayout(&L, ni, kind)) != MIXRT_STATUS_OK) break;
        (*removed)++;
    }
    mixrt_free(g->ctx, L.last, nv * sizeof(int));
    return status;
}

/* ---- Concat + per-channel affine -> com.mixrt ConcatAffine (CPU engines) ------------------ */

/* Node ni as the depthwise 1x1 channels-last FusedConv of an unfolded BatchNormalization (passes.c
 * bn_to_affine, then the layout pass): stride 1, no pads or dilation, no Z, W a constant
 * [C, 1, 1, 1], its bias a constant [C] or absent. */
static bool affine_conv(const struct mixrt_pass_state *st, int ni) {
    const struct mixrt_graph *g = st->g;
    const struct mixrt_node *n = &g->nodes[ni];
    if (strcmp(n->domain, MIXRT_DOMAIN) || strcmp(n->op_type, "FusedConv") || n->n_inputs < 2 ||
        (n->n_inputs > 3 && n->inputs[3] >= 0) || n->n_outputs != 1 || n->outputs[0] < 0 || n->inputs[0] < 0 ||
        mixrt_node_attr_int(n, "channels_last", 0) != 1 || !mixrt_graph_is_fixed_const(g, n->inputs[1]))
        return false;
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    if (w->rank != 4 || w->dims[1] != 1 || w->dims[2] != 1 || w->dims[3] != 1 ||
        mixrt_node_attr_int(n, "group", 1) != w->dims[0])
        return false;
    if (n->n_inputs > 2 && n->inputs[2] >= 0) {
        if (!mixrt_graph_is_fixed_const(g, n->inputs[2])) return false;
        const struct mixrt_tensor *b = g->values[n->inputs[2]].init;
        if (b->rank != 1 || b->dims[0] != w->dims[0]) return false;
    }
    static const char *const ones[] = {"strides", "dilations"};
    for (int a = 0; a < 2; a++) {
        size_t na = 0;
        const int64_t *v = mixrt_node_attr_ints(n, ones[a], &na);
        for (size_t i = 0; v && i < na; i++)
            if (v[i] != 1) return false;
    }
    size_t np = 0;
    const int64_t *p = mixrt_node_attr_ints(n, "pads", &np);
    for (size_t i = 0; p && i < np; i++)
        if (p[i] != 0) return false;
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    return !strcmp(ap, "NOTSET") || !strcmp(ap, "VALID");
}

/* A Concat along the last axis read only by such a conv becomes one com.mixrt ConcatAffine:
 * Y = act(Concat(X) * W + B), S = W and B as f32 constants; the Concat's output is never made
 * (DenseNet: each dense layer's Concat of its predecessors' features and the BatchNorm + ReLU
 * over it, two passes over a tensor that grows with the layer). */
mixrt_status mixrt_pass_concat_affine(struct mixrt_pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    if (!(st->flags & MIXRT_PASS_CONV_CPU)) return MIXRT_STATUS_OK;
    const char *env = getenv("MIXRT_CONCAT_AFFINE");
    if (env && !strcmp(env, "off")) return MIXRT_STATUS_OK;
    for (int ni = 0; ni < st->n_dead; ni++) {
        if (st->dead[ni] || !affine_conv(st, ni)) continue;
        int x = g->nodes[ni].inputs[0], ci = g->values[x].producer;
        if (ci < 0 || mixrt_pass_is_dead(st, ci) || mixrt_pass_sole_reader(st, x) != ni) continue;
        const struct mixrt_node *cc = &g->nodes[ci];
        const struct mixrt_value *xv = &g->values[x], *yv = &g->values[g->nodes[ni].outputs[0]];
        if (!is_op(cc, "Concat") || cc->opset < 4 || cc->n_outputs != 1 || cc->n_inputs < 1 || xv->rank < 2 ||
            yv->dtype != xv->dtype)
            continue;
        int64_t axis = mixrt_node_attr_int(cc, "axis", 0);
        if (axis != xv->rank - 1 && axis != -1) continue;
        bool ok = true;
        for (int i = 0; ok && i < cc->n_inputs; i++)
            ok = cc->inputs[i] >= 0 && g->values[cc->inputs[i]].dtype == xv->dtype &&
                 g->values[cc->inputs[i]].rank == xv->rank;
        if (!ok) continue;
        /* S and B as f32 constants */
        const struct mixrt_node *cv = &g->nodes[ni];
        const struct mixrt_tensor *w = g->values[cv->inputs[1]].init;
        const struct mixrt_tensor *b = cv->n_inputs > 2 && cv->inputs[2] >= 0 ? g->values[cv->inputs[2]].init : NULL;
        int64_t C = w->dims[0];
        struct mixrt_tensor *ts = mixrt_arena_calloc(g->arena, 1, sizeof(*ts)), *tb = mixrt_arena_calloc(g->arena, 1, sizeof(*tb));
        if (!ts || !tb) return MIXRT_STATUS_OUT_OF_MEMORY;
        mixrt_status status = mixrt_tensor_init(g->ctx, ts, MIXRT_DTYPE_F32, 1, &C);
        if (status != MIXRT_STATUS_OK) return status;
        if ((status = mixrt_tensor_init(g->ctx, tb, MIXRT_DTYPE_F32, 1, &C)) != MIXRT_STATUS_OK) {
            mixrt_tensor_release(g->ctx, ts);
            return status;
        }
        for (int64_t c = 0; c < C; c++) {
            ((float *)ts->data)[c] = (float)mixrt_load_f64(w->data, w->dtype, (size_t)c);
            ((float *)tb->data)[c] = b ? (float)mixrt_load_f64(b->data, b->dtype, (size_t)c) : 0.0f;
        }
        const char *base = g->nodes[ni].name;
        int vs = mixrt_pass_add_const(g, base, "/affine_S", ts), vb = vs >= 0 ? mixrt_pass_add_const(g, base, "/affine_B", tb) : -1;
        if (vb < 0) return mixrt_error(g->ctx, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
        char name[512];
        snprintf(name, sizeof(name), "%s_concat_affine", base);
        int nn = mixrt_graph_add_node(g, name, "ConcatAffine", MIXRT_DOMAIN);
        cc = &g->nodes[ci], cv = &g->nodes[ni];
        int *ins = nn >= 0 ? mixrt_arena_calloc(g->arena, (size_t)cc->n_inputs + 2, sizeof(int)) : NULL;
        int *outs = ins ? mixrt_arena_calloc(g->arena, 1, sizeof(int)) : NULL;
        if (!outs) return mixrt_error(g->ctx, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
        ins[0] = vs, ins[1] = vb;
        for (int i = 0; i < cc->n_inputs; i++) ins[2 + i] = cc->inputs[i];
        outs[0] = cv->outputs[0];
        struct mixrt_node *nd = &g->nodes[nn];
        nd->opset = MIXRT_DOMAIN_VERSION;
        nd->inputs = ins, nd->n_inputs = cc->n_inputs + 2;
        nd->outputs = outs, nd->n_outputs = 1;
        nd->attrs = cv->attrs, nd->n_attrs = cv->n_attrs; /* activation, activation_params (the rest unread) */
        g->values[outs[0]].producer = nn;
        st->dead[ni] = st->dead[ci] = true;
        *removed += 2;
    }
    return MIXRT_STATUS_OK;
}

/* ---- inverted-residual blocks (MIXRT_PASS_MBCONV) --------------------------------------------- */

static bool is_fconv(const struct mixrt_node *n) {
    return !strcmp(n->domain, MIXRT_DOMAIN) && !strcmp(n->op_type, "FusedConv");
}

/* node n's activation one mbconv_nhwc applies in that stage (depthwise or 1x1). */
static bool mb_act_ok(const struct mixrt_node *n, bool depthwise) {
    enum mixrt_fconv_act a;
    float p0, p1;
    return mixrt_fconv_read_act(n, &a, &p0, &p1) && mixrt_mbconv_act_ok(a, depthwise);
}

/* Node n's bias input, or -1 when it has none (a conv without bias: the dynamo exporter drops a
 * folded BatchNorm's bias when it is all zeros, as it is in a freshly initialized torchvision
 * net). */
static int mb_bias(const struct mixrt_node *n) { return n->n_inputs > 2 ? n->inputs[2] : -1; }

/* A channels-last bf16 FusedConv node with constant float W of rank 4 and a constant B or none,
 * X and Y bf16, no auto_pad, its activation one the kernels apply in that stage; *w its W. */
static bool mb_conv(const struct mixrt_graph *g, const struct mixrt_node *n, bool depthwise,
                    const struct mixrt_tensor **w) {
    if (!is_fconv(n) || n->n_inputs < 2 || n->n_outputs != 1 || n->inputs[0] < 0 || n->inputs[1] < 0 ||
        n->outputs[0] < 0 || mixrt_node_attr_int(n, "channels_last", 0) != 1 || !mb_act_ok(n, depthwise))
        return false;
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (ap[0] && strcmp(ap, "NOTSET")) return false;
    const int b = mb_bias(n);
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1]) || (b >= 0 && !mixrt_graph_is_fixed_const(g, b))) return false;
    *w = g->values[n->inputs[1]].init;
    return mixrt_dtype_is_float((*w)->dtype) && (b < 0 || mixrt_dtype_is_float(g->values[b].dtype)) &&
           (*w)->rank == 4 && g->values[n->inputs[0]].dtype == MIXRT_DTYPE_BF16 &&
           g->values[n->outputs[0]].dtype == MIXRT_DTYPE_BF16 && mixrt_node_attr_ints_all(n, "dilations", 1, 0);
}

/* mb_conv and a 1x1 product: one group, stride 1, no pads. */
static bool mb_pointwise(const struct mixrt_graph *g, const struct mixrt_node *n, const struct mixrt_tensor **w) {
    return mb_conv(g, n, false, w) && (*w)->dims[2] == 1 && (*w)->dims[3] == 1 && mixrt_node_attr_int(n, "group", 1) == 1 &&
           mixrt_node_attr_ints_all(n, "strides", 1, 0) && mixrt_node_attr_ints_all(n, "pads", 0, 0);
}

/* Adds attribute `name` to node ni as a copy of src's attribute `from` (the graph arena holds
 * both: the copy shares its strings and lists); absent in src: nothing added. */
static mixrt_status attr_copy(struct mixrt_graph *g, int ni, const struct mixrt_node *src, const char *from,
                              const char *name) {
    const struct mixrt_attr *a = mixrt_node_attr(src, from);
    if (!a) return MIXRT_STATUS_OK;
    const struct mixrt_attr copy = *a;
    struct mixrt_attr *d = mixrt_pass_attr_add(g, ni, name, copy.type);
    if (!d) return MIXRT_STATUS_OUT_OF_MEMORY;
    const char *nm = d->name;
    *d = copy;
    d->name = nm;
    return MIXRT_STATUS_OK;
}

/* Rows the block's input has at least for the fusion (MIXRT_MBCONV_MIN_ROWS). Measured on the
 * engines ({fp32,bf16}, 2 threads, plans of one timing cache run alternately, 2 s each, five
 * pairs): blocks from 14 rows on against from 28 rows on, MobileNetV2 0.86-0.98 of the time
 * (mean 0.94), MnasNet 0.95-1.05 (0.985); from 7 rows on against from 14, MnasNet 1.13-1.42 (its
 * 7x7 blocks of 1152 channels: one image row of 7 pixels per project call runs the 1x1 tiles
 * short, and the thread boundary's rows are expanded twice), MobileNetV2 1.00-1.06. */
#define MB_MIN_ROWS 14

/* [FusedConv 1x1 (expand) ->] depthwise FusedConv -> FusedConv 1x1 (project, Z the block's input
 * or none), all channels-last bf16 after the precision planner, each intermediate read only by
 * the next, the block's input at least MB_MIN_ROWS rows high -> one com.mixrt FusedMBConv (the
 * depthwise node, its attributes kept, the other two's activations as expand_ and
 * project_activation; inputs X, W1, B1, W2, B2, W3, B3 [, Z], W1 and B1 absent without an
 * expand; any of B1, B2, B3 absent where its conv has no bias), run by mbconv_nhwc without the
 * expanded and depthwise tensors in memory.
 * MIXRT_MBCONV=off: not. */
mixrt_status mixrt_pass_mbconv(struct mixrt_pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    const char *env = getenv("MIXRT_MBCONV");
    if (env && !strcmp(env, "off")) return MIXRT_STATUS_OK;
    const char *rows_env = getenv("MIXRT_MBCONV_MIN_ROWS");
    const int64_t min_rows = rows_env && atoll(rows_env) > 0 ? atoll(rows_env) : MB_MIN_ROWS;
    const int n0 = g->n_nodes;
    for (int di = 0; di < n0; di++) {
        const struct mixrt_node *d = &g->nodes[di];
        const struct mixrt_tensor *w1, *w2, *w3;
        if (st->dead[di] || !mb_conv(g, d, true, &w2) || (d->n_inputs > 3 && d->inputs[3] >= 0)) continue;
        const int64_t e_ch = w2->dims[0];
        if (w2->dims[1] != 1 || mixrt_node_attr_int(d, "group", 1) != e_ch) continue;
        const int xd = d->inputs[0], yd = d->outputs[0], pi = mixrt_pass_sole_reader(st, yd);
        if (pi < 0 || st->outer_used[yd]) continue;
        const struct mixrt_node *p = &g->nodes[pi];
        if (p->inputs[0] != yd || !mb_pointwise(g, p, &w3) || w3->dims[1] != e_ch) continue;
        /* The expand: the depthwise input's producer when it is a fusable 1x1 read only here;
         * else none (the block starts at the depthwise conv: MobileNetV2's first, MnasNet's). */
        int ei = g->values[xd].producer;
        if (ei < 0 || st->dead[ei] || st->is_output[xd] || st->outer_used[xd] || mixrt_pass_count_uses(st, xd) != 1 ||
            !mb_pointwise(g, &g->nodes[ei], &w1) || (g->nodes[ei].n_inputs > 3 && g->nodes[ei].inputs[3] >= 0) ||
            w1->dims[0] != e_ch)
            ei = -1;
        const struct mixrt_node *e = ei >= 0 ? &g->nodes[ei] : NULL;
        const int x = e ? e->inputs[0] : xd, z = p->n_inputs > 3 ? p->inputs[3] : -1;
        if (z >= 0 && z != x) continue; /* a residual from elsewhere */
        const struct mixrt_value *xv = &g->values[x];
        if (xv->rank != 4 || xv->dims[1].value < min_rows || xv->dims[3].value != (e ? w1->dims[1] : e_ch)) continue;
        /* The depthwise node becomes the block. */
        int *io = mixrt_arena_calloc(g->arena, 9, sizeof(int));
        if (!io) return MIXRT_STATUS_OUT_OF_MEMORY;
        const int n_in = z >= 0 ? 8 : 7, y = p->outputs[0];
        const int in[8] = {x,          e ? e->inputs[1] : -1, e ? mb_bias(e) : -1, d->inputs[1],
                           mb_bias(d), p->inputs[1],          mb_bias(p),          z};
        memcpy(io, in, sizeof(int) * (size_t)n_in);
        io[n_in] = y;
        mixrt_status status = mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION);
        if (status == MIXRT_STATUS_OK && e) status = attr_copy(g, di, e, "activation", "expand_activation");
        if (status == MIXRT_STATUS_OK && e) status = attr_copy(g, di, e, "activation_params", "expand_activation_params");
        if (status == MIXRT_STATUS_OK) status = attr_copy(g, di, p, "activation", "project_activation");
        if (status == MIXRT_STATUS_OK) status = attr_copy(g, di, p, "activation_params", "project_activation_params");
        if (status != MIXRT_STATUS_OK) return status;
        if (e) absorb(st, ei);
        absorb(st, pi);
        struct mixrt_node *b = &g->nodes[di];
        b->op_type = "FusedMBConv";
        b->inputs = io, b->n_inputs = n_in;
        b->outputs = io + n_in, b->n_outputs = 1;
        g->values[yd].producer = -1;
        g->values[y].producer = di;
        *removed += e ? 2 : 1;
    }
    return MIXRT_STATUS_OK;
}

/* ---- an image's first conv and the MaxPool after it (MIXRT_PASS_STEM_POOL) ------------------ */

/* Whether ints attribute name of n is absent or holds count values in [lo, hi]. */
static bool ints_in(const struct mixrt_node *n, const char *name, size_t count, int64_t lo, int64_t hi) {
    size_t k = 0;
    const int64_t *v = mixrt_node_attr_ints(n, name, &k);
    if (!v) return mixrt_node_attr(n, name) == NULL;
    if (k != count) return false;
    for (size_t i = 0; i < k; i++)
        if (v[i] < lo || v[i] > hi) return false;
    return true;
}

/* A channels-last FusedConv of at most MIXRT_STEM_MAX_C input channels (an image's first
 * conv: ResNet's, DenseNet's, GoogLeNet's 7x7 stride 2), one group, no dilation, explicit pads,
 * no residual, constant W (and B), X and Y both f32 or both bf16, whose output only a
 * channels-last MaxPool reads (2-D kernel of at most 16, explicit pads smaller than the kernel,
 * no dilation, no Indices) -> one com.mixrt FusedConvMaxPool: the conv node with the pool's
 * kernel_shape, strides, pads and ceil_mode as pool_kernel_shape, pool_strides, pool_pads and
 * pool_ceil_mode, writing the pool's output. stem_pool_nhwc pools each conv row while it is in
 * cache, so the conv's output (ResNet-50: 112 x 112 x 64) is never written out.
 * MIXRT_STEM_POOL=off: not. */
mixrt_status mixrt_pass_stem_pool(struct mixrt_pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    const char *env = getenv("MIXRT_STEM_POOL");
    if (env && !strcmp(env, "off")) return MIXRT_STATUS_OK;
    const int n0 = g->n_nodes;
    for (int ci = 0; ci < n0; ci++) {
        const struct mixrt_node *c = &g->nodes[ci];
        if (st->dead[ci] || !is_fconv(c) || c->n_inputs < 2 || c->n_outputs != 1 || c->inputs[0] < 0 ||
            c->inputs[1] < 0 || c->outputs[0] < 0 || (c->n_inputs > 3 && c->inputs[3] >= 0) ||
            mixrt_node_attr_int(c, "channels_last", 0) != 1 || mixrt_node_attr_int(c, "group", 1) != 1 ||
            !mixrt_node_attr_ints_all(c, "dilations", 1, 0) || !ints_in(c, "strides", 2, 1, 64) ||
            !ints_in(c, "pads", 4, 0, 1024))
            continue;
        const char *ap = mixrt_node_attr_string(c, "auto_pad", "NOTSET");
        enum mixrt_fconv_act act;
        float p0, p1;
        if ((ap[0] && strcmp(ap, "NOTSET")) || !mixrt_fconv_read_act(c, &act, &p0, &p1)) continue;
        const int b = c->n_inputs > 2 ? c->inputs[2] : -1;
        if (!mixrt_graph_is_fixed_const(g, c->inputs[1]) || (b >= 0 && !mixrt_graph_is_fixed_const(g, b))) continue;
        const struct mixrt_tensor *w = g->values[c->inputs[1]].init;
        if (!mixrt_dtype_is_float(w->dtype) || w->rank != 4 || w->dims[0] < 1 || w->dims[0] > 1024 || w->dims[1] < 1 ||
            w->dims[1] > MIXRT_STEM_MAX_C || w->dims[2] < 1 || w->dims[2] > 16 || w->dims[3] < 1 ||
            w->dims[3] > 16 || (b >= 0 && !mixrt_dtype_is_float(g->values[b].dtype)))
            continue;
        const int xv = c->inputs[0], yv = c->outputs[0];
        const mixrt_dtype dt = g->values[xv].dtype;
        if ((dt != MIXRT_DTYPE_F32 && dt != MIXRT_DTYPE_BF16) || g->values[yv].dtype != dt ||
            g->values[xv].rank != 4 || g->values[xv].dims[3].value != w->dims[1])
            continue;
        const int pi = mixrt_pass_sole_reader(st, yv);
        if (pi < 0 || st->outer_used[yv] || st->is_output[yv]) continue;
        const struct mixrt_node *p = &g->nodes[pi];
        if (strcmp(p->domain, MIXRT_DOMAIN) || strcmp(p->op_type, "MaxPool") || p->n_inputs != 1 ||
            p->inputs[0] != yv || p->n_outputs < 1 || p->outputs[0] < 0 || (p->n_outputs > 1 && p->outputs[1] >= 0) ||
            !ints_in(p, "kernel_shape", 2, 1, 16) || !mixrt_node_attr(p, "kernel_shape") ||
            !ints_in(p, "strides", 2, 1, 16) || !ints_in(p, "pads", 4, 0, 15) ||
            !mixrt_node_attr_ints_all(p, "dilations", 1, 0))
            continue;
        const char *pap = mixrt_node_attr_string(p, "auto_pad", "NOTSET");
        const int64_t ceil_mode = mixrt_node_attr_int(p, "ceil_mode", 0);
        if ((pap[0] && strcmp(pap, "NOTSET")) || (ceil_mode != 0 && ceil_mode != 1)) continue;
        size_t nk = 0, npd = 0;
        const int64_t *pk = mixrt_node_attr_ints(p, "kernel_shape", &nk), *pp = mixrt_node_attr_ints(p, "pads", &npd);
        bool pads_ok = true;
        for (size_t i = 0; pp && i < 4; i++) pads_ok = pads_ok && pp[i] < pk[i % 2];
        if (!pads_ok || g->values[p->outputs[0]].dtype != dt) continue;
        const int y = p->outputs[0];
        mixrt_status status = attr_copy(g, ci, p, "kernel_shape", "pool_kernel_shape");
        if (status == MIXRT_STATUS_OK) status = attr_copy(g, ci, p, "strides", "pool_strides");
        if (status == MIXRT_STATUS_OK) status = attr_copy(g, ci, p, "pads", "pool_pads");
        if (status == MIXRT_STATUS_OK && ceil_mode) status = attr_set_int(g, ci, "pool_ceil_mode", 1);
        if (status != MIXRT_STATUS_OK) return status;
        absorb(st, pi);
        struct mixrt_node *f = &g->nodes[ci];
        f->op_type = "FusedConvMaxPool";
        f->outputs[0] = y;
        g->values[yv].producer = -1;
        g->values[y].producer = ci;
        *removed += 1;
    }
    return MIXRT_STATUS_OK;
}
