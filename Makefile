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
APT_PACKAGES := libudev-dev libgpiod-dev libsqlite3-dev pkg-config python3 python3-pip gcc make curl util-linux sqlite3 systemd man-db valgrind xxd jq
# The pen firmware core's size budget: a Cortex-M0+ cross compiler and its C library.
APT_PACKAGES += gcc-arm-none-eabi libnewlib-arm-none-eabi
# ... and QEMU's micro:bit (a Cortex-M0) to run it as a microcontroller.
APT_PACKAGES += qemu-system-arm
# The session report's PDF (weasyprint) and the end-to-end test that renders it to pages (pdftoppm).
APT_PACKAGES += weasyprint poppler-utils
# The clinic's records (issue 20): the end-to-end tests start a throw-away PostgreSQL 15 of their
# own (initdb, pg_ctl as user postgres, in a temporary directory, socket and loopback only).
APT_PACKAGES += postgresql
# The technician's console (issue 18) is tested in a real browser: Debian's chromium and its
# driver, driven by Selenium (no browser download).
APT_PACKAGES += chromium chromium-driver
# Python modules the end-to-end tests use (installed with pip when missing; Debian 12's own
# python3 is "externally managed", so pip is told to install beside it there).
PY_MODULES := pytest jsonschema yaml schemathesis selenium

.PHONY: all deps build run install deb test-package test test-e2e test-loaded fuzz fuzz-short test-firmware check-firmware-size test-firmware-host test-firmware-qemu firmware-host bench-firmware soak test-swift test-c test-cli test-scenarios check-generated check-firmware-c bench bench-daemon bench-estop bench-clinic bench-console bench-thresholds bench-check demo sim clean

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
		pkg=$$m; [ "$$m" = yaml ] && pkg=pyyaml; [ "$$m" = schemathesis ] && pkg=schemathesis==4.32.5; echo "installing python module $$pkg"; \
		$(PYTHON) -m pip install -q $$pkg || $(PYTHON) -m pip install -q --break-system-packages $$pkg || exit 1; }; done
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
## the scenario library through the CLI, the end-to-end suite with its attacks (Schemathesis, the
## kill loop), the fuzzers, the package, the allocation check and the four-hour simulator run
test: deps check-generated check-firmware-c check-scripts test-c test-firmware check-firmware-size test-swift test-cli test-scenarios test-firmware-host test-firmware-qemu test-e2e fuzz-short test-package bench-check

## test-e2e: the real stippled and stipple-sim as processes over a real pty, through the API socket
test-e2e: deps
	$(SWIFT) build --product stippled
	$(SWIFT) build --product stipple-sim
	$(SWIFT) build --product stipplectl
	@mkdir -p $(BUILD)/e2e
	cd Tests/e2e && STIPPLE_ARTIFACTS=$(abspath $(BUILD))/e2e $(PYTHON) -m pytest -q -p no:cacheprovider .

## test-loaded: the end-to-end suite again with two processes burning both cores: no test may depend
## on how fast the machine runs (CI runs it after `make test`)
test-loaded: deps
	$(SWIFT) build --product stippled
	$(SWIFT) build --product stipple-sim
	$(SWIFT) build --product stipplectl
	@mkdir -p $(BUILD)/e2e-loaded
	@burners=""; for i in 1 2; do sh -c 'while :; do :; done' & burners="$$burners $$!"; done; \
	  trap 'kill $$burners 2>/dev/null' EXIT; \
	  echo "burning both cores (pids$$burners)"; \
	  cd Tests/e2e && STIPPLE_ARTIFACTS=$(abspath $(BUILD))/e2e-loaded $(PYTHON) -m pytest -q -p no:cacheprovider .

## fuzz: libFuzzer on the Swift frame decoder and on the API's strict JSON body reader, each built
## from its module's sources with -sanitize=fuzzer,address; FUZZ_SECONDS each (a short run in
## `make test`, long in `make soak`). Seeds: the protocol's test vectors, Tests/Fuzz/seeds.
FUZZ_SECONDS ?= 300
FUZZ := $(BUILD)/fuzz
FUZZ_FLAGS := -sanitize=fuzzer,address -parse-as-library
$(FUZZ)/frame-decoder: Sources/StippleWire/*.swift Tests/Fuzz/FrameDecoderFuzz.swift
	@mkdir -p $(FUZZ) && rm -f $@
	$(SWIFT)c $(FUZZ_FLAGS) -module-name FrameDecoderFuzz $^ -o $@ 2>&1 | grep -v "ld.gold: warning: Cannot export local symbol" || true
	@test -x $@
$(FUZZ)/json-body: Sources/StippleRequests/*.swift Tests/Fuzz/JSONBodyFuzz.swift
	@mkdir -p $(FUZZ) && rm -f $@
	$(SWIFT)c $(FUZZ_FLAGS) -module-name JSONBodyFuzz $^ -o $@ 2>&1 | grep -v "ld.gold: warning: Cannot export local symbol" || true
	@test -x $@
# The pen firmware core under libFuzzer (C, with the toolchain's clang): host bytes, valid-CRC
# commands, sensor readings, inputs and time; rule 2 checked after every step.
FW_DIR := Firmware-protocol/firmware
FW_SOURCES := $(FW_DIR)/stipple_pen.c
FW_HEADERS := $(wildcard $(FW_DIR)/include/*.h) $(wildcard $(C_DIR)/include/*.h)
CLANG ?= $(dir $(shell command -v $(SWIFT) 2>/dev/null))clang
$(FUZZ)/pen-core: $(FW_SOURCES) $(C_SOURCES) $(FW_DIR)/test/fuzz_pen.c $(FW_HEADERS)
	@mkdir -p $(FUZZ) && rm -f $@
	$(CLANG) -std=c99 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -I$(FW_DIR)/include -I$(C_DIR)/include \
	  $(FW_SOURCES) $(C_SOURCES) $(FW_DIR)/test/fuzz_pen.c -o $@ 2>&1 | grep -v "ld.gold: warning: Cannot export local symbol" || true
	@test -x $@
## fuzz-short: the fuzzers for 20 s each (part of `make test`); `make fuzz` runs them FUZZ_SECONDS (300) each
fuzz-short:
	$(MAKE) fuzz FUZZ_SECONDS=20
fuzz: deps $(FUZZ)/frame-decoder $(FUZZ)/json-body $(FUZZ)/pen-core
	@rm -rf $(FUZZ)/corpus-frame $(FUZZ)/corpus-json && mkdir -p $(FUZZ)/corpus-frame $(FUZZ)/corpus-json $(FUZZ)/crashes
	@awk -F'\t' '$$1 == "valid" || $$1 == "invalid" { print $$2, $$3 }' Firmware-protocol/vectors/vectors.tsv | \
	  while read name hex; do echo "$$hex" | xxd -r -p > $(FUZZ)/corpus-frame/$$name; done
	cp Tests/Fuzz/seeds/json/* $(FUZZ)/corpus-json/
	SWIFT_BACKTRACE=enable=no $(FUZZ)/frame-decoder -max_total_time=$(FUZZ_SECONDS) -max_len=1024 -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ)/crashes/frame- $(FUZZ)/corpus-frame 2>&1 | grep -E "^(Done|stat::number_of_executed_units|==|SUMMARY|INFO: Seed|Fatal error|Test unit written|.*precondition)" ; test $${PIPESTATUS[0]} = 0
	SWIFT_BACKTRACE=enable=no $(FUZZ)/json-body -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -dict=Tests/Fuzz/json.dict -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ)/crashes/json- $(FUZZ)/corpus-json 2>&1 | grep -E "^(Done|stat::number_of_executed_units|==|SUMMARY|INFO: Seed|Fatal error|Test unit written|.*precondition)" ; test $${PIPESTATUS[0]} = 0
	@rm -rf $(FUZZ)/corpus-pen && mkdir -p $(FUZZ)/corpus-pen
	$(FUZZ)/pen-core -max_total_time=$(FUZZ_SECONDS) -max_len=2048 -print_final_stats=1 -artifact_prefix=$(FUZZ)/crashes/pen- \
	  $(FUZZ)/corpus-pen 2>&1 | grep -E "^(Done|stat::number_of_executed_units|==|SUMMARY|INFO: Seed|Test unit written)" ; test $${PIPESTATUS[0]} = 0
	@STIPPLE_FUZZ_STATS=1 $(FUZZ)/pen-core -runs=0 $(FUZZ)/corpus-pen 2>&1 | grep "^pen-core:"
	@echo "fuzz: the frame decoder, the JSON body reader and the pen firmware core held for $(FUZZ_SECONDS) s each"

## soak: the long runs — the attacks with many more cases (Schemathesis, 100 kill rounds) and the
## fuzzers for 10 minutes each
soak: deps
	$(MAKE) fuzz FUZZ_SECONDS=600
	$(SWIFT) build --product stippled
	$(SWIFT) build --product stipple-sim
	@mkdir -p $(BUILD)/soak
	cd Tests/e2e && STIPPLE_SOAK=1 STIPPLE_ARTIFACTS=$(abspath $(BUILD))/soak $(PYTHON) -m pytest -q -p no:cacheprovider test_attacks.py

check-generated: deps
	$(PYTHON) Firmware-protocol/tools/gen_code.py --check
	$(PYTHON) Firmware-protocol/tools/gen_vectors.py --check

# The firmware half of the C codec and the firmware core may use only stdint.h, stddef.h and
# string.h, never allocate, and (the core) never use floating point.
check-firmware-c:
	@bad=$$(grep -hE '^\s*#\s*include\s*<' $(C_SOURCES) $(C_DIR)/include/*.h $(FW_SOURCES) $(FW_DIR)/include/*.h | grep -vE '<(stdint|stddef|string)\.h>' || true); \
	if [ -n "$$bad" ]; then echo "firmware C codec or core includes a forbidden header: $$bad" >&2; exit 1; fi
	@if grep -qE '\b(malloc|calloc|realloc|free)\s*\(' $(C_SOURCES) $(FW_SOURCES); then echo "firmware C must not allocate" >&2; exit 1; fi
	@if grep -qE '\b(float|double)\b' $(FW_SOURCES) $(FW_DIR)/include/*.h; then echo "the firmware core must not use floating point" >&2; exit 1; fi
	@if grep -q 'import Foundation' Sources/StippleWire/*.swift; then echo "StippleWire must not need Foundation" >&2; exit 1; fi
	@echo "firmware C codec and StippleWire use only the allowed headers and imports"

# Scripts that cannot run here (gpio-sim needs a kernel module CI containers lack) are at
# least parsed.
.PHONY: check-scripts
check-scripts: deps
	bash -n HardwareSim/gpio-sim.sh
	@echo "HardwareSim/gpio-sim.sh parses"
	SWIFT=$(SWIFT) $(PYTHON) .ci/check-imports.py
	@echo "every import is declared in Package.swift"

$(BUILD)/c/test_vectors: $(C_HOST_SOURCES) $(C_DIR)/test/test_vectors.c $(wildcard $(C_DIR)/include/*.h)
	@mkdir -p $(BUILD)/c
	$(CC) $(C_TEST_FLAGS) $(C_HOST_SOURCES) $(C_DIR)/test/test_vectors.c -o $@

test-c: deps $(BUILD)/c/test_vectors
	$(BUILD)/c/test_vectors Firmware-protocol/vectors/vectors.tsv

# The firmware core's unit tests (every rule, every row of the state table) under ASan and UBSan.
$(BUILD)/c/test_pen: $(FW_SOURCES) $(C_SOURCES) $(FW_DIR)/test/test_pen.c $(FW_HEADERS)
	@mkdir -p $(BUILD)/c
	$(CC) $(C_TEST_FLAGS) -I$(FW_DIR)/include $(FW_SOURCES) $(C_SOURCES) $(FW_DIR)/test/test_pen.c -o $@
test-firmware: deps $(BUILD)/c/test_pen
	$(BUILD)/c/test_pen

# The host port: the firmware core as a Linux process on a pty (Firmware-protocol/firmware/ports/host).
FW_HOST := $(BUILD)/firmware-host/stipple-pen-host
$(FW_HOST): $(FW_SOURCES) $(C_SOURCES) $(FW_DIR)/ports/host/main.c $(FW_HEADERS)
	@mkdir -p $(dir $@)
	$(CC) -std=c99 -Wall -Wextra -Werror -O2 -I$(FW_DIR)/include -I$(C_DIR)/include $(FW_SOURCES) $(C_SOURCES) $(FW_DIR)/ports/host/main.c -o $@ -lutil
## firmware-host: build the host port (run it: build/firmware-host/stipple-pen-host --link /tmp/stipple-pen)
firmware-host: deps $(FW_HOST)
# The conformance suite, in full, against the firmware core over a real pty.
test-firmware-host: deps $(FW_HOST)
	$(SWIFT) build --product stipple-sim
	@link=$$(mktemp -u /tmp/stipple-pen-host.XXXXXX); \
	  (sleep 120 | $(FW_HOST) --link $$link > $(BUILD)/firmware-host/port.log 2>&1 &); \
	  for i in $$(seq 50); do [ -e $$link ] && break; sleep 0.1; done; \
	  .build/debug/stipple-sim conformance --port $$link; rc=$$?; pkill -f "stipple-pen-host --link $$link"; exit $$rc

# The firmware core cross-compiled for the BBC micro:bit's nRF51822 (Cortex-M0) and run in QEMU's
# `microbit` machine, its UART on a pty: the conformance suite against a microcontroller image.
# QEMU's pty backend reads only once it has seen the other end open (it polls every second), so
# the pty is held open for 1.5 s before the suite starts.
QEMU_PORT := $(FW_DIR)/ports/qemu-microbit
QEMU_ELF := $(BUILD)/firmware-qemu/pen.elf
$(QEMU_ELF): $(FW_SOURCES) $(C_SOURCES) $(QEMU_PORT)/main.c $(QEMU_PORT)/link.ld $(FW_DIR)/ports/cortex-m/startup.c $(FW_HEADERS)
	@mkdir -p $(dir $@)
	$(ARM_CC) -std=c99 -Os -mcpu=cortex-m0 -mthumb -ffunction-sections -fdata-sections -Wall -Wextra -Werror \
	  -I$(FW_DIR)/include -I$(C_DIR)/include $(FW_SOURCES) $(C_SOURCES) $(QEMU_PORT)/main.c $(FW_DIR)/ports/cortex-m/startup.c \
	  -nostartfiles --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections -Wl,-e,reset_handler -T$(QEMU_PORT)/link.ld -o $@
test-firmware-qemu: deps $(QEMU_ELF)
	$(SWIFT) build --product stipple-sim
	@log=$(BUILD)/firmware-qemu/qemu.log; pid=$(BUILD)/firmware-qemu/qemu.pid; rm -f $$log $$pid; \
	  (timeout 120 qemu-system-arm -M microbit -kernel $(QEMU_ELF) -serial pty -nographic -monitor none -pidfile $$pid > $$log 2>&1 &); \
	  for i in $$(seq 50); do grep -q /dev/pts/ $$log 2>/dev/null && break; sleep 0.1; done; \
	  pts=$$(grep -o '/dev/pts/[0-9]*' $$log | head -1); [ -n "$$pts" ] || { cat $$log >&2; exit 1; }; \
	  (timeout 3 sleep 3 <> $$pts &); sleep 1.5; \
	  .build/debug/stipple-sim conformance --port $$pts; rc=$$?; kill $$(cat $$pid); exit $$rc

## bench-firmware: the host port's deadman (1,000 trials) and over-depth trip (200 strokes) timing,
## with SCHED_FIFO (needs root); figures in the README
bench-firmware: deps $(FW_HOST)
	$(PYTHON) Benchmarks/firmware-timing/firmware_timing.py --port-binary $(FW_HOST) --trials 1000 --trip-trials 200 --realtime

# The firmware core and codec cross-compiled for the Cortex-M0+ reference target: fails above
# 16 KiB of flash or 2 KiB of RAM (static data + the worst-case stack from GCC's call graph), or
# if a soft-float helper was linked in.
ARM_CC := arm-none-eabi-gcc
ARM_FLAGS := -std=c99 -Os -mcpu=cortex-m0plus -mthumb -ffunction-sections -fdata-sections -fstack-usage -fcallgraph-info=su \
	-Wall -Wextra -Werror -I$(FW_DIR)/include -I$(C_DIR)/include
REF_PORT := $(FW_DIR)/ports/reference-m0plus
REF_BUILD := $(BUILD)/firmware-m0plus
check-firmware-size: deps
	@rm -rf $(REF_BUILD) && mkdir -p $(REF_BUILD)
	cd $(REF_BUILD) && $(ARM_CC) $(ARM_FLAGS:-I%=-I$(CURDIR)/%) -c $(addprefix $(CURDIR)/,$(FW_SOURCES) $(C_SOURCES) $(REF_PORT)/main.c $(FW_DIR)/ports/cortex-m/startup.c)
	$(ARM_CC) -mcpu=cortex-m0plus -mthumb -nostartfiles --specs=nano.specs --specs=nosys.specs -Wl,--gc-sections -Wl,-e,reset_handler \
	  -T$(REF_PORT)/link.ld $(REF_BUILD)/*.o -o $(REF_BUILD)/pen.elf
	@if arm-none-eabi-nm $(REF_BUILD)/pen.elf | grep -qE '__aeabi_(f|d)|__aeabi_i2f|__(add|mul|div)(s|d)f3'; then \
	  echo "the firmware image links floating-point helpers" >&2; exit 1; fi
	$(PYTHON) Firmware-protocol/tools/firmware_size.py --elf $(REF_BUILD)/pen.elf \
	  --isr uart_irq --isr systick_irq --isr depth_adc_irq --isr stroke_irq \
	  --hal motor --hal drive --hal tach --hal current --hal temperature --hal inputs --hal cartridge --hal uart \
	  --hal led --hal kick --hal irq_off --hal irq_on $(REF_BUILD)/*.ci

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
# For `make test`: the benchmarks measure only counts (allocations, failed session checks).
BENCHMARK_COUNTS := cd Benchmarks && STIPPLE_BENCHMARK_COUNTS_ONLY=1 $(SWIFT) package benchmark
CODEC_INSTRUCTIONS := $(SWIFT) build -c release --package-path Benchmarks --product codec-instructions && \
	Benchmarks/.build/release/codec-instructions

## bench: every benchmark, its table, then a check against Benchmarks/Thresholds that fails on a
## regression (or on a change past the noise band either way); callgrind's instruction counts
bench: deps
	$(BENCHMARK) baseline update latest --no-progress
	$(BENCHMARK) baseline read latest --no-progress
	$(BENCHMARK) thresholds check latest --path Thresholds --no-progress
	$(CODEC_INSTRUCTIONS)
	$(MAKE) bench-daemon
	$(MAKE) bench-estop
	$(MAKE) bench-clinic

## bench-clinic: a clinic's workstations on one throw-away PostgreSQL 15 — the claim's added latency
## on a session's open (against a daemon without the clinic, same run), 50 workstations' shipping
## (rows/s, lag p50/p99) and the database's size per session; needs root. Figures in the README.
bench-clinic: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS) --product stippled
	$(SWIFT) build $(SWIFT_BUILD_FLAGS) --product stipplectl
	$(SWIFT) build $(SWIFT_BUILD_FLAGS) --product stipple-clinic-bench
	$(PYTHON) Benchmarks/clinic/clinic_bench.py --build $(abspath .build/$(CONFIG))

## bench-console: the console's lease in chromium (tab closed -> stop, page frozen -> stop, beside
## the CLI's killed `arm`, >= 50 trials each) and telemetry -> screen latency
bench-console: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS) --product stippled
	$(SWIFT) build $(SWIFT_BUILD_FLAGS) --product stipplectl
	$(PYTHON) Benchmarks/console/console_bench.py --build $(abspath .build/$(CONFIG)) --trials 50 --out $(BUILD)/console-bench.json

## bench-daemon: stippled as a process on a pty — stop reaction beside the bare pty round trip,
## with 16 SSE clients, CPU per telemetry frame at 1 kHz, memory over a four-hour session; then
## the stop path again with two processes burning both cores (--no-realtime: the same at normal priority)
# stippled as `make install` and `make deb` build it (static Swift runtime): the memory figures
# are those of the installed daemon.
bench-daemon: deps
	$(SWIFT) build -c release --product stippled --static-swift-stdlib
	$(SWIFT) build -c release --package-path Benchmarks --product daemon-bench
	Benchmarks/.build/release/daemon-bench --stippled $(abspath .build/release/stippled)
	@echo "--- the stop path on a busy machine: two processes burning both cores"
	Benchmarks/.build/release/daemon-bench --stippled $(abspath .build/release/stippled) --load 2 --events 3000 --seconds 2 --no-four-hours

## bench-estop: e-stop round trips on the stop socket with no load and with each load another local
## user can put on the API socket (event streams, idle connections, request floods) or on the stop
## socket itself; needs root (it acts as other users). Figures in the README.
bench-estop: deps
	$(SWIFT) build -c release --product stippled --static-swift-stdlib
	$(PYTHON) Benchmarks/estop-load/estop_under_load.py --stippled $(abspath .build/release/stippled) --trials 400

## bench-thresholds: record the current figures as the thresholds (on a quiet machine; review the diff)
bench-thresholds: deps
	$(BENCHMARK) thresholds update --path Thresholds --no-progress
	$(CODEC_INSTRUCTIONS) --record

# In `make test`: decoding and encoding never allocate, the Swift decoder executes no more
# instructions per frame than the C one, and the four-hour session simulates (optimised, the one
# time `make test` runs it) without a fault. Only counts are checked here, never times: they
# repeat exactly on a busy machine.
bench-check: deps
	$(BENCHMARK_COUNTS) thresholds check --path Thresholds --no-progress
	$(CODEC_INSTRUCTIONS)

## install: the binaries, systemd units, udev rules, sysusers/tmpfiles, man pages and the default
## configuration under $(DESTDIR)$(PREFIX) (CONFIG=release by default, static Swift runtime)
PREFIX ?= /usr/local
DESTDIR ?=
CONFIG ?= release
VERSION := 0.1.0
SWIFT_BUILD_FLAGS := -c $(CONFIG) $(if $(filter release,$(CONFIG)),--static-swift-stdlib,)
BINARIES := stippled stipplectl stipple-sim
MAN := $(BUILD)/man

install: deps stipplectl-docs
	for p in $(BINARIES); do $(SWIFT) build $(SWIFT_BUILD_FLAGS) --product $$p || exit 1; done
	@rm -rf $(MAN) && mkdir -p $(MAN)
	$(PYTHON) docs/man/gen_man.py .build/$(CONFIG)/stippled 8 $(MAN)/stippled.8
	$(PYTHON) docs/man/gen_man.py .build/$(CONFIG)/stipple-sim 1 $(MAN)/stipple-sim.1
	install -D -m 0755 .build/$(CONFIG)/stippled $(DESTDIR)$(PREFIX)/sbin/stippled
	install -D -m 0755 .build/$(CONFIG)/stipplectl $(DESTDIR)$(PREFIX)/bin/stipplectl
	install -D -m 0755 .build/$(CONFIG)/stipple-sim $(DESTDIR)$(PREFIX)/bin/stipple-sim
	install -d $(DESTDIR)$(PREFIX)/share/stipple/console
	install -m 0644 Sources/console/* $(DESTDIR)$(PREFIX)/share/stipple/console/
	sed 's|/usr/bin/stipplectl|$(PREFIX)/bin/stipplectl|' systemd/stipple-console.service > $(MAN)/stipple-console.service
	install -D -m 0644 $(MAN)/stipple-console.service $(DESTDIR)$(PREFIX)/lib/systemd/user/stipple-console.service
	install -D -m 0644 systemd/stipple-console.desktop $(DESTDIR)$(PREFIX)/share/applications/stipple-console.desktop
	sed 's|/usr/sbin/stippled|$(PREFIX)/sbin/stippled|' systemd/stippled.service > $(MAN)/stippled.service
	install -D -m 0644 $(MAN)/stippled.service $(DESTDIR)$(PREFIX)/lib/systemd/system/stippled.service
	install -D -m 0644 systemd/stipple.sysusers $(DESTDIR)$(PREFIX)/lib/sysusers.d/stipple.conf
	install -D -m 0644 systemd/stipple.tmpfiles $(DESTDIR)$(PREFIX)/lib/tmpfiles.d/stipple.conf
	install -D -m 0644 systemd/90-stipple.rules $(DESTDIR)$(PREFIX)/lib/udev/rules.d/90-stipple.rules
	install -D -m 0644 systemd/stippled.json $(DESTDIR)/etc/stipple/stippled.json
	install -D -m 0644 systemd/stippled-clinic.conf $(DESTDIR)$(PREFIX)/share/doc/stipple/examples/stippled.service.d-clinic.conf
	install -D -m 0644 $(MAN)/stippled.8 $(DESTDIR)$(PREFIX)/share/man/man8/stippled.8
	install -d $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 0644 $(STIPPLECTL_DOCS)/man1/*.1 $(DESTDIR)$(PREFIX)/share/man/man1/
	install -D -m 0644 $(STIPPLECTL_DOCS)/completions/bash $(DESTDIR)$(PREFIX)/share/bash-completion/completions/stipplectl
	install -D -m 0644 $(STIPPLECTL_DOCS)/completions/zsh $(DESTDIR)$(PREFIX)/share/zsh/vendor-completions/_stipplectl
	install -D -m 0644 $(STIPPLECTL_DOCS)/completions/fish $(DESTDIR)$(PREFIX)/share/fish/vendor_completions.d/stipplectl.fish
	install -D -m 0644 $(MAN)/stipple-sim.1 $(DESTDIR)$(PREFIX)/share/man/man1/stipple-sim.1
	for d in README.md docs/deploy.md docs/configuration.md docs/openapi.yaml docs/safety.md docs/fleet.md docs/console.md; do \
		install -D -m 0644 $$d $(DESTDIR)$(PREFIX)/share/doc/stipple/$$(basename $$d) || exit 1; done
	install -D -m 0644 HardwareSim/README.md $(DESTDIR)$(PREFIX)/share/doc/stipple/HardwareSim.md

## deb: a Debian package, build/stipple_$(VERSION)_ARCH.deb (dpkg-deb), from `make install`
ARCH := $(shell dpkg --print-architecture)
DEB_ROOT := $(BUILD)/deb/root
DEB := $(BUILD)/stipple_$(VERSION)_$(ARCH).deb
deb: deps
	rm -rf $(DEB_ROOT)
	$(MAKE) install DESTDIR=$(abspath $(DEB_ROOT)) PREFIX=/usr CONFIG=$(CONFIG)
	mkdir -p $(DEB_ROOT)/DEBIAN
	sed -e 's/@VERSION@/$(VERSION)/' -e 's/@ARCH@/$(ARCH)/' systemd/debian/control > $(DEB_ROOT)/DEBIAN/control
	for f in postinst prerm postrm conffiles; do install -m 0755 systemd/debian/$$f $(DEB_ROOT)/DEBIAN/$$f || exit 1; done
	chmod 0644 $(DEB_ROOT)/DEBIAN/conffiles
	dpkg-deb --root-owner-group --build $(DEB_ROOT) $(DEB)
	@echo "built $(DEB)"

## test-package: the package builds (debug binaries, to save a release build), installs into a
## throw-away root, its units verify, and the service's exposure stays at most 1.5
test-package: deps
	$(MAKE) deb CONFIG=debug
	rm -rf $(BUILD)/pkgroot && mkdir -p $(BUILD)/pkgroot
	dpkg-deb -x $(DEB) $(BUILD)/pkgroot
	dpkg-deb -I $(DEB) | grep -q "Package: stipple"
	test -x $(BUILD)/pkgroot/usr/sbin/stippled && test -f $(BUILD)/pkgroot/usr/share/man/man8/stippled.8
	test -f $(BUILD)/pkgroot/usr/share/stipple/console/index.html && test -f $(BUILD)/pkgroot/usr/lib/systemd/user/stipple-console.service
	$(BUILD)/pkgroot/usr/sbin/stippled --help >/dev/null
	@# systemd-analyze verify reads the unit as installed, pointed at the extracted binary and man pages
	mkdir -p $(BUILD)/unitcheck && sed 's|/usr/sbin/stippled|$(abspath $(BUILD)/pkgroot)/usr/sbin/stippled|' \
		$(BUILD)/pkgroot/usr/lib/systemd/system/stippled.service > $(BUILD)/unitcheck/stippled.service
	MANPATH=$(abspath $(BUILD)/pkgroot)/usr/share/man SYSTEMD_LOG_LEVEL=err systemd-analyze verify $(BUILD)/unitcheck/stippled.service
	@exposure=$$(systemd-analyze security --offline=yes --root=$(abspath $(BUILD)/pkgroot) stippled.service 2>/dev/null | sed -n 's/.*Overall exposure level for stippled.service: \([0-9.]*\).*/\1/p'); \
	  echo "stippled.service exposure: $$exposure (goal ≤ 1.0, fails above 1.5)"; \
	  [ -n "$$exposure" ] && awk "BEGIN { exit !($$exposure <= 1.5) }"
	systemd-sysusers --root=$(abspath $(BUILD)/pkgroot)
	grep -q '^stipple:' $(BUILD)/pkgroot/etc/passwd && grep -q '^stipple-eng:' $(BUILD)/pkgroot/etc/group
	@echo "package: 1 passed"

clean:
	rm -rf $(BUILD) .build

## stipplectl-docs: shell completions (bash, zsh, fish) and a man page per command, generated from
## stipplectl's own argument parser (--experimental-dump-help, --generate-completion-script) into
## build/stipplectl — no extra build of the package
.PHONY: stipplectl-docs install-stipplectl
STIPPLECTL_DOCS := $(BUILD)/stipplectl
stipplectl-docs: deps
	$(SWIFT) build $(SWIFT_BUILD_FLAGS) --product stipplectl
	@rm -rf $(STIPPLECTL_DOCS) && mkdir -p $(STIPPLECTL_DOCS)/completions
	$(PYTHON) docs/man/gen_man.py --multi-page .build/$(CONFIG)/stipplectl 1 $(STIPPLECTL_DOCS)/man1
	for shell in bash zsh fish; do .build/$(CONFIG)/stipplectl --generate-completion-script $$shell > $(STIPPLECTL_DOCS)/completions/$$shell || exit 1; done

## install-stipplectl: the same as install (kept for muscle memory)
install-stipplectl: install
