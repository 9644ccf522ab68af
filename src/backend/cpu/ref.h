/* ref.h - the CPU reference kernel interface. A reference kernel runs one node on
 * concrete tensors: it validates its inputs and attributes (with messages naming the
 * node, op, input index and dtype), computes output shapes itself, allocates outputs
 * with mixrt_kernel_output and fills them. Reference kernels are the oracle for every
 * other kernel: clarity and exactness over speed. Floats compute in f64 (16-bit types
 * are widened exactly and rounded once on output). */
#ifndef MIXRT_BACKEND_CPU_REF_H
#define MIXRT_BACKEND_CPU_REF_H

#include "core/core.h"
#include "ir/graph.h"

/* A runtime sequence of tensors (SequenceConstruct, SplitToSequence, ...). */
struct mixrt_seq {
    mixrt_dtype elem_dtype;
    size_t n, cap;
    struct mixrt_tensor *items; /* each owns its data */
};

struct mixrt_exec_env; /* executor state: used by control-flow kernels for subgraphs */
struct mixrt_exec_scratch;

struct mixrt_kernel_ctx {
    mixrt_context_t ctx;
    const struct mixrt_graph *graph;
    const struct mixrt_node *node;
    int64_t opset; /* == node->opset: the version of the node's domain */
    int n_in;
    const struct mixrt_tensor *const *in; /* in[i] NULL: absent optional input, or a sequence */
    const struct mixrt_seq *const *in_seq; /* in_seq[i] non-NULL when input i is a sequence */
    int n_out;
    struct mixrt_tensor *out;   /* out[i] starts empty; fill with mixrt_kernel_output */
    struct mixrt_seq *out_seq;  /* out_seq[i] used when out_is_seq[i] (mixrt_kernel_output_seq) */
    bool *out_is_seq;
    bool *out_wanted; /* false: the output is absent (-1) in the node; may be skipped */
    struct mixrt_exec_env *env;
    void *state; /* engine kernels: what the kernel's prepare made (NULL for reference kernels) */
    struct mixrt_exec_scratch *scratch; /* without env: mixrt_kernel_scratch's buffer (NULL: fresh) */
};

typedef mixrt_status (*mixrt_kernel_fn)(struct mixrt_kernel_ctx *k);

/* A scratch buffer of at least bytes for use within one kernel call, from the context's
 * allocator: in a run the executor's (an engine's, kept across its runs; reused by every layer,
 * so it stays in cache; *owned false), outside one k->scratch's (tactic timing: one per node
 * timed), else a fresh allocation the caller frees with mixrt_free (*owned true). NULL when
 * out of memory. */
void *mixrt_kernel_scratch(struct mixrt_kernel_ctx *k, size_t bytes, bool *owned);

/* One operator: runs at every opset in [min_opset, max_opset] of its domain. */
struct mixrt_op_def {
    const char *domain; /* "" default domain, "com.microsoft", ... */
    const char *op_type;
    int min_opset, max_opset;
    mixrt_kernel_fn run;
};

/* Per-family tables, each ended by an entry with op_type NULL. Each family lives in its
 * own ref_<family>.c; the registry (ref_registry.c) concatenates them. */
extern const struct mixrt_op_def mixrt_ref_ops_elementwise[]; /* ref_elementwise.c */
extern const struct mixrt_op_def mixrt_ref_ops_reduce[];      /* ref_reduce.c */
extern const struct mixrt_op_def mixrt_ref_ops_nn[];          /* ref_nn.c */
extern const struct mixrt_op_def mixrt_ref_ops_shape[];       /* ref_shape.c */
extern const struct mixrt_op_def mixrt_ref_ops_misc[];        /* ref_misc.c */
extern const struct mixrt_op_def mixrt_ref_ops_seq[];         /* ref_seq.c */
extern const struct mixrt_op_def mixrt_ref_ops_string[];      /* ref_string.c */
extern const struct mixrt_op_def mixrt_ref_ops_control[];     /* ref_control.c */
extern const struct mixrt_op_def mixrt_ref_ops_rnn[];         /* ref_rnn.c */
extern const struct mixrt_op_def mixrt_ref_ops_loss[];        /* ref_loss.c */
extern const struct mixrt_op_def mixrt_ref_ops_quant[];       /* ref_quant.c */
extern const struct mixrt_op_def mixrt_ref_ops_signal[];      /* ref_signal.c */
extern const struct mixrt_op_def mixrt_ref_ops_extra[];       /* ref_extra.c */
/* com.mixrt (MIXRT_DOMAIN): the ops the fusion and layout passes make. */
extern const struct mixrt_op_def mixrt_ref_ops_fused_transformer[]; /* ref_fused_transformer.c */
extern const struct mixrt_op_def mixrt_ref_ops_fused_conv[];        /* ref_fused_conv.c */
extern const struct mixrt_op_def mixrt_ref_ops_attention[];         /* ref_attention.c */
extern const struct mixrt_op_def mixrt_ref_ops_eltwise_chain[];     /* ref_eltwise_chain.c */
extern const struct mixrt_op_def mixrt_ref_ops_concat_affine[];     /* ref_concat_affine.c */

/* Finds the kernel for a node. UNSUPPORTED_OP with a message naming op, node, domain
 * and opset when there is none. */
mixrt_status mixrt_ref_find(mixrt_context_t ctx, const struct mixrt_node *node,
                            mixrt_kernel_fn *out);

/* ---- helpers for kernels (ref_util.c) ---- */

/* Records "cannot run <Op> node '<name>': <message>" on the context; returns status. */
mixrt_status mixrt_kernel_error(struct mixrt_kernel_ctx *k, mixrt_status status,
                                const char *fmt, ...) MIXRT_PRINTF(3, 4);
/* Allocates output i (zeroed). Errors are recorded with the node named. */
mixrt_status mixrt_kernel_output(struct mixrt_kernel_ctx *k, int i, mixrt_dtype dtype,
                                 int rank, const int64_t *dims, struct mixrt_tensor **out);
/* Makes output i an empty sequence of elem dtype and returns it for filling. */
mixrt_status mixrt_kernel_output_seq(struct mixrt_kernel_ctx *k, int i, mixrt_dtype elem,
                                     struct mixrt_seq **out);
/* Appends a copy of t to seq (or takes t over when take is set, leaving *t empty). */
mixrt_status mixrt_seq_push(mixrt_context_t ctx, struct mixrt_seq *seq,
                            struct mixrt_tensor *t, bool take);
void mixrt_seq_release(mixrt_context_t ctx, struct mixrt_seq *seq);

/* Input i, required: error naming the index when absent. */
mixrt_status mixrt_kernel_input(struct mixrt_kernel_ctx *k, int i,
                                const struct mixrt_tensor **out);
/* Input i if present (i < n_in and non-NULL), else NULL. */
const struct mixrt_tensor *mixrt_kernel_opt_input(const struct mixrt_kernel_ctx *k, int i);
/* Checks that input i is a float type (f32, f64, f16, bf16), with a named error. */
mixrt_status mixrt_kernel_check_float(struct mixrt_kernel_ctx *k, int i);
/* Checks that input i has one of the dtypes in the list (terminated by UNDEFINED). */
mixrt_status mixrt_kernel_check_dtype(struct mixrt_kernel_ctx *k, int i, const mixrt_dtype *allowed);
/* Checks inputs a and b have the same dtype. */
mixrt_status mixrt_kernel_check_same_dtype(struct mixrt_kernel_ctx *k, int a, int b);
/* The ints attribute name as exactly n values, each in [min, max] (named error otherwise);
 * every value dflt when the attribute is absent. */
mixrt_status mixrt_kernel_attr_ints_n(struct mixrt_kernel_ctx *k, const char *name, int n, int64_t dflt, int64_t min,
                                      int64_t max, int64_t *out);
/* Reads an integer tensor (any int type) of at most max elements into vals; *n set. */
mixrt_status mixrt_kernel_read_ints(struct mixrt_kernel_ctx *k, int i, int64_t *vals,
                                    size_t max, size_t *n);

/* The random operators' generator (xoshiro256**), one stream per node run. Seed rule: a
 * 'seed' attribute (float bits for Random*, the integer for Dropout) or, without one, an
 * FNV-1a hash of the node's name and first output's name - so a model draws the same
 * numbers every run. */
struct mixrt_rng {
    uint64_t s[4];
};
void mixrt_rng_seed_node(struct mixrt_rng *g, const struct mixrt_kernel_ctx *k);
uint64_t mixrt_rng_next(struct mixrt_rng *g);
/* [0, 1) with 53 random bits. */
double mixrt_rng_uniform(struct mixrt_rng *g);

/* Numpy-style broadcast of shapes a and b into out (rank/dims); false if incompatible. */
bool mixrt_broadcast_shape(int ra, const int64_t *da, int rb, const int64_t *db, int *rout,
                           int64_t *dout);
/* Element strides (row-major) of dims broadcast to out rank: stride 0 where dim is 1
 * and the output's is not; the shape is right-aligned. */
void mixrt_broadcast_strides(int r, const int64_t *dims, int rout, const int64_t *dout,
                             int64_t *strides);
/* Normalizes axis in [-rank, rank) to [0, rank); false if out of range. */
bool mixrt_norm_axis(int64_t axis, int rank, int64_t *out);

#endif /* MIXRT_BACKEND_CPU_REF_H */
