/* kernel_harness.c - owns the one-node graph the reference-kernel tests run kernels on.
 * Invariant: between kh_begin and kh_end, kh_N points into kh_G (or kh_G is NULL after an
 * allocation failure, and kh_run then reports OUT_OF_MEMORY instead of touching it). */
#include "kernel_harness.h"

#include <stdio.h>
#include <string.h>

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

mixrt_status kh_run(void) {
    if (!kh_G) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_kernel_fn fn;
    mixrt_status st = mixrt_ref_find(kh_ctx, kh_N, &fn);
    if (st != MIXRT_STATUS_OK) return st;
    struct mixrt_kernel_ctx k = {kh_ctx,   kh_G,   kh_N,       kh_N->opset,   kh_n_in,       kh_in, kh_in_seq,
                                 kh_n_out, kh_out, kh_out_seq, kh_out_is_seq, kh_out_wanted, NULL};
    return fn(&k);
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
