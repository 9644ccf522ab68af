/* fuse_attention.c - scaled dot-product attention as exported (MatMul(Q, Kt) -> scale ->
 * [causal Where] -> [mask Add] -> Softmax(last) -> MatMul(P, V) -> [Transpose]) into one
 * com.mixrt Attention node. Invariant: only nodes whose outputs have exactly one reader (no
 * graph output, no subgraph read) are absorbed, so the rewrite never changes another value.
 *
 * com.mixrt Attention, opset 1 (MIXRT_DOMAIN); type T: f32, f64, f16, bf16.
 *   inputs:  Q (T, rank 4), K (T, rank 4), V (T, rank 4), mask (T, optional), mask2 (T,
 *            optional: a second additive mask, broadcast like the first; CPU engines only).
 *            The logical tensors are Transpose(X, x_perm) (ONNX Transpose semantics:
 *            dims[i] = X.dims[perm[i]]): Q [B, H, Sq, D], K [B, H, Sk, D] (K, not K^T),
 *            V [B, H, Sk, Dv]. B and H broadcast numpy-style (1 against n) across Q, K, V
 *            and the mask, so multi-query K/V and [B,1,1,Sk] masks need no copies.
 *            mask is additive and broadcastable (right-aligned, rank <= 4) to [B,H,Sq,Sk].
 *   attributes: q_perm, k_perm, v_perm (ints[4], default [0,1,2,3]): the layouts above, so
 *            [B,S,H,D] inputs need no head transpose (perm [0,2,1,3]);
 *            out_perm (ints[4], default identity): Y = Transpose(O, out_perm), O [B,H,Sq,Dv];
 *            scale (float, default 1): multiplies Q.K^T;
 *            causal (int 0/1, default 0): scores at key j > i + (Sk - Sq) become
 *            causal_fill (float, default -inf) before the mask is added;
 *            nan_zero (int 0/1, default 0): probabilities that are NaN become 0 (a query
 *            row whose scores are all -inf gives zeros), torch's guard Where(IsNaN(P), 0, P).
 *   output:  Y = Transpose(O, out_perm),
 *            O[b,h,i,:] = sum_j softmax_j(S[b,h,i,:]) V[b,h,j,:],
 *            S = scale * Q.K^T, causal fill, then + mask, then + mask2. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes_impl.h"

/* Nodes one match absorbs at most: 2 MatMuls, Softmax, Add, Where, output Transpose and
 * the scale / transpose chains in front of Q, K^T, V and after the first MatMul. A Mul of the
 * scores by a constant of one value per head ([H, 1, 1]: Swin-V2's cosine attention, its learned
 * logit scale) moves onto Q as a new Mul node (s * (q.k) = (s * q).k). */
#define ATTN_MAX_ABSORBED 40

struct attn_match {
    int dead[ATTN_MAX_ABSORBED];
    int n_dead;
    int q, k, v, mask, out;
    /* Shifted-window masks (match_window_mask): constant C2 added through the split of the
     * scores' axis 0 into [n / win_b, win_b], after constant C1 (-1: none); win_c2 -1: none. */
    int win_c1, win_c2;
    int64_t win_b;
    bool win_two; /* one image: C1 the mask, C2 as [b, ., Sq, Sk] the second (MIXRT_PASS_ATTN_MASK2) */
    int64_t q_perm[4], k_perm[4], v_perm[4], out_perm[4];
    double scale;
    int hscale; /* a per-head constant on the scores (head_scale), -1: none */
    bool causal, nan_zero;
    double fill;
};

static const struct mixrt_node *live_producer(const struct mixrt_pass_state *st, int vi) {
    int p = vi >= 0 ? st->g->values[vi].producer : -1;
    if (p < 0 || p >= st->g->n_nodes || mixrt_pass_is_dead(st, p)) return NULL;
    return &st->g->nodes[p];
}

static bool is_op(const struct mixrt_node *n, const char *op) { return n && !n->domain[0] && !strcmp(n->op_type, op); }

/* Value vi is read by exactly one live node and is no graph output nor subgraph read. */
static bool single_use(const struct mixrt_pass_state *st, int vi) {
    return vi >= 0 && mixrt_pass_count_uses(st, vi) == 1;
}

/* The first live node reading value vi as its input 0, or NULL. */
static const struct mixrt_node *reader0(const struct mixrt_pass_state *st, int vi) {
    for (int i = 0; vi >= 0 && i < st->g->n_nodes; i++)
        if (!mixrt_pass_is_dead(st, i) && st->g->nodes[i].n_inputs >= 1 && st->g->nodes[i].inputs[0] == vi)
            return &st->g->nodes[i];
    return NULL;
}

static bool absorb(struct attn_match *m, const struct mixrt_pass_state *st, const struct mixrt_node *n) {
    if (m->n_dead >= ATTN_MAX_ABSORBED) return false;
    m->dead[m->n_dead++] = (int)(n - st->g->nodes);
    return true;
}

/* The single float value of a fixed constant with one element, rank <= 4. */
static bool scalar_const(const struct mixrt_graph *g, int vi, double *out) {
    if (!mixrt_graph_is_fixed_const(g, vi)) return false;
    const struct mixrt_tensor *t = g->values[vi].init;
    if (t->rank > 4 || mixrt_tensor_numel(t) != 1) return false;
    if (t->dtype != MIXRT_DTYPE_F32 && t->dtype != MIXRT_DTYPE_F64 && t->dtype != MIXRT_DTYPE_F16 &&
        t->dtype != MIXRT_DTYPE_BF16)
        return false;
    *out = mixrt_load_f64(t->data, t->dtype, 0);
    return true;
}

/* A binary Mul/Div of node n by a scalar constant with the chain on input 0 (or either side
 * for Mul): the factor in *f and the chain value in *x. */
static bool scale_node(const struct mixrt_graph *g, const struct mixrt_node *n, double *f, int *x) {
    if (!n || n->n_inputs != 2 || n->n_outputs != 1 || n->inputs[0] < 0 || n->inputs[1] < 0) return false;
    double c;
    if (is_op(n, "Mul")) {
        if (scalar_const(g, n->inputs[1], &c)) {
            *x = n->inputs[0];
        } else if (scalar_const(g, n->inputs[0], &c)) {
            *x = n->inputs[1];
        } else {
            return false;
        }
        *f = c;
        return isfinite(c);
    }
    if (is_op(n, "Div") && scalar_const(g, n->inputs[1], &c) && c != 0.0 && isfinite(c)) {
        *x = n->inputs[0];
        *f = 1.0 / c;
        return true;
    }
    return false;
}

/* A Mul of scores x (rank 4, static head count H > 1) by a fixed float constant c of one value
 * per head: c's dims, right-aligned under [B, H, Sq, Sk], are 1 except H on axis 1. The other
 * operand in *y, the constant in *c. */
static bool head_scale(const struct mixrt_graph *g, const struct mixrt_node *n, int *y, int *c) {
    if (!n || !is_op(n, "Mul") || n->n_inputs != 2 || n->n_outputs != 1 || n->inputs[0] < 0 || n->inputs[1] < 0)
        return false;
    for (int side = 0; side < 2; side++) {
        int cv = n->inputs[1 - side], xv = n->inputs[side];
        if (!mixrt_graph_is_fixed_const(g, cv) || g->values[xv].rank != 4) continue;
        const struct mixrt_tensor *t = g->values[cv].init;
        int64_t H = g->values[xv].dims[1].value;
        if (H < 2 || t->rank < 3 || t->rank > 4 || t->dtype != g->values[xv].dtype ||
            (t->dtype != MIXRT_DTYPE_F32 && t->dtype != MIXRT_DTYPE_F64 && t->dtype != MIXRT_DTYPE_F16 &&
             t->dtype != MIXRT_DTYPE_BF16))
            continue;
        bool ok = true;
        for (int k = 0; k < t->rank; k++) {
            int axis = 4 - t->rank + k;
            ok &= t->dims[k] == (axis == 1 ? H : 1);
        }
        if (!ok) continue;
        *y = xv, *c = cv;
        return true;
    }
    return false;
}

/* The Transpose perm of node n over a rank-4 input (absent: reversed), false otherwise. */
static bool transpose_perm(const struct mixrt_graph *g, const struct mixrt_node *n, int64_t p[4]) {
    if (!is_op(n, "Transpose") || n->n_inputs != 1 || n->inputs[0] < 0 || n->n_outputs != 1 ||
        g->values[n->inputs[0]].rank != 4)
        return false;
    size_t cnt;
    const int64_t *a = mixrt_node_attr_ints(n, "perm", &cnt);
    bool seen[4] = {false, false, false, false};
    for (int i = 0; i < 4; i++) {
        p[i] = a ? (cnt == 4 ? a[i] : -1) : 3 - i;
        if (p[i] < 0 || p[i] > 3 || seen[p[i]]) return false;
        seen[p[i]] = true;
    }
    return true;
}

/* Static dim i of value vi, -1 when unknown. */
static int64_t sdim(const struct mixrt_graph *g, int vi, int i) {
    const struct mixrt_value *v = &g->values[vi];
    return i < v->rank && v->dims[i].value > 0 ? v->dims[i].value : -1;
}

/* Node n is Reshape(Transpose(Reshape(x4, [B*H, S, D]), [0, 2, 1]), [B, H, D, S]) with x4
 * [B, H, S, D] (torch's dynamo export of K^T), the two inner values single-use: x4 in *x4,
 * the three nodes absorbed. n's output is Transpose(x4, [0, 1, 3, 2]). */
static bool merged_head_transpose(struct attn_match *m, const struct mixrt_pass_state *st, const struct mixrt_node *n,
                                  int *x4) {
    const struct mixrt_graph *g = st->g;
    if (!is_op(n, "Reshape") || n->n_inputs < 1 || n->n_outputs != 1 || n->outputs[0] < 0) return false;
    int y = n->outputs[0], r3 = n->inputs[0];
    const struct mixrt_node *t = live_producer(st, r3);
    if (!is_op(t, "Transpose") || t->n_inputs != 1 || !single_use(st, r3)) return false;
    size_t np = 0;
    const int64_t *pp = mixrt_node_attr_ints(t, "perm", &np);
    if (!pp || np != 3 || pp[0] != 0 || pp[1] != 2 || pp[2] != 1) return false;
    int t3 = t->inputs[0];
    const struct mixrt_node *r = live_producer(st, t3);
    if (!is_op(r, "Reshape") || r->n_inputs < 1 || !single_use(st, t3)) return false;
    int x = r->inputs[0];
    int64_t B = sdim(g, y, 0), H = sdim(g, y, 1), D = sdim(g, y, 2), S = sdim(g, y, 3);
    if (g->values[y].rank != 4 || g->values[x].rank != 4 || g->values[t3].rank != 3 || B < 0 || H < 0 || D < 0 ||
        S < 0 || sdim(g, x, 0) != B || sdim(g, x, 1) != H || sdim(g, x, 2) != S || sdim(g, x, 3) != D ||
        sdim(g, t3, 0) != B * H || sdim(g, t3, 1) != S || sdim(g, t3, 2) != D)
        return false;
    if (!absorb(m, st, n) || !absorb(m, st, t) || !absorb(m, st, r)) return false;
    *x4 = x;
    return true;
}

/* Walks from value vi (the logical tensor is Transpose(vi, perm)) up through single-use
 * Transposes and scalar Mul/Div, composing the perm and multiplying the scale; returns the
 * first value that is neither (the Attention input). */
static int peel_input(struct attn_match *m, const struct mixrt_pass_state *st, int vi, int64_t perm[4]) {
    const struct mixrt_graph *g = st->g;
    for (;;) {
        const struct mixrt_node *p = live_producer(st, vi);
        if (!p || !single_use(st, vi)) return vi;
        int64_t tp[4];
        double f;
        int x;
        if (transpose_perm(g, p, tp)) {
            /* Transpose(Transpose(x, tp), perm) = Transpose(x, tp[perm[i]]). */
            int64_t c[4];
            for (int i = 0; i < 4; i++) c[i] = tp[perm[i]];
            if (!absorb(m, st, p)) return vi;
            memcpy(perm, c, sizeof(c));
            vi = p->inputs[0];
        } else if (scale_node(g, p, &f, &x) && g->values[x].rank == 4) {
            if (!absorb(m, st, p)) return vi;
            m->scale *= f;
            vi = x;
        } else if (merged_head_transpose(m, st, p, &x)) {
            static const int64_t swap[4] = {0, 1, 3, 2};
            int64_t c[4];
            for (int i = 0; i < 4; i++) c[i] = swap[perm[i]];
            memcpy(perm, c, sizeof(c));
            vi = x;
        } else {
            return vi;
        }
    }
}

/* cond is a fixed bool constant [1,..,1, Sq, Sk] with cond[i][j] = (j <= i + Sk - Sq). */
static bool causal_cond(const struct mixrt_graph *g, int cond, int64_t sq, int64_t sk) {
    if (!mixrt_graph_is_fixed_const(g, cond) || sq <= 0 || sk <= 0) return false;
    const struct mixrt_tensor *t = g->values[cond].init;
    if (t->dtype != MIXRT_DTYPE_BOOL || t->rank < 2 || t->rank > 4 || t->dims[t->rank - 2] != sq ||
        t->dims[t->rank - 1] != sk)
        return false;
    for (int d = 0; d < t->rank - 2; d++)
        if (t->dims[d] != 1) return false;
    const uint8_t *c = t->data;
    for (int64_t i = 0; i < sq; i++)
        for (int64_t j = 0; j < sk; j++)
            if ((c[i * sk + j] != 0) != (j <= i + sk - sq)) return false;
    return true;
}

static bool rank4(const struct mixrt_graph *g, int vi) { return vi >= 0 && g->values[vi].rank == 4; }

/* The mask value mk can be added to scores x without widening the last two axes: rank
 * <= 4, and those axes 1 or equal to the (known) score dims. */
static bool mask_fits(const struct mixrt_graph *g, int mk, int x) {
    if (mk < 0) return false;
    const struct mixrt_value *mv = &g->values[mk], *sv = &g->values[x];
    if (mv->rank < 0 || mv->rank > 4 || (mv->flags & MIXRT_VALUE_SEQUENCE) || sv->rank != 4) return false;
    for (int d = 2; d < 4; d++) {
        int md = mv->rank - 4 + d;
        if (md < 0 || mv->dims[md].value == 1) continue;
        if (mv->dims[md].value < 0 || mv->dims[md].value != sv->dims[d].value) return false;
    }
    return true;
}

static bool match_scores(const struct mixrt_pass_state *st, int x, const struct mixrt_node *mm2,
                         struct attn_match *m);

/* Constant c broadcasts (right-aligned) to the static dims d[0..r). */
static bool bcasts_to(const struct mixrt_graph *g, int c, const int64_t *d, int r) {
    const struct mixrt_value *cv = &g->values[c];
    if (!mixrt_graph_is_fixed_const(g, c) || cv->rank < 0 || cv->rank > r) return false;
    for (int k = 0; k < cv->rank; k++) {
        int64_t cd = cv->dims[k].value, td = d[r - cv->rank + k];
        if (cd != 1 && cd != td) return false;
    }
    return true;
}

/* Swin's shifted windows: the scores [n, H, Sq, Sk] get [Add C1], then Reshape to
 * [n / b, b, H, Sq, Sk], Add C2 (the window mask), Reshape back - all before the Softmax, C1
 * and C2 constants. The two become one constant mask of the scores' shape (rewrite), so the
 * Attention node takes them like any mask. */
static bool match_window_mask(const struct mixrt_pass_state *st, int s_in, const struct mixrt_node *mm2,
                              struct attn_match *m) {
    const struct mixrt_graph *g = st->g;
    const struct mixrt_node *r2 = live_producer(st, s_in);
    if (!is_op(r2, "Reshape") || !single_use(st, s_in) || r2->n_inputs < 1 || r2->inputs[0] < 0) return false;
    int a_out = r2->inputs[0];
    const struct mixrt_node *a2 = live_producer(st, a_out);
    if (!is_op(a2, "Add") || !single_use(st, a_out) || a2->n_inputs != 2 || a2->inputs[0] < 0 || a2->inputs[1] < 0)
        return false;
    const struct mixrt_value *S = &g->values[s_in];
    int64_t sd[4];
    for (int k = 0; k < 4; k++)
        if ((sd[k] = S->dims[k].value) < 1) return false;
    const bool whole_ok = sd[0] * sd[1] * sd[2] * sd[3] <= ((int64_t)1 << 24); /* a whole mask's size */
    for (int side = 0; side < 2; side++) {
        int r1_out = a2->inputs[side], c2 = a2->inputs[1 - side];
        const struct mixrt_node *r1 = live_producer(st, r1_out);
        if (!is_op(r1, "Reshape") || !single_use(st, r1_out) || r1->n_inputs < 1 || r1->inputs[0] < 0) continue;
        int xv = r1->inputs[0];
        const struct mixrt_value *X = &g->values[xv], *R = &g->values[r1_out];
        bool ok = X->rank == 4 && R->rank == 5 && X->dtype == S->dtype && R->dims[0].value >= 1 &&
                  R->dims[1].value >= 1 && R->dims[0].value * R->dims[1].value == sd[0];
        for (int k = 0; ok && k < 4; k++) ok = X->dims[k].value == sd[k] && (k == 0 || R->dims[k + 1].value == sd[k]);
        int64_t rd[5] = {R->dims[0].value, R->dims[1].value, sd[1], sd[2], sd[3]};
        if (!ok || !bcasts_to(g, c2, rd, 5)) continue;
        /* One image (R's first dim 1): C2 is itself a mask of the scores [n = b, ...], kept as it
         * is beside C1 where the CPU's kernels take two; else C1 + C2 are made one whole mask. */
        const bool two = (st->flags & MIXRT_PASS_ATTN_MASK2) && rd[0] == 1;
        if (!two && !whole_ok) continue;
        struct attn_match t = *m;
        if (!absorb(&t, st, r2) || !absorb(&t, st, a2) || !absorb(&t, st, r1)) return false;
        t.win_c2 = c2, t.win_b = rd[1], t.win_two = two;
        const struct mixrt_node *a1 = live_producer(st, xv);
        if (is_op(a1, "Add") && single_use(st, xv) && a1->n_inputs == 2 && a1->inputs[0] >= 0 && a1->inputs[1] >= 0)
            for (int s1 = 0; s1 < 2; s1++) {
                struct attn_match u = t;
                int c1 = a1->inputs[1 - s1];
                if (!bcasts_to(g, c1, sd, 4) || !absorb(&u, st, a1)) continue;
                u.win_c1 = c1;
                if (match_scores(st, a1->inputs[s1], mm2, &u)) return *m = u, true;
            }
        if (match_scores(st, xv, mm2, &t)) return *m = t, true;
    }
    return false;
}

/* Scores x = [Where causal](scales(MatMul(Q', K^T'))) with Q', K^T' and mm2's V input
 * peeled; fills m (inputs, perms, scale, causal). */
static bool match_scores(const struct mixrt_pass_state *st, int x, const struct mixrt_node *mm2,
                         struct attn_match *m) {
    const struct mixrt_graph *g = st->g;
    const struct mixrt_node *n = live_producer(st, x);
    if (is_op(n, "Where") && single_use(st, x) && n->n_inputs == 3 && n->n_outputs == 1 && n->inputs[1] >= 0) {
        const struct mixrt_value *sv = &g->values[x];
        double fill;
        if (sv->rank != 4 || !causal_cond(g, n->inputs[0], sv->dims[2].value, sv->dims[3].value) ||
            !scalar_const(g, n->inputs[2], &fill) || !rank4(g, n->inputs[1]))
            return false;
        if (!absorb(m, st, n)) return false;
        m->causal = true;
        m->fill = fill;
        x = n->inputs[1];
        n = live_producer(st, x);
    }
    for (;;) { /* scales on the scores: scalars, and one per-head constant */
        double f;
        int y, c;
        if (!n || !single_use(st, x)) break;
        if (scale_node(g, n, &f, &y) && rank4(g, y)) {
            if (!absorb(m, st, n)) return false;
            m->scale *= f;
        } else if (m->hscale < 0 && head_scale(g, n, &y, &c)) {
            if (!absorb(m, st, n)) return false;
            m->hscale = c;
        } else {
            break;
        }
        x = y;
        n = live_producer(st, x);
    }
    if (!is_op(n, "MatMul") || !single_use(st, x) || n->n_inputs != 2 || n->n_outputs != 1 || !rank4(g, n->inputs[0]) ||
        !rank4(g, n->inputs[1]))
        return false;
    if (!absorb(m, st, n)) return false;
    /* Inputs: K^T's perm swaps the last two axes of K's. */
    int64_t kt_perm[4] = {0, 1, 2, 3};
    m->q = peel_input(m, st, n->inputs[0], m->q_perm);
    m->k = peel_input(m, st, n->inputs[1], kt_perm);
    m->v = peel_input(m, st, mm2->inputs[1], m->v_perm);
    m->k_perm[0] = kt_perm[0], m->k_perm[1] = kt_perm[1], m->k_perm[2] = kt_perm[3], m->k_perm[3] = kt_perm[2];
    return rank4(g, m->q) && rank4(g, m->k) && rank4(g, m->v);
}

/* P's NaN guard as torch exports scaled_dot_product_attention: Where(IsNaN(P), 0, P), P read
 * by those two nodes only and the IsNaN by the Where only. Returns the Where's output (what
 * the P.V MatMul reads), -1 when P has no such guard. */
static int nan_guard(struct attn_match *m, const struct mixrt_pass_state *st, int p) {
    const struct mixrt_graph *g = st->g;
    if (mixrt_pass_count_uses(st, p) != 2) return -1;
    const struct mixrt_node *isn = reader0(st, p); /* the Where reads P as its input 2 */
    if (!is_op(isn, "IsNaN") || isn->n_outputs != 1 || !single_use(st, isn->outputs[0])) return -1;
    const struct mixrt_node *wh = reader0(st, isn->outputs[0]);
    double zero;
    if (!is_op(wh, "Where") || wh->n_inputs != 3 || wh->inputs[2] != p || wh->n_outputs != 1 || wh->outputs[0] < 0 ||
        !scalar_const(g, wh->inputs[1], &zero) || zero != 0.0 || !rank4(g, wh->outputs[0]))
        return -1;
    if (!absorb(m, st, isn) || !absorb(m, st, wh)) return -1;
    m->nan_zero = true;
    return wh->outputs[0];
}

/* Matches the pattern ending in Softmax node si; fills m. */
static bool match_at(const struct mixrt_pass_state *st, int si, struct attn_match *m) {
    const struct mixrt_graph *g = st->g;
    const struct mixrt_node *sm = &g->nodes[si];
    memset(m, 0, sizeof(*m));
    m->mask = m->win_c1 = m->win_c2 = m->hscale = -1;
    m->scale = 1.0;
    m->fill = -INFINITY;
    for (int i = 0; i < 4; i++) m->q_perm[i] = m->k_perm[i] = m->v_perm[i] = m->out_perm[i] = i;
    if (!is_op(sm, "Softmax") || sm->n_inputs != 1 || sm->n_outputs != 1 || sm->inputs[0] < 0 || sm->outputs[0] < 0)
        return false;
    int s_in = sm->inputs[0], p = sm->outputs[0];
    if (!rank4(g, s_in) || !rank4(g, p)) return false;
    /* Before opset 13 Softmax flattens to 2-D at axis (default 1); for the last axis both
     * definitions agree. */
    int64_t axis = mixrt_node_attr_int(sm, "axis", sm->opset < 13 ? 1 : -1);
    if (axis != -1 && axis != 3) return false;
    absorb(m, st, sm);

    /* P feeds exactly one MatMul as its left operand (through the NaN guard, if any). */
    if (!single_use(st, p) && (p = nan_guard(m, st, p)) < 0) return false;
    if (!single_use(st, p)) return false;
    const struct mixrt_node *mm2 = reader0(st, p);
    if (!is_op(mm2, "MatMul") || mm2->n_inputs != 2 || mm2->n_outputs != 1 || mm2->inputs[1] < 0 ||
        mm2->outputs[0] < 0 || !rank4(g, mm2->inputs[1]) || !rank4(g, mm2->outputs[0]))
        return false;
    absorb(m, st, mm2);
    m->out = mm2->outputs[0];

    /* Back from the Softmax input: [Add mask] <- scores. Either Add operand may be the
     * scores (the mask is often a Mul too). */
    int x = s_in;
    const struct mixrt_node *n = live_producer(st, x);
    bool found = false;
    if (is_op(n, "Add") && single_use(st, x) && n->n_inputs == 2 && n->n_outputs == 1 && absorb(m, st, n)) {
        for (int side = 0; side < 2 && !found; side++) {
            struct attn_match t = *m;
            int mk = n->inputs[1 - side];
            if (!mask_fits(g, mk, s_in)) continue;
            t.mask = mk;
            if ((found = match_scores(st, n->inputs[side], mm2, &t))) *m = t;
        }
    } else if (is_op(n, "Reshape")) {
        found = match_window_mask(st, s_in, mm2, m);
    } else {
        found = match_scores(st, s_in, mm2, m);
    }
    if (!found) return false;

    /* The head-merging Transpose after: Y = Transpose(O, perm). */
    const struct mixrt_node *ot = single_use(st, m->out) ? reader0(st, m->out) : NULL;
    int64_t op[4];
    if (ot && transpose_perm(g, ot, op) && ot->outputs[0] >= 0 && absorb(m, st, ot)) {
        memcpy(m->out_perm, op, sizeof(op));
        m->out = ot->outputs[0];
    }
    return isfinite(m->scale);
}

static struct mixrt_attr *attr_ints(struct mixrt_graph *g, struct mixrt_attr *a, const char *name, const int64_t *v) {
    a->name = name;
    a->type = MIXRT_ATTR_INTS;
    a->n = 4;
    a->ints = mixrt_arena_calloc(g->arena, 4, sizeof(int64_t));
    if (!a->ints) return NULL;
    memcpy(a->ints, v, 4 * sizeof(int64_t));
    return a;
}

/* Replaces the matched nodes by one Attention node writing m->out. */
/* Offset in constant c of the element at idx[0..r) of the dims c broadcasts to. */
static size_t bcast_off(const struct mixrt_value *c, const int64_t *idx, int r) {
    size_t off = 0;
    for (int k = 0; k < c->rank; k++) {
        int64_t d = c->dims[k].value;
        off = off * (size_t)d + (size_t)(d == 1 ? 0 : idx[r - c->rank + k]);
    }
    return off;
}

/* A new constant "<name>/window_mask" holding t (released when the value cannot be added); its
 * index in *out. */
static mixrt_status mask_const(struct mixrt_graph *g, const char *name, struct mixrt_tensor *t, int *out) {
    int vi = mixrt_graph_add_unique_value(g, name, "/window_mask");
    if (vi < 0) {
        mixrt_tensor_release(g->ctx, t);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    mixrt_pass_set_const(g, vi, t);
    *out = vi;
    return MIXRT_STATUS_OK;
}

/* The window mask of m (match_window_mask) as one constant of the scores' dims and dtype:
 * C1 + C2, each element read through its broadcast (C2 through the split of axis 0); the sum
 * in f64, rounded once. */
static mixrt_status window_mask(struct mixrt_graph *g, const struct attn_match *m, int scores, int *out) {
    const struct mixrt_value *S = &g->values[scores], *c1 = m->win_c1 >= 0 ? &g->values[m->win_c1] : NULL,
                             *c2 = &g->values[m->win_c2];
    int64_t d[4];
    for (int k = 0; k < 4; k++) d[k] = S->dims[k].value;
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    if (!t) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = mixrt_tensor_init(g->ctx, t, S->dtype, 4, d);
    if (status != MIXRT_STATUS_OK) return status;
    size_t e = 0;
    for (int64_t n = 0; n < d[0]; n++)
        for (int64_t h = 0; h < d[1]; h++)
            for (int64_t i = 0; i < d[2]; i++)
                for (int64_t j = 0; j < d[3]; j++, e++) {
                    const int64_t i4[4] = {n, h, i, j}, i5[5] = {n / m->win_b, n % m->win_b, h, i, j};
                    double v = mixrt_load_f64(c2->init->data, c2->dtype, bcast_off(c2, i5, 5));
                    if (c1) v += mixrt_load_f64(c1->init->data, c1->dtype, bcast_off(c1, i4, 4));
                    mixrt_store_f64(t->data, t->dtype, e, v);
                }
    return mask_const(g, c2->name, t, out);
}

/* The window mask C2 of a one-image match (m->win_two) as a rank-4 constant of the scores:
 * its broadcast dims past the image axis, [b or 1, H or 1, Sq or 1, Sk or 1], same elements. */
static mixrt_status window_mask2(struct mixrt_graph *g, const struct attn_match *m, int *out) {
    const struct mixrt_value *c2 = &g->values[m->win_c2];
    int64_t d[4] = {1, 1, 1, 1};
    for (int k = 0; k < c2->rank && k < 4; k++) d[4 - 1 - k] = c2->dims[c2->rank - 1 - k].value;
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    if (!t) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = mixrt_tensor_init(g->ctx, t, c2->dtype, 4, d);
    if (status != MIXRT_STATUS_OK) return status;
    if (t->nbytes) memcpy(t->data, c2->init->data, t->nbytes); /* a 5th dim of C2 is 1 (bcasts_to) */
    return mask_const(g, c2->name, t, out);
}

/* Q scaled per head for m's head scale: a new Mul of m->q (the physical tensor, whose axis
 * q_perm[1] is the logical head axis) by the constant laid along that axis; its output in *out. */
static mixrt_status scale_q(struct mixrt_graph *g, const struct attn_match *m, int64_t opset, const char *base,
                            int *out) {
    const struct mixrt_value *cv = &g->values[m->hscale];
    int64_t d[4] = {1, 1, 1, 1};
    size_t H = mixrt_tensor_numel(cv->init);
    d[m->q_perm[1]] = (int64_t)H;
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    if (!t) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = mixrt_tensor_init(g->ctx, t, cv->dtype, 4, d);
    if (status != MIXRT_STATUS_OK) return status;
    memcpy(t->data, cv->init->data, t->nbytes);
    int ci = mixrt_graph_add_unique_value(g, cv->name, "/head_scale");
    if (ci < 0) {
        mixrt_tensor_release(g->ctx, t);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    mixrt_pass_set_const(g, ci, t);
    int qi = mixrt_graph_add_unique_value(g, g->values[m->q].name, "/head_scaled");
    char name[512];
    snprintf(name, sizeof(name), "%s_head_scale", base);
    int ni = qi >= 0 ? mixrt_graph_add_node(g, name, "Mul", "") : -1;
    int *ins = mixrt_arena_calloc(g->arena, 2, sizeof(int)), *outs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    if (ni < 0 || !ins || !outs) return mixrt_error(g->ctx, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
    const struct mixrt_value *qv = &g->values[m->q];
    struct mixrt_value *sv = &g->values[qi];
    sv->dtype = qv->dtype;
    sv->rank = qv->rank;
    for (int k = 0; k < qv->rank; k++) sv->dims[k] = qv->dims[k];
    sv->producer = ni;
    struct mixrt_node *nd = &g->nodes[ni];
    nd->opset = opset;
    ins[0] = m->q, ins[1] = ci, outs[0] = qi;
    nd->inputs = ins, nd->n_inputs = 2;
    nd->outputs = outs, nd->n_outputs = 1;
    *out = qi;
    return MIXRT_STATUS_OK;
}

static mixrt_status rewrite(struct mixrt_pass_state *st, const struct attn_match *m, const char *base) {
    struct mixrt_graph *g = st->g;
    mixrt_status status = MIXRT_STATUS_OK;
    int mask = m->mask, mask2 = -1, q = m->q;
    if (m->win_c2 >= 0 && m->win_two) {
        MIXRT_TRY(window_mask2(g, m, &mask2));
        mask = m->win_c1;
        if (mask < 0) mask = mask2, mask2 = -1;
    } else if (m->win_c2 >= 0) {
        MIXRT_TRY(window_mask(g, m, g->nodes[m->dead[0]].inputs[0], &mask));
    }
    if (m->hscale >= 0) MIXRT_TRY(scale_q(g, m, g->nodes[m->dead[0]].opset, base, &q));
    char name[512];
    snprintf(name, sizeof(name), "%s_attention", base);
    int ni = mixrt_graph_add_node(g, name, "Attention", MIXRT_DOMAIN);
    int *ins = mixrt_arena_calloc(g->arena, 5, sizeof(int));
    int *outs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    struct mixrt_attr *at = mixrt_arena_calloc(g->arena, 9, sizeof(*at));
    MIXRT_CHECK(g->ctx, ni >= 0 && ins && outs && at, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
    struct mixrt_node *nd = &g->nodes[ni];
    nd->opset = MIXRT_DOMAIN_VERSION;
    ins[0] = q, ins[1] = m->k, ins[2] = m->v, ins[3] = mask, ins[4] = mask2;
    nd->inputs = ins;
    nd->n_inputs = mask2 >= 0 ? 5 : mask >= 0 ? 4 : 3;
    outs[0] = m->out;
    nd->outputs = outs;
    nd->n_outputs = 1;
    int na = 0;
    MIXRT_CHECK(g->ctx,
                attr_ints(g, &at[na++], "q_perm", m->q_perm) && attr_ints(g, &at[na++], "k_perm", m->k_perm) &&
                    attr_ints(g, &at[na++], "v_perm", m->v_perm) && attr_ints(g, &at[na++], "out_perm", m->out_perm),
                MIXRT_STATUS_OUT_OF_MEMORY, "out of memory");
    at[na].name = "scale", at[na].type = MIXRT_ATTR_FLOAT, at[na++].f = (float)m->scale;
    if (m->causal) {
        at[na].name = "causal", at[na].type = MIXRT_ATTR_INT, at[na++].i = 1;
        at[na].name = "causal_fill", at[na].type = MIXRT_ATTR_FLOAT, at[na++].f = (float)m->fill;
    }
    if (m->nan_zero) at[na].name = "nan_zero", at[na].type = MIXRT_ATTR_INT, at[na++].i = 1;
    nd->attrs = at;
    nd->n_attrs = na;
    for (int i = 0; i < m->n_dead; i++) {
        const struct mixrt_node *d = &g->nodes[m->dead[i]];
        for (int j = 0; j < d->n_outputs; j++)
            if (d->outputs[j] >= 0) g->values[d->outputs[j]].producer = -1;
        st->dead[m->dead[i]] = true;
    }
    g->values[m->out].producer = ni;
fail:
    return status;
}

/* The mask value W = Where(And(c, x), a, b) with c a constant all true, W read only as the
 * mask of Attention nodes (torch's export builds one [B,1,S,S] padding mask from x [B,1,1,S]
 * for every layer): W becomes Where(x, a, b) of x's broadcast shape - the Attention nodes
 * broadcast it to the same scores - and the And goes. Returns true when it rewrote. */
static bool shrink_mask(struct mixrt_pass_state *st, int wi) {
    struct mixrt_graph *g = st->g;
    struct mixrt_node *wn = &g->nodes[wi];
    if (!is_op(wn, "Where") || wn->n_inputs != 3 || wn->n_outputs != 1 || wn->outputs[0] < 0) return false;
    int w = wn->outputs[0], cond = wn->inputs[0], readers = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        const struct mixrt_node *n = &g->nodes[i];
        if (mixrt_pass_is_dead(st, i)) continue;
        for (int j = 0; j < n->n_inputs; j++) {
            if (n->inputs[j] != w) continue;
            if (strcmp(n->domain, MIXRT_DOMAIN) || strcmp(n->op_type, "Attention") || j != 3) return false;
            readers++;
        }
    }
    if (readers == 0 || mixrt_pass_count_uses(st, w) != readers || !single_use(st, cond)) return false;
    const struct mixrt_node *an = live_producer(st, cond);
    if (!is_op(an, "And") || an->n_inputs != 2 || an->n_outputs != 1) return false;
    for (int side = 0; side < 2; side++) {
        int c = an->inputs[side], x = an->inputs[1 - side];
        if (c < 0 || x < 0 || !mixrt_graph_is_fixed_const(g, c)) continue;
        const struct mixrt_tensor *ct = g->values[c].init;
        const struct mixrt_value *xv = &g->values[x], *wv = &g->values[w];
        if (ct->dtype != MIXRT_DTYPE_BOOL || xv->dtype != MIXRT_DTYPE_BOOL || xv->rank < 1 || xv->rank > wv->rank ||
            (mixrt_tensor_numel(ct) != 0 && memchr(ct->data, 0, mixrt_tensor_numel(ct))))
            continue;
        double va, vb;
        if (!scalar_const(g, wn->inputs[1], &va) || !scalar_const(g, wn->inputs[2], &vb)) return false;
        /* x's dims, right-aligned under W's, each equal or 1 (so x alone broadcasts to W). */
        for (int d = 0; d < xv->rank; d++) {
            int64_t xd = xv->dims[d].value, wd = wv->dims[wv->rank - xv->rank + d].value;
            if (xd < 1 || (xd != 1 && xd != wd)) return false;
        }
        struct mixrt_value *wm = &g->values[w];
        int lead = wm->rank - xv->rank;
        for (int d = 0; d < wm->rank; d++) wm->dims[d].value = d < lead ? 1 : xv->dims[d - lead].value;
        wn->inputs[0] = x;
        g->values[cond].producer = -1;
        st->dead[an - g->nodes] = true;
        return true;
    }
    return false;
}

mixrt_status mixrt_pass_fuse_attention(struct mixrt_pass_state *st, int *removed) {
    /* Measurement knob: engines of one binary with and without the fusion. */
    const char *knob = getenv("MIXRT_FUSE_ATTENTION");
    if (knob && !strcmp(knob, "off")) return MIXRT_STATUS_OK;
    struct mixrt_graph *g = st->g;
    mixrt_status status = MIXRT_STATUS_OK;
    bool opset_done = false;
    for (int wi = 0; wi < st->n_dead; wi++) /* masks of the Attention nodes made before */
        if (!st->dead[wi] && shrink_mask(st, wi)) (*removed)++;
    for (int si = 0; si < st->n_dead; si++) {
        if (st->dead[si]) continue;
        struct attn_match m;
        if (!match_at(st, si, &m)) continue;
        /* A node absorbed by an earlier match this pass is dead: match_at never takes one. */
        if (!opset_done) {
            MIXRT_TRY(mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION));
            opset_done = true;
        }
        MIXRT_TRY(rewrite(st, &m, g->nodes[si].name));
        *removed += m.n_dead;
    }
fail:
    return status;
}
