#!/usr/bin/env python3
"""cuda_vs_torch.py - the GPU peer for `mixrt bench --backend cuda`: PyTorch eager and
torch.compile (mode reduce-overhead: CUDA graphs) latency of BERT-base and GPT-2 (HF
transformers, random init, same shapes as the zoo models: batch B, sequence 128), ResNet-50
and ViT-B/16 (HF), MobileNetV2 and EfficientNet-B0 (torchvision) and torchvision's video nets
(r3d_18, mc3_18, r2plus1d_18, s3d, mvit_v2_s) in bf16 on the same GPU, in the same run as
mixrt's bench rows (run mixrt first, then this).
usage: python3 scripts/cuda_vs_torch.py [--batch 1[,32]] [--models bert,gpt2,resnet50,vit,mobilenetv2,efficientnet,r3d_18,...]
       [--modes reduce-overhead[,max-autotune]]
Prints one line per (model, mode): median ms over timed iterations (CUDA events).
  python3 scripts/cuda_vs_torch.py --rebatch SRC.onnx DST.onnx N [INPUT_DIR OUT_DIR]
rewrites a zoo model exported at batch 1 for batch N (graph inputs/outputs dim 0, and the
Reshape targets [1, ...] become [0, ...]: copy the batch from the input), and tiles the
inputs of INPUT_DIR (*.npy, batch 1) into OUT_DIR, varying token ids per row."""
import argparse
import statistics


def timed(fn, warmup=20, iters=100):
    import torch
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
    """The model in bf16 on the GPU and its keyword inputs (random)."""
    import torch
    import transformers as tf
    torch.manual_seed(0)
    if name in ("mobilenetv2", "efficientnet"):
        # torchvision's MobileNetV2 and EfficientNet-B0 (the zoo's mobilenetv2.py and
        # efficientnet.py build the same layers), random init.
        import torchvision.models as tvm
        m = tvm.mobilenet_v2() if name == "mobilenetv2" else tvm.efficientnet_b0()
        m = m.cuda().eval().to(torch.bfloat16)
        return m, {"x": torch.randn(batch, 3, 224, 224, device="cuda", dtype=torch.bfloat16)}
    if name in ("r3d_18", "mc3_18", "r2plus1d_18", "s3d", "mvit_v2_s"):
        # torchvision's video nets, random init, on the clips export_torch_models.py exports
        # them with (16 frames of 112 x 112; 224 x 224 where global pools or position tables
        # need it).
        import torchvision.models.video as tvv
        m = getattr(tvv, name)(weights=None).cuda().eval().to(torch.bfloat16)
        hw = 224 if name in ("s3d", "mvit_v2_s") else 112
        return m, {"x": torch.randn(batch, 3, 16, hw, hw, device="cuda", dtype=torch.bfloat16)}
    if name in ("resnet50", "vit"):
        # HF ResNetConfig() is ResNet-50 (bottleneck, depths 3-4-6-3); ViTConfig() is ViT-B/16.
        m = tf.ResNetForImageClassification(tf.ResNetConfig()) if name == "resnet50" else \
            tf.ViTForImageClassification(tf.ViTConfig())
        m = m.cuda().eval().to(torch.bfloat16)
        return m, {"pixel_values": torch.randn(batch, 3, 224, 224, device="cuda", dtype=torch.bfloat16)}
    m = tf.BertModel(tf.BertConfig()) if name == "bert" else tf.GPT2LMHeadModel(tf.GPT2Config())
    m = m.cuda().eval().to(torch.bfloat16)
    ids = torch.randint(0, 1000, (batch, 128), device="cuda")
    mask = torch.ones(batch, 128, dtype=torch.long, device="cuda")
    return m, {"input_ids": ids, "attention_mask": mask}


def rebatch(src, dst, n, in_dir=None, out_dir=None):
    import glob
    import os

    import numpy as np
    import onnx
    from onnx import numpy_helper

    m = onnx.load(src)
    g = m.graph
    for v in list(g.input) + list(g.output):
        dims = v.type.tensor_type.shape.dim
        if len(dims) and dims[0].dim_value == 1:
            dims[0].dim_value = n
    shapes = {nd.input[1] for nd in g.node if nd.op_type == "Reshape" and len(nd.input) > 1}
    for init in g.initializer:
        if init.name in shapes:
            a = numpy_helper.to_array(init).copy()
            if a.ndim == 1 and a.size > 1 and a[0] == 1:
                a[0] = 0
                init.CopyFrom(numpy_helper.from_array(a, init.name))
    for nd in g.node:
        if nd.op_type == "Constant" and nd.output[0] in shapes:
            for at in nd.attribute:
                if at.name == "value":
                    a = numpy_helper.to_array(at.t).copy()
                    if a.ndim == 1 and a.size > 1 and a[0] == 1:
                        a[0] = 0
                        at.t.CopyFrom(numpy_helper.from_array(a, nd.output[0]))
    # Fresh value_info for the new batch (the importer takes shapes onnx infers).
    del g.value_info[:]
    m = onnx.shape_inference.infer_shapes(m)
    onnx.save(m, dst)
    if in_dir and out_dir:
        os.makedirs(out_dir, exist_ok=True)
        for f in glob.glob(os.path.join(in_dir, "*.npy")):
            a = np.load(f)
            b = np.concatenate([a] * n, axis=0)
            if "input_ids" in f and b.dtype.kind == "i":
                b = (b + np.arange(n, dtype=b.dtype)[:, None] * 7) % 30000
            np.save(os.path.join(out_dir, os.path.basename(f)), b)


def main():
    import sys
    if len(sys.argv) > 1 and sys.argv[1] == "--rebatch":
        rebatch(sys.argv[2], sys.argv[3], int(sys.argv[4]), *(sys.argv[5:7]))
        return
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", default="1")
    ap.add_argument("--models", default="bert,gpt2")
    # torch.compile modes timed after eager; both capture CUDA graphs. max-autotune also
    # times Triton / cuBLAS GEMM choices at compile time (minutes a model), so it is opt-in.
    ap.add_argument("--modes", default="reduce-overhead")
    a = ap.parse_args()
    import torch
    print("torch", torch.__version__, torch.cuda.get_device_name())
    for name in a.models.split(","):
        for batch in [int(x) for x in a.batch.split(",")]:
            m, kw = make(name, batch)
            with torch.inference_mode():
                eager = timed(lambda: m(**kw))
                print(f"TORCH {name} b{batch} eager bf16: {eager:.3f} ms", flush=True)
                for mode in a.modes.split(","):
                    c = torch.compile(m, mode=mode)
                    comp = timed(lambda: c(**kw), warmup=10)
                    print(f"TORCH {name} b{batch} compile({mode}) bf16: {comp:.3f} ms", flush=True)
                    del c
                    torch._dynamo.reset()
            del m


if __name__ == "__main__":
    main()
