/* gemm_lt.c - GEMM plans on cuBLASLt: row-major products (batched, strided) with bias /
 * ReLU / GELU epilogues, f32 accumulation, candidates from the heuristic timed once and the
 * fastest kept. Invariant: cuBLASLt is column-major, so a row-major Y = A B is computed as
 * the column-major Y^T = B^T A^T: its "A" is our B and its "B" our A, with m and n swapped;
 * nothing is transposed in memory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_impl.h"

/* The heuristic's first 8 candidates are timed (MIXRT_CUDA_GEMM_ALGOS=N takes N, 1..16, to
 * compare: 16 made no difference on BERT b32, 1.783 vs 1.785 ms, H200 call 31). */
#define MIXRT_CUDA_GEMM_HEURISTIC_ALGOS 16
#define MIXRT_CUDA_GEMM_MAX_ALGOS 30 /* the heuristic's 16, up to 6 split-K and 8 tile variants */

struct mixrt_cuda_gemm {
    struct mixrt_cuda_device *dev;
    struct mixrt_cuda_gemm_desc desc;
    char name[96];
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t la, lb, ly; /* la: cuBLASLt's A (our B), lb: its B (our A) */
    cublasLtMatmulHeuristicResult_t algos[MIXRT_CUDA_GEMM_MAX_ALGOS];
    int n_algos, chosen;
    float chosen_ms;
    bool has_bias;
    const void *c; /* desc.accumulate: the addend read as cuBLASLt's C (beta = 1) */
    uint32_t req_a, req_b, req_y; /* the pointer alignments run checks (desc.align_*, else 256) */
};

static const char *gemm_epilogue_name(enum mixrt_cuda_epilogue e) {
    static const char *const names[] = {"none", "bias", "relu", "bias+relu", "gelu_tanh", "bias+gelu_tanh"};
    _Static_assert(sizeof names / sizeof names[0] == MIXRT_CUDA_EPILOGUE_COUNT, "epilogue names");
    return (unsigned)e < MIXRT_CUDA_EPILOGUE_COUNT ? names[e] : "?";
}

static cudaDataType_t gemm_cuda_type(mixrt_dtype dt) {
    return dt == MIXRT_DTYPE_BF16 ? CUDA_R_16BF : dt == MIXRT_DTYPE_F16 ? CUDA_R_16F : CUDA_R_32F;
}

/* Largest power of two <= 256 dividing x (256 for 0): the alignment batch offsets keep. */
static uint32_t gemm_align_of(uint64_t x) {
    uint32_t a = 256;
    while (a > 1 && x % a != 0) a >>= 1;
    return a;
}

void mixrt_cuda_gemm_destroy(mixrt_cuda_gemm_t g) {
    if (!g) return;
    if (g->la) (void)cublasLtMatrixLayoutDestroy(g->la);
    if (g->lb) (void)cublasLtMatrixLayoutDestroy(g->lb);
    if (g->ly) (void)cublasLtMatrixLayoutDestroy(g->ly);
    if (g->op) (void)cublasLtMatmulDescDestroy(g->op);
    mixrt_free(g->dev->ctx, g, sizeof *g);
}

static mixrt_status gemm_layout(struct mixrt_cuda_gemm *g, cublasLtMatrixLayout_t *out, cudaDataType_t t,
                                int64_t rows, int64_t cols, int64_t ld, int64_t stride) {
    mixrt_status status = MIXRT_STATUS_OK;
    mixrt_context_t ctx = g->dev->ctx;
    MIXRT_CUDA_LT_TRY(ctx, cublasLtMatrixLayoutCreate(out, t, (uint64_t)rows, (uint64_t)cols, ld > 0 ? ld : rows),
                      "cublasLtMatrixLayoutCreate(%s)", g->name);
    if (g->desc.batch > 1) {
        int32_t bc = (int32_t)g->desc.batch;
        MIXRT_CUDA_LT_TRY(ctx, cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &bc, sizeof bc),
                          "cublasLtMatrixLayoutSetAttribute(BATCH_COUNT, %s)", g->name);
        MIXRT_CUDA_LT_TRY(ctx,
                          cublasLtMatrixLayoutSetAttribute(*out, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                           sizeof stride),
                          "cublasLtMatrixLayoutSetAttribute(STRIDED_BATCH_OFFSET, %s)", g->name);
    }
fail:
    return status;
}

/* A small output (BERT at batch 1: 128 x 768, a few output tiles for 132 SMs) leaves most
 * SMs idle over a long K, and outputs up to 4M values (the attention output product at
 * batch 32, 4096 x 768: 96-192 tiles, 1-1.5 waves) lose a wave's tail; split-K variants of
 * the heuristic's first choice (K cut in parts, partial sums reduced by cuBLASLt) are
 * offered to the tuner, which keeps one only when it is measured faster (whether the
 * attention output product gained was not measured on its own). A variant cuBLASLt's check refuses (epilogue, scheme,
 * workspace) is not offered. */
static void gemm_add_splitk(struct mixrt_cuda_gemm *g) {
    const struct mixrt_cuda_gemm_desc *d = &g->desc;
    if (g->n_algos == 0 || d->batch != 1 || d->m * d->n > ((int64_t)1 << 22) || d->k < 512) return;
    const char *env = getenv("MIXRT_CUDA_SPLITK"); /* off: the heuristic's candidates only (A/B on the GPU) */
    if (env && !strcmp(env, "off")) return;
    int32_t support = 0;
    uint32_t mask = 0;
    size_t wr = 0;
    const cublasLtMatmulAlgo_t *base = &g->algos[0].algo;
    if (cublasLtMatmulAlgoCapGetAttribute(base, CUBLASLT_ALGO_CAP_SPLITK_SUPPORT, &support, sizeof support, &wr) !=
            CUBLAS_STATUS_SUCCESS ||
        !support)
        return;
    if (cublasLtMatmulAlgoCapGetAttribute(base, CUBLASLT_ALGO_CAP_REDUCTION_SCHEME_MASK, &mask, sizeof mask, &wr) !=
        CUBLAS_STATUS_SUCCESS)
        return;
    uint32_t scheme = (mask & CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE)   ? CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE
                      : (mask & CUBLASLT_REDUCTION_SCHEME_INPLACE)     ? CUBLASLT_REDUCTION_SCHEME_INPLACE
                      : (mask & CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE) ? CUBLASLT_REDUCTION_SCHEME_OUTPUT_TYPE
                                                                       : CUBLASLT_REDUCTION_SCHEME_NONE;
    if (scheme == CUBLASLT_REDUCTION_SCHEME_NONE) return;
    static const int32_t splits[] = {2, 3, 4, 6, 8, 12};
    for (size_t i = 0; i < sizeof splits / sizeof splits[0] && g->n_algos < MIXRT_CUDA_GEMM_MAX_ALGOS; i++) {
        if (d->k / splits[i] < 64) break;
        cublasLtMatmulAlgo_t algo = *base;
        cublasLtMatmulHeuristicResult_t r;
        memset(&r, 0, sizeof r);
        if (cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM, &splits[i],
                                                 sizeof splits[i]) != CUBLAS_STATUS_SUCCESS ||
            cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME, &scheme,
                                                 sizeof scheme) != CUBLAS_STATUS_SUCCESS)
            continue;
        if (cublasLtMatmulAlgoCheck(g->dev->lt, g->op, g->la, g->lb, g->ly, g->ly, &algo, &r) != CUBLAS_STATUS_SUCCESS ||
            r.workspaceSize > g->dev->workspace_bytes)
            continue;
        r.algo = algo; /* the check reports on it but leaves r.algo unset */
        r.state = CUBLAS_STATUS_SUCCESS;
        g->algos[g->n_algos++] = r;
    }
}

/* Tile variants of the heuristic's first candidate for large outputs: a product's own tile
 * can leave a wave's tail, and 128 x 192 and the other wide tiles cut it into other counts; the
 * tuner keeps one only when it is measured faster (H200, notes/cuda.md session 18: BERT b32
 * 1.62 vs 1.64 ms; GPT-2 b32 unchanged - its builds kept the heuristic's tiles, already 192 x
 * 128 for the 4096 x 768 attention output product; session 45's profile put that product at
 * 324 TFLOP/s, so the half tiles 128 x 64 and 64 x 128 are offered too - whether one wins was
 * not measured on its own). The variant
 * keeps the candidate's stages and cluster shape when cuBLASLt's check accepts them, else the
 * first stage count (then the automatic cluster shape) it does. MIXRT_CUDA_GEMM_TILES=off:
 * none (A/B). */
static void gemm_add_tiles(struct mixrt_cuda_gemm *g) {
    const struct mixrt_cuda_gemm_desc *d = &g->desc;
    if (g->n_algos == 0 || d->m * d->n * d->batch < ((int64_t)1 << 21)) return;
    const char *env = getenv("MIXRT_CUDA_GEMM_TILES");
    if (env && !strcmp(env, "off")) return;
    const cublasLtMatmulAlgo_t base = g->algos[0].algo;
    uint32_t caps[CUBLASLT_MATMUL_TILE_END], stages[64], own = 0;
    size_t wr = 0, n_caps, n_stages;
    if (cublasLtMatmulAlgoCapGetAttribute(&base, CUBLASLT_ALGO_CAP_TILE_IDS, caps, sizeof caps, &wr) !=
        CUBLAS_STATUS_SUCCESS)
        return;
    n_caps = wr / sizeof caps[0];
    if (cublasLtMatmulAlgoCapGetAttribute(&base, CUBLASLT_ALGO_CAP_STAGES_IDS, stages, sizeof stages, &wr) !=
        CUBLAS_STATUS_SUCCESS)
        wr = 0;
    n_stages = wr / sizeof stages[0];
    (void)cublasLtMatmulAlgoConfigGetAttribute(&base, CUBLASLT_ALGO_CONFIG_TILE_ID, &own, sizeof own, &wr);
    static const uint32_t want[] = {CUBLASLT_MATMUL_TILE_128x192, CUBLASLT_MATMUL_TILE_192x128,
                                    CUBLASLT_MATMUL_TILE_128x256, CUBLASLT_MATMUL_TILE_256x128,
                                    CUBLASLT_MATMUL_TILE_128x160, CUBLASLT_MATMUL_TILE_160x128,
                                    CUBLASLT_MATMUL_TILE_128x128, CUBLASLT_MATMUL_TILE_128x64,
                                    CUBLASLT_MATMUL_TILE_64x128};
    int added = 0;
    for (size_t i = 0; i < sizeof want / sizeof want[0] && added < 8 && g->n_algos < MIXRT_CUDA_GEMM_MAX_ALGOS; i++) {
        bool cap = false;
        for (size_t j = 0; j < n_caps; j++) cap = cap || caps[j] == want[i];
        if (!cap || want[i] == own) continue;
        /* try 0: the candidate's stages; 1..n_stages: each listed stage count; then the same
         * with the automatic cluster shape */
        for (size_t tr = 0; tr <= 2 * n_stages + 1; tr++) {
            cublasLtMatmulAlgo_t algo = base;
            cublasLtMatmulHeuristicResult_t r;
            memset(&r, 0, sizeof r);
            size_t si = tr % (n_stages + 1);
            uint16_t auto_cluster = CUBLASLT_CLUSTER_SHAPE_AUTO;
            if (cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &want[i], sizeof want[i]) !=
                    CUBLAS_STATUS_SUCCESS ||
                (si > 0 && cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_STAGES_ID, &stages[si - 1],
                                                                sizeof stages[0]) != CUBLAS_STATUS_SUCCESS) ||
                (tr > n_stages && cublasLtMatmulAlgoConfigSetAttribute(&algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID,
                                                                       &auto_cluster, sizeof auto_cluster) !=
                                      CUBLAS_STATUS_SUCCESS))
                continue;
            if (cublasLtMatmulAlgoCheck(g->dev->lt, g->op, g->la, g->lb, g->ly, g->ly, &algo, &r) !=
                    CUBLAS_STATUS_SUCCESS ||
                r.workspaceSize > g->dev->workspace_bytes)
                continue;
            r.algo = algo;
            r.state = CUBLAS_STATUS_SUCCESS;
            g->algos[g->n_algos++] = r;
            added++;
            break;
        }
    }
}

mixrt_status mixrt_cuda_gemm_create(mixrt_cuda_device_t dev, const struct mixrt_cuda_gemm_desc *desc,
                                    mixrt_cuda_gemm_t *out) {
    mixrt_status status = MIXRT_STATUS_OK;
    mixrt_context_t ctx = dev->ctx;
    struct mixrt_cuda_gemm *g = NULL;
    cublasLtMatmulPreference_t pref = NULL;
    const struct mixrt_cuda_gemm_desc *d = desc;
    const char *nm = d && d->name ? d->name : "gemm";
    MIXRT_CHECK(ctx, d != NULL && out != NULL, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_cuda_gemm_create: NULL argument");
    MIXRT_CHECK(ctx, mixrt_cuda_elem_of(d->ab_dtype) >= 0, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot plan CUDA GEMM '%s': A/B dtype %s (expected f32, bf16 or f16)", nm,
                mixrt_dtype_name(d->ab_dtype));
    MIXRT_CHECK(ctx, d->y_dtype == d->ab_dtype || d->y_dtype == MIXRT_DTYPE_F32, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot plan CUDA GEMM '%s': Y dtype %s with A/B %s (expected %s or f32)", nm,
                mixrt_dtype_name(d->y_dtype), mixrt_dtype_name(d->ab_dtype), mixrt_dtype_name(d->ab_dtype));
    MIXRT_CHECK(ctx, d->m > 0 && d->n > 0 && d->k > 0 && d->batch >= 1 && d->m <= INT32_MAX && d->n <= INT32_MAX &&
                         d->k <= INT32_MAX && d->batch <= INT32_MAX,
                MIXRT_STATUS_INVALID_ARGUMENT, "cannot plan CUDA GEMM '%s': m=%lld n=%lld k=%lld batch=%lld", nm,
                (long long)d->m, (long long)d->n, (long long)d->k, (long long)d->batch);
    bool pitched = d->lda || d->ldy || d->align_a || d->align_b || d->align_y, al_ok = true;
    /* Pitched batches may interleave (a row-grouped product's groups: Y stride < m n). */
    MIXRT_CHECK(ctx, d->stride_a >= 0 && d->stride_b >= 0 &&
                         d->stride_y >= (d->batch > 1 && !pitched ? d->m * d->n : 0) &&
                         (unsigned)d->epilogue < MIXRT_CUDA_EPILOGUE_COUNT,
                MIXRT_STATUS_INVALID_ARGUMENT, "cannot plan CUDA GEMM '%s': bad strides or epilogue", nm);
    const uint32_t als[3] = {d->align_a, d->align_b, d->align_y};
    for (int i = 0; i < 3; i++) al_ok = al_ok && (als[i] == 0 || (als[i] >= 16 && als[i] <= 256 && !(als[i] & (als[i] - 1))));
    MIXRT_CHECK(ctx, !pitched || (!d->trans_a && (d->lda == 0 || d->lda >= d->k) &&
                                  (d->ldy == 0 || d->ldy >= d->n) && al_ok),
                MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot plan CUDA GEMM '%s': row pitches (lda %lld, ldy %lld) and alignments need A not transposed, "
                "pitches >= the rows, alignments powers of two in 16..256", nm, (long long)d->lda,
                (long long)d->ldy);
    g = mixrt_calloc(ctx, 1, sizeof *g);
    if (!g) return MIXRT_STATUS_OUT_OF_MEMORY;
    g->dev = dev;
    g->desc = *d;
    g->desc.name = NULL;
    if (g->desc.alpha == 0.0f) g->desc.alpha = 1.0f;
    g->chosen_ms = -1.0f;
    snprintf(g->name, sizeof g->name, "%s %s m=%lld n=%lld k=%lld b=%lld", nm, mixrt_dtype_name(d->ab_dtype),
             (long long)d->m, (long long)d->n, (long long)d->k, (long long)d->batch);

    cudaDataType_t tab = gemm_cuda_type(d->ab_dtype), ty = gemm_cuda_type(d->y_dtype);
    cublasComputeType_t comp = CUBLAS_COMPUTE_32F;
    if (d->ab_dtype == MIXRT_DTYPE_F32 && d->allow_tf32) comp = CUBLAS_COMPUTE_32F_FAST_TF32;
    MIXRT_CUDA_LT_TRY(ctx, cublasLtMatmulDescCreate(&g->op, comp, CUDA_R_32F), "cublasLtMatmulDescCreate(%s)",
                      g->name);
    /* Swapped operands: cuBLASLt's A is our B, transposed exactly when ours is. */
    cublasOperation_t opa = d->trans_b ? CUBLAS_OP_T : CUBLAS_OP_N, opb = d->trans_a ? CUBLAS_OP_T : CUBLAS_OP_N;
    MIXRT_CUDA_LT_TRY(ctx, cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa),
                      "cublasLtMatmulDescSetAttribute(TRANSA, %s)", g->name);
    MIXRT_CUDA_LT_TRY(ctx, cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb),
                      "cublasLtMatmulDescSetAttribute(TRANSB, %s)", g->name);
    static const cublasLtEpilogue_t epi[] = {CUBLASLT_EPILOGUE_DEFAULT, CUBLASLT_EPILOGUE_BIAS,
                                             CUBLASLT_EPILOGUE_RELU,    CUBLASLT_EPILOGUE_RELU_BIAS,
                                             CUBLASLT_EPILOGUE_GELU,    CUBLASLT_EPILOGUE_GELU_BIAS};
    _Static_assert(sizeof epi / sizeof epi[0] == MIXRT_CUDA_EPILOGUE_COUNT, "epilogue table");
    cublasLtEpilogue_t e = epi[d->epilogue];
    MIXRT_CUDA_LT_TRY(ctx, cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &e, sizeof e),
                      "cublasLtMatmulDescSetAttribute(EPILOGUE %s, %s)", gemm_epilogue_name(d->epilogue), g->name);
    g->has_bias = d->epilogue == MIXRT_CUDA_EPILOGUE_BIAS || d->epilogue == MIXRT_CUDA_EPILOGUE_BIAS_RELU ||
                  d->epilogue == MIXRT_CUDA_EPILOGUE_BIAS_GELU_TANH;
    if (g->has_bias) {
        cudaDataType_t tb = ty;
        MIXRT_CUDA_LT_TRY(ctx, cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &tb, sizeof tb),
                          "cublasLtMatmulDescSetAttribute(BIAS_DATA_TYPE, %s)", g->name);
    }
    /* cuBLASLt's A: our B viewed column-major; its B: our A; Y^T is n x m with ld n. */
    MIXRT_TRY(gemm_layout(g, &g->la, tab, d->trans_b ? d->k : d->n, d->trans_b ? d->n : d->k, 0, d->stride_b));
    MIXRT_TRY(gemm_layout(g, &g->lb, tab, d->trans_a ? d->m : d->k, d->trans_a ? d->k : d->m, d->lda, d->stride_a));
    MIXRT_TRY(gemm_layout(g, &g->ly, ty, d->n, d->m, d->ldy, d->stride_y));

    MIXRT_CUDA_LT_TRY(ctx, cublasLtMatmulPreferenceCreate(&pref), "cublasLtMatmulPreferenceCreate(%s)", g->name);
    uint64_t ws = dev->workspace_bytes;
    MIXRT_CUDA_LT_TRY(ctx,
                      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                           sizeof ws),
                      "cublasLtMatmulPreferenceSetAttribute(MAX_WORKSPACE_BYTES, %s)", g->name);
    /* Batch offsets keep only the alignment of their strides; base pointers must be
     * 256-byte aligned (checked at run). */
    size_t es = mixrt_dtype_size(d->ab_dtype), ey = mixrt_dtype_size(d->y_dtype);
    uint32_t al_a = d->batch > 1 ? gemm_align_of((uint64_t)d->stride_b * es) : 256;
    uint32_t al_b = d->batch > 1 ? gemm_align_of((uint64_t)d->stride_a * es) : 256;
    uint32_t al_y = d->batch > 1 ? gemm_align_of((uint64_t)d->stride_y * ey) : 256;
    /* Pitched rows, smaller pointer alignments and pitched batches: the smallest of each. */
    g->req_a = d->align_a ? d->align_a : 256, g->req_b = d->align_b ? d->align_b : 256;
    g->req_y = d->align_y ? d->align_y : 256;
    if (pitched) { /* a column's start keeps the pointer's alignment, its pitch's and its batch offset's */
        uint32_t pa = gemm_align_of((uint64_t)d->lda * es), py = gemm_align_of((uint64_t)d->ldy * ey);
        al_b = g->req_a < pa ? g->req_a : pa; /* lda 0: 256 */
        al_a = g->req_b;
        al_y = g->req_y < py ? g->req_y : py;
        if (d->batch > 1) {
            uint32_t sa = gemm_align_of((uint64_t)d->stride_a * es), sb = gemm_align_of((uint64_t)d->stride_b * es);
            uint32_t sy = gemm_align_of((uint64_t)d->stride_y * ey);
            al_b = al_b < sa ? al_b : sa, al_a = al_a < sb ? al_a : sb, al_y = al_y < sy ? al_y : sy;
        }
    }
    MIXRT_CUDA_LT_TRY(ctx,
                      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al_a,
                                                           sizeof al_a),
                      "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_A, %s)", g->name);
    MIXRT_CUDA_LT_TRY(ctx,
                      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al_b,
                                                           sizeof al_b),
                      "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_B, %s)", g->name);
    MIXRT_CUDA_LT_TRY(ctx,
                      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al_y,
                                                           sizeof al_y),
                      "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_C, %s)", g->name);
    MIXRT_CUDA_LT_TRY(ctx,
                      cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al_y,
                                                           sizeof al_y),
                      "cublasLtMatmulPreferenceSetAttribute(MIN_ALIGNMENT_D, %s)", g->name);
    int found = 0, want = 8;
    const char *aenv = getenv("MIXRT_CUDA_GEMM_ALGOS");
    if (aenv && atoi(aenv) >= 1 && atoi(aenv) <= MIXRT_CUDA_GEMM_HEURISTIC_ALGOS) want = atoi(aenv);
    cublasStatus_t hs = cublasLtMatmulAlgoGetHeuristic(dev->lt, g->op, g->la, g->lb, g->ly, g->ly, pref, want,
                                                       g->algos, &found);
    MIXRT_CHECK(ctx, hs == CUBLAS_STATUS_SUCCESS || hs == CUBLAS_STATUS_NOT_SUPPORTED, MIXRT_STATUS_INTERNAL,
                "cuBLASLt call cublasLtMatmulAlgoGetHeuristic(%s) failed: %s (%s)", g->name, cublasLtGetStatusName(hs),
                cublasLtGetStatusString(hs));
    for (int i = 0; i < found; i++)
        if (g->algos[i].state == CUBLAS_STATUS_SUCCESS) g->algos[g->n_algos++] = g->algos[i];
    MIXRT_CHECK(ctx, g->n_algos > 0, MIXRT_STATUS_UNSUPPORTED,
                "cannot plan CUDA GEMM '%s': cuBLASLt has no algorithm for Y %s, trans_a=%d trans_b=%d, epilogue %s",
                g->name, mixrt_dtype_name(d->y_dtype), (int)d->trans_a, (int)d->trans_b,
                gemm_epilogue_name(d->epilogue));
    gemm_add_splitk(g);
    gemm_add_tiles(g);
    (void)cublasLtMatmulPreferenceDestroy(pref);
    *out = g;
    return MIXRT_STATUS_OK;
fail:
    if (pref) (void)cublasLtMatmulPreferenceDestroy(pref);
    if (g) mixrt_cuda_gemm_destroy(g);
    return status;
}

static mixrt_status gemm_enqueue(struct mixrt_cuda_gemm *g, int algo, const void *a, const void *b,
                                 const void *bias, void *y) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_cuda_device *dev = g->dev;
    /* accumulate: D = A B + C in one pass (a residual add without its own kernel); C has
     * Y's layout and may be Y itself. */
    const float beta = g->desc.accumulate ? 1.0f : 0.0f;
    const void *cp = g->desc.accumulate ? g->c : y;
    if (g->has_bias)
        MIXRT_CUDA_LT_TRY(dev->ctx,
                          cublasLtMatmulDescSetAttribute(g->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias),
                          "cublasLtMatmulDescSetAttribute(BIAS_POINTER, %s)", g->name);
    MIXRT_CUDA_LT_TRY(dev->ctx,
                      cublasLtMatmul(dev->lt, g->op, &g->desc.alpha, b, g->la, a, g->lb, &beta, cp, g->ly, y, g->ly,
                                     &g->algos[algo].algo, dev->workspace, dev->workspace_bytes, dev->stream),
                      "cublasLtMatmul(%s, algorithm %d)", g->name, algo);
fail:
    return status;
}

static mixrt_status gemm_check_ptrs(struct mixrt_cuda_gemm *g, const void *a, const void *b, const void *bias,
                                    const void *y) {
    mixrt_status status = MIXRT_STATUS_OK;
    bool c_missing = g->desc.accumulate && !g->c;
    MIXRT_CHECK(g->dev->ctx, a && b && y && (bias || !g->has_bias) && !c_missing, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA GEMM '%s': NULL %s", g->name,
                !a ? "A" : !b ? "B" : !y ? "Y" : c_missing ? "C (accumulate: mixrt_cuda_gemm_set_c)" : "bias");
    MIXRT_CHECK(g->dev->ctx, (uintptr_t)a % g->req_a == 0 && (uintptr_t)b % g->req_b == 0 &&
                                 ((uintptr_t)y | (uintptr_t)g->c) % g->req_y == 0 && (uintptr_t)bias % 16 == 0,
                MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA GEMM '%s': A, B and C/Y must be %u-, %u- and %u-byte aligned and bias 16-byte aligned",
                g->name, g->req_a, g->req_b, g->req_y);
fail:
    return status;
}

mixrt_status mixrt_cuda_gemm_run(mixrt_cuda_gemm_t g, const void *a, const void *b, const void *bias, void *y) {
    mixrt_status status = gemm_check_ptrs(g, a, b, bias, y);
    if (status != MIXRT_STATUS_OK) return status;
    return gemm_enqueue(g, g->chosen, a, b, bias, y);
}

static int gemm_cmp_float(const void *x, const void *y) {
    float a = *(const float *)x, b = *(const float *)y;
    return a < b ? -1 : a > b;
}

mixrt_status mixrt_cuda_gemm_tune(mixrt_cuda_gemm_t g, const void *a, const void *b, const void *bias, void *y,
                                  int reps) {
    enum { ROUNDS = 5 };
    mixrt_status status = gemm_check_ptrs(g, a, b, bias, y);
    if (status != MIXRT_STATUS_OK) return status;
    struct mixrt_cuda_device *dev = g->dev;
    float ms[MIXRT_CUDA_GEMM_MAX_ALGOS][ROUNDS];
    bool ok[MIXRT_CUDA_GEMM_MAX_ALGOS];
    if (reps < 1) reps = 1;
    /* Warm-up; a candidate that cannot run on these buffers is dropped, not an error. */
    int n_ok = 0;
    for (int i = 0; i < g->n_algos; i++) {
        ok[i] = gemm_enqueue(g, i, a, b, bias, y) == MIXRT_STATUS_OK;
        n_ok += ok[i];
    }
    if (n_ok == 0) return mixrt_error(dev->ctx, MIXRT_STATUS_INTERNAL, "cannot tune CUDA GEMM '%s': no candidate ran (last: %s)",
                                      g->name, mixrt_context_last_error(dev->ctx));
    mixrt_context_clear_error(dev->ctx);
    /* Rounds interleave the candidates so clock or load drift biases none. */
    for (int r = 0; r < ROUNDS; r++) {
        for (int i = 0; i < g->n_algos; i++) {
            if (!ok[i]) continue;
            MIXRT_TRY(mixrt_cuda_timer_begin(dev));
            for (int j = 0; j < reps; j++) MIXRT_TRY(gemm_enqueue(g, i, a, b, bias, y));
            MIXRT_TRY(mixrt_cuda_timer_end(dev, &ms[i][r]));
            ms[i][r] /= (float)reps;
        }
    }
    int best = -1;
    float best_ms = 0.0f;
    for (int i = 0; i < g->n_algos; i++) {
        if (!ok[i]) continue;
        qsort(ms[i], ROUNDS, sizeof(float), gemm_cmp_float);
        /* The heuristic's order is a prior: a later candidate must win by > 3%. */
        float med = ms[i][ROUNDS / 2], bar = best < 0 ? med : (best == 0 ? best_ms * 0.97f : best_ms);
        if (best < 0 || med < bar) {
            best = i;
            best_ms = med;
        }
    }
    g->chosen = best;
    g->chosen_ms = best_ms;
    uint32_t tile = 0;
    size_t wr = 0;
    (void)cublasLtMatmulAlgoConfigGetAttribute(&g->algos[best].algo, CUBLASLT_ALGO_CONFIG_TILE_ID, &tile, sizeof tile,
                                               &wr);
    mixrt_log(dev->ctx, MIXRT_LOG_VERBOSE, "CUDA GEMM '%s': %d candidates, chose #%d (tile id %u, %.4f ms)", g->name,
              g->n_algos, best, (unsigned)tile, (double)best_ms);
fail:
    return status;
}

mixrt_status mixrt_cuda_gemm_set_choice(mixrt_cuda_gemm_t g, int index) {
    if (index < 0 || index >= g->n_algos)
        return mixrt_error(g->dev->ctx, MIXRT_STATUS_INVALID_ARGUMENT,
                           "cannot choose CUDA GEMM '%s' algorithm %d: it has %d candidates", g->name, index,
                           g->n_algos);
    g->chosen = index;
    return MIXRT_STATUS_OK;
}

void mixrt_cuda_gemm_get_choice(mixrt_cuda_gemm_t g, int *n_candidates, int *chosen, float *chosen_ms) {
    if (n_candidates) *n_candidates = g->n_algos;
    if (chosen) *chosen = g->chosen;
    if (chosen_ms) *chosen_ms = g->chosen_ms;
}

mixrt_status mixrt_cuda_gemm_set_c(mixrt_cuda_gemm_t g, const void *c) {
    if (!g->desc.accumulate)
        return mixrt_error(g->dev->ctx, MIXRT_STATUS_INVALID_ARGUMENT,
                           "cannot give CUDA GEMM '%s' an addend C: it was planned without accumulate", g->name);
    g->c = c;
    return MIXRT_STATUS_OK;
}
