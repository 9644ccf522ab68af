#!/bin/bash
# cuda_device.sh - runs the CUDA backend's checks on a GPU machine (the lent H200): the
# device and toolchain facts, the kernel test (test_cuda_kernels: every kernel and GEMM vs
# f64 host loops), the benchmark (GEMM TFLOP/s: bf16/f16/tf32 8192^3 and BERT-shaped
# products; copy and kernel bandwidth), and compute-sanitizer memcheck over the test.
# Build here first (cmake -B build-cuda ...; the binary is self-contained apart from
# libcublasLt), then run it there with the build folder carried:
#   scripts/cuda_device.sh [BUILD_DIR]        logs go to $OUT (or /tmp/cuda_out)
#     (the engines suite packs its logs into $OUT/cuda_logs.tgz, torch.log beside it)
#   scripts/cuda_device.sh engines [DIR]     the engine suite (below) from a folder DIR
#     (default build-h8/dev) holding mixrt, libmixrt_cuda.so*, the libraries the GPU host
#     lacks (libdnnl, libprotobuf-c, libOpenCL), tests/test_cuda_{kernels,engine} and
#     examples/. STEPS picks parts (default "tests plan prof bench b32 torch"; also "conv";
#     "table": the issue's table, TABLE_MODELS of resnet50,vit,bert,gpt2 at batch 1 and 32,
#     with inspect, check and the ResNet-50 build time, timed per TABLE_OUTPUTS (default
#     "host device": `mixrt bench --outputs host` and `--outputs device`, inputs and outputs
#     on the GPU like torch's); TORCH_MODELS=bert,gpt2,resnet50,vit
#     and TORCH_BATCH=1,32 choose the torch rows; TORCH_MODES=reduce-overhead,max-autotune
#     the torch.compile modes, TORCH_TIMEOUT its time limit in s).
#     "kbench": test_cuda_kernels --bench (GEMM rates, bandwidths); "pitch": its --bench-pitch; "prof4": per-layer profiles of
#     BERT and GPT-2 at batch 1 and 32 with device I/O (PROF_AB: knob A/B runs of BERT b1);
#     "seed": the seed's f32-vs-bf16-model table on CUDA (SEED_MODELS).
#     "hf": torch.onnx.export'ed transformers models (HF_MODELS, HF_BATCH, HF_EXPORTER) timed
#     and checked through the CUDA backend (see the step).
#     "ncu": Nsight Compute on NCU_KERNELS in the batch-32 bf16 NCU_MODELS; TABLE_DTYPE="f32 bf16"
#     times the bf16 exports in the table too.
#   scripts/cuda_device.sh models DIR       writes the extra test models (below) into DIR.
# Leaves the GPU's settings alone (no clocks, no resets).
set -u
if [ "${1:-}" = models ]; then
    # Extra models for tests/test_cuda_engine (written here, with /usr/bin/python3's onnx, into
    # the examples folder the device gets): patch.onnx - a ViT-style patch conv (kernel ==
    # stride) with bias, Relu, then NCHW pools (AveragePool with asymmetric pads and
    # count_include_pad, MaxPool with ceil_mode); masked_attention.onnx - the attention
    # pattern the fusion pass turns into com.mixrt Attention, with an f32 mask whose row 1 is
    # f32's lowest value everywhere (GPT-2's masking constant: a fully masked row).
    OUTD=${2:?models OUTDIR}
    mkdir -p "$OUTD"
    /usr/bin/python3 - "$OUTD" <<'PY'
import sys, numpy as np, onnx
from onnx import helper as h, TensorProto as T, numpy_helper as nh
out = sys.argv[1]
rng = np.random.default_rng(12)
def save(nodes, ins, outs, inits, name, infer=False):
    g = h.make_graph(nodes, name, ins, outs, [nh.from_array(a, n) for n, a in inits])
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 17)], producer_name="cuda_device.sh")
    if infer:  # static shapes on the intermediate values (the importer does not infer Split's)
        m = onnx.shape_inference.infer_shapes(m)
    onnx.checker.check_model(m)
    onnx.save(m, f"{out}/{name}.onnx")
W = (rng.standard_normal((32, 3, 8, 8)) * 0.1).astype(np.float32)
B = (rng.standard_normal(32) * 0.1).astype(np.float32)
nodes = [h.make_node("Conv", ["x", "w", "b"], ["y1"], kernel_shape=[8, 8], strides=[8, 8]),
         h.make_node("Relu", ["y1"], ["y2"]),
         h.make_node("AveragePool", ["y2"], ["avg"], kernel_shape=[3, 3], pads=[1, 0, 2, 1], count_include_pad=1),
         h.make_node("MaxPool", ["y2"], ["max"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1)]
save(nodes, [h.make_tensor_value_info("x", T.FLOAT, [2, 3, 48, 40])],
     [h.make_tensor_value_info("y1", T.FLOAT, [2, 32, 6, 5]), h.make_tensor_value_info("avg", T.FLOAT, [2, 32, 7, 4]),
      h.make_tensor_value_info("max", T.FLOAT, [2, 32, 4, 3])], [("w", W), ("b", B)], "patch")
S, D = 24, 32
mask = np.zeros((1, 1, S, S), np.float32)
mask[0, 0, :, :] = np.triu(np.full((S, S), np.finfo(np.float32).min, np.float32), 1)
mask[0, 0, 1, :] = np.finfo(np.float32).min
nodes = [h.make_node("Transpose", ["k"], ["kt"], perm=[0, 1, 3, 2]),
         h.make_node("MatMul", ["q", "kt"], ["s0"]),
         h.make_node("Mul", ["s0", "scale"], ["s1"]),
         h.make_node("Add", ["s1", "mask"], ["s2"]),
         h.make_node("Softmax", ["s2"], ["p"], axis=-1),
         h.make_node("MatMul", ["p", "v"], ["o"])]
qkv = [h.make_tensor_value_info(n, T.FLOAT, [2, 4, S, D]) for n in "qkv"]
save(nodes, qkv, [h.make_tensor_value_info("o", T.FLOAT, [2, 4, S, D])],
     [("scale", np.array(1 / np.sqrt(D), np.float32)), ("mask", mask)], "masked_attention")
# lm_head.onnx - products whose output rows are not 16-byte multiples (N = 1001, M = 128):
# GPT-2's LM head shape class, planned with N padded to 1024 on CUDA. y1 = x @ W1 is a
# graph output (the padded rows copied out, or read by the Cast a bf16 engine puts before
# the f32 output); y2 = softmax(x2d @ W2^T) (Gemm transB, the copy before a Softmax).
W1 = (rng.standard_normal((96, 1001)) * 0.1).astype(np.float32)
W2 = (rng.standard_normal((1001, 96)) * 0.1).astype(np.float32)
nodes = [h.make_node("MatMul", ["x", "w1"], ["y1"]),
         h.make_node("Reshape", ["x", "shape2d"], ["x2d"]),
         h.make_node("Gemm", ["x2d", "w2"], ["g2"], transB=1),
         h.make_node("Softmax", ["g2"], ["y2"], axis=-1)]
save(nodes, [h.make_tensor_value_info("x", T.FLOAT, [2, 64, 96])],
     [h.make_tensor_value_info("y1", T.FLOAT, [2, 64, 1001]), h.make_tensor_value_info("y2", T.FLOAT, [128, 1001])],
     [("w1", W1), ("w2", W2), ("shape2d", np.array([128, 96], np.int64))], "lm_head")
# qkv_split.onnx - GPT-2's fused QKV: one product [128 -> 384] with bias, Split on the last
# axis, each third viewed as [b, s, h, d] heads and read by the attention pattern (K through
# Transpose [0,2,3,1]) with a padding mask input row; on CUDA the Split launches nothing
# (the Attention reads windows of the product's rows), MIXRT_CUDA_SPLIT_VIEW=off copies.
B, S, H, D = 2, 24, 4, 32
E = H * D
Wq = (rng.standard_normal((E, 3 * E)) * 0.08).astype(np.float32)
Bq = (rng.standard_normal(3 * E) * 0.1).astype(np.float32)
pm = np.zeros((B, 1, 1, S), np.float32)
pm[1, 0, 0, S - 5:] = np.finfo(np.float32).min
nodes = [h.make_node("MatMul", ["x", "wqkv"], ["qkv0"]),
         h.make_node("Add", ["qkv0", "bqkv"], ["qkv"]),
         h.make_node("Split", ["qkv", "splits"], ["qs", "ks", "vs"], axis=2),
         h.make_node("Reshape", ["qs", "heads"], ["q4"]),
         h.make_node("Reshape", ["ks", "heads"], ["k4"]),
         h.make_node("Reshape", ["vs", "heads"], ["v4"]),
         h.make_node("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]),
         h.make_node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
         h.make_node("Transpose", ["v4"], ["vt"], perm=[0, 2, 1, 3]),
         h.make_node("MatMul", ["qt", "kt"], ["s0"]),
         h.make_node("Div", ["s0", "sqrtd"], ["s1"]),
         h.make_node("Add", ["s1", "pmask"], ["s2"]),
         h.make_node("Softmax", ["s2"], ["p"], axis=-1),
         h.make_node("MatMul", ["p", "vt"], ["o"]),
         h.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
         h.make_node("Reshape", ["ot", "merged"], ["y"])]
save(nodes, [h.make_tensor_value_info("x", T.FLOAT, [B, S, E])], [h.make_tensor_value_info("y", T.FLOAT, [B, S, E])],
     [("wqkv", Wq), ("bqkv", Bq), ("splits", np.array([E, E, E], np.int64)),
      ("heads", np.array([B, S, H, D], np.int64)), ("sqrtd", np.array(np.sqrt(D), np.float32)), ("pmask", pm),
      ("merged", np.array([B, S, E], np.int64))], "qkv_split", infer=True)
def mask_attention(mask_nodes, extra, name, mask_first):
    """Q/K/V products of x [B, S, E], two-head attention whose scores get the value "m4" that
    mask_nodes make from the int64 input "mask" [B, S] (extra: their constants), then y."""
    B, S, H, D = 2, 16, 2, 16
    E = H * D
    Wq, Wk, Wv = ((rng.standard_normal((E, E)) * 0.15).astype(np.float32) for _ in range(3))
    prod = []
    for n, w in (("q", "wq"), ("k", "wk"), ("v", "wv")):
        prod += [h.make_node("MatMul", ["x", w], [n + "0"]), h.make_node("Reshape", [n + "0", "heads"], [n + "4"])]
    att = [h.make_node("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]),
           h.make_node("Transpose", ["k4"], ["kt"], perm=[0, 2, 3, 1]),
           h.make_node("Transpose", ["v4"], ["vt"], perm=[0, 2, 1, 3]),
           h.make_node("MatMul", ["qt", "kt"], ["s0"]),
           h.make_node("Div", ["s0", "sqrtd"], ["s1"]),
           h.make_node("Add", ["s1", "m4"], ["s2"]),
           h.make_node("Softmax", ["s2"], ["p"], axis=-1),
           h.make_node("MatMul", ["p", "vt"], ["o"]),
           h.make_node("Transpose", ["o"], ["ot"], perm=[0, 2, 1, 3]),
           h.make_node("Reshape", ["ot", "merged"], ["y"])]
    nodes = mask_nodes + prod + att if mask_first else prod + mask_nodes + att
    save(nodes, [h.make_tensor_value_info("x", T.FLOAT, [B, S, E]), h.make_tensor_value_info("mask", T.INT64, [B, S])],
         [h.make_tensor_value_info("y", T.FLOAT, [B, S, E])],
         [("wq", Wq), ("wk", Wk), ("wv", Wv), ("fmin", np.array(np.finfo(np.float32).min, np.float32)),
          ("zero", np.array(0, np.float32)), ("axes12", np.array([1, 2], np.int64)),
          ("heads", np.array([B, S, H, D], np.int64)), ("sqrtd", np.array(np.sqrt(D), np.float32)),
          ("merged", np.array([B, S, E], np.int64))] + [(k, v(S)) for k, v in extra], name, infer=True)
# keep: a constant the masks below And with their input row (fully masked query rows)
def keep(S, whole):
    k = np.ones((2, S), bool)
    k[0, 0] = False  # causal_mask: query row 0 of image 0 sees no key
    if whole:
        k[1, :] = False
    return k
# mask_prologue.onnx - an HF-style padding mask built from an int64 input on the CPU (Cast to
# bool, Not; Where and Unsqueeze read them) and read by the attention after CUDA products (the
# mask's layers come after CUDA ones in node order): the CPU layers run first, then one CUDA
# graph (hoist_cpu_prologue).
mask_attention([h.make_node("Cast", ["mask"], ["mb"], to=T.BOOL),
                h.make_node("Not", ["mb"], ["pad"]),
                h.make_node("Where", ["pad", "fmin", "zero"], ["madd"]),
                h.make_node("Unsqueeze", ["madd", "axes12"], ["m4"])], [], "mask_prologue", False)
# causal_mask.onnx - GPT-2's mask as transformers exports it: And(causal constant [1,1,S,S],
# padding row [B,1,1,S] from an int64 input) then Where(mask, 0, f32 lowest), added to the
# scores: And and Where run as CUDA kernels (cuda_select), only Cast / Unsqueeze on the CPU.
mask_attention([h.make_node("Cast", ["mask"], ["mb0"], to=T.BOOL),
                h.make_node("And", ["mb0", "keep"], ["mb"]),
                h.make_node("Unsqueeze", ["mb", "axes12"], ["pad4"]),
                h.make_node("And", ["causal", "pad4"], ["vis"]),
                h.make_node("Where", ["vis", "zero", "fmin"], ["m4"])],
               [("causal", lambda S: np.tril(np.ones((S, S), bool))[None, None]),
                ("keep", lambda S: keep(S, False))], "causal_mask", True)
# pad_mask.onnx - BERT's mask as the dynamo exporter writes it: And(an all-true constant
# [1,1,S,1], padding row [B,1,1,S]), Where(mask, 0, lowest): the graph passes drop the And, the
# Attention gets the row. The input's row is Anded with a constant that masks image 1 whole
# (every query row fully masked).
mask_attention([h.make_node("Cast", ["mask"], ["mb0"], to=T.BOOL),
                h.make_node("And", ["mb0", "keep"], ["mb"]),
                h.make_node("Unsqueeze", ["mb", "axes12"], ["pad4"]),
                h.make_node("And", ["ones", "pad4"], ["vis"]),
                h.make_node("Where", ["vis", "zero", "fmin"], ["m4"])],
               [("ones", lambda S: np.ones((1, 1, S, 1), bool)), ("keep", lambda S: keep(S, True))], "pad_mask", True)
# gathernd_mask.onnx - the same mask as torch's dynamo exporter writes it: Reshape, Cast to bool,
# the padding row by GatherND with constant indices (batch_dims 0: (b, j) pairs, every third j
# negative; batch_dims 1: j alone), both Anded with the causal constant: all on CUDA.
def nd_idx(S, B=2):
    j = np.arange(S)
    j = np.where(j % 3 == 0, j - S, j)
    pairs = np.stack(np.broadcast_arrays(np.arange(B)[:, None], j[None, :]), -1)  # [B, S, 2]
    return pairs.reshape(B, 1, 1, S, 2).astype(np.int64)
mask_attention([h.make_node("Reshape", ["mask", "shape2"], ["mr"]),
                h.make_node("Cast", ["mr"], ["mb"], to=T.BOOL),
                h.make_node("GatherND", ["mb", "idx0"], ["pad0"]),
                h.make_node("GatherND", ["mb", "idx1"], ["pad1"], batch_dims=1),
                h.make_node("And", ["causal", "pad0"], ["vis0"]),
                h.make_node("And", ["vis0", "pad1"], ["vis"]),
                h.make_node("Where", ["vis", "zero", "fmin"], ["m4"])],
               [("causal", lambda S: np.tril(np.ones((S, S), bool))[None, None]),
                ("shape2", lambda S: np.array([2, S], np.int64)), ("idx0", nd_idx),
                ("idx1", lambda S: nd_idx(S)[..., 1:].reshape(2, 1, 1, S, 1))], "gathernd_mask", True)
# llama_ops.onnx - the pieces of Mistral / Qwen2 exports: RMSNorm as Pow(x, 2), ReduceMean
# (axes attribute: this onnx package stops at opset 17; the exports' opset-18 axes input is
# checked on them), Add, Sqrt, Reciprocal, Mul; the rotary half-swap (Slice, Neg, Concat)
# times sin / cos; GQA's Unsqueeze + Expand of K heads; plus Exp, ReduceSum over two trailing
# axes (keepdims 0), an InstanceNormalization of [B, E, S] (wav2vec2's group norm), Swin's
# zero Pads and MaxViT's rank-5 window attention as two Einsums (lowered to MatMuls): all on CUDA.
B, S, H, D = 2, 16, 2, 16
E = H * D
ang = rng.uniform(0, 3, (S, D)).astype(np.float32)
nodes = [h.make_node("Pow", ["x", "two"], ["x2"]),
         h.make_node("ReduceMean", ["x2"], ["ms"], axes=[-1], keepdims=1),
         h.make_node("Add", ["ms", "eps"], ["mse"]),
         h.make_node("Sqrt", ["mse"], ["rms"]),
         h.make_node("Reciprocal", ["rms"], ["inv"]),
         h.make_node("Mul", ["x", "inv"], ["xn"]),
         h.make_node("Mul", ["gamma", "xn"], ["xg"]),
         h.make_node("MatMul", ["xg", "wq"], ["q"]),
         h.make_node("Reshape", ["q", "heads"], ["q4"]),
         h.make_node("Transpose", ["q4"], ["qt"], perm=[0, 2, 1, 3]),
         h.make_node("Slice", ["qt", "s0", "s1", "ax3"], ["lo"]),
         h.make_node("Slice", ["qt", "s1", "s2", "ax3"], ["hi"]),
         h.make_node("Neg", ["hi"], ["nhi"]),
         h.make_node("Concat", ["nhi", "lo"], ["rot"], axis=-1),
         h.make_node("Mul", ["qt", "cos"], ["qc"]),
         h.make_node("Mul", ["rot", "sin"], ["qs"]),
         h.make_node("Add", ["qc", "qs"], ["qr"]),
         h.make_node("Unsqueeze", ["qr", "ax2"], ["q5"]),
         h.make_node("Expand", ["q5", "rep"], ["q5e"]),
         h.make_node("Reshape", ["q5e", "heads2"], ["y1"]),
         h.make_node("Mul", ["x", "tenth"], ["xs"]),
         h.make_node("Exp", ["xs"], ["ex"]),
         h.make_node("ReduceSum", ["ex", "last2"], ["y2"], keepdims=0),
         h.make_node("Transpose", ["xg"], ["xc"], perm=[0, 2, 1]),
         h.make_node("InstanceNormalization", ["xc", "ig", "ib"], ["y3"], epsilon=1e-5),
         h.make_node("Pad", ["x", "pads4"], ["y4"]),
         h.make_node("Pad", ["xg", "pads5", "zero"], ["y5"]),
         h.make_node("Reshape", ["qr", "win"], ["qw"]),
         h.make_node("Einsum", ["qw", "qw"], ["sc"], equation="bghid,bghjd->bghij"),
         h.make_node("Softmax", ["sc"], ["pw"], axis=-1),
         h.make_node("Einsum", ["pw", "qw"], ["y6"], equation="bghij,bghjd->bghid")]
save(nodes, [h.make_tensor_value_info("x", T.FLOAT, [B, S, E])],
     [h.make_tensor_value_info("y1", T.FLOAT, [B, 2 * H, S, D]), h.make_tensor_value_info("y2", T.FLOAT, [B]),
      h.make_tensor_value_info("y3", T.FLOAT, [B, E, S]), h.make_tensor_value_info("y4", T.FLOAT, [B, S + 3, E + 3]),
      h.make_tensor_value_info("y5", T.FLOAT, [B, S, E + 5]),
      h.make_tensor_value_info("y6", T.FLOAT, [B, H, 2, S // 2, D])],
     [("two", np.array(2, np.float32)), ("eps", np.array(1e-6, np.float32)),
      ("gamma", (1 + 0.1 * rng.standard_normal(E)).astype(np.float32)),
      ("wq", (rng.standard_normal((E, E)) * 0.2).astype(np.float32)), ("heads", np.array([B, S, H, D], np.int64)),
      ("s0", np.array([0], np.int64)), ("s1", np.array([D // 2], np.int64)), ("s2", np.array([D], np.int64)),
      ("ax3", np.array([3], np.int64)), ("cos", np.cos(ang)), ("sin", np.sin(ang)),
      ("ax2", np.array([2], np.int64)), ("rep", np.array([B, H, 2, S, D], np.int64)),
      ("heads2", np.array([B, 2 * H, S, D], np.int64)), ("tenth", np.array(0.1, np.float32)),
      ("last2", np.array([-2, -1], np.int64)),
      ("ig", (1 + 0.1 * rng.standard_normal(E)).astype(np.float32)),
      ("ib", (0.1 * rng.standard_normal(E)).astype(np.float32)),
      ("pads4", np.array([0, 1, 0, 0, 2, 3], np.int64)), ("pads5", np.array([0, 0, 0, 0, 0, 5], np.int64)),
      ("zero", np.array(0, np.float32)), ("win", np.array([B, H, 2, S // 2, D], np.int64))], "llama_ops", infer=True)
# hardswish.onnx - MobileNetV3's block: conv + HardSwish, depthwise 5x5 stride 2 + HardSwish,
# a squeeze-excite gate with HardSigmoid (alpha 1/6, torch's), the projection conv: one CUDA
# segment (the activations in the conv epilogues and the unary kernels).
cw = lambda *s: (rng.standard_normal(s) * 0.2).astype(np.float32)
nodes = [h.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         h.make_node("HardSwish", ["c1"], ["a1"]),
         h.make_node("Conv", ["a1", "wd", "bd"], ["c2"], kernel_shape=[5, 5], pads=[2, 2, 2, 2], strides=[2, 2], group=16),
         h.make_node("HardSwish", ["c2"], ["a2"]),
         h.make_node("GlobalAveragePool", ["a2"], ["gp"]),
         h.make_node("Conv", ["gp", "ws1", "bs1"], ["s1"], kernel_shape=[1, 1]),
         h.make_node("Relu", ["s1"], ["s2"]),
         h.make_node("Conv", ["s2", "ws2", "bs2"], ["s3"], kernel_shape=[1, 1]),
         h.make_node("HardSigmoid", ["s3"], ["gate"], alpha=1.0 / 6, beta=0.5),
         h.make_node("Mul", ["a2", "gate"], ["m"]),
         h.make_node("Conv", ["m", "wp", "bp"], ["y"], kernel_shape=[1, 1])]
save(nodes, [h.make_tensor_value_info("x", T.FLOAT, [2, 8, 12, 12])], [h.make_tensor_value_info("y", T.FLOAT, [2, 8, 6, 6])],
     [("w1", cw(16, 8, 3, 3)), ("b1", cw(16)), ("wd", cw(16, 1, 5, 5)), ("bd", cw(16)), ("ws1", cw(4, 16, 1, 1)),
      ("bs1", cw(4)), ("ws2", cw(16, 4, 1, 1)), ("bs2", cw(16)), ("wp", cw(8, 16, 1, 1)), ("bp", cw(8))],
     "hardswish", infer=True)
# resize.onnx - segmentation heads' upsampling: bilinear (half_pixel, sizes), bilinear
# align_corners (scales), nearest asymmetric floor (scales), pytorch_half_pixel to an odd size,
# each after a conv; all on CUDA (cuda_resize), against the CPU's taps.
nodes = [h.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
         h.make_node("Resize", ["c1", "", "", "sz1"], ["r1"], mode="linear"),
         h.make_node("Resize", ["c1", "", "sc2"], ["r2"], mode="linear", coordinate_transformation_mode="align_corners"),
         h.make_node("Resize", ["c1", "", "sc2"], ["r3"], mode="nearest", coordinate_transformation_mode="asymmetric",
                     nearest_mode="floor"),
         h.make_node("Resize", ["c1", "", "", "sz4"], ["r4"], mode="linear",
                     coordinate_transformation_mode="pytorch_half_pixel"),
         h.make_node("Add", ["r1", "r2"], ["a12"]),
         h.make_node("Add", ["a12", "r3"], ["y"]),
         h.make_node("Conv", ["r4", "w2"], ["y2"], kernel_shape=[1, 1])]
save(nodes, [h.make_tensor_value_info("x", T.FLOAT, [2, 3, 7, 9])],
     [h.make_tensor_value_info("y", T.FLOAT, [2, 6, 14, 18]), h.make_tensor_value_info("y2", T.FLOAT, [2, 4, 13, 5])],
     [("w1", cw(6, 3, 3, 3)), ("b1", cw(6)), ("w2", cw(4, 6, 1, 1)), ("sz1", np.array([2, 6, 14, 18], np.int64)),
      ("sc2", np.array([1, 1, 2, 2], np.float32)), ("sz4", np.array([2, 6, 13, 5], np.int64))], "resize", infer=True)
# conv1d.onnx - an audio stem (Whisper's: two 1-D convs, the second of stride 2, GELU-like
# activations; wav2vec2's kernel == stride conv as the patch product): all on CUDA as 2-D convs
# of height 1.
nodes = [h.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3], pads=[1, 1]),
         h.make_node("Tanh", ["c1"], ["a1"]),
         h.make_node("Conv", ["a1", "w2", "b2"], ["c2"], kernel_shape=[3], pads=[1, 1], strides=[2]),
         h.make_node("Relu", ["c2"], ["a2"]),
         h.make_node("Conv", ["a2", "w3"], ["y"], kernel_shape=[2], strides=[2])]
save(nodes, [h.make_tensor_value_info("x", T.FLOAT, [2, 8, 30])], [h.make_tensor_value_info("y", T.FLOAT, [2, 12, 7])],
     [("w1", cw(16, 8, 3)), ("b1", cw(16)), ("w2", cw(16, 16, 3)), ("b2", cw(16)), ("w3", cw(12, 16, 2))],
     "conv1d", infer=True)
# same_pad.onnx - TensorFlow-style auto_pad SAME_UPPER convs (HF EfficientNet's): a depthwise 3x3
# and a 1x1 at stride 1 (even pads: on CUDA), and a 3x3 at stride 2 on 12 pixels (total pad 1,
# uneven: cuDNN pads symmetrically, so that one runs on the CPU).
nodes = [h.make_node("Conv", ["x", "wd", "bd"], ["c1"], kernel_shape=[3, 3], auto_pad="SAME_UPPER", group=8),
         h.make_node("Relu", ["c1"], ["a1"]),
         h.make_node("Conv", ["a1", "wp"], ["y"], kernel_shape=[1, 1], auto_pad="SAME_UPPER"),
         h.make_node("Conv", ["a1", "ws"], ["y2"], kernel_shape=[3, 3], strides=[2, 2], auto_pad="SAME_UPPER")]
save(nodes, [h.make_tensor_value_info("x", T.FLOAT, [2, 8, 12, 12])],
     [h.make_tensor_value_info("y", T.FLOAT, [2, 16, 12, 12]), h.make_tensor_value_info("y2", T.FLOAT, [2, 4, 6, 6])],
     [("wd", cw(8, 1, 3, 3)), ("bd", cw(8)), ("wp", cw(16, 8, 1, 1)), ("ws", cw(4, 8, 3, 3))], "same_pad", infer=True)
# conv3d.onnx - video nets' 3-D convolutions (r3d / R(2+1)D / S3D / MViT): a 3x3x3 stem with
# bias and Relu at stride (1, 2, 2), a (1, 3, 3) spatial and a (3, 1, 1) temporal conv
# (R(2+1)D's pair; the second strided and dilated in time), a depthwise 3x3x3 (MViT's pooling
# conv) with a residual Add, a 3-D MaxPool, and the 3-D global average: all on CUDA.
nodes = [h.make_node("Conv", ["x", "w1", "b1"], ["c1"], kernel_shape=[3, 3, 3], pads=[1, 1, 1, 1, 1, 1],
                     strides=[1, 2, 2]),
         h.make_node("Relu", ["c1"], ["a1"]),
         h.make_node("Conv", ["a1", "w2"], ["c2"], kernel_shape=[1, 3, 3], pads=[0, 1, 1, 0, 1, 1]),
         h.make_node("Conv", ["c2", "w3", "b3"], ["c3"], kernel_shape=[3, 1, 1], pads=[2, 0, 0, 2, 0, 0],
                     strides=[2, 1, 1], dilations=[2, 1, 1]),
         h.make_node("Relu", ["c3"], ["a3"]),
         h.make_node("Conv", ["a3", "w4", "b4"], ["c4"], kernel_shape=[3, 3, 3], pads=[1, 1, 1, 1, 1, 1], group=16),
         h.make_node("Add", ["c4", "a3"], ["r4"]),
         h.make_node("MaxPool", ["r4"], ["p4"], kernel_shape=[1, 3, 3], strides=[1, 2, 2], pads=[0, 1, 1, 0, 1, 1]),
         h.make_node("GlobalAveragePool", ["p4"], ["y"])]
save(nodes, [h.make_tensor_value_info("x", T.FLOAT, [2, 3, 8, 20, 18])],
     [h.make_tensor_value_info("y", T.FLOAT, [2, 16, 1, 1, 1]), h.make_tensor_value_info("p4", T.FLOAT, [2, 16, 4, 5, 5])],
     [("w1", cw(8, 3, 3, 3, 3)), ("b1", cw(8)), ("w2", cw(12, 8, 1, 3, 3)), ("w3", cw(16, 12, 3, 1, 1)),
      ("b3", cw(16)), ("w4", cw(16, 1, 3, 3, 3)), ("b4", cw(16))], "conv3d", infer=True)
print("models:", out)
PY
    exit $?
fi
if [ "${1:-}" = engines ]; then
    D=${2:-build-h8/dev}
    exec bash "$(dirname "$0")/cuda_device.sh" __engines "$D"
fi
if [ "${1:-}" = __engines ]; then
    D=$2
    # The device tool returns at most 8 files from $OUT, and the steps write one log per run:
    # with $OUT set they go to a folder of their own, packed into $OUT/cuda_logs.tgz on exit
    # (a timeout included), torch.log copied beside it. Session 65 lost a table's torch.log
    # to the cap.
    if [ -n "${OUT:-}" ]; then
        LOG=$(mktemp -d /tmp/cuda_logs.XXXXXX)
        trap 'tar -C "$LOG" -czf "$OUT/cuda_logs.tgz" . 2>/dev/null; cp "$LOG/torch.log" "$OUT/" 2>/dev/null' EXIT
    else
        LOG=/tmp/cuda_out
    fi
    mkdir -p "$LOG"
    STEPS=${STEPS:-tests plan prof bench b32 torch}
    for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
             $(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null); do
        [ -e "$d/libcublasLt.so.13" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}" && break
    done
    export LD_LIBRARY_PATH="$PWD/$D:${LD_LIBRARY_PATH:-}" MIXRT_TIMING_CACHE=off
    export MIXRT_CUDA_LIBRARY="$PWD/$D/libmixrt_cuda.so"
    M="$D/mixrt"
    has() { case " $STEPS " in *" $1 "*) return 0;; esac; return 1; }
    echo "== device $(date +%T)"
    nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu --format=csv,noheader
    ldd "$M" "$D/libmixrt_cuda.so" | grep -E "not found|cublas|dnnl" | sort -u
    echo "-- cuDNN on this host:"
    ls /usr/local/cuda/include/cudnn*.h /usr/include/cudnn*.h /usr/include/x86_64-linux-gnu/cudnn*.h 2>/dev/null | head -3
    ls /usr/local/cuda/lib64/libcudnn.so* /usr/lib/x86_64-linux-gnu/libcudnn.so* 2>/dev/null | head -3
    python3 -c 'import nvidia.cudnn, os; p=list(nvidia.cudnn.__path__)[0]; print(p, sorted(os.listdir(os.path.join(p,"lib")))[:4], os.path.exists(os.path.join(p,"include","cudnn.h")))' 2>&1 | tail -1
    ZOO=/tmp/zoo
    if has bench || has prof || has b32 || has plan; then
        echo "== zoo $(date +%T)"
        python3 scripts/zoo/make_zoo.py --out $ZOO --models bert,gpt2 >"$LOG/zoo.log" 2>&1 || tail -5 "$LOG/zoo.log"
        ls $ZOO/bert $ZOO/gpt2 2>&1 | tr '\n' ' '; echo
    fi
    ins() { local z=$1 dir=${2:-$ZOO/$1/inputs_f32} a=""; for f in "$dir"/*.npy; do a="$a --input $(basename "$f" .npy)=$f"; done; echo "$a"; }
    P="--backend cuda --precision fp32,bf16"
    if has tests; then
        echo "== tests $(date +%T)"
        "$D/tests/test_cuda_kernels" >"$LOG/test_kernels.log" 2>&1; echo "test_cuda_kernels rc=$?"
        grep -E "FAIL|checks" "$LOG/test_kernels.log" | tail -8
        if grep -q "attention (flash).*FAIL" "$LOG/test_kernels.log"; then
            # a failing flash kernel must not give the table its figures
            echo "flash attention failed its kernel test: the rest runs with MIXRT_CUDA_FLASH=off"
            export MIXRT_CUDA_FLASH=off
        fi
        MIXRT_CUDA_EXAMPLES="$D/examples" "$D/tests/test_cuda_engine" >"$LOG/test_engine.log" 2>&1; echo "test_cuda_engine rc=$?"
        grep -E "FAIL|checks" "$LOG/test_engine.log" | tail -8
    fi
    if has plan; then
        echo "== plan round trip $(date +%T)"
        for m in transformer bert; do
            if [ $m = transformer ]; then f=$D/examples/transformer_f32.onnx; I="--seed 3"; else f=$ZOO/bert/f32.onnx; I=$(ins bert); fi
            rm -rf /tmp/pa /tmp/pb
            timeout 120 "$M" build $f $P -o /tmp/$m.plan 2>&1 | grep -E "error|plan|build time" | head -3
            timeout 60 "$M" run $f $P $I --output-dir /tmp/pa >/dev/null 2>"$LOG/plan_$m.a.err"; echo "run onnx rc=$?"
            timeout 60 "$M" run /tmp/$m.plan $I --output-dir /tmp/pb >/dev/null 2>"$LOG/plan_$m.b.err"; echo "run plan rc=$?"
            tail -2 "$LOG/plan_$m.b.err"
            python3 - <<PY
import glob, os, numpy as np
for a in sorted(glob.glob("/tmp/pa/*.npy")):
    x = np.load(a).astype(np.float64); y = np.load(a.replace("/tmp/pa", "/tmp/pb")).astype(np.float64)
    print("plan vs engine $m", os.path.basename(a), x.shape, "max|diff| %.3g rel %.3g equal %s" % (abs(x-y).max(), np.linalg.norm(x-y)/max(np.linalg.norm(x),1e-30), np.array_equal(x, y)))
PY
        done
        python3 - <<'PY'
# The target string patched to another compute capability, the header CRC-64/XZ redone
# (header 224 bytes + 32 per section, the count at byte 216), so only the target differs.
import struct
d = bytearray(open("/tmp/transformer.plan", "rb").read())
i = d.find(b"cuda sm_90")
d[i:i + 10] = b"cuda sm_80"
end = 224 + 32 * struct.unpack_from("<I", d, 216)[0]
c = 0xFFFFFFFFFFFFFFFF
for byte in d[:end]:
    c ^= byte
    for _ in range(8):
        c = (c >> 1) ^ (0xC96C5795D7870F42 if c & 1 else 0)
struct.pack_into("<Q", d, end, c ^ 0xFFFFFFFFFFFFFFFF)
open("/tmp/other_sm.plan", "wb").write(bytes(d))
PY
        "$M" run /tmp/other_sm.plan --seed 3 2>&1 | tail -2; echo "other-sm plan rc=$?"
    fi
    if has prof; then
        echo "== BERT profile $(date +%T)"
        if [ "${PROF_OLD:-0}" = 1 ]; then
        MIXRT_CUDA_ATTENTION=rows MIXRT_CUDA_GEMM_C=off MIXRT_CUDA_PROFILE=1 timeout 150 "$M" bench $ZOO/bert/f32.onnx $P $(ins bert) --duration-s 1 >"$LOG/prof_bert_old.log" 2>&1
        echo "-- before (row attention, residual add kernels):"; grep -A28 "cuda profile:" "$LOG/prof_bert_old.log" | head -30
        grep -A16 "cuda profile by op" "$LOG/prof_bert_old.log"
        fi
        MIXRT_CUDA_PROFILE=1 timeout 150 "$M" bench $ZOO/bert/f32.onnx $P $(ins bert) --duration-s 1 >"$LOG/prof_bert_new.log" 2>&1
        echo "-- after:"; grep "cuda profile:" "$LOG/prof_bert_new.log"; grep -A16 "cuda profile by op" "$LOG/prof_bert_new.log"
        grep -E "^ *[0-9.]+ .*(cuda_gemm|attention)" "$LOG/prof_bert_new.log" | head -6
    fi
    bench() { # label model inputs... ; env knobs before
        local label=$1; shift
        timeout 150 "$M" bench "$@" --duration-s 2 >"$LOG/bench_$label.log" 2>&1
        echo "BENCH $label rc=$? $(grep -E "runs [0-9]+ .*median" "$LOG/bench_$label.log" | head -1)"
        grep -E "error" "$LOG/bench_$label.log" | head -2
    }
    if has bench; then
        echo "== bench batch 1 $(date +%T)"
        for z in bert gpt2; do
            timeout 120 "$M" build $ZOO/$z/f32.onnx $P -o /tmp/$z.plan >"$LOG/build_$z.log" 2>&1 || tail -3 "$LOG/build_$z.log"
            bench ${z}_b1_new /tmp/$z.plan $(ins $z)
            MIXRT_CUDA_ATTENTION=rows MIXRT_CUDA_GEMM_C=off MIXRT_CUDA_PINNED=off bench ${z}_b1_old /tmp/$z.plan $(ins $z)

        done
        MIXRT_CUDA_PINNED=off bench gpt2_b1_pageable /tmp/gpt2.plan $(ins gpt2)
        for z in bert gpt2; do timeout 120 "$M" check $ZOO/$z/f32.onnx $P $(ins $z) 2>&1 | grep -E "PASS|FAIL|error" | head -3; done
    fi
    if has b32; then
        echo "== batch 32 $(date +%T)"
        for z in bert gpt2; do
            python3 scripts/cuda_vs_torch.py --rebatch $ZOO/$z/f32.onnx /tmp/${z}32.onnx 32 $ZOO/$z/inputs_f32 /tmp/${z}32_in || continue
            bench ${z}_b32_new /tmp/${z}32.onnx $P $(ins $z /tmp/${z}32_in)

        done
        MIXRT_CUDA_PROFILE=1 timeout 150 "$M" bench /tmp/bert32.onnx $P $(ins bert /tmp/bert32_in) --duration-s 1 >"$LOG/prof_bert32.log" 2>&1
        grep "cuda profile:" "$LOG/prof_bert32.log"; grep -A16 "cuda profile by op" "$LOG/prof_bert32.log"
    fi
    if has conv; then
        # cuDNN convolutions (MIXRT_CUDA_CONV=1 until verified here): the engine test's CNN,
        # ResNet-50 and ViT checked against the f64 reference, then timed (b1 and b32).
        echo "== conv $(date +%T)"
        python3 scripts/zoo/make_zoo.py --out $ZOO --models resnet50,vit >"$LOG/zoo_conv.log" 2>&1 || tail -3 "$LOG/zoo_conv.log"
        MIXRT_CUDA_CONV=1 MIXRT_CUDA_EXAMPLES="$D/examples" "$D/tests/test_cuda_engine" >"$LOG/test_engine_conv.log" 2>&1
        echo "test_cuda_engine (MIXRT_CUDA_CONV=1) rc=$?"; grep -E "FAIL|checks" "$LOG/test_engine_conv.log" | tail -5
        for z in resnet50 vit; do
            MIXRT_CUDA_CONV=1 timeout 150 "$M" check $ZOO/$z/f32.onnx $P $(ins $z) 2>&1 | grep -E "PASS|FAIL|error" | head -3
            MIXRT_CUDA_CONV=1 timeout 100 "$M" inspect $ZOO/$z/f32.onnx $P 2>&1 | grep -E "^cuda:|segments|copies per run" | head -3
            MIXRT_CUDA_CONV=1 bench ${z}_b1 $ZOO/$z/f32.onnx $P $(ins $z)
            bench ${z}_b1_convcpu $ZOO/$z/f32.onnx $P $(ins $z)
            python3 scripts/cuda_vs_torch.py --rebatch $ZOO/$z/f32.onnx /tmp/${z}32.onnx 32 $ZOO/$z/inputs_f32 /tmp/${z}32_in &&
                MIXRT_CUDA_CONV=1 bench ${z}_b32 /tmp/${z}32.onnx $P $(ins $z /tmp/${z}32_in)
        done
        MIXRT_CUDA_CONV=1 MIXRT_CUDA_PROFILE=1 timeout 150 "$M" bench $ZOO/resnet50/f32.onnx $P $(ins resnet50) --duration-s 1 >"$LOG/prof_resnet.log" 2>&1
        grep "cuda profile:" "$LOG/prof_resnet.log"; grep -A16 "cuda profile by op" "$LOG/prof_resnet.log"
    fi
    if has table; then
        # The issue's table (mixrt rows; the torch rows come from the torch step): every zoo
        # model at batch 1 and 32, f32 model with --precision fp32,bf16 (bf16 engine), the
        # segments, `mixrt check` errors (batch 1) and the ResNet-50 build time.
        echo "== table $(date +%T)"
        python3 scripts/zoo/make_zoo.py --out $ZOO --models ${TABLE_MODELS:-resnet50,vit,bert,gpt2} >"$LOG/zoo_table.log" 2>&1 || tail -3 "$LOG/zoo_table.log"
        /usr/bin/time -f "resnet50 build wall %e s" timeout 120 "$M" build $ZOO/resnet50/f32.onnx $P -o /tmp/resnet50.plan 2>&1 | grep -E "error|build time|wall" | head -3
        # TABLE_DTYPE: the ONNX models timed, f32 (default) and/or bf16 (the .bfloat16()
        # export: bf16 inputs and outputs, like the torch model it is compared with).
        for z in $(echo ${TABLE_MODELS:-resnet50,vit,bert,gpt2} | tr , ' '); do
            timeout 100 "$M" inspect $ZOO/$z/f32.onnx $P 2>&1 | grep -E "^cuda:|segments|copies per run|error" | head -3
            timeout 150 "$M" check $ZOO/$z/f32.onnx $P $(ins $z) 2>&1 | grep -E "PASS|FAIL|error|rel" | tail -3
            for dt in ${TABLE_DTYPE:-f32}; do
            sfx=$([ $dt = f32 ] || echo _$dt)
            for o in ${TABLE_OUTPUTS:-host device}; do
                bench ${z}${sfx}_b1_$o $ZOO/$z/$dt.onnx $P $(ins $z $ZOO/$z/inputs_$dt) --outputs $o
            done
            python3 scripts/cuda_vs_torch.py --rebatch $ZOO/$z/$dt.onnx /tmp/${z}${sfx}32.onnx 32 $ZOO/$z/inputs_$dt /tmp/${z}${sfx}32_in &&
                for o in ${TABLE_OUTPUTS:-host device}; do
                    bench ${z}${sfx}_b32_$o /tmp/${z}${sfx}32.onnx $P $(ins $z /tmp/${z}${sfx}32_in) --outputs $o
                done
            done
            [ "${TABLE_INSPECT32:-0}" = 1 ] && timeout 100 "$M" inspect /tmp/${z}32.onnx $P 2>&1 | grep -E "^cuda:|segments" | head -2
        done
        if [ "${TABLE_GEMMCHECK:-0}" = 1 ]; then # the batch-32 attention path, forced at batch 1
            echo "-- BERT check with MIXRT_CUDA_ATTENTION=gemm:"
            MIXRT_CUDA_ATTENTION=gemm timeout 150 "$M" check $ZOO/bert/f32.onnx $P $(ins bert) 2>&1 | grep -E "PASS|FAIL|error|rel" | tail -3
        fi
        if [ "${TABLE_FLASHCHECK:-0}" = 1 ]; then # the batch-32 attention kernel, forced at batch 1
            for z in bert gpt2; do
                echo "-- $z check with MIXRT_CUDA_FLASH=on:"
                MIXRT_CUDA_FLASH=on timeout 150 "$M" check $ZOO/$z/f32.onnx $P $(ins $z) 2>&1 | grep -E "PASS|FAIL|error|rel" | tail -3
            done
        fi
        for z in ${TABLE_PROF:-}; do # per-layer device time at batch 32
            MIXRT_CUDA_PROFILE=1 timeout 150 "$M" bench /tmp/${z}32.onnx $P $(ins $z /tmp/${z}32_in) --duration-s 1 >"$LOG/prof_${z}32.log" 2>&1
            grep "cuda profile:" "$LOG/prof_${z}32.log"; grep -A12 "cuda profile by op" "$LOG/prof_${z}32.log"
        done
    fi
    if has ncu; then
        # Nsight Compute on one launch of each kernel named in NCU_KERNELS (regexes) inside the
        # batch-32 bf16 models of NCU_MODELS (graph kernel nodes are profiled one by one).
        echo "== ncu $(date +%T)"
        python3 scripts/zoo/make_zoo.py --out $ZOO --models ${NCU_MODELS:-bert} >"$LOG/zoo_ncu.log" 2>&1 || tail -3 "$LOG/zoo_ncu.log"
        for z in $(echo ${NCU_MODELS:-bert} | tr , ' '); do
            python3 scripts/cuda_vs_torch.py --rebatch $ZOO/$z/bf16.onnx /tmp/${z}_ncu.onnx ${NCU_BATCH:-32} $ZOO/$z/inputs_bf16 /tmp/${z}_ncu_in || continue
            for k in ${NCU_KERNELS:-attention_flash}; do
                # NCU_METRICS adds metrics to the full set, e.g. the per-reason stalls:
                # 'regex:smsp__average_warps_issue_stalled_.*_per_issue_active\.ratio'
                timeout 240 ncu --graph-profiling node -k "regex:$k" -s ${NCU_SKIP:-20} -c 1 --set full \
                    ${NCU_METRICS:+--metrics "$NCU_METRICS"} \
                    "$M" bench /tmp/${z}_ncu.onnx $P $(ins $z /tmp/${z}_ncu_in) --outputs device --duration-s 0.2 --warmup-ms 20 >"$LOG/ncu_${z}_$k.log" 2>&1
                echo "-- ncu $z $k rc=$?"
                grep -E "^  [a-zA-Z_].*\(|Duration|Memory Throughput|DRAM Throughput|Compute \(SM\) Throughput|Registers Per|Achieved Occupancy|Theoretical Occupancy|Block Limit|Grid Size|Dynamic Shared|Stall|Warp Cycles Per Issued|Issued Ipc|L1/TEX Hit|Bank|Est. Speedup|One or More|Local" "$LOG/ncu_${z}_$k.log" | head -60
                [ -n "${NCU_METRICS:-}" ] && grep -E "stalled_.*ratio +[0-9.]+$" "$LOG/ncu_${z}_$k.log" | awk '$NF + 0 >= 0.05' | head -30
            done
        done
    fi
    if has kbench; then
        # cuBLASLt rates (bf16 8192^3: the ceiling the transformers' GEMM layers are measured
        # against; BERT-shaped and GPT-2 LM-head products) and kernel bandwidths.
        echo "== kernel bench $(date +%T)"
        timeout 200 "$D/tests/test_cuda_kernels" --bench >"$LOG/kbench.log" 2>&1; echo "kbench rc=$?"
        grep -E "BENCH" "$LOG/kbench.log"
    fi
    if has pitch; then
        # cuBLASLt on the row-group shapes (GPT-2's LM head at b32): pitches, alignments, batch.
        echo "== pitch bench $(date +%T)"
        timeout 200 "$D/tests/test_cuda_kernels" --bench-pitch 2>&1 | grep -E "BENCH|fail"
    fi
    if has prof4; then
        # Per-layer device time with device-resident I/O (what torch is compared on): BERT and
        # GPT-2 at batch 1 and 32; PROF_AB="VAR=value ..." adds BERT b1 runs with each knob.
        echo "== profiles $(date +%T)"
        # PROF_MODELS (default bert,gpt2), PROF_DTYPE: f32 (default) or bf16 ONNX models.
        pd=${PROF_DTYPE:-f32}
        python3 scripts/zoo/make_zoo.py --out $ZOO --models ${PROF_MODELS:-bert,gpt2} >"$LOG/zoo_prof.log" 2>&1 || tail -3 "$LOG/zoo_prof.log"
        for z in $(echo ${PROF_MODELS:-bert,gpt2} | tr , ' '); do
            python3 scripts/cuda_vs_torch.py --rebatch $ZOO/$z/$pd.onnx /tmp/${z}_p32.onnx 32 $ZOO/$z/inputs_$pd /tmp/${z}_p32_in >/dev/null || echo "rebatch $z failed"
            for b in 1 32; do
                if [ $b = 1 ]; then f=$ZOO/$z/$pd.onnx; I=$(ins $z $ZOO/$z/inputs_$pd); else f=/tmp/${z}_p32.onnx; I=$(ins $z /tmp/${z}_p32_in); fi
                bench ${z}_b${b}_dev $f $P $I --outputs device
                MIXRT_CUDA_PROFILE=1 timeout 150 "$M" bench $f $P $I --outputs device --duration-s 1 >"$LOG/prof_${z}${b}.log" 2>&1
                echo "-- $z b$b:"; grep "cuda profile:" "$LOG/prof_${z}${b}.log"; grep -A14 "cuda profile by op" "$LOG/prof_${z}${b}.log"
                grep -E "^ *[0-9.]+ " "$LOG/prof_${z}${b}.log" | head -8
            done
        done
        for kv in ${PROF_AB:-}; do
            env $kv timeout 150 "$M" bench $ZOO/bert/f32.onnx $P $(ins bert) --outputs device --duration-s 2 >"$LOG/ab_$kv.log" 2>&1
            echo "BENCH bert_b1_dev $kv $(grep -E "runs [0-9]+ .*median" "$LOG/ab_$kv.log" | head -1)"
        done
        bench bert_b1_dev_again $ZOO/bert/f32.onnx $P $(ins bert) --outputs device
    fi
    if has seed; then
        # The seed's table on the GPU: the f32 model in {fp32,bf16} against its bf16 version in
        # {fp32,bf16} and {bf16}, interleaved rows in one bench (device I/O; host I/O when refused).
        echo "== seed table $(date +%T)"
        python3 scripts/zoo/make_zoo.py --out $ZOO --models ${SEED_MODELS:-resnet50,mobilenetv2,bert,vit,gpt2,lstm} >"$LOG/zoo_seed.log" 2>&1 || tail -3 "$LOG/zoo_seed.log"
        for z in $(echo ${SEED_MODELS:-resnet50,mobilenetv2,bert,vit,gpt2,lstm} | tr , ' '); do
            C="fp32,bf16;$ZOO/$z/bf16.onnx@fp32,bf16;$ZOO/$z/bf16.onnx@bf16"
            timeout 200 "$M" bench $ZOO/$z/f32.onnx --backend cuda --compare "$C" $(ins $z) --outputs device --duration-s 1 >"$LOG/seed_$z.log" 2>&1
            rc=$?
            if [ $rc != 0 ]; then
                echo "seed $z device I/O rc=$rc: $(grep -m1 error "$LOG/seed_$z.log")"
                timeout 200 "$M" bench $ZOO/$z/f32.onnx --backend cuda --compare "$C" $(ins $z) --duration-s 1 >"$LOG/seed_$z.log" 2>&1
                rc=$?
            fi
            echo "-- seed $z rc=$rc"; grep -vE "^ *$" "$LOG/seed_$z.log" | grep -iE "fp32|bf16|median|error" | head -8
        done
    fi
    if has ab; then
        # Knob A/B at batch AB_BATCH (32) on the .bfloat16() exports, device outputs, default
        # and knob alternating twice: AB_CASES="bert:MIXRT_CUDA_GELU=exact gpt2:MIXRT_CUDA_GEMM_ROWGROUPS=off".
        echo "== ab $(date +%T)"
        AC=${AB_CASES:-bert:MIXRT_CUDA_GELU=exact gpt2:MIXRT_CUDA_GEMM_ROWGROUPS=off}
        AM=$(for cs in $AC; do echo "${cs%%:*}"; done | sort -u | paste -sd, -)
        python3 scripts/zoo/make_zoo.py --out $ZOO --models $AM >"$LOG/zoo_ab.log" 2>&1 || tail -3 "$LOG/zoo_ab.log"
        for cs in $AC; do
            z=${cs%%:*} kv=${cs#*:} b=${AB_BATCH:-32}
            [ -e /tmp/${z}_ab$b.onnx ] || python3 scripts/cuda_vs_torch.py --rebatch $ZOO/$z/bf16.onnx /tmp/${z}_ab$b.onnx $b $ZOO/$z/inputs_bf16 /tmp/${z}_ab${b}_in
            for rep in 1 2; do
                bench ab_${z}_b${b}_default_$rep /tmp/${z}_ab$b.onnx $P $(ins $z /tmp/${z}_ab${b}_in) --outputs device
                export "$kv"
                bench ab_${z}_b${b}_${kv//=/_}_$rep /tmp/${z}_ab$b.onnx $P $(ins $z /tmp/${z}_ab${b}_in) --outputs device
                unset "${kv%%=*}"
            done
        done
    fi
    if has hf; then
        # Third-party exports as a user makes them (scripts/export_torch_models.py: HF_MODELS
        # of transformers / torchvision, torch.onnx.export with HF_EXPORTER, default dynamo,
        # .bfloat16() modules) at each HF_BATCH: `mixrt bench --backend cuda` of the bf16
        # export with device I/O (inputs: mixrt's seeded random), the CUDA engine's check
        # against the CPU reference on the f32 export at batch 1.
        echo "== hf $(date +%T)"
        HM=${HF_MODELS:-hf_bert,hf_gpt2,hf_vit}
        for hb in $(echo ${HF_BATCH:-1,32} | tr , ' '); do
            PYTHONUNBUFFERED=1 timeout 400 python3 scripts/export_torch_models.py --out /tmp/hf_b$hb --models $HM \
                --exporters ${HF_EXPORTER:-dynamo} --bf16 --batch $hb >"$LOG/hf_export_b$hb.log" 2>&1 &
        done
        wait
        grep -hE "failed|Error" "$LOG"/hf_export_b*.log | head -5
        for z in $(echo $HM | tr , ' '); do
            for hb in $(echo ${HF_BATCH:-1,32} | tr , ' '); do
                f=/tmp/hf_b$hb/${z}_${HF_EXPORTER:-dynamo}_bf16.onnx
                [ -e $f ] || { echo "no $f"; continue; }
                timeout 100 "$M" inspect $f --backend cuda --precision bf16 2>&1 | grep -E "^cuda:|segments|copies per run|error" | head -3
                bench ${z}_bf16_b$hb $f --backend cuda --precision bf16 --outputs device
            done
            f=/tmp/hf_b1/${z}_${HF_EXPORTER:-dynamo}.onnx
            case ",${HF_CHECK:-all}," in # HF_CHECK: models to check (default all), "none"
                *",$z,"*|*",all,"*) [ -e $f ] && echo "-- check $z" && timeout 200 "$M" check $f $P 2>&1 | grep -E "PASS|FAIL|error|rel" | tail -2 ;;
            esac
        done
        for z in ${HF_PROF:-}; do # per-layer device time of the batch-32 bf16 export
            f=/tmp/hf_b32/${z}_${HF_EXPORTER:-dynamo}_bf16.onnx
            MIXRT_CUDA_PROFILE=1 timeout 150 "$M" bench $f --backend cuda --precision bf16 --duration-s 1 >"$LOG/prof_hf_${z}32.log" 2>&1
            grep "cuda profile:" "$LOG/prof_hf_${z}32.log"; grep -A14 "cuda profile by op" "$LOG/prof_hf_${z}32.log"
        done
    fi
    if has torch; then
        echo "== torch $(date +%T)"
        timeout ${TORCH_TIMEOUT:-240} python3 scripts/cuda_vs_torch.py --batch ${TORCH_BATCH:-1,32} --models ${TORCH_MODELS:-bert,gpt2} --modes ${TORCH_MODES:-reduce-overhead} 2>"$LOG/torch.err" | tee "$LOG/torch.log"
        tail -3 "$LOG/torch.err"
    fi
    echo "== end $(date +%T)"
    exit 0
fi
B=${1:-build-cuda}
BIN=$B/tests/test_cuda_kernels
LOG=${OUT:-/tmp/cuda_out}
mkdir -p "$LOG"
# cuBLASLt: the toolkit's, else the one the Python wheels bring.
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib \
         $(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null); do
    [ -e "$d/libcublasLt.so.13" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}" && break
done
echo "== device"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu --format=csv
ldd "$BIN" | grep -E "cublas|not found"
command -v cuobjdump >/dev/null && cuobjdump --list-elf --list-ptx "$BIN" | sort | uniq -c
echo "== test"
"$BIN" >"$LOG/test.log" 2>&1
rc=$?
grep -E "FAIL|SKIP|gather_rows out|cudaMalloc\(2|checks" "$LOG/test.log"
echo "test rc=$rc"
echo "== bench"
"$BIN" --bench 2>&1 | tee "$LOG/bench.log" | grep -E "BENCH|device|failed"
if command -v compute-sanitizer >/dev/null && [ "${CUDA_SANITIZE:-1}" = 1 ]; then
    echo "== compute-sanitizer memcheck (test)"
    timeout 240 compute-sanitizer --tool memcheck --report-api-errors no --print-limit 20 "$BIN" >"$LOG/memcheck.log" 2>&1
    echo "memcheck rc=$?"
    grep -E "ERROR SUMMARY|Invalid|checks" "$LOG/memcheck.log" | head -20
fi
echo "== summary: test rc=$rc"
exit $rc
