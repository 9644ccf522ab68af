/* test_tensor_io.c - tensor files and TensorProto decoding: round trips of every dtype
 * through .npy and .pb on random data, files written by NumPy/onnx themselves
 * (scripts/make_io_fixtures.py, when /usr/bin/python3 has them), typed fields, external
 * data and its refusals, and malformed inputs that must fail cleanly. */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"
#include "mixrt/mixrt_io.h"
#include "onnx/tensorproto.h"
#include "testutil.h"

static mixrt_context_t ctx;
static char tmpdir[64];

static void path_in(char *buf, size_t size, const char *name) { snprintf(buf, size, "%.63s/%.60s", tmpdir, name); }

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    TU_CHECK(f != NULL, "cannot create %s", path);
    if (!f) return;
    if (n) fwrite(data, 1, n, f);
    fclose(f);
}

static void rm_tree(const char *path) {
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
            char sub[4096];
            snprintf(sub, sizeof(sub), "%s/%s", path, e->d_name);
            rm_tree(sub);
        }
        if (d) closedir(d);
        rmdir(path);
    } else {
        unlink(path);
    }
}

static bool msg_has(const char *needle) { return strstr(mixrt_context_last_error(ctx), needle) != NULL; }

/* Same dtype, dims and bytes (strings by content). */
static bool same_tensor(const struct mixrt_tensor *a, const struct mixrt_tensor *b) {
    if (a->dtype != b->dtype || a->rank != b->rank) return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i]) return false;
    size_t n = mixrt_tensor_numel(a);
    if (a->dtype == MIXRT_DTYPE_STRING) {
        const struct mixrt_string *x = a->data, *y = b->data;
        for (size_t i = 0; i < n; i++)
            if (x[i].len != y[i].len || (x[i].len && memcmp(x[i].ptr, y[i].ptr, x[i].len))) return false;
        return true;
    }
    size_t nb = n * mixrt_dtype_size(a->dtype);
    return a->nbytes == nb && b->nbytes == nb && (!nb || !memcmp(a->data, b->data, nb));
}

static const mixrt_dtype all_dtypes[] = {
    MIXRT_DTYPE_F32, MIXRT_DTYPE_U8,  MIXRT_DTYPE_I8,   MIXRT_DTYPE_U16, MIXRT_DTYPE_I16,
    MIXRT_DTYPE_I32, MIXRT_DTYPE_I64, MIXRT_DTYPE_STRING, MIXRT_DTYPE_BOOL, MIXRT_DTYPE_F16,
    MIXRT_DTYPE_F64, MIXRT_DTYPE_U32, MIXRT_DTYPE_U64,  MIXRT_DTYPE_BF16,
};
#define N_DTYPES (sizeof(all_dtypes) / sizeof(all_dtypes[0]))

/* A tensor of random shape (rank 0..4, dims 0..5; sometimes empty) and random bits. */
static struct mixrt_tensor *random_tensor(mixrt_dtype dt, int force_rank) {
    int64_t dims[4];
    int rank = force_rank >= 0 ? force_rank : (int)(tu_rand() % 5);
    for (int i = 0; i < rank; i++) dims[i] = (int64_t)(tu_rand() % 6);
    struct mixrt_tensor *t = NULL;
    if (mixrt_tensor_create(ctx, dt, rank, dims, &t) != MIXRT_STATUS_OK) return NULL;
    size_t n = mixrt_tensor_numel(t);
    if (dt == MIXRT_DTYPE_STRING) {
        struct mixrt_string *s = t->data;
        for (size_t i = 0; i < n; i++) {
            size_t len = (size_t)(tu_rand() % 12);
            s[i].ptr = mixrt_alloc(ctx, len + 1);
            for (size_t j = 0; j < len; j++) s[i].ptr[j] = (char)(tu_rand() % 255 + 1);
            s[i].ptr[len] = 0;
            s[i].len = len;
        }
    } else {
        uint8_t *p = t->data;
        for (size_t i = 0; i < t->nbytes; i++) p[i] = (uint8_t)tu_rand();
        if (dt == MIXRT_DTYPE_BOOL)
            for (size_t i = 0; i < n; i++) p[i] &= 1;
    }
    return t;
}

static void test_round_trips(void) {
    char pb[256], npy[256];
    path_in(pb, sizeof(pb), "rt.pb");
    path_in(npy, sizeof(npy), "rt.npy");
    for (size_t d = 0; d < N_DTYPES; d++) {
        mixrt_dtype dt = all_dtypes[d];
        for (int rep = 0; rep < 12; rep++) {
            struct mixrt_tensor *t = random_tensor(dt, rep < 5 ? rep : -1), *back = NULL;
            char *name = NULL;
            TU_CHECK(t != NULL, "create %s", mixrt_dtype_name(dt));
            if (!t) continue;
            const char *want_name = rep % 3 ? "tensor:x" : NULL;
            mixrt_status st = mixrt_pb_write(ctx, pb, t, want_name);
            TU_CHECK(st == MIXRT_STATUS_OK, "pb_write %s: %s", mixrt_dtype_name(dt), mixrt_context_last_error(ctx));
            st = mixrt_pb_read(ctx, pb, &back, &name);
            TU_CHECK(st == MIXRT_STATUS_OK, "pb_read %s: %s", mixrt_dtype_name(dt), mixrt_context_last_error(ctx));
            if (st == MIXRT_STATUS_OK) {
                TU_CHECK(same_tensor(t, back), "pb round trip of %s rep %d differs", mixrt_dtype_name(dt), rep);
                TU_CHECK(want_name ? name && !strcmp(name, want_name) : name == NULL, "pb name round trip (%s)",
                         name ? name : "NULL");
                if (name) mixrt_free(ctx, name, strlen(name) + 1);
                mixrt_tensor_destroy(ctx, back);
                back = NULL;
            }
            st = mixrt_npy_write(ctx, npy, t);
            if (dt == MIXRT_DTYPE_STRING) {
                TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED_DTYPE, "npy_write string must be refused");
            } else if (dt == MIXRT_DTYPE_BF16) {
                TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED_DTYPE && msg_has("widen") && msg_has("f32"),
                         "npy_write bf16 must be refused with a hint: %s", mixrt_context_last_error(ctx));
            } else {
                TU_CHECK(st == MIXRT_STATUS_OK, "npy_write %s: %s", mixrt_dtype_name(dt),
                         mixrt_context_last_error(ctx));
                st = mixrt_npy_read(ctx, npy, &back);
                TU_CHECK(st == MIXRT_STATUS_OK, "npy_read %s: %s", mixrt_dtype_name(dt),
                         mixrt_context_last_error(ctx));
                if (st == MIXRT_STATUS_OK) {
                    TU_CHECK(same_tensor(t, back), "npy round trip of %s rep %d differs", mixrt_dtype_name(dt), rep);
                    mixrt_tensor_destroy(ctx, back);
                }
                /* The data must start on a 64-byte boundary, as NumPy writes it. */
                struct stat sb;
                stat(npy, &sb);
                TU_CHECK(((size_t)sb.st_size - t->nbytes) % 64 == 0, "npy header of %s not 64-aligned",
                         mixrt_dtype_name(dt));
            }
            mixrt_tensor_destroy(ctx, t);
        }
    }
}

/* ---- TensorProto built in C ---- */

static mixrt_status decode(Onnx__TensorProto *tp, const char *base_dir, struct mixrt_tensor *t) {
    struct mixrt_external_policy ext = {.base_dir = base_dir};
    return mixrt_onnx_tensor_from_proto(ctx, tp, &ext, t);
}

static void test_typed_fields(void) {
    struct mixrt_tensor t;
    int64_t dims[1] = {4};
    Onnx__TensorProto tp;

    /* f16 bits in the low 16 bits of int32_data (upper bits must be ignored). */
    int32_t f16bits[4] = {0x3C00, 0xC000, 0x7E00, 0x10001};
    onnx__tensor_proto__init(&tp);
    tp.name = "h";
    tp.has_data_type = 1;
    tp.data_type = MIXRT_DTYPE_F16;
    tp.n_dims = 1;
    tp.dims = dims;
    tp.n_int32_data = 4;
    tp.int32_data = f16bits;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_OK, "f16 int32_data: %s", mixrt_context_last_error(ctx));
    if (t.data) {
        const mixrt_f16 *h = t.data;
        TU_CHECK(mixrt_f16_to_float(h[0]) == 1.0f && mixrt_f16_to_float(h[1]) == -2.0f && h[2].bits == 0x7E00 &&
                     h[3].bits == 0x0001,
                 "f16 values from int32_data");
    }
    mixrt_tensor_release(ctx, &t);

    int32_t bfbits[4] = {0x3F80, 0xC020, 0x7FC0, 0x0001};
    tp.data_type = MIXRT_DTYPE_BF16;
    tp.int32_data = bfbits;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_OK, "bf16 int32_data: %s", mixrt_context_last_error(ctx));
    if (t.data) {
        const mixrt_bf16 *b = t.data;
        TU_CHECK(mixrt_bf16_to_float(b[0]) == 1.0f && mixrt_bf16_to_float(b[1]) == -2.5f && b[2].bits == 0x7FC0 &&
                     b[3].bits == 1,
                 "bf16 values from int32_data");
    }
    mixrt_tensor_release(ctx, &t);

    /* int8/uint8/int16/bool from int32_data. */
    int32_t small[4] = {-128, 127, -1, 5};
    tp.int32_data = small;
    tp.data_type = MIXRT_DTYPE_I8;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_OK && ((int8_t *)t.data)[0] == -128 && ((int8_t *)t.data)[2] == -1,
             "i8 from int32_data");
    mixrt_tensor_release(ctx, &t);
    tp.data_type = MIXRT_DTYPE_I16;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_OK && ((int16_t *)t.data)[0] == -128 && ((int16_t *)t.data)[3] == 5,
             "i16 from int32_data");
    mixrt_tensor_release(ctx, &t);
    tp.data_type = MIXRT_DTYPE_BOOL;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_OK && ((uint8_t *)t.data)[0] == 1 && ((uint8_t *)t.data)[3] == 1,
             "bool from int32_data is 0/1");
    mixrt_tensor_release(ctx, &t);

    /* uint32 from uint64_data. */
    uint64_t u[4] = {0, 1, 0xFFFFFFFFu, 42};
    tp.n_int32_data = 0;
    tp.int32_data = NULL;
    tp.n_uint64_data = 4;
    tp.uint64_data = u;
    tp.data_type = MIXRT_DTYPE_U32;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_OK && ((uint32_t *)t.data)[2] == 0xFFFFFFFFu,
             "u32 from uint64_data");
    mixrt_tensor_release(ctx, &t);

    /* A field that cannot hold the dtype. */
    tp.data_type = MIXRT_DTYPE_I64;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_INVALID_MODEL && msg_has("uint64_data") && msg_has("'h'"),
             "uint64_data for i64 refused: %s", mixrt_context_last_error(ctx));
    /* Wrong count. */
    tp.data_type = MIXRT_DTYPE_U64;
    tp.n_uint64_data = 3;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_INVALID_MODEL && msg_has("3 values, expected 4"),
             "count mismatch: %s", mixrt_context_last_error(ctx));
    tp.n_uint64_data = 0;
    tp.uint64_data = NULL;

    /* raw_data of the wrong size: the message names tensor, sizes, dtype and dims. */
    float f[3] = {1, 2, 3};
    int64_t d3[1] = {3};
    tp.dims = d3;
    tp.data_type = MIXRT_DTYPE_F32;
    tp.name = "w";
    tp.has_raw_data = 1;
    tp.raw_data.data = (uint8_t *)f;
    tp.raw_data.len = 10;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_INVALID_MODEL &&
                 !strcmp(mixrt_context_last_error(ctx), "tensor 'w': raw_data has 10 bytes, expected 12 for f32 [3]"),
             "raw_data size message: %s", mixrt_context_last_error(ctx));
    tp.raw_data.len = 12;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_OK && ((float *)t.data)[2] == 3.0f, "raw f32");
    mixrt_tensor_release(ctx, &t);
    /* raw_data plus a typed field is ambiguous. */
    tp.n_float_data = 3;
    tp.float_data = f;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_INVALID_MODEL, "raw_data + float_data refused");
    tp.n_float_data = 0;
    tp.float_data = NULL;

    /* Unsupported dtypes name the tensor and dtype. */
    static const int32_t bad_types[] = {0, MIXRT_DTYPE_C64, MIXRT_DTYPE_C128, MIXRT_DTYPE_F8E4M3FN,
                                        MIXRT_DTYPE_F8E5M2, MIXRT_DTYPE_I4, MIXRT_DTYPE_U4, 99, -3};
    for (size_t i = 0; i < sizeof(bad_types) / sizeof(bad_types[0]); i++) {
        tp.data_type = bad_types[i];
        mixrt_status st = decode(&tp, NULL, &t);
        TU_CHECK(st == MIXRT_STATUS_UNSUPPORTED_DTYPE && msg_has("'w'") &&
                     (bad_types[i] == 0 || msg_has(mixrt_dtype_name((mixrt_dtype)bad_types[i]))),
                 "dtype %d: status %d, %s", bad_types[i], st, mixrt_context_last_error(ctx));
        TU_CHECK(t.data == NULL && t.flags == 0, "failed decode leaves the tensor empty");
    }
    tp.data_type = MIXRT_DTYPE_F32;

    /* Dims: negative, overflowing, too many. */
    int64_t neg[2] = {3, -1}, huge[3] = {INT64_MAX, INT64_MAX, 2};
    tp.n_dims = 2;
    tp.dims = neg;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_INVALID_MODEL && msg_has("negative"), "negative dim: %s",
             mixrt_context_last_error(ctx));
    tp.n_dims = 3;
    tp.dims = huge;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_INVALID_MODEL, "overflowing dims: %s",
             mixrt_context_last_error(ctx));
    int64_t many[17] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    tp.n_dims = 17;
    tp.dims = many;
    TU_CHECK(decode(&tp, NULL, &t) != MIXRT_STATUS_OK, "rank 17 refused");

    /* Segments are not supported. */
    Onnx__TensorProto__Segment seg;
    onnx__tensor_proto__segment__init(&seg);
    tp.n_dims = 1;
    tp.dims = d3;
    tp.segment = &seg;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_UNSUPPORTED && msg_has("segment"), "segment: %s",
             mixrt_context_last_error(ctx));
    tp.segment = NULL;

    /* Missing data for a non-empty tensor; an empty tensor needs none. */
    tp.has_raw_data = 0;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_INVALID_MODEL, "no data refused");
    int64_t zero[2] = {0, 5};
    tp.n_dims = 2;
    tp.dims = zero;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_OK && t.data == NULL && t.rank == 2, "empty tensor: %s",
             mixrt_context_last_error(ctx));
    mixrt_tensor_release(ctx, &t);

    /* Strings from string_data. */
    ProtobufCBinaryData strs[2] = {{3, (uint8_t *)"abc"}, {0, NULL}};
    int64_t d2[1] = {2};
    onnx__tensor_proto__init(&tp);
    tp.has_data_type = 1;
    tp.data_type = MIXRT_DTYPE_STRING;
    tp.n_dims = 1;
    tp.dims = d2;
    tp.n_string_data = 2;
    tp.string_data = strs;
    TU_CHECK(decode(&tp, NULL, &t) == MIXRT_STATUS_OK, "strings: %s", mixrt_context_last_error(ctx));
    if (t.data) {
        const struct mixrt_string *s = t.data;
        TU_CHECK(s[0].len == 3 && !strcmp(s[0].ptr, "abc") && s[1].len == 0 && s[1].ptr && !s[1].ptr[0],
                 "string values");
    }
    mixrt_tensor_release(ctx, &t);
}

/* ---- external data ---- */

static void ext_proto(Onnx__TensorProto *tp, Onnx__StringStringEntryProto *kv, Onnx__StringStringEntryProto **kvp,
                      int64_t *dims, const char *location, const char *offset, const char *length) {
    onnx__tensor_proto__init(tp);
    tp->name = "ext";
    tp->has_data_type = 1;
    tp->data_type = MIXRT_DTYPE_F32;
    tp->n_dims = 1;
    tp->dims = dims;
    tp->has_data_location = 1;
    tp->data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    size_t n = 0;
    const char *keys[3] = {"location", "offset", "length"}, *vals[3] = {location, offset, length};
    for (int i = 0; i < 3; i++) {
        if (!vals[i]) continue;
        onnx__string_string_entry_proto__init(&kv[n]);
        kv[n].key = (char *)keys[i];
        kv[n].value = (char *)vals[i];
        kvp[n] = &kv[n];
        n++;
    }
    tp->n_external_data = n;
    tp->external_data = kvp;
}

static void test_external(void) {
    char model_dir[128], sub[256], p[512], outside[256];
    path_in(model_dir, sizeof(model_dir), "model");
    path_in(outside, sizeof(outside), "outside.bin");
    mkdir(model_dir, 0700);
    snprintf(sub, sizeof(sub), "%s/weights", model_dir);
    mkdir(sub, 0700);

    /* 5000 bytes of filler, then 6 floats at a non-page-aligned offset. */
    uint8_t file[5000 + 24];
    memset(file, 0xAB, sizeof(file));
    float vals[6] = {1.5f, -2.0f, 3.25f, 0.0f, 1e-3f, 7.0f};
    memcpy(file + 5000, vals, sizeof(vals));
    snprintf(p, sizeof(p), "%s/weights/w.bin", model_dir);
    write_bytes(p, file, sizeof(file));
    write_bytes(outside, file, sizeof(file));
    snprintf(p, sizeof(p), "%s/link.bin", model_dir);
    TU_CHECK(symlink(outside, p) == 0, "symlink");
    snprintf(p, sizeof(p), "%s/inlink.bin", model_dir);
    TU_CHECK(symlink("weights/w.bin", p) == 0, "symlink inside");
    snprintf(p, sizeof(p), "%s/plain.bin", model_dir);
    write_bytes(p, vals, sizeof(vals));

    Onnx__TensorProto tp;
    Onnx__StringStringEntryProto kv[3], *kvp[3];
    int64_t dims[1] = {6};
    struct mixrt_tensor t;

    ext_proto(&tp, kv, kvp, dims, "weights/w.bin", "5000", "24");
    mixrt_status st = decode(&tp, model_dir, &t);
    TU_CHECK(st == MIXRT_STATUS_OK, "external: %s", mixrt_context_last_error(ctx));
    if (st == MIXRT_STATUS_OK) {
        TU_CHECK((t.flags & MIXRT_TENSOR_OWNS_MAPPING) && t.map_base && t.map_size >= 24 && t.nbytes == 24,
                 "external tensor owns its mapping");
        TU_CHECK(!memcmp(t.data, vals, sizeof(vals)), "external values");
        mixrt_tensor_release(ctx, &t);
        TU_CHECK(t.data == NULL && t.flags == 0, "release empties");
    }
    /* No offset and no length: the whole file. Also through a symlink inside the folder. */
    ext_proto(&tp, kv, kvp, dims, "plain.bin", NULL, NULL);
    TU_CHECK(decode(&tp, model_dir, &t) == MIXRT_STATUS_OK && !memcmp(t.data, vals, 24), "whole-file external: %s",
             mixrt_context_last_error(ctx));
    mixrt_tensor_release(ctx, &t);
    ext_proto(&tp, kv, kvp, dims, "inlink.bin", "5000", NULL);
    TU_CHECK(decode(&tp, model_dir, &t) == MIXRT_STATUS_OK && !memcmp(t.data, vals, 24), "symlink inside: %s",
             mixrt_context_last_error(ctx));
    mixrt_tensor_release(ctx, &t);

    /* Refusals. */
    struct {
        const char *loc, *off, *len, *base, *expect;
        mixrt_status st;
    } bad[] = {
        {"../outside.bin", "5000", "24", model_dir, "..", MIXRT_STATUS_INVALID_MODEL},
        {"weights/../../outside.bin", "5000", "24", model_dir, "..", MIXRT_STATUS_INVALID_MODEL},
        {outside, "5000", "24", model_dir, "absolute", MIXRT_STATUS_INVALID_MODEL},
        {"link.bin", "5000", "24", model_dir, "outside", MIXRT_STATUS_INVALID_MODEL},
        {"weights/w.bin", "6000", NULL, model_dir, "beyond", MIXRT_STATUS_INVALID_MODEL},
        {"weights/w.bin", "5010", "24", model_dir, "beyond", MIXRT_STATUS_INVALID_MODEL},
        {"weights/w.bin", "18446744073709551615", "24", model_dir, "beyond", MIXRT_STATUS_INVALID_MODEL},
        {"weights/w.bin", "99999999999999999999999", "24", model_dir, "offset", MIXRT_STATUS_INVALID_MODEL},
        {"weights/w.bin", "-1", "24", model_dir, "offset", MIXRT_STATUS_INVALID_MODEL},
        {"weights/w.bin", "4996", "28", model_dir, "expected 24", MIXRT_STATUS_INVALID_MODEL},
        {"weights/w.bin", "5000", "24", NULL, "not allowed", MIXRT_STATUS_INVALID_MODEL},
        {"missing.bin", NULL, NULL, model_dir, "missing.bin", MIXRT_STATUS_IO_ERROR},
        {"weights", NULL, NULL, model_dir, "regular", MIXRT_STATUS_IO_ERROR},
        {NULL, "0", "24", model_dir, "location", MIXRT_STATUS_INVALID_MODEL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ext_proto(&tp, kv, kvp, dims, bad[i].loc, bad[i].off, bad[i].len);
        st = decode(&tp, bad[i].base, &t);
        TU_CHECK(st == bad[i].st && msg_has(bad[i].expect) && msg_has("'ext'"),
                 "external refusal %zu (%s): status %d, message: %s", i, bad[i].loc ? bad[i].loc : "(none)", st,
                 mixrt_context_last_error(ctx));
        TU_CHECK(t.data == NULL && t.flags == 0, "refused external leaves the tensor empty");
    }

    /* A standalone .pb with external data resolves it next to itself. */
    ext_proto(&tp, kv, kvp, dims, "weights/w.bin", "5000", "24");
    size_t size = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *buf = malloc(size);
    onnx__tensor_proto__pack(&tp, buf);
    snprintf(p, sizeof(p), "%s/ext.pb", model_dir);
    write_bytes(p, buf, size);
    struct mixrt_tensor *pt = NULL;
    char *name = NULL;
    st = mixrt_pb_read(ctx, p, &pt, &name);
    TU_CHECK(st == MIXRT_STATUS_OK && pt && !memcmp(pt->data, vals, 24) && name && !strcmp(name, "ext"),
             "pb with external data: %s", mixrt_context_last_error(ctx));
    if (name) mixrt_free(ctx, name, strlen(name) + 1);
    mixrt_tensor_destroy(ctx, pt);
    /* ... and the same .pb one folder up cannot reach ../ */
    ext_proto(&tp, kv, kvp, dims, "../outside.bin", "5000", "24");
    free(buf);
    size = onnx__tensor_proto__get_packed_size(&tp);
    buf = malloc(size);
    onnx__tensor_proto__pack(&tp, buf);
    write_bytes(p, buf, size);
    pt = NULL;
    TU_CHECK(mixrt_pb_read(ctx, p, &pt, NULL) == MIXRT_STATUS_INVALID_MODEL && !pt && msg_has("ext.pb"),
             "pb external escape refused: %s", mixrt_context_last_error(ctx));
    free(buf);
}

/* ---- malformed files ---- */

static size_t npy_bytes(uint8_t *buf, int major, const char *dict, const void *data, size_t n) {
    size_t hl = strlen(dict), pre = major == 1 ? 10 : 12;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = (uint8_t)major;
    buf[7] = 0;
    buf[8] = (uint8_t)(hl & 0xff);
    buf[9] = (uint8_t)(hl >> 8);
    if (major != 1) buf[10] = buf[11] = 0;
    memcpy(buf + pre, dict, hl);
    if (n) memcpy(buf + pre + hl, data, n);
    return pre + hl + n;
}

static void test_npy_handmade(void) {
    uint8_t buf[1024];
    char p[256];
    struct mixrt_tensor *t = NULL;
    path_in(p, sizeof(p), "hand.npy");

    /* Big-endian int32 with Fortran order, from hand-written bytes. */
    const uint8_t be[24] = {0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4, 0, 0, 0, 5, 0, 0, 0, 6};
    size_t n = npy_bytes(buf, 1, "{'descr': '>i4', 'fortran_order': True, 'shape': (2, 3), }\n", be, 24);
    write_bytes(p, buf, n);
    TU_CHECK(mixrt_npy_read(ctx, p, &t) == MIXRT_STATUS_OK, "be fortran: %s", mixrt_context_last_error(ctx));
    if (t) {
        /* Fortran [[1,3,5],[2,4,6]] stored column-major as 1..6. */
        const int32_t want[6] = {1, 3, 5, 2, 4, 6};
        TU_CHECK(t->dtype == MIXRT_DTYPE_I32 && t->rank == 2 && t->dims[0] == 2 && t->dims[1] == 3 &&
                     !memcmp(t->data, want, 24),
                 "be fortran values");
        mixrt_tensor_destroy(ctx, t);
        t = NULL;
    }
    /* Version 2.0, double quotes, scalar. */
    const double x = 2.5;
    n = npy_bytes(buf, 2, "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": ()}", &x, 8);
    write_bytes(p, buf, n);
    TU_CHECK(mixrt_npy_read(ctx, p, &t) == MIXRT_STATUS_OK && t && t->rank == 0 && *(double *)t->data == 2.5,
             "v2 scalar: %s", mixrt_context_last_error(ctx));
    mixrt_tensor_destroy(ctx, t);
    t = NULL;

    struct {
        const char *dict;
        size_t data;
        mixrt_status st;
        const char *msg;
    } bad[] = {
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4,), }", 8, MIXRT_STATUS_IO_ERROR, "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (4611686018427387904, 4), }", 8,
         MIXRT_STATUS_INVALID_ARGUMENT, "too large"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1000000000, 1000000000), }", 8, MIXRT_STATUS_IO_ERROR,
         "truncated"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999999,), }", 8,
         MIXRT_STATUS_INVALID_ARGUMENT, "malformed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }", 8, MIXRT_STATUS_INVALID_ARGUMENT, "malformed"},
        {"{'descr': '<c8', 'fortran_order': False, 'shape': (1,), }", 8, MIXRT_STATUS_UNSUPPORTED_DTYPE, "<c8"},
        {"{'descr': '|f4', 'fortran_order': False, 'shape': (1,), }", 8, MIXRT_STATUS_UNSUPPORTED_DTYPE, "|f4"},
        {"{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }", 8, MIXRT_STATUS_UNSUPPORTED_DTYPE,
         "structured"},
        {"{'descr': '<f4', 'fortran_order': False, }", 8, MIXRT_STATUS_INVALID_ARGUMENT, "lacks"},
        {"{'descr': '<f4', 'fortran_order': Maybe, 'shape': (1,), }", 8, MIXRT_STATUS_INVALID_ARGUMENT, "malformed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'extra': 1}", 8, MIXRT_STATUS_INVALID_ARGUMENT,
         "extra"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,", 8, MIXRT_STATUS_INVALID_ARGUMENT, "malformed"},
        {"{'descr': '<f4', 'fortran_order': False, 'shape': (1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1), }", 8,
         MIXRT_STATUS_UNSUPPORTED, "rank"},
        {"{'descr: '<f4'}", 8, MIXRT_STATUS_INVALID_ARGUMENT, "malformed"},
        {"", 8, MIXRT_STATUS_INVALID_ARGUMENT, "malformed"},
    };
    const uint8_t zeros[8] = {0};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        n = npy_bytes(buf, 1, bad[i].dict, zeros, bad[i].data);
        write_bytes(p, buf, n);
        mixrt_status st = mixrt_npy_read(ctx, p, &t);
        TU_CHECK(st == bad[i].st && msg_has(bad[i].msg) && msg_has("hand.npy"), "bad npy %zu: status %d, %s", i, st,
                 mixrt_context_last_error(ctx));
        if (st == MIXRT_STATUS_OK) mixrt_tensor_destroy(ctx, t);
        t = NULL;
    }
    /* Every truncation of a valid file fails cleanly (ASan watches the reads). */
    n = npy_bytes(buf, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", zeros, 8);
    for (size_t cut = 0; cut < n; cut++) {
        write_bytes(p, buf, cut);
        mixrt_status st = mixrt_npy_read(ctx, p, &t);
        TU_CHECK(st != MIXRT_STATUS_OK, "npy truncated to %zu bytes accepted", cut);
        if (st == MIXRT_STATUS_OK) mixrt_tensor_destroy(ctx, t);
        t = NULL;
    }
    buf[6] = 4;
    write_bytes(p, buf, n);
    TU_CHECK(mixrt_npy_read(ctx, p, &t) == MIXRT_STATUS_UNSUPPORTED && msg_has("4.0"), "npy version 4: %s",
             mixrt_context_last_error(ctx));
    write_bytes(p, "PK\x03\x04 not numpy", 14);
    TU_CHECK(mixrt_npy_read(ctx, p, &t) == MIXRT_STATUS_INVALID_ARGUMENT && msg_has("magic"), "bad magic");
    path_in(p, sizeof(p), "does-not-exist.npy");
    TU_CHECK(mixrt_npy_read(ctx, p, &t) == MIXRT_STATUS_IO_ERROR, "missing npy");
}

static void test_pb_malformed(void) {
    char p[256];
    struct mixrt_tensor *t = NULL;
    path_in(p, sizeof(p), "bad.pb");
    write_bytes(p, "\xff\xff\xff\xff\xff garbage", 13);
    mixrt_status st = mixrt_pb_read(ctx, p, &t, NULL);
    TU_CHECK(st == MIXRT_STATUS_INVALID_ARGUMENT && msg_has("is not a valid TensorProto file") && msg_has("bad.pb"),
             "garbage pb: %s", mixrt_context_last_error(ctx));
    /* Every truncation of a valid .pb fails or decodes: never crashes or leaks. */
    struct mixrt_tensor *src = NULL;
    int64_t dims[2] = {3, 5};
    mixrt_tensor_create(ctx, MIXRT_DTYPE_F32, 2, dims, &src);
    mixrt_pb_write(ctx, p, src, "truncate_me");
    mixrt_tensor_destroy(ctx, src);
    uint8_t *data = NULL;
    size_t size = 0;
    if (mixrt_read_file(ctx, p, &data, &size) == MIXRT_STATUS_OK) {
        for (size_t cut = 0; cut < size; cut++) {
            write_bytes(p, data, cut);
            t = NULL;
            st = mixrt_pb_read(ctx, p, &t, NULL);
            if (st == MIXRT_STATUS_OK) mixrt_tensor_destroy(ctx, t);
        }
        mixrt_free(ctx, data, size + 1);
    }
    TU_CHECK(mixrt_pb_read(ctx, p, NULL, NULL) == MIXRT_STATUS_INVALID_ARGUMENT, "NULL out refused");
}

/* Every allocation failure on every path: a clean OUT_OF_MEMORY and nothing leaked. */
static void test_out_of_memory(void) {
    char pb[256], npy[256];
    path_in(pb, sizeof(pb), "oom.pb");
    path_in(npy, sizeof(npy), "oom.npy");
    struct mixrt_tensor *s = random_tensor(MIXRT_DTYPE_STRING, 2), *f = random_tensor(MIXRT_DTYPE_F32, 3);
    TU_CHECK(s && f, "oom fixtures");
    if (!s || !f) return;
    mixrt_pb_write(ctx, pb, s, "strings");
    mixrt_npy_write(ctx, npy, f);
    size_t base = mixrt_context_bytes_in_use(ctx);
    for (int which = 0; which < 4; which++) {
        bool done = false;
        for (long n = 0; n < 200 && !done; n++) {
            struct mixrt_tensor *t = NULL;
            char *name = NULL;
            mixrt_context_fail_alloc_after(ctx, n, 0);
            mixrt_status st;
            switch (which) {
            case 0: st = mixrt_pb_read(ctx, pb, &t, &name); break;
            case 1: st = mixrt_npy_read(ctx, npy, &t); break;
            case 2: st = mixrt_pb_write(ctx, pb, s, "strings"); break;
            default: st = mixrt_npy_write(ctx, npy, f); break;
            }
            mixrt_context_fail_alloc_after(ctx, -1, 0);
            if (st == MIXRT_STATUS_OK) {
                done = true;
                if (name) mixrt_free(ctx, name, strlen(name) + 1);
                mixrt_tensor_destroy(ctx, t);
            } else {
                TU_CHECK(st == MIXRT_STATUS_OUT_OF_MEMORY, "case %d, failing allocation %ld: status %d (%s)", which,
                         n, st, mixrt_context_last_error(ctx));
            }
            TU_CHECK(mixrt_context_bytes_in_use(ctx) == base, "case %d, failing allocation %ld leaks %zu bytes",
                     which, n, mixrt_context_bytes_in_use(ctx) - base);
        }
        TU_CHECK(done, "case %d never succeeded", which);
    }
    mixrt_tensor_destroy(ctx, s);
    mixrt_tensor_destroy(ctx, f);
}

/* ---- files written by NumPy and onnx ---- */

static bool parse_dims(const char *s, int *rank, int64_t *dims) {
    *rank = 0;
    if (!strcmp(s, "-")) return true;
    while (*s) {
        if (*rank >= MIXRT_MAX_RANK) return false;
        char *end;
        dims[(*rank)++] = strtoll(s, &end, 10);
        if (end == s) return false;
        s = *end == ',' ? end + 1 : end;
    }
    return true;
}

static void check_fixture(const char *dir, const char *file, const char *dtype, const char *dims_s, const char *exp) {
    char p[512], ep[512];
    snprintf(p, sizeof(p), "%s/%s", dir, file);
    snprintf(ep, sizeof(ep), "%s/%s", dir, exp);
    mixrt_dtype dt = MIXRT_DTYPE_UNDEFINED;
    int rank = 0;
    int64_t dims[MIXRT_MAX_RANK];
    TU_CHECK(mixrt_dtype_from_name(dtype, &dt) == 0 && parse_dims(dims_s, &rank, dims), "manifest line for %s", file);
    struct mixrt_tensor *t = NULL;
    char *name = NULL;
    bool is_pb = strstr(file, ".pb") != NULL;
    mixrt_status st = is_pb ? mixrt_pb_read(ctx, p, &t, &name) : mixrt_npy_read(ctx, p, &t);
    TU_CHECK(st == MIXRT_STATUS_OK, "%s: %s", file, mixrt_context_last_error(ctx));
    if (st != MIXRT_STATUS_OK) return;
    bool shape_ok = t->dtype == dt && t->rank == rank;
    for (int i = 0; shape_ok && i < rank; i++) shape_ok = t->dims[i] == dims[i];
    TU_CHECK(shape_ok, "%s: got %s %s", file, mixrt_dtype_name(t->dtype), dims_s);
    uint8_t *want = NULL;
    size_t wsize = 0;
    if (shape_ok && mixrt_read_file(ctx, ep, &want, &wsize) == MIXRT_STATUS_OK) {
        if (dt == MIXRT_DTYPE_STRING) {
            const struct mixrt_string *s = t->data;
            size_t off = 0, n = mixrt_tensor_numel(t);
            bool ok = true;
            for (size_t i = 0; i < n && ok; i++) {
                char *end;
                size_t len = strtoul((const char *)want + off, &end, 10);
                off = (size_t)(end - (char *)want) + 1;
                ok = s[i].len == len && off + len <= wsize && !memcmp(s[i].ptr, want + off, len);
                off += len + 1;
            }
            TU_CHECK(ok, "%s: string values", file);
        } else {
            TU_CHECK(wsize == t->nbytes && (!wsize || !memcmp(want, t->data, wsize)), "%s: values differ", file);
        }
        mixrt_free(ctx, want, wsize + 1);
    }
    if (is_pb) TU_CHECK(name != NULL, "%s: name missing", file);
    if (name) mixrt_free(ctx, name, strlen(name) + 1);
    mixrt_tensor_destroy(ctx, t);
}

static void test_fixtures(void) {
    const char *src = getenv("MIXRT_SOURCE_DIR");
    char dir[256], cmd[1024];
    if (!src) { /* run by hand, outside ctest: say so rather than pretend */
        printf("test_tensor_io: MIXRT_SOURCE_DIR not set: NumPy/onnx fixtures not run\n");
        return;
    }
    /* Under ctest the fixtures are part of the test: missing tools are a failure, not a skip. */
    TU_CHECK(access("/usr/bin/python3", X_OK) == 0, "/usr/bin/python3 is missing (scripts/setup.sh installs it)");
    path_in(dir, sizeof(dir), "fixtures");
    snprintf(cmd, sizeof(cmd), "/usr/bin/python3 '%s/scripts/make_io_fixtures.py' '%s' > /dev/null", src, dir);
    int rc = system(cmd);
    TU_CHECK(rc == 0, "make_io_fixtures.py failed (status %d; numpy/onnx missing?)", rc);
    if (rc != 0) return;
    char mp[512];
    snprintf(mp, sizeof(mp), "%s/manifest.txt", dir);
    FILE *f = fopen(mp, "r");
    TU_CHECK(f != NULL, "manifest");
    if (!f) return;
    char line[1024];
    int count = 0;
    while (fgets(line, sizeof(line), f)) {
        char file[256], dtype[32], dims[256], exp[256];
        if (sscanf(line, "%255s %31s %255s %255s", file, dtype, dims, exp) != 4) continue;
        check_fixture(dir, file, dtype, dims, exp);
        count++;
    }
    fclose(f);
    TU_CHECK(count >= 60, "only %d fixtures", count);
    printf("test_tensor_io: %d NumPy/onnx fixtures checked\n", count);
}

int main(void) {
    tu_seed(20240611);
    if (mixrt_context_create(NULL, &ctx) != MIXRT_STATUS_OK) return 1;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/mixrt_io_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_round_trips();
    test_typed_fields();
    test_external();
    test_npy_handmade();
    test_pb_malformed();
    test_out_of_memory();
    test_fixtures();
    TU_CHECK(mixrt_context_bytes_in_use(ctx) == 0, "%zu bytes leaked through the context",
             mixrt_context_bytes_in_use(ctx));
    rm_tree(tmpdir);
    mixrt_context_destroy(ctx);
    return tu_finish("test_tensor_io");
}
