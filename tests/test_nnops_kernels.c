/* test_nnops_kernels.c - the nn-op kernel candidates (nnops.c: pools, softmax, normalizations,
 * ReduceSum/Mean/Max) against the reference kernels on seeded random data, f32 and bf16, with
 * both primitive tables (AVX-512 where the CPU has it, and scalar): rel-L2 <= 1e-6 (f32) /
 * 8e-3 (bf16) plus a per-element max-abs bound; errors and run-time fallbacks must match the
 * reference's status; each allocation failing in turn is reported and leaks nothing;
 * supports() refusals; a small ref-vs-fast timing printout.
 * Usage: test_nnops_kernels [--only CASE] [--scalar] [--no-bench]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/kernels.h"
#include "backend/cpu/nnops_impl.h"
#include "kernel_harness.h"
#include "testutil.h"

#define MAXR 6
#define MAXIN 5

struct tattr {
    const char *name;
    enum mixrt_attr_type type;
    int64_t i;
    float f;
    const char *s;
    int64_t ints[8];
    size_t n;
};

enum fill { F_SIGNED, F_POSITIVE, F_AXES, F_NANS /* signed, 1 in 97 a NaN, 1 in 89 an infinity */ };

struct tcase {
    const char *op;
    const char *domain; /* NULL: the default domain */
    int opset;
    mixrt_dtype dt;
    int n_in, n_out;
    int rank[MAXIN];
    int64_t dims[MAXIN][MAXR];
    enum fill fill[MAXIN];
    int64_t axes[MAXR]; /* values of an F_AXES input */
    bool absent[MAXIN];
    struct tattr attrs[10];
    int n_attrs;
    mixrt_dtype run_dt;  /* dtype of the tensors at run time when it differs from the graph's (0: dt) */
    bool graph_unknown;  /* the graph shows dtypes only (no ranks) */
    mixrt_status expect; /* OK, or the status both kernels must fail with */
    bool bench;          /* time ref vs fast */
};

static int g_case, g_only = -1, g_cases_run;
static bool g_bench = true, g_scalar_only;
static double g_worst[2];
static char g_argv0[256];

static struct tcase tc(const char *op, int opset, mixrt_dtype dt) {
    struct tcase c;
    memset(&c, 0, sizeof(c));
    c.op = op, c.opset = opset, c.dt = dt, c.n_out = 1;
    return c;
}
static void tin(struct tcase *c, int i, int rank, const int64_t *d) {
    c->rank[i] = rank;
    if (rank) memcpy(c->dims[i], d, sizeof(int64_t) * (size_t)rank);
    if (c->n_in < i + 1) c->n_in = i + 1;
}
static void tint(struct tcase *c, const char *name, int64_t v) {
    c->attrs[c->n_attrs++] = (struct tattr){.name = name, .type = MIXRT_ATTR_INT, .i = v};
}
static void tfloat(struct tcase *c, const char *name, float v) {
    c->attrs[c->n_attrs++] = (struct tattr){.name = name, .type = MIXRT_ATTR_FLOAT, .f = v};
}
static void tstr(struct tcase *c, const char *name, const char *s) {
    c->attrs[c->n_attrs++] = (struct tattr){.name = name, .type = MIXRT_ATTR_STRING, .s = s};
}
static void tints(struct tcase *c, const char *name, size_t n, const int64_t *v) {
    struct tattr *a = &c->attrs[c->n_attrs++];
    *a = (struct tattr){.name = name, .type = MIXRT_ATTR_INTS, .n = n};
    memcpy(a->ints, v, n * sizeof(int64_t));
}
/* Input i as an i64 axes tensor of n values. */
static void taxes(struct tcase *c, int i, size_t n, const int64_t *v) {
    tin(c, i, 1, (int64_t[]){(int64_t)n});
    c->fill[i] = F_AXES;
    if (n) memcpy(c->axes, v, n * sizeof(int64_t));
}

static const char *describe(const struct tcase *c, char *buf, size_t size) {
    size_t o = (size_t)snprintf(buf, size, "%s-%d %s", c->op, c->opset, mixrt_dtype_name(c->dt));
    for (int i = 0; i < c->n_in && o < size; i++) {
        char d[128];
        if (c->absent[i]) o += (size_t)snprintf(buf + o, size - o, " x%d=absent", i);
        else if (c->fill[i] == F_AXES)
            o += (size_t)snprintf(buf + o, size - o, " x%d=axes%s", i,
                                  mixrt_dims_str(d, sizeof(d), (int)c->dims[i][0], c->axes));
        else o += (size_t)snprintf(buf + o, size - o, " x%d=%s", i, mixrt_dims_str(d, sizeof(d), c->rank[i], c->dims[i]));
    }
    for (int i = 0; i < c->n_attrs && o < size; i++) {
        const struct tattr *a = &c->attrs[i];
        if (a->type == MIXRT_ATTR_INT) o += (size_t)snprintf(buf + o, size - o, " %s=%lld", a->name, (long long)a->i);
        if (a->type == MIXRT_ATTR_FLOAT) o += (size_t)snprintf(buf + o, size - o, " %s=%g", a->name, a->f);
        if (a->type == MIXRT_ATTR_STRING) o += (size_t)snprintf(buf + o, size - o, " %s=%s", a->name, a->s);
        if (a->type == MIXRT_ATTR_INTS) {
            char d[128];
            o += (size_t)snprintf(buf + o, size - o, " %s=%s", a->name, mixrt_dims_str(d, sizeof(d), (int)a->n, a->ints));
        }
    }
    if (c->run_dt && o < size) snprintf(buf + o, size - o, " (runs as %s)", mixrt_dtype_name(c->run_dt));
    return buf;
}

static const char *kernel_name(const char *op, const char *domain) {
    if (domain && !strcmp(domain, MIXRT_DOMAIN) && !strcmp(op, "GlobalAveragePool")) return "nn_gap_nhwc";
    static const char *const map[][2] = {
        {"MaxPool", "nn_maxpool"},          {"AveragePool", "nn_avgpool"},
        {"GlobalAveragePool", "nn_global_avgpool"}, {"GlobalMaxPool", "nn_global_maxpool"},
        {"Softmax", "nn_softmax"},          {"LogSoftmax", "nn_log_softmax"},
        {"BatchNormalization", "nn_batchnorm"}, {"InstanceNormalization", "nn_instancenorm"},
        {"LayerNormalization", "nn_layernorm"}, {"ReduceSum", "nn_reduce_sum"},
        {"ReduceMean", "nn_reduce_mean"},   {"ReduceMax", "nn_reduce_max"},
        {"ReduceMin", "nn_reduce_min"},     {"ReduceL1", "nn_reduce_l1"},
        {"ReduceL2", "nn_reduce_l2"},       {"ReduceSumSquare", "nn_reduce_sumsq"},
        {"RMSNormalization", "nn_rmsnorm"},
    };
    for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
        if (!strcmp(map[i][0], op)) return map[i][1];
    return "?";
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* Compares y with the reference r: rel-L2 (NaN/inf must sit at the same places with the
 * same value) and |y - r| <= atol + rtol |r| per element. Returns rel-L2 (inf on mismatch). */
static double compare(const struct mixrt_tensor *y, const struct mixrt_tensor *r, double atol, double rtol,
                      size_t *bad_at) {
    double num = 0, den = 0;
    size_t n = mixrt_tensor_numel(r);
    *bad_at = SIZE_MAX;
    for (size_t i = 0; i < n; i++) {
        double a = mixrt_load_f64(y->data, y->dtype, i), b = mixrt_load_f64(r->data, r->dtype, i);
        if (!isfinite(b) || !isfinite(a)) {
            bool same = (isnan(a) && isnan(b)) || a == b;
            if (!same && *bad_at == SIZE_MAX) *bad_at = i;
            continue;
        }
        if (fabs(a - b) > atol + rtol * fabs(b) && *bad_at == SIZE_MAX) *bad_at = i;
        num += (a - b) * (a - b);
        den += b * b;
    }
    if (*bad_at != SIZE_MAX) return INFINITY;
    return den > 0 ? sqrt(num / den) : sqrt(num);
}

static void type_value(int vi, mixrt_dtype dt, int rank, const int64_t *dims) {
    struct mixrt_value *v = &kh_G->values[vi];
    v->dtype = dt;
    v->rank = rank;
    for (int j = 0; j < rank; j++) v->dims[j].value = dims[j];
}

static void run_case(const struct tcase *c) {
    int id = g_case++;
    if (g_only >= 0 && id != g_only) return;
    g_cases_run++;
    char desc[768];
    describe(c, desc, sizeof(desc));
    const struct mixrt_cpu_kernel *kern = mixrt_cpu_kernel_find(kernel_name(c->op, c->domain), c->domain ? c->domain : "", c->op);
    TU_CHECK(kern != NULL, "case %d %s: no nn kernel", id, desc);
    if (!kern) return;
    mixrt_dtype rdt = c->run_dt ? c->run_dt : c->dt;
    struct mixrt_tensor in[MAXIN];
    memset(in, 0, sizeof(in));
    tu_seed(0x4e4e0000u + (uint64_t)id);
    for (int i = 0; i < c->n_in; i++) {
        if (c->absent[i]) continue;
        if (c->fill[i] == F_AXES) {
            in[i] = kh_tensor_ints(MIXRT_DTYPE_I64, 1, c->dims[i], c->axes);
            continue;
        }
        in[i] = kh_tensor(rdt, c->rank[i], c->dims[i], NULL);
        size_t n = mixrt_tensor_numel(&in[i]);
        for (size_t j = 0; j < n; j++) {
            double v = c->fill[i] == F_POSITIVE ? tu_uniform(0.1, 1.0) : tu_uniform(-1.0, 1.0);
            if (fabs(v) < 1e-3) v = 0.5; /* never zeros */
            if (c->fill[i] == F_NANS && j % 97 == 13) v = NAN;
            if (c->fill[i] == F_NANS && j % 89 == 7) v = j % 2 ? INFINITY : -INFINITY;
            mixrt_store_f64(in[i].data, rdt, j, v);
        }
    }
    kh_begin(c->op, c->opset, c->n_in, c->n_out);
    if (c->domain) kh_N->domain = c->domain; /* com.mixrt opset 1: the pass's ops */
    for (int i = 0; i < c->n_attrs; i++) {
        const struct tattr *a = &c->attrs[i];
        if (a->type == MIXRT_ATTR_INT) kh_attr_int(a->name, a->i);
        if (a->type == MIXRT_ATTR_FLOAT) kh_attr_float(a->name, a->f);
        if (a->type == MIXRT_ATTR_STRING) kh_attr_str(a->name, a->s);
        if (a->type == MIXRT_ATTR_INTS) kh_attr_ints(a->name, (int64_t *)a->ints, a->n);
    }
    for (int i = 0; i < c->n_in; i++) {
        if (c->absent[i]) {
            kh_N->inputs[i] = -1;
            continue;
        }
        mixrt_dtype gdt = c->fill[i] == F_AXES ? MIXRT_DTYPE_I64 : c->dt;
        if (c->graph_unknown) type_value(kh_N->inputs[i], gdt, -1, NULL);
        else type_value(kh_N->inputs[i], gdt, in[i].rank, in[i].dims);
        kh_in[i] = &in[i];
    }
    for (int o = 0; o < c->n_out; o++) kh_G->values[kh_N->outputs[o]].dtype = c->dt;
    for (int o = 1; o < c->n_out; o++) kh_out_wanted[o] = false;
    for (int o = 1; o < c->n_out; o++) kh_N->outputs[o] = -1;
    char why[256] = "";
    bool sup = kern->supports(kh_G, kh_N, why, sizeof(why));
    TU_CHECK(sup, "case %d %s: supports() refused: %s; rerun: %s --only %d", id, desc, why, g_argv0, id);

    double t0 = now_s();
    mixrt_status rst = kh_run();
    double t_ref = now_s() - t0;
    struct mixrt_tensor ref;
    memset(&ref, 0, sizeof(ref));
    if (rst == MIXRT_STATUS_OK) mixrt_tensor_copy(kh_ctx, &ref, &kh_out[0]);
    for (int o = 0; o < c->n_out; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]);
    bool is_bf16 = rdt == MIXRT_DTYPE_BF16;
    double tol = is_bf16 ? 8e-3 : 1e-6, atol = is_bf16 ? 1e-2 : 1e-5, rtol = is_bf16 ? 1.6e-2 : 1e-5;
    /* Passes: the CPU's own table, the scalar one, and the AVX2 one where the CPU has AVX2
     * and FMA (on an AVX2-only CPU the first pass is that one too). */
    const struct mixrt_cpu_features *cf = mixrt_cpu_features();
    int passes = cf->avx2 && cf->fma ? 3 : 2;
    for (int pass = g_scalar_only ? 1 : 0; pass < passes; pass++) {
        mixrt_nnops_force_scalar(pass == 1);
        mixrt_nnops_force_avx2(pass == 2);
        const char *isa = mixrt_nnops_isa()->name;
        if (pass == 2) TU_CHECK(!strcmp(isa, "avx2"), "case %d %s: forced AVX2, got %s", id, desc, isa);
        t0 = now_s();
        mixrt_status st = kh_run_kernel(kern->run, NULL);
        double t_fast = now_s() - t0;
        for (int rep = 0; c->bench && g_bench && st == MIXRT_STATUS_OK && rep < 2; rep++) { /* best of 3 */
            for (int o = 0; o < c->n_out; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]);
            t0 = now_s();
            st = kh_run_kernel(kern->run, NULL);
            if (now_s() - t0 < t_fast) t_fast = now_s() - t0;
        }
        if (c->expect != MIXRT_STATUS_OK) {
            TU_CHECK(st == c->expect && rst == c->expect,
                     "case %d %s [%s]: expected status %s from both, got ref %s, fast %s (%s); rerun: %s --only %d", id,
                     desc, isa, mixrt_status_string(c->expect), mixrt_status_string(rst), mixrt_status_string(st),
                     mixrt_context_last_error(kh_ctx), g_argv0, id);
            if (st != MIXRT_STATUS_OK)
                TU_CHECK(strstr(mixrt_context_last_error(kh_ctx), "'n0'") != NULL,
                         "case %d %s [%s]: the error does not name the node: %s", id, desc, isa,
                         mixrt_context_last_error(kh_ctx));
        } else {
            TU_CHECK(rst == MIXRT_STATUS_OK && st == MIXRT_STATUS_OK,
                     "case %d %s [%s]: ref %s, fast %s (%s); rerun: %s --only %d", id, desc, isa, mixrt_status_string(rst),
                     mixrt_status_string(st), mixrt_context_last_error(kh_ctx), g_argv0, id);
            if (rst == MIXRT_STATUS_OK && st == MIXRT_STATUS_OK) {
                bool same_shape = kh_out[0].rank == ref.rank && kh_out[0].dtype == ref.dtype &&
                                  !memcmp(kh_out[0].dims, ref.dims, sizeof(int64_t) * (size_t)ref.rank);
                char d1[128], d2[128];
                TU_CHECK(same_shape, "case %d %s [%s]: output %s %s, reference %s %s; rerun: %s --only %d", id, desc, isa,
                         mixrt_dtype_name(kh_out[0].dtype), mixrt_dims_str(d1, sizeof(d1), kh_out[0].rank, kh_out[0].dims),
                         mixrt_dtype_name(ref.dtype), mixrt_dims_str(d2, sizeof(d2), ref.rank, ref.dims), g_argv0, id);
                if (same_shape) {
                    size_t bad;
                    double e = compare(&kh_out[0], &ref, atol, rtol, &bad);
                    double *worst = &g_worst[is_bf16];
                    if (e > *worst && isfinite(e)) *worst = e;
                    if (bad != SIZE_MAX)
                        TU_CHECK(false, "case %d %s [%s]: element %zu is %.9g, reference %.9g; rerun: %s --only %d", id,
                                 desc, isa, bad, mixrt_load_f64(kh_out[0].data, kh_out[0].dtype, bad),
                                 mixrt_load_f64(ref.data, ref.dtype, bad), g_argv0, id);
                    else
                        TU_CHECK(e <= tol, "case %d %s [%s]: rel-L2 %.3g > %.0e; rerun: %s --only %d", id, desc, isa, e,
                                 tol, g_argv0, id);
                }
                if (c->bench && g_bench)
                    printf("  bench %-60.60s %-6s ref %8.2f ms  fast %8.3f ms  (x%.0f)\n", desc, isa, t_ref * 1e3,
                           t_fast * 1e3, t_fast > 0 ? t_ref / t_fast : 0.0);
            }
        }
        for (int o = 0; o < c->n_out; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]);
    }
    mixrt_nnops_force_scalar(false);
    mixrt_nnops_force_avx2(false);
    /* Small cases: fail each allocation in turn; the kernel reports OUT_OF_MEMORY (or
     * succeeds) and frees everything it took. */
    if (c->expect == MIXRT_STATUS_OK && rst == MIXRT_STATUS_OK && c->n_in && mixrt_tensor_numel(&in[0]) <= 4096) {
        for (long fail_at = 0; fail_at < 64; fail_at++) {
            size_t before = mixrt_context_bytes_in_use(kh_ctx);
            mixrt_context_fail_alloc_after(kh_ctx, fail_at, 0);
            mixrt_status st = kh_run_kernel(kern->run, NULL);
            mixrt_context_fail_alloc_after(kh_ctx, -1, 0);
            TU_CHECK(st == MIXRT_STATUS_OK || st == MIXRT_STATUS_OUT_OF_MEMORY,
                     "case %d %s: allocation %ld failing gave %s (%s); rerun: %s --only %d", id, desc, fail_at,
                     mixrt_status_string(st), mixrt_context_last_error(kh_ctx), g_argv0, id);
            for (int o = 0; o < c->n_out; o++) mixrt_tensor_release(kh_ctx, &kh_out[o]);
            TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == before,
                     "case %d %s: allocation %ld failing leaked %zu bytes; rerun: %s --only %d", id, desc, fail_at,
                     mixrt_context_bytes_in_use(kh_ctx) - before, g_argv0, id);
            if (st == MIXRT_STATUS_OK) break;
        }
    }
    kh_end();
    mixrt_tensor_release(kh_ctx, &ref);
    for (int i = 0; i < c->n_in; i++) mixrt_tensor_release(kh_ctx, &in[i]);
}

static const mixrt_dtype dtypes[2] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};

/* ---- pools ---------------------------------------------------------------------------------- */

static void pool_cases(void) {
    static const char *const ops[2] = {"MaxPool", "AveragePool"};
    for (int t = 0; t < 2; t++)
        for (int o = 0; o < 2; o++) {
            mixrt_dtype dt = dtypes[t];
            const char *op = ops[o];
            int opset = o == 0 ? 12 : 19;
            /* Plain, sizes on and around 16. */
            static const int64_t hw[][2] = {{16, 16}, {15, 17}, {17, 33}, {1, 16}, {32, 31}, {5, 5}};
            for (size_t s = 0; s < sizeof(hw) / sizeof(hw[0]); s++) {
                struct tcase c = tc(op, opset, dt);
                tin(&c, 0, 4, (int64_t[]){2, 3, hw[s][0], hw[s][1]});
                tints(&c, "kernel_shape", 2, (int64_t[]){hw[s][0] >= 3 ? 3 : 1, 3});
                if (s % 2) tints(&c, "strides", 2, (int64_t[]){2, 2});
                if (s % 3 == 1) tints(&c, "pads", 4, (int64_t[]){1, 1, 1, 1});
                run_case(&c);
            }
            /* Asymmetric pads, strides, ceil_mode, count_include_pad, dilations. */
            for (int ceil = 0; ceil < 2; ceil++)
                for (int inc = 0; inc < 2; inc++) {
                    struct tcase c = tc(op, opset, dt);
                    tin(&c, 0, 4, (int64_t[]){1, 5, 18, 19});
                    tints(&c, "kernel_shape", 2, (int64_t[]){3, 2});
                    tints(&c, "strides", 2, (int64_t[]){2, 3});
                    tints(&c, "pads", 4, (int64_t[]){1, 0, 2, 1});
                    tint(&c, "ceil_mode", ceil);
                    if (o == 1) tint(&c, "count_include_pad", inc);
                    if (inc) tints(&c, "dilations", 2, (int64_t[]){2, 1});
                    run_case(&c);
                }
            /* "Same" pools at stride 1 (the whole-plane max passes): YOLO's 5x5 SPPF, and one large
             * enough for the planes to go over the threads. */
            static const int64_t same[][4] = {{1, 8, 20, 21}, {1, 64, 40, 40}};
            for (int q = 0; q < 2; q++) {
                struct tcase c = tc(op, opset, dt);
                tin(&c, 0, 4, same[q]);
                tints(&c, "kernel_shape", 2, (int64_t[]){5, 5});
                tints(&c, "pads", 4, (int64_t[]){2, 2, 2, 2});
                run_case(&c);
                if (o == 0) { /* NaNs and infinities through both passes */
                    c.fill[0] = F_NANS;
                    run_case(&c);
                }
            }
            struct tcase c = tc(op, opset, dt); /* dilated, ceil, stride 1 */
            tin(&c, 0, 4, (int64_t[]){1, 2, 17, 16});
            tints(&c, "kernel_shape", 2, (int64_t[]){2, 3});
            tints(&c, "dilations", 2, (int64_t[]){3, 2});
            tints(&c, "pads", 4, (int64_t[]){2, 2, 0, 1});
            tint(&c, "ceil_mode", 1);
            run_case(&c);
            static const char *const aps[] = {"SAME_UPPER", "SAME_LOWER", "VALID"};
            for (int a = 0; a < 3; a++) {
                c = tc(op, opset, dt);
                tin(&c, 0, 4, (int64_t[]){1, 4, 16, 15});
                tints(&c, "kernel_shape", 2, (int64_t[]){4, 3});
                tints(&c, "strides", 2, (int64_t[]){2, 2});
                tstr(&c, "auto_pad", aps[a]);
                if (o == 1 && a < 2) tint(&c, "count_include_pad", 1);
                run_case(&c);
            }
            c = tc(op, opset, dt); /* 1-D */
            tin(&c, 0, 3, (int64_t[]){2, 3, 33});
            tints(&c, "kernel_shape", 1, (int64_t[]){4});
            tints(&c, "strides", 1, (int64_t[]){3});
            tints(&c, "pads", 2, (int64_t[]){1, 2});
            run_case(&c);
            c = tc(op, opset, dt); /* large pads: windows entirely in the padding */
            tin(&c, 0, 4, (int64_t[]){1, 2, 3, 3});
            tints(&c, "kernel_shape", 2, (int64_t[]){2, 2});
            tints(&c, "pads", 4, (int64_t[]){2, 2, 2, 2});
            if (o == 1) tint(&c, "count_include_pad", 1);
            run_case(&c);
            c = tc(op, opset, dt); /* empty batch */
            tin(&c, 0, 4, (int64_t[]){0, 3, 8, 8});
            tints(&c, "kernel_shape", 2, (int64_t[]){2, 2});
            run_case(&c);
            c = tc(op, 7, dt); /* an old opset, shapes unknown to the graph */
            tin(&c, 0, 4, (int64_t[]){1, 3, 9, 9});
            tints(&c, "kernel_shape", 2, (int64_t[]){3, 3});
            c.graph_unknown = true;
            run_case(&c);
            c = tc(op, opset, dt); /* rank 5 at run time: the reference runs it */
            tin(&c, 0, 5, (int64_t[]){1, 2, 4, 5, 6});
            tints(&c, "kernel_shape", 3, (int64_t[]){2, 2, 2});
            c.graph_unknown = true;
            run_case(&c);
            c = tc(op, opset, dt); /* errors: kernel larger than the input, bad kernel_shape length */
            tin(&c, 0, 4, (int64_t[]){1, 1, 2, 2});
            tints(&c, "kernel_shape", 2, (int64_t[]){3, 3});
            c.expect = MIXRT_STATUS_INVALID_MODEL;
            run_case(&c);
            c = tc(op, opset, dt);
            tin(&c, 0, 4, (int64_t[]){1, 1, 4, 4});
            tints(&c, "kernel_shape", 1, (int64_t[]){3});
            c.expect = MIXRT_STATUS_INVALID_MODEL;
            run_case(&c);
            c = tc(op, opset, dt); /* ResNet stem maxpool */
            tin(&c, 0, 4, (int64_t[]){1, 64, 112, 112});
            tints(&c, "kernel_shape", 2, (int64_t[]){3, 3});
            tints(&c, "strides", 2, (int64_t[]){2, 2});
            tints(&c, "pads", 4, (int64_t[]){1, 1, 1, 1});
            c.bench = true;
            run_case(&c);
        }
    /* MaxPool with an unused Indices output; f16 at run time (the reference runs it). */
    struct tcase c = tc("MaxPool", 12, MIXRT_DTYPE_F32);
    tin(&c, 0, 4, (int64_t[]){1, 2, 7, 7});
    tints(&c, "kernel_shape", 2, (int64_t[]){2, 2});
    c.n_out = 2;
    run_case(&c);
    c = tc("MaxPool", 12, MIXRT_DTYPE_F32);
    tin(&c, 0, 4, (int64_t[]){1, 2, 7, 7});
    tints(&c, "kernel_shape", 2, (int64_t[]){2, 2});
    c.run_dt = MIXRT_DTYPE_F16;
    run_case(&c);
    for (int t = 0; t < 2; t++)
        for (int o = 0; o < 2; o++) {
            const char *op = o ? "GlobalMaxPool" : "GlobalAveragePool";
            static const int64_t shapes[][4] = {{2, 3, 4, 4}, {1, 5, 17, 1}, {3, 2, 16, 16}, {1, 1, 33, 31}, {0, 3, 2, 2}};
            for (size_t s = 0; s < sizeof(shapes) / sizeof(shapes[0]); s++) {
                c = tc(op, 1, dtypes[t]);
                tin(&c, 0, 4, shapes[s]);
                run_case(&c);
            }
            c = tc(op, 1, dtypes[t]);
            tin(&c, 0, 3, (int64_t[]){2, 7, 19});
            run_case(&c);
            c = tc(op, 1, dtypes[t]);
            tin(&c, 0, 5, (int64_t[]){1, 3, 4, 5, 6});
            run_case(&c);
            c = tc(op, 1, dtypes[t]); /* ResNet head */
            tin(&c, 0, 4, (int64_t[]){1, 2048, 7, 7});
            c.bench = true;
            run_case(&c);
        }
}

/* ---- softmax -------------------------------------------------------------------------------- */

static void softmax_cases(void) {
    for (int t = 0; t < 2; t++)
        for (int o = 0; o < 2; o++) {
            mixrt_dtype dt = dtypes[t];
            const char *op = o ? "LogSoftmax" : "Softmax";
            static const int64_t d3[][3] = {{2, 3, 16}, {3, 5, 17}, {1, 1, 1}, {4, 16, 15}, {2, 1, 300}};
            for (size_t s = 0; s < sizeof(d3) / sizeof(d3[0]); s++)
                for (int ax = -1; ax <= 2; ax++) {
                    if (ax == 2) continue;
                    struct tcase c = tc(op, 13, dt);
                    tin(&c, 0, 3, d3[s]);
                    tint(&c, "axis", ax);
                    run_case(&c);
                }
            /* Legacy opsets: 2-D coercion at axis (default 1), axis == rank allowed. */
            for (int ax = -3; ax <= 3; ax++) {
                struct tcase c = tc(op, 11, dt);
                tin(&c, 0, 3, (int64_t[]){3, 4, 17});
                tint(&c, "axis", ax);
                run_case(&c);
            }
            struct tcase c = tc(op, 1, dt);
            tin(&c, 0, 4, (int64_t[]){2, 3, 4, 5});
            run_case(&c);
            c = tc(op, 13, dt); /* axis 0 of a long column */
            tin(&c, 0, 2, (int64_t[]){1000, 17});
            tint(&c, "axis", 0);
            run_case(&c);
            c = tc(op, 13, dt); /* a long row, large values */
            tin(&c, 0, 2, (int64_t[]){2, 5000});
            run_case(&c);
            c = tc(op, 13, dt); /* rank 0, empty */
            tin(&c, 0, 0, NULL);
            run_case(&c);
            c = tc(op, 13, dt);
            tin(&c, 0, 3, (int64_t[]){2, 0, 4});
            tint(&c, "axis", 1);
            run_case(&c);
            c = tc(op, 13, dt); /* bad axis */
            tin(&c, 0, 2, (int64_t[]){2, 3});
            tint(&c, "axis", 2);
            c.expect = MIXRT_STATUS_INVALID_MODEL;
            run_case(&c);
            c = tc(op, 13, dt); /* BERT attention */
            tin(&c, 0, 4, (int64_t[]){1, 12, 128, 128});
            c.bench = true;
            run_case(&c);
        }
}

/* ---- normalizations ------------------------------------------------------------------------- */

static void norm_cases(void) {
    for (int t = 0; t < 2; t++) {
        mixrt_dtype dt = dtypes[t];
        static const int64_t xs[][4] = {{2, 3, 4, 5}, {1, 16, 16, 16}, {3, 17, 1, 1}, {2, 5, 33, 1}, {0, 3, 2, 2}};
        static const int opsets[] = {6, 7, 9, 14, 15};
        for (size_t s = 0; s < sizeof(xs) / sizeof(xs[0]); s++)
            for (size_t v = 0; v < sizeof(opsets) / sizeof(opsets[0]); v++) {
                struct tcase c = tc("BatchNormalization", opsets[v], dt);
                tin(&c, 0, 4, xs[s]);
                for (int i = 1; i <= 4; i++) tin(&c, i, 1, (int64_t[]){xs[s][1]});
                c.fill[4] = F_POSITIVE;
                if (opsets[v] < 7) tint(&c, "is_test", 1);
                if (v % 2) tfloat(&c, "epsilon", 1e-3f);
                if (opsets[v] >= 14) tint(&c, "training_mode", 0);
                run_case(&c);
            }
        struct tcase c = tc("BatchNormalization", 15, dt); /* rank 2 and 3 */
        tin(&c, 0, 2, (int64_t[]){7, 33});
        for (int i = 1; i <= 4; i++) tin(&c, i, 1, (int64_t[]){33});
        c.fill[4] = F_POSITIVE;
        run_case(&c);
        c = tc("BatchNormalization", 15, dt);
        tin(&c, 0, 3, (int64_t[]){2, 16, 17});
        for (int i = 1; i <= 4; i++) tin(&c, i, 1, (int64_t[]){16});
        c.fill[4] = F_POSITIVE;
        run_case(&c);
        c = tc("BatchNormalization", 15, dt); /* wrong parameter length: the reference's error */
        tin(&c, 0, 4, (int64_t[]){1, 3, 2, 2});
        for (int i = 1; i <= 4; i++) tin(&c, i, 1, (int64_t[]){i == 2 ? 4 : 3});
        c.fill[4] = F_POSITIVE;
        c.expect = MIXRT_STATUS_INVALID_MODEL;
        run_case(&c);
        c = tc("BatchNormalization", 15, dt); /* ResNet-like */
        tin(&c, 0, 4, (int64_t[]){1, 256, 56, 56});
        for (int i = 1; i <= 4; i++) tin(&c, i, 1, (int64_t[]){256});
        c.fill[4] = F_POSITIVE;
        c.bench = true;
        run_case(&c);

        static const int64_t is[][4] = {{2, 3, 4, 5}, {1, 4, 16, 16}, {2, 3, 17, 15}, {1, 2, 1, 1}, {0, 2, 3, 3}};
        for (size_t s = 0; s < sizeof(is) / sizeof(is[0]); s++) {
            c = tc("InstanceNormalization", 6, dt);
            tin(&c, 0, 4, is[s]);
            tin(&c, 1, 1, (int64_t[]){is[s][1]});
            tin(&c, 2, 1, (int64_t[]){is[s][1]});
            if (s % 2) tfloat(&c, "epsilon", 1e-2f);
            run_case(&c);
        }
        c = tc("InstanceNormalization", 6, dt);
        tin(&c, 0, 3, (int64_t[]){2, 3, 1000});
        tin(&c, 1, 1, (int64_t[]){3});
        tin(&c, 2, 1, (int64_t[]){3});
        run_case(&c);
        c = tc("InstanceNormalization", 6, dt);
        tin(&c, 0, 4, (int64_t[]){1, 64, 56, 56});
        tin(&c, 1, 1, (int64_t[]){64});
        tin(&c, 2, 1, (int64_t[]){64});
        c.bench = true;
        run_case(&c);

        /* LayerNormalization: axes, broadcast Scale/B shapes, no B. */
        static const struct {
            int rank;
            int64_t x[4];
            int axis;
            int sr;
            int64_t s[4];
            bool bias;
        } ln[] = {
            {3, {2, 5, 16}, -1, 1, {16}, true},       {3, {2, 5, 17}, -1, 1, {17}, false},
            {3, {2, 5, 15}, 1, 2, {5, 15}, true},     {3, {2, 5, 15}, 1, 1, {15}, true},
            {3, {2, 5, 15}, 1, 2, {1, 15}, true},     {4, {2, 3, 4, 5}, 0, 4, {2, 3, 4, 5}, true},
            {2, {3, 1000}, -1, 1, {1000}, true},      {4, {1, 2, 3, 33}, -2, 2, {3, 33}, false},
            {3, {0, 4, 8}, -1, 1, {8}, true},         {2, {4, 1}, 1, 1, {1}, true},
        };
        for (size_t s = 0; s < sizeof(ln) / sizeof(ln[0]); s++) {
            c = tc("LayerNormalization", 17, dt);
            tin(&c, 0, ln[s].rank, ln[s].x);
            tin(&c, 1, ln[s].sr, ln[s].s);
            if (ln[s].bias) tin(&c, 2, ln[s].sr, ln[s].s);
            tint(&c, "axis", ln[s].axis);
            if (s % 3 == 1) tfloat(&c, "epsilon", 1e-3f);
            run_case(&c);
        }
        c = tc("LayerNormalization", 17, dt); /* Scale that does not fit: the reference's error */
        tin(&c, 0, 3, (int64_t[]){2, 3, 8});
        tin(&c, 1, 1, (int64_t[]){7});
        c.expect = MIXRT_STATUS_INVALID_MODEL;
        run_case(&c);
        /* com.mixrt RMSNormalization (Llama's norm): rows under and over a vector, tails off 16,
         * a 1-wide row, an empty X, a Scale that does not fit (the reference's error). */
        static const struct {
            int rank;
            int64_t x[3];
        } rms[] = {{3, {2, 5, 16}}, {3, {2, 5, 17}}, {2, {3, 1000}}, {2, {9, 1}}, {3, {1, 128, 4099}}, {2, {0, 8}}};
        for (size_t s = 0; s < sizeof(rms) / sizeof(rms[0]); s++) {
            c = tc("RMSNormalization", 1, dt);
            c.domain = MIXRT_DOMAIN;
            tin(&c, 0, rms[s].rank, rms[s].x);
            tin(&c, 1, 1, &rms[s].x[rms[s].rank - 1]);
            if (s % 2) tfloat(&c, "epsilon", 1e-3f);
            run_case(&c);
        }
        c = tc("RMSNormalization", 1, dt);
        c.domain = MIXRT_DOMAIN;
        tin(&c, 0, 3, (int64_t[]){2, 3, 8});
        tin(&c, 1, 1, (int64_t[]){7});
        c.expect = MIXRT_STATUS_INVALID_MODEL;
        run_case(&c);
        c = tc("LayerNormalization", 17, dt); /* BERT */
        tin(&c, 0, 3, (int64_t[]){1, 128, 768});
        tin(&c, 1, 1, (int64_t[]){768});
        tin(&c, 2, 1, (int64_t[]){768});
        tfloat(&c, "epsilon", 1e-12f);
        c.bench = true;
        run_case(&c);
    }
}

/* ---- reductions ----------------------------------------------------------------------------- */

static void reduce_cases(void) {
    static const char *const ops[7] = {"ReduceSum", "ReduceMean", "ReduceMax", "ReduceMin",
                                       "ReduceL1",  "ReduceL2",   "ReduceSumSquare"};
    static const struct {
        int rank;
        int64_t x[4];
        int na;
        int64_t axes[4];
    } rs[] = {
        {3, {2, 3, 16}, 1, {-1}},    {3, {2, 3, 17}, 1, {2}},       {3, {4, 17, 5}, 1, {1}},
        {3, {4, 17, 5}, 1, {0}},     {4, {2, 8, 5, 5}, 3, {0, 2, 3}}, {4, {2, 8, 5, 5}, 2, {2, 3}},
        {4, {2, 3, 4, 5}, 2, {1, 3}}, {4, {2, 3, 4, 5}, 2, {0, 2}}, {4, {3, 1, 4, 1}, 2, {1, 2}},
        {2, {33, 65}, 0, {0}},       {1, {1}, 1, {0}},              {3, {2, 0, 3}, 1, {1}},
        {3, {2, 0, 3}, 1, {2}},      {4, {1, 16, 16, 16}, 1, {1}},
    };
    for (int t = 0; t < 2; t++)
        for (int o = 0; o < 7; o++) {
            mixrt_dtype dt = dtypes[t];
            const char *op = ops[o];
            int attr_opset = o == 0 ? 11 : 13, input_opset = 18;
            for (size_t s = 0; s < sizeof(rs) / sizeof(rs[0]); s++)
                for (int form = 0; form < 2; form++)
                    for (int keep = 0; keep < 2; keep++) {
                        if (form == 1 && keep == 0 && s % 2) continue; /* fewer cases */
                        struct tcase c = tc(op, form ? input_opset : attr_opset, dt);
                        tin(&c, 0, rs[s].rank, rs[s].x);
                        if (form == 0 && rs[s].na) tints(&c, "axes", (size_t)rs[s].na, rs[s].axes);
                        if (form == 1 && rs[s].na) taxes(&c, 1, (size_t)rs[s].na, rs[s].axes);
                        tint(&c, "keepdims", keep);
                        run_case(&c);
                    }
            /* Axes input: absent, empty (all / noop), ReduceSum-13's input form. */
            struct tcase c = tc(op, input_opset, dt);
            tin(&c, 0, 3, (int64_t[]){3, 4, 5});
            run_case(&c);
            c = tc(op, input_opset, dt);
            tin(&c, 0, 3, (int64_t[]){3, 4, 5});
            taxes(&c, 1, 0, NULL);
            tint(&c, "noop_with_empty_axes", 1);
            run_case(&c);
            c = tc(op, input_opset, dt);
            tin(&c, 0, 3, (int64_t[]){3, 4, 5});
            tin(&c, 1, 1, (int64_t[]){0});
            c.absent[1] = true;
            tint(&c, "noop_with_empty_axes", 1);
            run_case(&c);
            if (o == 0) {
                c = tc(op, 13, dt);
                tin(&c, 0, 3, (int64_t[]){3, 4, 5});
                taxes(&c, 1, 2, (int64_t[]){0, -1});
                run_case(&c);
            }
            c = tc(op, attr_opset, dt); /* errors: axis out of range, repeated */
            tin(&c, 0, 2, (int64_t[]){3, 4});
            tints(&c, "axes", 1, (int64_t[]){2});
            c.expect = MIXRT_STATUS_INVALID_MODEL;
            run_case(&c);
            c = tc(op, attr_opset, dt);
            tin(&c, 0, 2, (int64_t[]){3, 4});
            tints(&c, "axes", 2, (int64_t[]){1, -1});
            c.expect = MIXRT_STATUS_INVALID_MODEL;
            run_case(&c);
            /* Long reductions: 1M elements innermost, all of them, and over an outer axis,
             * positive data so a naive f32 sum would drift. */
            c = tc(op, attr_opset, dt);
            tin(&c, 0, 2, (int64_t[]){2, 1 << 20});
            c.fill[0] = F_POSITIVE;
            tints(&c, "axes", 1, (int64_t[]){1});
            c.bench = true;
            run_case(&c);
            c = tc(op, attr_opset, dt);
            tin(&c, 0, 1, (int64_t[]){1 << 20});
            c.fill[0] = F_POSITIVE;
            run_case(&c);
            c = tc(op, attr_opset, dt);
            tin(&c, 0, 2, (int64_t[]){1 << 16, 17});
            c.fill[0] = F_POSITIVE;
            tints(&c, "axes", 1, (int64_t[]){0});
            run_case(&c);
            c = tc(op, attr_opset, dt); /* all but channel */
            tin(&c, 0, 4, (int64_t[]){4, 64, 56, 56});
            c.fill[0] = F_POSITIVE;
            tints(&c, "axes", 3, (int64_t[]){0, 2, 3});
            c.bench = true;
            run_case(&c);
            c = tc(op, attr_opset, dt); /* BERT: mean over the hidden dim */
            tin(&c, 0, 3, (int64_t[]){1, 128, 768});
            tints(&c, "axes", 1, (int64_t[]){-1});
            c.bench = true;
            run_case(&c);
        }
}

/* com.mixrt's channels-last GlobalAveragePool (the layout pass's), X [N, S.., C]: channel tails
 * off 16 and 64, dense rows of 8/16/32 channels read 64 wide (whole and with rows left over),
 * positions split over threads (64K elements and more), ranks 3 and 5, an empty batch. Run
 * after the others, so their case numbers (and random data) stay as they were. */
static void gap_last_cases(void) {
    static const struct {
        int rank;
        int64_t d[5];
    } last[] = {{4, {2, 4, 4, 3}},    {4, {1, 17, 1, 5}},     {4, {1, 112, 112, 32}}, {4, {1, 28, 28, 72}},
                {4, {1, 7, 7, 1152}}, {4, {2, 56, 56, 24}},   {4, {1, 33, 31, 16}},   {4, {3, 5, 7, 8}},
                {3, {2, 19, 7}},      {5, {1, 3, 4, 5, 130}}, {4, {0, 2, 2, 3}},      {4, {2, 3, 3, 8192}}};
    for (int t = 0; t < 2; t++)
        for (size_t s = 0; s < sizeof(last) / sizeof(last[0]); s++) {
            struct tcase c = tc("GlobalAveragePool", 1, dtypes[t]);
            c.domain = MIXRT_DOMAIN;
            tin(&c, 0, last[s].rank, last[s].d);
            run_case(&c);
        }
}

/* ---- supports() refusals -------------------------------------------------------------------- */

static void refuse(const char *op, int opset, mixrt_dtype dt, int rank, int n_in, int n_out, bool use_out1,
                   const char *attr, int64_t attr_v, const char *what) {
    if (g_only >= 0) return;
    const struct mixrt_cpu_kernel *k = mixrt_cpu_kernel_find(kernel_name(op, ""), "", op);
    kh_begin(op, opset, n_in, n_out);
    int64_t dims[MAXR] = {1, 2, 3, 4, 5, 6};
    for (int i = 0; i < n_in; i++) type_value(kh_N->inputs[i], dt, i ? 1 : rank, dims);
    for (int o = 0; o < n_out; o++) kh_G->values[kh_N->outputs[o]].dtype = dt;
    if (!use_out1)
        for (int o = 1; o < n_out; o++) kh_N->outputs[o] = -1;
    if (attr) kh_attr_int(attr, attr_v);
    if (!strcmp(op, "MaxPool")) kh_attr_ints("kernel_shape", (int64_t[]){1, 1}, 2);
    char why[256] = "";
    bool s = k && k->supports(kh_G, kh_N, why, sizeof(why));
    TU_CHECK(k && !s && why[0], "%s-%d %s: supports() should refuse (%s) with a reason", op, opset, mixrt_dtype_name(dt),
             what);
    kh_end();
}

static void refusal_checks(void) {
    refuse("Softmax", 13, MIXRT_DTYPE_F16, 2, 1, 1, false, NULL, 0, "f16");
    refuse("Softmax", 13, MIXRT_DTYPE_F64, 2, 1, 1, false, NULL, 0, "f64");
    refuse("ReduceSum", 11, MIXRT_DTYPE_I64, 2, 1, 1, false, NULL, 0, "i64");
    refuse("ReduceMax", 11, MIXRT_DTYPE_UNDEFINED, 2, 1, 1, false, NULL, 0, "unknown dtype");
    refuse("MaxPool", 12, MIXRT_DTYPE_F32, 4, 1, 2, true, NULL, 0, "Indices used");
    refuse("MaxPool", 12, MIXRT_DTYPE_F32, 5, 1, 1, false, NULL, 0, "3-D pooling");
    refuse("LayerNormalization", 17, MIXRT_DTYPE_F32, 3, 2, 2, true, NULL, 0, "Mean used");
    refuse("BatchNormalization", 15, MIXRT_DTYPE_F32, 4, 5, 1, false, "training_mode", 1, "training_mode");
    refuse("BatchNormalization", 6, MIXRT_DTYPE_F32, 4, 5, 1, false, "is_test", 0, "is_test=0");
    refuse("BatchNormalization", 7, MIXRT_DTYPE_F32, 4, 5, 1, false, "spatial", 0, "spatial=0");
    refuse("BatchNormalization", 9, MIXRT_DTYPE_F32, 4, 5, 3, true, NULL, 0, "running_mean used");
    /* The table: names unique per op, every kernel complete. */
    for (const struct mixrt_cpu_kernel *k = mixrt_nnops_kernels; k->name; k++)
        TU_CHECK(k->supports && k->run && !strncmp(k->name, "nn_", 3) &&
                     mixrt_cpu_kernel_find(k->name, k->domain, k->op_type) == k,
                 "kernel %s: incomplete or not found by name", k->name);
}

int main(int argc, char **argv) {
    snprintf(g_argv0, sizeof(g_argv0), "%s", argv[0]);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) g_only = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--scalar")) g_scalar_only = true;
        else if (!strcmp(argv[i], "--no-bench")) g_bench = false;
    }
    mixrt_context_create(NULL, &kh_ctx);
    printf("test_nnops_kernels: primitives %s (and scalar)\n", mixrt_nnops_isa()->name);
    pool_cases();
    softmax_cases();
    norm_cases();
    reduce_cases();
    gap_last_cases();
    refusal_checks();
    printf("test_nnops_kernels: %d cases run, worst rel-L2 f32 %.3g, bf16 %.3g\n", g_cases_run, g_worst[0],
           g_worst[1]);
    TU_CHECK(mixrt_context_bytes_in_use(kh_ctx) == 0, "%zu bytes leaked", mixrt_context_bytes_in_use(kh_ctx));
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_nnops_kernels");
}
