"""ViT-B/16 (224x224, patch 16, hidden 768, 12 heads, 12 pre-LN layers, MLP 3072, 1000
classes) as torch.onnx.export writes Hugging Face ViTForImageClassification at opset 17:
patch Conv 16x16 stride 16, Reshape + Transpose to tokens, the class token Expanded to
the batch (Shape/Gather/Concat/Expand) and Concatenated, position embeddings Added, Gelu
in its Erf form, final LayerNormalization, classifier Gemm on token 0. Outputs logits
and last_hidden_state."""
import numpy as np
from onnx import TensorProto

import tfm
import zoo_lib as z

L, H, HEADS, FF, P, IMG, CLASSES = 12, 768, 12, 3072, 16, 224, 1000
TOK = (IMG // P) ** 2 + 1


def build(seed):
    g = z.Graph("vit_b16", seed)
    px = g.input("pixel_values", TensorProto.FLOAT, [1, 3, IMG, IMG])
    with g.scope("embeddings"):
        w = g.normal((H, 3, P, P), np.sqrt(1.0 / (3 * P * P)))
        with g.scope("patch_embeddings/projection"):
            x = g.op("Conv", [px, g.init("embeddings.patch_embeddings.projection.weight", w),
                              g.init("embeddings.patch_embeddings.projection.bias", g.uniform((H,), 0.02))],
                     kernel_shape=[P, P], strides=[P, P], pads=[0, 0, 0, 0], dilations=[1, 1], group=1)
        x = g.op("Reshape", [x, g.const([1, H, TOK - 1])])
        x = g.op("Transpose", [x], perm=[0, 2, 1])
        batch = g.op("Gather", [g.op("Shape", [px]), g.const(0)], axis=0)
        shape = g.op("Concat", [g.op("Unsqueeze", [batch, g.const([0])]), g.const([1, H])], axis=0)
        cls = g.op("Expand", [g.init("embeddings.cls_token", g.normal((1, 1, H), 0.02)), shape])
        x = g.op("Concat", [cls, x], axis=1)
        x = g.op("Add", [x, g.init("embeddings.position_embeddings", g.normal((1, TOK, H), 0.02))])
    for i in range(L):
        p = "vit.encoder.layer.%d" % i
        with g.scope("encoder/layer.%d" % i):
            a = tfm.layer_norm(g, x, H, p + ".layernorm_before", eps=1e-12)
            with g.scope("attention/attention"):
                q = tfm.linear(g, a, H, H, p + ".attention.attention.query")
                k = tfm.linear(g, a, H, H, p + ".attention.attention.key")
                v = tfm.linear(g, a, H, H, p + ".attention.attention.value")
                c = tfm.attention(g, q, k, v, TOK, HEADS, H // HEADS)
            with g.scope("attention/output"):
                c = tfm.linear(g, c, H, H, p + ".attention.output.dense")
            x = g.op("Add", [c, x])
            f = tfm.layer_norm(g, x, H, p + ".layernorm_after", eps=1e-12)
            with g.scope("intermediate"):
                f = tfm.gelu_erf(g, tfm.linear(g, f, H, FF, p + ".intermediate.dense"))
            with g.scope("output"):
                f = tfm.linear(g, f, FF, H, p + ".output.dense")
                x = g.op("Add", [f, x])
    x = tfm.layer_norm(g, x, H, "vit.layernorm", eps=1e-12)
    with g.scope("classifier"):
        first = g.op("Gather", [x, g.const(0)], axis=1)
        logits = g.op("Gemm", [first, g.init("classifier.weight", g.normal((CLASSES, H), np.sqrt(1.0 / H))),
                               g.init("classifier.bias", g.uniform((CLASSES,), 0.02))], alpha=1.0, beta=1.0, transB=1)
    g.output(logits, "logits", TensorProto.FLOAT, [1, CLASSES])
    g.output(x, "last_hidden_state", TensorProto.FLOAT, [1, TOK, H])
    r = np.random.default_rng(seed + 1)
    return g, {"pixel_values": r.standard_normal((1, 3, IMG, IMG), dtype=np.float32)}
