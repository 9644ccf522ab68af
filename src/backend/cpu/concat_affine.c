/* concat_affine.c - "concat_affine": the fast kernel of com.mixrt ConcatAffine (f32, bf16; the op
 * is in concat_affine_impl.h). With no activation, ReLU, Clip or LeakyRelu on an AVX-512 CPU each
 * input's rows go straight into Y, a block of rows at a time: one fma a value, the activation and
 * the rounding in register (mixrt_elt_affine_rows_avx512). Other activations (or no AVX-512):
 * blocks of output rows in f32 scratch that stays in L1, each part's segment widened, scaled and
 * shifted (AVX-512 or the scalar twin), the activation over the block (the element-wise spans),
 * one rounding into Y. Either way the joined channels are written once, already normalized:
 * DenseNet's Concat and the BatchNorm + ReLU after it were two passes over the joined tensor. */
#include <stdio.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

#include "backend/cpu/concat_affine_impl.h"
#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/kernels.h"

/* Floats of scratch a thread fills at a time (16 KB): whole rows, at least one. */
#define CA_BLOCK_FLOATS 4096
/* Values below which one thread runs the whole output. */
#define CA_PAR_VALUES 65536

static bool fast_dtype(mixrt_dtype t) { return t == MIXRT_DTYPE_F32 || t == MIXRT_DTYPE_BF16; }

static bool g_force_int, g_force_staged; /* tests */
void mixrt_concat_affine_force(bool int_bf16, bool staged) { g_force_int = int_bf16, g_force_staged = staged; }

static bool ca_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    enum mixrt_fconv_act act;
    float p0, p1;
    if (n->n_inputs < 3 || n->n_outputs < 1 || n->outputs[0] < 0) {
        if (why && why_size) snprintf(why, why_size, "needs S, B, one X and the output");
        return false;
    }
    if (!mixrt_fconv_read_act(n, &act, &p0, &p1)) {
        if (why && why_size) snprintf(why, why_size, "activation unknown or its parameters malformed");
        return false;
    }
    for (int i = 0; i < n->n_inputs; i++) {
        if (n->inputs[i] < 0) {
            if (why && why_size) snprintf(why, why_size, "input #%d absent", i);
            return false;
        }
        mixrt_dtype t = g->values[n->inputs[i]].dtype;
        if (i >= 2 ? !fast_dtype(t) || t != g->values[n->inputs[2]].dtype : !mixrt_dtype_is_float(t)) {
            if (why && why_size) snprintf(why, why_size, "input #%d is %s: X f32 or bf16 (one dtype), S and B float", i,
                                          mixrt_dtype_name(t));
            return false;
        }
    }
    return true;
}

/* S and B as one f32 row [2][C], made at prepare when both are constants (DenseNet's: the pass
 * folds them from the BatchNorm), else NULL and made per run. */
struct ca_state {
    float *sb;
    size_t bytes;
};

static void ca_release(mixrt_context_t ctx, void *state) {
    struct ca_state *st = state;
    if (!st) return;
    if (st->sb) mixrt_free(ctx, st->sb, st->bytes);
    mixrt_free(ctx, st, sizeof(*st));
}

static mixrt_status ca_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                               void **state) {
    struct ca_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    if (n->n_inputs >= 2 && mixrt_graph_is_fixed_const(g, n->inputs[0]) && mixrt_graph_is_fixed_const(g, n->inputs[1])) {
        const struct mixrt_tensor *s = g->values[n->inputs[0]].init, *b = g->values[n->inputs[1]].init;
        const size_t c = mixrt_tensor_numel(s);
        if (s->rank == 1 && b->rank == 1 && mixrt_tensor_numel(b) == c && c > 0 && s->data && b->data) {
            st->bytes = 2 * c * sizeof(float);
            if (!(st->sb = mixrt_alloc(ctx, st->bytes))) {
                ca_release(ctx, st);
                return MIXRT_STATUS_OUT_OF_MEMORY;
            }
            mixrt_convert(st->sb, MIXRT_DTYPE_F32, s->data, s->dtype, c);
            mixrt_convert(st->sb + c, MIXRT_DTYPE_F32, b->data, b->dtype, c);
        }
    }
    *state = st;
    return MIXRT_STATUS_OK;
}

/* y[j] = x[j] * s[j] + b[j] in f32 over n values. */
static void affine_row(bool vec, const void *x, bool bf, const float *s, const float *b, float *y, size_t n) {
#if defined(__x86_64__)
    if (vec) {
        mixrt_elt_affine_row_avx512(x, bf, s, b, y, n);
        return;
    }
#endif
    (void)vec;
    for (size_t j = 0; j < n; j++) {
        float v = bf ? mixrt_bf16_to_float(((const mixrt_bf16 *)x)[j]) : ((const float *)x)[j];
        y[j] = v * s[j] + b[j];
    }
}

static mixrt_status ca_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    int64_t C;
    size_t rows;
    enum mixrt_fconv_act act;
    float p0, p1, *sb = NULL, *own = NULL;
    struct mixrt_tensor *y = NULL;
    const struct ca_state *st = k->state;
    for (int i = 2; i < k->n_in; i++)
        if (!k->in[i] || !fast_dtype(k->in[i]->dtype)) return mixrt_cpu_run_reference(k);
    /* every row written below (the planned slice had been zeroed each run: DenseNet-121's 62 of
     * these spent ~4 % of its bf16 run in memset) */
    MIXRT_TRY(mixrt_concat_affine_check(k, &C, &rows, &act, &p0, &p1, &y));
    if (!C || !rows) goto fail;
    /* S and B as f32 rows: prepare's, or made here (S or B not constant, or no state) */
    if (st && st->sb && st->bytes == 2 * (size_t)C * sizeof(float)) {
        sb = st->sb;
    } else {
        if (!(sb = own = mixrt_alloc(k->ctx, 2 * (size_t)C * sizeof(float))))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for S and B"));
        mixrt_convert(sb, MIXRT_DTYPE_F32, k->in[0]->data, k->in[0]->dtype, (size_t)C);
        mixrt_convert(sb + C, MIXRT_DTYPE_F32, k->in[1]->data, k->in[1]->dtype, (size_t)C);
    }
    const bool bf = y->dtype == MIXRT_DTYPE_BF16, vec = mixrt_elt_has_avx512();
    /* Activations the row kernel applies itself: each input's rows straight into Y, a block of
     * rows at a time (the inputs read as sequential streams). */
    const int ract = act == MIXRT_FCONV_NONE ? 0 : act == MIXRT_FCONV_RELU ? 1 : act == MIXRT_FCONV_CLIP ? 2
                   : act == MIXRT_FCONV_LEAKY_RELU ? 3 : -1;
#if defined(__x86_64__)
    if (vec && ract >= 0 && !g_force_staged) {
        const bool hw = mixrt_cpu_features()->avx512_bf16 && !g_force_int;
        const size_t rbd = (size_t)C < CA_BLOCK_FLOATS * 4 ? CA_BLOCK_FLOATS * 4 / (size_t)C : 1;
        const int64_t nbd = (int64_t)((rows + rbd - 1) / rbd);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (rows * (size_t)C >= CA_PAR_VALUES && nbd > 1)
#endif
        for (int64_t blk = 0; blk < nbd; blk++) {
            size_t r0 = (size_t)blk * rbd, nr = rows - r0 < rbd ? rows - r0 : rbd, at = 0;
            for (int i = 2; i < k->n_in; i++) {
                const struct mixrt_tensor *x = k->in[i];
                size_t len = (size_t)x->dims[x->rank - 1], es = bf ? 2 : 4;
                mixrt_elt_affine_rows_avx512((const char *)x->data + r0 * len * es, len, nr, bf, sb + at, sb + C + at,
                                             (char *)y->data + (r0 * (size_t)C + at) * es, (size_t)C, ract, p0, p1,
                                             hw);
                at += len;
            }
        }
        goto fail;
    }
#endif
    (void)ract;
    const size_t rb = (size_t)C < CA_BLOCK_FLOATS ? CA_BLOCK_FLOATS / (size_t)C : 1;
    const int64_t nblk = (int64_t)((rows + rb - 1) / rb);
    const size_t per = rb * (size_t)C;
    bool oom = false;
#ifdef _OPENMP
#pragma omp parallel if (rows * (size_t)C >= CA_PAR_VALUES && nblk > 1)
#endif
    {
        float *t = mixrt_alloc(k->ctx, per * sizeof(float));
#ifdef _OPENMP
#pragma omp for schedule(static)
#endif
        for (int64_t blk = 0; blk < nblk; blk++) {
            if (!t) continue;
            size_t r0 = (size_t)blk * rb, nr = rows - r0 < rb ? rows - r0 : rb;
            for (size_t r = 0; r < nr; r++) {
                size_t at = 0;
                for (int i = 2; i < k->n_in; i++) {
                    const struct mixrt_tensor *x = k->in[i];
                    size_t len = (size_t)x->dims[x->rank - 1];
                    const char *xr = (const char *)x->data + (r0 + r) * len * (bf ? 2 : 4);
                    affine_row(vec, xr, bf, sb + at, sb + C + at, t + r * (size_t)C + at, len);
                    at += len;
                }
            }
            size_t nv = nr * (size_t)C;
            if (act != MIXRT_FCONV_NONE) mixrt_elt_fconv_act(act, p0, p1, t, nv);
            if (bf) mixrt_f32_to_bf16(t, (mixrt_bf16 *)y->data + r0 * (size_t)C, nv);
            else memcpy((float *)y->data + r0 * (size_t)C, t, nv * sizeof(float));
        }
        if (t) mixrt_free(k->ctx, t, per * sizeof(float));
        else {
#ifdef _OPENMP
#pragma omp atomic write
#endif
            oom = true;
        }
    }
    if (oom) MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for scratch"));
fail:
    if (own) mixrt_free(k->ctx, own, 2 * (size_t)C * sizeof(float));
    return status;
}

const struct mixrt_cpu_kernel mixrt_concat_affine_kernels[] = {
    {"concat_affine", MIXRT_DOMAIN, "ConcatAffine", ca_supports, ca_prepare, ca_release, ca_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
