#!/usr/bin/python3
"""Independent check of `mixrt run` on the libonnx-testdata suites, through the command
line only: each case's inputs are fed as .pb files, outputs are written as .pb and
compared with the expected outputs by NumPy (rtol 1e-3, atol 1e-7; exact for integers,
bools and strings). Prints per-suite pass rates; exits non-zero when a suite's rate is
below --min-rate. Usage:
  check_suites.py --mixrt build/mixrt [--suites pytorch-converted,simple] [--min-rate 0.95]"""
import argparse
import glob
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import numpy_helper

DATA = "/usr/share/libonnx-testdata/data"


def safe_name(name):
    out = "".join(c if c.isalnum() or c in "_-." else "_" for c in name)
    return "_" if out in ("", ".", "..") else out


def load_pb(path):
    t = onnx.TensorProto()
    with open(path, "rb") as f:
        t.ParseFromString(f.read())
    return t


def run_case(mixrt, case_dir, tmp):
    model = onnx.load(os.path.join(case_dir, "model.onnx"), load_external_data=False)
    inits = {i.name for i in model.graph.initializer}
    feed = [i.name for i in model.graph.input if i.name not in inits]
    outs = [o.name for o in model.graph.output]
    sets = sorted(glob.glob(os.path.join(case_dir, "test_data_set_*")))
    if not sets:
        return "no data"
    for ds in sets:
        args = [mixrt, "run", os.path.join(case_dir, "model.onnx"), "--output-format", "pb", "--output-dir", tmp]
        ins = sorted(glob.glob(os.path.join(ds, "input_*.pb")), key=lambda p: int(p.rsplit("_", 1)[1][:-3]))
        for i, p in enumerate(ins):
            name = load_pb(p).name or (feed[i] if i < len(feed) else None)
            if name is None:
                return "more inputs than the model has"
            args += ["--input", "%s=%s" % (name, p)]
        r = subprocess.run(args, capture_output=True, text=True, timeout=300)
        if r.returncode != 0:
            return "exit %d: %s" % (r.returncode, r.stderr.strip().splitlines()[-1] if r.stderr.strip() else "")
        for i, name in enumerate(outs):
            exp_path = os.path.join(ds, "output_%d.pb" % i)
            if not os.path.exists(exp_path):
                continue
            try:
                exp = numpy_helper.to_array(load_pb(exp_path))
            except Exception:
                return "expected output %d is not a tensor" % i
            got_path = os.path.join(tmp, safe_name(name) + ".pb")
            if not os.path.exists(got_path):
                return "output '%s' not written" % name
            got = numpy_helper.to_array(load_pb(got_path))
            if got.shape != exp.shape:
                return "output '%s' shape %s, expected %s" % (name, got.shape, exp.shape)
            if got.dtype != exp.dtype:
                return "output '%s' dtype %s, expected %s" % (name, got.dtype, exp.dtype)
            if exp.dtype.kind == "f":
                ok = np.allclose(got, exp, rtol=1e-3, atol=1e-7, equal_nan=True)
            else:
                ok = np.array_equal(got, exp)
            if not ok:
                return "output '%s' values differ" % name
    return None


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mixrt", required=True)
    ap.add_argument("--suites", default="pytorch-converted,simple")
    ap.add_argument("--min-rate", type=float, default=0.0)
    ap.add_argument("--verbose", action="store_true")
    a = ap.parse_args()
    total_ok = total = 0
    worst = 1.0
    for suite in a.suites.split(","):
        cases = sorted(d for d in glob.glob(os.path.join(DATA, suite, "*")) if os.path.isdir(d))
        ok = 0
        for c in cases:
            with tempfile.TemporaryDirectory() as tmp:
                why = run_case(a.mixrt, c, tmp)
            if why is None:
                ok += 1
            elif a.verbose:
                print("FAIL %s/%s: %s" % (suite, os.path.basename(c), why))
        rate = ok / len(cases) if cases else 0.0
        worst = min(worst, rate)
        print("%s: %d of %d cases pass (%.1f%%)" % (suite, ok, len(cases), 100 * rate))
        total_ok += ok
        total += len(cases)
    rate = total_ok / total if total else 0.0
    print("all: %d of %d cases pass (%.1f%%)" % (total_ok, total, 100 * rate))
    return 0 if rate >= a.min_rate else 1


if __name__ == "__main__":
    sys.exit(main())
