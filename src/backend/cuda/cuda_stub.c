/* cuda_stub.c - the CUDA backend's interface in builds without MIXRT_CUDA: no device is
 * ever visible, so callers (the engine, the tests) need no #ifdef. Invariant: every entry
 * point that could only be reached with a device handle stays inert; creating one fails
 * with UNSUPPORTED and says the build lacks CUDA. */
#include "backend/cuda/cuda_backend.h"
#include "core/core.h"

static mixrt_status stub_unsupported(mixrt_context_t ctx, const char *what) {
    return mixrt_error(ctx, MIXRT_STATUS_UNSUPPORTED, "cannot %s: mixrt was built without CUDA (MIXRT_CUDA=OFF)", what);
}

mixrt_status mixrt_cuda_device_count(mixrt_context_t ctx, int *count) {
    if (!count) return mixrt_error(ctx, MIXRT_STATUS_INVALID_ARGUMENT, "mixrt_cuda_device_count: count is NULL");
    mixrt_log(ctx, MIXRT_LOG_NOTE, "no CUDA GPU: mixrt was built without CUDA (MIXRT_CUDA=OFF)");
    *count = 0;
    return MIXRT_STATUS_OK;
}
mixrt_status mixrt_cuda_device_create(mixrt_context_t ctx, int ordinal, mixrt_cuda_device_t *out) {
    (void)ordinal;
    (void)out;
    return stub_unsupported(ctx, "open a CUDA device");
}
/* No handle can exist in this build: the rest never runs with a real one. */
void mixrt_cuda_device_destroy(mixrt_cuda_device_t dev) { (void)dev; }
const struct mixrt_cuda_device_info *mixrt_cuda_device_get_info(mixrt_cuda_device_t dev) {
    (void)dev;
    return NULL;
}
mixrt_status mixrt_cuda_device_sync(mixrt_cuda_device_t dev) {
    (void)dev;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_arena_reserve(mixrt_cuda_device_t dev, size_t bytes) {
    (void)dev, (void)bytes;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_arena_at(mixrt_cuda_device_t dev, size_t offset, size_t bytes, void **out) {
    (void)dev, (void)offset, (void)bytes, (void)out;
    return MIXRT_STATUS_UNSUPPORTED;
}
size_t mixrt_cuda_arena_size(mixrt_cuda_device_t dev) {
    (void)dev;
    return 0;
}
mixrt_status mixrt_cuda_alloc(mixrt_cuda_device_t dev, size_t bytes, const char *what, void **out) {
    (void)dev, (void)bytes, (void)what, (void)out;
    return MIXRT_STATUS_UNSUPPORTED;
}
void mixrt_cuda_free(mixrt_cuda_device_t dev, void *ptr, size_t bytes) { (void)dev, (void)ptr, (void)bytes; }
mixrt_status mixrt_cuda_host_alloc(mixrt_cuda_device_t dev, size_t bytes, void **out) {
    (void)dev, (void)bytes, (void)out;
    return MIXRT_STATUS_UNSUPPORTED;
}
void mixrt_cuda_host_free(mixrt_cuda_device_t dev, void *ptr) { (void)dev, (void)ptr; }
mixrt_status mixrt_cuda_copy_h2d(mixrt_cuda_device_t dev, void *dst, const void *src, size_t bytes) {
    (void)dev, (void)dst, (void)src, (void)bytes;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_copy_d2h(mixrt_cuda_device_t dev, void *dst, const void *src, size_t bytes) {
    (void)dev, (void)dst, (void)src, (void)bytes;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_copy_d2d(mixrt_cuda_device_t dev, void *dst, const void *src, size_t bytes) {
    (void)dev, (void)dst, (void)src, (void)bytes;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_memset(mixrt_cuda_device_t dev, void *dst, int byte, size_t bytes) {
    (void)dev, (void)dst, (void)byte, (void)bytes;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_timer_begin(mixrt_cuda_device_t dev) {
    (void)dev;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_timer_end(mixrt_cuda_device_t dev, float *ms) {
    (void)dev, (void)ms;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_gemm_create(mixrt_cuda_device_t dev, const struct mixrt_cuda_gemm_desc *desc,
                                    mixrt_cuda_gemm_t *out) {
    (void)dev, (void)desc, (void)out;
    return MIXRT_STATUS_UNSUPPORTED;
}
void mixrt_cuda_gemm_destroy(mixrt_cuda_gemm_t g) { (void)g; }
mixrt_status mixrt_cuda_gemm_tune(mixrt_cuda_gemm_t g, const void *a, const void *b, const void *bias, void *y,
                                  int reps) {
    (void)g, (void)a, (void)b, (void)bias, (void)y, (void)reps;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_gemm_run(mixrt_cuda_gemm_t g, const void *a, const void *b, const void *bias, void *y) {
    (void)g, (void)a, (void)b, (void)bias, (void)y;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_gemm_set_choice(mixrt_cuda_gemm_t g, int index) {
    (void)g, (void)index;
    return MIXRT_STATUS_UNSUPPORTED;
}
void mixrt_cuda_gemm_get_choice(mixrt_cuda_gemm_t g, int *n_candidates, int *chosen, float *chosen_ms) {
    (void)g;
    if (n_candidates) *n_candidates = 0;
    if (chosen) *chosen = -1;
    if (chosen_ms) *chosen_ms = -1.0f;
}
const char *mixrt_cuda_binary_name(enum mixrt_cuda_binary_op op) {
    (void)op;
    return "?";
}
const char *mixrt_cuda_unary_name(enum mixrt_cuda_unary_op op) {
    (void)op;
    return "?";
}
mixrt_status mixrt_cuda_binary(mixrt_cuda_device_t dev, enum mixrt_cuda_binary_op op, mixrt_dtype dt, const void *a,
                               const void *b, size_t b_n, void *y, size_t n) {
    (void)dev, (void)op, (void)dt, (void)a, (void)b, (void)b_n, (void)y, (void)n;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_unary(mixrt_cuda_device_t dev, enum mixrt_cuda_unary_op op, mixrt_dtype dt, const void *x,
                              void *y, size_t n) {
    (void)dev, (void)op, (void)dt, (void)x, (void)y, (void)n;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_cast(mixrt_cuda_device_t dev, mixrt_dtype src_dt, const void *src, mixrt_dtype dst_dt,
                             void *dst, size_t n) {
    (void)dev, (void)src_dt, (void)src, (void)dst_dt, (void)dst, (void)n;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_cast_rows(mixrt_cuda_device_t dev, mixrt_dtype src_dt, const void *src, size_t src_ld,
                                  mixrt_dtype dst_dt, void *dst, size_t rows, size_t cols) {
    (void)dev, (void)src_dt, (void)src, (void)src_ld, (void)dst_dt, (void)dst, (void)rows, (void)cols;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_layer_norm(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, const void *scale,
                                   const void *bias, void *y, size_t rows, size_t cols, float eps) {
    (void)dev, (void)dt, (void)x, (void)scale, (void)bias, (void)y, (void)rows, (void)cols, (void)eps;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_softmax(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y, size_t rows,
                                size_t cols) {
    (void)dev, (void)dt, (void)x, (void)y, (void)rows, (void)cols;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_gather_rows(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *table, size_t table_rows,
                                    size_t cols, mixrt_dtype idx_dt, const void *idx, size_t n_idx, void *y) {
    (void)dev, (void)dt, (void)table, (void)table_rows, (void)cols, (void)idx_dt, (void)idx, (void)n_idx, (void)y;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_strided_copy(mixrt_cuda_device_t dev, size_t elem_size, const void *x, void *y, int rank,
                                     const int64_t *out_dims, const int64_t *in_strides, const int64_t *out_strides) {
    (void)dev, (void)elem_size, (void)x, (void)y, (void)rank, (void)out_dims, (void)in_strides, (void)out_strides;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_attention(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *q, const void *k,
                                  const void *v, const void *mask, void *y, const struct mixrt_cuda_attention_args *a) {
    (void)dev, (void)dt, (void)q, (void)k, (void)v, (void)mask, (void)y, (void)a;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_capture_begin(mixrt_cuda_device_t dev) {
    (void)dev;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_capture_end(mixrt_cuda_device_t dev, mixrt_cuda_graph_t *out) {
    (void)dev, (void)out;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_graph_launch(mixrt_cuda_device_t dev, mixrt_cuda_graph_t g) {
    (void)dev, (void)g;
    return MIXRT_STATUS_UNSUPPORTED;
}
void mixrt_cuda_graph_destroy(mixrt_cuda_graph_t g) { (void)g; }
mixrt_status mixrt_cuda_binary_bcast(mixrt_cuda_device_t dev, enum mixrt_cuda_binary_op op, mixrt_dtype dt,
                                     const void *a, const int64_t *a_strides, const void *b, const int64_t *b_strides,
                                     void *y, int rank, const int64_t *dims) {
    (void)dev, (void)op, (void)dt, (void)a, (void)a_strides, (void)b, (void)b_strides, (void)y, (void)rank, (void)dims;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_select_bcast(mixrt_cuda_device_t dev, enum mixrt_cuda_select_op op, size_t elem_size,
                                     const void *c, const int64_t *c_strides, const void *a, const int64_t *a_strides,
                                     const void *b, const int64_t *b_strides, void *y, int rank, const int64_t *dims) {
    (void)dev, (void)op, (void)elem_size, (void)c, (void)c_strides, (void)a, (void)a_strides, (void)b, (void)b_strides;
    (void)y, (void)rank, (void)dims;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_resize(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y,
                               const struct mixrt_cuda_resize_args *a) {
    (void)dev, (void)dt, (void)x, (void)y, (void)a;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_reduce_rows(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y, size_t rows,
                                    size_t cols, bool mean) {
    (void)dev, (void)dt, (void)x, (void)y, (void)rows, (void)cols, (void)mean;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_instance_norm(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, const void *scale,
                                      const void *bias, void *y, size_t rows, size_t cols, size_t channels,
                                      float eps) {
    (void)dev, (void)dt, (void)x, (void)scale, (void)bias, (void)y, (void)rows, (void)cols, (void)channels, (void)eps;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_cuda_device_t dev, mixrt_dtype src_dt, const void *src, mixrt_dtype dst_dt,
                                 void *dst, size_t n) {
    (void)dev, (void)src_dt, (void)src, (void)dst_dt, (void)dst, (void)n;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_gemm_set_c(mixrt_cuda_gemm_t g, const void *c) {
    (void)g, (void)c;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_prof_reserve(mixrt_cuda_device_t dev, int n) {
    (void)dev, (void)n;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_prof_mark(mixrt_cuda_device_t dev, int i) {
    (void)dev, (void)i;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_prof_read(mixrt_cuda_device_t dev, int n, float *ms) {
    (void)dev, (void)n, (void)ms;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_attention_fast(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *q, const void *k,
                                       const void *v, const void *mask, void *y,
                                       const struct mixrt_cuda_attention_args *a, bool *done) {
    (void)dev, (void)dt, (void)q, (void)k, (void)v, (void)mask, (void)y, (void)a;
    if (done) *done = false;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_conv_create(mixrt_cuda_device_t dev, const struct mixrt_cuda_conv_desc *desc,
                                    mixrt_cuda_conv_t *out) {
    (void)dev, (void)desc, (void)out;
    return MIXRT_STATUS_UNSUPPORTED;
}
void mixrt_cuda_conv_destroy(mixrt_cuda_conv_t c) { (void)c; }
float mixrt_cuda_conv_time_ms(mixrt_cuda_conv_t c) {
    (void)c;
    return -1.0f;
}
mixrt_status mixrt_cuda_conv_run(mixrt_cuda_conv_t c, const void *x, const void *w, void *y, bool accumulate) {
    (void)c, (void)x, (void)w, (void)y, (void)accumulate;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_conv_run_ex(mixrt_cuda_conv_t c, const void *x, const void *w, const void *bias, void *y,
                                    unsigned *done) {
    (void)c, (void)x, (void)w, (void)bias, (void)y;
    if (done) *done = 0;
    return MIXRT_STATUS_UNSUPPORTED;
}
const char *mixrt_cuda_conv_kind(mixrt_cuda_conv_t c) {
    (void)c;
    return "none";
}
mixrt_status mixrt_cuda_pool2d(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *y,
                               const struct mixrt_cuda_pool_args *a) {
    (void)dev, (void)dt, (void)x, (void)y, (void)a;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_bias_act(mixrt_cuda_device_t dev, mixrt_dtype dt, void *y, const void *bias, size_t channels,
                                 size_t inner, const void *z, int act, size_t n) {
    (void)dev, (void)dt, (void)y, (void)bias, (void)channels, (void)inner, (void)z, (void)act, (void)n;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_im2col(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, void *col,
                               const struct mixrt_cuda_im2col_args *a) {
    (void)dev, (void)dt, (void)x, (void)col, (void)a;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_dwconv(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *x, const void *w,
                               const void *bias, void *y, const struct mixrt_cuda_dwconv_args *a) {
    (void)dev, (void)dt, (void)x, (void)w, (void)bias, (void)y, (void)a;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_edge_scatter(mixrt_cuda_device_t dev, mixrt_dtype dt, const void *e, void *y,
                                    const struct mixrt_cuda_edge_args *a) {
    (void)dev, (void)dt, (void)e, (void)y, (void)a;
    return MIXRT_STATUS_UNSUPPORTED;
}
mixrt_status mixrt_cuda_attention_softmax(mixrt_cuda_device_t dev, mixrt_dtype dt, const float *s, void *p,
                                          const void *mask, const struct mixrt_cuda_attention_args *a) {
    (void)dev, (void)dt, (void)s, (void)p, (void)mask, (void)a;
    return MIXRT_STATUS_UNSUPPORTED;
}
