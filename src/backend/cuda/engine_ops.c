/* engine_ops.c - C entry points of the engine's extra CUDA kernels (strided copy, Attention)
 * and CUDA-graph capture/replay of the device's stream. Invariant: as in kernels.c,
 * nothing is launched with arguments these checks did not accept. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cuda/cuda_impl.h"

struct mixrt_cuda_graph {
    mixrt_cuda_device_t dev;
    cudaGraph_t graph;
    cudaGraphExec_t exec;
};

mixrt_status mixrt_cuda_strided_copy(mixrt_cuda_device_t dev, size_t elem_size, const void *x, void *y, int rank,
                                     const int64_t *out_dims, const int64_t *in_strides, const int64_t *out_strides) {
    mixrt_status status = MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, elem_size == 1 || elem_size == 2 || elem_size == 4 || elem_size == 8,
                MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot run CUDA strided copy: elements of %zu bytes (1, 2, 4 or 8)",
                elem_size);
    MIXRT_CHECK(dev->ctx, rank >= 0 && rank <= MIXRT_CUDA_MAX_PERM_RANK, MIXRT_STATUS_UNSUPPORTED,
                "cannot run CUDA strided copy: rank %d (at most %d)", rank, MIXRT_CUDA_MAX_PERM_RANK);
    long long od[MIXRT_CUDA_MAX_PERM_RANK], is[MIXRT_CUDA_MAX_PERM_RANK], os[MIXRT_CUDA_MAX_PERM_RANK];
    size_t n = 1;
    for (int d = rank - 1; d >= 0; d--) {
        MIXRT_CHECK(dev->ctx, out_dims[d] >= 0 && in_strides[d] >= 0 && (!out_strides || out_strides[d] >= 0),
                    MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA strided copy: negative dim or stride on axis %d", d);
        od[d] = out_dims[d], is[d] = in_strides[d];
        os[d] = out_strides ? out_strides[d] : (long long)n;
        n *= (size_t)out_dims[d];
    }
    if (n == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, x && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA strided copy: NULL buffer");
    /* Fewer axes: drop size-1 axes and merge an axis into the next where both sides are
     * contiguous across the pair (the rank loop of the kernel costs per axis). */
    int r = 0;
    for (int d = 0; d < rank; d++) {
        if (od[d] == 1) continue;
        if (r > 0 && is[r - 1] == is[d] * od[d] && os[r - 1] == os[d] * od[d]) {
            od[r - 1] *= od[d], is[r - 1] = is[d], os[r - 1] = os[d];
            continue;
        }
        od[r] = od[d], is[r] = is[d], os[r] = os[d], r++;
    }
    rank = r;
    /* A contiguous innermost axis moves as 16-byte vectors when its length, every other
     * stride and both addresses allow it (Split of a fused QKV, Concat, Slice of rows). */
    size_t v = 16 / elem_size;
    if (rank > 0 && is[rank - 1] == 1 && os[rank - 1] == 1 && od[rank - 1] % (long long)v == 0 &&
        ((uintptr_t)x | (uintptr_t)y) % 16 == 0) {
        bool ok = true;
        for (int d = 0; d < rank - 1; d++) ok = ok && is[d] % (long long)v == 0 && os[d] % (long long)v == 0;
        if (ok) {
            od[rank - 1] /= (long long)v;
            for (int d = 0; d < rank - 1; d++) is[d] /= (long long)v, os[d] /= (long long)v;
            n /= v;
            elem_size = 16;
        }
    }
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_transpose(dev->stream, dev->max_blocks, elem_size, x, y, rank, od, is, os, n),
                   "kernel launch (strided copy, rank %d, %zu elements)", rank, n);
fail:
    return status;
}

mixrt_status mixrt_cuda_binary_bcast(mixrt_cuda_device_t dev, enum mixrt_cuda_binary_op op, mixrt_dtype dt,
                                     const void *a, const int64_t *a_strides, const void *b, const int64_t *b_strides,
                                     void *y, int rank, const int64_t *dims) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem = mixrt_cuda_elem_of(dt);
    MIXRT_CHECK(dev->ctx, elem >= 0 && (unsigned)op < MIXRT_CUDA_BINARY_COUNT, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA broadcast %s: dtype %s (expected f32, bf16 or f16)", mixrt_cuda_binary_name(op),
                mixrt_dtype_name(dt));
    MIXRT_CHECK(dev->ctx, rank >= 0 && rank <= MIXRT_CUDA_MAX_PERM_RANK, MIXRT_STATUS_UNSUPPORTED,
                "cannot run CUDA broadcast %s: rank %d (at most %d)", mixrt_cuda_binary_name(op), rank,
                MIXRT_CUDA_MAX_PERM_RANK);
    long long d[MIXRT_CUDA_MAX_PERM_RANK], as[MIXRT_CUDA_MAX_PERM_RANK], bs[MIXRT_CUDA_MAX_PERM_RANK];
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        MIXRT_CHECK(dev->ctx, dims[i] >= 0 && a_strides[i] >= 0 && b_strides[i] >= 0, MIXRT_STATUS_INVALID_ARGUMENT,
                    "cannot run CUDA broadcast %s: negative dim or stride on axis %d", mixrt_cuda_binary_name(op), i);
        d[i] = dims[i], as[i] = a_strides[i], bs[i] = b_strides[i];
        n *= (size_t)dims[i];
    }
    if (n == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, a && b && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA broadcast: NULL buffer");
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_bcast_binary(dev->stream, dev->max_blocks, (int)op, elem, a, b, y, rank, d,
                                                            as, bs, n),
                   "kernel launch (broadcast %s, %s, %zu elements)", mixrt_cuda_binary_name(op), mixrt_dtype_name(dt), n);
fail:
    return status;
}

mixrt_status mixrt_cuda_select_bcast(mixrt_cuda_device_t dev, enum mixrt_cuda_select_op op, size_t elem_size,
                                     const void *c, const int64_t *c_strides, const void *a, const int64_t *a_strides,
                                     const void *b, const int64_t *b_strides, void *y, int rank, const int64_t *dims) {
    static const char *const names[] = {"And", "Or", "Xor", "Where"};
    mixrt_status status = MIXRT_STATUS_OK;
    const bool where = op == MIXRT_CUDA_SELECT_WHERE;
    MIXRT_CHECK(dev->ctx, (unsigned)op < MIXRT_CUDA_SELECT_COUNT, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA select: unknown op %d", (int)op);
    MIXRT_CHECK(dev->ctx, where ? (elem_size == 1 || elem_size == 2 || elem_size == 4 || elem_size == 8) : elem_size == 1,
                MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot run CUDA broadcast %s: elements of %zu bytes (%s)", names[op],
                elem_size, where ? "1, 2, 4 or 8" : "bool, 1");
    MIXRT_CHECK(dev->ctx, rank >= 0 && rank <= MIXRT_CUDA_MAX_PERM_RANK, MIXRT_STATUS_UNSUPPORTED,
                "cannot run CUDA broadcast %s: rank %d (at most %d)", names[op], rank, MIXRT_CUDA_MAX_PERM_RANK);
    long long d[MIXRT_CUDA_MAX_PERM_RANK], cs[MIXRT_CUDA_MAX_PERM_RANK], as[MIXRT_CUDA_MAX_PERM_RANK],
        bs[MIXRT_CUDA_MAX_PERM_RANK];
    size_t n = 1;
    for (int i = 0; i < rank; i++) {
        long long ci = where ? c_strides[i] : 0;
        MIXRT_CHECK(dev->ctx, dims[i] >= 0 && ci >= 0 && a_strides[i] >= 0 && b_strides[i] >= 0,
                    MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA broadcast %s: negative dim or stride on axis %d",
                    names[op], i);
        d[i] = dims[i], cs[i] = ci, as[i] = a_strides[i], bs[i] = b_strides[i];
        n *= (size_t)dims[i];
    }
    if (n == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, a && b && y && (c || !where), MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA broadcast %s: NULL buffer", names[op]);
    MIXRT_CUDA_TRY(dev->ctx,
                   mixrt_cuda_launch_select(dev->stream, dev->max_blocks, (int)op, elem_size, c, a, b, y, rank, d, cs,
                                            as, bs, n),
                   "kernel launch (broadcast %s, %zu-byte elements, %zu elements)", names[op], elem_size, n);
fail:
    return status;
}

mixrt_status mixrt_cuda_cast_int(mixrt_cuda_device_t dev, mixrt_dtype src_dt, const void *src, mixrt_dtype dst_dt,
                                 void *dst, size_t n) {
    mixrt_status status = MIXRT_STATUS_OK;
    int de = dst_dt == MIXRT_DTYPE_BOOL ? MIXRT_CUDA_ELEM_BOOL : mixrt_cuda_elem_of(dst_dt);
    int sb = src_dt == MIXRT_DTYPE_I64 ? 8 : src_dt == MIXRT_DTYPE_I32 ? 4
             : (src_dt == MIXRT_DTYPE_U8 || src_dt == MIXRT_DTYPE_BOOL) ? 1 : 0;
    MIXRT_CHECK(dev->ctx, de >= 0 && sb, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA integer cast %s to %s (i64, i32, u8, bool to f32, bf16, f16, bool)",
                mixrt_dtype_name(src_dt), mixrt_dtype_name(dst_dt));
    if (n == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, src && dst, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA integer cast: NULL buffer");
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_int_cast(dev->stream, dev->max_blocks, sb, src, de, dst, n),
                   "kernel launch (cast %s to %s, %zu elements)", mixrt_dtype_name(src_dt), mixrt_dtype_name(dst_dt), n);
fail:
    return status;
}

mixrt_status mixrt_cuda_attention(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *q, const void *k,
                                  const void *v, const void *mask, void *y, const struct mixrt_cuda_attention_args *a) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem = mixrt_cuda_elem_of(dt);
    MIXRT_CHECK(dev->ctx, elem >= 0, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA attention: dtype %s (expected f32, bf16 or f16)", mixrt_dtype_name(dt));
    MIXRT_CHECK(dev->ctx, a->b >= 0 && a->h >= 0 && a->sq >= 0 && a->sk >= 1 && a->d >= 1 && a->dv >= 0 &&
                              a->sk + a->d <= 12000 && a->sq <= INT32_MAX && a->h <= 65535 && a->b <= 65535,
                MIXRT_STATUS_UNSUPPORTED,
                "cannot run CUDA attention: b %lld, h %lld, sq %lld, sk %lld, d %lld (needs sk >= 1, sk + d <= 12000, "
                "b, h <= 65535)", a->b, a->h, a->sq, a->sk, a->d);
    if (a->b == 0 || a->h == 0 || a->sq == 0 || a->dv == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, q && k && v && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA attention: NULL buffer");
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_attention(dev->stream, elem, q, k, v, mask, y, a),
                   "kernel launch (attention, %s, [%lld,%lld,%lld,%lld] x Sk %lld)", mixrt_dtype_name(dt), a->b, a->h,
                   a->sq, a->d, a->sk);
fail:
    return status;
}

/* A tensor's rows load as 16-byte moves when its last axis is contiguous and every row
 * start (base, b/h/row strides) is a multiple of 8 elements of a 16-byte aligned buffer. */
static bool attn_vec(const void *p, const long long *st, long long cols) {
    return st[3] == 1 && cols % 8 == 0 && st[0] % 8 == 0 && st[1] % 8 == 0 && st[2] % 8 == 0 && (uintptr_t)p % 16 == 0;
}

mixrt_status mixrt_cuda_attention_fast(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *q, const void *k,
                                       const void *v, const void *mask, void *y,
                                       const struct mixrt_cuda_attention_args *a, bool *done) {
    mixrt_status status = MIXRT_STATUS_OK;
    *done = false;
    if ((dt != MIXRT_DTYPE_BF16 && dt != MIXRT_DTYPE_F16) || a->d % 16 || a->dv % 16 || a->d > 256 || a->dv > 256 ||
        a->sk < 1 || a->b < 1 || a->h < 1 || a->sq < 1 || a->b > 65535 || a->h > 65535 || a->sq >= (1LL << 30) ||
        a->sk >= (1LL << 30))
        return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, q && k && v && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA attention: NULL buffer");
    int vec = (attn_vec(q, a->q_strides, a->d) ? 1 : 0) | (attn_vec(k, a->k_strides, a->d) ? 2 : 0) |
              (attn_vec(v, a->v_strides, a->dv) ? 4 : 0);
    /* The flash kernel (K/V streamed, online softmax in registers) wherever d == dv fits it:
     * at batch 32 the whole-head kernel below ran 98 us per BERT layer (1 block of 115 KB per
     * SM), and at batch 1 the 1-warp flash blocks beat it too (H200, call 24: BERT b1 0.659 vs
     * 0.714 ms). MIXRT_CUDA_FLASH=off forces the whole-head kernel (=on: the default). */
    const char *fenv = getenv("MIXRT_CUDA_FLASH");
    bool flash_off = fenv && !strcmp(fenv, "off");
    bool flash_fits = mixrt_cuda_attention_flash_fits(a->d, a->dv) != 0;
    long long flash_blocks = a->b * a->h * ((a->sq + 63) / 64), rows8 = (a->sq + 127) / 128 * 128;
    int mkind = mask ? (a->mask_strides[2] != 0 ? 2 : 1) : 0; /* the tc kernel stages the mask */
    if (flash_fits && !flash_off) {
        /* 8 warps (128 query rows) per block share each K/V tile where that still gives two
         * blocks per SM and pads no more query rows than 64-row blocks would (sq 128: each
         * head's K/V read once, not twice); else 4 warps under the same rule; else 1 warp per
         * block, four times the blocks (batch 1). MIXRT_CUDA_FLASH_WARPS=1 / 4 / 8 forces one;
         * "WxR" (R of 1, 2, 4, 8) also has each block take R runs of 16 W query rows in turn
         * (measured, H200: 4x2 - 384 blocks in 0.97 waves at GPT-2 / BERT b32 against 8 warps'
         * 1.45 - ran as fast, 2.141-2.145 against 2.139 ms and 1.617-1.619 against 1.606-1.615:
         * the kernel is bound by its instruction issue, not by the waves). */
        const char *wenv = getenv("MIXRT_CUDA_FLASH_WARPS");
        bool big = flash_blocks >= 2LL * dev->info.sm_count;
        int warps = big && a->b * a->h * (rows8 / 128) >= 2LL * dev->info.sm_count && rows8 == (a->sq + 63) / 64 * 64
                        ? 8
                    : big ? 4
                          : 1;
        int chunks = 1, fw = 0, fr = 1;
        char tail = 0;
        if (wenv && (sscanf(wenv, "%dx%d%c", &fw, &fr, &tail) == 2 || sscanf(wenv, "%d%c", &fw, &tail) == 1) &&
            (fw == 1 || fw == 4 || fw == 8) && (fr == 1 || fr == 2 || fr == 4 || fr == 8))
            warps = fw, chunks = fr;
        /* The PLAIN / CAUSAL_ROW scoring kernels where the shape allows (session 51, H100: BERT
         * b32 1.646 / 1.648 -> 1.628 / 1.635 ms, GPT-2 b32 the same within 0.2 %);
         * MIXRT_CUDA_FLASH_PLAIN=off scores every tile by the general loop. */
        const char *penv = getenv("MIXRT_CUDA_FLASH_PLAIN");
        if (penv && !strcmp(penv, "off")) vec |= MIXRT_CUDA_FLASH_NO_PLAIN;
        const char *senv = getenv("MIXRT_CUDA_FLASH_PASTSKIP");
        if (senv && !strcmp(senv, "off")) vec |= MIXRT_CUDA_FLASH_NO_PASTSKIP;
        /* K/V tile 1 before the first wait (attention_flash.cu; H100, session 56: BERT b32
         * 1.629 / 1.627 -> 1.624 / 1.620 ms, GPT-2 b32 the same within 0.3 %);
         * MIXRT_CUDA_FLASH_EARLYKV=off issues it after Q and tile 0 arrived, as before. */
        const char *eenv = getenv("MIXRT_CUDA_FLASH_EARLYKV");
        if (eenv && !strcmp(eenv, "off")) vec |= MIXRT_CUDA_FLASH_LATE_KV;
        /* Warps past sq and key columns past sk skip their products (attention_flash.cu);
         * MIXRT_CUDA_FLASH_TAILSKIP=off computes them, as before session 65. */
        const char *tenv = getenv("MIXRT_CUDA_FLASH_TAILSKIP");
        if (tenv && !strcmp(tenv, "off")) vec |= MIXRT_CUDA_FLASH_NO_TAILSKIP;
        MIXRT_CUDA_TRY(dev->ctx,
                       mixrt_cuda_launch_attention_flash(dev->stream, mixrt_cuda_elem_of(dt), warps, chunks, vec, q, k,
                                                         v, mask, y, a),
                       "kernel launch (flash attention, %s, [%lld,%lld,%lld,%lld] x Sk %lld, %d warps x %d)",
                       mixrt_dtype_name(dt), a->b, a->h, a->sq, a->d, a->sk, warps, chunks);
        *done = true;
        return MIXRT_STATUS_OK;
    }
    /* 16-row groups per block: as many as keep the grid at least one block per SM (more
     * groups share one K/V load; fewer give small batches more blocks). */
    int groups = 4;
    while (groups > 1 && a->b * a->h * ((a->sq + 16LL * groups - 1) / (16LL * groups)) < dev->info.sm_count) groups /= 2;
    while (groups >= 1 && mixrt_cuda_attention_tc_smem(a->sk, a->d, a->dv, groups, mkind) > dev->info.smem_per_block_optin)
        groups /= 2;
    if (groups < 1) return MIXRT_STATUS_OK;
    MIXRT_CUDA_TRY(dev->ctx,
                   mixrt_cuda_launch_attention_tc(dev->stream, mixrt_cuda_elem_of(dt), groups, vec, q, k, v, mask, y, a),
                   "kernel launch (tensor-core attention, %s, [%lld,%lld,%lld,%lld] x Sk %lld, %d row groups)",
                   mixrt_dtype_name(dt), a->b, a->h, a->sq, a->d, a->sk, groups);
    *done = true;
fail:
    return status;
}

mixrt_status mixrt_cuda_capture_begin(mixrt_cuda_device_t dev) {
    mixrt_status status = MIXRT_STATUS_OK;
    MIXRT_CUDA_TRY(dev->ctx, cudaStreamBeginCapture(dev->stream, cudaStreamCaptureModeThreadLocal),
                   "cudaStreamBeginCapture");
fail:
    return status;
}

mixrt_status mixrt_cuda_capture_end(mixrt_cuda_device_t dev, mixrt_cuda_graph_t *out) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_cuda_graph *g = mixrt_calloc(dev->ctx, 1, sizeof(*g));
    cudaGraph_t graph = NULL;
    cudaError_t err = cudaStreamEndCapture(dev->stream, &graph);
    if (!g) {
        if (graph) cudaGraphDestroy(graph);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    g->dev = dev;
    g->graph = graph;
    MIXRT_CUDA_TRY(dev->ctx, err, "cudaStreamEndCapture");
    MIXRT_CUDA_TRY(dev->ctx, cudaGraphInstantiate(&g->exec, g->graph, 0), "cudaGraphInstantiate");
    *out = g;
    return MIXRT_STATUS_OK;
fail:
    mixrt_cuda_graph_destroy(g);
    return status;
}

mixrt_status mixrt_cuda_graph_launch(mixrt_cuda_device_t dev, mixrt_cuda_graph_t g) {
    mixrt_status status = MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, g && g->exec, MIXRT_STATUS_INVALID_ARGUMENT, "CUDA graph launch: no graph");
    MIXRT_CUDA_TRY(dev->ctx, cudaGraphLaunch(g->exec, dev->stream), "cudaGraphLaunch");
fail:
    return status;
}

void mixrt_cuda_graph_destroy(mixrt_cuda_graph_t g) {
    if (!g) return;
    if (g->exec) cudaGraphExecDestroy(g->exec);
    if (g->graph) cudaGraphDestroy(g->graph);
    mixrt_free(g->dev->ctx, g, sizeof(*g));
}

mixrt_status mixrt_cuda_attention_softmax(mixrt_cuda_device_t dev, mixrt_dtype dt, const float *s, void *p,
                                          const void *mask, const struct mixrt_cuda_attention_args *a) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem = mixrt_cuda_elem_of(dt);
    MIXRT_CHECK(dev->ctx, elem >= 0 && a, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA attention softmax: dtype %s (expected f32, bf16 or f16)", mixrt_dtype_name(dt));
    MIXRT_CHECK(dev->ctx, a->b >= 0 && a->h >= 1 && a->sq >= 1 && a->sk >= 1, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA attention softmax: b %lld, h %lld, sq %lld, sk %lld", a->b, a->h, a->sq, a->sk);
    if (a->b == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, s && p, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA attention softmax: NULL buffer");
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_att_softmax(dev->stream, dev->max_blocks, elem, s, p, mask, a),
                   "kernel launch (attention softmax, %s, [%lld,%lld,%lld] x Sk %lld)", mixrt_dtype_name(dt), a->b,
                   a->h, a->sq, a->sk);
fail:
    return status;
}
