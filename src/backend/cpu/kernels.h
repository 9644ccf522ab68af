/* kernels.h - the CPU backend's kernel candidates for engines. For each op an ordered
 * list of candidates, most specialized first, the reference kernel last (it runs every
 * node). A candidate says whether it supports a node as the planner typed it (dtypes and
 * shapes in the graph) and why not; the builder times the ones that do (tactics) and a
 * plan records the chosen kernel by name. */
#ifndef MIXRT_BACKEND_CPU_KERNELS_H
#define MIXRT_BACKEND_CPU_KERNELS_H

#include "backend/cpu/ref.h"

struct mixrt_cpu_kernel {
    const char *name;    /* stable (stored in plans): "dnnl_conv", "ref", ... */
    const char *domain;  /* "" default domain */
    const char *op_type;
    /* True when the kernel can run node n of g with the dtypes and shapes g gives its
     * inputs and outputs (ranks may be unknown: decide from what is known and check the
     * rest in prepare/run). When false, writes a short reason into why (may be NULL). */
    bool (*supports)(const struct mixrt_graph *g, const struct mixrt_node *n, char *why, size_t why_size);
    /* Optional: per-node state made once when an engine is created (primitive
     * descriptors, repacked weights of constant inputs). *state may stay NULL. */
    mixrt_status (*prepare)(mixrt_context_t ctx, const struct mixrt_graph *g, const struct mixrt_node *n,
                            void **state);
    /* Optional: frees what prepare made. state may be NULL. */
    void (*release)(mixrt_context_t ctx, void *state);
    /* Runs the node: same contract as a reference kernel (validates, allocates outputs
     * with mixrt_kernel_output), with k->state holding what prepare made. */
    mixrt_kernel_fn run;
};

/* mixrt_kernel_output for a kernel that writes every element of the output: a buffer the
 * executor planned for it is handed over without being zeroed (an own allocation still
 * is). Defined in ref_util.c. */
mixrt_status mixrt_kernel_output_uninit(struct mixrt_kernel_ctx *k, int i, mixrt_dtype dtype, int rank,
                                        const int64_t *dims, struct mixrt_tensor **out);

/* The reference kernel of k's node run on k: what a fast kernel hands over when its fast
 * path does not take the case (its errors then read as the reference's). */
mixrt_status mixrt_cpu_run_reference(struct mixrt_kernel_ctx *k);
/* The error for a kernel that needs input i's data when the engine dropped it after packing
 * (engine.c, try_release). */
mixrt_status mixrt_cpu_released_error(struct mixrt_kernel_ctx *k, int i);
/* The candidates for node n (any opset), ending with the reference kernel; *count set.
 * Never empty: the reference kernel is always last even when it has no kernel for the
 * node (then its supports() says so). */
const struct mixrt_cpu_kernel *const *mixrt_cpu_kernels_for(const struct mixrt_node *n, size_t *count);
/* Room in that list, the reference kernel included: every op type's kernels must fit it, or the
 * later families' are never offered (session 57: FusedConv's 18 and the reference overran the old
 * 16, so dnnl_conv1x1_mm_swish, dnnl_conv1d_mm and, once igf_conv_nhwc came ahead of it,
 * dnnl_conv1x1_mm were left out of every build, unnoticed). mixrt_cpu_kernels_most() counts the
 * largest list any op type can get, for the test that keeps them within it. */
#define MIXRT_CPU_MAX_CANDIDATES 32
size_t mixrt_cpu_kernels_most(void);
/* How many times its constant weights' bytes a kernel holds them in once packed: 1 for most,
 * MIXRT_WINO_WEIGHT_GROWTH for dnnl_wino_conv and conv_wino (Winograd F(4x4, 3x3): each 3x3 kernel
 * transformed to 6x6), MIXRT_WINO2_WEIGHT_GROWTH for wino_bf16_nhwc and conv_wino2. */
#define MIXRT_WINO_WEIGHT_GROWTH 4.0
/* wino_bf16_nhwc's and conv_wino2's (F(2x2, 3x3): 4x4 values per 3x3 kernel, in the dtype the
 * kernel computes in) */
#define MIXRT_WINO2_WEIGHT_GROWTH (16.0 / 9.0)
double mixrt_cpu_kernel_weight_growth(const struct mixrt_cpu_kernel *k);
/* The kernel named name that runs op (domain, op_type), or NULL. */
const struct mixrt_cpu_kernel *mixrt_cpu_kernel_find(const char *name, const char *domain, const char *op_type);

/* Per-family candidate tables (each ended by an entry with name NULL). */
extern const struct mixrt_cpu_kernel mixrt_dnnl_kernels[];    /* dnnl_*.c; empty without oneDNN */
extern const struct mixrt_cpu_kernel mixrt_eltwise_kernels[];  /* eltwise.c: element-wise ops and casts */
extern const struct mixrt_cpu_kernel mixrt_nnops_kernels[];    /* nnops.c: pooling, normalization, softmax */
extern const struct mixrt_cpu_kernel mixrt_datamove_kernels[]; /* datamove.c: Transpose, Gather, Concat, ... */
extern const struct mixrt_cpu_kernel mixrt_resize_kernels[];   /* resize.c: Resize linear, separable in f32 */
extern const struct mixrt_cpu_kernel mixrt_roialign_kernels[]; /* roialign.c: RoiAlign, channels-last in f32 */
extern const struct mixrt_cpu_kernel mixrt_rnn_kernels[];      /* rnn.c: LSTM, GRU, RNN */
extern const struct mixrt_cpu_kernel mixrt_select_kernels[];   /* select.c: ArgMax, ArgMin, TopK (f32 rows) */
/* com.mixrt fused ops (fused_transformer.c, fused_conv.c) */
extern const struct mixrt_cpu_kernel mixrt_fused_transformer_kernels[];
extern const struct mixrt_cpu_kernel mixrt_dwconv_kernels[]; /* dwconv.c: depthwise channels-last FusedConv */
extern const struct mixrt_cpu_kernel mixrt_mbconv_kernels[]; /* mbconv.c: FusedMBConv, bf16 inverted-residual block */
extern const struct mixrt_cpu_kernel mixrt_gconv_kernels[];  /* gconv.c: grouped FusedConv, 4, 8 or 16k channels a group */
extern const struct mixrt_cpu_kernel mixrt_pwconv_kernels[]; /* pwconv.c: 1x1 channels-last bf16 FusedConv, K <= 256 */
extern const struct mixrt_cpu_kernel mixrt_igconv_kernels[]; /* igconv.c: bf16 and f32 FusedConv of few output pixels */
extern const struct mixrt_cpu_kernel mixrt_wino2_kernels[];  /* wino2.c: 3x3 channels-last bf16 FusedConv, Winograd F(2x2, 3x3) */
extern const struct mixrt_cpu_kernel mixrt_stemconv_kernels[]; /* stemconv.c: channels-last FusedConv of <= 4 input channels, FusedConvMaxPool */
extern const struct mixrt_cpu_kernel mixrt_gemv_kernels[];   /* gemv.c: 1x1 channels-last FusedConv on <= 8 pixels */
extern const struct mixrt_cpu_kernel mixrt_sgemm_kernels[];  /* sgemm.c: f32 products by a packed constant B */
extern const struct mixrt_cpu_kernel mixrt_fused_conv_kernels[];
extern const struct mixrt_cpu_kernel mixrt_attention_kernels[]; /* attention.c */
extern const struct mixrt_cpu_kernel mixrt_eltwise_chain_kernels[]; /* eltwise_chain.c: ElementwiseChain */
extern const struct mixrt_cpu_kernel mixrt_concat_affine_kernels[]; /* concat_affine.c: ConcatAffine */

/* ---- packed constant weights in plan files (plan.c) -------------------------------------
 * A kernel that reorders a constant input into a library layout at prepare can hand the
 * result to the plan writer and take it back at load instead of reordering again. The
 * hooks are found by kernel name (mixrt_cpu_kernel_packing_find), so kernels without them
 * need nothing. */

/* One node's packed weights: an opaque layout descriptor (for oneDNN, the bytes of its
 * dnnl_memory_desc_t) and the packed bytes. lib names what made them (library version and
 * the ISA it dispatched to); a plan's blob is only offered when lib, the target and
 * layout_size match here. */
struct mixrt_cpu_packed {
    const char *lib;
    const void *layout;
    size_t layout_size;
    const void *data;
    size_t size;
};

struct mixrt_cpu_kernel_packing {
    const char *kernel; /* kernel name */
    /* The library identity packed weights made here carry ("onednn 2.6.0 <hash> isa <n>"). */
    const char *(*lib)(void);
    size_t layout_size; /* bytes of the layout descriptor */
    /* Save: the packed weights of a prepared state (pointers into the state, valid while it
     * lives); false when it holds none (weights not constant or not packed yet). */
    bool (*get)(const void *state, struct mixrt_cpu_packed *out);
    /* The constant weights (the node's input 1) back in their graph layout and dtype,
     * size bytes into dst, reordered from the packed copy; false when the state holds none
     * or the sizes differ. Lets an engine drop the graph's copy after packing (engine.c,
     * try_release) and bring it back for a plan. */
    bool (*unpack)(mixrt_context_t ctx, const void *state, void *dst, size_t size);
    /* Whether unpack would give exactly ref's size bytes: 1 yes, 0 no, -1 cannot tell
     * without a whole unpack. Checks in slices, with a bounded scratch (try_release). */
    int (*same)(mixrt_context_t ctx, const void *state, const void *ref, size_t size);
};

/* The packing hooks of kernel name, or NULL. */
const struct mixrt_cpu_kernel_packing *mixrt_cpu_kernel_packing_find(const char *name);

/* Load: offers p (its memory must outlive the engine) to the prepare of node n that runs
 * next on this thread; NULL withdraws it. The kernel takes it only when the layout its
 * primitive wants is p's, byte for byte, and reports with mixrt_cpu_packed_took. */
void mixrt_cpu_packed_offer(const struct mixrt_node *n, const struct mixrt_cpu_packed *p);
/* Kernel side: the offer for node n, or NULL. */
const struct mixrt_cpu_packed *mixrt_cpu_packed_offered(const struct mixrt_node *n);
/* Kernel side: the offer was adopted, or refused for why (copied, at most 255 bytes). */
void mixrt_cpu_packed_took(bool adopted, const char *why);
/* Load side: 1 adopted, 0 refused (why filled), -1 the kernel never looked at it. */
int mixrt_cpu_packed_outcome(char *why, size_t why_size);

/* Resize as dm_resize runs it (datamove.c), for other backends: the output dims od and the
 * per-axis scales sc of node n on an input of dims xd (rank 4) from its scales or sizes
 * tensor (the other NULL or empty); false outside the fast path (mode, coordinate
 * transformation, both or neither given...). */
bool mixrt_resize_geometry(const struct mixrt_node *n, const int64_t *xd, const struct mixrt_tensor *scales,
                           const struct mixrt_tensor *sizes, int64_t *od, double *sc);
/* dm_resize's supports() (datamove.c), for the other Resize kernels; linear_only refuses
 * nearest mode too. mixrt_resize_mode: 1 linear, 0 nearest, -1 an attribute outside the fast
 * path (n's opset decides which attributes exist). */
bool mixrt_resize_supports(const struct mixrt_graph *g, const struct mixrt_node *n, bool linear_only, char *why,
                           size_t why_size);
int mixrt_resize_mode(const struct mixrt_node *n);
/* The taps of output coordinate x of one axis (in_len inputs, out_len outputs, scale): cnt (1
 * or 2) input indices and weights, the reference's rules. */
void mixrt_resize_axis_taps(const struct mixrt_node *n, int64_t in_len, int64_t out_len, double scale, int64_t x,
                            int64_t idx[2], double w[2], int *cnt);

/* Resize's taps as the reference kernel (ref_shape.c) computes them for k's node on input x and
 * k's other inputs (opset >= 11, every mode and coordinate transformation): per axis d, output
 * coordinate i reads cnt[d][i] input indices idx[d][i * n[d] + t] (clamped into the axis) with
 * weights w[d][...]; oob[d][i] set: tf_crop_and_resize extrapolates there (crop set). interp:
 * linear or cubic (nearest: one tap of weight 1). On failure the error is the reference's own
 * (recorded on k) and t is empty. Free with mixrt_resize_taps_free. */
struct mixrt_resize_taps {
    int rank;
    int64_t od[MIXRT_MAX_RANK];
    int n[MIXRT_MAX_RANK];
    int64_t *idx[MIXRT_MAX_RANK];
    double *w[MIXRT_MAX_RANK];
    uint8_t *cnt[MIXRT_MAX_RANK], *oob[MIXRT_MAX_RANK];
    bool interp, crop;
};
mixrt_status mixrt_resize_taps_make(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *x,
                                    struct mixrt_resize_taps *t);
void mixrt_resize_taps_free(mixrt_context_t ctx, struct mixrt_resize_taps *t);

/* Process-wide count of constant-weight reorders the packing kernels ran (prepare or first
 * run): a plan whose packed weights were adopted loads without one. For tests and logs. */
void mixrt_cpu_weight_reorder_counted(void);
unsigned long mixrt_cpu_weight_reorders(void);

/* FusedMatMul's activation attribute as an index: 0 none, 1 relu, 2 gelu, 3 gelu_tanh,
 * 4 sigmoid, 5 tanh; -1 for another name (fused_transformer.c). */
int mixrt_fmm_activation(const struct mixrt_node *n);

/* Hooks of the own packed f32 product (sgemm.c); its layout descriptor is MIXRT_SGEMM_LAYOUT_SIZE
 * bytes (K, N, transB, a convolution's taps as int64). */
#define MIXRT_SGEMM_LAYOUT_SIZE 32
const char *mixrt_sgemm_packed_lib(void);
bool mixrt_sgemm_packed_get(const void *state, struct mixrt_cpu_packed *out);
bool mixrt_sgemm_unpack(mixrt_context_t ctx, const void *state, void *dst, size_t size);
int mixrt_sgemm_same(mixrt_context_t ctx, const void *state, const void *ref, size_t size);
/* conv_wino's and conv_wino2's (sgemm.c): their Winograd-domain weights, same layout size;
 * never unpacked (they hold other numbers), so the graph keeps its copy. */
const char *mixrt_wino_packed_lib(void);
const char *mixrt_wino2f_packed_lib(void);
bool mixrt_wino_packed_get(const void *state, struct mixrt_cpu_packed *out);
bool mixrt_wino_unpack(mixrt_context_t ctx, const void *state, void *dst, size_t size);
int mixrt_wino_same(mixrt_context_t ctx, const void *state, const void *ref, size_t size);

#ifdef MIXRT_HAVE_DNNL
/* Hooks of the oneDNN kernels (dnnl_conv.c, fused_transformer.c). */
const char *mixrt_dnnl_packed_lib(void);
size_t mixrt_dnnl_packed_layout_size(void); /* sizeof(dnnl_memory_desc_t) */
bool mixrt_dnnl_conv_packed_get(const void *state, struct mixrt_cpu_packed *out);
bool mixrt_fmm_packed_get(const void *state, struct mixrt_cpu_packed *out);
bool mixrt_dnnl_conv_unpack(mixrt_context_t ctx, const void *state, void *dst, size_t size);
bool mixrt_fmm_unpack(mixrt_context_t ctx, const void *state, void *dst, size_t size);
int mixrt_dnnl_conv_same(mixrt_context_t ctx, const void *state, const void *ref, size_t size);
int mixrt_fmm_same(mixrt_context_t ctx, const void *state, const void *ref, size_t size);
/* Makes *mem (a dnnl_memory_t, replaced and the old one destroyed on success) read p when p
 * is in exactly the layout want_md (a const dnnl_memory_desc_t *); else false, with the reason
 * given to mixrt_cpu_packed_took. dnnl_conv.c. */
bool mixrt_dnnl_packed_adopt(const struct mixrt_cpu_packed *p, const void *want_md, void **mem);
#endif

#endif /* MIXRT_BACKEND_CPU_KERNELS_H */
