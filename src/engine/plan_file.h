/* plan_file.h - the plan file container: a versioned, checksummed file of sections that
 * the engine (engine.c) fills with its META, GRAPH, WEIGHTS and KERNELS blobs. This layer
 * knows nothing of what the sections mean; it writes them and, on load, hands back only
 * sections it has checked byte for byte.
 *
 * Format, version 2 (version 1 is the same without the PACKED kind; both are read, version 2
 * is written). Every integer is little-endian; offsets are from the file start.
 *
 *   offset  size  field
 *        0     8  magic "MIXRTPLN" (no NUL)
 *        8     4  u32 format version (2; 1 still read)
 *       12     4  u32 header size: bytes of this fixed header, 224 in versions 1 and 2
 *       16     8  u64 file size: the whole file, in bytes
 *       24    32  build id, NUL padded (at most 32 characters; printable ASCII)
 *       56   128  target, NUL padded ("cpu x86_64 avx512f avx512_bf16"; at most 128)
 *      184    32  mixrt version that wrote the file, NUL padded ("0.1.0"; at most 32)
 *      216     4  u32 section count N (N <= MIXRT_PLAN_MAX_SECTIONS)
 *      220     4  u32 reserved, 0
 *      224  32*N  section table; entry i at 224 + 32*i:
 *                   +0  u32 kind (enum mixrt_plan_section_kind)
 *                   +4  u32 flags, 0 (none defined yet)
 *                   +8  u64 offset of the section's data, a multiple of 64
 *                  +16  u64 size of the section's data in bytes (0 allowed)
 *                  +24  u64 checksum: CRC-64/XZ of the section's data
 *   224+32N     8  u64 header checksum: CRC-64/XZ of bytes [0, 224 + 32*N)
 *
 * then the sections' data, each starting at a multiple of 64 (the WEIGHTS section is
 * mmapped: the mapping is page aligned, so a 64-aligned file offset gives 64-aligned
 * memory, and the engine keeps each tensor 64-aligned inside its section). Every byte not
 * in the header, the table, the header checksum or a section is zero padding; the reader
 * checks that too, so a flipped bit anywhere in the file is caught. The writer lays
 * sections out in table order, each at the next multiple of 64, and the file ends with
 * the last section's data (no trailing padding).
 *
 * Kinds: META 1 (key=value text), GRAPH 2 (serialized ONNX ModelProto), WEIGHTS 3 (raw
 * tensor bytes), KERNELS 4 (text), PACKED 5 (version 2 only: kernels' weights already in
 * their library's layout; its inner format is plan.c's). The first four are required exactly
 * once; PACKED is optional, at most once, anywhere in the table. Any other kind is refused,
 * so N is 4 in every valid version-1 file and 4 or 5 in a version-2 one; the table is
 * general so a later version can add kinds. The engine lists PACKED last (and omits it
 * when no kernel holds packed weights): its blobs are 64-aligned inside it, so in a mapped
 * file they are 64-aligned in memory.
 *
 * CRC-64/XZ (also "CRC-64/GO-ECMA"): polynomial 0x42F0E1EBA9EA3693, reflected, initial
 * value and final xor all ones; check value of "123456789" is 0x995DC9BBDF1939FA. */
#ifndef MIXRT_ENGINE_PLAN_FILE_H
#define MIXRT_ENGINE_PLAN_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mixrt/mixrt.h"

#define MIXRT_PLAN_MAGIC "MIXRTPLN"
#define MIXRT_PLAN_FORMAT_VERSION 2u     /* what the writer writes */
#define MIXRT_PLAN_FORMAT_MIN_VERSION 1u /* the oldest the reader still reads */
#define MIXRT_PLAN_HEADER_SIZE 224u     /* fixed header, before the section table */
#define MIXRT_PLAN_ENTRY_SIZE 32u       /* one section table entry */
#define MIXRT_PLAN_ALIGN 64u            /* alignment of every section's file offset */
#define MIXRT_PLAN_MAX_SECTIONS 16u     /* table entries a reader accepts */

/* Field offsets of the fixed header (tests and fuzzers patch fields through these). */
enum mixrt_plan_header_offset {
    MIXRT_PLAN_OFF_MAGIC = 0,
    MIXRT_PLAN_OFF_VERSION = 8,
    MIXRT_PLAN_OFF_HEADER_SIZE = 12,
    MIXRT_PLAN_OFF_FILE_SIZE = 16,
    MIXRT_PLAN_OFF_BUILD_ID = 24,
    MIXRT_PLAN_OFF_TARGET = 56,
    MIXRT_PLAN_OFF_MIXRT_VERSION = 184,
    MIXRT_PLAN_OFF_SECTION_COUNT = 216,
    MIXRT_PLAN_OFF_RESERVED = 220,
    MIXRT_PLAN_OFF_TABLE = 224,
};

/* Serialized: numbers only grow. */
enum mixrt_plan_section_kind {
    MIXRT_PLAN_META = 1,
    MIXRT_PLAN_GRAPH = 2,
    MIXRT_PLAN_WEIGHTS = 3,
    MIXRT_PLAN_KERNELS = 4,
    MIXRT_PLAN_PACKED = 5, /* version 2, optional */
};

/* A section: for the writer, data to copy (size bytes; may be NULL when size is 0); from
 * the reader, a pointer into the mapping or the borrowed buffer (never NULL, even for
 * size 0). */
struct mixrt_plan_section {
    uint32_t kind;
    const void *data;
    uint64_t size;
};

/* Identity strings, NUL-terminated, printable ASCII (0x20..0x7e). The engine decides
 * compatibility from them; this layer only stores and returns them. */
struct mixrt_plan_ident {
    char build_id[33];
    char target[129];
    char mixrt_version[33];
};

/* An open plan. Sections point into the mapping (mixrt_plan_open) or into the caller's
 * buffer (mixrt_plan_open_buffer) and live until mixrt_plan_close, or as long as that
 * buffer. The memory alignment of a section's data is the alignment of the start of the
 * file image plus its 64-aligned offset: 64-aligned for an open file (page-aligned
 * mapping), and for a buffer only if the buffer itself is. */
struct mixrt_plan_file {
    void *map;                  /* the mapping when opened from a file, else NULL */
    size_t map_size;            /* its length */
    const uint8_t *data;        /* the whole file image */
    size_t size;                /* its size in bytes */
    uint32_t format_version;
    struct mixrt_plan_ident ident;
    size_t n_sections;
    struct mixrt_plan_section sections[MIXRT_PLAN_MAX_SECTIONS]; /* in table order */
};

/* Writes a plan file with the given sections in the given order: first to "<path>.tmp",
 * then renamed over path, so path is either the old file or the complete new one. The
 * sections must be the required kinds, each once (PACKED optional, at most once); ident
 * strings must be printable and fit. Nothing is kept of the arguments. IO_ERROR naming the
 * file when the write fails (the .tmp file is removed). */
mixrt_status mixrt_plan_write(mixrt_context_t ctx, const char *path, const struct mixrt_plan_ident *id,
                              const struct mixrt_plan_section *sections, size_t n);

/* The same file image in memory: *out (free with mixrt_free(ctx, *out, *out_size)) and
 * *out_size are written only on success. */
mixrt_status mixrt_plan_write_buffer(mixrt_context_t ctx, const struct mixrt_plan_ident *id,
                                     const struct mixrt_plan_section *sections, size_t n, void **out,
                                     size_t *out_size);

/* Maps path read-only (MAP_PRIVATE) and validates everything before returning: magic,
 * format version, header size, declared vs actual file size, header checksum, ident
 * strings, every section's kind, flags, offset, size, alignment and checksum, no
 * overlaps, zero padding, required sections present once. *out is written only on
 * success and then owns the mapping (release with mixrt_plan_close). Every message names
 * the file. Statuses: IO_ERROR (cannot open/map, not a regular file, truncated),
 * UNSUPPORTED (another format version), INVALID_MODEL (anything else wrong).
 * The file must not be truncated by someone else while it is mapped (SIGBUS). */
mixrt_status mixrt_plan_open(mixrt_context_t ctx, const char *path, struct mixrt_plan_file *out);

/* The same checks on a plan image in memory; borrows data (it must outlive *out and stay
 * unchanged). what names the image in messages (NULL: "plan buffer"). */
mixrt_status mixrt_plan_open_buffer(mixrt_context_t ctx, const void *data, size_t size, const char *what,
                                    struct mixrt_plan_file *out);

/* The section of that kind, or NULL (also for a NULL or closed f). */
const struct mixrt_plan_section *mixrt_plan_find(const struct mixrt_plan_file *f, uint32_t kind);

/* Unmaps (when opened from a file) and zeroes *f. Safe on a zeroed struct, twice, or NULL. */
void mixrt_plan_close(mixrt_context_t ctx, struct mixrt_plan_file *f);

/* "META", "GRAPH", "WEIGHTS", "KERNELS", "PACKED"; NULL for an unknown kind. */
const char *mixrt_plan_section_name(uint32_t kind);

/* CRC-64/XZ of size bytes (see the top of this file). */
uint64_t mixrt_plan_checksum(const void *data, size_t size);

/* For fuzzers and tests: recomputes in place the checksum of every section whose range
 * lies inside the image, then the header checksum, when the header size field is 224
 * and the section count and table are in bounds; returns false (image untouched)
 * otherwise. Does not touch any other field. */
bool mixrt_plan_fix_checksums(void *data, size_t size);

#endif /* MIXRT_ENGINE_PLAN_FILE_H */
