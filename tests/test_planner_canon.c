/* test_planner_canon.c - weak typing's canonicalization (mixrt_plan_canonicalize) keeps each
 * node's own dtype attribute in step with the values it rewrites: the window ops' output_datatype
 * (a bf16 BlackmanWindow / HannWindow / HammingWindow becomes an f32 one feeding a Cast to the
 * declared bf16 output). Run with the reference executor, every intermediate tensor has the
 * dtype the graph says and the output matches the window computed in f64, rounded to bf16.
 * And lowering drops each weight's f32 data as soon as nothing reads it any more: the
 * planning's peak holds each weight in one precision (plus the one being converted), never the
 * f32 and bf16 copies of all weights together. A Shape of a lowered value reads it as it is (no
 * Cast back to f32). An embedding table (a Gather from a constant of 64 K values or more) is read
 * in the lowest enabled precision. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/exec_ref.h"
#include "engine/tactics.h"
#include "precision/planner.h"
#include "testutil.h"
#include "graph_build.h"

static mixrt_context_t ctx;

/* The periodic windows of ONNX's spec in f64: a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N). */
static double window_ref(const char *op, int n, int size) {
    double x = 2.0 * M_PI * n / size;
    if (!strcmp(op, "BlackmanWindow")) return 0.42 - 0.5 * cos(x) + 0.08 * cos(2 * x);
    if (!strcmp(op, "HannWindow")) return 0.5 - 0.5 * cos(x);
    return 25.0 / 46.0 - (21.0 / 46.0) * cos(x); /* Hamming */
}

/* Observer (node, output slot j, its tensor): every tensor a layer makes has its graph
 * value's dtype. */
static int g_mismatch;
static void check_dtype(void *user, const struct mixrt_graph *g, int node, int j, const struct mixrt_tensor *t) {
    (void)user;
    int v = g->nodes[node].outputs[j];
    if (t && v >= 0 && t->dtype != g->values[v].dtype) g_mismatch++;
}

/* Runs g (sorted first) on its one input with the reference executor, the observer counting
 * tensors whose dtype is not their value's into g_mismatch; true when the run succeeded. */
static bool run_checked(struct mixrt_graph *g, const struct mixrt_tensor *x, struct mixrt_tensor *out) {
    const struct mixrt_tensor *in[1] = {x};
    memset(out, 0, sizeof(*out));
    g_mismatch = 0;
    struct mixrt_exec_opts xo = {NULL, NULL, check_dtype, NULL, NULL, NULL, NULL, NULL, 0};
    return mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK &&
           mixrt_exec_graph_opts(ctx, g, NULL, 1, in, NULL, out, NULL, NULL, &xo) == MIXRT_STATUS_OK;
}

static void test_window(const char *op) {
    struct mixrt_graph *g;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph");
    const int size = 10;
    int x = add_input(g, "size", MIXRT_DTYPE_I32, 0, NULL);
    int y = add_op_node(g, op, 1, &x, "y");
    node_attr_int(g, g->values[y].producer, "output_datatype", MIXRT_DTYPE_BF16);
    add_value(g, "y", MIXRT_DTYPE_BF16, 1, (int64_t[]){size});
    graph_set_output(g, y);
    TU_CHECK(mixrt_plan_canonicalize(g, MIXRT_DTYPE_F32) == MIXRT_STATUS_OK, "%s: canonicalize: %s", op,
             mixrt_context_last_error(ctx));
    const struct mixrt_node *w = NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, op)) w = &g->nodes[i];
    TU_CHECK(w && mixrt_node_attr_int(w, "output_datatype", 0) == MIXRT_DTYPE_F32 &&
                 g->values[w->outputs[0]].dtype == MIXRT_DTYPE_F32 && g->values[y].dtype == MIXRT_DTYPE_BF16,
             "%s: the window computes in f32 (output_datatype %lld) and the output stays bf16", op,
             w ? (long long)mixrt_node_attr_int(w, "output_datatype", 0) : -1LL);
    struct mixrt_tensor *ts;
    TU_CHECK(mixrt_tensor_create(ctx, MIXRT_DTYPE_I32, 0, NULL, &ts) == MIXRT_STATUS_OK, "input");
    *(int32_t *)ts->data = size;
    struct mixrt_tensor outs[1];
    TU_CHECK(run_checked(g, ts, &outs[0]), "%s: run: %s", op, mixrt_context_last_error(ctx));
    TU_CHECK(g_mismatch == 0, "%s: %d tensors with another dtype than their value's", op, g_mismatch);
    TU_CHECK(outs[0].dtype == MIXRT_DTYPE_BF16 && outs[0].rank == 1 && outs[0].dims[0] == size, "%s: output bf16 [%d]",
             op, size);
    double worst = 0;
    for (int n = 0; n < size && outs[0].dtype == MIXRT_DTYPE_BF16; n++) {
        double want = window_ref(op, n, size), got = mixrt_load_f64(outs[0].data, MIXRT_DTYPE_BF16, (size_t)n);
        worst = fmax(worst, fabs(got - want));
    }
    TU_CHECK(worst <= 4e-3, "%s: worst error %g against the f64 window (bf16 rounding: <= 2e-3 near 1)", op, worst);
    mixrt_tensor_release(ctx, &outs[0]);
    mixrt_tensor_destroy(ctx, ts);
    mixrt_graph_destroy(g);
}

/* ConstantOfShape without a value attribute makes f32 zeros: canonicalized to f64 it makes
 * f64 zeros, so that Add(zeros, x) runs with both sides f64 (it had stayed f32: torchvision's
 * Swin under the dynamo exporter failed `mixrt check`'s f64 reference in a ScatterND). */
static void test_constant_of_shape(void) {
    struct mixrt_graph *g;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph");
    int64_t xd[2] = {3, 5}, two = 2;
    double sh[2] = {3, 5};
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 2, xd);
    int s = add_const_values(ctx, g, "shape", MIXRT_DTYPE_I64, 1, &two, sh);
    int z = add_op_node(g, "ConstantOfShape", 1, &s, "zeros");
    int a[2] = {z, x};
    int y = add_op_node(g, "Add", 2, a, "y");
    graph_set_output(g, y);
    TU_CHECK(mixrt_graph_infer(g, NULL) == MIXRT_STATUS_OK &&
                 mixrt_plan_canonicalize(g, MIXRT_DTYPE_F64) == MIXRT_STATUS_OK &&
                 mixrt_graph_infer(g, NULL) == MIXRT_STATUS_OK,
             "ConstantOfShape: canonicalize: %s", mixrt_context_last_error(ctx));
    TU_CHECK(g->values[z].dtype == MIXRT_DTYPE_F64, "ConstantOfShape makes %s after canonicalizing to f64",
             mixrt_dtype_name(g->values[z].dtype));
    struct mixrt_tensor *tx;
    TU_CHECK(mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, 2, xd, &tx) == MIXRT_STATUS_OK, "input");
    for (int i = 0; i < 15; i++) ((float *)tx->data)[i] = (float)tu_uniform(-3, 3);
    struct mixrt_tensor outs[1];
    TU_CHECK(run_checked(g, tx, &outs[0]), "ConstantOfShape: run: %s", mixrt_context_last_error(ctx));
    TU_CHECK(g_mismatch == 0, "ConstantOfShape: %d tensors with another dtype than their value's", g_mismatch);
    bool same = outs[0].rank == 2 && mixrt_tensor_numel(&outs[0]) == 15;
    for (size_t i = 0; same && i < 15; i++)
        same = mixrt_load_f64(outs[0].data, outs[0].dtype, i) == (double)((float *)tx->data)[i];
    TU_CHECK(same, "ConstantOfShape: zeros + x is not x");
    mixrt_tensor_release(ctx, &outs[0]);
    mixrt_tensor_destroy(ctx, tx);
    mixrt_graph_destroy(g);
}

/* x [4, 256] through six MatMuls by [256, 256] f32 constants (256 KiB each) forced to bf16;
 * weight w0 is also read by a Shape (not precision-flexible: it keeps reading the f32 one). */
static void test_early_drop(void) {
    struct mixrt_graph *g;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph");
    static const struct mixrt_opset op17 = {"", 17};
    g->opsets = &op17, g->n_opsets = 1;
    enum { L = 6, D = 256 };
    int w[L], v = add_input(g, "x", MIXRT_DTYPE_F32, 2, (int64_t[]){4, D}), mid = -1;
    for (int i = 0; i < L; i++) {
        if (i == 3) mid = v;
        char wn[8], mn[8];
        snprintf(wn, sizeof(wn), "w%d", i);
        snprintf(mn, sizeof(mn), "mm%d", i);
        w[i] = add_const_uniform(ctx, g, wn, MIXRT_DTYPE_F32, 2, (int64_t[]){D, D}, 0.1);
        v = add_op_node(g, "MatMul", 2, (int[]){v, w[i]}, mn);
        add_value(g, mn, MIXRT_DTYPE_F32, 2, (int64_t[]){4, D});
    }
    graph_set_output(g, v);
    int sh = add_op_node(g, "Shape", 1, &w[0], "shape");
    add_value(g, "shape", MIXRT_DTYPE_I64, 1, (int64_t[]){2});
    graph_set_output(g, sh);
    int shm = add_op_node(g, "Shape", 1, &mid, "shape_mid");
    add_value(g, "shape_mid", MIXRT_DTYPE_I64, 1, (int64_t[]){2});
    graph_set_output(g, shm);
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort");
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.precisions = MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16;
    struct mixrt_layer_precision lp[1] = {{"mm*", MIXRT_DTYPE_BF16}};
    o.layer_precisions = lp, o.n_layer_precisions = 1, o.constraints = MIXRT_CONSTRAINTS_PREFER;
    struct mixrt_timing_cache *tc = NULL;
    TU_CHECK(mixrt_timing_cache_create(ctx, "test", &tc) == MIXRT_STATUS_OK, "timing cache");
    size_t before = mixrt_context_bytes_in_use(ctx), f32_bytes = (size_t)L * D * D * 4;
    /* the peak so far is the graph's own: planning's rise shows only if it goes higher */
    TU_CHECK(mixrt_context_bytes_peak(ctx) <= before + f32_bytes, "setup peak");
    TU_CHECK(mixrt_plan_lower(g, &o, tc) == MIXRT_STATUS_OK, "lower: %s", mixrt_context_last_error(ctx));
    size_t rise = mixrt_context_bytes_peak(ctx) > before ? mixrt_context_bytes_peak(ctx) - before : 0;
    /* all bf16 copies with all f32 originals alive would rise by f32_bytes / 2 (768 KiB) */
    TU_CHECK(rise < f32_bytes / 4, "planning's peak rose %zu bytes over the graph's %zu (f32 weights %zu): the f32 "
             "weights outlived their bf16 copies", rise, before, f32_bytes);
    TU_CHECK(g->values[w[0]].init != NULL, "w0 is still read by the Shape: its data must stay");
    for (int i = 1; i < L; i++) TU_CHECK(g->values[w[i]].init == NULL, "w%d: nothing reads its f32 data, still held", i);
    int mm = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "MatMul") && g->values[g->nodes[i].outputs[0]].dtype == MIXRT_DTYPE_BF16) mm++;
    TU_CHECK(mm == L, "%d of %d MatMuls in bf16", mm, L);
    /* A Shape reads dims only: it takes mm2's bf16 output as it is, not a Cast back to f32. */
    const struct mixrt_node *smid = NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].name, "shape_mid")) smid = &g->nodes[i];
    int sp = smid ? g->values[smid->inputs[0]].producer : -1;
    TU_CHECK(smid && g->values[smid->inputs[0]].dtype == MIXRT_DTYPE_BF16 && sp >= 0 &&
                 !strcmp(g->nodes[sp].op_type, "MatMul"),
             "the Shape of a bf16 layer's output reads %s made by %s", smid ? mixrt_dtype_name(g->values[smid->inputs[0]].dtype) : "?",
             sp >= 0 ? g->nodes[sp].op_type : "?");
    mixrt_timing_cache_destroy(tc);
    mixrt_graph_destroy(g);
}

/* An embedding: ids [2, 5] gather rows of a [1024, 64] f32 constant table (64 K values), plus a
 * dynamic f32 input. Lowered under {fp32, lowp} the Gather reads the table in lowp (nothing
 * dynamic and float to follow: the lowest enabled precision), under {fp32} in f32, and a
 * [1023, 64] table (under 64 K values) stays f32 under {fp32, bf16}. Run by the reference
 * executor the output is table[ids] + x within the table's rounding to lowp (f64 reference). */
static void test_embedding(unsigned precisions, int64_t rows, mixrt_dtype want) {
    struct mixrt_graph *g;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph");
    static const struct mixrt_opset op17 = {"", 17};
    g->opsets = &op17, g->n_opsets = 1;
    enum { B = 2, S = 5, D = 64 };
    int64_t idd[2] = {B, S}, yd[3] = {B, S, D};
    int ids = add_input(g, "ids", MIXRT_DTYPE_I64, 2, idd);
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 3, yd);
    int tab = add_const_uniform(ctx, g, "table", MIXRT_DTYPE_F32, 2, (int64_t[]){rows, D}, 1.0);
    int e = add_op_node(g, "Gather", 2, (int[]){tab, ids}, "emb");
    add_value(g, "emb", MIXRT_DTYPE_F32, 3, yd);
    int y = add_op_node(g, "Add", 2, (int[]){e, x}, "y");
    add_value(g, "y", MIXRT_DTYPE_F32, 3, yd);
    graph_set_output(g, y);
    /* the table's values, kept in f64 before lowering may drop them */
    double *t64 = malloc((size_t)rows * D * sizeof(double));
    for (size_t i = 0; i < (size_t)rows * D; i++) t64[i] = mixrt_load_f64(g->values[tab].init->data, MIXRT_DTYPE_F32, i);
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort");
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.precisions = precisions;
    struct mixrt_timing_cache *tc = NULL;
    TU_CHECK(mixrt_timing_cache_create(ctx, "test", &tc) == MIXRT_STATUS_OK, "timing cache");
    TU_CHECK(mixrt_plan_lower(g, &o, tc) == MIXRT_STATUS_OK, "lower: %s", mixrt_context_last_error(ctx));
    const struct mixrt_node *gn = NULL;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "Gather")) gn = &g->nodes[i];
    mixrt_dtype got = gn ? g->values[gn->outputs[0]].dtype : MIXRT_DTYPE_UNDEFINED;
    TU_CHECK(got == want && g->values[gn->inputs[0]].dtype == want, "embedding [%lld, %d] under precisions 0x%x: the "
             "Gather makes %s from a %s table, want %s", (long long)rows, D, precisions, mixrt_dtype_name(got),
             gn ? mixrt_dtype_name(g->values[gn->inputs[0]].dtype) : "?", mixrt_dtype_name(want));
    TU_CHECK(g->values[y].dtype == MIXRT_DTYPE_F32, "the output stays f32 (%s)", mixrt_dtype_name(g->values[y].dtype));
    struct mixrt_tensor *ti, *tx;
    TU_CHECK(mixrt_tensor_create(ctx, MIXRT_DTYPE_I64, 2, idd, &ti) == MIXRT_STATUS_OK &&
                 mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, 3, yd, &tx) == MIXRT_STATUS_OK, "inputs");
    for (int i = 0; i < B * S; i++) ((int64_t *)ti->data)[i] = (int64_t)(tu_uniform(0, 1) * (double)rows) % rows;
    for (int i = 0; i < B * S * D; i++) ((float *)tx->data)[i] = (float)tu_uniform(-1, 1);
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort after lowering");
    const struct mixrt_tensor *in[2] = {ti, tx};
    struct mixrt_tensor out;
    memset(&out, 0, sizeof(out));
    g_mismatch = 0;
    struct mixrt_exec_opts xo = {NULL, NULL, check_dtype, NULL, NULL, NULL, NULL, NULL, 0};
    TU_CHECK(mixrt_exec_graph_opts(ctx, g, NULL, 2, in, NULL, &out, NULL, NULL, &xo) == MIXRT_STATUS_OK, "run: %s",
             mixrt_context_last_error(ctx));
    TU_CHECK(g_mismatch == 0, "embedding: %d tensors with another dtype than their value's", g_mismatch);
    /* rounding to bf16 moves a value v by at most |v| 2^-8, to f16 by |v| 2^-11 (and f32 by
     * |v| 2^-24); the Add follows the Gather (x rounded too), so each of t, x and t + x may be */
    double u = want == MIXRT_DTYPE_BF16 ? 0x1p-8 : want == MIXRT_DTYPE_F16 ? 0x1p-11 : 0x1p-24, worst = 0, moved = 0;
    for (int i = 0; i < B * S * D && out.dtype == MIXRT_DTYPE_F32 && mixrt_tensor_numel(&out) == B * S * D; i++) {
        int64_t r = ((int64_t *)ti->data)[i / D];
        double t = t64[r * D + i % D], xv = (double)((float *)tx->data)[i], ref = t + xv;
        double err = fabs(mixrt_load_f64(out.data, MIXRT_DTYPE_F32, (size_t)i) - ref);
        worst = fmax(worst, err / (u * (fabs(t) + fabs(xv) + fabs(ref)) + 1e-30)), moved += err;
    }
    TU_CHECK(out.dtype == MIXRT_DTYPE_F32 && mixrt_tensor_numel(&out) == B * S * D, "output f32 [%d, %d, %d]", B, S, D);
    TU_CHECK(worst <= 1.0, "embedding in %s: worst error %g times the rounding bound over table[ids] + x (f64)",
             mixrt_dtype_name(want), worst);
    /* lowp: the table really was rounded (f32: the bound above, u = 2^-24, says it was not) */
    TU_CHECK(want == MIXRT_DTYPE_F32 || moved > B * S * D * 0x1p-24, "embedding in %s: total error %g",
             mixrt_dtype_name(want), moved);
    free(t64);
    mixrt_tensor_release(ctx, &out);
    mixrt_tensor_destroy(ctx, ti);
    mixrt_tensor_destroy(ctx, tx);
    mixrt_timing_cache_destroy(tc);
    mixrt_graph_destroy(g);
}

int main(void) {
    tu_seed(45);
    mixrt_context_create(NULL, &ctx);
    test_window("BlackmanWindow");
    test_window("HannWindow");
    test_window("HammingWindow");
    test_early_drop();
    test_constant_of_shape();
    test_embedding(MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16, 1024, MIXRT_DTYPE_BF16);
    test_embedding(MIXRT_PRECISION_FP32 | MIXRT_PRECISION_FP16, 1024, MIXRT_DTYPE_F16);
    test_embedding(MIXRT_PRECISION_FP32 | MIXRT_PRECISION_FP16 | MIXRT_PRECISION_BF16, 1024, MIXRT_DTYPE_BF16);
    test_embedding(MIXRT_PRECISION_FP32, 1024, MIXRT_DTYPE_F32);
    test_embedding(MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16, 1023, MIXRT_DTYPE_F32);
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "no leak: %zu bytes", mixrt_context_bytes_in_use(ctx));
    mixrt_context_destroy(ctx);
    return tu_finish("test_planner_canon");
}
