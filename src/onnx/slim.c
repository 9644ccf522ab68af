/* slim.c - a serialized ModelProto with its weights left out, for protobuf-c. protobuf-c
 * copies every bytes field while parsing, so a model's raw_data existed twice (the file
 * and the parse) and a third time in the graph: GPT-2's f32 import peaked at 1.44 GB for a
 * 653 MB file. This pass walks the wire format once, copies every field verbatim except
 * the raw_data (field 9) of the main graph's (ModelProto field 7) initializers (GraphProto
 * field 5), and records where each of those lies in the caller's buffer; the importer
 * copies the tensors from there. Anything it does not expect (a group, a truncated field,
 * a second graph or raw_data, which protobuf would merge) makes it decline: the caller
 * parses the original bytes as before, and protobuf-c's own checks decide. */
#include <string.h>

#include "onnx/slim.h"

struct rd {
    const uint8_t *p, *end;
};

static bool rd_varint(struct rd *r, uint64_t *v) {
    uint64_t x = 0;
    for (int s = 0; s < 64; s += 7) {
        if (r->p >= r->end) return false;
        uint8_t b = *r->p++;
        x |= (uint64_t)(b & 0x7f) << s;
        if (!(b & 0x80)) {
            *v = x;
            return true;
        }
    }
    return false;
}

/* One field: its number, wire type and, when length-delimited, its payload (else a varint's
 * value in *val, when val is not NULL); r moves past it. */
static bool rd_field(struct rd *r, uint64_t *num, const uint8_t **pay, size_t *plen, uint64_t *val) {
    uint64_t key, v;
    if (!rd_varint(r, &key) || (key >> 3) == 0) return false;
    *num = key >> 3;
    *pay = NULL, *plen = 0;
    switch (key & 7) {
    case 0:
        if (!rd_varint(r, &v)) return false;
        if (val) *val = v;
        return true;
    case 1:
        if (r->end - r->p < 8) return false;
        r->p += 8;
        return true;
    case 5:
        if (r->end - r->p < 4) return false;
        r->p += 4;
        return true;
    case 2:
        if (!rd_varint(r, &v) || v > (uint64_t)(r->end - r->p)) return false;
        *pay = r->p, *plen = (size_t)v;
        r->p += v;
        return true;
    default: return false; /* groups and reserved wire types */
    }
}

/* Writes go to a struct mixrt_buf; the first failure sticks (failed) and later writes skip. */
struct wb {
    struct mixrt_buf b;
    bool failed;
};

static void wb_put(struct wb *w, const void *src, size_t n) {
    if (w->failed || n == 0) return;
    if (mixrt_buf_reserve(&w->b, n) != MIXRT_STATUS_OK) {
        w->failed = true;
        return;
    }
    memcpy(w->b.p + w->b.n, src, n);
    w->b.n += n;
}

static void wb_varint(struct wb *w, uint64_t v) {
    uint8_t t[10];
    int n = 0;
    do {
        t[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) t[n] |= 0x80;
        n++;
    } while (v);
    wb_put(w, t, (size_t)n);
}

/* A length-delimited field number num holding sub's bytes. */
static void wb_message(struct wb *w, uint64_t num, const struct wb *sub) {
    wb_varint(w, num << 3 | 2);
    wb_varint(w, sub->b.n);
    wb_put(w, sub->b.p, sub->b.n);
}

static bool add_raw(struct mixrt_onnx_slim *s, size_t off, size_t len, bool has) {
    if (s->n_init == s->cap) {
        size_t cap = s->cap ? 2 * s->cap : 64;
        struct mixrt_onnx_raw *nr = mixrt_alloc(s->ctx, cap * sizeof(*nr));
        if (!nr) return false;
        if (s->n_init) memcpy(nr, s->raw, s->n_init * sizeof(*nr));
        mixrt_free(s->ctx, s->raw, s->cap * sizeof(*nr));
        s->raw = nr, s->cap = cap;
    }
    s->raw[s->n_init++] = (struct mixrt_onnx_raw){off, len, has};
    return true;
}

/* TensorProto: every field but raw_data into w; raw_data's place recorded. */
static bool slim_tensor(struct mixrt_onnx_slim *s, const uint8_t *base, const uint8_t *p, size_t len, struct wb *w) {
    struct rd r = {p, p + len};
    size_t off = 0, rlen = 0;
    bool has = false;
    while (r.p < r.end) {
        const uint8_t *start = r.p, *pay;
        uint64_t num;
        size_t plen;
        if (!rd_field(&r, &num, &pay, &plen, NULL)) return false;
        if (num == 9 && pay) {
            if (has) return false; /* protobuf keeps the last one: not ours to decide */
            has = true, off = (size_t)(pay - base), rlen = plen;
            continue;
        }
        wb_put(w, start, (size_t)(r.p - start));
    }
    return !w->failed && add_raw(s, off, rlen, has);
}

static bool slim_graph(struct mixrt_onnx_slim *s, const uint8_t *base, const uint8_t *p, size_t len, struct wb *w) {
    struct rd r = {p, p + len};
    while (r.p < r.end) {
        const uint8_t *start = r.p, *pay;
        uint64_t num;
        size_t plen;
        if (!rd_field(&r, &num, &pay, &plen, NULL)) return false;
        if (num != 5) {
            wb_put(w, start, (size_t)(r.p - start));
            continue;
        }
        if (!pay) return false; /* an initializer that is not a message */
        struct wb t = {{s->ctx, NULL, 0, 0}, false};
        bool ok = slim_tensor(s, base, pay, plen, &t);
        if (ok) wb_message(w, 5, &t);
        mixrt_buf_free(&t.b);
        if (!ok) return false;
    }
    return !w->failed;
}

bool mixrt_onnx_slim(mixrt_context_t ctx, const uint8_t *data, size_t size, struct mixrt_onnx_slim *s) {
    memset(s, 0, sizeof(*s));
    s->ctx = ctx;
    struct wb w = {{ctx, NULL, 0, 0}, false};
    struct rd r = {data, data + size};
    bool graph_seen = false, ok = data != NULL;
    while (ok && r.p < r.end) {
        const uint8_t *start = r.p, *pay;
        uint64_t num;
        size_t plen;
        if (!rd_field(&r, &num, &pay, &plen, NULL)) {
            ok = false;
            break;
        }
        if (num != 7) {
            wb_put(&w, start, (size_t)(r.p - start));
            continue;
        }
        if (!pay || graph_seen) { /* protobuf would merge two graphs */
            ok = false;
            break;
        }
        graph_seen = true;
        struct wb g = {{ctx, NULL, 0, 0}, false};
        ok = slim_graph(s, data, pay, plen, &g);
        if (ok) wb_message(&w, 7, &g);
        mixrt_buf_free(&g.b);
    }
    if (!ok || w.failed) {
        mixrt_buf_free(&w.b);
        mixrt_onnx_slim_free(s);
        return false;
    }
    s->msg = w.b;
    return true;
}

void mixrt_onnx_slim_free(struct mixrt_onnx_slim *s) {
    if (!s->ctx) return;
    mixrt_buf_free(&s->msg);
    mixrt_free(s->ctx, s->raw, s->cap * sizeof(*s->raw));
    s->raw = NULL;
    s->n_init = s->cap = 0;
}

/* ---- declared inputs ---- */

/* A ValueInfoProto's name (1) and shape: type (2) -> tensor_type (1) -> shape (2) -> dim (1)
 * -> dim_value (1). */
static void decl_value_info(const uint8_t *p, size_t len, struct mixrt_onnx_decl *d) {
    struct rd r = {p, p + len};
    const uint8_t *pay;
    size_t plen;
    uint64_t num;
    d->name = NULL, d->name_len = 0, d->rank = -1;
    while (rd_field(&r, &num, &pay, &plen, NULL)) {
        if (num == 1 && pay) d->name = (const char *)pay, d->name_len = plen;
        if (num != 2 || !pay) continue;
        struct rd t = {pay, pay + plen};
        while (rd_field(&t, &num, &pay, &plen, NULL)) {
            if (num != 1 || !pay) continue;
            struct rd tt = {pay, pay + plen};
            while (rd_field(&tt, &num, &pay, &plen, NULL)) {
                if (num != 2 || !pay) continue;
                struct rd sh = {pay, pay + plen};
                d->rank = 0;
                while (rd_field(&sh, &num, &pay, &plen, NULL)) {
                    if (num != 1 || !pay) continue;
                    if (d->rank >= MIXRT_MAX_RANK) { /* the importer reports it */
                        d->rank = -1;
                        return;
                    }
                    struct rd dm = {pay, pay + plen};
                    uint64_t v = 0;
                    int64_t dv = -1;
                    while (rd_field(&dm, &num, &pay, &plen, &v))
                        if (num == 1 && !pay) dv = (int64_t)v;
                    d->dims[d->rank++] = dv;
                }
            }
        }
    }
}

/* Whether the graph (bytes g) has an initializer (5) named like d (TensorProto.name, 8). */
static bool decl_is_initializer(const uint8_t *g, size_t glen, const struct mixrt_onnx_decl *d) {
    struct rd r = {g, g + glen};
    const uint8_t *pay;
    size_t plen;
    uint64_t num;
    while (rd_field(&r, &num, &pay, &plen, NULL)) {
        if (num != 5 || !pay) continue;
        struct rd t = {pay, pay + plen};
        while (rd_field(&t, &num, &pay, &plen, NULL))
            if (num == 8 && pay) {
                if (plen == d->name_len && !memcmp(pay, d->name, plen)) return true;
                break; /* the name comes before raw_data (9): no need to read on */
            }
    }
    return false;
}

int mixrt_onnx_declared_inputs(const uint8_t *data, size_t size, struct mixrt_onnx_decl *out, int cap) {
    struct rd r = {data, data + size};
    const uint8_t *pay, *g = NULL;
    size_t plen, glen = 0;
    uint64_t num;
    while (r.p < r.end) {
        if (!rd_field(&r, &num, &pay, &plen, NULL)) return -1;
        if (num == 7 && pay) g = pay, glen = plen;
    }
    if (!g) return -1;
    int n = 0;
    struct rd gr = {g, g + glen};
    while (rd_field(&gr, &num, &pay, &plen, NULL)) {
        if (num != 11 || !pay) continue;
        struct mixrt_onnx_decl d;
        decl_value_info(pay, plen, &d);
        if (!d.name || decl_is_initializer(g, glen, &d)) continue;
        if (n < cap) out[n] = d;
        n++;
    }
    return n;
}
