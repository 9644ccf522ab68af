/* kernels.c - the C entry points of the own CUDA kernels: argument and dtype checks with
 * messages naming the kernel, then one launcher call (eltwise.cu, norm.cu) on the device's
 * stream. Invariant: nothing is launched with arguments these checks did not accept, and a
 * launch error names the kernel and dtype. */
#include "backend/cuda/cuda_impl.h"

const char *mixrt_cuda_binary_name(enum mixrt_cuda_binary_op op) {
    static const char *const names[] = {"add", "sub", "mul", "div"};
    _Static_assert(sizeof names / sizeof names[0] == MIXRT_CUDA_BINARY_COUNT, "binary names");
    return (unsigned)op < MIXRT_CUDA_BINARY_COUNT ? names[op] : "?";
}

const char *mixrt_cuda_unary_name(enum mixrt_cuda_unary_op op) {
    static const char *const names[] = {"relu", "gelu_erf", "gelu_tanh", "sigmoid", "silu", "tanh", "relu6",
                                        "hardswish", "hardsigmoid6", "neg", "sqrt", "reciprocal", "square", "exp"};
    _Static_assert(sizeof names / sizeof names[0] == MIXRT_CUDA_UNARY_COUNT, "unary names");
    return (unsigned)op < MIXRT_CUDA_UNARY_COUNT ? names[op] : "?";
}

static mixrt_status kernel_elem(mixrt_cuda_device_t dev, const char *kernel, mixrt_dtype dt, int *elem) {
    *elem = mixrt_cuda_elem_of(dt);
    if (*elem < 0)
        return mixrt_error(dev->ctx, MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot run CUDA %s: dtype %s (expected f32, bf16 or f16)",
                           kernel, mixrt_dtype_name(dt));
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_cuda_binary(mixrt_cuda_device_t dev, enum mixrt_cuda_binary_op op, mixrt_dtype dt, const void *a,
                               const void *b, size_t b_n, void *y, size_t n) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem;
    const char *nm = mixrt_cuda_binary_name(op);
    MIXRT_CHECK(dev->ctx, (unsigned)op < MIXRT_CUDA_BINARY_COUNT, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA binary op %d: unknown", (int)op);
    MIXRT_TRY(kernel_elem(dev, nm, dt, &elem));
    if (n == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, a && b && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA %s: NULL buffer", nm);
    MIXRT_CHECK(dev->ctx, b_n > 0 && (b_n == n || n % b_n == 0), MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA %s: operand B has %zu elements, expected %zu or a divisor of it (last-axis bias)", nm,
                b_n, n);
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_binary(dev->stream, dev->max_blocks, op, elem, a, b, b_n, y, n),
                   "kernel launch (%s, %s, %zu elements)", nm, mixrt_dtype_name(dt), n);
fail:
    return status;
}

mixrt_status mixrt_cuda_unary(mixrt_cuda_device_t dev, enum mixrt_cuda_unary_op op, mixrt_dtype dt, const void *x,
                              void *y, size_t n) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem;
    const char *nm = mixrt_cuda_unary_name(op);
    MIXRT_CHECK(dev->ctx, (unsigned)op < MIXRT_CUDA_UNARY_COUNT, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA unary op %d: unknown", (int)op);
    MIXRT_TRY(kernel_elem(dev, nm, dt, &elem));
    if (n == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, x && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA %s: NULL buffer", nm);
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_unary(dev->stream, dev->max_blocks, op, elem, x, y, n),
                   "kernel launch (%s, %s, %zu elements)", nm, mixrt_dtype_name(dt), n);
fail:
    return status;
}

mixrt_status mixrt_cuda_cast(mixrt_cuda_device_t dev, mixrt_dtype src_dt, const void *src, mixrt_dtype dst_dt,
                             void *dst, size_t n) {
    mixrt_status status = MIXRT_STATUS_OK;
    int se, de;
    MIXRT_TRY(kernel_elem(dev, "cast (source)", src_dt, &se));
    MIXRT_TRY(kernel_elem(dev, "cast (destination)", dst_dt, &de));
    if (n == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, src && dst, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA cast: NULL buffer");
    if (se == de) return mixrt_cuda_copy_d2d(dev, dst, src, n * mixrt_dtype_size(src_dt));
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_cast(dev->stream, dev->max_blocks, se, src, de, dst, n),
                   "kernel launch (cast %s to %s, %zu elements)", mixrt_dtype_name(src_dt), mixrt_dtype_name(dst_dt), n);
fail:
    return status;
}

mixrt_status mixrt_cuda_cast_rows(mixrt_cuda_device_t dev, mixrt_dtype src_dt, const void *src, size_t src_ld,
                                  mixrt_dtype dst_dt, void *dst, size_t rows, size_t cols) {
    mixrt_status status = MIXRT_STATUS_OK;
    int se, de;
    MIXRT_TRY(kernel_elem(dev, "cast_rows (source)", src_dt, &se));
    MIXRT_TRY(kernel_elem(dev, "cast_rows (destination)", dst_dt, &de));
    if (rows == 0 || cols == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, src && dst, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA cast_rows: NULL buffer");
    MIXRT_CHECK(dev->ctx, src_ld >= cols, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA cast_rows: source rows of %zu elements are shorter than the %zu copied", src_ld, cols);
    MIXRT_CUDA_TRY(dev->ctx,
                   mixrt_cuda_launch_cast_rows(dev->stream, dev->max_blocks, se, src, src_ld, de, dst, rows, cols),
                   "kernel launch (cast_rows %s to %s, %zu x %zu of rows %zu)", mixrt_dtype_name(src_dt),
                   mixrt_dtype_name(dst_dt), rows, cols, src_ld);
fail:
    return status;
}

mixrt_status mixrt_cuda_layer_norm(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, const void *scale,
                                   const void *bias, void *y, size_t rows, size_t cols, float eps) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem;
    MIXRT_TRY(kernel_elem(dev, "layer_norm", dt, &elem));
    if (rows == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, x && scale && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA layer_norm: NULL %s",
                !x ? "input" : !scale ? "scale" : "output");
    MIXRT_CHECK(dev->ctx, cols > 0 && cols <= INT32_MAX && rows <= INT32_MAX, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA layer_norm: %zu rows of %zu columns", rows, cols);
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_layer_norm(dev->stream, elem, x, scale, bias, y, rows, cols, eps),
                   "kernel launch (layer_norm, %s, %zu x %zu)", mixrt_dtype_name(dt), rows, cols);
fail:
    return status;
}

mixrt_status mixrt_cuda_softmax(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y, size_t rows,
                                size_t cols) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem;
    MIXRT_TRY(kernel_elem(dev, "softmax", dt, &elem));
    if (rows == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, x && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA softmax: NULL buffer");
    MIXRT_CHECK(dev->ctx, cols > 0 && cols <= INT32_MAX && rows <= INT32_MAX, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA softmax: %zu rows of %zu columns", rows, cols);
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_softmax(dev->stream, elem, x, y, rows, cols),
                   "kernel launch (softmax, %s, %zu x %zu)", mixrt_dtype_name(dt), rows, cols);
fail:
    return status;
}

mixrt_status mixrt_cuda_reduce_rows(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y, size_t rows,
                                    size_t cols, bool mean) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem;
    MIXRT_TRY(kernel_elem(dev, "reduce_rows", dt, &elem));
    if (rows == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, x && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA reduce_rows: NULL buffer");
    MIXRT_CHECK(dev->ctx, cols > 0 && rows <= INT32_MAX, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA reduce_rows: %zu rows of %zu columns", rows, cols);
    MIXRT_CUDA_TRY(dev->ctx, mixrt_cuda_launch_reduce_rows(dev->stream, elem, x, y, rows, cols, mean),
                   "kernel launch (reduce_rows, %s, %zu x %zu)", mixrt_dtype_name(dt), rows, cols);
fail:
    return status;
}

mixrt_status mixrt_cuda_instance_norm(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, const void *scale,
                                      const void *bias, void *y, size_t rows, size_t cols, size_t channels,
                                      float eps) {
    mixrt_status status = MIXRT_STATUS_OK;
    int elem;
    MIXRT_TRY(kernel_elem(dev, "instance_norm", dt, &elem));
    if (rows == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, x && scale && bias && y, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA instance_norm: NULL buffer");
    MIXRT_CHECK(dev->ctx, cols > 0 && channels > 0 && rows % channels == 0 && rows <= INT32_MAX,
                MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA instance_norm: %zu rows of %zu columns, %zu channels",
                rows, cols, channels);
    MIXRT_CUDA_TRY(dev->ctx,
                   mixrt_cuda_launch_instance_norm(dev->stream, elem, x, scale, bias, y, rows, cols, channels, eps),
                   "kernel launch (instance_norm, %s, %zu x %zu)", mixrt_dtype_name(dt), rows, cols);
fail:
    return status;
}

mixrt_status mixrt_cuda_gather_rows(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *table, size_t table_rows,
                                    size_t cols, mixrt_dtype idx_dt, const void *idx, size_t n_idx, void *y) {
    mixrt_status status = MIXRT_STATUS_OK;
    size_t es = mixrt_dtype_size(dt);
    MIXRT_CHECK(dev->ctx, es == 1 || es == 2 || es == 4 || es == 8, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA gather_rows: table dtype %s (expected one of 1, 2, 4 or 8 bytes)", mixrt_dtype_name(dt));
    MIXRT_CHECK(dev->ctx, idx_dt == MIXRT_DTYPE_I32 || idx_dt == MIXRT_DTYPE_I64, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot run CUDA gather_rows: index dtype %s (expected i32 or i64)", mixrt_dtype_name(idx_dt));
    if (n_idx == 0 || cols == 0) return MIXRT_STATUS_OK;
    MIXRT_CHECK(dev->ctx, table && idx && y, MIXRT_STATUS_INVALID_ARGUMENT, "cannot run CUDA gather_rows: NULL buffer");
    MIXRT_CHECK(dev->ctx, table_rows > 0 && table_rows <= INT64_MAX / 2, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot run CUDA gather_rows: the table has %zu rows", table_rows);
    MIXRT_CUDA_TRY(dev->ctx,
                   mixrt_cuda_launch_gather_rows(dev->stream, dev->max_blocks, es, table, table_rows, cols,
                                                 idx_dt == MIXRT_DTYPE_I64, idx, n_idx, y, dev->flag),
                   "kernel launch (gather_rows, %s, %zu rows of %zu)", mixrt_dtype_name(dt), n_idx, cols);
fail:
    return status;
}
