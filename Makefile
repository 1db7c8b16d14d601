# Stipple: the two commands that matter are `make run` and `make test` (see README.md).
# Both install what a fresh Debian 12 machine is missing, then build.

SHELL := /bin/bash
export PATH := /opt/swift/usr/bin:$(PATH)

SWIFT ?= swift
PYTHON ?= python3
CC ?= gcc
BUILD := build
C_DIR := Firmware-protocol/c
C_SOURCES := $(C_DIR)/stipple_wire.c $(C_DIR)/stipple_messages.c
C_HOST_SOURCES := $(C_SOURCES) $(C_DIR)/stipple_format.c
C_TEST_FLAGS := -std=c99 -Wall -Wextra -Werror -pedantic -O1 -g -fno-omit-frame-pointer \
	-fsanitize=address,undefined -fno-sanitize-recover=all -I$(C_DIR)/include
# Debian packages the build, the later backends and the benchmarks (valgrind) need.
APT_PACKAGES := libudev-dev libgpiod-dev pkg-config python3 python3-pip gcc make curl util-linux sqlite3 valgrind
# The session report's PDF (weasyprint) and the end-to-end test that renders it to pages (pdftoppm).
APT_PACKAGES += weasyprint poppler-utils
# Python modules the end-to-end tests use (installed with pip when missing).
PY_MODULES := pytest jsonschema yaml

.PHONY: all deps build run test test-e2e test-swift test-c test-cli test-scenarios check-generated check-firmware-c bench bench-thresholds bench-check demo sim clean

all: build

## deps: install missing system packages (apt-get update first; needs root)
deps: $(BUILD)/.deps

$(BUILD)/.deps: Makefile
	@mkdir -p $(BUILD)
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "installing:$$missing"; \
		if [ "$$(id -u)" != 0 ]; then echo "need root to install:$$missing" >&2; exit 1; fi; \
		DEBIAN_FRONTEND=noninteractive apt-get update -q && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi
	@command -v $(SWIFT) >/dev/null || { echo "swift not found (expected in /opt/swift/usr/bin)" >&2; exit 1; }
	@for m in $(PY_MODULES); do $(PYTHON) -c "import $$m" 2>/dev/null || { \
		pkg=$$m; [ "$$m" = yaml ] && pkg=pyyaml; echo "installing python module $$pkg"; \
		$(PYTHON) -m pip install -q $$pkg || exit 1; }; done
	@touch $@

build: deps
	$(SWIFT) build

## run: build and start stippled in the foreground on the in-process simulated pen
## (as root: /run/stipple/api.sock and /var/lib/stipple; otherwise per-user paths)
run: build
	.build/debug/stippled --pen sim

## demo: the protocol demo of stipplectl (frames on the wire, decoded)
demo: build
	$(SWIFT) run stipplectl demo

## sim: serve a simulated pen on a pty (symlink /tmp/stipple-pen); type `help`-style commands on stdin
sim: build
	$(SWIFT) run stipple-sim serve --pty --link /tmp/stipple-pen

## test: everything — generated code and vectors up to date, C codec under sanitizers, Swift tests,
## the scenario library through the CLI, the allocation check and the four-hour simulator run
test: deps check-generated check-firmware-c check-scripts test-c test-swift test-cli test-scenarios test-e2e bench-check

## test-e2e: the real stippled and stipple-sim as processes over a real pty, through the API socket
test-e2e: deps
	$(SWIFT) build --product stippled
	$(SWIFT) build --product stipple-sim
	$(SWIFT) build --product stipplectl
	@mkdir -p $(BUILD)/e2e
	cd Tests/e2e && STIPPLE_ARTIFACTS=$(abspath $(BUILD))/e2e $(PYTHON) -m pytest -q -p no:cacheprovider .

check-generated: deps
	$(PYTHON) Firmware-protocol/tools/gen_code.py --check
	$(PYTHON) Firmware-protocol/tools/gen_vectors.py --check

# The firmware half of the C codec may use only stdint.h, stddef.h and string.h.
check-firmware-c:
	@bad=$$(grep -hE '^\s*#\s*include\s*<' $(C_SOURCES) $(C_DIR)/include/*.h | grep -vE '<(stdint|stddef|string)\.h>' || true); \
	if [ -n "$$bad" ]; then echo "firmware C codec includes a forbidden header: $$bad" >&2; exit 1; fi
	@if grep -qE '\b(malloc|calloc|realloc|free)\s*\(' $(C_SOURCES); then echo "firmware C codec must not allocate" >&2; exit 1; fi
	@if grep -q 'import Foundation' Sources/StippleWire/*.swift; then echo "StippleWire must not need Foundation" >&2; exit 1; fi
	@echo "firmware C codec and StippleWire use only the allowed headers and imports"

# Scripts that cannot run here (gpio-sim needs a kernel module CI containers lack) are at
# least parsed.
.PHONY: check-scripts
check-scripts:
	bash -n HardwareSim/gpio-sim.sh
	@echo "HardwareSim/gpio-sim.sh parses"

$(BUILD)/c/test_vectors: $(C_HOST_SOURCES) $(C_DIR)/test/test_vectors.c $(wildcard $(C_DIR)/include/*.h)
	@mkdir -p $(BUILD)/c
	$(CC) $(C_TEST_FLAGS) $(C_HOST_SOURCES) $(C_DIR)/test/test_vectors.c -o $@

test-c: deps $(BUILD)/c/test_vectors
	$(BUILD)/c/test_vectors Firmware-protocol/vectors/vectors.tsv

test-swift: deps
	$(SWIFT) build --build-tests
	$(SWIFT) test

# stipplectl against the shared vector set_setpoints (seq 6), and a bad value's error.
SETPOINTS_WIRE := 00 0b 05 06 20 03 b0 04 91 ea 94 db 00
test-cli: deps
	$(SWIFT) build --product stipplectl
	@out=$$(.build/debug/stipplectl encode set_setpoints depth_um=800 rate_dhz=1200 --seq 6); \
	  [ "$$out" = "$(SETPOINTS_WIRE)" ] || { echo "stipplectl encode gave '$$out'" >&2; exit 1; }
	@echo "$(SETPOINTS_WIRE)" | .build/debug/stipplectl decode --hex | grep -q "^@12 seq=6 set_setpoints depth_um=800 rate_dhz=1200$$"
	@if .build/debug/stipplectl encode set_setpoints depth_um=2800 rate_dhz=1200 2>$(BUILD)/cli.err; then exit 1; fi; \
	  grep -q "depth_um: 2800 is outside the allowed range 0...2000" $(BUILD)/cli.err
	@if echo "0b 5" | .build/debug/stipplectl decode --hex 2>$(BUILD)/cli.err; then exit 1; fi; grep -q "not hex bytes" $(BUILD)/cli.err
	@echo "stipplectl: 4 passed, 0 failed"

test-scenarios: deps
	$(SWIFT) build --product stipple-sim
	.build/debug/stipple-sim run
	.build/debug/stipple-sim conformance

# The benchmarks are a package of their own (Benchmarks/Package.swift) on package-benchmark,
# whose plugin builds them in release mode; Benchmarks/README.md explains figures and thresholds.
BENCHMARK := cd Benchmarks && $(SWIFT) package --allow-writing-to-package-directory benchmark
CODEC_INSTRUCTIONS := $(SWIFT) build -c release --package-path Benchmarks --product codec-instructions && \
	Benchmarks/.build/release/codec-instructions

## bench: every benchmark, its table, then a check against Benchmarks/Thresholds that fails on a
## regression (or on a change past the noise band either way); callgrind's instruction counts
bench: deps
	$(BENCHMARK) baseline update latest --no-progress
	$(BENCHMARK) baseline read latest --no-progress
	$(BENCHMARK) thresholds check latest --path Thresholds --no-progress
	$(CODEC_INSTRUCTIONS)
	$(SWIFT) build -c release --product sim-bench
	.build/release/sim-bench

## bench-thresholds: record the current figures as the thresholds (on a quiet machine; review the diff)
bench-thresholds: deps
	$(BENCHMARK) thresholds update --path Thresholds --no-progress
	$(CODEC_INSTRUCTIONS) --record

# In `make test`: decoding and encoding never allocate, the Swift decoder executes no more
# instructions per frame than the C one, and a four-hour session simulates without a fault.
# Only counts are checked here, never times: they repeat exactly on a busy machine.
bench-check: deps
	$(BENCHMARK) thresholds check --path Thresholds --target CodecBenchmarks --metric mallocCountTotal --no-progress
	$(CODEC_INSTRUCTIONS)
	$(SWIFT) build -c release --product sim-bench
	.build/release/sim-bench

clean:
	rm -rf $(BUILD) .build

## stipplectl-docs: shell completions (bash, zsh, fish) and a man page per command, generated from
## stipplectl's argument parser (swift-argument-parser's GenerateManual plugin) into build/stipplectl
.PHONY: stipplectl-docs install-stipplectl install
STIPPLECTL_DOCS := $(BUILD)/stipplectl
stipplectl-docs: deps
	$(SWIFT) build --product stipplectl
	@rm -rf $(STIPPLECTL_DOCS) && mkdir -p $(STIPPLECTL_DOCS)/man1 $(STIPPLECTL_DOCS)/completions
	$(SWIFT) package generate-manual --multi-page
	@for page in .build/plugins/GenerateManual/outputs/stipplectl/*.1; do \
		name=$$(basename $$page .1 | tr . -); cp $$page $(STIPPLECTL_DOCS)/man1/$$name.1; done
	for shell in bash zsh fish; do .build/debug/stipplectl --generate-completion-script $$shell > $(STIPPLECTL_DOCS)/completions/$$shell || exit 1; done

## install-stipplectl: stipplectl, its completions and man pages under $(DESTDIR)$(PREFIX)
## (`make install` includes it)
PREFIX ?= /usr/local
install: install-stipplectl
install-stipplectl: stipplectl-docs
	$(SWIFT) build -c release --product stipplectl
	install -D -m 0755 .build/release/stipplectl $(DESTDIR)$(PREFIX)/bin/stipplectl
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 $(STIPPLECTL_DOCS)/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -D -m 0644 $(STIPPLECTL_DOCS)/completions/bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/stipplectl
	install -D -m 0644 $(STIPPLECTL_DOCS)/completions/zsh $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_stipplectl
	install -D -m 0644 $(STIPPLECTL_DOCS)/completions/fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/stipplectl.fish
