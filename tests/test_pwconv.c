/* test_pwconv.c - the pointwise channels-last bf16 FusedConv kernel (pwconv.c, "pw_conv_nhwc")
 * on random data: input channels K on and around the pair and tile sizes (1, 2, 3, 15, 16, 17,
 * 24, 255, 256), output channels on and around the 16-channel blocks and the 6-block tile, pixel
 * counts on and around the 4-row tile, with and without B (constant, or an input read at run time)
 * and Z, every activation (those the tile kernel applies and those run over f32 rows afterwards),
 * bf16 and f32 weights. Each output against the reference kernel (relative norm), and, for bf16
 * weights, element by element against an f64 computation within what the f32 sums and the one
 * rounding to bf16 allow; X, Z and Y against guard pages (no access outside them, every output
 * written); the AVX512-BF16 tile kernel where the CPU has it (reported as skipped where not), and
 * the scalar twin always; then the cases it must refuse.
 * Usage: test_pwconv [--only N] (N: a case number, as printed on failure). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/exec_ref.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/pwconv_impl.h"
#include "kernel_harness.h"
#include "testutil.h"
#include "graph_build.h"

static mixrt_context_t ctx;
static int g_only;

/* One node: X [N, H, W, K] -> Y [N, H, W, M]. bias: 0 none, 1 constant, 2 an input. */
struct pw_case {
    int64_t n, h, w, k, m;
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

static struct mixrt_graph *build(const struct pw_case *c, int *ni_out, int64_t *yd) {
    struct mixrt_graph *g = new_graph();
    const int64_t xd[4] = {c->n, c->h, c->w, c->k};
    yd[0] = c->n, yd[1] = c->h, yd[2] = c->w, yd[3] = c->m;
    int x = add_input(g, "x", MIXRT_DTYPE_BF16, 4, xd);
    g_wi = add_const_uniform(ctx, g, "w", c->wdt, 4, (int64_t[]){c->m, c->k, 1, 1}, 1.7 / sqrt((double)c->k));
    g_bi = -1;
    if (c->bias == 1) g_bi = add_const_uniform(ctx, g, "b", MIXRT_DTYPE_BF16, 1, &c->m, 0.5);
    if (c->bias == 2) g_bi = add_input(g, "b", MIXRT_DTYPE_F32, 1, &c->m);
    int z = c->z ? add_input(g, "z", MIXRT_DTYPE_BF16, 4, yd) : -1;
    int ni = add_fused_conv_nhwc(g, "pw", x, g_wi, g_bi, z, "y", MIXRT_DTYPE_BF16, yd, 1, 1, (int64_t[]){0, 0, 0, 0});
    node_attr_str(g, ni, "activation", mixrt_fconv_act_names[c->act]);
    if (c->act == MIXRT_FCONV_CLIP) node_attr_floats(g, ni, "activation_params", 2, (float[]){-0.5f, 0.75f});
    if (c->act == MIXRT_FCONV_LEAKY_RELU) node_attr_floats(g, ni, "activation_params", 1, (float[]){0.1f});
    *ni_out = ni;
    return g;
}

/* Y of case c in f64 from the graph's bf16 W (exact), and per element sum |x w| (what the f32
 * sums can move it by). */
static void pw_f64(const struct pw_case *c, const struct mixrt_tensor *x, const struct mixrt_tensor *w,
                   const struct mixrt_tensor *b, const struct mixrt_tensor *z, float p0, float p1, double *y,
                   double *mag) {
    const int64_t rows = c->n * c->h * c->w;
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < c->m; j++) {
            double v = b ? mixrt_load_f64(b->data, b->dtype, (size_t)j) : 0.0, s = fabs(v);
            for (int64_t k = 0; k < c->k; k++) {
                double t = mixrt_load_f64(x->data, x->dtype, (size_t)(r * c->k + k)) *
                           mixrt_load_f64(w->data, w->dtype, (size_t)(j * c->k + k));
                v += t, s += fabs(t);
            }
            if (z) v += mixrt_load_f64(z->data, z->dtype, (size_t)(r * c->m + j));
            y[r * c->m + j] = mixrt_fconv_apply((enum mixrt_fconv_act)c->act, p0, p1, v);
            mag[r * c->m + j] = s;
        }
}

/* Case id: the kernel (tile or scalar twin, as forced) against the reference kernel and, with
 * bf16 W, element by element against f64: |y - ref| <= 2^-8 |ref| + 2^-14 sum |x w| (the one
 * rounding to bf16 is 2^-9 |y|, SiLU's approximation 1e-4 relative, K <= 256 f32 additions under
 * 2^-16 sum |x w|; the activations' slopes are at most 1.5), twice those. With guard: X, Z and Y
 * against guard pages, after and before them, Y filled with NaN first. */
static void run_case(int id, const struct pw_case *c, bool guard) {
    if (g_only && id != g_only) return;
    char desc[200];
    snprintf(desc, sizeof(desc), "N=%lld %lldx%lld K=%lld M=%lld W %s B %s%s act=%s%s", (long long)c->n,
             (long long)c->h, (long long)c->w, (long long)c->k, (long long)c->m, mixrt_dtype_name(c->wdt),
             c->bias == 0 ? "none" : c->bias == 1 ? "const" : "input", c->z ? " Z" : "",
             mixrt_fconv_act_names[c->act][0] ? mixrt_fconv_act_names[c->act] : "none", guard ? " guarded" : "");
    int ni;
    int64_t yd[4];
    struct mixrt_graph *g = build(c, &ni, yd);
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("pw_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    mixrt_kernel_fn ref;
    TU_CHECK(kern != NULL, "case %d: pw_conv_nhwc is not registered", id);
    TU_CHECK(mixrt_ref_find(ctx, n, &ref) == MIXRT_STATUS_OK, "case %d: no reference kernel", id);
    char why[256] = "";
    bool ok = kern && kern->supports(g, n, why, sizeof(why));
    TU_CHECK(ok, "case %d %s: refused: %s; rerun: test_pwconv --only %d", id, desc, why, id);
    struct mixrt_tensor *tx = rand_tensor(MIXRT_DTYPE_BF16, 4, (int64_t[]){c->n, c->h, c->w, c->k}, 1.0);
    struct mixrt_tensor *tz = c->z ? rand_tensor(MIXRT_DTYPE_BF16, 4, yd, 1.0) : NULL;
    struct mixrt_tensor *tb = c->bias == 2 ? rand_tensor(MIXRT_DTYPE_F32, 1, &c->m, 0.5) : NULL;
    const struct mixrt_tensor *w = g->values[g_wi].init,
                              *b = c->bias == 1 ? g->values[g_bi].init : c->bias == 2 ? tb : NULL;
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
            unsigned long refs = mixrt_pwconv_ref_runs();
            mixrt_status sf = run_node_into(ctx, kern->run, state, g, ni, n_in, rin, &yf, NULL);
            TU_CHECK(sf == MIXRT_STATUS_OK, "case %d %s: run: %s", id, desc, mixrt_context_last_error(ctx));
            TU_CHECK(mixrt_pwconv_ref_runs() == refs, "case %d %s: ran the reference, not the kernel", id, desc);
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
                TU_CHECK(e <= 1e-2, "case %d %s: rel err %g against the reference > 1e-2; rerun: test_pwconv --only %d",
                         id, desc, e, id);
                if (c->wdt == MIXRT_DTYPE_BF16 && rep == 0) {
                    double *r64 = malloc(ny * sizeof(double)), *mag = malloc(ny * sizeof(double));
                    enum mixrt_fconv_act act;
                    float p0, p1;
                    TU_CHECK(r64 && mag && mixrt_fconv_read_act(n, &act, &p0, &p1), "case %d: f64 setup", id);
                    pw_f64(c, tx, w, b, tz, p0, p1, r64, mag);
                    size_t bad = 0, first = 0;
                    for (size_t i = 0; i < ny; i++) {
                        double v = mixrt_load_f64(yf.data, MIXRT_DTYPE_BF16, i);
                        double tol = ldexp(fabs(r64[i]), -8) + ldexp(mag[i], -14);
                        if (!(fabs(v - r64[i]) <= tol) && bad++ == 0) first = i;
                    }
                    TU_CHECK(bad == 0,
                             "case %d %s: %zu of %zu elements off f64, first #%zu: %g, f64 %g; rerun: test_pwconv "
                             "--only %d",
                             id, desc, bad, ny, first, mixrt_load_f64(yf.data, MIXRT_DTYPE_BF16, first), r64[first],
                             id);
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
    if (tb) mixrt_tensor_destroy(ctx, tb);
    mixrt_graph_destroy(g);
}

static int64_t pick(const int64_t *v, size_t n) { return v[tu_rand() % n]; }

static int run_all(int id) {
    /* Hand-picked: EfficientNet-B0's and MobileNetV2's expand and project shapes, one image each. */
    static const struct pw_case fixed[] = {
        {1, 112, 112, 16, 96, 1, false, MIXRT_FCONV_SILU, MIXRT_DTYPE_BF16},
        {1, 56, 56, 24, 144, 1, false, MIXRT_FCONV_CLIP, MIXRT_DTYPE_BF16},
        {1, 56, 56, 144, 24, 1, true, MIXRT_FCONV_NONE, MIXRT_DTYPE_BF16},
        {1, 14, 14, 112, 672, 1, false, MIXRT_FCONV_SILU, MIXRT_DTYPE_BF16},
        {1, 1, 1, 48, 1152, 1, false, MIXRT_FCONV_SIGMOID, MIXRT_DTYPE_BF16},
        {1, 7, 7, 256, 100, 2, true, MIXRT_FCONV_HARD_SWISH, MIXRT_DTYPE_F32},
    };
    for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) run_case(++id, &fixed[i], false);
    /* Random: K and M on and around the pair, block and tile sizes, 1-13 pixels (and two
     * images), every activation, B none / constant / input, Z or not, W bf16 or f32. */
    static const int64_t ks[] = {1, 2, 3, 15, 16, 17, 24, 40, 255, 256};
    static const int64_t ms[] = {1, 15, 16, 17, 33, 95, 96, 97, 112, 200};
    for (int r = 0; r < 160; r++) {
        struct pw_case c;
        memset(&c, 0, sizeof(c));
        c.n = r % 9 == 0 ? 2 : 1;
        c.h = 1 + (int64_t)(tu_rand() % 4);
        c.w = 1 + (int64_t)(tu_rand() % 4);
        c.k = pick(ks, 10), c.m = pick(ms, 10);
        c.bias = (int)(tu_rand() % 3), c.z = tu_rand() % 2;
        c.act = r % MIXRT_FCONV_ACT_COUNT;
        c.wdt = r % 4 == 3 ? MIXRT_DTYPE_F32 : MIXRT_DTYPE_BF16;
        run_case(++id, &c, false);
    }
    /* Against guard pages: odd K (the last pair's word past the row), partial blocks, Z. */
    static const struct pw_case gc[] = {
        {1, 3, 5, 17, 33, 1, true, MIXRT_FCONV_SILU, MIXRT_DTYPE_BF16},
        {1, 1, 7, 3, 97, 2, true, MIXRT_FCONV_GELU, MIXRT_DTYPE_BF16},
        {2, 2, 3, 255, 15, 0, true, MIXRT_FCONV_RELU, MIXRT_DTYPE_BF16},
        {1, 1, 1, 1, 1, 1, false, MIXRT_FCONV_NONE, MIXRT_DTYPE_BF16},
    };
    for (size_t i = 0; i < sizeof(gc) / sizeof(gc[0]); i++) run_case(++id, &gc[i], true);
    return id;
}

/* A node the kernel must refuse (supports() false with a reason). */
static void check_refuses(const char *what, struct mixrt_graph *g, int ni) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("pw_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    if (!kern) return;
    char why[256] = "";
    bool ok = kern->supports(g, &g->nodes[ni], why, sizeof(why));
    TU_CHECK(!ok && why[0], "refuse %s: supports() accepted it (or gave no reason)", what);
}

static void set_attr_int(struct mixrt_graph *g, int ni, const char *name, int64_t v) {
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, name)) g->nodes[ni].attrs[a].i = v;
}

static void test_refusals(void) {
    const struct pw_case c = {1, 4, 4, 16, 32, 1, false, MIXRT_FCONV_NONE, MIXRT_DTYPE_BF16};
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

    const struct pw_case wide = {1, 2, 2, 257, 16, 1, false, MIXRT_FCONV_NONE, MIXRT_DTYPE_BF16};
    g = build(&wide, &ni, yd);
    check_refuses("K 257", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd); /* strides 2 */
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, "strides")) g->nodes[ni].attrs[a].ints[0] = 2;
    check_refuses("stride 2", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd); /* pads */
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, "pads")) g->nodes[ni].attrs[a].ints[1] = 1;
    check_refuses("pads", g, ni);
    mixrt_graph_destroy(g);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--only")) g_only = atoi(argv[i + 1]);
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    const bool tiles = f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx512_bf16;
    int id = 0;
    if (tiles) {
        printf("test_pwconv: the AVX512-BF16 tile kernel\n");
        tu_seed(13);
        id = run_all(0);
    } else {
        printf("test_pwconv: SKIPPED the AVX512-BF16 tile kernel (this CPU has no AVX512-BF16); the scalar twin "
               "still runs\n");
        /* supports() must then refuse, naming why */
        mixrt_pwconv_force_scalar(false);
        const struct pw_case c = {1, 4, 4, 16, 32, 1, false, MIXRT_FCONV_NONE, MIXRT_DTYPE_BF16};
        int ni;
        int64_t yd[4];
        struct mixrt_graph *g = build(&c, &ni, yd);
        check_refuses("no AVX512-BF16", g, ni);
        mixrt_graph_destroy(g);
        id = 1000;
    }
    mixrt_pwconv_force_scalar(true);
    printf("test_pwconv: the scalar twin\n");
    tu_seed(13);
    run_all(id);
    if (!g_only) test_refusals();
    mixrt_pwconv_force_scalar(false);
    mixrt_context_destroy(ctx);
    return tu_finish("test_pwconv");
}
