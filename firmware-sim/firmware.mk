# SPDX-License-Identifier: MIT
# phsm-fw: the card firmware.  The core is a library (state + command ->
# response) so that the daemon, the QEMU bridge, tests and fuzzers share it.

FW_CORE_SRCS := $(wildcard firmware-sim/core/*.c) $(CODEC_SRCS)
FW_CORE_LIB := $(BUILD)/lib/libphsmfw.a
FW_LIBS := -lcrypto -lsqlite3
FW_BIN := $(BUILD)/bin/phsm-fw

$(FW_CORE_LIB): $(call objs,$(FW_CORE_SRCS))
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(FW_BIN): $(call objs,$(wildcard firmware-sim/daemon/*.c)) $(FW_CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(FW_LIBS) $(LDLIBS)

all: $(FW_BIN)
