#!/usr/bin/env bash
# End to end through the command line: train the tiny translation config for a few steps, then check
# that `knot translate` prints the same translations whatever its --batch-size (greedy and beam
# search with n-best scores), one block per input line in input order, and that `knot eval --beam`
# runs on the run directory. Usage: translate_cli.sh KNOT WORK_DIR (run from the source root).
set -euo pipefail
knot=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
"$knot" train configs/translate-tiny.json --run "$work/run" train.steps=200 train.val_every=100 train.checkpoint_every=100 train.progress=false > "$work/train.log" 2>&1

cat > "$work/src.txt" <<'TXT'
It was brought home to me.
Slate!
It makes no odds.
Where is the station?
I am tired.
He was quite right.
Thank you very much!
TXT
n=$(wc -l < "$work/src.txt")
for args in "" "--beam 3 --n-best 2"; do
  # shellcheck disable=SC2086
  "$knot" translate --run "$work/run" $args --batch-size 1 < "$work/src.txt" > "$work/one.txt"
  # shellcheck disable=SC2086
  "$knot" translate --run "$work/run" $args --batch-size 4 < "$work/src.txt" > "$work/four.txt"
  if ! diff "$work/one.txt" "$work/four.txt"; then
    echo "FAIL: knot translate $args: --batch-size 1 and 4 differ" >&2
    exit 1
  fi
  if [ -z "$args" ] && ! grep -q '[[:alpha:]]' "$work/one.txt"; then
    echo "FAIL: every greedy translation is empty: the comparison above would prove little" >&2
    exit 1
  fi
  lines=$(wc -l < "$work/one.txt")
  want=$n
  [ -n "$args" ] && want=$((2 * n))  # --n-best 2: two scored lines per sentence (beam 3 finds >= 2)
  if [ "$lines" -ne "$want" ]; then
    echo "FAIL: knot translate $args printed $lines lines for $n sentences, expected $want" >&2
    cat "$work/one.txt" >&2
    exit 1
  fi
done
# With --n-best the lines are "rank<TAB>score<TAB>text", ranks 1 and 2 in turn.
if [ "$(cut -f1 "$work/one.txt" | tr '\n' ' ')" != "$(for _ in $(seq "$n"); do printf '1 2 '; done)" ]; then
  echo "FAIL: knot translate --n-best 2 ranks are not 1 2 per sentence" >&2
  cat "$work/one.txt" >&2
  exit 1
fi
"$knot" eval --run "$work/run" --split val --beam 3 --max-examples 12 --samples 0 > "$work/eval.txt"
grep -q "\[beam 3\]" "$work/eval.txt" || { echo "FAIL: knot eval --beam 3 printed no beam BLEU line" >&2; cat "$work/eval.txt" >&2; exit 1; }
echo "translate_cli: ok ($n sentences; greedy and beam 3 equal across batch sizes; eval --beam 3 ran)"
