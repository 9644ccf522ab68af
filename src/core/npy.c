/* npy.c - NumPy .npy files: read (format 1.0/2.0/3.0, either byte order, C or Fortran
 * order, every numeric dtype) and write (1.0, little-endian, C order). The header is
 * untrusted text: it is parsed by a small strict parser, and every size is checked
 * against the file before any data is touched. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "mixrt/mixrt_io.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "npy.c treats '<' data as native: little-endian hosts only"
#endif

static const char npy_magic[6] = {'\x93', 'N', 'U', 'M', 'P', 'Y'};

/* ---- header dict parser ---- */

struct npy_parser {
    const char *p, *end;
};

static void skip_ws(struct npy_parser *ps) {
    while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static bool eat(struct npy_parser *ps, char c) {
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == c) {
        ps->p++;
        return true;
    }
    return false;
}

/* A quoted string (no escapes: the keys and dtype strings NumPy writes have none)
 * copied into buf; false if malformed or longer than size - 1. */
static bool parse_str(struct npy_parser *ps, char *buf, size_t size) {
    skip_ws(ps);
    if (ps->p >= ps->end || (*ps->p != '\'' && *ps->p != '"')) return false;
    char q = *ps->p++;
    size_t n = 0;
    while (ps->p < ps->end && *ps->p != q) {
        if (*ps->p == '\\' || n + 1 >= size) return false;
        buf[n++] = *ps->p++;
    }
    if (ps->p >= ps->end) return false;
    ps->p++;
    buf[n] = 0;
    return true;
}

static bool parse_word(struct npy_parser *ps, const char *w) {
    size_t n = strlen(w);
    skip_ws(ps);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, w, n)) return false;
    ps->p += n;
    return true;
}

/* A non-negative integer (Python 2 files may add an 'L'); false on overflow past INT64_MAX. */
static bool parse_dim(struct npy_parser *ps, int64_t *out) {
    int64_t v = 0;
    int digits = 0;
    skip_ws(ps);
    while (ps->p < ps->end && *ps->p >= '0' && *ps->p <= '9') {
        int d = *ps->p++ - '0';
        if (v > (INT64_MAX - d) / 10) return false;
        v = v * 10 + d;
        digits++;
    }
    if (!digits) return false;
    if (ps->p < ps->end && *ps->p == 'L') ps->p++;
    *out = v;
    return true;
}

struct npy_header {
    char descr[32];
    int fortran;
    int rank;
    int64_t dims[MIXRT_MAX_RANK];
    bool have_descr, have_fortran, have_shape;
};

static mixrt_status parse_header(mixrt_context_t ctx, const char *path, const char *text, size_t len,
                                 struct npy_header *h) {
    struct npy_parser ps = {text, text + len};
    char key[32];
    memset(h, 0, sizeof(*h));
    if (!eat(&ps, '{')) goto bad;
    for (;;) {
        if (eat(&ps, '}')) break;
        if (!parse_str(&ps, key, sizeof(key)) || !eat(&ps, ':')) goto bad;
        if (!strcmp(key, "descr")) {
            skip_ws(&ps);
            if (ps.p < ps.end && *ps.p == '[')
                return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                                   "cannot read '%s': structured NumPy dtypes are not supported", path);
            if (!parse_str(&ps, h->descr, sizeof(h->descr))) goto bad;
            h->have_descr = true;
        } else if (!strcmp(key, "fortran_order")) {
            if (parse_word(&ps, "True"))
                h->fortran = 1;
            else if (parse_word(&ps, "False"))
                h->fortran = 0;
            else
                goto bad;
            h->have_fortran = true;
        } else if (!strcmp(key, "shape")) {
            if (!eat(&ps, '(')) goto bad;
            while (!eat(&ps, ')')) {
                int64_t d;
                if (h->rank >= MIXRT_MAX_RANK)
                    return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot read '%s': rank exceeds %d", path,
                                       MIXRT_MAX_RANK);
                if (!parse_dim(&ps, &d)) goto bad;
                h->dims[h->rank++] = d;
                if (!eat(&ps, ',')) {
                    if (!eat(&ps, ')')) goto bad;
                    break;
                }
            }
            h->have_shape = true;
        } else {
            return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "cannot read '%s': unexpected header key '%s'",
                               path, key);
        }
        if (!eat(&ps, ',')) {
            if (!eat(&ps, '}')) goto bad;
            break;
        }
    }
    skip_ws(&ps);
    if (ps.p != ps.end) goto bad;
    if (!h->have_descr || !h->have_fortran || !h->have_shape)
        return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT,
                           "cannot read '%s': the .npy header lacks 'descr', 'fortran_order' or 'shape'", path);
    return MIXRT_STATUS_OK;
bad:
    return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "cannot read '%s': malformed .npy header near offset %zu",
                       path, (size_t)(ps.p - text));
}

/* descr -> dtype and whether the data needs a byte swap. */
static bool descr_dtype(const char *d, mixrt_dtype *dt, bool *swap) {
    static const struct {
        const char *code;
        mixrt_dtype dt;
    } codes[] = {
        {"f4", MIXRT_DTYPE_F32}, {"f8", MIXRT_DTYPE_F64}, {"f2", MIXRT_DTYPE_F16}, {"b1", MIXRT_DTYPE_BOOL},
        {"i1", MIXRT_DTYPE_I8},  {"u1", MIXRT_DTYPE_U8},  {"i2", MIXRT_DTYPE_I16}, {"u2", MIXRT_DTYPE_U16},
        {"i4", MIXRT_DTYPE_I32}, {"u4", MIXRT_DTYPE_U32}, {"i8", MIXRT_DTYPE_I64}, {"u8", MIXRT_DTYPE_U64},
        {"V2", MIXRT_DTYPE_U16},
    };
    char order = d[0];
    if (order != '<' && order != '>' && order != '|' && order != '=') return false;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
        if (strcmp(d + 1, codes[i].code)) continue;
        size_t size = mixrt_dtype_size(codes[i].dt);
        /* '|' (not applicable) is what NumPy writes for one-byte types and raw V2. */
        if (order == '|' && size != 1 && codes[i].code[0] != 'V') return false;
        *dt = codes[i].dt;
        *swap = order == '>' && size > 1;
        return true;
    }
    return false;
}

static void byteswap(uint8_t *p, size_t n, size_t esize) {
    for (size_t i = 0; i < n; i++, p += esize)
        for (size_t a = 0, b = esize - 1; a < b; a++, b--) {
            uint8_t c = p[a];
            p[a] = p[b];
            p[b] = c;
        }
}

/* Fortran-order src (first index fastest) -> C-order dst. */
static void fortran_to_c(uint8_t *dst, const uint8_t *src, int rank, const int64_t *dims, size_t numel,
                         size_t esize) {
    size_t stride[MIXRT_MAX_RANK], idx[MIXRT_MAX_RANK] = {0}, off = 0;
    size_t s = 1;
    for (int k = 0; k < rank; k++) {
        stride[k] = s;
        s *= (size_t)dims[k];
    }
    for (size_t i = 0; i < numel; i++) {
        memcpy(dst + i * esize, src + off * esize, esize);
        /* Advance the C-order index (last fastest), keeping off in step. */
        for (int k = rank - 1; k >= 0; k--) {
            if (++idx[k] < (size_t)dims[k]) {
                off += stride[k];
                break;
            }
            off -= (idx[k] - 1) * stride[k];
            idx[k] = 0;
        }
    }
}

static uint32_t rd_le(const uint8_t *p, int n) {
    uint32_t v = 0;
    for (int i = n - 1; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

mixrt_status mixrt_npy_read(mixrt_context_t ctx, const char *path, struct mixrt_tensor **out) {
    mixrt_status status = MIXRT_STATUS_OK;
    uint8_t *buf = NULL;
    size_t size = 0;
    struct mixrt_tensor *t = NULL;
    struct npy_header h;
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    MIXRT_CHECK(ctx, path && out, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_npy_read: path and out must not be NULL");
    MIXRT_TRY(mixrt_read_file(ctx, path, &buf, &size));
    MIXRT_CHECK(ctx, size >= 10 && !memcmp(buf, npy_magic, 6), MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot read '%s': not a .npy file (bad magic)", path);
    int major = buf[6], minor = buf[7];
    MIXRT_CHECK(ctx, (major == 1 || major == 2 || major == 3) && minor == 0, MIXRT_STATUS_UNSUPPORTED,
                "cannot read '%s': .npy format version %d.%d is not supported (1.0, 2.0, 3.0 are)", path, major,
                minor);
    size_t prefix = major == 1 ? 10 : 12;
    MIXRT_CHECK(ctx, size >= prefix, MIXRT_STATUS_IO_ERROR, "cannot read '%s': truncated .npy header", path);
    size_t hlen = rd_le(buf + 8, major == 1 ? 2 : 4);
    MIXRT_CHECK(ctx, hlen <= size - prefix, MIXRT_STATUS_IO_ERROR,
                "cannot read '%s': truncated .npy header (%zu bytes declared, %zu present)", path, hlen,
                size - prefix);
    /* 3.0 differs from 2.0 only by allowing UTF-8 in the header; the parser accepts bytes. */
    MIXRT_TRY(parse_header(ctx, path, (const char *)buf + prefix, hlen, &h));

    mixrt_dtype dt;
    bool swap;
    MIXRT_CHECK(ctx, descr_dtype(h.descr, &dt, &swap), MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot read '%s': NumPy dtype '%s' is not supported", path, h.descr);
    size_t numel, esize = mixrt_dtype_size(dt), nbytes;
    char d[256];
    MIXRT_CHECK(ctx, mixrt_dims_numel(h.rank, h.dims, &numel) && mixrt_mul_size(numel, esize, &nbytes),
                MIXRT_STATUS_INVALID_ARGUMENT, "cannot read '%s': shape %s is too large", path,
                mixrt_dims_str(d, sizeof(d), h.rank, h.dims));
    size_t data_off = prefix + hlen;
    MIXRT_CHECK(ctx, nbytes <= size - data_off, MIXRT_STATUS_IO_ERROR,
                "cannot read '%s': truncated data: %s %s needs %zu bytes, the file has %zu", path,
                mixrt_dtype_name(dt), mixrt_dims_str(d, sizeof(d), h.rank, h.dims), nbytes, size - data_off);
    MIXRT_TRY(mixrt_tensor_create(ctx, dt, h.rank, h.dims, &t));
    if (nbytes) {
        uint8_t *src = buf + data_off;
        if (swap) byteswap(src, numel, esize);
        if (h.fortran && h.rank > 1)
            fortran_to_c(t->data, src, h.rank, h.dims, numel, esize);
        else
            memcpy(t->data, src, nbytes);
        if (dt == MIXRT_DTYPE_BOOL)
            for (size_t i = 0; i < numel; i++) ((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
    }
    mixrt_free(ctx, buf, size + 1);
    *out = t;
    return MIXRT_STATUS_OK;
fail:
    mixrt_tensor_destroy(ctx, t);
    if (buf) mixrt_free(ctx, buf, size + 1);
    return status;
}

static const char *npy_descr(mixrt_dtype dt) {
    switch (dt) {
    case MIXRT_DTYPE_F32: return "<f4";
    case MIXRT_DTYPE_F64: return "<f8";
    case MIXRT_DTYPE_F16: return "<f2";
    case MIXRT_DTYPE_BOOL: return "|b1";
    case MIXRT_DTYPE_I8: return "|i1";
    case MIXRT_DTYPE_U8: return "|u1";
    case MIXRT_DTYPE_I16: return "<i2";
    case MIXRT_DTYPE_U16: return "<u2";
    case MIXRT_DTYPE_I32: return "<i4";
    case MIXRT_DTYPE_U32: return "<u4";
    case MIXRT_DTYPE_I64: return "<i8";
    case MIXRT_DTYPE_U64: return "<u8";
    default: return NULL;
    }
}

mixrt_status mixrt_npy_write(mixrt_context_t ctx, const char *path, const struct mixrt_tensor *t) {
    mixrt_status status = MIXRT_STATUS_OK;
    FILE *f = NULL;
    char header[1024];
    if (!ctx) return MIXRT_STATUS_INVALID_ARGUMENT;
    MIXRT_CHECK(ctx, path && t, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_npy_write: path and tensor must not be NULL");
    MIXRT_CHECK(ctx, t->dtype != MIXRT_DTYPE_BF16, MIXRT_STATUS_UNSUPPORTED_DTYPE,
                "cannot write '%s': NumPy has no bf16 type; widen the tensor to f32 first (exact)", path);
    const char *descr = npy_descr(t->dtype);
    MIXRT_CHECK(ctx, descr, MIXRT_STATUS_UNSUPPORTED_DTYPE, "cannot write '%s': dtype %s has no .npy form", path,
                mixrt_dtype_name(t->dtype));
    size_t numel;
    MIXRT_CHECK(ctx, mixrt_dims_numel(t->rank, t->dims, &numel), MIXRT_STATUS_INVALID_ARGUMENT,
                "cannot write '%s': bad tensor dims", path);
    size_t nbytes = numel * mixrt_dtype_size(t->dtype);
    MIXRT_CHECK(ctx, !nbytes || t->data, MIXRT_STATUS_INVALID_ARGUMENT, "cannot write '%s': tensor has no data",
                path);

    /* 10-byte prefix, then the dict padded with spaces and a final '\n' so the data
     * starts on a 64-byte boundary (what NumPy itself writes). */
    size_t n = (size_t)snprintf(header + 10, sizeof(header) - 10, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                                descr);
    for (int i = 0; i < t->rank; i++)
        n += (size_t)snprintf(header + 10 + n, sizeof(header) - 10 - n, i ? ", %lld" : "%lld",
                              (long long)t->dims[i]);
    n += (size_t)snprintf(header + 10 + n, sizeof(header) - 10 - n, "%s), }", t->rank == 1 ? "," : "");
    size_t total = (10 + n + 1 + 63) / 64 * 64;
    MIXRT_CHECK(ctx, total <= sizeof(header), MIXRT_STATUS_INTERNAL, "cannot write '%s': header too long", path);
    memset(header + 10 + n, ' ', total - 10 - n - 1);
    header[total - 1] = '\n';
    memcpy(header, npy_magic, 6);
    header[6] = 1;
    header[7] = 0;
    header[8] = (char)((total - 10) & 0xff);
    header[9] = (char)((total - 10) >> 8);

    f = fopen(path, "wb");
    MIXRT_CHECK(ctx, f, MIXRT_STATUS_IO_ERROR, "cannot create '%s': %s", path, strerror(errno));
    MIXRT_CHECK(ctx, fwrite(header, 1, total, f) == total && (!nbytes || fwrite(t->data, 1, nbytes, f) == nbytes),
                MIXRT_STATUS_IO_ERROR, "cannot write '%s': %s", path, strerror(errno));
    int rc = fclose(f);
    f = NULL;
    MIXRT_CHECK(ctx, rc == 0, MIXRT_STATUS_IO_ERROR, "cannot write '%s': %s", path, strerror(errno));
    return MIXRT_STATUS_OK;
fail:
    if (f) fclose(f);
    return status;
}
