# SPDX-License-Identifier: GPL-2.0
# moat: build the BPF objects, their skeleton, the CLI, and the tests.
#
#   make          build ./moat
#   make demo     the stateless hole and its fixes, with real traffic
#   make test     every test (installs what is missing first)
#   make bench    the benchmark; writes bench/RESULTS.md
#
# Set-up (Debian packages, bpffs) is done by scripts/install-deps.sh, which
# `demo`, `test` and `bench` run first; it does nothing when all is there.

CLANG     ?= clang
CC        ?= gcc
BPFTOOL   ?= bpftool
BUILD     := build
ARCH      := $(shell uname -m | sed 's/x86_64/x86/;s/aarch64/arm64/')

WARN      := -Wall -Wextra -Werror -Wno-unused-parameter
CFLAGS    ?= -O2 -g
CFLAGS    += $(WARN) -std=gnu11 -D_GNU_SOURCE -Iinclude -Iuser -I$(BUILD)
LDLIBS    := -lxdp -lbpf -ljson-c -lelf -lz -lpthread -lm
BPF_CFLAGS := -O2 -g -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror \
	-I/usr/include/$(shell gcc -dumpmachine) \
	-Iinclude -Ibpf -I$(BUILD)

BPF_LIBH  := $(wildcard bpf/lib/*.h) include/moat_abi.h
SKEL      := $(BUILD)/moat.skel.h

# Library: every user/*.c except the CLI entry and its verbs.
CLI_SRCS  := user/main.c $(wildcard user/cmd_*.c)
LIB_SRCS  := $(filter-out $(CLI_SRCS),$(wildcard user/*.c))
LIB_OBJS  := $(patsubst user/%.c,$(BUILD)/user/%.o,$(LIB_SRCS))
CLI_OBJS  := $(patsubst user/%.c,$(BUILD)/user/%.o,$(CLI_SRCS))
LIB       := $(BUILD)/libmoat.a

# The same library with AddressSanitizer + UBSan, for the unit tests.
SAN       := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
ASAN_OBJS := $(patsubst user/%.c,$(BUILD)/asan/%.o,$(LIB_SRCS))
ASAN_LIB  := $(BUILD)/asan/libmoat.a

UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(UNIT_SRCS))
BPFT_SRCS := $(wildcard tests/bpf/test_*.c)
BPFT_BINS := $(patsubst tests/bpf/%.c,$(BUILD)/tests/bpf/%,$(BPFT_SRCS))
TEST_HELP := $(wildcard tests/lib/*.c)

.PHONY: all deps demo demo-aws test bench clean format format-check check unit-tests bpf-tests fuzz

# Fuzz targets (libFuzzer, clang): pure parsing code only.
FUZZ_SRCS := user/diag.c user/rules_parse.c user/rules_format.c user/compile.c user/dir4.c user/dir24.c user/hash6.c user/addr_hash.c user/addr_filter.c user/import_aws.c
FUZZ_BINS := $(BUILD)/fuzz/fuzz_rules $(BUILD)/fuzz/fuzz_import
FUZZ_RUNS ?= 10000000

all: moat

deps:
	@scripts/install-deps.sh

$(BUILD) $(BUILD)/user $(BUILD)/asan $(BUILD)/tests/unit $(BUILD)/tests/bpf:
	@mkdir -p $@

$(BUILD)/vmlinux.h: | $(BUILD)
	$(BPFTOOL) btf dump file /sys/kernel/btf/vmlinux format c > $@.tmp && mv $@.tmp $@

# One object holds both entry points, so XDP and TC share every map;
# `bpftool gen object` turns it into the final (BTF-deduplicated) object.
$(BUILD)/moat.tmp.bpf.o: bpf/moat.bpf.c $(BPF_LIBH) | $(BUILD)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/moat.bpf.o: $(BUILD)/moat.tmp.bpf.o
	$(BPFTOOL) gen object $@ $<

$(SKEL): $(BUILD)/moat.bpf.o
	$(BPFTOOL) gen skeleton $< name moat_bpf > $@.tmp && mv $@.tmp $@

$(BUILD)/user/%.o: user/%.c $(wildcard user/*.h) include/moat_abi.h $(SKEL) | $(BUILD)/user
	$(CC) $(CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	ar rcs $@ $^

moat: $(CLI_OBJS) $(LIB)
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJS) $(LIB) $(LDLIBS)

$(BUILD)/asan/%.o: user/%.c $(wildcard user/*.h) include/moat_abi.h $(SKEL) | $(BUILD)/asan
	$(CC) $(CFLAGS) $(SAN) -c $< -o $@

$(ASAN_LIB): $(ASAN_OBJS)
	ar rcs $@ $^

# Unit tests: pure user space, built with ASan + UBSan.
$(BUILD)/tests/unit/%: tests/unit/%.c $(ASAN_LIB) $(TEST_HELP) | $(BUILD)/tests/unit
	$(CC) $(CFLAGS) $(SAN) -Itests/lib -o $@ $< $(TEST_HELP) $(ASAN_LIB) $(LDLIBS) -lcmocka

# BPF tests: run the real programs with BPF_PROG_TEST_RUN (root).
$(BUILD)/tests/bpf/%: tests/bpf/%.c $(LIB) $(TEST_HELP) | $(BUILD)/tests/bpf
	$(CC) $(CFLAGS) -Itests/lib -o $@ $< $(TEST_HELP) $(LIB) $(LDLIBS) -lcmocka

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_SRCS) $(wildcard user/*.h)
	@mkdir -p $(BUILD)/fuzz
	$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -Iinclude -Iuser \
		-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
		-o $@ $< $(FUZZ_SRCS) -ljson-c

# Long fuzzing runs (FUZZ_RUNS executions each); `make test` replays the corpus.
fuzz: $(FUZZ_BINS)
	$(BUILD)/fuzz/fuzz_rules -runs=$(FUZZ_RUNS) -max_len=4096 tests/fuzz/corpus/rules
	$(BUILD)/fuzz/fuzz_import -runs=$(FUZZ_RUNS) -max_len=8192 tests/fuzz/corpus/aws

unit-tests: $(UNIT_BINS)
bpf-tests: $(BPFT_BINS)

demo: deps
	@$(MAKE) --no-print-directory moat
	@scripts/demo.sh

# The demo's probes under a configuration imported from AWS CLI JSON.
demo-aws: deps
	@$(MAKE) --no-print-directory moat
	@scripts/demo-aws.sh

test: deps
	@$(MAKE) --no-print-directory moat unit-tests bpf-tests $(FUZZ_BINS)
	@scripts/run-tests.sh

bench: deps
	@$(MAKE) --no-print-directory moat bpf-tests
	@scripts/bench.sh $(if $(QUICK),--quick)

format:
	clang-format -i $(wildcard bpf/*.c bpf/lib/*.h include/*.h user/*.c user/*.h tests/*/*.c tests/lib/*.h)

format-check:
	@clang-format --dry-run --Werror $(wildcard bpf/*.c bpf/lib/*.h include/*.h user/*.c user/*.h tests/*/*.c tests/lib/*.h)

clean:
	rm -rf $(BUILD) moat
