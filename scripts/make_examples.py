#!/usr/bin/python3
"""Writes mixrt's example models: a small CNN and a small transformer encoder block, each
in f32, f16 and bf16 (same graph, 16-bit weights rounded to nearest even from the f32
ones), one seeded random input file per model (ONNX TensorProto .pb, exact dtype) and a
manifest.json, and expected outputs (expected_<kind>_<output>.pb, f32, from a float64
NumPy run of the f32 weights on the f32 input). Deterministic: the same seed gives the same bytes.

usage: /usr/bin/python3 scripts/make_examples.py [OUT_DIR]   (default examples/models)
"""
import hashlib
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
SEED = 20240611

FLOAT_TYPES = {
    "f32": TensorProto.FLOAT,
    "f16": TensorProto.FLOAT16,
    "bf16": TensorProto.BFLOAT16,
}


def f32_to_bf16_bits(a):
    """float32 array -> uint16 bf16 bit patterns, round to nearest even; NaN stays a quiet
    NaN with its sign (the carry of RNE could otherwise turn a NaN into Inf)."""
    a = np.ascontiguousarray(a, dtype=np.float32)
    u = a.view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    nan = np.isnan(a)
    out = np.where(nan, ((u >> 16) & 0x8000) | 0x7FC0, rounded)
    return out.astype(np.uint16)


def tensor_from_f32(name, arr, elem_type):
    """An initializer / input tensor of the float type elem_type from float32 data."""
    arr = np.asarray(arr, dtype=np.float32)
    if elem_type == TensorProto.FLOAT:
        return numpy_helper.from_array(arr, name)
    if elem_type == TensorProto.FLOAT16:
        return numpy_helper.from_array(arr.astype(np.float16), name)  # numpy casts with RNE
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.BFLOAT16
    t.dims.extend(arr.shape)
    t.raw_data = f32_to_bf16_bits(arr).astype("<u2").tobytes()
    return t


class Builder:
    """Collects a graph whose float tensors are all float32, so that the same graph can be
    emitted in any float dtype afterwards."""

    def __init__(self, rng):
        self.rng = rng
        self.nodes = []
        self.inits = {}  # name -> np array (float32 or int64)
        self.count = {}

    def uniq(self, base):
        n = self.count.get(base, 0)
        self.count[base] = n + 1
        return f"{base}_{n}" if n else base

    def const(self, base, arr):
        name = self.uniq(base)
        self.inits[name] = np.asarray(arr)
        return name

    def weight(self, base, shape, scale):
        return self.const(base, (self.rng.standard_normal(shape) * scale).astype(np.float32))

    def node(self, op, inputs, base, n_out=1, **attrs):
        name = self.uniq(base)
        outs = [name if n_out == 1 else f"{name}_out{i}" for i in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, name=name, **attrs))
        return outs[0] if n_out == 1 else outs

    def emit(self, graph_name, inputs, outputs, elem_type, doc):
        """inputs/outputs: [(name, shape)]; all are float. Returns a ModelProto with every
        float initializer, input, output and value_info in elem_type."""
        inits = []
        for name, arr in self.inits.items():
            if arr.dtype == np.float32:
                inits.append(tensor_from_f32(name, arr, elem_type))
            else:
                inits.append(numpy_helper.from_array(arr, name))
        g = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(n, elem_type, s) for n, s in inputs],
            [helper.make_tensor_value_info(n, elem_type, s) for n, s in outputs],
            initializer=inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="mixrt-make_examples", producer_version="1")
        m.ir_version = 8
        m.doc_string = doc
        # value_info from the f32 graph's shape inference, retyped to elem_type.
        f32 = self.emit_plain(graph_name, inputs, outputs)
        inferred = onnx.shape_inference.infer_shapes(f32, strict_mode=True)
        for vi in inferred.graph.value_info:
            vi2 = onnx.ValueInfoProto()
            vi2.CopyFrom(vi)
            if vi2.type.tensor_type.elem_type == TensorProto.FLOAT:
                vi2.type.tensor_type.elem_type = elem_type
            m.graph.value_info.append(vi2)
        return m

    def emit_plain(self, graph_name, inputs, outputs):
        inits = [numpy_helper.from_array(a, n) for n, a in self.inits.items()]
        g = helper.make_graph(
            self.nodes, graph_name,
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in inputs],
            [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outputs],
            initializer=inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", OPSET)])
        m.ir_version = 8
        return m


def conv_bn(b, x, cin, cout, base, relu=True):
    w = b.weight(f"{base}.conv.weight", (cout, cin, 3, 3), math.sqrt(2.0 / (cin * 9)))
    y = b.node("Conv", [x, w], f"{base}.conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
               strides=[1, 1])
    scale = b.const(f"{base}.bn.weight", (1.0 + 0.1 * b.rng.standard_normal(cout)).astype(np.float32))
    bias = b.const(f"{base}.bn.bias", (0.1 * b.rng.standard_normal(cout)).astype(np.float32))
    mean = b.const(f"{base}.bn.running_mean", (0.1 * b.rng.standard_normal(cout)).astype(np.float32))
    var = b.const(f"{base}.bn.running_var", b.rng.uniform(0.5, 1.5, cout).astype(np.float32))
    y = b.node("BatchNormalization", [y, scale, bias, mean, var], f"{base}.bn", epsilon=1e-5)
    if relu:
        y = b.node("Relu", [y], f"{base}.relu")
    return y


def make_cnn(rng):
    b = Builder(rng)
    c = 16
    y = conv_bn(b, "input", 3, c, "stem")
    r = conv_bn(b, y, c, c, "block1.0")
    r = conv_bn(b, r, c, c, "block1.1", relu=False)
    y = b.node("Add", [y, r], "block1.add")
    y = b.node("Relu", [y], "block1.relu")
    y = b.node("MaxPool", [y], "pool", kernel_shape=[2, 2], strides=[2, 2])
    y = conv_bn(b, y, c, 2 * c, "block2")
    y = b.node("GlobalAveragePool", [y], "gap")
    y = b.node("Flatten", [y], "flatten", axis=1)
    w = b.weight("fc.weight", (10, 2 * c), math.sqrt(1.0 / (2 * c)))
    bias = b.weight("fc.bias", (10,), 0.1)
    y = b.node("Gemm", [y, w, bias], "fc", transB=1)
    b.nodes.append(helper.make_node("Softmax", [y], ["probs"], name="softmax", axis=1))
    return b, [("input", [1, 3, 32, 32])], [("probs", [1, 10])]


def make_transformer(rng):
    b = Builder(rng)
    seq, d, heads, ff = 16, 64, 4, 256
    hd = d // heads
    x = "tokens"

    def layer_norm(inp, base):
        g = b.const(f"{base}.weight", (1.0 + 0.1 * rng.standard_normal(d)).astype(np.float32))
        bb = b.const(f"{base}.bias", (0.1 * rng.standard_normal(d)).astype(np.float32))
        return b.node("LayerNormalization", [inp, g, bb], base, axis=-1, epsilon=1e-5)

    def linear(inp, fin, fout, base):
        w = b.weight(f"{base}.weight", (fin, fout), 1.0 / math.sqrt(fin))
        bias = b.weight(f"{base}.bias", (fout,), 0.02)
        y = b.node("MatMul", [inp, w], f"{base}.matmul")
        return b.node("Add", [y, bias], f"{base}.add")

    heads_shape = b.const("shape_heads", np.array([1, seq, heads, hd], dtype=np.int64))
    model_shape = b.const("shape_model", np.array([1, seq, d], dtype=np.int64))
    h = layer_norm(x, "ln1")
    qkv = {}
    for p in ("q", "k", "v"):
        t = linear(h, d, d, f"attn.{p}")
        t = b.node("Reshape", [t, heads_shape], f"attn.{p}.split")
        perm = [0, 2, 3, 1] if p == "k" else [0, 2, 1, 3]  # K goes in transposed
        qkv[p] = b.node("Transpose", [t], f"attn.{p}.heads", perm=perm)
    s = b.node("MatMul", [qkv["q"], qkv["k"]], "attn.scores")
    s = b.node("Div", [s, b.const("attn.scale", np.array(math.sqrt(hd), dtype=np.float32))],
               "attn.scaled")
    p_ = b.node("Softmax", [s], "attn.softmax", axis=-1)
    o = b.node("MatMul", [p_, qkv["v"]], "attn.context")
    o = b.node("Transpose", [o], "attn.merge", perm=[0, 2, 1, 3])
    o = b.node("Reshape", [o, model_shape], "attn.concat")
    o = linear(o, d, d, "attn.out")
    x = b.node("Add", [x, o], "residual1")

    h = layer_norm(x, "ln2")
    h = linear(h, d, ff, "mlp.fc1")
    # GELU(x) = x * 0.5 * (1 + erf(x / sqrt(2)))
    e = b.node("Div", [h, b.const("gelu.sqrt2", np.array(math.sqrt(2.0), dtype=np.float32))],
               "gelu.div")
    e = b.node("Erf", [e], "gelu.erf")
    e = b.node("Add", [e, b.const("gelu.one", np.array(1.0, dtype=np.float32))], "gelu.add")
    e = b.node("Mul", [h, e], "gelu.mul")
    h = b.node("Mul", [e, b.const("gelu.half", np.array(0.5, dtype=np.float32))], "gelu.half_mul")
    h = linear(h, ff, d, "mlp.fc2")
    b.nodes.append(helper.make_node("Add", [x, h], ["hidden"], name="residual2"))
    return b, [("tokens", [1, seq, d])], [("hidden", [1, seq, d])]


def reference(b, feeds):
    """Runs the Builder's graph in float64 NumPy (only the ops the examples use), for
    expected outputs: the f32 weights and the given float32 inputs."""
    from math import erf
    env = {n: a.astype(np.float64) if a.dtype == np.float32 else a for n, a in b.inits.items()}
    env.update({n: a.astype(np.float64) for n, a in feeds.items()})
    verf = np.vectorize(erf)
    for nd in b.nodes:
        at = {a.name: helper.get_attribute_value(a) for a in nd.attribute}
        x = [env[i] for i in nd.input]
        op = nd.op_type
        if op == "Conv":  # 3x3, stride 1, pads 1 (all the examples use)
            w = x[1]
            xp = np.pad(x[0], ((0, 0), (0, 0), (1, 1), (1, 1)))
            n_, c, h, wd = x[0].shape
            cols = np.stack([xp[:, :, i:i + h, j:j + wd] for i in range(3) for j in range(3)], axis=2)
            y = np.einsum("nckhw,ock->nohw", cols, w.reshape(w.shape[0], c, 9))
        elif op == "BatchNormalization":
            sh = (1, -1, 1, 1)
            y = (x[0] - x[3].reshape(sh)) / np.sqrt(x[4].reshape(sh) + at["epsilon"]) * x[1].reshape(sh) \
                + x[2].reshape(sh)
        elif op == "Relu":
            y = np.maximum(x[0], 0)
        elif op == "Add":
            y = x[0] + x[1]
        elif op == "Mul":
            y = x[0] * x[1]
        elif op == "Div":
            y = x[0] / x[1]
        elif op == "Erf":
            y = verf(x[0])
        elif op == "MaxPool":  # 2x2 stride 2
            n_, c, h, wd = x[0].shape
            y = x[0].reshape(n_, c, h // 2, 2, wd // 2, 2).max(axis=(3, 5))
        elif op == "GlobalAveragePool":
            y = x[0].mean(axis=(2, 3), keepdims=True)
        elif op == "Flatten":
            y = x[0].reshape(x[0].shape[0], -1)
        elif op == "Gemm":
            y = x[0] @ x[1].T + x[2]
        elif op == "Softmax":
            e = np.exp(x[0] - x[0].max(axis=at["axis"], keepdims=True))
            y = e / e.sum(axis=at["axis"], keepdims=True)
        elif op == "LayerNormalization":
            mu = x[0].mean(axis=-1, keepdims=True)
            var = ((x[0] - mu) ** 2).mean(axis=-1, keepdims=True)
            y = (x[0] - mu) / np.sqrt(var + at["epsilon"]) * x[1] + x[2]
        elif op == "MatMul":
            y = x[0] @ x[1]
        elif op == "Reshape":
            y = x[0].reshape(x[1])
        elif op == "Transpose":
            y = x[0].transpose(at["perm"])
        else:
            raise NotImplementedError(op)
        env[nd.output[0]] = y
    return env


def check(model, tag):
    """Full check (with strict shape inference) where ONNX 1.12 accepts the dtypes;
    otherwise the structural check only, and say why."""
    try:
        onnx.checker.check_model(model, full_check=True)
        return "full"
    except Exception as e:  # ONNX 1.12 has no bf16 for Conv/MaxPool/GlobalAveragePool
        onnx.checker.check_model(model)
        reason = str(e).strip().splitlines()[0][:200]
        if tag == "f32":
            raise
        return "structural (full check refused: " + reason + ")"


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join("examples", "models")
    os.makedirs(out_dir, exist_ok=True)
    manifest = {"generator": "scripts/make_examples.py", "seed": SEED, "opset": OPSET,
                "models": []}
    for idx, (kind, make, doc) in enumerate([
        ("cnn", make_cnn, "Small CNN: Conv+BN+Relu stem, residual block, MaxPool, conv block, "
                          "GlobalAveragePool, Flatten, Gemm to 10 logits, Softmax."),
        ("transformer", make_transformer,
         "Transformer encoder block: LayerNorm, 4-head self-attention from MatMul/Reshape/"
         "Transpose/Softmax/Div, residual, LayerNorm, MLP with erf GELU, residual."),
    ]):
        b, inputs, outputs = make(np.random.default_rng(SEED + idx))
        in_name, in_shape = inputs[0]
        x = np.random.default_rng(SEED + 100 + idx).uniform(-1, 1, in_shape).astype(np.float32)
        # Expected outputs: float64 NumPy run of the f32 weights on the f32 input, stored
        # as f32. The f16/bf16 models are compared to it with a tolerance (their weights
        # and input are rounded).
        env = reference(b, {in_name: x})
        expected = {}
        for n, _ in outputs:
            fname = f"expected_{kind}_{n}.pb"
            with open(os.path.join(out_dir, fname), "wb") as f:
                f.write(numpy_helper.from_array(env[n].astype(np.float32), n).SerializeToString())
            expected[n] = fname
        for tag, elem in FLOAT_TYPES.items():
            model = b.emit(f"{kind}_{tag}", inputs, outputs, elem, doc)
            how = check(model, tag)
            name = f"{kind}_{tag}"
            path = os.path.join(out_dir, name + ".onnx")
            data = model.SerializeToString()
            assert len(data) < 2 * 1024 * 1024, (name, len(data))
            with open(path, "wb") as f:
                f.write(data)
            inp = tensor_from_f32(in_name, x, elem)
            in_file = f"inputs_{name}.pb"
            with open(os.path.join(out_dir, in_file), "wb") as f:
                f.write(inp.SerializeToString())
            manifest["models"].append({
                "name": name, "file": name + ".onnx", "dtype": tag, "bytes": len(data),
                "sha256": hashlib.sha256(data).hexdigest(), "checker": how,
                "nodes": len(model.graph.node), "initializers": len(model.graph.initializer),
                "inputs": [{"name": in_name, "shape": in_shape, "dtype": tag, "file": in_file}],
                "outputs": [{"name": n, "shape": s, "dtype": tag, "expected_f32": expected[n]}
                            for n, s in outputs],
            })
            print(f"{path}: {len(data)} bytes, {len(model.graph.node)} nodes, checker {how}")
    with open(os.path.join(out_dir, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
