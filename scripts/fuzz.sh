#!/usr/bin/env bash
# fuzz.sh - builds the libFuzzer targets (clang, ASan+UBSan, library instrumented with
# fuzzer-no-link) in build-fuzz: fuzz_onnx (the ONNX importer) and fuzz_plan (the plan
# file loader). Replays each one's seed corpus (fuzz/corpus, fuzz/corpus_plan), then
# fuzzes each for a bounded time: SECONDS in all, split in two halves (importer first).
# Exits non-zero on any crash, leak, timeout or sanitizer report; reproducers are saved
# under fuzz/crashes/ (replay one with: build-fuzz/fuzz/fuzz_onnx FILE, or fuzz_plan FILE).
#
# usage: scripts/fuzz.sh [SECONDS]        (default 60: 30 s importer + 30 s plan loader)
# env:   MIXRT_FUZZ_BUILD (build dir, default build-fuzz), MIXRT_FUZZ_MAX_LEN (importer,
#        default 65536), MIXRT_FUZZ_PLAN_MAX_LEN (plan loader, default 16384),
#        MIXRT_FUZZ_OOM (allocation-failure injection, see fuzz/fuzz_onnx.c: the replay
#        defaults to 'all' = every allocation of every seed, fuzzing to one per input;
#        0 turns it off)
set -euo pipefail

secs="${1:-60}"
case "$secs" in '' | *[!0-9]*) echo "fuzz.sh: SECONDS must be a number, got '$secs'" >&2; exit 2 ;; esac
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${MIXRT_FUZZ_BUILD:-$root/build-fuzz}"
max_len="${MIXRT_FUZZ_MAX_LEN:-65536}"
plan_max_len="${MIXRT_FUZZ_PLAN_MAX_LEN:-16384}"
seeds="$root/fuzz/corpus"
plan_seeds="$root/fuzz/corpus_plan"
crashes="$root/fuzz/crashes"
work="$build/fuzz-corpus"   # grows while fuzzing; the committed seeds stay as they are
plan_work="$build/fuzz-corpus-plan"

command -v clang >/dev/null || { echo "fuzz.sh: clang not found (apt-get install clang)" >&2; exit 2; }
rtdir="$(clang --print-runtime-dir 2>/dev/null || true)"
if [ ! -f "$rtdir/libclang_rt.fuzzer-$(uname -m).a" ]; then
    echo "fuzz.sh: the libFuzzer runtime is missing from '$rtdir' (apt-get install libclang-rt-14-dev)" >&2
    exit 2
fi

san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DMIXRT_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DCMAKE_C_FLAGS="$san" >/dev/null
cmake --build "$build" -j2 --target fuzz_onnx fuzz_plan
fuzzer="$build/fuzz/fuzz_onnx"
plan_fuzzer="$build/fuzz/fuzz_plan"

mkdir -p "$crashes" "$work" "$plan_work"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:symbolize=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
common=(-rss_limit_mb=2048 -timeout=10 -max_len="$max_len" -artifact_prefix="$crashes/")
plan_common=(-rss_limit_mb=2048 -timeout=10 -max_len="$plan_max_len" -artifact_prefix="$crashes/plan-")

before="$(ls -1 "$crashes" 2>/dev/null | sort)"
report() {
    local after new
    after="$(ls -1 "$crashes" 2>/dev/null | sort)"
    new="$(comm -13 <(printf '%s\n' "$before") <(printf '%s\n' "$after") | sed '/^$/d')"
    if [ -n "$new" ]; then
        echo "fuzz.sh: reproducers saved:" >&2
        printf '  %s/%s\n' "$crashes" $new >&2
    fi
}

echo "== replaying $(ls -1 "$seeds" | wc -l) seed inputs from $seeds"
if ! MIXRT_FUZZ_OOM="${MIXRT_FUZZ_OOM:-all}" "$fuzzer" "${common[@]}" -runs=0 "$seeds"; then
    report
    echo "fuzz.sh: FAILED while replaying the seed corpus" >&2
    exit 1
fi
echo "== replaying $(ls -1 "$plan_seeds" | wc -l) seed plans from $plan_seeds"
if ! MIXRT_FUZZ_OOM="${MIXRT_FUZZ_OOM:-all}" "$plan_fuzzer" "${plan_common[@]}" -runs=0 "$plan_seeds"; then
    report
    echo "fuzz.sh: FAILED while replaying the plan seed corpus" >&2
    exit 1
fi

# The time budget is shared, so scripts/test.sh takes as long as before the plan fuzzer.
onnx_secs=$((secs - secs / 2))
plan_secs=$((secs / 2))
if [ "$onnx_secs" -gt 0 ]; then
    echo "== fuzzing the importer for ${onnx_secs}s (max_len $max_len; working corpus $work)"
    if ! "$fuzzer" "${common[@]}" -max_total_time="$onnx_secs" -print_final_stats=1 "$work" "$seeds"; then
        report
        echo "fuzz.sh: FAILED: the importer fuzzer found a crash, leak or timeout" >&2
        exit 1
    fi
fi
if [ "$plan_secs" -gt 0 ]; then
    echo "== fuzzing the plan loader for ${plan_secs}s (max_len $plan_max_len; working corpus $plan_work)"
    if ! "$plan_fuzzer" "${plan_common[@]}" -max_total_time="$plan_secs" -print_final_stats=1 "$plan_work" \
        "$plan_seeds"; then
        report
        echo "fuzz.sh: FAILED: the plan fuzzer found a crash, leak or timeout" >&2
        exit 1
    fi
fi
echo "fuzz.sh: no crash"
