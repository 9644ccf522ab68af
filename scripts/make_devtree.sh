#!/bin/bash
# make_devtree.sh - packs what the lent GPU machine needs to run the CUDA backend's checks into
# .devdata/ (ignored by git; carried with `run`'s carry [".devdata"]):
#   .devdata/devf.tar.xz   devf/: mixrt, libmixrt.so*, libmixrt_cuda.so*, tests/test_cuda_kernels,
#                          tests/test_cuda_engine, tests/mixrt_conformance, the libraries the GPU
#                          host lacks (libdnnl, libprotobuf-c, libOpenCL) and examples/ (the
#                          example models and cuda_device.sh's extra test models)
#   .devdata/{f32,bf16,f16}.tar.xz   the conformance data (CONF=1; bf16/f16 need the
#                          conformance_convert_* ctests to have run in BUILD)
# Usage: scripts/make_devtree.sh [BUILD_DIR]   (default build; configure with MIXRT_CUDA=ON)
# On the device: mkdir -p build && xz -dc .devdata/devf.tar.xz | tar -C build -xf - ; then
#   scripts/cuda_device.sh engines build/devf   or   scripts/cuda_conformance.sh build/devf
set -euo pipefail
cd "$(dirname "$0")/.."
B=${1:-build}
[ -x "$B/tests/test_cuda_kernels" ] || { echo "make_devtree: $B has no CUDA tests (configure with -DMIXRT_CUDA=ON)"; exit 1; }
D=$B/devf
rm -rf "$D"
mkdir -p "$D/tests" "$D/examples" .devdata
cp "$B/mixrt" "$D/"
cp "$B/tests/test_cuda_kernels" "$B/tests/test_cuda_engine" "$B/tests/mixrt_conformance" "$D/tests/"
cp "$B/tests/mixrt_conformance" "$D/" # where scripts/cuda_conformance.sh looks
for l in libmixrt libmixrt_cuda; do
    cp "$B/$l.so.0" "$D/"
    ln -sf "$l.so.0" "$D/$l.so"
done
# Libraries of this machine the GPU host (Ubuntu 24.04) does not have.
for lib in $(ldd "$B/mixrt" "$B/libmixrt_cuda.so.0" "$B/tests/mixrt_conformance" |
             awk '/=> \//{print $3}' | grep -E "libdnnl|libprotobuf-c|libOpenCL" | sort -u); do
    cp -L "$lib" "$D/"
done
/usr/bin/python3 scripts/make_examples.py "$D/examples" >/dev/null
bash scripts/cuda_device.sh models "$D/examples" >/dev/null
tar -C "$B" -cf - devf | xz -2 -T2 >.devdata/devf.tar.xz
if [ "${CONF:-0}" = 1 ]; then
    tar -C /usr/share/libonnx-testdata -cf - data | xz -6 -T2 >.devdata/f32.tar.xz
    for v in bf16 f16; do tar -C "$B" -cf - conformance_$v | xz -6 -T2 >.devdata/$v.tar.xz; done
fi
du -ch .devdata/*.tar.xz | tail -1
