#!/usr/bin/env bash
# Data-parallel scaling on one machine (issue 14, docs/distributed.md, docs/benchmarks.md): for the
# kanformer seed models (configs/translate-kanformer-{mlp,kan}.json on data/ende), side by side in
# one run:
#   1p x 2t   one process, 2 CPU threads
#   2r x 1t   mpirun -np 2, 1 thread per rank, buckets sent during backward (train.dp_overlap=true)
#   2r x 1t no overlap   the same with every bucket sent after backward (train.dp_overlap=false)
#   2r x 1t ZeRO-1       train.zero=1
# Reported per row: tokens/s (mean of the logged windows after the first), seconds per step, bytes
# each rank hands to collectives per step, seconds per step blocked waiting for gradients after
# backward, and ZeRO-1's parameter all-gather. The overlap is 1 - wait(overlap) / wait(no overlap):
# the share of the communication that backward hid.
# Usage: bench/dp_scaling.sh [STEPS] [KNOT]   (from the source root; needs `knot data ende` and mpirun)
set -euo pipefail
steps=${1:-40}
knot=${2:-build/knot}
work=${WORK:-/tmp/knot-dp-bench}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_WAIT_POLICY=passive
rm -rf "$work"
mkdir -p "$work"
[ -f data/ende/train.jsonl ] || { echo "dp_scaling: run \`$knot data ende\` first" >&2; exit 1; }
common=(train.steps=$steps train.log_every=10 train.val_every=0 train.checkpoint_every=0 train.progress=false
        translation.val_bleu_examples=0 data.max_val_examples=32)

summary() {  # RUN_DIR -> "tok/s s/step bytes/step wait/step": windows after the first
  /usr/bin/python3 - "$1" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1] + "/metrics.jsonl")]
rows = [r for r in rows if "tokens_per_s" in r][1:]
tps = sum(r["tokens_per_s"] for r in rows) / len(rows)
tokens = sum(r["tokens"] for r in rows)
steps = 10 * len(rows)
step_s = tokens / tps / steps
b = rows[-1].get("comm_bytes_per_step", 0.0)
wait = sum(r.get("comm_wait_s", 0.0) for r in rows) / steps
gather = sum(r.get("comm_gather_s", 0.0) for r in rows) / steps
print(f"{tps:.0f} {step_s:.3f} {b:.0f} {wait:.4f} {gather:.4f}")
EOF
}

echo "# dp_scaling: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg), $steps steps"
for kind in mlp kan; do
  cfg=configs/translate-kanformer-$kind.json
  # One tokenizer for every run: trained by a 1-step run, then loaded (tokenizer.file) by a copy of
  # the config (a tokenizer file excludes the training settings).
  KNOT_NUM_THREADS=2 "$knot" train "$cfg" "${common[@]}" train.steps=1 --run "$work/$kind-tok" > /dev/null 2>&1
  /usr/bin/python3 -c 'import json, sys
c = json.load(open(sys.argv[1]))
c["tokenizer"] = {"file": sys.argv[3]}
json.dump(c, open(sys.argv[2], "w"), indent=1)' "$cfg" "$work/$kind.json" "$work/$kind-tok/tokenizer.json"
  cfg=$work/$kind.json
  KNOT_NUM_THREADS=2 "$knot" train "$cfg" "${common[@]}" --run "$work/$kind-1p" > "$work/$kind-1p.log" 2>&1
  mpirun --oversubscribe -np 2 -x KNOT_NUM_THREADS=1 -x OMP_WAIT_POLICY "$knot" train "$cfg" "${common[@]}" \
    --run "$work/$kind-2r" > "$work/$kind-2r.log" 2>&1
  mpirun --oversubscribe -np 2 -x KNOT_NUM_THREADS=1 -x OMP_WAIT_POLICY "$knot" train "$cfg" "${common[@]}" \
    train.dp_overlap=false --run "$work/$kind-2r-no" > "$work/$kind-2r-no.log" 2>&1
  mpirun --oversubscribe -np 2 -x KNOT_NUM_THREADS=1 -x OMP_WAIT_POLICY "$knot" train "$cfg" "${common[@]}" \
    train.zero=1 --run "$work/$kind-2r-z1" > "$work/$kind-2r-z1.log" 2>&1
  read -r t1 s1 _ _ _ <<< "$(summary "$work/$kind-1p")"
  read -r t2 s2 b2 w2 _ <<< "$(summary "$work/$kind-2r")"
  read -r t3 s3 b3 w3 _ <<< "$(summary "$work/$kind-2r-no")"
  read -r t4 s4 b4 w4 g4 <<< "$(summary "$work/$kind-2r-z1")"
  echo "kanformer-$kind: 1p x 2t ${t1} tok/s (${s1} s/step)"
  echo "kanformer-$kind: 2r x 1t ${t2} tok/s (${s2} s/step), $(awk "BEGIN{printf \"%.2f\", $t2/$t1}")x of 1p x 2t; ${b2} bytes/step/rank; wait ${w2} s/step"
  hid=$(awk -v a="$w2" -v b="$w3" 'BEGIN { if (b > 0) printf "%.0f", 100 * (1 - a / b); else printf "0" }')
  echo "kanformer-$kind: 2r x 1t no overlap ${t3} tok/s (${s3} s/step); wait ${w3} s/step; overlap hid ${hid} % of it"
  echo "kanformer-$kind: 2r x 1t ZeRO-1 ${t4} tok/s (${s4} s/step), ${b4} bytes/step/rank; wait ${w4} s/step, parameter all-gather ${g4} s/step"
done
echo "# load after: $(cut -d' ' -f1-3 /proc/loadavg)"
