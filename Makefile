# gonet: one entry point. Every target installs the Debian packages it needs first.
#   make run     build and run the demo (a sample daemon natively and under gonet, side by side)
#   make test    build and run every test suite (unit, TSan, ASan, conformance, regression)
#   make bench   benchmark harness (native vs gonet modes vs reference servers)
#   make soak    long soak under load and faults
#   make deb     gonet_<version>_<arch>.deb in $(BUILD)/, checked by lintian
JOBS ?= $(shell nproc)
BUILD ?= build
CMAKE_FLAGS ?=

.PHONY: all deps configure build run deb test bench soak fuzz install clean format

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

# The package needs the launcher and the library (and the install rules' man pages etc.).
deb:
	@scripts/deps.sh deb
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null
	@cmake --build $(BUILD) -j $(JOBS) --target gonet_preload gonet -- --no-print-directory
	@deb=$$(scripts/deb.sh $(BUILD)) && echo "deb: $$deb" && \
	  { ! command -v lintian >/dev/null || lintian --tag-display-limit 0 "$$deb"; }

test: build
	@scripts/test.sh $(BUILD)

bench:
	@scripts/deps.sh bench
	@$(MAKE) --no-print-directory build
	@scripts/bench/run.sh $(BUILD)
	@echo "=== per-fiber TLS: what copying 256 bytes per switch costs (scripts/bench/tls_cost.sh)"
	@scripts/bench/tls_cost.sh $(BUILD) | tee bench/results/tls_cost.txt

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
