/* plan_file.c - writes and validates the plan file container (format: plan_file.h).
 * Invariant: a struct mixrt_plan_file handed out has had every header field, table entry,
 * padding byte and checksum checked against the actual image size; nothing read from the
 * file is used in arithmetic before it is bounded. */
#include "engine/plan_file.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

/* ---- CRC-64/XZ, slicing by 8 ---- */

#define CRC64_POLY_REFLECTED 0xC96C5795D7870F42ull

static uint64_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (unsigned i = 0; i < 256; i++) {
        uint64_t c = i;
        for (int b = 0; b < 8; b++) c = (c >> 1) ^ ((c & 1) ? CRC64_POLY_REFLECTED : 0);
        crc_table[0][i] = c;
    }
    for (unsigned i = 0; i < 256; i++)
        for (int k = 1; k < 8; k++) crc_table[k][i] = (crc_table[k - 1][i] >> 8) ^ crc_table[0][crc_table[k - 1][i] & 0xff];
}

static uint64_t get_u64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static uint32_t get_u32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static void put_u64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put_u32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

uint64_t mixrt_plan_checksum(const void *data, size_t size) {
    pthread_once(&crc_once, crc_init);
    const uint8_t *p = data;
    uint64_t c = ~0ull;
    /* Eight bytes per step: the weights section is large and read once per load. */
    for (; size >= 8; size -= 8, p += 8) {
        c ^= get_u64(p);
        c = crc_table[7][c & 0xff] ^ crc_table[6][(c >> 8) & 0xff] ^ crc_table[5][(c >> 16) & 0xff] ^
            crc_table[4][(c >> 24) & 0xff] ^ crc_table[3][(c >> 32) & 0xff] ^ crc_table[2][(c >> 40) & 0xff] ^
            crc_table[1][(c >> 48) & 0xff] ^ crc_table[0][c >> 56];
    }
    for (; size > 0; size--, p++) c = crc_table[0][(c ^ *p) & 0xff] ^ (c >> 8);
    return ~c;
}

/* ---- kinds ---- */

static const char *const kind_names[] = {NULL, "META", "GRAPH", "WEIGHTS", "KERNELS", "PACKED"};
#define KIND_MAX MIXRT_PLAN_PACKED
_Static_assert(sizeof kind_names / sizeof kind_names[0] == KIND_MAX + 1, "a name per section kind");
/* Both versions require META..KERNELS exactly once; PACKED (version 2) is optional. */
static bool kind_required(uint32_t kind) { return kind >= 1 && kind <= MIXRT_PLAN_KERNELS; }
/* The last kind a file of that format version may hold. */
static uint32_t kind_last(uint32_t version) { return version >= 2 ? MIXRT_PLAN_PACKED : MIXRT_PLAN_KERNELS; }

const char *mixrt_plan_section_name(uint32_t kind) { return kind >= 1 && kind <= KIND_MAX ? kind_names[kind] : NULL; }

/* ---- identity strings ---- */

struct ident_field {
    const char *what;
    size_t offset, width; /* in the header */
};
static const struct ident_field ident_fields[3] = {
    {"build id", MIXRT_PLAN_OFF_BUILD_ID, 32},
    {"target string", MIXRT_PLAN_OFF_TARGET, 128},
    {"mixrt version string", MIXRT_PLAN_OFF_MIXRT_VERSION, 32},
};
static char *ident_member(struct mixrt_plan_ident *id, int i) {
    return i == 0 ? id->build_id : i == 1 ? id->target : id->mixrt_version;
}
static const char *ident_member_c(const struct mixrt_plan_ident *id, int i) {
    return i == 0 ? id->build_id : i == 1 ? id->target : id->mixrt_version;
}
_Static_assert(sizeof(((struct mixrt_plan_ident *)0)->build_id) == 33 &&
                   sizeof(((struct mixrt_plan_ident *)0)->target) == 129 &&
                   sizeof(((struct mixrt_plan_ident *)0)->mixrt_version) == 33,
               "ident buffers are the header fields plus a NUL");

static bool printable(uint8_t c) { return c >= 0x20 && c <= 0x7e; }

static uint64_t align_up64(uint64_t v) { return (v + (MIXRT_PLAN_ALIGN - 1)) / MIXRT_PLAN_ALIGN * MIXRT_PLAN_ALIGN; }

/* ---- writer ---- */

#define HEADER_MAX (MIXRT_PLAN_HEADER_SIZE + MIXRT_PLAN_ENTRY_SIZE * MIXRT_PLAN_MAX_SECTIONS + 8)

struct layout {
    uint8_t header[HEADER_MAX]; /* header, table and header checksum */
    size_t header_bytes;
    uint64_t offsets[MIXRT_PLAN_MAX_SECTIONS];
    uint64_t file_size;
};

/* Checks the writer's arguments and computes the header bytes and section offsets.
 * Section checksums are computed here, so the data is read once before any write. */
static mixrt_status plan_layout(mixrt_context_t ctx, const char *name, const struct mixrt_plan_ident *id,
                                const struct mixrt_plan_section *sections, size_t n, struct layout *L) {
    mixrt_status status = MIXRT_STATUS_OK;
    MIXRT_CHECK(ctx, id, MIXRT_STATUS_INVALID_ARGUMENT, "cannot write plan '%s': no ident given", name);
    MIXRT_CHECK(ctx, n == 0 || sections, MIXRT_STATUS_INVALID_ARGUMENT, "cannot write plan '%s': sections is NULL",
                name);
    MIXRT_CHECK(ctx, n <= MIXRT_PLAN_MAX_SECTIONS, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot write plan '%s': %zu sections, at most %u", name, n, MIXRT_PLAN_MAX_SECTIONS);
    memset(L, 0, sizeof *L);
    uint8_t *h = L->header;
    memcpy(h + MIXRT_PLAN_OFF_MAGIC, MIXRT_PLAN_MAGIC, 8);
    put_u32(h + MIXRT_PLAN_OFF_VERSION, MIXRT_PLAN_FORMAT_VERSION);
    put_u32(h + MIXRT_PLAN_OFF_HEADER_SIZE, MIXRT_PLAN_HEADER_SIZE);
    for (int i = 0; i < 3; i++) {
        const char *s = ident_member_c(id, i);
        size_t len = strnlen(s, ident_fields[i].width + 1);
        MIXRT_CHECK(ctx, len <= ident_fields[i].width, MIXRT_STATUS_INVALID_ARGUMENT,
                    "cannot write plan '%s': the %s is longer than %zu characters", name, ident_fields[i].what,
                    ident_fields[i].width);
        for (size_t j = 0; j < len; j++)
            MIXRT_CHECK(ctx, printable((uint8_t)s[j]), MIXRT_STATUS_INVALID_ARGUMENT,
                        "cannot write plan '%s': the %s has a non-printable byte 0x%02x at position %zu", name,
                        ident_fields[i].what, (unsigned)(uint8_t)s[j], j);
        memcpy(h + ident_fields[i].offset, s, len);
    }
    put_u32(h + MIXRT_PLAN_OFF_SECTION_COUNT, (uint32_t)n);

    size_t table_end = MIXRT_PLAN_HEADER_SIZE + MIXRT_PLAN_ENTRY_SIZE * n;
    L->header_bytes = table_end + 8;
    uint64_t cursor = L->header_bytes;
    size_t first_of_kind[KIND_MAX + 1] = {0};
    for (size_t i = 0; i < n; i++) {
        const struct mixrt_plan_section *s = &sections[i];
        MIXRT_CHECK(ctx, mixrt_plan_section_name(s->kind), MIXRT_STATUS_INVALID_ARGUMENT,
                    "cannot write plan '%s': section #%zu has unknown kind %u", name, i, s->kind);
        MIXRT_CHECK(ctx, !first_of_kind[s->kind], MIXRT_STATUS_INVALID_ARGUMENT,
                    "cannot write plan '%s': section #%zu is a second %s section (the first is #%zu)", name, i,
                    kind_names[s->kind], first_of_kind[s->kind] - 1);
        first_of_kind[s->kind] = i + 1;
        MIXRT_CHECK(ctx, s->data || s->size == 0, MIXRT_STATUS_INVALID_ARGUMENT,
                    "cannot write plan '%s': section #%zu (%s) has %llu bytes but no data", name, i,
                    kind_names[s->kind], (unsigned long long)s->size);
        /* Sizes must also fit in memory (the reader maps the whole file). */
        MIXRT_CHECK(ctx, s->size <= SIZE_MAX && cursor <= UINT64_MAX - MIXRT_PLAN_ALIGN &&
                             align_up64(cursor) <= UINT64_MAX - s->size,
                    MIXRT_STATUS_INVALID_ARGUMENT, "cannot write plan '%s': section #%zu (%s) of %llu bytes is too large",
                    name, i, kind_names[s->kind], (unsigned long long)s->size);
        L->offsets[i] = align_up64(cursor);
        cursor = L->offsets[i] + s->size;
        uint8_t *e = h + MIXRT_PLAN_HEADER_SIZE + MIXRT_PLAN_ENTRY_SIZE * i;
        put_u32(e, s->kind);
        put_u32(e + 4, 0);
        put_u64(e + 8, L->offsets[i]);
        put_u64(e + 16, s->size);
        put_u64(e + 24, mixrt_plan_checksum(s->data ? s->data : "", (size_t)s->size));
    }
    for (uint32_t k = 1; k <= KIND_MAX; k++)
        MIXRT_CHECK(ctx, !kind_required(k) || first_of_kind[k], MIXRT_STATUS_INVALID_ARGUMENT,
                    "cannot write plan '%s': no %s section given", name, kind_names[k]);
    MIXRT_CHECK(ctx, cursor <= SIZE_MAX, MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot write plan '%s': %llu bytes do not fit in memory here", name, (unsigned long long)cursor);
    L->file_size = cursor;
    put_u64(h + MIXRT_PLAN_OFF_FILE_SIZE, L->file_size);
    put_u64(h + table_end, mixrt_plan_checksum(h, table_end));
fail:
    return status;
}

static const uint8_t zeros[MIXRT_PLAN_ALIGN];

/* Writes all of buf, in chunks (write() may be partial or capped near 2 GiB). */
static bool write_all(int fd, const void *buf, uint64_t size) {
    const uint8_t *p = buf;
    while (size > 0) {
        size_t chunk = size > ((size_t)1 << 30) ? ((size_t)1 << 30) : (size_t)size;
        ssize_t w = write(fd, p, chunk);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            if (w == 0) errno = EIO;
            return false;
        }
        p += w;
        size -= (uint64_t)w;
    }
    return true;
}

mixrt_status mixrt_plan_write(mixrt_context_t ctx, const char *path, const struct mixrt_plan_ident *id,
                              const struct mixrt_plan_section *sections, size_t n) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct layout L;
    char *tmp = NULL;
    size_t tmp_size = 0;
    int fd = -1;
    bool created = false;
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    MIXRT_CHECK(ctx, path && path[0], MIXRT_STATUS_INVALID_ARGUMENT, "cannot write plan file: no path given");
    MIXRT_TRY(plan_layout(ctx, path, id, sections, n, &L));

    size_t len = strlen(path);
    MIXRT_CHECK(ctx, mixrt_add_size(len, sizeof ".tmp", &tmp_size), MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot write plan file: path too long");
    tmp = mixrt_alloc(ctx, tmp_size);
    if (!tmp) {
        mixrt_error_prefix(ctx, "cannot write plan file '%s'", path);
        status = MIXRT_STATUS_OUT_OF_MEMORY;
        goto fail;
    }
    memcpy(tmp, path, len);
    memcpy(tmp + len, ".tmp", sizeof ".tmp");

    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    MIXRT_CHECK(ctx, fd >= 0, MIXRT_STATUS_IO_ERROR, "cannot write plan file '%s': cannot create '%s': %s", path, tmp,
                strerror(errno));
    created = true;
    bool ok = write_all(fd, L.header, L.header_bytes);
    uint64_t at = L.header_bytes;
    for (size_t i = 0; ok && i < n; i++) {
        while (ok && at < L.offsets[i]) {
            uint64_t pad = L.offsets[i] - at < sizeof zeros ? L.offsets[i] - at : sizeof zeros;
            ok = write_all(fd, zeros, pad);
            at += pad;
        }
        if (ok && sections[i].size) ok = write_all(fd, sections[i].data, sections[i].size);
        at += sections[i].size;
    }
    MIXRT_CHECK(ctx, ok, MIXRT_STATUS_IO_ERROR, "cannot write plan file '%s': writing '%s': %s", path, tmp,
                strerror(errno));
    /* Flushed before the rename, so a crash leaves the old file or the whole new one. */
    MIXRT_CHECK(ctx, fsync(fd) == 0, MIXRT_STATUS_IO_ERROR, "cannot write plan file '%s': fsync of '%s': %s", path,
                tmp, strerror(errno));
    int rc = close(fd);
    fd = -1;
    MIXRT_CHECK(ctx, rc == 0, MIXRT_STATUS_IO_ERROR, "cannot write plan file '%s': closing '%s': %s", path, tmp,
                strerror(errno));
    MIXRT_CHECK(ctx, rename(tmp, path) == 0, MIXRT_STATUS_IO_ERROR, "cannot write plan file '%s': renaming '%s': %s",
                path, tmp, strerror(errno));
    created = false;
    /* The rename itself is durable once the directory is flushed; best effort (the new
     * file is complete either way). tmp is reused for the directory's name. */
    char *slash = strrchr(tmp, '/');
    if (slash == tmp) slash[1] = 0;
    else if (slash) *slash = 0;
    int dfd = open(slash ? tmp : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
fail:
    if (fd >= 0) close(fd);
    if (created) unlink(tmp);
    if (tmp) mixrt_free(ctx, tmp, tmp_size);
    return status;
}

mixrt_status mixrt_plan_write_buffer(mixrt_context_t ctx, const struct mixrt_plan_ident *id,
                                     const struct mixrt_plan_section *sections, size_t n, void **out,
                                     size_t *out_size) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct layout L;
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    MIXRT_CHECK(ctx, out && out_size, MIXRT_STATUS_INVALID_ARGUMENT, "cannot write plan buffer: out is NULL");
    MIXRT_TRY(plan_layout(ctx, "(buffer)", id, sections, n, &L));
    uint8_t *buf = mixrt_calloc(ctx, 1, (size_t)L.file_size);
    if (!buf) {
        mixrt_error_prefix(ctx, "cannot write plan buffer (%llu bytes)", (unsigned long long)L.file_size);
        return MIXRT_STATUS_OUT_OF_MEMORY;
    }
    memcpy(buf, L.header, L.header_bytes);
    for (size_t i = 0; i < n; i++)
        if (sections[i].size) memcpy(buf + L.offsets[i], sections[i].data, (size_t)sections[i].size);
    *out = buf;
    *out_size = (size_t)L.file_size;
fail:
    return status;
}

/* ---- reader ---- */

/* Up to 8 leading bytes, printable ones as is and others as \xNN, for "starts with". */
static void escape_start(char *buf, size_t cap, const uint8_t *p, size_t size) {
    size_t at = 0;
    buf[0] = 0;
    for (size_t i = 0; i < size && i < 8 && at + 4 < cap; i++) {
        if (printable(p[i]) && p[i] != '"' && p[i] != '\\')
            buf[at++] = (char)p[i];
        else
            at += (size_t)snprintf(buf + at, cap - at, "\\x%02x", p[i]);
    }
    buf[at] = 0;
}

static mixrt_status plan_validate(mixrt_context_t ctx, const char *name, const uint8_t *p, size_t size,
                                  struct mixrt_plan_file *f) {
    mixrt_status status = MIXRT_STATUS_OK;
    MIXRT_CHECK(ctx, size > 0, MIXRT_STATUS_INVALID_MODEL, "'%s' is not a mixrt plan file (it is empty)", name);
    size_t head = size < 8 ? size : 8;
    if (memcmp(p, MIXRT_PLAN_MAGIC, head) != 0) {
        char start[40];
        escape_start(start, sizeof start, p, size);
        MIXRT_CHECK(ctx, false, MIXRT_STATUS_INVALID_MODEL, "'%s' is not a mixrt plan file (starts with \"%s\")", name,
                    start);
    }
    /* The version is read as soon as it is there: another version may have another header. */
    MIXRT_CHECK(ctx, size >= MIXRT_PLAN_OFF_VERSION + 4, MIXRT_STATUS_IO_ERROR,
                "'%s' is truncated: %zu bytes, shorter than a plan header (%u bytes)", name, size,
                MIXRT_PLAN_HEADER_SIZE);
    uint32_t version = get_u32(p + MIXRT_PLAN_OFF_VERSION);
    MIXRT_CHECK(ctx, version >= MIXRT_PLAN_FORMAT_MIN_VERSION && version <= MIXRT_PLAN_FORMAT_VERSION,
                MIXRT_STATUS_UNSUPPORTED,
                "'%s' is plan format version %u; this mixrt (%s) reads versions %u to %u; rebuild the plan with mixrt "
                "build",
                name, version, MIXRT_VERSION_STRING, MIXRT_PLAN_FORMAT_MIN_VERSION, MIXRT_PLAN_FORMAT_VERSION);
    MIXRT_CHECK(ctx, size >= MIXRT_PLAN_HEADER_SIZE, MIXRT_STATUS_IO_ERROR,
                "'%s' is truncated: %zu bytes, shorter than a plan header (%u bytes)", name, size,
                MIXRT_PLAN_HEADER_SIZE);
    uint32_t header_size = get_u32(p + MIXRT_PLAN_OFF_HEADER_SIZE);
    MIXRT_CHECK(ctx, header_size == MIXRT_PLAN_HEADER_SIZE, MIXRT_STATUS_INVALID_MODEL,
                "'%s' has a plan header size of %u bytes; format version %u has %u (the file is corrupt)", name,
                header_size, version, MIXRT_PLAN_HEADER_SIZE);
    uint64_t declared = get_u64(p + MIXRT_PLAN_OFF_FILE_SIZE);
    MIXRT_CHECK(ctx, declared <= size, MIXRT_STATUS_IO_ERROR,
                "'%s' is truncated: its header says %llu bytes, found %zu", name, (unsigned long long)declared, size);
    MIXRT_CHECK(ctx, declared == size, MIXRT_STATUS_INVALID_MODEL,
                "'%s' has %zu bytes, but its header says %llu (%llu unexpected trailing bytes)", name, size,
                (unsigned long long)declared, (unsigned long long)(size - declared));
    uint32_t count = get_u32(p + MIXRT_PLAN_OFF_SECTION_COUNT);
    MIXRT_CHECK(ctx, count <= MIXRT_PLAN_MAX_SECTIONS, MIXRT_STATUS_INVALID_MODEL,
                "'%s' declares %u sections, at most %u are allowed (the file is corrupt)", name, count,
                MIXRT_PLAN_MAX_SECTIONS);
    size_t table_end = MIXRT_PLAN_HEADER_SIZE + (size_t)MIXRT_PLAN_ENTRY_SIZE * count;
    size_t header_end = table_end + 8;
    MIXRT_CHECK(ctx, header_end <= size, MIXRT_STATUS_INVALID_MODEL,
                "'%s': its section table (%u entries) and header checksum end at byte %zu, past the end of the file "
                "(%zu bytes)",
                name, count, header_end, size);
    uint64_t stored = get_u64(p + table_end), computed = mixrt_plan_checksum(p, table_end);
    MIXRT_CHECK(ctx, stored == computed, MIXRT_STATUS_INVALID_MODEL,
                "'%s': header checksum mismatch (stored 0x%016llx, computed 0x%016llx): the file is corrupt", name,
                (unsigned long long)stored, (unsigned long long)computed);
    uint32_t reserved = get_u32(p + MIXRT_PLAN_OFF_RESERVED);
    MIXRT_CHECK(ctx, reserved == 0, MIXRT_STATUS_INVALID_MODEL, "'%s': reserved header field is 0x%08x, expected 0",
                name, reserved);

    struct mixrt_plan_file r;
    memset(&r, 0, sizeof r);
    for (int i = 0; i < 3; i++) {
        const uint8_t *s = p + ident_fields[i].offset;
        size_t w = ident_fields[i].width, len = 0;
        while (len < w && s[len]) len++;
        for (size_t j = 0; j < len; j++)
            MIXRT_CHECK(ctx, printable(s[j]), MIXRT_STATUS_INVALID_MODEL,
                        "'%s': the %s has a non-printable byte 0x%02x at position %zu", name, ident_fields[i].what,
                        s[j], j);
        for (size_t j = len; j < w; j++)
            MIXRT_CHECK(ctx, s[j] == 0, MIXRT_STATUS_INVALID_MODEL,
                        "'%s': the %s has a non-zero byte 0x%02x in its padding at position %zu", name,
                        ident_fields[i].what, s[j], j);
        memcpy(ident_member(&r.ident, i), s, len);
    }

    /* The table, entry by entry: every value bounded before it is added to another. */
    size_t first_of_kind[KIND_MAX + 1] = {0};
    uint64_t data_start = align_up64(header_end);
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = p + MIXRT_PLAN_HEADER_SIZE + MIXRT_PLAN_ENTRY_SIZE * i;
        uint32_t kind = get_u32(e), flags = get_u32(e + 4);
        uint64_t off = get_u64(e + 8), len = get_u64(e + 16);
        const char *kn = kind <= kind_last(version) ? mixrt_plan_section_name(kind) : NULL;
        MIXRT_CHECK(ctx, kn, MIXRT_STATUS_INVALID_MODEL,
                    "'%s': section #%zu has unknown kind %u (format version %u knows META 1, GRAPH 2, WEIGHTS 3, "
                    "KERNELS 4%s)",
                    name, i, kind, version, version >= 2 ? ", PACKED 5" : "");
        MIXRT_CHECK(ctx, !first_of_kind[kind], MIXRT_STATUS_INVALID_MODEL,
                    "'%s': section #%zu is a second %s section (the first is #%zu)", name, i, kn,
                    first_of_kind[kind] - 1);
        first_of_kind[kind] = i + 1;
        MIXRT_CHECK(ctx, flags == 0, MIXRT_STATUS_INVALID_MODEL,
                    "'%s': section #%zu (%s) has flags 0x%08x; format version %u defines none", name, i, kn, flags,
                    version);
        MIXRT_CHECK(ctx, off % MIXRT_PLAN_ALIGN == 0, MIXRT_STATUS_INVALID_MODEL,
                    "'%s': section #%zu (%s) starts at offset %llu, not a multiple of %u", name, i, kn,
                    (unsigned long long)off, MIXRT_PLAN_ALIGN);
        MIXRT_CHECK(ctx, off >= data_start, MIXRT_STATUS_INVALID_MODEL,
                    "'%s': section #%zu (%s) starts at offset %llu, inside the header (data starts at %llu)", name, i,
                    kn, (unsigned long long)off, (unsigned long long)data_start);
        MIXRT_CHECK(ctx, off <= size && len <= size - off, MIXRT_STATUS_INVALID_MODEL,
                    "'%s': section #%zu (%s) of %llu bytes at offset %llu ends past the end of the file (%zu bytes)",
                    name, i, kn, (unsigned long long)len, (unsigned long long)off, size);
        r.sections[i].kind = kind;
        r.sections[i].data = p + off;
        r.sections[i].size = len;
    }
    for (uint32_t k = 1; k <= KIND_MAX; k++)
        MIXRT_CHECK(ctx, !kind_required(k) || first_of_kind[k], MIXRT_STATUS_INVALID_MODEL,
                    "'%s' has no %s section (the file is corrupt)", name, kind_names[k]);

    /* Overlaps and padding, in offset order (insertion sort: count <= 16). */
    size_t order[MIXRT_PLAN_MAX_SECTIONS];
    for (size_t i = 0; i < count; i++) {
        size_t j = i;
        const uint8_t *ei = r.sections[i].data;
        while (j > 0 && (const uint8_t *)r.sections[order[j - 1]].data > ei) {
            order[j] = order[j - 1];
            j--;
        }
        order[j] = i;
    }
    size_t cursor = header_end, prev = SIZE_MAX;
    for (size_t k = 0; k <= count; k++) {
        size_t i = k < count ? order[k] : SIZE_MAX;
        size_t off = i != SIZE_MAX ? (size_t)((const uint8_t *)r.sections[i].data - p) : size;
        if (i != SIZE_MAX && r.sections[i].size == 0) continue; /* empty: occupies nothing */
        /* Only two sections can overlap: each starts after the header and ends in the file. */
        if (off < cursor && prev != SIZE_MAX && i != SIZE_MAX)
            MIXRT_CHECK(ctx, false, MIXRT_STATUS_INVALID_MODEL,
                        "'%s': sections #%zu (%s, bytes %zu..%zu) and #%zu (%s, from byte %zu) overlap", name, prev,
                        kind_names[r.sections[prev].kind], cursor - (size_t)r.sections[prev].size, cursor - 1, i,
                        kind_names[r.sections[i].kind], off);
        MIXRT_CHECK(ctx, off >= cursor, MIXRT_STATUS_INTERNAL, "'%s': section layout check failed", name);
        for (size_t b = cursor; b < off; b++)
            MIXRT_CHECK(ctx, p[b] == 0, MIXRT_STATUS_INVALID_MODEL,
                        "'%s': padding byte at offset %zu is 0x%02x, expected 0 (the file is corrupt)", name, b, p[b]);
        if (i != SIZE_MAX) {
            cursor = off + (size_t)r.sections[i].size;
            prev = i;
        }
    }

    /* Checksums last: they read every byte. */
    for (size_t i = 0; i < count; i++) {
        const uint8_t *e = p + MIXRT_PLAN_HEADER_SIZE + MIXRT_PLAN_ENTRY_SIZE * i;
        uint64_t want = get_u64(e + 24);
        uint64_t got = mixrt_plan_checksum(r.sections[i].data, (size_t)r.sections[i].size);
        MIXRT_CHECK(ctx, want == got, MIXRT_STATUS_INVALID_MODEL,
                    "'%s': checksum mismatch in section #%zu (%s, %llu bytes at offset %zu): stored 0x%016llx, "
                    "computed 0x%016llx; the file is corrupt",
                    name, i, kind_names[r.sections[i].kind], (unsigned long long)r.sections[i].size,
                    (size_t)((const uint8_t *)r.sections[i].data - p), (unsigned long long)want,
                    (unsigned long long)got);
    }
    r.data = p;
    r.size = size;
    r.format_version = version;
    r.n_sections = count;
    *f = r;
fail:
    return status;
}

mixrt_status mixrt_plan_open_buffer(mixrt_context_t ctx, const void *data, size_t size, const char *what,
                                    struct mixrt_plan_file *out) {
    mixrt_status status = MIXRT_STATUS_OK;
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    const char *name = what ? what : "plan buffer";
    MIXRT_CHECK(ctx, out, MIXRT_STATUS_INVALID_ARGUMENT, "cannot open '%s': out is NULL", name);
    MIXRT_CHECK(ctx, data || size == 0, MIXRT_STATUS_INVALID_ARGUMENT, "cannot open '%s': data is NULL", name);
    MIXRT_TRY(plan_validate(ctx, name, data ? data : (const void *)"", size, out));
fail:
    return status;
}

mixrt_status mixrt_plan_open(mixrt_context_t ctx, const char *path, struct mixrt_plan_file *out) {
    mixrt_status status = MIXRT_STATUS_OK;
    void *map = NULL;
    size_t map_size = 0;
    int fd = -1;
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    MIXRT_CHECK(ctx, path, MIXRT_STATUS_INVALID_ARGUMENT, "cannot open plan file: no path given");
    MIXRT_CHECK(ctx, out, MIXRT_STATUS_INVALID_ARGUMENT, "cannot open plan file '%s': out is NULL", path);
    /* O_NONBLOCK: a FIFO named as the plan must not hang the open (refused below). */
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    MIXRT_CHECK(ctx, fd >= 0, MIXRT_STATUS_IO_ERROR, "cannot open plan file '%s': %s", path, strerror(errno));
    struct stat st;
    MIXRT_CHECK(ctx, fstat(fd, &st) == 0, MIXRT_STATUS_IO_ERROR, "cannot open plan file '%s': %s", path,
                strerror(errno));
    MIXRT_CHECK(ctx, !S_ISDIR(st.st_mode), MIXRT_STATUS_IO_ERROR, "cannot open plan file '%s': it is a directory",
                path);
    MIXRT_CHECK(ctx, S_ISREG(st.st_mode), MIXRT_STATUS_IO_ERROR, "cannot open plan file '%s': not a regular file",
                path);
    MIXRT_CHECK(ctx, st.st_size >= 0 && (uint64_t)st.st_size <= SIZE_MAX, MIXRT_STATUS_IO_ERROR,
                "cannot open plan file '%s': %lld bytes do not fit in memory here", path, (long long)st.st_size);
    map_size = (size_t)st.st_size;
    if (map_size > 0) { /* mmap refuses length 0; an empty file is reported by the validation */
        map = mmap(NULL, map_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED) {
            map = NULL;
            MIXRT_CHECK(ctx, false, MIXRT_STATUS_IO_ERROR, "cannot map plan file '%s': %s", path, strerror(errno));
        }
    }
    close(fd);
    fd = -1;
    MIXRT_TRY(plan_validate(ctx, path, map ? map : (const void *)"", map_size, out));
    out->map = map;
    out->map_size = map_size;
    return MIXRT_STATUS_OK;
fail:
    if (fd >= 0) close(fd);
    if (map) munmap(map, map_size);
    return status;
}

const struct mixrt_plan_section *mixrt_plan_find(const struct mixrt_plan_file *f, uint32_t kind) {
    if (!f) return NULL;
    for (size_t i = 0; i < f->n_sections && i < MIXRT_PLAN_MAX_SECTIONS; i++)
        if (f->sections[i].kind == kind) return &f->sections[i];
    return NULL;
}

void mixrt_plan_close(mixrt_context_t ctx, struct mixrt_plan_file *f) {
    (void)ctx; /* nothing comes from the allocator; kept for symmetry with open */
    if (!f) return;
    if (f->map && f->map_size) munmap(f->map, f->map_size);
    memset(f, 0, sizeof *f);
}

bool mixrt_plan_fix_checksums(void *data, size_t size) {
    uint8_t *p = data;
    if (!p || size < MIXRT_PLAN_HEADER_SIZE) return false;
    if (get_u32(p + MIXRT_PLAN_OFF_HEADER_SIZE) != MIXRT_PLAN_HEADER_SIZE) return false;
    uint32_t count = get_u32(p + MIXRT_PLAN_OFF_SECTION_COUNT);
    if (count > MIXRT_PLAN_MAX_SECTIONS) return false;
    size_t table_end = MIXRT_PLAN_HEADER_SIZE + (size_t)MIXRT_PLAN_ENTRY_SIZE * count;
    if (table_end + 8 > size) return false;
    for (size_t i = 0; i < count; i++) {
        uint8_t *e = p + MIXRT_PLAN_HEADER_SIZE + MIXRT_PLAN_ENTRY_SIZE * i;
        uint64_t off = get_u64(e + 8), len = get_u64(e + 16);
        if (off <= size && len <= size - off) put_u64(e + 24, mixrt_plan_checksum(p + off, (size_t)len));
    }
    put_u64(p + table_end, mixrt_plan_checksum(p, table_end));
    return true;
}
