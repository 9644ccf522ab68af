"""BERT-base (12 layers, hidden 768, 12 heads, FFN 3072, vocab 30522, sequence 128) as
torch.onnx.export writes Hugging Face BertModel at opset 17: Gather embeddings (word,
position, token type), LayerNormalization, the extended attention mask
(Unsqueeze/Cast/Sub/Mul by -10000) added to the scores, post-LN encoder layers with Gelu in
its Erf form, pooler Gather + Gemm + Tanh. Outputs last_hidden_state and pooler_output."""
import numpy as np
from onnx import TensorProto

import tfm
import zoo_lib as z

L, H, HEADS, FF, VOCAB, SEQ = 12, 768, 12, 3072, 30522, 128


def build(seed):
    g = z.Graph("bert_base", seed)
    ids = g.input("input_ids", TensorProto.INT64, [1, SEQ])
    am = g.input("attention_mask", TensorProto.INT64, [1, SEQ])
    tt = g.input("token_type_ids", TensorProto.INT64, [1, SEQ])
    with g.scope("embeddings"):
        we = g.init("embeddings.word_embeddings.weight", g.normal((VOCAB, H), 0.02))
        pe = g.init("embeddings.position_embeddings.weight", g.normal((512, H), 0.02))
        te = g.init("embeddings.token_type_embeddings.weight", g.normal((2, H), 0.02))
        pos = g.init("embeddings.position_ids", np.arange(SEQ, dtype=np.int64)[None, :])
        x = g.op("Gather", [we, ids], axis=0)
        x = g.op("Add", [x, g.op("Gather", [te, tt], axis=0)])
        x = g.op("Add", [x, g.op("Gather", [pe, pos], axis=0)])
    x = tfm.layer_norm(g, x, H, "embeddings.LayerNorm")
    m = g.op("Unsqueeze", [am, g.const([1])])
    m = g.op("Unsqueeze", [m, g.const([2])])
    m = g.op("Cast", [m], to=TensorProto.FLOAT)
    m = g.op("Sub", [g.scalar(1.0), m])
    mask = g.op("Mul", [m, g.scalar(-10000.0)])
    for i in range(L):
        p = "encoder/layer.%d" % i
        with g.scope(p):
            with g.scope("attention/self"):
                q = tfm.linear(g, x, H, H, "encoder.layer.%d.attention.self.query" % i)
                k = tfm.linear(g, x, H, H, "encoder.layer.%d.attention.self.key" % i)
                v = tfm.linear(g, x, H, H, "encoder.layer.%d.attention.self.value" % i)
                c = tfm.attention(g, q, k, v, SEQ, HEADS, H // HEADS, mask=mask)
            with g.scope("attention/output"):
                a = tfm.linear(g, c, H, H, "encoder.layer.%d.attention.output.dense" % i)
                a = g.op("Add", [a, x])
                a = tfm.layer_norm(g, a, H, "encoder.layer.%d.attention.output.LayerNorm" % i)
            with g.scope("intermediate"):
                f = tfm.gelu_erf(g, tfm.linear(g, a, H, FF, "encoder.layer.%d.intermediate.dense" % i))
            with g.scope("output"):
                f = tfm.linear(g, f, FF, H, "encoder.layer.%d.output.dense" % i)
                f = g.op("Add", [f, a])
                x = tfm.layer_norm(g, f, H, "encoder.layer.%d.output.LayerNorm" % i)
    with g.scope("pooler"):
        first = g.op("Gather", [x, g.const(0)], axis=1)
        w = g.normal((H, H), np.sqrt(1.0 / H))
        pooled = g.op("Gemm", [first, g.init("pooler.dense.weight", w), g.init("pooler.dense.bias", g.uniform((H,), 0.02))],
                      alpha=1.0, beta=1.0, transB=1)
        pooled = g.op("Tanh", [pooled])
    g.output(x, "last_hidden_state", TensorProto.FLOAT, [1, SEQ, H])
    g.output(pooled, "pooler_output", TensorProto.FLOAT, [1, H])
    r = np.random.default_rng(seed + 1)
    n_real = 100  # the last 28 positions are padding
    ids_v = r.integers(1000, VOCAB, size=(1, SEQ), dtype=np.int64)
    ids_v[0, 0], ids_v[0, n_real - 1], ids_v[0, n_real:] = 101, 102, 0
    tt_v = np.zeros((1, SEQ), np.int64)
    tt_v[0, 60:n_real] = 1
    am_v = np.zeros((1, SEQ), np.int64)
    am_v[0, :n_real] = 1
    return g, {"input_ids": ids_v, "attention_mask": am_v, "token_type_ids": tt_v}
