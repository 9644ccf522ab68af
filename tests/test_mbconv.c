/* test_mbconv.c - com.mixrt FusedMBConv (an inverted-residual block) and its kernel (mbconv.c,
 * "mbconv_nhwc") on random data: the kernel against the reference kernel (an f64 computation that
 * rounds each stage to bf16 as the three unfused convs store them) over image sizes around the
 * per-thread window (12 rows) and the pointwise tiles, depthwise kernels 3x3 / 5x5 / 3x5 at
 * strides 1 and 2 with symmetric and asymmetric pads, every activation the kernels apply, with and
 * without the residual, batches of one and two, channel counts on and around the 16-channel
 * blocks; the AVX512-BF16 kernels where the CPU has them and the scalar twins always; then the
 * pass (pass_mbconv) through engines built from an ONNX model: the blocks of 14 rows and more
 * fused, smaller ones not, MIXRT_MBCONV=off none, outputs against the f64 reference engine, and a
 * plan round trip.
 * Usage: test_mbconv [--only N] (N: a kernel case number, as printed on failure). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/exec_ref.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/pwconv_impl.h"
#include "engine/engine_impl.h"
#include "graph_build.h"
#include "kernel_harness.h"
#include "mixrt/mixrt_engine.h"
#include "testutil.h"

static mixrt_context_t ctx;
static int g_only;

static const char *const acts[] = {"", "Relu", "Clip", "LeakyRelu", "SiLU", "HardSwish"};
enum { N_ACTS = 6 };

struct mb_case {
    int64_t n, h, w, c, e, m, kh, kw, s;
    int64_t pads[4];
    bool z;
    int a1, a2, a3; /* indices into acts */
    bool noexp;     /* no expand (W1, B1 absent; e == c) */
    int nobias;     /* bits 0-2: B1, B2, B3 absent (convs without bias, as the dynamo exporter writes them) */
};

static struct mixrt_graph *new_graph(void) {
    struct mixrt_graph *g = NULL;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    static const struct mixrt_opset ops[2] = {{"", 17}, {MIXRT_DOMAIN, 1}};
    g->opsets = ops;
    g->n_opsets = 2;
    return g;
}

static struct mixrt_tensor *rand_tensor(mixrt_dtype dt, int rank, const int64_t *dims) {
    struct mixrt_tensor *t = NULL;
    TU_CHECK(mixrt_tensor_create(ctx, dt, rank, dims, &t) == MIXRT_STATUS_OK, "tensor create");
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) mixrt_store_f64(t->data, dt, i, tu_uniform(-1, 1));
    return t;
}

static double rel_err(const double *a, const double *b, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) num += (a[i] - b[i]) * (a[i] - b[i]), den += b[i] * b[i];
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void act_attrs(struct mixrt_graph *g, int ni, const char *name, const char *params, int a) {
    node_attr_str(g, ni, name, acts[a]);
    if (a == 2) node_attr_floats(g, ni, params, 2, (float[]){0.0f, 6.0f});
    if (a == 3) node_attr_floats(g, ni, params, 1, (float[]){0.1f});
}

static int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t pb, int64_t pe) { return (in + pb + pe - k) / s + 1; }

/* The FusedMBConv node of case c (bf16 throughout, weights bf16 constants). */
static struct mixrt_graph *build_node(const struct mb_case *c, int *ni_out, int *w_out, int64_t *yd) {
    struct mixrt_graph *g = new_graph();
    const mixrt_dtype dt = MIXRT_DTYPE_BF16;
    yd[0] = c->n, yd[1] = out_dim(c->h, c->kh, c->s, c->pads[0], c->pads[2]);
    yd[2] = out_dim(c->w, c->kw, c->s, c->pads[1], c->pads[3]), yd[3] = c->m;
    int x = add_input(g, "x", dt, 4, (int64_t[]){c->n, c->h, c->w, c->c});
    w_out[0] = c->noexp ? -1 : add_const_uniform(ctx, g, "w1", dt, 4, (int64_t[]){c->e, c->c, 1, 1}, 1.5 / sqrt((double)c->c));
    w_out[1] = c->noexp || (c->nobias & 1) ? -1 : add_const_uniform(ctx, g, "b1", dt, 1, &c->e, 0.5);
    w_out[2] = add_const_uniform(ctx, g, "w2", dt, 4, (int64_t[]){c->e, 1, c->kh, c->kw}, 1.5 / sqrt((double)(c->kh * c->kw)));
    w_out[3] = c->nobias & 2 ? -1 : add_const_uniform(ctx, g, "b2", dt, 1, &c->e, 0.5);
    w_out[4] = add_const_uniform(ctx, g, "w3", dt, 4, (int64_t[]){c->m, c->e, 1, 1}, 1.5 / sqrt((double)c->e));
    w_out[5] = c->nobias & 4 ? -1 : add_const_uniform(ctx, g, "b3", dt, 1, &c->m, 0.5);
    int z = c->z ? add_input(g, "z", dt, 4, yd) : -1;
    int ni = mixrt_graph_add_node(g, "block", "FusedMBConv", MIXRT_DOMAIN);
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 1;
    n->n_inputs = c->z ? 8 : 7;
    n->inputs = mixrt_arena_calloc(g->arena, 8, sizeof(int));
    n->inputs[0] = x;
    for (int i = 0; i < 6; i++) n->inputs[1 + i] = w_out[i];
    n->inputs[7] = z;
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs[0] = add_value(g, "y", dt, 4, yd);
    g->values[n->outputs[0]].producer = ni;
    node_attr_ints(g, ni, "kernel_shape", 2, (int64_t[]){c->kh, c->kw});
    node_attr_ints(g, ni, "strides", 2, (int64_t[]){c->s, c->s});
    node_attr_ints(g, ni, "pads", 4, c->pads);
    node_attr_int(g, ni, "group", c->e);
    node_attr_int(g, ni, "channels_last", 1);
    if (!c->noexp) act_attrs(g, ni, "expand_activation", "expand_activation_params", c->a1);
    act_attrs(g, ni, "activation", "activation_params", c->a2);
    act_attrs(g, ni, "project_activation", "project_activation_params", c->a3);
    *ni_out = ni;
    return g;
}

/* Case id: mbconv_nhwc (scalar twins when scalar) against the reference kernel. */
static void run_case(int id, const struct mb_case *c, bool scalar) {
    if (g_only && id != g_only) return;
    char desc[320];
    snprintf(desc, sizeof(desc),
             "%s%s nobias=%d N=%lld %lldx%lldx%lld E=%lld M=%lld k=%lldx%lld s=%lld p=%lld,%lld,%lld,%lld%s acts=%s/%s/%s",
             scalar ? "scalar" : "fast", c->noexp ? " no-expand" : "", c->nobias, (long long)c->n, (long long)c->h, (long long)c->w, (long long)c->c,
             (long long)c->e, (long long)c->m, (long long)c->kh, (long long)c->kw, (long long)c->s,
             (long long)c->pads[0], (long long)c->pads[1], (long long)c->pads[2], (long long)c->pads[3],
             c->z ? " Z" : "", acts[c->a1], acts[c->a2], acts[c->a3]);
    int ni, wv[6];
    int64_t yd[4];
    struct mixrt_graph *g = build_node(c, &ni, wv, yd);
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("mbconv_nhwc", MIXRT_DOMAIN, "FusedMBConv");
    mixrt_kernel_fn ref;
    TU_CHECK(kern != NULL, "case %d: mbconv_nhwc is not registered", id);
    TU_CHECK(mixrt_ref_find(ctx, n, &ref) == MIXRT_STATUS_OK, "case %d: no reference kernel", id);
    char why[256] = "";
    bool ok = kern && kern->supports(g, n, why, sizeof(why));
    TU_CHECK(ok, "case %d %s: refused: %s; rerun: test_mbconv --only %d", id, desc, why, id);
    struct mixrt_tensor *tx = rand_tensor(MIXRT_DTYPE_BF16, 4, (int64_t[]){c->n, c->h, c->w, c->c});
    struct mixrt_tensor *tz = c->z ? rand_tensor(MIXRT_DTYPE_BF16, 4, yd) : NULL;
    const struct mixrt_tensor *in[8] = {tx, NULL, NULL, NULL, NULL, NULL, NULL, tz};
    for (int i = 0; i < 6; i++) in[1 + i] = wv[i] >= 0 ? g->values[wv[i]].init : NULL;
    const int n_in = c->z ? 8 : 7;
    void *state = NULL;
    if (ok) {
        mixrt_mbconv_force_scalar(scalar);
        mixrt_status st = kern->prepare(ctx, g, n, &state);
        TU_CHECK(st == MIXRT_STATUS_OK, "case %d %s: prepare: %s", id, desc, mixrt_context_last_error(ctx));
        struct mixrt_tensor yf, yr;
        unsigned long refs = mixrt_mbconv_ref_runs();
        mixrt_status sf = MIXRT_STATUS_OK;
        for (int rep = 0; rep < 2 && sf == MIXRT_STATUS_OK; rep++) { /* the second run reuses the state */
            if (rep) mixrt_tensor_release(ctx, &yf);
            sf = run_node(ctx, kern->run, state, g, ni, n_in, in, &yf);
        }
        mixrt_mbconv_force_scalar(false);
        TU_CHECK(mixrt_mbconv_ref_runs() == refs, "case %d %s: ran the reference, not the kernels", id, desc);
        mixrt_status sr = run_node(ctx, ref, NULL, g, ni, n_in, in, &yr);
        TU_CHECK(sf == MIXRT_STATUS_OK && sr == MIXRT_STATUS_OK, "case %d %s: run fast %d ref %d: %s", id, desc, sf,
                 sr, mixrt_context_last_error(ctx));
        if (sf == MIXRT_STATUS_OK && sr == MIXRT_STATUS_OK) {
            size_t nn = mixrt_tensor_numel(&yr);
            bool same = yf.rank == 4 && !memcmp(yf.dims, yr.dims, sizeof(yd)) && !memcmp(yr.dims, yd, sizeof(yd)) &&
                        yf.dtype == MIXRT_DTYPE_BF16 && yr.dtype == MIXRT_DTYPE_BF16;
            TU_CHECK(same && nn > 0, "case %d %s: output shapes or dtypes differ", id, desc);
            double *a = same ? malloc(nn * sizeof(double)) : NULL, *b = same ? malloc(nn * sizeof(double)) : NULL;
            TU_CHECK(!same || (a && b), "case %d: out of memory", id);
            if (same && a && b) {
                double norm = 0;
                for (size_t i = 0; i < nn; i++) {
                    a[i] = mixrt_load_f64(yf.data, yf.dtype, i), b[i] = mixrt_load_f64(yr.data, yr.dtype, i);
                    norm += b[i] * b[i];
                }
                /* bf16 at every stage: a rounding of an intermediate may land on the other side
                 * of a tie between the f32 sums and the f64 ones, and move the next stage. */
                double e = rel_err(a, b, nn), tol = 1e-2;
                TU_CHECK(norm > 0, "case %d %s: the reference output is all zeros (the test is vacuous)", id, desc);
                TU_CHECK(e <= tol, "case %d %s: rel err %g > %g; rerun: test_mbconv --only %d", id, desc, e, tol, id);
            }
            free(a);
            free(b);
        }
        if (sf == MIXRT_STATUS_OK) mixrt_tensor_release(ctx, &yf);
        if (sr == MIXRT_STATUS_OK) mixrt_tensor_release(ctx, &yr);
        kern->release(ctx, state);
    }
    mixrt_tensor_destroy(ctx, tx);
    if (tz) mixrt_tensor_destroy(ctx, tz);
    mixrt_graph_destroy(g);
}

static int run_all(int id, bool scalar) {
    /* Hand-picked: MobileNetV2's and MnasNet's first blocks (small widths), heights around the
     * 12-row window and the thread split, the kernel sizes and strides, pads that leave rows out. */
    static const struct mb_case fixed[] = {
        {1, 30, 28, 16, 96, 24, 3, 3, 2, {1, 1, 1, 1}, false, 2, 2, 0, false, 0},
        {1, 28, 20, 24, 144, 24, 3, 3, 1, {1, 1, 1, 1}, true, 2, 2, 0, false, 0},
        {1, 28, 14, 40, 120, 40, 5, 5, 1, {2, 2, 2, 2}, true, 1, 1, 0, false, 0},
        {1, 29, 13, 40, 120, 80, 5, 5, 2, {2, 2, 2, 2}, false, 1, 1, 0, false, 0},
        {2, 13, 9, 17, 33, 15, 3, 3, 1, {1, 1, 1, 1}, true, 4, 5, 3, false, 0},
        {1, 25, 7, 8, 48, 16, 3, 5, 1, {1, 2, 1, 2}, false, 3, 4, 1, false, 0},
        {1, 12, 11, 32, 64, 32, 3, 3, 2, {0, 1, 1, 0}, false, 5, 3, 2, false, 0},
        {1, 1, 5, 16, 32, 16, 3, 3, 1, {1, 1, 1, 1}, true, 0, 2, 4, false, 0},
        {2, 3, 3, 4, 16, 8, 3, 3, 1, {2, 2, 2, 2}, false, 2, 1, 5, false, 0},
        {1, 40, 6, 8, 24, 8, 3, 3, 3, {1, 1, 1, 1}, false, 1, 1, 1, false, 0}, /* stride past the kernel */
        /* bottom pads past the kernel: the last output rows read no input row at all */
        {1, 4, 6, 8, 16, 8, 3, 3, 1, {1, 1, 3, 1}, true, 2, 2, 1, false, 0},
        {2, 5, 7, 16, 32, 16, 3, 3, 2, {0, 1, 4, 2}, false, 1, 4, 0, false, 0},
        {1, 4, 6, 16, 16, 8, 3, 3, 1, {1, 1, 3, 1}, false, 0, 2, 1, true, 0},
        /* no expand: MobileNetV2's and MnasNet's first block (the depthwise conv on the stem) */
        {1, 28, 28, 32, 32, 16, 3, 3, 1, {1, 1, 1, 1}, false, 0, 2, 0, true, 0},
        {2, 15, 9, 17, 17, 17, 5, 5, 2, {2, 2, 2, 2}, true, 0, 4, 1, true, 0},
        {1, 14, 13, 16, 16, 16, 3, 3, 1, {1, 1, 1, 1}, true, 0, 1, 0, true, 0},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) run_case(++id, &fixed[i], scalar);
    /* convs without bias (a dynamo export of a freshly initialized net): all three, the
     * depthwise one alone, and a block without expand */
    static const int nobias_of[3] = {7, 2, 6};
    static const size_t nobias_case[3] = {0, 1, 13};
    for (int i = 0; i < 3; i++) {
        struct mb_case c = fixed[nobias_case[i]];
        c.nobias = nobias_of[i];
        run_case(++id, &c, scalar);
    }
    static const int64_t chs[] = {1, 3, 15, 16, 17, 32, 48};
    for (int r = 0; r < (scalar ? 12 : 40); r++) {
        struct mb_case c;
        memset(&c, 0, sizeof(c));
        c.n = r % 6 == 0 ? 2 : 1;
        c.c = chs[tu_rand() % 7];
        c.e = chs[tu_rand() % 7] * (1 + (int64_t)(tu_rand() % 3));
        c.m = chs[tu_rand() % 7];
        c.kh = r % 3 == 2 ? 5 : 3;
        c.kw = r % 5 == 4 ? 5 : c.kh;
        c.s = 1 + (int64_t)(tu_rand() % 2);
        for (int j = 0; j < 4; j++) c.pads[j] = (int64_t)(tu_rand() % (uint64_t)((j % 2 ? c.kw : c.kh) / 2 + 1));
        c.h = c.kh + (int64_t)(tu_rand() % 30);
        c.w = c.kw + (int64_t)(tu_rand() % 12);
        c.a1 = (int)(tu_rand() % N_ACTS), c.a2 = (int)(tu_rand() % N_ACTS), c.a3 = (int)(tu_rand() % N_ACTS);
        c.z = tu_rand() % 2;
        if (r % 4 == 3) c.noexp = true, c.e = c.c;
        if (r % 5 == 2) c.nobias = 1 + (r / 5) % 7; /* not from tu_rand: the other draws stay as they were */
        run_case(++id, &c, scalar);
    }
    return id;
}

/* The cases the kernel must refuse (they stay on the reference kernel). */
static void test_refusals(void) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("mbconv_nhwc", MIXRT_DOMAIN, "FusedMBConv");
    if (!kern) return;
    const struct mb_case c = {1, 8, 8, 16, 32, 16, 3, 3, 1, {1, 1, 1, 1}, false, 2, 2, 0, false, 0};
    int ni, wv[6];
    int64_t yd[4];
    char why[256];
    struct mixrt_graph *g = build_node(&c, &ni, wv, yd);
    TU_CHECK(kern->supports(g, &g->nodes[ni], why, sizeof(why)), "refusals: the base case is refused: %s", why);
    mixrt_graph_destroy(g);
    struct {
        const char *what, *attr, *val;
    } bad[] = {{"a Tanh depthwise activation", "activation", "Tanh"},
               {"a Sigmoid project activation", "project_activation", "Sigmoid"},
               {"an unknown expand activation", "expand_activation", "Swish2"}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct mb_case cc = c;
        g = build_node(&cc, &ni, wv, yd);
        struct mixrt_node *n = &g->nodes[ni];
        for (int a = 0; a < n->n_attrs; a++)
            if (!strcmp(n->attrs[a].name, bad[i].attr)) n->attrs[a].s = bad[i].val, n->attrs[a].s_len = strlen(bad[i].val);
        why[0] = 0;
        TU_CHECK(!kern->supports(g, n, why, sizeof(why)) && why[0], "refusals: %s taken", bad[i].what);
        mixrt_graph_destroy(g);
    }
    /* f32 X: the planner put the block in f32 (the pass never makes one; a plan could hold it). */
    g = build_node(&c, &ni, wv, yd);
    g->values[g->nodes[ni].inputs[0]].dtype = MIXRT_DTYPE_F32;
    TU_CHECK(!kern->supports(g, &g->nodes[ni], why, sizeof(why)), "refusals: f32 X taken");
    mixrt_graph_destroy(g);
}

/* ---- the pass, through engines built from an ONNX model ---------------------------------- */

static bool g_conv_nobias; /* conv_node leaves B out (the dynamo exporter's zero-bias convs) */

static int conv_node(struct mixrt_graph *g, const char *name, int x, int64_t cin, int64_t cout, int64_t k, int64_t s,
                     int64_t group) {
    char wn[64], bn[64];
    snprintf(wn, sizeof(wn), "%s_w", name);
    snprintf(bn, sizeof(bn), "%s_b", name);
    int w = add_const_uniform(ctx, g, wn, MIXRT_DTYPE_F32, 4, (int64_t[]){cout, cin / group, k, k},
                              1.5 / sqrt((double)(cin / group * k * k)));
    int b = g_conv_nobias ? -1 : add_const_uniform(ctx, g, bn, MIXRT_DTYPE_F32, 1, &cout, 0.5);
    int y = add_op_node(g, "Conv", b >= 0 ? 3 : 2, (int[]){x, w, b}, name);
    int ni = g->values[y].producer;
    node_attr_ints(g, ni, "kernel_shape", 2, (int64_t[]){k, k});
    node_attr_ints(g, ni, "strides", 2, (int64_t[]){s, s});
    node_attr_ints(g, ni, "pads", 4, (int64_t[]){k / 2, k / 2, k / 2, k / 2});
    node_attr_int(g, ni, "group", group);
    return y;
}

static int clip6(struct mixrt_graph *g, int x, const char *name) {
    char mn[64], mx[64];
    snprintf(mn, sizeof(mn), "%s_min", name);
    snprintf(mx, sizeof(mx), "%s_max", name);
    int lo = add_const_values(ctx, g, mn, MIXRT_DTYPE_F32, 0, NULL, (double[]){0.0});
    int hi = add_const_values(ctx, g, mx, MIXRT_DTYPE_F32, 0, NULL, (double[]){6.0});
    return add_op_node(g, "Clip", 3, (int[]){x, lo, hi}, name);
}

/* An inverted-residual block on x [1, c, h, h]: expand (Clip 0..6; none when e is 0), depthwise k x k stride s
 * (Clip), project, + x when s == 1 and c == m. */
static int block(struct mixrt_graph *g, const char *p, int x, int64_t c, int64_t e, int64_t m, int64_t k, int64_t s) {
    char nm[64];
    int y = x;
    if (e) { /* e == 0: no expand, the depthwise conv on x's c channels */
        snprintf(nm, sizeof(nm), "%s_expand", p);
        y = conv_node(g, nm, x, c, e, 1, 1, 1);
        snprintf(nm, sizeof(nm), "%s_expand_act", p);
        y = clip6(g, y, nm);
    } else {
        e = c;
    }
    snprintf(nm, sizeof(nm), "%s_dw", p);
    y = conv_node(g, nm, y, e, e, k, s, e);
    snprintf(nm, sizeof(nm), "%s_dw_act", p);
    y = clip6(g, y, nm);
    snprintf(nm, sizeof(nm), "%s_project", p);
    y = conv_node(g, nm, y, e, m, 1, 1, 1);
    if (s == 1 && c == m) {
        snprintf(nm, sizeof(nm), "%s_add", p);
        y = add_op_node(g, "Add", 2, (int[]){y, x}, nm);
    }
    return y;
}

static int count_layers(mixrt_engine_t e, const char *op, const char *kernel) {
    int n = 0;
    for (size_t i = 0; i < mixrt_engine_layer_count(e); i++) {
        struct mixrt_layer_info li;
        mixrt_engine_get_layer(e, i, &li);
        n += !strcmp(li.op_type, op) && (!kernel || !strcmp(li.kernel, kernel));
    }
    return n;
}

static double engine_err(mixrt_engine_t e, const struct mixrt_tensor *x, const struct mixrt_tensor *yr) {
    const char *names[1] = {"x"};
    struct mixrt_tensor *ye = NULL;
    if (mixrt_engine_run(e, 1, names, &x, &ye) != MIXRT_STATUS_OK) return -1;
    size_t n = mixrt_tensor_numel(yr);
    double *a = malloc(n * sizeof(double)), *b = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) a[i] = mixrt_load_f64(ye->data, ye->dtype, i), b[i] = mixrt_load_f64(yr->data, yr->dtype, i);
    double err = mixrt_tensor_numel(ye) == n ? rel_err(a, b, n) : -1;
    free(a);
    free(b);
    mixrt_tensor_destroy(ctx, ye);
    return err;
}

static void test_pass(void) {
    if (!mixrt_cpu_features()->avx512_bf16) {
        printf("test_mbconv: SKIPPED the pass through engines (this CPU has no AVX512-BF16; the pass runs only where "
               "it does)\n");
        return;
    }
    /* x [1, 16, 56, 56]: blocks of 56 rows (one without expand, then stride 2 -> 28), 28 rows with the residual, 28 rows
     * stride 2 (-> 14), 14 rows with the residual, 14 rows stride 2 (-> 7): fused; 7 rows with the
     * residual: not (under MB_MIN_ROWS). */
    struct mixrt_graph *g = new_graph();
    int x = add_input(g, "x", MIXRT_DTYPE_F32, 4, (int64_t[]){1, 16, 56, 56});
    g_conv_nobias = true; /* blocks 0 and 4 without biases, as a dynamo export of a fresh net */
    int y = block(g, "b0", x, 16, 0, 16, 3, 1); /* no expand */
    g_conv_nobias = false;
    y = block(g, "b1", y, 16, 64, 24, 3, 2);
    y = block(g, "b2", y, 24, 72, 24, 3, 1);
    y = block(g, "b3", y, 24, 72, 40, 5, 2);
    g_conv_nobias = true;
    y = block(g, "b4", y, 40, 120, 40, 5, 1);
    g_conv_nobias = false;
    y = block(g, "b5", y, 40, 120, 48, 3, 2);
    y = block(g, "b6", y, 48, 144, 48, 3, 1);
    graph_set_output(g, y);
    char path[64], plan[64];
    snprintf(path, sizeof(path), "test_mbconv_%d.onnx", (int)getpid());
    snprintf(plan, sizeof(plan), "test_mbconv_%d.plan", (int)getpid());
    bool saved = kh_export_model(ctx, g, path);
    TU_CHECK(saved, "the block model could not be exported");
    mixrt_graph_destroy(g);
    if (!saved) return;
    struct mixrt_tensor *tx = rand_tensor(MIXRT_DTYPE_F32, 4, (int64_t[]){1, 16, 56, 56});
    mixrt_engine_t r = NULL;
    struct mixrt_tensor *yr = NULL;
    const char *names[1] = {"x"};
    const struct mixrt_tensor *xin = tx;
    TU_CHECK(mixrt_engine_build_reference(ctx, path, NULL, 0, &r) == MIXRT_STATUS_OK &&
                 mixrt_engine_run(r, 1, names, &xin, &yr) == MIXRT_STATUS_OK,
             "reference engine: %s", mixrt_context_last_error(ctx));
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.precisions = MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16;
    static const struct mixrt_layer_precision all_bf16 = {"*", MIXRT_DTYPE_BF16};
    o.layer_precisions = &all_bf16, o.n_layer_precisions = 1;
    o.constraints = MIXRT_CONSTRAINTS_OBEY; /* every block bf16, whatever the timing says (a preference can lose) */
    for (int off = 0; off < 2 && yr; off++) {
        if (off) setenv("MIXRT_MBCONV", "off", 1);
        mixrt_engine_t e = NULL;
        mixrt_status st = mixrt_engine_build(ctx, path, &o, &e);
        unsetenv("MIXRT_MBCONV");
        TU_CHECK(st == MIXRT_STATUS_OK, "engine (MIXRT_MBCONV %s): %s", off ? "off" : "on", mixrt_context_last_error(ctx));
        if (st != MIXRT_STATUS_OK) continue;
        int fused = count_layers(e, "FusedMBConv", NULL), fast = count_layers(e, "FusedMBConv", "mbconv_nhwc");
        if (off)
            TU_CHECK(fused == 0, "MIXRT_MBCONV=off: %d FusedMBConv layers", fused);
        else
            TU_CHECK(fused == 6 && fast == 6 && count_layers(e, "FusedConv", NULL) == 3,
                     "expected blocks 0-5 (56 to 14 rows) fused on mbconv_nhwc, block 6 (7 rows) three FusedConvs: "
                     "%d FusedMBConv (%d on mbconv_nhwc), %d FusedConv",
                     fused, fast, count_layers(e, "FusedConv", NULL));
        double err = engine_err(e, tx, yr);
        TU_CHECK(err >= 0 && err <= 2e-2, "engine (MIXRT_MBCONV %s) vs the f64 reference: error %.3g", off ? "off" : "on",
                 err);
        printf("test_mbconv: engine with MIXRT_MBCONV %s: %d fused blocks, error %.3g against the f64 reference\n",
               off ? "off" : "on", fused, err);
        if (!off) { /* the plan keeps the fused node; its outputs are the engine's */
            mixrt_engine_t l = NULL;
            st = mixrt_engine_save(e, plan);
            if (st == MIXRT_STATUS_OK) st = mixrt_engine_load(ctx, plan, &l);
            TU_CHECK(st == MIXRT_STATUS_OK, "plan round trip: %s", mixrt_context_last_error(ctx));
            if (l) {
                TU_CHECK(count_layers(l, "FusedMBConv", "mbconv_nhwc") == 6, "loaded plan: %d FusedMBConv layers",
                         count_layers(l, "FusedMBConv", "mbconv_nhwc"));
                struct mixrt_tensor *ya = NULL, *yb = NULL;
                TU_CHECK(mixrt_engine_run(e, 1, names, &xin, &ya) == MIXRT_STATUS_OK &&
                             mixrt_engine_run(l, 1, names, &xin, &yb) == MIXRT_STATUS_OK,
                         "plan round trip: run: %s", mixrt_context_last_error(ctx));
                TU_CHECK(ya && yb && ya->nbytes == yb->nbytes && !memcmp(ya->data, yb->data, ya->nbytes),
                         "plan round trip: the loaded engine's outputs differ");
                mixrt_tensor_destroy(ctx, ya);
                mixrt_tensor_destroy(ctx, yb);
                mixrt_engine_destroy(l);
            }
            remove(plan);
        }
        mixrt_engine_destroy(e);
    }
    /* An f32 engine: no bf16 blocks, nothing fused. */
    mixrt_build_options_init(&o);
    mixrt_engine_t e = NULL;
    TU_CHECK(mixrt_engine_build(ctx, path, &o, &e) == MIXRT_STATUS_OK, "f32 engine: %s", mixrt_context_last_error(ctx));
    if (e) TU_CHECK(count_layers(e, "FusedMBConv", NULL) == 0, "f32 engine: FusedMBConv layers");
    mixrt_engine_destroy(e);
    mixrt_tensor_destroy(ctx, yr);
    mixrt_engine_destroy(r);
    mixrt_tensor_destroy(ctx, tx);
    remove(path);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--only")) g_only = atoi(argv[i + 1]);
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    tu_seed(20261205);
    int id = 0;
    if (mixrt_pw_hw())
        id = run_all(id, false);
    else
        printf("test_mbconv: SKIPPED the AVX512-BF16 kernels' cases (this CPU has no AVX512-BF16); the scalar twins "
               "run below\n");
    id = run_all(id, true);
    test_refusals();
    if (!g_only) test_pass();
    printf("test_mbconv: %d kernel cases\n", id);
    mixrt_context_destroy(ctx);
    return tu_finish("test_mbconv");
}
