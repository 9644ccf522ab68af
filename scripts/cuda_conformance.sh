#!/bin/bash
# cuda_conformance.sh - the ONNX conformance suites through engines built with --backend cuda,
# on a GPU machine (the lent H200, which has no libonnx-testdata): as shipped (f32, engine
# fp32), and converted to bf16 / f16 (engines fp32,bf16 / fp32,fp16), each against the pass
# list CI holds for the CPU (tests/conformance_pass*.txt: a case the CPU passes must pass).
# Layers the CUDA backend cannot run go to the CPU, as in `mixrt build --backend cuda`.
# Prepare here (data packed small enough to travel with the working tree):
#   mkdir -p .devdata && tar -C /usr/share/libonnx-testdata -cf - data | xz -6 > .devdata/f32.tar.xz
#   tar -C build-c -cf - conformance_bf16 | xz -6 > .devdata/bf16.tar.xz   (likewise f16; the
#   converted roots come from the conformance_convert_* ctests)
# Run there: scripts/cuda_conformance.sh DIR (DIR holds mixrt_conformance, libmixrt_cuda.so and
# the libraries the GPU host lacks). Writes $OUT/cuda_conf_{f32,bf16,f16}.{log,csv}; the three
# variants run at once (one GPU, separate processes).
set -u
D=${1:?usage: cuda_conformance.sh DIR}
LOG=${OUT:-/tmp/cuda_out}
W=${CONF_WORK:-/tmp/conf}
mkdir -p "$LOG" "$W"
for d in /usr/local/cuda/lib64 /usr/local/cuda/lib /usr/local/cuda/targets/x86_64-linux/lib; do
    [ -e "$d/libcublasLt.so.13" ] && export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}" && break
done
export LD_LIBRARY_PATH="$PWD/$D:${LD_LIBRARY_PATH:-}" MIXRT_CUDA_LIBRARY="$PWD/$D/libmixrt_cuda.so" MIXRT_TIMING_CACHE=off
for v in ${CONF_VARIANTS:-f32 bf16 f16}; do xz -dc .devdata/$v.tar.xz | tar -C "$W" -xf - || echo "unpack $v failed"; done
SUITES=${CONF_SUITES:-node,pytorch-converted,pytorch-operator,simple}
run_variant() {
    local v=$1 data prec expect
    case $v in
    f32) data=$W/data prec=fp32 expect=tests/conformance_pass.txt ;;
    bf16) data=$W/conformance_bf16 prec=fp32,bf16 expect=tests/conformance_pass_bf16.txt ;;
    f16) data=$W/conformance_f16 prec=fp32,fp16 expect=tests/conformance_pass_f16.txt ;;
    esac
    timeout ${CONF_TIMEOUT:-480} "$D/mixrt_conformance" --variant $v --data $data --suite $SUITES --engine $prec \
        --backend cuda --expect $expect --report "$LOG/cuda_conf_$v.csv" >"$LOG/cuda_conf_$v.log" 2>&1
    echo "conformance $v (engine $prec, backend cuda) rc=$?"
}
for v in ${CONF_VARIANTS:-f32 bf16 f16}; do run_variant $v & done
wait
for v in ${CONF_VARIANTS:-f32 bf16 f16}; do
    echo "-- $v:"
    grep -E "^suite |passed, .* failed|regress|not pass" "$LOG/cuda_conf_$v.log" | tail -8
    grep -E "^FAIL" "$LOG/cuda_conf_$v.log" | head -${CONF_SHOW:-15}
done
