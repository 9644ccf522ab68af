/* test_cuda_kernels.c - the CUDA backend against f64 host loops on random data at odd
 * sizes: element-wise ops, casts (bit-exact against the CPU converters), LayerNorm,
 * Softmax, Gather and cuBLASLt GEMMs with epilogues, per dtype by normalized error; error
 * paths. Exits 77 (ctest: skipped) where no GPU is visible. `--bench` instead measures
 * GEMM rates (TFLOP/s), copy bandwidth and kernel bandwidth on the device. */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_backend.h"
#include "core/core.h"
#include "testutil.h"

static mixrt_context_t g_ctx;
static mixrt_cuda_device_t g_dev;
static size_t g_arena_off; /* bump offset in the device arena, reset per case */

#define DEV_OK(expr)                                                                                         \
    do {                                                                                                     \
        mixrt_status st_ = (expr);                                                                           \
        if (st_ != MIXRT_STATUS_OK) {                                                                        \
            fprintf(stderr, "%s:%d: %s failed: %s\n", __FILE__, __LINE__, #expr,                             \
                    mixrt_context_last_error(g_ctx));                                                        \
            exit(1);                                                                                         \
        }                                                                                                    \
    } while (0)

static const mixrt_dtype k_float_types[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16};

/* Normalized-error thresholds: the output's rounding dominates (f32 math inside). */
static double tol_of(mixrt_dtype dt) {
    return dt == MIXRT_DTYPE_F32 ? 1e-5 : dt == MIXRT_DTYPE_BF16 ? 8e-3 : 1e-3;
}

/* ---- host buffers: values rounded to dt, kept as raw bytes and as f64 ---- */
struct hbuf {
    mixrt_dtype dt;
    size_t n;
    void *raw;
    double *v;
};

static void hbuf_from_f32(struct hbuf *h, mixrt_dtype dt, const float *f, size_t n) {
    h->dt = dt;
    h->n = n;
    h->raw = malloc(n * mixrt_dtype_size(dt) + 1);
    h->v = malloc(n * sizeof(double) + 1);
    float *w = malloc(n * sizeof(float) + 1);
    if (dt == MIXRT_DTYPE_F32) memcpy(h->raw, f, n * 4), memcpy(w, f, n * 4);
    else if (dt == MIXRT_DTYPE_BF16) mixrt_f32_to_bf16_ref(f, h->raw, n), mixrt_bf16_to_f32_ref(h->raw, w, n);
    else mixrt_f32_to_f16_ref(f, h->raw, n), mixrt_f16_to_f32_ref(h->raw, w, n);
    for (size_t i = 0; i < n; i++) h->v[i] = w[i];
    free(w);
}

static void hbuf_random(struct hbuf *h, mixrt_dtype dt, size_t n, double lo, double hi) {
    float *f = malloc(n * sizeof(float) + 1);
    for (size_t i = 0; i < n; i++) f[i] = (float)tu_uniform(lo, hi);
    hbuf_from_f32(h, dt, f, n);
    free(f);
}

static void hbuf_free(struct hbuf *h) {
    free(h->raw);
    free(h->v);
    memset(h, 0, sizeof *h);
}

/* Device buffer from the arena (256-byte aligned offsets, like an engine's memory plan). */
static void *dalloc(size_t bytes) {
    void *p;
    DEV_OK(mixrt_cuda_arena_at(g_dev, g_arena_off, bytes, &p));
    g_arena_off += (bytes + 255) & ~(size_t)255;
    return p;
}

static void *dupload(const struct hbuf *h) {
    size_t b = h->n * mixrt_dtype_size(h->dt);
    void *p = dalloc(b);
    DEV_OK(mixrt_cuda_copy_h2d(g_dev, p, h->raw, b));
    return p;
}

/* Output buffer poisoned with 0xFF bytes (NaN in every float type): an element a kernel
 * does not write fails the check. */
static void *dpoisoned(mixrt_dtype dt, size_t n) {
    void *p = dalloc(n * mixrt_dtype_size(dt));
    DEV_OK(mixrt_cuda_memset(g_dev, p, 0xFF, n * mixrt_dtype_size(dt)));
    return p;
}

/* Reads back n values of dt and widens to f64. */
static double *dread(const void *d, mixrt_dtype dt, size_t n) {
    size_t es = mixrt_dtype_size(dt);
    void *raw = malloc(n * es + 1);
    double *v = malloc(n * sizeof(double) + 1);
    DEV_OK(mixrt_cuda_copy_d2h(g_dev, raw, d, n * es));
    DEV_OK(mixrt_cuda_device_sync(g_dev));
    for (size_t i = 0; i < n; i++) v[i] = mixrt_load_f64(raw, dt, i);
    free(raw);
    return v;
}

/* ||out - ref|| / ||ref||; NaN anywhere in out gives +inf. */
static double rel_err(const double *out, const double *ref, size_t n) {
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(out[i]) && !isnan(ref[i])) return INFINITY;
        double d = out[i] - ref[i];
        num += d * d;
        den += ref[i] * ref[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void report(const char *kernel, const char *cs, mixrt_dtype dt, double err, double tol) {
    printf("  %-26s %-28s %-5s err %.3e (tol %.0e)%s\n", kernel, cs, mixrt_dtype_name(dt), err, tol,
           err <= tol ? "" : "  FAIL");
    TU_CHECK(err <= tol, "%s %s %s: normalized error %.3e > %.0e (repro: tests/test_cuda_kernels on a GPU)", kernel,
             cs, mixrt_dtype_name(dt), err, tol);
}

/* ---- element-wise ---- */
static double binary_ref(enum mixrt_cuda_binary_op op, double a, double b) {
    switch (op) {
    case MIXRT_CUDA_BINARY_ADD: return a + b;
    case MIXRT_CUDA_BINARY_SUB: return a - b;
    case MIXRT_CUDA_BINARY_MUL: return a * b;
    default: return a / b;
    }
}

static void test_binary(void) {
    /* b_n of whole 16-byte vectors (768, 3072) runs the vector broadcast path */
    static const size_t sizes[][2] = {{3711, 1237}, {3711, 3711}, {(1u << 20) + 7, (1u << 20) + 7}, {4096, 4096}, {1000, 1},
                                      {6144, 768}, {15360, 3072}};
    for (int op = 0; op < MIXRT_CUDA_BINARY_COUNT; op++)
        for (int t = 0; t < 3; t++)
            for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
                mixrt_dtype dt = k_float_types[t];
                size_t n = sizes[s][0], bn = sizes[s][1];
                struct hbuf a, b;
                g_arena_off = 0;
                hbuf_random(&a, dt, n, -3, 3);
                hbuf_random(&b, dt, bn, 0.5, 2); /* away from 0 for div */
                for (size_t i = 0; i < bn; i += 2) { /* both signs */
                    float f = (float)-b.v[i];
                    struct hbuf tmp;
                    hbuf_from_f32(&tmp, dt, &f, 1);
                    memcpy((char *)b.raw + i * mixrt_dtype_size(dt), tmp.raw, mixrt_dtype_size(dt));
                    b.v[i] = tmp.v[0];
                    hbuf_free(&tmp);
                }
                void *da = dupload(&a), *db = dupload(&b), *dy = dpoisoned(dt, n);
                DEV_OK(mixrt_cuda_binary(g_dev, (enum mixrt_cuda_binary_op)op, dt, da, db, bn, dy, n));
                double *out = dread(dy, dt, n), *ref = malloc(n * sizeof(double));
                for (size_t i = 0; i < n; i++) ref[i] = binary_ref(op, a.v[i], b.v[bn == n ? i : i % bn]);
                char cs[64];
                snprintf(cs, sizeof cs, "n=%zu b_n=%zu", n, bn);
                report(mixrt_cuda_binary_name(op), cs, dt, rel_err(out, ref, n), tol_of(dt));
                free(out), free(ref), hbuf_free(&a), hbuf_free(&b);
            }
}

static double unary_ref(enum mixrt_cuda_unary_op op, double x) {
    switch (op) {
    case MIXRT_CUDA_UNARY_RELU: return x < 0 ? 0 : x;
    case MIXRT_CUDA_UNARY_GELU_ERF: return 0.5 * x * (1 + erf(x / sqrt(2.0)));
    case MIXRT_CUDA_UNARY_GELU_TANH: return 0.5 * x * (1 + tanh(sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
    case MIXRT_CUDA_UNARY_SIGMOID: return 1 / (1 + exp(-x));
    case MIXRT_CUDA_UNARY_SILU: return x / (1 + exp(-x));
    case MIXRT_CUDA_UNARY_RELU6: return x < 0 ? 0 : x > 6 ? 6 : x;
    case MIXRT_CUDA_UNARY_HARDSWISH:
    case MIXRT_CUDA_UNARY_HARDSIGMOID6: {
        double h = x / 6 + 0.5;
        h = h < 0 ? 0 : h > 1 ? 1 : h;
        return op == MIXRT_CUDA_UNARY_HARDSWISH ? x * h : h;
    }
    case MIXRT_CUDA_UNARY_NEG: return -x;
    case MIXRT_CUDA_UNARY_SQRT: return sqrt(x);
    case MIXRT_CUDA_UNARY_RECIPROCAL: return 1 / x;
    case MIXRT_CUDA_UNARY_SQUARE: return x * x;
    case MIXRT_CUDA_UNARY_EXP: return exp(x);
    default: return tanh(x);
    }
}

static void test_unary(void) {
    for (int op = 0; op < MIXRT_CUDA_UNARY_COUNT; op++)
        for (int t = 0; t < 3; t++) {
            mixrt_dtype dt = k_float_types[t];
            size_t n = 100003;
            struct hbuf x;
            g_arena_off = 0;
            /* past both bounds of ReLU6 (0, 6) and of the hard ones (-3, 3) */
            double span = op == MIXRT_CUDA_UNARY_RELU6 ? 9 : op == MIXRT_CUDA_UNARY_HARDSWISH ||
                                                                    op == MIXRT_CUDA_UNARY_HARDSIGMOID6 ? 5 : 6;
            /* sqrt and 1 / x on [0.1, 6]: away from the pole and the domain's edge */
            bool pos = op == MIXRT_CUDA_UNARY_SQRT || op == MIXRT_CUDA_UNARY_RECIPROCAL;
            hbuf_random(&x, dt, n, pos ? 0.1 : -span, span);
            void *dx = dupload(&x), *dy = dpoisoned(dt, n);
            DEV_OK(mixrt_cuda_unary(g_dev, (enum mixrt_cuda_unary_op)op, dt, dx, dy, n));
            double *out = dread(dy, dt, n), *ref = malloc(n * sizeof(double));
            for (size_t i = 0; i < n; i++) ref[i] = unary_ref(op, x.v[i]);
            report(mixrt_cuda_unary_name(op), "n=100003", dt, rel_err(out, ref, n), tol_of(dt));
            /* In place too (y aliases x). */
            DEV_OK(mixrt_cuda_unary(g_dev, (enum mixrt_cuda_unary_op)op, dt, dx, dx, n));
            double *out2 = dread(dx, dt, n);
            report(mixrt_cuda_unary_name(op), "n=100003 in place", dt, rel_err(out2, ref, n), tol_of(dt));
            free(out), free(out2), free(ref), hbuf_free(&x);
        }
}

/* ---- casts: bit-exact against the CPU reference converters ---- */
static float bits_f32(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static void cast_host(mixrt_dtype s, const void *src, mixrt_dtype d, void *dst, size_t n) {
    float *w = malloc(n * 4 + 4);
    if (s == MIXRT_DTYPE_F32) memcpy(w, src, n * 4);
    else if (s == MIXRT_DTYPE_BF16) mixrt_bf16_to_f32_ref(src, w, n);
    else mixrt_f16_to_f32_ref(src, w, n);
    if (d == MIXRT_DTYPE_F32) memcpy(dst, w, n * 4);
    else if (d == MIXRT_DTYPE_BF16) mixrt_f32_to_bf16_ref(w, dst, n);
    else mixrt_f32_to_f16_ref(w, dst, n);
    free(w);
}

static void test_cast(void) {
    size_t n = 70001;
    float *f = malloc(n * 4);
    static const uint32_t special[] = {0x00000000u, 0x80000000u, 0x7f800000u, 0xff800000u, 0x7fc00000u, 0xffc00001u,
                                       0x7f800001u, 0x00000001u, 0x807fffffu, 0x477fe000u /* 65504 */,
                                       0x477ff000u /* 65520: f16 inf */, 0x33000000u /* 2^-25 */, 0x3f808000u,
                                       0x3f818000u, 0x387fc000u};
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        if (i < sizeof special / 4) u = special[i];
        else if (i % 7 == 0) u = (uint32_t)tu_rand(); /* any bits: NaNs, subnormals */
        else u = ((uint32_t)tu_rand() & 0x807fffffu) | ((uint32_t)(96 + tu_rand() % 64) << 23); /* f16-ish range */
        f[i] = bits_f32(u);
    }
    for (int s = 0; s < 3; s++)
        for (int d = 0; d < 3; d++) {
            mixrt_dtype sd = k_float_types[s], dd = k_float_types[d];
            size_t ss = mixrt_dtype_size(sd), ds = mixrt_dtype_size(dd);
            void *src = malloc(n * ss), *want = malloc(n * ds), *got = malloc(n * ds);
            cast_host(MIXRT_DTYPE_F32, f, sd, src, n);
            cast_host(sd, src, dd, want, n);
            g_arena_off = 0;
            void *dsrc = dalloc(n * ss), *ddst = dpoisoned(dd, n);
            DEV_OK(mixrt_cuda_copy_h2d(g_dev, dsrc, src, n * ss));
            DEV_OK(mixrt_cuda_cast(g_dev, sd, dsrc, dd, ddst, n));
            DEV_OK(mixrt_cuda_copy_d2h(g_dev, got, ddst, n * ds));
            DEV_OK(mixrt_cuda_device_sync(g_dev));
            size_t bad = 0, first = n;
            for (size_t i = 0; i < n; i++) {
                double w = mixrt_load_f64(want, dd, i), g = mixrt_load_f64(got, dd, i);
                bool same = memcmp((char *)want + i * ds, (char *)got + i * ds, ds) == 0;
                /* NaN payloads may differ (f16 conversion); NaN-ness and sign must not. */
                if (isnan(w)) same = isnan(g) && signbit(w) == signbit(g);
                if (!same && bad++ == 0) first = i;
            }
            printf("  %-26s %-28s %-5s %zu of %zu differ from the CPU converter%s\n", "cast",
                   mixrt_dtype_name(sd), mixrt_dtype_name(dd), bad, n, bad ? "  FAIL" : "");
            uint32_t fb = 0;
            if (first < n) memcpy(&fb, &f[first], 4);
            TU_CHECK(bad == 0, "cast %s->%s: %zu elements differ, first #%zu (f32 bits 0x%08x)", mixrt_dtype_name(sd),
                     mixrt_dtype_name(dd), bad, first, fb);
            free(src), free(want), free(got);
        }
    free(f);
}

/* cast_rows: dst [rows, cols] from src rows of ld >= cols (a padded product's output),
 * exact against the CPU converters (one rounding of the host value), every dtype pair kind,
 * odd widths, ld == cols and ld > cols; into an aligned dst (16-byte chunks of the flat
 * output) and one a value off (one value per thread); the value after dst stays poisoned. */
static void test_cast_rows(void) {
    static const struct { int src, dst; size_t rows, cols, ld; } cases[] = {
        {1, 0, 37, 1001, 1024}, {1, 1, 5, 50257, 50304}, {2, 0, 9, 13, 64}, {0, 0, 7, 1001, 1024},
        {0, 1, 3, 77, 80},      {1, 0, 4, 64, 64},       {1, 0, 6, 30, 33}, {2, 2, 11, 9, 16},
    };
    for (size_t tt = 0; tt < 2 * sizeof cases / sizeof cases[0]; tt++) {
        size_t t = tt / 2, off = tt % 2;
        mixrt_dtype sd = k_float_types[cases[t].src], dd = k_float_types[cases[t].dst];
        size_t rows = cases[t].rows, cols = cases[t].cols, ld = cases[t].ld, ns = rows * ld, nd = rows * cols;
        struct hbuf x;
        g_arena_off = 0;
        hbuf_random(&x, sd, ns, -100, 100);
        size_t ed = mixrt_dtype_size(dd), bad = 0;
        void *dx = dupload(&x), *dy = (char *)dpoisoned(dd, nd + 2) + off * ed;
        DEV_OK(mixrt_cuda_cast_rows(g_dev, sd, dx, ld, dd, dy, rows, cols));
        double *out = dread(dy, dd, nd + 1);
        bad += !isnan(out[nd]); /* the poison (all ones: a NaN in every float dtype) */
        void *want = malloc(ed);
        for (size_t r = 0; r < rows; r++)
            for (size_t c = 0; c < cols; c++) {
                double got = out[r * cols + c], w;
                mixrt_convert(want, dd, &x.v[r * ld + c], MIXRT_DTYPE_F64, 1);
                w = mixrt_load_f64(want, dd, 0);
                bad += !(got == w);
            }
        char cs[64];
        snprintf(cs, sizeof cs, "%zux%zu of rows %zu -> %s%s", rows, cols, ld, mixrt_dtype_name(dd),
                 off ? " +1" : "");
        printf("  %-26s %-28s %-5s %zu of %zu differ%s\n", "cast_rows", cs, mixrt_dtype_name(sd), bad, nd,
               bad ? "  FAIL" : "");
        TU_CHECK(bad == 0, "cast_rows %s %s: %zu values differ from the CPU conversion", mixrt_dtype_name(sd), cs, bad);
        free(want), free(out), hbuf_free(&x);
    }
}

/* ---- ReduceMean / ReduceSum of rows, InstanceNormalization: f64 loops ---- */
/* Row r of x normalized in f64 (mean, then the variance of the centred values) into y: scale
 * g and bias b (NULL: none) per column, or per row % ch when ch > 0 (instance norm's channel). */
static void ref_norm_row(const double *xr, size_t cols, double eps, const double *g, const double *b, size_t ch,
                         size_t r, double *y) {
    double m = 0, v = 0;
    for (size_t c = 0; c < cols; c++) m += xr[c];
    m /= (double)cols;
    for (size_t c = 0; c < cols; c++) v += (xr[c] - m) * (xr[c] - m);
    double rs = 1 / sqrt(v / (double)cols + eps);
    for (size_t c = 0; c < cols; c++) {
        size_t p = ch ? r % ch : c;
        y[c] = (xr[c] - m) * rs * g[p] + (b ? b[p] : 0);
    }
}

static void test_reduce_instnorm(void) {
    static const size_t shapes[][2] = {{7, 64}, {129, 1}, {3, 4099}, {1, 300}, {1000, 33}};
    for (int t = 0; t < 3; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int mean = 0; mean < 2; mean++) {
                mixrt_dtype dt = k_float_types[t];
                size_t rows = shapes[s][0], cols = shapes[s][1];
                struct hbuf x;
                g_arena_off = 0;
                hbuf_random(&x, dt, rows * cols, -1, 3); /* nonzero mean */
                void *dx = dupload(&x), *dy = dpoisoned(dt, rows);
                DEV_OK(mixrt_cuda_reduce_rows(g_dev, dt, dx, dy, rows, cols, mean));
                double *out = dread(dy, dt, rows), *ref = malloc(rows * sizeof(double));
                for (size_t r = 0; r < rows; r++) {
                    double a = 0;
                    for (size_t c = 0; c < cols; c++) a += x.v[r * cols + c];
                    ref[r] = mean ? a / (double)cols : a;
                }
                char cs[64];
                snprintf(cs, sizeof cs, "%zux%zu", rows, cols);
                report(mean ? "reduce_rows mean" : "reduce_rows sum", cs, dt, rel_err(out, ref, rows), tol_of(dt));
                free(out), free(ref), hbuf_free(&x);
            }
    /* [N, C, L]: rows N * C, channel r % C (wav2vec2's group norm: C 512, L ~ 3200) */
    static const size_t ncl[][3] = {{2, 3, 50}, {1, 512, 319}, {3, 5, 1}, {2, 4, 2051}};
    for (int t = 0; t < 3; t++)
        for (size_t s = 0; s < sizeof ncl / sizeof ncl[0]; s++) {
            mixrt_dtype dt = k_float_types[t];
            size_t ch = ncl[s][1], rows = ncl[s][0] * ch, cols = ncl[s][2], n = rows * cols;
            struct hbuf x, g, b;
            g_arena_off = 0;
            hbuf_random(&x, dt, n, -2, 4);
            hbuf_random(&g, dt, ch, 0.5, 1.5);
            hbuf_random(&b, dt, ch, -1, 1);
            void *dx = dupload(&x), *dg = dupload(&g), *db = dupload(&b), *dy = dpoisoned(dt, n);
            const float eps = 1e-5f;
            DEV_OK(mixrt_cuda_instance_norm(g_dev, dt, dx, dg, db, dy, rows, cols, ch, eps));
            double *out = dread(dy, dt, n), *ref = malloc(n * sizeof(double));
            for (size_t r = 0; r < rows; r++) ref_norm_row(x.v + r * cols, cols, eps, g.v, b.v, ch, r, ref + r * cols);
            char cs[64];
            snprintf(cs, sizeof cs, "%zux%zux%zu", ncl[s][0], ch, cols);
            report("instance_norm", cs, dt, rel_err(out, ref, n), tol_of(dt));
            free(out), free(ref), hbuf_free(&x), hbuf_free(&g), hbuf_free(&b);
        }
}

/* ---- LayerNorm, Softmax ---- */
static void test_layer_norm(void) {
    /* cols a multiple of 8 (16-bit) / 4 (f32) up to 1024: the 16-byte warp-per-row kernel
     * (2 rows per block, 4 from 2048 rows: 4101 rows leave a partial last block; 776: the
     * last lane's vectors partly past the row); other cols <= 1024: the 2-byte warp kernel;
     * 4099: the block-per-row kernel. */
    static const size_t shapes[][2] = {{7, 768},  {3, 1000},   {5, 33},   {2, 4099}, {64, 1},  {1029, 768},
                                       {9, 1024}, {4101, 768}, {3, 776},  {5, 770},  {1, 8},   {129, 1016}};
    for (int t = 0; t < 3; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
            for (int with_bias = 0; with_bias < 2; with_bias++) {
                mixrt_dtype dt = k_float_types[t];
                size_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
                struct hbuf x, g, b;
                g_arena_off = 0;
                hbuf_random(&x, dt, n, -2, 4); /* nonzero mean */
                hbuf_random(&g, dt, cols, 0.5, 1.5);
                hbuf_random(&b, dt, cols, -1, 1);
                void *dx = dupload(&x), *dg = dupload(&g), *db = with_bias ? dupload(&b) : NULL;
                void *dy = dpoisoned(dt, n);
                const float eps = 1e-5f;
                DEV_OK(mixrt_cuda_layer_norm(g_dev, dt, dx, dg, db, dy, rows, cols, eps));
                double *out = dread(dy, dt, n), *ref = malloc(n * sizeof(double));
                for (size_t r = 0; r < rows; r++)
                    ref_norm_row(x.v + r * cols, cols, eps, g.v, with_bias ? b.v : NULL, 0, r, ref + r * cols);
                char cs[64];
                snprintf(cs, sizeof cs, "%zux%zu%s", rows, cols, with_bias ? " bias" : "");
                /* cols == 1: every output is the bias (or 0): compare absolutely. */
                double err = rel_err(out, ref, n);
                report("layer_norm", cs, dt, err, tol_of(dt));
                free(out), free(ref), hbuf_free(&x), hbuf_free(&g), hbuf_free(&b);
            }
}

/* ---- strided copy (Transpose / Split / Slice / Concat) ---- */
struct copy_case {
    const char *name;
    size_t es;
    int rank;
    int64_t in_dims[4];  /* x is a dense block of these dims */
    int64_t x_off;       /* elements skipped at x's start (the Split / Slice offset) */
    int64_t out_dims[4]; /* copied dims; x read at x's dense strides */
    int perm[4];         /* out axis i reads x axis perm[i] */
    int64_t y_pad;       /* y's innermost row stride = out_dims[last] + y_pad (Concat); 0: dense */
};

/* Bit-exact against a host loop: the 16-byte path (contiguous innermost axis, aligned),
 * the element path (misaligned offset, odd row, transposed axes), merged and size-1 axes. */
static void test_strided_copy(void) {
    static const struct copy_case cases[] = {
        {"split qkv 16B", 2, 3, {4, 6, 48}, 16, {4, 6, 16}, {0, 1, 2}, 0},
        {"split misaligned", 2, 3, {4, 6, 48}, 3, {4, 6, 16}, {0, 1, 2}, 0},
        {"split odd row", 2, 3, {4, 6, 45}, 15, {4, 6, 15}, {0, 1, 2}, 0},
        {"transpose 0213", 2, 4, {2, 3, 4, 8}, 0, {2, 4, 3, 8}, {0, 2, 1, 3}, 0},
        {"transpose 0132", 4, 4, {2, 3, 5, 7}, 0, {2, 3, 7, 5}, {0, 1, 3, 2}, 0},
        {"concat rows f32", 4, 2, {5, 12}, 0, {5, 12}, {0, 1}, 4},
        {"size-1 axes u8", 1, 4, {1, 3, 1, 64}, 0, {1, 3, 1, 64}, {0, 1, 2, 3}, 0},
        {"8-byte 16B", 8, 3, {3, 2, 6}, 2, {3, 2, 4}, {0, 1, 2}, 0},
        /* batched 2-D transposes of 16 x 16 and more: the tiled kernel (partial tiles) */
        {"tiled ncs->nsc", 2, 3, {2, 40, 77}, 0, {2, 77, 40}, {0, 2, 1}, 0},
        {"tiled nchw->nhwc", 2, 4, {2, 24, 5, 7}, 0, {2, 5, 7, 24}, {0, 2, 3, 1}, 0},
        {"tiled 2-D f32", 4, 2, {33, 70}, 0, {70, 33}, {1, 0}, 0},
        {"tiled u8", 1, 3, {3, 16, 50}, 0, {3, 50, 16}, {0, 2, 1}, 0},
        {"tiled 8-byte", 8, 3, {3, 20, 18}, 0, {3, 18, 20}, {0, 2, 1}, 0},
    };
    for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
        const struct copy_case *cc = &cases[t];
        int r = cc->rank;
        int64_t xs[4] = {0}, od[4] = {1, 1, 1, 1}, is[4] = {0}, os[4] = {0}, xn = 1, on = 1;
        for (int d = r - 1; d >= 0; d--) xs[d] = xn, xn *= cc->in_dims[d];
        for (int d = 0; d < r; d++) od[d] = cc->out_dims[d], is[d] = xs[cc->perm[d]];
        int64_t row = od[r - 1] + cc->y_pad;
        for (int d = r - 1; d >= 0; d--) os[d] = d == r - 1 ? 1 : (d == r - 2 ? row : os[d + 1] * od[d + 1]), on *= od[d];
        int64_t yn = r >= 2 ? os[0] * od[0] : row;
        size_t xb = (size_t)xn * cc->es, yb = (size_t)yn * cc->es;
        uint8_t *hx = malloc(xb), *hy = malloc(yb), *want = malloc(yb);
        for (size_t i = 0; i < xb; i++) hx[i] = (uint8_t)(tu_uniform(0, 256));
        memset(want, 0xFF, yb);
        g_arena_off = 0;
        void *dx = dalloc(xb), *dy = dalloc(yb);
        DEV_OK(mixrt_cuda_copy_h2d(g_dev, dx, hx, xb));
        DEV_OK(mixrt_cuda_memset(g_dev, dy, 0xFF, yb));
        for (int64_t i = 0; i < on; i++) {
            int64_t rem = i, xo = cc->x_off, yo = 0;
            for (int d = r - 1; d >= 0; d--) {
                int64_t id = rem % od[d];
                rem /= od[d];
                xo += id * is[d], yo += id * os[d];
            }
            if (xo < xn) memcpy(want + yo * (int64_t)cc->es, hx + xo * (int64_t)cc->es, cc->es);
        }
        DEV_OK(mixrt_cuda_strided_copy(g_dev, cc->es, (const uint8_t *)dx + cc->x_off * (int64_t)cc->es, dy, r, od, is,
                                       cc->y_pad ? os : NULL));
        DEV_OK(mixrt_cuda_copy_d2h(g_dev, hy, dy, yb));
        DEV_OK(mixrt_cuda_device_sync(g_dev));
        size_t bad = 0;
        for (size_t i = 0; i < yb; i++) bad += hy[i] != want[i];
        printf("  %-26s %-28s %zu-byte elements: %zu of %zu bytes differ%s\n", "strided_copy", cc->name, cc->es, bad, yb,
               bad ? "  FAIL" : "");
        TU_CHECK(bad == 0, "strided_copy %s: %zu bytes differ from the host loop", cc->name, bad);
        free(hx), free(hy), free(want);
    }
}

static void test_softmax(void) {
    static const size_t shapes[][2] = {{7, 128}, {3, 1000}, {4, 33}, {2, 5000}, {9, 1}};
    for (int t = 0; t < 3; t++)
        for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
            mixrt_dtype dt = k_float_types[t];
            size_t rows = shapes[s][0], cols = shapes[s][1], n = rows * cols;
            struct hbuf x;
            g_arena_off = 0;
            hbuf_random(&x, dt, n, -8, 8);
            void *dx = dupload(&x), *dy = dpoisoned(dt, n);
            DEV_OK(mixrt_cuda_softmax(g_dev, dt, dx, dy, rows, cols));
            double *out = dread(dy, dt, n), *ref = malloc(n * sizeof(double));
            for (size_t r = 0; r < rows; r++) {
                const double *xr = x.v + r * cols;
                double m = -INFINITY, sum = 0;
                for (size_t c = 0; c < cols; c++) m = fmax(m, xr[c]);
                for (size_t c = 0; c < cols; c++) sum += exp(xr[c] - m);
                for (size_t c = 0; c < cols; c++) ref[r * cols + c] = exp(xr[c] - m) / sum;
            }
            char cs[64];
            snprintf(cs, sizeof cs, "%zux%zu", rows, cols);
            report("softmax", cs, dt, rel_err(out, ref, n), tol_of(dt));
            free(out), free(ref), hbuf_free(&x);
        }
}

/* ---- Gather: exact ---- */
static void test_gather(void) {
    const size_t rows = 1000, n_idx = 301;
    /* 77 columns: element by element; 96: rows of whole 16-byte vectors in every dtype */
    for (size_t cols = 77; cols <= 96; cols += 19)
    for (int t = 0; t < 3; t++)
        for (int i64 = 0; i64 < 2; i64++) {
            mixrt_dtype dt = k_float_types[t], it = i64 ? MIXRT_DTYPE_I64 : MIXRT_DTYPE_I32;
            struct hbuf tab;
            g_arena_off = 0;
            hbuf_random(&tab, dt, rows * cols, -5, 5);
            int64_t idx[301];
            int32_t idx32[301];
            for (size_t i = 0; i < n_idx; i++) {
                idx[i] = (int64_t)(tu_rand() % (2 * rows)) - (int64_t)rows; /* [-rows, rows) */
                idx32[i] = (int32_t)idx[i];
            }
            void *dt_ = dupload(&tab), *di = dalloc(sizeof idx), *dy = dpoisoned(dt, n_idx * cols);
            DEV_OK(mixrt_cuda_copy_h2d(g_dev, di, i64 ? (void *)idx : (void *)idx32, i64 ? sizeof idx : sizeof idx32));
            DEV_OK(mixrt_cuda_gather_rows(g_dev, dt, dt_, rows, cols, it, di, n_idx, dy));
            double *out = dread(dy, dt, n_idx * cols);
            size_t bad = 0;
            for (size_t i = 0; i < n_idx; i++) {
                int64_t j = idx[i] < 0 ? idx[i] + (int64_t)rows : idx[i];
                for (size_t c = 0; c < cols; c++) bad += out[i * cols + c] != tab.v[(size_t)j * cols + c];
            }
            printf("  %-26s 1000x%-3zu 301 %-18s %-5s %zu wrong%s\n", "gather_rows", cols, i64 ? "i64" : "i32",
                   mixrt_dtype_name(dt), bad, bad ? "  FAIL" : "");
            TU_CHECK(bad == 0, "gather_rows %s idx %s, %zu columns: %zu wrong elements", mixrt_dtype_name(dt),
                     mixrt_dtype_name(it), cols, bad);
            /* An index out of range is reported by the next sync, and only once. */
            if (t == 0) {
                idx[17] = (int64_t)rows + 5;
                idx32[17] = (int32_t)idx[17];
                DEV_OK(mixrt_cuda_copy_h2d(g_dev, di, i64 ? (void *)idx : (void *)idx32,
                                           i64 ? sizeof idx : sizeof idx32));
                DEV_OK(mixrt_cuda_gather_rows(g_dev, dt, dt_, rows, cols, it, di, n_idx, dy));
                mixrt_status st = mixrt_cuda_device_sync(g_dev);
                const char *msg = mixrt_context_last_error(g_ctx);
                printf("  gather_rows out of range -> %s: %s\n", mixrt_status_string(st), msg);
                TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT && strstr(msg, "1005"),
                         "gather index out of range: status %d, message '%s'", (int)st, msg);
                TU_CHECK(mixrt_cuda_device_sync(g_dev) == MIXRT_STATUS_OK, "the gather flag was not cleared");
            }
            free(out), hbuf_free(&tab);
        }
}

/* ---- GEMM ---- */
struct gemm_case {
    mixrt_dtype ab, y;
    int64_t m, n, k, batch;
    bool ta, tb, repeat_b; /* repeat_b: stride_b 0 (one weight for all batches) */
    enum mixrt_cuda_epilogue epi;
    bool tf32, tune;
    float alpha;
    double tol;
    bool acc; /* accumulate: + C (random, Y's shape) before the activation */
};

static void test_gemm_case(const struct gemm_case *c) {
    int64_t m = c->m, n = c->n, k = c->k, nb = c->batch;
    size_t sa = (size_t)(m * k), sb = c->repeat_b ? 0 : (size_t)(k * n), sy = (size_t)(m * n);
    size_t na = sa * nb, nbb = c->repeat_b ? (size_t)(k * n) : sb * nb, ny = sy * nb;
    struct hbuf a, b, bias, cc;
    g_arena_off = 0;
    hbuf_random(&a, c->ab, na, -1, 1);
    hbuf_random(&b, c->ab, nbb, -1, 1);
    hbuf_random(&bias, c->y, (size_t)n, -1, 1);
    hbuf_random(&cc, c->y, ny, -4, 4);
    bool has_bias = c->epi == MIXRT_CUDA_EPILOGUE_BIAS || c->epi == MIXRT_CUDA_EPILOGUE_BIAS_RELU ||
                    c->epi == MIXRT_CUDA_EPILOGUE_BIAS_GELU_TANH;
    void *da = dupload(&a), *db = dupload(&b), *dbias = dupload(&bias), *dy = dpoisoned(c->y, ny);
    struct mixrt_cuda_gemm_desc d = {.ab_dtype = c->ab, .y_dtype = c->y, .m = m, .n = n, .k = k, .trans_a = c->ta,
                                     .trans_b = c->tb, .batch = nb, .stride_a = (int64_t)sa, .stride_b = (int64_t)sb,
                                     .stride_y = (int64_t)sy, .alpha = c->alpha, .epilogue = c->epi,
                                     .allow_tf32 = c->tf32, .name = "test", .accumulate = c->acc};
    mixrt_cuda_gemm_t g = NULL;
    DEV_OK(mixrt_cuda_gemm_create(g_dev, &d, &g));
    if (c->acc) DEV_OK(mixrt_cuda_gemm_set_c(g, dupload(&cc)));
    if (c->tune) DEV_OK(mixrt_cuda_gemm_tune(g, da, db, has_bias ? dbias : NULL, dy, 2));
    DEV_OK(mixrt_cuda_memset(g_dev, dy, 0xFF, ny * mixrt_dtype_size(c->y)));
    DEV_OK(mixrt_cuda_gemm_run(g, da, db, has_bias ? dbias : NULL, dy));
    double *out = dread(dy, c->y, ny), *ref = malloc(ny * sizeof(double));
    double alpha = c->alpha == 0.0f ? 1.0 : c->alpha;
    for (int64_t bi = 0; bi < nb; bi++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double s = 0;
                for (int64_t p = 0; p < k; p++) {
                    double av = a.v[bi * sa + (c->ta ? p * m + i : i * k + p)];
                    double bv = b.v[bi * sb + (c->tb ? j * k + p : p * n + j)];
                    s += av * bv;
                }
                s *= alpha;
                if (has_bias) s += bias.v[j];
                if (c->acc) s += cc.v[(size_t)(bi * (int64_t)sy + i * n + j)];
                if (c->epi == MIXRT_CUDA_EPILOGUE_RELU || c->epi == MIXRT_CUDA_EPILOGUE_BIAS_RELU) s = s < 0 ? 0 : s;
                if (c->epi == MIXRT_CUDA_EPILOGUE_GELU_TANH || c->epi == MIXRT_CUDA_EPILOGUE_BIAS_GELU_TANH)
                    s = unary_ref(MIXRT_CUDA_UNARY_GELU_TANH, s);
                ref[(size_t)(bi * (int64_t)sy + i * n + j)] = s;
            }
    int nc, ch;
    float ms;
    mixrt_cuda_gemm_get_choice(g, &nc, &ch, &ms);
    static const char *const epi_names[] = {"none", "bias", "relu", "bias+relu", "gelu", "bias+gelu"};
    char cs[96];
    snprintf(cs, sizeof cs, "%lldx%lldx%lld b%lld%s%s%s%s %s->%s", (long long)m, (long long)n, (long long)k,
             (long long)nb, c->ta ? " tA" : "", c->tb ? " tB" : "", c->tf32 ? " tf32" : "", c->acc ? " +C" : "",
             epi_names[c->epi],
             mixrt_dtype_name(c->y));
    char kn[64];
    snprintf(kn, sizeof kn, "gemm (%d cand, #%d)", nc, ch);
    report(kn, cs, c->ab, rel_err(out, ref, ny), c->tol);
    mixrt_cuda_gemm_destroy(g);
    free(out), free(ref), hbuf_free(&a), hbuf_free(&b), hbuf_free(&bias), hbuf_free(&cc);
}

static void test_gemm(void) {
    const mixrt_dtype F32 = MIXRT_DTYPE_F32, BF = MIXRT_DTYPE_BF16, H = MIXRT_DTYPE_F16;
    const struct gemm_case cases[] = {
        {BF, BF, 37, 45, 61, 1, false, false, false, MIXRT_CUDA_EPILOGUE_NONE, false, true, 0, 8e-3, false},
        {BF, BF, 128, 768, 768, 1, false, true, false, MIXRT_CUDA_EPILOGUE_BIAS_GELU_TANH, false, true, 0, 8e-3, false},
        {BF, BF, 33, 65, 127, 1, false, true, false, MIXRT_CUDA_EPILOGUE_BIAS_RELU, false, false, 0, 8e-3, false},
        {BF, F32, 31, 40, 50, 1, true, false, false, MIXRT_CUDA_EPILOGUE_BIAS, false, true, 0, 1e-5, false},
        {BF, BF, 17, 24, 40, 3, false, false, false, MIXRT_CUDA_EPILOGUE_NONE, false, true, 0, 8e-3, false},
        {BF, BF, 64, 96, 80, 4, false, true, true, MIXRT_CUDA_EPILOGUE_BIAS, false, true, 0, 8e-3, false},
        {BF, BF, 19, 23, 29, 5, true, true, false, MIXRT_CUDA_EPILOGUE_RELU, false, false, 0.5f, 8e-3, false},
        {H, H, 50, 70, 90, 1, false, false, false, MIXRT_CUDA_EPILOGUE_BIAS, false, true, 0, 1e-3, false},
        {H, F32, 64, 64, 64, 2, false, true, false, MIXRT_CUDA_EPILOGUE_GELU_TANH, false, true, 0, 1e-5, false},
        {F32, F32, 61, 29, 45, 1, false, false, false, MIXRT_CUDA_EPILOGUE_NONE, false, true, 0, 1e-5, false},
        {F32, F32, 96, 80, 200, 3, true, false, false, MIXRT_CUDA_EPILOGUE_BIAS_RELU, false, true, 0, 1e-5, false},
        {F32, F32, 256, 256, 256, 1, false, true, false, MIXRT_CUDA_EPILOGUE_BIAS, true, true, 0, 2e-3, false},
        /* accumulate (a residual as C, beta = 1), tuned on the same buffers */
        {BF, BF, 128, 768, 3072, 1, false, true, false, MIXRT_CUDA_EPILOGUE_BIAS, false, true, 0, 8e-3, true},
        {BF, BF, 33, 65, 127, 1, false, true, false, MIXRT_CUDA_EPILOGUE_BIAS_RELU, false, true, 0, 8e-3, true},
        {H, H, 17, 24, 40, 3, false, false, false, MIXRT_CUDA_EPILOGUE_NONE, false, true, 0, 1e-3, true},
        {F32, F32, 61, 29, 45, 1, false, false, false, MIXRT_CUDA_EPILOGUE_BIAS, false, true, 0, 1e-5, true},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) test_gemm_case(&cases[i]);
}

/* ---- Attention: the row kernel and the tensor-core kernel vs an f64 loop ---- */
struct att_case {
    int b, h, sq, sk, d, dv;
    bool heads_last; /* Q/K/V stored [b, s, h, d] (BERT's projections), else [b, h, s, d] */
    int mask;        /* 0 none, 1 [b, 1, 1, sk] (padding), 2 [1, 1, sq, sk] */
    int causal;
    int mask_f32; /* 1: an f32 mask under 16-bit Q/K/V (the planner's choice), query row 1 fully
                   * masked with f32's lowest value: the output must stay finite; 2: the same
                   * row masked with -inf under nan_zero (torch's SDPA guard): that row is 0 */
    bool nan_key; /* causal: key sk - 1 of batch 0, head 0 all +inf, so its score is NaN (q has
                   * both signs); the fill replaces it in every row but the last, which sees it
                   * unfilled (NaN there in the reference too: that row is left out) */
    bool causal_add; /* keys past the causal limit score s * scale + fill, the mask not added
                      * (GPT-2's mask row after the engine's mask_rows); else fill + mask */
};

static void att_strides(const struct att_case *c, int s, int d, long long *st) {
    if (c->heads_last) st[0] = (long long)s * c->h * d, st[1] = d, st[2] = (long long)c->h * d, st[3] = 1;
    else st[0] = (long long)c->h * s * d, st[1] = (long long)s * d, st[2] = d, st[3] = 1;
}

/* fast: 0 the row kernel (mixrt_cuda_attention), 1 attention_fast as dispatched, 2 the
 * flash kernel forced (MIXRT_CUDA_FLASH=on) with 4 warps per block, 3 the whole-head kernel
 * forced (=off), 4 the flash kernel with 1 warp per block, 5 the flash kernel (4 warps) into
 * a y one element off 16-byte alignment (its element-wise stores instead of the staged rows),
 * 6 the flash kernel with 8 warps per block, 7 with 4 warps a block taking two runs of 64
 * query rows in turn, 8 with 1 warp taking four runs of 16 (the runs' loop; partial last
 * blocks where sq is not a multiple of the block's rows). */
static void test_attention_case(const struct att_case *c, mixrt_dtype dt, int fast) {
    size_t nq = (size_t)c->b * c->h * c->sq * c->d, nk = (size_t)c->b * c->h * c->sk * c->d;
    size_t nv = (size_t)c->b * c->h * c->sk * c->dv, ny = (size_t)c->b * c->h * c->sq * c->dv;
    size_t nm = c->mask == 1 ? (size_t)c->b * c->sk : c->mask == 2 ? (size_t)c->sq * c->sk : 1;
    struct hbuf q, k, v, m;
    g_arena_off = 0;
    hbuf_random(&q, dt, nq, -1, 1);
    hbuf_random(&k, dt, nk, -1, 1);
    hbuf_random(&v, dt, nv, -1, 1);
    hbuf_random(&m, c->mask_f32 ? MIXRT_DTYPE_F32 : dt, nm, -3, 0);
    if (c->mask_f32 && c->mask == 2 && c->sq > 1)
        for (int j = 0; j < c->sk; j++) {
            ((float *)m.raw)[c->sk + j] = c->mask_f32 == 2 ? -INFINITY : -FLT_MAX;
            m.v[c->sk + j] = c->mask_f32 == 2 ? -INFINITY : -FLT_MAX;
        }
    struct mixrt_cuda_attention_args a;
    memset(&a, 0, sizeof a);
    a.b = c->b, a.h = c->h, a.sq = c->sq, a.sk = c->sk, a.d = c->d, a.dv = c->dv;
    att_strides(c, c->sq, c->d, a.q_strides);
    att_strides(c, c->sk, c->d, a.k_strides);
    att_strides(c, c->sk, c->dv, a.v_strides);
    if (c->mask == 1) a.mask_strides[0] = c->sk, a.mask_strides[3] = 1;
    if (c->mask == 2) a.mask_strides[2] = c->sk, a.mask_strides[3] = 1;
    /* Y heads-first [b, h, sq, dv]. */
    a.y_strides[0] = (long long)c->h * c->sq * c->dv, a.y_strides[1] = (long long)c->sq * c->dv;
    a.y_strides[2] = c->dv, a.y_strides[3] = 1;
    if (c->nan_key)
        for (int e = 0; e < c->d; e++) {
            size_t at = (size_t)(a.k_strides[2] * (c->sk - 1) + e);
            k.v[at] = INFINITY;
            if (dt == MIXRT_DTYPE_F32) ((float *)k.raw)[at] = INFINITY;
            else ((uint16_t *)k.raw)[at] = dt == MIXRT_DTYPE_BF16 ? 0x7f80 : 0x7c00;
        }
    a.scale = 1.0f / sqrtf((float)c->d), a.causal = c->causal, a.fill = -1e4f, a.causal_add = c->causal_add;
    a.mask_f32 = c->mask_f32 && dt != MIXRT_DTYPE_F32;
    a.nan_zero = c->mask_f32 == 2;
    void *dq = dupload(&q), *dk = dupload(&k), *dv = dupload(&v), *dm = c->mask ? dupload(&m) : NULL;
    void *dy = fast == 5 ? (char *)dpoisoned(dt, ny + 1) + mixrt_dtype_size(dt) : dpoisoned(dt, ny);
    bool done = false;
    bool flash = fast == 2 || fast >= 4;
    static const char *const fw[] = {"4", "4", "4", "4", "1", "4", "8", "4x2", "1x4"};
    if (flash) setenv("MIXRT_CUDA_FLASH", "on", 1);
    if (flash) setenv("MIXRT_CUDA_FLASH_WARPS", fw[fast], 1);
    /* modes 2 and 6 with the PLAIN / CAUSAL_ROW scoring kernels (the default: the shapes they take
     * run them; the others the general kernel), every other mode with MIXRT_CUDA_FLASH_PLAIN=off */
    setenv("MIXRT_CUDA_FLASH_PLAIN", fast == 2 || fast == 6 ? "on" : "off", 1);
    /* The K/V order matters to the PLAIN / CAUSAL_ROW kernels only, so to modes 2 and 6: mode 2
     * (4 warps) issues tile 1 after Q and tile 0 arrived (MIXRT_CUDA_FLASH_EARLYKV=off), mode 6
     * (8 warps, the engines' default) before the first wait (=on, the default) */
    setenv("MIXRT_CUDA_FLASH_EARLYKV", fast == 6 ? "on" : "off", 1);
    /* The general kernel's tail skips (warps past sq, key columns past sk): every mode but 8
     * (1 warp x 4 runs), which computes every tile whole (MIXRT_CUDA_FLASH_TAILSKIP=off) */
    setenv("MIXRT_CUDA_FLASH_TAILSKIP", fast == 8 ? "off" : "on", 1);
    if (fast == 3) setenv("MIXRT_CUDA_FLASH", "off", 1);
    if (fast) DEV_OK(mixrt_cuda_attention_fast(g_dev, dt, dq, dk, dv, dm, dy, &a, &done));
    else DEV_OK(mixrt_cuda_attention(g_dev, dt, dq, dk, dv, dm, dy, &a));
    unsetenv("MIXRT_CUDA_FLASH");
    unsetenv("MIXRT_CUDA_FLASH_WARPS");
    unsetenv("MIXRT_CUDA_FLASH_PLAIN");
    unsetenv("MIXRT_CUDA_FLASH_EARLYKV");
    unsetenv("MIXRT_CUDA_FLASH_TAILSKIP");
    TU_CHECK(!fast || done, "attention_fast declined %dx%dx%dx%d sk %d", c->b, c->h, c->sq, c->d, c->sk);
    double *out = dread(dy, dt, ny), *ref = malloc(ny * sizeof(double)), *p = malloc((size_t)c->sk * sizeof(double));
    for (long long bi = 0; bi < c->b; bi++)
        for (long long hi = 0; hi < c->h; hi++)
            for (long long i = 0; i < c->sq; i++) {
                double mx = -INFINITY, sum = 0;
                for (long long j = 0; j < c->sk; j++) {
                    double s = 0;
                    for (int e = 0; e < c->d; e++)
                        s += q.v[bi * a.q_strides[0] + hi * a.q_strides[1] + i * a.q_strides[2] + e] *
                             k.v[bi * a.k_strides[0] + hi * a.k_strides[1] + j * a.k_strides[2] + e];
                    s *= (double)a.scale;
                    bool past = c->causal && j > i + (c->sk - c->sq);
                    if (past) s = c->causal_add ? s + a.fill : a.fill;
                    if (c->mask && !(past && c->causal_add)) s += m.v[bi * a.mask_strides[0] + i * a.mask_strides[2] + j];
                    p[j] = s;
                    mx = fmax(mx, s);
                }
                for (long long j = 0; j < c->sk; j++) sum += (p[j] = exp(p[j] - mx));
                bool zero = a.nan_zero && !isfinite(mx); /* Where(IsNaN(P), 0, P) */
                for (int e = 0; e < c->dv; e++) {
                    double o = 0;
                    for (long long j = 0; j < c->sk; j++)
                        o += p[j] * v.v[bi * a.v_strides[0] + hi * a.v_strides[1] + j * a.v_strides[2] + e];
                    ref[(size_t)(bi * a.y_strides[0] + hi * a.y_strides[1] + i * a.y_strides[2] + e)] = zero ? 0.0 : o / sum;
                }
            }
    if (c->nan_key) { /* the last query row of batch 0, head 0 reads the NaN score: out of the sum */
        bool nan_row = true;
        for (int e = 0; e < c->dv; e++) {
            size_t at = (size_t)((c->sq - 1) * a.y_strides[2] + e);
            nan_row = nan_row && isnan(ref[at]);
            ref[at] = out[at] = 0.0;
        }
        TU_CHECK(nan_row, "nan_key: the reference's last row reads the NaN score");
    }
    char cs[96];
    snprintf(cs, sizeof cs, "%dx%dx%dx%d sk%d dv%d%s%s%s", c->b, c->h, c->sq, c->d, c->sk, c->dv,
             c->heads_last ? " bshd" : "", c->mask ? (c->mask == 1 ? " mask" : " mask2d") : "",
             c->causal ? (c->mask_f32 ? (c->causal_add ? " causal+add f32mask" : " causal f32mask") : " causal")
                       : (c->mask_f32 ? " f32mask" : ""));
    if (c->mask_f32 == 2) snprintf(cs + strlen(cs), sizeof cs - strlen(cs), " -inf row, nan_zero");
    if (c->nan_key) snprintf(cs + strlen(cs), sizeof cs - strlen(cs), " NaN key past the diagonal");
    /* The tensor-core kernel rounds the probabilities to dt before P V: about one more
     * rounding of dt, so f16 gets 2e-3. */
    double tol = fast && dt == MIXRT_DTYPE_F16 ? 2e-3 : tol_of(dt);
    static const char *const kn[] = {"attention (rows)", "attention (fast)", "attention (flash)",
                                     "attention (whole-head)", "attention (flash, 1 warp)",
                                     "attention (flash, unaligned y)", "attention (flash, 8 warps)",
                                     "attention (flash, 4 warps x 2 runs)", "attention (flash, 1 warp x 4 runs)"};
    report(kn[fast], cs, dt, rel_err(out, ref, ny), tol);
    free(out), free(ref), free(p), hbuf_free(&q), hbuf_free(&k), hbuf_free(&v), hbuf_free(&m);
}

static void test_attention(void) {
    static const struct att_case cases[] = {
        {1, 12, 128, 128, 64, 64, true, 1, 0, false, false, false},  /* BERT-base, batch 1 */
        {2, 3, 37, 53, 32, 16, false, 1, 0, false, false, false},    /* odd lengths: padded key and query tiles */
        {2, 2, 70, 70, 64, 64, true, 0, 1, false, false, false},     /* causal (GPT-2) */
        {1, 4, 16, 80, 48, 32, false, 2, 1, false, false, false},    /* causal with sq < sk, 2-D mask */
        {3, 5, 200, 33, 16, 48, true, 0, 0, false, false, false},    /* many query tiles, short keys */
        {2, 3, 24, 40, 32, 32, false, 2, 0, true, false, false}, /* f32 mask, row 1 fully masked (-FLT_MAX) */
        {1, 2, 40, 40, 64, 64, true, 2, 1, true, false, false},  /* the same with causal (GPT-2's pattern) */
        {2, 3, 24, 40, 32, 32, false, 2, 0, 2, false, false},    /* row 1 all -inf, nan_zero: zeros */
        {1, 2, 40, 40, 64, 64, true, 2, 1, 2, false, false},     /* the same with causal */
        {2, 2, 70, 70, 64, 64, true, 0, 1, false, true, false}, /* causal, a NaN score the fill replaces */
        {1, 2, 40, 72, 32, 32, false, 2, 1, true, true, false}, /* the same with sq < sk and an f32 mask */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 0; t < 3; t++) {
            test_attention_case(&cases[i], k_float_types[t], 0);
            if (t) test_attention_case(&cases[i], k_float_types[t], 1);
        }
    /* The flash kernel (16-bit, d == dv of 32 / 64 / 128): forced on the cases it takes,
     * then shapes of its own: batch-32-like heads (also through the whole-head kernel),
     * several key tiles with a partial last one, sk 4096 with causal sq < sk, d 128, a
     * padding mask, fully masked rows (f32 lowest; causal with sq > sk: -1e4 fill rows).
     * The mask tiles staged in shared memory take each load path: 16-byte copies (f32 sk 192
     * / 300, 16-bit sk 128), 4-byte copies (f32 sk 53), 2-byte synchronous (16-bit sk 150).
     * Cases with sk a multiple of 64 and one mask row (or none) run the PLAIN (no causal
     * limit) or CAUSAL_ROW kernels in modes 2 and 6 (the default), the general kernel in the
     * other modes (MIXRT_CUDA_FLASH_PLAIN=off). */
    static const struct att_case flash[] = {
        {4, 12, 128, 192, 64, 64, true, 1, 0, true, false, false},    /* BERT b32's f32 padding mask, 3 key tiles */
        {4, 12, 128, 128, 64, 64, true, 1, 0, false, false, false},   /* BERT-like heads, padding mask */
        {3, 12, 128, 128, 64, 64, false, 0, 1, false, false, false},  /* GPT-2-like, causal */
        {1, 2, 300, 300, 64, 64, true, 2, 1, true, false, false},     /* 5 key tiles, f32 mask, row 1 fully masked */
        {1, 1, 64, 4096, 64, 64, false, 0, 1, false, false, false},   /* long keys, causal with sq < sk */
        {2, 2, 77, 150, 128, 128, true, 1, 0, false, false, false},   /* d 128, odd lengths */
        {2, 3, 37, 53, 32, 32, false, 2, 0, true, false, false},      /* d 32, odd lengths, fully masked row */
        {1, 2, 90, 20, 64, 64, false, 0, 1, false, false, false},     /* causal sq > sk: early rows all fill */
        {1, 2, 300, 300, 64, 64, true, 2, 1, 2, false, false},        /* row 1 all -inf under nan_zero: zeros */
        {2, 3, 37, 53, 32, 32, false, 2, 0, 2, false, false},         /* the same, d 32, odd lengths */
        {2, 12, 197, 197, 64, 64, true, 0, 0, false, false, false},   /* ViT-B/16: idle warps, a 5-key last tile */
        /* the PLAIN kernels (no causal limit, sk a multiple of 64, one mask row or none) */
        {2, 3, 64, 256, 64, 64, false, 0, 0, false, false, false},    /* no mask, 4 key tiles */
        {1, 4, 50, 128, 32, 32, true, 1, 0, false, false, false},     /* d 32, a 16-bit mask row */
        {2, 2, 70, 64, 128, 128, true, 1, 0, true, false, false},     /* d 128, an f32 mask row */
        /* FL_CAUSAL_ROW: GPT-2's f32 mask row with the causal limit, past it s + fill */
        {2, 4, 128, 128, 64, 64, false, 1, 1, true, false, true},
        {1, 2, 64, 192, 64, 64, true, 1, 1, true, false, true}, /* sq < sk */
        {1, 2, 96, 128, 32, 32, false, 1, 1, false, false, false}, /* a 16-bit row, fill + mask */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (cases[i].d == cases[i].dv && (cases[i].d == 32 || cases[i].d == 64 || cases[i].d == 128))
            for (int t = 1; t < 3; t++) {
                test_attention_case(&cases[i], k_float_types[t], 2);
                test_attention_case(&cases[i], k_float_types[t], 4);
                test_attention_case(&cases[i], k_float_types[t], 6);
                test_attention_case(&cases[i], k_float_types[t], 7);
                test_attention_case(&cases[i], k_float_types[t], 8);
            }
    for (size_t i = 0; i < sizeof flash / sizeof flash[0]; i++)
        for (int t = 1; t < 3; t++) {
            test_attention_case(&flash[i], k_float_types[t], 2);
            test_attention_case(&flash[i], k_float_types[t], 4);
            test_attention_case(&flash[i], k_float_types[t], 6);
            test_attention_case(&flash[i], k_float_types[t], 7);
            test_attention_case(&flash[i], k_float_types[t], 8);
            if (i < 3) test_attention_case(&flash[i], k_float_types[t], 3);
            if (i == 0 || i == 2 || i == 5) test_attention_case(&flash[i], k_float_types[t], 5);
        }
}

/* ---- Conv (cuDNN) vs an f64 loop; skipped, not failed, where cuDNN cannot be loaded ---- */
struct conv_case {
    int n, c, h, w, k, r, s, pad, stride, dil, groups;
    bool nhwc, acc;
    bool bias; /* through mixrt_cuda_conv_run_ex: + bias, then act (the plan's or bias_act's) */
    int act;   /* 0 none, else a mixrt_cuda_unary_op + 1 */
    int yoff;  /* Y this many elements past an aligned address (off the graph plan's 16 bytes) */
};

/* api: NULL the default plan, else MIXRT_CUDA_CONV_API's value for this case. */
static void test_conv_case(const struct conv_case *cc, mixrt_dtype dt, const char *api) {
    int oh = (cc->h + 2 * cc->pad - cc->dil * (cc->r - 1) - 1) / cc->stride + 1;
    int ow = (cc->w + 2 * cc->pad - cc->dil * (cc->s - 1) - 1) / cc->stride + 1;
    int cg = cc->c / cc->groups, kg = cc->k / cc->groups;
    size_t nx = (size_t)cc->n * cc->c * cc->h * cc->w, nw = (size_t)cc->k * cg * cc->r * cc->s;
    size_t ny = (size_t)cc->n * cc->k * oh * ow;
    struct hbuf x, w, z, bv;
    g_arena_off = 0;
    hbuf_random(&x, dt, nx, -1, 1);
    hbuf_random(&w, dt, nw, -1, 1);
    hbuf_random(&z, dt, ny, -1, 1);
    hbuf_random(&bv, dt, (size_t)cc->k, -1, 1);
    struct mixrt_cuda_conv_desc d = {.dtype = dt, .nhwc = cc->nhwc, .n = cc->n, .c = cc->c, .h = cc->h, .w = cc->w,
                                     .k = cc->k, .r = cc->r, .s = cc->s, .oh = oh, .ow = ow, .pad_h = cc->pad,
                                     .pad_w = cc->pad, .stride_h = cc->stride, .stride_w = cc->stride,
                                     .dil_h = cc->dil, .dil_w = cc->dil, .groups = cc->groups, .name = "test",
                                     .epi_bias = cc->bias, .epi_act = cc->act};
    mixrt_cuda_conv_t conv = NULL;
    if (api) setenv("MIXRT_CUDA_CONV_API", api, 1);
    mixrt_status st = mixrt_cuda_conv_create(g_dev, &d, &conv);
    if (api) unsetenv("MIXRT_CUDA_CONV_API");
    if (st != MIXRT_STATUS_OK && strstr(mixrt_context_last_error(g_ctx), "cuDNN: cannot load")) {
        printf("  conv: SKIP (%s)\n", mixrt_context_last_error(g_ctx));
        hbuf_free(&x), hbuf_free(&w), hbuf_free(&z), hbuf_free(&bv);
        return;
    }
    DEV_OK(st);
    /* Storage index of logical (a, b, i, j) of dims [A, B, I, J]: NCHW, or NHWC when nhwc
     * (the filter follows: KCRS or KRSC). */
#define AT(nhwc, A, B, I, J, a, b, i, j)                                                                       \
    ((nhwc) ? ((((size_t)(a) * (I) + (i)) * (J) + (j)) * (B) + (b)) : ((((size_t)(a) * (B) + (b)) * (I) + (i)) * (J) + (j)))
    void *dx = dupload(&x), *dw = dupload(&w), *dy;
    if (cc->acc) dy = dupload(&z);
    else dy = (char *)dpoisoned(dt, ny + (size_t)cc->yoff) + (size_t)cc->yoff * mixrt_dtype_size(dt);
    unsigned did = 0;
    if (!cc->acc) { /* accumulate is the legacy call's alone */
        void *db = dupload(&bv);
        DEV_OK(mixrt_cuda_conv_run_ex(conv, dx, dw, cc->bias ? db : NULL, dy, &did));
        /* the rest as the engine does it: one bias / activation pass */
        const bool rb = cc->bias && !(did & MIXRT_CUDA_CONV_DID_BIAS), ra = cc->act && !(did & MIXRT_CUDA_CONV_DID_ACT);
        if (rb || ra)
            DEV_OK(mixrt_cuda_bias_act(g_dev, dt, dy, rb ? db : NULL, (size_t)cc->k, cc->nhwc ? 1 : (size_t)(oh * ow), NULL,
                                       ra ? cc->act - 1 : -1, ny));
        TU_CHECK(!cc->yoff || did == 0, "conv: a Y off 16-byte alignment ran the graph plan (did %u)", did);
    } else {
        DEV_OK(mixrt_cuda_conv_run(conv, dx, dw, dy, cc->acc));
    }
    double *out = dread(dy, dt, ny), *ref = malloc(ny * sizeof(double));
    for (int b = 0; b < cc->n; b++)
        for (int k = 0; k < cc->k; k++)
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++) {
                    double s = 0;
                    int g = k / kg;
                    for (int c = 0; c < cg; c++)
                        for (int r = 0; r < cc->r; r++)
                            for (int q = 0; q < cc->s; q++) {
                                int hi = i * cc->stride - cc->pad + r * cc->dil, wi = j * cc->stride - cc->pad + q * cc->dil;
                                if (hi < 0 || hi >= cc->h || wi < 0 || wi >= cc->w) continue;
                                s += x.v[AT(cc->nhwc, cc->n, cc->c, cc->h, cc->w, b, g * cg + c, hi, wi)] *
                                     w.v[AT(cc->nhwc, cc->k, cg, cc->r, cc->s, k, c, r, q)];
                            }
                    size_t yo = AT(cc->nhwc, cc->n, cc->k, oh, ow, b, k, i, j);
                    s += (cc->acc ? z.v[yo] : 0.0) + (cc->bias ? bv.v[k] : 0.0);
                    ref[yo] = cc->act ? unary_ref((enum mixrt_cuda_unary_op)(cc->act - 1), s) : s;
                }
#undef AT
    char cs[160];
    snprintf(cs, sizeof cs, "%dx%dx%dx%d k%d %dx%d p%d s%d d%d g%d%s%s%s act%d%s %s%s, did %u", cc->n, cc->c, cc->h,
             cc->w, cc->k, cc->r, cc->s, cc->pad, cc->stride, cc->dil, cc->groups, cc->nhwc ? " nhwc" : "",
             cc->acc ? " +Y" : "", cc->bias ? " +b" : "", cc->act, cc->yoff ? " Y unaligned" : "",
             mixrt_cuda_conv_kind(conv), api ? " (forced)" : "", did);
    report("conv (cuDNN)", cs, dt, rel_err(out, ref, ny), tol_of(dt));
    mixrt_cuda_conv_destroy(conv);
    free(out), free(ref), hbuf_free(&x), hbuf_free(&w), hbuf_free(&z), hbuf_free(&bv);
}

static void test_conv(void) {
    static const struct conv_case cases[] = {
        {2, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1, false, false, false, 0, 0},  /* ResNet-like 3x3 */
        {2, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1, true, false, false, 0, 0},
        {1, 64, 28, 28, 64, 1, 1, 0, 1, 1, 1, true, true, false, 0, 0},    /* 1x1 with a residual in Y */
        {1, 8, 17, 19, 16, 3, 3, 2, 2, 2, 1, true, false, false, 0, 0},    /* stride and dilation, odd sizes */
        {2, 32, 15, 15, 32, 3, 3, 1, 2, 1, 32, true, false, false, 0, 0},  /* depthwise */
        {1, 3, 32, 32, 24, 7, 7, 3, 2, 1, 1, false, false, false, 0, 0},   /* stem, 3 channels */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 0; t < 3; t++) {
            test_conv_case(&cases[i], k_float_types[t], NULL);
            test_conv_case(&cases[i], k_float_types[t], "legacy");
        }
    /* Epilogues through mixrt_cuda_conv_run_ex: the graph plan's (where cuDNN fuses them) or
     * bias_act's; each activation the plan maps; a Y off the plan's alignment (legacy call). */
    static const struct conv_case epi[] = {
        {2, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1, true, false, true, MIXRT_CUDA_UNARY_RELU + 1, 0},
        {2, 16, 14, 14, 32, 3, 3, 1, 1, 1, 1, false, false, true, MIXRT_CUDA_UNARY_RELU + 1, 0},
        {1, 32, 9, 11, 64, 3, 3, 1, 2, 1, 1, true, false, true, MIXRT_CUDA_UNARY_RELU6 + 1, 0},
        {1, 24, 10, 10, 48, 3, 3, 1, 1, 1, 1, true, false, true, MIXRT_CUDA_UNARY_SILU + 1, 0},
        {1, 24, 10, 10, 48, 3, 3, 1, 1, 1, 1, true, false, true, MIXRT_CUDA_UNARY_SIGMOID + 1, 0},
        {1, 24, 10, 10, 48, 3, 3, 1, 1, 1, 1, true, false, true, MIXRT_CUDA_UNARY_TANH + 1, 0},
        {1, 24, 10, 10, 48, 3, 3, 1, 1, 1, 1, true, false, true, MIXRT_CUDA_UNARY_GELU_ERF + 1, 0},
        {1, 24, 10, 10, 48, 3, 3, 1, 1, 1, 1, true, false, true, MIXRT_CUDA_UNARY_GELU_TANH + 1, 0},
        {1, 24, 10, 10, 48, 3, 3, 1, 1, 1, 1, true, false, true, MIXRT_CUDA_UNARY_HARDSWISH + 1, 0}, /* unmapped */
        {1, 16, 12, 12, 32, 3, 3, 1, 1, 1, 1, true, false, true, 0, 0},
        {1, 16, 12, 12, 32, 3, 3, 1, 1, 1, 1, true, false, false, MIXRT_CUDA_UNARY_RELU + 1, 0},
        {1, 16, 12, 12, 32, 3, 3, 1, 1, 1, 1, true, false, true, MIXRT_CUDA_UNARY_RELU + 1, 2},
    };
    for (size_t i = 0; i < sizeof epi / sizeof epi[0]; i++)
        for (int t = 0; t < 3; t++) test_conv_case(&epi[i], k_float_types[t], NULL);
}

/* ---- broadcast binary ops vs an f64 loop: y [dims] = a [adims] op b [bdims] (1 = broadcast) ---- */
static void test_bcast_case(int rank, const int64_t *dims, const int64_t *adims, const int64_t *bdims, int op,
                            mixrt_dtype dt, int boff, const char *name) {
    int64_t as[8], bs[8];
    size_t n = 1, na = 1, nb = 1;
    for (int i = rank - 1; i >= 0; i--) {
        n *= (size_t)dims[i];
        as[i] = adims[i] == 1 ? 0 : (int64_t)na;
        na *= (size_t)adims[i];
        bs[i] = bdims[i] == 1 ? 0 : (int64_t)nb;
        nb *= (size_t)bdims[i];
    }
    struct hbuf a, b;
    g_arena_off = 0;
    hbuf_random(&a, dt, na, -2, 2);
    hbuf_random(&b, dt, nb + (size_t)boff, 0.5, 2); /* away from 0: Div */
    void *da = dupload(&a), *db = (char *)dupload(&b) + (size_t)boff * mixrt_dtype_size(dt), *dy = dpoisoned(dt, n);
    DEV_OK(mixrt_cuda_binary_bcast(g_dev, (enum mixrt_cuda_binary_op)op, dt, da, as, db, bs, dy, rank, dims));
    double *out = dread(dy, dt, n), *ref = malloc(n * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        size_t rem = i, ao = 0, bo = 0;
        for (int d = rank - 1; d >= 0; d--) {
            size_t id = rem % (size_t)dims[d];
            ao += id * (size_t)as[d], bo += id * (size_t)bs[d];
            rem /= (size_t)dims[d];
        }
        double x = a.v[ao], z = b.v[bo + (size_t)boff];
        ref[i] = op == 0 ? x + z : op == 1 ? x - z : op == 2 ? x * z : x / z;
    }
    report("broadcast binary", name, dt, rel_err(out, ref, n), tol_of(dt));
    free(out), free(ref), hbuf_free(&a), hbuf_free(&b);
}

static void test_bcast(void) {
    /* A squeeze-excite gate [N, H, W, C] x [N, 1, 1, C] on either side (the per-image row path:
     * 16-byte steps when C % 8 == 0, element steps for C = 35 or a misaligned b), the gate on
     * channels-first activations ([N, C, H, W] x [N, C, 1, 1]: a value per row), a bias row,
     * and shapes the general kernel keeps (b broadcast on the inner axis, middle axes). */
    static const int64_t se[4] = {3, 7, 9, 144}, seb[4] = {3, 1, 1, 144};
    static const int64_t se35[4] = {2, 5, 6, 35}, se35b[4] = {2, 1, 1, 35};
    static const int64_t cf[4] = {2, 24, 7, 8}, cfb[4] = {2, 24, 1, 1};
    static const int64_t row[2] = {37, 96}, rowb[2] = {1, 96};
    static const int64_t inner[3] = {4, 6, 40}, innerb[3] = {4, 6, 1};
    static const int64_t mid[4] = {2, 3, 5, 16}, midb[4] = {1, 3, 1, 16};
    static const char *const opn[4] = {"add", "sub", "mul", "div"};
    char cs[64];
    for (int t = 0; t < 3; t++) {
        mixrt_dtype dt = k_float_types[t];
        for (int op = 0; op < 4; op++) {
            snprintf(cs, sizeof cs, "x %s gate NHWC", opn[op]);
            test_bcast_case(4, se, se, seb, op, dt, 0, cs);
            snprintf(cs, sizeof cs, "gate %s x NHWC", opn[op]);
            test_bcast_case(4, se, seb, se, op, dt, 0, cs);
            snprintf(cs, sizeof cs, "gate %s x NCHW", opn[op]);
            test_bcast_case(4, cf, cfb, cf, op, dt, 0, cs);
        }
        test_bcast_case(4, se35, se35, se35b, 2, dt, 0, "x mul gate C 35");
        test_bcast_case(4, se, se, seb, 2, dt, 1, "x mul gate, b misaligned");
        test_bcast_case(4, cf, cf, cfb, 3, dt, 0, "x div gate NCHW");
        test_bcast_case(2, row, row, rowb, 0, dt, 0, "bias row");
        test_bcast_case(2, row, rowb, row, 1, dt, 0, "bias row sub x");
        test_bcast_case(3, inner, inner, innerb, 3, dt, 0, "inner axis (general)");
        test_bcast_case(4, mid, mid, midb, 1, dt, 0, "mid axes (general)");
    }
}

/* ---- And / Or / Xor / Where with broadcasting vs a host loop (exact: bits compared) ---- */
static void *dupload_raw(const void *h, size_t bytes) {
    void *p = dalloc(bytes);
    DEV_OK(mixrt_cuda_copy_h2d(g_dev, p, h, bytes));
    return p;
}

/* dims of y; cd, ad, bd the operands' dims (1: broadcast; cd unused but for Where). Bool
 * operands hold random bytes (0 about a third of them, any nonzero byte true); Where's a and b
 * random bits of es bytes. */
static void test_select_case(enum mixrt_cuda_select_op op, size_t es, int rank, const int64_t *dims, const int64_t *cd,
                             const int64_t *ad, const int64_t *bd, const char *name) {
    const bool where = op == MIXRT_CUDA_SELECT_WHERE;
    int64_t st[3][8];
    size_t cnt[3] = {1, 1, 1}, n = 1;
    const int64_t *od[3] = {cd, ad, bd};
    for (int i = rank - 1; i >= 0; i--) {
        n *= (size_t)dims[i];
        for (int k = 0; k < 3; k++) {
            st[k][i] = od[k][i] == 1 ? 0 : (int64_t)cnt[k];
            cnt[k] *= (size_t)od[k][i];
        }
    }
    size_t ab = where ? es : 1;
    unsigned char *h[3];
    for (int k = 0; k < 3; k++) {
        size_t bytes = cnt[k] * (k == 0 ? 1 : ab);
        h[k] = malloc(bytes + 1);
        for (size_t i = 0; i < bytes; i++) {
            double u = tu_uniform(0, 1);
            bool boolish = k == 0 || !where;
            h[k][i] = boolish ? (u < 0.33 ? 0 : (unsigned char)(1 + u * 200)) : (unsigned char)(u * 256);
        }
    }
    g_arena_off = 0;
    void *dc = dupload_raw(h[0], cnt[0]), *da = dupload_raw(h[1], cnt[1] * ab), *db = dupload_raw(h[2], cnt[2] * ab);
    void *dy = dalloc(n * ab);
    DEV_OK(mixrt_cuda_memset(g_dev, dy, 0xA5, n * ab));
    DEV_OK(mixrt_cuda_select_bcast(g_dev, op, ab, where ? dc : NULL, where ? st[0] : NULL, da, st[1], db, st[2], dy,
                                   rank, dims));
    unsigned char *out = malloc(n * ab + 1);
    DEV_OK(mixrt_cuda_copy_d2h(g_dev, out, dy, n * ab));
    DEV_OK(mixrt_cuda_device_sync(g_dev));
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        size_t rem = i, o[3] = {0, 0, 0};
        for (int d = rank - 1; d >= 0; d--) {
            size_t id = rem % (size_t)dims[d];
            for (int k = 0; k < 3; k++) o[k] += id * (size_t)st[k][d];
            rem /= (size_t)dims[d];
        }
        if (where) {
            const unsigned char *src = h[0][o[0]] ? h[1] + o[1] * es : h[2] + o[2] * es;
            bad += memcmp(out + i * es, src, es) != 0;
        } else {
            bool x = h[1][o[1]] != 0, z = h[2][o[2]] != 0;
            unsigned char want = op == MIXRT_CUDA_SELECT_AND ? (x && z) : op == MIXRT_CUDA_SELECT_OR ? (x || z) : (x != z);
            bad += out[i] != want;
        }
    }
    /* the fraction of wrong elements; the dtype names the element size moved */
    mixrt_dtype dt = !where ? MIXRT_DTYPE_BOOL : es == 1 ? MIXRT_DTYPE_U8 : es == 2 ? MIXRT_DTYPE_BF16
                     : es == 4 ? MIXRT_DTYPE_F32 : MIXRT_DTYPE_I64;
    report("broadcast select", name, dt, (double)bad / (double)n, 0);
    for (int k = 0; k < 3; k++) free(h[k]);
    free(out);
}

static void test_select(void) {
    /* torch's attention masks: a causal constant [1, 1, S, S] with the padding row [B, 1, 1, S],
     * then Where(mask, 0, lowest) over [B, 1, S, S] with scalar branches; same shapes; a
     * middle-axis broadcast; a size-1 result. */
    static const int64_t y4[4] = {3, 1, 37, 37}, causal[4] = {1, 1, 37, 37}, pad[4] = {3, 1, 1, 37};
    static const int64_t one4[4] = {1, 1, 1, 1};
    static const int64_t same[2] = {19, 45};
    static const int64_t y3[3] = {4, 5, 6}, mid[3] = {4, 1, 6}, lead[3] = {1, 5, 1};
    static const char *const opn[3] = {"and", "or", "xor"};
    char cs[64];
    for (int op = 0; op < 3; op++) {
        snprintf(cs, sizeof cs, "causal %s pad", opn[op]);
        test_select_case((enum mixrt_cuda_select_op)op, 1, 4, y4, one4, causal, pad, cs);
        snprintf(cs, sizeof cs, "%s same shape", opn[op]);
        test_select_case((enum mixrt_cuda_select_op)op, 1, 2, same, same, same, same, cs);
        snprintf(cs, sizeof cs, "%s mid x lead", opn[op]);
        test_select_case((enum mixrt_cuda_select_op)op, 1, 3, y3, y3, mid, lead, cs);
    }
    static const size_t es[4] = {1, 2, 4, 8};
    for (int k = 0; k < 4; k++) {
        test_select_case(MIXRT_CUDA_SELECT_WHERE, es[k], 4, y4, y4, one4, one4, "where mask, scalars");
        test_select_case(MIXRT_CUDA_SELECT_WHERE, es[k], 4, y4, pad, y4, causal, "where pad, full, causal");
        test_select_case(MIXRT_CUDA_SELECT_WHERE, es[k], 3, y3, mid, lead, y3, "where mid, lead, full");
        test_select_case(MIXRT_CUDA_SELECT_WHERE, es[k], 4, one4, one4, one4, one4, "where one element");
    }
}

/* ---- integer casts: i64 / i32 / u8 / bool into f32 / bf16 / f16 (the exact integer, or
 * the float the host rounds it to) and into bool (nonzero is true: HF's attention mask) ---- */
static void test_cast_int(void) {
    static const mixrt_dtype src[4] = {MIXRT_DTYPE_I64, MIXRT_DTYPE_I32, MIXRT_DTYPE_U8, MIXRT_DTYPE_BOOL};
    static const mixrt_dtype dst[4] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16, MIXRT_DTYPE_BOOL};
    const size_t n = 1037;
    for (int s = 0; s < 4; s++)
        for (int d = 0; d < 4; d++) {
            size_t sb = mixrt_dtype_size(src[s]), db = mixrt_dtype_size(dst[d]);
            unsigned char *h = malloc(n * sb), *out = malloc(n * db);
            for (size_t i = 0; i < n; i++) {
                /* a third zeros, the rest small values of both signs (large ones for i64) */
                double u = tu_uniform(0, 1), v = u < 1.0 / 3 ? 0 : floor(tu_uniform(-1000, 1000));
                if (src[s] == MIXRT_DTYPE_I64 && i % 7 == 3) v = (double)(1LL << 40) * (u < 0.6 ? -1 : 1);
                if (src[s] == MIXRT_DTYPE_U8) v = fabs(v) < 256 ? fabs(v) : 255;
                if (src[s] == MIXRT_DTYPE_BOOL) v = v != 0;
                mixrt_store_f64(h, src[s], i, v);
            }
            g_arena_off = 0;
            void *dx = dupload_raw(h, n * sb), *dy = dalloc(n * db);
            DEV_OK(mixrt_cuda_memset(g_dev, dy, 0xA5, n * db));
            DEV_OK(mixrt_cuda_cast_int(g_dev, src[s], dx, dst[d], dy, n));
            DEV_OK(mixrt_cuda_copy_d2h(g_dev, out, dy, n * db));
            DEV_OK(mixrt_cuda_device_sync(g_dev));
            size_t bad = 0;
            for (size_t i = 0; i < n; i++) {
                double v = mixrt_load_f64(h, src[s], i);
                if (dst[d] == MIXRT_DTYPE_BOOL) {
                    bad += out[i] != (v != 0);
                } else {
                    unsigned char want[4];
                    mixrt_store_f64(want, dst[d], 0, v); /* the host's rounding of the integer */
                    bad += memcmp(out + i * db, want, db) != 0;
                }
            }
            char cs[64];
            snprintf(cs, sizeof cs, "%s to %s", mixrt_dtype_name(src[s]), mixrt_dtype_name(dst[d]));
            report("integer cast", cs, dst[d], (double)bad / (double)n, 0);
            free(h);
            free(out);
        }
}

/* ---- Resize with random taps (two per axis, weights summing to 1) vs an f64 loop, NCHW and
 * NHWC ---- */
static void test_resize(void) {
    const long long n = 2, c = 3, h = 5, w = 6, oh = 9, ow = 4;
    for (int nhwc = 0; nhwc < 2; nhwc++)
        for (int t = 0; t < 3; t++) {
            mixrt_dtype dt = k_float_types[t];
            struct mixrt_cuda_resize_tap taps[9 + 4];
            for (int i = 0; i < oh + ow; i++) {
                int len = i < oh ? (int)h : (int)w;
                double u = tu_uniform(0, 1);
                taps[i].i0 = (int)(tu_uniform(0, 1) * len) % len, taps[i].i1 = (int)(tu_uniform(0, 1) * len) % len;
                taps[i].w0 = (float)u, taps[i].w1 = (float)(1 - u);
            }
            struct hbuf x;
            size_t nx = (size_t)(n * c * h * w), ny = (size_t)(n * c * oh * ow);
            g_arena_off = 0;
            hbuf_random(&x, dt, nx, -2, 2);
            void *dx = dupload(&x), *dy = dpoisoned(dt, ny), *dt_ = dalloc(sizeof taps);
            DEV_OK(mixrt_cuda_copy_h2d(g_dev, dt_, taps, sizeof taps));
            struct mixrt_cuda_resize_args a = {n, c, h, w, oh, ow, dt_, (const struct mixrt_cuda_resize_tap *)dt_ + oh, nhwc};
            DEV_OK(mixrt_cuda_resize(g_dev, dt, dx, dy, &a));
            double *out = dread(dy, dt, ny), *ref = malloc(ny * sizeof(double));
            for (long long b = 0; b < n; b++)
                for (long long ch = 0; ch < c; ch++)
                    for (long long i = 0; i < oh; i++)
                        for (long long j = 0; j < ow; j++) {
                            const struct mixrt_cuda_resize_tap *th = &taps[i], *tw = &taps[oh + j];
#define XAT(r, q) x.v[nhwc ? ((b * h + (r)) * w + (q)) * c + ch : ((b * c + ch) * h + (r)) * w + (q)]
                            double v = th->w0 * (tw->w0 * XAT(th->i0, tw->i0) + tw->w1 * XAT(th->i0, tw->i1)) +
                                       th->w1 * (tw->w0 * XAT(th->i1, tw->i0) + tw->w1 * XAT(th->i1, tw->i1));
#undef XAT
                            ref[nhwc ? ((b * oh + i) * ow + j) * c + ch : ((b * c + ch) * oh + i) * ow + j] = v;
                        }
            report("resize", nhwc ? "6x5 -> 9x4 nhwc" : "6x5 -> 9x4 nchw", dt, rel_err(out, ref, ny), tol_of(dt));
            free(out), free(ref), hbuf_free(&x);
        }
}

/* ---- pools vs an f64 loop with the CPU reference's rules (ref_nn_pool.c) ---- */
struct pool_case {
    int n, c, h, w, kh, kw, sh, sw, dh, dw, pt, pl, pb, pr;
    bool nhwc, avg, include_pad, ceil_mode, global;
};

static void test_pool_case(const struct pool_case *pc, mixrt_dtype dt) {
    struct mixrt_cuda_pool_args a = {.n = pc->n, .c = pc->c, .h = pc->h, .w = pc->w, .kh = pc->kh, .kw = pc->kw,
                                     .sh = pc->sh, .sw = pc->sw, .dh = pc->dh, .dw = pc->dw, .pt = pc->pt, .pl = pc->pl,
                                     .pb = pc->pb, .pr = pc->pr, .nhwc = pc->nhwc, .avg = pc->avg,
                                     .include_pad = pc->include_pad};
    if (pc->global) a.kh = pc->h, a.kw = pc->w, a.sh = a.sw = a.dh = a.dw = 1;
    /* Output dims as ONNX defines them (ceil_mode drops a window starting in the end pad). */
    int in[2] = {pc->h, pc->w}, k[2] = {a.kh, a.kw}, st[2] = {a.sh, a.sw}, dl[2] = {a.dh, a.dw};
    int pb[2] = {a.pt, a.pl}, pe[2] = {a.pb, a.pr};
    long long out[2];
    for (int i = 0; i < 2; i++) {
        int span = in[i] + pb[i] + pe[i] - ((k[i] - 1) * dl[i] + 1);
        out[i] = (pc->ceil_mode ? (span + st[i] - 1) / st[i] : span / st[i]) + 1;
        if (pc->ceil_mode && out[i] > 1 && (out[i] - 1) * st[i] >= in[i] + pb[i]) out[i]--;
    }
    a.oh = out[0], a.ow = out[1];
    size_t nx = (size_t)pc->n * pc->c * pc->h * pc->w, ny = (size_t)pc->n * pc->c * a.oh * a.ow;
    struct hbuf x;
    g_arena_off = 0;
    hbuf_random(&x, dt, nx, -2, 2);
    void *dx = dupload(&x), *dy = dpoisoned(dt, ny);
    DEV_OK(mixrt_cuda_pool2d(g_dev, dt, dx, dy, &a));
    double *outv = dread(dy, dt, ny), *ref = malloc(ny * sizeof(double));
    for (int b = 0; b < pc->n; b++)
        for (int c = 0; c < pc->c; c++)
            for (long long oh = 0; oh < a.oh; oh++)
                for (long long ow = 0; ow < a.ow; ow++) {
                    double acc = pc->avg ? 0.0 : -INFINITY;
                    int cnt = 0;
                    for (int r = 0; r < a.kh; r++)
                        for (int q = 0; q < a.kw; q++) {
                            long long hi = oh * a.sh - a.pt + (long long)r * a.dh;
                            long long wi = ow * a.sw - a.pl + (long long)q * a.dw;
                            if (hi < 0 || hi >= pc->h || wi < 0 || wi >= pc->w) {
                                if (a.include_pad && hi >= -a.pt && hi < pc->h + a.pb && wi >= -a.pl && wi < pc->w + a.pr)
                                    cnt++;
                                continue;
                            }
                            size_t xi = pc->nhwc ? (((size_t)b * pc->h + hi) * pc->w + wi) * pc->c + c
                                                 : (((size_t)b * pc->c + c) * pc->h + hi) * pc->w + wi;
                            if (pc->avg) acc += x.v[xi], cnt++;
                            else acc = fmax(acc, x.v[xi]);
                        }
                    if (pc->avg) acc /= cnt;
                    size_t yi = pc->nhwc ? (((size_t)b * a.oh + oh) * a.ow + ow) * pc->c + c
                                         : (((size_t)b * pc->c + c) * a.oh + oh) * a.ow + ow;
                    ref[yi] = acc;
                }
    char cs[96];
    snprintf(cs, sizeof cs, "%dx%dx%dx%d %s%dx%d s%d d%d p%d%d%d%d%s%s%s", pc->n, pc->c, pc->h, pc->w,
             pc->global ? "global " : "", a.kh, a.kw, a.sh, a.dh, a.pt, a.pl, a.pb, a.pr, pc->nhwc ? " nhwc" : "",
             pc->include_pad ? " incl" : "", pc->ceil_mode ? " ceil" : "");
    /* Max is exact (a selection); an average rounds once. */
    report(pc->avg ? "avgpool" : "maxpool", cs, dt, rel_err(outv, ref, ny), pc->avg ? tol_of(dt) : 0.0);
    free(outv), free(ref), hbuf_free(&x);
}

static void test_pool(void) {
    static const struct pool_case cases[] = {
        {2, 24, 15, 15, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, false, false, false, false},  /* ResNet stem pool, NHWC */
        {2, 24, 15, 15, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, false, false, false, false}, /* the same, NCHW */
        {1, 5, 9, 11, 2, 2, 2, 2, 1, 1, 0, 0, 0, 0, false, false, false, true, false},    /* ceil_mode, odd sizes */
        {1, 7, 12, 10, 3, 3, 2, 2, 2, 2, 1, 2, 1, 0, true, false, false, false, false},   /* dilation, asym pads */
        {2, 6, 10, 9, 3, 3, 1, 1, 1, 1, 1, 0, 2, 1, false, true, true, false, false},     /* avg include_pad */
        {2, 6, 10, 9, 3, 3, 1, 1, 1, 1, 1, 0, 2, 1, true, true, false, false, false},     /* avg exclude pad */
        {1, 4, 11, 11, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, false, true, true, true, false},     /* avg incl + ceil */
        {3, 64, 7, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, true, true, false, false, true},      /* ResNet GAP, NHWC */
        {1, 32, 112, 112, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, true, true, false, false, true},  /* EfficientNet SE GAP */
        {32, 144, 28, 56, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, true, true, false, false, true},  /* batch 32: pixel slices */
        {2, 1000, 5, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, true, true, false, false, true},    /* many channel slices */
        {2, 35, 17, 19, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, true, true, false, false, true},    /* C % 8: scalar loads */
        {2, 10, 20, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, false, true, false, false, true},   /* GAP NCHW (warp) */
        {1, 3, 9, 9, 9, 9, 1, 1, 1, 1, 0, 0, 0, 0, false, false, false, false, false},    /* max, one 81 window */
        {2, 16, 9, 8, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, true, true, true, true, false},       /* NHWC avg, 16-byte path */
        {1, 32, 8, 9, 2, 3, 2, 2, 2, 1, 0, 1, 1, 0, true, false, false, true, false},     /* NHWC max, 16-byte path */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        for (int t = 0; t < 3; t++) test_pool_case(&cases[i], k_float_types[t]);
}

/* ---- conv epilogue: y = act(y + bias[channel] + z), NCHW and NHWC ---- */
static void test_bias_act(void) {
    static const struct {
        int n, c, sp;
        bool nhwc, bias, z;
        int act;
    } cases[] = {{2, 16, 49, true, true, true, MIXRT_CUDA_UNARY_RELU}, {2, 16, 49, false, true, true, MIXRT_CUDA_UNARY_RELU},
                 {1, 8, 30, false, true, false, -1}, {3, 5, 7, true, false, true, MIXRT_CUDA_UNARY_SILU},
                 {1, 33, 9, true, true, false, MIXRT_CUDA_UNARY_SIGMOID},
                 {2, 24, 25, true, true, true, MIXRT_CUDA_UNARY_RELU6}, {1, 7, 11, false, true, false, MIXRT_CUDA_UNARY_RELU6},
                 {2, 40, 13, true, true, true, MIXRT_CUDA_UNARY_HARDSWISH}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int t = 0; t < 3; t++) {
            mixrt_dtype dt = k_float_types[t];
            size_t n = (size_t)cases[ci].n * cases[ci].c * cases[ci].sp;
            struct hbuf y, b, z;
            g_arena_off = 0;
            double span = cases[ci].act == MIXRT_CUDA_UNARY_RELU6 ? 8 : cases[ci].act == MIXRT_CUDA_UNARY_HARDSWISH ? 5 : 2;
            hbuf_random(&y, dt, n, -span, span);
            hbuf_random(&b, dt, (size_t)cases[ci].c, -1, 1);
            hbuf_random(&z, dt, n, -1, 1);
            void *dy = dupload(&y), *db = dupload(&b), *dz = dupload(&z);
            size_t inner = cases[ci].nhwc ? 1 : (size_t)cases[ci].sp;
            DEV_OK(mixrt_cuda_bias_act(g_dev, dt, dy, cases[ci].bias ? db : NULL, (size_t)cases[ci].c, inner,
                                       cases[ci].z ? dz : NULL, cases[ci].act, n));
            double *out = dread(dy, dt, n), *ref = malloc(n * sizeof(double));
            for (size_t i = 0; i < n; i++) {
                double v = y.v[i] + (cases[ci].bias ? b.v[(i / inner) % (size_t)cases[ci].c] : 0) +
                           (cases[ci].z ? z.v[i] : 0);
                ref[i] = cases[ci].act < 0 ? v : unary_ref((enum mixrt_cuda_unary_op)cases[ci].act, v);
            }
            char cs[64];
            snprintf(cs, sizeof cs, "%dx%dx%d%s%s%s %s", cases[ci].n, cases[ci].c, cases[ci].sp,
                     cases[ci].nhwc ? " nhwc" : " nchw", cases[ci].bias ? " +b" : "", cases[ci].z ? " +z" : "",
                     cases[ci].act < 0 ? "none" : mixrt_cuda_unary_name((enum mixrt_cuda_unary_op)cases[ci].act));
            report("conv epilogue", cs, dt, rel_err(out, ref, n), tol_of(dt));
            free(out), free(ref), hbuf_free(&y), hbuf_free(&b), hbuf_free(&z);
        }
}

/* im2col (channels-last) against a host loop: the ResNet-50 stem's geometry (7x7, stride 2,
 * pad 3, 3 channels, 147 columns padded to 152) and a dilated 3x3 of 2 channels; a poisoned
 * col shows any element the kernel missed (padded columns must come out 0). Exact: a copy. */
static void test_im2col(void) {
    static const struct mixrt_cuda_im2col_args cases[] = {
        {2, 20, 18, 3, 10, 9, 7, 7, 2, 2, 3, 3, 1, 1, 152},
        {1, 7, 9, 2, 5, 9, 3, 3, 1, 1, 1, 1, 2, 1, 24},
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int t = 0; t < 3; t++) {
            const struct mixrt_cuda_im2col_args *a = &cases[ci];
            mixrt_dtype dt = k_float_types[t];
            size_t nx = (size_t)(a->n * a->h * a->w * a->c), ncol = (size_t)(a->n * a->oh * a->ow) * (size_t)a->ldc;
            struct hbuf x;
            g_arena_off = 0;
            hbuf_random(&x, dt, nx, -2, 2);
            void *dx = dupload(&x), *dc = dpoisoned(dt, ncol);
            DEV_OK(mixrt_cuda_im2col(g_dev, dt, dx, dc, a));
            double *out = dread(dc, dt, ncol), *ref = malloc(ncol * sizeof(double));
            size_t bad = 0;
            for (long long n = 0; n < a->n; n++)
                for (long long oh = 0; oh < a->oh; oh++)
                    for (long long ow = 0; ow < a->ow; ow++)
                        for (int j = 0; j < a->ldc; j++) {
                            double v = 0;
                            if (j < a->r * a->s * a->c) {
                                long long ch = j % a->c, ki = j / a->c / a->s, kj = j / a->c % a->s;
                                long long ih = oh * a->sh - a->ph + ki * a->dh, iw = ow * a->sw - a->pw + kj * a->dw;
                                if (ih >= 0 && ih < a->h && iw >= 0 && iw < a->w)
                                    v = x.v[((n * a->h + ih) * a->w + iw) * a->c + ch];
                            }
                            size_t i = (size_t)(((n * a->oh + oh) * a->ow + ow) * a->ldc + j);
                            ref[i] = v;
                            bad += !(out[i] == v);
                        }
            char cs[80];
            snprintf(cs, sizeof cs, "x [%lld,%lld,%lld,%lld] k%dx%d s%d p%d d%d ldc %d", a->n, a->h, a->w, a->c, a->r,
                     a->s, a->sh, a->ph, a->dh, a->ldc);
            TU_CHECK(bad == 0, "im2col %s %s: %zu of %zu elements differ", cs, mixrt_dtype_name(dt), bad, ncol);
            report("im2col", cs, dt, rel_err(out, ref, ncol), 0);
            free(out), free(ref), hbuf_free(&x);
        }
}

/* Depthwise convolution, channels-last, against an f64 host loop: vector channels (c % 8 == 0
 * for 16-bit, % 4 for f32), the scalar path (c 20 in 16-bit, c 6 in every dtype), stride 2,
 * dilation, 5x5, bias or not, ReLU6 past both bounds, SiLU or none. */
static void test_dwconv(void) {
    static const struct mixrt_cuda_dwconv_args cases[] = {
        /* n h w c oh ow r s sh sw ph pw dh dw act */
        {2, 9, 11, 24, 9, 11, 3, 3, 1, 1, 1, 1, 1, 1, MIXRT_CUDA_UNARY_RELU6},
        {1, 14, 13, 32, 7, 7, 3, 3, 2, 2, 1, 1, 1, 1, -1},
        {1, 10, 10, 20, 10, 10, 3, 3, 1, 1, 2, 2, 2, 2, MIXRT_CUDA_UNARY_RELU6},
        {3, 8, 7, 6, 8, 7, 5, 5, 1, 1, 2, 2, 1, 1, MIXRT_CUDA_UNARY_SILU},
        {1, 12, 12, 40, 6, 6, 5, 5, 2, 2, 2, 2, 1, 1, MIXRT_CUDA_UNARY_HARDSWISH}, /* MobileNetV3's 5x5, stride 2 */
    };
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int t = 0; t < 3; t++) {
            const struct mixrt_cuda_dwconv_args *a = &cases[ci];
            mixrt_dtype dt = k_float_types[t];
            bool with_bias = ci != 1;
            size_t nx = (size_t)(a->n * a->h * a->w * a->c), nw = (size_t)(a->r * a->s) * (size_t)a->c;
            size_t ny = (size_t)(a->n * a->oh * a->ow * a->c);
            struct hbuf x, w, b;
            g_arena_off = 0;
            hbuf_random(&x, dt, nx, -3, 3);
            hbuf_random(&w, dt, nw, -1, 1);
            hbuf_random(&b, dt, (size_t)a->c, -1, 1);
            void *dx = dupload(&x), *dw = dupload(&w), *db = dupload(&b), *dy = dpoisoned(dt, ny);
            DEV_OK(mixrt_cuda_dwconv(g_dev, dt, dx, dw, with_bias ? db : NULL, dy, a));
            double *out = dread(dy, dt, ny), *ref = malloc(ny * sizeof(double));
            for (long long n = 0; n < a->n; n++)
                for (long long oh = 0; oh < a->oh; oh++)
                    for (long long ow = 0; ow < a->ow; ow++)
                        for (long long ch = 0; ch < a->c; ch++) {
                            double v = with_bias ? b.v[ch] : 0;
                            for (int r = 0; r < a->r; r++)
                                for (int sx = 0; sx < a->s; sx++) {
                                    long long ih = oh * a->sh - a->ph + r * a->dh, iw = ow * a->sw - a->pw + sx * a->dw;
                                    if (ih >= 0 && ih < a->h && iw >= 0 && iw < a->w)
                                        v += x.v[((n * a->h + ih) * a->w + iw) * a->c + ch] *
                                             w.v[(size_t)((r * a->s + sx) * a->c + ch)];
                                }
                            ref[((n * a->oh + oh) * a->ow + ow) * a->c + ch] =
                                a->act < 0 ? v : unary_ref((enum mixrt_cuda_unary_op)a->act, v);
                        }
            char cs[96];
            snprintf(cs, sizeof cs, "[%lld,%lld,%lld,%lld] k%dx%d s%d p%d d%d%s %s", a->n, a->h, a->w, a->c, a->r, a->s,
                     a->sh, a->ph, a->dh, with_bias ? " +b" : "",
                     a->act < 0 ? "none" : mixrt_cuda_unary_name((enum mixrt_cuda_unary_op)a->act));
            report("dwconv nhwc", cs, dt, rel_err(out, ref, ny), tol_of(dt));
            free(out), free(ref), hbuf_free(&x), hbuf_free(&w), hbuf_free(&b);
        }
}

/* The edge columns of a row-grouped product (engine_cuda.c's row groups): group j's rows
 * get columns [0, c0[j]) and [c0[j] + nc, n) from the edge product's rows E (columns [0,
 * left) then [nc, n) of the full product), bit for bit; every other column must keep its
 * poison (the group's product writes those). 12 / 5 / 33 / 8 rows per group, up to 60 edge
 * columns, E rows padded past the union. */
static void test_edge_scatter(void) {
    static const struct {
        long long rows, n;
        int groups, t;
    } cases[] = {{96, 150, 8, 7}, {20, 201, 4, 3}, {33, 140, 1, 0}, {64, 161, 8, 7}};
    for (size_t ci = 0; ci < sizeof cases / sizeof cases[0]; ci++)
        for (int ti = 0; ti < 3; ti++) {
            mixrt_dtype dt = k_float_types[ti];
            struct mixrt_cuda_edge_args a;
            memset(&a, 0, sizeof a);
            a.rows = cases[ci].rows, a.n = cases[ci].n, a.groups = cases[ci].groups;
            a.nc = (a.n - (a.groups - 1) * cases[ci].t) / 8 * 8 - (ci == 2 ? 56 : 0);
            for (int j = 0; j < a.groups; j++) a.c0[j] = j * cases[ci].t + (ci == 2 ? 5 : 0);
            a.left = (a.groups - 1) * cases[ci].t + (ci == 2 ? 5 : 0);
            a.ld_e = (a.left + a.n - a.nc + 7) / 8 * 8 + 8;
            size_t ny = (size_t)(a.rows * a.n), nen = (size_t)(a.rows * a.ld_e);
            struct hbuf e;
            g_arena_off = 0;
            hbuf_random(&e, dt, nen, -4, 4);
            void *de = dupload(&e), *dy = dpoisoned(dt, ny);
            DEV_OK(mixrt_cuda_edge_scatter(g_dev, dt, de, dy, &a));
            double *out = dread(dy, dt, ny);
            size_t touched = 0, edge = 0, wrong = 0;
            for (long long r = 0; r < a.rows; r++)
                for (long long col = 0; col < a.n; col++) {
                    int c0 = a.c0[r % a.groups];
                    double o = out[r * a.n + col];
                    if (col >= c0 && col < c0 + a.nc) { /* the product's: the poison (NaN) left */
                        touched += !isnan(o);
                        continue;
                    }
                    double want = e.v[r * a.ld_e + (col < c0 ? col : a.left + col - a.nc)];
                    edge++, wrong += o != want;
                }
            char cs[96];
            snprintf(cs, sizeof cs, "%lld rows n %lld, %d groups, %lld edge cols", a.rows, a.n, a.groups, a.n - a.nc);
            printf("  %-26s %-40s %-5s %zu values, %zu wrong, %zu product columns written\n", "edge_scatter", cs,
                   mixrt_dtype_name(dt), edge, wrong, touched);
            TU_CHECK(touched == 0 && wrong == 0 && edge == (size_t)(a.rows * (a.n - a.nc)),
                     "edge_scatter %s %s: %zu wrong of %zu, %zu product columns written", cs, mixrt_dtype_name(dt),
                     wrong, edge, touched);
            free(out), hbuf_free(&e);
        }
}

/* ---- error paths: a status and a message naming what failed ---- */
static void test_errors(void) {
    void *p = NULL;
    mixrt_status st = mixrt_cuda_arena_at(g_dev, mixrt_cuda_arena_size(g_dev) - 16, 32, &p);
    TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT && strstr(mixrt_context_last_error(g_ctx), "does not fit"),
             "arena range past the end: %d '%s'", (int)st, mixrt_context_last_error(g_ctx));
    st = mixrt_cuda_alloc(g_dev, (size_t)1 << 60, "huge", &p);
    printf("  cudaMalloc(2^60) -> %s: %s\n", mixrt_status_string(st), mixrt_context_last_error(g_ctx));
    TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY && strstr(mixrt_context_last_error(g_ctx), "cudaMalloc(huge"),
             "huge cudaMalloc: %d '%s'", (int)st, mixrt_context_last_error(g_ctx));
    g_arena_off = 0;
    void *a = dalloc(4096);
    st = mixrt_cuda_binary(g_dev, MIXRT_CUDA_BINARY_ADD, MIXRT_DTYPE_F32, a, a, 7, a, 100);
    TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT, "binary with b_n 7 of 100: %d", (int)st);
    st = mixrt_cuda_unary(g_dev, MIXRT_CUDA_UNARY_RELU, MIXRT_DTYPE_I32, a, a, 10);
    TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED_DTYPE && strstr(mixrt_context_last_error(g_ctx), "i32"),
             "relu on i32: %d '%s'", (int)st, mixrt_context_last_error(g_ctx));
    static const int64_t sdims[1] = {4}, sst[1] = {1};
    st = mixrt_cuda_select_bcast(g_dev, MIXRT_CUDA_SELECT_WHERE, 3, a, sst, a, sst, a, sst, a, 1, sdims);
    TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED_DTYPE && strstr(mixrt_context_last_error(g_ctx), "Where"),
             "Where of 3-byte elements: %d '%s'", (int)st, mixrt_context_last_error(g_ctx));
    st = mixrt_cuda_select_bcast(g_dev, MIXRT_CUDA_SELECT_AND, 4, NULL, NULL, a, sst, a, sst, a, 1, sdims);
    TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED_DTYPE, "And of 4-byte elements: %d", (int)st);
    st = mixrt_cuda_select_bcast(g_dev, MIXRT_CUDA_SELECT_WHERE, 4, NULL, sst, a, sst, a, sst, a, 1, sdims);
    TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT, "Where without a condition: %d", (int)st);
    struct mixrt_cuda_gemm_desc d = {.ab_dtype = MIXRT_DTYPE_BF16, .y_dtype = MIXRT_DTYPE_F16, .m = 4, .n = 4, .k = 4,
                                     .batch = 1, .name = "bad"};
    mixrt_cuda_gemm_t g = NULL;
    st = mixrt_cuda_gemm_create(g_dev, &d, &g);
    TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED_DTYPE && g == NULL, "gemm bf16 -> f16: %d", (int)st);
    d.y_dtype = MIXRT_DTYPE_BF16;
    DEV_OK(mixrt_cuda_gemm_create(g_dev, &d, &g));
    st = mixrt_cuda_gemm_run(g, (char *)a + 2, a, NULL, a);
    TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT, "gemm with a misaligned A: %d", (int)st);
    mixrt_cuda_gemm_destroy(g);
    DEV_OK(mixrt_cuda_device_sync(g_dev));
}

/* ---- benchmark (--bench): rates on the device; informative, never asserted ---- */
static int cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return a < b ? -1 : a > b;
}

/* Median over 5 batches of the per-run time (ms) of gemm g on `sets` rotating buffer sets. */
static float bench_gemm_ms(mixrt_cuda_gemm_t g, void **a, void **b, void *bias, void **y, int sets, int reps) {
    float t[5];
    for (int r = 0; r < 5; r++) {
        DEV_OK(mixrt_cuda_timer_begin(g_dev));
        for (int i = 0; i < reps; i++) DEV_OK(mixrt_cuda_gemm_run(g, a[i % sets], b[i % sets], bias, y[i % sets]));
        DEV_OK(mixrt_cuda_timer_end(g_dev, &t[r]));
        t[r] /= (float)reps;
    }
    qsort(t, 5, sizeof(float), cmp_float);
    return t[2];
}

static void bench_gemm(mixrt_dtype ab, mixrt_dtype yd, int64_t m, int64_t n, int64_t k, bool tb, bool tf32,
                       enum mixrt_cuda_epilogue epi, const char *label) {
    enum { MAX_SETS = 16 };
    size_t es = mixrt_dtype_size(ab), ey = mixrt_dtype_size(yd);
    size_t ba = (size_t)(m * k) * es, bb = (size_t)(k * n) * es, by = (size_t)(m * n) * ey;
    /* Enough sets that one pass over them exceeds 2x the L2: weights come cold, as they do
     * in a real network's layer sequence. */
    size_t per = ba + bb + by;
    int sets = (int)((2 * mixrt_cuda_device_get_info(g_dev)->l2_bytes) / per + 1);
    if (sets > MAX_SETS) sets = MAX_SETS;
    void *a[MAX_SETS], *b[MAX_SETS], *y[MAX_SETS], *bias;
    float *host = malloc(per > bb ? per : bb);
    for (int s = 0; s < sets; s++) {
        DEV_OK(mixrt_cuda_alloc(g_dev, ba, "A", &a[s]));
        DEV_OK(mixrt_cuda_alloc(g_dev, bb, "B", &b[s]));
        DEV_OK(mixrt_cuda_alloc(g_dev, by, "Y", &y[s]));
    }
    DEV_OK(mixrt_cuda_alloc(g_dev, (size_t)n * ey, "bias", &bias));
    /* Random data, never zeros (zeros run faster): fill one set, copy to the others. */
    struct hbuf ha, hb, hbias;
    hbuf_random(&ha, ab, (size_t)(m * k), -1, 1);
    hbuf_random(&hb, ab, (size_t)(k * n), -1, 1);
    hbuf_random(&hbias, yd, (size_t)n, -1, 1);
    for (int s = 0; s < sets; s++) {
        DEV_OK(mixrt_cuda_copy_h2d(g_dev, a[s], ha.raw, ba));
        DEV_OK(mixrt_cuda_copy_h2d(g_dev, b[s], hb.raw, bb));
    }
    DEV_OK(mixrt_cuda_copy_h2d(g_dev, bias, hbias.raw, (size_t)n * ey));
    DEV_OK(mixrt_cuda_device_sync(g_dev));
    struct mixrt_cuda_gemm_desc d = {.ab_dtype = ab, .y_dtype = yd, .m = m, .n = n, .k = k, .trans_b = tb,
                                     .batch = 1, .epilogue = epi, .allow_tf32 = tf32, .name = label};
    mixrt_cuda_gemm_t g = NULL;
    DEV_OK(mixrt_cuda_gemm_create(g_dev, &d, &g));
    double flop = 2.0 * (double)m * (double)n * (double)k;
    /* About 20 ms per batch. */
    int reps = (int)(20e-3 / (flop / 500e12 + 4e-6));
    if (reps < 3) reps = 3;
    if (reps > 2000) reps = 2000;
    for (int i = 0; i < 3; i++) DEV_OK(mixrt_cuda_gemm_run(g, a[0], b[0], bias, y[0])); /* warm-up */
    DEV_OK(mixrt_cuda_gemm_tune(g, a[0], b[0], bias, y[0], reps / 4 + 1));
    int nc, ch;
    float tms;
    mixrt_cuda_gemm_get_choice(g, &nc, &ch, &tms);
    /* Heuristic #0 and the tuned choice alternate (A B A B), so clock drift under the
     * sustained load biases neither; the better of each pair of medians is reported. */
    float ms0 = 1e30f, ms1 = 1e30f;
    for (int r = 0; r < 2; r++) {
        DEV_OK(mixrt_cuda_gemm_set_choice(g, 0));
        float t0 = bench_gemm_ms(g, a, b, bias, y, sets, reps);
        DEV_OK(mixrt_cuda_gemm_set_choice(g, ch));
        float t1 = bench_gemm_ms(g, a, b, bias, y, sets, reps);
        ms0 = t0 < ms0 ? t0 : ms0;
        ms1 = t1 < ms1 ? t1 : ms1;
    }
    printf("BENCH gemm %-34s %5lldx%5lldx%5lld sets %2d  heuristic#0 %9.4f ms %7.1f TFLOP/s | tuned #%d/%d %9.4f ms "
           "%7.1f TFLOP/s (tune saw %.4f ms)\n",
           label, (long long)m, (long long)n, (long long)k, sets, (double)ms0, flop / (ms0 * 1e-3) / 1e12, ch, nc,
           (double)ms1, flop / (ms1 * 1e-3) / 1e12, (double)tms);
    mixrt_cuda_gemm_destroy(g);
    for (int s = 0; s < sets; s++) {
        mixrt_cuda_free(g_dev, a[s], ba);
        mixrt_cuda_free(g_dev, b[s], bb);
        mixrt_cuda_free(g_dev, y[s], by);
    }
    mixrt_cuda_free(g_dev, bias, (size_t)n * ey);
    hbuf_free(&ha), hbuf_free(&hb), hbuf_free(&hbias);
    free(host);
}

/* Bandwidth of one memory-bound call: bytes read + written over the median time. */
#define BENCH_BW(label, bytes, call)                                                                         \
    do {                                                                                                     \
        float t_[5];                                                                                         \
        DEV_OK(call);                                                                                        \
        for (int r_ = 0; r_ < 5; r_++) {                                                                     \
            DEV_OK(mixrt_cuda_timer_begin(g_dev));                                                           \
            for (int i_ = 0; i_ < 10; i_++) DEV_OK(call);                                                    \
            DEV_OK(mixrt_cuda_timer_end(g_dev, &t_[r_]));                                                    \
            t_[r_] /= 10.0f;                                                                                 \
        }                                                                                                    \
        qsort(t_, 5, sizeof(float), cmp_float);                                                              \
        printf("BENCH bw   %-40s %9.4f ms %8.1f GB/s\n", label, (double)t_[2],                              \
               (double)(bytes) / (t_[2] * 1e-3) / 1e9);                                                     \
    } while (0)

static void bench_memory(void) {
    size_t n = (size_t)256 << 20; /* 256 Mi elements */
    void *x, *y, *z;
    DEV_OK(mixrt_cuda_alloc(g_dev, n * 4, "x", &x));
    DEV_OK(mixrt_cuda_alloc(g_dev, n * 4, "y", &y));
    DEV_OK(mixrt_cuda_alloc(g_dev, n * 4, "z", &z));
    /* Random-ish data: cast from a filled f32 buffer (bit patterns from a memset would be
     * one value). */
    float *h = malloc(n * 4);
    for (size_t i = 0; i < n; i++) h[i] = (float)((i * 2654435761u) % 1000) * 1e-3f - 0.5f;
    DEV_OK(mixrt_cuda_copy_h2d(g_dev, x, h, n * 4));
    DEV_OK(mixrt_cuda_copy_h2d(g_dev, y, h, n * 4));
    DEV_OK(mixrt_cuda_device_sync(g_dev));
    free(h);
    BENCH_BW("copy d2d 1 GiB", 2.0 * n * 4, mixrt_cuda_copy_d2d(g_dev, z, x, n * 4));
    BENCH_BW("add f32 same shape 256M", 3.0 * n * 4,
             mixrt_cuda_binary(g_dev, MIXRT_CUDA_BINARY_ADD, MIXRT_DTYPE_F32, x, y, n, z, n));
    BENCH_BW("cast f32->bf16 256M", 6.0 * n, mixrt_cuda_cast(g_dev, MIXRT_DTYPE_F32, x, MIXRT_DTYPE_BF16, z, n));
    /* x and y become bf16 (their first halves), through z: casts may not overlap. */
    DEV_OK(mixrt_cuda_cast(g_dev, MIXRT_DTYPE_F32, x, MIXRT_DTYPE_BF16, z, n));
    DEV_OK(mixrt_cuda_copy_d2d(g_dev, x, z, n * 2));
    DEV_OK(mixrt_cuda_cast(g_dev, MIXRT_DTYPE_F32, y, MIXRT_DTYPE_BF16, z, n));
    DEV_OK(mixrt_cuda_copy_d2d(g_dev, y, z, n * 2));
    BENCH_BW("add bf16 same shape 256M", 6.0 * n,
             mixrt_cuda_binary(g_dev, MIXRT_CUDA_BINARY_ADD, MIXRT_DTYPE_BF16, x, y, n, z, n));
    BENCH_BW("add bf16 bias 768 256M", 4.0 * n,
             mixrt_cuda_binary(g_dev, MIXRT_CUDA_BINARY_ADD, MIXRT_DTYPE_BF16, x, y, 768, z, n - n % 768));
    BENCH_BW("gelu_erf bf16 256M", 4.0 * n, mixrt_cuda_unary(g_dev, MIXRT_CUDA_UNARY_GELU_ERF, MIXRT_DTYPE_BF16, x, z, n));
    size_t rows = n / 768;
    BENCH_BW("layer_norm bf16 [349525,768]", 4.0 * rows * 768,
             mixrt_cuda_layer_norm(g_dev, MIXRT_DTYPE_BF16, x, y, y, z, rows, 768, 1e-5f));
    rows = n / 128;
    BENCH_BW("softmax bf16 [2M,128]", 4.0 * rows * 128, mixrt_cuda_softmax(g_dev, MIXRT_DTYPE_BF16, x, z, rows, 128));
    mixrt_cuda_free(g_dev, x, n * 4);
    mixrt_cuda_free(g_dev, y, n * 4);
    mixrt_cuda_free(g_dev, z, n * 4);
}

static void bench(void) {
    const mixrt_dtype F32 = MIXRT_DTYPE_F32, BF = MIXRT_DTYPE_BF16, H = MIXRT_DTYPE_F16;
    bench_memory();
    bench_gemm(BF, BF, 8192, 8192, 8192, false, false, MIXRT_CUDA_EPILOGUE_NONE, "bf16 8192^3");
    bench_gemm(BF, BF, 8192, 8192, 8192, true, false, MIXRT_CUDA_EPILOGUE_NONE, "bf16 8192^3 tB");
    bench_gemm(H, H, 8192, 8192, 8192, false, false, MIXRT_CUDA_EPILOGUE_NONE, "f16 8192^3");
    bench_gemm(F32, F32, 8192, 8192, 8192, false, true, MIXRT_CUDA_EPILOGUE_NONE, "f32 tf32 8192^3");
    bench_gemm(F32, F32, 4096, 4096, 4096, false, false, MIXRT_CUDA_EPILOGUE_NONE, "f32 4096^3");
    static const int64_t bert[][3] = {{128, 768, 768}, {128, 3072, 768}, {128, 768, 3072},
                                      {4096, 768, 768}, {4096, 3072, 768}, {4096, 768, 3072}};
    for (int i = 0; i < 6; i++) {
        char lab[64];
        snprintf(lab, sizeof lab, "bert bf16 tB");
        bench_gemm(BF, BF, bert[i][0], bert[i][1], bert[i][2], true, false, MIXRT_CUDA_EPILOGUE_NONE, lab);
        snprintf(lab, sizeof lab, "bert bf16 tB bias+gelu");
        if (bert[i][1] == 3072)
            bench_gemm(BF, BF, bert[i][0], bert[i][1], bert[i][2], true, false, MIXRT_CUDA_EPILOGUE_BIAS_GELU_TANH, lab);
    }
    /* GPT-2's LM head (tied embedding: W stored [vocab, 768]), N = 50257 not a multiple of 8,
     * and the same product padded to N = 50304 (a multiple of 64 and 128). */
    static const int64_t lm[][2] = {{128, 50257}, {128, 50304}, {4096, 50257}, {4096, 50304}};
    for (int i = 0; i < 4; i++)
        bench_gemm(BF, BF, lm[i][0], lm[i][1], 768, true, false, MIXRT_CUDA_EPILOGUE_NONE, "gpt2 lm head bf16 tB");
}

/* Row-group products (engine_cuda.c, cu_step.rg): which of M, A's row pitch, Y's row pitch
 * and Y's 16-byte alignment costs cuBLASLt its speed (--bench-pitch; informative). */
static void bench_pitched_batch(const char *label, int64_t m, int64_t n, int64_t lda, int64_t ldy, uint32_t align_y,
                                int64_t yoff, int64_t batch, int64_t t) {
    const int64_t k = 768;
    const mixrt_dtype BF = MIXRT_DTYPE_BF16;
    /* batch > 1: the engine's row groups as one strided batch (A rows k apart, W rows t k,
     * Y starts ldy / batch + t); the buffers cover the last batch's reach. */
    size_t ba = (size_t)(m * (lda ? lda : k)) * 2, bb = (size_t)((n + (batch - 1) * t) * k) * 2;
    size_t by = (size_t)(m * (ldy ? ldy : n) + yoff) * 2;
    void *a, *b, *y;
    DEV_OK(mixrt_cuda_alloc(g_dev, ba, "A", &a));
    DEV_OK(mixrt_cuda_alloc(g_dev, bb, "B", &b));
    DEV_OK(mixrt_cuda_alloc(g_dev, by, "Y", &y));
    struct hbuf ha, hb;
    hbuf_random(&ha, BF, ba / 2, -1, 1);
    hbuf_random(&hb, BF, bb / 2, -1, 1);
    DEV_OK(mixrt_cuda_copy_h2d(g_dev, a, ha.raw, ba));
    DEV_OK(mixrt_cuda_copy_h2d(g_dev, b, hb.raw, bb));
    struct mixrt_cuda_gemm_desc d = {.ab_dtype = BF, .y_dtype = BF, .m = m, .n = n, .k = k, .trans_b = true,
                                     .batch = batch, .name = label, .lda = lda, .ldy = ldy, .align_y = align_y};
    if (batch > 1) d.stride_a = k, d.stride_b = t * k, d.stride_y = ldy / batch + t;
    mixrt_cuda_gemm_t g = NULL;
    DEV_OK(mixrt_cuda_gemm_create(g_dev, &d, &g));
    void *yp = (char *)y + yoff * 2;
    if (g) {
        DEV_OK(mixrt_cuda_gemm_tune(g, a, b, NULL, yp, 5));
        int nc, ch;
        float tms;
        mixrt_cuda_gemm_get_choice(g, &nc, &ch, &tms);
        void *av[1] = {a}, *bv[1] = {b}, *yv[1] = {yp};
        float ms = bench_gemm_ms(g, av, bv, NULL, yv, 1, 20);
        printf("BENCH pitch %-40s m %5lld n %5lld lda %5lld ldy %6lld align_y %3u +%lld batch %lld: %8.4f ms %7.1f "
               "TFLOP/s (#%d of %d)\n", label, (long long)m, (long long)n, (long long)lda, (long long)ldy, align_y,
               (long long)yoff, (long long)batch, (double)ms, 2.0 * batch * m * n * k / (ms * 1e-3) / 1e12, ch, nc);
        mixrt_cuda_gemm_destroy(g);
    }
    mixrt_cuda_free(g_dev, a, ba), mixrt_cuda_free(g_dev, b, bb), mixrt_cuda_free(g_dev, y, by);
    hbuf_free(&ha), hbuf_free(&hb);
}

static void bench_pitched(const char *label, int64_t m, int64_t n, int64_t lda, int64_t ldy, uint32_t align_y,
                          int64_t yoff) {
    bench_pitched_batch(label, m, n, lda, ldy, align_y, yoff, 1, 0);
}

static void bench_pitch(void) {
    bench_pitched("whole, padded N", 4096, 50304, 0, 0, 0, 0);
    bench_pitched("group rows, Y rows of 50250 (4-byte)", 512, 50250, 0, 0, 0, 0);
    bench_pitched("group rows, A pitch", 512, 50250, 8 * 768, 50304, 0, 0);
    bench_pitched("group rows, Y pitch 128B-multiple", 512, 50250, 8 * 768, 8 * 50304, 0, 0);
    bench_pitched("group rows, Y pitch 8x50257 (16B)", 512, 50250, 8 * 768, 8 * 50257, 16, 0);
    bench_pitched("group rows, Y pitch 8x50257, +7 cols", 512, 50250, 8 * 768, 8 * 50257, 16, 50257 + 7);
    bench_pitched("dense, Y 16B-aligned pointer", 512, 50256, 0, 0, 16, 8);
    bench_pitched("engine's groups: N 50248, Y pitch 8x50257, +7", 512, 50248, 8 * 768, 8 * 50257, 16, 50257 + 7);
    bench_pitched("4 groups, Y pitch 4x50264 (16B)", 1024, 50256, 4 * 768, 4 * 50264 + 8, 16, 0);
    bench_pitched_batch("engine's groups as one batch: N 50208", 512, 50208, 8 * 768, 8 * 50257, 16, 0, 8, 7);
}

int main(int argc, char **argv) {
    bool do_bench = argc > 1 && strcmp(argv[1], "--bench") == 0;
    bool do_pitch = argc > 1 && strcmp(argv[1], "--bench-pitch") == 0;
    if (mixrt_context_create(NULL, &g_ctx) != MIXRT_STATUS_OK) return 1;
    mixrt_context_set_log_level(g_ctx, MIXRT_LOG_ERROR);
    int count = 0;
    if (mixrt_cuda_device_count(g_ctx, &count) != MIXRT_STATUS_OK) {
        fprintf(stderr, "test_cuda_kernels: %s\n", mixrt_context_last_error(g_ctx));
        mixrt_context_destroy(g_ctx);
        return 1;
    }
    if (count == 0) {
        mixrt_cuda_device_t d = NULL;
        (void)mixrt_cuda_device_create(g_ctx, 0, &d);
        printf("SKIP test_cuda_kernels: %s\n", mixrt_context_last_error(g_ctx));
        mixrt_context_destroy(g_ctx);
        return 77;
    }
    DEV_OK(mixrt_cuda_device_create(g_ctx, 0, &g_dev));
    const struct mixrt_cuda_device_info *info = mixrt_cuda_device_get_info(g_dev);
    printf("device %d: %s, cc %d.%d, %d SMs, %.1f GiB, L2 %.1f MiB, runtime %d, driver %d\n", info->ordinal,
           info->name, info->cc_major, info->cc_minor, info->sm_count, info->global_mem_bytes / 1073741824.0,
           info->l2_bytes / 1048576.0, info->runtime_version, info->driver_version);
    tu_seed(0xC0DA);
    if (do_pitch) {
        bench_pitch();
        return 0;
    }
    if (do_bench) {
        bench();
    } else {
        DEV_OK(mixrt_cuda_arena_reserve(g_dev, (size_t)64 << 20));
        test_binary();
        test_unary();
        test_cast();
        test_layer_norm();
        test_reduce_instnorm();
        test_softmax();
        test_strided_copy();
        test_cast_rows();
        test_gather();
        test_gemm();
        test_attention();
        test_conv();
        test_pool();
        test_bcast();
        test_select();
        test_cast_int();
        test_resize();
        test_bias_act();
        test_im2col();
        test_dwconv();
        test_edge_scatter();
        test_errors();
    }
    mixrt_cuda_device_destroy(g_dev);
    mixrt_context_destroy(g_ctx);
    return do_bench ? 0 : tu_finish("test_cuda_kernels");
}
