/* fused_conv_impl.h - what the conv fusion pass (src/passes/fuse_conv.c), the reference
 * kernels (ref_fused_conv.c) and the fast kernels (fused_conv.c) share about the com.mixrt ops
 * they agree on:
 *
 *   FusedConv(X, W, B?, Z?) -> Y = act(Conv(X, W) + B + Z)
 *     all ONNX Conv attributes (auto_pad, dilations, group, kernel_shape, pads, strides), plus
 *     activation         string: "" (none), Relu, Clip, LeakyRelu, Sigmoid, HardSwish, SiLU, Tanh,
 *                        Gelu (erf form), GeluTanh (tanh approximation)
 *     activation_params  floats: Clip [min, max], LeakyRelu [alpha]; ignored otherwise
 *     channels_last      int: 1 when X, Z and Y are [N, D1.., C] instead of [N, C, D1..];
 *                        W stays ONNX's [M, C/group, k1..]
 *     Z has exactly Y's shape (no broadcast).
 *   MaxPool(X), AveragePool(X), GlobalAveragePool(X): ONNX's ops (same attributes, MaxPool
 *     without the Indices output) on channels-last X and Y.
 *   InstanceNormalization(X, scale, bias) -> Y = act(ONNX's InstanceNormalization): channels-last
 *     X and Y (1-D regions); activation and activation_params as FusedConv's (absent: none), the
 *     pass folds a per-channel Mul / Add after the norm into scale and bias, then the activation.
 *
 * All are in MIXRT_DOMAIN at version 1. */
#ifndef MIXRT_BACKEND_CPU_FUSED_CONV_IMPL_H
#define MIXRT_BACKEND_CPU_FUSED_CONV_IMPL_H

#include <math.h>
#include <string.h>

#include "ir/graph.h"

enum mixrt_fconv_act {
    MIXRT_FCONV_NONE,
    MIXRT_FCONV_RELU,
    MIXRT_FCONV_CLIP,
    MIXRT_FCONV_LEAKY_RELU,
    MIXRT_FCONV_SIGMOID,
    MIXRT_FCONV_HARD_SWISH,
    MIXRT_FCONV_SILU,
    MIXRT_FCONV_TANH,
    MIXRT_FCONV_GELU,
    MIXRT_FCONV_GELU_TANH,
    MIXRT_FCONV_ACT_COUNT
};

static const char *const mixrt_fconv_act_names[] = {"", "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSwish", "SiLU",
                                                    "Tanh", "Gelu", "GeluTanh"};
_Static_assert(sizeof(mixrt_fconv_act_names) / sizeof(mixrt_fconv_act_names[0]) == MIXRT_FCONV_ACT_COUNT,
               "one name per activation");

/* The activation node n names in attribute act_attr and its two parameters from params_attr
 * (Clip: min, max; LeakyRelu: alpha). False when the name is unknown or the parameter count is
 * wrong. */
static inline bool mixrt_fconv_read_act_attrs(const struct mixrt_node *n, const char *act_attr, const char *params_attr,
                                              enum mixrt_fconv_act *act, float *p0, float *p1) {
    const char *name = mixrt_node_attr_string(n, act_attr, "");
    size_t np = 0;
    *act = MIXRT_FCONV_NONE, *p0 = 0.0f, *p1 = 0.0f;
    const float *p = mixrt_node_attr_floats(n, params_attr, &np);
    for (int a = 0; a < MIXRT_FCONV_ACT_COUNT; a++) {
        if (strcmp(name, mixrt_fconv_act_names[a])) continue;
        *act = (enum mixrt_fconv_act)a;
        *p0 = 0.0f, *p1 = 0.0f;
        if (a == MIXRT_FCONV_CLIP) {
            if (np != 2) return false;
            *p0 = p[0], *p1 = p[1];
        } else if (a == MIXRT_FCONV_LEAKY_RELU) {
            if (np != 1) return false;
            *p0 = p[0];
        }
        return true;
    }
    return false;
}

/* mbconv.c: whether mbconv_nhwc applies activation act itself in a block's depthwise stage
 * (depthwise) or in a 1x1 stage; the fusion pass asks it of each conv it fuses. */
bool mixrt_mbconv_act_ok(enum mixrt_fconv_act act, bool depthwise);

/* FusedConv's activation ("activation", "activation_params"). */
static inline bool mixrt_fconv_read_act(const struct mixrt_node *n, enum mixrt_fconv_act *act, float *p0, float *p1) {
    return mixrt_fconv_read_act_attrs(n, "activation", "activation_params", act, p0, p1);
}

/* FusedMatMul's activation, as mixrt_fmm_activation (kernels.h) indexes it (0 none, 1 relu,
 * 2 gelu, 3 gelu_tanh, 4 sigmoid, 5 tanh), as the FusedConv activation it means; false for
 * another index (an unknown name). */
static inline bool mixrt_fmm_fconv_act(int fmm_index, enum mixrt_fconv_act *act) {
    static const enum mixrt_fconv_act acts[] = {MIXRT_FCONV_NONE,      MIXRT_FCONV_RELU,    MIXRT_FCONV_GELU,
                                                MIXRT_FCONV_GELU_TANH, MIXRT_FCONV_SIGMOID, MIXRT_FCONV_TANH};
    if (fmm_index < 0 || fmm_index >= (int)(sizeof(acts) / sizeof(acts[0]))) return false;
    *act = acts[fmm_index];
    return true;
}

/* The activation in f64 (the reference's math; the ONNX definitions). */
static inline double mixrt_fconv_apply(enum mixrt_fconv_act act, double p0, double p1, double v) {
    switch (act) {
    case MIXRT_FCONV_RELU: return v > 0 ? v : 0.0;
    case MIXRT_FCONV_CLIP: return v < p0 ? p0 : v > p1 ? p1 : v;
    case MIXRT_FCONV_LEAKY_RELU: return v >= 0 ? v : p0 * v;
    case MIXRT_FCONV_SIGMOID: return 1.0 / (1.0 + exp(-v));
    case MIXRT_FCONV_HARD_SWISH: {
        double h = v / 6.0 + 0.5;
        return v * (h < 0 ? 0 : h > 1 ? 1 : h);
    }
    case MIXRT_FCONV_SILU: return v / (1.0 + exp(-v));
    case MIXRT_FCONV_TANH: return tanh(v);
    case MIXRT_FCONV_GELU: return 0.5 * v * (1.0 + erf(v * 0.70710678118654752440));
    case MIXRT_FCONV_GELU_TANH: return 0.5 * v * (1.0 + tanh(0.79788456080286535588 * (v + 0.044715 * v * v * v)));
    default: return v;
    }
}

/* A 2-D conv node's two attribute ints (strides or dilations) into v[2], each 1..64, 1 when
 * absent; false when malformed. */
static inline bool mixrt_fconv_two_ints(const struct mixrt_node *n, const char *name, int64_t *v) {
    size_t ns = 0;
    const int64_t *d = mixrt_node_attr_ints(n, name, &ns);
    if (d && ns != 2) return false;
    for (int i = 0; i < 2; i++) {
        v[i] = d ? d[i] : 1;
        if (v[i] < 1 || v[i] > 64) return false;
    }
    return true;
}

/* A 2-D conv node's explicit pads into p[4] (top, left, bottom, right; auto_pad NOTSET or VALID,
 * zeros when absent), each at most max; false when malformed, negative, over max or SAME. */
static inline bool mixrt_fconv_explicit_pads(const struct mixrt_node *n, int64_t *p, int64_t max) {
    size_t np = 0;
    const int64_t *pd = mixrt_node_attr_ints(n, "pads", &np);
    if (pd && np != 4) return false;
    const char *ap = mixrt_node_attr_string(n, "auto_pad", "NOTSET");
    if (ap[0] && strcmp(ap, "NOTSET") && strcmp(ap, "VALID")) return false;
    for (int i = 0; i < 4; i++) {
        p[i] = pd && strcmp(ap, "VALID") ? pd[i] : 0;
        if (p[i] < 0 || p[i] > max) return false;
    }
    return true;
}

#endif /* MIXRT_BACKEND_CPU_FUSED_CONV_IMPL_H */
