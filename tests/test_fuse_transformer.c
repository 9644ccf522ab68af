/* test_fuse_transformer.c - the transformer fusion pass (fuse_transformer.c) on small graphs
 * built with the IR API, as torch.onnx.export writes them: GELU (erf and tanh forms),
 * decomposed LayerNorm and MatMul/Gemm + bias/residual/activation. Each fused graph is run
 * by the reference executor and compared with the unfused one; negative cases must stay
 * unfused. Then the fast kernels (oneDNN FusedMatMul with packed weights, Gelu) against the
 * reference kernels on random data at odd sizes, by normalized error. */
#include <math.h>
#include <stdlib.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <string.h>

#include "backend/cpu/exec_ref.h"
#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/gemv_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/sgemm_impl.h"
#include "passes/passes.h"
#include "graph_build.h"
#include "testutil.h"
#ifdef MIXRT_HAVE_DNNL
#include "backend/cpu/dnnl_impl.h"
#endif

static mixrt_context_t ctx;

/* ---- graph building ---------------------------------------------------------------------- */

/* A constant with random values in [lo, hi) (vals NULL) or the given ones. */
static int add_const(struct mixrt_graph *g, const char *name, mixrt_dtype dt, int rank, const int64_t *dims,
                     const double *vals, double lo, double hi) {
    int vi = add_value(g, name, dt, rank, dims);
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    TU_CHECK(mixrt_tensor_init(ctx, t, dt, rank, dims) == MIXRT_STATUS_OK, "const %s", name);
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++)
        mixrt_store_f64(t->data, dt, i, vals ? vals[i] : tu_uniform(lo, hi));
    g->values[vi].init = t;
    g->values[vi].flags |= MIXRT_VALUE_INITIALIZER;
    return vi;
}

static int scalar(struct mixrt_graph *g, const char *name, mixrt_dtype dt, double v) {
    return add_const(g, name, dt, 0, NULL, &v, 0, 0);
}

/* Node op(ins) -> a new value out (dtype/shape of value like, or untyped when like < 0). */
static int add_node_d(struct mixrt_graph *g, const char *op, const char *domain, int n_in, const int *ins,
                      const char *out, int like) {
    int ni = mixrt_graph_add_node(g, out, op, domain);
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = domain[0] ? 1 : 17;
    n->n_inputs = n_in;
    n->inputs = mixrt_arena_calloc(g->arena, (size_t)(n_in ? n_in : 1), sizeof(int));
    if (n_in) memcpy(n->inputs, ins, (size_t)n_in * sizeof(int));
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    int vo = mixrt_graph_get_or_add_value(g, out);
    n->outputs[0] = vo;
    g->values[vo].producer = ni;
    if (like >= 0) {
        g->values[vo].dtype = g->values[like].dtype;
        g->values[vo].rank = g->values[like].rank;
        memcpy(g->values[vo].dims, g->values[like].dims, sizeof(g->values[vo].dims));
    }
    return vo;
}
static int add_node(struct mixrt_graph *g, const char *op, int n_in, const int *ins, const char *out, int like) {
    return add_node_d(g, op, "", n_in, ins, out, like);
}

static struct mixrt_attr *new_attr(struct mixrt_graph *g, int vi, const char *name, enum mixrt_attr_type type) {
    struct mixrt_node *nd = &g->nodes[g->values[vi].producer];
    struct mixrt_attr *a = mixrt_arena_calloc(g->arena, (size_t)nd->n_attrs + 1, sizeof(*a));
    if (nd->n_attrs) memcpy(a, nd->attrs, (size_t)nd->n_attrs * sizeof(*a));
    nd->attrs = a;
    a[nd->n_attrs].name = name;
    a[nd->n_attrs].type = type;
    return &a[nd->n_attrs++];
}
static void set_axes_last(struct mixrt_graph *g, int vi, int64_t axis) {
    struct mixrt_attr *a = new_attr(g, vi, "axes", MIXRT_ATTR_INTS);
    a->n = 1;
    a->ints = mixrt_arena_calloc(g->arena, 1, sizeof(int64_t));
    a->ints[0] = axis;
}

static int count_op(const struct mixrt_graph *g, const char *op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !strcmp(g->nodes[i].op_type, op);
    return n;
}
static const struct mixrt_node *find_op(const struct mixrt_graph *g, const char *op) {
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, op)) return &g->nodes[i];
    return NULL;
}

static struct mixrt_graph *new_graph(void) {
    struct mixrt_graph *g = NULL;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    return g;
}

static struct mixrt_tensor *rand_tensor(mixrt_dtype dt, int rank, const int64_t *dims, double lo, double hi) {
    struct mixrt_tensor *t = NULL;
    TU_CHECK(mixrt_tensor_create(ctx, dt, rank, dims, &t) == MIXRT_STATUS_OK, "tensor");
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) mixrt_store_f64(t->data, dt, i, tu_uniform(lo, hi));
    return t;
}

/* Runs g with the reference executor; output 0 into a new double array (*n elements). */
static double *run_graph(struct mixrt_graph *g, int n_in, const struct mixrt_tensor *const *in, size_t *n) {
    struct mixrt_tensor outs[4];
    memset(outs, 0, sizeof(outs));
    *n = 0;
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort: %s", mixrt_context_last_error(ctx));
    mixrt_status st = mixrt_exec_graph(ctx, g, NULL, n_in, in, NULL, outs, NULL, NULL);
    TU_CHECK(st == MIXRT_STATUS_OK, "exec: %s", mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) return NULL;
    double *d = NULL;
    TU_CHECK(mixrt_tensor_to_f64(ctx, &outs[0], &d) == MIXRT_STATUS_OK, "to f64");
    *n = mixrt_tensor_numel(&outs[0]);
    for (int i = 0; i < g->n_outputs; i++) mixrt_tensor_release(ctx, &outs[i]);
    return d;
}

/* ||a - b|| / ||b||, ||b||^2 taken as at least den_min (0: ||a - b|| where b is all zeros). */
static double rel_err_min(const double *a, const double *b, size_t n, double den_min) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        num += (a[i] - b[i]) * (a[i] - b[i]);
        den += b[i] * b[i];
    }
    if (den < den_min) den = den_min;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static double rel_err(const double *a, const double *b, size_t n) { return rel_err_min(a, b, n, 0.0); }

static unsigned g_extra_passes; /* flags check_fusion adds (MIXRT_PASS_RMSNORM) */

/* Runs g before and after the pass; checks the fused op count and the outputs' agreement. */
static void check_fusion(const char *what, struct mixrt_graph *g, int n_in, const struct mixrt_tensor *const *in,
                         const char *fused_op, int want_fused, const char *gone_op, double tol) {
    size_t n0 = 0, n1 = 0;
    double *before = run_graph(g, n_in, in, &n0);
    struct mixrt_pass_stats stats;
    mixrt_status st = mixrt_passes_run(g, MIXRT_PASS_FUSE_TRANSFORMER | MIXRT_PASS_DCE | g_extra_passes, &stats);
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: passes: %s", what, mixrt_context_last_error(ctx));
    int got = count_op(g, fused_op);
    TU_CHECK(got == want_fused, "%s: %d %s nodes after the pass, expected %d", what, got, fused_op, want_fused);
    if (want_fused) {
        const struct mixrt_node *f = find_op(g, fused_op);
        TU_CHECK(f && !strcmp(f->domain, MIXRT_DOMAIN) && f->opset == 1, "%s: %s is a com.mixrt opset-1 node", what,
                 fused_op);
        if (gone_op) TU_CHECK(count_op(g, gone_op) == 0, "%s: %s left after the fusion", what, gone_op);
    }
    double *after = run_graph(g, n_in, in, &n1);
    TU_CHECK(before && after && n0 == n1, "%s: outputs (%zu vs %zu elements)", what, n0, n1);
    if (before && after && n0 == n1) {
        double e = rel_err(after, before, n0);
        TU_CHECK(e <= tol, "%s: rel-norm error %.3g > %.3g (fused vs unfused, reference executor)", what, e, tol);
    }
    if (before) mixrt_free(ctx, before, n0 * sizeof(double));
    if (after) mixrt_free(ctx, after, n1 * sizeof(double));
}

/* ---- GELU -------------------------------------------------------------------------------- */

enum gelu_form { ERF_DIV, ERF_MUL_HALF_FIRST, TANH_POW, TANH_CUBE_MUL };

/* x -> GELU in one of the exported forms -> y (graph output). second_use: the Erf/Tanh output
 * is also a graph output (an intermediate with two uses). */
static struct mixrt_graph *gelu_graph(enum gelu_form form, mixrt_dtype dt, bool second_use) {
    struct mixrt_graph *g = new_graph();
    int64_t d[2] = {3, 37};
    int x = add_input(g, "x", dt, 2, d);
    int y, e;
    if (form == ERF_DIV || form == ERF_MUL_HALF_FIRST) {
        int arg = form == ERF_DIV ? add_node(g, "Div", 2, (int[]){x, scalar(g, "sqrt2", dt, 1.4142135381698608)}, "div", x)
                                  : add_node(g, "Mul", 2, (int[]){scalar(g, "isqrt2", dt, 0.7071067690849304), x}, "div", x);
        e = add_node(g, "Erf", 1, &arg, "erf", x);
        int one = add_node(g, "Add", 2, (int[]){e, scalar(g, "one", dt, 1.0)}, "add1", x);
        if (form == ERF_DIV) {
            int m = add_node(g, "Mul", 2, (int[]){x, one}, "mul", x);
            y = add_node(g, "Mul", 2, (int[]){m, scalar(g, "half", dt, 0.5)}, "y", x);
        } else {
            int h = add_node(g, "Mul", 2, (int[]){scalar(g, "half", dt, 0.5), x}, "half_x", x);
            y = add_node(g, "Mul", 2, (int[]){h, one}, "y", x);
        }
    } else {
        int cube;
        if (form == TANH_POW) {
            cube = add_node(g, "Pow", 2, (int[]){x, scalar(g, "three", dt, 3.0)}, "pow", x);
        } else {
            int sq = add_node(g, "Mul", 2, (int[]){x, x}, "sq", x);
            cube = add_node(g, "Mul", 2, (int[]){sq, x}, "pow", x);
        }
        int h = add_node(g, "Mul", 2, (int[]){scalar(g, "half", dt, 0.5), x}, "half_x", x);
        int c = add_node(g, "Mul", 2, (int[]){scalar(g, "k", dt, 0.044715), cube}, "kc", x);
        int s = add_node(g, "Add", 2, (int[]){x, c}, "s", x);
        int t = add_node(g, "Mul", 2, (int[]){scalar(g, "c", dt, 0.7978845834732056), s}, "cs", x);
        e = add_node(g, "Tanh", 1, &t, "tanh", x);
        int one = add_node(g, "Add", 2, (int[]){scalar(g, "one", dt, 1.0), e}, "add1", x);
        y = add_node(g, "Mul", 2, (int[]){h, one}, "y", x);
    }
    graph_set_output(g, y);
    if (second_use) graph_set_output(g, e);
    return g;
}

static void test_gelu(void) {
    static const char *const names[] = {"erf/Div", "erf/Mul, 0.5*x first", "tanh/Pow", "tanh/x*x*x"};
    static const mixrt_dtype dts[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_F64, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16};
    for (int f = 0; f < 4; f++)
        for (int di = 0; di < 4; di++) {
            mixrt_dtype dt = dts[di];
            char what[128];
            snprintf(what, sizeof(what), "GELU %s %s", names[f], mixrt_dtype_name(dt));
            struct mixrt_graph *g = gelu_graph((enum gelu_form)f, dt, false);
            struct mixrt_tensor *x = rand_tensor(dt, 2, (int64_t[]){3, 37}, -5, 5);
            /* The unfused graph rounds every intermediate in 16-bit types. */
            double tol = dt == MIXRT_DTYPE_BF16 ? 2e-2 : dt == MIXRT_DTYPE_F16 ? 5e-3 : 1e-6;
            check_fusion(what, g, 1, (const struct mixrt_tensor *const[]){x}, "Gelu", 1, f < 2 ? "Erf" : "Tanh", tol);
            const struct mixrt_node *n = find_op(g, "Gelu");
            if (n)
                TU_CHECK(!strcmp(mixrt_node_attr_string(n, "approximate", ""), f < 2 ? "none" : "tanh"),
                         "%s: approximate attribute", what);
            mixrt_tensor_destroy(ctx, x);
            mixrt_graph_destroy(g);
        }
    /* The Erf/Tanh output read twice: not fused. */
    for (int f = 0; f < 4; f += 2) {
        struct mixrt_graph *g = gelu_graph((enum gelu_form)f, MIXRT_DTYPE_F32, true);
        struct mixrt_tensor *x = rand_tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){3, 37}, -5, 5);
        check_fusion(f ? "GELU tanh, Tanh output read twice" : "GELU erf, Erf output read twice", g, 1,
                     (const struct mixrt_tensor *const[]){x}, "Gelu", 0, NULL, 0);
        mixrt_tensor_destroy(ctx, x);
        mixrt_graph_destroy(g);
    }
    /* A wrong constant (0.6 instead of 0.5): not GELU. */
    {
        struct mixrt_graph *g = gelu_graph(ERF_DIV, MIXRT_DTYPE_F32, false);
        int h = mixrt_graph_find_value(g, "half");
        mixrt_store_f64(g->values[h].init->data, MIXRT_DTYPE_F32, 0, 0.6);
        struct mixrt_tensor *x = rand_tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){3, 37}, -5, 5);
        check_fusion("GELU with 0.6 for 0.5", g, 1, (const struct mixrt_tensor *const[]){x}, "Gelu", 0, NULL, 0);
        mixrt_tensor_destroy(ctx, x);
        mixrt_graph_destroy(g);
    }
}

/* ---- LayerNorm ------------------------------------------------------------------------------ */

static struct mixrt_graph *ln_graph(mixrt_dtype dt, int64_t axis, bool mul_square, bool d_output) {
    struct mixrt_graph *g = new_graph();
    int64_t d[3] = {2, 5, 24};
    int x = add_input(g, "x", dt, 3, d);
    int mean = add_node(g, "ReduceMean", 1, &x, "mean", -1);
    set_axes_last(g, mean, axis);
    int dv = add_node(g, "Sub", 2, (int[]){x, mean}, "d", x);
    int sq = mul_square ? add_node(g, "Mul", 2, (int[]){dv, dv}, "sq", x)
                        : add_node(g, "Pow", 2, (int[]){dv, scalar(g, "two", dt, 2.0)}, "sq", x);
    int var = add_node(g, "ReduceMean", 1, &sq, "var", -1);
    set_axes_last(g, var, axis);
    int ve = add_node(g, "Add", 2, (int[]){var, scalar(g, "eps", dt, 1e-5)}, "ve", -1);
    int sd = add_node(g, "Sqrt", 1, &ve, "sd", -1);
    int nrm = add_node(g, "Div", 2, (int[]){dv, sd}, "nrm", x);
    int gam = add_const(g, "gamma", dt, 1, &d[2], NULL, 0.5, 1.5);
    int bet = add_const(g, "beta", dt, 1, &d[2], NULL, -1, 1);
    int sc = add_node(g, "Mul", 2, (int[]){nrm, gam}, "sc", x);
    int y = add_node(g, "Add", 2, (int[]){bet, sc}, "y", x);
    graph_set_output(g, y);
    if (d_output) graph_set_output(g, dv);
    return g;
}

static void test_layernorm(void) {
    static const mixrt_dtype dts[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_F64, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16};
    for (int di = 0; di < 4; di++)
        for (int ms = 0; ms < 2; ms++) {
            mixrt_dtype dt = dts[di];
            char what[128];
            snprintf(what, sizeof(what), "LayerNorm %s, square as %s", mixrt_dtype_name(dt), ms ? "Mul" : "Pow");
            struct mixrt_graph *g = ln_graph(dt, ms ? 2 : -1, ms, false);
            struct mixrt_tensor *x = rand_tensor(dt, 3, (int64_t[]){2, 5, 24}, -3, 4);
            double tol = dt == MIXRT_DTYPE_BF16 ? 2e-2 : dt == MIXRT_DTYPE_F16 ? 5e-3 : 1e-5;
            check_fusion(what, g, 1, (const struct mixrt_tensor *const[]){x}, "LayerNormalization", 1, "ReduceMean", tol);
            mixrt_tensor_destroy(ctx, x);
            mixrt_graph_destroy(g);
        }
    struct mixrt_tensor *x = rand_tensor(MIXRT_DTYPE_F32, 3, (int64_t[]){2, 5, 24}, -3, 4);
    struct mixrt_graph *g = ln_graph(MIXRT_DTYPE_F32, 1, false, false);
    check_fusion("LayerNorm over axis 1 (not the last)", g, 1, (const struct mixrt_tensor *const[]){x},
                 "LayerNormalization", 0, NULL, 0);
    mixrt_graph_destroy(g);
    g = ln_graph(MIXRT_DTYPE_F32, -1, false, true);
    check_fusion("LayerNorm whose x - mean is also a graph output", g, 1, (const struct mixrt_tensor *const[]){x},
                 "LayerNormalization", 0, NULL, 0);
    mixrt_graph_destroy(g);
    mixrt_tensor_destroy(ctx, x);
}

/* ---- RMSNorm -------------------------------------------------------------------------------- */

enum rms_form {
    RMS_RECIP,     /* x * Reciprocal(Sqrt(.)), gamma on the left (torch.onnx dynamo) */
    RMS_DIV_ONE,   /* x * Div(1, Sqrt(.)), gamma on the right (TorchScript) */
    RMS_DIV,       /* Div(x, Sqrt(.)) */
    RMS_MUL_SQUARE /* Mul(x, x) for the square, Reciprocal */
};

/* x [2, 5, 24] -> RMSNorm in one of the exported forms -> y. axis: the means' axis; s_output:
 * the Sqrt is also a graph output; gamma_input: gamma a graph input, not a constant; z_square:
 * the mean is of a second input z's square (not an RMSNorm of x). */
static struct mixrt_graph *rms_graph(enum rms_form f, mixrt_dtype dt, int64_t axis, bool s_output, bool gamma_input,
                                     bool z_square) {
    struct mixrt_graph *g = new_graph();
    int64_t d[3] = {2, 5, 24};
    int x = add_input(g, "x", dt, 3, d);
    int z = z_square ? add_input(g, "z", dt, 3, d) : x;
    int sq = f == RMS_MUL_SQUARE ? add_node(g, "Mul", 2, (int[]){z, z}, "sq", x)
                                 : add_node(g, "Pow", 2, (int[]){z, scalar(g, "two", dt, 2.0)}, "sq", x);
    int var = add_node(g, "ReduceMean", 1, &sq, "var", -1);
    set_axes_last(g, var, axis);
    int ve = add_node(g, "Add", 2, (int[]){var, scalar(g, "eps", dt, 1e-6)}, "ve", -1);
    int sd = add_node(g, "Sqrt", 1, &ve, "sd", -1);
    int nrm;
    if (f == RMS_DIV) {
        nrm = add_node(g, "Div", 2, (int[]){x, sd}, "nrm", x);
    } else {
        int r = f == RMS_DIV_ONE ? add_node(g, "Div", 2, (int[]){scalar(g, "one", dt, 1.0), sd}, "r", -1)
                                 : add_node(g, "Reciprocal", 1, &sd, "r", -1);
        nrm = add_node(g, "Mul", 2, f == RMS_DIV_ONE ? (int[]){r, x} : (int[]){x, r}, "nrm", x);
    }
    int gam = gamma_input ? add_input(g, "gamma", dt, 1, &d[2]) : add_const(g, "gamma", dt, 1, &d[2], NULL, 0.5, 1.5);
    int y = add_node(g, "Mul", 2, f == RMS_DIV_ONE ? (int[]){nrm, gam} : (int[]){gam, nrm}, "y", x);
    graph_set_output(g, y);
    if (s_output) graph_set_output(g, sd);
    return g;
}

static void test_rmsnorm(void) {
    static const char *const names[] = {"Reciprocal", "Div(1, .)", "Div(x, .)", "Mul(x, x) square"};
    static const mixrt_dtype dts[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_F64, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16};
    g_extra_passes = MIXRT_PASS_RMSNORM;
    for (int f = 0; f < 4; f++)
        for (int di = 0; di < 4; di++) {
            mixrt_dtype dt = dts[di];
            char what[128];
            snprintf(what, sizeof(what), "RMSNorm %s %s", names[f], mixrt_dtype_name(dt));
            struct mixrt_graph *g = rms_graph((enum rms_form)f, dt, f == RMS_DIV ? 2 : -1, false, false, false);
            struct mixrt_tensor *x = rand_tensor(dt, 3, (int64_t[]){2, 5, 24}, -3, 4);
            double tol = dt == MIXRT_DTYPE_BF16 ? 2e-2 : dt == MIXRT_DTYPE_F16 ? 5e-3 : 1e-5;
            check_fusion(what, g, 1, (const struct mixrt_tensor *const[]){x}, "RMSNormalization", 1, "ReduceMean", tol);
            mixrt_tensor_destroy(ctx, x);
            mixrt_graph_destroy(g);
        }
    struct mixrt_tensor *x = rand_tensor(MIXRT_DTYPE_F32, 3, (int64_t[]){2, 5, 24}, -3, 4);
    struct mixrt_graph *g = rms_graph(RMS_RECIP, MIXRT_DTYPE_F32, 1, false, false, false);
    check_fusion("RMSNorm over axis 1 (not the last)", g, 1, (const struct mixrt_tensor *const[]){x}, "RMSNormalization",
                 0, NULL, 0);
    mixrt_graph_destroy(g);
    g = rms_graph(RMS_RECIP, MIXRT_DTYPE_F32, -1, true, false, false);
    check_fusion("RMSNorm whose Sqrt is also a graph output", g, 1, (const struct mixrt_tensor *const[]){x},
                 "RMSNormalization", 0, NULL, 0);
    mixrt_graph_destroy(g);
    struct mixrt_tensor *gm = rand_tensor(MIXRT_DTYPE_F32, 1, (int64_t[]){24}, 0.5, 1.5);
    g = rms_graph(RMS_RECIP, MIXRT_DTYPE_F32, -1, false, true, false);
    check_fusion("RMSNorm with gamma a graph input", g, 2, (const struct mixrt_tensor *const[]){x, gm},
                 "RMSNormalization", 0, NULL, 0);
    mixrt_graph_destroy(g);
    struct mixrt_tensor *z = rand_tensor(MIXRT_DTYPE_F32, 3, (int64_t[]){2, 5, 24}, -3, 4);
    for (int f = 0; f < 4; f += 3) {
        g = rms_graph((enum rms_form)f, MIXRT_DTYPE_F32, -1, false, false, true);
        check_fusion(f ? "RMSNorm-like, the mean of z*z" : "RMSNorm-like, the mean of z^2", g, 2,
                     (const struct mixrt_tensor *const[]){x, z}, "RMSNormalization", 0, NULL, 0);
        mixrt_graph_destroy(g);
    }
    mixrt_tensor_destroy(ctx, z);
    mixrt_tensor_destroy(ctx, gm);
    /* CUDA engines run the pieces: without MIXRT_PASS_RMSNORM nothing is fused. */
    g_extra_passes = 0;
    g = rms_graph(RMS_RECIP, MIXRT_DTYPE_F32, -1, false, false, false);
    check_fusion("RMSNorm without MIXRT_PASS_RMSNORM", g, 1, (const struct mixrt_tensor *const[]){x}, "RMSNormalization",
                 0, NULL, 0);
    mixrt_graph_destroy(g);
    mixrt_tensor_destroy(ctx, x);
}

/* ---- MatMul fusions ------------------------------------------------------------------------- */

enum mm_case {
    MM_BIAS_RELU,     /* MatMul -> Add(bias, .) -> Relu */
    MM_BIAS_GELU,     /* MatMul -> Add(., bias) -> erf GELU pattern (fused first into Gelu) */
    MM_BIAS_TANH_GELU,/* ... -> tanh GELU pattern */
    MM_BIAS_RESIDUAL, /* MatMul -> Add(bias) -> Add(Z) */
    MM_GEMM_TRANSB,   /* Gemm(A, B^T, C) -> Sigmoid */
    MM_BIAS_SCALE_RESIDUAL, /* MatMul -> Add(bias) -> Mul(gamma [N]) -> Add(Z): gamma folded */
    MM_SCALAR_SCALE_RELU,   /* MatMul -> Mul(0.37) -> Relu, no bias: the scalar folded */
    MM_GEMM_BARE,     /* Gemm(A, B^T) alone (a dynamo export's bias-less classifier): FusedMatMul all the same */
    MM_MATMUL_BARE,   /* MatMul(A, B) alone (a bias-less projection): FusedMatMul once nothing else fuses */
    MM_NEG_TWO_USES,  /* MatMul output is also a graph output: the Add stays (a bare FusedMatMul) */
    MM_NEG_BIAS_2D,   /* bias [1, N] (rank 2): not a FusedMatMul bias (Add and Relu stay) */
    MM_NEG_B_INPUT,   /* B is a graph input (attention-like) */
    MM_CASES
};

static struct mixrt_graph *mm_graph(enum mm_case c, mixrt_dtype dt, int *n_in) {
    struct mixrt_graph *g = new_graph();
    const int64_t M = 7, K = 19, N = 13;
    int64_t ad[3] = {2, M, K}, bd[2] = {K, N}, btd[2] = {N, K}, yd[3] = {2, M, N}, a2[2] = {M, K}, y2[2] = {M, N};
    bool gemm = c == MM_GEMM_TRANSB || c == MM_GEMM_BARE;
    int a = add_input(g, "a", dt, gemm ? 2 : 3, gemm ? a2 : ad);
    int z = c == MM_BIAS_RESIDUAL || c == MM_BIAS_SCALE_RESIDUAL ? add_input(g, "z", dt, 3, yd) : -1;
    int b = c == MM_NEG_B_INPUT ? add_input(g, "b", dt, 2, bd)
                                : add_const(g, "b", dt, 2, gemm ? btd : bd, NULL, -0.5, 0.5);
    *n_in = g->n_inputs;
    int like_y = add_value(g, "y_shape", dt, gemm ? 2 : 3, gemm ? y2 : yd);
    int bias = c == MM_NEG_BIAS_2D ? add_const(g, "bias", dt, 2, (int64_t[]){1, N}, NULL, -1, 1)
                                   : add_const(g, "bias", dt, 1, &N, NULL, -1, 1);
    int y;
    if (c == MM_GEMM_BARE) {
        y = add_node(g, "Gemm", 2, (int[]){a, b}, "y", like_y);
        new_attr(g, y, "transB", MIXRT_ATTR_INT)->i = 1;
        graph_set_output(g, y);
        return g;
    }
    if (gemm) {
        int mm = add_node(g, "Gemm", 3, (int[]){a, b, bias}, "mm", like_y);
        new_attr(g, mm, "transB", MIXRT_ATTR_INT)->i = 1;
        y = add_node(g, "Sigmoid", 1, &mm, "y", like_y);
        graph_set_output(g, y);
        return g;
    }
    int mm = add_node(g, "MatMul", 2, (int[]){a, b}, "mm", like_y);
    if (c == MM_MATMUL_BARE) {
        graph_set_output(g, mm);
        return g;
    }
    if (c == MM_SCALAR_SCALE_RELU) {
        int sm = add_node(g, "Mul", 2, (int[]){mm, scalar(g, "s", dt, 0.37)}, "sm", like_y);
        y = add_node(g, "Relu", 1, &sm, "y", like_y);
        graph_set_output(g, y);
        return g;
    }
    int ab = add_node(g, "Add", 2, c == MM_BIAS_GELU ? (int[]){mm, bias} : (int[]){bias, mm}, "ab", like_y);
    switch (c) {
    case MM_BIAS_GELU: {
        int dv = add_node(g, "Div", 2, (int[]){ab, scalar(g, "sqrt2", dt, 1.4142135381698608)}, "gd", like_y);
        int e = add_node(g, "Erf", 1, &dv, "erf", like_y);
        int one = add_node(g, "Add", 2, (int[]){e, scalar(g, "one", dt, 1.0)}, "e1", like_y);
        int m = add_node(g, "Mul", 2, (int[]){ab, one}, "gm", like_y);
        y = add_node(g, "Mul", 2, (int[]){m, scalar(g, "half", dt, 0.5)}, "y", like_y);
        break;
    }
    case MM_BIAS_TANH_GELU: {
        int h = add_node(g, "Mul", 2, (int[]){scalar(g, "half", dt, 0.5), ab}, "h", like_y);
        int p = add_node(g, "Pow", 2, (int[]){ab, scalar(g, "three", dt, 3.0)}, "p", like_y);
        int kc = add_node(g, "Mul", 2, (int[]){scalar(g, "k", dt, 0.044715), p}, "kc", like_y);
        int s = add_node(g, "Add", 2, (int[]){ab, kc}, "s", like_y);
        int t = add_node(g, "Mul", 2, (int[]){scalar(g, "c", dt, 0.7978845834732056), s}, "t", like_y);
        int th = add_node(g, "Tanh", 1, &t, "th", like_y);
        int one = add_node(g, "Add", 2, (int[]){scalar(g, "one", dt, 1.0), th}, "e1", like_y);
        y = add_node(g, "Mul", 2, (int[]){h, one}, "y", like_y);
        break;
    }
    case MM_BIAS_RESIDUAL: y = add_node(g, "Add", 2, (int[]){ab, z}, "y", like_y); break;
    case MM_BIAS_SCALE_RESIDUAL: {
        int gm = add_const(g, "gamma", dt, 1, &N, NULL, 0.1, 0.9);
        int sc = add_node(g, "Mul", 2, (int[]){gm, ab}, "sc", like_y);
        y = add_node(g, "Add", 2, (int[]){z, sc}, "y", like_y);
        break;
    }
    default: y = add_node(g, "Relu", 1, &ab, "y", like_y); break;
    }
    graph_set_output(g, y);
    if (c == MM_NEG_TWO_USES) graph_set_output(g, mm);
    return g;
}

static void test_matmul_fusion(void) {
    static const char *const names[] = {"bias+Relu", "bias+GELU(erf)", "bias+GELU(tanh)", "bias+residual",
                                        "Gemm transB+C+Sigmoid", "bias+layer scale+residual", "scalar scale+Relu",
                                        "bare Gemm transB", "bare MatMul", "MatMul output read twice", "bias of shape [1,N]",
                                        "B a graph input"};
    static const char *const acts[] = {"relu", "gelu", "gelu_tanh", "none", "sigmoid", "none", "relu", "none", "none"};
    static const mixrt_dtype dts[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_F64, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16};
    for (int c = 0; c < MM_CASES; c++)
        for (int di = 0; di < 4; di++) {
            mixrt_dtype dt = dts[di];
            if (c >= MM_NEG_TWO_USES && di > 0) continue;
            char what[128];
            snprintf(what, sizeof(what), "FusedMatMul %s %s", names[c], mixrt_dtype_name(dt));
            int n_in = 0;
            struct mixrt_graph *g = mm_graph((enum mm_case)c, dt, &n_in);
            const struct mixrt_tensor *in[3] = {NULL, NULL, NULL};
            struct mixrt_tensor *own[3] = {NULL, NULL, NULL};
            for (int i = 0; i < n_in; i++) {
                const struct mixrt_value *v = &g->values[g->inputs[i]];
                int64_t dims[MIXRT_MAX_RANK];
                for (int j = 0; j < v->rank; j++) dims[j] = v->dims[j].value;
                in[i] = own[i] = rand_tensor(dt, v->rank, dims, -1, 1);
            }
            bool pos = c < MM_NEG_TWO_USES;
            double tol = dt == MIXRT_DTYPE_BF16 ? 2e-2 : dt == MIXRT_DTYPE_F16 ? 5e-3 : 1e-6;
            /* the negative cases: nothing fused into the product (a bare FusedMatMul where B is
             * constant, the MatMul where it is not) */
            check_fusion(what, g, n_in, in, "FusedMatMul", c != MM_NEG_B_INPUT ? 1 : 0,
                         pos ? (c == MM_GEMM_TRANSB || c == MM_GEMM_BARE ? "Gemm" : "MatMul") : NULL, tol);
            const struct mixrt_node *f = find_op(g, "FusedMatMul");
            if (pos && f) {
                TU_CHECK(!strcmp(mixrt_node_attr_string(f, "activation", ""), acts[c]), "%s: activation '%s'", what,
                         mixrt_node_attr_string(f, "activation", ""));
                TU_CHECK(count_op(g, "Add") == 0 && count_op(g, "Mul") == 0 && g->n_nodes == 1, "%s: one node left (%d)",
                         what, g->n_nodes);
                int want_in = c == MM_BIAS_RESIDUAL || c == MM_BIAS_SCALE_RESIDUAL ? 4
                              : c == MM_SCALAR_SCALE_RELU || c == MM_GEMM_BARE || c == MM_MATMUL_BARE ? 2
                                                                                 : 3;
                TU_CHECK(f->n_inputs == want_in, "%s: %d inputs, expected %d", what, f->n_inputs, want_in);
            }
            if (!pos && f)
                TU_CHECK(f->n_inputs == 2 && !strcmp(mixrt_node_attr_string(f, "activation", "none"), "none") &&
                             count_op(g, "Add") == 1,
                         "%s: something fused into the product (%d inputs, activation '%s', %d Add)", what, f->n_inputs,
                         mixrt_node_attr_string(f, "activation", "none"), count_op(g, "Add"));
            if (c == MM_NEG_BIAS_2D) TU_CHECK(count_op(g, "Relu") == 1 && count_op(g, "Add") == 1, "%s: left alone", what);
            if (c == MM_NEG_B_INPUT) TU_CHECK(count_op(g, "MatMul") == 1, "%s: the MatMul left alone", what);
            for (int i = 0; i < 3; i++) mixrt_tensor_destroy(ctx, own[i]);
            mixrt_graph_destroy(g);
        }
}

/* torch's dynamo export of GPT-2's Conv1D: Reshape(x, [M, K]) -> Gemm(B, C?) -> Reshape([d.., N])
 * -> Relu or + residual; x [2, 7, K] or the attention heads [2, 7, 4, 5] (K = 20: the first
 * Reshape stays, retargeted). One FusedMatMul must remain, no Gemm, outputs as before. */
static void test_gemm_reshape(void) {
    static const char *const names[] = {"bias+Relu", "no bias, residual", "heads input, bias+Relu",
                                        "heads input, no bias, residual"};
    for (int c = 0; c < 4; c++)
        for (int di = 0; di < 2; di++) {
            mixrt_dtype dt = di ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32;
            bool heads = c >= 2, bias = c % 2 == 0;
            const int64_t K = 20, N = 13, M = 14;
            int64_t xd4[4] = {2, 7, 4, 5}, xd3[3] = {2, 7, K}, ad[2] = {M, K}, bd[2] = {K, N}, gd[2] = {M, N};
            int64_t yd[3] = {2, 7, N}, two = 2, three = 3;
            struct mixrt_graph *g = new_graph();
            int x = add_input(g, "x", dt, heads ? 4 : 3, heads ? xd4 : xd3);
            int z = bias ? -1 : add_input(g, "z", dt, 3, yd);
            int sa = add_const(g, "shape_a", MIXRT_DTYPE_I64, 1, &two, (const double[]){(double)M, (double)K}, 0, 0);
            int sy = add_const(g, "shape_y", MIXRT_DTYPE_I64, 1, &three, (const double[]){2, 7, (double)N}, 0, 0);
            int b = add_const(g, "b", dt, 2, bd, NULL, -0.5, 0.5);
            int cb = bias ? add_const(g, "c", dt, 1, &N, NULL, -0.5, 0.5) : -1;
            int a_like = add_value(g, "a_shape", dt, 2, ad), g_like = add_value(g, "g_shape", dt, 2, gd);
            int y_like = add_value(g, "y_shape", dt, 3, yd);
            int a = add_node(g, "Reshape", 2, (int[]){x, sa}, "a", a_like);
            int gm = add_node(g, "Gemm", bias ? 3 : 2, (int[]){a, b, cb}, "gm", g_like);
            int y = add_node(g, "Reshape", 2, (int[]){gm, sy}, "yr", y_like);
            y = bias ? add_node(g, "Relu", 1, &y, "y", y_like) : add_node(g, "Add", 2, (int[]){y, z}, "y", y_like);
            graph_set_output(g, y);
            struct mixrt_tensor *own[2] = {NULL, NULL};
            const struct mixrt_tensor *in[2] = {NULL, NULL};
            int n_in = g->n_inputs;
            for (int i = 0; i < n_in; i++) {
                const struct mixrt_value *v = &g->values[g->inputs[i]];
                int64_t dims[MIXRT_MAX_RANK];
                for (int j = 0; j < v->rank; j++) dims[j] = v->dims[j].value;
                in[i] = own[i] = rand_tensor(dt, v->rank, dims, -1, 1);
            }
            char what[128];
            snprintf(what, sizeof(what), "Gemm between Reshapes, %s %s", names[c], mixrt_dtype_name(dt));
            check_fusion(what, g, n_in, in, "FusedMatMul", 1, "Gemm", dt == MIXRT_DTYPE_BF16 ? 2e-2 : 1e-6);
            TU_CHECK(count_op(g, "Reshape") == (heads ? 1 : 0) && count_op(g, "Add") == 0 && count_op(g, "Relu") == 0,
                     "%s: %d Reshape, %d Add, %d Relu left", what, count_op(g, "Reshape"), count_op(g, "Add"),
                     count_op(g, "Relu"));
            const struct mixrt_node *f = find_op(g, "FusedMatMul");
            if (f)
                TU_CHECK(f->n_inputs == (bias ? 3 : 4) &&
                             !strcmp(mixrt_node_attr_string(f, "activation", ""), bias ? "relu" : "none"),
                         "%s: FusedMatMul with %d inputs, activation %s", what, f->n_inputs,
                         mixrt_node_attr_string(f, "activation", ""));
            for (int i = 0; i < 2; i++) mixrt_tensor_destroy(ctx, own[i]);
            mixrt_graph_destroy(g);
        }
}

/* ---- fast kernels vs the reference kernels -------------------------------------------------- */

/* A one-node graph: com.mixrt FusedMatMul(A input, B constant, bias constant?, Z input?). */
static struct mixrt_graph *fmm_node(mixrt_dtype dt, int64_t M, int64_t K, int64_t N, const char *act, bool bias,
                                    bool z, bool trans_b) {
    struct mixrt_graph *g = new_graph();
    TU_CHECK(mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION) == MIXRT_STATUS_OK, "opset");
    int64_t ad[2] = {M, K}, bd[2] = {trans_b ? N : K, trans_b ? K : N}, yd[2] = {M, N};
    int a = add_input(g, "a", dt, 2, ad);
    int zi = z ? add_input(g, "z", dt, 2, yd) : -1;
    int b = add_const(g, "b", dt, 2, bd, NULL, -1, 1);
    int bi = bias ? add_const(g, "bias", dt, 1, &N, NULL, -1, 1) : -1;
    int y0 = add_value(g, "y_shape", dt, 2, yd);
    int y = add_node_d(g, "FusedMatMul", MIXRT_DOMAIN, z ? 4 : bias ? 3 : 2, (int[]){a, b, bi, zi}, "y", y0);
    struct mixrt_attr *at = new_attr(g, y, "activation", MIXRT_ATTR_STRING);
    at->s = act;
    at->s_len = strlen(act);
    if (trans_b) new_attr(g, y, "transB", MIXRT_ATTR_INT)->i = 1;
    graph_set_output(g, y);
    return g;
}

/* ONNX MatMul a [M, K] x constant b [K, N]; extra > 0 adds an unread f32 constant of that
 * many elements (the model's weight total). */
static struct mixrt_graph *mm_node(mixrt_dtype dt, int64_t M, int64_t K, int64_t N, int64_t extra) {
    struct mixrt_graph *g = new_graph();
    int64_t ad[2] = {M, K}, bd[2] = {K, N}, yd[2] = {M, N};
    int a = add_input(g, "a", dt, 2, ad);
    int b = add_const(g, "b", dt, 2, bd, NULL, -1, 1);
    if (extra > 0) add_const(g, "extra", MIXRT_DTYPE_F32, 1, &extra, NULL, -1, 1);
    int y0 = add_value(g, "y_shape", dt, 2, yd);
    int y = add_node_d(g, "MatMul", "", 2, (int[]){a, b}, "y", y0);
    graph_set_output(g, y);
    return g;
}

/* Runs kernel kern on node 0 of g (prepare, two runs, release); output 0 as doubles. */
static double *run_fast(const struct mixrt_cpu_kernel *kern, struct mixrt_graph *g, int n_in,
                        const struct mixrt_tensor *const *inputs, size_t *n) {
    const struct mixrt_node *nd = &g->nodes[0];
    const struct mixrt_tensor *in[4] = {NULL, NULL, NULL, NULL};
    const struct mixrt_seq *in_seq[4] = {NULL, NULL, NULL, NULL};
    int next = 0;
    for (int j = 0; j < nd->n_inputs; j++) {
        int vi = nd->inputs[j];
        if (vi < 0) continue;
        in[j] = g->values[vi].init ? g->values[vi].init : next < n_in ? inputs[next++] : NULL;
    }
    void *state = NULL;
    double *d = NULL;
    *n = 0;
    char why[256] = "";
    TU_CHECK(kern->supports(g, nd, why, sizeof(why)), "%s does not support the node: %s", kern->name, why);
    mixrt_status st = kern->prepare ? kern->prepare(ctx, g, nd, &state) : MIXRT_STATUS_OK;
    TU_CHECK(st == MIXRT_STATUS_OK, "%s prepare: %s", kern->name, mixrt_context_last_error(ctx));
    for (int r = 0; r < 2 && st == MIXRT_STATUS_OK; r++) { /* the second run reuses the primitive */
        struct mixrt_tensor out;
        memset(&out, 0, sizeof(out));
        bool is_seq = false, wanted = true;
        struct mixrt_seq oseq;
        memset(&oseq, 0, sizeof(oseq));
        struct mixrt_kernel_ctx k = {
            .ctx = ctx, .graph = g, .node = nd, .opset = nd->opset, .n_in = nd->n_inputs, .in = in, .in_seq = in_seq,
            .n_out = 1, .out = &out, .out_seq = &oseq, .out_is_seq = &is_seq, .out_wanted = &wanted, .env = NULL,
            .state = state,
        };
        st = kern->run(&k);
        TU_CHECK(st == MIXRT_STATUS_OK, "%s run %d: %s", kern->name, r, mixrt_context_last_error(ctx));
        if (st == MIXRT_STATUS_OK && r == 1) {
            TU_CHECK(mixrt_tensor_to_f64(ctx, &out, &d) == MIXRT_STATUS_OK, "to f64");
            *n = mixrt_tensor_numel(&out);
        }
        mixrt_tensor_release(ctx, &out);
    }
    if (kern->release) kern->release(ctx, state);
    return d;
}

static void check_fast(const char *what, const struct mixrt_cpu_kernel *kern, struct mixrt_graph *g, int n_in,
                       const struct mixrt_tensor *const *in, double tol) {
    size_t nr = 0, nf = 0;
    double *ref = run_graph(g, n_in, in, &nr);
    double *fast = run_fast(kern, g, n_in, in, &nf);
    TU_CHECK(ref && fast && nr == nf, "%s: outputs (%zu vs %zu elements)", what, nf, nr);
    if (ref && fast && nr == nf) {
        /* over a norm of at least 1e-3 per element: a case of a few outputs that all fall in
         * GELU's negative tail (one of -1.05e-10, the kernel's -0; three of 1e-15 .. 1e-32) has
         * nothing left to compare relatively; the cases' outputs are O(1) otherwise */
        double e = rel_err_min(fast, ref, nr, 1e-6 * (double)nr);
        TU_CHECK(e <= tol, "%s: rel-norm error %.3g > %.3g (%s vs reference)", what, e, tol, kern->name);
    }
    if (ref) mixrt_free(ctx, ref, nr * sizeof(double));
    if (fast) mixrt_free(ctx, fast, nf * sizeof(double));
}

static void test_fast_fused_matmul(void) {
#ifdef MIXRT_HAVE_DNNL
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("dnnl_fused_matmul", MIXRT_DOMAIN, "FusedMatMul");
    TU_CHECK(kern != NULL, "dnnl_fused_matmul is registered");
    if (!kern) return;
    static const char *const acts[] = {"none", "relu", "gelu", "gelu_tanh", "sigmoid", "tanh"};
    static const int64_t Ms[] = {1, 7, 129}, Ks[] = {3, 768}, Ns[] = {1, 17, 3072};
    int idx = 0;
    for (int di = 0; di < 2; di++) {
        mixrt_dtype dt = di ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32;
        if (dt == MIXRT_DTYPE_BF16 && !mixrt_dnnl_bf16_native()) {
            printf("test_fuse_transformer: no native bf16 here, bf16 FusedMatMul cases skipped\n");
            continue;
        }
        /* f32: accumulation order only. bf16: same bf16 inputs; the output rounds once to bf16. */
        double tol = dt == MIXRT_DTYPE_BF16 ? 8e-3 : 2e-5;
        /* Every activation with and without bias and Z at a small size... */
        for (int a = 0; a < 6; a++)
            for (int bz = 0; bz < 4; bz++) {
                bool tb = (a + bz) % 3 == 0;
                struct mixrt_graph *g = fmm_node(dt, 7, 3, 17, acts[a], bz & 1, bz & 2, tb);
                struct mixrt_tensor *A = rand_tensor(dt, 2, (int64_t[]){7, 3}, -2, 2);
                struct mixrt_tensor *Z = rand_tensor(dt, 2, (int64_t[]){7, 17}, -1, 1);
                char what[160];
                snprintf(what, sizeof(what), "FusedMatMul %s M=7 K=3 N=17 act=%s bias=%d Z=%d transB=%d",
                         mixrt_dtype_name(dt), acts[a], bz & 1, (bz >> 1) & 1, tb);
                check_fast(what, kern, g, bz & 2 ? 2 : 1, (const struct mixrt_tensor *const[]){A, Z}, tol);
                mixrt_tensor_destroy(ctx, A);
                mixrt_tensor_destroy(ctx, Z);
                mixrt_graph_destroy(g);
            }
        /* ...and every size, the activation and bias/Z cycling. */
        for (int mi = 0; mi < 3; mi++)
            for (int ki = 0; ki < 2; ki++)
                for (int ni = 0; ni < 3; ni++, idx++) {
                    int64_t M = Ms[mi], K = Ks[ki], N = Ns[ni];
                    int a = idx % 6, bz = idx % 4;
                    struct mixrt_graph *g = fmm_node(dt, M, K, N, acts[a], bz & 1, bz & 2, false);
                    struct mixrt_tensor *A = rand_tensor(dt, 2, (int64_t[]){M, K}, -1, 1);
                    struct mixrt_tensor *Z = rand_tensor(dt, 2, (int64_t[]){M, N}, -1, 1);
                    char what[160];
                    snprintf(what, sizeof(what), "FusedMatMul %s M=%lld K=%lld N=%lld act=%s bias=%d Z=%d",
                             mixrt_dtype_name(dt), (long long)M, (long long)K, (long long)N, acts[a], bz & 1,
                             (bz >> 1) & 1);
                    check_fast(what, kern, g, bz & 2 ? 2 : 1, (const struct mixrt_tensor *const[]){A, Z}, tol);
                    mixrt_tensor_destroy(ctx, A);
                    mixrt_tensor_destroy(ctx, Z);
                    mixrt_graph_destroy(g);
                }
    }
    /* A rank-3 A (batch dims fold into M) and a second shape on the same state. */
    {
        struct mixrt_graph *g = fmm_node(MIXRT_DTYPE_F32, 5, 33, 9, "gelu", true, false, false);
        struct mixrt_value *a = &g->values[g->inputs[0]];
        a->rank = 3;
        a->dims[0].value = 2, a->dims[1].value = 5, a->dims[2].value = 33;
        struct mixrt_value *y = &g->values[g->outputs[0]];
        y->rank = 3;
        y->dims[0].value = 2, y->dims[1].value = 5, y->dims[2].value = 9;
        struct mixrt_tensor *A = rand_tensor(MIXRT_DTYPE_F32, 3, (int64_t[]){2, 5, 33}, -1, 1);
        check_fast("FusedMatMul f32 A [2,5,33]", kern, g, 1, (const struct mixrt_tensor *const[]){A}, 2e-5);
        mixrt_tensor_destroy(ctx, A);
        mixrt_graph_destroy(g);
    }
#else
    printf("test_fuse_transformer: built without oneDNN, FusedMatMul fast kernel cases skipped\n");
#endif
}

/* fmm_gemv (gemv.c): FusedMatMul on 1-4 rows reading B where it lies, both B layouts, f32 and
 * bf16, AVX-512 and scalar spans; column blocks of 64 and thread shares of 4 B rows with their tails,
 * K tails of 16 (817: a whole 32 and 17 after the 64-wide steps of B [N][K]), sizes where the
 * threads split B; 5 rows are refused. */
static void test_fast_fmm_gemv(void) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("fmm_gemv", MIXRT_DOMAIN, "FusedMatMul");
    TU_CHECK(kern != NULL, "fmm_gemv is registered");
    if (!kern) return;
    static const char *const acts[] = {"none", "relu", "gelu", "gelu_tanh", "sigmoid", "tanh"};
    /* N 2100: B [K][N]'s wide-span path on one thread (K 1, 17), shares of K on two (768, 771:
     * odd shares); one row of A over 1 MiB or more of B (K 768 / 771, N 1027 / 2100) takes the
     * AVX2 row-streaming path, columns in chunks of 2048 with their tails */
    static const int64_t Ks[] = {1, 17, 768, 771, 817}, Ns[] = {1, 3, 65, 130, 1027, 2100};
    int idx = 0;
    for (int di = 0; di < 2; di++) {
        mixrt_dtype dt = di ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32;
        double tol = dt == MIXRT_DTYPE_BF16 ? 8e-3 : 2e-5;
        for (int64_t M = 1; M <= 4; M++)
            for (int ki = 0; ki < 5; ki++)
                for (int ni = 0; ni < 6; ni++)
                    for (int tb = 0; tb < 2; tb++, idx++) {
                        int64_t K = Ks[ki], N = Ns[ni];
                        int a = idx % 6, bz = idx % 4;
                        struct mixrt_graph *g = fmm_node(dt, M, K, N, acts[a], bz & 1, bz & 2, tb);
                        struct mixrt_tensor *A = rand_tensor(dt, 2, (int64_t[]){M, K}, -1, 1);
                        struct mixrt_tensor *Z = rand_tensor(dt, 2, (int64_t[]){M, N}, -1, 1);
                        for (int sc = 0; sc < 3; sc++) { /* widest spans, scalar, AVX2 */
                            if (sc == 2 && !(mixrt_cpu_features()->avx2 && mixrt_cpu_features()->fma)) continue;
                            char what[192];
                            snprintf(what, sizeof(what),
                                     "fmm_gemv %s M=%lld K=%lld N=%lld act=%s bias=%d Z=%d transB=%d%s",
                                     mixrt_dtype_name(dt), (long long)M, (long long)K, (long long)N, acts[a], bz & 1,
                                     (bz >> 1) & 1, tb, sc == 1 ? " scalar" : sc == 2 ? " avx2" : "");
                            mixrt_gemv_force_scalar(sc);
                            check_fast(what, kern, g, bz & 2 ? 2 : 1, (const struct mixrt_tensor *const[]){A, Z}, tol);
                        }
                        mixrt_gemv_force_scalar(0);
                        mixrt_tensor_destroy(ctx, A);
                        mixrt_tensor_destroy(ctx, Z);
                        mixrt_graph_destroy(g);
                    }
    }
    /* A rank-3 A of 2 x 2 rows, B transposed. */
    {
        struct mixrt_graph *g = fmm_node(MIXRT_DTYPE_F32, 4, 40, 70, "relu", true, false, true);
        struct mixrt_value *a = &g->values[g->inputs[0]], *y = &g->values[g->outputs[0]];
        a->rank = y->rank = 3;
        a->dims[0].value = y->dims[0].value = 2;
        a->dims[1].value = y->dims[1].value = 2;
        a->dims[2].value = 40, y->dims[2].value = 70;
        struct mixrt_tensor *A = rand_tensor(MIXRT_DTYPE_F32, 3, (int64_t[]){2, 2, 40}, -1, 1);
        check_fast("fmm_gemv f32 A [2,2,40] transB", kern, g, 1, (const struct mixrt_tensor *const[]){A}, 2e-5);
        mixrt_tensor_destroy(ctx, A);
        mixrt_graph_destroy(g);
    }
    struct mixrt_graph *g = fmm_node(MIXRT_DTYPE_F32, 5, 8, 8, "none", false, false, false);
    TU_CHECK(!kern->supports(g, &g->nodes[0], NULL, 0), "fmm_gemv took 5 rows");
    mixrt_graph_destroy(g);
    /* ONNX MatMul by a constant (mm_gemv: the same spans) against the MatMul reference. */
    const struct mixrt_cpu_kernel *mk = mixrt_cpu_kernel_find("mm_gemv", "", "MatMul");
    TU_CHECK(mk != NULL, "mm_gemv is registered");
    for (int di = 0; di < 2 && mk; di++)
        for (int64_t M = 1; M <= 4; M += 3)
            for (int c = 0; c < 3; c++) {
                mixrt_dtype dt = di ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32;
                int64_t K = c == 2 ? 768 : 17, N = c == 0 ? 65 : 2100;
                g = mm_node(dt, M, K, N, 0);
                struct mixrt_tensor *A = rand_tensor(dt, 2, (int64_t[]){M, K}, -1, 1);
                char what[96];
                snprintf(what, sizeof(what), "mm_gemv %s M=%lld K=%lld N=%lld", mixrt_dtype_name(dt), (long long)M,
                         (long long)K, (long long)N);
                check_fast(what, mk, g, 1, (const struct mixrt_tensor *const[]){A}, di ? 8e-3 : 2e-5);
                mixrt_tensor_destroy(ctx, A);
                mixrt_graph_destroy(g);
            }
#ifdef MIXRT_HAVE_DNNL
    /* A B of 64 MiB or more on 1-4 rows is left to fmm_gemv (where its AVX-512 spans run):
     * dnnl_fused_matmul's packed copy would double it. 5 rows: both. */
    const struct mixrt_cpu_kernel *dk = mixrt_cpu_kernel_find("dnnl_fused_matmul", MIXRT_DOMAIN, "FusedMatMul");
    for (int64_t M = 4; M <= 5 && dk; M++) {
        g = fmm_node(MIXRT_DTYPE_F32, M, 4096, 4097, "none", false, false, true); /* 67.1 MB */
        bool d_ok = dk->supports(g, &g->nodes[0], NULL, 0), g_ok = kern->supports(g, &g->nodes[0], NULL, 0);
        bool want_d = M == 5 || !mixrt_elt_has_avx512();
        TU_CHECK(d_ok == want_d && g_ok == (M <= 4), "B of 67 MB, %lld rows: dnnl_fused_matmul %d, fmm_gemv %d",
                 (long long)M, d_ok, g_ok);
        mixrt_graph_destroy(g);
    }
    /* A 4.3 MB B on one row: timed against oneDNN's in a small model; left to the streaming
     * kernels once the model holds 128 MiB of weights (every run reads B from memory). */
    const struct mixrt_cpu_kernel *dm = mixrt_cpu_kernel_find("dnnl_matmul", "", "MatMul");
    for (int big = 0; big < 2 && dm && mk; big++) {
        g = mm_node(MIXRT_DTYPE_F32, 1, 768, 1400, big ? (int64_t)33554432 : 0);
        bool d_ok = dm->supports(g, &g->nodes[0], NULL, 0), m_ok = mk->supports(g, &g->nodes[0], NULL, 0);
        TU_CHECK(m_ok && d_ok == (!big || !mixrt_elt_has_avx512()), "MatMul 1 x 768 x 1400, %s: dnnl_matmul %d, mm_gemv %d",
                 big ? "128 MiB of weights" : "alone", d_ok, m_ok);
        mixrt_graph_destroy(g);
    }
#endif
}

/* fmm_sgemm / mm_sgemm (sgemm.c): f32 products by B packed in 16-column panels. Against the
 * reference kernel at sizes on both sides of the tile (6 rows, 16 columns; 64 for AVX-512's),
 * the K block (256) and the task's rows (72), every activation, bias, Z and transB; the widest
 * tile, the AVX2 one and their scalar twin give equal bits, and so do one and two threads. The packed B handed to a second prepare
 * (a plan's) is adopted and gives the same bits; another layout is refused. */
static double *sg_run_bits(const struct mixrt_cpu_kernel *kern, struct mixrt_graph *g, int n_in,
                           const struct mixrt_tensor *const *in, size_t *n, int scalar, int threads) {
    mixrt_sgemm_force_scalar(scalar);
#ifdef _OPENMP
    int was = omp_get_max_threads();
    omp_set_num_threads(threads);
#else
    (void)threads;
#endif
    double *d = run_fast(kern, g, n_in, in, n);
#ifdef _OPENMP
    omp_set_num_threads(was);
#endif
    mixrt_sgemm_force_scalar(0);
    return d;
}

static void test_fast_sgemm(void) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("fmm_sgemm", MIXRT_DOMAIN, "FusedMatMul");
    const struct mixrt_cpu_kernel *mk = mixrt_cpu_kernel_find("mm_sgemm", "", "MatMul");
    TU_CHECK(kern != NULL && mk != NULL, "fmm_sgemm and mm_sgemm are registered");
    if (!kern || !mk) return;
    if (!(mixrt_cpu_features()->avx2 && mixrt_cpu_features()->fma)) {
        struct mixrt_graph *g = fmm_node(MIXRT_DTYPE_F32, 7, 8, 9, "none", false, false, false);
        TU_CHECK(!kern->supports(g, &g->nodes[0], NULL, 0), "fmm_sgemm took a node on a CPU without AVX2 and FMA");
        mixrt_graph_destroy(g);
        printf("test_fuse_transformer: no AVX2 and FMA here, fmm_sgemm's products not run (refused as checked)\n");
        return;
    }
    /* on an AVX-512 CPU only when asked (MIXRT_SGEMM=on, set by main): oneDNN's kernels run there */
    {
        struct mixrt_graph *g = fmm_node(MIXRT_DTYPE_F32, 7, 8, 9, "none", false, false, false);
        unsetenv("MIXRT_SGEMM");
        bool plain = kern->supports(g, &g->nodes[0], NULL, 0);
        setenv("MIXRT_SGEMM", "on", 1);
        TU_CHECK(plain == !mixrt_cpu_features()->avx512f && kern->supports(g, &g->nodes[0], NULL, 0),
                 "fmm_sgemm offered %d without MIXRT_SGEMM (AVX-512: %d), or refused with it", plain,
                 mixrt_cpu_features()->avx512f);
        mixrt_graph_destroy(g);
    }
    static const char *const acts[] = {"none", "relu", "gelu", "gelu_tanh", "sigmoid", "tanh"};
    /* N: one panel part-filled and full, two and three panels part-filled (the AVX-512 tile's
     * calls of 2 and 3), a call of four then one, sixteen then one */
    static const int64_t Ms[] = {1, 5, 6, 7, 73, 145}, Ks[] = {1, 3, 256, 257, 769}, Ns[] = {1, 16, 17, 47, 70, 260};
    const bool avx512 = mixrt_cpu_features()->avx512f;
    int idx = 0, exact = 0;
    for (int mi = 0; mi < 6; mi++)
        for (int ki = 0; ki < 5; ki++)
            for (int ni = 0; ni < 6; ni++, idx++) {
                int64_t M = Ms[mi], K = Ks[ki], N = Ns[ni];
                if (M * K * N > 4000000 && ni != 5) continue; /* the big ones once per M */
                int a = idx % 6, bz = (idx / 6) % 4;
                bool tb = idx % 5 == 1;
                struct mixrt_graph *g = fmm_node(MIXRT_DTYPE_F32, M, K, N, acts[a], bz & 1, bz & 2, tb);
                struct mixrt_tensor *A = rand_tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){M, K}, -1, 1);
                struct mixrt_tensor *Z = rand_tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){M, N}, -1, 1);
                const struct mixrt_tensor *const in[] = {A, Z};
                char what[160];
                snprintf(what, sizeof(what), "fmm_sgemm M=%lld K=%lld N=%lld act=%s bias=%d Z=%d transB=%d",
                         (long long)M, (long long)K, (long long)N, acts[a], bz & 1, (bz >> 1) & 1, tb);
                check_fast(what, kern, g, bz & 2 ? 2 : 1, in, 2e-5);
                size_t n0 = 0, n1 = 0, n2 = 0;
                size_t n3 = 0;
                double *v = sg_run_bits(kern, g, bz & 2 ? 2 : 1, in, &n0, 0, 2);
                double *sc = sg_run_bits(kern, g, bz & 2 ? 2 : 1, in, &n1, 1, 2);
                double *one = sg_run_bits(kern, g, bz & 2 ? 2 : 1, in, &n2, 0, 1);
                /* the AVX2 tile too where the widest is AVX-512's (four panels a call) */
                double *v2 = avx512 ? sg_run_bits(kern, g, bz & 2 ? 2 : 1, in, &n3, 2, 2) : NULL;
                bool same_sc = v && sc && n0 == n1 && !memcmp(v, sc, n0 * sizeof(double));
                bool same_1 = v && one && n0 == n2 && !memcmp(v, one, n0 * sizeof(double));
                bool same_2 = !avx512 || (v && v2 && n0 == n3 && !memcmp(v, v2, n0 * sizeof(double)));
                TU_CHECK(same_sc && same_1 && same_2,
                         "%s: widest tile vs scalar twin equal %d, 2 vs 1 threads equal %d, vs the AVX2 tile %d", what,
                         same_sc, same_1, same_2);
                exact += same_sc && same_1 && same_2;
                if (v) mixrt_free(ctx, v, n0 * sizeof(double));
                if (sc) mixrt_free(ctx, sc, n1 * sizeof(double));
                if (one) mixrt_free(ctx, one, n2 * sizeof(double));
                if (v2) mixrt_free(ctx, v2, n3 * sizeof(double));
                mixrt_tensor_destroy(ctx, A);
                mixrt_tensor_destroy(ctx, Z);
                mixrt_graph_destroy(g);
            }
    printf("test_fuse_transformer: fmm_sgemm: %d products, widest tile = scalar = one thread%s bit for bit\n", exact,
           avx512 ? " = AVX2 tile" : "");
    /* a B past the caches (over 32 MiB packed): one row chunk of 126 rows (two otherwise) */
    {
        const int64_t M = 126, K = 8, N = 1048577;
        struct mixrt_graph *g = fmm_node(MIXRT_DTYPE_F32, M, K, N, "relu", true, false, false);
        struct mixrt_tensor *A = rand_tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){M, K}, -1, 1);
        const struct mixrt_tensor *const in[] = {A};
        check_fast("fmm_sgemm M=126 K=8 N=1048577 (B of 33.6 MB)", kern, g, 1, in, 2e-5);
        size_t n0 = 0, n1 = 0;
        double *v = sg_run_bits(kern, g, 1, in, &n0, 0, 2), *one = sg_run_bits(kern, g, 1, in, &n1, 0, 1);
        TU_CHECK(v && one && n0 == n1 && !memcmp(v, one, n0 * sizeof(double)),
                 "fmm_sgemm B of 33.6 MB: 2 and 1 threads differ");
        if (v) mixrt_free(ctx, v, n0 * sizeof(double));
        if (one) mixrt_free(ctx, one, n1 * sizeof(double));
        mixrt_tensor_destroy(ctx, A);
        mixrt_graph_destroy(g);
    }
    /* rank-3 A: the batch dims fold into the rows */
    {
        struct mixrt_graph *g = fmm_node(MIXRT_DTYPE_F32, 10, 33, 40, "gelu", true, false, true);
        struct mixrt_value *a = &g->values[g->inputs[0]], *y = &g->values[g->outputs[0]];
        a->rank = y->rank = 3;
        a->dims[0].value = y->dims[0].value = 2;
        a->dims[1].value = y->dims[1].value = 5;
        a->dims[2].value = 33, y->dims[2].value = 40;
        struct mixrt_tensor *A = rand_tensor(MIXRT_DTYPE_F32, 3, (int64_t[]){2, 5, 33}, -1, 1);
        check_fast("fmm_sgemm A [2,5,33] transB", kern, g, 1, (const struct mixrt_tensor *const[]){A}, 2e-5);
        mixrt_tensor_destroy(ctx, A);
        mixrt_graph_destroy(g);
    }
    /* ONNX MatMul by a constant */
    for (int c = 0; c < 2; c++) {
        int64_t M = c ? 130 : 3, K = c ? 300 : 17, N = c ? 33 : 100;
        struct mixrt_graph *g = mm_node(MIXRT_DTYPE_F32, M, K, N, 0);
        struct mixrt_tensor *A = rand_tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){M, K}, -1, 1);
        char what[96];
        snprintf(what, sizeof(what), "mm_sgemm M=%lld K=%lld N=%lld", (long long)M, (long long)K, (long long)N);
        check_fast(what, mk, g, 1, (const struct mixrt_tensor *const[]){A}, 2e-5);
        mixrt_tensor_destroy(ctx, A);
        mixrt_graph_destroy(g);
    }
    /* bf16 is refused (f32 only) */
    struct mixrt_graph *g = fmm_node(MIXRT_DTYPE_BF16, 7, 8, 9, "none", false, false, false);
    TU_CHECK(!kern->supports(g, &g->nodes[0], NULL, 0), "fmm_sgemm took a bf16 node");
    mixrt_graph_destroy(g);
    /* A plan's packed B: adopted when its layout is the node's, refused otherwise. */
    const struct mixrt_cpu_kernel_packing *h = mixrt_cpu_kernel_packing_find("fmm_sgemm");
    TU_CHECK(h && h->layout_size == MIXRT_SGEMM_LAYOUT_SIZE, "fmm_sgemm's packing hooks");
    g = fmm_node(MIXRT_DTYPE_F32, 9, 40, 21, "relu", true, false, false);
    struct mixrt_graph *g2 = fmm_node(MIXRT_DTYPE_F32, 9, 40, 21, "relu", true, false, true); /* transB */
    void *st = NULL, *st2 = NULL;
    struct mixrt_cpu_packed p;
    if (h && kern->prepare(ctx, g, &g->nodes[0], &st) == MIXRT_STATUS_OK && h->get(st, &p)) {
        struct mixrt_tensor *A = rand_tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){9, 40}, -1, 1);
        size_t n0 = 0, n1 = 0;
        double *ref = run_fast(kern, g, 1, (const struct mixrt_tensor *const[]){A}, &n0);
        /* the plan's bytes are a copy: the state that made them may be gone */
        void *copy = mixrt_alloc(ctx, p.size);
        memcpy(copy, p.data, p.size);
        unsigned char lay[MIXRT_SGEMM_LAYOUT_SIZE];
        memcpy(lay, p.layout, sizeof lay);
        struct mixrt_cpu_packed q = p;
        q.data = copy, q.layout = lay;
        kern->release(ctx, st);
        mixrt_cpu_packed_offer(&g->nodes[0], &q);
        unsigned long before = mixrt_cpu_weight_reorders();
        TU_CHECK(kern->prepare(ctx, g, &g->nodes[0], &st) == MIXRT_STATUS_OK, "prepare with an offer");
        char why[256] = "";
        TU_CHECK(mixrt_cpu_packed_outcome(why, sizeof why) == 1 && mixrt_cpu_weight_reorders() == before,
                 "fmm_sgemm did not adopt its own layout: %s", why);
        /* run on the adopted bytes: run_fast prepares afresh, so run the state by hand */
        const struct mixrt_tensor *in3[3] = {A, g->values[g->nodes[0].inputs[1]].init,
                                             g->values[g->nodes[0].inputs[2]].init};
        struct mixrt_tensor out;
        memset(&out, 0, sizeof(out));
        const struct mixrt_seq *in_seq[3] = {NULL, NULL, NULL};
        bool is_seq = false, wanted = true;
        struct mixrt_seq oseq;
        memset(&oseq, 0, sizeof(oseq));
        struct mixrt_kernel_ctx k = {
            .ctx = ctx, .graph = g, .node = &g->nodes[0], .opset = g->nodes[0].opset, .n_in = 3, .in = in3,
            .in_seq = in_seq, .n_out = 1, .out = &out, .out_seq = &oseq, .out_is_seq = &is_seq, .out_wanted = &wanted,
            .env = NULL, .state = st,
        };
        double *got = NULL;
        TU_CHECK(kern->run(&k) == MIXRT_STATUS_OK && mixrt_tensor_to_f64(ctx, &out, &got) == MIXRT_STATUS_OK,
                 "run on adopted bytes: %s", mixrt_context_last_error(ctx));
        n1 = got ? mixrt_tensor_numel(&out) : 0;
        TU_CHECK(ref && got && n0 == n1 && !memcmp(ref, got, n0 * sizeof(double)),
                 "fmm_sgemm on a plan's packed B differs from its own packing");
        mixrt_tensor_release(ctx, &out);
        kern->release(ctx, st);
        /* the same bytes offered to the transB node (another layout): refused, packed afresh */
        mixrt_cpu_packed_offer(&g2->nodes[0], &q);
        TU_CHECK(kern->prepare(ctx, g2, &g2->nodes[0], &st2) == MIXRT_STATUS_OK, "prepare transB with an offer");
        TU_CHECK(mixrt_cpu_packed_outcome(why, sizeof why) == 0, "fmm_sgemm adopted another layout's bytes");
        mixrt_cpu_packed_offer(NULL, NULL);
        kern->release(ctx, st2);
        mixrt_free(ctx, copy, p.size);
        if (ref) mixrt_free(ctx, ref, n0 * sizeof(double));
        if (got) mixrt_free(ctx, got, n1 * sizeof(double));
        mixrt_tensor_destroy(ctx, A);
    } else {
        TU_CHECK(0, "fmm_sgemm prepare / packed get: %s", mixrt_context_last_error(ctx));
        if (st) kern->release(ctx, st);
    }
    mixrt_graph_destroy(g);
    mixrt_graph_destroy(g2);
}

static void test_fast_gelu(void) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("elt_gelu", MIXRT_DOMAIN, "Gelu");
    TU_CHECK(kern != NULL, "com.mixrt elt_gelu is registered");
    if (!kern) return;
    static const int64_t sizes[] = {1, 17, 2048 * 20 + 3};
    for (int di = 0; di < 2; di++)
        for (int t = 0; t < 2; t++)
            for (int si = 0; si < 3; si++) {
                mixrt_dtype dt = di ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32;
                struct mixrt_graph *g = new_graph();
                TU_CHECK(mixrt_graph_require_opset(g, MIXRT_DOMAIN, MIXRT_DOMAIN_VERSION) == MIXRT_STATUS_OK, "opset");
                int x = add_input(g, "x", dt, 1, &sizes[si]);
                int y = add_node_d(g, "Gelu", MIXRT_DOMAIN, 1, &x, "y", x);
                struct mixrt_attr *at = new_attr(g, y, "approximate", MIXRT_ATTR_STRING);
                at->s = t ? "tanh" : "none";
                at->s_len = strlen(at->s);
                graph_set_output(g, y);
                /* Below -6 GELU is under 1e-8 and the f32 spans trade relative accuracy there. */
                struct mixrt_tensor *X = rand_tensor(dt, 1, &sizes[si], -6, 6);
                char what[128];
                snprintf(what, sizeof(what), "Gelu %s approximate=%s n=%lld", mixrt_dtype_name(dt), at->s,
                         (long long)sizes[si]);
                check_fast(what, kern, g, 1, (const struct mixrt_tensor *const[]){X}, dt == MIXRT_DTYPE_BF16 ? 8e-3 : 1e-6);
                mixrt_tensor_destroy(ctx, X);
                mixrt_graph_destroy(g);
            }
}

int main(void) {
    setenv("MIXRT_SGEMM", "on", 1); /* the own f32 products also where the CPU has AVX-512 */
    mixrt_context_create(NULL, &ctx);
    tu_seed(20261129);
    test_gelu();
    test_layernorm();
    test_rmsnorm();
    test_matmul_fusion();
    test_gemm_reshape();
    test_fast_fused_matmul();
    test_fast_fmm_gemv();
    test_fast_sgemm();
    test_fast_gelu();
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "no leak: %zu bytes", mixrt_context_bytes_in_use(ctx));
    mixrt_context_destroy(ctx);
    return tu_finish("test_fuse_transformer");
}
