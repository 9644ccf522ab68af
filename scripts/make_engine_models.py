#!/usr/bin/python3
"""Writes the small models the engine tests use (seeded, deterministic):
  mlp_{f32,bf16,f16}.onnx   MatMul+Add+Relu+MatMul+Softmax with a Shape/Gather side path reading the batch
                            (non-flexible ops), weights rounded to the 16-bit dtypes (RNE)
  conv_wide_f32.onnx        two 3x3 convs of 128 -> 128 channels and a Relu: a file over 1 MiB,
                            which the importer maps (constants read back from it, engine.c)
  upsample_head_f32.onnx    Conv, Relu, then a linear Resize up (x4) and one down (x0.5), both outputs
  se_scale_f32.onnx         a squeeze-excite block: global pool, 1x1 conv, Sigmoid, the map times the gate
  small_head_f32.onnx       a classifier of 3 classes: Conv, Relu, global pool, Flatten, Gemm into the
                            graph output (the planner keeps such a head f32)
  box_rows_f32.onnx         a detector head's product: rows picked by NonZero (a count known only at
                            run time) through Gemm + Relu
  dt_<case>.onnx            one unsupported-dtype case each: float8 input, complex input,
                            int4 input, float8 Cast target, string fed to Add
usage: /usr/bin/python3 scripts/make_engine_models.py OUT_DIR"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_examples import tensor_from_f32  # noqa: E402

OPSET = 17


def save(g, path, opset=OPSET):
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], producer_name="mixrt-tests")
    m.ir_version = 8
    onnx.save(m, path)


def mlp(out, dt_name, elem):
    rng = np.random.default_rng(1234)
    w1 = (rng.standard_normal((64, 96)) * 0.2).astype(np.float32)
    b1 = (rng.standard_normal((96,)) * 0.1).astype(np.float32)
    w2 = (rng.standard_normal((96, 40)) * 0.2).astype(np.float32)
    inits = [tensor_from_f32("w1", w1, elem), tensor_from_f32("b1", b1, elem), tensor_from_f32("w2", w2, elem),
             numpy_helper.from_array(np.array([0], dtype=np.int64), "idx0")]
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"], name="fc1"),
        helper.make_node("Add", ["h0", "b1"], ["h1"], name="bias1"),
        helper.make_node("Relu", ["h1"], ["h2"], name="relu1"),
        helper.make_node("MatMul", ["h2", "w2"], ["h3"], name="fc2"),
        helper.make_node("Softmax", ["h3"], ["y"], name="softmax", axis=-1),
        helper.make_node("Shape", ["h3"], ["s"], name="shape"),
        helper.make_node("Gather", ["s", "idx0"], ["n"], name="gather_n", axis=0),
        helper.make_node("ReduceMax", ["h3"], ["m"], name="rmax", axes=[-1], keepdims=0),
    ]
    g = helper.make_graph(nodes, "mlp", [helper.make_tensor_value_info("x", elem, ["batch", 64])],
                          [helper.make_tensor_value_info("y", elem, ["batch", 40]),
                           helper.make_tensor_value_info("n", TensorProto.INT64, [1]),
                           helper.make_tensor_value_info("m", elem, ["batch"])], inits)
    save(g, os.path.join(out, "mlp_%s.onnx" % dt_name))


def tiny(out):
    """A few-hundred-byte model for plan fuzzing seeds: MatMul, Add, Relu, Softmax."""
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array((rng.standard_normal((4, 3)) * 0.5).astype(np.float32), "w")
    b = numpy_helper.from_array((rng.standard_normal((3,)) * 0.1).astype(np.float32), "b")
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Add", ["h", "b"], ["h2"], name="add"),
             helper.make_node("Relu", ["h2"], ["h3"], name="relu"),
             helper.make_node("Softmax", ["h3"], ["y"], name="sm", axis=-1)]
    g = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 3])], [w, b])
    save(g, os.path.join(out, "tiny_f32.onnx"))


def qdq(out):
    """An int8 input dequantized into a MatMul: DequantizeLinear's output dtype is not
    inferred statically, so the planner must not lower the MatMul on a guess."""
    rng = np.random.default_rng(11)
    w = numpy_helper.from_array((rng.standard_normal((16, 8)) * 0.3).astype(np.float32), "w")
    sc = numpy_helper.from_array(np.array(0.05, dtype=np.float32), "scale")
    zp = numpy_helper.from_array(np.array(0, dtype=np.int8), "zp")
    nodes = [helper.make_node("DequantizeLinear", ["xq", "scale", "zp"], ["x"], name="dq"),
             helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "qdq", [helper.make_tensor_value_info("xq", TensorProto.INT8, [4, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], [w, sc, zp])
    save(g, os.path.join(out, "qdq_f32.onnx"), opset=13)
    # CastLike's output dtype (input 1's) is not inferred statically (kept so on purpose
    # here): the MatMul behind it has an untyped input and must stay f32 when planned.
    like = numpy_helper.from_array(np.array([0.0], dtype=np.float32), "like")
    nodes = [helper.make_node("CastLike", ["xi", "like"], ["x"], name="castlike"),
             helper.make_node("MatMul", ["x", "w"], ["h"], name="mm"),
             helper.make_node("Relu", ["h"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "untyped", [helper.make_tensor_value_info("xi", TensorProto.INT32, [4, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])], [w, like])
    save(g, os.path.join(out, "untyped_f32.onnx"), opset=15)


def dtype_cases(out):
    # Raw ONNX dtype numbers: onnx 1.12's Python predates some of them (elem_type is an int32 field).
    F8E4M3FN, C64, INT4 = 17, 14, 22
    g = helper.make_graph([helper.make_node("Relu", ["x8"], ["y"], name="relu")], "f8in",
                          [helper.make_tensor_value_info("x8", F8E4M3FN, [4])],
                          [helper.make_tensor_value_info("y", F8E4M3FN, [4])])
    save(g, os.path.join(out, "dt_float8_input.onnx"))
    g = helper.make_graph([helper.make_node("Identity", ["xc"], ["y"], name="ident")], "c64in",
                          [helper.make_tensor_value_info("xc", C64, [4])],
                          [helper.make_tensor_value_info("y", C64, [4])])
    save(g, os.path.join(out, "dt_complex_input.onnx"))
    g = helper.make_graph([helper.make_node("Identity", ["xi4"], ["y"], name="ident")], "i4in",
                          [helper.make_tensor_value_info("xi4", INT4, [4])],
                          [helper.make_tensor_value_info("y", INT4, [4])])
    save(g, os.path.join(out, "dt_int4_input.onnx"))
    g = helper.make_graph([helper.make_node("Cast", ["x"], ["x8"], name="to_f8", to=F8E4M3FN),
                           helper.make_node("Cast", ["x8"], ["y"], name="from_f8", to=TensorProto.FLOAT)], "f8cast",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])])
    save(g, os.path.join(out, "dt_float8_cast.onnx"))
    w8 = TensorProto()
    w8.name = "w8"
    w8.data_type = F8E4M3FN
    w8.dims.extend([4])
    w8.raw_data = bytes([0x38, 0x40, 0xB8, 0x7E])  # 1, 2, -1, 448
    g = helper.make_graph([helper.make_node("Cast", ["w8"], ["w"], name="dequant", to=TensorProto.FLOAT),
                           helper.make_node("Add", ["x", "w"], ["y"], name="add")], "f8weight",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4])], [w8])
    save(g, os.path.join(out, "dt_float8_weight.onnx"))
    g = helper.make_graph([helper.make_node("Add", ["xs", "one"], ["y"], name="add")], "strin",
                          [helper.make_tensor_value_info("xs", TensorProto.STRING, [3])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
                          [numpy_helper.from_array(np.array([1.0], dtype=np.float32), "one")])
    save(g, os.path.join(out, "dt_string_add.onnx"))


def upsample_head(out):
    """A segmentation head's tail: Conv -> Relu, then a linear Resize up by 4 and one down by 2,
    both graph outputs (the planner runs the enlarging one in f32, casting its small input)."""
    rng = np.random.default_rng(11)
    w = numpy_helper.from_array((rng.standard_normal((4, 3, 3, 3)) * 0.3).astype(np.float32), "w")
    up = numpy_helper.from_array(np.array([1, 1, 4, 4], dtype=np.float32), "up")
    down = numpy_helper.from_array(np.array([1, 1, 0.5, 0.5], dtype=np.float32), "down")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("Resize", ["r", "", "up"], ["y_up"], name="resize_up", mode="linear"),
             helper.make_node("Resize", ["r", "", "down"], ["y_down"], name="resize_down", mode="linear")]
    g = helper.make_graph(nodes, "upsample_head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                          [helper.make_tensor_value_info("y_up", TensorProto.FLOAT, [1, 4, 32, 32]),
                           helper.make_tensor_value_info("y_down", TensorProto.FLOAT, [1, 4, 4, 4])], [w, up, down])
    save(g, os.path.join(out, "upsample_head_f32.onnx"))


def se_scale(out):
    """A squeeze-excite block: GlobalAveragePool, a 1x1 conv to 16 gates, Sigmoid, then the
    [1, 16, 12, 12] map times its [1, 16, 1, 1] gate. With the gate's conv forced bf16 the Mul
    must stay f32 (the Cast goes on the 16 gates, not on the map)."""
    rng = np.random.default_rng(19)
    w = numpy_helper.from_array((rng.standard_normal((16, 16, 1, 1)) * 0.3).astype(np.float32), "w")
    nodes = [helper.make_node("GlobalAveragePool", ["x"], ["p"], name="pool"),
             helper.make_node("Conv", ["p", "w"], ["c"], name="gate_fc"),
             helper.make_node("Sigmoid", ["c"], ["s"], name="gate"),
             helper.make_node("Mul", ["x", "s"], ["y"], name="scale")]
    g = helper.make_graph(nodes, "se_scale", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 16, 12, 12])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 16, 12, 12])], [w])
    save(g, os.path.join(out, "se_scale_f32.onnx"))


def box_rows(out):
    """A detector box head: the rows of x whose maximum is positive (NonZero: their count is known
    only at run time) through Gemm (bias) and Relu, as Faster R-CNN's fc6 reads its boxes. The
    planner cannot time the Gemm; it must still pick a precision a fast kernel takes."""
    rng = np.random.default_rng(17)
    w = numpy_helper.from_array((rng.standard_normal((256, 96)) * 0.06).astype(np.float32), "w")
    b = numpy_helper.from_array((rng.standard_normal(96) * 0.1).astype(np.float32), "b")
    zero = numpy_helper.from_array(np.array(0.0, dtype=np.float32), "zero")
    ax0 = numpy_helper.from_array(np.array([0], dtype=np.int64), "ax0")
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], name="rowmax", axes=[1], keepdims=0),
             helper.make_node("Greater", ["m", "zero"], ["keep"], name="keep"),
             helper.make_node("NonZero", ["keep"], ["nz"], name="nonzero"),
             helper.make_node("Squeeze", ["nz", "ax0"], ["idx"], name="squeeze"),
             helper.make_node("Gather", ["x", "idx"], ["rows"], name="rows", axis=0),
             helper.make_node("Gemm", ["rows", "w", "b"], ["g"], name="fc6"),
             helper.make_node("Relu", ["g"], ["y"], name="relu")]
    g = helper.make_graph(nodes, "box_rows", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [64, 256])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["boxes", 96])], [w, b, zero, ax0])
    save(g, os.path.join(out, "box_rows_f32.onnx"))


def small_head(out):
    """Conv 3 -> 64 (3x3) on 16x16, Relu, GlobalAveragePool, Flatten, then Gemm 64 -> 3 straight
    into the f32 graph output: a head of 3 values, which the planner keeps f32 (its bf16 time
    saves nothing, and its error is the one a user compares)."""
    rng = np.random.default_rng(23)
    w = numpy_helper.from_array((rng.standard_normal((64, 3, 3, 3)) * 0.3).astype(np.float32), "w")
    fw = numpy_helper.from_array((rng.standard_normal((3, 64)) * 0.2).astype(np.float32), "fw")
    fb = numpy_helper.from_array((rng.standard_normal(3) * 0.1).astype(np.float32), "fb")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Flatten", ["p"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="head", transB=1)]
    g = helper.make_graph(nodes, "small_head", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 16, 16])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])], [w, fw, fb])
    save(g, os.path.join(out, "small_head_f32.onnx"))


def conv_wide(out):
    """Two 3x3 convs, 128 -> 128 channels on 14x14 (1.2 MB of f32 weights): a model file the
    importer maps, so an engine may drop a weight and read it back from the file."""
    rng = np.random.default_rng(13)
    ws = [numpy_helper.from_array((rng.standard_normal((128, 128, 3, 3)) * 0.03).astype(np.float32), "w%d" % i)
          for i in (1, 2)]
    nodes = [helper.make_node("Conv", ["x", "w1"], ["c1"], name="conv1", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c1"], ["r1"], name="relu1"),
             helper.make_node("Conv", ["r1", "w2"], ["y"], name="conv2", pads=[1, 1, 1, 1])]
    g = helper.make_graph(nodes, "conv_wide", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 128, 14, 14])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 128, 14, 14])], ws)
    save(g, os.path.join(out, "conv_wide_f32.onnx"))


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, elem in (("f32", TensorProto.FLOAT), ("bf16", TensorProto.BFLOAT16), ("f16", TensorProto.FLOAT16)):
        mlp(out, name, elem)
    dtype_cases(out)
    tiny(out)
    qdq(out)
    upsample_head(out)
    box_rows(out)
    se_scale(out)
    small_head(out)
    conv_wide(out)


if __name__ == "__main__":
    main()
