"""GoogLeNet (torchvision's googlenet layout, no auxiliary heads) as torch.onnx.export writes it
in eval mode: BatchNorm folded into each Conv's weights and bias, ReLU, MaxPool with ceil_mode,
nine Inception blocks of four branches (1x1; 1x1 -> 3x3; 1x1 -> 3x3; 3x3 max pool -> 1x1)
joined by a channel Concat, GlobalAveragePool, Flatten and Gemm. A third-party family whose
{fp32,bf16} engine sat just over 0.5 of ONNX Runtime's f32 (0.518-0.545, sessions 53-62), the
Concats being the largest share left (0.27 ms of 5.3, scripts/ort_layers.py in session 62).
The BatchNorms are calibrated on a seeded image (as mobilenetv2.py's, with a smaller shift)."""
import numpy as np
from onnx import TensorProto

import zoo_lib as z
from mobilenetv2 import CALIB

BETA = 6.0


def conv(g, x, xc, cin, cout, k, stride, name):
    """A folded conv + ReLU (torchvision's BasicConv2d), padding k // 2. The calibrated shift is
    large (beta ~ U(0, BETA) gamma, most of a channel passes its ReLU): with random weights and
    no residual path, bf16's error grows along the 22 layers, and the output's check read 5.7e-2
    at BETA 0.5, 3.4e-2 at 1.5, 2.3e-2 at 3 and 1.7e-2 at 6 (trained GoogLeNets stay near 1e-2).
    The work per layer does not depend on it."""
    with g.scope(name):
        fan_in = cin * k * k
        w = g.normal((cout, cin, k, k), np.sqrt(2.0 / fan_in))
        yc = z.np_conv2d(xc, w, stride=stride, pad=k // 2)
        mean, std = yc.mean(axis=(1, 2)), np.sqrt(yc.var(axis=(1, 2)) + 1e-3)
        gamma = g.rng.uniform(0.5, 1.5, cout).astype(np.float32)
        beta = (g.rng.uniform(0.0, BETA, cout) * gamma).astype(np.float32)
        scale = gamma / std
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        bf = (beta - mean * scale).astype(np.float32)
        y = g.op("Conv", [x, g.init(name + ".weight", wf), g.init(name + ".bias", bf)], kernel_shape=[k, k],
                 strides=[stride, stride], pads=[k // 2] * 4, dilations=[1, 1], group=1)
        y = g.op("Relu", [y])
        yc = np.maximum(yc * scale[:, None, None] + bf[:, None, None], 0)
    return y, yc.astype(np.float32)


def maxpool(g, x, xc, k, stride, pad, ceil):
    """MaxPool; ceil_mode pads the calibration image's far edges so its shape follows."""
    y = g.op("MaxPool", [x], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, ceil_mode=int(ceil))
    if ceil:
        h = xc.shape[1]
        out = -(-(h + 2 * pad - k) // stride) + 1
        if (out - 1) * stride >= h + pad:  # torch's rule: the last window starts inside
            out -= 1
        extra = (out - 1) * stride + k - (h + 2 * pad)
        if extra > 0:
            xc = np.pad(xc, ((0, 0), (0, extra), (0, extra)), constant_values=-np.inf)
    return y, z.np_maxpool(xc, k, stride, pad)


def inception(g, x, xc, cin, c1, c3r, c3, c5r, c5, cp, name):
    with g.scope(name):
        b1, b1c = conv(g, x, xc, cin, c1, 1, 1, "branch1")
        b2, b2c = conv(g, x, xc, cin, c3r, 1, 1, "branch2.0")
        b2, b2c = conv(g, b2, b2c, c3r, c3, 3, 1, "branch2.1")
        b3, b3c = conv(g, x, xc, cin, c5r, 1, 1, "branch3.0")
        b3, b3c = conv(g, b3, b3c, c5r, c5, 3, 1, "branch3.1")  # torchvision's 3x3 here
        b4, b4c = maxpool(g, x, xc, 3, 1, 1, True)
        b4, b4c = conv(g, b4, b4c, cin, cp, 1, 1, "branch4.1")
        y = g.op("Concat", [b1, b2, b3, b4], axis=1)
    return y, np.concatenate([b1c, b2c, b3c, b4c], axis=0), c1 + c3 + c5 + cp


def build(seed):
    g = z.Graph("googlenet", seed)
    x = g.input("input", TensorProto.FLOAT, [1, 3, 224, 224])
    xc = g.rng.standard_normal((3, CALIB, CALIB), dtype=np.float32)
    y, yc = conv(g, x, xc, 3, 64, 7, 2, "conv1")
    y, yc = maxpool(g, y, yc, 3, 2, 0, True)
    y, yc = conv(g, y, yc, 64, 64, 1, 1, "conv2")
    y, yc = conv(g, y, yc, 64, 192, 3, 1, "conv3")
    y, yc = maxpool(g, y, yc, 3, 2, 0, True)
    c = 192
    blocks = [("inception3a", (64, 96, 128, 16, 32, 32)), ("inception3b", (128, 128, 192, 32, 96, 64)), None,
              ("inception4a", (192, 96, 208, 16, 48, 64)), ("inception4b", (160, 112, 224, 24, 64, 64)),
              ("inception4c", (128, 128, 256, 24, 64, 64)), ("inception4d", (112, 144, 288, 32, 64, 64)),
              ("inception4e", (256, 160, 320, 32, 128, 128)), "pool2",
              ("inception5a", (256, 160, 320, 32, 128, 128)), ("inception5b", (384, 192, 384, 48, 128, 128))]
    for b in blocks:
        if b is None:
            y, yc = maxpool(g, y, yc, 3, 2, 0, True)
        elif b == "pool2":
            y, yc = maxpool(g, y, yc, 2, 2, 0, True)
        else:
            y, yc, c = inception(g, y, yc, c, *b[1], b[0])
    y = g.op("GlobalAveragePool", [y])
    y = g.op("Flatten", [y], axis=1)
    w = g.normal((1000, c), np.sqrt(1.0 / c))
    bias = g.uniform((1000,), 0.02)
    with g.scope("fc"):
        y = g.op("Gemm", [y, g.init("fc.weight", w), g.init("fc.bias", bias)], alpha=1.0, beta=1.0, transB=1)
    g.output(y, "output", TensorProto.FLOAT, [1, 1000])
    inputs = {"input": np.random.default_rng(seed + 1).standard_normal((1, 3, 224, 224), dtype=np.float32)}
    return g, inputs
