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
#include "kernel_harness.h"
#include "testutil.h"

static void rand_ints(int64_t *v, size_t n, int64_t lo, int64_t hi) {
    for (size_t i = 0; i < n; i++) v[i] = lo + (int64_t)(tu_rand() % (uint64_t)(hi - lo + 1));
}
static void release(struct mixrt_tensor *t, int n) {
    for (int i = 0; i < n; i++) mixrt_tensor_release(kh_ctx, &t[i]);
}

/* Compares out[0] element-wise with want (integers). */
static void check_ints(const char *what, const int64_t *want, size_t n) {
    TU_CHECK(mixrt_tensor_numel(&kh_out[0]) == n, "%s: %zu elements, want %zu", what, mixrt_tensor_numel(&kh_out[0]), n);
    if (mixrt_tensor_numel(&kh_out[0]) != n) return;
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (mixrt_load_i64(kh_out[0].data, kh_out[0].dtype, i) != want[i] && !bad++) first = i;
    TU_CHECK(bad == 0, "%s: %zu of %zu differ (first at %zu: %lld, want %lld)", what, bad, n, first,
             bad ? (long long)mixrt_load_i64(kh_out[0].data, kh_out[0].dtype, first) : 0LL, (long long)want[first]);
}

static void expect_error(const char *what, mixrt_status want, const char *needle) {
    mixrt_status st = kh_run();
    TU_CHECK(st == want, "%s: status %d, want %d (%s)", what, (int)st, (int)want, mixrt_context_last_error(kh_ctx));
    if (needle)
        TU_CHECK(strstr(mixrt_context_last_error(kh_ctx), needle) != NULL, "%s: message '%s' lacks '%s'", what,
                 mixrt_context_last_error(kh_ctx), needle);
}

/* ---- Quantize / Dequantize ---- */

static void test_quantize(void) {
    /* Ties to even, saturation, NaN to the zero point, -0.5 to 0. */
    {
        int64_t d[1] = {10};
        double xv[10] = {0.5, 1.5, 2.5, -0.5, -1.5, 300, -300, NAN, INFINITY, 3.49};
        int64_t want[10] = {128, 130, 130, 128, 126, 255, 0, 128, 255, 131};
        struct mixrt_tensor t[3] = {kh_tensor(MIXRT_DTYPE_F32, 1, d, xv), kh_tensor(MIXRT_DTYPE_F32, 0, NULL, (double[]){1.0}),
                                    kh_tensor_ints(MIXRT_DTYPE_U8, 0, NULL, (int64_t[]){128})};
        kh_begin("QuantizeLinear", 13, 3, 1);
        for (int i = 0; i < 3; i++) kh_in[i] = &t[i];
        TU_CHECK(kh_run() == MIXRT_STATUS_OK, "quantize ties: %s", mixrt_context_last_error(kh_ctx));
        TU_CHECK(kh_out[0].dtype == MIXRT_DTYPE_U8, "quantize ties: dtype %d", (int)kh_out[0].dtype);
        check_ints("quantize ties", want, 10);
        kh_end();
        /* No zero point: uint8 with 0. int32 x divides exactly in double. */
        struct mixrt_tensor xi = kh_tensor_ints(MIXRT_DTYPE_I32, 1, (int64_t[]){4}, (int64_t[]){-7, 5, 7, 1000});
        struct mixrt_tensor s2 = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, (double[]){2.0});
        kh_begin("QuantizeLinear", 10, 2, 1);
        kh_in[0] = &xi, kh_in[1] = &s2;
        TU_CHECK(kh_run() == MIXRT_STATUS_OK, "quantize int32: %s", mixrt_context_last_error(kh_ctx));
        check_ints("quantize int32 to u8", (int64_t[]){0, 2, 4, 255}, 4);
        kh_end();
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
        struct mixrt_tensor t[3] = {kh_tensor(MIXRT_DTYPE_F32, 3, dx, xv), kh_tensor(MIXRT_DTYPE_BF16, 1, ds, sv),
                                    kh_tensor_ints(MIXRT_DTYPE_I8, 1, ds, zv)};
        kh_begin("QuantizeLinear", 19, 3, 1);
        kh_attr_int("axis", -2);
        for (int i = 0; i < 3; i++) kh_in[i] = &t[i];
        TU_CHECK(kh_run() == MIXRT_STATUS_OK, "quantize axis: %s", mixrt_context_last_error(kh_ctx));
        check_ints("quantize per-axis int8", want, 12);
        kh_end();
        kh_begin("QuantizeLinear", 10, 3, 1);
        for (int i = 0; i < 3; i++) kh_in[i] = &t[i];
        expect_error("per-axis at opset 10", MIXRT_STATUS_INVALID_MODEL, "opset 13");
        kh_end();
        kh_begin("QuantizeLinear", 13, 3, 1);
        kh_attr_int("axis", 0);
        for (int i = 0; i < 3; i++) kh_in[i] = &t[i];
        expect_error("per-axis length", MIXRT_STATUS_INVALID_MODEL, "input #1 'x1'");
        kh_end();
        kh_begin("QuantizeLinear", 13, 3, 1);
        kh_attr_int("axis", 3);
        for (int i = 0; i < 3; i++) kh_in[i] = &t[i];
        expect_error("axis range", MIXRT_STATUS_INVALID_MODEL, "'axis'");
        kh_end();
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
        struct mixrt_tensor t[3] = {kh_tensor(MIXRT_DTYPE_F32, 2, dx, xv), kh_tensor(MIXRT_DTYPE_F32, 2, ds, sv),
                                    kh_tensor_ints(MIXRT_DTYPE_I16, 2, ds, zv)};
        kh_begin("QuantizeLinear", 21, 3, 1);
        kh_attr_int("axis", 1);
        kh_attr_int("block_size", 2);
        for (int i = 0; i < 3; i++) kh_in[i] = &t[i];
        TU_CHECK(kh_run() == MIXRT_STATUS_OK, "quantize blocked: %s", mixrt_context_last_error(kh_ctx));
        TU_CHECK(kh_out[0].dtype == MIXRT_DTYPE_I16, "quantize blocked: dtype %d", (int)kh_out[0].dtype);
        check_ints("quantize blocked int16", want, 10);
        kh_end();
        /* Dequantize the same layout back: (q - zp) * scale into f32. */
        struct mixrt_tensor q = kh_tensor_ints(MIXRT_DTYPE_I16, 2, dx, want);
        kh_begin("DequantizeLinear", 21, 3, 1);
        kh_attr_int("block_size", 2);
        kh_in[0] = &q, kh_in[1] = &t[1], kh_in[2] = &t[2];
        TU_CHECK(kh_run() == MIXRT_STATUS_OK, "dequantize blocked: %s", mixrt_context_last_error(kh_ctx));
        size_t bad = 0;
        for (int i = 0; i < 10; i++) {
            int p = (i / 5) * 3 + (i % 5) / 2;
            if (mixrt_load_f64(kh_out[0].data, kh_out[0].dtype, (size_t)i) !=
                (float)((double)(want[i] - zv[p]) * (double)(float)sv[p]))
                bad++;
        }
        TU_CHECK(kh_out[0].dtype == MIXRT_DTYPE_F32 && bad == 0, "dequantize blocked: %zu differ", bad);
        kh_end();
        release(&q, 1);
        kh_begin("QuantizeLinear", 19, 3, 1);
        kh_attr_int("block_size", 2);
        for (int i = 0; i < 3; i++) kh_in[i] = &t[i];
        expect_error("blocked at opset 19", MIXRT_STATUS_INVALID_MODEL, "opset 21");
        kh_end();
        kh_begin("QuantizeLinear", 21, 3, 1);
        kh_attr_int("block_size", 3);
        for (int i = 0; i < 3; i++) kh_in[i] = &t[i];
        expect_error("blocked shape", MIXRT_STATUS_INVALID_MODEL, "ceil(5 / block_size 3)");
        kh_end();
        struct mixrt_tensor z8 = kh_tensor_ints(MIXRT_DTYPE_I16, 0, NULL, (int64_t[]){0}),
                            s1 = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, (double[]){1});
        kh_begin("QuantizeLinear", 19, 3, 1);
        kh_in[0] = &t[0], kh_in[1] = &s1, kh_in[2] = &z8;
        expect_error("int16 at opset 19", MIXRT_STATUS_INVALID_MODEL, "opset 21");
        kh_end();
        /* output_dtype without a zero point; disagreement with a zero point. */
        kh_begin("QuantizeLinear", 21, 2, 1);
        kh_attr_int("output_dtype", MIXRT_DTYPE_U16);
        kh_in[0] = &t[0], kh_in[1] = &s1;
        TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out[0].dtype == MIXRT_DTYPE_U16, "output_dtype u16: %s",
                 mixrt_context_last_error(kh_ctx));
        kh_end();
        kh_begin("QuantizeLinear", 21, 3, 1);
        kh_attr_int("output_dtype", MIXRT_DTYPE_U8);
        kh_in[0] = &t[0], kh_in[1] = &s1, kh_in[2] = &z8;
        expect_error("output_dtype mismatch", MIXRT_STATUS_INVALID_MODEL, "'output_dtype'");
        kh_end();
        release(&z8, 1), release(&s1, 1);
        release(t, 3);
    }
    /* float8 and int4 are valid ONNX but unsupported here; a float zero point is invalid. */
    {
        struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F32, 1, (int64_t[]){2}, (double[]){1, 2}),
                            s = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, (double[]){1}), z;
        memset(&z, 0, sizeof(z));
        mixrt_tensor_init(kh_ctx, &z, MIXRT_DTYPE_U8, 0, NULL);
        z.dtype = MIXRT_DTYPE_F8E4M3FN; /* same byte size, only the dtype matters */
        kh_begin("QuantizeLinear", 19, 3, 1);
        kh_attr_int("saturate", 1);
        kh_in[0] = &x, kh_in[1] = &s, kh_in[2] = &z;
        expect_error("float8", MIXRT_STATUS_UNSUPPORTED_DTYPE, "float8");
        kh_end();
        z.dtype = MIXRT_DTYPE_U8;
        kh_begin("QuantizeLinear", 21, 2, 1);
        kh_attr_int("output_dtype", MIXRT_DTYPE_I4);
        kh_in[0] = &x, kh_in[1] = &s;
        expect_error("int4", MIXRT_STATUS_UNSUPPORTED_DTYPE, "sub-byte");
        kh_end();
        kh_begin("QuantizeLinear", 13, 3, 1);
        kh_in[0] = &x, kh_in[1] = &s, kh_in[2] = &x;
        expect_error("float zero point", MIXRT_STATUS_INVALID_MODEL, "input #2 'x2' is f32");
        kh_end();
        kh_begin("DequantizeLinear", 13, 3, 1);
        kh_in[0] = &z, kh_in[1] = &s, kh_in[2] = &x;
        expect_error("zero point dtype", MIXRT_STATUS_INVALID_MODEL, "input #2 'x2'");
        kh_end();
        release(&x, 1), release(&s, 1), release(&z, 1);
    }
    /* Dequantize int32 and an f16 scale: output f16, rounded once. Zero-size x. */
    {
        int64_t xv[4] = {-100000, 3, 2047, 2049};
        struct mixrt_tensor x = kh_tensor_ints(MIXRT_DTYPE_I32, 1, (int64_t[]){4}, xv),
                            s = kh_tensor(MIXRT_DTYPE_F16, 0, NULL, (double[]){0.5});
        kh_begin("DequantizeLinear", 13, 2, 1);
        kh_in[0] = &x, kh_in[1] = &s;
        TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out[0].dtype == MIXRT_DTYPE_F16, "dequantize f16: %s",
                 mixrt_context_last_error(kh_ctx));
        for (int i = 0; i < 4 && kh_out[0].data; i++) {
            double want = mixrt_f16_to_float(mixrt_f16_from_double(xv[i] * 0.5));
            TU_CHECK(mixrt_load_f64(kh_out[0].data, kh_out[0].dtype, (size_t)i) == want, "dequantize f16 [%d]", i);
        }
        kh_end();
        struct mixrt_tensor e = kh_tensor_ints(MIXRT_DTYPE_U8, 2, (int64_t[]){0, 3}, NULL);
        kh_begin("DequantizeLinear", 13, 2, 1);
        kh_in[0] = &e, kh_in[1] = &s;
        TU_CHECK(kh_run() == MIXRT_STATUS_OK && mixrt_tensor_numel(&kh_out[0]) == 0 && kh_out[0].dims[1] == 3,
                 "dequantize empty: %s", mixrt_context_last_error(kh_ctx));
        kh_end();
        kh_begin("QuantizeLinear", 13, 2, 1);
        struct mixrt_tensor ef = kh_tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){0, 3}, NULL);
        kh_in[0] = &ef, kh_in[1] = &s;
        TU_CHECK(kh_run() == MIXRT_STATUS_OK && mixrt_tensor_numel(&kh_out[0]) == 0, "quantize empty: %s",
                 mixrt_context_last_error(kh_ctx));
        kh_end();
        release(&x, 1), release(&s, 1), release(&e, 1), release(&ef, 1);
    }
}

static void test_dynamic(void) {
    /* All zeros: scale 0, zero point 0, y 0 (no 0/0). Negative-only: zero point 255. */
    double zeros[3] = {0, 0, 0}, neg[3] = {-1, -2.55, -0.5};
    struct mixrt_tensor a = kh_tensor(MIXRT_DTYPE_F32, 1, (int64_t[]){3}, zeros),
                        b = kh_tensor(MIXRT_DTYPE_BF16, 1, (int64_t[]){3}, neg);
    kh_begin("DynamicQuantizeLinear", 11, 1, 3);
    kh_in[0] = &a;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "dynamic zeros: %s", mixrt_context_last_error(kh_ctx));
    check_ints("dynamic zeros", (int64_t[]){0, 0, 0}, 3);
    TU_CHECK(((float *)kh_out[1].data)[0] == 0.0f && ((uint8_t *)kh_out[2].data)[0] == 0, "dynamic zeros: scale/zp");
    kh_end();
    kh_begin("DynamicQuantizeLinear", 11, 1, 3);
    kh_in[0] = &b;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "dynamic negative: %s", mixrt_context_last_error(kh_ctx));
    float mn = mixrt_bf16_to_float(mixrt_bf16_from_double(-2.55)), scale = (0.0f - mn) / 255.0f;
    int64_t want[3];
    for (int i = 0; i < 3; i++) {
        double q = nearbyint(mixrt_bf16_to_float(mixrt_bf16_from_double(neg[i])) / scale) + 255;
        want[i] = q < 0 ? 0 : q > 255 ? 255 : (int64_t)q;
    }
    check_ints("dynamic negative", want, 3);
    TU_CHECK(((float *)kh_out[1].data)[0] == scale && ((uint8_t *)kh_out[2].data)[0] == 255, "dynamic negative: scale/zp");
    kh_end();
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
    struct mixrt_tensor t[4] = {kh_tensor_ints(MIXRT_DTYPE_U8, 4, ad, av), kh_tensor_ints(MIXRT_DTYPE_I8, 4, bd, bv),
                                kh_tensor_ints(MIXRT_DTYPE_U8, 1, (int64_t[]){M}, zrow),
                                kh_tensor_ints(MIXRT_DTYPE_I8, 4, (int64_t[]){1, 3, 1, Nn}, zbr)};
    naive_mm(ad, av, zar, bd, bv, zbr, M, K, Nn, y);
    kh_begin("MatMulInteger", 10, 4, 1);
    for (int i = 0; i < 4; i++) kh_in[i] = &t[i];
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "MatMulInteger: %s", mixrt_context_last_error(kh_ctx));
    TU_CHECK(kh_out[0].dtype == MIXRT_DTYPE_I32 && kh_out[0].rank == 4 && !memcmp(kh_out[0].dims, yd, sizeof(yd)),
             "MatMulInteger shape");
    check_ints("MatMulInteger broadcast per-row/col", y, 72);
    kh_end();
    /* Without zero points; a 1-D A [K]. */
    {
        int64_t zero[12] = {0};
        struct mixrt_tensor a1 = kh_tensor_ints(MIXRT_DTYPE_U8, 1, (int64_t[]){K}, av);
        int64_t b1d[2] = {1, 1}, a1d[2] = {1, 1}, y1[12];
        struct mixrt_tensor b2 = kh_tensor_ints(MIXRT_DTYPE_I8, 2, (int64_t[]){K, Nn}, bv);
        naive_mm(a1d, av, zero, b1d, bv, zero, 1, K, Nn, y1);
        kh_begin("MatMulInteger", 10, 2, 1);
        kh_in[0] = &a1, kh_in[1] = &b2;
        TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out[0].rank == 1 && kh_out[0].dims[0] == Nn, "MatMulInteger 1-D: %s",
                 mixrt_context_last_error(kh_ctx));
        check_ints("MatMulInteger 1-D", y1, (size_t)Nn);
        kh_end();
        release(&a1, 1), release(&b2, 1);
    }
    /* Errors: K mismatch, a zero point of the wrong length, a zero point of B's dtype. */
    kh_begin("MatMulInteger", 10, 2, 1);
    kh_in[0] = &t[0], kh_in[1] = &t[0];
    expect_error("K mismatch", MIXRT_STATUS_INVALID_MODEL, "input #1 'x1'");
    kh_end();
    kh_begin("MatMulInteger", 10, 3, 1);
    kh_in[0] = &t[0], kh_in[1] = &t[1], kh_in[2] = &t[2];
    struct mixrt_tensor zbad = kh_tensor_ints(MIXRT_DTYPE_U8, 1, (int64_t[]){2}, zrow);
    kh_in[2] = &zbad;
    expect_error("zero point length", MIXRT_STATUS_INVALID_MODEL, "per row");
    kh_end();
    release(&zbad, 1);
    kh_begin("MatMulInteger", 10, 3, 1);
    kh_in[0] = &t[0], kh_in[1] = &t[1], kh_in[2] = &t[3];
    expect_error("zero point dtype", MIXRT_STATUS_INVALID_MODEL, "expected the dtype of input #0");
    kh_end();

    /* QLinearMatMul: per-row a scale/zero point [M], per-column b scale/zero point [N],
     * f16 scales, int8 output. */
    {
        double as[3] = {0.02, 0.05, 0.011}, bs[4] = {0.1, 0.003, 0.07, 0.5}, ys = 0.37;
        struct mixrt_tensor q[8] = {t[0],
                                    kh_tensor(MIXRT_DTYPE_F16, 1, (int64_t[]){M}, as),
                                    t[2],
                                    t[1],
                                    kh_tensor(MIXRT_DTYPE_F16, 1, (int64_t[]){Nn}, bs),
                                    kh_tensor_ints(MIXRT_DTYPE_I8, 1, (int64_t[]){Nn}, zcol),
                                    kh_tensor(MIXRT_DTYPE_F32, 0, NULL, &ys),
                                    kh_tensor_ints(MIXRT_DTYPE_I8, 0, NULL, (int64_t[]){-3})};
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
        kh_begin("QLinearMatMul", 21, 8, 1);
        for (int i = 0; i < 8; i++) kh_in[i] = &q[i];
        TU_CHECK(kh_run() == MIXRT_STATUS_OK, "QLinearMatMul: %s", mixrt_context_last_error(kh_ctx));
        TU_CHECK(kh_out[0].dtype == MIXRT_DTYPE_I8, "QLinearMatMul dtype");
        check_ints("QLinearMatMul per-row/col", want, 72);
        kh_end();
        kh_begin("QLinearMatMul", 10, 8, 1);
        for (int i = 0; i < 8; i++) kh_in[i] = &q[i];
        kh_in[6] = &q[1];
        expect_error("y_scale per-tensor", MIXRT_STATUS_INVALID_MODEL, "input #6 'x6'");
        kh_end();
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
    struct mixrt_tensor x = kh_tensor_ints(MIXRT_DTYPE_I8, rank, xd, xv), w = kh_tensor_ints(MIXRT_DTYPE_U8, rank, wd, wv),
                        xzt = kh_tensor_ints(MIXRT_DTYPE_I8, 0, NULL, &xz),
                        wzt = kh_tensor_ints(MIXRT_DTYPE_U8, cc->per_channel ? 1 : 0, (int64_t[]){cc->m}, wz);
    char what[128];
    snprintf(what, sizeof(what), "%s %dD group %lld auto_pad %s", qlinear ? "QLinearConv" : "ConvInteger", nd,
             (long long)cc->group, cc->auto_pad);
    double ws[16], xs = 0.013, ys = 0.9;
    struct mixrt_tensor xst = {0}, wst = {0}, yst = {0}, yzt = {0}, bt = {0};
    if (!qlinear) {
        kh_begin("ConvInteger", 10, 4, 1);
        kh_in[0] = &x, kh_in[1] = &w, kh_in[2] = &xzt, kh_in[3] = &wzt;
    } else {
        for (int i = 0; i < cc->m; i++) ws[i] = cc->per_channel ? 0.01 + 0.007 * i : 0.02;
        xst = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, &xs);
        wst = kh_tensor(MIXRT_DTYPE_F32, cc->per_channel ? 1 : 0, (int64_t[]){cc->m}, ws);
        yst = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, &ys);
        yzt = kh_tensor_ints(MIXRT_DTYPE_U8, 0, NULL, (int64_t[]){120});
        bt = kh_tensor_ints(MIXRT_DTYPE_I32, 1, (int64_t[]){cc->m}, bias);
        kh_begin("QLinearConv", 10, 9, 1);
        kh_in[0] = &x, kh_in[1] = &xst, kh_in[2] = &xzt, kh_in[3] = &w, kh_in[4] = &wst, kh_in[5] = &wzt, kh_in[6] = &yst, kh_in[7] = &yzt;
        kh_in[8] = &bt;
        size_t sp = ny ? ny / (size_t)(yd[0] * yd[1]) : 1;
        for (size_t i = 0; i < ny; i++) {
            size_t m = (i / sp) % (size_t)cc->m;
            float mult = (float)xs * (float)ws[m];
            mult = mult / (float)ys;
            double v = nearbyint((double)(acc[i] + bias[m]) * mult) + 120;
            acc[i] = v < 0 ? 0 : v > 255 ? 255 : (int64_t)v;
        }
    }
    kh_attr_int("group", cc->group);
    kh_attr_ints("kernel_shape", kshape, (size_t)nd);
    kh_attr_ints("strides", strides, (size_t)nd);
    kh_attr_ints("dilations", dil, (size_t)nd);
    if (!strcmp(cc->auto_pad, "NOTSET"))
        kh_attr_ints("pads", pads, (size_t)(2 * nd));
    else
        kh_attr_str("auto_pad", cc->auto_pad);
    mixrt_status st = kh_run();
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: %s", what, mixrt_context_last_error(kh_ctx));
    if (st == MIXRT_STATUS_OK) {
        bool shape_ok = kh_out[0].rank == rank;
        for (int i = 0; shape_ok && i < rank; i++) shape_ok = kh_out[0].dims[i] == yd[i];
        TU_CHECK(shape_ok, "%s: output shape", what);
        if (shape_ok) check_ints(what, acc, ny);
    }
    kh_end();
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
    struct mixrt_tensor x = kh_tensor_ints(MIXRT_DTYPE_U8, 4, xd, NULL), w = kh_tensor_ints(MIXRT_DTYPE_U8, 4, wd, NULL),
                        wz = kh_tensor_ints(MIXRT_DTYPE_U8, 1, (int64_t[]){3}, NULL);
    kh_begin("ConvInteger", 10, 2, 1);
    kh_attr_int("group", 2);
    kh_in[0] = &x, kh_in[1] = &w;
    expect_error("group", MIXRT_STATUS_INVALID_MODEL, "divisible by group");
    kh_end();
    kh_begin("ConvInteger", 10, 2, 1);
    kh_in[0] = &x, kh_in[1] = &w;
    expect_error("kernel too large", MIXRT_STATUS_INVALID_MODEL, "exceeds the padded input");
    kh_end();
    kh_begin("ConvInteger", 10, 2, 1);
    kh_attr_str("auto_pad", "SAME");
    kh_in[0] = &x, kh_in[1] = &w;
    expect_error("auto_pad", MIXRT_STATUS_INVALID_MODEL, "'auto_pad'");
    kh_end();
    kh_begin("ConvInteger", 10, 4, 1);
    kh_attr_str("auto_pad", "SAME_UPPER");
    kh_in[0] = &x, kh_in[1] = &w, kh_in[3] = &wz;
    expect_error("w zero point", MIXRT_STATUS_INVALID_MODEL, "input #3 'x3'");
    kh_end();
    kh_begin("ConvInteger", 10, 3, 1);
    kh_in[0] = &x, kh_in[1] = &w, kh_in[2] = &wz;
    expect_error("x zero point", MIXRT_STATUS_INVALID_MODEL, "per-tensor");
    kh_end();
    release(&x, 1), release(&w, 1), release(&wz, 1);
}

/* Hostile attributes and shapes: named errors, no overflow or crash. */
static void test_hostile(void) {
    struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){2, 5}, NULL),
                        sb = kh_tensor(MIXRT_DTYPE_F32, 2, (int64_t[]){2, 1}, (double[]){1, 1}),
                        s0 = kh_tensor(MIXRT_DTYPE_F32, 1, (int64_t[]){2}, (double[]){1, 1}),
                        x0 = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, (double[]){1}),
                        q0 = kh_tensor_ints(MIXRT_DTYPE_U8, 0, NULL, (int64_t[]){1}),
                        cx = kh_tensor_ints(MIXRT_DTYPE_U8, 4, (int64_t[]){1, 1, 3, 3}, NULL),
                        cw = kh_tensor_ints(MIXRT_DTYPE_U8, 4, (int64_t[]){1, 1, 2, 2}, NULL);
    /* block_size near INT64_MAX: one block per row. */
    kh_begin("QuantizeLinear", 21, 2, 1);
    kh_attr_int("block_size", INT64_MAX);
    kh_in[0] = &x, kh_in[1] = &sb;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK, "huge block_size: %s", mixrt_context_last_error(kh_ctx));
    kh_end();
    kh_begin("QuantizeLinear", 21, 2, 1);
    kh_attr_int("block_size", -1);
    kh_in[0] = &x, kh_in[1] = &sb;
    expect_error("negative block_size", MIXRT_STATUS_INVALID_MODEL, "'block_size'");
    kh_end();
    /* A per-axis scale for a rank-0 x. */
    kh_begin("QuantizeLinear", 13, 2, 1);
    kh_in[0] = &x0, kh_in[1] = &s0;
    expect_error("per-axis on a scalar", MIXRT_STATUS_INVALID_MODEL, "'axis'");
    kh_end();
    /* Rank-0 matmul operand. */
    kh_begin("MatMulInteger", 10, 2, 1);
    kh_in[0] = &q0, kh_in[1] = &q0;
    expect_error("rank-0 matmul", MIXRT_STATUS_INVALID_MODEL, "rank >= 1");
    kh_end();
    /* Huge strides, dilations and pads: bounded, then the output is small. */
    int64_t big2[2] = {INT64_MAX, INT64_MAX}, pads[4] = {0, 0, INT64_C(0x7fffffff), 0}, strides[2] = {1000000, 1};
    kh_begin("ConvInteger", 10, 2, 1);
    kh_attr_ints("dilations", big2, 2);
    kh_in[0] = &cx, kh_in[1] = &cw;
    expect_error("huge dilations", MIXRT_STATUS_INVALID_MODEL, "'dilations'");
    kh_end();
    kh_begin("ConvInteger", 10, 2, 1);
    kh_attr_ints("pads", pads, 4);
    kh_attr_ints("strides", strides, 2);
    kh_in[0] = &cx, kh_in[1] = &cw;
    TU_CHECK(kh_run() == MIXRT_STATUS_OK && kh_out[0].dims[2] == 2148 && kh_out[0].dims[3] == 2, "huge pads and strides: %s",
             mixrt_context_last_error(kh_ctx));
    kh_end();
    kh_begin("ConvInteger", 10, 2, 1);
    kh_attr_ints("pads", pads, 3);
    kh_in[0] = &cx, kh_in[1] = &cw;
    expect_error("pads length", MIXRT_STATUS_INVALID_MODEL, "'pads' has 3 entries");
    kh_end();
    kh_begin("QLinearConv", 10, 8, 1);
    kh_in[0] = &cx, kh_in[1] = &x0, kh_in[2] = &q0, kh_in[3] = &cw, kh_in[4] = &x0, kh_in[5] = &q0, kh_in[6] = &x0;
    expect_error("missing y_zero_point", MIXRT_STATUS_INVALID_MODEL, "input #7");
    kh_end();
    struct mixrt_tensor all[7] = {x, sb, s0, x0, q0, cx, cw};
    release(all, 7);
}

/* Every allocation failing in turn: OUT_OF_MEMORY or success, never a leak. */
static void test_fault_injection(void) {
    int64_t ad[2] = {3, 4}, bd[2] = {4, 2}, xd[4] = {1, 2, 4, 4}, wd[4] = {2, 1, 2, 2};
    struct mixrt_tensor a = kh_tensor_ints(MIXRT_DTYPE_U8, 2, ad, (int64_t[]){1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}),
                        b = kh_tensor_ints(MIXRT_DTYPE_U8, 2, bd, (int64_t[]){1, 2, 3, 4, 5, 6, 7, 8}),
                        zr = kh_tensor_ints(MIXRT_DTYPE_U8, 1, (int64_t[]){3}, (int64_t[]){1, 2, 3}),
                        zc = kh_tensor_ints(MIXRT_DTYPE_U8, 1, (int64_t[]){2}, (int64_t[]){4, 5}),
                        s = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, (double[]){0.5}),
                        z = kh_tensor_ints(MIXRT_DTYPE_U8, 0, NULL, (int64_t[]){3}), x = kh_tensor_ints(MIXRT_DTYPE_U8, 4, xd, NULL),
                        w = kh_tensor_ints(MIXRT_DTYPE_U8, 4, wd, NULL), f = kh_tensor(MIXRT_DTYPE_F32, 2, ad, NULL);
    for (int op = 0; op < 7; op++) {
        int succeeded = 0;
        for (long n = 0; n < 40 && !succeeded; n++) {
            size_t before = mixrt_context_bytes_in_use(kh_ctx);
            switch (op) {
            case 0:
                kh_begin("QuantizeLinear", 13, 3, 1), kh_in[0] = &f, kh_in[1] = &s, kh_in[2] = &z;
                break;
            case 1:
                kh_begin("DequantizeLinear", 13, 3, 1), kh_in[0] = &a, kh_in[1] = &s, kh_in[2] = &z;
                break;
            case 2:
                kh_begin("DynamicQuantizeLinear", 11, 1, 3), kh_in[0] = &f;
                break;
            case 3:
                kh_begin("MatMulInteger", 10, 4, 1), kh_in[0] = &a, kh_in[1] = &b, kh_in[2] = &zr, kh_in[3] = &zc;
                break;
            case 4:
                kh_begin("QLinearMatMul", 10, 8, 1);
                kh_in[0] = &a, kh_in[1] = &s, kh_in[2] = &zr, kh_in[3] = &b, kh_in[4] = &s, kh_in[5] = &zc, kh_in[6] = &s, kh_in[7] = &z;
                break;
            case 5:
                kh_begin("ConvInteger", 10, 2, 1), kh_in[0] = &x, kh_in[1] = &w;
                kh_attr_int("group", 2);
                break;
            default:
                kh_begin("QLinearConv", 10, 8, 1);
                kh_attr_int("group", 2);
                kh_in[0] = &x, kh_in[1] = &s, kh_in[2] = &z, kh_in[3] = &w, kh_in[4] = &s, kh_in[5] = &z, kh_in[6] = &s, kh_in[7] = &z;
                break;
            }
            mixrt_context_fail_alloc_after(kh_ctx, n, 1);
            mixrt_status st = kh_run();
            mixrt_context_fail_alloc_after(kh_ctx, -1, 0);
            if (st == MIXRT_STATUS_OK)
                succeeded = 1;
            else
                TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY, "op %d fail-after %ld: status %d (%s)", op, n, (int)st,
                         mixrt_context_last_error(kh_ctx));
            kh_end();
            TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == before, "op %d fail-after %ld leaks %zu bytes", op, n,
                     mixrt_context_bytes_in_use(kh_ctx) - before);
        }
        TU_CHECK(succeeded, "op %d never succeeded", op);
    }
    struct mixrt_tensor all[9] = {a, b, zr, zc, s, z, x, w, f};
    release(all, 9);
}

int main(void) {
    if (mixrt_context_create(NULL, &kh_ctx) != MIXRT_STATUS_OK) return 1;
    size_t base = mixrt_context_bytes_in_use(kh_ctx);
    test_quantize();
    test_dynamic();
    test_matmul();
    test_conv();
    test_hostile();
    TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == base, "leaked %zu bytes", mixrt_context_bytes_in_use(kh_ctx) - base);
    test_fault_injection();
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_ref_quant");
}
