"""Transformer pieces shared by the BERT, ViT and GPT-2 generators, in the op patterns
torch.onnx.export (opset 17) writes for Hugging Face models: Linear as MatMul with a
transposed [in, out] initializer + Add bias, LayerNormalization, attention as
Reshape/Transpose/MatMul/Div/Softmax, Gelu as its Erf form or the tanh approximation with
Pow/Tanh. Linear weights are Xavier-normal (attention scores O(1), not flat)."""
import numpy as np

import zoo_lib as z


def linear(g, x, n_in, n_out, name):
    w = g.normal((n_in, n_out), np.sqrt(2.0 / (n_in + n_out)))
    b = g.uniform((n_out,), 0.02)
    y = g.op("MatMul", [x, g.init("onnx::MatMul_" + name, w)])
    return g.op("Add", [g.init(name + ".bias", b), y])


def layer_norm(g, x, n, name, eps=1e-12):
    gamma = (1.0 + g.normal((n,), 0.05)).astype(np.float32)
    beta = g.normal((n,), 0.02)
    with g.scope("LayerNorm"):
        return g.op("LayerNormalization", [x, g.init(name + ".weight", gamma), g.init(name + ".bias", beta)],
                    axis=-1, epsilon=eps)


def heads(g, x, seq, n_heads, d, perm):
    x = g.op("Reshape", [x, g.const([1, seq, n_heads, d])])
    return g.op("Transpose", [x], perm=perm)


def attention(g, q, k, v, seq, n_heads, d, mask=None, causal=None, mask_value=None):
    """q, k, v: [1, seq, n_heads*d] -> context [1, seq, n_heads*d]. mask: additive
    [1,1,1,seq] (or broadcastable); causal: bool [1,1,seq,seq] used with Where."""
    q = heads(g, q, seq, n_heads, d, [0, 2, 1, 3])
    k = heads(g, k, seq, n_heads, d, [0, 2, 3, 1])
    v = heads(g, v, seq, n_heads, d, [0, 2, 1, 3])
    s = g.op("MatMul", [q, k])
    s = g.op("Div", [s, g.scalar(np.sqrt(d))])
    if causal is not None:
        s = g.op("Where", [causal, s, mask_value])
    if mask is not None:
        s = g.op("Add", [s, mask])
    p = g.op("Softmax", [s], axis=-1)
    c = g.op("MatMul", [p, v])
    c = g.op("Transpose", [c], perm=[0, 2, 1, 3])
    return g.op("Reshape", [c, g.const([1, seq, n_heads * d])])


def gelu_erf(g, x):
    """0.5 * x * (1 + erf(x / sqrt(2))), the pattern exporters write for nn.GELU()."""
    t = g.op("Div", [x, g.scalar(1.4142135381698608)])
    t = g.op("Erf", [t])
    t = g.op("Add", [t, g.scalar(1.0)])
    t = g.op("Mul", [x, t])
    return g.op("Mul", [t, g.scalar(0.5)])


def gelu_tanh(g, x):
    """GPT-2's gelu_new: 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3)))."""
    h = g.op("Mul", [g.scalar(0.5), x])
    p = g.op("Pow", [x, g.scalar(3.0)])
    p = g.op("Mul", [g.scalar(0.044715), p])
    p = g.op("Add", [x, p])
    p = g.op("Mul", [g.scalar(0.7978845608028654), p])
    p = g.op("Tanh", [p])
    p = g.op("Add", [g.scalar(1.0), p])
    return g.op("Mul", [h, p])


__all__ = ["z", "linear", "layer_norm", "attention", "gelu_erf", "gelu_tanh"]
