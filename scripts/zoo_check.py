#!/usr/bin/python3
"""Model-zoo check (issue 3, item 4). For each zoo model (scripts/zoo/make_zoo.py, generated
into the build directory on demand):
  f32        `mixrt run` vs ONNX Runtime (npm onnxruntime-node, run by scripts/ort_run.js)
             on the same inputs: every element |m - o| <= atol + rtol*|o| (rtol 1e-3,
             atol 1e-4), identical NaN/Inf positions;
  f16, bf16  `mixrt run --strongly-typed` of the 16-bit model (every tensor computed in its
             16-bit dtype) vs `mixrt run` of its f32 twin (f32 graph holding the same
             rounded weights) on the same rounded inputs: relative-norm error <= 5e-3 (f16)
             / 2e-2 (bf16), identical NaN/Inf positions.
  mixed      `mixrt run --precision fp32,bf16` of the f32 model (weak typing: the planner
             picks bf16 where it is faster) vs `mixrt run` of it in fp32: relative-norm
             error <= 2e-2.
Prints a table (model, dtype, reference, max abs/rel error, relative-norm error, mixrt and
reference seconds, result) and writes it to WORK/zoo_report.md (+ .json). Exit status 1
when any row fails. onnxruntime-node is installed with npm into --ort-dir when missing.
Usage: zoo_check.py --mixrt build/mixrt --work build/zoo --ort-dir build/ort
                    [--models resnet50,...] [--dtypes f32,f16,bf16,mixed] [--skip-ort]"""
import argparse
import errno
import fcntl
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "zoo"))
import make_zoo  # noqa: E402

ORT_VERSION = "1.30.0"  # checked with node 20; newer ones may need a newer node
RTOL, ATOL = 1e-3, 1e-4
RELNORM = {"f16": 5e-3, "bf16": 2e-2}


def safe_name(name):
    out = "".join(c if c.isalnum() or c in "_-." else "_" for c in name)
    return "_" if out in ("", ".", "..") else out


class Lock:
    """An flock on a file: ctest may run several zoo tests at once over one work dir."""

    def __init__(self, path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        self.f = open(path, "w")

    def __enter__(self):
        fcntl.flock(self.f, fcntl.LOCK_EX)
        return self

    def __exit__(self, *a):
        fcntl.flock(self.f, fcntl.LOCK_UN)
        self.f.close()


def ensure_ort(ort_dir, version):
    """Installs onnxruntime-node into ort_dir unless it is there; returns an error text or None."""
    mod = os.path.join(ort_dir, "node_modules", "onnxruntime-node", "package.json")
    with Lock(os.path.join(ort_dir, ".install.lock")):
        if os.path.exists(mod):
            return None
        for tool in ("node", "npm"):
            if not shutil.which(tool):
                return ("'%s' is not on PATH: the zoo's f32 reference is ONNX Runtime from npm "
                        "(install Node.js 20 and npm, or pass --skip-ort)" % tool)
        print("zoo_check: installing onnxruntime-node@%s into %s (npm)" % (version, ort_dir), flush=True)
        env = dict(os.environ)
        # The package bundles the CPU runtime; its postinstall step would only fetch the
        # CUDA provider from nuget.org, which CI neither needs nor can always reach.
        env["ONNXRUNTIME_NODE_INSTALL"] = "skip"
        r = subprocess.run(["npm", "install", "--prefix", ort_dir, "--no-audit", "--no-fund", "--loglevel=error",
                            "onnxruntime-node@" + version], env=env, capture_output=True, text=True)
        if r.returncode != 0 or not os.path.exists(mod):
            return "npm install onnxruntime-node@%s failed (status %d): %s" % (
                version, r.returncode, (r.stderr or r.stdout).strip()[-2000:])
    return None


def input_args(model_dir, dtype):
    d = os.path.join(model_dir, "inputs_" + dtype)
    return [(f[:-4], os.path.join(d, f)) for f in sorted(os.listdir(d)) if f.endswith(".npy")]


def run_mixrt(mixrt, model, inputs, out_dir, timeout, extra=()):
    shutil.rmtree(out_dir, ignore_errors=True)
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    cmd = [mixrt, "run", model, "--output-dir", out_dir] + list(extra)
    for name, path in inputs:
        cmd += ["--input", "%s=%s" % (name, path)]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.time() - t0, "mixrt timed out after %d s" % timeout
    dt = time.time() - t0
    if r.returncode != 0:
        err = [ln for ln in r.stderr.splitlines() if "error" in ln] or r.stderr.splitlines()[-3:]
        sig = " (signal %d)" % -r.returncode if r.returncode < 0 else ""
        return None, dt, "mixrt exit %d%s: %s" % (r.returncode, sig, " | ".join(err)[:1500])
    return out_dir, dt, None


def run_ort(ort_dir, model, inputs, out_dir, timeout, threads):
    shutil.rmtree(out_dir, ignore_errors=True)
    cmd = ["node", os.path.join(HERE, "ort_run.js"), "--ort-dir", ort_dir, "--threads", str(threads), model,
           out_dir] + ["%s=%s" % (n, p) for n, p in inputs]
    t0 = time.time()
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return None, time.time() - t0, "ONNX Runtime timed out after %d s" % timeout
    dt = time.time() - t0
    if r.returncode != 0:
        return None, dt, "ONNX Runtime failed: " + (r.stderr.strip() or r.stdout.strip())[-1500:]
    return out_dir, dt, None


def nonfinite_mismatch(a, b):
    """Text describing the first NaN/Inf position mismatch, or None."""
    for what, fa, fb in (("NaN", np.isnan(a), np.isnan(b)), ("+Inf", np.isposinf(a), np.isposinf(b)),
                         ("-Inf", np.isneginf(a), np.isneginf(b))):
        bad = fa != fb
        if bad.any():
            i = np.unravel_index(int(np.argmax(bad)), a.shape)
            return "%s positions differ at %d elements (first at %s: %r vs %r)" % (
                what, int(bad.sum()), list(map(int, i)), float(a[i]), float(b[i]))
    return None


def compare(out_dir, ref_dir, names, mode, tol):
    """Compares every output; returns (stats dict, list of failure texts)."""
    st = {"max_abs": 0.0, "max_rel": 0.0, "relnorm": 0.0}
    fails, per = [], []
    for name in names:
        fn = safe_name(name) + ".npy"
        pa, pb = os.path.join(out_dir, fn), os.path.join(ref_dir, fn)
        if not os.path.exists(pa) or not os.path.exists(pb):
            fails.append("output '%s' missing (%s)" % (name, pa if not os.path.exists(pa) else pb))
            continue
        a = np.load(pa).astype(np.float64)
        b = np.load(pb).astype(np.float64)
        if a.shape != b.shape:
            fails.append("output '%s': shape %s, reference %s" % (name, list(a.shape), list(b.shape)))
            continue
        nf = nonfinite_mismatch(a, b)
        if nf:
            fails.append("output '%s': %s" % (name, nf))
        fin = np.isfinite(a) & np.isfinite(b)
        a, b = a[fin], b[fin]
        d = np.abs(a - b)
        max_abs = float(d.max()) if d.size else 0.0
        max_rel = float((d / np.maximum(np.abs(b), ATOL)).max()) if d.size else 0.0
        nb = float(np.linalg.norm(b))
        relnorm = float(np.linalg.norm(a - b)) / nb if nb > 0 else float(np.linalg.norm(a - b))
        st["max_abs"] = max(st["max_abs"], max_abs)
        st["max_rel"] = max(st["max_rel"], max_rel)
        st["relnorm"] = max(st["relnorm"], relnorm)
        per.append({"output": name, "max_abs": max_abs, "max_rel": max_rel, "relnorm": relnorm})
        if mode == "allclose":
            bad = d > ATOL + RTOL * np.abs(b)
            if bad.any():
                k = int(np.argmax(d - (ATOL + RTOL * np.abs(b))))
                fails.append("output '%s': %d of %d elements outside rtol %g/atol %g (worst: %r vs %r)" % (
                    name, int(bad.sum()), bad.size, RTOL, ATOL, float(a[k]), float(b[k])))
        elif relnorm > tol:
            fails.append("output '%s': relative-norm error %.3g > %g" % (name, relnorm, tol))
    st["outputs"] = per
    return st, fails


def check_model(a, name, rows):
    model_dir = os.path.join(a.work, name)
    with Lock(os.path.join(a.work, "." + name + ".lock")):
        t0 = time.time()
        make_zoo.generate(name, a.work, False)
        gen_s = time.time() - t0
    with open(os.path.join(model_dir, "stamp.json")) as f:
        outputs = json.load(f)["outputs"]
    runs = os.path.join(a.work, "runs", name)
    for dt in a.dtypes:
        row = {"model": name, "dtype": dt, "gen_s": gen_s, "fails": []}
        if dt == "f32":
            row["reference"] = "ORT " + a.ort_version if not a.skip_ort else "-"
            out, row["mixrt_s"], err = run_mixrt(a.mixrt, os.path.join(model_dir, "f32.onnx"),
                                                 input_args(model_dir, "f32"), os.path.join(runs, "mixrt_f32"),
                                                 a.timeout)
            if err:
                row["fails"].append(err)
            if a.skip_ort:
                row["ref_s"] = None
            else:
                ref, row["ref_s"], rerr = run_ort(a.ort_dir, os.path.join(model_dir, "f32.onnx"),
                                                  input_args(model_dir, "f32"), os.path.join(runs, "ort_f32"),
                                                  a.timeout, a.threads)
                if rerr:
                    row["fails"].append(rerr)
                if out and ref:
                    stats, fails = compare(out, ref, outputs, "allclose", None)
                    row.update(stats)
                    row["fails"] += fails
        elif dt == "mixed":
            row["reference"] = "mixrt fp32"
            inputs = input_args(model_dir, "f32")
            out, row["mixrt_s"], err = run_mixrt(a.mixrt, os.path.join(model_dir, "f32.onnx"), inputs,
                                                 os.path.join(runs, "mixrt_mixed"), a.timeout,
                                                 ["--precision", "fp32,bf16"])
            if err:
                row["fails"].append(err)
            ref, row["ref_s"], rerr = run_mixrt(a.mixrt, os.path.join(model_dir, "f32.onnx"), inputs,
                                                os.path.join(runs, "mixrt_fp32"), a.timeout)
            if rerr:
                row["fails"].append("fp32: " + rerr)
            if out and ref:
                stats, fails = compare(out, ref, outputs, "relnorm", RELNORM["bf16"])
                row.update(stats)
                row["fails"] += fails
        else:
            row["reference"] = "mixrt f32 twin"
            inputs = input_args(model_dir, dt)
            out, row["mixrt_s"], err = run_mixrt(a.mixrt, os.path.join(model_dir, dt + ".onnx"), inputs,
                                                 os.path.join(runs, "mixrt_" + dt), a.timeout, ["--strongly-typed"])
            if err:
                row["fails"].append(err)
            ref, row["ref_s"], rerr = run_mixrt(a.mixrt, os.path.join(model_dir, "twin_%s.onnx" % dt), inputs,
                                                os.path.join(runs, "twin_" + dt), a.timeout)
            if rerr:
                row["fails"].append("twin: " + rerr)
            if out and ref:
                stats, fails = compare(out, ref, outputs, "relnorm", RELNORM[dt])
                row.update(stats)
                row["fails"] += fails
        row["pass"] = not row["fails"] and "relnorm" in row or (dt == "f32" and a.skip_ort and not row["fails"])
        rows.append(row)
        print_row(row)
        for f in row["fails"]:
            print("    FAIL %s %s: %s" % (name, dt, f), flush=True)
        if a.verbose:
            for o in row.get("outputs", []):
                print("    %-22s max abs %.3g  max rel %.3g  rel-norm %.3g" % (o["output"], o["max_abs"],
                                                                             o["max_rel"], o["relnorm"]))
    if not a.keep_outputs:
        shutil.rmtree(runs, ignore_errors=True)
    if a.prune:
        # The model files are regenerated from the seed on the next run; CI keeps only one
        # model's files (up to 2.5 GB for GPT-2) on disk at a time.
        with Lock(os.path.join(a.work, "." + name + ".lock")):
            shutil.rmtree(model_dir, ignore_errors=True)


HEADER = "%-12s %-5s %-15s %10s %10s %10s %9s %9s  %s" % ("model", "dtype", "reference", "max abs", "max rel",
                                                         "rel-norm", "mixrt s", "ref s", "result")


def fmt(v, spec):
    return spec % v if v is not None else "-"


def row_text(r):
    return "%-12s %-5s %-15s %10s %10s %10s %9s %9s  %s" % (
        r["model"], r["dtype"], r["reference"], fmt(r.get("max_abs"), "%.3g"), fmt(r.get("max_rel"), "%.3g"),
        fmt(r.get("relnorm"), "%.3g"), fmt(r.get("mixrt_s"), "%.1f"), fmt(r.get("ref_s"), "%.1f"),
        "PASS" if r["pass"] else "FAIL")


def print_row(r):
    print(row_text(r), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mixrt", required=True)
    ap.add_argument("--work", required=True, help="where the zoo is generated and run (build dir)")
    ap.add_argument("--ort-dir", help="npm prefix for onnxruntime-node (default WORK/../ort)")
    ap.add_argument("--ort-version", default=ORT_VERSION)
    ap.add_argument("--models", default=",".join(make_zoo.MODELS))
    ap.add_argument("--dtypes", default="f32,f16,bf16,mixed")
    ap.add_argument("--skip-ort", action="store_true", help="no ONNX Runtime: f32 rows only run mixrt")
    ap.add_argument("--install-only", action="store_true", help="install onnxruntime-node and stop")
    ap.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    ap.add_argument("--timeout", type=int, default=3600, help="seconds per single run")
    ap.add_argument("--keep-outputs", action="store_true")
    ap.add_argument("--prune", action="store_true", default=os.environ.get("MIXRT_ZOO_PRUNE") == "1",
                    help="delete each model's generated files once it is checked (default: MIXRT_ZOO_PRUNE=1)")
    ap.add_argument("--verbose", action="store_true", help="per-output errors")
    a = ap.parse_args()
    a.work = os.path.abspath(a.work)
    a.mixrt = os.path.abspath(a.mixrt)
    a.ort_dir = os.path.abspath(a.ort_dir or os.path.join(a.work, "..", "ort"))
    a.dtypes = a.dtypes.split(",")
    for dt in a.dtypes:
        if dt not in ("f32", "f16", "bf16", "mixed"):
            sys.exit("zoo_check: unknown dtype '%s'" % dt)
    if not a.skip_ort and "f32" in a.dtypes:
        err = ensure_ort(a.ort_dir, a.ort_version)
        if err:
            print("zoo_check: error: " + err, file=sys.stderr)
            return 1
    if a.install_only:
        return 0
    rows = []
    print(HEADER, flush=True)
    t0 = time.time()
    for name in a.models.split(","):
        if name not in make_zoo.MODELS:
            sys.exit("zoo_check: unknown model '%s' (known: %s)" % (name, ", ".join(make_zoo.MODELS)))
        try:
            check_model(a, name, rows)
        except OSError as e:
            if e.errno != errno.ENOSPC:
                raise
            st = os.statvfs(a.work)
            print("zoo_check: error: %s: the disk is full (%.1f GiB free under %s); the zoo needs about 3 GiB "
                  "with --prune, 6 GiB without" % (name, st.f_bavail * st.f_frsize / 2**30, a.work),
                  file=sys.stderr)
            return 1
    total = time.time() - t0
    n_fail = sum(not r["pass"] for r in rows)
    summary = "%d rows, %d passed, %d failed, %.0f s" % (len(rows), len(rows) - n_fail, n_fail, total)
    print(summary, flush=True)
    # One JSON per model (ctest runs one model per test), then the table of every model
    # checked so far in this work dir: WORK/zoo_report.md.
    for name in a.models.split(","):
        with open(os.path.join(a.work, "zoo_report_%s.json" % name), "w") as f:
            json.dump([r for r in rows if r["model"] == name], f, indent=1)
    allrows = []
    for name in make_zoo.MODELS:
        p = os.path.join(a.work, "zoo_report_%s.json" % name)
        if os.path.exists(p):
            with open(p) as f:
                allrows += json.load(f)
    with open(os.path.join(a.work, "zoo_report.md"), "w") as f:
        f.write("```\n" + HEADER + "\n" + "\n".join(row_text(r) for r in allrows) + "\n```\n")
        f.write("%d rows, %d failed (times in seconds, one run each; ref s: ONNX Runtime load+run for f32, "
                "the mixrt f32 twin for f16/bf16)\n" % (len(allrows), sum(not r["pass"] for r in allrows)))
        for r in allrows:
            for x in r["fails"]:
                f.write("- FAIL %s %s: %s\n" % (r["model"], r["dtype"], x))
    return 1 if n_fail else 0


if __name__ == "__main__":
    sys.exit(main())
