#!/usr/bin/env python3
"""cuda_vs_torch.py - the GPU peer for `mixrt bench --backend cuda`: PyTorch eager and
torch.compile (mode reduce-overhead: CUDA graphs) latency of BERT-base and GPT-2 (HF
transformers, random init, same shapes as the zoo models: batch B, sequence 128) in bf16 on
the same GPU, in the same run as mixrt's bench rows (run mixrt first, then this).
usage: python3 scripts/cuda_vs_torch.py [--batch 1] [--models bert,gpt2]
Prints one line per (model, mode): median ms over timed iterations (CUDA events)."""
import argparse
import statistics

import torch


def timed(fn, warmup=20, iters=100):
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(iters):
        a, b = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def make(name, batch):
    from transformers import BertConfig, BertModel, GPT2Config, GPT2LMHeadModel
    torch.manual_seed(0)
    if name == "bert":
        m = BertModel(BertConfig())
    else:
        m = GPT2LMHeadModel(GPT2Config())
    m = m.cuda().eval().to(torch.bfloat16)
    ids = torch.randint(0, 1000, (batch, 128), device="cuda")
    mask = torch.ones(batch, 128, dtype=torch.long, device="cuda")
    return m, ids, mask


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=1)
    ap.add_argument("--models", default="bert,gpt2")
    a = ap.parse_args()
    print("torch", torch.__version__, torch.cuda.get_device_name())
    for name in a.models.split(","):
        m, ids, mask = make(name, a.batch)
        with torch.inference_mode():
            eager = timed(lambda: m(input_ids=ids, attention_mask=mask))
            print(f"TORCH {name} b{a.batch} eager bf16: {eager:.3f} ms", flush=True)
            c = torch.compile(m, mode="reduce-overhead")
            comp = timed(lambda: c(input_ids=ids, attention_mask=mask), warmup=10)
            print(f"TORCH {name} b{a.batch} compile(reduce-overhead) bf16: {comp:.3f} ms", flush=True)


if __name__ == "__main__":
    main()
