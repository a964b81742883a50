#!/usr/bin/env bash
# Bad inputs through the command line (issue 21): each must fail fast with an error that names the
# problem, exit non-zero and leave nothing half-written. Usage: inputs_cli.sh KNOT WORK_DIR (run from
# the source root).
set -uo pipefail
knot=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*" >&2; exit 1; }

# expect_error NAME PATTERN MAX_SECONDS -- COMMAND...: COMMAND exits non-zero within MAX_SECONDS and
# its stderr matches PATTERN (grep -E).
expect_error() {
  local name=$1 pattern=$2 max=$3
  shift 4
  local t0=$SECONDS
  if timeout 120 "$@" > "$work/$name.out" 2> "$work/$name.err"; then fail "$name: exit 0"; fi
  grep -Eq -- "$pattern" "$work/$name.err" || { cat "$work/$name.err" >&2; fail "$name: stderr lacks '$pattern'"; }
  (( SECONDS - t0 <= max )) || fail "$name: took $(( SECONDS - t0 )) s (at most $max)"
  echo "ok: $name: $(head -c 400 "$work/$name.err")"
}

# A fit run to predict with.
"$knot" fit configs/fit-exp-sin.json run_dir="$work/fit" train.steps=2 > "$work/fit.log" 2>&1 || fail "knot fit"

# knot predict -o DIR: a clear error, no DIR.tmp left behind.
mkdir -p "$work/outdir"
expect_error predict_dir "cannot write '$work/outdir': it is a directory" 30 -- \
  "$knot" predict --run "$work/fit" --input "$work/fit/test.csv" -o "$work/outdir"
[[ -e "$work/outdir.tmp" ]] && fail "predict -o DIR left $work/outdir.tmp"

# A CSV header with a column twice: an error in predict and in fit.
printf 'x1,x1,y\n0.1,0.2,1\n0.3,0.4,2\n0.5,0.6,3\n0.7,0.8,4\n0.9,0.1,5\n' > "$work/dup.csv"
expect_error predict_dup "column 'x1' appears twice in the header" 30 -- \
  "$knot" predict --run "$work/fit" --input "$work/dup.csv"
cat > "$work/fit-dup.json" <<JSON
{"task": "fit", "run_dir": "$work/fit-dup", "data": {"train": "$work/dup.csv"},
 "model": {"widths": [2, 3, 1]}, "train": {"steps": 2}}
JSON
expect_error fit_dup "column 'x1' appears twice in the header" 30 -- "$knot" fit "$work/fit-dup.json"

# Absurd sizes: the memory check refuses them within seconds, printing the estimate.
expect_error train_layers "memory check: training this encoder_decoder model needs an estimated .* is available .*train.memory_check=false to proceed" 60 -- \
  "$knot" train configs/translate-tiny.json --run "$work/tr" model.num_encoder_layers=1000000 train.progress=false
expect_error fit_grid "memory check: training this kan model needs an estimated .*L-BFGS" 30 -- \
  "$knot" fit configs/fit-exp-sin.json run_dir="$work/fit-grid" model.projection.options.grid_size=1e9

# Size override errors name the key and value, not the whole config.
expect_error size_negative "key 'embedding_dim' must be positive, got -5" 30 -- \
  "$knot" params configs/kanformer-mlp.json embedding_dim=-5
[[ $(wc -c < "$work/size_negative.err") -lt 200 ]] || fail "size error is $(wc -c < "$work/size_negative.err") bytes long"
expect_error size_string "key 'embedding_dim' has type integer but the new value has type string" 30 -- \
  "$knot" params configs/kanformer-mlp.json embedding_dim=abc

# knot params: the real count, the estimate; an absurd config is estimated, not built.
"$knot" params configs/kanformer-mlp.json > "$work/params.out" 2>&1 || fail "knot params kanformer-mlp"
grep -q "total .* 21,858,816" "$work/params.out" || fail "params: no total 21,858,816"
grep -q "^memory estimate for training: .* (parameters 83.4 MiB, gradients + Adam 250.2 MiB, buffers 8.0 MiB, activations ~.* at batch 32 × 32 tokens)" "$work/params.out" \
  || { cat "$work/params.out"; fail "params: no memory estimate"; }
grep -q "^available: " "$work/params.out" || fail "params: no available memory"
t0=$SECONDS
timeout 60 "$knot" params configs/translate-tiny.json model.embedding_dim=300000 > "$work/params-big.out" 2>&1 || fail "knot params (absurd)"
grep -q "^not built: the parameters alone need" "$work/params-big.out" || { cat "$work/params-big.out"; fail "params: built an absurd model"; }
grep -q "training would stop at the memory check" "$work/params-big.out" || fail "params: no memory-check note"
(( SECONDS - t0 <= 30 )) || fail "params (absurd) took $(( SECONDS - t0 )) s"
"$knot" params configs/fit-exp-sin.json > "$work/params-fit.out" 2>&1 || fail "knot params fit-exp-sin"
grep -Eq "^total +[0-9]+" "$work/params-fit.out" || { cat "$work/params-fit.out"; fail "params fit: no total"; }
echo "all input checks passed"
