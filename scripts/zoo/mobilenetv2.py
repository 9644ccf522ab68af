"""MobileNetV2 (torchvision layout) as torch.onnx.export writes it in eval mode: BatchNorm
folded into Conv weights and bias, ReLU6 as Clip with Constant min/max inputs, depthwise
3x3 convs (group = channels), inverted residuals with Add, GlobalAveragePool, Flatten,
Gemm. The folded BatchNorm is calibrated on a separate seeded 224x224 image by a NumPy forward pass
so activations stay O(1).

The BatchNorm parameters look like a trained network's rather than an initialization's:
before each ReLU6 beta is positive (0.25-1.5 gamma), so most of a channel's pre-activations
pass (~79%; a few, ~0.03%, reach the clip at 6); each residual branch's linear projection has a small gamma
(0.2-0.5), so the branch adds a modest part to the skip path. With beta ~ 0 every ReLU6 cuts
its input in half and the next BatchNorm removes the output's mean but not the mean's rounding
error: each of the 35 ReLU6 stages then multiplied the relative error by ~1.2 (2^-9 bf16
rounding became 5% at the logits; now 0.4%)."""
import numpy as np
from onnx import TensorProto

import zoo_lib as z

CALIB = 224


def conv(g, x, xc, cin, cout, k, stride, group, relu6, name, gamma_range=(0.5, 1.0), relu=False):
    """relu6: an activation follows (Clip(0, 6), or Relu where relu is set: mnasnet.py)."""
    with g.scope(name):
        fan_in = cin // group * k * k
        w = g.normal((cout, cin // group, k, k), np.sqrt(2.0 / fan_in))
        yc = z.np_conv2d(xc, w, stride=stride, pad=k // 2, group=group)
        # Fold a calibrated BatchNorm into the conv. Before a ReLU6: gamma ~ U(0.5, 1.5) and
        # beta ~ U(0.25, 1.5) * gamma, so 60-93% of a channel passes (the error-growth per
        # stage, gamma * sqrt(share passed) / std(ReLU6 output), is ~1.2 for beta = 0 and
        # ~1.0-1.1 here). Linear layers (projections) keep a small beta.
        mean, std = yc.mean(axis=(1, 2)), np.sqrt(yc.var(axis=(1, 2)) + 1e-3)
        if relu6:
            gamma = g.rng.uniform(0.5, 1.5, cout).astype(np.float32)
            beta = (g.rng.uniform(0.25, 1.5, cout) * gamma).astype(np.float32)
        else:
            gamma = g.rng.uniform(*gamma_range, cout).astype(np.float32)
            beta = g.rng.uniform(-0.1, 0.1, cout).astype(np.float32)
        scale = gamma / std
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        bf = (beta - mean * scale).astype(np.float32)
        y = g.op("Conv", [x, g.init(name + ".weight", wf), g.init(name + ".bias", bf)], kernel_shape=[k, k],
                 strides=[stride, stride], pads=[k // 2] * 4, dilations=[1, 1], group=group)
        yc = yc * scale[:, None, None] + bf[:, None, None]
        if relu6 and relu:
            y = g.op("Relu", [y])
            yc = np.maximum(yc, 0)
        elif relu6:
            y = g.op("Clip", [y, g.scalar(0.0), g.scalar(6.0)])
            yc = np.clip(yc, 0, 6)
    return y, yc.astype(np.float32)


def build(seed):
    g = z.Graph("mobilenetv2", seed)
    x = g.input("input", TensorProto.FLOAT, [1, 3, 224, 224])
    xc = g.rng.standard_normal((3, CALIB, CALIB), dtype=np.float32)
    y, yc = conv(g, x, xc, 3, 32, 3, 2, 1, True, "features/features.0")
    cin, idx = 32, 1
    for t, c, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2),
                       (6, 320, 1, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            with g.scope("features/features.%d" % idx):
                h, hc = y, yc
                if t != 1:
                    h, hc = conv(g, h, hc, cin, hidden, 1, 1, 1, True, "conv.0")
                h, hc = conv(g, h, hc, hidden, hidden, 3, stride, hidden, True, "conv.1")
                residual = stride == 1 and cin == c
                # A residual branch adds a modest part to the skip path, as in trained nets.
                h, hc = conv(g, h, hc, hidden, c, 1, 1, 1, False, "conv.2",
                             gamma_range=(0.2, 0.5) if residual else (0.5, 1.0))
                if residual:
                    h = g.op("Add", [y, h])
                    hc = hc + yc
            y, yc, cin, idx = h, hc, c, idx + 1
    y, yc = conv(g, y, yc, 320, 1280, 1, 1, 1, True, "features/features.18")
    y = g.op("GlobalAveragePool", [y])
    y = g.op("Flatten", [y], axis=1)
    return classifier(g, y, seed)


def classifier(g, y, seed):
    """The 1280 -> 1000 Gemm head on pooled features y, the graph output, and the seeded input."""
    w = g.normal((1000, 1280), np.sqrt(1.0 / 1280))
    b = g.uniform((1000,), 0.02)
    with g.scope("classifier/classifier.1"):
        y = g.op("Gemm", [y, g.init("classifier.1.weight", w), g.init("classifier.1.bias", b)], alpha=1.0,
                 beta=1.0, transB=1)
    g.output(y, "output", TensorProto.FLOAT, [1, 1000])
    inputs = {"input": np.random.default_rng(seed + 1).standard_normal((1, 3, 224, 224), dtype=np.float32)}
    return g, inputs
