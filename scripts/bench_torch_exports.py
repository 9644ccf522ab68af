#!/usr/bin/python3
"""bench_torch_exports.py - the CPU backend against ONNX Runtime on third-party models as users
export them: the skeletons scripts/export_torch_models.py --skeleton writes where torch is (the
lent GPU machine), their weights drawn again here (scripts/zoo/fill_skeleton.py), each timed by
`mixrt bench MODEL --compare "fp32;fp32,bf16" --peer ort` (interleaved rounds, same threads,
outputs checked against ONNX Runtime's), then peak resident memory of a process that builds and
runs the f32 engine only (`mixrt bench --precision fp32`) beside ONNX Runtime's (the peer's own
process in the timed run). Prints a markdown table; nothing is asserted.
usage: bench_torch_exports.py --mixrt build/mixrt --skeletons DIR [--work DIR] [--duration-s 2]
                              [--models a_dynamo,b_ts]   (default: every DIR/*.onnx)
                              [--memory-only]   (skip the timed run; ORT's peak from its last JSON)"""
import argparse
import glob
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--mixrt", required=True)
    ap.add_argument("--skeletons", required=True)
    ap.add_argument("--work", default="build/torch_exports")
    ap.add_argument("--duration-s", type=float, default=2.0)
    ap.add_argument("--models", default="")
    ap.add_argument("--memory-only", action="store_true")
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    names = [m for m in a.models.split(",") if m] or sorted(
        os.path.basename(p)[:-5] for p in glob.glob(os.path.join(a.skeletons, "*.onnx")))
    env = dict(os.environ, MIXRT_TIMING_CACHE="off")
    print("| model | ORT f32 ms | mixrt fp32 ms | ratio (<= 0.9) | mixrt {fp32,bf16} ms | ratio (<= 0.5) | outputs agree | peak RSS fp32 / ORT MiB (<= 1.0) |")
    print("|---|---|---|---|---|---|---|---|")
    for name in names:
        full, ins = os.path.join(a.work, name + ".onnx"), os.path.join(a.work, name + "_in")
        if not os.path.exists(full):
            subprocess.run([sys.executable, os.path.join(HERE, "zoo", "fill_skeleton.py"),
                            os.path.join(a.skeletons, name + ".onnx"), full, "--inputs", ins], check=True,
                           stdout=subprocess.DEVNULL)
        inputs = []
        for f in sorted(glob.glob(os.path.join(ins, "*.npy"))):
            inputs += ["--input", "%s=%s" % (os.path.basename(f)[:-4], f)]
        jpath, mpath = os.path.join(a.work, name + ".json"), os.path.join(a.work, name + "_mem.json")
        runs = [] if a.memory_only else [(["--compare", "fp32;fp32,bf16", "--peer", "ort", "--duration-s",
                                           str(a.duration_s), "--json", jpath])]
        runs.append(["--precision", "fp32", "--duration-s", "0.3", "--json", mpath])
        failed = None
        for extra in runs:
            r = subprocess.run([a.mixrt, "bench", full] + extra + inputs, env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, text=True)
            if r.returncode != 0:
                failed = (r.stderr.strip().splitlines() or ["?"])[-1][:120]
                break
        if failed or not os.path.exists(jpath):
            print("| %s | failed: %s ||||||" % (name, failed or "no timed run on record"))
            continue
        j = json.load(open(jpath))
        rows = {x["spec"]: x for x in j["rows"]}
        o, f, b = (rows[k]["latency_ms"]["median"] if k in rows else float("nan") for k in ("ort", "fp32", "fp32,bf16"))
        mem = json.load(open(mpath))["rows"][0].get("peak_rss_bytes")
        omem = rows.get("ort", {}).get("peak_rss_bytes")
        memtxt = "%.0f / %.0f (%.2f)" % (mem / 2**20, omem / 2**20, mem / omem) if mem and omem else "-"
        print("| %s | %.2f | %.2f | %.3f | %.2f | %.3f | %s | %s |" % (name, o, f, f / o, b, b / o,
                                                                      j.get("peer", {}).get("agrees"), memtxt), flush=True)


if __name__ == "__main__":
    main()
