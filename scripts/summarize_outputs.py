#!/usr/bin/python3
"""Summarizes the demo's runs: for every example model family, the outputs of the f32,
f16 and bf16 models (name, shape, dtype) and how far the 16-bit runs are from f32
(max absolute difference and relative L2 error). Usage: summarize_outputs.py DIR"""
import glob
import os
import sys

import numpy as np


def load_run(path):
    return {os.path.basename(f)[:-4]: np.load(f) for f in sorted(glob.glob(os.path.join(path, "*.npy")))}


def main():
    root = sys.argv[1]
    fams = sorted({os.path.basename(p).split("_")[1] for p in glob.glob(os.path.join(root, "run_*_f32"))})
    print("%-12s %-6s %-10s %-14s %-5s %12s %12s" % ("model", "dtype", "output", "shape", "npy", "max|d| vs f32",
                                                      "rel-L2 vs f32"))
    worst = 0.0
    for fam in fams:
        ref = load_run(os.path.join(root, "run_%s_f32" % fam))
        for dt in ("f32", "f16", "bf16"):
            run = load_run(os.path.join(root, "run_%s_%s" % (fam, dt)))
            for name, arr in run.items():
                r = ref[name].astype(np.float64)
                a = arr.astype(np.float64)
                maxd = float(np.max(np.abs(a - r))) if a.size else 0.0
                rel = float(np.linalg.norm(a - r) / max(np.linalg.norm(r), 1e-30))
                if dt != "f32":
                    worst = max(worst, rel)
                print("%-12s %-6s %-10s %-14s %-5s %12.3g %12.3g" % (fam, dt, name[:10], "x".join(map(str, arr.shape)),
                                                                     arr.dtype.str[1:], maxd, rel))
    print("bf16 outputs are stored in .npy widened to f32 (exact); largest 16-bit relative error: %.3g" % worst)


if __name__ == "__main__":
    main()
