/* test_wino2.c - the bf16 Winograd F(2x2, 3x3) channels-last FusedConv (wino2.c,
 * "wino_bf16_nhwc") on random data: image sizes odd and even (a last tile row or column of one
 * pixel), pads 0, 1, 2 and uneven ones, input channels on and around the pair and the 16-lane
 * vector (1, 2, 3, 15, 16, 17, 33, 64), output channels on and around the 16-channel blocks and
 * the 6-block tile, one and two images, with and without B and Z, every activation (those the
 * transform applies and those run over f32 afterwards), bf16 and f32 weights, and shapes of
 * several blocks of tiles (ResNet's 56x56x64). Each output against the reference kernel
 * (relative norm), and element by element against an f64 computation within what the bf16
 * rounding of V = B^T d B and U = G g G^T allows: the f64 Winograd magnitude
 * sum over positions |A coefficient| sum over c |V U| (computed here from the exact V and U)
 * times 2^-7, plus the final rounding; X, Z and Y against guard pages; the AVX-512 transforms and
 * tile kernel where the CPU has AVX512-BF16 (reported as skipped where not), the scalar twins
 * always; then the cases it must refuse, and two nodes sharing one W's transformed copy.
 * Usage: test_wino2 [--only N] (N: a case number, as printed on failure)
 *        test_wino2 --bench  (times against oneDNN's kernels on ResNet-50's 3x3 shapes; prints
 *                             only, asserts nothing about time) */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/exec_ref.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/wino2_impl.h"
#include "graph_build.h"
#include "kernel_harness.h"
#include "testutil.h"

static mixrt_context_t ctx;
static int g_only;

/* One node: X [N, H, W, C] -> Y [N, OH, OW, M]; pads top, left, bottom, right. bias: 0 none,
 * 1 constant. */
struct w2_case {
    int64_t n, h, w, c, m;
    int64_t pads[4];
    int bias;
    bool z;
    int act; /* enum mixrt_fconv_act */
    mixrt_dtype wdt;
};

static struct mixrt_graph *new_graph(void) {
    struct mixrt_graph *g = NULL;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    static const struct mixrt_opset op17 = {"", 17};
    g->opsets = &op17;
    g->n_opsets = 1;
    return g;
}

static struct mixrt_tensor *rand_tensor(mixrt_dtype dt, int rank, const int64_t *dims, double a) {
    struct mixrt_tensor *t = NULL;
    TU_CHECK(mixrt_tensor_create(ctx, dt, rank, dims, &t) == MIXRT_STATUS_OK, "tensor create");
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) mixrt_store_f64(t->data, dt, i, tu_uniform(-a, a));
    return t;
}

static int g_wi, g_bi; /* W's and B's values in the graph build() made last */

static struct mixrt_graph *build(const struct w2_case *c, int *ni_out, int64_t *yd) {
    struct mixrt_graph *g = new_graph();
    const int64_t xd[4] = {c->n, c->h, c->w, c->c};
    yd[0] = c->n, yd[1] = c->h + c->pads[0] + c->pads[2] - 2, yd[2] = c->w + c->pads[1] + c->pads[3] - 2,
    yd[3] = c->m;
    int x = add_input(g, "x", MIXRT_DTYPE_BF16, 4, xd);
    g_wi = add_const_uniform(ctx, g, "w", c->wdt, 4, (int64_t[]){c->m, c->c, 3, 3}, 1.7 / sqrt(9.0 * (double)c->c));
    g_bi = c->bias == 1 ? add_const_uniform(ctx, g, "b", c->wdt, 1, &c->m, 0.5) : -1; /* W's dtype, as the planner gives */
    int z = c->z ? add_input(g, "z", MIXRT_DTYPE_BF16, 4, yd) : -1;
    int ni = add_fused_conv_nhwc(g, "w2", x, g_wi, g_bi, z, "y", MIXRT_DTYPE_BF16, yd, 3, 3, c->pads);
    node_attr_str(g, ni, "activation", mixrt_fconv_act_names[c->act]);
    if (c->act == MIXRT_FCONV_CLIP) node_attr_floats(g, ni, "activation_params", 2, (float[]){-0.5f, 0.75f});
    if (c->act == MIXRT_FCONV_LEAKY_RELU) node_attr_floats(g, ni, "activation_params", 1, (float[]){0.1f});
    *ni_out = ni;
    return g;
}

/* Y of case c in f64 (the direct convolution of the bf16 X and the graph's W, bias, Z, the
 * activation), and per element the f64 Winograd magnitude: over the 16 positions of its tile,
 * |A^T coefficient of its pixel| times sum over c of |V U| with V = B^T d B and U = G g G^T exact
 * (what the bf16 roundings of V and U can move the pre-activation sum by is 2^-8 of it). */
static void w2_f64(const struct w2_case *c, const struct mixrt_tensor *x, const struct mixrt_tensor *w,
                   const struct mixrt_tensor *b, const struct mixrt_tensor *z, float p0, float p1, const int64_t *yd,
                   double *y, double *mag) {
    static const double BT[4][4] = {{1, 0, -1, 0}, {0, 1, 1, 0}, {0, -1, 1, 0}, {0, 1, 0, -1}};
    static const double G[4][3] = {{1, 0, 0}, {0.5, 0.5, 0.5}, {0.5, -0.5, 0.5}, {0, 0, 1}};
    static const double AT[2][4] = {{1, 1, 1, 0}, {0, 1, -1, -1}};
    const int64_t C = c->c, M = c->m, H = c->h, W = c->w, OH = yd[1], OW = yd[2];
    double *u = malloc((size_t)(M * C) * 16 * sizeof(double)), *v = malloc((size_t)C * 16 * sizeof(double));
    TU_CHECK(u && v, "f64 scratch");
    for (int64_t m = 0; m < M; m++)
        for (int64_t ci = 0; ci < C; ci++) {
            double gk[9], t[4][3];
            for (int i = 0; i < 9; i++) gk[i] = mixrt_load_f64(w->data, w->dtype, (size_t)((m * C + ci) * 9 + i));
            for (int i = 0; i < 4; i++)
                for (int q = 0; q < 3; q++) t[i][q] = G[i][0] * gk[q] + G[i][1] * gk[3 + q] + G[i][2] * gk[6 + q];
            for (int i = 0; i < 4; i++)
                for (int j = 0; j < 4; j++)
                    u[(size_t)((m * C + ci) * 16 + i * 4 + j)] = t[i][0] * G[j][0] + t[i][1] * G[j][1] + t[i][2] * G[j][2];
        }
    for (int64_t nb = 0; nb < c->n; nb++)
        for (int64_t ty = 0; ty < (OH + 1) / 2; ty++)
            for (int64_t tx = 0; tx < (OW + 1) / 2; tx++) {
                for (int64_t ci = 0; ci < C; ci++) {
                    double d[4][4];
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) {
                            const int64_t iy = 2 * ty - c->pads[0] + i, ix = 2 * tx - c->pads[1] + j;
                            d[i][j] = iy >= 0 && iy < H && ix >= 0 && ix < W
                                          ? mixrt_load_f64(x->data, x->dtype, (size_t)(((nb * H + iy) * W + ix) * C + ci))
                                          : 0.0;
                        }
                    for (int i = 0; i < 4; i++)
                        for (int j = 0; j < 4; j++) {
                            double s = 0;
                            for (int a = 0; a < 4; a++)
                                for (int q = 0; q < 4; q++) s += BT[i][a] * d[a][q] * BT[j][q];
                            v[ci * 16 + i * 4 + j] = s;
                        }
                }
                for (int r = 0; r < 2; r++)
                    for (int q = 0; q < 2; q++) {
                        const int64_t oy = 2 * ty + r, ox = 2 * tx + q;
                        if (oy >= OH || ox >= OW) continue;
                        for (int64_t m = 0; m < M; m++) {
                            double acc = b ? mixrt_load_f64(b->data, b->dtype, (size_t)m) : 0.0, mg = 0;
                            for (int64_t ci = 0; ci < C; ci++) /* the direct convolution */
                                for (int ky = 0; ky < 3; ky++)
                                    for (int kx = 0; kx < 3; kx++) {
                                        const int64_t iy = oy - c->pads[0] + ky, ix = ox - c->pads[1] + kx;
                                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                        acc += mixrt_load_f64(x->data, x->dtype, (size_t)(((nb * H + iy) * W + ix) * C + ci)) *
                                               mixrt_load_f64(w->data, w->dtype, (size_t)((m * C + ci) * 9 + ky * 3 + kx));
                                    }
                            for (int xi = 0; xi < 16; xi++) {
                                const double co = fabs(AT[r][xi / 4] * AT[q][xi % 4]);
                                if (co == 0) continue;
                                double s = 0;
                                for (int64_t ci = 0; ci < C; ci++) s += fabs(v[ci * 16 + xi] * u[(size_t)((m * C + ci) * 16 + xi)]);
                                mg += co * s;
                            }
                            const size_t at = (size_t)(((nb * OH + oy) * OW + ox) * M + m);
                            if (z) acc += mixrt_load_f64(z->data, z->dtype, at);
                            y[at] = mixrt_fconv_apply((enum mixrt_fconv_act)c->act, p0, p1, acc);
                            mag[at] = mg;
                        }
                    }
            }
    free(u);
    free(v);
}

/* Case id: the kernel (AVX-512 or scalar twins, as forced) against the reference kernel and
 * element by element against f64: |y - f64| <= 2^-8 |f64| + 1.5 (2^-7 mag) + 1e-4 |f64| (the
 * final rounding's 2^-9 twice; the V and U roundings' 2^-8 of the magnitude twice, through an
 * activation of slope at most 1.5; SiLU's approximation). With guard: X, Z and Y against guard
 * pages, after and before them, Y filled with NaN first. */
static void run_case(int id, const struct w2_case *c, bool guard) {
    if (g_only && id != g_only) return;
    char desc[220];
    snprintf(desc, sizeof(desc), "N=%lld %lldx%lld C=%lld M=%lld pads %lld,%lld,%lld,%lld W %s B %s%s act=%s%s",
             (long long)c->n, (long long)c->h, (long long)c->w, (long long)c->c, (long long)c->m,
             (long long)c->pads[0], (long long)c->pads[1], (long long)c->pads[2], (long long)c->pads[3],
             mixrt_dtype_name(c->wdt), c->bias ? "const" : "none", c->z ? " Z" : "",
             mixrt_fconv_act_names[c->act][0] ? mixrt_fconv_act_names[c->act] : "none", guard ? " guarded" : "");
    int ni;
    int64_t yd[4];
    struct mixrt_graph *g = build(c, &ni, yd);
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("wino_bf16_nhwc", MIXRT_DOMAIN, "FusedConv");
    mixrt_kernel_fn ref;
    TU_CHECK(kern != NULL, "case %d: wino_bf16_nhwc is not registered", id);
    TU_CHECK(mixrt_ref_find(ctx, n, &ref) == MIXRT_STATUS_OK, "case %d: no reference kernel", id);
    char why[256] = "";
    bool ok = kern && kern->supports(g, n, why, sizeof(why));
    TU_CHECK(ok, "case %d %s: refused: %s; rerun: test_wino2 --only %d", id, desc, why, id);
    struct mixrt_tensor *tx = rand_tensor(MIXRT_DTYPE_BF16, 4, (int64_t[]){c->n, c->h, c->w, c->c}, 1.0);
    struct mixrt_tensor *tz = c->z ? rand_tensor(MIXRT_DTYPE_BF16, 4, yd, 1.0) : NULL;
    const struct mixrt_tensor *w = g->values[g_wi].init, *b = c->bias ? g->values[g_bi].init : NULL;
    const struct mixrt_tensor *in[4] = {tx, w, b, tz};
    const int n_in = c->z ? 4 : 3;
    void *state = NULL;
    if (ok) {
        mixrt_status st = kern->prepare(ctx, g, n, &state);
        TU_CHECK(st == MIXRT_STATUS_OK, "case %d %s: prepare: %s", id, desc, mixrt_context_last_error(ctx));
        struct mixrt_tensor yr;
        memset(&yr, 0, sizeof(yr));
        mixrt_status sr = run_node_into(ctx, ref, NULL, g, ni, n_in, in, &yr, NULL);
        TU_CHECK(sr == MIXRT_STATUS_OK, "case %d %s: reference: %s", id, desc, mixrt_context_last_error(ctx));
        const size_t ny = (size_t)(yd[0] * yd[1] * yd[2] * yd[3]);
        struct kh_guarded gx = {0}, gz = {0}, gy = {0};
        for (int rep = 0; rep < 2 && st == MIXRT_STATUS_OK && sr == MIXRT_STATUS_OK; rep++) {
            /* guard: rep 0 against the page after, rep 1 before; else the second run reuses the state */
            struct mixrt_tensor yf, vx = *tx, vz;
            const struct mixrt_tensor *rin[4] = {tx, w, b, tz};
            memset(&yf, 0, sizeof(yf));
            if (guard) {
                vx = kh_guarded_copy(tx, &gx, rep == 0);
                if (tz) vz = kh_guarded_copy(tz, &gz, rep == 0);
                TU_CHECK(kh_guard_alloc(&gy, ny * 2, rep == 0), "guard pages: mmap failed");
                memset(gy.p, 0xff, ny * 2); /* NaN */
                yf.data = gy.p, yf.capacity = ny * 2, yf.flags = MIXRT_TENSOR_PREBOUND | MIXRT_TENSOR_UNINIT;
                rin[0] = &vx, rin[3] = tz ? &vz : NULL;
            }
            unsigned long refs = mixrt_wino2_ref_runs();
            mixrt_status sf = run_node_into(ctx, kern->run, state, g, ni, n_in, rin, &yf, NULL);
            TU_CHECK(sf == MIXRT_STATUS_OK, "case %d %s: run: %s", id, desc, mixrt_context_last_error(ctx));
            TU_CHECK(mixrt_wino2_ref_runs() == refs, "case %d %s: ran the reference, not the kernel", id, desc);
            if (sf == MIXRT_STATUS_OK) {
                TU_CHECK(yf.dtype == MIXRT_DTYPE_BF16 && yf.rank == 4 && !memcmp(yf.dims, yd, sizeof(yd)) &&
                             (!guard || yf.data == gy.p),
                         "case %d %s: output shape, dtype or buffer wrong", id, desc);
                double d = 0, s = 0;
                for (size_t i = 0; i < ny; i++) {
                    double a = mixrt_load_f64(yf.data, MIXRT_DTYPE_BF16, i), r = mixrt_load_f64(yr.data, yr.dtype, i);
                    d += (a - r) * (a - r), s += r * r;
                }
                double e = s > 0 ? sqrt(d / s) : sqrt(d);
                TU_CHECK(e <= 2e-2, "case %d %s: rel err %g against the reference > 2e-2; rerun: test_wino2 --only %d",
                         id, desc, e, id);
                if (rep == 0) {
                    double *r64 = malloc(ny * sizeof(double)), *mag = malloc(ny * sizeof(double));
                    enum mixrt_fconv_act act;
                    float p0, p1;
                    TU_CHECK(r64 && mag && mixrt_fconv_read_act(n, &act, &p0, &p1), "case %d: f64 setup", id);
                    w2_f64(c, tx, w, b, tz, p0, p1, yd, r64, mag);
                    size_t bad = 0, first = 0;
                    for (size_t i = 0; i < ny; i++) {
                        double v = mixrt_load_f64(yf.data, MIXRT_DTYPE_BF16, i);
                        double tol = ldexp(fabs(r64[i]), -8) + 1.5 * ldexp(mag[i], -7) + 1e-4 * fabs(r64[i]);
                        if (!(fabs(v - r64[i]) <= tol) && bad++ == 0) first = i;
                    }
                    TU_CHECK(bad == 0,
                             "case %d %s: %zu of %zu elements off f64, first #%zu: %g, f64 %g (magnitude %g); rerun: "
                             "test_wino2 --only %d",
                             id, desc, bad, ny, first, mixrt_load_f64(yf.data, MIXRT_DTYPE_BF16, first), r64[first],
                             mag[first], id);
                    free(r64);
                    free(mag);
                }
            }
            if (guard) {
                kh_guard_free(&gx);
                if (tz) kh_guard_free(&gz);
                kh_guard_free(&gy);
            } else if (sf == MIXRT_STATUS_OK) {
                mixrt_tensor_release(ctx, &yf);
            }
        }
        if (sr == MIXRT_STATUS_OK) mixrt_tensor_release(ctx, &yr);
        kern->release(ctx, state);
    }
    mixrt_tensor_destroy(ctx, tx);
    if (tz) mixrt_tensor_destroy(ctx, tz);
    mixrt_graph_destroy(g);
}

static int64_t pick(const int64_t *v, size_t n) { return v[tu_rand() % n]; }

static int run_all(int id) {
    /* Hand-picked: ResNet-50's 3x3 layers (56x56x64: seven blocks of tiles; 7x7x512: a one-pixel
     * last tile row and column), a SiLU and a GELU one (the staged path). */
    static const struct w2_case fixed[] = {
        {1, 56, 56, 64, 64, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_F32},
        {1, 28, 28, 128, 128, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_F32},
        {1, 14, 14, 256, 256, {1, 1, 1, 1}, 1, true, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
        {1, 7, 7, 512, 48, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_NONE, MIXRT_DTYPE_F32},
        {2, 9, 11, 40, 72, {1, 1, 1, 1}, 1, true, MIXRT_FCONV_SILU, MIXRT_DTYPE_BF16},
        {1, 10, 6, 24, 100, {1, 1, 1, 1}, 0, false, MIXRT_FCONV_GELU, MIXRT_DTYPE_BF16},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) run_case(++id, &fixed[i], false);
    /* Random: C and M on and around the pair, vector, block and tile sizes, 1-7 pixels a side,
     * pads 0-2 each side (uneven too), every activation, B or not, Z or not, W bf16 or f32. */
    static const int64_t cs[] = {1, 2, 3, 15, 16, 17, 33, 64};
    static const int64_t ms[] = {1, 15, 16, 17, 33, 95, 96, 97, 112};
    for (int r = 0; r < 120; r++) {
        struct w2_case c;
        memset(&c, 0, sizeof(c));
        c.n = r % 7 == 0 ? 2 : 1;
        for (int i = 0; i < 4; i++) c.pads[i] = r % 3 == 0 ? (int64_t)(tu_rand() % 3) : 1;
        c.h = 1 + (int64_t)(tu_rand() % 7);
        c.w = 1 + (int64_t)(tu_rand() % 7);
        while (c.h + c.pads[0] + c.pads[2] < 3) c.h++;
        while (c.w + c.pads[1] + c.pads[3] < 3) c.w++;
        c.c = pick(cs, 8), c.m = pick(ms, 9);
        c.bias = (int)(tu_rand() % 2), c.z = tu_rand() % 2;
        c.act = r % MIXRT_FCONV_ACT_COUNT;
        c.wdt = r % 4 == 3 ? MIXRT_DTYPE_F32 : MIXRT_DTYPE_BF16;
        run_case(++id, &c, false);
    }
    /* Against guard pages: odd C (the last pair's word past a V row), partial blocks and
     * vectors, one-pixel last tiles, Z, pads on the far sides only. */
    static const struct w2_case gc[] = {
        {1, 5, 7, 17, 33, {1, 1, 1, 1}, 1, true, MIXRT_FCONV_SILU, MIXRT_DTYPE_BF16},
        {1, 3, 3, 3, 97, {0, 0, 2, 2}, 1, true, MIXRT_FCONV_GELU, MIXRT_DTYPE_BF16},
        {2, 4, 5, 33, 15, {2, 0, 1, 1}, 0, true, MIXRT_FCONV_RELU, MIXRT_DTYPE_F32},
        {1, 3, 3, 1, 1, {0, 0, 0, 0}, 1, false, MIXRT_FCONV_NONE, MIXRT_DTYPE_BF16},
    };
    for (size_t i = 0; i < sizeof(gc) / sizeof(gc[0]); i++) run_case(++id, &gc[i], true);
    return id;
}

/* A node the kernel must refuse (supports() false with a reason). */
static void check_refuses(const char *what, struct mixrt_graph *g, int ni) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("wino_bf16_nhwc", MIXRT_DOMAIN, "FusedConv");
    if (!kern) return;
    char why[256] = "";
    bool ok = kern->supports(g, &g->nodes[ni], why, sizeof(why));
    TU_CHECK(!ok && why[0], "refuse %s: supports() accepted it (or gave no reason)", what);
}

static void set_attr_int(struct mixrt_graph *g, int ni, const char *name, int64_t v) {
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, name)) g->nodes[ni].attrs[a].i = v;
}

static void set_attr_ints0(struct mixrt_graph *g, int ni, const char *name, int64_t v) {
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, name)) g->nodes[ni].attrs[a].ints[0] = v;
}

/* The kernel takes 3x3 layers of at least 256 input channels, and refuses fewer. */
static void test_min_channels(bool hw) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("wino_bf16_nhwc", MIXRT_DOMAIN, "FusedConv");
    TU_CHECK(kern != NULL, "wino_bf16_nhwc is not registered");
    if (!kern) return;
    static const int64_t cs[] = {16, 32, 63, 64, 128, 256, 512};
    for (size_t i = 0; i < sizeof(cs) / sizeof(cs[0]); i++) {
        const struct w2_case c = {1, 6, 6, cs[i], 32, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_NONE, MIXRT_DTYPE_BF16};
        int ni;
        int64_t yd[4];
        struct mixrt_graph *g = build(&c, &ni, yd);
        char why[256] = "";
        const bool ok = kern->supports(g, &g->nodes[ni], why, sizeof(why));
        const bool want = hw && cs[i] >= 64;
        TU_CHECK(ok == want, "C = %lld: supports() %s (%s)", (long long)cs[i], ok ? "took it" : "refused it", why);
        if (!want && hw) TU_CHECK(strstr(why, "input channels") != NULL, "C = %lld: reason '%s'", (long long)cs[i], why);
        mixrt_graph_destroy(g);
    }
}

static void test_refusals(void) {
    const struct w2_case c = {1, 6, 6, 16, 32, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_NONE, MIXRT_DTYPE_BF16};
    int ni;
    int64_t yd[4];
    struct mixrt_graph *g = build(&c, &ni, yd);
    g->values[g->nodes[ni].inputs[0]].dtype = MIXRT_DTYPE_F32;
    g->values[g->nodes[ni].outputs[0]].dtype = MIXRT_DTYPE_F32;
    check_refuses("f32 X and Y", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    set_attr_int(g, ni, "channels_last", 0);
    check_refuses("channels_last 0", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    set_attr_int(g, ni, "group", 2);
    check_refuses("group 2", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g_wi].flags |= MIXRT_VALUE_GRAPH_INPUT;
    check_refuses("W not constant", g, ni);
    g->values[g_wi].flags &= ~MIXRT_VALUE_GRAPH_INPUT;
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g_bi].flags |= MIXRT_VALUE_GRAPH_INPUT;
    check_refuses("B not constant", g, ni);
    g->values[g_bi].flags &= ~MIXRT_VALUE_GRAPH_INPUT;
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    set_attr_ints0(g, ni, "strides", 2);
    check_refuses("stride 2", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    node_attr_ints(g, ni, "dilations", 2, (int64_t[]){2, 2});
    check_refuses("dilation 2", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    node_attr_str(g, ni, "auto_pad", "SAME_UPPER");
    check_refuses("auto_pad SAME_UPPER", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd); /* a 1x3 kernel: W [M, C, 1, 3] */
    struct mixrt_tensor *w = g->values[g_wi].init;
    w->dims[2] = 1;
    check_refuses("1x3 kernel", g, ni);
    w->dims[2] = 3;
    mixrt_graph_destroy(g);
}

/* Tied weights: two nodes reading one W (x -> conv -> conv, C == M) share one transformed copy
 * (one transform for both prepares; a second W makes its own), which outlives the first
 * node's release: the second node's output against the reference after it. */
static void test_tied(void) {
    const struct w2_case c = {1, 6, 5, 24, 24, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_F32};
    int n0;
    int64_t yd[4];
    struct mixrt_graph *g = build(&c, &n0, yd);
    const int y0 = g->nodes[n0].outputs[0], wi = g_wi, bi = g_bi;
    int n1 = add_fused_conv_nhwc(g, "w2b", y0, wi, bi, -1, "y2", MIXRT_DTYPE_BF16, yd, 3, 3, c.pads);
    node_attr_str(g, n1, "activation", "Relu");
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("wino_bf16_nhwc", MIXRT_DOMAIN, "FusedConv");
    mixrt_kernel_fn ref;
    TU_CHECK(kern && mixrt_ref_find(ctx, &g->nodes[n1], &ref) == MIXRT_STATUS_OK, "tied: kernels");
    if (!kern) {
        mixrt_graph_destroy(g);
        return;
    }
    void *s0 = NULL, *s1 = NULL;
    unsigned long r0 = mixrt_wino2_transforms();
    TU_CHECK(kern->prepare(ctx, g, &g->nodes[n0], &s0) == MIXRT_STATUS_OK &&
                 kern->prepare(ctx, g, &g->nodes[n1], &s1) == MIXRT_STATUS_OK,
             "tied: prepare: %s", mixrt_context_last_error(ctx));
    TU_CHECK(mixrt_wino2_transforms() - r0 == 1, "tied: %lu weight transforms for two nodes of one W, expected 1",
             mixrt_wino2_transforms() - r0);
    kern->release(ctx, s0);
    struct mixrt_tensor *tx = rand_tensor(MIXRT_DTYPE_BF16, 4, yd, 1.0);
    const struct mixrt_tensor *in[3] = {tx, g->values[wi].init, g->values[bi].init};
    struct mixrt_tensor yf, yr;
    memset(&yf, 0, sizeof(yf));
    memset(&yr, 0, sizeof(yr));
    if (s1 && run_node_into(ctx, kern->run, s1, g, n1, 3, in, &yf, NULL) == MIXRT_STATUS_OK &&
        run_node_into(ctx, ref, NULL, g, n1, 3, in, &yr, NULL) == MIXRT_STATUS_OK) {
        double d = 0, q = 0;
        for (size_t i = 0; i < mixrt_tensor_numel(&yr); i++) {
            double a = mixrt_load_f64(yf.data, yf.dtype, i), r = mixrt_load_f64(yr.data, yr.dtype, i);
            d += (a - r) * (a - r), q += r * r;
        }
        TU_CHECK(q > 0 && sqrt(d / q) <= 2e-2, "tied: the second node after the first's release: rel err %g",
                 q > 0 ? sqrt(d / q) : -1.0);
        mixrt_tensor_release(ctx, &yf);
        mixrt_tensor_release(ctx, &yr);
    } else {
        TU_CHECK(false, "tied: run: %s", mixrt_context_last_error(ctx));
    }
    kern->release(ctx, s1);
    mixrt_tensor_destroy(ctx, tx);
    mixrt_graph_destroy(g);
    /* an untied twin: its own W, its own transform */
    g = build(&c, &n0, yd);
    r0 = mixrt_wino2_transforms();
    s0 = NULL;
    TU_CHECK(kern->prepare(ctx, g, &g->nodes[n0], &s0) == MIXRT_STATUS_OK && mixrt_wino2_transforms() - r0 == 1,
             "tied: a fresh W did not get its own transform");
    kern->release(ctx, s0);
    mixrt_graph_destroy(g);
}

/* ---- --bench: against oneDNN's kernels on ResNet-50's 3x3 stride-1 shapes ---- */

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static double time_kernel(const struct mixrt_cpu_kernel *kern, struct mixrt_graph *g, int ni, int n_in,
                          const struct mixrt_tensor **in, struct mixrt_tensor *yf) {
    void *state = NULL;
    if (!kern->supports(g, &g->nodes[ni], NULL, 0) || kern->prepare(ctx, g, &g->nodes[ni], &state) != MIXRT_STATUS_OK)
        return -1;
    struct mixrt_exec_scratch scratch = {0};
    double best = 1e30;
    for (int r = 0; r < 60; r++) {
        double t0 = now_ms();
        if (run_node_into(ctx, kern->run, state, g, ni, n_in, in, yf, &scratch) != MIXRT_STATUS_OK) best = -1;
        double t = now_ms() - t0;
        if (best >= 0 && t < best) best = t;
    }
    if (scratch.p) mixrt_free(ctx, scratch.p, scratch.bytes);
    kern->release(ctx, state);
    return best;
}

static void bench(void) {
    /* bf16 W and B, as the planner gives the layers (oneDNN refuses mixed dtypes) */
    static const struct w2_case shapes[] = {
        {1, 56, 56, 64, 64, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
        {1, 28, 28, 128, 128, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
        {1, 14, 14, 256, 256, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
        {1, 7, 7, 512, 512, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
        /* GoogLeNet's and Inception-v3's smaller ones */
        {1, 56, 56, 64, 192, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
        {1, 28, 28, 96, 128, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
        {1, 14, 14, 112, 224, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
        {1, 28, 28, 32, 96, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
        {1, 35, 35, 64, 96, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
        {1, 14, 14, 16, 48, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
    };
    /* wino_bf16_nhwc by its default schedule, then by the blocked one, then oneDNN's */
    static const char *const names[] = {"wino_bf16_nhwc", "wino_bf16_nhwc", "dnnl_fused_conv"};
    static const char *const labels[] = {"wino_bf16_nhwc", "wino_bf16_nhwc(blocked)", "dnnl_fused_conv"};
    mixrt_wino2_min_channels(1);
    for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
        if (getenv("W2_SHAPE") && atoi(getenv("W2_SHAPE")) != (int)s) continue;
        const struct w2_case *c = &shapes[s];
        int ni;
        int64_t yd[4];
        struct mixrt_graph *g = build(c, &ni, yd);
        struct mixrt_tensor *tx = rand_tensor(MIXRT_DTYPE_BF16, 4, (int64_t[]){c->n, c->h, c->w, c->c}, 1.0);
        const struct mixrt_tensor *in[3] = {tx, g->values[g_wi].init, g->values[g_bi].init};
        const size_t ny = (size_t)(yd[0] * yd[1] * yd[2] * yd[3]);
        void *ybuf = malloc(ny * 2);
        const double gflop = 2.0 * (double)ny * (double)c->c * 9 / 1e9;
        printf("bench %lldx%lldx%lld -> %lld:", (long long)c->h, (long long)c->w, (long long)c->c, (long long)c->m);
        for (int k = 0; k < 3; k++) {
            const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find(names[k], MIXRT_DOMAIN, "FusedConv");
            mixrt_wino2_force_groups(k == 1 ? 0 : -1);
            struct mixrt_tensor yf;
            memset(&yf, 0, sizeof(yf));
            yf.data = ybuf, yf.capacity = ny * 2, yf.flags = MIXRT_TENSOR_PREBOUND | MIXRT_TENSOR_UNINIT;
            double ms = kern ? time_kernel(kern, g, ni, 3, in, &yf) : -1;
            if (ms > 0) printf("  %s %.3f ms (%.0f GFLOP/s direct-equivalent)", labels[k], ms, gflop / ms * 1e3);
            else printf("  %s -", labels[k]);
        }
        mixrt_wino2_force_groups(-1);
        printf("\n");
        free(ybuf);
        mixrt_tensor_destroy(ctx, tx);
        mixrt_graph_destroy(g);
    }
}

int main(int argc, char **argv) {
    bool do_bench = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) g_only = atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--bench")) do_bench = true;
    }
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    tu_seed(29);
    if (do_bench) {
        bench();
        mixrt_context_destroy(ctx);
        return 0;
    }
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    const bool hw = f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx512_bf16;
    int id = 0;
    if (!g_only) test_min_channels(hw);
    mixrt_wino2_min_channels(1); /* the cases below are small */
    if (hw) {
        printf("test_wino2: the AVX-512 transforms and AVX512-BF16 tile kernel\n");
        tu_seed(29);
        id = run_all(0);
        /* both schedules on every case: the tile groups a thread, and the blocked one */
        for (int sched = 0; sched < 2; sched++) {
            printf("test_wino2: the same cases by the %s schedule\n", sched ? "grouped" : "blocked");
            mixrt_wino2_force_groups(sched);
            tu_seed(29);
            id = run_all(id);
        }
        mixrt_wino2_force_groups(-1);
    } else {
        printf("test_wino2: SKIPPED the AVX-512 transforms and AVX512-BF16 tile kernel (this CPU has no "
               "AVX512-BF16); the scalar twins still run\n");
        const struct w2_case c = {1, 6, 6, 16, 32, {1, 1, 1, 1}, 1, false, MIXRT_FCONV_NONE, MIXRT_DTYPE_BF16};
        int ni;
        int64_t yd[4];
        struct mixrt_graph *g = build(&c, &ni, yd);
        check_refuses("no AVX512-BF16", g, ni);
        mixrt_graph_destroy(g);
        id = 1000;
    }
    mixrt_wino2_force_scalar(true);
    printf("test_wino2: the scalar twins\n");
    tu_seed(29);
    run_all(id);
    if (!g_only) test_refusals(), test_tied();
    mixrt_wino2_force_scalar(false);
    mixrt_context_destroy(ctx);
    return tu_finish("test_wino2");
}
