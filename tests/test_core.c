/* test_core.c - the core below the conversions: context (allocator, errors, fault
 * injection, byte accounting), arena, tensor creation with hostile dims, dtype traits and
 * names, dims formatting. Every allocation is accounted: each case ends with
 * bytes_in_use back where it started and the counting allocator balanced. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/core.h"
#include "testutil.h"

/* A counting allocator: live blocks and bytes, so leaks show up even without ASan. */
struct counter {
    long live, allocs, frees;
    size_t bytes;
    int fail; /* refuse every allocation */
};
static void *count_alloc(void *user, size_t size, size_t align) {
    struct counter *c = user;
    if (c->fail) return NULL;
    void *p = NULL;
    if (posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size ? size : 1)) return NULL;
    c->live++;
    c->allocs++;
    c->bytes += size;
    return p;
}
static void count_free(void *user, void *ptr, size_t size) {
    struct counter *c = user;
    c->live--;
    c->frees++;
    c->bytes -= size;
    free(ptr);
}

static void test_context(void) {
    mixrt_context_t ctx = NULL;
    TU_CHECK(mixrt_context_create(NULL, NULL) == MIXRT_STATUS_INVALID_ARGUMENT, "create with NULL out");
    struct mixrt_allocator half = {count_alloc, NULL, NULL};
    TU_CHECK(mixrt_context_create(&half, &ctx) == MIXRT_STATUS_INVALID_ARGUMENT && ctx == NULL,
             "allocator without free must be refused, out untouched");
    struct counter c = {0};
    struct mixrt_allocator a = {count_alloc, count_free, &c};
    c.fail = 1;
    TU_CHECK(mixrt_context_create(&a, &ctx) == MIXRT_STATUS_OUT_OF_MEMORY && ctx == NULL,
             "failing allocator: OUT_OF_MEMORY, out untouched");
    c.fail = 0;
    TU_CHECK(mixrt_context_create(&a, &ctx) == MIXRT_STATUS_OK && ctx, "create with a user allocator");
    TU_CHECK(c.live == 1, "the context itself comes from the user allocator (live %ld)", c.live);
    TU_CHECK(mixrt_context_last_status(ctx) == MIXRT_STATUS_OK && !strcmp(mixrt_context_last_error(ctx), ""),
             "a new context has no error");
    void *p = mixrt_alloc(ctx, 100);
    TU_CHECK(p && ((uintptr_t)p & 63) == 0, "mixrt_alloc is 64-byte aligned");
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 100 && mixrt_context_bytes_peak(ctx) == 100, "accounting after alloc");
    void *q = mixrt_calloc(ctx, 10, 30);
    int zero = 1;
    for (int i = 0; q && i < 300; i++) zero &= ((unsigned char *)q)[i] == 0;
    TU_CHECK(q && zero, "calloc zeroes");
    mixrt_free(ctx, p, 100);
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 300 && mixrt_context_bytes_peak(ctx) == 400, "in use 300, peak 400");
    mixrt_free(ctx, q, 300);
    mixrt_free(ctx, NULL, 5); /* no-op */
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "all freed");
    TU_CHECK(mixrt_calloc(ctx, SIZE_MAX / 2, 3) == NULL && mixrt_context_last_status(ctx) == MIXRT_STATUS_OUT_OF_MEMORY,
             "calloc count*size overflow fails with OUT_OF_MEMORY");
    TU_CHECK(strstr(mixrt_context_last_error(ctx), "overflows") != NULL, "overflow message: %s",
             mixrt_context_last_error(ctx));
    mixrt_context_clear_error(ctx);
    TU_CHECK(mixrt_context_last_status(ctx) == MIXRT_STATUS_OK && !*mixrt_context_last_error(ctx), "clear_error");

    /* error messages */
    TU_CHECK(mixrt_error(ctx, MIXRT_STATUS_INVALID_MODEL, "node '%s' has %d inputs", "conv_3", 7) ==
                 MIXRT_STATUS_INVALID_MODEL,
             "mixrt_error returns its status");
    TU_CHECK(!strcmp(mixrt_context_last_error(ctx), "node 'conv_3' has 7 inputs") &&
                 mixrt_context_last_status(ctx) == MIXRT_STATUS_INVALID_MODEL,
             "message and status recorded: %s", mixrt_context_last_error(ctx));
    mixrt_error_prefix(ctx, "cannot load '%s'", "m.onnx");
    TU_CHECK(!strcmp(mixrt_context_last_error(ctx), "cannot load 'm.onnx': node 'conv_3' has 7 inputs") &&
                 mixrt_context_last_status(ctx) == MIXRT_STATUS_INVALID_MODEL,
             "prefix keeps status: %s", mixrt_context_last_error(ctx));
    char big[3 * MIXRT_ERRMSG_MAX];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = 0;
    mixrt_error(ctx, MIXRT_STATUS_INTERNAL, "%s", big);
    TU_CHECK(strlen(mixrt_context_last_error(ctx)) == MIXRT_ERRMSG_MAX - 1, "long message truncated to %d",
             MIXRT_ERRMSG_MAX - 1);
    mixrt_error_prefix(ctx, "%s", big); /* prefix as long as the buffer: must stay bounded */
    TU_CHECK(strlen(mixrt_context_last_error(ctx)) < MIXRT_ERRMSG_MAX, "prefix stays bounded");
    mixrt_error(ctx, MIXRT_STATUS_IO_ERROR, "short");
    mixrt_error_prefix(ctx, "%.*s", MIXRT_ERRMSG_MAX - 10, big); /* leaves room for a few old bytes */
    TU_CHECK(strlen(mixrt_context_last_error(ctx)) < MIXRT_ERRMSG_MAX, "near-full prefix stays bounded");
    TU_CHECK(mixrt_error(NULL, MIXRT_STATUS_IO_ERROR, "x") == MIXRT_STATUS_IO_ERROR, "mixrt_error(NULL) is safe");
    TU_CHECK(!strcmp(mixrt_context_last_error(NULL), "no context") &&
                 mixrt_context_last_status(NULL) == MIXRT_STATUS_INVALID_ARGUMENT,
             "NULL context queries");

    /* status names: every status has its own non-empty name */
    for (int s = 0; s < MIXRT_STATUS_COUNT; s++) {
        const char *n = mixrt_status_string((mixrt_status)s);
        TU_CHECK(n && *n && strcmp(n, "unknown status"), "status %d has a name", s);
        for (int t = 0; t < s; t++)
            TU_CHECK(strcmp(n, mixrt_status_string((mixrt_status)t)), "status names %d/%d unique", s, t);
    }
    TU_CHECK(!strcmp(mixrt_status_string(MIXRT_STATUS_COUNT), "unknown status") &&
                 !strcmp(mixrt_status_string((mixrt_status)-1), "unknown status"),
             "out-of-range status");
    TU_CHECK(!strcmp(mixrt_version(), MIXRT_VERSION_STRING), "version");

    mixrt_context_destroy(ctx);
    mixrt_context_destroy(NULL);
    TU_CHECK(c.live == 0 && c.bytes == 0 && c.allocs == c.frees, "allocator balanced after destroy (live %ld)", c.live);
}

/* The default allocator's block cache: a freed block of 1 MiB or more comes back for the next
 * allocation of the same size (no fresh pages to fault in), not for another size, not while
 * paused, and not after a trim; the byte counts do not see it; kept plus live bytes stay under the
 * high-water mark of live bytes. */
static void test_block_cache(void) {
    mixrt_context_t ctx;
    TU_CHECK(mixrt_context_create(NULL, &ctx) == MIXRT_STATUS_OK, "context");
    const size_t big = (size_t)5 << 20, other = (size_t)3 << 20;
    /* Both live first: the high-water mark (8 MiB) then has room for a kept 5 MiB block. */
    unsigned char *a = mixrt_alloc(ctx, big), *b = mixrt_alloc(ctx, other);
    TU_CHECK(a != NULL && b != NULL, "5 and 3 MiB blocks");
    a[0] = 7, a[big - 1] = 9;
    mixrt_free(ctx, a, big);
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == other && ctx->cache.n == 1,
             "a freed block is kept and not in use (%zu bytes in use, %d kept)", mixrt_context_bytes_in_use(ctx),
             ctx->cache.n);
    unsigned char *c = mixrt_alloc(ctx, big);
    TU_CHECK(c == a && ctx->cache.n == 0, "the same size reuses the cached block (%p vs %p)", (void *)c, (void *)a);
    TU_CHECK(((uintptr_t)c & (((size_t)2 << 20) - 1)) == 0, "a reused 4 MiB+ block keeps its 2 MiB alignment");
    mixrt_free(ctx, c, big);
    /* Another size is not served from it: at the mark already, the kept block is freed for it. */
    unsigned char *o = mixrt_alloc(ctx, (size_t)2 << 20);
    TU_CHECK(o != NULL && ctx->cache.n == 0 && ctx->cache.total == 0,
             "a 2 MiB request beside a kept 5 MiB block at the mark: %d kept (%zu bytes)", ctx->cache.n,
             ctx->cache.total);
    mixrt_free(ctx, o, (size_t)2 << 20);
    mixrt_free(ctx, b, other);
    mixrt_context_cache_pause(ctx, true); /* empties it: the next block is fresh, and is not kept */
    unsigned char *d = mixrt_alloc(ctx, big);
    TU_CHECK(d != NULL, "block while paused");
    mixrt_free(ctx, d, big);
    mixrt_context_cache_pause(ctx, false);
    unsigned char *e = mixrt_alloc(ctx, other);
    TU_CHECK(e != NULL, "block after resume");
    mixrt_free(ctx, e, other);
    mixrt_context_trim(ctx);
    TU_CHECK(ctx->cache.n == 0 && ctx->cache.total == 0, "trim empties the cache (%d blocks, %zu bytes)",
             ctx->cache.n, ctx->cache.total);
    /* Bounded: blocks freed after being live together are all kept (they fit under the high-water
     * mark of live bytes); a request of a new size frees kept blocks, oldest first, so that kept
     * plus live bytes stay under that mark, which therefore never moves; at most the slot count. */
    void *blk[8];
    size_t sum = 0;
    for (int i = 0; i < 8; i++) blk[i] = mixrt_alloc(ctx, ((size_t)9 + (size_t)i) << 20), sum += ((size_t)9 + (size_t)i) << 20;
    for (int i = 0; i < 8; i++) mixrt_free(ctx, blk[i], ((size_t)9 + (size_t)i) << 20);
    TU_CHECK(ctx->cache.n == 8 && ctx->cache.total == sum, "eight blocks live together are kept: %d blocks, %zu bytes",
             ctx->cache.n, ctx->cache.total);
    size_t peak = ctx->bytes_peak;
    for (int r = 0; r < 6; r++) {
        size_t sz = ((size_t)20 + 7 * (size_t)r) << 20;
        void *x = mixrt_alloc(ctx, sz);
        TU_CHECK(x && mixrt_context_bytes_in_use(ctx) + ctx->cache.total <= peak,
                 "a %zu MiB block: %zu live + %zu kept bytes pass the mark %zu", sz >> 20,
                 mixrt_context_bytes_in_use(ctx), ctx->cache.total, peak);
        mixrt_free(ctx, x, sz);
    }
    TU_CHECK(ctx->bytes_peak == peak && ctx->cache.n >= 1, "the mark stays (%zu, was %zu), blocks still kept (%d)",
             ctx->bytes_peak, peak, ctx->cache.n);
    void *many[MIXRT_BLOCK_CACHE_SLOTS + 6];
    for (int i = 0; i < MIXRT_BLOCK_CACHE_SLOTS + 6; i++) many[i] = mixrt_alloc(ctx, (size_t)1 << 20);
    for (int i = 0; i < MIXRT_BLOCK_CACHE_SLOTS + 6; i++) mixrt_free(ctx, many[i], (size_t)1 << 20);
    TU_CHECK(ctx->cache.n <= MIXRT_BLOCK_CACHE_SLOTS, "at most the slot count kept (%d)", ctx->cache.n);
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "no bytes in use (%zu)", mixrt_context_bytes_in_use(ctx));
    mixrt_context_destroy(ctx); /* frees what is cached (LeakSanitizer would see a leak) */
}

#if !defined(__SANITIZE_ADDRESS__)
/* Resident bytes of this process (/proc/self/statm), 0 when unreadable. */
static size_t resident_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, res = 0;
    if (!f) return 0;
    if (fscanf(f, "%lu %lu", &size, &res) != 2) res = 0;
    fclose(f);
    return (size_t)res * (size_t)sysconf(_SC_PAGESIZE);
}
#endif

/* Blocks of 1 MiB and more leave the process when freed, whatever malloc's heap looks like:
 * after glibc has raised its mmap threshold (a 24 MiB block freed), 16 blocks of 3 MiB with small
 * live allocations between them would stay resident as heap holes; mapped whole, they go. Their
 * alignment (64 B, 2 MiB from 4 MiB on) and their last byte are checked too. */
static void test_mapped_blocks(void) {
#if defined(__SANITIZE_ADDRESS__)
    printf("test_mapped_blocks: not run under AddressSanitizer (big blocks stay with malloc there)\n");
#else
    mixrt_context_t ctx;
    TU_CHECK(mixrt_context_create(NULL, &ctx) == MIXRT_STATUS_OK, "context");
    mixrt_context_cache_pause(ctx, true); /* nothing kept: freed means given back */
    volatile unsigned char *raise = malloc((size_t)24 << 20);
    if (raise) raise[0] = 1;
    free((void *)raise);
    enum { N = 16 };
    const size_t sz = (size_t)3 << 20;
    unsigned char *blk[N];
    void *pin[N];
    size_t before = resident_bytes();
    for (int i = 0; i < N; i++) {
        blk[i] = mixrt_alloc(ctx, sz);
        pin[i] = malloc(64);
        TU_CHECK(blk[i] && pin[i] && (uintptr_t)blk[i] % 64 == 0, "3 MiB block %d, 64-byte aligned", i);
        if (blk[i]) memset(blk[i], 0x5a + i, sz);
    }
    size_t touched = resident_bytes();
    for (int i = 0; i < N; i++) mixrt_free(ctx, blk[i], sz);
    size_t after = resident_bytes();
    TU_CHECK(touched >= before + (size_t)40 * (1 << 20) && after + (size_t)40 * (1 << 20) <= touched,
             "48 MiB of freed blocks leave the process: resident %zu -> %zu -> %zu MiB", before >> 20, touched >> 20,
             after >> 20);
    for (int i = 0; i < N; i++) free(pin[i]);
    const size_t odd = ((size_t)5 << 20) + 1;
    unsigned char *h = mixrt_alloc(ctx, odd);
    TU_CHECK(h && ((uintptr_t)h & (((size_t)2 << 20) - 1)) == 0, "a 5 MiB + 1 block is 2 MiB aligned");
    if (h) {
        h[0] = 1, h[odd - 1] = 2;
        TU_CHECK(h[0] == 1 && h[odd - 1] == 2, "its first and last bytes hold");
    }
    mixrt_free(ctx, h, odd);
    /* Kept blocks serve any request they fit by up to 2x: a freed 6 MiB block comes back for
     * 4 MiB (and takes its free at that size), not for 2 MiB. */
    mixrt_context_cache_pause(ctx, false);
    const size_t six = (size_t)6 << 20, four = (size_t)4 << 20, two = (size_t)2 << 20;
    unsigned char *a = mixrt_alloc(ctx, six), *b = mixrt_alloc(ctx, six);
    TU_CHECK(a && b, "two 6 MiB blocks");
    mixrt_free(ctx, a, six);
    unsigned char *r = mixrt_alloc(ctx, four);
    TU_CHECK(r == a && ctx->cache.n == 0, "a kept 6 MiB block serves 4 MiB (%p vs %p, %d kept)", (void *)r, (void *)a,
             ctx->cache.n);
    if (r) memset(r, 3, four);
    mixrt_free(ctx, r, four);
    TU_CHECK(ctx->cache.n == 1 && ctx->cache.total >= six, "freed at 4 MiB, kept at its own %zu bytes", ctx->cache.total);
    unsigned char *t = mixrt_alloc(ctx, two);
    TU_CHECK(t && t != a, "not for 2 MiB (more than 2x)");
    mixrt_free(ctx, t, two);
    mixrt_free(ctx, b, six);
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "no bytes in use (%zu)", mixrt_context_bytes_in_use(ctx));
    mixrt_context_destroy(ctx);
#endif
}

static void test_fault_injection(void) {
    mixrt_context_t ctx;
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) {
        TU_CHECK(0, "context create");
        return;
    }
    /* the n-th allocation from now fails, once */
    mixrt_context_fail_alloc_after(ctx, 2, 0);
    void *a = mixrt_alloc(ctx, 8), *b = mixrt_alloc(ctx, 8), *c = mixrt_alloc(ctx, 8), *d = mixrt_alloc(ctx, 8);
    TU_CHECK(a && b && !c && d, "fail_alloc_after(2): third fails, fourth succeeds");
    TU_CHECK(mixrt_context_last_status(ctx) == MIXRT_STATUS_OUT_OF_MEMORY &&
                 strstr(mixrt_context_last_error(ctx), "out of memory"),
             "injected failure message: %s", mixrt_context_last_error(ctx));
    mixrt_free(ctx, a, 8);
    mixrt_free(ctx, b, 8);
    mixrt_free(ctx, d, 8);
    mixrt_context_fail_alloc_after(ctx, 0, 1); /* sticky: everything fails */
    a = mixrt_alloc(ctx, 8);
    b = mixrt_alloc(ctx, 8);
    TU_CHECK(!a && !b, "sticky failure");
    mixrt_context_fail_alloc_after(ctx, -1, 0);
    a = mixrt_alloc(ctx, 8);
    TU_CHECK(a != NULL, "n < 0 disables injection");
    mixrt_free(ctx, a, 8);
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "balanced");

    /* tensor_create fails cleanly at each of its allocations, then succeeds */
    int64_t dims[3] = {4, 5, 6};
    int succeeded = 0;
    for (long k = 0; k < 10 && !succeeded; k++) {
        for (int sticky = 0; sticky < 2; sticky++) {
            struct mixrt_tensor *t = (struct mixrt_tensor *)(uintptr_t)0x1; /* must stay untouched on failure */
            mixrt_context_clear_error(ctx);
            mixrt_context_fail_alloc_after(ctx, k, sticky);
            mixrt_status st = mixrt_tensor_create(ctx, MIXRT_DTYPE_BF16, 3, dims, &t);
            mixrt_context_fail_alloc_after(ctx, -1, 0);
            if (st == MIXRT_STATUS_OK) {
                TU_CHECK(t && t->nbytes == 240 && mixrt_tensor_numel(t) == 120, "tensor after %ld allocations", k);
                mixrt_tensor_destroy(ctx, t);
                succeeded = 1;
            } else {
                TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY, "fail at allocation %ld: status %d", k, (int)st);
                TU_CHECK(mixrt_context_last_status(ctx) == MIXRT_STATUS_OUT_OF_MEMORY &&
                             strstr(mixrt_context_last_error(ctx), "out of memory"),
                         "fail at allocation %ld: message '%s'", k, mixrt_context_last_error(ctx));
                TU_CHECK(t == (struct mixrt_tensor *)(uintptr_t)0x1, "out written on failure");
            }
            TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "leak after failing at allocation %ld: %zu bytes", k,
                     mixrt_context_bytes_in_use(ctx));
        }
    }
    TU_CHECK(succeeded, "tensor_create eventually succeeds");

    /* a user allocator that returns NULL on its own (not injected) */
    mixrt_context_destroy(ctx);
    struct counter cnt = {0};
    struct mixrt_allocator al = {count_alloc, count_free, &cnt};
    if (mixrt_context_create(&al, &ctx) != MIXRT_STATUS_OK) return;
    cnt.fail = 1;
    struct mixrt_tensor *t = NULL;
    TU_CHECK(mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, 3, dims, &t) == MIXRT_STATUS_OUT_OF_MEMORY && !t,
             "allocator returning NULL -> OUT_OF_MEMORY");
    cnt.fail = 0;
    mixrt_context_destroy(ctx);
    TU_CHECK(cnt.live == 0, "user allocator balanced (live %ld)", cnt.live);
}

static void test_arena(void) {
    mixrt_context_t ctx;
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return;
    struct mixrt_arena *ar = NULL;
    TU_CHECK(mixrt_arena_create(ctx, &ar) == MIXRT_STATUS_OK && ar, "arena create");
    if (!ar) return;
    int ok = 1;
    for (int i = 0; i < 2000; i++) {
        size_t size = (size_t)(tu_rand() % 300), align = (size_t)1 << (tu_rand() % 7);
        unsigned char *p = mixrt_arena_alloc(ar, size, align);
        if (!p || ((uintptr_t)p & (align - 1))) {
            ok = 0;
            break;
        }
        for (size_t k = 0; k < size; k++) ok &= p[k] == 0;
        memset(p, 0xee, size); /* must not disturb other allocations' zeroes */
    }
    TU_CHECK(ok, "arena allocations aligned and zeroed");
    unsigned char *bigp = mixrt_arena_alloc(ar, 1 << 20, 64);
    TU_CHECK(bigp && bigp[0] == 0 && bigp[(1 << 20) - 1] == 0, "big arena allocation");
    char *s = mixrt_arena_strdup(ar, "hello, arena");
    char *s2 = mixrt_arena_strndup(ar, "abcdef", 3);
    char *s3 = mixrt_arena_strdup(ar, NULL);
    TU_CHECK(s && !strcmp(s, "hello, arena"), "strdup");
    TU_CHECK(s2 && !strcmp(s2, "abc"), "strndup");
    TU_CHECK(s3 && !strcmp(s3, ""), "strdup(NULL) is empty");
    int *zs = mixrt_arena_calloc(ar, 100, sizeof(int));
    TU_CHECK(zs && zs[0] == 0 && zs[99] == 0 && ((uintptr_t)zs & 15) == 0, "arena calloc");
    TU_CHECK(mixrt_arena_calloc(ar, SIZE_MAX / 4, 8) == NULL, "arena calloc overflow");
    TU_CHECK(mixrt_arena_alloc(ar, SIZE_MAX - 10, 8) == NULL &&
                 mixrt_context_last_status(ctx) == MIXRT_STATUS_OUT_OF_MEMORY,
             "arena huge allocation fails");
    TU_CHECK(mixrt_arena_bytes(ar) >= (1 << 20), "arena bytes %zu", mixrt_arena_bytes(ar));
    TU_CHECK(mixrt_context_bytes_in_use(ctx) > mixrt_arena_bytes(ar), "arena memory is accounted on ctx");
    /* injected failure inside the arena: NULL, message, arena still usable */
    mixrt_context_fail_alloc_after(ctx, 0, 1);
    TU_CHECK(mixrt_arena_alloc(ar, 1 << 21, 8) == NULL && mixrt_context_last_status(ctx) == MIXRT_STATUS_OUT_OF_MEMORY,
             "arena alloc under injected OOM");
    mixrt_context_fail_alloc_after(ctx, -1, 0);
    TU_CHECK(mixrt_arena_strdup(ar, "still fine") != NULL, "arena usable after a failure");
    mixrt_arena_destroy(ar);
    mixrt_arena_destroy(NULL);
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "arena destroy frees everything (%zu left)",
             mixrt_context_bytes_in_use(ctx));
    mixrt_context_fail_alloc_after(ctx, 0, 0);
    ar = (struct mixrt_arena *)(uintptr_t)0x1;
    TU_CHECK(mixrt_arena_create(ctx, &ar) == MIXRT_STATUS_OUT_OF_MEMORY && ar == (struct mixrt_arena *)(uintptr_t)0x1,
             "arena create under OOM");
    mixrt_context_destroy(ctx);
}

static void test_tensors(void) {
    mixrt_context_t ctx;
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return;
    struct mixrt_tensor *t = NULL;
    char buf[128];
    int64_t d23[2] = {2, 3};
    TU_CHECK(mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, 2, d23, &t) == MIXRT_STATUS_OK, "create [2,3]");
    if (t) {
        TU_CHECK(mixrt_tensor_numel(t) == 6 && t->nbytes == 24 && t->data && (t->flags & MIXRT_TENSOR_OWNS_DATA),
                 "[2,3] f32 layout");
        TU_CHECK(((float *)t->data)[5] == 0.0f, "zeroed");
        TU_CHECK(!strcmp(mixrt_tensor_desc(buf, sizeof(buf), t), "f32 [2,3]"), "desc: %s", buf);
        struct mixrt_tensor cp;
        ((float *)t->data)[4] = 7.5f;
        TU_CHECK(mixrt_tensor_copy(ctx, &cp, t) == MIXRT_STATUS_OK && ((float *)cp.data)[4] == 7.5f &&
                     cp.data != t->data,
                 "deep copy");
        mixrt_tensor_release(ctx, &cp);
        mixrt_tensor_destroy(ctx, t);
    }
    t = NULL;
    TU_CHECK(mixrt_tensor_create(ctx, MIXRT_DTYPE_I64, 0, NULL, &t) == MIXRT_STATUS_OK && t &&
                 mixrt_tensor_numel(t) == 1 && t->nbytes == 8,
             "rank 0 scalar");
    mixrt_tensor_destroy(ctx, t);
    int64_t d05[2] = {0, 5};
    t = NULL;
    TU_CHECK(mixrt_tensor_create(ctx, MIXRT_DTYPE_BF16, 2, d05, &t) == MIXRT_STATUS_OK && t && t->data == NULL &&
                 t->nbytes == 0 && mixrt_tensor_numel(t) == 0,
             "zero-size tensor has no data");
    mixrt_tensor_destroy(ctx, t);
    t = NULL;
    TU_CHECK(mixrt_tensor_create(ctx, MIXRT_DTYPE_STRING, 1, d23, &t) == MIXRT_STATUS_OK && t &&
                 (t->flags & MIXRT_TENSOR_OWNS_STRINGS),
             "string tensor");
    if (t) {
        struct mixrt_string *s = t->data;
        s[1].ptr = mixrt_alloc(ctx, 4);
        if (s[1].ptr) {
            memcpy(s[1].ptr, "abc", 4);
            s[1].len = 3;
        }
        mixrt_tensor_destroy(ctx, t); /* frees the owned element too */
    }

    /* hostile dims: overflow, negative, rank, dtype */
    struct {
        mixrt_dtype dt;
        int rank;
        int64_t dims[4];
        mixrt_status want;
        const char *what;
    } bad[] = {
        {MIXRT_DTYPE_F32, 2, {(int64_t)1 << 62, 4}, MIXRT_STATUS_INVALID_ARGUMENT, "[2^62,4] element count overflows"},
        {MIXRT_DTYPE_F32, 2, {(int64_t)1 << 62, 1}, MIXRT_STATUS_INVALID_ARGUMENT, "[2^62,1] f32 byte size overflows"},
        {MIXRT_DTYPE_U8, 3, {INT64_MAX, INT64_MAX, 0}, MIXRT_STATUS_INVALID_ARGUMENT, "overflow before a zero dim"},
        {MIXRT_DTYPE_U8, 4, {65536, 65536, 65536, 65536}, MIXRT_STATUS_INVALID_ARGUMENT, "2^64 elements"},
        {MIXRT_DTYPE_F16, 2, {3, -1}, MIXRT_STATUS_INVALID_ARGUMENT, "negative dim"},
        {MIXRT_DTYPE_F16, 1, {INT64_MIN}, MIXRT_STATUS_INVALID_ARGUMENT, "INT64_MIN dim"},
        {MIXRT_DTYPE_F32, -1, {1}, MIXRT_STATUS_INVALID_ARGUMENT, "negative rank"},
        {MIXRT_DTYPE_F32, MIXRT_MAX_RANK + 1, {1}, MIXRT_STATUS_INVALID_ARGUMENT, "rank 17"},
        {MIXRT_DTYPE_UNDEFINED, 1, {1}, MIXRT_STATUS_UNSUPPORTED_DTYPE, "undefined dtype"},
        {MIXRT_DTYPE_C64, 1, {1}, MIXRT_STATUS_UNSUPPORTED_DTYPE, "complex64"},
        {MIXRT_DTYPE_I4, 1, {1}, MIXRT_STATUS_UNSUPPORTED_DTYPE, "int4"},
        {(mixrt_dtype)999, 1, {1}, MIXRT_STATUS_UNSUPPORTED_DTYPE, "dtype 999"},
    };
    int64_t rank17[MIXRT_MAX_RANK + 1];
    for (int i = 0; i <= MIXRT_MAX_RANK; i++) rank17[i] = 1;
    for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
        t = (struct mixrt_tensor *)(uintptr_t)0x1;
        mixrt_context_clear_error(ctx);
        mixrt_status st = mixrt_tensor_create(ctx, bad[k].dt, bad[k].rank, bad[k].rank > 4 ? rank17 : bad[k].dims, &t);
        TU_CHECK(st == bad[k].want, "%s: status %d, want %d", bad[k].what, (int)st, (int)bad[k].want);
        TU_CHECK(t == (struct mixrt_tensor *)(uintptr_t)0x1, "%s: out written", bad[k].what);
        TU_CHECK(mixrt_context_last_status(ctx) == bad[k].want && *mixrt_context_last_error(ctx), "%s: message '%s'",
                 bad[k].what, mixrt_context_last_error(ctx));
        TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "%s: leak", bad[k].what);
    }
    t = NULL;
    mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, 2, bad[0].dims, &t);
    TU_CHECK(strstr(mixrt_context_last_error(ctx), "[4611686018427387904,4]") != NULL,
             "overflow message names the dims: %s", mixrt_context_last_error(ctx));
    size_t n = 0;
    TU_CHECK(!mixrt_dims_numel(2, bad[0].dims, &n) && mixrt_dims_numel(2, d23, &n) && n == 6, "mixrt_dims_numel");
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "tensors balanced");
    mixrt_context_destroy(ctx);
}

static void test_dtype_names(void) {
    int nsupported = 0;
    for (int i = 0; i < MIXRT_DTYPE_COUNT; i++) {
        mixrt_dtype dt = (mixrt_dtype)i, back = MIXRT_DTYPE_COUNT;
        const char *name = mixrt_dtype_name(dt);
        TU_CHECK(name && *name && strncmp(name, "dtype(", 6), "dtype %d has a name", i);
        for (int j = 0; j < i; j++)
            TU_CHECK(strcmp(name, mixrt_dtype_name((mixrt_dtype)j)), "names %d/%d unique", i, j);
        if (i == MIXRT_DTYPE_UNDEFINED) {
            TU_CHECK(mixrt_dtype_from_name(name, &back) == -1, "'undefined' does not parse as a dtype");
        } else {
            TU_CHECK(mixrt_dtype_from_name(name, &back) == 0 && back == dt, "from_name(\"%s\") -> %d, want %d", name,
                     (int)back, i);
        }
        /* traits agree with each other */
        int fl = mixrt_dtype_is_float(dt), in = mixrt_dtype_is_int(dt), sup = mixrt_dtype_is_supported(dt);
        size_t sz = mixrt_dtype_size(dt);
        TU_CHECK(!(fl && in), "%s: float and int", name);
        TU_CHECK(!(fl || in) || sup, "%s: numeric but unsupported", name);
        TU_CHECK(sup ? sz > 0 : sz == 0, "%s: supported=%d size=%zu", name, sup, sz);
        nsupported += sup;
    }
    TU_CHECK(nsupported == 14, "14 supported dtypes (4 floats, 8 ints, bool, string), got %d", nsupported);
    static const struct {
        const char *name;
        mixrt_dtype dt;
        size_t size;
    } known[] = {
        {"f32", MIXRT_DTYPE_F32, 4},       {"float32", MIXRT_DTYPE_F32, 4},
        {"float", MIXRT_DTYPE_F32, 4},     {"bf16", MIXRT_DTYPE_BF16, 2},
        {"bfloat16", MIXRT_DTYPE_BF16, 2}, {"f16", MIXRT_DTYPE_F16, 2},
        {"float16", MIXRT_DTYPE_F16, 2},   {"half", MIXRT_DTYPE_F16, 2},
        {"f64", MIXRT_DTYPE_F64, 8},       {"double", MIXRT_DTYPE_F64, 8},
        {"int64", MIXRT_DTYPE_I64, 8},     {"i8", MIXRT_DTYPE_I8, 1},
        {"uint16", MIXRT_DTYPE_U16, 2},    {"u64", MIXRT_DTYPE_U64, 8},
        {"bool", MIXRT_DTYPE_BOOL, 1},     {"string", MIXRT_DTYPE_STRING, sizeof(struct mixrt_string)},
    };
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
        mixrt_dtype dt = MIXRT_DTYPE_UNDEFINED;
        TU_CHECK(mixrt_dtype_from_name(known[k].name, &dt) == 0 && dt == known[k].dt &&
                     mixrt_dtype_size(dt) == known[k].size,
                 "'%s'", known[k].name);
    }
    mixrt_dtype untouched = MIXRT_DTYPE_F64;
    static const char *const junk[] = {"", "F32", "float33", "f32 ", "bf", "undefined", "dtype(1)"};
    for (size_t k = 0; k < sizeof(junk) / sizeof(junk[0]); k++)
        TU_CHECK(mixrt_dtype_from_name(junk[k], &untouched) == -1 && untouched == MIXRT_DTYPE_F64, "'%s' rejected",
                 junk[k]);
    TU_CHECK(mixrt_dtype_from_name(NULL, &untouched) == -1, "NULL name");
    TU_CHECK(!strcmp(mixrt_dtype_name((mixrt_dtype)99), "dtype(99)") &&
                 !strcmp(mixrt_dtype_name((mixrt_dtype)-3), "dtype(-3)"),
             "unknown dtype names");
    TU_CHECK(mixrt_dtype_size((mixrt_dtype)99) == 0 && !mixrt_dtype_is_float((mixrt_dtype)-1), "unknown dtype traits");
}

static void test_dims_str(void) {
    char buf[64];
    int64_t d[4] = {2, 3, 224, 224};
    TU_CHECK(!strcmp(mixrt_dims_str(buf, sizeof(buf), 4, d), "[2,3,224,224]"), "dims: %s", buf);
    TU_CHECK(!strcmp(mixrt_dims_str(buf, sizeof(buf), 0, d), "[]"), "rank 0: %s", buf);
    int64_t e[3] = {-1, INT64_MIN, INT64_MAX};
    TU_CHECK(!strcmp(mixrt_dims_str(buf, sizeof(buf), 3, e), "[-1,-9223372036854775808,9223372036854775807]"),
             "extreme dims: %s", buf);
    /* truncation: bounded and NUL-terminated at every buffer size */
    for (size_t size = 1; size < 20; size++) {
        char small[32];
        memset(small, 'Z', sizeof(small));
        mixrt_dims_str(small, size, 4, d);
        TU_CHECK(strlen(small) < size && small[size] == 'Z' && !strncmp(small, "[2,3,224,224]", strlen(small)),
                 "size %zu: '%s'", size, small);
    }
    buf[0] = 'Q';
    mixrt_dims_str(buf, 0, 4, d);
    TU_CHECK(buf[0] == 'Q', "size 0 writes nothing");
}

int main(void) {
    test_block_cache();
    test_mapped_blocks();
    tu_seed(7);
    test_context();
    test_fault_injection();
    test_arena();
    test_tensors();
    test_dtype_names();
    test_dims_str();
    return tu_finish("test_core");
}
