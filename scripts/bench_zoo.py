#!/usr/bin/python3
"""The CPU backend's speed figures against ONNX Runtime (issue 6), all from `mixrt bench`.
For each zoo model (scripts/zoo/make_zoo.py, generated into --work on demand):
  latency    `mixrt bench f32.onnx --compare "fp32;fp32,bf16" --peer ort` (interleaved rounds,
             same threads, same process): median of mixrt fp32, mixrt {fp32,bf16} and ONNX
             Runtime f32, and each mixrt row's ratio to ONNX Runtime (targets 0.9 and 0.5);
  accuracy   `mixrt check f32.onnx --precision fp32,bf16`: worst relative-norm error (target
             2e-2);
  GEMM rate  `mixrt bench --precision P --profile` of each engine: the GFLOP/s of its matrix
             layers (MatMul, Gemm, FusedMatMul) against the machine's GEMM ceiling, measured
             first on one large product (2048 x 2048 x 2048, constant weights) per precision
             through the same kernels (oneDNN's matmul) - target 70 %;
  memory     peak resident memory of a process that builds and runs the f32 engine only
             (`mixrt bench --precision fp32`) vs ONNX Runtime's (the peer's own process).
Prints a markdown table, and writes it and a JSON object to --out (.md/.json). Nothing here
asserts on time: the table is the result; the exit status is 0 unless a command failed.
Usage: bench_zoo.py --mixrt build/mixrt [--work build/zoo] [--models resnet50,bert,...]
                    [--duration-s 20] [--out build/bench_zoo]
--models takes any zoo model, make_zoo's extra ones too (efficientnet, convnext: not in the
default list)."""
import argparse
import glob
import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "zoo"))
import make_zoo  # noqa: E402

MODELS = ["resnet50", "mobilenetv2", "bert", "vit", "gpt2"]
GEMM_OPS = ("MatMul", "Gemm", "FusedMatMul")


def run(cmd, env=None):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if p.returncode != 0:
        sys.stderr.write(p.stdout[-4000:] + p.stderr[-4000:])
        raise SystemExit("bench_zoo: failed: " + " ".join(cmd))
    return p.stdout + p.stderr


def input_args(model_dir):
    args = []
    for f in sorted(glob.glob(os.path.join(model_dir, "inputs_f32", "*.npy"))):
        args += ["--input", "%s=%s" % (os.path.splitext(os.path.basename(f))[0], f)]
    return args


def gemm_model(path, n):
    """x @ w + b: the bias makes it the fused, packed-weights GEMM the models' layers use."""
    rng = np.random.default_rng(7)
    w = numpy_helper.from_array(rng.standard_normal((n, n)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal((n,)).astype(np.float32), "b")
    g = helper.make_graph([helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], ["y"])],
                          "gemm",
                          [helper.make_tensor_value_info("x", TensorProto.FLOAT, [n, n])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, [n, n])], [w, b])
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]), path)


def bench_json(mixrt, model, extra, duration, tmp, name, env=None):
    j = os.path.join(tmp, name + ".json")
    run([mixrt, "bench", model] + extra + ["--duration-s", str(duration), "--json", j], env)
    with open(j) as f:
        return json.load(f)


def gemm_layers(prof):
    """GFLOP/s of the matrix layers of a profile (time-weighted); None when they are under a
    fifth of the time (a CNN: its one classifier layer says nothing)."""
    flops = ms = total = 0.0
    for L in prof.get("layers", []):
        total += L.get("ms") or 0
        if L.get("op") in GEMM_OPS and L.get("gflops") and L.get("ms"):
            flops += L["gflops"] * L["ms"]
            ms += L["ms"]
    return flops / ms if ms > 0 and ms >= 0.2 * total else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mixrt", required=True)
    ap.add_argument("--work", default="build/zoo")
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--duration-s", type=float, default=20)
    ap.add_argument("--out", default="build/bench_zoo")
    a = ap.parse_args()
    known = make_zoo.MODELS + make_zoo.EXTRA
    for m in a.models.split(","):
        if m not in known:
            sys.exit("bench_zoo: unknown model '%s' (known: %s)" % (m, ", ".join(known)))
    mixrt = os.path.abspath(a.mixrt)
    env = dict(os.environ)
    tmp = tempfile.mkdtemp(prefix="bench_zoo_")
    res = {"models": {}, "ceiling_gflops": {}}

    # The machine's GEMM ceiling through the same kernels, per precision.
    gm = os.path.join(tmp, "gemm2048.onnx")
    gemm_model(gm, 2048)
    for prec in ("fp32", "fp32,bf16"):
        j = bench_json(mixrt, gm, ["--precision", prec, "--profile"], 4, tmp, "gemm_" + prec.replace(",", "_"), env)
        res["ceiling_gflops"][prec] = gemm_layers(j["rows"][0].get("profile", {}))
        print("GEMM ceiling %-9s %.0f GFLOP/s (2048^3, %s)" % (prec, res["ceiling_gflops"][prec] or 0,
              ", ".join(L["kernel"] + "/" + L["precision"] for L in j["rows"][0]["profile"]["layers"])), flush=True)

    for m in a.models.split(","):
        d = os.path.join(a.work, m)
        if not os.path.exists(os.path.join(d, "f32.onnx")):
            make_zoo.generate(m, a.work, False)
        model = os.path.join(d, "f32.onnx")
        ins = input_args(d)
        r = {}
        j = bench_json(mixrt, model, ins + ["--compare", "fp32;fp32,bf16", "--peer", "ort"], a.duration_s, tmp,
                       m + "_cmp", env)
        rows = {row["spec"] if row["backend"] != "onnxruntime" else "ort": row for row in j["rows"]}
        ort = rows.get("ort")
        for spec in ("fp32", "fp32,bf16"):
            r[spec] = rows[spec]["latency_ms"]["median"]
        r["ort"] = ort["latency_ms"]["median"] if ort else None
        r["ort_peak_rss"] = ort.get("peak_rss_bytes") if ort else None
        r["peer_agrees"] = j.get("peer", {}).get("agrees")
        for spec in ("fp32", "fp32,bf16"):
            pj = bench_json(mixrt, model, ins + ["--precision", spec, "--profile"], 2, tmp,
                            m + "_prof_" + spec.replace(",", "_"), env)
            r["gemm_gflops_" + spec] = gemm_layers(pj["rows"][0].get("profile", {}))
            if spec == "fp32":
                r["mixrt_peak_rss"] = pj["rows"][0].get("peak_rss_bytes")
        out = run([mixrt, "check", model, "--precision", "fp32,bf16"] + ins)
        errs = [float(x) for x in re.findall(r"rel-norm +([0-9][0-9.eE+-]*)", out)]
        r["check_rel_norm"] = max(errs) if errs else None
        res["models"][m] = r
        print("%-12s fp32 %.2f ms  fp32,bf16 %.2f ms  ORT %.2f ms" % (m, r["fp32"], r["fp32,bf16"], r["ort"] or 0),
              flush=True)

    def fmt(v, f="%.2f"):
        return f % v if v is not None else "-"

    lines = ["| model | mixrt fp32 ms | ORT f32 ms | fp32 / ORT (≤ 0.9) | mixrt {fp32,bf16} ms | {fp32,bf16} / ORT "
             "(≤ 0.5) | check rel-norm (≤ 2e-2) | GEMM layers fp32 / bf16, % of ceiling (≥ 70) | peak RSS mixrt / ORT MiB |",
             "|---|---|---|---|---|---|---|---|---|"]
    cf, cb = res["ceiling_gflops"]["fp32"], res["ceiling_gflops"]["fp32,bf16"]
    for m, r in res["models"].items():
        o = r["ort"]
        gf, gb = r["gemm_gflops_fp32"], r["gemm_gflops_fp32,bf16"]
        lines.append("| %s | %s | %s | %s | %s | %s | %s | %s / %s | %s / %s |" % (
            m, fmt(r["fp32"]), fmt(o), fmt(r["fp32"] / o if o else None, "%.3f"), fmt(r["fp32,bf16"]),
            fmt(r["fp32,bf16"] / o if o else None, "%.3f"), fmt(r["check_rel_norm"], "%.2e"),
            fmt(100 * gf / cf if gf and cf else None, "%.0f"), fmt(100 * gb / cb if gb and cb else None, "%.0f"),
            fmt(r["mixrt_peak_rss"] / 2**20 if r.get("mixrt_peak_rss") else None, "%.0f"),
            fmt(r["ort_peak_rss"] / 2**20 if r.get("ort_peak_rss") else None, "%.0f")))
    lines.append("")
    lines.append("GEMM ceiling (2048^3 MatMul + bias, same fused kernel): fp32 %s GFLOP/s, bf16 %s GFLOP/s; "
                 "'-': GEMMs are under a fifth of the model's time" % (fmt(cf, "%.0f"),
                 fmt(cb, "%.0f")))
    table = "\n".join(lines)
    print(table)
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out + ".md", "w") as f:
        f.write(table + "\n")
    with open(a.out + ".json", "w") as f:
        json.dump(res, f, indent=1)


if __name__ == "__main__":
    main()
