# Front door for knot. `make run` and `make test` are the two set-up commands from README.md:
# each installs missing Debian packages, configures CMake and builds before it runs.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

# The sanitizer build (docs/reliability.md): the default compiler with ASan + UBSan at -O1, CPU only,
# no benchmarks. The fuzz build: clang (libFuzzer), ASan + UBSan, only the fuzz targets.
SAN_BUILD_DIR ?= build-asan
SAN_FLAGS = -DKNOT_SANITIZE=address,undefined -DKNOT_CUDA=OFF -DKNOT_BUILD_BENCH=OFF
FUZZ_BUILD_DIR ?= build-fuzz
FUZZ_CXX ?= clang++
FUZZ_FLAGS = -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) -DKNOT_SANITIZE=address,undefined -DKNOT_FUZZ=ON -DKNOT_CUDA=OFF \
             -DKNOT_ONEDNN=OFF -DKNOT_BUILD_BENCH=OFF -DKNOT_BUILD_TESTS=OFF
SAN_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1 \
          UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 KNOT_NUM_THREADS=2 OMP_WAIT_POLICY=passive
FUZZ_SECONDS ?= 30
SAN_CTEST_ARGS ?=

.PHONY: all deps configure build run fit test test-main test-cuda test-sanitize fuzz bench clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The main job (README): prepare the EN->DE sentence pairs (Debian trans-de-en), train a small
# B-spline KAN kanformer on the CPU for a few minutes (live progress line), then print test loss,
# BLEU and sample translations. A second `make run` finds the finished run and only evaluates it
# again (resuming a run that is at its last step trains nothing); an interrupted run is resumed.
# `make run RUN=runs/other RUN_CONFIG=configs/translate-mlp-small.json` trains another one.
RUN ?= runs/translate-kan-small
RUN_CONFIG ?= configs/translate-kan-small.json
run: build
	@$(BUILD_DIR)/knot data ende
	@if [ -f $(RUN)/checkpoints/latest ]; then \
	  $(BUILD_DIR)/knot train --resume $(RUN); \
	else \
	  $(BUILD_DIR)/knot train $(RUN_CONFIG) --run $(RUN); \
	fi
	@$(BUILD_DIR)/knot eval --run $(RUN) --split test --samples 8

# The first KAN job: fit a KAN to exp(sin(pi*x1) + x2^2) from generated data, print the test RMSE,
# then predict the test split with the saved model.
FIT_RUN ?= runs/fit-exp-sin
fit: build
	@$(BUILD_DIR)/knot fit configs/fit-exp-sin.json run_dir=$(FIT_RUN)
	@$(BUILD_DIR)/knot predict --run $(FIT_RUN) --input $(FIT_RUN)/test.csv -o $(FIT_RUN)/predictions.csv
	@echo "first predictions ($(FIT_RUN)/predictions.csv; truth in $(FIT_RUN)/test.csv):"
	@head -n 6 $(FIT_RUN)/predictions.csv

# `make test` (CI's command): the test suite, then each fuzz target for FUZZ_SECONDS, then the CPU
# tests again under ASan + UBSan. The stages alone: make test-main / fuzz / test-sanitize.
test: test-main
	@$(MAKE) --no-print-directory fuzz
	@$(MAKE) --no-print-directory test-sanitize

test-main: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

# Any ASan/UBSan/LeakSanitizer report aborts its test, which then fails.
test-sanitize: deps
	@cmake -S . -B $(SAN_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(SAN_FLAGS) >/dev/null
	@cmake --build $(SAN_BUILD_DIR) -j $(JOBS)
	@cd $(SAN_BUILD_DIR) && $(SAN_ENV) ctest --output-on-failure -j $(JOBS) --timeout 1200 -LE cuda $(SAN_CTEST_ARGS)

# The fuzz targets build from the readers' own sources, not the whole library (minutes, not an hour).
fuzz: deps
	@cmake -S . -B $(FUZZ_BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release $(FUZZ_FLAGS) >/dev/null
	@cmake --build $(FUZZ_BUILD_DIR) -j $(JOBS) --target fuzz_targets
	@bash scripts/fuzz.sh $(FUZZ_BUILD_DIR) $(FUZZ_SECONDS) $(JOBS)

test-cuda: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L cuda

bench: build
	@$(BUILD_DIR)/knot_bench --benchmark_counters_tabular=true

clean:
	@rm -rf $(BUILD_DIR) $(SAN_BUILD_DIR) $(FUZZ_BUILD_DIR)
