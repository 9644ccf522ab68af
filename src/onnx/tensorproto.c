/* tensorproto.c - ONNX TensorProto <-> struct mixrt_tensor for every dtype mixrt stores.
 * Invariant: a decoded tensor's byte size is exactly numel * elemsize of its dims, and
 * external data never comes from outside realpath(base_dir) or, for the policy's blob
 * location, from outside [blob, blob + blob_size) (borrowed, element-aligned); anything
 * else is refused with a message naming the tensor, before any element is touched. */
#include <errno.h>
#include <math.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "onnx/tensorproto.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "mixrt's TensorProto code copies raw_data as is: little-endian hosts only"
#endif

/* "tensor 'w'" or "unnamed tensor": every message starts with it. */
struct tp_label {
    char text[160];
};

static void tp_label_init(struct tp_label *l, const char *name) {
    if (name && *name)
        snprintf(l->text, sizeof(l->text), "tensor '%.140s'", name);
    else
        snprintf(l->text, sizeof(l->text), "unnamed tensor");
}

/* Which typed field can hold a dtype's values. */
enum tp_field { FIELD_NONE, FIELD_FLOAT, FIELD_INT32, FIELD_INT64, FIELD_DOUBLE, FIELD_UINT64, FIELD_STRING };

static enum tp_field field_for(mixrt_dtype dt) {
    switch (dt) {
    case MIXRT_DTYPE_F32: return FIELD_FLOAT;
    case MIXRT_DTYPE_I32:
    case MIXRT_DTYPE_I16:
    case MIXRT_DTYPE_I8:
    case MIXRT_DTYPE_U16:
    case MIXRT_DTYPE_U8:
    case MIXRT_DTYPE_BOOL:
    case MIXRT_DTYPE_F16:
    case MIXRT_DTYPE_BF16: return FIELD_INT32;
    case MIXRT_DTYPE_I64: return FIELD_INT64;
    case MIXRT_DTYPE_F64: return FIELD_DOUBLE;
    case MIXRT_DTYPE_U32:
    case MIXRT_DTYPE_U64: return FIELD_UINT64;
    case MIXRT_DTYPE_STRING: return FIELD_STRING;
    default: return FIELD_NONE;
    }
}

static const char *field_name(enum tp_field f) {
    static const char *const names[] = {"none", "float_data", "int32_data", "int64_data",
                                        "double_data", "uint64_data", "string_data"};
    return names[f];
}

static size_t field_count(const Onnx__TensorProto *tp, enum tp_field f) {
    switch (f) {
    case FIELD_FLOAT: return tp->n_float_data;
    case FIELD_INT32: return tp->n_int32_data;
    case FIELD_INT64: return tp->n_int64_data;
    case FIELD_DOUBLE: return tp->n_double_data;
    case FIELD_UINT64: return tp->n_uint64_data;
    case FIELD_STRING: return tp->n_string_data;
    default: return 0;
    }
}

/* Copies the typed field's n values into t (already sized). Narrowing stores keep the
 * low bits, like the ONNX runtimes do; bool is normalized to 0/1. */
static void copy_typed(const Onnx__TensorProto *tp, struct mixrt_tensor *t, size_t n) {
    switch (t->dtype) {
    case MIXRT_DTYPE_F32: memcpy(t->data, tp->float_data, n * sizeof(float)); break;
    case MIXRT_DTYPE_F64: memcpy(t->data, tp->double_data, n * sizeof(double)); break;
    case MIXRT_DTYPE_I64: memcpy(t->data, tp->int64_data, n * sizeof(int64_t)); break;
    case MIXRT_DTYPE_I32: memcpy(t->data, tp->int32_data, n * sizeof(int32_t)); break;
    case MIXRT_DTYPE_I16:
        for (size_t i = 0; i < n; i++) ((int16_t *)t->data)[i] = (int16_t)(uint16_t)(uint32_t)tp->int32_data[i];
        break;
    case MIXRT_DTYPE_I8:
        for (size_t i = 0; i < n; i++) ((int8_t *)t->data)[i] = (int8_t)(uint8_t)(uint32_t)tp->int32_data[i];
        break;
    case MIXRT_DTYPE_U8:
        for (size_t i = 0; i < n; i++) ((uint8_t *)t->data)[i] = (uint8_t)(uint32_t)tp->int32_data[i];
        break;
    case MIXRT_DTYPE_BOOL:
        for (size_t i = 0; i < n; i++) ((uint8_t *)t->data)[i] = tp->int32_data[i] != 0;
        break;
    case MIXRT_DTYPE_U16:
    case MIXRT_DTYPE_F16:
    case MIXRT_DTYPE_BF16:
        /* f16/bf16 bit patterns live in the low 16 bits. */
        for (size_t i = 0; i < n; i++) ((uint16_t *)t->data)[i] = (uint16_t)(uint32_t)tp->int32_data[i];
        break;
    case MIXRT_DTYPE_U32:
        for (size_t i = 0; i < n; i++) ((uint32_t *)t->data)[i] = (uint32_t)tp->uint64_data[i];
        break;
    case MIXRT_DTYPE_U64: memcpy(t->data, tp->uint64_data, n * sizeof(uint64_t)); break;
    default: break;
    }
}

/* Strict non-negative decimal; false on anything else or overflow. */
static bool parse_u64(const char *s, uint64_t *out) {
    uint64_t v = 0;
    if (!s || !*s) return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9') return false;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) return false;
        v = v * 10 + d;
    }
    *out = v;
    return true;
}

/* A relative path with no ".." component (empty components and "." are harmless). */
static bool has_dotdot(const char *p) {
    while (*p) {
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 2 && p[0] == '.' && p[1] == '.') return true;
        if (!e) break;
        p = e + 1;
    }
    return false;
}

/* The external_data location, or NULL. */
static const char *external_location(const Onnx__TensorProto *tp) {
    const char *location = NULL;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (e && e->key && !strcmp(e->key, "location")) location = e->value;
    }
    return location;
}

/* Points t at ext->blob + offset without copying: the tensor owns nothing (no
 * OWNS_DATA / OWNS_MAPPING), so releasing it leaves the blob alone. The range must lie
 * inside the blob, match the tensor's byte size exactly and be aligned to the element
 * size, so kernels may read it as typed arrays. */
static mixrt_status borrow_from_blob(mixrt_context_t ctx, const Onnx__TensorProto *tp,
                                     const struct mixrt_external_policy *ext, const struct tp_label *l,
                                     size_t nbytes, const char *desc, struct mixrt_tensor *t) {
    const char *offset_s = NULL, *length_s = NULL;
    uint64_t offset = 0, length = 0;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e || !e->key) continue;
        if (!strcmp(e->key, "offset")) offset_s = e->value;
        else if (!strcmp(e->key, "length")) length_s = e->value;
    }
    if (t->dtype == MIXRT_DTYPE_STRING)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "%s: string tensors cannot use external data", l->text);
    if (offset_s && !parse_u64(offset_s, &offset))
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "%s: external data offset '%s' is not a non-negative "
                           "integer", l->text, offset_s);
    if (length_s && !parse_u64(length_s, &length))
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "%s: external data length '%s' is not a non-negative "
                           "integer", l->text, length_s);
    uint64_t blob_size = ext->blob ? ext->blob_size : 0;
    if (offset > blob_size)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "%s: offset %llu in '%s' is beyond its end (%llu bytes)",
                           l->text, (unsigned long long)offset, ext->blob_location, (unsigned long long)blob_size);
    if (!length_s) length = blob_size - offset;
    if (length > blob_size - offset)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "%s: offset %llu + length %llu in '%s' is beyond its end "
                           "(%llu bytes)", l->text, (unsigned long long)offset, (unsigned long long)length,
                           ext->blob_location, (unsigned long long)blob_size);
    if (length != (uint64_t)nbytes)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "%s: '%s' range has %llu bytes, expected %zu for %s",
                           l->text, ext->blob_location, (unsigned long long)length, nbytes, desc);
    size_t esize = mixrt_dtype_size(t->dtype);
    /* The address, not just the offset: a blob placed at an odd address is as bad. */
    if (nbytes && esize > 1 && ((uintptr_t)(ext->blob + offset)) % esize)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "%s: offset %llu in '%s' is not aligned to the %zu-byte "
                           "elements of %s", l->text, (unsigned long long)offset, ext->blob_location, esize, desc);
    t->data = nbytes ? (void *)(uintptr_t)(ext->blob + offset) : NULL;
    t->nbytes = nbytes;
    t->capacity = 0;
    t->flags = 0;
    return MIXRT_STATUS_OK;
}

static mixrt_status load_external(mixrt_context_t ctx, const Onnx__TensorProto *tp,
                                  const struct mixrt_external_policy *ext, const struct tp_label *l,
                                  size_t nbytes, const char *desc, struct mixrt_tensor *t) {
    mixrt_status status = MIXRT_STATUS_OK;
    const char *location = NULL, *offset_s = NULL, *length_s = NULL;
    char *joined = NULL, *real_base = NULL, *real_file = NULL;
    size_t joined_size = 0;
    int fd = -1;
    uint64_t offset = 0, length = 0;
    bool have_length = false;

    MIXRT_CHECK(ctx, ext && ext->base_dir, MIXRT_STATUS_INVALID_MODEL,
                "%s: external data is not allowed here (no base folder to resolve it against)", l->text);
    MIXRT_CHECK(ctx, t->dtype != MIXRT_DTYPE_STRING, MIXRT_STATUS_INVALID_MODEL,
                "%s: string tensors cannot use external data", l->text);
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const Onnx__StringStringEntryProto *e = tp->external_data[i];
        if (!e || !e->key) continue;
        if (!strcmp(e->key, "location")) location = e->value;
        else if (!strcmp(e->key, "offset")) offset_s = e->value;
        else if (!strcmp(e->key, "length")) length_s = e->value;
    }
    MIXRT_CHECK(ctx, location && *location, MIXRT_STATUS_INVALID_MODEL,
                "%s: external data has no 'location'", l->text);
    MIXRT_CHECK(ctx, location[0] != '/', MIXRT_STATUS_INVALID_MODEL,
                "%s: external data location '%s' is an absolute path; only paths inside the model's "
                "folder are allowed", l->text, location);
    MIXRT_CHECK(ctx, !has_dotdot(location), MIXRT_STATUS_INVALID_MODEL,
                "%s: external data location '%s' contains '..'; only paths inside the model's folder "
                "are allowed", l->text, location);
    MIXRT_CHECK(ctx, !offset_s || parse_u64(offset_s, &offset), MIXRT_STATUS_INVALID_MODEL,
                "%s: external data offset '%s' is not a non-negative integer", l->text, offset_s);
    if (length_s) {
        MIXRT_CHECK(ctx, parse_u64(length_s, &length), MIXRT_STATUS_INVALID_MODEL,
                    "%s: external data length '%s' is not a non-negative integer", l->text, length_s);
        have_length = true;
    }

    real_base = realpath(ext->base_dir, NULL);
    MIXRT_CHECK(ctx, real_base, MIXRT_STATUS_IO_ERROR, "%s: cannot resolve the model folder '%s': %s", l->text,
                ext->base_dir, strerror(errno));
    joined_size = strlen(ext->base_dir) + strlen(location) + 2;
    joined = mixrt_alloc(ctx, joined_size);
    if (!joined) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    snprintf(joined, joined_size, "%s/%s", ext->base_dir, location);
    real_file = realpath(joined, NULL);
    MIXRT_CHECK(ctx, real_file, MIXRT_STATUS_IO_ERROR, "%s: cannot open external data file '%s': %s", l->text,
                joined, strerror(errno));
    {
        /* A symlink may point anywhere: the resolved file must still lie under the folder. */
        size_t bl = strlen(real_base);
        bool inside = !strncmp(real_file, real_base, bl) &&
                      (real_file[bl] == '/' || (bl == 1 && real_base[0] == '/'));
        MIXRT_CHECK(ctx, inside, MIXRT_STATUS_INVALID_MODEL,
                    "%s: external data location '%s' resolves to '%s', outside the model's folder '%s'",
                    l->text, location, real_file, real_base);
    }
    fd = open(real_file, O_RDONLY | O_CLOEXEC);
    MIXRT_CHECK(ctx, fd >= 0, MIXRT_STATUS_IO_ERROR, "%s: cannot open external data file '%s': %s", l->text,
                real_file, strerror(errno));
    struct stat st;
    MIXRT_CHECK(ctx, fstat(fd, &st) == 0 && S_ISREG(st.st_mode), MIXRT_STATUS_IO_ERROR,
                "%s: external data file '%s' is not a regular file", l->text, real_file);
    uint64_t fsize = (uint64_t)st.st_size;
    MIXRT_CHECK(ctx, offset <= fsize, MIXRT_STATUS_INVALID_MODEL,
                "%s: external data offset %llu is beyond the end of '%s' (%llu bytes)", l->text,
                (unsigned long long)offset, location, (unsigned long long)fsize);
    if (!have_length) length = fsize - offset;
    MIXRT_CHECK(ctx, length <= fsize - offset, MIXRT_STATUS_INVALID_MODEL,
                "%s: external data offset %llu + length %llu is beyond the end of '%s' (%llu bytes)", l->text,
                (unsigned long long)offset, (unsigned long long)length, location, (unsigned long long)fsize);
    MIXRT_CHECK(ctx, length == (uint64_t)nbytes, MIXRT_STATUS_INVALID_MODEL,
                "%s: external data has %llu bytes, expected %zu for %s", l->text, (unsigned long long)length,
                nbytes, desc);
    if (nbytes) {
        /* mmap wants a page-aligned offset: map from the page start, point data past it. */
        long page = sysconf(_SC_PAGESIZE);
        uint64_t pg = page > 0 ? (uint64_t)page : 4096;
        uint64_t aligned = offset - offset % pg;
        size_t delta = (size_t)(offset - aligned), map_size;
        MIXRT_CHECK(ctx, mixrt_add_size(nbytes, delta, &map_size) && aligned <= (uint64_t)INT64_MAX,
                    MIXRT_STATUS_INVALID_MODEL, "%s: external data range is too large", l->text);
        /* Private and writable: the file is never changed, and a kernel that writes its
         * input in place gets a copy-on-write page instead of a fault. */
        void *base = mmap(NULL, map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, (off_t)aligned);
        MIXRT_CHECK(ctx, base != MAP_FAILED, MIXRT_STATUS_IO_ERROR, "%s: cannot map external data file '%s': %s",
                    l->text, real_file, strerror(errno));
        t->data = (uint8_t *)base + delta;
        t->map_base = base;
        t->map_size = map_size;
        t->flags = MIXRT_TENSOR_OWNS_MAPPING;
    }
    t->nbytes = nbytes;
    t->capacity = 0;
fail:
    if (fd >= 0) close(fd);
    free(real_file);
    free(real_base);
    if (joined) mixrt_free(ctx, joined, joined_size);
    return status;
}

/* One float8 byte with e exponent bits (bias b), m = 7 - e mantissa bits. fnuz: 0x80 is
 * the only NaN and there is no -0 or Inf; fn (e4m3fn): S.1111.111 is NaN, no Inf;
 * e5m2: IEEE-like. */
static float f8_decode(uint8_t v, int e, int b, bool fnuz, bool fn) {
    int m = 7 - e;
    unsigned sign = v >> 7, ex = (v >> m) & ((1u << e) - 1), man = v & ((1u << m) - 1);
    if (fnuz && v == 0x80) return NAN;
    if (fn && ex == (1u << e) - 1 && man == (1u << m) - 1) return NAN;
    if (!fnuz && !fn && ex == (1u << e) - 1) return man ? NAN : (sign ? -INFINITY : INFINITY);
    float r = ex ? ldexpf(1.0f + (float)man / (float)(1u << m), (int)ex - b)
                 : ldexpf((float)man / (float)(1u << m), 1 - b);
    return sign ? -r : r;
}

/* Decodes raw little-endian data of an uncomputable dtype to f32; false when the byte
 * count does not match numel or the dtype is not one of them. */
static bool decode_to_f32(mixrt_dtype dt, const uint8_t *raw, size_t len, size_t numel, float *out) {
    switch (dt) {
    case MIXRT_DTYPE_F8E4M3FN:
    case MIXRT_DTYPE_F8E4M3FNUZ:
    case MIXRT_DTYPE_F8E5M2:
    case MIXRT_DTYPE_F8E5M2FNUZ:
    case MIXRT_DTYPE_F8E8M0:
        if (len != numel) return false;
        for (size_t i = 0; i < numel; i++) {
            uint8_t v = raw[i];
            if (dt == MIXRT_DTYPE_F8E4M3FN) out[i] = f8_decode(v, 4, 7, false, true);
            else if (dt == MIXRT_DTYPE_F8E4M3FNUZ) out[i] = f8_decode(v, 4, 8, true, false);
            else if (dt == MIXRT_DTYPE_F8E5M2) out[i] = f8_decode(v, 5, 15, false, false);
            else if (dt == MIXRT_DTYPE_F8E5M2FNUZ) out[i] = f8_decode(v, 5, 16, true, false);
            else out[i] = v == 0xff ? NAN : ldexpf(1.0f, (int)v - 127);
        }
        return true;
    case MIXRT_DTYPE_I4:
    case MIXRT_DTYPE_U4:
    case MIXRT_DTYPE_F4E2M1:
        if (len != (numel + 1) / 2) return false;
        for (size_t i = 0; i < numel; i++) {
            unsigned nib = (raw[i / 2] >> (4 * (i % 2))) & 0xf;
            if (dt == MIXRT_DTYPE_U4) out[i] = (float)nib;
            else if (dt == MIXRT_DTYPE_I4) out[i] = (float)(nib >= 8 ? (int)nib - 16 : (int)nib);
            else {
                unsigned ex = (nib >> 1) & 3, man = nib & 1;
                float r = ex ? ldexpf(1.0f + 0.5f * (float)man, (int)ex - 1) : 0.5f * (float)man;
                out[i] = nib & 8 ? -r : r;
            }
        }
        return true;
    case MIXRT_DTYPE_I2:
    case MIXRT_DTYPE_U2:
        if (len != (numel + 3) / 4) return false;
        for (size_t i = 0; i < numel; i++) {
            unsigned v = (raw[i / 4] >> (2 * (i % 4))) & 3;
            out[i] = dt == MIXRT_DTYPE_U2 ? (float)v : (float)(v >= 2 ? (int)v - 4 : (int)v);
        }
        return true;
    case MIXRT_DTYPE_C64:
        if (len / 8 != numel || len % 8) return false;
        for (size_t i = 0; i < numel; i++) memcpy(&out[i], raw + 8 * i, 4); /* the real part */
        return true;
    case MIXRT_DTYPE_C128:
        if (len / 16 != numel || len % 16) return false;
        for (size_t i = 0; i < numel; i++) {
            double d;
            memcpy(&d, raw + 16 * i, 8);
            out[i] = (float)d;
        }
        return true;
    default: return false;
    }
}

mixrt_status mixrt_onnx_tensor_from_proto(mixrt_context_t ctx, const Onnx__TensorProto *tp,
                                          const struct mixrt_external_policy *ext, struct mixrt_tensor *out) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct mixrt_tensor t;
    struct tp_label l;
    char desc[320];
    size_t numel = 1, esize, nbytes;
    memset(&t, 0, sizeof(t));
    memset(out, 0, sizeof(*out));
    if (!tp) return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "no TensorProto given");
    tp_label_init(&l, tp->name);

    int32_t raw_dt = tp->has_data_type ? tp->data_type : 0;
    mixrt_dtype dt = (mixrt_dtype)raw_dt;
    if (raw_dt > 0 && raw_dt < MIXRT_DTYPE_COUNT && !mixrt_dtype_is_supported(dt) && ext && ext->unsupported_to_f32 &&
        tp->has_raw_data && tp->n_dims <= MIXRT_MAX_RANK) {
        /* --unsupported-dtype fallback: decode to f32 (announced by the caller). */
        size_t n = 1;
        bool dims_ok = true;
        for (size_t i = 0; i < tp->n_dims; i++) dims_ok &= tp->dims[i] >= 0;
        MIXRT_CHECK(ctx, dims_ok && mixrt_dims_numel((int)tp->n_dims, tp->dims, &n), MIXRT_STATUS_INVALID_MODEL,
                    "%s: bad dims", l.text);
        MIXRT_TRY(mixrt_tensor_init(ctx, &t, MIXRT_DTYPE_F32, (int)tp->n_dims, tp->dims));
        MIXRT_CHECK(ctx, decode_to_f32(dt, tp->raw_data.data, tp->raw_data.len, n, t.data), MIXRT_STATUS_INVALID_MODEL,
                    "%s: %zu bytes of raw_data do not hold %zu %s values", l.text, tp->raw_data.len, n,
                    mixrt_dtype_name(dt));
        if (ext->converted) ext->converted[dt]++;
        *out = t;
        return MIXRT_STATUS_OK;
    }
    MIXRT_CHECK(ctx, raw_dt > 0 && raw_dt < MIXRT_DTYPE_COUNT && mixrt_dtype_is_supported(dt),
                MIXRT_STATUS_UNSUPPORTED_DTYPE, "%s: dtype %s is not supported%s", l.text,
                raw_dt == 0 ? "undefined (data_type not set)" : mixrt_dtype_name(dt),
                raw_dt > 0 && raw_dt < MIXRT_DTYPE_COUNT && ext && !ext->blob
                    ? " (mixrt cannot compute it; --unsupported-dtype fallback converts it to f32)"
                    : "");
    MIXRT_CHECK(ctx, !tp->segment, MIXRT_STATUS_UNSUPPORTED, "%s: segmented tensors are not supported", l.text);
    MIXRT_CHECK(ctx, tp->n_dims <= MIXRT_MAX_RANK, MIXRT_STATUS_UNSUPPORTED,
                "%s: rank %zu exceeds the maximum %d", l.text, tp->n_dims, MIXRT_MAX_RANK);
    int rank = (int)tp->n_dims;
    for (int i = 0; i < rank; i++)
        MIXRT_CHECK(ctx, tp->dims[i] >= 0, MIXRT_STATUS_INVALID_MODEL, "%s: dim %d is negative (%lld)", l.text, i,
                    (long long)tp->dims[i]);
    esize = mixrt_dtype_size(dt);
    MIXRT_CHECK(ctx, mixrt_dims_numel(rank, tp->dims, &numel) && mixrt_mul_size(numel, esize, &nbytes),
                MIXRT_STATUS_INVALID_MODEL, "%s: dims %s overflow the addressable size", l.text,
                mixrt_dims_str(desc, sizeof(desc), rank, tp->dims));
    {
        char d[256];
        snprintf(desc, sizeof(desc), "%s %s", mixrt_dtype_name(dt), mixrt_dims_str(d, sizeof(d), rank, tp->dims));
    }

    enum tp_field want = field_for(dt);
    bool external = tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    bool raw = tp->has_raw_data;
    /* One source only: two would leave it ambiguous which one the producer meant. */
    static const enum tp_field all_fields[] = {FIELD_FLOAT, FIELD_INT32, FIELD_INT64,
                                               FIELD_DOUBLE, FIELD_UINT64, FIELD_STRING};
    for (size_t i = 0; i < sizeof(all_fields) / sizeof(all_fields[0]); i++) {
        enum tp_field f = all_fields[i];
        size_t c = field_count(tp, f);
        if (!c) continue;
        MIXRT_CHECK(ctx, f == want, MIXRT_STATUS_INVALID_MODEL, "%s: %s cannot hold %s values", l.text,
                    field_name(f), mixrt_dtype_name(dt));
        MIXRT_CHECK(ctx, !raw && !external, MIXRT_STATUS_INVALID_MODEL, "%s: has both %s and %s", l.text,
                    field_name(f), external ? "external data" : "raw_data");
    }
    MIXRT_CHECK(ctx, !(raw && external), MIXRT_STATUS_INVALID_MODEL, "%s: has both raw_data and external data",
                l.text);

    t.dtype = dt;
    t.rank = rank;
    for (int i = 0; i < rank; i++) t.dims[i] = tp->dims[i];

    if (external) {
        const char *loc = external_location(tp);
        if (ext && ext->blob_location && loc && !strcmp(loc, ext->blob_location))
            MIXRT_TRY(borrow_from_blob(ctx, tp, ext, &l, nbytes, desc, &t));
        else
            MIXRT_TRY(load_external(ctx, tp, ext, &l, nbytes, desc, &t));
    } else if (raw) {
        MIXRT_CHECK(ctx, dt != MIXRT_DTYPE_STRING, MIXRT_STATUS_INVALID_MODEL,
                    "%s: string tensors must use string_data, not raw_data", l.text);
        MIXRT_CHECK(ctx, tp->raw_data.len == nbytes, MIXRT_STATUS_INVALID_MODEL,
                    "%s: raw_data has %zu bytes, expected %zu for %s", l.text, tp->raw_data.len, nbytes, desc);
        MIXRT_TRY(mixrt_tensor_init(ctx, &t, dt, rank, tp->dims));
        if (nbytes) memcpy(t.data, tp->raw_data.data, nbytes);
        if (dt == MIXRT_DTYPE_BOOL)
            for (size_t i = 0; i < numel; i++) ((uint8_t *)t.data)[i] = ((uint8_t *)t.data)[i] != 0;
    } else {
        size_t have = field_count(tp, want);
        MIXRT_CHECK(ctx, have == numel, MIXRT_STATUS_INVALID_MODEL, "%s: %s has %zu values, expected %zu for %s",
                    l.text, field_name(want), have, numel, desc);
        MIXRT_TRY(mixrt_tensor_init(ctx, &t, dt, rank, tp->dims));
        if (dt == MIXRT_DTYPE_STRING) {
            struct mixrt_string *s = t.data;
            for (size_t i = 0; i < numel; i++) {
                const ProtobufCBinaryData *b = &tp->string_data[i];
                s[i].ptr = mixrt_alloc(ctx, b->len + 1);
                if (!s[i].ptr) {
                    status = MIXRT_STATUS_OUT_OF_MEMORY;
                    goto fail;
                }
                if (b->len) memcpy(s[i].ptr, b->data, b->len);
                s[i].ptr[b->len] = 0;
                s[i].len = b->len;
            }
        } else if (numel) {
            copy_typed(tp, &t, numel);
        }
    }
    *out = t;
    return MIXRT_STATUS_OK;
fail:
    mixrt_tensor_release(ctx, &t);
    return status;
}

/* The bytes protobuf-c will copy for an empty raw_data: never a NULL source. */
static uint8_t empty_bytes[1];

mixrt_status mixrt_onnx_tensor_to_proto(mixrt_context_t ctx, const struct mixrt_tensor *t, const char *name,
                                        Onnx__TensorProto *tp) {
    mixrt_status status = MIXRT_STATUS_OK;
    onnx__tensor_proto__init(tp);
    if (!t) return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "no tensor given");
    MIXRT_CHECK(ctx, mixrt_dtype_is_supported(t->dtype), MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot serialize tensor '%s': dtype %s is not supported", name ? name : "",
                mixrt_dtype_name(t->dtype));
    MIXRT_CHECK(ctx, t->rank >= 0 && t->rank <= MIXRT_MAX_RANK, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot serialize tensor '%s': rank %d is outside [0, %d]", name ? name : "", t->rank,
                MIXRT_MAX_RANK);
    size_t numel;
    MIXRT_CHECK(ctx, mixrt_dims_numel(t->rank, t->dims, &numel), MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot serialize tensor '%s': bad dims", name ? name : "");
    tp->has_data_type = 1;
    tp->data_type = (int32_t)t->dtype;
    tp->name = (char *)name; /* borrowed; release does not free it */
    if (t->rank > 0) {
        tp->dims = mixrt_alloc(ctx, (size_t)t->rank * sizeof(int64_t));
        if (!tp->dims) {
            status = MIXRT_STATUS_OUT_OF_MEMORY;
            goto fail;
        }
        memcpy(tp->dims, t->dims, (size_t)t->rank * sizeof(int64_t));
        tp->n_dims = (size_t)t->rank;
    }
    if (t->dtype == MIXRT_DTYPE_STRING) {
        if (numel) {
            const struct mixrt_string *s = t->data;
            tp->string_data = mixrt_calloc(ctx, numel, sizeof(ProtobufCBinaryData));
            if (!tp->string_data) {
                status = MIXRT_STATUS_OUT_OF_MEMORY;
                goto fail;
            }
            for (size_t i = 0; i < numel; i++) {
                tp->string_data[i].len = s[i].len;
                tp->string_data[i].data = s[i].ptr ? (uint8_t *)s[i].ptr : empty_bytes;
            }
            tp->n_string_data = numel;
        }
    } else {
        size_t nbytes = numel * mixrt_dtype_size(t->dtype);
        tp->has_raw_data = 1;
        tp->raw_data.len = nbytes;
        tp->raw_data.data = nbytes && t->data ? (uint8_t *)t->data : empty_bytes;
        MIXRT_CHECK(ctx, !nbytes || t->data, MIXRT_STATUS_INVALID_ARGUMENT,
                    "cannot serialize tensor '%s': it has no data", name ? name : "");
    }
    return MIXRT_STATUS_OK;
fail:
    mixrt_onnx_tensor_proto_release(ctx, tp);
    return status;
}

void mixrt_onnx_tensor_proto_release(mixrt_context_t ctx, Onnx__TensorProto *tp) {
    if (!tp) return;
    if (tp->dims) mixrt_free(ctx, tp->dims, tp->n_dims * sizeof(int64_t));
    if (tp->string_data) mixrt_free(ctx, tp->string_data, tp->n_string_data * sizeof(ProtobufCBinaryData));
    onnx__tensor_proto__init(tp);
}
