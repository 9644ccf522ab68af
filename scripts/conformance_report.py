#!/usr/bin/python3
"""conformance_report.py - the conformance report: pass / fail / skip / not applicable per
case and per operator, for the suites as shipped (f32) and their bf16/f16 conversions.

Usage: conformance_report.py --out REPORT.md CSV...   (the --report files of mixrt_conformance)

Only the standard library: it runs wherever ctest does. Every failing case is listed with its
output and error; KNOWN below classifies the failures that have been investigated (a case
that fails in f32 as shipped is marked so automatically: the 16-bit variants inherit it).
"""
import argparse
import collections
import csv
import os
import sys

VERDICTS = ("pass", "fail", "skip", "n/a")

# Investigated failures: (variant or '*', suite/case) -> cause. Causes:
#   precision  - 16-bit storage legitimately exceeds the criterion (documented why);
#   test data  - the case itself is inconsistent (fails in f32 too);
#   kernel     - a mixrt kernel bug in 16-bit handling (reported to the kernel owners).
KNOWN = {
    ("f16", "node/test_reduce_prod_default_axes_keepdims_example"):
        "precision: the product 12! = 479001600 exceeds the f16 maximum 65504, so the f16 "
        "output is +Inf where the f32 reference is finite",
    ("*", "node/test_dynamicquantizelinear_expanded"):
        "precision: the expanded graph computes y_scale = (max - min) / 255 in 16 bits (bf16 "
        "0.01965332 vs f32 0.019607844); x / y_scale moves across a .5 boundary (1.34375: 68.37 vs "
        "68.53; 0.5: 25.44 vs 25.5), so uint8 y differs by 1 - the fused DynamicQuantizeLinear, "
        "which computes the scale in f32, passes",
    ("*", "node/test_dynamicquantizelinear_max_adjusted_expanded"):
        "precision: as test_dynamicquantizelinear_expanded (scale computed in 16 bits)",
    ("*", "node/test_dynamicquantizelinear_min_adjusted_expanded"):
        "precision: as test_dynamicquantizelinear_expanded (scale computed in 16 bits)",
    ("*", "node/test_castlike_BFLOAT16_to_FLOAT"):
        "test data: input 'like' is [1] but the model declares [3,4] (fails in f32 too)",
    ("*", "node/test_castlike_BFLOAT16_to_FLOAT_expanded"):
        "test data: input 'like' is [1] but the model declares [3,4] (fails in f32 too)",
    ("*", "node/test_castlike_FLOAT_to_BFLOAT16"):
        "test data: input 'like' is [1] but the model declares [3,4] (fails in f32 too)",
    ("*", "node/test_castlike_FLOAT_to_BFLOAT16_expanded"):
        "test data: input 'like' is [1] but the model declares [3,4] (fails in f32 too)",
    ("f32", "node/test_cast_FLOAT_to_BFLOAT16"):
        "test data: ONNX 1.12 made the expected bf16 by truncating the f32 bits (0x3ef5eeb0 -> "
        "0.478515625); mixrt rounds to nearest even (0.48046875) as Cast's spec says",
}
RANDOM_OPS = ("Bernoulli", "RandomUniform", "RandomNormal", "Multinomial")


def cause(variant, case_id, f32_verdict, ops):
    for key in ((variant, case_id), ("*", case_id)):
        if key in KNOWN:
            return KNOWN[key]
    if variant == "f32" and (any(o.startswith(RANDOM_OPS) for o in ops) or "training_dropout" in case_id):
        return "random: values drawn by ONNX's NumPy generator cannot be reproduced"
    if variant != "f32" and f32_verdict == "fail":
        return "fails in f32 as shipped too"
    return "not yet classified"


def pct(a, b):
    return "%.1f%%" % (100.0 * a / b) if b else "-"


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("csv", nargs="+")
    args = ap.parse_args(argv)
    rows = {}  # variant -> {case_id: row}
    for path in args.csv:
        if not os.path.exists(path):
            print("conformance_report: %s is missing (that variant did not run)" % path, file=sys.stderr)
            continue
        with open(path, newline="") as f:
            for r in csv.DictReader(f):
                rows.setdefault(r["variant"], {})[r["suite"] + "/" + r["case"]] = r
    if not rows:
        print("conformance_report: no results to report", file=sys.stderr)
        return 1
    variants = [v for v in ("f32", "bf16", "f16") if v in rows] + sorted(set(rows) - {"f32", "bf16", "f16"})
    cases = sorted(set().union(*(set(r) for r in rows.values())))
    ops_of = {}
    for c in cases:
        for v in variants:  # the f32 row names the ops of every case, N/A ones included
            r = rows[v].get(c)
            if r and r["ops"]:
                ops_of[c] = [o for o in r["ops"].split(",") if o]
                break
    f32 = rows.get("f32", {})
    out = []
    w = out.append
    w("# mixrt conformance report\n")
    w("ONNX backend test cases (libonnx-testdata: node, pytorch-converted, pytorch-operator, simple)"
      " run three ways: **f32** as shipped (rtol 1e-3, atol 1e-7 against the ONNX expected"
      " outputs) and converted to **bf16** / **f16** by `scripts/convert_dtype.py` (relative L2"
      " error <= 2e-2 / 5e-3 against the f32 model run by mixrt on the same rounded inputs and"
      " weights, identical NaN/Inf places, integer outputs exact). *Not applicable*: the case has"
      " no float32 tensor to convert. *Skip*: an unsupported (out-of-scope) operator or data that"
      " is not a plain tensor.\n")
    w("Conversion rules (details in `scripts/convert_dtype.py`): every float32 input, output,"
      " value_info, initializer, tensor attribute, Cast `to` and float dtype attribute becomes"
      " bf16/f16 (round to nearest even), in subgraphs too; the opset is kept. Tensors the spec"
      " fixes to float32 stay f32: Resize roi/scales, Upsample scales, NonMaxSuppression"
      " thresholds, Quantize/DequantizeLinear scales before opset 19, QLinearConv/QLinearMatMul"
      " scales, and the outputs LayerNormalization Mean/InvStdDev, DynamicQuantizeLinear y_scale,"
      " DequantizeLinear y (before opset 19), TfIdfVectorizer Y. Random operators pass the 16-bit"
      " variants because both runs draw mixrt's seeded numbers; they fail in f32 only because"
      " ONNX's NumPy draws cannot be reproduced.\n")
    w("## Summary\n")
    w("| variant | cases | pass | fail | skip | not applicable | pass / (pass+fail+skip) | pass / (pass+fail) |")
    w("|---|---|---|---|---|---|---|---|")
    for v in variants:
        n = collections.Counter(r["verdict"] for r in rows[v].values())
        run = n["pass"] + n["fail"] + n["skip"]
        w("| %s | %d | %d | %d | %d | %d | %s | %s |" % (v, len(rows[v]), n["pass"], n["fail"], n["skip"],
                                                         n["n/a"], pct(n["pass"], run),
                                                         pct(n["pass"], n["pass"] + n["fail"])))
    w("")
    w("## Failing cases\n")
    for v in variants:
        fails = [c for c in cases if rows[v].get(c, {}).get("verdict") == "fail"]
        w("### %s: %d failing\n" % (v, len(fails)))
        if not fails:
            continue
        w("| case | operators | cause | failing output and error |")
        w("|---|---|---|---|")
        for c in fails:
            r = rows[v][c]
            w("| %s | %s | %s | %s |" % (c, ",".join(ops_of.get(c, [])), cause(v, c, f32.get(c, {}).get("verdict"), ops_of.get(c, [])),
                                         r["detail"].replace("|", "\\|")))
        w("")
    w("## Skipped cases (out of scope or not plain tensors)\n")
    skipped = [c for c in cases if any(rows[v].get(c, {}).get("verdict") == "skip" for v in variants)]
    if skipped:
        w("| case | %s |" % " | ".join(variants))
        w("|---|%s" % "---|" * len(variants))
        for c in skipped:
            cells = []
            for v in variants:
                r = rows[v].get(c)
                cells.append(("skip: " + r["detail"]) if r and r["verdict"] == "skip" else (r["verdict"] if r else "-"))
            w("| %s | %s |" % (c, " | ".join(x.replace("|", "\\|")[:160] for x in cells)))
        w("")
    w("## Per operator\n")
    w("A case counts for every operator of its main graph. Cells: pass/fail/skip/n.a.\n")
    w("| operator | %s |" % " | ".join(variants))
    w("|---|%s" % "---|" * len(variants))
    per_op = collections.defaultdict(lambda: collections.defaultdict(collections.Counter))
    for c in cases:
        for op in ops_of.get(c, ["(unknown)"]):
            for v in variants:
                r = rows[v].get(c)
                if r:
                    per_op[op][v][r["verdict"]] += 1
    for op in sorted(per_op):
        cells = []
        for v in variants:
            n = per_op[op][v]
            cells.append("/".join(str(n[k]) for k in VERDICTS))
        w("| %s | %s |" % (op, " | ".join(cells)))
    w("")
    w("## Per case\n")
    w("max_rel: the largest relative L2 error over the checked outputs of a 16-bit variant.\n")
    w("| case | %s |" % " | ".join(variants))
    w("|---|%s" % "---|" * len(variants))
    for c in cases:
        cells = []
        for v in variants:
            r = rows[v].get(c)
            if not r:
                cells.append("-")
            elif v != "f32" and r["verdict"] in ("pass", "fail") and r["max_rel"] not in ("0", ""):
                cells.append("%s (%s)" % (r["verdict"], r["max_rel"]))
            else:
                cells.append(r["verdict"])
        w("| %s | %s |" % (c, " | ".join(cells)))
    with open(args.out, "w") as f:
        f.write("\n".join(out) + "\n")
    for v in variants:
        n = collections.Counter(r["verdict"] for r in rows[v].values())
        print("%s: %d passed, %d failed, %d skipped, %d not applicable" % (v, n["pass"], n["fail"], n["skip"],
                                                                           n["n/a"]))
    print("conformance_report: wrote %s" % args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
