/* lower_einsum.c - two-operand Einsums that are batched matrix products ("bhqd,bhkd->bhqk",
 * "bij,bjk->bik", "ij,jk->ik": shared batch letters, one contracted letter, one free letter
 * per operand) become Transpose + MatMul + Transpose, so the MatMul kernels (oneDNN, bf16,
 * attention fusion) run them instead of the reference Einsum. Invariant: the rewrite computes
 * the same sums in the same precision; every other equation is left to the Einsum kernel. */
#include <string.h>

#include "passes/passes_impl.h"

#define MAX_LETTERS 8

struct einsum_plan {
    int rank_a, rank_b, rank_o, n_batch;
    int64_t perm_a[MAX_LETTERS], perm_b[MAX_LETTERS], perm_o[MAX_LETTERS];
};

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

/* Whether equation eq over inputs of ranks ra, rb is a batched product; fills p. */
static bool plan_einsum(const char *eq, int ra, int rb, struct einsum_plan *p) {
    const char *comma = strchr(eq, ','), *arrow = strstr(eq, "->");
    if (!comma || !arrow || comma > arrow || strchr(comma + 1, ',')) return false;
    char ta[MAX_LETTERS], tb[MAX_LETTERS], to[MAX_LETTERS];
    int na = parse_term(eq, (size_t)(comma - eq), ta), nb = parse_term(comma + 1, (size_t)(arrow - comma - 1), tb);
    int no = parse_term(arrow + 2, strlen(arrow + 2), to);
    if (na < 1 || nb < 1 || no < 1 || na != ra || nb != rb) return false;
    char batch[MAX_LETTERS];
    int n_batch = 0, contr = -1, free_a = -1, free_b = -1;
    for (int i = 0; i < na; i++) {
        bool in_b = find(tb, nb, ta[i]) >= 0, in_o = find(to, no, ta[i]) >= 0;
        if (in_b && in_o) continue; /* batch: taken in output order below */
        if (in_b && !in_o) {
            if (contr >= 0) return false;
            contr = i;
        } else if (!in_b && in_o) {
            if (free_a >= 0) return false;
            free_a = i;
        } else {
            return false; /* summed within A alone */
        }
    }
    for (int i = 0; i < nb; i++) {
        bool in_a = find(ta, na, tb[i]) >= 0, in_o = find(to, no, tb[i]) >= 0;
        if (!in_a && in_o) {
            if (free_b >= 0) return false;
            free_b = i;
        } else if (!in_a) {
            return false; /* summed within B alone */
        }
    }
    if (contr < 0 || free_a < 0 || free_b < 0) return false;
    for (int i = 0; i < no; i++) {
        bool in_a = find(ta, na, to[i]) >= 0, in_b = find(tb, nb, to[i]) >= 0;
        if (!in_a && !in_b) return false;
        if (in_a && in_b) batch[n_batch++] = to[i];
    }
    if (n_batch + 2 != na || n_batch + 2 != nb || n_batch + 2 != no) return false;
    /* A as [batch.., free_a, contr], B as [batch.., contr, free_b]; the product is
     * [batch.., free_a, free_b], permuted into the output's order. */
    char mm[MAX_LETTERS];
    for (int i = 0; i < n_batch; i++) {
        p->perm_a[i] = find(ta, na, batch[i]);
        p->perm_b[i] = find(tb, nb, batch[i]);
        mm[i] = batch[i];
    }
    p->perm_a[n_batch] = free_a, p->perm_a[n_batch + 1] = contr;
    p->perm_b[n_batch] = find(tb, nb, ta[contr]), p->perm_b[n_batch + 1] = free_b;
    mm[n_batch] = ta[free_a], mm[n_batch + 1] = tb[free_b];
    for (int i = 0; i < no; i++) p->perm_o[i] = find(mm, no, to[i]);
    p->rank_a = na, p->rank_b = nb, p->rank_o = no, p->n_batch = n_batch;
    return true;
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

mixrt_status mixrt_pass_lower_einsum(struct mixrt_pass_state *st, int *removed) {
    struct mixrt_graph *g = st->g;
    int n_nodes = g->n_nodes;
    for (int ni = 0; ni < n_nodes; ni++) {
        if (mixrt_pass_is_dead(st, ni)) continue;
        const struct mixrt_node *e = &g->nodes[ni];
        if (strcmp(e->op_type, "Einsum") || e->domain[0] || e->n_inputs != 2 || e->n_outputs != 1 ||
            e->inputs[0] < 0 || e->inputs[1] < 0 || e->outputs[0] < 0)
            continue;
        int a = e->inputs[0], b = e->inputs[1], y = e->outputs[0];
        const struct mixrt_value *va = &g->values[a], *vb = &g->values[b];
        const char *eq = mixrt_node_attr_string(e, "equation", NULL);
        struct einsum_plan p;
        /* MatMul takes float operands of one dtype; the Einsum kernel keeps integer ones. */
        if (!eq || !mixrt_dtype_is_float(va->dtype) || va->dtype != vb->dtype ||
            !plan_einsum(eq, va->rank, vb->rank, &p))
            continue;
        int ta = a, tb = b, mm = y;
        if (!identity(p.perm_a, p.rank_a) && (ta = permuted(g, a, "/einsum_a", p.perm_a, p.rank_a)) < 0)
            return MIXRT_STATUS_OUT_OF_MEMORY;
        if (!identity(p.perm_b, p.rank_b) && (tb = permuted(g, b, "/einsum_b", p.perm_b, p.rank_b)) < 0)
            return MIXRT_STATUS_OUT_OF_MEMORY;
        if (!identity(p.perm_o, p.rank_o)) {
            if ((mm = mixrt_graph_add_unique_value(g, g->values[y].name, "/einsum_mm")) < 0)
                return MIXRT_STATUS_OUT_OF_MEMORY;
            struct mixrt_value *vm = &g->values[mm];
            va = &g->values[a], vb = &g->values[b]; /* the value array may have grown */
            vm->dtype = va->dtype;
            vm->rank = p.rank_o;
            for (int i = 0; i < p.n_batch + 1; i++) vm->dims[i] = va->dims[p.perm_a[i]];
            vm->dims[p.n_batch + 1] = vb->dims[p.perm_b[p.n_batch + 1]];
        }
        /* add() may grow g->nodes: e is not used after the first call. */
        struct mixrt_node copy = *e;
        mixrt_status status = MIXRT_STATUS_OK;
        if (ta != a) status = add(g, &copy, "Transpose", "a", a, -1, ta, p.perm_a, p.rank_a);
        if (status == MIXRT_STATUS_OK && tb != b) status = add(g, &copy, "Transpose", "b", b, -1, tb, p.perm_b, p.rank_b);
        if (status == MIXRT_STATUS_OK) status = add(g, &copy, "MatMul", "matmul", ta, tb, mm, NULL, 0);
        /* The output order as a permutation of the product's: out[i] = mm[perm_o[i]]. */
        if (status == MIXRT_STATUS_OK && mm != y) status = add(g, &copy, "Transpose", "out", mm, -1, y, p.perm_o, p.rank_o);
        if (status != MIXRT_STATUS_OK) return status;
        st->dead[ni] = true;
        (*removed)++;
    }
    return MIXRT_STATUS_OK;
}
