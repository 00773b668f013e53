# SPDX-License-Identifier: MIT
# libphsm-pkcs11.so: the PKCS#11 v3.0 library.  No key material: it
# checks arguments, sends commands and checks the answers; the only
# cryptography is the keyless single-part digests of digest.c (libcrypto).

LIB_SRCS := $(wildcard userlib/*.c) $(CODEC_SRCS)
LIB_SO := $(BUILD)/lib/libphsm-pkcs11.so

$(LIB_SO): $(call objs,$(LIB_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -shared -Wl,-soname,libphsm-pkcs11.so \
		-Wl,--no-undefined -o $@ $^ -lcrypto $(LDLIBS)

all: $(LIB_SO)
