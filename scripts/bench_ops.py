#!/usr/bin/python3
"""Single-op and small-block benchmarks against ONNX Runtime: the ops third-party models bring
that the zoo does not (transposed convolution, Einsum attention, LSTM/GRU, GroupNorm as torch
exports it, Mish, Log, ReduceL2, TopK/ArgMax over a vocabulary, ...).

Each case is a seeded one- or few-node model written into --work (with ONNX shape inference, as
exporters leave value_info), then `mixrt bench MODEL --compare "fp32;fp32,bf16" --peer ort`:
mixrt's f32 and {fp32,bf16} engines and ONNX Runtime's CPU provider interleaved in one run, same
threads. Prints one row per case: medians and the ratios to ONNX Runtime (below 1: mixrt is faster).

Usage: /usr/bin/python3 scripts/bench_ops.py --mixrt build/mixrt [--work DIR] [--duration-s 2]
       [--cases convtranspose,einsum,...]   (needs onnxruntime-node: build/ort, as the zoo tests install)
"""
import argparse
import json
import os
import subprocess
import sys

import numpy as np
import onnx
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh


def model(path, nodes, ins, outs, inits, opset=17, seed=1):
    rng = np.random.default_rng(seed)
    g = h.make_graph(nodes, os.path.basename(path)[:-5],
                     [h.make_tensor_value_info(n, T.FLOAT, s) for n, s in ins],
                     [h.make_tensor_value_info(n, dt, None) for n, dt in outs],
                     [nh.from_array(a, n) for n, a in inits])
    m = onnx.shape_inference.infer_shapes(h.make_model(g, opset_imports=[h.make_opsetid("", opset)]))
    onnx.save(m, path)
    feeds = []
    for n, s in ins:
        f = path[:-5] + "_" + n + ".npy"
        np.save(f, rng.standard_normal(s).astype(np.float32))
        feeds.append((n, f))
    return feeds


def cases(work):
    r = np.random.default_rng(7)
    w = lambda *s: (r.standard_normal(s) * 0.05).astype(np.float32)  # noqa: E731
    c = {}
    c["convtranspose"] = lambda p: model(p, [
        h.make_node("ConvTranspose", ["x", "w", "b"], ["t"], strides=[2, 2], pads=[1, 1, 1, 1]),
        h.make_node("Relu", ["t"], ["y"])], [("x", [1, 64, 64, 64])], [("y", T.FLOAT)],
        [("w", w(64, 32, 4, 4)), ("b", w(32))])
    c["einsum"] = lambda p: model(p, [h.make_node("Einsum", ["a", "b"], ["y"], equation="bhqd,bhkd->bhqk")],
                                  [("a", [1, 12, 128, 64]), ("b", [1, 12, 128, 64])], [("y", T.FLOAT)], [])
    H = 256
    c["lstm"] = lambda p: model(p, [h.make_node("LSTM", ["x", "W", "R", "B"], ["y"], hidden_size=H)],
                                [("x", [64, 1, 128])], [("y", T.FLOAT)],
                                [("W", w(1, 4 * H, 128) * 2), ("R", w(1, 4 * H, H) * 2), ("B", w(1, 8 * H))])
    c["gru"] = lambda p: model(p, [h.make_node("GRU", ["x", "W", "R", "B"], ["y"], hidden_size=H)],
                               [("x", [64, 1, 128])], [("y", T.FLOAT)],
                               [("W", w(1, 3 * H, 128) * 2), ("R", w(1, 3 * H, H) * 2), ("B", w(1, 6 * H))])
    C, G = 320, 32
    c["groupnorm"] = lambda p: model(p, [
        h.make_node("Reshape", ["x", "s1"], ["r"]),
        h.make_node("InstanceNormalization", ["r", "one", "zero"], ["n"], epsilon=1e-5),
        h.make_node("Reshape", ["n", "s2"], ["r2"]), h.make_node("Mul", ["r2", "g"], ["m"]),
        h.make_node("Add", ["m", "bb"], ["y"])], [("x", [1, C, 64, 64])], [("y", T.FLOAT)],
        [("s1", np.array([1, G, -1], np.int64)), ("one", np.ones(G, np.float32)), ("zero", np.zeros(G, np.float32)),
         ("s2", np.array([1, C, 64, 64], np.int64)), ("g", w(C, 1, 1) + 1), ("bb", w(C, 1, 1))])
    c["mish"] = lambda p: model(p, [h.make_node("Mish", ["x"], ["y"])], [("x", [1, 64, 128, 128])],
                                [("y", T.FLOAT)], [], opset=18)
    c["log"] = lambda p: model(p, [h.make_node("Abs", ["x"], ["a"]), h.make_node("Log", ["a"], ["y"])],
                               [("x", [1, 64, 128, 128])], [("y", T.FLOAT)], [])
    c["reducel2"] = lambda p: model(p, [h.make_node("ReduceL2", ["x"], ["y"], axes=[1], keepdims=1)],
                                    [("x", [1, 256, 128, 128])], [("y", T.FLOAT)], [])
    c["topk"] = lambda p: model(p, [h.make_node("TopK", ["x", "k"], ["v", "i"], axis=-1)], [("x", [128, 50257])],
                                [("v", T.FLOAT), ("i", T.INT64)], [("k", np.array([5], np.int64))])
    c["argmax"] = lambda p: model(p, [h.make_node("ArgMax", ["x"], ["y"], axis=-1, keepdims=0)],
                                  [("x", [128, 50257])], [("y", T.INT64)], [])
    c["depthtospace"] = lambda p: model(p, [h.make_node("DepthToSpace", ["x"], ["y"], blocksize=2, mode="CRD")],
                                        [("x", [1, 256, 64, 64])], [("y", T.FLOAT)], [])
    c["resize"] = lambda p: model(p, [h.make_node("Resize", ["x", "", "sc"], ["y"], mode="linear")],
                                  [("x", [1, 64, 64, 64])], [("y", T.FLOAT)],
                                  [("sc", np.array([1, 1, 2, 2], np.float32))])
    c["conv1d"] = lambda p: model(p, [h.make_node("Conv", ["x", "w", "b"], ["c"], pads=[1, 1]),
                                      h.make_node("Relu", ["c"], ["y"])], [("x", [1, 256, 1000])], [("y", T.FLOAT)],
                                  [("w", w(256, 256, 3)), ("b", w(256))])
    c["cumsum"] = lambda p: model(p, [h.make_node("CumSum", ["x", "ax"], ["y"])], [("x", [64, 4096])],
                                  [("y", T.FLOAT)], [("ax", np.array(1, np.int64))])
    # Ops third-party detectors and transformers bring (YOLO's SPPF pool, nearest upsampling,
    # channel Concat, SiLU; attention's Softmax and its masks).
    c["maxpool5"] = lambda p: model(p, [h.make_node("MaxPool", ["x"], ["y"], kernel_shape=[5, 5], pads=[2, 2, 2, 2])],
                                    [("x", [1, 256, 40, 40])], [("y", T.FLOAT)], [])
    c["resize_nearest"] = lambda p: model(p, [h.make_node("Resize", ["x", "", "sc"], ["y"], mode="nearest")],
                                          [("x", [1, 256, 40, 40])], [("y", T.FLOAT)],
                                          [("sc", np.array([1, 1, 2, 2], np.float32))])
    c["concat"] = lambda p: model(p, [h.make_node("Concat", ["a", "b", "c"], ["y"], axis=1)],
                                  [("a", [1, 128, 80, 80]), ("b", [1, 128, 80, 80]), ("c", [1, 64, 80, 80])],
                                  [("y", T.FLOAT)], [])
    c["softmax"] = lambda p: model(p, [h.make_node("Softmax", ["x"], ["y"], axis=-1)], [("x", [1, 12, 128, 128])],
                                   [("y", T.FLOAT)], [])
    c["silu"] = lambda p: model(p, [h.make_node("Sigmoid", ["x"], ["s"]), h.make_node("Mul", ["x", "s"], ["y"])],
                                [("x", [1, 128, 80, 80])], [("y", T.FLOAT)], [])
    c["where"] = lambda p: model(p, [h.make_node("Greater", ["x", "zero"], ["m"]),
                                     h.make_node("Where", ["m", "x", "neg"], ["y"])],
                                 [("x", [1, 12, 128, 128])], [("y", T.FLOAT)],
                                 [("zero", np.zeros(1, np.float32)), ("neg", np.full(1, -1e4, np.float32))])
    # EfficientNet's blocks: a depthwise 3x3 with SiLU (and with Relu, to see SiLU's share),
    # the 1x1 expand conv of 16 channels at 112x112, and squeeze-excite's channel gate.
    silu = lambda i, o: [h.make_node("Sigmoid", [i], [o + "_s"]), h.make_node("Mul", [i, o + "_s"], [o])]  # noqa: E731
    c["dwconv_silu"] = lambda p: model(p, [h.make_node("Conv", ["x", "w", "b"], ["c"], group=32, pads=[1, 1, 1, 1])]
                                       + silu("c", "y"), [("x", [1, 32, 112, 112])], [("y", T.FLOAT)],
                                       [("w", w(32, 1, 3, 3) * 6), ("b", w(32))])
    c["dwconv_relu"] = lambda p: model(p, [h.make_node("Conv", ["x", "w", "b"], ["c"], group=32, pads=[1, 1, 1, 1]),
                                           h.make_node("Relu", ["c"], ["y"])], [("x", [1, 32, 112, 112])],
                                       [("y", T.FLOAT)], [("w", w(32, 1, 3, 3) * 6), ("b", w(32))])
    c["expand_silu"] = lambda p: model(p, [h.make_node("Conv", ["x", "w", "b"], ["c"])] + silu("c", "y"),
                                       [("x", [1, 16, 112, 112])], [("y", T.FLOAT)],
                                       [("w", w(96, 16, 1, 1) * 6), ("b", w(96))])
    c["se"] = lambda p: model(p, [h.make_node("GlobalAveragePool", ["x"], ["g"]),
                                  h.make_node("Conv", ["g", "w1", "b1"], ["r"])] + silu("r", "rs") +
                              [h.make_node("Conv", ["rs", "w2", "b2"], ["e"]), h.make_node("Sigmoid", ["e"], ["es"]),
                               h.make_node("Mul", ["x", "es"], ["y"])], [("x", [1, 96, 56, 56])], [("y", T.FLOAT)],
                              [("w1", w(4, 96, 1, 1) * 4), ("b1", w(4)), ("w2", w(96, 4, 1, 1) * 4), ("b2", w(96))])
    return c


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mixrt", required=True)
    ap.add_argument("--work", default="build/bench_ops")
    ap.add_argument("--duration-s", type=float, default=2.0)
    ap.add_argument("--cases", help="comma-separated subset (default: all)")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    all_cases = cases(a.work)
    names = a.cases.split(",") if a.cases else list(all_cases)
    for n in names:
        if n not in all_cases:
            sys.exit("bench_ops: unknown case '%s' (known: %s)" % (n, ", ".join(all_cases)))
    print("| case | mixrt fp32 ms | mixrt {fp32,bf16} ms | ONNX Runtime ms | fp32 / ORT | {fp32,bf16} / ORT | outputs agree |")
    print("|---|---|---|---|---|---|---|")
    failed = 0
    for n in names:
        path = os.path.join(a.work, n + ".onnx")
        feeds = all_cases[n](path)
        j = os.path.join(a.work, n + ".json")
        cmd = [a.mixrt, "bench", path] + sum([["--input", "%s=%s" % f] for f in feeds], []) + [
            "--compare", "fp32;fp32,bf16", "--peer", "ort", "--duration-s", str(a.duration_s), "--json", j]
        p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if p.returncode != 0:
            failed += 1
            print("| %s | error: %s |" % (n, p.stdout.strip().splitlines()[-1] if p.stdout.strip() else p.returncode))
            continue
        with open(j) as f:
            r = json.load(f)
        med = {(row["spec"] if row["backend"] != "onnxruntime" else "ort"): row["latency_ms"]["median"]
               for row in r["rows"]}
        peer = r.get("peer", {})
        ort = med.get("ort")
        f32, mix = med.get("fp32"), med.get("fp32,bf16")
        ratio = lambda v: "%.2f" % (v / ort) if v and ort else "-"  # noqa: E731
        print("| %s | %.3f | %.3f | %s | %s | %s | %s |" % (n, f32, mix, "%.3f" % ort if ort else "-", ratio(f32),
                                                         ratio(mix), peer.get("agrees", "-")))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
