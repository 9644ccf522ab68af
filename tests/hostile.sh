#!/usr/bin/env bash
# hostile.sh - `mixrt run` on hostile inputs: each generated case must fail with exit
# status 1..127 (never a signal) and exactly one stderr line "mixrt: error: ..." that
# names what is wrong (keywords per case); truncated and byte-flipped real models and
# plan files must never die by a signal or hang, and when they fail, fail with one
# error line.
#
# usage: tests/hostile.sh PATH/TO/mixrt [KEEP_DIR]
#   KEEP_DIR: generate into this folder and keep it (default: a temp folder, removed)
# env:   MIXRT_HOSTILE_TRUNC_STEP (default 37), MIXRT_HOSTILE_TIMEOUT (s per run, default 30)
# A mixrt built with sanitizers (MIXRT_SANITIZE=ON, or build-fuzz's) works too: a
# sanitizer report counts as a failure of its case.
set -uo pipefail

mixrt="${1:?usage: hostile.sh PATH/TO/mixrt [KEEP_DIR]}"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py=/usr/bin/python3
step="${MIXRT_HOSTILE_TRUNC_STEP:-37}"
tmo="${MIXRT_HOSTILE_TIMEOUT:-30}"
[ -x "$mixrt" ] || { echo "hostile.sh: '$mixrt' is not an executable" >&2; exit 2; }
mixrt="$(cd "$(dirname "$mixrt")" && pwd)/$(basename "$mixrt")"

if [ $# -ge 2 ]; then
    work="$2"
    rm -rf "$work"
    mkdir -p "$work"
else
    work="$(mktemp -d "${TMPDIR:-/tmp}/mixrt-hostile.XXXXXX")"
    failed=0
    # The folder holds the reproducers: it stays when something failed.
    trap 'if [ "$failed" -eq 0 ]; then rm -rf "$work"; else echo "hostile.sh: reproducers kept in $work"; fi' EXIT
fi
work="$(cd "$work" && pwd)"

"$py" "$root/scripts/make_examples.py" "$work/examples" >/dev/null || { echo "hostile.sh: make_examples.py failed" >&2; exit 2; }
"$py" "$root/scripts/make_hostile_models.py" "$work/h" "$work/examples/cnn_f16.onnx" \
    "$work/examples/transformer_bf16.onnx" >/dev/null || { echo "hostile.sh: make_hostile_models.py failed" >&2; exit 2; }

# Sanitizer reports end the run with status 134 so they cannot pass for an error exit.
export ASAN_OPTIONS="${ASAN_OPTIONS:-exitcode=134:detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:exitcode=134:print_stacktrace=1}"

passed=0
failed=0
errf="$work/stderr.txt"
outf="$work/stdout.txt"

fail() { # CASE WHY REPRO...
    local name="$1" why="$2"
    shift 2
    failed=$((failed + 1))
    echo "FAIL $name: $why"
    if [ -s "$errf" ]; then head -n 4 "$errf" | cat -v | sed 's/^/    stderr: /' | cut -c1-400; fi
    echo "    repro: $(printf '%q ' "$mixrt" run "$@")"
}

# Runs mixrt run ARGS... with a time limit; sets rc.
run_mixrt() {
    (cd "$work" && timeout -s KILL "$tmo" "$mixrt" run "$@" </dev/null >"$outf" 2>"$errf")
    rc=$?
    if grep -aq 'Sanitizer' "$errf"; then
        sanitizer="$(grep -a -m1 -E 'runtime error|ERROR: [A-Za-z]*Sanitizer|SUMMARY' "$errf" | cut -c1-300)"
        rc=134
    else
        sanitizer=""
    fi
}

# Checks the one-error-line contract after a failing run. Notes and warnings are allowed only when
# allow_notes is 1. Prints the offending reason, or nothing.
error_line_problem() {
    local allow_notes="$1" lines errors
    lines=$(wc -l <"$errf")
    if [ "$allow_notes" = 1 ]; then
        errors=$(grep -acvE '^mixrt: (note|warning): ' "$errf")
    else
        errors=$lines
    fi
    if [ ! -s "$errf" ]; then echo "stderr is empty"; return; fi
    if [ -n "$(tail -c1 "$errf")" ]; then echo "stderr does not end with a newline"; return; fi
    if [ "$errors" -ne 1 ]; then echo "stderr has $errors error lines ($lines lines), expected exactly 1"; return; fi
    if ! grep -avE '^mixrt: (note|warning): ' "$errf" | grep -aq '^mixrt: error: .'; then
        echo "the error line does not start with 'mixrt: error: '"
    fi
}

# ---- named cases: each must fail with one line naming the problem ----------------------
while IFS=$'\t' read -r -a row; do
    [ ${#row[@]} -ge 3 ] || continue
    name="${row[0]}"
    keys="${row[1]}"
    args=("${row[@]:2}")
    run_mixrt "${args[@]}"
    if [ "$rc" -eq 0 ]; then fail "$name" "exit status 0, expected an error" "${args[@]}"; continue; fi
    if [ -n "$sanitizer" ]; then fail "$name" "sanitizer report: $sanitizer" "${args[@]}"; continue; fi
    if [ "$rc" -ge 128 ]; then fail "$name" "killed by signal $((rc - 128)) (exit $rc)" "${args[@]}"; continue; fi
    why="$(error_line_problem 0)"
    if [ -n "$why" ]; then fail "$name" "$why" "${args[@]}"; continue; fi
    line="$(head -n1 "$errf")"
    # Names come from the model: control bytes (ESC...) must not reach the terminal raw.
    if LC_ALL=C grep -aq '[[:cntrl:]]' <<<"$line"; then
        fail "$name" "the error line contains control characters" "${args[@]}"
        continue
    fi
    missing=""
    IFS=';' read -r -a groups <<<"$keys"
    for g in "${groups[@]}"; do
        found=0
        IFS='|' read -r -a alts <<<"$g"
        for a in "${alts[@]}"; do
            if grep -aqiF -- "$a" <<<"$line"; then found=1; break; fi
        done
        [ "$found" = 1 ] || missing="$missing '${g}'"
    done
    if [ -n "$missing" ]; then fail "$name" "the error line does not mention:$missing" "${args[@]}"; continue; fi
    passed=$((passed + 1))
done <"$work/h/cases.tsv"
named_failed=$failed
echo "named cases: $passed passed, $named_failed failed"

# ---- mutated real models: never a signal or a hang; failures are one error line ----------
check_mutant() { # LABEL ARGS...
    local label="$1"
    shift
    run_mixrt "$@"
    if [ -n "$sanitizer" ]; then fail "$label" "sanitizer report: $sanitizer" "$@"; return; fi
    if [ "$rc" -ge 128 ]; then fail "$label" "killed by signal $((rc - 128)) (exit $rc)" "$@"; return; fi
    if [ "$rc" -ne 0 ]; then
        local why
        why="$(error_line_problem 1)"
        if [ -n "$why" ]; then fail "$label" "$why" "$@"; return; fi
    fi
    passed=$((passed + 1))
}

mutants=0
trunc_sources=()
for c in test_add_bcast test_conv_with_strides_padding test_if test_loop11 test_gemm_all_attributes \
         test_layer_normalization_4d_axis1 test_cast_FLOAT_to_BFLOAT16 test_scan9_sum; do
    f="/usr/share/libonnx-testdata/data/node/$c/model.onnx"
    [ -f "$f" ] && trunc_sources+=("$f")
done
trunc_sources+=("$work/examples/cnn_f16.onnx" "$work/examples/transformer_bf16.onnx")
cut="$work/truncated.onnx"
for src in "${trunc_sources[@]}"; do
    size=$(stat -c %s "$src")
    st=$step
    # Bigger models (the examples) would take thousands of runs at the full step: ~250 points.
    [ $((size / step)) -gt 250 ] && st=$(( (size / 250) | 1 ))
    label="$(basename "$(dirname "$src")")/$(basename "$src")"
    for ((off = 0; off < size; off += st)); do
        head -c "$off" "$src" >"$cut"
        before=$failed
        check_mutant "truncated $label at $off of $size bytes" "$cut"
        mutants=$((mutants + 1))
        if [ "$failed" -gt "$before" ]; then
            keep="$work/keep/trunc_$(basename "$(dirname "$src")")_$off.onnx"
            mkdir -p "$work/keep"
            cp "$cut" "$keep"
            echo "    reproducer kept: $keep (head -c $off $src)"
        fi
    done
done
# Truncated input files, against the example models.
for m in cnn_f16 transformer_bf16; do
    src="$work/examples/inputs_$m.pb"
    inname=$([ "$m" = cnn_f16 ] && echo input || echo tokens)
    size=$(stat -c %s "$src")
    for ((off = 0; off < size; off += step * 8)); do
        tin="$work/truncated_input_${m}_$off.pb"
        head -c "$off" "$src" >"$tin"
        before=$failed
        check_mutant "truncated input for $m at $off of $size bytes" "$work/examples/$m.onnx" \
            --input "$inname=$tin"
        [ "$failed" -gt "$before" ] || rm -f "$tin"
        mutants=$((mutants + 1))
    done
done
while read -r f; do
    [ -n "$f" ] || continue
    check_mutant "byte-flipped $(basename "$f")" "$f"
    mutants=$((mutants + 1))
done <"$work/h/flips.txt"
echo "mutated models: $mutants runs, $((failed - named_failed)) failed"

# ---- plan files: truncated and byte-flipped plans must fail to load with one error line ----
plan_failed_before=$failed
plan_runs=0
plan="$work/examples/cnn_f16.plan"
if (cd "$work" && timeout -s KILL "$tmo" "$mixrt" build "$work/examples/cnn_f16.onnx" -o "$plan" \
        --precision fp32,bf16 </dev/null >"$outf" 2>"$errf"); then
    size=$(stat -c %s "$plan")
    st=$(( (size / 150) | 1 ))
    cutp="$work/truncated.plan"
    for ((off = 0; off < size; off += st)); do
        head -c "$off" "$plan" >"$cutp"
        check_mutant "truncated plan at $off of $size bytes" "$cutp"
        plan_runs=$((plan_runs + 1))
    done
    mkdir -p "$work/planflips"
    "$py" - "$plan" "$work/planflips" <<'PYEOF'
import random, sys
data = open(sys.argv[1], "rb").read()
rng = random.Random(20240611)
for i in range(80):
    b = bytearray(data)
    for _ in range(rng.choice((1, 1, 2, 8))):
        b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    open("%s/flip_%02d.plan" % (sys.argv[2], i), "wb").write(bytes(b))
PYEOF
    for f in "$work"/planflips/*.plan; do
        check_mutant "byte-flipped plan $(basename "$f")" "$f"
        plan_runs=$((plan_runs + 1))
    done
else
    fail "plan build for the plan cases" "$(head -c 300 "$errf")" build "$work/examples/cnn_f16.onnx" -o "$plan"
fi
echo "plan files: $plan_runs runs, $((failed - plan_failed_before)) failed"

echo "hostile: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
