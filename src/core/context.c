/* context.c - the context: allocator (with fault injection and byte accounting), the
 * last error message and logging. The out-of-memory path never allocates: messages
 * are formatted into the fixed buffer on the context. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

const char *mixrt_version(void) { return MIXRT_VERSION_STRING; }

static const char *const status_names[] = {
    [MIXRT_STATUS_OK] = "ok",
    [MIXRT_STATUS_INVALID_ARGUMENT] = "invalid argument",
    [MIXRT_STATUS_INVALID_MODEL] = "invalid model",
    [MIXRT_STATUS_UNSUPPORTED_OP] = "unsupported operator",
    [MIXRT_STATUS_UNSUPPORTED_DTYPE] = "unsupported dtype",
    [MIXRT_STATUS_UNSUPPORTED] = "unsupported",
    [MIXRT_STATUS_OUT_OF_MEMORY] = "out of memory",
    [MIXRT_STATUS_IO_ERROR] = "i/o error",
    [MIXRT_STATUS_INTERNAL] = "internal error",
};
_Static_assert(sizeof(status_names) / sizeof(status_names[0]) == MIXRT_STATUS_COUNT,
               "status_names must cover mixrt_status");

const char *mixrt_status_string(mixrt_status status) {
    if ((unsigned)status >= MIXRT_STATUS_COUNT) return "unknown status";
    return status_names[status];
}

/* Blocks of at least this size are 2 MiB aligned and advised for transparent huge pages:
 * weights and activations of real models are hundreds of MB, and touching them 4 KiB page by
 * page dominated model loading (one fault per page). With the kernel's THP defrag on
 * "madvise", an advised block's first touch may compact memory synchronously, so a block
 * allocated every run (an engine's 5 MB output: 6-22 ms a run, measured) would pay that each
 * time: freed blocks of 1 MiB and more are kept for reuse instead (see MAP_MIN; paused while
 * engines are built or loaded, whose temporaries would only sit there). A request the cache cannot
 * serve first frees kept blocks, oldest first, until kept plus live plus requested bytes fit under
 * the context's high-water mark of live bytes (or none is kept): keeping never raises the peak
 * (data-dependent shapes' blocks, Mask R-CNN's 80 MB mask features, had been faulted in every run). */
#define HUGE_BLOCK ((size_t)4 << 20)
#define HUGE_PAGE ((size_t)2 << 20)

#define CACHE_MIN ((size_t)1 << 20)

/* Blocks of at least MAP_MIN are mapped whole (and unmapped when freed) instead of taken from
 * malloc: glibc raises its own mmap threshold to the largest block freed (up to 32 MiB), after
 * which the activations of data-dependent shapes come from its heap and their holes stay
 * resident. Keypoint R-CNN's f32 engine peaked at 762 MiB that way and 648 with them mapped.
 * A mapped block's length (its request rounded up to an eighth of its power of two; the tail
 * is never touched unless a larger request reuses the block) is written in a page of its own
 * just before it, so that the cache can hand a kept block to any request it fits by up to 2x:
 * kept only at their exact sizes, most of Mask R-CNN's run-time blocks (a few dozen sizes a run)
 * were unmapped and faulted back in every run (+60 ms of system time a run). Left to malloc
 * under AddressSanitizer, which checks malloc's blocks only. */
#if defined(__SANITIZE_ADDRESS__)
#define MAP_MIN SIZE_MAX
#else
#define MAP_MIN ((size_t)1 << 20)
#endif

static size_t page_size(void) {
    static size_t ps;
    if (!ps) {
        long v = sysconf(_SC_PAGESIZE);
        ps = v > 0 ? (size_t)v : 4096;
    }
    return ps;
}

/* A block of at least size bytes at a multiple of align, mapped alone, its length in the page
 * before it; NULL when the system has no room. */
static void *map_block(size_t size, size_t align) {
    size_t ps = page_size(), step = ps;
    while (step < SIZE_MAX / 16 && step * 16 <= size) step *= 2; /* an eighth of size's power of two */
    size_t len = (size + step - 1) / step * step, a = align > ps ? align : ps, extra = a + ps;
    if (len < size || len + extra < len) return NULL;
    uint8_t *base = mmap(NULL, len + extra, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return NULL;
    uint8_t *p = (uint8_t *)(((uintptr_t)base + ps + a - 1) / a * a);
    if (p - ps > base) munmap(base, (size_t)(p - ps - base));
    if (base + len + extra > p + len) munmap(p + len, (size_t)(base + len + extra - (p + len)));
    *(size_t *)(p - ps) = len;
    return p;
}

/* The bytes a block default_alloc returned for size bytes holds. */
static size_t block_len(const void *p, size_t size) {
    return size >= MAP_MIN ? *(const size_t *)((const uint8_t *)p - page_size()) : size;
}

/* Gives back a block default_alloc returned, of block_len bytes. */
static void release_block(void *p, size_t len) {
    if (len >= MAP_MIN) {
        size_t ps = page_size();
        munmap((uint8_t *)p - ps, len + ps);
    } else
        free(p);
}

#define CACHE_MAX_TOTAL ((size_t)4 << 30)

/* Takes kept blocks out of c, oldest first, until `need` bytes are out or none is left; their
 * pointers and sizes go to out[], out_size[] (at most MIXRT_BLOCK_CACHE_SLOTS), the count is
 * returned. c->lock held. */
static int cache_evict(struct mixrt_block_cache *c, size_t need, void **out, size_t *out_size) {
    int k = 0;
    size_t got = 0;
    while (k < c->n && got < need) got += c->size[k], out[k] = c->p[k], out_size[k] = c->size[k], k++;
    for (int j = k; j < c->n; j++) c->p[j - k] = c->p[j], c->size[j - k] = c->size[j];
    c->n -= k;
    c->total -= got;
    return k;
}

static void *default_alloc(void *user, size_t size, size_t align) {
    struct mixrt_block_cache *c = user;
    void *p = NULL, *evict[MIXRT_BLOCK_CACHE_SLOTS];
    size_t evict_size[MIXRT_BLOCK_CACHE_SLOTS];
    int n_evict = 0;
    if (align < sizeof(void *)) align = sizeof(void *);
    if (size >= HUGE_BLOCK && align < HUGE_PAGE) align = HUGE_PAGE;
    if (c && size >= CACHE_MIN && !c->paused) {
        pthread_mutex_lock(&c->lock);
        /* The smallest kept block that fits by up to 2x (mapped ones; others at their size). */
        int best = -1;
        for (int i = c->n - 1; i >= 0; i--)
            if ((uintptr_t)c->p[i] % align == 0 &&
                (size >= MAP_MIN ? c->size[i] >= size && c->size[i] / 2 <= size : c->size[i] == size) &&
                (best < 0 || c->size[i] < c->size[best]))
                best = i;
        if (best >= 0) {
            p = c->p[best];
            c->total -= c->size[best];
            for (int j = best + 1; j < c->n; j++) c->p[j - 1] = c->p[j], c->size[j - 1] = c->size[j];
            c->n--;
        }
        if (!p) { /* bytes to free: what kept + live + size exceed the high-water mark by */
            size_t live = c->in_use ? *c->in_use : 0, peak = c->peak ? *c->peak : 0, want = live + size + c->total;
            n_evict = cache_evict(c, want > peak ? want - peak : 0, evict, evict_size);
        }
        pthread_mutex_unlock(&c->lock);
        if (p) return p;
        for (int i = 0; i < n_evict; i++) release_block(evict[i], evict_size[i]);
    }
    if (size >= MAP_MIN) {
        if (!(p = map_block(size, align))) return NULL;
    } else if (posix_memalign(&p, align, size ? size : 1) != 0)
        return NULL;
#ifdef MADV_HUGEPAGE
    if (size >= HUGE_BLOCK) (void)madvise(p, block_len(p, size) & ~(HUGE_PAGE - 1), MADV_HUGEPAGE);
#endif
    return p;
}

static void default_free(void *user, void *ptr, size_t size) {
    struct mixrt_block_cache *c = user;
    void *evict = NULL;
    size_t evict_size = 0;
    size = block_len(ptr, size);
    if (c && size >= CACHE_MIN && size <= CACHE_MAX_TOTAL && !c->paused) {
        pthread_mutex_lock(&c->lock);
        if (c->n == MIXRT_BLOCK_CACHE_SLOTS || c->total + size > CACHE_MAX_TOTAL) {
            /* The oldest goes (once is enough when the slots were the limit). */
            evict = c->n ? c->p[0] : NULL;
            evict_size = c->n ? c->size[0] : 0;
            if (evict) {
                c->total -= c->size[0];
                for (int j = 1; j < c->n; j++) c->p[j - 1] = c->p[j], c->size[j - 1] = c->size[j];
                c->n--;
            }
        }
        if (c->n < MIXRT_BLOCK_CACHE_SLOTS && c->total + size <= CACHE_MAX_TOTAL) {
            c->p[c->n] = ptr, c->size[c->n++] = size;
            c->total += size;
            ptr = NULL;
        }
        pthread_mutex_unlock(&c->lock);
        if (evict) release_block(evict, evict_size);
    }
    if (ptr) release_block(ptr, size);
}

void mixrt_context_cache_pause(mixrt_context_t ctx, bool pause) {
    if (!ctx || ctx->alloc.user != &ctx->cache) return;
    pthread_mutex_lock(&ctx->cache.lock);
    ctx->cache.paused += pause ? 1 : -1;
    pthread_mutex_unlock(&ctx->cache.lock);
    if (pause) mixrt_context_trim(ctx);
}

void mixrt_context_trim(mixrt_context_t ctx) {
    if (!ctx || ctx->alloc.user != &ctx->cache) return;
    struct mixrt_block_cache *c = &ctx->cache;
    pthread_mutex_lock(&c->lock);
    for (int i = 0; i < c->n; i++) release_block(c->p[i], c->size[i]);
    c->n = 0;
    c->total = 0;
    pthread_mutex_unlock(&c->lock);
}


mixrt_status mixrt_context_create(const struct mixrt_allocator *allocator, mixrt_context_t *out) {
    if (!out) return MIXRT_STATUS_INVALID_ARGUMENT;
    struct mixrt_allocator a = {default_alloc, default_free, NULL};
    if (allocator) {
        if (!allocator->alloc || !allocator->free) return MIXRT_STATUS_INVALID_ARGUMENT;
        a = *allocator;
    }
    struct mixrt_context *ctx = a.alloc(a.user, sizeof(*ctx), 64);
    if (!ctx) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(ctx, 0, sizeof(*ctx));
    ctx->alloc = a;
    if (!allocator) { /* the default allocator keeps blocks for reuse in ctx->cache */
        pthread_mutex_init(&ctx->cache.lock, NULL);
        ctx->cache.in_use = &ctx->bytes_in_use;
        ctx->cache.peak = &ctx->bytes_peak;
        ctx->alloc.user = &ctx->cache;
    }
    ctx->log_level = MIXRT_LOG_WARNING;
    ctx->fail_countdown = -1;
    *out = ctx;
    return MIXRT_STATUS_OK;
}

void mixrt_context_destroy(mixrt_context_t ctx) {
    if (!ctx) return;
    bool cached = ctx->alloc.user == &ctx->cache;
    mixrt_context_trim(ctx);
    if (cached) pthread_mutex_destroy(&ctx->cache.lock);
    struct mixrt_allocator a = ctx->alloc;
    if (cached) a.user = NULL; /* the struct itself is not cached */
    a.free(a.user, ctx, sizeof(*ctx));
}

const char *mixrt_context_last_error(mixrt_context_t ctx) { return ctx ? ctx->errmsg : "no context"; }
mixrt_status mixrt_context_last_status(mixrt_context_t ctx) {
    return ctx ? ctx->last_status : MIXRT_STATUS_INVALID_ARGUMENT;
}
void mixrt_context_clear_error(mixrt_context_t ctx) {
    if (!ctx) return;
    ctx->last_status = MIXRT_STATUS_OK;
    ctx->errmsg[0] = '\0';
}
void mixrt_context_set_log_level(mixrt_context_t ctx, enum mixrt_log_level level) { ctx->log_level = level; }
void mixrt_context_fail_alloc_after(mixrt_context_t ctx, long n, int sticky) {
    ctx->fail_countdown = n;
    ctx->fail_sticky = sticky;
}
size_t mixrt_context_bytes_in_use(mixrt_context_t ctx) { return ctx->bytes_in_use; }
size_t mixrt_context_bytes_peak(mixrt_context_t ctx) { return ctx->bytes_peak; }

mixrt_status mixrt_verror(mixrt_context_t ctx, mixrt_status status, const char *fmt, va_list ap) {
    if (!ctx) return status;
    ctx->last_status = status;
    vsnprintf(ctx->errmsg, sizeof(ctx->errmsg), fmt, ap);
    return status;
}

mixrt_status mixrt_error(mixrt_context_t ctx, mixrt_status status, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mixrt_verror(ctx, status, fmt, ap);
    va_end(ap);
    return status;
}

void mixrt_error_prefix(mixrt_context_t ctx, const char *fmt, ...) {
    if (!ctx) return;
    char old[MIXRT_ERRMSG_MAX];
    va_list ap;
    memcpy(old, ctx->errmsg, sizeof(old));
    va_start(ap, fmt);
    int n = vsnprintf(ctx->errmsg, sizeof(ctx->errmsg), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(ctx->errmsg) - 2) {
        ctx->errmsg[n] = ':';
        ctx->errmsg[n + 1] = ' ';
        size_t room = sizeof(ctx->errmsg) - (size_t)n - 2;
        size_t len = strlen(old);
        if (len >= room) len = room - 1;
        memcpy(ctx->errmsg + n + 2, old, len);
        ctx->errmsg[n + 2 + len] = 0;
    }
}

void mixrt_log(mixrt_context_t ctx, enum mixrt_log_level level, const char *fmt, ...) {
    if (ctx && level > ctx->log_level) return;
    static const char *const names[] = {"error", "warning", "note", "verbose"};
    if ((unsigned)level > MIXRT_LOG_VERBOSE) level = MIXRT_LOG_VERBOSE;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mixrt: %s: ", names[level]);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void *mixrt_alloc(mixrt_context_t ctx, size_t size) {
    if (ctx->fail_countdown >= 0) {
        if (ctx->fail_countdown == 0) {
            if (!ctx->fail_sticky) ctx->fail_countdown = -1;
            mixrt_error(ctx, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory allocating %zu bytes (injected)", size);
            return NULL;
        }
        ctx->fail_countdown--;
    }
    void *p = ctx->alloc.alloc(ctx->alloc.user, size ? size : 1, 64);
    if (!p) {
        mixrt_error(ctx, MIXRT_STATUS_OUT_OF_MEMORY, "out of memory allocating %zu bytes", size);
        return NULL;
    }
    ctx->bytes_in_use += size;
    if (ctx->bytes_in_use > ctx->bytes_peak) ctx->bytes_peak = ctx->bytes_in_use;
    return p;
}

void *mixrt_calloc(mixrt_context_t ctx, size_t count, size_t size) {
    size_t total;
    if (!mixrt_mul_size(count, size, &total)) {
        mixrt_error(ctx, MIXRT_STATUS_OUT_OF_MEMORY, "allocation of %zu x %zu bytes overflows", count, size);
        return NULL;
    }
    void *p = mixrt_alloc(ctx, total);
    if (p) memset(p, 0, total);
    return p;
}

void mixrt_free(mixrt_context_t ctx, void *ptr, size_t size) {
    if (!ptr) return;
    ctx->bytes_in_use -= size <= ctx->bytes_in_use ? size : ctx->bytes_in_use;
    ctx->alloc.free(ctx->alloc.user, ptr, size ? size : 1);
}

mixrt_status mixrt_read_file(mixrt_context_t ctx, const char *path, uint8_t **data, size_t *size) {
    mixrt_status status = MIXRT_STATUS_OK;
    uint8_t *buf = NULL;
    size_t len = 0;
    FILE *f = fopen(path, "rb");
    struct stat st;
    MIXRT_CHECK(ctx, f, MIXRT_STATUS_IO_ERROR, "cannot open '%s': %s", path, strerror(errno));
    MIXRT_CHECK(ctx, fstat(fileno(f), &st) == 0, MIXRT_STATUS_IO_ERROR, "cannot read '%s': %s", path, strerror(errno));
    MIXRT_CHECK(ctx, !S_ISDIR(st.st_mode), MIXRT_STATUS_IO_ERROR, "cannot read '%s': it is a directory", path);
    MIXRT_CHECK(ctx, S_ISREG(st.st_mode), MIXRT_STATUS_IO_ERROR, "cannot read '%s': not a regular file", path);
    MIXRT_CHECK(ctx, fseek(f, 0, SEEK_END) == 0, MIXRT_STATUS_IO_ERROR, "cannot read '%s': %s", path,
                strerror(errno));
    long end = ftell(f);
    MIXRT_CHECK(ctx, end >= 0, MIXRT_STATUS_IO_ERROR, "cannot read '%s': not a regular file", path);
    rewind(f);
    len = (size_t)end;
    buf = mixrt_alloc(ctx, len + 1);
    if (!buf) {
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    MIXRT_CHECK(ctx, fread(buf, 1, len, f) == len, MIXRT_STATUS_IO_ERROR, "cannot read '%s': short read",
                path);
    buf[len] = 0;
    fclose(f);
    *data = buf;
    *size = len;
    return MIXRT_STATUS_OK;
fail:
    if (buf) mixrt_free(ctx, buf, len + 1);
    if (f) fclose(f);
    return status;
}

mixrt_status mixrt_buf_reserve(struct mixrt_buf *b, size_t more) {
    size_t need;
    if (!mixrt_add_size(b->n, more, &need)) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (need <= b->cap) return MIXRT_STATUS_OK;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < need) {
        if (cap > SIZE_MAX / 2) return MIXRT_STATUS_OUT_OF_MEMORY;
        cap *= 2;
    }
    uint8_t *np = mixrt_alloc(b->ctx, cap);
    if (!np) return MIXRT_STATUS_OUT_OF_MEMORY;
    if (b->n) memcpy(np, b->p, b->n);
    mixrt_free(b->ctx, b->p, b->cap);
    b->p = np;
    b->cap = cap;
    return MIXRT_STATUS_OK;
}

void mixrt_buf_free(struct mixrt_buf *b) {
    mixrt_free(b->ctx, b->p, b->cap);
    b->p = NULL;
    b->n = b->cap = 0;
}

mixrt_status mixrt_map_file(mixrt_context_t ctx, const char *path, uint8_t **data, size_t *size, bool *mapped) {
    struct stat st;
    *mapped = false;
    FILE *f = fopen(path, "rb");
    if (f && fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= ((off_t)1 << 20)) {
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fileno(f), 0);
        fclose(f);
        if (p != MAP_FAILED) {
            *data = p, *size = (size_t)st.st_size, *mapped = true;
            return MIXRT_STATUS_OK;
        }
    } else if (f) {
        fclose(f);
    }
    return mixrt_read_file(ctx, path, data, size); /* small, or not mappable: its errors */
}

void mixrt_release_file(mixrt_context_t ctx, uint8_t *data, size_t size, bool mapped) {
    if (!data) return;
    if (mapped) munmap(data, size);
    else mixrt_free(ctx, data, size + 1);
}

void mixrt_unmap_range(const void *p, size_t len) {
    long pg = sysconf(_SC_PAGESIZE);
    if (pg <= 0 || len == 0) return;
    uintptr_t lo = ((uintptr_t)p + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    uintptr_t hi = ((uintptr_t)p + len) & ~((uintptr_t)pg - 1);
    if (hi > lo) (void)madvise((void *)lo, hi - lo, MADV_DONTNEED);
}
