#!/usr/bin/python3
"""Writes the small ONNX models the C tests load (tests/model_run.c) into argv[1]:
symbolic-dim binding, initializer-backed (overridable) inputs, external data inside the
model's folder, and f16/bf16 typed-field initializers. Seeded, deterministic."""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def bf16_bits(a):
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(7)

    # y = (a + b) * s with a, b [N, 4] sharing the symbolic batch N; s is an input with
    # an initializer (may be overridden).
    s_init = numpy_helper.from_array(rng.standard_normal(4).astype(np.float32), "s")
    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["t"]), helper.make_node("Mul", ["t", "s"], ["y"])], "symbolic",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["N", 4]),
         helper.make_tensor_value_info("s", TensorProto.FLOAT, [4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 4])], [s_init])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(out, "symbolic.onnx"))
    np.save(os.path.join(out, "symbolic_s.npy"), numpy_helper.to_array(s_init))

    # External data: w lives in weights.bin next to the model.
    w = rng.standard_normal((4, 3)).astype(np.float32)
    raw = w.tobytes()
    with open(os.path.join(out, "weights.bin"), "wb") as f:
        f.write(b"\0" * 16 + raw)
    wt = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[4, 3])
    wt.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "weights.bin"), ("offset", "16"), ("length", str(len(raw)))):
        e = wt.external_data.add()
        e.key, e.value = k, v
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "external",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [wt])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(out, "external.onnx"))
    np.save(os.path.join(out, "external_w.npy"), w)
    # The same model one folder down, pointing back up: must be refused.
    os.makedirs(os.path.join(out, "sub"), exist_ok=True)
    for e in wt.external_data:
        if e.key == "location":
            e.value = "../weights.bin"
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["y"])], "escape",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [wt])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(out, "sub", "escape.onnx"))

    # bf16 and f16 initializers in the typed field (int32_data, low 16 bits).
    v = rng.standard_normal(6).astype(np.float32)
    tb = TensorProto(name="kb", data_type=TensorProto.BFLOAT16, dims=[6])
    tb.int32_data.extend(int(x) for x in bf16_bits(v))
    th = TensorProto(name="kh", data_type=TensorProto.FLOAT16, dims=[6])
    th.int32_data.extend(int(x) for x in v.astype(np.float16).view(np.uint16))
    g = helper.make_graph([helper.make_node("Identity", ["kb"], ["yb"]), helper.make_node("Identity", ["kh"], ["yh"])],
                          "typed16", [], [helper.make_tensor_value_info("yb", TensorProto.BFLOAT16, [6]),
                                          helper.make_tensor_value_info("yh", TensorProto.FLOAT16, [6])], [tb, th])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), os.path.join(out, "typed16.onnx"))
    np.save(os.path.join(out, "typed16_bf16_bits.npy"), bf16_bits(v))
    np.save(os.path.join(out, "typed16_f16_bits.npy"), v.astype(np.float16).view(np.uint16))


if __name__ == "__main__":
    main()
