"""A small LSTM classifier: 2-layer nn.LSTM(64 -> 128) over [seq 50, batch 1, 64] with
initial states h0/c0, then a Linear head on the last step, as torch.onnx.export writes it
at opset 17: per layer Slice of h0/c0, an LSTM node (W/R/B in ONNX's iofc gate order),
Squeeze of the direction axis; Y_h/Y_c Concatenated to hn/cn; Gather(-1) + Gemm head.
Weights uniform in +-1/sqrt(hidden) as torch initializes them."""
import numpy as np
from onnx import TensorProto

import zoo_lib as z

SEQ, IN, HID, LAYERS, CLASSES = 50, 64, 128, 2, 10


def build(seed):
    g = z.Graph("lstm", seed)
    x = g.input("input", TensorProto.FLOAT, [SEQ, 1, IN])
    h0 = g.input("h0", TensorProto.FLOAT, [LAYERS, 1, HID])
    c0 = g.input("c0", TensorProto.FLOAT, [LAYERS, 1, HID])
    bound = 1.0 / np.sqrt(HID)
    hs, cs = [], []
    y = x
    with g.scope("lstm"):
        for layer in range(LAYERS):
            n_in = IN if layer == 0 else HID
            w = g.init("onnx::LSTM_W_%d" % layer, g.uniform((1, 4 * HID, n_in), bound))
            r = g.init("onnx::LSTM_R_%d" % layer, g.uniform((1, 4 * HID, HID), bound))
            b = g.init("onnx::LSTM_B_%d" % layer, g.uniform((1, 8 * HID), bound))
            sl = [g.const([layer]), g.const([layer + 1]), g.const([0])]
            hi = g.op("Slice", [h0] + sl)
            ci = g.op("Slice", [c0] + sl)
            ys, yh, yc = g.op("LSTM", [y, w, r, b, "", hi, ci], n_out=3, hidden_size=HID, direction="forward")
            y = g.op("Squeeze", [ys, g.const([1])])
            hs.append(yh)
            cs.append(yc)
        hn = g.op("Concat", hs, axis=0)
        cn = g.op("Concat", cs, axis=0)
    last = g.op("Gather", [y, g.const(-1)], axis=0)
    with g.scope("fc"):
        logits = g.op("Gemm", [last, g.init("fc.weight", g.uniform((CLASSES, HID), bound)),
                               g.init("fc.bias", g.uniform((CLASSES,), bound))], alpha=1.0, beta=1.0, transB=1)
    g.output(logits, "logits", TensorProto.FLOAT, [1, CLASSES])
    g.output(hn, "hn", TensorProto.FLOAT, [LAYERS, 1, HID])
    g.output(cn, "cn", TensorProto.FLOAT, [LAYERS, 1, HID])
    rng = np.random.default_rng(seed + 1)
    return g, {"input": rng.standard_normal((SEQ, 1, IN), dtype=np.float32),
               "h0": (0.5 * rng.standard_normal((LAYERS, 1, HID))).astype(np.float32),
               "c0": (0.5 * rng.standard_normal((LAYERS, 1, HID))).astype(np.float32)}
