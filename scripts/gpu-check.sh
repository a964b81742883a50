#!/usr/bin/env bash
# Builds knot's CUDA backend for the GPU of this machine, runs the CUDA tests (ctest label "cuda")
# and the GPU benchmarks when they exist, and writes a short markdown report.
#
#   scripts/gpu-check.sh [REPORT.md]        # report to the file, or to stdout when omitted
#
# Environment: BUILD_DIR (default build-gpu), JOBS (default: all cores), CUDA_ARCH (default
# "native": the local GPU; e.g. "90" or "80;90"), BENCH_FILTER (a Google Benchmark regex, default
# all), SKIP_BENCH=1 to skip the benchmarks.
# The script never changes the GPU's settings (clocks, power, MIG, persistence).
set -uo pipefail

REPORT="${1:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gpu}"
JOBS="${JOBS:-$(nproc)}"
CUDA_ARCH="${CUDA_ARCH:-native}"
LOG_DIR="$BUILD_DIR/gpu-check-logs"
mkdir -p "$LOG_DIR"

section() { printf '\n== %s ==\n' "$*" >&2; }

section "GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap --format=csv,noheader \
    >"$LOG_DIR/nvidia-smi.txt" 2>&1 || true
  nvidia-smi >>"$LOG_DIR/nvidia-smi-full.txt" 2>&1 || true
else
  echo "nvidia-smi not found" >"$LOG_DIR/nvidia-smi.txt"
fi
cat "$LOG_DIR/nvidia-smi.txt" >&2
NVCC_VERSION="$( (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>/dev/null | tail -1)"

section "configure + build ($CUDA_ARCH)"
BENCH=ON
[ -n "${SKIP_BENCH:-}" ] && BENCH=OFF
build_start=$(date +%s)
cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DKNOT_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DKNOT_BUILD_BENCH="$BENCH" >"$LOG_DIR/configure.log" 2>&1
configure_rc=$?
build_rc=1
if [ $configure_rc -eq 0 ]; then
  cmake --build "$BUILD_DIR" -j "$JOBS" >"$LOG_DIR/build.log" 2>&1
  build_rc=$?
fi
build_s=$(( $(date +%s) - build_start ))
tail -5 "$LOG_DIR/build.log" 2>/dev/null >&2 || tail -20 "$LOG_DIR/configure.log" >&2

section "CUDA tests"
test_rc=1
if [ $build_rc -eq 0 ]; then
  (cd "$BUILD_DIR" && ctest -L cuda --output-on-failure) >"$LOG_DIR/ctest-cuda.log" 2>&1
  test_rc=$?
fi
tail -25 "$LOG_DIR/ctest-cuda.log" >&2 2>/dev/null || true
TEST_SUMMARY="$(grep -E 'tests passed|tests failed' "$LOG_DIR/ctest-cuda.log" 2>/dev/null | tail -1)"
SKIPPED="$(grep -c 'Skipped' "$LOG_DIR/ctest-cuda.log" 2>/dev/null || true)"
FAILED_LIST="$(sed -n '/The following tests FAILED/,$p' "$LOG_DIR/ctest-cuda.log" 2>/dev/null | tail -n +2 | head -30)"

section "benchmarks"
bench_status="not built"
if [ $build_rc -eq 0 ] && [ -x "$BUILD_DIR/knot_bench" ] && [ -z "${SKIP_BENCH:-}" ]; then
  "$BUILD_DIR/knot_bench" --benchmark_filter="${BENCH_FILTER:-.}" --benchmark_min_time=0.2 \
    --benchmark_format=console >"$LOG_DIR/bench.txt" 2>&1
  bench_status="exit $?"
  tail -40 "$LOG_DIR/bench.txt" >&2
fi

{
  echo "## GPU check $(date -u +%Y-%m-%d) ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo
  echo "- GPU: $(cat "$LOG_DIR/nvidia-smi.txt" | head -1)"
  echo "- nvcc: ${NVCC_VERSION:-not found}; CUDA architectures: $CUDA_ARCH"
  echo "- build: $([ $build_rc -eq 0 ] && echo ok || echo "FAILED (configure rc $configure_rc, build rc $build_rc; see $LOG_DIR)") in ${build_s}s"
  echo "- CUDA tests (ctest -L cuda): ${TEST_SUMMARY:-not run}; skipped: ${SKIPPED:-0}; rc $test_rc"
  if [ -n "$FAILED_LIST" ]; then
    echo
    echo '```'
    echo "$FAILED_LIST"
    echo '```'
  fi
  echo "- benchmarks: $bench_status"
  if [ -f "$LOG_DIR/bench.txt" ]; then
    echo
    echo '```'
    grep -E '^[A-Za-z_].*(ns|us|ms)' "$LOG_DIR/bench.txt" | head -60
    echo '```'
  fi
  echo
  echo "Logs: $LOG_DIR"
} >"${REPORT:-/dev/stdout}"

[ $build_rc -eq 0 ] && [ $test_rc -eq 0 ]
