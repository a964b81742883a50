#!/usr/bin/env bash
# Informational: ONNX Runtime (CPU, npm onnxruntime-node) latency of knot's ONNX exports beside
# knot's own forward on the same inputs, one thread each (KNOT_NUM_THREADS=1, ORT intraOpNumThreads 1),
# measured in the same run (docs/benchmarks.md, "ONNX Runtime vs knot").
#   kanformer-sized translation models (3+3 layers, d 512, 8 heads, FFN 768; MLP and B-spline KAN;
#   vocabulary 300 from the test fixture), seq2seq forward at batch 8 x 32 tokens
#   knot fit KANs [2, 64, 64, 1] of every basis, 4096 rows
# The models are trained for one step only: latency does not depend on the weights.
# Usage: bench/onnx_latency.sh [BUILD_DIR] (run from the source root after make build and install-deps).
set -euo pipefail
build=${1:-build}
knot=$build/knot
work=$build/onnx-latency
rm -rf "$work"
mkdir -p "$work"
export KNOT_NUM_THREADS=1 OMP_WAIT_POLICY=passive
echo "# $(date -u +%F) $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg)"
for kind in mlp kan_bspline; do
  "$knot" train configs/translate-tiny.json --run "$work/tr-$kind" model.projection.kind=$kind model.num_encoder_layers=3 \
    model.num_decoder_layers=3 model.embedding_dim=512 model.num_heads=8 model.ffn_hidden_dim=768 train.steps=1 \
    train.val_every=1 train.checkpoint_every=1 train.progress=false > "$work/tr-$kind.log" 2>&1
  "$knot" export onnx --run "$work/tr-$kind" -o "$work/tr-$kind.onnx" --reference "$work/tr-$kind.json" \
    --reference-shape 8,32 --reference-timing 10 > /dev/null
  echo "translation $kind: $(node tests/onnx/latency.js "$work/tr-$kind.onnx" "$work/tr-$kind.json" --runs 10 --threads 1)"
done
for basis in bspline chebyshev legendre fourier rbf rational relu; do
  "$knot" fit configs/fit-exp-sin.json run_dir="$work/fit-$basis" model.basis=$basis 'model.widths=[2,64,64,1]' \
    'model.options={"dtype": "f32"}' train.optimizer=adam train.steps=1 train.dtype=f32 data.generate.n_train=256 \
    data.generate.n_test=64 > "$work/fit-$basis.log" 2>&1
  "$knot" export onnx --run "$work/fit-$basis" -o "$work/fit-$basis.onnx" --reference "$work/fit-$basis.json" \
    --reference-shape 4096,1 --reference-timing 20 > /dev/null
  echo "fit $basis: $(node tests/onnx/latency.js "$work/fit-$basis.onnx" "$work/fit-$basis.json" --runs 20 --threads 1)"
done
