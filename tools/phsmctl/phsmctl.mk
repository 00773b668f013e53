# SPDX-License-Identifier: MIT
# phsmctl: the admin tool (list the cards, show a card's partitions and
# identity).  Needs libpci and libcrypto (installed by scripts/install-deps.sh).

PHSMCTL_SRCS := $(wildcard tools/phsmctl/*.c) $(CODEC_SRCS)
PHSMCTL_BIN := $(BUILD)/bin/phsmctl
PHSMCTL_LIBS := $(shell pkg-config --libs libpci 2>/dev/null || echo -lpci)

$(call objs,$(wildcard tools/phsmctl/*.c)): \
	CPPFLAGS += $(shell pkg-config --cflags libpci 2>/dev/null)

$(PHSMCTL_BIN): $(call objs,$(PHSMCTL_SRCS))
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(PHSMCTL_LIBS) -lcrypto $(LDLIBS)

all: $(PHSMCTL_BIN)

.PHONY: phsmctl
phsmctl: $(PHSMCTL_BIN)
