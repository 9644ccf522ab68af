/* arena.c - per-graph bump allocator. Chunks come from the context allocator and are
 * freed together; memory handed out is zeroed. */
#include <string.h>

#include "core/core.h"

struct arena_chunk {
    struct arena_chunk *next;
    size_t size, used;
    /* data follows, 64-byte aligned */
};

#define CHUNK_HDR 64
#define CHUNK_MIN (64 * 1024)

struct mixrt_arena {
    mixrt_context_t ctx;
    struct arena_chunk *head;
    size_t total;
};

mixrt_status mixrt_arena_create(mixrt_context_t ctx, struct mixrt_arena **out) {
    struct mixrt_arena *a = mixrt_calloc(ctx, 1, sizeof(*a));
    if (!a) return MIXRT_STATUS_OUT_OF_MEMORY;
    a->ctx = ctx;
    *out = a;
    return MIXRT_STATUS_OK;
}

void mixrt_arena_destroy(struct mixrt_arena *a) {
    if (!a) return;
    struct arena_chunk *c = a->head;
    while (c) {
        struct arena_chunk *n = c->next;
        mixrt_free(a->ctx, c, CHUNK_HDR + c->size);
        c = n;
    }
    mixrt_free(a->ctx, a, sizeof(*a));
}

void *mixrt_arena_alloc(struct mixrt_arena *a, size_t size, size_t align) {
    if (align == 0) align = 1;
    struct arena_chunk *c = a->head;
    if (c) {
        size_t off = (c->used + align - 1) & ~(align - 1);
        if (off <= c->size && size <= c->size - off) {
            c->used = off + size;
            return (char *)c + CHUNK_HDR + off;
        }
    }
    size_t want = size > CHUNK_MIN ? size : CHUNK_MIN, total;
    if (!mixrt_add_size(want, CHUNK_HDR, &total)) {
        mixrt_error(a->ctx, MIXRT_STATUS_OUT_OF_MEMORY, "arena allocation of %zu bytes overflows", size);
        return NULL;
    }
    c = mixrt_alloc(a->ctx, total);
    if (!c) return NULL;
    memset(c, 0, total);
    c->size = want;
    c->used = size;
    a->total += total;
    /* A big one-off allocation goes behind the current chunk so its free space stays usable. */
    if (a->head && size > CHUNK_MIN) {
        c->next = a->head->next;
        a->head->next = c;
    } else {
        c->next = a->head;
        a->head = c;
    }
    return (char *)c + CHUNK_HDR;
}

void *mixrt_arena_calloc(struct mixrt_arena *a, size_t count, size_t size) {
    size_t total;
    if (!mixrt_mul_size(count, size, &total)) {
        mixrt_error(a->ctx, MIXRT_STATUS_OUT_OF_MEMORY, "arena allocation of %zu x %zu bytes overflows",
                    count, size);
        return NULL;
    }
    return mixrt_arena_alloc(a, total, 16);
}

char *mixrt_arena_strndup(struct mixrt_arena *a, const char *s, size_t n) {
    char *p = mixrt_arena_alloc(a, n + 1, 1);
    if (!p) return NULL;
    if (n) memcpy(p, s, n);
    p[n] = 0;
    return p;
}

char *mixrt_arena_strdup(struct mixrt_arena *a, const char *s) {
    return mixrt_arena_strndup(a, s ? s : "", s ? strlen(s) : 0);
}

size_t mixrt_arena_bytes(const struct mixrt_arena *a) { return a->total; }
