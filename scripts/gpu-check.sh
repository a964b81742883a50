#!/usr/bin/env bash
# Builds knot's CUDA tests for the GPU of this machine, runs them (ctest label "cuda") and writes a
# short markdown report — the test part first, so a session that ends early still has it.
#
#   scripts/gpu-check.sh [REPORT.md]        # report to the file, or to stdout when omitted
#
# Device time is short, so by default this builds only knot_tests and knot_nccl_check (no Google Benchmark needed),
# gives each test 120 s at most, and runs no benchmark (no knot benchmark uses the GPU yet).
# Environment:
#   BUILD_DIR       build directory (default build-gpu)
#   JOBS            build jobs (default: all cores)
#   CUDA_ARCH       CMAKE_CUDA_ARCHITECTURES (default "native": the local GPU; "90" for an H100/H200)
#   TEST_TIMEOUT    seconds per test (default 120)
#   CUDA_LAUNCH_BLOCKING  default 1 here: a device fault is reported at its kernel, not at the next
#                   copy (set 0 for timings)
#   BENCH=1         also build knot_bench and run BENCH_FILTER (a Google Benchmark regex, default
#                   "cuda|CUDA|gpu|GPU") after the report's test part is written
# The script never changes the GPU's settings (clocks, power, MIG, persistence).
set -uo pipefail

REPORT="${1:-}"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD_DIR="${BUILD_DIR:-$ROOT/build-gpu}"
JOBS="${JOBS:-$(nproc)}"
CUDA_ARCH="${CUDA_ARCH:-native}"
TEST_TIMEOUT="${TEST_TIMEOUT:-120}"
export CUDA_LAUNCH_BLOCKING="${CUDA_LAUNCH_BLOCKING:-1}"
LOG_DIR="$BUILD_DIR/gpu-check-logs"
mkdir -p "$LOG_DIR"
[ -n "$REPORT" ] && : >"$REPORT"

section() { printf '\n== %s ==\n' "$*" >&2; }
# Appends stdin to the report (stdout when no file was given).
report() { if [ -n "$REPORT" ]; then cat >>"$REPORT"; else cat; fi; }

section "GPU"
if command -v nvidia-smi >/dev/null 2>&1; then
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,compute_cap --format=csv,noheader \
    >"$LOG_DIR/nvidia-smi.txt" 2>&1 || true
  nvidia-smi >"$LOG_DIR/nvidia-smi-full.txt" 2>&1 || true
else
  echo "nvidia-smi not found" >"$LOG_DIR/nvidia-smi.txt"
fi
cat "$LOG_DIR/nvidia-smi.txt" >&2
NVCC_VERSION="$( (nvcc --version || /usr/local/cuda/bin/nvcc --version) 2>/dev/null | tail -1)"

section "configure + build knot_tests ($CUDA_ARCH)"
GEN=()
command -v ninja >/dev/null 2>&1 && GEN=(-G Ninja)
BENCH_OPT=OFF
[ "${BENCH:-0}" = 1 ] && BENCH_OPT=ON
build_start=$(date +%s)
cmake -S "$ROOT" -B "$BUILD_DIR" "${GEN[@]}" -DCMAKE_BUILD_TYPE=Release -DKNOT_CUDA=ON \
  -DCMAKE_CUDA_ARCHITECTURES="$CUDA_ARCH" -DKNOT_BUILD_BENCH="$BENCH_OPT" >"$LOG_DIR/configure.log" 2>&1
configure_rc=$?
build_rc=1
if [ $configure_rc -eq 0 ]; then
  cmake --build "$BUILD_DIR" -j "$JOBS" --target knot_tests knot_nccl_check >"$LOG_DIR/build.log" 2>&1
  build_rc=$?
fi
build_s=$(( $(date +%s) - build_start ))
tail -5 "$LOG_DIR/build.log" 2>/dev/null >&2 || tail -20 "$LOG_DIR/configure.log" >&2

section "CUDA tests (ctest -L cuda --timeout $TEST_TIMEOUT)"
test_rc=1
test_start=$(date +%s)
if [ $build_rc -eq 0 ]; then
  (cd "$BUILD_DIR" && ctest -L cuda --timeout "$TEST_TIMEOUT" --output-on-failure) >"$LOG_DIR/ctest-cuda.log" 2>&1
  test_rc=$?
fi
test_s=$(( $(date +%s) - test_start ))
tail -25 "$LOG_DIR/ctest-cuda.log" >&2 2>/dev/null || true
TEST_SUMMARY="$(grep -E 'tests passed|tests failed' "$LOG_DIR/ctest-cuda.log" 2>/dev/null | tail -1)"
SKIPPED="$(grep -c '\*\*\*Skipped' "$LOG_DIR/ctest-cuda.log" 2>/dev/null || true)"
FAILED_LIST="$(sed -n '/The following tests FAILED/,$p' "$LOG_DIR/ctest-cuda.log" 2>/dev/null | tail -n +2 | head -30)"

{
  echo "## GPU check $(date -u +%Y-%m-%d) ($(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?'))"
  echo
  echo "- GPU: $(head -1 "$LOG_DIR/nvidia-smi.txt")"
  echo "- nvcc: ${NVCC_VERSION:-not found}; CUDA architectures: $CUDA_ARCH; CUDA_LAUNCH_BLOCKING=$CUDA_LAUNCH_BLOCKING"
  echo "- build of knot_tests: $([ $build_rc -eq 0 ] && echo ok || echo "FAILED (configure rc $configure_rc, build rc $build_rc; see $LOG_DIR)") in ${build_s} s"
  echo "- CUDA tests (ctest -L cuda, ${TEST_TIMEOUT} s each): ${TEST_SUMMARY:-not run}; skipped: ${SKIPPED:-0}; rc $test_rc; ${test_s} s"
  if [ -n "$FAILED_LIST" ]; then
    echo
    echo '```'
    echo "$FAILED_LIST"
    echo '```'
  fi
} | report

if [ "${BENCH:-0}" = 1 ] && [ $build_rc -eq 0 ]; then
  section "benchmarks (${BENCH_FILTER:-cuda|CUDA|gpu|GPU})"
  bench_status="build failed"
  if cmake --build "$BUILD_DIR" -j "$JOBS" --target knot_bench >"$LOG_DIR/build-bench.log" 2>&1; then
    "$BUILD_DIR/knot_bench" --benchmark_filter="${BENCH_FILTER:-cuda|CUDA|gpu|GPU}" --benchmark_min_time=0.2 \
      --benchmark_format=console >"$LOG_DIR/bench.txt" 2>&1
    bench_status="exit $?"
    tail -40 "$LOG_DIR/bench.txt" >&2
  fi
  {
    echo "- benchmarks: $bench_status"
    if [ -f "$LOG_DIR/bench.txt" ]; then
      echo
      echo '```'
      grep -E '^[A-Za-z_].*(ns|us|ms)' "$LOG_DIR/bench.txt" | head -60
      echo '```'
    fi
  } | report
fi
echo "
Logs: $LOG_DIR" | report

[ $build_rc -eq 0 ] && [ $test_rc -eq 0 ]
