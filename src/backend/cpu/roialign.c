/* roialign.c - nn_roialign, the fast CPU kernel for ONNX RoiAlign (opsets 10-23) on f32 / bf16 / f16
 * feature maps. Each run copies the map into f32 blocks of 64 channels, each channels-last
 * ([N][C/64][H*W][64]), so that a sample's four taps read runs of 64 floats. The taps of every bin
 * are made in f64 exactly as the reference makes them (ref_misc.c, run_roi_align: positions,
 * clamping, samples off the map reading pixel 0 with weight 0), cached for a group of rois and
 * applied block by block (roialign_avx512.c); each roi's [bins][64] results are transposed to the
 * output's [C][bins] and streamed out. Rois are split over threads. The reference computes in f64,
 * this kernel in f32: within a few f32 ulps of the largest |x|, one rounding to a 16-bit output.
 * Anything else (an f64 map, an empty output or map, a roi the reference refuses, huge sample
 * tables) runs the reference, whose errors are then its own. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/kernels.h"
#include "backend/cpu/roialign_impl.h"

static bool forced_scalar;
/* Below this much work (samples x channels, plus the map's elements), one thread: a guess at
 * where waking the pool stops paying (about 50 us of work on one core). */
#define ROI_PAR_WORK_DEFAULT ((size_t)1 << 18)
static size_t par_work_override;

/* The reference's limit on samples per bin (ref_misc.c): a roi past it is its error. */
#define ROI_MAX_SAMPLES_PER_BIN ((int64_t)1 << 24)
/* Samples per axis table of one roi (output bins x samples per bin along the axis): past it
 * (a roi tens of thousands of pixels long with sampling_ratio 0) the reference runs. */
#define ROI_TAB_MAX ((int64_t)1 << 16)
/* Channels per block of the map (the channel loops take up to 64). Measured on Mask R-CNN's
 * 80x80 and a 160x160 level: 64 beat 32 by 10-15%; 128 and 256 (more accumulators, fewer tap
 * reads) were no faster. */
#define ROI_CW 64
/* Samples whose taps are cached for a group of rois (32 bytes each: 4 MiB), made once and read
 * once per channel block: Mask R-CNN's 1000 rois of 7x7 bins of 2x2 samples are two groups. A
 * roi with more samples goes through a thread's own cache of ROI_LOCAL_TAPS samples, bins at a
 * time, and a bin with more than that alone, its taps remade per block. */
#define ROI_TAP_BUDGET ((int64_t)1 << 17)
#define ROI_LOCAL_TAPS ((int64_t)1 << 12)
/* Bins whose f32 results a thread holds at once (64 KiB a block). */
#define ROI_MAX_UNITS 256
/* Pixels of one transposed piece of the map. */
#define ROI_PIX 256
static int64_t tap_budget_override;

void mixrt_roi_force_scalar(bool on) { forced_scalar = on; }
void mixrt_roi_set_parallel_work(size_t work) { par_work_override = work; }
void mixrt_roi_set_tap_budget(int64_t samples) { tap_budget_override = samples; }

bool mixrt_roi_has_avx512(void) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    const char *e = getenv("MIXRT_ROIALIGN_ISA");
    return f->avx512f && f->avx512bw && f->avx512vl && !forced_scalar && !(e && !strcmp(e, "scalar"));
#else
    return false;
#endif
}

/* Plain multiply-adds (not fmaf, a library call without -mfma): the twin is for machines without
 * AVX-512, and the inner loops over c vectorize as they are. */
void mixrt_roi_avg_scalar(const float *img, const struct mixrt_roi_tap *tp, int64_t ns, int64_t nb, int64_t C,
                          float *acc, int64_t as, int flags, float count) {
    for (int64_t b = 0; b < nb; b++, acc += as) {
        if (flags & MIXRT_ROI_FIRST)
            for (int64_t c = 0; c < C; c++) acc[c] = 0;
        for (int64_t s = 0; s < ns; s++, tp++)
            for (int t = 0; t < 4; t++) {
                const float *p = img + tp->off[t], wt = tp->w[t];
                for (int64_t c = 0; c < C; c++) acc[c] += wt * p[c];
            }
        if (flags & MIXRT_ROI_LAST)
            for (int64_t c = 0; c < C; c++) acc[c] /= count;
    }
}

void mixrt_roi_max_scalar(const float *img, const struct mixrt_roi_tap *tp, int64_t ns, int64_t nb, int64_t C,
                          float *acc, int64_t as, int flags) {
    for (int64_t b = 0; b < nb; b++, acc += as) {
        if (flags & MIXRT_ROI_FIRST) /* a bin without samples: the reference's 0 */
            for (int64_t c = 0; c < C; c++) acc[c] = 0;
        for (int64_t s = 0; s < ns; s++, tp++) {
            const float *p1 = img + tp->off[0], *p2 = img + tp->off[1], *p3 = img + tp->off[2], *p4 = img + tp->off[3];
            const float w1 = tp->w[0], w2 = tp->w[1], w3 = tp->w[2], w4 = tp->w[3];
            const bool set = s == 0 && (flags & MIXRT_ROI_FIRST);
            for (int64_t c = 0; c < C; c++) {
                float m = fmaxf(fmaxf(w1 * p1[c], w2 * p2[c]), fmaxf(w3 * p3[c], w4 * p4[c]));
                acc[c] = set ? m : fmaxf(acc[c], m);
            }
        }
    }
}

void mixrt_roi_transpose_scalar(const float *src, int64_t ss, int64_t rows, int64_t cols, float *dst, int64_t ds) {
    for (int64_t c = 0; c < cols; c++)
        for (int64_t j = 0; j < rows; j++)
            dst[(size_t)c * (size_t)ds + (size_t)j] = src[(size_t)j * (size_t)ss + (size_t)c];
}

static bool roi_dtype(mixrt_dtype dt) {
    return dt == MIXRT_DTYPE_F32 || dt == MIXRT_DTYPE_BF16 || dt == MIXRT_DTYPE_F16;
}

static bool roi_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    const struct mixrt_value *x = n->n_inputs >= 3 && n->inputs[0] >= 0 ? &g->values[n->inputs[0]] : NULL;
    if (!x) {
        if (why && why_size) snprintf(why, why_size, "RoiAlign without its three inputs");
        return false;
    }
    if (!roi_dtype(x->dtype)) {
        if (why && why_size)
            snprintf(why, why_size, "RoiAlign on %s (f32, bf16, f16 only)", mixrt_dtype_name(x->dtype));
        return false;
    }
    if (x->rank >= 0 && x->rank != 4) {
        if (why && why_size) snprintf(why, why_size, "RoiAlign input of rank %d (4 only)", x->rank);
        return false;
    }
    return true;
}

/* One roi as the reference reads it: image b, its corner and bin sizes in map coordinates, the
 * samples per bin along each axis; and where its taps are cached: group grp (-1: too big to
 * cache) from sample tap on. */
struct roi_geom {
    int64_t b, gh, gw;
    double x0, y0, bin_h, bin_w;
    int64_t grp, tap;
};

/* One sample position along an axis: taps lo and hi with weights h (lo) and l (hi); in false:
 * more than a pixel off the map (the whole sample then reads pixel 0 with weight 0). */
struct roi_axis {
    int64_t lo, hi;
    double l, h;
    bool in;
};

/* The sample positions of nbins bins of size bin from start, g a bin, on an axis of len pixels:
 * the reference's expressions, operation for operation, so the taps are its taps. */
static void roi_axis_make(double start, double bin, int64_t nbins, int64_t g, int64_t len, struct roi_axis *t) {
    for (int64_t p = 0; p < nbins; p++)
        for (int64_t i = 0; i < g; i++) {
            struct roi_axis *e = &t[p * g + i];
            double v = start + (double)p * bin + ((double)i + 0.5) * bin / (double)g;
            *e = (struct roi_axis){0, 0, 0, 0, !(v < -1.0 || v > (double)len)};
            if (!e->in) continue;
            if (v <= 0) v = 0;
            e->lo = (int64_t)v;
            if (e->lo >= len - 1) {
                e->hi = e->lo = len - 1;
                v = (double)e->lo;
            } else {
                e->hi = e->lo + 1;
            }
            e->l = v - (double)e->lo;
            e->h = 1 - e->l;
        }
}

/* What the reference does with roi r before it computes anything: false where it would fail
 * (a batch index off [0, N), a coordinate not finite, too many samples per bin); else *g. */
static bool roi_geom_make(const struct mixrt_tensor *rois, const struct mixrt_tensor *bidx, int64_t r, int64_t n_batch,
                          double scale, bool half_pixel, int64_t oh, int64_t ow, int64_t sampling, struct roi_geom *g) {
    const double offset = half_pixel ? 0.5 : 0.0;
    int64_t b = mixrt_load_i64(bidx->data, bidx->dtype, (size_t)r);
    if (b < 0 || b >= n_batch) return false;
    double roi[4];
    for (int i = 0; i < 4; i++) roi[i] = mixrt_load_f64(rois->data, rois->dtype, (size_t)r * 4 + (size_t)i);
    double x0 = roi[0] * scale - offset, y0 = roi[1] * scale - offset;
    double rw = roi[2] * scale - offset - x0, rh = roi[3] * scale - offset - y0;
    if (!(isfinite(x0) && isfinite(y0) && isfinite(rw) && isfinite(rh))) return false;
    if (!half_pixel) { /* the legacy mode forces ROIs to at least 1x1 */
        rw = fmax(rw, 1.0);
        rh = fmax(rh, 1.0);
    }
    double gh_d = sampling > 0 ? (double)sampling : ceil(rh / (double)oh);
    double gw_d = sampling > 0 ? (double)sampling : ceil(rw / (double)ow);
    if (gh_d < 0) gh_d = 0;
    if (gw_d < 0) gw_d = 0;
    if (!(gh_d <= (double)ROI_MAX_SAMPLES_PER_BIN && gw_d <= (double)ROI_MAX_SAMPLES_PER_BIN &&
          gh_d * gw_d <= (double)ROI_MAX_SAMPLES_PER_BIN))
        return false;
    *g = (struct roi_geom){b, (int64_t)gh_d, (int64_t)gw_d, x0, y0, rh / (double)oh, rw / (double)ow, -1, 0};
    return true;
}

/* A thread's tables and buffers (in the kernel's scratch). */
struct roi_thread {
    struct roi_axis *ytab, *xtab;
    struct mixrt_roi_tap *taps; /* big rois' */
    float *buf, *tbuf;
};

/* The shared state of one run. */
struct roi_run {
    const float *map; /* [N][nblk][H * W][cw] f32 */
    struct roi_geom *geom;
    struct mixrt_roi_tap *taps; /* a group's */
    int64_t C, H, W, oh, ow, bins, cw, nblk, budget, local;
    bool max_mode, avx;
    mixrt_dtype dt;
    char *out;
};

static void roi_transpose(const struct roi_run *R, const float *src, int64_t ss, int64_t rows, int64_t cols, float *dst,
                          int64_t ds) {
#if defined(__x86_64__)
    if (R->avx) {
        mixrt_roi_transpose_avx512(src, ss, rows, cols, dst, ds);
        return;
    }
#endif
    mixrt_roi_transpose_scalar(src, ss, rows, cols, dst, ds);
}

/* The channel loops on block q of roi r's image: nb bins of ns samples, results cw apart. */
static void roi_apply(const struct roi_run *R, int64_t r, int64_t q, const struct mixrt_roi_tap *tp, int64_t ns,
                      int64_t nb, float *acc, int flags) {
    const struct roi_geom *g = &R->geom[r];
    const int64_t P = R->H * R->W, cq = R->C - q * R->cw < R->cw ? R->C - q * R->cw : R->cw;
    const float *img = R->map + ((size_t)g->b * (size_t)R->nblk + (size_t)q) * (size_t)P * (size_t)R->cw;
    const float count = g->gh * g->gw > 0 ? (float)(g->gh * g->gw) : 1.0f;
#if defined(__x86_64__)
    if (R->avx) {
        if (R->max_mode)
            mixrt_roi_max_avx512(img, tp, ns, nb, cq, acc, R->cw, flags);
        else
            mixrt_roi_avg_avx512(img, tp, ns, nb, cq, acc, R->cw, flags, count);
        return;
    }
#endif
    if (R->max_mode)
        mixrt_roi_max_scalar(img, tp, ns, nb, cq, acc, R->cw, flags);
    else
        mixrt_roi_avg_scalar(img, tp, ns, nb, cq, acc, R->cw, flags, count);
}

/* The axis tables of roi r into T. */
static void roi_tables(const struct roi_run *R, const struct roi_thread *T, int64_t r) {
    const struct roi_geom *g = &R->geom[r];
    roi_axis_make(g->y0, g->bin_h, R->oh, g->gh, R->H, T->ytab);
    roi_axis_make(g->x0, g->bin_w, R->ow, g->gw, R->W, T->xtab);
}

/* The taps of samples [s0, s1) of a bin of roi g, whose axis tables T holds. */
static void roi_taps(const struct roi_run *R, const struct roi_thread *T, const struct roi_geom *g, int64_t bin,
                     int64_t s0, int64_t s1, struct mixrt_roi_tap *tp) {
    if (s0 >= s1) return; /* a bin without samples (gw may be 0) */
    const int64_t ph = bin / R->ow, pw = bin % R->ow, cw = R->cw;
    int64_t iy = s0 / g->gw, ix = s0 % g->gw;
    for (int64_t s = s0; s < s1; s++, tp++) {
        const struct roi_axis *ya = &T->ytab[ph * g->gh + iy], *xa = &T->xtab[pw * g->gw + ix];
        if (ya->in && xa->in) {
            const int64_t rlo = ya->lo * R->W, rhi = ya->hi * R->W;
            *tp = (struct mixrt_roi_tap){
                {(int32_t)((rlo + xa->lo) * cw), (int32_t)((rlo + xa->hi) * cw), (int32_t)((rhi + xa->lo) * cw),
                 (int32_t)((rhi + xa->hi) * cw)},
                {(float)(ya->h * xa->h), (float)(ya->h * xa->l), (float)(ya->l * xa->h), (float)(ya->l * xa->l)}};
        } else {
            *tp = (struct mixrt_roi_tap){{0, 0, 0, 0}, {0, 0, 0, 0}};
        }
        if (++ix == g->gw) ix = 0, iy++;
    }
}

/* acc [nb][cw], block q of bins [b0, b0 + nb) of roi r, into the output's [C][bins]. */
static void roi_write(const struct roi_run *R, const struct roi_thread *T, int64_t r, int64_t q, int64_t b0, int64_t nb,
                      const float *acc) {
    const int64_t cw = R->cw, bins = R->bins, cq = R->C - q * cw < cw ? R->C - q * cw : cw;
    const size_t first = ((size_t)r * (size_t)R->C + (size_t)(q * cw)) * (size_t)bins + (size_t)b0;
#if defined(__x86_64__)
    if (R->dt == MIXRT_DTYPE_F32 && nb == bins && R->avx) {
        roi_transpose(R, acc, cw, nb, cq, T->tbuf, nb);
        mixrt_roi_stream_avx512((float *)R->out + first, T->tbuf, (size_t)(cq * bins));
        return;
    }
#endif
    if (R->dt == MIXRT_DTYPE_F32) {
        roi_transpose(R, acc, cw, nb, cq, (float *)R->out + first, bins);
        return;
    }
    roi_transpose(R, acc, cw, nb, cq, T->tbuf, nb);
    /* a roi's whole pool: the block's channels are one run of the output */
    const size_t runs = nb == bins ? 1 : (size_t)cq, len = nb == bins ? (size_t)(cq * bins) : (size_t)nb;
    for (size_t c = 0; c < runs; c++) {
        void *y = R->out + (first + c * (size_t)bins) * 2;
        if (R->dt == MIXRT_DTYPE_BF16)
            mixrt_f32_to_bf16(T->tbuf + c * (size_t)nb, y, len);
        else
            mixrt_f32_to_f16(T->tbuf + c * (size_t)nb, y, len);
    }
}

/* Block q of roi r of a group, its taps cached: bins in pieces of ROI_MAX_UNITS. */
static void roi_cached(const struct roi_run *R, const struct roi_thread *T, int64_t r, int64_t q) {
    const struct roi_geom *g = &R->geom[r];
    const int64_t ns = g->gh * g->gw;
    const struct mixrt_roi_tap *tp = R->taps + g->tap;
    for (int64_t b0 = 0; b0 < R->bins; b0 += ROI_MAX_UNITS) {
        const int64_t nb = R->bins - b0 < ROI_MAX_UNITS ? R->bins - b0 : ROI_MAX_UNITS;
        roi_apply(R, r, q, tp + b0 * ns, ns, nb, T->buf, MIXRT_ROI_FIRST | MIXRT_ROI_LAST);
        roi_write(R, T, r, q, b0, nb, T->buf);
    }
}

/* A roi too big for the group cache: bins in pieces whose taps fit the thread's cache, block by
 * block; a bin bigger than that alone, its taps remade per block in pieces. */
static void roi_big(const struct roi_run *R, const struct roi_thread *T, int64_t r) {
    const struct roi_geom *g = &R->geom[r];
    const int64_t ns = g->gh * g->gw, per = ns > 0 ? R->local / ns : ROI_MAX_UNITS;
    roi_tables(R, T, r);
    if (per >= 1) {
        const int64_t step = per < ROI_MAX_UNITS ? per : ROI_MAX_UNITS;
        for (int64_t b0 = 0; b0 < R->bins; b0 += step) {
            const int64_t nb = R->bins - b0 < step ? R->bins - b0 : step;
            for (int64_t j = 0; j < nb; j++) roi_taps(R, T, g, b0 + j, 0, ns, T->taps + j * ns);
            for (int64_t q = 0; q < R->nblk; q++) {
                roi_apply(R, r, q, T->taps, ns, nb, T->buf, MIXRT_ROI_FIRST | MIXRT_ROI_LAST);
                roi_write(R, T, r, q, b0, nb, T->buf);
            }
        }
        return;
    }
    for (int64_t bin = 0; bin < R->bins; bin++)
        for (int64_t q = 0; q < R->nblk; q++) {
            for (int64_t s0 = 0; s0 < ns; s0 += R->local) {
                const int64_t s1 = ns - s0 < R->local ? ns : s0 + R->local;
                roi_taps(R, T, g, bin, s0, s1, T->taps);
                roi_apply(R, r, q, T->taps, s1 - s0, 1, T->buf,
                          (s0 == 0 ? MIXRT_ROI_FIRST : 0) | (s1 == ns ? MIXRT_ROI_LAST : 0));
            }
            roi_write(R, T, r, q, bin, 1, T->buf);
        }
}

static size_t roi_align64(size_t bytes) { return (bytes + 63) & ~(size_t)63; }

static int roi_thread_num(void) {
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

static mixrt_status roi_run(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *rois = mixrt_kernel_opt_input(k, 1),
                              *bidx = mixrt_kernel_opt_input(k, 2);
    if (!x || !rois || !bidx || !x->data || !rois->data || !bidx->data || x->rank != 4 || !roi_dtype(x->dtype) ||
        rois->rank != 2 || rois->dims[1] != 4 || !mixrt_dtype_is_float(rois->dtype) || bidx->rank != 1 ||
        bidx->dims[0] != rois->dims[0] || !mixrt_dtype_is_int(bidx->dtype))
        return mixrt_cpu_run_reference(k);
    const char *mode = mixrt_node_attr_string(k->node, "mode", "avg");
    /* Opset 10 had no attribute; its behaviour is what 16 calls output_half_pixel. */
    const char *ctm = mixrt_node_attr_string(k->node, "coordinate_transformation_mode",
                                             k->opset >= 16 ? "half_pixel" : "output_half_pixel");
    const bool max_mode = !strcmp(mode, "max"), half_pixel = !strcmp(ctm, "half_pixel");
    const int64_t oh = mixrt_node_attr_int(k->node, "output_height", 1),
                  ow = mixrt_node_attr_int(k->node, "output_width", 1);
    const int64_t sampling = mixrt_node_attr_int(k->node, "sampling_ratio", 0);
    const double scale = mixrt_node_attr_float(k->node, "spatial_scale", 1.0f);
    const int64_t N = x->dims[0], C = x->dims[1], H = x->dims[2], W = x->dims[3], R = rois->dims[0];
    const int64_t cw = C < ROI_CW ? C : ROI_CW;
    /* the reference's attribute errors, empty outputs and maps (it reads no pixel there) stay its
     * own; so do maps whose block plane int32 tap offsets cannot address */
    if ((!max_mode && strcmp(mode, "avg")) || (!half_pixel && strcmp(ctm, "output_half_pixel")) || oh < 1 || ow < 1 ||
        sampling < 0 || sampling > ROI_MAX_SAMPLES_PER_BIN || R == 0 || C == 0 || H == 0 || W == 0 ||
        (double)H * (double)W * (double)cw > (double)INT32_MAX ||
        (double)oh * (double)ow * (double)C > (double)INT64_MAX / 8)
        return mixrt_cpu_run_reference(k);
    mixrt_status status = MIXRT_STATUS_OK;
    bool owned = false, *used = NULL;
    char *mem = NULL;
    size_t mem_bytes = 0;
    int64_t *grp_lo = NULL, ngrp = 0;
    struct roi_geom *geom = mixrt_alloc(k->ctx, (size_t)R * sizeof(*geom));
    if (!geom) return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %lld rois", (long long)R);
    const int64_t budget = tap_budget_override > 0 ? tap_budget_override : ROI_TAP_BUDGET,
                  local = tap_budget_override > 0 ? tap_budget_override : ROI_LOCAL_TAPS, bins = oh * ow;
    int64_t ymax = 1, xmax = 1, fill = budget, gmax = 1;
    double work = (double)N * (double)C * (double)H * (double)W;
    for (int64_t r = 0; r < R; r++) {
        struct roi_geom *g = &geom[r];
        if (!roi_geom_make(rois, bidx, r, N, scale, half_pixel, oh, ow, sampling, g) ||
            (double)oh * (double)g->gh > (double)ROI_TAB_MAX || (double)ow * (double)g->gw > (double)ROI_TAB_MAX) {
            mixrt_free(k->ctx, geom, (size_t)R * sizeof(*geom));
            return mixrt_cpu_run_reference(k);
        }
        ymax = oh * g->gh > ymax ? oh * g->gh : ymax;
        xmax = ow * g->gw > xmax ? ow * g->gw : xmax;
        const double samples = (double)bins * (double)(g->gh * g->gw);
        work += samples * (double)C;
        if (samples > (double)budget) continue; /* grp -1 */
        if (fill + (int64_t)samples > budget) ngrp++, fill = 0;
        g->grp = ngrp - 1, g->tap = fill, fill += (int64_t)samples;
        gmax = fill > gmax ? fill : gmax;
    }
    /* group i: rois [grp_lo[i], grp_lo[i + 1]) (those of grp i among them) */
    if (!(grp_lo = mixrt_alloc(k->ctx, (size_t)(ngrp + 1) * sizeof(int64_t)))) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %lld roi groups", (long long)ngrp);
        goto fail;
    }
    for (int64_t r = R - 1; r >= 0; r--)
        if (geom[r].grp >= 0) grp_lo[geom[r].grp] = r;
    grp_lo[ngrp] = R;
    const int64_t dims[4] = {R, C, oh, ow}, P = H * W, nblk = (C + cw - 1) / cw;
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, 4, dims, &out));
    int nt = 1;
#ifdef _OPENMP
    const size_t lim = par_work_override ? par_work_override : ROI_PAR_WORK_DEFAULT;
    if (work >= (double)lim && R > 1) nt = omp_get_max_threads();
    if (nt < 1) nt = 1;
#else
    (void)work;
#endif
    /* scratch: the blocked map (none for one f32 channel: the map is its own), a group's taps,
     * then per thread the axis tables, its own taps, the bins' results (and their transpose) and
     * a piece of the map widened to f32 */
    const bool own_map = !(C == 1 && x->dtype == MIXRT_DTYPE_F32);
    const size_t map_bytes =
        own_map ? roi_align64((size_t)N * (size_t)nblk * (size_t)P * (size_t)cw * sizeof(float)) : 0;
    const size_t grp_bytes = ngrp ? roi_align64((size_t)gmax * sizeof(struct mixrt_roi_tap)) : 0;
    const size_t tab_y = roi_align64((size_t)ymax * sizeof(struct roi_axis)),
                 tab_x = roi_align64((size_t)xmax * sizeof(struct roi_axis)),
                 taps = roi_align64((size_t)local * sizeof(struct mixrt_roi_tap)),
                 bufs = roi_align64((size_t)ROI_MAX_UNITS * (size_t)cw * sizeof(float)),
                 wide = roi_align64((size_t)cw * ROI_PIX * sizeof(float));
    const size_t per = tab_y + tab_x + taps + 2 * bufs + wide;
    mem_bytes = map_bytes + grp_bytes + (size_t)nt * per + 64;
    mem = mixrt_kernel_scratch(k, mem_bytes, &owned);
    if (!mem) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY,
                                    "no memory for the RoiAlign map and taps (%zu bytes)", mem_bytes);
        goto fail;
    }
    char *base = (char *)roi_align64((size_t)(uintptr_t)mem);
    float *map = (float *)base;
    struct roi_run run = {.map = own_map ? map : (const float *)x->data, .geom = geom};
    run.taps = (struct mixrt_roi_tap *)(base + map_bytes);
    run.C = C, run.H = H, run.W = W, run.oh = oh, run.ow = ow, run.bins = bins, run.cw = cw, run.nblk = nblk;
    run.budget = budget, run.local = local, run.max_mode = max_mode, run.avx = mixrt_roi_has_avx512();
    run.dt = x->dtype, run.out = out->data;
    /* images no roi reads are not copied */
    if (own_map && !(used = mixrt_calloc(k->ctx, (size_t)N, sizeof(bool)))) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %lld flags", (long long)N);
        goto fail;
    }
    for (int64_t r = 0; used && r < R; r++) used[geom[r].b] = true;
    const int64_t pieces = (P + ROI_PIX - 1) / ROI_PIX, tasks = own_map ? N * nblk * pieces : 0;
    const size_t es = mixrt_dtype_size(x->dtype);
#ifdef _OPENMP
#pragma omp parallel num_threads(nt) if (nt > 1)
#endif
    {
        char *mine = base + map_bytes + grp_bytes + (size_t)roi_thread_num() * per;
        const struct roi_thread T = {
            (struct roi_axis *)mine, (struct roi_axis *)(mine + tab_y), (struct mixrt_roi_tap *)(mine + tab_y + tab_x),
            (float *)(mine + tab_y + tab_x + taps), (float *)(mine + tab_y + tab_x + taps + bufs)};
        float *widened = (float *)(mine + tab_y + tab_x + taps + 2 * bufs);
        /* the map, NCHW to [N][nblk][P][cw] in f32 */
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t t = 0; t < tasks; t++) {
            const int64_t n = t / (nblk * pieces), q = t / pieces % nblk, p0 = t % pieces * ROI_PIX;
            const int64_t np = P - p0 < ROI_PIX ? P - p0 : ROI_PIX, cq = C - q * cw < cw ? C - q * cw : cw;
            if (!used[n]) continue;
            const char *src = (const char *)x->data + ((size_t)(n * C + q * cw) * (size_t)P + (size_t)p0) * es;
            float *dst = map + (((size_t)n * (size_t)nblk + (size_t)q) * (size_t)P + (size_t)p0) * (size_t)cw;
            if (x->dtype == MIXRT_DTYPE_F32) {
                roi_transpose(&run, (const float *)src, P, cq, np, dst, cw);
                continue;
            }
            for (int64_t c = 0; c < cq; c++) {
                const void *row = src + (size_t)c * (size_t)P * es;
                if (x->dtype == MIXRT_DTYPE_BF16)
                    mixrt_bf16_to_f32(row, widened + c * np, (size_t)np);
                else
                    mixrt_f16_to_f32(row, widened + c * np, (size_t)np);
            }
            roi_transpose(&run, widened, np, cq, np, dst, cw);
        }
        /* per group: its taps, then block by block every roi of it (one block's plane is read by
         * the whole group before the next block's; the same rois go to the same thread each block) */
        for (int64_t gi = 0; gi < ngrp; gi++) {
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 4)
#endif
            for (int64_t r = grp_lo[gi]; r < grp_lo[gi + 1]; r++) {
                const struct roi_geom *g = &geom[r];
                if (g->grp != gi) continue;
                const int64_t ns = g->gh * g->gw;
                roi_tables(&run, &T, r);
                for (int64_t bin = 0; bin < bins; bin++)
                    roi_taps(&run, &T, g, bin, 0, ns, run.taps + g->tap + bin * ns);
            }
            for (int64_t q = 0; q < nblk; q++) {
#ifdef _OPENMP
#pragma omp for schedule(static) nowait
#endif
                for (int64_t r = grp_lo[gi]; r < grp_lo[gi + 1]; r++)
                    if (geom[r].grp == gi) roi_cached(&run, &T, r, q);
            }
#ifdef _OPENMP
#pragma omp barrier
#endif
        }
#ifdef _OPENMP
#pragma omp for schedule(dynamic, 1)
#endif
        for (int64_t r = 0; r < R; r++)
            if (geom[r].grp < 0) roi_big(&run, &T, r);
#if defined(__x86_64__)
        if (run.avx) mixrt_roi_fence_avx512();
#endif
    }
fail:
    if (used) mixrt_free(k->ctx, used, (size_t)N * sizeof(bool));
    if (mem && owned) mixrt_free(k->ctx, mem, mem_bytes);
    if (grp_lo) mixrt_free(k->ctx, grp_lo, (size_t)(ngrp + 1) * sizeof(int64_t));
    mixrt_free(k->ctx, geom, (size_t)R * sizeof(*geom));
    return status;
}

const struct mixrt_cpu_kernel mixrt_roialign_kernels[] = {
    {"nn_roialign", "", "RoiAlign", roi_supports, NULL, NULL, roi_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
