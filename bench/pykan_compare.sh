#!/usr/bin/env bash
# knot against pykan's published tutorial timings (issue 16; docs/benchmarks.md, "KAN workflow against
# pykan's tutorials"). pykan cannot be installed here (no PyPI), so the pykan column is what its own
# notebooks print in their saved outputs (tqdm bars), read from KindXiaoming/pykan; each case below
# repeats one recorded cell's job with knot on this machine:
#   A  hellokan.ipynb at f983f96 (April 2024, pykan 0.0.1, float32, no device printed; the README
#      says the tutorials ran on CPUs): KAN [2, 5, 1], G = 5, k = 3 on exp(sin(pi x1) + x2^2), 1000
#      rows; L-BFGS 20 steps with lamb 0.01, lamb_entropy 10 (18 s); prune; 50 steps (7 s);
#      auto_symbolic, then 50 steps of the formula's constants (2 s).
#   B  tutorials/API_demo/API_10_device.ipynb at 7e8897c (its CPU run): KAN [4, 100, 100, 100, 1],
#      G = 3, 1000 rows of 4 inputs, Adam lr 1e-3, 50 steps, lamb 1e-3, lamb_entropy 5, no grid
#      updates (19 s on its CPU, 1 s on its GPU).
#   C  tutorials/Example/Example_3_deep_formula.ipynb at 7e8897c, second part (created without a
#      device, so on the CPU): KAN [4, 9, 1], G = 3, 3000 rows; L-BFGS 20 steps, lamb 0.002,
#      lamb_entropy 2 (8 s); then grids 3, 5, 10, 20, 50 with 50 steps each, grid updates until
#      step 20 (15 + 13 + 13 + 15 + 17 = 73 s).
# pykan's regularisation is its activation penalty, so knot runs train.reg_metric=activations.
# Usage: bench/pykan_compare.sh [KNOT]   (from the source root)
set -euo pipefail
knot=${1:-build/knot}
work=${WORK:-/tmp/knot-pykan-compare}
rm -rf "$work"
mkdir -p "$work"
echo "pykan_compare: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, load: $(cut -d' ' -f1-3 /proc/loadavg)"

t() {  # t LABEL CMD...: runs CMD quietly, prints LABEL and the wall seconds; the log goes to $work/LABEL.log
  local label=$1
  shift
  local t0 t1
  t0=$(date +%s.%N)
  "$@" > "$work/$label.log" 2>&1 || { echo "pykan_compare: $label failed:" >&2; tail -5 "$work/$label.log" >&2; exit 1; }
  t1=$(date +%s.%N)
  printf '%s %.2f\n' "$label" "$(echo "$t1 - $t0" | bc -l)"
}

# Four-input tables as pykan's create_dataset makes them (U[-1, 1]^4), for B and C.
/usr/bin/python3 - "$work" <<'EOF'
import math, random, sys
def f(x):  # pykan's deep-formula example
    return math.exp((math.sin(math.pi * (x[0]**2 + x[1]**2)) + math.sin(math.pi * (x[2]**2 + x[3]**2))) / 2)
for name, n, seed in [("train1000", 1000, 1), ("train3000", 3000, 2), ("test", 1000, 3)]:
    r = random.Random(seed)
    with open(f"{sys.argv[1]}/{name}.csv", "w") as fh:
        fh.write("x1,x2,x3,x4,y\n")
        for _ in range(n):
            x = [r.uniform(-1, 1) for _ in range(4)]
            fh.write(",".join(repr(v) for v in x + [f(x)]) + "\n")
EOF

base=configs/fit-exp-sin.json
pen=(train.reg_metric=activations train.log_every=1000)

echo "A: hellokan (April 2024)"
t A.fit "$knot" fit "$base" model.options.grid_size=5 train.steps=20 train.lamb=0.01 train.lamb_entropy=10 "${pen[@]}" \
  train.update_grid_every=5 train.stop_grid_update_step=50 train.dtype=f32 run_dir="$work/a-sparse"
t A.prune "$knot" prune --run "$work/a-sparse" --threshold 0.01 -o "$work/a-pruned"
t A.refit "$knot" fit "$work/a-pruned/config.json" train.init_from="$work/a-pruned" train.steps=50 train.lamb=0 \
  train.log_every=1000 run_dir="$work/a-refit"
t A.symbolic "$knot" symbolic --run "$work/a-refit" --lib x,x^2,exp,sin --tune-steps 50
grep -h "fit: train RMSE\|pruned\|symbolic: y\|symbolic: train" "$work"/A.*.log | sed 's/^/  /'

echo "B: API_10 (CPU run)"
data4="data={\"train\":\"$work/train1000.csv\",\"test\":\"$work/test.csv\",\"target\":\"y\"}"
t B.fit "$knot" fit "$base" "$data4" 'model.widths=[4,100,100,100,1]' model.options.grid_size=3 train.optimizer=adam \
  train.lr=1e-3 train.steps=50 train.lamb=1e-3 train.lamb_entropy=5 "${pen[@]}" train.update_grid_every=0 train.dtype=f32 \
  run_dir="$work/b"
grep -h "fit: train RMSE" "$work/B.fit.log" | sed 's/^/  /'

echo "C: Example_3, [4, 9, 1] (CPU)"
data3="data={\"train\":\"$work/train3000.csv\",\"test\":\"$work/test.csv\",\"target\":\"y\"}"
t C.fit "$knot" fit "$base" "$data3" 'model.widths=[4,9,1]' model.options.grid_size=3 train.steps=20 train.lamb=0.002 \
  train.lamb_entropy=2 "${pen[@]}" train.update_grid_every=2 train.stop_grid_update_step=20 train.dtype=f32 \
  run_dir="$work/c-sparse"
t C.grids "$knot" fit "$work/c-sparse/config.json" train.init_from="$work/c-sparse" train.steps=50 train.lamb=0 \
  'train.grid_schedule=[3,5,10,20,50]' train.update_grid_every=2 train.stop_grid_update_step=20 train.log_every=1000 \
  run_dir="$work/c-grids"
grep -h "fit: train RMSE\|(grid size" "$work"/C.*.log | sed 's/^/  /'
