/* test_plan_file.c - the plan file container (src/engine/plan_file.c): CRC-64 vectors,
 * round trips through files and buffers with awkward section sizes and 64-byte alignment,
 * writer argument errors, and a corruption sweep (every truncation, every bit flip, garbage,
 * foreign files, other versions, hostile tables) where each case must fail with a message
 * naming the file, never crash, and leave the out-struct untouched.
 * MIXRT_PLAN_WRITE_CORPUS=DIR also writes the fuzzer's seed plans (fuzz/corpus_plan) there. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "engine/plan_file.h"
#include "testutil.h"

static mixrt_context_t ctx;
static char dir[256];

static void path_in_dir(char *buf, size_t cap, const char *name) { snprintf(buf, cap, "%s/%s", dir, name); }

static void write_bytes(const char *path, const void *data, size_t size) {
    FILE *f = fopen(path, "wb");
    TU_CHECK(f != NULL, "cannot create %s: %s", path, strerror(errno));
    if (!f) return;
    TU_CHECK(size == 0 || fwrite(data, 1, size, f) == size, "short write to %s", path);
    fclose(f);
}

static unsigned char *read_bytes(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    unsigned char *p = malloc(n > 0 ? (size_t)n : 1);
    *size = fread(p, 1, (size_t)(n > 0 ? n : 0), f);
    fclose(f);
    return p;
}

static void fill_random(unsigned char *p, size_t n) {
    for (size_t i = 0; i < n; i++) p[i] = (unsigned char)tu_rand();
}

static struct mixrt_plan_ident test_ident(void) {
    struct mixrt_plan_ident id;
    memset(&id, 0, sizeof id);
    memcpy(id.build_id, "0123456789abcdef0123456789ABCDEF", 32); /* exactly the field width */
    strcpy(id.target, "cpu x86_64 avx512f avx512_bf16");
    strcpy(id.mixrt_version, MIXRT_VERSION_STRING);
    return id;
}

/* ---- checksum ---- */

static uint64_t crc_bitwise(const unsigned char *p, size_t n) {
    uint64_t c = ~0ull;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int b = 0; b < 8; b++) c = (c >> 1) ^ ((c & 1) ? 0xC96C5795D7870F42ull : 0);
    }
    return ~c;
}

static void test_checksum(void) {
    TU_CHECK(mixrt_plan_checksum("123456789", 9) == 0x995DC9BBDF1939FAull, "CRC-64/XZ check value: got 0x%016llx",
             (unsigned long long)mixrt_plan_checksum("123456789", 9));
    TU_CHECK(mixrt_plan_checksum("", 0) == 0, "CRC-64/XZ of nothing is 0");
    unsigned char buf[300];
    fill_random(buf, sizeof buf);
    for (size_t start = 0; start < 9; start++)
        for (size_t n = 0; n + start <= 200; n += 7)
            TU_CHECK(mixrt_plan_checksum(buf + start, n) == crc_bitwise(buf + start, n),
                     "sliced CRC differs from the bitwise one at start %zu, length %zu", start, n);
}

/* ---- round trips ---- */

static void check_plan_matches(const struct mixrt_plan_file *f, const struct mixrt_plan_section *s, size_t n,
                               const char *label, bool aligned_memory) {
    struct mixrt_plan_ident id = test_ident();
    TU_CHECK(f->n_sections == n && f->format_version == MIXRT_PLAN_FORMAT_VERSION, "%s: %zu sections, version %u",
             label, f->n_sections, f->format_version);
    TU_CHECK(!memcmp(&f->ident, &id, sizeof id), "%s: ident differs (target '%s')", label, f->ident.target);
    for (size_t i = 0; i < n; i++) {
        const struct mixrt_plan_section *g = mixrt_plan_find(f, s[i].kind);
        TU_CHECK(g && g == &f->sections[i], "%s: section %s not found in table order", label,
                 mixrt_plan_section_name(s[i].kind));
        if (!g) continue;
        TU_CHECK(g->data != NULL && g->size == s[i].size, "%s: %s has %llu bytes, wrote %llu", label,
                 mixrt_plan_section_name(s[i].kind), (unsigned long long)g->size, (unsigned long long)s[i].size);
        TU_CHECK(g->size != s[i].size || s[i].size == 0 || !memcmp(g->data, s[i].data, (size_t)s[i].size),
                 "%s: %s bytes differ", label, mixrt_plan_section_name(s[i].kind));
        size_t off = (size_t)((const uint8_t *)g->data - f->data);
        TU_CHECK(off % 64 == 0 && off <= f->size, "%s: %s at file offset %zu", label,
                 mixrt_plan_section_name(s[i].kind), off);
        if (aligned_memory)
            TU_CHECK(((uintptr_t)g->data & 63) == 0, "%s: %s data not 64-byte aligned in memory", label,
                     mixrt_plan_section_name(s[i].kind));
    }
    TU_CHECK(mixrt_plan_find(f, 9) == NULL && mixrt_plan_find(f, 0) == NULL, "%s: find of unknown kinds", label);
}

static void test_roundtrip(void) {
    static const uint64_t sizes[][4] = {{0, 1, 63, 64}, {4097, 0, 65, 4096}, {1, 127, 128, 129}, {100000, 7, 0, 3}};
    static const uint32_t orders[][4] = {{1, 2, 3, 4}, {3, 4, 1, 2}, {4, 3, 2, 1}, {2, 1, 4, 3}};
    struct mixrt_plan_ident id = test_ident();
    char path[400], tmp[420];
    path_in_dir(path, sizeof path, "round.plan");
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    for (size_t c = 0; c < sizeof sizes / sizeof sizes[0]; c++) {
        struct mixrt_plan_section s[4];
        unsigned char *bufs[4];
        for (int i = 0; i < 4; i++) {
            bufs[i] = malloc(sizes[c][i] + 1);
            fill_random(bufs[i], (size_t)sizes[c][i]);
            s[i].kind = orders[c][i];
            s[i].data = sizes[c][i] ? bufs[i] : NULL;
            s[i].size = sizes[c][i];
        }
        char label[64];
        snprintf(label, sizeof label, "round trip %zu (file)", c);
        mixrt_status st = mixrt_plan_write(ctx, path, &id, s, 4);
        TU_CHECK(st == MIXRT_STATUS_OK, "%s: write: %s", label, mixrt_context_last_error(ctx));
        TU_CHECK(access(tmp, F_OK) != 0, "%s: %s left behind", label, tmp);
        struct mixrt_plan_file f;
        memset(&f, 0, sizeof f);
        st = mixrt_plan_open(ctx, path, &f);
        TU_CHECK(st == MIXRT_STATUS_OK, "%s: open: %s", label, mixrt_context_last_error(ctx));
        if (st == MIXRT_STATUS_OK) check_plan_matches(&f, s, 4, label, true);

        /* The in-memory writer makes the same bytes; a 64-aligned copy opens the same. */
        void *img = NULL;
        size_t img_size = 0, file_size = 0;
        st = mixrt_plan_write_buffer(ctx, &id, s, 4, &img, &img_size);
        TU_CHECK(st == MIXRT_STATUS_OK, "%s: write_buffer: %s", label, mixrt_context_last_error(ctx));
        unsigned char *disk = read_bytes(path, &file_size);
        TU_CHECK(disk && img && file_size == img_size && !memcmp(disk, img, img_size),
                 "%s: file (%zu bytes) and buffer (%zu bytes) differ", label, file_size, img_size);
        TU_CHECK(f.size == file_size && f.map_size == file_size, "%s: plan size %zu, file %zu", label, f.size,
                 file_size);
        struct mixrt_plan_file b;
        snprintf(label, sizeof label, "round trip %zu (buffer)", c);
        st = img ? mixrt_plan_open_buffer(ctx, img, img_size, "round buffer", &b) : MIXRT_STATUS_INTERNAL;
        TU_CHECK(st == MIXRT_STATUS_OK, "%s: open_buffer: %s", label, mixrt_context_last_error(ctx));
        if (st == MIXRT_STATUS_OK) {
            check_plan_matches(&b, s, 4, label, true);
            TU_CHECK(b.map == NULL && b.data == img, "%s: a buffer plan borrows the buffer", label);
            mixrt_plan_close(ctx, &b);
        }
        if (img) mixrt_free(ctx, img, img_size);
        free(disk);

        /* Replacing the file while it is open leaves the open plan intact (rename, not rewrite). */
        if (f.n_sections) {
            unsigned char other[10] = "0123456789";
            struct mixrt_plan_section s2[4] = {{1, other, 10}, {2, other, 5}, {3, other, 1}, {4, NULL, 0}};
            TU_CHECK(mixrt_plan_write(ctx, path, &id, s2, 4) == MIXRT_STATUS_OK, "overwrite: %s",
                     mixrt_context_last_error(ctx));
            check_plan_matches(&f, s, 4, "open plan after its file was replaced", true);
            struct mixrt_plan_file f2;
            TU_CHECK(mixrt_plan_open(ctx, path, &f2) == MIXRT_STATUS_OK, "reopen after overwrite: %s",
                     mixrt_context_last_error(ctx));
            check_plan_matches(&f2, s2, 4, "replaced plan", true);
            mixrt_plan_close(ctx, &f2);
        }
        mixrt_plan_close(ctx, &f);
        TU_CHECK(f.map == NULL && f.n_sections == 0, "close zeroes the struct");
        for (int i = 0; i < 4; i++) free(bufs[i]);
    }
    unlink(path);

    /* A bare file name (no directory part) is written to the working directory. */
    const char *txt = "x";
    struct mixrt_plan_section one[4] = {{1, txt, 1}, {2, txt, 1}, {3, txt, 1}, {4, txt, 1}};
    const char *bare = "plan_test_bare.plan";
    TU_CHECK(mixrt_plan_write(ctx, bare, &id, one, 4) == MIXRT_STATUS_OK, "bare name: %s",
             mixrt_context_last_error(ctx));
    struct mixrt_plan_file f;
    TU_CHECK(mixrt_plan_open(ctx, bare, &f) == MIXRT_STATUS_OK, "bare name reopen: %s", mixrt_context_last_error(ctx));
    mixrt_plan_close(ctx, &f);
    unlink(bare);
}

/* ---- writer errors ---- */

static void expect_write_error(const char *path, const struct mixrt_plan_ident *id, const struct mixrt_plan_section *s,
                               size_t n, mixrt_status want, const char *needle, const char *label) {
    mixrt_status st = mixrt_plan_write(ctx, path, id, s, n);
    const char *msg = mixrt_context_last_error(ctx);
    TU_CHECK(st == want, "%s: status %s, expected %s (%s)", label, mixrt_status_string(st), mixrt_status_string(want),
             msg);
    TU_CHECK(msg && strstr(msg, path) && (!needle || strstr(msg, needle)), "%s: message '%s' lacks '%s' or the path",
             label, msg, needle ? needle : "");
    char tmp[600];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    TU_CHECK(access(tmp, F_OK) != 0, "%s: %s left behind", label, tmp);
}

static void test_write_errors(void) {
    struct mixrt_plan_ident id = test_ident();
    char path[400], nodir[400];
    path_in_dir(path, sizeof path, "bad.plan");
    path_in_dir(nodir, sizeof nodir, "no/such/dir/x.plan");
    const char *txt = "abc";
    struct mixrt_plan_section ok[4] = {{1, txt, 3}, {2, txt, 3}, {3, txt, 3}, {4, txt, 3}};
    struct mixrt_plan_section s[5];

    memcpy(s, ok, sizeof ok);
    s[2].kind = 9;
    expect_write_error(path, &id, s, 4, MIXRT_STATUS_INVALID_ARGUMENT, "unknown kind 9", "unknown kind");
    memcpy(s, ok, sizeof ok);
    s[3].kind = 1;
    expect_write_error(path, &id, s, 4, MIXRT_STATUS_INVALID_ARGUMENT, "second META", "duplicate kind");
    expect_write_error(path, &id, ok, 3, MIXRT_STATUS_INVALID_ARGUMENT, "no KERNELS", "missing section");
    expect_write_error(path, &id, ok, 0, MIXRT_STATUS_INVALID_ARGUMENT, "no META", "no sections");
    memcpy(s, ok, sizeof ok);
    s[1].data = NULL;
    expect_write_error(path, &id, s, 4, MIXRT_STATUS_INVALID_ARGUMENT, "no data", "NULL data");
    expect_write_error(path, NULL, ok, 4, MIXRT_STATUS_INVALID_ARGUMENT, "ident", "NULL ident");
    expect_write_error(path, &id, ok, MIXRT_PLAN_MAX_SECTIONS + 1, MIXRT_STATUS_INVALID_ARGUMENT, "at most",
                       "too many sections");
    struct mixrt_plan_ident bad = id;
    memset(bad.target, 'x', sizeof bad.target); /* 129 characters, no NUL */
    expect_write_error(path, &bad, ok, 4, MIXRT_STATUS_INVALID_ARGUMENT, "target string is longer", "long target");
    bad = id;
    bad.build_id[3] = '\n';
    expect_write_error(path, &bad, ok, 4, MIXRT_STATUS_INVALID_ARGUMENT, "non-printable", "control byte in ident");
    expect_write_error(nodir, &id, ok, 4, MIXRT_STATUS_IO_ERROR, "No such file", "missing directory");
    expect_write_error(dir, &id, ok, 4, MIXRT_STATUS_IO_ERROR, "renaming", "path is a directory");
    TU_CHECK(access(path, F_OK) != 0, "no plan written by failed writes");

    TU_CHECK(mixrt_plan_write(NULL, path, &id, ok, 4) == MIXRT_STATUS_INVALID_ARGUMENT, "NULL context");
    TU_CHECK(mixrt_plan_write(ctx, NULL, &id, ok, 4) == MIXRT_STATUS_INVALID_ARGUMENT, "NULL path");
    mixrt_context_fail_alloc_after(ctx, 0, 1);
    expect_write_error(path, &id, ok, 4, MIXRT_STATUS_OUT_OF_MEMORY, NULL, "allocation failure");
    mixrt_context_fail_alloc_after(ctx, -1, 0);
    mixrt_context_clear_error(ctx);
    TU_CHECK(access(path, F_OK) != 0, "no plan written on allocation failure");
    void *img = (void *)&img;
    size_t img_size = 7;
    mixrt_context_fail_alloc_after(ctx, 0, 1);
    TU_CHECK(mixrt_plan_write_buffer(ctx, &id, ok, 4, &img, &img_size) == MIXRT_STATUS_OUT_OF_MEMORY &&
                 img == (void *)&img && img_size == 7,
             "write_buffer: allocation failure leaves the out-pointers alone");
    mixrt_context_fail_alloc_after(ctx, -1, 0);
    TU_CHECK(mixrt_plan_write_buffer(ctx, &id, ok, 2, &img, &img_size) == MIXRT_STATUS_INVALID_ARGUMENT &&
                 strstr(mixrt_context_last_error(ctx), "no WEIGHTS"),
             "write_buffer: missing sections: %s", mixrt_context_last_error(ctx));
}

/* ---- corruption ---- */

static int sweep_cases;

/* Opens a copy of the image in a buffer of exactly its size (so ASan sees any read past
 * the end) and expects failure: a status, a message naming the image, *out untouched. */
static mixrt_status expect_fail_buffer(const void *data, size_t size, const char *label, mixrt_status want) {
    static const char *name = "corrupt-plan-buffer";
    unsigned char *copy = malloc(size ? size : 1);
    if (size) memcpy(copy, data, size);
    struct mixrt_plan_file out, sentinel;
    memset(&out, 0xa5, sizeof out);
    memcpy(&sentinel, &out, sizeof out);
    mixrt_status st = mixrt_plan_open_buffer(ctx, copy, size, name, &out);
    const char *msg = mixrt_context_last_error(ctx);
    if (!msg) msg = ""; /* printed below: never a NULL %s */
    sweep_cases++;
    TU_CHECK(st != MIXRT_STATUS_OK, "%s: a corrupt plan (%zu bytes) was accepted", label, size);
    if (st == MIXRT_STATUS_OK) mixrt_plan_close(ctx, &out);
    TU_CHECK(want == MIXRT_STATUS_OK || st == want, "%s: status %s, expected %s (%s)", label,
             mixrt_status_string(st), mixrt_status_string(want), msg);
    TU_CHECK(st == MIXRT_STATUS_OK || (msg && strstr(msg, name)), "%s: message '%s' does not name the image", label,
             msg);
    TU_CHECK(st == MIXRT_STATUS_OK || !memcmp(&out, &sentinel, sizeof out), "%s: out written on failure", label);
    free(copy);
    return st;
}

static mixrt_status expect_fail_file(const char *path, const char *label, mixrt_status want, const char *needle) {
    struct mixrt_plan_file out, sentinel;
    memset(&out, 0x5a, sizeof out);
    memcpy(&sentinel, &out, sizeof out);
    mixrt_status st = mixrt_plan_open(ctx, path, &out);
    const char *msg = mixrt_context_last_error(ctx);
    sweep_cases++;
    TU_CHECK(st != MIXRT_STATUS_OK, "%s: '%s' was accepted", label, path);
    if (st == MIXRT_STATUS_OK) mixrt_plan_close(ctx, &out);
    TU_CHECK(want == MIXRT_STATUS_OK || st == want, "%s: status %s, expected %s (%s)", label,
             mixrt_status_string(st), mixrt_status_string(want), msg);
    TU_CHECK(st == MIXRT_STATUS_OK || strstr(msg, path), "%s: message '%s' does not name the file", label, msg);
    TU_CHECK(!needle || strstr(msg, needle), "%s: message '%s' lacks '%s'", label, msg, needle);
    TU_CHECK(st == MIXRT_STATUS_OK || !memcmp(&out, &sentinel, sizeof out), "%s: out written on failure", label);
    return st;
}

/* Opens an image that had its checksums fixed: anything may happen but a crash; when it
 * opens, every section must lie inside the image. */
static int open_fixed(const unsigned char *data, size_t size) {
    unsigned char *copy = malloc(size ? size : 1);
    if (size) memcpy(copy, data, size);
    mixrt_plan_fix_checksums(copy, size);
    struct mixrt_plan_file f;
    int opened = 0;
    if (mixrt_plan_open_buffer(ctx, copy, size, "fixed", &f) == MIXRT_STATUS_OK) {
        opened = 1;
        for (size_t i = 0; i < f.n_sections; i++) {
            const uint8_t *d = f.sections[i].data;
            TU_CHECK(d >= copy && f.sections[i].size <= size && d + f.sections[i].size <= copy + size,
                     "an accepted plan's section #%zu lies outside the image", i);
        }
        mixrt_plan_close(ctx, &f);
    } else {
        const char *msg = mixrt_context_last_error(ctx);
        TU_CHECK(msg && strstr(msg, "fixed"), "fixed-up image: message '%s' does not name it", msg);
    }
    free(copy);
    return opened;
}

static void put64(unsigned char *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (unsigned char)(v >> (8 * i));
}
static void put32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* Patches a header or table field of a copy, fixes the checksums, expects failure with a needle. */
static void hostile(const unsigned char *img, size_t size, size_t at, int width, uint64_t v, mixrt_status want,
                    const char *needle, const char *label) {
    unsigned char *c = malloc(size);
    memcpy(c, img, size);
    if (width == 8) put64(c + at, v);
    else put32(c + at, (uint32_t)v);
    mixrt_plan_fix_checksums(c, size);
    expect_fail_buffer(c, size, label, want);
    const char *msg = mixrt_context_last_error(ctx);
    TU_CHECK(!needle || strstr(msg, needle), "%s: message '%s' lacks '%s'", label, msg, needle);
    free(c);
}

static void test_corruption(void) {
    struct mixrt_plan_ident id = test_ident();
    unsigned char meta[90], graph[700], weights[640], kernels[150];
    fill_random(meta, sizeof meta);
    fill_random(graph, sizeof graph);
    fill_random(weights, sizeof weights);
    fill_random(kernels, sizeof kernels);
    struct mixrt_plan_section s[4] = {{MIXRT_PLAN_META, meta, sizeof meta},
                                      {MIXRT_PLAN_GRAPH, graph, sizeof graph},
                                      {MIXRT_PLAN_WEIGHTS, weights, sizeof weights},
                                      {MIXRT_PLAN_KERNELS, kernels, sizeof kernels}};
    void *v = NULL;
    size_t size = 0;
    if (mixrt_plan_write_buffer(ctx, &id, s, 4, &v, &size) != MIXRT_STATUS_OK) {
        TU_CHECK(0, "write_buffer: %s", mixrt_context_last_error(ctx));
        return;
    }
    unsigned char *img = v;
    TU_CHECK(size > 1900 && size < 2100, "the small plan has %zu bytes", size);
    char path[400], label[128];
    path_in_dir(path, sizeof path, "corrupt.plan");

    /* Every truncation, as a buffer and as a file (the file path maps it). */
    for (size_t n = 0; n < size; n++) {
        snprintf(label, sizeof label, "truncated to %zu of %zu bytes", n, size);
        expect_fail_buffer(img, n, label, MIXRT_STATUS_OK);
        write_bytes(path, img, n);
        expect_fail_file(path, label, MIXRT_STATUS_OK, NULL);
    }
    expect_fail_buffer(img, size - 1, "truncated by one byte", MIXRT_STATUS_IO_ERROR);
    TU_CHECK(strstr(mixrt_context_last_error(ctx), "is truncated: its header says"), "truncation message: %s",
             mixrt_context_last_error(ctx));
    TU_CHECK(mixrt_plan_open_buffer(ctx, NULL, 0, "null image", &(struct mixrt_plan_file){0}) != MIXRT_STATUS_OK,
             "NULL, 0 is refused");

    /* Every bit of the file flipped: the header checksum, the section checksums and the
     * padding check leave no byte uncovered. Then again with the checksums fixed up. */
    int fixed_opened = 0, fixed_total = 0;
    unsigned char *c = malloc(size);
    for (size_t byte = 0; byte < size; byte++)
        for (int bit = 0; bit < 8; bit++) {
            memcpy(c, img, size);
            c[byte] ^= (unsigned char)(1u << bit);
            snprintf(label, sizeof label, "bit %d of byte %zu flipped", bit, byte);
            expect_fail_buffer(c, size, label, MIXRT_STATUS_OK);
            fixed_opened += open_fixed(c, size);
            fixed_total++;
            if ((byte * 8 + (size_t)bit) % 61 == 0) { /* a sample through the file path */
                write_bytes(path, c, size);
                expect_fail_file(path, label, MIXRT_STATUS_OK, NULL);
            }
        }
    printf("test_plan_file: %d bit flips with fixed checksums, %d of them opened (data bytes and printable ident "
           "bytes)\n",
           fixed_total, fixed_opened);
    TU_CHECK(fixed_opened > 0 && fixed_opened < fixed_total, "fixed-checksum flips: %d of %d opened", fixed_opened,
             fixed_total);
    /* Random multi-byte damage with fixed checksums. */
    for (int r = 0; r < 3000; r++) {
        memcpy(c, img, size);
        int k = 1 + (int)(tu_rand() % 8);
        for (int j = 0; j < k; j++) {
            size_t at = tu_rand() % 400; /* header and table mostly */
            c[at] = (unsigned char)tu_rand();
        }
        open_fixed(c, size);
    }
    free(c);

    /* Garbage after the end. */
    static const size_t extra[] = {1, 64, 4096};
    for (size_t e = 0; e < 3; e++) {
        unsigned char *g = malloc(size + extra[e]);
        memcpy(g, img, size);
        fill_random(g + size, extra[e]);
        snprintf(label, sizeof label, "%zu garbage bytes appended", extra[e]);
        expect_fail_buffer(g, size + extra[e], label, MIXRT_STATUS_INVALID_MODEL);
        TU_CHECK(strstr(mixrt_context_last_error(ctx), "trailing"), "%s: %s", label, mixrt_context_last_error(ctx));
        write_bytes(path, g, size + extra[e]);
        expect_fail_file(path, label, MIXRT_STATUS_INVALID_MODEL, "trailing");
        free(g);
    }

    /* Another format version, with and without the checksums fixed: 3 is from the future,
     * 0 from nowhere; 1 (the same four sections) still opens. */
    unsigned char *v2 = malloc(size);
    memcpy(v2, img, size);
    put32(v2 + MIXRT_PLAN_OFF_VERSION, 3);
    expect_fail_buffer(v2, size, "version 3, stale checksum", MIXRT_STATUS_UNSUPPORTED);
    mixrt_plan_fix_checksums(v2, size);
    write_bytes(path, v2, size);
    expect_fail_file(path, "version 3", MIXRT_STATUS_UNSUPPORTED, "is plan format version 3; this mixrt (0.1.0) reads "
                                                                  "versions 1 to 2; rebuild the plan with mixrt build");
    put32(v2 + MIXRT_PLAN_OFF_VERSION, 0);
    mixrt_plan_fix_checksums(v2, size);
    expect_fail_buffer(v2, size, "version 0", MIXRT_STATUS_UNSUPPORTED);
    put32(v2 + MIXRT_PLAN_OFF_VERSION, 1);
    mixrt_plan_fix_checksums(v2, size);
    {
        struct mixrt_plan_file f1;
        mixrt_status st1 = mixrt_plan_open_buffer(ctx, v2, size, "version 1", &f1);
        TU_CHECK(st1 == MIXRT_STATUS_OK && f1.format_version == 1 && f1.n_sections == 4, "version 1 plan: %s",
                 mixrt_context_last_error(ctx));
        if (st1 == MIXRT_STATUS_OK) mixrt_plan_close(ctx, &f1);
    }
    put32(v2 + MIXRT_PLAN_OFF_VERSION, 7);
    write_bytes(path, v2, 12); /* even a 12-byte stub says which version it is */
    expect_fail_file(path, "version 7 stub", MIXRT_STATUS_UNSUPPORTED, "version 7");
    free(v2);

    /* Hostile header and table fields, checksums fixed so the field checks are reached. */
    const size_t T = MIXRT_PLAN_OFF_TABLE, E = MIXRT_PLAN_ENTRY_SIZE;
    hostile(img, size, MIXRT_PLAN_OFF_HEADER_SIZE, 4, 225, MIXRT_STATUS_INVALID_MODEL, "header size", "header size");
    hostile(img, size, MIXRT_PLAN_OFF_FILE_SIZE, 8, size + 1, MIXRT_STATUS_IO_ERROR, "truncated", "file size + 1");
    hostile(img, size, MIXRT_PLAN_OFF_FILE_SIZE, 8, UINT64_MAX, MIXRT_STATUS_IO_ERROR, "truncated", "file size max");
    hostile(img, size, MIXRT_PLAN_OFF_FILE_SIZE, 8, size - 1, MIXRT_STATUS_INVALID_MODEL, "trailing", "file size - 1");
    hostile(img, size, MIXRT_PLAN_OFF_SECTION_COUNT, 4, MIXRT_PLAN_MAX_SECTIONS + 1, MIXRT_STATUS_INVALID_MODEL,
            "sections, at most", "section count 17");
    hostile(img, size, MIXRT_PLAN_OFF_SECTION_COUNT, 4, UINT32_MAX, MIXRT_STATUS_INVALID_MODEL, "sections, at most",
            "section count max");
    hostile(img, size, MIXRT_PLAN_OFF_SECTION_COUNT, 4, 0, MIXRT_STATUS_INVALID_MODEL, NULL, "section count 0");
    hostile(img, size, MIXRT_PLAN_OFF_SECTION_COUNT, 4, 3, MIXRT_STATUS_INVALID_MODEL, NULL, "section count 3");
    hostile(img, size, MIXRT_PLAN_OFF_RESERVED, 4, 1, MIXRT_STATUS_INVALID_MODEL, "reserved", "reserved");
    hostile(img, size, MIXRT_PLAN_OFF_TARGET + 100, 4, 0x41414141, MIXRT_STATUS_INVALID_MODEL, "padding",
            "bytes after the target's NUL");
    hostile(img, size, MIXRT_PLAN_OFF_MIXRT_VERSION, 4, 0x0a302e30, MIXRT_STATUS_INVALID_MODEL, "non-printable",
            "newline in the version");
    hostile(img, size, T + 2 * E, 4, 9, MIXRT_STATUS_INVALID_MODEL, "unknown kind 9", "unknown kind");
    hostile(img, size, T + 2 * E, 4, MIXRT_PLAN_META, MIXRT_STATUS_INVALID_MODEL, "second META", "duplicate kind");
    hostile(img, size, T + 1 * E + 4, 4, 1, MIXRT_STATUS_INVALID_MODEL, "flags", "flags");
    hostile(img, size, T + 1 * E + 8, 8, 0, MIXRT_STATUS_INVALID_MODEL, "inside the header", "offset 0");
    hostile(img, size, T + 1 * E + 8, 8, 520, MIXRT_STATUS_INVALID_MODEL, "not a multiple of 64", "misaligned");
    hostile(img, size, T + 1 * E + 8, 8, UINT64_MAX - 63, MIXRT_STATUS_INVALID_MODEL, "past the end", "offset max");
    hostile(img, size, T + 1 * E + 16, 8, UINT64_MAX, MIXRT_STATUS_INVALID_MODEL, "past the end", "size max");
    hostile(img, size, T + 1 * E + 16, 8, size, MIXRT_STATUS_INVALID_MODEL, "past the end", "size = file size");
    hostile(img, size, T + 3 * E + 16, 8, 149, MIXRT_STATUS_INVALID_MODEL, "padding", "KERNELS shrunk by one");
    hostile(img, size, T + 3 * E + 8, 8, 1920, MIXRT_STATUS_INVALID_MODEL, "past the end", "KERNELS moved past the end");
    hostile(img, size, T + 1 * E + 16, 8, 1000, MIXRT_STATUS_INVALID_MODEL, "overlap", "GRAPH grown over WEIGHTS");
    hostile(img, size, T + 2 * E + 8, 8, 512, MIXRT_STATUS_INVALID_MODEL, "overlap", "WEIGHTS moved onto GRAPH");
    hostile(img, size, T + 0 * E + 16, 8, 89, MIXRT_STATUS_INVALID_MODEL, "padding", "META shrunk by one");
    /* A wrong section checksum (not fixed up) names the section. */
    unsigned char *w = malloc(size);
    memcpy(w, img, size);
    w[size - 1] ^= 0x10;
    expect_fail_buffer(w, size, "last KERNELS byte", MIXRT_STATUS_INVALID_MODEL);
    TU_CHECK(strstr(mixrt_context_last_error(ctx), "checksum mismatch in section #3 (KERNELS"), "checksum message: %s",
             mixrt_context_last_error(ctx));
    memcpy(w, img, size);
    w[20] ^= 1;
    expect_fail_buffer(w, size, "file size bit", MIXRT_STATUS_OK);
    free(w);
    /* Empty sections may sit anywhere aligned (even inside another), they occupy nothing. */
    unsigned char *z = malloc(size);
    memcpy(z, img, size);
    put64(z + T + 0 * E + 16, 0);
    memset(z + 384, 0, 90);
    mixrt_plan_fix_checksums(z, size);
    struct mixrt_plan_file f;
    TU_CHECK(mixrt_plan_open_buffer(ctx, z, size, "empty META", &f) == MIXRT_STATUS_OK, "empty META: %s",
             mixrt_context_last_error(ctx));
    put64(z + T + 0 * E + 8, 1280); /* inside WEIGHTS */
    mixrt_plan_fix_checksums(z, size);
    TU_CHECK(mixrt_plan_open_buffer(ctx, z, size, "empty META inside WEIGHTS", &f) == MIXRT_STATUS_OK,
             "empty META inside WEIGHTS: %s", mixrt_context_last_error(ctx));
    put64(z + T + 0 * E + 8, size + 64 - size % 64); /* past the end */
    mixrt_plan_fix_checksums(z, size);
    expect_fail_buffer(z, size, "empty META past the end", MIXRT_STATUS_INVALID_MODEL);
    free(z);
    TU_CHECK(!mixrt_plan_fix_checksums(img, 100), "fix_checksums refuses a short image");
    TU_CHECK(!mixrt_plan_fix_checksums(NULL, 0), "fix_checksums refuses NULL");

    /* Foreign files. */
    char p2[400];
    const char *src = getenv("MIXRT_SOURCE_DIR");
    char onnx[600];
    snprintf(onnx, sizeof onnx, "%s/fuzz/corpus/gen_relu.onnx", src ? src : "..");
    size_t onnx_size = 0;
    unsigned char *model = read_bytes(onnx, &onnx_size);
    if (!model) {
        snprintf(onnx, sizeof onnx, "/usr/share/libonnx-testdata/data/node/test_relu/model.onnx");
        model = read_bytes(onnx, &onnx_size);
    }
    TU_CHECK(model != NULL, "no ONNX model found to use as a foreign file (%s)", onnx);
    if (model) {
        expect_fail_file(onnx, "an ONNX model", MIXRT_STATUS_INVALID_MODEL, "is not a mixrt plan file (starts with");
        expect_fail_buffer(model, onnx_size, "an ONNX model in memory", MIXRT_STATUS_INVALID_MODEL);
        free(model);
    }
    unsigned char rnd[1000];
    fill_random(rnd, sizeof rnd);
    rnd[0] = 0x7f; /* not 'M' */
    path_in_dir(p2, sizeof p2, "random.bin");
    write_bytes(p2, rnd, sizeof rnd);
    expect_fail_file(p2, "random bytes", MIXRT_STATUS_INVALID_MODEL, "starts with \"\\x7f");
    path_in_dir(p2, sizeof p2, "empty.plan");
    write_bytes(p2, "", 0);
    expect_fail_file(p2, "empty file", MIXRT_STATUS_INVALID_MODEL, "it is empty");
    path_in_dir(p2, sizeof p2, "magic.plan");
    write_bytes(p2, "MIXRTPLN", 8);
    expect_fail_file(p2, "magic only", MIXRT_STATUS_IO_ERROR, "truncated");
    expect_fail_file(dir, "a directory", MIXRT_STATUS_IO_ERROR, "directory");
    path_in_dir(p2, sizeof p2, "missing.plan");
    expect_fail_file(p2, "a missing file", MIXRT_STATUS_IO_ERROR, "No such file");
    path_in_dir(p2, sizeof p2, "fifo.plan");
    if (mkfifo(p2, 0600) == 0) {
        expect_fail_file(p2, "a FIFO", MIXRT_STATUS_IO_ERROR, "not a regular file");
        unlink(p2);
    }
    expect_fail_file("/dev/null", "/dev/null", MIXRT_STATUS_IO_ERROR, "not a regular file");

    /* Close and find are safe on anything closed or zeroed. */
    struct mixrt_plan_file zero;
    memset(&zero, 0, sizeof zero);
    mixrt_plan_close(ctx, &zero);
    mixrt_plan_close(ctx, &zero);
    mixrt_plan_close(ctx, NULL);
    TU_CHECK(mixrt_plan_find(&zero, MIXRT_PLAN_META) == NULL && mixrt_plan_find(NULL, 1) == NULL,
             "find on a closed plan");
    mixrt_free(ctx, img, size);
    unlink(path);
    path_in_dir(p2, sizeof p2, "random.bin");
    unlink(p2);
    path_in_dir(p2, sizeof p2, "empty.plan");
    unlink(p2);
    path_in_dir(p2, sizeof p2, "magic.plan");
    unlink(p2);
    printf("test_plan_file: %d corruption cases\n", sweep_cases);
}

/* ---- the optional PACKED section (format version 2) ---- */

static void test_packed_kind(void) {
    struct mixrt_plan_ident id = test_ident();
    unsigned char d[5][70];
    for (int i = 0; i < 5; i++) fill_random(d[i], sizeof d[i]);
    struct mixrt_plan_section s[6] = {{MIXRT_PLAN_PACKED, d[4], 70}, {MIXRT_PLAN_META, d[0], 10},
                                      {MIXRT_PLAN_GRAPH, d[1], 70},  {MIXRT_PLAN_WEIGHTS, d[2], 64},
                                      {MIXRT_PLAN_KERNELS, d[3], 3}, {MIXRT_PLAN_PACKED, d[4], 1}};
    void *v = NULL;
    size_t size = 0;
    /* Any position; at most once; optional (the four-section plans above have none). */
    TU_CHECK(mixrt_plan_write_buffer(ctx, &id, s, 5, &v, &size) == MIXRT_STATUS_OK, "PACKED first: %s",
             mixrt_context_last_error(ctx));
    char pp[400];
    path_in_dir(pp, sizeof pp, "packed.plan");
    expect_write_error(pp, &id, s, 6, MIXRT_STATUS_INVALID_ARGUMENT, "second PACKED", "two PACKED");
    if (!v) return;
    struct mixrt_plan_file f;
    TU_CHECK(mixrt_plan_open_buffer(ctx, v, size, "packed", &f) == MIXRT_STATUS_OK, "open: %s",
             mixrt_context_last_error(ctx));
    check_plan_matches(&f, s, 5, "with PACKED", false);
    TU_CHECK(f.format_version == 2 && !strcmp(mixrt_plan_section_name(MIXRT_PLAN_PACKED), "PACKED"), "PACKED's name");
    mixrt_plan_close(ctx, &f);
    /* Version 1 knows no PACKED. */
    unsigned char *c = malloc(size);
    memcpy(c, v, size);
    put32(c + MIXRT_PLAN_OFF_VERSION, 1);
    mixrt_plan_fix_checksums(c, size);
    expect_fail_buffer(c, size, "PACKED in version 1", MIXRT_STATUS_INVALID_MODEL);
    TU_CHECK(strstr(mixrt_context_last_error(ctx), "unknown kind 5 (format version 1"), "PACKED in v1: %s",
             mixrt_context_last_error(ctx));
    /* Two PACKED sections (the first entry's kind rewritten). */
    memcpy(c, v, size);
    put32(c + MIXRT_PLAN_OFF_TABLE + MIXRT_PLAN_ENTRY_SIZE, MIXRT_PLAN_PACKED);
    mixrt_plan_fix_checksums(c, size);
    expect_fail_buffer(c, size, "two PACKED sections", MIXRT_STATUS_INVALID_MODEL);
    TU_CHECK(strstr(mixrt_context_last_error(ctx), "second PACKED"), "two PACKED: %s", mixrt_context_last_error(ctx));
    free(c);
    mixrt_free(ctx, v, size);
}

/* ---- fuzzer seeds (fuzz/corpus_plan) ---- */

static void write_corpus(const char *out) {
    struct mixrt_plan_ident id = test_ident();
    char p[600];
    const char *src = getenv("MIXRT_SOURCE_DIR");
    char onnx[600];
    snprintf(onnx, sizeof onnx, "%s/fuzz/corpus/gen_relu.onnx", src ? src : "..");
    size_t onnx_size = 0;
    unsigned char *model = read_bytes(onnx, &onnx_size);
    const char *meta = "format=1\nprecision=fp32\ninputs=1\noutputs=1\n";
    const char *kernels = "0 Relu ref\n";
    float w[32];
    for (int i = 0; i < 32; i++) w[i] = (float)i * 0.25f - 4.0f;
    struct mixrt_plan_section small[4] = {{MIXRT_PLAN_META, meta, strlen(meta)},
                                          {MIXRT_PLAN_GRAPH, model ? (const void *)model : "graph", model ? onnx_size : 5},
                                          {MIXRT_PLAN_WEIGHTS, w, sizeof w},
                                          {MIXRT_PLAN_KERNELS, kernels, strlen(kernels)}};
    struct mixrt_plan_section empty[4] = {{1, NULL, 0}, {2, NULL, 0}, {3, NULL, 0}, {4, NULL, 0}};
    unsigned char odd[65];
    for (int i = 0; i < 65; i++) odd[i] = (unsigned char)(i * 37);
    struct mixrt_plan_section mixed[4] = {{3, odd, 65}, {4, odd, 1}, {1, odd, 63}, {2, odd, 64}};
    snprintf(p, sizeof p, "%s/small.plan", out);
    TU_CHECK(mixrt_plan_write(ctx, p, &id, small, 4) == MIXRT_STATUS_OK, "corpus: %s", mixrt_context_last_error(ctx));
    snprintf(p, sizeof p, "%s/empty_sections.plan", out);
    struct mixrt_plan_ident id2;
    memset(&id2, 0, sizeof id2);
    TU_CHECK(mixrt_plan_write(ctx, p, &id2, empty, 4) == MIXRT_STATUS_OK, "corpus: %s", mixrt_context_last_error(ctx));
    snprintf(p, sizeof p, "%s/mixed_order.plan", out);
    TU_CHECK(mixrt_plan_write(ctx, p, &id, mixed, 4) == MIXRT_STATUS_OK, "corpus: %s", mixrt_context_last_error(ctx));
    free(model);
    printf("test_plan_file: seed plans written to %s\n", out);
}

int main(void) {
    tu_seed(20261129);
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    mixrt_context_set_log_level(ctx, MIXRT_LOG_ERROR);
    snprintf(dir, sizeof dir, "plan_test_XXXXXX");
    if (!mkdtemp(dir)) {
        fprintf(stderr, "test_plan_file: mkdtemp: %s\n", strerror(errno));
        return 1;
    }
    test_checksum();
    test_roundtrip();
    test_write_errors();
    test_corruption();
    test_packed_kind();
    const char *corpus = getenv("MIXRT_PLAN_WRITE_CORPUS");
    if (corpus && *corpus) write_corpus(corpus);
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "%zu bytes still allocated", mixrt_context_bytes_in_use(ctx));
    mixrt_context_destroy(ctx);
    if (rmdir(dir) != 0) TU_CHECK(0, "cannot remove %s: %s (files left behind?)", dir, strerror(errno));
    return tu_finish("test_plan_file");
}
