/* dnnl_common.c - what the oneDNN kernels share: one engine and stream for the process (made
 * once), the bf16 capability check, dtype and status mapping, and the per-node state whose
 * primitive is valid exactly for the input shapes recorded in its key. */
#ifdef MIXRT_HAVE_DNNL
#include <dnnl_debug.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/dnnl_impl.h"

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static dnnl_engine_t g_engine;
static dnnl_stream_t g_stream;
static dnnl_status_t g_status = dnnl_success;
static const char *g_failed_call = "";
static bool g_bf16_native;

/* Whether a small bf16 matmul gets a real (not reference) implementation. */
static bool probe_bf16(void) {
    dnnl_memory_desc_t a, b, c;
    int64_t d[2] = {32, 32};
    dnnl_matmul_desc_t md;
    dnnl_primitive_desc_t pd = NULL;
    if (mixrt_dnnl_plain_md(&a, 2, d, dnnl_bf16) || mixrt_dnnl_plain_md(&b, 2, d, dnnl_bf16) ||
        mixrt_dnnl_plain_md(&c, 2, d, dnnl_bf16) || dnnl_matmul_desc_init(&md, &a, &b, NULL, &c) ||
        dnnl_primitive_desc_create(&pd, &md, NULL, g_engine, NULL))
        return false;
    const char *impl = NULL;
    bool ok = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl) == dnnl_success && impl &&
              strncmp(impl, "ref", 3) != 0;
    dnnl_primitive_desc_destroy(pd);
    return ok;
}

static void init_once(void) {
    g_status = dnnl_engine_create(&g_engine, dnnl_cpu, 0);
    if (g_status != dnnl_success) {
        g_failed_call = "dnnl_engine_create";
        return;
    }
    g_status = dnnl_stream_create(&g_stream, g_engine, dnnl_stream_default_flags);
    if (g_status != dnnl_success) {
        g_failed_call = "dnnl_stream_create";
        return;
    }
    /* The ISA values are nested bit masks: "at least avx512_core_bf16" is a subset test. */
    unsigned isa = (unsigned)dnnl_get_effective_cpu_isa(), want = (unsigned)dnnl_cpu_isa_avx512_core_bf16;
    g_bf16_native = mixrt_cpu_features()->avx512_bf16 && (isa & want) == want && probe_bf16();
}

mixrt_status mixrt_dnnl_get(mixrt_context_t ctx, dnnl_engine_t *engine, dnnl_stream_t *stream) {
    pthread_once(&g_once, init_once);
    if (g_status != dnnl_success) {
        if (ctx)
            return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "oneDNN %s failed: %s", g_failed_call,
                               dnnl_status2str(g_status));
        return MIXRT_STATUS_UNSUPPORTED;
    }
    if (engine) *engine = g_engine;
    if (stream) *stream = g_stream;
    return MIXRT_STATUS_OK;
}

bool mixrt_dnnl_bf16_native(void) { return mixrt_dnnl_get(NULL, NULL, NULL) == MIXRT_STATUS_OK && g_bf16_native; }

dnnl_data_type_t mixrt_dnnl_dtype(mixrt_dtype dt) {
    if (dt == MIXRT_DTYPE_F32) return dnnl_f32;
    if (dt == MIXRT_DTYPE_BF16) return dnnl_bf16;
    return dnnl_data_type_undef;
}

dnnl_status_t mixrt_dnnl_plain_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims, dnnl_data_type_t dt) {
    dnnl_dims_t d, s;
    int64_t stride = 1;
    for (int i = rank - 1; i >= 0; i--) {
        d[i] = dims[i];
        s[i] = stride;
        /* oneDNN wants positive strides even across a zero dim; sizes are checked elsewhere. */
        stride *= dims[i] > 0 ? dims[i] : 1;
    }
    return dnnl_memory_desc_init_by_strides(md, rank, d, dt, s);
}

mixrt_status mixrt_dnnl_fail(struct mixrt_kernel_ctx *k, dnnl_status_t s, const char *call) {
    return mixrt_kernel_error(k, s == dnnl_out_of_memory ? MIXRT_STATUS_OUT_OF_MEMORY : MIXRT_STATUS_UNSUPPORTED,
                              "oneDNN %s failed: %s", call, dnnl_status2str(s));
}

mixrt_status mixrt_dnnl_bad_input(struct mixrt_kernel_ctx *k, mixrt_status st, int i, const struct mixrt_tensor *t,
                                  const char *fmt, ...) {
    char what[512], desc[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    int vi = i < k->node->n_inputs ? k->node->inputs[i] : -1;
    const char *name = vi >= 0 ? k->graph->values[vi].name : "";
    return mixrt_kernel_error(k, st, "input #%d '%s' is %s, %s", i, name, mixrt_tensor_desc(desc, sizeof(desc), t),
                              what);
}

mixrt_status mixrt_dnnl_check_dtypes(struct mixrt_kernel_ctx *k, int n_same, int bias_i, mixrt_dtype *dt) {
    const struct mixrt_tensor *x0 = k->in[0];
    bool bf16_ok = mixrt_dnnl_bf16_native();
    if (x0->dtype != MIXRT_DTYPE_F32 && !(x0->dtype == MIXRT_DTYPE_BF16 && bf16_ok))
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, 0, x0, "expected f32%s (oneDNN kernel)",
                                    bf16_ok ? " or bf16" : " (bf16 needs AVX512-BF16)");
    for (int i = 1; i < n_same; i++)
        if (k->in[i]->dtype != x0->dtype)
            return mixrt_dnnl_bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, i, k->in[i],
                                        "expected %s like input #0 (oneDNN kernel)", mixrt_dtype_name(x0->dtype));
    const struct mixrt_tensor *b = bias_i >= 0 ? mixrt_kernel_opt_input(k, bias_i) : NULL;
    if (b && b->dtype != x0->dtype && b->dtype != MIXRT_DTYPE_F32)
        return mixrt_dnnl_bad_input(k, MIXRT_STATUS_UNSUPPORTED_DTYPE, bias_i, b,
                                    "expected %s like input #0, or f32 (oneDNN kernel)", mixrt_dtype_name(x0->dtype));
    *dt = x0->dtype;
    return MIXRT_STATUS_OK;
}

static bool refuse(char *why, size_t why_size, const char *fmt, ...) MIXRT_PRINTF(3, 4);
static bool refuse(char *why, size_t why_size, const char *fmt, ...) {
    if (why && why_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_size, fmt, ap);
        va_end(ap);
    }
    return false;
}

bool mixrt_dnnl_supports_common(const struct mixrt_graph *g, const struct mixrt_node *n, int n_same, int bias_i,
                                int min_rank, int max_rank, char *why, size_t why_size) {
    if (mixrt_dnnl_get(NULL, NULL, NULL) != MIXRT_STATUS_OK)
        return refuse(why, why_size, "oneDNN could not create its CPU engine");
    if (n->n_inputs < n_same || n->n_outputs < 1 || n->outputs[0] < 0)
        return refuse(why, why_size, "expected %d inputs and an output", n_same);
    const struct mixrt_value *y = &g->values[n->outputs[0]];
    mixrt_dtype dt = y->dtype;
    if (dt != MIXRT_DTYPE_F32 && dt != MIXRT_DTYPE_BF16)
        return refuse(why, why_size, "output #0 '%s' is %s, expected f32 or bf16", y->name,
                      dt ? mixrt_dtype_name(dt) : "of unknown dtype");
    if (dt == MIXRT_DTYPE_BF16 && !mixrt_dnnl_bf16_native())
        return refuse(why, why_size, "bf16 needs AVX512-BF16 and a native oneDNN bf16 implementation");
    for (int i = 0; i < n_same; i++) {
        if (n->inputs[i] < 0) return refuse(why, why_size, "input #%d is absent", i);
        const struct mixrt_value *v = &g->values[n->inputs[i]];
        if (v->dtype != dt)
            return refuse(why, why_size, "input #%d '%s' is %s, output is %s (mixed dtypes)", i, v->name,
                          v->dtype ? mixrt_dtype_name(v->dtype) : "of unknown dtype", mixrt_dtype_name(dt));
        if (v->rank >= 0 && (v->rank < min_rank || v->rank > max_rank))
            return refuse(why, why_size, "input #%d '%s' has rank %d, expected %d..%d", i, v->name, v->rank, min_rank,
                          max_rank);
    }
    if (bias_i >= 0 && bias_i < n->n_inputs && n->inputs[bias_i] >= 0) {
        const struct mixrt_value *v = &g->values[n->inputs[bias_i]];
        if (v->dtype != dt && v->dtype != MIXRT_DTYPE_F32)
            return refuse(why, why_size, "input #%d '%s' is %s, expected %s or f32", bias_i, v->name,
                          v->dtype ? mixrt_dtype_name(v->dtype) : "of unknown dtype", mixrt_dtype_name(dt));
    }
    return true;
}

dnnl_status_t mixrt_dnnl_attr_user_scratchpad(dnnl_primitive_attr_t *attr) {
    dnnl_status_t s = *attr ? dnnl_success : dnnl_primitive_attr_create(attr);
    return s == dnnl_success ? dnnl_primitive_attr_set_scratchpad_mode(*attr, dnnl_scratchpad_mode_user) : s;
}

mixrt_status mixrt_dnnl_scratch_take(struct mixrt_kernel_ctx *k, const_dnnl_primitive_desc_t pd, size_t extra,
                                     struct mixrt_dnnl_scratch *sc) {
    memset(sc, 0, sizeof(*sc));
    const dnnl_memory_desc_t *md = pd ? dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0) : NULL;
    size_t sp = md ? dnnl_memory_desc_get_size(md) : 0, off = mixrt_dnnl_align64(extra);
    if (!sp && !extra) return MIXRT_STATUS_OK;
    sc->bytes = off + sp;
    if (!(sc->p = mixrt_kernel_scratch(k, sc->bytes, &sc->owned)))
        return mixrt_kernel_error(k, MIXRT_STATUS_OUT_OF_MEMORY, "no memory for %zu bytes of oneDNN scratch",
                                  sc->bytes);
    if (!sp) return MIXRT_STATUS_OK;
    dnnl_engine_t eng = NULL;
    mixrt_status st = mixrt_dnnl_get(k->ctx, &eng, NULL);
    dnnl_status_t s = st == MIXRT_STATUS_OK ? dnnl_memory_create(&sc->sp, md, eng, (char *)sc->p + off) : dnnl_success;
    if (st == MIXRT_STATUS_OK && s != dnnl_success) st = mixrt_dnnl_fail(k, s, "dnnl_memory_create(scratchpad)");
    if (st != MIXRT_STATUS_OK) mixrt_dnnl_scratch_put(k->ctx, sc);
    return st;
}

void mixrt_dnnl_scratch_put(mixrt_context_t ctx, struct mixrt_dnnl_scratch *sc) {
    if (sc->sp) dnnl_memory_destroy(sc->sp);
    if (sc->owned) mixrt_free(ctx, sc->p, sc->bytes);
    memset(sc, 0, sizeof(*sc));
}

bool mixrt_dnnl_silu_split(dnnl_alg_kind_t act, float alpha, mixrt_dtype dt, bool residual) {
    const char *e = getenv("MIXRT_DNNL_SILU");
    return act == dnnl_eltwise_swish && alpha == 1.0f && dt == MIXRT_DTYPE_BF16 && !residual &&
           !(e && !strcmp(e, "post"));
}

void mixrt_dnnl_state_init(struct mixrt_dnnl_state *st) {
    memset(st, 0, sizeof(*st));
    pthread_mutex_init(&st->lock, NULL);
}

mixrt_status mixrt_dnnl_state_create(mixrt_context_t ctx, struct mixrt_dnnl_state **out) {
    struct mixrt_dnnl_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    mixrt_dnnl_state_init(st);
    *out = st;
    return MIXRT_STATUS_OK;
}

/* ---- constant weights shared between nodes (struct mixrt_dnnl_state's wshared) ----
 * Keyed by the constant (graph and value index) and both layouts of the reorder; an entry lives
 * while a state holds it, states die with their engine and the engine with its graph, so a key
 * never outlives what it names. */
struct mixrt_dnnl_wshared {
    struct mixrt_dnnl_wshared *next;
    const struct mixrt_graph *graph;
    int value;
    dnnl_memory_desc_t user_md, md;
    void *buf;
    int refs;
};
static pthread_mutex_t g_wshared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mixrt_dnnl_wshared *g_wshared;

void mixrt_dnnl_wei_key(struct mixrt_dnnl_state *st, const struct mixrt_graph *g, const struct mixrt_node *n) {
    if (g && n->n_inputs > 1 && n->inputs[1] >= 0 && mixrt_graph_is_fixed_const(g, n->inputs[1]))
        st->wgraph = g, st->wvalue = n->inputs[1];
}

dnnl_status_t mixrt_dnnl_wei_alloc(dnnl_engine_t eng, struct mixrt_dnnl_state *st, const dnnl_memory_desc_t *md) {
    if (!st->wei_const || !st->wgraph) return dnnl_memory_create(&st->wei_mem, md, eng, DNNL_MEMORY_ALLOCATE);
    struct mixrt_dnnl_wshared *e = NULL;
    pthread_mutex_lock(&g_wshared_lock);
    for (e = g_wshared; e; e = e->next)
        if (e->graph == st->wgraph && e->value == st->wvalue && dnnl_memory_desc_equal(&e->user_md, &st->wei_user_md) &&
            dnnl_memory_desc_equal(&e->md, md))
            break;
    if (e) e->refs++;
    pthread_mutex_unlock(&g_wshared_lock);
    if (e) {
        dnnl_status_t s = dnnl_memory_create(&st->wei_mem, md, eng, e->buf);
        st->wshared = e; /* dropped by mixrt_dnnl_wei_drop even when the create failed */
        st->wei_ready = s == dnnl_success;
        return s;
    }
    size_t size = dnnl_memory_desc_get_size(md);
    void *buf = aligned_alloc(64, (size + 63) / 64 * 64 + 64);
    if (!buf) return dnnl_out_of_memory;
    dnnl_status_t s = dnnl_memory_create(&st->wei_mem, md, eng, buf);
    if (s != dnnl_success) {
        free(buf);
        return s;
    }
    st->wbuf = buf;
    return dnnl_success;
}

void mixrt_dnnl_wei_filled(struct mixrt_dnnl_state *st) {
    if (!st->wbuf || !st->wgraph || !st->wei_mem) return;
    const dnnl_memory_desc_t *md = NULL;
    struct mixrt_dnnl_wshared *e = calloc(1, sizeof(*e));
    if (!e || dnnl_memory_get_memory_desc(st->wei_mem, &md) != dnnl_success || !md) {
        free(e); /* kept private: correct, just not shared */
        return;
    }
    e->graph = st->wgraph, e->value = st->wvalue, e->user_md = st->wei_user_md, e->md = *md;
    e->buf = st->wbuf, e->refs = 1;
    st->wbuf = NULL, st->wshared = e;
    pthread_mutex_lock(&g_wshared_lock);
    e->next = g_wshared;
    g_wshared = e;
    pthread_mutex_unlock(&g_wshared_lock);
}

void mixrt_dnnl_wei_drop(struct mixrt_dnnl_state *st) {
    if (st->wei_mem) dnnl_memory_destroy(st->wei_mem);
    st->wei_mem = NULL;
    st->wei_ready = false;
    free(st->wbuf);
    st->wbuf = NULL;
    struct mixrt_dnnl_wshared *e = st->wshared;
    st->wshared = NULL;
    if (!e) return;
    pthread_mutex_lock(&g_wshared_lock);
    if (--e->refs == 0) {
        for (struct mixrt_dnnl_wshared **pp = &g_wshared; *pp; pp = &(*pp)->next)
            if (*pp == e) {
                *pp = e->next;
                break;
            }
        free(e->buf);
        free(e);
    }
    pthread_mutex_unlock(&g_wshared_lock);
}

void mixrt_dnnl_state_clear(struct mixrt_dnnl_state *st) {
    dnnl_primitive_t *prims[] = {&st->prim, &st->src_reorder, &st->dst_reorder, &st->wei_reorder, &st->dst_in_reorder};
    for (size_t i = 0; i < sizeof(prims) / sizeof(prims[0]); i++) {
        if (*prims[i]) dnnl_primitive_destroy(*prims[i]);
        *prims[i] = NULL;
    }
    dnnl_memory_t *mems[] = {&st->src_mem, &st->dst_mem};
    for (size_t i = 0; i < sizeof(mems) / sizeof(mems[0]); i++) {
        if (*mems[i]) dnnl_memory_destroy(*mems[i]);
        *mems[i] = NULL;
    }
    mixrt_dnnl_wei_drop(st);
    if (st->pd) dnnl_primitive_desc_destroy(st->pd);
    st->pd = NULL;
    st->keyed = false;
    st->wei_ready = false;
}

void mixrt_dnnl_state_release(mixrt_context_t ctx, void *state) {
    struct mixrt_dnnl_state *st = state;
    if (!st) return;
    mixrt_dnnl_state_clear(st);
    pthread_mutex_destroy(&st->lock);
    mixrt_free(ctx, st, sizeof(*st));
}

bool mixrt_dnnl_state_matches(struct mixrt_dnnl_state *st, const struct mixrt_kernel_ctx *k, int n) {
    bool same = st->keyed && st->prim;
    for (int i = 0; same && i < n; i++) {
        const struct mixrt_tensor *t = mixrt_kernel_opt_input(k, i);
        same = st->key_present[i] == (t != NULL);
        if (same && t)
            same = st->key_dtype[i] == t->dtype && st->key_rank[i] == t->rank &&
                   !memcmp(st->key_dims[i], t->dims, sizeof(int64_t) * (size_t)t->rank);
    }
    if (same) return true;
    /* The constant weights stay valid across a rebuild only if the new layout is the same;
     * the builder compares layouts, so keep wei_mem but forget the primitives. */
    bool keep_wei = st->wei_const && st->wei_ready;
    dnnl_memory_t wei = keep_wei ? st->wei_mem : NULL;
    void *wbuf = keep_wei ? st->wbuf : NULL;
    struct mixrt_dnnl_wshared *wshared = keep_wei ? st->wshared : NULL;
    if (keep_wei) st->wei_mem = NULL, st->wbuf = NULL, st->wshared = NULL;
    mixrt_dnnl_state_clear(st);
    st->wei_mem = wei, st->wbuf = wbuf, st->wshared = wshared;
    st->wei_ready = keep_wei;
    for (int i = 0; i < n && i < MIXRT_DNNL_KEY_INPUTS; i++) {
        const struct mixrt_tensor *t = mixrt_kernel_opt_input(k, i);
        st->key_present[i] = t != NULL;
        st->key_dtype[i] = t ? t->dtype : MIXRT_DTYPE_UNDEFINED;
        st->key_rank[i] = t ? t->rank : 0;
        if (t) memcpy(st->key_dims[i], t->dims, sizeof(int64_t) * (size_t)t->rank);
    }
    st->keyed = true;
    return false;
}

const char *mixrt_dnnl_state_impl(const struct mixrt_dnnl_state *st) {
    const char *s = NULL;
    if (!st || !st->pd || dnnl_primitive_desc_query(st->pd, dnnl_query_impl_info_str, 0, &s) != dnnl_success || !s)
        return "";
    return s;
}

#else
typedef int mixrt_dnnl_common_unused; /* ISO C wants a declaration in every translation unit */
#endif /* MIXRT_HAVE_DNNL */
