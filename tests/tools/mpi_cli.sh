#!/usr/bin/env bash
# Data-parallel training over MPI (issue 14, docs/distributed.md), end to end through mpirun:
#  1. translation, 2 ranks vs 1 process on the same global batch (dropout on): per-step loss and final
#     weights within 1e-5 relative; the ranks' parameters are compared by hash after every step
#     (train.dp_check_every=1); the progress line and metrics.jsonl show the world size;
#  2. the same with ZeRO-1 (train.zero=1), whose checkpoint holds the full optimizer state (compared
#     with the one-process run's);
#  3. a 2-rank run repeated is bit-identical to itself (model.safetensors and metrics);
#  4. resume 1 -> 2 ranks, 2 -> 1 and ZeRO-1 2 -> 1 continue the one-process trajectory;
#  5. ELECTRA pretraining, sentiment fine-tuning and a language model with 2 ranks match 1 process
#     (a mixture-of-experts language model runs); so do KAN projections
#     with the activation penalty, and KAN grid updates (bit-identical grids);
#  6. bad input, each a clear error with a non-zero exit: a batch that does not split over the ranks
#     (and the run directory is not created), ranks started with different configs, a command that
#     runs as one process, optimizer_in_backward with 2 ranks, train.zero=2;
#  7. a rank killed mid-run ends the job with a non-zero exit, and the last checkpoint resumes.
# Under the sanitizer stage of `make test` (ASAN_OPTIONS set) sections 1, 2, 6 and 7 run.
# Usage: mpi_cli.sh KNOT WORK_DIR (run from the source root; needs mpirun and Debian's python3-numpy).
set -uo pipefail
knot=$1
work=$2
rm -rf "$work"
mkdir -p "$work"
source "$(dirname "$0")/common.sh"
py=/usr/bin/python3
command -v mpirun > /dev/null || fail "mpirun is missing (scripts/install-deps.sh installs openmpi-bin)"
$py -c "import numpy" 2> /dev/null || fail "Debian's python3-numpy is missing (scripts/install-deps.sh installs it)"
export KNOT_NUM_THREADS=1 OMP_WAIT_POLICY=passive
# OpenMPI refuses root without these; --oversubscribe lets 2 ranks start on a machine with fewer slots.
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# Under the sanitizer stage of `make test` (ASAN_OPTIONS set), processes that mpirun starts keep every
# AddressSanitizer check but leak detection: OpenMPI's plugins keep allocations until exit and are
# unloaded (dlclose) before LeakSanitizer reports, so their frames cannot be suppressed by name. The
# one-process runs of this script are leak-checked as usual.
mpi_asan=${ASAN_OPTIONS:+$ASAN_OPTIONS:detect_leaks=0}
mpi() {
  local n=$1
  shift
  ASAN_OPTIONS=${mpi_asan:-${ASAN_OPTIONS:-}} mpirun --oversubscribe -np "$n" -x KNOT_NUM_THREADS -x OMP_WAIT_POLICY "$@"
}
cmp_py() { $py tests/dist/compare.py "$@" || fail "compare.py $*"; }
ck() { echo "$1/checkpoints/step-$(printf %06d "$2")"; }

tr=(configs/translate-tiny.json train.steps=30 train.log_every=1 train.val_every=0 train.checkpoint_every=10
    train.keep_checkpoints=0 train.progress=true)

# 1. Translation: 1 process vs 2 ranks.
"$knot" train "${tr[@]}" --run "$work/one" > "$work/one.log" 2>&1 || { cat "$work/one.log"; fail "1-process run failed"; }
mpi 2 "$knot" train "${tr[@]}" train.dp_check_every=1 --run "$work/two" > "$work/two.log" 2>&1 ||
  { cat "$work/two.log"; fail "2-rank run failed"; }
grep -q "data parallel over 2 ranks" "$work/two.log" || fail "the 2-rank run does not say it is data parallel"
grep -q "translation \[2 ranks\] step 30/30" "$work/two.log" || fail "the progress line does not show the ranks"
[ "$(grep -c 'translation \[2 ranks\] step 30/30' "$work/two.log")" = 1 ] || fail "more than one rank printed progress"
grep -q '"world_size":2' "$work/two/metrics.jsonl" || fail "metrics.jsonl does not record the world size"
cmp_py losses "$work/one/metrics.jsonl" "$work/two/metrics.jsonl" 1e-5
cmp_py weights "$(ck "$work/one" 30)/model.safetensors" "$(ck "$work/two" 30)/model.safetensors" 1e-5

# 2. ZeRO-1: the same trajectory, and the checkpoint's optimizer state is the full one.
mpi 2 "$knot" train "${tr[@]}" train.zero=1 train.dp_check_every=1 --run "$work/zero" > "$work/zero.log" 2>&1 ||
  { cat "$work/zero.log"; fail "2-rank ZeRO-1 run failed"; }
grep -q "ZeRO-1" "$work/zero.log" || fail "the ZeRO-1 run does not say so"
cmp_py losses "$work/one/metrics.jsonl" "$work/zero/metrics.jsonl" 1e-5
cmp_py weights "$(ck "$work/one" 30)/model.safetensors" "$(ck "$work/zero" 30)/model.safetensors" 1e-5
cmp_py weights "$(ck "$work/one" 30)/optimizer.safetensors" "$(ck "$work/zero" 30)/optimizer.safetensors" 1e-4

# Sections 3 and 4 (determinism and resume across rank counts) run in the main stage only: under the
# sanitizer stage of `make test` (ASAN_OPTIONS set) they would add minutes and no new code path.
if [ -z "${ASAN_OPTIONS:-}" ]; then
# 3. A 2-rank run repeated is bit-identical to itself.
mpi 2 "$knot" train "${tr[@]}" --run "$work/two-again" > "$work/two-again.log" 2>&1 || fail "repeated 2-rank run failed"
cmp "$(ck "$work/two" 30)/model.safetensors" "$(ck "$work/two-again" 30)/model.safetensors" ||
  fail "a repeated 2-rank run is not bit-identical"
cmp "$(ck "$work/two" 30)/optimizer.safetensors" "$(ck "$work/two-again" 30)/optimizer.safetensors" ||
  fail "a repeated 2-rank run's optimizer state is not bit-identical"

# 4. Resume across rank counts: stop at 20 (train.steps=20), continue to 30 with the other count. A
#    constant learning rate, so that the schedule does not depend on train.steps.
const=("${tr[@]}" train.schedule.kind=constant train.schedule.warmup_steps=0)
"$knot" train "${const[@]}" --run "$work/c-one" > "$work/c-one.log" 2>&1 || fail "1-process constant-lr run failed"
"$knot" train "${const[@]}" train.steps=20 --run "$work/r12" > "$work/r12.log" 2>&1 || fail "1-process half run failed"
mpi 2 "$knot" train --resume "$work/r12" train.steps=30 > "$work/r12b.log" 2>&1 || { cat "$work/r12b.log"; fail "resume 1 -> 2 failed"; }
grep -q "resumed from" "$work/r12b.log" || fail "resume 1 -> 2 did not say it resumed"
cmp_py losses "$work/c-one/metrics.jsonl" "$work/r12/metrics.jsonl" 1e-5
cmp_py weights "$(ck "$work/c-one" 30)/model.safetensors" "$(ck "$work/r12" 30)/model.safetensors" 1e-5
for z in 0 1; do
  mpi 2 "$knot" train "${const[@]}" train.steps=20 train.zero=$z --run "$work/r21-$z" > "$work/r21-$z.log" 2>&1 ||
    fail "2-rank half run (zero=$z) failed"
  "$knot" train --resume "$work/r21-$z" train.steps=30 train.zero=0 > "$work/r21b-$z.log" 2>&1 ||
    { cat "$work/r21b-$z.log"; fail "resume 2 -> 1 (zero=$z) failed"; }
  cmp_py losses "$work/c-one/metrics.jsonl" "$work/r21-$z/metrics.jsonl" 1e-5
  cmp_py weights "$(ck "$work/c-one" 30)/model.safetensors" "$(ck "$work/r21-$z" 30)/model.safetensors" 1e-5
done
# ZeRO-1 resumed with ZeRO-1 on 2 ranks: the gathered state is cut again.
mpi 2 "$knot" train "${const[@]}" train.steps=20 train.zero=1 --run "$work/rzz" > "$work/rzz.log" 2>&1 || fail "ZeRO-1 half run failed"
mpi 2 "$knot" train --resume "$work/rzz" train.steps=30 > "$work/rzzb.log" 2>&1 || { cat "$work/rzzb.log"; fail "ZeRO-1 resume failed"; }
cmp_py weights "$(ck "$work/c-one" 30)/model.safetensors" "$(ck "$work/rzz" 30)/model.safetensors" 1e-5
fi

# Sections 5 and 5b (the tasks' row shares: ELECTRA, fine-tuning, lm, KAN, on the same dist/ code as
# section 1) run in the main stage only, too.
if [ -z "${ASAN_OPTIONS:-}" ]; then
# 5. ELECTRA pretraining (the generator's samples feed the discriminator) and fine-tuning.
el=(configs/pretrain-electra-tiny.json 'data.train=["tests/fixtures/train/electra-text.txt"]'
    tokenizer.path=tests/fixtures/train/electra-vocab.txt train.steps=12 train.log_every=1 train.val_every=0
    train.checkpoint_every=12 train.progress=false data.max_length=32 model.max_position_embeddings=32)
"$knot" train "${el[@]}" --run "$work/el-one" > "$work/el-one.log" 2>&1 || { cat "$work/el-one.log"; fail "electra 1 failed"; }
mpi 2 "$knot" train "${el[@]}" train.dp_check_every=1 --run "$work/el-two" > "$work/el-two.log" 2>&1 ||
  { cat "$work/el-two.log"; fail "electra 2 ranks failed"; }
cmp_py losses "$work/el-one/metrics.jsonl" "$work/el-two/metrics.jsonl" 1e-5
cmp_py weights "$(ck "$work/el-one" 12)/model.safetensors" "$(ck "$work/el-two" 12)/model.safetensors" 1e-5
ft=(--task sentiment data.train=tests/fixtures/train/sentiment-tiny-train.jsonl
    data.val=tests/fixtures/train/sentiment-tiny-val.jsonl data.test=tests/fixtures/train/sentiment-tiny-test.jsonl
    data.max_length=32 data.batch_size=8 train.steps=6 train.log_every=1 train.progress=false)
"$knot" finetune --run "$work/el-one" "${ft[@]}" --out "$work/ft-one" > "$work/ft-one.log" 2>&1 ||
  { cat "$work/ft-one.log"; fail "finetune 1 failed"; }
mpi 2 "$knot" finetune --run "$work/el-one" "${ft[@]}" --out "$work/ft-two" > "$work/ft-two.log" 2>&1 ||
  { cat "$work/ft-two.log"; fail "finetune 2 ranks failed"; }
cmp_py losses "$work/ft-one/metrics.jsonl" "$work/ft-two/metrics.jsonl" 1e-5
[ -f "$work/ft-two/result.json" ] || fail "the 2-rank finetune wrote no result.json"
[ "$(grep -c '^test accuracy' "$work/ft-two.log")" = 1 ] || fail "the 2-rank finetune did not report once"

# A decoder-only language model, and one with a mixture of experts (whose balance loss is each rank's
# own rows', so it runs but is not compared; docs/distributed.md).
lm=(configs/lm-tiny.json train.steps=10 train.log_every=1 train.val_every=0 train.checkpoint_every=10 train.progress=false)
"$knot" train "${lm[@]}" --run "$work/lm-one" > "$work/lm-one.log" 2>&1 || { cat "$work/lm-one.log"; fail "lm 1 failed"; }
mpi 2 "$knot" train "${lm[@]}" --run "$work/lm-two" > "$work/lm-two.log" 2>&1 || { cat "$work/lm-two.log"; fail "lm 2 ranks failed"; }
cmp_py losses "$work/lm-one/metrics.jsonl" "$work/lm-two/metrics.jsonl" 1e-5
cmp_py weights "$(ck "$work/lm-one" 10)/model.safetensors" "$(ck "$work/lm-two" 10)/model.safetensors" 1e-5
mpi 2 "$knot" train "${lm[@]}" model.moe.num_experts=4 model.moe.top_k=1 --run "$work/lm-moe" > "$work/lm-moe.log" 2>&1 ||
  { cat "$work/lm-moe.log"; fail "lm with experts on 2 ranks failed"; }

# 5b. KAN (B-spline) projections with the activation penalty, which is added once (on rank 0). And
#     grid updates: each rank gathers the layer inputs of the whole batch, so with lr 0 (the weights
#     stay, only the grids move, three times) the 2-rank model is bit-identical to the one-process one.
#     (With lr > 0 the refit after a grid update amplifies the ~1e-7 rounding differences of the
#     gradient sums; docs/distributed.md.)
kan=(configs/translate-tiny.json model.projection.kind=kan_bspline train.steps=12 train.log_every=1 train.val_every=0
     train.checkpoint_every=12 train.progress=false)
"$knot" train "${kan[@]}" train.kan_regularization=0.01 --run "$work/kan-one" > "$work/kan-one.log" 2>&1 || fail "KAN 1 failed"
mpi 2 "$knot" train "${kan[@]}" train.kan_regularization=0.01 --run "$work/kan-two" > "$work/kan-two.log" 2>&1 ||
  { cat "$work/kan-two.log"; fail "KAN 2 ranks failed"; }
cmp_py losses "$work/kan-one/metrics.jsonl" "$work/kan-two/metrics.jsonl" 1e-5
cmp_py weights "$(ck "$work/kan-one" 12)/model.safetensors" "$(ck "$work/kan-two" 12)/model.safetensors" 1e-5
grid=("${kan[@]}" train.lr=0 train.schedule.kind=constant train.kan_grid_update_every=4)
"$knot" train "${grid[@]}" --run "$work/grid-one" > "$work/grid-one.log" 2>&1 || fail "grid 1 failed"
mpi 2 "$knot" train "${grid[@]}" --run "$work/grid-two" > "$work/grid-two.log" 2>&1 || { cat "$work/grid-two.log"; fail "grid 2 ranks failed"; }
[ "$(grep -c grid_update "$work/grid-two/metrics.jsonl")" = 3 ] || fail "the 2-rank run did not update its grids 3 times"
cmp_py weights "$(ck "$work/grid-one" 12)/model.safetensors" "$(ck "$work/grid-two" 12)/model.safetensors" 0
# A run whose grid was extended in one process (train.kan_grid_extend) resumes on 2 ranks: the larger
# weights load, and the extension behind it does not count against the rank count.
"$knot" train "${kan[@]}" 'train.kan_grid_extend=[{"step": 3, "grid_size": 8}]' --run "$work/ext" > "$work/ext.log" 2>&1 ||
  { cat "$work/ext.log"; fail "grid extension in one process failed"; }
mpi 2 "$knot" train --resume "$work/ext" train.steps=16 > "$work/ext-two.log" 2>&1 ||
  { cat "$work/ext-two.log"; fail "the extended run did not resume on 2 ranks"; }
grep -q "resumed from" "$work/ext-two.log" || fail "the extended run's 2-rank resume did not say it resumed"
[ -d "$(ck "$work/ext" 16)" ] || fail "the extended run's 2-rank resume wrote no step-16 checkpoint"
fi

# 6. Bad input.
mpi_error() {  # WHAT PATTERN ARGS...: the mpirun job must fail and print PATTERN
  local what=$1 pattern=$2
  shift 2
  if mpi 2 "$@" > "$work/err.log" 2>&1; then fail "$what: the job succeeded"; fi
  grep -q -- "$pattern" "$work/err.log" || { cat "$work/err.log"; fail "$what: the error does not say '$pattern'"; }
}
mpi_error "uneven batch" "does not split over 2 ranks" "$knot" train "${tr[@]}" data.batch_size=15 --run "$work/uneven"
[ ! -e "$work/uneven" ] || fail "a refused data-parallel run created its run directory"
if ASAN_OPTIONS=${mpi_asan:-${ASAN_OPTIONS:-}} mpirun --oversubscribe -np 1 "$knot" train "${tr[@]}" seed=1 --run "$work/mixed" : \
     -np 1 "$knot" train "${tr[@]}" seed=2 --run "$work/mixed" > "$work/err.log" 2>&1; then
  fail "ranks with different configs ran"
fi
grep -q "rank 1 was started with another config" "$work/err.log" || { cat "$work/err.log"; fail "no different-config error"; }
mpi_error "one-process command" "runs as one process" "$knot" params configs/translate-tiny.json
mpi_error "optimizer_in_backward" "optimizer_in_backward cannot be used with 2 ranks" "$knot" train "${tr[@]}" \
  train.optimizer_in_backward=true train.clip_grad_norm=0 --run "$work/oib"
mpi_error "zero=2" "key 'zero' must be 0 or 1" "$knot" train "${tr[@]}" train.zero=2 --run "$work/z2"
mpi_error "activation penalty" "kan_reg_metric 'activations' cannot be used with 2 ranks" "$knot" train "${tr[@]}" \
  model.projection.kind=kan_bspline train.kan_regularization=0.01 train.kan_reg_metric=activations --run "$work/actreg"
mpi_error "grid extension" "kan_grid_extend cannot be used with 2 ranks" "$knot" train "${tr[@]}" \
  model.projection.kind=kan_bspline 'train.kan_grid_extend=[{"step": 2, "grid_size": 8}]' --run "$work/extend"

# 7. A rank killed mid-run: the job ends non-zero; the last checkpoint loads and the run resumes.
long=(configs/translate-tiny.json train.steps=100000 train.checkpoint_every=5 train.val_every=0 train.log_every=50
      train.progress=false)
mpi 2 "$knot" train "${long[@]}" --run "$work/killed" > "$work/killed.log" 2>&1 &
job=$!
for _ in $(seq 1 600); do [ -f "$work/killed/checkpoints/latest" ] && break; sleep 0.1; done
[ -f "$work/killed/checkpoints/latest" ] || { kill $job; fail "the 2-rank run wrote no checkpoint"; }
victim=$(pgrep -f -- "--run $work/killed" | grep -v "^$job$" | tail -1)
kill -9 "$victim"
if wait $job; then fail "the job went on after a rank was killed"; fi
grep -qi "signal 9\|killed\|exited on signal\|aborted" "$work/killed.log" || { cat "$work/killed.log"; fail "mpirun did not say a rank died"; }
step=$(sed 's/step-0*//' "$work/killed/checkpoints/latest")
"$knot" train --resume "$work/killed" train.steps=$((step + 2)) > "$work/killed-resume.log" 2>&1 ||
  { cat "$work/killed-resume.log"; fail "the last checkpoint of the killed job does not resume"; }
echo "mpi_cli: all data-parallel checks passed"
