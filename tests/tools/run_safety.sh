#!/usr/bin/env bash
# The run-directory safety of issue 21, end to end through the command line:
#  1. a refused `knot train` (the run holds checkpoints) and a failed `--resume` with a model
#     override change nothing in the run directory; plain --resume still works afterwards;
#  2. a second writer on a locked run directory is refused with the holder's pid;
#  3. a diverged run (train.lr=1e6) exits non-zero and says why, without "keeping the previous
#     checkpoint" when there is none;
#  4. knot translate keeps blank lines in place and cuts an over-long sentence with a warning
#     naming its line instead of failing the batch.
# Usage: run_safety.sh KNOT WORK_DIR (run from the source root).
set -uo pipefail
knot=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
export KNOT_NUM_THREADS=1
fail() { echo "FAIL: $*" >&2; exit 1; }
base=(train.steps=20 train.checkpoint_every=10 train.val_every=10 train.progress=false)
run="$work/run"
"$knot" train configs/translate-tiny.json --run "$run" "${base[@]}" > "$work/train.log" 2>&1 || fail "the first run failed"
snapshot() { (cd "$run" && find . -path ./.lock -prune -o -type f -print0 | sort -z | xargs -0 sha256sum); }
before=$(snapshot)

# 1. A refused fresh run over a finished one.
if "$knot" train configs/translate-tiny.json --run "$run" "${base[@]}" tokenizer.lowercase=true seed=5 \
     > "$work/refused.log" 2>&1; then fail "train over a run with checkpoints exited 0"; fi
grep -q "already holds checkpoints" "$work/refused.log" || fail "no 'already holds checkpoints' error: $(cat "$work/refused.log")"
[ "$(snapshot)" = "$before" ] || fail "a refused train changed the run directory"
# A failed resume: another model shape.
if "$knot" train --resume "$run" model.embedding_dim=64 > "$work/resume-shape.log" 2>&1; then
  fail "resume with model.embedding_dim=64 exited 0"; fi
[ "$(snapshot)" = "$before" ] || fail "a failed --resume (embedding_dim) changed the run directory"
# Same shapes, another model: num_heads 2 -> 4 (embedding_dim 32 splits either way).
if "$knot" train --resume "$run" model.num_heads=4 > "$work/resume-heads.log" 2>&1; then
  fail "resume with model.num_heads=4 exited 0"; fi
grep -q "another config" "$work/resume-heads.log" || fail "num_heads change not named: $(cat "$work/resume-heads.log")"
[ "$(snapshot)" = "$before" ] || fail "a failed --resume (num_heads) changed the run directory"
# A changed tokenizer on resume.
if "$knot" train --resume "$run" tokenizer.lowercase=true > "$work/resume-tok.log" 2>&1; then
  fail "resume with tokenizer.lowercase=true exited 0"; fi
grep -q "tokenizer settings differ" "$work/resume-tok.log" || fail "tokenizer change not named: $(cat "$work/resume-tok.log")"
[ "$(snapshot)" = "$before" ] || fail "a failed --resume (tokenizer) changed the run directory"
"$knot" train --resume "$run" > "$work/resume-ok.log" 2>&1 || fail "plain --resume failed after the refusals: $(cat "$work/resume-ok.log")"
"$knot" eval --run "$run" --split val --samples 0 > "$work/eval.log" 2>&1 || fail "eval failed after the refusals"

# 2. Two writers: the second is refused with the first one's pid.
"$knot" train --resume "$run" train.steps=100000 train.checkpoint_every=0 train.val_every=0 > "$work/long.log" 2>&1 &
holder=$!
for _ in $(seq 100); do grep -q "pid $holder" "$run/.lock" 2>/dev/null && break; sleep 0.1; done
grep -q "pid $holder" "$run/.lock" || { kill -9 $holder; fail "the first writer never recorded its pid in .lock"; }
"$knot" train --resume "$run" > "$work/second.log" 2>&1
rc=$?
kill -9 $holder 2>/dev/null; wait $holder 2>/dev/null
[ $rc -ne 0 ] || fail "a second writer on a locked run exited 0"
grep -q "in use by another process (pid $holder" "$work/second.log" || fail "the refusal does not name pid $holder: $(cat "$work/second.log")"
# After the holder died (kill -9), the lock is free again.
# (The holder saved its overrides into config.json, as any --resume with overrides does: set steps back.)
"$knot" train --resume "$run" train.steps=20 > "$work/after-kill.log" 2>&1 || fail "resume after the holder was killed failed: $(cat "$work/after-kill.log")"

# 3. A diverged run fails loudly.
for extra in "" "train.clip_grad_norm=0"; do
  # shellcheck disable=SC2086
  "$knot" train configs/translate-tiny.json --run "$work/div" train.lr=1e6 train.steps=40 train.progress=false $extra \
    > "$work/div.log" 2>&1
  rc=$?
  [ $rc -ne 0 ] || fail "train.lr=1e6 $extra exited 0: $(tail -5 "$work/div.log")"
  grep -q "diverged" "$work/div.log" || fail "train.lr=1e6 $extra: no 'diverged' message: $(tail -5 "$work/div.log")"
  if grep -q "keeping the previous checkpoint" "$work/div.log"; then fail "speaks of a previous checkpoint"; fi
  if grep -q "last loss 0.0000" "$work/div.log"; then fail "printed 'last loss 0.0000'"; fi
  rm -rf "$work/div"
done

# 4. translate: blank lines stay in place; an over-long line is cut with a warning naming it.
long=$(for _ in $(seq 60); do printf 'the house is very big and '; done)
printf 'I am tired.\n\nWhere is the station?\n   \n%s\nThank you very much!\n' "$long" > "$work/src.txt"
"$knot" translate --run "$run" < "$work/src.txt" > "$work/out.txt" 2> "$work/translate.err" || fail "translate failed: $(cat "$work/translate.err")"
[ "$(wc -l < "$work/out.txt")" -eq 6 ] || fail "6 lines in, $(wc -l < "$work/out.txt") out"
[ -z "$(sed -n 2p "$work/out.txt")" ] && [ -z "$(sed -n 4p "$work/out.txt")" ] || fail "blank lines 2 and 4 are not blank in the output"
grep -q "line 5: .* tokens, more than the model's limit" "$work/translate.err" || fail "no warning naming line 5: $(cat "$work/translate.err")"
echo "run_safety: ok (refusals leave the run as it was; lock names the holder; divergence exits non-zero; translate keeps lines)"
