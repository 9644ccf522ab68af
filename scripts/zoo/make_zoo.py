#!/usr/bin/python3
"""Generates the model zoo into a build directory (models are never committed):
  make_zoo.py --out DIR [--models resnet50,mobilenetv2,bert,vit,gpt2,lstm] [--force]
The default list is MODELS (what CI's zoo tests generate); EXTRA models (efficientnet,
convnext, mnasnet, googlenet: the CPU figures' third-party-like CNNs) are generated only when
--models names them.
For each model DIR/<model>/ gets
  f32.onnx, f16.onnx, bf16.onnx      the model and its 16-bit conversions (RNE)
  twin_f16.onnx, twin_bf16.onnx      f32 models holding the f16/bf16-rounded weights
  inputs_<dtype>/<input>.npy         seeded inputs; float ones rounded to <dtype> but
                                     stored as float32 (exact), integer ones unchanged
  stamp.json                         what generated it (skipped next time when unchanged)
Everything is seeded: the same sources give bit-identical files."""
import argparse
import hashlib
import json
import os
import sys
import time
import zlib

import numpy as np
import onnx

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import zoo_lib as z  # noqa: E402

MODELS = ["resnet50", "mobilenetv2", "bert", "vit", "gpt2", "lstm"]
EXTRA = ["efficientnet", "convnext", "mnasnet", "googlenet"]  # known, not in the default list (keeps CI's zoo time)
DTYPES = ["f16", "bf16"]


def sources_hash(model):
    h = hashlib.sha256()
    for f in ("zoo_lib.py", "tfm.py", "make_zoo.py", model + ".py"):
        with open(os.path.join(HERE, f), "rb") as fh:
            h.update(fh.read())
    h.update(onnx.__version__.encode() + np.__version__.encode())
    return h.hexdigest()


def generate(name, out, force):
    d = os.path.join(out, name)
    stamp_path = os.path.join(d, "stamp.json")
    digest = sources_hash(name)
    if not force and os.path.exists(stamp_path):
        with open(stamp_path) as f:
            if json.load(f).get("sources") == digest:
                print("zoo: %-12s up to date" % name, flush=True)
                return
    os.makedirs(d, exist_ok=True)
    if os.path.exists(stamp_path):
        os.remove(stamp_path)
    t0 = time.time()
    mod = __import__(name)
    seed = zlib.crc32(name.encode()) & 0xFFFF
    g, inputs = mod.build(seed)
    g.finish()
    t1 = time.time()
    g.save(os.path.join(d, "f32.onnx"))
    for dt in DTYPES:
        g.save(os.path.join(d, dt + ".onnx"), dt)
        g.save(os.path.join(d, "twin_%s.onnx" % dt), dt, twin=True)
    for dt in ["f32"] + DTYPES:
        idir = os.path.join(d, "inputs_" + dt)
        os.makedirs(idir, exist_ok=True)
        for k, v in inputs.items():
            if v.dtype == np.float32:
                v = z.round_to(v, dt)
            np.save(os.path.join(idir, k + ".npy"), v)
    size = os.path.getsize(os.path.join(d, "f32.onnx"))
    with open(stamp_path, "w") as f:
        json.dump({"sources": digest, "seed": seed, "inputs": sorted(inputs), "f32_bytes": size,
                   "outputs": [o.name for o in g.outputs]}, f)
    print("zoo: %-12s generated in %.1f s (build %.1f s), f32 model %.0f MB, %d nodes" %
          (name, time.time() - t0, t1 - t0, size / 1e6, len(g.nodes)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--force", action="store_true")
    a = ap.parse_args()
    for name in a.models.split(","):
        if name not in MODELS + EXTRA:
            sys.exit("make_zoo: unknown model '%s' (known: %s)" % (name, ", ".join(MODELS + EXTRA)))
        generate(name, a.out, a.force)


if __name__ == "__main__":
    main()
