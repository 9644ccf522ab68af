#!/usr/bin/python3
"""Generates hostile inputs for `mixrt run` (tests/hostile.sh): models and input files
that must each make mixrt fail with one clear error line, and mutated copies of real
models (byte flips) that must never kill it with a signal.

usage: /usr/bin/python3 scripts/make_hostile_models.py OUT_DIR

Writes into OUT_DIR:
  cases.tsv   one case a line: NAME<TAB>KEYWORDS<TAB>ARG<TAB>ARG...  (the arguments of
              `mixrt run`; KEYWORDS is ';'-separated groups that must each appear in the
              error line, case-insensitively, a group being '|'-separated alternatives)
  flips/      byte-flipped copies of the models named in flips.txt's source list
  flips.txt   one mutated model path a line
Everything is deterministic (fixed seeds).
"""
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

F = TensorProto.FLOAT
TESTDATA = "/usr/share/libonnx-testdata/data/node"
FLIP_SOURCES = ["test_add_bcast", "test_conv_with_strides_padding", "test_if", "test_loop11",
                "test_layer_normalization_4d_axis1", "test_gemm_all_attributes", "test_softmax_axis_1"]


def vi(name, elem=F, shape=None):
    return helper.make_tensor_value_info(name, elem, shape)


def model(nodes, inputs, outputs, inits=(), opsets=None, graph_name="hostile"):
    g = helper.make_graph(nodes, graph_name, inputs, outputs, initializer=list(inits))
    m = helper.make_model(g, opset_imports=opsets or [helper.make_opsetid("", 17)],
                          producer_name="mixrt-hostile")
    m.ir_version = 8
    return m


def raw_init(name, dtype, dims, data=b""):
    t = TensorProto()
    t.name = name
    t.data_type = dtype
    t.dims.extend(dims)
    t.raw_data = data
    return t


def ext_init(name, location, n=4, offset=None, length=None):
    t = TensorProto()
    t.name = name
    t.data_type = F
    t.dims.extend([n])
    t.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("offset", offset), ("length", length)):
        if v is not None:
            e = t.external_data.add()
            e.key, e.value = k, str(v)
    return t


def identity_of(init, out_elem=F, out_shape=None):
    return model([helper.make_node("Identity", [init.name], ["y"], name="ident")], [],
                 [vi("y", out_elem, out_shape)], [init])


class Writer:
    def __init__(self, out):
        self.out = out
        self.rows = []

    def path(self, rel):
        p = os.path.join(self.out, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        return p

    def save(self, rel, m):
        p = self.path(rel)
        with open(p, "wb") as f:
            f.write(m.SerializeToString() if hasattr(m, "SerializeToString") else m)
        return p

    def case(self, name, keywords, *args):
        assert all("\t" not in a and "\n" not in a for a in args)
        self.rows.append("\t".join([name, keywords] + list(args)))


def tensor_pb(path, name, arr):
    with open(path, "wb") as f:
        f.write(numpy_helper.from_array(arr, name).SerializeToString())


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    w = Writer(out)
    rng = np.random.default_rng(1234)

    # --- files that are not models ---------------------------------------------------
    w.case("missing_file", "does_not_exist.onnx", os.path.join(out, "does_not_exist.onnx"))
    w.save("notes.onnx", b"This is a text file, not an ONNX model.\nIt has two lines.\n")
    w.case("text_file", "notes.onnx", os.path.join(out, "notes.onnx"))
    png = (b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR\x00\x00\x00\x10\x00\x00\x00\x10\x08\x06\x00\x00\x00"
           + bytes(rng.integers(0, 256, 200, dtype=np.uint8)))
    w.save("picture.onnx", png)
    w.case("png_file", "picture.onnx", os.path.join(out, "picture.onnx"))
    w.save("empty.onnx", b"")
    w.case("empty_file", "empty.onnx", os.path.join(out, "empty.onnx"))
    os.makedirs(os.path.join(out, "a_directory.onnx"), exist_ok=True)
    w.case("directory", "a_directory.onnx", os.path.join(out, "a_directory.onnx"))
    # A model with no graph at all (a valid protobuf, an empty ModelProto but for ir_version).
    m = onnx.ModelProto()
    m.ir_version = 8
    w.case("no_graph", "graph", w.save("no_graph.onnx", m))

    # Models with an input 'x' [2] get it from a file, so no note about random inputs
    # precedes the error line.
    x2 = w.path("x2.pb")
    tensor_pb(x2, "x", np.array([0.5, -1.5], np.float32))
    feed_x = ["--input", "x=" + x2]

    # --- operators ---------------------------------------------------------------------
    m = model([helper.make_node("FrobnicateXyz", ["x"], ["y"], name="mystery_node", domain="com.example")],
              [vi("x", F, [2])], [vi("y", F, [2])],
              opsets=[helper.make_opsetid("", 17), helper.make_opsetid("com.example", 3)])
    w.case("unknown_op_custom_domain", "FrobnicateXyz;mystery_node;com.example;3",
           w.save("unknown_op_custom_domain.onnx", m), *feed_x)
    m = model([helper.make_node("NotARealOp", ["x"], ["y"], name="fake_node")], [vi("x", F, [2])], [vi("y", F, [2])])
    w.case("unknown_op_default_domain", "NotARealOp;fake_node;ai.onnx|domain '';17",
           w.save("unknown_op_default_domain.onnx", m), *feed_x)
    m = model([helper.make_node("Relu", ["x"], ["y"], name="future_relu")], [vi("x", F, [2])], [vi("y", F, [2])],
              opsets=[helper.make_opsetid("", 99)])
    w.case("future_opset", "Relu;future_relu;99", w.save("future_opset.onnx", m), *feed_x)
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu_no_opset", domain="com.nowhere")],
              [vi("x", F, [2])], [vi("y", F, [2])])
    w.case("domain_without_opset", "com.nowhere;relu_no_opset", w.save("domain_without_opset.onnx", m), *feed_x)
    # Names with a newline and a terminal escape: the error must still be one line.
    m = model([helper.make_node("Evil\nOp\x1b[2J", ["x"], ["y"], name="evil\nnode")], [vi("x", F, [2])],
              [vi("y", F, [2])])
    w.case("newline_in_op_name", "Evil;evil", w.save("newline_in_op_name.onnx", m), *feed_x)

    # --- dtypes --------------------------------------------------------------------------
    m = identity_of(raw_init("cplx_weight", TensorProto.COMPLEX64, [2], bytes(16)), TensorProto.COMPLEX64, [2])
    w.case("complex64_initializer", "cplx_weight;c64|complex64", w.save("complex64_initializer.onnx", m))
    m = identity_of(raw_init("f8_weight", 17, [4], bytes(4)), 17, [4])  # FLOAT8E4M3FN (ONNX 1.14+)
    w.case("float8_initializer", "f8_weight;f8e4m3fn|float8", w.save("float8_initializer.onnx", m))
    m = identity_of(raw_init("odd_weight", 77, [4], bytes(4)), F, [4])
    w.case("unknown_dtype_initializer", "odd_weight;77", w.save("unknown_dtype_initializer.onnx", m))
    m = model([helper.make_node("Identity", ["z"], ["y"])], [vi("z", TensorProto.COMPLEX128, [2])],
              [vi("y", TensorProto.COMPLEX128, [2])])
    w.case("complex128_input", "'z';c128|complex128", w.save("complex128_input.onnx", m))

    # --- inputs given on the command line -------------------------------------------------
    m = model([helper.make_node("Relu", ["x"], ["y"], name="relu")], [vi("x", F, [2, 3])], [vi("y", F, [2, 3])])
    relu = w.save("relu.onnx", m)
    tensor_pb(w.path("x_good.pb"), "x", rng.standard_normal((2, 3)).astype(np.float32))
    tensor_pb(w.path("x_shape32.pb"), "x", rng.standard_normal((3, 2)).astype(np.float32))
    tensor_pb(w.path("x_rank3.pb"), "x", rng.standard_normal((1, 2, 3)).astype(np.float32))
    tensor_pb(w.path("x_int64.pb"), "x", rng.integers(0, 9, (2, 3)).astype(np.int64))
    np.save(w.path("x_f64.npy"), rng.standard_normal((2, 3)))
    w.save("x_garbage.pb", bytes(rng.integers(0, 256, 64, dtype=np.uint8)))
    w.save("x_garbage.npy", b"\x93NUMPY\x01\x00\x20\x00{'descr': '<f4', 'shape': (2, 3)}\n")
    w.case("wrong_input_name", "nosuch", relu, "--input", "nosuch=" + w.path("x_good.pb"))
    w.case("wrong_input_shape", "'x';3,2|3x2", relu, "--input", "x=" + w.path("x_shape32.pb"))
    w.case("wrong_input_rank", "'x';rank|1,2,3|1x2x3", relu, "--input", "x=" + w.path("x_rank3.pb"))
    w.case("wrong_input_dtype_pb", "'x';i64|int64", relu, "--input", "x=" + w.path("x_int64.pb"))
    w.case("wrong_input_dtype_npy", "'x';f64|float64|double", relu, "--input", "x=" + w.path("x_f64.npy"))
    w.case("missing_input_file", "no_such_input.pb", relu, "--input", "x=" + w.path("no_such_input.pb"))
    w.case("garbage_input_pb", "x_garbage.pb", relu, "--input", "x=" + w.path("x_garbage.pb"))
    w.case("truncated_input_npy", "x_garbage.npy", relu, "--input", "x=" + w.path("x_garbage.npy"))
    w.case("input_bad_suffix", "x_good.txt|.pb", relu, "--input", "x=" + w.path("x_good.txt"))

    # --- external data --------------------------------------------------------------------
    ext_dir = w.path("ext/inside.bin")
    with open(ext_dir, "wb") as f:
        f.write(np.arange(4, dtype=np.float32).tobytes())
    with open(w.path("outside.bin"), "wb") as f:
        f.write(np.arange(4, dtype=np.float32).tobytes())
    link = w.path("ext/link.bin")
    if os.path.lexists(link):
        os.remove(link)
    os.symlink(os.path.abspath(w.path("outside.bin")), link)
    cases = [
        ("external_dotdot", "../outside.bin", {}, "ext_w;../outside.bin"),
        ("external_absolute", "/etc/passwd", {}, "ext_w;/etc/passwd"),
        ("external_symlink", "link.bin", {}, "ext_w;link.bin|outside"),
        ("external_missing", "nothing_here.bin", {}, "ext_w;nothing_here.bin"),
        ("external_beyond_end", "inside.bin", {"offset": 8, "length": 16}, "ext_w;inside.bin"),
        ("external_bad_offset", "inside.bin", {"offset": "-5"}, "ext_w;offset"),
    ]
    for name, loc, kw, keys in cases:
        m = identity_of(ext_init("ext_w", loc, **kw), F, [4])
        w.case(name, keys, w.save(f"ext/{name}.onnx", m))

    # --- sizes ------------------------------------------------------------------------------
    m = identity_of(raw_init("huge_w", F, [2 ** 40, 2 ** 40], bytes(8)), F, None)
    w.case("dims_product_overflows", "huge_w", w.save("dims_overflow.onnx", m))
    m = identity_of(raw_init("big_w", F, [2 ** 31, 4], bytes(8)), F, None)
    w.case("dims_larger_than_data", "big_w", w.save("dims_larger_than_data.onnx", m))
    m = identity_of(raw_init("neg_w", F, [-3, 2], bytes(8)), F, None)
    w.case("negative_dim_initializer", "neg_w;-3", w.save("negative_dim.onnx", m))
    t = TensorProto(name="typed_w", data_type=F, dims=[2 ** 20, 2 ** 20])
    t.float_data.extend([1.0, 2.0])
    w.case("typed_count_mismatch", "typed_w", w.save("typed_count_mismatch.onnx", identity_of(t, F, None)))
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2 ** 40, 2 ** 40])], [vi("y", F, None)])
    w.case("input_dims_overflow", "'x'", w.save("input_dims_overflow.onnx", m))
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [1] * 40)], [vi("y", F, None)])
    w.case("input_rank_too_large", "'x';rank|40", w.save("input_rank40.onnx", m))
    m = model([helper.make_node("ConstantOfShape", ["shape"], ["y"], name="cos_huge")], [],
              [vi("y", F, None)], [numpy_helper.from_array(np.array([2 ** 31, 2 ** 31, 2 ** 31], np.int64), "shape")])
    w.case("runtime_output_overflow", "cos_huge", w.save("runtime_output_overflow.onnx", m))

    # A Reshape target whose element count overflows int64 (shape inference and the
    # kernel both multiply the dims).
    m = model([helper.make_node("Reshape", ["data", "shape"], ["y"], name="reshape_huge")], [],
              [vi("y", F, None)], [numpy_helper.from_array(np.zeros((2, 91), np.float32), "data"),
                                   numpy_helper.from_array(np.array([2 ** 57 + 2, 0], np.int64), "shape")])
    w.case("reshape_shape_overflow", "reshape_huge", w.save("reshape_shape_overflow.onnx", m))
    m = model([helper.make_node("Expand", ["x", "shape"], ["y"], name="expand_huge")], [vi("x", F, [2])],
              [vi("y", F, None)], [numpy_helper.from_array(np.array([2 ** 40, 2 ** 40, 2], np.int64), "shape")])
    w.case("expand_shape_overflow", "expand_huge", w.save("expand_shape_overflow.onnx", m), *feed_x)

    # An int attribute given as a float far outside int64 (converting it is UB in C).
    node = helper.make_node("Cast", ["x"], ["y"], name="cast_float_to")
    a = node.attribute.add()
    a.name, a.type, a.f = "to", onnx.AttributeProto.FLOAT, 1.8e31
    m = model([node], [vi("x", F, [2])], [vi("y", F, [2])])
    w.case("float_attr_for_int", "cast_float_to;to", w.save("float_attr_for_int.onnx", m), *feed_x)

    # --- graph structure --------------------------------------------------------------------
    m = model([helper.make_node("Add", ["x", "ghost"], ["y"], name="add_ghost")], [vi("x", F, [2])], [vi("y", F, [2])])
    w.case("input_nothing_produces", "ghost;add_ghost", w.save("dangling_input.onnx", m), *feed_x)
    m = model([helper.make_node("Relu", ["b"], ["a"], name="cyc_a"), helper.make_node("Relu", ["a"], ["b"], name="cyc_b"),
               helper.make_node("Identity", ["a"], ["y"], name="cyc_out")], [], [vi("y", F, [2])])
    w.case("graph_cycle", "cycle;cyc_a|cyc_b", w.save("cycle.onnx", m))
    m = model([helper.make_node("Relu", ["x"], ["x"], name="self_loop")], [], [vi("x", F, [2])])
    w.case("self_cycle", "self_loop", w.save("self_cycle.onnx", m))
    m = model([helper.make_node("Relu", ["x"], ["y"], name="first"), helper.make_node("Neg", ["x"], ["y"], name="second")],
              [vi("x", F, [2])], [vi("y", F, [2])])
    w.case("two_producers", "'y'", w.save("two_producers.onnx", m), *feed_x)
    m = model([helper.make_node("Relu", ["x"], ["y"])], [vi("x", F, [2])], [vi("y", F, [2]), vi("never", F, [2])])
    w.case("output_nothing_produces", "never", w.save("dangling_output.onnx", m), *feed_x)
    m = model([helper.make_node("If", ["c"], ["y"], name="if_no_else",
                                then_branch=helper.make_graph([helper.make_node("Identity", ["x"], ["t"])], "then",
                                                              [], [vi("t", F, [2])]))],
              [vi("c", TensorProto.BOOL, []), vi("x", F, [2])], [vi("y", F, [2])])
    tensor_pb(w.path("c_true.pb"), "c", np.array(True))
    w.case("if_without_else", "if_no_else;else_branch", w.save("if_without_else.onnx", m), *feed_x,
           "--input", "c=" + w.path("c_true.pb"))
    # Subgraphs nested far deeper than any real model (stack-depth hostile).
    leaf = helper.make_graph([helper.make_node("Identity", ["x"], ["e"])], "leaf", [], [vi("e", F, [2])])
    inner = helper.make_graph([helper.make_node("Identity", ["x"], ["t0"])], "g0", [], [vi("t0", F, [2])])
    for d in range(1, 200):
        inner = helper.make_graph([helper.make_node("If", ["c"], [f"t{d}"], then_branch=inner, else_branch=leaf)],
                                  f"g{d}", [], [vi(f"t{d}", F, [2])])
    m = model(list(inner.node), [vi("c", TensorProto.BOOL, []), vi("x", F, [2])], [vi("t199", F, [2])])
    w.case("deep_nesting", "deep|nest|depth", w.save("deep_nesting.onnx", m), *feed_x,
           "--input", "c=" + w.path("c_true.pb"))

    with open(os.path.join(out, "cases.tsv"), "w") as f:
        f.write("\n".join(w.rows) + "\n")

    # --- byte flips of real models -------------------------------------------------------------
    flips = []
    frng = np.random.default_rng(99)
    sources = [os.path.join(TESTDATA, c, "model.onnx") for c in FLIP_SOURCES]
    sources = [s for s in sources if os.path.exists(s)] + sys.argv[2:]
    per = max(1, 240 // max(1, len(sources)))
    for src in sources:
        data = bytearray(open(src, "rb").read())
        base = os.path.basename(os.path.dirname(src)) if src.endswith("model.onnx") else \
            os.path.splitext(os.path.basename(src))[0]
        for k in range(per):
            d = bytearray(data)
            for _ in range(int(frng.integers(1, 4))):  # 1-3 bytes changed
                i = int(frng.integers(0, len(d)))
                d[i] = int(frng.integers(0, 256)) if frng.random() < 0.5 else d[i] ^ (1 << int(frng.integers(0, 8)))
            p = w.path(f"flips/{base}_{k:03d}.onnx")
            with open(p, "wb") as f:
                f.write(bytes(d))
            flips.append(p)
    with open(os.path.join(out, "flips.txt"), "w") as f:
        f.write("\n".join(flips) + "\n")
    print(f"{out}: {len(w.rows)} cases, {len(flips)} flipped models")


if __name__ == "__main__":
    main()
