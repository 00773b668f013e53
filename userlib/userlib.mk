# SPDX-License-Identifier: MIT
# libphsm-pkcs11.so: the PKCS#11 v3.0 library.  No crypto and no key
# material: it checks arguments, sends commands and checks the answers.

LIB_SRCS := $(wildcard userlib/*.c) $(CODEC_SRCS)
LIB_SO := $(BUILD)/lib/libphsm-pkcs11.so

$(LIB_SO): $(call objs,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libphsm-pkcs11.so \
		-Wl,--no-undefined -o $@ $^ $(LDLIBS)

all: $(LIB_SO)
