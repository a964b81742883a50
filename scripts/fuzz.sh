#!/usr/bin/env bash
# Runs every libFuzzer target of a KNOT_FUZZ build for a fixed time each (docs/reliability.md).
#   scripts/fuzz.sh BUILD_DIR SECONDS [JOBS] [TARGET...]
# Seed corpora come from tests/fixtures and configs/ (configs also with overrides first); the corpus a run grows
# stays in BUILD_DIR/fuzz-corpus/<target> for the next run. A crash, leak, sanitizer report,
# timeout (>10 s on one input; FUZZ_TIMEOUT=N changes it: the limit is wall-clock time, so a run
# at nice 19 on a busy machine needs more) or out-of-memory (>2 GB) fails the run and leaves the input in
# BUILD_DIR/fuzz-artifacts/<target>-*; replay it with `BUILD_DIR/<target> FILE`. Inputs are at most
# FUZZ_MAX_LEN bytes (4096; longer seeds are cut), which keeps each run fast.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: scripts/fuzz.sh BUILD_DIR SECONDS [JOBS] [TARGET...]}
seconds=${2:?seconds per target}
jobs=${3:-2}
shift $(( $# < 3 ? $# : 3 ))
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(fuzz_safetensors fuzz_config fuzz_tokenizer_json fuzz_vocab fuzz_jsonl fuzz_csv fuzz_unicode)
fi
corpus=$build/fuzz-corpus
artifacts=$build/fuzz-artifacts
logs=$build/fuzz-logs
mkdir -p "$artifacts" "$logs"

seed() {  # seed TARGET FILE...: copies the files into the target's corpus (named by content)
  local t=$1; shift
  mkdir -p "$corpus/$t"
  for f in "$@"; do [ -f "$f" ] && cp "$f" "$corpus/$t/seed-$(sha1sum < "$f" | cut -c1-16)"; done
  return 0
}
seed fuzz_safetensors tests/fixtures/safetensors/*.safetensors
seed fuzz_config configs/*.json
for f in configs/translate-tiny.json configs/pretrain-electra-tiny.json; do  # with overrides
  tmp=$(mktemp)
  printf 'train.steps=3\nmodel.projection.kind=mlp\n+model.extra=[1,2]\ntrain.lr=abc\n---\n' > "$tmp"
  cat "$f" >> "$tmp"
  seed fuzz_config "$tmp"
  rm -f "$tmp"
done
seed fuzz_tokenizer_json tests/fixtures/tokenizers/*.json
seed fuzz_vocab tests/fixtures/tokenizers/*.txt tests/fixtures/train/*vocab*.txt tests/fixtures/data/bert_vocab_expected.txt
seed fuzz_jsonl tests/fixtures/train/*.jsonl tests/fixtures/plot/*/metrics.jsonl
seed fuzz_csv tests/fixtures/csv/*.csv
seed fuzz_unicode tests/fixtures/tokenizers/corpus.txt tests/fixtures/data/*.txt tests/fixtures/data/sotu/*.txt \
  tests/fixtures/train/electra-text.txt

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

run_one() {
  local t=$1 bin=$build/$1
  [ -x "$bin" ] || { echo "fuzz: $bin is missing (build with -DKNOT_FUZZ=ON)"; return 1; }
  if "$bin" -max_total_time="$seconds" -timeout="${FUZZ_TIMEOUT:-10}" -rss_limit_mb=2048 -max_len="${FUZZ_MAX_LEN:-4096}" -print_final_stats=1 \
       -artifact_prefix="$artifacts/$t-" "$corpus/$t" > "$logs/$t.log" 2>&1; then
    echo "fuzz: $t: $(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$') runs in ${seconds} s, corpus $(ls "$corpus/$t" | wc -l) files: ok"
  else
    echo "fuzz: $t FAILED; log $logs/$t.log:"
    grep -E -A40 '^==[0-9]+==ERROR|runtime error|FUZZ_CHECK|deadly signal|Test unit written' "$logs/$t.log" | head -80
    return 1
  fi
}
export -f run_one
export build seconds corpus artifacts logs FUZZ_TIMEOUT FUZZ_MAX_LEN
printf '%s\n' "${targets[@]}" | xargs -P "$jobs" -I{} bash -c 'run_one {}'
