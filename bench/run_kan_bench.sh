#!/usr/bin/env bash
# The default KAN vs MLP benchmark run: a documented subset of bench/bench_kan.cpp's full grid
# (which is registered in full; pass your own --benchmark_filter to run any other part of it).
#   1. N=4096, width=256: every basis at every G, Linear, MLP_io and MLP_params; fwd and fwd+bwd
#   2. G=5 (and the bases without a size knob), N ∈ {256, 4096, 16384}, width ∈ {64, 256}: fwd+bwd
# Writes the console table and a JSON file (default: <build dir>/bench-results/kan_<date>.{txt,json}).
# Usage: bench/run_kan_bench.sh [build dir, default build-bench] [extra knot_bench flags...]
#   KNOT_NUM_THREADS (default 2) sets the threads.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-bench}
shift || true
BIN="$BUILD/knot_bench"
[[ -x "$BIN" ]] || { echo "run_kan_bench: $BIN not found; build it: ninja -C $BUILD knot_bench" >&2; exit 1; }
export KNOT_NUM_THREADS=${KNOT_NUM_THREADS:-2}
OUT=${KAN_BENCH_OUT:-$BUILD/bench-results}
mkdir -p "$OUT"
stamp=$(date +%Y%m%d-%H%M%S)

SUBSET1='^(KAN/[^/]+|MLP_params/[^/]+|Linear|MLP_io)/(fwd|fwdbwd)/N:4096/w:256/'
SUBSET2='^(KAN/[^/]+|MLP_params/[^/]+|Linear|MLP_io)/fwdbwd/N:(256|4096|16384)/w:(64|256)/(G:(5|-)/|min_time)'
FILTER="($SUBSET1)|($SUBSET2)"

echo "knot_bench $BIN, $KNOT_NUM_THREADS threads, filter: $FILTER" | tee "$OUT/kan_$stamp.txt"
"$BIN" --benchmark_filter="$FILTER" \
  --benchmark_out="$OUT/kan_$stamp.json" --benchmark_out_format=json "$@" 2>&1 | tee -a "$OUT/kan_$stamp.txt"
echo "wrote $OUT/kan_$stamp.txt and $OUT/kan_$stamp.json"
