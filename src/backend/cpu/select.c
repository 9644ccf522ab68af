/* select.c - fast CPU kernel candidates for ArgMax, ArgMin and TopK on f32 along an axis whose
 * trailing dims are all 1 (the last axis in practice: a vocabulary of logits per row): rows
 * split over the threads, each scanned by select_avx512.c or the scalar twin here; and CumSum
 * on f32 along any axis (f64 running sums, as the reference, 8 rows at a time).
 * Invariant: results equal the reference kernels' (ref_reduce.c) element for element; any
 * other case (dtype, axis, a large k, bad attributes or inputs) runs the reference kernel, so
 * errors read the same. */
#include <stdio.h>
#include <string.h>

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/select_impl.h"

#ifdef _OPENMP
#include <omp.h>
#endif

/* ---- scalar twins ------------------------------------------------------------------------ */

size_t mixrt_sel_arg_scalar(const float *x, size_t len, bool is_max, bool last) {
    size_t best = 0;
    float bv = x[0];
    bool bnan = bv != bv;
    for (size_t j = 1; j < len; j++) {
        float v = x[j];
        bool vnan = v != v;
        /* NaN wins for both (numpy's rule), as in the reference */
        int cmp = vnan ? (bnan ? 0 : (is_max ? 1 : -1)) : bnan ? (is_max ? -1 : 1) : (v > bv) - (v < bv);
        if (!is_max) cmp = -cmp;
        if (cmp > 0 || (cmp == 0 && last)) best = j, bv = v, bnan = vnan;
    }
    return best;
}

void mixrt_sel_topk_scalar(const float *x, size_t len, size_t k, bool largest, float *vals, int64_t *idx) {
    size_t n = 0;
    for (size_t j = 0; j < len; j++)
        if (n < k || mixrt_sel_before(x[j], (int64_t)j, vals[k - 1], idx[k - 1], largest))
            mixrt_sel_insert(vals, idx, &n, k, x[j], (int64_t)j, largest);
}

static int g_force_scalar; /* tests: the scalar twins on an AVX-512 machine */
void mixrt_select_force_scalar(bool scalar) { g_force_scalar = scalar; }

static bool use_avx512(void) { return !g_force_scalar && mixrt_elt_has_avx512(); }

/* ---- kernels ----------------------------------------------------------------------------- */

/* f32 input 0 (as the graph types it); shapes are checked at run time. */
static bool select_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    int x = n->n_inputs > 0 ? n->inputs[0] : -1;
    if (x < 0 || g->values[x].dtype != MIXRT_DTYPE_F32) {
        if (why) snprintf(why, why_size, "input is not f32");
        return false;
    }
    return true;
}

/* Whether axis_raw (normalized into *axis) and every dim after it leave rows of len
 * contiguous values (trailing dims 1): outer rows. */
static bool rows_of(const struct mixrt_tensor *x, int64_t axis_raw, int *axis_out, size_t *outer, size_t *len) {
    if (x->rank < 1 || axis_raw < -x->rank || axis_raw >= x->rank) return false;
    int axis = (int)(axis_raw < 0 ? axis_raw + x->rank : axis_raw);
    *axis_out = axis;
    size_t o = 1;
    for (int d = 0; d < axis; d++) o *= (size_t)x->dims[d];
    for (int d = axis + 1; d < x->rank; d++)
        if (x->dims[d] != 1) return false;
    *outer = o;
    *len = (size_t)x->dims[axis];
    return *len >= 1 && *len < ((size_t)1 << 31);
}

/* Threads for rows of len values: one per 64K values scanned, at most one per row. */
static int threads_for(size_t outer, size_t len) {
    int nt = 1;
#ifdef _OPENMP
    if (outer >= 2 && outer * len >= 65536) nt = omp_get_max_threads();
    if ((size_t)nt > outer) nt = (int)outer;
#endif
    (void)len;
    return nt;
}

static mixrt_status run_arg(struct mixrt_kernel_ctx *k, bool is_max) {
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    size_t outer, len;
    int axis;
    if (!x || x->dtype != MIXRT_DTYPE_F32 || !rows_of(x, mixrt_node_attr_int(k->node, "axis", 0), &axis, &outer, &len))
        return mixrt_cpu_run_reference(k);
    bool keep = mixrt_node_attr_int(k->node, "keepdims", 1) != 0;
    bool last = k->opset >= 12 && mixrt_node_attr_int(k->node, "select_last_index", 0) != 0;
    int orank = 0;
    int64_t odims[MIXRT_MAX_RANK];
    for (int d = 0; d < x->rank; d++) {
        if (d != axis) odims[orank++] = x->dims[d];
        else if (keep) odims[orank++] = 1;
    }
    struct mixrt_tensor *out;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_I64, orank, odims, &out);
    if (status != MIXRT_STATUS_OK) return status;
    const float *xf = x->data;
    int64_t *o = out->data;
    mixrt_sel_arg_fn fn = use_avx512() ? mixrt_sel_arg_avx512 : mixrt_sel_arg_scalar;
    int nt = threads_for(outer, len);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (long long r = 0; r < (long long)outer; r++) o[r] = (int64_t)fn(xf + (size_t)r * len, len, is_max, last);
    return MIXRT_STATUS_OK;
}

static mixrt_status run_argmax(struct mixrt_kernel_ctx *k) { return run_arg(k, true); }
static mixrt_status run_argmin(struct mixrt_kernel_ctx *k) { return run_arg(k, false); }

/* ---- TopK of a large k ---------------------------------------------------------------------
 * Where k * 16 >= len (detection heads: the 300 best of ~3000 anchors per class) the reference
 * sorts the whole row by a comparison function. Here each element becomes one 64-bit key whose
 * ascending order is the reference's order: the f32's bits mapped to an unsigned order (NaN
 * above every number, -0 as +0, as its comparison has them), inverted for largest, the index in
 * the low 32 bits (ties by index; len < 2^31). The k smallest keys are kept in a max-heap (a key
 * under its root replaces the root), which is then sorted in place: n log k whatever the data. */

static inline uint64_t topk_key(float v, size_t j, bool largest) {
    uint32_t b;
    if (v != v) {
        b = 0xFFFFFFFFu;
    } else {
        if (v == 0.0f) v = 0.0f; /* -0 ties with +0 */
        memcpy(&b, &v, sizeof b);
        b = (b & 0x80000000u) ? ~b : (b | 0x80000000u);
    }
    if (largest) b = ~b;
    return ((uint64_t)b << 32) | (uint64_t)(uint32_t)j;
}

/* Sift-down from i in the max-heap h[0..n). */
static void key_sift(uint64_t *h, size_t n, size_t i) {
    const uint64_t v = h[i];
    for (size_t c; (c = 2 * i + 1) < n; i = c) {
        if (c + 1 < n && h[c + 1] > h[c]) c++;
        if (v >= h[c]) break;
        h[i] = h[c];
    }
    h[i] = v;
}

void mixrt_sel_topk_keys(const float *x, size_t len, size_t k, bool largest, uint64_t *heap, float *vals,
                         int64_t *idx) {
    for (size_t j = 0; j < k; j++) heap[j] = topk_key(x[j], j, largest);
    for (size_t i = k / 2; i-- > 0;) key_sift(heap, k, i);
    for (size_t j = k; j < len; j++) {
        const uint64_t key = topk_key(x[j], j, largest);
        if (key < heap[0]) heap[0] = key, key_sift(heap, k, 0);
    }
    for (size_t e = k; e-- > 1;) { /* heapsort: ascending */
        const uint64_t top = heap[0];
        heap[0] = heap[e], heap[e] = top;
        key_sift(heap, e, 0);
    }
    for (size_t j = 0; j < k; j++) {
        const uint32_t i = (uint32_t)heap[j];
        vals[j] = x[i];
        idx[j] = (int64_t)i;
    }
}

/* TopK along the rows: a small k (k * 16 < len, like the reference's selection path) by the
 * scans of select_avx512.c or the scalar twin, a larger one by the keys above (their scratch k
 * keys per thread). */
static mixrt_status run_topk(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL, *kt = k->n_in > 1 ? k->in[1] : NULL;
    size_t outer, len;
    int axis;
    if (!x || x->dtype != MIXRT_DTYPE_F32 || k->opset < 10 || !kt || !mixrt_dtype_is_int(kt->dtype) ||
        mixrt_tensor_numel(kt) != 1 || kt->rank > 1 ||
        !rows_of(x, mixrt_node_attr_int(k->node, "axis", -1), &axis, &outer, &len))
        return mixrt_cpu_run_reference(k);
    int64_t kk = mixrt_load_i64(kt->data, kt->dtype, 0);
    if (kk < 1 || (uint64_t)kk > len) return mixrt_cpu_run_reference(k);
    const bool large = (uint64_t)kk * 16 >= len;
    bool largest = k->opset < 11 || mixrt_node_attr_int(k->node, "largest", 1) != 0;
    int64_t odims[MIXRT_MAX_RANK];
    memcpy(odims, x->dims, sizeof(odims));
    odims[axis] = kk;
    struct mixrt_tensor *vals, *inds;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_F32, x->rank, odims, &vals);
    if (status == MIXRT_STATUS_OK) status = mixrt_kernel_output_uninit(k, 1, MIXRT_DTYPE_I64, x->rank, odims, &inds);
    if (status != MIXRT_STATUS_OK) return status;
    const float *xf = x->data;
    float *ov = vals->data;
    int64_t *oi = inds->data;
    size_t K = (size_t)kk;
    mixrt_sel_topk_fn fn = use_avx512() ? mixrt_sel_topk_avx512 : mixrt_sel_topk_scalar;
    int nt = threads_for(outer, len);
    uint64_t *keys = NULL;
    bool owned = false;
    const size_t key_bytes = large ? (size_t)nt * K * sizeof(uint64_t) : 0;
    if (large && !(keys = mixrt_kernel_scratch(k, key_bytes, &owned)))
        return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of scratch", key_bytes);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (long long r = 0; r < (long long)outer; r++) {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        if (large)
            mixrt_sel_topk_keys(xf + (size_t)r * len, len, K, largest, keys + (size_t)t * K, ov + (size_t)r * K,
                                oi + (size_t)r * K);
        else
            fn(xf + (size_t)r * len, len, K, largest, ov + (size_t)r * K, oi + (size_t)r * K);
    }
    if (owned) mixrt_free(k->ctx, keys, key_bytes);
    return MIXRT_STATUS_OK;
}

/* CumSum of f32 along any axis: the reference's sums exactly (f64, in order, each output
 * rounded once), read and written in place. Rows of the axis (inner == 1) go 8 at a time, so
 * 8 independent additions are in flight instead of one chain; inner > 1 runs the inner
 * columns side by side. Rows / outer slices over the threads. */
static void cumsum_rows(const float *x, float *y, size_t len, size_t n_rows, bool excl, bool rev) {
    enum { R = 8 };
    size_t r = 0;
    for (; r + R <= n_rows; r += R) {
        double acc[R] = {0};
        for (size_t s = 0; s < len; s++) {
            size_t j = rev ? len - 1 - s : s;
            for (int q = 0; q < R; q++) {
                size_t e = (r + (size_t)q) * len + j;
                double v = (double)x[e];
                if (!excl) acc[q] += v;
                y[e] = (float)acc[q];
                if (excl) acc[q] += v;
            }
        }
    }
    for (; r < n_rows; r++) {
        double acc = 0;
        for (size_t s = 0; s < len; s++) {
            size_t e = r * len + (rev ? len - 1 - s : s);
            double v = (double)x[e];
            if (!excl) acc += v;
            y[e] = (float)acc;
            if (excl) acc += v;
        }
    }
}

static mixrt_status run_cumsum(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL, *at = k->n_in > 1 ? k->in[1] : NULL;
    if (!x || x->dtype != MIXRT_DTYPE_F32 || x->rank < 1 || !at || !mixrt_dtype_is_int(at->dtype) ||
        mixrt_tensor_numel(at) != 1 || at->rank > 1)
        return mixrt_cpu_run_reference(k);
    int64_t axis = mixrt_load_i64(at->data, at->dtype, 0);
    if (axis < -x->rank || axis >= x->rank) return mixrt_cpu_run_reference(k);
    if (axis < 0) axis += x->rank;
    size_t outer = 1, len = (size_t)x->dims[axis], inner = 1;
    for (int d = 0; d < axis; d++) outer *= (size_t)x->dims[d];
    for (int d = (int)axis + 1; d < x->rank; d++) inner *= (size_t)x->dims[d];
    bool excl = mixrt_node_attr_int(k->node, "exclusive", 0) != 0, rev = mixrt_node_attr_int(k->node, "reverse", 0) != 0;
    struct mixrt_tensor *out;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_F32, x->rank, x->dims, &out);
    if (status != MIXRT_STATUS_OK || len == 0 || outer * inner == 0) return status;
    const float *xf = x->data;
    float *yf = out->data;
    if (inner == 1) {
        size_t chunks = (outer + 7) / 8; /* groups of 8 rows, split over the threads */
        int nt = threads_for(chunks, len * 8);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
        for (long long c = 0; c < (long long)chunks; c++) {
            size_t r0 = (size_t)c * 8, nr = outer - r0 < 8 ? outer - r0 : 8;
            cumsum_rows(xf + r0 * len, yf + r0 * len, len, nr, excl, rev);
        }
        return MIXRT_STATUS_OK;
    }
    double *acc = mixrt_calloc(k->ctx, outer * inner, sizeof(double));
    if (!acc) return MIXRT_STATUS_OUT_OF_MEMORY;
    int nt = threads_for(outer, len * inner);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (long long a = 0; a < (long long)outer; a++) {
        double *ac = acc + (size_t)a * inner;
        for (size_t s = 0; s < len; s++) {
            size_t j = rev ? len - 1 - s : s;
            const float *xr = xf + ((size_t)a * len + j) * inner;
            float *yr = yf + ((size_t)a * len + j) * inner;
            if (excl)
                for (size_t c = 0; c < inner; c++) yr[c] = (float)ac[c], ac[c] += (double)xr[c];
            else
                for (size_t c = 0; c < inner; c++) ac[c] += (double)xr[c], yr[c] = (float)ac[c];
        }
    }
    mixrt_free(k->ctx, acc, outer * inner * sizeof(double));
    return MIXRT_STATUS_OK;
}

const struct mixrt_cpu_kernel mixrt_select_kernels[] = {
    {"sel_argmax", "", "ArgMax", select_supports, NULL, NULL, run_argmax},
    {"sel_argmin", "", "ArgMin", select_supports, NULL, NULL, run_argmin},
    {"sel_topk", "", "TopK", select_supports, NULL, NULL, run_topk},
    {"sel_cumsum", "", "CumSum", select_supports, NULL, NULL, run_cumsum},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
