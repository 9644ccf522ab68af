/* eltwise_chain.c - the fast kernel "elt_chain" of com.mixrt ElementwiseChain (f32, bf16). The
 * tensor is walked in L1-sized tiles; each tile runs every step with the element-wise span
 * kernels (eltwise_impl.h: AVX-512 or the scalar twin), so an intermediate never leaves L1.
 * Invariant: steps compute in f32 on the tile; bf16 is widened once on the way in and
 * rounded once on the way out, per tile. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "backend/cpu/eltwise_chain_impl.h"
#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/kernels.h"

/* Elements per tile: the running tile and one operand tile (f32), 4 KiB, stay in L1. */
#define CHAIN_TILE 512
/* Tiles below which one thread runs the whole tensor (the team start costs more). */
#define CHAIN_PAR_TILES 32

static const enum mixrt_elt_op chain_elt_op[MIXRT_CHAIN_COUNT] = {
    [MIXRT_CHAIN_ADD] = ELT_ADD,
    [MIXRT_CHAIN_SUB] = ELT_SUB,
    [MIXRT_CHAIN_MUL] = ELT_MUL,
    [MIXRT_CHAIN_DIV] = ELT_DIV,
    [MIXRT_CHAIN_MAX] = ELT_MAX,
    [MIXRT_CHAIN_MIN] = ELT_MIN,
    [MIXRT_CHAIN_RELU] = ELT_RELU,
    [MIXRT_CHAIN_LEAKY_RELU] = ELT_LEAKY,
    [MIXRT_CHAIN_SIGMOID] = ELT_SIGMOID,
    [MIXRT_CHAIN_TANH] = ELT_TANH,
    [MIXRT_CHAIN_ERF] = ELT_ERF,
    [MIXRT_CHAIN_EXP] = ELT_EXP,
    [MIXRT_CHAIN_SQRT] = ELT_SQRT,
    [MIXRT_CHAIN_RECIPROCAL] = ELT_RECIP,
    [MIXRT_CHAIN_NEG] = ELT_NEG,
    [MIXRT_CHAIN_ABS] = ELT_ABS,
    [MIXRT_CHAIN_CLIP] = ELT_CLIP,
    [MIXRT_CHAIN_HARD_SIGMOID] = ELT_HARDSIGMOID,
    [MIXRT_CHAIN_HARD_SWISH] = ELT_HARDSWISH,
    [MIXRT_CHAIN_SOFTPLUS] = ELT_SOFTPLUS,
    [MIXRT_CHAIN_GELU] = ELT_GELU,
    [MIXRT_CHAIN_GELU_TANH] = ELT_GELU_TANH,
};

static bool fast_dtype(mixrt_dtype dt) { return dt == MIXRT_DTYPE_F32 || dt == MIXRT_DTYPE_BF16; }

static bool chain_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    struct mixrt_chain c;
    if (n->n_inputs < 1 || n->inputs[0] < 0 || n->n_outputs != 1 || n->outputs[0] < 0) {
        if (why && why_size) snprintf(why, why_size, "needs input 0 and exactly one output");
        return false;
    }
    if (!mixrt_chain_parse_attrs(n, n->n_inputs, &c, why, why_size)) return false;
    mixrt_dtype dt = g->values[n->inputs[0]].dtype, yt = g->values[n->outputs[0]].dtype;
    if (!fast_dtype(dt) || (yt != dt && yt != MIXRT_DTYPE_UNDEFINED)) {
        if (why && why_size) snprintf(why, why_size, "input 0 is %s, output %s: only f32 or bf16 throughout",
                                      mixrt_dtype_name(dt), mixrt_dtype_name(yt));
        return false;
    }
    for (int i = 1; i < n->n_inputs; i++)
        if (n->inputs[i] < 0 || g->values[n->inputs[i]].dtype != dt) {
            if (why && why_size) snprintf(why, why_size, "input %d is absent or not input 0's dtype", i);
            return false;
        }
    return true;
}

static mixrt_status chain_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_chain c;
    float *vec[MIXRT_CHAIN_MAX_STEPS] = {NULL}; /* last-axis vector operands, widened */
    size_t vlen[MIXRT_CHAIN_MAX_STEPS] = {0};
    struct mixrt_tensor *y = NULL;
    char d[256];
    MIXRT_TRY(mixrt_chain_check(k, &c));
    const struct mixrt_tensor *x = k->in[0];
    if (!fast_dtype(x->dtype))
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, "input #0 is %s, expected f32 or bf16",
                                     mixrt_tensor_desc(d, sizeof(d), x)));
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, x->rank, x->dims, &y));
    size_t n = mixrt_tensor_numel(x);
    if (n == 0) goto fail;

    /* Per step: the span op, its parameters, and for binary steps the operand: a full tensor
     * (stride 1), its one value widened here once (stride 0), or a vector along the last axis
     * (widened here once into vec[s], vlen[s] values; each tile reads it from its offset). */
    enum mixrt_elt_op op[MIXRT_CHAIN_MAX_STEPS];
    struct mixrt_elt_params prm[MIXRT_CHAIN_MAX_STEPS];
    const void *opd[MIXRT_CHAIN_MAX_STEPS];
    float one[MIXRT_CHAIN_MAX_STEPS];
    bool bin[MIXRT_CHAIN_MAX_STEPS];
    for (int s = 0; s < c.n; s++) {
        op[s] = chain_elt_op[c.s[s].op];
        prm[s] = (struct mixrt_elt_params){c.s[s].p[0], c.s[s].p[1], c.s[s].p[2], c.s[s].p[3]};
        bin[s] = mixrt_chain_op_binary(c.s[s].op);
        opd[s] = NULL;
        if (!bin[s]) continue;
        const struct mixrt_tensor *t = k->in[c.s[s].operand];
        size_t tn = mixrt_tensor_numel(t);
        if (tn == 1) {
            one[s] = (float)mixrt_load_f64(t->data, t->dtype, 0); /* exact */
        } else if (tn != n) { /* the last-axis vector (mixrt_chain_check) */
            if (!(vec[s] = mixrt_alloc(k->ctx, tn * sizeof(float))))
                MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for an operand row"));
            for (size_t j = 0; j < tn; j++) vec[s][j] = (float)mixrt_load_f64(t->data, t->dtype, j); /* exact */
            vlen[s] = tn;
        } else {
            opd[s] = t->data;
        }
    }
    mixrt_elt_unary_fn ufn = mixrt_elt_unary_isa();
    mixrt_elt_binary_fn bfn = mixrt_elt_binary_isa();
    bool bf16 = x->dtype == MIXRT_DTYPE_BF16;
    long tiles = (long)((n + CHAIN_TILE - 1) / CHAIN_TILE);
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (tiles >= CHAIN_PAR_TILES)
#endif
    for (long t = 0; t < tiles; t++) {
        size_t i0 = (size_t)t * CHAIN_TILE, m = n - i0 < CHAIN_TILE ? n - i0 : CHAIN_TILE;
        float wbuf[CHAIN_TILE], obuf[CHAIN_TILE];
        /* f32 runs in the output tile itself; the first step reads X0 there. */
        float *w = bf16 ? wbuf : (float *)y->data + i0;
        const float *src = bf16 ? wbuf : (const float *)x->data + i0;
        if (bf16) mixrt_bf16_to_f32((const mixrt_bf16 *)x->data + i0, wbuf, m);
        for (int s = 0; s < c.n; s++) {
            if (!bin[s]) {
                ufn(op[s], &prm[s], src, w, m);
            } else {
                const float *o = &one[s];
                int so = 0;
                if (vec[s]) { /* vec[s] read from (i0 + j) mod C */
                    size_t C = vlen[s], at = i0 % C;
                    for (size_t j = 0; j < m;) {
                        size_t run = C - at < m - j ? C - at : m - j;
                        memcpy(obuf + j, vec[s] + at, run * sizeof(float));
                        j += run, at = 0;
                    }
                    o = obuf, so = 1;
                } else if (opd[s]) {
                    so = 1;
                    if (bf16) mixrt_bf16_to_f32((const mixrt_bf16 *)opd[s] + i0, obuf, m), o = obuf;
                    else o = (const float *)opd[s] + i0;
                }
                if (c.s[s].swapped) bfn(op[s], o, so, src, 1, w, m);
                else bfn(op[s], src, 1, o, so, w, m);
            }
            src = w;
        }
        if (bf16) mixrt_f32_to_bf16(wbuf, (mixrt_bf16 *)y->data + i0, m);
    }
fail:
    for (int s = 0; s < MIXRT_CHAIN_MAX_STEPS; s++)
        if (vec[s]) mixrt_free(k->ctx, vec[s], vlen[s] * sizeof(float));
    return status;
}

const struct mixrt_cpu_kernel mixrt_eltwise_chain_kernels[] = {
    {"elt_chain", MIXRT_DOMAIN, "ElementwiseChain", chain_supports, NULL, NULL, chain_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
