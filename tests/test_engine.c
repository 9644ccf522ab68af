/* test_engine.c - engines against the f64 reference engine: every example and test
 * model in every precision setting and typing (outputs within the precision's
 * tolerance), model dtype independence (f32 and bf16 models get the same kernels), the
 * unsupported-dtype policy (named errors; fallback runs), precision constraints, and
 * the timing cache. Models come from scripts/make_engine_models.py and
 * scripts/make_examples.py (ctest fixtures). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "backend/cpu/kernels.h"
#include "engine/engine_impl.h"
#include "engine/plan_file.h"
#include "mixrt/mixrt_engine.h"
#include "testutil.h"

static char models[1024], examples[1024];
static mixrt_context_t ctx;

/* Seeded random inputs for every input without an initializer; symbolic dims are 3.
 * Float data is drawn in f64 and stored in the input's dtype, so an f32 and a bf16
 * model get values that differ only by rounding. */
static int make_inputs(mixrt_engine_t e, struct mixrt_tensor **in, const char **names, uint64_t seed) {
    int n = 0;
    tu_seed(seed);
    for (size_t i = 0; i < mixrt_engine_input_count(e); i++) {
        struct mixrt_value_info vi;
        mixrt_engine_get_input(e, i, &vi);
        if (vi.has_initializer) continue;
        int64_t dims[MIXRT_MAX_RANK];
        for (int d = 0; d < vi.rank; d++) dims[d] = vi.dims[d] >= 0 ? vi.dims[d] : 3;
        if (mixrt_tensor_create(ctx, vi.dtype, vi.rank, dims, &in[n]) != MIXRT_STATUS_OK) return -1;
        size_t cnt = mixrt_tensor_numel(in[n]);
        for (size_t k = 0; k < cnt; k++) {
            double v = tu_uniform(-1, 1);
            if (mixrt_dtype_is_float(vi.dtype)) {
                double f = v;
                if (vi.dtype == MIXRT_DTYPE_F32) ((float *)in[n]->data)[k] = (float)f;
                else mixrt_convert((char *)in[n]->data + k * mixrt_dtype_size(vi.dtype), vi.dtype, &f,
                                   MIXRT_DTYPE_F64, 1);
            } else if (vi.dtype == MIXRT_DTYPE_I64) {
                ((int64_t *)in[n]->data)[k] = (int64_t)(fabs(v) * 7);
            } else if (vi.dtype == MIXRT_DTYPE_I32) {
                ((int32_t *)in[n]->data)[k] = (int32_t)(fabs(v) * 7);
            } else if (vi.dtype == MIXRT_DTYPE_I8) {
                ((int8_t *)in[n]->data)[k] = (int8_t)(v * 127);
            } else if (vi.dtype == MIXRT_DTYPE_BOOL) {
                ((uint8_t *)in[n]->data)[k] = v > 0;
            }
        }
        names[n++] = vi.name;
    }
    return n;
}

static double rel_norm(const struct mixrt_tensor *a, const struct mixrt_tensor *b) {
    size_t n = mixrt_tensor_numel(a);
    if (n != mixrt_tensor_numel(b)) return INFINITY;
    double num = 0, den = 0;
    for (size_t i = 0; i < n; i++) {
        double x, y;
        mixrt_convert(&x, MIXRT_DTYPE_F64, (const char *)a->data + i * mixrt_dtype_size(a->dtype), a->dtype, 1);
        mixrt_convert(&y, MIXRT_DTYPE_F64, (const char *)b->data + i * mixrt_dtype_size(b->dtype), b->dtype, 1);
        num += (x - y) * (x - y);
        den += y * y;
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

/* Builds path under opts, runs it and the f64 reference on the same inputs; returns the
 * worst float output rel-norm error (or -1 when the build failed). */
static double engine_error(const char *path, const struct mixrt_build_options *o, mixrt_engine_t *keep) {
    mixrt_engine_t e = NULL, r = NULL;
    struct mixrt_tensor *in[16] = {0}, *out_e[16] = {0}, *out_r[16] = {0};
    const char *names[16];
    double worst = -1;
    int n = 0;
    mixrt_status st = mixrt_engine_build(ctx, path, o, &e);
    TU_CHECK(st == MIXRT_STATUS_OK, "build %s: %s", path, mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) goto done;
    st = mixrt_engine_build_reference(ctx, path, NULL, 0, &r);
    TU_CHECK(st == MIXRT_STATUS_OK, "reference %s: %s", path, mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) goto done;
    n = make_inputs(e, in, names, 42);
    TU_CHECK(n >= 0, "inputs for %s", path);
    if (n < 0) goto done;
    st = mixrt_engine_run(e, (size_t)n, names, (const struct mixrt_tensor *const *)in, out_e);
    TU_CHECK(st == MIXRT_STATUS_OK, "run %s: %s", path, mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) goto done;
    st = mixrt_engine_run(r, (size_t)n, names, (const struct mixrt_tensor *const *)in, out_r);
    TU_CHECK(st == MIXRT_STATUS_OK, "reference run %s: %s", path, mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) goto done;
    worst = 0;
    for (size_t i = 0; i < mixrt_engine_output_count(e); i++) {
        struct mixrt_value_info vi;
        mixrt_engine_get_output(e, i, &vi);
        TU_CHECK(out_e[i]->dtype == vi.dtype, "%s output %s dtype %d, declared %d", path, vi.name, out_e[i]->dtype,
                 vi.dtype);
        if (!mixrt_dtype_is_float(out_e[i]->dtype)) {
            TU_CHECK(out_e[i]->nbytes == out_r[i]->nbytes && !memcmp(out_e[i]->data, out_r[i]->data, out_e[i]->nbytes),
                     "%s output %s differs", path, vi.name);
            continue;
        }
        double err = rel_norm(out_e[i], out_r[i]);
        if (err > worst) worst = err;
    }
done:
    for (int i = 0; i < 16; i++) {
        mixrt_tensor_destroy(ctx, in[i]);
        mixrt_tensor_destroy(ctx, out_e[i]);
        mixrt_tensor_destroy(ctx, out_r[i]);
    }
    if (keep) *keep = e;
    else mixrt_engine_destroy(e);
    mixrt_engine_destroy(r);
    return worst;
}

static size_t count_precision(mixrt_engine_t e, const char *op, mixrt_dtype p) {
    size_t c = 0;
    for (size_t i = 0; i < mixrt_engine_layer_count(e); i++) {
        struct mixrt_layer_info li;
        mixrt_engine_get_layer(e, i, &li);
        if ((!op || !strcmp(li.op_type, op)) && li.precision == p) c++;
    }
    return c;
}

static void test_precisions(void) {
    static const char *files[] = {"mlp_f32", "mlp_bf16", "mlp_f16", "qdq_f32", "untyped_f32"};
    static const char *ex[] = {"cnn_f32", "cnn_bf16", "cnn_f16", "transformer_f32", "transformer_bf16",
                               "transformer_f16"};
    struct {
        unsigned prec;
        int strong;
        double tol;
    } settings[] = {
        {MIXRT_PRECISION_FP32, 0, 1e-5},
        {MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16, 0, 2e-2},
        {MIXRT_PRECISION_FP32 | MIXRT_PRECISION_FP16, 0, 5e-3},
        {MIXRT_PRECISION_BF16, 0, 2e-2},
        {MIXRT_PRECISION_FP32, 1, 2e-2},
    };
    char path[2048];
    for (size_t f = 0; f < 11; f++) {
        if (f < 5) snprintf(path, sizeof(path), "%s/%s.onnx", models, files[f]);
        else snprintf(path, sizeof(path), "%s/%s.onnx", examples, ex[f - 5]);
        for (size_t s = 0; s < sizeof(settings) / sizeof(settings[0]); s++) {
            struct mixrt_build_options o;
            mixrt_build_options_init(&o);
            o.precisions = settings[s].prec;
            o.strongly_typed = settings[s].strong;
            mixrt_engine_t e = NULL;
            double err = engine_error(path, &o, &e);
            double tol = settings[s].tol;
            /* Strong typing of a 16-bit model computes in that dtype; f32 weak typing of a
             * 16-bit model computes in f32 from the rounded weights and inputs, as the
             * reference does (exact data, so only the f32 arithmetic differs). */
            if (settings[s].strong && strstr(path, "f32")) tol = 1e-5;
            if (settings[s].strong && strstr(path, "f16") && !strstr(path, "bf16")) tol = 5e-3;
            /* 16-bit outputs are rounded once more at the end (the reference rounds too,
             * but from f64: one-ulp differences remain). */
            if (strstr(path, "bf16") && tol < 8e-3) tol = 8e-3;
            else if (strstr(path, "f16") && tol < 1e-3) tol = 1e-3;
            TU_CHECK(err >= 0 && err <= tol, "%s precisions 0x%x%s: rel-norm error %.3g > %.3g "
                     "(repro: mixrt check %s --precision ...)", path, settings[s].prec,
                     settings[s].strong ? " strong" : "", err, tol, path);
            if (e && !settings[s].strong && settings[s].prec == MIXRT_PRECISION_FP32) {
                /* Only the boundary casts of a 16-bit model touch 16-bit data. */
                TU_CHECK(count_precision(e, NULL, MIXRT_DTYPE_BF16) == count_precision(e, "Cast", MIXRT_DTYPE_BF16) &&
                         count_precision(e, NULL, MIXRT_DTYPE_F16) == count_precision(e, "Cast", MIXRT_DTYPE_F16),
                         "%s fp32: no layer may compute in 16 bits", path);
            }
            if (e && !settings[s].strong && settings[s].prec == (MIXRT_PRECISION_FP32 | MIXRT_PRECISION_FP16)) {
                TU_CHECK(count_precision(e, "MatMul", MIXRT_DTYPE_BF16) == 0, "%s fp32,fp16: no bf16 MatMul", path);
            }
            mixrt_engine_destroy(e);
        }
    }
}

/* Same network, f32 and bf16 storage, same enabled precisions, shared timing cache: the
 * layers other than boundary casts get the same kernels and precisions. */
static void test_dtype_independence(void) {
    char cache[1100], a[2048], b[2048];
    snprintf(cache, sizeof(cache), "%s/independence.cache", models);
    unlink(cache);
    const char *pairs[][2] = {{"cnn_f32", "cnn_bf16"}, {"transformer_f32", "transformer_bf16"}};
    for (int p = 0; p < 2; p++) {
        snprintf(a, sizeof(a), "%s/%s.onnx", examples, pairs[p][0]);
        snprintf(b, sizeof(b), "%s/%s.onnx", examples, pairs[p][1]);
        struct mixrt_build_options o;
        mixrt_build_options_init(&o);
        o.precisions = MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16;
        o.timing_cache = cache;
        mixrt_engine_t ea = NULL, eb = NULL;
        mixrt_status sa = mixrt_engine_build(ctx, a, &o, &ea);
        TU_CHECK(sa == MIXRT_STATUS_OK, "build %s: %s", a, mixrt_context_last_error(ctx));
        mixrt_status sb = mixrt_engine_build(ctx, b, &o, &eb);
        TU_CHECK(sb == MIXRT_STATUS_OK, "build %s: %s", b, mixrt_context_last_error(ctx));
        if (sa == MIXRT_STATUS_OK && sb == MIXRT_STATUS_OK) {
            size_t ia = 0, ib = 0, compared = 0, na = mixrt_engine_layer_count(ea), nb = mixrt_engine_layer_count(eb);
            struct mixrt_layer_info la, lb;
            for (;;) {
                while (ia < na && (mixrt_engine_get_layer(ea, ia, &la), !strcmp(la.op_type, "Cast"))) ia++;
                while (ib < nb && (mixrt_engine_get_layer(eb, ib, &lb), !strcmp(lb.op_type, "Cast"))) ib++;
                if (ia >= na || ib >= nb) break;
                /* the image's move at the input: a TransposeCast where the model's dtype is not the
                 * engine's, a plain Transpose where it is (an I/O cast, folded) */
                bool io_move = !strcmp(la.name, lb.name) && strstr(la.kernel, "dm_transpose") &&
                               strstr(lb.kernel, "dm_transpose");
                TU_CHECK(!strcmp(la.name, lb.name) && (io_move || !strcmp(la.kernel, lb.kernel)) &&
                             la.precision == lb.precision,
                         "%s vs %s: layer '%s' %s %s / '%s' %s %s", pairs[p][0], pairs[p][1], la.name, la.kernel,
                         mixrt_dtype_name(la.precision), lb.name, lb.kernel, mixrt_dtype_name(lb.precision));
                ia++;
                ib++;
                compared++;
            }
            TU_CHECK(ia >= na && ib >= nb && compared > 5, "%s vs %s: layer lists differ in length (%zu/%zu, %zu "
                     "compared)", pairs[p][0], pairs[p][1], ia, ib, compared);
            /* Only where the CPU has bf16 dot products: elsewhere the products and convs refuse
             * bf16 (the build says so) and whether a memory-bound layer runs bf16 is up to the
             * timing, so nothing is asserted there. */
            if (mixrt_cpu_features()->avx512_bf16) {
#if defined(__SANITIZE_ADDRESS__)
                /* Under ASan the builder times instrumented code, and a CI run once found f32
                 * faster for every layer of the small cnn (session 51): reported, not asserted. */
                if (count_precision(ea, NULL, MIXRT_DTYPE_BF16) == 0)
                    printf("test_engine: %s {fp32,bf16}: no bf16 layer under ASan's timings (not asserted "
                           "in this build; the Release build asserts it)\n", pairs[p][0]);
#else
                /* The choice is timed, and a CI run under load once had every layer of the small
                 * transformer faster in f32 (session 65): a build with no bf16 layer is built again
                 * with a fresh cache, up to three times in all. A planner that never picks bf16
                 * fails all three. */
                size_t nbf = count_precision(ea, NULL, MIXRT_DTYPE_BF16);
                for (int tries = 1; nbf == 0 && tries < 3; tries++) {
                    char retry_cache[1200];
                    snprintf(retry_cache, sizeof(retry_cache), "%s/independence_retry.cache", models);
                    unlink(retry_cache);
                    struct mixrt_build_options ro = o;
                    ro.timing_cache = retry_cache;
                    mixrt_engine_t er = NULL;
                    if (mixrt_engine_build(ctx, a, &ro, &er) == MIXRT_STATUS_OK)
                        nbf = count_precision(er, NULL, MIXRT_DTYPE_BF16);
                    mixrt_engine_destroy(er);
                    unlink(retry_cache);
                    printf("test_engine: %s {fp32,bf16}: no bf16 layer, built again (try %d): %zu bf16 layers\n",
                           pairs[p][0], tries + 1, nbf);
                }
                TU_CHECK(nbf > 0, "%s {fp32,bf16}: some layer should be bf16 on this CPU (3 builds)", pairs[p][0]);
#endif
            }
        }
        mixrt_engine_destroy(ea);
        mixrt_engine_destroy(eb);
    }
    TU_CHECK(access(cache, R_OK) == 0, "timing cache %s was not written", cache);
}

static void expect_build_error(const char *file, const struct mixrt_build_options *o, mixrt_status want,
                               const char *const *needles) {
    char path[2048];
    snprintf(path, sizeof(path), "%s/%s.onnx", models, file);
    mixrt_engine_t e = NULL;
    mixrt_status st = mixrt_engine_build(ctx, path, o, &e);
    const char *msg = mixrt_context_last_error(ctx);
    TU_CHECK(st == want, "%s: status %d, expected %d (%s)", file, st, want, msg);
    for (int i = 0; needles[i]; i++)
        TU_CHECK(msg && strstr(msg, needles[i]), "%s: message '%s' lacks '%s'", file, msg ? msg : "", needles[i]);
    mixrt_engine_destroy(e);
}

static void test_unsupported_dtypes(void) {
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    struct {
        const char *file, *tensor, *dtype;
    } cases[] = {
        {"dt_float8_input", "x8", "f8e4m3fn"},
        {"dt_complex_input", "xc", "c64"},
        {"dt_int4_input", "xi4", "i4"},
        {"dt_float8_cast", "x8", "f8e4m3fn"},
        {"dt_string_add", "xs", "string"},
        {"dt_float8_weight", "w8", "f8e4m3fn"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *needles[] = {cases[i].tensor, cases[i].dtype, "--unsupported-dtype", NULL};
        o.unsupported_dtype = MIXRT_UNSUPPORTED_DTYPE_ERROR;
        expect_build_error(cases[i].file, &o, MIXRT_STATUS_UNSUPPORTED_DTYPE, needles);
        /* Fallback: builds, the tensor is f32, and it runs against the reference of the
         * same (converted) graph. */
        o.unsupported_dtype = MIXRT_UNSUPPORTED_DTYPE_FALLBACK;
        char path[2048];
        snprintf(path, sizeof(path), "%s/%s.onnx", models, cases[i].file);
        mixrt_engine_t e = NULL;
        mixrt_status st = mixrt_engine_build(ctx, path, &o, &e);
        TU_CHECK(st == MIXRT_STATUS_OK, "%s fallback: %s", cases[i].file, mixrt_context_last_error(ctx));
        if (st == MIXRT_STATUS_OK) {
            struct mixrt_value_info vi;
            mixrt_engine_get_input(e, 0, &vi);
            TU_CHECK(vi.dtype == MIXRT_DTYPE_F32, "%s fallback: input is %s, expected f32", cases[i].file,
                     mixrt_dtype_name(vi.dtype));
            struct mixrt_tensor *in[4] = {0}, *out[4] = {0};
            const char *names[4];
            int n = make_inputs(e, in, names, 7);
            st = mixrt_engine_run(e, (size_t)n, names, (const struct mixrt_tensor *const *)in, out);
            TU_CHECK(st == MIXRT_STATUS_OK, "%s fallback run: %s", cases[i].file, mixrt_context_last_error(ctx));
            if (st == MIXRT_STATUS_OK && out[0]->dtype == MIXRT_DTYPE_F32 && in[0]->dtype == MIXRT_DTYPE_F32) {
                /* relu / identity / cast round trip / x + 1 of the f32 input */
                const float *x = in[0]->data, *y = out[0]->data;
                for (size_t k = 0; k < mixrt_tensor_numel(out[0]); k++) {
                    float want = !strcmp(cases[i].file, "dt_float8_input") ? (x[k] > 0 ? x[k] : 0) : x[k];
                    if (!strcmp(cases[i].file, "dt_string_add")) want = x[k] + 1;
                    if (!strcmp(cases[i].file, "dt_float8_weight")) want = x[k] + (float[]){1, 2, -1, 448}[k];
                    TU_CHECK(y[k] == want, "%s fallback: y[%zu] = %g, expected %g", cases[i].file, k, y[k], want);
                }
            }
            for (int k = 0; k < 4; k++) {
                mixrt_tensor_destroy(ctx, in[k]);
                mixrt_tensor_destroy(ctx, out[k]);
            }
        }
        mixrt_engine_destroy(e);
    }
}

static void test_constraints(void) {
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    struct mixrt_layer_precision lp[2] = {{"shape", MIXRT_DTYPE_BF16}, {"fc*", MIXRT_DTYPE_F16}};
    o.layer_precisions = lp;
    o.n_layer_precisions = 2;
    o.constraints = MIXRT_CONSTRAINTS_OBEY;
    const char *needles[] = {"shape", "obey", "bf16", NULL};
    expect_build_error("mlp_f32", &o, MIXRT_STATUS_UNSUPPORTED, needles);
    /* prefer: builds; the Shape layer stays, the fc layers run in fp16 although fp16 is
     * not among the enabled precisions (the override enables it for them). */
    o.constraints = MIXRT_CONSTRAINTS_PREFER;
    char path[2048];
    snprintf(path, sizeof(path), "%s/mlp_f32.onnx", models);
    mixrt_engine_t e = NULL;
    double err = engine_error(path, &o, &e);
    TU_CHECK(err >= 0 && err < 5e-3, "mlp prefer: error %g", err);
    /* fc1 (MatMul + bias + Relu) is fused into one FusedMatMul layer; fc2 stays a MatMul. */
    if (e)
        TU_CHECK(count_precision(e, "MatMul", MIXRT_DTYPE_F16) + count_precision(e, "FusedMatMul", MIXRT_DTYPE_F16) == 2,
                 "mlp prefer: both fc layers should be fp16");
    mixrt_engine_destroy(e);
    /* obey with a glob that matches nothing. */
    struct mixrt_layer_precision none[1] = {{"no_such_layer*", MIXRT_DTYPE_BF16}};
    o.layer_precisions = none;
    o.n_layer_precisions = 1;
    o.constraints = MIXRT_CONSTRAINTS_OBEY;
    const char *needles2[] = {"no_such_layer*", "matches no layer", NULL};
    expect_build_error("mlp_f32", &o, MIXRT_STATUS_INVALID_ARGUMENT, needles2);
    /* strongly typed + obey conflicts. */
    o.layer_precisions = lp + 1;
    o.strongly_typed = 1;
    const char *needles3[] = {"fc1", "--strongly-typed", NULL};
    expect_build_error("mlp_f32", &o, MIXRT_STATUS_INVALID_ARGUMENT, needles3);
}

/* A Resize that enlarges its input into an f32 graph output runs in f32 (its small input is cast
 * up, not its output down); one that shrinks follows its bf16 input. */
static void test_enlarging_output(void) {
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.precisions = MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16;
    struct mixrt_layer_precision lp[1] = {{"conv", MIXRT_DTYPE_BF16}};
    o.layer_precisions = lp, o.n_layer_precisions = 1;
    /* obeyed: a preference can lose to the conv's timing on a loaded machine, and resize_down
     * (which follows its input) then ran in f32 */
    o.constraints = MIXRT_CONSTRAINTS_OBEY;
    char path[2048];
    snprintf(path, sizeof(path), "%s/upsample_head_f32.onnx", models);
    mixrt_engine_t e = NULL;
    double err = engine_error(path, &o, &e);
    TU_CHECK(err >= 0 && err < 2e-2, "upsample head fp32,bf16: error %g", err);
    for (size_t i = 0; e && i < mixrt_engine_layer_count(e); i++) {
        struct mixrt_layer_info li;
        mixrt_engine_get_layer(e, i, &li);
        if (!strcmp(li.name, "resize_up"))
            TU_CHECK(li.precision == MIXRT_DTYPE_F32, "resize_up runs in %s, expected fp32", mixrt_dtype_name(li.precision));
        if (!strcmp(li.name, "resize_down"))
            TU_CHECK(li.precision == MIXRT_DTYPE_BF16, "resize_down runs in %s, expected bf16",
                     mixrt_dtype_name(li.precision));
    }
    TU_CHECK(e && count_precision(e, "Resize", MIXRT_DTYPE_F32) == 1 && count_precision(e, "Resize", MIXRT_DTYPE_BF16) == 1,
             "upsample head: one f32 and one bf16 Resize expected");
    mixrt_engine_destroy(e);
}

/* A product the planner cannot time (its rows come from NonZero, known only at run time) gets
 * a precision an optimized kernel takes: on a CPU without AVX512-BF16 that is f32 (the bf16
 * candidate only the f64 reference runs: Faster R-CNN's box head took 2.1 s so), with it bf16
 * may stay. The engine's output against the reference executor's. */
static void test_untimed_product(void) {
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.precisions = MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16;
    char path[2048];
    snprintf(path, sizeof(path), "%s/box_rows_f32.onnx", models);
    mixrt_engine_t e = NULL;
    double err = engine_error(path, &o, &e);
    TU_CHECK(err >= 0 && err < 2e-2, "box rows fp32,bf16: error %g", err);
    int seen = 0;
    for (size_t i = 0; e && i < mixrt_engine_layer_count(e); i++) {
        struct mixrt_layer_info li;
        mixrt_engine_get_layer(e, i, &li);
        if (!strstr(li.op_type, "MatMul") && strcmp(li.op_type, "Gemm")) continue;
        seen++;
        TU_CHECK(strcmp(li.kernel, "ref") != 0, "box rows: the product '%s' (%s) runs on the reference kernel in %s",
                 li.name, li.op_type, mixrt_dtype_name(li.precision));
    }
    TU_CHECK(!e || seen == 1, "box rows: %d products, expected 1", seen);
    mixrt_engine_destroy(e);
}

/* An op that follows its inputs, with a large f32 input and a small bf16 one, runs f32: the
 * squeeze-excite scale with its gate's conv forced bf16 (the Cast of 16 gates up, not of the
 * 16x12x12 map down and back). */
static void test_follow_wide_input(void) {
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.precisions = MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16;
    struct mixrt_layer_precision lp[1] = {{"gate_fc", MIXRT_DTYPE_BF16}};
    o.layer_precisions = lp, o.n_layer_precisions = 1;
    o.constraints = MIXRT_CONSTRAINTS_OBEY;
    char path[2048];
    snprintf(path, sizeof(path), "%s/se_scale_f32.onnx", models);
    mixrt_engine_t e = NULL;
    double err = engine_error(path, &o, &e);
    TU_CHECK(err >= 0 && err < 2e-2, "se scale fp32,bf16: error %g", err);
    int seen = 0;
    for (size_t i = 0; e && i < mixrt_engine_layer_count(e); i++) {
        struct mixrt_layer_info li;
        mixrt_engine_get_layer(e, i, &li);
        if (!strcmp(li.name, "gate_fc"))
            TU_CHECK(li.precision == MIXRT_DTYPE_BF16, "gate_fc runs in %s, forced bf16", mixrt_dtype_name(li.precision));
        if (strcmp(li.name, "scale")) continue;
        seen++;
        TU_CHECK(li.precision == MIXRT_DTYPE_F32, "the scale Mul runs in %s, expected fp32",
                 mixrt_dtype_name(li.precision));
    }
    TU_CHECK(!e || seen == 1, "se scale: %d layers named scale", seen);
    mixrt_engine_destroy(e);
}

/* A product writing a graph output of a few values (a 3-class head) runs f32 under
 * {fp32,bf16}: its f32 time is within the planner's margin of its bf16 one. */
static void test_small_output_head(void) {
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.precisions = MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16;
    char path[2048];
    snprintf(path, sizeof(path), "%s/small_head_f32.onnx", models);
    mixrt_engine_t e = NULL;
    double err = engine_error(path, &o, &e);
    TU_CHECK(err >= 0 && err < 2e-2, "small head fp32,bf16: error %g", err);
    int seen = 0;
    for (size_t i = 0; e && i < mixrt_engine_layer_count(e); i++) {
        struct mixrt_layer_info li;
        mixrt_engine_get_layer(e, i, &li);
        if (strcmp(li.name, "head")) continue;
        seen++;
        TU_CHECK(li.precision == MIXRT_DTYPE_F32, "the head (%s, kernel %s) runs in %s, expected fp32", li.op_type,
                 li.kernel, mixrt_dtype_name(li.precision));
    }
    TU_CHECK(!e || seen == 1, "small head: %d layers named head", seen);
    mixrt_engine_destroy(e);
}

static bool same_outputs(mixrt_engine_t a, mixrt_engine_t b, const char *what) {
    struct mixrt_tensor *in[16] = {0}, *oa[16] = {0}, *ob[16] = {0};
    const char *names[16];
    bool same = false;
    int n = make_inputs(a, in, names, 99);
    mixrt_status sa = mixrt_engine_run(a, (size_t)n, names, (const struct mixrt_tensor *const *)in, oa);
    mixrt_status sb = mixrt_engine_run(b, (size_t)n, names, (const struct mixrt_tensor *const *)in, ob);
    TU_CHECK(sa == MIXRT_STATUS_OK && sb == MIXRT_STATUS_OK, "%s: runs failed: %s", what, mixrt_context_last_error(ctx));
    if (sa == MIXRT_STATUS_OK && sb == MIXRT_STATUS_OK) {
        same = true;
        for (size_t i = 0; i < mixrt_engine_output_count(a); i++)
            same &= oa[i]->dtype == ob[i]->dtype && oa[i]->nbytes == ob[i]->nbytes &&
                    !memcmp(oa[i]->data, ob[i]->data, oa[i]->nbytes);
    }
    for (int i = 0; i < 16; i++) {
        mixrt_tensor_destroy(ctx, in[i]);
        mixrt_tensor_destroy(ctx, oa[i]);
        mixrt_tensor_destroy(ctx, ob[i]);
    }
    return same;
}

/* Constants read back from the model file (engine.c, try_release): forced for every packed
 * weight (MIXRT_RELEASE_FROM_FILE=always) on a model file the importer maps, the engine drops
 * them, runs bit-identically to one that keeps them, and saves a plan that loads and runs the
 * same (the bytes came back from the file); a file changed after the build makes the save a
 * named error, not a plan of other weights. */
static void test_release_from_file(void) {
    char src[2048], copy[2100], plan[2100], cache[2100];
    snprintf(src, sizeof(src), "%s/conv_wide_f32.onnx", models);
    snprintf(copy, sizeof(copy), "%s/conv_wide_copy.onnx", models);
    snprintf(plan, sizeof(plan), "%s/conv_wide.plan", models);
    snprintf(cache, sizeof(cache), "%s/conv_wide.cache", models);
    FILE *in = fopen(src, "rb"), *out = fopen(copy, "wb");
    TU_CHECK(in && out, "cannot copy %s", src);
    char buf[65536];
    size_t n, total = 0;
    while (in && out && (n = fread(buf, 1, sizeof(buf), in)) > 0) total += fwrite(buf, 1, n, out);
    if (in) fclose(in);
    if (out) fclose(out);
    TU_CHECK(total > ((size_t)1 << 20), "conv_wide_f32.onnx is %zu bytes: too small to be mapped", total);
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.precisions = MIXRT_PRECISION_FP32;
    o.timing_cache = cache; /* both builds take the same kernels */
    unlink(cache);
    /* Every candidate but igf_conv_nhwc packs its weight (kernels.c's packings); igf keeps the
     * graph's copy for its reference fallback. Which one wins the timing depends on the load
     * (a CI run beside the demo dropped 1 of the 2), so it is left out here: the test is about
     * the release, not the choice. */
    setenv("MIXRT_IGFCONV", "off", 1);
    mixrt_engine_t e0 = NULL, e1 = NULL, l = NULL;
    setenv("MIXRT_RELEASE_WEIGHTS", "off", 1);
    mixrt_status s0 = mixrt_engine_build(ctx, copy, &o, &e0);
    unsetenv("MIXRT_RELEASE_WEIGHTS");
    setenv("MIXRT_RELEASE_FROM_FILE", "always", 1);
    mixrt_status s1 = mixrt_engine_build(ctx, copy, &o, &e1);
    unsetenv("MIXRT_RELEASE_FROM_FILE");
    TU_CHECK(s0 == MIXRT_STATUS_OK && s1 == MIXRT_STATUS_OK, "conv_wide: build: %s", mixrt_context_last_error(ctx));
    if (s0 == MIXRT_STATUS_OK && s1 == MIXRT_STATUS_OK) {
        size_t bytes = 0;
        int nr = mixrt_engine_released(e1, &bytes);
        TU_CHECK(nr == 2 && bytes == 2 * (size_t)128 * 128 * 9 * 4, "conv_wide: %d constants (%zu bytes) dropped, "
                 "expected both weights", nr, bytes);
        TU_CHECK(same_outputs(e0, e1, "conv_wide"), "conv_wide: outputs differ with the weights dropped");
        mixrt_status ss = mixrt_engine_save(e1, plan);
        TU_CHECK(ss == MIXRT_STATUS_OK && mixrt_engine_released(e1, NULL) == 0, "conv_wide: save: %s",
                 mixrt_context_last_error(ctx));
        if (ss == MIXRT_STATUS_OK && mixrt_engine_load(ctx, plan, &l) == MIXRT_STATUS_OK)
            TU_CHECK(same_outputs(e0, l, "conv_wide plan"), "conv_wide: the plan's outputs differ");
        else
            TU_CHECK(0, "conv_wide: load: %s", mixrt_context_last_error(ctx));
    }
    mixrt_engine_destroy(e1), e1 = NULL;
    mixrt_engine_destroy(l);
    /* The file changes after the build: the save fails by name. */
    setenv("MIXRT_RELEASE_FROM_FILE", "always", 1);
    s1 = mixrt_engine_build(ctx, copy, &o, &e1);
    unsetenv("MIXRT_RELEASE_FROM_FILE");
    TU_CHECK(s1 == MIXRT_STATUS_OK && mixrt_engine_released(e1, NULL) == 2, "conv_wide: rebuild: %s",
             mixrt_context_last_error(ctx));
    FILE *f = fopen(copy, "r+b");
    if (f) {
        fseek(f, -4096, SEEK_END); /* inside the second weight's bytes */
        unsigned char z[64] = {0};
        fwrite(z, 1, sizeof(z), f);
        fclose(f);
    }
    mixrt_status ss = e1 ? mixrt_engine_save(e1, plan) : MIXRT_STATUS_OK;
    TU_CHECK(ss == MIXRT_STATUS_IO_ERROR && strstr(mixrt_context_last_error(ctx), "changed or went away"),
             "conv_wide: saving after the file changed: status %d (%s)", (int)ss, mixrt_context_last_error(ctx));
    mixrt_engine_destroy(e0);
    mixrt_engine_destroy(e1);
    unsetenv("MIXRT_IGFCONV");
    unlink(copy), unlink(plan), unlink(cache);
}

/* Build, save, load: the loaded engine has the same layers and kernels and gives
 * bit-identical outputs. */
static void test_plan_round_trip(void) {
    static const char *ex[] = {"cnn_f32", "cnn_bf16", "transformer_f32", "transformer_bf16", "transformer_f16"};
    unsigned precs[] = {MIXRT_PRECISION_FP32, MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16, MIXRT_PRECISION_FP16};
    char path[2048], plan[2100];
    for (int f = 0; f < 6; f++) {
        if (f < 5) snprintf(path, sizeof(path), "%s/%s.onnx", examples, ex[f]);
        else snprintf(path, sizeof(path), "%s/mlp_bf16.onnx", models);
        snprintf(plan, sizeof(plan), "%s/roundtrip.plan", models);
        for (int p = 0; p < 3; p++) {
            struct mixrt_build_options o;
            mixrt_build_options_init(&o);
            o.precisions = precs[p];
            mixrt_engine_t e = NULL, l = NULL;
            mixrt_status st = mixrt_engine_build(ctx, path, &o, &e);
            TU_CHECK(st == MIXRT_STATUS_OK, "build %s: %s", path, mixrt_context_last_error(ctx));
            if (st == MIXRT_STATUS_OK) st = mixrt_engine_save(e, plan);
            TU_CHECK(st == MIXRT_STATUS_OK, "save %s: %s", plan, mixrt_context_last_error(ctx));
            if (st == MIXRT_STATUS_OK) st = mixrt_engine_load(ctx, plan, &l);
            TU_CHECK(st == MIXRT_STATUS_OK, "load %s (from %s): %s", plan, path, mixrt_context_last_error(ctx));
            if (st == MIXRT_STATUS_OK) {
                TU_CHECK(mixrt_engine_layer_count(e) == mixrt_engine_layer_count(l), "%s: %zu layers, loaded %zu", path,
                         mixrt_engine_layer_count(e), mixrt_engine_layer_count(l));
                for (size_t i = 0; i < mixrt_engine_layer_count(e) && i < mixrt_engine_layer_count(l); i++) {
                    struct mixrt_layer_info a, b;
                    mixrt_engine_get_layer(e, i, &a);
                    mixrt_engine_get_layer(l, i, &b);
                    TU_CHECK(!strcmp(a.name, b.name) && !strcmp(a.kernel, b.kernel) && a.precision == b.precision,
                             "%s layer %zu: '%s' %s %s vs loaded '%s' %s %s", path, i, a.name, a.kernel,
                             mixrt_dtype_name(a.precision), b.name, b.kernel, mixrt_dtype_name(b.precision));
                }
                TU_CHECK(same_outputs(e, l, path), "%s precisions 0x%x: the loaded plan's outputs differ", path,
                         precs[p]);
            }
            mixrt_engine_destroy(e);
            mixrt_engine_destroy(l);
        }
    }
}

/* Truncations, bit flips (raw and with checksums repaired, so the flip reaches the
 * sections' parsers), a foreign target and another mixrt version: a clean error, or
 * (for a repaired flip that still parses) an engine that runs without crashing. */
static void test_plan_corruption(void) {
    char path[2048], plan[2100];
    snprintf(path, sizeof(path), "%s/mlp_f32.onnx", models);
    snprintf(plan, sizeof(plan), "%s/corrupt.plan", models);
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.precisions = MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16;
    mixrt_engine_t e = NULL;
    if (mixrt_engine_build(ctx, path, &o, &e) != MIXRT_STATUS_OK || mixrt_engine_save(e, plan) != MIXRT_STATUS_OK) {
        TU_CHECK(0, "build/save %s: %s", plan, mixrt_context_last_error(ctx));
        mixrt_engine_destroy(e);
        return;
    }
    mixrt_engine_destroy(e);
    FILE *f = fopen(plan, "rb");
    fseek(f, 0, SEEK_END);
    size_t size = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *img = aligned_alloc(64, (size + 63) / 64 * 64), *tmp = aligned_alloc(64, (size + 63) / 64 * 64);
    TU_CHECK(fread(img, 1, size, f) == size, "read %s", plan);
    fclose(f);
    int errors = 0, loaded = 0;
    for (size_t cut = 0; cut < size; cut += (cut < 512 ? 1 : 97)) {
        memcpy(tmp, img, cut);
        mixrt_engine_t l = NULL;
        mixrt_status st = mixrt_engine_load_buffer(ctx, tmp, cut, "truncated.plan", &l);
        TU_CHECK(st != MIXRT_STATUS_OK && mixrt_context_last_error(ctx)[0], "truncated to %zu bytes: loaded", cut);
        mixrt_engine_destroy(l);
    }
    tu_seed(5);
    for (int k = 0; k < 3000; k++) {
        size_t bit = (size_t)(tu_rand() % (size * 8));
        memcpy(tmp, img, size);
        tmp[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        bool fixed = k % 2 == 1 && mixrt_plan_fix_checksums(tmp, size);
        mixrt_engine_t l = NULL;
        mixrt_status st = mixrt_engine_load_buffer(ctx, tmp, size, "flipped.plan", &l);
        if (st == MIXRT_STATUS_OK) {
            loaded++;
            TU_CHECK(fixed, "bit %zu flipped without repair: loaded", bit);
            struct mixrt_tensor *in[16] = {0}, *out[16] = {0};
            const char *names[16];
            int n = make_inputs(l, in, names, 3);
            if (n >= 0) (void)mixrt_engine_run(l, (size_t)n, names, (const struct mixrt_tensor *const *)in, out);
            for (int i = 0; i < 16; i++) {
                mixrt_tensor_destroy(ctx, in[i]);
                mixrt_tensor_destroy(ctx, out[i]);
            }
        } else {
            errors++;
            TU_CHECK(mixrt_context_last_error(ctx)[0], "bit %zu: error without a message", bit);
        }
        mixrt_engine_destroy(l);
    }
    TU_CHECK(errors >= 1500, "bit flips: only %d of 3000 refused (every unrepaired flip must be)", errors);
    /* Another target and another version. */
    memcpy(tmp, img, size);
    memset(tmp + MIXRT_PLAN_OFF_TARGET, 0, 128);
    strcpy((char *)tmp + MIXRT_PLAN_OFF_TARGET, "cpu x86_64 avx512f amx_tile");
    mixrt_plan_fix_checksums(tmp, size);
    mixrt_engine_t l = NULL;
    mixrt_status st = mixrt_engine_load_buffer(ctx, tmp, size, "other-target.plan", &l);
    TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED && strstr(mixrt_context_last_error(ctx), "amx_tile"),
             "foreign target: %d %s", st, mixrt_context_last_error(ctx));
    mixrt_engine_destroy(l);
    memcpy(tmp, img, size);
    memset(tmp + MIXRT_PLAN_OFF_MIXRT_VERSION, 0, 32);
    strcpy((char *)tmp + MIXRT_PLAN_OFF_MIXRT_VERSION, "0.0.1");
    mixrt_plan_fix_checksums(tmp, size);
    l = NULL;
    st = mixrt_engine_load_buffer(ctx, tmp, size, "old.plan", &l);
    TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED && strstr(mixrt_context_last_error(ctx), "0.0.1"),
             "other version: %d %s", st, mixrt_context_last_error(ctx));
    mixrt_engine_destroy(l);
    /* Not a plan at all: the ONNX model itself. */
    l = NULL;
    st = mixrt_engine_load(ctx, path, &l);
    TU_CHECK(st != MIXRT_STATUS_OK && strstr(mixrt_context_last_error(ctx), "not a mixrt plan"), "onnx as plan: %s",
             mixrt_context_last_error(ctx));
    mixrt_engine_destroy(l);
    free(img);
    free(tmp);
    printf("plan corruption: %zu-byte plan, %d flips refused, %d repaired flips loaded and ran\n", size, errors, loaded);
}

/* A cold build measures and fills the cache file; a rebuild finds every tactic in it,
 * measures nothing, and makes the same choices. */
static void test_timing_cache(void) {
    char cache[1100], path[2048];
    snprintf(cache, sizeof(cache), "%s/rebuild.cache", models);
    snprintf(path, sizeof(path), "%s/transformer_f32.onnx", examples);
    unlink(cache);
    struct mixrt_build_options o;
    mixrt_build_options_init(&o);
    o.precisions = MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16;
    o.timing_cache = cache;
    mixrt_engine_t a = NULL, b = NULL;
    int h1 = -1, m1 = -1, h2 = -1, m2 = -1;
    double s1 = 0, s2 = 0;
    TU_CHECK(mixrt_engine_build(ctx, path, &o, &a) == MIXRT_STATUS_OK, "cold build: %s", mixrt_context_last_error(ctx));
    TU_CHECK(mixrt_engine_build(ctx, path, &o, &b) == MIXRT_STATUS_OK, "warm build: %s", mixrt_context_last_error(ctx));
    if (a && b) {
        mixrt_engine_build_stats(a, &h1, &m1, &s1);
        mixrt_engine_build_stats(b, &h2, &m2, &s2);
        /* (Tactics timed earlier in this process are shared without counting as either.) */
        TU_CHECK(h2 > 0 && h2 >= h1 + m1 && m2 == 0, "timing cache: cold %d hits/%d misses, warm %d/%d", h1, m1, h2,
                 m2);
        TU_CHECK(mixrt_engine_layer_count(a) == mixrt_engine_layer_count(b), "rebuild: layer counts differ");
        for (size_t i = 0; i < mixrt_engine_layer_count(a) && i < mixrt_engine_layer_count(b); i++) {
            struct mixrt_layer_info la, lb;
            mixrt_engine_get_layer(a, i, &la);
            mixrt_engine_get_layer(b, i, &lb);
            TU_CHECK(!strcmp(la.kernel, lb.kernel) && la.precision == lb.precision, "rebuild: layer %zu '%s' %s %s vs %s %s",
                     i, la.name, la.kernel, mixrt_dtype_name(la.precision), lb.kernel, mixrt_dtype_name(lb.precision));
        }
        printf("timing cache: cold build %.3f s (%d tactics measured), warm %.3f s (%d from the cache)\n", s1, m1, s2, h2);
    }
    mixrt_engine_destroy(a);
    mixrt_engine_destroy(b);
    /* The same file claiming another build of mixrt: its entries are not used, and the
     * rebuild writes the file anew with this build's line. */
    {
        FILE *in = fopen(cache, "r");
        char *text = calloc(1, 1 << 20);
        size_t n = in && text ? fread(text, 1, (1 << 20) - 1, in) : 0;
        if (in) fclose(in);
        char *l3 = text ? strstr(text, "\nbuild ") : NULL;
        TU_CHECK(n > 0 && l3, "timing cache has a build line: %.200s", text ? text : "");
        if (l3) {
            char *eol = strchr(l3 + 1, '\n');
            FILE *out = fopen(cache, "w");
            fprintf(out, "%.*s\nbuild another-build%s5 zzz-entry-of-another-build\n", (int)(l3 - text), text,
                    eol ? eol : "\n");
            fclose(out);
            mixrt_engine_t c = NULL;
            TU_CHECK(mixrt_engine_build(ctx, path, &o, &c) == MIXRT_STATUS_OK, "other-build cache: %s",
                     mixrt_context_last_error(ctx));
            mixrt_engine_destroy(c);
            in = fopen(cache, "r");
            n = in ? fread(text, 1, (1 << 20) - 1, in) : 0;
            text[n] = 0;
            if (in) fclose(in);
            /* Its entries were not loaded, so the rewrite does not carry them over. */
            TU_CHECK(!strstr(text, "another-build") && strstr(text, "\nbuild "), "cache rewritten by this build");
        }
        free(text);
    }
    /* A malformed cache file is a named error, not a crash. */
    FILE *f = fopen(cache, "w");
    fputs("mixrt-timing-cache 1\ntarget x\nnot-a-number key\n", f);
    fclose(f);
    o.timing_cache = cache;
    mixrt_engine_t c = NULL;
    mixrt_status st = mixrt_engine_build(ctx, path, &o, &c);
    TU_CHECK(st == MIXRT_STATUS_OK, "cache for another target must be ignored: %s", mixrt_context_last_error(ctx));
    mixrt_engine_destroy(c);
    f = fopen(cache, "w");
    fputs("garbage\n", f);
    fclose(f);
    c = NULL;
    st = mixrt_engine_build(ctx, path, &o, &c);
    TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT && strstr(mixrt_context_last_error(ctx), "rebuild.cache"),
             "garbage cache: %d %s", st, mixrt_context_last_error(ctx));
    mixrt_engine_destroy(c);
}

/* MIXRT_PLAN_WRITE_CORPUS=DIR: writes small engine plans as fuzzing seeds and exits. */
static int write_corpus(const char *dir) {
    char path[2048], plan[2100];
    snprintf(path, sizeof(path), "%s/tiny_f32.onnx", models);
    unsigned precs[] = {MIXRT_PRECISION_FP32, MIXRT_PRECISION_FP32 | MIXRT_PRECISION_BF16};
    const char *names[] = {"engine_fp32.plan", "engine_bf16.plan"};
    for (int i = 0; i < 2; i++) {
        struct mixrt_build_options o;
        mixrt_build_options_init(&o);
        o.precisions = precs[i];
        mixrt_engine_t e = NULL;
        snprintf(plan, sizeof(plan), "%s/%s", dir, names[i]);
        if (mixrt_engine_build(ctx, path, &o, &e) != MIXRT_STATUS_OK || mixrt_engine_save(e, plan) != MIXRT_STATUS_OK) {
            fprintf(stderr, "write corpus: %s\n", mixrt_context_last_error(ctx));
            mixrt_engine_destroy(e);
            return 1;
        }
        mixrt_engine_destroy(e);
        printf("wrote %s\n", plan);
    }
    return 0;
}

/* Every op type's kernels fit the candidate list (the reference kernel last): past it the later
 * families' kernels were never offered to the builder, silently (FusedConv's 18 and the reference
 * overran the old 16: dnnl_conv1x1_mm_swish and dnnl_conv1d_mm were never offered, and
 * dnnl_conv1x1_mm dropped out too once igf_conv_nhwc came ahead of it). */
static void test_candidate_room(void) {
    const size_t most = mixrt_cpu_kernels_most();
    TU_CHECK(most >= 16 && most <= MIXRT_CPU_MAX_CANDIDATES, "the largest candidate list (%zu, FusedConv's) fits %d",
             most, MIXRT_CPU_MAX_CANDIDATES);
}

int main(void) {
    const char *bin = getenv("MIXRT_BINARY_DIR");
    snprintf(models, sizeof(models), "%s/tests/engine_models", bin ? bin : "build");
    snprintf(examples, sizeof(examples), "%s/tests/engine_examples", bin ? bin : "build");
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR);
    if (getenv("MIXRT_PLAN_WRITE_CORPUS")) {
        int rc = write_corpus(getenv("MIXRT_PLAN_WRITE_CORPUS"));
        mixrt_context_destroy(ctx);
        return rc;
    }
    test_candidate_room();
    test_unsupported_dtypes();
    test_constraints();
    test_enlarging_output();
    test_untimed_product();
    test_follow_wide_input();
    test_small_output_head();
    test_precisions();
    test_dtype_independence();
    test_timing_cache();
    test_plan_round_trip();
    test_release_from_file();
    test_plan_corruption();
    mixrt_context_destroy(ctx);
    return tu_finish("test_engine");
}
