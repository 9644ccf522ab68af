#!/usr/bin/env bash
# Installs what mixrt needs (Debian 12 packages) and builds it in build/ (Release).
# Idempotent: packages already present are not reinstalled; the build is incremental.
# Usage: scripts/setup.sh [extra cmake args...]
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(build-essential cmake pkg-config libprotobuf-c-dev protobuf-c-compiler libonnx-dev libdnnl-dev
      libonnx-testdata python3-onnx python3-numpy clang libclang-rt-14-dev chromium)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Node.js and npm run ONNX Runtime (npm onnxruntime-node), the peer of the zoo tests and of
# `mixrt bench --peer ort`. Any installed node will do (a distribution's or NodeSource's,
# which bundles npm), so Debian's packages are added only when there is none.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || missing+=(nodejs npm)
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

jobs=$(nproc 2>/dev/null || echo 2)
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build build -j"$jobs" >/dev/null
echo "setup: built $(./build/mixrt --version) in build/"
