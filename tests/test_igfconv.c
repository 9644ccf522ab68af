/* test_igfconv.c - the implicit-product channels-last f32 FusedConv kernel (igconv.c,
 * "igf_conv_nhwc", ig_conv_nhwc's f32 twin) on random data: ResNet-50's layer3 and layer4 convs at
 * batch 1, hand-picked edges (odd C 1, 3 and 5, M of 1, 17 and 70, 1, 7, 49, 196 and 1024 output
 * pixels, K steps of 1024 that start inside a tap), then random convs of kernels 1x1 .. 7x7 with
 * strides, dilations and uneven pads, 1, 2 and 4 threads, with and without B (constant, or an input
 * read at run time) and Z, every activation (in register and over Y afterwards). Each output
 * element against an f64 computation within what the f32 sums allow, and the whole by relative
 * norm (<= 1e-5); X, B, Z and Y against guard pages on some; the AVX-512 tile where the CPU has it
 * (reported as skipped where not), and the scalar twin always; then the cases it must refuse and a
 * run on shapes other than prepare's (the reference kernel's).
 * Usage: test_igfconv [--only N] (N: a case number, as printed on failure). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/exec_ref.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/pwconv_impl.h"
#include "graph_build.h"
#include "kernel_harness.h"
#include "testutil.h"

static mixrt_context_t ctx;
static int g_only;
static bool g_scalar; /* the pass running: the scalar twin forced */

/* One node: X [N, H, W, C] -> Y [N, OH, OW, M], W [M, C, KH, KW], all f32. bias: 0 none,
 * 1 constant, 2 an input. */
struct igf_case {
    int64_t n, h, w, c, m;
    int64_t k[2], s[2], d[2], p[4];
    int bias;
    bool z;
    int act; /* enum mixrt_fconv_act */
};

static int64_t out_dim(const struct igf_case *c, int i) {
    return ((i ? c->w : c->h) + c->p[i] + c->p[i + 2] - ((c->k[i] - 1) * c->d[i] + 1)) / c->s[i] + 1;
}

static int64_t out_rows(const struct igf_case *c) { return c->n * out_dim(c, 0) * out_dim(c, 1); }

static struct mixrt_tensor *rand_tensor(int rank, const int64_t *dims, double a) {
    struct mixrt_tensor *t = NULL;
    TU_CHECK(mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, rank, dims, &t) == MIXRT_STATUS_OK, "tensor create");
    for (size_t i = 0; i < mixrt_tensor_numel(t); i++) ((float *)t->data)[i] = (float)tu_uniform(-a, a);
    return t;
}

static void set_ints(struct mixrt_graph *g, int ni, const char *name, const int64_t *v) {
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, name))
            memcpy(g->nodes[ni].attrs[a].ints, v, g->nodes[ni].attrs[a].n * sizeof(int64_t));
}

static int g_xi, g_wi, g_bi; /* X's, W's and B's values in the graph build() made last */

static struct mixrt_graph *build(const struct igf_case *c, int *ni_out, int64_t *yd) {
    struct mixrt_graph *g = NULL;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    static const struct mixrt_opset op17 = {"", 17};
    g->opsets = &op17;
    g->n_opsets = 1;
    const int64_t xd[4] = {c->n, c->h, c->w, c->c};
    yd[0] = c->n, yd[1] = out_dim(c, 0), yd[2] = out_dim(c, 1), yd[3] = c->m;
    g_xi = add_input(g, "x", MIXRT_DTYPE_F32, 4, xd);
    g_wi = add_const_uniform(ctx, g, "w", MIXRT_DTYPE_F32, 4, (int64_t[]){c->m, c->c, c->k[0], c->k[1]},
                             1.7 / sqrt((double)(c->c * c->k[0] * c->k[1])));
    g_bi = -1;
    if (c->bias == 1) g_bi = add_const_uniform(ctx, g, "b", MIXRT_DTYPE_F32, 1, &c->m, 0.5);
    if (c->bias == 2) g_bi = add_input(g, "b", MIXRT_DTYPE_F32, 1, &c->m);
    int z = c->z ? add_input(g, "z", MIXRT_DTYPE_F32, 4, yd) : -1;
    int ni = add_fused_conv_nhwc(g, "igf", g_xi, g_wi, g_bi, z, "y", MIXRT_DTYPE_F32, yd, c->k[0], c->k[1], c->p);
    set_ints(g, ni, "strides", c->s);
    if (c->d[0] != 1 || c->d[1] != 1) node_attr_ints(g, ni, "dilations", 2, c->d);
    node_attr_str(g, ni, "activation", mixrt_fconv_act_names[c->act]);
    if (c->act == MIXRT_FCONV_CLIP) node_attr_floats(g, ni, "activation_params", 2, (float[]){-0.5f, 0.75f});
    if (c->act == MIXRT_FCONV_LEAKY_RELU) node_attr_floats(g, ni, "activation_params", 1, (float[]){0.1f});
    *ni_out = ni;
    return g;
}

/* Y of case c in f64 and each element's tolerance:
 *   |y - f64| <= 2^-22 pb + 2^-20 |f64| + 2^-30 mag,
 * pb the sum of the magnitudes of every partial sum and product the f32 arithmetic rounds (the
 * tile's FMAs round once a k, the scalar twin's multiply and add twice; each rounding at most
 * 2^-24 of its result): 2^-23 pb in all, twice that for the drift of the partial sums and the
 * activations' slopes (at most 1.5). The activations' own roundings (HardSwish's 4, and those run
 * over Y afterwards, measured under 2.2e-7 |y|) within 2^-20 |y|; GELU's tails (about 1e-6 of
 * 2^-14 |v|) within 2^-30 mag, mag = |b| + sum |x w| + |z|. Products of two f32 are exact in f64. */
static void igf_f64(const struct igf_case *c, const int64_t *yd, const struct mixrt_tensor *x,
                    const struct mixrt_tensor *w, const struct mixrt_tensor *b, const struct mixrt_tensor *z,
                    enum mixrt_fconv_act act, float p0, float p1, double *y, double *tol) {
    const int64_t taps = c->k[0] * c->k[1], C = c->c, M = c->m;
    const float *xd = x->data, *wd = w->data;
    for (int64_t img = 0; img < yd[0]; img++)
        for (int64_t oy = 0; oy < yd[1]; oy++)
            for (int64_t ox = 0; ox < yd[2]; ox++) {
                const int64_t r = (img * yd[1] + oy) * yd[2] + ox;
                for (int64_t j = 0; j < M; j++) {
                    double s = b ? ((const float *)b->data)[j] : 0.0, mag = fabs(s), pb = 0.0;
                    for (int64_t ky = 0; ky < c->k[0]; ky++)
                        for (int64_t kx = 0; kx < c->k[1]; kx++) {
                            const int64_t iy = oy * c->s[0] - c->p[0] + ky * c->d[0],
                                          ix = ox * c->s[1] - c->p[1] + kx * c->d[1];
                            if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                            const float *xr = xd + ((img * c->h + iy) * c->w + ix) * C;
                            for (int64_t q = 0; q < C; q++) {
                                const double t = (double)xr[q] * wd[(j * C + q) * taps + ky * c->k[1] + kx];
                                s += t;
                                pb += fabs(s) + fabs(t);
                                mag += fabs(t);
                            }
                        }
                    if (z) {
                        const double zv = ((const float *)z->data)[r * M + j];
                        s += zv;
                        pb += fabs(s);
                        mag += fabs(zv);
                    }
                    y[r * M + j] = mixrt_fconv_apply(act, p0, p1, s);
                    tol[r * M + j] = ldexp(pb, -22) + ldexp(fabs(y[r * M + j]), -20) + ldexp(mag, -30);
                }
            }
}

/* Y (f32, yd) of case c on in[] against f64: element by element (igf_f64's bound) and by relative
 * norm (<= 1e-5). */
static void check_f64(int id, const char *desc, const struct igf_case *c, const struct mixrt_node *n, const int64_t *yd,
                      const struct mixrt_tensor *const *in, const float *y, size_t ny) {
    double *r64 = malloc(ny * sizeof(double)), *tol = malloc(ny * sizeof(double));
    enum mixrt_fconv_act act = MIXRT_FCONV_NONE;
    float p0 = 0.0f, p1 = 0.0f;
    const bool act_ok = mixrt_fconv_read_act(n, &act, &p0, &p1);
    TU_CHECK(r64 && tol && act_ok, "case %d: f64 setup", id);
    if (r64 && tol && act_ok) {
        igf_f64(c, yd, in[0], in[1], in[2], in[3], act, p0, p1, r64, tol);
        size_t bad = 0, first = 0;
        double d = 0, s = 0;
        for (size_t i = 0; i < ny; i++) {
            if (!(fabs(y[i] - r64[i]) <= tol[i]) && bad++ == 0) first = i;
            d += (y[i] - r64[i]) * (y[i] - r64[i]), s += r64[i] * r64[i];
        }
        const size_t pix = first / (size_t)c->m;
        TU_CHECK(bad == 0,
                 "case %d %s: %zu of %zu elements off f64, first image %zu pixel (%zu, %zu) channel %zu: %.9g, f64 "
                 "%.9g, tolerance %g; rerun: test_igfconv --only %d",
                 id, desc, bad, ny, pix / (size_t)(yd[1] * yd[2]), pix / (size_t)yd[2] % (size_t)yd[1],
                 pix % (size_t)yd[2], first % (size_t)c->m, y[first], r64[first], tol[first], id);
        const double e = s > 0 ? sqrt(d / s) : sqrt(d);
        TU_CHECK(e <= 1e-5, "case %d %s: rel err %g against f64 > 1e-5; rerun: test_igfconv --only %d", id, desc, e,
                 id);
    }
    free(r64);
    free(tol);
}

static void describe(char *desc, size_t size, const struct igf_case *c, int threads, bool guard) {
    snprintf(desc, size,
             "%s N=%lld %lldx%lldx%lld M=%lld k=%lldx%lld s=%lldx%lld d=%lldx%lld p=%lld,%lld,%lld,%lld B %s%s "
             "act=%s threads=%d%s",
             g_scalar ? "scalar" : "tile", (long long)c->n, (long long)c->h, (long long)c->w, (long long)c->c,
             (long long)c->m, (long long)c->k[0], (long long)c->k[1], (long long)c->s[0], (long long)c->s[1],
             (long long)c->d[0], (long long)c->d[1], (long long)c->p[0], (long long)c->p[1], (long long)c->p[2],
             (long long)c->p[3],
             c->bias == 0   ? "none"
             : c->bias == 1 ? "const"
                            : "input",
             c->z ? " Z" : "", mixrt_fconv_act_names[c->act][0] ? mixrt_fconv_act_names[c->act] : "none", threads,
             guard ? " guarded" : "");
}

/* Case id (the idx-th of its pass: its data, the same in both passes, comes from idx) with
 * `threads` OpenMP threads: two runs of one prepared state, the second on new X, Z and B, each
 * against f64. With guard: X, B, Z and Y against guard pages (after them on the first run, before
 * on the second), Y filled with NaN first (every output written, nothing outside read or
 * written). */
static void run_case(int id, int idx, const struct igf_case *c, bool guard, int threads) {
    if (g_only && id != g_only) return;
    tu_seed(0x16f0000u + (uint64_t)idx);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    char desc[320];
    describe(desc, sizeof(desc), c, threads, guard);
    int ni;
    int64_t yd[4];
    struct mixrt_graph *g = build(c, &ni, yd);
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("igf_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    TU_CHECK(kern != NULL, "case %d: igf_conv_nhwc is not registered", id);
    char why[256] = "";
    bool ok = kern && kern->supports(g, n, why, sizeof(why));
    TU_CHECK(ok, "case %d %s: refused: %s; rerun: test_igfconv --only %d", id, desc, why, id);
    void *state = NULL;
    mixrt_status st = ok ? kern->prepare(ctx, g, n, &state) : MIXRT_STATUS_UNSUPPORTED;
    TU_CHECK(!ok || st == MIXRT_STATUS_OK, "case %d %s: prepare: %s", id, desc, mixrt_context_last_error(ctx));
    const struct mixrt_tensor *w = g->values[g_wi].init, *bc = c->bias == 1 ? g->values[g_bi].init : NULL;
    const int n_in = c->z ? 4 : 3;
    const size_t ny = (size_t)(yd[0] * yd[1] * yd[2] * yd[3]);
    for (int rep = 0; rep < 2 && st == MIXRT_STATUS_OK; rep++) {
        struct mixrt_tensor *tx = rand_tensor(4, (int64_t[]){c->n, c->h, c->w, c->c}, 1.0);
        struct mixrt_tensor *tz = c->z ? rand_tensor(4, yd, 1.0) : NULL;
        struct mixrt_tensor *tb = c->bias == 2 ? rand_tensor(1, &c->m, 0.5) : NULL;
        const struct mixrt_tensor *in[4] = {tx, w, tb ? tb : bc, tz}, *rin[4] = {tx, w, tb ? tb : bc, tz};
        struct kh_guarded gx = {0}, gb = {0}, gz = {0}, gy = {0};
        struct mixrt_tensor yf, vx, vb, vz;
        memset(&yf, 0, sizeof(yf));
        if (guard) {
            vx = kh_guarded_copy(tx, &gx, rep == 0);
            rin[0] = &vx;
            if (tb) vb = kh_guarded_copy(tb, &gb, rep == 0), rin[2] = &vb;
            if (tz) vz = kh_guarded_copy(tz, &gz, rep == 0), rin[3] = &vz;
            TU_CHECK(kh_guard_alloc(&gy, ny * 4, rep == 0), "guard pages: mmap failed");
            memset(gy.p, 0xff, ny * 4); /* NaN */
            yf.data = gy.p, yf.capacity = ny * 4, yf.flags = MIXRT_TENSOR_PREBOUND | MIXRT_TENSOR_UNINIT;
        }
        const unsigned long refs = mixrt_igfconv_ref_runs();
        mixrt_status sf = run_node_into(ctx, kern->run, state, g, ni, n_in, rin, &yf, NULL);
        TU_CHECK(sf == MIXRT_STATUS_OK, "case %d %s: run %d: %s", id, desc, rep + 1, mixrt_context_last_error(ctx));
        TU_CHECK(mixrt_igfconv_ref_runs() == refs, "case %d %s: ran the reference, not the kernel", id, desc);
        if (sf == MIXRT_STATUS_OK) {
            TU_CHECK(yf.dtype == MIXRT_DTYPE_F32 && yf.rank == 4 && !memcmp(yf.dims, yd, sizeof(yd)) &&
                         (!guard || yf.data == gy.p),
                     "case %d %s: output shape, dtype or buffer wrong", id, desc);
            check_f64(id, desc, c, n, yd, in, yf.data, ny);
        }
        if (guard) {
            kh_guard_free(&gx);
            if (tb) kh_guard_free(&gb);
            if (tz) kh_guard_free(&gz);
            kh_guard_free(&gy);
        } else if (sf == MIXRT_STATUS_OK) {
            mixrt_tensor_release(ctx, &yf);
        }
        mixrt_tensor_destroy(ctx, tx);
        if (tz) mixrt_tensor_destroy(ctx, tz);
        if (tb) mixrt_tensor_destroy(ctx, tb);
    }
    if (state) kern->release(ctx, state);
    mixrt_graph_destroy(g);
}

static int64_t pick(const int64_t *v, size_t n) { return v[tu_rand() % n]; }
#define PICK(v) pick(v, sizeof(v) / sizeof(v[0]))

/* Case r's shape: per image `per` output pixels as OH x OW (OH a divisor), X's H and W the
 * smallest that give them (plus up to a stride less one); where the pads alone would cover the
 * outputs, that axis goes unpadded. At most 4M products a case (the f64 check's cost). */
static void draw_random(int r, struct igf_case *c) {
    static const int64_t cs[] = {1, 3, 5, 16, 17, 31, 64, 130, 300, 1025};
    static const int64_t ms[] = {1, 15, 16, 17, 63, 64, 65, 70, 128, 129, 200};
    static const int64_t ks[][2] = {{1, 1}, {3, 3}, {1, 3}, {5, 2}, {7, 7}, {1, 1}, {3, 3}};
    static const int64_t pers[] = {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 17, 18, 19, 24, 25, 30, 36, 49, 64, 81, 100};
    tu_seed(0x16f5eedu + (uint64_t)r);
    do {
        memset(c, 0, sizeof(*c));
        c->n = r % 5 == 4 ? 2 : 1;
        const int kk = (int)(tu_rand() % 7);
        c->k[0] = ks[kk][0], c->k[1] = ks[kk][1];
        c->c = PICK(cs);
        c->m = PICK(ms);
        const int64_t per = PICK(pers);
        int64_t divs[16], nd = 0;
        for (int64_t q = 1; q <= per; q++)
            if (per % q == 0) divs[nd++] = q;
        const int64_t oh = divs[tu_rand() % (uint64_t)nd], od[2] = {oh, per / oh};
        for (int i = 0; i < 2; i++) {
            c->s[i] = 1 + (int64_t)(tu_rand() % 3);
            c->d[i] = tu_rand() % 3 == 0 ? 2 : 1;
            c->p[i] = (int64_t)(tu_rand() % 4), c->p[i + 2] = (int64_t)(tu_rand() % 4);
            const int64_t ext = (c->k[i] - 1) * c->d[i] + 1, extra = (int64_t)(tu_rand() % (uint64_t)c->s[i]);
            int64_t len = (od[i] - 1) * c->s[i] + ext + extra - (c->p[i] + c->p[i + 2]);
            if (len < 1) {
                c->p[i] = c->p[i + 2] = 0;
                len = (od[i] - 1) * c->s[i] + ext + extra;
            }
            *(i ? &c->w : &c->h) = len;
        }
        c->bias = (int)(tu_rand() % 3);
        c->z = tu_rand() % 2;
        c->act = r % MIXRT_FCONV_ACT_COUNT;
    } while (out_rows(c) * c->m * c->c * c->k[0] * c->k[1] > 4000000);
}

static int run_all(int id) {
    const int R = MIXRT_FCONV_RELU, N0 = MIXRT_FCONV_NONE, CL = MIXRT_FCONV_CLIP, SG = MIXRT_FCONV_SIGMOID,
              SI = MIXRT_FCONV_SILU;
    int idx = 0;
    /* Each case: {N, H, W, C, M, kernel, strides, dilations, pads, B (0 none, 1 constant, 2 an
     * input), Z, activation}.
     * ResNet-50's layer3 and layer4 convs at batch 1 (the stride-2 entries too): K 256 to 4608, 196
     * and 49 rows, 4 to 32 groups. */
    const struct igf_case big[] = {
        {1, 7, 7, 512, 512, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, false, R},
        {1, 14, 14, 512, 512, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1, false, R},
        {1, 7, 7, 512, 2048, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, true, R},
        {1, 7, 7, 2048, 512, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, false, R},
        {1, 14, 14, 1024, 2048, {1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1, false, N0},
        {1, 14, 14, 256, 256, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, false, R},
        {1, 14, 14, 1024, 256, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, false, R},
        {1, 14, 14, 256, 1024, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, true, R},
    };
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) run_case(++id, idx++, &big[i], false, 2);
    /* Edges: odd C (1, 3, 5) with M 1, 17 and 70 (tail blocks, a group of 2 blocks); 1, 7, 49,
     * 196 and 1024 output pixels (batch 2 too); a 3x3 of pads 1, stride 2, dilation 2; K steps
     * of 1024 that start inside a tap (C 300 3x3: 2700) and one k past a step (C 1025); B, Z,
     * ReLU, Clip and the activations run over Y (Sigmoid, SiLU). */
    const struct igf_case edge[] = {
        {1, 1, 1, 3, 1, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0, false, N0},
        {1, 7, 1, 5, 17, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, true, R},
        {1, 7, 7, 3, 70, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 2, true, CL},
        {1, 14, 14, 5, 17, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, false, SG},
        {1, 32, 32, 3, 17, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 2, true, MIXRT_FCONV_LEAKY_RELU},
        {2, 16, 32, 1, 70, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, false, SI},
        {1, 14, 14, 16, 70, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1, true, R},
        {1, 11, 11, 17, 33, {3, 3}, {1, 1}, {2, 2}, {1, 1, 1, 1}, 0, false, MIXRT_FCONV_HARD_SWISH},
        {1, 9, 9, 300, 70, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, true, SI},
        {1, 7, 7, 1025, 17, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 2, false, CL},
        {1, 7, 7, 2049, 65, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, true, SG},
        {1, 7, 7, 64, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, true, MIXRT_FCONV_TANH},
        {1, 6, 5, 6, 16, {3, 3}, {1, 1}, {1, 1}, {1, 2, 3, 1}, 1, false, MIXRT_FCONV_GELU},
        {2, 11, 9, 8, 64, {2, 2}, {5, 4}, {1, 1}, {0, 0, 1, 0}, 0, false, MIXRT_FCONV_GELU_TANH},
    };
    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
        run_case(++id, idx++, &edge[i], false, 1 + (int)(i % 2));
    /* Random: 1 .. 200 rows, 1, 2 and 4 threads. */
    static const int threads[] = {2, 1, 4};
    for (int r = 0; r < 120; r++) {
        struct igf_case c;
        draw_random(r, &c);
        run_case(++id, idx++, &c, false, threads[r % 3]);
    }
    /* Against guard pages: odd C and a tail block, a staged activation with a run-time B, K steps
     * inside a tap, the smallest conv. */
    const struct igf_case gc[] = {
        {1, 3, 5, 3, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, true, N0},
        {1, 8, 7, 5, 17, {5, 2}, {2, 1}, {1, 2}, {2, 0, 1, 3}, 2, true, SI},
        {2, 3, 3, 300, 70, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, true, CL},
        {1, 1, 1, 1, 1, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0, false, N0},
    };
    for (size_t i = 0; i < sizeof(gc) / sizeof(gc[0]); i++) run_case(++id, idx++, &gc[i], true, i == 2 ? 4 : 2);
    return id;
}

/* The refusals' case (one the kernel takes): a padded 3x3 of 16 -> 32 channels on 4x4. */
static const struct igf_case g_base = {1, 4, 4, 16, 32, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, false, 0};

static const struct mixrt_cpu_kernel *igf_kernel(void) {
    return mixrt_cpu_kernel_find("igf_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
}

/* A node the kernel must refuse (supports() false with a reason, containing `needle` if set). */
static void check_refuses(const char *what, struct mixrt_graph *g, int ni, const char *needle) {
    const struct mixrt_cpu_kernel *kern = igf_kernel();
    TU_CHECK(kern != NULL, "igf_conv_nhwc is not registered");
    if (!kern) return;
    char why[256] = "";
    bool ok = kern->supports(g, &g->nodes[ni], why, sizeof(why));
    TU_CHECK(!ok && why[0] && (!needle || strstr(why, needle)),
             "refuse %s: supports() accepted it, or gave no reason or not the expected one ('%s')", what, why);
}

static void test_refusals(void) {
    struct igf_case c = g_base;
    int ni;
    int64_t yd[4];
    struct mixrt_graph *g = build(&c, &ni, yd);
    char why[256] = "";
    TU_CHECK(igf_kernel() && igf_kernel()->supports(g, &g->nodes[ni], why, sizeof(why)),
             "refusals: the base case is refused: %s", why);
    /* and ig_conv_nhwc (bf16) refuses the f32 node */
    const struct mixrt_cpu_kernel *ig = mixrt_cpu_kernel_find("ig_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    TU_CHECK(ig && !ig->supports(g, &g->nodes[ni], why, sizeof(why)), "ig_conv_nhwc takes an f32 node");
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g->nodes[ni].inputs[0]].dtype = MIXRT_DTYPE_BF16;
    g->values[g->nodes[ni].outputs[0]].dtype = MIXRT_DTYPE_BF16;
    check_refuses("bf16 X and Y", g, ni, "f32");
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g->nodes[ni].inputs[0]].dtype = MIXRT_DTYPE_BF16;
    check_refuses("bf16 X, f32 Y", g, ni, "f32");
    mixrt_graph_destroy(g);

    struct igf_case v = c;
    v.z = true;
    g = build(&v, &ni, yd);
    g->values[g->nodes[ni].inputs[3]].dtype = MIXRT_DTYPE_BF16;
    check_refuses("bf16 Z", g, ni, "Z");
    mixrt_graph_destroy(g);

    v = c, v.h = 33, v.w = 32, v.k[0] = v.k[1] = 1, v.p[0] = v.p[1] = v.p[2] = v.p[3] = 0; /* 1056 pixels */
    g = build(&v, &ni, yd);
    check_refuses("1056 output pixels", g, ni, "1024");
    mixrt_graph_destroy(g);

    v = c, v.n = 2, v.h = 18, v.w = 29; /* pads 1: 2 x 18 x 29 = 1044 pixels */
    g = build(&v, &ni, yd);
    check_refuses("1044 output pixels over 2 images", g, ni, "1024");
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g_wi].flags |= MIXRT_VALUE_GRAPH_INPUT;
    check_refuses("W not constant", g, ni, "constant");
    g->values[g_wi].flags &= ~MIXRT_VALUE_GRAPH_INPUT;
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, "group")) g->nodes[ni].attrs[a].i = 2;
    check_refuses("group 2", g, ni, NULL);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    node_attr_str(g, ni, "auto_pad", "SAME_UPPER");
    check_refuses("auto_pad SAME_UPPER", g, ni, "SAME");
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g_xi].dims[1].value = -1, g->values[g_xi].dims[1].param = "h";
    check_refuses("X's height unknown", g, ni, NULL);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g_xi].dims[3].value = 18;
    check_refuses("X's channels 18, W's 16", g, ni, NULL);
    mixrt_graph_destroy(g);

    setenv("MIXRT_IGFCONV", "off", 1);
    g = build(&c, &ni, yd);
    check_refuses("MIXRT_IGFCONV=off", g, ni, "MIXRT_IGFCONV=off");
    mixrt_graph_destroy(g);
    unsetenv("MIXRT_IGFCONV");
}

/* A state prepared for C 5 -> M 17 run on C 6 -> M 16 (X, W, B and Z of other shapes than
 * prepare saw): the run goes to the reference kernel (counted) and its Y is still right. A 5x5 X
 * on the same state (other spatial dims, the same C and M) is the kernel's own. */
static void test_other_shapes(void) {
    const struct igf_case ca = {1, 7, 7, 5, 17, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, true, MIXRT_FCONV_RELU};
    struct igf_case cb = ca, cs = ca;
    cb.c = 6, cb.m = 16;
    cs.h = cs.w = 5;
    const struct igf_case *runs[2] = {&cb, &cs};
    int nia;
    int64_t yda[4];
    tu_seed(0x16f7777u);
    struct mixrt_graph *ga = build(&ca, &nia, yda);
    const int wia = g_wi, bia = g_bi;
    const struct mixrt_cpu_kernel *kern = igf_kernel();
    void *state = NULL;
    TU_CHECK(kern && kern->prepare(ctx, ga, &ga->nodes[nia], &state) == MIXRT_STATUS_OK, "other shapes: prepare: %s",
             mixrt_context_last_error(ctx));
    for (int i = 0; i < 2 && state; i++) {
        const struct igf_case *c = runs[i];
        int ni;
        int64_t yd[4];
        struct mixrt_graph *g = build(c, &ni, yd);
        struct mixrt_tensor *tx = rand_tensor(4, (int64_t[]){c->n, c->h, c->w, c->c}, 1.0),
                            *tz = rand_tensor(4, yd, 1.0);
        /* the 5x5 run with the prepared W and B (the kernel reads its packed copy) */
        const struct mixrt_tensor *in[4] = {tx, i ? ga->values[wia].init : g->values[g_wi].init,
                                            i ? ga->values[bia].init : g->values[g_bi].init, tz};
        struct mixrt_tensor yf;
        memset(&yf, 0, sizeof(yf));
        const unsigned long refs = mixrt_igfconv_ref_runs();
        mixrt_status s = run_node_into(ctx, kern->run, state, g, ni, 4, in, &yf, NULL);
        TU_CHECK(s == MIXRT_STATUS_OK, "other shapes %d: run: %s", i, mixrt_context_last_error(ctx));
        TU_CHECK(mixrt_igfconv_ref_runs() == refs + (i == 0),
                 i == 0 ? "other shapes: C 6 -> M 16 on a C 5 -> M 17 state did not go to the reference kernel"
                        : "other shapes: a 5x5 X on a 7x7 state went to the reference kernel");
        if (s == MIXRT_STATUS_OK) {
            TU_CHECK(yf.rank == 4 && !memcmp(yf.dims, yd, sizeof(yd)), "other shapes %d: Y's shape wrong", i);
            check_f64(9000 + i, i == 0 ? "C 6 -> M 16 on a C 5 -> M 17 state" : "5x5 X on a 7x7 state", c,
                      &g->nodes[ni], yd, in, yf.data, (size_t)(yd[1] * yd[2] * yd[3]));
            mixrt_tensor_release(ctx, &yf);
        }
        mixrt_tensor_destroy(ctx, tx);
        mixrt_tensor_destroy(ctx, tz);
        mixrt_graph_destroy(g);
    }
    if (state) kern->release(ctx, state);
    mixrt_graph_destroy(ga);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--only")) g_only = atoi(argv[i + 1]);
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
#ifdef _OPENMP
    const int threads0 = omp_get_max_threads();
#endif
    const bool tiles = mixrt_cpu_avx512();
    int id = 0;
    if (tiles) {
        printf("test_igfconv: the AVX-512 tile kernel\n");
        g_scalar = false;
        id = run_all(0);
        if (!g_only) test_other_shapes();
    } else {
        printf("test_igfconv: SKIPPED the AVX-512 tile kernel (this CPU has no AVX-512); the scalar twin still "
               "runs\n");
        mixrt_igfconv_force_scalar(false);
        struct igf_case c = g_base;
        int ni;
        int64_t yd[4];
        struct mixrt_graph *g = build(&c, &ni, yd);
        check_refuses("no AVX-512", g, ni, "AVX-512");
        mixrt_graph_destroy(g);
        id = 1000;
    }
    mixrt_igfconv_force_scalar(true);
    g_scalar = true;
    printf("test_igfconv: the scalar twin\n");
    const int first_scalar = id + 1;
    id = run_all(id);
    if (!g_only) {
        test_refusals();
        test_other_shapes();
    }
    mixrt_igfconv_force_scalar(false);
#ifdef _OPENMP
    omp_set_num_threads(threads0);
#endif
    printf("test_igfconv: cases %d (tile) + %d (scalar twin)\n", tiles ? first_scalar - 1 : 0, id - first_scalar + 1);
    mixrt_context_destroy(ctx);
    return tu_finish("test_igfconv");
}
