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
#include "testutil.h"

#define MAX_IO 6

static mixrt_context_t ctx;
static struct mixrt_graph *G;
static struct mixrt_node *N;
static struct mixrt_attr A[8];

static const struct mixrt_tensor *in[MAX_IO];
static const struct mixrt_seq *in_seq[MAX_IO];
static struct mixrt_tensor out[MAX_IO];
static struct mixrt_seq out_seq[MAX_IO];
static bool out_is_seq[MAX_IO], out_wanted[MAX_IO];
static int n_in, n_out;

static void begin(const char *op, int opset, int nin, int nout) {
    memset(A, 0, sizeof(A));
    memset(in, 0, sizeof(in));
    memset(in_seq, 0, sizeof(in_seq));
    memset(out, 0, sizeof(out));
    memset(out_seq, 0, sizeof(out_seq));
    memset(out_is_seq, 0, sizeof(out_is_seq));
    for (int i = 0; i < MAX_IO; i++) out_wanted[i] = true;
    n_in = nin;
    n_out = nout;
    if (mixrt_graph_create(ctx, NULL, &G) != MIXRT_STATUS_OK) return;
    int ni = mixrt_graph_add_node(G, "n0", op, "");
    int *ins = mixrt_arena_calloc(G->arena, MAX_IO, sizeof(int));
    int *outs = mixrt_arena_calloc(G->arena, MAX_IO, sizeof(int));
    char name[32];
    for (int i = 0; i < nin; i++) {
        snprintf(name, sizeof(name), "x%d", i);
        ins[i] = mixrt_graph_get_or_add_value(G, name);
    }
    for (int i = 0; i < nout; i++) {
        snprintf(name, sizeof(name), "y%d", i);
        outs[i] = mixrt_graph_get_or_add_value(G, name);
    }
    N = &G->nodes[ni];
    N->inputs = ins;
    N->outputs = outs;
    N->n_inputs = nin;
    N->n_outputs = nout;
    N->opset = opset;
    N->attrs = A;
    N->n_attrs = 0;
}

static struct mixrt_attr *attr(const char *name, enum mixrt_attr_type type) {
    struct mixrt_attr *a = &A[N->n_attrs++];
    a->name = name;
    a->type = type;
    return a;
}
static void attr_int(const char *name, int64_t v) { attr(name, MIXRT_ATTR_INT)->i = v; }
static void attr_float(const char *name, float v) { attr(name, MIXRT_ATTR_FLOAT)->f = v; }
static void attr_str(const char *name, const char *s) {
    struct mixrt_attr *a = attr(name, MIXRT_ATTR_STRING);
    a->s = s;
    a->s_len = strlen(s);
}
static void attr_ints(const char *name, int64_t *v, size_t n) {
    struct mixrt_attr *a = attr(name, MIXRT_ATTR_INTS);
    a->ints = v;
    a->n = n;
}
static void attr_strs(const char *name, const char **v, size_t n) {
    struct mixrt_attr *a = attr(name, MIXRT_ATTR_STRINGS);
    a->strings = v;
    a->n = n;
}

static mixrt_status run(void) {
    mixrt_kernel_fn fn;
    mixrt_status st = mixrt_ref_find(ctx, N, &fn);
    if (st != MIXRT_STATUS_OK) return st;
    struct mixrt_kernel_ctx k = {ctx,    G,      N,          N->opset,   n_in, in, in_seq,
                                 n_out,  out,    out_seq,    out_is_seq, out_wanted, NULL};
    return fn(&k);
}

static void end(void) {
    for (int i = 0; i < MAX_IO; i++) {
        mixrt_tensor_release(ctx, &out[i]);
        mixrt_seq_release(ctx, &out_seq[i]);
    }
    mixrt_graph_destroy(G);
    G = NULL;
}

static struct mixrt_tensor mk(mixrt_dtype dt, int rank, const int64_t *dims, const double *v) {
    struct mixrt_tensor t;
    mixrt_tensor_init(ctx, &t, dt, rank, dims);
    size_t n = mixrt_tensor_numel(&t);
    for (size_t i = 0; v && i < n; i++) mixrt_store_f64(t.data, dt, i, v[i]);
    return t;
}

static struct mixrt_tensor mk_str(int rank, const int64_t *dims, const char **s) {
    struct mixrt_tensor t;
    mixrt_tensor_init(ctx, &t, MIXRT_DTYPE_STRING, rank, dims);
    struct mixrt_string *e = t.data;
    for (size_t i = 0; i < mixrt_tensor_numel(&t); i++) {
        e[i].len = strlen(s[i]);
        e[i].ptr = mixrt_alloc(ctx, e[i].len + 1);
        memcpy(e[i].ptr, s[i], e[i].len + 1);
    }
    return t;
}

static bool close_to(double a, double b, double tol) { return fabs(a - b) <= tol * (1 + fabs(b)); }

/* ---- Einsum ---- */

static void einsum_case(const char *eq, int nops, struct mixrt_tensor *ops, const double *want, int want_rank,
                        const int64_t *want_dims) {
    begin("Einsum", 12, nops, 1);
    attr_str("equation", eq);
    for (int i = 0; i < nops; i++) in[i] = &ops[i];
    mixrt_status st = run();
    TU_CHECK(st == MIXRT_STATUS_OK, "Einsum '%s': %s", eq, mixrt_context_last_error(ctx));
    if (st == MIXRT_STATUS_OK) {
        TU_CHECK(out[0].rank == want_rank, "Einsum '%s': rank %d, want %d", eq, out[0].rank, want_rank);
        for (int i = 0; i < want_rank && i < out[0].rank; i++)
            TU_CHECK(out[0].dims[i] == want_dims[i], "Einsum '%s': dim %d is %lld, want %lld", eq, i,
                     (long long)out[0].dims[i], (long long)want_dims[i]);
        size_t n = mixrt_tensor_numel(&out[0]), bad = 0;
        for (size_t i = 0; i < n; i++)
            if (!close_to(mixrt_load_f64(out[0].data, out[0].dtype, i), want[i], 1e-12)) bad++;
        TU_CHECK(bad == 0, "Einsum '%s': %zu of %zu values differ", eq, bad, n);
    }
    end();
}

static void test_einsum(void) {
    double av[24], bv[36], cv[24];
    for (int i = 0; i < 36; i++) bv[i] = (double)((i * 7) % 11) - 5;
    for (int i = 0; i < 24; i++) av[i] = (double)((i * 5) % 9) - 4, cv[i] = 0.5 * i - 3;

    /* Broadcast batch matmul: A [2,1,2,3] '...ij', B [3,3,4] '...jk' -> [2,3,2,4]. */
    {
        int64_t da[4] = {2, 1, 2, 3}, db[3] = {3, 3, 4}, dw[4] = {2, 3, 2, 4};
        struct mixrt_tensor ops[2] = {mk(MIXRT_DTYPE_F32, 4, da, av), mk(MIXRT_DTYPE_F32, 3, db, bv)};
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
        mixrt_tensor_release(ctx, &ops[0]);
        mixrt_tensor_release(ctx, &ops[1]);
    }
    /* Diagonal, trace (implicit: no free label), three operands, implicit transpose and outer. */
    {
        int64_t d[2] = {4, 4};
        struct mixrt_tensor m = mk(MIXRT_DTYPE_F64, 2, d, bv);
        double diag[4], tr = 0;
        for (int i = 0; i < 4; i++) diag[i] = bv[i * 5], tr += bv[i * 5];
        int64_t d4[1] = {4};
        einsum_case("ii->i", 1, &m, diag, 1, d4);
        einsum_case("ii", 1, &m, &tr, 0, NULL);
        double tt[16];
        for (int i = 0; i < 4; i++)
            for (int j = 0; j < 4; j++) tt[i * 4 + j] = bv[j * 4 + i];
        einsum_case("ba", 1, &m, tt, 2, d);
        mixrt_tensor_release(ctx, &m);
    }
    {
        int64_t d1[2] = {2, 3}, d2[2] = {3, 4}, d3[2] = {4, 2}, dw[2] = {2, 2};
        struct mixrt_tensor ops[3] = {mk(MIXRT_DTYPE_F64, 2, d1, av), mk(MIXRT_DTYPE_F64, 2, d2, bv),
                                      mk(MIXRT_DTYPE_F64, 2, d3, cv)};
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
        for (int i = 0; i < 3; i++) mixrt_tensor_release(ctx, &ops[i]);
    }
    {
        int64_t d1[1] = {3}, d2[1] = {2}, dw[2] = {2, 3};
        struct mixrt_tensor ops[2] = {mk(MIXRT_DTYPE_BF16, 1, d1, (double[]){1, 2, 3}),
                                      mk(MIXRT_DTYPE_BF16, 1, d2, (double[]){-1, 0.5})};
        double want[6] = {-1, -2, -3, 0.5, 1, 1.5};
        einsum_case("j,i", 2, ops, want, 2, dw); /* implicit output 'ij' */
        mixrt_tensor_release(ctx, &ops[0]);
        mixrt_tensor_release(ctx, &ops[1]);
    }
    /* Integers stay exact beyond 2^53. */
    {
        int64_t d[1] = {2};
        struct mixrt_tensor a, b;
        mixrt_tensor_init(ctx, &a, MIXRT_DTYPE_I64, 1, d);
        mixrt_tensor_init(ctx, &b, MIXRT_DTYPE_I64, 1, d);
        ((int64_t *)a.data)[0] = ((int64_t)1 << 53) + 1, ((int64_t *)a.data)[1] = 2;
        ((int64_t *)b.data)[0] = 1, ((int64_t *)b.data)[1] = 3;
        begin("Einsum", 12, 2, 1);
        attr_str("equation", "i,i->");
        in[0] = &a, in[1] = &b;
        TU_CHECK(run() == MIXRT_STATUS_OK, "Einsum i64: %s", mixrt_context_last_error(ctx));
        TU_CHECK(out[0].dtype == MIXRT_DTYPE_I64 && out[0].rank == 0 &&
                     ((int64_t *)out[0].data)[0] == ((int64_t)1 << 53) + 7,
                 "Einsum i64 inner product is not exact");
        end();
        mixrt_tensor_release(ctx, &a);
        mixrt_tensor_release(ctx, &b);
    }
    /* Zero-size reduction gives zeros; malformed equations are errors. */
    {
        int64_t d1[2] = {2, 0}, d2[2] = {0, 3}, dw[2] = {2, 3};
        struct mixrt_tensor ops[2] = {mk(MIXRT_DTYPE_F32, 2, d1, NULL), mk(MIXRT_DTYPE_F32, 2, d2, NULL)};
        double want[6] = {0};
        einsum_case("ij,jk->ik", 2, ops, want, 2, dw);
        static const char *bad[] = {"ij->ik", "ijk,jk", "i.j,jk", "ij,jk->ii", "ij,jk->...ik", "i-j,jk", "ij,jk,kl", "ij"};
        for (size_t c = 0; c < sizeof(bad) / sizeof(bad[0]); c++) {
            begin("Einsum", 12, 2, 1);
            attr_str("equation", bad[c]);
            in[0] = &ops[0], in[1] = &ops[1];
            if (c == 0) n_in = 1, N->n_inputs = 1; /* one operand: 'k' is not an input label */
            mixrt_status st = run();
            TU_CHECK(st != MIXRT_STATUS_OK, "Einsum '%s' should fail", bad[c]);
            TU_CHECK(strstr(mixrt_context_last_error(ctx), "Einsum node 'n0'") != NULL, "message: %s",
                     mixrt_context_last_error(ctx));
            end();
        }
        mixrt_tensor_release(ctx, &ops[0]);
        mixrt_tensor_release(ctx, &ops[1]);
        /* a real size clash */
        int64_t e1[2] = {2, 3}, e2[2] = {4, 3};
        struct mixrt_tensor x = mk(MIXRT_DTYPE_F32, 2, e1, NULL), y = mk(MIXRT_DTYPE_F32, 2, e2, NULL);
        begin("Einsum", 12, 2, 1);
        attr_str("equation", "ij,jk->ik");
        in[0] = &x, in[1] = &y;
        TU_CHECK(run() == MIXRT_STATUS_INVALID_ARGUMENT, "Einsum size clash should fail");
        end();
        mixrt_tensor_release(ctx, &x);
        mixrt_tensor_release(ctx, &y);
    }
}

/* ---- NonMaxSuppression ---- */

static void test_nms(void) {
    /* One batch, two classes, four boxes (corners in mixed order). */
    double boxes[16] = {0, 0, 1, 1, 1, 1, 0.1, 0.1, 0, 10, 1, 11, 0, 100, 1, 101};
    double scores[8] = {0.9, 0.8, 0.7, 0.1, 0.5, 0.5, 0.6, 0.5};
    int64_t db[3] = {1, 4, 4}, ds[3] = {1, 2, 4}, d1[1] = {1};
    struct mixrt_tensor b = mk(MIXRT_DTYPE_F32, 3, db, boxes), s = mk(MIXRT_DTYPE_F16, 3, ds, scores);
    struct mixrt_tensor mx = mk(MIXRT_DTYPE_I64, 1, d1, (double[]){3});
    struct mixrt_tensor iou = mk(MIXRT_DTYPE_F32, 0, NULL, (double[]){0.5});
    struct mixrt_tensor thr = mk(MIXRT_DTYPE_F32, 0, NULL, (double[]){0.2});
    begin("NonMaxSuppression", 11, 5, 1);
    in[0] = &b, in[1] = &s, in[2] = &mx, in[3] = &iou, in[4] = &thr;
    TU_CHECK(run() == MIXRT_STATUS_OK, "NMS: %s", mixrt_context_last_error(ctx));
    /* class 0: 0 (0.9), 1 suppressed by 0 (IoU 0.81), 2 (0.7); 3 under threshold.
     * class 1: 2 (0.6), then ties at 0.5 by index: 0, 1 suppressed by 0 -> three picked: 2, 0, 3. */
    int64_t want[] = {0, 0, 0, 0, 0, 2, 0, 1, 2, 0, 1, 0, 0, 1, 3};
    TU_CHECK(out[0].dtype == MIXRT_DTYPE_I64 && out[0].rank == 2 && out[0].dims[0] == 5 && out[0].dims[1] == 3,
             "NMS output shape");
    if (out[0].dims[0] == 5) TU_CHECK(!memcmp(out[0].data, want, sizeof(want)), "NMS selection differs");
    end();
    /* No max_output_boxes_per_class: nothing selected, shape [0, 3]. */
    begin("NonMaxSuppression", 10, 2, 1);
    in[0] = &b, in[1] = &s;
    TU_CHECK(run() == MIXRT_STATUS_OK && out[0].rank == 2 && out[0].dims[0] == 0 && out[0].dims[1] == 3,
             "NMS without max_output: %s", mixrt_context_last_error(ctx));
    end();
    /* Bad iou threshold, bad shapes. */
    struct mixrt_tensor bad_iou = mk(MIXRT_DTYPE_F32, 0, NULL, (double[]){1.5});
    begin("NonMaxSuppression", 11, 4, 1);
    in[0] = &b, in[1] = &s, in[2] = &mx, in[3] = &bad_iou;
    TU_CHECK(run() == MIXRT_STATUS_INVALID_ARGUMENT, "NMS iou 1.5 should fail");
    end();
    begin("NonMaxSuppression", 11, 2, 1);
    in[0] = &s, in[1] = &b;
    TU_CHECK(run() != MIXRT_STATUS_OK, "NMS swapped inputs should fail");
    end();
    mixrt_tensor_release(ctx, &b);
    mixrt_tensor_release(ctx, &s);
    mixrt_tensor_release(ctx, &mx);
    mixrt_tensor_release(ctx, &iou);
    mixrt_tensor_release(ctx, &thr);
    mixrt_tensor_release(ctx, &bad_iou);
}

/* ---- RoiAlign ---- */

static void test_roi_align(void) {
    double img[2 * 16];
    for (int i = 0; i < 16; i++) img[i] = 3.0, img[16 + i] = (double)i; /* channel 0 constant, 1 a ramp */
    int64_t dx[4] = {1, 2, 4, 4}, dr[2] = {2, 4}, di[1] = {2};
    struct mixrt_tensor x = mk(MIXRT_DTYPE_BF16, 4, dx, img);
    struct mixrt_tensor rois = mk(MIXRT_DTYPE_BF16, 2, dr, (double[]){0.5, 0.5, 2.5, 2.5, 0, 0, 3, 3});
    struct mixrt_tensor idx = mk(MIXRT_DTYPE_I64, 1, di, (double[]){0, 0});
    for (int opset = 10; opset <= 16; opset += 6)
        for (int m = 0; m < 2; m++) {
            begin("RoiAlign", opset, 3, 1);
            in[0] = &x, in[1] = &rois, in[2] = &idx;
            attr_int("output_height", 2);
            attr_int("output_width", 2);
            attr_int("sampling_ratio", 2);
            if (m) attr_str("mode", "max");
            mixrt_status st = run();
            TU_CHECK(st == MIXRT_STATUS_OK, "RoiAlign: %s", mixrt_context_last_error(ctx));
            if (st == MIXRT_STATUS_OK) {
                TU_CHECK(out[0].dtype == MIXRT_DTYPE_BF16 && out[0].rank == 4 && out[0].dims[0] == 2 &&
                             out[0].dims[1] == 2 && out[0].dims[2] == 2 && out[0].dims[3] == 2,
                         "RoiAlign shape");
                /* avg over a constant channel inside the map is the constant */
                if (!m)
                    for (int r = 0; r < 2; r++)
                        for (int p = 0; p < 4; p++)
                            TU_CHECK(mixrt_load_f64(out[0].data, out[0].dtype, (size_t)(r * 8 + p)) == 3.0,
                                     "RoiAlign avg of a constant (opset %d)", opset);
                /* ramp: value = 4y + x; opset 10 (no half-pixel shift) samples ROI 0's first
                 * bin at y = x = 0.75, 1.25 (mean 1) -> 5; opset 16 shifts by -0.5 -> 2.5 */
                double v = mixrt_load_f64(out[0].data, out[0].dtype, 4);
                if (!m) TU_CHECK(v == (opset == 10 ? 5.0 : 2.5), "RoiAlign ramp opset %d: %g", opset, v);
            }
            end();
        }
    struct mixrt_tensor bad = mk(MIXRT_DTYPE_I64, 1, di, (double[]){0, 1});
    begin("RoiAlign", 16, 3, 1);
    in[0] = &x, in[1] = &rois, in[2] = &bad;
    TU_CHECK(run() == MIXRT_STATUS_INVALID_ARGUMENT, "RoiAlign batch index 1 of 1 should fail");
    end();
    mixrt_tensor_release(ctx, &bad);
    mixrt_tensor_release(ctx, &x);
    mixrt_tensor_release(ctx, &rois);
    mixrt_tensor_release(ctx, &idx);
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
        begin("RandomNormal", 1, 0, 1);
        if (rep == 2) N->name = "other";
        attr_ints("shape", shape, 2);
        attr_int("dtype", MIXRT_DTYPE_F64);
        attr_float("mean", 2.0f);
        attr_float("scale", 3.0f);
        TU_CHECK(run() == MIXRT_STATUS_OK, "RandomNormal: %s", mixrt_context_last_error(ctx));
        stats(&out[0], &mean, &sd, &lo, &hi);
        TU_CHECK(fabs(mean - 2) < 0.15 && fabs(sd - 3) < 0.15, "RandomNormal mean %g sd %g", mean, sd);
        double v = ((double *)out[0].data)[0];
        if (rep == 0) first = v;
        else if (rep == 1) TU_CHECK(v == first, "RandomNormal is not deterministic per node");
        else TU_CHECK(v != first, "RandomNormal: different nodes draw the same values");
        end();
    }
    /* RandomUniformLike bf16 from an i32 input's shape, with seed. */
    int64_t d[1] = {5000};
    struct mixrt_tensor x = mk(MIXRT_DTYPE_I32, 1, d, NULL);
    begin("RandomUniformLike", 1, 1, 1);
    in[0] = &x;
    attr_int("dtype", MIXRT_DTYPE_BF16);
    attr_float("low", -1.0f);
    attr_float("high", 3.0f);
    attr_float("seed", 7.0f);
    TU_CHECK(run() == MIXRT_STATUS_OK, "RandomUniformLike: %s", mixrt_context_last_error(ctx));
    stats(&out[0], &mean, &sd, &lo, &hi);
    TU_CHECK(out[0].dtype == MIXRT_DTYPE_BF16 && out[0].dims[0] == 5000 && lo >= -1 && hi <= 3 &&
                 fabs(mean - 1) < 0.1,
             "RandomUniformLike range [%g, %g] mean %g", lo, hi, mean);
    end();
    /* without dtype an integer input is an error */
    begin("RandomNormalLike", 1, 1, 1);
    in[0] = &x;
    TU_CHECK(run() == MIXRT_STATUS_UNSUPPORTED_DTYPE, "RandomNormalLike of i32 without dtype should fail");
    end();
    mixrt_tensor_release(ctx, &x);

    /* Bernoulli: p 0 and 1 are certain; p 0.3 averages 0.3. */
    double p[3000];
    for (int i = 0; i < 3000; i++) p[i] = i < 1000 ? 0 : i < 2000 ? 1 : 0.3;
    int64_t dp[1] = {3000};
    struct mixrt_tensor pt = mk(MIXRT_DTYPE_F16, 1, dp, p);
    begin("Bernoulli", 15, 1, 1);
    in[0] = &pt;
    attr_int("dtype", MIXRT_DTYPE_BOOL);
    TU_CHECK(run() == MIXRT_STATUS_OK, "Bernoulli: %s", mixrt_context_last_error(ctx));
    int ones[3] = {0};
    for (int i = 0; i < 3000; i++) ones[i / 1000] += ((uint8_t *)out[0].data)[i];
    TU_CHECK(out[0].dtype == MIXRT_DTYPE_BOOL && ones[0] == 0 && ones[1] == 1000 && abs(ones[2] - 300) < 60,
             "Bernoulli counts %d %d %d", ones[0], ones[1], ones[2]);
    end();
    mixrt_tensor_release(ctx, &pt);

    /* Multinomial: log-probabilities (0.2, 0.8, 0): class 2 never drawn. */
    int64_t dl[2] = {2, 3};
    struct mixrt_tensor lp = mk(MIXRT_DTYPE_F32, 2, dl, (double[]){log(0.2), log(0.8), -INFINITY, 5, 5, 5});
    begin("Multinomial", 7, 1, 1);
    in[0] = &lp;
    attr_int("sample_size", 4000);
    attr_int("dtype", MIXRT_DTYPE_I64);
    TU_CHECK(run() == MIXRT_STATUS_OK, "Multinomial: %s", mixrt_context_last_error(ctx));
    int cnt[2][3] = {{0}};
    for (int b = 0; b < 2; b++)
        for (int i = 0; i < 4000; i++) {
            int64_t c = ((int64_t *)out[0].data)[b * 4000 + i];
            if (c >= 0 && c < 3) cnt[b][c]++;
        }
    TU_CHECK(out[0].dims[0] == 2 && out[0].dims[1] == 4000 && cnt[0][2] == 0 && abs(cnt[0][1] - 3200) < 150 &&
                 abs(cnt[1][0] - 1333) < 150 && abs(cnt[1][2] - 1333) < 150,
             "Multinomial counts %d %d %d / %d %d %d", cnt[0][0], cnt[0][1], cnt[0][2], cnt[1][0], cnt[1][1],
             cnt[1][2]);
    end();
    mixrt_tensor_release(ctx, &lp);
}

/* ---- Constant ---- */

static void test_constant(void) {
    int64_t ints[3] = {1, -2, 3};
    begin("Constant", 13, 0, 1);
    attr_ints("value_ints", ints, 3);
    TU_CHECK(run() == MIXRT_STATUS_OK && out[0].dtype == MIXRT_DTYPE_I64 && out[0].rank == 1 &&
                 out[0].dims[0] == 3 && ((int64_t *)out[0].data)[1] == -2,
             "Constant value_ints");
    end();
    const char *strs[2] = {"ab", ""};
    begin("Constant", 13, 0, 1);
    attr_strs("value_strings", strs, 2);
    TU_CHECK(run() == MIXRT_STATUS_OK && out[0].dtype == MIXRT_DTYPE_STRING && out[0].dims[0] == 2 &&
                 !strcmp(((struct mixrt_string *)out[0].data)[0].ptr, "ab") &&
                 ((struct mixrt_string *)out[0].data)[1].len == 0,
             "Constant value_strings");
    end();
    int64_t d[2] = {2, 2};
    struct mixrt_tensor t = mk(MIXRT_DTYPE_F16, 2, d, (double[]){1, 2, 3, 4});
    begin("Constant", 9, 0, 1);
    attr("value", MIXRT_ATTR_TENSOR)->t = &t;
    TU_CHECK(run() == MIXRT_STATUS_OK && out[0].dtype == MIXRT_DTYPE_F16 &&
                 mixrt_load_f64(out[0].data, out[0].dtype, 3) == 4,
             "Constant value");
    end();
    begin("Constant", 13, 0, 1);
    attr("value", MIXRT_ATTR_TENSOR)->t = &t;
    attr_float("value_float", 1.0f);
    TU_CHECK(run() == MIXRT_STATUS_INVALID_MODEL, "Constant with two values should fail");
    end();
    mixrt_tensor_release(ctx, &t);
}

/* ---- sequences and strings ---- */

static void test_sequences(void) {
    const char *words[10] = {"a", "bb", "ccc", "dddd", "e", "ff", "ggg", "h", "ii", "j"};
    int64_t d[2] = {2, 5};
    struct mixrt_tensor x = mk_str(2, d, words);
    struct mixrt_tensor two = mk(MIXRT_DTYPE_I64, 0, NULL, (double[]){2});
    /* SplitToSequence of strings, scalar split 2 along axis 1 -> [2,2], [2,2], [2,1]. */
    begin("SplitToSequence", 11, 2, 1);
    in[0] = &x, in[1] = &two;
    attr_int("axis", -1);
    TU_CHECK(run() == MIXRT_STATUS_OK && out_is_seq[0] && out_seq[0].n == 3, "SplitToSequence: %s",
             mixrt_context_last_error(ctx));
    struct mixrt_seq parts = out_seq[0];
    memset(&out_seq[0], 0, sizeof(out_seq[0])); /* keep it past end() */
    end();
    if (parts.n == 3) {
        TU_CHECK(parts.items[2].dims[1] == 1 && !strcmp(((struct mixrt_string *)parts.items[2].data)[1].ptr, "j"),
                 "SplitToSequence last part");
        /* ConcatFromSequence along axis 1 gives x back; stacking (new_axis) unequal parts fails. */
        begin("ConcatFromSequence", 11, 1, 1);
        in_seq[0] = &parts;
        attr_int("axis", 1);
        TU_CHECK(run() == MIXRT_STATUS_OK && out[0].dims[0] == 2 && out[0].dims[1] == 5, "ConcatFromSequence: %s",
                 mixrt_context_last_error(ctx));
        for (int i = 0; i < 10 && out[0].data; i++)
            TU_CHECK(!strcmp(((struct mixrt_string *)out[0].data)[i].ptr, words[i]), "ConcatFromSequence elem %d",
                     i);
        end();
        begin("ConcatFromSequence", 11, 1, 1);
        in_seq[0] = &parts;
        attr_int("axis", -1);
        attr_int("new_axis", 1);
        TU_CHECK(run() == MIXRT_STATUS_INVALID_ARGUMENT, "ConcatFromSequence new_axis of unequal parts should fail");
        end();
        /* SequenceInsert at -1 (before the last), out of range at 4; SequenceErase -3 (first). */
        struct mixrt_tensor pos = mk(MIXRT_DTYPE_I32, 0, NULL, (double[]){-1}), far = mk(MIXRT_DTYPE_I64, 1, (int64_t[]){1}, (double[]){4});
        begin("SequenceInsert", 11, 3, 1);
        in_seq[0] = &parts, in[1] = &x, in[2] = &pos;
        TU_CHECK(run() == MIXRT_STATUS_OK && out_seq[0].n == 4 && out_seq[0].items[2].dims[1] == 5 &&
                     out_seq[0].items[3].dims[1] == 1,
                 "SequenceInsert at -1: %s", mixrt_context_last_error(ctx));
        end();
        begin("SequenceInsert", 11, 3, 1);
        in_seq[0] = &parts, in[1] = &x, in[2] = &far;
        TU_CHECK(run() == MIXRT_STATUS_INVALID_ARGUMENT, "SequenceInsert at 4 of 3 should fail");
        end();
        struct mixrt_tensor m3 = mk(MIXRT_DTYPE_I64, 0, NULL, (double[]){-3});
        begin("SequenceErase", 11, 2, 1);
        in_seq[0] = &parts, in[1] = &m3;
        TU_CHECK(run() == MIXRT_STATUS_OK && out_seq[0].n == 2 && out_seq[0].items[1].dims[1] == 1,
                 "SequenceErase -3: %s", mixrt_context_last_error(ctx));
        end();
        begin("SequenceAt", 11, 2, 1);
        in_seq[0] = &parts, in[1] = &far;
        TU_CHECK(run() == MIXRT_STATUS_INVALID_ARGUMENT, "SequenceAt 4 of 3 should fail");
        end();
        begin("SequenceInsert", 11, 2, 1);
        in_seq[0] = &parts, in[1] = &two; /* i64 tensor into a string sequence */
        TU_CHECK(run() == MIXRT_STATUS_INVALID_MODEL, "SequenceInsert of another dtype should fail");
        end();
        mixrt_tensor_release(ctx, &pos);
        mixrt_tensor_release(ctx, &far);
        mixrt_tensor_release(ctx, &m3);
    }
    mixrt_seq_release(ctx, &parts);
    /* An empty sequence cannot be concatenated. */
    struct mixrt_seq empty = {MIXRT_DTYPE_F32, 0, 0, NULL};
    begin("ConcatFromSequence", 11, 1, 1);
    in_seq[0] = &empty;
    attr_int("axis", 0);
    TU_CHECK(run() == MIXRT_STATUS_INVALID_ARGUMENT, "ConcatFromSequence of an empty sequence should fail");
    end();
    /* SplitToSequence without split, keepdims 0: squeezed slices. */
    begin("SplitToSequence", 11, 1, 1);
    in[0] = &x;
    attr_int("keepdims", 0);
    TU_CHECK(run() == MIXRT_STATUS_OK && out_seq[0].n == 2 && out_seq[0].items[0].rank == 1 &&
                 out_seq[0].items[0].dims[0] == 5,
             "SplitToSequence keepdims 0: %s", mixrt_context_last_error(ctx));
    end();
    mixrt_tensor_release(ctx, &two);

    /* StringNormalizer [1, C], case-insensitive stopwords, all dropped -> [1, 1] "". */
    const char *stop[2] = {"A", "BB"};
    int64_t d2[2] = {1, 2};
    struct mixrt_tensor s2 = mk_str(2, d2, words);
    begin("StringNormalizer", 10, 1, 1);
    in[0] = &s2;
    attr_strs("stopwords", stop, 2);
    TU_CHECK(run() == MIXRT_STATUS_OK && out[0].rank == 2 && out[0].dims[0] == 1 && out[0].dims[1] == 1 &&
                 ((struct mixrt_string *)out[0].data)[0].len == 0,
             "StringNormalizer all dropped: %s", mixrt_context_last_error(ctx));
    end();
    begin("StringNormalizer", 10, 1, 1);
    in[0] = &x; /* [2, 5] is not accepted */
    TU_CHECK(run() == MIXRT_STATUS_INVALID_ARGUMENT, "StringNormalizer [2,5] should fail");
    end();
    mixrt_tensor_release(ctx, &s2);
    mixrt_tensor_release(ctx, &x);
}

/* ---- allocation failures: every failing allocation gives an error and no leak ---- */

static void test_fault_injection(void) {
    int64_t da[3] = {2, 3, 4}, db[2] = {4, 5}, dx[4] = {1, 2, 4, 4}, dr[2] = {1, 4}, di[1] = {1};
    struct mixrt_tensor a = mk(MIXRT_DTYPE_F32, 3, da, NULL), b = mk(MIXRT_DTYPE_F32, 2, db, NULL);
    struct mixrt_tensor x = mk(MIXRT_DTYPE_F32, 4, dx, NULL);
    struct mixrt_tensor rois = mk(MIXRT_DTYPE_F32, 2, dr, (double[]){0, 0, 3, 3});
    struct mixrt_tensor idx = mk(MIXRT_DTYPE_I64, 1, di, NULL);
    const char *words[3] = {"x", "Yy", "zZz"};
    int64_t dw[1] = {3};
    struct mixrt_tensor w = mk_str(1, dw, words);
    for (int op = 0; op < 4; op++) {
        int succeeded = 0;
        for (long n = 0; n < 200 && !succeeded; n++) {
            size_t before = mixrt_context_bytes_in_use(ctx);
            switch (op) {
            case 0:
                begin("Einsum", 12, 2, 1);
                attr_str("equation", "bij,jk->bik");
                in[0] = &a, in[1] = &b;
                break;
            case 1:
                begin("RoiAlign", 16, 3, 1);
                in[0] = &x, in[1] = &rois, in[2] = &idx;
                break;
            case 2:
                begin("StringNormalizer", 10, 1, 1);
                attr_str("case_change_action", "UPPER");
                in[0] = &w;
                break;
            default:
                begin("SplitToSequence", 11, 1, 1);
                in[0] = &w;
                break;
            }
            mixrt_context_fail_alloc_after(ctx, n, 1);
            mixrt_status st = run();
            mixrt_context_fail_alloc_after(ctx, -1, 0);
            if (st == MIXRT_STATUS_OK) succeeded = 1;
            else TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY, "op %d fail-after %ld: status %d", op, n, (int)st);
            end();
            TU_CHECK(mixrt_context_bytes_in_use(ctx) == before, "op %d fail-after %ld leaks %zu bytes", op, n,
                     mixrt_context_bytes_in_use(ctx) - before);
        }
        TU_CHECK(succeeded, "op %d never succeeded", op);
    }
    mixrt_tensor_release(ctx, &a);
    mixrt_tensor_release(ctx, &b);
    mixrt_tensor_release(ctx, &x);
    mixrt_tensor_release(ctx, &rois);
    mixrt_tensor_release(ctx, &idx);
    mixrt_tensor_release(ctx, &w);
}

int main(void) {
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    size_t base = mixrt_context_bytes_in_use(ctx);
    test_einsum();
    test_nms();
    test_roi_align();
    test_random();
    test_constant();
    test_sequences();
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == base, "leaked %zu bytes", mixrt_context_bytes_in_use(ctx) - base);
    test_fault_injection();
    mixrt_context_destroy(ctx);
    return tu_finish("test_ref_misc");
}
