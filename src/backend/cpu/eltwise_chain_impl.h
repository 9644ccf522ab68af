/* eltwise_chain_impl.h - what the com.mixrt ElementwiseChain pass (src/passes/fuse_eltwise.c,
 * which holds the op's spec) and its two kernels (ref_eltwise_chain.c, eltwise_chain.c) share:
 * the stable step codes and the one validation both kernels run, so a malformed node (from
 * the pass, a plan or a fuzzer) is refused by name the same way everywhere. */
#ifndef MIXRT_BACKEND_CPU_ELTWISE_CHAIN_IMPL_H
#define MIXRT_BACKEND_CPU_ELTWISE_CHAIN_IMPL_H

#include "backend/cpu/ref.h"

/* Step codes of the 'ops' attribute. Stored in plans: the numbers never change, new codes
 * only go at the end. 0 is no step, so a zero-filled attribute is refused. */
enum mixrt_chain_op {
    MIXRT_CHAIN_INVALID = 0,
    MIXRT_CHAIN_ADD = 1, /* binary */
    MIXRT_CHAIN_SUB = 2,
    MIXRT_CHAIN_MUL = 3,
    MIXRT_CHAIN_DIV = 4,
    MIXRT_CHAIN_MAX = 5,
    MIXRT_CHAIN_MIN = 6,
    MIXRT_CHAIN_RELU = 7, /* unary */
    MIXRT_CHAIN_LEAKY_RELU = 8,
    MIXRT_CHAIN_SIGMOID = 9,
    MIXRT_CHAIN_TANH = 10,
    MIXRT_CHAIN_ERF = 11,
    MIXRT_CHAIN_EXP = 12,
    MIXRT_CHAIN_SQRT = 13,
    MIXRT_CHAIN_RECIPROCAL = 14,
    MIXRT_CHAIN_NEG = 15,
    MIXRT_CHAIN_ABS = 16,
    MIXRT_CHAIN_CLIP = 17,
    MIXRT_CHAIN_HARD_SIGMOID = 18,
    MIXRT_CHAIN_HARD_SWISH = 19,
    MIXRT_CHAIN_SOFTPLUS = 20,
    MIXRT_CHAIN_GELU = 21,
    MIXRT_CHAIN_GELU_TANH = 22,
    MIXRT_CHAIN_COUNT
};

static inline bool mixrt_chain_op_binary(int64_t op) { return op >= MIXRT_CHAIN_ADD && op <= MIXRT_CHAIN_MIN; }

/* Steps one node may hold (the pass splits longer chains). */
#define MIXRT_CHAIN_MAX_STEPS 64

/* One step: operand is the input index of a binary step's other side (0 for unary steps);
 * swapped: that operand is the left side. p: alpha, beta, lo, hi. */
struct mixrt_chain_step {
    enum mixrt_chain_op op;
    int operand;
    bool swapped;
    float p[4];
};

struct mixrt_chain {
    int n;
    struct mixrt_chain_step s[MIXRT_CHAIN_MAX_STEPS];
};

/* Parses and checks the node's attributes against n_inputs inputs (no tensors): false with
 * a reason in why (may be NULL). For supports() and as the first half of the kernel check. */
bool mixrt_chain_parse_attrs(const struct mixrt_node *n, int n_inputs, struct mixrt_chain *c, char *why,
                             size_t why_size);
/* The kernels' check: attributes (INVALID_MODEL naming the attribute), every input present,
 * of X0's float dtype, each operand X0's shape, one element or a vector along X0's last axis
 * (mixrt_chain_last_axis), of rank <= X0's. Messages on the context name the node and input.
 * ref_eltwise_chain.c. */
mixrt_status mixrt_chain_check(struct mixrt_kernel_ctx *k, struct mixrt_chain *c);
/* Operand t is a vector along x's last axis: [1, ..., 1, C], rank <= x's, C > 1 x's last dim;
 * element i of the chain reads t[i % C]. */
bool mixrt_chain_last_axis(const struct mixrt_tensor *t, const struct mixrt_tensor *x);

#endif /* MIXRT_BACKEND_CPU_ELTWISE_CHAIN_IMPL_H */
