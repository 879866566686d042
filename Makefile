# Resonance — the two commands that matter on a fresh Debian 12 machine:
#   make run    installs missing packages, builds, starts the server on ./var
#   make test   installs missing packages, builds, runs every test (also under ASan+UBSan)
.PHONY: all deps build build-asan run test unit-test integration-test asan-test deploy-test bench clean format

BUILD      ?= build
BUILD_ASAN ?= build-asan
PYTHON     ?= /usr/bin/python3
JOBS       ?= $(shell nproc)
CMAKE_FLAGS = -G Ninja -DCMAKE_CXX_COMPILER_LAUNCHER=ccache

all: build

deps:
	@./scripts/deps.sh

build: deps
	@cmake -S . -B $(BUILD) $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	@cmake --build $(BUILD) -j $(JOBS)

build-asan: deps
	@cmake -S . -B $(BUILD_ASAN) $(CMAKE_FLAGS) -DCMAKE_BUILD_TYPE=Debug -DRESONANCE_SANITIZE=ON >/dev/null
	@cmake --build $(BUILD_ASAN) -j $(JOBS)

run: build
	@mkdir -p var
	@echo "Resonance: http://127.0.0.1:8091  data dir: ./var  log: ./var/resonance.log"
	@echo "  server + pool 'examples' (examples/resonance.toml); 'build/resonance status --config examples/resonance.toml' shows the tree; Ctrl-C stops it"
	@./$(BUILD)/resonance up --config examples/resonance.toml 2>&1 | tee -i -a var/resonance.log

unit-test: build
	@cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

asan-test: build-asan
	@cd $(BUILD_ASAN) && ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest --output-on-failure -j $(JOBS)
	@RESONANCE_BIN=$(CURDIR)/$(BUILD_ASAN)/resonance RESONANCE_SANITIZED=1 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration -m "not slow"

integration-test: build
	@RESONANCE_BIN=$(CURDIR)/$(BUILD)/resonance $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration

# promtool/amtool checks and rule unit tests of the shipped deploy/ configuration.
deploy-test: deps
	@scripts/check-deploy.sh

test: deploy-test unit-test integration-test asan-test

bench: build
	@bench/run.sh --no-build

format:
	@clang-format -i $$(git ls-files 'src/*.h' 'src/*.cc' 'bench/*.cc')

clean:
	rm -rf $(BUILD) $(BUILD_ASAN)
