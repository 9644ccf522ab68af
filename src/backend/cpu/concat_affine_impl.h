/* concat_affine_impl.h - private to the com.mixrt ConcatAffine kernels (ref_concat_affine.c: the
 * reference and the shared check; concat_affine.c: the fast kernel).
 *
 * com.mixrt ConcatAffine, opset 1 (MIXRT_DOMAIN): a channel Concat of channels-last tensors
 * with the per-channel affine and activation that read it (fuse_conv.c: DenseNet's BatchNorm +
 * ReLU after each Concat, made a depthwise 1x1 conv), in one pass and without the Concat's
 * output.
 *   inputs:  S (T2: float, [C]), B (T2: float, [C]), X1..Xk (T: float, k >= 1, rank r >= 1,
 *            equal dims but the last; C the sum of their last dims).
 *   attributes: activation, activation_params (FusedConv's: "", Relu, Clip [min, max],
 *            LeakyRelu [alpha], Sigmoid, HardSwish, SiLU, Tanh, Gelu, GeluTanh).
 *   output:  Y (T, X1's dims with the last C): Y[..., c] = act(Concat(X, axis -1)[..., c] * S[c] + B[c]). */
#ifndef MIXRT_BACKEND_CPU_CONCAT_AFFINE_IMPL_H
#define MIXRT_BACKEND_CPU_CONCAT_AFFINE_IMPL_H

#include "backend/cpu/fused_conv_impl.h"
#include "backend/cpu/ref.h"

/* Checks node k's inputs and attributes (INVALID_MODEL naming the input or attribute): *C the
 * output's last dim, *rows the product of the other dims, the activation and its parameters;
 * the output made (X1's dtype) in *y, not zeroed: both kernels write every element of it. */
mixrt_status mixrt_concat_affine_check(struct mixrt_kernel_ctx *k, int64_t *C, size_t *rows, enum mixrt_fconv_act *act,
                                       float *p0, float *p1, struct mixrt_tensor **y);

/* Tests: round bf16 by integer arithmetic even on AVX512-BF16 CPUs; take the staged path (f32
 * blocks, the element-wise activation) for every activation. */
void mixrt_concat_affine_force(bool int_bf16, bool staged);

#endif /* MIXRT_BACKEND_CPU_CONCAT_AFFINE_IMPL_H */
