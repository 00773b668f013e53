# SPDX-License-Identifier: MIT
# The VM tests: the kselftests of tests/kselftest and the PKCS#11 suite,
# run inside QEMU guests (Debian's 6.1 and 6.12 kernels) with two phsm
# cards.  Included by the top Makefile.
#
#   make vm-kselftests   the selftests, built against kselftest headers
#                        extracted from linux-source-6.1 into build/
#   make vm-initramfs    the guest's userspace: build/vm/initramfs.cpio.gz
#   make vm-check        build what is missing (QEMU, phsm.ko for both
#                        kernels, the initramfs) and run tests/vm/run-vm.sh
#
# VM_KERNELS selects the kernel series (default: 6.1 6.12).
# Documentation/phsm/testing.rst describes the whole.

VM_KERNELS ?= 6.1 6.12
VM_DIR := build/vm
KSFT_STAGE := build/kselftest
KSFT_ROOT := $(KSFT_STAGE)/tools/testing/selftests
KSFT_PHSM := $(KSFT_ROOT)/drivers/phsm
KSFT_OUT := $(KSFT_STAGE)/bin
KSFT_TESTS := phsm_dev_test phsm_recovery_test phsm_removal_test \
	      phsm_health_test
KSFT_BINS := $(addprefix $(KSFT_OUT)/,$(KSFT_TESTS))
KSFT_SRCS := $(wildcard tests/kselftest/drivers/phsm/*)
LINUX_SOURCE_TAR = $(firstword $(wildcard /usr/src/linux-source-6.1.tar.xz))

VM_INITRD := $(VM_DIR)/initramfs.cpio.gz
VM_GUEST_FILES := $(KSFT_BINS) $(BUILD)/tests/pkcs11-suite \
		  $(BUILD)/lib/libphsm-pkcs11.so

# Host packages of the VM tests; apt-get runs only for missing ones.
VM_PACKAGES := linux-source-6.1 busybox-static cpio qemu-system-x86 \
	       qemu-system-data seabios python3 xz-utils

vm-deps:
	@missing=; for p in $(VM_PACKAGES); do \
		[ "$$(dpkg-query -W -f='$${db:Status-Abbrev}' $$p 2>/dev/null)" = "ii " ] || \
			missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "vm-deps: installing$$missing"; \
		DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 \
			install -y --no-install-recommends $$missing </dev/null || \
		{ DEBIAN_FRONTEND=noninteractive apt-get -q update </dev/null && \
		  DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 \
			install -y --no-install-recommends $$missing </dev/null; }; \
	fi

# kselftest.h, kselftest_harness.h and lib.mk of Linux 6.1, never committed.
$(KSFT_ROOT)/.extracted:
	@test -n "$(LINUX_SOURCE_TAR)" || \
		{ echo "vm: needs linux-source-6.1 (make vm-deps)"; exit 1; }
	@mkdir -p $(KSFT_STAGE)
	tar -xJf $(LINUX_SOURCE_TAR) -C $(KSFT_STAGE) --strip-components=1 \
		--wildcards '*/tools/testing/selftests/kselftest*.h' \
		'*/tools/testing/selftests/lib.mk'
	@touch $@

# The selftests are built where they would sit upstream, beside the
# extracted headers, by their own Makefile (which includes lib.mk).
$(KSFT_BINS): $(KSFT_ROOT)/.extracted $(KSFT_SRCS) $(CODEC_SRCS) \
		$(wildcard uapi/*.h uapi/codec/*.h)
	@mkdir -p $(KSFT_PHSM) $(KSFT_OUT)
	cp tests/kselftest/drivers/phsm/* $(KSFT_PHSM)/
	$(MAKE) --no-print-directory -C $(KSFT_PHSM) \
		OUTPUT=$(CURDIR)/$(KSFT_OUT) PHSM_UAPI=$(CURDIR)/uapi \
		KHDR_INCLUDES=

vm-kselftests: $(KSFT_BINS)

$(VM_INITRD): tests/vm/plan.txt tests/vm/guest-init.sh tests/vm/mkinitramfs.sh \
		$(VM_GUEST_FILES)
	@mkdir -p $(VM_DIR)
	tests/vm/mkinitramfs.sh base $@ tests/vm/plan.txt $(VM_GUEST_FILES)

vm-initramfs: $(VM_INITRD)

# phsm.ko for every kernel, by driver/driver.mk, into
# build/driver/<release>/phsm.ko, where tests/vm/run-vm.sh looks for it.
vm-modules:
	$(MAKE) --no-print-directory module PHSM_KERNELS="$(VM_KERNELS)"

# QEMU with the phsm device (cached under /var/cache/phsm by the script).
vm-qemu:
	scripts/build-qemu.sh >/dev/null

# A part that fails to build does not stop the run: run-vm.sh counts what
# is missing as failures, so the totals line is always printed.
vm-check: vm-deps
	-$(MAKE) --no-print-directory all tests
	-$(MAKE) --no-print-directory -k vm-kselftests vm-modules vm-qemu
	-$(MAKE) --no-print-directory vm-initramfs
	tests/vm/run-vm.sh $(VM_KERNELS)

.PHONY: vm-deps vm-kselftests vm-initramfs vm-modules vm-qemu vm-check
