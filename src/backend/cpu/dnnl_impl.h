/* dnnl_impl.h - private to the oneDNN kernel family (dnnl_*.c): the process-wide engine and
 * stream, the per-node state every dnnl kernel keeps (primitives cached on the input shapes),
 * status mapping, and the per-op entry points that dnnl_kernels.c lists. Compiled only with
 * MIXRT_HAVE_DNNL; tests may include it to name the implementation oneDNN picked. */
#ifndef MIXRT_BACKEND_CPU_DNNL_IMPL_H
#define MIXRT_BACKEND_CPU_DNNL_IMPL_H

#ifdef MIXRT_HAVE_DNNL
#include <dnnl.h>
#include <pthread.h>

#include "backend/cpu/kernels.h"

/* oneDNN's own limit on tensor rank. */
#define MIXRT_DNNL_MAX_RANK DNNL_MAX_NDIMS

/* The process's engine and stream, made once (pthread_once) on first use. UNSUPPORTED with a
 * message on ctx (when not NULL) if oneDNN could not make them. */
mixrt_status mixrt_dnnl_get(mixrt_context_t ctx, dnnl_engine_t *engine, dnnl_stream_t *stream);
/* Whether bf16 primitives run natively here: CPUID says AVX512-BF16, oneDNN's effective ISA
 * is avx512_core_bf16 or better, and a probe bf16 matmul gets a non-reference implementation.
 * Without this, bf16 would run emulated or in reference code, so the kernels refuse bf16. */
bool mixrt_dnnl_bf16_native(void);
/* oneDNN's data type for f32 and bf16; dnnl_data_type_undef for everything else. */
dnnl_data_type_t mixrt_dnnl_dtype(mixrt_dtype dt);
/* Row-major (plain) memory descriptor of rank/dims. */
dnnl_status_t mixrt_dnnl_plain_md(dnnl_memory_desc_t *md, int rank, const int64_t *dims, dnnl_data_type_t dt);

/* "cannot run <Op> node '<name>': oneDNN <call> failed: <status>"; returns OUT_OF_MEMORY for
 * oneDNN's out_of_memory and UNSUPPORTED otherwise (the shapes were validated before). */
mixrt_status mixrt_dnnl_fail(struct mixrt_kernel_ctx *k, dnnl_status_t s, const char *call);
/* "input #i '<name>' is <dtype> [dims], <what>" with status st. */
mixrt_status mixrt_dnnl_bad_input(struct mixrt_kernel_ctx *k, mixrt_status st, int i, const struct mixrt_tensor *t,
                                  const char *fmt, ...) MIXRT_PRINTF(5, 6);
/* Checks the run-time dtypes: inputs 0..n_same-1 f32 (or all bf16, when native), and the
 * optional input bias_i (-1: none) either the same dtype or f32. *dt gets the common dtype. */
mixrt_status mixrt_dnnl_check_dtypes(struct mixrt_kernel_ctx *k, int n_same, int bias_i, mixrt_dtype *dt);

/* supports(): the dtypes the graph gives inputs 0..n_same-1 and output 0 must all be f32 or
 * all bf16 (bf16 only when native); input bias_i (-1: none), when present, the same or f32.
 * Input ranks, when known, must be in [min_rank, max_rank]. False with a reason in why. */
bool mixrt_dnnl_supports_common(const struct mixrt_graph *g, const struct mixrt_node *n, int n_same, int bias_i,
                                int min_rank, int max_rank, char *why, size_t why_size);

/* SiLU kept out of oneDNN's post-ops: a bf16 convolution with a swish post-op (alpha 1) and no
 * residual writes f32 into the engine's scratch (mixrt_kernel_scratch) without it, and
 * mixrt_elt_silu_to_bf16 finishes into Y: one rounding as before, the activation cheaper than
 * oneDNN's swish (EfficientNet-B0's expand conv 16->96 at 112x112: 0.406 -> 0.279 ms; with
 * ReLU in its place 0.137).
 * MIXRT_DNNL_SILU=post keeps the post-op. */
bool mixrt_dnnl_silu_split(dnnl_alg_kind_t act, float alpha, mixrt_dtype dt, bool residual);

/* Scratchpads. Debian's libdnnl is built with DNNL_ENABLE_CONCURRENT_EXEC, where a primitive
 * in oneDNN's default (library) scratchpad mode holds a scratchpad of its own for as long as it
 * lives: FCOS's fp32 engine kept about 19 MB for each of its Winograd convolutions (638 MiB at
 * peak against 170 without Winograd). Every primitive a kernel keeps is made in the user mode
 * instead (mixrt_dnnl_attr_user_scratchpad; NULL attr: make one) and its scratchpad is taken,
 * run by run, from the engine's scratch (mixrt_kernel_scratch): one buffer, the largest any
 * layer needs, for all of them. */
dnnl_status_t mixrt_dnnl_attr_user_scratchpad(dnnl_primitive_attr_t *attr);
/* The engine's scratch for one run of pd: `extra` bytes for the caller at p (64-byte aligned),
 * then pd's scratchpad, described by sp (NULL when pd needs none) for DNNL_ARG_SCRATCHPAD.
 * Give it back with mixrt_dnnl_scratch_put. */
struct mixrt_dnnl_scratch {
    void *p;
    size_t bytes;
    bool owned;
    dnnl_memory_t sp;
};
mixrt_status mixrt_dnnl_scratch_take(struct mixrt_kernel_ctx *k, const_dnnl_primitive_desc_t pd, size_t extra,
                                     struct mixrt_dnnl_scratch *sc);
void mixrt_dnnl_scratch_put(mixrt_context_t ctx, struct mixrt_dnnl_scratch *sc);
/* Rounds n up to a multiple of 64 (offsets of buffers carved out of one scratch). */
static inline size_t mixrt_dnnl_align64(size_t n) { return (n + 63) & ~(size_t)63; }

/* Per-node state, one struct for every dnnl kernel: the primitive built for the input shapes
 * in key_*, rebuilt when a run brings other shapes. The lock serializes runs of one node. */
#define MIXRT_DNNL_KEY_INPUTS 3
struct mixrt_dnnl_state {
    pthread_mutex_t lock;
    bool keyed;
    bool key_present[MIXRT_DNNL_KEY_INPUTS];
    mixrt_dtype key_dtype[MIXRT_DNNL_KEY_INPUTS];
    int key_rank[MIXRT_DNNL_KEY_INPUTS];
    int64_t key_dims[MIXRT_DNNL_KEY_INPUTS][MIXRT_MAX_RANK];
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    /* Conv: the layouts oneDNN chose differ from the plain tensors at the boundary; these
     * reorder in and out of buffers it owns. NULL where the chosen layout is already plain. */
    dnnl_primitive_t src_reorder, dst_reorder, wei_reorder;
    dnnl_memory_t src_mem, dst_mem, wei_mem;
    dnnl_memory_desc_t src_user_md, dst_user_md, wei_user_md;
    /* Conv: the weights are a constant initializer, so wei_mem, once filled (wei_ready), is
     * reused by every run until a rebuild picks another weights layout. */
    bool wei_const, wei_ready;
    /* FusedConv with a residual into a blocked dst: reorders Z into dst_mem before the run
     * (the sum post-op adds what dst holds). NULL otherwise. */
    dnnl_primitive_t dst_in_reorder;
    /* FusedConv channels-last: Z is the binary-add post-op's operand (else the sum post-op's). */
    bool z_binary;
    /* FusedConv: dst is f32 in the engine's scratch, SiLU and the bf16 rounding after
     * (mixrt_dnnl_silu_split); dst_f32_md describes it. */
    bool silu_split;
    dnnl_memory_desc_t dst_f32_md;
    /* Conv / deconv: the constant weights' identity (graph NULL: none) and the bytes wei_mem
     * holds them reordered in: wbuf while this state alone owns them, wshared once filled (a
     * refcounted entry other nodes reading the same constant in the same layout take too:
     * RetinaNet's heads run on five pyramid levels, 107 MB of weights five times). */
    const struct mixrt_graph *wgraph;
    int wvalue;
    void *wbuf;
    struct mixrt_dnnl_wshared *wshared;
};

/* Weights memory for st in layout md: a filled shared copy when one exists (st->wei_ready
 * set), else fresh bytes (owned: wbuf when st has a weights identity, else oneDNN's). */
dnnl_status_t mixrt_dnnl_wei_alloc(dnnl_engine_t eng, struct mixrt_dnnl_state *st, const dnnl_memory_desc_t *md);
/* After st's weights were reordered into wei_mem: offers them for sharing. */
void mixrt_dnnl_wei_filled(struct mixrt_dnnl_state *st);
/* Destroys st->wei_mem and lets go of its bytes (a shared copy's with its last holder). */
void mixrt_dnnl_wei_drop(struct mixrt_dnnl_state *st);
/* Records the constant input 1 of n in g as st's weights identity (nothing when it is not one). */
void mixrt_dnnl_wei_key(struct mixrt_dnnl_state *st, const struct mixrt_graph *g, const struct mixrt_node *n);

/* Makes a zeroed state (the lock initialized) in *out. */
mixrt_status mixrt_dnnl_state_create(mixrt_context_t ctx, struct mixrt_dnnl_state **out);
/* Initializes a caller-owned state (for runs without prepare). */
void mixrt_dnnl_state_init(struct mixrt_dnnl_state *st);
/* Destroys the primitives and buffers (not the lock, not the struct). */
void mixrt_dnnl_state_clear(struct mixrt_dnnl_state *st);
/* Frees a state made by mixrt_dnnl_state_create (NULL is fine); release() of every kernel. */
void mixrt_dnnl_state_release(mixrt_context_t ctx, void *state);
/* True when the state holds a primitive built for exactly k's inputs 0..n-1 (presence,
 * dtype, dims); else clears the state and records the new key (the caller then builds). */
bool mixrt_dnnl_state_matches(struct mixrt_dnnl_state *st, const struct mixrt_kernel_ctx *k, int n);
/* The oneDNN implementation name of the state's primitive ("" when none): for tests and logs. */
const char *mixrt_dnnl_state_impl(const struct mixrt_dnnl_state *st);

/* Reorder primitive from -> to, its scratchpad the runs' when user_sp (weights: oneDNN's
 * Winograd weights reorder keeps a scratchpad as large as the weights it makes); running
 * reorder r from src to dst on the stream, k giving a user_sp reorder its scratchpad (NULL
 * for the others) (dnnl_conv.c). */
dnnl_status_t mixrt_dnnl_make_reorder(dnnl_engine_t eng, const dnnl_memory_desc_t *from, const dnnl_memory_desc_t *to,
                                      bool user_sp, dnnl_primitive_t *out);
dnnl_status_t mixrt_dnnl_run_reorder(struct mixrt_kernel_ctx *k, dnnl_primitive_t r, dnnl_stream_t strm,
                                     dnnl_memory_t from, dnnl_memory_t to);
/* After st->pd is made: the reorders between the plain boundary tensors and the layouts it
 * chose (src, dst, and Z into dst when sum), and the weights memory for its layout
 * (dnnl_conv.c; the Conv and ConvTranspose kernels). */
dnnl_status_t mixrt_dnnl_boundary(dnnl_engine_t eng, struct mixrt_dnnl_state *st, bool sum);
/* Reorders constant weights w (st->wei_user_md) into st->wei_mem with st->wei_reorder, once:
 * sets st->wei_ready (dnnl_conv.c; the Conv and ConvTranspose kernels). */
mixrt_status mixrt_dnnl_weights_reorder(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st,
                                        const struct mixrt_tensor *w);
/* Runs st's primitive (a convolution or deconvolution built by its kernel) on x, w, b into y,
 * with the boundary reorders st holds; z (a residual, FusedConv only) may be NULL. */
mixrt_status mixrt_dnnl_conv_exec(struct mixrt_kernel_ctx *k, struct mixrt_dnnl_state *st, const struct mixrt_tensor *x,
                                  const struct mixrt_tensor *w, const struct mixrt_tensor *b, const struct mixrt_tensor *z,
                                  bool z_binary, struct mixrt_tensor *y);

/* ---- kernels (dnnl_matmul.c, dnnl_conv.c, dnnl_deconv.c) ---- */
bool mixrt_dnnl_matmul_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size);
mixrt_status mixrt_dnnl_matmul_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                       void **state);
mixrt_status mixrt_dnnl_matmul_run(struct mixrt_kernel_ctx *k);
bool mixrt_dnnl_gemm_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size);
mixrt_status mixrt_dnnl_gemm_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                     void **state);
mixrt_status mixrt_dnnl_gemm_run(struct mixrt_kernel_ctx *k);
bool mixrt_dnnl_conv_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size);
mixrt_status mixrt_dnnl_conv_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                     void **state);
mixrt_status mixrt_dnnl_conv_run(struct mixrt_kernel_ctx *k);
bool mixrt_dnnl_deconv_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size);
bool mixrt_dnnl_deconv_gemm_supports(const struct mixrt_graph *g, const struct mixrt_node *n, char *why,
                                     size_t why_size);
mixrt_status mixrt_dnnl_deconv_prepare(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                       void **state);
mixrt_status mixrt_dnnl_deconv_run(struct mixrt_kernel_ctx *k);
/* The same on oneDNN's GEMM-based implementation (a second candidate, timed against the first). */
mixrt_status mixrt_dnnl_deconv_gemm_prepare(mixrt_context_t ctx, const struct mixrt_graph *g,
                                            const struct mixrt_node *n, void **state);
mixrt_status mixrt_dnnl_deconv_gemm_run(struct mixrt_kernel_ctx *k);
/* Conv with com.mixrt FusedConv's extras (dnnl_conv.c; used by fused_conv.c). */
struct mixrt_dnnl_conv_opts {
    bool channels_last;  /* X, Z and Y are [N, D1.., C] (handed to oneDNN without reorders) */
    bool sum;            /* input #3 (Z, Y's dtype and shape) is added before the activation */
    dnnl_alg_kind_t act; /* eltwise post-op, dnnl_alg_kind_undef for none */
    float alpha, beta;   /* its parameters */
    bool winograd;       /* f32 3x3 stride-1: oneDNN's Winograd algorithm on blocked layouts (reorders at the
                          * boundary), direct when oneDNN has none for the shape */
    bool swish_post;     /* SiLU as oneDNN's swish post-op even where mixrt_dnnl_silu_split would split it
                          * (the *_swish kernels, timed against the split) */
};
mixrt_status mixrt_dnnl_conv_prepare_opts(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                                          const struct mixrt_dnnl_conv_opts *o, void **state);
mixrt_status mixrt_dnnl_conv_run_opts(struct mixrt_kernel_ctx *k, const struct mixrt_dnnl_conv_opts *o);
/* FusedConv node n's options (fused_conv.c); false when its activation attributes are malformed. */
bool mixrt_dnnl_fconv_opts(const struct mixrt_node *n, struct mixrt_dnnl_conv_opts *o);
/* The channels-last FusedConv node n of g gets the SiLU split (mixrt_dnnl_silu_split): where the
 * *_swish kernels, which keep oneDNN's post-op, are candidates too. fused_conv.c. */
bool mixrt_dnnl_fconv_splits_silu(const struct mixrt_graph *g, const struct mixrt_node *n);
/* Fills out (the plan's packed-weights hooks, kernels.h) from memory m: its layout and bytes, which
 * stay m's. False when m is NULL or not readable. dnnl_conv.c. */
bool mixrt_dnnl_packed_describe(dnnl_memory_t m, struct mixrt_cpu_packed *out);
/* Reorders packed (any layout) into dst of layout user (size bytes, checked); false on a
 * size mismatch or any oneDNN failure. */
/* Whether packed reorders back to exactly ref's size bytes in layout user: 1 yes, 0 no, -1
 * when it cannot be told slice by slice (then unpack it whole and compare). Checks slices
 * of user's outermost axis of about 8 MiB each, so that a large weight is compared without
 * a third whole copy of it. */
int mixrt_dnnl_unpack_same(mixrt_context_t ctx, dnnl_memory_t packed, const dnnl_memory_desc_t *user, const void *ref,
                           size_t size);
bool mixrt_dnnl_unpack(mixrt_context_t ctx, dnnl_memory_t packed, const dnnl_memory_desc_t *user, void *dst,
                       size_t size);

#endif /* MIXRT_HAVE_DNNL */
#endif /* MIXRT_BACKEND_CPU_DNNL_IMPL_H */
