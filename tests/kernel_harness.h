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
/* Runs fn (any kernel with the reference contract) on kh_in/kh_out with k->state = state. */
mixrt_status kh_run_kernel(mixrt_kernel_fn fn, void *state);
/* Releases the outputs and the graph. */
void kh_end(void);

/* Tensors owned by the caller (release with mixrt_tensor_release); v may be NULL (zeros). */
struct mixrt_tensor kh_tensor(mixrt_dtype dt, int rank, const int64_t *dims, const double *v);
struct mixrt_tensor kh_tensor_ints(mixrt_dtype dt, int rank, const int64_t *dims, const int64_t *v);
struct mixrt_tensor kh_tensor_str(int rank, const int64_t *dims, const char **s);



/* ---- cases as values: several may be alive at once, inputs are owned heap tensors ---- */

/* A context whose allocator refuses single allocations over byte_cap bytes (0: no cap), so
 * huge (but not overflowing) sizes fail cleanly as OUT_OF_MEMORY, also under ASan. */
mixrt_status kh_ctx_create(size_t byte_cap, mixrt_context_t *out);

#define KH_CASE_MAX_IO 8
struct kh_case {
    struct mixrt_graph *g;
    struct mixrt_node *n;
    int n_in, n_out;
    const struct mixrt_tensor *in[KH_CASE_MAX_IO];
    struct mixrt_tensor *owned[KH_CASE_MAX_IO];
    struct mixrt_tensor out[KH_CASE_MAX_IO];
    struct mixrt_seq out_seq[KH_CASE_MAX_IO];
    bool out_is_seq[KH_CASE_MAX_IO], out_wanted[KH_CASE_MAX_IO];
};
/* Names of inputs 0.. of kh_case_begin's node (KH_CASE_MAX_IO entries); NULL: "in0", "in1", ... */
extern const char *const *kh_case_input_names;
/* Input 0 as a sequence for kh_case_run (NULL: none). */
extern const struct mixrt_seq *kh_case_seq_in0;

/* Builds node "node_under_test" (aborts if the graph cannot be built: test setup, not input). */
void kh_case_begin(struct kh_case *t, const char *op, int64_t opset, int n_in, int n_out);
struct mixrt_attr *kh_case_attr(struct kh_case *t, const char *name, enum mixrt_attr_type type);
void kh_case_attr_int(struct kh_case *t, const char *name, int64_t v);
void kh_case_attr_float(struct kh_case *t, const char *name, float v);
void kh_case_attr_str(struct kh_case *t, const char *name, const char *s);
/* Copies v into the graph's arena. */
void kh_case_attr_ints(struct kh_case *t, const char *name, size_t n, const int64_t *v);
/* Sets input i to x, which the case then owns; x NULL makes input i absent. */
void kh_case_in(struct kh_case *t, int i, struct mixrt_tensor *x);
mixrt_status kh_case_run(struct kh_case *t);
/* Destroys the owned inputs, the outputs and the graph. */
void kh_case_end(struct kh_case *t);
/* A heap tensor (aborts on allocation failure); v may be NULL (zeros). */
struct mixrt_tensor *kh_new_tensor(mixrt_dtype dt, int rank, const int64_t *dims, const double *v);

/* One check that o has the given dims (returns whether it has). */
bool kh_check_dims(const char *what, const struct mixrt_tensor *o, int rank, const int64_t *dims);
/* Checks that st is want and the context's message names "node_under_test" (2 checks) and, if
 * needle is not NULL, contains needle (1 more). */
void kh_case_check_error(const char *what, mixrt_status st, mixrt_status want, const char *needle);

/* n bytes placed against a PROT_NONE page, ending at it (at_end) or starting right after one, for
 * kernels that must not read or write outside their tensors; release with kh_guard_free. */
struct kh_guarded {
    void *map, *p;
    size_t map_size;
};
bool kh_guard_alloc(struct kh_guarded *gd, size_t n, bool at_end);
/* A view (borrowed) of t whose data lies in a guarded copy made by kh_guard_alloc. */
struct mixrt_tensor kh_guarded_copy(const struct mixrt_tensor *t, struct kh_guarded *gd, bool at_end);
void kh_guard_free(struct kh_guarded *gd);

/* Writes g as an ONNX model to path (one check; false when export or the write failed). */
bool kh_export_model(mixrt_context_t ctx, const struct mixrt_graph *g, const char *path);

#endif
