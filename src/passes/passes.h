/* passes.h - graph passes over the IR (src/ir/graph.h) that the precision planner runs
 * before choosing kernels: constant folding, shape-subgraph folding, dead-code
 * elimination, Cast elimination and Conv+BatchNormalization folding. Each pass leaves
 * g->nodes, g->order and value producers consistent, so the graph still toposorts and
 * runs with the reference executor. Only the main graph is rewritten; subgraph bodies
 * are left as they are (their outer-scope uses are respected). */
#ifndef MIXRT_PASSES_PASSES_H
#define MIXRT_PASSES_PASSES_H

#include "ir/graph.h"

enum mixrt_pass_flags {
    MIXRT_PASS_CONST_FOLD = 1u << 0, /* nodes with only constant inputs become constants; a
                                      * ScatterND of constant box indices slices + Concat; Loops of
                                      * a constant trip count unrolled, Ifs of a constant condition
                                      * inlined, reads of sequences whose elements are known made
                                      * direct (unroll_loop.c) */
    MIXRT_PASS_SHAPE_FOLD = 1u << 1, /* Shape/Size of statically known shapes become constants */
    MIXRT_PASS_DCE = 1u << 2,        /* nodes that reach no graph output are removed */
    MIXRT_PASS_CAST_ELIM = 1u << 3,  /* no-op Casts and lossless A->B->A Cast pairs removed; Transposes
                                      * that only move axes of size 1 become Reshapes, ReduceMean
                                      * over H, W GlobalAveragePool */
    MIXRT_PASS_CONV_BN = 1u << 4,    /* inference BatchNormalization folded into its Conv */
    /* Fusions into com.mixrt ops (MIXRT_DOMAIN): GELU and LayerNorm patterns, MatMul with
     * bias, activation and residual, attention (fuse_transformer.c); Conv with bias,
     * activation and residual (fuse_conv.c). */
    MIXRT_PASS_FUSE_TRANSFORMER = 1u << 5,
    MIXRT_PASS_FUSE_CONV = 1u << 6,
    /* Activations kept in the layout the fast conv kernels want, transposes only at the
     * edges (fuse_conv.c). */
    MIXRT_PASS_LAYOUT = 1u << 7,
    /* MatMul/Softmax/MatMul (with scale, mask and the head transposes) → com.mixrt
     * Attention (fuse_attention.c). */
    MIXRT_PASS_FUSE_ATTENTION = 1u << 8,
    /* Chains of element-wise float ops (single-reader intermediates, scalar or full-shape
     * operands) → com.mixrt ElementwiseChain (fuse_eltwise.c). CPU kernels only. */
    MIXRT_PASS_FUSE_ELTWISE = 1u << 9,
    /* Two-operand Einsums that are batched matrix products → Transpose + MatMul + Transpose
     * (lower_einsum.c). */
    MIXRT_PASS_LOWER_EINSUM = 1u << 10,
    MIXRT_PASS_ALL = 0x7ffu,
    /* Products of one activation by constant weights → one product and a Split
     * (merge_matmul.c). Not in MIXRT_PASS_ALL: CUDA engines ask for it (the Split runs as
     * views there); on the CPU the Split would be a copy. */
    MIXRT_PASS_MERGE_MATMUL = 1u << 11,
    /* What only the CPU's conv kernels take (fuse_conv.c): Gelu as a FusedConv activation,
     * channels-last regions of 1-D convolutions (with their InstanceNormalization, Gelu and
     * per-channel Mul/Add) and of 3-D ones. Not in MIXRT_PASS_ALL: CUDA's conv kernels refuse both. */
    MIXRT_PASS_CONV_CPU = 1u << 12,
    /* Decomposed RMSNorm (Llama, Mistral, Qwen2, T5) -> com.mixrt RMSNormalization
     * (fuse_transformer.c). Not in MIXRT_PASS_ALL: CPU kernels only (CUDA runs the pieces). */
    MIXRT_PASS_RMSNORM = 1u << 13,
    /* Attention may take a second additive mask (input 4; fuse_attention.c): Swin's shifted
     * windows keep their position bias and window mask apart instead of one whole-scores
     * constant. Not in MIXRT_PASS_ALL: CPU kernels only. */
    MIXRT_PASS_ATTN_MASK2 = 1u << 14,
    /* A Transpose read only by a float Cast -> com.mixrt TransposeCast (passes.c), after the
     * precision planner placed the Cast. Not in MIXRT_PASS_ALL: CPU kernels only. */
    MIXRT_PASS_TRANSPOSE_CAST = 1u << 15,
    /* Inverted-residual blocks (expand 1x1, depthwise, project 1x1) of bf16 FusedConvs as one
     * com.mixrt FusedMBConv (fuse_conv.c), after the precision planner placed them in bf16. Not in
     * MIXRT_PASS_ALL: CPU engines on CPUs with AVX512-BF16 only. */
    MIXRT_PASS_MBCONV = 1u << 16,
    /* An image's first conv (at most 4 input channels) and the channels-last MaxPool that alone
     * reads it as one com.mixrt FusedConvMaxPool (fuse_conv.c), after the precision planner. Not
     * in MIXRT_PASS_ALL: CPU engines on CPUs with AVX-512 only (stem_pool_nhwc's). */
    MIXRT_PASS_STEM_POOL = 1u << 17,
    /* Channels-last 1x1 convs of one input → one conv and a Split (merge_matmul.c). Not in
     * MIXRT_PASS_ALL: CPU engines only (the CUDA backend runs its convs through cuDNN apart). */
    MIXRT_PASS_MERGE_CONV = 1u << 18,
    /* Internal (mixrt_passes_run sets it for its first round): 3-D pools are left whole, so the
     * layout pass may take them into a channels-last 3-D region; the next round splits the rest. */
    MIXRT_PASS_DEFER_POOL3D = 1u << 30,
};

/* Nodes each pass removed (summed over the fixed-point iterations). */
struct mixrt_pass_stats {
    int const_folded;
    int shape_folded;
    int dead_removed;
    int casts_removed;
    int canonicalized; /* Transposes moving only axes of size 1 made Reshapes, ReduceMean over H, W
                        * made GlobalAveragePool */
    int conv_bn_folded;
    int transformer_fused;
    int conv_fused;
    int layout_changed;
    int attention_fused;
    int eltwise_fused; /* nodes absorbed into ElementwiseChain nodes */
    int einsum_lowered;
    int matmul_merged; /* products merged into another */
    int conv_merged;   /* 1x1 convs merged into another */
    int loops_unrolled; /* Loops unrolled, Ifs inlined and sequence reads made direct */
};

/* Outputs larger than this are not folded into constants (they would bloat the model)... */
#define MIXRT_PASS_FOLD_MAX_BYTES ((size_t)64 << 20)
/* ...but up to this the indices a ScatterND reads alone, and the values only they read: a box
 * of them becomes slices (TorchScript MViT-v2-S: 629 MB of indices in one block, made by four
 * Expands of 157 MB). */
#define MIXRT_PASS_FOLD_INDEX_MAX_BYTES ((size_t)1 << 30)
/* ...and except those of ops that only move their input's elements (Transpose, Reshape, Cast to
 * a narrower or equal type, ...) into an output no larger than it, up to this: a tied LM
 * head's Transpose of the embedding table (GPT-2: 154 MB) is otherwise redone every run. */
#define MIXRT_PASS_FOLD_MOVE_MAX_BYTES ((size_t)2 << 30)

/* Runs the passes selected by flags over g until nothing changes. stats (may be NULL)
 * receives the counts, zeroed first. Fails only on out-of-memory or when the graph no
 * longer sorts (an internal error: the message names the node). */
mixrt_status mixrt_passes_run(struct mixrt_graph *g, unsigned flags, struct mixrt_pass_stats *stats);

#endif /* MIXRT_PASSES_PASSES_H */
