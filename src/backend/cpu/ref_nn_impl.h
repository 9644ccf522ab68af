/* ref_nn_impl.h - private to the nn reference family (ref_nn*.c): the kernels the table in
 * ref_nn.c lists, and the helpers they share (named input errors, f64 buffers, the
 * spatial-window attributes of Conv/ConvTranspose/pools). Nothing outside ref_nn*.c uses it. */
#ifndef MIXRT_BACKEND_CPU_REF_NN_IMPL_H
#define MIXRT_BACKEND_CPU_REF_NN_IMPL_H

#include "backend/cpu/ref.h"

/* ---- helpers (ref_nn.c) ---- */

/* The value name of input i ("" when absent). */
const char *mixrt_nn_in_name(const struct mixrt_kernel_ctx *k, int i);
/* Records "input #i 'name' is <dtype> [dims], <what>" for tensor t with status st. */
mixrt_status mixrt_nn_bad_input(struct mixrt_kernel_ctx *k, mixrt_status st, int i, const struct mixrt_tensor *t,
                                const char *fmt, ...) MIXRT_PRINTF(5, 6);
/* Zeroed doubles, max(n,1) of them (OOM recorded on the context); free with mixrt_nn_free. */
double *mixrt_nn_alloc(struct mixrt_kernel_ctx *k, size_t n);
void mixrt_nn_free(struct mixrt_kernel_ctx *k, double *p, size_t n);
/* A double copy of t's elements (max(n,1) allocated); free with mixrt_nn_free(k, p, numel). */
mixrt_status mixrt_nn_load(struct mixrt_kernel_ctx *k, const struct mixrt_tensor *t, double **out);
/* Writes numel(out) doubles into out, rounding once to its dtype. */
mixrt_status mixrt_nn_store(struct mixrt_kernel_ctx *k, struct mixrt_tensor *out, const double *v);
/* Requires input i to be present, float, and (when same_as >= 0) of input same_as's dtype. */
mixrt_status mixrt_nn_float_input(struct mixrt_kernel_ctx *k, int i, int same_as, const struct mixrt_tensor **out);

/* Spatial window geometry shared by Conv, ConvTranspose and the pools. */
enum mixrt_nn_autopad { MIXRT_NN_NOTSET, MIXRT_NN_SAME_UPPER, MIXRT_NN_SAME_LOWER, MIXRT_NN_VALID };
struct mixrt_nn_window {
    int nd;                      /* spatial rank */
    int64_t in[MIXRT_MAX_RANK];  /* input spatial dims */
    int64_t out[MIXRT_MAX_RANK]; /* output spatial dims */
    int64_t k[MIXRT_MAX_RANK];   /* kernel dims */
    int64_t s[MIXRT_MAX_RANK];   /* strides */
    int64_t d[MIXRT_MAX_RANK];   /* dilations */
    int64_t pb[MIXRT_MAX_RANK];  /* padding at the beginning of each axis */
    int64_t pe[MIXRT_MAX_RANK];  /* padding at the end */
    enum mixrt_nn_autopad autopad;
};
/* Reads auto_pad, strides, dilations (when allow_dilations) and pads for w->nd axes, with
 * w->k and w->in already set; checks lengths and ranges (of k and in too). Output dims are not
 * computed. */
mixrt_status mixrt_nn_window_attrs(struct mixrt_kernel_ctx *k, struct mixrt_nn_window *w, bool allow_dilations);
/* Forward (Conv/pool) output dims and resolved pads; ceil_mode rounds up and drops a last
 * window that would start in the end padding. Errors when an output dim would be < 1. */
mixrt_status mixrt_nn_window_forward(struct mixrt_kernel_ctx *k, struct mixrt_nn_window *w, bool ceil_mode);
/* Reads an ints attribute of exactly n entries (default dflt each when absent) whose values
 * must be >= min; *present tells whether it was given. */
mixrt_status mixrt_nn_ints_attr(struct mixrt_kernel_ctx *k, const char *name, int n, int64_t dflt, int64_t min,
                                int64_t *out, bool *present);

/* Whether output i exists and the node uses it (out_wanted may be NULL: all wanted). */
static inline bool mixrt_nn_wanted(const struct mixrt_kernel_ctx *k, int i) {
    return i < k->n_out && (!k->out_wanted || k->out_wanted[i]);
}

/* Ceil of a / b for b > 0 and any sign of a. */
static inline int64_t mixrt_nn_ceil_div(int64_t a, int64_t b) { return a >= 0 ? (a + b - 1) / b : -((-a) / b); }

/* ---- kernels ---- */
mixrt_status mixrt_nn_run_conv(struct mixrt_kernel_ctx *k);           /* ref_nn_conv.c */
mixrt_status mixrt_nn_run_conv_transpose(struct mixrt_kernel_ctx *k); /* ref_nn_conv.c */
mixrt_status mixrt_nn_run_max_pool(struct mixrt_kernel_ctx *k);       /* ref_nn_pool.c */
mixrt_status mixrt_nn_run_average_pool(struct mixrt_kernel_ctx *k);
mixrt_status mixrt_nn_run_lp_pool(struct mixrt_kernel_ctx *k);
mixrt_status mixrt_nn_run_global_average_pool(struct mixrt_kernel_ctx *k);
mixrt_status mixrt_nn_run_global_max_pool(struct mixrt_kernel_ctx *k);
mixrt_status mixrt_nn_run_global_lp_pool(struct mixrt_kernel_ctx *k);
mixrt_status mixrt_nn_run_max_unpool(struct mixrt_kernel_ctx *k);
mixrt_status mixrt_nn_run_max_roi_pool(struct mixrt_kernel_ctx *k);
mixrt_status mixrt_nn_run_batch_norm(struct mixrt_kernel_ctx *k); /* ref_nn_norm.c */
mixrt_status mixrt_nn_run_instance_norm(struct mixrt_kernel_ctx *k);
mixrt_status mixrt_nn_run_layer_norm(struct mixrt_kernel_ctx *k);
mixrt_status mixrt_nn_run_group_norm(struct mixrt_kernel_ctx *k);
mixrt_status mixrt_nn_run_lrn(struct mixrt_kernel_ctx *k);
mixrt_status mixrt_nn_run_mvn(struct mixrt_kernel_ctx *k);

#endif /* MIXRT_BACKEND_CPU_REF_NN_IMPL_H */
