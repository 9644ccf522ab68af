/* ref_signal.c - reference kernels of the signal family: DFT, STFT, the Hann/Hamming/Blackman
 * windows and MelWeightMatrix. Invariant: all arithmetic is in double with a twiddle table
 * exact to double precision (angles reduced as (k*t) mod n, never accumulated); outputs round once. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/ref.h"

#define SIG_PI 3.14159265358979323846
/* Longest transform accepted: keeps (k * t) mod n inside uint64 and the tables sane. */
#define SIG_MAX_DFT ((int64_t)1 << 30)

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

static double *dalloc(struct mixrt_kernel_ctx *k, size_t n) {
    double *p = mixrt_calloc(k->ctx, n ? n : 1, sizeof(double));
    if (!p) mixrt_error_prefix(k->ctx, "cannot run %s node '%s'", k->node->op_type, k->node->name);
    return p;
}

static void dfree(struct mixrt_kernel_ctx *k, double *p, size_t n) {
    if (p) mixrt_free(k->ctx, p, (n ? n : 1) * sizeof(double));
}

/* A one-element int32/int64 input (scalar or [1]). */
static mixrt_status read_int_scalar(struct mixrt_kernel_ctx *k, int i, int64_t *v) {
    const struct mixrt_tensor *t = NULL;
    mixrt_status status = mixrt_kernel_input(k, i, &t);
    if (status != MIXRT_STATUS_OK) return status;
    if (t->dtype != MIXRT_DTYPE_I32 && t->dtype != MIXRT_DTYPE_I64)
        return bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, i, t, "expected an i32 or i64 scalar");
    if (mixrt_tensor_numel(t) != 1 || t->rank > 1)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, t, "expected a scalar");
    *v = mixrt_load_i64(t->data, t->dtype, 0);
    return MIXRT_STATUS_OK;
}

/* A one-element float input. */
static mixrt_status read_float_scalar(struct mixrt_kernel_ctx *k, int i, double *v) {
    const struct mixrt_tensor *t = NULL;
    mixrt_status status = mixrt_kernel_check_float(k, i);
    if (status != MIXRT_STATUS_OK) return status;
    t = k->in[i];
    if (mixrt_tensor_numel(t) != 1 || t->rank > 1)
        return bad_input(k, MIXRT_STATUS_INVALID_MODEL, i, t, "expected a scalar");
    *v = mixrt_load_f64(t->data, t->dtype, 0);
    return MIXRT_STATUS_OK;
}

/* ---- the transform ------------------------------------------------------------------------- */

/* cos/sin of 2*pi*j/n for j in [0, n). */
static mixrt_status twiddles(struct mixrt_kernel_ctx *k, int64_t n, double **cs, double **sn) {
    *cs = dalloc(k, (size_t)n);
    *sn = *cs ? dalloc(k, (size_t)n) : NULL;
    if (!*cs || !*sn) {
        dfree(k, *cs, (size_t)n);
        *cs = NULL;
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    for (int64_t j = 0; j < n; j++) {
        double a = 2.0 * SIG_PI * (double)j / (double)n;
        (*cs)[j] = cos(a);
        (*sn)[j] = sin(a);
    }
    return MIXRT_STATUS_OK;
}

/* One transform of length n over m = min(len, n) input points x[t*xs] (re, im; im may be NULL),
 * bins [0, bins) into y[b*ys] (interleaved re, im). Forward uses exp(-2*pi*i*b*t/n); inverse
 * exp(+...) and 1/n. */
static void dft_line(const double *cs, const double *sn, int64_t n, const double *xr, const double *xi, size_t xs,
                     int64_t m, double *y, size_t ys, int64_t bins, bool inverse) {
    double sign = inverse ? 1.0 : -1.0, scale = inverse ? 1.0 / (double)n : 1.0;
    for (int64_t b = 0; b < bins; b++) {
        double re = 0, im = 0;
        uint64_t j = 0, step = (uint64_t)b;
        for (int64_t t = 0; t < m; t++) {
            double c = cs[j], s = sign * sn[j];
            double ar = xr[(size_t)t * xs], ai = xi ? xi[(size_t)t * xs] : 0.0;
            re += ar * c - ai * s;
            im += ar * s + ai * c;
            j += step;
            if (j >= (uint64_t)n) j %= (uint64_t)n;
        }
        y[(size_t)b * ys] = re * scale;
        y[(size_t)b * ys + 1] = im * scale;
    }
}

static mixrt_status run_dft(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    double *x = NULL, *y = NULL, *cs = NULL, *sn = NULL;
    size_t nx = 0, ny = 0;
    int64_t n = 0;
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    const struct mixrt_tensor *in = k->in[0];
    int r = in->rank;
    if (r < 2 || (in->dims[r - 1] != 1 && in->dims[r - 1] != 2)) {
        status = bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, in,
                           "expected [batch, signal dims..., 1 or 2] (real or complex)");
        goto fail;
    }
    int64_t axis = 0;
    if (k->opset >= 20) {
        axis = -2;
        if (mixrt_kernel_opt_input(k, 2)) MIXRT_TRY(read_int_scalar(k, 2, &axis));
        if (axis < 0) axis += r;
    } else {
        /* Opset 17 counts a negative axis over the signal dims (the complex dim excluded). */
        axis = mixrt_node_attr_int(k->node, "axis", 1);
        if (axis < 0) axis += r - 1;
    }
    if (axis < 0 || axis > r - 2) {
        status = mixrt_kernel_error(
            k, MIXRT_STATUS_INVALID_MODEL,
            "axis %lld is out of range for input #0 of rank %d (the last dim is real/imaginary)", (long long)axis, r);
        goto fail;
    }
    int64_t inverse = mixrt_node_attr_int(k->node, "inverse", 0);
    int64_t onesided = mixrt_node_attr_int(k->node, "onesided", 0);
    int64_t len = in->dims[axis];
    n = len;
    if (mixrt_kernel_opt_input(k, 1)) MIXRT_TRY(read_int_scalar(k, 1, &n));
    if (n < 1 || n > SIG_MAX_DFT) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "dft_length %lld is outside [1, %lld]", (long long)n,
                                    (long long)SIG_MAX_DFT);
        goto fail;
    }
    int64_t bins = onesided ? n / 2 + 1 : n;
    int64_t odims[MIXRT_MAX_RANK];
    memcpy(odims, in->dims, sizeof(int64_t) * (size_t)r);
    odims[axis] = bins;
    odims[r - 1] = 2;
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, in->dtype, r, odims, &out));
    ny = mixrt_tensor_numel(out);
    if (ny == 0) return MIXRT_STATUS_OK;
    nx = mixrt_tensor_numel(in);
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, in, &x));
    y = dalloc(k, ny);
    if (!y) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    MIXRT_TRY(twiddles(k, n, &cs, &sn));
    int64_t outer = 1, inner = 1, c = in->dims[r - 1];
    for (int d = 0; d < axis; d++) outer *= in->dims[d];
    for (int d = (int)axis + 1; d < r - 1; d++) inner *= in->dims[d];
    int64_t m = len < n ? len : n;
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const double *xr = x + ((size_t)(o * len) * (size_t)inner + (size_t)i) * (size_t)c;
            double *yo = y + ((size_t)(o * bins) * (size_t)inner + (size_t)i) * 2;
            dft_line(cs, sn, n, xr, c == 2 ? xr + 1 : NULL, (size_t)(inner * c), m, yo, (size_t)inner * 2, bins,
                     inverse != 0);
        }
    MIXRT_TRY(mixrt_convert(out->data, out->dtype, y, MIXRT_DTYPE_F64, ny));
fail:
    dfree(k, x, nx);
    dfree(k, y, ny);
    dfree(k, cs, (size_t)n);
    dfree(k, sn, (size_t)n);
    return status;
}

static mixrt_status run_stft(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    double *x = NULL, *w = NULL, *y = NULL, *fr = NULL, *cs = NULL, *sn = NULL;
    size_t nx = 0, ny = 0, nw = 0;
    int64_t fl = 0;
    const struct mixrt_tensor *win = mixrt_kernel_opt_input(k, 2);
    MIXRT_TRY(mixrt_kernel_check_float(k, 0));
    const struct mixrt_tensor *sig = k->in[0];
    if (sig->rank != 3 || (sig->dims[2] != 1 && sig->dims[2] != 2)) {
        status = bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, sig, "expected [batch, signal_length, 1 or 2]");
        goto fail;
    }
    int64_t step = 0;
    MIXRT_TRY(read_int_scalar(k, 1, &step));
    if (step < 1) {
        status =
            mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "frame_step is %lld, expected >= 1", (long long)step);
        goto fail;
    }
    if (win) {
        MIXRT_TRY(mixrt_kernel_check_same_dtype(k, 0, 2));
        if (win->rank != 1) {
            status = bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, win, "expected a 1-D window");
            goto fail;
        }
    }
    int64_t len = sig->dims[1], c = sig->dims[2], batch = sig->dims[0];
    fl = win ? win->dims[0] : len;
    if (mixrt_kernel_opt_input(k, 3)) {
        MIXRT_TRY(read_int_scalar(k, 3, &fl));
        if (win && win->dims[0] != fl) {
            status =
                mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "window has %lld points but frame_length is %lld",
                                   (long long)win->dims[0], (long long)fl);
            goto fail;
        }
    }
    if (fl < 1 || fl > SIG_MAX_DFT || fl > len) {
        status =
            mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "frame_length %lld must be in [1, signal_length %lld]",
                               (long long)fl, (long long)len);
        goto fail;
    }
    int64_t onesided = mixrt_node_attr_int(k->node, "onesided", 1);
    int64_t frames = 1 + (len - fl) / step, bins = onesided ? fl / 2 + 1 : fl;
    int64_t odims[4] = {batch, frames, bins, 2};
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, sig->dtype, 4, odims, &out));
    ny = mixrt_tensor_numel(out);
    if (ny == 0) return MIXRT_STATUS_OK;
    nx = mixrt_tensor_numel(sig);
    MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, sig, &x));
    if (win) {
        nw = mixrt_tensor_numel(win);
        MIXRT_TRY(mixrt_tensor_to_f64(k->ctx, win, &w));
    }
    y = dalloc(k, ny);
    fr = y ? dalloc(k, (size_t)fl * 2) : NULL;
    if (!fr) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    MIXRT_TRY(twiddles(k, fl, &cs, &sn));
    for (int64_t b = 0; b < batch; b++)
        for (int64_t f = 0; f < frames; f++) {
            /* The windowed frame, de-interleaved: fr[0..fl) real, fr[fl..2fl) imaginary. */
            for (int64_t t = 0; t < fl; t++) {
                const double *p = x + (size_t)((b * len + f * step + t) * c);
                double wt = w ? w[t] : 1.0;
                fr[t] = p[0] * wt;
                fr[fl + t] = c == 2 ? p[1] * wt : 0.0;
            }
            dft_line(cs, sn, fl, fr, c == 2 ? fr + fl : NULL, 1, fl, y + (size_t)((b * frames + f) * bins * 2), 2, bins,
                     false);
        }
    MIXRT_TRY(mixrt_convert(out->data, out->dtype, y, MIXRT_DTYPE_F64, ny));
fail:
    dfree(k, x, nx);
    dfree(k, w, nw);
    dfree(k, y, ny);
    dfree(k, fr, (size_t)fl * 2);
    dfree(k, cs, (size_t)fl);
    dfree(k, sn, (size_t)fl);
    return status;
}

/* ---- windows and the mel matrix ---------------------------------------------------------------- */

/* The output_datatype attribute: one of T2 (every int, f16, f32, f64, bf16). */
static mixrt_status out_datatype(struct mixrt_kernel_ctx *k, mixrt_dtype *dt) {
    int64_t v = mixrt_node_attr_int(k->node, "output_datatype", MIXRT_DTYPE_F32);
    switch (v) {
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
        *dt = (mixrt_dtype)v;
        return MIXRT_STATUS_OK;
    default:
        return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                                  "output_datatype %lld is not an integer or float type", (long long)v);
    }
}

enum window_kind { WIN_HANN, WIN_HAMMING, WIN_BLACKMAN };

static mixrt_status run_window(struct mixrt_kernel_ctx *k, enum window_kind kind) {
    mixrt_status status = MIXRT_STATUS_OK;
    int64_t size = 0;
    mixrt_dtype dt = MIXRT_DTYPE_F32;
    MIXRT_TRY(read_int_scalar(k, 0, &size));
    MIXRT_TRY(out_datatype(k, &dt));
    if (size < 0) return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "size is %lld", (long long)size);
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, dt, 1, &size, &out));
    /* Periodic: the first size points of a size+1 symmetric window. A symmetric window of one
     * point has no period; its single angle is taken as 0. */
    int64_t period = mixrt_node_attr_int(k->node, "periodic", 1) ? size : size - 1;
    for (int64_t i = 0; i < size; i++) {
        double a = period > 0 ? 2.0 * SIG_PI * (double)i / (double)period : 0.0, v;
        switch (kind) {
        case WIN_HANN:
            v = 0.5 - 0.5 * cos(a);
            break;
        case WIN_HAMMING:
            v = 25.0 / 46.0 - (21.0 / 46.0) * cos(a);
            break;
        default:
            v = 0.42 - 0.5 * cos(a) + 0.08 * cos(2.0 * a);
            break;
        }
        mixrt_store_f64(out->data, dt, (size_t)i, v);
    }
fail:
    return status;
}

static mixrt_status run_hann(struct mixrt_kernel_ctx *k) { return run_window(k, WIN_HANN); }
static mixrt_status run_hamming(struct mixrt_kernel_ctx *k) { return run_window(k, WIN_HAMMING); }
static mixrt_status run_blackman(struct mixrt_kernel_ctx *k) { return run_window(k, WIN_BLACKMAN); }

/* Triangular filters between num_mel_bins + 2 edges equally spaced on the mel scale (the step is
 * the span over num_mel_bins + 2, as the ONNX reference does), each edge mapped to the spectrogram
 * bin floor((dft_length + 1) * hz / sample_rate). Filter points outside the spectrogram are dropped. */
static mixrt_status run_mel_weight_matrix(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    int64_t mels = 0, dft = 0, rate = 0, *edge = NULL;
    double *w = NULL, lo = 0, hi = 0;
    size_t nw = 0;
    mixrt_dtype dt = MIXRT_DTYPE_F32;
    MIXRT_TRY(read_int_scalar(k, 0, &mels));
    MIXRT_TRY(read_int_scalar(k, 1, &dft));
    MIXRT_TRY(read_int_scalar(k, 2, &rate));
    MIXRT_TRY(read_float_scalar(k, 3, &lo));
    MIXRT_TRY(read_float_scalar(k, 4, &hi));
    MIXRT_TRY(out_datatype(k, &dt));
    if (mels < 0 || dft < 1 || rate < 1 || mels > SIG_MAX_DFT || dft > SIG_MAX_DFT) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                    "num_mel_bins %lld, dft_length %lld, sample_rate %lld: expected >= 0, >= 1, >= 1",
                                    (long long)mels, (long long)dft, (long long)rate);
        goto fail;
    }
    if (!(lo >= 0 && hi >= lo && isfinite(hi))) {
        status = mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL,
                                    "expected 0 <= lower_edge_hertz (%g) <= upper_edge_hertz (%g)", lo, hi);
        goto fail;
    }
    int64_t spec = dft / 2 + 1;
    int64_t odims[2] = {spec, mels};
    struct mixrt_tensor *out = NULL;
    MIXRT_TRY(mixrt_kernel_output(k, 0, dt, 2, odims, &out));
    nw = mixrt_tensor_numel(out);
    if (nw == 0) return MIXRT_STATUS_OK;
    w = dalloc(k, nw);
    edge = w ? mixrt_calloc(k->ctx, (size_t)mels + 2, sizeof(int64_t)) : NULL;
    if (!edge) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    double lo_mel = 2595.0 * log10(1.0 + lo / 700.0), hi_mel = 2595.0 * log10(1.0 + hi / 700.0);
    double mel_step = (hi_mel - lo_mel) / (double)(mels + 2);
    for (int64_t i = 0; i < mels + 2; i++) {
        double hz = 700.0 * (pow(10.0, ((double)i * mel_step + lo_mel) / 2595.0) - 1.0);
        double bin = floor((double)(dft + 1) * hz / (double)rate);
        edge[i] = bin < 1e18 ? (int64_t)bin : (int64_t)1e18; /* far past the last bin either way */
    }
    for (int64_t i = 0; i < mels; i++) {
        int64_t l = edge[i], c = edge[i + 1], h = edge[i + 2];
        if (c == l) {
            if (c >= 0 && c < spec) w[c * mels + i] = 1.0;
        } else {
            for (int64_t j = l > 0 ? l : 0; j <= c && j < spec; j++)
                w[j * mels + i] = (double)(j - l) / (double)(c - l);
        }
        if (h > c)
            for (int64_t j = c > 0 ? c : 0; j < h && j < spec; j++) w[j * mels + i] = (double)(h - j) / (double)(h - c);
    }
    MIXRT_TRY(mixrt_convert(out->data, dt, w, MIXRT_DTYPE_F64, nw));
fail:
    dfree(k, w, nw);
    if (edge) mixrt_free(k->ctx, edge, ((size_t)mels + 2) * sizeof(int64_t));
    return status;
}

const struct mixrt_op_def mixrt_ref_ops_signal[] = {
    {"", "DFT", 17, 23, run_dft},
    {"", "STFT", 17, 23, run_stft},
    {"", "HannWindow", 17, 23, run_hann},
    {"", "HammingWindow", 17, 23, run_hamming},
    {"", "BlackmanWindow", 17, 23, run_blackman},
    {"", "MelWeightMatrix", 17, 23, run_mel_weight_matrix},
    {NULL, NULL, 0, 0, NULL},
};
