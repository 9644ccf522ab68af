#!/usr/bin/python3
"""bench_torch_exports.py - the CPU backend against ONNX Runtime on third-party models as users
export them: the skeletons scripts/export_torch_models.py --skeleton writes where torch is (the
lent GPU machine), their weights drawn again here (scripts/zoo/fill_skeleton.py), each timed by
`mixrt bench MODEL --compare "fp32;fp32,bf16" --peer ort` (interleaved rounds, same threads,
outputs checked against ONNX Runtime's). Prints a markdown table; nothing is asserted.
usage: bench_torch_exports.py --mixrt build/mixrt --skeletons DIR [--work DIR] [--duration-s 2]
                              [--models a_dynamo,b_ts]   (default: every DIR/*.onnx)"""
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
    a = ap.parse_args()
    os.makedirs(a.work, exist_ok=True)
    names = [m for m in a.models.split(",") if m] or sorted(
        os.path.basename(p)[:-5] for p in glob.glob(os.path.join(a.skeletons, "*.onnx")))
    env = dict(os.environ, MIXRT_TIMING_CACHE="off")
    print("| model | ORT f32 ms | mixrt fp32 ms | ratio (<= 0.9) | mixrt {fp32,bf16} ms | ratio (<= 0.5) | outputs agree |")
    print("|---|---|---|---|---|---|---|")
    for name in names:
        full, ins = os.path.join(a.work, name + ".onnx"), os.path.join(a.work, name + "_in")
        if not os.path.exists(full):
            subprocess.run([sys.executable, os.path.join(HERE, "zoo", "fill_skeleton.py"),
                            os.path.join(a.skeletons, name + ".onnx"), full, "--inputs", ins], check=True,
                           stdout=subprocess.DEVNULL)
        args = [a.mixrt, "bench", full, "--compare", "fp32;fp32,bf16", "--peer", "ort", "--duration-s",
                str(a.duration_s), "--json", os.path.join(a.work, name + ".json")]
        for f in sorted(glob.glob(os.path.join(ins, "*.npy"))):
            args += ["--input", "%s=%s" % (os.path.basename(f)[:-4], f)]
        r = subprocess.run(args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        if r.returncode != 0:
            print("| %s | failed: %s |||||" % (name, (r.stderr.strip().splitlines() or ["?"])[-1][:120]))
            continue
        j = json.load(open(os.path.join(a.work, name + ".json")))
        rows = {x["spec"]: x["latency_ms"]["median"] for x in j["rows"]}
        o, f, b = rows.get("ort"), rows.get("fp32"), rows.get("fp32,bf16")
        print("| %s | %.2f | %.2f | %.3f | %.2f | %.3f | %s |" % (name, o, f, f / o, b, b / o,
                                                                 j.get("peer", {}).get("agrees")), flush=True)


if __name__ == "__main__":
    main()
