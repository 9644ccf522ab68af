/* ref_nn_norm.c - reference normalizations: BatchNormalization (inference at every opset, batch
 * statistics with training_mode at 14+), InstanceNormalization, LayerNormalization,
 * GroupNormalization, LRN and MeanVarianceNormalization. Invariant: statistics are two-pass
 * (mean, then mean squared deviation) in double; each output rounds once. */
#include <math.h>
#include <string.h>

#include "backend/cpu/ref_nn_impl.h"

/* Mean and population variance of n doubles taken every `stride` from p. */
static void stats(const double *p, size_t n, size_t stride, double *mean, double *var) {
    double s = 0.0, q = 0.0;
    for (size_t i = 0; i < n; i++) s += p[i * stride];
    double m = n ? s / (double)n : 0.0;
    for (size_t i = 0; i < n; i++) {
        double d = p[i * stride] - m;
        q += d * d;
    }
    *mean = m;
    *var = n ? q / (double)n : 0.0;
}

/* Float input i (present) with exactly `count` elements; its f64 copy goes to *out. */
static mixrt_status param_input(struct mixrt_kernel_ctx *k, int i, size_t count, const char *expected, double **out) {
    const struct mixrt_tensor *t = NULL;
    mixrt_status status = mixrt_nn_float_input(k, i, -1, &t);
    if (status != MIXRT_STATUS_OK) return status;
    if (mixrt_tensor_numel(t) != count)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, t, "expected %s (%zu elements)", expected, count);
    return mixrt_nn_load(k, t, out);
}

/* ---- BatchNormalization ----------------------------------------------------------------------
 * Opset 1/6 (is_test, spatial, consumed_inputs) and 7 (spatial) run in inference mode: with
 * spatial=0 the parameters are per element of [C, D1, ...] (a [C] parameter is taken per
 * channel). Opset 14+ training_mode=1 normalizes with the batch's mean and population variance
 * and outputs running_mean/var = input * momentum + batch * (1 - momentum). Before 14 the
 * optional training outputs, when asked for, get the input mean and var (inference values). */
mixrt_status mixrt_nn_run_batch_norm(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    double *dx = NULL, *sc = NULL, *bi = NULL, *mu = NULL, *va = NULL, *dy = NULL, *bm = NULL, *bv = NULL, *run = NULL;
    size_t nx = 0, np = 0;
    MIXRT_TRY(mixrt_nn_float_input(k, 0, -1, &x));
    if (x->rank < 2) return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x, "expected [N, C, D1, ...]");
    int64_t N = x->dims[0], C = x->dims[1];
    nx = mixrt_tensor_numel(x);
    size_t sp = 1;
    for (int i = 2; i < x->rank; i++) sp *= (size_t)x->dims[i];
    bool per_elem = k->opset < 9 && mixrt_node_attr_int(k->node, "spatial", 1) == 0;
    bool training = k->opset >= 14 && mixrt_node_attr_int(k->node, "training_mode", 0) != 0;
    double eps = mixrt_node_attr_float(k->node, "epsilon", 1e-5f);
    double mom = mixrt_node_attr_float(k->node, "momentum", 0.9f);
    np = (size_t)C;
    if (per_elem && k->n_in > 1 && k->in[1] && mixrt_tensor_numel(k->in[1]) != (size_t)C) np = (size_t)C * sp;
    const char *pshape = np == (size_t)C ? "[C]" : "[C, D1, ...] (spatial=0)";
    for (int i = 1; i <= 4; i++) {
        double **dst = i == 1 ? &sc : i == 2 ? &bi : i == 3 ? &mu : &va;
        MIXRT_TRY(param_input(k, i, np, pshape, dst));
    }
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &y));
    bm = mixrt_nn_alloc(k, np);
    bv = mixrt_nn_alloc(k, np);
    run = mixrt_nn_alloc(k, np);
    dy = mixrt_nn_alloc(k, nx);
    if (!bm || !bv || !run || !dy) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    MIXRT_TRY(mixrt_nn_load(k, x, &dx));
    if (training) {
        for (int64_t c = 0; c < C; c++) {
            double s = 0.0, q = 0.0;
            size_t cnt = (size_t)N * sp;
            for (int64_t n = 0; n < N; n++)
                for (size_t i = 0; i < sp; i++) s += dx[((size_t)(n * C + c)) * sp + i];
            double m = cnt ? s / (double)cnt : 0.0;
            for (int64_t n = 0; n < N; n++)
                for (size_t i = 0; i < sp; i++) {
                    double d = dx[((size_t)(n * C + c)) * sp + i] - m;
                    q += d * d;
                }
            bm[c] = m;
            bv[c] = cnt ? q / (double)cnt : 0.0;
        }
    } else {
        memcpy(bm, mu, np * sizeof(double));
        memcpy(bv, va, np * sizeof(double));
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++)
            for (size_t i = 0; i < sp; i++) {
                size_t e = (size_t)(n * C + c) * sp + i, p = np == (size_t)C ? (size_t)c : (size_t)c * sp + i;
                dy[e] = (dx[e] - bm[p]) / sqrt(bv[p] + eps) * sc[p] + bi[p];
            }
    MIXRT_TRY(mixrt_nn_store(k, y, dy));
    /* Optional outputs: running mean/var (training: the momentum update), then (opset < 14)
     * saved mean/var. */
    for (int o = 1; o < k->n_out && o <= 4; o++) {
        if (!mixrt_nn_wanted(k, o)) continue;
        const struct mixrt_tensor *like = k->in[o == 1 || o == 3 ? 3 : 4];
        const double *src = o == 1 || o == 3 ? (training ? bm : mu) : (training ? bv : va);
        struct mixrt_tensor *t = NULL;
        MIXRT_TRY(mixrt_kernel_output(k, o, like->dtype, like->rank, like->dims, &t));
        if (training && o <= 2) {
            const double *in = o == 1 ? mu : va;
            for (size_t c = 0; c < np; c++) run[c] = in[c] * mom + src[c] * (1.0 - mom);
            MIXRT_TRY(mixrt_nn_store(k, t, run));
        } else {
            MIXRT_TRY(mixrt_nn_store(k, t, src));
        }
    }
fail:
    mixrt_nn_free(k, dx, nx);
    mixrt_nn_free(k, dy, nx);
    mixrt_nn_free(k, sc, np);
    mixrt_nn_free(k, bi, np);
    mixrt_nn_free(k, mu, np);
    mixrt_nn_free(k, va, np);
    mixrt_nn_free(k, bm, np);
    mixrt_nn_free(k, bv, np);
    mixrt_nn_free(k, run, np);
    return status;
}

/* ---- InstanceNormalization / GroupNormalization ------------------------------------------------
 * Both normalize contiguous runs of [N, C, ...]: an instance is one (n, c) plane, a group is
 * C/G consecutive planes. Scale/bias are per channel, or per group for GroupNormalization-18
 * (whichever element count the tensors have: C or num_groups). */
static mixrt_status run_grouped_norm(struct mixrt_kernel_ctx *k, bool group_norm) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    double *dx = NULL, *sc = NULL, *bi = NULL, *dy = NULL;
    size_t nx = 0, np = 0;
    MIXRT_TRY(mixrt_nn_float_input(k, 0, -1, &x));
    if (x->rank < 2) return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x, "expected [N, C, D1, ...]");
    int64_t N = x->dims[0], C = x->dims[1], G = C;
    double eps = mixrt_node_attr_float(k->node, "epsilon", 1e-5f);
    if (group_norm) {
        const struct mixrt_attr *ga = mixrt_node_attr(k->node, "num_groups");
        if (!ga || ga->type != MIXRT_ATTR_INT)
            return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'num_groups' is required");
        G = ga->i;
        if (G < 1 || C % G)
            return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x,
                                      "expected C=%lld divisible by num_groups=%lld", (long long)C, (long long)G);
        const struct mixrt_tensor *s = mixrt_kernel_opt_input(k, 1);
        /* Opset 18 defines per-group parameters, 21 per-channel; take what the tensor holds. */
        np = (size_t)C;
        if (s && mixrt_tensor_numel(s) != (size_t)C) np = (size_t)G;
        if (s && k->opset < 21 && mixrt_tensor_numel(s) == (size_t)G) np = (size_t)G;
    } else {
        np = (size_t)C;
    }
    const char *pshape = np == (size_t)C ? "[C]" : "[num_groups]";
    MIXRT_TRY(param_input(k, 1, np, pshape, &sc));
    MIXRT_TRY(param_input(k, 2, np, pshape, &bi));
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &y));
    nx = mixrt_tensor_numel(x);
    if (nx == 0) goto fail;
    MIXRT_TRY(mixrt_nn_load(k, x, &dx));
    dy = mixrt_nn_alloc(k, nx);
    if (!dy) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    size_t sp = nx / (size_t)(N * C), cpg = (size_t)(C / G), run = cpg * sp;
    for (int64_t n = 0; n < N; n++)
        for (int64_t g = 0; g < G; g++) {
            size_t base = ((size_t)(n * C) + (size_t)g * cpg) * sp;
            double m, v;
            stats(dx + base, run, 1, &m, &v);
            double inv = 1.0 / sqrt(v + eps);
            for (size_t c = 0; c < cpg; c++) {
                size_t ch = (size_t)g * cpg + c, p = np == (size_t)C ? ch : (size_t)g;
                for (size_t i = 0; i < sp; i++) {
                    size_t e = base + c * sp + i;
                    dy[e] = (dx[e] - m) * inv * sc[p] + bi[p];
                }
            }
        }
    status = mixrt_nn_store(k, y, dy);
fail:
    mixrt_nn_free(k, dx, nx);
    mixrt_nn_free(k, dy, nx);
    mixrt_nn_free(k, sc, np);
    mixrt_nn_free(k, bi, np);
    return status;
}

mixrt_status mixrt_nn_run_instance_norm(struct mixrt_kernel_ctx *k) { return run_grouped_norm(k, false); }
mixrt_status mixrt_nn_run_group_norm(struct mixrt_kernel_ctx *k) { return run_grouped_norm(k, true); }

/* ---- LayerNormalization (opset 17) -------------------------------------------------------------
 * Normalizes over dims [axis, rank); Scale and B broadcast unidirectionally onto those dims.
 * Mean and InvStdDev have shape dims[:axis] + [1]*(rank - axis) and the dtype stash_type names
 * (f32 by default, whatever X is), as the spec's type inference gives them. */
mixrt_status mixrt_nn_run_layer_norm(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *s = NULL, *b = NULL;
    double *dx = NULL, *ds = NULL, *db = NULL, *dy = NULL, *fs = NULL, *fb = NULL, *dm = NULL, *di = NULL;
    size_t nx = 0, ns = 0, nb = 0, inner = 1, outer = 1;
    MIXRT_TRY(mixrt_nn_float_input(k, 0, -1, &x));
    MIXRT_TRY(mixrt_nn_float_input(k, 1, -1, &s));
    b = mixrt_kernel_opt_input(k, 2);
    if (b) MIXRT_TRY(mixrt_nn_float_input(k, 2, -1, &b));
    int64_t axis;
    int64_t axis_attr = mixrt_node_attr_int(k->node, "axis", -1);
    if (!mixrt_norm_axis(axis_attr, x->rank, &axis))
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x, "attribute 'axis' %lld is out of range",
                                  (long long)axis_attr);
    double eps = mixrt_node_attr_float(k->node, "epsilon", 1e-5f);
    int64_t stash = mixrt_node_attr_int(k->node, "stash_type", 1);
    if (stash <= 0 || stash >= MIXRT_DTYPE_COUNT || !mixrt_dtype_is_float((mixrt_dtype)stash))
        return mixrt_kernel_error(
            k, MIXRT_STATUS_INVALID_MODEL,
            "attribute 'stash_type' is %lld, expected a float dtype (1 f32, 10 f16, 11 f64, 16 bf16)",
            (long long)stash);
    int ir = x->rank - (int)axis;
    const int64_t *idims = x->dims + axis;
    for (int i = 0; i < (int)axis; i++) outer *= (size_t)x->dims[i];
    for (int i = 0; i < ir; i++) inner *= (size_t)idims[i];
    int64_t str_s[MIXRT_MAX_RANK], str_b[MIXRT_MAX_RANK];
    for (int pi = 1; pi <= 2; pi++) {
        const struct mixrt_tensor *p = pi == 1 ? s : b;
        if (!p) continue;
        int64_t bd[MIXRT_MAX_RANK];
        int br;
        bool ok = p->rank <= ir && mixrt_broadcast_shape(ir, idims, p->rank, p->dims, &br, bd) && br == ir;
        for (int i = 0; ok && i < ir; i++) ok = bd[i] == idims[i];
        if (!ok) {
            char d[256];
            return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, pi, p,
                                      "expected a shape broadcastable to X's normalized dims %s",
                                      mixrt_dims_str(d, sizeof(d), ir, idims));
        }
        mixrt_broadcast_strides(p->rank, p->dims, ir, idims, pi == 1 ? str_s : str_b);
    }
    struct mixrt_tensor *y = NULL, *tm = NULL, *ti = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &y));
    int64_t sdims[MIXRT_MAX_RANK];
    for (int i = 0; i < x->rank; i++) sdims[i] = i < axis ? x->dims[i] : 1;
    if (mixrt_nn_wanted(k, 1)) MIXRT_TRY(mixrt_kernel_output(k, 1, (mixrt_dtype)stash, x->rank, sdims, &tm));
    if (mixrt_nn_wanted(k, 2)) MIXRT_TRY(mixrt_kernel_output(k, 2, (mixrt_dtype)stash, x->rank, sdims, &ti));
    nx = mixrt_tensor_numel(x), ns = mixrt_tensor_numel(s), nb = b ? mixrt_tensor_numel(b) : 0;
    MIXRT_TRY(mixrt_nn_load(k, x, &dx));
    MIXRT_TRY(mixrt_nn_load(k, s, &ds));
    if (b) MIXRT_TRY(mixrt_nn_load(k, b, &db));
    /* Expand Scale and B to the inner shape once. */
    fs = mixrt_nn_alloc(k, inner);
    fb = mixrt_nn_alloc(k, inner);
    dy = mixrt_nn_alloc(k, nx);
    dm = mixrt_nn_alloc(k, outer);
    di = mixrt_nn_alloc(k, outer);
    if (!fs || !fb || !dy || !dm || !di) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    {
        int64_t ctr[MIXRT_MAX_RANK] = {0}, os = 0, ob = 0;
        for (size_t j = 0; j < inner; j++) {
            fs[j] = ds[os];
            fb[j] = db ? db[ob] : 0.0;
            for (int d = ir - 1; d >= 0; d--) {
                os += str_s[d], ob += b ? str_b[d] : 0;
                if (++ctr[d] < idims[d]) break;
                os -= str_s[d] * idims[d], ob -= b ? str_b[d] * idims[d] : 0;
                ctr[d] = 0;
            }
        }
    }
    for (size_t o = 0; o < outer; o++) {
        const double *xp = dx + o * inner;
        double m, v;
        stats(xp, inner, 1, &m, &v);
        double inv = 1.0 / sqrt(v + eps);
        dm[o] = m, di[o] = inv;
        for (size_t j = 0; j < inner; j++) dy[o * inner + j] = (xp[j] - m) * inv * fs[j] + fb[j];
    }
    MIXRT_TRY(mixrt_nn_store(k, y, dy));
    if (tm) MIXRT_TRY(mixrt_nn_store(k, tm, dm));
    if (ti) MIXRT_TRY(mixrt_nn_store(k, ti, di));
fail:
    mixrt_nn_free(k, dx, nx);
    mixrt_nn_free(k, dy, nx);
    mixrt_nn_free(k, ds, ns);
    mixrt_nn_free(k, db, nb);
    mixrt_nn_free(k, fs, inner);
    mixrt_nn_free(k, fb, inner);
    mixrt_nn_free(k, dm, outer);
    mixrt_nn_free(k, di, outer);
    return status;
}

/* ---- LRN: y = x / (bias + alpha/size * sum of x^2 over channels [c - (size-1)/2, c + ceil((size-1)/2)])^beta */
mixrt_status mixrt_nn_run_lrn(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    double *dx = NULL, *dy = NULL;
    size_t nx = 0;
    MIXRT_TRY(mixrt_nn_float_input(k, 0, -1, &x));
    if (x->rank < 2) return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x, "expected [N, C, D1, ...]");
    const struct mixrt_attr *sa = mixrt_node_attr(k->node, "size");
    if (!sa || sa->type != MIXRT_ATTR_INT || sa->i < 1)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'size' is required and must be >= 1");
    int64_t size = sa->i;
    double alpha = mixrt_node_attr_float(k->node, "alpha", 1e-4f), beta = mixrt_node_attr_float(k->node, "beta", 0.75f),
           bias = mixrt_node_attr_float(k->node, "bias", 1.0f);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &y));
    nx = mixrt_tensor_numel(x);
    if (nx == 0) goto fail;
    MIXRT_TRY(mixrt_nn_load(k, x, &dx));
    dy = mixrt_nn_alloc(k, nx);
    if (!dy) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    int64_t N = x->dims[0], C = x->dims[1], sp = (int64_t)(nx / (size_t)(N * C));
    int64_t lo_off = (size - 1) / 2, hi_off = size - 1 - lo_off;
    for (int64_t n = 0; n < N; n++)
        for (int64_t c = 0; c < C; c++) {
            int64_t c0 = c - lo_off < 0 ? 0 : c - lo_off, c1 = c + hi_off >= C ? C - 1 : c + hi_off;
            for (int64_t i = 0; i < sp; i++) {
                double sq = 0.0;
                for (int64_t cc = c0; cc <= c1; cc++) {
                    double v = dx[(n * C + cc) * sp + i];
                    sq += v * v;
                }
                size_t e = (size_t)((n * C + c) * sp + i);
                dy[e] = dx[e] / pow(bias + alpha / (double)size * sq, beta);
            }
        }
    status = mixrt_nn_store(k, y, dy);
fail:
    mixrt_nn_free(k, dx, nx);
    mixrt_nn_free(k, dy, nx);
    return status;
}

/* ---- MeanVarianceNormalization: (x - mean) / (sqrt(var) + 1e-9) over 'axes' (default
 * [0, 2, 3]); the epsilon is added to the standard deviation, as in the spec's function body. */
mixrt_status mixrt_nn_run_mvn(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    double *dx = NULL, *dy = NULL, *sum = NULL, *sq = NULL;
    size_t *gi = NULL;
    size_t nx = 0, ng = 1;
    MIXRT_TRY(mixrt_nn_float_input(k, 0, -1, &x));
    size_t na = 0;
    const int64_t *axes = mixrt_node_attr_ints(k->node, "axes", &na);
    static const int64_t dflt_axes[3] = {0, 2, 3};
    if (!axes) axes = dflt_axes, na = 3;
    bool red[MIXRT_MAX_RANK] = {false};
    for (size_t i = 0; i < na; i++) {
        int64_t a;
        if (!mixrt_norm_axis(axes[i], x->rank, &a))
            return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, x, "axis %lld in 'axes' is out of range",
                                      (long long)axes[i]);
        red[a] = true;
    }
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &y));
    nx = mixrt_tensor_numel(x);
    if (nx == 0) goto fail;
    int64_t gstr[MIXRT_MAX_RANK], ctr[MIXRT_MAX_RANK] = {0};
    for (int d = x->rank - 1; d >= 0; d--) {
        gstr[d] = red[d] ? 0 : (int64_t)ng;
        if (!red[d]) ng *= (size_t)x->dims[d];
    }
    MIXRT_TRY(mixrt_nn_load(k, x, &dx));
    dy = mixrt_nn_alloc(k, nx);
    sum = mixrt_nn_alloc(k, ng);
    sq = mixrt_nn_alloc(k, ng);
    gi = mixrt_alloc(k->ctx, nx * sizeof(size_t));
    if (!dy || !sum || !sq || !gi) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    int64_t g = 0;
    for (size_t i = 0; i < nx; i++) {
        gi[i] = (size_t)g;
        for (int d = x->rank - 1; d >= 0; d--) {
            g += gstr[d];
            if (++ctr[d] < x->dims[d]) break;
            g -= gstr[d] * x->dims[d];
            ctr[d] = 0;
        }
    }
    double cnt = (double)(nx / ng);
    for (size_t i = 0; i < nx; i++) sum[gi[i]] += dx[i];
    for (size_t j = 0; j < ng; j++) sum[j] /= cnt;
    for (size_t i = 0; i < nx; i++) {
        double d = dx[i] - sum[gi[i]];
        sq[gi[i]] += d * d;
    }
    for (size_t j = 0; j < ng; j++) sq[j] = sqrt(sq[j] / cnt) + 1e-9;
    for (size_t i = 0; i < nx; i++) dy[i] = (dx[i] - sum[gi[i]]) / sq[gi[i]];
    status = mixrt_nn_store(k, y, dy);
fail:
    mixrt_nn_free(k, dx, nx);
    mixrt_nn_free(k, dy, nx);
    mixrt_nn_free(k, sum, ng);
    mixrt_nn_free(k, sq, ng);
    if (gi) mixrt_free(k->ctx, gi, nx * sizeof(size_t));
    return status;
}
