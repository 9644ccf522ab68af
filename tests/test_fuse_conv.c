/* test_fuse_conv.c - the conv fusion and channels-last layout passes (fuse_conv.c) on small
 * graphs built with the IR API: the fused / re-laid-out nodes appear, the outputs match the
 * untouched graph run by the reference executor, and the patterns that must stay unfused do;
 * then the fast FusedConv and channels-last pool kernels against their reference kernels on
 * random data at odd sizes, f32 and bf16, every activation, with and without B and Z.
 * Usage: test_fuse_conv [--only N] (N: a kernel case number, as printed on failure). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/exec_ref.h"
#include "backend/cpu/kernels.h"
#ifdef MIXRT_HAVE_DNNL
#include "backend/cpu/dnnl_impl.h"
#endif
#include "passes/passes.h"
#include "backend/cpu/concat_affine_impl.h"
#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/gemv_impl.h"
#include "backend/cpu/nnops_impl.h"
#include "backend/cpu/sgemm_impl.h"
#include "engine/engine_impl.h"
#include "kernel_harness.h"
#include "mixrt/mixrt_engine.h"
#include "testutil.h"
#include "graph_build.h"

static mixrt_context_t ctx;
/* When set, the oneDNN implementation the fast kernel's state must name (so a case meant for
 * one algorithm cannot pass on another). */
static const char *expect_impl;
static const char *expect_not_impl; /* oneDNN must not have run this implementation */
static bool expect_refusal; /* the kernel's supports() must say no */
/* Also run the fast kernel with the AVX2 tile and transforms (sgemm.c) and ask for its bits. */
static bool expect_avx2_bits;
static int avx2_bits_equal;

/* ---- graph building -------------------------------------------------------------------- */

static int add_scalar(struct mixrt_graph *g, const char *name, double v) {
    int vi = add_value(g, name, MIXRT_DTYPE_F32, 0, NULL);
    struct mixrt_tensor *t = mixrt_arena_calloc(g->arena, 1, sizeof(*t));
    TU_CHECK(mixrt_tensor_init(ctx, t, MIXRT_DTYPE_F32, 0, NULL) == MIXRT_STATUS_OK, "scalar %s", name);
    mixrt_store_f64(t->data, MIXRT_DTYPE_F32, 0, v);
    g->values[vi].init = t;
    g->values[vi].flags |= MIXRT_VALUE_INITIALIZER;
    return vi;
}

/* Appends node op (default domain, opset 17) reading ins; its output is a new value out with
 * dtype/shape given (rank -1: leave it to inference). Returns the node index. */
static int add_node(struct mixrt_graph *g, const char *op, int n_in, const int *ins, const char *out, int rank,
                    const int64_t *dims) {
    int ni = mixrt_graph_add_node(g, out, op, "");
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 17;
    n->n_inputs = n_in;
    n->inputs = mixrt_arena_calloc(g->arena, (size_t)(n_in ? n_in : 1), sizeof(int));
    memcpy(n->inputs, ins, (size_t)n_in * sizeof(int));
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    int vi = rank >= 0 ? add_value(g, out, MIXRT_DTYPE_F32, rank, dims) : mixrt_graph_get_or_add_value(g, out);
    n->outputs[0] = vi;
    g->values[vi].producer = ni;
    return ni;
}

static int out_of(struct mixrt_graph *g, int ni) { return g->nodes[ni].outputs[0]; }

static struct mixrt_graph *new_graph(void) {
    struct mixrt_graph *g = NULL;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    static const struct mixrt_opset op17 = {"", 17};
    g->opsets = &op17;
    g->n_opsets = 1;
    return g;
}

/* A Conv node (3x3 pad 1 stride 1 unless told) of x with M output channels; W and B constants. */
static int add_conv(struct mixrt_graph *g, int x, int64_t M, int64_t k, int64_t stride, const char *name) {
    const struct mixrt_value *xv = &g->values[x];
    int64_t C = xv->dims[1].value, H = xv->dims[2].value, W = xv->dims[3].value;
    char wn[64], bn[64];
    snprintf(wn, sizeof(wn), "%s_w", name);
    snprintf(bn, sizeof(bn), "%s_b", name);
    int w = add_const_uniform(ctx, g, wn, MIXRT_DTYPE_F32, 4, (int64_t[]){M, C, k, k}, 1.0 / sqrt((double)(C * k * k)));
    int b = add_const_uniform(ctx, g, bn, MIXRT_DTYPE_F32, 1, &M, 0.5);
    int64_t p = k / 2, Ho = (H + 2 * p - k) / stride + 1, Wo = (W + 2 * p - k) / stride + 1;
    int ni = add_node(g, "Conv", 3, (int[]){x, w, b}, name, 4, (int64_t[]){xv->dims[0].value, M, Ho, Wo});
    node_attr_ints(g, ni, "pads", 4, (int64_t[]){p, p, p, p});
    node_attr_ints(g, ni, "strides", 2, (int64_t[]){stride, stride});
    node_attr_ints(g, ni, "kernel_shape", 2, (int64_t[]){k, k});
    return ni;
}

static int count_op(const struct mixrt_graph *g, const char *domain, const char *op) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++) n += !strcmp(g->nodes[i].op_type, op) && !strcmp(g->nodes[i].domain, domain);
    return n;
}

/* The last node of op in domain, or -1. */
static int last_op(const struct mixrt_graph *g, const char *domain, const char *op) {
    int k = -1;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, op) && !strcmp(g->nodes[i].domain, domain)) k = i;
    return k;
}

/* FusedConv nodes with activation act. */
static int act_convs(const struct mixrt_graph *g, const char *act) {
    int n = 0;
    for (int i = 0; i < g->n_nodes; i++)
        n += !strcmp(g->nodes[i].op_type, "FusedConv") && !strcmp(mixrt_node_attr_string(&g->nodes[i], "activation", ""), act);
    return n;
}

/* Runs g with the reference executor on inputs; output 0 as doubles (malloc'd), *n set. */
static double *run_graph(struct mixrt_graph *g, int n_in, const struct mixrt_tensor *const *in, size_t *n) {
    struct mixrt_tensor outs[4];
    memset(outs, 0, sizeof(outs));
    *n = 0;
    TU_CHECK(mixrt_graph_toposort(g, &g->order) == MIXRT_STATUS_OK, "toposort: %s", mixrt_context_last_error(ctx));
    mixrt_status st = mixrt_exec_graph(ctx, g, NULL, n_in, in, NULL, outs, NULL, NULL);
    TU_CHECK(st == MIXRT_STATUS_OK, "exec: %s", mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) return NULL;
    *n = mixrt_tensor_numel(&outs[0]);
    double *v = malloc((*n ? *n : 1) * sizeof(double));
    for (size_t i = 0; i < *n; i++) v[i] = mixrt_load_f64(outs[0].data, outs[0].dtype, i);
    for (int i = 0; i < g->n_outputs && i < 4; i++) mixrt_tensor_release(ctx, &outs[i]);
    return v;
}

static struct mixrt_tensor *rand_tensor(mixrt_dtype dt, int rank, const int64_t *dims) {
    struct mixrt_tensor *t = NULL;
    mixrt_tensor_create(ctx, dt, rank, dims, &t);
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) mixrt_store_f64(t->data, dt, i, tu_uniform(-1, 1));
    return t;
}

/* ||a - b|| / ||b||. */
static double rel_err(const double *a, const double *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) d += (a[i] - b[i]) * (a[i] - b[i]), s += b[i] * b[i];
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

/* Runs build(g) once as is and once after the passes (flags); the outputs must agree. The
 * graph after the passes is returned (destroy it) for the caller's structural checks. */
typedef void (*build_fn)(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in);
static struct mixrt_graph *check_pass(const char *name, build_fn build, unsigned flags) {
    struct mixrt_graph *g0 = new_graph(), *g1 = new_graph();
    struct mixrt_tensor *in0[4] = {NULL}, *in1[4] = {NULL};
    int n0 = 0, n1 = 0;
    tu_seed(42);
    build(g0, &n0, in0);
    tu_seed(42);
    build(g1, &n1, in1);
    struct mixrt_pass_stats stats;
    mixrt_status st = mixrt_passes_run(g1, flags, &stats);
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: passes: %s", name, mixrt_context_last_error(ctx));
    size_t na = 0, nb = 0;
    double *a = run_graph(g0, n0, (const struct mixrt_tensor *const *)in0, &na);
    double *b = run_graph(g1, n1, (const struct mixrt_tensor *const *)in1, &nb);
    TU_CHECK(a && b && na == nb && na > 0, "%s: output counts %zu vs %zu", name, na, nb);
    if (a && b && na == nb) {
        double e = rel_err(b, a, na);
        /* The fused graph rounds once where the original rounds each op's f32 output. */
        TU_CHECK(e < 1e-6, "%s: rewritten graph differs from the original: rel err %g", name, e);
    }
    free(a);
    free(b);
    for (int i = 0; i < 4; i++) {
        if (in0[i]) mixrt_tensor_destroy(ctx, in0[i]);
        if (in1[i]) mixrt_tensor_destroy(ctx, in1[i]);
    }
    mixrt_graph_destroy(g0);
    return g1;
}

/* ---- pass cases ------------------------------------------------------------------------- */

static const int64_t X_DIMS[4] = {1, 5, 9, 7};

/* Conv -> Add(z) -> Relu */
static void build_residual(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int z = add_input(g, "z", MIXRT_DTYPE_F32, 4, (int64_t[]){1, 6, 9, 7});
    int c = add_conv(g, x, 6, 3, 1, "conv");
    int a = add_node(g, "Add", 2, (int[]){z, out_of(g, c)}, "add", 4, (int64_t[]){1, 6, 9, 7});
    int r = add_node(g, "Relu", 1, (int[]){out_of(g, a)}, "relu", 4, (int64_t[]){1, 6, 9, 7});
    graph_set_output(g, out_of(g, r));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    in[1] = rand_tensor(MIXRT_DTYPE_F32, 4, (int64_t[]){1, 6, 9, 7});
    *n_in = 2;
}

/* Conv -> Clip(0, 6) (opset 13 with constant min/max) */
static void build_clip(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int c = add_conv(g, x, 4, 3, 2, "conv");
    int lo = add_scalar(g, "lo", 0.0), hi = add_scalar(g, "hi", 0.25);
    int r = add_node(g, "Clip", 3, (int[]){out_of(g, c), lo, hi}, "clip", 4, (int64_t[]){1, 4, 5, 4});
    graph_set_output(g, out_of(g, r));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}

/* Conv -> Sigmoid, Mul (SiLU) */
static void build_silu(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int c = add_conv(g, x, 3, 1, 1, "conv");
    const int64_t d[4] = {1, 3, 9, 7};
    int s = add_node(g, "Sigmoid", 1, (int[]){out_of(g, c)}, "sig", 4, d);
    int m = add_node(g, "Mul", 2, (int[]){out_of(g, s), out_of(g, c)}, "mul", 4, d);
    graph_set_output(g, out_of(g, m));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}

/* Conv -> Add(z) with the Conv's output read twice (negative). */
static void build_two_uses(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    const int64_t d[4] = {1, 6, 9, 7};
    int z = add_input(g, "z", MIXRT_DTYPE_F32, 4, d);
    int c = add_conv(g, x, 6, 3, 1, "conv");
    int a = add_node(g, "Add", 2, (int[]){out_of(g, c), z}, "add", 4, d);
    int t = add_node(g, "Tanh", 1, (int[]){out_of(g, c)}, "tanh", 4, d);
    int s = add_node(g, "Sub", 2, (int[]){out_of(g, a), out_of(g, t)}, "sub", 4, d);
    graph_set_output(g, out_of(g, s));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    in[1] = rand_tensor(MIXRT_DTYPE_F32, 4, d);
    *n_in = 2;
}

/* Conv -> Relu with the Conv's output also a graph output (negative). */
static void build_mid_output(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int c = add_conv(g, x, 6, 3, 1, "conv");
    int r = add_node(g, "Relu", 1, (int[]){out_of(g, c)}, "relu", 4, (int64_t[]){1, 6, 9, 7});
    graph_set_output(g, out_of(g, r));
    graph_set_output(g, out_of(g, c));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}

/* Conv -> Add of a [1, M, 1, 1] tensor (broadcast: negative). */
static void build_broadcast(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int c = add_conv(g, x, 6, 3, 1, "conv");
    int z = add_input(g, "z", MIXRT_DTYPE_F32, 4, (int64_t[]){1, 6, 1, 1});
    int a = add_node(g, "Add", 2, (int[]){out_of(g, c), z}, "add", 4, (int64_t[]){1, 6, 9, 7});
    graph_set_output(g, out_of(g, a));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    in[1] = rand_tensor(MIXRT_DTYPE_F32, 4, (int64_t[]){1, 6, 1, 1});
    *n_in = 2;
}

/* A squeeze-excite block (EfficientNet's): conv, then x * sigmoid(conv(relu(conv(GAP(x))))) with
 * the [1, C, 1, 1] scale on either side of the Mul, a per-channel constant Add, then a conv.
 * swap: the scale is the Mul's first input. */
static void build_se_any(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in, bool swap) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    const int64_t d[4] = {1, 16, 9, 7}, s1[4] = {1, 16, 1, 1};
    int c1 = add_conv(g, x, 16, 3, 1, "c1");
    int r1 = add_node(g, "Relu", 1, (int[]){out_of(g, c1)}, "r1", 4, d);
    int ga = add_node(g, "GlobalAveragePool", 1, (int[]){out_of(g, r1)}, "ga", 4, s1);
    int c2 = add_conv(g, out_of(g, ga), 4, 1, 1, "c2");
    int r2 = add_node(g, "Relu", 1, (int[]){out_of(g, c2)}, "r2", 4, (int64_t[]){1, 4, 1, 1});
    int c3 = add_conv(g, out_of(g, r2), 16, 1, 1, "c3");
    int sg = add_node(g, "Sigmoid", 1, (int[]){out_of(g, c3)}, "sg", 4, s1);
    int m = swap ? add_node(g, "Mul", 2, (int[]){out_of(g, sg), out_of(g, r1)}, "m", 4, d)
                 : add_node(g, "Mul", 2, (int[]){out_of(g, r1), out_of(g, sg)}, "m", 4, d);
    int k = add_const_uniform(ctx, g, "k", MIXRT_DTYPE_F32, 4, s1, 1.0);
    int a = add_node(g, "Add", 2, (int[]){out_of(g, m), k}, "a", 4, d);
    int c4 = add_conv(g, out_of(g, a), 8, 1, 1, "c4");
    graph_set_output(g, out_of(g, c4));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}
static void build_se(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) { build_se_any(g, n_in, in, false); }
static void build_se_swap(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) { build_se_any(g, n_in, in, true); }

/* ConvNeXt's pattern: conv, the model's own Transpose to NHWC, a channels-last op (here
 * Sigmoid, as rank 4 [N,H,W,C]), Transpose back, conv. */
static void build_own_transposes(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int c1 = add_conv(g, x, 16, 3, 1, "c1");
    int t1 = add_node(g, "Transpose", 1, (int[]){out_of(g, c1)}, "t1", 4, (int64_t[]){1, 9, 7, 16});
    node_attr_ints(g, t1, "perm", 4, (int64_t[]){0, 2, 3, 1});
    int sg = add_node(g, "Softmax", 1, (int[]){out_of(g, t1)}, "sm", 4, (int64_t[]){1, 9, 7, 16});
    int t2 = add_node(g, "Transpose", 1, (int[]){out_of(g, sg)}, "t2", 4, (int64_t[]){1, 16, 9, 7});
    node_attr_ints(g, t2, "perm", 4, (int64_t[]){0, 3, 1, 2});
    int c2 = add_conv(g, out_of(g, t2), 8, 1, 1, "c2");
    graph_set_output(g, out_of(g, c2));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}

/* SegFormer's token sequences between convs: conv, x.flatten(2).transpose(1, 2) (Reshape to
 * [N, C, H*W], Transpose (0, 2, 1)), a per-token op (Softmax over C), x.transpose(1, 2)
 * .reshape(N, C, H, W), conv. In channels-last memory both edges are Reshapes. */
static void build_tokens(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int c1 = add_conv(g, x, 16, 3, 1, "c1");
    int s3 = add_const_values(ctx, g, "s3", MIXRT_DTYPE_I64, 1, (int64_t[]){3}, (double[]){1, 16, 63});
    int s4 = add_const_values(ctx, g, "s4", MIXRT_DTYPE_I64, 1, (int64_t[]){4}, (double[]){1, 16, 9, 7});
    int f = add_node(g, "Reshape", 2, (int[]){out_of(g, c1), s3}, "flat", 3, (int64_t[]){1, 16, 63});
    int t1 = add_node(g, "Transpose", 1, (int[]){out_of(g, f)}, "t1", 3, (int64_t[]){1, 63, 16});
    node_attr_ints(g, t1, "perm", 3, (int64_t[]){0, 2, 1});
    int sm = add_node(g, "Softmax", 1, (int[]){out_of(g, t1)}, "sm", 3, (int64_t[]){1, 63, 16});
    int t2 = add_node(g, "Transpose", 1, (int[]){out_of(g, sm)}, "t2", 3, (int64_t[]){1, 16, 63});
    node_attr_ints(g, t2, "perm", 3, (int64_t[]){0, 2, 1});
    int u = add_node(g, "Reshape", 2, (int[]){out_of(g, t2), s4}, "unflat", 4, (int64_t[]){1, 16, 9, 7});
    int c2 = add_conv(g, out_of(g, u), 8, 1, 1, "c2");
    graph_set_output(g, out_of(g, c2));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}

/* An upsampling between convs: conv (16 channels), Resize, conv. kind 0: linear x2 by scales;
 * 1: nearest to sizes [1, 16, 18, 11]; 2: the channels resized too (C 16 -> 32, not channels-last
 * material); 3: SegFormer's decoder, the Resize reading the tokens [1, 63, 16] viewed as an
 * image (Transpose (0, 2, 1), Reshape) after a per-token Softmax; 4: two convs, then linear x2
 * into the graph output. */
static void build_resize_any(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in, int kind) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int c1 = add_conv(g, x, 16, 3, 1, "c1");
    int v = out_of(g, c1);
    if (kind == 4) v = out_of(g, add_conv(g, v, 16, 1, 1, "c1b")); /* a region of two convs before it */
    if (kind == 3) {
        int s3 = add_const_values(ctx, g, "s3", MIXRT_DTYPE_I64, 1, (int64_t[]){3}, (double[]){1, 16, 63});
        int s4 = add_const_values(ctx, g, "s4", MIXRT_DTYPE_I64, 1, (int64_t[]){4}, (double[]){1, 16, 9, 7});
        int f = add_node(g, "Reshape", 2, (int[]){v, s3}, "flat", 3, (int64_t[]){1, 16, 63});
        int t1 = add_node(g, "Transpose", 1, (int[]){out_of(g, f)}, "t1", 3, (int64_t[]){1, 63, 16});
        node_attr_ints(g, t1, "perm", 3, (int64_t[]){0, 2, 1});
        int sm = add_node(g, "Softmax", 1, (int[]){out_of(g, t1)}, "sm", 3, (int64_t[]){1, 63, 16});
        int t2 = add_node(g, "Transpose", 1, (int[]){out_of(g, sm)}, "t2", 3, (int64_t[]){1, 16, 63});
        node_attr_ints(g, t2, "perm", 3, (int64_t[]){0, 2, 1});
        v = out_of(g, add_node(g, "Reshape", 2, (int[]){out_of(g, t2), s4}, "unflat", 4, (int64_t[]){1, 16, 9, 7}));
    }
    int rz;
    if (kind == 1) {
        int sz = add_const_values(ctx, g, "sizes", MIXRT_DTYPE_I64, 1, (int64_t[]){4}, (double[]){1, 16, 18, 11});
        rz = add_node(g, "Resize", 4, (int[]){v, -1, -1, sz}, "rz", 4, (int64_t[]){1, 16, 18, 11});
        node_attr_str(g, rz, "mode", "nearest");
    } else {
        double sv[4] = {1, kind == 2 ? 2 : 1, 2, 2};
        int sc = add_const_values(ctx, g, "scales", MIXRT_DTYPE_F32, 1, (int64_t[]){4}, sv);
        rz = add_node(g, "Resize", 3, (int[]){v, -1, sc}, "rz", 4, (int64_t[]){1, kind == 2 ? 32 : 16, 18, 14});
        node_attr_str(g, rz, "mode", "linear");
    }
    graph_set_output(g, kind == 4 ? out_of(g, rz) : out_of(g, add_conv(g, out_of(g, rz), 8, 1, 1, "c2")));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}
static void build_resize_out(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    build_resize_any(g, n_in, in, 4);
}
static void build_resize_linear(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    build_resize_any(g, n_in, in, 0);
}
static void build_resize_nearest(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    build_resize_any(g, n_in, in, 1);
}
static void build_resize_chan(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    build_resize_any(g, n_in, in, 2);
}
static void build_resize_tokens(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    build_resize_any(g, n_in, in, 3);
}

/* A ConvNeXt block's tail: conv, Transpose to NHWC, MatMul + bias, layer scale, Transpose back,
 * residual Add of the conv's output, conv. The Add meets the product only after the layout pass;
 * it then becomes the FusedMatMul's residual. */
static void build_tail_any(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in, bool tv) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    const int64_t dl[4] = {1, 9, 7, 16}, df[4] = {1, 16, 9, 7};
    int c1 = add_conv(g, x, 16, 3, 1, "c1");
    int t1 = add_node(g, "Transpose", 1, (int[]){out_of(g, c1)}, "t1", 4, dl);
    node_attr_ints(g, t1, "perm", 4, (int64_t[]){0, 2, 3, 1});
    int w = add_const_uniform(ctx, g, "w", MIXRT_DTYPE_F32, 2, (int64_t[]){16, 16}, 0.5);
    int bias = add_const_uniform(ctx, g, "bias", MIXRT_DTYPE_F32, 1, (int64_t[]){16}, 0.5);
    int gamma = tv ? add_const_uniform(ctx, g, "gamma", MIXRT_DTYPE_F32, 3, (int64_t[]){16, 1, 1}, 0.5)
                   : add_const_uniform(ctx, g, "gamma", MIXRT_DTYPE_F32, 1, (int64_t[]){16}, 0.5);
    int mm = add_node(g, "MatMul", 2, (int[]){out_of(g, t1), w}, "mm", 4, dl);
    int ab = add_node(g, "Add", 2, (int[]){out_of(g, mm), bias}, "ab", 4, dl);
    int t2, r;
    if (tv) { /* torchvision: Transpose back, then Mul(layer_scale [C, 1, 1], x), then the residual */
        t2 = add_node(g, "Transpose", 1, (int[]){out_of(g, ab)}, "t2", 4, df);
        node_attr_ints(g, t2, "perm", 4, (int64_t[]){0, 3, 1, 2});
        int sc = add_node(g, "Mul", 2, (int[]){gamma, out_of(g, t2)}, "sc", 4, df);
        r = add_node(g, "Add", 2, (int[]){out_of(g, sc), out_of(g, c1)}, "res", 4, df);
    } else {
        int sc = add_node(g, "Mul", 2, (int[]){out_of(g, ab), gamma}, "sc", 4, dl);
        t2 = add_node(g, "Transpose", 1, (int[]){out_of(g, sc)}, "t2", 4, df);
        node_attr_ints(g, t2, "perm", 4, (int64_t[]){0, 3, 1, 2});
        r = add_node(g, "Add", 2, (int[]){out_of(g, c1), out_of(g, t2)}, "res", 4, df);
    }
    int c2 = add_conv(g, out_of(g, r), 8, 1, 1, "c2");
    graph_set_output(g, out_of(g, c2));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}
static void build_convnext_tail(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    build_tail_any(g, n_in, in, false);
}
static void build_convnext_tail_tv(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    build_tail_any(g, n_in, in, true);
}

/* A small ResNet-like region: Conv-Relu-MaxPool, a bottleneck with a residual, AveragePool,
 * GlobalAveragePool, Flatten; plus a channels-first reader in the middle (Tanh on a graph
 * output) so the region has a real exit. */
static void build_region(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    const int64_t xd[4] = {1, 3, 17, 15};
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, xd);
    int c1 = add_conv(g, x, 16, 3, 2, "c1"); /* [1,16,9,8] */
    int r1 = add_node(g, "Relu", 1, (int[]){out_of(g, c1)}, "r1", 4, (int64_t[]){1, 16, 9, 8});
    int mp = add_node(g, "MaxPool", 1, (int[]){out_of(g, r1)}, "mp", 4, (int64_t[]){1, 16, 5, 4});
    node_attr_ints(g, mp, "kernel_shape", 2, (int64_t[]){3, 3});
    node_attr_ints(g, mp, "strides", 2, (int64_t[]){2, 2});
    node_attr_ints(g, mp, "pads", 4, (int64_t[]){1, 1, 1, 1});
    int c2 = add_conv(g, out_of(g, mp), 8, 1, 1, "c2");
    int r2 = add_node(g, "Relu", 1, (int[]){out_of(g, c2)}, "r2", 4, (int64_t[]){1, 8, 5, 4});
    int c3 = add_conv(g, out_of(g, r2), 16, 3, 1, "c3");
    int ad = add_node(g, "Add", 2, (int[]){out_of(g, c3), out_of(g, mp)}, "ad", 4, (int64_t[]){1, 16, 5, 4});
    int r3 = add_node(g, "Relu", 1, (int[]){out_of(g, ad)}, "r3", 4, (int64_t[]){1, 16, 5, 4});
    int ap = add_node(g, "AveragePool", 1, (int[]){out_of(g, r3)}, "ap", 4, (int64_t[]){1, 16, 5, 4});
    node_attr_ints(g, ap, "kernel_shape", 2, (int64_t[]){3, 3});
    node_attr_ints(g, ap, "pads", 4, (int64_t[]){1, 1, 1, 1});
    int ga = add_node(g, "GlobalAveragePool", 1, (int[]){out_of(g, ap)}, "ga", 4, (int64_t[]){1, 16, 1, 1});
    int fl = add_node(g, "Flatten", 1, (int[]){out_of(g, ga)}, "fl", 2, (int64_t[]){1, 16});
    graph_set_output(g, out_of(g, fl));
    int th = add_node(g, "Tanh", 1, (int[]){out_of(g, r2)}, "th", 4, (int64_t[]){1, 8, 5, 4});
    graph_set_output(g, out_of(g, th));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, xd);
    *n_in = 1;
}

/* wav2vec2's feature extractor in small: a 1-D conv (kernel 10, stride 5) of the one-channel
 * waveform, the dynamo export's group norm (a Reshape to the same shape, InstanceNormalization,
 * Mul and Add of [C, 1] constants), Gelu, two more conv + Gelu, then Transpose (0, 2, 1) to
 * tokens and a Softmax over them. */
static void build_conv1d(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    const int64_t L = 203, C = 67, L1 = (L - 10) / 5 + 1, L2 = (L1 - 3) / 2 + 1, L3 = (L2 - 2) / 2 + 1;
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 3, (int64_t[]){1, 1, L});
    int w1 = add_const_uniform(ctx, g, "w1", MIXRT_DTYPE_F32, 3, (int64_t[]){C, 1, 10}, 0.3);
    int c1 = add_node(g, "Conv", 2, (int[]){x, w1}, "c1", 3, (int64_t[]){1, C, L1});
    node_attr_ints(g, c1, "strides", 1, (int64_t[]){5});
    node_attr_ints(g, c1, "kernel_shape", 1, (int64_t[]){10});
    int sh = add_const_values(ctx, g, "sh", MIXRT_DTYPE_I64, 1, (int64_t[]){3}, (double[]){1, (double)C, (double)L1});
    int rs = add_node(g, "Reshape", 2, (int[]){out_of(g, c1), sh}, "rs", 3, (int64_t[]){1, C, L1});
    int sc = add_const_uniform(ctx, g, "sc", MIXRT_DTYPE_F32, 1, &C, 1.0);
    int bi = add_const_uniform(ctx, g, "bi", MIXRT_DTYPE_F32, 1, &C, 1.0);
    int in_ = add_node(g, "InstanceNormalization", 3, (int[]){out_of(g, rs), sc, bi}, "in", 3, (int64_t[]){1, C, L1});
    int gm = add_const_uniform(ctx, g, "gm", MIXRT_DTYPE_F32, 2, (int64_t[]){C, 1}, 1.0);
    int bt = add_const_uniform(ctx, g, "bt", MIXRT_DTYPE_F32, 2, (int64_t[]){C, 1}, 1.0);
    int mu = add_node(g, "Mul", 2, (int[]){out_of(g, in_), gm}, "mu", 3, (int64_t[]){1, C, L1});
    int ad = add_node(g, "Add", 2, (int[]){bt, out_of(g, mu)}, "ad", 3, (int64_t[]){1, C, L1});
    int g1 = add_node(g, "Gelu", 1, (int[]){out_of(g, ad)}, "g1", 3, (int64_t[]){1, C, L1});
    g->nodes[g1].opset = 20;
    int w2 = add_const_uniform(ctx, g, "w2", MIXRT_DTYPE_F32, 3, (int64_t[]){C, C, 3}, 1.0 / sqrt(3.0 * C));
    int c2 = add_node(g, "Conv", 2, (int[]){out_of(g, g1), w2}, "c2", 3, (int64_t[]){1, C, L2});
    node_attr_ints(g, c2, "strides", 1, (int64_t[]){2});
    int g2 = add_node(g, "Gelu", 1, (int[]){out_of(g, c2)}, "g2", 3, (int64_t[]){1, C, L2});
    g->nodes[g2].opset = 20;
    int w3 = add_const_uniform(ctx, g, "w3", MIXRT_DTYPE_F32, 3, (int64_t[]){C, C, 2}, 1.0 / sqrt(2.0 * C));
    int c3 = add_node(g, "Conv", 2, (int[]){out_of(g, g2), w3}, "c3", 3, (int64_t[]){1, C, L3});
    node_attr_ints(g, c3, "strides", 1, (int64_t[]){2});
    int g3 = add_node(g, "Gelu", 1, (int[]){out_of(g, c3)}, "g3", 3, (int64_t[]){1, C, L3});
    g->nodes[g3].opset = 20;
    node_attr_str(g, g3, "approximate", "tanh");
    int t = add_node(g, "Transpose", 1, (int[]){out_of(g, g3)}, "t", 3, (int64_t[]){1, L3, C});
    node_attr_ints(g, t, "perm", 3, (int64_t[]){0, 2, 1});
    /* A token op after the Transpose (wav2vec2's LayerNorm): a graph output keeps its name. */
    int sm = add_node(g, "Softmax", 1, (int[]){out_of(g, t)}, "sm", 3, (int64_t[]){1, L3, C});
    graph_set_output(g, out_of(g, sm));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 3, (int64_t[]){1, 1, L});
    *n_in = 1;
}

static void test_passes_conv1d(void) {
    /* CPU engines: every node of the extractor channels-last, the Gelus conv epilogues, no
     * Transpose left (the one-channel entry moves no data: a Reshape). */
    struct mixrt_graph *g = check_pass("conv1d", build_conv1d, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU);
    int gelu_convs = 0, last = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "FusedConv")) {
            const char *a = mixrt_node_attr_string(&g->nodes[i], "activation", "");
            gelu_convs += !strcmp(a, "Gelu") || !strcmp(a, "GeluTanh");
            last += mixrt_node_attr_int(&g->nodes[i], "channels_last", 0) == 1;
        }
    TU_CHECK(count_op(g, MIXRT_DOMAIN, "FusedConv") == 3 && last == 3 && gelu_convs == 2 &&
                 count_op(g, MIXRT_DOMAIN, "InstanceNormalization") == 1 && count_op(g, "", "Transpose") == 0 &&
                 count_op(g, "", "Conv") == 0 && count_op(g, "", "InstanceNormalization") == 0,
             "conv1d: expected 3 channels-last FusedConv (2 with Gelu), the channels-last InstanceNormalization and "
             "no Transpose (%d nodes, %d Transposes)", g->n_nodes, count_op(g, "", "Transpose"));
    /* The group norm's [C, 1] Mul and Add and its Gelu are the InstanceNormalization's. */
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "InstanceNormalization"))
            TU_CHECK(!strcmp(mixrt_node_attr_string(&g->nodes[i], "activation", ""), "Gelu"),
                     "conv1d: the InstanceNormalization should apply Gelu");
    TU_CHECK(count_op(g, "", "Mul") + count_op(g, "", "Add") + count_op(g, "", "Gelu") == 0 &&
                 count_op(g, MIXRT_DOMAIN, "ElementwiseChain") == 0,
             "conv1d: the Mul, Add and Gelu after the InstanceNormalization should be folded into it (%d nodes)",
             g->n_nodes);
    struct mixrt_pass_stats stats;
    int before = g->n_nodes;
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU, &stats) == MIXRT_STATUS_OK &&
                 stats.layout_changed == 0 && stats.conv_fused == 0 && g->n_nodes == before,
             "conv1d: a second pass run changed the graph (%d layout changes)", stats.layout_changed);
    mixrt_graph_destroy(g);
    /* Without MIXRT_PASS_CONV_CPU (CUDA engines): no Gelu epilogue, no 1-D channels-last. */
    g = check_pass("conv1d (no CONV_CPU)", build_conv1d, MIXRT_PASS_ALL);
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "FusedConv"))
            TU_CHECK(mixrt_node_attr_int(&g->nodes[i], "channels_last", 0) == 0 &&
                         strncmp(mixrt_node_attr_string(&g->nodes[i], "activation", ""), "Gelu", 4),
                     "conv1d (no CONV_CPU): FusedConv '%s' is channels-last or takes the Gelu", g->nodes[i].name);
    TU_CHECK(count_op(g, "", "Gelu") == 3 && count_op(g, MIXRT_DOMAIN, "InstanceNormalization") == 0,
             "conv1d (no CONV_CPU): expected the 3 Gelus and the ONNX InstanceNormalization kept");
    mixrt_graph_destroy(g);
}

/* A 1-D region (two convs, as build_conv1d) with the channels-last InstanceNormalization and
 * an epilogue after it. kind 0: Mul(g [C, 1], IN), Sub(h [C, 1], that), Add of a scalar, Relu,
 * and IN's scale and bias shared with a second InstanceNormalization after the second conv (a
 * fold must not change them in place); 1: Mul by a scalar, Sub(that, h [C, 1]), Gelu (tanh);
 * 2: Mul by a full [1, C, L] constant, then Add(h), Gelu; 3: the same with a graph input [C, 1]
 * for g; 4: kind 1's ops with IN's output also a graph output. Kinds 2-4 must not fold. */
static void build_norm_any(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in, int kind) {
    const int64_t L = 203, C = 67, L1 = (L - 10) / 5 + 1, L2 = (L1 - 3) / 2 + 1, d1[3] = {1, C, L1},
                  d2[3] = {1, C, L2}, cd[2] = {C, 1};
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 3, (int64_t[]){1, 1, L});
    int gi = kind == 3 ? add_input(g, "gm", MIXRT_DTYPE_F32, 2, cd) : -1;
    int w1 = add_const_uniform(ctx, g, "w1", MIXRT_DTYPE_F32, 3, (int64_t[]){C, 1, 10}, 0.3);
    int c1 = add_node(g, "Conv", 2, (int[]){x, w1}, "c1", 3, d1);
    node_attr_ints(g, c1, "strides", 1, (int64_t[]){5});
    node_attr_ints(g, c1, "kernel_shape", 1, (int64_t[]){10});
    int sc = add_const_uniform(ctx, g, "sc", MIXRT_DTYPE_F32, 1, &C, 1.0);
    int bi = add_const_uniform(ctx, g, "bi", MIXRT_DTYPE_F32, 1, &C, 1.0);
    int nm = add_node(g, "InstanceNormalization", 3, (int[]){out_of(g, c1), sc, bi}, "in", 3, d1);
    int v = out_of(g, nm);
    int gm = kind == 3   ? gi
             : kind == 2 ? add_const_uniform(ctx, g, "gm", MIXRT_DTYPE_F32, 3, d1, 1.0)
             : kind == 0 ? add_const_uniform(ctx, g, "gm", MIXRT_DTYPE_F32, 2, cd, 1.0)
                         : add_scalar(g, "gm", -1.5);
    int h = add_const_uniform(ctx, g, "h", MIXRT_DTYPE_F32, 2, cd, 1.0);
    v = out_of(g, add_node(g, "Mul", 2, kind ? (int[]){v, gm} : (int[]){gm, v}, "mu", 3, d1));
    if (kind == 0) {
        v = out_of(g, add_node(g, "Sub", 2, (int[]){h, v}, "su", 3, d1));
        v = out_of(g, add_node(g, "Add", 2, (int[]){v, add_scalar(g, "k", 0.25)}, "ad", 3, d1));
        v = out_of(g, add_node(g, "Relu", 1, (int[]){v}, "act", 3, d1));
    } else {
        v = out_of(g, kind == 2 || kind == 3 ? add_node(g, "Add", 2, (int[]){v, h}, "ad", 3, d1)
                                             : add_node(g, "Sub", 2, (int[]){v, h}, "su", 3, d1));
        int ge = add_node(g, "Gelu", 1, (int[]){v}, "act", 3, d1);
        g->nodes[ge].opset = 20;
        if (kind == 1 || kind == 4) node_attr_str(g, ge, "approximate", "tanh");
        v = out_of(g, ge);
    }
    int w2 = add_const_uniform(ctx, g, "w2", MIXRT_DTYPE_F32, 3, (int64_t[]){C, C, 3}, 1.0 / sqrt(3.0 * C));
    int c2 = add_node(g, "Conv", 2, (int[]){v, w2}, "c2", 3, d2);
    node_attr_ints(g, c2, "strides", 1, (int64_t[]){2});
    v = out_of(g, c2);
    if (kind == 0) v = out_of(g, add_node(g, "InstanceNormalization", 3, (int[]){v, sc, bi}, "in2", 3, d2));
    int t = add_node(g, "Transpose", 1, (int[]){v}, "t", 3, (int64_t[]){1, L2, C});
    node_attr_ints(g, t, "perm", 3, (int64_t[]){0, 2, 1});
    int sm = add_node(g, "Softmax", 1, (int[]){out_of(g, t)}, "sm", 3, (int64_t[]){1, L2, C});
    graph_set_output(g, out_of(g, sm));
    if (kind == 4) graph_set_output(g, out_of(g, nm));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 3, (int64_t[]){1, 1, L});
    if (kind == 3) in[1] = rand_tensor(MIXRT_DTYPE_F32, 2, cd);
    *n_in = kind == 3 ? 2 : 1;
}
static void build_norm0(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) { build_norm_any(g, n_in, in, 0); }
static void build_norm1(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) { build_norm_any(g, n_in, in, 1); }
static void build_norm2(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) { build_norm_any(g, n_in, in, 2); }
static void build_norm3(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) { build_norm_any(g, n_in, in, 3); }
static void build_norm4(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) { build_norm_any(g, n_in, in, 4); }

static void test_passes_norm(void) {
    static const build_fn builds[] = {build_norm0, build_norm1, build_norm2, build_norm3, build_norm4};
    static const char *const names[] = {"norm mirrored + Relu", "norm scalar + GeluTanh", "norm full-size Mul",
                                        "norm input Mul", "norm output read"};
    for (int kind = 0; kind < 5; kind++) {
        struct mixrt_graph *g = check_pass(names[kind], builds[kind], MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU);
        int first = -1, norms = 0;
        for (int i = 0; i < g->n_nodes; i++)
            if (!strcmp(g->nodes[i].op_type, "InstanceNormalization") && !strcmp(g->nodes[i].domain, MIXRT_DOMAIN)) {
                norms++;
                if (!strcmp(g->nodes[i].name, "in")) first = i;
            }
        TU_CHECK(first >= 0 && norms == (kind == 0 ? 2 : 1), "%s: expected %d channels-last InstanceNormalization",
                 names[kind], kind == 0 ? 2 : 1);
        if (first < 0) {
            mixrt_graph_destroy(g);
            continue;
        }
        const struct mixrt_node *n = &g->nodes[first];
        const char *act = mixrt_node_attr_string(n, "activation", "");
        bool folded = strcmp(g->values[n->inputs[1]].name, "sc") && strcmp(g->values[n->inputs[2]].name, "bi");
        int left = count_op(g, "", "Mul") + count_op(g, "", "Add") + count_op(g, "", "Sub") +
                   count_op(g, "", "Relu") + count_op(g, "", "Gelu") + count_op(g, MIXRT_DOMAIN, "ElementwiseChain");
        if (kind < 2)
            TU_CHECK(folded && !strcmp(act, kind ? "GeluTanh" : "Relu") && left == 0,
                     "%s: expected the ops after the InstanceNormalization folded into it (activation '%s', %d ops "
                     "left, scale '%s')", names[kind], act, left, g->values[n->inputs[1]].name);
        else
            TU_CHECK(!folded && !act[0] && left > 0,
                     "%s: the ops after the InstanceNormalization must stay (activation '%s', scale '%s')",
                     names[kind], act, g->values[n->inputs[1]].name);
        if (kind == 4) /* a graph output keeps its producer */
            TU_CHECK(g->n_outputs == 2 && g->values[g->outputs[1]].producer >= 0, "%s: output 'in' lost", names[kind]);
        mixrt_graph_destroy(g);
    }
}

/* FCOS's head in small: conv -> torch's group norm as exported (Reshape [1, G, -1],
 * InstanceNormalization with G scales and biases, Reshape back, Mul and Add of [C, 1, 1]
 * constants) -> Relu -> conv. G groups of C / G = 3 channels; C = 12 is not a multiple of the
 * kernel's 64-channel blocks. */
static void build_groupnorm2d(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    const int64_t C = 12, G = 4, H = 9, W = 7, d[4] = {1, C, H, W}, cd[3] = {C, 1, 1};
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int c1 = add_conv(g, x, C, 3, 1, "c1");
    int s1 = add_const_values(ctx, g, "s1", MIXRT_DTYPE_I64, 1, (int64_t[]){3}, (double[]){1, (double)G, -1});
    int r1 = add_node(g, "Reshape", 2, (int[]){out_of(g, c1), s1}, "r1", 3, (int64_t[]){1, G, C / G * H * W});
    int sc = add_const_uniform(ctx, g, "sc", MIXRT_DTYPE_F32, 1, &G, 1.0);
    int bi = add_const_uniform(ctx, g, "bi", MIXRT_DTYPE_F32, 1, &G, 1.0);
    int nm = add_node(g, "InstanceNormalization", 3, (int[]){out_of(g, r1), sc, bi}, "gn", 3,
                      (int64_t[]){1, G, C / G * H * W});
    int s2 = add_const_values(ctx, g, "s2", MIXRT_DTYPE_I64, 1, (int64_t[]){4}, (double[]){1, (double)C, (double)H, (double)W});
    int r2 = add_node(g, "Reshape", 2, (int[]){out_of(g, nm), s2}, "r2", 4, d);
    int gm = add_const_uniform(ctx, g, "gm", MIXRT_DTYPE_F32, 3, cd, 1.0);
    int bt = add_const_uniform(ctx, g, "bt", MIXRT_DTYPE_F32, 3, cd, 1.0);
    int mu = add_node(g, "Mul", 2, (int[]){out_of(g, r2), gm}, "mu", 4, d);
    int ad = add_node(g, "Add", 2, (int[]){out_of(g, mu), bt}, "ad", 4, d);
    int re = add_node(g, "Relu", 1, (int[]){out_of(g, ad)}, "re", 4, d);
    int c2 = add_conv(g, out_of(g, re), 5, 3, 1, "c2");
    graph_set_output(g, out_of(g, c2));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}

static void test_passes_groupnorm(void) {
    /* CPU engines: the group norm is one channels-last InstanceNormalization with num_groups,
     * taking the affine and the Relu; only the region's entry and exit Transposes are left. */
    struct mixrt_graph *g = check_pass("groupnorm2d", build_groupnorm2d, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU);
    int gn = last_op(g, MIXRT_DOMAIN, "InstanceNormalization");
    TU_CHECK(gn >= 0 && mixrt_node_attr_int(&g->nodes[gn], "num_groups", 0) == 4 &&
                 !strcmp(mixrt_node_attr_string(&g->nodes[gn], "activation", ""), "Relu"),
             "groupnorm2d: expected a channels-last InstanceNormalization with num_groups 4 and Relu");
    TU_CHECK(count_op(g, "", "Transpose") == 2 && count_op(g, "", "Reshape") == 0 &&
                 count_op(g, "", "InstanceNormalization") == 0 && count_op(g, "", "Mul") + count_op(g, "", "Add") == 0,
             "groupnorm2d: expected the entry and exit Transposes only, no Reshape, Mul or Add (%d nodes, %d "
             "Transposes, %d Reshapes)",
             g->n_nodes, count_op(g, "", "Transpose"), count_op(g, "", "Reshape"));
    mixrt_graph_destroy(g);
    /* CUDA engines (no MIXRT_PASS_CONV_CPU): the exported ops stay. */
    g = check_pass("groupnorm2d (no CONV_CPU)", build_groupnorm2d, MIXRT_PASS_ALL);
    TU_CHECK(count_op(g, "", "InstanceNormalization") == 1 && count_op(g, MIXRT_DOMAIN, "InstanceNormalization") == 0,
             "groupnorm2d (no CONV_CPU): the ONNX InstanceNormalization should stay");
    mixrt_graph_destroy(g);
}

/* Mask R-CNN's mask predictor in small: conv -> Relu -> ConvTranspose (kernel = stride = 2,
 * bias) -> Relu -> 1x1 conv. */
static void build_deconv(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    const int64_t C = 8, Co = 6;
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int c1 = add_conv(g, x, C, 3, 1, "c1");
    int r1 = add_node(g, "Relu", 1, (int[]){out_of(g, c1)}, "r1", 4, (int64_t[]){1, C, 9, 7});
    int w = add_const_uniform(ctx, g, "wt", MIXRT_DTYPE_F32, 4, (int64_t[]){C, Co, 2, 2}, 0.5);
    int b = add_const_uniform(ctx, g, "bt", MIXRT_DTYPE_F32, 1, &Co, 0.5);
    int ct = add_node(g, "ConvTranspose", 3, (int[]){out_of(g, r1), w, b}, "ct", 4, (int64_t[]){1, Co, 18, 14});
    node_attr_ints(g, ct, "strides", 2, (int64_t[]){2, 2});
    node_attr_ints(g, ct, "kernel_shape", 2, (int64_t[]){2, 2});
    int r2 = add_node(g, "Relu", 1, (int[]){out_of(g, ct)}, "r2", 4, (int64_t[]){1, Co, 18, 14});
    int c2 = add_conv(g, out_of(g, r2), 5, 1, 1, "c2");
    graph_set_output(g, out_of(g, c2));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}

static void test_passes_deconv(void) {
    /* CPU engines: the ConvTranspose is a 1x1 conv taking the Relu, then a channels-last
     * DepthToSpace in DCR mode; only the region's entry and exit Transposes are left. */
    struct mixrt_graph *g = check_pass("deconv", build_deconv, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU);
    int d2s = last_op(g, MIXRT_DOMAIN, "DepthToSpace"), relu_convs = act_convs(g, "Relu");
    TU_CHECK(d2s >= 0 && !strcmp(mixrt_node_attr_string(&g->nodes[d2s], "mode", ""), "DCR") &&
                 mixrt_node_attr_int(&g->nodes[d2s], "blocksize", 0) == 2,
             "deconv: expected a channels-last DepthToSpace, DCR, blocksize 2");
    TU_CHECK(relu_convs == 2 && count_op(g, "", "Relu") == 0 && count_op(g, "", "ConvTranspose") == 0 &&
                 count_op(g, "", "DepthToSpace") == 0 && count_op(g, "", "Transpose") == 2,
             "deconv: expected both Relus in convolutions and the entry and exit Transposes only (%d nodes, %d "
             "Transposes, %d Relus)",
             g->n_nodes, count_op(g, "", "Transpose"), count_op(g, "", "Relu"));
    mixrt_graph_destroy(g);
    /* CUDA engines (no MIXRT_PASS_CONV_CPU): the ConvTranspose stays. */
    g = check_pass("deconv (no CONV_CPU)", build_deconv, MIXRT_PASS_ALL);
    TU_CHECK(count_op(g, "", "ConvTranspose") == 1 && count_op(g, MIXRT_DOMAIN, "DepthToSpace") == 0,
             "deconv (no CONV_CPU): the ConvTranspose should stay");
    mixrt_graph_destroy(g);
}

/* A shape read of a value inside a channels-last region, batch symbolic (so that it cannot
 * fold): conv -> Relu -> conv -> Relu (r2) -> conv, and Shape(r2, end 3) = [N, C, H] summed and
 * added to the output (a wrong permutation gives N + H + W or N + W + C). */
static void build_shape_read(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, (int64_t[]){-1, X_DIMS[1], X_DIMS[2], X_DIMS[3]});
    int c1 = add_conv(g, x, 8, 3, 1, "c1");
    int r1 = add_node(g, "Relu", 1, (int[]){out_of(g, c1)}, "r1", 4, (int64_t[]){-1, 8, 9, 7});
    int c2 = add_conv(g, out_of(g, r1), 6, 3, 1, "c2");
    int r2 = add_node(g, "Relu", 1, (int[]){out_of(g, c2)}, "r2", 4, (int64_t[]){-1, 6, 9, 7});
    int c3 = add_conv(g, out_of(g, r2), 5, 3, 1, "c3");
    int sh = add_node(g, "Shape", 1, (int[]){out_of(g, r2)}, "sh", -1, NULL);
    node_attr_int(g, sh, "end", 3);
    g->values[out_of(g, sh)].dtype = MIXRT_DTYPE_I64;
    int ca = add_node(g, "Cast", 1, (int[]){out_of(g, sh)}, "ca", 1, (int64_t[]){3});
    node_attr_int(g, ca, "to", MIXRT_DTYPE_F32);
    int rs = add_node(g, "ReduceSum", 1, (int[]){out_of(g, ca)}, "rs", 0, NULL);
    node_attr_int(g, rs, "keepdims", 0);
    int ad = add_node(g, "Add", 2, (int[]){out_of(g, c3), out_of(g, rs)}, "ad", 4, (int64_t[]){-1, 5, 9, 7});
    graph_set_output(g, out_of(g, ad));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}

static void test_passes_shape_read(void) {
    /* The Shape reads the channels-last twin through a Gather of the permutation: r2 keeps no
     * exit Transpose (the entry one and the output's are left). */
    struct mixrt_graph *g = check_pass("shape read", build_shape_read, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU);
    int sh = last_op(g, "", "Shape");
    bool via_gather = false;
    for (int i = 0; sh >= 0 && i < g->n_nodes; i++)
        via_gather = via_gather || (!strcmp(g->nodes[i].op_type, "Gather") && g->nodes[i].inputs[0] == out_of(g, sh));
    TU_CHECK(sh >= 0 && g->nodes[sh].n_attrs == 0 && via_gather && count_op(g, "", "Transpose") == 2,
             "shape read: expected Shape of the twin, a Gather after it and 2 Transposes (%d nodes, %d Transposes)",
             g->n_nodes, count_op(g, "", "Transpose"));
    mixrt_graph_destroy(g);
}

/* Mask R-CNN's mask selection in small: conv -> Sigmoid -> Flatten -> Gather of two rows, the
 * Sigmoid's output also read by a Shape (graph output 2), the conv's also a graph output (no
 * fusion could take the Sigmoid; Mask R-CNN's conv output is read by a Shape). With `alone`,
 * the conv's output has the op, a Relu, as its only reader. */
static void build_sink_any(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in, bool alone) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int c1 = add_conv(g, x, 6, 3, 1, "c1");
    int sg = add_node(g, alone ? "Relu" : "Sigmoid", 1, (int[]){out_of(g, c1)}, "sg", 4, (int64_t[]){1, 6, 9, 7});
    int fl = add_node(g, "Flatten", 1, (int[]){out_of(g, sg)}, "fl", 2, (int64_t[]){6, 63});
    node_attr_int(g, fl, "axis", 2);
    int ix = add_const_values(ctx, g, "ix", MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (double[]){4, 1});
    int ga = add_node(g, "Gather", 2, (int[]){out_of(g, fl), ix}, "ga", 2, (int64_t[]){2, 63});
    int sh = add_node(g, "Shape", 1, (int[]){out_of(g, sg)}, "sh", 1, (int64_t[]){4});
    g->values[out_of(g, sh)].dtype = MIXRT_DTYPE_I64;
    graph_set_output(g, out_of(g, ga));
    graph_set_output(g, out_of(g, sh));
    if (!alone) graph_set_output(g, out_of(g, c1));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}
static void build_sink(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) { build_sink_any(g, n_in, in, false); }
static void build_sink_fused(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    build_sink_any(g, n_in, in, true);
}

static void test_passes_sink(void) {
    /* The Sigmoid runs on the two gathered rows; the Shape reads the convolution's output. */
    struct mixrt_graph *g = check_pass("sink", build_sink, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU);
    int sg = last_op(g, "", "Sigmoid");
    int p = sg >= 0 ? g->values[g->nodes[sg].inputs[0]].producer : -1;
    TU_CHECK(p >= 0 && !strcmp(g->nodes[p].op_type, "Gather") && g->values[g->nodes[sg].outputs[0]].dims[0].value == 2,
             "sink: expected the Sigmoid after the Gather (it reads %s)", p >= 0 ? g->nodes[p].op_type : "?");
    mixrt_graph_destroy(g);
    /* The conv's only reader: the Relu stays for the conv to take (no Relu node left). */
    g = check_pass("sink (fusable)", build_sink_fused, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU);
    int relu_convs = act_convs(g, "Relu");
    TU_CHECK(relu_convs == 1 && count_op(g, "", "Relu") == 0, "sink (fusable): the Relu should fuse into the conv (%d "
             "fused, %d Relu nodes)", relu_convs, count_op(g, "", "Relu"));
    mixrt_graph_destroy(g);
}

/* torchvision's MultiScaleRoIAlign filling one level in: rows r (TopK's distinct indices) ->
 * Reshape [-1, 1, 1, 1] -> Expand to the updates' shape -> ScatterElements(data, ., updates,
 * axis 0). */
static void build_scatter_rows(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    const int64_t xd[2] = {1, 6}, dd[4] = {6, 3, 2, 2}, ud[4] = {4, 3, 2, 2};
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 2, xd);
    int data = add_input(g, "data", MIXRT_DTYPE_F32, 4, dd);
    int upd = add_input(g, "upd", MIXRT_DTYPE_F32, 4, ud);
    int k = add_const_values(ctx, g, "k", MIXRT_DTYPE_I64, 1, (int64_t[]){1}, (double[]){4});
    int tk = add_node(g, "TopK", 2, (int[]){x, k}, "tk_values", 2, (int64_t[]){1, 4});
    struct mixrt_node *tn = &g->nodes[tk];
    int *outs = mixrt_arena_calloc(g->arena, 2, sizeof(int));
    outs[0] = tn->outputs[0];
    outs[1] = add_value(g, "tk_indices", MIXRT_DTYPE_I64, 2, (int64_t[]){1, 4});
    g->values[outs[1]].producer = tk;
    tn->outputs = outs, tn->n_outputs = 2;
    int s4 = add_const_values(ctx, g, "s4", MIXRT_DTYPE_I64, 1, (int64_t[]){4}, (double[]){-1, 1, 1, 1});
    int r = add_node(g, "Reshape", 2, (int[]){outs[1], s4}, "r", 4, (int64_t[]){4, 1, 1, 1});
    g->values[out_of(g, r)].dtype = MIXRT_DTYPE_I64;
    int sh = add_node(g, "Shape", 1, (int[]){upd}, "sh", 1, (int64_t[]){4});
    g->values[out_of(g, sh)].dtype = MIXRT_DTYPE_I64;
    int ex = add_node(g, "Expand", 2, (int[]){out_of(g, r), out_of(g, sh)}, "ex", 4, ud);
    g->values[out_of(g, ex)].dtype = MIXRT_DTYPE_I64;
    int sc = add_node(g, "ScatterElements", 3, (int[]){data, out_of(g, ex), upd}, "sc", 4, dd);
    node_attr_int(g, sc, "axis", 0);
    graph_set_output(g, out_of(g, sc));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 2, xd);
    in[1] = rand_tensor(MIXRT_DTYPE_F32, 4, dd);
    in[2] = rand_tensor(MIXRT_DTYPE_F32, 4, ud);
    *n_in = 3;
}

static void test_passes_scatter_rows(void) {
    /* CPU engines: one ScatterND of whole rows, no ScatterElements. */
    struct mixrt_graph *g = check_pass("scatter rows", build_scatter_rows, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU);
    TU_CHECK(count_op(g, "", "ScatterND") == 1 && count_op(g, "", "ScatterElements") == 0,
             "scatter rows: expected ScatterND in place of ScatterElements (%d, %d)", count_op(g, "", "ScatterND"),
             count_op(g, "", "ScatterElements"));
    mixrt_graph_destroy(g);
    g = check_pass("scatter rows (no CONV_CPU)", build_scatter_rows, MIXRT_PASS_ALL);
    TU_CHECK(count_op(g, "", "ScatterElements") == 1, "scatter rows (no CONV_CPU): the ScatterElements should stay");
    mixrt_graph_destroy(g);
}

/* A 3-D block as R(2+1)D factors it: Conv 1x3x3 (+B) -> Relu -> Conv 3x1x1 of depth stride 2,
 * plus a 1x1x1 conv of depth stride 2 of the input -> Add -> Relu -> S3D's branches (a 1x1x1
 * conv; a 3x3x3 MaxPool and a 1x1x1 conv) -> Concat -> Conv 1x3x3 of stride 1x2x2 -> Mul by a
 * per-channel [1, C, 1, 1, 1] constant (an operand 3-D regions do not take). */
static const int64_t X3_DIMS[5] = {1, 16, 4, 10, 9};

static int add_conv3(struct mixrt_graph *g, int x, int64_t M, const int64_t *k, const int64_t *s, const int64_t *pd,
                     bool bias, const char *name) {
    const struct mixrt_value *xv = &g->values[x];
    const int64_t C = xv->dims[1].value;
    char wn[64], bn[64];
    snprintf(wn, sizeof(wn), "%s_w", name);
    snprintf(bn, sizeof(bn), "%s_b", name);
    int w = add_const_uniform(ctx, g, wn, MIXRT_DTYPE_F32, 5, (int64_t[]){M, C, k[0], k[1], k[2]},
                              1.0 / sqrt((double)(C * k[0] * k[1] * k[2])));
    int b = bias ? add_const_uniform(ctx, g, bn, MIXRT_DTYPE_F32, 1, &M, 0.5) : -1;
    int64_t yd[5] = {xv->dims[0].value, M};
    for (int i = 0; i < 3; i++) yd[2 + i] = (xv->dims[2 + i].value + 2 * pd[i] - k[i]) / s[i] + 1;
    int ni = add_node(g, "Conv", bias ? 3 : 2, bias ? (int[]){x, w, b} : (int[]){x, w}, name, 5, yd);
    node_attr_ints(g, ni, "pads", 6, (int64_t[]){pd[0], pd[1], pd[2], pd[0], pd[1], pd[2]});
    node_attr_ints(g, ni, "strides", 3, s);
    node_attr_ints(g, ni, "kernel_shape", 3, k);
    return ni;
}

static void build_conv3d(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 5, X3_DIMS);
    static const int64_t k133[3] = {1, 3, 3}, k311[3] = {3, 1, 1}, k111[3] = {1, 1, 1};
    static const int64_t s1[3] = {1, 1, 1}, s2d[3] = {2, 1, 1}, s2hw[3] = {1, 2, 2};
    static const int64_t p011[3] = {0, 1, 1}, p100[3] = {1, 0, 0}, p0[3] = {0, 0, 0};
    int c1 = add_conv3(g, x, 32, k133, s1, p011, true, "c1");
    const struct mixrt_value *v1 = &g->values[out_of(g, c1)];
    int64_t d1[5];
    for (int i = 0; i < 5; i++) d1[i] = v1->dims[i].value;
    int r1 = add_node(g, "Relu", 1, (int[]){out_of(g, c1)}, "r1", 5, d1);
    int c2 = add_conv3(g, out_of(g, r1), 16, k311, s2d, p100, true, "c2");
    int ds = add_conv3(g, x, 16, k111, s2d, p0, false, "ds");
    int64_t d2[5];
    for (int i = 0; i < 5; i++) d2[i] = g->values[out_of(g, c2)].dims[i].value;
    int ad = add_node(g, "Add", 2, (int[]){out_of(g, c2), out_of(g, ds)}, "ad", 5, d2);
    int r2 = add_node(g, "Relu", 1, (int[]){out_of(g, ad)}, "r2", 5, d2);
    /* S3D's inception branches: a 1x1x1 conv, and a 3x3x3 max pool then a 1x1x1 conv, concatenated. */
    int b1 = add_conv3(g, out_of(g, r2), 8, k111, s1, p0, true, "b1");
    int mp = add_node(g, "MaxPool", 1, (int[]){out_of(g, r2)}, "mp", 5, d2);
    node_attr_ints(g, mp, "kernel_shape", 3, (int64_t[]){3, 3, 3});
    node_attr_ints(g, mp, "pads", 6, (int64_t[]){1, 1, 1, 1, 1, 1});
    int b2 = add_conv3(g, out_of(g, mp), 8, k111, s1, p0, true, "b2");
    int cc = add_node(g, "Concat", 2, (int[]){out_of(g, b1), out_of(g, b2)}, "cc", 5, d2);
    node_attr_int(g, cc, "axis", 1);
    int c3 = add_conv3(g, out_of(g, cc), 16, k133, s2hw, p011, true, "c3");
    int64_t d3[5];
    for (int i = 0; i < 5; i++) d3[i] = g->values[out_of(g, c3)].dims[i].value;
    int sc = add_const_uniform(ctx, g, "sc", MIXRT_DTYPE_F32, 5, (int64_t[]){1, 16, 1, 1, 1}, 1.0);
    int mu = add_node(g, "Mul", 2, (int[]){out_of(g, c3), sc}, "mu", 5, d3);
    graph_set_output(g, out_of(g, mu));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 5, X3_DIMS);
    *n_in = 1;
}

/* Engines (fp32, {fp32,bf16}) of model path against its f64 reference engine, on input x. */
static void check_conv3d_engines(const char *path, const struct mixrt_tensor *x, int want_convs) {
    mixrt_engine_t r = NULL;
    const char *names[1] = {"x"};
    struct mixrt_tensor *yr = NULL;
    TU_CHECK(mixrt_engine_build_reference(ctx, path, NULL, 0, &r) == MIXRT_STATUS_OK &&
                 mixrt_engine_run(r, 1, names, &x, &yr) == MIXRT_STATUS_OK,
             "conv3d: reference engine: %s", mixrt_context_last_error(ctx));
    for (int bf = 0; bf < 2 && yr; bf++) {
        struct mixrt_build_options o;
        mixrt_build_options_init(&o);
        o.precisions = MIXRT_PRECISION_FP32 | (bf ? MIXRT_PRECISION_BF16 : 0);
        static const struct mixrt_layer_precision all_bf16 = {"*", MIXRT_DTYPE_BF16};
        if (bf) o.layer_precisions = &all_bf16, o.n_layer_precisions = 1;
        mixrt_engine_t e = NULL;
        struct mixrt_tensor *ye = NULL;
        mixrt_status st = mixrt_engine_build(ctx, path, &o, &e);
        TU_CHECK(st == MIXRT_STATUS_OK, "conv3d engine (%s): %s", bf ? "bf16" : "fp32", mixrt_context_last_error(ctx));
        if (st != MIXRT_STATUS_OK) continue;
        int on_dnnl = 0, convs = 0;
        for (size_t i = 0; i < mixrt_engine_layer_count(e); i++) {
            struct mixrt_layer_info li;
            mixrt_engine_get_layer(e, i, &li);
            if (strcmp(li.op_type, "FusedConv")) continue;
            convs++;
            on_dnnl += !strncmp(li.kernel, "dnnl_", 5) || !strcmp(li.kernel, "ref"); /* where oneDNN is built in */
        }
        if (want_convs >= 0) /* the conv3d model's: all on oneDNN (or the reference) */
            TU_CHECK(convs == want_convs && on_dnnl == want_convs,
                     "conv3d engine (%s): %d FusedConv layers, %d on oneDNN or the reference", bf ? "bf16" : "fp32", convs,
                     on_dnnl);
        st = mixrt_engine_run(e, 1, names, &x, &ye);
        TU_CHECK(st == MIXRT_STATUS_OK, "conv3d engine run: %s", mixrt_context_last_error(ctx));
        if (st == MIXRT_STATUS_OK) {
            size_t n = mixrt_tensor_numel(yr);
            double *a = malloc(n * sizeof(double)), *b = malloc(n * sizeof(double));
            for (size_t i = 0; i < n; i++)
                a[i] = mixrt_load_f64(ye->data, ye->dtype, i), b[i] = mixrt_load_f64(yr->data, yr->dtype, i);
            double err = rel_err(a, b, n), tol = bf ? 2e-2 : 1e-5;
            TU_CHECK(mixrt_tensor_numel(ye) == n && err <= tol, "conv3d engine (%s) vs f64 reference: error %.3g > %.3g",
                     bf ? "bf16" : "fp32", err, tol);
            free(a);
            free(b);
        }
        mixrt_tensor_destroy(ctx, ye);
        mixrt_engine_destroy(e);
    }
    mixrt_tensor_destroy(ctx, yr);
    mixrt_engine_destroy(r);
}

/* build's model (seeded), exported to ONNX, through check_conv3d_engines. */
static void check_exported(const char *name, build_fn build, uint64_t seed, int want_convs) {
    struct mixrt_graph *g0 = new_graph();
    struct mixrt_tensor *in[4] = {NULL};
    int n_in = 0;
    tu_seed(seed);
    build(g0, &n_in, in);
    char path[64];
    snprintf(path, sizeof(path), "test_%s_%d.onnx", name, (int)getpid());
    if (kh_export_model(ctx, g0, path)) check_conv3d_engines(path, in[0], want_convs);
    remove(path);
    for (int i = 0; i < 4; i++)
        if (in[i]) mixrt_tensor_destroy(ctx, in[i]);
    mixrt_graph_destroy(g0);
}

/* A 3-D MaxPool alone (no convolution: no region takes it). */
static void build_pool3d(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 5, X3_DIMS);
    int mp = add_node(g, "MaxPool", 1, (int[]){x}, "mp", 5, (int64_t[]){1, 16, 2, 5, 4});
    node_attr_ints(g, mp, "kernel_shape", 3, (int64_t[]){2, 2, 2});
    node_attr_ints(g, mp, "strides", 3, (int64_t[]){2, 2, 2});
    graph_set_output(g, out_of(g, mp));
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 5, X3_DIMS);
    *n_in = 1;
}

static void test_passes_conv3d(void) {
    /* A 3-D pool no region takes is still split into 2-D ones (the round after the layout pass). */
    struct mixrt_graph *gp = check_pass("pool3d alone", build_pool3d, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU);
    TU_CHECK(count_op(gp, "", "MaxPool") == 2 && count_op(gp, MIXRT_DOMAIN, "MaxPool") == 0,
             "pool3d alone: expected the 3-D MaxPool split into two 2-D ones (%d ONNX MaxPools)",
             count_op(gp, "", "MaxPool"));
    mixrt_graph_destroy(gp);
    /* CPU engines: the four convs channels-last, the Relus and the Add between them too; the
     * Transposes only at the entry and the exit; the per-channel Mul after the last conv folded
     * into its weights (fold_conv_mul). */
    struct mixrt_graph *g = check_pass("conv3d", build_conv3d, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU);
    int last = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "FusedConv")) last += mixrt_node_attr_int(&g->nodes[i], "channels_last", 0) == 1;
    TU_CHECK(count_op(g, MIXRT_DOMAIN, "FusedConv") == 6 && last == 6 && count_op(g, "", "Transpose") == 2 &&
                 count_op(g, "", "Mul") == 0 && count_op(g, MIXRT_DOMAIN, "MaxPool") == 1 &&
                 count_op(g, "", "MaxPool") == 0 && count_op(g, "", "Concat") == 1,
             "conv3d: expected 6 channels-last FusedConv, the channels-last 3-D MaxPool (not split), the Concat, 2 "
             "Transposes and no Mul (%d FusedConv, %d channels-last, %d Transposes, MaxPool %d com.mixrt / %d ONNX)",
             count_op(g, MIXRT_DOMAIN, "FusedConv"), last, count_op(g, "", "Transpose"),
             count_op(g, MIXRT_DOMAIN, "MaxPool"), count_op(g, "", "MaxPool"));
    mixrt_graph_destroy(g);
    /* Without MIXRT_PASS_CONV_CPU (CUDA engines): no 3-D channels-last. */
    g = check_pass("conv3d (no CONV_CPU)", build_conv3d, MIXRT_PASS_ALL);
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "FusedConv"))
            TU_CHECK(mixrt_node_attr_int(&g->nodes[i], "channels_last", 0) == 0,
                     "conv3d (no CONV_CPU): FusedConv '%s' is channels-last", g->nodes[i].name);
    TU_CHECK(count_op(g, "", "Transpose") == 0, "conv3d (no CONV_CPU): %d Transposes", count_op(g, "", "Transpose"));
    TU_CHECK(count_op(g, "", "MaxPool") == 2, "conv3d (no CONV_CPU): the 3-D MaxPool should be split into two 2-D ones");
    mixrt_graph_destroy(g);
    /* The engine's kernels on it (oneDNN's 3-D convs as the 2-D ones they are) against the f64
     * reference engine. */
    check_exported("conv3d", build_conv3d, 43, 6);
}

/* DenseNet's pattern: each layer joins the block input and every earlier layer's output
 * (Concat), then BatchNorm + ReLU + conv; the joined tensors are read only by the BatchNorm. */
static int add_bn_relu(struct mixrt_graph *g, int x, int64_t C, const char *name) {
    char nm[64];
    int p[4];
    for (int i = 0; i < 4; i++) {
        snprintf(nm, sizeof(nm), "%s_p%d", name, i);
        p[i] = add_const_uniform(ctx, g, nm, MIXRT_DTYPE_F32, 1, &C, 1.0);
        if (i == 0 || i == 3) /* scale and variance positive */
            for (int64_t c = 0; c < C; c++)
                mixrt_store_f64(g->values[p[i]].init->data, MIXRT_DTYPE_F32, (size_t)c,
                                0.5 + fabs(mixrt_load_f64(g->values[p[i]].init->data, MIXRT_DTYPE_F32, (size_t)c)));
    }
    const struct mixrt_value *xv = &g->values[x];
    int64_t d[4] = {xv->dims[0].value, C, xv->dims[2].value, xv->dims[3].value};
    snprintf(nm, sizeof(nm), "%s_bn", name);
    int bn = add_node(g, "BatchNormalization", 5, (int[]){x, p[0], p[1], p[2], p[3]}, nm, 4, d);
    snprintf(nm, sizeof(nm), "%s_relu", name);
    return add_node(g, "Relu", 1, (int[]){out_of(g, bn)}, nm, 4, d);
}

static void build_dense(struct mixrt_graph *g, int *n_in, struct mixrt_tensor **in) {
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, X_DIMS);
    int64_t N = X_DIMS[0], H = X_DIMS[2], W = X_DIMS[3];
    int c0 = add_conv(g, x, 8, 3, 1, "c0");
    int f[4] = {out_of(g, c0)}, nf = 1;
    int64_t C = 8;
    for (int l = 0; l < 3; l++) {
        char nm[32];
        snprintf(nm, sizeof(nm), "cat%d", l);
        int cc = add_node(g, "Concat", nf, f, nm, 4, (int64_t[]){N, C, H, W});
        node_attr_int(g, cc, "axis", 1);
        snprintf(nm, sizeof(nm), "l%d", l);
        int r = add_bn_relu(g, out_of(g, cc), C, nm);
        snprintf(nm, sizeof(nm), "conv%d", l);
        int cv = add_conv(g, out_of(g, r), l == 1 ? 5 : 3, 3, 1, nm);
        f[nf++] = out_of(g, cv);
        C += l == 1 ? 5 : 3;
    }
    graph_set_output(g, f[nf - 1]);
    in[0] = rand_tensor(MIXRT_DTYPE_F32, 4, X_DIMS);
    *n_in = 1;
}

static void test_passes_concat_affine(void) {
    /* CPU engines: each Concat and its BatchNorm + ReLU one ConcatAffine (the first joins one
     * tensor), no Concat or depthwise conv left. */
    struct mixrt_graph *g = check_pass("dense", build_dense, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU);
    int dw = 0;
    for (int i = 0; i < g->n_nodes; i++)
        dw += !strcmp(g->nodes[i].op_type, "FusedConv") && mixrt_node_attr_int(&g->nodes[i], "group", 1) > 1;
    int ca = last_op(g, MIXRT_DOMAIN, "ConcatAffine");
    TU_CHECK(count_op(g, MIXRT_DOMAIN, "ConcatAffine") == 3 && count_op(g, "", "Concat") == 0 && dw == 0 && ca >= 0 &&
                 g->nodes[ca].n_inputs == 5 && !strcmp(mixrt_node_attr_string(&g->nodes[ca], "activation", ""), "Relu"),
             "dense: expected 3 ConcatAffine (the last joining 3 tensors, with Relu), no Concat or depthwise conv "
             "(%d ConcatAffine, %d Concat, %d depthwise)",
             count_op(g, MIXRT_DOMAIN, "ConcatAffine"), count_op(g, "", "Concat"), dw);
    mixrt_graph_destroy(g);
    /* CUDA engines (no MIXRT_PASS_CONV_CPU): none. */
    g = check_pass("dense (no CONV_CPU)", build_dense, MIXRT_PASS_ALL);
    TU_CHECK(count_op(g, MIXRT_DOMAIN, "ConcatAffine") == 0, "dense (no CONV_CPU): no ConcatAffine expected");
    mixrt_graph_destroy(g);
    /* fp32 and bf16 engines of the exported model against its f64 reference engine. */
    check_exported("dense", build_dense, 44, -1);
}

static void test_passes(void) {
    test_passes_groupnorm();
    test_passes_concat_affine();
    test_passes_scatter_rows();
    test_passes_sink();
    test_passes_deconv();
    test_passes_shape_read();
    test_passes_conv1d();
    test_passes_conv3d();
    test_passes_norm();
    const unsigned fuse = MIXRT_PASS_FUSE_CONV | MIXRT_PASS_DCE | MIXRT_PASS_CONV_BN;
    struct mixrt_graph *g = check_pass("residual", build_residual, fuse);
    TU_CHECK(count_op(g, MIXRT_DOMAIN, "FusedConv") == 1 && count_op(g, "", "Add") == 0 && count_op(g, "", "Relu") == 0,
             "residual: expected one FusedConv and no Add/Relu (%d nodes)", g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "FusedConv"))
            TU_CHECK(g->nodes[i].n_inputs == 4 && g->nodes[i].inputs[3] >= 0 &&
                         !strcmp(mixrt_node_attr_string(&g->nodes[i], "activation", "?"), "Relu") &&
                         g->nodes[i].opset == 1,
                     "residual: FusedConv should read Z and apply Relu");
    TU_CHECK(mixrt_graph_opset(g, MIXRT_DOMAIN) == MIXRT_DOMAIN_VERSION, "residual: com.mixrt opset not imported");
    mixrt_graph_destroy(g);

    g = check_pass("clip", build_clip, fuse);
    TU_CHECK(count_op(g, MIXRT_DOMAIN, "FusedConv") == 1 && g->n_nodes == 1, "clip: expected a lone FusedConv");
    if (g->n_nodes == 1) {
        size_t np = 0;
        const float *p = mixrt_node_attr_floats(&g->nodes[0], "activation_params", &np);
        TU_CHECK(np == 2 && p[0] == 0.0f && p[1] == 0.25f, "clip: activation_params should be [0, 0.25]");
    }
    mixrt_graph_destroy(g);

    g = check_pass("silu", build_silu, fuse);
    TU_CHECK(g->n_nodes == 1 && !strcmp(mixrt_node_attr_string(&g->nodes[0], "activation", ""), "SiLU"),
             "silu: expected a lone FusedConv with SiLU (%d nodes)", g->n_nodes);
    mixrt_graph_destroy(g);

    g = check_pass("two uses", build_two_uses, fuse);
    TU_CHECK(count_op(g, MIXRT_DOMAIN, "FusedConv") == 0 && count_op(g, "", "Conv") == 1,
             "two uses: the Conv must stay unfused");
    mixrt_graph_destroy(g);

    g = check_pass("mid output", build_mid_output, fuse);
    TU_CHECK(count_op(g, MIXRT_DOMAIN, "FusedConv") == 0 && count_op(g, "", "Relu") == 1,
             "mid output: the Conv must stay unfused");
    mixrt_graph_destroy(g);

    g = check_pass("broadcast", build_broadcast, fuse);
    TU_CHECK(count_op(g, MIXRT_DOMAIN, "FusedConv") == 0 && count_op(g, "", "Add") == 1,
             "broadcast: the Add must stay");
    mixrt_graph_destroy(g);

    /* Squeeze-excite: the Mul by the per-channel scale and the per-channel Add stay
     * channels-last; only the scale-sized operands are transposed (no full-size Transpose
     * but the region's entry and exit). */
    for (int sw = 0; sw < 2; sw++) {
        g = check_pass(sw ? "se swapped" : "se", sw ? build_se_swap : build_se, MIXRT_PASS_ALL);
        int big = 0;
        for (int i = 0; i < g->n_nodes; i++)
            if (!strcmp(g->nodes[i].op_type, "Transpose") && g->values[g->nodes[i].outputs[0]].dims[1].value != 1 &&
                g->values[g->nodes[i].outputs[0]].dims[3].value != 1)
                big++;
        TU_CHECK(big == 2, "%s: expected 2 full-size Transposes (entry, exit), got %d (%d nodes)", sw ? "se swapped" : "se",
                 big, g->n_nodes);
        mixrt_graph_destroy(g);
    }
    /* The model's NHWC Transpose of a conv output reads the conv's channels-last twin: of
     * the four Transposes around the Softmax (two the model's, two the pass's) none is left
     * but the region's entry and exit. */
    g = check_pass("own transposes", build_own_transposes, MIXRT_PASS_ALL);
    TU_CHECK(count_op(g, "", "Transpose") == 2, "own transposes: expected 2 Transposes (entry, exit), got %d",
             count_op(g, "", "Transpose"));
    mixrt_graph_destroy(g);
    /* Token sequences between convs: the four Transposes (the model's two, the region edges'
     * two) become Reshapes but for the region's entry and exit; MIXRT_LAYOUT_TOKENS=off
     * keeps them (so the count means something). */
    for (int off = 0; off < 2; off++) {
        if (off) setenv("MIXRT_LAYOUT_TOKENS", "off", 1);
        g = check_pass(off ? "tokens (rule off)" : "tokens", build_tokens, MIXRT_PASS_ALL);
        int want = off ? 6 : 2;
        TU_CHECK(count_op(g, "", "Transpose") == want, "tokens%s: expected %d Transposes, got %d (%d nodes)",
                 off ? " (rule off)" : "", want, count_op(g, "", "Transpose"), g->n_nodes);
        mixrt_graph_destroy(g);
        unsetenv("MIXRT_LAYOUT_TOKENS");
    }
    /* Resize between convs joins the channels-last region (CPU passes): one com.mixrt Resize,
     * no Transpose but the entry and exit; with C resized it stays where it was; without
     * MIXRT_PASS_CONV_CPU (CUDA engines) it stays too. */
    {
        static const struct {
            const char *name;
            build_fn build;
            unsigned flags;
            int want_last, want_transposes;
        } rz[] = {
            {"resize linear", build_resize_linear, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU, 1, 2},
            {"resize nearest", build_resize_nearest, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU, 1, 2},
            {"resize of tokens", build_resize_tokens, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU, 1, 2},
            {"resize of C too", build_resize_chan, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU, 0, 4},
            {"resize (no CPU passes)", build_resize_linear, MIXRT_PASS_ALL, 0, 4},
            {"resize into the graph output", build_resize_out, MIXRT_PASS_ALL | MIXRT_PASS_CONV_CPU, 0, 2},
        };
        for (size_t i = 0; i < sizeof(rz) / sizeof(rz[0]); i++) {
            g = check_pass(rz[i].name, rz[i].build, rz[i].flags);
            TU_CHECK(count_op(g, MIXRT_DOMAIN, "Resize") == rz[i].want_last &&
                         count_op(g, "", "Transpose") == rz[i].want_transposes,
                     "%s: expected %d channels-last Resize and %d Transposes, got %d and %d (%d nodes)", rz[i].name,
                     rz[i].want_last, rz[i].want_transposes, count_op(g, MIXRT_DOMAIN, "Resize"),
                     count_op(g, "", "Transpose"), g->n_nodes);
            mixrt_graph_destroy(g);
        }
    }
    for (int tv = 0; tv < 2; tv++) {
        g = check_pass(tv ? "convnext tail (torchvision)" : "convnext tail", tv ? build_convnext_tail_tv : build_convnext_tail,
                       MIXRT_PASS_ALL);
        int fmm = -1;
        for (int i = 0; i < g->n_nodes; i++)
            if (!strcmp(g->nodes[i].op_type, "FusedMatMul")) fmm = i;
        TU_CHECK(fmm >= 0 && g->nodes[fmm].n_inputs == 4 && g->nodes[fmm].inputs[3] >= 0 && count_op(g, "", "Add") == 0 &&
                     count_op(g, "", "Mul") == 0 && count_op(g, "", "Transpose") == 2,
                 "convnext tail%s: expected a FusedMatMul with bias and residual, no Add/Mul, 2 Transposes (%d nodes)",
                 tv ? " (torchvision)" : "", g->n_nodes);
        mixrt_graph_destroy(g);
    }
    /* Fusion, then the layout pass: every conv, pool and element-wise op channels-last; a
     * Transpose at the region's entry and one per channels-first reader. */
    g = check_pass("region", build_region, MIXRT_PASS_ALL);
    int nt = count_op(g, "", "Transpose");
    TU_CHECK(count_op(g, MIXRT_DOMAIN, "FusedConv") == 3 && count_op(g, MIXRT_DOMAIN, "MaxPool") == 1 &&
                 count_op(g, MIXRT_DOMAIN, "AveragePool") == 1 && count_op(g, MIXRT_DOMAIN, "GlobalAveragePool") == 1 &&
                 count_op(g, "", "Conv") == 0 && count_op(g, "", "Relu") == 0,
             "region: expected 3 FusedConv and the 3 pools in com.mixrt (%d nodes)", g->n_nodes);
    /* The GlobalAveragePool's exit [N, 1, 1, C] -> [N, C, 1, 1] moves no data: a Reshape. */
    TU_CHECK(nt == 2 && count_op(g, "", "Reshape") == 1,
             "region: expected 2 Transposes (entry, Tanh's exit) and the GlobalAveragePool's exit as a Reshape, got %d "
             "Transposes, %d Reshapes", nt, count_op(g, "", "Reshape"));
    for (int i = 0; i < g->n_nodes; i++)
        if (!strcmp(g->nodes[i].op_type, "FusedConv"))
            TU_CHECK(mixrt_node_attr_int(&g->nodes[i], "channels_last", 0) == 1, "region: FusedConv '%s' not NHWC",
                     g->nodes[i].name);
    /* Idempotent: a second run changes nothing. */
    struct mixrt_pass_stats stats;
    int before = g->n_nodes;
    TU_CHECK(mixrt_passes_run(g, MIXRT_PASS_ALL, &stats) == MIXRT_STATUS_OK && stats.layout_changed == 0 &&
                 stats.conv_fused == 0 && g->n_nodes == before,
             "region: a second pass run changed the graph (%d layout changes)", stats.layout_changed);
    mixrt_graph_destroy(g);
}

/* ---- kernel cases ----------------------------------------------------------------------- */

struct conv_case {
    int64_t N, C, H, W, M, k, stride, group, dil, pad;
    bool last, bias, z;
    int act;
};

static const char *const acts[] = {"",     "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish",
                                   "SiLU", "Tanh", "Gelu", "GeluTanh"};
#define N_ACTS ((int)(sizeof(acts) / sizeof(acts[0])))

/* Runs the fast kernel (prepared) and the reference on node ni; checks the normalized error. */
static void compare_kernels(int id, const char *desc, const char *kname, struct mixrt_graph *g, int ni, int n_in,
                            const struct mixrt_tensor **in, mixrt_dtype dt) {
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find(kname, MIXRT_DOMAIN, n->op_type);
    mixrt_kernel_fn ref;
    TU_CHECK(mixrt_ref_find(ctx, n, &ref) == MIXRT_STATUS_OK, "case %d %s: no reference kernel", id, desc);
    if (!kern) {
#ifdef MIXRT_HAVE_DNNL
        TU_CHECK(0, "case %d %s: no kernel %s", id, desc, kname);
#endif
        return;
    }
    char why[256] = "";
    bool ok = kern->supports(g, n, why, sizeof(why));
    if (expect_refusal) {
        TU_CHECK(!ok, "case %d %s: %s takes a case it cannot run", id, desc, kname);
        return;
    }
    if (dt == MIXRT_DTYPE_BF16 && !ok && strstr(why, "bf16")) return; /* no native bf16 here */
    TU_CHECK(ok, "case %d %s: %s refuses: %s; rerun: test_fuse_conv --only %d", id, desc, kname, why, id);
    if (!ok) return;
    void *state = NULL;
    mixrt_status st = kern->prepare ? kern->prepare(ctx, g, n, &state) : MIXRT_STATUS_OK;
    TU_CHECK(st == MIXRT_STATUS_OK, "case %d %s: prepare: %s", id, desc, mixrt_context_last_error(ctx));
    struct mixrt_tensor yf, yr;
    mixrt_status sf = MIXRT_STATUS_OK;
    for (int rep = 0; rep < 2 && sf == MIXRT_STATUS_OK; rep++) { /* the second run reuses the state */
        if (rep) mixrt_tensor_release(ctx, &yf);
        sf = run_node(ctx, kern->run, state, g, ni, n_in, in, &yf);
    }
#ifdef MIXRT_HAVE_DNNL
    if (expect_not_impl && sf == MIXRT_STATUS_OK) {
        const char *impl = state ? mixrt_dnnl_state_impl(state) : "(no state)";
        TU_CHECK(impl && impl[0] && !strstr(impl, expect_not_impl), "case %d %s: oneDNN ran '%s'", id, desc,
                 impl ? impl : "?");
    }
    if (expect_impl && sf == MIXRT_STATUS_OK) {
        const char *impl = state ? mixrt_dnnl_state_impl(state) : "(no state)";
        /* "" asks only that oneDNN ran it (a primitive exists), not which implementation */
        TU_CHECK(impl && (expect_impl[0] ? strstr(impl, expect_impl) != NULL : impl[0] != 0),
                 "case %d %s: oneDNN ran '%s', not %s", id, desc, impl ? impl : "?",
                 expect_impl[0] ? expect_impl : "a oneDNN primitive");
    }
#endif
    if (expect_avx2_bits && sf == MIXRT_STATUS_OK) {
        /* the AVX-512 tile and transforms against the AVX2 ones: the same operations in the same
         * order (sgemm_impl.h), so the same bits */
        struct mixrt_tensor y2;
        mixrt_sgemm_force_scalar(2);
        mixrt_status s2 = run_node(ctx, kern->run, state, g, ni, n_in, in, &y2);
        mixrt_sgemm_force_scalar(0);
        bool eq = s2 == MIXRT_STATUS_OK && y2.rank == yf.rank && y2.dtype == yf.dtype &&
                  !memcmp(y2.dims, yf.dims, sizeof(int64_t) * (size_t)yf.rank) &&
                  !memcmp(y2.data, yf.data, mixrt_tensor_numel(&yf) * mixrt_dtype_size(yf.dtype));
        TU_CHECK(eq, "case %d %s (%s): the AVX2 tile and transforms give other bits than the widest", id, desc, kname);
        avx2_bits_equal += eq;
        if (s2 == MIXRT_STATUS_OK) mixrt_tensor_release(ctx, &y2);
    }
    mixrt_status sr = run_node(ctx, ref, NULL, g, ni, n_in, in, &yr);
    TU_CHECK(sf == MIXRT_STATUS_OK && sr == MIXRT_STATUS_OK, "case %d %s: run fast %d ref %d: %s", id, desc, sf, sr,
             mixrt_context_last_error(ctx));
    if (sf == MIXRT_STATUS_OK && sr == MIXRT_STATUS_OK) {
        size_t nn = mixrt_tensor_numel(&yr);
        bool same = yf.rank == yr.rank && !memcmp(yf.dims, yr.dims, sizeof(int64_t) * (size_t)yr.rank) &&
                    yf.dtype == yr.dtype;
        TU_CHECK(same && nn > 0, "case %d %s: output shapes differ", id, desc);
        if (same) {
            double *a = malloc(nn * sizeof(double)), *b = malloc(nn * sizeof(double));
            for (size_t i = 0; i < nn; i++)
                a[i] = mixrt_load_f64(yf.data, yf.dtype, i), b[i] = mixrt_load_f64(yr.data, yr.dtype, i);
            double e = rel_err(a, b, nn), tol = dt == MIXRT_DTYPE_BF16 ? 1e-2 : 1e-5;
            TU_CHECK(e <= tol, "case %d %s (%s): rel err %g > %g; rerun: test_fuse_conv --only %d", id, desc, kname, e, tol,
                     id);
            free(a);
            free(b);
        }
    }
    mixrt_tensor_release(ctx, &yf);
    mixrt_tensor_release(ctx, &yr);
    if (kern->release) kern->release(ctx, state);
}

static void conv_case_run(int id, const struct conv_case *c, mixrt_dtype dt, const char *kname) {
    char desc[256];
    snprintf(desc, sizeof(desc),
             "%s N=%lld C=%lld %lldx%lld M=%lld k=%lld s=%lld g=%lld d=%lld p=%lld %s%s%s act=%s",
             mixrt_dtype_name(dt), (long long)c->N, (long long)c->C, (long long)c->H, (long long)c->W,
             (long long)c->M, (long long)c->k, (long long)c->stride, (long long)c->group, (long long)c->dil,
             (long long)c->pad, c->last ? "NHWC" : "NCHW", c->bias ? " B" : "", c->z ? " Z" : "", acts[c->act]);
    struct mixrt_graph *g = new_graph();
    int64_t dk = (c->k - 1) * c->dil + 1, Ho = (c->H + 2 * c->pad - dk) / c->stride + 1,
            Wo = (c->W + 2 * c->pad - dk) / c->stride + 1;
    int64_t xd[4] = {c->N, c->C, c->H, c->W}, yd[4] = {c->N, c->M, Ho, Wo};
    if (c->last) xd[1] = c->H, xd[2] = c->W, xd[3] = c->C, yd[1] = Ho, yd[2] = Wo, yd[3] = c->M;
    int x = add_input(g, "x", dt, 4, xd);
    int w = add_const_uniform(ctx, g, "w", dt, 4, (int64_t[]){c->M, c->C / c->group, c->k, c->k},
                      2.0 / sqrt((double)(c->C / c->group * c->k * c->k)));
    int b = c->bias ? add_const_uniform(ctx, g, "b", dt, 1, &c->M, 1.0) : -1;
    int z = c->z ? add_input(g, "z", dt, 4, yd) : -1;
    int ni = mixrt_graph_add_node(g, "fc", "FusedConv", MIXRT_DOMAIN);
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 1;
    n->n_inputs = c->z ? 4 : 3;
    n->inputs = mixrt_arena_calloc(g->arena, 4, sizeof(int));
    n->inputs[0] = x, n->inputs[1] = w, n->inputs[2] = b, n->inputs[3] = z;
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs[0] = add_value(g, "y", dt, 4, yd);
    g->values[n->outputs[0]].producer = ni;
    node_attr_ints(g, ni, "kernel_shape", 2, (int64_t[]){c->k, c->k});
    node_attr_ints(g, ni, "strides", 2, (int64_t[]){c->stride, c->stride});
    node_attr_ints(g, ni, "dilations", 2, (int64_t[]){c->dil, c->dil});
    node_attr_ints(g, ni, "pads", 4, (int64_t[]){c->pad, c->pad, c->pad, c->pad});
    node_attr_int(g, ni, "group", c->group);
    node_attr_int(g, ni, "channels_last", c->last);
    node_attr_str(g, ni, "activation", acts[c->act]);
    if (c->act == 2) node_attr_floats(g, ni, "activation_params", 2, (float[]){-0.5f, 0.75f});
    if (c->act == 3) node_attr_floats(g, ni, "activation_params", 1, (float[]){0.1f});
    struct mixrt_tensor *tx = rand_tensor(dt, 4, xd), *tz = c->z ? rand_tensor(dt, 4, yd) : NULL;
    const struct mixrt_tensor *in[4] = {tx, g->values[w].init, b >= 0 ? g->values[b].init : NULL, tz};
    compare_kernels(id, desc, kname, g, ni, c->z ? 4 : 3, in, dt);
    mixrt_tensor_destroy(ctx, tx);
    if (tz) mixrt_tensor_destroy(ctx, tz);
    mixrt_graph_destroy(g);
}

/* A 1-D channels-last FusedConv (wav2vec2's extractor: [N, L, C]) on random data. */
static void conv1d_case_run(int id, int64_t N, int64_t C, int64_t L, int64_t M, int64_t k, int64_t s, int64_t dil,
                            int64_t group, int64_t pad, int act, mixrt_dtype dt, const char *kname) {
    char desc[192];
    snprintf(desc, sizeof(desc), "%s %s 1-D NWC N=%lld C=%lld L=%lld M=%lld k=%lld s=%lld d=%lld g=%lld p=%lld act=%s",
             kname, mixrt_dtype_name(dt), (long long)N, (long long)C, (long long)L, (long long)M, (long long)k,
             (long long)s, (long long)dil,
             (long long)group, (long long)pad, acts[act]);
    struct mixrt_graph *g = new_graph();
    int64_t Lo = (L + 2 * pad - (k - 1) * dil - 1) / s + 1, xd[3] = {N, L, C}, yd[3] = {N, Lo, M};
    int x = add_input(g, "x", dt, 3, xd);
    int w = add_const_uniform(ctx, g, "w", dt, 3, (int64_t[]){M, C / group, k}, 2.0 / sqrt((double)(C / group * k)));
    int ni = mixrt_graph_add_node(g, "fc", "FusedConv", MIXRT_DOMAIN);
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 1;
    n->n_inputs = 2;
    n->inputs = mixrt_arena_calloc(g->arena, 2, sizeof(int));
    n->inputs[0] = x, n->inputs[1] = w;
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs[0] = add_value(g, "y", dt, 3, yd);
    g->values[n->outputs[0]].producer = ni;
    node_attr_ints(g, ni, "kernel_shape", 1, (int64_t[]){k});
    node_attr_ints(g, ni, "strides", 1, (int64_t[]){s});
    node_attr_ints(g, ni, "dilations", 1, (int64_t[]){dil});
    node_attr_ints(g, ni, "pads", 2, (int64_t[]){pad, pad});
    node_attr_int(g, ni, "group", group);
    node_attr_int(g, ni, "channels_last", 1);
    node_attr_str(g, ni, "activation", acts[act]);
    if (act == 2) node_attr_floats(g, ni, "activation_params", 2, (float[]){-0.5f, 0.75f});
    if (act == 3) node_attr_floats(g, ni, "activation_params", 1, (float[]){0.1f});
    struct mixrt_tensor *tx = rand_tensor(dt, 3, xd);
    const struct mixrt_tensor *in[2] = {tx, g->values[w].init};
    compare_kernels(id, desc, kname, g, ni, 2, in, dt);
    mixrt_tensor_destroy(ctx, tx);
    mixrt_graph_destroy(g);
}

/* The channels-last InstanceNormalization of 1-D regions: X [N, S, C], scale and bias [C], the
 * activation acts[act] (FusedConv's set); the fast kernel's activation on both eltwise ISAs. */
static void instnorm_case_run(int id, int64_t N, int64_t S, int64_t C, int64_t G, int act, mixrt_dtype dt) {
    char desc[160];
    snprintf(desc, sizeof(desc), "%s InstanceNormalization NWC N=%lld S=%lld C=%lld num_groups=%lld act=%s",
             mixrt_dtype_name(dt), (long long)N, (long long)S, (long long)C, (long long)G, acts[act]);
    struct mixrt_graph *g = new_graph();
    int64_t xd[3] = {N, S, C};
    int x = add_input(g, "x", dt, 3, xd);
    int sc = add_const_uniform(ctx, g, "sc", dt, 1, &C, 2.0);
    int bi = add_const_uniform(ctx, g, "bi", dt, 1, &C, 2.0);
    int ni = mixrt_graph_add_node(g, "in", "InstanceNormalization", MIXRT_DOMAIN);
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 1;
    n->n_inputs = 3;
    n->inputs = mixrt_arena_calloc(g->arena, 3, sizeof(int));
    n->inputs[0] = x, n->inputs[1] = sc, n->inputs[2] = bi;
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs[0] = add_value(g, "y", dt, 3, xd);
    g->values[n->outputs[0]].producer = ni;
    if (act) node_attr_str(g, ni, "activation", acts[act]);
    if (G) node_attr_int(g, ni, "num_groups", G);
    if (act == 2) node_attr_floats(g, ni, "activation_params", 2, (float[]){-0.5f, 0.75f});
    if (act == 3) node_attr_floats(g, ni, "activation_params", 1, (float[]){0.1f});
    struct mixrt_tensor *tx = rand_tensor(dt, 3, xd);
    /* A per-channel offset far above the spread: a one-pass variance would lose it. */
    for (size_t i = 0; i < mixrt_tensor_numel(tx); i++)
        mixrt_store_f64(tx->data, dt, i, mixrt_load_f64(tx->data, dt, i) * 0.01 + (double)(i % (size_t)C));
    const struct mixrt_tensor *in[3] = {tx, g->values[sc].init, g->values[bi].init};
    for (int sv = 0; sv < (act ? 2 : 1); sv++) { /* the AVX-512 activation, then the scalar one */
        mixrt_elt_force_scalar(sv);
        compare_kernels(id, desc, "nn_instancenorm_nwc", g, ni, 3, in, dt);
    }
    mixrt_elt_force_scalar(false);
    /* The statistics and the normalization by the scalar nn-op table: against the reference,
     * and bit for bit the CPU's own table's output (the same operations lane by lane). */
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("nn_instancenorm_nwc", MIXRT_DOMAIN,
                                                                "InstanceNormalization");
    struct mixrt_tensor y0, y1;
    mixrt_nnops_force_scalar(true);
    compare_kernels(id, desc, "nn_instancenorm_nwc", g, ni, 3, in, dt);
    mixrt_status s1 = run_node(ctx, kern->run, NULL, g, ni, 3, in, &y1);
    mixrt_nnops_force_scalar(false);
    mixrt_status s0 = run_node(ctx, kern->run, NULL, g, ni, 3, in, &y0);
    TU_CHECK(s0 == MIXRT_STATUS_OK && s1 == MIXRT_STATUS_OK && y0.nbytes == y1.nbytes &&
                 !memcmp(y0.data, y1.data, y0.nbytes),
             "case %d %s: the %s nn-op table's output differs from the scalar one's", id, desc, mixrt_nnops_isa()->name);
    if (s0 == MIXRT_STATUS_OK) mixrt_tensor_release(ctx, &y0);
    if (s1 == MIXRT_STATUS_OK) mixrt_tensor_release(ctx, &y1);
    mixrt_tensor_destroy(ctx, tx);
    mixrt_graph_destroy(g);
}

/* com.mixrt ConcatAffine of k parts [rows, len[i]] (rank 3: [1, rows, len]), S and B random. */
static void concat_affine_case_run(int id, int k, int64_t rows, const int64_t *len, int act, mixrt_dtype dt, int mode) {
    char desc[200];
    int64_t C = 0;
    for (int i = 0; i < k; i++) C += len[i];
    snprintf(desc, sizeof(desc), "%s ConcatAffine k=%d rows=%lld C=%lld act=%s %s", mixrt_dtype_name(dt), k,
             (long long)rows, (long long)C, acts[act], mode == 1 ? "staged" : mode == 2 ? "integer rounding" : "");
    struct mixrt_graph *g = new_graph();
    const struct mixrt_tensor *in[6];
    struct mixrt_tensor *xs[4];
    int ins[6];
    ins[0] = add_const_uniform(ctx, g, "s", MIXRT_DTYPE_F32, 1, &C, 2.0);
    ins[1] = add_const_uniform(ctx, g, "b", MIXRT_DTYPE_F32, 1, &C, 1.0);
    in[0] = g->values[ins[0]].init, in[1] = g->values[ins[1]].init;
    for (int i = 0; i < k; i++) {
        char nm[16];
        snprintf(nm, sizeof(nm), "x%d", i);
        int64_t xd[3] = {1, rows, len[i]};
        ins[2 + i] = add_input(g, nm, dt, 3, xd);
        in[2 + i] = xs[i] = rand_tensor(dt, 3, xd);
    }
    int ni = mixrt_graph_add_node(g, "ca", "ConcatAffine", MIXRT_DOMAIN);
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 1;
    n->n_inputs = k + 2;
    n->inputs = mixrt_arena_calloc(g->arena, (size_t)k + 2, sizeof(int));
    memcpy(n->inputs, ins, (size_t)(k + 2) * sizeof(int));
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs[0] = add_value(g, "y", dt, 3, (int64_t[]){1, rows, C});
    g->values[n->outputs[0]].producer = ni;
    if (act) node_attr_str(g, ni, "activation", acts[act]);
    if (act == 2) node_attr_floats(g, ni, "activation_params", 2, (float[]){-0.5f, 0.75f});
    if (act == 3) node_attr_floats(g, ni, "activation_params", 1, (float[]){0.1f});
    /* staged cases: S read at run time (not a constant: prepare leaves the f32 rows to the run) */
    if (mode == 1) g->values[ins[0]].flags |= MIXRT_VALUE_GRAPH_INPUT;
    compare_kernels(id, desc, "concat_affine", g, ni, k + 2, in, dt);
    g->values[ins[0]].flags &= ~MIXRT_VALUE_GRAPH_INPUT;
    for (int i = 0; i < k; i++) mixrt_tensor_destroy(ctx, xs[i]);
    mixrt_graph_destroy(g);
}

/* The channels-last DepthToSpace: X [N, H, W, c * b * b] -> [N, H * b, W * b, c]. */
static void d2s_case_run(int id, int64_t N, int64_t H, int64_t W, int64_t c, int64_t b, bool crd, mixrt_dtype dt) {
    char desc[160];
    snprintf(desc, sizeof(desc), "%s DepthToSpace NHWC N=%lld %lldx%lld c=%lld b=%lld %s", mixrt_dtype_name(dt),
             (long long)N, (long long)H, (long long)W, (long long)c, (long long)b, crd ? "CRD" : "DCR");
    struct mixrt_graph *g = new_graph();
    int64_t xd[4] = {N, H, W, c * b * b}, yd[4] = {N, H * b, W * b, c};
    int x = add_input(g, "x", dt, 4, xd);
    int ni = mixrt_graph_add_node(g, "d2s", "DepthToSpace", MIXRT_DOMAIN);
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 1;
    n->n_inputs = 1;
    n->inputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->inputs[0] = x;
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs[0] = add_value(g, "y", dt, 4, yd);
    g->values[n->outputs[0]].producer = ni;
    node_attr_int(g, ni, "blocksize", b);
    node_attr_str(g, ni, "mode", crd ? "CRD" : "DCR");
    struct mixrt_tensor *tx = rand_tensor(dt, 4, xd);
    const struct mixrt_tensor *in[1] = {tx};
    compare_kernels(id, desc, "dm_depthtospace_nhwc", g, ni, 1, in, dt);
    mixrt_tensor_destroy(ctx, tx);
    mixrt_graph_destroy(g);
}

/* ONNX's pooled extent (ceil_mode drops a last window that would start in the end padding). */
static int64_t pool_out(int64_t in, int64_t k, int64_t s, int64_t p, int ceil) {
    int64_t span = in + 2 * p - k, out = (ceil ? (span + s - 1) / s : span / s) + 1;
    if (ceil && out > 1 && (out - 1) * s >= in + p) out--;
    return out;
}

/* nn_maxpool_nhwc against the reference with every value equal (a max is exact), by the
 * CPU's nn-op table and by the scalar one (the same bits), on four versions of tx: as drawn,
 * its magnitudes (no sign bit: bf16's raw-bits path), the magnitudes with NaNs planted, and
 * as drawn with NaNs of both signs planted (the keyed and f32 paths); every window holding a
 * NaN must give NaN, as the reference's. */
static void maxpool_last_exact(int id, const char *desc, struct mixrt_graph *g, int ni, struct mixrt_tensor *tx) {
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("nn_maxpool_nhwc", MIXRT_DOMAIN, "MaxPool");
    mixrt_kernel_fn ref;
    char why[256] = "";
    TU_CHECK(kern != NULL && mixrt_ref_find(ctx, n, &ref) == MIXRT_STATUS_OK, "case %d %s: no nn_maxpool_nhwc", id,
             desc);
    if (!kern) return;
    TU_CHECK(kern->supports(g, n, why, sizeof(why)), "case %d %s: nn_maxpool_nhwc refuses: %s", id, desc, why);
    const size_t nx = mixrt_tensor_numel(tx);
    double *orig = malloc(nx * sizeof(double));
    for (size_t i = 0; i < nx; i++) orig[i] = mixrt_load_f64(tx->data, tx->dtype, i);
    for (int var = 0; var < 4; var++) {
        const bool nan = var >= 2;
        for (size_t i = 0; i < nx; i++) mixrt_store_f64(tx->data, tx->dtype, i, var == 1 || var == 2 ? fabs(orig[i]) : orig[i]);
        if (nan)
            for (size_t i = 7; i < nx; i += 97) mixrt_store_f64(tx->data, tx->dtype, i, var == 3 && i % 2 ? -NAN : NAN);
        const struct mixrt_tensor *in[1] = {tx};
        struct mixrt_tensor yr, y[2];
        mixrt_status sr = run_node(ctx, ref, NULL, g, ni, 1, in, &yr), sy[2];
        for (int sc = 0; sc < 2; sc++) {
            mixrt_nnops_force_scalar(sc == 1);
            sy[sc] = run_node(ctx, kern->run, NULL, g, ni, 1, in, &y[sc]);
        }
        mixrt_nnops_force_scalar(false);
        TU_CHECK(sr == MIXRT_STATUS_OK && sy[0] == MIXRT_STATUS_OK && sy[1] == MIXRT_STATUS_OK,
                 "case %d %s: nn_maxpool_nhwc %d / %d, reference %d: %s", id, desc, sy[0], sy[1], sr,
                 mixrt_context_last_error(ctx));
        if (sr != MIXRT_STATUS_OK || sy[0] != MIXRT_STATUS_OK || sy[1] != MIXRT_STATUS_OK) break;
        size_t ny = mixrt_tensor_numel(&yr), bad = 0, nans = 0;
        TU_CHECK(y[0].nbytes == yr.nbytes && y[1].nbytes == yr.nbytes &&
                     !memcmp(y[0].dims, yr.dims, sizeof(int64_t) * 4) && ny > 0,
                 "case %d %s: nn_maxpool_nhwc's output shape differs", id, desc);
        if (y[0].nbytes == yr.nbytes && y[1].nbytes == yr.nbytes) {
            for (size_t i = 0; i < ny; i++) {
                double r = mixrt_load_f64(yr.data, yr.dtype, i), a = mixrt_load_f64(y[0].data, yr.dtype, i);
                nans += r != r;
                bad += r == r ? a != r : a == a;
            }
            TU_CHECK(bad == 0, "case %d %s (version %d): nn_maxpool_nhwc differs from the reference at %zu of %zu values",
                     id, desc, var, bad, ny);
            TU_CHECK(!memcmp(y[0].data, y[1].data, yr.nbytes), "case %d %s (version %d): the %s nn-op table's max pool "
                     "differs from the scalar one's", id, desc, var, mixrt_nnops_isa()->name);
            TU_CHECK(!nan || nans > 0, "case %d %s: no NaN reached the output", id, desc);
        }
        mixrt_tensor_release(ctx, &yr);
        mixrt_tensor_release(ctx, &y[0]);
        mixrt_tensor_release(ctx, &y[1]);
    }
    for (size_t i = 0; i < nx; i++) mixrt_store_f64(tx->data, tx->dtype, i, orig[i]);
    free(orig);
}

/* A channels-last pool node on random data. kind: 0 MaxPool, 1 AveragePool (count_include_pad
 * = incl), 2 GlobalAveragePool; ceil: ceil_mode. */
static void pool_case_run(int id, int kind, int64_t C, int64_t H, int64_t W, int64_t k, int64_t s, int64_t p,
                          int incl, int ceil, mixrt_dtype dt) {
    static const char *const ops[] = {"MaxPool", "AveragePool", "GlobalAveragePool"};
    char desc[160];
    snprintf(desc, sizeof(desc), "%s %s C=%lld %lldx%lld k=%lld s=%lld p=%lld incl=%d ceil=%d", mixrt_dtype_name(dt),
             ops[kind], (long long)C, (long long)H, (long long)W, (long long)k, (long long)s, (long long)p, incl, ceil);
    struct mixrt_graph *g = new_graph();
    int64_t xd[4] = {2, H, W, C}, Ho = kind == 2 ? 1 : pool_out(H, k, s, p, ceil);
    int64_t Wo = kind == 2 ? 1 : pool_out(W, k, s, p, ceil);
    int64_t yd[4] = {2, Ho, Wo, C};
    int x = add_input(g, "x", dt, 4, xd);
    int ni = mixrt_graph_add_node(g, "pool", ops[kind], MIXRT_DOMAIN);
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 1;
    n->n_inputs = 1;
    n->inputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->inputs[0] = x;
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs[0] = add_value(g, "y", dt, 4, yd);
    if (kind != 2) {
        node_attr_ints(g, ni, "kernel_shape", 2, (int64_t[]){k, k});
        node_attr_ints(g, ni, "strides", 2, (int64_t[]){s, s});
        node_attr_ints(g, ni, "pads", 4, (int64_t[]){p, p, p, p});
        if (kind == 1) node_attr_int(g, ni, "count_include_pad", incl);
        if (ceil) node_attr_int(g, ni, "ceil_mode", 1);
    }
    struct mixrt_tensor *tx = rand_tensor(dt, 4, xd);
    const struct mixrt_tensor *in[1] = {tx};
    compare_kernels(id, desc, "dnnl_pool_nhwc", g, ni, 1, in, dt);
    if (kind == 0) maxpool_last_exact(id, desc, g, ni, tx);
    mixrt_tensor_destroy(ctx, tx);
    mixrt_graph_destroy(g);
}

void mixrt_gconv_force_scalar(bool scalar); /* gconv.c, tests only */
void mixrt_sgemm_conv_z1x1(bool take);      /* sgemm.c, tests only */
void mixrt_gconv_force_avx2(bool avx2);     /* gconv.c, tests only */
void mixrt_gconv16_force_scalar(bool scalar); /* gconv.c, tests only */
static int z1x1_refused;                    /* 1x1 cases with Z conv_sgemm refused by default */

static void test_kernels(int only) {
    /* N, C, H, W, M, k, stride, group, dil, pad */
    static const struct conv_case shapes[] = {
        {1, 3, 11, 9, 17, 3, 1, 1, 1, 1, false, false, false, 0},
        {1, 17, 7, 10, 5, 1, 1, 1, 1, 0, false, false, false, 0},
        {2, 64, 9, 9, 64, 3, 2, 1, 1, 1, false, false, false, 0},
        {1, 17, 9, 8, 17, 3, 1, 17, 1, 1, false, false, false, 0},
        {1, 64, 8, 8, 64, 3, 2, 64, 1, 1, false, false, false, 0},
        {1, 16, 12, 11, 8, 3, 1, 1, 2, 2, false, false, false, 0},
        {1, 32, 7, 7, 48, 3, 1, 4, 1, 1, false, false, false, 0},
        {1, 3, 23, 19, 16, 7, 2, 1, 1, 3, false, false, false, 0},
        /* taps that read only padding for whole row tiles (conv_sgemm skips those): ASPP-like
         * dilation 12 on 14x14 (outer taps meet the input in a band), dilation 9 on 7x7 (every
         * outer tap all padding, the last block an epilogue alone), a 1x1 conv padded by 3
         * (border tiles read nothing: bias, Z and activation only) */
        {1, 40, 14, 14, 24, 3, 1, 1, 12, 12, false, false, false, 0},
        {1, 24, 7, 7, 16, 3, 1, 1, 9, 9, false, false, false, 0},
        {1, 8, 5, 5, 8, 1, 1, 1, 1, 3, false, false, false, 0},
    };
    const mixrt_dtype dts[2] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};
    int id = 0;
    for (size_t si = 0; si < sizeof(shapes) / sizeof(shapes[0]); si++)
        for (int d = 0; d < 2; d++)
            for (int last = 0; last < 2; last++)
                for (int act = 0; act < N_ACTS; act++) {
                    /* B and Z in all four combinations across the activations. */
                    struct conv_case c = shapes[si];
                    c.last = last, c.act = act, c.bias = (act + si) % 2 == 0, c.z = (act / 2 + si + last) % 2 == 0;
                    id++;
                    if (only && id != only) continue;
                    conv_case_run(id, &c, dts[d], "dnnl_fused_conv");
                    /* the own implicit-GEMM conv: f32 channels-last of one group, where the CPU has
                     * AVX2 and FMA; the rest refused */
                    if (mixrt_cpu_features()->avx2 && mixrt_cpu_features()->fma) {
                        expect_refusal = !(last && c.group == 1 && dts[d] == MIXRT_DTYPE_F32);
                        expect_avx2_bits = mixrt_cpu_features()->avx512f;
                        conv_case_run(id, &c, dts[d], "conv_sgemm");
                        expect_avx2_bits = false;
#ifdef MIXRT_HAVE_DNNL
                        /* by default a 1x1 conv with Z is oneDNN's (main lets conv_sgemm take it) */
                        if (!expect_refusal && c.k == 1 && c.z) {
                            mixrt_sgemm_conv_z1x1(false);
                            expect_refusal = true;
                            conv_case_run(id, &c, dts[d], "conv_sgemm");
                            mixrt_sgemm_conv_z1x1(true);
                            z1x1_refused++;
                        }
#endif
                        /* Winograd: its 3x3 ones of stride 1 */
                        expect_refusal = !(last && c.group == 1 && dts[d] == MIXRT_DTYPE_F32 && c.k == 3 &&
                                           c.stride == 1 && c.dil == 1);
                        conv_case_run(id, &c, dts[d], "conv_wino");
                        conv_case_run(id, &c, dts[d], "conv_wino2");
                        expect_refusal = false;
                    }
                    /* the grouped conv of 4 channels a group: the table's cases are all refused but
                     * none (C 17 or 64 a group of 17, 64, 8) */
                    expect_refusal = !(last && dts[d] == MIXRT_DTYPE_F32 && c.group > 1 && c.C == 4 * c.group &&
                                       c.M == c.C && c.C % 8 == 0);
                    conv_case_run(id, &c, dts[d], "gconv4_nhwc");
                    /* ... and of 8 a group: none of the table's (C 32 in groups of 8 makes 12 outputs a group) */
                    expect_refusal = true;
                    conv_case_run(id, &c, dts[d], "gconv8_nhwc");
                    /* ... and of 16k a group: none of the table's */
                    conv_case_run(id, &c, dts[d], "gconv16_nhwc");
                    expect_refusal = false;
                    /* the bf16 SiLU kept as oneDNN's post-op: taken exactly where the split applies */
                    bool split = dts[d] == MIXRT_DTYPE_BF16 && last && !c.z && !strcmp(acts[act], "SiLU");
                    if (split || (last && !strcmp(acts[act], "SiLU")) || act == 1) {
                        expect_refusal = !split;
                        conv_case_run(id, &c, dts[d], "dnnl_fused_conv_swish");
                        expect_refusal = false;
                    }
                }
    /* Winograd F(4x4, 3x3) (conv_wino) and F(2x2, 3x3) (conv_wino2): outputs not a multiple of
     * the tile, pads 0-2, one output pixel, channels around the vector width and past one K block
     * (256), more tiles than one block holds (60x60x64: 225 tiles against 222), batches. */
    static const struct conv_case own_wino[] = {
        {1, 5, 7, 6, 9, 3, 1, 1, 1, 1, true, false, false, 0},     {2, 19, 9, 13, 21, 3, 1, 1, 1, 0, true, false, false, 0},
        {1, 64, 14, 14, 64, 3, 1, 1, 1, 1, true, false, false, 0}, {1, 8, 4, 4, 16, 3, 1, 1, 1, 2, true, false, false, 0},
        {1, 3, 3, 3, 5, 3, 1, 1, 1, 0, true, false, false, 0},     {3, 300, 6, 5, 17, 3, 1, 1, 1, 1, true, false, false, 0},
        {1, 64, 60, 60, 64, 3, 1, 1, 1, 1, true, false, false, 0}, {1, 1, 5, 9, 1, 3, 1, 1, 1, 1, true, false, false, 0},
        {1, 128, 16, 16, 128, 3, 1, 1, 1, 1, true, false, false, 0}, {1, 160, 8, 8, 160, 3, 1, 1, 1, 1, true, false, false, 0},
    };
    if (mixrt_cpu_features()->avx2 && mixrt_cpu_features()->fma) {
        /* where the CPU has AVX-512: its tile and transforms give the AVX2 ones' bits */
        expect_avx2_bits = mixrt_cpu_features()->avx512f;
        for (size_t si = 0; si < sizeof(own_wino) / sizeof(own_wino[0]); si++)
            for (int act = 0; act < N_ACTS; act++) {
                struct conv_case c = own_wino[si];
                c.act = act, c.bias = (act + si) % 2 == 0, c.z = (act / 2 + si) % 2 == 0;
                id++;
                if (only && id != only) continue;
                conv_case_run(id, &c, MIXRT_DTYPE_F32, "conv_wino");
                conv_case_run(id, &c, MIXRT_DTYPE_F32, "conv_wino2");
            }
        expect_avx2_bits = false;
    }
    /* gconv4_nhwc: grouped convs of 4 input and 4 output channels a group (C = M = 4 * group,
     * channels-last f32), each case by the AVX-512 row kernel (C a multiple of 16; the others go
     * to AVX2 there too), the AVX2 one and the scalar twin: 32-, 16- and 8-channel blocks (C 32,
     * 48, 24, 40), rows of 4-pixel blocks with tails, strides 2, dilation 2, pads 0-2, 1x1 and
     * 5x5 kernels, batch 2, ResNeXt's 128 channels. */
    static const struct conv_case own_g4[] = {
        {1, 32, 9, 9, 32, 3, 1, 8, 1, 1, true, false, false, 0},    {2, 24, 5, 7, 24, 3, 2, 6, 1, 0, true, false, false, 0},
        {1, 128, 14, 14, 128, 3, 1, 32, 1, 1, true, false, false, 0}, {1, 16, 11, 6, 16, 3, 1, 4, 2, 2, true, false, false, 0},
        {1, 16, 6, 5, 16, 1, 1, 4, 1, 0, true, false, false, 0},    {1, 40, 8, 9, 40, 5, 2, 10, 1, 2, true, false, false, 0},
        {1, 48, 7, 10, 48, 3, 2, 12, 1, 1, true, false, false, 0},  {2, 128, 9, 11, 128, 3, 2, 32, 1, 1, true, false, false, 0},
    };
    const bool g_avx2 = mixrt_cpu_features()->avx2 && mixrt_cpu_features()->fma;
    const bool g_avx512 = mixrt_cpu_features()->avx512f && mixrt_cpu_features()->avx512bw &&
                          mixrt_cpu_features()->avx512vl && mixrt_cpu_features()->avx512dq;
    for (size_t si = 0; si < sizeof(own_g4) / sizeof(own_g4[0]); si++)
        for (int act = 0; act < N_ACTS; act++)
            for (int isa = 0; isa < 3; isa++) { /* 0: the CPU's best, 1: AVX2, 2: scalar */
                if (isa == 1 && !(g_avx2 && g_avx512)) continue; /* without AVX-512, 0 is AVX2 already */
                if (isa < 2 && !g_avx2) continue;
                struct conv_case c = own_g4[si];
                c.act = act, c.bias = (act + si) % 2 == 0, c.z = (act / 2 + si) % 2 == 0;
                id++;
                if (only && id != only) continue;
                mixrt_gconv_force_avx2(isa == 1);
                mixrt_gconv_force_scalar(isa == 2);
                conv_case_run(id, &c, MIXRT_DTYPE_F32, "gconv4_nhwc");
                /* bf16 X, Z, Y: the AVX-512 kernel (C a multiple of 16; refused otherwise) and
                 * the scalar twin; not on the AVX2 kernel */
                if (isa != 1) {
                    expect_refusal = isa == 0 && !(g_avx512 && c.C % 16 == 0);
                    conv_case_run(id, &c, MIXRT_DTYPE_BF16, "gconv4_nhwc");
                    expect_refusal = false;
                }
                mixrt_gconv_force_scalar(false);
                mixrt_gconv_force_avx2(false);
            }
    /* gconv8_nhwc: 8 input and 8 output channels a group (ResNeXt-50's second stage: 256
     * channels, the first conv of stride 2), the AVX-512 row kernel and the scalar twin (without
     * AVX-512 only the twin, forced: the kernel refuses such CPUs), f32 and bf16: C 16-256, rows with tails,
     * strides 2, dilation 2, pads 0-2, 1x1 and 5x5 kernels, batch 2. */
    static const struct conv_case own_g8[] = {
        {1, 32, 9, 9, 32, 3, 1, 4, 1, 1, true, false, false, 0},      {2, 16, 5, 7, 16, 3, 2, 2, 1, 0, true, false, false, 0},
        {1, 256, 14, 13, 256, 3, 2, 32, 1, 1, true, false, false, 0}, {1, 48, 11, 6, 48, 3, 1, 6, 2, 2, true, false, false, 0},
        {1, 16, 6, 5, 16, 1, 1, 2, 1, 0, true, false, false, 0},      {1, 64, 8, 9, 64, 5, 2, 8, 1, 2, true, false, false, 0},
        {1, 256, 7, 7, 256, 3, 1, 32, 1, 1, true, false, false, 0},
    };
    for (size_t si = 0; si < sizeof(own_g8) / sizeof(own_g8[0]); si++)
        for (int act = 0; act < N_ACTS; act++)
            for (int sc = 0; sc < 2; sc++) {
                if (!sc && !g_avx512) continue;
                struct conv_case c = own_g8[si];
                c.act = act, c.bias = (act + si) % 2 == 0, c.z = (act / 2 + si) % 2 == 0;
                id++;
                if (only && id != only) continue;
                mixrt_gconv_force_scalar(sc);
                conv_case_run(id, &c, MIXRT_DTYPE_F32, "gconv8_nhwc");
                conv_case_run(id, &c, MIXRT_DTYPE_BF16, "gconv8_nhwc");
                mixrt_gconv_force_scalar(false);
            }
    /* gconv16_nhwc: G a multiple of 16 input and output channels a group, bf16 (RegNet-X's 16,
     * ResNeXt's 16 and 32), the AVX512-BF16 kernel where the CPU has it and the scalar twin
     * (forced: without AVX512-BF16 the kernel refuses), and f32 alike. The 3-tap-wide form at
     * strides 1 and 2: rows of 1-8 pixels (two rows a block, odd row counts), 9-16 and past 16
     * (blocks of 16 and tails), pads 0-2 (edge pixels and whole padded rows); the general block:
     * stride 3, dilation 2, 1x1 and 5x5 kernels, kernel width 3 with stride 1 but dilation 2;
     * G 16, 32, 48 and 64, groups 2-25, batch 2. */
    static const struct conv_case own_g16[] = {
        {1, 32, 9, 9, 32, 3, 1, 2, 1, 1, true, false, false, 0},      {1, 64, 12, 12, 64, 3, 2, 4, 1, 1, true, false, false, 0},
        {2, 32, 7, 7, 32, 3, 1, 2, 1, 1, true, false, false, 0},      {1, 400, 7, 7, 400, 3, 1, 25, 1, 1, true, false, false, 0},
        {1, 160, 14, 14, 160, 3, 2, 10, 1, 1, true, false, false, 0}, {1, 32, 37, 19, 32, 3, 1, 2, 1, 1, true, false, false, 0},
        {1, 64, 35, 6, 64, 3, 2, 2, 1, 0, true, false, false, 0},     {1, 96, 5, 11, 96, 3, 1, 2, 1, 2, true, false, false, 0},
        {1, 128, 10, 9, 128, 3, 1, 2, 1, 1, true, false, false, 0},   {1, 48, 11, 10, 48, 3, 3, 3, 1, 1, true, false, false, 0},
        {1, 32, 11, 12, 32, 3, 1, 2, 2, 2, true, false, false, 0},    {1, 32, 6, 5, 32, 1, 1, 2, 1, 0, true, false, false, 0},
        {2, 64, 9, 8, 64, 5, 2, 2, 1, 2, true, false, false, 0},      {1, 16, 4, 3, 16, 3, 1, 1, 1, 1, true, false, false, 0},
    };
    const bool g_bf16 = g_avx512 && mixrt_cpu_features()->avx512_bf16;
    for (size_t si = 0; si < sizeof(own_g16) / sizeof(own_g16[0]); si++)
        for (int act = 0; act < N_ACTS; act++)
            for (int sc = 0; sc < 2; sc++) {
                if (!sc && !g_bf16) continue;
                struct conv_case c = own_g16[si];
                c.act = act, c.bias = (act + si) % 2 == 0, c.z = (act / 2 + si) % 2 == 0;
                id++;
                if (only && id != only) continue;
                mixrt_gconv16_force_scalar(sc);
                /* one group (the last case) is a dense conv: refused */
                expect_refusal = c.group < 2;
                conv_case_run(id, &c, MIXRT_DTYPE_BF16, "gconv16_nhwc");
                /* f32: the AVX-512 kernel where the CPU has AVX-512 (this loop's kernel runs
                 * only where it has AVX512-BF16 too), the scalar twin forced */
                conv_case_run(id, &c, MIXRT_DTYPE_F32, "gconv16_nhwc");
                expect_refusal = false;
                mixrt_gconv16_force_scalar(false);
            }
    /* Channels-last 1x1 convolutions as a matmul: strides 1-3 (odd sizes leave pixels out),
     * channel counts around the vector width. */
    static const struct conv_case one[] = {
        {1, 17, 7, 10, 5, 1, 1, 1, 1, 0, true, false, false, 0},  {2, 64, 9, 9, 64, 1, 2, 1, 1, 0, true, false, false, 0},
        {1, 1, 5, 5, 33, 1, 1, 1, 1, 0, true, false, false, 0},   {1, 48, 7, 7, 128, 1, 2, 1, 1, 0, true, false, false, 0},
        {3, 16, 4, 6, 17, 1, 3, 1, 1, 0, true, false, false, 0},  {1, 64, 28, 28, 256, 1, 1, 1, 1, 0, true, false, false, 0},
        {1, 300, 5, 7, 20, 1, 1, 1, 1, 0, true, false, false, 0}, /* C over one K block of conv1x1_sgemm (256) */
    };
    for (size_t si = 0; si < sizeof(one) / sizeof(one[0]); si++)
        for (int d = 0; d < 2; d++)
            for (int act = 0; act < N_ACTS; act++) {
                struct conv_case c = one[si];
                c.act = act, c.bias = (act + si) % 2 == 0, c.z = (act / 2 + si) % 2 == 0;
                id++;
                if (only && id != only) continue;
                conv_case_run(id, &c, dts[d], "dnnl_conv1x1_mm");
                /* the own packed product: f32 where the CPU has AVX2 and FMA, bf16 refused */
                if (mixrt_cpu_features()->avx2 && mixrt_cpu_features()->fma) {
                    expect_refusal = dts[d] == MIXRT_DTYPE_BF16;
                    expect_avx2_bits = mixrt_cpu_features()->avx512f;
                    conv_case_run(id, &c, dts[d], "conv_sgemm");
                    expect_avx2_bits = false;
                    expect_refusal = false;
                }
                bool split = dts[d] == MIXRT_DTYPE_BF16 && !c.z && !strcmp(acts[act], "SiLU");
                if (split || !strcmp(acts[act], "SiLU") || act == 1) {
                    expect_refusal = !split;
                    conv_case_run(id, &c, dts[d], "dnnl_conv1x1_mm_swish");
                    expect_refusal = false;
                }
            }
    /* 1x1 on a few pixels (squeeze-excite's products): conv1x1_gemv, vector blocks of 64 and
     * their masked tails, one and several pixels. */
    static const struct conv_case few[] = {
        {1, 1152, 1, 1, 48, 1, 1, 1, 1, 0, true, false, false, 0}, {1, 48, 1, 1, 1152, 1, 1, 1, 1, 0, true, false, false, 0},
        {2, 17, 1, 2, 33, 1, 1, 1, 1, 0, true, false, false, 0},   {1, 5, 2, 2, 3, 1, 1, 1, 1, 0, true, false, false, 0},
        {3, 64, 1, 1, 79, 1, 1, 1, 1, 0, true, false, false, 0},   {1, 1, 1, 1, 1, 1, 1, 1, 1, 0, true, false, false, 0},
    };
    for (size_t si = 0; si < sizeof(few) / sizeof(few[0]); si++)
        for (int d = 0; d < 2; d++)
            for (int act = 0; act < N_ACTS; act++) {
                struct conv_case c = few[si];
                c.act = act, c.bias = (act + si) % 2 == 0, c.z = (act / 2 + si) % 2 == 0;
                id++;
                if (only && id != only) continue;
                for (int sc = 0; sc < 3; sc++) { /* the CPU's widest span, the scalar one, AVX2 */
                    if (sc == 2 && !(mixrt_cpu_features()->avx2 && mixrt_cpu_features()->fma)) continue;
                    mixrt_gemv_force_scalar(sc);
                    conv_case_run(id, &c, dts[d], "conv1x1_gemv");
                }
                mixrt_gemv_force_scalar(0);
            }
    /* f32 3x3 stride-1 convolutions by Winograd: 16-channel multiples, odd and small images
     * (partial tiles), pads 0-2, both layouts; the case fails if oneDNN ran another algorithm. */
    static const struct conv_case wino[] = {
        {1, 16, 5, 7, 16, 3, 1, 1, 1, 1, true, false, false, 0},    {2, 32, 9, 11, 48, 3, 1, 1, 1, 1, true, false, false, 0},
        {1, 64, 14, 14, 64, 3, 1, 1, 1, 0, true, false, false, 0},  {1, 128, 28, 28, 128, 3, 1, 1, 1, 1, true, false, false, 0},
        {1, 256, 7, 7, 256, 3, 1, 1, 1, 2, false, false, false, 0}, {1, 48, 13, 6, 32, 3, 1, 1, 1, 1, false, false, false, 0},
    };
    for (size_t si = 0; si < sizeof(wino) / sizeof(wino[0]); si++)
        for (int act = 0; act < N_ACTS; act++) {
            struct conv_case c = wino[si];
            c.act = act, c.bias = (act + si) % 2 == 0, c.z = (act / 2 + si) % 2 == 0;
            id++;
            if (only && id != only) continue;
            /* oneDNN's Winograd takes no pad over 1: the kernel must refuse those rather than
             * run direct under its name; activations other than ReLU run over Y afterwards. */
            const struct mixrt_cpu_features *f = mixrt_cpu_features();
            bool avx512 = f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq;
            expect_refusal = c.pad > 1 || !avx512; /* oneDNN's Winograd is AVX-512 only */
            expect_impl = "wino";
            conv_case_run(id, &c, MIXRT_DTYPE_F32, "dnnl_wino_conv");
            expect_impl = NULL, expect_refusal = false;
        }
    /* A Winograd primitive over MIXRT_DNNL_WINO_MAX_MB (256 by default) and over the layer's own
     * weights and activations is left for the direct convolution, under the same kernel: 64 -> 64
     * at 14x14 wants 1.04 MB (0.25 MB of weights and activations), so a 0.5 MB cap refuses it. */
    {
        struct conv_case c = {1, 64, 14, 14, 64, 3, 1, 1, 1, 1, true, true, false, 1}; /* ReLU */
        id++;
        if (!only || id == only) {
            setenv("MIXRT_DNNL_WINO_MAX_MB", "0.5", 1);
            const struct mixrt_cpu_features *f = mixrt_cpu_features();
            expect_refusal = !(f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq);
            expect_not_impl = "wino";
            conv_case_run(id, &c, MIXRT_DTYPE_F32, "dnnl_wino_conv");
            expect_not_impl = NULL, expect_refusal = false;
            unsetenv("MIXRT_DNNL_WINO_MAX_MB");
        }
    }
    /* 1-D channels-last convolutions: wav2vec2's extractor shapes scaled down (one input
     * channel with kernel 10 stride 5; kernel 3 and 2 stride 2), its grouped positional conv
     * (kernel 16 here, pad 8, even output), channel counts around the vector width; each
     * through oneDNN's convolution and as the im2col matmul (dnnl_conv1d_mm: grouped refused;
     * kernel = stride with no pads reads X as the rows, two images with a ragged tail copy;
     * dilations 3 and 2, the last with kernel = stride, which must not read X in place). */
    static const struct {
        int64_t N, C, L, M, k, s, dil, group, pad;
    } c1d[] = {{1, 1, 203, 67, 10, 5, 1, 1, 0}, {1, 67, 39, 67, 3, 2, 1, 1, 0}, {1, 64, 40, 17, 2, 2, 1, 1, 0},
               {1, 48, 13, 48, 16, 1, 1, 16, 8}, {1, 33, 21, 129, 3, 2, 1, 1, 1}, {2, 40, 41, 24, 2, 2, 1, 1, 0},
               {3, 16, 20, 8, 2, 2, 1, 1, 0}, {1, 19, 30, 33, 1, 1, 1, 1, 0}, {2, 24, 17, 40, 4, 1, 1, 1, 3},
               {2, 16, 29, 24, 3, 2, 3, 1, 2}, {1, 8, 12, 8, 2, 2, 2, 1, 0}};
    static const char *const c1d_kernels[] = {"dnnl_fused_conv", "dnnl_conv1d_mm"};
    for (size_t si = 0; si < sizeof(c1d) / sizeof(c1d[0]); si++)
        for (int kk = 0; kk < 2; kk++)
            for (int d = 0; d < 2; d++)
                for (int act = 0; act < N_ACTS; act++) {
                    id++;
                    if (only && id != only) continue;
                    expect_refusal = kk == 1 && c1d[si].group > 1;
                    conv1d_case_run(id, c1d[si].N, c1d[si].C, c1d[si].L, c1d[si].M, c1d[si].k, c1d[si].s,
                                    c1d[si].dil, c1d[si].group, c1d[si].pad, act, dts[d], c1d_kernels[kk]);
                    expect_refusal = false;
                }
    /* The channels-last InstanceNormalization: channel counts on and around its 64-column
     * blocks, one row, two images, row blocks of the activation (4096 values) split unevenly;
     * every activation. */
    /* num_groups (the layout pass's group norm): groups across the 64-column blocks (130 / 13),
     * FCOS's 32 of 256, one group, groups of one channel; statistics with the rows shared
     * between threads. */
    static const int64_t inorm[][4] = {{1, 33, 1, 0},  {1, 7, 17, 0},   {2, 19, 64, 0},   {1, 1, 65, 0},
                                       {2, 41, 130, 0}, {1, 319, 512, 0}, {1, 5, 4099, 0},  {2, 41, 130, 13},
                                       {1, 100, 256, 32}, {1, 9, 6, 1},  {1, 17, 24, 24}, {2, 3, 12, 4},
                                       /* rows shared between threads (one or two channel blocks, >= 64K values) */
                                       {1, 2100, 40, 0}, {2, 1100, 96, 8}};
    for (size_t si = 0; si < sizeof(inorm) / sizeof(inorm[0]); si++)
        for (int d = 0; d < 2; d++)
            for (int act = 0; act < N_ACTS; act++) {
                id++;
                if (only && id != only) continue;
                instnorm_case_run(id, inorm[si][0], inorm[si][1], inorm[si][2], inorm[si][3], act, dts[d]);
            }
    for (int d = 0; d < 2; d++) {
        struct {
            int kind;
            int64_t C, H, W, k, s, p;
            int incl, ceil, dnnl; /* dnnl: oneDNN must run it (not the kernel's fallback) */
        } pc[] = {{0, 17, 11, 9, 3, 2, 1, 0, 0, 1}, {0, 64, 8, 8, 2, 2, 0, 0, 0, 1}, {1, 3, 9, 10, 3, 1, 1, 0, 0, 1},
                  {1, 33, 7, 7, 3, 2, 1, 1, 0, 1}, {2, 64, 7, 7, 0, 0, 0, 0, 0, 1}, {2, 17, 5, 3, 0, 0, 0, 0, 0, 1},
                  /* ceil_mode (GoogLeNet's and SqueezeNet's pools): windows past the end,
                   * one dropped for starting in the end padding, averages either way; the
                   * last counts padding and hangs past it, which oneDNN would count too:
                   * the reference's */
                  {0, 64, 112, 112, 3, 2, 0, 0, 1, 1}, {0, 19, 13, 10, 3, 2, 0, 0, 1, 1}, {0, 24, 14, 14, 3, 1, 1, 0, 1, 1},
                  {0, 16, 6, 7, 2, 2, 1, 0, 1, 1},     {1, 21, 11, 9, 3, 2, 1, 0, 1, 1},  {1, 21, 11, 9, 3, 2, 1, 1, 1, 1},
                  {1, 8, 10, 10, 3, 2, 0, 0, 1, 1},    {1, 8, 10, 10, 3, 2, 0, 1, 1, 0},
                  /* channel tails past 16 (nn_maxpool_nhwc's vectors), a window wider than the
                   * input's padded edge, GoogLeNet's 3x3 stride-1 branch pool */
                  {0, 200, 9, 13, 3, 1, 1, 0, 1, 1},   {0, 3, 5, 4, 5, 2, 2, 0, 0, 1},   {0, 40, 7, 7, 3, 1, 1, 0, 1, 1}};
        for (size_t i = 0; i < sizeof(pc) / sizeof(pc[0]); i++) {
            id++;
            if (only && id != only) continue;
            expect_impl = pc[i].dnnl ? "" : NULL;
            pool_case_run(id, pc[i].kind, pc[i].C, pc[i].H, pc[i].W, pc[i].k, pc[i].s, pc[i].p, pc[i].incl, pc[i].ceil,
                          dts[d]);
            expect_impl = NULL;
        }
    }
    /* ConcatAffine: parts of 1..100 channels (vector tails), one row to many, every
     * activation; the row kernel, the staged path, and integer bf16 rounding. */
    static const struct {
        int k;
        int64_t rows, len[4];
    } cas[] = {{1, 7, {17}}, {2, 300, {64, 32}}, {3, 5, {1, 16, 100}}, {4, 129, {32, 32, 33, 7}}, {2, 1, {48, 3}}};
    for (size_t si = 0; si < sizeof(cas) / sizeof(cas[0]); si++)
        for (int d = 0; d < 2; d++)
            for (int act = 0; act < N_ACTS; act++)
                for (int mode = 0; mode < 3; mode++) {
                    id++;
                    if (only && id != only) continue;
                    mixrt_concat_affine_force(mode == 2, mode == 1);
                    concat_affine_case_run(id, cas[si].k, cas[si].rows, cas[si].len, act, dts[d], mode);
                    mixrt_concat_affine_force(false, false);
                }
    /* The channels-last DepthToSpace, both modes: Mask R-CNN's mask upsampler (256 channels,
     * blocksize 2), odd sizes, one pixel, blocksizes 3 and 4. */
    static const int64_t d2s[][5] = {{2, 14, 14, 256, 2}, {1, 7, 9, 5, 3}, {3, 1, 1, 1, 2}, {1, 3, 5, 17, 4}};
    for (size_t si = 0; si < sizeof(d2s) / sizeof(d2s[0]); si++)
        for (int d = 0; d < 2; d++)
            for (int crd = 0; crd < 2; crd++) {
                id++;
                if (only && id != only) continue;
                d2s_case_run(id, d2s[si][0], d2s[si][1], d2s[si][2], d2s[si][3], d2s[si][4], crd, dts[d]);
            }
    if (mixrt_cpu_features()->avx512f)
        printf("test_fuse_conv: conv_sgemm / conv_wino / conv_wino2: %d cases, the AVX-512 tile and transforms = the AVX2 ones "
               "bit for bit\n", avx2_bits_equal);
}

int main(int argc, char **argv) {
    setenv("MIXRT_SGEMM", "on", 1); /* the own f32 products also where the CPU has AVX-512 */
    int only = 0;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--only")) only = atoi(argv[i + 1]);
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    tu_seed(7);
    mixrt_sgemm_conv_z1x1(true); /* conv_sgemm's own 1x1 convs with Z, checked like the rest */
    if (!only) test_passes();
    test_kernels(only);
#ifdef MIXRT_HAVE_DNNL
    if (!only) TU_CHECK(z1x1_refused > 0, "no 1x1 case with Z checked conv_sgemm's default refusal");
#endif
    mixrt_context_destroy(ctx);
    return tu_finish("test_fuse_conv");
}
