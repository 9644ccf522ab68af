/* fuzz_plan.c - libFuzzer target for plan files: any byte string given to the plan loader
 * must either load or fail with a status and a message naming the input, never crash,
 * leak or read outside the input, and never write the out-struct on failure. A loaded
 * plan must only point inside the input.
 *
 * Each input is tried three ways: as is; with every checksum recomputed
 * (mixrt_plan_fix_checksums on a copy), so mutations get past the checksums to the field
 * checks; and with the file size field also set to the input's size, so inserting or
 * erasing bytes does not stop at the size check either.
 *
 * The loader under test is FUZZ_LOAD below; set FUZZ_PLAN_ENGINE to 1 to fuzz the full
 * engine loader (mixrt_engine_load_buffer(ctx, data, size, what, &engine)) instead of the
 * container alone. Allocation failures are injected like fuzz_onnx does (the container
 * alone allocates nothing): MIXRT_FUZZ_OOM=0 off, =all every allocation in turn (corpus
 * replay), =N allocation N only; by default one allocation picked from the input's hash.
 * The seeds in fuzz/corpus_plan are written by the unit test:
 *   MIXRT_PLAN_WRITE_CORPUS=fuzz/corpus_plan MIXRT_SOURCE_DIR=$PWD build/tests/test_plan_file
 * (engine_*.plan by test_engine the same way; engine_packed.plan, a version-2 plan with a
 * PACKED section, by test_plan_packed in a oneDNN build). */
#ifndef FUZZ_PLAN_ENGINE
#define FUZZ_PLAN_ENGINE 1
#endif

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/plan_file.h"
#include "mixrt/mixrt.h"
#if FUZZ_PLAN_ENGINE
#include "engine/engine_impl.h"
#endif

#define INPUT_NAME "fuzz input"

#define HARNESS_CHECK(cond, ...)                                                                                     \
    do {                                                                                                             \
        if (!(cond)) {                                                                                               \
            fprintf(stderr, "fuzz_plan: invariant broken at line %d (%s, allocation failure at #%ld): ", __LINE__,  \
                    g_variant, g_fail_after);                                                                        \
            fprintf(stderr, __VA_ARGS__);                                                                            \
            fputc('\n', stderr);                                                                                     \
            abort();                                                                                                 \
        }                                                                                                            \
    } while (0)

static const char *g_variant = "raw";
static long g_fail_after = -1;

/* ---- the loader under test ---- */

#if FUZZ_PLAN_ENGINE
typedef mixrt_engine_t loaded_t;
static mixrt_status fuzz_load(mixrt_context_t ctx, const uint8_t *data, size_t size, loaded_t *out) {
    return mixrt_engine_load_buffer(ctx, data, size, INPUT_NAME, out);
}
static void fuzz_check_loaded(loaded_t *l, const uint8_t *data, size_t size) {
    (void)data, (void)size;
    size_t n_in = mixrt_engine_input_count(*l), n_out = mixrt_engine_output_count(*l);
    struct mixrt_value_info vi;
    for (size_t i = 0; i < n_in; i++)
        HARNESS_CHECK(mixrt_engine_get_input(*l, i, &vi) == MIXRT_STATUS_OK && vi.name, "input %zu", i);
    for (size_t i = 0; i < n_out; i++)
        HARNESS_CHECK(mixrt_engine_get_output(*l, i, &vi) == MIXRT_STATUS_OK && vi.name, "output %zu", i);
}
static void fuzz_release(mixrt_context_t ctx, loaded_t *l) {
    (void)ctx;
    mixrt_engine_destroy(*l);
}
#else
typedef struct mixrt_plan_file loaded_t;
static mixrt_status fuzz_load(mixrt_context_t ctx, const uint8_t *data, size_t size, loaded_t *out) {
    return mixrt_plan_open_buffer(ctx, data, size, INPUT_NAME, out);
}
static void check_string(const char *s, size_t cap, const char *what) {
    size_t n = strnlen(s, cap);
    HARNESS_CHECK(n < cap, "%s is not NUL-terminated", what);
    for (size_t i = 0; i < n; i++) HARNESS_CHECK(s[i] >= 0x20 && s[i] <= 0x7e, "%s has byte 0x%02x", what, s[i]);
}
static void fuzz_check_loaded(loaded_t *f, const uint8_t *data, size_t size) {
    HARNESS_CHECK(f->data == data && f->size == size && f->map == NULL, "plan does not describe the input");
    HARNESS_CHECK(f->format_version >= MIXRT_PLAN_FORMAT_MIN_VERSION && f->format_version <= MIXRT_PLAN_FORMAT_VERSION,
                  "version %u accepted", f->format_version);
    HARNESS_CHECK(f->n_sections <= MIXRT_PLAN_MAX_SECTIONS, "%zu sections", f->n_sections);
    check_string(f->ident.build_id, sizeof f->ident.build_id, "build id");
    check_string(f->ident.target, sizeof f->ident.target, "target");
    check_string(f->ident.mixrt_version, sizeof f->ident.mixrt_version, "mixrt version");
    for (size_t i = 0; i < f->n_sections; i++) {
        const struct mixrt_plan_section *s = &f->sections[i];
        const uint8_t *d = s->data;
        HARNESS_CHECK(d && d >= data && (size_t)(d - data) <= size && s->size <= size - (size_t)(d - data),
                      "section #%zu lies outside the input", i);
        HARNESS_CHECK((size_t)(d - data) % MIXRT_PLAN_ALIGN == 0, "section #%zu at offset %zu", i, (size_t)(d - data));
        HARNESS_CHECK(mixrt_plan_section_name(s->kind) && mixrt_plan_find(f, s->kind) == s, "section #%zu kind %u", i,
                      s->kind);
        volatile uint8_t sink = 0; /* touch the first and last byte: ASan checks the range */
        if (s->size) sink ^= d[0] ^ d[s->size - 1];
        (void)sink;
    }
}
static void fuzz_release(mixrt_context_t ctx, loaded_t *f) { mixrt_plan_close(ctx, f); }
#endif

/* ---- harness ---- */

/* Counts allocations (to pick one to fail) and live bytes (to find leaks). */
struct counting {
    size_t allocs, live;
};
static void *count_alloc(void *user, size_t size, size_t align) {
    struct counting *c = user;
    if (size > ((size_t)1 << 30)) return NULL; /* like malloc under pressure, not an ASan abort */
    if (align < sizeof(void *)) align = sizeof(void *);
    void *p = aligned_alloc(align, (size + align - 1) / align * align + (size == 0 ? align : 0));
    if (!p) return NULL;
    c->allocs++;
    c->live += size;
    return p;
}
static void count_free(void *user, void *ptr, size_t size) {
    struct counting *c = user;
    if (!ptr) return;
    c->live -= size;
    free(ptr);
}

/* One load; returns the number of allocations it made when it succeeded, else 0. */
static size_t load_once(const uint8_t *data, size_t size, long fail_after) {
    struct counting c = {0, 0};
    struct mixrt_allocator a = {count_alloc, count_free, &c};
    mixrt_context_t ctx = NULL;
    if (mixrt_context_create(&a, &ctx) != MIXRT_STATUS_OK) return 0;
    mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR);
    size_t base_live = c.live, base_allocs = c.allocs;
    g_fail_after = fail_after;
    if (fail_after >= 0) mixrt_context_fail_alloc_after(ctx, fail_after, 1);
    loaded_t out, sentinel;
    memset(&out, 0xa5, sizeof out);
    memcpy(&sentinel, &out, sizeof out);
    mixrt_status st = fuzz_load(ctx, data, size, &out);
    size_t made = c.allocs - base_allocs;
    mixrt_context_fail_alloc_after(ctx, -1, 0);
    if (st != MIXRT_STATUS_OK) {
        const char *msg = mixrt_context_last_error(ctx);
        HARNESS_CHECK(msg && msg[0], "failure (%s) without a message", mixrt_status_string(st));
        HARNESS_CHECK(FUZZ_PLAN_ENGINE || st == MIXRT_STATUS_OUT_OF_MEMORY || strstr(msg, INPUT_NAME),
                      "message does not name the input: %s", msg);
        HARNESS_CHECK(!memcmp(&out, &sentinel, sizeof out), "out written on failure (%s)", msg);
        HARNESS_CHECK(c.live == base_live, "failed load leaked %zu bytes (%s)", c.live - base_live, msg);
        made = 0;
    } else {
        fuzz_check_loaded(&out, data, size);
        fuzz_release(ctx, &out);
        HARNESS_CHECK(c.live == base_live, "release left %zu bytes allocated", c.live - base_live);
    }
    mixrt_context_destroy(ctx);
    HARNESS_CHECK(c.live == 0, "context destroy left %zu bytes allocated", c.live);
    return made;
}

static int oom_mode(void) {
    static int mode = -4; /* -1 off, -2 hashed, -3 every allocation, >= 0 that one; -4 unread */
    if (mode == -4) {
        const char *e = getenv("MIXRT_FUZZ_OOM");
        mode = -2;
        if (e && !strcmp(e, "0")) mode = -1;
        else if (e && !strcmp(e, "all")) mode = -3;
        else if (e && *e >= '0' && *e <= '9') mode = atoi(e);
    }
    return mode;
}

static void load_all_ways(const uint8_t *data, size_t size, const char *variant) {
    g_variant = variant;
    size_t n = load_once(data, size, -1);
    int mode = oom_mode();
    if (mode >= 0) {
        load_once(data, size, mode);
    } else if (mode == -3) {
        for (size_t k = 0; k < n; k++) load_once(data, size, (long)k);
    } else if (mode == -2 && n > 0) {
        uint64_t h = 1469598103934665603ull; /* FNV-1a of the input picks the allocation */
        for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ull;
        load_once(data, size, (long)(h % n));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    load_all_ways(data, size, "raw");
    if (size < MIXRT_PLAN_HEADER_SIZE) return 0;
    /* Exact-size copies, so ASan still sees a read past the end. */
    uint8_t *copy = malloc(size);
    if (!copy) return 0;
    memcpy(copy, data, size);
    if (mixrt_plan_fix_checksums(copy, size)) load_all_ways(copy, size, "checksums fixed");
    memcpy(copy, data, size);
    for (int i = 0; i < 8; i++) copy[MIXRT_PLAN_OFF_FILE_SIZE + i] = (uint8_t)((uint64_t)size >> (8 * i));
    if (mixrt_plan_fix_checksums(copy, size)) load_all_ways(copy, size, "size and checksums fixed");
    free(copy);
    return 0;
}
