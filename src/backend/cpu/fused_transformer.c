/* fused_transformer.c - fast CPU kernels of the com.mixrt transformer ops: FusedMatMul on
 * oneDNN's matmul (bias, residual Z and activation as post-ops, the constant weights reordered
 * once into the layout oneDNN picks) and Gelu on the element-wise AVX-512 spans. Invariant:
 * the packed weights are the node's constant B in exactly the layout the primitive expects;
 * a rebuild for other A shapes keeps them when that layout does not change. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/cpu/eltwise_impl.h"
#include "backend/cpu/gemv_impl.h"
#include "backend/cpu/kernels.h"
#ifdef MIXRT_HAVE_DNNL
#include "backend/cpu/dnnl_impl.h"
#endif

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

static const struct mixrt_value *in_value(const struct mixrt_graph *g, const struct mixrt_node *n, int i) {
    return i < n->n_inputs && n->inputs[i] >= 0 ? &g->values[n->inputs[i]] : NULL;
}

/* ---- Gelu ------------------------------------------------------------------------------------- */

#define GELU_CHUNK 2048

static bool gelu_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    const struct mixrt_value *x = in_value(g, n, 0);
    if (!x || n->n_outputs < 1 || n->outputs[0] < 0) return refuse(why, why_size, "expected an input and an output");
    mixrt_dtype dt = g->values[n->outputs[0]].dtype;
    if ((dt != MIXRT_DTYPE_F32 && dt != MIXRT_DTYPE_BF16) || x->dtype != dt)
        return refuse(why, why_size, "input #0 '%s' and the output must both be f32 or both bf16", x->name);
    const char *ap = mixrt_node_attr_string(n, "approximate", "none");
    if (strcmp(ap, "none") && strcmp(ap, "tanh")) return refuse(why, why_size, "approximate '%s'", ap);
    return true;
}

static mixrt_status gelu_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    const struct mixrt_tensor *x = NULL;
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    static const mixrt_dtype ok[] = {MIXRT_DTYPE_F32, MIXRT_DTYPE_BF16, MIXRT_DTYPE_UNDEFINED};
    MIXRT_TRY(mixrt_kernel_check_dtype(k, 0, ok));
    const char *ap = mixrt_node_attr_string(k->node, "approximate", "none");
    if (strcmp(ap, "none") && strcmp(ap, "tanh"))
        MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "attribute 'approximate' is '%s', expected none or tanh",
                                     ap));
    enum mixrt_elt_op op = !strcmp(ap, "tanh") ? ELT_GELU_TANH : ELT_GELU;
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, x->dtype, x->rank, x->dims, &y)); /* every chunk below */
    mixrt_elt_unary_fn fn = mixrt_elt_unary_isa();
    struct mixrt_elt_params p = {0, 0, 0, 0};
    size_t n = mixrt_tensor_numel(x);
    long chunks = (long)((n + GELU_CHUNK - 1) / GELU_CHUNK);
    bool bf16 = x->dtype == MIXRT_DTYPE_BF16;
#ifdef _OPENMP
#pragma omp parallel for schedule(static) if (chunks > 16)
#endif
    for (long c = 0; c < chunks; c++) {
        size_t i0 = (size_t)c * GELU_CHUNK, len = n - i0 < GELU_CHUNK ? n - i0 : GELU_CHUNK;
        if (!bf16) {
            fn(op, &p, (const float *)x->data + i0, (float *)y->data + i0, len);
        } else {
            float buf[GELU_CHUNK];
            mixrt_bf16_to_f32((const mixrt_bf16 *)x->data + i0, buf, len);
            fn(op, &p, buf, buf, len);
            mixrt_f32_to_bf16(buf, (mixrt_bf16 *)y->data + i0, len);
        }
    }
fail:
    return status;
}

/* ---- FusedMatMul on oneDNN -------------------------------------------------------------------- */

enum fmm_act { ACT_NONE, ACT_RELU, ACT_GELU, ACT_GELU_TANH, ACT_SIGMOID, ACT_TANH };

int mixrt_fmm_activation(const struct mixrt_node *n) {
    static const char *const names[] = {"none", "relu", "gelu", "gelu_tanh", "sigmoid", "tanh"};
    const char *a = mixrt_node_attr_string(n, "activation", "none");
    for (int i = 0; i < 6; i++)
        if (!strcmp(a, names[i])) return i;
    return -1;
}

#ifdef MIXRT_HAVE_DNNL

/* Per node: the primitive for one A shape (M rows), the packed weights and the f32 bias. */
struct fmm_state {
    pthread_mutex_t lock;
    bool built;
    mixrt_dtype dt;
    int64_t M, K, N;
    bool has_z, has_bias, trans_b;
    int act;                /* FusedMatMul's activation (enum fmm_act); FusedConv: -1 */
    dnnl_alg_kind_t alg;    /* the eltwise post-op, dnnl_alg_kind_undef for none */
    float alpha, beta;      /* its parameters */
    bool silu_split;        /* 1x1 FusedConv: f32 into the engine's scratch, then SiLU to bf16
                             * (mixrt_dnnl_silu_split); the post-op left out */
    bool swish_post;        /* dnnl_conv1x1_mm_swish: never the split (set at prepare) */
    int64_t taps;           /* 1-D FusedConv: kernel taps k > 1 when B is W [N, C, k] read as [N, k*C] (packed
                             * with its taps first: the im2col rows' order); 0 otherwise */
    void *sub;              /* strided 1x1 FusedConv: X subsampled to [rows, C]; 1-D: X's im2col rows (owned) */
    size_t sub_bytes;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnl_memory_t src, dst, z; /* handles point at the run's tensors */
    dnnl_memory_t wei, bias;   /* owned: packed B (its bytes maybe shared, below), f32 bias */
    bool bias_ready;
    /* B's identity when it is a graph constant (graph 0: none): nodes that read the same
     * constant in the same layout share one packed copy (wshared, see fmm_shared). */
    const struct mixrt_graph *wgraph;
    int wvalue;
    struct fmm_shared *wshared;
};

/* Packed B shared between nodes: a weight-tied model (ALBERT runs one layer's weights in all
 * 12 layers; a tied LM head) would otherwise hold one packed copy per node - ALBERT-xxlarge's
 * fp32 and {fp32,bf16} engines 14.1 GiB resident together, its fp32 engine 1.64 GiB with the
 * sharing (ONNX Runtime 1.9). Keyed by the constant's graph and value index
 * and everything the packing read (dtype, K, N, transB, the layout): an entry lives while a
 * node's state holds it, states die with their engine and the engine with its graph, so a
 * key never outlives what it names (no reuse of a freed address can hit). */
struct fmm_shared {
    struct fmm_shared *next;
    const struct mixrt_graph *graph;
    int value;
    mixrt_dtype dt;
    int64_t K, N, taps;
    bool trans_b;
    dnnl_memory_desc_t md;
    void *buf;
    int refs;
};
static pthread_mutex_t g_fmm_shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct fmm_shared *g_fmm_shared;

/* Destroys st->wei and lets go of its shared bytes (freed with the last holder). */
static void fmm_wei_drop(struct fmm_state *st) {
    if (st->wei) dnnl_memory_destroy(st->wei);
    st->wei = NULL;
    struct fmm_shared *e = st->wshared;
    st->wshared = NULL;
    if (!e) return;
    pthread_mutex_lock(&g_fmm_shared_lock);
    if (--e->refs == 0) {
        for (struct fmm_shared **pp = &g_fmm_shared; *pp; pp = &(*pp)->next)
            if (*pp == e) {
                *pp = e->next;
                break;
            }
        free(e->buf);
        free(e);
    }
    pthread_mutex_unlock(&g_fmm_shared_lock);
}

/* The shared entry for st's B in layout md, or NULL (the caller takes it: refs + 1). Called
 * with g_fmm_shared_lock held. */
static struct fmm_shared *fmm_shared_find(const struct fmm_state *st, const dnnl_memory_desc_t *md) {
    for (struct fmm_shared *e = g_fmm_shared; e; e = e->next)
        if (e->graph == st->wgraph && e->value == st->wvalue && e->dt == st->dt && e->K == st->K && e->N == st->N &&
            e->taps == st->taps && e->trans_b == st->trans_b && dnnl_memory_desc_equal(&e->md, md))
            return e;
    return NULL;
}

/* Records B's identity when input 1 of n is a constant of g. */
static void fmm_set_wkey(struct fmm_state *st, const struct mixrt_graph *g, const struct mixrt_node *n) {
    if (!st->wgraph && g && n->n_inputs > 1 && n->inputs[1] >= 0 && mixrt_graph_is_fixed_const(g, n->inputs[1]))
        st->wgraph = g, st->wvalue = n->inputs[1];
}

static void fmm_clear_prim(struct fmm_state *st) {
    dnnl_memory_t *m[] = {&st->src, &st->dst, &st->z};
    for (int i = 0; i < 3; i++) {
        if (*m[i]) dnnl_memory_destroy(*m[i]);
        *m[i] = NULL;
    }
    if (st->prim) dnnl_primitive_destroy(st->prim);
    if (st->pd) dnnl_primitive_desc_destroy(st->pd);
    st->prim = NULL;
    st->pd = NULL;
    st->built = false;
}

static void fmm_release(mixrt_context_t ctx, void *state) {
    struct fmm_state *st = state;
    if (!st) return;
    fmm_clear_prim(st);
    fmm_wei_drop(st);
    if (st->bias) dnnl_memory_destroy(st->bias);
    mixrt_free(ctx, st->sub, st->sub_bytes);
    pthread_mutex_destroy(&st->lock);
    mixrt_free(ctx, st, sizeof(*st));
}

static mixrt_status fmm_fail(mixrt_context_t ctx, const struct mixrt_node *n, dnnl_status_t s, const char *call) {
    return mixrt_error(ctx, s == dnnl_out_of_memory ? MIXRT_STATUS_OUT_OF_MEMORY : MIXRT_STATUS_UNSUPPORTED,
                       "cannot run FusedMatMul node '%s': oneDNN %s failed: %d", n->name, call, (int)s);
}

#define DNNL_DO(expr)                                                                                                  \
    do {                                                                                                               \
        call = #expr;                                                                                                  \
        if ((s = (expr)) != dnnl_success) goto dnnl_fail;                                                              \
    } while (0)

/* A 1-D conv's weights [N, C, k] (ONNX) as [N, k, C] (first) or back: the im2col rows hold
 * each tap's C channels together. */
static void taps_permute(const void *src, void *dst, int64_t N, int64_t C, int64_t k, size_t es, bool first) {
    const char *s = src;
    char *d = dst;
    for (int64_t m = 0; m < N; m++)
        for (int64_t c = 0; c < C; c++)
            for (int64_t j = 0; j < k; j++) {
                size_t ck = (size_t)((m * C + c) * k + j), kc = (size_t)((m * k + j) * C + c);
                memcpy(d + (first ? kc : ck) * es, s + (first ? ck : kc) * es, es);
            }
}

/* Reorders the constant B (plain [K,N], or [N,K] read transposed) into st->wei of layout md. */
static mixrt_status fmm_pack(mixrt_context_t ctx, const struct mixrt_node *n, struct fmm_state *st,
                             const dnnl_memory_desc_t *md, const void *b) {
    mixrt_status status = MIXRT_STATUS_OK;
    dnnl_status_t s;
    const char *call = "";
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_primitive_desc_t rpd = NULL;
    dnnl_primitive_t r = NULL;
    dnnl_memory_t um = NULL;
    void *tmp = NULL;
    size_t tmp_bytes = 0;
    if (!b)
        return mixrt_error(ctx, MIXRT_STATUS_INTERNAL, "%s node '%s': its weights were dropped after packing and a new "
                           "layout needs them (the engine assumed fixed input shapes; MIXRT_RELEASE_WEIGHTS=off keeps "
                           "them)", n->op_type, n->name);
    MIXRT_TRY(mixrt_dnnl_get(ctx, &eng, &strm));
    fmm_wei_drop(st);
    struct fmm_shared *e = NULL;
    if (st->wgraph) {
        pthread_mutex_lock(&g_fmm_shared_lock);
        e = fmm_shared_find(st, md);
        if (e) e->refs++;
        pthread_mutex_unlock(&g_fmm_shared_lock);
        if (e) { /* another node packed this constant in this layout already */
            st->wshared = e;
            DNNL_DO(dnnl_memory_create(&st->wei, md, eng, e->buf));
            goto fail;
        }
    }
    mixrt_cpu_weight_reorder_counted();
    dnnl_memory_desc_t user;
    dnnl_dims_t d = {st->K, st->N}, str;
    str[0] = st->trans_b ? 1 : (st->N > 0 ? st->N : 1);
    str[1] = st->trans_b ? (st->K > 0 ? st->K : 1) : 1;
    DNNL_DO(dnnl_memory_desc_init_by_strides(&user, 2, d, mixrt_dnnl_dtype(st->dt), str));
    if (st->wgraph) { /* packed into bytes the entry owns, so that later readers share them */
        size_t bytes = dnnl_memory_desc_get_size(md);
        e = calloc(1, sizeof(*e));
        if (!e || posix_memalign(&e->buf, 64, bytes ? bytes : 64) != 0) {
            free(e);
            return mixrt_error(ctx, MIXRT_STATUS_OUT_OF_MEMORY, "%s node '%s': no memory for %zu bytes of packed "
                               "weights", n->op_type, n->name, bytes);
        }
        e->graph = st->wgraph, e->value = st->wvalue, e->dt = st->dt, e->K = st->K, e->N = st->N;
        e->trans_b = st->trans_b, e->taps = st->taps, e->md = *md, e->refs = 1;
        st->wshared = e;
        DNNL_DO(dnnl_memory_create(&st->wei, md, eng, e->buf));
    } else {
        DNNL_DO(dnnl_memory_create(&st->wei, md, eng, DNNL_MEMORY_ALLOCATE));
    }
    if (st->taps > 1) { /* taps first (see fmm_state) */
        size_t es = mixrt_dtype_size(st->dt), bytes = (size_t)(st->K * st->N) * es;
        if (!(tmp = mixrt_alloc(ctx, bytes))) {
            status = mixrt_error(ctx, MIXRT_STATUS_OUT_OF_MEMORY, "%s node '%s': no memory for %zu bytes of weights",
                                 n->op_type, n->name, bytes);
            goto fail;
        }
        tmp_bytes = bytes;
        taps_permute(b, tmp, st->N, st->K / st->taps, st->taps, es, true);
        b = tmp;
    }
    DNNL_DO(dnnl_memory_create(&um, &user, eng, (void *)b)); /* only read */
    DNNL_DO(dnnl_reorder_primitive_desc_create(&rpd, &user, eng, md, eng, NULL));
    DNNL_DO(dnnl_primitive_create(&r, rpd));
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, um}, {DNNL_ARG_TO, st->wei}};
    DNNL_DO(dnnl_primitive_execute(r, strm, 2, args));
    DNNL_DO(dnnl_stream_wait(strm));
    if (st->wshared) { /* filled: now others may find it */
        pthread_mutex_lock(&g_fmm_shared_lock);
        st->wshared->next = g_fmm_shared;
        g_fmm_shared = st->wshared;
        pthread_mutex_unlock(&g_fmm_shared_lock);
    }
    goto fail;
dnnl_fail:
    status = fmm_fail(ctx, n, s, call);
    fmm_wei_drop(st); /* an entry not listed yet is this state's alone: freed */
fail:
    if (r) dnnl_primitive_destroy(r);
    if (rpd) dnnl_primitive_desc_destroy(rpd);
    if (um) dnnl_memory_destroy(um);
    mixrt_free(ctx, tmp, tmp_bytes);
    return status;
}

/* Takes the plan's packed B offered for node n when it is in layout w_md (no reorder then). */
static bool fmm_adopt(const struct mixrt_node *n, struct fmm_state *st, const dnnl_memory_desc_t *w_md) {
    const struct mixrt_cpu_packed *p = mixrt_cpu_packed_offered(n);
    void *m = st->wei;
    if (!p || !mixrt_dnnl_packed_adopt(p, w_md, &m)) return false;
    st->wei = NULL; /* the adopt destroyed it; its shared bytes, if any, are let go */
    fmm_wei_drop(st);
    st->wei = m;
    return true;
}

/* Save hook (kernels.h): B as packed, when the state holds it. */
bool mixrt_fmm_packed_get(const void *state, struct mixrt_cpu_packed *out) {
    const struct fmm_state *st = state;
    return st && mixrt_dnnl_packed_describe(st->wei, out);
}

/* B's plain layout: [K, N], or [N, K] read transposed. */
static bool fmm_user_md(const struct fmm_state *st, dnnl_memory_desc_t *user) {
    dnnl_dims_t d = {st ? st->K : 0, st ? st->N : 0}, str;
    if (!st || !st->wei || st->K <= 0 || st->N <= 0) return false;
    str[0] = st->trans_b ? 1 : st->N;
    str[1] = st->trans_b ? st->K : 1;
    return dnnl_memory_desc_init_by_strides(user, 2, d, mixrt_dnnl_dtype(st->dt), str) == dnnl_success;
}

/* Check hook (kernels.h): B's packed copy against the graph's bytes, in slices. */
int mixrt_fmm_same(mixrt_context_t ctx, const void *state, const void *ref, size_t size) {
    const struct fmm_state *st = state;
    dnnl_memory_desc_t user;
    if (!fmm_user_md(st, &user)) return 0;
    return st->taps <= 1 ? mixrt_dnnl_unpack_same(ctx, st->wei, &user, ref, size) : -1;
}

/* Unpack hook (kernels.h): B back in its plain layout. */
bool mixrt_fmm_unpack(mixrt_context_t ctx, const void *state, void *dst, size_t size) {
    const struct fmm_state *st = state;
    dnnl_memory_desc_t user;
    if (!fmm_user_md(st, &user)) return false;
    if (st->taps <= 1) return mixrt_dnnl_unpack(ctx, st->wei, &user, dst, size);
    /* a 1-D conv's taps-first B: unpacked, then back to the graph's [N, C, k] */
    size_t es = mixrt_dtype_size(st->dt);
    void *tmp = size == (size_t)(st->K * st->N) * es ? mixrt_alloc(ctx, size) : NULL;
    bool ok = tmp && mixrt_dnnl_unpack(ctx, st->wei, &user, tmp, size);
    if (ok) taps_permute(tmp, dst, st->N, st->K / st->taps, st->taps, es, false);
    mixrt_free(ctx, tmp, tmp ? size : 0);
    return ok;
}

/* MIXRT_FUSED_MATMUL_PACK=0 keeps B in its plain layout (still copied once): a measurement
 * knob, to see what the blocked layout oneDNN picks is worth. */
static bool pack_weights(void) {
    const char *e = getenv("MIXRT_FUSED_MATMUL_PACK");
    return !(e && !strcmp(e, "0"));
}

/* Builds the primitive for M rows (weights layout: oneDNN's choice) and packs B when the
 * packed copy is missing or in another layout. bias (any float dtype) fills the f32 bias once. */
static mixrt_status fmm_build(mixrt_context_t ctx, const struct mixrt_node *n, struct fmm_state *st, int64_t M,
                              const void *b, const struct mixrt_tensor *bias) {
    mixrt_status status = MIXRT_STATUS_OK;
    dnnl_status_t s;
    const char *call = "";
    dnnl_engine_t eng;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_post_ops_t po = NULL;
    MIXRT_TRY(mixrt_dnnl_get(ctx, &eng, NULL));
    fmm_clear_prim(st);
    dnnl_data_type_t dt = mixrt_dnnl_dtype(st->dt);
    dnnl_memory_desc_t a_md, b_md, y_md, bias_md, z_md;
    int64_t ad[2] = {M, st->K}, yd[2] = {M, st->N};
    dnnl_dims_t bd = {st->K, st->N}, biasd = {1, st->N};
    DNNL_DO(mixrt_dnnl_plain_md(&a_md, 2, ad, dt));
    if (pack_weights()) {
        DNNL_DO(dnnl_memory_desc_init_by_tag(&b_md, 2, bd, dt, dnnl_format_tag_any));
    } else {
        dnnl_dims_t bs = {st->trans_b ? 1 : (st->N > 0 ? st->N : 1), st->trans_b ? (st->K > 0 ? st->K : 1) : 1};
        DNNL_DO(dnnl_memory_desc_init_by_strides(&b_md, 2, bd, dt, bs));
    }
    DNNL_DO(mixrt_dnnl_plain_md(&y_md, 2, yd, st->silu_split ? dnnl_f32 : dt));
    if (st->has_bias) DNNL_DO(dnnl_memory_desc_init_by_tag(&bias_md, 2, biasd, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t d;
    DNNL_DO(dnnl_matmul_desc_init(&d, &a_md, &b_md, st->has_bias ? &bias_md : NULL, &y_md));
    DNNL_DO(mixrt_dnnl_attr_user_scratchpad(&attr));
    DNNL_DO(dnnl_post_ops_create(&po));
    /* Z before the activation: act(A.B + bias + Z). */
    if (st->has_z) {
        DNNL_DO(mixrt_dnnl_plain_md(&z_md, 2, yd, dt));
        DNNL_DO(dnnl_post_ops_append_binary(po, dnnl_binary_add, &z_md));
    }
    if (st->alg != dnnl_alg_kind_undef && !st->silu_split)
        DNNL_DO(dnnl_post_ops_append_eltwise(po, 1.0f, st->alg, st->alpha, st->beta));
    DNNL_DO(dnnl_primitive_attr_set_post_ops(attr, po));
    DNNL_DO(dnnl_primitive_desc_create(&st->pd, &d, attr, eng, NULL));
    DNNL_DO(dnnl_primitive_create(&st->prim, st->pd));
    const dnnl_memory_desc_t *w_md = dnnl_primitive_desc_query_md(st->pd, dnnl_query_weights_md, 0);
    call = "dnnl_primitive_desc_query_md(weights)";
    if (!w_md) {
        s = dnnl_runtime_error;
        goto dnnl_fail;
    }
    const dnnl_memory_desc_t *kept = NULL;
    if ((!st->wei || dnnl_memory_get_memory_desc(st->wei, &kept) != dnnl_success || !kept ||
         !dnnl_memory_desc_equal(kept, w_md)) &&
        !fmm_adopt(n, st, w_md))
        MIXRT_TRY(fmm_pack(ctx, n, st, w_md, b));
    DNNL_DO(dnnl_memory_create(&st->src, &a_md, eng, DNNL_MEMORY_NONE));
    DNNL_DO(dnnl_memory_create(&st->dst, &y_md, eng, DNNL_MEMORY_NONE));
    if (st->has_z) DNNL_DO(dnnl_memory_create(&st->z, &z_md, eng, DNNL_MEMORY_NONE));
    if (st->has_bias && !st->bias_ready) {
        if (!st->bias) DNNL_DO(dnnl_memory_create(&st->bias, &bias_md, eng, DNNL_MEMORY_ALLOCATE));
        void *h = NULL;
        DNNL_DO(dnnl_memory_get_data_handle(st->bias, &h));
        for (int64_t j = 0; j < st->N; j++) ((float *)h)[j] = (float)mixrt_load_f64(bias->data, bias->dtype, (size_t)j);
        st->bias_ready = true;
    }
    st->M = M;
    st->built = true;
    goto fail;
dnnl_fail:
    status = fmm_fail(ctx, n, s, call);
    fmm_clear_prim(st);
fail:
    if (po) dnnl_post_ops_destroy(po);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return status;
}

/* FusedMatMul's activation as st's eltwise post-op. */
static void fmm_set_act(struct fmm_state *st, int act) {
    static const dnnl_alg_kind_t algs[] = {dnnl_alg_kind_undef, dnnl_eltwise_relu,     dnnl_eltwise_gelu_erf,
                                           dnnl_eltwise_gelu_tanh, dnnl_eltwise_logistic, dnnl_eltwise_tanh};
    st->act = act;
    st->alg = act >= 0 && act < (int)(sizeof(algs) / sizeof(algs[0])) ? algs[act] : dnnl_alg_kind_undef;
    st->alpha = st->beta = 0.0f;
}

static bool fmm_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (mixrt_dnnl_get(NULL, NULL, NULL) != MIXRT_STATUS_OK) return refuse(why, why_size, "oneDNN has no CPU engine");
    const struct mixrt_value *a = in_value(g, n, 0), *b = in_value(g, n, 1), *bias = in_value(g, n, 2),
                             *z = in_value(g, n, 3);
    if (!a || !b || n->n_outputs < 1 || n->outputs[0] < 0) return refuse(why, why_size, "expected A, B and an output");
    mixrt_dtype dt = g->values[n->outputs[0]].dtype;
    if (dt != MIXRT_DTYPE_F32 && dt != MIXRT_DTYPE_BF16) return refuse(why, why_size, "output is not f32 or bf16");
    if (dt == MIXRT_DTYPE_BF16 && !mixrt_dnnl_bf16_native())
        return refuse(why, why_size, "bf16 needs AVX512-BF16 and a native oneDNN bf16 implementation");
    if (a->dtype != dt || b->dtype != dt || (z && z->dtype != dt))
        return refuse(why, why_size, "A, B, Z and the output must share one dtype (%s)", mixrt_dtype_name(dt));
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1]) || g->values[n->inputs[1]].init->rank != 2)
        return refuse(why, why_size, "input #1 '%s' is not a constant matrix (weights are packed once)", b->name);
    if (bias && (!mixrt_graph_is_fixed_const(g, n->inputs[2]) || !mixrt_dtype_is_float(bias->dtype)))
        return refuse(why, why_size, "input #2 '%s' (bias) is not a float constant", bias->name);
    if (a->rank == 0) return refuse(why, why_size, "input #0 '%s' is a scalar", a->name);
    if (mixrt_fmm_activation(n) < 0) return refuse(why, why_size, "unknown activation");
    if (mixrt_fmv_streams_big_b(g, n))
        return refuse(why, why_size, "1-4 rows on a B that streams from memory every run (64 MiB or more, or 1 MiB "
                      "or more in a model of 128 MiB of weights or more): fmm_gemv reads it in place at memory's rate");
    return true;
}

/* A zeroed state (lock initialized) in *state and *out; prepare() of both kernels here. */
static mixrt_status fmm_state_new(mixrt_context_t ctx, void **state, struct fmm_state **out) {
    mixrt_status status = mixrt_dnnl_get(ctx, NULL, NULL);
    if (status != MIXRT_STATUS_OK) return status;
    struct fmm_state *st = mixrt_alloc(ctx, sizeof(*st));
    if (!st) return MIXRT_STATUS_OUT_OF_MEMORY;
    memset(st, 0, sizeof(*st));
    pthread_mutex_init(&st->lock, NULL);
    *state = *out = st;
    return MIXRT_STATUS_OK;
}

static mixrt_status fmm_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                void **state) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct fmm_state *st;
    MIXRT_TRY(fmm_state_new(ctx, state, &st));
    /* Pack now when A's rows are known statically and B is there in the run dtype: the first
     * run then does no weight work. Otherwise the first run packs. */
    const struct mixrt_value *a = in_value(g, n, 0), *bias = in_value(g, n, 2);
    const struct mixrt_tensor *b = mixrt_graph_is_fixed_const(g, n->inputs[1]) ? g->values[n->inputs[1]].init : NULL;
    mixrt_dtype dt = n->outputs[0] >= 0 ? g->values[n->outputs[0]].dtype : MIXRT_DTYPE_UNDEFINED;
    if (!a || a->rank < 1 || !b || b->rank != 2 || b->dtype != dt || mixrt_dnnl_dtype(dt) == dnnl_data_type_undef)
        return MIXRT_STATUS_OK;
    if (bias && !mixrt_graph_is_fixed_const(g, n->inputs[2])) return MIXRT_STATUS_OK;
    int64_t rows = 1;
    for (int i = 0; i < a->rank - 1; i++) {
        if (a->dims[i].value < 0) return MIXRT_STATUS_OK;
        rows *= a->dims[i].value;
    }
    st->dt = dt;
    st->trans_b = mixrt_node_attr_int(n, "transB", 0) != 0;
    st->K = st->trans_b ? b->dims[1] : b->dims[0];
    st->N = st->trans_b ? b->dims[0] : b->dims[1];
    if (a->dims[a->rank - 1].value != st->K || rows == 0 || st->K == 0 || st->N == 0) return MIXRT_STATUS_OK;
    st->has_bias = bias != NULL;
    st->has_z = in_value(g, n, 3) != NULL;
    fmm_set_act(st, mixrt_fmm_activation(n));
    if (st->act < 0) return MIXRT_STATUS_OK;
    fmm_set_wkey(st, g, n);
    status = fmm_build(ctx, n, st, rows, b->data, bias ? g->values[n->inputs[2]].init : NULL);
fail:
    return status;
}

static mixrt_status fmm_bad(struct mixrt_kernel_ctx *k, int i, const struct mixrt_tensor *t, const char *what) {
    char d[256];
    int vi = i < k->node->n_inputs ? k->node->inputs[i] : -1;
    return mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "input #%d '%s' is %s, %s", i,
                              vi >= 0 ? k->graph->values[vi].name : "", mixrt_tensor_desc(d, sizeof(d), t), what);
}

static double act_f64(int act, double x) {
    switch (act) {
    case ACT_RELU: return x > 0 ? x : 0.0;
    case ACT_GELU: return 0.5 * x * (1.0 + erf(x * 0.70710678118654752440));
    case ACT_GELU_TANH: return 0.5 * x * (1.0 + tanh(0.7978845608028654 * (x + 0.044715 * x * x * x)));
    case ACT_SIGMOID: return 1.0 / (1.0 + exp(-x));
    case ACT_TANH: return tanh(x);
    default: return x;
    }
}

/* Runs st's primitive: y = act(a . B + bias + z) on the run's buffers. Called with st->lock held. */
static mixrt_status fmm_exec(struct mixrt_kernel_ctx *k, struct fmm_state *st, const void *a,
                             const struct mixrt_tensor *z, struct mixrt_tensor *y) {
    mixrt_status status = MIXRT_STATUS_OK;
    dnnl_engine_t eng;
    dnnl_stream_t strm;
    dnnl_status_t s;
    const char *call = "";
    void *ys = NULL; /* SiLU split: oneDNN's f32 output before the activation */
    struct mixrt_dnnl_scratch sc = {0};
    MIXRT_TRY(mixrt_dnnl_get(k->ctx, &eng, &strm));
    /* The engine's scratch (see dnnl_conv.c): the SiLU split's f32 output, then oneDNN's scratchpad. */
    MIXRT_TRY(mixrt_dnnl_scratch_take(k, st->pd, st->silu_split ? mixrt_tensor_numel(y) * sizeof(float) : 0, &sc));
    if (st->silu_split) ys = sc.p;
    DNNL_DO(dnnl_memory_set_data_handle(st->src, (void *)a)); /* only read */
    DNNL_DO(dnnl_memory_set_data_handle(st->dst, ys ? ys : y->data));
    dnnl_exec_arg_t args[6] = {{DNNL_ARG_SRC, st->src}, {DNNL_ARG_WEIGHTS, st->wei}, {DNNL_ARG_DST, st->dst}};
    int na = 3;
    if (sc.sp) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, sc.sp};
    if (st->has_bias) args[na++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, st->bias};
    if (z) {
        DNNL_DO(dnnl_memory_set_data_handle(st->z, z->data));
        args[na++] = (dnnl_exec_arg_t){DNNL_ARG_ATTR_MULTIPLE_POST_OP(0) | DNNL_ARG_SRC_1, st->z};
    }
    DNNL_DO(dnnl_primitive_execute(st->prim, strm, na, args));
    DNNL_DO(dnnl_stream_wait(strm));
    if (ys) mixrt_elt_silu_to_bf16(ys, y->data, mixrt_tensor_numel(y));
    goto fail;
dnnl_fail:
    status = fmm_fail(k->ctx, k->node, s, call);
fail:
    mixrt_dnnl_scratch_put(k->ctx, &sc);
    return status;
}

static mixrt_status fmm_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct fmm_state local, *st = k->state;
    bool own = st == NULL, locked = false;
    if (own) {
        memset(&local, 0, sizeof(local));
        pthread_mutex_init(&local.lock, NULL);
        st = &local;
    }
    const struct mixrt_tensor *a = NULL, *b = NULL, *bias = mixrt_kernel_opt_input(k, 2), *z = mixrt_kernel_opt_input(k, 3);
    struct mixrt_tensor *y = NULL;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &a));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &b));
    mixrt_dtype dt;
    MIXRT_TRY(mixrt_dnnl_check_dtypes(k, 2, 2, &dt));
    if (z && z->dtype != dt) MIXRT_TRY(fmm_bad(k, 3, z, "expected the dtype of input #0"));
    if (bias && !mixrt_dtype_is_float(bias->dtype)) MIXRT_TRY(fmm_bad(k, 2, bias, "expected a float bias"));
    int act = mixrt_fmm_activation(k->node);
    if (act < 0) MIXRT_TRY(mixrt_kernel_error(k, MIXRT_STATUS_INVALID_MODEL, "unknown attribute 'activation'"));
    bool tb = mixrt_node_attr_int(k->node, "transB", 0) != 0;
    if (a->rank < 1) MIXRT_TRY(fmm_bad(k, 0, a, "expected rank >= 1"));
    if (b->rank != 2) MIXRT_TRY(fmm_bad(k, 1, b, "expected a matrix (this kernel)"));
    int64_t K = a->dims[a->rank - 1], N = tb ? b->dims[0] : b->dims[1];
    if ((tb ? b->dims[1] : b->dims[0]) != K) MIXRT_TRY(fmm_bad(k, 1, b, "its K does not match input #0's last dim"));
    if (bias && (bias->rank != 1 || bias->dims[0] != N)) MIXRT_TRY(fmm_bad(k, 2, bias, "expected a 1-D bias of N elements"));
    int64_t yd[MIXRT_MAX_RANK];
    int yr = 0;
    for (int i = 0; i < a->rank - 1; i++) yd[yr++] = a->dims[i];
    yd[yr++] = N;
    if (z) {
        bool same = z->rank == yr;
        for (int i = 0; same && i < yr; i++) same = z->dims[i] == yd[i];
        if (!same) MIXRT_TRY(fmm_bad(k, 3, z, "expected exactly the output's shape"));
    }
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, dt, yr, yd, &y)); /* the K = 0 answer or oneDNN's: all of it */
    size_t ny = mixrt_tensor_numel(y);
    if (ny == 0) goto fail;
    int64_t M = (int64_t)(ny / (size_t)N);
    if (K == 0) { /* an empty sum: act(bias + Z) */
        for (size_t i = 0; i < ny; i++) {
            double v = (bias ? mixrt_load_f64(bias->data, bias->dtype, i % (size_t)N) : 0.0) +
                       (z ? mixrt_load_f64(z->data, z->dtype, i) : 0.0);
            mixrt_store_f64(y->data, dt, i, act_f64(act, v));
        }
        goto fail;
    }
    pthread_mutex_lock(&st->lock);
    locked = true;
    if (!st->built || st->M != M || st->K != K || st->N != N || st->dt != dt || st->has_z != (z != NULL) ||
        st->has_bias != (bias != NULL) || st->trans_b != tb || st->act != act) {
        if (st->K != K || st->N != N || st->dt != dt || st->trans_b != tb) {
            /* Another B altogether: nothing packed applies. */
            fmm_wei_drop(st);
        }
        if (st->has_bias != (bias != NULL) || st->K != K || st->N != N) st->bias_ready = false;
        st->dt = dt, st->K = K, st->N = N, st->trans_b = tb;
        fmm_set_act(st, act);
        st->has_z = z != NULL, st->has_bias = bias != NULL;
        if (!own) fmm_set_wkey(st, k->graph, k->node);
        MIXRT_TRY(fmm_build(k->ctx, k->node, st, M, b->data, bias));
    }
    MIXRT_TRY(fmm_exec(k, st, a->data, z, y));
fail:
    if (locked) pthread_mutex_unlock(&st->lock);
    if (own) {
        fmm_clear_prim(st);
        fmm_wei_drop(st);
        if (st->bias) dnnl_memory_destroy(st->bias);
        pthread_mutex_destroy(&st->lock);
    }
    return status;
}

/* ---- 1x1 FusedConv (channels-last) as the same packed-weights matmul -------------------------- */

/* A channels-last 1x1 convolution is a matmul of the [N*OH*OW, C] rows of X (every stride-th
 * pixel) by W^T ([M, C] read transposed). oneDNN 2.6 runs it through its brgemm matmul with
 * the residual as a binary post-op, where its 1x1 convolution with that post-op falls back to
 * an older, slower implementation (ResNet-50's bottleneck ends). */
struct c1x1_geom {
    int64_t n, h, w, c, m, sh, sw, oh, ow;
};

/* The strides of node n (1x1, no pads, group 1 checked by supports); false when malformed. */
static bool c1x1_strides(const struct mixrt_node *n, int64_t *sh, int64_t *sw) {
    size_t ns = 0;
    const int64_t *st = mixrt_node_attr_ints(n, "strides", &ns);
    if (st && ns != 2) return false;
    *sh = st ? st[0] : 1, *sw = st ? st[1] : 1;
    return *sh >= 1 && *sw >= 1;
}

/* What both channels-last conv matmuls (1x1 here, 1-D below) need: oneDNN, FusedConv's
 * channels-last form, X of rank r and W a constant of rank r, X, W, Z and the output sharing f32
 * or bf16, a float constant bias, one group. */
static bool cmm_supports(const struct mixrt_graph *g, const struct mixrt_node *n, int r, char *why, size_t why_size) {
    if (mixrt_dnnl_get(NULL, NULL, NULL) != MIXRT_STATUS_OK) return refuse(why, why_size, "oneDNN has no CPU engine");
    struct mixrt_dnnl_conv_opts o;
    if (!mixrt_dnnl_fconv_opts(n, &o)) return refuse(why, why_size, "malformed activation attributes");
    if (!o.channels_last) return refuse(why, why_size, "not channels-last (this kernel)");
    const struct mixrt_value *x = in_value(g, n, 0), *w = in_value(g, n, 1), *b = in_value(g, n, 2), *z = in_value(g, n, 3);
    if (!x || !w || n->n_outputs < 1 || n->outputs[0] < 0) return refuse(why, why_size, "expected X, W and an output");
    mixrt_dtype dt = g->values[n->outputs[0]].dtype;
    if (dt != MIXRT_DTYPE_F32 && dt != MIXRT_DTYPE_BF16) return refuse(why, why_size, "output is not f32 or bf16");
    if (dt == MIXRT_DTYPE_BF16 && !mixrt_dnnl_bf16_native())
        return refuse(why, why_size, "bf16 needs AVX512-BF16 and a native oneDNN bf16 implementation");
    if (x->dtype != dt || w->dtype != dt || (z && z->dtype != dt))
        return refuse(why, why_size, "X, W, Z and the output must share one dtype");
    if (!mixrt_graph_is_fixed_const(g, n->inputs[1])) return refuse(why, why_size, "W is not a constant");
    if (g->values[n->inputs[1]].init->rank != r || x->rank != r)
        return refuse(why, why_size, "X or W is not of rank %d (%s convolution)", r, r == 3 ? "1-D" : "2-D");
    if (b && (!mixrt_graph_is_fixed_const(g, n->inputs[2]) || !mixrt_dtype_is_float(b->dtype)))
        return refuse(why, why_size, "the bias is not a float constant");
    if (mixrt_node_attr_int(n, "group", 1) != 1) return refuse(why, why_size, "grouped");
    return true;
}

/* st as the matmul of a channels-last conv: B is W [N, K / taps, taps] read as [N, K], taps
 * first when taps > 1 (see fmm_state); the activation as post-op or SiLU split. */
static void cmm_set(struct fmm_state *st, mixrt_dtype dt, int64_t K, int64_t N, int64_t taps, bool has_z,
                    bool has_bias, const struct mixrt_dnnl_conv_opts *o) {
    st->dt = dt, st->trans_b = true, st->K = K, st->N = N, st->taps = taps;
    st->has_z = has_z, st->has_bias = has_bias;
    st->act = -1;
    st->alg = o->act, st->alpha = o->alpha, st->beta = o->beta;
    st->silu_split = !st->swish_post && mixrt_dnnl_silu_split(o->act, o->alpha, dt, has_z);
}

/* The run's primitive for rows of A (st->lock held): rebuilt when anything it was made for
 * changed, the packed weights dropped only when B itself did. */
static mixrt_status cmm_ensure(struct mixrt_kernel_ctx *k, struct fmm_state *st, int64_t rows, int64_t K, int64_t N,
                               int64_t taps, mixrt_dtype dt, const struct mixrt_tensor *w,
                               const struct mixrt_tensor *bias, const struct mixrt_tensor *z,
                               const struct mixrt_dnnl_conv_opts *o) {
    if (st->built && st->M == rows && st->K == K && st->N == N && st->taps == taps && st->dt == dt &&
        st->has_z == (z != NULL) && st->has_bias == (bias != NULL) && st->alg == o->act && st->alpha == o->alpha &&
        st->beta == o->beta)
        return MIXRT_STATUS_OK;
    if (st->K != K || st->N != N || st->dt != dt || !st->trans_b || st->taps != taps) fmm_wei_drop(st);
    if (st->has_bias != (bias != NULL) || st->N != N) st->bias_ready = false;
    cmm_set(st, dt, K, N, taps, z != NULL, bias != NULL, o);
    fmm_set_wkey(st, k->graph, k->node);
    return fmm_build(k->ctx, k->node, st, rows, w->data, bias);
}

/* st->sub with room for need bytes (kept for the next runs), or NULL when out of memory. */
static char *cmm_rows(struct mixrt_kernel_ctx *k, struct fmm_state *st, size_t need) {
    if (st->sub_bytes < need) {
        mixrt_free(k->ctx, st->sub, st->sub_bytes);
        st->sub_bytes = 0;
        if (!(st->sub = mixrt_alloc(k->ctx, need))) return NULL;
        st->sub_bytes = need;
    }
    return st->sub;
}

static bool c1x1_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!cmm_supports(g, n, 4, why, why_size)) return false;
    const struct mixrt_tensor *wt = g->values[n->inputs[1]].init;
    if (wt->dims[2] != 1 || wt->dims[3] != 1) return refuse(why, why_size, "not a 2-D 1x1 convolution");
    int64_t sh, sw;
    if (!c1x1_strides(n, &sh, &sw)) return refuse(why, why_size, "malformed strides");
    size_t np = 0;
    const int64_t *pads = mixrt_node_attr_ints(n, "pads", &np);
    for (size_t i = 0; pads && i < np; i++)
        if (pads[i] != 0) return refuse(why, why_size, "padded");
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID") && ap[0]) return refuse(why, why_size, "auto_pad '%s'", ap);
    return true;
}

/* The 1x1 conv with a bf16 SiLU as oneDNN's post-op, not split (see fused_conv.c's
 * dnnl_fused_conv_swish): only where the split would apply. */
static bool c1x1_swish_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!c1x1_supports(g, n, why, why_size)) return false;
    if (!mixrt_dnnl_fconv_splits_silu(g, n)) return refuse(why, why_size, "no bf16 SiLU split to keep as a post-op");
    return true;
}

static mixrt_status c1x1_prepare_as(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                    bool swish, void **state) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct fmm_state *st;
    MIXRT_TRY(fmm_state_new(ctx, state, &st));
    st->swish_post = swish;
    /* Pack now when X's shape is static: the first run then does no weight work. */
    struct mixrt_dnnl_conv_opts o;
    const struct mixrt_value *x = in_value(g, n, 0), *bias = in_value(g, n, 2);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    int64_t sh, sw;
    if (!mixrt_dnnl_fconv_opts(n, &o) || !c1x1_strides(n, &sh, &sw) || !x || x->rank != 4) return MIXRT_STATUS_OK;
    for (int i = 0; i < 4; i++)
        if (x->dims[i].value <= 0) return MIXRT_STATUS_OK;
    if (x->dims[3].value != w->dims[1]) return MIXRT_STATUS_OK; /* the run words it */
    int64_t oh = (x->dims[1].value - 1) / sh + 1, ow = (x->dims[2].value - 1) / sw + 1;
    if (w->dims[0] == 0) return MIXRT_STATUS_OK;
    cmm_set(st, w->dtype, w->dims[1], w->dims[0], 0, in_value(g, n, 3) != NULL, bias != NULL, &o);
    fmm_set_wkey(st, g, n);
    status = fmm_build(ctx, n, st, x->dims[0].value * oh * ow, w->data, bias ? g->values[n->inputs[2]].init : NULL);
fail:
    return status;
}

static mixrt_status c1x1_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                 void **state) {
    return c1x1_prepare_as(ctx, g, n, false, state);
}

static mixrt_status c1x1_swish_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                       void **state) {
    return c1x1_prepare_as(ctx, g, n, true, state);
}

static mixrt_status c1x1_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct fmm_state *st = k->state;
    bool locked = false;
    const struct mixrt_tensor *x = NULL, *w = NULL, *bias = mixrt_kernel_opt_input(k, 2), *z = mixrt_kernel_opt_input(k, 3);
    struct mixrt_tensor *y = NULL;
    struct mixrt_dnnl_conv_opts o;
    struct c1x1_geom gm;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &w));
    if (!st || !mixrt_dnnl_fconv_opts(k->node, &o) || !c1x1_strides(k->node, &gm.sh, &gm.sw) || x->rank != 4 ||
        w->rank != 4 || w->dims[2] != 1 || w->dims[3] != 1 || mixrt_tensor_numel(x) == 0 || mixrt_tensor_numel(w) == 0)
        return mixrt_cpu_run_reference(k); /* it words any error */
    mixrt_dtype dt;
    MIXRT_TRY(mixrt_dnnl_check_dtypes(k, 2, 2, &dt));
    gm.n = x->dims[0], gm.h = x->dims[1], gm.w = x->dims[2], gm.c = x->dims[3], gm.m = w->dims[0];
    if (w->dims[1] != gm.c) MIXRT_TRY(fmm_bad(k, 1, w, "its input channels differ from X's last dim"));
    if (bias && (bias->rank != 1 || bias->dims[0] != gm.m || !mixrt_dtype_is_float(bias->dtype)))
        MIXRT_TRY(fmm_bad(k, 2, bias, "expected a 1-D float bias of M elements"));
    gm.oh = (gm.h - 1) / gm.sh + 1, gm.ow = (gm.w - 1) / gm.sw + 1;
    int64_t yd[4] = {gm.n, gm.oh, gm.ow, gm.m};
    if (z && (z->dtype != dt || z->rank != 4 || memcmp(z->dims, yd, sizeof(yd))))
        MIXRT_TRY(fmm_bad(k, 3, z, "expected the output's dtype and shape"));
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, dt, 4, yd, &y));
    int64_t rows = gm.n * gm.oh * gm.ow;
    pthread_mutex_lock(&st->lock);
    locked = true;
    MIXRT_TRY(cmm_ensure(k, st, rows, gm.c, gm.m, 0, dt, w, bias, z, &o));
    const void *a = x->data;
    if (gm.sh > 1 || gm.sw > 1) {
        /* Every stride-th pixel into contiguous rows: the matmul then reads dense A. */
        size_t esz = mixrt_dtype_size(dt), row = (size_t)gm.c * esz;
        const char *src = x->data;
        char *dst = cmm_rows(k, st, (size_t)rows * row);
        if (!dst) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
        int64_t lines = gm.n * gm.oh;
#pragma omp parallel for schedule(static)
        for (int64_t l = 0; l < lines; l++) {
            int64_t n0 = l / gm.oh, i = l % gm.oh;
            const char *s0 = src + (size_t)((n0 * gm.h + i * gm.sh) * gm.w) * row;
            char *d0 = dst + (size_t)(l * gm.ow) * row;
            for (int64_t j = 0; j < gm.ow; j++) memcpy(d0 + (size_t)j * row, s0 + (size_t)(j * gm.sw) * row, row);
        }
        a = dst;
    }
    MIXRT_TRY(fmm_exec(k, st, a, z, y));
fail:
    if (locked) pthread_mutex_unlock(&st->lock);
    return status;
}

/* ---- 1-D FusedConv (channels-last) as one matmul over im2col rows ---------------------------- */

/* A channels-last 1-D convolution [N, T, C] -> [N, T', M] is the matmul of rows holding each
 * output position's k input positions ([N*T', k*C], tap by tap) by W read as [M, k*C] (packed
 * taps first, see fmm_state). oneDNN 2.6 runs wav2vec2's extractor convs (C = M = 512, k 3 or
 * 2, stride 2) at ~160-175 GFLOP/s as convolutions and at ~205 as this matmul (im2col copy
 * included; the product alone ~230). The builder times it against dnnl_fused_conv. When
 * the windows tile X exactly (k = stride, no pads, dilation 1) the rows are X itself; otherwise
 * they are copied (zeros where a window hangs over a pad). */
struct c1d_geom {
    int64_t n, t, c, m, k, s, d, pb, pe, to;
};

/* Node n's 1-D attributes for k taps into g (false when malformed, or auto_pad SAME). */
static bool c1d_attrs(const struct mixrt_node *n, int64_t k, struct c1d_geom *g) {
    size_t ns = 0, nd = 0, np = 0, nk = 0;
    const int64_t *st = mixrt_node_attr_ints(n, "strides", &ns), *dl = mixrt_node_attr_ints(n, "dilations", &nd),
                  *pads = mixrt_node_attr_ints(n, "pads", &np), *ks = mixrt_node_attr_ints(n, "kernel_shape", &nk);
    if ((st && ns != 1) || (dl && nd != 1) || (pads && np != 2) || (ks && (nk != 1 || ks[0] != k))) return false;
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (strcmp(ap, "NOTSET") && strcmp(ap, "VALID") && ap[0]) return false;
    g->k = k, g->s = st ? st[0] : 1, g->d = dl ? dl[0] : 1, g->pb = pads ? pads[0] : 0, g->pe = pads ? pads[1] : 0;
    return g->s >= 1 && g->d >= 1 && g->pb >= 0 && g->pe >= 0 && k >= 1;
}

/* Node n's 1-D geometry for X [N, T, C] and W [M, C, k] (dims from the graph or the run). */
static bool c1d_geom(const struct mixrt_node *n, const int64_t *xd, const int64_t *wd, struct c1d_geom *g) {
    if (!c1d_attrs(n, wd[2], g) || wd[1] != xd[2]) return false;
    g->n = xd[0], g->t = xd[1], g->c = xd[2], g->m = wd[0];
    int64_t span = g->t + g->pb + g->pe - (g->k - 1) * g->d - 1;
    if (span < 0) return false;
    g->to = span / g->s + 1;
    return true;
}

/* X itself is the im2col matrix: windows side by side, no pads, no overlap, no gaps. */
static bool c1d_direct(const struct c1d_geom *g) {
    return g->k == g->s && g->d == 1 && g->pb == 0 && g->pe == 0 && (g->n == 1 || g->t == g->to * g->s);
}

static bool c1d_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    if (!cmm_supports(g, n, 3, why, why_size)) return false;
    struct c1d_geom gm; /* attributes only: the run checks X against W */
    if (!c1d_attrs(n, g->values[n->inputs[1]].init->dims[2], &gm))
        return refuse(why, why_size, "malformed 1-D attributes (or auto_pad SAME)");
    return true;
}

static mixrt_status c1d_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                void **state) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct fmm_state *st;
    MIXRT_TRY(fmm_state_new(ctx, state, &st));
    /* Pack now when X's shape is static: the first run then does no weight work. */
    struct mixrt_dnnl_conv_opts o;
    const struct mixrt_value *x = in_value(g, n, 0), *bias = in_value(g, n, 2);
    const struct mixrt_tensor *w = g->values[n->inputs[1]].init;
    if (!mixrt_dnnl_fconv_opts(n, &o) || !x || x->rank != 3 || w->rank != 3) return MIXRT_STATUS_OK;
    int64_t xd[3];
    for (int i = 0; i < 3; i++)
        if ((xd[i] = x->dims[i].value) <= 0) return MIXRT_STATUS_OK;
    struct c1d_geom gm;
    if (!c1d_geom(n, xd, w->dims, &gm) || gm.m == 0) return MIXRT_STATUS_OK; /* the run words it */
    cmm_set(st, w->dtype, gm.k * gm.c, gm.m, gm.k, in_value(g, n, 3) != NULL, bias != NULL, &o);
    fmm_set_wkey(st, g, n);
    status = fmm_build(ctx, n, st, gm.n * gm.to, w->data, bias ? g->values[n->inputs[2]].init : NULL);
fail:
    return status;
}

/* Row r of the im2col matrix: row n*T'+t holds X[n, t*s + j*d - pb, :] for j < k, zeros where
 * that is a pad. */
static void c1d_row(const struct c1d_geom *g, const char *x, char *a, size_t es, int64_t r) {
    size_t row = (size_t)g->c * es;
    int64_t n = r / g->to, t = r % g->to;
    char *dst = a + (size_t)r * (size_t)g->k * row;
    for (int64_t j = 0; j < g->k; j++) {
        int64_t p = t * g->s + j * g->d - g->pb;
        if (p < 0 || p >= g->t) memset(dst + (size_t)j * row, 0, row);
        else memcpy(dst + (size_t)j * row, x + (size_t)(n * g->t + p) * row, row);
    }
}

static mixrt_status c1d_run(struct mixrt_kernel_ctx *k) {
    mixrt_status status = MIXRT_STATUS_OK;
    struct fmm_state *st = k->state;
    bool locked = false;
    const struct mixrt_tensor *x = NULL, *w = NULL, *bias = mixrt_kernel_opt_input(k, 2),
                              *z = mixrt_kernel_opt_input(k, 3);
    struct mixrt_tensor *y = NULL;
    struct mixrt_dnnl_conv_opts o;
    struct c1d_geom gm;
    MIXRT_TRY(mixrt_kernel_input(k, 0, &x));
    MIXRT_TRY(mixrt_kernel_input(k, 1, &w));
    if (!st || !mixrt_dnnl_fconv_opts(k->node, &o) || x->rank != 3 || w->rank != 3 ||
        !c1d_geom(k->node, x->dims, w->dims, &gm) || mixrt_tensor_numel(x) == 0 || mixrt_tensor_numel(w) == 0)
        return mixrt_cpu_run_reference(k); /* it words any error */
    mixrt_dtype dt;
    MIXRT_TRY(mixrt_dnnl_check_dtypes(k, 2, 2, &dt));
    if (bias && (bias->rank != 1 || bias->dims[0] != gm.m || !mixrt_dtype_is_float(bias->dtype)))
        MIXRT_TRY(fmm_bad(k, 2, bias, "expected a 1-D float bias of M elements"));
    int64_t yd[3] = {gm.n, gm.to, gm.m};
    if (z && (z->dtype != dt || z->rank != 3 || memcmp(z->dims, yd, sizeof(yd))))
        MIXRT_TRY(fmm_bad(k, 3, z, "expected the output's dtype and shape"));
    MIXRT_TRY(mixrt_kernel_output_uninit(k, 0, dt, 3, yd, &y));
    int64_t rows = gm.n * gm.to;
    pthread_mutex_lock(&st->lock);
    locked = true;
    MIXRT_TRY(cmm_ensure(k, st, rows, gm.k * gm.c, gm.m, gm.k, dt, w, bias, z, &o));
    const void *a = x->data;
    if (!c1d_direct(&gm)) {
        size_t es = mixrt_dtype_size(dt), need = (size_t)rows * (size_t)(gm.k * gm.c) * es;
        char *rows_buf = cmm_rows(k, st, need);
        if (!rows_buf) MIXRT_TRY(MIXRT_STATUS_OUT_OF_MEMORY);
#pragma omp parallel for schedule(static) if (need >= ((size_t)1 << 16))
        for (int64_t r = 0; r < rows; r++) c1d_row(&gm, x->data, rows_buf, es, r);
        a = rows_buf;
    }
    MIXRT_TRY(fmm_exec(k, st, a, z, y));
fail:
    if (locked) pthread_mutex_unlock(&st->lock);
    return status;
}
#undef DNNL_DO

#else /* !MIXRT_HAVE_DNNL */

static bool fmm_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    (void)g;
    if (mixrt_fmm_activation(n) < 0) return refuse(why, why_size, "unknown activation");
    return refuse(why, why_size, "built without oneDNN (MIXRT_DNNL=OFF)");
}
static mixrt_status fmm_run(struct mixrt_kernel_ctx *k) {
    return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "built without oneDNN (MIXRT_DNNL=OFF)");
}
#define fmm_prepare NULL
#define fmm_release NULL
static bool c1x1_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size) {
    (void)g, (void)n;
    return refuse(why, why_size, "built without oneDNN (MIXRT_DNNL=OFF)");
}
static mixrt_status c1x1_run(struct mixrt_kernel_ctx *k) {
    return mixrt_kernel_error(k, MIXRT_STATUS_UNSUPPORTED, "built without oneDNN (MIXRT_DNNL=OFF)");
}
#define c1x1_prepare NULL
#define c1x1_swish_supports c1x1_supports
#define c1x1_swish_prepare NULL
#define c1d_supports c1x1_supports
#define c1d_run c1x1_run
#define c1d_prepare NULL

#endif /* MIXRT_HAVE_DNNL */

const struct mixrt_cpu_kernel mixrt_fused_transformer_kernels[] = {
    {"dnnl_fused_matmul", MIXRT_DOMAIN, "FusedMatMul", fmm_supports, fmm_prepare, fmm_release, fmm_run},
    {"dnnl_conv1x1_mm", MIXRT_DOMAIN, "FusedConv", c1x1_supports, c1x1_prepare, fmm_release, c1x1_run},
    {"dnnl_conv1x1_mm_swish", MIXRT_DOMAIN, "FusedConv", c1x1_swish_supports, c1x1_swish_prepare, fmm_release,
     c1x1_run},
    {"dnnl_conv1d_mm", MIXRT_DOMAIN, "FusedConv", c1d_supports, c1d_prepare, fmm_release, c1d_run},
    {"elt_gelu", MIXRT_DOMAIN, "Gelu", gelu_supports, NULL, NULL, gelu_run},
    {NULL, NULL, NULL, NULL, NULL, NULL, NULL},
};
