/* test_stemconv.c - the few-input-channel channels-last FusedConv kernel (stemconv.c,
 * "stem_conv_nhwc") on random data: 1, 3 and 4 input channels; output channels on and around the
 * 16-channel vectors and the 4- and 8-pixel blocks (1, 16, 24, 32, 40, 64, 72, 96); kernels 1x1,
 * 3x3, 4x4 (ConvNeXt's patches), 5x5 and 7x7 at strides 1, 2 and 4 with symmetric, uneven and no
 * pads, inputs narrower than the kernel; batch 2; every activation (in register and over f32
 * rows); with and without B; f32 and bf16 X and Y. Each output element against an f64
 * computation of the same conv from the same (rounded) operands, within what the f32 sums and
 * the one rounding to Y's dtype allow; the kernel must not hand the case to the reference. The
 * AVX-512 row kernel where the CPU has AVX-512 (reported as skipped where not), the scalar twin
 * always; then the cases it must refuse.
 * Usage: test_stemconv [--only N] (N: a case number, as printed on failure). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/stemconv_impl.h"
#include "graph_build.h"
#include "testutil.h"

static mixrt_context_t ctx;
static int g_only;
static bool g_scalar_mode; /* the scalar twins run (mixrt_stemconv_force_scalar) */

struct st_case {
    int64_t n, h, w, c, m, k[2], s[2], p[4];
    bool bias;
    int act; /* enum mixrt_fconv_act */
    mixrt_dtype dt;
    bool w_f32; /* W f32 beside a bf16 X */
};

static struct mixrt_graph *new_graph(void) {
    struct mixrt_graph *g = NULL;
    TU_CHECK(mixrt_graph_create(ctx, NULL, &g) == MIXRT_STATUS_OK, "graph create");
    static const struct mixrt_opset op17 = {"", 17};
    g->opsets = &op17;
    g->n_opsets = 1;
    return g;
}

static void set_ints(struct mixrt_graph *g, int ni, const char *name, const int64_t *v) {
    for (int a = 0; a < g->nodes[ni].n_attrs; a++)
        if (!strcmp(g->nodes[ni].attrs[a].name, name))
            memcpy(g->nodes[ni].attrs[a].ints, v, g->nodes[ni].attrs[a].n * sizeof(int64_t));
}

static int g_wi, g_bi;

static struct mixrt_graph *build(const struct st_case *c, int *ni_out, int64_t *yd) {
    struct mixrt_graph *g = new_graph();
    const int64_t xd[4] = {c->n, c->h, c->w, c->c};
    yd[0] = c->n, yd[1] = (c->h + c->p[0] + c->p[2] - c->k[0]) / c->s[0] + 1;
    yd[2] = (c->w + c->p[1] + c->p[3] - c->k[1]) / c->s[1] + 1, yd[3] = c->m;
    int x = add_input(g, "x", c->dt, 4, xd);
    const double a = 1.7 / sqrt((double)(c->c * c->k[0] * c->k[1]));
    g_wi = add_const_uniform(ctx, g, "w", c->w_f32 ? MIXRT_DTYPE_F32 : c->dt, 4, (int64_t[]){c->m, c->c, c->k[0], c->k[1]}, a);
    g_bi = c->bias ? add_const_uniform(ctx, g, "b", c->dt, 1, &c->m, 0.5) : -1;
    int ni = add_fused_conv_nhwc(g, "stem", x, g_wi, g_bi, -1, "y", c->dt, yd, c->k[0], c->k[1], c->p);
    set_ints(g, ni, "strides", c->s);
    node_attr_str(g, ni, "activation", mixrt_fconv_act_names[c->act]);
    if (c->act == MIXRT_FCONV_CLIP) node_attr_floats(g, ni, "activation_params", 2, (float[]){-0.5f, 0.75f});
    if (c->act == MIXRT_FCONV_LEAKY_RELU) node_attr_floats(g, ni, "activation_params", 1, (float[]){0.1f});
    *ni_out = ni;
    return g;
}

/* The conv's output (bi, oy, ox, j) in f64 before the activation: b + the sum over the taps
 * inside X of x w; *mag = |b| + sum |x w|. */
static double conv_f64(const struct st_case *c, const struct mixrt_tensor *tx, const struct mixrt_tensor *w,
                       const struct mixrt_tensor *b, int64_t bi, int64_t oy, int64_t ox, int64_t j, double *mag) {
    double v = b ? mixrt_load_f64(b->data, b->dtype, (size_t)j) : 0.0;
    *mag = fabs(v);
    for (int64_t ci = 0; ci < c->c; ci++)
        for (int64_t ky = 0; ky < c->k[0]; ky++)
            for (int64_t kx = 0; kx < c->k[1]; kx++) {
                const int64_t iy = oy * c->s[0] - c->p[0] + ky, ix = ox * c->s[1] - c->p[1] + kx;
                if (iy < 0 || iy >= c->h || ix < 0 || ix >= c->w) continue;
                const double t = mixrt_load_f64(tx->data, c->dt, (size_t)(((bi * c->h + iy) * c->w + ix) * c->c + ci)) *
                                 mixrt_load_f64(w->data, w->dtype, (size_t)(((j * c->c + ci) * c->k[0] + ky) * c->k[1] + kx));
                v += t, *mag += fabs(t);
            }
    return v;
}

/* Case id against f64: y = act(b + sum over the taps inside X of x w), |got - y| <= 2^-8 |y| +
 * 2^-14 mag for bf16 Y (one rounding, f32 sums of at most 196 terms), 2^-21 |y| + 2^-18 mag for
 * f32 (sums, and the activations' f32 evaluation), mag = |b| + sum |x w|; twice those for the
 * activations' slopes (at most 1.5) and SiLU's bf16 approximation (1e-4). */
static void run_case(int id, const struct st_case *c) {
    if (g_only && id != g_only) return;
    char desc[200];
    snprintf(desc, sizeof(desc), "N=%lld %lldx%lldx%lld M=%lld k=%lldx%lld s=%lldx%lld p=%lld,%lld,%lld,%lld %s%s%s act=%s",
             (long long)c->n, (long long)c->h, (long long)c->w, (long long)c->c, (long long)c->m, (long long)c->k[0],
             (long long)c->k[1], (long long)c->s[0], (long long)c->s[1], (long long)c->p[0], (long long)c->p[1],
             (long long)c->p[2], (long long)c->p[3], mixrt_dtype_name(c->dt), c->w_f32 ? " W f32" : "", c->bias ? " B" : "",
             mixrt_fconv_act_names[c->act][0] ? mixrt_fconv_act_names[c->act] : "none");
    int ni;
    int64_t yd[4];
    struct mixrt_graph *g = build(c, &ni, yd);
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("stem_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    TU_CHECK(kern != NULL, "case %d: stem_conv_nhwc is not registered", id);
    char why[256] = "";
    bool ok = kern && kern->supports(g, n, why, sizeof(why));
    TU_CHECK(ok, "case %d %s: refused: %s; rerun: test_stemconv --only %d", id, desc, why, id);
    struct mixrt_tensor *tx = NULL;
    TU_CHECK(mixrt_tensor_create(ctx, c->dt, 4, (int64_t[]){c->n, c->h, c->w, c->c}, &tx) == MIXRT_STATUS_OK, "x");
    for (size_t i = 0; i < mixrt_tensor_numel(tx); i++) mixrt_store_f64(tx->data, c->dt, i, tu_uniform(-1.0, 1.0));
    const struct mixrt_tensor *w = g->values[g_wi].init, *b = c->bias ? g->values[g_bi].init : NULL;
    const struct mixrt_tensor *in[3] = {tx, w, b};
    void *state = NULL;
    if (ok && kern->prepare(ctx, g, n, &state) == MIXRT_STATUS_OK) {
        enum mixrt_fconv_act act = MIXRT_FCONV_NONE;
        float p0 = 0, p1 = 0;
        TU_CHECK(mixrt_fconv_read_act(n, &act, &p0, &p1), "case %d: activation", id);
        for (int rep = 0; rep < 2; rep++) { /* the second run reuses the state */
            struct mixrt_tensor yf;
            memset(&yf, 0, sizeof(yf));
            unsigned long refs = mixrt_stemconv_ref_runs();
            mixrt_status sf = run_node_into(ctx, kern->run, state, g, ni, 3, in, &yf, NULL);
            TU_CHECK(sf == MIXRT_STATUS_OK, "case %d %s: run: %s", id, desc, mixrt_context_last_error(ctx));
            TU_CHECK(mixrt_stemconv_ref_runs() == refs, "case %d %s: ran the reference, not the kernel", id, desc);
            if (sf != MIXRT_STATUS_OK) continue;
            TU_CHECK(yf.dtype == c->dt && yf.rank == 4 && !memcmp(yf.dims, yd, sizeof(yd)),
                     "case %d %s: output shape or dtype wrong", id, desc);
            size_t bad = 0, first = 0, ny = mixrt_tensor_numel(&yf);
            double first_ref = 0;
            for (int64_t bi = 0; bi < yd[0]; bi++)
                for (int64_t oy = 0; oy < yd[1]; oy++)
                    for (int64_t ox = 0; ox < yd[2]; ox++)
                        for (int64_t j = 0; j < c->m; j++) {
                            double mag;
                            const double v = conv_f64(c, tx, w, b, bi, oy, ox, j, &mag);
                            const double r = mixrt_fconv_apply(act, p0, p1, v);
                            const size_t at = (size_t)(((bi * yd[1] + oy) * yd[2] + ox) * c->m + j);
                            const double got = mixrt_load_f64(yf.data, c->dt, at);
                            const double tol = c->dt == MIXRT_DTYPE_BF16 ? 2 * (ldexp(fabs(r), -8) + ldexp(mag, -14))
                                                                         : 2 * (ldexp(fabs(r), -21) + ldexp(mag, -18));
                            if (!(fabs(got - r) <= tol) && bad++ == 0) first = at, first_ref = r;
                        }
            TU_CHECK(bad == 0, "case %d %s: %zu of %zu elements off f64, first #%zu: %g, f64 %g; rerun: test_stemconv --only %d",
                     id, desc, bad, ny, first, bad ? mixrt_load_f64(yf.data, c->dt, first) : 0.0, first_ref, id);
            mixrt_tensor_release(ctx, &yf);
        }
        kern->release(ctx, state);
    } else if (ok) {
        TU_CHECK(false, "case %d %s: prepare: %s", id, desc, mixrt_context_last_error(ctx));
    }
    mixrt_tensor_destroy(ctx, tx);
    mixrt_graph_destroy(g);
}

static int run_all(int id) {
    static const struct {
        int64_t k[2], s[2], p[4];
    } geo[] = {{{3, 3}, {2, 2}, {1, 1, 1, 1}}, {{3, 3}, {1, 1}, {1, 1, 1, 1}}, {{3, 3}, {2, 2}, {0, 0, 1, 1}},
               {{7, 7}, {2, 2}, {3, 3, 3, 3}}, {{4, 4}, {4, 4}, {0, 0, 0, 0}}, {{1, 1}, {1, 1}, {0, 0, 0, 0}},
               {{5, 5}, {2, 1}, {2, 0, 1, 3}}, {{3, 3}, {2, 2}, {2, 2, 2, 2}}};
    static const int64_t ms[] = {1, 16, 24, 32, 40, 64, 72, 96};
    static const int64_t cs[] = {3, 1, 4};
    /* every geometry and output count, f32 and bf16, on ~20x23 images (blocks and edges) */
    for (size_t gi = 0; gi < sizeof(geo) / sizeof(geo[0]); gi++)
        for (size_t mi = 0; mi < sizeof(ms) / sizeof(ms[0]); mi++)
            for (int d = 0; d < 2; d++) {
                struct st_case c = {2, 19 + (int64_t)gi % 3, 23 + (int64_t)mi % 4, cs[(gi + mi) % 3], ms[mi],
                                    {geo[gi].k[0], geo[gi].k[1]}, {geo[gi].s[0], geo[gi].s[1]},
                                    {geo[gi].p[0], geo[gi].p[1], geo[gi].p[2], geo[gi].p[3]}, (mi + gi) % 2 == 0,
                                    (int)((gi * 3 + mi) % MIXRT_FCONV_ACT_COUNT),
                                    d ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32, false};
                run_case(++id, &c);
            }
    /* every activation on a MobileNet stem, both dtypes */
    for (int a = 0; a < MIXRT_FCONV_ACT_COUNT; a++)
        for (int d = 0; d < 2; d++) {
            struct st_case c = {1, 32, 30, 3, 32, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, a,
                                d ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32, false};
            run_case(++id, &c);
        }
    /* bf16 X with f32 W, 3 and 4 channels */
    for (int64_t ch = 3; ch <= 4; ch++) {
        struct st_case c = {2, 21, 26, ch, 40, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, MIXRT_FCONV_SILU, MIXRT_DTYPE_BF16,
                            true};
        run_case(++id, &c);
    }
    /* an input narrower and shorter than the kernel (padding fills the rest) */
    struct st_case narrow = {1, 2, 3, 3, 24, {5, 5}, {1, 1}, {2, 2, 2, 2}, true, MIXRT_FCONV_RELU, MIXRT_DTYPE_F32,
                             false};
    run_case(++id, &narrow);
    narrow.dt = MIXRT_DTYPE_BF16;
    run_case(++id, &narrow);
    return id;
}

/* ---- FusedConvMaxPool ("stem_pool_nhwc") ---------------------------------------------------- */

struct pool_case {
    struct st_case cv;
    int64_t k[2], s[2], p[4];
    bool ceil_mode;
    int poison; /* 0: none, 1: an infinity in X, 2: a NaN in X */
};

/* ONNX MaxPool's output length (the reference's rule). */
static int64_t pooled(int64_t n, int64_t k, int64_t s, int64_t pb, int64_t pe, bool ceil_mode) {
    const int64_t span = n + pb + pe - k;
    int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
    if (ceil_mode && out > 1 && (out - 1) * s >= n + pb) out--;
    return out;
}

/* Case id against f64: the conv as in run_case, rounded to Y's dtype (as the FusedConv the node
 * replaces stored it), then the max over each window (NaN wins); the kernel (and, on the same
 * inputs, the reference kernel - the engine's oracle for this op) within the conv's tolerance of
 * the window's largest magnitude, NaN exactly where f64 has one. */
static void run_pool_case(int id, const struct pool_case *pc) {
    if (g_only && id != g_only) return;
    const struct st_case *c = &pc->cv;
    char desc[240];
    snprintf(desc, sizeof(desc), "N=%lld %lldx%lldx%lld M=%lld conv k=%lld s=%lld p=%lld pool k=%lldx%lld s=%lldx%lld p=%lld,%lld,%lld,%lld%s %s act=%s poison=%d",
             (long long)c->n, (long long)c->h, (long long)c->w, (long long)c->c, (long long)c->m, (long long)c->k[0],
             (long long)c->s[0], (long long)c->p[0], (long long)pc->k[0], (long long)pc->k[1], (long long)pc->s[0],
             (long long)pc->s[1], (long long)pc->p[0], (long long)pc->p[1], (long long)pc->p[2], (long long)pc->p[3],
             pc->ceil_mode ? " ceil" : "", mixrt_dtype_name(c->dt),
             mixrt_fconv_act_names[c->act][0] ? mixrt_fconv_act_names[c->act] : "none", pc->poison);
    int ni;
    int64_t cd[4];
    struct mixrt_graph *g = build(c, &ni, cd);
    const int64_t pd[4] = {c->n, pooled(cd[1], pc->k[0], pc->s[0], pc->p[0], pc->p[2], pc->ceil_mode),
                           pooled(cd[2], pc->k[1], pc->s[1], pc->p[1], pc->p[3], pc->ceil_mode), c->m};
    g->nodes[ni].op_type = "FusedConvMaxPool";
    node_attr_ints(g, ni, "pool_kernel_shape", 2, pc->k);
    node_attr_ints(g, ni, "pool_strides", 2, pc->s);
    node_attr_ints(g, ni, "pool_pads", 4, pc->p);
    if (pc->ceil_mode) node_attr_int(g, ni, "pool_ceil_mode", 1);
    struct mixrt_value *yv = &g->values[g->nodes[ni].outputs[0]];
    for (int i = 0; i < 4; i++) yv->dims[i].value = pd[i];
    const struct mixrt_node *n = &g->nodes[ni];
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("stem_pool_nhwc", MIXRT_DOMAIN, "FusedConvMaxPool");
    TU_CHECK(kern != NULL, "case %d: stem_pool_nhwc is not registered", id);
    char why[256] = "";
    bool ok = kern && kern->supports(g, n, why, sizeof(why));
    TU_CHECK(ok, "case %d %s: refused: %s; rerun: test_stemconv --only %d", id, desc, why, id);
    mixrt_kernel_fn ref = NULL;
    TU_CHECK(mixrt_ref_find(ctx, n, &ref) == MIXRT_STATUS_OK && ref, "case %d: no reference kernel", id);
    struct mixrt_tensor *tx = NULL;
    TU_CHECK(mixrt_tensor_create(ctx, c->dt, 4, (int64_t[]){c->n, c->h, c->w, c->c}, &tx) == MIXRT_STATUS_OK, "x");
    const size_t nx = mixrt_tensor_numel(tx);
    for (size_t i = 0; i < nx; i++) mixrt_store_f64(tx->data, c->dt, i, tu_uniform(-1.0, 1.0));
    if (pc->poison) mixrt_store_f64(tx->data, c->dt, nx / 3, pc->poison == 1 ? INFINITY : NAN);
    const struct mixrt_tensor *w = g->values[g_wi].init, *b = c->bias ? g->values[g_bi].init : NULL;
    const struct mixrt_tensor *in[3] = {tx, w, b};
    enum mixrt_fconv_act act = MIXRT_FCONV_NONE;
    float p0 = 0, p1 = 0;
    TU_CHECK(mixrt_fconv_read_act(n, &act, &p0, &p1), "case %d: activation", id);
    /* the conv in f64, rounded to the dtype; its magnitudes */
    const size_t ncv = (size_t)(cd[0] * cd[1] * cd[2] * cd[3]);
    double *cv = malloc(ncv * sizeof(double)), *mg = malloc(ncv * sizeof(double));
    TU_CHECK(cv && mg, "out of memory");
    for (int64_t bi = 0; bi < cd[0]; bi++)
        for (int64_t oy = 0; oy < cd[1]; oy++)
            for (int64_t ox = 0; ox < cd[2]; ox++)
                for (int64_t j = 0; j < c->m; j++) {
                    double mag;
                    const double v = conv_f64(c, tx, w, b, bi, oy, ox, j, &mag);
                    uint64_t buf = 0;
                    mixrt_store_f64(&buf, c->dt, 0, mixrt_fconv_apply(act, p0, p1, v));
                    const size_t at = (size_t)(((bi * cd[1] + oy) * cd[2] + ox) * c->m + j);
                    cv[at] = mixrt_load_f64(&buf, c->dt, 0), mg[at] = mag;
                }
    void *state = NULL;
    if (ok && kern->prepare(ctx, g, n, &state) == MIXRT_STATUS_OK) {
        for (int rep = 0; rep < 3; rep++) { /* the kernel twice (the second reuses the state), then the reference */
            struct mixrt_tensor yf;
            memset(&yf, 0, sizeof(yf));
            unsigned long refs = mixrt_stemconv_ref_runs(), f32r = mixrt_stemconv_f32_runs();
            mixrt_status sf = run_node_into(ctx, rep < 2 ? kern->run : ref, rep < 2 ? state : NULL, g, ni, 3, in, &yf, NULL);
            const char *who = rep < 2 ? "stem_pool_nhwc" : "the reference";
            TU_CHECK(sf == MIXRT_STATUS_OK, "case %d %s: %s: %s", id, desc, who, mixrt_context_last_error(ctx));
            TU_CHECK(mixrt_stemconv_ref_runs() == refs, "case %d %s: ran the reference, not the kernel", id, desc);
            /* a bf16 X with an infinity or NaN and an odd kw * c takes the f32 path; else not */
            const bool f32_path = rep < 2 && c->dt == MIXRT_DTYPE_BF16 && !c->w_f32 && !g_scalar_mode && pc->poison &&
                                  (c->k[1] * c->c) % 2 == 1 && mixrt_cpu_features()->avx512_bf16;
            if (rep < 2)
                TU_CHECK(mixrt_stemconv_f32_runs() - f32r == (f32_path ? 1u : 0u),
                         "case %d %s: f32 path taken %lu times, expected %d", id, desc, mixrt_stemconv_f32_runs() - f32r,
                         f32_path);
            if (sf != MIXRT_STATUS_OK) continue;
            TU_CHECK(yf.dtype == c->dt && yf.rank == 4 && !memcmp(yf.dims, pd, sizeof(pd)),
                     "case %d %s: %s: output shape or dtype wrong", id, desc, who);
            size_t bad = 0, first = 0, ny = mixrt_tensor_numel(&yf);
            double first_ref = 0;
            for (int64_t bi = 0; bi < pd[0]; bi++)
                for (int64_t py = 0; py < pd[1]; py++)
                    for (int64_t px = 0; px < pd[2]; px++)
                        for (int64_t j = 0; j < c->m; j++) {
                            double r = -INFINITY, mag = 0;
                            for (int64_t ky = 0; ky < pc->k[0]; ky++)
                                for (int64_t kx = 0; kx < pc->k[1]; kx++) {
                                    const int64_t cy = py * pc->s[0] - pc->p[0] + ky, cx = px * pc->s[1] - pc->p[1] + kx;
                                    if (cy < 0 || cy >= cd[1] || cx < 0 || cx >= cd[2]) continue;
                                    const size_t at = (size_t)(((bi * cd[1] + cy) * cd[2] + cx) * c->m + j);
                                    if (cv[at] > r || (isnan(cv[at]) && !isnan(r))) r = cv[at];
                                    if (mg[at] > mag) mag = mg[at];
                                }
                            const size_t at = (size_t)(((bi * pd[1] + py) * pd[2] + px) * c->m + j);
                            const double got = mixrt_load_f64(yf.data, c->dt, at);
                            const double tol = c->dt == MIXRT_DTYPE_BF16 ? 2 * (ldexp(fabs(r), -8) + ldexp(mag, -14))
                                                                         : 2 * (ldexp(fabs(r), -21) + ldexp(mag, -18));
                            const bool same = isnan(r) ? isnan(got) : isinf(r) ? got == r : fabs(got - r) <= tol;
                            if (!same && bad++ == 0) first = at, first_ref = r;
                        }
            TU_CHECK(bad == 0, "case %d %s: %s: %zu of %zu elements off f64, first #%zu: %g, f64 %g; rerun: test_stemconv --only %d",
                     id, desc, who, bad, ny, first, bad ? mixrt_load_f64(yf.data, c->dt, first) : 0.0, first_ref, id);
            mixrt_tensor_release(ctx, &yf);
        }
        kern->release(ctx, state);
    } else if (ok) {
        TU_CHECK(false, "case %d %s: prepare: %s", id, desc, mixrt_context_last_error(ctx));
    }
    free(cv);
    free(mg);
    mixrt_tensor_destroy(ctx, tx);
    mixrt_graph_destroy(g);
}

static int run_pool_all(int id) {
    /* ResNet's stem and pool; GoogLeNet's ceil-mode pool; a 2x2 stride-2 pool; uneven pool pads;
     * a stride-1 3x3 pool (rows shared by many windows); a pool window wider than the stride */
    static const struct {
        int64_t ck, cs, cp, k[2], s[2], p[4];
        bool ceil_mode;
    } geo[] = {{7, 2, 3, {3, 3}, {2, 2}, {1, 1, 1, 1}, false}, {7, 2, 3, {3, 3}, {2, 2}, {0, 0, 0, 0}, true},
               {3, 2, 1, {2, 2}, {2, 2}, {0, 0, 0, 0}, false}, {3, 1, 1, {3, 2}, {2, 1}, {2, 0, 0, 1}, false},
               {5, 2, 2, {3, 3}, {1, 1}, {1, 1, 1, 1}, false}, {4, 4, 0, {5, 4}, {3, 2}, {1, 0, 2, 1}, true}};
    static const int64_t ms[] = {64, 16, 24, 40, 48, 96}; /* 48, 96: the pool's 3- and 4 + 2-vector paths */
    for (size_t gi = 0; gi < sizeof(geo) / sizeof(geo[0]); gi++)
        for (size_t mi = 0; mi < sizeof(ms) / sizeof(ms[0]); mi++)
            for (int d = 0; d < 2; d++) {
                const int64_t cp = geo[gi].cp;
                struct pool_case pc = {{1 + (int64_t)(mi % 2), 29 + (int64_t)gi % 3, 31 + (int64_t)mi % 4, 3 - (int64_t)(mi == 2) + (int64_t)(mi == 3),
                                        ms[mi], {geo[gi].ck, geo[gi].ck}, {geo[gi].cs, geo[gi].cs}, {cp, cp, cp, cp},
                                        (mi + gi) % 2 == 0, (int)((gi * 5 + mi * 3 + (size_t)d) % MIXRT_FCONV_ACT_COUNT),
                                        d ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32, false},
                                       {geo[gi].k[0], geo[gi].k[1]}, {geo[gi].s[0], geo[gi].s[1]},
                                       {geo[gi].p[0], geo[gi].p[1], geo[gi].p[2], geo[gi].p[3]}, geo[gi].ceil_mode, 0};
                run_pool_case(++id, &pc);
            }
    /* an infinity and a NaN in X (the bf16 pairs kernel hands an odd kw * c to the f32 path; the
     * pool keeps NaN), ResNet's geometry, ReLU and none (ReLU's max with 0 drops a NaN: without
     * it the NaN reaches the pool, whose fast passes must see it), both dtypes */
    for (int poison = 1; poison <= 2; poison++)
        for (int a = 0; a < 2; a++)
            for (int d = 0; d < 2; d++) {
                struct pool_case pc = {{1, 40, 36, 3, 64, {7, 7}, {2, 2}, {3, 3, 3, 3}, true,
                                        a ? MIXRT_FCONV_NONE : MIXRT_FCONV_RELU, d ? MIXRT_DTYPE_BF16 : MIXRT_DTYPE_F32,
                                        false},
                                       {3, 3}, {2, 2}, {1, 1, 1, 1}, false, poison};
                run_pool_case(++id, &pc);
            }
    return id;
}

static void check_refuses(const char *what, struct mixrt_graph *g, int ni) {
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find("stem_conv_nhwc", MIXRT_DOMAIN, "FusedConv");
    if (!kern) return;
    char why[256] = "";
    bool ok = kern->supports(g, &g->nodes[ni], why, sizeof(why));
    TU_CHECK(!ok && why[0], "refuse %s: supports() accepted it (or gave no reason)", what);
}

static void test_refusals(void) {
    const struct st_case c = {1, 8, 8, 3, 16, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, MIXRT_FCONV_NONE, MIXRT_DTYPE_F32,
                              false};
    const struct st_case five = {1, 8, 8, 5, 16, {3, 3}, {2, 2}, {1, 1, 1, 1}, true, MIXRT_FCONV_NONE, MIXRT_DTYPE_F32,
                                 false};
    int ni;
    int64_t yd[4];
    struct mixrt_graph *g = build(&five, &ni, yd);
    check_refuses("5 input channels", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g->nodes[ni].outputs[0]].dtype = MIXRT_DTYPE_BF16;
    check_refuses("f32 X, bf16 Y", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    for (int a = 0; a < g->nodes[ni].n_attrs; a++) {
        if (!strcmp(g->nodes[ni].attrs[a].name, "group")) g->nodes[ni].attrs[a].i = 3;
    }
    check_refuses("group 3", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    node_attr_ints(g, ni, "dilations", 2, (int64_t[]){2, 2});
    check_refuses("dilation 2", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    node_attr_str(g, ni, "auto_pad", "SAME_UPPER");
    check_refuses("auto_pad SAME_UPPER", g, ni);
    mixrt_graph_destroy(g);

    g = build(&c, &ni, yd);
    g->values[g_wi].flags |= MIXRT_VALUE_GRAPH_INPUT;
    check_refuses("W not constant", g, ni);
    g->values[g_wi].flags &= ~MIXRT_VALUE_GRAPH_INPUT;
    mixrt_graph_destroy(g);

    const struct mixrt_cpu_kernel *pk = mixrt_cpu_kernel_find("stem_pool_nhwc", MIXRT_DOMAIN, "FusedConvMaxPool");
    TU_CHECK(pk != NULL, "stem_pool_nhwc is not registered");
    for (int bad = 0; pk && bad < 3; bad++) { /* no pool kernel, a pad as large as the kernel, a dilated pool */
        g = build(&c, &ni, yd);
        g->nodes[ni].op_type = "FusedConvMaxPool";
        if (bad > 0) node_attr_ints(g, ni, "pool_kernel_shape", 2, (int64_t[]){3, 3});
        if (bad == 1) node_attr_ints(g, ni, "pool_pads", 4, (int64_t[]){1, 3, 1, 1});
        if (bad == 2) node_attr_ints(g, ni, "pool_dilations", 2, (int64_t[]){2, 2});
        char why[256] = "";
        TU_CHECK(!pk->supports(g, &g->nodes[ni], why, sizeof(why)) && why[0], "refuse pool case %d: accepted", bad);
        mixrt_graph_destroy(g);
    }

    g = build(&c, &ni, yd); /* a residual Z */
    int z = add_input(g, "z", MIXRT_DTYPE_F32, 4, yd);
    g->nodes[ni].n_inputs = 4;
    g->nodes[ni].inputs[3] = z;
    check_refuses("Z", g, ni);
    mixrt_graph_destroy(g);
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--only")) g_only = atoi(argv[i + 1]);
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    int id = 0;
    if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512dq) {
        printf("test_stemconv: the AVX-512 row kernel\n");
        tu_seed(21);
        id = run_all(0);
        id = run_pool_all(id);
    } else {
        printf("test_stemconv: SKIPPED the AVX-512 row kernel (this CPU has no AVX-512); the scalar twin still runs\n");
        id = 1000;
    }
    mixrt_stemconv_force_scalar(true);
    g_scalar_mode = true;
    printf("test_stemconv: the scalar twin\n");
    tu_seed(21);
    id = run_all(id);
    run_pool_all(id);
    if (!g_only) test_refusals();
    mixrt_stemconv_force_scalar(false);
    mixrt_context_destroy(ctx);
    return tu_finish("test_stemconv");
}
