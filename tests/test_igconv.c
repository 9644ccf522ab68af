/* test_igconv.c - the implicit-product channels-last bf16 FusedConv kernel (igconv.c,
 * "ig_conv_nhwc") on random data: ResNet-50's stage-4 convs at batch 1, then random convs of
 * even input channels C on and around the pair and K-step sizes (2 .. 2050, steps of 1024 pairs
 * that start inside a tap), output channels on and around the 16-channel blocks and the 4-block
 * groups, kernels 1x1 .. 7x7 with strides, dilations, uneven pads and auto_pad VALID, 1 .. 1024
 * output pixels (on and around the 5-6 row tiles), batch 2, 1, 2 and 4 threads, with and without
 * B (constant, or an input read at run time) and Z, every activation (in register and over f32
 * rows), bf16 and f32 weights. Each output against the reference kernel (relative norm), and, for
 * bf16 weights, element by element against an f64 computation within what the f32 sums and the
 * one rounding to bf16 allow; X, B, Z and Y against guard pages on some; the AVX512-BF16 tile
 * where the CPU has it (reported as skipped where not), and the scalar twin always; then the
 * cases it must refuse.
 * Usage: test_igconv [--only N] (N: a case number, as printed on failure). */
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

/* One node: X [N, H, W, C] -> Y [N, OH, OW, M], W [M, C, KH, KW]. bias: 0 none, 1 constant,
 * 2 an input (of dtype bdt). valid: auto_pad VALID (the pads attribute then does not count). */
struct ig_case {
    int64_t n, h, w, c, m;
    int64_t k[2], s[2], d[2], p[4];
    int bias;
    mixrt_dtype bdt;
    bool z;
    int act; /* enum mixrt_fconv_act */
    mixrt_dtype wdt;
    bool valid;
};

/* Axis i's (0: H, 1: W) padded extent past the dilated kernel: the output dim is span / stride
 * + 1 (a negative span: the kernel is larger than the padded image). */
static int64_t span(const struct ig_case *c, int i) {
    const int64_t pads = c->valid ? 0 : c->p[i] + c->p[i + 2];
    return (i ? c->w : c->h) + pads - ((c->k[i] - 1) * c->d[i] + 1);
}

/* Output pixels, all images: the kernel's rows. */
static int64_t out_rows(const struct ig_case *c) {
    return c->n * (span(c, 0) / c->s[0] + 1) * (span(c, 1) / c->s[1] + 1);
}

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

static void set_ints(struct mixrt_graph *g, int ni, const char *name, const int64_t *v) {
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, name))
            memcpy(g->nodes[ni].attrs[a].ints, v, g->nodes[ni].attrs[a].n * sizeof(int64_t));
}

static void set_attr_int(struct mixrt_graph *g, int ni, const char *name, int64_t v) {
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, name)) g->nodes[ni].attrs[a].i = v;
}

static int g_xi, g_wi, g_bi; /* X's, W's and B's values in the graph build() made last */

static struct mixrt_graph *build(const struct ig_case *c, int *ni_out, int64_t *yd) {
    struct mixrt_graph *g = new_graph();
    const int64_t xd[4] = {c->n, c->h, c->w, c->c};
    yd[0] = c->n, yd[1] = span(c, 0) / c->s[0] + 1, yd[2] = span(c, 1) / c->s[1] + 1, yd[3] = c->m;
    g_xi = add_input(g, "x", MIXRT_DTYPE_BF16, 4, xd);
    g_wi = add_const_uniform(ctx, g, "w", c->wdt, 4, (int64_t[]){c->m, c->c, c->k[0], c->k[1]},
                             1.7 / sqrt((double)(c->c * c->k[0] * c->k[1])));
    g_bi = -1;
    if (c->bias == 1) g_bi = add_const_uniform(ctx, g, "b", c->bdt, 1, &c->m, 0.5);
    if (c->bias == 2) g_bi = add_input(g, "b", c->bdt, 1, &c->m);
    int z = c->z ? add_input(g, "z", MIXRT_DTYPE_BF16, 4, yd) : -1;
    int ni = add_fused_conv_nhwc(g, "ig", g_xi, g_wi, g_bi, z, "y", MIXRT_DTYPE_BF16, yd, c->k[0], c->k[1], c->p);
    set_ints(g, ni, "strides", c->s);
    if (c->d[0] != 1 || c->d[1] != 1) node_attr_ints(g, ni, "dilations", 2, c->d); /* else absent: 1 */
    if (c->valid) node_attr_str(g, ni, "auto_pad", "VALID");
    node_attr_str(g, ni, "activation", mixrt_fconv_act_names[c->act]);
    if (c->act == MIXRT_FCONV_CLIP) node_attr_floats(g, ni, "activation_params", 2, (float[]){-0.5f, 0.75f});
    if (c->act == MIXRT_FCONV_LEAKY_RELU) node_attr_floats(g, ni, "activation_params", 1, (float[]){0.1f});
    *ni_out = ni;
    return g;
}

/* Y of case c in f64 from the graph's bf16 W (exact), and each element's tolerance (see
 * run_case). The sums run in the kernel's order (the bias, then tap by tap the pairs of input
 * channels, then Z) so that pb, the sum of the magnitudes of every partial result the f32 sums
 * round, is the one the kernel's roundings see. Taps in the padding add exact zeros (no
 * rounding) and are left out. False when out of memory. */
static bool ig_f64(const struct ig_case *c, const int64_t *yd, const struct mixrt_tensor *x,
                   const struct mixrt_tensor *w, const struct mixrt_tensor *b, const struct mixrt_tensor *z,
                   enum mixrt_fconv_act act, float p0, float p1, double *y, double *tol) {
    const int64_t taps = c->k[0] * c->k[1], C = c->c, M = c->m;
    const int64_t pt = c->valid ? 0 : c->p[0], pl = c->valid ? 0 : c->p[1];
    double *xd = malloc(mixrt_tensor_numel(x) * sizeof(double)), *wd = malloc((size_t)(M * taps * C) * sizeof(double));
    TU_CHECK(xd && wd, "f64: out of memory");
    if (!xd || !wd) {
        free(xd), free(wd);
        return false;
    }
    for (size_t i = 0; i < mixrt_tensor_numel(x); i++) xd[i] = mixrt_load_f64(x->data, x->dtype, i);
    for (int64_t j = 0; j < M; j++) /* [M][tap][C], the kernel's K order */
        for (int64_t ch = 0; ch < C; ch++)
            for (int64_t t = 0; t < taps; t++)
                wd[(j * taps + t) * C + ch] = mixrt_load_f64(w->data, w->dtype, (size_t)((j * C + ch) * taps + t));
    for (int64_t img = 0; img < yd[0]; img++)
        for (int64_t oy = 0; oy < yd[1]; oy++)
            for (int64_t ox = 0; ox < yd[2]; ox++) {
                const int64_t r = (img * yd[1] + oy) * yd[2] + ox;
                for (int64_t j = 0; j < M; j++) {
                    double s = b ? mixrt_load_f64(b->data, b->dtype, (size_t)j) : 0.0, mag = fabs(s), pb = 0.0;
                    for (int64_t ky = 0; ky < c->k[0]; ky++)
                        for (int64_t kx = 0; kx < c->k[1]; kx++) {
                            const int64_t iy = oy * c->s[0] - pt + ky * c->d[0], ix = ox * c->s[1] - pl + kx * c->d[1];
                            if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                            const double *xr = xd + ((img * c->h + iy) * c->w + ix) * C,
                                         *wr = wd + (j * taps + ky * c->k[1] + kx) * C;
                            for (int64_t q = 0; q < C; q += 2) {
                                const double to = xr[q + 1] * wr[q + 1], te = xr[q] * wr[q];
                                /* the pair's first rounding: |s + to| or |s + te| (either order) */
                                pb += fabs(s) + fabs(to) + fabs(te);
                                s += to + te;
                                pb += fabs(s);
                                mag += fabs(to) + fabs(te);
                            }
                        }
                    if (z) {
                        const double zv = mixrt_load_f64(z->data, z->dtype, (size_t)(r * M + j));
                        s += zv;
                        pb += fabs(s);
                        mag += fabs(zv);
                    }
                    y[r * M + j] = mixrt_fconv_apply(act, p0, p1, s);
                    tol[r * M + j] = ldexp(fabs(y[r * M + j]), -8) + ldexp(mag, -14) + ldexp(pb, -23);
                }
            }
    free(xd);
    free(wd);
    return true;
}

/* X, Z (if the case has it) and B (if an input) of case c: new tensors of new random values. */
static void new_inputs(const struct ig_case *c, const int64_t *yd, struct mixrt_tensor **tx, struct mixrt_tensor **tz,
                       struct mixrt_tensor **tb) {
    *tx = rand_tensor(MIXRT_DTYPE_BF16, 4, (int64_t[]){c->n, c->h, c->w, c->c}, 1.0);
    *tz = c->z ? rand_tensor(MIXRT_DTYPE_BF16, 4, yd, 1.0) : NULL;
    *tb = c->bias == 2 ? rand_tensor(c->bdt, 1, &c->m, 0.5) : NULL;
}

static void free_inputs(struct mixrt_tensor *tx, struct mixrt_tensor *tz, struct mixrt_tensor *tb) {
    mixrt_tensor_destroy(ctx, tx);
    if (tz) mixrt_tensor_destroy(ctx, tz);
    if (tb) mixrt_tensor_destroy(ctx, tb);
}

/* Y (bf16, yd) of case c on in[] element by element against f64 (the bound above run_case). */
static void check_f64(int id, const char *desc, const struct ig_case *c, const struct mixrt_node *n, const int64_t *yd,
                      const struct mixrt_tensor *const *in, const void *y, size_t ny) {
    double *r64 = malloc(ny * sizeof(double)), *tol = malloc(ny * sizeof(double));
    enum mixrt_fconv_act act = MIXRT_FCONV_NONE;
    float p0 = 0.0f, p1 = 0.0f;
    const bool act_ok = mixrt_fconv_read_act(n, &act, &p0, &p1);
    TU_CHECK(r64 && tol && act_ok, "case %d: f64 setup", id);
    if (r64 && tol && act_ok && ig_f64(c, yd, in[0], in[1], in[2], in[3], act, p0, p1, r64, tol)) {
        size_t bad = 0, first = 0;
        for (size_t i = 0; i < ny; i++) {
            double v = mixrt_load_f64(y, MIXRT_DTYPE_BF16, i);
            if (!(fabs(v - r64[i]) <= tol[i]) && bad++ == 0) first = i;
        }
        const size_t pix = first / (size_t)c->m;
        TU_CHECK(bad == 0,
                 "case %d %s: %zu of %zu elements off f64, first image %zu pixel (%zu, %zu) channel %zu: %g, f64 %g, "
                 "tolerance %g; rerun: test_igconv --only %d",
                 id, desc, bad, ny, pix / (size_t)(yd[1] * yd[2]), pix / (size_t)yd[2] % (size_t)yd[1],
                 pix % (size_t)yd[2], first % (size_t)c->m, mixrt_load_f64(y, MIXRT_DTYPE_BF16, first), r64[first],
                 tol[first], id);
    }
    free(r64);
    free(tol);
}

/* Case id (the idx-th of its pass: its data, the same in both passes, comes from idx) with
 * `threads` OpenMP threads: the kernel (tile or scalar twin, as forced) against the reference
 * kernel by relative norm (<= 1e-2) and, with bf16 W, element by element against f64:
 *   |y - f64| <= 2^-8 |f64| + 2^-14 mag + 2^-23 pb,  mag = |b| + sum |x w| + |z|,
 * pb = the sum of the magnitudes of the partial results the f32 sums round (ig_f64).
 * - The one rounding to bf16 (8 significant bits, to nearest) is at most 2^-8 / (1 + 2^-8) |y|:
 *   the first term, all but 1.5e-5 |y| of it (these tests see 3.89e-3 |y|: there is no factor
 *   left in it for anything else).
 * - The f32 sums: products of two bf16 are exact in f32, the bias and Z are exact, so each
 *   rounding (two a pair, or one where vdpbf16ps fuses them) is at most 2^-24 of its result:
 *   2^-24 pb in all, times 1 + K 2^-24 < 1.002 for the drift of the computed partial sums
 *   (K <= 18450 here); through the activations' slopes (at most 1.5) and the rounding to bf16,
 *   under 1.51 2^-24 pb: the last term, twice that. A bound from K alone, K 2^-24 mag, would
 *   reach 2^-9.8 mag at K = 18450, loose enough to hide a pair left out at a step's edge; for
 *   random signs the partial sums stay small (2^-23 pb under 2^-15 mag in these cases).
 * - SiLU's in-register approximation (silu_avx512.h: 5.5e-5 |y| at most over f32 inputs, as
 *   measured) less the 1.5e-5 |y| the rounding leaves: under 4e-5 |y| <= 2^-14 mag, as
 *   |SiLU(v)| <= |v| <= mag. The activations run over f32 rows (eltwise.c) were measured under
 *   2.2e-7 |y|, and under 1e-6 of 2^-14 |v| in GELU's tails: within the same spare.
 * The first two terms are test_pwconv's bound (its K <= 256 needs no pb); mag counts |z| here
 * for the SiLU term. Subnormal f32 results (flushed by vdpbf16ps) do not arise at these sizes.
 * With guard: X, B, Z and Y against guard pages, after and before them, Y filled with NaN first
 * (every output written, nothing read or written outside). once: one run (the scalar twin on the
 * large cases), else a second with the same state, on new inputs but for the large cases. */
static void run_case(int id, int idx, const struct ig_case *c, bool guard, bool once, int threads) {
    if (g_only && id != g_only) return;
    tu_seed(0x16c0000u + (uint64_t)idx);
#ifdef _OPENMP
    omp_set_num_threads(threads);
#endif
    char desc[320];
    snprintf(
        desc, sizeof(desc),
        "%s N=%lld %lldx%lldx%lld M=%lld k=%lldx%lld s=%lldx%lld d=%lldx%lld p=%lld,%lld,%lld,%lld%s W %s B %s%s%s "
        "act=%s threads=%d%s",
        g_scalar ? "scalar" : "tile", (long long)c->n, (long long)c->h, (long long)c->w, (long long)c->c,
        (long long)c->m, (long long)c->k[0], (long long)c->k[1], (long long)c->s[0], (long long)c->s[1],
        (long long)c->d[0], (long long)c->d[1], (long long)c->p[0], (long long)c->p[1], (long long)c->p[2],
        (long long)c->p[3], c->valid ? " VALID" : "", mixrt_dtype_name(c->wdt),
        c->bias == 0   ? "none"
        : c->bias == 1 ? "const "
                       : "input ",
        c->bias ? mixrt_dtype_name(c->bdt) : "", c->z ? " Z" : "",
        mixrt_fconv_act_names[c->act][0] ? mixrt_fconv_act_names[c->act] : "none", threads, guard ? " guarded" : "");
    int ni;
    int64_t yd[4];
    struct mixrt_graph *g = build(c, &ni, yd);
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("ig_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    mixrt_kernel_fn ref;
    TU_CHECK(kern != NULL, "case %d: ig_conv_nhwc is not registered", id);
    TU_CHECK(mixrt_ref_find(ctx, n, &ref) == MIXRT_STATUS_OK, "case %d: no reference kernel", id);
    char why[256] = "";
    bool ok = kern && kern->supports(g, n, why, sizeof(why));
    TU_CHECK(ok, "case %d %s: refused: %s; rerun: test_igconv --only %d", id, desc, why, id);
    struct mixrt_tensor *tx, *tz, *tb;
    new_inputs(c, yd, &tx, &tz, &tb);
    const struct mixrt_tensor *w = g->values[g_wi].init, *bc = c->bias == 1 ? g->values[g_bi].init : NULL;
    const int n_in = c->z ? 4 : 3;
    const size_t ny = (size_t)(yd[0] * yd[1] * yd[2] * yd[3]);
    /* the second run on new X, Z and B (new buffers and values: nothing of the first run's kept),
     * but for the large cases (the same inputs again: the reference and f64 cost most there) */
    const bool fresh = out_rows(c) * c->m * c->c * c->k[0] * c->k[1] <= 6000000;
    void *state = NULL;
    mixrt_status st = ok ? kern->prepare(ctx, g, n, &state) : MIXRT_STATUS_UNSUPPORTED;
    TU_CHECK(!ok || st == MIXRT_STATUS_OK, "case %d %s: prepare: %s", id, desc, mixrt_context_last_error(ctx));
    struct mixrt_tensor yr;
    memset(&yr, 0, sizeof(yr));
    mixrt_status sr = MIXRT_STATUS_UNSUPPORTED;
    for (int rep = 0; rep < (once ? 1 : 2) && st == MIXRT_STATUS_OK; rep++) {
        if (rep == 1 && fresh) {
            free_inputs(tx, tz, tb);
            new_inputs(c, yd, &tx, &tz, &tb);
        }
        const struct mixrt_tensor *in[4] = {tx, w, tb ? tb : bc, tz};
        if (rep == 0 || fresh) {
            if (sr == MIXRT_STATUS_OK) mixrt_tensor_release(ctx, &yr);
            memset(&yr, 0, sizeof(yr));
            sr = run_node_into(ctx, ref, NULL, g, ni, n_in, in, &yr, NULL);
            TU_CHECK(sr == MIXRT_STATUS_OK, "case %d %s: reference: %s", id, desc, mixrt_context_last_error(ctx));
        }
        if (sr != MIXRT_STATUS_OK) break;
        /* guard: rep 0 against the page after, rep 1 before */
        struct kh_guarded gx = {0}, gb = {0}, gz = {0}, gy = {0};
        struct mixrt_tensor yf, vx, vb, vz;
        const struct mixrt_tensor *rin[4] = {in[0], in[1], in[2], in[3]};
        memset(&yf, 0, sizeof(yf));
        if (guard) {
            vx = kh_guarded_copy(tx, &gx, rep == 0);
            rin[0] = &vx;
            if (tb) vb = kh_guarded_copy(tb, &gb, rep == 0), rin[2] = &vb;
            if (tz) vz = kh_guarded_copy(tz, &gz, rep == 0), rin[3] = &vz;
            TU_CHECK(kh_guard_alloc(&gy, ny * 2, rep == 0), "guard pages: mmap failed");
            memset(gy.p, 0xff, ny * 2); /* NaN */
            yf.data = gy.p, yf.capacity = ny * 2, yf.flags = MIXRT_TENSOR_PREBOUND | MIXRT_TENSOR_UNINIT;
        }
        unsigned long refs = mixrt_igconv_ref_runs();
        mixrt_status sf = run_node_into(ctx, kern->run, state, g, ni, n_in, rin, &yf, NULL);
        TU_CHECK(sf == MIXRT_STATUS_OK, "case %d %s: run %d: %s", id, desc, rep + 1, mixrt_context_last_error(ctx));
        TU_CHECK(mixrt_igconv_ref_runs() == refs, "case %d %s: ran the reference, not the kernel", id, desc);
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
            TU_CHECK(e <= 1e-2,
                     "case %d %s: run %d: rel err %g against the reference > 1e-2; rerun: test_igconv --only %d", id,
                     desc, rep + 1, e, id);
            if (c->wdt == MIXRT_DTYPE_BF16 && (rep == 0 || fresh)) check_f64(id, desc, c, n, yd, in, yf.data, ny);
        }
        if (guard) {
            kh_guard_free(&gx);
            if (tb) kh_guard_free(&gb);
            if (tz) kh_guard_free(&gz);
            kh_guard_free(&gy);
        } else if (sf == MIXRT_STATUS_OK) {
            mixrt_tensor_release(ctx, &yf);
        }
    }
    if (sr == MIXRT_STATUS_OK) mixrt_tensor_release(ctx, &yr);
    if (state) kern->release(ctx, state);
    free_inputs(tx, tz, tb);
    mixrt_graph_destroy(g);
}

static int64_t pick(const int64_t *v, size_t n) { return v[tu_rand() % n]; }
#define PICK(v) pick(v, sizeof(v) / sizeof(v[0]))

/* Case r's shape: per image `per` output pixels as OH x OW (OH a divisor), X's H and W the
 * smallest that give them (plus up to a stride less one); where the pads alone would cover the
 * outputs, that axis goes unpadded. */
static void draw_random(int r, struct ig_case *c) {
    static const int64_t cs[] = {2, 4, 6, 16, 30, 32, 34, 64, 130, 256, 510, 2050};
    static const int64_t small_cs[] = {2, 4, 6, 16, 30, 34, 64, 130};
    static const int64_t ms[] = {1, 15, 16, 17, 63, 64, 65, 100, 128, 129, 200};
    static const int64_t ks[][2] = {{1, 1}, {3, 3}, {1, 3}, {5, 2}, {7, 7}, {1, 1}, {3, 3}};
    static const int64_t pers[] = {1, 2, 3, 4, 5, 6, 7, 8, 11, 12, 13, 17, 18, 19, 24, 25, 30, 36, 49, 64, 81, 100};
    tu_seed(0x16c5eedu + (uint64_t)r);
    do {
        memset(c, 0, sizeof(*c));
        c->n = r % 5 == 4 ? 2 : 1;
        const int kk = (int)(tu_rand() % 7);
        c->k[0] = ks[kk][0], c->k[1] = ks[kk][1];
        c->c = c->k[0] == 7 ? PICK(small_cs) : PICK(cs);
        c->m = PICK(ms);
        c->valid = r % 25 == 24;
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
            int64_t len = (od[i] - 1) * c->s[i] + ext + extra - (c->valid ? 0 : c->p[i] + c->p[i + 2]);
            if (len < 1) {
                c->p[i] = c->p[i + 2] = 0;
                len = (od[i] - 1) * c->s[i] + ext + extra;
            }
            *(i ? &c->w : &c->h) = len;
        }
        c->bias = (int)(tu_rand() % 3);
        c->bdt = tu_rand() % 2 ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32;
        c->z = tu_rand() % 2;
        c->act = r % MIXRT_FCONV_ACT_COUNT;
        c->wdt = r % 4 == 3 ? MIXRT_DTYPE_F32 : MIXRT_DTYPE_BF16;
        /* the f64 check and the reference cost rows x M x K: at most 6M products a case */
    } while (out_rows(c) * c->m * c->c * c->k[0] * c->k[1] > 6000000);
}

static int run_all(int id) {
    const int R = MIXRT_FCONV_RELU, N0 = MIXRT_FCONV_NONE;
    const mixrt_dtype BF = MIXRT_DTYPE_BF16, F32 = MIXRT_DTYPE_F32;
    int idx = 0;
    /* Each case: {N, H, W, C, M, kernel, strides, dilations, pads, B (0 none, 1 constant, 2 an
     * input), B's dtype, Z, activation, W's dtype, auto_pad VALID}.
     * Hand-picked: ResNet-50's stage-4 convs (and its stride-2 entry) at batch 1: K of 512 to 4608
     * (the 3x3s in steps of 1024 pairs that end on taps), 8 to 32 groups; the scalar twin runs
     * them once. */
    const struct ig_case big[] = {
        {1, 7, 7, 512, 512, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, BF, false, R, BF, false},
        {1, 14, 14, 512, 512, {3, 3}, {2, 2}, {1, 1}, {1, 1, 1, 1}, 1, BF, false, R, BF, false},
        {1, 7, 7, 512, 2048, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, BF, true, R, BF, false},
        {1, 7, 7, 2048, 512, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, BF, false, R, BF, false},
        {1, 14, 14, 1024, 2048, {1, 1}, {2, 2}, {1, 1}, {0, 0, 0, 0}, 1, BF, false, N0, BF, false},
    };
    for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) run_case(++id, idx++, &big[i], false, g_scalar, 2);
    /* Hand-picked edges: 1024 output pixels (the most; batch 2 too), VALID with pads set,
     * dilations 4x3, strides 5x4, a 16x1 kernel, pixels all in the padding. */
    const struct ig_case edge[] = {
        {1, 32, 32, 2, 17, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 2, F32, true, MIXRT_FCONV_LEAKY_RELU, BF, false},
        {2, 16, 32, 4, 20, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, F32, false, MIXRT_FCONV_HARD_SWISH, BF, false},
        {1, 6, 5, 6, 16, {3, 3}, {1, 1}, {1, 1}, {1, 2, 3, 1}, 1, BF, false, MIXRT_FCONV_TANH, BF, true},
        {1, 9, 10, 16, 33, {3, 3}, {1, 1}, {4, 3}, {0, 1, 0, 2}, 2, BF, true, MIXRT_FCONV_SILU, BF, false},
        {2, 11, 9, 8, 64, {2, 2}, {5, 4}, {1, 1}, {0, 0, 1, 0}, 0, BF, false, MIXRT_FCONV_GELU_TANH, BF, false},
        {1, 16, 3, 2, 16, {16, 1}, {1, 1}, {1, 1}, {2, 0, 1, 0}, 1, BF, false, MIXRT_FCONV_CLIP, BF, false},
        {1, 2, 2, 4, 80, {1, 1}, {1, 1}, {1, 1}, {2, 1, 0, 3}, 1, BF, true, MIXRT_FCONV_SIGMOID, BF, false},
    };
    for (size_t i = 0; i < sizeof(edge) / sizeof(edge[0]); i++)
        run_case(++id, idx++, &edge[i], false, false, 1 + (int)(i % 2));
    /* Random: C on and around the pairs and the K steps (510 and 2050: steps that start inside a
     * tap), M on and around the blocks and groups, 1 .. 200 rows, 1, 2 and 4 threads. */
    static const int threads[] = {2, 1, 4};
    static const int64_t want_rows[] = {1, 5, 6, 7, 11, 12, 13};
    unsigned seen = 0; /* rows of want_rows, C 510 and 2050 drawn */
    for (int r = 0; r < 150; r++) {
        struct ig_case c;
        draw_random(r, &c);
        const int64_t rows = out_rows(&c);
        for (int i = 0; i < 7; i++)
            if (rows == want_rows[i]) seen |= 1u << i;
        if (c.c == 510) seen |= 1u << 7;
        if (c.c == 2050) seen |= 1u << 8;
        run_case(++id, idx++, &c, false, false, threads[r % 3]);
    }
    TU_CHECK(seen == 0x1ff, "the random cases miss a row count of 1, 5, 6, 7, 11, 12, 13 or C 510 / 2050 (%#x)", seen);
    /* Against guard pages: a padded 3x3 of C 2 and M 1, a 5x2 strided and dilated one with a
     * staged activation and a run-time B, K steps inside a tap with a tail block, a 7x7 of 2 groups
     * over 4 threads, the smallest conv. */
    const struct ig_case gc[] = {
        {1, 3, 5, 2, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1, 1, 1}, 1, BF, true, N0, BF, false},
        {1, 8, 7, 34, 17, {5, 2}, {2, 1}, {1, 2}, {2, 0, 1, 3}, 2, F32, true, MIXRT_FCONV_GELU, BF, false},
        {2, 3, 3, 2050, 15, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 1, F32, true, R, BF, false},
        {1, 3, 3, 130, 65, {7, 7}, {1, 1}, {1, 1}, {3, 3, 3, 3}, 2, BF, true, MIXRT_FCONV_SILU, BF, false},
        {1, 1, 1, 2, 1, {1, 1}, {1, 1}, {1, 1}, {0, 0, 0, 0}, 0, BF, false, N0, BF, false},
    };
    for (size_t i = 0; i < sizeof(gc) / sizeof(gc[0]); i++) run_case(++id, idx++, &gc[i], true, false, i == 3 ? 4 : 2);
    return id;
}

/* The refusals' case (one the kernel takes): a padded 3x3 of 16 -> 32 channels on 4x4. */
static const struct ig_case g_base = {1,
                                      4,
                                      4,
                                      16,
                                      32,
                                      {3, 3},
                                      {1, 1},
                                      {1, 1},
                                      {1, 1, 1, 1},
                                      1,
                                      MIXRT_DTYPE_BF16,
                                      false,
                                      MIXRT_FCONV_NONE,
                                      MIXRT_DTYPE_BF16,
                                      false};

/* A node the kernel must refuse (supports() false with a reason, containing `needle` if set). */
static void check_refuses(const char *what, struct mixrt_graph *g, int ni, const char *needle) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("ig_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    if (!kern) return;
    char why[256] = "";
    bool ok = kern->supports(g, &g->nodes[ni], why, sizeof(why));
    TU_CHECK(!ok && why[0] && (!needle || strstr(why, needle)),
             "refuse %s: supports() accepted it, or gave no reason or not the expected one ('%s')", what, why);
}

static void test_refusals(void) {
    const struct ig_case c = g_base;
    int ni;
    int64_t yd[4];
    struct mixrt_graph *g = build(&c, &ni, yd);
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("ig_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    char why[256] = "";
    TU_CHECK(kern && kern->supports(g, &g->nodes[ni], why, sizeof(why)), "refusals: the base case is refused: %s", why);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g->nodes[ni].inputs[0]].dtype = MIXRT_DTYPE_F32;
    g->values[g->nodes[ni].outputs[0]].dtype = MIXRT_DTYPE_F32;
    check_refuses("f32 X and Y", g, ni, NULL);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    set_attr_int(g, ni, "channels_last", 0);
    check_refuses("channels_last 0", g, ni, NULL);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    set_attr_int(g, ni, "group", 2);
    check_refuses("group 2", g, ni, NULL);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g_wi].flags |= MIXRT_VALUE_GRAPH_INPUT;
    check_refuses("W not constant", g, ni, "constant");
    g->values[g_wi].flags &= ~MIXRT_VALUE_GRAPH_INPUT;
    mixrt_graph_destroy(g);

    struct ig_case v = c;
    v.c = 15;
    g = build(&v, &ni, yd);
    check_refuses("odd C", g, ni, NULL);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    node_attr_str(g, ni, "auto_pad", "SAME_UPPER");
    check_refuses("auto_pad SAME_UPPER", g, ni, "SAME");
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
    g->values[g_xi].dims[1].value = -1, g->values[g_xi].dims[1].param = "h";
    check_refuses("X's height unknown", g, ni, NULL);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g_xi].dims[0].value = -1, g->values[g_xi].dims[0].param = "batch";
    check_refuses("X's batch unknown", g, ni, NULL);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g_xi].dims[3].value = 18;
    check_refuses("X's channels 18, W's 16", g, ni, NULL);
    mixrt_graph_destroy(g);

    v = c, v.h = 2, v.p[0] = v.p[2] = 0; /* 3 rows of kernel over 2 unpadded */
    g = build(&v, &ni, yd);
    check_refuses("kernel over the padded image", g, ni, NULL);
    mixrt_graph_destroy(g);

    v = c, v.h = 20, v.k[0] = 17, v.k[1] = 1, v.c = 2;
    g = build(&v, &ni, yd);
    check_refuses("KH 17", g, ni, NULL);
    mixrt_graph_destroy(g);

    v = c, v.m = 65537, v.c = 2, v.k[0] = v.k[1] = 1, v.p[0] = v.p[1] = v.p[2] = v.p[3] = 0;
    g = build(&v, &ni, yd);
    check_refuses("M 65537", g, ni, NULL);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    node_attr_ints(g, ni, "dilations", 2, (int64_t[]){1, 65});
    check_refuses("dilation 65", g, ni, NULL);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    set_ints(g, ni, "strides", (int64_t[]){0, 1});
    check_refuses("stride 0", g, ni, NULL);
    mixrt_graph_destroy(g);

    v = c, v.z = true;
    g = build(&v, &ni, yd);
    g->values[g->nodes[ni].inputs[3]].dtype = MIXRT_DTYPE_F32;
    check_refuses("f32 Z", g, ni, NULL);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd); /* the reference refuses such a model as invalid; so must the kernel */
    set_ints(g, ni, "kernel_shape", (int64_t[]){c.k[0] + 1, c.k[1]});
    check_refuses("kernel_shape other than W's", g, ni, "kernel_shape");
    mixrt_graph_destroy(g);

    /* N x OH x OW = 2^84: past int64 if multiplied unguarded (shapes only: nothing allocated) */
    v = c, v.n = (int64_t)1 << 40, v.h = v.w = (int64_t)1 << 22, v.k[0] = v.k[1] = 1;
    v.p[0] = v.p[1] = v.p[2] = v.p[3] = 0;
    g = build(&v, &ni, yd);
    check_refuses("2^40 images", g, ni, "1024");
    mixrt_graph_destroy(g);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--only")) g_only = atoi(argv[i + 1]);
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
#ifdef _OPENMP
    const int threads0 = omp_get_max_threads();
#endif
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    const bool tiles = f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq && f->avx512_bf16;
    int id = 0;
    if (tiles) {
        printf("test_igconv: the AVX512-BF16 tile kernel\n");
        g_scalar = false;
        id = run_all(0);
    } else {
        printf("test_igconv: SKIPPED the AVX512-BF16 tile kernel (this CPU has no AVX512-BF16); the scalar twin "
               "still runs\n");
        /* supports() must then refuse, naming why */
        mixrt_igconv_force_scalar(false);
        const struct ig_case c = g_base;
        int ni;
        int64_t yd[4];
        struct mixrt_graph *g = build(&c, &ni, yd);
        check_refuses("no AVX512-BF16", g, ni, "AVX512-BF16");
        mixrt_graph_destroy(g);
        id = 1000;
    }
    mixrt_igconv_force_scalar(true);
    g_scalar = true;
    printf("test_igconv: the scalar twin\n");
    const int first_scalar = id + 1;
    id = run_all(id);
    if (!g_only) test_refusals();
    mixrt_igconv_force_scalar(false);
#ifdef _OPENMP
    omp_set_num_threads(threads0);
#endif
    printf("test_igconv: cases %d (tile) + %d (scalar twin)\n", tiles ? first_scalar - 1 : 0, id - first_scalar + 1);
    mixrt_context_destroy(ctx);
    return tu_finish("test_igconv");
}
