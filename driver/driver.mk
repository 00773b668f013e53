# SPDX-License-Identifier: MIT
# phsm.ko: build and check the kernel module (included by the top Makefile).
#
#   make module                 phsm.ko for every kernel of PHSM_KERNELS
#                               into build/driver/<release>/phsm.ko
#   make module KVER=<release>  for one kernel release (e.g. 6.1.0-56-amd64);
#                               KVER=6.1 and KVER=6.12 name the VM kernels
#   make module-checkpatch      checkpatch.pl --strict --no-tree
#   make module-sparse          sparse (C=2) for every kernel of PHSM_KERNELS
#   make module-check           all of the above
#
# W=1 warnings fail the build.  Headers are the installed ones or Debian's
# packages unpacked under /var/cache/phsm (driver/kheaders.sh); the kernel
# series are those of tests/vm/kernels.sh.

PHSM_KERNELS ?= 6.1 6.12
MODULE_KERNELS = $(if $(KVER),$(KVER),$(PHSM_KERNELS))

module:
	+@set -e; for k in $(MODULE_KERNELS); do ./driver/build.sh module $$k; done

module-sparse:
	+@set -e; for k in $(MODULE_KERNELS); do ./driver/build.sh sparse $$k; done

module-checkpatch:
	@./driver/build.sh checkpatch

module-check: module module-checkpatch module-sparse

.PHONY: module module-sparse module-checkpatch module-check
