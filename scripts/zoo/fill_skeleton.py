#!/usr/bin/python3
"""fill_skeleton.py - draws the float weights of a skeleton written by
scripts/export_torch_models.py --skeleton: each tensor whose doc_string is
"mixrt-fill MEAN STD MIN MAX" gets normal(MEAN, STD) values clipped to [MIN, MAX] (a
constant where STD is 0), seeded by --seed and the tensor's name, in its own dtype.
Also writes random inputs as .npy files (--inputs DIR): floats uniform in [-1, 1), integer
inputs named like token ids in [0, 1000), masks all ones - what export_torch_models.py
traced with; the shapes come from the model's declared inputs.
usage: fill_skeleton.py SKELETON.onnx OUT.onnx [--seed N] [--inputs DIR]"""
import argparse
import os
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, numpy_helper

NP = {TensorProto.FLOAT: np.float32, TensorProto.FLOAT16: np.float16, TensorProto.DOUBLE: np.float64}


def fill(t, seed):
    if not t.doc_string.startswith("mixrt-fill "):
        return False
    mean, std, lo, hi = (float(v) for v in t.doc_string.split()[1:5])
    n = int(np.prod(t.dims)) if len(t.dims) else 1
    rng = np.random.default_rng([seed, zlib.crc32(t.name.encode())])
    a = np.full(n, mean) if std == 0 else np.clip(rng.normal(mean, std, n), lo, hi)
    if t.data_type == TensorProto.BFLOAT16:
        b = a.astype(np.float32).view(np.uint32)
        b = ((b + 0x7FFF + ((b >> 16) & 1)) >> 16).astype(np.uint16)  # round to nearest even
        t.raw_data = b.tobytes()
    elif t.data_type in NP:
        t.raw_data = a.astype(NP[t.data_type]).tobytes()
    else:
        sys.exit("fill_skeleton: tensor '%s' has dtype %d" % (t.name, t.data_type))
    t.doc_string = ""
    return True


def walk(g, seed):
    n = 0
    for t in g.initializer:
        n += fill(t, seed)
    for node in g.node:
        for at in node.attribute:
            if at.type == onnx.AttributeProto.TENSOR:
                n += fill(at.t, seed)
            elif at.type == onnx.AttributeProto.GRAPH:
                n += walk(at.g, seed)
            elif at.type == onnx.AttributeProto.GRAPHS:
                for sg in at.graphs:
                    n += walk(sg, seed)
    return n


def write_inputs(m, d, seed):
    os.makedirs(d, exist_ok=True)
    inits = {t.name for t in m.graph.initializer}
    rng = np.random.default_rng(seed)
    for vi in m.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [x.dim_value if x.HasField("dim_value") else 1 for x in tt.shape.dim]
        et = tt.elem_type
        if et in (TensorProto.INT64, TensorProto.INT32):
            dt = np.int64 if et == TensorProto.INT64 else np.int32
            a = np.ones(shape, dt) if "mask" in vi.name else rng.integers(0, 1000, shape).astype(dt)
        elif et in NP:
            a = rng.uniform(-1, 1, shape).astype(NP[et])
        elif et == TensorProto.BFLOAT16:
            a = rng.uniform(-1, 1, shape).astype(np.float32)  # mixrt rounds f32 into bf16 inputs
        else:
            sys.exit("fill_skeleton: input '%s' has dtype %d" % (vi.name, et))
        np.save(os.path.join(d, vi.name + ".npy"), a)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("skeleton")
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--inputs")
    a = ap.parse_args()
    m = onnx.load(a.skeleton)
    n = walk(m.graph, a.seed)
    for f in m.functions:
        for node in f.node:
            for at in node.attribute:
                if at.type == onnx.AttributeProto.TENSOR:
                    n += fill(at.t, a.seed)
    onnx.save(m, a.out)
    if a.inputs:
        write_inputs(m, a.inputs, a.seed)
    print("fill_skeleton: %s: %d tensors drawn" % (a.out, n))


if __name__ == "__main__":
    main()
