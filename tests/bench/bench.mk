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

# The device path (issue 5): NOP commands through /dev/phsm0 in one VM
# guest (tests/vm tooling), and through phsm-fw's bridge socket from the
# host.  Not part of `make check` either.
#
#   make vm-bench  build what is missing (phsm, phsm.ko for one kernel,
#                  QEMU, the two tools) and run tests/bench/vm-bench.sh:
#                  prints the summary, writes build/bench/vm/
#
# VM_BENCH_KERNEL (default 6.12) is the guest kernel series.
VM_BENCH_KERNEL ?= 6.12
VM_BENCH_GUEST := $(BUILD)/tests/vm_nop_bench
FW_NOP_BENCH := $(BUILD)/tests/fw_nop_bench

$(VM_BENCH_GUEST): $(call objs,tests/bench/vm_nop_bench.c $(CODEC_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(FW_NOP_BENCH): $(call objs,tests/bench/fw_nop_bench.c $(CODEC_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

vm-bench: vm-deps
	$(MAKE) --no-print-directory all $(VM_BENCH_GUEST) $(FW_NOP_BENCH)
	$(MAKE) --no-print-directory vm-modules vm-qemu \
		VM_KERNELS="$(VM_BENCH_KERNEL)"
	VM_BENCH_KERNEL=$(VM_BENCH_KERNEL) VM_BENCH_GUEST=$(VM_BENCH_GUEST) \
		FW_NOP_BENCH=$(FW_NOP_BENCH) ./tests/bench/vm-bench.sh

.PHONY: vm-bench
