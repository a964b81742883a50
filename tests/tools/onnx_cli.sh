#!/usr/bin/env bash
# `knot export onnx` checked by runtimes other than knot (docs/export.md): for a knot fit KAN of every
# built-in basis, the translation model's encoder, decoder and seq2seq (MLP and B-spline KAN),
# ELECTRA's discriminator and generator (MLP and Chebyshev KAN in every projection), the classifier of
# the same models fine-tuned for sentiment, and language
# models (sinusoidal, learned and rotary positions; MLP and Chebyshev KAN), the exported file
# passes onnx.checker.check_model(full_check=True) (Debian python3-onnx) and ONNX Runtime (npm
# onnxruntime-node, tests/onnx/check.js) gives knot's outputs to 1e-4 relative at two batch sizes and
# sequence lengths (the dynamic axes) and on real sentences; greedy translation with the exported
# encoder and decoder equals knot's, recomputing the prefix and with the decoder's KV cache. Then the
# errors: a part the run does not have, --kv-cache on another part, a classifier of a model that was
# not fine-tuned, a directory as output, and a run of a task without an export.
# Usage: onnx_cli.sh KNOT WORK_DIR (run from the source root).
set -euo pipefail
knot=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
. "$(dirname "$0")/common.sh"
py=/usr/bin/python3
[ -x "$py" ] && "$py" -c 'import onnx' 2>/dev/null ||
  fail "Debian's python3-onnx is missing (scripts/install-deps.sh installs it)"
[ -d tests/onnx/node_modules/onnxruntime-node ] ||
  fail "tests/onnx/node_modules/onnxruntime-node is missing (scripts/install-deps.sh installs it: npm ci --ignore-scripts)"

# export NAME RUN PART [knot export flags...]: writes NAME.onnx and NAME.json, then checks both ways.
check() {
  local name=$1 run=$2 part=$3
  shift 3
  "$knot" export onnx --run "$run" --part "$part" -o "$work/$name.onnx" --reference "$work/$name.json" "$@" \
    > "$work/$name.export.log" 2>&1 || { cat "$work/$name.export.log"; fail "$name: knot export failed"; }
  "$py" -c 'import sys, onnx; onnx.checker.check_model(onnx.load(sys.argv[1]), full_check=True)' "$work/$name.onnx" ||
    fail "$name: onnx.checker rejected the model"
  local rtol=1e-4 extra=()
  for a in "$@"; do [ "$a" = f64 ] && { rtol=1e-8; extra=(--float64); }; done
  node tests/onnx/check.js "$work/$name.onnx" "$work/$name.json" --rtol "$rtol" "${extra[@]}" > "$work/$name.check.log" 2>&1 ||
    { cat "$work/$name.check.log"; fail "$name: ONNX Runtime differs from knot"; }
  echo "onnx_cli: $name: $(tail -1 "$work/$name.check.log")"
}

for basis in bspline chebyshev legendre fourier rbf rational relu; do
  "$knot" fit configs/fit-exp-sin.json run_dir="$work/fit-$basis" model.projection.kind="kan_$basis" 'model.projection.options={}' train.steps=3 \
    data.generate.n_train=200 data.generate.n_test=50 > "$work/fit-$basis.log" 2>&1 ||
    { cat "$work/fit-$basis.log"; fail "knot fit ($basis) failed"; }
  check "fit-$basis" "$work/fit-$basis" fit
done
check fit-bspline-f64 "$work/fit-bspline" fit --dtype f64

cat > "$work/sentences.txt" <<'TXT'
It was brought home to me.
Slate!
Where is the station?
I am tired.
TXT
for kind in mlp kan_bspline; do
  "$knot" train configs/translate-tiny.json --run "$work/tr-$kind" model.projection.kind=$kind train.steps=200 \
    train.val_every=200 train.checkpoint_every=200 train.progress=false > "$work/tr-$kind.log" 2>&1 ||
    { cat "$work/tr-$kind.log"; fail "knot train (translation, $kind) failed"; }
  for part in encoder decoder seq2seq; do
    check "tr-$kind-$part" "$work/tr-$kind" $part --reference-sentences "$work/sentences.txt"
  done
  # The decoder with its KV cache: two cached steps (the first from an empty cache) per shape.
  check "tr-$kind-decoder-kv" "$work/tr-$kind" decoder --kv-cache --reference-sentences "$work/sentences.txt"
  node tests/onnx/check.js --greedy "$work/tr-$kind-encoder.onnx" "$work/tr-$kind-decoder-kv.onnx" \
    "$work/tr-$kind-decoder-kv.json" --cached > "$work/tr-$kind-greedy-kv.log" 2>&1 ||
    { cat "$work/tr-$kind-greedy-kv.log"; fail "tr-$kind: cached greedy translation with ONNX Runtime differs from knot's"; }
  echo "onnx_cli: tr-$kind (KV cache): $(tail -1 "$work/tr-$kind-greedy-kv.log")"
  node tests/onnx/check.js --greedy "$work/tr-$kind-encoder.onnx" "$work/tr-$kind-decoder.onnx" \
    "$work/tr-$kind-decoder.json" > "$work/tr-$kind-greedy.log" 2>&1 ||
    { cat "$work/tr-$kind-greedy.log"; fail "tr-$kind: greedy translation with ONNX Runtime differs from knot's"; }
  # The translations must not all be empty, or the comparison says little.
  grep -qE '^greedy [0-9]+: [1-9][0-9]* tokens' "$work/tr-$kind-greedy.log" ||
    { cat "$work/tr-$kind-greedy.log"; fail "tr-$kind: every greedy translation is empty"; }
  echo "onnx_cli: tr-$kind: $(tail -1 "$work/tr-$kind-greedy.log")"
done

head -3 tests/fixtures/train/electra-text.txt > "$work/electra-sentences.txt"
for kind in mlp kan_chebyshev; do
  "$knot" train configs/pretrain-electra-tiny.json --run "$work/el-$kind" 'data.train=["tests/fixtures/train/electra-text.txt"]' \
    tokenizer.path=tests/fixtures/train/electra-vocab.txt train.steps=5 train.val_every=5 train.checkpoint_every=5 \
    train.progress=false data.max_length=32 model.max_position_embeddings=32 model.projection=$kind \
    > "$work/el-$kind.log" 2>&1 ||
    { cat "$work/el-$kind.log"; fail "knot train (electra, $kind) failed"; }
  for part in discriminator generator; do
    check "el-$kind-$part" "$work/el-$kind" $part --reference-sentences "$work/electra-sentences.txt"
  done
  # Fine-tuned for sentiment: the classifier head (the run's default part).
  "$knot" finetune --run "$work/el-$kind" --task sentiment --out "$work/ft-$kind" \
    data.train=tests/fixtures/train/sentiment-tiny-train.jsonl data.val=tests/fixtures/train/sentiment-tiny-val.jsonl \
    data.test=tests/fixtures/train/sentiment-tiny-test.jsonl data.max_length=32 data.batch_size=8 train.steps=3 \
    train.val_every=3 train.checkpoint_every=3 train.progress=false > "$work/ft-$kind.log" 2>&1 ||
    { cat "$work/ft-$kind.log"; fail "knot finetune ($kind) failed"; }
  check "ft-$kind-classifier" "$work/ft-$kind" classifier --reference-sentences "$work/electra-sentences.txt"
done

# Language models: sinusoidal positions with MLP projections (tied head), learned positions, and
# rotary positions with pre-LN, SwiGLU and Chebyshev-KAN projections; with and without the KV cache;
# greedy continuation of real prompts equals knot's.
printf 'And God said\nThe Congress shall\n' > "$work/prompts.txt"
for variant in "sinusoidal mlp" "learned mlp" "rope kan_chebyshev"; do
  set -- $variant
  name="lm-$1-$2"
  extra=()
  [ "$1" = rope ] && extra=(model.pre_layer_norm=true model.ffn_activation=swiglu)
  "$knot" train configs/lm-tiny.json --run "$work/$name" model.positions=$1 model.projection.kind=$2 train.steps=30 \
    train.progress=false "${extra[@]}" > "$work/$name.log" 2>&1 || { cat "$work/$name.log"; fail "knot train ($name) failed"; }
  for kv in "" --kv-cache; do
    check "$name$kv" "$work/$name" lm $kv --reference-sentences "$work/prompts.txt"
    node tests/onnx/check.js --generate "$work/$name$kv.onnx" "$work/$name$kv.json" ${kv:+--cached} > "$work/$name$kv-gen.log" 2>&1 ||
      { cat "$work/$name$kv-gen.log"; fail "$name$kv: greedy continuation with ONNX Runtime differs from knot's"; }
    grep -qE '^generate [0-9]+.*: [1-9][0-9]* tokens' "$work/$name$kv-gen.log" ||
      { cat "$work/$name$kv-gen.log"; fail "$name$kv: every continuation is empty"; }
    echo "onnx_cli: $name$kv: $(tail -1 "$work/$name$kv-gen.log")"
  done
done

# Errors name the problem and write nothing.
expect_onnx_error() {
  local what=$1 pattern=$2
  shift 2
  expect_error "$what" "$pattern" export onnx "$@"
}
expect_onnx_error "a part the run lacks" "exports as 'encoder', 'decoder' or 'seq2seq', not 'generator'" \
  --run "$work/tr-mlp" --part generator -o "$work/none.onnx"
expect_onnx_error "a directory as output" "is a directory" --run "$work/fit-bspline" -o "$work"
expect_onnx_error "--kv-cache on the encoder" "an option of the parts decoder and lm" --run "$work/tr-mlp" --part encoder --kv-cache \
  -o "$work/none.onnx"
mkdir -p "$work/other" && echo '{"task": "finetune"}' > "$work/other/config.json"
expect_onnx_error "a classifier of a model that was not fine-tuned" "needs a fine-tuned model" --run "$work/el-mlp" \
  --part classifier -o "$work/none.onnx"
expect_onnx_error "a task without an export" "runs of task 'finetune' have no export yet" --run "$work/other" -o "$work/none.onnx"
[ ! -e "$work/none.onnx" ] || fail "a failed export left $work/none.onnx"
echo "onnx_cli: ok"
