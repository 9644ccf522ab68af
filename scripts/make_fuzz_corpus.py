#!/usr/bin/python3
"""Writes the seed corpus of fuzz/fuzz_onnx.c: small, mostly valid ONNX models that reach
many importer paths (initializers raw and typed in every dtype, Constant in every value
form, every attribute kind, If/Loop/Scan subgraphs with outer-scope references,
external-data references, value_info, symbolic dims, sequences/optionals, several
domains, local functions, sparse initializers, metadata). Deterministic output.

usage: /usr/bin/python3 scripts/make_fuzz_corpus.py [OUT_DIR]   (default fuzz/corpus)
The corpus is committed; rerun this after changing it and keep the total under 1 MB.
fuzz/corpus/regress_*.onnx are fixed fuzz findings added by hand (not made here).
"""
import os
import shutil
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

TESTDATA = "/usr/share/libonnx-testdata/data/node"
# A few real backend-test models (copied when the test data is installed).
TESTDATA_CASES = [
    "test_add_bcast", "test_conv_with_strides_padding", "test_gemm_default_matrix_bias",
    "test_if_seq", "test_loop11", "test_scan9_sum", "test_reshape_reduced_dims",
    "test_gather_0", "test_slice", "test_cast_FLOAT_to_FLOAT16", "test_layer_normalization_2d_axis0",
    "test_sequence_insert_at_back", "test_optional_get_element_sequence", "test_constant",
    "test_maxpool_2d_pads", "test_split_variable_parts_1d", "test_batchnorm_example",
    "test_castlike_FLOAT_to_BFLOAT16", "test_resize_upsample_scales_linear", "test_einsum_batch_matmul",
]

F = TensorProto.FLOAT
rng = np.random.default_rng(7)


def model(nodes, inputs, outputs, inits=(), opset=17, value_info=(), **kw):
    g = helper.make_graph(nodes, kw.pop("graph_name", "g"), inputs, outputs,
                          initializer=list(inits), value_info=list(value_info),
                          sparse_initializer=kw.pop("sparse", []))
    opsets = kw.pop("opsets", None) or [helper.make_opsetid("", opset)]
    m = helper.make_model(g, opset_imports=opsets, producer_name="mixrt-fuzz-corpus", **kw)
    m.ir_version = 8
    return m


def vi(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def simple_unary(op, shape=(2, 3), elem=F, opset=17, **attrs):
    return model([helper.make_node(op, ["x"], ["y"], name=op.lower(), **attrs)],
                 [vi("x", elem, list(shape))], [vi("y", elem, None)], opset=opset)


def typed_tensor(name, dtype, shape):
    """A TensorProto using the typed (non-raw) field ONNX prescribes for dtype."""
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(shape)
    n = int(np.prod(shape))
    if dtype in (TensorProto.FLOAT, TensorProto.COMPLEX64):
        t.float_data.extend(rng.standard_normal(n * (2 if dtype == TensorProto.COMPLEX64 else 1)).tolist())
    elif dtype in (TensorProto.DOUBLE, TensorProto.COMPLEX128):
        t.double_data.extend(rng.standard_normal(n * (2 if dtype == TensorProto.COMPLEX128 else 1)).tolist())
    elif dtype == TensorProto.INT64:
        t.int64_data.extend(rng.integers(-100, 100, n).tolist())
    elif dtype in (TensorProto.UINT32, TensorProto.UINT64):
        t.uint64_data.extend(rng.integers(0, 1000, n).tolist())
    elif dtype == TensorProto.STRING:
        t.string_data.extend([b"s%d" % i for i in range(n)])
    elif dtype in (TensorProto.FLOAT16, TensorProto.BFLOAT16):
        t.int32_data.extend(rng.integers(0, 0x7C00, n).tolist())  # low 16 bits hold the value
    else:  # int8/16/32, uint8/16, bool live in int32_data
        t.int32_data.extend(rng.integers(0, 2 if dtype == TensorProto.BOOL else 100, n).tolist())
    return t


def raw_tensor(name, dtype, shape):
    np_types = {TensorProto.FLOAT: np.float32, TensorProto.DOUBLE: np.float64,
                TensorProto.FLOAT16: np.float16, TensorProto.BFLOAT16: np.uint16,
                TensorProto.INT8: np.int8, TensorProto.INT16: np.int16, TensorProto.INT32: np.int32,
                TensorProto.INT64: np.int64, TensorProto.UINT8: np.uint8, TensorProto.UINT16: np.uint16,
                TensorProto.UINT32: np.uint32, TensorProto.UINT64: np.uint64, TensorProto.BOOL: np.bool_}
    a = (rng.standard_normal(shape) * 10).astype(np_types[dtype])
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(shape)
    t.raw_data = a.tobytes()
    return t


def cases():
    out = {}
    # Elementwise / basic ops over several opsets.
    out["relu"] = simple_unary("Relu")
    out["sigmoid_op6"] = simple_unary("Sigmoid", opset=6)
    out["softmax_axis"] = simple_unary("Softmax", (2, 3, 4), axis=1)
    out["cast_bf16"] = model([helper.make_node("Cast", ["x"], ["y"], to=TensorProto.BFLOAT16)],
                             [vi("x", F, [4])], [vi("y", TensorProto.BFLOAT16, [4])])
    out["add_bcast"] = model([helper.make_node("Add", ["a", "b"], ["c"])],
                             [vi("a", F, [2, 3]), vi("b", F, [3])], [vi("c", F, [2, 3])])
    # Initializers: raw and typed for every dtype, and initializer-backed inputs.
    for dt in (TensorProto.FLOAT, TensorProto.DOUBLE, TensorProto.FLOAT16, TensorProto.BFLOAT16,
               TensorProto.INT8, TensorProto.UINT16, TensorProto.INT32, TensorProto.INT64,
               TensorProto.UINT64, TensorProto.BOOL):
        dn = TensorProto.DataType.Name(dt).lower()
        for kind, mk in (("raw", raw_tensor), ("typed", typed_tensor)):
            w = mk("w", dt, [2, 3])
            out[f"init_{kind}_{dn}"] = model(
                [helper.make_node("Identity", ["w"], ["y"])], [], [vi("y", dt, [2, 3])], [w])
    out["init_string"] = model([helper.make_node("Identity", ["w"], ["y"])], [],
                               [vi("y", TensorProto.STRING, [3])],
                               [typed_tensor("w", TensorProto.STRING, [3])])
    out["init_scalar_and_empty"] = model(
        [helper.make_node("Concat", ["e", "x"], ["y"], axis=0), helper.make_node("Mul", ["y", "s"], ["z"])],
        [vi("x", F, [2])], [vi("z", F, [2])],
        [numpy_helper.from_array(np.zeros((0,), np.float32), "e"),
         numpy_helper.from_array(np.array(2.0, np.float32), "s")])
    out["init_overridable_input"] = model(
        [helper.make_node("Add", ["x", "bias"], ["y"])], [vi("x", F, [3]), vi("bias", F, [3])],
        [vi("y", F, [3])], [numpy_helper.from_array(np.ones(3, np.float32), "bias")])
    # Constant in every value form.
    forms = {
        "value": helper.make_tensor("v", F, [2], [1.0, 2.0]),
        "value_float": 1.5, "value_floats": [1.0, 2.0], "value_int": 3, "value_ints": [1, 2, 3],
        "value_string": "abc", "value_strings": ["a", "bc"],
    }
    for k, v in forms.items():
        out[f"constant_{k}"] = model([helper.make_node("Constant", [], ["c"], **{k: v})], [], [vi("c", 0)])
    sp = helper.make_sparse_tensor(helper.make_tensor("vals", F, [2], [5.0, 6.0]),
                                   helper.make_tensor("idx", TensorProto.INT64, [2], [1, 3]), [4])
    out["constant_sparse"] = model([helper.make_node("Constant", [], ["c"], sparse_value=sp)], [], [vi("c", F, [4])])
    out["sparse_initializer"] = model([helper.make_node("Identity", ["s"], ["y"])], [], [vi("y", F, [4])],
                                      sparse=[helper.make_sparse_tensor(
                                          helper.make_tensor("s", F, [2], [5.0, 6.0]),
                                          helper.make_tensor("si", TensorProto.INT64, [2], [0, 2]), [4])])
    # Attributes of every kind.
    out["attrs_conv"] = model(
        [helper.make_node("Conv", ["x", "w"], ["y"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1],
                          strides=[1, 1], dilations=[1, 1], group=1, auto_pad="NOTSET")],
        [vi("x", F, [1, 2, 5, 5])], [vi("y", F, [1, 4, 5, 5])],
        [numpy_helper.from_array(rng.standard_normal((4, 2, 3, 3)).astype(np.float32), "w")], opset=11)
    out["attrs_strings_tensor"] = model(
        [helper.make_node("ConstantOfShape", ["shape"], ["y"], value=helper.make_tensor("v", F, [1], [3.0])),
         helper.make_node("Resize", ["y", "", "sc"], ["z"], mode="nearest",
                          coordinate_transformation_mode="asymmetric")],
        [vi("shape", TensorProto.INT64, [2])], [vi("z", F, None)],
        [numpy_helper.from_array(np.array([1, 1], np.int64), "shape"),
         numpy_helper.from_array(np.array([2.0, 2.0], np.float32), "sc")])
    out["attr_type_proto"] = model(
        [helper.make_node("Optional", [], ["o"], type=helper.make_tensor_type_proto(F, [2]))], [],
        [helper.make_value_info("o", helper.make_optional_type_proto(helper.make_tensor_type_proto(F, [2])))],
        opset=15)
    # Control flow: If with both branches, Loop with carried state and scan outputs, Scan.
    then_g = helper.make_graph([helper.make_node("Add", ["x", "x"], ["t"])], "then", [], [vi("t", F, [2])])
    else_g = helper.make_graph([helper.make_node("Neg", ["x"], ["e"])], "else", [], [vi("e", F, [2])])
    out["if_outer_scope"] = model([helper.make_node("If", ["c"], ["y"], then_branch=then_g, else_branch=else_g)],
                                  [vi("c", TensorProto.BOOL, []), vi("x", F, [2])], [vi("y", F, [2])])
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]),
         helper.make_node("Add", ["acc_in", "x"], ["acc_out"]),
         helper.make_node("Identity", ["acc_out"], ["scan_out"])],
        "body", [vi("iter", TensorProto.INT64, []), vi("cond_in", TensorProto.BOOL, []), vi("acc_in", F, [2])],
        [vi("cond_out", TensorProto.BOOL, []), vi("acc_out", F, [2]), vi("scan_out", F, [2])])
    out["loop_scan_outputs"] = model(
        [helper.make_node("Loop", ["n", "", "a0"], ["a", "s"], body=body)],
        [vi("n", TensorProto.INT64, []), vi("a0", F, [2]), vi("x", F, [2])],
        [vi("a", F, [2]), vi("s", F, [None, 2])])
    nested_then = helper.make_graph(
        [helper.make_node("If", ["c"], ["inner"], then_branch=then_g, else_branch=else_g)], "nested",
        [], [vi("inner", F, [2])])
    out["if_nested"] = model([helper.make_node("If", ["c"], ["y"], then_branch=nested_then, else_branch=else_g)],
                             [vi("c", TensorProto.BOOL, []), vi("x", F, [2])], [vi("y", F, [2])])
    scan_body = helper.make_graph([helper.make_node("Add", ["s_in", "e"], ["s_out"]),
                                   helper.make_node("Identity", ["s_out"], ["o"])], "scan_body",
                                  [vi("s_in", F, [2]), vi("e", F, [2])], [vi("s_out", F, [2]), vi("o", F, [2])])
    out["scan"] = model([helper.make_node("Scan", ["init", "xs"], ["final", "ys"], body=scan_body,
                                          num_scan_inputs=1)],
                        [vi("init", F, [2]), vi("xs", F, [3, 2])], [vi("final", F, [2]), vi("ys", F, [3, 2])])
    # Symbolic dims, value_info, unknown rank, dim_param repeated.
    out["symbolic_dims"] = model(
        [helper.make_node("MatMul", ["a", "b"], ["t"]), helper.make_node("Relu", ["t"], ["y"])],
        [vi("a", F, ["batch", "n", 8]), vi("b", F, [8, "m"])], [vi("y", F, ["batch", "n", "m"])],
        value_info=[vi("t", F, ["batch", "n", "m"])])
    out["unknown_rank"] = model([helper.make_node("Abs", ["x"], ["y"])], [vi("x", F, None)], [vi("y", F, None)])
    out["no_type_output"] = model([helper.make_node("Abs", ["x"], ["y"])], [vi("x", F, [2])],
                                  [helper.make_empty_tensor_value_info("y")])
    # Sequences and optionals in the graph signature.
    seq_t = helper.make_sequence_type_proto(helper.make_tensor_type_proto(F, [2]))
    out["sequence_io"] = model(
        [helper.make_node("SequenceLength", ["s"], ["n"]), helper.make_node("SequenceAt", ["s", "i"], ["y"])],
        [helper.make_value_info("s", seq_t), vi("i", TensorProto.INT64, [])],
        [vi("n", TensorProto.INT64, []), vi("y", F, [2])])
    # External data (refused from a buffer without a base folder; loads from a file).
    ext = numpy_helper.from_array(np.arange(4, dtype=np.float32), "w")
    ext.ClearField("raw_data")
    ext.data_location = TensorProto.EXTERNAL
    for k, v in (("location", "weights.bin"), ("offset", "0"), ("length", "16")):
        e = ext.external_data.add()
        e.key, e.value = k, v
    out["external_data"] = model([helper.make_node("Identity", ["w"], ["y"])], [], [vi("y", F, [4])], [ext])
    # Several domains, a local function, metadata and doc strings.
    fn = helper.make_function("local", "Twice", ["a"], ["b"], [helper.make_node("Add", ["a", "a"], ["b"])],
                              [helper.make_opsetid("", 17)])
    m = model([helper.make_node("Twice", ["x"], ["y"], domain="local")], [vi("x", F, [2])], [vi("y", F, [2])],
              opsets=[helper.make_opsetid("", 17), helper.make_opsetid("local", 1),
                      helper.make_opsetid("ai.onnx.ml", 3)])
    m.functions.append(fn)
    helper.set_model_props(m, {"author": "mixrt", "license": "MIT"})
    m.doc_string = "doc"
    m.graph.doc_string = "graph doc"
    out["function_and_metadata"] = m
    out["ml_domain_op"] = model(
        [helper.make_node("LabelEncoder", ["x"], ["y"], domain="ai.onnx.ml", keys_int64s=[1, 2],
                          values_strings=["a", "b"], default_string="_")],
        [vi("x", TensorProto.INT64, [3])], [vi("y", TensorProto.STRING, [3])],
        opsets=[helper.make_opsetid("", 17), helper.make_opsetid("ai.onnx.ml", 2)])
    out["unknown_op"] = model([helper.make_node("FrobnicateXyz", ["x"], ["y"], domain="com.example")],
                              [vi("x", F, [2])], [vi("y", F, [2])],
                              opsets=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 1)])
    # Multi-node chains with shape ops and int64 constants.
    out["reshape_transpose"] = model(
        [helper.make_node("Reshape", ["x", "shape"], ["r"]), helper.make_node("Transpose", ["r"], ["t"], perm=[1, 0]),
         helper.make_node("Shape", ["t"], ["s"]), helper.make_node("Gather", ["s", "idx"], ["g"], axis=0)],
        [vi("x", F, [2, 3])], [vi("t", F, [3, 2]), vi("g", TensorProto.INT64, [])],
        [numpy_helper.from_array(np.array([2, 3], np.int64), "shape"),
         numpy_helper.from_array(np.array(0, np.int64), "idx")])
    out["layernorm_bf16"] = model(
        [helper.make_node("LayerNormalization", ["x", "g", "b"], ["y"], axis=-1)],
        [vi("x", TensorProto.BFLOAT16, [2, 4])], [vi("y", TensorProto.BFLOAT16, [2, 4])],
        [raw_tensor("g", TensorProto.BFLOAT16, [4]), raw_tensor("b", TensorProto.BFLOAT16, [4])])
    out["empty_graph"] = model([], [], [])
    out["optional_inputs_skipped"] = model(
        [helper.make_node("Clip", ["x", "", "mx"], ["y"])], [vi("x", F, [3])], [vi("y", F, [3])],
        [numpy_helper.from_array(np.array(1.0, np.float32), "mx")])
    return out


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join("fuzz", "corpus")
    os.makedirs(out_dir, exist_ok=True)
    total = 0
    for name, m in sorted(cases().items()):
        data = m.SerializeToString()
        with open(os.path.join(out_dir, f"gen_{name}.onnx"), "wb") as f:
            f.write(data)
        total += len(data)
    for case in TESTDATA_CASES:
        src = os.path.join(TESTDATA, case, "model.onnx")
        if os.path.exists(src) and os.path.getsize(src) < 16384:
            shutil.copyfile(src, os.path.join(out_dir, f"node_{case[5:]}.onnx"))
            total += os.path.getsize(src)
    n = len(os.listdir(out_dir))
    print(f"{out_dir}: {n} files, {total} bytes")
    assert total < 1024 * 1024


if __name__ == "__main__":
    main()
