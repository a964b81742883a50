#!/usr/bin/env bash
# kill -9 at random moments, resume, repeat: the finished run must be bit-identical to one that was
# never interrupted. Checkpoints are written every step, so many kills land inside a checkpoint
# write (temp directory, renames, the `latest` pointer) or inside the run-directory set-up.
# Usage: kill_resume.sh KNOT WORK_DIR [KILLS] (run from the source root).
set -euo pipefail
knot=$1
work=$2
kills=${3:-12}
rm -rf "$work"
mkdir -p "$work"
export KNOT_NUM_THREADS=1  # bit-identical needs the same thread count in every process
args=(train.steps=30 train.checkpoint_every=1 train.keep_checkpoints=2 train.val_every=10 train.log_every=5
      train.threads=1 train.progress=false)

t0=$(date +%s%N)
"$knot" train configs/translate-tiny.json --run "$work/ref" "${args[@]}" > "$work/ref.log" 2>&1
ref_ms=$((($(date +%s%N) - t0) / 1000000))  # the whole uninterrupted run, set-up included

run="$work/killed"
start() {  # a fresh run until the first checkpoint exists, then --resume
  if [ -f "$run/checkpoints/latest" ]; then
    "$knot" train --resume "$run" >> "$work/killed.log" 2>&1 &
  else
    "$knot" train configs/translate-tiny.json --run "$run" "${args[@]}" >> "$work/killed.log" 2>&1 &
  fi
  pid=$!
}
RANDOM=7  # the same kill times on every run of this test
killed=0
finished=0
for ((i = 0; i < kills; i++)); do
  start
  # 3%..30% of the uninterrupted run's wall time (not fixed milliseconds: the run took 0.55 s on a
  # quiet machine and 3.8 s under the sanitizers, more beside a build), so kills spread over
  # set-up, steps and checkpoints, and at least the first three land before the run can finish
  # (three kills leave at most 90% of the work done).
  ms=$((ref_ms * (30 + RANDOM % 271) / 1000))
  ms=$((ms < 10 ? 10 : ms))
  sleep "$((ms / 1000)).$(printf '%03d' $((ms % 1000)))"
  if kill -9 "$pid" 2>/dev/null; then
    wait "$pid" 2>/dev/null || true
    killed=$((killed + 1))
  else
    if wait "$pid"; then finished=1; break; fi
    echo "FAIL: an interrupted run failed on its own (not killed):" >&2
    tail -20 "$work/killed.log" >&2
    exit 1
  fi
done
if [ "$finished" -eq 0 ]; then
  start
  if ! wait "$pid"; then
    echo "FAIL: the last resume failed:" >&2
    tail -20 "$work/killed.log" >&2
    exit 1
  fi
fi
[ "$killed" -ge 3 ] || { echo "FAIL: only $killed kills landed; the test proves little" >&2; exit 1; }

ref="$work/ref/checkpoints/$(cat "$work/ref/checkpoints/latest")"
got="$run/checkpoints/$(cat "$run/checkpoints/latest")"
[ "$(basename "$ref")" = "step-000030" ] || { echo "FAIL: the reference run ended at $(basename "$ref")" >&2; exit 1; }
[ "$(basename "$got")" = "step-000030" ] || { echo "FAIL: the killed run ended at $(basename "$got")" >&2; exit 1; }
for f in model.safetensors optimizer.safetensors trainer_state.json; do
  cmp "$ref/$f" "$got/$f" || { echo "FAIL: $f differs after $killed kills" >&2; exit 1; }
done
cmp "$work/ref/tokenizer.json" "$run/tokenizer.json" || { echo "FAIL: tokenizer.json differs" >&2; exit 1; }
if ls -A "$run/checkpoints" | grep -q '^\.tmp-'; then echo "FAIL: a temp directory was left behind" >&2; exit 1; fi
echo "kill_resume: ok ($killed kills in a run of ${ref_ms} ms, then bit-identical model, optimizer and trainer state at step 30)"
