#!/usr/bin/env bash
# The language-model workflow through the command line (docs/language-models.md): knot params on a
# GPT-2 preset, knot train on configs/lm-tiny.json, then knot eval and knot generate (greedy with
# and without the KV cache give the same text; a seeded sample repeats; bad flags are clear errors).
# Usage: lm_cli.sh KNOT WORK_DIR (run from the source root).
set -euo pipefail
knot=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fail() { echo "lm_cli: $*" >&2; exit 1; }

"$knot" params configs/gpt2-nano.json --depth 0 > "$work/params.log" 2>&1 || { cat "$work/params.log"; fail "knot params failed"; }
grep -qE '^total +2,546,977$' "$work/params.log" || { cat "$work/params.log"; fail "params: gpt2-nano is not 2,546,977"; }

"$knot" train configs/lm-tiny.json --run "$work/run" train.progress=false > "$work/train.log" 2>&1 ||
  { cat "$work/train.log"; fail "knot train failed"; }
grep -q '^lm: trained a BPE tokenizer' "$work/train.log" || { cat "$work/train.log"; fail "train: no tokenizer line"; }
grep -q '^train: 40 steps' "$work/train.log" || { cat "$work/train.log"; fail "train: no summary"; }
[ -f "$work/run/tokenizer.json" ] && [ -f "$work/run/checkpoints/latest" ] || fail "train: run files missing"

"$knot" eval --run "$work/run" --split val > "$work/eval.log" 2>&1 || { cat "$work/eval.log"; fail "knot eval failed"; }
grep -qE '^loss [0-9.]+  perplexity [0-9.]+' "$work/eval.log" || { cat "$work/eval.log"; fail "eval: no loss line"; }
[ -f "$work/run/eval-val.json" ] || fail "eval: no eval-val.json"

"$knot" generate --run "$work/run" --greedy --max-new-tokens 12 "A blue bird" > "$work/cache.txt"
"$knot" generate --run "$work/run" --greedy --max-new-tokens 12 --no-cache "A blue bird" > "$work/nocache.txt"
cmp -s "$work/cache.txt" "$work/nocache.txt" || { cat "$work/cache.txt" "$work/nocache.txt"; fail "generate: cache and no-cache differ"; }
grep -q '^A blue bird' "$work/cache.txt" || fail "generate: the prompt is not echoed"
"$knot" generate --run "$work/run" --seed 3 --samples 2 --top-p 0.9 "The" > "$work/s1.txt"
"$knot" generate --run "$work/run" --seed 3 --samples 2 --top-p 0.9 "The" > "$work/s2.txt"
cmp -s "$work/s1.txt" "$work/s2.txt" || fail "generate: the same seed gave different samples"
[ "$(wc -l < "$work/s1.txt")" = 2 ] || fail "generate: --samples 2 did not print two lines"
echo "The old dog" | "$knot" generate --run "$work/run" --max-new-tokens 3 > "$work/stdin.txt"
grep -q '^The old dog' "$work/stdin.txt" || fail "generate: stdin prompt not read"
if "$knot" generate --run "$work/run" --top-p 1.5 "x" > "$work/bad.log" 2>&1; then fail "generate accepted --top-p 1.5"; fi
grep -q "top_p must be in (0, 1]" "$work/bad.log" || { cat "$work/bad.log"; fail "generate: unclear error for top_p"; }
if "$knot" eval --run "$work/run" --beam 4 > "$work/bad2.log" 2>&1; then fail "eval accepted --beam on an lm run"; fi
grep -q "applies to translation runs" "$work/bad2.log" || { cat "$work/bad2.log"; fail "eval: unclear error for --beam"; }
echo "lm_cli: ok"
