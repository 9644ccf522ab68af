/* core.h - private core: the context layout, error recording (MIXRT_CHECK), logging,
 * the per-graph arena, tensor helpers and generic element access. Every other module
 * includes this. */
#ifndef MIXRT_CORE_H
#define MIXRT_CORE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mixrt/mixrt.h"

#if defined(__GNUC__)
#define MIXRT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#define MIXRT_UNUSED __attribute__((unused))
#else
#define MIXRT_PRINTF(a, b)
#define MIXRT_UNUSED
#endif

#define MIXRT_ERRMSG_MAX 1024

/* Freed blocks of 1 MiB and more kept by the default allocator for reuse at the same size
 * (context.c): an engine's outputs and run-time sized values are allocated every run, and
 * first-touch page faults on this kind of machine cost far more than the work (a 5 MB output:
 * 6-22 ms a run). Bounded; emptied by mixrt_context_trim, paused by mixrt_context_cache_pause. */
#define MIXRT_BLOCK_CACHE_SLOTS 64
struct mixrt_block_cache {
    pthread_mutex_t lock;
    int n;
    void *p[MIXRT_BLOCK_CACHE_SLOTS];
    size_t size[MIXRT_BLOCK_CACHE_SLOTS];
    size_t total;
    int paused; /* > 0: blocks are freed, not kept (engine builds and loads) */
    const size_t *in_use, *peak; /* the context's live bytes and their high-water mark */
};

struct mixrt_context {
    struct mixrt_allocator alloc;
    struct mixrt_block_cache cache; /* used when alloc is the default allocator */
    mixrt_status last_status;
    char errmsg[MIXRT_ERRMSG_MAX];
    enum mixrt_log_level log_level;
    long fail_countdown; /* <0: off */
    int fail_sticky;
    size_t bytes_in_use, bytes_peak;
};

/* Records status and a printf-style message on ctx, returns status. The message
 * follows one grammar: "cannot <verb> <Op> node '<name>': <what>" or a plain clause. */
mixrt_status mixrt_error(mixrt_context_t ctx, mixrt_status status, const char *fmt, ...)
    MIXRT_PRINTF(3, 4);
mixrt_status mixrt_verror(mixrt_context_t ctx, mixrt_status status, const char *fmt,
                          va_list ap);
/* Prefixes the message already on ctx with "<prefix>: " (keeps the status). */
void mixrt_error_prefix(mixrt_context_t ctx, const char *fmt, ...) MIXRT_PRINTF(2, 3);

void mixrt_log(mixrt_context_t ctx, enum mixrt_log_level level, const char *fmt, ...)
    MIXRT_PRINTF(3, 4);

/* Records and returns: one `status` variable and a `fail:` label per function. */
#define MIXRT_CHECK(ctx, cond, st, ...)                                                  \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            status = mixrt_error((ctx), (st), __VA_ARGS__);                              \
            goto fail;                                                                   \
        }                                                                                \
    } while (0)
/* Propagates a failed status (message already recorded). */
#define MIXRT_TRY(expr)                                                                  \
    do {                                                                                 \
        status = (expr);                                                                 \
        if (status != MIXRT_STATUS_OK) goto fail;                                        \
    } while (0)

/* Overflow-checked size arithmetic: return false on overflow. */
static inline bool mixrt_mul_size(size_t a, size_t b, size_t *out) {
    if (b != 0 && a > SIZE_MAX / b) return false;
    *out = a * b;
    return true;
}
static inline bool mixrt_add_size(size_t a, size_t b, size_t *out) {
    if (a > SIZE_MAX - b) return false;
    *out = a + b;
    return true;
}

/* ---- a growable byte buffer of ctx's memory (b->p holds b->n bytes of b->cap) ---- */
struct mixrt_buf {
    mixrt_context_t ctx;
    uint8_t *p;
    size_t n, cap;
};
/* Room for more bytes after the n held (capacity doubled from 4 KiB); OUT_OF_MEMORY leaves b. */
mixrt_status mixrt_buf_reserve(struct mixrt_buf *b, size_t more);
void mixrt_buf_free(struct mixrt_buf *b);

/* ---- arena: bump allocation from chunks; freed all at once ---- */
struct mixrt_arena;
mixrt_status mixrt_arena_create(mixrt_context_t ctx, struct mixrt_arena **out);
void mixrt_arena_destroy(struct mixrt_arena *arena);
/* Zeroed memory aligned to align (power of two <= 64); NULL (error on ctx) on OOM. */
void *mixrt_arena_alloc(struct mixrt_arena *arena, size_t size, size_t align);
void *mixrt_arena_calloc(struct mixrt_arena *arena, size_t count, size_t size);
char *mixrt_arena_strdup(struct mixrt_arena *arena, const char *s);
char *mixrt_arena_strndup(struct mixrt_arena *arena, const char *s, size_t n);
size_t mixrt_arena_bytes(const struct mixrt_arena *arena);

/* ---- tensors ---- */
/* Initializes *t (any previous content ignored) with owned zeroed storage. On
 * failure *t is left empty (data NULL, no flags) and the error is on ctx. */
mixrt_status mixrt_tensor_init(mixrt_context_t ctx, struct mixrt_tensor *t, mixrt_dtype dtype,
                               int rank, const int64_t *dims);
/* The same with the storage left as the allocator gives it (strings are still zeroed): for a
 * caller that writes every element. */
mixrt_status mixrt_tensor_init_uninit(mixrt_context_t ctx, struct mixrt_tensor *t, mixrt_dtype dtype,
                                      int rank, const int64_t *dims);
/* Frees what *t owns and empties it; the struct itself is not freed. */
void mixrt_tensor_release(mixrt_context_t ctx, struct mixrt_tensor *t);
/* Deep copy into *dst (initialized by the call). */
mixrt_status mixrt_tensor_copy(mixrt_context_t ctx, struct mixrt_tensor *dst,
                               const struct mixrt_tensor *src);
/* Checked element count of dims; false on negative dim or overflow. */
bool mixrt_dims_numel(int rank, const int64_t *dims, size_t *out);
/* "[2,3,224,224]" into buf. Returns buf. */
char *mixrt_dims_str(char *buf, size_t size, int rank, const int64_t *dims);
/* "bf16 [64,3,7,7]" into buf. */
char *mixrt_tensor_desc(char *buf, size_t size, const struct mixrt_tensor *t);
/* Converted copy of a numeric tensor's elements into a new buffer from ctx (free
 * with mixrt_free(ctx, p, numel * sizeof(elem))). For numel 0 returns a non-NULL
 * dummy of size 0 via the same contract (caller frees with size 0). */
mixrt_status mixrt_tensor_to_f64(mixrt_context_t ctx, const struct mixrt_tensor *t,
                                 double **out);
mixrt_status mixrt_tensor_to_f32(mixrt_context_t ctx, const struct mixrt_tensor *t,
                                 float **out);
mixrt_status mixrt_tensor_to_i64(mixrt_context_t ctx, const struct mixrt_tensor *t,
                                 int64_t **out);

/* ---- generic element access (slow; reference code, shapes, attributes) ---- */
double mixrt_load_f64(const void *data, mixrt_dtype dtype, size_t i);
void mixrt_store_f64(void *data, mixrt_dtype dtype, size_t i, double v);
int64_t mixrt_load_i64(const void *data, mixrt_dtype dtype, size_t i);
void mixrt_store_i64(void *data, mixrt_dtype dtype, size_t i, int64_t v);

/* ---- CPU features ---- */
struct mixrt_cpu_features {
    bool avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512dq, avx512_bf16, avx512_fp16,
        avx512_vnni;
};
const struct mixrt_cpu_features *mixrt_cpu_features(void);
/* AVX-512 F, BW, VL and DQ together: what the own *_avx512.c files are compiled for. */
bool mixrt_cpu_avx512(void);

/* Reads a whole file into memory from ctx (free with mixrt_free(ctx, p, *size + 1);
 * a NUL is appended). IO_ERROR naming the path and errno text. */
/* Frees the blocks the default allocator keeps for reuse (after a build, whose temporaries
 * would otherwise stay held). */
void mixrt_context_trim(mixrt_context_t ctx);
/* Pauses (and empties) or resumes the block cache; pauses nest. */
void mixrt_context_cache_pause(mixrt_context_t ctx, bool pause);

mixrt_status mixrt_read_file(mixrt_context_t ctx, const char *path, uint8_t **data,
                             size_t *size);
/* A whole file for reading only: a private mapping from 1 MiB on (*mapped true; the pages
 * come and go with the page cache), else read as mixrt_read_file does. Release with
 * mixrt_release_file. */
mixrt_status mixrt_map_file(mixrt_context_t ctx, const char *path, uint8_t **data, size_t *size, bool *mapped);
void mixrt_release_file(mixrt_context_t ctx, uint8_t *data, size_t size, bool mapped);
/* Drops the whole pages inside [p, p + len) of a mixrt_map_file mapping from the resident
 * set (they are read again from the file if touched). */
void mixrt_unmap_range(const void *p, size_t len);

#endif /* MIXRT_CORE_H */
