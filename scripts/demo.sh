#!/usr/bin/env bash
# The main job on the bundled examples: set up, generate the example models (a small
# CNN and a transformer encoder block, each in f32, f16 and bf16), run every one with
# `mixrt run`, and summarize the outputs and how far the precisions differ.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
out=build/examples
rm -rf "$out"
mkdir -p "$out"
/usr/bin/python3 scripts/make_examples.py "$out/models" >/dev/null
for fam in cnn transformer; do
  for dt in f32 f16 bf16; do
    model="$out/models/${fam}_${dt}.onnx"
    # Each model's input file holds the same seeded data, rounded (RNE) to its dtype.
    mapfile -t args < <(/usr/bin/python3 -c '
import json, sys
m = {x["name"]: x for x in json.load(open(sys.argv[1]))["models"]}[sys.argv[2]]
for i in m["inputs"]:
    print("--input"); print("%s=%s/%s" % (i["name"], sys.argv[3], i["file"]))
' "$out/models/manifest.json" "${fam}_${dt}" "$out/models")
    ./build/mixrt run "$model" "${args[@]}" --output-dir "$out/run_${fam}_${dt}" 2>"$out/run_${fam}_${dt}.log" || {
      cat "$out/run_${fam}_${dt}.log" >&2; exit 1; }
  done
done
/usr/bin/python3 scripts/summarize_outputs.py "$out"
