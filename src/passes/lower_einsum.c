/* lower_einsum.c - two-operand Einsums that are batched matrix products ("bhqd,bhkd->bhqk",
 * "bij,bjk->bik", "ij,jk->ik", and with several letters per role: XLNet's "ibh,hnd->ibnd" and
 * "ibnd,hnd->ibh", Funnel's "binh,tnh->bnit") become Transpose + Reshape + MatMul + Reshape +
 * Transpose, so the MatMul kernels (oneDNN, bf16, attention fusion) run them instead of the
 * reference Einsum; a one-operand Einsum that only permutes ("ijbn->bnij") becomes a Transpose.
 * Invariant: the rewrite computes the same sums in the same precision; every other equation
 * (repeated letters, letters summed within one operand, dims that do not fit a reshape) is
 * left to the Einsum kernel. */
#include <string.h>

#include "passes/passes_impl.h"

#define MAX_LETTERS 8

/* Parses one term (letters only, none repeated) into t; its length, or -1. */
static int parse_term(const char *s, size_t len, char *t) {
    int n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == ' ') continue;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) || n == MAX_LETTERS) return -1;
        for (int j = 0; j < n; j++)
            if (t[j] == c) return -1;
        t[n++] = c;
    }
    return n;
}

static int find(const char *t, int n, char c) {
    for (int i = 0; i < n; i++)
        if (t[i] == c) return i;
    return -1;
}

static bool identity(const int64_t *p, int n) {
    for (int i = 0; i < n; i++)
        if (p[i] != i) return false;
    return true;
}

/* Letters by role: batch (both operands and the output, in the output's order), free in A or
 * B alone (output order), contracted (both operands, not the output; A's order). A is taken as
 * [batch.., free_a.., contr..] and read as [batch.., FA, K]; B as [batch.., contr.., free_b..]
 * read as [batch.., K, FB]; their product [batch.., FA, FB] is read as [batch.., free_a..,
 * free_b..] and permuted into the output's order. */
struct einsum_plan {
    int rank_a, rank_b, rank_o, n_batch, n_fa, n_fb, n_c;
    int64_t perm_a[MAX_LETTERS], perm_b[MAX_LETTERS], perm_o[MAX_LETTERS];
};

/* Whether equation eq over inputs of ranks ra, rb is a batched product; fills p. */
static bool plan_einsum(const char *eq, int ra, int rb, struct einsum_plan *p) {
    const char *comma = strchr(eq, ','), *arrow = strstr(eq, "->");
    if (!comma || !arrow || comma > arrow || strchr(comma + 1, ',')) return false;
    char ta[MAX_LETTERS], tb[MAX_LETTERS], to[MAX_LETTERS];
    int na = parse_term(eq, (size_t)(comma - eq), ta), nb = parse_term(comma + 1, (size_t)(arrow - comma - 1), tb);
    int no = parse_term(arrow + 2, strlen(arrow + 2), to);
    if (na < 1 || nb < 1 || no < 1 || na != ra || nb != rb) return false;
    char batch[MAX_LETTERS], fa[MAX_LETTERS], fb[MAX_LETTERS], contr[MAX_LETTERS];
    int n_batch = 0, n_fa = 0, n_fb = 0, n_c = 0;
    for (int i = 0; i < no; i++) {
        bool in_a = find(ta, na, to[i]) >= 0, in_b = find(tb, nb, to[i]) >= 0;
        if (!in_a && !in_b) return false;
        if (in_a && in_b) batch[n_batch++] = to[i];
        else if (in_a) fa[n_fa++] = to[i];
        else fb[n_fb++] = to[i];
    }
    for (int i = 0; i < na; i++) {
        bool in_b = find(tb, nb, ta[i]) >= 0, in_o = find(to, no, ta[i]) >= 0;
        if (!in_o && !in_b) return false; /* summed within A alone */
        if (!in_o) contr[n_c++] = ta[i];
    }
    for (int i = 0; i < nb; i++)
        if (find(to, no, tb[i]) < 0 && find(ta, na, tb[i]) < 0) return false; /* summed within B alone */
    if (n_batch + n_fa + n_c != na || n_batch + n_fb + n_c != nb || n_batch + n_fa + n_fb != no) return false;
    if (n_c == 0 && (n_fa == 0 || n_fb == 0)) return false; /* an element-wise product, no matrix product */
    char mm[MAX_LETTERS];
    int k = 0;
    for (int i = 0; i < n_batch; i++) p->perm_a[k++] = find(ta, na, batch[i]);
    for (int i = 0; i < n_fa; i++) p->perm_a[k++] = find(ta, na, fa[i]);
    for (int i = 0; i < n_c; i++) p->perm_a[k++] = find(ta, na, contr[i]);
    k = 0;
    for (int i = 0; i < n_batch; i++) p->perm_b[k++] = find(tb, nb, batch[i]);
    for (int i = 0; i < n_c; i++) p->perm_b[k++] = find(tb, nb, contr[i]);
    for (int i = 0; i < n_fb; i++) p->perm_b[k++] = find(tb, nb, fb[i]);
    k = 0;
    for (int i = 0; i < n_batch; i++) mm[k++] = batch[i];
    for (int i = 0; i < n_fa; i++) mm[k++] = fa[i];
    for (int i = 0; i < n_fb; i++) mm[k++] = fb[i];
    for (int i = 0; i < no; i++) p->perm_o[i] = find(mm, no, to[i]);
    p->rank_a = na, p->rank_b = nb, p->rank_o = no, p->n_batch = n_batch;
    p->n_fa = n_fa, p->n_fb = n_fb, p->n_c = n_c;
    return true;
}

/* The product of dims d[0..n) (static), -1 when one is not known. */
static int64_t dims_product(const struct mixrt_dim *d, int n) {
    int64_t v = 1;
    for (int i = 0; i < n; i++) {
        if (d[i].value < 0) return -1;
        v *= d[i].value;
    }
    return v;
}

/* A new value "<base><suffix>" with v's dtype and dims permuted by perm (rank r). */
static int permuted(struct mixrt_graph *g, int v, const char *suffix, const int64_t *perm, int r) {
    int nv = mixrt_graph_add_unique_value(g, g->values[v].name, suffix);
    if (nv < 0) return -1;
    struct mixrt_value *d = &g->values[nv];
    const struct mixrt_value *s = &g->values[v];
    d->dtype = s->dtype;
    d->rank = r;
    for (int i = 0; i < r; i++) d->dims[i] = s->dims[perm[i]];
    return nv;
}

/* Appends op(ins) -> out named "<einsum>/<what>", with perm when given. */
static mixrt_status add(struct mixrt_graph *g, const struct mixrt_node *e, const char *op, const char *what,
                        int in0, int in1, int out, const int64_t *perm, int r) {
    size_t lb = strlen(e->name), lw = strlen(what);
    char *name = mixrt_arena_alloc(g->arena, lb + lw + 2, 1);
    if (!name) return MIXRT_STATUS_OUT_OF_MEMORY;
    memcpy(name, e->name, lb);
    name[lb] = '/';
    memcpy(name + lb + 1, what, lw + 1);
    int64_t opset = mixrt_graph_opset(g, "");
    int ni = mixrt_graph_add_node(g, name, op, "");
    int *io = ni >= 0 ? mixrt_arena_calloc(g->arena, 3, sizeof(int)) : NULL;
    if (!io) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (perm) {
        int64_t *pv = mixrt_arena_calloc(g->arena, (size_t)r, sizeof(int64_t));
        struct mixrt_attr *a = pv ? mixrt_pass_attr_add(g, ni, "perm", MIXRT_ATTR_INTS) : NULL;
        if (!a) return MIXRT_STATUS_OUT_OF_MEMORY;
        memcpy(pv, perm, (size_t)r * sizeof(int64_t));
        a->ints = pv, a->n = (size_t)r;
    }
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = opset > 0 ? opset : 13;
    io[0] = in0, io[1] = in1, io[2] = out;
    n->inputs = io, n->n_inputs = in1 >= 0 ? 2 : 1;
    n->outputs = io + 2, n->n_outputs = 1;
    g->values[out].producer = ni;
    return MIXRT_STATUS_OK;
}

/* A new value "<v's name><suffix>" of v's dtype with dims d[0..r); -1 when out of memory. */
static int new_value(struct mixrt_graph *g, int v, const char *suffix, const struct mixrt_dim *d, int r) {
    int nv = mixrt_graph_add_unique_value(g, g->values[v].name, suffix);
    if (nv < 0) return -1;
    g->values[nv].dtype = g->values[v].dtype;
    g->values[nv].rank = r;
    for (int i = 0; i < r; i++) g->values[nv].dims[i] = d[i];
    return nv;
}

/* Reshape's target for dims d[0..r) whose first nb are kept (0: copied from the input): the
 * static dims, one unknown as -1; false when two are unknown. */
static bool reshape_target(const struct mixrt_dim *d, int r, int nb, int64_t *t) {
    int unknown = 0;
    for (int i = 0; i < r; i++) {
        t[i] = i < nb ? 0 : d[i].value;
        if (i >= nb && d[i].value < 0) t[i] = -1, unknown++;
    }
    return unknown <= 1;
}

/* Reshape x -> a new value *out of dims to[0..r) (its first nb kept), "<einsum>/<what>"; the
 * caller checked the target (reshape_target). */
static mixrt_status reshaped(struct mixrt_graph *g, const struct mixrt_node *e, const char *what, int x,
                             const struct mixrt_dim *to, int r, int nb, int *out) {
    int64_t t[MAX_LETTERS];
    (void)reshape_target(to, r, nb, t);
    int sv = mixrt_pass_i64_const(g, e->name, "/einsum_shape", t, r);
    int y = sv >= 0 ? new_value(g, x, what, to, r) : -1;
    if (y < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
    *out = y;
    return add(g, e, "Reshape", what + 1, x, sv, y, NULL, 0);
}

/* A one-operand Einsum that only permutes its letters: the permutation into p (output i is
 * input p[i]); false otherwise. */
static bool plan_permute(const char *eq, int r, int64_t *p) {
    const char *arrow = strstr(eq, "->");
    char ti[MAX_LETTERS], to[MAX_LETTERS];
    if (!arrow || strchr(eq, ',')) return false;
    int ni = parse_term(eq, (size_t)(arrow - eq), ti), no = parse_term(arrow + 2, strlen(arrow + 2), to);
    if (ni < 1 || ni != r || no != ni) return false;
    for (int i = 0; i < no; i++)
        if ((p[i] = find(ti, ni, to[i])) < 0) return false;
    return true;
}

/* Rewrites the two-operand Einsum ni by plan p (see einsum_plan); *done when it did. */
static mixrt_status lower_product(struct mixrt_pass_state *st, int ni, const struct einsum_plan *p, bool *done) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_graph *g = st->g;
    struct mixrt_node e = g->nodes[ni]; /* the nodes array may grow below */
    int a = e.inputs[0], b = e.inputs[1], y = e.outputs[0], nb = p->n_batch;
    struct mixrt_dim da[MAX_LETTERS], db[MAX_LETTERS], dm[MAX_LETTERS], dmm[MAX_LETTERS];
    for (int i = 0; i < p->rank_a; i++) da[i] = g->values[a].dims[p->perm_a[i]];
    for (int i = 0; i < p->rank_b; i++) db[i] = g->values[b].dims[p->perm_b[i]];
    /* A as [batch.., FA, K], B as [batch.., K, FB], the product [batch.., FA, FB]; unnamed
     * products of several dims */
    struct mixrt_dim ra[MAX_LETTERS], rb[MAX_LETTERS];
    for (int i = 0; i < nb; i++) ra[i] = rb[i] = dm[i] = da[i];
    ra[nb] = dm[nb] = (struct mixrt_dim){dims_product(da + nb, p->n_fa), NULL};
    ra[nb + 1] = rb[nb] = (struct mixrt_dim){dims_product(da + nb + p->n_fa, p->n_c), NULL};
    rb[nb + 1] = dm[nb + 1] = (struct mixrt_dim){dims_product(db + nb + p->n_c, p->n_fb), NULL};
    if (p->n_fa == 1) ra[nb] = dm[nb] = da[nb];
    if (p->n_c == 1) ra[nb + 1] = rb[nb] = da[nb + p->n_fa];
    if (p->n_fb == 1) rb[nb + 1] = dm[nb + 1] = db[nb + p->n_c];
    int64_t t[MAX_LETTERS];
    bool re_a = p->n_fa != 1 || p->n_c != 1, re_b = p->n_c != 1 || p->n_fb != 1, re_o = p->n_fa != 1 || p->n_fb != 1;
    /* the product as [batch.., free_a.., free_b..] before the output's order */
    for (int i = 0; i < nb + p->n_fa; i++) dmm[i] = da[i];
    for (int i = 0; i < p->n_fb; i++) dmm[nb + p->n_fa + i] = db[nb + p->n_c + i];
    if ((re_a && !reshape_target(ra, nb + 2, nb, t)) || (re_b && !reshape_target(rb, nb + 2, nb, t)) ||
        (re_o && !reshape_target(dmm, p->rank_o, nb, t)))
        return MIXRT_STATUS_OK;
    int cur_a = a, cur_b = b, mm;
    if (!identity(p->perm_a, p->rank_a)) {
        if ((cur_a = permuted(g, a, "/einsum_a", p->perm_a, p->rank_a)) < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        MIXRT_TRY(add(g, &e, "Transpose", "a", a, -1, cur_a, p->perm_a, p->rank_a));
    }
    if (!identity(p->perm_b, p->rank_b)) {
        if ((cur_b = permuted(g, b, "/einsum_b", p->perm_b, p->rank_b)) < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
        MIXRT_TRY(add(g, &e, "Transpose", "b", b, -1, cur_b, p->perm_b, p->rank_b));
    }
    if (re_a) MIXRT_TRY(reshaped(g, &e, "/einsum_a2", cur_a, ra, nb + 2, nb, &cur_a));
    if (re_b) MIXRT_TRY(reshaped(g, &e, "/einsum_b2", cur_b, rb, nb + 2, nb, &cur_b));
    bool last_mm = !re_o && identity(p->perm_o, p->rank_o);
    if (last_mm) {
        mm = y;
    } else if ((mm = new_value(g, y, "/einsum_mm", dm, nb + 2)) < 0) {
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    MIXRT_TRY(add(g, &e, "MatMul", "matmul", cur_a, cur_b, mm, NULL, 0));
    int cur = mm;
    if (re_o) {
        if (identity(p->perm_o, p->rank_o)) {
            int sv = reshape_target(dmm, p->rank_o, nb, t) ? mixrt_pass_i64_const(g, e.name, "/einsum_shape", t, p->rank_o)
                                                           : -1;
            if (sv < 0) return MIXRT_STATUS_OUT_OF_MEMORY;
            MIXRT_TRY(add(g, &e, "Reshape", "out", mm, sv, y, NULL, 0));
            cur = y;
        } else {
            MIXRT_TRY(reshaped(g, &e, "/einsum_o", mm, dmm, p->rank_o, nb, &cur));
        }
    }
    if (cur != y) MIXRT_TRY(add(g, &e, "Transpose", "out", cur, -1, y, p->perm_o, p->rank_o));
    *done = true;
fail:
    return status;
}

mixrt_status mixrt_pass_lower_einsum(struct mixrt_pass_state *st, int *removed) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_graph *g = st->g;
    int n_nodes = g->n_nodes;
    for (int ni = 0; ni < n_nodes; ni++) {
        if (mixrt_pass_is_dead(st, ni)) continue;
        const struct mixrt_node *e = &g->nodes[ni];
        if (strcmp(e->op_type, "Einsum") || e->domain[0] || e->n_inputs < 1 || e->n_inputs > 2 || e->n_outputs != 1 ||
            e->inputs[0] < 0 || (e->n_inputs == 2 && e->inputs[1] < 0) || e->outputs[0] < 0)
            continue;
        const char *eq = mixrt_node_attr_string(e, "equation", NULL);
        const struct mixrt_value *va = &g->values[e->inputs[0]];
        if (!eq) continue;
        if (e->n_inputs == 1) {
            int64_t perm[MAX_LETTERS];
            if (!plan_permute(eq, va->rank, perm)) continue;
            struct mixrt_node copy = *e;
            MIXRT_TRY(add(g, &copy, "Transpose", "permute", copy.inputs[0], -1, copy.outputs[0], perm, va->rank));
            st->dead[ni] = true;
            (*removed)++;
            continue;
        }
        const struct mixrt_value *vb = &g->values[e->inputs[1]];
        struct einsum_plan p;
        bool done = false;
        /* MatMul takes float operands of one dtype; the Einsum kernel keeps integer ones. */
        if (!mixrt_dtype_is_float(va->dtype) || va->dtype != vb->dtype || !plan_einsum(eq, va->rank, vb->rank, &p))
            continue;
        MIXRT_TRY(lower_product(st, ni, &p, &done));
        if (!done) continue;
        st->dead[ni] = true;
        (*removed)++;
    }
fail:
    return status;
}
