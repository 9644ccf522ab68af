/* model_run.c - the public model API end to end on models written by
 * scripts/make_test_models.py (directory in argv[1]): results against an f64
 * computation, overridable initializer inputs, external data (and its refusal outside the
 * model folder), f16/bf16 typed-field initializers against NumPy's bits, and every way an
 * input can contradict the model, each refused with a message naming it. */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "mixrt/mixrt_io.h"
#include "mixrt/mixrt_onnx.h"
#include "testutil.h"

static mixrt_context_t ctx;
static char dir[1024];

static const char *path(const char *name) {
    static char buf[2048];
    snprintf(buf, sizeof(buf), "%s/%s", dir, name);
    return buf;
}

static struct mixrt_tensor *rand_tensor(mixrt_dtype dt, int rank, const int64_t *dims) {
    struct mixrt_tensor *t;
    if (mixrt_tensor_create(ctx, dt, rank, dims, &t) != MIXRT_STATUS_OK) return NULL;
    size_t n = mixrt_tensor_numel(t);
    for (size_t i = 0; i < n; i++) {
        double v = tu_uniform(-2, 2);
        mixrt_convert((char *)t->data + i * mixrt_dtype_size(dt), dt, &v, MIXRT_DTYPE_F64, 1);
    }
    return t;
}

static double f32_at(const struct mixrt_tensor *t, size_t i) { return ((const float *)t->data)[i]; }

/* Runs with the given inputs, expecting status want; returns the message. */
static const char *run_expect(mixrt_model_t m, size_t n, const char *const *names, struct mixrt_tensor **ins,
                              mixrt_status want, struct mixrt_tensor **outs) {
    struct mixrt_tensor *tmp[4] = {0};
    mixrt_status st = mixrt_model_run(m, n, names, (const struct mixrt_tensor *const *)ins, outs ? outs : tmp);
    TU_CHECK(st == want, "run status %d, expected %d: %s", st, want, mixrt_context_last_error(ctx));
    if (!outs)
        for (int i = 0; i < 4; i++) mixrt_tensor_destroy(ctx, tmp[i]);
    return mixrt_context_last_error(ctx);
}

static void test_symbolic(void) {
    mixrt_model_t m;
    TU_CHECK(mixrt_model_load(ctx, path("symbolic.onnx"), &m) == MIXRT_STATUS_OK, "load: %s",
             mixrt_context_last_error(ctx));
    struct mixrt_value_info vi;
    mixrt_model_get_input(m, 0, &vi);
    TU_CHECK(vi.rank == 2 && vi.dims[0] < 0 && vi.dim_params[0] && !strcmp(vi.dim_params[0], "N"), "input a [N,4]");
    mixrt_model_get_input(m, 2, &vi);
    TU_CHECK(vi.has_initializer, "input s has an initializer");
    struct mixrt_tensor *s_ref;
    TU_CHECK(mixrt_npy_read(ctx, path("symbolic_s.npy"), &s_ref) == MIXRT_STATUS_OK, "read s");

    int64_t d34[] = {3, 4}, d24[] = {2, 4}, d35[] = {3, 5}, d3[] = {3};
    struct mixrt_tensor *a = rand_tensor(MIXRT_DTYPE_F32, 2, d34), *b = rand_tensor(MIXRT_DTYPE_F32, 2, d34);
    struct mixrt_tensor *s2 = rand_tensor(MIXRT_DTYPE_F32, 1, d34 + 1);
    const char *names[] = {"a", "b", "s"};
    struct mixrt_tensor *outs[1] = {0}, *ins[3] = {a, b, s2};

    /* Initializer used when s is not given; overridden when it is. */
    for (int over = 0; over < 2; over++) {
        const struct mixrt_tensor *s = over ? s2 : s_ref;
        run_expect(m, over ? 3 : 2, names, ins, MIXRT_STATUS_OK, outs);
        if (!outs[0]) continue;
        TU_CHECK(outs[0]->dtype == MIXRT_DTYPE_F32 && outs[0]->rank == 2 && outs[0]->dims[0] == 3, "y is f32 [3,4]");
        double maxerr = 0;
        for (size_t i = 0; i < 12; i++) {
            double want = (f32_at(a, i) + f32_at(b, i)) * f32_at(s, i % 4);
            double e = fabs(f32_at(outs[0], i) - want) / (fabs(want) + 1e-6);
            if (e > maxerr) maxerr = e;
        }
        TU_CHECK(maxerr < 1e-6, "y matches f64 (override %d): rel err %g", over, maxerr);
        mixrt_tensor_destroy(ctx, outs[0]);
        outs[0] = NULL;
    }

    /* Contradictions, each with a message naming what is wrong. */
    struct mixrt_tensor *b24 = rand_tensor(MIXRT_DTYPE_F32, 2, d24);
    ins[1] = b24;
    const char *msg = run_expect(m, 2, names, ins, MIXRT_STATUS_INVALID_ARGUMENT, NULL);
    TU_CHECK(strstr(msg, "'N'") && strstr(msg, "'b'"), "symbolic conflict named: %s", msg);

    struct mixrt_tensor *ah = rand_tensor(MIXRT_DTYPE_F16, 2, d34);
    ins[0] = ah;
    ins[1] = b;
    msg = run_expect(m, 2, names, ins, MIXRT_STATUS_INVALID_ARGUMENT, NULL);
    TU_CHECK(strstr(msg, "'a'") && strstr(msg, "f16") && strstr(msg, "f32"), "dtype mismatch named: %s", msg);

    struct mixrt_tensor *a3 = rand_tensor(MIXRT_DTYPE_F32, 1, d3), *a35 = rand_tensor(MIXRT_DTYPE_F32, 2, d35);
    ins[0] = a3;
    msg = run_expect(m, 2, names, ins, MIXRT_STATUS_INVALID_ARGUMENT, NULL);
    TU_CHECK(strstr(msg, "'a'") && strstr(msg, "rank"), "rank mismatch named: %s", msg);
    ins[0] = a35;
    msg = run_expect(m, 2, names, ins, MIXRT_STATUS_INVALID_ARGUMENT, NULL);
    TU_CHECK(strstr(msg, "'a'") && strstr(msg, "dim 1"), "fixed dim mismatch named: %s", msg);

    const char *bad_names[] = {"a", "zz"};
    ins[0] = a;
    msg = run_expect(m, 2, bad_names, ins, MIXRT_STATUS_INVALID_ARGUMENT, NULL);
    TU_CHECK(strstr(msg, "'zz'") && strstr(msg, "'b'"), "unknown input named, inputs listed: %s", msg);
    msg = run_expect(m, 1, names, ins, MIXRT_STATUS_INVALID_ARGUMENT, NULL);
    TU_CHECK(strstr(msg, "'b'") && strstr(msg, "not given"), "missing input named: %s", msg);

    struct mixrt_tensor *all[] = {a, b, s_ref, s2, b24, ah, a3, a35};
    for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++) mixrt_tensor_destroy(ctx, all[i]);
    mixrt_model_destroy(m);
}

static void test_external(void) {
    mixrt_model_t m;
    TU_CHECK(mixrt_model_load(ctx, path("external.onnx"), &m) == MIXRT_STATUS_OK, "load external: %s",
             mixrt_context_last_error(ctx));
    struct mixrt_tensor *w;
    TU_CHECK(mixrt_npy_read(ctx, path("external_w.npy"), &w) == MIXRT_STATUS_OK, "read w");
    int64_t d24[] = {2, 4};
    struct mixrt_tensor *x = rand_tensor(MIXRT_DTYPE_F32, 2, d24), *outs[1] = {0};
    const char *names[] = {"x"};
    run_expect(m, 1, names, &x, MIXRT_STATUS_OK, outs);
    double maxerr = 0;
    for (int i = 0; outs[0] && i < 2; i++)
        for (int j = 0; j < 3; j++) {
            double want = 0;
            for (int kk = 0; kk < 4; kk++) want += f32_at(x, (size_t)(i * 4 + kk)) * f32_at(w, (size_t)(kk * 3 + j));
            double e = fabs(f32_at(outs[0], (size_t)(i * 3 + j)) - want);
            if (e > maxerr) maxerr = e;
        }
    TU_CHECK(outs[0] && maxerr < 1e-5, "external-data matmul matches f64: %g", maxerr);
    mixrt_tensor_destroy(ctx, outs[0]);
    mixrt_tensor_destroy(ctx, x);
    mixrt_tensor_destroy(ctx, w);
    mixrt_model_destroy(m);

    mixrt_status st = mixrt_model_load(ctx, path("sub/escape.onnx"), &m);
    TU_CHECK(st != MIXRT_STATUS_OK, "external data outside the model folder refused");
    TU_CHECK(strstr(mixrt_context_last_error(ctx), "'w'") != NULL, "refusal names the tensor: %s",
             mixrt_context_last_error(ctx));
    if (st == MIXRT_STATUS_OK) mixrt_model_destroy(m);
}

static void test_typed16(void) {
    mixrt_model_t m;
    TU_CHECK(mixrt_model_load(ctx, path("typed16.onnx"), &m) == MIXRT_STATUS_OK, "load typed16: %s",
             mixrt_context_last_error(ctx));
    struct mixrt_tensor *outs[2] = {0}, *bb, *hb;
    TU_CHECK(mixrt_model_run(m, 0, NULL, NULL, outs) == MIXRT_STATUS_OK, "run typed16: %s",
             mixrt_context_last_error(ctx));
    TU_CHECK(mixrt_npy_read(ctx, path("typed16_bf16_bits.npy"), &bb) == MIXRT_STATUS_OK, "read bits");
    TU_CHECK(mixrt_npy_read(ctx, path("typed16_f16_bits.npy"), &hb) == MIXRT_STATUS_OK, "read bits");
    TU_CHECK(outs[0] && outs[0]->dtype == MIXRT_DTYPE_BF16 && outs[1] && outs[1]->dtype == MIXRT_DTYPE_F16,
             "dtypes bf16, f16");
    if (outs[0] && outs[1]) {
        TU_CHECK(!memcmp(outs[0]->data, bb->data, 12), "bf16 int32_data bits as written by NumPy");
        TU_CHECK(!memcmp(outs[1]->data, hb->data, 12), "f16 int32_data bits as written by NumPy");
    }
    mixrt_tensor_destroy(ctx, outs[0]);
    mixrt_tensor_destroy(ctx, outs[1]);
    mixrt_tensor_destroy(ctx, bb);
    mixrt_tensor_destroy(ctx, hb);
    mixrt_model_destroy(m);
}

/* Every allocation of load + run fails in turn (and all after it): each attempt ends in
 * OUT_OF_MEMORY or success, never a crash, and leaves nothing allocated. */
static void test_oom_sweep(void) {
    int64_t d24[] = {2, 4};
    struct mixrt_tensor *a = rand_tensor(MIXRT_DTYPE_F32, 2, d24), *b = rand_tensor(MIXRT_DTYPE_F32, 2, d24);
    const char *names[] = {"a", "b"};
    struct mixrt_tensor *ins[] = {a, b};
    size_t base = mixrt_context_bytes_in_use(ctx);
    int attempts = 0, clean = 1, ok_status = 1;
    for (long n = 0; n < 100000; n++, attempts++) {
        mixrt_model_t m = NULL;
        struct mixrt_tensor *outs[1] = {0};
        mixrt_context_fail_alloc_after(ctx, n, 1);
        mixrt_status st = mixrt_model_load(ctx, path("symbolic.onnx"), &m);
        if (st == MIXRT_STATUS_OK) st = mixrt_model_run(m, 2, names, (const struct mixrt_tensor *const *)ins, outs);
        mixrt_context_fail_alloc_after(ctx, -1, 0);
        bool done = st == MIXRT_STATUS_OK;
        if (st != MIXRT_STATUS_OK && st != MIXRT_STATUS_OUT_OF_MEMORY) ok_status = 0;
        mixrt_tensor_destroy(ctx, outs[0]);
        mixrt_model_destroy(m);
        if (mixrt_context_bytes_in_use(ctx) != base) clean = 0;
        if (done) break;
    }
    TU_CHECK(attempts > 10, "the sweep injected failures (%d attempts)", attempts);
    TU_CHECK(ok_status, "every injected failure reported OUT_OF_MEMORY");
    TU_CHECK(clean, "nothing leaked after injected failures");
    mixrt_tensor_destroy(ctx, a);
    mixrt_tensor_destroy(ctx, b);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: model_run DIR (models from scripts/make_test_models.py)\n");
        return 1;
    }
    snprintf(dir, sizeof(dir), "%s", argv[1]);
    tu_seed(11);
    mixrt_context_create(NULL, &ctx);
    test_symbolic();
    test_external();
    test_typed16();
    test_oom_sweep();
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "no leak: %zu bytes", mixrt_context_bytes_in_use(ctx));
    mixrt_context_destroy(ctx);
    return tu_finish("model_run");
}
