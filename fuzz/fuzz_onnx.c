/* fuzz_onnx.c - libFuzzer target for the ONNX importer: any byte string given to
 * mixrt_model_load_buffer must either load or fail with a status and a message, never
 * crash, leak, or break the API contract (out-pointer untouched on failure, every byte
 * allocated through the context given back by destroy, sized frees that match).
 *
 * Each input that loads is loaded a second time with an allocation failure injected at
 * a point picked from the input's hash, so out-of-memory cleanup paths get fuzzed too.
 * Environment: MIXRT_FUZZ_OOM=0 turns that off; MIXRT_FUZZ_OOM=all tries every
 * allocation of the load in turn (for replaying a corpus); MIXRT_FUZZ_OOM=N injects at
 * allocation N only (to reproduce a report); MIXRT_FUZZ_TRACE_BLOCK=S prints the stack
 * of the allocator call that makes block #S (as named in a leak report);
 * MIXRT_FUZZ_IGNORE_LEAKS=1 skips the byte-count checks (to look for other bugs while a
 * known leak is open; run with -detect_leaks=0 too); MIXRT_FUZZ_LOG=1 lets warnings
 * through to stderr (silenced by default: they flood the fuzzer's output);
 * MIXRT_FUZZ_RUN=1 also runs each model that loads with small fixed-shape inputs (the
 * reference executor and kernels then get fuzzed too; slower per input). */
static long g_trace_block = -1;
static int g_ignore_leaks;
static int g_log;
static int g_run;
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sanitizer/common_interface_defs.h>

#include "mixrt/mixrt.h"
#include "mixrt/mixrt_onnx.h"

static long g_fail_after = -1; /* the injected allocation failure of the load being checked */

/* Harness invariant violations stop the run loudly, so libFuzzer saves the input. */
#define HARNESS_CHECK(cond, ...)                                                                                     \
    do {                                                                                                             \
        if (!(cond)) {                                                                                               \
            fprintf(stderr, "fuzz_onnx: invariant broken at line %d (allocation failure injected at #%ld): ",        \
                    __LINE__, g_fail_after);                                                                         \
            fprintf(stderr, __VA_ARGS__);                                                                            \
            fputc('\n', stderr);                                                                                     \
            abort();                                                                                                 \
        }                                                                                                            \
    } while (0)

/* A counting allocator that keeps each block's size in front of it, so a free with a
 * size other than the one allocated is caught, not just leaks; live blocks are linked so
 * a leak report can say which allocations (by serial number and size) were never freed. */
struct block {
    struct block *prev, *next;
    size_t size, align, serial;
};

struct counting {
    size_t live_bytes;
    size_t allocs;
    struct block live; /* list head */
};

#define HEADER 64 /* >= sizeof(struct block), and keeps 64-byte alignment for small aligns */
_Static_assert(sizeof(struct block) <= HEADER, "block header must fit");

static void *counting_alloc(void *user, size_t size, size_t align) {
    struct counting *c = user;
    if (align < HEADER) align = HEADER;
    /* Like malloc under memory pressure: a fuzzed model may ask for terabytes, and the
     * library must turn that into OUT_OF_MEMORY, not have ASan abort the process. */
    if (size > ((size_t)1 << 30)) return NULL;
    size_t total = (size + align + align - 1) / align * align;
    unsigned char *base = aligned_alloc(align, total);
    if (!base) return NULL;
    struct block *b = (struct block *)(void *)(base + align - HEADER);
    b->size = size;
    b->align = align;
    b->serial = c->allocs++;
    if ((long)b->serial == g_trace_block) {
        fprintf(stderr, "fuzz_onnx: block #%zu (%zu bytes) allocated here:\n", b->serial, size);
        __sanitizer_print_stack_trace();
    }
    b->prev = &c->live;
    b->next = c->live.next;
    c->live.next->prev = b;
    c->live.next = b;
    c->live_bytes += size;
    return base + align;
}

static void counting_free(void *user, void *ptr, size_t size) {
    struct counting *c = user;
    if (!ptr) return;
    struct block *b = (struct block *)(void *)((unsigned char *)ptr - HEADER);
    HARNESS_CHECK(b->size == size, "block #%zu allocated with %zu bytes freed as %zu bytes", b->serial, b->size, size);
    b->prev->next = b->next;
    b->next->prev = b->prev;
    c->live_bytes -= size;
    free((unsigned char *)ptr - b->align);
}

static void print_live(const struct counting *c) {
    int shown = 0;
    for (const struct block *b = c->live.next; b != &c->live && shown < 20; b = b->next, shown++)
        fprintf(stderr, "fuzz_onnx: still allocated: block #%zu (%zu bytes)\n", b->serial, b->size);
}

/* Runs the model once with deterministic inputs when every input is a tensor with a
 * supported dtype and fixed dims of at most 4096 elements; any status is fine, but a
 * failure must leave a message and no outputs, and outputs must be destroyable. */
static void run_model(mixrt_context_t ctx, mixrt_model_t m) {
    enum { MAX_IN = 16 };
    size_t n_in = mixrt_model_input_count(m), n_out = mixrt_model_output_count(m);
    if (n_in > MAX_IN || n_out > 64) return;
    struct mixrt_tensor *in[MAX_IN] = {0};
    const char *names[MAX_IN];
    struct mixrt_tensor *out[64] = {0};
    size_t made = 0;
    for (size_t i = 0; i < n_in; i++) {
        struct mixrt_value_info vi;
        if (mixrt_model_get_input(m, i, &vi) != MIXRT_STATUS_OK) goto done;
        if (vi.has_initializer) continue;
        if (vi.rank < 0 || !mixrt_dtype_is_supported(vi.dtype) || vi.dtype == MIXRT_DTYPE_STRING) goto done;
        int64_t numel = 1;
        for (int d = 0; d < vi.rank; d++) {
            if (vi.dims[d] < 0 || vi.dims[d] > 4096) goto done;
            numel *= vi.dims[d];
            if (numel > 4096) goto done;
        }
        if (mixrt_tensor_create(ctx, vi.dtype, vi.rank, vi.dims, &in[made]) != MIXRT_STATUS_OK) goto done;
        double v[4096];
        for (int64_t k = 0; k < numel; k++) v[k] = (double)((k * 7 + (int64_t)i) % 5) - 1.0; /* -1..3 */
        if (mixrt_dtype_is_float(vi.dtype) || mixrt_dtype_is_int(vi.dtype) || vi.dtype == MIXRT_DTYPE_BOOL)
            mixrt_convert(in[made]->data, vi.dtype, v, MIXRT_DTYPE_F64, (size_t)numel);
        names[made++] = vi.name;
    }
    mixrt_status st = mixrt_model_run(m, made, names, (const struct mixrt_tensor *const *)in, out);
    if (st != MIXRT_STATUS_OK) {
        const char *msg = mixrt_context_last_error(ctx);
        HARNESS_CHECK(msg && msg[0], "run failed (status %s) without a message", mixrt_status_string(st));
        for (size_t i = 0; i < n_out; i++) HARNESS_CHECK(out[i] == NULL, "run failed but wrote output %zu", i);
    } else {
        for (size_t i = 0; i < n_out; i++) {
            HARNESS_CHECK(out[i] != NULL, "run succeeded without output %zu", i);
            mixrt_tensor_destroy(ctx, out[i]);
        }
    }
done:
    for (size_t i = 0; i < made; i++) mixrt_tensor_destroy(ctx, in[i]);
}

static void check_info(const struct mixrt_value_info *vi, const char *what, size_t i) {
    HARNESS_CHECK(vi->name != NULL, "%s %zu has no name", what, i);
    HARNESS_CHECK(vi->rank >= -1 && vi->rank <= MIXRT_MAX_RANK, "%s %zu rank %d", what, i, vi->rank);
    volatile size_t sink = strlen(vi->name) + (size_t)mixrt_dtype_size(vi->dtype);
    sink += strlen(mixrt_dtype_name(vi->dtype));
    for (int d = 0; d < vi->rank; d++)
        if (vi->dim_params[d]) sink += strlen(vi->dim_params[d]);
    (void)sink;
}

/* Loads once; returns the number of allocations the load made (0 when it failed). */
static size_t load_once(const uint8_t *data, size_t size, long fail_after) {
    struct counting c = {0, 0, {NULL, NULL, 0, 0, 0}};
    c.live.next = c.live.prev = &c.live;
    struct mixrt_allocator a = {counting_alloc, counting_free, &c};
    mixrt_context_t ctx = NULL;
    if (mixrt_context_create(&a, &ctx) != MIXRT_STATUS_OK) return 0;
    size_t ctx_bytes = c.live_bytes;
    size_t allocs_before = c.allocs;
    if (!g_log) mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR);
    g_fail_after = fail_after;
    if (fail_after >= 0) mixrt_context_fail_alloc_after(ctx, fail_after, 1);

    static int sentinel;
    mixrt_model_t m = (mixrt_model_t)(void *)&sentinel;
    mixrt_status st = mixrt_model_load_buffer(ctx, data, size, NULL, &m);
    size_t n_allocs = c.allocs - allocs_before;
    if (st != MIXRT_STATUS_OK) {
        HARNESS_CHECK(m == (mixrt_model_t)(void *)&sentinel, "out-pointer written on failure (status %d)", (int)st);
        const char *msg = mixrt_context_last_error(ctx);
        HARNESS_CHECK(msg && msg[0], "failure (status %s) without a message", mixrt_status_string(st));
        if (c.live_bytes != ctx_bytes && !g_ignore_leaks) print_live(&c);
        HARNESS_CHECK(g_ignore_leaks || c.live_bytes == ctx_bytes, "failed load leaked %zu bytes (status %s: %s)",
                      c.live_bytes - ctx_bytes, mixrt_status_string(st), msg);
        n_allocs = 0;
    } else {
        HARNESS_CHECK(m && m != (mixrt_model_t)(void *)&sentinel, "OK without a model");
        mixrt_context_fail_alloc_after(ctx, -1, 0);
        size_t n_in = mixrt_model_input_count(m), n_out = mixrt_model_output_count(m);
        struct mixrt_value_info vi;
        for (size_t i = 0; i < n_in; i++) {
            HARNESS_CHECK(mixrt_model_get_input(m, i, &vi) == MIXRT_STATUS_OK, "get_input(%zu) failed", i);
            check_info(&vi, "input", i);
        }
        for (size_t i = 0; i < n_out; i++) {
            HARNESS_CHECK(mixrt_model_get_output(m, i, &vi) == MIXRT_STATUS_OK, "get_output(%zu) failed", i);
            check_info(&vi, "output", i);
        }
        HARNESS_CHECK(mixrt_model_get_input(m, n_in, &vi) != MIXRT_STATUS_OK, "get_input past the end succeeded");
        HARNESS_CHECK(mixrt_model_get_output(m, n_out, &vi) != MIXRT_STATUS_OK, "get_output past the end succeeded");
        if (g_run && fail_after < 0) run_model(ctx, m);
        mixrt_model_destroy(m);
        if (c.live_bytes != ctx_bytes && !g_ignore_leaks) print_live(&c);
        HARNESS_CHECK(g_ignore_leaks || c.live_bytes == ctx_bytes, "model destroy left %zu bytes allocated", c.live_bytes - ctx_bytes);
    }
    mixrt_context_destroy(ctx);
    if (c.live_bytes != 0 && !g_ignore_leaks) print_live(&c);
    HARNESS_CHECK(g_ignore_leaks || c.live_bytes == 0, "context destroy left %zu bytes allocated", c.live_bytes);
    return n_allocs;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int mode = -2; /* -1 off, -2 hashed, -3 every allocation, >= 0 that one */
    static int mode_read;
    if (!mode_read) {
        const char *e = getenv("MIXRT_FUZZ_OOM");
        if (e && !strcmp(e, "0")) mode = -1;
        else if (e && !strcmp(e, "all")) mode = -3;
        else if (e && *e >= '0' && *e <= '9') mode = atoi(e);
        const char *t = getenv("MIXRT_FUZZ_TRACE_BLOCK");
        if (t && *t) g_trace_block = atol(t);
        const char *il = getenv("MIXRT_FUZZ_IGNORE_LEAKS");
        g_ignore_leaks = il && *il && strcmp(il, "0");
        const char *lg = getenv("MIXRT_FUZZ_LOG");
        g_log = lg && *lg && strcmp(lg, "0");
        const char *rn = getenv("MIXRT_FUZZ_RUN");
        g_run = rn && *rn && strcmp(rn, "0");
        mode_read = 1;
    }
    size_t n_allocs = load_once(data, size, -1);
    if (mode >= 0) {
        load_once(data, size, mode);
    } else if (mode == -3) {
        for (size_t k = 0; k < n_allocs; k++) load_once(data, size, (long)k);
    } else if (mode == -2 && n_allocs > 0) {
        /* FNV-1a of the input picks which allocation fails: deterministic per input. */
        uint64_t h = 1469598103934665603ull;
        for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 1099511628211ull;
        load_once(data, size, (long)(h % n_allocs));
    }
    return 0;
}
