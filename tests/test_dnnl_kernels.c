/* test_dnnl_kernels.c - the oneDNN kernel candidates (dnnl_matmul, dnnl_gemm, dnnl_conv) against
 * the reference kernels on seeded random data, f32 and bf16, by normalized error (rel-L2 <= 1e-5
 * for f32, <= 1e-2 for bf16), plus a small f32-vs-bf16 GFLOP/s printout. Without oneDNN it checks
 * that the candidate table is empty. Usage: test_dnnl_kernels [--only CASE] [--no-bench | --bench-only]. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/cpu/kernels.h"
#include "kernel_harness.h"
#include "testutil.h"

#ifndef MIXRT_HAVE_DNNL
int main(void) {
    mixrt_context_create(NULL, &kh_ctx);
    TU_CHECK(mixrt_dnnl_kernels[0].name == NULL, "without oneDNN the dnnl kernel table must be empty");
    printf("test_dnnl_kernels: built without oneDNN; the candidate table is empty\n");
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_dnnl_kernels");
}
#else
#include "backend/cpu/dnnl_impl.h"

#define MAXR 6

struct tattr {
    const char *name;
    enum mixrt_attr_type type;
    int64_t i;
    float f;
    const char *s;
    int64_t ints[8];
    size_t n;
};

struct tcase {
    const char *op;
    int opset;
    mixrt_dtype dt, bias_dt; /* bias_dt: dtype of input 2 (0: dt) */
    int n_in;
    int rank[3];
    int64_t dims[3][MAXR];
    struct tattr attrs[8];
    int n_attrs;
    bool const_w;     /* input 1 is a constant initializer (prepare reorders it) */
    bool graph_known; /* the graph carries input shapes (prepare may build) */
    mixrt_status expect; /* OK, or the status both kernels must fail with */
};

static int g_case, g_only = -1, g_cases_run;
static double g_worst[2]; /* worst rel-L2 seen: f32, bf16 */
static char g_argv0[256];

static struct tcase tc(const char *op, int opset, mixrt_dtype dt) {
    struct tcase c;
    memset(&c, 0, sizeof(c));
    c.op = op, c.opset = opset, c.dt = dt;
    c.graph_known = true;
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

static const char *describe(const struct tcase *c, char *buf, size_t size) {
    size_t o = (size_t)snprintf(buf, size, "%s opset %d %s", c->op, c->opset, mixrt_dtype_name(c->dt));
    for (int i = 0; i < c->n_in && o < size; i++) {
        char d[128];
        o += (size_t)snprintf(buf + o, size - o, " x%d=%s", i, mixrt_dims_str(d, sizeof(d), c->rank[i], c->dims[i]));
        if (i == 2 && c->bias_dt && o < size) o += (size_t)snprintf(buf + o, size - o, "(%s)", mixrt_dtype_name(c->bias_dt));
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
    if (c->const_w && o < size) snprintf(buf + o, size - o, " const-W");
    return buf;
}

/* ConvTranspose has two candidates; the deconvolution cases run under each in turn. */
static const char *g_deconv_kernel = "dnnl_deconv";

static const struct mixrt_cpu_kernel *kernel_for(const char *op) {
    const char *name = !strcmp(op, "MatMul")          ? "dnnl_matmul"
                       : !strcmp(op, "Gemm")          ? "dnnl_gemm"
                       : !strcmp(op, "ConvTranspose") ? g_deconv_kernel
                                                      : "dnnl_conv";
    return mixrt_cpu_kernel_find(name, "", op);
}

/* ||y - r|| / ||r||, the denominator floored at 0.1 per element: inputs are uniform in (-1, 1),
 * so outputs are O(1) unless a sum cancels, and a few cancelled outputs (a 1x1 Gemm of K=7)
 * would otherwise measure f32 rounding relative to ~0. */
static double rel_l2(const struct mixrt_tensor *y, const struct mixrt_tensor *r) {
    double num = 0, den = 0;
    size_t n = mixrt_tensor_numel(r);
    for (size_t i = 0; i < n; i++) {
        double a = mixrt_load_f64(y->data, y->dtype, i), b = mixrt_load_f64(r->data, r->dtype, i);
        num += (a - b) * (a - b);
        den += b * b;
    }
    double floor2 = 0.01 * (double)n;
    return sqrt(num / (den > floor2 ? den : floor2 > 0 ? floor2 : 1));
}

/* Sets the harness graph's value i (input i, or the output when i < 0) to dtype/shape. */
static void type_value(int vi, mixrt_dtype dt, int rank, const int64_t *dims) {
    struct mixrt_value *v = &kh_G->values[vi];
    v->dtype = dt;
    v->rank = rank;
    for (int j = 0; j < rank; j++) v->dims[j].value = dims[j];
}

/* Runs the reference and the dnnl kernel on the same random inputs and compares. */
static void run_case(const struct tcase *c) {
    int id = g_case++;
    if (g_only >= 0 && id != g_only) return;
    g_cases_run++;
    char desc[768];
    describe(c, desc, sizeof(desc));
    const struct mixrt_cpu_kernel *kern = kernel_for(c->op);
    TU_CHECK(kern != NULL, "no dnnl kernel for %s", c->op);
    if (!kern) return;
    /* Inputs in their dtypes; the reference sees the same values (in f32 when the bias dtype
     * differs, since the reference insists on one dtype). */
    bool ref_f32 = c->bias_dt && c->bias_dt != c->dt;
    struct mixrt_tensor in[3], rin[3];
    memset(in, 0, sizeof(in));
    memset(rin, 0, sizeof(rin));
    tu_seed(0x5eed0000u + (uint64_t)id);
    for (int i = 0; i < c->n_in; i++) {
        mixrt_dtype dt = i == 2 && c->bias_dt ? c->bias_dt : c->dt;
        in[i] = kh_tensor(dt, c->rank[i], c->dims[i], NULL);
        rin[i] = kh_tensor(ref_f32 ? MIXRT_DTYPE_F32 : dt, c->rank[i], c->dims[i], NULL);
        size_t n = mixrt_tensor_numel(&in[i]);
        for (size_t j = 0; j < n; j++) {
            double v = tu_uniform(-1.0, 1.0);
            if (fabs(v) < 1e-3) v = 0.5; /* never zeros */
            mixrt_store_f64(in[i].data, dt, j, v);
            mixrt_store_f64(rin[i].data, rin[i].dtype, j, mixrt_load_f64(in[i].data, dt, j));
        }
    }
    kh_begin(c->op, c->opset, c->n_in, 1);
    for (int i = 0; i < c->n_attrs; i++) {
        const struct tattr *a = &c->attrs[i];
        if (a->type == MIXRT_ATTR_INT) kh_attr_int(a->name, a->i);
        if (a->type == MIXRT_ATTR_FLOAT) kh_attr_float(a->name, a->f);
        if (a->type == MIXRT_ATTR_STRING) kh_attr_str(a->name, a->s);
        if (a->type == MIXRT_ATTR_INTS) kh_attr_ints(a->name, (int64_t *)a->ints, a->n);
    }
    for (int i = 0; i < c->n_in; i++) {
        if (c->graph_known) type_value(kh_N->inputs[i], in[i].dtype, in[i].rank, in[i].dims);
        else kh_G->values[kh_N->inputs[i]].dtype = in[i].dtype;
    }
    kh_G->values[kh_N->outputs[0]].dtype = c->dt;
    struct mixrt_value *wv = &kh_G->values[kh_N->inputs[1]];
    if (c->const_w) {
        wv->init = &in[1];
        wv->flags |= MIXRT_VALUE_INITIALIZER;
    }
    char why[256] = "";
    bool sup = kern->supports(kh_G, kh_N, why, sizeof(why));
    bool gemm_lowp = !strcmp(kern->name, "dnnl_deconv_gemm") && c->dt != MIXRT_DTYPE_F32;
    if ((c->dt == MIXRT_DTYPE_BF16 && !mixrt_dnnl_bf16_native()) || gemm_lowp) {
        /* No native bf16 here, or the gemm deconvolution (f32 only): the kernel must refuse, and
         * there is nothing to compare. */
        TU_CHECK(!sup && why[0], "case %d %s: %s but supports() accepted", id, desc,
                 gemm_lowp ? "dnnl_deconv_gemm is f32 only" : "bf16 is not native");
        wv->init = NULL;
        kh_end();
        for (int i = 0; i < c->n_in; i++) {
            mixrt_tensor_release(kh_ctx, &in[i]);
            mixrt_tensor_release(kh_ctx, &rin[i]);
        }
        return;
    }
    TU_CHECK(sup, "case %d %s: supports() refused: %s; rerun: %s --only %d", id, desc, why, g_argv0, id);

    for (int i = 0; i < c->n_in; i++) kh_in[i] = &rin[i];
    mixrt_status rst = kh_run();
    struct mixrt_tensor ref;
    memset(&ref, 0, sizeof(ref));
    if (rst == MIXRT_STATUS_OK) mixrt_tensor_copy(kh_ctx, &ref, &kh_out[0]);
    mixrt_tensor_release(kh_ctx, &kh_out[0]);

    for (int i = 0; i < c->n_in; i++) kh_in[i] = &in[i];
    void *state = NULL;
    mixrt_status pst = kern->prepare ? kern->prepare(kh_ctx, kh_G, kh_N, &state) : MIXRT_STATUS_OK;
    TU_CHECK(pst == MIXRT_STATUS_OK, "case %d %s: prepare failed: %s; rerun: %s --only %d", id, desc,
             mixrt_context_last_error(kh_ctx), g_argv0, id);
    double tol = c->dt == MIXRT_DTYPE_BF16 ? 1e-2 : 1e-5;
    /* Twice: the second run reuses the cached primitive (and constant weights). */
    for (int rep = 0; rep < 2 && pst == MIXRT_STATUS_OK; rep++) {
        mixrt_status st = kh_run_kernel(kern->run, state);
        if (c->expect != MIXRT_STATUS_OK) {
            TU_CHECK(st == c->expect && rst == c->expect,
                     "case %d %s: expected status %s from both, got ref %s, dnnl %s (%s); rerun: %s --only %d", id, desc,
                     mixrt_status_string(c->expect), mixrt_status_string(rst), mixrt_status_string(st),
                     mixrt_context_last_error(kh_ctx), g_argv0, id);
        } else {
            TU_CHECK(rst == MIXRT_STATUS_OK && st == MIXRT_STATUS_OK,
                     "case %d %s: ref %s, dnnl %s (%s); rerun: %s --only %d", id, desc, mixrt_status_string(rst),
                     mixrt_status_string(st), mixrt_context_last_error(kh_ctx), g_argv0, id);
            if (rst == MIXRT_STATUS_OK && st == MIXRT_STATUS_OK) {
                bool same_shape = kh_out[0].rank == ref.rank &&
                                  !memcmp(kh_out[0].dims, ref.dims, sizeof(int64_t) * (size_t)ref.rank) &&
                                  kh_out[0].dtype == c->dt;
                char d1[128], d2[128];
                TU_CHECK(same_shape, "case %d %s: output %s %s, reference %s; rerun: %s --only %d", id, desc,
                         mixrt_dtype_name(kh_out[0].dtype), mixrt_dims_str(d1, sizeof(d1), kh_out[0].rank, kh_out[0].dims),
                         mixrt_dims_str(d2, sizeof(d2), ref.rank, ref.dims), g_argv0, id);
                if (same_shape) {
                    double e = rel_l2(&kh_out[0], &ref);
                    double *worst = &g_worst[c->dt == MIXRT_DTYPE_BF16];
                    if (e > *worst) *worst = e;
                    TU_CHECK(e <= tol, "case %d %s (run %d, %s): rel-L2 %.3g > %.0e; rerun: %s --only %d", id, desc,
                             rep + 1, mixrt_dnnl_state_impl(state), e, tol, g_argv0, id);
                }
            }
        }
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
    }
    if (kern->release) kern->release(kh_ctx, state);
    wv->init = NULL; /* the case owns in[1], not the graph */
    kh_end();
    mixrt_tensor_release(kh_ctx, &ref);
    for (int i = 0; i < c->n_in; i++) {
        mixrt_tensor_release(kh_ctx, &in[i]);
        mixrt_tensor_release(kh_ctx, &rin[i]);
    }
}

static const mixrt_dtype dtypes[2] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16};

static void matmul_cases(void) {
    static const int64_t mkn[][3] = {{1, 1, 1},   {7, 16, 17},  {16, 16, 16}, {17, 33, 65}, {33, 64, 7},
                                     {64, 65, 33}, {1, 64, 1},  {65, 1, 17},  {3, 128, 1}, {1, 17, 64}};
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < sizeof(mkn) / sizeof(mkn[0]); i++) {
            struct tcase c = tc("MatMul", 13, dtypes[t]);
            tin(&c, 0, 2, (int64_t[]){mkn[i][0], mkn[i][1]});
            tin(&c, 1, 2, (int64_t[]){mkn[i][1], mkn[i][2]});
            run_case(&c);
        }
        /* Batched, broadcast batch dims, 1-D operands, empty and K=0. */
        static const struct {
            int ra, rb;
            int64_t a[MAXR], b[MAXR];
        } shapes[] = {
            {4, 2, {2, 3, 17, 33}, {33, 7}},   {4, 4, {4, 1, 5, 16}, {1, 3, 16, 17}}, {3, 3, {3, 7, 9}, {3, 9, 5}},
            {3, 3, {1, 7, 9}, {3, 9, 5}},      {2, 3, {7, 9}, {3, 9, 5}},             {5, 3, {2, 1, 3, 4, 8}, {3, 8, 6}},
            {1, 2, {33}, {33, 17}},            {2, 1, {5, 33}, {33}},                 {1, 1, {33}, {33}},
            {3, 1, {2, 3, 16}, {16}},          {1, 3, {16}, {2, 16, 7}},              {2, 2, {0, 5}, {5, 3}},
            {2, 2, {3, 0}, {0, 4}},            {3, 3, {0, 2, 3}, {1, 3, 4}},
        };
        for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
            struct tcase c = tc("MatMul", 13, dtypes[t]);
            tin(&c, 0, shapes[i].ra, shapes[i].a);
            tin(&c, 1, shapes[i].rb, shapes[i].b);
            run_case(&c);
        }
        /* Errors both kernels report: K mismatch, batch dims that do not broadcast. */
        struct tcase e = tc("MatMul", 13, dtypes[t]);
        tin(&e, 0, 2, (int64_t[]){3, 4});
        tin(&e, 1, 2, (int64_t[]){5, 6});
        e.expect = MIXRT_STATUS_INVALID_MODEL;
        run_case(&e);
        e = tc("MatMul", 13, dtypes[t]);
        tin(&e, 0, 3, (int64_t[]){2, 3, 4});
        tin(&e, 1, 3, (int64_t[]){3, 4, 5});
        e.expect = MIXRT_STATUS_INVALID_MODEL;
        run_case(&e);
    }
}

static void gemm_cases(void) {
    static const int64_t mkn[][3] = {{17, 33, 65}, {16, 16, 16}, {1, 7, 1}, {64, 1, 33}};
    for (int t = 0; t < 2; t++)
        for (size_t s = 0; s < sizeof(mkn) / sizeof(mkn[0]); s++)
            for (int ta = 0; ta < 2; ta++)
                for (int tb = 0; tb < 2; tb++)
                    for (int cf = 0; cf < 6; cf++) {
                        int64_t M = mkn[s][0], K = mkn[s][1], N = mkn[s][2];
                        /* C forms: none, scalar, [N], [M,1], [M,N], [1,1]. */
                        struct tcase c = tc("Gemm", cf == 0 ? 13 : (cf == 5 ? 6 : 13), dtypes[t]);
                        tin(&c, 0, 2, ta ? (int64_t[]){K, M} : (int64_t[]){M, K});
                        tin(&c, 1, 2, tb ? (int64_t[]){N, K} : (int64_t[]){K, N});
                        if (cf == 1) tin(&c, 2, 0, NULL);
                        if (cf == 2) tin(&c, 2, 1, (int64_t[]){N});
                        if (cf == 3) tin(&c, 2, 2, (int64_t[]){M, 1});
                        if (cf == 4) tin(&c, 2, 2, (int64_t[]){M, N});
                        if (cf == 5) {
                            tin(&c, 2, 2, (int64_t[]){1, 1});
                            tint(&c, "broadcast", 1);
                        }
                        if (ta) tint(&c, "transA", 1);
                        if (tb) tint(&c, "transB", 1);
                        if ((ta + tb + cf) % 2) {
                            tfloat(&c, "alpha", 0.5f);
                            tfloat(&c, "beta", -2.0f);
                        }
                        run_case(&c);
                    }
    /* bf16 A, B with an f32 C (the reference compares on the same values in f32). */
    struct tcase c = tc("Gemm", 13, MIXRT_DTYPE_BF16);
    tin(&c, 0, 2, (int64_t[]){33, 17});
    tin(&c, 1, 2, (int64_t[]){17, 65});
    tin(&c, 2, 1, (int64_t[]){65});
    c.bias_dt = MIXRT_DTYPE_F32;
    tfloat(&c, "beta", 0.25f);
    run_case(&c);
    /* K = 0: alpha * 0 + beta * C; bad K is an error for both. */
    for (int t = 0; t < 2; t++) {
        struct tcase z = tc("Gemm", 13, dtypes[t]);
        tin(&z, 0, 2, (int64_t[]){3, 0});
        tin(&z, 1, 2, (int64_t[]){0, 4});
        tin(&z, 2, 1, (int64_t[]){4});
        tfloat(&z, "beta", 3.0f);
        run_case(&z);
        struct tcase e = tc("Gemm", 13, dtypes[t]);
        tin(&e, 0, 2, (int64_t[]){3, 4});
        tin(&e, 1, 2, (int64_t[]){5, 6});
        e.expect = MIXRT_STATUS_INVALID_MODEL;
        run_case(&e);
    }
}

/* One Conv case: X, W dims, optional bias, and attributes given as -1-terminated lists. */
static struct tcase conv_case(mixrt_dtype dt, int rank, const int64_t *x, const int64_t *w, bool bias) {
    struct tcase c = tc("Conv", 11, dt);
    tin(&c, 0, rank, x);
    tin(&c, 1, rank, w);
    if (bias) tin(&c, 2, 1, (int64_t[]){w[0]});
    return c;
}

/* Conv with no input channels: every output is its channel's bias, or zero without one (the
 * kernel writes that itself: its output buffer is not zeroed for it). After the other cases, so
 * their numbers and random data stay as they were. */
static void empty_channel_cases(void) {
    for (int t = 0; t < 2; t++)
        for (int bias = 0; bias < 2; bias++) {
            struct tcase c = conv_case(dtypes[t], 4, (int64_t[]){2, 0, 5, 6}, (int64_t[]){4, 0, 3, 3}, bias);
            tints(&c, "pads", 4, (int64_t[]){1, 1, 1, 1});
            run_case(&c);
        }
}

/* One ConvTranspose case: X [N, C, ..], W [C, M/group, k..], bias [M] when m > 0. */
static struct tcase deconv_case(mixrt_dtype dt, int rank, const int64_t *x, const int64_t *w, int64_t m) {
    struct tcase c = tc("ConvTranspose", 11, dt);
    tin(&c, 0, rank, x);
    tin(&c, 1, rank, w);
    if (m > 0) tin(&c, 2, 1, (int64_t[]){m});
    return c;
}

/* ConvTranspose on both candidates (oneDNN's first implementation and its GEMM-based one, which
 * must refuse bf16), f32 and bf16, against the reference: strides, pads, output_padding taken from the end pad,
 * dilations, groups, 1-D and 3-D, odd channel counts, constant weights reordered in prepare. */
static void deconv_cases(void) {
    static const char *const kernels[] = {"dnnl_deconv", "dnnl_deconv_gemm"};
    for (int kk = 0; kk < 2; kk++) {
        g_deconv_kernel = kernels[kk];
        for (int t = 0; t < 2; t++) {
            mixrt_dtype dt = dtypes[t];
            struct tcase c = deconv_case(dt, 4, (int64_t[]){1, 16, 9, 11}, (int64_t[]){16, 8, 4, 4}, 8);
            tints(&c, "strides", 2, (int64_t[]){2, 2});
            tints(&c, "pads", 4, (int64_t[]){1, 1, 1, 1});
            c.const_w = true;
            run_case(&c); /* the DCGAN / U-Net upsampler: k4 s2 p1 */
            c = deconv_case(dt, 4, (int64_t[]){2, 17, 6, 5}, (int64_t[]){17, 33, 3, 3}, 33);
            tints(&c, "strides", 2, (int64_t[]){2, 2});
            tints(&c, "pads", 4, (int64_t[]){1, 1, 1, 1});
            tints(&c, "output_padding", 2, (int64_t[]){1, 1});
            run_case(&c); /* torch's k3 s2 p1 output_padding 1: exactly 2x */
            c = deconv_case(dt, 4, (int64_t[]){1, 8, 7, 9}, (int64_t[]){8, 3, 4, 3}, 6);
            tint(&c, "group", 2);
            tints(&c, "strides", 2, (int64_t[]){2, 3});
            tints(&c, "dilations", 2, (int64_t[]){1, 2});
            tints(&c, "pads", 4, (int64_t[]){1, 0, 2, 1});
            tints(&c, "output_padding", 2, (int64_t[]){1, 0});
            run_case(&c);
            c = deconv_case(dt, 4, (int64_t[]){1, 32, 8, 8}, (int64_t[]){32, 16, 2, 2}, 0);
            tints(&c, "strides", 2, (int64_t[]){2, 2});
            tstr(&c, "auto_pad", "VALID");
            c.const_w = true;
            run_case(&c); /* k2 s2, no bias */
            c = deconv_case(dt, 3, (int64_t[]){2, 5, 13}, (int64_t[]){5, 7, 5}, 7);
            tints(&c, "strides", 1, (int64_t[]){3});
            tints(&c, "pads", 2, (int64_t[]){2, 1});
            run_case(&c); /* 1-D */
            c = deconv_case(dt, 5, (int64_t[]){1, 4, 3, 4, 5}, (int64_t[]){4, 6, 3, 3, 3}, 6);
            tints(&c, "strides", 3, (int64_t[]){2, 2, 1});
            tints(&c, "pads", 6, (int64_t[]){1, 1, 1, 1, 1, 1});
            run_case(&c); /* 3-D */
            c = deconv_case(dt, 4, (int64_t[]){1, 3, 5, 5}, (int64_t[]){4, 2, 3, 3}, 2);
            c.expect = MIXRT_STATUS_INVALID_MODEL; /* W's first dim is not C */
            run_case(&c);
        }
    }
    g_deconv_kernel = "dnnl_deconv";
    /* The GEMM candidate really is oneDNN's GEMM-based implementation where it has one. */
    const struct mixrt_cpu_kernel *k = mixrt_cpu_kernel_find("dnnl_deconv_gemm", "", "ConvTranspose");
    TU_CHECK(k != NULL, "dnnl_deconv_gemm is listed");
    if (k) {
        struct tcase c = deconv_case(MIXRT_DTYPE_F32, 4, (int64_t[]){1, 16, 9, 11}, (int64_t[]){16, 8, 4, 4}, 8);
        kh_begin("ConvTranspose", 11, 3, 1);
        kh_attr_ints("strides", (int64_t[]){2, 2}, 2);
        kh_attr_ints("pads", (int64_t[]){1, 1, 1, 1}, 4);
        for (int i = 0; i < 3; i++) type_value(kh_N->inputs[i], MIXRT_DTYPE_F32, c.rank[i], c.dims[i]);
        struct mixrt_tensor w = kh_tensor(MIXRT_DTYPE_F32, 4, c.dims[1], NULL);
        struct mixrt_value *wv = &kh_G->values[kh_N->inputs[1]];
        wv->init = &w;
        wv->flags |= MIXRT_VALUE_INITIALIZER;
        void *state = NULL;
        TU_CHECK(k->prepare(kh_ctx, kh_G, kh_N, &state) == MIXRT_STATUS_OK, "dnnl_deconv_gemm prepare: %s",
                 mixrt_context_last_error(kh_ctx));
        const char *impl = state ? mixrt_dnnl_state_impl(state) : "";
        TU_CHECK(strstr(impl, "gemm") != NULL, "dnnl_deconv_gemm runs oneDNN's '%s', expected a GEMM-based one", impl);
        k->release(kh_ctx, state);
        wv->init = NULL;
        kh_end();
        mixrt_tensor_release(kh_ctx, &w);
    }
    /* What oneDNN cannot express goes to the reference: output_padding beyond the end pad and
     * output_shape (auto_pad SAME_* too, by the same supports() test). */
    const struct mixrt_cpu_kernel *d = kernel_for("ConvTranspose");
    static const struct {
        const char *attr, *what;
    } refused[] = {{"output_padding", "output_padding without an end pad"}, {"output_shape", "output_shape"}};
    for (int r = 0; r < 2; r++) {
        char why[256] = "";
        kh_begin("ConvTranspose", 11, 2, 1);
        if (r == 0) kh_attr_ints("strides", (int64_t[]){2, 2}, 2);
        kh_attr_ints(refused[r].attr, r == 0 ? (int64_t[]){1, 1} : (int64_t[]){10, 10}, 2);
        type_value(kh_N->inputs[0], MIXRT_DTYPE_F32, 4, (int64_t[]){1, 4, 5, 5});
        type_value(kh_N->inputs[1], MIXRT_DTYPE_F32, 4, (int64_t[]){4, 2, 3, 3});
        kh_G->values[kh_N->outputs[0]].dtype = MIXRT_DTYPE_F32;
        TU_CHECK(!d->supports(kh_G, kh_N, why, sizeof(why)) && strstr(why, refused[r].attr),
                 "%s must be refused (%s)", refused[r].what, why);
        kh_end();
    }
}

static void conv_cases(void) {
    for (int t = 0; t < 2; t++) {
        mixrt_dtype dt = dtypes[t];
        struct tcase c = conv_case(dt, 4, (int64_t[]){1, 3, 9, 9}, (int64_t[]){4, 3, 3, 3}, true);
        tints(&c, "pads", 4, (int64_t[]){1, 1, 1, 1});
        run_case(&c);
        c = conv_case(dt, 4, (int64_t[]){2, 8, 10, 10}, (int64_t[]){8, 4, 3, 3}, true); /* groups */
        tint(&c, "group", 2);
        run_case(&c);
        c = conv_case(dt, 4, (int64_t[]){1, 16, 17, 17}, (int64_t[]){16, 1, 3, 3}, true); /* depthwise */
        tint(&c, "group", 16);
        tints(&c, "pads", 4, (int64_t[]){1, 1, 1, 1});
        run_case(&c);
        c = conv_case(dt, 4, (int64_t[]){1, 32, 16, 16}, (int64_t[]){64, 1, 3, 3}, true); /* depthwise x2 */
        tint(&c, "group", 32);
        tints(&c, "strides", 2, (int64_t[]){2, 2});
        run_case(&c);
        c = conv_case(dt, 4, (int64_t[]){1, 7, 33, 17}, (int64_t[]){17, 7, 3, 5}, false); /* s, d, asym pads */
        tints(&c, "strides", 2, (int64_t[]){2, 1});
        tints(&c, "dilations", 2, (int64_t[]){2, 3});
        tints(&c, "pads", 4, (int64_t[]){0, 1, 2, 1});
        run_case(&c);
        const char *aps[] = {"SAME_UPPER", "SAME_LOWER", "VALID"};
        for (int a = 0; a < 3; a++) {
            c = conv_case(dt, 4, (int64_t[]){1, 5, 16, 15}, (int64_t[]){7, 5, 4, 3}, a != 1);
            tstr(&c, "auto_pad", aps[a]);
            tints(&c, "strides", 2, (int64_t[]){2, 2});
            run_case(&c);
        }
        c = conv_case(dt, 4, (int64_t[]){1, 16, 8, 8}, (int64_t[]){33, 16, 1, 1}, true); /* 1x1, odd M */
        tints(&c, "kernel_shape", 2, (int64_t[]){1, 1});
        run_case(&c);
        c = conv_case(dt, 3, (int64_t[]){2, 5, 33}, (int64_t[]){7, 5, 3}, true); /* 1-D */
        tints(&c, "strides", 1, (int64_t[]){2});
        run_case(&c);
        c = conv_case(dt, 5, (int64_t[]){1, 4, 7, 8, 9}, (int64_t[]){6, 4, 3, 3, 3}, true); /* 3-D */
        tints(&c, "pads", 6, (int64_t[]){1, 1, 1, 1, 1, 1});
        run_case(&c);
        /* ResNet-like, with constant weights (prepare reorders them once). */
        c = conv_case(dt, 4, (int64_t[]){1, 64, 56, 56}, (int64_t[]){64, 64, 3, 3}, true);
        tints(&c, "pads", 4, (int64_t[]){1, 1, 1, 1});
        c.const_w = true;
        run_case(&c);
        c = conv_case(dt, 4, (int64_t[]){1, 3, 224, 224}, (int64_t[]){64, 3, 7, 7}, true);
        tints(&c, "pads", 4, (int64_t[]){3, 3, 3, 3});
        tints(&c, "strides", 2, (int64_t[]){2, 2});
        c.const_w = true;
        run_case(&c);
        /* Constant weights with X's shape unknown to the graph: the first run builds. */
        c = conv_case(dt, 4, (int64_t[]){2, 16, 12, 12}, (int64_t[]){32, 16, 3, 3}, true);
        c.const_w = true;
        c.graph_known = false;
        run_case(&c);
        /* Empty batch; errors both report (C not matching W, kernel larger than input). */
        c = conv_case(dt, 4, (int64_t[]){0, 3, 5, 5}, (int64_t[]){4, 3, 3, 3}, true);
        run_case(&c);
        c = conv_case(dt, 4, (int64_t[]){1, 3, 5, 5}, (int64_t[]){4, 2, 3, 3}, true);
        c.expect = MIXRT_STATUS_INVALID_MODEL;
        run_case(&c);
        c = conv_case(dt, 4, (int64_t[]){1, 3, 2, 2}, (int64_t[]){4, 3, 3, 3}, false);
        c.expect = MIXRT_STATUS_INVALID_MODEL;
        run_case(&c);
    }
    /* bf16 conv with an f32 bias. */
    struct tcase c = conv_case(MIXRT_DTYPE_BF16, 4, (int64_t[]){1, 16, 14, 14}, (int64_t[]){32, 16, 3, 3}, true);
    c.bias_dt = MIXRT_DTYPE_F32;
    tints(&c, "pads", 4, (int64_t[]){1, 1, 1, 1});
    run_case(&c);
}

/* Shapes change between runs of one state: the primitive is rebuilt and stays right. */
static void rebuild_check(void) {
    const struct mixrt_cpu_kernel *k = kernel_for("Conv");
    if (g_only >= 0 || !k) return;
    kh_begin("Conv", 11, 2, 1);
    kh_G->values[kh_N->inputs[0]].dtype = MIXRT_DTYPE_F32;
    kh_G->values[kh_N->inputs[1]].dtype = MIXRT_DTYPE_F32;
    kh_G->values[kh_N->outputs[0]].dtype = MIXRT_DTYPE_F32;
    int64_t wd[4] = {8, 4, 3, 3}, xd1[4] = {1, 4, 10, 10}, xd2[4] = {3, 4, 7, 9};
    struct mixrt_tensor w = kh_tensor(MIXRT_DTYPE_F32, 4, wd, NULL), x1 = kh_tensor(MIXRT_DTYPE_F32, 4, xd1, NULL),
                        x2 = kh_tensor(MIXRT_DTYPE_F32, 4, xd2, NULL);
    tu_seed(77);
    struct mixrt_tensor *ts[3] = {&w, &x1, &x2};
    for (int t = 0; t < 3; t++)
        for (size_t i = 0; i < mixrt_tensor_numel(ts[t]); i++) ((float *)ts[t]->data)[i] = (float)tu_uniform(-1, 1);
    void *state = NULL;
    TU_CHECK(k->prepare(kh_ctx, kh_G, kh_N, &state) == MIXRT_STATUS_OK, "rebuild: prepare failed");
    const struct mixrt_tensor *xs[3] = {&x1, &x2, &x1};
    for (int r = 0; r < 3; r++) {
        kh_in[0] = xs[r], kh_in[1] = &w;
        TU_CHECK(kh_run() == MIXRT_STATUS_OK, "rebuild: ref failed");
        struct mixrt_tensor ref;
        mixrt_tensor_copy(kh_ctx, &ref, &kh_out[0]);
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
        mixrt_status st = kh_run_kernel(k->run, state);
        TU_CHECK(st == MIXRT_STATUS_OK && rel_l2(&kh_out[0], &ref) <= 1e-5, "rebuild: run %d (X shape changed) wrong: %s",
                 r, mixrt_context_last_error(kh_ctx));
        mixrt_tensor_release(kh_ctx, &kh_out[0]);
        mixrt_tensor_release(kh_ctx, &ref);
    }
    k->release(kh_ctx, state);
    kh_end();
    for (int t = 0; t < 3; t++) mixrt_tensor_release(kh_ctx, ts[t]);
}

/* supports() refuses what the kernels do not run, with a reason. */
static void refusal_checks(void) {
    if (g_only >= 0) return;
    const struct mixrt_cpu_kernel *k = kernel_for("MatMul");
    const mixrt_dtype bad[][3] = {{MIXRT_DTYPE_F16, MIXRT_DTYPE_F16, MIXRT_DTYPE_F16},
                                  {MIXRT_DTYPE_F64, MIXRT_DTYPE_F64, MIXRT_DTYPE_F64},
                                  {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F32},
                                  {MIXRT_DTYPE_BF16, MIXRT_DTYPE_BF16, MIXRT_DTYPE_F32},
                                  {MIXRT_DTYPE_I32, MIXRT_DTYPE_I32, MIXRT_DTYPE_I32},
                                  {MIXRT_DTYPE_UNDEFINED, MIXRT_DTYPE_F32, MIXRT_DTYPE_F32}};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        kh_begin("MatMul", 13, 2, 1);
        kh_G->values[kh_N->inputs[0]].dtype = bad[i][0];
        kh_G->values[kh_N->inputs[1]].dtype = bad[i][1];
        kh_G->values[kh_N->outputs[0]].dtype = bad[i][2];
        char why[256] = "";
        bool s = k->supports(kh_G, kh_N, why, sizeof(why));
        TU_CHECK(!s && why[0], "MatMul %s x %s -> %s: supports() should refuse with a reason", mixrt_dtype_name(bad[i][0]),
                 mixrt_dtype_name(bad[i][1]), mixrt_dtype_name(bad[i][2]));
        kh_end();
    }
    /* Gemm without C before opset 11; Conv of rank 6. */
    kh_begin("Gemm", 9, 2, 1);
    for (int i = 0; i < 2; i++) kh_G->values[kh_N->inputs[i]].dtype = MIXRT_DTYPE_F32;
    kh_G->values[kh_N->outputs[0]].dtype = MIXRT_DTYPE_F32;
    char why[256] = "";
    TU_CHECK(!kernel_for("Gemm")->supports(kh_G, kh_N, why, sizeof(why)) && why[0], "Gemm-9 without C must be refused");
    kh_end();
    kh_begin("Conv", 11, 2, 1);
    int64_t d6[6] = {1, 1, 2, 2, 2, 2};
    for (int i = 0; i < 2; i++) type_value(kh_N->inputs[i], MIXRT_DTYPE_F32, 6, d6);
    kh_G->values[kh_N->outputs[0]].dtype = MIXRT_DTYPE_F32;
    TU_CHECK(!kernel_for("Conv")->supports(kh_G, kh_N, why, sizeof(why)) && why[0], "4-D Conv must be refused");
    kh_end();
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* GFLOP/s of one node through its dnnl kernel (prepared, warmed up), best of a few runs. */
static double bench_node(const char *op, mixrt_dtype dt, int rank0, const int64_t *d0, int rank1, const int64_t *d1,
                         double flops, const char **impl) {
    const struct mixrt_cpu_kernel *k = kernel_for(op);
    struct mixrt_tensor a = kh_tensor(dt, rank0, d0, NULL), b = kh_tensor(dt, rank1, d1, NULL);
    tu_seed(5);
    for (size_t i = 0; i < mixrt_tensor_numel(&a); i++) mixrt_store_f64(a.data, dt, i, tu_uniform(-1, 1));
    for (size_t i = 0; i < mixrt_tensor_numel(&b); i++) mixrt_store_f64(b.data, dt, i, tu_uniform(-1, 1));
    kh_begin(op, 13, 2, 1);
    static int64_t pads[4] = {1, 1, 1, 1};
    if (!strcmp(op, "Conv")) kh_attr_ints("pads", pads, 4);
    type_value(kh_N->inputs[0], dt, rank0, d0);
    type_value(kh_N->inputs[1], dt, rank1, d1);
    kh_G->values[kh_N->outputs[0]].dtype = dt;
    kh_G->values[kh_N->inputs[1]].init = &b; /* constant weights, as in a model */
    void *state = NULL;
    double best = 0;
    if (k->prepare(kh_ctx, kh_G, kh_N, &state) == MIXRT_STATUS_OK) {
        kh_in[0] = &a, kh_in[1] = &b;
        for (int r = 0; r < 12; r++) {
            double t0 = now_s();
            mixrt_status st = kh_run_kernel(k->run, state);
            double t = now_s() - t0;
            mixrt_tensor_release(kh_ctx, &kh_out[0]);
            if (st != MIXRT_STATUS_OK) {
                printf("bench: %s %s failed: %s\n", op, mixrt_dtype_name(dt), mixrt_context_last_error(kh_ctx));
                break;
            }
            if (r >= 2 && flops / t * 1e-9 > best) best = flops / t * 1e-9;
        }
        *impl = mixrt_dnnl_state_impl(state);
        static char impl_copy[2][128];
        static int flip;
        snprintf(impl_copy[flip], sizeof(impl_copy[0]), "%s", *impl);
        *impl = impl_copy[flip];
        flip ^= 1;
        k->release(kh_ctx, state);
    }
    kh_G->values[kh_N->inputs[1]].init = NULL;
    kh_end();
    mixrt_tensor_release(kh_ctx, &a);
    mixrt_tensor_release(kh_ctx, &b);
    return best;
}

static void bench(void) {
    if (!mixrt_dnnl_bf16_native()) {
        printf("bench: bf16 is not native here; f32 only\n");
    }
    const char *i32 = "", *i16 = "";
    int64_t m[2] = {1024, 1024};
    double f = 2.0 * 1024 * 1024 * 1024;
    double g32 = bench_node("MatMul", MIXRT_DTYPE_F32, 2, m, 2, m, f, &i32);
    double g16 = mixrt_dnnl_bf16_native() ? bench_node("MatMul", MIXRT_DTYPE_BF16, 2, m, 2, m, f, &i16) : 0;
    printf("bench: MatMul 1024x1024x1024: f32 %.1f GFLOP/s (%s), bf16 %.1f GFLOP/s (%s), bf16/f32 %.2fx\n", g32, i32,
           g16, i16, g32 > 0 ? g16 / g32 : 0);
    int64_t x[4] = {1, 64, 56, 56}, w[4] = {64, 64, 3, 3};
    f = 2.0 * 64 * 56 * 56 * 64 * 9;
    g32 = bench_node("Conv", MIXRT_DTYPE_F32, 4, x, 4, w, f, &i32);
    g16 = mixrt_dnnl_bf16_native() ? bench_node("Conv", MIXRT_DTYPE_BF16, 4, x, 4, w, f, &i16) : 0;
    printf("bench: Conv 1x64x56x56 3x3 pad 1 -> 64 (NCHW in/out, reorders included): f32 %.1f GFLOP/s (%s), "
           "bf16 %.1f GFLOP/s (%s), bf16/f32 %.2fx\n",
           g32, i32, g16, i16, g32 > 0 ? g16 / g32 : 0);
}

int main(int argc, char **argv) {
    bool do_bench = true, bench_only = false;
    snprintf(g_argv0, sizeof(g_argv0), "%s", argv[0]);
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--only") && i + 1 < argc) g_only = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--no-bench")) do_bench = false;
        else if (!strcmp(argv[i], "--bench-only")) bench_only = true;
    }
    if (mixrt_context_create(NULL, &kh_ctx) != MIXRT_STATUS_OK) return 1;
    TU_CHECK(mixrt_dnnl_kernels[0].name != NULL, "with oneDNN the table lists kernels");
    printf("test_dnnl_kernels: bf16 native: %s\n", mixrt_dnnl_bf16_native() ? "yes" : "no");
    if (bench_only) {
        bench();
        mixrt_context_destroy(kh_ctx);
        return tu_finish("test_dnnl_kernels");
    }
    matmul_cases();
    gemm_cases();
    conv_cases();
    deconv_cases();
    empty_channel_cases();
    rebuild_check();
    refusal_checks();
    printf("test_dnnl_kernels: %d cases; worst rel-L2 f32 %.3g, bf16 %.3g\n", g_cases_run, g_worst[0], g_worst[1]);
    if (do_bench && g_only < 0) bench();
    mixrt_context_destroy(kh_ctx);
    return tu_finish("test_dnnl_kernels");
}
#endif
