#!/usr/bin/python3
"""Prints the per-run overhead of the Python package's Engine.run over the C library's own
latency on a tiny model (issue 8's target: <= 20 us). The C latency is the median of
`mixrt bench MODEL --iterations N --json`; the Python one is the median over N timed
engine.run calls (after a warm-up) on the same model and precision. Informative: nothing
is asserted.

usage: /usr/bin/python3 scripts/py_overhead.py [--build DIR] [--model PATH] [--iterations N]
  DIR defaults to build/ (libmixrt.so and the mixrt CLI there; MIXRT_LIBRARY overrides the
  library), PATH to DIR/tests/engine_models/tiny_f32.onnx (made by ctest's
  make_engine_models fixture), N to 2000."""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.path.join(REPO, "build"))
    ap.add_argument("--model")
    ap.add_argument("--iterations", type=int, default=2000)
    args = ap.parse_args()
    build = os.path.abspath(args.build)
    model = args.model or os.path.join(build, "tests", "engine_models", "tiny_f32.onnx")
    os.environ.setdefault("MIXRT_LIBRARY", os.path.join(build, "libmixrt.so"))
    os.environ.setdefault("MIXRT_TIMING_CACHE", "off")
    sys.path.insert(0, os.path.join(REPO, "python"))
    import numpy as np
    import mixrt

    # C latency, from the CLI's own benchmark.
    with tempfile.TemporaryDirectory() as tmp:
        js = os.path.join(tmp, "bench.json")
        cmd = [os.path.join(build, "mixrt"), "bench", model, "--iterations",
               str(args.iterations), "--json", js]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("py_overhead: " + " ".join(cmd) + " failed:\n" + r.stdout + r.stderr)
        with open(js) as f:
            row = json.load(f)["rows"][0]
    c_us = row["latency_ms"]["median"] * 1e3

    eng = mixrt.Engine.build(model, precision=row.get("precision", "fp32"))
    rng = np.random.default_rng(0)
    feed = {}
    for i in eng.inputs:
        shape = tuple(d if isinstance(d, int) else 1 for d in i.shape)
        dt = np.float32 if i.dtype in ("f32", "bf16") else None
        feed[i.name] = rng.uniform(-1, 1, shape).astype(dt or np.float32)
    feed_list = [feed[i.name] for i in eng.inputs]
    for _ in range(200):
        eng.run(feed)
    res = {}
    for label, arg in (("dict", feed), ("list", feed_list)):
        times = []
        clock = time.perf_counter_ns
        for _ in range(args.iterations):
            t0 = clock()
            eng.run(arg)
            times.append(clock() - t0)
        res[label] = statistics.median(times) / 1e3
    print(f"model {model}: {len(eng.inputs)} input(s), {len(eng.outputs)} output(s), "
          f"{len(eng.inspect())} layers; library {mixrt.library_path}")
    print(f"C library (mixrt bench, median of {row['runs']} runs): {c_us:8.2f} us")
    for label, us in res.items():
        print(f"Python engine.run({label} inputs), median of {args.iterations}: {us:8.2f} us  "
              f"-> overhead {us - c_us:6.2f} us per run (target <= 20 us)")


if __name__ == "__main__":
    main()
