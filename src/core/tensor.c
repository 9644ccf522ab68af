/* tensor.c - owned dense tensors: creation with checked sizes, release (including
 * STRING elements), copies and converted views for the reference kernels. */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "core/core.h"

bool mixrt_dims_numel(int rank, const int64_t *dims, size_t *out) {
    size_t n = 1;
    if (rank < 0 || rank > MIXRT_MAX_RANK) return false;
    for (int i = 0; i < rank; i++) {
        if (dims[i] < 0) return false;
        if ((uint64_t)dims[i] > SIZE_MAX) return false;
        if (!mixrt_mul_size(n, (size_t)dims[i], &n)) return false;
    }
    *out = n;
    return true;
}

size_t mixrt_tensor_numel(const struct mixrt_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->rank; i++) n *= (size_t)t->dims[i];
    return n;
}

char *mixrt_dims_str(char *buf, size_t size, int rank, const int64_t *dims) {
    size_t off = 0;
    if (size == 0) return buf;
    buf[0] = 0;
    off += (size_t)snprintf(buf + off, size - off, "[");
    for (int i = 0; i < rank && off < size; i++)
        off += (size_t)snprintf(buf + off, size - off, i ? ",%lld" : "%lld", (long long)dims[i]);
    if (off < size) snprintf(buf + off, size - off, "]");
    return buf;
}

char *mixrt_tensor_desc(char *buf, size_t size, const struct mixrt_tensor *t) {
    char d[256];
    snprintf(buf, size, "%s %s", mixrt_dtype_name(t->dtype), mixrt_dims_str(d, sizeof(d), t->rank, t->dims));
    return buf;
}

static mixrt_status tensor_init(mixrt_context_t ctx, struct mixrt_tensor *t, mixrt_dtype dtype, int rank,
                                const int64_t *dims, bool zero) {
    memset(t, 0, sizeof(*t));
    size_t n, nbytes, esize = mixrt_dtype_size(dtype);
    char d[256];
    if (esize == 0)
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot create a tensor of dtype %s",
                           mixrt_dtype_name(dtype));
    if (rank < 0 || rank > MIXRT_MAX_RANK)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "tensor rank %d is outside [0, %d]", rank,
                           MIXRT_MAX_RANK);
    if (!mixrt_dims_numel(rank, dims, &n) || !mixrt_mul_size(n, esize, &nbytes))
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT,
                           "tensor dims %s are negative or their byte size overflows",
                           mixrt_dims_str(d, sizeof(d), rank, dims));
    void *data = NULL;
    if (nbytes) {
        data = zero || dtype == MIXRT_DTYPE_STRING ? mixrt_calloc(ctx, 1, nbytes) : mixrt_alloc(ctx, nbytes);
        if (!data) return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    t->dtype = dtype;
    t->rank = rank;
    for (int i = 0; i < rank; i++) t->dims[i] = dims[i];
    t->data = data;
    t->nbytes = nbytes;
    t->capacity = nbytes;
    t->flags = data ? MIXRT_TENSOR_OWNS_DATA : 0;
    if (dtype == MIXRT_DTYPE_STRING) t->flags |= MIXRT_TENSOR_OWNS_STRINGS;
    return MIXRT_STATUS_OK;
}

mixrt_status mixrt_tensor_init(mixrt_context_t ctx, struct mixrt_tensor *t, mixrt_dtype dtype, int rank,
                               const int64_t *dims) {
    return tensor_init(ctx, t, dtype, rank, dims, true);
}

mixrt_status mixrt_tensor_init_uninit(mixrt_context_t ctx, struct mixrt_tensor *t, mixrt_dtype dtype, int rank,
                                      const int64_t *dims) {
    return tensor_init(ctx, t, dtype, rank, dims, false);
}

void mixrt_tensor_release(mixrt_context_t ctx, struct mixrt_tensor *t) {
    if (!t) return;
    if (t->dtype == MIXRT_DTYPE_STRING && (t->flags & MIXRT_TENSOR_OWNS_STRINGS) && t->data) {
        struct mixrt_string *s = t->data;
        size_t n = t->nbytes / sizeof(*s);
        for (size_t i = 0; i < n; i++)
            if (s[i].ptr) mixrt_free(ctx, s[i].ptr, s[i].len + 1);
    }
    if (t->flags & MIXRT_TENSOR_OWNS_DATA) mixrt_free(ctx, t->data, t->capacity);
    if ((t->flags & MIXRT_TENSOR_OWNS_MAPPING) && t->map_base) munmap(t->map_base, t->map_size);
    memset(t, 0, sizeof(*t));
}

mixrt_status mixrt_tensor_create(mixrt_context_t ctx, mixrt_dtype dtype, int rank, const int64_t *dims,
                                 struct mixrt_tensor **out) {
    struct mixrt_tensor *t = mixrt_alloc(ctx, sizeof(*t));
    if (!t) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_status status = mixrt_tensor_init(ctx, t, dtype, rank, dims);
    if (status != MIXRT_STATUS_OK) {
        mixrt_free(ctx, t, sizeof(*t));
        return status;
    }
    *out = t;
    return MIXRT_STATUS_OK;
}

void mixrt_tensor_destroy(mixrt_context_t ctx, struct mixrt_tensor *t) {
    if (!t) return;
    mixrt_tensor_release(ctx, t);
    mixrt_free(ctx, t, sizeof(*t));
}

mixrt_status mixrt_tensor_copy(mixrt_context_t ctx, struct mixrt_tensor *dst, const struct mixrt_tensor *src) {
    mixrt_status status = mixrt_tensor_init(ctx, dst, src->dtype, src->rank, src->dims);
    if (status != MIXRT_STATUS_OK) return status;
    if (src->dtype == MIXRT_DTYPE_STRING) {
        const struct mixrt_string *s = src->data;
        struct mixrt_string *d = dst->data;
        size_t n = mixrt_tensor_numel(src);
        for (size_t i = 0; i < n; i++) {
            d[i].ptr = mixrt_alloc(ctx, s[i].len + 1);
            if (!d[i].ptr) {
                mixrt_tensor_release(ctx, dst);
                return MIXRT_STATUS_OUT_OF_MEMORY;
            }
            if (s[i].len) memcpy(d[i].ptr, s[i].ptr, s[i].len);
            d[i].ptr[s[i].len] = 0;
            d[i].len = s[i].len;
        }
    } else if (src->nbytes) {
        memcpy(dst->data, src->data, src->nbytes);
    }
    return MIXRT_STATUS_OK;
}

static mixrt_status to_type(mixrt_context_t ctx, const struct mixrt_tensor *t, mixrt_dtype dt, size_t esz,
                            void **out) {
    size_t n = mixrt_tensor_numel(t);
    void *p = mixrt_calloc(ctx, n ? n : 1, esz);
    if (!p) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (n && mixrt_convert(p, dt, t->data, t->dtype, n) != MIXRT_STATUS_OK) {
        mixrt_free(ctx, p, (n ? n : 1) * esz);
        return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot convert %s to %s",
                           mixrt_dtype_name(t->dtype), mixrt_dtype_name(dt));
    }
    *out = p;
    return MIXRT_STATUS_OK;
}

/* Buffers are allocated for max(n,1) elements; free with mixrt_free(ctx, p, max(n,1)*esz).
 * mixrt_free ignores the size for correctness, so callers passing n*esz are fine too. */
mixrt_status mixrt_tensor_to_f64(mixrt_context_t ctx, const struct mixrt_tensor *t, double **out) {
    return to_type(ctx, t, MIXRT_DTYPE_F64, sizeof(double), (void **)out);
}
mixrt_status mixrt_tensor_to_f32(mixrt_context_t ctx, const struct mixrt_tensor *t, float **out) {
    return to_type(ctx, t, MIXRT_DTYPE_F32, sizeof(float), (void **)out);
}
mixrt_status mixrt_tensor_to_i64(mixrt_context_t ctx, const struct mixrt_tensor *t, int64_t **out) {
    return to_type(ctx, t, MIXRT_DTYPE_I64, sizeof(int64_t), (void **)out);
}
