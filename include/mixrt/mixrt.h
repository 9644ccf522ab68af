/* mixrt.h - the core public API: version, status codes, context (allocator, errors,
 * log), dtypes and their conversions, tensors. Everything a user of mixrt needs before
 * touching a model. Other public headers: mixrt_onnx.h (models, reference execution),
 * mixrt_io.h (tensor files). */
#ifndef MIXRT_H
#define MIXRT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(MIXRT_SHARED_BUILD) && defined(__GNUC__)
#define MIXRT_API __attribute__((visibility("default")))
#else
#define MIXRT_API
#endif

#define MIXRT_VERSION_MAJOR 0
#define MIXRT_VERSION_MINOR 1
#define MIXRT_VERSION_PATCH 0
#define MIXRT_VERSION_STRING "0.1.0"

/* Returns the library's version string ("0.1.0"); static storage. */
MIXRT_API const char *mixrt_version(void);

/* ---- status ------------------------------------------------------------------------
 * INVALID_*: the caller or the model is wrong. UNSUPPORTED_*: valid, but not on this
 * build or hardware. Serialized: numbers only grow at the end. */
typedef enum mixrt_status {
    MIXRT_STATUS_OK = 0,
    MIXRT_STATUS_INVALID_ARGUMENT = 1, /* bad call: NULL, wrong name, wrong shape */
    MIXRT_STATUS_INVALID_MODEL = 2,    /* malformed or inconsistent model / file */
    MIXRT_STATUS_UNSUPPORTED_OP = 3,   /* operator, domain or opset not implemented */
    MIXRT_STATUS_UNSUPPORTED_DTYPE = 4,
    MIXRT_STATUS_UNSUPPORTED = 5,      /* other valid-but-not-here cases */
    MIXRT_STATUS_OUT_OF_MEMORY = 6,
    MIXRT_STATUS_IO_ERROR = 7,         /* file missing, unreadable, truncated */
    MIXRT_STATUS_INTERNAL = 8,         /* a bug in mixrt */
    MIXRT_STATUS_COUNT
} mixrt_status;

/* Short static name of a status ("invalid model"). */
MIXRT_API const char *mixrt_status_string(mixrt_status status);

/* ---- dtypes ------------------------------------------------------------------------
 * Values equal ONNX TensorProto.DataType, so every ONNX type has a name even where
 * mixrt cannot compute with it. */
typedef enum mixrt_dtype {
    MIXRT_DTYPE_UNDEFINED = 0,
    MIXRT_DTYPE_F32 = 1,
    MIXRT_DTYPE_U8 = 2,
    MIXRT_DTYPE_I8 = 3,
    MIXRT_DTYPE_U16 = 4,
    MIXRT_DTYPE_I16 = 5,
    MIXRT_DTYPE_I32 = 6,
    MIXRT_DTYPE_I64 = 7,
    MIXRT_DTYPE_STRING = 8,
    MIXRT_DTYPE_BOOL = 9,
    MIXRT_DTYPE_F16 = 10,
    MIXRT_DTYPE_F64 = 11,
    MIXRT_DTYPE_U32 = 12,
    MIXRT_DTYPE_U64 = 13,
    MIXRT_DTYPE_C64 = 14,
    MIXRT_DTYPE_C128 = 15,
    MIXRT_DTYPE_BF16 = 16,
    MIXRT_DTYPE_F8E4M3FN = 17,
    MIXRT_DTYPE_F8E4M3FNUZ = 18,
    MIXRT_DTYPE_F8E5M2 = 19,
    MIXRT_DTYPE_F8E5M2FNUZ = 20,
    MIXRT_DTYPE_U4 = 21,
    MIXRT_DTYPE_I4 = 22,
    MIXRT_DTYPE_F4E2M1 = 23,
    MIXRT_DTYPE_F8E8M0 = 24,
    MIXRT_DTYPE_U2 = 25,
    MIXRT_DTYPE_I2 = 26,
    MIXRT_DTYPE_COUNT
} mixrt_dtype;

/* bfloat16 and IEEE binary16: distinct types, never bare uint16_t. */
typedef struct mixrt_bf16 { uint16_t bits; } mixrt_bf16;
typedef struct mixrt_f16 { uint16_t bits; } mixrt_f16;

/* A string element of a MIXRT_DTYPE_STRING tensor: bytes (not NUL-terminated by
 * contract, though mixrt always adds a NUL) owned by the tensor. */
struct mixrt_string {
    char *ptr;
    size_t len;
};

/* Short static name: "f32", "bf16", "i64", "f8e4m3fn", ... ("dtype(N)" for unknown). */
MIXRT_API const char *mixrt_dtype_name(mixrt_dtype dtype);
/* Bytes per element; 0 for UNDEFINED, sub-byte and unknown types. STRING elements are
 * struct mixrt_string. */
MIXRT_API size_t mixrt_dtype_size(mixrt_dtype dtype);
/* 1 for F32, F64, F16, BF16. */
MIXRT_API int mixrt_dtype_is_float(mixrt_dtype dtype);
/* 1 for the signed and unsigned 8..64-bit integers (not BOOL). */
MIXRT_API int mixrt_dtype_is_int(mixrt_dtype dtype);
/* 1 when mixrt can store and compute with the type: floats, ints, BOOL, STRING. */
MIXRT_API int mixrt_dtype_is_supported(mixrt_dtype dtype);
/* Parses a name as printed by mixrt_dtype_name, or "float32", "float16", "bfloat16",
 * "int64"..., into *out. Returns 0 on success, -1 if unknown. */
MIXRT_API int mixrt_dtype_from_name(const char *name, mixrt_dtype *out);

/* Conversions. Round to nearest even; NaN stays a quiet NaN (sign kept); +-Inf and -0.0
 * survive; f16 subnormals are exact. The plain names dispatch at run time (CPUID) to
 * AVX-512 code where present; the _ref twins are the scalar reference. Buffers may not
 * overlap. */
MIXRT_API void mixrt_f32_to_bf16(const float *src, mixrt_bf16 *dst, size_t n);
MIXRT_API void mixrt_bf16_to_f32(const mixrt_bf16 *src, float *dst, size_t n);
MIXRT_API void mixrt_f32_to_f16(const float *src, mixrt_f16 *dst, size_t n);
MIXRT_API void mixrt_f16_to_f32(const mixrt_f16 *src, float *dst, size_t n);
MIXRT_API void mixrt_f32_to_bf16_ref(const float *src, mixrt_bf16 *dst, size_t n);
MIXRT_API void mixrt_bf16_to_f32_ref(const mixrt_bf16 *src, float *dst, size_t n);
MIXRT_API void mixrt_f32_to_f16_ref(const float *src, mixrt_f16 *dst, size_t n);
MIXRT_API void mixrt_f16_to_f32_ref(const mixrt_f16 *src, float *dst, size_t n);
MIXRT_API void mixrt_f64_to_f32(const double *src, float *dst, size_t n);
MIXRT_API void mixrt_f32_to_f64(const float *src, double *dst, size_t n);

/* Single values (scalar code, same rounding). The f64 versions round once, directly. */
MIXRT_API mixrt_bf16 mixrt_bf16_from_float(float x);
MIXRT_API float mixrt_bf16_to_float(mixrt_bf16 x);
MIXRT_API mixrt_f16 mixrt_f16_from_float(float x);
MIXRT_API float mixrt_f16_to_float(mixrt_f16 x);
MIXRT_API mixrt_bf16 mixrt_bf16_from_double(double x);
MIXRT_API mixrt_f16 mixrt_f16_from_double(double x);

/* Which conversion code the dispatcher picked: "avx512" or "scalar". */
MIXRT_API const char *mixrt_convert_isa(void);

/* Converts n elements between any two of the floats, integers and BOOL. Float to
 * integer truncates toward zero and saturates at the type's limits (NaN becomes 0);
 * integer to integer wraps; to BOOL is x != 0; to a float rounds once to nearest even.
 * Returns UNSUPPORTED_DTYPE for other types (no message: the caller names the tensor). */
MIXRT_API mixrt_status mixrt_convert(void *dst, mixrt_dtype dst_dtype, const void *src,
                                     mixrt_dtype src_dtype, size_t n);

/* ---- context ------------------------------------------------------------------------
 * A context owns an allocator, the last error message and logging. Not thread-safe:
 * one context per thread of use. Everything created from a context must be destroyed
 * before it. */
typedef struct mixrt_context *mixrt_context_t;

/* User allocator. alloc returns memory aligned to `align` (a power of two <= 4096) or
 * NULL; free gets the pointer and the size it was allocated with. */
struct mixrt_allocator {
    void *(*alloc)(void *user, size_t size, size_t align);
    void (*free)(void *user, void *ptr, size_t size);
    void *user;
};

enum mixrt_log_level {
    MIXRT_LOG_ERROR = 0,
    MIXRT_LOG_WARNING = 1,
    MIXRT_LOG_NOTE = 2,
    MIXRT_LOG_VERBOSE = 3,
};

/* Creates a context. allocator may be NULL (aligned malloc/free). *out is written
 * only on success; destroy with mixrt_context_destroy. */
MIXRT_API mixrt_status mixrt_context_create(const struct mixrt_allocator *allocator,
                                            mixrt_context_t *out);
/* NULL is fine. */
MIXRT_API void mixrt_context_destroy(mixrt_context_t ctx);
/* The message of the last failed call on ctx (""/static when none). Valid until the
 * next call on ctx. */
MIXRT_API const char *mixrt_context_last_error(mixrt_context_t ctx);
MIXRT_API mixrt_status mixrt_context_last_status(mixrt_context_t ctx);
MIXRT_API void mixrt_context_clear_error(mixrt_context_t ctx);
/* Messages at or below level go to stderr as "mixrt: <level>: ...". Default WARNING. */
MIXRT_API void mixrt_context_set_log_level(mixrt_context_t ctx, enum mixrt_log_level level);
/* Fault injection for tests: the n-th allocation from now (0 = the next) fails, and
 * every one after it while `sticky` is set. n < 0 disables. */
MIXRT_API void mixrt_context_fail_alloc_after(mixrt_context_t ctx, long n, int sticky);
/* Bytes currently allocated through ctx, and the peak. */
MIXRT_API size_t mixrt_context_bytes_in_use(mixrt_context_t ctx);
MIXRT_API size_t mixrt_context_bytes_peak(mixrt_context_t ctx);

/* Allocates from the context's allocator (64-byte aligned). NULL on failure with an
 * OUT_OF_MEMORY error recorded on ctx. Free with mixrt_free and the same size. */
MIXRT_API void *mixrt_alloc(mixrt_context_t ctx, size_t size);
MIXRT_API void *mixrt_calloc(mixrt_context_t ctx, size_t count, size_t size);
MIXRT_API void mixrt_free(mixrt_context_t ctx, void *ptr, size_t size);

/* ---- tensors ------------------------------------------------------------------------
 * Dense, row-major, little-endian. data is NULL when there are no elements. */
#define MIXRT_MAX_RANK 16

enum mixrt_tensor_flags {
    MIXRT_TENSOR_OWNS_DATA = 1u << 0, /* data came from the context allocator (capacity) */
    MIXRT_TENSOR_OWNS_STRINGS = 1u << 1, /* STRING elements' ptrs are owned */
    MIXRT_TENSOR_OWNS_MAPPING = 1u << 2, /* data lies in an mmap (map_base, map_size) it owns */
    MIXRT_TENSOR_DEVICE_CUDA = 1u << 3,  /* data is a CUDA device address, not host memory; the
                                          * tensor never owns it (mixrt_engine.h: device tensors) */
};

struct mixrt_tensor {
    mixrt_dtype dtype;
    int rank;
    int64_t dims[MIXRT_MAX_RANK];
    void *data;
    size_t nbytes;   /* element count * dtype size */
    size_t capacity; /* allocated bytes, when OWNS_DATA */
    unsigned flags;
    void *map_base;  /* OWNS_MAPPING: what munmap gets */
    size_t map_size;
};

/* Element count (1 for rank 0). Dims are validated on creation, so this cannot
 * overflow for tensors made by mixrt. */
MIXRT_API size_t mixrt_tensor_numel(const struct mixrt_tensor *t);
/* Creates a tensor with zeroed data owned by it. Fails (INVALID_ARGUMENT) on negative
 * dims, rank outside [0, MIXRT_MAX_RANK], or a byte size that overflows; UNSUPPORTED_DTYPE
 * for types without a byte size. Destroy with mixrt_tensor_destroy. */
MIXRT_API mixrt_status mixrt_tensor_create(mixrt_context_t ctx, mixrt_dtype dtype, int rank,
                                           const int64_t *dims, struct mixrt_tensor **out);
/* Frees a tensor made by mixrt (and its data when owned). NULL is fine. */
MIXRT_API void mixrt_tensor_destroy(mixrt_context_t ctx, struct mixrt_tensor *t);

#ifdef __cplusplus
}
#endif
#endif /* MIXRT_H */
