/* cuda_impl.h - internals of the CUDA backend shared by its C files (device.c, gemm_lt.c,
 * kernels.c) and the launchers of its .cu files. CUDA types may appear here, never in
 * cuda_backend.h. The .cu launchers only launch and return cudaError_t: argument checks
 * and messages live in the C files, where the context is. */
#ifndef MIXRT_BACKEND_CUDA_IMPL_H
#define MIXRT_BACKEND_CUDA_IMPL_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cuda/cuda_args.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Element type codes the launchers take (kept apart from mixrt_dtype so .cu files need no
 * mixrt header). */
/* BOOL: bytes 0 / 1, written by the integer cast only (mixrt_cuda_elem_of gives -1 for it). */
enum mixrt_cuda_elem { MIXRT_CUDA_ELEM_F32 = 0, MIXRT_CUDA_ELEM_BF16 = 1, MIXRT_CUDA_ELEM_F16 = 2, MIXRT_CUDA_ELEM_BOOL = 3 };

/* Kernel-flagged error, written on the device by the first thread that finds one (code 0:
 * none) and read back by mixrt_cuda_device_sync. */
struct mixrt_cuda_dev_flag {
    int code; /* MIXRT_CUDA_FLAG_* */
    int pad;
    long long value; /* the offending value (an index) */
};
enum { MIXRT_CUDA_FLAG_NONE = 0, MIXRT_CUDA_FLAG_GATHER_INDEX = 1 };

/* Launchers (eltwise.cu, norm.cu). max_blocks bounds grid-stride grids (a few per SM). */
cudaError_t mixrt_cuda_launch_binary(cudaStream_t s, int max_blocks, int op, int elem, const void *a,
                                     const void *b, size_t b_n, void *y, size_t n);
cudaError_t mixrt_cuda_launch_unary(cudaStream_t s, int max_blocks, int op, int elem, const void *x, void *y,
                                    size_t n);
cudaError_t mixrt_cuda_launch_cast(cudaStream_t s, int max_blocks, int src_elem, const void *src, int dst_elem,
                                   void *dst, size_t n);
cudaError_t mixrt_cuda_launch_cast_rows(cudaStream_t s, int max_blocks, int src_elem, const void *src, size_t src_ld,
                                        int dst_elem, void *dst, size_t rows, size_t cols);
cudaError_t mixrt_cuda_launch_layer_norm(cudaStream_t s, int elem, const void *x, const void *scale,
                                         const void *bias, void *y, size_t rows, size_t cols, float eps);
cudaError_t mixrt_cuda_launch_softmax(cudaStream_t s, int elem, const void *x, void *y, size_t rows, size_t cols);
cudaError_t mixrt_cuda_launch_reduce_rows(cudaStream_t s, int elem, const void *x, void *y, size_t rows, size_t cols,
                                          int mean);
cudaError_t mixrt_cuda_launch_instance_norm(cudaStream_t s, int elem, const void *x, const void *scale,
                                            const void *bias, void *y, size_t rows, size_t cols, size_t channels,
                                            float eps);
/* elem_size 1, 2, 4 or 8; idx_is_i64 selects the index type. */
/* eltwise.cu: keeps `blocks` blocks busy for ns nanoseconds (sink: any device float, never
 * written in practice). */
cudaError_t mixrt_cuda_launch_spin(cudaStream_t s, int blocks, unsigned long long ns, float *sink);
cudaError_t mixrt_cuda_launch_gather_rows(cudaStream_t s, int max_blocks, size_t elem_size, const void *table,
                                          size_t table_rows, size_t cols, int idx_is_i64, const void *idx,
                                          size_t n_idx, void *y, struct mixrt_cuda_dev_flag *flag);
/* engine_ops.cu: for every index of dims (n elements), y at out_strides = x at in_strides;
 * elements of 1, 2, 4, 8 or 16 bytes. */
cudaError_t mixrt_cuda_launch_transpose(cudaStream_t s, int max_blocks, size_t elem_size, const void *x, void *y,
                                        int rank, const long long *out_dims, const long long *in_strides,
                                        const long long *out_strides, size_t n);
/* op: mixrt_cuda_binary_op; as/bs: a's and b's strides per axis of dims (0: broadcast). */
cudaError_t mixrt_cuda_launch_bcast_binary(cudaStream_t s, int max_blocks, int op, int elem, const void *a,
                                           const void *b, void *y, int rank, const long long *dims,
                                           const long long *as, const long long *bs, size_t n);
/* op: mixrt_cuda_select_op; cs/as/bs: c's, a's and b's strides per axis of dims (cs unused
 * but for WHERE). */
cudaError_t mixrt_cuda_launch_select(cudaStream_t s, int max_blocks, int op, size_t elem_size, const void *c,
                                     const void *a, const void *b, void *y, int rank, const long long *dims,
                                     const long long *cs, const long long *as, const long long *bs, size_t n);
/* src_bytes 8 (i64), 4 (i32), 1 (u8 / bool) into dst_elem. */
cudaError_t mixrt_cuda_launch_int_cast(cudaStream_t s, int max_blocks, int src_bytes, const void *x, int dst_elem,
                                       void *y, size_t n);
/* mask may be NULL; all tensors of one elem type. */
cudaError_t mixrt_cuda_launch_attention(cudaStream_t s, int elem, const void *q, const void *k, const void *v,
                                        const void *mask, void *y, const struct mixrt_cuda_attention_args *a);
/* Tensor-core attention (bf16 / f16, d and dv multiples of 16): shared bytes a block of
 * `groups` 16-row query groups needs, and the launch. vec bits: 1 Q, 2 K, 4 V rows load as
 * 16-byte moves. mask_kind: 0 no mask, 1 one mask row for all query rows, 2 a row each. */
size_t mixrt_cuda_attention_tc_smem(long long sk, long long d, long long dv, int groups, int mask_kind);
/* attention_flash.cu: d == dv in {32, 64, 128}, bf16 / f16 (elem), any sk; warps (1, 4 or 8)
 * per block of 16 query rows each, the block taking `chunks` (1-8) such runs of rows in turn. */
int mixrt_cuda_attention_flash_fits(long long d, long long dv);
/* A vec bit: the flash kernel scores every tile by its general loop, not by the PLAIN /
 * CAUSAL_ROW kernels a shape may take (MIXRT_CUDA_FLASH_PLAIN=off). */
#define MIXRT_CUDA_FLASH_NO_PLAIN 32
/* A vec bit: the CAUSAL_ROW kernel computes S on tiles past every row's causal limit too
 * (MIXRT_CUDA_FLASH_PASTSKIP=off; it skips them by default, their scores being fill + m). */
#define MIXRT_CUDA_FLASH_NO_PASTSKIP 64
/* A vec bit: the PLAIN / CAUSAL_ROW flash kernels issue K/V tile 1 only after Q and tile 0
 * have arrived (the order before session 55), not before their first wait. Set by
 * MIXRT_CUDA_FLASH_EARLYKV=off (the early order is the default since session 56). */
#define MIXRT_CUDA_FLASH_LATE_KV 128
/* A vec bit: the flash kernels compute every key tile whole in every warp, none of the tail
 * skips (warps wholly past sq, key columns wholly past sk); MIXRT_CUDA_FLASH_TAILSKIP=off. */
#define MIXRT_CUDA_FLASH_NO_TAILSKIP 256
cudaError_t mixrt_cuda_launch_attention_flash(cudaStream_t s, int elem, int warps, int chunks, int vec, const void *q,
                                              const void *k, const void *v, const void *mask, void *y,
                                              const struct mixrt_cuda_attention_args *a);
cudaError_t mixrt_cuda_launch_attention_tc(cudaStream_t s, int elem, int groups, int vec, const void *q,
                                           const void *k, const void *v, const void *mask, void *y,
                                           const struct mixrt_cuda_attention_args *a);

/* attention_gemm.cu: P [b*h*sq, sk] of elem = softmax over rows of S (f32, already scaled)
 * with the causal fill and the mask (f32 when a->mask_f32, else of elem; may be NULL). */
cudaError_t mixrt_cuda_launch_att_softmax(cudaStream_t st, int max_blocks, int elem, const float *s, void *p,
                                          const void *mask, const struct mixrt_cuda_attention_args *a);
/* pool.cu: n_out outputs of a 2-D pool (scratch: device memory a channels-last global average
 * may use for partial sums, NULL for none); the conv epilogue y = act(y + bias[(i / inner) %
 * channels] + z) (bias, z may be NULL; act a mixrt_cuda_unary_op or -1). */
cudaError_t mixrt_cuda_launch_pool(cudaStream_t s, int max_blocks, int elem, const void *x, void *y, size_t n_out,
                                   const struct mixrt_cuda_pool_args *a, void *scratch, size_t scratch_bytes);
cudaError_t mixrt_cuda_launch_im2col(cudaStream_t s, int max_blocks, int elem, const void *x, void *col,
                                     const struct mixrt_cuda_im2col_args *a);
cudaError_t mixrt_cuda_launch_dwconv(cudaStream_t s, int max_blocks, int elem, const void *x, const void *w,
                                     const void *bias, void *y, const struct mixrt_cuda_dwconv_args *a);
cudaError_t mixrt_cuda_launch_resize(cudaStream_t s, int max_blocks, int elem, const void *x, void *y,
                                      const struct mixrt_cuda_resize_args *a);
cudaError_t mixrt_cuda_launch_edge_scatter(cudaStream_t s, size_t es, const void *e, void *y,
                                           const struct mixrt_cuda_edge_args *a);
cudaError_t mixrt_cuda_launch_bias_act(cudaStream_t s, int max_blocks, int elem, void *y, const void *bias,
                                       size_t channels, size_t inner, const void *z, int act, size_t n);

#ifdef __cplusplus
}
#endif

#ifndef __CUDACC__
/* C-only part: the device object and error mapping. */
#include <cublasLt.h>

#include "backend/cuda/cuda_backend.h"
#include "core/core.h"

struct mixrt_cuda_device {
    mixrt_context_t ctx;
    struct mixrt_cuda_device_info info;
    cudaStream_t stream;
    cublasLtHandle_t lt;
    void *workspace;
    size_t workspace_bytes;
    void *arena;
    size_t arena_bytes;
    struct mixrt_cuda_dev_flag *flag; /* device memory */
    cudaEvent_t ev_start, ev_stop;
    int max_blocks; /* grid-stride grid bound: 8 blocks per SM */
    cudaEvent_t *prof_ev; /* profile marks (mixrt_cuda_prof_reserve) */
    int prof_n;
    void *dnn; /* cudnnHandle_t, made by the first conv plan (conv_dnn.c) */
    bool warm; /* mixrt_cuda_warm has run */
    bool timer_spin; /* mixrt_cuda_timer_begin starts behind a spin (MIXRT_CUDA_TIMER_SPIN=on; default off) */
};

/* Before the first timing (mixrt_cuda_timer_begin, cuDNN's engine search): keeps the GPU
 * busy for MIXRT_CUDA_WARM_MS (default 250, 0 = off) so that an idle card's clocks have
 * risen. Once per device; a failure is not an error (timings are then only less fair). */
void mixrt_cuda_warm(struct mixrt_cuda_device *dev);

/* Destroys the device's cuDNN handle (conv_dnn.c; nothing when none was made). */
void mixrt_cuda_dnn_release(struct mixrt_cuda_device *dev);

/* Records "CUDA call <what> failed: <name> (<string>)" and returns the mapped status
 * (OUT_OF_MEMORY, UNSUPPORTED for no device / driver, INTERNAL otherwise). OK for
 * cudaSuccess. what is a printf format. */
mixrt_status mixrt_cuda_fail(mixrt_context_t ctx, cudaError_t err, const char *what, ...) MIXRT_PRINTF(3, 4);
mixrt_status mixrt_cuda_lt_fail(mixrt_context_t ctx, cublasStatus_t st, const char *what, ...) MIXRT_PRINTF(3, 4);

/* F32 / BF16 / F16 to the launcher code; -1 otherwise. */
int mixrt_cuda_elem_of(mixrt_dtype dt);

#define MIXRT_CUDA_TRY(ctx, call, ...)                                                   \
    do {                                                                                 \
        cudaError_t e_ = (call);                                                         \
        if (e_ != cudaSuccess) {                                                         \
            status = mixrt_cuda_fail((ctx), e_, __VA_ARGS__);                            \
            goto fail;                                                                   \
        }                                                                                \
    } while (0)
#define MIXRT_CUDA_LT_TRY(ctx, call, ...)                                                \
    do {                                                                                 \
        cublasStatus_t s_ = (call);                                                      \
        if (s_ != CUBLAS_STATUS_SUCCESS) {                                               \
            status = mixrt_cuda_lt_fail((ctx), s_, __VA_ARGS__);                         \
            goto fail;                                                                   \
        }                                                                                \
    } while (0)
#endif /* !__CUDACC__ */

#endif /* MIXRT_BACKEND_CUDA_IMPL_H */
