#!/usr/bin/python3
"""ort_layers.py - where a CPU engine stands against ONNX Runtime layer by layer: the same model
profiled by `mixrt bench --profile` (each layer's median time) and by ONNX Runtime's own profiler
(scripts/ort_run.js --profile: each node's median kernel time, all graph optimizations, threads
not spinning, as bench's peer), the two matched through the model's graph: a node that only
follows another (Relu, BatchNormalization, Add, ... on a value nobody else reads) counts as part
of that one, so mixrt's FusedConv named after its Conv and ONNX Runtime's fused node named after
the chain's last output ("relu_nchwc", "/layer1/layer1.0/conv1/Relu_output_0_nchwc") meet under
the Conv's name; layers or nodes that meet under one name are summed. Prints one row per name,
largest excess of mixrt over ONNX Runtime first, then the totals and what neither side could
match. Sibling 1x1 convs that mixrt merged into one layer (merge_conv) meet under the first one's
name only; the others' ONNX Runtime nodes stay unmatched. Each side runs alone (not
interleaved), so compare rows with each other, not with `bench --peer ort`'s ratio. Nothing is
asserted.
usage: ort_layers.py --mixrt build/mixrt MODEL.onnx --input NAME=FILE.npy [...] [--precision P]
                     [--threads 2] [--runs 40] [--duration-s 3] [--work DIR] [--top 30]
ONNX Runtime comes from MIXRT_ORT_DIR or ~/.cache/mixrt/ort (where `mixrt bench --peer ort`
installs it on first use)."""
import argparse
import collections
import json
import os
import subprocess
import sys
import tempfile

import onnx

HERE = os.path.dirname(os.path.abspath(__file__))


# Ops that fusion folds into the node before them (a conv's or a product's epilogue).
FOLLOWERS = {"Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Mul", "Add", "Sub", "Div",
             "BatchNormalization", "Tanh", "Gelu", "Erf", "Elu", "Selu", "Softplus", "Identity"}


class Keys:
    """The name each node of the model, and each value, counts under (see the module doc)."""

    def __init__(self, model_path):
        g = onnx.load(model_path, load_external_data=False).graph
        self.producer, uses, self.node = {}, collections.Counter(), {}
        for i, n in enumerate(g.node):
            self.node[n.name or "#%d" % i] = n
            for o in n.output:
                if o:  # "" is an omitted optional output, not a value
                    self.producer[o] = n.name or "#%d" % i
            for v in n.input:
                uses[v] += 1
        self.key = {}
        for name, n in self.node.items():  # graph order: a producer's key is known first
            head = self.producer.get(n.input[0]) if n.input else None
            follows = n.op_type in FOLLOWERS and head is not None and uses[n.input[0]] == 1
            self.key[name] = self.key[head] if follows else name

    def of(self, name, suffixes):
        """The key of a layer or node name: the node's, or that of the value it is named after with
        one of the suffixes taken off; None when neither is in the model."""
        for s in [""] + suffixes:
            if s and not name.endswith(s):
                continue
            base = name[: -len(s)] if s else name
            if base in self.key:
                return self.key[base]
            if base in self.producer:
                return self.key[self.producer[base]]
        return None


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("model")
    ap.add_argument("--mixrt", required=True)
    ap.add_argument("--input", action="append", default=[], help="NAME=FILE.npy (repeat)")
    ap.add_argument("--precision", default="fp32")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=40, help="ONNX Runtime's profiled runs")
    ap.add_argument("--duration-s", type=float, default=3.0, help="mixrt bench's timed run")
    ap.add_argument("--work", default=None)
    ap.add_argument("--top", type=int, default=30)
    a = ap.parse_args()
    work = a.work or tempfile.mkdtemp(prefix="ort_layers_")
    os.makedirs(work, exist_ok=True)
    ort_dir = os.environ.get("MIXRT_ORT_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "mixrt", "ort")

    if not os.path.isdir(os.path.join(ort_dir, "node_modules", "onnxruntime-node")):
        print("ort_layers: no onnxruntime-node in %s (set MIXRT_ORT_DIR, or run `mixrt bench MODEL --peer ort` "
              "once: it installs it there)" % ort_dir, file=sys.stderr)
        return 2
    mj = os.path.join(work, "mixrt.json")
    cmd = [a.mixrt, "bench", a.model, "--precision", a.precision, "--threads", str(a.threads), "--duration-s",
           str(a.duration_s), "--profile", "--json", mj]
    for i in a.input:
        cmd += ["--input", i]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["node", os.path.join(HERE, "ort_run.js"), "--ort-dir", ort_dir, "--threads", str(a.threads),
                    "--opt", "all", "--profile", str(a.runs), a.model, os.path.join(work, "ort")] + a.input,
                   check=True, stdout=subprocess.DEVNULL)
    layers = json.load(open(mj))["rows"][0]["profile"]["layers"]
    nodes = json.load(open(os.path.join(work, "ort", "ort_layers.json")))["layers"]

    keys = Keys(a.model)
    mx = collections.OrderedDict()  # key -> [ms, kernels]
    for l in layers:  # and mixrt's own layers after a model node's name: "NAME/nhwc", "NAME/merged_split"
        k = keys.of(l["name"], []) or keys.of(l["name"].rsplit("/", 1)[0], [])
        e = mx.setdefault(k or l["name"], [0.0, []])
        e[0] += l["ms"]
        e[1].append(l["kernel"])
    ox = collections.OrderedDict()  # key -> [ms, ops]
    for n in nodes:
        k = keys.of(n["name"], ["_nchwc", "_output_0_nchwc", "_token_0", "_nhwc"])
        e = ox.setdefault(k or n["name"], [0.0, []])
        e[0] += n["ms"]
        e[1].append(n["op"] or "?")
    both = [p for p in mx if p in ox]
    kernels = {p: ",".join(sorted(set(mx[p][1]))) for p in both}
    rows = sorted(both, key=lambda p: ox[p][0] - mx[p][0])
    print("%s, %s, %d threads: mixrt %d layers, ONNX Runtime %d nodes, %d names matched"
          % (os.path.basename(a.model), a.precision, a.threads, len(layers), len(nodes), len(both)))
    print("| name | mixrt kernels | mixrt ms | ORT nodes | ORT ms | mixrt / ORT |")
    print("|---|---|---|---|---|---|")
    for p in rows[:a.top]:
        m, o = mx[p], ox[p]
        print("| %s | %s | %.4f | %s | %.4f | %.2f |" % (p, kernels[p], m[0],
                                                        ",".join(sorted(set(o[1]))), o[0],
                                                        m[0] / o[0] if o[0] > 0 else float("inf")))
    tm, to = sum(mx[p][0] for p in both), sum(ox[p][0] for p in both)
    um, uo = sum(v[0] for p, v in mx.items() if p not in ox), sum(v[0] for p, v in ox.items() if p not in mx)
    print("matched: mixrt %.3f ms, ONNX Runtime %.3f ms (%.3f); unmatched: mixrt %.3f ms, ONNX Runtime %.3f ms"
          % (tm, to, tm / to if to > 0 else float("inf"), um, uo))
    by_m, by_o = collections.Counter(), collections.Counter()
    for p in both:
        by_m[kernels[p]] += mx[p][0]
        by_o[kernels[p]] += ox[p][0]
    print("by mixrt kernel (matched names): " + "; ".join(
        "%s %.3f / %.3f ms" % (k, by_m[k], by_o[k]) for k, _ in by_m.most_common()))
    print("work files: " + work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
