/* cuda_table.h - the CUDA backend as one table of function pointers, which libmixrt_cuda.so
 * exports under one symbol (MIXRT_CUDA_TABLE_SYMBOL). libmixrt reaches the device layer only
 * through it (dlopen + dlsym in engine/engine_cuda.c), so libmixrt itself never links
 * cudart and keeps working where no CUDA library is installed.
 * Compatibility: `version` changes when a member changes meaning; members are only
 * appended, and `size` (sizeof the table the .so was built with) tells a loader which
 * appended members exist. */
#ifndef MIXRT_BACKEND_CUDA_TABLE_H
#define MIXRT_BACKEND_CUDA_TABLE_H

#include "backend/cuda/cuda_backend.h"

#define MIXRT_CUDA_TABLE_SYMBOL "mixrt_cuda_backend_v1"
#define MIXRT_CUDA_TABLE_VERSION 3u /* 2: conv descriptors carry a depth (3-D convs); 3: and an epilogue */

struct mixrt_cuda_table {
    uint32_t version, size;
    mixrt_status (*device_count)(mixrt_context_t, int *);
    mixrt_status (*device_create)(mixrt_context_t, int, mixrt_cuda_device_t *);
    void (*device_destroy)(mixrt_cuda_device_t);
    const struct mixrt_cuda_device_info *(*device_get_info)(mixrt_cuda_device_t);
    mixrt_status (*device_sync)(mixrt_cuda_device_t);
    mixrt_status (*arena_reserve)(mixrt_cuda_device_t, size_t);
    mixrt_status (*arena_at)(mixrt_cuda_device_t, size_t, size_t, void **);
    mixrt_status (*alloc)(mixrt_cuda_device_t, size_t, const char *, void **);
    void (*free)(mixrt_cuda_device_t, void *, size_t);
    mixrt_status (*host_alloc)(mixrt_cuda_device_t, size_t, void **);
    void (*host_free)(mixrt_cuda_device_t, void *);
    mixrt_status (*copy_h2d)(mixrt_cuda_device_t, void *, const void *, size_t);
    mixrt_status (*copy_d2h)(mixrt_cuda_device_t, void *, const void *, size_t);
    mixrt_status (*copy_d2d)(mixrt_cuda_device_t, void *, const void *, size_t);
    mixrt_status (*memset)(mixrt_cuda_device_t, void *, int, size_t);
    mixrt_status (*timer_begin)(mixrt_cuda_device_t);
    mixrt_status (*timer_end)(mixrt_cuda_device_t, float *);
    mixrt_status (*gemm_create)(mixrt_cuda_device_t, const struct mixrt_cuda_gemm_desc *, mixrt_cuda_gemm_t *);
    void (*gemm_destroy)(mixrt_cuda_gemm_t);
    mixrt_status (*gemm_tune)(mixrt_cuda_gemm_t, const void *, const void *, const void *, void *, int);
    mixrt_status (*gemm_run)(mixrt_cuda_gemm_t, const void *, const void *, const void *, void *);
    mixrt_status (*gemm_set_choice)(mixrt_cuda_gemm_t, int);
    void (*gemm_get_choice)(mixrt_cuda_gemm_t, int *, int *, float *);
    mixrt_status (*binary)(mixrt_cuda_device_t, enum mixrt_cuda_binary_op, mixrt_dtype, const void *, const void *,
                           size_t, void *, size_t);
    mixrt_status (*unary)(mixrt_cuda_device_t, enum mixrt_cuda_unary_op, mixrt_dtype, const void *, void *, size_t);
    mixrt_status (*cast)(mixrt_cuda_device_t, mixrt_dtype, const void *, mixrt_dtype, void *, size_t);
    mixrt_status (*layer_norm)(mixrt_cuda_device_t, mixrt_dtype, const void *, const void *, const void *, void *,
                               size_t, size_t, float);
    mixrt_status (*softmax)(mixrt_cuda_device_t, mixrt_dtype, const void *, void *, size_t, size_t);
    mixrt_status (*gather_rows)(mixrt_cuda_device_t, mixrt_dtype, const void *, size_t, size_t, mixrt_dtype,
                                const void *, size_t, void *);
    mixrt_status (*strided_copy)(mixrt_cuda_device_t, size_t, const void *, void *, int, const int64_t *,
                                 const int64_t *, const int64_t *);
    mixrt_status (*attention)(mixrt_cuda_device_t, mixrt_dtype, const void *, const void *, const void *,
                              const void *, void *, const struct mixrt_cuda_attention_args *);
    mixrt_status (*capture_begin)(mixrt_cuda_device_t);
    mixrt_status (*capture_end)(mixrt_cuda_device_t, mixrt_cuda_graph_t *);
    mixrt_status (*graph_launch)(mixrt_cuda_device_t, mixrt_cuda_graph_t);
    void (*graph_destroy)(mixrt_cuda_graph_t);
    mixrt_status (*binary_bcast)(mixrt_cuda_device_t, enum mixrt_cuda_binary_op, mixrt_dtype, const void *,
                                 const int64_t *, const void *, const int64_t *, void *, int, const int64_t *);
    mixrt_status (*cast_int)(mixrt_cuda_device_t, mixrt_dtype, const void *, mixrt_dtype, void *, size_t);
    mixrt_status (*gemm_set_c)(mixrt_cuda_gemm_t, const void *);
    mixrt_status (*prof_reserve)(mixrt_cuda_device_t, int);
    mixrt_status (*prof_mark)(mixrt_cuda_device_t, int);
    mixrt_status (*prof_read)(mixrt_cuda_device_t, int, float *);
    mixrt_status (*attention_fast)(mixrt_cuda_device_t, mixrt_dtype, const void *, const void *, const void *,
                                   const void *, void *, const struct mixrt_cuda_attention_args *, bool *);
    mixrt_status (*conv_create)(mixrt_cuda_device_t, const struct mixrt_cuda_conv_desc *, mixrt_cuda_conv_t *);
    void (*conv_destroy)(mixrt_cuda_conv_t);
    mixrt_status (*conv_run)(mixrt_cuda_conv_t, const void *, const void *, void *, bool);
    mixrt_status (*pool2d)(mixrt_cuda_device_t, mixrt_dtype, const void *, void *, const struct mixrt_cuda_pool_args *);
    mixrt_status (*bias_act)(mixrt_cuda_device_t, mixrt_dtype, void *, const void *, size_t, size_t, const void *, int,
                             size_t);
    mixrt_status (*attention_softmax)(mixrt_cuda_device_t, mixrt_dtype, const float *, void *, const void *,
                                      const struct mixrt_cuda_attention_args *);
    mixrt_status (*cast_rows)(mixrt_cuda_device_t, mixrt_dtype, const void *, size_t, mixrt_dtype, void *, size_t,
                              size_t);
    mixrt_status (*im2col)(mixrt_cuda_device_t, mixrt_dtype, const void *, void *, const struct mixrt_cuda_im2col_args *);
    mixrt_status (*edge_scatter)(mixrt_cuda_device_t, mixrt_dtype, const void *, void *,
                                 const struct mixrt_cuda_edge_args *);
    mixrt_status (*dwconv)(mixrt_cuda_device_t, mixrt_dtype, const void *, const void *, const void *, void *,
                           const struct mixrt_cuda_dwconv_args *);
    mixrt_status (*select_bcast)(mixrt_cuda_device_t, enum mixrt_cuda_select_op, size_t, const void *,
                                 const int64_t *, const void *, const int64_t *, const void *, const int64_t *, void *,
                                 int, const int64_t *);
    mixrt_status (*resize)(mixrt_cuda_device_t, mixrt_dtype, const void *, void *,
                           const struct mixrt_cuda_resize_args *);
    mixrt_status (*reduce_rows)(mixrt_cuda_device_t, mixrt_dtype, const void *, void *, size_t, size_t, bool);
    mixrt_status (*instance_norm)(mixrt_cuda_device_t, mixrt_dtype, const void *, const void *, const void *, void *,
                                  size_t, size_t, size_t, float);
    float (*conv_time_ms)(mixrt_cuda_conv_t);
    mixrt_status (*conv_run_ex)(mixrt_cuda_conv_t, const void *, const void *, const void *, void *, unsigned *);
    const char *(*conv_kind)(mixrt_cuda_conv_t);
};

#endif /* MIXRT_BACKEND_CUDA_TABLE_H */
