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

.PHONY: all test unit sdk asan clean deps fuzz fuzz-smoke mutants
all: $(BUILD)/environd

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libenvirond.a: $(OBJS)
	$(AR) rcs $@ $^

$(BUILD)/environd: $(BUILD)/src/cli/main.o $(BUILD)/libenvirond.a
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c tests/unit/repeat.h $(BUILD)/libenvirond.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $< $(BUILD)/libenvirond.a $(LDLIBS) -lcmocka -o $@

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

sdk: $(BUILD)/environd
	cd tests/sdk && ENVIROND_BIN=$(abspath $(BUILD)/environd) npm test

# The whole suite: unit tests and SDK tests on a normal build, then the unit tests
# and SDK tests again under AddressSanitizer + UndefinedBehaviorSanitizer, then the
# mutation check.
test:
	$(MAKE) unit sdk fuzz-smoke
	$(MAKE) BUILD=build-asan CFLAGS="$(SANITIZE)" unit sdk
	scripts/mutants --no-baseline   # the suites above just passed unmutated

# The mutation check: each guarantee in tests/mutants/list is switched off in a private
# copy of the tree and its tests must fail (scripts/mutants).
mutants:
	scripts/mutants

asan:
	$(MAKE) BUILD=build-asan CFLAGS="$(SANITIZE)" all

# libFuzzer targets (clang): each links the pure modules it exercises.
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE $(WARN) -Isrc \
	       $(shell pkg-config --cflags jansson)
FUZZ_COMMON := src/common/err.c src/common/buf.c src/common/clock.c src/common/secret.c src/common/ids.c \
	       src/common/jsonw.c
build-fuzz/fuzz_body: tests/fuzz/fuzz_body.c $(FUZZ_COMMON) src/model/environment.c src/model/metadata.c src/model/fields.c
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $^ $(shell pkg-config --libs jansson libcrypto) -o $@
build-fuzz/fuzz_cursor: tests/fuzz/fuzz_cursor.c $(FUZZ_COMMON) src/model/cursor.c
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $^ $(shell pkg-config --libs libcrypto) -o $@
build-fuzz/fuzz_route: tests/fuzz/fuzz_route.c src/http/router.c
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $^ -o $@
FUZZERS := build-fuzz/fuzz_body build-fuzz/fuzz_cursor build-fuzz/fuzz_route
fuzz: $(FUZZERS)

# A short, bounded run of every fuzzer over its corpus (part of `make test`).
fuzz-smoke: $(FUZZERS)
	@set -e; for f in body cursor route; do \
	  echo "== fuzz_$$f"; mkdir -p build-fuzz/corpus-$$f; \
	  build-fuzz/fuzz_$$f -runs=200000 -max_len=4096 -timeout=10 build-fuzz/corpus-$$f tests/fuzz/corpus/$$f \
	    > build-fuzz/fuzz_$$f.log 2>&1 || { tail -n 60 build-fuzz/fuzz_$$f.log; exit 1; }; \
	  tail -n 2 build-fuzz/fuzz_$$f.log; \
	done

deps:
	scripts/install-deps

clean:
	rm -rf build build-asan build-fuzz

-include $(OBJS:.o=.d)
