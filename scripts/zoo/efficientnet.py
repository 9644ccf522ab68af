"""EfficientNet-B0 (torchvision's efficientnet_b0 layout and layer names) as torch.onnx.export
writes it at opset 17 in eval mode: BatchNorm folded into Conv weights and bias, SiLU as
Sigmoid + Mul, MBConv blocks (expand 1x1, depthwise 3x3/5x5 with group = channels,
squeeze-excite as GlobalAveragePool -> Conv 1x1 -> SiLU -> Conv 1x1 -> Sigmoid -> Mul with
the block's activation, linear project 1x1, Add where stride 1 and same channels), head 1x1
to 1280, GlobalAveragePool, Flatten, Gemm 1000. Dropout and stochastic depth are identities
in eval mode and are not exported.

The folded BatchNorm is calibrated on a separate seeded 224x224 image by a NumPy forward pass
(as mobilenetv2.py does) so activations stay O(1) (the residual stream's rms is 0.83-1.09 on
the seeded input, the logits' 0.94) and the bf16 error stays meaningful. Before each SiLU
gamma ~ U(0.5, 1.5) and beta ~ U(0.25, 1.5) * gamma: most of a channel on SiLU's near-linear
side (beta ~ U(-1, 0) made the bf16 logits' error 55 %, U(-0.5, 0.5) 4 %, positive ranges
1.1-1.4 %). Each residual branch's projection has a small gamma (0.2-0.5). The squeeze-excite
convs are calibrated on the same image: fc1's pre-activations centred with unit spread, the
gate's logits with a per-block mean ~ U(0, 1) and unit spread over channels, so gates spread
over 0.28-0.86 (10th-90th percentile), as in trained nets, rather than all ~0.5 or saturated."""
import numpy as np
from onnx import TensorProto

import zoo_lib as z

CALIB = 224
# (expand ratio, kernel, stride, in channels, out channels, layers): torchvision's B0 table.
STAGES = [(1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
          (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1)]


def np_silu(x):
    return (x / (1.0 + np.exp(-x))).astype(np.float32)


def silu(g, x, scope):
    """nn.SiLU as torch exports it: Sigmoid then Mul(x, sigmoid)."""
    with g.scope(scope):
        s = g.op("Sigmoid", [x])
        return g.op("Mul", [x, s])


def conv_bn(g, x, xc, cin, cout, k, stride, group, act, scope, name, gamma_range=(0.5, 1.0)):
    """Conv2dNormActivation: conv (no bias) + BatchNorm folded, then SiLU when act. scope is the
    module's scope name as torch writes it ("block.0": the Conv is "block.0/block.0.0/Conv"),
    name its parameter path ("features.1.0.block.0")."""
    with g.scope(scope):
        fan_in = cin // group * k * k
        w = g.normal((cout, cin // group, k, k), np.sqrt(2.0 / fan_in))
        yc = z.np_conv2d(xc, w, stride=stride, pad=k // 2, group=group)
        mean, std = yc.mean(axis=(1, 2)), np.sqrt(yc.var(axis=(1, 2)) + 1e-3)
        if act:
            gamma = g.rng.uniform(0.5, 1.5, cout).astype(np.float32)
            beta = (g.rng.uniform(0.25, 1.5, cout) * gamma).astype(np.float32)
        else:
            gamma = g.rng.uniform(*gamma_range, cout).astype(np.float32)
            beta = g.rng.uniform(-0.1, 0.1, cout).astype(np.float32)
        scale = gamma / std
        wf = (w * scale[:, None, None, None]).astype(np.float32)
        bf = (beta - mean * scale).astype(np.float32)
        with g.scope(scope + ".0"):
            y = g.op("Conv", [x, g.init(name + ".0.weight", wf), g.init(name + ".0.bias", bf)], kernel_shape=[k, k],
                     strides=[stride, stride], pads=[k // 2] * 4, dilations=[1, 1], group=group)
        yc = yc * scale[:, None, None] + bf[:, None, None]
        if act:
            y = silu(g, y, scope + ".2")
            yc = np_silu(yc)
    return y, yc.astype(np.float32)


def squeeze_excite(g, x, xc, c, sq, scope, name):
    """torchvision's SqueezeExcitation: scale = sigmoid(fc2(silu(fc1(avgpool(x))))); scale * x."""
    with g.scope(scope):
        with g.scope("avgpool"):
            s = g.op("GlobalAveragePool", [x])
        sc = xc.mean(axis=(1, 2))
        # fc1: pre-activation centred with unit spread over the squeeze channels.
        w1 = g.normal((sq, c), np.sqrt(1.0 / c))
        h = w1 @ sc
        w1 = (w1 / (h.std() + 1e-3)).astype(np.float32)
        b1 = (g.rng.uniform(-0.1, 0.1, sq) - (w1 @ sc).mean()).astype(np.float32)
        with g.scope("fc1"):
            s = g.op("Conv", [s, g.init(name + ".fc1.weight", w1[:, :, None, None]), g.init(name + ".fc1.bias", b1)],
                     dilations=[1, 1], group=1, kernel_shape=[1, 1], pads=[0, 0, 0, 0], strides=[1, 1])
        s = silu(g, s, "activation")
        hc = np_silu(w1 @ sc + b1)
        # fc2: gate logits with mean U(0, 1) and unit spread over the channels.
        w2 = g.normal((c, sq), np.sqrt(1.0 / sq))
        t = w2 @ hc
        w2 = (w2 / (t.std() + 1e-3)).astype(np.float32)
        b2 = (g.rng.uniform(0.0, 1.0) - (w2 @ hc).mean() + g.rng.uniform(-0.1, 0.1, c)).astype(np.float32)
        with g.scope("fc2"):
            s = g.op("Conv", [s, g.init(name + ".fc2.weight", w2[:, :, None, None]), g.init(name + ".fc2.bias", b2)],
                     dilations=[1, 1], group=1, kernel_shape=[1, 1], pads=[0, 0, 0, 0], strides=[1, 1])
        with g.scope("scale_activation"):
            s = g.op("Sigmoid", [s])
        gate = 1.0 / (1.0 + np.exp(-(w2 @ hc + b2)))
        y = g.op("Mul", [s, x])
    return y, (xc * gate[:, None, None].astype(np.float32)).astype(np.float32)


def build(seed):
    g = z.Graph("efficientnet_b0", seed)
    x = g.input("input", TensorProto.FLOAT, [1, 3, 224, 224])
    xc = g.rng.standard_normal((3, CALIB, CALIB), dtype=np.float32)
    with g.scope("features"):
        y, yc = conv_bn(g, x, xc, 3, 32, 3, 2, 1, True, "features.0", "features.0")
        for si, (t, k, s, cin, cout, n) in enumerate(STAGES):
            for i in range(n):
                stride, c_in = (s, cin) if i == 0 else (1, cout)
                hidden, sq = c_in * t, max(1, c_in // 4)
                m = "features.%d.%d" % (si + 1, i)
                with g.scope("features.%d" % (si + 1)), g.scope(m), g.scope("block"):
                    h, hc, j = y, yc, 0
                    if t != 1:
                        h, hc = conv_bn(g, h, hc, c_in, hidden, 1, 1, 1, True, "block.%d" % j, "%s.block.%d" % (m, j))
                        j += 1
                    h, hc = conv_bn(g, h, hc, hidden, hidden, k, stride, hidden, True, "block.%d" % j,
                                    "%s.block.%d" % (m, j))
                    j += 1
                    h, hc = squeeze_excite(g, h, hc, hidden, sq, "block.%d" % j, "%s.block.%d" % (m, j))
                    j += 1
                    residual = stride == 1 and c_in == cout
                    # A residual branch adds a modest part to the skip path, as in trained nets.
                    h, hc = conv_bn(g, h, hc, hidden, cout, 1, 1, 1, False, "block.%d" % j, "%s.block.%d" % (m, j),
                                    gamma_range=(0.2, 0.5) if residual else (0.5, 1.0))
                if residual:
                    with g.scope("features.%d" % (si + 1)), g.scope(m):
                        h = g.op("Add", [h, y])
                    hc = hc + yc
                y, yc = h, hc
        y, yc = conv_bn(g, y, yc, 320, 1280, 1, 1, 1, True, "features.8", "features.8")
    with g.scope("avgpool"):
        y = g.op("GlobalAveragePool", [y])
    y = g.op("Flatten", [y], axis=1)
    w = g.normal((1000, 1280), np.sqrt(1.0 / 1280))
    b = g.uniform((1000,), 0.02)
    with g.scope("classifier"), g.scope("classifier.1"):
        y = g.op("Gemm", [y, g.init("classifier.1.weight", w), g.init("classifier.1.bias", b)], alpha=1.0,
                 beta=1.0, transB=1)
    g.output(y, "output", TensorProto.FLOAT, [1, 1000])
    inputs = {"input": np.random.default_rng(seed + 1).standard_normal((1, 3, 224, 224), dtype=np.float32)}
    return g, inputs
