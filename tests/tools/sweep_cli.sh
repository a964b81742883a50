#!/usr/bin/env bash
# knot sweep end to end on the tiny translation config: a 2 x 1 grid (two learning rates, one seed)
# trains both points, evaluates their test split (greedy and beam 2) and writes the table; a second
# run of the same command trains nothing; a longer train.steps resumes both points; a point that
# diverges fails alone (the other finishes, the command exits non-zero, the table says which);
# a bad value in one point's model config stops the sweep before anything trains.
# Usage: sweep_cli.sh KNOT WORK_DIR (run from the source root).
set -euo pipefail
knot=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
source "$(dirname "$0")/common.sh"
root=$work/sw
common=(configs/translate-tiny.json train.lr=3e-3,1e-2 train.val_every=10 train.checkpoint_every=10
        train.progress=false --seeds 1 --root "$root" --test --beam 2 --val-at 10,20)

"$knot" sweep "${common[@]}" train.steps=20 > "$work/first.log" 2>&1 || { cat "$work/first.log"; fail "the first sweep failed"; }
for p in train.lr=3e-3__seed=1 train.lr=1e-2__seed=1; do
  [ -f "$root/$p/checkpoints/latest" ] || fail "point $p has no checkpoint"
  grep -q '"test_beam"' "$root/$p/sweep-point.json" || fail "point $p has no beam test evaluation"
done
# Two data rows, each done at 20/20 with numbers in every column the run fills.
rows=$(grep -c '^| [0-9.e-]* | 1 |' "$root/sweep.md" || true)
[ "$rows" = 2 ] || { cat "$root/sweep.md"; fail "sweep.md has $rows rows for the 2 points"; }
grep -q '| 3e-3 | 1 | [0-9][0-9]* | 20/20 | [0-9.]* | [0-9.]* ([0-9]*) | [0-9.]* | [0-9.]* | - | [0-9.]* | [0-9.]* | [0-9.]* | [0-9]* | [0-9]* | done |' "$root/sweep.md" ||
  { cat "$root/sweep.md"; fail "the row of train.lr=3e-3 is not filled as expected"; }
grep -q 'test BLEU beam 2' "$root/sweep.md" || fail "sweep.md has no beam-2 column"
[ "$(head -1 "$root/sweep.csv" | cut -d, -f1-3)" = "train.lr,seed,parameters" ] || fail "sweep.csv's header: $(head -1 "$root/sweep.csv")"
[ "$(wc -l < "$root/sweep.csv")" = 3 ] || fail "sweep.csv should have a header and 2 rows"
if command -v gnuplot > /dev/null; then [ -s "$root/sweep.png" ] || fail "no sweep.png"; fi

# The same command again: nothing trains or evaluates.
"$knot" sweep "${common[@]}" train.steps=20 > "$work/second.log" 2>&1 || { cat "$work/second.log"; fail "the second sweep failed"; }
[ "$(grep -c 'not trained again' "$work/second.log")" = 2 ] || { cat "$work/second.log"; fail "a finished point was trained again"; }
if grep -q 'knot eval' "$work/second.log"; then cat "$work/second.log"; fail "a finished point was evaluated again"; fi

# More steps: both points resume from step 20 and end at 30.
"$knot" sweep "${common[@]}" train.steps=30 > "$work/third.log" 2>&1 || { cat "$work/third.log"; fail "the resuming sweep failed"; }
[ "$(grep -c 'resuming at step 20' "$work/third.log")" = 2 ] || { cat "$work/third.log"; fail "the points did not resume at step 20"; }
[ "$(grep -c '30/30' "$root/sweep.md")" = 2 ] || { cat "$root/sweep.md"; fail "the points did not reach 30 steps"; }

# One diverging point fails alone.
root2=$work/div
if "$knot" sweep configs/translate-tiny.json train.lr=3e-3,1e6 train.steps=20 train.val_every=10 train.checkpoint_every=10 \
     train.progress=false --root "$root2" --no-plot > "$work/div.log" 2>&1; then
  cat "$work/div.log"; fail "a sweep with a diverging point exited 0"
fi
grep -q '1 of 2 points failed' "$work/div.log" || { cat "$work/div.log"; fail "the error does not count the failed point"; }
grep -q '| 3e-3 | .* | done |' "$root2/sweep.md" || { cat "$root2/sweep.md"; fail "the good point is not done"; }
grep -q '| 1e6 | .* | failed: exit 1 |' "$root2/sweep.md" || { cat "$root2/sweep.md"; fail "the diverged point is not marked failed"; }

# A bad model value in one point: refused before any point trains.
expect_error "bad point" "kan_nosuch" sweep configs/translate-tiny.json model.projection.kind=mlp,kan_nosuch --root "$work/bad"
[ ! -e "$work/bad" ] || fail "a refused sweep created its root directory"
expect_error "no values" "empty value" sweep configs/translate-tiny.json train.lr=1e-3, --root "$work/bad"
expect_error "no config" "needs a CONFIG" sweep train.lr=1e-3,2e-3
echo "sweep_cli: ok (2 points trained, evaluated and tabulated; rerun skipped them; resumed to 30 steps; a diverged point failed alone; bad values refused first)"
