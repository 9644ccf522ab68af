#!/usr/bin/python3
"""Writes the model test_plan_packed's test_release_subgraph builds (argv[1]): constants read
by products of fixed shapes (w4: only there), by an If body too (w1: also inside the body), and
by a product of data-dependent rows (w2: after NonZero); each product with a bias (a FusedMatMul,
whose kernel packs). Seeded, random weights."""
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def main():
    rng = np.random.default_rng(5)
    f = TensorProto.FLOAT
    w = {n: numpy_helper.from_array((rng.standard_normal(s) * 0.1).astype(np.float32), n)
         for n, s in (("w1", (64, 96)), ("w4", (96, 64)), ("w2", (96, 64)), ("b1", (96,)), ("b4", (64,)), ("b2", (64,)))}
    lim = numpy_helper.from_array(np.array(-1e30, np.float32), "lim")
    then_g = helper.make_graph([helper.make_node("MatMul", ["x", "w1"], ["t_out"])], "then", [],
                               [helper.make_tensor_value_info("t_out", f, [64, 96])])
    else_g = helper.make_graph([helper.make_node("Identity", ["h"], ["e_out"])], "else", [],
                               [helper.make_tensor_value_info("e_out", f, [64, 96])])
    nodes = [
        helper.make_node("MatMul", ["x", "w1"], ["h0"]),
        helper.make_node("Add", ["h0", "b1"], ["h"]),
        helper.make_node("MatMul", ["h", "w4"], ["y10"]),
        helper.make_node("Add", ["y10", "b4"], ["y1"]),
        helper.make_node("ReduceSum", ["x"], ["sx"], keepdims=0),
        helper.make_node("Greater", ["sx", "lim"], ["cond"]),
        helper.make_node("If", ["cond"], ["y3"], then_branch=then_g, else_branch=else_g),
        helper.make_node("ReduceMax", ["h"], ["hm"], axes=[1], keepdims=0),
        helper.make_node("Greater", ["hm", "zero"], ["pos"]),
        helper.make_node("NonZero", ["pos"], ["nz"]),
        helper.make_node("Squeeze", ["nz", "ax0"], ["rows"]),
        helper.make_node("Gather", ["h", "rows"], ["hd"], axis=0),
        helper.make_node("MatMul", ["hd", "w2"], ["y20"]),
        helper.make_node("Add", ["y20", "b2"], ["y2"]),
    ]
    g = helper.make_graph(nodes, "release_subgraph", [helper.make_tensor_value_info("x", f, [64, 64])],
                          [helper.make_tensor_value_info("y1", f, [64, 64]), helper.make_tensor_value_info("y2", f, ["k", 64]),
                           helper.make_tensor_value_info("y3", f, [64, 96])],
                          list(w.values()) + [lim, numpy_helper.from_array(np.array(-1e30, np.float32), "zero"),
                                              numpy_helper.from_array(np.array([0], np.int64), "ax0")])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(m)
    onnx.save(m, sys.argv[1])


if __name__ == "__main__":
    main()
