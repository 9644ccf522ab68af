/* ref_nn.c - reference kernels of the nn family: the family table, Gemm, MatMul, Dropout, and
 * the helpers ref_nn_conv.c / ref_nn_pool.c / ref_nn_norm.c share (ref_nn_impl.h).
 * Invariant: floats accumulate in double and round once on output; integer GEMMs are exact
 * (wrapping) int64 arithmetic. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/ref_nn_impl.h"

/* ---- shared helpers ------------------------------------------------------------------------ */

const char *mixrt_nn_in_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i >= 0 && i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

mixrt_status mixrt_nn_bad_input(struct mixrt_kernel_ctx *k, mixrt_status st, int i, const struct mixrt_tensor *t,
                                const char *fmt, ...) {
    char what[512], d[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return mixrt_kernel_error(k, st, "input #%d '%s' is %s, %s", i, mixrt_nn_in_name(k, i),
                              mixrt_tensor_desc(d, sizeof(d), t), what);
}

double *mixrt_nn_alloc(struct mixrt_kernel_ctx *k, size_t n) {
    if (n > SIZE_MAX / sizeof(double)) {
        mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "scratch of %zu doubles overflows", n);
        return NULL;
    }
    return mixrt_calloc(k->ctx, n ? n : 1, sizeof(double));
}

void mixrt_nn_free(struct mixrt_kernel_ctx *k, double *p, size_t n) {
    if (p) mixrt_free(k->ctx, p, (n ? n : 1) * sizeof(double));
}

mixrt_status mixrt_nn_load(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *t, double **out) {
    return mixrt_tensor_to_f64(k->ctx, t, out);
}

mixrt_status mixrt_nn_store(struct mixrt_kernel_ctx *k, struct mixrt_tensor *out, const double *v) {
    size_t n = mixrt_tensor_numel(out);
    if (n == 0) return MIXRT_STATUS_OK;
    if (mixrt_convert(out->data, out->dtype, v, MIXRT_DTYPE_F64, n) != MIXRT_STATUS_OK)
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot write an output of dtype %s",
                                  mixrt_dtype_name(out->dtype));
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_nn_float_input(struct mixrt_kernel_ctx *k, int i, int same_as, const struct mixrt_tensor **out) {
    mixrt_status status = mixrt_kernel_check_float(k, i);
    if (status == MIXRT_STATUS_OK && same_as >= 0) status = mixrt_kernel_check_same_dtype(k, same_as, i);
    if (status == MIXRT_STATUS_OK) *out = k->in[i];
    return status;
}

/* Window attributes are capped at 2^30 and spatial input dims at 2^31 (a zero-size tensor can
 * have any dims), so that stride * dim + dilated kernel + pads stays far inside int64. */
#define NN_ATTR_MAX ((int64_t)1 << 30)
#define NN_SPATIAL_MAX ((int64_t)1 << 31)

mixrt_status mixrt_nn_ints_attr(struct mixrt_kernel_ctx *k, const char *name, int n, int64_t dflt, int64_t min,
                                int64_t *out, bool *present) {
    size_t cnt = 0;
    const int64_t *v = mixrt_node_attr_ints(k->node, name, &cnt);
    if (present) *present = v != NULL;
    if (!v) {
        for (int i = 0; i < n; i++) out[i] = dflt;
        return MIXRT_STATUS_OK;
    }
    if (cnt != (size_t)n)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute '%s' has %zu entries, expected %d", name,
                                  cnt, n);
    for (int i = 0; i < n; i++) {
        if (v[i] < min || v[i] > NN_ATTR_MAX)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute '%s'[%d] is %lld, expected %lld..%lld",
                                      name, i, (long long)v[i], (long long)min, (long long)NN_ATTR_MAX);
        out[i] = v[i];
    }
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_nn_window_attrs(struct mixrt_kernel_ctx *k, struct mixrt_nn_window *w, bool allow_dilations) {
    mixrt_status status;
    const char *ap = mixrt_node_attr_string(k->node, "auto_pad", "NOTSET");
    if (!strcmp(ap, "NOTSET") || !ap[0])
        w->autopad = MIXRT_NN_NOTSET;
    else if (!strcmp(ap, "SAME_UPPER"))
        w->autopad = MIXRT_NN_SAME_UPPER;
    else if (!strcmp(ap, "SAME_LOWER"))
        w->autopad = MIXRT_NN_SAME_LOWER;
    else if (!strcmp(ap, "VALID"))
        w->autopad = MIXRT_NN_VALID;
    else
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "attribute 'auto_pad' is '%s', expected NOTSET, SAME_UPPER, SAME_LOWER or VALID", ap);
    for (int i = 0; i < w->nd; i++)
        if (w->in[i] > NN_SPATIAL_MAX)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "spatial input dim %d is %lld, at most %lld supported", i, (long long)w->in[i],
                                      (long long)NN_SPATIAL_MAX);
    for (int i = 0; i < w->nd; i++)
        if (w->k[i] < 1 || w->k[i] > NN_ATTR_MAX)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "kernel dim %d is %lld, expected 1..%lld", i,
                                      (long long)w->k[i], (long long)NN_ATTR_MAX);
    status = mixrt_nn_ints_attr(k, "strides", w->nd, 1, 1, w->s, NULL);
    if (status != MIXRT_STATUS_OK) return status;
    if (allow_dilations)
        status = mixrt_nn_ints_attr(k, "dilations", w->nd, 1, 1, w->d, NULL);
    else
        for (int i = 0; i < w->nd; i++) w->d[i] = 1;
    if (status != MIXRT_STATUS_OK) return status;
    int64_t pads[2 * MIXRT_MAX_RANK];
    status = mixrt_nn_ints_attr(k, "pads", 2 * w->nd, 0, 0, pads, NULL);
    if (status != MIXRT_STATUS_OK) return status;
    for (int i = 0; i < w->nd; i++) {
        w->pb[i] = w->autopad == MIXRT_NN_NOTSET ? pads[i] : 0;
        w->pe[i] = w->autopad == MIXRT_NN_NOTSET ? pads[w->nd + i] : 0;
    }
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_nn_window_forward(struct mixrt_kernel_ctx *k, struct mixrt_nn_window *w, bool ceil_mode) {
    for (int i = 0; i < w->nd; i++) {
        int64_t in = w->in[i], s = w->s[i], dk = (w->k[i] - 1) * w->d[i] + 1;
        if (w->autopad == MIXRT_NN_SAME_UPPER || w->autopad == MIXRT_NN_SAME_LOWER) {
            int64_t out = mixrt_nn_ceil_div(in, s);
            int64_t total = (out - 1) * s + dk - in;
            if (total < 0) total = 0;
            int64_t small = total / 2;
            w->pb[i] = w->autopad == MIXRT_NN_SAME_UPPER ? small : total - small;
            w->pe[i] = total - w->pb[i];
            w->out[i] = out;
            continue;
        }
        /* ceil_mode: a kernel past the padded input by less than a stride still has one window
         * (ONNX's ceil((span) / s + 1)), clipped to the input; a window may not start in the end
         * padding (ONNX and PyTorch drop it) */
        const int64_t out = mixrt_window_out(in, dk, s, w->pb[i], w->pe[i], ceil_mode);
        if (out < 1)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                      "spatial axis %d: the dilated kernel extent %lld exceeds the padded input "
                                      "%lld (input %lld, pads %lld+%lld): output dim would be < 1",
                                      i, (long long)dk, (long long)(in + w->pb[i] + w->pe[i]), (long long)in,
                                      (long long)w->pb[i], (long long)w->pe[i]);
        w->out[i] = out;
    }
    return MIXRT_STATUS_OK;
}

/* ---- Gemm ------------------------------------------------------------------------------------ */

static const mixrt_dtype gemm_int_types[] = {MIXRT_DTYPE_I32, MIXRT_DTYPE_I64, MIXRT_DTYPE_U32, MIXRT_DTYPE_U64,
                                             MIXRT_DTYPE_UNDEFINED};

static bool is_gemm_int(mixrt_dtype dt) {
    for (const mixrt_dtype *p = gemm_int_types; *p; p++)
        if (*p == dt) return true;
    return false;
}

/* double -> int64 without the undefined behaviour of an out-of-range cast (saturates; NaN is 0). */
static int64_t sat_i64(double v) {
    if (!(v == v)) return 0;
    if (v >= 9223372036854775807.0) return INT64_MAX;
    if (v <= -9223372036854775808.0) return INT64_MIN;
    return (int64_t)v;
}

static mixrt_status run_gemm(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *a = NULL, *b = NULL, *c = mixrt_kernel_opt_input(k, 2);
    double *da = NULL, *db = NULL, *dc = NULL, *dy = NULL;
    size_t na = 0, nb = 0, nc = 0, ny = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &a));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &b));
    bool is_int = is_gemm_int(a->dtype);
    if (!is_int)
        MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    else if (k->opset < 9)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, a,
                                  "expected f32, f64, f16 or bf16 before opset 9");
    MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, 1));
    if (c)
        MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, 2));
    else if (k->opset < 11)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #2 'C' is required before opset 11");
    bool ta = mixrt_node_attr_int(k->node, "transA", 0) != 0, tb = mixrt_node_attr_int(k->node, "transB", 0) != 0;
    double alpha = mixrt_node_attr_float(k->node, "alpha", 1.0f), beta = mixrt_node_attr_float(k->node, "beta", 1.0f);
    if (a->rank != 2)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, a, "expected rank 2 %s", ta ? "[K, M]" : "[M, K]");
    if (b->rank != 2)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, b, "expected rank 2 %s", tb ? "[N, K]" : "[K, N]");
    int64_t M = ta ? a->dims[1] : a->dims[0], K = ta ? a->dims[0] : a->dims[1];
    int64_t N = tb ? b->dims[0] : b->dims[1], KB = tb ? b->dims[1] : b->dims[0];
    if (KB != K)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, b, "expected %s with K=%lld (from input #0 '%s')",
                                  tb ? "[N, K]" : "[K, N]", (long long)K, mixrt_nn_in_name(k, 0));
    /* C broadcasts unidirectionally to [M, N] (opset < 7: when 'broadcast' is set; we accept
     * any unidirectionally broadcastable C there too, as every runtime does). */
    int64_t cs0 = 0, cs1 = 0;
    if (c) {
        int64_t cd0 = c->rank >= 2 ? c->dims[c->rank - 2] : 1, cd1 = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        if (c->rank > 2 || (cd0 != 1 && cd0 != M) || (cd1 != 1 && cd1 != N))
            return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, c,
                                      "expected a shape unidirectionally broadcastable to [M=%lld, N=%lld]",
                                      (long long)M, (long long)N);
        cs0 = cd0 == 1 ? 0 : cd1;
        cs1 = cd1 == 1 ? 0 : 1;
    }
    int64_t ydims[2] = {M, N};
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, a->dtype, 2, ydims, &y));
    ny = mixrt_tensor_numel(y);
    if (ny == 0) return MIXRT_STATUS_OK;
    int64_t sam = ta ? 1 : K, sak = ta ? M : 1, sbk = tb ? 1 : N, sbn = tb ? K : 1;
    if (is_int) {
        /* Exact: products and sums wrap in uint64 like the integer types themselves. */
        bool int_ab = alpha == floor(alpha) && beta == floor(beta) && fabs(alpha) < 9e18 && fabs(beta) < 9e18;
        for (int64_t i = 0; i < M; i++)
            for (int64_t j = 0; j < N; j++) {
                uint64_t acc = 0;
                for (int64_t q = 0; q < K; q++)
                    acc += (uint64_t)mixrt_load_i64(a->data, a->dtype, (size_t)(i * sam + q * sak)) *
                           (uint64_t)mixrt_load_i64(b->data, b->dtype, (size_t)(q * sbk + j * sbn));
                int64_t cv = c ? mixrt_load_i64(c->data, c->dtype, (size_t)(i * cs0 + j * cs1)) : 0;
                int64_t v;
                if (int_ab)
                    v = (int64_t)((uint64_t)(int64_t)alpha * acc + (uint64_t)(int64_t)beta * (uint64_t)cv);
                else
                    v = sat_i64(alpha * (double)(int64_t)acc + beta * (double)cv);
                mixrt_store_i64(y->data, y->dtype, (size_t)(i * N + j), v);
            }
        return MIXRT_STATUS_OK;
    }
    na = mixrt_tensor_numel(a), nb = mixrt_tensor_numel(b);
    MIXRT_TRY(mixrt_nn_load(k, a, &da));
    MIXRT_TRY(mixrt_nn_load(k, b, &db));
    if (c) {
        nc = mixrt_tensor_numel(c);
        MIXRT_TRY(mixrt_nn_load(k, c, &dc));
    }
    dy = mixrt_nn_alloc(k, ny);
    if (!dy) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    for (int64_t i = 0; i < M; i++) {
        double *row = dy + i * N;
        for (int64_t q = 0; q < K; q++) {
            double av = da[i * sam + q * sak];
            const double *bp = db + q * sbk;
            if (sbn == 1)
                for (int64_t j = 0; j < N; j++) row[j] += av * bp[j];
            else
                for (int64_t j = 0; j < N; j++) row[j] += av * bp[j * sbn];
        }
        for (int64_t j = 0; j < N; j++) row[j] = alpha * row[j] + (dc ? beta * dc[i * cs0 + j * cs1] : 0.0);
    }
    status = mixrt_nn_store(k, y, dy);
fail:
    mixrt_nn_free(k, da, na);
    mixrt_nn_free(k, db, nb);
    mixrt_nn_free(k, dc, nc);
    mixrt_nn_free(k, dy, ny);
    return status;
}

/* ---- MatMul ------------------------------------------------------------------------------------ */

static mixrt_status run_matmul(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *a = NULL, *b = NULL;
    double *da = NULL, *db = NULL, *dy = NULL;
    size_t na = 0, nb = 0, ny = 0;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &a));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &b));
    bool is_int = is_gemm_int(a->dtype);
    if (!is_int)
        MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    else if (k->opset < 9)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, a,
                                  "expected f32, f64, f16 or bf16 before opset 9");
    MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, 1));
    if (a->rank < 1) return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, a, "expected rank >= 1");
    if (b->rank < 1) return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, b, "expected rank >= 1");
    /* numpy matmul: a 1-D A is [1, K] and a 1-D B is [K, 1]; the added dim is removed after. */
    int64_t M = a->rank == 1 ? 1 : a->dims[a->rank - 2], K = a->dims[a->rank - 1];
    int64_t KB = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2], N = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (K != KB)
        return mixrt_nn_bad_input(
            k, MIXRT_STATUS_INVALID_MODEL, 1, b, "expected %s dim of %lld to match input #0 '%s' (%s)",
            b->rank == 1 ? "its only" : "its second-to-last", (long long)K, mixrt_nn_in_name(k, 0), "numpy matmul");
    int ra = a->rank > 2 ? a->rank - 2 : 0, rb = b->rank > 2 ? b->rank - 2 : 0, rbat = 0;
    int64_t bdims[MIXRT_MAX_RANK], sa[MIXRT_MAX_RANK], sb[MIXRT_MAX_RANK];
    if (!mixrt_broadcast_shape(ra, a->dims, rb, b->dims, &rbat, bdims)) {
        char d[256];
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, b,
                                  "its batch dims do not broadcast with input #0 '%s' (%s)", mixrt_nn_in_name(k, 0),
                                  mixrt_tensor_desc(d, sizeof(d), a));
    }
    mixrt_broadcast_strides(ra, a->dims, rbat, bdims, sa); /* in matrices */
    mixrt_broadcast_strides(rb, b->dims, rbat, bdims, sb);
    int64_t ydims[MIXRT_MAX_RANK + 2];
    int ry = rbat;
    memcpy(ydims, bdims, sizeof(int64_t) * (size_t)rbat);
    if (a->rank > 1) ydims[ry++] = M;
    if (b->rank > 1) ydims[ry++] = N;
    if (ry > MIXRT_MAX_RANK)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "output rank %d is too large", ry);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, a->dtype, ry, ydims, &y));
    ny = mixrt_tensor_numel(y);
    if (ny == 0) return MIXRT_STATUS_OK;
    size_t nbatch = 1;
    for (int i = 0; i < rbat; i++) nbatch *= (size_t)bdims[i];
    int64_t ctr[MIXRT_MAX_RANK] = {0};
    int64_t offa = 0, offb = 0; /* in matrices */
    if (!is_int) {
        na = mixrt_tensor_numel(a), nb = mixrt_tensor_numel(b);
        MIXRT_TRY(mixrt_nn_load(k, a, &da));
        MIXRT_TRY(mixrt_nn_load(k, b, &db));
        dy = mixrt_nn_alloc(k, ny);
        if (!dy) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    }
    for (size_t bi = 0; bi < nbatch; bi++) {
        size_t ya = (size_t)(offa * M * K), yb = (size_t)(offb * K * N), yo = bi * (size_t)(M * N);
        if (is_int) {
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    uint64_t acc = 0;
                    for (int64_t q = 0; q < K; q++)
                        acc += (uint64_t)mixrt_load_i64(a->data, a->dtype, ya + (size_t)(i * K + q)) *
                               (uint64_t)mixrt_load_i64(b->data, b->dtype, yb + (size_t)(q * N + j));
                    mixrt_store_i64(y->data, y->dtype, yo + (size_t)(i * N + j), (int64_t)acc);
                }
        } else {
            for (int64_t i = 0; i < M; i++) {
                double *row = dy + yo + i * N;
                const double *arow = da + ya + i * K;
                for (int64_t q = 0; q < K; q++) {
                    double av = arow[q];
                    const double *bp = db + yb + q * N;
                    for (int64_t j = 0; j < N; j++) row[j] += av * bp[j];
                }
            }
        }
        for (int d = rbat - 1; d >= 0; d--) {
            offa += sa[d], offb += sb[d];
            if (++ctr[d] < bdims[d]) break;
            offa -= sa[d] * bdims[d], offb -= sb[d] * bdims[d];
            ctr[d] = 0;
        }
    }
    if (!is_int) status = mixrt_nn_store(k, y, dy);
fail:
    mixrt_nn_free(k, da, na);
    mixrt_nn_free(k, db, nb);
    mixrt_nn_free(k, dy, ny);
    return status;
}

/* ---- Dropout ------------------------------------------------------------------------------------
 * Inference (the default everywhere but opset <= 6, where is_test defaults to 0) is the identity
 * with an all-true mask. Training follows the spec: each element is kept with probability
 * 1 - ratio and scaled by 1 / (1 - ratio). The draws come from a xoshiro256** stream seeded per
 * run by mixrt_rng_seed_node (ref_util.c): the 'seed' attribute (opset 12+) or a hash of the
 * node's and first output's names, so a model gives the same mask every run. Masks
 * cannot match other runtimes' generators (ONNX leaves it unspecified). */

static mixrt_status run_dropout(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    double *dx = NULL;
    size_t n = 0;
    MIXRT_TRY(mixrt_nn_float_input(k, 0, -1, &x));
    double ratio = 0.5;
    bool training;
    if (k->opset >= 12) {
        const struct mixrt_tensor *r = mixrt_kernel_opt_input(k, 1), *t = mixrt_kernel_opt_input(k, 2);
        if (r) {
            if (!mixrt_dtype_is_float(r->dtype) || mixrt_tensor_numel(r) != 1)
                return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, r, "expected a float scalar");
            ratio = mixrt_load_f64(r->data, r->dtype, 0);
        }
        training = false;
        if (t) {
            if (t->dtype != MIXRT_DTYPE_BOOL || mixrt_tensor_numel(t) != 1)
                return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, t, "expected a bool scalar");
            training = ((const uint8_t *)t->data)[0] != 0;
        }
    } else {
        ratio = mixrt_node_attr_float(k->node, "ratio", 0.5f);
        training = k->opset < 7 && mixrt_node_attr_int(k->node, "is_test", 0) == 0;
    }
    if (training && !(ratio >= 0.0 && ratio <= 1.0))
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "ratio is %g, expected a value in [0, 1]", ratio);
    if (!training) ratio = 0.0;
    struct mixrt_tensor *y = NULL, *mask = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &y));
    bool want_mask = mixrt_nn_wanted(k, 1);
    if (want_mask)
        MIXRT_TRY(mixrt_kernel_output(k, 1, k->opset >= 10 ? MIXRT_DTYPE_BOOL : x->dtype, x->rank, x->dims, &mask));
    n = mixrt_tensor_numel(x);
    if (n == 0) goto fail;
    if (ratio == 0.0) {
        memcpy(y->data, x->data, x->nbytes);
        if (mask)
            for (size_t i = 0; i < n; i++) mixrt_store_f64(mask->data, mask->dtype, i, 1.0);
        goto fail;
    }
    MIXRT_TRY(mixrt_nn_load(k, x, &dx));
    struct mixrt_rng g;
    mixrt_rng_seed_node(&g, k);
    double scale = ratio < 1.0 ? 1.0 / (1.0 - ratio) : 0.0;
    for (size_t i = 0; i < n; i++) {
        bool keep = mixrt_rng_uniform(&g) >= ratio;
        dx[i] = keep ? dx[i] * scale : 0.0;
        if (mask) mixrt_store_f64(mask->data, mask->dtype, i, keep ? 1.0 : 0.0);
    }
    status = mixrt_nn_store(k, y, dx);
fail:
    mixrt_nn_free(k, dx, n);
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_nn[] = {
    {"", "Conv", 1, 23, mixrt_nn_run_conv},
    {"", "ConvTranspose", 1, 23, mixrt_nn_run_conv_transpose},
    {"", "MaxPool", 1, 23, mixrt_nn_run_max_pool},
    {"", "AveragePool", 1, 23, mixrt_nn_run_average_pool},
    {"", "LpPool", 1, 23, mixrt_nn_run_lp_pool},
    {"", "GlobalAveragePool", 1, 23, mixrt_nn_run_global_average_pool},
    {"", "GlobalMaxPool", 1, 23, mixrt_nn_run_global_max_pool},
    {"", "GlobalLpPool", 1, 23, mixrt_nn_run_global_lp_pool},
    {"", "MaxUnpool", 9, 23, mixrt_nn_run_max_unpool},
    {"", "MaxRoiPool", 1, 23, mixrt_nn_run_max_roi_pool},
    {"", "Gemm", 1, 23, run_gemm},
    {"", "MatMul", 1, 23, run_matmul},
    {"", "BatchNormalization", 1, 23, mixrt_nn_run_batch_norm},
    {"", "InstanceNormalization", 1, 23, mixrt_nn_run_instance_norm},
    {"", "LayerNormalization", 17, 23, mixrt_nn_run_layer_norm},
    {"", "GroupNormalization", 18, 23, mixrt_nn_run_group_norm},
    {"", "LRN", 1, 23, mixrt_nn_run_lrn},
    {"", "MeanVarianceNormalization", 9, 23, mixrt_nn_run_mvn},
    {"", "Dropout", 1, 23, run_dropout},
    {NULL, NULL, 0, 0, NULL},
};
