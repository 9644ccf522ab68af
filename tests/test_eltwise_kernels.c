/* test_eltwise_kernels.c - the elt_* kernel candidates (eltwise.c) against the reference
 * kernels: every op x {f32, bf16} x broadcast pattern x size, seeded random data with
 * specials (+-0, NaN, +-Inf, tiny, huge), both on the AVX-512 spans and on the scalar twins.
 * f32: exact ops bit-identical; transcendental ones within 2e-6 relative (abs 1e-6 for Gelu,
 * whose reference loses relative accuracy in 1 + erf below -5). bf16: within 1 bf16 ulp.
 * supports() refusals, error statuses, and a Melem/s printout (not asserted).
 * Usage: test_eltwise_kernels [--only CASE] [--no-bench | --bench-only]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/kernels.h"
#include "kernel_harness.h"
#include "testutil.h"

#define MAXR 6

struct ecase {
    const char *op;
    int opset;
    mixrt_dtype dt;  /* input 0's dtype (and the output's, except Cast) */
    int n_in;
    int rank[3];
    int64_t dims[3][MAXR];
    bool absent[3];       /* input i is an absent optional input (Clip) */
    const double *fixed[3]; /* fixed values of input i (Pow exponent, Clip bounds) */
    mixrt_dtype in_dt[3];   /* dtype of input i when not dt */
    bool const_in1;         /* input 1 is an initializer in the graph (Pow) */
    float alpha, beta;
    bool has_alpha, has_beta;
    const char *approx; /* Gelu */
    int64_t to;         /* Cast */
    double range;       /* random values in [-range, range] */
    mixrt_status expect;
};

static int g_case, g_only = -1, g_cases_run;
static char g_argv0[256];
static double g_worst_rel[2]; /* worst f32 relative error (|r| >= 1e-6) on the transcendental ops: vector, scalar */
static int g_worst_ulp;       /* worst bf16 distance in ulps */
/* Per op (with Gelu's approximate appended), the worst f32 relative error over both ISAs. */
static struct {
    char op[32];
    double rel;
} g_op_worst[16];
static int g_n_op_worst;

static void note_rel(const struct ecase *c, double rel) {
    char key[32];
    snprintf(key, sizeof(key), "%s%s%s", c->op, c->approx ? "/" : "", c->approx ? c->approx : "");
    int i = 0;
    while (i < g_n_op_worst && strcmp(g_op_worst[i].op, key)) i++;
    if (i == g_n_op_worst) {
        if (i == 16) return;
        snprintf(g_op_worst[i].op, sizeof(g_op_worst[i].op), "%s", key);
        g_op_worst[i].rel = 0;
        g_n_op_worst++;
    }
    if (rel > g_op_worst[i].rel) g_op_worst[i].rel = rel;
}

static struct ecase ec(const char *op, int opset, mixrt_dtype dt) {
    struct ecase c;
    memset(&c, 0, sizeof(c));
    c.op = op, c.opset = opset, c.dt = dt, c.range = 10.0;
    return c;
}
static void ein(struct ecase *c, int i, int rank, const int64_t *d) {
    c->rank[i] = rank;
    if (rank) memcpy(c->dims[i], d, sizeof(int64_t) * (size_t)rank);
    if (c->n_in < i + 1) c->n_in = i + 1;
}

static bool exact_op(const char *op) {
    static const char *const approx[] = {"Sigmoid", "Tanh", "Erf", "Exp", "HardSigmoid", "HardSwish", "Gelu",
                                         "Softplus", "Mish", "Log"};
    for (size_t i = 0; i < sizeof(approx) / sizeof(approx[0]); i++)
        if (!strcmp(op, approx[i])) return false;
    return true;
}

static const char *describe(const struct ecase *c, char *buf, size_t size) {
    size_t o = (size_t)snprintf(buf, size, "%s opset %d %s", c->op, c->opset, mixrt_dtype_name(c->dt));
    for (int i = 0; i < c->n_in && o < size; i++) {
        char d[128];
        if (c->absent[i]) o += (size_t)snprintf(buf + o, size - o, " x%d=absent", i);
        else o += (size_t)snprintf(buf + o, size - o, " x%d=%s", i, mixrt_dims_str(d, sizeof(d), c->rank[i], c->dims[i]));
        if (c->fixed[i] && o < size) o += (size_t)snprintf(buf + o, size - o, "(=%g)", c->fixed[i][0]);
    }
    if (c->has_alpha && o < size) o += (size_t)snprintf(buf + o, size - o, " alpha=%g", c->alpha);
    if (c->has_beta && o < size) o += (size_t)snprintf(buf + o, size - o, " beta=%g", c->beta);
    if (c->approx && o < size) o += (size_t)snprintf(buf + o, size - o, " approximate=%s", c->approx);
    if (c->to && o < size) snprintf(buf + o, size - o, " to=%s", mixrt_dtype_name((mixrt_dtype)c->to));
    return buf;
}

static const struct mixrt_cpu_kernel *kernel_for(const char *op) {
    char name[64];
    snprintf(name, sizeof(name), "elt_%s", op);
    for (char *p = name; *p; p++)
        if (*p >= 'A' && *p <= 'Z') *p = (char)(*p - 'A' + 'a');
    return mixrt_cpu_kernel_find(name, "", op);
}

/* A value for element j: mostly uniform in [-range, range], with specials sprinkled in. */
static double gen_value(size_t j, double range) {
    static const double specials[] = {0.0, -0.0, NAN, INFINITY, -INFINITY, 1e-30, -1e-30, 1e30, -1e30, 1e-40,
                                      -1e-40, 88.5, -88.5, 1e4, -1e4, 0.5, -0.5, 1.0, -1.0, 1.4142135, -1.4142135, 4.0,
                                      -4.0, 0.55, -0.55, 6.0, -6.0, 15.0, -15.0, 100.0, -100.0};
    uint64_t r = tu_rand();
    if (j < sizeof(specials) / sizeof(specials[0]) && (r & 3) == 0) return specials[j];
    if ((r >> 8) % 13 == 0) return specials[(r >> 16) % (sizeof(specials) / sizeof(specials[0]))];
    if ((r >> 8) % 13 == 1) return tu_uniform(-1e-3, 1e-3); /* small magnitudes */
    return tu_uniform(-range, range);
}

static double bits_to_double(const struct mixrt_tensor *t, size_t i) { return mixrt_load_f64(t->data, t->dtype, i); }

/* Ordered distance of two bf16 bit patterns (same sign side: plain difference). */
static int bf16_ulps(uint16_t a, uint16_t b) {
    int ia = (a & 0x8000) ? -(int)(a & 0x7fff) : (int)a, ib = (b & 0x8000) ? -(int)(b & 0x7fff) : (int)b;
    return abs(ia - ib);
}

/* Compares y (ours) with r (reference); returns the first bad index or -1. */
static bool compare_op(const char *op) {
    return !strcmp(op, "Greater") || !strcmp(op, "Less") || !strcmp(op, "Equal") || !strcmp(op, "GreaterOrEqual") ||
           !strcmp(op, "LessOrEqual");
}

static long compare(const struct ecase *c, const struct mixrt_tensor *y, const struct mixrt_tensor *r, int isa,
                    char *msg, size_t msize) {
    size_t n = mixrt_tensor_numel(r);
    if (r->dtype == MIXRT_DTYPE_BOOL) { /* comparisons: byte for byte */
        for (size_t i = 0; i < n; i++)
            if (((const uint8_t *)y->data)[i] != ((const uint8_t *)r->data)[i]) {
                snprintf(msg, msize, "element %zu: %d, reference %d", i, ((const uint8_t *)y->data)[i],
                         ((const uint8_t *)r->data)[i]);
                return (long)i;
            }
        return -1;
    }
    bool exact = exact_op(c->op);
    bool gelu = !strcmp(c->op, "Gelu");
    for (size_t i = 0; i < n; i++) {
        double yv = bits_to_double(y, i), rv = bits_to_double(r, i);
        if (isnan(yv) || isnan(rv)) {
            if (isnan(yv) && isnan(rv)) continue;
            snprintf(msg, msize, "element %zu: %.9g, reference %.9g", i, yv, rv);
            return (long)i;
        }
        if (r->dtype == MIXRT_DTYPE_F32) {
            float yf = ((const float *)y->data)[i], rf = ((const float *)r->data)[i];
            uint32_t yb, rb;
            memcpy(&yb, &yf, 4);
            memcpy(&rb, &rf, 4);
            if (exact) {
                if (yb != rb) {
                    snprintf(msg, msize, "element %zu: %.9g (0x%08x), reference %.9g (0x%08x): exact op differs", i,
                             yv, yb, rv, rb);
                    return (long)i;
                }
                continue;
            }
            double d = fabs(yv - rv);
            if (yv == rv) continue;
            if (isinf(yv) || isinf(rv)) {
                snprintf(msg, msize, "element %zu: %.9g, reference %.9g", i, yv, rv);
                return (long)i;
            }
            const int w = isa == 1; /* 0: the vector spans (AVX-512 or AVX2), 1: scalar */
            if (fabs(rv) >= 1e-6 && d / fabs(rv) > g_worst_rel[w]) g_worst_rel[w] = d / fabs(rv);
            if (fabs(rv) >= 1e-6) note_rel(c, d / fabs(rv));
            double abs_tol = gelu ? 1e-6 : 1e-44;
            if (d > 2e-6 * fabs(rv) && d > abs_tol) {
                snprintf(msg, msize, "element %zu: %.9g, reference %.9g (rel %.3g)", i, yv, rv, d / fabs(rv));
                return (long)i;
            }
        } else if (r->dtype == MIXRT_DTYPE_BF16 || r->dtype == MIXRT_DTYPE_F16) {
            uint16_t yb = ((const uint16_t *)y->data)[i], rb = ((const uint16_t *)r->data)[i];
            int u = bf16_ulps(yb, rb);
            if (r->dtype == MIXRT_DTYPE_F16) u = yb == rb ? 0 : 99; /* Cast to f16: exact */
            if (u > g_worst_ulp && !(gelu && fabs(yv - rv) <= 1e-6)) g_worst_ulp = u;
            if (u > 1 && !(gelu && fabs(yv - rv) <= 1e-6)) {
                snprintf(msg, msize, "element %zu: %.9g (0x%04x), reference %.9g (0x%04x): %d ulps", i, yv, yb, rv, rb,
                         u);
                return (long)i;
            }
        }
    }
    return -1;
}

static void set_value(int vi, mixrt_dtype dt, int rank, const int64_t *dims) {
    struct mixrt_value *v = &kh_G->values[vi];
    v->dtype = dt;
    v->rank = rank;
    for (int j = 0; j < rank; j++) v->dims[j].value = dims[j];
}

static void run_case(const struct ecase *c) {
    int id = g_case++;
    if (g_only >= 0 && id != g_only) return;
    g_cases_run++;
    char desc[512];
    describe(c, desc, sizeof(desc));
    const struct mixrt_cpu_kernel *kern = kernel_for(c->op);
    TU_CHECK(kern != NULL, "case %d: no elt kernel for %s", id, c->op);
    if (!kern) return;
    struct mixrt_tensor in[3];
    memset(in, 0, sizeof(in));
    tu_seed(0xe17u * 1000003u + (uint64_t)id);
    for (int i = 0; i < c->n_in; i++) {
        if (c->absent[i]) continue;
        mixrt_dtype dt = c->in_dt[i] ? c->in_dt[i] : c->dt;
        in[i] = kh_tensor(dt, c->rank[i], c->dims[i], NULL);
        size_t n = mixrt_tensor_numel(&in[i]);
        for (size_t j = 0; j < n; j++)
            mixrt_store_f64(in[i].data, dt, j, c->fixed[i] ? c->fixed[i][j] : gen_value(j, c->range));
        /* comparisons: a third of input 1 equal to input 0 where the shapes agree (ties) */
        if (i == 1 && compare_op(c->op) && in[0].data && mixrt_tensor_numel(&in[0]) == n && in[0].dtype == dt)
            for (size_t j = 0; j < n; j += 3) mixrt_store_f64(in[1].data, dt, j, mixrt_load_f64(in[0].data, dt, j));
    }
    kh_begin(c->op, c->opset, c->n_in, 1);
    if (c->has_alpha) kh_attr_float("alpha", c->alpha);
    if (c->has_beta) kh_attr_float("beta", c->beta);
    if (c->approx) kh_attr_str("approximate", c->approx);
    if (c->to) kh_attr_int("to", c->to);
    for (int i = 0; i < c->n_in; i++) {
        if (c->absent[i]) kh_N->inputs[i] = -1;
        else set_value(kh_N->inputs[i], in[i].dtype, in[i].rank, in[i].dims);
    }
    kh_G->values[kh_N->outputs[0]].dtype = c->to ? (mixrt_dtype)c->to : compare_op(c->op) ? MIXRT_DTYPE_BOOL : c->dt;
    struct mixrt_value *v1 = c->n_in > 1 && !c->absent[1] ? &kh_G->values[kh_N->inputs[1]] : NULL;
    if (c->const_in1 && v1) {
        v1->init = &in[1];
        v1->flags |= MIXRT_VALUE_INITIALIZER;
    }
    char why[256] = "";
    bool sup = kern->supports(kh_G, kh_N, why, sizeof(why));
    TU_CHECK(sup, "case %d %s: supports() refused: %s; rerun: %s --only %d", id, desc, why, g_argv0, id);

    for (int i = 0; i < c->n_in; i++) kh_in[i] = c->absent[i] ? NULL : &in[i];
    mixrt_status rst = kh_run();
    struct mixrt_tensor ref;
    memset(&ref, 0, sizeof(ref));
    if (rst == MIXRT_STATUS_OK) mixrt_tensor_copy(kh_ctx, &ref, &kh_out[0]);
    mixrt_tensor_release(kh_ctx, &kh_out[0]);

    /* The CPU's widest spans (AVX-512 or AVX2), the scalar twins, and the AVX2 spans forced
     * where the CPU has AVX-512 too. */
    for (int isa = 0; isa < 3; isa++) {
        if (isa == 0 && !mixrt_elt_has_avx512() && !mixrt_elt_has_avx2()) continue;
        if (isa == 2 && !(mixrt_elt_has_avx512() && mixrt_elt_has_avx2())) continue;
        mixrt_elt_force_scalar(isa == 1);
        mixrt_elt_force_avx2(isa == 2);
        const char *isa_name = mixrt_elt_isa();
        mixrt_status st = kh_run_kernel(kern->run, NULL);
        if (c->expect != MIXRT_STATUS_OK) {
            TU_CHECK(st == c->expect && rst == c->expect,
                     "case %d %s [%s]: expected %s from both, got ref %s, elt %s (%s); rerun: %s --only %d", id, desc,
                     isa_name, mixrt_status_string(c->expect), mixrt_status_string(rst), mixrt_status_string(st),
                     mixrt_context_last_error(kh_ctx), g_argv0, id);
        } else {
            TU_CHECK(rst == MIXRT_STATUS_OK && st == MIXRT_STATUS_OK, "case %d %s [%s]: ref %s, elt %s (%s); rerun: %s --only %d",
                     id, desc, isa_name, mixrt_status_string(rst), mixrt_status_string(st),
                     mixrt_context_last_error(kh_ctx), g_argv0, id);
            if (rst == MIXRT_STATUS_OK && st == MIXRT_STATUS_OK) {
                bool same = kh_out[0].rank == ref.rank && kh_out[0].dtype == ref.dtype &&
                            !memcmp(kh_out[0].dims, ref.dims, sizeof(int64_t) * (size_t)ref.rank);
                char d1[128], d2[128];
                TU_CHECK(same, "case %d %s [%s]: output %s %s, reference %s %s; rerun: %s --only %d", id, desc,
                         isa_name, mixrt_dtype_name(kh_out[0].dtype),
                         mixrt_dims_str(d1, sizeof(d1), kh_out[0].rank, kh_out[0].dims), mixrt_dtype_name(ref.dtype),
                         mixrt_dims_str(d2, sizeof(d2), ref.rank, ref.dims), g_argv0, id);
                if (same) {
                    char msg[256] = "";
                    long bad = compare(c, &kh_out[0], &ref, isa, msg, sizeof(msg));
                    TU_CHECK(bad < 0, "case %d %s [%s]: %s; rerun: %s --only %d", id, desc, isa_name, msg, g_argv0, id);
                }
            }
        }
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
    }
    mixrt_elt_force_scalar(false);
    mixrt_elt_force_avx2(false);
    if (v1) v1->init = NULL; /* the case owns in[1] */
    kh_end();
    mixrt_tensor_release(kh_ctx, &ref);
    for (int i = 0; i < c->n_in; i++) mixrt_tensor_release(kh_ctx, &in[i]);
}

static const mixrt_dtype dtypes[2] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};
static const int64_t sizes[] = {0, 1, 15, 16, 17, 31, 33, 1000};
#define NSIZES (sizeof(sizes) / sizeof(sizes[0]))

static void binary_cases(void) {
    static const char *const ops[] = {"Add",  "Sub",  "Mul",   "Div",           "Max",        "Min",
                                      "Greater", "Less", "Equal", "GreaterOrEqual", "LessOrEqual"};
    for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++)
        for (int t = 0; t < 2; t++) {
            for (size_t s = 0; s < NSIZES; s++) {
                int64_t S = sizes[s];
                struct ecase c = ec(ops[o], 14, dtypes[t]);
                /* same shape */
                ein(&c, 0, 1, (int64_t[]){S});
                ein(&c, 1, 1, (int64_t[]){S});
                run_case(&c);
                /* a scalar on either side, rank 0 and [1] */
                c = ec(ops[o], 14, dtypes[t]);
                ein(&c, 0, 2, (int64_t[]){3, S});
                ein(&c, 1, 0, NULL);
                run_case(&c);
                c = ec(ops[o], 14, dtypes[t]);
                ein(&c, 0, 1, (int64_t[]){1});
                ein(&c, 1, 1, (int64_t[]){S});
                run_case(&c);
                /* bias along the innermost dim, on either side */
                c = ec(ops[o], 14, dtypes[t]);
                ein(&c, 0, 3, (int64_t[]){3, 2, S});
                ein(&c, 1, 1, (int64_t[]){S});
                run_case(&c);
                c = ec(ops[o], 14, dtypes[t]);
                ein(&c, 0, 2, (int64_t[]){1, S});
                ein(&c, 1, 3, (int64_t[]){2, 3, S});
                run_case(&c);
                /* per-channel [1,C,1,1] on NCHW (C = S) and [C,1,1] */
                c = ec(ops[o], 14, dtypes[t]);
                ein(&c, 0, 4, (int64_t[]){2, S, 3, 5});
                ein(&c, 1, 4, (int64_t[]){1, S, 1, 1});
                run_case(&c);
                c = ec(ops[o], 14, dtypes[t]);
                ein(&c, 0, 3, (int64_t[]){S, 1, 1});
                ein(&c, 1, 4, (int64_t[]){2, S, 7, 7});
                run_case(&c);
                /* both sides broadcast (outer product) */
                c = ec(ops[o], 14, dtypes[t]);
                ein(&c, 0, 2, (int64_t[]){5, 1});
                ein(&c, 1, 2, (int64_t[]){1, S});
                run_case(&c);
            }
            /* generic strided patterns and odd shapes */
            static const struct {
                int ra, rb;
                int64_t a[MAXR], b[MAXR];
            } shapes[] = {
                {3, 3, {4, 1, 6}, {1, 5, 1}},       {4, 3, {2, 3, 4, 5}, {3, 1, 5}},  {4, 4, {2, 1, 4, 1}, {1, 3, 1, 7}},
                {3, 3, {3, 5, 7}, {3, 5, 7}},       {5, 2, {2, 1, 3, 1, 17}, {3, 1}}, {2, 2, {0, 3}, {1, 3}},
                {2, 2, {2, 0}, {1, 1}},             {0, 0, {0}, {0}},                 {1, 1, {1}, {1}},
                {4, 4, {1, 1, 1, 1}, {1, 1, 1, 1}}, {2, 3, {33, 1}, {2, 1, 31}},
            };
            for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
                struct ecase c = ec(ops[o], 14, dtypes[t]);
                ein(&c, 0, shapes[i].ra, shapes[i].a);
                ein(&c, 1, shapes[i].rb, shapes[i].b);
                run_case(&c);
            }
            /* image-sized (threaded over spans, 64K elements and more): a squeeze-excite scale
             * per channel of NHWC on either side (short spans, the operand widened once per
             * thread), per channel of NCHW (spans longer than the bf16 staging), same shape */
            static const struct {
                int64_t a[4], b[4];
            } big[] = {{{1, 56, 56, 96}, {1, 1, 1, 96}}, {{1, 1, 1, 24}, {2, 37, 41, 24}},
                       {{1, 96, 56, 56}, {1, 96, 1, 1}}, {{1, 17, 61, 67}, {1, 17, 61, 67}},
                       /* rows past the staged tiles (bf16: one AVX-512 pass per row), either side,
                        * channel counts with and without a vector tail */
                       {{1, 48, 48, 1152}, {1, 1, 1, 1152}}, {{2, 1, 1, 1000}, {2, 9, 11, 1000}},
                       {{1, 28, 28, 240}, {1, 1, 1, 240}},
                       /* short rows in runs of a tiled row: the row changing per image, runs
                        * cut at 40 rows and at the thread split */
                       {{2, 1, 1, 40}, {2, 33, 35, 40}}, {{1, 70, 70, 100}, {1, 1, 1, 100}}};
            for (size_t i = 0; i < sizeof(big) / sizeof(big[0]); i++) {
                struct ecase c = ec(ops[o], 14, dtypes[t]);
                ein(&c, 0, 4, big[i].a);
                ein(&c, 1, 4, big[i].b);
                run_case(&c);
            }
            /* shapes that do not broadcast: both refuse */
            struct ecase e = ec(ops[o], 14, dtypes[t]);
            ein(&e, 0, 2, (int64_t[]){3, 4});
            ein(&e, 1, 2, (int64_t[]){2, 4});
            e.expect = MIXRT_STATUS_INVALID_MODEL;
            run_case(&e);
        }
}

static void unary_one(const char *op, int opset, mixrt_dtype dt, double range, struct ecase *tmpl) {
    for (size_t s = 0; s < NSIZES; s++) {
        struct ecase c = *tmpl;
        c.op = op, c.opset = opset, c.dt = dt, c.range = range;
        ein(&c, 0, 1, (int64_t[]){sizes[s]});
        run_case(&c);
    }
    struct ecase c = *tmpl;
    c.op = op, c.opset = opset, c.dt = dt, c.range = range;
    ein(&c, 0, 3, (int64_t[]){3, 5, 7});
    run_case(&c);
    ein(&c, 0, 0, NULL);
    run_case(&c);
    ein(&c, 0, 2, (int64_t[]){4096, 3}); /* many values: a denser sweep of the approximations */
    run_case(&c);
}

static void unary_cases(void) {
    static const struct {
        const char *op;
        int opset;
        double range;
    } ops[] = {
        {"Relu", 14, 10},      {"Sigmoid", 13, 30},  {"Tanh", 13, 12},        {"Erf", 13, 5},        {"Exp", 13, 100},
        {"Sqrt", 13, 100},     {"Reciprocal", 13, 10}, {"Neg", 13, 10},       {"Abs", 13, 10},       {"HardSwish", 14, 8},
        {"Softplus", 1, 30},   {"Identity", 16, 10},   {"Relu", 6, 3},        {"Sigmoid", 6, 90},    {"Tanh", 6, 0.6},
        {"Erf", 9, 1.2},       {"Exp", 6, 2},          {"Mish", 18, 30},      {"Mish", 18, 3},
        {"Log", 13, 100},      {"Log", 6, 2},
    };
    for (int t = 0; t < 2; t++) {
        for (size_t o = 0; o < sizeof(ops) / sizeof(ops[0]); o++) {
            struct ecase tmpl = ec(ops[o].op, ops[o].opset, dtypes[t]);
            unary_one(ops[o].op, ops[o].opset, dtypes[t], ops[o].range, &tmpl);
        }
        struct ecase tmpl = ec("LeakyRelu", 16, dtypes[t]);
        unary_one("LeakyRelu", 16, dtypes[t], 10, &tmpl); /* default alpha */
        tmpl.has_alpha = true, tmpl.alpha = 0.1f;
        unary_one("LeakyRelu", 16, dtypes[t], 10, &tmpl);
        tmpl = ec("HardSigmoid", 6, dtypes[t]);
        unary_one("HardSigmoid", 6, dtypes[t], 8, &tmpl);
        tmpl.has_alpha = tmpl.has_beta = true, tmpl.alpha = 0.3f, tmpl.beta = 0.4f;
        unary_one("HardSigmoid", 6, dtypes[t], 8, &tmpl);
        tmpl = ec("Gelu", 20, dtypes[t]);
        unary_one("Gelu", 20, dtypes[t], 10, &tmpl);
        tmpl.approx = "none";
        unary_one("Gelu", 20, dtypes[t], 4, &tmpl);
        tmpl.approx = "tanh";
        unary_one("Gelu", 20, dtypes[t], 10, &tmpl);
        /* Clip: attributes before opset 11, optional inputs after (both, only min, only max, none) */
        tmpl = ec("Clip", 6, dtypes[t]);
        unary_one("Clip", 6, dtypes[t], 10, &tmpl);
        tmpl.has_alpha = false;
        static const double lo[1] = {-2.5}, hi[1] = {3.0}, inv_lo[1] = {4.0};
        for (int form = 0; form < 5; form++) {
            struct ecase c = ec("Clip", 13, dtypes[t]);
            ein(&c, 0, 2, (int64_t[]){7, 33});
            ein(&c, 1, 0, NULL);
            ein(&c, 2, 0, NULL);
            c.fixed[1] = form == 4 ? inv_lo : lo;
            c.fixed[2] = hi;
            if (form == 1) c.absent[2] = true;
            if (form == 2) c.absent[1] = true;
            if (form == 3) c.absent[1] = c.absent[2] = true;
            run_case(&c);
        }
        /* Pow by a constant 2 or 0.5, the exponent f32, f64 or i64, also of higher rank */
        static const double two[1] = {2.0}, half[1] = {0.5};
        static const mixrt_dtype edt[3] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_F64, MIXRT_DTYPE_I64};
        for (int e = 0; e < 2; e++)
            for (int d = 0; d < 3; d++) {
                if (e == 1 && d == 2) continue; /* 0.5 is not an integer */
                for (size_t s = 0; s < NSIZES; s++) {
                    struct ecase c = ec("Pow", 15, dtypes[t]);
                    ein(&c, 0, 2, (int64_t[]){2, sizes[s]});
                    ein(&c, 1, s == 3 ? 3 : 0, (int64_t[]){1, 1, 1});
                    c.fixed[1] = e ? half : two;
                    c.in_dt[1] = edt[d];
                    c.const_in1 = true;
                    c.range = 50;
                    run_case(&c);
                }
            }
    }
    /* Cast among f32, bf16, f16; the last size is two whole 64 K pieces and a part (the
     * kernel's threaded path; one piece runs without a parallel region) */
    static const mixrt_dtype cdt[3] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F16};
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 3; b++)
            for (size_t s = 0; s <= NSIZES; s++) {
                struct ecase c = ec("Cast", 19, cdt[a]);
                ein(&c, 0, 1, (int64_t[]){s < NSIZES ? sizes[s] : 2 * 65536 + 37});
                c.to = cdt[b];
                c.range = 70000; /* past f16's range */
                run_case(&c);
            }
}

/* What supports() must refuse (the reference runs these). */
static void refusal_cases(void) {
    struct {
        const char *op;
        int opset, n_in;
        mixrt_dtype dt, dt1;
        double exponent; /* Pow: the constant exponent */
    } cases[] = {
        {"Add", 14, 2, MIXRT_DTYPE_F64, MIXRT_DTYPE_F64, 0}, {"Add", 14, 2, MIXRT_DTYPE_I64, MIXRT_DTYPE_I64, 0},
        {"Add", 14, 2, MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, 0}, {"Add", 6, 2, MIXRT_DTYPE_F32, MIXRT_DTYPE_F32, 0},
        {"Max", 13, 3, MIXRT_DTYPE_F32, MIXRT_DTYPE_F32, 0}, {"Max", 6, 2, MIXRT_DTYPE_F32, MIXRT_DTYPE_F32, 0},
        {"Relu", 14, 1, MIXRT_DTYPE_F16, 0, 0},              {"Relu", 14, 1, MIXRT_DTYPE_UNDEFINED, 0, 0},
        {"Pow", 15, 2, MIXRT_DTYPE_F32, MIXRT_DTYPE_F32, 3}, {"Pow", 15, 2, MIXRT_DTYPE_F32, MIXRT_DTYPE_F32, -1},
        {"Gelu", 17, 1, MIXRT_DTYPE_F32, 0, 0},              {"Cast", 19, 1, MIXRT_DTYPE_F32, 0, 0},
        {"Relu", 99, 1, MIXRT_DTYPE_F32, 0, 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct mixrt_cpu_kernel *kern = kernel_for(cases[i].op);
        TU_CHECK(kern != NULL, "no elt kernel for %s", cases[i].op);
        if (!kern) continue;
        kh_begin(cases[i].op, cases[i].opset, cases[i].n_in, 1);
        struct mixrt_tensor e = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, (double[]){cases[i].exponent});
        kh_G->values[kh_N->inputs[0]].dtype = cases[i].dt;
        for (int j = 1; j < cases[i].n_in; j++) kh_G->values[kh_N->inputs[j]].dtype = cases[i].dt1;
        kh_G->values[kh_N->outputs[0]].dtype = cases[i].dt;
        if (!strcmp(cases[i].op, "Pow") && cases[i].exponent != -1) kh_G->values[kh_N->inputs[1]].init = &e;
        if (!strcmp(cases[i].op, "Cast")) kh_attr_int("to", MIXRT_DTYPE_F64);
        char why[256] = "";
        bool sup = kern->supports(kh_G, kh_N, why, sizeof(why));
        TU_CHECK(!sup && why[0], "%s opset %d %s inputs %d: supports() should refuse (and say why)", cases[i].op,
                 cases[i].opset, mixrt_dtype_name(cases[i].dt), cases[i].n_in);
        kh_G->values[kh_N->inputs[cases[i].n_in > 1 ? 1 : 0]].init = NULL;
        kh_end();
        mixrt_tensor_release(kh_ctx, &e);
    }
    /* Run-time refusals: a dtype the graph did not announce, a Pow exponent that changed. */
    const struct mixrt_cpu_kernel *relu = kernel_for("Relu"), *pw = kernel_for("Pow");
    kh_begin("Relu", 14, 1, 1);
    struct mixrt_tensor x = kh_tensor(MIXRT_DTYPE_F64, 1, (int64_t[]){3}, NULL);
    kh_in[0] = &x;
    mixrt_status st = kh_run_kernel(relu->run, NULL);
    TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED_DTYPE && strstr(mixrt_context_last_error(kh_ctx), "input #0 'x0' is f64"),
             "Relu on f64 at run time: %s (%s)", mixrt_status_string(st), mixrt_context_last_error(kh_ctx));
    kh_end();
    mixrt_tensor_release(kh_ctx, &x);
    kh_begin("Pow", 15, 2, 1);
    x = kh_tensor(MIXRT_DTYPE_F32, 1, (int64_t[]){3}, NULL);
    struct mixrt_tensor e = kh_tensor(MIXRT_DTYPE_F32, 0, NULL, (double[]){3.0});
    kh_in[0] = &x;
    kh_in[1] = &e;
    st = kh_run_kernel(pw->run, NULL);
    TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED, "Pow by 3 at run time: %s", mixrt_status_string(st));
    kh_end();
    mixrt_tensor_release(kh_ctx, &x);
    mixrt_tensor_release(kh_ctx, &e);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* Melem/s of fn on the current kh_ node: the best of a few runs. */
static double melems(mixrt_kernel_fn fn, size_t n, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; r++) {
        double t0 = now_s();
        mixrt_status st = fn ? kh_run_kernel(fn, NULL) : kh_run();
        double t = now_s() - t0;
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
        if (st != MIXRT_STATUS_OK) return 0;
        if (t < best) best = t;
    }
    return (double)n / best / 1e6;
}

static void bench(void) {
    const size_t n = 1 << 20;
    static const struct {
        const char *op;
        int n_in;
        const char *approx;
    } rows[] = {{"Add", 2, NULL}, {"Relu", 1, NULL}, {"Gelu", 1, NULL}, {"Gelu", 1, "tanh"}, {"Sigmoid", 1, NULL}};
    printf("test_eltwise_kernels: Melem/s, 1M elements (isa %s)\n", mixrt_elt_isa());
    for (size_t r = 0; r < sizeof(rows) / sizeof(rows[0]); r++)
        for (int t = 0; t < 2; t++) {
            struct mixrt_tensor in[2];
            tu_seed(7);
            for (int i = 0; i < rows[r].n_in; i++) {
                in[i] = kh_tensor(dtypes[t], 1, (int64_t[]){(int64_t)n}, NULL);
                for (size_t j = 0; j < n; j++) mixrt_store_f64(in[i].data, dtypes[t], j, tu_uniform(-5, 5));
            }
            kh_begin(rows[r].op, !strcmp(rows[r].op, "Gelu") ? 20 : 14, rows[r].n_in, 1);
            if (rows[r].approx) kh_attr_str("approximate", rows[r].approx);
            for (int i = 0; i < rows[r].n_in; i++) kh_in[i] = &in[i];
            const struct mixrt_cpu_kernel *kern = kernel_for(rows[r].op);
            double ref = melems(NULL, n, 2), fast = melems(kern->run, n, 5);
            mixrt_elt_force_scalar(true);
            double scalar = melems(kern->run, n, 2);
            mixrt_elt_force_scalar(false);
            printf("  %-8s%-5s %-4s ref %8.1f   elt %8.1f (x%.0f)   scalar twin %8.1f\n", rows[r].op,
                   rows[r].approx ? "tanh" : "", mixrt_dtype_name(dtypes[t]), ref, fast, fast / (ref > 0 ? ref : 1),
                   scalar);
            kh_end();
            for (int i = 0; i < rows[r].n_in; i++) mixrt_tensor_release(kh_ctx, &in[i]);
        }
}

/* mixrt_elt_silu_to_bf16 (the SiLU after oneDNN's bf16 convolutions) against x / (1 + e^-x) in
 * f64 rounded once to bf16, on both ISAs: random values over [-120, 120] (both tails: the
 * results below 1e-36 in magnitude, and x itself past 20), a dense sweep of [-12, 12], the
 * specials, and lengths that leave every tail of a vector and of a 2048-value chunk. Each
 * result within 1 bf16 ulp of the exactly rounded one (the fast form's own error is under 1e-4
 * relative, so a rounding boundary can flip at most one ulp); results under 1e-30 in magnitude
 * only need magnitude under 1e-30; NaN in gives NaN out, +Inf gives +Inf. */
static void silu_bf16_cases(void) {
    const size_t lens[] = {1, 15, 16, 17, 2047, 2048, 2049, 70001};
    uint64_t seed = 0x5a1u;
    for (int isa = 0; isa < 2; isa++) {
        if (isa == 0 && !mixrt_elt_has_avx512()) continue;
        mixrt_elt_force_scalar(isa == 1);
        const char *isa_name = isa ? "scalar" : "avx512";
        for (size_t li = 0; li < sizeof(lens) / sizeof(lens[0]); li++) {
            size_t n = lens[li];
            float *x = malloc(n * sizeof(float));
            mixrt_bf16 *y = malloc(n * sizeof(mixrt_bf16));
            for (size_t i = 0; i < n; i++) {
                seed = seed * 6364136223846793005ull + 1442695040888963407ull;
                double u = (double)(seed >> 11) / 9007199254740992.0;
                x[i] = i % 3 == 0 ? (float)(240.0 * u - 120.0) : (float)(24.0 * u - 12.0);
            }
            const float specials[] = {0.0f, -0.0f, INFINITY, NAN, -88.5f, -100.0f, 89.0f, 1e-30f, -1e-30f, 1e-42f};
            for (size_t i = 0; i < sizeof(specials) / sizeof(specials[0]) && i < n; i++) x[n - 1 - i] = specials[i];
            mixrt_elt_silu_to_bf16(x, y, n);
            int bad = 0;
            size_t first = 0;
            for (size_t i = 0; i < n; i++) {
                double xv = x[i], want = xv / (1.0 + exp(-xv));
                float got = mixrt_bf16_to_float(y[i]);
                bool ok;
                if (isnan(xv)) ok = isnan(got);
                else if (isinf(xv)) ok = got == INFINITY;
                else if (fabs(want) < 1e-30) ok = fabs(got) < 1e-30;
                else {
                    uint16_t r = mixrt_bf16_from_float((float)want).bits, g = y[i].bits;
                    int d = (int)r - (int)g;
                    ok = (r & 0x8000) == (g & 0x8000) && d >= -1 && d <= 1;
                }
                if (!ok && bad++ == 0) first = i;
            }
            TU_CHECK(bad == 0, "silu_to_bf16 [%s] n=%zu: %d results off by more than 1 ulp (first x=%g got %g want %g)",
                     isa_name, n, bad, x[first], mixrt_bf16_to_float(y[first]),
                     x[first] / (1.0 + exp(-(double)x[first])));
            g_cases_run++;
            free(x);
            free(y);
        }
    }
    mixrt_elt_force_scalar(false);
}

int main(int argc, char **argv) {
    bool do_bench = true, only_bench = false;
    snprintf(g_argv0, sizeof(g_argv0), "%s", argv[0]);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) g_only = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-bench")) do_bench = false;
        else if (!strcmp(argv[i], "--bench-only")) only_bench = true;
    }
    if (mixrt_context_create(NULL, &kh_ctx) != MIXRT_STATUS_OK) return 1;
    if (!only_bench) {
        if (!mixrt_elt_has_avx512())
            printf("test_eltwise_kernels: no AVX-512 here; testing the %s\n",
                   mixrt_elt_has_avx2() ? "AVX2 spans and the scalar twins" : "scalar twins only");
        binary_cases();
        unary_cases();
        if (g_only < 0) silu_bf16_cases();
        if (g_only < 0) refusal_cases();
        printf("test_eltwise_kernels: %d cases; worst f32 rel error (transcendental, |r| >= 1e-6): vector spans %.3g, "
               "scalar %.3g; worst bf16 distance %d ulp\n",
               g_cases_run, g_worst_rel[0], g_worst_rel[1], g_worst_ulp);
        printf("  worst f32 rel error per op:");
        for (int i = 0; i < g_n_op_worst; i++) printf(" %s %.2g", g_op_worst[i].op, g_op_worst[i].rel);
        printf("\n");
    }
    if ((do_bench || only_bench) && g_only < 0) bench();
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_eltwise_kernels");
}
