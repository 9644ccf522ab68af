/* test_dwconv.c - the depthwise channels-last FusedConv kernel (dwconv.c, "dw_conv_nhwc")
 * against the reference kernel on random data: f32 and bf16, channel counts on and around the
 * vector width, small and 112-wide images, strides 1 and 2, symmetric, asymmetric and auto pads,
 * dilations, 3x3 / 5x5 / other kernels, with and without B and Z, every activation, on the
 * AVX-512 row kernel (bf16 rounded by vcvtneps2bf16 where the CPU has it, and by integer
 * arithmetic; bf16 3x3 with and without the AVX512-BF16 vdpbf16ps path) and on its scalar twin,
 * also with X, Z and Y against guard pages (no access outside them, every output element
 * written); the vdpbf16ps path element by element against an f64 computation; then the cases it
 * must refuse.
 * Usage: test_dwconv [--only N] (N: a case number, as printed on failure). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dwconv_impl.h"
#include "backend/cpu/exec_ref.h"
#include "backend/cpu/kernels.h"
#include "kernel_harness.h"
#include "testutil.h"
#include "graph_build.h"

static mixrt_context_t ctx;

static const char *const acts[] = {"", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "SiLU", "Tanh"};

/* One node: X [N, H, W, C] -> Y [N, OH, OW, C], kernel KH x KW. auto_pad NULL: explicit pads. */
struct dw_case {
    int64_t n, c, h, w, kh, kw, sh, sw, dh, dw;
    int64_t pads[4]; /* top, left, bottom, right */
    const char *auto_pad;
    bool bias, z;
    int act;
};

static struct mixrt_graph *new_graph(void) {
    struct mixrt_graph *g = NULL;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    static const struct mixrt_opset op17 = {"", 17};
    g->opsets = &op17;
    g->n_opsets = 1;
    return g;
}

static struct mixrt_tensor *rand_tensor(mixrt_dtype dt, int rank, const int64_t *dims) {
    struct mixrt_tensor *t = NULL;
    TU_CHECK(mixrt_tensor_create(ctx, dt, rank, dims, &t) == MIXRT_STATUS_OK, "tensor create");
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) mixrt_store_f64(t->data, dt, i, tu_uniform(-1, 1));
    return t;
}

/* ||a - b|| / ||b||. */
static double rel_err(const double *a, const double *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) d += (a[i] - b[i]) * (a[i] - b[i]), s += b[i] * b[i];
    return s > 0 ? sqrt(d / s) : sqrt(d);
}

/* The output extent along one axis (ONNX Conv), or -1 when the window does not fit. */
static int64_t out_dim(int64_t in, int64_t k, int64_t s, int64_t d, int64_t pb, int64_t pe, const char *ap) {
    int64_t dk = (k - 1) * d + 1;
    if (ap && (!strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER"))) return (in + s - 1) / s;
    if (ap && !strcmp(ap, "VALID")) pb = pe = 0;
    if (in + pb + pe < dk) return -1;
    return (in + pb + pe - dk) / s + 1;
}

/* A FusedConv node for case c (dtype dt; W of dt too, unless wdt says otherwise). */
static struct mixrt_graph *build(const struct dw_case *c, mixrt_dtype dt, int *ni_out, int *w_out, int *b_out,
                                 int64_t *yd) {
    struct mixrt_graph *g = new_graph();
    int64_t oh = out_dim(c->h, c->kh, c->sh, c->dh, c->pads[0], c->pads[2], c->auto_pad);
    int64_t ow = out_dim(c->w, c->kw, c->sw, c->dw, c->pads[1], c->pads[3], c->auto_pad);
    int64_t xd[4] = {c->n, c->h, c->w, c->c};
    yd[0] = c->n, yd[1] = oh, yd[2] = ow, yd[3] = c->c;
    int x = add_input(g, "x", dt, 4, xd);
    int w = add_const_uniform(ctx, g, "w", dt, 4, (int64_t[]){c->c, 1, c->kh, c->kw}, 1.5 / sqrt((double)(c->kh * c->kw)));
    int b = c->bias ? add_const_uniform(ctx, g, "b", dt, 1, &c->c, 1.0) : -1;
    int z = c->z ? add_input(g, "z", dt, 4, yd) : -1;
    int ni = mixrt_graph_add_node(g, "dw", "FusedConv", MIXRT_DOMAIN);
    struct mixrt_node *n = &g->nodes[ni];
    n->opset = 1;
    n->n_inputs = c->z ? 4 : 3;
    n->inputs = mixrt_arena_calloc(g->arena, 4, sizeof(int));
    n->inputs[0] = x, n->inputs[1] = w, n->inputs[2] = b, n->inputs[3] = z;
    n->n_outputs = 1;
    n->outputs = mixrt_arena_calloc(g->arena, 1, sizeof(int));
    n->outputs[0] = add_value(g, "y", dt, 4, yd);
    g->values[n->outputs[0]].producer = ni;
    node_attr_ints(g, ni, "kernel_shape", 2, (int64_t[]){c->kh, c->kw});
    node_attr_ints(g, ni, "strides", 2, (int64_t[]){c->sh, c->sw});
    node_attr_ints(g, ni, "dilations", 2, (int64_t[]){c->dh, c->dw});
    if (c->auto_pad)
        node_attr_str(g, ni, "auto_pad", c->auto_pad);
    else
        node_attr_ints(g, ni, "pads", 4, c->pads);
    node_attr_int(g, ni, "group", c->c);
    node_attr_int(g, ni, "channels_last", 1);
    node_attr_str(g, ni, "activation", acts[c->act]);
    if (c->act == 2) node_attr_floats(g, ni, "activation_params", 2, (float[]){-0.5f, 0.75f});
    if (c->act == 3) node_attr_floats(g, ni, "activation_params", 1, (float[]){0.1f});
    *ni_out = ni, *w_out = w, *b_out = b;
    return g;
}

static int g_only;

/* Case id: the fast kernel (AVX-512 or scalar as forced) against the reference. */
static void run_case(int id, const struct dw_case *c, mixrt_dtype dt) {
    if (g_only && id != g_only) return;
    char desc[320];
    snprintf(desc, sizeof(desc),
             "%s N=%lld %lldx%lldx%lld k=%lldx%lld s=%lld,%lld d=%lld,%lld p=%lld,%lld,%lld,%lld%s%s%s%s act=%s",
             mixrt_dtype_name(dt), (long long)c->n, (long long)c->h, (long long)c->w, (long long)c->c,
             (long long)c->kh, (long long)c->kw, (long long)c->sh, (long long)c->sw, (long long)c->dh,
             (long long)c->dw, (long long)c->pads[0], (long long)c->pads[1], (long long)c->pads[2],
             (long long)c->pads[3], c->auto_pad ? " " : "", c->auto_pad ? c->auto_pad : "", c->bias ? " B" : "",
             c->z ? " Z" : "", acts[c->act]);
    int ni, wi, bi;
    int64_t yd[4];
    struct mixrt_graph *g = build(c, dt, &ni, &wi, &bi, yd);
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("dw_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    mixrt_kernel_fn ref;
    TU_CHECK(kern != NULL, "case %d: dw_conv_nhwc is not registered", id);
    TU_CHECK(mixrt_ref_find(ctx, n, &ref) == MIXRT_STATUS_OK, "case %d: no reference kernel", id);
    char why[256] = "";
    bool ok = kern && kern->supports(g, n, why, sizeof(why));
    TU_CHECK(ok, "case %d %s: refused: %s; rerun: test_dwconv --only %d", id, desc, why, id);
    struct mixrt_tensor *tx = rand_tensor(dt, 4, (int64_t[]){c->n, c->h, c->w, c->c});
    struct mixrt_tensor *tz = c->z ? rand_tensor(dt, 4, yd) : NULL;
    const struct mixrt_tensor *in[4] = {tx, g->values[wi].init, bi >= 0 ? g->values[bi].init : NULL, tz};
    int n_in = c->z ? 4 : 3;
    void *state = NULL;
    if (ok) {
        mixrt_status st = kern->prepare ? kern->prepare(ctx, g, n, &state) : MIXRT_STATUS_OK;
        TU_CHECK(st == MIXRT_STATUS_OK, "case %d %s: prepare: %s", id, desc, mixrt_context_last_error(ctx));
        struct mixrt_tensor yf, yr;
        unsigned long refs = mixrt_dwconv_ref_runs();
        mixrt_status sf = MIXRT_STATUS_OK;
        for (int rep = 0; rep < 2 && sf == MIXRT_STATUS_OK; rep++) { /* the second run reuses the state */
            if (rep) mixrt_tensor_release(ctx, &yf);
            sf = run_node(ctx, kern->run, state, g, ni, n_in, in, &yf);
        }
        TU_CHECK(mixrt_dwconv_ref_runs() == refs, "case %d %s: ran the reference, not the row kernel", id, desc);
        mixrt_status sr = run_node(ctx, ref, NULL, g, ni, n_in, in, &yr);
        TU_CHECK(sf == MIXRT_STATUS_OK && sr == MIXRT_STATUS_OK, "case %d %s: run fast %d ref %d: %s", id, desc, sf,
                 sr, mixrt_context_last_error(ctx));
        if (sf == MIXRT_STATUS_OK && sr == MIXRT_STATUS_OK) {
            size_t nn = mixrt_tensor_numel(&yr);
            bool same = yf.rank == yr.rank && !memcmp(yf.dims, yr.dims, sizeof(int64_t) * (size_t)yr.rank) &&
                        yf.dtype == yr.dtype;
            TU_CHECK(same && nn > 0, "case %d %s: output shapes differ", id, desc);
            if (same) {
                double *a = malloc(nn * sizeof(double)), *b = malloc(nn * sizeof(double));
                for (size_t i = 0; i < nn; i++)
                    a[i] = mixrt_load_f64(yf.data, yf.dtype, i), b[i] = mixrt_load_f64(yr.data, yr.dtype, i);
                double e = rel_err(a, b, nn), tol = dt == MIXRT_DTYPE_BF16 ? 1e-2 : 1e-6;
                TU_CHECK(e <= tol, "case %d %s: rel err %g > %g; rerun: test_dwconv --only %d", id, desc, e, tol, id);
                free(a);
                free(b);
            }
        }
        if (sf == MIXRT_STATUS_OK) mixrt_tensor_release(ctx, &yf);
        if (sr == MIXRT_STATUS_OK) mixrt_tensor_release(ctx, &yr);
        if (kern->release) kern->release(ctx, state);
    }
    mixrt_tensor_destroy(ctx, tx);
    if (tz) mixrt_tensor_destroy(ctx, tz);
    mixrt_graph_destroy(g);
}

static int64_t pick(const int64_t *v, size_t n) { return v[tu_rand() % n]; }

/* Every case on both dtypes; returns the next case id. */
static int run_all(int id) {
    static const mixrt_dtype dts[2] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};
    /* Hand-picked: MobileNetV2's shapes, the vector width's neighbours, the kernel sizes. */
    static const struct dw_case fixed[] = {
        {1, 32, 112, 112, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, true, false, 2},
        {1, 96, 112, 112, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, true, false, 2},
        {1, 144, 15, 14, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, true, false, 0},
        {1, 960, 7, 7, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, true, false, 0},
        {2, 17, 9, 11, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, NULL, true, true, 0},
        {1, 16, 13, 12, 5, 5, 2, 2, 1, 1, {2, 1, 2, 3}, NULL, false, true, 0},
        {1, 15, 10, 9, 3, 3, 2, 1, 2, 1, {0, 1, 2, 0}, NULL, true, false, 0},
        {1, 1, 5, 6, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, true, true, 0},
        {1, 33, 8, 9, 7, 7, 1, 1, 1, 1, {3, 3, 3, 3}, NULL, true, false, 0},
        {1, 24, 9, 7, 3, 5, 2, 1, 1, 2, {1, 2, 0, 3}, NULL, true, true, 0},
        {1, 32, 11, 10, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, "SAME_UPPER", true, false, 0},
        {1, 32, 11, 10, 3, 3, 2, 2, 1, 1, {0, 0, 0, 0}, "SAME_LOWER", false, true, 0},
        {1, 17, 6, 7, 3, 3, 1, 1, 1, 1, {0, 0, 0, 0}, "VALID", true, false, 0},
        {1, 16, 1, 1, 3, 3, 1, 1, 1, 1, {3, 4, 3, 4}, NULL, true, true, 0}, /* windows all in padding */
        {1, 16, 112, 112, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, true, true, 0},
        {1, 48, 4, 5, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, true, false, 0},
        /* 1x1 at stride 1 without pads (the per-channel affine row path): channel tails, a batch of
         * two; with a pad or a stride the general path */
        {1, 200, 3, 7, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, true, true, 0},
        {2, 17, 5, 3, 1, 1, 1, 1, 1, 1, {0, 0, 0, 0}, NULL, false, true, 0},
        {1, 20, 4, 4, 1, 1, 1, 1, 1, 1, {1, 0, 0, 1}, NULL, true, false, 0},
        {1, 33, 6, 5, 1, 1, 2, 2, 1, 1, {0, 0, 0, 0}, NULL, true, false, 0},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
        for (int d = 0; d < 2; d++)
            for (int act = 0; act < 8; act++) {
                struct dw_case c = fixed[i];
                /* The big images run Clip (MobileNetV2's) and one more activation, not all eight. */
                if (c.h * c.w * c.c > 100000 && act != c.act && act != (int)(i % 7) + 1) continue;
                if (c.h * c.w * c.c <= 100000) {
                    c.act = act;
                    c.bias = (act + (int)i) % 2 == 0 || fixed[i].bias;
                    c.z = (act / 2 + (int)i) % 2 == 0 || fixed[i].z;
                }
                c.act = act;
                run_case(++id, &c, dts[d]);
            }
    /* Random: C on and around the vector width, H/W 1..15, strides 1/2, 3x3 / 5x5, pads up to
     * past the kernel (asymmetric), now and then a dilation. */
    static const int64_t cs[] = {1, 15, 16, 17, 32, 96, 144, 960};
    for (int r = 0; r < 96; r++) {
        struct dw_case c;
        memset(&c, 0, sizeof(c));
        c.n = r % 5 == 0 ? 2 : 1;
        c.c = pick(cs, 8);
        c.kh = c.kw = r % 3 == 2 ? 5 : 3;
        c.sh = c.sw = 1 + (int64_t)(tu_rand() % 2);
        c.dh = c.dw = r % 7 == 3 ? 2 : 1;
        for (int j = 0; j < 4; j++) c.pads[j] = (int64_t)(tu_rand() % (uint64_t)(c.kh + 1));
        int64_t dk = (c.kh - 1) * c.dh + 1;
        c.h = 1 + (int64_t)(tu_rand() % 15);
        c.w = 1 + (int64_t)(tu_rand() % 15);
        if (c.h + c.pads[0] + c.pads[2] < dk) c.h = dk;
        if (c.w + c.pads[1] + c.pads[3] < dk) c.w = dk;
        if (c.c == 960 && c.h * c.w > 49) c.h = c.w = 7; /* keeps the reference quick */
        c.bias = tu_rand() % 2, c.z = tu_rand() % 2;
        c.act = r % 8;
        for (int d = 0; d < 2; d++) run_case(++id, &c, dts[d]);
    }
    return id;
}

/* ---- the AVX512-BF16 path against an f64 computation ------------------------------------- */

/* Y of case c (bf16 X, W, B, Z as the graph holds them) in f64 with W exact, and per element the
 * sum of |x * w| over the taps (what rounding W to bf16 can move the sum by). */
static void dw_f64(const struct dw_case *c, struct mixrt_graph *g, int wi, int bi, const struct mixrt_tensor *tx,
                   const struct mixrt_tensor *tz, const int64_t *yd, double *y, double *mag) {
    const struct mixrt_tensor *w = g->values[wi].init, *b = bi >= 0 ? g->values[bi].init : NULL;
    for (int64_t n = 0; n < yd[0]; n++)
        for (int64_t oy = 0; oy < yd[1]; oy++)
            for (int64_t ox = 0; ox < yd[2]; ox++)
                for (int64_t ch = 0; ch < c->c; ch++) {
                    const size_t yi = (size_t)(((n * yd[1] + oy) * yd[2] + ox) * c->c + ch);
                    double v = b ? mixrt_load_f64(b->data, b->dtype, (size_t)ch) : 0.0, m = 0.0;
                    for (int64_t kh = 0; kh < c->kh; kh++)
                        for (int64_t kw = 0; kw < c->kw; kw++) {
                            int64_t iy = oy * c->sh - c->pads[0] + kh * c->dh;
                            int64_t ix = ox * c->sw - c->pads[1] + kw * c->dw;
                            if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                            size_t xi = (size_t)(((n * c->h + iy) * c->w + ix) * c->c + ch);
                            double xv = mixrt_load_f64(tx->data, tx->dtype, xi);
                            double wv = mixrt_load_f64(w->data, w->dtype, (size_t)((ch * c->kh + kh) * c->kw + kw));
                            v += xv * wv, m += fabs(xv * wv);
                        }
                    if (tz) v += mixrt_load_f64(tz->data, tz->dtype, yi);
                    switch (c->act) {
                    case 1: v = v > 0 ? v : 0; break;
                    case 2: v = v < -0.5 ? -0.5 : v > 0.75 ? 0.75 : v; break;
                    case 3: v = v >= 0 ? v : 0.1 * v; break;
                    case 5: v = v * fmin(1.0, fmax(0.0, v / 6.0 + 0.5)); break;
                    default: break;
                    }
                    y[yi] = v, mag[yi] = m;
                }
}

/* Case id on the AVX512-BF16 path (bf16, 3x3): every element within what bf16 weights and the bf16
 * rounding of Y allow of the f64 result: |y - ref| <= 2^-8 (sum |x w| + |ref|) * L (L: the
 * activation's slope bound, 1, or 1.5 for HardSwish), twice the worst case of both roundings
 * (2^-9 each), where one tap left out or taken from another channel is ~1/9 of sum |x w|. */
static void run_dp_case(int id, const struct dw_case *c) {
    if (g_only && id != g_only) return;
    int ni, wi, bi;
    int64_t yd[4];
    struct mixrt_graph *g = build(c, MIXRT_DTYPE_BF16, &ni, &wi, &bi, yd);
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("dw_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    struct mixrt_tensor *tx = rand_tensor(MIXRT_DTYPE_BF16, 4, (int64_t[]){c->n, c->h, c->w, c->c});
    struct mixrt_tensor *tz = c->z ? rand_tensor(MIXRT_DTYPE_BF16, 4, yd) : NULL;
    const struct mixrt_tensor *in[4] = {tx, g->values[wi].init, bi >= 0 ? g->values[bi].init : NULL, tz};
    void *state = NULL;
    TU_CHECK(kern && kern->supports(g, n, NULL, 0) && kern->prepare(ctx, g, n, &state) == MIXRT_STATUS_OK,
             "dp case %d: refused or prepare failed", id);
    struct mixrt_tensor yf;
    unsigned long dps = mixrt_dwconv_bf16dp_runs();
    mixrt_status st = state ? run_node(ctx, kern->run, state, g, ni, c->z ? 4 : 3, in, &yf) : MIXRT_STATUS_INTERNAL;
    TU_CHECK(st == MIXRT_STATUS_OK, "dp case %d: run: %s", id, mixrt_context_last_error(ctx));
    TU_CHECK(mixrt_dwconv_bf16dp_runs() == dps + 1, "dp case %d: did not take the AVX512-BF16 path", id);
    if (st == MIXRT_STATUS_OK) {
        size_t ny = mixrt_tensor_numel(&yf);
        double *ref = malloc(ny * sizeof(double)), *mag = malloc(ny * sizeof(double));
        dw_f64(c, g, wi, bi, tx, tz, yd, ref, mag);
        const double slope = c->act == 5 ? 1.5 : 1.0;
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < ny; i++) {
            double v = mixrt_load_f64(yf.data, yf.dtype, i), tol = ldexp(mag[i] + fabs(ref[i]), -8) * slope;
            if (!(fabs(v - ref[i]) <= tol) && bad++ == 0) first = i;
        }
        TU_CHECK(bad == 0,
                 "dp case %d (C=%lld %lldx%lld s=%lld,%lld d=%lld pads %lld,%lld,%lld,%lld%s%s act=%s): %zu of %zu "
                 "elements off, first #%zu: %g, f64 %g; rerun: test_dwconv --only %d",
                 id, (long long)c->c, (long long)c->h, (long long)c->w, (long long)c->sh, (long long)c->sw,
                 (long long)c->dh, (long long)c->pads[0], (long long)c->pads[1], (long long)c->pads[2],
                 (long long)c->pads[3], c->bias ? " B" : "", c->z ? " Z" : "", acts[c->act], bad, ny, first,
                 mixrt_load_f64(yf.data, yf.dtype, first), ref[first], id);
        free(ref);
        free(mag);
        mixrt_tensor_release(ctx, &yf);
    }
    if (state) kern->release(ctx, state);
    mixrt_tensor_destroy(ctx, tx);
    if (tz) mixrt_tensor_destroy(ctx, tz);
    mixrt_graph_destroy(g);
}

/* The AVX512-BF16 path: C around its 32-channel blocks and the 16-channel tail it leaves to the
 * FMA lanes, strides 1 and 2 (rows also 2 with dilation), borders on every side, with and without
 * B and Z, the activations it applies itself and one it leaves to f32 rows (HardSwish). */
static int run_dp(int id) {
    if (!mixrt_cpu_features()->avx512_bf16 || strcmp(mixrt_dwconv_isa()->name, "avx512")) {
        printf("test_dwconv: no AVX512-BF16: its path not tested\n");
        return id;
    }
    static const int64_t cs[] = {1, 15, 16, 17, 31, 32, 33, 47, 48, 144, 200};
    static const int act_of[] = {0, 1, 2, 3, 5};
    for (int r = 0; r < 66; r++) {
        struct dw_case c;
        memset(&c, 0, sizeof(c));
        c.n = r % 11 == 0 ? 2 : 1;
        c.c = cs[r % 11];
        c.kh = c.kw = 3;
        c.sw = 1 + (r / 11) % 2;
        c.sh = r % 3 == 0 ? 2 : c.sw;
        c.dh = r % 5 == 4 ? 2 : 1;
        c.dw = 1;
        for (int j = 0; j < 4; j++) c.pads[j] = r % 4 == 3 ? (int64_t)(tu_rand() % 3) : 1;
        c.h = 1 + (int64_t)(tu_rand() % 13);
        c.w = 3 + (int64_t)(tu_rand() % 20);
        if (r % 6 == 5) c.h = 20, c.w = 37; /* many interior blocks and rows */
        if (c.h + c.pads[0] + c.pads[2] < (c.kh - 1) * c.dh + 1) c.h = (c.kh - 1) * c.dh + 1;
        c.bias = r % 7 != 2;
        c.z = r % 3 == 1;
        c.act = act_of[r % 5];
        run_dp_case(++id, &c);
    }
    return id;
}

/* ---- guard pages: no read or write outside X, Z and Y ------------------------------------ */

/* Case c with X, Z and Y each against a guard page (after them, then before them); Y poisoned
 * with NaN first, so an element the kernel leaves unwritten shows as an error. */
static void run_guarded(int id, const struct dw_case *c, mixrt_dtype dt) {
    if (g_only && id != g_only) return;
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("dw_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    if (!kern) return;
    int ni, wi, bi;
    int64_t yd[4];
    struct mixrt_graph *g = build(c, dt, &ni, &wi, &bi, yd);
    const struct mixrt_node *n = &g->nodes[ni];
    struct mixrt_tensor *tx = rand_tensor(dt, 4, (int64_t[]){c->n, c->h, c->w, c->c});
    struct mixrt_tensor *tz = c->z ? rand_tensor(dt, 4, yd) : NULL;
    int n_in = c->z ? 4 : 3;
    void *state = NULL;
    TU_CHECK(kern->supports(g, n, NULL, 0) && kern->prepare(ctx, g, n, &state) == MIXRT_STATUS_OK,
             "guard case %d: refused or prepare failed", id);
    mixrt_kernel_fn ref;
    struct mixrt_tensor yr;
    const struct mixrt_tensor *rin[4] = {tx, g->values[wi].init, bi >= 0 ? g->values[bi].init : NULL, tz};
    TU_CHECK(mixrt_ref_find(ctx, n, &ref) == MIXRT_STATUS_OK &&
                 run_node(ctx, ref, NULL, g, ni, n_in, rin, &yr) == MIXRT_STATUS_OK,
             "guard case %d: reference failed", id);
    size_t ny = mixrt_tensor_numel(&yr), esz = mixrt_dtype_size(dt);
    for (int at_end = 0; at_end < 2 && state; at_end++) {
        struct kh_guarded gx, gz = {0}, gy;
        struct mixrt_tensor vx = kh_guarded_copy(tx, &gx, at_end), vz;
        if (tz) vz = kh_guarded_copy(tz, &gz, at_end);
        TU_CHECK(kh_guard_alloc(&gy, ny * esz, at_end), "guard pages: mmap failed");
        memset(gy.p, 0xff, ny * esz); /* NaN in f32 and bf16 */
        const struct mixrt_tensor *in[4] = {&vx, g->values[wi].init, bi >= 0 ? g->values[bi].init : NULL,
                                            tz ? &vz : NULL};
        const struct mixrt_seq *in_seq[4] = {NULL, NULL, NULL, NULL};
        bool wanted[1] = {true}, is_seq[1] = {false};
        struct mixrt_tensor out;
        memset(&out, 0, sizeof(out));
        out.data = gy.p, out.capacity = ny * esz, out.flags = MIXRT_TENSOR_PREBOUND | MIXRT_TENSOR_UNINIT;
        struct mixrt_kernel_ctx k = {.ctx = ctx, .graph = g, .node = n, .opset = 1, .n_in = n_in, .in = in,
                                     .in_seq = in_seq, .n_out = 1, .out = &out, .out_is_seq = is_seq,
                                     .out_wanted = wanted, .state = state};
        mixrt_status st = kern->run(&k);
        TU_CHECK(st == MIXRT_STATUS_OK && out.data == gy.p, "guard case %d: run: %s", id,
                 mixrt_context_last_error(ctx));
        if (st == MIXRT_STATUS_OK && out.data == gy.p) {
            double d = 0, sn = 0;
            for (size_t i = 0; i < ny; i++) {
                double a = mixrt_load_f64(gy.p, dt, i), b = mixrt_load_f64(yr.data, dt, i);
                d += (a - b) * (a - b), sn += b * b;
            }
            double e = sn > 0 ? sqrt(d / sn) : sqrt(d), tol = dt == MIXRT_DTYPE_BF16 ? 1e-2 : 1e-6;
            TU_CHECK(e <= tol, "guard case %d (%s, guard %s): rel err %g > %g; rerun: test_dwconv --only %d", id,
                     mixrt_dtype_name(dt), at_end ? "after" : "before", e, tol, id);
        }
        kh_guard_free(&gx);
        if (tz) kh_guard_free(&gz);
        kh_guard_free(&gy);
    }
    mixrt_tensor_release(ctx, &yr);
    if (state) kern->release(ctx, state);
    mixrt_tensor_destroy(ctx, tx);
    if (tz) mixrt_tensor_destroy(ctx, tz);
    mixrt_graph_destroy(g);
}

static int run_guards(int id) {
    static const struct dw_case gc[] = {
        {1, 17, 5, 6, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, true, true, 2},
        {1, 15, 7, 5, 3, 3, 2, 2, 1, 1, {1, 1, 1, 1}, NULL, false, true, 2},
        {1, 1, 4, 4, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, true, true, 1},
        {1, 33, 6, 7, 5, 5, 1, 1, 1, 1, {2, 2, 2, 2}, NULL, true, true, 3},
        {1, 32, 9, 8, 3, 3, 1, 1, 2, 2, {2, 2, 2, 2}, NULL, true, true, 0},
        {2, 16, 5, 9, 3, 5, 2, 1, 1, 1, {0, 2, 1, 2}, NULL, true, true, 6},
        {1, 31, 12, 17, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, true, true, 2},
    };
    static const mixrt_dtype dts[2] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};
    for (size_t i = 0; i < sizeof(gc) / sizeof(gc[0]); i++)
        for (int d = 0; d < 2; d++) run_guarded(++id, &gc[i], dts[d]);
    return id;
}

/* A node the kernel must refuse (supports() false with a reason). */
static void check_refuses(const char *what, struct mixrt_graph *g, int ni) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("dw_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    if (!kern) return;
    char why[256] = "";
    bool ok = kern->supports(g, &g->nodes[ni], why, sizeof(why));
    TU_CHECK(!ok && why[0], "refuse %s: supports() accepted it (or gave no reason)", what);
}

static void test_refusals(void) {
    struct dw_case c = {1, 16, 8, 8, 3, 3, 1, 1, 1, 1, {1, 1, 1, 1}, NULL, true, false, 0};
    int ni, wi, bi;
    int64_t yd[4];
    struct mixrt_graph *g = build(&c, MIXRT_DTYPE_F16, &ni, &wi, &bi, yd);
    check_refuses("f16", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, MIXRT_DTYPE_F32, &ni, &wi, &bi, yd); /* channels-first */
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, "channels_last")) g->nodes[ni].attrs[a].i = 0;
    check_refuses("channels_last 0", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, MIXRT_DTYPE_F32, &ni, &wi, &bi, yd); /* group 1: a dense conv */
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, "group")) g->nodes[ni].attrs[a].i = 1;
    check_refuses("group 1", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, MIXRT_DTYPE_F32, &ni, &wi, &bi, yd); /* multiplier 2: W [2C, 1, 3, 3] */
    struct mixrt_tensor *w2 = mixrt_arena_calloc(g->arena, 1, sizeof(*w2));
    TU_CHECK(mixrt_tensor_init(ctx, w2, MIXRT_DTYPE_F32, 4, (int64_t[]){32, 1, 3, 3}) == MIXRT_STATUS_OK, "w2");
    for (size_t i = 0; i < 288; i++) ((float *)w2->data)[i] = (float)tu_uniform(-1, 1);
    mixrt_tensor_release(ctx, g->values[wi].init);
    g->values[wi].init = w2;
    check_refuses("multiplier 2", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, MIXRT_DTYPE_F32, &ni, &wi, &bi, yd); /* W a graph input: not constant */
    g->values[wi].flags |= MIXRT_VALUE_GRAPH_INPUT;
    check_refuses("W not constant", g, ni);
    g->values[wi].flags &= ~MIXRT_VALUE_GRAPH_INPUT;
    mixrt_graph_destroy(g);

    g = build(&c, MIXRT_DTYPE_F32, &ni, &wi, &bi, yd); /* 1-D: X [N, W, C] */
    g->values[g->nodes[ni].inputs[0]].rank = 3;
    check_refuses("1-D", g, ni);
    mixrt_graph_destroy(g);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--only")) g_only = atoi(argv[i + 1]);
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    tu_seed(11);
    printf("test_dwconv: row kernel %s\n", mixrt_dwconv_isa()->name);
    int id = run_guards(run_all(0));
    id = run_dp(id);
    /* The AVX-512 kernel with bf16 rounded by integer arithmetic, then also without the
     * vdpbf16ps path (as on CPUs without AVX512-BF16: bf16 3x3 on the FMA path), then the scalar
     * twin, on the same cases (numbers go on from the first pass). */
    mixrt_dwconv_force_int_bf16(true);
    tu_seed(11);
    id = run_guards(run_all(id));
    mixrt_dwconv_force_no_bf16dp(true);
    unsigned long dps = mixrt_dwconv_bf16dp_runs();
    tu_seed(11);
    id = run_guards(run_all(id));
    TU_CHECK(mixrt_dwconv_bf16dp_runs() == dps, "force_no_bf16dp: the AVX512-BF16 path still ran");
    mixrt_dwconv_force_no_bf16dp(false);
    mixrt_dwconv_force_int_bf16(false);
    /* the AVX2 kernel (CPUs without AVX-512), also where AVX-512 would be chosen */
    if (mixrt_cpu_features()->avx2 && mixrt_cpu_features()->fma) {
        mixrt_dwconv_force_avx2(true);
        TU_CHECK(!strcmp(mixrt_dwconv_isa()->name, "avx2"), "force_avx2: the row kernel is %s",
                 mixrt_dwconv_isa()->name);
        tu_seed(11);
        id = run_guards(run_all(id));
        mixrt_dwconv_force_avx2(false);
    }
    mixrt_dwconv_force_scalar(true);
    tu_seed(11);
    run_guards(run_all(id));
    mixrt_dwconv_force_scalar(false);
    if (!g_only) test_refusals();
    mixrt_context_destroy(ctx);
    return tu_finish("test_dwconv");
}
