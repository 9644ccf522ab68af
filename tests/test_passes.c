/* test_passes.c - each graph pass on small graphs built with the IR API: it does what
 * it says (checked by running the graph before and after with the reference executor)
 * and does not fire where it must not (lossy Cast pair, overridable initializer, random
 * op, symbolic shape, BatchNormalization whose Conv output has a second reader). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/exec_ref.h"
#include "passes/passes.h"
#include "testutil.h"
#include "graph_build.h"

static mixrt_context_t ctx;

static void set_int(struct mixrt_graph *g, int vi, const char *name, int64_t v) {
    node_attr_add(g, g->values[vi].producer, name, MIXRT_ATTR_INT)->i = v;
}

static void set_ints(struct mixrt_graph *g, int vi, const char *name, size_t n, const int64_t *v) {
    struct mixrt_attr *a = node_attr_add(g, g->values[vi].producer, name, MIXRT_ATTR_INTS);
    a->n = n;
    a->ints = mixrt_arena_calloc(g->arena, n, sizeof(int64_t));
    memcpy(a->ints, v, n * sizeof(int64_t));
}

static int count_op(const struct mixrt_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !strcmp(g->nodes[i].op_type, op);
    return n;
}

/* Runs g on inputs (positional) and returns output 0 as doubles in out[max]. */
static size_t run(struct mixrt_graph *g, int n_in, const struct mixrt_tensor *const *in, double *out, size_t max) {
    struct mixrt_tensor outs[4];
    memset(outs, 0, sizeof(outs));
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort: %s", mixrt_context_last_error(ctx));
    mixrt_status st = mixrt_exec_graph(ctx, g, NULL, n_in, in, NULL, outs, NULL, NULL);
    TU_CHECK(st == MIXRT_STATUS_OK, "exec: %s", mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) return 0;
    size_t n = mixrt_tensor_numel(&outs[0]);
    for (size_t i = 0; i < n && i < max; i++) out[i] = mixrt_load_f64(outs[0].data, outs[0].dtype, i);
    for (int i = 0; i < g->n_outputs; i++) mixrt_tensor_release(ctx, &outs[i]);
    return n;
}

static struct mixrt_tensor *tensor(mixrt_dtype dt, int rank, const int64_t *dims) {
    struct mixrt_tensor *t;
    mixrt_tensor_create(ctx, dt, rank, dims, &t);
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) mixrt_store_f64(t->data, dt, i, (double)((i * 7) % 11) - 4.5);
    return t;
}

static struct mixrt_graph *new_graph(void) {
    struct mixrt_graph *g;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    return g;
}

/* Runs g (first output into after[0..cap)), then the passes with flags, then g again: the
 * largest difference between the two runs, or -1 when either failed or their sizes differ.
 * after holds the rewritten graph's output. */
static double passes_change(struct mixrt_graph *g, int n_in, const struct mixrt_tensor *const *in, unsigned flags,
                            double *after, size_t cap) {
    double *before = calloc(cap, sizeof(double));
    size_t n = before ? run(g, n_in, in, before, cap) : 0;
    struct mixrt_pass_stats st;
    TU_CHECK(mixrt_passes_run(g, flags, &st) == MIXRT_STATUS_OK, "passes: %s", mixrt_context_last_error(ctx));
    size_t m = n > 0 && n <= cap ? run(g, n_in, in, after, cap) : 0;
    double worst = m == n && n > 0 ? 0 : -1;
    for (size_t i = 0; worst >= 0 && i < n; i++)
        if (fabs(before[i] - after[i]) > worst) worst = fabs(before[i] - after[i]);
    free(before);
    return worst;
}

static void test_const_fold(void) {
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 1, (int64_t[]){2});
    int a = add_const_values(ctx, g, "a", MIXRT_DTYPE_F32, 1, (int64_t[]){2}, (double[]){1, 2});
    int b = add_const_values(ctx, g, "b", MIXRT_DTYPE_F32, 1, (int64_t[]){2}, (double[]){3, 4});
    /* o is an overridable initializer: an input with a default. */
    int o = add_input(g, "o", MIXRT_DTYPE_F32, 1, (int64_t[]){2});
    g->values[o].init = NULL;
    int o2 = add_const_values(ctx, g, "o", MIXRT_DTYPE_F32, 1, (int64_t[]){2}, (double[]){5, 6});
    TU_CHECK(o2 == o, "same value");
    int s = add_op_node(g, "Add", 2, (int[]){a, b}, "s");
    int s2 = add_op_node(g, "Sqrt", 1, (int[]){s}, "s2");
    int ov = add_op_node(g, "Add", 2, (int[]){o, b}, "ov");
    int rnd = add_op_node(g, "RandomUniformLike", 1, (int[]){a}, "rnd");
    int m = add_op_node(g, "Mul", 2, (int[]){x, s2}, "m");
    int m2 = add_op_node(g, "Add", 2, (int[]){m, ov}, "m2");
    int y = add_op_node(g, "Add", 2, (int[]){m2, rnd}, "y");
    graph_set_output(g, y);
    struct mixrt_pass_stats st;
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_CONST_FOLD, &st) == MIXRT_STATUS_OK, "passes: %s",
             mixrt_context_last_error(ctx));
    TU_CHECK(st.const_folded == 2, "Add and Sqrt folded (%d)", st.const_folded);
    TU_CHECK(g->n_nodes == 5, "5 nodes left (%d)", g->n_nodes);
    const struct mixrt_value *vs = &g->values[s2];
    TU_CHECK(vs->init && vs->producer < 0 && fabs(mixrt_load_f64(vs->init->data, vs->init->dtype, 1) - sqrt(6.0)) < 1e-6,
             "s2 is the constant sqrt([4,6])");
    TU_CHECK(g->values[ov].producer >= 0 && !g->values[ov].init, "an overridable initializer's reader is not folded");
    TU_CHECK(count_op(g, "RandomUniformLike") == 1 && !g->values[rnd].init, "a random op is not folded");
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "still sorts");
    /* Constants nothing reads any more go; those still read, and inputs with defaults, stay. */
    TU_CHECK(!g->values[s].init, "the folded Add's result (read only by the folded Sqrt) was let go");
    TU_CHECK(g->values[a].init && g->values[b].init && g->values[o].init, "a, b (still read) and the input o keep data");
    mixrt_graph_destroy(g);

    /* A weight transposed by folding: the original goes during the pass (its data freed),
     * unless something else reads it - another node, or the graph's outputs. */
    for (int keep = 0; keep < 3; keep++) {
        g = new_graph();
        x = add_input(g, "x", MIXRT_DTYPE_F32, 2, (int64_t[]){5, 64});
        int w = add_const_uniform(ctx, g, "w", MIXRT_DTYPE_F32, 2, (int64_t[]){48, 64}, 1.0);
        int wt = add_op_node(g, "Transpose", 1, (int[]){w}, "wt");
        y = add_op_node(g, "MatMul", 2, (int[]){x, wt}, "y");
        graph_set_output(g, y);
        if (keep == 1) { /* w read by a second node that does not fold (its other input is x) */
            int z = add_op_node(g, "Gemm", 2, (int[]){x, w}, "z");
            node_attr_int(g, g->values[z].producer, "transB", 1);
            graph_set_output(g, z);
        }
        if (keep == 2) graph_set_output(g, w);
        float w10 = ((const float *)g->values[w].init->data)[1 * 64 + 0];
        size_t before = mixrt_context_bytes_in_use(ctx);
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_CONST_FOLD, &st) == MIXRT_STATUS_OK, "keep %d: passes: %s", keep,
                 mixrt_context_last_error(ctx));
        const struct mixrt_tensor *t = g->values[wt].init;
        TU_CHECK(t && t->dims[0] == 64 && t->dims[1] == 48 && ((const float *)t->data)[0 * 48 + 1] == w10,
                 "keep %d: the Transpose folded to w's transpose", keep);
        if (keep == 0)
            TU_CHECK(!g->values[w].init && mixrt_context_bytes_in_use(ctx) <= before,
                     "the transposed weight's original was let go (%zu bytes in use, %zu before)",
                     mixrt_context_bytes_in_use(ctx), before);
        else
            TU_CHECK(g->values[w].init && g->values[w].init->data, "keep %d: w, still %s, keeps its data", keep,
                     keep == 1 ? "read by a Gemm" : "a graph output");
        mixrt_graph_destroy(g);
    }

    /* The size cap: a 4097x4097 f32 fill (just over 64 MiB) stays a node. */
    g = new_graph();
    int shp = add_const_values(ctx, g, "shp", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){4097, 4097});
    int big = add_op_node(g, "ConstantOfShape", 1, (int[]){shp}, "big");
    int small_shp = add_const_values(ctx, g, "small_shp", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){4096, 4096});
    int small = add_op_node(g, "ConstantOfShape", 1, (int[]){small_shp}, "small");
    graph_set_output(g, big);
    graph_set_output(g, small);
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &st) == MIXRT_STATUS_OK, "passes");
    TU_CHECK(st.const_folded == 1 && g->values[big].producer >= 0 && g->values[small].init,
             "64 MiB folds, more does not (%d folded)", st.const_folded);
    mixrt_graph_destroy(g);

    /* Shape of an input with a default (overridable initializer) is not folded even when
     * the default's shape is known. */
    g = new_graph();
    int in = add_input(g, "in", MIXRT_DTYPE_F32, -1, NULL);
    int dflt = add_const_values(ctx, g, "in", MIXRT_DTYPE_F32, 1, (int64_t[]){2}, (double[]){1, 2});
    TU_CHECK(dflt == in, "same value");
    g->values[in].rank = -1;
    y = add_op_node(g, "Shape", 1, (int[]){in}, "y");
    graph_set_output(g, y);
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &st) == MIXRT_STATUS_OK, "passes");
    TU_CHECK(st.shape_folded == 0 && g->n_nodes == 1, "Shape of an overridable input stays");
    mixrt_graph_destroy(g);

    /* A folded graph output is still produced (as a constant) and the graph runs. */
    g = new_graph();
    a = add_const_values(ctx, g, "a", MIXRT_DTYPE_F16, 1, (int64_t[]){3}, (double[]){1, -2, 3});
    y = add_op_node(g, "Neg", 1, (int[]){a}, "y");
    graph_set_output(g, y);
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &st) == MIXRT_STATUS_OK && g->n_nodes == 0, "all folded");
    double out[3] = {0};
    TU_CHECK(run(g, 0, NULL, out, 3) == 3 && out[0] == -1 && out[1] == 2 && out[2] == -3, "constant output runs");
    mixrt_graph_destroy(g);
}

/* Shape -> Gather -> Unsqueeze -> Concat -> Reshape collapses to a Reshape by a constant. */
static void build_shape_chain(struct mixrt_graph *g, bool symbolic) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 2, (int64_t[]){2, 3});
    if (symbolic) {
        g->values[x].dims[0].value = -1;
        g->values[x].dims[0].param = "N";
    }
    int sh = add_op_node(g, "Shape", 1, (int[]){x}, "sh");
    int one = add_const_values(ctx, g, "one", MIXRT_DTYPE_I64, 0, NULL, (double[]){1});
    int d = add_op_node(g, "Gather", 2, (int[]){sh, one}, "d");
    int ax = add_const_values(ctx, g, "ax", MIXRT_DTYPE_I64, 1, (int64_t[]){1}, (double[]){0});
    int u = add_op_node(g, "Unsqueeze", 2, (int[]){d, ax}, "u");
    int neg = add_const_values(ctx, g, "neg", MIXRT_DTYPE_I64, 1, (int64_t[]){1}, (double[]){-1});
    int shp = add_op_node(g, "Concat", 2, (int[]){neg, u}, "shp");
    set_int(g, shp, "axis", 0);
    int y = add_op_node(g, "Reshape", 2, (int[]){x, shp}, "y");
    graph_set_output(g, y);
}

static void test_shape_fold(void) {
    struct mixrt_graph *g = new_graph();
    build_shape_chain(g, false);
    struct mixrt_tensor *x = tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){2, 3});
    double before[6], after[6];
    TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, before, 6) == 6, "runs before");
    struct mixrt_pass_stats st;
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &st) == MIXRT_STATUS_OK, "passes: %s", mixrt_context_last_error(ctx));
    TU_CHECK(st.shape_folded == 1 && st.const_folded == 3, "shape %d const %d", st.shape_folded, st.const_folded);
    TU_CHECK(g->n_nodes == 1 && count_op(g, "Reshape") == 1, "only the Reshape is left (%d nodes)", g->n_nodes);
    TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, after, 6) == 6 && !memcmp(before, after, sizeof(before)),
             "same result");
    mixrt_graph_destroy(g);

    /* A symbolic batch: the chain reads dim 1, which is known, so the Gather of it folds and
     * the chain collapses all the same. */
    g = new_graph();
    build_shape_chain(g, true);
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &st) == MIXRT_STATUS_OK, "passes");
    TU_CHECK(st.shape_folded == 1 && count_op(g, "Shape") == 0 && g->n_nodes == 1 && count_op(g, "Reshape") == 1,
             "the known dim of a partly symbolic shape folds (%d nodes, %d shape folds)", g->n_nodes,
             st.shape_folded);
    TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, after, 6) == 6 && !memcmp(before, after, sizeof(before)),
             "same result, symbolic");
    mixrt_graph_destroy(g);
    /* Gathers of the symbolic dim, of a negative index, of two dims: only known dims fold. */
    for (int c = 0; c < 3; c++) {
        g = new_graph();
        int xv = add_input(g, "x", MIXRT_DTYPE_F32, 3, (int64_t[]){2, 3, 5});
        g->values[xv].dims[0].value = -1;
        g->values[xv].dims[0].param = "N";
        int sh = add_op_node(g, "Shape", 1, (int[]){xv}, "sh");
        int idx = c == 0 ? add_const_values(ctx, g, "i", MIXRT_DTYPE_I64, 0, NULL, (double[]){0})
                  : c == 1 ? add_const_values(ctx, g, "i", MIXRT_DTYPE_I64, 0, NULL, (double[]){-1})
                           : add_const_values(ctx, g, "i", MIXRT_DTYPE_I32, 1, (int64_t[]){2}, (double[]){2, 1});
        int d = add_op_node(g, "Gather", 2, (int[]){sh, idx}, "d");
        graph_set_output(g, d);
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &st) == MIXRT_STATUS_OK, "passes");
        const struct mixrt_tensor *t = g->values[d].init;
        if (c == 0)
            TU_CHECK(!t && count_op(g, "Shape") == 1, "the symbolic dim's Gather stays");
        else if (c == 1)
            TU_CHECK(t && t->rank == 0 && ((const int64_t *)t->data)[0] == 5, "x.shape[-1] folds to 5");
        else
            TU_CHECK(t && t->rank == 1 && t->dims[0] == 2 && ((const int64_t *)t->data)[0] == 5 &&
                         ((const int64_t *)t->data)[1] == 3,
                     "x.shape[[2, 1]] folds to [5, 3]");
        mixrt_graph_destroy(g);
    }
    mixrt_tensor_destroy(ctx, x);
}

static void test_dce(void) {
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 1, (int64_t[]){4});
    int dead = add_op_node(g, "Relu", 1, (int[]){x}, "dead");
    add_op_node(g, "Exp", 1, (int[]){dead}, "dead2");
    int b = add_op_node(g, "Sigmoid", 1, (int[]){x}, "b"); /* read only by the If's body */
    int c = add_const_values(ctx, g, "c", MIXRT_DTYPE_BOOL, 0, NULL, (double[]){1});
    struct mixrt_graph *sub;
    TU_CHECK(mixrt_graph_create(ctx, g, &sub) == MIXRT_STATUS_OK, "subgraph");
    int sb = mixrt_graph_get_or_add_value(sub, "b");
    sub->values[sb].flags |= MIXRT_VALUE_OUTER;
    int sy = add_op_node(sub, "Identity", 1, (int[]){sb}, "sy");
    graph_set_output(sub, sy);
    TU_CHECK(mixrt_graph_toposort(sub, &sub->order) == MIXRT_STATUS_OK, "subgraph sorts");
    int y = add_op_node(g, "If", 1, (int[]){c}, "y");
    int ni = g->values[y].producer;
    node_attr_add(g, ni, "then_branch", MIXRT_ATTR_GRAPH)->g = sub;
    node_attr_add(g, ni, "else_branch", MIXRT_ATTR_GRAPH)->g = sub;
    /* A dead If whose body holds a constant: removed, and the constant released (the
     * leak check at the end would see it). */
    struct mixrt_graph *sub2;
    TU_CHECK(mixrt_graph_create(ctx, g, &sub2) == MIXRT_STATUS_OK, "subgraph 2");
    graph_set_output(sub2, add_const_values(ctx, sub2, "k", MIXRT_DTYPE_F32, 1, (int64_t[]){3}, (double[]){1, 2, 3}));
    int unused_if = add_op_node(g, "If", 1, (int[]){c}, "unused_if");
    node_attr_add(g, g->values[unused_if].producer, "then_branch", MIXRT_ATTR_GRAPH)->g = sub2;
    int z = add_op_node(g, "Neg", 1, (int[]){x}, "z");
    graph_set_output(g, y);
    graph_set_output(g, z);
    struct mixrt_pass_stats st;
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_DCE, &st) == MIXRT_STATUS_OK, "passes: %s", mixrt_context_last_error(ctx));
    TU_CHECK(st.dead_removed == 3 && g->n_nodes == 3, "Relu, Exp and the unused If removed (%d, %d nodes)", st.dead_removed,
             g->n_nodes);
    TU_CHECK(g->values[b].producer >= 0 && !strcmp(g->nodes[g->values[b].producer].op_type, "Sigmoid"),
             "the Sigmoid a subgraph reads stays");
    TU_CHECK(g->values[dead].producer < 0, "removed node's output has no producer");
    struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 1, (int64_t[]){4});
    double out[4];
    TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){xt}, out, 4) == 4 &&
                 fabs(out[0] - 1 / (1 + exp(4.5))) < 1e-6,
             "runs: %g", out[0]);
    mixrt_tensor_destroy(ctx, xt);
    mixrt_graph_destroy(g);
}

/* x(a) -> Cast(b) -> Cast(a) -> Relu -> y. */
static struct mixrt_graph *cast_pair(mixrt_dtype a, mixrt_dtype b) {
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", a, 1, (int64_t[]){6});
    int c1 = add_op_node(g, "Cast", 1, (int[]){x}, "c1");
    set_int(g, c1, "to", b);
    int c2 = add_op_node(g, "Cast", 1, (int[]){c1}, "c2");
    set_int(g, c2, "to", a);
    int y = add_op_node(g, "Abs", 1, (int[]){c2}, "y");
    graph_set_output(g, y);
    return g;
}

/* An Identity of a constant (TorchScript's per-layer alias of a tied weight) is bypassed, not
 * folded into a copy: both MatMuls read the one constant afterwards, and the result is the
 * same. An Identity of a constant that is itself a graph output stays a node (folded). */
static void test_identity_alias(void) {
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 2, (int64_t[]){2, 3});
    double wv[9];
    for (int i = 0; i < 9; i++) wv[i] = tu_uniform(-1, 1);
    int w = add_const_values(ctx, g, "w", MIXRT_DTYPE_F32, 2, (int64_t[]){3, 3}, wv);
    int w1 = add_op_node(g, "Identity", 1, (int[]){w}, "w1");
    int w2 = add_op_node(g, "Identity", 1, (int[]){w}, "w2");
    int m1 = add_op_node(g, "MatMul", 2, (int[]){x, w1}, "m1");
    int y = add_op_node(g, "MatMul", 2, (int[]){m1, w2}, "y");
    graph_set_output(g, y);
    int wo = add_op_node(g, "Identity", 1, (int[]){w}, "wo");
    graph_set_output(g, wo);
    struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){2, 3});
    double after[6];
    double d = passes_change(g, 1, (const struct mixrt_tensor *[]){xt}, MIXRT_PASS_CONST_FOLD | MIXRT_PASS_DCE, after, 6);
    TU_CHECK(d == 0, "same result after the passes (%g)", d);
    TU_CHECK(count_op(g, "Identity") == 0 && count_op(g, "MatMul") == 2, "Identity nodes gone (%d left)",
             count_op(g, "Identity"));
    int reads = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "MatMul")) reads += g->nodes[i].inputs[1] == w;
    TU_CHECK(reads == 2, "both MatMuls read the constant itself (%d do)", reads);
    TU_CHECK(g->values[g->outputs[1]].init && g->values[g->outputs[1]].init != g->values[w].init,
             "the graph output is a constant of its own");
    mixrt_tensor_destroy(ctx, xt);
    mixrt_graph_destroy(g);
}

static void test_cast(void) {
    static const mixrt_dtype ok[][2] = {
        {MIXRT_DTYPE_F16, MIXRT_DTYPE_F32}, {MIXRT_DTYPE_BF16, MIXRT_DTYPE_F32}, {MIXRT_DTYPE_I32, MIXRT_DTYPE_I64},
        {MIXRT_DTYPE_F32, MIXRT_DTYPE_F64}, {MIXRT_DTYPE_U8, MIXRT_DTYPE_I16},  {MIXRT_DTYPE_I8, MIXRT_DTYPE_F16},
    };
    static const mixrt_dtype lossy[][2] = {
        {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16}, {MIXRT_DTYPE_F32, MIXRT_DTYPE_F16}, {MIXRT_DTYPE_F16, MIXRT_DTYPE_BF16},
        {MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16}, {MIXRT_DTYPE_I64, MIXRT_DTYPE_I32}, {MIXRT_DTYPE_I32, MIXRT_DTYPE_F32},
        {MIXRT_DTYPE_I64, MIXRT_DTYPE_F64},  {MIXRT_DTYPE_I16, MIXRT_DTYPE_U16}, {MIXRT_DTYPE_F32, MIXRT_DTYPE_I32},
    };
    struct mixrt_pass_stats st;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct mixrt_graph *g = cast_pair(ok[i][0], ok[i][1]);
        struct mixrt_tensor *x = tensor(ok[i][0], 1, (int64_t[]){6});
        double before[6], after[6];
        run(g, 1, (const struct mixrt_tensor *[]){x}, before, 6);
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_CAST_ELIM | MIXRT_PASS_DCE, &st) == MIXRT_STATUS_OK, "passes");
        TU_CHECK(st.casts_removed == 2 && g->n_nodes == 1, "%s->%s->%s removed (%d, %d nodes)",
                 mixrt_dtype_name(ok[i][0]), mixrt_dtype_name(ok[i][1]), mixrt_dtype_name(ok[i][0]), st.casts_removed,
                 g->n_nodes);
        TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, after, 6) == 6 && !memcmp(before, after, sizeof(before)),
                 "same result");
        mixrt_tensor_destroy(ctx, x);
        mixrt_graph_destroy(g);
    }
    for (size_t i = 0; i < sizeof(lossy) / sizeof(lossy[0]); i++) {
        struct mixrt_graph *g = cast_pair(lossy[i][0], lossy[i][1]);
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &st) == MIXRT_STATUS_OK, "passes");
        TU_CHECK(st.casts_removed == 0 && count_op(g, "Cast") == 2, "lossy %s->%s->%s stays",
                 mixrt_dtype_name(lossy[i][0]), mixrt_dtype_name(lossy[i][1]), mixrt_dtype_name(lossy[i][0]));
        mixrt_graph_destroy(g);
    }
    /* A Cast to the same dtype: bypassed inside; as the graph output, its producer (Abs,
     * read by nothing else) writes the output directly. */
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", MIXRT_DTYPE_BF16, 1, (int64_t[]){6});
    int c = add_op_node(g, "Cast", 1, (int[]){x}, "c");
    set_int(g, c, "to", MIXRT_DTYPE_BF16);
    int r = add_op_node(g, "Abs", 1, (int[]){c}, "r");
    int y = add_op_node(g, "Cast", 1, (int[]){r}, "y");
    set_int(g, y, "to", MIXRT_DTYPE_BF16);
    graph_set_output(g, y);
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &st) == MIXRT_STATUS_OK, "passes");
    TU_CHECK(st.casts_removed == 2 && g->n_nodes == 1 && count_op(g, "Abs") == 1 && count_op(g, "Cast") == 0 &&
                 g->values[g->outputs[0]].producer == 0,
             "same-dtype casts: one bypassed, one folded into its producer (%d removed, %d nodes)", st.casts_removed,
             g->n_nodes);
    struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_BF16, 1, (int64_t[]){6});
    double out[6];
    TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){xt}, out, 6) == 6 && out[0] == 4.5, "runs");
    mixrt_tensor_destroy(ctx, xt);
    mixrt_graph_destroy(g);
}

/* A lossless Cast A->B then a Cast B->C: the second reads A (one Cast left, or two when the
 * B value is read elsewhere too); a lossy first Cast keeps both. Outputs as before, on random
 * data (integers: small whole numbers). */
static void test_cast_chain(void) {
    static const struct {
        mixrt_dtype a, b, c;
        bool b_out; /* the B value is a graph output too */
        int casts;
    } cases[] = {
        {MIXRT_DTYPE_BF16, MIXRT_DTYPE_F32, MIXRT_DTYPE_F16, false, 1},
        {MIXRT_DTYPE_F16, MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, false, 1},
        {MIXRT_DTYPE_I32, MIXRT_DTYPE_I64, MIXRT_DTYPE_F32, false, 1},
        {MIXRT_DTYPE_F16, MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, true, 2},
        {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16, false, 2}, /* f32 -> bf16 loses */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct mixrt_graph *g = new_graph();
        int x = add_input(g, "x", cases[i].a, 1, (int64_t[]){40});
        int m = add_op_node(g, "Cast", 1, (int[]){x}, "m");
        set_int(g, m, "to", cases[i].b);
        int y = add_op_node(g, "Cast", 1, (int[]){m}, "y");
        set_int(g, y, "to", cases[i].c);
        graph_set_output(g, y);
        if (cases[i].b_out) graph_set_output(g, m);
        struct mixrt_tensor *xt = tensor(cases[i].a, 1, (int64_t[]){40});
        for (size_t j = 0; j < 40; j++)
            mixrt_store_f64(xt->data, cases[i].a, j,
                            mixrt_dtype_is_float(cases[i].a) ? tu_uniform(-70000, 70000) * (j % 3 ? 1e-4 : 1)
                                                             : (double)((int)(tu_rand() % 2001) - 1000));
        double after[80];
        double worst = passes_change(g, 1, (const struct mixrt_tensor *[]){xt}, MIXRT_PASS_CAST_ELIM | MIXRT_PASS_DCE,
                                     after, 80);
        int reads_x = 0;
        for (int n = 0; n < g->n_nodes; n++) reads_x += !strcmp(g->nodes[n].op_type, "Cast") && g->nodes[n].inputs[0] == x;
        TU_CHECK(count_op(g, "Cast") == cases[i].casts && reads_x == (cases[i].casts == 1 ? 1 : cases[i].b_out ? 2 : 1),
                 "cast chain %s->%s->%s: %d Casts, %d read x", mixrt_dtype_name(cases[i].a), mixrt_dtype_name(cases[i].b),
                 mixrt_dtype_name(cases[i].c), count_op(g, "Cast"), reads_x);
        TU_CHECK(worst == 0, "cast chain %s->%s->%s: output changed by %g", mixrt_dtype_name(cases[i].a),
                 mixrt_dtype_name(cases[i].b), mixrt_dtype_name(cases[i].c), worst);
        mixrt_tensor_destroy(ctx, xt);
        mixrt_graph_destroy(g);
    }
}

static struct mixrt_graph *conv_bn(mixrt_dtype dt, bool second_reader, bool bias) {
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", dt, 4, (int64_t[]){1, 2, 4, 4});
    double wv[54], bv[3] = {0.5, -1, 2};
    for (int i = 0; i < 54; i++) wv[i] = ((i * 5) % 9 - 4) * 0.25;
    int w = add_const_values(ctx, g, "w", dt, 4, (int64_t[]){3, 2, 3, 3}, wv);
    int b = add_const_values(ctx, g, "b", dt, 1, (int64_t[]){3}, bv);
    int c = add_op_node(g, "Conv", bias ? 3 : 2, (int[]){x, w, b}, "c");
    set_ints(g, c, "pads", 4, (int64_t[]){1, 1, 1, 1});
    int sc = add_const_values(ctx, g, "scale", dt, 1, (int64_t[]){3}, (double[]){1.5, 0.5, -2});
    int bi = add_const_values(ctx, g, "bias", dt, 1, (int64_t[]){3}, (double[]){0.25, 1, -1});
    int mean = add_const_values(ctx, g, "mean", dt, 1, (int64_t[]){3}, (double[]){0.1, -0.5, 1});
    int var = add_const_values(ctx, g, "var", dt, 1, (int64_t[]){3}, (double[]){1, 4, 0.5});
    int y = add_op_node(g, "BatchNormalization", 5, (int[]){c, sc, bi, mean, var}, "y");
    graph_set_output(g, y);
    if (second_reader) graph_set_output(g, add_op_node(g, "Relu", 1, (int[]){c}, "z"));
    return g;
}

/* Conv then Mul by a constant k of ks dims (a layer scale [3, 1, 1], one value, or a shape the
 * fold must refuse), k on the left when k_first; a residual Add of x's 3-channel twin after it
 * when residual; second_reader: the Conv's output is also a graph output. */
static struct mixrt_graph *conv_mul(mixrt_dtype dt, int kr, const int64_t *kd, bool k_first, bool bias,
                                    bool second_reader) {
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", dt, 4, (int64_t[]){1, 2, 4, 4});
    double wv[54], bv[3], kv[48];
    for (int i = 0; i < 54; i++) wv[i] = tu_uniform(-1, 1);
    for (int i = 0; i < 3; i++) bv[i] = tu_uniform(-1, 1);
    for (int i = 0; i < 48; i++) kv[i] = tu_uniform(-2, 2);
    int w = add_const_values(ctx, g, "w", dt, 4, (int64_t[]){3, 2, 3, 3}, wv);
    int b = add_const_values(ctx, g, "b", dt, 1, (int64_t[]){3}, bv);
    int c = add_op_node(g, "Conv", bias ? 3 : 2, (int[]){x, w, b}, "c");
    set_ints(g, c, "pads", 4, (int64_t[]){1, 1, 1, 1});
    int k = add_const_values(ctx, g, "k", dt, kr, kd, kv);
    int y = add_op_node(g, "Mul", 2, k_first ? (int[]){k, c} : (int[]){c, k}, "y");
    graph_set_output(g, y);
    if (second_reader) graph_set_output(g, c);
    return g;
}

static void test_conv_mul(void) {
    static const mixrt_dtype dts[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};
    static const struct {
        int r;
        int64_t d[4];
        bool folds;
    } ks[] = {{3, {3, 1, 1}, true},  {4, {1, 3, 1, 1}, true}, {1, {1}, true},    {0, {0}, true},
              {1, {4}, false} /* on the last axis (W = 4): not per channel */,
              {3, {3, 4, 4}, false} /* per element */,  {4, {1, 1, 4, 1}, false}};
    struct mixrt_pass_stats st;
    for (size_t d = 0; d < 2; d++)
        for (size_t kc = 0; kc < sizeof(ks) / sizeof(ks[0]); kc++)
            for (int variant = 0; variant < 4; variant++) {
                bool k_first = variant & 1, bias = variant & 2;
                if (!ks[kc].folds && variant) continue;
                struct mixrt_graph *g = conv_mul(dts[d], ks[kc].r, ks[kc].d, k_first, bias, false);
                struct mixrt_tensor *x = tensor(dts[d], 4, (int64_t[]){1, 2, 4, 4});
                double before[48], after[48];
                TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, before, 48) == 48, "runs before");
                TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_CONV_BN | MIXRT_PASS_CONST_FOLD | MIXRT_PASS_DCE, &st) == MIXRT_STATUS_OK, "passes: %s",
                         mixrt_context_last_error(ctx));
                TU_CHECK(count_op(g, "Mul") == (ks[kc].folds ? 0 : 1) && count_op(g, "Conv") == 1,
                         "Mul by k of rank %d (%s, k first %d, bias %d): %d Mul left, expected %d", ks[kc].r,
                         mixrt_dtype_name(dts[d]), k_first, bias, count_op(g, "Mul"), ks[kc].folds ? 0 : 1);
                TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, after, 48) == 48, "runs after");
                /* bf16: W * k rounds once where Conv then Mul rounded twice */
                double tol = dts[d] == MIXRT_DTYPE_F32 ? 1e-5 : 0.05, worst = 0;
                for (int i = 0; i < 48; i++) {
                    double e = fabs(before[i] - after[i]) / (1 + fabs(before[i]));
                    if (e > worst) worst = e;
                }
                TU_CHECK(worst <= tol, "folded Conv matches Conv * k (rank %d, %s, k first %d, bias %d): worst %g",
                         ks[kc].r, mixrt_dtype_name(dts[d]), k_first, bias, worst);
                mixrt_tensor_destroy(ctx, x);
                mixrt_graph_destroy(g);
            }
    /* the Conv's output read elsewhere too: no fold */
    struct mixrt_graph *g = conv_mul(MIXRT_DTYPE_F32, 3, (int64_t[]){3, 1, 1}, false, true, true);
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_CONV_BN | MIXRT_PASS_CONST_FOLD | MIXRT_PASS_DCE, &st) == MIXRT_STATUS_OK && count_op(g, "Mul") == 1,
             "a Conv read twice keeps its Mul");
    mixrt_graph_destroy(g);
}

/* ConvTranspose with kernel == stride (MIXRT_PASS_CONV_CPU) becomes a 1x1 Conv and a CRD
 * DepthToSpace computing the same (random weights and bias, f32 and bf16, strides 2 and 3,
 * with and without bias); with padding, two groups, a kernel larger than the stride, output
 * padding, or without MIXRT_PASS_CONV_CPU (CUDA engines), it stays. */
static struct mixrt_graph *deconv(mixrt_dtype dt, int64_t ci, int64_t co, int64_t k, int64_t s, int group, bool bias) {
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", dt, 4, (int64_t[]){2, ci, 3, 5});
    size_t nw = (size_t)(ci * co / group * k * k);
    double wv[512], bv[16];
    for (size_t i = 0; i < nw && i < 512; i++) wv[i] = tu_uniform(-1, 1);
    for (int i = 0; i < 16; i++) bv[i] = tu_uniform(-1, 1);
    int w = add_const_values(ctx, g, "w", dt, 4, (int64_t[]){ci, co / group, k, k}, wv);
    int b = add_const_values(ctx, g, "b", dt, 1, (int64_t[]){co}, bv);
    int y = add_op_node(g, "ConvTranspose", bias ? 3 : 2, (int[]){x, w, b}, "y");
    set_ints(g, y, "strides", 2, (int64_t[]){s, s});
    if (group > 1) set_int(g, y, "group", group);
    graph_set_output(g, y);
    return g;
}

static void test_deconv_d2s(void) {
    static const mixrt_dtype dts[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};
    struct mixrt_pass_stats st;
    const unsigned flags = MIXRT_PASS_CONV_BN | MIXRT_PASS_CONV_CPU | MIXRT_PASS_DCE;
    for (size_t d = 0; d < 2; d++)
        for (int s = 2; s <= 3; s++)
            for (int bias = 0; bias < 2; bias++) {
                struct mixrt_graph *g = deconv(dts[d], 3, 4, s, s, 1, bias);
                struct mixrt_tensor *x = tensor(dts[d], 4, (int64_t[]){2, 3, 3, 5});
                for (size_t i = 0; i < mixrt_tensor_numel(x); i++) mixrt_store_f64(x->data, dts[d], i, tu_uniform(-2, 2));
                size_t n = (size_t)(2 * 4 * 3 * s * 5 * s);
                double before[1080], after[1080];
                TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, before, 1080) == n, "runs before");
                TU_CHECK(mixrt_passes_run(g, flags, &st) == MIXRT_STATUS_OK, "passes: %s", mixrt_context_last_error(ctx));
                TU_CHECK(count_op(g, "ConvTranspose") == 0 && count_op(g, "Conv") == 1 && count_op(g, "DepthToSpace") == 1,
                         "k%d s%d ConvTranspose (%s, bias %d) became Conv + DepthToSpace", s, s,
                         mixrt_dtype_name(dts[d]), bias);
                TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, after, 1080) == n, "runs after");
                double worst = 0;
                for (size_t i = 0; i < n; i++) {
                    double e = fabs(before[i] - after[i]) / (1 + fabs(before[i]));
                    if (e > worst) worst = e;
                }
                /* one tap per pixel: the same products and sums in the same dtype (bf16: one rounding) */
                TU_CHECK(worst <= (dts[d] == MIXRT_DTYPE_F32 ? 1e-6 : 1e-2), "Conv + DepthToSpace matches (%s, s%d, "
                         "bias %d): worst %g", mixrt_dtype_name(dts[d]), s, bias, worst);
                mixrt_tensor_destroy(ctx, x);
                mixrt_graph_destroy(g);
            }
    for (int c = 0; c < 5; c++) {
        struct mixrt_graph *g = c == 1 ? deconv(MIXRT_DTYPE_F32, 4, 4, 2, 2, 2, true)
                                : c == 2 ? deconv(MIXRT_DTYPE_F32, 3, 4, 3, 2, 1, true)
                                         : deconv(MIXRT_DTYPE_F32, 3, 4, 2, 2, 1, true);
        int y = mixrt_graph_find_value(g, "y");
        if (c == 0) set_ints(g, y, "pads", 4, (int64_t[]){1, 0, 1, 0});
        if (c == 3) set_ints(g, y, "output_padding", 2, (int64_t[]){1, 1});
        TU_CHECK(mixrt_passes_run(g, c == 4 ? flags & ~MIXRT_PASS_CONV_CPU : flags, &st) == MIXRT_STATUS_OK, "passes");
        TU_CHECK(count_op(g, "ConvTranspose") == 1 && count_op(g, "DepthToSpace") == 0,
                 "case %d (pads / group 2 / k3 s2 / output_padding / CUDA flags): ConvTranspose stays", c);
        mixrt_graph_destroy(g);
    }
}

static void test_conv_bn(void) {
    static const mixrt_dtype dts[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};
    struct mixrt_pass_stats st;
    for (size_t d = 0; d < 2; d++)
        for (int bias = 0; bias < 2; bias++) {
            struct mixrt_graph *g = conv_bn(dts[d], false, bias);
            struct mixrt_tensor *x = tensor(dts[d], 4, (int64_t[]){1, 2, 4, 4});
            double before[48], after[48];
            TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, before, 48) == 48, "runs before");
            TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &st) == MIXRT_STATUS_OK, "passes: %s",
                     mixrt_context_last_error(ctx));
            TU_CHECK(st.conv_bn_folded == 1 && g->n_nodes == 1 && count_op(g, "Conv") == 1, "BN folded (%s, bias %d)",
                     mixrt_dtype_name(dts[d]), bias);
            TU_CHECK(g->values[g->nodes[0].inputs[1]].init->dtype == dts[d], "new weights keep the weight dtype");
            TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, after, 48) == 48, "runs after");
            double tol = dts[d] == MIXRT_DTYPE_F32 ? 1e-5 : 0.1, worst = 0;
            for (int i = 0; i < 48; i++) {
                double e = fabs(before[i] - after[i]) / (1 + fabs(before[i]));
                if (e > worst) worst = e;
            }
            TU_CHECK(worst <= tol, "folded Conv matches Conv+BN (%s): worst %g", mixrt_dtype_name(dts[d]), worst);
            mixrt_tensor_destroy(ctx, x);
            mixrt_graph_destroy(g);
        }
    /* A BN whose Conv output has a second reader is not folded into that Conv: it becomes a
     * depthwise 1x1 Conv of its own (scale / sqrt(var + eps), bias - mean * that), both
     * outputs as before (f32 and bf16, whose 1x1 weights round once). */
    for (size_t d = 0; d < 2; d++) {
        struct mixrt_graph *g = conv_bn(dts[d], true, true);
        struct mixrt_tensor *x = tensor(dts[d], 4, (int64_t[]){1, 2, 4, 4});
        double before[48], after[48];
        TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, before, 48) == 48, "runs before");
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_CONV_BN | MIXRT_PASS_CONST_FOLD | MIXRT_PASS_DCE, &st) == MIXRT_STATUS_OK,
                 "passes"); /* const folding asks for shapes: the rewrite needs C */
        const struct mixrt_node *dw = NULL;
        for (int i = 0; i < g->n_nodes; i++)
            if (!strcmp(g->nodes[i].op_type, "Conv") && mixrt_node_attr_int(&g->nodes[i], "group", 1) == 3)
                dw = &g->nodes[i];
        TU_CHECK(count_op(g, "BatchNormalization") == 0 && count_op(g, "Conv") == 2 && dw &&
                     g->values[dw->inputs[1]].init->dtype == dts[d],
                 "BN after a Conv read twice becomes a depthwise 1x1 Conv (%s)", mixrt_dtype_name(dts[d]));
        TU_CHECK(run(g, 1, (const struct mixrt_tensor *[]){x}, after, 48) == 48, "runs after");
        double tol = dts[d] == MIXRT_DTYPE_F32 ? 1e-5 : 0.02, worst = 0;
        for (int i = 0; i < 48; i++) {
            double e = fabs(before[i] - after[i]) / (1 + fabs(before[i]));
            if (e > worst) worst = e;
        }
        TU_CHECK(worst <= tol, "depthwise BN matches BN (%s): worst %g", mixrt_dtype_name(dts[d]), worst);
        mixrt_tensor_destroy(ctx, x);
        mixrt_graph_destroy(g);
    }
    struct mixrt_graph *g;
    /* Weights that are overridable inputs are not folded into. */
    g = conv_bn(MIXRT_DTYPE_F32, false, true);
    g->values[mixrt_graph_find_value(g, "w")].flags |= MIXRT_VALUE_GRAPH_INPUT;
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_CONV_BN, &st) == MIXRT_STATUS_OK && st.conv_bn_folded == 0,
             "overridable weights stay");
    mixrt_graph_destroy(g);
}

/* Einsum lowering: equations that are batched products become Transpose/MatMul/Transpose and
 * compute what the reference Einsum computes (random inputs); others stay Einsums. */
static void test_einsum(void) {
    static const struct {
        const char *eq;
        int ra, rb;
        int64_t da[4], db[4];
        bool lowered;
    } cases[] = {
        {"bhqd,bhkd->bhqk", 4, 4, {2, 3, 5, 4}, {2, 3, 6, 4}, true},
        {"bij,bjk->bik", 3, 3, {3, 4, 5}, {3, 5, 2}, true},
        {"ibh,jbh->bij", 3, 3, {4, 3, 5}, {6, 3, 5}, true},
        {"bqd, bkd -> bkq", 3, 3, {2, 4, 3}, {2, 5, 3}, true},
        {"ij,jk->ik", 2, 2, {3, 4}, {4, 5}, true},
        /* several letters per role (XLNet, Funnel), an outer product */
        {"ibh,hnd->ibnd", 3, 3, {4, 2, 6}, {6, 3, 5}, true},
        {"ibnd,hnd->ibh", 4, 3, {4, 2, 3, 5}, {6, 3, 5}, true},
        {"binh,tnh->bnit", 4, 3, {2, 4, 3, 5}, {6, 3, 5}, true},
        {"bind,snd->bnis", 4, 3, {2, 4, 3, 5}, {6, 3, 5}, true},
        {"td,dnh->tnh", 2, 3, {4, 6}, {6, 3, 5}, true},
        {"ij,kl->ijkl", 2, 2, {3, 2}, {4, 5}, true},
        {"bij,bjk->bk", 3, 3, {2, 3, 4}, {2, 4, 5}, false},
        {"ij,ij->ij", 2, 2, {3, 4}, {3, 4}, false},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct mixrt_graph *g = new_graph();
        int a = add_input(g, "a", MIXRT_DTYPE_F32, cases[c].ra, cases[c].da);
        int b = add_input(g, "b", MIXRT_DTYPE_F32, cases[c].rb, cases[c].db);
        int y = add_op_node(g, "Einsum", 2, (int[]){a, b}, "y");
        g->nodes[g->values[y].producer].opset = 12;
        struct mixrt_attr *eq = node_attr_add(g, g->values[y].producer, "equation", MIXRT_ATTR_STRING);
        eq->s = cases[c].eq;
        eq->s_len = strlen(cases[c].eq);
        graph_set_output(g, y);
        struct mixrt_tensor *ta = tensor(MIXRT_DTYPE_F32, cases[c].ra, cases[c].da);
        struct mixrt_tensor *tb = tensor(MIXRT_DTYPE_F32, cases[c].rb, cases[c].db);
        tu_seed(0xe1500u + c);
        for (size_t i = 0; i < mixrt_tensor_numel(ta); i++) ((float *)ta->data)[i] = (float)tu_uniform(-1, 1);
        for (size_t i = 0; i < mixrt_tensor_numel(tb); i++) ((float *)tb->data)[i] = (float)tu_uniform(-1, 1);
        double before[256], after[256];
        const struct mixrt_tensor *in[2] = {ta, tb};
        size_t n = run(g, 2, in, before, 256);
        struct mixrt_pass_stats st;
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &st) == MIXRT_STATUS_OK, "%s: passes: %s", cases[c].eq,
                 mixrt_context_last_error(ctx));
        bool lowered = count_op(g, "Einsum") == 0 && count_op(g, "MatMul") == 1;
        TU_CHECK(lowered == cases[c].lowered && st.einsum_lowered == (cases[c].lowered ? 1 : 0),
                 "%s: lowered %d (expected %d), %d Einsums, %d MatMuls", cases[c].eq, lowered, cases[c].lowered,
                 count_op(g, "Einsum"), count_op(g, "MatMul"));
        size_t m = run(g, 2, in, after, 256);
        TU_CHECK(n > 0 && m == n, "%s: %zu outputs before, %zu after", cases[c].eq, n, m);
        double worst = 0;
        for (size_t i = 0; i < n && i < m; i++) {
            double e = fabs(before[i] - after[i]);
            if (e > worst) worst = e;
        }
        TU_CHECK(worst <= 1e-5, "%s: lowered graph differs from the Einsum by %g", cases[c].eq, worst);
        mixrt_tensor_destroy(ctx, ta);
        mixrt_tensor_destroy(ctx, tb);
        mixrt_graph_destroy(g);
    }
    /* One operand: a permutation becomes a Transpose (XLNet's "ijbn->bnij"); a diagonal stays. */
    static const struct {
        const char *eq;
        int r;
        int64_t d[4];
        bool lowered;
    } ones[] = {{"ijbn->bnij", 4, {2, 3, 4, 5}, true}, {"ii->i", 2, {4, 4}, false}};
    for (size_t c = 0; c < sizeof(ones) / sizeof(ones[0]); c++) {
        struct mixrt_graph *g = new_graph();
        int a = add_input(g, "a", MIXRT_DTYPE_F32, ones[c].r, ones[c].d);
        int y = add_op_node(g, "Einsum", 1, (int[]){a}, "y");
        g->nodes[g->values[y].producer].opset = 12;
        struct mixrt_attr *eq = node_attr_add(g, g->values[y].producer, "equation", MIXRT_ATTR_STRING);
        eq->s = ones[c].eq;
        eq->s_len = strlen(ones[c].eq);
        graph_set_output(g, y);
        struct mixrt_tensor *ta = tensor(MIXRT_DTYPE_F32, ones[c].r, ones[c].d);
        tu_seed(0xe1600u + c);
        for (size_t i = 0; i < mixrt_tensor_numel(ta); i++) ((float *)ta->data)[i] = (float)tu_uniform(-1, 1);
        double before[256], after[256];
        const struct mixrt_tensor *in[1] = {ta};
        size_t n = run(g, 1, in, before, 256);
        struct mixrt_pass_stats st;
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &st) == MIXRT_STATUS_OK, "%s: passes", ones[c].eq);
        bool lowered = count_op(g, "Einsum") == 0;
        TU_CHECK(lowered == ones[c].lowered, "%s: lowered %d (expected %d)", ones[c].eq, lowered, ones[c].lowered);
        size_t m = run(g, 1, in, after, 256);
        TU_CHECK(n > 0 && m == n, "%s: %zu outputs before, %zu after", ones[c].eq, n, m);
        for (size_t i = 0; i < n && i < m; i++)
            if (before[i] != after[i]) {
                TU_CHECK(false, "%s: element %zu is %g, the Einsum's %g", ones[c].eq, i, after[i], before[i]);
                break;
            }
        mixrt_tensor_destroy(ctx, ta);
        mixrt_graph_destroy(g);
    }
}

/* Sibling products merged (MIXRT_PASS_MERGE_MATMUL): three biased products of one input with
 * different widths become one FusedMatMul and a Split, two bias-less MatMuls another, a product
 * with its own activation (Relu) stays alone; the graph computes what it did (random x and
 * weights). Under opset 11 the Split takes its sizes as an attribute. */
static void test_merge_matmul(void) {
    for (int opset = 11; opset <= 17; opset += 6) {
        struct mixrt_graph *g = new_graph();
        TU_CHECK(mixrt_graph_require_opset(g, "", opset) == MIXRT_STATUS_OK, "opset");
        tu_seed(0x3e59e0u + (unsigned)opset);
        int x = add_input(g, "x", MIXRT_DTYPE_F32, 3, (int64_t[]){2, 5, 16});
        static const char *const names[] = {"q", "k", "v", "u", "p1", "p2"};
        static const int64_t widths[] = {8, 8, 12, 4, 6, 10};
        int outs[6];
        for (int i = 0; i < 6; i++) {
            char wn[16], bn[16], mn[16];
            snprintf(wn, sizeof wn, "w_%s", names[i]);
            snprintf(bn, sizeof bn, "b_%s", names[i]);
            snprintf(mn, sizeof mn, "mm_%s", names[i]);
            int w = add_const_uniform(ctx, g, wn, MIXRT_DTYPE_F32, 2, (int64_t[]){16, widths[i]}, 1.0);
            int y = add_op_node(g, "MatMul", 2, (int[]){x, w}, i < 4 ? mn : names[i]);
            if (i < 4) {
                int b = add_const_uniform(ctx, g, bn, MIXRT_DTYPE_F32, 1, &widths[i], 1.0);
                y = add_op_node(g, "Add", 2, (int[]){y, b}, i == 3 ? "u_pre" : names[i]);
            }
            if (i == 3) y = add_op_node(g, "Relu", 1, &y, names[i]);
            outs[i] = y;
        }
        int cat = add_op_node(g, "Concat", 6, outs, "cat");
        set_int(g, cat, "axis", -1);
        graph_set_output(g, cat);
        TU_CHECK(mixrt_graph_infer(g, NULL) == MIXRT_STATUS_OK, "infer: %s", mixrt_context_last_error(ctx));
        struct mixrt_tensor *tx = tensor(MIXRT_DTYPE_F32, 3, (int64_t[]){2, 5, 16});
        for (size_t i = 0; i < mixrt_tensor_numel(tx); i++) ((float *)tx->data)[i] = (float)tu_uniform(-1, 1);
        double before[480], after[480];
        const struct mixrt_tensor *in[1] = {tx};
        size_t n = run(g, 1, in, before, 480);
        struct mixrt_pass_stats st;
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL | MIXRT_PASS_MERGE_MATMUL, &st) == MIXRT_STATUS_OK,
                 "opset %d: passes: %s", opset, mixrt_context_last_error(ctx));
        TU_CHECK(st.matmul_merged == 3 && count_op(g, "FusedMatMul") == 3 && count_op(g, "Split") == 2 &&
                     count_op(g, "MatMul") == 0,
                 "opset %d: %d merged, %d FusedMatMul, %d Split, %d MatMul (expected 3, 3, 2, 0)", opset,
                 st.matmul_merged, count_op(g, "FusedMatMul"), count_op(g, "Split"), count_op(g, "MatMul"));
        size_t m = run(g, 1, in, after, 480);
        TU_CHECK(n == 480 && m == n, "opset %d: %zu outputs before, %zu after", opset, n, m);
        double worst = 0;
        for (size_t i = 0; i < n && i < m; i++) worst = fmax(worst, fabs(before[i] - after[i]));
        TU_CHECK(worst <= 1e-5, "opset %d: merged products differ by %g", opset, worst);
        mixrt_tensor_destroy(ctx, tx);
        mixrt_graph_destroy(g);
    }
}

/* Sibling 1x1 convs merged (MIXRT_PASS_MERGE_CONV): channels-last FusedConvs of one input X
 * [2, 5, 6, 16]. Merged: three biased ReLU convs of 8, 12 and 5 channels into one and a Split;
 * two bias-less ReLU convs (3 and 7) into another. Left alone: one without the activation, one
 * with LeakyRelu's other slope (0.2 beside 0.1: the parameters must match), a 3x3, a stride-2
 * 1x1, one with a residual Z, and a conv of another input. The graph computes what it did
 * (random x and weights), and a member's output read by two nodes still reaches both. */
static void test_merge_conv(void) {
    struct mixrt_graph *g = new_graph();
    TU_CHECK(mixrt_graph_require_opset(g, "", 17) == MIXRT_STATUS_OK, "opset");
    TU_CHECK(mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION) == MIXRT_STATUS_OK, "opset");
    tu_seed(0x3e5c07u);
    const int64_t xd[4] = {2, 5, 6, 16};
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, xd);
    int x2 = add_input(g, "x2", MIXRT_DTYPE_F32, 4, xd);
    static const struct {
        int64_t m, k, s;
        bool bias;
        const char *act;
        float slope;
        bool other_x, z;
    } cs[] = {{8, 1, 1, true, "Relu", 0, false, false},       {12, 1, 1, true, "Relu", 0, false, false},
              {3, 1, 1, false, "Relu", 0, false, false},      {5, 1, 1, true, "Relu", 0, false, false},
              {6, 1, 1, true, "", 0, false, false},           {4, 1, 1, true, "LeakyRelu", 0.1f, false, false},
              {4, 1, 1, true, "LeakyRelu", 0.2f, false, false}, {4, 3, 1, true, "Relu", 0, false, false},
              {4, 1, 2, true, "Relu", 0, false, false},       {16, 1, 1, true, "Relu", 0, false, true},
              {4, 1, 1, true, "Relu", 0, true, false},        {7, 1, 1, false, "Relu", 0, false, false}};
    enum { NC = sizeof(cs) / sizeof(cs[0]) };
    int outs[NC + 1], n_out = 0;
    for (int i = 0; i < NC; i++) {
        char wn[16], bn[16], cn[16], yn[16];
        snprintf(wn, sizeof wn, "w%d", i);
        snprintf(bn, sizeof bn, "b%d", i);
        snprintf(cn, sizeof cn, "conv%d", i);
        snprintf(yn, sizeof yn, "y%d", i);
        int w = add_const_uniform(ctx, g, wn, MIXRT_DTYPE_F32, 4, (int64_t[]){cs[i].m, 16, cs[i].k, cs[i].k}, 0.5);
        int b = cs[i].bias ? add_const_uniform(ctx, g, bn, MIXRT_DTYPE_F32, 1, &cs[i].m, 0.5) : -1;
        const int64_t p = cs[i].k / 2, pads[4] = {p, p, p, p};
        const int64_t oh = (xd[1] - 1) / cs[i].s + 1, ow = (xd[2] - 1) / cs[i].s + 1;
        int ni = add_fused_conv_nhwc(g, cn, cs[i].other_x ? x2 : x, w, b, cs[i].z ? x : -1, yn, MIXRT_DTYPE_F32,
                                     (int64_t[]){2, oh, ow, cs[i].m}, cs[i].k, cs[i].k, pads);
        for (int a = 0; cs[i].s == 2 && a < g->nodes[ni].n_attrs; a++) /* the helper's strides, 2 */
            if (!strcmp(g->nodes[ni].attrs[a].name, "strides")) g->nodes[ni].attrs[a].ints[0] = g->nodes[ni].attrs[a].ints[1] = 2;
        if (cs[i].act[0]) node_attr_str(g, ni, "activation", cs[i].act);
        if (cs[i].slope != 0) node_attr_floats(g, ni, "activation_params", 1, &cs[i].slope);
        int y = g->nodes[ni].outputs[0];
        /* every output flattened, so the stride-2 one joins the others */
        char sn[16], fn[16];
        snprintf(sn, sizeof sn, "shape%d", i);
        snprintf(fn, sizeof fn, "flat%d", i);
        int sh = add_const_values(ctx, g, sn, MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){2, -1});
        outs[n_out++] = add_op_node(g, "Reshape", 2, (int[]){y, sh}, fn);
        if (i == 1) { /* y1 read twice */
            int ng = add_op_node(g, "Neg", 1, &y, "neg1");
            int sh2 = add_const_values(ctx, g, "shape_neg", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){2, -1});
            outs[n_out++] = add_op_node(g, "Reshape", 2, (int[]){ng, sh2}, "flat_neg");
        }
    }
    int cat = add_op_node(g, "Concat", n_out, outs, "cat");
    set_int(g, cat, "axis", 1);
    graph_set_output(g, cat);
    TU_CHECK(mixrt_graph_infer(g, NULL) == MIXRT_STATUS_OK, "infer: %s", mixrt_context_last_error(ctx));
    struct mixrt_tensor *tx = tensor(MIXRT_DTYPE_F32, 4, xd), *tx2 = tensor(MIXRT_DTYPE_F32, 4, xd);
    for (size_t i = 0; i < mixrt_tensor_numel(tx); i++) ((float *)tx->data)[i] = (float)tu_uniform(-1, 1);
    for (size_t i = 0; i < mixrt_tensor_numel(tx2); i++) ((float *)tx2->data)[i] = (float)tu_uniform(-1, 1);
    enum { CAP = 8192 };
    static double before[CAP], after[CAP];
    const struct mixrt_tensor *in[2] = {tx, tx2};
    size_t n = run(g, 2, in, before, CAP);
    struct mixrt_pass_stats st;
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_MERGE_CONV | MIXRT_PASS_DCE, &st) == MIXRT_STATUS_OK, "passes: %s",
             mixrt_context_last_error(ctx));
    int live = 0;
    for (int i = 0; i < g->n_nodes; i++) live += !strcmp(g->nodes[i].op_type, "FusedConv");
    TU_CHECK(st.conv_merged == 3 && live == NC - 3 && count_op(g, "Split") == 2,
             "%d merged, %d FusedConv, %d Split (expected 3, %d, 2)", st.conv_merged, live, count_op(g, "Split"),
             NC - 3);
    size_t m = run(g, 2, in, after, CAP);
    TU_CHECK(n > 0 && n < CAP && m == n, "%zu outputs before, %zu after", n, m);
    double worst = 0;
    for (size_t i = 0; i < n && i < m; i++) worst = fmax(worst, fabs(before[i] - after[i]));
    TU_CHECK(worst == 0, "merged convs differ by %g", worst);
    mixrt_tensor_destroy(ctx, tx);
    mixrt_tensor_destroy(ctx, tx2);
    mixrt_graph_destroy(g);
}

/* Infers g's shapes and runs it on random input x (dims xd): every graph output's inferred dims
 * must be known and equal the reference kernels' actual output dims. */
static void check_inferred(struct mixrt_graph *g, const char *what, int xr, const int64_t *xd) {
    int contradictions = -1;
    TU_CHECK(mixrt_graph_infer(g, &contradictions) == MIXRT_STATUS_OK && contradictions == 0, "%s: infer: %s", what,
             mixrt_context_last_error(ctx));
    struct mixrt_tensor *x = tensor(MIXRT_DTYPE_F32, xr, xd), outs[4];
    memset(outs, 0, sizeof(outs));
    const struct mixrt_tensor *in[1] = {x};
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "%s: toposort", what);
    mixrt_status st = mixrt_exec_graph(ctx, g, NULL, 1, in, NULL, outs, NULL, NULL);
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: exec: %s", what, mixrt_context_last_error(ctx));
    for (int o = 0; st == MIXRT_STATUS_OK && o < g->n_outputs; o++) {
        const struct mixrt_value *v = &g->values[g->outputs[o]];
        bool same = v->rank == outs[o].rank;
        for (int d = 0; same && d < v->rank; d++) same = v->dims[d].value == outs[o].dims[d];
        char a[128], b[128];
        int64_t vd[MIXRT_MAX_RANK];
        for (int d = 0; d < v->rank && d < MIXRT_MAX_RANK; d++) vd[d] = v->dims[d].value;
        TU_CHECK(same, "%s output %d: inferred %s, the kernel made %s", what, o,
                 v->rank >= 0 ? mixrt_dims_str(a, sizeof(a), v->rank, vd) : "unknown",
                 mixrt_dims_str(b, sizeof(b), outs[o].rank, outs[o].dims));
    }
    for (int o = 0; o < g->n_outputs; o++) mixrt_tensor_release(ctx, &outs[o]);
    mixrt_tensor_destroy(ctx, x);
    mixrt_graph_destroy(g);
}

/* Shape inference of the data-movement and reduction ops (sizes from constants and attributes),
 * each against the dims the reference kernel produces. */
static void test_infer_data_ops(void) {
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 3, (int64_t[]){3, 5, 4});
    int i = add_const_values(ctx, g, "i", MIXRT_DTYPE_I64, 2, (int64_t[]){2, 2}, (double[]){0, 4, -1, 2});
    int y = add_op_node(g, "Gather", 2, (int[]){x, i}, "y");
    node_attr_int(g, g->values[y].producer, "axis", 1);
    graph_set_output(g, y);
    check_inferred(g, "Gather axis 1", 3, (int64_t[]){3, 5, 4});

    /* GatherElements: the indices' shape (RoBERTa's position ids), IsNaN: x's shape. */
    g = new_graph();
    x = add_input(g, "x", MIXRT_DTYPE_F32, 2, (int64_t[]){3, 5});
    i = add_const_values(ctx, g, "i", MIXRT_DTYPE_I64, 2, (int64_t[]){3, 2}, (double[]){0, 4, -1, 2, 3, 3});
    y = add_op_node(g, "GatherElements", 2, (int[]){x, i}, "y");
    node_attr_int(g, g->values[y].producer, "axis", 1);
    graph_set_output(g, y);
    graph_set_output(g, add_op_node(g, "IsNaN", 1, (int[]){x}, "nan"));
    check_inferred(g, "GatherElements axis 1, IsNaN", 2, (int64_t[]){3, 5});

    /* The fusions' com.mixrt FusedMatMul (transB both ways) and Gelu get shapes too. */
    for (int tb = 0; tb < 2; tb++) {
        g = new_graph();
        TU_CHECK(mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION) == MIXRT_STATUS_OK, "opset");
        x = add_input(g, "x", MIXRT_DTYPE_F32, 3, (int64_t[]){2, 3, 4});
        double wv[20];
        for (int k = 0; k < 20; k++) wv[k] = 0.1 * (k % 7) - 0.3;
        int w = add_const_values(ctx, g, "w", MIXRT_DTYPE_F32, 2, tb ? (int64_t[]){5, 4} : (int64_t[]){4, 5}, wv);
        y = add_op_node(g, "FusedMatMul", 2, (int[]){x, w}, "y");
        struct mixrt_node *fm = &g->nodes[g->values[y].producer];
        fm->domain = MIXRT_DOMAIN, fm->opset = MIXRT_DOMAIN_VERSION;
        if (tb) node_attr_int(g, g->values[y].producer, "transB", 1);
        int ge = add_op_node(g, "Gelu", 1, (int[]){y}, "ge");
        struct mixrt_node *gn = &g->nodes[g->values[ge].producer];
        gn->domain = MIXRT_DOMAIN, gn->opset = MIXRT_DOMAIN_VERSION;
        graph_set_output(g, y);
        graph_set_output(g, ge);
        check_inferred(g, tb ? "com.mixrt FusedMatMul transB, Gelu" : "com.mixrt FusedMatMul, Gelu", 3,
                       (int64_t[]){2, 3, 4});
    }

    /* TopK (both outputs, k from a constant) and ArgMax / ArgMin with and without keepdims;
     * their dtypes too (i64 indices). */
    g = new_graph();
    x = add_input(g, "x", MIXRT_DTYPE_F32, 3, (int64_t[]){4, 7, 6});
    int kv = add_const_values(ctx, g, "k", MIXRT_DTYPE_I64, 1, (int64_t[]){1}, (double[]){3});
    y = add_op_node(g, "TopK", 2, (int[]){x, kv}, "y");
    int tp = g->values[y].producer;
    node_attr_int(g, tp, "axis", 1);
    int yi = mixrt_graph_get_or_add_value(g, "yi");
    int *touts = mixrt_arena_calloc(g->arena, 2, sizeof(int));
    touts[0] = y, touts[1] = yi;
    g->nodes[tp].outputs = touts, g->nodes[tp].n_outputs = 2;
    g->values[yi].producer = tp;
    graph_set_output(g, y);
    graph_set_output(g, yi);
    int am = add_op_node(g, "ArgMax", 1, (int[]){x}, "am");
    node_attr_int(g, g->values[am].producer, "axis", -1);
    node_attr_int(g, g->values[am].producer, "keepdims", 0);
    graph_set_output(g, am);
    int an = add_op_node(g, "ArgMin", 1, (int[]){x}, "an");
    graph_set_output(g, an); /* axis 0, kept */
    TU_CHECK(mixrt_graph_infer(g, NULL) == MIXRT_STATUS_OK && g->values[yi].dtype == MIXRT_DTYPE_I64 &&
                 g->values[am].dtype == MIXRT_DTYPE_I64 && g->values[y].dtype == MIXRT_DTYPE_F32,
             "TopK / ArgMax dtypes: values f32, indices i64");
    check_inferred(g, "TopK, ArgMax, ArgMin", 3, (int64_t[]){4, 7, 6});

    g = new_graph();
    x = add_input(g, "x", MIXRT_DTYPE_F32, 4, (int64_t[]){2, 1, 3, 1});
    int ax = add_const_values(ctx, g, "ax", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){1, -1});
    graph_set_output(g, add_op_node(g, "Squeeze", 2, (int[]){x, ax}, "y"));
    graph_set_output(g, add_op_node(g, "Squeeze", 1, (int[]){x}, "z"));
    check_inferred(g, "Squeeze", 4, (int64_t[]){2, 1, 3, 1});

    g = new_graph();
    x = add_input(g, "x", MIXRT_DTYPE_F32, 3, (int64_t[]){2, 3, 4});
    y = add_op_node(g, "ReduceMean", 1, (int[]){x}, "y");
    g->nodes[g->values[y].producer].opset = 13;
    node_attr_ints(g, g->values[y].producer, "axes", 1, (int64_t[]){1});
    node_attr_int(g, g->values[y].producer, "keepdims", 0);
    graph_set_output(g, y);
    ax = add_const_values(ctx, g, "ax", MIXRT_DTYPE_I64, 1, (int64_t[]){1}, (double[]){-1});
    graph_set_output(g, add_op_node(g, "ReduceL2", 2, (int[]){x, ax}, "z")); /* opset 18: axes input */
    graph_set_output(g, add_op_node(g, "ReduceMax", 1, (int[]){x}, "w"));  /* every axis, kept */
    check_inferred(g, "Reduce", 3, (int64_t[]){2, 3, 4});

    g = new_graph();
    x = add_input(g, "x", MIXRT_DTYPE_F32, 3, (int64_t[]){5, 4, 6});
    int st = add_const_values(ctx, g, "st2", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){1, -3});
    int en = add_const_values(ctx, g, "en2", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){9.0e18, -1});
    ax = add_const_values(ctx, g, "ax2", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){0, 2});
    int sp = add_const_values(ctx, g, "sp2", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){2, 1});
    graph_set_output(g, add_op_node(g, "Slice", 5, (int[]){x, st, en, ax, sp}, "y"));
    int st3 = add_const_values(ctx, g, "st3", MIXRT_DTYPE_I64, 1, (int64_t[]){1}, (double[]){-1});
    int en3 = add_const_values(ctx, g, "en3", MIXRT_DTYPE_I64, 1, (int64_t[]){1}, (double[]){-9.0e18});
    int ax3 = add_const_values(ctx, g, "ax3", MIXRT_DTYPE_I64, 1, (int64_t[]){1}, (double[]){1});
    int sp3 = add_const_values(ctx, g, "sp3", MIXRT_DTYPE_I64, 1, (int64_t[]){1}, (double[]){-3});
    graph_set_output(g, add_op_node(g, "Slice", 5, (int[]){x, st3, en3, ax3, sp3}, "z")); /* negative step */
    check_inferred(g, "Slice", 3, (int64_t[]){5, 4, 6});

    g = new_graph();
    x = add_input(g, "x", MIXRT_DTYPE_F32, 2, (int64_t[]){2, 3});
    int shp = add_const_values(ctx, g, "shp", MIXRT_DTYPE_I64, 1, (int64_t[]){3}, (double[]){4, 1, 3});
    graph_set_output(g, add_op_node(g, "Expand", 2, (int[]){x, shp}, "y"));
    int rep = add_const_values(ctx, g, "rep", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){2, 3});
    graph_set_output(g, add_op_node(g, "Tile", 2, (int[]){x, rep}, "z"));
    int pads = add_const_values(ctx, g, "pads", MIXRT_DTYPE_I64, 1, (int64_t[]){4}, (double[]){0, 1, 2, 0});
    graph_set_output(g, add_op_node(g, "Pad", 2, (int[]){x, pads}, "w"));
    check_inferred(g, "Expand, Tile, Pad", 2, (int64_t[]){2, 3});

    g = new_graph();
    x = add_input(g, "x", MIXRT_DTYPE_F32, 4, (int64_t[]){1, 8, 3, 5});
    int sc = add_const_values(ctx, g, "sc", MIXRT_DTYPE_F32, 1, (int64_t[]){4}, (double[]){1, 1, 2, 1.5});
    graph_set_output(g, add_op_node(g, "Resize", 3, (int[]){x, -1, sc}, "y"));
    int sz = add_const_values(ctx, g, "sz", MIXRT_DTYPE_I64, 1, (int64_t[]){4}, (double[]){1, 8, 7, 2});
    graph_set_output(g, add_op_node(g, "Resize", 4, (int[]){x, -1, -1, sz}, "z"));
    y = add_op_node(g, "DepthToSpace", 1, (int[]){x}, "w");
    node_attr_int(g, g->values[y].producer, "blocksize", 2);
    graph_set_output(g, y);
    check_inferred(g, "Resize, DepthToSpace", 4, (int64_t[]){1, 8, 3, 5});

    /* Split: given sizes, and equal parts; Shape with start/end. */
    g = new_graph();
    x = add_input(g, "x", MIXRT_DTYPE_F32, 2, (int64_t[]){2, 6});
    int sizes = add_const_values(ctx, g, "sizes", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){2, 4});
    int a = add_op_node(g, "Split", 2, (int[]){x, sizes}, "a");
    struct mixrt_node *n = &g->nodes[g->values[a].producer];
    n->opset = 13;
    int *outs = mixrt_arena_calloc(g->arena, 2, sizeof(int));
    outs[0] = a, outs[1] = mixrt_graph_get_or_add_value(g, "b");
    g->values[outs[1]].producer = g->values[a].producer;
    n->outputs = outs, n->n_outputs = 2;
    node_attr_int(g, g->values[a].producer, "axis", 1);
    graph_set_output(g, a);
    graph_set_output(g, outs[1]);
    int c3 = add_op_node(g, "Split", 1, (int[]){x}, "c");
    n = &g->nodes[g->values[c3].producer];
    n->opset = 13;
    outs = mixrt_arena_calloc(g->arena, 3, sizeof(int));
    outs[0] = c3, outs[1] = mixrt_graph_get_or_add_value(g, "d"), outs[2] = mixrt_graph_get_or_add_value(g, "e");
    g->values[outs[1]].producer = g->values[outs[2]].producer = g->values[c3].producer;
    n->outputs = outs, n->n_outputs = 3;
    node_attr_int(g, g->values[c3].producer, "axis", 1);
    graph_set_output(g, c3);
    graph_set_output(g, outs[2]);
    check_inferred(g, "Split", 2, (int64_t[]){2, 6});
}

/* A Transpose read only by a float Cast becomes one TransposeCast (MIXRT_PASS_TRANSPOSE_CAST
 * only): the same output bits on random data, through the reference kernels. It stays apart
 * when the Transpose has a second reader, is a graph output, or the Cast is not float to float. */
static void test_transpose_cast(void) {
    const int64_t d[4] = {2, 3, 5, 7}, perm[4] = {0, 2, 3, 1};
    for (int c = 0; c < 5; c++) {
        struct mixrt_graph *g = new_graph();
        int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, d);
        int t = add_op_node(g, "Transpose", 1, (int[]){x}, "t");
        set_ints(g, t, "perm", 4, perm);
        int y = add_op_node(g, "Cast", 1, (int[]){t}, "y");
        set_int(g, y, "to", c == 3 ? MIXRT_DTYPE_I32 : MIXRT_DTYPE_BF16);
        graph_set_output(g, y);
        if (c == 1) graph_set_output(g, add_op_node(g, "Relu", 1, (int[]){t}, "r")); /* a second reader */
        if (c == 2) graph_set_output(g, t);                                            /* a graph output */
        struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 4, d);
        for (size_t i = 0; i < mixrt_tensor_numel(xt); i++) ((float *)xt->data)[i] = (float)tu_uniform(-3, 3);
        double after[256];
        unsigned flags = MIXRT_PASS_CAST_ELIM | (c == 4 ? 0u : (unsigned)MIXRT_PASS_TRANSPOSE_CAST);
        double worst = passes_change(g, 1, (const struct mixrt_tensor *[]){xt}, flags, after, 256);
        bool fused = c == 0;
        TU_CHECK(count_op(g, "TransposeCast") == fused && count_op(g, "Cast") == !fused &&
                     count_op(g, "Transpose") == !fused,
                 "transpose-cast case %d: %d TransposeCast, %d Cast, %d Transpose (fused expected: %d)", c,
                 count_op(g, "TransposeCast"), count_op(g, "Cast"), count_op(g, "Transpose"), fused);
        TU_CHECK(worst == 0, "transpose-cast case %d: output changed by %g (-1: a run failed)", c, worst);
        if (fused) {
            const struct mixrt_value *yv = &g->values[g->outputs[0]];
            TU_CHECK(yv->dtype == MIXRT_DTYPE_BF16 && yv->rank == 4 && yv->dims[1].value == 5 && yv->dims[3].value == 3,
                     "transpose-cast: output is not bf16 [2, 5, 7, 3]");
            /* an element checked by hand: y[1, 4, 6, 2] = bf16(x[1, 2, 4, 6]) */
            float xv = ((const float *)xt->data)[((1 * 3 + 2) * 5 + 4) * 7 + 6];
            double want = mixrt_bf16_to_float(mixrt_bf16_from_float(xv));
            TU_CHECK(after[((1 * 5 + 4) * 7 + 6) * 3 + 2] == want, "transpose-cast: element [1, 4, 6, 2] is %g, want %g",
                     after[((1 * 5 + 4) * 7 + 6) * 3 + 2], want);
        }
        mixrt_tensor_destroy(ctx, xt);
        mixrt_graph_destroy(g);
    }
}

/* Cast (lossless widening) -> Transpose or Reshape -> Cast (a 16-bit model's image after the
 * planner's boundary cast): back to the input's dtype one move of the input, no Cast, with Cast
 * elimination alone (every backend: pass_move_uncast); to another dtype one TransposeCast of the
 * input where MIXRT_PASS_TRANSPOSE_CAST is on (CPU engines), the three nodes as they were where
 * it is off (CUDA engines); a narrowing first Cast stays. Outputs bit for bit as before; an
 * element checked by hand (every element for the Reshape). */
static void test_transpose_cast_pair(void) {
    const int64_t d[4] = {2, 3, 5, 7}, perm[4] = {0, 2, 3, 1};
    static const struct {
        mixrt_dtype in, mid, out;
        int extra; /* 1: the widened value read by a Relu too; 2: the moved one a graph output; 3: a Reshape */
        int transposes, casts, tcasts;    /* with MIXRT_PASS_TRANSPOSE_CAST */
        int transposes1, casts1;          /* without (no TransposeCast then) */
    } cases[] = {
        {MIXRT_DTYPE_BF16, MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 0, 1, 0, 0, 1, 0},
        {MIXRT_DTYPE_F16, MIXRT_DTYPE_F32, MIXRT_DTYPE_F16, 0, 1, 0, 0, 1, 0},
        {MIXRT_DTYPE_BF16, MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 1, 1, 1, 0, 1, 1},
        {MIXRT_DTYPE_F16, MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 0, 0, 0, 1, 1, 2}, /* f16 -> bf16 in one */
        {MIXRT_DTYPE_F32, MIXRT_DTYPE_F16, MIXRT_DTYPE_F32, 0, 0, 1, 1, 1, 2},  /* f32 -> f16 loses */
        {MIXRT_DTYPE_BF16, MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 2, 1, 2, 0, 1, 2},
        {MIXRT_DTYPE_BF16, MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 3, 0, 0, 0, 0, 0}, /* Reshape */
        {MIXRT_DTYPE_F16, MIXRT_DTYPE_F64, MIXRT_DTYPE_F16, 3, 0, 0, 0, 0, 0},
    };
    for (int tc = 0; tc < 2; tc++)
        for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
            const bool reshape = cases[c].extra == 3;
            struct mixrt_graph *g = new_graph();
            int x = add_input(g, "x", cases[c].in, 4, d);
            int w = add_op_node(g, "Cast", 1, (int[]){x}, "w");
            set_int(g, w, "to", cases[c].mid);
            int t;
            if (reshape) {
                int shape = add_const_values(ctx, g, "shape", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){2, 105});
                t = add_op_node(g, "Reshape", 2, (int[]){w, shape}, "t");
            } else {
                t = add_op_node(g, "Transpose", 1, (int[]){w}, "t");
                set_ints(g, t, "perm", 4, perm);
            }
            int y = add_op_node(g, "Cast", 1, (int[]){t}, "y");
            set_int(g, y, "to", cases[c].out);
            graph_set_output(g, y);
            if (cases[c].extra == 1) graph_set_output(g, add_op_node(g, "Relu", 1, (int[]){w}, "r"));
            if (cases[c].extra == 2) graph_set_output(g, t);
            struct mixrt_tensor *xt = tensor(cases[c].in, 4, d);
            for (size_t i = 0; i < mixrt_tensor_numel(xt); i++) mixrt_store_f64(xt->data, cases[c].in, i, tu_uniform(-3, 3));
            double after[512];
            unsigned flags = MIXRT_PASS_CAST_ELIM | (tc ? 0u : (unsigned)MIXRT_PASS_TRANSPOSE_CAST);
            double worst = passes_change(g, 1, (const struct mixrt_tensor *[]){xt}, flags, after, 512);
            const int want_t = tc ? cases[c].transposes1 : cases[c].transposes;
            const int want_c = tc ? cases[c].casts1 : cases[c].casts, want_tc = tc ? 0 : cases[c].tcasts;
            TU_CHECK(count_op(g, "Transpose") == want_t && count_op(g, "Cast") == want_c &&
                         count_op(g, "TransposeCast") == want_tc && count_op(g, "Reshape") == reshape,
                     "transpose-cast pair case %zu%s: %d Transpose, %d Cast, %d TransposeCast, %d Reshape (want %d, %d, "
                     "%d, %d)", c, tc ? " (Cast elimination alone)" : "", count_op(g, "Transpose"),
                     count_op(g, "Cast"), count_op(g, "TransposeCast"), count_op(g, "Reshape"), want_t, want_c, want_tc,
                     reshape);
            TU_CHECK(worst == 0, "transpose-cast pair case %zu: output changed by %g (-1: a run failed)", c, worst);
            if (want_c < 2 && cases[c].in != MIXRT_DTYPE_F32) {
                int ti = -1;
                for (int n = 0; n < g->n_nodes; n++)
                    if (!strcmp(g->nodes[n].op_type, "Transpose") || !strcmp(g->nodes[n].op_type, "TransposeCast") ||
                        !strcmp(g->nodes[n].op_type, "Reshape"))
                        ti = n;
                TU_CHECK(ti >= 0 && g->nodes[ti].inputs[0] == x, "transpose-cast pair case %zu: the move does not read x",
                         c);
                TU_CHECK(g->values[g->outputs[0]].dtype == cases[c].out, "transpose-cast pair case %zu: output is %s", c,
                         mixrt_dtype_name(g->values[g->outputs[0]].dtype));
                if (reshape) {
                    size_t bad = 0;
                    for (size_t i = 0; i < mixrt_tensor_numel(xt); i++)
                        bad += after[i] != mixrt_load_f64(xt->data, cases[c].in, i);
                    TU_CHECK(bad == 0, "transpose-cast pair case %zu: %zu elements moved or changed", c, bad);
                } else {
                    /* y[1, 4, 6, 2] = x[1, 2, 4, 6], rounded to the output's dtype (the same bits when it is x's) */
                    double xv = mixrt_load_f64(xt->data, cases[c].in, ((1 * 3 + 2) * 5 + 4) * 7 + 6);
                    if (cases[c].out == MIXRT_DTYPE_BF16) xv = mixrt_bf16_to_float(mixrt_bf16_from_float((float)xv));
                    TU_CHECK(after[((1 * 5 + 4) * 7 + 6) * 3 + 2] == xv,
                             "transpose-cast pair case %zu: element is %g, want %g", c,
                             after[((1 * 5 + 4) * 7 + 6) * 3 + 2], xv);
                }
            }
            mixrt_tensor_destroy(ctx, xt);
            mixrt_graph_destroy(g);
        }
}

/* Transposes that move only axes of size 1 become Reshapes (same output); others stay. */
static void test_transpose_view(void) {
    static const struct {
        int64_t d[4], perm[4];
        int rank;
        bool view;
    } cases[] = {
        {{5, 1, 7}, {1, 0, 2}, 3, true},        {{5, 3, 7}, {1, 0, 2}, 3, false},
        {{1, 4, 1, 6}, {2, 1, 3, 0}, 4, true},  {{1, 4, 1, 6}, {0, 3, 2, 1}, 4, false},
        {{2, 1, 1, 3}, {0, 2, 3, 1}, 4, true},  {{2, 3, 1, 1}, {0, 2, 3, 1}, 4, true},
        {{1, 2, 3, 1}, {0, 2, 1, 3}, 4, false},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct mixrt_graph *g = new_graph();
        int x = add_input(g, "x", MIXRT_DTYPE_F32, cases[c].rank, cases[c].d);
        int y = add_op_node(g, "Transpose", 1, (int[]){x}, "y");
        set_ints(g, y, "perm", (size_t)cases[c].rank, cases[c].perm);
        graph_set_output(g, y);
        struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, cases[c].rank, cases[c].d);
        double before[128], after[128];
        size_t n = run(g, 1, (const struct mixrt_tensor *[]){xt}, before, 128);
        struct mixrt_pass_stats st;
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_CAST_ELIM, &st) == MIXRT_STATUS_OK, "passes");
        TU_CHECK((count_op(g, "Reshape") == 1) == cases[c].view && (count_op(g, "Transpose") == 1) == !cases[c].view,
                 "transpose case %zu: %d Reshape, %d Transpose (view expected: %d)", c, count_op(g, "Reshape"),
                 count_op(g, "Transpose"), cases[c].view);
        TU_CHECK(n <= 128 && run(g, 1, (const struct mixrt_tensor *[]){xt}, after, 128) == n &&
                     !memcmp(before, after, n * sizeof(double)),
                 "transpose case %zu: output changed", c);
        const struct mixrt_value *yv = &g->values[g->outputs[0]];
        for (int i = 0; i < cases[c].rank; i++)
            TU_CHECK(yv->dims[i].value == cases[c].d[cases[c].perm[i]], "transpose case %zu: output dim %d", c, i);
        mixrt_tensor_destroy(ctx, xt);
        mixrt_graph_destroy(g);
    }
}

/* ReduceMean over H, W (attribute axes before opset 18, an input after; negative axes) becomes
 * GlobalAveragePool, same output: with keepdims as it is, without it followed by a Reshape to
 * [N, C]; other axes stay. */
static void test_reduce_mean_gap(void) {
    static const struct {
        int opset;
        int64_t axes[2];
        int keep;
        bool gap;
    } cases[] = {{13, {2, 3}, 1, true},  {18, {-1, -2}, 1, true}, {18, {1, 2}, 1, false},
                 {13, {2, 3}, 0, true},  {18, {3, -2}, 0, true},   {13, {1, 3}, 0, false}};
    const int64_t d[4] = {2, 3, 4, 5};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct mixrt_graph *g = new_graph();
        int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, d);
        int ax = cases[c].opset >= 18 ? add_const_values(ctx, g, "axes", MIXRT_DTYPE_I64, 1, (int64_t[]){2},
                                                         (double[]){(double)cases[c].axes[0], (double)cases[c].axes[1]})
                                      : -1;
        int y = add_op_node(g, "ReduceMean", ax >= 0 ? 2 : 1, (int[]){x, ax}, "y");
        g->nodes[g->values[y].producer].opset = cases[c].opset;
        if (ax < 0) set_ints(g, y, "axes", 2, cases[c].axes);
        set_int(g, y, "keepdims", cases[c].keep);
        graph_set_output(g, y);
        struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 4, d);
        double before[64], after[64];
        size_t n = run(g, 1, (const struct mixrt_tensor *[]){xt}, before, 64);
        struct mixrt_pass_stats st;
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_CAST_ELIM, &st) == MIXRT_STATUS_OK, "passes");
        TU_CHECK((count_op(g, "GlobalAveragePool") == 1) == cases[c].gap, "ReduceMean case %zu: %d GlobalAveragePool",
                 c, count_op(g, "GlobalAveragePool"));
        TU_CHECK(n > 0 && n <= 64 && run(g, 1, (const struct mixrt_tensor *[]){xt}, after, 64) == n, "ReduceMean case %zu: runs", c);
        double worst = 0;
        for (size_t i = 0; i < n && i < 64; i++)
            if (fabs(before[i] - after[i]) > worst) worst = fabs(before[i] - after[i]);
        TU_CHECK(worst <= 1e-6, "ReduceMean case %zu: output changed by %g", c, worst);
        /* the output keeps its name and shape: [2, 3, 1, 1] with keepdims, [2, 3] without */
        const struct mixrt_value *yv = &g->values[g->outputs[0]];
        TU_CHECK(!strcmp(yv->name, "y") && yv->rank == (cases[c].keep ? 4 : 2) && yv->dims[0].value == 2 &&
                     (!cases[c].gap || yv->dims[1].value == 3),
                 "ReduceMean case %zu: output %s rank %d", c, yv->name, yv->rank);
        if (cases[c].gap)
            TU_CHECK(count_op(g, "Reshape") == (cases[c].keep ? 0 : 1), "ReduceMean case %zu: %d Reshape", c,
                     count_op(g, "Reshape"));
        mixrt_tensor_destroy(ctx, xt);
        mixrt_graph_destroy(g);
    }
}

/* A graph of one pool node op (opset 12) over input x [xd] with sp spatial axes: kernel k,
 * strides st, pads p (2 * sp), ceil_mode; its output "y" the graph's output, returned in *y. */
static struct mixrt_graph *pool_graph(const char *op, int sp, const int64_t *xd, const int64_t *k, const int64_t *st,
                                      const int64_t *p, int64_t ceil, int *y) {
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", MIXRT_DTYPE_F32, sp + 2, xd);
    *y = add_op_node(g, op, 1, (int[]){x}, "y");
    g->nodes[g->values[*y].producer].opset = 12;
    set_ints(g, *y, "kernel_shape", (size_t)sp, k);
    set_ints(g, *y, "strides", (size_t)sp, st);
    set_ints(g, *y, "pads", 2 * (size_t)sp, p);
    set_int(g, *y, "ceil_mode", ceil);
    graph_set_output(g, *y);
    return g;
}

/* An AveragePool / MaxPool whose one window covers the whole input (no pads, kernel >= input,
 * ceil_mode rounding a kernel past it up to one window) becomes the global pool: the same
 * output, and that output is the mean / max of each plane (computed here in f64). A kernel
 * short of the input, pads, or a kernel past it by a stride stay. */
static void test_whole_window_pool(void) {
    static const struct {
        const char *op;
        int64_t k[2], s[2], pads;
        int ceil;
        bool global;
    } cases[] = {{"AveragePool", {7, 5}, {1, 1}, 0, 0, true},      {"AveragePool", {2560, 2560}, {2560, 2560}, 0, 1, true},
                 {"MaxPool", {10, 9}, {10, 12}, 0, 1, true},        {"AveragePool", {6, 5}, {1, 1}, 0, 0, false},
                 {"AveragePool", {10, 9}, {10, 12}, 1, 1, false}, {"MaxPool", {7, 4}, {1, 1}, 0, 0, false}};
    const int64_t d[4] = {2, 3, 7, 5};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int y;
        const int64_t pads[4] = {cases[c].pads, cases[c].pads, cases[c].pads, cases[c].pads};
        struct mixrt_graph *g = pool_graph(cases[c].op, 2, d, cases[c].k, cases[c].s, pads, cases[c].ceil, &y);
        struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 4, d);
        double after[256];
        double worst = passes_change(g, 1, (const struct mixrt_tensor *[]){xt}, MIXRT_PASS_CAST_ELIM, after, 256);
        int globals = count_op(g, "GlobalAveragePool") + count_op(g, "GlobalMaxPool");
        TU_CHECK((globals == 1) == cases[c].global, "pool case %zu: %d global pools", c, globals);
        TU_CHECK(worst >= 0 && worst <= 1e-6, "pool case %zu: output changed by %g (-1: a run failed)", c, worst);
        if (cases[c].global) {
            const float *xv = xt->data;
            for (int p = 0; p < 6; p++) {
                double m = strcmp(cases[c].op, "MaxPool") ? 0.0 : -INFINITY;
                for (int i = 0; i < 35; i++)
                    m = strcmp(cases[c].op, "MaxPool") ? m + xv[p * 35 + i] / 35.0 : fmax(m, xv[p * 35 + i]);
                TU_CHECK(fabs(after[p] - m) <= 1e-6, "pool case %zu: plane %d is %g, want %g", c, p, after[p], m);
            }
        }
        mixrt_tensor_destroy(ctx, xt);
        mixrt_graph_destroy(g);
    }
    /* The layout pass's channels-last pool (com.mixrt, [N, H, W, C]): its shape may be known only
     * after that pass ran (HF EfficientNet's); the channels-last global pool, the same output. */
    {
        const int64_t dl[4] = {2, 7, 5, 3};
        struct mixrt_graph *g = new_graph();
        TU_CHECK(mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION) == MIXRT_STATUS_OK, "opset");
        int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, dl);
        int y = add_op_node(g, "AveragePool", 1, (int[]){x}, "y");
        struct mixrt_node *pn = &g->nodes[g->values[y].producer];
        pn->domain = MIXRT_DOMAIN, pn->opset = MIXRT_DOMAIN_VERSION;
        set_ints(g, y, "kernel_shape", 2, (int64_t[]){2560, 2560});
        set_ints(g, y, "strides", 2, (int64_t[]){2560, 2560});
        set_int(g, y, "ceil_mode", 1);
        graph_set_output(g, y);
        struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 4, dl);
        double after[8];
        double worst = passes_change(g, 1, (const struct mixrt_tensor *[]){xt}, MIXRT_PASS_CAST_ELIM, after, 8);
        bool global = false;
        for (int i = 0; i < g->n_nodes; i++)
            global = global || (!strcmp(g->nodes[i].op_type, "GlobalAveragePool") && !strcmp(g->nodes[i].domain, MIXRT_DOMAIN));
        TU_CHECK(global, "channels-last pool: a com.mixrt GlobalAveragePool");
        TU_CHECK(worst >= 0 && worst <= 1e-6, "channels-last pool: output changed by %g (-1: a run failed)", worst);
        const float *xv = xt->data;
        for (int p = 0; p < 6 && worst >= 0; p++) {
            double m = 0;
            for (int i = 0; i < 35; i++) m += xv[(p / 3) * 105 + i * 3 + p % 3] / 35.0;
            TU_CHECK(fabs(after[p] - m) <= 1e-6, "channels-last pool: [%d] %g, want %g", p, after[p], m);
        }
        mixrt_tensor_destroy(ctx, xt);
        mixrt_graph_destroy(g);
    }
}

/* A 3-D MaxPool / AveragePool becomes two 2-D pools over reshaped views (H, W, then D) with the
 * same output on random data: strides, pads on every axis, ceil_mode, count_include_pad both
 * ways; a dilated one stays 3-D. */
static void test_pool3d_split(void) {
    static const struct {
        const char *op;
        int64_t k[3], s[3], p[6];
        int ceil, cip, dil;
        bool split;
    } cases[] = {
        {"MaxPool", {3, 3, 3}, {1, 1, 1}, {1, 1, 1, 1, 1, 1}, 0, 0, 1, true},
        {"MaxPool", {2, 3, 2}, {2, 2, 1}, {0, 1, 0, 1, 0, 1}, 1, 0, 1, true},
        {"AveragePool", {3, 2, 3}, {2, 1, 2}, {1, 0, 1, 0, 1, 1}, 1, 0, 1, true},
        {"AveragePool", {3, 3, 2}, {1, 2, 2}, {1, 1, 0, 1, 1, 1}, 0, 1, 1, true},
        {"MaxPool", {2, 2, 2}, {1, 1, 1}, {0, 0, 0, 0, 0, 0}, 0, 0, 2, false},
    };
    const int64_t d[5] = {2, 3, 5, 6, 7};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int y;
        struct mixrt_graph *g = pool_graph(cases[c].op, 3, d, cases[c].k, cases[c].s, cases[c].p, cases[c].ceil, &y);
        if (!strcmp(cases[c].op, "AveragePool")) set_int(g, y, "count_include_pad", cases[c].cip);
        if (cases[c].dil > 1) set_ints(g, y, "dilations", 3, (int64_t[]){cases[c].dil, cases[c].dil, cases[c].dil});
        struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 5, d);
        tu_seed(0x3d900u + c);
        for (size_t i = 0; i < mixrt_tensor_numel(xt); i++) ((float *)xt->data)[i] = (float)tu_uniform(-1, 1);
        double after[2048];
        double worst = passes_change(g, 1, (const struct mixrt_tensor *[]){xt}, MIXRT_PASS_ALL, after, 2048);
        int rank5 = 0;
        for (int i = 0; i < g->n_nodes; i++)
            if (!strcmp(g->nodes[i].op_type, cases[c].op) && g->nodes[i].inputs[0] >= 0 &&
                g->values[g->nodes[i].inputs[0]].rank == 5)
                rank5++;
        TU_CHECK((rank5 == 0) == cases[c].split && count_op(g, cases[c].op) == (cases[c].split ? 2 : 1),
                 "pool3d case %zu: %d 3-D pools, %d %s nodes", c, rank5, count_op(g, cases[c].op), cases[c].op);
        TU_CHECK(worst >= 0 && worst <= 1e-6, "pool3d case %zu: output changed by %g (-1: a run failed)", c, worst);
        mixrt_tensor_destroy(ctx, xt);
        mixrt_graph_destroy(g);
    }
}

/* Conv(Pad(x)) with zeros on the spatial axes only becomes Conv(x) with the pads added to the
 * Conv's own (TensorFlow-style same padding: HF MobileNetV2); the output is the same (random x
 * and weights). A non-zero value, pads on N, a reflect Pad, or a second reader of the padded
 * value leave the Pad. Opset 11 (pads an input) and opset 2 (an attribute). Without
 * MIXRT_PASS_CONV_CPU (CUDA engines) only a fold that leaves the pads even on each axis. */
/* auto_pad SAME_UPPER / SAME_LOWER / VALID with static input dims becomes explicit pads (and
 * auto_pad NOTSET): same output, against the reference run of the original node, over kernel
 * sizes (odd, even, 1), strides, dilations and input sizes that leave odd padding totals. */
static void test_conv_explicit_pads(void) {
    static const char *const modes[] = {"SAME_UPPER", "SAME_LOWER", "VALID"};
    static const int64_t shapes[][6] = {/* H, W, KH, KW, stride, dilation */
                                        {7, 6, 3, 3, 1, 1}, {7, 6, 1, 1, 1, 1}, {7, 6, 2, 4, 1, 1},
                                        {7, 6, 3, 3, 2, 1}, {8, 5, 3, 2, 2, 2}, {5, 5, 4, 3, 3, 1}};
    int checked = 0;
    for (size_t c = 0; c < sizeof(shapes) / sizeof(shapes[0]); c++)
        for (int md = 0; md < 3; md++) {
            const int64_t *sh = shapes[c];
            const int64_t xd[4] = {1, 2, sh[0], sh[1]}, wd[4] = {3, 2, sh[2], sh[3]};
            struct mixrt_graph *g = new_graph();
            int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, xd);
            double wv[3 * 2 * 4 * 4];
            tu_seed(0x5a3e00u + c * 3 + (unsigned)md);
            for (int i = 0; i < (int)(3 * 2 * sh[2] * sh[3]); i++) wv[i] = tu_uniform(-1, 1);
            int w = add_const_values(ctx, g, "w", MIXRT_DTYPE_F32, 4, wd, wv);
            int y = add_op_node(g, "Conv", 2, (int[]){x, w}, "y");
            set_ints(g, y, "strides", 2, (int64_t[]){sh[4], sh[4]});
            set_ints(g, y, "dilations", 2, (int64_t[]){sh[5], sh[5]});
            struct mixrt_attr *ap = node_attr_add(g, g->values[y].producer, "auto_pad", MIXRT_ATTR_STRING);
            ap->s = modes[md], ap->s_len = strlen(modes[md]);
            graph_set_output(g, y);
            struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 4, xd);
            for (size_t i = 0; i < mixrt_tensor_numel(xt); i++) ((float *)xt->data)[i] = (float)tu_uniform(-1, 1);
            double after[512];
            double worst = passes_change(g, 1, (const struct mixrt_tensor *[]){xt}, MIXRT_PASS_ALL, after, 512);
            const struct mixrt_node *n = NULL;
            for (int i = 0; i < g->n_nodes; i++)
                if (!strcmp(g->nodes[i].op_type, "Conv")) n = &g->nodes[i];
            size_t np = 0;
            const int64_t *pads = n ? mixrt_node_attr_ints(n, "pads", &np) : NULL;
            TU_CHECK(n && !strcmp(mixrt_node_attr_string(n, "auto_pad", "NOTSET"), "NOTSET") && pads && np == 4,
                     "case %zu %s: explicit pads", c, modes[md]);
            if (pads && np == 4 && md == 2)
                TU_CHECK(!pads[0] && !pads[1] && !pads[2] && !pads[3], "case %zu VALID: zero pads", c);
            if (pads && np == 4 && md < 2) {
                for (int a = 0; a < 2; a++) {
                    int64_t I = sh[a], s = sh[4], k = (sh[2 + a] - 1) * sh[5] + 1, o = (I + s - 1) / s;
                    int64_t tot = (o - 1) * s + k - I > 0 ? (o - 1) * s + k - I : 0;
                    int64_t b = md == 0 ? tot / 2 : tot - tot / 2;
                    TU_CHECK(pads[a] == b && pads[2 + a] == tot - b, "case %zu %s axis %d: pads %lld, %lld (want %lld, %lld)",
                             c, modes[md], a, (long long)pads[a], (long long)pads[2 + a], (long long)b,
                             (long long)(tot - b));
                }
            }
            TU_CHECK(worst >= 0 && worst <= 1e-6, "case %zu %s: output changed by %g (-1: a run failed)", c, modes[md],
                     worst);
            checked++;
            mixrt_tensor_destroy(ctx, xt);
            mixrt_graph_destroy(g);
        }
    TU_CHECK(checked == 18, "18 cases (%d)", checked);
}

static void test_pad_into_conv(void) {
    static const struct {
        int opset;
        int64_t pads[8];
        double value;
        const char *mode;
        bool second_reader, folded;
        bool cuda; /* without MIXRT_PASS_CONV_CPU: only a fold that leaves the pads even */
    } cases[] = {
        {13, {0, 0, 0, 1, 0, 0, 1, 2}, 0, "constant", false, true, false},
        {2, {0, 0, 1, 1, 0, 0, 2, 0}, 0, "constant", false, true, false},
        {13, {0, 0, 0, 1, 0, 0, 1, 2}, 0.5, "constant", false, false, false},
        {13, {1, 0, 0, 1, 0, 0, 1, 2}, 0, "constant", false, false, false},
        {13, {0, 0, 0, 1, 0, 0, 1, 2}, 0, "reflect", false, false, false},
        {13, {0, 0, 0, 1, 0, 0, 1, 2}, 0, "constant", true, false, false},
        {13, {0, 0, 0, 1, 0, 0, 1, 2}, 0, "VALID", false, true, false}, /* a constant Pad, the Conv auto_pad VALID */
        {13, {0, 0, 0, 1, 0, 0, 1, 2}, 0, "constant", false, false, true},
        {13, {0, 0, 0, 1, 0, 0, 1, 0}, 0, "constant", false, true, true}, /* with the Conv's {1, 0, 0, 1}: even */
    };
    const int64_t xd[4] = {1, 2, 5, 6}, wd[4] = {3, 2, 3, 3};
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct mixrt_graph *g = new_graph();
        int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, xd);
        double wv[54];
        tu_seed(0x9ad00u + c);
        for (int i = 0; i < 54; i++) wv[i] = tu_uniform(-1, 1);
        int w = add_const_values(ctx, g, "w", MIXRT_DTYPE_F32, 4, wd, wv);
        int p;
        if (cases[c].opset >= 11) {
            double pv[8];
            for (int i = 0; i < 8; i++) pv[i] = (double)cases[c].pads[i];
            int pads = add_const_values(ctx, g, "pads", MIXRT_DTYPE_I64, 1, (int64_t[]){8}, pv);
            int val = add_const_values(ctx, g, "val", MIXRT_DTYPE_F32, 0, NULL, &cases[c].value);
            p = add_op_node(g, "Pad", 3, (int[]){x, pads, val}, "p");
        } else {
            p = add_op_node(g, "Pad", 1, (int[]){x}, "p");
            set_ints(g, p, "pads", 8, cases[c].pads);
        }
        struct mixrt_node *pn = &g->nodes[g->values[p].producer];
        pn->opset = cases[c].opset;
        bool valid = !strcmp(cases[c].mode, "VALID");
        struct mixrt_attr *mode = node_attr_add(g, g->values[p].producer, "mode", MIXRT_ATTR_STRING);
        mode->s = valid ? "constant" : cases[c].mode, mode->s_len = strlen(mode->s);
        int y = add_op_node(g, "Conv", 2, (int[]){p, w}, "y");
        g->nodes[g->values[y].producer].opset = 11;
        if (valid) {
            struct mixrt_attr *ap = node_attr_add(g, g->values[y].producer, "auto_pad", MIXRT_ATTR_STRING);
            ap->s = "VALID", ap->s_len = 5;
        } else {
            set_ints(g, y, "pads", 4, (int64_t[]){1, 0, 0, 1});
        }
        graph_set_output(g, y);
        if (cases[c].second_reader) graph_set_output(g, add_op_node(g, "Relu", 1, (int[]){p}, "r"));
        struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 4, xd);
        for (size_t i = 0; i < mixrt_tensor_numel(xt); i++) ((float *)xt->data)[i] = (float)tu_uniform(-1, 1);
        double after[512];
        double worst = passes_change(g, 1, (const struct mixrt_tensor *[]){xt},
                                     cases[c].cuda ? MIXRT_PASS_ALL : MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU, after, 512);
        TU_CHECK((count_op(g, "Pad") == 0) == cases[c].folded, "pad case %zu: %d Pads left", c, count_op(g, "Pad"));
        TU_CHECK(worst >= 0 && worst <= 1e-6, "pad case %zu: output changed by %g (-1: a run failed)", c, worst);
        mixrt_tensor_destroy(ctx, xt);
        mixrt_graph_destroy(g);
    }
}

/* A Conv whose outer kernel taps read only padding at every output position is cut to the
 * taps that read the input, its pads moved with the cut: 3x3 at dilation 9 on 7x7 becomes 1x1
 * (dilation 1, no pads); dilations (6, 2) on 5x9 cut H alone (kernel 1x3); dilation 12 on
 * 14x14 (taps meet the input in a band) and dilation 1 keep their kernel. The graph's output is
 * the reference executor's before the pass (random x, W, bias). */
static void test_conv_dead_taps(void) {
    static const struct {
        int64_t h, w, dh, dw, ph, pw, kh_after, kw_after;
    } cases[] = {
        {7, 7, 9, 9, 9, 9, 1, 1},
        {5, 9, 6, 2, 6, 2, 1, 3},
        {14, 14, 12, 12, 12, 12, 3, 3},
        {6, 6, 1, 1, 1, 1, 3, 3},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        struct mixrt_graph *g = new_graph();
        const int64_t xd[4] = {1, 4, cases[c].h, cases[c].w}, wd[4] = {5, 4, 3, 3};
        int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, xd);
        double wv[180], bv[5];
        tu_seed(0x7a95u + c);
        for (int i = 0; i < 180; i++) wv[i] = tu_uniform(-1, 1);
        for (int i = 0; i < 5; i++) bv[i] = tu_uniform(-1, 1);
        int w = add_const_values(ctx, g, "w", MIXRT_DTYPE_F32, 4, wd, wv);
        int b = add_const_values(ctx, g, "b", MIXRT_DTYPE_F32, 1, (int64_t[]){5}, bv);
        int y = add_op_node(g, "Conv", 3, (int[]){x, w, b}, "y");
        g->nodes[g->values[y].producer].opset = 11;
        set_ints(g, y, "dilations", 2, (int64_t[]){cases[c].dh, cases[c].dw});
        set_ints(g, y, "pads", 4, (int64_t[]){cases[c].ph, cases[c].pw, cases[c].ph, cases[c].pw});
        set_ints(g, y, "kernel_shape", 2, (int64_t[]){3, 3});
        graph_set_output(g, y);
        struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 4, xd);
        for (size_t i = 0; i < mixrt_tensor_numel(xt); i++) ((float *)xt->data)[i] = (float)tu_uniform(-1, 1);
        double after[1024];
        double worst = passes_change(g, 1, (const struct mixrt_tensor *[]){xt}, MIXRT_PASS_ALL, after, 1024);
        TU_CHECK(worst >= 0 && worst <= 1e-6, "dead taps case %zu: output changed by %g (-1: a run failed)", c, worst);
        int found = 0;
        for (int i = 0; i < g->n_nodes; i++) {
            const struct mixrt_node *n = &g->nodes[i];
            if (strcmp(n->op_type, "Conv") && strcmp(n->op_type, "FusedConv")) continue;
            found++;
            const struct mixrt_tensor *wt = g->values[n->inputs[1]].init;
            TU_CHECK(wt && wt->rank == 4 && wt->dims[2] == cases[c].kh_after && wt->dims[3] == cases[c].kw_after,
                     "dead taps case %zu: kernel %lldx%lld, expected %lldx%lld", c, wt ? (long long)wt->dims[2] : -1LL,
                     wt ? (long long)wt->dims[3] : -1LL, (long long)cases[c].kh_after, (long long)cases[c].kw_after);
        }
        TU_CHECK(found == 1, "dead taps case %zu: %d convs", c, found);
        mixrt_tensor_destroy(ctx, xt);
        mixrt_graph_destroy(g);
    }
}

/* Node op with the given inputs and n_out outputs named outs[] (new values). */
static int multi_node(struct mixrt_graph *g, const char *name, const char *op, int n_in, const int *ins, int n_out,
                      const char *const *outs) {
    int ni = mixrt_graph_add_node(g, name, op, "");
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 17;
    n->n_inputs = n_in, n->n_outputs = n_out;
    n->inputs = mixrt_arena_calloc(g->arena, (size_t)n_in, sizeof(int));
    n->outputs = mixrt_arena_calloc(g->arena, (size_t)n_out, sizeof(int));
    memcpy(n->inputs, ins, (size_t)n_in * sizeof(int));
    for (int j = 0; j < n_out; j++) {
        n->outputs[j] = mixrt_graph_get_or_add_value(g, outs[j]);
        g->values[n->outputs[j]].producer = ni;
    }
    return ni;
}

/* A value of body b that names the main graph's value (read by name). */
static int outer_value(struct mixrt_graph *b, const struct mixrt_graph *g, int v) {
    const struct mixrt_value *mv = &g->values[v];
    int bv = add_value(b, mv->name, mv->dtype, mv->rank, (int64_t[]){mv->dims[0].value, mv->dims[1].value});
    b->values[bv].flags |= MIXRT_VALUE_OUTER;
    return bv;
}

/* Loop(3 trips, true) over x [6, 4]: carries acc += x[i] and a sequence of x[i] * c (c the
 * body's constant), scans x[i] - acc; the graph reads the sums, the sequence's last element
 * and the scan. With a constant trip count the Loop becomes three copies of its body and the
 * SequenceAt its element (no Loop, no SequenceAt left); the output is the same bit for bit
 * (random x). With the trip count a graph input, or a body whose condition is computed from
 * data, the Loop stays. */
static void test_unroll_loop(void) {
    for (int variant = 0; variant < 3; variant++) {
        struct mixrt_graph *g = new_graph(), *b = NULL;
        TU_CHECK(mixrt_graph_require_opset(g, "", 17) == MIXRT_STATUS_OK, "opset");
        int x = add_input(g, "x", MIXRT_DTYPE_F32, 2, (int64_t[]){6, 4});
        int m = variant == 1 ? add_input(g, "m", MIXRT_DTYPE_I64, 0, NULL)
                             : add_const_values(ctx, g, "m", MIXRT_DTYPE_I64, 0, NULL, (double[]){3});
        int cond = add_const_values(ctx, g, "cond", MIXRT_DTYPE_BOOL, 0, NULL, (double[]){1});
        int acc0 = add_const_values(ctx, g, "acc0", MIXRT_DTYPE_F32, 1, (int64_t[]){4}, (double[]){0.5, -1, 2, 0.25});
        int seq0 = add_op_node(g, "SequenceEmpty", 0, NULL, "seq0");
        set_int(g, seq0, "dtype", MIXRT_DTYPE_F32);
        g->values[seq0].flags |= MIXRT_VALUE_SEQUENCE;
        TU_CHECK(mixrt_graph_create(ctx, g, &b) == MIXRT_STATUS_OK, "body");
        int it = add_input(b, "it", MIXRT_DTYPE_I64, 0, NULL), cin = add_input(b, "cin", MIXRT_DTYPE_BOOL, 0, NULL);
        int acc = add_input(b, "acc", MIXRT_DTYPE_F32, 1, (int64_t[]){4});
        int seq = add_input(b, "seq", MIXRT_DTYPE_F32, 0, NULL);
        b->values[seq].rank = -1, b->values[seq].flags |= MIXRT_VALUE_SEQUENCE;
        int bx = outer_value(b, g, x);
        int c = add_const_values(ctx, b, "c", MIXRT_DTYPE_F32, 1, (int64_t[]){4}, (double[]){3, -0.5, 1.5, 2});
        int row = add_op_node(b, "Gather", 2, (int[]){bx, it}, "row");
        int acc2 = add_op_node(b, "Add", 2, (int[]){acc, row}, "acc2");
        int scaled = add_op_node(b, "Mul", 2, (int[]){row, c}, "scaled");
        int seq2 = add_op_node(b, "SequenceInsert", 2, (int[]){seq, scaled}, "seq2");
        int sc = add_op_node(b, "Sub", 2, (int[]){row, acc}, "sc");
        int cout;
        if (variant == 2) { /* the condition computed from the data: stays a Loop */
            int s = add_op_node(b, "ReduceSum", 1, (int[]){acc2}, "s");
            set_int(b, s, "keepdims", 0);
            cout = add_op_node(b, "Less", 2, (int[]){s, add_const_values(ctx, b, "lim", MIXRT_DTYPE_F32, 0, NULL,
                                                                        (double[]){1e9})}, "cout");
        } else {
            cout = add_op_node(b, "Identity", 1, (int[]){cin}, "cout");
        }
        graph_set_output(b, cout), graph_set_output(b, acc2), graph_set_output(b, seq2), graph_set_output(b, sc);
        TU_CHECK(mixrt_graph_toposort(b, &b->order) == MIXRT_STATUS_OK, "body order");
        int li = multi_node(g, "loop", "Loop", 4, (int[]){m, cond, acc0, seq0}, 3,
                            (const char *const[]){"accs", "seqs", "scans"});
        node_attr_add(g, li, "body", MIXRT_ATTR_GRAPH)->g = b;
        int seqs = g->nodes[li].outputs[1];
        g->values[seqs].flags |= MIXRT_VALUE_SEQUENCE;
        int last = add_const_values(ctx, g, "last", MIXRT_DTYPE_I64, 0, NULL, (double[]){-1});
        int e = add_op_node(g, "SequenceAt", 2, (int[]){seqs, last}, "e");
        int flat = add_op_node(g, "Reshape", 2, (int[]){g->nodes[li].outputs[2],
                                                        add_const_values(ctx, g, "m1", MIXRT_DTYPE_I64, 1, (int64_t[]){1},
                                                                         (double[]){-1})}, "flat");
        int y = add_op_node(g, "Concat", 3, (int[]){g->nodes[li].outputs[0], e, flat}, "y");
        set_int(g, y, "axis", 0);
        graph_set_output(g, y);
        struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){6, 4}), *mt = NULL;
        tu_seed(0x100b + variant);
        for (size_t i = 0; i < 24; i++) ((float *)xt->data)[i] = (float)tu_uniform(-2, 2);
        mixrt_tensor_create(ctx, MIXRT_DTYPE_I64, 0, NULL, &mt);
        ((int64_t *)mt->data)[0] = 3;
        const struct mixrt_tensor *ins[2] = {xt, mt};
        double after[64];
        double worst = passes_change(g, variant == 1 ? 2 : 1, ins, MIXRT_PASS_ALL, after, 64);
        bool unrolled = variant == 0;
        TU_CHECK((count_op(g, "Loop") == 0) == unrolled && (count_op(g, "SequenceAt") == 0) == unrolled,
                 "loop variant %d: %d Loop and %d SequenceAt nodes left", variant, count_op(g, "Loop"),
                 count_op(g, "SequenceAt"));
        TU_CHECK(worst == 0, "loop variant %d: output changed by %g (-1: a run failed)", variant, worst);
        /* the sums by hand: acc0 + x[0] + x[1] + x[2], then x[2] * c */
        double want0 = 0.5 + ((float *)xt->data)[0] + ((float *)xt->data)[4] + ((float *)xt->data)[8];
        TU_CHECK(fabs(after[0] - want0) < 1e-5 && fabs(after[4] - ((float *)xt->data)[8] * 3.0) < 1e-5,
                 "loop variant %d: y[0] %g (want %g), y[4] %g", variant, after[0], want0, after[4]);
        mixrt_tensor_destroy(ctx, xt), mixrt_tensor_destroy(ctx, mt);
        mixrt_graph_destroy(g);
    }
}

/* If(constant) becomes the branch it takes (then: x + x; else: -x), both ways; If(input)
 * stays. */
static void test_inline_if(void) {
    for (int variant = 0; variant < 3; variant++) {
        struct mixrt_graph *g = new_graph(), *tb = NULL, *eb = NULL;
        TU_CHECK(mixrt_graph_require_opset(g, "", 17) == MIXRT_STATUS_OK, "opset");
        int x = add_input(g, "x", MIXRT_DTYPE_F32, 2, (int64_t[]){3, 5});
        int c = variant == 2 ? add_input(g, "c", MIXRT_DTYPE_BOOL, 0, NULL)
                             : add_const_values(ctx, g, "c", MIXRT_DTYPE_BOOL, 0, NULL, (double[]){variant == 0});
        TU_CHECK(mixrt_graph_create(ctx, g, &tb) == MIXRT_STATUS_OK && mixrt_graph_create(ctx, g, &eb) == MIXRT_STATUS_OK,
                 "branches");
        int tx = outer_value(tb, g, x), ex = outer_value(eb, g, x);
        graph_set_output(tb, add_op_node(tb, "Add", 2, (int[]){tx, tx}, "twice"));
        graph_set_output(eb, add_op_node(eb, "Neg", 1, (int[]){ex}, "neg"));
        TU_CHECK(mixrt_graph_toposort(tb, &tb->order) == MIXRT_STATUS_OK &&
                     mixrt_graph_toposort(eb, &eb->order) == MIXRT_STATUS_OK,
                 "branch order");
        int y = add_op_node(g, "If", 1, (int[]){c}, "y");
        node_attr_add(g, g->values[y].producer, "then_branch", MIXRT_ATTR_GRAPH)->g = tb;
        node_attr_add(g, g->values[y].producer, "else_branch", MIXRT_ATTR_GRAPH)->g = eb;
        graph_set_output(g, y);
        struct mixrt_tensor *xt = tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){3, 5}), *ct = NULL;
        mixrt_tensor_create(ctx, MIXRT_DTYPE_BOOL, 0, NULL, &ct);
        ((uint8_t *)ct->data)[0] = 1;
        double after[16];
        double worst = passes_change(g, variant == 2 ? 2 : 1, (const struct mixrt_tensor *[]){xt, ct}, MIXRT_PASS_ALL,
                                     after, 16);
        double x0 = mixrt_load_f64(xt->data, MIXRT_DTYPE_F32, 1), want = variant == 1 ? -x0 : 2 * x0;
        TU_CHECK((count_op(g, "If") == 0) == (variant != 2) && worst == 0 && after[1] == want,
                 "if variant %d: %d If left, changed by %g, y[1] %g (want %g)", variant, count_op(g, "If"), worst,
                 after[1], want);
        mixrt_tensor_destroy(ctx, xt), mixrt_tensor_destroy(ctx, ct);
        mixrt_graph_destroy(g);
    }
}

/* ScatterND whose constant indices enumerate a box of data becomes slices of data
 * concatenated with the updates: the same output bit for bit (random data and updates).
 * Element indices [2, 2, 3, 4, 4] (box start [0, 1, 2, 0], the updates' shape [2, 2, 3, 4]) and
 * slice indices [3, 1] (rows 1-3 of data [5, 3, 4], as torch's dynamo export writes them);
 * the same indices with two rows swapped stay a ScatterND. */
static void test_scatter_box(void) {
    const int64_t dd[4] = {2, 3, 5, 4}, ud[4] = {2, 2, 3, 4}, st0[4] = {0, 1, 2, 0};
    const int64_t sd[3] = {5, 3, 4}, su[3] = {3, 3, 4};
    for (int variant = 0; variant < 4; variant++) {
        const bool rows = variant >= 2, shuffled = variant % 2 == 1;
        struct mixrt_graph *g = new_graph();
        TU_CHECK(mixrt_graph_require_opset(g, "", 17) == MIXRT_STATUS_OK, "opset");
        int data = add_input(g, "data", MIXRT_DTYPE_F32, rows ? 3 : 4, rows ? sd : dd);
        int upd = add_input(g, "upd", MIXRT_DTYPE_F32, rows ? 3 : 4, rows ? su : ud);
        double idx[2 * 2 * 3 * 4 * 4];
        int p = 0;
        if (rows) {
            for (p = 0; p < 3; p++) idx[p] = 1 + p;
        } else {
            for (int a = 0; a < 2; a++)
                for (int b2 = 0; b2 < 2; b2++)
                    for (int c = 0; c < 3; c++)
                        for (int d = 0; d < 4; d++, p++) {
                            const int at[4] = {a, b2, c, d};
                            for (int k = 0; k < 4; k++) idx[p * 4 + k] = (double)(st0[k] + at[k]);
                        }
        }
        const int k = rows ? 1 : 4;
        if (shuffled) /* rows 0 and 1 swapped: a scatter, not a box in order */
            for (int j = 0; j < k; j++) {
                double t = idx[k + j];
                idx[k + j] = idx[j], idx[j] = t;
            }
        int ix = rows ? add_const_values(ctx, g, "ix", MIXRT_DTYPE_I64, 2, (int64_t[]){3, 1}, idx)
                      : add_const_values(ctx, g, "ix", MIXRT_DTYPE_I64, 5, (int64_t[]){2, 2, 3, 4, 4}, idx);
        int y = add_op_node(g, "ScatterND", 3, (int[]){data, ix, upd}, "y");
        graph_set_output(g, y);
        struct mixrt_tensor *dt = tensor(MIXRT_DTYPE_F32, rows ? 3 : 4, rows ? sd : dd);
        struct mixrt_tensor *ut = tensor(MIXRT_DTYPE_F32, rows ? 3 : 4, rows ? su : ud);
        tu_seed(0x5ca7 + variant);
        for (size_t i = 0; i < mixrt_tensor_numel(dt); i++) ((float *)dt->data)[i] = (float)tu_uniform(-1, 1);
        for (size_t i = 0; i < mixrt_tensor_numel(ut); i++) ((float *)ut->data)[i] = (float)tu_uniform(2, 3);
        double after[128];
        double worst = passes_change(g, 2, (const struct mixrt_tensor *[]){dt, ut}, MIXRT_PASS_ALL, after, 128);
        /* element [1, 2, 4, 3] of the output is updates' [1, 1, 2, 3]; in the row case [3, 2, 1]
         * is updates' [2, 2, 1] (the swapped index rows - [0, 1, 2, 0] and [0, 1, 2, 1], or rows
         * 1 and 2 - do not write the element checked) */
        double want = rows ? mixrt_load_f64(ut->data, MIXRT_DTYPE_F32, (2 * 3 + 2) * 4 + 1)
                           : mixrt_load_f64(ut->data, MIXRT_DTYPE_F32, ((1 * 2 + 1) * 3 + 2) * 4 + 3);
        double got = rows ? after[(3 * 3 + 2) * 4 + 1] : after[((1 * 3 + 2) * 5 + 4) * 4 + 3];
        TU_CHECK((count_op(g, "ScatterND") == 0) == !shuffled && worst == 0 && got == want,
                 "scatter box variant %d: %d ScatterND left, changed by %g, y %g (want %g)", variant,
                 count_op(g, "ScatterND"), worst, got, want);
        mixrt_tensor_destroy(ctx, dt), mixrt_tensor_destroy(ctx, ut);
        mixrt_graph_destroy(g);
    }
}

int main(void) {
    mixrt_context_create(NULL, &ctx);
    test_pad_into_conv();
    test_conv_explicit_pads();
    test_conv_dead_taps();
    test_pool3d_split();
    test_unroll_loop();
    test_inline_if();
    test_scatter_box();
    test_transpose_view();
    test_transpose_cast();
    test_transpose_cast_pair();
    test_cast_chain();
    test_reduce_mean_gap();
    test_whole_window_pool();
    test_infer_data_ops();
    test_einsum();
    test_merge_matmul();
    test_merge_conv();
    test_const_fold();
    test_shape_fold();
    test_dce();
    test_cast();
    test_identity_alias();
    test_conv_bn();
    test_conv_mul();
    test_deconv_d2s();
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "no leak: %zu bytes", mixrt_context_bytes_in_use(ctx));
    mixrt_context_destroy(ctx);
    return tu_finish("test_passes");
}
