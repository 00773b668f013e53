# SPDX-License-Identifier: MIT
# Test programs.  Included by the top Makefile, so $(BUILD), $(OBJ) and
# SAN=1 apply: `make SAN=1 tests` builds the sanitizer variants into
# build/asan/tests.  The libFuzzer target always uses clang and its own
# tree, build/fuzz, whatever SAN says.
#
#   make tests     every test program (unit, behaviour suite, crash, clone,
#                  fuzz)
#   make check     install dependencies, then run every suite (tests/run.sh)
#   make demo      install dependencies, then the demo (tests/demo.sh)

TEST_BIN := $(BUILD)/tests
TEST_LIBS := -lcmocka -lcrypto -lsqlite3

# Unit tests: each tests/unit/test_*.c is one cmocka program.
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(TEST_BIN)/%,$(UNIT_SRCS))

# The codec test needs only the codec; the others the firmware core.
$(TEST_BIN)/test_codec: $(call objs,tests/unit/test_codec.c $(CODEC_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcmocka $(LDLIBS)

# The device transport's test: the library's objects, with ioctl() and
# close() wrapped by a fake driver in front of the firmware core.
DEVT_TEST := $(TEST_BIN)/test_lib_devtransport

$(DEVT_TEST): $(OBJ)/tests/unit/test_lib_devtransport.o \
		$(call objs,$(LIB_SRCS)) $(FW_CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -Wl,--wrap=ioctl -Wl,--wrap=close \
		-o $@ $^ $(TEST_LIBS) $(LDLIBS)

$(filter-out $(TEST_BIN)/test_codec $(DEVT_TEST),$(UNIT_BINS)): $(TEST_BIN)/%: \
		$(OBJ)/tests/unit/%.o $(FW_CORE_LIB)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(TEST_LIBS) $(LDLIBS)

# The PKCS#11 behaviour suite: one program, loads the module named on its
# command line.
SUITE_SRCS := $(wildcard tests/pkcs11/*.c)
SUITE_BIN := $(TEST_BIN)/pkcs11-suite

$(SUITE_BIN): $(call objs,$(SUITE_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -lcmocka -lcrypto -ldl $(LDLIBS)

# Crash-safety client: creates token objects until the card dies.
CRASH_BIN := $(TEST_BIN)/crash-client

$(CRASH_BIN): $(call objs,tests/crash/crash_client.c)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -ldl $(LDLIBS)

# Cloning client: one step per run, for tests/clone/clone.sh.
CLONE_TOOL := $(TEST_BIN)/clone-tool

$(CLONE_TOOL): $(call objs,tests/clone/clone-tool.c)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ -ldl $(LDLIBS)

TEST_PROGS := $(UNIT_BINS) $(if $(SUITE_SRCS),$(SUITE_BIN)) $(CRASH_BIN) \
	$(CLONE_TOOL)

# libFuzzer target: the firmware core, compiled with clang and
# instrumented for coverage, behind fw_card_handle().
FUZZ_DIR := build/fuzz
FUZZ_CC := clang
FUZZ_CFLAGS := -std=c11 -g -O1 -fPIC -pthread -Wall -Wextra \
	-fno-omit-frame-pointer -fsanitize=fuzzer-no-link,address,undefined
FUZZ_SRCS := $(wildcard firmware-sim/core/*.c) $(CODEC_SRCS) \
	tests/fuzz/fuzz_decoder.c
FUZZ_BIN := $(FUZZ_DIR)/fuzz-decoder
# Writes the seed corpus: a plain program, built with the normal flags.
FUZZ_SEEDS_BIN := $(TEST_BIN)/fuzz-seeds

$(FUZZ_DIR)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS) $(FUZZ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_BIN): $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(FUZZ_SRCS))
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ \
		-lcrypto -lsqlite3 -pthread

$(FUZZ_SEEDS_BIN): $(call objs,tests/fuzz/fuzz_seeds.c $(CODEC_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz: $(FUZZ_BIN) $(FUZZ_SEEDS_BIN)

tests: $(TEST_PROGS) fuzz

check:
	./scripts/install-deps.sh --check
	./tests/run.sh

demo:
	./scripts/install-deps.sh
	PHSM_DEMO_NO_DEPS=1 ./tests/demo.sh

.PHONY: tests fuzz check demo
