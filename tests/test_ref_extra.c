/* test_ref_extra.c - unit tests for the signal and extra reference kernels beyond the ONNX node
 * suite: DFT at opset 20 (axis input, dft_length, onesided, complex, inverse round trip), STFT,
 * window dtypes, N-D GridSample, Unique on strings/axes, TfIdf on strings with IDF/TFIDF, Det,
 * CenterCropPad and Col2Im (no node data in this suite), hostile inputs and allocation failures.
 * Each case builds a one-node graph by hand and calls the kernel directly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/ref.h"
#include "kernel_harness.h"
#include "testutil.h"

#define PI 3.14159265358979323846

static bool close_to(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

/* Number of output elements of out[i] further than tol from want (and a shape check). */
static size_t count_bad(int i, const double *want, size_t n, double tol) {
    if (mixrt_tensor_numel(&kh_out[i]) != n) return n + 1;
    size_t bad = 0;
    for (size_t j = 0; j < n; j++)
        if (!close_to(mixrt_load_f64(kh_out[i].data, kh_out[i].dtype, j), want[j], tol)) bad++;
    return bad;
}

/* ---- DFT / STFT ---- */

/* Direct transform with freshly computed angles (independent of the kernel's twiddle table). */
static void naive_dft(const double *re, const double *im, int len, int n, int bins, bool inverse, double *out2) {
    for (int b = 0; b < bins; b++) {
        double sr = 0, si = 0;
        for (int t = 0; t < len && t < n; t++) {
            double a = (inverse ? 2 : -2) * PI * (double)b * t / n;
            sr += re[t] * cos(a) - (im ? im[t] : 0) * sin(a);
            si += re[t] * sin(a) + (im ? im[t] : 0) * cos(a);
        }
        out2[2 * b] = inverse ? sr / n : sr;
        out2[2 * b + 1] = inverse ? si / n : si;
    }
}

static void test_dft(void) {
    /* [2, 5, 3, 1] real input; transform axis 1 (length 5) at opset 20 with axis input -3 ... */
    double xv[30];
    for (int i = 0; i < 30; i++) xv[i] = sin(0.7 * i) + 0.1 * i;
    int64_t dx[4] = {2, 5, 3, 1}, d0[1] = {0};
    struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F64, 4, dx, xv);
    for (int variant = 0; variant < 4; variant++) {
        /* variant 0: axis -3, full; 1: axis 1, dft_length 8, onesided; 2: axis 1, dft_length 3; 3: opset 17 attr */
        int n = variant == 1 ? 8 : variant == 2 ? 3 : 5, bins = variant == 1 ? n / 2 + 1 : n;
        struct mixrt_tensor len = kh_tensor_ints(MIXRT_DTYPE_I64, 0, d0, (int64_t[]){n});
        struct mixrt_tensor ax = kh_tensor_ints(MIXRT_DTYPE_I64, 0, d0, (int64_t[]){variant == 0 ? -3 : 1});
        kh_begin("DFT", variant == 3 ? 17 : 20, 3, 1);
        kh_in[0] = &x;
        if (variant == 1 || variant == 2) kh_in[1] = &len;
        if (variant != 3)
            kh_in[2] = &ax;
        else
            kh_n_in = 1, kh_attr_int("axis", 1);
        if (variant == 1) kh_attr_int("onesided", 1);
        mixrt_status st = kh_run();
        TU_CHECK(st == MIXRT_STATUS_OK, "DFT variant %d: %s", variant, mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK) {
            TU_CHECK(kh_out[0].rank == 4 && kh_out[0].dims[1] == bins && kh_out[0].dims[3] == 2, "DFT variant %d: shape",
                     variant);
            double want[2 * 8 * 3 * 2], sig[5], line[16];
            for (int b = 0; b < 2; b++)
                for (int j = 0; j < 3; j++) {
                    for (int t = 0; t < 5; t++) sig[t] = xv[(b * 5 + t) * 3 + j];
                    naive_dft(sig, NULL, 5, n, bins, false, line);
                    for (int q = 0; q < bins; q++)
                        for (int c = 0; c < 2; c++) want[((b * bins + q) * 3 + j) * 2 + c] = line[2 * q + c];
                }
            size_t bad = count_bad(0, want, (size_t)(2 * bins * 3 * 2), 1e-12);
            TU_CHECK(bad == 0, "DFT variant %d: %zu values differ", variant, bad);
        }
        kh_end();
        mixrt_tensor_release(kh_ctx, &len);
        mixrt_tensor_release(kh_ctx, &ax);
    }
    mixrt_tensor_release(kh_ctx, &x);

    /* Complex [1, 7, 2] in f32 -> forward -> inverse gives the input back; bf16 runs too. */
    double cv[14];
    for (int i = 0; i < 14; i++) cv[i] = cos(1.3 * i) - 0.25 * i;
    int64_t dc[3] = {1, 7, 2};
    struct mixrt_tensor c = kh_tensor(MIXRT_DTYPE_F32, 3, dc, cv);
    kh_begin("DFT", 17, 1, 1);
    kh_in[0] = &c;
    mixrt_status st = kh_run();
    TU_CHECK(st == MIXRT_STATUS_OK, "complex DFT: %s", mixrt_context_last_error(kh_ctx));
    struct mixrt_tensor fwd;
    memset(&fwd, 0, sizeof(fwd));
    if (st == MIXRT_STATUS_OK) mixrt_tensor_copy(kh_ctx, &fwd, &kh_out[0]);
    kh_end();
    if (st == MIXRT_STATUS_OK) {
        kh_begin("DFT", 17, 1, 1);
        kh_attr_int("inverse", 1);
        kh_in[0] = &fwd;
        st = kh_run();
        TU_CHECK(st == MIXRT_STATUS_OK, "inverse DFT: %s", mixrt_context_last_error(kh_ctx));
        double want[14];
        for (int i = 0; i < 14; i++) want[i] = (float)cv[i];
        if (st == MIXRT_STATUS_OK) TU_CHECK(count_bad(0, want, 14, 1e-5) == 0, "inverse DFT does not round-trip");
        kh_end();
        mixrt_tensor_release(kh_ctx, &fwd);
    }
    mixrt_tensor_release(kh_ctx, &c);
    struct mixrt_tensor cb = kh_tensor(MIXRT_DTYPE_BF16, 3, dc, cv);
    kh_begin("DFT", 20, 1, 1);
    kh_in[0] = &cb;
    st = kh_run();
    TU_CHECK(st == MIXRT_STATUS_OK && kh_out[0].dtype == MIXRT_DTYPE_BF16, "bf16 DFT: %s", mixrt_context_last_error(kh_ctx));
    kh_end();
    /* Hostile: axis on the complex dim, dft_length 0, last dim 3. */
    struct mixrt_tensor ax = kh_tensor_ints(MIXRT_DTYPE_I64, 0, d0, (int64_t[]){-1}), zero = kh_tensor_ints(MIXRT_DTYPE_I64, 0, d0, (int64_t[]){0});
    kh_begin("DFT", 20, 3, 1);
    kh_in[0] = &cb, kh_in[2] = &ax;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "DFT axis -1 (the complex dim) must be rejected");
    kh_end();
    kh_begin("DFT", 20, 2, 1);
    kh_in[0] = &cb, kh_in[1] = &zero;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "DFT dft_length 0 must be rejected");
    kh_end();
    int64_t d3[3] = {1, 2, 3};
    struct mixrt_tensor bad = kh_tensor(MIXRT_DTYPE_F32, 3, d3, NULL);
    kh_begin("DFT", 20, 1, 1);
    kh_in[0] = &bad;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "DFT with last dim 3 must be rejected");
    kh_end();
    mixrt_tensor_release(kh_ctx, &bad);
    mixrt_tensor_release(kh_ctx, &ax);
    mixrt_tensor_release(kh_ctx, &zero);
    mixrt_tensor_release(kh_ctx, &cb);
}

static void test_stft(void) {
    /* Complex signal [1, 11, 2], frame 4, step 3, Hann-like window, two-sided. */
    double sv[22], wv[4] = {0.1, 0.7, 0.9, 0.3};
    for (int i = 0; i < 22; i++) sv[i] = sin(0.4 * i) * (i % 3 ? 1 : -1);
    int64_t ds[3] = {1, 11, 2}, d0[1] = {0}, dw[1] = {4};
    struct mixrt_tensor s = kh_tensor(MIXRT_DTYPE_F64, 3, ds, sv), w = kh_tensor(MIXRT_DTYPE_F64, 1, dw, wv);
    struct mixrt_tensor step = kh_tensor_ints(MIXRT_DTYPE_I64, 0, d0, (int64_t[]){3}), fl = kh_tensor_ints(MIXRT_DTYPE_I64, 0, d0, (int64_t[]){4});
    kh_begin("STFT", 17, 4, 1);
    kh_attr_int("onesided", 0);
    kh_in[0] = &s, kh_in[1] = &step, kh_in[2] = &w, kh_in[3] = &fl;
    mixrt_status st = kh_run();
    TU_CHECK(st == MIXRT_STATUS_OK, "STFT: %s", mixrt_context_last_error(kh_ctx));
    if (st == MIXRT_STATUS_OK) {
        int frames = 1 + (11 - 4) / 3;
        TU_CHECK(kh_out[0].rank == 4 && kh_out[0].dims[1] == frames && kh_out[0].dims[2] == 4, "STFT shape");
        double want[3 * 4 * 2], re[4], im[4];
        for (int f = 0; f < frames; f++) {
            for (int t = 0; t < 4; t++) {
                re[t] = sv[2 * (f * 3 + t)] * wv[t];
                im[t] = sv[2 * (f * 3 + t) + 1] * wv[t];
            }
            naive_dft(re, im, 4, 4, 4, false, want + f * 8);
        }
        TU_CHECK(count_bad(0, want, (size_t)frames * 8, 1e-12) == 0, "STFT values differ");
    }
    kh_end();
    /* Window length disagreeing with frame_length; frame longer than the signal. */
    struct mixrt_tensor big = kh_tensor_ints(MIXRT_DTYPE_I64, 0, d0, (int64_t[]){12});
    kh_begin("STFT", 17, 4, 1);
    kh_in[0] = &s, kh_in[1] = &step, kh_in[2] = &w, kh_in[3] = &big;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "STFT window/frame_length mismatch must be rejected");
    kh_end();
    kh_begin("STFT", 17, 4, 1);
    kh_in[0] = &s, kh_in[1] = &step, kh_in[3] = &big;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "STFT frame longer than the signal must be rejected");
    kh_end();
    mixrt_tensor_release(kh_ctx, &big);
    mixrt_tensor_release(kh_ctx, &s);
    mixrt_tensor_release(kh_ctx, &w);
    mixrt_tensor_release(kh_ctx, &step);
    mixrt_tensor_release(kh_ctx, &fl);
}

static void test_windows(void) {
    int64_t d0[1] = {0};
    struct mixrt_tensor n5 = kh_tensor_ints(MIXRT_DTYPE_I64, 0, d0, (int64_t[]){5}), n0 = kh_tensor_ints(MIXRT_DTYPE_I64, 0, d0, (int64_t[]){0});
    kh_begin("HannWindow", 17, 1, 1);
    kh_attr_int("output_datatype", MIXRT_DTYPE_F64);
    kh_attr_int("periodic", 0);
    kh_in[0] = &n5;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out[0].dtype == MIXRT_DTYPE_F64, "Hann f64: %s",
             mixrt_context_last_error(kh_ctx));
    double want[5] = {0, 0.5, 1, 0.5, 0};
    TU_CHECK(count_bad(0, want, 5, 1e-15) == 0, "symmetric Hann values");
    kh_end();
    kh_begin("BlackmanWindow", 17, 1, 1);
    kh_attr_int("output_datatype", MIXRT_DTYPE_BF16);
    kh_in[0] = &n0;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && mixrt_tensor_numel(&kh_out[0]) == 0, "empty Blackman window");
    kh_end();
    kh_begin("HammingWindow", 17, 1, 1);
    kh_attr_int("output_datatype", MIXRT_DTYPE_STRING);
    kh_in[0] = &n5;
    TU_CHECK(kh_run() == MIXRT_STATUS_UNSUPPORTED_DTYPE, "a string window must be rejected");
    kh_end();
    mixrt_tensor_release(kh_ctx, &n5);
    mixrt_tensor_release(kh_ctx, &n0);
}

/* ---- GridSample ---- */

/* A 3-D sample over a depth-1 volume at z = 0 (align_corners 0) equals the 2-D sample: the depth
 * taps beyond the single plane carry zero weight or zero padding. Also checks opset-20 names. */
static void test_grid_sample(void) {
    double xv[2 * 3 * 4], gv[2 * 5 * 2], g3[2 * 5 * 3];
    for (int i = 0; i < 24; i++) xv[i] = (double)((i * 7) % 5) - 1.5 + 0.1 * i;
    for (int i = 0; i < 10; i++) {
        gv[2 * i] = -1.3 + 0.29 * i;                                             /* x */
        gv[2 * i + 1] = 1.1 - 0.23 * i;                                          /* y */
        g3[3 * i] = gv[2 * i], g3[3 * i + 1] = gv[2 * i + 1], g3[3 * i + 2] = 0; /* z last */
    }
    int64_t dx2[4] = {1, 2, 3, 4}, dg2[4] = {1, 2, 5, 2}, dx3[5] = {1, 2, 1, 3, 4}, dg3[5] = {1, 1, 2, 5, 3};
    struct mixrt_tensor x2 = kh_tensor(MIXRT_DTYPE_F64, 4, dx2, xv), grid2 = kh_tensor(MIXRT_DTYPE_F64, 4, dg2, gv);
    struct mixrt_tensor x3 = kh_tensor(MIXRT_DTYPE_F64, 5, dx3, xv), grid3 = kh_tensor(MIXRT_DTYPE_F64, 5, dg3, g3);
    const char *modes16[3] = {"bilinear", "nearest", "bicubic"}, *modes20[3] = {"linear", "nearest", "cubic"};
    const char *pads[3] = {"zeros", "border", "reflection"};
    for (int m = 0; m < 3; m++)
        for (int p = 0; p < 3; p++)
            for (int al = 0; al < 2; al++) {
                kh_begin("GridSample", 16, 2, 1);
                kh_attr_str("mode", modes16[m]);
                kh_attr_str("padding_mode", pads[p]);
                kh_attr_int("align_corners", al);
                kh_in[0] = &x2, kh_in[1] = &grid2;
                mixrt_status st = kh_run();
                TU_CHECK(st == MIXRT_STATUS_OK, "GridSample 2-D %s %s: %s", modes16[m], pads[p],
                         mixrt_context_last_error(kh_ctx));
                double want[20];
                for (int i = 0; i < 20 && st == MIXRT_STATUS_OK; i++)
                    want[i] = mixrt_load_f64(kh_out[0].data, kh_out[0].dtype, (size_t)i);
                kh_end();
                if (st != MIXRT_STATUS_OK || al) continue; /* align_corners 1 maps z = 0 between planes */
                kh_begin("GridSample", 20, 2, 1);
                kh_attr_str("mode", modes20[m]);
                kh_attr_str("padding_mode", pads[p]);
                kh_in[0] = &x3, kh_in[1] = &grid3;
                st = kh_run();
                TU_CHECK(st == MIXRT_STATUS_OK, "GridSample 3-D %s %s: %s", modes20[m], pads[p],
                         mixrt_context_last_error(kh_ctx));
                if (st == MIXRT_STATUS_OK)
                    TU_CHECK(count_bad(0, want, 20, 1e-12) == 0, "GridSample 3-D %s %s differs from 2-D", modes20[m],
                             pads[p]);
                kh_end();
            }
    /* Bilinear at the pixel centers reproduces the input (align_corners 0). */
    double gc[12 * 2];
    for (int h = 0; h < 3; h++)
        for (int w = 0; w < 4; w++) {
            gc[(h * 4 + w) * 2] = (2.0 * w + 1) / 4 - 1;
            gc[(h * 4 + w) * 2 + 1] = (2.0 * h + 1) / 3 - 1;
        }
    int64_t dgc[4] = {1, 3, 4, 2};
    struct mixrt_tensor gcen = kh_tensor(MIXRT_DTYPE_F64, 4, dgc, gc);
    kh_begin("GridSample", 16, 2, 1);
    kh_in[0] = &x2, kh_in[1] = &gcen;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "GridSample identity: %s", mixrt_context_last_error(kh_ctx));
    TU_CHECK(count_bad(0, xv, 24, 1e-12) == 0, "GridSample at pixel centers is not the identity");
    kh_end();
    /* NaN and huge grid values: defined output, no crash. */
    double gbad[20];
    for (int i = 0; i < 20; i++) gbad[i] = i % 3 == 0 ? NAN : i % 3 == 1 ? 1e300 : -INFINITY;
    struct mixrt_tensor gb = kh_tensor(MIXRT_DTYPE_F64, 4, dg2, gbad);
    for (int p = 0; p < 3; p++)
        for (int m = 0; m < 3; m++) {
            kh_begin("GridSample", 16, 2, 1);
            kh_attr_str("padding_mode", pads[p]);
            kh_attr_str("mode", modes16[m]);
            kh_in[0] = &x2, kh_in[1] = &gb;
            TU_CHECK(kh_run() == MIXRT_STATUS_OK, "GridSample hostile grid %s: %s", pads[p],
                     mixrt_context_last_error(kh_ctx));
            kh_end();
        }
    kh_begin("GridSample", 16, 2, 1);
    kh_in[0] = &x2, kh_in[1] = &grid3;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "GridSample grid rank mismatch must be rejected");
    kh_end();
    mixrt_tensor_release(kh_ctx, &gb);
    mixrt_tensor_release(kh_ctx, &gcen);
    mixrt_tensor_release(kh_ctx, &x2);
    mixrt_tensor_release(kh_ctx, &grid2);
    mixrt_tensor_release(kh_ctx, &x3);
    mixrt_tensor_release(kh_ctx, &grid3);
}

/* ---- Unique ---- */

static void check_i64(int i, const int64_t *want, size_t n, const char *what) {
    bool ok = kh_out[i].dtype == MIXRT_DTYPE_I64 && mixrt_tensor_numel(&kh_out[i]) == n;
    for (size_t j = 0; ok && j < n; j++) ok = ((int64_t *)kh_out[i].data)[j] == want[j];
    TU_CHECK(ok, "%s: output #%d differs", what, i);
}

static void test_unique(void) {
    const char *words[7] = {"pear", "apple", "pear", "fig", "", "apple", "figs"};
    int64_t dw[1] = {7};
    struct mixrt_tensor w = kh_tensor_str(1, dw, words);
    for (int sorted = 0; sorted < 2; sorted++) {
        kh_begin("Unique", 11, 1, 4);
        kh_attr_int("sorted", sorted);
        kh_in[0] = &w;
        TU_CHECK(kh_run() == MIXRT_STATUS_OK, "Unique strings: %s", mixrt_context_last_error(kh_ctx));
        const char *ys[2][5] = {{"pear", "apple", "fig", "", "figs"}, {"", "apple", "fig", "figs", "pear"}};
        int64_t ind[2][5] = {{0, 1, 3, 4, 6}, {4, 1, 3, 6, 0}},
                inv[2][7] = {{0, 1, 0, 2, 3, 1, 4}, {4, 1, 4, 2, 0, 1, 3}};
        int64_t cnt[2][5] = {{2, 2, 1, 1, 1}, {1, 2, 1, 1, 2}};
        bool ok = mixrt_tensor_numel(&kh_out[0]) == 5;
        for (int j = 0; ok && j < 5; j++) ok = !strcmp(((struct mixrt_string *)kh_out[0].data)[j].ptr, ys[sorted][j]);
        TU_CHECK(ok, "Unique strings sorted=%d: Y differs", sorted);
        check_i64(1, ind[sorted], 5, "Unique strings indices");
        check_i64(2, inv[sorted], 7, "Unique strings inverse");
        check_i64(3, cnt[sorted], 5, "Unique strings counts");
        kh_end();
    }
    mixrt_tensor_release(kh_ctx, &w);
    /* uint64 beyond int64, unsorted columns (axis 1) of an int tensor. */
    int64_t du[1] = {4};
    struct mixrt_tensor u;
    mixrt_tensor_init(kh_ctx, &u, MIXRT_DTYPE_U64, 1, du);
    uint64_t uv[4] = {UINT64_MAX, 1, UINT64_MAX - 1, 1};
    memcpy(u.data, uv, sizeof(uv));
    kh_begin("Unique", 11, 1, 4);
    kh_in[0] = &u;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "Unique u64: %s", mixrt_context_last_error(kh_ctx));
    uint64_t yu[3] = {1, UINT64_MAX - 1, UINT64_MAX};
    TU_CHECK(mixrt_tensor_numel(&kh_out[0]) == 3 && !memcmp(kh_out[0].data, yu, sizeof(yu)), "Unique u64 order");
    kh_end();
    mixrt_tensor_release(kh_ctx, &u);
    int64_t dm[2] = {2, 4}, mv[8] = {3, 1, 3, 1, 5, 2, 5, 0};
    struct mixrt_tensor mcol = kh_tensor_ints(MIXRT_DTYPE_I64, 2, dm, mv);
    kh_begin("Unique", 11, 1, 4);
    kh_attr_int("axis", 1);
    kh_attr_int("sorted", 0);
    kh_in[0] = &mcol;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "Unique axis 1: %s", mixrt_context_last_error(kh_ctx));
    int64_t ycol[6] = {3, 1, 1, 5, 2, 0}, icol[3] = {0, 1, 3}, vcol[4] = {0, 1, 0, 2}, ccol[3] = {2, 1, 1};
    check_i64(0, ycol, 6, "Unique axis 1 Y");
    TU_CHECK(kh_out[0].rank == 2 && kh_out[0].dims[0] == 2 && kh_out[0].dims[1] == 3, "Unique axis 1 shape");
    check_i64(1, icol, 3, "Unique axis 1 indices");
    check_i64(2, vcol, 4, "Unique axis 1 inverse");
    check_i64(3, ccol, 3, "Unique axis 1 counts");
    kh_end();
    kh_begin("Unique", 11, 1, 1);
    kh_attr_int("axis", 2);
    kh_in[0] = &mcol;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "Unique axis 2 of rank 2 must be rejected");
    kh_end();
    mixrt_tensor_release(kh_ctx, &mcol);
    /* Empty input; NaNs collapse and sort last. */
    int64_t de[1] = {0}, dn[1] = {5};
    struct mixrt_tensor e = kh_tensor(MIXRT_DTYPE_F32, 1, de, NULL);
    kh_begin("Unique", 11, 1, 4);
    kh_in[0] = &e;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && mixrt_tensor_numel(&kh_out[0]) == 0, "Unique of nothing");
    kh_end();
    mixrt_tensor_release(kh_ctx, &e);
    struct mixrt_tensor nn = kh_tensor(MIXRT_DTYPE_F16, 1, dn, (double[]){NAN, 2, -0.0, NAN, 0});
    kh_begin("Unique", 11, 1, 4);
    kh_in[0] = &nn;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "Unique NaN: %s", mixrt_context_last_error(kh_ctx));
    int64_t cn[3] = {2, 1, 2};
    check_i64(3, cn, 3, "Unique NaN counts (-0 == 0, NaNs together last)");
    kh_end();
    mixrt_tensor_release(kh_ctx, &nn);
}

/* ---- TfIdfVectorizer ---- */

static void test_tfidf(void) {
    /* Pool: 1-grams {a, b}, 2-grams {(a,b), (c,a)}; output coordinates permuted. */
    const char *pool[6] = {"a", "b", "a", "b", "c", "a"};
    int64_t counts[2] = {0, 2}, idx[4] = {3, 0, 1, 2};
    float weights[4] = {0.5f, 2.0f, 4.0f, 8.0f};
    const char *xs[2 * 6] = {"a", "b", "c", "a", "b", "zz", "c", "c", "a", "x", "b", "a"};
    int64_t dx[2] = {2, 6};
    struct mixrt_tensor x = kh_tensor_str(2, dx, xs);
    for (int mode = 0; mode < 3; mode++) {
        kh_begin("TfIdfVectorizer", 9, 1, 1);
        kh_attr_int("min_gram_length", 1);
        kh_attr_int("max_gram_length", 2);
        kh_attr_int("max_skip_count", 1);
        kh_attr_str("mode", mode == 0 ? "TF" : mode == 1 ? "IDF" : "TFIDF");
        kh_attr_ints("ngram_counts", counts, 2);
        kh_attr_ints("ngram_indexes", idx, 4);
        kh_attr_strs("pool_strings", pool, 6);
        if (mode) kh_attr_floats("weights", weights, 4);
        kh_in[0] = &x;
        mixrt_status st = kh_run();
        TU_CHECK(st == MIXRT_STATUS_OK, "TfIdf strings mode %d: %s", mode, mixrt_context_last_error(kh_ctx));
        /* Row 0: a b c a b zz. unigrams a:2 b:2; bigrams skip 0: ab ab, ca; skip 1: (a,c) (b,a) (c,b) (a,zz):
         * ab: 2, ca: 1. Row 1: c c a x b a. a:2 b:1; skip 0: ca; skip 1: (c,a) (c,x) (a,b): ca 2, ab 1. */
        double tf[8] = {2, 2, 1, 2, 1, 1, 2, 2}; /* coords: 0 <- b, 1 <- ab, 2 <- ca, 3 <- a */
        double want[8];
        for (int j = 0; j < 8; j++) {
            double wj = weights[j % 4];
            want[j] = mode == 0 ? tf[j] : mode == 1 ? (tf[j] > 0 ? wj : 0) : tf[j] * wj;
        }
        if (st == MIXRT_STATUS_OK) TU_CHECK(count_bad(0, want, 8, 0) == 0, "TfIdf strings mode %d values", mode);
        kh_end();
    }
    /* Integer input against a string pool; a ragged group. */
    int64_t di[1] = {3};
    struct mixrt_tensor xi = kh_tensor_ints(MIXRT_DTYPE_I64, 1, di, (int64_t[]){1, 2, 3});
    kh_begin("TfIdfVectorizer", 9, 1, 1);
    kh_attr_int("min_gram_length", 1);
    kh_attr_int("max_gram_length", 2);
    kh_attr_str("mode", "TF");
    kh_attr_ints("ngram_counts", counts, 2);
    kh_attr_ints("ngram_indexes", idx, 4);
    kh_attr_strs("pool_strings", pool, 6);
    kh_in[0] = &xi;
    TU_CHECK(kh_run() == MIXRT_STATUS_UNSUPPORTED_DTYPE, "TfIdf int input with a string pool must be rejected");
    kh_end();
    int64_t pool_i[5] = {1, 2, 3, 1, 2}, counts_bad[2] = {0, 2};
    kh_begin("TfIdfVectorizer", 9, 1, 1);
    kh_attr_int("min_gram_length", 1);
    kh_attr_int("max_gram_length", 2);
    kh_attr_str("mode", "TF");
    kh_attr_ints("ngram_counts", counts_bad, 2);
    kh_attr_ints("ngram_indexes", idx, 3);
    kh_attr_ints("pool_int64s", pool_i, 5);
    kh_in[0] = &xi;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "TfIdf ragged 2-gram group must be rejected");
    kh_end();
    mixrt_tensor_release(kh_ctx, &xi);
    mixrt_tensor_release(kh_ctx, &x);
}

/* ---- Det ---- */

static void test_det(void) {
    /* [4, 3, 3]: permutation (-1), singular (0), a general matrix (-306: numpy), zero pivot first. */
    double v[36] = {0, 1, 0, 1, 0,  0, 0, 0, 1, 1, 2, 3, 2, 4, 6, 7, 8, 9,
                    6, 1, 1, 4, -2, 5, 2, 8, 7, 0, 2, 1, 3, 0, 4, 1, 5, 0};
    int64_t d[3] = {4, 3, 3};
    /* last: det [[0,2,1],[3,0,4],[1,5,0]] = 0*(0-20) - 2*(0-4) + 1*(15-0) = 23 */
    double want[4] = {-1, 0, -306, 23};
    mixrt_dtype dts[3] = {MIXRT_DTYPE_F64, MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};
    for (int i = 0; i < 3; i++) {
        struct mixrt_tensor x = kh_tensor(dts[i], 3, d, v);
        kh_begin("Det", 11, 1, 1);
        kh_in[0] = &x;
        mixrt_status st = kh_run();
        TU_CHECK(st == MIXRT_STATUS_OK, "Det %s: %s", mixrt_dtype_name(dts[i]), mixrt_context_last_error(kh_ctx));
        if (st == MIXRT_STATUS_OK)
            TU_CHECK(count_bad(0, want, 4, dts[i] == MIXRT_DTYPE_BF16 ? 1e-2 : 1e-6) == 0, "Det %s values",
                     mixrt_dtype_name(dts[i]));
        kh_end();
        mixrt_tensor_release(kh_ctx, &x);
    }
    int64_t d0[3] = {2, 0, 0}, dbad[2] = {2, 3};
    struct mixrt_tensor e = kh_tensor(MIXRT_DTYPE_F32, 3, d0, NULL), b = kh_tensor(MIXRT_DTYPE_F32, 2, dbad, NULL);
    kh_begin("Det", 11, 1, 1);
    kh_in[0] = &e;
    double ones[2] = {1, 1};
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && count_bad(0, ones, 2, 0) == 0, "Det of 0x0 matrices is 1");
    kh_end();
    kh_begin("Det", 11, 1, 1);
    kh_in[0] = &b;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "Det of a 2x3 matrix must be rejected");
    kh_end();
    mixrt_tensor_release(kh_ctx, &e);
    mixrt_tensor_release(kh_ctx, &b);
}

/* ---- CenterCropPad ---- */

static void test_center_crop_pad(void) {
    /* [3, 5] -> [6, 2]: pad rows (offset 1), crop columns (start 1). */
    double xv[15];
    for (int i = 0; i < 15; i++) xv[i] = i + 1;
    int64_t dx[2] = {3, 5}, ds[1] = {2};
    struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F32, 2, dx, xv), shape = kh_tensor_ints(MIXRT_DTYPE_I64, 1, ds, (int64_t[]){6, 2});
    kh_begin("CenterCropPad", 18, 2, 1);
    kh_in[0] = &x, kh_in[1] = &shape;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "CenterCropPad: %s", mixrt_context_last_error(kh_ctx));
    double want[12] = {0, 0, 2, 3, 7, 8, 12, 13, 0, 0, 0, 0};
    TU_CHECK(kh_out[0].dims[0] == 6 && kh_out[0].dims[1] == 2 && count_bad(0, want, 12, 0) == 0, "CenterCropPad values");
    kh_end();
    /* axes [-1] only: crop 5 -> 2 along the last axis of a string tensor; then pad 5 -> 8. */
    const char *s[15] = {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o"};
    struct mixrt_tensor xs = kh_tensor_str(2, dx, s);
    int64_t d1[1] = {1}, axes[1] = {-1};
    struct mixrt_tensor s1 = kh_tensor_ints(MIXRT_DTYPE_I64, 1, d1, (int64_t[]){8});
    kh_begin("CenterCropPad", 18, 2, 1);
    kh_attr_ints("axes", axes, 1);
    kh_in[0] = &xs, kh_in[1] = &s1;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "CenterCropPad strings: %s", mixrt_context_last_error(kh_ctx));
    const char *ws[24] = {"",  "a", "b", "c", "d", "e", "",  "",  "",  "f", "g", "h",
                          "i", "j", "",  "",  "",  "k", "l", "m", "n", "o", "",  ""};
    bool ok = mixrt_tensor_numel(&kh_out[0]) == 24;
    for (int i = 0; ok && i < 24; i++) ok = !strcmp(((struct mixrt_string *)kh_out[0].data)[i].ptr, ws[i]);
    TU_CHECK(ok, "CenterCropPad string padding");
    kh_end();
    kh_begin("CenterCropPad", 18, 2, 1);
    kh_in[0] = &xs, kh_in[1] = &s1;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "CenterCropPad with 1 shape value for 2 axes must be rejected");
    kh_end();
    mixrt_tensor_release(kh_ctx, &xs);
    mixrt_tensor_release(kh_ctx, &s1);
    mixrt_tensor_release(kh_ctx, &x);
    mixrt_tensor_release(kh_ctx, &shape);
}

/* ---- Col2Im ---- */

/* Col2Im is the adjoint of Im2Col: <col2im(X), Y> == <X, im2col(Y)> for any X, Y. */
static void test_col2im(void) {
    /* The ONNX example: [1, 5, 5], image [5, 5], block [1, 5] -> 1..25 in row order. */
    double ev[25];
    for (int kk = 0; kk < 5; kk++)
        for (int l = 0; l < 5; l++) ev[kk * 5 + l] = 1 + 5 * l + kk;
    int64_t de[3] = {1, 5, 5}, d2[1] = {2};
    struct mixrt_tensor ex = kh_tensor(MIXRT_DTYPE_F32, 3, de, ev), img = kh_tensor_ints(MIXRT_DTYPE_I64, 1, d2, (int64_t[]){5, 5}),
                        blk = kh_tensor_ints(MIXRT_DTYPE_I64, 1, d2, (int64_t[]){1, 5});
    kh_begin("Col2Im", 18, 3, 1);
    kh_in[0] = &ex, kh_in[1] = &img, kh_in[2] = &blk;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "Col2Im example: %s", mixrt_context_last_error(kh_ctx));
    double want[25];
    for (int i = 0; i < 25; i++) want[i] = i + 1;
    TU_CHECK(kh_out[0].rank == 4 && count_bad(0, want, 25, 0) == 0, "Col2Im example values");
    kh_end();
    mixrt_tensor_release(kh_ctx, &ex);
    mixrt_tensor_release(kh_ctx, &img);
    mixrt_tensor_release(kh_ctx, &blk);

    /* Image [5, 6], block [2, 3], strides [2, 1], dilations [1, 2], pads [1, 0, 0, 2], C = 2. */
    const int H = 5, W = 6, kh = 2, kw = 3, sh = 2, sw = 1, dh = 1, dw = 2, ph0 = 1, pw0 = 0, ph1 = 0, pw1 = 2, C = 2;
    int bh = (H + ph0 + ph1 - dh * (kh - 1) - 1) / sh + 1, bw = (W + pw0 + pw1 - dw * (kw - 1) - 1) / sw + 1;
    int L = bh * bw, K = kh * kw;
    int64_t dx[3] = {1, C * K, L};
    double *xv = calloc((size_t)(C * K * L), sizeof(double)), *yv = calloc((size_t)(C * H * W), sizeof(double));
    tu_seed(7);
    for (int i = 0; i < C * K * L; i++) xv[i] = tu_uniform(-1, 1);
    for (int i = 0; i < C * H * W; i++) yv[i] = tu_uniform(-1, 1);
    double rhs = 0;
    for (int c = 0; c < C; c++)
        for (int a = 0; a < kh; a++)
            for (int b = 0; b < kw; b++)
                for (int i = 0; i < bh; i++)
                    for (int j = 0; j < bw; j++) {
                        int y = i * sh - ph0 + a * dh, z = j * sw - pw0 + b * dw;
                        if (y < 0 || y >= H || z < 0 || z >= W) continue;
                        rhs += xv[(c * K + a * kw + b) * L + i * bw + j] * yv[(c * H + y) * W + z];
                    }
    struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F64, 3, dx, xv);
    struct mixrt_tensor im2 = kh_tensor_ints(MIXRT_DTYPE_I64, 1, d2, (int64_t[]){H, W}), bl2 = kh_tensor_ints(MIXRT_DTYPE_I64, 1, d2, (int64_t[]){kh, kw});
    int64_t strides[2] = {sh, sw}, dil[2] = {dh, dw}, pads[4] = {ph0, pw0, ph1, pw1};
    kh_begin("Col2Im", 18, 3, 1);
    kh_attr_ints("strides", strides, 2);
    kh_attr_ints("dilations", dil, 2);
    kh_attr_ints("pads", pads, 4);
    kh_in[0] = &x, kh_in[1] = &im2, kh_in[2] = &bl2;
    mixrt_status st = kh_run();
    TU_CHECK(st == MIXRT_STATUS_OK, "Col2Im strided: %s", mixrt_context_last_error(kh_ctx));
    if (st == MIXRT_STATUS_OK) {
        double lhs = 0;
        for (int i = 0; i < C * H * W; i++) lhs += mixrt_load_f64(kh_out[0].data, kh_out[0].dtype, (size_t)i) * yv[i];
        TU_CHECK(kh_out[0].dims[1] == C && kh_out[0].dims[2] == H && kh_out[0].dims[3] == W && close_to(lhs, rhs, 1e-12),
                 "Col2Im adjoint identity: %.17g vs %.17g", lhs, rhs);
    }
    kh_end();
    /* A wrong block count is rejected. */
    kh_begin("Col2Im", 18, 3, 1);
    kh_in[0] = &x, kh_in[1] = &im2, kh_in[2] = &bl2;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "Col2Im with the wrong number of blocks must be rejected");
    kh_end();
    mixrt_tensor_release(kh_ctx, &x);
    mixrt_tensor_release(kh_ctx, &im2);
    mixrt_tensor_release(kh_ctx, &bl2);
    free(xv);
    free(yv);
}

/* ---- hostile sweep: random shapes (empty, huge-but-empty), dtypes, attributes and scalar inputs;
 * every run ends OK or with a recorded error, never a crash, overrun or leak (run under ASan) ---- */

static int64_t rnd(int64_t lo, int64_t hi) { return lo + (int64_t)(tu_rand() % (uint64_t)(hi - lo + 1)); }

/* Empty tensors sometimes get an absurd dim; not where the op's output keeps that dim while another
 * dim becomes non-empty (CenterCropPad): such a request is honored and ASan aborts on its size. */
static bool huge_dims_ok = true;

static struct mixrt_tensor rnd_tensor(mixrt_dtype dt, int rank) {
    int64_t d[MIXRT_MAX_RANK] = {0};
    for (int i = 0; i < rank; i++) d[i] = rnd(0, 4) ? rnd(1, 4) : 0;
    if (huge_dims_ok && rank >= 2 && rnd(0, 9) == 0) d[0] = 0, d[rank - 1] = (int64_t)1 << 40; /* empty, absurd dims */
    struct mixrt_tensor t;
    memset(&t, 0, sizeof(t));
    if (mixrt_tensor_init(kh_ctx, &t, dt, rank, d) != MIXRT_STATUS_OK) return t;
    size_t n = mixrt_tensor_numel(&t);
    for (size_t i = 0; i < n; i++) {
        if (dt == MIXRT_DTYPE_STRING) {
            struct mixrt_string *e = (struct mixrt_string *)t.data + i;
            e->ptr = mixrt_alloc(kh_ctx, 2);
            e->ptr[0] = (char)('a' + rnd(0, 2)), e->ptr[1] = 0, e->len = 1;
        } else if (mixrt_dtype_is_float(dt)) {
            int64_t c = rnd(0, 30);
            mixrt_store_f64(t.data, dt, i,
                            c == 0   ? NAN
                            : c == 1 ? 1e30
                            : c == 2 ? -INFINITY
                                     : (double)rnd(-30, 30) / 10);
        } else {
            mixrt_store_i64(t.data, dt, i, rnd(-2, 6));
        }
    }
    return t;
}

/* A scalar or [1] i64 in [lo, hi], sometimes INT64_MIN, and INT64_MAX where the kernel must reject
 * it before allocating (a size it would honor is out: ASan aborts on huge requests). */
static struct mixrt_tensor rnd_scalar(int64_t lo, int64_t hi, bool max_ok) {
    int64_t d[1] = {1};
    struct mixrt_tensor t = kh_tensor_ints(MIXRT_DTYPE_I64, (int)rnd(0, 1), d, NULL);
    ((int64_t *)t.data)[0] = rnd(0, 19) ? rnd(lo, hi) : (max_ok && rnd(0, 1) ? INT64_MAX : INT64_MIN);
    return t;
}

static void test_hostile_sweep(void) {
    static const char *ops[13] = {
        "DFT",        "STFT",   "HannWindow",      "HammingWindow", "BlackmanWindow", "MelWeightMatrix",
        "GridSample", "Unique", "TfIdfVectorizer", "Det",           "CenterCropPad",  "Col2Im",
        "DFT"};
    static const mixrt_dtype fl[4] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_F64, MIXRT_DTYPE_F16, MIXRT_DTYPE_BF16};
    static const mixrt_dtype any[6] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_I64,  MIXRT_DTYPE_STRING,
                                       MIXRT_DTYPE_U8,  MIXRT_DTYPE_BF16, MIXRT_DTYPE_BOOL};
    static const char *modes[5] = {"bilinear", "nearest", "bicubic", "cubic", "area"};
    static const char *pads[4] = {"zeros", "border", "reflection", "wrap"};
    static const char *tf_modes[4] = {"TF", "IDF", "TFIDF", "BM25"};
    int64_t ints[6][8];
    float floats[8];
    struct mixrt_tensor t[5];
    size_t base = mixrt_context_bytes_in_use(kh_ctx);
    int ok = 0, errors = 0;
    tu_seed(2024);
    for (int it = 0; it < 4000; it++) {
        int op = (int)rnd(0, 12);
        memset(t, 0, sizeof(t));
        for (int a = 0; a < 6; a++)
            for (int j = 0; j < 8; j++) ints[a][j] = rnd(-2, 6);
        for (int j = 0; j < 8; j++) floats[j] = (float)rnd(0, 4);
        kh_begin(ops[op],
              (int)rnd(op == 7                ? 11
                       : op == 8              ? 9
                       : op == 9              ? 11
                       : op == 6              ? 16
                       : op >= 10 && op <= 11 ? 18
                                              : 17,
                       21),
              5, 4);
        kh_n_in = 1;
        switch (op) {
        case 0:
        case 12: {
            int r = (int)rnd(1, 5);
            t[0] = rnd_tensor(fl[rnd(0, 3)], r);
            if (r >= 1 && rnd(0, 2)) t[0].dims[r - 1] = rnd(1, 2); /* usually a valid complex dim */
            if (mixrt_tensor_numel(&t[0]) * mixrt_dtype_size(t[0].dtype) > t[0].nbytes) t[0].dims[r - 1] = 0;
            if (rnd(0, 1)) t[1] = rnd_scalar(-1, 9, true);
            if (rnd(0, 1)) t[2] = rnd_scalar(-5, 5, true);
            kh_n_in = 3;
            kh_attr_int("axis", rnd(-4, 4)), kh_attr_int("onesided", rnd(0, 1)), kh_attr_int("inverse", rnd(0, 1));
            break;
        }
        case 1:
            if (rnd(0, 3)) {
                int64_t d[3] = {rnd(0, 2), rnd(1, 12), rnd(1, 2)};
                t[0] = kh_tensor(fl[rnd(0, 3)], 3, d, NULL);
                for (size_t j = 0; j < mixrt_tensor_numel(&t[0]); j++)
                    mixrt_store_f64(t[0].data, t[0].dtype, j, sin((double)j));
            } else {
                t[0] = rnd_tensor(fl[rnd(0, 3)], (int)rnd(2, 4));
            }
            t[1] = rnd_scalar(-1, 5, true);
            if (rnd(0, 1)) t[2] = rnd_tensor(t[0].dtype, rnd(0, 3) ? 1 : (int)rnd(0, 2));
            if (rnd(0, 1)) t[3] = rnd_scalar(-1, 6, true);
            if (t[2].rank == 1 && t[3].data && rnd(0, 1)) ((int64_t *)t[3].data)[0] = t[2].dims[0];
            kh_n_in = 4;
            kh_attr_int("onesided", rnd(0, 1));
            break;
        case 2:
        case 3:
        case 4:
            t[0] = rnd_scalar(-2, 12, false);
            kh_attr_int("output_datatype", rnd(0, 17)), kh_attr_int("periodic", rnd(0, 1));
            break;
        case 5:
            t[0] = rnd_scalar(-1, 6, true), t[1] = rnd_scalar(-1, 40, true), t[2] = rnd_scalar(-1, 9000, true);
            t[3] = rnd_tensor(fl[rnd(0, 3)], 0), t[4] = rnd_tensor(fl[rnd(0, 3)], 0);
            if (rnd(0, 3)) {
                mixrt_store_f64(t[3].data, t[3].dtype, 0, (double)rnd(0, 100));
                mixrt_store_f64(t[4].data, t[4].dtype, 0, (double)rnd(100, 5000));
            }
            kh_n_in = 5;
            kh_attr_int("output_datatype", rnd(0, 17));
            break;
        case 6: {
            int r = (int)rnd(3, 5);
            t[0] = rnd_tensor(fl[rnd(0, 3)], r), t[1] = rnd_tensor(fl[rnd(0, 3)], (int)rnd(3, 5));
            if (rnd(0, 2)) { /* usually a consistent grid */
                t[1].dims[0] = t[0].dims[0];
                t[1].dims[t[1].rank - 1] = t[1].rank - 2;
                if (mixrt_tensor_numel(&t[1]) * mixrt_dtype_size(t[1].dtype) > t[1].nbytes) t[1].dims[1] = 0;
            }
            kh_n_in = 2;
            kh_attr_str("mode", modes[rnd(0, 4)]), kh_attr_str("padding_mode", pads[rnd(0, 3)]);
            kh_attr_int("align_corners", rnd(0, 1));
            break;
        }
        case 7:
            t[0] = rnd_tensor(any[rnd(0, 5)], (int)rnd(0, 3));
            if (rnd(0, 1)) kh_attr_int("axis", rnd(-4, 4));
            kh_attr_int("sorted", rnd(0, 1));
            break;
        case 8: {
            t[0] = rnd_tensor(rnd(0, 3) ? MIXRT_DTYPE_I64 : MIXRT_DTYPE_STRING, (int)rnd(0, 3));
            static const char *pool[8] = {"a", "b", "c", "a", "b", "c", "a", "b"};
            bool valid = rnd(0, 3) != 0, strs = t[0].dtype == MIXRT_DTYPE_STRING;
            if (valid) {
                /* 1-grams then 2-grams, consistent counts and indexes. */
                int64_t n1 = rnd(0, 4), n2 = rnd(0, 2), ne = n1 + n2;
                ints[0][0] = 0, ints[0][1] = n1;
                for (int j = 0; j < ne; j++) ints[1][j] = rnd(0, 6);
                kh_attr_int("min_gram_length", rnd(1, 2)), kh_attr_int("max_gram_length", 2);
                kh_attr_int("max_skip_count", rnd(0, 3)), kh_attr_str("mode", tf_modes[rnd(0, 2)]);
                kh_attr_ints("ngram_counts", ints[0], 2);
                kh_attr_ints("ngram_indexes", ints[1], (size_t)ne);
                if (strs)
                    kh_attr_strs("pool_strings", pool, (size_t)(n1 + 2 * n2));
                else
                    kh_attr_ints("pool_int64s", ints[2], (size_t)(n1 + 2 * n2));
                if (rnd(0, 1)) kh_attr_floats("weights", floats, (size_t)ne);
                break;
            }
            kh_attr_int("min_gram_length", rnd(0, 3)), kh_attr_int("max_gram_length", rnd(0, 3));
            kh_attr_int("max_skip_count", rnd(-1, 3)), kh_attr_str("mode", tf_modes[rnd(0, 3)]);
            for (int j = 0; j < 3; j++) ints[0][j] = j ? ints[0][j - 1] + rnd(-1, 4) : rnd(-1, 1);
            kh_attr_ints("ngram_counts", ints[0], (size_t)rnd(0, 3));
            kh_attr_ints("ngram_indexes", ints[1], (size_t)rnd(0, 8));
            if (rnd(0, 3))
                kh_attr_ints("pool_int64s", ints[2], (size_t)rnd(0, 8));
            else
                kh_attr_strs("pool_strings", pool, (size_t)rnd(0, 8));
            if (rnd(0, 1)) kh_attr_floats("weights", floats, (size_t)rnd(0, 8));
            break;
        }
        case 9:
            if (rnd(0, 2)) { /* [*, m, m] */
                int64_t m = rnd(0, 4), d[3] = {rnd(0, 3), m, m};
                int r = (int)rnd(2, 3);
                t[0] = kh_tensor(fl[rnd(0, 3)], r, d + 3 - r, NULL);
                for (size_t q = 0; q < mixrt_tensor_numel(&t[0]); q++)
                    mixrt_store_f64(t[0].data, t[0].dtype, q, (double)rnd(-4, 4));
            } else {
                t[0] = rnd_tensor(fl[rnd(0, 3)], (int)rnd(0, 4));
            }
            break;
        case 10: {
            huge_dims_ok = false;
            t[0] = rnd_tensor(any[rnd(0, 5)], (int)rnd(0, 4));
            huge_dims_ok = true;
            int64_t d[1] = {rnd(0, 1) ? t[0].rank : rnd(0, 4)};
            t[1] = kh_tensor_ints(MIXRT_DTYPE_I64, 1, d, ints[0]);
            kh_n_in = 2;
            if (!rnd(0, 3)) kh_attr_ints("axes", ints[1], (size_t)rnd(0, 4));
            break;
        }
        default: {
            int nd = (int)rnd(1, 3);
            bool valid = rnd(0, 3) != 0;
            for (int j = 0; j < nd; j++) {
                ints[0][j] = rnd(valid ? 1 : 0, 5), ints[1][j] = rnd(valid ? 1 : 0, 3);
                ints[2][j] = rnd(valid ? 1 : -1, 3), ints[3][j] = rnd(valid ? 1 : -1, 2);
                ints[4][j] = rnd(0, 2), ints[4][j + nd] = rnd(0, 2);
            }
            int64_t d[1] = {nd}, K = 1, L = 1;
            t[1] = kh_tensor_ints(MIXRT_DTYPE_I64, 1, d, ints[0]), t[2] = kh_tensor_ints(MIXRT_DTYPE_I64, 1, d, ints[1]);
            kh_n_in = 3;
            kh_attr_ints("strides", ints[2], valid ? (size_t)nd : (size_t)rnd(0, 3));
            kh_attr_ints("dilations", ints[3], valid ? (size_t)nd : (size_t)rnd(0, 3));
            kh_attr_ints("pads", ints[4], valid ? (size_t)(2 * nd) : (size_t)rnd(0, 6));
            for (int j = 0; j < nd && valid; j++) {
                int64_t span = ints[3][j] * (ints[1][j] - 1) + 1, padded = ints[0][j] + ints[4][j] + ints[4][j + nd];
                K *= ints[1][j];
                L *= padded >= span ? (padded - span) / ints[2][j] + 1 : 0;
            }
            if (valid) {
                int64_t dx[3] = {rnd(0, 2), rnd(0, 2) * K, L};
                t[0] = kh_tensor(rnd(0, 1) ? MIXRT_DTYPE_F32 : MIXRT_DTYPE_I32, 3, dx, NULL);
                for (size_t j = 0; j < mixrt_tensor_numel(&t[0]); j++)
                    mixrt_store_f64(t[0].data, t[0].dtype, j, (double)(j % 7));
            } else {
                t[0] = rnd_tensor(rnd(0, 1) ? MIXRT_DTYPE_F32 : MIXRT_DTYPE_I32, 3);
            }
            break;
        }
        }
        for (int i = 0; i < kh_n_in; i++) kh_in[i] = t[i].data || t[i].rank || t[i].dtype ? &t[i] : NULL;
        if (kh_G) kh_N->n_inputs = kh_n_in;
        mixrt_status st = kh_run();
        if (st == MIXRT_STATUS_OK)
            ok++;
        else {
            errors++;
            TU_CHECK(mixrt_context_last_error(kh_ctx)[0] != 0, "sweep %d %s: error %d without a message", it, ops[op],
                     (int)st);
        }
        kh_end();
        for (int i = 0; i < 5; i++) mixrt_tensor_release(kh_ctx, &t[i]);
        TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == base, "sweep %d %s leaks", it, ops[op]);
        base = mixrt_context_bytes_in_use(kh_ctx);
    }
    TU_CHECK(ok > 400 && errors > 400, "sweep: %d ran, %d rejected (want a mix)", ok, errors);
}

/* ---- allocation failures: every failing allocation gives an error and no leak ---- */

static void test_fault_injection(void) {
    int64_t d0[1] = {0}, dx[4] = {1, 6, 2, 2}, dg[4] = {1, 2, 3, 2}, dw[1] = {5}, ds[2] = {2, 3};
    double xv[24], gv[12];
    for (int i = 0; i < 24; i++) xv[i] = i % 5;
    for (int i = 0; i < 12; i++) gv[i] = -1 + 0.17 * i;
    struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F32, 4, dx, xv), g = kh_tensor(MIXRT_DTYPE_F32, 4, dg, gv);
    double sv[16];
    for (int i = 0; i < 16; i++) sv[i] = sin(i);
    struct mixrt_tensor sig = kh_tensor(MIXRT_DTYPE_F16, 3, (int64_t[]){1, 16, 1}, sv);
    struct mixrt_tensor n8 = kh_tensor_ints(MIXRT_DTYPE_I64, 0, d0, (int64_t[]){8}), shape = kh_tensor_ints(MIXRT_DTYPE_I64, 1, (int64_t[]){2}, (int64_t[]){1, 5});
    const char *words[6] = {"b", "a", "b", "c", "a", "d"}, *pool[3] = {"a", "b", "c"};
    struct mixrt_tensor w = kh_tensor_str(1, dw, words), ws = kh_tensor_str(2, ds, words);
    int64_t counts[1] = {0}, idx[3] = {0, 1, 2};
    for (int op = 0; op < 6; op++) {
        int succeeded = 0;
        for (long n = 0; n < 300 && !succeeded; n++) {
            size_t before = mixrt_context_bytes_in_use(kh_ctx);
            switch (op) {
            case 0:
                kh_begin("DFT", 17, 1, 1), kh_in[0] = &x;
                break;
            case 1:
                kh_begin("GridSample", 16, 2, 1), kh_attr_str("mode", "bicubic"), kh_in[0] = &x, kh_in[1] = &g;
                break;
            case 2:
                kh_begin("Unique", 11, 1, 4), kh_in[0] = &w;
                break;
            case 3:
                kh_begin("TfIdfVectorizer", 9, 1, 1);
                kh_attr_int("min_gram_length", 1), kh_attr_int("max_gram_length", 1), kh_attr_str("mode", "TF");
                kh_attr_ints("ngram_counts", counts, 1), kh_attr_ints("ngram_indexes", idx, 3),
                    kh_attr_strs("pool_strings", pool, 3);
                kh_in[0] = &w;
                break;
            case 4:
                kh_begin("CenterCropPad", 18, 2, 1), kh_in[0] = &ws, kh_in[1] = &shape;
                break;
            default:
                kh_begin("STFT", 17, 4, 1), kh_in[0] = &sig, kh_in[1] = &n8, kh_in[3] = &n8;
                break;
            }
            mixrt_context_fail_alloc_after(kh_ctx, n, 1);
            mixrt_status st = kh_run();
            mixrt_context_fail_alloc_after(kh_ctx, -1, 0);
            if (st == MIXRT_STATUS_OK)
                succeeded = 1;
            else
                TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY, "op %d fail-after %ld: status %d", op, n, (int)st);
            kh_end();
            TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == before, "op %d fail-after %ld leaks %zu bytes", op, n,
                     mixrt_context_bytes_in_use(kh_ctx) - before);
        }
        TU_CHECK(succeeded, "op %d never succeeded", op);
    }
    mixrt_tensor_release(kh_ctx, &x);
    mixrt_tensor_release(kh_ctx, &g);
    mixrt_tensor_release(kh_ctx, &n8);
    mixrt_tensor_release(kh_ctx, &sig);
    mixrt_tensor_release(kh_ctx, &shape);
    mixrt_tensor_release(kh_ctx, &w);
    mixrt_tensor_release(kh_ctx, &ws);
}

int main(void) {
    if (mixrt_context_create(NULL, &kh_ctx) != MIXRT_STATUS_OK) return 1;
    size_t base = mixrt_context_bytes_in_use(kh_ctx);
    test_dft();
    test_stft();
    test_windows();
    test_grid_sample();
    test_unique();
    test_tfidf();
    test_det();
    test_center_crop_pad();
    test_col2im();
    test_hostile_sweep();
    TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == base, "leaked %zu bytes", mixrt_context_bytes_in_use(kh_ctx) - base);
    test_fault_injection();
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_ref_extra");
}
