"""ResNet-50 v1.5 (torchvision layout) as torch.onnx.export writes it with BatchNorm kept
(training=PRESERVE): Conv(no bias) + BatchNormalization + Relu, MaxPool, 16 bottlenecks
with Add, GlobalAveragePool, Flatten, Gemm(transB=1). He-initialized convs; BatchNorm
running statistics are calibrated on a separate seeded 224x224 image by a NumPy forward
pass so every normalized activation is O(1); each bottleneck's last BatchNorm has a small
gamma (0.1-0.3) as in trained networks."""
import numpy as np
from onnx import TensorProto

import zoo_lib as z

CALIB = 224  # calibrate at full size: small images leave layer4 with 2x2 pixels, too few for per-channel statistics


def conv_bn(g, x, xc, cin, cout, k, stride, pad, relu, name, gamma_range=(0.5, 1.0)):
    with g.scope(name):
        w = g.normal((cout, cin, k, k), np.sqrt(2.0 / (cin * k * k)))
        wn = g.init(name + ".weight", w)
        y = g.op("Conv", [x, wn], kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4,
                 dilations=[1, 1], group=1)
        yc = z.np_conv2d(xc, w, stride=stride, pad=pad)
        mean = yc.mean(axis=(1, 2))
        var = yc.var(axis=(1, 2)) + 1e-3
        gamma = g.rng.uniform(*gamma_range, cout).astype(np.float32)
        beta = g.rng.uniform(-0.1, 0.1, cout).astype(np.float32)
        bn = [g.init(name + ".bn.weight", gamma), g.init(name + ".bn.bias", beta),
              g.init(name + ".bn.running_mean", mean), g.init(name + ".bn.running_var", var)]
        y = g.op("BatchNormalization", [y] + bn, epsilon=1e-5, momentum=0.9)
        yc = (yc - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5) * gamma[:, None, None] + beta[:, None, None]
        if relu:
            y = g.op("Relu", [y])
            yc = np.maximum(yc, 0)
    return y, yc.astype(np.float32)


def bottleneck(g, x, xc, cin, width, stride, name):
    cout = width * 4
    with g.scope(name):
        y, yc = conv_bn(g, x, xc, cin, width, 1, 1, 0, True, "conv1")
        y, yc = conv_bn(g, y, yc, width, width, 3, stride, 1, True, "conv2")
        # Small gammas on the last BatchNorm of a branch, as trained ResNets have them (and
        # torchvision's zero_init_residual starts them): with gamma ~ 1 each of the 16
        # blocks amplifies rounding error and a random ResNet-50 loses ~4 bits to it.
        y, yc = conv_bn(g, y, yc, width, cout, 1, 1, 0, False, "conv3", gamma_range=(0.1, 0.3))
        if stride != 1 or cin != cout:
            s, sc = conv_bn(g, x, xc, cin, cout, 1, stride, 0, False, "downsample")
        else:
            s, sc = x, xc
        y = g.op("Add", [y, s])
        y = g.op("Relu", [y])
    return y, np.maximum(yc + sc, 0)


def build(seed):
    g = z.Graph("resnet50", seed)
    x = g.input("input", TensorProto.FLOAT, [1, 3, 224, 224])
    xc = g.rng.standard_normal((3, CALIB, CALIB), dtype=np.float32)
    y, yc = conv_bn(g, x, xc, 3, 64, 7, 2, 3, True, "conv1")
    y = g.op("MaxPool", [y], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=0)
    yc = z.np_maxpool(yc, 3, 2, 1)
    cin = 64
    for li, (width, blocks, stride) in enumerate([(64, 3, 1), (128, 4, 2), (256, 6, 2), (512, 3, 2)]):
        for b in range(blocks):
            y, yc = bottleneck(g, y, yc, cin, width, stride if b == 0 else 1, "layer%d/layer%d.%d" % (li + 1, li + 1, b))
            cin = width * 4
    y = g.op("GlobalAveragePool", [y])
    y = g.op("Flatten", [y], axis=1)
    w = g.normal((1000, 2048), np.sqrt(1.0 / 2048))
    b = g.uniform((1000,), 0.02)
    y = g.op("Gemm", [y, g.init("fc.weight", w), g.init("fc.bias", b)], alpha=1.0, beta=1.0, transB=1)
    g.output(y, "output", TensorProto.FLOAT, [1, 1000])
    inputs = {"input": np.random.default_rng(seed + 1).standard_normal((1, 3, 224, 224), dtype=np.float32)}
    return g, inputs
