/* pool.c - C entry points of pool.cu: 2-D pooling and the conv epilogue (bias, residual and
 * activation in one pass). Invariant: as in kernels.c, nothing is launched with arguments
 * these checks did not accept, and a launch error names the kernel and dtype. */
#include "backend/cuda/cuda_impl.h"

mixrt_status mixrt_cuda_pool2d(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y,
                               const struct mixrt_cuda_pool_args *a) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem = mixrt_cuda_elem_of(dt);
    MIXRT_CHECK(dev->ctx, a, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA pool: NULL arguments");
    const char *nm = a->avg ? "average pool" : "max pool";
    MIXRT_CHECK(dev->ctx, elem >= 0, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA %s: dtype %s (expected f32, bf16 or f16)", nm, mixrt_dtype_name(dt));
    MIXRT_CHECK(dev->ctx,
                a->n >= 0 && a->c >= 0 && a->h >= 0 && a->w >= 0 && a->oh >= 0 && a->ow >= 0 && a->kh >= 1 &&
                    a->kw >= 1 && a->sh >= 1 && a->sw >= 1 && a->dh >= 1 && a->dw >= 1 && a->pt >= 0 && a->pl >= 0 &&
                    a->pb >= 0 && a->pr >= 0,
                MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA %s: N %lld C %lld %lldx%lld -> %lldx%lld, window %dx%d stride %dx%d dilation %dx%d "
                "pads %d,%d,%d,%d",
                nm, a->n, a->c, a->h, a->w, a->oh, a->ow, a->kh, a->kw, a->sh, a->sw, a->dh, a->dw, a->pt, a->pl, a->pb,
                a->pr);
    size_t n_out = (size_t)a->n * (size_t)a->c * (size_t)a->oh * (size_t)a->ow;
    if (n_out == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, x && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA %s: NULL buffer", nm);
    /* The cuBLASLt workspace doubles as the global average's scratch: the device's one stream
     * runs nothing else between the two kernels that use it. */
    MIXRT_CUDA_TRY(dev->ctx,
                   mixrt_cuda_launch_pool(dev->stream, dev->max_blocks, elem, x, y, n_out, a, dev->workspace,
                                          dev->workspace_bytes),
                   "kernel launch (%s %s, %zu outputs)", nm, mixrt_dtype_name(dt), n_out);
fail:
    return status;
}

mixrt_status mixrt_cuda_im2col(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *col,
                               const struct mixrt_cuda_im2col_args *a) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem = mixrt_cuda_elem_of(dt);
    MIXRT_CHECK(dev->ctx, elem >= 0, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA im2col: dtype %s (expected f32, bf16 or f16)", mixrt_dtype_name(dt));
    MIXRT_CHECK(dev->ctx,
                a->n >= 0 && a->h >= 1 && a->w >= 1 && a->c >= 1 && a->oh >= 0 && a->ow >= 0 && a->r >= 1 && a->s >= 1 &&
                    a->sh >= 1 && a->sw >= 1 && a->dh >= 1 && a->dw >= 1 && a->ph >= 0 && a->pw >= 0 &&
                    (long long)a->r * a->s * a->c <= a->ldc && a->ldc <= 4096 && a->ldc % 8 == 0 && a->n <= 65535 &&
                    a->oh <= 65535 && a->n * a->h * a->w * a->c < (1LL << 31),
                MIXRT_STATUS_UNSUPPORTED,
                "cannot run CUDA im2col: x [%lld,%lld,%lld,%lld], kernel %dx%d, %d columns (needs r s c <= columns <= "
                "4096, columns a multiple of 8, fewer than 2^31 inputs)", a->n, a->h, a->w, a->c, a->r, a->s, a->ldc);
    MIXRT_CHECK(dev->ctx, (uintptr_t)col % 16 == 0, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA im2col: col is not 16-byte aligned");
    if (a->n == 0 || a->oh == 0 || a->ow == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, x && col, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA im2col: NULL buffer");
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_im2col(dev->stream, dev->max_blocks, elem, x, col, a),
                   "kernel launch (im2col %s, x [%lld,%lld,%lld,%lld], kernel %dx%d)", mixrt_dtype_name(dt), a->n, a->h,
                   a->w, a->c, a->r, a->s);
fail:
    return status;
}

mixrt_status mixrt_cuda_bias_act(mixrt_cuda_device_t dev, mixrt_dtype dt, void *y, const void *bias, size_t channels,
                                 size_t inner, const void *z, int act, size_t n) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem = mixrt_cuda_elem_of(dt);
    MIXRT_CHECK(dev->ctx, elem >= 0, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA conv epilogue: dtype %s (expected f32, bf16 or f16)", mixrt_dtype_name(dt));
    MIXRT_CHECK(dev->ctx, act >= -1 && act < MIXRT_CUDA_UNARY_COUNT, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA conv epilogue: activation %d unknown", act);
    MIXRT_CHECK(dev->ctx, !bias || (channels > 0 && inner > 0), MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA conv epilogue: bias with %zu channels of %zu elements", channels, inner);
    if (n == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA conv epilogue: NULL output");
    MIXRT_CUDA_TRY(dev->ctx,
                   mixrt_cuda_launch_bias_act(dev->stream, dev->max_blocks, elem, y, bias, channels ? channels : 1,
                                              inner ? inner : 1, z, act, n),
                   "kernel launch (conv epilogue %s, %zu elements)", mixrt_dtype_name(dt), n);
fail:
    return status;
}

mixrt_status mixrt_cuda_edge_scatter(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *e, void *y,
                                    const struct mixrt_cuda_edge_args *a) {
    mixrt_status status = MIXRT_STATUS_OK;
    size_t es = mixrt_dtype_size(dt);
    MIXRT_CHECK(dev->ctx, mixrt_cuda_elem_of(dt) >= 0, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA edge_scatter: %s (expected f32, bf16 or f16)", mixrt_dtype_name(dt));
    bool ok = a->rows >= 0 && a->nc >= 0 && a->nc <= a->n && a->groups >= 1 && a->groups <= 16 && a->left >= 0 &&
              a->left + (a->n - a->nc) <= a->ld_e && a->rows * (a->n - a->nc) / 256 < (1LL << 31);
    for (int g = 0; ok && g < a->groups; g++) ok = a->c0[g] >= 0 && a->c0[g] <= a->left && a->c0[g] <= a->n - a->nc;
    MIXRT_CHECK(dev->ctx, ok, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA edge_scatter: rows %lld, n %lld, %lld columns per group, left %lld, ld_e %lld, %d "
                "groups (1..16, each c0 <= left and <= the edge columns)", a->rows, a->n, a->nc, a->left, a->ld_e,
                a->groups);
    if (a->rows == 0 || a->n == a->nc) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, e && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA edge_scatter: NULL buffer");
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_edge_scatter(dev->stream, es, e, y, a),
                   "kernel launch (edge_scatter %s, %lld rows x %lld edge columns)", mixrt_dtype_name(dt), a->rows,
                   a->n - a->nc);
fail:
    return status;
}

mixrt_status mixrt_cuda_resize(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y,
                               const struct mixrt_cuda_resize_args *a) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem = mixrt_cuda_elem_of(dt);
    MIXRT_CHECK(dev->ctx, elem >= 0, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA Resize: dtype %s (expected f32, bf16 or f16)", mixrt_dtype_name(dt));
    MIXRT_CHECK(dev->ctx, a->n >= 0 && a->c >= 0 && a->h >= 1 && a->w >= 1 && a->oh >= 0 && a->ow >= 0 &&
                              a->h <= INT32_MAX && a->w <= INT32_MAX,
                MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA Resize: x [%lld,%lld,%lld,%lld] to %lld x %lld", a->n,
                a->c, a->h, a->w, a->oh, a->ow);
    if (a->n == 0 || a->c == 0 || a->oh == 0 || a->ow == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, x && y && a->taps_h && a->taps_w, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA Resize: NULL buffer");
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_resize(dev->stream, dev->max_blocks, elem, x, y, a),
                   "kernel launch (Resize %s, [%lld,%lld,%lld,%lld] to %lld x %lld)", mixrt_dtype_name(dt), a->n,
                   a->c, a->h, a->w, a->oh, a->ow);
fail:
    return status;
}

mixrt_status mixrt_cuda_dwconv(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, const void *w,
                               const void *bias, void *y, const struct mixrt_cuda_dwconv_args *a) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem = mixrt_cuda_elem_of(dt);
    MIXRT_CHECK(dev->ctx, elem >= 0, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA dwconv: dtype %s (expected f32, bf16 or f16)", mixrt_dtype_name(dt));
    MIXRT_CHECK(dev->ctx,
                a->n >= 0 && a->h >= 1 && a->w >= 1 && a->c >= 0 && a->oh >= 0 && a->ow >= 0 && a->r >= 1 && a->s >= 1 &&
                    a->sh >= 1 && a->sw >= 1 && a->dh >= 1 && a->dw >= 1 && a->ph >= 0 && a->pw >= 0 &&
                    a->act >= -1 && a->act < MIXRT_CUDA_UNARY_COUNT,
                MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA dwconv: x [%lld,%lld,%lld,%lld], kernel %dx%d, act %d",
                a->n, a->h, a->w, a->c, a->r, a->s, a->act);
    if (a->n == 0 || a->oh == 0 || a->ow == 0 || a->c == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, x && w && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA dwconv: NULL buffer");
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_dwconv(dev->stream, dev->max_blocks, elem, x, w, bias, y, a),
                   "kernel launch (dwconv %s, x [%lld,%lld,%lld,%lld], kernel %dx%d)", mixrt_dtype_name(dt), a->n, a->h,
                   a->w, a->c, a->r, a->s);
fail:
    return status;
}
