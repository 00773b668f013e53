# SPDX-License-Identifier: MIT
# phsm userspace build.  The kernel module is built by Kbuild (see Kbuild).
#
#   make            libphsm-pkcs11.so, phsm-fw and tools into build/
#   make SAN=1      the same with AddressSanitizer/UBSan into build/asan/
#   make demo       install dependencies, start phsm-fw, show the main job
#   make check      install dependencies, run every suite, print the totals

BUILD ?= $(if $(SAN),build/asan,build)
CC ?= cc

CPPFLAGS += -D_GNU_SOURCE -I$(CURDIR) -I$(CURDIR)/userlib/include
CFLAGS ?= -O2 -g
CFLAGS += -std=c11 -Wall -Wextra -Werror -fPIC -pthread \
	  -fvisibility=hidden -Wmissing-prototypes -Wstrict-prototypes
ifneq ($(SAN),)
CFLAGS += -fsanitize=address,undefined -fno-omit-frame-pointer \
	  -fno-sanitize-recover=undefined
LDFLAGS += -fsanitize=address,undefined
endif
LDLIBS += -pthread

OBJ := $(BUILD)/obj

all:

# $(call objs,sources): object files for sources, under $(OBJ)
objs = $(patsubst %.c,$(OBJ)/%.o,$(1))

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c $< -o $@

# The protocol codec, linked into the library, the firmware and the tests.
CODEC_SRCS := uapi/codec/phsm_codec.c

include firmware-sim/firmware.mk
include userlib/userlib.mk
-include tests/tests.mk
-include tools/phsmctl/phsmctl.mk
-include driver/driver.mk
-include firmware-sim/qemu/qemu.mk
-include tests/vm/vm.mk
-include tests/bench/bench.mk

deps:
	./scripts/install-deps.sh

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

.PHONY: all deps clean
