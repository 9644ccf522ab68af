/* nnops.c - fast CPU kernel candidates for nn ops (pools, softmax, normalizations, Reduce
 * Sum/Mean/Max) in f32 and bf16: f32 compute and accumulation, long sums pairwise over short
 * vector blocks, bf16 outputs rounded once (RNE) from f32. Invariant: a case outside the
 * fast path (a dtype or rank the graph did not show, an invalid attribute or shape) runs the
 * reference kernel instead, so errors and odd cases behave exactly as the reference's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/kernels.h"
#include "backend/cpu/nnops_impl.h"

/* ---- scalar primitives and ISA choice ------------------------------------------------- */

static float sum_scalar(const float *x, size_t n) {
    float a[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) a[l] += x[i + (size_t)l];
    for (; i < n; i++) a[i & 15] += x[i];
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) a[l] += a[l + w];
    return a[0];
}

static float sumsq_dev_scalar(const float *x, size_t n, float mean) {
    float a[16] = {0};
    size_t i = 0;
    for (; i + 16 <= n; i += 16)
        for (int l = 0; l < 16; l++) {
            float d = x[i + (size_t)l] - mean;
            a[l] += d * d;
        }
    for (; i < n; i++) {
        float d = x[i] - mean;
        a[i & 15] += d * d;
    }
    for (int w = 8; w >= 1; w /= 2)
        for (int l = 0; l < w; l++) a[l] += a[l + w];
    return a[0];
}

static inline float max_nan(float a, float v) { return (v > a || v != v) && a == a ? v : a; }

static float max_scalar(const float *x, size_t n) {
    float m = -INFINITY;
    for (size_t i = 0; i < n; i++) m = max_nan(m, x[i]);
    return m;
}

static void exp_scalar(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] = expf(x[i]);
}

static void vmax_scalar(float *acc, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) acc[i] = max_nan(acc[i], x[i]);
}

static void gemv_scalar(const float *w, size_t rows, size_t n, const float *x, float *y) {
    for (size_t r = 0; r < rows; r++) {
        const float *wr = w + r * n;
        float a[16] = {0};
        size_t i = 0;
        for (; i + 16 <= n; i += 16)
            for (int l = 0; l < 16; l++) a[l] += wr[i + (size_t)l] * x[i + (size_t)l];
        for (; i < n; i++) a[i & 15] += wr[i] * x[i];
        for (int v = 8; v >= 1; v /= 2)
            for (int l = 0; l < v; l++) a[l] += a[l + v];
        y[r] = a[0];
    }
}

void mixrt_nnops_colsum_scalar(float *acc, const void *x, bool bf, size_t rows, size_t ld, size_t n) {
    enum { CB = 64 };
    for (size_t j0 = 0; j0 < n; j0 += CB) {
        size_t nj = n - j0 < CB ? n - j0 : CB;
        for (size_t r0 = 0; r0 < rows; r0 += MIXRT_NNOPS_BLOCK) {
            size_t r1 = rows - r0 < MIXRT_NNOPS_BLOCK ? rows : r0 + MIXRT_NNOPS_BLOCK;
            float part[CB] = {0};
            for (size_t r = r0; r < r1; r++)
                for (size_t j = 0; j < nj; j++)
                    part[j] += bf ? mixrt_bf16_to_float(((const mixrt_bf16 *)x)[r * ld + j0 + j])
                                  : ((const float *)x)[r * ld + j0 + j];
            for (size_t j = 0; j < nj; j++) acc[j0 + j] += part[j];
        }
    }
}

/* Element i of a channels-last row: f32, or bf16 widened exactly. */
static inline float in_last_at(const void *x, bool bf, size_t i) {
    if (!bf) return ((const float *)x)[i];
    uint32_t u = (uint32_t)((const uint16_t *)x)[i] << 16;
    float f;
    memcpy(&f, &u, sizeof(f));
    return f;
}

/* The centers are close to the values (the first row's, then the mean), so x - center is exact
 * wherever they are within a factor 2 (Sterbenz) and the f32 sums are of spread-sized terms: a
 * per-channel offset far above the spread costs nothing. */
void mixrt_nnops_in_partial_scalar(const void *x, bool bf, size_t C, size_t c0, size_t nc, size_t s0, size_t s1,
                                   const float *center, const float *lo, bool square, double *out) {
    double acc[MIXRT_NNOPS_IN_COLS];
    float blk[MIXRT_NNOPS_IN_COLS], row[MIXRT_NNOPS_IN_COLS];
    for (size_t j = 0; j < nc; j++) acc[j] = 0.0;
    for (size_t s = s0; s < s1; s += MIXRT_NNOPS_IN_ROWS) {
        size_t se = s + MIXRT_NNOPS_IN_ROWS < s1 ? s + MIXRT_NNOPS_IN_ROWS : s1;
        for (size_t j = 0; j < nc; j++) blk[j] = 0.0f;
        for (size_t r = s; r < se; r++) {
            const float *v = (const float *)x + r * C + c0;
            if (bf) {
                const uint16_t *h = (const uint16_t *)x + r * C + c0;
                for (size_t j = 0; j < nc; j++) row[j] = in_last_at(h, true, j);
                v = row;
            }
            if (!square)
                for (size_t j = 0; j < nc; j++) blk[j] += v[j] - center[j];
            else
                for (size_t j = 0; j < nc; j++) {
                    float d = (v[j] - center[j]) - lo[j];
                    blk[j] += d * d;
                }
        }
        for (size_t j = 0; j < nc; j++) acc[j] += (double)blk[j];
    }
    for (size_t j = 0; j < nc; j++) out[j] = acc[j];
}

void mixrt_nnops_in_norm_row_scalar(const void *x, bool bf, size_t C, const float *mean, const float *mlo,
                                    const float *a, const float *b, float *y) {
    for (size_t j = 0; j < C; j++) y[j] = ((in_last_at(x, bf, j) - mean[j]) - mlo[j]) * a[j] + b[j];
}

/* vmaxps's rule with a NaN in acc kept (mixrt_v512_max_nan): equal values, +0 and -0 among
 * them, give v, so the tables agree bit for bit. */
static inline float max_nan_v(float acc, float v) { return acc != acc ? acc : acc > v ? acc : v; }

/* bf16 bits as an int16 key ordered as the values (negative magnitudes flipped, -0 below
 * +0); the same function maps a key back. */
static inline uint16_t bf16_key(uint16_t b) { return b & 0x8000u ? (uint16_t)(b ^ 0x7FFFu) : b; }

/* The bf16 row as int16, nnops_avx512.c's two first choices in its order, so both tables give
 * the same bits (-0 and +0 included). keyed false: raw bits, when none of the rows holds a
 * sign bit (non-negative bf16 values, NaNs among them, order as int16 as they are); keyed true:
 * keys, when none holds a NaN. False when the rows do not qualify. */
static bool maxpool_row_i16_scalar(const void *const *rows, int nrows, size_t W, size_t C, const int64_t *c0,
                                   const int64_t *c1, size_t OW, int16_t *tmp, mixrt_bf16 *y, bool keyed) {
    const size_t n = W * C;
    for (int r = 0; r < nrows; r++)
        for (size_t j = 0; j < n; j++) {
            const uint16_t b = ((const uint16_t *)rows[r])[j];
            if (keyed ? (b & 0x7FFFu) > 0x7F80u : (b & 0x8000u) != 0) return false;
        }
    for (size_t j = 0; j < n; j++) {
        int16_t acc = INT16_MIN;
        for (int r = 0; r < nrows; r++) {
            const uint16_t b = ((const uint16_t *)rows[r])[j];
            const int16_t v = (int16_t)(keyed ? bf16_key(b) : b);
            acc = v > acc ? v : acc;
        }
        tmp[j] = acc;
    }
    for (size_t o = 0; o < OW; o++)
        for (size_t c = 0; c < C; c++) {
            int16_t acc = INT16_MIN;
            for (int64_t t = c0[o]; t < c1[o]; t++) {
                const int16_t v = tmp[(size_t)t * C + c];
                acc = v > acc ? v : acc;
            }
            y[o * C + c].bits = keyed ? bf16_key((uint16_t)acc) : (uint16_t)acc;
        }
    return true;
}

void mixrt_nnops_maxpool_row_scalar(const void *const *rows, int nrows, bool bf, size_t W, size_t C,
                                    const int64_t *c0, const int64_t *c1, size_t OW, float *tmp, void *y) {
    if (bf && (maxpool_row_i16_scalar(rows, nrows, W, C, c0, c1, OW, (int16_t *)tmp, y, false) ||
               maxpool_row_i16_scalar(rows, nrows, W, C, c0, c1, OW, (int16_t *)tmp, y, true)))
        return;
    const size_t n = W * C;
    for (size_t j = 0; j < n; j++) {
        float acc = in_last_at(rows[0], bf, j);
        for (int r = 1; r < nrows; r++) acc = max_nan_v(acc, in_last_at(rows[r], bf, j));
        tmp[j] = acc;
    }
    for (size_t o = 0; o < OW; o++)
        for (size_t c = 0; c < C; c++) {
            float acc = tmp[(size_t)c0[o] * C + c];
            for (int64_t t = c0[o] + 1; t < c1[o]; t++) acc = max_nan_v(acc, tmp[(size_t)t * C + c]);
            if (bf) {
                uint32_t u;
                memcpy(&u, &acc, sizeof u);
                ((mixrt_bf16 *)y)[o * C + c].bits = (uint16_t)(u >> 16);
            } else {
                ((float *)y)[o * C + c] = acc;
            }
        }
}

const struct mixrt_nnops_isa mixrt_nnops_isa_scalar = {"scalar",
                                                       sum_scalar,
                                                       sumsq_dev_scalar,
                                                       max_scalar,
                                                       exp_scalar,
                                                       vmax_scalar,
                                                       gemv_scalar,
                                                       mixrt_nnops_colsum_scalar,
                                                       mixrt_nnops_in_partial_scalar,
                                                       mixrt_nnops_in_norm_row_scalar,
                                                       mixrt_nnops_maxpool_row_scalar};

static int g_force_scalar, g_force_avx2; /* tests only */

void mixrt_nnops_force_scalar(bool scalar) { g_force_scalar = scalar; }
void mixrt_nnops_force_avx2(bool avx2) { g_force_avx2 = avx2; }

const struct mixrt_nnops_isa *mixrt_nnops_isa(void) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    /* nnops_avx512.c is compiled with F/BW/VL/DQ enabled: all four must be there. */
    if (!g_force_scalar && !g_force_avx2 && mixrt_cpu_avx512())
        return &mixrt_nnops_isa_avx512;
    if (!g_force_scalar && f->avx2 && f->fma) return &mixrt_nnops_isa_avx2;
#endif
    return &mixrt_nnops_isa_scalar;
}

/* ---- pairwise reductions on top of the block primitives ------------------------------- */

/* Halves at a multiple of 16 until a block fits MIXRT_NNOPS_BLOCK: the error is that of one
 * block plus one rounding per level. */
static float psum(const struct mixrt_nnops_isa *isa, const float *x, size_t n) {
    if (n <= MIXRT_NNOPS_BLOCK) return isa->sum(x, n);
    size_t h = (n / 2) & ~(size_t)15;
    return psum(isa, x, h) + psum(isa, x + h, n - h);
}

static float psumsq_dev(const struct mixrt_nnops_isa *isa, const float *x, size_t n, float mean) {
    if (n <= MIXRT_NNOPS_BLOCK) return isa->sumsq_dev(x, n, mean);
    size_t h = (n / 2) & ~(size_t)15;
    return psumsq_dev(isa, x, h, mean) + psumsq_dev(isa, x + h, n - h, mean);
}

/* Mean and 1/sqrt(population variance + eps) of a row, two-pass. */
static void row_stats(const struct mixrt_nnops_isa *isa, const float *x, size_t n, float eps, float *mean,
                      float *inv) {
    float m = n ? psum(isa, x, n) / (float)n : 0.0f;
    float v = n ? psumsq_dev(isa, x, n, m) / (float)n : 0.0f;
    *mean = m;
    *inv = (float)(1.0 / sqrt((double)v + (double)eps));
}

#define COL_BLOCK 16  /* rows summed straight into one partial before it is merged */
#define COL_LEVELS 64 /* binary-counter levels: enough for any size_t row count */

/* out[j] = sum over r < rows of x[r * cols + j] (max instead when is_max). Sums go through a
 * binary counter of partials (the pairwise tree built left to right), scratch holding
 * (levels + 1) * cols floats, levels = the bit length of rows / COL_BLOCK. */
static void col_reduce(const struct mixrt_nnops_isa *isa, const float *x, size_t rows, size_t cols, bool is_max,
                       float *out, float *scratch) {
    if (rows == 0) {
        for (size_t j = 0; j < cols; j++) out[j] = is_max ? -INFINITY : 0.0f;
        return;
    }
    if (is_max) {
        memcpy(out, x, cols * sizeof(float));
        for (size_t r = 1; r < rows; r++) isa->vmax(out, x + r * cols, cols);
        return;
    }
    float *cur = scratch, *level = scratch + cols;
    bool used[COL_LEVELS] = {false};
    int top = 0;
    for (size_t r0 = 0; r0 < rows; r0 += COL_BLOCK) {
        size_t r1 = r0 + COL_BLOCK < rows ? r0 + COL_BLOCK : rows;
        memcpy(cur, x + r0 * cols, cols * sizeof(float));
        for (size_t r = r0 + 1; r < r1; r++) {
            const float *xr = x + r * cols;
            for (size_t j = 0; j < cols; j++) cur[j] += xr[j];
        }
        int l = 0;
        for (; l < COL_LEVELS - 1 && used[l]; l++) {
            float *p = level + (size_t)l * cols;
            for (size_t j = 0; j < cols; j++) cur[j] += p[j];
            used[l] = false;
        }
        memcpy(level + (size_t)l * cols, cur, cols * sizeof(float));
        used[l] = true;
        if (l + 1 > top) top = l + 1;
    }
    bool first = true;
    for (int l = 0; l < top; l++) {
        if (!used[l]) continue;
        const float *p = level + (size_t)l * cols;
        if (first) memcpy(out, p, cols * sizeof(float));
        else
            for (size_t j = 0; j < cols; j++) out[j] += p[j];
        first = false;
    }
}

/* Scratch floats col_reduce needs for rows x cols. */
static size_t col_scratch(size_t rows, size_t cols) {
    size_t levels = 1;
    for (size_t b = rows / COL_BLOCK; b; b >>= 1) levels++;
    return (levels + 1) * cols;
}

/* ---- shared kernel plumbing ------------------------------------------------------------ */

static bool fast_dtype(mixrt_dtype dt) { return dt == MIXRT_DTYPE_F32 || dt == MIXRT_DTYPE_BF16; }

static void say(char *why, size_t why_size, const char *fmt, const char *a) {
    if (why && why_size) snprintf(why, why_size, fmt, a);
}

/* Input 0 and output 0 are f32 or bf16, the same one. */
static bool io_supported(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs < 1 || n->outputs[0] < 0) {
        say(why, why_size, "%s", "no input #0 or output #0");
        return false;
    }
    mixrt_dtype in = g->values[n->inputs[0]].dtype, out = g->values[n->outputs[0]].dtype;
    if (!fast_dtype(in)) {
        say(why, why_size, "input #0 is %s, only f32 and bf16", in ? mixrt_dtype_name(in) : "of unknown dtype");
        return false;
    }
    if (out != in) {
        say(why, why_size, "output #0 is %s, expected the input's dtype", mixrt_dtype_name(out));
        return false;
    }
    return true;
}

/* Whether output i is used by the node. */
static bool output_used(const struct mixrt_node *n, int i) { return i < n->n_outputs && n->outputs[i] >= 0; }
static bool output_wanted(const struct mixrt_kernel_ctx *k, int i) {
    return i < k->n_out && (!k->out_wanted || k->out_wanted[i]);
}

/* Input i is present and f32/bf16 (the same dtype as input 0 when i > 0). */
static bool fast_input(const struct mixrt_kernel_ctx *k, int i) {
    if (i >= k->n_in || !k->in[i] || !fast_dtype(k->in[i]->dtype)) return false;
    return i == 0 || k->in[i]->dtype == k->in[0]->dtype;
}

/* max(n, 1) floats from the context (NULL with OUT_OF_MEMORY recorded, also when the byte
 * size overflows); free with ffree(k, p, n). */
static float *falloc(struct mixrt_kernel_ctx *k, size_t n) {
    if (n > SIZE_MAX / sizeof(float)) {
        mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "scratch of %zu floats overflows", n);
        return NULL;
    }
    return mixrt_alloc(k->ctx, (n ? n : 1) * sizeof(float));
}

static void ffree(struct mixrt_kernel_ctx *k, float *p, size_t n) {
    if (p) mixrt_free(k->ctx, p, (n ? n : 1) * sizeof(float));
}

/* f32 view of an f32/bf16 tensor: its data, or a converted copy in *owned (free with
 * ffree(k, *owned, numel)). */
static mixrt_status load_f32(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *t, const float **out,
                             float **owned) {
    size_t n = mixrt_tensor_numel(t);
    *owned = NULL;
    if (t->dtype == MIXRT_DTYPE_F32) {
        *out = t->data;
        return MIXRT_STATUS_OK;
    }
    if (!(*owned = falloc(k, n))) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_bf16_to_f32(t->data, *owned, n);
    *out = *owned;
    return MIXRT_STATUS_OK;
}

/* f32 destination for output y: its data, or scratch in *owned (free with ffree(k, *owned,
 * numel)) that store_f32 rounds into y. */
static mixrt_status out_f32(struct mixrt_kernel_ctx *k, struct mixrt_tensor *y, float **out, float **owned) {
    *owned = NULL;
    if (y->dtype == MIXRT_DTYPE_F32) {
        *out = y->data;
        return MIXRT_STATUS_OK;
    }
    if (!(*owned = falloc(k, mixrt_tensor_numel(y)))) return MIXRT_STATUS_OUT_OF_MEMORY;
    *out = *owned;
    return MIXRT_STATUS_OK;
}

static void store_f32(struct mixrt_tensor *y, const float *v) {
    if (y->dtype == MIXRT_DTYPE_BF16) mixrt_f32_to_bf16(v, y->data, mixrt_tensor_numel(y));
}

/* A float parameter tensor (any float dtype) with exactly count elements, as f32. NULL when
 * it does not fit (the caller falls back); *status set to OOM on allocation failure. */
static float *param_f32(struct mixrt_kernel_ctx *k, int i, size_t count, mixrt_status *status) {
    *status = MIXRT_STATUS_OK;
    if (i >= k->n_in || !k->in[i] || !mixrt_dtype_is_float(k->in[i]->dtype) || mixrt_tensor_numel(k->in[i]) != count)
        return NULL;
    float *p = falloc(k, count);
    if (!p) {
        *status = MIXRT_STATUS_OUT_OF_MEMORY;
        return NULL;
    }
    if (count) mixrt_convert(p, MIXRT_DTYPE_F32, k->in[i]->data, k->in[i]->dtype, count);
    return p;
}

/* ---- MaxPool / AveragePool (2-D NCHW; 1-D as H = 1) -------------------------------------
 * Both are separable over the rectangle of valid input positions: a horizontal pass reduces
 * each input row to the output columns, then a vertical pass reduces those rows to the
 * output rows. The average's divisor is the product of the per-axis counts (valid positions,
 * or positions inside the padded input with count_include_pad). */

#define POOL_ATTR_MAX ((int64_t)1 << 30)
#define POOL_DIM_MAX ((int64_t)1 << 31)

struct pool_axis {
    int64_t in, out, k, s, d, pb, pe;
};

/* One axis' window range for output position o: taps [*t0, *t1) land inside the input;
 * *cnt_pad counts taps inside the padded input. */
static void pool_taps(const struct pool_axis *a, int64_t o, int64_t *t0, int64_t *t1, int64_t *cnt_pad) {
    int64_t start = o * a->s - a->pb, lo = 0, hi = a->k, plo = 0, phi = a->k;
    if (start < 0) lo = (-start + a->d - 1) / a->d;
    if (start + (a->k - 1) * a->d >= a->in) hi = a->in - start <= 0 ? 0 : (a->in - 1 - start) / a->d + 1;
    if (start < -a->pb) plo = (-a->pb - start + a->d - 1) / a->d;
    if (start + (a->k - 1) * a->d >= a->in + a->pe) {
        int64_t lim = a->in + a->pe - start;
        phi = lim <= 0 ? 0 : (lim - 1) / a->d + 1;
    }
    if (hi < lo) hi = lo;
    if (phi < plo) phi = plo;
    *t0 = lo, *t1 = hi, *cnt_pad = phi - plo;
}

/* Reads the pool attributes for nd (1 or 2) axes into ax; false for anything the reference
 * should judge (missing or malformed attributes, outputs < 1). */
static bool pool_geometry(const struct mixrt_node *n, const struct mixrt_tensor *x, struct pool_axis *ax) {
    int nd = x->rank - 2;
    size_t nk = 0, ns = 0, ndl = 0, np = 0;
    const int64_t *ks = mixrt_node_attr_ints(n, "kernel_shape", &nk), *st = mixrt_node_attr_ints(n, "strides", &ns);
    const int64_t *dl = mixrt_node_attr_ints(n, "dilations", &ndl), *pd = mixrt_node_attr_ints(n, "pads", &np);
    if (!ks || nk != (size_t)nd || (st && ns != (size_t)nd) || (dl && ndl != (size_t)nd) || (pd && np != 2 * (size_t)nd))
        return false;
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    bool same = !strcmp(ap, "SAME_UPPER") || !strcmp(ap, "SAME_LOWER"), valid = !strcmp(ap, "VALID");
    if (!same && !valid && strcmp(ap, "NOTSET") && ap[0]) return false;
    bool ceil_mode = mixrt_node_attr_int(n, "ceil_mode", 0) != 0;
    for (int i = 0; i < nd; i++) {
        struct pool_axis *a = &ax[i];
        a->in = x->dims[2 + i], a->k = ks[i], a->s = st ? st[i] : 1, a->d = dl ? dl[i] : 1;
        a->pb = pd && !same && !valid ? pd[i] : 0, a->pe = pd && !same && !valid ? pd[nd + i] : 0;
        if (a->in > POOL_DIM_MAX || a->k < 1 || a->k > POOL_ATTR_MAX || a->s < 1 || a->s > POOL_ATTR_MAX || a->d < 1 ||
            a->d > POOL_ATTR_MAX || a->pb < 0 || a->pb > POOL_ATTR_MAX || a->pe < 0 || a->pe > POOL_ATTR_MAX)
            return false;
        int64_t dk = (a->k - 1) * a->d + 1;
        if (same) {
            a->out = (a->in + a->s - 1) / a->s;
            int64_t total = (a->out - 1) * a->s + dk - a->in;
            if (total < 0) total = 0;
            a->pb = !strcmp(ap, "SAME_UPPER") ? total / 2 : total - total / 2;
            a->pe = total - a->pb;
            continue;
        }
        if (a->in + a->pb + a->pe < dk) return false;
        a->out = mixrt_window_out(a->in, dk, a->s, a->pb, a->pe, ceil_mode);
    }
    if (nd == 1) { /* [N, C, W] as [N, C, 1, W] */
        ax[1] = ax[0];
        ax[0] = (struct pool_axis){.in = 1, .out = 1, .k = 1, .s = 1, .d = 1};
    }
    return true;
}

static bool pool_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!io_supported(g, n, why, why_size)) return false;
    int r = g->values[n->inputs[0]].rank;
    if (r != -1 && r != 3 && r != 4) {
        say(why, why_size, "%s", "only 1-D and 2-D pooling (rank 3 or 4)");
        return false;
    }
    if (output_used(n, 1)) {
        say(why, why_size, "%s", "the Indices output is not produced");
        return false;
    }
    size_t nk = 0;
    if (!mixrt_node_attr_ints(n, "kernel_shape", &nk)) {
        say(why, why_size, "%s", "no kernel_shape");
        return false;
    }
    return true;
}

/* The outputs [*a, *b) whose taps t0[o]..t1[o] are all k of the window (every tap inside, no
 * bounds needed), when they form one run; *a == *b otherwise. */
static void interior_run(const int64_t *t0, const int64_t *t1, size_t n, int64_t k, size_t *a, size_t *b) {
    *a = *b = n;
    for (size_t o = 0; o < n; o++)
        if (t0[o] == 0 && t1[o] == k) {
            if (*a == n) *a = o;
            *b = o + 1;
        }
    for (size_t o = *a; o < *b; o++)
        if (t0[o] != 0 || t1[o] != k) *b = *a; /* not one run: no interior shortcut */
}

/* One pool's geometry and tables, shared by the threads (each takes a range of planes).
 * [ia, ib): interior output columns; [oa, ob): interior output rows when the column pass
 * takes them as one block (max, stride and dilation 1), else empty; flat: the row pass's
 * interior as one run over the plane (see pool_planes). */
struct pool_job {
    const struct mixrt_tensor *x;
    struct mixrt_tensor *y;
    const struct mixrt_nnops_isa *isa;
    bool is_max;
    size_t H, W, OH, OW, ia, ib, oa, ob, nplane, nout;
    bool flat;
    const int64_t *w0, *w1, *wc, *h0, *h1, *hc;
    int64_t sw, dw, pw, kw, sh, dh, ph, kh;
};

/* Planes [p0, p1) with the scratch xp (a bf16 plane widened), tmp (the row pass), yp. */
static void pool_planes(const struct pool_job *J, size_t p0, size_t p1, float *xp, float *tmp, float *yp) {
    size_t H = J->H, W = J->W, OH = J->OH, OW = J->OW, ia = J->ia, ib = J->ib, oa = J->oa, ob = J->ob;
    size_t nplane = J->nplane, nout = J->nout;
    const int64_t *w0 = J->w0, *w1 = J->w1, *wc = J->wc, *h0 = J->h0, *h1 = J->h1, *hc = J->hc;
    int64_t sw = J->sw, dw = J->dw, pw = J->pw, kw = J->kw, sh = J->sh, dh = J->dh, ph = J->ph;
    bool is_max = J->is_max;
    float init = is_max ? -INFINITY : 0.0f;
    for (size_t p = p0; p < p1; p++) {
        const float *xs;
        if (J->x->dtype == MIXRT_DTYPE_F32) xs = (const float *)J->x->data + p * nplane;
        else {
            mixrt_bf16_to_f32((const mixrt_bf16 *)J->x->data + p * nplane, xp, nplane);
            xs = xp;
        }
        /* Stride 1, no dilation, rows as wide as the input (a "same" pool: YOLO's 5x5 SPPF):
         * the interior columns of every row as one long max over the plane (kw calls, not kw
         * per row); the columns near the edges, which that mixed with the next row, redone
         * per row below. */
        bool flat = J->flat;
        if (flat) {
            size_t lo = ia, n = (H - 1) * OW + ib - ia;
            memcpy(tmp + lo, xs + lo - pw, n * sizeof(float));
            for (int64_t q = 1; q < kw; q++) J->isa->vmax(tmp + lo, xs + lo - pw + q, n);
        }
        for (size_t h = 0; h < H; h++) {
            const float *row = xs + h * W;
            float *t = tmp + h * OW;
            for (size_t o = 0; o < OW; o++) {
                if (flat && o == ia) { /* done above */
                    o = ib - 1;
                    continue;
                }
                if (o == ia && ib > ia) {
                    size_t cnt = ib - ia;
                    const float *base = row + (int64_t)ia * sw - pw;
                    for (size_t j = 0; j < cnt; j++) t[ia + j] = init;
                    for (int64_t q = 0; q < kw; q++) {
                        const float *src = base + q * dw;
                        if (is_max && sw == 1)
                            J->isa->vmax(t + ia, src, cnt);
                        else if (is_max)
                            for (size_t j = 0; j < cnt; j++) t[ia + j] = max_nan(t[ia + j], src[(int64_t)j * sw]);
                        else
                            for (size_t j = 0; j < cnt; j++) t[ia + j] += src[(int64_t)j * sw];
                    }
                    o = ib - 1;
                    continue;
                }
                float acc = init;
                int64_t start = (int64_t)o * sw - pw; /* may be < 0: taps from w0 on are inside */
                for (int64_t q = w0[o]; q < w1[o]; q++) {
                    float v = row[start + q * dw];
                    acc = is_max ? max_nan(acc, v) : acc + v;
                }
                t[o] = acc;
            }
        }
        /* The same down the columns: the interior output rows (every tap inside) as one block. */
        if (ob > oa) {
            size_t n = (ob - oa) * OW;
            memcpy(yp + oa * OW, tmp + (size_t)((int64_t)oa - ph) * OW, n * sizeof(float));
            for (int64_t q = 1; q < J->kh; q++) J->isa->vmax(yp + oa * OW, tmp + (size_t)((int64_t)oa - ph + q) * OW, n);
        }
        for (size_t o = 0; o < OH; o++) {
            if (o == oa && ob > oa) {
                o = ob - 1;
                continue;
            }
            float *yr = yp + o * OW;
            for (size_t j = 0; j < OW; j++) yr[j] = init;
            for (int64_t q = h0[o]; q < h1[o]; q++) {
                const float *t = tmp + (size_t)((int64_t)o * sh - ph + q * dh) * OW;
                if (is_max) J->isa->vmax(yr, t, OW);
                else
                    for (size_t j = 0; j < OW; j++) yr[j] += t[j];
            }
            if (!is_max)
                for (size_t j = 0; j < OW; j++) yr[j] = yr[j] / (float)(hc[o] * wc[j]);
        }
        if (J->y->dtype == MIXRT_DTYPE_F32) memcpy((float *)J->y->data + p * nout, yp, nout * sizeof(float));
        else mixrt_f32_to_bf16(yp, (mixrt_bf16 *)J->y->data + p * nout, nout);
    }
}

static mixrt_status run_pool(struct mixrt_kernel_ctx *k, bool is_max) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    struct pool_axis ax[2];
    if (!fast_input(k, 0) || (x->rank != 3 && x->rank != 4) || (is_max && output_wanted(k, 1)) ||
        !pool_geometry(k->node, x, ax))
        return mixrt_cpu_run_reference(k);
    bool include_pad = !is_max && mixrt_node_attr_int(k->node, "count_include_pad", 0) != 0;
    int64_t ydims[4] = {x->dims[0], x->dims[1], ax[0].out, ax[1].out};
    if (x->rank == 3) ydims[2] = ax[1].out;
    struct mixrt_tensor *y = NULL;
    status = mixrt_kernel_output(k, 0, x->dtype, x->rank, ydims, &y);
    if (status != MIXRT_STATUS_OK || mixrt_tensor_numel(y) == 0) return status;
    size_t H = (size_t)ax[0].in, W = (size_t)ax[1].in, OH = (size_t)ax[0].out, OW = (size_t)ax[1].out;
    size_t planes = (size_t)x->dims[0] * (size_t)x->dims[1];
    /* Planes over the threads when there is enough work (a 40x40 plane is ~10 us of 5x5 max). */
    int nt = 1;
#ifdef _OPENMP
    if (planes >= 2 && planes * H * W >= 65536) nt = omp_get_max_threads();
    if ((size_t)nt > planes) nt = (int)planes;
#endif
    /* Per output column / row: first and end tap inside the input, and the divisor count. */
    size_t ntab = 3 * (OW + OH), nplane = H * W, ntmp = H * OW, nout = OH * OW, tz = (size_t)nt;
    int64_t *tab = mixrt_calloc(k->ctx, ntab, sizeof(int64_t));
    float *xp = falloc(k, tz * nplane), *tmp = falloc(k, tz * ntmp), *yp = falloc(k, tz * nout);
    if (!tab || !xp || !tmp || !yp) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    int64_t *w0 = tab, *w1 = tab + OW, *wc = tab + 2 * OW, *h0 = tab + 3 * OW, *h1 = h0 + OH, *hc = h1 + OH;
    for (size_t o = 0; o < OW; o++) {
        int64_t cp;
        pool_taps(&ax[1], (int64_t)o, &w0[o], &w1[o], &cp);
        wc[o] = include_pad ? cp : w1[o] - w0[o];
    }
    for (size_t o = 0; o < OH; o++) {
        int64_t cp;
        pool_taps(&ax[0], (int64_t)o, &h0[o], &h1[o], &cp);
        hc[o] = include_pad ? cp : h1[o] - h0[o];
    }
    struct pool_job J = {.x = x, .y = y, .isa = mixrt_nnops_isa(), .is_max = is_max, .H = H, .W = W, .OH = OH,
                         .OW = OW, .nplane = nplane, .nout = nout, .w0 = w0, .w1 = w1, .wc = wc,
                         .h0 = h0, .h1 = h1, .hc = hc, .sw = ax[1].s, .dw = ax[1].d, .pw = ax[1].pb, .kw = ax[1].k,
                         .sh = ax[0].s, .dh = ax[0].d, .ph = ax[0].pb, .kh = ax[0].k};
    interior_run(w0, w1, OW, ax[1].k, &J.ia, &J.ib);
    if (is_max && J.sh == 1 && J.dh == 1) interior_run(h0, h1, OH, ax[0].k, &J.oa, &J.ob);
    else J.oa = J.ob = OH;
    J.flat = is_max && J.sw == 1 && J.dw == 1 && OW == W && J.ib > J.ia;
    if (nt > 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int t = 0; t < nt; t++)
            pool_planes(&J, planes * (size_t)t / tz, planes * (size_t)(t + 1) / tz, xp + (size_t)t * nplane,
                        tmp + (size_t)t * ntmp, yp + (size_t)t * nout);
    } else {
        pool_planes(&J, 0, planes, xp, tmp, yp);
    }
fail:
    if (tab) mixrt_free(k->ctx, tab, ntab * sizeof(int64_t));
    ffree(k, xp, tz * nplane);
    ffree(k, tmp, tz * ntmp);
    ffree(k, yp, tz * nout);
    return status;
}

static mixrt_status run_maxpool(struct mixrt_kernel_ctx *k) { return run_pool(k, true); }
static mixrt_status run_avgpool(struct mixrt_kernel_ctx *k) { return run_pool(k, false); }

/* ---- GlobalAveragePool / GlobalMaxPool: one pairwise sum or max per (n, c) plane -------- */

static bool global_pool_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why,
                                 size_t why_size) {
    if (!io_supported(g, n, why, why_size)) return false;
    int r = g->values[n->inputs[0]].rank;
    if (r != -1 && r < 2) {
        say(why, why_size, "%s", "input #0 has rank < 2");
        return false;
    }
    return true;
}

static mixrt_status run_global_pool(struct mixrt_kernel_ctx *k, bool is_max) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    if (!fast_input(k, 0) || x->rank < 2) return mixrt_cpu_run_reference(k);
    int64_t ydims[MIXRT_MAX_RANK];
    for (int i = 0; i < x->rank; i++) ydims[i] = i < 2 ? x->dims[i] : 1;
    struct mixrt_tensor *y = NULL;
    const float *xs = NULL;
    float *xo = NULL, *ys = NULL, *yo = NULL;
    size_t ny = 0, nx = mixrt_tensor_numel(x);
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, ydims, &y));
    ny = mixrt_tensor_numel(y);
    if (ny == 0) return MIXRT_STATUS_OK;
    size_t sp = nx / ny;
    const struct mixrt_nnops_isa *isa = mixrt_nnops_isa();
    MIXRT_TRY(load_f32(k, x, &xs, &xo));
    MIXRT_TRY(out_f32(k, y, &ys, &yo));
    for (size_t p = 0; p < ny; p++) {
        const float *row = xs + p * sp;
        ys[p] = is_max ? isa->max(row, sp) : (float)((double)psum(isa, row, sp) / (double)sp);
    }
    store_f32(y, ys);
fail:
    ffree(k, xo, nx);
    ffree(k, yo, ny);
    return status;
}

static mixrt_status run_global_avgpool(struct mixrt_kernel_ctx *k) { return run_global_pool(k, false); }
static mixrt_status run_global_maxpool(struct mixrt_kernel_ctx *k) { return run_global_pool(k, true); }

/* The layout pass's channels-last GlobalAveragePool (com.mixrt): X [N, S.., C] -> [N, 1.., C],
 * each channel's mean over the S.. positions: column sums straight from X (no widened copy),
 * one division and one rounding per output. Channels up to 8192 (the sums' stack). */
#define GAP_LAST_MAX_C 8192

static bool gap_last_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!io_supported(g, n, why, why_size)) return false;
    const struct mixrt_value *x = &g->values[n->inputs[0]];
    if (x->rank != -1 && x->rank < 3) {
        say(why, why_size, "%s", "input #0 has rank < 3");
        return false;
    }
    if (x->rank > 0 && x->dims[x->rank - 1].value > GAP_LAST_MAX_C) {
        say(why, why_size, "%s", "more than 8192 channels");
        return false;
    }
    return true;
}

static mixrt_status run_gap_last(struct mixrt_kernel_ctx *k) {
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    if (!fast_input(k, 0) || x->rank < 3 || x->dims[x->rank - 1] > GAP_LAST_MAX_C) return mixrt_cpu_run_reference(k);
    const int r = x->rank;
    const size_t N = (size_t)x->dims[0], C = (size_t)x->dims[r - 1];
    int64_t ydims[MIXRT_MAX_RANK];
    size_t S = 1;
    for (int i = 0; i < r; i++) {
        ydims[i] = i == 0 || i == r - 1 ? x->dims[i] : 1;
        if (i > 0 && i < r - 1) S *= (size_t)x->dims[i];
    }
    if (!S && N && C) return mixrt_cpu_run_reference(k); /* the mean of nothing: the reference's answer */
    struct mixrt_tensor *y = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, r, ydims, &y); /* every mean written */
    if (status != MIXRT_STATUS_OK || !N || !C) return status;
    const bool bf = x->dtype == MIXRT_DTYPE_BF16;
    const size_t es = bf ? sizeof(mixrt_bf16) : sizeof(float);
    const struct mixrt_nnops_isa *isa = mixrt_nnops_isa();
    /* Images of 64K elements and more: the positions split over the threads, each summing
     * into its own row of part, added in thread order (the same result every run). */
    int nt = 1;
#ifdef _OPENMP
    if (S * C >= 65536) nt = omp_get_max_threads();
    if (nt > 16) nt = 16;
    if ((size_t)nt > S) nt = (int)S;
#endif
    float acc[GAP_LAST_MAX_C], *part = nt > 1 ? falloc(k, (size_t)nt * C) : NULL;
    if (nt > 1 && !part) return MIXRT_STATUS_OUT_OF_MEMORY;
    for (size_t b = 0; b < N; b++) {
        const char *xb = (const char *)x->data + b * S * C * es;
        memset(acc, 0, C * sizeof(float));
        if (nt > 1) {
            memset(part, 0, (size_t)nt * C * sizeof(float));
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
            for (int t = 0; t < nt; t++) {
                size_t s0 = S * (size_t)t / (size_t)nt, s1 = S * (size_t)(t + 1) / (size_t)nt;
                isa->colsum(part + (size_t)t * C, xb + s0 * C * es, bf, s1 - s0, C, C);
            }
            for (int t = 0; t < nt; t++)
                for (size_t j = 0; j < C; j++) acc[j] += part[(size_t)t * C + j];
        } else {
            isa->colsum(acc, xb, bf, S, C, C);
        }
        for (size_t j = 0; j < C; j++) acc[j] = (float)((double)acc[j] / (double)S);
        if (bf) mixrt_f32_to_bf16(acc, (mixrt_bf16 *)y->data + b * C, C);
        else memcpy((float *)y->data + b * C, acc, C * sizeof(float));
    }
    if (part) ffree(k, part, (size_t)nt * C);
    return MIXRT_STATUS_OK;
}

/* The layout pass's channels-last MaxPool (com.mixrt): X [N, H, W, C] -> [N, OH, OW, C], 2-D,
 * no dilation, windows of up to MAXPOOL_LAST_MAX_K rows. Each output row folds its window's
 * input rows into one row (bf16 as int16 keys, 32 values a vector; f32, or bf16 holding a NaN,
 * widened: 16), then takes each pixel's columns from it (maxpool_row): 2 + 2 maxima an output
 * value for a 3x3 window instead of 8. Output rows are shared between the threads. Timed by
 * the builder against oneDNN's pool (dnnl_pool_nhwc): on GoogLeNet's bf16 3x3 stride-1 pools
 * (28x28x192 .. 7x7x832) 6-18 us against oneDNN's 9-25 alone; the stride-2 ones about even. */
#define MAXPOOL_LAST_MAX_K 64

static bool maxpool_last_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why,
                                  size_t why_size) {
    const char *env = getenv("MIXRT_MAXPOOL_NHWC"); /* off: oneDNN's pool only (A/B) */
    if (env && !strcmp(env, "off")) {
        say(why, why_size, "%s", "switched off by MIXRT_MAXPOOL_NHWC=off");
        return false;
    }
    if (!pool_supports(g, n, why, why_size)) return false; /* dtypes, Indices, kernel_shape */
    int r = g->values[n->inputs[0]].rank;
    if (r != -1 && r != 4) {
        say(why, why_size, "%s", "only 2-D pooling (rank 4)");
        return false;
    }
    size_t nk = 0, nd = 0;
    const int64_t *ks = mixrt_node_attr_ints(n, "kernel_shape", &nk), *dl = mixrt_node_attr_ints(n, "dilations", &nd);
    if (nk != 2) {
        say(why, why_size, "%s", "kernel_shape is not two values");
        return false;
    }
    if (ks[0] > MAXPOOL_LAST_MAX_K) {
        say(why, why_size, "%s", "a window over 64 rows");
        return false;
    }
    for (size_t i = 0; dl && i < nd; i++)
        if (dl[i] != 1) {
            say(why, why_size, "%s", "a dilated pool");
            return false;
        }
    return true;
}

static mixrt_status run_maxpool_last(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    if (!fast_input(k, 0) || x->rank != 4 || output_wanted(k, 1)) return mixrt_cpu_run_reference(k);
    struct mixrt_tensor xc = *x; /* the dims as [N, C, H, W] for pool_geometry */
    xc.dims[1] = x->dims[3], xc.dims[2] = x->dims[1], xc.dims[3] = x->dims[2];
    struct pool_axis ax[2];
    if (!pool_geometry(k->node, &xc, ax) || ax[0].d != 1 || ax[1].d != 1 || ax[0].k > MAXPOOL_LAST_MAX_K)
        return mixrt_cpu_run_reference(k);
    const size_t N = (size_t)x->dims[0], H = (size_t)ax[0].in, W = (size_t)ax[1].in, C = (size_t)x->dims[3];
    const size_t OH = (size_t)ax[0].out, OW = (size_t)ax[1].out, ntab = 2 * (OW + OH);
    int64_t *tab = mixrt_calloc(k->ctx, ntab ? ntab : 1, sizeof(int64_t));
    if (!tab) return MIXRT_STATUS_OUT_OF_MEMORY;
    int64_t *c0 = tab, *c1 = tab + OW, *r0 = tab + 2 * OW, *r1 = r0 + OH, cp;
    bool empty = false; /* a window wholly in the padding: the reference's answer */
    for (size_t o = 0; o < OW; o++) {
        pool_taps(&ax[1], (int64_t)o, &c0[o], &c1[o], &cp);
        c0[o] += (int64_t)o * ax[1].s - ax[1].pb, c1[o] += (int64_t)o * ax[1].s - ax[1].pb;
        empty = empty || c1[o] <= c0[o];
    }
    for (size_t o = 0; o < OH; o++) {
        pool_taps(&ax[0], (int64_t)o, &r0[o], &r1[o], &cp);
        r0[o] += (int64_t)o * ax[0].s - ax[0].pb, r1[o] += (int64_t)o * ax[0].s - ax[0].pb;
        empty = empty || r1[o] <= r0[o];
    }
    if (empty) {
        mixrt_free(k->ctx, tab, (ntab ? ntab : 1) * sizeof(int64_t));
        return mixrt_cpu_run_reference(k);
    }
    int64_t ydims[4] = {x->dims[0], (int64_t)OH, (int64_t)OW, x->dims[3]};
    struct mixrt_tensor *y = NULL;
    float *tmp = NULL;
    int nt = 1;
    const size_t rows = N * OH;
#ifdef _OPENMP
    if (rows >= 2 && rows * OW * C * (size_t)(ax[0].k * ax[1].k) >= 65536) nt = omp_get_max_threads();
    if ((size_t)nt > rows) nt = (int)rows;
#endif
    const bool bf = x->dtype == MIXRT_DTYPE_BF16;
    const size_t es = bf ? sizeof(mixrt_bf16) : sizeof(float), tz = (size_t)nt;
    const struct mixrt_nnops_isa *isa = mixrt_nnops_isa();
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, 4, ydims, &y)); /* every value written */
    if (!rows || !OW || !C) goto fail;
    if (!(tmp = falloc(k, tz * W * C))) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static) if (nt > 1)
#endif
    for (int t = 0; t < nt; t++) {
        const void *rp[MAXPOOL_LAST_MAX_K];
        for (size_t r = rows * (size_t)t / tz; r < rows * (size_t)(t + 1) / tz; r++) {
            const size_t b = r / OH, oh = r % OH;
            const int nr = (int)(r1[oh] - r0[oh]);
            for (int i = 0; i < nr; i++)
                rp[i] = (const char *)x->data + ((b * H + (size_t)r0[oh] + (size_t)i) * W * C) * es;
            isa->maxpool_row(rp, nr, bf, W, C, c0, c1, OW, tmp + (size_t)t * W * C,
                             (char *)y->data + r * OW * C * es);
        }
    }
fail:
    ffree(k, tmp, tz * W * C);
    mixrt_free(k->ctx, tab, (ntab ? ntab : 1) * sizeof(int64_t));
    return status;
}

/* ---- Softmax / LogSoftmax ----------------------------------------------------------------
 * Rows along the axis: contiguous ones (inner == 1) go max, exp, pairwise sum, scale; a
 * strided axis works on whole [len, inner] blocks with column maxima and col_reduce sums. */

static bool softmax_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return io_supported(g, n, why, why_size);
}

static mixrt_status run_softmax_family(struct mixrt_kernel_ctx *k, bool is_log) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    if (!fast_input(k, 0)) return mixrt_cpu_run_reference(k);
    bool legacy = k->opset < 13;
    int64_t axis = mixrt_node_attr_int(k->node, "axis", legacy ? 1 : -1);
    size_t outer = 1, len = 1, inner = 1;
    if (x->rank == 0) {
        if (axis < -1 || axis > 1) return mixrt_cpu_run_reference(k);
    } else if (legacy) { /* coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])] */
        if (axis < -(int64_t)x->rank || axis > x->rank) return mixrt_cpu_run_reference(k);
        if (axis < 0) axis += x->rank;
        for (int d = 0; d < x->rank; d++) {
            if (d < axis) outer *= (size_t)x->dims[d];
            else len *= (size_t)x->dims[d];
        }
    } else {
        if (!mixrt_norm_axis(axis, x->rank, &axis)) return mixrt_cpu_run_reference(k);
        for (int d = 0; d < x->rank; d++) {
            if (d < axis) outer *= (size_t)x->dims[d];
            else if (d == axis) len = (size_t)x->dims[d];
            else inner *= (size_t)x->dims[d];
        }
    }
    struct mixrt_tensor *y = NULL;
    const float *xs = NULL;
    float *xo = NULL, *ys = NULL, *yo = NULL, *cm = NULL, *cs = NULL, *scr = NULL;
    size_t nscr = 0, n = mixrt_tensor_numel(x);
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, x->rank, x->dims, &y)); /* every row below */
    if (n == 0) return MIXRT_STATUS_OK;
    const struct mixrt_nnops_isa *isa = mixrt_nnops_isa();
    MIXRT_TRY(load_f32(k, x, &xs, &xo));
    MIXRT_TRY(out_f32(k, y, &ys, &yo));
    if (inner == 1) {
        for (size_t r = 0; r < outer; r++) {
            const float *xr = xs + r * len;
            float *yr = ys + r * len, m = isa->max(xr, len);
            for (size_t j = 0; j < len; j++) yr[j] = xr[j] - m;
            isa->exp(yr, yr, len);
            float s = psum(isa, yr, len);
            if (is_log) {
                float ls = logf(s);
                for (size_t j = 0; j < len; j++) yr[j] = (xr[j] - m) - ls;
            } else {
                for (size_t j = 0; j < len; j++) yr[j] = yr[j] / s;
            }
        }
    } else {
        nscr = col_scratch(len, inner);
        cm = falloc(k, inner), cs = falloc(k, inner), scr = falloc(k, nscr);
        if (!cm || !cs || !scr) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
        for (size_t o = 0; o < outer; o++) {
            const float *xb = xs + o * len * inner;
            float *yb = ys + o * len * inner;
            col_reduce(isa, xb, len, inner, true, cm, scr);
            for (size_t r = 0; r < len; r++) {
                const float *xr = xb + r * inner;
                float *yr = yb + r * inner;
                for (size_t j = 0; j < inner; j++) yr[j] = xr[j] - cm[j];
                isa->exp(yr, yr, inner);
            }
            col_reduce(isa, yb, len, inner, false, cs, scr);
            if (is_log) {
                for (size_t j = 0; j < inner; j++) cs[j] = logf(cs[j]);
                for (size_t r = 0; r < len; r++) {
                    const float *xr = xb + r * inner;
                    float *yr = yb + r * inner;
                    for (size_t j = 0; j < inner; j++) yr[j] = (xr[j] - cm[j]) - cs[j];
                }
            } else {
                for (size_t r = 0; r < len; r++) {
                    float *yr = yb + r * inner;
                    for (size_t j = 0; j < inner; j++) yr[j] = yr[j] / cs[j];
                }
            }
        }
    }
    store_f32(y, ys);
fail:
    ffree(k, xo, n);
    ffree(k, yo, n);
    ffree(k, cm, inner);
    ffree(k, cs, inner);
    ffree(k, scr, nscr);
    return status;
}

static mixrt_status run_softmax(struct mixrt_kernel_ctx *k) { return run_softmax_family(k, false); }
static mixrt_status run_log_softmax(struct mixrt_kernel_ctx *k) { return run_softmax_family(k, true); }

/* ---- BatchNormalization (inference) / InstanceNormalization / LayerNormalization -------- */

static bool bn_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!io_supported(g, n, why, why_size)) return false;
    if (n->n_inputs < 5) {
        say(why, why_size, "%s", "fewer than 5 inputs");
        return false;
    }
    if (n->opset < 7 && mixrt_node_attr_int(n, "is_test", 0) == 0) {
        say(why, why_size, "%s", "training mode (is_test=0) before opset 7");
        return false;
    }
    if (n->opset < 9 && mixrt_node_attr_int(n, "spatial", 1) == 0) {
        say(why, why_size, "%s", "spatial=0 (per-element statistics)");
        return false;
    }
    if (n->opset >= 14 && mixrt_node_attr_int(n, "training_mode", 0) != 0) {
        say(why, why_size, "%s", "training_mode=1");
        return false;
    }
    for (int i = 1; i < n->n_outputs; i++)
        if (output_used(n, i)) {
            say(why, why_size, "%s", "the running/saved statistics outputs are not produced");
            return false;
        }
    int r = g->values[n->inputs[0]].rank;
    if (r != -1 && r < 2) {
        say(why, why_size, "%s", "input #0 has rank < 2");
        return false;
    }
    return true;
}

static mixrt_status run_batch_norm(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    if (!fast_input(k, 0) || x->rank < 2 || (k->opset < 9 && mixrt_node_attr_int(k->node, "spatial", 1) == 0) ||
        (k->opset >= 14 && mixrt_node_attr_int(k->node, "training_mode", 0) != 0))
        return mixrt_cpu_run_reference(k);
    for (int i = 1; i < k->n_out; i++)
        if (output_wanted(k, i)) return mixrt_cpu_run_reference(k);
    size_t C = (size_t)x->dims[1], n = mixrt_tensor_numel(x), N = (size_t)x->dims[0];
    size_t sp = N && C ? n / (N * C) : 0;
    float *prm[4] = {NULL, NULL, NULL, NULL}, *ab = NULL, *xo = NULL, *yo = NULL, *ys = NULL;
    const float *xs = NULL;
    struct mixrt_tensor *y = NULL;
    bool fits = true;
    for (int i = 0; i < 4 && fits; i++) {
        prm[i] = param_f32(k, 1 + i, C, &status);
        if (status != MIXRT_STATUS_OK) goto fail;
        fits = prm[i] != NULL;
    }
    if (!fits) {
        for (int i = 0; i < 4; i++) ffree(k, prm[i], C);
        return mixrt_cpu_run_reference(k);
    }
    double eps = mixrt_node_attr_float(k->node, "epsilon", 1e-5f);
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, x->rank, x->dims, &y)); /* every element below */
    if (n == 0) goto fail;
    /* y = (x - mean) * a + bias with a = scale / sqrt(var + eps) in double: subtracting the
     * mean first keeps f32 exact where a large mean would cancel in x * a + (bias - mean * a). */
    if (!(ab = falloc(k, C))) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    for (size_t c = 0; c < C; c++) ab[c] = (float)((double)prm[0][c] / sqrt((double)prm[3][c] + eps));
    MIXRT_TRY(load_f32(k, x, &xs, &xo));
    MIXRT_TRY(out_f32(k, y, &ys, &yo));
    if (sp == 1) { /* [N, C] (a Linear's BatchNorm1d): rows, vectorized across channels */
        const float *mean = prm[2], *bias = prm[1];
        for (size_t r = 0; r < N; r++) {
            const float *xr = xs + r * C;
            float *yr = ys + r * C;
            for (size_t c = 0; c < C; c++) yr[c] = (xr[c] - mean[c]) * ab[c] + bias[c];
        }
    } else {
        for (size_t r = 0; r < N; r++)
            for (size_t c = 0; c < C; c++) {
                float a = ab[c], m = prm[2][c], b = prm[1][c];
                const float *xr = xs + (r * C + c) * sp;
                float *yr = ys + (r * C + c) * sp;
                for (size_t i = 0; i < sp; i++) yr[i] = (xr[i] - m) * a + b;
            }
    }
    store_f32(y, ys);
fail:
    for (int i = 0; i < 4; i++) ffree(k, prm[i], C);
    ffree(k, ab, C);
    ffree(k, xo, n);
    ffree(k, yo, n);
    return status;
}

static bool in_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!io_supported(g, n, why, why_size)) return false;
    if (n->n_inputs < 3) {
        say(why, why_size, "%s", "fewer than 3 inputs");
        return false;
    }
    int r = g->values[n->inputs[0]].rank;
    if (r != -1 && r < 2) {
        say(why, why_size, "%s", "input #0 has rank < 2");
        return false;
    }
    return true;
}

/* com.mixrt InstanceNormalization: channels-last X [N, S.., C] (1-D regions, fuse_conv.c). The
 * statistics run down columns of 64 channels in f64, two-pass like row_stats: wav2vec2's first
 * group norm ([1, 3199, 512]) is one read per pass of a tensor that stays in L3. The activation
 * (fused_conv_impl.h) runs on blocks of about IN_LAST_ROW_FLOATS outputs right after they are
 * normalized, while they are still in L1. The per-row sums and the normalization are the
 * nn-op table's in_partial / in_norm_row (AVX-512 beside the scalar twin, the same bits):
 * PoolFormer-S12's 56x56x64 bf16 group norm 109 -> 49 us, its 14x14x320 ones 71 -> 24 us (the
 * scalar loops had been compiled for SSE2 with the bf16 widening element by element). */
#define IN_LAST_ROW_FLOATS 4096

/* Per channel of x [S, C]: the mean m[c] and the sum of squared deviations from it q[c] (f64),
 * over tasks of 64 channels x a share of the rows, nr shares (part holds nr x C doubles). The
 * mean is the first row's value plus the mean deviation from it; the deviations from it are
 * (x - hi) - lo with the mean as an f32 pair hi + lo, so its rounding does not count. */
static void in_last_moments(const struct mixrt_nnops_isa *isa, const void *x, bool bf, size_t S, size_t C, size_t nr,
                            double *part, double *m, double *q) {
    const int64_t nblk = (int64_t)((C + MIXRT_NNOPS_IN_COLS - 1) / MIXRT_NNOPS_IN_COLS), tasks = nblk * (int64_t)nr;
    if (S == 0) {
        for (size_t c = 0; c < C; c++) m[c] = q[c] = 0.0;
        return;
    }
    for (int pass = 0; pass < 2; pass++) {
#pragma omp parallel for schedule(static) if (tasks > 1 && S * C >= 65536)
        for (int64_t t = 0; t < tasks; t++) {
            size_t blk = (size_t)(t % nblk), sh = (size_t)(t / nblk);
            size_t c0 = blk * MIXRT_NNOPS_IN_COLS, nc = C - c0 < MIXRT_NNOPS_IN_COLS ? C - c0 : MIXRT_NNOPS_IN_COLS;
            size_t s0 = S * sh / nr, s1 = S * (sh + 1) / nr;
            float ctr[MIXRT_NNOPS_IN_COLS], lo[MIXRT_NNOPS_IN_COLS];
            for (size_t j = 0; j < nc; j++) {
                ctr[j] = pass ? (float)m[c0 + j] : in_last_at(x, bf, c0 + j);
                lo[j] = pass ? (float)(m[c0 + j] - (double)ctr[j]) : 0.0f;
            }
            isa->in_partial(x, bf, C, c0, nc, s0, s1, ctr, lo, pass == 1, part + sh * C + c0);
        }
        for (size_t c = 0; c < C; c++) {
            double v = 0.0;
            for (size_t sh = 0; sh < nr; sh++) v += part[sh * C + c];
            if (pass) q[c] = v;
            else m[c] = (double)in_last_at(x, bf, c) + v / (double)S;
        }
    }
}

/* mean[j] and mlo[j]: the f64 mean as an f32 pair (mean + mlo), so x - mean keeps the digits
 * that a per-channel offset far above the spread would cost an f32 mean; inv[j] = 1 / std. */
static void in_last_stats(const double *m, const double *q, size_t S, size_t C, float eps, float *mean, float *mlo,
                          float *inv) {
    for (size_t j = 0; j < C; j++) {
        mean[j] = (float)m[j];
        mlo[j] = (float)(m[j] - (double)mean[j]);
        inv[j] = (float)(1.0 / sqrt((S ? q[j] / (double)S : 0.0) + (double)eps));
    }
}

/* Group statistics from channel moments (m, q of S values each): the G groups of C / G
 * consecutive channels pool theirs (Chan's combination), and every channel of a group gets its
 * mean pair and 1 / std. */
static void in_last_pool_groups(const double *m, const double *q, size_t S, size_t C, size_t G, float eps, float *mean,
                                float *mlo, float *inv) {
    const size_t cg = C / G;
    for (size_t gi = 0; gi < G; gi++) {
        const double *mg = m + gi * cg, *qg = q + gi * cg;
        double mu = 0.0, ss = 0.0;
        for (size_t j = 0; j < cg; j++) mu += mg[j];
        mu /= (double)cg;
        for (size_t j = 0; j < cg; j++) ss += qg[j] + (double)S * (mg[j] - mu) * (mg[j] - mu);
        const double var = S ? ss / ((double)S * (double)cg) : 0.0;
        const float hi = (float)mu, lo = (float)(mu - (double)hi), iv = (float)(1.0 / sqrt(var + (double)eps));
        for (size_t j = gi * cg; j < (gi + 1) * cg; j++) mean[j] = hi, mlo[j] = lo, inv[j] = iv;
    }
}

static bool in_last_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!in_supports(g, n, why, why_size)) return false;
    int r = g->values[n->inputs[0]].rank;
    if (r != -1 && r < 3) {
        say(why, why_size, "%s", "input #0 has rank < 3");
        return false;
    }
    enum mixrt_fconv_act act;
    float p0, p1;
    if (!mixrt_fconv_read_act(n, &act, &p0, &p1)) {
        say(why, why_size, "activation '%s' or its parameters unknown", mixrt_node_attr_string(n, "activation", ""));
        return false;
    }
    return true;
}

/* InstanceNormalization over X [N, C, S..] (ONNX's; row_stats per image and channel) or, last,
 * channels-last X [N, S.., C] (in_last_stats down blocks of channels). */
static mixrt_status in_run(struct mixrt_kernel_ctx *k, bool last) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    if (!fast_input(k, 0) || x->rank < (last ? 3 : 2)) return mixrt_cpu_run_reference(k);
    size_t C = (size_t)x->dims[last ? x->rank - 1 : 1], n = mixrt_tensor_numel(x), N = (size_t)x->dims[0];
    size_t S = N && C ? n / (N * C) : 0;
    float *sc = NULL, *bi = NULL, *xo = NULL, *yo = NULL, *ys = NULL, *st = NULL;
    double *mom = NULL;
    bool oom = false;
    size_t nr = 1; /* row shares of the channels-last statistics */
    const float *xs = NULL;
    struct mixrt_tensor *y = NULL;
    sc = param_f32(k, 1, C, &status);
    if (status == MIXRT_STATUS_OK && sc) bi = param_f32(k, 2, C, &status);
    if (status != MIXRT_STATUS_OK) goto fail;
    if (!sc || !bi) {
        ffree(k, sc, C);
        return mixrt_cpu_run_reference(k);
    }
    float eps = mixrt_node_attr_float(k->node, "epsilon", 1e-5f), p0 = 0.0f, p1 = 0.0f;
    enum mixrt_fconv_act act = MIXRT_FCONV_NONE;
    if (last && !mixrt_fconv_read_act(k->node, &act, &p0, &p1)) {
        ffree(k, sc, C);
        ffree(k, bi, C);
        return mixrt_cpu_run_reference(k); /* its message names the attribute */
    }
    /* num_groups (fuse_conv.c's channels-last group norm): statistics over groups of C / G
     * channels, scale and bias still per channel. */
    const int64_t G = last ? mixrt_node_attr_int(k->node, "num_groups", 0) : 0;
    const bool grouped = G > 0 && (size_t)G != C;
    if (grouped && ((size_t)G > C || C % (size_t)G)) {
        ffree(k, sc, C);
        ffree(k, bi, C);
        return mixrt_cpu_run_reference(k); /* its message names the mismatch */
    }
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, x->rank, x->dims, &y)); /* every element normalized */
    if (n == 0) goto fail;
    if (last && !(st = falloc(k, 3 * C))) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    /* channels-last statistics: m, q and nr row shares' partial sums (in_last_moments), the
     * rows split between the threads where the channels alone would not employ them */
#ifdef _OPENMP
    if (last && S * C >= 65536) {
        size_t nblk = (C + MIXRT_NNOPS_IN_COLS - 1) / MIXRT_NNOPS_IN_COLS, nt = (size_t)omp_get_max_threads();
        if (nblk < nt) nr = S >= 64 * nt ? nt : 1;
    }
#endif
    if (last && !(mom = mixrt_alloc(k->ctx, (2 + nr) * C * sizeof(double)))) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    if (!last) {
        MIXRT_TRY(load_f32(k, x, &xs, &xo));
        MIXRT_TRY(out_f32(k, y, &ys, &yo));
        const struct mixrt_nnops_isa *isa = mixrt_nnops_isa();
        for (size_t p = 0; p < N * C; p++) {
            const float *xr = xs + p * S;
            float *yr = ys + p * S, m, inv;
            row_stats(isa, xr, S, eps, &m, &inv);
            float a = inv * sc[p % C], b = bi[p % C];
            for (size_t i = 0; i < S; i++) yr[i] = (xr[i] - m) * a + b;
        }
        store_f32(y, ys);
    } else {
        /* bf16 in and out as they are: widened as read, the rows of a block normalized and
         * activated in f32 scratch, then rounded once into y. */
        const bool xbf = x->dtype == MIXRT_DTYPE_BF16, ybf = y->dtype == MIXRT_DTYPE_BF16;
        const size_t es = xbf ? 2 : 4, yes = ybf ? 2 : 4;
        float *mean = st, *mlo = st + C, *a = st + 2 * C;
        const struct mixrt_nnops_isa *isa = mixrt_nnops_isa();
        for (size_t b = 0; b < N; b++) {
            const char *xb = (const char *)x->data + b * S * C * es;
            char *yb = (char *)y->data + b * S * C * yes;
            in_last_moments(isa, xb, xbf, S, C, nr, mom + 2 * C, mom, mom + C);
            if (grouped) in_last_pool_groups(mom, mom + C, S, C, (size_t)G, eps, mean, mlo, a);
            else in_last_stats(mom, mom + C, S, C, eps, mean, mlo, a);
            for (size_t j = 0; j < C; j++) a[j] *= sc[j];
            const size_t rb = C < IN_LAST_ROW_FLOATS ? IN_LAST_ROW_FLOATS / C : 1;
            const int64_t nrb = (int64_t)((S + rb - 1) / rb);
#pragma omp parallel if (S * C >= 65536)
            {
                /* a block's f32 rows: y itself when f32, else this thread's scratch */
                float *tmp = ybf ? mixrt_alloc(k->ctx, rb * C * sizeof(float)) : NULL;
#pragma omp for schedule(static)
                for (int64_t r = 0; r < nrb; r++) {
                    if (ybf && !tmp) continue;
                    size_t s0 = (size_t)r * rb, ns = S - s0 < rb ? S - s0 : rb;
                    float *yf = ybf ? tmp : (float *)yb + s0 * C;
                    for (size_t s = s0; s < s0 + ns; s++)
                        isa->in_norm_row(xb + s * C * es, xbf, C, mean, mlo, a, bi, yf + (s - s0) * C);
                    if (act != MIXRT_FCONV_NONE) mixrt_elt_fconv_act(act, p0, p1, yf, ns * C);
                    if (ybf) mixrt_f32_to_bf16(yf, (mixrt_bf16 *)yb + s0 * C, ns * C);
                }
                if (tmp) mixrt_free(k->ctx, tmp, rb * C * sizeof(float));
                else if (ybf) {
#pragma omp atomic write
                    oom = true;
                }
            }
            if (oom) MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "%s", "instance norm scratch"));
        }
    }
fail:
    if (mom) mixrt_free(k->ctx, mom, (2 + nr) * C * sizeof(double));
    ffree(k, st, 3 * C);
    ffree(k, sc, C);
    ffree(k, bi, C);
    ffree(k, xo, n);
    ffree(k, yo, n);
    return status;
}

static mixrt_status run_instance_norm(struct mixrt_kernel_ctx *k) { return in_run(k, false); }
static mixrt_status run_instance_norm_last(struct mixrt_kernel_ctx *k) { return in_run(k, true); }

static bool ln_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!io_supported(g, n, why, why_size)) return false;
    if (n->n_inputs < 2 || n->inputs[1] < 0) {
        say(why, why_size, "%s", "no Scale input");
        return false;
    }
    if (output_used(n, 1) || output_used(n, 2)) {
        say(why, why_size, "%s", "the Mean/InvStdDev outputs are not produced");
        return false;
    }
    return true;
}

/* A parameter (Scale or B, any float dtype) broadcast onto the normalized dims idims[0..ir),
 * expanded to inner f32 values in out. False when the shapes do not fit (the reference then
 * reports it). */
static bool ln_param(struct mixrt_kernel_ctx *k, int i, int ir, const int64_t *idims, size_t inner, float *out,
                     mixrt_status *status) {
    const struct mixrt_tensor *p = k->in[i];
    int64_t bd[MIXRT_MAX_RANK], str[MIXRT_MAX_RANK], ctr[MIXRT_MAX_RANK] = {0};
    int br = 0;
    *status = MIXRT_STATUS_OK;
    if (!mixrt_dtype_is_float(p->dtype) || p->rank > ir || !mixrt_broadcast_shape(ir, idims, p->rank, p->dims, &br, bd) ||
        br != ir)
        return false;
    for (int d = 0; d < ir; d++)
        if (bd[d] != idims[d]) return false;
    size_t np = mixrt_tensor_numel(p);
    float *v = falloc(k, np);
    if (!v) {
        *status = MIXRT_STATUS_OUT_OF_MEMORY;
        return false;
    }
    if (np) mixrt_convert(v, MIXRT_DTYPE_F32, p->data, p->dtype, np);
    mixrt_broadcast_strides(p->rank, p->dims, ir, idims, str);
    int64_t off = 0;
    for (size_t j = 0; j < inner; j++) {
        out[j] = v[off];
        for (int d = ir - 1; d >= 0; d--) {
            off += str[d];
            if (++ctr[d] < idims[d]) break;
            off -= str[d] * idims[d];
            ctr[d] = 0;
        }
    }
    ffree(k, v, np);
    return true;
}

/* Row r (n elements) of x and of y as f32 for the row-wise norms: f32 tensors in place, bf16 rows
 * widened into the calling thread's pair of f32 rows in buf (2 n floats per thread);
 * norm_row_done rounds a bf16 result row back. No whole-tensor copies. */
static inline void norm_row(const struct mixrt_tensor *x, struct mixrt_tensor *y, float *buf, size_t r, size_t n,
                            const float **xr, float **yr) {
    if (x->dtype == MIXRT_DTYPE_F32) {
        *xr = (const float *)x->data + r * n, *yr = (float *)y->data + r * n;
        return;
    }
#ifdef _OPENMP
    float *tb = buf + (size_t)omp_get_thread_num() * 2 * n;
#else
    float *tb = buf;
#endif
    mixrt_bf16_to_f32((const mixrt_bf16 *)x->data + r * n, tb, n);
    *xr = tb, *yr = tb + n;
}

static inline void norm_row_done(struct mixrt_tensor *y, size_t r, size_t n, const float *yr) {
    if (y->dtype != MIXRT_DTYPE_F32) mixrt_f32_to_bf16(yr, (mixrt_bf16 *)y->data + r * n, n);
}

/* LayerNorm's normalize step on one row: y = (x - m) * inv * scale + bias. The same loop is
 * built twice: plain (SSE2 at the project's baseline) and, on x86-64, for AVX-512 (16 lanes;
 * called only after the CPUID check), so the row runs at cache speed, not 4 lanes at a time. */
static void ln_row(const float *x, float *y, size_t n, float m, float inv, const float *sc, const float *bi) {
    for (size_t j = 0; j < n; j++) y[j] = (x[j] - m) * inv * sc[j] + bi[j];
}

#if defined(__x86_64__) && defined(__GNUC__)
/* prefer-vector-width is gcc's; clang drops the whole target attribute when it sees it. */
#ifdef __clang__
#define LN_AVX512_TARGET "avx512f,avx512vl,avx512bw,avx512dq,fma"
#else
#define LN_AVX512_TARGET "avx512f,avx512vl,avx512bw,avx512dq,fma,prefer-vector-width=512"
#endif
__attribute__((target(LN_AVX512_TARGET))) static void
ln_row_avx512(const float *x, float *y, size_t n, float m, float inv, const float *sc, const float *bi) {
    for (size_t j = 0; j < n; j++) y[j] = fmaf((x[j] - m) * inv, sc[j], bi[j]); /* one rounding fewer */
}
#endif

static mixrt_status run_layer_norm(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    int64_t axis = mixrt_node_attr_int(k->node, "axis", -1);
    int64_t stash = mixrt_node_attr_int(k->node, "stash_type", 1);
    if (!fast_input(k, 0) || k->n_in < 2 || !k->in[1] || output_wanted(k, 1) || output_wanted(k, 2) ||
        !mixrt_norm_axis(axis, x->rank, &axis) || stash <= 0 || stash >= MIXRT_DTYPE_COUNT ||
        !mixrt_dtype_is_float((mixrt_dtype)stash))
        return mixrt_cpu_run_reference(k);
    const struct mixrt_tensor *b = mixrt_kernel_opt_input(k, 2);
    int ir = x->rank - (int)axis;
    const int64_t *idims = x->dims + axis;
    size_t n = mixrt_tensor_numel(x), inner = 1;
    for (int i = 0; i < ir; i++) inner *= (size_t)idims[i];
    size_t outer = inner ? n / inner : 0;
    float *fs = falloc(k, inner), *fb = falloc(k, inner), *buf = NULL;
    const bool wide = x->dtype == MIXRT_DTYPE_F32;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    struct mixrt_tensor *y = NULL;
    if (!fs || !fb) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    bool fits = ln_param(k, 1, ir, idims, inner, fs, &status);
    if (status != MIXRT_STATUS_OK) goto fail;
    if (fits && b) fits = ln_param(k, 2, ir, idims, inner, fb, &status);
    else if (fits) memset(fb, 0, inner * sizeof(float));
    if (status != MIXRT_STATUS_OK) goto fail;
    if (!fits) {
        ffree(k, fs, inner);
        ffree(k, fb, inner);
        return mixrt_cpu_run_reference(k);
    }
    float eps = mixrt_node_attr_float(k->node, "epsilon", 1e-5f);
    /* Every element is written below (outer rows of inner), so no zeroing first. */
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, x->rank, x->dims, &y));
    if (n == 0) goto fail;
    const struct mixrt_nnops_isa *isa = mixrt_nnops_isa();
    void (*row)(const float *, float *, size_t, float, float, const float *, const float *) = ln_row;
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa == &mixrt_nnops_isa_avx512) row = ln_row_avx512; /* same CPUID gate as the table */
#endif
    /* bf16 rows are widened and rounded one at a time in a per-thread f32 row pair (no
     * whole-tensor copies). */
    if (!wide && !(buf = falloc(k, (size_t)nt * 2 * inner))) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    /* Rows split over the threads: in a model the team has just run the previous layer
     * (oneDNN's region, same OpenMP runtime) and starts cheaply. On one thread ViT's
     * LayerNorms [197, 768] took 110-270 us each in the model (38 us alone; why the model
     * slows them is not known), on two 70-150 us. */
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (outer >= 8)
#endif
    for (size_t o = 0; o < outer; o++) {
        const float *xr;
        float *yr, m, inv;
        norm_row(x, y, buf, o, inner, &xr, &yr);
        row_stats(isa, xr, inner, eps, &m, &inv);
        row(xr, yr, inner, m, inv, fs, fb);
        norm_row_done(y, o, inner, yr);
    }
fail:
    ffree(k, fs, inner);
    ffree(k, fb, inner);
    if (buf) ffree(k, buf, (size_t)nt * 2 * inner);
    return status;
}

/* ---- RMSNormalization (com.mixrt, fuse_transformer.c) --------------------------------------------
 * Per row of C: inv = 1 / sqrt(sum(x^2) / C + eps), y = x * inv * scale, by LayerNorm's row
 * primitives with a zero mean. bf16 rows are widened and rounded one at a time in a per-thread
 * f32 row: no whole-tensor copies. */
static bool rms_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!io_supported(g, n, why, why_size)) return false;
    if (n->n_inputs < 2 || n->inputs[1] < 0) {
        say(why, why_size, "%s", "no Scale input");
        return false;
    }
    return true;
}

static mixrt_status run_rms_norm(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    int64_t axis = mixrt_node_attr_int(k->node, "axis", -1);
    if (!fast_input(k, 0) || x->rank < 1 || (axis != -1 && axis != x->rank - 1)) return mixrt_cpu_run_reference(k);
    const size_t c = (size_t)x->dims[x->rank - 1], n = mixrt_tensor_numel(x), rows = c ? n / c : 0;
    float *fs = param_f32(k, 1, c, &status), *fb = NULL, *buf = NULL;
    if (status != MIXRT_STATUS_OK) return status;
    if (!fs || k->in[1]->rank != 1) {
        ffree(k, fs, c);
        return mixrt_cpu_run_reference(k); /* it words the shape error */
    }
    struct mixrt_tensor *y = NULL;
    const float eps = mixrt_node_attr_float(k->node, "epsilon", 1e-5f);
    const bool wide = x->dtype == MIXRT_DTYPE_F32;
    int nt = 1;
#ifdef _OPENMP
    nt = omp_get_max_threads();
#endif
    if (!(fb = falloc(k, c)) || (!wide && !(buf = falloc(k, (size_t)nt * 2 * c)))) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    memset(fb, 0, c * sizeof(float));
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, x->rank, x->dims, &y));
    const struct mixrt_nnops_isa *isa = mixrt_nnops_isa();
    void (*row)(const float *, float *, size_t, float, float, const float *, const float *) = ln_row;
#if defined(__x86_64__) && defined(__GNUC__)
    if (isa == &mixrt_nnops_isa_avx512) row = ln_row_avx512;
#endif
#ifdef _OPENMP
#pragma omp parallel for schedule(static) num_threads(nt) if (rows >= 8)
#endif
    for (size_t r = 0; r < rows; r++) {
        const float *xr;
        float *yr;
        norm_row(x, y, buf, r, c, &xr, &yr);
        float inv = (float)(1.0 / sqrt((double)psumsq_dev(isa, xr, c, 0.0f) / (double)c + (double)eps));
        row(xr, yr, c, 0.0f, inv, fs, fb);
        norm_row_done(y, r, c, yr);
    }
fail:
    ffree(k, fs, c);
    ffree(k, fb, c);
    if (buf) ffree(k, buf, (size_t)nt * 2 * c);
    return status;
}

/* ---- ReduceSum / ReduceMean / ReduceMax ----------------------------------------------------
 * Size-1 dims are dropped and neighbours of the same kind (kept / reduced) merged, giving
 * alternating groups. The innermost reduced group goes first: contiguous rows when it is
 * the last group (pairwise row sums), else col_reduce over [rows, inner] blocks. Each step
 * removes one reduced group into a smaller f32 buffer until only kept groups remain, so
 * innermost-axis and all-but-channel reductions, and any other axes, read memory in order. */

/* ReduceMin, ReduceL1, ReduceL2 and ReduceSumSquare run as a max or sum of a transformed copy
 * of X (-x, |x|, x^2), with the result transformed back (-m, sqrt). */
enum nn_red { NN_SUM, NN_MEAN, NN_MAX, NN_MIN, NN_L1, NN_L2, NN_SUMSQ };

static bool reduce_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    return io_supported(g, n, why, why_size);
}

/* The reduced-axes mask as the reference reads it; false when the reference should judge
 * (bad axes). *noop for an empty axes input with noop_with_empty_axes. */
static bool reduce_mask(struct mixrt_kernel_ctx *k, enum nn_red op, const struct mixrt_tensor *x, bool *mask,
                        bool *noop) {
    int64_t axes[MIXRT_MAX_RANK];
    size_t n = 0;
    *noop = false;
    bool input_form = (op == NN_SUM && k->opset >= 13) || k->opset >= 18;
    if (input_form) {
        const struct mixrt_tensor *t = mixrt_kernel_opt_input(k, 1);
        if (t) {
            if (!mixrt_dtype_is_int(t->dtype) || t->rank > 1 || mixrt_tensor_numel(t) > MIXRT_MAX_RANK) return false;
            n = mixrt_tensor_numel(t);
            for (size_t i = 0; i < n; i++) axes[i] = mixrt_load_i64(t->data, t->dtype, i);
        }
        if (n == 0 && mixrt_node_attr_int(k->node, "noop_with_empty_axes", 0)) {
            *noop = true;
            return true;
        }
    } else {
        size_t cnt = 0;
        const int64_t *a = mixrt_node_attr_ints(k->node, "axes", &cnt);
        if (cnt > MIXRT_MAX_RANK) return false;
        for (size_t i = 0; i < cnt; i++) axes[i] = a[i];
        n = cnt;
    }
    for (int d = 0; d < x->rank; d++) mask[d] = n == 0;
    for (size_t i = 0; i < n; i++) {
        int64_t ax;
        if (!mixrt_norm_axis(axes[i], x->rank, &ax) || mask[ax]) return false;
        mask[ax] = true;
    }
    return true;
}

static mixrt_status run_reduce(struct mixrt_kernel_ctx *k, enum nn_red op) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = k->n_in > 0 ? k->in[0] : NULL;
    bool mask[MIXRT_MAX_RANK], noop = false;
    struct mixrt_tensor *y = NULL;
    size_t n = 0, ny = 0, ncur = 0, nnext = 0, nscr = 0;
    const float *xs = NULL, *cur = NULL;
    float *xo = NULL, *ys = NULL, *yo = NULL, *next = NULL, *owned_cur = NULL, *scr = NULL;
    if (!fast_input(k, 0) || !reduce_mask(k, op, x, mask, &noop)) return mixrt_cpu_run_reference(k);
    if (noop) {
        MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, x->rank, x->dims, &y));
        if (x->nbytes) memcpy(y->data, x->data, x->nbytes);
        return MIXRT_STATUS_OK;
    }
    bool keep = mixrt_node_attr_int(k->node, "keepdims", 1) != 0;
    int orank = 0, ng = 0;
    int64_t odims[MIXRT_MAX_RANK];
    size_t m = 1, glen[MIXRT_MAX_RANK];
    bool gred[MIXRT_MAX_RANK];
    for (int d = 0; d < x->rank; d++) {
        if (mask[d]) m *= (size_t)x->dims[d];
        if (!mask[d]) odims[orank++] = x->dims[d];
        else if (keep) odims[orank++] = 1;
        if (x->dims[d] == 1) continue;
        if (ng && gred[ng - 1] == mask[d]) glen[ng - 1] *= (size_t)x->dims[d];
        else glen[ng] = (size_t)x->dims[d], gred[ng++] = mask[d];
    }
    MIXRT_TRY(mixrt_kernel_output(k, 0, x->dtype, orank, odims, &y));
    n = mixrt_tensor_numel(x), ny = mixrt_tensor_numel(y);
    if (ny == 0) return MIXRT_STATUS_OK;
    MIXRT_TRY(out_f32(k, y, &ys, &yo));
    if (n == 0) { /* empty reductions: 0, NaN (0/0) or -inf (+inf for min), as the reference */
        float v = op == NN_MEAN ? NAN : op == NN_MAX ? -INFINITY : op == NN_MIN ? INFINITY : 0.0f;
        for (size_t j = 0; j < ny; j++) ys[j] = v;
        store_f32(y, ys);
        goto fail;
    }
    const struct mixrt_nnops_isa *isa = mixrt_nnops_isa();
    MIXRT_TRY(load_f32(k, x, &xs, &xo));
    bool is_max = op == NN_MAX || op == NN_MIN;
    if (op == NN_MIN || op == NN_L1 || op == NN_L2 || op == NN_SUMSQ) {
        /* Transformed into a copy of our own (xs may be X's own data). */
        if (!xo) {
            if (!(xo = falloc(k, n))) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
            memcpy(xo, xs, n * sizeof(float));
            xs = xo;
        }
        for (size_t i = 0; i < n; i++) xo[i] = op == NN_MIN ? -xo[i] : op == NN_L1 ? fabsf(xo[i]) : xo[i] * xo[i];
    }
    cur = xs;
    for (;;) {
        int last_red = -1;
        for (int g = 0; g < ng; g++)
            if (gred[g]) last_red = g;
        if (last_red < 0) break;
        size_t rows = 1;
        for (int g = 0; g < last_red; g++) rows *= glen[g];
        size_t len = glen[last_red], inner = 1;
        for (int g = last_red + 1; g < ng; g++) inner *= glen[g]; /* at most one kept group */
        nnext = rows * inner;
        if (!(next = falloc(k, nnext))) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
        if (inner == 1) {
            for (size_t r = 0; r < rows; r++)
                next[r] = is_max ? isa->max(cur + r * len, len) : psum(isa, cur + r * len, len);
        } else {
            size_t need = col_scratch(len, inner);
            if (!is_max && need > nscr) {
                ffree(k, scr, nscr);
                nscr = 0;
                if (!(scr = falloc(k, need))) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
                nscr = need;
            }
            for (size_t r = 0; r < rows; r++)
                col_reduce(isa, cur + r * len * inner, len, inner, is_max, next + r * inner, scr);
        }
        ffree(k, owned_cur, ncur);
        owned_cur = next, cur = next, ncur = nnext, next = NULL;
        /* Drop the group; its kept neighbours merge. */
        for (int g = last_red; g + 1 < ng; g++) glen[g] = glen[g + 1], gred[g] = gred[g + 1];
        ng--;
        if (last_red > 0 && last_red < ng && !gred[last_red - 1] && !gred[last_red]) {
            glen[last_red - 1] *= glen[last_red];
            for (int g = last_red; g + 1 < ng; g++) glen[g] = glen[g + 1], gred[g] = gred[g + 1];
            ng--;
        }
    }
    /* cur holds the ny kept values in order. */
    if (op == NN_MEAN)
        for (size_t j = 0; j < ny; j++) ys[j] = (float)((double)cur[j] / (double)m);
    else if (op == NN_MIN || op == NN_L2)
        for (size_t j = 0; j < ny; j++) ys[j] = op == NN_MIN ? -cur[j] : sqrtf(cur[j]);
    else if (ys != cur)
        memcpy(ys, cur, ny * sizeof(float));
    store_f32(y, ys);
fail:
    ffree(k, xo, n);
    ffree(k, yo, ny);
    ffree(k, owned_cur, ncur);
    ffree(k, next, nnext);
    ffree(k, scr, nscr);
    return status;
}

static mixrt_status run_reduce_sum(struct mixrt_kernel_ctx *k) { return run_reduce(k, NN_SUM); }
static mixrt_status run_reduce_mean(struct mixrt_kernel_ctx *k) { return run_reduce(k, NN_MEAN); }
static mixrt_status run_reduce_max(struct mixrt_kernel_ctx *k) { return run_reduce(k, NN_MAX); }
static mixrt_status run_reduce_min(struct mixrt_kernel_ctx *k) { return run_reduce(k, NN_MIN); }
static mixrt_status run_reduce_l1(struct mixrt_kernel_ctx *k) { return run_reduce(k, NN_L1); }
static mixrt_status run_reduce_l2(struct mixrt_kernel_ctx *k) { return run_reduce(k, NN_L2); }
static mixrt_status run_reduce_sumsq(struct mixrt_kernel_ctx *k) { return run_reduce(k, NN_SUMSQ); }

const struct mixrt_cpu_kernel mixrt_nnops_kernels[] = {
    {"nn_maxpool", "", "MaxPool", pool_supports, NULL, NULL, run_maxpool},
    {"nn_avgpool", "", "AveragePool", pool_supports, NULL, NULL, run_avgpool},
    {"nn_global_avgpool", "", "GlobalAveragePool", global_pool_supports, NULL, NULL, run_global_avgpool},
    {"nn_global_maxpool", "", "GlobalMaxPool", global_pool_supports, NULL, NULL, run_global_maxpool},
    {"nn_gap_nhwc", MIXRT_DOMAIN, "GlobalAveragePool", gap_last_supports, NULL, NULL, run_gap_last}, /* fuse_conv.c's */
    {"nn_maxpool_nhwc", MIXRT_DOMAIN, "MaxPool", maxpool_last_supports, NULL, NULL, run_maxpool_last}, /* the same */
    {"nn_softmax", "", "Softmax", softmax_supports, NULL, NULL, run_softmax},
    {"nn_log_softmax", "", "LogSoftmax", softmax_supports, NULL, NULL, run_log_softmax},
    {"nn_batchnorm", "", "BatchNormalization", bn_supports, NULL, NULL, run_batch_norm},
    {"nn_instancenorm", "", "InstanceNormalization", in_supports, NULL, NULL, run_instance_norm},
    {"nn_instancenorm_nwc", MIXRT_DOMAIN, "InstanceNormalization", in_last_supports, NULL, NULL,
     run_instance_norm_last}, /* fuse_conv.c's 1-D regions */
    {"nn_layernorm", "", "LayerNormalization", ln_supports, NULL, NULL, run_layer_norm},
    {"nn_layernorm", MIXRT_DOMAIN, "LayerNormalization", ln_supports, NULL, NULL, run_layer_norm}, /* fuse_transformer.c's */
    {"nn_rmsnorm", MIXRT_DOMAIN, "RMSNormalization", rms_supports, NULL, NULL, run_rms_norm},
    {"nn_reduce_sum", "", "ReduceSum", reduce_supports, NULL, NULL, run_reduce_sum},
    {"nn_reduce_mean", "", "ReduceMean", reduce_supports, NULL, NULL, run_reduce_mean},
    {"nn_reduce_max", "", "ReduceMax", reduce_supports, NULL, NULL, run_reduce_max},
    {"nn_reduce_min", "", "ReduceMin", reduce_supports, NULL, NULL, run_reduce_min},
    {"nn_reduce_l1", "", "ReduceL1", reduce_supports, NULL, NULL, run_reduce_l1},
    {"nn_reduce_l2", "", "ReduceL2", reduce_supports, NULL, NULL, run_reduce_l2},
    {"nn_reduce_sumsq", "", "ReduceSumSquare", reduce_supports, NULL, NULL, run_reduce_sumsq},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
