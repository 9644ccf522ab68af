/* gemv.c - 1x1 channels-last FusedConv on a few pixels (conv1x1_gemv): squeeze-excite's two
 * small products (EfficientNet, MobileNetV3: [1, 1, 1, C] in, C/4 or C out), where a oneDNN
 * call costs more than its few ten thousand multiply-adds (EfficientNet-B0's 32 such products:
 * 0.235 ms through oneDNN, 0.134 ms with 25 of them here). One thread, the weights stored
 * k-major in their own dtype (bf16 widened exactly as they are read), f32 accumulation in the
 * order of the input channels, the activation by mixrt_elt_fconv_act, one rounding to bf16.
 * Timed against oneDNN's kernels like every candidate. */
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/gemv_impl.h"
#include "backend/cpu/kernels.h"
#include "core/convert_impl.h"

/* Pixels (N x H x W) and channels this kernel takes: beyond them the products are large enough
 * for oneDNN's threads and blocking. */
#define GEMV_MAX_ROWS 8
#define GEMV_MAX_CH 8192

struct gemv_state {
    int64_t c, m;
    float *w;     /* [c][m]: W's transpose in f32 (f32 weights), else NULL */
    uint16_t *wb; /* the same in bf16 bits (bf16 weights: half the bytes to stream), else NULL */
    float *b; /* [m]: the constant bias, or zeros without one */
    bool b_const;
    size_t w_bytes, b_bytes;
};

static bool refuse(char *why, size_t why_size, const char *msg) {
    if (why && why_size) snprintf(why, why_size, "%s", msg);
    return false;
}

static bool fast_dtype(mixrt_dtype t) { return t == MIXRT_DTYPE_F32 || t == MIXRT_DTYPE_BF16; }

static bool gemv_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    enum mixrt_fconv_act act;
    float p0, p1;
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
        return refuse(why, why_size, "X, W or Y absent");
    if (!mixrt_fconv_read_act(n, &act, &p0, &p1)) return refuse(why, why_size, "malformed activation");
    if (mixrt_node_attr_int(n, "channels_last", 0) != 1) return refuse(why, why_size, "not channels-last");
    if (mixrt_node_attr_int(n, "group", 1) != 1) return refuse(why, why_size, "grouped");
    const struct mixrt_value *xv = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if (!fast_dtype(xv->dtype) || yv->dtype != xv->dtype) return refuse(why, why_size, "X and Y not both f32 or bf16");
    if (n->n_inputs > 3 && n->inputs[3] >= 0 && g->values[n->inputs[3]].dtype != xv->dtype)
        return refuse(why, why_size, "Z's dtype differs from X's");
    if (n->n_inputs > 2 && n->inputs[2] >= 0 && !mixrt_dtype_is_float(g->values[n->inputs[2]].dtype))
        return refuse(why, why_size, "B is not a float tensor");
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "W is not a constant initializer");
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    if (!mixrt_dtype_is_float(w->dtype) || w->rank != 4 || w->dims[2] != 1 || w->dims[3] != 1 || w->dims[0] < 1 ||
        w->dims[1] < 1 || w->dims[0] > GEMV_MAX_CH || w->dims[1] > GEMV_MAX_CH)
        return refuse(why, why_size, "W is not a float [M, C, 1, 1] tensor of at most 8192 channels");
    if (!mixrt_node_attr_ints_all(n, "strides", 1, 0) || !mixrt_node_attr_ints_all(n, "pads", 0, 0) ||
        !mixrt_node_attr_ints_all(n, "kernel_shape", 1, 0))
        return refuse(why, why_size, "strides other than 1, pads, or a kernel_shape other than 1x1");
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (ap[0] && strcmp(ap, "NOTSET") && strcmp(ap, "VALID")) return refuse(why, why_size, "auto_pad SAME");
    /* A few pixels, known at build time (the choice is timed on them). */
    if (xv->rank != 4 || xv->dims[3].value != w->dims[1]) return refuse(why, why_size, "X is not [N, H, W, C]");
    int64_t rows = 1;
    for (int d = 0; d < 3; d++) {
        if (xv->dims[d].value < 1) return refuse(why, why_size, "X's shape is not static");
        rows *= xv->dims[d].value;
        if (rows > GEMV_MAX_ROWS) return refuse(why, why_size, "more than 8 pixels");
    }
    return true;
}

static void gemv_release(mixrt_context_t ctx, void *state) {
    struct gemv_state *st = state;
    if (!st) return;
    if (st->w) mixrt_free(ctx, st->w, st->w_bytes);
    if (st->wb) mixrt_free(ctx, st->wb, st->w_bytes);
    if (st->b) mixrt_free(ctx, st->b, st->b_bytes);
    mixrt_free(ctx, st, sizeof(*st));
}

static mixrt_status gemv_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                 void **state) {
    mixrt_status status = MIXRT_STATUS_OK;
    char why[160] = "";
    if (!gemv_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build FusedConv node '%s' with conv1x1_gemv: %s",
                           n->name, why);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    int bi = n->n_inputs > 2 ? n->inputs[2] : -1;
    const struct mixrt_tensor *b = bi >= 0 && mixrt_graph_is_fixed_const(g, bi) ? g->values[bi].init : NULL;
    struct gemv_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    st->m = w->dims[0], st->c = w->dims[1];
    st->b_const = bi < 0 || b != NULL;
    const bool wbf = w->dtype == MIXRT_DTYPE_BF16;
    st->w_bytes = (size_t)(st->m * st->c) * (wbf ? sizeof(uint16_t) : sizeof(float)); /* both at most 8192 */
    st->b_bytes = (size_t)st->m * sizeof(float);
    if (wbf) st->wb = mixrt_alloc(ctx, st->w_bytes);
    else st->w = mixrt_alloc(ctx, st->w_bytes);
    st->b = mixrt_alloc(ctx, st->b_bytes);
    if (!(st->w || st->wb) || !st->b) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
    memset(st->b, 0, st->b_bytes);
    for (int64_t j = 0; j < st->m; j++)
        for (int64_t i = 0; i < st->c; i++) {
            const size_t from = (size_t)(j * st->c + i), to = (size_t)(i * st->m + j);
            if (wbf) st->wb[to] = ((const uint16_t *)w->data)[from];
            else st->w[to] = (float)mixrt_load_f64(w->data, w->dtype, from);
        }
    if (b) {
        MIXRT_CHECK(ctx, b->rank == 1 && b->dims[0] == st->m, MIXRT_STATUS_INVALID_MODEL,
                    "cannot build FusedConv node '%s': input #2 (B) has %lld elements, expected %lld", n->name,
                    (long long)mixrt_tensor_numel(b), (long long)st->m);
        for (int64_t j = 0; j < st->m; j++) st->b[j] = (float)mixrt_load_f64(b->data, b->dtype, (size_t)j);
    }
    *state = st;
    return MIXRT_STATUS_OK;
fail:
    gemv_release(ctx, st);
    return status;
}

static int g_force_scalar; /* tests only: 1 scalar, 2 AVX2 */
void mixrt_gemv_force_scalar(int on) { g_force_scalar = on; }

/* The spans to use: 2 AVX-512, 1 AVX2 + FMA, 0 scalar. */
static int span_isa(void) {
#if defined(__x86_64__)
    const struct mixrt_cpu_features *f = mixrt_cpu_features();
    if (g_force_scalar == 1) return 0;
    if (g_force_scalar != 2 && mixrt_elt_has_avx512()) return 2;
    if (f->avx2 && f->fma) return 1;
#endif
    return 0;
}

static void span_scalar(const float *x, size_t k, const float *w, const uint16_t *wb, size_t m, float *y) {
    for (size_t i = 0; i < k; i++)
        for (size_t j = 0; j < m; j++) {
            float wv = w ? w[i * m + j] : mixrt_bf16_to_float((mixrt_bf16){wb[i * m + j]});
            y[j] = fmaf(x[i], wv, y[j]);
        }
}

static mixrt_status gemv_run(struct mixrt_kernel_ctx *k) {
    const struct gemv_state *st = k->state;
    const struct mixrt_tensor *x = mixrt_kernel_opt_input(k, 0), *w = mixrt_kernel_opt_input(k, 1),
                              *b = mixrt_kernel_opt_input(k, 2), *z = mixrt_kernel_opt_input(k, 3);
    enum mixrt_fconv_act act;
    float p0, p1;
    /* Anything but the case prepare saw goes to the reference kernel, which words the errors. */
    if (!st || !x || !w || !fast_dtype(x->dtype) || x->rank != 4 || x->dims[3] != st->c || w->rank != 4 ||
        w->dims[0] != st->m || w->dims[1] != st->c || !mixrt_fconv_read_act(k->node, &act, &p0, &p1) ||
        (b && (b->rank != 1 || b->dims[0] != st->m)) || (!st->b_const && !b))
        return mixrt_cpu_run_reference(k);
    const int64_t rows = x->dims[0] * x->dims[1] * x->dims[2];
    const int64_t ydims[4] = {x->dims[0], x->dims[1], x->dims[2], st->m};
    if (rows < 1 || rows > GEMV_MAX_ROWS ||
        (z && (z->dtype != x->dtype || z->rank != 4 || memcmp(z->dims, ydims, sizeof(ydims)))))
        return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *y = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, x->dtype, 4, ydims, &y);
    if (status != MIXRT_STATUS_OK) return status;
    const bool bf = x->dtype == MIXRT_DTYPE_BF16;
    const int vec = span_isa();
    const size_t C = (size_t)st->c, M = (size_t)st->m;
    /* Row buffers from the engine's scratch (an engine may run on a caller's small stack). */
    const size_t wbytes = (C + 2 * M) * sizeof(float);
    bool owned;
    float *xs = mixrt_kernel_scratch(k, wbytes, &owned);
    if (!xs) return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of rows", wbytes);
    float *zs = xs + C, *acc = zs + M;
    for (int64_t r = 0; r < rows; r++) {
        const float *xr = (const float *)x->data + r * st->c;
        if (bf) {
            mixrt_bf16_to_f32((const mixrt_bf16 *)x->data + r * st->c, xs, C);
            xr = xs;
        }
        if (b && !st->b_const)
            for (size_t j = 0; j < M; j++) acc[j] = (float)mixrt_load_f64(b->data, b->dtype, j);
        else
            memcpy(acc, st->b, M * sizeof(float));
#if defined(__x86_64__)
        if (vec == 2 && st->w) mixrt_gemv_row_avx512(xr, C, st->w, M, acc);
        else if (vec == 2) mixrt_gemv_row_bf16w_avx512(xr, C, st->wb, M, acc);
        else if (vec == 1 && st->w) mixrt_gemv_row_avx2(xr, C, st->w, M, acc);
        else if (vec == 1) mixrt_gemv_row_bf16w_avx2(xr, C, st->wb, M, acc);
        else
#endif
            span_scalar(xr, C, st->w, st->wb, M, acc);
        if (z) {
            const float *zr = (const float *)z->data + r * st->m;
            if (bf) {
                mixrt_bf16_to_f32((const mixrt_bf16 *)z->data + r * st->m, zs, M);
                zr = zs;
            }
            for (size_t j = 0; j < M; j++) acc[j] += zr[j];
        }
        mixrt_elt_fconv_act(act, p0, p1, acc, M);
        if (bf) mixrt_f32_to_bf16(acc, (mixrt_bf16 *)y->data + r * st->m, M);
        else memcpy((float *)y->data + r * st->m, acc, M * sizeof(float));
    }
    (void)vec;
    if (owned) mixrt_free(k->ctx, xs, wbytes);
    return MIXRT_STATUS_OK;
}

/* ---- FusedMatMul on a few rows (fmm_gemv) ---------------------------------------------------
 * A classifier head on one image (AlexNet's and VGG's 9216 / 25088 -> 4096 -> 4096 -> 1000
 * Gemms): a product of at most FMV_MAX_ROWS rows reads each weight once, so it runs at the
 * speed memory delivers B however B is laid out. B is read where the graph holds it ([K, N],
 * or [N, K] with transB) in its own dtype (bf16 widened exactly as it is read): the engine
 * keeps no packed copy of it (oneDNN's doubled these heads' memory while it was made: VGG-16's
 * 392 MiB fc6 twice), and bf16 weights stream half the bytes (AlexNet's fc6 here: f32 3.8-4.1
 * ms, bf16 2.0 ms, ~40 GB/s either way, what memory gives this machine). The threads take shares of
 * B's columns (of its rows with transB). f32 accumulation, then bias, Z, the activation and
 * one rounding to the output dtype. Timed against dnnl_fused_matmul like every candidate. */
#define FMV_MAX_ROWS 4
#define FMV_BIG_B_BYTES ((size_t)64 << 20)
#define FMV_STREAMED_B_BYTES ((size_t)1 << 20)
#define FMV_STREAMED_MODEL_BYTES ((size_t)128 << 20)

struct fmv_state {
    int64_t rows, K, N;
    bool trans_b;
    enum mixrt_fconv_act act;
};

static bool fmv_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    enum mixrt_fconv_act act;
    if (n->n_inputs < 2 || n->inputs[0] < 0 || n->inputs[1] < 0 || n->n_outputs < 1 || n->outputs[0] < 0)
        return refuse(why, why_size, "A, B or Y absent");
    if (!mixrt_fmm_fconv_act(mixrt_fmm_activation(n), &act)) return refuse(why, why_size, "unknown activation");
    const struct mixrt_value *av = &g->values[n->inputs[0]], *yv = &g->values[n->outputs[0]];
    if (!fast_dtype(av->dtype) || yv->dtype != av->dtype) return refuse(why, why_size, "A and Y not both f32 or bf16");
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "B is not a constant");
    const struct mixrt_tensor *b = g->values[n->inputs[1]].init;
    if (b->rank != 2 || b->dtype != av->dtype || b->dims[0] < 1 || b->dims[1] < 1)
        return refuse(why, why_size, "B is not a matrix of A's dtype");
    const bool tb = mixrt_node_attr_int(n, "transB", 0) != 0;
    const int64_t K = tb ? b->dims[1] : b->dims[0];
    int bi = n->n_inputs > 2 ? n->inputs[2] : -1, zi = n->n_inputs > 3 ? n->inputs[3] : -1;
    if (bi >= 0 && (!mixrt_graph_is_fixed_const(g, bi) || !mixrt_dtype_is_float(g->values[bi].dtype)))
        return refuse(why, why_size, "the bias is not a float constant");
    if (zi >= 0 && g->values[zi].dtype != av->dtype) return refuse(why, why_size, "Z's dtype differs from A's");
    /* A few rows, known at build time (the choice is timed on them). */
    if (av->rank < 1 || av->dims[av->rank - 1].value != K) return refuse(why, why_size, "A's last dim is not B's K");
    int64_t rows = 1;
    for (int d = 0; d < av->rank - 1; d++) {
        if (av->dims[d].value < 0) return refuse(why, why_size, "A's shape is not static");
        rows *= av->dims[d].value;
    }
    if (rows < 1 || rows > FMV_MAX_ROWS) return refuse(why, why_size, "not 1 to 4 rows");
    return true;
}

/* Bytes of the graph's constants: above FMV_STREAMED_MODEL_BYTES (four times a 32 MiB
 * last-level cache) a run reads each weight from memory, not from cache. */
static size_t const_bytes(const struct mixrt_graph *g) {
    size_t sum = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].init && mixrt_graph_is_fixed_const(g, v)) sum += g->values[v].init->nbytes;
    return sum;
}

bool mixrt_fmv_streams_big_b(const struct mixrt_graph *g, const struct mixrt_node *n) {
    if (!mixrt_elt_has_avx512() || !fmv_supports(g, n, NULL, 0)) return false;
    size_t nb = g->values[n->inputs[1]].init->nbytes;
    /* A few rows by a B of FMV_STREAMED_B_BYTES or more in a model whose weights cannot stay
     * cached (GPT-2 at one decoding step: 498 MB, its products 2.4-9.4 MB each): every run
     * reads B from memory, where fmm_gemv streams it at ~40-50 GB/s and oneDNN's packed
     * product at ~20. The builder's timing cannot see this: it runs one node again and
     * again, its B cached. */
    return nb >= FMV_BIG_B_BYTES || (nb >= FMV_STREAMED_B_BYTES && const_bytes(g) >= FMV_STREAMED_MODEL_BYTES);
}

static void fmv_release(mixrt_context_t ctx, void *state) { mixrt_free(ctx, state, sizeof(struct fmv_state)); }

static mixrt_status fmv_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                void **state) {
    char why[160] = "";
    if (!fmv_supports(g, n, why, sizeof(why)))
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot build %s node '%s' with a few-rows product: %s",
                           n->op_type, n->name, why);
    const struct mixrt_tensor *b = g->values[n->inputs[1]].init;
    const struct mixrt_value *av = &g->values[n->inputs[0]];
    struct fmv_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    st->trans_b = mixrt_node_attr_int(n, "transB", 0) != 0;
    st->K = st->trans_b ? b->dims[1] : b->dims[0];
    st->N = st->trans_b ? b->dims[0] : b->dims[1];
    st->rows = 1;
    for (int d = 0; d < av->rank - 1; d++) st->rows *= av->dims[d].value;
    (void)mixrt_fmm_fconv_act(mixrt_fmm_activation(n), &st->act);
    *state = st;
    return MIXRT_STATUS_OK;
}

/* y [R][N] (f32) = A [R][K] B over B's columns [j0, j1) (rows of B with transB). */
static void fmv_span_scalar(const float *a, int R, size_t K, const void *b, bool bf, bool tb, size_t N, size_t j0,
                            size_t j1, float *y) {
    for (int r = 0; r < R; r++)
        for (size_t j = j0; j < j1; j++) {
            float acc = 0.0f;
            for (size_t i = 0; i < K; i++) {
                const size_t at = tb ? j * K + i : i * N + j;
                const float w =
                    bf ? mixrt_bf16_to_float((mixrt_bf16){((const uint16_t *)b)[at]}) : ((const float *)b)[at];
                acc = fmaf(a[(size_t)r * K + i], w, acc);
            }
            y[(size_t)r * N + j] = acc;
        }
}

/* abf: A's bf16 bits when A is bf16 and the CPU has AVX512-BF16, else NULL. */
static void fmv_span(const float *a, const uint16_t *abf, int R, size_t K, const void *b, bool bf, bool tb, size_t N,
                     size_t j0, size_t j1, float *y, int vec) {
#if defined(__x86_64__)
    if (vec == 2 && abf && tb) {
        mixrt_fmv_nk_dp_avx512(abf, R, K, b, N, j0, j1, y);
        return;
    }
    if (vec == 2) {
        if (tb) mixrt_fmv_nk_avx512(a, R, K, b, bf, N, j0, j1, y);
        else mixrt_fmv_kn_avx512(a, R, K, b, bf, N, j0, j1, y);
        return;
    }
    if (vec == 1) {
        if (tb) mixrt_fmv_nk_avx2(a, R, K, b, bf, N, j0, j1, y);
        else mixrt_fmv_kn_avx2(a, R, K, b, bf, N, j0, j1, y);
        return;
    }
#endif
    (void)vec, (void)abf;
    fmv_span_scalar(a, R, K, b, bf, tb, N, j0, j1, y);
}

static mixrt_status fmv_run(struct mixrt_kernel_ctx *k) {
    const struct fmv_state *st = k->state;
    const struct mixrt_tensor *a = mixrt_kernel_opt_input(k, 0), *b = mixrt_kernel_opt_input(k, 1),
                              *bias = mixrt_kernel_opt_input(k, 2), *z = mixrt_kernel_opt_input(k, 3);
    /* Anything but the case prepare saw goes to the reference kernel, which words the errors. */
    if (!st || !a || !b || !b->data || !fast_dtype(a->dtype) || b->dtype != a->dtype || a->rank < 1 || b->rank != 2 ||
        a->dims[a->rank - 1] != st->K || b->dims[st->trans_b ? 1 : 0] != st->K ||
        b->dims[st->trans_b ? 0 : 1] != st->N || (int64_t)(mixrt_tensor_numel(a) / (size_t)st->K) != st->rows ||
        (bias && (!mixrt_dtype_is_float(bias->dtype) || bias->rank != 1 || bias->dims[0] != st->N)))
        return mixrt_cpu_run_reference(k);
    int64_t yd[MIXRT_MAX_RANK];
    for (int d = 0; d < a->rank - 1; d++) yd[d] = a->dims[d];
    yd[a->rank - 1] = st->N;
    if (z && (z->dtype != a->dtype || z->rank != a->rank || memcmp(z->dims, yd, (size_t)a->rank * sizeof(int64_t))))
        return mixrt_cpu_run_reference(k);
    struct mixrt_tensor *y = NULL;
    mixrt_status status = mixrt_kernel_output_uninit(k, 0, a->dtype, a->rank, yd, &y);
    if (status != MIXRT_STATUS_OK) return status;
    const bool bf = a->dtype == MIXRT_DTYPE_BF16;
    const int vec = span_isa();
    const int R = (int)st->rows;
    const size_t K = (size_t)st->K, N = (size_t)st->N;
    /* f32 rows of A (widened for bf16) and of Y, from the engine's scratch */
    const size_t wbytes = ((bf ? (size_t)R * K : 0) + (size_t)R * N) * sizeof(float);
    bool owned;
    float *ys = mixrt_kernel_scratch(k, wbytes, &owned);
    if (!ys) return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of rows", wbytes);
    const float *af = (const float *)a->data;
    const uint16_t *abf = bf && vec == 2 && mixrt_convert_has_avx512bf16() ? (const uint16_t *)a->data : NULL;
    if (bf && !(abf && st->trans_b)) {
        float *w = ys + (size_t)R * N;
        mixrt_bf16_to_f32((const mixrt_bf16 *)a->data, w, (size_t)R * K);
        af = w;
    }
    /* Column (or B-row) shares: 64 columns or 4 rows of B a step, threads when B is large. */
    const size_t step = st->trans_b ? 4 : 64, steps = (N + step - 1) / step;
    int nt = 1;
#ifdef _OPENMP
    if (K * N >= ((size_t)1 << 16)) nt = omp_get_max_threads();
#endif
    if ((size_t)nt > steps) nt = (int)steps;
#if defined(__x86_64__)
    /* B [K][N] on several threads: shares of K, so that each thread reads one contiguous
     * block of B (shares of N read a short piece of every row: GPT-2's c_fc, 768 x 3072 f32,
     * 0.49 ms that way, ~19 GB/s); partial rows of Y summed after. */
    float *part = NULL;
    size_t pbytes = 0;
    if (nt > 1 && vec && !st->trans_b && K >= (size_t)nt * 64) {
        pbytes = (size_t)(nt - 1) * (size_t)R * N * sizeof(float);
        part = mixrt_alloc(k->ctx, pbytes);
    }
    if (part) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int t = 0; t < nt; t++) {
            size_t k0 = K * (size_t)t / (size_t)nt, k1 = K * (size_t)(t + 1) / (size_t)nt;
            float *yt = t ? part + (size_t)(t - 1) * R * N : ys;
            if (vec == 2) mixrt_fmv_kn_krange_avx512(af, R, K, k0, k1, b->data, bf, N, yt);
            else mixrt_fmv_kn_krange_avx2(af, R, K, k0, k1, b->data, bf, N, yt);
        }
        for (int t = 1; t < nt; t++) {
            const float *p = part + (size_t)(t - 1) * R * N;
            for (size_t i = 0; i < (size_t)R * N; i++) ys[i] += p[i];
        }
        mixrt_free(k->ctx, part, pbytes);
    } else
#endif
    if (nt > 1) {
#ifdef _OPENMP
#pragma omp parallel for num_threads(nt) schedule(static)
#endif
        for (int t = 0; t < nt; t++) {
            size_t j0 = steps * (size_t)t / (size_t)nt * step, j1 = steps * (size_t)(t + 1) / (size_t)nt * step;
            fmv_span(af, abf, R, K, b->data, bf, st->trans_b, N, j0, j1 < N ? j1 : N, ys, vec);
        }
    } else {
        fmv_span(af, abf, R, K, b->data, bf, st->trans_b, N, 0, N, ys, vec);
    }
    for (int r = 0; r < R; r++) {
        float *yr = ys + (size_t)r * N;
        for (size_t j = 0; bias && j < N; j++) yr[j] += (float)mixrt_load_f64(bias->data, bias->dtype, j);
        for (size_t j = 0; z && j < N; j++) yr[j] += (float)mixrt_load_f64(z->data, z->dtype, (size_t)r * N + j);
        mixrt_elt_fconv_act(st->act, 0.0f, 0.0f, yr, N);
        if (bf) mixrt_f32_to_bf16(yr, (mixrt_bf16 *)y->data + (size_t)r * N, N);
        else memcpy((float *)y->data + (size_t)r * N, yr, N * sizeof(float));
    }
    if (owned) mixrt_free(k->ctx, ys, wbytes);
    return MIXRT_STATUS_OK;
}

const struct mixrt_cpu_kernel mixrt_gemv_kernels[] = {
    {"conv1x1_gemv", MIXRT_DOMAIN, "FusedConv", gemv_supports, gemv_prepare, gemv_release, gemv_run},
    {"fmm_gemv", MIXRT_DOMAIN, "FusedMatMul", fmv_supports, fmv_prepare, fmv_release, fmv_run},
    /* ONNX MatMul by a constant matrix: FusedMatMul without transB, bias or activation (GPT-2's
     * LM head at one decoding step: 1 x 768 by 768 x 50257, 154 MB of f32) */
    {"mm_gemv", "", "MatMul", fmv_supports, fmv_prepare, fmv_release, fmv_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
