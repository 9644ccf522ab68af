#!/usr/bin/env bash
# The main job on the bundled examples: set up, generate the example models (a small
# CNN and a transformer encoder block, each in f32, f16 and bf16), build each into an
# engine (plan file) in several precisions, run the plans, check their accuracy against
# the f64 reference, and benchmark the seed's table: the f32 and the bf16 model side by
# side, measured interleaved in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
out=build/examples
rm -rf "$out"
mkdir -p "$out/plans"
/usr/bin/python3 scripts/make_examples.py "$out/models" >/dev/null
mixrt=./build/mixrt
cache="$out/timing.cache"

inputs_of() { # --input NAME=PATH arguments for an example model, from its manifest
  /usr/bin/python3 -c '
import json, sys
m = {x["name"]: x for x in json.load(open(sys.argv[1]))["models"]}[sys.argv[2]]
for i in m["inputs"]:
    print("--input"); print("%s=%s/%s" % (i["name"], sys.argv[3], i["file"]))
' "$out/models/manifest.json" "$1" "$out/models"
}

echo "== build: one engine per model and precision setting (plans in $out/plans)"
for fam in cnn transformer; do
  for dt in f32 f16 bf16; do
    for prec in fp32 fp32,bf16 fp32,fp16; do
      plan="$out/plans/${fam}_${dt}_${prec/,/_}.plan"
      $mixrt build "$out/models/${fam}_${dt}.onnx" -o "$plan" --precision "$prec" --timing-cache "$cache" \
        2>"$out/build.log" | sed -n '1p' || { cat "$out/build.log" >&2; exit 1; }
    done
  done
done

echo
echo "== run: each model's fp32 plan on its input file; outputs in $out/run_*"
for fam in cnn transformer; do
  for dt in f32 f16 bf16; do
    mapfile -t args < <(inputs_of "${fam}_${dt}")
    $mixrt run "$out/plans/${fam}_${dt}_fp32.plan" "${args[@]}" --output-dir "$out/run_${fam}_${dt}" \
      2>"$out/run_${fam}_${dt}.log" || { cat "$out/run_${fam}_${dt}.log" >&2; exit 1; }
  done
done
/usr/bin/python3 scripts/summarize_outputs.py "$out"

echo
echo "== check: accuracy of the mixed-precision engines against the f64 reference"
for fam in cnn transformer; do
  for prec in fp32 fp32,bf16 fp32,fp16; do
    printf '%-12s %-10s ' "$fam" "$prec"
    res=$($mixrt check "$out/models/${fam}_f32.onnx" --precision "$prec" --timing-cache "$cache" 2>&1) \
      || { echo; echo "$res" >&2; exit 1; }
    echo "$res" | grep -E "PASS|FAIL" | head -n 1
  done
done

echo
echo "== bench: the seed's table (f32 model vs bf16 model) and ONNX Runtime, interleaved in one run"
echo "   (HTML reports: $out/bench_*.html)"
for fam in cnn transformer; do
  (cd "$out/models" && ../../../build/mixrt bench "${fam}_f32.onnx" --timing-cache ../timing.cache \
     --compare "fp32,bf16;${fam}_bf16.onnx@fp32,bf16;${fam}_bf16.onnx@bf16;fp32" --peer ort \
     --duration-s 2 --json "../bench_${fam}.json" --report "../bench_${fam}.html" 2>/dev/null \
     | sed -n '/^bench /,/^(ratio/p')
  echo
done
