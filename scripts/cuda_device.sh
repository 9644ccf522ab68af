#!/bin/bash
# cuda_device.sh - runs the CUDA backend's checks on a GPU machine (the lent H200): the
# device and toolchain facts, the kernel test (test_cuda_kernels: every kernel and GEMM vs
# f64 host loops), the benchmark (GEMM TFLOP/s: bf16/f16/tf32 8192^3 and BERT-shaped
# products; copy and kernel bandwidth), and compute-sanitizer memcheck over the test.
# Build here first (cmake -B build-cuda ...; the binary is self-contained apart from
# libcublasLt), then run it there with the build folder carried:
#   scripts/cuda_device.sh [BUILD_DIR]        logs go to $OUT (or /tmp/cuda_out)
# Leaves the GPU's settings alone (no clocks, no resets).
set -u
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
