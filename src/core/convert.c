/* convert.c - scalar reference conversions between f32/f64 and bf16/f16 (round to
 * nearest even, NaN kept quiet, Inf and -0.0 kept, f16 subnormals exact), the run-time
 * dispatch to the AVX-512 versions, and the generic any-to-any mixrt_convert. */
#include <math.h>
#include <string.h>

#include "core/core.h"
#include "core/convert_impl.h"

static inline uint32_t f32_bits(float x) {
    uint32_t u;
    memcpy(&u, &x, 4);
    return u;
}
static inline float bits_f32(uint32_t u) {
    float x;
    memcpy(&x, &u, 4);
    return x;
}

mixrt_bf16 mixrt_bf16_from_float(float x) {
    uint32_t u = f32_bits(x);
    mixrt_bf16 r;
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        r.bits = (uint16_t)((u >> 16) | 0x0040u); /* quiet NaN, sign and payload top kept */
        return r;
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    r.bits = (uint16_t)(u >> 16);
    return r;
}

float mixrt_bf16_to_float(mixrt_bf16 x) { return bits_f32((uint32_t)x.bits << 16); }

mixrt_f16 mixrt_f16_from_float(float x) {
    uint32_t u = f32_bits(x);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    mixrt_f16 r;
    if (a > 0x7f800000u) { /* NaN: quiet, keep top payload bits */
        r.bits = (uint16_t)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
        return r;
    }
    if (a >= 0x477ff000u) { /* >= 65520 rounds to Inf (and Inf stays Inf) */
        r.bits = (uint16_t)(sign | 0x7c00u);
        return r;
    }
    if (a < 0x38800000u) { /* below 2^-14: f16 subnormal or zero */
        if (a < 0x33000000u) { /* below 2^-25: rounds to zero (2^-25 itself is a tie to 0) */
            r.bits = sign;
            return r;
        }
        uint32_t e = a >> 23, m = (a & 0x7fffffu) | 0x800000u;
        uint32_t shift = 126 - e; /* 14..24: value = m * 2^(e-150); f16 ulp 2^-24 */
        uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
        if (rem > half || (rem == half && (q & 1u))) q++;
        r.bits = (uint16_t)(sign | q);
        return r;
    }
    /* normal: rebias exponent 127 -> 15, round mantissa 23 -> 10 bits */
    uint32_t v = a - 0x38000000u; /* subtract (127-15) << 23 */
    v += 0xfffu + ((v >> 13) & 1u);
    r.bits = (uint16_t)(sign | (v >> 13));
    return r;
}

float mixrt_f16_to_float(mixrt_f16 x) {
    uint32_t sign = (uint32_t)(x.bits & 0x8000u) << 16;
    uint32_t e = (x.bits >> 10) & 0x1fu, m = x.bits & 0x3ffu;
    if (e == 0x1f) return bits_f32(sign | 0x7f800000u | (m << 13) | (m ? 0x400000u : 0));
    if (e == 0) {
        if (m == 0) return bits_f32(sign);
        float v = (float)m * 0x1p-24f; /* exact */
        return sign ? -v : v;
    }
    return bits_f32(sign | ((e + 112u) << 23) | (m << 13));
}

/* Direct f64 -> 16-bit rounding (one rounding, no detour through f32): round the
 * mantissa at the target's precision with RNE in integer arithmetic. */
static uint16_t round_f64_to_16(double x, int mant_bits, int exp_bits) {
    uint64_t u;
    memcpy(&u, &x, 8);
    uint16_t sign = (uint16_t)((u >> 48) & 0x8000u);
    uint64_t a = u & 0x7fffffffffffffffull;
    int bias = (1 << (exp_bits - 1)) - 1;
    uint16_t inf = (uint16_t)(((1u << exp_bits) - 1) << mant_bits);
    if (a > 0x7ff0000000000000ull) /* NaN */
        return (uint16_t)(sign | inf | (1u << (mant_bits - 1)) | ((a >> (52 - mant_bits)) & ((1u << mant_bits) - 1)));
    if (a == 0x7ff0000000000000ull) return (uint16_t)(sign | inf);
    if (a == 0) return sign;
    int e = (int)(a >> 52) - 1023;
    uint64_t m = (a & 0xfffffffffffffull) | (1ull << 52);
    if ((a >> 52) == 0) { /* f64 subnormal: far below any 16-bit subnormal */
        return sign;
    }
    int emin = 1 - bias;
    /* Number of mantissa bits to drop: normal targets keep mant_bits fraction bits;
     * below emin the target is subnormal and keeps fewer. */
    int drop = 52 - mant_bits;
    if (e < emin) drop += emin - e;
    if (drop > 60) return sign;
    uint64_t q = m >> drop, rem = m & ((1ull << drop) - 1), half = 1ull << (drop - 1);
    if (rem > half || (rem == half && (q & 1u))) q++;
    /* q now holds the rounded significand including the implicit bit (for normals). */
    int te = e < emin ? emin : e;
    if (e < emin) {
        /* subnormal result: q is the field value; q may have carried into the normal range,
         * which the encoding below handles since bit mant_bits then becomes exponent 1. */
        return (uint16_t)(sign | q);
    }
    if (q >> (mant_bits + 1)) { /* carry out of the mantissa */
        q >>= 1;
        te++;
    }
    int be = te + bias;
    if (be >= (1 << exp_bits) - 1) return (uint16_t)(sign | inf);
    return (uint16_t)(sign | ((uint32_t)be << mant_bits) | (q & ((1u << mant_bits) - 1)));
}

mixrt_bf16 mixrt_bf16_from_double(double x) {
    mixrt_bf16 r = {round_f64_to_16(x, 7, 8)};
    return r;
}
mixrt_f16 mixrt_f16_from_double(double x) {
    mixrt_f16 r = {round_f64_to_16(x, 10, 5)};
    return r;
}

void mixrt_f32_to_bf16_ref(const float *src, mixrt_bf16 *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = mixrt_bf16_from_float(src[i]);
}
void mixrt_bf16_to_f32_ref(const mixrt_bf16 *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = mixrt_bf16_to_float(src[i]);
}
void mixrt_f32_to_f16_ref(const float *src, mixrt_f16 *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = mixrt_f16_from_float(src[i]);
}
void mixrt_f16_to_f32_ref(const mixrt_f16 *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = mixrt_f16_to_float(src[i]);
}
void mixrt_f64_to_f32(const double *src, float *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = (float)src[i];
}
void mixrt_f32_to_f64(const float *src, double *dst, size_t n) {
    for (size_t i = 0; i < n; i++) dst[i] = src[i];
}

/* ---- dispatch ---- */
struct convert_table {
    void (*f32_to_bf16)(const float *, mixrt_bf16 *, size_t);
    void (*bf16_to_f32)(const mixrt_bf16 *, float *, size_t);
    void (*f32_to_f16)(const float *, mixrt_f16 *, size_t);
    void (*f16_to_f32)(const mixrt_f16 *, float *, size_t);
    const char *isa;
};

static const struct convert_table *convert_table(void) {
    static const struct convert_table scalar = {mixrt_f32_to_bf16_ref, mixrt_bf16_to_f32_ref, mixrt_f32_to_f16_ref,
                                                mixrt_f16_to_f32_ref, "scalar"};
    static const struct convert_table *picked;
    if (!picked) {
        picked = &scalar;
#if defined(__x86_64__)
        const struct mixrt_cpu_features *f = mixrt_cpu_features();
        static const struct convert_table avx512 = {mixrt_f32_to_bf16_avx512bf16, mixrt_bf16_to_f32_avx512,
                                                    mixrt_f32_to_f16_avx512, mixrt_f16_to_f32_avx512, "avx512"};
        if (f->avx512f && f->avx512bw && f->avx512vl && f->avx512_bf16 && f->f16c) picked = &avx512;
#endif
    }
    return picked;
}

const char *mixrt_convert_isa(void) { return convert_table()->isa; }
void mixrt_f32_to_bf16(const float *s, mixrt_bf16 *d, size_t n) { convert_table()->f32_to_bf16(s, d, n); }
void mixrt_bf16_to_f32(const mixrt_bf16 *s, float *d, size_t n) { convert_table()->bf16_to_f32(s, d, n); }
void mixrt_f32_to_f16(const float *s, mixrt_f16 *d, size_t n) { convert_table()->f32_to_f16(s, d, n); }
void mixrt_f16_to_f32(const mixrt_f16 *s, float *d, size_t n) { convert_table()->f16_to_f32(s, d, n); }

static bool numeric(mixrt_dtype dt) {
    return mixrt_dtype_is_float(dt) || mixrt_dtype_is_int(dt) || dt == MIXRT_DTYPE_BOOL;
}

mixrt_status mixrt_convert(void *dst, mixrt_dtype dt, const void *src, mixrt_dtype st, size_t n) {
    if (!numeric(dt) || !numeric(st)) return MIXRT_STATUS_UNSUPPORTED_DTYPE;
    if (dt == st) {
        if (n) memcpy(dst, src, n * mixrt_dtype_size(dt));
        return MIXRT_STATUS_OK;
    }
    /* Fast paths for the float pairs; everything else element by element. */
    if (st == MIXRT_DTYPE_F32 && dt == MIXRT_DTYPE_BF16) mixrt_f32_to_bf16(src, dst, n);
    else if (st == MIXRT_DTYPE_BF16 && dt == MIXRT_DTYPE_F32) mixrt_bf16_to_f32(src, dst, n);
    else if (st == MIXRT_DTYPE_F32 && dt == MIXRT_DTYPE_F16) mixrt_f32_to_f16(src, dst, n);
    else if (st == MIXRT_DTYPE_F16 && dt == MIXRT_DTYPE_F32) mixrt_f16_to_f32(src, dst, n);
    else if (st == MIXRT_DTYPE_F64 && dt == MIXRT_DTYPE_F32) mixrt_f64_to_f32(src, dst, n);
    else if (st == MIXRT_DTYPE_F32 && dt == MIXRT_DTYPE_F64) mixrt_f32_to_f64(src, dst, n);
    else if (mixrt_dtype_is_float(st) || mixrt_dtype_is_float(dt))
        for (size_t i = 0; i < n; i++) mixrt_store_f64(dst, dt, i, mixrt_load_f64(src, st, i));
    else
        for (size_t i = 0; i < n; i++) mixrt_store_i64(dst, dt, i, mixrt_load_i64(src, st, i));
    return MIXRT_STATUS_OK;
}
