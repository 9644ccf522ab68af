/* test_ref_nn.c - unit tests of the nn-family reference kernels (ref_nn*.c) beyond the onnx 1.12
 * node suite: Conv/ConvTranspose against an independent direct formula over random geometries,
 * f16/bf16/f32 rounding once, pooling edge rules, old-opset forms, errors, zero-size tensors,
 * allocation failures, and the 3x3 64->64 56x56 conv time (printed, not asserted). */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/ref.h"
#include "kernel_harness.h"
#include "testutil.h"

/* The nodes under test name their inputs like Conv's, so messages can be checked for "input #1 'W'". */
static const char *const input_names[KH_CASE_MAX_IO] = {"X", "W", "B", "in3", "in4", "in5", "in6", "in7"};

static void check_vals(const char *what, const struct mixrt_tensor *o, const double *v, size_t n, double tol) {
    TU_CHECK(mixrt_tensor_numel(o) == n, "%s: %zu elements, expected %zu", what, mixrt_tensor_numel(o), n);
    if (mixrt_tensor_numel(o) != n) return;
    for (size_t i = 0; i < n; i++) {
        double g = mixrt_load_f64(o->data, o->dtype, i);
        if (!(fabs(g - v[i]) <= tol * (1 + fabs(v[i]))) && !(isnan(g) && isnan(v[i]))) {
            TU_CHECK(false, "%s: element %zu is %.9g, expected %.9g", what, i, g, v[i]);
            return;
        }
    }
    tu_checks++;
}

/* ---- independent conv references: direct formulas, one output element at a time ---- */

struct geom {
    int nd;
    int64_t N, C, M, group, in[3], k[3], s[3], d[3], pb[3], pe[3], out[3], opad[3];
};

static int64_t prod3(int nd, const int64_t *v) {
    int64_t p = 1;
    for (int i = 0; i < nd; i++) p *= v[i];
    return p;
}

/* y[n, m, o] = b[m] + sum_{c, kk} x[n, g*Cg + c, o*s - pb + kk*d] * w[m, c, kk] */
static void conv_direct(const struct geom *g, const double *x, const double *w, const double *b, double *y) {
    int64_t Cg = g->C / g->group, Mg = g->M / g->group, osz = prod3(g->nd, g->out), ksz = prod3(g->nd, g->k),
            isz = prod3(g->nd, g->in);
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t m = 0; m < g->M; m++)
            for (int64_t o = 0; o < osz; o++) {
                int64_t oc[3], r = o;
                for (int i = g->nd - 1; i >= 0; i--) oc[i] = r % g->out[i], r /= g->out[i];
                double acc = b ? b[m] : 0.0;
                for (int64_t c = 0; c < Cg; c++)
                    for (int64_t kk = 0; kk < ksz; kk++) {
                        int64_t kc[3], rk = kk, ip = 0;
                        bool ok = true;
                        for (int i = g->nd - 1; i >= 0; i--) kc[i] = rk % g->k[i], rk /= g->k[i];
                        for (int i = 0; i < g->nd; i++) {
                            int64_t p = oc[i] * g->s[i] - g->pb[i] + kc[i] * g->d[i];
                            if (p < 0 || p >= g->in[i]) ok = false;
                            ip = ip * g->in[i] + p;
                        }
                        if (!ok) continue;
                        acc += x[(n * g->C + (m / Mg) * Cg + c) * isz + ip] * w[(m * Cg + c) * ksz + kk];
                    }
                y[(n * g->M + m) * osz + o] = acc;
            }
}

/* Scatter into the uncropped result, then crop [pb, pb + out) (zero where beyond). */
static void convt_direct(const struct geom *g, const double *x, const double *w, const double *b, double *y) {
    int64_t Cg = g->C / g->group, Mg = g->M / g->group, osz = prod3(g->nd, g->out), ksz = prod3(g->nd, g->k),
            isz = prod3(g->nd, g->in);
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t m = 0; m < g->M; m++)
            for (int64_t o = 0; o < osz; o++) y[(n * g->M + m) * osz + o] = b ? b[m] : 0.0;
    for (int64_t n = 0; n < g->N; n++)
        for (int64_t ic = 0; ic < g->C; ic++)
            for (int64_t i = 0; i < isz; i++) {
                int64_t icd[3], r = i;
                for (int a = g->nd - 1; a >= 0; a--) icd[a] = r % g->in[a], r /= g->in[a];
                for (int64_t m = 0; m < Mg; m++)
                    for (int64_t kk = 0; kk < ksz; kk++) {
                        int64_t kc[3], rk = kk, op = 0;
                        bool ok = true;
                        for (int a = g->nd - 1; a >= 0; a--) kc[a] = rk % g->k[a], rk /= g->k[a];
                        for (int a = 0; a < g->nd; a++) {
                            int64_t p = icd[a] * g->s[a] + kc[a] * g->d[a] - g->pb[a];
                            if (p < 0 || p >= g->out[a]) ok = false;
                            op = op * g->out[a] + p;
                        }
                        if (!ok) continue;
                        int64_t oc = (ic / Cg) * Mg + m;
                        y[(n * g->M + oc) * osz + op] += x[(n * g->C + ic) * isz + i] * w[(ic * Mg + m) * ksz + kk];
                    }
            }
}

static int64_t rnd(int64_t lo, int64_t hi) { return lo + (int64_t)(tu_rand() % (uint64_t)(hi - lo + 1)); }

static void fill(double *v, size_t n) {
    for (size_t i = 0; i < n; i++) v[i] = tu_uniform(-2, 2);
}

/* Random Conv geometries in 1-3 D with groups, strides, dilations, pads and every auto_pad,
 * compared in f64 with the direct formula; invalid geometries must fail with INVALID_MODEL. */
static void test_conv_random(bool transpose) {
    static const char *const autopads[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
    int ok_cases = 0, err_cases = 0;
    for (int it = 0; it < 300; it++) {
        struct geom g = {0};
        g.nd = (int)rnd(1, 3);
        g.group = rnd(1, 3);
        g.N = rnd(1, 2);
        g.C = g.group * rnd(1, 3);
        g.M = g.group * rnd(1, 3);
        int ap = (int)rnd(0, 3);
        bool use_os = transpose && rnd(0, 3) == 0;
        bool valid = true;
        for (int i = 0; i < g.nd; i++) {
            g.in[i] = rnd(1, g.nd == 3 ? 4 : 7);
            g.k[i] = rnd(1, 3);
            g.s[i] = rnd(1, 3);
            g.d[i] = rnd(1, 2);
            g.pb[i] = ap == 0 ? rnd(0, 2) : 0;
            g.pe[i] = ap == 0 ? rnd(0, 2) : 0;
            g.opad[i] = transpose ? rnd(0, g.s[i] - 1) : 0;
            int64_t dk = (g.k[i] - 1) * g.d[i] + 1;
            if (!transpose) {
                if (ap == 1 || ap == 2) {
                    g.out[i] = (g.in[i] + g.s[i] - 1) / g.s[i];
                    int64_t tot = (g.out[i] - 1) * g.s[i] + dk - g.in[i];
                    if (tot < 0) tot = 0;
                    g.pb[i] = ap == 1 ? tot / 2 : tot - tot / 2;
                } else {
                    int64_t span = g.in[i] + g.pb[i] + g.pe[i] - dk;
                    if (span < 0) valid = false;
                    g.out[i] = span / g.s[i] + 1;
                }
            } else {
                int64_t full = g.s[i] * (g.in[i] - 1) + g.opad[i] + dk;
                if (use_os || ap == 1 || ap == 2) {
                    g.out[i] = use_os ? rnd(1, full + 2) : g.in[i] * g.s[i];
                    int64_t tot = full - g.out[i];
                    g.pb[i] = tot < 0 ? 0 : ap == 1 ? tot / 2 : tot - tot / 2;
                } else {
                    g.out[i] = full - g.pb[i] - g.pe[i];
                    if (g.out[i] < 1) valid = false;
                }
            }
        }
        int64_t xd[5] = {g.N, g.C}, wd[5], bd = g.M, yd[5] = {g.N, g.M};
        wd[0] = transpose ? g.C : g.M;
        wd[1] = transpose ? g.M / g.group : g.C / g.group;
        for (int i = 0; i < g.nd; i++) xd[2 + i] = g.in[i], wd[2 + i] = g.k[i], yd[2 + i] = g.out[i];
        size_t nx = (size_t)(g.N * g.C * prod3(g.nd, g.in)), nw = (size_t)(wd[0] * wd[1] * prod3(g.nd, g.k));
        size_t ny = valid ? (size_t)(g.N * g.M * prod3(g.nd, g.out)) : 0;
        double *x = malloc(nx * sizeof(double)), *w = malloc(nw * sizeof(double)), b[9], *y = calloc(ny + 1, 8);
        fill(x, nx);
        fill(w, nw);
        fill(b, (size_t)g.M);
        bool bias = rnd(0, 1);
        struct kh_case t;
        kh_case_begin(&t, transpose ? "ConvTranspose" : "Conv", 11, bias ? 3 : 2, 1);
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F64, g.nd + 2, xd, x));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F64, g.nd + 2, wd, w));
        if (bias) kh_case_in(&t, 2, kh_new_tensor(MIXRT_DTYPE_F64, 1, &bd, b));
        kh_case_attr_ints(&t, "strides", (size_t)g.nd, g.s);
        kh_case_attr_ints(&t, "dilations", (size_t)g.nd, g.d);
        if (g.group != 1) kh_case_attr_int(&t, "group", g.group);
        if (rnd(0, 1)) kh_case_attr_ints(&t, "kernel_shape", (size_t)g.nd, g.k);
        if (use_os) kh_case_attr_ints(&t, "output_shape", (size_t)g.nd, g.out);
        if (transpose) kh_case_attr_ints(&t, "output_padding", (size_t)g.nd, g.opad);
        if (ap) kh_case_attr_str(&t, "auto_pad", autopads[ap]);
        if (ap == 0) {
            int64_t pads[6];
            for (int i = 0; i < g.nd; i++) pads[i] = g.pb[i], pads[g.nd + i] = g.pe[i];
            kh_case_attr_ints(&t, "pads", (size_t)(2 * g.nd), pads);
        }
        mixrt_status st = kh_case_run(&t);
        char what[128];
        snprintf(what, sizeof(what), "%s random case %d (nd %d, group %lld, auto_pad %s)",
                 transpose ? "ConvTranspose" : "Conv", it, g.nd, (long long)g.group, autopads[ap]);
        if (!valid) {
            kh_case_check_error(what, st, MIXRT_STATUS_INVALID_MODEL, "< 1");
            err_cases++;
        } else {
            TU_CHECK(st == MIXRT_STATUS_OK, "%s: %s", what, mixrt_context_last_error(kh_ctx));
            if (st == MIXRT_STATUS_OK && kh_check_dims(what, &t.out[0], g.nd + 2, yd)) {
                if (transpose)
                    convt_direct(&g, x, w, bias ? b : NULL, y);
                else
                    conv_direct(&g, x, w, bias ? b : NULL, y);
                check_vals(what, &t.out[0], y, ny, 1e-12);
            }
            ok_cases++;
        }
        kh_case_end(&t);
        free(x);
        free(w);
        free(y);
    }
    TU_CHECK(ok_cases > 150 && (transpose || err_cases > 5), "random %s: %d valid and %d invalid cases",
             transpose ? "ConvTranspose" : "Conv", ok_cases, err_cases);
}

/* f32/f16/bf16 accumulate in double and round once: the result is the direct f64 formula on
 * the rounded inputs, rounded to the type (one ulp allowed for sums that land near a tie). */
static void test_conv_dtypes(void) {
    static const mixrt_dtype dts[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_F16, MIXRT_DTYPE_BF16};
    static const double eps[] = {0x1p-23, 0x1p-10, 0x1p-7};
    for (int di = 0; di < 3; di++) {
        struct geom g = {.nd = 2, .N = 1, .C = 4, .M = 6, .group = 2};
        for (int i = 0; i < 2; i++) g.in[i] = 9, g.k[i] = 3, g.s[i] = 2, g.d[i] = 1, g.pb[i] = 1, g.pe[i] = 1;
        g.out[0] = g.out[1] = 5;
        int64_t xd[4] = {1, 4, 9, 9}, wd[4] = {6, 2, 3, 3}, bd = 6, yd[4] = {1, 6, 5, 5};
        double x[324], w[108], b[6], y[150];
        fill(x, 324);
        fill(w, 108);
        fill(b, 6);
        struct kh_case t;
        kh_case_begin(&t, "Conv", 11, 3, 1);
        kh_case_in(&t, 0, kh_new_tensor(dts[di], 4, xd, x));
        kh_case_in(&t, 1, kh_new_tensor(dts[di], 4, wd, w));
        kh_case_in(&t, 2, kh_new_tensor(dts[di], 1, &bd, b));
        for (int i = 0; i < 324; i++) x[i] = mixrt_load_f64(t.in[0]->data, dts[di], (size_t)i);
        for (int i = 0; i < 108; i++) w[i] = mixrt_load_f64(t.in[1]->data, dts[di], (size_t)i);
        for (int i = 0; i < 6; i++) b[i] = mixrt_load_f64(t.in[2]->data, dts[di], (size_t)i);
        int64_t pads[4] = {1, 1, 1, 1}, st2[2] = {2, 2};
        kh_case_attr_ints(&t, "pads", 4, pads);
        kh_case_attr_ints(&t, "strides", 2, st2);
        kh_case_attr_int(&t, "group", 2);
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "conv %s: %s", mixrt_dtype_name(dts[di]), mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK && kh_check_dims("conv dtype", &t.out[0], 4, yd)) {
            TU_CHECK(t.out[0].dtype == dts[di], "conv output dtype %s", mixrt_dtype_name(t.out[0].dtype));
            conv_direct(&g, x, w, b, y);
            int exact = 0;
            for (int i = 0; i < 150; i++) {
                double got = mixrt_load_f64(t.out[0].data, dts[di], (size_t)i);
                struct mixrt_tensor *r = kh_new_tensor(dts[di], 0, NULL, &y[i]);
                double want = mixrt_load_f64(r->data, dts[di], 0);
                mixrt_tensor_destroy(kh_ctx, r);
                exact += got == want;
                TU_CHECK(fabs(got - want) <= eps[di] * fabs(want) * 1.01 + 1e-12, "conv %s element %d: %.9g vs %.9g",
                         mixrt_dtype_name(dts[di]), i, got, want);
            }
            TU_CHECK(exact >= 148, "conv %s: only %d of 150 elements round exactly", mixrt_dtype_name(dts[di]), exact);
        }
        kh_case_end(&t);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* The brief's speed point: printed for the record, never asserted (tests do not time). */
static void test_conv_speed(void) {
    int64_t xd[4] = {1, 64, 56, 56}, wd[4] = {64, 64, 3, 3}, bd = 64, pads[4] = {1, 1, 1, 1};
    double *x = malloc(64 * 56 * 56 * sizeof(double)), *w = malloc(64 * 64 * 9 * sizeof(double)), b[64];
    fill(x, 64 * 56 * 56);
    fill(w, 64 * 64 * 9);
    fill(b, 64);
    struct kh_case t;
    kh_case_begin(&t, "Conv", 11, 3, 1);
    kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 4, xd, x));
    kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F32, 4, wd, w));
    kh_case_in(&t, 2, kh_new_tensor(MIXRT_DTYPE_F32, 1, &bd, b));
    kh_case_attr_ints(&t, "pads", 4, pads);
    double t0 = now_s();
    mixrt_status st = kh_case_run(&t);
    double dt = now_s() - t0;
    TU_CHECK(st == MIXRT_STATUS_OK, "conv speed case: %s", mixrt_context_last_error(kh_ctx));
    printf("test_ref_nn: Conv f32 [1,64,56,56] * [64,64,3,3] pads 1: %.3f s\n", dt);
    kh_case_end(&t);
    free(x);
    free(w);
}

/* ---- pooling ---- */

static void run_pool1d(const char *op, int64_t opset, int64_t n, const double *x, int64_t k, int64_t s, int64_t pb,
                       int64_t pe, int ceil_mode, int cip, const double *want, int64_t nout) {
    struct kh_case t;
    kh_case_begin(&t, op, opset, 1, 1);
    int64_t xd[3] = {1, 1, n}, pads[2] = {pb, pe}, yd[3] = {1, 1, nout};
    kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 3, xd, x));
    kh_case_attr_ints(&t, "kernel_shape", 1, &k);
    kh_case_attr_ints(&t, "strides", 1, &s);
    kh_case_attr_ints(&t, "pads", 2, pads);
    if (ceil_mode) kh_case_attr_int(&t, "ceil_mode", 1);
    if (cip) kh_case_attr_int(&t, "count_include_pad", 1);
    mixrt_status st = kh_case_run(&t);
    char what[128];
    snprintf(what, sizeof(what), "%s in %lld k %lld s %lld pads %lld,%lld ceil %d cip %d", op, (long long)n,
             (long long)k, (long long)s, (long long)pb, (long long)pe, ceil_mode, cip);
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: %s", what, mixrt_context_last_error(kh_ctx));
    if (st == MIXRT_STATUS_OK && kh_check_dims(what, &t.out[0], 3, yd))
        check_vals(what, &t.out[0], want, (size_t)nout, 1e-6);
    kh_case_end(&t);
}

static void test_pools(void) {
    static const double x5[] = {1, 2, 3, 4, 5}, x6[] = {1, 2, 3, 4, 5, 6};
    /* ceil_mode: a last window starting in the end padding is dropped (3 -> 2 outputs). */
    static const double a1[] = {1.5, 4.5};
    run_pool1d("AveragePool", 11, 5, x5, 2, 3, 0, 1, 1, 0, a1, 2);
    static const double m1[] = {2, 5};
    run_pool1d("MaxPool", 12, 5, x5, 2, 3, 0, 1, 1, 0, m1, 2);
    /* count_include_pad counts pads but not what lies beyond the padded end. */
    static const double a2[] = {1, 3, 5, 3}, a3[] = {1.5, 3, 5, 6};
    run_pool1d("AveragePool", 11, 6, x6, 3, 2, 1, 1, 1, 1, a2, 4);
    run_pool1d("AveragePool", 11, 6, x6, 3, 2, 1, 1, 1, 0, a3, 4);
    /* ceil_mode with a kernel past the input by less than a stride: one window, clipped to the
     * input (HF EfficientNet's kernel 2560 on 7 pixels; ONNX Runtime agrees). */
    static const double a4[] = {3}, m4[] = {5};
    run_pool1d("AveragePool", 11, 5, x5, 9, 8, 0, 0, 1, 1, a4, 1);
    run_pool1d("AveragePool", 11, 5, x5, 2560, 2560, 0, 0, 1, 0, a4, 1);
    run_pool1d("MaxPool", 12, 5, x5, 9, 8, 0, 0, 1, 0, m4, 1);
    {
        /* past it by a stride or more: no window, an error */
        struct kh_case t;
        kh_case_begin(&t, "AveragePool", 11, 1, 1);
        int64_t xd[3] = {1, 1, 5}, k = 9, s = 4;
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 3, xd, x5));
        kh_case_attr_ints(&t, "kernel_shape", 1, &k);
        kh_case_attr_ints(&t, "strides", 1, &s);
        kh_case_attr_int(&t, "ceil_mode", 1);
        TU_CHECK(kh_case_run(&t) == MIXRT_STATUS_INVALID_MODEL, "AveragePool k 9 s 4 on 5 with ceil_mode: refused");
        kh_case_end(&t);
    }
    /* LpPool p=2 (opset 2 int p) with pads counting as zeros. */
    const double l1[] = {sqrt(1 + 4), sqrt(9 + 16), 5};
    {
        struct kh_case t;
        kh_case_begin(&t, "LpPool", 11, 1, 1);
        int64_t xd[3] = {1, 1, 5}, k = 2, s = 2, pads[2] = {0, 1};
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F64, 3, xd, x5));
        kh_case_attr_ints(&t, "kernel_shape", 1, &k);
        kh_case_attr_ints(&t, "strides", 1, &s);
        kh_case_attr_ints(&t, "pads", 2, pads);
        kh_case_attr_int(&t, "p", 2);
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "LpPool: %s", mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK) check_vals("LpPool", &t.out[0], l1, 3, 1e-12);
        kh_case_end(&t);
    }
    /* MaxPool Indices over [2, 2, 3, 4] with both storage orders: flat over the whole tensor. */
    for (int so = 0; so <= 1; so++) {
        struct kh_case t;
        kh_case_begin(&t, "MaxPool", 12, 1, 2);
        int64_t xd[4] = {2, 2, 3, 4}, k[2] = {2, 2}, yd[4] = {2, 2, 2, 3};
        double x[48];
        for (int i = 0; i < 48; i++) x[i] = (double)((i * 37) % 48);
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 4, xd, x));
        kh_case_attr_ints(&t, "kernel_shape", 2, k);
        kh_case_attr_int(&t, "storage_order", so);
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "MaxPool indices: %s", mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK && kh_check_dims("MaxPool indices", &t.out[1], 4, yd)) {
            TU_CHECK(t.out[1].dtype == MIXRT_DTYPE_I64, "MaxPool indices dtype %s", mixrt_dtype_name(t.out[1].dtype));
            for (int pl = 0; pl < 4; pl++)
                for (int oh = 0; oh < 2; oh++)
                    for (int ow = 0; ow < 3; ow++) {
                        int bh = -1, bw = -1;
                        double best = -1;
                        for (int h = oh; h < oh + 2; h++)
                            for (int w = ow; w < ow + 2; w++)
                                if (x[pl * 12 + h * 4 + w] > best) best = x[pl * 12 + h * 4 + w], bh = h, bw = w;
                        int64_t want = pl * 12 + (so ? bh + bw * 3 : bh * 4 + bw);
                        int o = pl * 6 + oh * 3 + ow;
                        TU_CHECK(((int64_t *)t.out[1].data)[o] == want &&
                                     mixrt_load_f64(t.out[0].data, MIXRT_DTYPE_F32, (size_t)o) == best,
                                 "MaxPool storage_order %d element %d: index %lld value %g, expected %lld %g", so, o,
                                 (long long)((int64_t *)t.out[1].data)[o],
                                 mixrt_load_f64(t.out[0].data, MIXRT_DTYPE_F32, (size_t)o), (long long)want, best);
                    }
        }
        kh_case_end(&t);
    }
    /* MaxPool on int8 (opset 12) and dilations. */
    {
        struct kh_case t;
        kh_case_begin(&t, "MaxPool", 12, 1, 1);
        int64_t xd[3] = {1, 1, 6}, k = 2, d = 2;
        double x[6] = {-5, -100, 7, 3, -128, 127};
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_I8, 3, xd, x));
        kh_case_attr_ints(&t, "kernel_shape", 1, &k);
        kh_case_attr_ints(&t, "dilations", 1, &d);
        static const double want[] = {7, 3, 7, 127};
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "MaxPool i8: %s", mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK) check_vals("MaxPool i8 dilated", &t.out[0], want, 4, 0);
        kh_case_end(&t);
    }
    /* Global pools in bf16: one rounding of the double mean. */
    {
        static const char *const ops[] = {"GlobalAveragePool", "GlobalMaxPool", "GlobalLpPool"};
        double x[12];
        for (int i = 0; i < 12; i++) x[i] = 1.0 + i / 64.0;
        for (int o = 0; o < 3; o++) {
            struct kh_case t;
            kh_case_begin(&t, ops[o], 2, 1, 1);
            int64_t xd[4] = {1, 2, 2, 3}, yd[4] = {1, 2, 1, 1};
            kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_BF16, 4, xd, x));
            mixrt_status st = kh_case_run(&t);
            TU_CHECK(st == MIXRT_STATUS_OK, "%s: %s", ops[o], mixrt_context_last_error(kh_ctx));
            if (st == MIXRT_STATUS_OK && kh_check_dims(ops[o], &t.out[0], 4, yd)) {
                double want[2];
                for (int c = 0; c < 2; c++) {
                    double s = 0, m = -1, q = 0;
                    for (int i = 0; i < 6; i++) {
                        double v = mixrt_load_f64(t.in[0]->data, MIXRT_DTYPE_BF16, (size_t)(c * 6 + i));
                        s += v, q += v * v, m = v > m ? v : m;
                    }
                    want[c] = o == 0 ? s / 6 : o == 1 ? m : sqrt(q);
                    want[c] = mixrt_bf16_to_float(mixrt_bf16_from_double(want[c]));
                }
                check_vals(ops[o], &t.out[0], want, 2, 0);
            }
            kh_case_end(&t);
        }
    }
}

/* MaxRoiPool: Caffe bins over rounded roi corners. */
static void test_max_roi_pool(void) {
    struct kh_case t;
    kh_case_begin(&t, "MaxRoiPool", 1, 2, 1);
    int64_t xd[4] = {1, 1, 4, 4}, rd[2] = {2, 5}, ps[2] = {2, 2}, yd[4] = {2, 1, 2, 2};
    /* Scaled by 0.5, roi 0 [0,0,3,3] rounds to cells [0,0]..[2,2] (bins of 1.5 cells, floor/ceil
     * edges overlap), roi 1 [2.2,1.8,4.4,4.6] to [1,1]..[2,2] (one cell per bin). */
    double x[16], rois[10] = {0, 0, 0, 3, 3, 0, 2.2, 1.8, 4.4, 4.6}, want[8] = {5, 6, 9, 10, 5, 6, 9, 10};
    for (int i = 0; i < 16; i++) x[i] = i;
    kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 4, xd, x));
    kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F32, 2, rd, rois));
    kh_case_attr_ints(&t, "pooled_shape", 2, ps);
    kh_case_attr_float(&t, "spatial_scale", 0.5f);
    mixrt_status st = kh_case_run(&t);
    TU_CHECK(st == MIXRT_STATUS_OK, "MaxRoiPool: %s", mixrt_context_last_error(kh_ctx));
    if (st == MIXRT_STATUS_OK && kh_check_dims("MaxRoiPool", &t.out[0], 4, yd))
        check_vals("MaxRoiPool", &t.out[0], want, 8, 0);
    kh_case_end(&t);
}

/* ---- Gemm / MatMul ---- */

static void test_gemm_matmul(void) {
    /* Opset 6 with broadcast=1 and a [N] bias; transA; alpha/beta. */
    {
        struct kh_case t;
        kh_case_begin(&t, "Gemm", 6, 3, 1);
        int64_t ad[2] = {3, 2}, bd[2] = {3, 4}, cd = 4, yd[2] = {2, 4};
        double a[6] = {1, 2, 3, 4, 5, 6}, b[12], c[4] = {1, -1, 2, -2}, want[8];
        for (int i = 0; i < 12; i++) b[i] = i - 5;
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 2, ad, a));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F32, 2, bd, b));
        kh_case_in(&t, 2, kh_new_tensor(MIXRT_DTYPE_F32, 1, &cd, c));
        kh_case_attr_int(&t, "transA", 1);
        kh_case_attr_int(&t, "broadcast", 1);
        kh_case_attr_float(&t, "alpha", 0.5f);
        kh_case_attr_float(&t, "beta", 2.0f);
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 4; j++) {
                double s = 0;
                for (int q = 0; q < 3; q++) s += a[q * 2 + i] * b[q * 4 + j];
                want[i * 4 + j] = 0.5 * s + 2.0 * c[j];
            }
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "Gemm-6: %s", mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK && kh_check_dims("Gemm-6", &t.out[0], 2, yd))
            check_vals("Gemm-6", &t.out[0], want, 8, 1e-7);
        kh_case_end(&t);
    }
    /* C is required before opset 11, optional after; int32 at 11 is exact. */
    for (int opset = 9; opset <= 11; opset += 2) {
        struct kh_case t;
        kh_case_begin(&t, "Gemm", opset, 2, 1);
        int64_t ad[2] = {1, 2}, bd[2] = {2, 1};
        double a[2] = {100000, 3}, b[2] = {30000, 7};
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_I32, 2, ad, a));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_I32, 2, bd, b));
        mixrt_status st = kh_case_run(&t);
        if (opset < 11) {
            kh_case_check_error("Gemm-9 without C", st, MIXRT_STATUS_INVALID_MODEL, "input #2");
        } else {
            TU_CHECK(st == MIXRT_STATUS_OK, "Gemm-11 i32: %s", mixrt_context_last_error(kh_ctx));
            if (st == MIXRT_STATUS_OK)
                TU_CHECK(((int32_t *)t.out[0].data)[0] == (int32_t)(100000u * 30000u + 21u),
                         "Gemm i32 wraps exactly: %d", ((int32_t *)t.out[0].data)[0]);
        }
        kh_case_end(&t);
    }
    /* MatMul: 1-D x 1-D is a scalar; batch dims broadcast; 1-D B drops the last dim. */
    {
        struct kh_case t;
        kh_case_begin(&t, "MatMul", 13, 2, 1);
        int64_t d3 = 3;
        double a[3] = {1, 2, 3}, b[3] = {4, 5, 6}, want = 32;
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F16, 1, &d3, a));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F16, 1, &d3, b));
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "MatMul 1-D: %s", mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK && kh_check_dims("MatMul 1-D", &t.out[0], 0, NULL))
            check_vals("MatMul 1-D", &t.out[0], &want, 1, 0);
        kh_case_end(&t);
    }
    {
        struct kh_case t;
        kh_case_begin(&t, "MatMul", 13, 2, 1);
        int64_t ad[4] = {2, 1, 3, 4}, bd[3] = {5, 4, 2}, yd[4] = {2, 5, 3, 2};
        double a[24], b[40], y[60];
        fill(a, 24);
        fill(b, 40);
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F64, 4, ad, a));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F64, 3, bd, b));
        for (int i0 = 0; i0 < 2; i0++)
            for (int i1 = 0; i1 < 5; i1++)
                for (int m = 0; m < 3; m++)
                    for (int n = 0; n < 2; n++) {
                        double s = 0;
                        for (int q = 0; q < 4; q++) s += a[i0 * 12 + m * 4 + q] * b[i1 * 8 + q * 2 + n];
                        y[((i0 * 5 + i1) * 3 + m) * 2 + n] = s;
                    }
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "MatMul batched: %s", mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK && kh_check_dims("MatMul batched", &t.out[0], 4, yd))
            check_vals("MatMul batched", &t.out[0], y, 60, 1e-12);
        kh_case_end(&t);
    }
    {
        struct kh_case t;
        kh_case_begin(&t, "MatMul", 13, 2, 1);
        int64_t ad[3] = {2, 3, 4}, bd = 4, yd[2] = {2, 3};
        double a[24], b[4] = {1, 0, 0, 2}, y[6];
        fill(a, 24);
        for (int i = 0; i < 6; i++) y[i] = a[i * 4] + 2 * a[i * 4 + 3];
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F64, 3, ad, a));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F64, 1, &bd, b));
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "MatMul 1-D B: %s", mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK && kh_check_dims("MatMul 1-D B", &t.out[0], 2, yd))
            check_vals("MatMul 1-D B", &t.out[0], y, 6, 1e-12);
        kh_case_end(&t);
    }
}

/* ---- normalizations ---- */

static void test_norms(void) {
    /* BatchNormalization-6 spatial=0: per-element parameters of shape [C, D1]. */
    {
        struct kh_case t;
        kh_case_begin(&t, "BatchNormalization", 6, 5, 1);
        int64_t xd[3] = {2, 2, 3}, pd[2] = {2, 3};
        double x[12], s[6], b[6], m[6], v[6], y[12];
        fill(x, 12), fill(s, 6), fill(b, 6), fill(m, 6);
        for (int i = 0; i < 6; i++) v[i] = 0.5 + i;
        for (int n = 0; n < 2; n++)
            for (int e = 0; e < 6; e++) y[n * 6 + e] = (x[n * 6 + e] - m[e]) / sqrt(v[e] + 1e-3) * s[e] + b[e];
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F64, 3, xd, x));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F64, 2, pd, s));
        kh_case_in(&t, 2, kh_new_tensor(MIXRT_DTYPE_F64, 2, pd, b));
        kh_case_in(&t, 3, kh_new_tensor(MIXRT_DTYPE_F64, 2, pd, m));
        kh_case_in(&t, 4, kh_new_tensor(MIXRT_DTYPE_F64, 2, pd, v));
        kh_case_attr_int(&t, "spatial", 0);
        kh_case_attr_int(&t, "is_test", 1);
        kh_case_attr_float(&t, "epsilon", 1e-3f);
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "BN-6 spatial=0: %s", mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK) check_vals("BN-6 spatial=0", &t.out[0], y, 12, 1e-6);
        kh_case_end(&t);
    }
    /* BatchNormalization-15 training_mode in bf16 with f32 statistics. */
    {
        struct kh_case t;
        kh_case_begin(&t, "BatchNormalization", 15, 5, 3);
        int64_t xd[3] = {2, 2, 2}, pd = 2;
        double x[8] = {1, 2, 3, 5, -1, 0, 7, 9}, s[2] = {1, 2}, b[2] = {0, 1}, m[2] = {0.5, 1}, v[2] = {1, 4};
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_BF16, 3, xd, x));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_BF16, 1, &pd, s));
        kh_case_in(&t, 2, kh_new_tensor(MIXRT_DTYPE_BF16, 1, &pd, b));
        kh_case_in(&t, 3, kh_new_tensor(MIXRT_DTYPE_F32, 1, &pd, m));
        kh_case_in(&t, 4, kh_new_tensor(MIXRT_DTYPE_F32, 1, &pd, v));
        kh_case_attr_int(&t, "training_mode", 1);
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "BN-15 training: %s", mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK) {
            /* channel 0: {1,2,-1,0} mean .5 var 1.25; channel 1: {3,5,7,9} mean 6 var 5 */
            double bm[2] = {0.5, 6}, bv[2] = {1.25, 5}, y[8], rm[2], rv[2];
            for (int n = 0; n < 2; n++)
                for (int c = 0; c < 2; c++)
                    for (int i = 0; i < 2; i++) {
                        int e = (n * 2 + c) * 2 + i;
                        y[e] = mixrt_bf16_to_float(
                            mixrt_bf16_from_double((x[e] - bm[c]) / sqrt(bv[c] + 1e-5) * s[c] + b[c]));
                    }
            for (int c = 0; c < 2; c++) rm[c] = m[c] * 0.9 + bm[c] * 0.1, rv[c] = v[c] * 0.9 + bv[c] * 0.1;
            check_vals("BN-15 training Y", &t.out[0], y, 8, 0);
            check_vals("BN-15 running_mean", &t.out[1], rm, 2, 1e-7);
            check_vals("BN-15 running_var", &t.out[2], rv, 2, 1e-7);
            TU_CHECK(t.out[1].dtype == MIXRT_DTYPE_F32, "BN-15 running_mean dtype %s",
                     mixrt_dtype_name(t.out[1].dtype));
        }
        kh_case_end(&t);
    }
    /* LayerNormalization-17 on bf16 [2, 3, 4], axis 1: Mean/InvStdDev are f32 [2, 1, 1]. */
    {
        struct kh_case t;
        kh_case_begin(&t, "LayerNormalization", 17, 3, 3);
        int64_t xd[3] = {2, 3, 4}, sd[1] = {4}, md[3] = {2, 1, 1};
        double x[24], s[4] = {1, 2, 3, 4}, b[4] = {0, 0.5, 1, 1.5}, y[24], mean[2], inv[2];
        fill(x, 24);
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_BF16, 3, xd, x));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_BF16, 1, sd, s));
        kh_case_in(&t, 2, kh_new_tensor(MIXRT_DTYPE_BF16, 1, sd, b));
        for (int i = 0; i < 24; i++) x[i] = mixrt_load_f64(t.in[0]->data, MIXRT_DTYPE_BF16, (size_t)i);
        kh_case_attr_int(&t, "axis", 1);
        for (int o = 0; o < 2; o++) {
            double sum = 0, q = 0;
            for (int i = 0; i < 12; i++) sum += x[o * 12 + i];
            mean[o] = sum / 12;
            for (int i = 0; i < 12; i++) q += (x[o * 12 + i] - mean[o]) * (x[o * 12 + i] - mean[o]);
            inv[o] = 1 / sqrt(q / 12 + 1e-5);
            for (int i = 0; i < 12; i++)
                y[o * 12 + i] = mixrt_bf16_to_float(
                    mixrt_bf16_from_double((x[o * 12 + i] - mean[o]) * inv[o] * s[i % 4] + b[i % 4]));
        }
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "LayerNorm bf16: %s", mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK) {
            check_vals("LayerNorm bf16 Y", &t.out[0], y, 24, 0);
            TU_CHECK(t.out[1].dtype == MIXRT_DTYPE_F32 && t.out[2].dtype == MIXRT_DTYPE_F32,
                     "LayerNorm stash outputs are %s/%s, expected f32", mixrt_dtype_name(t.out[1].dtype),
                     mixrt_dtype_name(t.out[2].dtype));
            if (kh_check_dims("LayerNorm Mean", &t.out[1], 3, md)) check_vals("LayerNorm Mean", &t.out[1], mean, 2, 1e-7);
            check_vals("LayerNorm InvStdDev", &t.out[2], inv, 2, 1e-7);
        }
        kh_case_end(&t);
    }
    /* GroupNormalization: per-group scale at opset 18, per-channel at 21. */
    for (int opset = 18; opset <= 21; opset += 3) {
        struct kh_case t;
        kh_case_begin(&t, "GroupNormalization", opset, 3, 1);
        int64_t xd[3] = {1, 4, 2}, pd = opset == 18 ? 2 : 4;
        double x[8] = {1, 2, 3, 4, 10, 20, 30, 40}, s[4] = {1, 2, 3, 4}, b[4] = {0, 1, 2, 3}, y[8];
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 3, xd, x));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F32, 1, &pd, s));
        kh_case_in(&t, 2, kh_new_tensor(MIXRT_DTYPE_F32, 1, &pd, b));
        kh_case_attr_int(&t, "num_groups", 2);
        for (int g = 0; g < 2; g++) {
            double m = 0, q = 0;
            for (int i = 0; i < 4; i++) m += x[g * 4 + i] / 4;
            for (int i = 0; i < 4; i++) q += (x[g * 4 + i] - m) * (x[g * 4 + i] - m) / 4;
            for (int i = 0; i < 4; i++) {
                int p = opset == 18 ? g : g * 2 + i / 2;
                y[g * 4 + i] = (x[g * 4 + i] - m) / sqrt(q + 1e-5) * s[p] + b[p];
            }
        }
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "GroupNorm-%d: %s", opset, mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK) check_vals("GroupNorm", &t.out[0], y, 8, 1e-6);
        kh_case_end(&t);
    }
}

/* ---- Dropout ---- */

static void test_dropout(void) {
    double x[1000];
    for (int i = 0; i < 1000; i++) x[i] = 1.0 + i % 7;
    int64_t xd = 1000, one = 1;
    /* Opset 7 and 12 without training: identity, mask all true (T before 10, bool after). */
    for (int opset = 7; opset <= 12; opset += 5) {
        struct kh_case t;
        kh_case_begin(&t, "Dropout", opset, 1, 2);
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F16, 1, &xd, x));
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "Dropout-%d: %s", opset, mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK) {
            check_vals("Dropout identity", &t.out[0], x, 1000, 0);
            TU_CHECK(t.out[1].dtype == (opset >= 10 ? MIXRT_DTYPE_BOOL : MIXRT_DTYPE_F16), "Dropout-%d mask dtype %s",
                     opset, mixrt_dtype_name(t.out[1].dtype));
            bool all = true;
            for (int i = 0; i < 1000; i++) all = all && mixrt_load_f64(t.out[1].data, t.out[1].dtype, (size_t)i) == 1;
            TU_CHECK(all, "Dropout-%d: mask not all true", opset);
        }
        kh_case_end(&t);
    }
    /* Training (opset 12): kept elements scaled by 1/(1-ratio), about 1-ratio kept, same
     * mask on every run. */
    uint8_t first[1000];
    for (int run = 0; run < 2; run++) {
        struct kh_case t;
        kh_case_begin(&t, "Dropout", 13, 3, 2);
        double r = 0.25, tr = 1;
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 1, &xd, x));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F32, 0, &one, &r));
        kh_case_in(&t, 2, kh_new_tensor(MIXRT_DTYPE_BOOL, 0, &one, &tr));
        kh_case_attr_int(&t, "seed", 42);
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "Dropout training: %s", mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK) {
            int kept = 0, bad = 0, same = 0;
            for (int i = 0; i < 1000; i++) {
                bool m = ((uint8_t *)t.out[1].data)[i] != 0;
                double y = mixrt_load_f64(t.out[0].data, MIXRT_DTYPE_F32, (size_t)i);
                kept += m;
                if (m ? fabs(y - x[i] / 0.75) > 1e-5 : y != 0) bad++;
                if (run == 0)
                    first[i] = m;
                else
                    same += first[i] == m;
            }
            TU_CHECK(bad == 0 && kept > 680 && kept < 820, "Dropout training: %d kept, %d wrong values", kept, bad);
            if (run == 1) TU_CHECK(same == 1000, "Dropout training with a seed is not repeatable (%d same)", same);
        }
        kh_case_end(&t);
    }
}

/* ---- errors and edge sizes ---- */

static void test_errors(void) {
    struct kh_case t;
    int64_t xd[4] = {1, 3, 8, 8}, wd[4] = {64, 3, 7, 7};
    /* group 3 needs W [M, 1, ...] */
    kh_case_begin(&t, "Conv", 11, 2, 1);
    kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_BF16, 4, xd, NULL));
    kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_BF16, 4, wd, NULL));
    kh_case_attr_int(&t, "group", 3);
    kh_case_check_error("conv W channels", kh_case_run(&t), MIXRT_STATUS_INVALID_MODEL,
                "input #1 'W' is bf16 [64,3,7,7], expected [M, C/group=1");
    kh_case_end(&t);
    /* strides 0, negative pads, wrong pads length, kernel_shape mismatch, bad auto_pad */
    static const char *const which[] = {"strides", "pads", "pads", "kernel_shape", "auto_pad", "bias"};
    for (int e = 0; e < 6; e++) {
        kh_case_begin(&t, "Conv", 11, e == 5 ? 3 : 2, 1);
        wd[1] = 3;
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 4, xd, NULL));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F32, 4, wd, NULL));
        int64_t zero[2] = {0, 1}, negp[4] = {0, -1, 0, 0}, k[2] = {7, 5}, bd = 63;
        if (e == 0) kh_case_attr_ints(&t, "strides", 2, zero);
        if (e == 1) kh_case_attr_ints(&t, "pads", 4, negp);
        if (e == 2) kh_case_attr_ints(&t, "pads", 2, zero);
        if (e == 3) kh_case_attr_ints(&t, "kernel_shape", 2, k);
        if (e == 4) kh_case_attr_str(&t, "auto_pad", "SAME");
        if (e == 5) kh_case_in(&t, 2, kh_new_tensor(MIXRT_DTYPE_F32, 1, &bd, NULL));
        kh_case_check_error(which[e], kh_case_run(&t), MIXRT_STATUS_INVALID_MODEL, e == 5 ? "input #2 'B'" : which[e]);
        kh_case_end(&t);
    }
    /* an empty kernel */
    kh_case_begin(&t, "Conv", 11, 2, 1);
    {
        int64_t w0[4] = {4, 3, 0, 3};
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 4, xd, NULL));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F32, 4, w0, NULL));
        kh_case_check_error("conv empty kernel", kh_case_run(&t), MIXRT_STATUS_INVALID_MODEL,
                    "input #1 'W' is f32 [4,3,0,3], expected [M, C/group, k1, ...] with kernel dims > 0");
    }
    kh_case_end(&t);
    /* a zero-size X with a huge spatial dim */
    kh_case_begin(&t, "Conv", 11, 2, 1);
    {
        int64_t xh[3] = {0, 3, (int64_t)1 << 50}, wh[3] = {4, 3, 3};
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 3, xh, NULL));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F32, 3, wh, NULL));
        kh_case_check_error("conv huge spatial dim", kh_case_run(&t), MIXRT_STATUS_INVALID_MODEL, "spatial input dim 0");
    }
    kh_case_end(&t);
    /* mixed dtypes */
    kh_case_begin(&t, "Conv", 11, 2, 1);
    kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 4, xd, NULL));
    kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F16, 4, wd, NULL));
    kh_case_check_error("conv dtype mix", kh_case_run(&t), MIXRT_STATUS_INVALID_MODEL, "input #1 'W' is f16");
    kh_case_end(&t);
    /* integer input */
    kh_case_begin(&t, "Conv", 11, 2, 1);
    kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_I32, 4, xd, NULL));
    kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_I32, 4, wd, NULL));
    kh_case_check_error("conv i32", kh_case_run(&t), MIXRT_STATUS_UNSUPPORTED_DTYPE, "input #0 'X' is i32");
    kh_case_end(&t);
    /* MatMul mismatch, Gemm rank, MaxPool without kernel_shape, MaxUnpool index out of range */
    kh_case_begin(&t, "MatMul", 13, 2, 1);
    int64_t ad[2] = {2, 3}, bd2[2] = {4, 2};
    kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 2, ad, NULL));
    kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F32, 2, bd2, NULL));
    kh_case_check_error("matmul K", kh_case_run(&t), MIXRT_STATUS_INVALID_MODEL, "input #1 'W' is f32 [4,2]");
    kh_case_end(&t);
    kh_case_begin(&t, "MaxPool", 12, 1, 1);
    kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 4, xd, NULL));
    kh_case_check_error("maxpool kernel_shape", kh_case_run(&t), MIXRT_STATUS_INVALID_MODEL, "kernel_shape");
    kh_case_end(&t);
    kh_case_begin(&t, "MaxUnpool", 11, 2, 1);
    {
        int64_t ud[4] = {1, 1, 1, 2}, k[2] = {2, 2}, iv[2] = {3, 8};
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 4, ud, NULL));
        struct mixrt_tensor *ind = kh_new_tensor(MIXRT_DTYPE_I64, 4, ud, NULL);
        memcpy(ind->data, iv, sizeof(iv));
        kh_case_in(&t, 1, ind);
        kh_case_attr_ints(&t, "kernel_shape", 2, k);
        kh_case_attr_ints(&t, "strides", 2, k);
        kh_case_check_error("maxunpool index", kh_case_run(&t), MIXRT_STATUS_INVALID_MODEL, "index 8");
    }
    kh_case_end(&t);
    /* ConvTranspose whose pads eat the whole output */
    kh_case_begin(&t, "ConvTranspose", 11, 2, 1);
    {
        int64_t cx[3] = {1, 1, 2}, cw[3] = {1, 1, 2}, pads[2] = {2, 1};
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F32, 3, cx, NULL));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F32, 3, cw, NULL));
        kh_case_attr_ints(&t, "pads", 2, pads);
        kh_case_check_error("convtranspose pads", kh_case_run(&t), MIXRT_STATUS_INVALID_MODEL, "< 1");
    }
    kh_case_end(&t);
}

static void test_zero_size(void) {
    /* N = 0 conv; C = 0 conv (output is the bias); empty MatMul K gives zeros. */
    for (int e = 0; e < 2; e++) {
        struct kh_case t;
        kh_case_begin(&t, "Conv", 11, 3, 1);
        int64_t xd[4] = {e ? 1 : 0, e ? 0 : 2, 4, 4}, wd[4] = {3, e ? 0 : 2, 3, 3}, bd = 3;
        int64_t yd[4] = {e ? 1 : 0, 3, 2, 2};
        double b[3] = {1, 2, 3}, y[12];
        for (int i = 0; i < 12; i++) y[i] = b[i / 4];
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_F16, 4, xd, NULL));
        kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_F16, 4, wd, NULL));
        kh_case_in(&t, 2, kh_new_tensor(MIXRT_DTYPE_F16, 1, &bd, b));
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "conv zero-size %d: %s", e, mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK && kh_check_dims("conv zero-size", &t.out[0], 4, yd) && e)
            check_vals("conv C=0", &t.out[0], y, 12, 0);
        kh_case_end(&t);
    }
    static const char *const ops[] = {"MaxPool",
                                      "AveragePool",
                                      "GlobalAveragePool",
                                      "BatchNormalization",
                                      "InstanceNormalization",
                                      "LRN",
                                      "MeanVarianceNormalization",
                                      "LayerNormalization"};
    for (int o = 0; o < 8; o++) {
        struct kh_case t;
        int nin = o == 3 ? 5 : o == 4 ? 3 : o == 7 ? 2 : 1;
        kh_case_begin(&t, ops[o], o == 7 ? 17 : 13, nin, 1);
        int64_t xd[4] = {0, 2, 3, 3}, pd = 2, k[2] = {2, 2}, ld = 3;
        kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_BF16, 4, xd, NULL));
        for (int i = 1; i < nin; i++) kh_case_in(&t, i, kh_new_tensor(MIXRT_DTYPE_BF16, 1, o == 7 ? &ld : &pd, NULL));
        if (o < 2) kh_case_attr_ints(&t, "kernel_shape", 2, k);
        if (o == 5) kh_case_attr_int(&t, "size", 3);
        mixrt_status st = kh_case_run(&t);
        TU_CHECK(st == MIXRT_STATUS_OK, "%s on N=0: %s", ops[o], mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK)
            TU_CHECK(t.out[0].dims[0] == 0, "%s on N=0: output N %lld", ops[o], (long long)t.out[0].dims[0]);
        kh_case_end(&t);
    }
}

/* Every allocation of a ConvTranspose / LayerNorm / MaxPool run fails in turn: clean errors,
 * nothing leaked. */
static void test_alloc_failures(void) {
    for (int op = 0; op < 3; op++) {
        int fails = 0;
        for (long n = 0; n < 64; n++) {
            struct kh_case t;
            kh_case_begin(&t,
                     op == 0   ? "ConvTranspose"
                     : op == 1 ? "LayerNormalization"
                               : "MaxPool",
                     17, op == 1 ? 3 : 2, op == 1 ? 3 : 2);
            int64_t xd[4] = {1, 2, 3, 3}, wd[4] = {2, 2, 2, 2}, sd = 3, k[2] = {2, 2};
            double x[18], w[16];
            fill(x, 18);
            fill(w, 16);
            kh_case_in(&t, 0, kh_new_tensor(MIXRT_DTYPE_BF16, 4, xd, x));
            if (op == 0) kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_BF16, 4, wd, w));
            if (op == 1) kh_case_in(&t, 1, kh_new_tensor(MIXRT_DTYPE_BF16, 1, &sd, w)), kh_case_in(&t, 2, kh_new_tensor(MIXRT_DTYPE_BF16, 1, &sd, w));
            if (op == 2) kh_case_attr_ints(&t, "kernel_shape", 2, k), t.n_in = 1;
            mixrt_context_fail_alloc_after(kh_ctx, n, 0);
            mixrt_status st = kh_case_run(&t);
            mixrt_context_fail_alloc_after(kh_ctx, -1, 0);
            kh_case_end(&t);
            if (st == MIXRT_STATUS_OK) break;
            fails++;
            TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY, "op %d alloc failure %ld: status %s", op, n,
                     mixrt_status_string(st));
        }
        TU_CHECK(fails > 0 && fails < 64, "op %d: %d allocation failures before success", op, fails);
    }
}

/* ---- hostile random sweep: random shapes, dtypes and attributes on every op; any status
 * but a crash, a leak or an OK without output is fine (run under ASan/UBSan in CI) ---- */

static int64_t fuzz_val(void) {
    switch (rnd(0, 9)) {
    case 0:
        return -rnd(1, 3);
    case 1:
        return (int64_t)1 << rnd(30, 62);
    default:
        return rnd(0, 4);
    }
}

static void test_fuzz(void) {
    static const char *const ops[] = {"Conv",
                                      "ConvTranspose",
                                      "MaxPool",
                                      "AveragePool",
                                      "LpPool",
                                      "GlobalAveragePool",
                                      "GlobalMaxPool",
                                      "GlobalLpPool",
                                      "MaxUnpool",
                                      "MaxRoiPool",
                                      "Gemm",
                                      "MatMul",
                                      "BatchNormalization",
                                      "InstanceNormalization",
                                      "LayerNormalization",
                                      "GroupNormalization",
                                      "LRN",
                                      "MeanVarianceNormalization",
                                      "Dropout"};
    static const mixrt_dtype dts[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_F16, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F64,
                                      MIXRT_DTYPE_I8,  MIXRT_DTYPE_I64, MIXRT_DTYPE_BOOL};
    static const char *const int_attrs[] = {"group",   "ceil_mode",     "storage_order", "count_include_pad",
                                            "p",       "axis",          "num_groups",    "size",
                                            "spatial", "training_mode", "transA",        "transB",
                                            "seed",    "stash_type",    "is_test"};
    static const char *const ints_attrs[] = {"strides",        "pads",         "dilations", "kernel_shape",
                                             "output_padding", "output_shape", "axes",      "pooled_shape"};
    static const char *const autopads[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID", "bogus"};
    int ok = 0, total = 0;
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
        for (int it = 0; it < 150; it++) {
            struct kh_case t;
            int nin = (int)rnd(1, 5);
            int64_t opset = rnd(1, 22);
            if (!strcmp(ops[o], "LayerNormalization")) opset = rnd(17, 22);
            if (!strcmp(ops[o], "GroupNormalization")) opset = rnd(18, 22);
            if (!strcmp(ops[o], "MaxUnpool") || !strcmp(ops[o], "MeanVarianceNormalization")) opset = rnd(9, 22);
            kh_case_begin(&t, ops[o], opset, nin, (int)rnd(1, 3));
            mixrt_dtype dt = dts[rnd(0, 6)];
            int r0 = (int)rnd(0, 5);
            for (int i = 0; i < nin; i++) {
                if (i > 0 && rnd(0, 4) == 0) {
                    kh_case_in(&t, i, NULL);
                    continue;
                }
                int r = i == 0 ? r0 : (int)rnd(0, 5);
                int64_t d[5];
                for (int j = 0; j < r; j++) d[j] = rnd(0, 9) == 0 ? 0 : rnd(1, 4);
                if (i == 0 && r > 0 && rnd(0, 9) == 0) d[r - 1] = (int64_t)1 << 40, d[0] = 0;
                mixrt_dtype di = rnd(0, 3) ? dt : dts[rnd(0, 6)];
                if (!strcmp(ops[o], "MaxUnpool") && i == 1) di = MIXRT_DTYPE_I64;
                struct mixrt_tensor *x = NULL;
                if (mixrt_tensor_create(kh_ctx, di, r, d, &x) != MIXRT_STATUS_OK) abort();
                size_t n = mixrt_tensor_numel(x);
                for (size_t j = 0; j < n; j++) {
                    if (di == MIXRT_DTYPE_I64)
                        ((int64_t *)x->data)[j] = rnd(-2, 40);
                    else
                        mixrt_store_f64(x->data, di, j, (double)rnd(-3, 3) / 2);
                }
                kh_case_in(&t, i, x);
            }
            int na = (int)rnd(0, 5);
            for (int a = 0; a < na; a++) {
                int kind = (int)rnd(0, 3);
                if (kind == 0)
                    kh_case_attr_int(&t, int_attrs[rnd(0, 14)], fuzz_val());
                else if (kind == 1) {
                    int64_t v[10];
                    size_t n = (size_t)rnd(0, 8);
                    for (size_t j = 0; j < n; j++) v[j] = fuzz_val();
                    kh_case_attr_ints(&t, ints_attrs[rnd(0, 7)], n, v);
                } else if (kind == 2)
                    kh_case_attr_str(&t, "auto_pad", autopads[rnd(0, 4)]);
                else {
                    static const char *const fnames[] = {"epsilon", "ratio",         "alpha",    "beta",
                                                         "bias",    "spatial_scale", "momentum", "p"};
                    kh_case_attr_float(&t, fnames[rnd(0, 7)], rnd(0, 5) == 0 ? 1e30f : (float)rnd(-1, 2) / 2);
                }
            }
            mixrt_status st = kh_case_run(&t);
            total++;
            if (st == MIXRT_STATUS_OK) {
                ok++;
                TU_CHECK(t.out[0].dtype != MIXRT_DTYPE_UNDEFINED, "fuzz %s #%d: OK without output 0", ops[o], it);
            } else {
                TU_CHECK(st == MIXRT_STATUS_INVALID_MODEL || st == MIXRT_STATUS_UNSUPPORTED_DTYPE ||
                             st == MIXRT_STATUS_OUT_OF_MEMORY || st == MIXRT_STATUS_INVALID_ARGUMENT,
                         "fuzz %s #%d: status %s (%s)", ops[o], it, mixrt_status_string(st),
                         mixrt_context_last_error(kh_ctx));
                TU_CHECK(strstr(mixrt_context_last_error(kh_ctx), "node_under_test") != NULL,
                         "fuzz %s #%d: message does not name the node: %s", ops[o], it, mixrt_context_last_error(kh_ctx));
            }
            kh_case_end(&t);
        }
    printf("test_ref_nn: fuzz: %d of %d random nodes ran\n", ok, total);
}

int main(void) {
    /* Allocations over 1 GiB are refused, so huge (but not overflowing) sizes fail cleanly. */
    if (kh_ctx_create((size_t)1 << 30, &kh_ctx) != MIXRT_STATUS_OK) return 1;
    kh_case_input_names = input_names;
    mixrt_context_set_log_level(kh_ctx, MIXRT_LOG_ERROR);
    tu_seed(20261129);
    size_t base = mixrt_context_bytes_in_use(kh_ctx);
    test_conv_random(false);
    test_conv_random(true);
    test_conv_dtypes();
    test_conv_speed();
    test_pools();
    test_max_roi_pool();
    test_gemm_matmul();
    test_norms();
    test_dropout();
    test_errors();
    test_zero_size();
    test_alloc_failures();
    test_fuzz();
    TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == base, "leak: %zu bytes in use after the tests",
             mixrt_context_bytes_in_use(kh_ctx) - base);
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_ref_nn");
}
