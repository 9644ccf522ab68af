/* cuda_backend.h - the CUDA backend's C interface for the engine: one device (one stream,
 * one activation arena addressed by offsets, a cuBLASLt handle and workspace), async copies,
 * cuBLASLt GEMM plans with timed algorithm choice, and the own kernels (element-wise, casts,
 * LayerNorm, Softmax, Gather). No CUDA type appears here: callers hold opaque handles and
 * plain device addresses (void *), so engine code includes this without any #ifdef.
 *
 * Contract for every call below:
 * - Fallible calls return mixrt_status and record the message on the device's context
 *   (the one given to mixrt_cuda_device_create). A failed CUDA / cuBLASLt call is named in
 *   the message with its error name and string, e.g.
 *   "CUDA call cudaMalloc(arena, 1048576 bytes) failed: cudaErrorMemoryAllocation (out of memory)".
 * - Work is enqueued on the device's one stream and is asynchronous: results (and errors
 *   a kernel detects on the device, such as a Gather index out of range) are known only
 *   after mixrt_cuda_device_sync. Host buffers given to async copies must stay valid and
 *   unchanged until then; pinned buffers (mixrt_cuda_host_alloc) make copies truly async.
 * - Device addresses are what mixrt_cuda_arena_at / mixrt_cuda_alloc returned (plus
 *   offsets); element counts are size_t; dtypes are F32, BF16, F16 unless a call says more.
 *   16-bit values round to nearest even, and arithmetic on them is done in f32.
 * - Without MIXRT_CUDA (or without a GPU) mixrt_cuda_device_count reports 0 and
 *   mixrt_cuda_device_create returns UNSUPPORTED with a message saying why. */
#ifndef MIXRT_BACKEND_CUDA_BACKEND_H
#define MIXRT_BACKEND_CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/cuda_args.h"
#include "mixrt/mixrt.h"

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define MIXRT_CUDA_API __attribute__((visibility("default")))
#else
#define MIXRT_CUDA_API
#endif

typedef struct mixrt_cuda_device *mixrt_cuda_device_t;
typedef struct mixrt_cuda_gemm *mixrt_cuda_gemm_t;
typedef struct mixrt_cuda_graph *mixrt_cuda_graph_t;
typedef struct mixrt_cuda_conv *mixrt_cuda_conv_t;

/* ---- device ---------------------------------------------------------------------- */

struct mixrt_cuda_device_info {
    char name[256];
    int ordinal;
    int cc_major, cc_minor; /* compute capability (9.0 on H100/H200) */
    int sm_count;
    size_t global_mem_bytes, l2_bytes, smem_per_block_optin;
    int runtime_version, driver_version; /* 13000 = 13.0 */
};

/* Number of usable GPUs into *count: 0 (and OK) when there is no GPU or no driver, so a
 * caller can skip; an error only for other failures. ctx gets the reason for 0 as a note
 * (log level NOTE). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_device_count(mixrt_context_t ctx, int *count);

/* Opens GPU `ordinal`: makes it current on the calling thread, creates the stream, the
 * cuBLASLt handle, a cuBLASLt workspace (32 MiB) and timing events. *out is written only
 * on success; destroy with mixrt_cuda_device_destroy (NULL fine) before ctx. The device
 * is used from one thread at a time. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_device_create(mixrt_context_t ctx, int ordinal,
                                                     mixrt_cuda_device_t *out);
MIXRT_CUDA_API void mixrt_cuda_device_destroy(mixrt_cuda_device_t dev);
MIXRT_CUDA_API const struct mixrt_cuda_device_info *mixrt_cuda_device_get_info(mixrt_cuda_device_t dev);
/* Waits for all work on the stream; then reports errors kernels flagged on the device
 * (INVALID_ARGUMENT naming the kernel and value) and clears the flag. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_device_sync(mixrt_cuda_device_t dev);

/* ---- memory ---------------------------------------------------------------------- */

/* (Re)sizes the activation arena to at least `bytes` (contents are not kept when it
 * grows). The engine's memory plan addresses it by offsets; 256-byte alignment. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_arena_reserve(mixrt_cuda_device_t dev, size_t bytes);
/* Device address of [offset, offset + bytes) in the arena into *out; INVALID_ARGUMENT
 * naming the range and the arena's size when it does not fit. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_arena_at(mixrt_cuda_device_t dev, size_t offset, size_t bytes,
                                                void **out);
MIXRT_CUDA_API size_t mixrt_cuda_arena_size(mixrt_cuda_device_t dev);
/* A separate device buffer (weights, persistent state): free with mixrt_cuda_free and the
 * same size. `what` names it in messages. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_alloc(mixrt_cuda_device_t dev, size_t bytes, const char *what, void **out);
MIXRT_CUDA_API void mixrt_cuda_free(mixrt_cuda_device_t dev, void *ptr, size_t bytes);
/* Pinned host memory (page-locked), for truly asynchronous copies. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_host_alloc(mixrt_cuda_device_t dev, size_t bytes, void **out);
MIXRT_CUDA_API void mixrt_cuda_host_free(mixrt_cuda_device_t dev, void *ptr);

/* Asynchronous copies and fill on the stream. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_copy_h2d(mixrt_cuda_device_t dev, void *dst, const void *src, size_t bytes);
MIXRT_CUDA_API mixrt_status mixrt_cuda_copy_d2h(mixrt_cuda_device_t dev, void *dst, const void *src, size_t bytes);
MIXRT_CUDA_API mixrt_status mixrt_cuda_copy_d2d(mixrt_cuda_device_t dev, void *dst, const void *src, size_t bytes);
MIXRT_CUDA_API mixrt_status mixrt_cuda_memset(mixrt_cuda_device_t dev, void *dst, int byte, size_t bytes);

/* Device-side timing of what is enqueued between begin and end (events on the stream);
 * end waits for the stop event and writes the elapsed milliseconds. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_timer_begin(mixrt_cuda_device_t dev);
MIXRT_CUDA_API mixrt_status mixrt_cuda_timer_end(mixrt_cuda_device_t dev, float *ms);

/* Profile marks: reserve n events, record mark i on the stream (also inside a capture,
 * where it becomes a node of the graph), and after the last recorded mark completed read
 * ms[i] = time between marks i and i + 1 for i < n - 1 (waits for mark n - 1). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_prof_reserve(mixrt_cuda_device_t dev, int n);
MIXRT_CUDA_API mixrt_status mixrt_cuda_prof_mark(mixrt_cuda_device_t dev, int i);
MIXRT_CUDA_API mixrt_status mixrt_cuda_prof_read(mixrt_cuda_device_t dev, int n, float *ms);

/* ---- GEMM (cuBLASLt) ---------------------------------------------------------------
 * Row-major: Y[b] = act(alpha * op(A[b]) @ op(B[b]) + bias), Y is [m, n].
 * op(A) is [m, k]: A stored [m, k], or [k, m] when trans_a. op(B) is [k, n]: B stored
 * [k, n], or [n, k] when trans_b (ONNX Gemm transB, a Linear weight). bias has n values
 * in y_dtype (f32 when y is f32). Batches are strided (elements); a stride of 0 repeats
 * the operand (one weight for all batches). Accumulation is f32; for f32 inputs
 * allow_tf32 lets the tensor cores round inputs to tf32. GELU is the tanh form
 * (cuBLASLt's). */
enum mixrt_cuda_epilogue {
    MIXRT_CUDA_EPILOGUE_NONE = 0,
    MIXRT_CUDA_EPILOGUE_BIAS = 1,
    MIXRT_CUDA_EPILOGUE_RELU = 2,
    MIXRT_CUDA_EPILOGUE_BIAS_RELU = 3,
    MIXRT_CUDA_EPILOGUE_GELU_TANH = 4,
    MIXRT_CUDA_EPILOGUE_BIAS_GELU_TANH = 5,
    MIXRT_CUDA_EPILOGUE_COUNT
};

struct mixrt_cuda_gemm_desc {
    mixrt_dtype ab_dtype; /* A and B: F32, BF16 or F16 */
    mixrt_dtype y_dtype;  /* Y: ab_dtype or F32 */
    int64_t m, n, k;
    bool trans_a, trans_b;
    int64_t batch;                        /* >= 1 */
    int64_t stride_a, stride_b, stride_y; /* elements between batches (0: repeat) */
    float alpha;                          /* 0 is taken as 1 (zeroed desc = plain product) */
    enum mixrt_cuda_epilogue epilogue;
    bool allow_tf32;
    const char *name; /* names the node / product in messages (may be NULL) */
    bool accumulate;  /* Y = act(alpha op(A) op(B) + C + bias): C (Y's shape and dtype, set
                       * with mixrt_cuda_gemm_set_c; may be Y) enters before the activation */
    /* Products may read A's rows and write Y's at a pitch (elements; 0: dense; A not
     * transposed), and take pointers of a smaller alignment than 256 bytes (bytes, a power
     * of two >= 16; 0: 256); pitched batches may interleave (stride_y below m n): a
     * row-grouped product's groups, one batch each (engine_cuda.c). */
    int64_t lda, ldy;
    uint32_t align_a, align_b, align_y;
};

/* Makes a plan: descriptors plus up to 8 algorithm candidates from cuBLASLt's heuristic
 * (and, for small single products with K >= 512, up to 6 split-K variants of its first)
 * (UNSUPPORTED naming the shape and dtypes when it has none). The first candidate is
 * chosen until mixrt_cuda_gemm_tune runs. Destroy before the device. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_gemm_create(mixrt_cuda_device_t dev, const struct mixrt_cuda_gemm_desc *desc,
                                                   mixrt_cuda_gemm_t *out);
MIXRT_CUDA_API void mixrt_cuda_gemm_destroy(mixrt_cuda_gemm_t g);
/* Times every candidate on the given buffers (5 interleaved rounds of `reps` runs after
 * one warm-up, median per candidate) and keeps the fastest; the heuristic's first choice
 * stays unless another beats it by more than 3% (timing noise must not pick a worse one).
 * Y is overwritten. Candidates that fail to run are dropped; an error only when none runs. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_gemm_tune(mixrt_cuda_gemm_t g, const void *a, const void *b, const void *bias,
                                                 void *y, int reps);
/* Enqueues the product with the chosen algorithm. bias may be NULL only without a BIAS
 * epilogue. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_gemm_run(mixrt_cuda_gemm_t g, const void *a, const void *b, const void *bias,
                                                void *y);
/* Selects candidate `index` (a plan restores the tuned choice this way; INVALID_ARGUMENT
 * when out of range). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_gemm_set_choice(mixrt_cuda_gemm_t g, int index);
/* The addend C of an accumulate plan (a device address kept for every later tune / run;
 * INVALID_ARGUMENT for a plan without accumulate). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_gemm_set_c(mixrt_cuda_gemm_t g, const void *c);
/* Candidate count, the chosen index, and its median time from the last tune (ms; < 0 when
 * not tuned). */
MIXRT_CUDA_API void mixrt_cuda_gemm_get_choice(mixrt_cuda_gemm_t g, int *n_candidates, int *chosen,
                                               float *chosen_ms);

/* ---- convolution (cuDNN 9, loaded by dlopen on the first plan) ----------------------
 * 2-D cross-correlation Y = conv(X, W) (+ Y when accumulate: the caller copies a residual
 * into Y first), X [n, c, h, w] and Y [n, k, oh, ow] in NCHW, or stored NHWC when nhwc; W
 * in the same format as the activations (KCRS, or KRSC with nhwc) of c / groups input
 * channels; with d > 0, 3-D: X [n, c, d, h, w], Y [n, k, od, oh, ow], W [k, c / groups, t, r, s]
 * (NCDHW; NDHWC and KTRSC with nhwc). Symmetric padding only. f32 computes in f32 (no TF32); bf16 / f16 on tensor
 * cores with f32 accumulation. cuDNN is libcudnn.so.9 from the search path, or the file
 * MIXRT_CUDNN_LIBRARY names. Without it: UNSUPPORTED "cuDNN: cannot load ...". */
struct mixrt_cuda_conv_desc {
    mixrt_dtype dtype; /* X, W, Y */
    bool nhwc;
    int64_t n, c, h, w, k, r, s, oh, ow;
    int pad_h, pad_w, stride_h, stride_w, dil_h, dil_w, groups;
    const char *name;
    /* 3-D: input depth d > 0, kernel depth t, output depth od; d == 0 is 2-D. */
    int64_t d, t, od;
    int pad_d, stride_d, dil_d;
    /* An epilogue the plan may fuse (2-D convs of one group, through cuDNN's graph API):
     * + bias [k] when epi_bias, then the activation epi_act - 1 (a mixrt_cuda_unary_op;
     * 0: none). mixrt_cuda_conv_run_ex says per run what it applied. */
    bool epi_bias;
    int epi_act;
};
MIXRT_CUDA_API mixrt_status mixrt_cuda_conv_create(mixrt_cuda_device_t dev, const struct mixrt_cuda_conv_desc *desc,
                                                   mixrt_cuda_conv_t *out);
MIXRT_CUDA_API void mixrt_cuda_conv_destroy(mixrt_cuda_conv_t c);
MIXRT_CUDA_API mixrt_status mixrt_cuda_conv_run(mixrt_cuda_conv_t c, const void *x, const void *w, void *y,
                                                bool accumulate);
/* The chosen algorithm's time in cuDNN's timed search at create (ms; < 0 when none ran). */
MIXRT_CUDA_API float mixrt_cuda_conv_time_ms(mixrt_cuda_conv_t c);
/* Y = conv(X, W), then the desc's epilogue where the plan fused it and the buffers meet
 * the graph plan's 16-byte alignment: *done gets MIXRT_CUDA_CONV_DID_BIAS / _ACT for what this
 * run applied (the caller applies the rest). bias may be NULL only when epi_bias is false. */
#define MIXRT_CUDA_CONV_DID_BIAS 1u
#define MIXRT_CUDA_CONV_DID_ACT 2u
MIXRT_CUDA_API mixrt_status mixrt_cuda_conv_run_ex(mixrt_cuda_conv_t c, const void *x, const void *w,
                                                   const void *bias, void *y, unsigned *done);
/* The plan's kind: "legacy" (cudnnConvolutionForward), "graph" (a graph-API execution plan of
 * the convolution alone) or "graph+bias", "graph+bias+act", "graph+act" (with its epilogue). */
MIXRT_CUDA_API const char *mixrt_cuda_conv_kind(mixrt_cuda_conv_t c);

/* ---- own kernels ------------------------------------------------------------------ */

enum mixrt_cuda_binary_op {
    MIXRT_CUDA_BINARY_ADD = 0,
    MIXRT_CUDA_BINARY_SUB = 1,
    MIXRT_CUDA_BINARY_MUL = 2,
    MIXRT_CUDA_BINARY_DIV = 3,
    MIXRT_CUDA_BINARY_COUNT
};

enum mixrt_cuda_unary_op {
    MIXRT_CUDA_UNARY_RELU = 0,
    MIXRT_CUDA_UNARY_GELU_ERF = 1,
    MIXRT_CUDA_UNARY_GELU_TANH = 2,
    MIXRT_CUDA_UNARY_SIGMOID = 3,
    MIXRT_CUDA_UNARY_SILU = 4,
    MIXRT_CUDA_UNARY_TANH = 5,
    MIXRT_CUDA_UNARY_RELU6 = 6, /* min(max(x, 0), 6): Clip(0, 6), MobileNetV2's; NaN stays NaN */
    /* x * min(max(x / 6 + 1/2, 0), 1): ONNX HardSwish (MobileNetV3's); NaN stays NaN */
    MIXRT_CUDA_UNARY_HARDSWISH = 7,
    /* min(max(x / 6 + 1/2, 0), 1): HardSigmoid with torch's alpha 1/6, beta 1/2 */
    MIXRT_CUDA_UNARY_HARDSIGMOID6 = 8,
    /* -x, sqrt(x), 1 / x, x * x (Pow with exponent 2), exp(x): RMSNorm's pieces and the
     * rotary embedding's Neg (Mistral / Qwen2 exports); IEEE results of the f32 math */
    MIXRT_CUDA_UNARY_NEG = 9,
    MIXRT_CUDA_UNARY_SQRT = 10,
    MIXRT_CUDA_UNARY_RECIPROCAL = 11,
    MIXRT_CUDA_UNARY_SQUARE = 12,
    MIXRT_CUDA_UNARY_EXP = 13,
    MIXRT_CUDA_UNARY_COUNT
};

/* Short static names ("add", "gelu_erf", ...), for messages and plans. */
MIXRT_CUDA_API const char *mixrt_cuda_binary_name(enum mixrt_cuda_binary_op op);
MIXRT_CUDA_API const char *mixrt_cuda_unary_name(enum mixrt_cuda_unary_op op);

/* y[i] = a[i] op b[j]: n elements of dtype dt (a, b, y the same dtype). b_n == n: b has
 * a's shape (j = i); otherwise b_n must divide n and b broadcasts along a's last
 * dimension of size b_n (j = i % b_n: a bias). y may alias a. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_binary(mixrt_cuda_device_t dev, enum mixrt_cuda_binary_op op, mixrt_dtype dt,
                                              const void *a, const void *b, size_t b_n, void *y, size_t n);
/* y[i] = op(x[i]), n elements of dt. y may alias x. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_unary(mixrt_cuda_device_t dev, enum mixrt_cuda_unary_op op, mixrt_dtype dt,
                                             const void *x, void *y, size_t n);
/* Converts n elements between F32, BF16 and F16 (same dtype: a copy). RNE; NaN stays a
 * quiet NaN with its sign, +-Inf and -0.0 survive. Buffers may not overlap. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_cast(mixrt_cuda_device_t dev, mixrt_dtype src_dt, const void *src,
                                            mixrt_dtype dst_dt, void *dst, size_t n);
/* The cast of a row block: dst [rows, cols] (dense) = src rows of src_ld >= cols elements
 * (the real columns of a product planned with padded columns; same dtype: a copy). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_cast_rows(mixrt_cuda_device_t dev, mixrt_dtype src_dt, const void *src,
                                                 size_t src_ld, mixrt_dtype dst_dt, void *dst, size_t rows,
                                                 size_t cols);
/* LayerNormalization over the last axis of x [rows, cols]: y = (x - mean) / sqrt(var + eps)
 * * scale + bias; scale and bias (bias may be NULL) have cols values of dt; f32 math. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_layer_norm(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x,
                                                  const void *scale, const void *bias, void *y, size_t rows,
                                                  size_t cols, float eps);
/* Softmax over the last axis of x [rows, cols], f32 math (max subtracted). y may alias x. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_softmax(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y,
                                               size_t rows, size_t cols);
/* y[r] = the sum (mean: / cols) of x[r, 0..cols), rows x cols of dt, f32 sums: ReduceMean /
 * ReduceSum over trailing axes. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_reduce_rows(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y,
                                                   size_t rows, size_t cols, bool mean);
/* InstanceNormalization: rows = N * channels rows of cols (spatial) values of dt; row r is
 * normalized (biased variance + eps) and scaled by scale[r % channels], shifted by
 * bias[r % channels]. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_instance_norm(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x,
                                                     const void *scale, const void *bias, void *y, size_t rows,
                                                     size_t cols, size_t channels, float eps);
/* Embedding rows: y[i, :] = table[idx[i], :] with table [table_rows, cols] of dt (any
 * dtype of 1, 2, 4 or 8 bytes) and n_idx indices of idx_dt (I32 or I64); a negative index
 * counts from the end (ONNX Gather). An index outside [-table_rows, table_rows) writes a
 * zero row and is reported by the next mixrt_cuda_device_sync. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_gather_rows(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *table,
                                                   size_t table_rows, size_t cols, mixrt_dtype idx_dt,
                                                   const void *idx, size_t n_idx, void *y);

/* ---- engine kernels (engine_ops.c) ------------------------------------------------- */

/* Strided copy (Transpose, Split, Slice, Concat): for every index (i_0..i_r-1) of dims
 * (rank <= MIXRT_CUDA_MAX_PERM_RANK), y[sum i_d * out_strides[d]] = x[sum i_d *
 * in_strides[d]] (strides in elements; out_strides NULL: y contiguous in dims). A
 * Transpose passes in_strides[d] = x_strides[perm[d]]. elem_size 1, 2, 4 or 8. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_strided_copy(mixrt_cuda_device_t dev, size_t elem_size, const void *x, void *y,
                                                    int rank, const int64_t *dims, const int64_t *in_strides,
                                                    const int64_t *out_strides);
/* Binary op with numpy broadcasting: y (contiguous, dims, rank <= MIXRT_CUDA_MAX_PERM_RANK)
 * = a op b with a and b read at a_strides / b_strides per axis of dims (0 on a broadcast
 * axis). One dtype dt (F32, BF16, F16), f32 math. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_binary_bcast(mixrt_cuda_device_t dev, enum mixrt_cuda_binary_op op,
                                                    mixrt_dtype dt, const void *a, const int64_t *a_strides,
                                                    const void *b, const int64_t *b_strides, void *y, int rank,
                                                    const int64_t *dims);
/* Bool logic and Where with numpy broadcasting: y (contiguous, dims, rank <=
 * MIXRT_CUDA_MAX_PERM_RANK) with every operand read at its own strides per axis of dims (0
 * on a broadcast axis). AND / OR / XOR: a and b are bool bytes (nonzero true), y bool (0 or
 * 1), c unused (NULL). WHERE: y = c ? a : b with c bool bytes and a, b, y elements of
 * elem_size bytes (1, 2, 4 or 8: any dtype, moved as bits). */
enum mixrt_cuda_select_op {
    MIXRT_CUDA_SELECT_AND = 0,
    MIXRT_CUDA_SELECT_OR = 1,
    MIXRT_CUDA_SELECT_XOR = 2,
    MIXRT_CUDA_SELECT_WHERE = 3,
    MIXRT_CUDA_SELECT_COUNT
};
MIXRT_CUDA_API mixrt_status mixrt_cuda_select_bcast(mixrt_cuda_device_t dev, enum mixrt_cuda_select_op op,
                                                    size_t elem_size, const void *c, const int64_t *c_strides,
                                                    const void *a, const int64_t *a_strides, const void *b,
                                                    const int64_t *b_strides, void *y, int rank, const int64_t *dims);
/* Integer to float or bool: src_dt I64, I32, U8 or BOOL into dst_dt F32, BF16, F16 or BOOL
 * (bytes 0 / 1: nonzero is true) (n elements). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_cast_int(mixrt_cuda_device_t dev, mixrt_dtype src_dt, const void *src,
                                                mixrt_dtype dst_dt, void *dst, size_t n);
/* com.mixrt Attention (passes/fuse_attention.c) for one dtype dt (F32, BF16, F16) of
 * Q, K, V and Y; the mask (may be NULL) is of dt too, or f32 when a->mask_f32; f32 math; sk + d <= 12000 (scores live in shared
 * memory). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_attention(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *q,
                                                 const void *k, const void *v, const void *mask, void *y,
                                                 const struct mixrt_cuda_attention_args *a);
/* The same op on tensor cores when it fits: bf16 / f16, d and dv multiples of 16 (<= 256)
 * and one head's K and V in shared memory. Launches and sets *done, else leaves *done
 * false and enqueues nothing (the caller runs mixrt_cuda_attention). Probabilities are
 * rounded to dt before P V (unnormalized, in [0, 1]); the rest is f32. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_attention_fast(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *q,
                                                      const void *k, const void *v, const void *mask, void *y,
                                                      const struct mixrt_cuda_attention_args *a, bool *done);

/* ---- pooling and the conv epilogue (pool.c) ------------------------------------------ */

/* 2-D MaxPool / AveragePool (global ones: the window is the whole plane) with the ONNX
 * semantics of the CPU reference kernels (cuda_args.h describes a): max propagates NaN and
 * gives -inf for a window that sees no input; average sums in f32 and divides by the count
 * of inside positions (plus padded ones with include_pad). x and y of dt (F32, BF16, F16). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_pool2d(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y,
                                              const struct mixrt_cuda_pool_args *a);
/* Resize (linear or nearest, its taps precomputed: cuda_args.h) of x into y, of dt (F32,
 * BF16, F16), f32 sums rounded once. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_resize(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y,
                                              const struct mixrt_cuda_resize_args *a);
/* In place, n elements of dt: y[i] = act(y[i] + bias[(i / inner) % channels] + z[i]) in f32,
 * rounded once. bias (channels values) and z (n values) may be NULL; act is a
 * mixrt_cuda_unary_op or -1 (none). NHWC outputs: inner 1; NCHW: inner = OH * OW. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_bias_act(mixrt_cuda_device_t dev, mixrt_dtype dt, void *y, const void *bias,
                                                size_t channels, size_t inner, const void *z, int act, size_t n);

/* Channels-last im2col (cuda_args.h describes a) of x into col, dt F32, BF16 or F16: the
 * operand of a conv run as one product (the ResNet stem: 3 input channels, where cuDNN's
 * channels-last kernels were slow). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_im2col(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *col,
                                              const struct mixrt_cuda_im2col_args *a);

/* Depthwise convolution, channels-last (cuda_args.h describes a), dt F32, BF16 or F16: y =
 * act(sum over the window of x w + bias), f32 sums, one rounding; w as [r, s, c]; bias
 * (c values) may be NULL. 16-byte accesses of 16 / sizeof(dt) channels where c and the
 * buffers allow. */
MIXRT_CUDA_API mixrt_status mixrt_cuda_dwconv(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, const void *w,
                                              const void *bias, void *y, const struct mixrt_cuda_dwconv_args *a);

/* The edge columns of a row-grouped product (cuda_args.h describes a): copied out of e
 * [rows, ld_e] into y [rows, n], both of dt (F32, BF16 or F16). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_edge_scatter(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *e, void *y,
                                                    const struct mixrt_cuda_edge_args *a);

/* The softmax stage of attention computed as batched GEMMs (the engine makes S = scale *
 * Q K^T in f32 and P V with cuBLASLt): p [b*h*sq, sk] of dt = softmax over each row of s
 * (f32, [b*h*sq, sk], scale already applied) after the causal fill and the mask (a's mask
 * strides; f32 when a->mask_f32, else dt; may be NULL). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_attention_softmax(mixrt_cuda_device_t dev, mixrt_dtype dt, const float *s,
                                                         void *p, const void *mask,
                                                         const struct mixrt_cuda_attention_args *a);

/* ---- CUDA graphs -------------------------------------------------------------------
 * capture_begin starts recording the stream's work (nothing runs); capture_end stops
 * and instantiates it into *out (on failure the capture is ended and dropped). Launch
 * replays it on the stream. Destroy before the device (NULL fine). */
MIXRT_CUDA_API mixrt_status mixrt_cuda_capture_begin(mixrt_cuda_device_t dev);
MIXRT_CUDA_API mixrt_status mixrt_cuda_capture_end(mixrt_cuda_device_t dev, mixrt_cuda_graph_t *out);
MIXRT_CUDA_API mixrt_status mixrt_cuda_graph_launch(mixrt_cuda_device_t dev, mixrt_cuda_graph_t g);
MIXRT_CUDA_API void mixrt_cuda_graph_destroy(mixrt_cuda_graph_t g);

#ifdef __cplusplus
}
#endif
#endif /* MIXRT_BACKEND_CUDA_BACKEND_H */
