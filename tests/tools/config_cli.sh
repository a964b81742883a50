#!/usr/bin/env bash
# knot config: --schema lists every key of a task with its type, default and meaning; --check reads a
# whole config (with overrides) as its task would and names a typo, writing nothing; the committed
# docs/config-reference.md is what scripts/config-reference.sh generates from the code; old
# spellings are read with a deprecation warning.
# Usage: config_cli.sh KNOT WORK_DIR (run from the source root).
set -euo pipefail
knot=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
source "$(dirname "$0")/common.sh"

"$knot" config --schema translation > "$work/tr.txt"
for key in 'model.num_heads ' 'train.optimizer.beta1 ' 'tokenizer.path ' 'eval.beam ' 'model.projections.ffn '; do
  grep -q "^$key" "$work/tr.txt" || { cat "$work/tr.txt"; fail "--schema translation does not list '$key'"; }
done
grep -q '^train.steps  *integer  *1000  *optimizer steps in the whole run$' "$work/tr.txt" ||
  fail "--schema translation: train.steps is not 'integer 1000 optimizer steps in the whole run'"
"$knot" config --schema bases --markdown > "$work/bases.md"  # (to a file: grep -q would cut a pipe short)
grep -q '^| `kan_chebyshev.degree` | integer | `4` |' "$work/bases.md" ||
  fail "--schema bases --markdown has no kan_chebyshev.degree row"
expect_error "an unknown schema" "unknown name 'nope'" config --schema nope
expect_error "no mode" "either --schema NAME or --check CONFIG" config
expect_error "both modes" "either --schema NAME or --check CONFIG" config --schema fit --check configs/fit-exp-sin.json

for cfg in configs/translate-kan-small.json configs/pretrain-electra-tiny.json configs/lm-micro-kan.json \
           configs/finetune-sentiment.json configs/fit-exp-sin.json; do
  "$knot" config --check "$cfg" > "$work/check.log" 2>&1 || { cat "$work/check.log"; fail "--check $cfg failed"; }
  grep -q "is fine" "$work/check.log" || fail "--check $cfg: $(cat "$work/check.log")"
done
"$knot" config --check configs/translate-tiny.json train.steps=7 --changed > "$work/changed.log"
grep -q '^  train.steps = 7  (default 1000)$' "$work/changed.log" || { cat "$work/changed.log"; fail "--changed does not list train.steps"; }
expect_error "a typo in basis options" "did you mean 'grid_size'" \
  config --check configs/translate-kan-small.json model.projection.options.grid_sise=4
expect_error "a typo in the train object" "did you mean 'steps'" config --check configs/translate-tiny.json train.stesp=4
"$knot" config --check configs/translate-tiny.json run_dir="$work/never" > /dev/null
[ ! -e "$work/never" ] || fail "--check created the run directory"

# An old spelling works and says what replaced it.
"$knot" config --check configs/fit-exp-sin.json train.lamb=0.01 > "$work/old.log" 2>&1 || { cat "$work/old.log"; fail "--check with train.lamb failed"; }
grep -q "key 'lamb' is deprecated .*it is now 'kan_regularization'" "$work/old.log" || { cat "$work/old.log"; fail "no deprecation warning for train.lamb"; }

# The reference in docs/ is the generated one.
bash scripts/config-reference.sh "$knot" > "$work/config-reference.md"
diff -u docs/config-reference.md "$work/config-reference.md" > "$work/ref.diff" ||
  { head -40 "$work/ref.diff"; fail "docs/config-reference.md is stale: run scripts/config-reference.sh build/knot > docs/config-reference.md"; }
echo "config_cli: ok"
