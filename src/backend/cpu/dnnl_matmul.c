/* dnnl_matmul.c - MatMul (numpy semantics: batch broadcast, 1-D operands) and Gemm (transA/B,
 * alpha, beta, C broadcast) on oneDNN's matmul primitive, f32 or bf16 (f32 accumulation).
 * Invariant: oneDNN sees the mixrt tensors in place (plain strides; a transposed Gemm operand
 * is the same buffer with swapped strides), so a run copies nothing but Gemm's beta*C. */
#ifdef MIXRT_HAVE_DNNL
#include <stdio.h>
#include <string.h>

#include "backend/cpu/dnnl_impl.h"
#include "backend/cpu/gemv_impl.h"

/* The shapes oneDNN sees (rank R = batch dims + 2) and the ONNX output shape. */
struct mm_geom {
    int R;
    int64_t ad[MIXRT_DNNL_MAX_RANK], bd[MIXRT_DNNL_MAX_RANK], yd[MIXRT_DNNL_MAX_RANK];
    int64_t as[MIXRT_DNNL_MAX_RANK], bs[MIXRT_DNNL_MAX_RANK];
    int y_rank;
    int64_t y_dims[MIXRT_MAX_RANK];
    int64_t M, N, K;
};

static void plain_strides(int r, const int64_t *d, int64_t *s) {
    int64_t acc = 1;
    for (int i = r - 1; i >= 0; i--) {
        s[i] = acc;
        acc *= d[i] > 0 ? d[i] : 1;
    }
}

/* Builds st's matmul primitive: src/weights with the given strides, plain dst, output scale
 * alpha (when not 1) and, when add_c, a binary-add post-op of a plain f32 [M,N] tensor. */
static mixrt_status mm_build(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st, dnnl_data_type_t dt,
                             const struct mm_geom *g, float alpha, bool add_c) {
    mixrt_status status = MIXRT_STATUS_OK;
    dnnl_engine_t eng;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    dnnl_status_t s;
    const char *call = "";
    MIXRT_TRY(mixrt_dnnl_get(k->ctx, &eng, NULL));
    dnnl_memory_desc_t a_md, b_md, y_md, c_md;
    dnnl_dims_t ad, as, bd, bs;
    for (int i = 0; i < g->R; i++) ad[i] = g->ad[i], as[i] = g->as[i], bd[i] = g->bd[i], bs[i] = g->bs[i];
    dnnl_matmul_desc_t d;
#define DNNL_DO(expr)                                                                                                  \
    do {                                                                                                               \
        call = #expr;                                                                                                  \
        if ((s = (expr)) != dnnl_success) goto dnnl_fail;                                                              \
    } while (0)
    DNNL_DO(dnnl_memory_desc_init_by_strides(&a_md, g->R, ad, dt, as));
    DNNL_DO(dnnl_memory_desc_init_by_strides(&b_md, g->R, bd, dt, bs));
    DNNL_DO(mixrt_dnnl_plain_md(&y_md, g->R, g->yd, dt));
    DNNL_DO(dnnl_matmul_desc_init(&d, &a_md, &b_md, NULL, &y_md));
    DNNL_DO(mixrt_dnnl_attr_user_scratchpad(&attr));
    if (alpha != 1.0f) DNNL_DO(dnnl_primitive_attr_set_output_scales(attr, 1, 0, &alpha));
    if (add_c) {
        DNNL_DO(mixrt_dnnl_plain_md(&c_md, g->R, g->yd, dnnl_f32));
        DNNL_DO(dnnl_post_ops_create(&po));
        DNNL_DO(dnnl_post_ops_append_binary(po, dnnl_binary_add, &c_md));
        DNNL_DO(dnnl_primitive_attr_set_post_ops(attr, po));
    }
    DNNL_DO(dnnl_primitive_desc_create(&st->pd, &d, attr, eng, NULL));
    DNNL_DO(dnnl_primitive_create(&st->prim, st->pd));
#undef DNNL_DO
    goto fail;
dnnl_fail:
    status = mixrt_dnnl_fail(k, s, call);
fail:
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return status;
}

/* Runs st's primitive on the given buffers (c: the f32 post-op operand, or NULL). */
static mixrt_status mm_exec(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st, const void *a, const void *b,
                            void *y, const float *c) {
    mixrt_status status = MIXRT_STATUS_OK;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_memory_t m[4] = {NULL, NULL, NULL, NULL};
    dnnl_status_t s = dnnl_success;
    const char *call = "dnnl_memory_create";
    struct mixrt_dnnl_scratch sc = {0};
    MIXRT_TRY(mixrt_dnnl_get(k->ctx, &eng, &strm));
    MIXRT_TRY(mixrt_dnnl_scratch_take(k, st->pd, 0, &sc));
    int c_arg = DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1;
    int arg_ids[4] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, c_arg};
    void *ptrs[4] = {(void *)a, (void *)b, y, (void *)c}; /* oneDNN only reads the inputs */
    int n = c ? 4 : 3;
    dnnl_exec_arg_t args[5];
    for (int i = 0; i < n; i++) {
        const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(st->pd, dnnl_query_exec_arg_md, arg_ids[i]);
        if (!md || (s = dnnl_memory_create(&m[i], md, eng, ptrs[i])) != dnnl_success) goto dnnl_fail;
        args[i].arg = arg_ids[i];
        args[i].memory = m[i];
    }
    if (sc.sp) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sc.sp};
    call = "dnnl_primitive_execute";
    if ((s = dnnl_primitive_execute(st->prim, strm, n, args)) != dnnl_success) goto dnnl_fail;
    call = "dnnl_stream_wait";
    if ((s = dnnl_stream_wait(strm)) != dnnl_success) goto dnnl_fail;
    goto fail;
dnnl_fail:
    status = mixrt_dnnl_fail(k, s == dnnl_success ? dnnl_runtime_error : s, call);
fail:
    for (int i = 0; i < 4; i++)
        if (m[i]) dnnl_memory_destroy(m[i]);
    mixrt_dnnl_scratch_put(k->ctx, &sc);
    return status;
}

/* ---- MatMul ---------------------------------------------------------------------------------- */

/* numpy matmul: a 1-D A is [1,K] and a 1-D B is [K,1] (the added dim is dropped from the
 * output); batch dims broadcast right-aligned, and oneDNN broadcasts a batch dim of 1. */
static mixrt_status matmul_geom(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *a,
                                const struct mixrt_tensor *b, struct mm_geom *g) {
    if (a->rank < 1) return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, a, "expected rank >= 1");
    if (b->rank < 1) return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, b, "expected rank >= 1");
    int ba = a->rank > 2 ? a->rank - 2 : 0, bb = b->rank > 2 ? b->rank - 2 : 0, nb = ba > bb ? ba : bb;
    if (nb + 2 > MIXRT_DNNL_MAX_RANK) {
        int i = a->rank >= b->rank ? 0 : 1;
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_UNSUPPORTED, i, k->in[i],
                                    "oneDNN matmul takes at most %d batch dims", MIXRT_DNNL_MAX_RANK - 2);
    }
    if (b->rank == 2 && a->rank > 2) {
        /* A 2-D B under a batched A (a weight over tokens, [L, 1, E] from torch's
         * sequence-first attention): A's leading dims are rows of one product, not a batch of
         * M = 1 products (197 of those ran 3x slower). */
        int64_t m = 1;
        for (int i = 0; i + 1 < a->rank; i++) m *= a->dims[i];
        g->M = m, g->K = a->dims[a->rank - 1], g->N = b->dims[1];
        if (b->dims[0] != g->K)
            return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, b,
                                        "expected its second-to-last dim of %lld to match input #0 (numpy matmul)",
                                        (long long)g->K);
        g->R = 2;
        g->ad[0] = g->M, g->ad[1] = g->K, g->bd[0] = g->K, g->bd[1] = g->N, g->yd[0] = g->M, g->yd[1] = g->N;
        g->y_rank = a->rank;
        for (int i = 0; i + 1 < a->rank; i++) g->y_dims[i] = a->dims[i];
        g->y_dims[a->rank - 1] = g->N;
        plain_strides(2, g->ad, g->as);
        plain_strides(2, g->bd, g->bs);
        return MIXRT_STATUS_OK;
    }
    g->M = a->rank == 1 ? 1 : a->dims[a->rank - 2];
    g->K = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    g->N = b->rank == 1 ? 1 : b->dims[b->rank - 1];
    if (kb != g->K)
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, b,
                                    "expected %s dim of %lld to match input #0 (numpy matmul)",
                                    b->rank == 1 ? "its only" : "its second-to-last", (long long)g->K);
    g->y_rank = 0;
    for (int i = 0; i < nb; i++) {
        int64_t da = i >= nb - ba ? a->dims[i - (nb - ba)] : 1, db = i >= nb - bb ? b->dims[i - (nb - bb)] : 1;
        if (da != db && da != 1 && db != 1) {
            char d[256];
            return mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, b,
                                        "its batch dims do not broadcast with input #0's %s",
                                        mixrt_dims_str(d, sizeof(d), ba, a->dims));
        }
        g->ad[i] = da;
        g->bd[i] = db;
        g->yd[i] = da == 1 ? db : da;
        g->y_dims[g->y_rank++] = g->yd[i];
    }
    g->R = nb + 2;
    g->ad[nb] = g->M, g->ad[nb + 1] = g->K;
    g->bd[nb] = g->K, g->bd[nb + 1] = g->N;
    g->yd[nb] = g->M, g->yd[nb + 1] = g->N;
    if (a->rank >= 2) g->y_dims[g->y_rank++] = g->M;
    if (b->rank >= 2) g->y_dims[g->y_rank++] = g->N;
    plain_strides(g->R, g->ad, g->as);
    plain_strides(g->R, g->bd, g->bs);
    return MIXRT_STATUS_OK;
}

bool mixrt_dnnl_matmul_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!strcmp(n->op_type, "MatMul") && mixrt_fmv_streams_big_b(g, n)) {
        if (why) snprintf(why, why_size, "1-4 rows by a constant B that streams from memory every run: mm_gemv's");
        return false;
    }
    return mixrt_dnnl_supports_common(g, n, 2, -1, 1, MIXRT_DNNL_MAX_RANK, why, why_size);
}

mixrt_status mixrt_dnnl_matmul_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                       void **state) {
    (void)g, (void)n;
    /* Shapes may change between runs, so the primitive is built by the first run. */
    mixrt_status status = mixrt_dnnl_get(ctx, NULL, NULL);
    if (status != MIXRT_STATUS_OK) return status;
    struct mixrt_dnnl_state *st = NULL;
    status = mixrt_dnnl_state_create(ctx, &st);
    if (status == MIXRT_STATUS_OK) *state = st;
    return status;
}

mixrt_status mixrt_dnnl_matmul_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_dnnl_state local, *st = k->state;
    bool own = st == NULL, locked = false;
    if (own) mixrt_dnnl_state_init(st = &local);
    const struct mixrt_tensor *a = NULL, *b = NULL;
    mixrt_dtype dt;
    struct mm_geom g;
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &a));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &b));
    MIXRT_TRY(mixrt_dnnl_check_dtypes(k, 2, -1, &dt));
    MIXRT_TRY(matmul_geom(k, a, b, &g));
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, dt, g.y_rank, g.y_dims, &y)); /* oneDNN writes all of it */
    /* Empty output, or K = 0 (an empty sum: zeros are the answer). */
    if (mixrt_tensor_numel(y) && g.K == 0) memset(y->data, 0, y->nbytes);
    if (mixrt_tensor_numel(y) == 0 || g.K == 0) goto fail;
    pthread_mutex_lock(&st->lock);
    locked = true;
    if (!mixrt_dnnl_state_matches(st, k, 2)) MIXRT_TRY(mm_build(k, st, mixrt_dnnl_dtype(dt), &g, 1.0f, false));
    MIXRT_TRY(mm_exec(k, st, a->data, b->data, y->data, NULL));
fail:
    if (locked) pthread_mutex_unlock(&st->lock);
    if (own) {
        mixrt_dnnl_state_clear(st);
        pthread_mutex_destroy(&st->lock);
    }
    return status;
}

/* ---- Gemm ------------------------------------------------------------------------------------ */

bool mixrt_dnnl_gemm_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!mixrt_dnnl_supports_common(g, n, 2, 2, 2, 2, why, why_size)) return false;
    bool has_c = n->n_inputs > 2 && n->inputs[2] >= 0;
    if (!has_c && n->opset < 11) {
        if (why && why_size) snprintf(why, why_size, "input #2 'C' is required before opset 11");
        return false;
    }
    if (has_c && g->values[n->inputs[2]].rank > 2) {
        if (why && why_size) snprintf(why, why_size, "input #2 has rank %d, expected <= 2", g->values[n->inputs[2]].rank);
        return false;
    }
    return true;
}

mixrt_status mixrt_dnnl_gemm_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                     void **state) {
    return mixrt_dnnl_matmul_prepare(ctx, g, n, state);
}

mixrt_status mixrt_dnnl_gemm_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_dnnl_state local, *st = k->state;
    bool own = st == NULL, locked = false;
    if (own) mixrt_dnnl_state_init(st = &local);
    const struct mixrt_tensor *a = NULL, *b = NULL, *c = mixrt_kernel_opt_input(k, 2);
    float *cbuf = NULL;
    size_t cbytes = 0;
    mixrt_dtype dt;
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &a));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &b));
    MIXRT_TRY(mixrt_dnnl_check_dtypes(k, 2, 2, &dt));
    if (!c && k->opset < 11)
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #2 'C' is required before opset 11"));
    bool ta = mixrt_node_attr_int(k->node, "transA", 0) != 0, tb = mixrt_node_attr_int(k->node, "transB", 0) != 0;
    float alpha = mixrt_node_attr_float(k->node, "alpha", 1.0f), beta = mixrt_node_attr_float(k->node, "beta", 1.0f);
    if (a->rank != 2)
        MIXRT_TRY(mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 0, a, "expected rank 2 %s",
                                       ta ? "[K, M]" : "[M, K]"));
    if (b->rank != 2)
        MIXRT_TRY(mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, b, "expected rank 2 %s",
                                       tb ? "[N, K]" : "[K, N]"));
    struct mm_geom g = {.R = 2};
    g.M = ta ? a->dims[1] : a->dims[0], g.K = ta ? a->dims[0] : a->dims[1];
    g.N = tb ? b->dims[0] : b->dims[1];
    int64_t kb = tb ? b->dims[1] : b->dims[0];
    if (kb != g.K)
        MIXRT_TRY(mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 1, b, "expected %s with K=%lld (from input #0)",
                                       tb ? "[N, K]" : "[K, N]", (long long)g.K));
    /* C broadcasts unidirectionally to [M, N] (before opset 7 only with 'broadcast' set; like
     * the reference kernel, any such C is accepted there too). */
    int64_t cs0 = 0, cs1 = 0;
    if (c) {
        int64_t cd0 = c->rank >= 2 ? c->dims[c->rank - 2] : 1, cd1 = c->rank >= 1 ? c->dims[c->rank - 1] : 1;
        if (c->rank > 2 || (cd0 != 1 && cd0 != g.M) || (cd1 != 1 && cd1 != g.N))
            MIXRT_TRY(mixrt_dnnl_bad_input(k, MIXRT_STATUS_INVALID_MODEL, 2, c,
                                           "expected a shape unidirectionally broadcastable to [M=%lld, N=%lld]",
                                           (long long)g.M, (long long)g.N));
        cs0 = cd0 == 1 ? 0 : cd1;
        cs1 = cd1 == 1 ? 0 : 1;
    }
    g.ad[0] = g.M, g.ad[1] = g.K, g.bd[0] = g.K, g.bd[1] = g.N, g.yd[0] = g.M, g.yd[1] = g.N;
    /* op(A) = A^T is A's buffer read with swapped strides (same for B). */
    g.as[0] = ta ? 1 : g.K, g.as[1] = ta ? g.M : 1;
    g.bs[0] = tb ? 1 : g.N, g.bs[1] = tb ? g.K : 1;
    for (int i = 0; i < 2; i++) {
        if (g.as[i] < 1) g.as[i] = 1;
        if (g.bs[i] < 1) g.bs[i] = 1;
    }
    int64_t ydims[2] = {g.M, g.N};
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, dt, 2, ydims, &y)); /* oneDNN writes all of it */
    size_t ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    bool add_c = c && beta != 0.0f;
    if (g.K == 0) {
        if (!add_c) memset(y->data, 0, y->nbytes);
        /* alpha * (empty sum) + beta * C. */
        for (size_t i = 0; add_c && i < ny; i++) {
            size_t r = i / (size_t)g.N, q = i % (size_t)g.N;
            mixrt_store_f64(y->data, dt, i, (double)beta * mixrt_load_f64(c->data, c->dtype, r * cs0 + q * cs1));
        }
        goto fail;
    }
    if (add_c) {
        /* beta * C, broadcast to [M, N] in f32: the post-op adds it before dst is rounded. */
        if (!mixrt_mul_size(ny, sizeof(float), &cbytes))
            MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "beta*C buffer size overflows"));
        cbuf = mixrt_alloc(k->ctx, cbytes);
        if (!cbuf) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
        size_t i = 0;
        for (int64_t r = 0; r < g.M; r++)
            for (int64_t q = 0; q < g.N; q++, i++)
                cbuf[i] = (float)((double)beta * mixrt_load_f64(c->data, c->dtype, (size_t)(r * cs0 + q * cs1)));
    }
    pthread_mutex_lock(&st->lock);
    locked = true;
    if (!mixrt_dnnl_state_matches(st, k, 3)) MIXRT_TRY(mm_build(k, st, mixrt_dnnl_dtype(dt), &g, alpha, add_c));
    MIXRT_TRY(mm_exec(k, st, a->data, b->data, y->data, cbuf));
fail:
    if (locked) pthread_mutex_unlock(&st->lock);
    if (own) {
        mixrt_dnnl_state_clear(st);
        pthread_mutex_destroy(&st->lock);
    }
    if (cbuf) mixrt_free(k->ctx, cbuf, cbytes);
    return status;
}

#else
typedef int mixrt_dnnl_matmul_unused; /* ISO C wants a declaration in every translation unit */
#endif /* MIXRT_HAVE_DNNL */
