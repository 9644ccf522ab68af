#!/usr/bin/env bash
# bench_cli.sh - `mixrt bench` checked from outside (issue 5): the JSON object and its
# fields, exact run counts, per-round ratio intervals, the ONNX Runtime peer row, the
# per-layer profile, progress lines, the HTML report and usage errors. Never asserts on a
# time: only on counts, structure and relations that hold whatever the machine does.
#   usage: tests/bench_cli.sh PATH/TO/mixrt WORK_DIR GROUP
#   GROUP: json | peer | profile | progress | report | usage
# WORK_DIR/models holds the example models (the cli_examples fixture). peer exits 77
# (skipped) when node is not installed. Each failure prints a one-line reproduction.
set -uo pipefail
mixrt="${1:?usage: bench_cli.sh PATH/TO/mixrt WORK_DIR GROUP}"
work="${2:?usage: bench_cli.sh PATH/TO/mixrt WORK_DIR GROUP}"
group="${3:?usage: bench_cli.sh PATH/TO/mixrt WORK_DIR GROUP}"
py=/usr/bin/python3
models="$work/models"
d="$work/bench_$group"
rm -rf "$d"
mkdir -p "$d"
failed=0
passed=0

fail() { # WHAT REPRO...
    local what="$1"
    shift
    echo "FAIL: $what"
    echo "    repro: $(printf '%q ' "$@")"
    failed=$((failed + 1))
}
ok() { passed=$((passed + 1)); }

# Runs "$@" (a bench command writing $d/b.json), then the Python check on stdin with the
# JSON's path as argv[1]; a failed assertion names what broke.
check_json() { # WHAT PYCODE -- CMD...
    local what="$1" code="$2"
    shift 3
    "$@" >"$d/out.txt" 2>"$d/err"
    local rc=$?
    if [ "$rc" -ne 0 ]; then
        fail "$what: exit $rc ($(tail -n1 "$d/err"))" "$@"
        return
    fi
    local why
    why=$("$py" -c "$code" "$d/b.json" 2>&1)
    if [ -n "$why" ]; then fail "$what: $why" "$@"; else ok; fi
}

# Every field of DESIGN.md's object, the ones issue 5 adds, and their relations.
common='
import json, math, sys
d = json.load(open(sys.argv[1]))
for k in ("mixrt_version", "machine", "model", "rows", "rounds", "batch"): assert k in d, "top-level " + k
for k in ("cpu", "cores", "os"): assert k in d["machine"], k
rows = d["rows"]
assert rows, "no rows"
r0 = rows[0]
assert r0["ratio_to_first"] == 1.0 and r0["ratio_p10"] == 1.0 and r0["ratio_p90"] == 1.0, r0
for r in rows:
    for k in ("spec", "model", "precision", "typing", "backend", "threads", "runs", "latency_ms",
              "throughput_per_s", "ratio_to_first", "peak_rss_bytes",
              "batch", "items_per_s", "ratio_p10", "ratio_p90", "activation_bytes"): assert k in r, (r["spec"], k)
    assert r["runs"] == d["rounds"], ("every row runs once per round", r["spec"], r["runs"], d["rounds"])
    l = r["latency_ms"]
    assert l["min"] <= l["median"] <= l["p90"] <= l["p95"] <= l["p99"] <= l["max"], l
    assert l["min"] <= l["mean"] <= l["max"], l
    assert math.isclose(r["throughput_per_s"], 1e3 / l["mean"], rel_tol=1e-4), (r["throughput_per_s"], l["mean"])
    assert math.isclose(r["items_per_s"], r["batch"] * r["throughput_per_s"], rel_tol=1e-4), r
    assert r["ratio_p10"] <= r["ratio_p90"], r
    assert math.isclose(r["ratio_to_first"], l["median"] / r0["latency_ms"]["median"], rel_tol=1e-4), r
    assert r["peak_rss_bytes"] is None or r["peak_rss_bytes"] > 0, r
'

case "$group" in
json)
    m="$models/cnn_f32.onnx"
    check_json "--compare, --iterations 7" "$common
assert [r['spec'] for r in rows] == ['fp32', 'fp32,bf16', 'bf16:strong'], [r['spec'] for r in rows]
assert d['rounds'] == 7, d['rounds']
assert all(r['batch'] == 1 for r in rows), 'cnn input is [1,3,32,32]'
assert all(r['backend'] == 'cpu' for r in rows)
assert rows[2]['typing'] == 'strong' and rows[0]['typing'] == 'weak'
assert all(isinstance(r['activation_bytes'], int) and r['activation_bytes'] > 0 for r in rows), [r['activation_bytes'] for r in rows]
" -- "$mixrt" bench "$m" --compare "fp32;fp32,bf16;bf16:strong" --iterations 7 --warmup-ms 0 --json "$d/b.json"
    # PLAN SPECs: engines built beforehand (here in two precisions) run as rows of one bench,
    # their precisions read from the plans; a PLAN with @PRECISIONS is a usage error.
    if "$mixrt" build "$m" --precision fp32,bf16 -o "$d/a.plan" >/dev/null 2>"$d/err" &&
        "$mixrt" build "$m" -o "$d/b.plan" >/dev/null 2>>"$d/err"; then
        check_json "--compare with PLAN SPECs" "$common
assert [r['spec'] for r in rows] == ['$d/a.plan', 'fp32', '$d/b.plan'], [r['spec'] for r in rows]
assert [r['precision'] for r in rows] == ['fp32,bf16', 'fp32', 'fp32'], [r['precision'] for r in rows]
assert rows[0]['model'] == '$d/a.plan' and rows[1]['model'] == '$m', rows
assert d['rounds'] == 5, d['rounds']
" -- "$mixrt" bench "$m" --compare "$d/a.plan;fp32;$d/b.plan" --iterations 5 --warmup-ms 0 --json "$d/b.json"
        cmd=("$mixrt" bench "$m" --compare "$d/a.plan@bf16")
        "${cmd[@]}" >"$d/out.txt" 2>"$d/err"
        rc=$?
        if [ "$rc" = 2 ] && grep -q "must be a .onnx" "$d/err"; then ok
        else fail "PLAN@PRECISIONS: exit $rc ($(tail -n1 "$d/err"))" "${cmd[@]}"; fi
    else
        fail "building the PLAN SPECs' plans: $(tail -n1 "$d/err")" "$mixrt" build "$m" -o "$d/b.plan"
    fi
    check_json "--iterations 1" "$common
assert d['rounds'] == 1 and len(rows) == 1
" -- "$mixrt" bench "$m" --iterations 1 --warmup-ms 0 --json "$d/b.json"
    # By time: at least 10 runs even when the duration is shorter than that.
    check_json "--duration-s 0.001 runs >= 10" "$common
assert d['rounds'] >= 10, d['rounds']
" -- "$mixrt" bench "$m" --duration-s 0.001 --warmup-ms 0 --json "$d/b.json"
    # Batch = dim 0 of the first input (rank >= 2); --threads recorded.
    check_json "batch and threads of the transformer" "$common
assert rows[0]['batch'] == 1 and rows[0]['threads'] == 1, rows[0]
" -- "$mixrt" bench "$models/transformer_f32.onnx" --iterations 3 --warmup-ms 0 --threads 1 --json "$d/b.json"
    # The table: one line per row with its ratio interval, and the memory line.
    cmd=("$mixrt" bench "$m" --compare "fp32;fp32,bf16" --iterations 4 --warmup-ms 0)
    if "${cmd[@]}" >"$d/out.txt" 2>"$d/err" && grep -q 'ratio \[p10, p90\]' "$d/out.txt" &&
        grep -qE '^fp32,bf16 .* \[[0-9.]+, [0-9.]+\]' "$d/out.txt" && grep -q '^memory: peak resident [0-9.]* MiB' "$d/out.txt" &&
        grep -q 'items/s' "$d/out.txt"; then ok
    else fail "table without ratio interval, items/s or memory line: $(head -c 600 "$d/out.txt")" "${cmd[@]}"; fi
    ;;

peer)
    command -v node >/dev/null 2>&1 || { echo "SKIP: node is not installed: --peer ort is not tested"; exit 77; }
    m="$models/cnn_f32.onnx"
    check_json "--peer ort on an f32 example" "$common
assert [r['spec'] for r in rows] == ['fp32', 'fp32,bf16', 'ort'], [r['spec'] for r in rows]
p = rows[-1]
assert p['backend'] == 'onnxruntime' and p['peer_agrees'] is True, p
assert d['peer']['agrees'] is True and d['peer']['error'] is None, d['peer']
assert d['peer']['worst_rel_error'] <= 1e-3, d['peer']
assert p['runs'] == 5 and p['threads'] == 2, p
assert set(rows[0]) - {'profile'} <= set(p), set(rows[0]) - set(p)
" -- "$mixrt" bench "$m" --compare "fp32;fp32,bf16" --peer ort --iterations 5 --warmup-ms 0 --threads 2 --json "$d/b.json"
    if ! grep -q '^ort ' "$d/out.txt" || ! grep -q 'outputs agree' "$d/out.txt"; then
        fail "no ort row or agreement line in the table: $(head -c 600 "$d/out.txt")" "$mixrt" bench "$m" --peer ort --iterations 5
    else ok; fi
    # --profile with the peer: each observed run after one of the peer's (not counted in its row).
    check_json "--profile with --peer ort" "$common
assert rows[-1]['spec'] == 'ort' and rows[-1]['runs'] == 4, rows[-1]
p = rows[0]['profile']
assert p['after_peer'] is True and p['runs'] == 4 and len(p['layers']) > 3, p
" -- "$mixrt" bench "$m" --peer ort --profile --iterations 4 --warmup-ms 0 --json "$d/b.json"
    if ! grep -q '^profile of fp32 (4 observed runs, each after a run of the peer;' "$d/out.txt"; then
        fail "profile header does not say the runs followed the peer's: $(grep -m1 '^profile' "$d/out.txt")" \
            "$mixrt" bench "$m" --peer ort --profile --iterations 4
    else ok; fi
    # A 16-bit model ORT runs (f16): agreement within 2e-2.
    check_json "--peer ort on the f16 transformer" "$common
assert rows[-1]['spec'] == 'ort' and rows[-1]['peer_agrees'] is True, rows[-1]
" -- "$mixrt" bench "$models/transformer_f16.onnx" --peer ort --iterations 3 --warmup-ms 0 --json "$d/b.json"
    # ORT refuses bf16 models: a warning line, the run goes on without the peer.
    check_json "--peer ort on a bf16 model" "$common
assert len(rows) == 1, [r['spec'] for r in rows]
assert 'refused the model' in d['peer']['error'], d['peer']
" -- "$mixrt" bench "$models/cnn_bf16.onnx" --peer ort --iterations 3 --warmup-ms 0 --json "$d/b.json"
    if ! grep -q '^mixrt: warning: peer: ONNX Runtime refused the model: ' "$d/err"; then
        fail "bf16 model: no 'refused' warning line: $(head -c 400 "$d/err")" "$mixrt" bench "$models/cnn_bf16.onnx" --peer ort
    else ok; fi
    ;;

profile)
    m="$models/cnn_f32.onnx"
    # The engine's layers (after fusion and layout), in execution order, from inspect.
    "$mixrt" inspect "$m" --precision fp32 >"$d/layers.txt" 2>&1 || fail "inspect" "$mixrt" inspect "$m" --precision fp32
    names=$(awk '/^layers \(/{on=1; next} /^totals:/{on=0} on && $1 ~ /^[0-9]+$/ {print $2}' "$d/layers.txt" | paste -sd, -)
    nlayers=$(echo "$names" | tr ',' '\n' | grep -c .)
    check_json "--profile" "$common
p = rows[0]['profile']
assert p['runs'] == 3, ('K = iterations when fewer than 10', p['runs'])
assert p['after_peer'] is False, p['after_peer']
L = p['layers']
names = '$names'.split(',')
assert len(L) == len(names) > 3, (len(L), names)
for x in L:
    for k in ('name', 'op', 'precision', 'kernel', 'ms', 'share', 'gflops'): assert k in x, k
    assert x['ms'] >= 0 and 0 <= x['share'] <= 1, x
    if x['op'] in ('Conv', 'Gemm', 'FusedConv', 'FusedMatMul'): assert x['gflops'] is not None and x['gflops'] > 0, x
    else: assert x['gflops'] is None, x
assert any(x['op'] == 'FusedConv' for x in L), 'the cnn fuses its convs'

s = sum(x['share'] for x in L)
assert abs(s - 1) < 1e-3, ('layer shares sum', s)
ops = p['ops']
assert abs(sum(o['share'] for o in ops) - 1) < 1e-3, ops
assert sum(o['count'] for o in ops) == len(L), ops
assert {o['op'] for o in ops} == {x['op'] for x in L}
assert [x['name'] for x in L] == names, ('execution order', [x['name'] for x in L], names)
" -- "$mixrt" bench "$m" --profile --iterations 3 --warmup-ms 0 --json "$d/b.json"
    if ! grep -q "^  top $nlayers of $nlayers layers" "$d/out.txt" || ! grep -q '^  per op type' "$d/out.txt"; then
        fail "no profile tables: $(head -c 600 "$d/out.txt")" "$mixrt" bench "$m" --profile --iterations 3
    else ok; fi
    check_json "--profile of a transformer (MatMul GFLOP/s known)" "$common
L = rows[0]['profile']['layers']
assert any(x['op'] in ('MatMul', 'FusedMatMul') and x['gflops'] is not None for x in L), L
assert rows[0]['profile']['runs'] == 10
" -- "$mixrt" bench "$models/transformer_f32.onnx" --profile --iterations 12 --warmup-ms 0 --json "$d/b.json"
    ;;

progress)
    # Not a terminal: plain note lines, at most about one per second, no carriage returns.
    m="$models/cnn_f32.onnx"
    cmd=("$mixrt" bench "$m" --duration-s 2.5 --warmup-ms 0)
    if ! "${cmd[@]}" >"$d/out.txt" 2>"$d/err"; then fail "bench: $(tail -n1 "$d/err")" "${cmd[@]}"
    else
        n=$(grep -c '^mixrt: note: measuring [0-9]*% median [0-9.]* ms$' "$d/err")
        if [ "$n" -lt 1 ] || [ "$n" -gt 4 ] || grep -q $'\r' "$d/err"; then
            fail "expected 1..4 plain 'measuring NN% median X ms' lines, got $n: $(head -c 600 "$d/err")" "${cmd[@]}"
        else ok; fi
    fi
    # A terminal (script(1) gives one): the line is redrawn with \r and cleared at the end.
    if command -v script >/dev/null 2>&1; then
        script -qec "$(printf '%q ' "${cmd[@]}") >/dev/null" /dev/null >"$d/tty.txt" 2>&1 </dev/null
        n=$(tr '\r' '\n' <"$d/tty.txt" | grep -c '^measuring \[[#.]*\] ')
        if [ "$n" -lt 2 ] || [ "$n" -gt 30 ] || ! grep -q $'\r\033\[K' "$d/tty.txt"; then
            fail "terminal: expected 2..30 redrawn 'measuring [###...]' lines and a clear, got $n" "${cmd[@]}"
        else ok; fi
    else
        echo "note: script(1) missing: the terminal progress line is not tested"
    fi
    ;;

report)
    m="$models/cnn_f32.onnx"
    cmd=("$mixrt" bench "$m" --compare "fp32;fp32,bf16" --profile --iterations 5 --warmup-ms 0 --report "$d/r.html")
    "${cmd[@]}" >"$d/out.txt" 2>"$d/err"
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q 'no HTML report' "$d/err"; then
        echo "note: this build has no tools/report.c: --report is a usage error"
        ok
    elif [ "$rc" -ne 0 ] || ! [ -s "$d/r.html" ] || ! grep -qi '<svg' "$d/r.html" || ! grep -q 'fp32,bf16' "$d/r.html"; then
        fail "--report: exit $rc, no page with an <svg> and the rows ($(tail -n1 "$d/err"))" "${cmd[@]}"
    else ok; fi
    ;;

usage)
    m="$models/cnn_f32.onnx"
    "$mixrt" build "$m" -o "$d/m.plan" >/dev/null 2>&1
    while IFS='|' read -r key args; do
        [ -n "$key" ] || continue
        read -r -a argv <<<"$args"
        "$mixrt" "${argv[@]}" >/dev/null 2>"$d/err" </dev/null
        rc=$?
        lines=$(wc -l <"$d/err")
        if [ "$rc" -ne 2 ] || [ "$lines" -ne 1 ] || ! grep -q '^mixrt: error: ' "$d/err" || ! grep -qF -- "$key" "$d/err"; then
            fail "'${args}': exit $rc, $lines lines, expected 2 and one line naming '$key': $(head -c 300 "$d/err")" "$mixrt" "${argv[@]}"
            continue
        fi
        ok
    done <<EOF
--peer|bench $m --peer trt
--peer|bench $m --peer
--peer|bench $d/m.plan --peer ort
--report|bench $m --report=
--profile|bench $m --profile=1
--json|bench $m --json=
--iterations|bench $m --iterations -1
EOF
    # No node on PATH: one line saying what to install, exit 1, before any build.
    env PATH=/nonexistent "$mixrt" bench "$m" --peer ort --iterations 1 >/dev/null 2>"$d/err" </dev/null
    rc=$?
    if [ "$rc" -ne 1 ] || [ "$(wc -l <"$d/err")" -ne 1 ] || ! grep -q '^mixrt: error: --peer ort needs Node.js and npm: apt-get install nodejs npm$' "$d/err"; then
        fail "--peer ort without node: exit $rc: $(head -c 300 "$d/err")" env PATH=/nonexistent "$mixrt" bench "$m" --peer ort
    else ok; fi
    ;;

*)
    echo "bench_cli.sh: unknown group '$group'"
    exit 2
    ;;
esac

echo "bench_cli $group: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
