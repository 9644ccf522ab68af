/* test_ref_quant.c - unit tests for the quantization reference kernels beyond the ONNX node
 * suite: rounding ties, saturation and NaN, blocked and int16 quantization (opset 21), 16-bit
 * scales, N-D broadcast MatMulInteger/QLinearMatMul with per-row/column parameters, 1-D/2-D/3-D
 * integer convolutions with groups, strides, dilations, pads and auto_pad checked against a
 * naive explicitly-padded model written here, named errors, and leak-free fault injection. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/ref.h"
#include "testutil.h"

#define MAX_IO 10

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
    memset(out, 0, sizeof(out));
    memset(out_seq, 0, sizeof(out_seq));
    memset(out_is_seq, 0, sizeof(out_is_seq));
    for (int i = 0; i < MAX_IO; i++) out_wanted[i] = true;
    n_in = nin;
    n_out = nout;
    if (mixrt_graph_create(ctx, NULL, &G) != MIXRT_STATUS_OK) return;
    int ni = mixrt_graph_add_node(G, "q0", op, "");
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
}

static void attr_int(const char *name, int64_t v) {
    struct mixrt_attr *a = &A[N->n_attrs++];
    a->name = name;
    a->type = MIXRT_ATTR_INT;
    a->i = v;
}
static void attr_ints(const char *name, int64_t *v, size_t n) {
    struct mixrt_attr *a = &A[N->n_attrs++];
    a->name = name;
    a->type = MIXRT_ATTR_INTS;
    a->ints = v;
    a->n = n;
}
static void attr_str(const char *name, const char *s) {
    struct mixrt_attr *a = &A[N->n_attrs++];
    a->name = name;
    a->type = MIXRT_ATTR_STRING;
    a->s = s;
    a->s_len = strlen(s);
}

static mixrt_status run(void) {
    mixrt_kernel_fn fn;
    mixrt_status st = mixrt_ref_find(ctx, N, &fn);
    if (st != MIXRT_STATUS_OK) return st;
    struct mixrt_kernel_ctx k = {ctx,   G,   N,       N->opset,   n_in,       in,  in_seq,
                                 n_out, out, out_seq, out_is_seq, out_wanted, NULL};
    return fn(&k);
}

static void end(void) {
    for (int i = 0; i < MAX_IO; i++) mixrt_tensor_release(ctx, &out[i]);
    mixrt_graph_destroy(G);
    G = NULL;
}

static struct mixrt_tensor mkf(mixrt_dtype dt, int rank, const int64_t *dims, const double *v) {
    struct mixrt_tensor t;
    mixrt_tensor_init(ctx, &t, dt, rank, dims);
    for (size_t i = 0; v && i < mixrt_tensor_numel(&t); i++) mixrt_store_f64(t.data, dt, i, v[i]);
    return t;
}
static struct mixrt_tensor mki(mixrt_dtype dt, int rank, const int64_t *dims, const int64_t *v) {
    struct mixrt_tensor t;
    mixrt_tensor_init(ctx, &t, dt, rank, dims);
    for (size_t i = 0; v && i < mixrt_tensor_numel(&t); i++) mixrt_store_i64(t.data, dt, i, v[i]);
    return t;
}
static void rand_ints(int64_t *v, size_t n, int64_t lo, int64_t hi) {
    for (size_t i = 0; i < n; i++) v[i] = lo + (int64_t)(tu_rand() % (uint64_t)(hi - lo + 1));
}
static void release(struct mixrt_tensor *t, int n) {
    for (int i = 0; i < n; i++) mixrt_tensor_release(ctx, &t[i]);
}

/* Compares out[0] element-wise with want (integers). */
static void check_ints(const char *what, const int64_t *want, size_t n) {
    TU_CHECK(mixrt_tensor_numel(&out[0]) == n, "%s: %zu elements, want %zu", what, mixrt_tensor_numel(&out[0]), n);
    if (mixrt_tensor_numel(&out[0]) != n) return;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (mixrt_load_i64(out[0].data, out[0].dtype, i) != want[i] && !bad++) first = i;
    TU_CHECK(bad == 0, "%s: %zu of %zu differ (first at %zu: %lld, want %lld)", what, bad, n, first,
             bad ? (long long)mixrt_load_i64(out[0].data, out[0].dtype, first) : 0LL, (long long)want[first]);
}

static void expect_error(const char *what, mixrt_status want, const char *needle) {
    mixrt_status st = run();
    TU_CHECK(st == want, "%s: status %d, want %d (%s)", what, (int)st, (int)want, mixrt_context_last_error(ctx));
    if (needle)
        TU_CHECK(strstr(mixrt_context_last_error(ctx), needle) != NULL, "%s: message '%s' lacks '%s'", what,
                 mixrt_context_last_error(ctx), needle);
}

/* ---- Quantize / Dequantize ---- */

static void test_quantize(void) {
    /* Ties to even, saturation, NaN to the zero point, -0.5 to 0. */
    {
        int64_t d[1] = {10};
        double xv[10] = {0.5, 1.5, 2.5, -0.5, -1.5, 300, -300, NAN, INFINITY, 3.49};
        int64_t want[10] = {128, 130, 130, 128, 126, 255, 0, 128, 255, 131};
        struct mixrt_tensor t[3] = {mkf(MIXRT_DTYPE_F32, 1, d, xv), mkf(MIXRT_DTYPE_F32, 0, NULL, (double[]){1.0}),
                                    mki(MIXRT_DTYPE_U8, 0, NULL, (int64_t[]){128})};
        begin("QuantizeLinear", 13, 3, 1);
        for (int i = 0; i < 3; i++) in[i] = &t[i];
        TU_CHECK(run() == MIXRT_STATUS_OK, "quantize ties: %s", mixrt_context_last_error(ctx));
        TU_CHECK(out[0].dtype == MIXRT_DTYPE_U8, "quantize ties: dtype %d", (int)out[0].dtype);
        check_ints("quantize ties", want, 10);
        end();
        /* No zero point: uint8 with 0. int32 x divides exactly in double. */
        struct mixrt_tensor xi = mki(MIXRT_DTYPE_I32, 1, (int64_t[]){4}, (int64_t[]){-7, 5, 7, 1000});
        struct mixrt_tensor s2 = mkf(MIXRT_DTYPE_F32, 0, NULL, (double[]){2.0});
        begin("QuantizeLinear", 10, 2, 1);
        in[0] = &xi, in[1] = &s2;
        TU_CHECK(run() == MIXRT_STATUS_OK, "quantize int32: %s", mixrt_context_last_error(ctx));
        check_ints("quantize int32 to u8", (int64_t[]){0, 2, 4, 255}, 4);
        end();
        release(&xi, 1), release(&s2, 1);
        release(t, 3);
    }
    /* Per-axis int8 on axis -2 with bf16 scales; opset 10 rejects per-axis. */
    {
        int64_t dx[3] = {2, 3, 2}, ds[1] = {3};
        double xv[12];
        for (int i = 0; i < 12; i++) xv[i] = (i - 6) * 9.75;
        double sv[3] = {0.5, 2.0, 0.125};
        int64_t zv[3] = {-3, 0, 5}, want[12];
        for (int i = 0; i < 12; i++) {
            int c = (i / 2) % 3;
            double q = nearbyint((float)xv[i] / (float)sv[c]) + zv[c];
            want[i] = q < -128 ? -128 : q > 127 ? 127 : (int64_t)q;
        }
        struct mixrt_tensor t[3] = {mkf(MIXRT_DTYPE_F32, 3, dx, xv), mkf(MIXRT_DTYPE_BF16, 1, ds, sv),
                                    mki(MIXRT_DTYPE_I8, 1, ds, zv)};
        begin("QuantizeLinear", 19, 3, 1);
        attr_int("axis", -2);
        for (int i = 0; i < 3; i++) in[i] = &t[i];
        TU_CHECK(run() == MIXRT_STATUS_OK, "quantize axis: %s", mixrt_context_last_error(ctx));
        check_ints("quantize per-axis int8", want, 12);
        end();
        begin("QuantizeLinear", 10, 3, 1);
        for (int i = 0; i < 3; i++) in[i] = &t[i];
        expect_error("per-axis at opset 10", MIXRT_STATUS_INVALID_MODEL, "opset 13");
        end();
        begin("QuantizeLinear", 13, 3, 1);
        attr_int("axis", 0);
        for (int i = 0; i < 3; i++) in[i] = &t[i];
        expect_error("per-axis length", MIXRT_STATUS_INVALID_MODEL, "input #1 'x1'");
        end();
        begin("QuantizeLinear", 13, 3, 1);
        attr_int("axis", 3);
        for (int i = 0; i < 3; i++) in[i] = &t[i];
        expect_error("axis range", MIXRT_STATUS_INVALID_MODEL, "'axis'");
        end();
        release(t, 3);
    }
    /* Blocked (opset 21): x [2,5] axis 1 block 2 -> scale [2,3]; int16 output; the same at
     * opset 19 is refused, as is a scale of the wrong blocked shape. */
    {
        int64_t dx[2] = {2, 5}, ds[2] = {2, 3};
        double xv[10] = {100, -250, 7, 3e6, -12.5, 0.25, 1, 2, 3, -4}, sv[6] = {0.5, 0.01, 4, 1, 0.5, 0.25};
        int64_t zv[6] = {10, -20, 0, 32767, -5, 1}, want[10];
        for (int r = 0; r < 2; r++)
            for (int c = 0; c < 5; c++) {
                int p = r * 3 + c / 2;
                double q = nearbyint((float)xv[r * 5 + c] / (float)sv[p]) + zv[p];
                want[r * 5 + c] = q < -32768 ? -32768 : q > 32767 ? 32767 : (int64_t)q;
            }
        struct mixrt_tensor t[3] = {mkf(MIXRT_DTYPE_F32, 2, dx, xv), mkf(MIXRT_DTYPE_F32, 2, ds, sv),
                                    mki(MIXRT_DTYPE_I16, 2, ds, zv)};
        begin("QuantizeLinear", 21, 3, 1);
        attr_int("axis", 1);
        attr_int("block_size", 2);
        for (int i = 0; i < 3; i++) in[i] = &t[i];
        TU_CHECK(run() == MIXRT_STATUS_OK, "quantize blocked: %s", mixrt_context_last_error(ctx));
        TU_CHECK(out[0].dtype == MIXRT_DTYPE_I16, "quantize blocked: dtype %d", (int)out[0].dtype);
        check_ints("quantize blocked int16", want, 10);
        end();
        /* Dequantize the same layout back: (q - zp) * scale into f32. */
        struct mixrt_tensor q = mki(MIXRT_DTYPE_I16, 2, dx, want);
        begin("DequantizeLinear", 21, 3, 1);
        attr_int("block_size", 2);
        in[0] = &q, in[1] = &t[1], in[2] = &t[2];
        TU_CHECK(run() == MIXRT_STATUS_OK, "dequantize blocked: %s", mixrt_context_last_error(ctx));
        size_t bad = 0;
        for (int i = 0; i < 10; i++) {
            int p = (i / 5) * 3 + (i % 5) / 2;
            if (mixrt_load_f64(out[0].data, out[0].dtype, (size_t)i) !=
                (float)((double)(want[i] - zv[p]) * (double)(float)sv[p]))
                bad++;
        }
        TU_CHECK(out[0].dtype == MIXRT_DTYPE_F32 && bad == 0, "dequantize blocked: %zu differ", bad);
        end();
        release(&q, 1);
        begin("QuantizeLinear", 19, 3, 1);
        attr_int("block_size", 2);
        for (int i = 0; i < 3; i++) in[i] = &t[i];
        expect_error("blocked at opset 19", MIXRT_STATUS_INVALID_MODEL, "opset 21");
        end();
        begin("QuantizeLinear", 21, 3, 1);
        attr_int("block_size", 3);
        for (int i = 0; i < 3; i++) in[i] = &t[i];
        expect_error("blocked shape", MIXRT_STATUS_INVALID_MODEL, "ceil(5 / block_size 3)");
        end();
        struct mixrt_tensor z8 = mki(MIXRT_DTYPE_I16, 0, NULL, (int64_t[]){0}),
                            s1 = mkf(MIXRT_DTYPE_F32, 0, NULL, (double[]){1});
        begin("QuantizeLinear", 19, 3, 1);
        in[0] = &t[0], in[1] = &s1, in[2] = &z8;
        expect_error("int16 at opset 19", MIXRT_STATUS_INVALID_MODEL, "opset 21");
        end();
        /* output_dtype without a zero point; disagreement with a zero point. */
        begin("QuantizeLinear", 21, 2, 1);
        attr_int("output_dtype", MIXRT_DTYPE_U16);
        in[0] = &t[0], in[1] = &s1;
        TU_CHECK(run() == MIXRT_STATUS_OK && out[0].dtype == MIXRT_DTYPE_U16, "output_dtype u16: %s",
                 mixrt_context_last_error(ctx));
        end();
        begin("QuantizeLinear", 21, 3, 1);
        attr_int("output_dtype", MIXRT_DTYPE_U8);
        in[0] = &t[0], in[1] = &s1, in[2] = &z8;
        expect_error("output_dtype mismatch", MIXRT_STATUS_INVALID_MODEL, "'output_dtype'");
        end();
        release(&z8, 1), release(&s1, 1);
        release(t, 3);
    }
    /* float8 and int4 are valid ONNX but unsupported here; a float zero point is invalid. */
    {
        struct mixrt_tensor x = mkf(MIXRT_DTYPE_F32, 1, (int64_t[]){2}, (double[]){1, 2}),
                            s = mkf(MIXRT_DTYPE_F32, 0, NULL, (double[]){1}), z;
        memset(&z, 0, sizeof(z));
        mixrt_tensor_init(ctx, &z, MIXRT_DTYPE_U8, 0, NULL);
        z.dtype = MIXRT_DTYPE_F8E4M3FN; /* same byte size, only the dtype matters */
        begin("QuantizeLinear", 19, 3, 1);
        attr_int("saturate", 1);
        in[0] = &x, in[1] = &s, in[2] = &z;
        expect_error("float8", MIXRT_STATUS_UNSUPPORTED_DTYPE, "float8");
        end();
        z.dtype = MIXRT_DTYPE_U8;
        begin("QuantizeLinear", 21, 2, 1);
        attr_int("output_dtype", MIXRT_DTYPE_I4);
        in[0] = &x, in[1] = &s;
        expect_error("int4", MIXRT_STATUS_UNSUPPORTED_DTYPE, "sub-byte");
        end();
        begin("QuantizeLinear", 13, 3, 1);
        in[0] = &x, in[1] = &s, in[2] = &x;
        expect_error("float zero point", MIXRT_STATUS_INVALID_MODEL, "input #2 'x2' is f32");
        end();
        begin("DequantizeLinear", 13, 3, 1);
        in[0] = &z, in[1] = &s, in[2] = &x;
        expect_error("zero point dtype", MIXRT_STATUS_INVALID_MODEL, "input #2 'x2'");
        end();
        release(&x, 1), release(&s, 1), release(&z, 1);
    }
    /* Dequantize int32 and an f16 scale: output f16, rounded once. Zero-size x. */
    {
        int64_t xv[4] = {-100000, 3, 2047, 2049};
        struct mixrt_tensor x = mki(MIXRT_DTYPE_I32, 1, (int64_t[]){4}, xv),
                            s = mkf(MIXRT_DTYPE_F16, 0, NULL, (double[]){0.5});
        begin("DequantizeLinear", 13, 2, 1);
        in[0] = &x, in[1] = &s;
        TU_CHECK(run() == MIXRT_STATUS_OK && out[0].dtype == MIXRT_DTYPE_F16, "dequantize f16: %s",
                 mixrt_context_last_error(ctx));
        for (int i = 0; i < 4 && out[0].data; i++) {
            double want = mixrt_f16_to_float(mixrt_f16_from_double(xv[i] * 0.5));
            TU_CHECK(mixrt_load_f64(out[0].data, out[0].dtype, (size_t)i) == want, "dequantize f16 [%d]", i);
        }
        end();
        struct mixrt_tensor e = mki(MIXRT_DTYPE_U8, 2, (int64_t[]){0, 3}, NULL);
        begin("DequantizeLinear", 13, 2, 1);
        in[0] = &e, in[1] = &s;
        TU_CHECK(run() == MIXRT_STATUS_OK && mixrt_tensor_numel(&out[0]) == 0 && out[0].dims[1] == 3,
                 "dequantize empty: %s", mixrt_context_last_error(ctx));
        end();
        begin("QuantizeLinear", 13, 2, 1);
        struct mixrt_tensor ef = mkf(MIXRT_DTYPE_F32, 2, (int64_t[]){0, 3}, NULL);
        in[0] = &ef, in[1] = &s;
        TU_CHECK(run() == MIXRT_STATUS_OK && mixrt_tensor_numel(&out[0]) == 0, "quantize empty: %s",
                 mixrt_context_last_error(ctx));
        end();
        release(&x, 1), release(&s, 1), release(&e, 1), release(&ef, 1);
    }
}

static void test_dynamic(void) {
    /* All zeros: scale 0, zero point 0, y 0 (no 0/0). Negative-only: zero point 255. */
    double zeros[3] = {0, 0, 0}, neg[3] = {-1, -2.55, -0.5};
    struct mixrt_tensor a = mkf(MIXRT_DTYPE_F32, 1, (int64_t[]){3}, zeros),
                        b = mkf(MIXRT_DTYPE_BF16, 1, (int64_t[]){3}, neg);
    begin("DynamicQuantizeLinear", 11, 1, 3);
    in[0] = &a;
    TU_CHECK(run() == MIXRT_STATUS_OK, "dynamic zeros: %s", mixrt_context_last_error(ctx));
    check_ints("dynamic zeros", (int64_t[]){0, 0, 0}, 3);
    TU_CHECK(((float *)out[1].data)[0] == 0.0f && ((uint8_t *)out[2].data)[0] == 0, "dynamic zeros: scale/zp");
    end();
    begin("DynamicQuantizeLinear", 11, 1, 3);
    in[0] = &b;
    TU_CHECK(run() == MIXRT_STATUS_OK, "dynamic negative: %s", mixrt_context_last_error(ctx));
    float mn = mixrt_bf16_to_float(mixrt_bf16_from_double(-2.55)), scale = (0.0f - mn) / 255.0f;
    int64_t want[3];
    for (int i = 0; i < 3; i++) {
        double q = nearbyint(mixrt_bf16_to_float(mixrt_bf16_from_double(neg[i])) / scale) + 255;
        want[i] = q < 0 ? 0 : q > 255 ? 255 : (int64_t)q;
    }
    check_ints("dynamic negative", want, 3);
    TU_CHECK(((float *)out[1].data)[0] == scale && ((uint8_t *)out[2].data)[0] == 255, "dynamic negative: scale/zp");
    end();
    release(&a, 1), release(&b, 1);
}

/* ---- integer matmul ---- */

/* Naive numpy matmul of A [ab..., M, K] and B [bb..., K, N] with both batch shapes of rank 2
 * (dims 1 broadcast), per-row zero points za[ab0][ab1][m] and per-column zb[bb0][bb1][n]. */
static void naive_mm(const int64_t *ad, const int64_t *a, const int64_t *za, const int64_t *bd, const int64_t *b,
                     const int64_t *zb, int64_t M, int64_t K, int64_t Nn, int64_t *y) {
    int64_t o0 = ad[0] > bd[0] ? ad[0] : bd[0], o1 = ad[1] > bd[1] ? ad[1] : bd[1];
    for (int64_t i0 = 0; i0 < o0; i0++)
        for (int64_t i1 = 0; i1 < o1; i1++) {
            int64_t am = (ad[0] == 1 ? 0 : i0) * ad[1] + (ad[1] == 1 ? 0 : i1);
            int64_t bm = (bd[0] == 1 ? 0 : i0) * bd[1] + (bd[1] == 1 ? 0 : i1);
            for (int64_t m = 0; m < M; m++)
                for (int64_t n = 0; n < Nn; n++) {
                    int64_t s = 0;
                    for (int64_t q = 0; q < K; q++)
                        s += (a[(am * M + m) * K + q] - za[am * M + m]) * (b[(bm * K + q) * Nn + n] - zb[bm * Nn + n]);
                    y[((i0 * o1 + i1) * M + m) * Nn + n] = s;
                }
        }
}

static void test_matmul(void) {
    tu_seed(11);
    int64_t M = 3, K = 7, Nn = 4;
    int64_t ad[4] = {2, 1, M, K}, bd[4] = {1, 3, K, Nn}, yd[4] = {2, 3, M, Nn};
    int64_t av[2 * 1 * 21], bv[3 * 28], zar[2 * 3], zbr[3 * 4], y[2 * 3 * 12], zrow[3], zcol[4];
    rand_ints(av, 42, 0, 255);
    rand_ints(bv, 84, -128, 127);
    rand_ints(zrow, 3, 0, 255);
    rand_ints(zcol, 4, -128, 127);
    /* MatMulInteger: a_zero_point [M] per row, b_zero_point [1,3,1,N] per column and batch. */
    rand_ints(zbr, 12, -128, 127);
    for (int m = 0; m < 6; m++) zar[m] = zrow[m % 3];
    struct mixrt_tensor t[4] = {mki(MIXRT_DTYPE_U8, 4, ad, av), mki(MIXRT_DTYPE_I8, 4, bd, bv),
                                mki(MIXRT_DTYPE_U8, 1, (int64_t[]){M}, zrow),
                                mki(MIXRT_DTYPE_I8, 4, (int64_t[]){1, 3, 1, Nn}, zbr)};
    naive_mm(ad, av, zar, bd, bv, zbr, M, K, Nn, y);
    begin("MatMulInteger", 10, 4, 1);
    for (int i = 0; i < 4; i++) in[i] = &t[i];
    TU_CHECK(run() == MIXRT_STATUS_OK, "MatMulInteger: %s", mixrt_context_last_error(ctx));
    TU_CHECK(out[0].dtype == MIXRT_DTYPE_I32 && out[0].rank == 4 && !memcmp(out[0].dims, yd, sizeof(yd)),
             "MatMulInteger shape");
    check_ints("MatMulInteger broadcast per-row/col", y, 72);
    end();
    /* Without zero points; a 1-D A [K]. */
    {
        int64_t zero[12] = {0};
        struct mixrt_tensor a1 = mki(MIXRT_DTYPE_U8, 1, (int64_t[]){K}, av);
        int64_t b1d[2] = {1, 1}, a1d[2] = {1, 1}, y1[12];
        struct mixrt_tensor b2 = mki(MIXRT_DTYPE_I8, 2, (int64_t[]){K, Nn}, bv);
        naive_mm(a1d, av, zero, b1d, bv, zero, 1, K, Nn, y1);
        begin("MatMulInteger", 10, 2, 1);
        in[0] = &a1, in[1] = &b2;
        TU_CHECK(run() == MIXRT_STATUS_OK && out[0].rank == 1 && out[0].dims[0] == Nn, "MatMulInteger 1-D: %s",
                 mixrt_context_last_error(ctx));
        check_ints("MatMulInteger 1-D", y1, (size_t)Nn);
        end();
        release(&a1, 1), release(&b2, 1);
    }
    /* Errors: K mismatch, a zero point of the wrong length, a zero point of B's dtype. */
    begin("MatMulInteger", 10, 2, 1);
    in[0] = &t[0], in[1] = &t[0];
    expect_error("K mismatch", MIXRT_STATUS_INVALID_MODEL, "input #1 'x1'");
    end();
    begin("MatMulInteger", 10, 3, 1);
    in[0] = &t[0], in[1] = &t[1], in[2] = &t[2];
    struct mixrt_tensor zbad = mki(MIXRT_DTYPE_U8, 1, (int64_t[]){2}, zrow);
    in[2] = &zbad;
    expect_error("zero point length", MIXRT_STATUS_INVALID_MODEL, "per row");
    end();
    release(&zbad, 1);
    begin("MatMulInteger", 10, 3, 1);
    in[0] = &t[0], in[1] = &t[1], in[2] = &t[3];
    expect_error("zero point dtype", MIXRT_STATUS_INVALID_MODEL, "expected the dtype of input #0");
    end();

    /* QLinearMatMul: per-row a scale/zero point [M], per-column b scale/zero point [N],
     * f16 scales, int8 output. */
    {
        double as[3] = {0.02, 0.05, 0.011}, bs[4] = {0.1, 0.003, 0.07, 0.5}, ys = 0.37;
        struct mixrt_tensor q[8] = {t[0],
                                    mkf(MIXRT_DTYPE_F16, 1, (int64_t[]){M}, as),
                                    t[2],
                                    t[1],
                                    mkf(MIXRT_DTYPE_F16, 1, (int64_t[]){Nn}, bs),
                                    mki(MIXRT_DTYPE_I8, 1, (int64_t[]){Nn}, zcol),
                                    mkf(MIXRT_DTYPE_F32, 0, NULL, &ys),
                                    mki(MIXRT_DTYPE_I8, 0, NULL, (int64_t[]){-3})};
        int64_t zbb[12], acc[72], want[72];
        for (int i = 0; i < 12; i++) zbb[i] = zcol[i % 4];
        naive_mm(ad, av, zar, bd, bv, zbb, M, K, Nn, acc);
        for (int i = 0; i < 72; i++) {
            int m = (i / 4) % 3, n = i % 4;
            float sa = mixrt_f16_to_float(mixrt_f16_from_double(as[m])),
                  sb = mixrt_f16_to_float(mixrt_f16_from_double(bs[n]));
            float mult = sa * sb;
            mult = mult / (float)ys;
            double v = nearbyint((double)acc[i] * mult) - 3;
            want[i] = v < -128 ? -128 : v > 127 ? 127 : (int64_t)v;
        }
        begin("QLinearMatMul", 21, 8, 1);
        for (int i = 0; i < 8; i++) in[i] = &q[i];
        TU_CHECK(run() == MIXRT_STATUS_OK, "QLinearMatMul: %s", mixrt_context_last_error(ctx));
        TU_CHECK(out[0].dtype == MIXRT_DTYPE_I8, "QLinearMatMul dtype");
        check_ints("QLinearMatMul per-row/col", want, 72);
        end();
        begin("QLinearMatMul", 10, 8, 1);
        for (int i = 0; i < 8; i++) in[i] = &q[i];
        in[6] = &q[1];
        expect_error("y_scale per-tensor", MIXRT_STATUS_INVALID_MODEL, "input #6 'x6'");
        end();
        release(q + 1, 1), release(q + 4, 4);
    }
    release(t, 4);
}

/* ---- integer convolution ---- */

struct conv_case {
    int nd;
    int64_t n, c, m, group, in[3], k[3], s[3], d[3], pads[6];
    const char *auto_pad;
    bool per_channel;
};

/* Naive model: pads x explicitly with its zero point (auto_pad resolved here), then sums
 * over the full window for each output position. */
static void naive_conv(const struct conv_case *cc, const int64_t *x, int64_t xz, const int64_t *w, const int64_t *wz,
                       int64_t *out_dims, int64_t **y) {
    int nd = cc->nd;
    int64_t pb[3] = {0}, pe[3] = {0}, pin[3] = {1, 1, 1}, od[3] = {1, 1, 1}, kk[3] = {1, 1, 1}, dd[3] = {1, 1, 1},
            ss[3] = {1, 1, 1};
    for (int i = 0; i < nd; i++) {
        int64_t dk = (cc->k[i] - 1) * cc->d[i] + 1;
        if (!strcmp(cc->auto_pad, "SAME_UPPER") || !strcmp(cc->auto_pad, "SAME_LOWER")) {
            int64_t o = (cc->in[i] + cc->s[i] - 1) / cc->s[i], tot = (o - 1) * cc->s[i] + dk - cc->in[i];
            if (tot < 0) tot = 0;
            pb[i] = !strcmp(cc->auto_pad, "SAME_LOWER") ? (tot + 1) / 2 : tot / 2;
            pe[i] = tot - pb[i];
        } else if (strcmp(cc->auto_pad, "VALID")) {
            pb[i] = cc->pads[i], pe[i] = cc->pads[nd + i];
        }
        pin[i] = cc->in[i] + pb[i] + pe[i];
        od[i] = (pin[i] - dk) / cc->s[i] + 1;
        kk[i] = cc->k[i], dd[i] = cc->d[i], ss[i] = cc->s[i];
    }
    int64_t in0[3] = {1, 1, 1};
    for (int i = 0; i < nd; i++) in0[i] = cc->in[i];
    size_t psz = (size_t)(cc->n * cc->c * pin[0] * pin[1] * pin[2]);
    int64_t *px = malloc(psz * sizeof(int64_t));
    for (size_t i = 0; i < psz; i++) px[i] = xz;
    for (int64_t nc = 0; nc < cc->n * cc->c; nc++)
        for (int64_t a = 0; a < in0[0]; a++)
            for (int64_t b = 0; b < in0[1]; b++)
                for (int64_t c = 0; c < in0[2]; c++)
                    px[((nc * pin[0] + a + pb[0]) * pin[1] + b + pb[1]) * pin[2] + c + pb[2]] =
                        x[((nc * in0[0] + a) * in0[1] + b) * in0[2] + c];
    size_t ysz = (size_t)(cc->n * cc->m * od[0] * od[1] * od[2]);
    *y = malloc((ysz ? ysz : 1) * sizeof(int64_t));
    int64_t cg = cc->c / cc->group, mg = cc->m / cc->group;
    for (int64_t n = 0; n < cc->n; n++)
        for (int64_t m = 0; m < cc->m; m++)
            for (int64_t o0 = 0; o0 < od[0]; o0++)
                for (int64_t o1 = 0; o1 < od[1]; o1++)
                    for (int64_t o2 = 0; o2 < od[2]; o2++) {
                        int64_t s = 0;
                        for (int64_t c = 0; c < cg; c++)
                            for (int64_t k0 = 0; k0 < kk[0]; k0++)
                                for (int64_t k1 = 0; k1 < kk[1]; k1++)
                                    for (int64_t k2 = 0; k2 < kk[2]; k2++) {
                                        int64_t ch = (m / mg) * cg + c;
                                        int64_t xv =
                                            px[(((n * cc->c + ch) * pin[0] + o0 * ss[0] + k0 * dd[0]) * pin[1] +
                                                o1 * ss[1] + k1 * dd[1]) *
                                                   pin[2] +
                                               o2 * ss[2] + k2 * dd[2]];
                                        int64_t wv = w[(((m * cg + c) * kk[0] + k0) * kk[1] + k1) * kk[2] + k2];
                                        s += (xv - xz) * (wv - wz[m]);
                                    }
                        (*y)[(((n * cc->m + m) * od[0] + o0) * od[1] + o1) * od[2] + o2] = s;
                    }
    free(px);
    out_dims[0] = cc->n, out_dims[1] = cc->m;
    for (int i = 0; i < nd; i++) out_dims[2 + i] = od[i];
}

static void conv_case_run(const struct conv_case *cc, bool qlinear) {
    int nd = cc->nd, rank = nd + 2;
    int64_t xd[5] = {cc->n, cc->c}, wd[5] = {cc->m, cc->c / cc->group};
    size_t nx = (size_t)(cc->n * cc->c), nw = (size_t)(cc->m * (cc->c / cc->group));
    for (int i = 0; i < nd; i++)
        xd[2 + i] = cc->in[i], wd[2 + i] = cc->k[i], nx *= (size_t)cc->in[i], nw *= (size_t)cc->k[i];
    int64_t *xv = malloc(nx * sizeof(int64_t)), *wv = malloc(nw * sizeof(int64_t)), wz[16], bias[16], xz = 0;
    rand_ints(xv, nx, -128, 127);
    rand_ints(wv, nw, 0, 255);
    rand_ints(&xz, 1, -128, 127);
    rand_ints(wz, (size_t)cc->m, 0, 255);
    rand_ints(bias, (size_t)cc->m, -5000, 5000);
    if (!cc->per_channel)
        for (int i = 1; i < cc->m; i++) wz[i] = wz[0];
    int64_t yd[5], *acc = NULL;
    naive_conv(cc, xv, xz, wv, wz, yd, &acc);
    size_t ny = (size_t)(yd[0] * yd[1]);
    for (int i = 0; i < nd; i++) ny *= (size_t)yd[2 + i];
    int64_t kshape[3] = {cc->k[0], cc->k[1], cc->k[2]}, strides[3] = {cc->s[0], cc->s[1], cc->s[2]},
            dil[3] = {cc->d[0], cc->d[1], cc->d[2]}, pads[6];
    memcpy(pads, cc->pads, sizeof(pads));
    struct mixrt_tensor x = mki(MIXRT_DTYPE_I8, rank, xd, xv), w = mki(MIXRT_DTYPE_U8, rank, wd, wv),
                        xzt = mki(MIXRT_DTYPE_I8, 0, NULL, &xz),
                        wzt = mki(MIXRT_DTYPE_U8, cc->per_channel ? 1 : 0, (int64_t[]){cc->m}, wz);
    char what[128];
    snprintf(what, sizeof(what), "%s %dD group %lld auto_pad %s", qlinear ? "QLinearConv" : "ConvInteger", nd,
             (long long)cc->group, cc->auto_pad);
    double ws[16], xs = 0.013, ys = 0.9;
    struct mixrt_tensor xst = {0}, wst = {0}, yst = {0}, yzt = {0}, bt = {0};
    if (!qlinear) {
        begin("ConvInteger", 10, 4, 1);
        in[0] = &x, in[1] = &w, in[2] = &xzt, in[3] = &wzt;
    } else {
        for (int i = 0; i < cc->m; i++) ws[i] = cc->per_channel ? 0.01 + 0.007 * i : 0.02;
        xst = mkf(MIXRT_DTYPE_F32, 0, NULL, &xs);
        wst = mkf(MIXRT_DTYPE_F32, cc->per_channel ? 1 : 0, (int64_t[]){cc->m}, ws);
        yst = mkf(MIXRT_DTYPE_F32, 0, NULL, &ys);
        yzt = mki(MIXRT_DTYPE_U8, 0, NULL, (int64_t[]){120});
        bt = mki(MIXRT_DTYPE_I32, 1, (int64_t[]){cc->m}, bias);
        begin("QLinearConv", 10, 9, 1);
        in[0] = &x, in[1] = &xst, in[2] = &xzt, in[3] = &w, in[4] = &wst, in[5] = &wzt, in[6] = &yst, in[7] = &yzt;
        in[8] = &bt;
        size_t sp = ny ? ny / (size_t)(yd[0] * yd[1]) : 1;
        for (size_t i = 0; i < ny; i++) {
            size_t m = (i / sp) % (size_t)cc->m;
            float mult = (float)xs * (float)ws[m];
            mult = mult / (float)ys;
            double v = nearbyint((double)(acc[i] + bias[m]) * mult) + 120;
            acc[i] = v < 0 ? 0 : v > 255 ? 255 : (int64_t)v;
        }
    }
    attr_int("group", cc->group);
    attr_ints("kernel_shape", kshape, (size_t)nd);
    attr_ints("strides", strides, (size_t)nd);
    attr_ints("dilations", dil, (size_t)nd);
    if (!strcmp(cc->auto_pad, "NOTSET"))
        attr_ints("pads", pads, (size_t)(2 * nd));
    else
        attr_str("auto_pad", cc->auto_pad);
    mixrt_status st = run();
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: %s", what, mixrt_context_last_error(ctx));
    if (st == MIXRT_STATUS_OK) {
        bool shape_ok = out[0].rank == rank;
        for (int i = 0; shape_ok && i < rank; i++) shape_ok = out[0].dims[i] == yd[i];
        TU_CHECK(shape_ok, "%s: output shape", what);
        if (shape_ok) check_ints(what, acc, ny);
    }
    end();
    struct mixrt_tensor all[10] = {x, w, xzt, wzt, xst, wst, yst, yzt, bt};
    release(all, 9);
    free(xv), free(wv), free(acc);
}

static void test_conv(void) {
    tu_seed(7);
    static const struct conv_case cases[] = {
        {1, 2, 3, 4, 1, {9}, {3}, {2}, {1}, {1, 2}, "NOTSET", true},
        {1, 1, 4, 4, 4, {7}, {2}, {1}, {3}, {0}, "SAME_UPPER", true},
        {2, 2, 4, 6, 2, {6, 5}, {3, 2}, {2, 1}, {1, 2}, {1, 0, 2, 1}, "NOTSET", true},
        {2, 1, 2, 2, 1, {5, 6}, {2, 3}, {2, 2}, {1, 1}, {0}, "SAME_LOWER", false},
        {2, 1, 3, 3, 3, {4, 4}, {3, 3}, {1, 1}, {1, 1}, {0}, "VALID", true},
        {3, 1, 2, 4, 2, {4, 3, 5}, {2, 2, 3}, {1, 2, 2}, {2, 1, 1}, {1, 0, 1, 0, 1, 2}, "NOTSET", true},
        {2, 0, 2, 2, 1, {3, 3}, {1, 1}, {1, 1}, {1, 1}, {0}, "VALID", false}, /* N = 0 */
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        conv_case_run(&cases[i], false);
        conv_case_run(&cases[i], true);
    }
    /* Errors: C not divisible by group, kernel larger than the padded input, bad auto_pad,
     * per-channel zero point of the wrong length, bias of the wrong dtype. */
    int64_t xd[4] = {1, 3, 2, 2}, wd[4] = {2, 3, 3, 3};
    struct mixrt_tensor x = mki(MIXRT_DTYPE_U8, 4, xd, NULL), w = mki(MIXRT_DTYPE_U8, 4, wd, NULL),
                        wz = mki(MIXRT_DTYPE_U8, 1, (int64_t[]){3}, NULL);
    begin("ConvInteger", 10, 2, 1);
    attr_int("group", 2);
    in[0] = &x, in[1] = &w;
    expect_error("group", MIXRT_STATUS_INVALID_MODEL, "divisible by group");
    end();
    begin("ConvInteger", 10, 2, 1);
    in[0] = &x, in[1] = &w;
    expect_error("kernel too large", MIXRT_STATUS_INVALID_MODEL, "exceeds the padded input");
    end();
    begin("ConvInteger", 10, 2, 1);
    attr_str("auto_pad", "SAME");
    in[0] = &x, in[1] = &w;
    expect_error("auto_pad", MIXRT_STATUS_INVALID_MODEL, "'auto_pad'");
    end();
    begin("ConvInteger", 10, 4, 1);
    attr_str("auto_pad", "SAME_UPPER");
    in[0] = &x, in[1] = &w, in[3] = &wz;
    expect_error("w zero point", MIXRT_STATUS_INVALID_MODEL, "input #3 'x3'");
    end();
    begin("ConvInteger", 10, 3, 1);
    in[0] = &x, in[1] = &w, in[2] = &wz;
    expect_error("x zero point", MIXRT_STATUS_INVALID_MODEL, "per-tensor");
    end();
    release(&x, 1), release(&w, 1), release(&wz, 1);
}

/* Hostile attributes and shapes: named errors, no overflow or crash. */
static void test_hostile(void) {
    struct mixrt_tensor x = mkf(MIXRT_DTYPE_F32, 2, (int64_t[]){2, 5}, NULL),
                        sb = mkf(MIXRT_DTYPE_F32, 2, (int64_t[]){2, 1}, (double[]){1, 1}),
                        s0 = mkf(MIXRT_DTYPE_F32, 1, (int64_t[]){2}, (double[]){1, 1}),
                        x0 = mkf(MIXRT_DTYPE_F32, 0, NULL, (double[]){1}),
                        q0 = mki(MIXRT_DTYPE_U8, 0, NULL, (int64_t[]){1}),
                        cx = mki(MIXRT_DTYPE_U8, 4, (int64_t[]){1, 1, 3, 3}, NULL),
                        cw = mki(MIXRT_DTYPE_U8, 4, (int64_t[]){1, 1, 2, 2}, NULL);
    /* block_size near INT64_MAX: one block per row. */
    begin("QuantizeLinear", 21, 2, 1);
    attr_int("block_size", INT64_MAX);
    in[0] = &x, in[1] = &sb;
    TU_CHECK(run() == MIXRT_STATUS_OK, "huge block_size: %s", mixrt_context_last_error(ctx));
    end();
    begin("QuantizeLinear", 21, 2, 1);
    attr_int("block_size", -1);
    in[0] = &x, in[1] = &sb;
    expect_error("negative block_size", MIXRT_STATUS_INVALID_MODEL, "'block_size'");
    end();
    /* A per-axis scale for a rank-0 x. */
    begin("QuantizeLinear", 13, 2, 1);
    in[0] = &x0, in[1] = &s0;
    expect_error("per-axis on a scalar", MIXRT_STATUS_INVALID_MODEL, "'axis'");
    end();
    /* Rank-0 matmul operand. */
    begin("MatMulInteger", 10, 2, 1);
    in[0] = &q0, in[1] = &q0;
    expect_error("rank-0 matmul", MIXRT_STATUS_INVALID_MODEL, "rank >= 1");
    end();
    /* Huge strides, dilations and pads: bounded, then the output is small. */
    int64_t big2[2] = {INT64_MAX, INT64_MAX}, pads[4] = {0, 0, INT64_C(0x7fffffff), 0}, strides[2] = {1000000, 1};
    begin("ConvInteger", 10, 2, 1);
    attr_ints("dilations", big2, 2);
    in[0] = &cx, in[1] = &cw;
    expect_error("huge dilations", MIXRT_STATUS_INVALID_MODEL, "'dilations'");
    end();
    begin("ConvInteger", 10, 2, 1);
    attr_ints("pads", pads, 4);
    attr_ints("strides", strides, 2);
    in[0] = &cx, in[1] = &cw;
    TU_CHECK(run() == MIXRT_STATUS_OK && out[0].dims[2] == 2148 && out[0].dims[3] == 2, "huge pads and strides: %s",
             mixrt_context_last_error(ctx));
    end();
    begin("ConvInteger", 10, 2, 1);
    attr_ints("pads", pads, 3);
    in[0] = &cx, in[1] = &cw;
    expect_error("pads length", MIXRT_STATUS_INVALID_MODEL, "'pads' has 3 entries");
    end();
    begin("QLinearConv", 10, 8, 1);
    in[0] = &cx, in[1] = &x0, in[2] = &q0, in[3] = &cw, in[4] = &x0, in[5] = &q0, in[6] = &x0;
    expect_error("missing y_zero_point", MIXRT_STATUS_INVALID_MODEL, "input #7");
    end();
    struct mixrt_tensor all[7] = {x, sb, s0, x0, q0, cx, cw};
    release(all, 7);
}

/* Every allocation failing in turn: OUT_OF_MEMORY or success, never a leak. */
static void test_fault_injection(void) {
    int64_t ad[2] = {3, 4}, bd[2] = {4, 2}, xd[4] = {1, 2, 4, 4}, wd[4] = {2, 1, 2, 2};
    struct mixrt_tensor a = mki(MIXRT_DTYPE_U8, 2, ad, (int64_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}),
                        b = mki(MIXRT_DTYPE_U8, 2, bd, (int64_t[]){1, 2, 3, 4, 5, 6, 7, 8}),
                        zr = mki(MIXRT_DTYPE_U8, 1, (int64_t[]){3}, (int64_t[]){1, 2, 3}),
                        zc = mki(MIXRT_DTYPE_U8, 1, (int64_t[]){2}, (int64_t[]){4, 5}),
                        s = mkf(MIXRT_DTYPE_F32, 0, NULL, (double[]){0.5}),
                        z = mki(MIXRT_DTYPE_U8, 0, NULL, (int64_t[]){3}), x = mki(MIXRT_DTYPE_U8, 4, xd, NULL),
                        w = mki(MIXRT_DTYPE_U8, 4, wd, NULL), f = mkf(MIXRT_DTYPE_F32, 2, ad, NULL);
    for (int op = 0; op < 7; op++) {
        int succeeded = 0;
        for (long n = 0; n < 40 && !succeeded; n++) {
            size_t before = mixrt_context_bytes_in_use(ctx);
            switch (op) {
            case 0:
                begin("QuantizeLinear", 13, 3, 1), in[0] = &f, in[1] = &s, in[2] = &z;
                break;
            case 1:
                begin("DequantizeLinear", 13, 3, 1), in[0] = &a, in[1] = &s, in[2] = &z;
                break;
            case 2:
                begin("DynamicQuantizeLinear", 11, 1, 3), in[0] = &f;
                break;
            case 3:
                begin("MatMulInteger", 10, 4, 1), in[0] = &a, in[1] = &b, in[2] = &zr, in[3] = &zc;
                break;
            case 4:
                begin("QLinearMatMul", 10, 8, 1);
                in[0] = &a, in[1] = &s, in[2] = &zr, in[3] = &b, in[4] = &s, in[5] = &zc, in[6] = &s, in[7] = &z;
                break;
            case 5:
                begin("ConvInteger", 10, 2, 1), in[0] = &x, in[1] = &w;
                attr_int("group", 2);
                break;
            default:
                begin("QLinearConv", 10, 8, 1);
                attr_int("group", 2);
                in[0] = &x, in[1] = &s, in[2] = &z, in[3] = &w, in[4] = &s, in[5] = &z, in[6] = &s, in[7] = &z;
                break;
            }
            mixrt_context_fail_alloc_after(ctx, n, 1);
            mixrt_status st = run();
            mixrt_context_fail_alloc_after(ctx, -1, 0);
            if (st == MIXRT_STATUS_OK)
                succeeded = 1;
            else
                TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY, "op %d fail-after %ld: status %d (%s)", op, n, (int)st,
                         mixrt_context_last_error(ctx));
            end();
            TU_CHECK(mixrt_context_bytes_in_use(ctx) == before, "op %d fail-after %ld leaks %zu bytes", op, n,
                     mixrt_context_bytes_in_use(ctx) - before);
        }
        TU_CHECK(succeeded, "op %d never succeeded", op);
    }
    struct mixrt_tensor all[9] = {a, b, zr, zc, s, z, x, w, f};
    release(all, 9);
}

int main(void) {
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    size_t base = mixrt_context_bytes_in_use(ctx);
    test_quantize();
    test_dynamic();
    test_matmul();
    test_conv();
    test_hostile();
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == base, "leaked %zu bytes", mixrt_context_bytes_in_use(ctx) - base);
    test_fault_injection();
    mixrt_context_destroy(ctx);
    return tu_finish("test_ref_quant");
}
