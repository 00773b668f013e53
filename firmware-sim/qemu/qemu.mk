# SPDX-License-Identifier: MIT
# The QEMU device model of the phsm card (firmware-sim/qemu/phsm.c), built
# into QEMU 10.0.13 from Debian's source package by scripts/build-qemu.sh
# and cached under /var/cache/phsm/qemu-<hash>/.
#
#   make qemu          build (or find in the cache) qemu-system-x86_64
#   make qemu-check    device tests without a guest (tests/qemu/run.sh)

qemu:
	./scripts/build-qemu.sh

qemu-check: $(FW_BIN)
	PHSM_FW=$(CURDIR)/$(FW_BIN) ./tests/qemu/run.sh

.PHONY: qemu qemu-check
