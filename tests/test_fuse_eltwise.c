/* test_fuse_eltwise.c - the element-wise chain fusion (fuse_eltwise.c) and the com.mixrt
 * ElementwiseChain kernels. (a) Small graphs: a chain fuses into one node whose reference
 * run matches the unfused graph, and f32 and bf16 engines built from the exported model match
 * the f64 reference of the unfused model; a branching value, an intermediate graph output, a
 * non-scalar broadcast operand and a non-constant Clip bound each stop the chain. (b) The fast
 * kernel "elt_chain" (AVX-512 and scalar twin, 1 and 2 threads) against the reference kernel
 * on random data around the tile size, every step code, swapped and scalar operands, f32 and
 * bf16. (c) Malformed nodes are named errors in both kernels. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/eltwise_chain_impl.h"
#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/exec_ref.h"
#include "backend/cpu/kernels.h"
#include "engine/engine_impl.h"
#include "graph_build.h"
#include "kernel_harness.h"
#include "mixrt/mixrt_engine.h"
#include "onnx/export.h"
#include "passes/passes.h"
#include "testutil.h"

static mixrt_context_t ctx;

/* ---- graph building --------------------------------------------------------------------- */

static int un(struct mixrt_graph *g, const char *op, int x, const char *out) { return add_op_node(g, op, 1, &x, out); }
static int bin(struct mixrt_graph *g, const char *op, int a, int b, const char *out) {
    int ins[2] = {a, b};
    return add_op_node(g, op, 2, ins, out);
}

static void attr_float(struct mixrt_graph *g, int vi, const char *name, float v) {
    struct mixrt_node *nd = &g->nodes[g->values[vi].producer];
    struct mixrt_attr *a = mixrt_arena_calloc(g->arena, (size_t)nd->n_attrs + 1, sizeof(*a));
    if (nd->n_attrs) memcpy(a, nd->attrs, (size_t)nd->n_attrs * sizeof(*a));
    nd->attrs = a;
    a[nd->n_attrs].name = name;
    a[nd->n_attrs].type = MIXRT_ATTR_FLOAT;
    a[nd->n_attrs].f = v;
    nd->n_attrs++;
}

static struct mixrt_graph *new_graph(void) {
    struct mixrt_graph *g = NULL;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph");
    static const struct mixrt_opset ops[] = {{"", 17}};
    g->opsets = ops;
    g->n_opsets = 1;
    g->ir_version = 8;
    g->name = "chain";
    return g;
}

static int count_op(const struct mixrt_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !strcmp(g->nodes[i].op_type, op);
    return n;
}

static const int64_t SHAPE[3] = {2, 3, 37};

/* The positive case: x -> Add(b, full) -> Mul(scalar) -> Relu -> Sub(scalar - v) -> Tanh ->
 * Clip(const bounds) -> Div(v / full) -> LeakyRelu -> Max(scalar, v) -> Gelu(tanh) -> HardSwish -> y. */
static struct mixrt_graph *build_chain(mixrt_dtype dt) {
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", dt, 3, SHAPE), b = add_input(g, "b", dt, 3, SHAPE);
    double v2 = 1.5, v3 = 0.25, lo = -0.75, hi = 0.875, dmin = -0.3; /* bounds exact as floats */
    int64_t one = 1;
    int c2 = add_const_values(ctx, g, "c2", dt, 0, NULL, &v2), c3 = add_const_values(ctx, g, "c3", dt, 1, &one, &v3);
    int clo = add_const_values(ctx, g, "lo", dt, 0, NULL, &lo), chi = add_const_values(ctx, g, "hi", dt, 0, NULL, &hi);
    int cm = add_const_values(ctx, g, "m", dt, 0, NULL, &dmin);
    int v = bin(g, "Add", x, b, "a1");
    v = bin(g, "Mul", v, c2, "a2");
    v = un(g, "Relu", v, "a3");
    v = bin(g, "Sub", c3, v, "a4");
    v = un(g, "Tanh", v, "a5");
    int ins[3] = {v, clo, chi};
    v = add_op_node(g, "Clip", 3, ins, "a6");
    v = bin(g, "Div", v, b, "a7");
    v = un(g, "LeakyRelu", v, "a8");
    attr_float(g, v, "alpha", 0.2f);
    v = bin(g, "Max", cm, v, "a9");
    v = un(g, "HardSwish", v, "y");
    graph_set_output(g, v);
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort");
    TU_CHECK(mixrt_graph_infer(g, NULL) == MIXRT_STATUS_OK, "infer: %s", mixrt_context_last_error(ctx));
    return g;
}

static struct mixrt_tensor *rand_tensor(mixrt_dtype dt, int rank, const int64_t *dims, double lo, double hi) {
    struct mixrt_tensor *t;
    TU_CHECK(mixrt_tensor_create(ctx, dt, rank, dims, &t) == MIXRT_STATUS_OK, "tensor");
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) mixrt_store_f64(t->data, dt, i, tu_uniform(lo, hi));
    return t;
}

/* ||a - b|| / ||b||; NaN positions must agree (they count as equal), else +inf. */
static double nerr(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            if (isnan(a[i]) != isnan(b[i])) return INFINITY;
            continue;
        }
        if (isinf(a[i]) || isinf(b[i])) {
            if (a[i] != b[i]) return INFINITY;
            continue;
        }
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static double *to_f64(const struct mixrt_tensor *t) {
    size_t n = mixrt_tensor_numel(t);
    double *r = malloc((n ? n : 1) * sizeof(double));
    for (size_t i = 0; i < n; i++) r[i] = mixrt_load_f64(t->data, t->dtype, i);
    return r;
}

/* Runs g on the reference executor; output oi as doubles (caller frees). */
static double *run_graph(struct mixrt_graph *g, int n_in, struct mixrt_tensor **in, int oi, size_t *n) {
    struct mixrt_tensor outs[4];
    memset(outs, 0, sizeof(outs));
    *n = 0;
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort: %s", mixrt_context_last_error(ctx));
    mixrt_status st = mixrt_exec_graph(ctx, g, NULL, n_in, (const struct mixrt_tensor *const *)in, NULL, outs, NULL, NULL);
    TU_CHECK(st == MIXRT_STATUS_OK, "exec: %s", mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) return NULL;
    *n = mixrt_tensor_numel(&outs[oi]);
    double *r = to_f64(&outs[oi]);
    for (int i = 0; i < g->n_outputs; i++) mixrt_tensor_release(ctx, &outs[i]);
    return r;
}

/* ---- (a) the pass ------------------------------------------------------------------------ */

/* Engines (fp32; bf16 by --layer-precision) from the unfused model against its f64 reference engine. */
static void check_engines(const char *path) {
    mixrt_engine_t r = NULL;
    TU_CHECK(mixrt_engine_build_reference(ctx, path, NULL, 0, &r) == MIXRT_STATUS_OK, "reference engine: %s",
             mixrt_context_last_error(ctx));
    struct mixrt_tensor *in[2] = {rand_tensor(MIXRT_DTYPE_F32, 3, SHAPE, -2, 2), rand_tensor(MIXRT_DTYPE_F32, 3, SHAPE, 0.5, 2)};
    const char *names[2] = {"x", "b"};
    struct mixrt_tensor *yr = NULL;
    TU_CHECK(r && mixrt_engine_run(r, 2, names, (const struct mixrt_tensor *const *)in, &yr) == MIXRT_STATUS_OK,
             "reference run: %s", mixrt_context_last_error(ctx));
    for (int bf = 0; bf < 2 && yr; bf++) {
        struct mixrt_build_options o;
        mixrt_build_options_init(&o);
        o.precisions = MIXRT_PRECISION_FP32 | (bf ? MIXRT_PRECISION_BF16 : 0);
        /* With f32 graph inputs an untimed op follows them in f32: the rule puts it in bf16. */
        static const struct mixrt_layer_precision all_bf16 = {"*", MIXRT_DTYPE_BF16};
        if (bf) o.layer_precisions = &all_bf16, o.n_layer_precisions = 1;
        mixrt_engine_t e = NULL;
        mixrt_status st = mixrt_engine_build(ctx, path, &o, &e);
        TU_CHECK(st == MIXRT_STATUS_OK, "engine (%s): %s", bf ? "bf16" : "fp32", mixrt_context_last_error(ctx));
        if (st != MIXRT_STATUS_OK) continue;
        int chains = 0;
        bool fast = false;
        mixrt_dtype prec = MIXRT_DTYPE_UNDEFINED;
        for (size_t i = 0; i < mixrt_engine_layer_count(e); i++) {
            struct mixrt_layer_info li;
            mixrt_engine_get_layer(e, i, &li);
            if (strcmp(li.op_type, "ElementwiseChain")) continue;
            chains++;
            fast = !strcmp(li.kernel, "elt_chain");
            prec = li.precision;
        }
        TU_CHECK(chains == 1 && fast, "engine (%s): %d ElementwiseChain layers, elt_chain %d", bf ? "bf16" : "fp32",
                 chains, fast);
        TU_CHECK(prec == (bf ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32), "engine (%s): chain runs in %s", bf ? "bf16" : "fp32",
                 mixrt_dtype_name(prec));
        struct mixrt_tensor *ye = NULL;
        st = mixrt_engine_run(e, 2, names, (const struct mixrt_tensor *const *)in, &ye);
        TU_CHECK(st == MIXRT_STATUS_OK, "engine run: %s", mixrt_context_last_error(ctx));
        if (st == MIXRT_STATUS_OK) {
            double *a = to_f64(ye), *b = to_f64(yr);
            double err = nerr(a, b, mixrt_tensor_numel(yr)), tol = bf ? 2e-2 : 1e-5;
            TU_CHECK(err <= tol, "engine (%s) vs f64 reference of the unfused model: error %.3g > %.3g", bf ? "bf16" : "fp32",
                     err, tol);
            free(a);
            free(b);
        }
        mixrt_tensor_destroy(ctx, ye);
        mixrt_engine_destroy(e);
    }
    mixrt_tensor_destroy(ctx, yr);
    for (int i = 0; i < 2; i++) mixrt_tensor_destroy(ctx, in[i]);
    mixrt_engine_destroy(r);
}

static void test_chain_fuses(void) {
    static const mixrt_dtype dts[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F64};
    for (int d = 0; d < 3; d++) {
        mixrt_dtype dt = dts[d];
        struct mixrt_graph *g = build_chain(dt);
        int n0 = g->n_nodes;
        struct mixrt_tensor *in[2] = {rand_tensor(dt, 3, SHAPE, -2, 2), rand_tensor(dt, 3, SHAPE, 0.5, 2)};
        size_t na, nb;
        double *y0 = run_graph(g, 2, in, 0, &na);
        if (d == 0) {
            char path[256];
            snprintf(path, sizeof(path), "/tmp/mixrt_test_fuse_eltwise_%d.onnx", (int)getpid());
            if (kh_export_model(ctx, g, path)) check_engines(path);
            unlink(path);
        }
        struct mixrt_pass_stats stats;
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &stats) == MIXRT_STATUS_OK, "passes: %s", mixrt_context_last_error(ctx));
        TU_CHECK(g->n_nodes == 1 && count_op(g, "ElementwiseChain") == 1 && stats.eltwise_fused == n0,
                 "%s: %d nodes (%d chains), %d absorbed, expected one chain of %d", mixrt_dtype_name(dt), g->n_nodes,
                 count_op(g, "ElementwiseChain"), stats.eltwise_fused, n0);
        TU_CHECK(mixrt_graph_opset(g, MIXRT_DOMAIN) == MIXRT_DOMAIN_VERSION, "com.mixrt imported");
        if (g->n_nodes == 1) {
            const struct mixrt_node *n = &g->nodes[0];
            size_t k = 0;
            mixrt_node_attr_ints(n, "ops", &k);
            /* x, then b (read by two steps: one input) and the three scalar operands */
            TU_CHECK(k == (size_t)n0 && n->n_inputs == 5, "%zu steps, %d inputs", k, n->n_inputs);
        }
        double *y1 = run_graph(g, 2, in, 0, &nb);
        double tol = dt == MIXRT_DTYPE_BF16 ? 3e-2 : dt == MIXRT_DTYPE_F32 ? 1e-6 : 1e-12;
        if (y0 && y1 && na == nb) {
            double e = nerr(y1, y0, na);
            TU_CHECK(e <= tol, "%s: fused vs unfused error %.3g > %.3g", mixrt_dtype_name(dt), e, tol);
        } else {
            TU_CHECK(false, "%s: outputs missing", mixrt_dtype_name(dt));
        }
        free(y0);
        free(y1);
        for (int i = 0; i < 2; i++) mixrt_tensor_destroy(ctx, in[i]);
        mixrt_graph_destroy(g);
    }
}

enum stopper { STOP_BRANCH, STOP_OUTPUT, STOP_BROADCAST, STOP_CLIP_INPUT, STOP_MAIN_BROADCAST };

/* x -> Relu -> a -> Tanh -> y, with the stopper between the two steps. */
static void check_stopper(enum stopper s, const char *what) {
    struct mixrt_graph *g = new_graph();
    int64_t row[2] = {3, 1}, small[3] = {1, 1, 37}; /* row: broadcast along the middle axis */
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 3, s == STOP_MAIN_BROADCAST ? small : SHAPE);
    int n_in = 1, y2 = -1;
    int a = un(g, "Relu", x, "a");
    int y;
    switch (s) {
    case STOP_BRANCH:
        y = un(g, "Tanh", a, "y");
        y2 = un(g, "Neg", a, "y2");
        break;
    case STOP_OUTPUT:
        y = un(g, "Tanh", a, "y");
        y2 = a;
        break;
    case STOP_BROADCAST: {
        int b = add_input(g, "b", MIXRT_DTYPE_F32, 2, row);
        n_in = 2;
        y = bin(g, "Add", a, b, "y");
        break;
    }
    case STOP_CLIP_INPUT: {
        double hi = 0.5;
        int lo = add_input(g, "lo", MIXRT_DTYPE_F32, 0, NULL), chi = add_const_values(ctx, g, "hi", MIXRT_DTYPE_F32, 0, NULL, &hi);
        n_in = 2;
        int ins[3] = {a, lo, chi};
        y = add_op_node(g, "Clip", 3, ins, "y");
        break;
    }
    default: { /* the running value [1,1,37] broadcast against a full [2,3,37] operand */
        int b = add_input(g, "b", MIXRT_DTYPE_F32, 3, SHAPE);
        n_in = 2;
        y = bin(g, "Mul", a, b, "y");
        break;
    }
    }
    graph_set_output(g, y);
    if (y2 >= 0) graph_set_output(g, y2);
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort");
    TU_CHECK(mixrt_graph_infer(g, NULL) == MIXRT_STATUS_OK, "infer");
    int n0 = g->n_nodes;
    struct mixrt_tensor *in[2] = {rand_tensor(MIXRT_DTYPE_F32, 3, s == STOP_MAIN_BROADCAST ? small : SHAPE, -2, 2), NULL};
    if (s == STOP_BROADCAST) in[1] = rand_tensor(MIXRT_DTYPE_F32, 2, row, -1, 1);
    if (s == STOP_CLIP_INPUT) in[1] = rand_tensor(MIXRT_DTYPE_F32, 0, NULL, -0.5, 0);
    if (s == STOP_MAIN_BROADCAST) in[1] = rand_tensor(MIXRT_DTYPE_F32, 3, SHAPE, -1, 1);
    size_t na, nb;
    double *y0 = run_graph(g, n_in, in, 0, &na);
    struct mixrt_pass_stats stats;
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &stats) == MIXRT_STATUS_OK, "passes: %s", mixrt_context_last_error(ctx));
    TU_CHECK(count_op(g, "ElementwiseChain") == 0 && g->n_nodes == n0 && stats.eltwise_fused == 0,
             "%s: %d chains, %d nodes of %d", what, count_op(g, "ElementwiseChain"), g->n_nodes, n0);
    double *y1 = run_graph(g, n_in, in, 0, &nb);
    TU_CHECK(y0 && y1 && na == nb && nerr(y1, y0, na) == 0, "%s: output changed", what);
    free(y0);
    free(y1);
    for (int i = 0; i < 2; i++)
        if (in[i]) mixrt_tensor_destroy(ctx, in[i]);
    mixrt_graph_destroy(g);
}

/* A per-channel scale of a channels-last tensor (PoolFormer's layer scale between its pooling
 * residuals): x - b, times a vector along the last axis ([37] and [1,1,37]), plus c, then a
 * shift by the same vector swapped: one chain, the reference's output unchanged. */
static void test_last_axis_operand(void) {
    for (int form = 0; form < 2; form++) {
        struct mixrt_graph *g = new_graph();
        int64_t vd[3] = {1, 1, 37};
        int x = add_input(g, "x", MIXRT_DTYPE_F32, 3, SHAPE), b = add_input(g, "b", MIXRT_DTYPE_F32, 3, SHAPE);
        int c = add_input(g, "c", MIXRT_DTYPE_F32, 3, SHAPE);
        double vv[37];
        for (int i = 0; i < 37; i++) vv[i] = tu_uniform(-2, 2);
        int ls = add_const_values(ctx, g, "ls", MIXRT_DTYPE_F32, form ? 3 : 1, form ? vd : vd + 2, vv);
        int v = bin(g, "Sub", x, b, "s");
        v = bin(g, "Mul", form ? ls : v, form ? v : ls, "m");
        v = bin(g, "Add", v, c, "a");
        v = bin(g, "Sub", ls, v, "y");
        graph_set_output(g, v);
        TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort");
        TU_CHECK(mixrt_graph_infer(g, NULL) == MIXRT_STATUS_OK, "infer: %s", mixrt_context_last_error(ctx));
        struct mixrt_tensor *in[3];
        for (int i = 0; i < 3; i++) in[i] = rand_tensor(MIXRT_DTYPE_F32, 3, SHAPE, -2, 2);
        size_t na, nb;
        double *y0 = run_graph(g, 3, in, 0, &na);
        struct mixrt_pass_stats stats;
        TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &stats) == MIXRT_STATUS_OK, "passes: %s",
                 mixrt_context_last_error(ctx));
        TU_CHECK(count_op(g, "ElementwiseChain") == 1 && g->n_nodes == 1,
                 "last-axis operand (form %d): %d chains in %d nodes, expected one", form,
                 count_op(g, "ElementwiseChain"), g->n_nodes);
        double *y1 = run_graph(g, 3, in, 0, &nb);
        TU_CHECK(y0 && y1 && na == nb && nerr(y1, y0, na) <= 1e-6, "last-axis operand (form %d): output changed (%.3g)",
                 form, y0 && y1 && na == nb ? nerr(y1, y0, na) : -1.0);
        free(y0);
        free(y1);
        for (int i = 0; i < 3; i++) mixrt_tensor_destroy(ctx, in[i]);
        mixrt_graph_destroy(g);
    }
}

static void test_stoppers(void) {
    check_stopper(STOP_BRANCH, "branching value");
    check_stopper(STOP_OUTPUT, "intermediate graph output");
    check_stopper(STOP_BROADCAST, "broadcast operand not along the last axis");
    check_stopper(STOP_CLIP_INPUT, "non-constant Clip bound");
    check_stopper(STOP_MAIN_BROADCAST, "running value broadcast");
}

/* ---- (b) fast kernel against the reference ---------------------------------------------- */

static const struct mixrt_cpu_kernel *fast_kernel(void) {
    return mixrt_cpu_kernel_find("elt_chain", MIXRT_DOMAIN, "ElementwiseChain");
}

/* One node on the harness: inputs X0 [n], X1 [n] (full), X2 [] (scalar); the steps given. */
static void begin_node(int n_steps, const int64_t *ops, const int64_t *opd, const int64_t *sw, const float *prm) {
    kh_begin("ElementwiseChain", 1, 3, 1);
    kh_N->domain = MIXRT_DOMAIN;
    kh_attr_ints("ops", (int64_t *)ops, (size_t)n_steps);
    kh_attr_ints("operands", (int64_t *)opd, (size_t)n_steps);
    if (sw) kh_attr_ints("swapped", (int64_t *)sw, (size_t)n_steps);
    if (prm) kh_attr_floats("params", (float *)prm, 4 * (size_t)n_steps);
}

/* Runs the current node with the reference, then the fast kernel (both ISAs, 1-2 threads). */
static void compare(const char *what, mixrt_dtype dt, size_t n) {
    const struct mixrt_cpu_kernel *fk = fast_kernel();
    mixrt_status st = kh_run();
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: reference: %s", what, mixrt_context_last_error(kh_ctx));
    if (st != MIXRT_STATUS_OK || !fk) return;
    double *ref = to_f64(&kh_out[0]);
    mixrt_tensor_release(kh_ctx, &kh_out[0]);
    double tol = dt == MIXRT_DTYPE_BF16 ? 1e-2 : 1e-5;
    /* isa 0: the CPU's own spans; 1: scalar; 2: AVX2 forced where the CPU also has AVX-512 */
    for (int scalar = 0; scalar < 3; scalar++)
        for (int threads = 1; threads <= (n > 10000 ? 2 : 1); threads++) {
            if (scalar == 2 && !(mixrt_elt_has_avx512() && mixrt_elt_has_avx2())) continue;
#ifdef _OPENMP
            omp_set_num_threads(threads);
#endif
            mixrt_elt_force_scalar(scalar == 1);
            mixrt_elt_force_avx2(scalar == 2);
            st = kh_run_kernel(fk->run, NULL);
            TU_CHECK(st == MIXRT_STATUS_OK, "%s: fast: %s", what, mixrt_context_last_error(kh_ctx));
            if (st == MIXRT_STATUS_OK) {
                TU_CHECK(mixrt_tensor_numel(&kh_out[0]) == n && kh_out[0].dtype == dt, "%s: output shape/dtype", what);
                double *y = to_f64(&kh_out[0]);
                double e = nerr(y, ref, n);
                TU_CHECK(e <= tol, "%s (%s, %d threads): fast vs reference error %.3g > %.3g", what,
                         scalar == 1 ? "scalar" : mixrt_elt_isa(), threads, e, tol);
                free(y);
            }
            mixrt_tensor_release(kh_ctx, &kh_out[0]);
        }
    mixrt_elt_force_scalar(false);
    mixrt_elt_force_avx2(false);
    free(ref);
}

/* Input range per unary code, inside the domain (Sqrt) and away from overflow (Exp). */
static void unary_range(int64_t op, double *lo, double *hi) {
    *lo = -4, *hi = 4;
    if (op == MIXRT_CHAIN_SQRT) *lo = 0;
    if (op == MIXRT_CHAIN_RECIPROCAL) *lo = 0.25;
}

static void test_kernel_vs_reference(void) {
    static const size_t sizes[] = {1, 15, 16, 17, 511, 512, 513, 100000};
    static const mixrt_dtype dts[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};
    int64_t one = 1;
    for (int d = 0; d < 2; d++)
        for (size_t si = 0; si < sizeof(sizes) / sizeof(sizes[0]); si++)
            for (int64_t op = MIXRT_CHAIN_ADD; op < MIXRT_CHAIN_COUNT; op++)
                for (int var = 0; var < 2; var++) {
                    mixrt_dtype dt = dts[d];
                    int64_t n = (int64_t)sizes[si];
                    bool b = mixrt_chain_op_binary(op);
                    double lo, hi;
                    unary_range(op, &lo, &hi);
                    /* binary: op with the full operand then with the scalar, one side swapped
                     * each (var flips which); unary: scale by the scalar (swapped or not), then op */
                    int64_t ops[3], opd[3], sw[3];
                    float prm[12] = {0, 0, -INFINITY, INFINITY, 0, 0, -INFINITY, INFINITY, 0, 0, -INFINITY, INFINITY};
                    int ns;
                    if (b) {
                        ops[0] = op, opd[0] = 1, sw[0] = var;
                        ops[1] = op, opd[1] = 2, sw[1] = !var;
                        ops[2] = MIXRT_CHAIN_TANH, opd[2] = 0, sw[2] = 0;
                        ns = 3;
                    } else {
                        ops[0] = MIXRT_CHAIN_MUL, opd[0] = 2, sw[0] = var;
                        ops[1] = op, opd[1] = 0, sw[1] = 0;
                        float *p = prm + 4;
                        if (op == MIXRT_CHAIN_LEAKY_RELU) p[0] = 0.15f;
                        if (op == MIXRT_CHAIN_HARD_SIGMOID) p[0] = 0.3f, p[1] = 0.4f;
                        if (op == MIXRT_CHAIN_CLIP) p[2] = var ? -0.5f : -INFINITY, p[3] = var ? 0.7f : 1.5f;
                        ns = 2;
                    }
                    begin_node(ns, ops, opd, sw, prm);
                    /* operands away from 0 so Div stays well-conditioned */
                    struct mixrt_tensor *x0 = rand_tensor(dt, 1, &n, b ? -3 : lo, b ? 3 : hi);
                    struct mixrt_tensor *x1 = rand_tensor(dt, 1, &n, 0.5, 2);
                    struct mixrt_tensor *x2 = rand_tensor(dt, var ? 1 : 0, &one, b ? 0.5 : 1.0, b ? 2 : 1.0);
                    if (!b) mixrt_store_f64(x2->data, dt, 0, var ? 1.0 : 0.75); /* Mul keeps the range */
                    kh_in[0] = x0, kh_in[1] = x1, kh_in[2] = x2;
                    char what[128];
                    snprintf(what, sizeof(what), "op %lld var %d n %lld %s", (long long)op, var, (long long)n,
                             mixrt_dtype_name(dt));
                    compare(what, dt, (size_t)n);
                    kh_end();
                    mixrt_tensor_destroy(ctx, x0);
                    mixrt_tensor_destroy(ctx, x1);
                    mixrt_tensor_destroy(ctx, x2);
                }
}

/* Last-axis vector operands against the reference: X0 [rows, C] with C not dividing the tile
 * (7, 100) and dividing it (64), the tensor from under one tile to many; X1 full, X2 [C] or
 * [1, C]: Sub(X1), Mul(X2), Add(X2) swapped, Tanh. */
static void test_kernel_last_axis(void) {
    static const int64_t cs[] = {7, 64, 100}, rows[] = {1, 9, 77, 300};
    for (int d = 0; d < 2; d++)
        for (size_t ci = 0; ci < 3; ci++)
            for (size_t ri = 0; ri < 4; ri++) {
                mixrt_dtype dt = d ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32;
                int64_t xd[2] = {rows[ri], cs[ci]}, vd[2] = {1, cs[ci]};
                int64_t ops[4] = {MIXRT_CHAIN_SUB, MIXRT_CHAIN_MUL, MIXRT_CHAIN_ADD, MIXRT_CHAIN_TANH};
                int64_t opd[4] = {1, 2, 2, 0}, sw[4] = {0, 0, 1, 0};
                begin_node(4, ops, opd, sw, NULL);
                struct mixrt_tensor *x0 = rand_tensor(dt, 2, xd, -2, 2), *x1 = rand_tensor(dt, 2, xd, -1, 1);
                struct mixrt_tensor *x2 = rand_tensor(dt, ri % 2 ? 2 : 1, ri % 2 ? vd : vd + 1, 0.25, 1.5);
                kh_in[0] = x0, kh_in[1] = x1, kh_in[2] = x2;
                char what[128];
                snprintf(what, sizeof(what), "last-axis operand [%lld, %lld] %s", (long long)xd[0], (long long)xd[1],
                         mixrt_dtype_name(dt));
                compare(what, dt, (size_t)(xd[0] * xd[1]));
                kh_end();
                mixrt_tensor_destroy(ctx, x0);
                mixrt_tensor_destroy(ctx, x1);
                mixrt_tensor_destroy(ctx, x2);
            }
}

/* A long chain of every unary code on one tensor, with NaN and infinities among the inputs. */
static void test_long_chain_specials(void) {
    for (int d = 0; d < 2; d++) {
        mixrt_dtype dt = d ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32;
        int64_t n = 1000, one = 1, ops[20], opd[20], sw[20];
        float prm[80];
        int ns = 0;
        for (int64_t op = MIXRT_CHAIN_RELU; op < MIXRT_CHAIN_COUNT && ns < 20; op++) {
            if (op == MIXRT_CHAIN_SQRT || op == MIXRT_CHAIN_RECIPROCAL || op == MIXRT_CHAIN_EXP) continue;
            ops[ns] = op, opd[ns] = 0, sw[ns] = 0;
            float *p = prm + 4 * ns;
            p[0] = 0.1f, p[1] = 0.5f, p[2] = -2.0f, p[3] = 2.0f;
            ns++;
            ops[ns] = MIXRT_CHAIN_MUL, opd[ns] = 2, sw[ns] = 0;
            p = prm + 4 * ns;
            p[0] = p[1] = 0, p[2] = -INFINITY, p[3] = INFINITY;
            ns++;
        }
        begin_node(ns, ops, opd, sw, prm);
        struct mixrt_tensor *x0 = rand_tensor(dt, 1, &n, -5, 5), *x1 = rand_tensor(dt, 1, &n, -1, 1);
        struct mixrt_tensor *x2 = rand_tensor(dt, 1, &one, 2.5, 2.5);
        mixrt_store_f64(x0->data, dt, 3, NAN);
        mixrt_store_f64(x0->data, dt, 500, INFINITY);
        mixrt_store_f64(x0->data, dt, 700, -INFINITY);
        kh_in[0] = x0, kh_in[1] = x1, kh_in[2] = x2;
        compare(d ? "long chain bf16" : "long chain f32", dt, (size_t)n);
        kh_end();
        mixrt_tensor_destroy(ctx, x0);
        mixrt_tensor_destroy(ctx, x1);
        mixrt_tensor_destroy(ctx, x2);
    }
}

/* ---- (c) malformed nodes ----------------------------------------------------------------- */

static void expect_invalid(const char *what, const char *needle) {
    const struct mixrt_cpu_kernel *fk = fast_kernel();
    for (int fast = 0; fast < 2; fast++) {
        mixrt_status st = fast ? (fk ? kh_run_kernel(fk->run, NULL) : MIXRT_STATUS_INVALID_MODEL) : kh_run();
        const char *msg = mixrt_context_last_error(kh_ctx);
        TU_CHECK(st == MIXRT_STATUS_INVALID_MODEL && strstr(msg, "ElementwiseChain") && strstr(msg, needle),
                 "%s (%s kernel): status %d, '%s'", what, fast ? "fast" : "reference", st, msg);
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
    }
    kh_end();
}

static void test_malformed(void) {
    int64_t n = 40, one = 1, n2 = 39;
    struct mixrt_tensor *x0 = rand_tensor(MIXRT_DTYPE_F32, 1, &n, -1, 1), *x1 = rand_tensor(MIXRT_DTYPE_F32, 1, &n, -1, 1);
    struct mixrt_tensor *x2 = rand_tensor(MIXRT_DTYPE_F32, 1, &one, 1, 2), *bad = rand_tensor(MIXRT_DTYPE_F32, 1, &n2, 1, 2);
    struct mixrt_tensor *xb = rand_tensor(MIXRT_DTYPE_BF16, 1, &n, -1, 1);
    int64_t ops[2] = {MIXRT_CHAIN_ADD, MIXRT_CHAIN_RELU}, opd[2] = {1, 0}, sw[2] = {0, 0};
    float prm[8] = {0};
#define SET_INPUTS() (kh_in[0] = x0, kh_in[1] = x1, kh_in[2] = x2)
    int64_t bad_op[2] = {0, MIXRT_CHAIN_RELU};
    begin_node(2, bad_op, opd, sw, prm);
    SET_INPUTS();
    expect_invalid("op code 0", "'ops'");
    int64_t big_op[2] = {MIXRT_CHAIN_ADD, 99};
    begin_node(2, big_op, opd, sw, prm);
    SET_INPUTS();
    expect_invalid("op code 99", "'ops'");
    int64_t bad_opd[2] = {3, 0};
    begin_node(2, ops, bad_opd, sw, prm);
    SET_INPUTS();
    expect_invalid("operand index 3 of 3 inputs", "operand");
    int64_t unary_opd[2] = {1, 2};
    begin_node(2, ops, unary_opd, sw, prm);
    SET_INPUTS();
    expect_invalid("unary step with an operand", "operand");
    begin_node(1, ops, opd, sw, NULL); /* 1 step, 5 params */
    kh_attr_floats("params", prm, 5);
    SET_INPUTS();
    expect_invalid("params not 4 per step", "'params'");
    int64_t bad_sw[2] = {2, 0};
    begin_node(2, ops, opd, bad_sw, prm);
    SET_INPUTS();
    expect_invalid("swapped 2", "'swapped'");
    kh_begin("ElementwiseChain", 1, 3, 1);
    kh_N->domain = MIXRT_DOMAIN;
    kh_attr_ints("ops", ops, 2);
    SET_INPUTS();
    expect_invalid("operands missing", "'operands'");
    begin_node(2, ops, opd, sw, prm);
    kh_in[0] = x0, kh_in[1] = bad, kh_in[2] = x2;
    expect_invalid("operand of another shape", "input #1");
    begin_node(2, ops, opd, sw, prm);
    kh_in[0] = x0, kh_in[1] = xb, kh_in[2] = x2;
    {
        mixrt_status st = kh_run();
        TU_CHECK(st != MIXRT_STATUS_OK && strstr(mixrt_context_last_error(kh_ctx), "ElementwiseChain"),
                 "mixed dtypes: status %d '%s'", st, mixrt_context_last_error(kh_ctx));
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
        kh_end();
    }
#undef SET_INPUTS
    mixrt_tensor_destroy(ctx, x0);
    mixrt_tensor_destroy(ctx, x1);
    mixrt_tensor_destroy(ctx, x2);
    mixrt_tensor_destroy(ctx, bad);
    mixrt_tensor_destroy(ctx, xb);
}

int main(void) {
    TU_CHECK(mixrt_context_create(NULL, &ctx) == MIXRT_STATUS_OK, "context");
    TU_CHECK(mixrt_context_create(NULL, &kh_ctx) == MIXRT_STATUS_OK, "harness context");
    TU_CHECK(fast_kernel() != NULL, "elt_chain registered");
    tu_seed(0xe17c);
    test_chain_fuses();
    test_stoppers();
    test_last_axis_operand();
    test_kernel_vs_reference();
    test_kernel_last_axis();
    test_long_chain_specials();
    test_malformed();
    mixrt_context_destroy(kh_ctx);
    mixrt_context_destroy(ctx);
    return tu_finish("test_fuse_eltwise");
}
