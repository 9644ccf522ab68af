"""ConvNeXt-Tiny (torchvision's convnext_tiny layout and layer names) as torch.onnx.export
writes it at opset 17 in eval mode: stem Conv 4x4 stride 4 (no pads) to 96 channels and a
LayerNorm2d; stages of [3, 3, 9, 3] blocks at [96, 192, 384, 768] channels with a downsample
(LayerNorm2d, Conv 2x2 stride 2, no pads) before stages 2-4. LayerNorm2d is exported as
Transpose(0,2,3,1) -> LayerNormalization(axis -1, eps 1e-6) -> Transpose(0,3,1,2). A block
(CNBlock) is depthwise Conv 7x7 (pads 3, group = channels) -> Transpose(0,2,3,1) ->
LayerNormalization -> Linear 4x as MatMul + Add -> GELU as Div/Erf/Add/Mul/Mul -> Linear back ->
Transpose(0,3,1,2) -> Mul by the layer scale [C,1,1] (torchvision multiplies after the permute
back) -> Add of the block's input. Head: GlobalAveragePool (torch's export of
AdaptiveAvgPool2d(1)) -> LayerNorm2d on [1,768,1,1] -> Flatten -> Gemm 1000. Stochastic depth
is the identity in eval mode and is not exported.

Weights are variance-preserving (not torchvision's trunc-normal std 0.02 init, which makes
every branch vanish) and the layer scales look trained: U(0.1, 0.5) per channel instead of the
1e-6 init, so each branch adds a visible part to the residual stream (branch rms ~0.2 of the
stream's). LayerNorm keeps each block's input O(1); on the seeded input (NumPy forward pass) the
stream's rms is 1.0 after each downsample and 1.04-1.18 at a stage's end, the logits' 1.0."""
import numpy as np
from onnx import TensorProto

import tfm
import zoo_lib as z

DEPTHS, DIMS, CLASSES, IMG = [3, 3, 9, 3], [96, 192, 384, 768], 1000, 224
EPS = 1e-6


def layer_norm(g, x, n, name):
    """LayerNormalization over the last axis with trained-looking affine parameters."""
    gamma = (1.0 + g.normal((n,), 0.1)).astype(np.float32)
    beta = g.normal((n,), 0.05)
    return g.op("LayerNormalization", [x, g.init(name + ".weight", gamma), g.init(name + ".bias", beta)],
                axis=-1, epsilon=EPS)


def layer_norm2d(g, x, n, scope, name):
    """torchvision's LayerNorm2d: permute to NHWC, layer_norm over C, permute back."""
    with g.scope(scope):
        x = g.op("Transpose", [x], perm=[0, 2, 3, 1])
        x = layer_norm(g, x, n, name)
        return g.op("Transpose", [x], perm=[0, 3, 1, 2])


def conv(g, x, cin, cout, k, stride, pad, group, name):
    fan_in = cin // group * k * k
    w = g.normal((cout, cin // group, k, k), np.sqrt(1.0 / fan_in))
    return g.op("Conv", [x, g.init(name + ".weight", w), g.init(name + ".bias", g.uniform((cout,), 0.02))],
                dilations=[1, 1], group=group, kernel_shape=[k, k], pads=[pad] * 4, strides=[stride, stride])


def linear(g, x, n_in, n_out, name, bias):
    """nn.Linear on a 4-D tensor as torch exports it: MatMul with the transposed [in, out]
    weight, then Add(bias, product)."""
    w = g.normal((n_in, n_out), np.sqrt(1.0 / n_in))
    y = g.op("MatMul", [x, g.init("onnx::MatMul_" + name, w)])
    return g.op("Add", [g.init(name + ".bias", g.uniform((n_out,), bias)), y])


def block(g, x, dim, name):
    """CNBlock: x + layer_scale * permute_back(fc2(gelu(fc1(ln(permute(dwconv7(x)))))))."""
    with g.scope("block"):
        with g.scope("block.0"):
            h = conv(g, x, dim, dim, 7, 1, 3, dim, name + ".block.0")
        with g.scope("block.1"):
            h = g.op("Transpose", [h], perm=[0, 2, 3, 1])
        with g.scope("block.2"):
            h = layer_norm(g, h, dim, name + ".block.2")
        with g.scope("block.3"):
            h = linear(g, h, dim, 4 * dim, name + ".block.3", 0.1)
        with g.scope("block.4"):
            h = tfm.gelu_erf(g, h)
        with g.scope("block.5"):
            h = linear(g, h, 4 * dim, dim, name + ".block.5", 0.02)
        with g.scope("block.6"):
            h = g.op("Transpose", [h], perm=[0, 3, 1, 2])
    scale = g.rng.uniform(0.1, 0.5, (dim, 1, 1)).astype(np.float32)
    h = g.op("Mul", [g.init(name + ".layer_scale", scale), h])
    return g.op("Add", [h, x])


def build(seed):
    g = z.Graph("convnext_tiny", seed)
    x = g.input("input", TensorProto.FLOAT, [1, 3, IMG, IMG])
    with g.scope("features"):
        with g.scope("features.0"):
            with g.scope("features.0.0"):
                y = conv(g, x, 3, DIMS[0], 4, 4, 0, 1, "features.0.0")
            y = layer_norm2d(g, y, DIMS[0], "features.0.1", "features.0.1")
        idx = 1
        for s, (depth, dim) in enumerate(zip(DEPTHS, DIMS)):
            if s > 0:
                with g.scope("features.%d" % idx):
                    y = layer_norm2d(g, y, DIMS[s - 1], "features.%d.0" % idx, "features.%d.0" % idx)
                    with g.scope("features.%d.1" % idx):
                        y = conv(g, y, DIMS[s - 1], dim, 2, 2, 0, 1, "features.%d.1" % idx)
                idx += 1
            with g.scope("features.%d" % idx):
                for i in range(depth):
                    m = "features.%d.%d" % (idx, i)
                    with g.scope(m):
                        y = block(g, y, dim, m)
            idx += 1
    with g.scope("avgpool"):
        y = g.op("GlobalAveragePool", [y])
    with g.scope("classifier"):
        y = layer_norm2d(g, y, DIMS[-1], "classifier.0", "classifier.0")
        with g.scope("classifier.1"):
            y = g.op("Flatten", [y], axis=1)
        with g.scope("classifier.2"):
            w = g.normal((CLASSES, DIMS[-1]), np.sqrt(1.0 / DIMS[-1]))
            b = g.uniform((CLASSES,), 0.02)
            y = g.op("Gemm", [y, g.init("classifier.2.weight", w), g.init("classifier.2.bias", b)], alpha=1.0,
                     beta=1.0, transB=1)
    g.output(y, "output", TensorProto.FLOAT, [1, CLASSES])
    inputs = {"input": np.random.default_rng(seed + 1).standard_normal((1, 3, IMG, IMG), dtype=np.float32)}
    return g, inputs
