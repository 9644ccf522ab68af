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

/* The candidates for node n (any opset), ending with the reference kernel; *count set.
 * Never empty: the reference kernel is always last even when it has no kernel for the
 * node (then its supports() says so). */
const struct mixrt_cpu_kernel *const *mixrt_cpu_kernels_for(const struct mixrt_node *n, size_t *count);
/* The kernel named name that runs op (domain, op_type), or NULL. */
const struct mixrt_cpu_kernel *mixrt_cpu_kernel_find(const char *name, const char *domain, const char *op_type);

/* Per-family candidate tables (each ended by an entry with name NULL). */
extern const struct mixrt_cpu_kernel mixrt_dnnl_kernels[];    /* dnnl_*.c; empty without oneDNN */
extern const struct mixrt_cpu_kernel mixrt_eltwise_kernels[];  /* eltwise.c: element-wise ops and casts */
extern const struct mixrt_cpu_kernel mixrt_nnops_kernels[];    /* nnops.c: pooling, normalization, softmax */
extern const struct mixrt_cpu_kernel mixrt_datamove_kernels[]; /* datamove.c: Transpose, Gather, Concat, ... */
/* com.mixrt fused ops (fused_transformer.c, fused_conv.c) */
extern const struct mixrt_cpu_kernel mixrt_fused_transformer_kernels[];
extern const struct mixrt_cpu_kernel mixrt_dwconv_kernels[]; /* dwconv.c: depthwise channels-last FusedConv */
extern const struct mixrt_cpu_kernel mixrt_fused_conv_kernels[];
extern const struct mixrt_cpu_kernel mixrt_attention_kernels[]; /* attention.c */

#endif /* MIXRT_BACKEND_CPU_KERNELS_H */
