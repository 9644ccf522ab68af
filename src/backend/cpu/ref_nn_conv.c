/* ref_nn_conv.c - reference Conv and ConvTranspose for any spatial rank, groups, strides,
 * dilations, pads and auto_pad. Invariant: each kernel tap is applied to the box of output
 * (Conv) or input (ConvTranspose) positions where it lands inside the tensor, so padding costs
 * no per-element test; sums are in double, rounded once into the output. */
#include <string.h>

#include "backend/cpu/ref_nn_impl.h"

/* dst[a0 + sum_i j_i*as_i] += w * src[b0 + sum_i j_i*bs_i] for j in the box [lo, hi). The last
 * axis is the inner loop. Callers guarantee every touched index is in range. */
static void box_axpy(int nd, const int64_t *lo, const int64_t *hi, const int64_t *as, const int64_t *bs, double *dst,
                     int64_t a0, const double *src, int64_t b0, double w) {
    int64_t j[MIXRT_MAX_RANK];
    for (int i = 0; i < nd; i++) {
        if (lo[i] >= hi[i]) return;
        j[i] = lo[i];
    }
    int L = nd - 1;
    int64_t asl = as[L], bsl = bs[L], qlo = lo[L], qhi = hi[L];
    for (;;) {
        int64_t a = a0, b = b0;
        for (int i = 0; i < L; i++) a += j[i] * as[i], b += j[i] * bs[i];
        if (asl == 1 && bsl == 1)
            for (int64_t q = qlo; q < qhi; q++) dst[a + q] += w * src[b + q];
        else if (asl == 1)
            for (int64_t q = qlo; q < qhi; q++) dst[a + q] += w * src[b + q * bsl];
        else
            for (int64_t q = qlo; q < qhi; q++) dst[a + q * asl] += w * src[b + q * bsl];
        int i = L - 1;
        for (; i >= 0; i--) {
            if (++j[i] < hi[i]) break;
            j[i] = lo[i];
        }
        if (i < 0) return;
    }
}

/* Row-major strides of dims[0..nd). */
static void spatial_strides(int nd, const int64_t *dims, int64_t *str) {
    int64_t s = 1;
    for (int i = nd - 1; i >= 0; i--) {
        str[i] = s;
        s *= dims[i];
    }
}

static int64_t prod(int nd, const int64_t *d) {
    int64_t p = 1;
    for (int i = 0; i < nd; i++) p *= d[i];
    return p;
}

/* W's kernel dims must be > 0 and match the optional kernel_shape attribute. */
static mixrt_status check_kernel_shape(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *w, int nd,
                                       const char *layout) {
    for (int i = 0; i < nd; i++)
        if (w->dims[2 + i] < 1)
            return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, w, "expected %s with kernel dims > 0", layout);
    size_t cnt = 0;
    const int64_t *ks = mixrt_node_attr_ints(k->node, "kernel_shape", &cnt);
    if (!ks) return MIXRT_STATUS_OK;
    bool ok = cnt == (size_t)nd;
    for (int i = 0; ok && i < nd; i++) ok = ks[i] == w->dims[2 + i];
    if (!ok) {
        char d[256];
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, w,
                                  "expected %s with kernel dims %s (attribute "
                                  "'kernel_shape')",
                                  layout, mixrt_dims_str(d, sizeof(d), (int)cnt, ks));
    }
    return MIXRT_STATUS_OK;
}

/* X, W (rank of X) and the optional bias of m entries: common checks. */
static mixrt_status conv_inputs(struct mixrt_kernel_ctx *k, const struct mixrt_tensor **x,
                                const struct mixrt_tensor **w, const struct mixrt_tensor **b, int64_t *group) {
    mixrt_status status = mixrt_nn_float_input(k, 0, -1, x);
    if (status == MIXRT_STATUS_OK) status = mixrt_nn_float_input(k, 1, 0, w);
    if (status != MIXRT_STATUS_OK) return status;
    *b = mixrt_kernel_opt_input(k, 2);
    if (*b && (status = mixrt_kernel_check_same_dtype(k, 0, 2)) != MIXRT_STATUS_OK) return status;
    if ((*x)->rank < 3)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, *x,
                                  "expected [N, C, D1, ...] with at least one spatial dim");
    *group = mixrt_node_attr_int(k->node, "group", 1);
    if (*group < 1 || *group > INT32_MAX)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'group' is %lld, expected >= 1",
                                  (long long)*group);
    if ((*x)->dims[1] % *group)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, *x, "expected C=%lld divisible by group=%lld",
                                  (long long)(*x)->dims[1], (long long)*group);
    return MIXRT_STATUS_OK;
}

static mixrt_status check_bias(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *b, int64_t m) {
    if (b && (b->rank != 1 || b->dims[0] != m))
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, b, "expected [M=%lld]", (long long)m);
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_nn_run_conv(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *w = NULL, *b = NULL;
    double *dx = NULL, *dw = NULL, *db = NULL, *dy = NULL;
    int64_t *taps = NULL;
    size_t nx = 0, nw = 0, nb = 0, ny = 0, ntaps = 0;
    int64_t group;
    MIXRT_TRY(conv_inputs(k, &x, &w, &b, &group));
    int nd = x->rank - 2;
    int64_t N = x->dims[0], C = x->dims[1], M = w->rank >= 1 ? w->dims[0] : 0, Cg = C / group;
    if (w->rank != x->rank || w->dims[1] != Cg || M % group)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, w,
                                  "expected [M, C/group=%lld, k1..k%d] (rank %d) with M divisible by group=%lld",
                                  (long long)Cg, nd, x->rank, (long long)group);
    MIXRT_TRY(check_kernel_shape(k, w, nd, "[M, C/group, k1, ...]"));
    MIXRT_TRY(check_bias(k, b, M));
    struct mixrt_nn_window win = {.nd = nd};
    for (int i = 0; i < nd; i++) win.k[i] = w->dims[2 + i], win.in[i] = x->dims[2 + i];
    MIXRT_TRY(mixrt_nn_window_attrs(k, &win, true));
    MIXRT_TRY(mixrt_nn_window_forward(k, &win, false));
    int64_t ydims[MIXRT_MAX_RANK] = {N, M};
    for (int i = 0; i < nd; i++) ydims[2 + i] = win.out[i];
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, ydims, &y));
    ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    nx = mixrt_tensor_numel(x), nw = mixrt_tensor_numel(w), nb = b ? mixrt_tensor_numel(b) : 0;
    MIXRT_TRY(mixrt_nn_load(k, x, &dx));
    MIXRT_TRY(mixrt_nn_load(k, w, &dw));
    if (b) MIXRT_TRY(mixrt_nn_load(k, b, &db));
    dy = mixrt_nn_alloc(k, ny);
    if (!dy) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    int64_t in_sp = prod(nd, win.in), out_sp = prod(nd, win.out), istr[MIXRT_MAX_RANK], ostr[MIXRT_MAX_RANK],
            bs[MIXRT_MAX_RANK];
    spatial_strides(nd, win.in, istr);
    spatial_strides(nd, win.out, ostr);
    for (int i = 0; i < nd; i++) bs[i] = win.s[i] * istr[i];
    if (b)
        for (int64_t n = 0; n < N; n++)
            for (int64_t m = 0; m < M; m++)
                for (int64_t o = 0; o < out_sp; o++) dy[(n * M + m) * out_sp + o] = db[m];
    /* Per tap: its valid output box [lo, hi) per axis and its input offset (W is in memory,
     * so the tap count times the rank is a sane size unless Cg is 0, when nothing runs). */
    int64_t k_sp = Cg > 0 ? (int64_t)(nw / (size_t)(M * Cg)) : 0;
    ntaps = (size_t)k_sp * (size_t)(2 * nd + 1);
    if (k_sp > 0) {
        taps = mixrt_alloc(k->ctx, ntaps * sizeof(int64_t));
        if (!taps) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    }
    for (int64_t t = 0; t < k_sp; t++) {
        int64_t *lo = taps + t * (2 * nd + 1), *hi = lo + nd, *b0 = hi + nd, rem = t;
        *b0 = 0;
        for (int i = nd - 1; i >= 0; i--) {
            int64_t kk = rem % win.k[i], off = kk * win.d[i] - win.pb[i];
            rem /= win.k[i];
            lo[i] = mixrt_nn_ceil_div(-off, win.s[i]);
            if (lo[i] < 0) lo[i] = 0;
            hi[i] = mixrt_nn_ceil_div(win.in[i] - off, win.s[i]);
            if (hi[i] > win.out[i]) hi[i] = win.out[i];
            *b0 += off * istr[i];
        }
    }
    int64_t Mg = M / group;
    for (int64_t n = 0; n < N; n++)
        for (int64_t m = 0; m < M; m++) {
            int64_t g = m / Mg;
            double *acc = dy + (n * M + m) * out_sp;
            for (int64_t c = 0; c < Cg; c++) {
                const double *xp = dx + (n * C + g * Cg + c) * in_sp, *wp = dw + (m * Cg + c) * k_sp;
                for (int64_t t = 0; t < k_sp; t++) {
                    const int64_t *lo = taps + t * (2 * nd + 1);
                    box_axpy(nd, lo, lo + nd, ostr, bs, acc, 0, xp, lo[2 * nd], wp[t]);
                }
            }
        }
    status = mixrt_nn_store(k, y, dy);
fail:
    mixrt_nn_free(k, dx, nx);
    mixrt_nn_free(k, dw, nw);
    mixrt_nn_free(k, db, nb);
    mixrt_nn_free(k, dy, ny);
    if (taps) mixrt_free(k->ctx, taps, ntaps * sizeof(int64_t));
    return status;
}

mixrt_status mixrt_nn_run_conv_transpose(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL, *w = NULL, *b = NULL;
    double *dx = NULL, *dw = NULL, *db = NULL, *dy = NULL;
    int64_t *taps = NULL;
    size_t nx = 0, nw = 0, nb = 0, ny = 0, ntaps = 0;
    int64_t group;
    MIXRT_TRY(conv_inputs(k, &x, &w, &b, &group));
    int nd = x->rank - 2;
    int64_t N = x->dims[0], C = x->dims[1], Cg = C / group;
    if (w->rank != x->rank || w->dims[0] != C)
        return mixrt_nn_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, w, "expected [C=%lld, M/group, k1..k%d] (rank %d)",
                                  (long long)C, nd, x->rank);
    int64_t Mg = w->dims[1], M = Mg * group;
    MIXRT_TRY(check_kernel_shape(k, w, nd, "[C, M/group, k1, ...]"));
    MIXRT_TRY(check_bias(k, b, M));
    struct mixrt_nn_window win = {.nd = nd};
    for (int i = 0; i < nd; i++) win.k[i] = w->dims[2 + i], win.in[i] = x->dims[2 + i];
    MIXRT_TRY(mixrt_nn_window_attrs(k, &win, true));
    int64_t opad[MIXRT_MAX_RANK];
    MIXRT_TRY(mixrt_nn_ints_attr(k, "output_padding", nd, 0, 0, opad, NULL));
    size_t nos = 0;
    const int64_t *os = mixrt_node_attr_ints(k->node, "output_shape", &nos);
    if (os && nos != (size_t)nd && nos != (size_t)nd + 2)
        return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                  "attribute 'output_shape' has %zu entries, expected %d (spatial) or %d", nos, nd,
                                  nd + 2);
    for (int i = 0; i < nd; i++) {
        int64_t dk = (win.k[i] - 1) * win.d[i] + 1, full = win.s[i] * (win.in[i] - 1) + opad[i] + dk;
        bool same = win.autopad == MIXRT_NN_SAME_UPPER || win.autopad == MIXRT_NN_SAME_LOWER;
        if (win.in[i] == 0) full = 0;
        if (os || same) {
            int64_t out = os ? os[nos - (size_t)nd + (size_t)i] : win.in[i] * win.s[i];
            if (out < 0 || out > ((int64_t)1 << 40))
                return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "output_shape[%d] is %lld", i, (long long)out);
            /* total < 0: the output is larger than the full result; the excess lies at the end. */
            int64_t total = full - out;
            if (total < 0)
                win.pb[i] = 0;
            else
                win.pb[i] = win.autopad == MIXRT_NN_SAME_UPPER ? total / 2 : total - total / 2;
            win.pe[i] = total - win.pb[i];
            win.out[i] = out;
        } else {
            win.out[i] = full - win.pb[i] - win.pe[i];
            if (win.out[i] < 1 && win.in[i] > 0)
                return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                          "spatial axis %d: output dim %lld < 1 (input %lld, stride %lld, kernel "
                                          "extent %lld, output_padding %lld, pads %lld+%lld)",
                                          i, (long long)win.out[i], (long long)win.in[i], (long long)win.s[i],
                                          (long long)dk, (long long)opad[i], (long long)win.pb[i],
                                          (long long)win.pe[i]);
            if (win.out[i] < 0) win.out[i] = 0;
        }
    }
    int64_t ydims[MIXRT_MAX_RANK] = {N, M};
    for (int i = 0; i < nd; i++) ydims[2 + i] = win.out[i];
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, ydims, &y));
    ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    nx = mixrt_tensor_numel(x), nw = mixrt_tensor_numel(w), nb = b ? mixrt_tensor_numel(b) : 0;
    MIXRT_TRY(mixrt_nn_load(k, x, &dx));
    MIXRT_TRY(mixrt_nn_load(k, w, &dw));
    if (b) MIXRT_TRY(mixrt_nn_load(k, b, &db));
    dy = mixrt_nn_alloc(k, ny);
    if (!dy) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    int64_t in_sp = prod(nd, win.in), out_sp = prod(nd, win.out), istr[MIXRT_MAX_RANK], ostr[MIXRT_MAX_RANK],
            as[MIXRT_MAX_RANK];
    spatial_strides(nd, win.in, istr);
    spatial_strides(nd, win.out, ostr);
    for (int i = 0; i < nd; i++) as[i] = win.s[i] * ostr[i];
    if (b)
        for (int64_t n = 0; n < N; n++)
            for (int64_t m = 0; m < M; m++)
                for (int64_t o = 0; o < out_sp; o++) dy[(n * M + m) * out_sp + o] = db[m];
    int64_t k_sp = (C > 0 && Mg > 0) ? (int64_t)(nw / (size_t)(C * Mg)) : 0;
    ntaps = (size_t)k_sp * (size_t)(2 * nd + 1);
    if (k_sp > 0) {
        taps = mixrt_alloc(k->ctx, ntaps * sizeof(int64_t));
        if (!taps) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    }
    /* Input position i lands on output position i*s + kk*d - pb: the box of inputs that stay
     * inside [0, out) per tap. */
    for (int64_t t = 0; t < k_sp; t++) {
        int64_t *lo = taps + t * (2 * nd + 1), *hi = lo + nd, *a0 = hi + nd, rem = t;
        *a0 = 0;
        for (int i = nd - 1; i >= 0; i--) {
            int64_t kk = rem % win.k[i], off = kk * win.d[i] - win.pb[i];
            rem /= win.k[i];
            lo[i] = mixrt_nn_ceil_div(-off, win.s[i]);
            if (lo[i] < 0) lo[i] = 0;
            hi[i] = mixrt_nn_ceil_div(win.out[i] - off, win.s[i]);
            if (hi[i] > win.in[i]) hi[i] = win.in[i];
            *a0 += off * ostr[i];
        }
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t ic = 0; ic < C; ic++) {
            int64_t g = ic / Cg;
            const double *xp = dx + (n * C + ic) * in_sp;
            for (int64_t m = 0; m < Mg; m++) {
                double *acc = dy + (n * M + g * Mg + m) * out_sp;
                const double *wp = dw + (ic * Mg + m) * k_sp;
                for (int64_t t = 0; t < k_sp; t++) {
                    const int64_t *lo = taps + t * (2 * nd + 1);
                    box_axpy(nd, lo, lo + nd, as, istr, acc, lo[2 * nd], xp, 0, wp[t]);
                }
            }
        }
    status = mixrt_nn_store(k, y, dy);
fail:
    mixrt_nn_free(k, dx, nx);
    mixrt_nn_free(k, dw, nw);
    mixrt_nn_free(k, db, nb);
    mixrt_nn_free(k, dy, ny);
    if (taps) mixrt_free(k->ctx, taps, ntaps * sizeof(int64_t));
    return status;
}
