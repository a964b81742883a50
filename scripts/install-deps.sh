#!/usr/bin/env bash
# Installs the Debian packages knot builds against, and nothing when they are all present.
# clang (with its sanitizer/libFuzzer runtimes and OpenMP) builds the fuzz stage of `make test`
# (docs/reliability.md); the sanitizer stage uses g++ like the normal build.
# Uses sudo when not root. Called by `make run` and `make test`; safe to run by hand.
set -euo pipefail

PACKAGES=(
  cmake ninja-build g++ pkg-config
  libeigen3-dev nlohmann-json3-dev catch2 libbenchmark-dev
  libcli11-dev libfmt-dev libutf8proc-dev libdnnl-dev ccache
  gnuplot-nox
  clang libclang-rt-dev libomp-dev
  libonnx-dev libprotobuf-dev python3-onnx python3-numpy
  openmpi-bin libopenmpi-dev
)
# node and npm: any install that provides the commands (Debian's nodejs + npm, or a vendor's nodejs).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  PACKAGES+=(nodejs npm)
fi

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
install_onnxruntime() {
  if [ ! -d "$ROOT/tests/onnx/node_modules/onnxruntime-node" ]; then
    echo "install-deps: installing onnxruntime-node into tests/onnx/node_modules (npm ci --ignore-scripts)"
    (cd "$ROOT/tests/onnx" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
  fi
}

missing=()
for p in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  install_onnxruntime
  exit 0
fi

echo "install-deps: installing missing packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    SUDO="sudo"
  else
    echo "install-deps: not root and no sudo; install these by hand: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || echo "install-deps: apt-get update failed; trying the install anyway" >&2
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
install_onnxruntime
