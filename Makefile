# gonet: one entry point. Every target installs the Debian packages it needs first.
#   make run     build and run the demo (a sample daemon natively and under gonet, side by side)
#   make test    build and run every test suite (unit, TSan, ASan, conformance, regression)
#   make bench   benchmark harness (native vs gonet modes vs reference servers)
#   make soak    long soak under load and faults
JOBS ?= $(shell nproc)
BUILD ?= build
CMAKE_FLAGS ?=

.PHONY: all deps configure build run test bench soak fuzz install clean format

all: build

deps:
	@scripts/deps.sh test

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j $(JOBS) -- --no-print-directory

# The demo needs only its own packages, the library, the launcher, one daemon and the load client.
run:
	@scripts/deps.sh demo
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target gonet_preload gonet http_threads loadgen \
	  -- --no-print-directory
	@scripts/demo.sh $(BUILD)

test: build
	@scripts/test.sh $(BUILD)

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@scripts/bench/run.sh $(BUILD)

soak: build
	@scripts/soak.sh $(BUILD)

install: build
	@cmake --install $(BUILD) --prefix $${PREFIX:-/usr/local}

format:
	@clang-format -i $$(git ls-files '*.cc' '*.h')

clean:
	rm -rf build build-tsan build-asan

fuzz:
	@scripts/fuzz.sh long
