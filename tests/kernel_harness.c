/* kernel_harness.c - owns the one-node graph the reference-kernel tests run kernels on.
 * Invariant: between kh_begin and kh_end, kh_N points into kh_G (or kh_G is NULL after an
 * allocation failure, and kh_run then reports OUT_OF_MEMORY instead of touching it). */
#define _POSIX_C_SOURCE 200809L
#include "kernel_harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "onnx/export.h"
#include "testutil.h"

mixrt_context_t kh_ctx;
struct mixrt_graph *kh_G;
struct mixrt_node *kh_N;
const struct mixrt_tensor *kh_in[KH_MAX_IO];
const struct mixrt_seq *kh_in_seq[KH_MAX_IO];
struct mixrt_tensor kh_out[KH_MAX_IO];
struct mixrt_seq kh_out_seq[KH_MAX_IO];
bool kh_out_is_seq[KH_MAX_IO], kh_out_wanted[KH_MAX_IO];
int kh_n_in, kh_n_out;

static struct mixrt_attr attrs[KH_MAX_ATTRS];

void kh_begin(const char *op, int opset, int n_in, int n_out) {
    memset(attrs, 0, sizeof(attrs));
    memset(kh_in, 0, sizeof(kh_in));
    memset(kh_in_seq, 0, sizeof(kh_in_seq));
    memset(kh_out, 0, sizeof(kh_out));
    memset(kh_out_seq, 0, sizeof(kh_out_seq));
    memset(kh_out_is_seq, 0, sizeof(kh_out_is_seq));
    for (int i = 0; i < KH_MAX_IO; i++) kh_out_wanted[i] = true;
    kh_n_in = n_in;
    kh_n_out = n_out;
    kh_G = NULL;
    if (mixrt_graph_create(kh_ctx, NULL, &kh_G) != MIXRT_STATUS_OK) return;
    int ni = mixrt_graph_add_node(kh_G, "n0", op, "");
    int *ins = mixrt_arena_calloc(kh_G->arena, KH_MAX_IO, sizeof(int));
    int *outs = mixrt_arena_calloc(kh_G->arena, KH_MAX_IO, sizeof(int));
    if (ni < 0 || !ins || !outs) {
        mixrt_graph_destroy(kh_G);
        kh_G = NULL;
        return;
    }
    char name[32];
    for (int i = 0; i < n_in; i++) {
        snprintf(name, sizeof(name), "x%d", i);
        ins[i] = mixrt_graph_get_or_add_value(kh_G, name);
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(name, sizeof(name), "y%d", i);
        outs[i] = mixrt_graph_get_or_add_value(kh_G, name);
    }
    kh_N = &kh_G->nodes[ni];
    kh_N->inputs = ins;
    kh_N->outputs = outs;
    kh_N->n_inputs = n_in;
    kh_N->n_outputs = n_out;
    kh_N->opset = opset;
    kh_N->attrs = attrs;
    kh_N->n_attrs = 0;
}

struct mixrt_attr *kh_attr(const char *name, enum mixrt_attr_type type) {
    struct mixrt_attr *a = &attrs[kh_N->n_attrs++];
    a->name = name;
    a->type = type;
    return a;
}
void kh_attr_int(const char *name, int64_t v) { kh_attr(name, MIXRT_ATTR_INT)->i = v; }
void kh_attr_float(const char *name, float v) { kh_attr(name, MIXRT_ATTR_FLOAT)->f = v; }
void kh_attr_str(const char *name, const char *s) {
    struct mixrt_attr *a = kh_attr(name, MIXRT_ATTR_STRING);
    a->s = s;
    a->s_len = strlen(s);
}
void kh_attr_ints(const char *name, int64_t *v, size_t n) {
    struct mixrt_attr *a = kh_attr(name, MIXRT_ATTR_INTS);
    a->ints = v;
    a->n = n;
}
void kh_attr_floats(const char *name, float *v, size_t n) {
    struct mixrt_attr *a = kh_attr(name, MIXRT_ATTR_FLOATS);
    a->floats = v;
    a->n = n;
}
void kh_attr_strs(const char *name, const char **v, size_t n) {
    struct mixrt_attr *a = kh_attr(name, MIXRT_ATTR_STRINGS);
    a->strings = v;
    a->n = n;
}

mixrt_status kh_run_kernel(mixrt_kernel_fn fn, void *state) {
    if (!kh_G) return MIXRT_STATUS_OUT_OF_MEMORY;
    struct mixrt_kernel_ctx k = {kh_ctx,   kh_G,   kh_N,       kh_N->opset,   kh_n_in,       kh_in, kh_in_seq,
                                 kh_n_out, kh_out, kh_out_seq, kh_out_is_seq, kh_out_wanted, NULL, state, NULL};
    return fn(&k);
}

mixrt_status kh_run(void) {
    if (!kh_G) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_kernel_fn fn;
    mixrt_status st = mixrt_ref_find(kh_ctx, kh_N, &fn);
    if (st != MIXRT_STATUS_OK) return st;
    return kh_run_kernel(fn, NULL);
}

void kh_end(void) {
    for (int i = 0; i < KH_MAX_IO; i++) {
        mixrt_tensor_release(kh_ctx, &kh_out[i]);
        mixrt_seq_release(kh_ctx, &kh_out_seq[i]);
    }
    mixrt_graph_destroy(kh_G);
    kh_G = NULL;
}

struct mixrt_tensor kh_tensor(mixrt_dtype dt, int rank, const int64_t *dims, const double *v) {
    struct mixrt_tensor t;
    mixrt_tensor_init(kh_ctx, &t, dt, rank, dims);
    size_t n = mixrt_tensor_numel(&t);
    for (size_t i = 0; v && i < n; i++) mixrt_store_f64(t.data, dt, i, v[i]);
    return t;
}

struct mixrt_tensor kh_tensor_ints(mixrt_dtype dt, int rank, const int64_t *dims, const int64_t *v) {
    struct mixrt_tensor t;
    mixrt_tensor_init(kh_ctx, &t, dt, rank, dims);
    size_t n = mixrt_tensor_numel(&t);
    for (size_t i = 0; v && i < n; i++) mixrt_store_i64(t.data, dt, i, v[i]);
    return t;
}

struct mixrt_tensor kh_tensor_str(int rank, const int64_t *dims, const char **s) {
    struct mixrt_tensor t;
    mixrt_tensor_init(kh_ctx, &t, MIXRT_DTYPE_STRING, rank, dims);
    struct mixrt_string *e = t.data;
    for (size_t i = 0; i < mixrt_tensor_numel(&t); i++) {
        e[i].len = strlen(s[i]);
        e[i].ptr = mixrt_alloc(kh_ctx, e[i].len + 1);
        memcpy(e[i].ptr, s[i], e[i].len + 1);
    }
    return t;
}

/* ---- cases as values ---- */

static void *capped_alloc(void *user, size_t size, size_t align) {
    size_t cap = *(const size_t *)user;
    if (cap && size > cap) return NULL;
    void *p = NULL;
    return posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size ? size : 1) ? NULL : p;
}
static void capped_free(void *user, void *ptr, size_t size) {
    (void)user;
    (void)size;
    free(ptr);
}

mixrt_status kh_ctx_create(size_t byte_cap, mixrt_context_t *out) {
    static size_t cap;
    cap = byte_cap;
    struct mixrt_allocator alloc = {capped_alloc, capped_free, &cap};
    return mixrt_context_create(&alloc, out);
}

const char *const *kh_case_input_names;
const struct mixrt_seq *kh_case_seq_in0;

void kh_case_begin(struct kh_case *t, const char *op, int64_t opset, int n_in, int n_out) {
    memset(t, 0, sizeof(*t));
    if (mixrt_graph_create(kh_ctx, NULL, &t->g) != MIXRT_STATUS_OK) abort();
    int ni = mixrt_graph_add_node(t->g, "node_under_test", op, "");
    t->n = &t->g->nodes[ni];
    t->n->opset = opset;
    t->n->n_inputs = n_in;
    t->n->n_outputs = n_out;
    t->n->inputs = mixrt_arena_calloc(t->g->arena, KH_CASE_MAX_IO, sizeof(int));
    t->n->outputs = mixrt_arena_calloc(t->g->arena, KH_CASE_MAX_IO, sizeof(int));
    t->n->attrs = mixrt_arena_calloc(t->g->arena, 16, sizeof(struct mixrt_attr));
    char name[32];
    for (int i = 0; i < n_in; i++) {
        if (kh_case_input_names)
            snprintf(name, sizeof(name), "%s", kh_case_input_names[i]);
        else
            snprintf(name, sizeof(name), "in%d", i);
        t->n->inputs[i] = mixrt_graph_get_or_add_value(t->g, name);
    }
    for (int i = 0; i < n_out; i++) {
        snprintf(name, sizeof(name), "out%d", i);
        t->n->outputs[i] = mixrt_graph_get_or_add_value(t->g, name);
        t->out_wanted[i] = true;
    }
    t->n_in = n_in;
    t->n_out = n_out;
}

struct mixrt_attr *kh_case_attr(struct kh_case *t, const char *name, enum mixrt_attr_type type) {
    struct mixrt_attr *a = &t->n->attrs[t->n->n_attrs++];
    a->name = name;
    a->type = type;
    return a;
}
void kh_case_attr_int(struct kh_case *t, const char *name, int64_t v) { kh_case_attr(t, name, MIXRT_ATTR_INT)->i = v; }
void kh_case_attr_float(struct kh_case *t, const char *name, float v) {
    kh_case_attr(t, name, MIXRT_ATTR_FLOAT)->f = v;
}
void kh_case_attr_str(struct kh_case *t, const char *name, const char *s) {
    struct mixrt_attr *a = kh_case_attr(t, name, MIXRT_ATTR_STRING);
    a->s = s;
    a->s_len = strlen(s);
}
void kh_case_attr_ints(struct kh_case *t, const char *name, size_t n, const int64_t *v) {
    struct mixrt_attr *a = kh_case_attr(t, name, MIXRT_ATTR_INTS);
    a->ints = mixrt_arena_calloc(t->g->arena, n ? n : 1, sizeof(int64_t));
    memcpy(a->ints, v, n * sizeof(int64_t));
    a->n = n;
}

struct mixrt_tensor *kh_new_tensor(mixrt_dtype dt, int rank, const int64_t *dims, const double *v) {
    struct mixrt_tensor *x = NULL;
    if (mixrt_tensor_create(kh_ctx, dt, rank, dims, &x) != MIXRT_STATUS_OK) abort();
    size_t n = mixrt_tensor_numel(x);
    for (size_t i = 0; v && i < n; i++) mixrt_store_f64(x->data, dt, i, v[i]);
    return x;
}

void kh_case_in(struct kh_case *t, int i, struct mixrt_tensor *x) {
    t->in[i] = x;
    t->owned[i] = x;
    if (!x) t->n->inputs[i] = -1;
}

mixrt_status kh_case_run(struct kh_case *t) {
    mixrt_kernel_fn fn = NULL;
    mixrt_status st = mixrt_ref_find(kh_ctx, t->n, &fn);
    if (st != MIXRT_STATUS_OK) return st;
    const struct mixrt_seq *in_seq[KH_CASE_MAX_IO] = {kh_case_seq_in0};
    struct mixrt_kernel_ctx k = {0};
    k.ctx = kh_ctx;
    k.graph = t->g;
    k.node = t->n;
    k.opset = t->n->opset;
    k.n_in = t->n_in;
    k.in = t->in;
    k.in_seq = in_seq;
    k.n_out = t->n_out;
    k.out = t->out;
    k.out_seq = t->out_seq;
    k.out_is_seq = t->out_is_seq;
    k.out_wanted = t->out_wanted;
    return fn(&k);
}

void kh_case_end(struct kh_case *t) {
    for (int i = 0; i < KH_CASE_MAX_IO; i++) {
        mixrt_tensor_destroy(kh_ctx, t->owned[i]);
        mixrt_tensor_release(kh_ctx, &t->out[i]);
        mixrt_seq_release(kh_ctx, &t->out_seq[i]);
    }
    mixrt_graph_destroy(t->g);
}

bool kh_check_dims(const char *what, const struct mixrt_tensor *o, int rank, const int64_t *dims) {
    bool ok = o->rank == rank;
    for (int i = 0; ok && i < rank; i++) ok = o->dims[i] == dims[i];
    char a[128], b[128];
    TU_CHECK(ok, "%s: dims %s, expected %s", what, mixrt_dims_str(a, sizeof(a), o->rank, o->dims),
             mixrt_dims_str(b, sizeof(b), rank, dims));
    return ok;
}

void kh_case_check_error(const char *what, mixrt_status st, mixrt_status want, const char *needle) {
    const char *msg = mixrt_context_last_error(kh_ctx);
    TU_CHECK(st == want, "%s: status %s, expected %s (%s)", what, mixrt_status_string(st), mixrt_status_string(want),
             msg);
    TU_CHECK(strstr(msg, "node_under_test") != NULL, "%s: message does not name the node: %s", what, msg);
    if (needle) TU_CHECK(strstr(msg, needle) != NULL, "%s: message lacks '%s': %s", what, needle, msg);
}

bool kh_guard_alloc(struct kh_guarded *gd, size_t n, bool at_end) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE), body = (n + pg - 1) / pg * pg;
    gd->map_size = body + 2 * pg;
    gd->map = mmap(NULL, gd->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (gd->map == MAP_FAILED) {
        gd->map = NULL;
        return false;
    }
    char *b = gd->map;
    if (mprotect(b, pg, PROT_NONE) || mprotect(b + pg + body, pg, PROT_NONE)) return false;
    gd->p = at_end ? b + pg + body - n : b + pg;
    return true;
}

struct mixrt_tensor kh_guarded_copy(const struct mixrt_tensor *t, struct kh_guarded *gd, bool at_end) {
    struct mixrt_tensor v = *t;
    TU_CHECK(kh_guard_alloc(gd, t->nbytes, at_end), "guard pages: mmap/mprotect failed");
    if (gd->map) memcpy(gd->p, t->data, t->nbytes);
    v.data = gd->p;
    v.flags = 0; /* borrowed */
    return v;
}

void kh_guard_free(struct kh_guarded *gd) {
    if (gd->map) munmap(gd->map, gd->map_size);
    gd->map = NULL;
}

bool kh_export_model(mixrt_context_t ctx, const struct mixrt_graph *g, const char *path) {
    uint8_t *buf = NULL;
    size_t len = 0;
    mixrt_status st = mixrt_onnx_export(ctx, g, NULL, &buf, &len);
    FILE *f = st == MIXRT_STATUS_OK ? fopen(path, "wb") : NULL;
    bool ok = f && fwrite(buf, 1, len, f) == len;
    if (f && fclose(f)) ok = false;
    if (buf) mixrt_free(ctx, buf, len);
    TU_CHECK(ok, "exporting %s: %s", path, st == MIXRT_STATUS_OK ? "write failed" : mixrt_context_last_error(ctx));
    return ok;
}
