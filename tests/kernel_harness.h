/* kernel_harness.h - the shared harness of the reference-kernel unit tests: one one-node IR
 * graph at a time (kh_begin .. kh_end), its attributes, inputs and outputs as globals the test
 * fills and reads, kh_run to find and call the kernel, and small tensor constructors. */
#ifndef MIXRT_KERNEL_HARNESS_H
#define MIXRT_KERNEL_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "backend/cpu/ref.h"

#define KH_MAX_IO 10
#define KH_MAX_ATTRS 12

/* The context every kh_ call uses; the test creates and destroys it. */
extern mixrt_context_t kh_ctx;
/* The current graph and its one node (kh_G is NULL when kh_begin could not build it). */
extern struct mixrt_graph *kh_G;
extern struct mixrt_node *kh_N;
/* Kernel inputs/outputs, reset by kh_begin; the test sets kh_in[i] and reads kh_out[i]. */
extern const struct mixrt_tensor *kh_in[KH_MAX_IO];
extern const struct mixrt_seq *kh_in_seq[KH_MAX_IO];
extern struct mixrt_tensor kh_out[KH_MAX_IO];
extern struct mixrt_seq kh_out_seq[KH_MAX_IO];
extern bool kh_out_is_seq[KH_MAX_IO], kh_out_wanted[KH_MAX_IO];
extern int kh_n_in, kh_n_out;

/* Builds node "n0" of type op (domain "") with inputs x0.. and outputs y0.., all outputs wanted. */
void kh_begin(const char *op, int opset, int n_in, int n_out);
/* Appends attribute name of the given type; the caller sets its value. */
struct mixrt_attr *kh_attr(const char *name, enum mixrt_attr_type type);
void kh_attr_int(const char *name, int64_t v);
void kh_attr_float(const char *name, float v);
void kh_attr_str(const char *name, const char *s);
void kh_attr_ints(const char *name, int64_t *v, size_t n);
void kh_attr_floats(const char *name, float *v, size_t n);
void kh_attr_strs(const char *name, const char **v, size_t n);
/* Finds the node's reference kernel and runs it on kh_in/kh_out. */
mixrt_status kh_run(void);
/* Releases the outputs and the graph. */
void kh_end(void);

/* Tensors owned by the caller (release with mixrt_tensor_release); v may be NULL (zeros). */
struct mixrt_tensor kh_tensor(mixrt_dtype dt, int rank, const int64_t *dims, const double *v);
struct mixrt_tensor kh_tensor_ints(mixrt_dtype dt, int rank, const int64_t *dims, const int64_t *v);
struct mixrt_tensor kh_tensor_str(int rank, const int64_t *dims, const char **s);

#endif
