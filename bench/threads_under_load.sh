#!/usr/bin/env bash
# Training tokens/s with 1 and 2 CPU threads, alone and next to one busy process, for one or more
# knot builds side by side in one run (docs/benchmarks.md, "Threads on a shared machine").
#
# Usage: bench/threads_under_load.sh [-c CONFIG] [-s STEPS] [-r REPS] LABEL=KNOT_BINARY...
#   e.g. bench/threads_under_load.sh before=/tmp/knot-before after=build/knot
# Each (rep, load, binary, threads) is one fresh `knot train CONFIG train.steps=STEPS` with
# KNOT_NUM_THREADS=t and train.threads=t (older builds let a config's threads win over the variable),
# a small end-of-run validation (it is not timed). tokens/s = tokens of steps log_every+1 ... STEPS
# over their wall time, from metrics.jsonl (the first window holds the warm-up). "busy" runs
# `sh -c 'while :; do :; done'` beside the training, pinned nowhere. Every line carries the load
# average (uptime) read just before the run: other jobs on the machine count as load too.
# Needs data/ende (knot data ende) for the default config. Prints one line per run, then a summary
# (median per cell).
set -euo pipefail
config=configs/translate-kan-small.json
steps=80
reps=2
while getopts "c:s:r:" opt; do
  case $opt in
    c) config=$OPTARG ;;
    s) steps=$OPTARG ;;
    r) reps=$OPTARG ;;
    *) echo "usage: $0 [-c CONFIG] [-s STEPS] [-r REPS] LABEL=KNOT..." >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-c CONFIG] [-s STEPS] [-r REPS] LABEL=KNOT..." >&2; exit 2; }
for spec in "$@"; do
  bin=${spec#*=}
  [ -x "$bin" ] || { echo "$0: '$bin' (from '$spec') is not an executable" >&2; exit 2; }
done
work=$(mktemp -d /tmp/knot-threads-bench.XXXXXX)
busy_pid=
cleanup() {
  if [ -n "$busy_pid" ]; then kill "$busy_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# tokens/s after the first log window, from a run's metrics.jsonl
rate() {
  python3 - "$1" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"tokens_per_s"' in l]
first, last = rows[0], rows[-1]
tokens = sum(r["tokens"] for r in rows[1:])
print(f'{tokens / (last["elapsed_s"] - first["elapsed_s"]):.0f}')
PY
}

results=$work/results.txt
: > "$results"
for rep in $(seq 1 "$reps"); do
  for load in alone busy; do
    if [ "$load" = busy ]; then
      sh -c 'while :; do :; done' &
      busy_pid=$!
      sleep 1
    fi
    for spec in "$@"; do
      label=${spec%%=*}
      bin=${spec#*=}
      for t in 1 2; do
        run=$work/run-$label-$load-$t-$rep
        uptime_now=$(uptime | sed 's/.*load average: //')
        KNOT_NUM_THREADS=$t "$bin" train "$config" --run "$run" train.steps="$steps" train.threads="$t" \
          train.progress=false train.val_every=0 train.checkpoint_every=0 data.max_val_examples=16 \
          translation.val_bleu_examples=0 > "$run.log" 2>&1 || { echo "FAILED: $label $load $t (log: $run.log)" >&2; cat "$run.log" >&2; exit 1; }
        tps=$(rate "$run/metrics.jsonl")
        echo "rep $rep  $load  $label  threads $t  $tps tokens/s  (load avg before: $uptime_now)"
        echo "$label $load $t $tps" >> "$results"
        rm -rf "$run"
      done
    done
    if [ -n "$busy_pid" ]; then
      kill "$busy_pid"
      wait "$busy_pid" 2>/dev/null || true
      busy_pid=
    fi
  done
done
echo "median tokens/s over $reps reps (config $config, $steps steps):"
python3 - "$results" <<'PY'
import statistics, sys
cells = {}
for line in open(sys.argv[1]):
    label, load, t, tps = line.split()
    cells.setdefault((label, load), {}).setdefault(int(t), []).append(float(tps))
for (label, load), by_t in cells.items():
    one, two = statistics.median(by_t[1]), statistics.median(by_t[2])
    print(f"  {label:10s} {load:6s} 1 thread {one:8.0f}   2 threads {two:8.0f}   2/1 = {two / one:.2f}")
PY
