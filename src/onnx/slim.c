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

/* One field: its number, wire type and, when length-delimited, its payload; r moves past it. */
static bool rd_field(struct rd *r, uint64_t *num, const uint8_t **pay, size_t *plen) {
    uint64_t key, v;
    if (!rd_varint(r, &key) || (key >> 3) == 0) return false;
    *num = key >> 3;
    *pay = NULL, *plen = 0;
    switch (key & 7) {
    case 0: return rd_varint(r, &v);
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
        if (!rd_field(&r, &num, &pay, &plen)) return false;
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
        if (!rd_field(&r, &num, &pay, &plen)) return false;
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
        if (!rd_field(&r, &num, &pay, &plen)) {
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
