/* dtype.c - the dtype traits table (name, size, class) indexed by mixrt_dtype, and
 * generic one-element load/store used by reference code. Bulk conversions live in
 * convert.c. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"

struct dtype_traits {
    const char *name;
    const char *onnx_name; /* numpy / onnx spelling accepted by from_name */
    size_t size;
    unsigned char is_float, is_int, supported;
};

static const struct dtype_traits traits[] = {
    [MIXRT_DTYPE_UNDEFINED] = {"undefined", "undefined", 0, 0, 0, 0},
    [MIXRT_DTYPE_F32] = {"f32", "float32", 4, 1, 0, 1},
    [MIXRT_DTYPE_U8] = {"u8", "uint8", 1, 0, 1, 1},
    [MIXRT_DTYPE_I8] = {"i8", "int8", 1, 0, 1, 1},
    [MIXRT_DTYPE_U16] = {"u16", "uint16", 2, 0, 1, 1},
    [MIXRT_DTYPE_I16] = {"i16", "int16", 2, 0, 1, 1},
    [MIXRT_DTYPE_I32] = {"i32", "int32", 4, 0, 1, 1},
    [MIXRT_DTYPE_I64] = {"i64", "int64", 8, 0, 1, 1},
    [MIXRT_DTYPE_STRING] = {"string", "string", sizeof(struct mixrt_string), 0, 0, 1},
    [MIXRT_DTYPE_BOOL] = {"bool", "bool", 1, 0, 0, 1},
    [MIXRT_DTYPE_F16] = {"f16", "float16", 2, 1, 0, 1},
    [MIXRT_DTYPE_F64] = {"f64", "float64", 8, 1, 0, 1},
    [MIXRT_DTYPE_U32] = {"u32", "uint32", 4, 0, 1, 1},
    [MIXRT_DTYPE_U64] = {"u64", "uint64", 8, 0, 1, 1},
    [MIXRT_DTYPE_C64] = {"c64", "complex64", 8, 0, 0, 0},
    [MIXRT_DTYPE_C128] = {"c128", "complex128", 16, 0, 0, 0},
    [MIXRT_DTYPE_BF16] = {"bf16", "bfloat16", 2, 1, 0, 1},
    [MIXRT_DTYPE_F8E4M3FN] = {"f8e4m3fn", "float8e4m3fn", 1, 0, 0, 0},
    [MIXRT_DTYPE_F8E4M3FNUZ] = {"f8e4m3fnuz", "float8e4m3fnuz", 1, 0, 0, 0},
    [MIXRT_DTYPE_F8E5M2] = {"f8e5m2", "float8e5m2", 1, 0, 0, 0},
    [MIXRT_DTYPE_F8E5M2FNUZ] = {"f8e5m2fnuz", "float8e5m2fnuz", 1, 0, 0, 0},
    [MIXRT_DTYPE_U4] = {"u4", "uint4", 0, 0, 0, 0},
    [MIXRT_DTYPE_I4] = {"i4", "int4", 0, 0, 0, 0},
    [MIXRT_DTYPE_F4E2M1] = {"f4e2m1", "float4e2m1", 0, 0, 0, 0},
    [MIXRT_DTYPE_F8E8M0] = {"f8e8m0", "float8e8m0", 1, 0, 0, 0},
    [MIXRT_DTYPE_U2] = {"u2", "uint2", 0, 0, 0, 0},
    [MIXRT_DTYPE_I2] = {"i2", "int2", 0, 0, 0, 0},
};
_Static_assert(sizeof(traits) / sizeof(traits[0]) == MIXRT_DTYPE_COUNT, "traits must cover mixrt_dtype");

const char *mixrt_dtype_name(mixrt_dtype dt) {
    static _Thread_local char buf[24];
    if ((unsigned)dt >= MIXRT_DTYPE_COUNT) {
        snprintf(buf, sizeof(buf), "dtype(%d)", (int)dt);
        return buf;
    }
    return traits[dt].name;
}

size_t mixrt_dtype_size(mixrt_dtype dt) {
    if ((unsigned)dt >= MIXRT_DTYPE_COUNT || !traits[dt].supported) return 0;
    return traits[dt].size;
}

int mixrt_dtype_is_float(mixrt_dtype dt) { return (unsigned)dt < MIXRT_DTYPE_COUNT && traits[dt].is_float; }
int mixrt_dtype_is_int(mixrt_dtype dt) { return (unsigned)dt < MIXRT_DTYPE_COUNT && traits[dt].is_int; }
int mixrt_dtype_is_supported(mixrt_dtype dt) { return (unsigned)dt < MIXRT_DTYPE_COUNT && traits[dt].supported; }

int mixrt_dtype_from_name(const char *name, mixrt_dtype *out) {
    static const struct { const char *alias; mixrt_dtype dt; } aliases[] = {
        {"float", MIXRT_DTYPE_F32}, {"fp32", MIXRT_DTYPE_F32}, {"half", MIXRT_DTYPE_F16},
        {"fp16", MIXRT_DTYPE_F16}, {"double", MIXRT_DTYPE_F64}, {"fp64", MIXRT_DTYPE_F64},
    };
    if (!name) return -1;
    for (int i = 1; i < MIXRT_DTYPE_COUNT; i++)
        if (!strcmp(name, traits[i].name) || !strcmp(name, traits[i].onnx_name)) {
            *out = (mixrt_dtype)i;
            return 0;
        }
    for (size_t i = 0; i < sizeof(aliases) / sizeof(aliases[0]); i++)
        if (!strcmp(name, aliases[i].alias)) {
            *out = aliases[i].dt;
            return 0;
        }
    return -1;
}

double mixrt_load_f64(const void *p, mixrt_dtype dt, size_t i) {
    switch (dt) {
    case MIXRT_DTYPE_F32: return ((const float *)p)[i];
    case MIXRT_DTYPE_F64: return ((const double *)p)[i];
    case MIXRT_DTYPE_F16: return mixrt_f16_to_float(((const mixrt_f16 *)p)[i]);
    case MIXRT_DTYPE_BF16: return mixrt_bf16_to_float(((const mixrt_bf16 *)p)[i]);
    case MIXRT_DTYPE_U64: return (double)((const uint64_t *)p)[i];
    default: return (double)mixrt_load_i64(p, dt, i);
    }
}

void mixrt_store_f64(void *p, mixrt_dtype dt, size_t i, double v) {
    /* One element through mixrt_convert: float to integer truncates and saturates (NaN
     * becomes 0), to 16-bit floats it rounds once, exactly as the bulk path does. */
    size_t es = mixrt_dtype_size(dt);
    if (es) mixrt_convert((char *)p + i * es, dt, &v, MIXRT_DTYPE_F64, 1);
}

int64_t mixrt_load_i64(const void *p, mixrt_dtype dt, size_t i) {
    switch (dt) {
    case MIXRT_DTYPE_U8: return ((const uint8_t *)p)[i];
    case MIXRT_DTYPE_I8: return ((const int8_t *)p)[i];
    case MIXRT_DTYPE_U16: return ((const uint16_t *)p)[i];
    case MIXRT_DTYPE_I16: return ((const int16_t *)p)[i];
    case MIXRT_DTYPE_I32: return ((const int32_t *)p)[i];
    case MIXRT_DTYPE_I64: return ((const int64_t *)p)[i];
    case MIXRT_DTYPE_U32: return ((const uint32_t *)p)[i];
    case MIXRT_DTYPE_U64: return (int64_t)((const uint64_t *)p)[i];
    case MIXRT_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
    case MIXRT_DTYPE_F32:
    case MIXRT_DTYPE_F64:
    case MIXRT_DTYPE_F16:
    case MIXRT_DTYPE_BF16: {
        double v = mixrt_load_f64(p, dt, i);
        if (isnan(v)) return 0;
        if (v <= -9223372036854775808.0) return INT64_MIN;
        if (v >= 9223372036854775808.0) return INT64_MAX;
        return (int64_t)v;
    }
    default: return 0;
    }
}

void mixrt_store_i64(void *p, mixrt_dtype dt, size_t i, int64_t v) {
    /* Integer targets wrap (as in NumPy); float targets round once (above 2^53 too). */
    size_t es = mixrt_dtype_size(dt);
    if (es) mixrt_convert((char *)p + i * es, dt, &v, MIXRT_DTYPE_I64, 1);
}
