#!/usr/bin/env python3
"""Times mixrt.torch.compile(..., backend="cuda") called with CUDA tensors (device
addresses handed to the engine: no host round trip) against torch.compile
(mode="reduce-overhead") on the same bf16 module and input, in one process: median
milliseconds per call over N calls (after a warm-up), torch.cuda.synchronize() after each.
Also checks the two outputs agree (relative-norm error). Informative: nothing is asserted.

usage: python3 scripts/torch_cuda_call.py [--model resnet50|mlp] [--batch B] [--iterations N]
  needs torch (+ torchvision for resnet50) and a GPU; MIXRT_LIBRARY / MIXRT_CUDA_LIBRARY
  name the libraries when the package is not installed next to them."""
import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))


def timed(fn, x, n):
    import torch
    for _ in range(10):
        fn(x)
    torch.cuda.synchronize()
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn(x)
        torch.cuda.synchronize()
        t.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(t)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="resnet50")
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--iterations", type=int, default=200)
    a = ap.parse_args()
    import torch
    import mixrt.torch as mt
    torch.manual_seed(0)
    if a.model == "resnet50":
        import torchvision
        m = torchvision.models.resnet50().eval()
        x = torch.randn(a.batch, 3, 224, 224)
    else:
        m = torch.nn.Sequential(torch.nn.Linear(512, 2048), torch.nn.GELU(), torch.nn.Linear(2048, 512)).eval()
        x = torch.randn(a.batch, 512)
    m = m.bfloat16().cuda()
    x = x.bfloat16().cuda()
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        cm = mt.compile(m, [x], enabled_precisions={torch.bfloat16}, backend="cuda", cache_dir=d)
        build_s = time.perf_counter() - t0
        with torch.no_grad():
            y_mixrt = cm(x)
            tc = torch.compile(m, mode="reduce-overhead")
            y_torch = tc(x)
            err = float((y_mixrt.float() - y_torch.float()).norm() / y_torch.float().norm())
            ms_mixrt = timed(cm, x, a.iterations)
            ms_torch = timed(tc, x, a.iterations)
    print(f"{a.model} b{a.batch} bf16: mixrt.torch (cuda, device tensors) {ms_mixrt:.3f} ms, "
          f"torch.compile {ms_torch:.3f} ms, ratio {ms_mixrt / ms_torch:.2f}; outputs on "
          f"{y_mixrt.device}; rel-norm error vs torch {err:.2e}; mixrt export+build {build_s:.1f} s")


if __name__ == "__main__":
    main()
