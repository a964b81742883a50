# Front door for knot. `make run` and `make test` are the two set-up commands from README.md:
# each installs missing Debian packages, configures CMake and builds before it runs.
BUILD_DIR ?= build
BUILD_TYPE ?= Release
CMAKE_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all deps configure build run test test-cuda bench clean

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

# The main job: the tiny demo until the trainer lands (see README.md).
run: build
	@$(BUILD_DIR)/knot demo

test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS) --timeout 600

test-cuda: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L cuda

bench: build
	@$(BUILD_DIR)/knot_bench --benchmark_counters_tabular=true

clean:
	@rm -rf $(BUILD_DIR)
