#!/usr/bin/env bash
# The KAN workflow through the command line (docs/kan-workflow.md): knot fit with a grid schedule,
# inspect (comma-separated --layer, no plots), prune, and symbolic with a comma-separated --lib, each
# checked for what it prints. Usage: kan_cli.sh KNOT WORK_DIR (run from the source root).
set -euo pipefail
knot=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fail() { echo "kan_cli: $*" >&2; exit 1; }

"$knot" fit configs/fit-exp-sin.json run_dir="$work/fit" train.steps=10 'train.grid_schedule=[3,5]' > "$work/fit.log" 2>&1 ||
  { cat "$work/fit.log"; fail "knot fit failed"; }
[ "$(grep -c '(grid size' "$work/fit.log")" = 2 ] || { cat "$work/fit.log"; fail "fit: expected one line per stage"; }

"$knot" inspect --run "$work/fit" -o "$work/inspect" --no-plots --layer layers.0,layers.1 > "$work/inspect.log" 2>&1 ||
  { cat "$work/inspect.log"; fail "knot inspect failed"; }
grep -q '^| layers.0 | kan_bspline | 2 -> 5 |' "$work/inspect.log" || fail "inspect: no row for layers.0"
grep -q '^| layers.1 | kan_bspline | 5 -> 1 |' "$work/inspect.log" || fail "inspect: no row for layers.1"
[ -f "$work/inspect/inspect.json" ] || fail "inspect: no inspect.json"

"$knot" prune --run "$work/fit" --threshold 0.05 > "$work/prune.log" 2>&1 || { cat "$work/prune.log"; fail "knot prune failed"; }
grep -q '^prune: widths \[2,5,1\] -> \[2,[1-5],1\]' "$work/prune.log" || { cat "$work/prune.log"; fail "prune: no widths line"; }
[ -f "$work/fit-pruned/model.safetensors" ] || fail "prune: no model in $work/fit-pruned"

"$knot" symbolic --run "$work/fit" --lib x,sin --no-tune > "$work/symbolic.log" 2>&1 ||
  { cat "$work/symbolic.log"; fail "knot symbolic failed"; }
edges=$(grep -c '^symbolic: layers\.' "$work/symbolic.log")
[ "$edges" = 15 ] || { cat "$work/symbolic.log"; fail "symbolic: $edges edge lines, expected 15"; }
if grep '^symbolic: layers\.' "$work/symbolic.log" | grep -vE -- '-> out [0-9]+: (x|sin|0) \('; then
  fail "symbolic: a function outside --lib x,sin"
fi
grep -q '^symbolic: y = ' "$work/symbolic.log" || fail "symbolic: no formula"
if "$knot" symbolic --run "$work/fit" --lib x,gamma > "$work/bad.log" 2>&1; then fail "symbolic accepted an unknown function"; fi
grep -q "unknown function 'gamma'" "$work/bad.log" || { cat "$work/bad.log"; fail "symbolic: unclear error for gamma"; }
echo "kan_cli: ok"
