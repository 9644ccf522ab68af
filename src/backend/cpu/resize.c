/* resize.c - a fast CPU kernel candidate for Resize in linear mode on 4-D f32 / bf16 / f16
 * tensors whose N and C are kept (an image or feature map upsampled, as segmentation heads
 * and feature pyramids do): per output row, the two input rows of its H taps are blended into
 * one f32 row, then each output column takes its W taps from that row (resize_avx512.c: 16
 * columns per two permutes). Separable and in f32, so it is not bit-identical to the reference
 * (which sums the four products in f64): within a few f32 ulps, one rounding to a 16-bit
 * output; the builder times it against dm_resize, which is exact. The taps are the reference's
 * (datamove.c's rz_taps, every coordinate transformation). Anything else runs the reference. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/kernels.h"
#include "backend/cpu/resize_impl.h"

static bool forced_scalar;
/* Below this many output bytes, one thread: a guess at where waking the pool stops paying (not
 * measured). SegFormer's bf16 [1, 256, 128, 128] outputs (8 MiB) take 0.43-0.48 ms on two. */
#define RZ_PAR_BYTES_DEFAULT ((size_t)256 << 10)
static size_t par_bytes_override;

void mixrt_rz_force_scalar(bool on) { forced_scalar = on; }
void mixrt_rz_set_parallel_bytes(size_t bytes) { par_bytes_override = bytes; }

bool mixrt_rz_has_avx512(void) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    const char *e = getenv("MIXRT_RESIZE_ISA");
    return f->avx512f && f->avx512bw && f->avx512vl && !forced_scalar && !(e && !strcmp(e, "scalar"));
#else
    return false;
#endif
}

void mixrt_rz_vpass_scalar(mixrt_dtype dt, const void *xa, const void *xb, float wa, float wb, float *t,
                           float *scratch, int64_t n) {
    if (dt == MIXRT_DTYPE_F32) {
        const float *a = xa, *b = xb;
        if (b)
            for (int64_t j = 0; j < n; j++) t[j] = wa * a[j] + wb * b[j];
        else
            for (int64_t j = 0; j < n; j++) t[j] = wa * a[j];
        return;
    }
    mixrt_convert(t, MIXRT_DTYPE_F32, xa, dt, (size_t)n);
    if (!xb) {
        for (int64_t j = 0; j < n; j++) t[j] *= wa;
        return;
    }
    mixrt_convert(scratch, MIXRT_DTYPE_F32, xb, dt, (size_t)n);
    for (int64_t j = 0; j < n; j++) t[j] = wa * t[j] + wb * scratch[j];
}

void mixrt_rz_hpass_scalar(const struct mixrt_rz_cols *c, const float *t, float *y) {
    for (int64_t w = 0; w < c->n; w++) {
        float a = c->w0[w] * t[c->i0[w]];
        if (c->two[w / 16] >> (w % 16) & 1) a += c->w1[w] * t[c->i1[w]];
        y[w] = a;
    }
}

static bool rz_dtype(mixrt_dtype dt) {
    return dt == MIXRT_DTYPE_F32 || dt == MIXRT_DTYPE_BF16 || dt == MIXRT_DTYPE_F16;
}

static bool rz_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!mixrt_resize_supports(g, n, true, why, why_size)) return false;
    const struct mixrt_value *x = &g->values[n->inputs[0]];
    if (!rz_dtype(x->dtype)) {
        if (why && why_size) snprintf(why, why_size, "Resize linear on %s (f32, bf16, f16 only)", mixrt_dtype_name(x->dtype));
        return false;
    }
    return true;
}

/* The axis keeps its length and maps each coordinate onto itself: one tap of weight 1, or two
 * taps on it whose weights sum to exactly 1 (pytorch_half_pixel on a length-1 axis: 0.5 + 0.5).
 * Every coordinate transformation is affine in the output coordinate, so coordinates 0, 1 and the
 * last decide for all (a C of 2048 would otherwise cost 2048 attribute lookups per run). */
static bool axis_kept(const struct mixrt_node *n, int64_t len, int64_t out, double s) {
    if (out != len) return false;
    const int64_t probe[3] = {0, 1, len - 1};
    for (int p = 0; p < 3; p++) {
        const int64_t i = probe[p];
        if (i < 0 || i >= len) continue;
        int64_t idx[2];
        double w[2];
        int cnt;
        mixrt_resize_axis_taps(n, len, out, s, i, idx, w, &cnt);
        if (idx[0] != i || (cnt == 1 && w[0] != 1.0) || (cnt == 2 && (idx[1] != i || w[0] + w[1] != 1.0)) || cnt < 1 ||
            cnt > 2)
            return false;
    }
    return true;
}

struct rz_rows {
    int32_t i0, i1;
    float w0, w1;
    bool two;
};

/* The taps of one resize: per output row (H) and per output column (W, padded to blocks of 16
 * with the permute windows), in one allocation of bytes. */
struct rz_tables {
    struct rz_rows *rows;
    struct mixrt_rz_cols cols;
    void *mem;
    size_t bytes;
};

static mixrt_status rz_tables_make(struct mixrt_kernel_ctx *k, const struct mixrt_node *n, int64_t H, int64_t OH,
                                   double sh, int64_t W, int64_t OW, double sw, struct rz_tables *T) {
    const int64_t nb = (OW + 15) / 16, np = nb * 16;
    T->bytes = (size_t)OH * sizeof(struct rz_rows) + (size_t)np * (5 * sizeof(int32_t) + 2 * sizeof(float)) +
               (size_t)nb * (sizeof(int32_t) + sizeof(uint16_t));
    char *tab = T->mem = mixrt_alloc(k->ctx, T->bytes);
    if (!tab) return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the resize tables");
    memset(tab, 0, T->bytes);
    struct rz_rows *rows = T->rows = (struct rz_rows *)tab;
    int32_t *i0 = (int32_t *)(rows + OH), *i1 = i0 + np, *r0 = i1 + np, *r1 = r0 + np, *base = r1 + np;
    float *w0 = (float *)(base + nb), *w1 = w0 + np;
    uint16_t *two = (uint16_t *)(w1 + np);
    for (int64_t h = 0; h < OH; h++) {
        int64_t idx[2];
        double w[2];
        int cnt;
        mixrt_resize_axis_taps(n, H, OH, sh, h, idx, w, &cnt);
        rows[h] = (struct rz_rows){(int32_t)idx[0], (int32_t)(cnt > 1 ? idx[1] : idx[0]), (float)w[0],
                                   cnt > 1 ? (float)w[1] : 0.0f, cnt > 1};
    }
    for (int64_t c = 0; c < OW; c++) {
        int64_t idx[2];
        double w[2];
        int cnt;
        mixrt_resize_axis_taps(n, W, OW, sw, c, idx, w, &cnt);
        i0[c] = (int32_t)idx[0], w0[c] = (float)w[0];
        i1[c] = (int32_t)(cnt > 1 ? idx[1] : idx[0]), w1[c] = cnt > 1 ? (float)w[1] : 0.0f;
        if (cnt > 1) two[c / 16] |= (uint16_t)(1u << (c % 16));
    }
    for (int64_t b = 0; b < nb; b++) {
        int32_t lo = INT32_MAX, hi = 0;
        for (int64_t c = b * 16; c < b * 16 + 16 && c < OW; c++) {
            lo = i0[c] < lo ? i0[c] : lo, lo = i1[c] < lo ? i1[c] : lo;
            hi = i0[c] > hi ? i0[c] : hi, hi = i1[c] > hi ? i1[c] : hi;
        }
        base[b] = hi - lo < 32 ? lo : -1;
        for (int64_t c = b * 16; c < b * 16 + 16 && base[b] >= 0; c++)
            r0[c] = c < OW ? i0[c] - lo : 0, r1[c] = c < OW ? i1[c] - lo : 0;
    }
    T->cols = (struct mixrt_rz_cols){OW, nb, i0, i1, r0, r1, base, w0, w1, two};
    return MIXRT_STATUS_OK;
}

/* Threads for nout output elements of es bytes over nrows rows. */
static int rz_threads(size_t nout, size_t es, int64_t nrows) {
    int nt = 1;
#ifdef _OPENMP
    size_t lim = par_bytes_override ? par_bytes_override : RZ_PAR_BYTES_DEFAULT;
    if (nout * es >= lim && nrows > 1) nt = omp_get_max_threads() < nrows ? omp_get_max_threads() : (int)nrows;
    if (nt < 1) nt = 1;
#else
    (void)nout, (void)es, (void)nrows;
#endif
    return nt;
}

static int rz_thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static mixrt_status rz_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    double sc[4];
    int64_t od[4];
    if (!x || !x->data || x->rank != 4 || !rz_dtype(x->dtype) || k->opset < 11 ||
        mixrt_resize_mode(k->node) != 1 ||
        !mixrt_resize_geometry(k->node, x->dims, mixrt_kernel_opt_input(k, 2), mixrt_kernel_opt_input(k, 3), od, sc))
        return mixrt_cpu_run_reference(k);
    const int64_t H = x->dims[2], W = x->dims[3], OH = od[2], OW = od[3];
    size_t nout = (size_t)od[0] * (size_t)od[1] * (size_t)OH * (size_t)OW;
    /* int32 column indices; the reference's errors (an empty input, bad sizes) stay its own */
    if ((nout && mixrt_tensor_numel(x) == 0) || W > INT32_MAX - 64 || OW > INT32_MAX - 64 ||
        !axis_kept(k->node, x->dims[0], od[0], sc[0]) || !axis_kept(k->node, x->dims[1], od[1], sc[1]))
        return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *o = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, 4, od, &o);
    if (status != MIXRT_STATUS_OK || nout == 0) return status;
    struct rz_tables T;
    MIXRT_TRY(rz_tables_make(k, k->node, H, OH, sc[2], W, OW, sc[3], &T));
    const bool avx = mixrt_rz_has_avx512();
    void (*vpass)(mixrt_dtype, const void *, const void *, float, float, float *, float *, int64_t) =
        avx ? mixrt_rz_vpass_avx512 : mixrt_rz_vpass_scalar;
    void (*hpass)(const struct mixrt_rz_cols *, const float *, float *) =
        avx ? mixrt_rz_hpass_avx512 : mixrt_rz_hpass_scalar;
    const size_t es = mixrt_dtype_size(x->dtype);
    const int64_t nrows = od[0] * od[1] * OH;
    const int nt = rz_threads(nout, es, nrows);
    /* per thread: the blended row (+32 readable floats), the scalar twin's widened row, an f32
     * output row for 16-bit outputs */
    const size_t per = (size_t)W + 32 + (size_t)W + (size_t)OW;
    float *buf = mixrt_alloc(k->ctx, (size_t)nt * per * sizeof(float));
    if (!buf) {
        mixrt_free(k->ctx, T.mem, T.bytes);
        return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the resize rows");
    }
    memset(buf, 0, (size_t)nt * per * sizeof(float));
    const char *src = x->data;
    char *dst = o->data;
    const mixrt_dtype dt = x->dtype;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (int64_t r = 0; r < nrows; r++) {
        float *t = buf + (size_t)rz_thread_num() * per;
        float *scratch = t + W + 32, *yf = scratch + W;
        const int64_t plane = r / OH, h = r % OH;
        const struct rz_rows *rw = &T.rows[h];
        const char *xp = src + (size_t)plane * (size_t)H * (size_t)W * es;
        vpass(dt, xp + (size_t)rw->i0 * (size_t)W * es, rw->two ? xp + (size_t)rw->i1 * (size_t)W * es : NULL, rw->w0,
              rw->w1, t, scratch, W);
        char *yrow = dst + (size_t)r * (size_t)OW * es;
        if (dt == MIXRT_DTYPE_F32) {
            hpass(&T.cols, t, (float *)yrow);
        } else {
            hpass(&T.cols, t, yf);
            mixrt_convert(yrow, dt, yf, MIXRT_DTYPE_F32, (size_t)OW);
        }
    }
    mixrt_free(k->ctx, buf, (size_t)nt * per * sizeof(float));
    mixrt_free(k->ctx, T.mem, T.bytes);
fail:
    return status;
}

/* ---- channels-last: com.mixrt Resize (the layout pass's) -----------------------------------------
 * X [N, H, W, C] -> Y [N, OH, OW, C], N and C kept. Linear: per output row the two input rows
 * (W x C each) blended into one f32 row, then each output pixel w0 * t[iw0] + w1 * t[iw1] over its
 * C channels, contiguous: no gathers, no permutes. Nearest: each output pixel a copy of one input
 * pixel's C values. The attributes read as ONNX's Resize-19 (see fuse_conv.c). */

void mixrt_rz_hpass_nhwc_scalar(const struct mixrt_rz_cols *c, int64_t C, const float *t, float *y) {
    for (int64_t w = 0; w < c->n; w++) {
        const float *a = t + (size_t)c->i0[w] * (size_t)C, *b = t + (size_t)c->i1[w] * (size_t)C;
        float *yw = y + (size_t)w * (size_t)C, w0 = c->w0[w], w1 = c->w1[w];
        if (c->two[w / 16] >> (w % 16) & 1)
            for (int64_t j = 0; j < C; j++) yw[j] = w0 * a[j] + w1 * b[j];
        else
            for (int64_t j = 0; j < C; j++) yw[j] = w0 * a[j];
    }
}

/* dm_resize's checks on the node read as ONNX's Resize-19, floats only (the op's reference
 * takes no other dtype). */
static bool rz_nhwc_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    struct mixrt_node nd = *n;
    nd.domain = "", nd.opset = 19;
    if (!mixrt_resize_supports(g, &nd, false, why, why_size)) return false;
    if (!rz_dtype(g->values[n->inputs[0]].dtype)) {
        if (why && why_size) snprintf(why, why_size, "channels-last Resize of %s (f32, bf16, f16 only)",
                                      mixrt_dtype_name(g->values[n->inputs[0]].dtype));
        return false;
    }
    return true;
}

static mixrt_status rz_nhwc_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    struct mixrt_node nd = *k->node;
    nd.domain = "", nd.opset = 19;
    double sc[4];
    int64_t od[4];
    const int mode = mixrt_resize_mode(&nd);
    if (!x || !x->data || x->rank != 4 || !rz_dtype(x->dtype) || mode < 0) return mixrt_cpu_run_reference(k);
    const int64_t N = x->dims[0], H = x->dims[1], W = x->dims[2], C = x->dims[3];
    const int64_t cf[4] = {N, C, H, W};
    if (!mixrt_resize_geometry(&nd, cf, mixrt_kernel_opt_input(k, 2), mixrt_kernel_opt_input(k, 3), od, sc))
        return mixrt_cpu_run_reference(k);
    const int64_t OH = od[2], OW = od[3];
    size_t nout = (size_t)N * (size_t)C * (size_t)OH * (size_t)OW;
    if ((nout && mixrt_tensor_numel(x) == 0) || W > INT32_MAX - 64 || OW > INT32_MAX - 64 ||
        !axis_kept(&nd, N, od[0], sc[0]) || !axis_kept(&nd, C, od[1], sc[1]))
        return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *o = NULL;
    const int64_t yd[4] = {N, OH, OW, C};
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, 4, yd, &o);
    if (status != MIXRT_STATUS_OK || nout == 0) return status;
    struct rz_tables T;
    MIXRT_TRY(rz_tables_make(k, &nd, H, OH, sc[2], W, OW, sc[3], &T));
    const bool avx = mixrt_rz_has_avx512();
    void (*vpass)(mixrt_dtype, const void *, const void *, float, float, float *, float *, int64_t) =
        avx ? mixrt_rz_vpass_avx512 : mixrt_rz_vpass_scalar;
    void (*hpass)(const struct mixrt_rz_cols *, int64_t, const float *, float *) =
        avx ? mixrt_rz_hpass_nhwc_avx512 : mixrt_rz_hpass_nhwc_scalar;
    const mixrt_dtype dt = x->dtype;
    const size_t es = mixrt_dtype_size(dt), wc = (size_t)W * (size_t)C, owc = (size_t)OW * (size_t)C;
    const int64_t nrows = N * OH;
    const int nt = rz_threads(nout, es, nrows);
    const size_t per = mode ? wc + wc + owc : 0; /* blended row, widened row, f32 output row */
    float *buf = NULL;
    if (per && !(buf = mixrt_alloc(k->ctx, (size_t)nt * per * sizeof(float)))) {
        mixrt_free(k->ctx, T.mem, T.bytes);
        return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the resize rows");
    }
    const char *src = x->data;
    char *dst = o->data;
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (int64_t r = 0; r < nrows; r++) {
        const int64_t n = r / OH, h = r % OH;
        const struct rz_rows *rw = &T.rows[h];
        const char *xp = src + (size_t)n * (size_t)H * wc * es;
        char *yrow = dst + (size_t)r * owc * es;
        if (!mode) { /* nearest: one tap per axis */
            const char *xr = xp + (size_t)rw->i0 * wc * es;
            for (int64_t w = 0; w < OW; w++)
                memcpy(yrow + (size_t)w * (size_t)C * es, xr + (size_t)T.cols.i0[w] * (size_t)C * es, (size_t)C * es);
            continue;
        }
        float *t = buf + (size_t)rz_thread_num() * per, *scratch = t + wc, *yf = scratch + wc;
        vpass(dt, xp + (size_t)rw->i0 * wc * es, rw->two ? xp + (size_t)rw->i1 * wc * es : NULL, rw->w0, rw->w1, t,
              scratch, (int64_t)wc);
        if (dt == MIXRT_DTYPE_F32) {
            hpass(&T.cols, C, t, (float *)yrow);
        } else {
            hpass(&T.cols, C, t, yf);
            mixrt_convert(yrow, dt, yf, MIXRT_DTYPE_F32, owc);
        }
    }
    if (buf) mixrt_free(k->ctx, buf, (size_t)nt * per * sizeof(float));
    mixrt_free(k->ctx, T.mem, T.bytes);
fail:
    return status;
}

/* ---- rz_taps: any mode, the reference's own taps ------------------------------------------------
 * Resize (opset >= 11) of a 4-D f32 / bf16 / f16 tensor whose N and C are kept, in every mode
 * (nearest, linear, cubic, antialiased) and coordinate transformation but tf_crop_and_resize: the
 * taps are the reference's (mixrt_resize_taps_make, ref_shape.c), made from the tensors of this
 * run, so sizes computed inside a subgraph body are fine (torchvision's keypoint heads resize each
 * box's heatmaps to the box, cubic, inside a Loop; in the main graph the shaping inputs must be
 * constants, as the builder times it there). Per output row the input rows of its H taps are blended into one f32
 * row, then each output column sums its W taps from that row. Within a few f32 ulps of the
 * reference's f64 sums of weight products (cubic's negative weights make that relative to the
 * sum of |taps|). */

static bool rz_taps_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    const char *bad = NULL;
    const struct mixrt_value *x = n->n_inputs > 0 && n->inputs[0] >= 0 ? &g->values[n->inputs[0]] : NULL;
    if (n->opset < 11) bad = "Resize before opset 11";
    else if (!x || !rz_dtype(x->dtype)) bad = "Resize input not f32, bf16 or f16";
    else if (x->rank >= 0 && x->rank != 4) bad = "Resize input not 4-D";
    else if (!strcmp(mixrt_node_attr_string(n, "coordinate_transformation_mode", "half_pixel"), "tf_crop_and_resize"))
        bad = "Resize with tf_crop_and_resize";
    /* In the main graph the builder times candidates on made-up data for inputs that are not
     * constants (nonsense scales there); a body's kernels are not timed. */
    for (int i = 1; !bad && !g->parent && i < n->n_inputs && i < 4; i++)
        if (n->inputs[i] >= 0 && !mixrt_graph_is_fixed_const(g, n->inputs[i]))
            bad = "Resize: a shape-giving input is not a constant (main graph)";
    if (bad && why && why_size) snprintf(why, why_size, "%s", bad);
    return !bad;
}

/* Axis d maps each output coordinate onto the same input coordinate with weights summing to 1. */
static bool taps_kept(const struct mixrt_resize_taps *t, int d, int64_t len) {
    if (t->od[d] != len) return false;
    for (int64_t i = 0; i < len; i++) {
        double sum = 0;
        for (int j = 0; j < t->cnt[d][i]; j++) {
            if (t->idx[d][i * t->n[d] + j] != i) return false;
            sum += t->w[d][i * t->n[d] + j];
        }
        if (sum != 1.0) return false;
    }
    return true;
}

static mixrt_status rz_taps_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0);
    if (!x || !x->data || x->rank != 4 || !rz_dtype(x->dtype) || mixrt_tensor_numel(x) == 0)
        return mixrt_cpu_run_reference(k);
    struct mixrt_resize_taps tp;
    if (mixrt_resize_taps_make(k, x, &tp) != MIXRT_STATUS_OK) return mixrt_cpu_run_reference(k);
    mixrt_status status = MIXRT_STATUS_OK;
    const int64_t H = x->dims[2], W = x->dims[3], OH = tp.od[2], OW = tp.od[3];
    const size_t nout = (size_t)tp.od[0] * (size_t)tp.od[1] * (size_t)OH * (size_t)OW;
    if (tp.crop || W > INT32_MAX - 64 || OW > INT32_MAX - 64 || !taps_kept(&tp, 0, x->dims[0]) ||
        !taps_kept(&tp, 1, x->dims[1])) {
        mixrt_resize_taps_free(k->ctx, &tp);
        return mixrt_cpu_run_reference(k);
    }
    struct mixrt_tensor *o = NULL;
    float *buf = NULL, *cw = NULL;
    int32_t *ci = NULL;
    uint16_t *cm = NULL;
    const int T = tp.n[3];
    const int64_t nb = (OW + 15) / 16, np = nb * 16;
    const size_t es = mixrt_dtype_size(x->dtype);
    const int64_t nrows = tp.od[0] * tp.od[1] * OH;
    const int nt = rz_threads(nout, es, nrows);
    const size_t per = (size_t)W + (size_t)W + (size_t)OW; /* blended row, widened row, f32 output row */
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, 4, tp.od, &o));
    if (nout == 0) goto fail;
    ci = mixrt_calloc(k->ctx, (size_t)T * (size_t)np, sizeof(*ci));
    cw = mixrt_calloc(k->ctx, (size_t)T * (size_t)np, sizeof(*cw));
    cm = mixrt_calloc(k->ctx, (size_t)T * (size_t)nb, sizeof(*cm));
    buf = mixrt_alloc(k->ctx, (size_t)nt * per * sizeof(float));
    if (!ci || !cw || !cm || !buf) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for the resize tables");
        goto fail;
    }
    for (int64_t c = 0; c < OW; c++)
        for (int j = 0; j < tp.cnt[3][c]; j++) {
            ci[(size_t)j * (size_t)np + (size_t)c] = (int32_t)tp.idx[3][c * T + j];
            cw[(size_t)j * (size_t)np + (size_t)c] = (float)tp.w[3][c * T + j];
            cm[(size_t)j * (size_t)nb + (size_t)(c / 16)] |= (uint16_t)(1u << (c % 16));
        }
    const struct mixrt_rz_taps_cols cols = {OW, nb, np, T, ci, cw, cm};
    const bool avx = mixrt_rz_has_avx512();
    void (*vtaps)(mixrt_dtype, const void *const *, const float *, int, float *, float *, int64_t) =
        avx ? mixrt_rz_vtaps_avx512 : mixrt_rz_vtaps_scalar;
    void (*htaps)(const struct mixrt_rz_taps_cols *, const float *, float *) =
        avx ? mixrt_rz_htaps_avx512 : mixrt_rz_htaps_scalar;
    const char *src = x->data;
    char *dst = o->data;
    const mixrt_dtype dt = x->dtype;
    const int TH = tp.n[2];
    const int64_t *hidx = tp.idx[2];
    const double *hw = tp.w[2];
    const uint8_t *hcnt = tp.cnt[2];
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (int64_t r = 0; r < nrows; r++) {
        float *t = buf + (size_t)rz_thread_num() * per, *scratch = t + W, *yf = scratch + W;
        const int64_t plane = r / OH, h = r % OH;
        const char *xp = src + (size_t)plane * (size_t)H * (size_t)W * es;
        char *yrow = dst + (size_t)r * (size_t)OW * es;
        const void *rows[64];
        float wts[64];
        int cnt = hcnt[h];
        for (int j = 0; j < cnt; j++) {
            rows[j] = xp + (size_t)hidx[h * TH + j] * (size_t)W * es;
            wts[j] = (float)hw[h * TH + j];
        }
        if (cnt == 0) { /* every tap weighs 0 (exclude_outside far out): the reference's 0 */
            memset(yrow, 0, (size_t)OW * es);
            continue;
        }
        vtaps(dt, rows, wts, cnt, t, scratch, W);
        if (dt == MIXRT_DTYPE_F32) {
            htaps(&cols, t, (float *)yrow);
        } else {
            htaps(&cols, t, yf);
            mixrt_convert(yrow, dt, yf, MIXRT_DTYPE_F32, (size_t)OW);
        }
    }
fail:
    if (buf) mixrt_free(k->ctx, buf, (size_t)nt * per * sizeof(float));
    if (ci) mixrt_free(k->ctx, ci, (size_t)T * (size_t)np * sizeof(*ci));
    if (cw) mixrt_free(k->ctx, cw, (size_t)T * (size_t)np * sizeof(*cw));
    if (cm) mixrt_free(k->ctx, cm, (size_t)T * (size_t)nb * sizeof(*cm));
    mixrt_resize_taps_free(k->ctx, &tp);
    return status;
}

void mixrt_rz_vtaps_scalar(mixrt_dtype dt, const void *const *rows, const float *wts, int cnt, float *t,
                           float *scratch, int64_t n) {
    for (int k = 0; k < cnt; k++) {
        const float *a = rows[k];
        if (dt != MIXRT_DTYPE_F32) {
            mixrt_convert(scratch, MIXRT_DTYPE_F32, rows[k], dt, (size_t)n);
            a = scratch;
        }
        if (k == 0)
            for (int64_t j = 0; j < n; j++) t[j] = wts[0] * a[j];
        else
            for (int64_t j = 0; j < n; j++) t[j] = fmaf(wts[k], a[j], t[j]);
    }
}

void mixrt_rz_htaps_scalar(const struct mixrt_rz_taps_cols *c, const float *t, float *y) {
    for (int64_t w = 0; w < c->n; w++) {
        float a = 0;
        for (int j = 0; j < c->T; j++) {
            const size_t o = (size_t)j * (size_t)c->np + (size_t)w;
            if (c->mask[(size_t)j * (size_t)c->blocks + (size_t)(w / 16)] >> (w % 16) & 1) a = fmaf(c->w[o], t[c->idx[o]], a);
        }
        y[w] = a;
    }
}

/* ---- GridSample ------------------------------------------------------------------------------
 * gs_2d: GridSample of a 4-D f32 X [N, C, H, W] by an f32 grid [N, OH, OW, 2], linear (bilinear)
 * or nearest, zeros or border padding, either align_corners. Per output point the coordinates,
 * taps and weights are made once in f64 as the reference makes them (ref_extra.c); the channels
 * then sum the taps in f32 (the reference in f64: within a few f32 ulps). Taps the zeros padding
 * drops are not read, so an infinite X lands where the reference puts it. RAFT's correlation
 * lookups (48 a run of 784 one-channel images; the reference converts X to f64 on each) are the
 * use. Cubic, reflection, other ranks and dtypes run the reference. */
static int gs_mode(const struct mixrt_node *n, int64_t opset, int *pad, bool *align) {
    const char *ms = mixrt_node_attr_string(n, "mode", opset >= 20 ? "linear" : "bilinear");
    const char *ps = mixrt_node_attr_string(n, "padding_mode", "zeros");
    *align = mixrt_node_attr_int(n, "align_corners", 0) != 0;
    *pad = !strcmp(ps, "zeros") ? 0 : !strcmp(ps, "border") ? 1 : -1;
    if (*pad < 0) return -1;
    return !strcmp(ms, "linear") || !strcmp(ms, "bilinear") ? 1 : !strcmp(ms, "nearest") ? 0 : -1;
}

static bool gs_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    int pad;
    bool align;
    const char *no = NULL;
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1)
        no = "GridSample without its two inputs";
    else if (g->values[n->inputs[0]].dtype != MIXRT_DTYPE_F32 || g->values[n->inputs[1]].dtype != MIXRT_DTYPE_F32)
        no = "GridSample on other than f32";
    else if (g->values[n->inputs[0]].rank != 4 || g->values[n->inputs[1]].rank != 4)
        no = "GridSample of other than 2 spatial dims";
    else if (gs_mode(n, n->opset, &pad, &align) < 0)
        no = "GridSample cubic or with reflection padding";
    if (no && why && why_size) snprintf(why, why_size, "%s", no);
    return !no;
}

/* The taps of coordinate g along an axis of `size` (the reference's arithmetic): idx[j] < 0 is a
 * tap the zeros padding drops. Returns the tap count (1 nearest, 2 linear). */
static int gs_axis(double gv, int64_t size, int mode, int pad, bool align, int64_t idx[2], double w[2]) {
    double lo = align ? 0.0 : -0.5, hi = align ? (double)size - 1 : (double)size - 0.5;
    double v = align ? (gv + 1) / 2 * (double)(size - 1) : ((gv + 1) * (double)size - 1) / 2;
    if (isnan(v)) v = lo - 2;
    if (v > 1e15) v = 1e15;
    if (v < -1e15) v = -1e15;
    if (!mode) v = nearbyint(v);
    if ((v < lo || v > hi) && pad) v = v < 0 ? 0 : v > (double)(size - 1) ? (double)(size - 1) : v;
    double f = mode ? floor(v) : v;
    int cnt = mode ? 2 : 1;
    w[0] = mode ? 1 - (v - f) : 1, w[1] = v - f;
    for (int j = 0; j < cnt; j++) {
        int64_t i = (int64_t)f + j;
        idx[j] = i >= 0 && i < size ? i : !pad ? -1 : i < 0 ? 0 : size - 1;
    }
    return cnt;
}

static mixrt_status gs_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *gr = mixrt_kernel_opt_input(k, 1);
    int pad;
    bool align;
    int mode = gs_mode(k->node, k->opset, &pad, &align);
    if (!x || !gr || !x->data || !gr->data || mode < 0 || x->rank != 4 || gr->rank != 4 || x->dtype != MIXRT_DTYPE_F32 ||
        gr->dtype != MIXRT_DTYPE_F32 || gr->dims[0] != x->dims[0] || gr->dims[3] != 2 || x->dims[2] < 1 ||
        x->dims[3] < 1)
        return mixrt_cpu_run_reference(k);
    const int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], OH = gr->dims[1], OW = gr->dims[2];
    struct mixrt_tensor *o = NULL;
    const int64_t yd[4] = {N, C, OH, OW};
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, MIXRT_DTYPE_F32, 4, yd, &o);
    size_t nout = (size_t)N * (size_t)C * (size_t)OH * (size_t)OW;
    if (status != MIXRT_STATUS_OK || nout == 0) return status;
    const float *xs = x->data, *gs = gr->data;
    float *ys = o->data;
    const int64_t nrows = N * OH, in_sp = H * W, out_sp = OH * OW;
    /* a point costs its coordinate arithmetic besides the channel sums: two threads from 1024 points
     * (RAFT's 63504-point lookups: 0.85 ms on one) */
    const int nt = rz_threads(par_bytes_override ? nout : (size_t)N * (size_t)out_sp * 64, sizeof(float), nrows);
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (int64_t r = 0; r < nrows; r++) {
        const int64_t n = r / OH, h = r % OH;
        const float *xn = xs + (size_t)n * (size_t)C * (size_t)in_sp;
        for (int64_t w = 0; w < OW; w++) {
            const float *gp = gs + ((size_t)r * (size_t)OW + (size_t)w) * 2;
            int64_t ix[2], iy[2], off[4];
            double wx[2], wy[2];
            float tw[4];
            int cx = gs_axis(gp[0], W, mode, pad, align, ix, wx), cy = gs_axis(gp[1], H, mode, pad, align, iy, wy), nt4 = 0;
            for (int a = 0; a < cy; a++)
                for (int b = 0; b < cx; b++)
                    if (iy[a] >= 0 && ix[b] >= 0) off[nt4] = iy[a] * W + ix[b], tw[nt4++] = (float)(wy[a] * wx[b]);
            float *yp = ys + (size_t)n * (size_t)C * (size_t)out_sp + (size_t)h * (size_t)OW + (size_t)w;
            for (int64_t c = 0; c < C; c++) {
                const float *pl = xn + (size_t)c * (size_t)in_sp;
                float acc = 0;
                for (int t = 0; t < nt4; t++) acc += tw[t] * pl[off[t]];
                yp[(size_t)c * (size_t)out_sp] = acc;
            }
        }
    }
    return MIXRT_STATUS_OK;
}

const struct mixrt_cpu_kernel mixrt_resize_kernels[] = {
    {"rz_linear", "", "Resize", rz_supports, NULL, NULL, rz_run},
    {"rz_taps", "", "Resize", rz_taps_supports, NULL, NULL, rz_taps_run},
    {"rz_nhwc", MIXRT_DOMAIN, "Resize", rz_nhwc_supports, NULL, NULL, rz_nhwc_run},
    {"gs_2d", "", "GridSample", gs_supports, NULL, NULL, gs_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
