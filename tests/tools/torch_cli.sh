#!/usr/bin/env bash
# `knot export torch` and `knot import` (docs/export.md): efficient-kan from a fit run and kanformer
# from translation runs (MLP with a tied output layer, B-spline and Chebyshev KAN), each file read
# by tests/torch/check_names.py (Python stdlib + NumPy: names and shapes of the reference modules,
# worked out independently, and values equal to knot's checkpoint bit for bit); then back with
# knot import: the imported fit run predicts exactly what the original does, and the imported
# kanformer weights equal the original checkpoint. Errors: a setting kanformer cannot express, an
# untied MLP output layer, a non-B-spline fit for efficient-kan, a config that does not match the file,
# and a non-empty run directory. The kanformer import continues in knot (tokenizer.path +
# train.init_from) exactly where the original run stood. Hugging Face ELECTRA (hf-electra): discriminator and generator files
# of an MLP ELECTRA, the same checks (not imported back); a KAN ELECTRA is refused. Where PyTorch is installed (Debian python3-torch), each file is also
# loaded with strict=True into PyTorch modules of the reference layout (tests/torch/load_reference.py)
# whose outputs must equal knot's to 1e-4; without PyTorch that step says it was skipped.
# Usage: torch_cli.sh KNOT WORK_DIR (run from the source root).
set -euo pipefail
knot=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
. "$(dirname "$0")/common.sh"
py=/usr/bin/python3
"$py" -c 'import numpy' 2>/dev/null || fail "Debian's python3-numpy is missing (scripts/install-deps.sh installs it)"
latest() { echo "$1/checkpoints/$(cat "$1/checkpoints/latest")/model.safetensors"; }
# same_tensors A B: the two safetensors files hold the same names, dtypes, shapes and bytes.
same_tensors() {
  "$py" - "$1" "$2" <<'PY'
import json, struct, sys
def tensors(p):
    b = open(p, "rb").read(); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n]); h.pop("__metadata__", None)
    return {k: (v["dtype"], v["shape"], b[8 + n + v["data_offsets"][0]:8 + n + v["data_offsets"][1]]) for k, v in h.items()}
a, b = tensors(sys.argv[1]), tensors(sys.argv[2])
if a != b:
    sys.exit(f"imported weights differ from the original checkpoint: {sorted(set(a) ^ set(b))[:5]} "
             f"{[k for k in a if k in b and a[k] != b[k]][:5]}")
PY
}

# efficient-kan: export, read, import into a new fit run, same predictions.
"$knot" fit configs/fit-exp-sin.json run_dir="$work/fit" train.steps=5 data.generate.n_train=200 \
  data.generate.n_test=50 > "$work/fit.log" 2>&1 || { cat "$work/fit.log"; fail "knot fit failed"; }
"$knot" export torch --run "$work/fit" --format efficient-kan -o "$work/ek.safetensors" > /dev/null
"$py" tests/torch/check_names.py efficient-kan "$work/ek.safetensors" "$work/fit/model.safetensors" "$work/fit/config.json"
"$knot" import --format efficient-kan -i "$work/ek.safetensors" --config "$work/fit/config.json" --run "$work/fit-imported" > /dev/null
"$knot" predict --run "$work/fit" --input "$work/fit/test.csv" -o "$work/pred-a.csv" > /dev/null
"$knot" predict --run "$work/fit-imported" --input "$work/fit/test.csv" -o "$work/pred-b.csv" > /dev/null
cmp -s "$work/pred-a.csv" "$work/pred-b.csv" || fail "the imported fit run predicts differently"
# PyTorch: knot's outputs on reference inputs (knot export onnx --reference) against the reference modules.
torch_check() {  # torch_check FORMAT EXPORTED RUN [PART]
  "$knot" export onnx --run "$3" ${4:+--part $4} -o "$work/ref.onnx" --reference "$work/ref.json" > /dev/null
  "$py" tests/torch/load_reference.py "$1" "$2" "$work/ref.json" || fail "$2: PyTorch differs from knot"
}
torch_check efficient-kan "$work/ek.safetensors" "$work/fit"
echo "torch_cli: efficient-kan: exported, read by NumPy, imported; predictions identical"

# kanformer: three projection kinds.
for kind in mlp kan_bspline kan_chebyshev; do
  "$knot" train configs/translate-tiny.json --run "$work/tr-$kind" model.projection.kind=$kind model.tie_output_embedding=true \
    train.steps=4 train.val_every=4 train.checkpoint_every=4 train.progress=false > "$work/tr-$kind.log" 2>&1 ||
    { cat "$work/tr-$kind.log"; fail "knot train ($kind) failed"; }
  if [ $kind != mlp ]; then  # a KAN output layer cannot be tied: train it untied
    rm -rf "$work/tr-$kind"
    "$knot" train configs/translate-tiny.json --run "$work/tr-$kind" model.projection.kind=$kind train.steps=4 \
      train.val_every=4 train.checkpoint_every=4 train.progress=false > "$work/tr-$kind.log" 2>&1 ||
      { cat "$work/tr-$kind.log"; fail "knot train ($kind) failed"; }
  fi
  "$knot" export torch --run "$work/tr-$kind" --format kanformer -o "$work/kf-$kind.safetensors" > /dev/null
  "$py" tests/torch/check_names.py kanformer "$work/kf-$kind.safetensors" "$(latest "$work/tr-$kind")" "$work/tr-$kind/config.json"
  torch_check kanformer "$work/kf-$kind.safetensors" "$work/tr-$kind" seq2seq
  "$knot" import --format kanformer -i "$work/kf-$kind.safetensors" --config "$work/tr-$kind/config.json" \
    -o "$work/back-$kind.safetensors" > /dev/null
  same_tensors "$work/back-$kind.safetensors" "$(latest "$work/tr-$kind")"
  echo "torch_cli: kanformer $kind: exported, read by NumPy, imported back bit for bit"
done
# The imported kanformer weights continue in knot: a new run with the same tokenizer (tokenizer.path)
# starting from them (train.init_from) validates, before any update (lr 0), exactly as the original did.
"$knot" train configs/translate-tiny.json --run "$work/continued" model.projection.kind=kan_bspline \
  "tokenizer={\"path\": \"$work/tr-kan_bspline/tokenizer.json\"}" train.init_from="$work/back-kan_bspline.safetensors" \
  train.steps=1 train.val_every=1 train.checkpoint_every=1 train.lr=0 'train.schedule={"kind": "constant"}' \
  train.progress=false > "$work/continued.log" 2>&1 || { cat "$work/continued.log"; fail "the continued run failed"; }
want=$(grep -o '"val_loss":[0-9.e+-]*' "$work/tr-kan_bspline/metrics.jsonl" | tail -1)
got=$(grep -o '"val_loss":[0-9.e+-]*' "$work/continued/metrics.jsonl" | head -1)
[ -n "$want" ] && [ "$want" = "$got" ] || fail "the continued run validates at $got, the original ended at $want"
echo "torch_cli: kanformer weights continue in knot: $got, as the original run"
expect_error "init_from weights of another model" "do not fit this model" train configs/translate-tiny.json \
  --run "$work/misfit" "tokenizer={\"path\": \"$work/tr-kan_bspline/tokenizer.json\"}" \
  train.init_from="$work/back-kan_bspline.safetensors" train.steps=1 train.progress=false
[ ! -e "$work/misfit/config.json" ] || fail "a refused init_from wrote the run directory"
expect_error "tokenizer.path with training settings" "cannot be set with it" train configs/translate-tiny.json \
  --run "$work/misfit" tokenizer.path="$work/tr-kan_bspline/tokenizer.json" train.steps=1

# Hugging Face ELECTRA (MLP model): discriminator and generator files.
for kind in mlp kan_chebyshev qkv; do
  extra=(model.projections.ffn=$kind)
  [ $kind = qkv ] && extra=(model.attention_qkv_bias=true)  # Hugging Face's q/k/v biases
  "$knot" train configs/pretrain-electra-tiny.json --run "$work/el-$kind" 'data.train=["tests/fixtures/train/electra-text.txt"]' \
    tokenizer.path=tests/fixtures/train/electra-vocab.txt train.steps=3 train.val_every=3 train.checkpoint_every=3 \
    train.progress=false data.max_length=32 model.max_position_embeddings=32 "${extra[@]}" \
    > "$work/el-$kind.log" 2>&1 || { cat "$work/el-$kind.log"; fail "knot train (electra $kind) failed"; }
done
for run in mlp qkv; do
  for part in discriminator generator; do
    "$knot" export torch --run "$work/el-$run" --format hf-electra --part $part -o "$work/hf-$run-$part.safetensors" > /dev/null
    "$py" tests/torch/check_names.py hf-electra "$work/hf-$run-$part.safetensors" "$(latest "$work/el-$run")" \
      "$work/el-$run/config.json" $part
    torch_check hf-electra "$work/hf-$run-$part.safetensors" "$work/el-$run" $part
    echo "torch_cli: hf-electra $run $part: exported, read by NumPy"
  done
  "$knot" import --format hf-electra -i "$work/hf-$run-discriminator.safetensors" -i "$work/hf-$run-generator.safetensors" \
    --config "$work/el-$run/config.json" -o "$work/hf-$run-back.safetensors" > /dev/null
  same_tensors "$work/hf-$run-back.safetensors" "$(latest "$work/el-$run")"
  echo "torch_cli: hf-electra $run: both files imported back bit for bit"
done
expect_error "q/k/v biases into a model without them" "set model.attention_qkv_bias true" import --format hf-electra \
  -i "$work/hf-qkv-discriminator.safetensors" -i "$work/hf-qkv-generator.safetensors" --config "$work/el-mlp/config.json" \
  -o "$work/x.safetensors"
expect_error "hf-electra import of one file" "reads two files" import --format hf-electra \
  -i "$work/hf-mlp-discriminator.safetensors" --config "$work/el-mlp/config.json" -o "$work/x.safetensors"
expect_error "hf-electra import of the same part twice" "two discriminator files" import --format hf-electra \
  -i "$work/hf-mlp-discriminator.safetensors" -i "$work/hf-mlp-discriminator.safetensors" --config "$work/el-mlp/config.json" \
  -o "$work/x.safetensors"
expect_error "a KAN ELECTRA as hf-electra" "has no KAN layers" export torch --run "$work/el-kan_chebyshev" --format hf-electra \
  -o "$work/x.safetensors"
expect_error "a fit run as kanformer" "is for translation runs" export torch --run "$work/fit" --format kanformer -o "$work/x.safetensors"
"$knot" fit configs/fit-exp-sin.json run_dir="$work/fit-cheb" model.projection.kind=kan_chebyshev 'model.projection.options={}' train.steps=2 \
  data.generate.n_train=50 data.generate.n_test=20 > /dev/null 2>&1
expect_error "a Chebyshev fit as efficient-kan" "B-spline layers only" export torch --run "$work/fit-cheb" --format efficient-kan -o "$work/x.safetensors"
"$knot" train configs/translate-tiny.json --run "$work/tr-untied" train.steps=2 train.val_every=2 train.checkpoint_every=2 \
  train.progress=false > /dev/null 2>&1
expect_error "an untied MLP output layer" "pass --untied-output" export torch --run "$work/tr-untied" --format kanformer -o "$work/x.safetensors"
"$knot" train configs/translate-tiny.json --run "$work/tr-preln" model.pre_layer_norm=true train.steps=2 train.val_every=2 \
  train.checkpoint_every=2 train.progress=false > /dev/null 2>&1
expect_error "pre-LN" "post-LN" export torch --run "$work/tr-preln" --format kanformer --untied-output -o "$work/x.safetensors"
[ ! -e "$work/x.safetensors" ] || fail "a refused export wrote a file"
# A tied model's two copies of the output weight must agree: a file where they differ is refused.
"$py" - "$work/kf-mlp.safetensors" "$work/kf-mlp-untied.safetensors" <<'PY'
import json, struct, sys
b = bytearray(open(sys.argv[1], "rb").read()); n = struct.unpack("<Q", b[:8])[0]; h = json.loads(b[8:8 + n])
a, _ = h["linear.weight"]["data_offsets"]
b[8 + n + a] ^= 0x40  # change one byte of linear.weight only
open(sys.argv[2], "wb").write(b)
PY
expect_error "a tied model whose output copies differ" "differs from 'tgt_emb.weight'" import --format kanformer \
  -i "$work/kf-mlp-untied.safetensors" --config "$work/tr-mlp/config.json" -o "$work/x.safetensors"
expect_error "a config that does not match" "does not fit" import --format kanformer -i "$work/kf-mlp.safetensors" \
  --config "$work/tr-kan_bspline/config.json" -o "$work/x.safetensors"
expect_error "a non-empty run directory" "is not empty" import --format efficient-kan -i "$work/ek.safetensors" \
  --config "$work/fit/config.json" --run "$work/fit"
echo "torch_cli: ok"
