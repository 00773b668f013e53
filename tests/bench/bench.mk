# SPDX-License-Identifier: MIT
# The benchmark (issue 5).  Included by the top Makefile; not part of
# `make check` and never asserts a timing.
#
#   make bench     install softhsm2 if missing, build phsm and the tool,
#                  start a fresh phsm-fw and SoftHSMv2 token, measure
#                  phsm, SoftHSMv2 and OpenSSL, print the table and write
#                  build/bench/results.json
#
# BENCH_SECONDS (default 2) is the time per cell.

BENCH_BIN := $(BUILD)/tests/bench
BENCH_SECONDS ?= 2

$(BENCH_BIN): $(call objs,tests/bench/bench.c)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcrypto -ldl $(LDLIBS)

bench: all $(BENCH_BIN)
	BENCH_BIN=$(BENCH_BIN) BENCH_SECONDS=$(BENCH_SECONDS) \
		./tests/bench/bench.sh

.PHONY: bench
