"""MnasNet-B1 1.0 (torchvision's mnasnet1_0 layout) as torch.onnx.export writes it in eval mode:
BatchNorm folded into Conv weights and bias, ReLU (not ReLU6), depthwise 3x3 and 5x5 convs,
inverted residuals of expansion 3 and 6 with Add, a 1x1 conv to 1280, ReduceMean over H and W
(torchvision's `x.mean([2, 3])`), Gemm. A third-party family whose {fp32,bf16} engine sat over
0.5 of ONNX Runtime's f32 (0.526-0.543, sessions 46-48) while MobileNetV2 passed: its 5x5
depthwise layers and the 3x-expanded blocks are what differs. The BatchNorms are calibrated on a
seeded image as mobilenetv2.py's are (positive beta before each ReLU, small gamma on a residual
branch's projection), so activations stay O(1)."""
import numpy as np
from onnx import TensorProto

import zoo_lib as z
from mobilenetv2 import CALIB, classifier, conv as conv6


def conv(g, x, xc, cin, cout, k, stride, group, relu, name, gamma_range=(0.5, 1.0)):
    """mobilenetv2's folded conv, followed by a Relu where relu is set (none otherwise)."""
    return conv6(g, x, xc, cin, cout, k, stride, group, relu, name, gamma_range=gamma_range, relu=True)


def build(seed):
    g = z.Graph("mnasnet", seed)
    x = g.input("input", TensorProto.FLOAT, [1, 3, 224, 224])
    xc = g.rng.standard_normal((3, CALIB, CALIB), dtype=np.float32)
    y, yc = conv(g, x, xc, 3, 32, 3, 2, 1, True, "layers/layers.0")
    y, yc = conv(g, y, yc, 32, 32, 3, 1, 32, True, "layers/layers.3")
    y, yc = conv(g, y, yc, 32, 16, 1, 1, 1, False, "layers/layers.6")
    cin, idx = 16, 8
    # (out channels, kernel, stride, expansion, repeats): torchvision's stacks at alpha 1.0
    for c, k, s, t, n in [(24, 3, 2, 3, 3), (40, 5, 2, 3, 3), (80, 5, 2, 6, 3), (96, 3, 1, 6, 2),
                          (192, 5, 2, 6, 4), (320, 3, 1, 6, 1)]:
        for i in range(n):
            stride = s if i == 0 else 1
            hidden = cin * t
            with g.scope("layers/layers.%d/%d" % (idx, i)):
                h, hc = conv(g, y, yc, cin, hidden, 1, 1, 1, True, "layers.0")
                h, hc = conv(g, h, hc, hidden, hidden, k, stride, hidden, True, "layers.3")
                residual = stride == 1 and cin == c
                h, hc = conv(g, h, hc, hidden, c, 1, 1, 1, False, "layers.6",
                             gamma_range=(0.2, 0.5) if residual else (0.5, 1.0))
                if residual:
                    h = g.op("Add", [y, h])
                    hc = hc + yc
            y, yc, cin = h, hc, c
        idx += 1
    y, yc = conv(g, y, yc, 320, 1280, 1, 1, 1, True, "layers/layers.14")
    y = g.op("ReduceMean", [y], axes=[2, 3], keepdims=0)
    return classifier(g, y, seed)
