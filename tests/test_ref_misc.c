/* test_ref_misc.c - unit tests for the misc, sequence and string reference kernels
 * beyond what the ONNX node suite checks: general Einsum forms, NMS and RoiAlign edge
 * cases, statistics and determinism of the random operators, Constant forms, sequence
 * operators on STRING tensors, and leak-free failure under allocation fault injection.
 * Each case builds a one-node graph by hand and calls the kernel directly. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/ref.h"
#include "kernel_harness.h"
#include "testutil.h"


static bool close_to(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

/* ---- Einsum ---- */

static void einsum_case(const char *eq, int nops, struct mixrt_tensor *ops, const double *want, int want_rank,
                        const int64_t *want_dims) {
    kh_begin("Einsum", 12, nops, 1);
    kh_attr_str("equation", eq);
    for (int i = 0; i < nops; i++) kh_in[i] = &ops[i];
    mixrt_status st = kh_run();
    TU_CHECK(st == MIXRT_STATUS_OK, "Einsum '%s': %s", eq, mixrt_context_last_error(kh_ctx));
    if (st == MIXRT_STATUS_OK) {
        TU_CHECK(kh_out[0].rank == want_rank, "Einsum '%s': rank %d, want %d", eq, kh_out[0].rank, want_rank);
        for (int i = 0; i < want_rank && i < kh_out[0].rank; i++)
            TU_CHECK(kh_out[0].dims[i] == want_dims[i], "Einsum '%s': dim %d is %lld, want %lld", eq, i,
                     (long long)kh_out[0].dims[i], (long long)want_dims[i]);
        size_t n = mixrt_tensor_numel(&kh_out[0]), bad = 0;
        for (size_t i = 0; i < n; i++)
            if (!close_to(mixrt_load_f64(kh_out[0].data, kh_out[0].dtype, i), want[i], 1e-12)) bad++;
        TU_CHECK(bad == 0, "Einsum '%s': %zu of %zu values differ", eq, bad, n);
    }
    kh_end();
}

static void test_einsum(void) {
    double av[24], bv[36], cv[24];
    for (int i = 0; i < 36; i++) bv[i] = (double)((i * 7) % 11) - 5;
    for (int i = 0; i < 24; i++) av[i] = (double)((i * 5) % 9) - 4, cv[i] = 0.5 * i - 3;

    /* Broadcast batch matmul: A [2,1,2,3] '...ij', B [3,3,4] '...jk' -> [2,3,2,4]. */
    {
        int64_t da[4] = {2, 1, 2, 3}, db[3] = {3, 3, 4}, dw[4] = {2, 3, 2, 4};
        struct mixrt_tensor ops[2] = {kh_tensor(MIXRT_DTYPE_F32, 4, da, av), kh_tensor(MIXRT_DTYPE_F32, 3, db, bv)};
        double want[48];
        for (int p = 0; p < 2; p++)
            for (int q = 0; q < 3; q++)
                for (int i = 0; i < 2; i++)
                    for (int k = 0; k < 4; k++) {
                        double s = 0;
                        for (int j = 0; j < 3; j++) s += (float)av[p * 6 + i * 3 + j] * bv[q * 12 + j * 4 + k];
                        want[((p * 3 + q) * 2 + i) * 4 + k] = s;
                    }
        einsum_case("...ij, ...jk -> ...ik", 2, ops, want, 4, dw);
        mixrt_tensor_release(kh_ctx, &ops[0]);
        mixrt_tensor_release(kh_ctx, &ops[1]);
    }
    /* Diagonal, trace (implicit: no free label), three operands, implicit transpose and outer. */
    {
        int64_t d[2] = {4, 4};
        struct mixrt_tensor m = kh_tensor(MIXRT_DTYPE_F64, 2, d, bv);
        double diag[4], tr = 0;
        for (int i = 0; i < 4; i++) diag[i] = bv[i * 5], tr += bv[i * 5];
        int64_t d4[1] = {4};
        einsum_case("ii->i", 1, &m, diag, 1, d4);
        einsum_case("ii", 1, &m, &tr, 0, NULL);
        double tt[16];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) tt[i * 4 + j] = bv[j * 4 + i];
        einsum_case("ba", 1, &m, tt, 2, d);
        mixrt_tensor_release(kh_ctx, &m);
    }
    {
        int64_t d1[2] = {2, 3}, d2[2] = {3, 4}, d3[2] = {4, 2}, dw[2] = {2, 2};
        struct mixrt_tensor ops[3] = {kh_tensor(MIXRT_DTYPE_F64, 2, d1, av), kh_tensor(MIXRT_DTYPE_F64, 2, d2, bv),
                                      kh_tensor(MIXRT_DTYPE_F64, 2, d3, cv)};
        double want[4];
        for (int i = 0; i < 2; i++)
            for (int l = 0; l < 2; l++) {
                double s = 0;
                for (int j = 0; j < 3; j++)
                    for (int k = 0; k < 4; k++) s += av[i * 3 + j] * bv[j * 4 + k] * cv[k * 2 + l];
                want[i * 2 + l] = s;
            }
        einsum_case("ij,jk,kl->il", 3, ops, want, 2, dw);
        /* implicit: free labels i, l sorted */
        einsum_case("ij,jk,kl", 3, ops, want, 2, dw);
        for (int i = 0; i < 3; i++) mixrt_tensor_release(kh_ctx, &ops[i]);
    }
    {
        int64_t d1[1] = {3}, d2[1] = {2}, dw[2] = {2, 3};
        struct mixrt_tensor ops[2] = {kh_tensor(MIXRT_DTYPE_BF16, 1, d1, (double[]){1, 2, 3}),
                                      kh_tensor(MIXRT_DTYPE_BF16, 1, d2, (double[]){-1, 0.5})};
        double want[6] = {-1, -2, -3, 0.5, 1, 1.5};
        einsum_case("j,i", 2, ops, want, 2, dw); /* implicit output 'ij' */
        mixrt_tensor_release(kh_ctx, &ops[0]);
        mixrt_tensor_release(kh_ctx, &ops[1]);
    }
    /* Integers stay exact beyond 2^53. */
    {
        int64_t d[1] = {2};
        struct mixrt_tensor a, b;
        mixrt_tensor_init(kh_ctx, &a, MIXRT_DTYPE_I64, 1, d);
        mixrt_tensor_init(kh_ctx, &b, MIXRT_DTYPE_I64, 1, d);
        ((int64_t *)a.data)[0] = ((int64_t)1 << 53) + 1, ((int64_t *)a.data)[1] = 2;
        ((int64_t *)b.data)[0] = 1, ((int64_t *)b.data)[1] = 3;
        kh_begin("Einsum", 12, 2, 1);
        kh_attr_str("equation", "i,i->");
        kh_in[0] = &a, kh_in[1] = &b;
        TU_CHECK(kh_run() == MIXRT_STATUS_OK, "Einsum i64: %s", mixrt_context_last_error(kh_ctx));
        TU_CHECK(kh_out[0].dtype == MIXRT_DTYPE_I64 && kh_out[0].rank == 0 &&
                     ((int64_t *)kh_out[0].data)[0] == ((int64_t)1 << 53) + 7,
                 "Einsum i64 inner product is not exact");
        kh_end();
        mixrt_tensor_release(kh_ctx, &a);
        mixrt_tensor_release(kh_ctx, &b);
    }
    /* Zero-size reduction gives zeros; malformed equations are errors. */
    {
        int64_t d1[2] = {2, 0}, d2[2] = {0, 3}, dw[2] = {2, 3};
        struct mixrt_tensor ops[2] = {kh_tensor(MIXRT_DTYPE_F32, 2, d1, NULL), kh_tensor(MIXRT_DTYPE_F32, 2, d2, NULL)};
        double want[6] = {0};
        einsum_case("ij,jk->ik", 2, ops, want, 2, dw);
        static const char *bad[] = {"ij->ik", "ijk,jk", "i.j,jk", "ij,jk->ii", "ij,jk->...ik", "i-j,jk", "ij,jk,kl", "ij"};
        for (size_t c = 0; c < sizeof(bad) / sizeof(bad[0]); c++) {
            kh_begin("Einsum", 12, 2, 1);
            kh_attr_str("equation", bad[c]);
            kh_in[0] = &ops[0], kh_in[1] = &ops[1];
            if (c == 0) kh_n_in = 1, kh_N->n_inputs = 1; /* one operand: 'k' is not an input label */
            mixrt_status st = kh_run();
            TU_CHECK(st != MIXRT_STATUS_OK, "Einsum '%s' should fail", bad[c]);
            TU_CHECK(strstr(mixrt_context_last_error(kh_ctx), "Einsum node 'n0'") != NULL, "message: %s",
                     mixrt_context_last_error(kh_ctx));
            kh_end();
        }
        mixrt_tensor_release(kh_ctx, &ops[0]);
        mixrt_tensor_release(kh_ctx, &ops[1]);
        /* a real size clash */
        int64_t e1[2] = {2, 3}, e2[2] = {4, 3};
        struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F32, 2, e1, NULL), y = kh_tensor(MIXRT_DTYPE_F32, 2, e2, NULL);
        kh_begin("Einsum", 12, 2, 1);
        kh_attr_str("equation", "ij,jk->ik");
        kh_in[0] = &x, kh_in[1] = &y;
        TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_ARGUMENT, "Einsum size clash should fail");
        kh_end();
        mixrt_tensor_release(kh_ctx, &x);
        mixrt_tensor_release(kh_ctx, &y);
    }
}

/* ---- NonMaxSuppression ---- */

static void test_nms(void) {
    /* One batch, two classes, four boxes (corners in mixed order). */
    double boxes[16] = {0, 0, 1, 1, 1, 1, 0.1, 0.1, 0, 10, 1, 11, 0, 100, 1, 101};
    double scores[8] = {0.9, 0.8, 0.7, 0.1, 0.5, 0.5, 0.6, 0.5};
    int64_t db[3] = {1, 4, 4}, ds[3] = {1, 2, 4}, d1[1] = {1};
    struct mixrt_tensor b = kh_tensor(MIXRT_DTYPE_F32, 3, db, boxes), s = kh_tensor(MIXRT_DTYPE_F16, 3, ds, scores);
    struct mixrt_tensor mx = kh_tensor(MIXRT_DTYPE_I64, 1, d1, (double[]){3});
    struct mixrt_tensor iou = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, (double[]){0.5});
    struct mixrt_tensor thr = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, (double[]){0.2});
    kh_begin("NonMaxSuppression", 11, 5, 1);
    kh_in[0] = &b, kh_in[1] = &s, kh_in[2] = &mx, kh_in[3] = &iou, kh_in[4] = &thr;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "NMS: %s", mixrt_context_last_error(kh_ctx));
    /* class 0: 0 (0.9), 1 suppressed by 0 (IoU 0.81), 2 (0.7); 3 under threshold.
     * class 1: 2 (0.6), then ties at 0.5 by index: 0, 1 suppressed by 0 -> three picked: 2, 0, 3. */
    int64_t want[] = {0, 0, 0, 0, 0, 2, 0, 1, 2, 0, 1, 0, 0, 1, 3};
    TU_CHECK(kh_out[0].dtype == MIXRT_DTYPE_I64 && kh_out[0].rank == 2 && kh_out[0].dims[0] == 5 && kh_out[0].dims[1] == 3,
             "NMS output shape");
    if (kh_out[0].dims[0] == 5) TU_CHECK(!memcmp(kh_out[0].data, want, sizeof(want)), "NMS selection differs");
    kh_end();
    /* No max_output_boxes_per_class: nothing selected, shape [0, 3]. */
    kh_begin("NonMaxSuppression", 10, 2, 1);
    kh_in[0] = &b, kh_in[1] = &s;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out[0].rank == 2 && kh_out[0].dims[0] == 0 && kh_out[0].dims[1] == 3,
             "NMS without max_output: %s", mixrt_context_last_error(kh_ctx));
    kh_end();
    /* Bad iou threshold, bad shapes. */
    struct mixrt_tensor bad_iou = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, (double[]){1.5});
    kh_begin("NonMaxSuppression", 11, 4, 1);
    kh_in[0] = &b, kh_in[1] = &s, kh_in[2] = &mx, kh_in[3] = &bad_iou;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_ARGUMENT, "NMS iou 1.5 should fail");
    kh_end();
    kh_begin("NonMaxSuppression", 11, 2, 1);
    kh_in[0] = &s, kh_in[1] = &b;
    TU_CHECK(kh_run() != MIXRT_STATUS_OK, "NMS swapped inputs should fail");
    kh_end();
    mixrt_tensor_release(kh_ctx, &b);
    mixrt_tensor_release(kh_ctx, &s);
    mixrt_tensor_release(kh_ctx, &mx);
    mixrt_tensor_release(kh_ctx, &iou);
    mixrt_tensor_release(kh_ctx, &thr);
    mixrt_tensor_release(kh_ctx, &bad_iou);
}

/* The greedy selection written out from the operator's text, pair by pair from the raw
 * coordinates (libm's fmin / fmax: a NaN coordinate gives the other), as the kernel did before
 * it made each box's corners once. Returns the number of selected [batch, class, box] rows. */
static size_t nms_naive(const double *bx, const double *sc, int nb, int nc, int n, int center, int64_t max_out,
                        double iou, double thr, int64_t *sel) {
    size_t ns = 0;
    int *order = malloc((size_t)n * sizeof(int)), *picked = malloc((size_t)n * sizeof(int));
    for (int b = 0; b < nb; b++)
        for (int c = 0; c < nc; c++) {
            const double *s = sc + ((size_t)b * nc + c) * n;
            int m = 0, np = 0;
            for (int i = 0; i < n; i++)
                if (!isnan(s[i]) && s[i] > thr) order[m++] = i;
            for (int i = 1; i < m; i++) /* insertion sort: score down, index up */
                for (int j = i; j > 0 && (s[order[j]] > s[order[j - 1]] ||
                                          (s[order[j]] == s[order[j - 1]] && order[j] < order[j - 1]));
                     j--) {
                    int t = order[j];
                    order[j] = order[j - 1], order[j - 1] = t;
                }
            for (int i = 0; i < m && np < max_out; i++) {
                bool keep = true;
                for (int j = 0; j < np && keep; j++) {
                    const double *p = bx + ((size_t)b * n + picked[j]) * 4, *q = bx + ((size_t)b * n + order[i]) * 4;
                    double a[4], e[4]; /* x0 x1 y0 y1 */
                    if (center) {
                        a[0] = p[0] - p[2] / 2, a[1] = p[0] + p[2] / 2, a[2] = p[1] - p[3] / 2, a[3] = p[1] + p[3] / 2;
                        e[0] = q[0] - q[2] / 2, e[1] = q[0] + q[2] / 2, e[2] = q[1] - q[3] / 2, e[3] = q[1] + q[3] / 2;
                    } else {
                        a[0] = fmin(p[1], p[3]), a[1] = fmax(p[1], p[3]), a[2] = fmin(p[0], p[2]), a[3] = fmax(p[0], p[2]);
                        e[0] = fmin(q[1], q[3]), e[1] = fmax(q[1], q[3]), e[2] = fmin(q[0], q[2]), e[3] = fmax(q[0], q[2]);
                    }
                    double ix0 = fmax(a[0], e[0]), ix1 = fmin(a[1], e[1]), iy0 = fmax(a[2], e[2]), iy1 = fmin(a[3], e[3]);
                    if (ix1 <= ix0 || iy1 <= iy0) continue;
                    double inter = (ix1 - ix0) * (iy1 - iy0), aa = (a[1] - a[0]) * (a[3] - a[2]);
                    double ae = (e[1] - e[0]) * (e[3] - e[2]), uni = aa + ae - inter;
                    if (inter <= 0 || aa <= 0 || ae <= 0 || uni <= 0) continue;
                    if (inter / uni > iou) keep = false;
                }
                if (!keep) continue;
                picked[np++] = order[i];
                sel[ns * 3] = b, sel[ns * 3 + 1] = c, sel[ns * 3 + 2] = order[i];
                ns++;
            }
        }
    free(order), free(picked);
    return ns;
}

/* Random boxes (both corner orders, some degenerate, some with a NaN or infinite coordinate;
 * scores with ties and NaNs), two batches, three classes, both box formats: the kernel's
 * selection equals nms_naive's, row for row. */
static void test_nms_random(void) {
    enum { NB = 2, NC = 3, N = 300 };
    double *bx = malloc(NB * N * 4 * sizeof(double)), *sc = malloc(NB * NC * N * sizeof(double));
    int64_t *want = malloc(NB * NC * N * 3 * sizeof(int64_t));
    for (int center = 0; center < 2; center++)
        for (int rep = 0; rep < 3; rep++) {
            for (int i = 0; i < NB * N; i++) {
                double *b = bx + (size_t)i * 4;
                for (int e = 0; e < 4; e++) b[e] = (double)(tu_rand() % 4096) / 64.0; /* 1/64 steps: ties */
                if (center) b[2] = b[2] / 4, b[3] = b[3] / 4;
                int r = (int)(tu_rand() % 50);
                if (r == 0) b[tu_rand() % 4] = NAN;
                if (r == 1) b[tu_rand() % 4] = INFINITY;
                if (r == 2) b[2] = b[0]; /* zero area */
            }
            for (int i = 0; i < NB * NC * N; i++)
                sc[i] = tu_rand() % 97 == 0 ? NAN : (double)(tu_rand() % 64) / 64.0;
            int64_t db[3] = {NB, N, 4}, ds[3] = {NB, NC, N}, d1[1] = {1}, max_out = rep == 2 ? 7 : N;
            double iou = rep == 1 ? 0.0 : 0.4, thr = 0.25;
            size_t nw = nms_naive(bx, sc, NB, NC, N, center, max_out, iou, thr, want);
            struct mixrt_tensor b = kh_tensor(MIXRT_DTYPE_F64, 3, db, bx), s = kh_tensor(MIXRT_DTYPE_F64, 3, ds, sc);
            struct mixrt_tensor mx = kh_tensor(MIXRT_DTYPE_I64, 1, d1, (double[]){(double)max_out});
            struct mixrt_tensor ti = kh_tensor(MIXRT_DTYPE_F64, 0, NULL, (double[]){iou});
            struct mixrt_tensor tt = kh_tensor(MIXRT_DTYPE_F64, 0, NULL, (double[]){thr});
            kh_begin("NonMaxSuppression", 11, 5, 1);
            kh_attr_int("center_point_box", center);
            kh_in[0] = &b, kh_in[1] = &s, kh_in[2] = &mx, kh_in[3] = &ti, kh_in[4] = &tt;
            TU_CHECK(kh_run() == MIXRT_STATUS_OK, "NMS random: %s", mixrt_context_last_error(kh_ctx));
            bool same = kh_out[0].rank == 2 && kh_out[0].dims[0] == (int64_t)nw &&
                        (nw == 0 || !memcmp(kh_out[0].data, want, nw * 3 * sizeof(int64_t)));
            TU_CHECK(same && nw > 20, "NMS random (center %d, rep %d): %lld rows, the naive greedy %zu", center, rep,
                     (long long)(kh_out[0].rank == 2 ? kh_out[0].dims[0] : -1), nw);
            kh_end();
            mixrt_tensor_release(kh_ctx, &b), mixrt_tensor_release(kh_ctx, &s), mixrt_tensor_release(kh_ctx, &mx);
            mixrt_tensor_release(kh_ctx, &ti), mixrt_tensor_release(kh_ctx, &tt);
        }
    free(bx), free(sc), free(want);
}

/* Boxes of every size from 1/8 to 512 wide in 24 groups along x, the way torchvision's batched
 * NMS offsets each class, and one in 40 across all of them: 2400 candidates put the kernel's
 * index on four levels of cells, and boxes land on each. The selection equals nms_naive's, row
 * for row. */
static void test_nms_levels(void) {
    enum { N = 2400 };
    double *bx = malloc(N * 4 * sizeof(double)), *sc = malloc(N * sizeof(double));
    int64_t *want = malloc(N * 3 * sizeof(int64_t));
    for (int i = 0; i < N; i++) {
        double *b = bx + (size_t)i * 4, w = ldexp(1.0, (int)(tu_rand() % 13) - 3) * (1 + tu_rand() % 64 / 64.0);
        double h = ldexp(1.0, (int)(tu_rand() % 10) - 3), x = (double)(tu_rand() % 24) * 20 + tu_rand() % 1024 / 64.0;
        double y = tu_rand() % 4096 / 64.0;
        if (tu_rand() % 40 == 0) x = -1000, w = 4000;
        b[0] = y, b[1] = x, b[2] = y + h, b[3] = x + w;
        sc[i] = (double)(tu_rand() % 100000) / 100000.0;
    }
    double iou = 0.3;
    size_t nw = nms_naive(bx, sc, 1, 1, N, 0, N, iou, 0.0, want);
    int64_t db[3] = {1, N, 4}, ds[3] = {1, 1, N}, d1[1] = {1};
    struct mixrt_tensor b = kh_tensor(MIXRT_DTYPE_F64, 3, db, bx), s = kh_tensor(MIXRT_DTYPE_F64, 3, ds, sc);
    struct mixrt_tensor mx = kh_tensor(MIXRT_DTYPE_I64, 1, d1, (double[]){(double)N});
    struct mixrt_tensor ti = kh_tensor(MIXRT_DTYPE_F64, 0, NULL, (double[]){iou});
    kh_begin("NonMaxSuppression", 11, 4, 1);
    kh_in[0] = &b, kh_in[1] = &s, kh_in[2] = &mx, kh_in[3] = &ti;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "NMS levels: %s", mixrt_context_last_error(kh_ctx));
    bool same = kh_out[0].rank == 2 && kh_out[0].dims[0] == (int64_t)nw &&
                (nw == 0 || !memcmp(kh_out[0].data, want, nw * 3 * sizeof(int64_t)));
    TU_CHECK(same && nw > 200 && nw < N, "NMS levels: %lld rows, the naive greedy %zu",
             (long long)(kh_out[0].rank == 2 ? kh_out[0].dims[0] : -1), nw);
    kh_end();
    mixrt_tensor_release(kh_ctx, &b), mixrt_tensor_release(kh_ctx, &s), mixrt_tensor_release(kh_ctx, &mx);
    mixrt_tensor_release(kh_ctx, &ti);
    free(bx), free(sc), free(want);
}

/* ---- RoiAlign ---- */

static void test_roi_align(void) {
    double img[2 * 16];
    for (int i = 0; i < 16; i++) img[i] = 3.0, img[16 + i] = (double)i; /* channel 0 constant, 1 a ramp */
    int64_t dx[4] = {1, 2, 4, 4}, dr[2] = {2, 4}, di[1] = {2};
    struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_BF16, 4, dx, img);
    struct mixrt_tensor rois = kh_tensor(MIXRT_DTYPE_BF16, 2, dr, (double[]){0.5, 0.5, 2.5, 2.5, 0, 0, 3, 3});
    struct mixrt_tensor idx = kh_tensor(MIXRT_DTYPE_I64, 1, di, (double[]){0, 0});
    for (int opset = 10; opset <= 16; opset += 6)
        for (int m = 0; m < 2; m++) {
            kh_begin("RoiAlign", opset, 3, 1);
            kh_in[0] = &x, kh_in[1] = &rois, kh_in[2] = &idx;
            kh_attr_int("output_height", 2);
            kh_attr_int("output_width", 2);
            kh_attr_int("sampling_ratio", 2);
            if (m) kh_attr_str("mode", "max");
            mixrt_status st = kh_run();
            TU_CHECK(st == MIXRT_STATUS_OK, "RoiAlign: %s", mixrt_context_last_error(kh_ctx));
            if (st == MIXRT_STATUS_OK) {
                TU_CHECK(kh_out[0].dtype == MIXRT_DTYPE_BF16 && kh_out[0].rank == 4 && kh_out[0].dims[0] == 2 &&
                             kh_out[0].dims[1] == 2 && kh_out[0].dims[2] == 2 && kh_out[0].dims[3] == 2,
                         "RoiAlign shape");
                /* avg over a constant channel inside the map is the constant */
                if (!m)
                    for (int r = 0; r < 2; r++)
                        for (int p = 0; p < 4; p++)
                            TU_CHECK(mixrt_load_f64(kh_out[0].data, kh_out[0].dtype, (size_t)(r * 8 + p)) == 3.0,
                                     "RoiAlign avg of a constant (opset %d)", opset);
                /* ramp: value = 4y + x; opset 10 (no half-pixel shift) samples ROI 0's first
                 * bin at y = x = 0.75, 1.25 (mean 1) -> 5; opset 16 shifts by -0.5 -> 2.5 */
                double v = mixrt_load_f64(kh_out[0].data, kh_out[0].dtype, 4);
                if (!m) TU_CHECK(v == (opset == 10 ? 5.0 : 2.5), "RoiAlign ramp opset %d: %g", opset, v);
            }
            kh_end();
        }
    struct mixrt_tensor bad = kh_tensor(MIXRT_DTYPE_I64, 1, di, (double[]){0, 1});
    kh_begin("RoiAlign", 16, 3, 1);
    kh_in[0] = &x, kh_in[1] = &rois, kh_in[2] = &bad;
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_ARGUMENT, "RoiAlign batch index 1 of 1 should fail");
    kh_end();
    mixrt_tensor_release(kh_ctx, &bad);
    mixrt_tensor_release(kh_ctx, &x);
    mixrt_tensor_release(kh_ctx, &rois);
    mixrt_tensor_release(kh_ctx, &idx);
}

/* ---- random ---- */

static void stats(const struct mixrt_tensor *t, double *mean, double *sd, double *lo, double *hi) {
    size_t n = mixrt_tensor_numel(t);
    double s = 0, s2 = 0;
    *lo = INFINITY, *hi = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        double v = mixrt_load_f64(t->data, t->dtype, i);
        s += v, s2 += v * v;
        if (v < *lo) *lo = v;
        if (v > *hi) *hi = v;
    }
    *mean = s / (double)n;
    *sd = sqrt(s2 / (double)n - *mean * *mean);
}

static void test_random(void) {
    double mean, sd, lo, hi;
    int64_t shape[2] = {100, 100};
    /* RandomNormal f64: moments; the same seed gives the same values, another node name without
     * a seed gives other values. */
    double first = 0;
    for (int rep = 0; rep < 3; rep++) {
        kh_begin("RandomNormal", 1, 0, 1);
        if (rep == 2) kh_N->name = "other";
        kh_attr_ints("shape", shape, 2);
        kh_attr_int("dtype", MIXRT_DTYPE_F64);
        kh_attr_float("mean", 2.0f);
        kh_attr_float("scale", 3.0f);
        TU_CHECK(kh_run() == MIXRT_STATUS_OK, "RandomNormal: %s", mixrt_context_last_error(kh_ctx));
        stats(&kh_out[0], &mean, &sd, &lo, &hi);
        TU_CHECK(fabs(mean - 2) < 0.15 && fabs(sd - 3) < 0.15, "RandomNormal mean %g sd %g", mean, sd);
        double v = ((double *)kh_out[0].data)[0];
        if (rep == 0) first = v;
        else if (rep == 1) TU_CHECK(v == first, "RandomNormal is not deterministic per node");
        else TU_CHECK(v != first, "RandomNormal: different nodes draw the same values");
        kh_end();
    }
    /* RandomUniformLike bf16 from an i32 input's shape, with seed. */
    int64_t d[1] = {5000};
    struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_I32, 1, d, NULL);
    kh_begin("RandomUniformLike", 1, 1, 1);
    kh_in[0] = &x;
    kh_attr_int("dtype", MIXRT_DTYPE_BF16);
    kh_attr_float("low", -1.0f);
    kh_attr_float("high", 3.0f);
    kh_attr_float("seed", 7.0f);
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "RandomUniformLike: %s", mixrt_context_last_error(kh_ctx));
    stats(&kh_out[0], &mean, &sd, &lo, &hi);
    TU_CHECK(kh_out[0].dtype == MIXRT_DTYPE_BF16 && kh_out[0].dims[0] == 5000 && lo >= -1 && hi <= 3 &&
                 fabs(mean - 1) < 0.1,
             "RandomUniformLike range [%g, %g] mean %g", lo, hi, mean);
    kh_end();
    /* without dtype an integer input is an error */
    kh_begin("RandomNormalLike", 1, 1, 1);
    kh_in[0] = &x;
    TU_CHECK(kh_run() == MIXRT_STATUS_UNSUPPORTED_DTYPE, "RandomNormalLike of i32 without dtype should fail");
    kh_end();
    mixrt_tensor_release(kh_ctx, &x);

    /* Bernoulli: p 0 and 1 are certain; p 0.3 averages 0.3. */
    double p[3000];
    for (int i = 0; i < 3000; i++) p[i] = i < 1000 ? 0 : i < 2000 ? 1 : 0.3;
    int64_t dp[1] = {3000};
    struct mixrt_tensor pt = kh_tensor(MIXRT_DTYPE_F16, 1, dp, p);
    kh_begin("Bernoulli", 15, 1, 1);
    kh_in[0] = &pt;
    kh_attr_int("dtype", MIXRT_DTYPE_BOOL);
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "Bernoulli: %s", mixrt_context_last_error(kh_ctx));
    int ones[3] = {0};
    for (int i = 0; i < 3000; i++) ones[i / 1000] += ((uint8_t *)kh_out[0].data)[i];
    TU_CHECK(kh_out[0].dtype == MIXRT_DTYPE_BOOL && ones[0] == 0 && ones[1] == 1000 && abs(ones[2] - 300) < 60,
             "Bernoulli counts %d %d %d", ones[0], ones[1], ones[2]);
    kh_end();
    mixrt_tensor_release(kh_ctx, &pt);

    /* Multinomial: log-probabilities (0.2, 0.8, 0): class 2 never drawn. */
    int64_t dl[2] = {2, 3};
    struct mixrt_tensor lp = kh_tensor(MIXRT_DTYPE_F32, 2, dl, (double[]){log(0.2), log(0.8), -INFINITY, 5, 5, 5});
    kh_begin("Multinomial", 7, 1, 1);
    kh_in[0] = &lp;
    kh_attr_int("sample_size", 4000);
    kh_attr_int("dtype", MIXRT_DTYPE_I64);
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "Multinomial: %s", mixrt_context_last_error(kh_ctx));
    int cnt[2][3] = {{0}};
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 4000; i++) {
            int64_t c = ((int64_t *)kh_out[0].data)[b * 4000 + i];
            if (c >= 0 && c < 3) cnt[b][c]++;
        }
    TU_CHECK(kh_out[0].dims[0] == 2 && kh_out[0].dims[1] == 4000 && cnt[0][2] == 0 && abs(cnt[0][1] - 3200) < 150 &&
                 abs(cnt[1][0] - 1333) < 150 && abs(cnt[1][2] - 1333) < 150,
             "Multinomial counts %d %d %d / %d %d %d", cnt[0][0], cnt[0][1], cnt[0][2], cnt[1][0], cnt[1][1],
             cnt[1][2]);
    kh_end();
    mixrt_tensor_release(kh_ctx, &lp);
}

/* ---- Constant ---- */

static void test_constant(void) {
    int64_t ints[3] = {1, -2, 3};
    kh_begin("Constant", 13, 0, 1);
    kh_attr_ints("value_ints", ints, 3);
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out[0].dtype == MIXRT_DTYPE_I64 && kh_out[0].rank == 1 &&
                 kh_out[0].dims[0] == 3 && ((int64_t *)kh_out[0].data)[1] == -2,
             "Constant value_ints");
    kh_end();
    const char *strs[2] = {"ab", ""};
    kh_begin("Constant", 13, 0, 1);
    kh_attr_strs("value_strings", strs, 2);
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out[0].dtype == MIXRT_DTYPE_STRING && kh_out[0].dims[0] == 2 &&
                 !strcmp(((struct mixrt_string *)kh_out[0].data)[0].ptr, "ab") &&
                 ((struct mixrt_string *)kh_out[0].data)[1].len == 0,
             "Constant value_strings");
    kh_end();
    int64_t d[2] = {2, 2};
    struct mixrt_tensor t = kh_tensor(MIXRT_DTYPE_F16, 2, d, (double[]){1, 2, 3, 4});
    kh_begin("Constant", 9, 0, 1);
    kh_attr("value", MIXRT_ATTR_TENSOR)->t = &t;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out[0].dtype == MIXRT_DTYPE_F16 &&
                 mixrt_load_f64(kh_out[0].data, kh_out[0].dtype, 3) == 4,
             "Constant value");
    kh_end();
    kh_begin("Constant", 13, 0, 1);
    kh_attr("value", MIXRT_ATTR_TENSOR)->t = &t;
    kh_attr_float("value_float", 1.0f);
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "Constant with two values should fail");
    kh_end();
    mixrt_tensor_release(kh_ctx, &t);
}

/* ---- sequences and strings ---- */

static void test_sequences(void) {
    const char *words[10] = {"a", "bb", "ccc", "dddd", "e", "ff", "ggg", "h", "ii", "j"};
    int64_t d[2] = {2, 5};
    struct mixrt_tensor x = kh_tensor_str(2, d, words);
    struct mixrt_tensor two = kh_tensor(MIXRT_DTYPE_I64, 0, NULL, (double[]){2});
    /* SplitToSequence of strings, scalar split 2 along axis 1 -> [2,2], [2,2], [2,1]. */
    kh_begin("SplitToSequence", 11, 2, 1);
    kh_in[0] = &x, kh_in[1] = &two;
    kh_attr_int("axis", -1);
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out_is_seq[0] && kh_out_seq[0].n == 3, "SplitToSequence: %s",
             mixrt_context_last_error(kh_ctx));
    struct mixrt_seq parts = kh_out_seq[0];
    memset(&kh_out_seq[0], 0, sizeof(kh_out_seq[0])); /* keep it past kh_end() */
    kh_end();
    if (parts.n == 3) {
        TU_CHECK(parts.items[2].dims[1] == 1 && !strcmp(((struct mixrt_string *)parts.items[2].data)[1].ptr, "j"),
                 "SplitToSequence last part");
        /* ConcatFromSequence along axis 1 gives x back; stacking (new_axis) unequal parts fails. */
        kh_begin("ConcatFromSequence", 11, 1, 1);
        kh_in_seq[0] = &parts;
        kh_attr_int("axis", 1);
        TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out[0].dims[0] == 2 && kh_out[0].dims[1] == 5, "ConcatFromSequence: %s",
                 mixrt_context_last_error(kh_ctx));
        for (int i = 0; i < 10 && kh_out[0].data; i++)
            TU_CHECK(!strcmp(((struct mixrt_string *)kh_out[0].data)[i].ptr, words[i]), "ConcatFromSequence elem %d",
                     i);
        kh_end();
        kh_begin("ConcatFromSequence", 11, 1, 1);
        kh_in_seq[0] = &parts;
        kh_attr_int("axis", -1);
        kh_attr_int("new_axis", 1);
        TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_ARGUMENT, "ConcatFromSequence new_axis of unequal parts should fail");
        kh_end();
        /* SequenceInsert at -1 (before the last), out of range at 4; SequenceErase -3 (first). */
        struct mixrt_tensor pos = kh_tensor(MIXRT_DTYPE_I32, 0, NULL, (double[]){-1}), far = kh_tensor(MIXRT_DTYPE_I64, 1, (int64_t[]){1}, (double[]){4});
        kh_begin("SequenceInsert", 11, 3, 1);
        kh_in_seq[0] = &parts, kh_in[1] = &x, kh_in[2] = &pos;
        TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out_seq[0].n == 4 && kh_out_seq[0].items[2].dims[1] == 5 &&
                     kh_out_seq[0].items[3].dims[1] == 1,
                 "SequenceInsert at -1: %s", mixrt_context_last_error(kh_ctx));
        kh_end();
        kh_begin("SequenceInsert", 11, 3, 1);
        kh_in_seq[0] = &parts, kh_in[1] = &x, kh_in[2] = &far;
        TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_ARGUMENT, "SequenceInsert at 4 of 3 should fail");
        kh_end();
        struct mixrt_tensor m3 = kh_tensor(MIXRT_DTYPE_I64, 0, NULL, (double[]){-3});
        kh_begin("SequenceErase", 11, 2, 1);
        kh_in_seq[0] = &parts, kh_in[1] = &m3;
        TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out_seq[0].n == 2 && kh_out_seq[0].items[1].dims[1] == 1,
                 "SequenceErase -3: %s", mixrt_context_last_error(kh_ctx));
        kh_end();
        kh_begin("SequenceAt", 11, 2, 1);
        kh_in_seq[0] = &parts, kh_in[1] = &far;
        TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_ARGUMENT, "SequenceAt 4 of 3 should fail");
        kh_end();
        kh_begin("SequenceInsert", 11, 2, 1);
        kh_in_seq[0] = &parts, kh_in[1] = &two; /* i64 tensor into a string sequence */
        TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_MODEL, "SequenceInsert of another dtype should fail");
        kh_end();
        mixrt_tensor_release(kh_ctx, &pos);
        mixrt_tensor_release(kh_ctx, &far);
        mixrt_tensor_release(kh_ctx, &m3);
    }
    mixrt_seq_release(kh_ctx, &parts);
    /* An empty sequence cannot be concatenated. */
    struct mixrt_seq empty = {MIXRT_DTYPE_F32, 0, 0, NULL};
    kh_begin("ConcatFromSequence", 11, 1, 1);
    kh_in_seq[0] = &empty;
    kh_attr_int("axis", 0);
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_ARGUMENT, "ConcatFromSequence of an empty sequence should fail");
    kh_end();
    /* SplitToSequence without split, keepdims 0: squeezed slices. */
    kh_begin("SplitToSequence", 11, 1, 1);
    kh_in[0] = &x;
    kh_attr_int("keepdims", 0);
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out_seq[0].n == 2 && kh_out_seq[0].items[0].rank == 1 &&
                 kh_out_seq[0].items[0].dims[0] == 5,
             "SplitToSequence keepdims 0: %s", mixrt_context_last_error(kh_ctx));
    kh_end();
    mixrt_tensor_release(kh_ctx, &two);

    /* StringNormalizer [1, C], case-insensitive stopwords, all dropped -> [1, 1] "". */
    const char *stop[2] = {"A", "BB"};
    int64_t d2[2] = {1, 2};
    struct mixrt_tensor s2 = kh_tensor_str(2, d2, words);
    kh_begin("StringNormalizer", 10, 1, 1);
    kh_in[0] = &s2;
    kh_attr_strs("stopwords", stop, 2);
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out[0].rank == 2 && kh_out[0].dims[0] == 1 && kh_out[0].dims[1] == 1 &&
                 ((struct mixrt_string *)kh_out[0].data)[0].len == 0,
             "StringNormalizer all dropped: %s", mixrt_context_last_error(kh_ctx));
    kh_end();
    kh_begin("StringNormalizer", 10, 1, 1);
    kh_in[0] = &x; /* [2, 5] is not accepted */
    TU_CHECK(kh_run() == MIXRT_STATUS_INVALID_ARGUMENT, "StringNormalizer [2,5] should fail");
    kh_end();
    mixrt_tensor_release(kh_ctx, &s2);
    mixrt_tensor_release(kh_ctx, &x);
}

/* ---- allocation failures: every failing allocation gives an error and no leak ---- */

static void test_fault_injection(void) {
    int64_t da[3] = {2, 3, 4}, db[2] = {4, 5}, dx[4] = {1, 2, 4, 4}, dr[2] = {1, 4}, di[1] = {1};
    struct mixrt_tensor a = kh_tensor(MIXRT_DTYPE_F32, 3, da, NULL), b = kh_tensor(MIXRT_DTYPE_F32, 2, db, NULL);
    struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F32, 4, dx, NULL);
    struct mixrt_tensor rois = kh_tensor(MIXRT_DTYPE_F32, 2, dr, (double[]){0, 0, 3, 3});
    struct mixrt_tensor idx = kh_tensor(MIXRT_DTYPE_I64, 1, di, NULL);
    const char *words[3] = {"x", "Yy", "zZz"};
    int64_t dw[1] = {3};
    struct mixrt_tensor w = kh_tensor_str(1, dw, words);
    for (int op = 0; op < 4; op++) {
        int succeeded = 0;
        for (long n = 0; n < 200 && !succeeded; n++) {
            size_t before = mixrt_context_bytes_in_use(kh_ctx);
            switch (op) {
            case 0:
                kh_begin("Einsum", 12, 2, 1);
                kh_attr_str("equation", "bij,jk->bik");
                kh_in[0] = &a, kh_in[1] = &b;
                break;
            case 1:
                kh_begin("RoiAlign", 16, 3, 1);
                kh_in[0] = &x, kh_in[1] = &rois, kh_in[2] = &idx;
                break;
            case 2:
                kh_begin("StringNormalizer", 10, 1, 1);
                kh_attr_str("case_change_action", "UPPER");
                kh_in[0] = &w;
                break;
            default:
                kh_begin("SplitToSequence", 11, 1, 1);
                kh_in[0] = &w;
                break;
            }
            mixrt_context_fail_alloc_after(kh_ctx, n, 1);
            mixrt_status st = kh_run();
            mixrt_context_fail_alloc_after(kh_ctx, -1, 0);
            if (st == MIXRT_STATUS_OK) succeeded = 1;
            else TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY, "op %d fail-after %ld: status %d", op, n, (int)st);
            kh_end();
            TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == before, "op %d fail-after %ld leaks %zu bytes", op, n,
                     mixrt_context_bytes_in_use(kh_ctx) - before);
        }
        TU_CHECK(succeeded, "op %d never succeeded", op);
    }
    mixrt_tensor_release(kh_ctx, &a);
    mixrt_tensor_release(kh_ctx, &b);
    mixrt_tensor_release(kh_ctx, &x);
    mixrt_tensor_release(kh_ctx, &rois);
    mixrt_tensor_release(kh_ctx, &idx);
    mixrt_tensor_release(kh_ctx, &w);
}

int main(void) {
    if (mixrt_context_create(NULL, &kh_ctx) != MIXRT_STATUS_OK) return 1;
    size_t base = mixrt_context_bytes_in_use(kh_ctx);
    test_einsum();
    test_nms();
    tu_seed(0x5e1ec7);
    test_nms_random();
    test_nms_levels();
    test_roi_align();
    test_random();
    test_constant();
    test_sequences();
    TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == base, "leaked %zu bytes", mixrt_context_bytes_in_use(kh_ctx) - base);
    test_fault_injection();
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_ref_misc");
}
