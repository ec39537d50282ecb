# environd build. `make` builds build/environd; `make test` runs every suite.
CC      ?= cc
PKGS    := libmicrohttpd jansson sqlite3 libcurl libcrypto
# CFLAGS is the user's (optimization, sanitizers); the project's own flags always apply.
CFLAGS  ?= -O2 -g
WARN    := -Wall -Wextra -Werror -Wshadow -Wno-unused-parameter
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -Isrc $(shell pkg-config --cflags $(PKGS)) $(CFLAGS)
LDLIBS  += $(shell pkg-config --libs $(PKGS)) -lpthread -lm
SANITIZE := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

BUILD   ?= build
SRCS    := $(shell find src -name '*.c' ! -path 'src/cli/main.c' | sort)
OBJS    := $(SRCS:%.c=$(BUILD)/%.o)
UNIT_SRCS := $(shell find tests/unit -name 'test_*.c' | sort)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all test unit sdk asan clean deps
all: $(BUILD)/environd

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libenvirond.a: $(OBJS)
	$(AR) rcs $@ $^

$(BUILD)/environd: $(BUILD)/src/cli/main.o $(BUILD)/libenvirond.a
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libenvirond.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) $< $(BUILD)/libenvirond.a $(LDLIBS) -lcmocka -o $@

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

sdk: $(BUILD)/environd
	cd tests/sdk && ENVIROND_BIN=$(abspath $(BUILD)/environd) npm test

# The whole suite: unit tests and SDK tests on a normal build, then the unit tests
# and SDK tests again under AddressSanitizer + UndefinedBehaviorSanitizer.
test:
	$(MAKE) unit sdk
	$(MAKE) BUILD=build-asan CFLAGS="$(SANITIZE)" unit sdk

asan:
	$(MAKE) BUILD=build-asan CFLAGS="$(SANITIZE)" all

deps:
	scripts/install-deps

clean:
	rm -rf build build-asan

-include $(OBJS:.o=.d)
