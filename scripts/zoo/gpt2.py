"""GPT-2 small (12 layers, hidden 768, 12 heads, vocab 50257, sequence 128) as
torch.onnx.export writes Hugging Face GPT2LMHeadModel at opset 17: token + position
(Shape/Gather/Range/Unsqueeze) embeddings, pre-LN blocks with fused c_attn MatMul + Split,
the causal mask as a Slice of the bool [1,1,1024,1024] buffer used by Where with
finfo(float).min, the padding mask as an Add of (1 - mask) * finfo.min, Gelu in its tanh
approximation (Pow/Tanh), final LayerNormalization and the tied lm_head as a MatMul with
the transposed embedding (constant-folded into its own initializer). Output logits.
The finfo.min constants saturate to the 16-bit type's own minimum on conversion, as an
export traced in that dtype writes them."""
import numpy as np
from onnx import TensorProto

import tfm
import zoo_lib as z

L, H, HEADS, FF, VOCAB, SEQ, CTX = 12, 768, 12, 3072, 50257, 128, 1024
FMIN = float(np.finfo(np.float32).min)


def build(seed):
    g = z.Graph("gpt2", seed)
    ids = g.input("input_ids", TensorProto.INT64, [1, SEQ])
    am = g.input("attention_mask", TensorProto.INT64, [1, SEQ])
    wte_v = g.normal((VOCAB, H), 0.02)
    with g.scope("transformer"):
        wte = g.init("transformer.wte.weight", wte_v)
        wpe = g.init("transformer.wpe.weight", g.normal((CTX, H), 0.01))
        seq = g.op("Gather", [g.op("Shape", [ids]), g.const(1)], axis=0)
        pos = g.op("Range", [g.const(0), seq, g.const(1)])
        pos = g.op("Unsqueeze", [pos, g.const([0])])
        x = g.op("Add", [g.op("Gather", [wte, ids], axis=0), g.op("Gather", [wpe, pos], axis=0)])
        m = g.op("Unsqueeze", [am, g.const([1, 2])])
        m = g.op("Cast", [m], to=TensorProto.FLOAT)
        m = g.op("Sub", [g.scalar(1.0), m])
        fmin = g.init("attn_mask_min", np.array(FMIN, np.float32))
        g.saturate.add(fmin)
        mask = g.op("Mul", [m, fmin])
        bias = g.init("transformer.h.0.attn.bias", np.tril(np.ones((CTX, CTX), bool))[None, None])
        causal = g.op("Slice", [bias, g.const([0, 0]), g.const([SEQ, SEQ]), g.const([2, 3]), g.const([1, 1])])
        mask_value = g.init("attn_mask_value", np.array(FMIN, np.float32))
        g.saturate.add(mask_value)
        for i in range(L):
            p = "transformer.h.%d" % i
            with g.scope("h.%d" % i):
                with g.scope("ln_1"):
                    a = tfm.layer_norm(g, x, H, p + ".ln_1", eps=1e-5)
                with g.scope("attn"):
                    qkv = tfm.linear(g, a, H, 3 * H, p + ".attn.c_attn")
                    q, k, v = g.op("Split", [qkv, g.const([H, H, H])], n_out=3, axis=2)
                    c = tfm.attention(g, q, k, v, SEQ, HEADS, H // HEADS, mask=mask, causal=causal,
                                      mask_value=mask_value)
                    c = tfm.linear(g, c, H, H, p + ".attn.c_proj")
                x = g.op("Add", [c, x])
                with g.scope("ln_2"):
                    f = tfm.layer_norm(g, x, H, p + ".ln_2", eps=1e-5)
                with g.scope("mlp"):
                    f = tfm.gelu_tanh(g, tfm.linear(g, f, H, FF, p + ".mlp.c_fc"))
                    f = tfm.linear(g, f, FF, H, p + ".mlp.c_proj")
                x = g.op("Add", [x, f])
        with g.scope("ln_f"):
            x = tfm.layer_norm(g, x, H, "transformer.ln_f", eps=1e-5)
    with g.scope("lm_head"):
        logits = g.op("MatMul", [x, g.init("onnx::MatMul_lm_head", np.ascontiguousarray(wte_v.T))])
    g.output(logits, "logits", TensorProto.FLOAT, [1, SEQ, VOCAB])
    r = np.random.default_rng(seed + 1)
    return g, {"input_ids": r.integers(0, VOCAB, size=(1, SEQ), dtype=np.int64),
               "attention_mask": np.ones((1, SEQ), np.int64)}
