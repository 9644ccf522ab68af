/* ref_extra.c - reference kernels that belong to no larger family: GridSample, Unique,
 * TfIdfVectorizer, Det, CenterCropPad and Col2Im. Invariant: floats compute in double and round
 * once on output; integers (Unique keys, TfIdf tokens, Col2Im sums) stay exact int64. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/ref.h"

/* ---- shared helpers ------------------------------------------------------------------------ */

static const char *in_name(const struct mixrt_kernel_ctx *k, int i) {
    if (i >= 0 && i < k->node->n_inputs && k->node->inputs[i] >= 0) return k->graph->values[k->node->inputs[i]].name;
    return "";
}

static mixrt_status bad_input(struct mixrt_kernel_ctx *k, mixrt_status st, int i, const struct mixrt_tensor *t,
                              const char *what) {
    char d[256];
    return mixrt_kernel_error(k, st, "input #%d '%s' is %s, %s", i, in_name(k, i), mixrt_tensor_desc(d, sizeof(d), t),
                              what);
}

static void *xcalloc(struct mixrt_kernel_ctx *k, size_t n, size_t size) {
    void *p = mixrt_calloc(k->ctx, n ? n : 1, size);
    if (!p) mixrt_error_prefix(k->ctx, "cannot run %s node '%s'", k->node->op_type, k->node->name);
    return p;
}

static void xfree(struct mixrt_kernel_ctx *k, void *p, size_t n, size_t size) {
    if (p) mixrt_free(k->ctx, p, (n ? n : 1) * size);
}

/* dst[di .. di+n) = src[si .. si+n) for tensors of one dtype; STRING elements are deep copies. */
static mixrt_status copy_elems(struct mixrt_kernel_ctx *k, struct mixrt_tensor *dst, size_t di,
                               const struct mixrt_tensor *src, size_t si, size_t n) {
    if (n == 0) return MIXRT_STATUS_OK;
    if (dst->dtype == MIXRT_DTYPE_STRING) {
        struct mixrt_string *d = (struct mixrt_string *)dst->data + di;
        const struct mixrt_string *s = (const struct mixrt_string *)src->data + si;
        for (size_t j = 0; j < n; j++) {
            char *p = mixrt_alloc(k->ctx, s[j].len + 1);
            if (!p) return MIXRT_STATUS_OUT_OF_MEMORY;
            if (s[j].len) memcpy(p, s[j].ptr, s[j].len);
            p[s[j].len] = 0;
            if (d[j].ptr) mixrt_free(k->ctx, d[j].ptr, d[j].len + 1);
            d[j].ptr = p;
            d[j].len = s[j].len;
        }
        return MIXRT_STATUS_OK;
    }
    size_t es = mixrt_dtype_size(dst->dtype);
    memcpy((char *)dst->data + di * es, (const char *)src->data + si * es, n * es);
    return MIXRT_STATUS_OK;
}

/* STRING outputs start with NULL elements; the positions no kernel wrote become "". */
static mixrt_status fill_empty_strings(struct mixrt_kernel_ctx *k, struct mixrt_tensor *t) {
    if (t->dtype != MIXRT_DTYPE_STRING) return MIXRT_STATUS_OK;
    struct mixrt_string *s = t->data;
    size_t n = mixrt_tensor_numel(t);
    for (size_t i = 0; i < n; i++)
        if (!s[i].ptr) {
            s[i].ptr = mixrt_alloc(k->ctx, 1);
            if (!s[i].ptr) return MIXRT_STATUS_OUT_OF_MEMORY;
            s[i].ptr[0] = 0;
            s[i].len = 0;
        }
    return MIXRT_STATUS_OK;
}

/* Reads a 1-D int32/int64 input of at most MIXRT_MAX_RANK values. */
static mixrt_status read_small_ints(struct mixrt_kernel_ctx *k, int i, int64_t *vals, size_t *n) {
    const struct mixrt_tensor *t = NULL;
    mixrt_status status = mixrt_kernel_input(k, i, &t);
    if (status != MIXRT_STATUS_OK) return status;
    if ((t->dtype != MIXRT_DTYPE_I64 && t->dtype != MIXRT_DTYPE_I32) || t->rank != 1)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, t, "expected a 1-D i32 or i64 tensor");
    return mixrt_kernel_read_ints(k, i, vals, MIXRT_MAX_RANK, n);
}

/* ---- GridSample ---------------------------------------------------------------------------- */

enum gs_mode { GS_NEAREST, GS_LINEAR, GS_CUBIC };
enum gs_pad { GS_ZEROS, GS_BORDER, GS_REFLECTION };

/* Reflects x by the nearer border until it lies in [lo, hi] (the ONNX reference's rule). */
static double gs_reflect(double x, double lo, double hi) {
    double rng = hi - lo;
    if (!(rng > 0)) return lo;
    if (x < lo) {
        double dx = lo - x, n = floor(dx / rng), r = dx - n * rng;
        return fmod(n, 2.0) == 0 ? lo + r : hi - r;
    }
    if (x > hi) {
        double dx = x - hi, n = floor(dx / rng), r = dx - n * rng;
        return fmod(n, 2.0) == 0 ? hi - r : lo + r;
    }
    return x;
}

/* The index a tap at integer position i reads along a dim of size d, or -1 for a zero. */
static int64_t gs_tap_index(int64_t i, int64_t d, enum gs_pad pad, double lo, double hi) {
    if (i >= 0 && i < d) return i;
    if (pad == GS_ZEROS) return -1;
    if (pad == GS_BORDER) return i < 0 ? 0 : d - 1;
    int64_t j = (int64_t)gs_reflect((double)i, lo, hi);
    return j < 0 ? 0 : j >= d ? d - 1 : j;
}

/* Cubic convolution weights (A = -0.75, as PyTorch and the ONNX reference) for taps at
 * floor(x) - 1 .. floor(x) + 2, t = x - floor(x). */
static void gs_cubic_weights(double t, double w[4]) {
    const double a = -0.75;
    double x = t + 1;
    w[0] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
    x = t;
    w[1] = ((a + 2) * x - (a + 3)) * x * x + 1;
    x = 1 - t;
    w[2] = ((a + 2) * x - (a + 3)) * x * x + 1;
    x = 2 - t;
    w[3] = ((a * x - 5 * a) * x + 8 * a) * x - 4 * a;
}

#define GS_MAX_TAPS 4096

static mixrt_status run_grid_sample(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    double *x = NULL, *g = NULL, *y = NULL, *tw = NULL;
    int64_t *toff = NULL;
    size_t nx = 0, ng = 0, ny = 0, ntaps = 0;
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    MIXRT_TRY(mixrt_kernel_check_float(k, 1));
    const struct mixrt_tensor *X = k->in[0], *G = k->in[1];
    int r = X->rank - 2; /* spatial rank */
    if (r < 1) {
        status = bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, X, "expected (N, C, D1, ..., Dr) with r >= 1");
        goto fail;
    }
    if (G->rank != r + 2 || G->dims[0] != X->dims[0] || G->dims[r + 1] != r) {
        status = bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, G, "expected (N, D1_out, ..., Dr_out, r) matching X");
        goto fail;
    }
    const char *ms = mixrt_node_attr_string(k->node, "mode", k->opset >= 20 ? "linear" : "bilinear");
    const char *ps = mixrt_node_attr_string(k->node, "padding_mode", "zeros");
    enum gs_mode mode;
    enum gs_pad pad;
    if (!strcmp(ms, "bilinear") || !strcmp(ms, "linear"))
        mode = GS_LINEAR;
    else if (!strcmp(ms, "nearest"))
        mode = GS_NEAREST;
    else if (!strcmp(ms, "bicubic") || !strcmp(ms, "cubic"))
        mode = GS_CUBIC;
    else {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "mode '%s' is not linear, nearest or cubic", ms);
        goto fail;
    }
    if (!strcmp(ps, "zeros"))
        pad = GS_ZEROS;
    else if (!strcmp(ps, "border"))
        pad = GS_BORDER;
    else if (!strcmp(ps, "reflection"))
        pad = GS_REFLECTION;
    else {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                    "padding_mode '%s' is not zeros, border or reflection", ps);
        goto fail;
    }
    bool align = mixrt_node_attr_int(k->node, "align_corners", 0) != 0;
    int per_dim = mode == GS_CUBIC ? 4 : mode == GS_LINEAR ? 2 : 1;
    ntaps = 1;
    for (int d = 0; d < r; d++) {
        ntaps *= (size_t)per_dim;
        if (ntaps > GS_MAX_TAPS) {
            status = mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "%d spatial dims need more than %d taps per point",
                                        r, GS_MAX_TAPS);
            goto fail;
        }
    }
    int64_t N = X->dims[0], C = X->dims[1], odims[MIXRT_MAX_RANK];
    odims[0] = N;
    odims[1] = C;
    for (int d = 0; d < r; d++) odims[2 + d] = G->dims[1 + d];
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, X->dtype, r + 2, odims, &out));
    ny = mixrt_tensor_numel(out);
    if (ny == 0) return MIXRT_STATUS_OK;
    for (int d = 0; d < r; d++)
        if (X->dims[2 + d] == 0) {
            status = bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, X, "an empty image cannot be sampled");
            goto fail;
        }
    nx = mixrt_tensor_numel(X);
    ng = mixrt_tensor_numel(G);
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, X, &x));
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, G, &g));
    y = xcalloc(k, ny, sizeof(double));
    tw = y ? xcalloc(k, ntaps, sizeof(double)) : NULL;
    toff = tw ? xcalloc(k, ntaps, sizeof(int64_t)) : NULL;
    if (!toff) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    int64_t in_sp = 1, out_sp = 1;
    for (int d = 0; d < r; d++) {
        in_sp *= X->dims[2 + d];
        out_sp *= odims[2 + d];
    }
    for (int64_t n = 0; n < N; n++)
        for (int64_t p = 0; p < out_sp; p++) {
            /* Per spatial dim: the taps' indices (-1 for zero padding) and weights. */
            int64_t idx[MIXRT_MAX_RANK][4];
            double wt[MIXRT_MAX_RANK][4];
            const double *gp = g + (size_t)((n * out_sp + p) * r);
            for (int d = 0; d < r; d++) {
                int64_t size = X->dims[2 + d];
                double lo = align ? 0.0 : -0.5, hi = align ? (double)size - 1 : (double)size - 0.5;
                double gv = gp[r - 1 - d]; /* the grid lists x (last dim) first */
                double v = align ? (gv + 1) / 2 * (double)(size - 1) : ((gv + 1) * (double)size - 1) / 2;
                /* Non-finite coordinates land far outside (zeros) or on a border. */
                if (isnan(v)) v = lo - 2;
                if (v > 1e15) v = 1e15;
                if (v < -1e15) v = -1e15;
                if (mode == GS_NEAREST) v = nearbyint(v);
                if (v < lo || v > hi) {
                    if (pad == GS_BORDER)
                        v = v < 0 ? 0 : v > (double)(size - 1) ? (double)(size - 1) : v;
                    else if (pad == GS_REFLECTION)
                        v = gs_reflect(v, lo, hi);
                }
                if (mode == GS_NEAREST) {
                    idx[d][0] = gs_tap_index((int64_t)v, size, pad, lo, hi);
                    wt[d][0] = 1;
                } else if (mode == GS_LINEAR) {
                    double f = floor(v), t = v - f;
                    idx[d][0] = gs_tap_index((int64_t)f, size, pad, lo, hi);
                    idx[d][1] = gs_tap_index((int64_t)f + 1, size, pad, lo, hi);
                    wt[d][0] = 1 - t;
                    wt[d][1] = t;
                } else {
                    double f = floor(v);
                    gs_cubic_weights(v - f, wt[d]);
                    for (int j = 0; j < 4; j++) idx[d][j] = gs_tap_index((int64_t)f - 1 + j, size, pad, lo, hi);
                }
            }
            /* Tensor-product taps: offsets within one channel plane, -1 when any dim is a zero. */
            for (size_t t = 0; t < ntaps; t++) {
                size_t rest = t;
                int64_t off = 0;
                double w = 1;
                for (int d = r - 1; d >= 0; d--) {
                    int j = (int)(rest % (size_t)per_dim);
                    rest /= (size_t)per_dim;
                    int64_t i = idx[d][j];
                    if (i < 0 || off < 0)
                        off = -1;
                    else {
                        int64_t stride = 1;
                        for (int e = d + 1; e < r; e++) stride *= X->dims[2 + e];
                        off += i * stride;
                    }
                    w *= wt[d][j];
                }
                toff[t] = off;
                tw[t] = w;
            }
            for (int64_t c = 0; c < C; c++) {
                const double *plane = x + (size_t)((n * C + c) * in_sp);
                double acc = 0;
                for (size_t t = 0; t < ntaps; t++)
                    if (toff[t] >= 0) acc += tw[t] * plane[toff[t]];
                y[(size_t)((n * C + c) * out_sp + p)] = acc;
            }
        }
    MIXRT_TRY(mixrt_convert(out->data, out->dtype, y, MIXRT_DTYPE_F64, ny));
fail:
    xfree(k, x, nx, sizeof(double));
    xfree(k, g, ng, sizeof(double));
    xfree(k, y, ny, sizeof(double));
    xfree(k, tw, ntaps, sizeof(double));
    xfree(k, toff, ntaps, sizeof(int64_t));
    return status;
}

/* ---- Unique -------------------------------------------------------------------------------- */

/* The items Unique compares: slice a (of n along the axis) is the elements (o * n + a) * inner + i
 * for o < outer, i < inner, compared in that (row-major) order. */
struct uq_items {
    const struct mixrt_tensor *t;
    int64_t outer, n, inner;
};

/* Total order on one element pair: floats with NaN after everything (NaNs equal), unsigned 64-bit
 * as unsigned, strings bytewise then by length. */
static int uq_cmp_elem(const struct mixrt_tensor *t, size_t a, size_t b) {
    switch (t->dtype) {
    case MIXRT_DTYPE_F32:
    case MIXRT_DTYPE_F64:
    case MIXRT_DTYPE_F16:
    case MIXRT_DTYPE_BF16: {
        double x = mixrt_load_f64(t->data, t->dtype, a), y = mixrt_load_f64(t->data, t->dtype, b);
        if (isnan(x) || isnan(y)) return isnan(x) - isnan(y);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    case MIXRT_DTYPE_U64: {
        uint64_t x = ((const uint64_t *)t->data)[a], y = ((const uint64_t *)t->data)[b];
        return x < y ? -1 : x > y ? 1 : 0;
    }
    case MIXRT_DTYPE_STRING: {
        const struct mixrt_string *s = t->data;
        size_t m = s[a].len < s[b].len ? s[a].len : s[b].len;
        int c = m ? memcmp(s[a].ptr, s[b].ptr, m) : 0;
        if (c) return c < 0 ? -1 : 1;
        return s[a].len < s[b].len ? -1 : s[a].len > s[b].len ? 1 : 0;
    }
    default: {
        int64_t x = mixrt_load_i64(t->data, t->dtype, a), y = mixrt_load_i64(t->data, t->dtype, b);
        return x < y ? -1 : x > y ? 1 : 0;
    }
    }
}

static int uq_cmp(const struct uq_items *it, int64_t a, int64_t b) {
    for (int64_t o = 0; o < it->outer; o++)
        for (int64_t i = 0; i < it->inner; i++) {
            int c = uq_cmp_elem(it->t, (size_t)((o * it->n + a) * it->inner + i),
                                (size_t)((o * it->n + b) * it->inner + i));
            if (c) return c;
        }
    return 0;
}

/* Stable merge sort of v[0..n) by item order (tmp has room for n). */
static void uq_sort(const struct uq_items *it, int64_t *v, int64_t *tmp, int64_t n) {
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) tmp[o++] = uq_cmp(it, v[j], v[i]) < 0 ? v[j++] : v[i++];
            while (i < mid) tmp[o++] = v[i++];
            while (j < hi) tmp[o++] = v[j++];
        }
        memcpy(v, tmp, (size_t)n * sizeof(int64_t));
    }
}

/* Sorts v[0..n) ascending as plain integers (stable merge sort, tmp has room for n). */
static void sort_i64(int64_t *v, int64_t *tmp, int64_t n) {
    for (int64_t w = 1; w < n; w *= 2) {
        for (int64_t lo = 0; lo < n; lo += 2 * w) {
            int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
            int64_t i = lo, j = mid, o = lo;
            while (i < mid && j < hi) tmp[o++] = v[j] < v[i] ? v[j++] : v[i++];
            while (i < mid) tmp[o++] = v[i++];
            while (j < hi) tmp[o++] = v[j++];
        }
        memcpy(v, tmp, (size_t)n * sizeof(int64_t));
    }
}

static mixrt_status run_unique(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    int64_t *order = NULL, *tmp = NULL, *group = NULL, *first = NULL, *rank = NULL, *cnt = NULL;
    size_t m = 0;
    const struct mixrt_tensor *X = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &X));
    switch (X->dtype) {
    case MIXRT_DTYPE_U8:
    case MIXRT_DTYPE_U16:
    case MIXRT_DTYPE_U32:
    case MIXRT_DTYPE_U64:
    case MIXRT_DTYPE_I8:
    case MIXRT_DTYPE_I16:
    case MIXRT_DTYPE_I32:
    case MIXRT_DTYPE_I64:
    case MIXRT_DTYPE_F16:
    case MIXRT_DTYPE_F32:
    case MIXRT_DTYPE_F64:
    case MIXRT_DTYPE_BF16:
    case MIXRT_DTYPE_STRING:
    case MIXRT_DTYPE_BOOL:
        break;
    default:
        status = bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, X, "expected a numeric, bool or string tensor");
        goto fail;
    }
    const struct mixrt_attr *ax = mixrt_node_attr(k->node, "axis");
    int64_t axis = -1;
    struct uq_items it = {X, 1, (int64_t)mixrt_tensor_numel(X), 1};
    if (ax) {
        if (!mixrt_norm_axis(ax->i, X->rank, &axis)) {
            status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "axis %lld is out of range for rank %d",
                                        (long long)ax->i, X->rank);
            goto fail;
        }
        it.n = X->dims[axis];
        for (int d = 0; d < axis; d++) it.outer *= X->dims[d];
        for (int d = (int)axis + 1; d < X->rank; d++) it.inner *= X->dims[d];
    }
    /* An empty X may still have a huge axis: every slice is then equal, but inverse_indices would
     * list them all. Refused rather than attempted. */
    if (mixrt_tensor_numel(X) == 0 && it.n > INT32_MAX) {
        status = bad_input(k, MIXRT_STATUS_UNSUPPORTED, 0, X, "too many (empty) slices along the axis");
        goto fail;
    }
    bool sorted = mixrt_node_attr_int(k->node, "sorted", 1) != 0;
    m = (size_t)it.n;
    order = xcalloc(k, m, sizeof(int64_t));
    tmp = order ? xcalloc(k, m, sizeof(int64_t)) : NULL;
    group = tmp ? xcalloc(k, m, sizeof(int64_t)) : NULL;
    first = group ? xcalloc(k, m, sizeof(int64_t)) : NULL;
    rank = first ? xcalloc(k, m, sizeof(int64_t)) : NULL;
    cnt = rank ? xcalloc(k, m, sizeof(int64_t)) : NULL;
    if (!cnt) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (int64_t i = 0; i < it.n; i++) order[i] = i;
    uq_sort(&it, order, tmp, it.n);
    /* Groups in sorted order; the stable sort puts each group's first occurrence first. */
    int64_t u = 0;
    for (int64_t i = 0; i < it.n; i++) {
        if (i == 0 || uq_cmp(&it, order[i - 1], order[i]) != 0) first[u++] = order[i];
        group[order[i]] = u - 1;
        cnt[u - 1]++;
    }
    /* rank[g]: the output position of sorted group g. Unsorted output lists groups by first occurrence. */
    if (sorted) {
        for (int64_t i = 0; i < u; i++) rank[i] = i;
    } else {
        /* tmp <- group firsts in occurrence order; rank of a group = its position there. */
        memcpy(order, first, (size_t)u * sizeof(int64_t));
        sort_i64(order, tmp, u);
        for (int64_t i = 0; i < u; i++) tmp[i] = order[i];
        for (int64_t i = 0; i < u; i++) rank[group[tmp[i]]] = i;
    }
    /* pos[j] (in order[]): the sorted group shown at output position j. */
    for (int64_t gi = 0; gi < u; gi++) order[rank[gi]] = gi;
    int64_t ydims[MIXRT_MAX_RANK];
    int yrank = 1;
    if (ax) {
        yrank = X->rank;
        memcpy(ydims, X->dims, sizeof(int64_t) * (size_t)X->rank);
        ydims[axis] = u;
    } else {
        ydims[0] = u;
    }
    struct mixrt_tensor *Y = NULL, *ind = NULL, *inv = NULL, *cts = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, X->dtype, yrank, ydims, &Y));
    for (int64_t o = 0; o < it.outer; o++)
        for (int64_t j = 0; j < u; j++)
            MIXRT_TRY(copy_elems(k, Y, (size_t)((o * u + j) * it.inner), X,
                                 (size_t)((o * it.n + first[order[j]]) * it.inner), (size_t)it.inner));
    if (k->n_out > 1) {
        MIXRT_TRY(mixrt_kernel_output(k, 1, MIXRT_DTYPE_I64, 1, &u, &ind));
        for (int64_t j = 0; j < u; j++) ((int64_t *)ind->data)[j] = first[order[j]];
    }
    if (k->n_out > 2) {
        MIXRT_TRY(mixrt_kernel_output(k, 2, MIXRT_DTYPE_I64, 1, &it.n, &inv));
        for (int64_t i = 0; i < it.n; i++) ((int64_t *)inv->data)[i] = rank[group[i]];
    }
    if (k->n_out > 3) {
        MIXRT_TRY(mixrt_kernel_output(k, 3, MIXRT_DTYPE_I64, 1, &u, &cts));
        for (int64_t j = 0; j < u; j++) ((int64_t *)cts->data)[j] = cnt[order[j]];
    }
fail:
    xfree(k, order, m, sizeof(int64_t));
    xfree(k, tmp, m, sizeof(int64_t));
    xfree(k, group, m, sizeof(int64_t));
    xfree(k, first, m, sizeof(int64_t));
    xfree(k, rank, m, sizeof(int64_t));
    xfree(k, cnt, m, sizeof(int64_t));
    return status;
}

/* ---- TfIdfVectorizer ----------------------------------------------------------------------- */

/* Tokens are int64 keys: the values themselves for integer input; for strings, the rank of the
 * string among the sorted distinct pool strings, and -1 (matching nothing) when not in the pool.
 * Each n-gram length's pool entries are kept sorted for binary search. */
struct tfidf_pool {
    const int64_t *keys;  /* pool keys, all lengths concatenated */
    int64_t *sorted;      /* per entry: the entry ordinal, sorted within its length group */
    int64_t n_len;        /* number of n-gram lengths (ngram_counts size) */
    const int64_t *start; /* key offset of length g+1's group */
    int64_t *first_ord;   /* ordinal of the first entry of each group */
    int64_t *count;       /* entries per group */
};

static int tfidf_cmp_keys(const int64_t *a, const int64_t *b, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        if (a[i] != b[i]) return a[i] < b[i] ? -1 : 1;
    return 0;
}

/* The pool ordinal of the n-gram gram[0..len), or -1. */
static int64_t tfidf_find(const struct tfidf_pool *p, const int64_t *gram, int64_t len) {
    if (len < 1 || len > p->n_len) return -1;
    int64_t g = len - 1, lo = 0, hi = p->count[g];
    const int64_t *ords = p->sorted + p->first_ord[g];
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        const int64_t *e = p->keys + p->start[g] + (ords[mid] - p->first_ord[g]) * len;
        int c = tfidf_cmp_keys(e, gram, len);
        if (c == 0) return ords[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

static int str_cmp(const char *a, size_t al, const char *b, size_t bl) {
    size_t m = al < bl ? al : bl;
    int c = m ? memcmp(a, b, m) : 0;
    if (c) return c < 0 ? -1 : 1;
    return al < bl ? -1 : al > bl ? 1 : 0;
}

/* Length of string attribute element i (string_lens is optional: hand-built nodes lack it). */
static size_t pool_len(const struct mixrt_attr *a, int64_t i) {
    return a->string_lens ? a->string_lens[i] : strlen(a->strings[i]);
}

static mixrt_status run_tfidf(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    int64_t *keys = NULL, *xk = NULL, *sorted = NULL, *tmp = NULL, *first_ord = NULL, *gcount = NULL, *sidx = NULL;
    int64_t *freq = NULL, *gram = NULL;
    size_t n_pool = 0, nxk = 0, n_ent = 0, n_len = 0, n_out = 0, n_sidx = 0;
    const struct mixrt_tensor *X = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &X));
    const struct mixrt_node *nd = k->node;
    int64_t min_g = mixrt_node_attr_int(nd, "min_gram_length", 0),
            max_g = mixrt_node_attr_int(nd, "max_gram_length", 0);
    int64_t max_skip = mixrt_node_attr_int(nd, "max_skip_count", 0);
    const char *mode_s = mixrt_node_attr_string(nd, "mode", "");
    int mode = !strcmp(mode_s, "TF") ? 0 : !strcmp(mode_s, "IDF") ? 1 : !strcmp(mode_s, "TFIDF") ? 2 : -1;
    if (mode < 0) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "mode '%s' is not TF, IDF or TFIDF", mode_s);
        goto fail;
    }
    if (min_g < 1 || max_g < min_g || max_skip < 0 || max_g > 1024 || max_skip > ((int64_t)1 << 30)) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                    "min_gram_length %lld, max_gram_length %lld, max_skip_count %lld: expected 1 <= "
                                    "min <= max <= 1024 and a skip count >= 0",
                                    (long long)min_g, (long long)max_g, (long long)max_skip);
        goto fail;
    }
    size_t n_counts = 0, n_idx = 0, n_w = 0;
    const int64_t *counts = mixrt_node_attr_ints(nd, "ngram_counts", &n_counts);
    const int64_t *indexes = mixrt_node_attr_ints(nd, "ngram_indexes", &n_idx);
    const float *weights = mixrt_node_attr_floats(nd, "weights", &n_w);
    const struct mixrt_attr *pi = mixrt_node_attr(nd, "pool_int64s"), *ps = mixrt_node_attr(nd, "pool_strings");
    if ((pi != NULL) == (ps != NULL)) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                    "exactly one of pool_int64s and pool_strings must be set");
        goto fail;
    }
    bool strings = ps != NULL;
    n_pool = strings ? ps->n : pi->n;
    if (strings ? X->dtype != MIXRT_DTYPE_STRING : (X->dtype != MIXRT_DTYPE_I32 && X->dtype != MIXRT_DTYPE_I64)) {
        status =
            bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, X,
                      strings ? "expected strings (pool_strings is set)" : "expected i32 or i64 (pool_int64s is set)");
        goto fail;
    }
    if (X->rank != 1 && X->rank != 2) {
        status = bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, X, "expected [C] or [N, C]");
        goto fail;
    }
    /* Group g holds (g+1)-grams from key counts[g] to the next group's start (or the pool end). */
    n_len = n_counts;
    first_ord = xcalloc(k, n_len, sizeof(int64_t));
    gcount = first_ord ? xcalloc(k, n_len, sizeof(int64_t)) : NULL;
    if (!gcount) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (size_t g = 0; g < n_len; g++) {
        int64_t s = counts[g], e = g + 1 < n_len ? counts[g + 1] : (int64_t)n_pool;
        if (s < 0 || e < s || e > (int64_t)n_pool || (e - s) % (int64_t)(g + 1) != 0) {
            status =
                mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                   "ngram_counts[%zu] = %lld does not start a whole group of %zu-grams in a pool of "
                                   "%zu",
                                   g, (long long)s, g + 1, n_pool);
            goto fail;
        }
        first_ord[g] = (int64_t)n_ent;
        gcount[g] = (e - s) / (int64_t)(g + 1);
        n_ent += (size_t)gcount[g];
    }
    if (n_idx != n_ent || (n_w && n_w != n_ent)) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                    "the pool holds %zu n-grams but ngram_indexes has %zu and weights %zu", n_ent,
                                    n_idx, n_w);
        goto fail;
    }
    int64_t width = 0;
    for (size_t i = 0; i < n_idx; i++) {
        if (indexes[i] < 0 || indexes[i] > ((int64_t)1 << 40)) {
            status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "ngram_indexes[%zu] = %lld is out of range", i,
                                        (long long)indexes[i]);
            goto fail;
        }
        if (indexes[i] + 1 > width) width = indexes[i] + 1;
    }
    /* Weights apply per output coordinate, as ONNX Runtime and the ONNX reference do. */
    if (n_w && width > (int64_t)n_w) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                    "ngram_indexes reach coordinate %lld but weights has %zu values",
                                    (long long)width - 1, n_w);
        goto fail;
    }
    /* Pool keys. */
    keys = xcalloc(k, n_pool, sizeof(int64_t));
    if (!keys) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    if (strings) {
        /* sidx: pool string indices sorted; key = rank among distinct strings. */
        n_sidx = n_pool;
        sidx = xcalloc(k, n_pool, sizeof(int64_t));
        tmp = sidx ? xcalloc(k, n_pool, sizeof(int64_t)) : NULL;
        if (!tmp) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        for (size_t i = 0; i < n_pool; i++) sidx[i] = (int64_t)i;
        for (int64_t w = 1; w < (int64_t)n_pool; w *= 2) {
            for (int64_t lo = 0; lo < (int64_t)n_pool; lo += 2 * w) {
                int64_t mid = lo + w < (int64_t)n_pool ? lo + w : (int64_t)n_pool;
                int64_t hi = lo + 2 * w < (int64_t)n_pool ? lo + 2 * w : (int64_t)n_pool;
                int64_t i = lo, j = mid, o = lo;
                while (i < mid && j < hi)
                    tmp[o++] = str_cmp(ps->strings[sidx[j]], pool_len(ps, sidx[j]), ps->strings[sidx[i]],
                                       pool_len(ps, sidx[i])) < 0
                                   ? sidx[j++]
                                   : sidx[i++];
                while (i < mid) tmp[o++] = sidx[i++];
                while (j < hi) tmp[o++] = sidx[j++];
            }
            memcpy(sidx, tmp, n_pool * sizeof(int64_t));
        }
        /* tmp[r] = distinct rank of sorted position r. */
        int64_t rk = -1;
        for (size_t i = 0; i < n_pool; i++) {
            if (i == 0 || str_cmp(ps->strings[sidx[i - 1]], pool_len(ps, sidx[i - 1]), ps->strings[sidx[i]],
                                  pool_len(ps, sidx[i])) != 0)
                rk++;
            tmp[i] = rk;
            keys[sidx[i]] = rk;
        }
    } else {
        memcpy(keys, pi->ints, n_pool * sizeof(int64_t));
    }
    /* Input keys. */
    nxk = mixrt_tensor_numel(X);
    xk = xcalloc(k, nxk, sizeof(int64_t));
    if (!xk) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (size_t i = 0; i < nxk; i++) {
        if (!strings) {
            xk[i] = mixrt_load_i64(X->data, X->dtype, i);
            continue;
        }
        const struct mixrt_string *s = (const struct mixrt_string *)X->data + i;
        int64_t lo = 0, hi = (int64_t)n_pool;
        xk[i] = -1;
        while (lo < hi) {
            int64_t mid = lo + (hi - lo) / 2;
            int c = str_cmp(ps->strings[sidx[mid]], pool_len(ps, sidx[mid]), s->ptr, s->len);
            if (c == 0) {
                xk[i] = tmp[mid];
                break;
            }
            if (c < 0)
                lo = mid + 1;
            else
                hi = mid;
        }
    }
    /* Each group's ordinals sorted by their key tuples. */
    sorted = xcalloc(k, n_ent, sizeof(int64_t));
    int64_t *stmp = sorted ? xcalloc(k, n_ent, sizeof(int64_t)) : NULL;
    if (!stmp) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (size_t i = 0; i < n_ent; i++) sorted[i] = (int64_t)i;
    for (size_t g = 0; g < n_len; g++) {
        int64_t len = (int64_t)g + 1, n = gcount[g], *v = sorted + first_ord[g], *t2 = stmp + first_ord[g];
        const int64_t *base = keys + counts[g];
        for (int64_t w = 1; w < n; w *= 2) {
            for (int64_t lo = 0; lo < n; lo += 2 * w) {
                int64_t mid = lo + w < n ? lo + w : n, hi = lo + 2 * w < n ? lo + 2 * w : n;
                int64_t i = lo, j = mid, o = lo;
                while (i < mid && j < hi)
                    t2[o++] =
                        tfidf_cmp_keys(base + (v[j] - first_ord[g]) * len, base + (v[i] - first_ord[g]) * len, len) < 0
                            ? v[j++]
                            : v[i++];
                while (i < mid) t2[o++] = v[i++];
                while (j < hi) t2[o++] = v[j++];
            }
            memcpy(v, t2, (size_t)n * sizeof(int64_t));
        }
    }
    xfree(k, stmp, n_ent, sizeof(int64_t));
    struct tfidf_pool pool = {keys, sorted, (int64_t)n_len, counts, first_ord, gcount};

    int64_t rows = X->rank == 2 ? X->dims[0] : 1, C = X->dims[X->rank - 1];
    int64_t odims[2] = {rows, width};
    struct mixrt_tensor *out = NULL;
    if (X->rank == 2)
        MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_F32, 2, odims, &out));
    else
        MIXRT_TRY(mixrt_kernel_output(k, 0, MIXRT_DTYPE_F32, 1, &width, &out));
    if (mixrt_tensor_numel(out) == 0 || C == 0) goto fail; /* all zeros; status is OK */
    n_out = (size_t)width;
    freq = xcalloc(k, n_out, sizeof(int64_t));
    gram = freq ? xcalloc(k, (size_t)max_g, sizeof(int64_t)) : NULL;
    if (!gram) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (int64_t row = 0; row < rows; row++) {
        const int64_t *xr = xk + row * C;
        memset(freq, 0, n_out * sizeof(int64_t));
        /* Unigrams ignore the skip, so they are counted on the first skip distance only. */
        int64_t start_g = min_g;
        for (int64_t skip = 1; skip <= max_skip + 1; skip++) {
            for (int64_t s = 0; s < C; s++) {
                if (s + skip * (start_g - 1) >= C) break;
                for (int64_t n = 1; n <= max_g && s + skip * (n - 1) < C; n++) {
                    gram[n - 1] = xr[s + skip * (n - 1)];
                    if (n < start_g) continue;
                    int64_t ord = tfidf_find(&pool, gram, n);
                    if (ord >= 0) freq[indexes[ord]]++;
                }
            }
            if (start_g == 1) {
                start_g = 2;
                if (start_g > max_g) break;
            }
        }
        for (int64_t j = 0; j < width; j++) {
            double v = (double)freq[j], w = n_w ? (double)weights[j] : 1.0;
            if (mode == 1)
                v = freq[j] > 0 ? w : 0.0;
            else if (mode == 2)
                v *= w;
            ((float *)out->data)[row * width + j] = (float)v;
        }
    }
fail:
    xfree(k, keys, n_pool, sizeof(int64_t));
    xfree(k, sidx, n_sidx, sizeof(int64_t));
    xfree(k, tmp, n_sidx, sizeof(int64_t));
    xfree(k, xk, nxk, sizeof(int64_t));
    xfree(k, sorted, n_ent, sizeof(int64_t));
    xfree(k, first_ord, n_len, sizeof(int64_t));
    xfree(k, gcount, n_len, sizeof(int64_t));
    xfree(k, freq, n_out, sizeof(int64_t));
    if (gram) xfree(k, gram, (size_t)max_g, sizeof(int64_t));
    return status;
}

/* ---- Det ----------------------------------------------------------------------------------- */

static mixrt_status run_det(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    double *a = NULL, *res = NULL;
    size_t na = 0, nres = 0;
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    const struct mixrt_tensor *X = k->in[0];
    int r = X->rank;
    if (r < 2 || X->dims[r - 1] != X->dims[r - 2]) {
        status = bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, X, "expected [*, M, M]");
        goto fail;
    }
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, X->dtype, r - 2, X->dims, &out));
    nres = mixrt_tensor_numel(out);
    if (nres == 0) return MIXRT_STATUS_OK;
    na = mixrt_tensor_numel(X);
    int64_t M = X->dims[r - 1];
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, X, &a));
    res = xcalloc(k, nres, sizeof(double));
    if (!res) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    /* LU with partial pivoting, in place on each matrix of the double copy. */
    for (size_t b = 0; b < nres; b++) {
        double *m = a + b * (size_t)(M * M), det = 1.0;
        for (int64_t c = 0; c < M; c++) {
            int64_t p = c;
            for (int64_t i = c + 1; i < M; i++)
                if (fabs(m[i * M + c]) > fabs(m[p * M + c])) p = i;
            if (m[p * M + c] == 0.0) {
                det = 0.0;
                break;
            }
            if (p != c) {
                for (int64_t j = 0; j < M; j++) {
                    double t = m[c * M + j];
                    m[c * M + j] = m[p * M + j];
                    m[p * M + j] = t;
                }
                det = -det;
            }
            double piv = m[c * M + c];
            det *= piv;
            for (int64_t i = c + 1; i < M; i++) {
                double f = m[i * M + c] / piv;
                if (f == 0.0) continue;
                for (int64_t j = c + 1; j < M; j++) m[i * M + j] -= f * m[c * M + j];
            }
        }
        res[b] = det;
    }
    MIXRT_TRY(mixrt_convert(out->data, out->dtype, res, MIXRT_DTYPE_F64, nres));
fail:
    xfree(k, a, na, sizeof(double));
    xfree(k, res, nres, sizeof(double));
    return status;
}

/* ---- CenterCropPad ------------------------------------------------------------------------- */

/* Per axis: crop a centered window (start floor((dim - target) / 2)) or pad around the input
 * (offset floor((target - dim) / 2)); the other elements are zero / "". */
static mixrt_status run_center_crop_pad(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *X = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &X));
    if (X->dtype == MIXRT_DTYPE_STRING ? false : mixrt_dtype_size(X->dtype) == 0) {
        status = bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, X, "a type without a byte size");
        goto fail;
    }
    int r = X->rank;
    int64_t shape[MIXRT_MAX_RANK];
    size_t ns = 0, na = 0;
    MIXRT_TRY(read_small_ints(k, 1, shape, &ns));
    const int64_t *axes_a = mixrt_node_attr_ints(k->node, "axes", &na);
    int64_t axes[MIXRT_MAX_RANK];
    if (na == 0 && !mixrt_node_attr(k->node, "axes")) {
        na = (size_t)r;
        for (int d = 0; d < r; d++) axes[d] = d;
    } else {
        if (na > (size_t)r) {
            status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "%zu axes for a rank-%d input", na, r);
            goto fail;
        }
        for (size_t i = 0; i < na; i++) {
            if (!mixrt_norm_axis(axes_a[i], r, &axes[i])) {
                status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                            "axes[%zu] = %lld is out of range for rank %d", i, (long long)axes_a[i], r);
                goto fail;
            }
            for (size_t j = 0; j < i; j++)
                if (axes[j] == axes[i]) {
                    status =
                        mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "axis %lld is repeated", (long long)axes[i]);
                    goto fail;
                }
        }
    }
    if (ns != na) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "shape has %zu values for %zu axes", ns, na);
        goto fail;
    }
    int64_t odims[MIXRT_MAX_RANK], shift[MIXRT_MAX_RANK]; /* in index = out index + shift */
    for (int d = 0; d < r; d++) {
        odims[d] = X->dims[d];
        shift[d] = 0;
    }
    for (size_t i = 0; i < na; i++) {
        int64_t a = axes[i], dim = X->dims[a], t = shape[i];
        if (t < 0) {
            status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "shape[%zu] is %lld", i, (long long)t);
            goto fail;
        }
        odims[a] = t;
        shift[a] = t <= dim ? (dim - t) / 2 : -((t - dim) / 2);
    }
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, X->dtype, r, odims, &out));
    /* An empty input gives all padding (and may have dims whose products overflow). */
    size_t n = mixrt_tensor_numel(X) ? mixrt_tensor_numel(out) : 0;
    int64_t idx[MIXRT_MAX_RANK] = {0}, st[MIXRT_MAX_RANK];
    int64_t s = 1;
    for (int d = r - 1; d >= 0; d--) {
        st[d] = s;
        s *= X->dims[d];
    }
    for (size_t o = 0; o < n; o++) {
        int64_t off = 0;
        bool inside = true;
        for (int d = 0; d < r && inside; d++) {
            int64_t i = idx[d] + shift[d];
            if (i < 0 || i >= X->dims[d])
                inside = false;
            else
                off += i * st[d];
        }
        if (inside) MIXRT_TRY(copy_elems(k, out, o, X, (size_t)off, 1));
        for (int d = r - 1; d >= 0; d--) {
            if (++idx[d] < odims[d]) break;
            idx[d] = 0;
        }
    }
    MIXRT_TRY(fill_empty_strings(k, out));
fail:
    return status;
}

/* ---- Col2Im -------------------------------------------------------------------------------- */

/* Sums the columns of [N, C * prod(block), L] back into [N, C, image...]: column (c, kk) of block l
 * lands at image position l_d * stride_d - pad_begin_d + kk_d * dilation_d (dropped when outside). */
static mixrt_status run_col2im(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    double *x = NULL, *y = NULL;
    int64_t *xi = NULL, *yi = NULL;
    size_t nx = 0, ny = 0;
    const struct mixrt_tensor *X = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &X));
    bool is_float = mixrt_dtype_is_float(X->dtype) != 0;
    if (!is_float && !mixrt_dtype_is_int(X->dtype)) {
        status = bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, X, "expected a float or integer tensor");
        goto fail;
    }
    if (X->rank != 3) {
        status = bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, X, "expected [N, C * prod(block_shape), L]");
        goto fail;
    }
    int64_t img[MIXRT_MAX_RANK], blk[MIXRT_MAX_RANK];
    size_t ni = 0, nb = 0;
    MIXRT_TRY(read_small_ints(k, 1, img, &ni));
    MIXRT_TRY(read_small_ints(k, 2, blk, &nb));
    if (ni != nb || ni < 1 || ni > MIXRT_MAX_RANK - 2) {
        status =
            mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                               "image_shape has %zu values and block_shape %zu: expected one per spatial dim (1 to %d)",
                               ni, nb, MIXRT_MAX_RANK - 2);
        goto fail;
    }
    int nd = (int)ni;
    size_t n_dil = 0, n_pad = 0, n_str = 0;
    const int64_t *dil_a = mixrt_node_attr_ints(k->node, "dilations", &n_dil);
    const int64_t *pad_a = mixrt_node_attr_ints(k->node, "pads", &n_pad);
    const int64_t *str_a = mixrt_node_attr_ints(k->node, "strides", &n_str);
    if ((n_dil && n_dil != ni) || (n_pad && n_pad != 2 * ni) || (n_str && n_str != ni)) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                    "dilations (%zu), pads (%zu) and strides (%zu) must have %zu, %zu and %zu values",
                                    n_dil, n_pad, n_str, ni, 2 * ni, ni);
        goto fail;
    }
    int64_t dil[MIXRT_MAX_RANK], pb[MIXRT_MAX_RANK], str[MIXRT_MAX_RANK], nbl[MIXRT_MAX_RANK];
    int64_t kprod = 1, lprod = 1;
    /* Bounds for the products: X's dims (0 stands for "any": C or L may be 0). */
    int64_t lim1 = X->dims[1] ? X->dims[1] : (int64_t)1 << 40, lim2 = X->dims[2] ? X->dims[2] : (int64_t)1 << 40;
    for (int d = 0; d < nd; d++) {
        dil[d] = n_dil ? dil_a[d] : 1;
        str[d] = n_str ? str_a[d] : 1;
        pb[d] = n_pad ? pad_a[d] : 0;
        int64_t pe = n_pad ? pad_a[d + nd] : 0;
        const int64_t lim = (int64_t)1 << 31;
        if (img[d] < 0 || img[d] > lim || blk[d] < 1 || blk[d] > lim || dil[d] < 1 || dil[d] > lim || str[d] < 1 ||
            str[d] > lim || pb[d] < 0 || pb[d] > lim || pe < 0 || pe > lim) {
            status =
                mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                   "dim %d: image %lld, block %lld, dilation %lld, stride %lld, pads %lld/%lld out of "
                                   "range",
                                   d, (long long)img[d], (long long)blk[d], (long long)dil[d], (long long)str[d],
                                   (long long)pb[d], (long long)pe);
            goto fail;
        }
        int64_t span = dil[d] * (blk[d] - 1) + 1, padded = img[d] + pb[d] + pe;
        nbl[d] = padded >= span ? (padded - span) / str[d] + 1 : 0;
        /* Products bounded by X's dims (which may be huge when X is empty) never overflow. */
        if (blk[d] > lim1 / kprod || (nbl[d] && lprod > lim2 / nbl[d])) {
            kprod = -1;
            break;
        }
        kprod *= blk[d];
        lprod *= nbl[d];
    }
    if (kprod <= 0 || X->dims[1] % kprod != 0 || lprod != X->dims[2]) {
        status = bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, X,
                           "its dims 1 and 2 must be C * prod(block_shape) and the number of blocks");
        goto fail;
    }
    int64_t N = X->dims[0], C = X->dims[1] / kprod, L = lprod;
    int64_t odims[MIXRT_MAX_RANK];
    odims[0] = N;
    odims[1] = C;
    for (int d = 0; d < nd; d++) odims[2 + d] = img[d];
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, X->dtype, nd + 2, odims, &out));
    ny = mixrt_tensor_numel(out);
    nx = mixrt_tensor_numel(X);
    if (ny == 0 || nx == 0) return MIXRT_STATUS_OK;
    int64_t isz = 1;
    for (int d = 0; d < nd; d++) isz *= img[d];
    if (is_float) {
        MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, X, &x));
        y = xcalloc(k, ny, sizeof(double));
    } else {
        MIXRT_TRY(mixrt_tensor_to_i64(k->ctx, X, &xi));
        yi = xcalloc(k, ny, sizeof(int64_t));
    }
    if (!y && !yi) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    for (int64_t kk = 0; kk < kprod; kk++) {
        int64_t ko[MIXRT_MAX_RANK], rest = kk;
        for (int d = nd - 1; d >= 0; d--) {
            ko[d] = rest % blk[d];
            rest /= blk[d];
        }
        for (int64_t l = 0; l < L; l++) {
            int64_t off = 0;
            bool inside = true;
            rest = l;
            for (int d = nd - 1; d >= 0; d--) {
                int64_t lo = rest % nbl[d];
                rest /= nbl[d];
                int64_t pos = lo * str[d] - pb[d] + ko[d] * dil[d];
                if (pos < 0 || pos >= img[d]) {
                    inside = false;
                    break;
                }
                int64_t stride = 1;
                for (int e = d + 1; e < nd; e++) stride *= img[e];
                off += pos * stride;
            }
            if (!inside) continue;
            for (int64_t n = 0; n < N; n++)
                for (int64_t c = 0; c < C; c++) {
                    size_t src = (size_t)(((n * C + c) * kprod + kk) * L + l), dst = (size_t)((n * C + c) * isz + off);
                    if (y)
                        y[dst] += x[src];
                    else
                        yi[dst] = (int64_t)((uint64_t)yi[dst] + (uint64_t)xi[src]); /* wraps like the type would */
                }
        }
    }
    if (y)
        MIXRT_TRY(mixrt_convert(out->data, out->dtype, y, MIXRT_DTYPE_F64, ny));
    else
        for (size_t i = 0; i < ny; i++) mixrt_store_i64(out->data, out->dtype, i, yi[i]);
fail:
    xfree(k, x, nx, sizeof(double));
    xfree(k, xi, nx, sizeof(int64_t));
    xfree(k, y, ny, sizeof(double));
    xfree(k, yi, ny, sizeof(int64_t));
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_extra[] = {
    {"", "GridSample", 16, 23, run_grid_sample},
    {"", "Unique", 11, 23, run_unique},
    {"", "TfIdfVectorizer", 9, 23, run_tfidf},
    {"", "Det", 11, 23, run_det},
    {"", "CenterCropPad", 18, 23, run_center_crop_pad},
    {"", "Col2Im", 18, 23, run_col2im},
    {NULL, NULL, 0, 0, NULL},
};
