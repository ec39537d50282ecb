# environd build. `make` builds build/environd; `make test` runs every suite.
CC      ?= cc
PKGS    := libmicrohttpd jansson sqlite3 libpq libcurl libcrypto
# CFLAGS is the user's (optimization, sanitizers); the project's own flags always apply.
CFLAGS  ?= -O2 -g
# Warnings are errors in development and CI (`make test`, `make dev`, scripts/test), not for
# someone building a release with a compiler newer than ours: `make WERROR=` is the default.
WERROR  ?=
WARN    := -Wall -Wextra $(WERROR) -Wshadow -Wno-unused-parameter

PREFIX  ?= /usr/local
BINDIR  ?= $(PREFIX)/bin
SYSTEMD_UNIT_DIR ?= $(PREFIX)/lib/systemd/system
SYSUSERS_DIR     ?= $(PREFIX)/lib/sysusers.d
DESTDIR ?=

# pkg-config runs once per make, not once per compile. A missing library is named with the
# Debian package that provides it.
NO_PKG_GOALS := clean deps install-deps
ifneq ($(filter-out $(NO_PKG_GOALS),$(or $(MAKECMDGOALS),all)),)
ifeq ($(shell command -v pkg-config),)
$(error pkg-config is not installed: apt-get install pkg-config (or run scripts/install-deps))
endif
ifeq ($(shell command -v xxd),)
$(error xxd is not installed (it embeds the web console): apt-get install xxd (or run scripts/install-deps))
endif
PKG_DEB_libmicrohttpd := libmicrohttpd-dev
PKG_DEB_jansson       := libjansson-dev
PKG_DEB_sqlite3       := libsqlite3-dev
PKG_DEB_libpq         := libpq-dev
PKG_DEB_libcurl       := libcurl4-openssl-dev
PKG_DEB_libcrypto     := libssl-dev
PKGS_MISSING := $(strip $(foreach p,$(PKGS),$(if $(shell pkg-config --exists $(p) && echo ok),,$(p))))
ifneq ($(PKGS_MISSING),)
$(error missing libraries: $(PKGS_MISSING); install with: apt-get install $(foreach p,$(PKGS_MISSING),$(PKG_DEB_$(p))) (or run scripts/install-deps))
endif
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
endif
ALL_CFLAGS = -std=c11 -D_GNU_SOURCE $(WARN) -Isrc $(PKG_CFLAGS) $(CFLAGS)
LDLIBS  += $(PKG_LIBS) -lpthread -lm
SANITIZE := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all

BUILD   ?= build
SRCS    := $(shell find src -name '*.c' ! -path 'src/cli/main.c' | sort)
OBJS    := $(SRCS:%.c=$(BUILD)/%.o)
# The web console's files, embedded into the binary as a generated C table (console.c
# serves them). The directory is a prerequisite too, so adding or removing a file rebuilds.
CONSOLE_FILES := $(sort $(wildcard console/*))
CONSOLE_GEN   := $(BUILD)/gen/console_files.c
UNIT_SRCS := $(shell find tests/unit -name 'test_*.c' | sort)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all dev test unit unit-build oom sdk sdk-pg fleet asan clean deps fuzz fuzz-smoke install uninstall install-check \
	mutants store-conformance store-conformance-pg
all: $(BUILD)/environd

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -MMD -MP -c $< -o $@

$(CONSOLE_GEN): scripts/embed-console $(CONSOLE_FILES) console
	@mkdir -p $(dir $@)
	scripts/embed-console $@ $(CONSOLE_FILES)

$(CONSOLE_GEN:.c=.o): $(CONSOLE_GEN) src/api/console_files.h
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/libenvirond.a: $(OBJS) $(CONSOLE_GEN:.c=.o)
	$(AR) rcs $@ $^

$(BUILD)/environd: $(BUILD)/src/cli/main.o $(BUILD)/libenvirond.a
	$(CC) $(ALL_CFLAGS) $^ $(LDLIBS) -o $@

# UNIT_EXTRA: objects and link options added to every unit test (the out-of-memory sweep).
UNIT_EXTRA ?=
UNIT_EXTRA_OBJS = $(filter %.o,$(UNIT_EXTRA))
$(BUILD)/tests/%: tests/unit/%.c tests/unit/repeat.h $(BUILD)/libenvirond.a $(UNIT_EXTRA_OBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/unit $< $(UNIT_EXTRA) $(BUILD)/libenvirond.a $(LDLIBS) -lcmocka -o $@

unit: $(UNIT_BINS)
	@set -e; for t in $(UNIT_BINS); do echo "== $$t"; $$t; done

unit-build: $(UNIT_BINS)

# The store conformance suite (tests/store): one binary, run unchanged against every
# backend. On SQLite by default; store-conformance-pg starts a throwaway PostgreSQL
# cluster (scripts/pg-cluster) and fails, never skips, when it cannot.
STORE_CONF_SRCS := $(sort $(wildcard tests/store/*.c))
STORE_CONF_BIN  := $(BUILD)/tests/store/conformance
$(STORE_CONF_BIN): $(STORE_CONF_SRCS) tests/store/conformance.h $(BUILD)/libenvirond.a
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests/store $(STORE_CONF_SRCS) $(BUILD)/libenvirond.a $(LDLIBS) -lcmocka -o $@

store-conformance: $(STORE_CONF_BIN)
	$(STORE_CONF_BIN)

store-conformance-pg: $(STORE_CONF_BIN)
	scripts/store-conformance-pg $(STORE_CONF_BIN)

# The out-of-memory sweep: the unit tests, under ASan+UBSan, linked so that every
# allocation of environd's code and of jansson goes through tests/oom/failalloc.c; each
# test binary is run once per allocation with that allocation failing (scripts/oom-sweep).
# No crash, sanitizer report or hang is allowed. Separate from `make test` (it takes longer).
OOM_BUILD := build-oom
OOM_WRAP := -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup
oom:
	$(MAKE) WERROR=-Werror BUILD=$(OOM_BUILD) CFLAGS="$(SANITIZE)" \
		UNIT_EXTRA="$(OOM_BUILD)/tests/oom/failalloc.o $(OOM_WRAP)" unit-build
	scripts/oom-sweep $(OOM_BUILD)

sdk: $(BUILD)/environd
	cd tests/sdk && ENVIROND_BIN=$(abspath $(BUILD)/environd) npm test

# The SDK suite on PostgreSQL: a throwaway cluster (scripts/pg-cluster) in a temp dir,
# stopped and removed however the suite ends; every test server gets a database of its
# own on it (ENVIROND_TEST_PG, tests/sdk/lib/pg.js). Fails, never skips, when PostgreSQL
# cannot start.
sdk-pg: $(BUILD)/environd
	@set -e; dir=$$(mktemp -d "$${TMPDIR:-/tmp}/environd-pg.XXXXXX"); \
	trap '$(CURDIR)/scripts/pg-cluster stop "$$dir" || true; rm -rf "$$dir"' EXIT; trap 'exit 130' INT TERM; \
	url=$$($(CURDIR)/scripts/pg-cluster start "$$dir"); \
	echo "sdk-pg: PostgreSQL at $$url"; \
	cd tests/sdk && ENVIROND_TEST_PG="$$url" ENVIROND_BIN=$(abspath $(BUILD)/environd) npm test

# The fleet suite: three `environd serve` nodes on one PostgreSQL database of a throwaway
# cluster (scripts/pg-cluster, in a temp dir, stopped on exit). PostgreSQL that cannot
# start fails the target; it is never skipped.
fleet: $(BUILD)/environd
	@set -e; tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/environd-fleet.XXXXXX"); chmod 0755 "$$tmp"; \
	trap 'scripts/pg-cluster stop "$$tmp/cluster"; rm -rf "$$tmp"' EXIT; \
	scripts/pg-cluster start "$$tmp/cluster" >/dev/null; \
	ENVIROND_BIN=$(abspath $(BUILD)/environd) ENVIROND_FLEET_PG_DIR="$$tmp/cluster" node tests/fleet/run-tests.js

# A development build: warnings are errors.
dev:
	$(MAKE) WERROR=-Werror all

# The whole suite: unit tests, the store conformance suite (SQLite and PostgreSQL), the SDK
# tests (on SQLite, then on PostgreSQL) and the fleet suite on a normal build, the fuzzers'
# short runs (after the SDK tests: the in-process server fuzzer would load the machine under
# their timing), the install check, then the unit tests, the conformance suite on SQLite
# and the SDK tests again under AddressSanitizer + UndefinedBehaviorSanitizer, then the
# mutation check. Warnings are errors.
test:
	$(MAKE) WERROR=-Werror unit store-conformance store-conformance-pg sdk
	$(MAKE) WERROR=-Werror sdk-pg fleet
	$(MAKE) WERROR=-Werror fuzz-smoke install-check
	$(MAKE) WERROR=-Werror BUILD=build-asan CFLAGS="$(SANITIZE)" unit store-conformance sdk
	scripts/mutants --no-baseline   # the suites above just passed unmutated

# The mutation check: each guarantee in tests/mutants/list is switched off in a private
# copy of the tree and its tests must fail (scripts/mutants).
mutants:
	scripts/mutants

asan:
	$(MAKE) WERROR=-Werror BUILD=build-asan CFLAGS="$(SANITIZE)" all

# Installs the binary, the systemd units (with BINDIR filled in) and the sysusers.d entry
# under $(DESTDIR)$(PREFIX). Into the live system (no DESTDIR) it also creates the users.
install: $(BUILD)/environd
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)$(SYSUSERS_DIR)
	install -m 0755 $(BUILD)/environd $(DESTDIR)$(BINDIR)/environd
	sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/environd.service.in > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/environd.service
	sed 's|@BINDIR@|$(BINDIR)|g' dist/systemd/environd-worker@.service.in > $(DESTDIR)$(SYSTEMD_UNIT_DIR)/environd-worker@.service
	chmod 0644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/environd.service $(DESTDIR)$(SYSTEMD_UNIT_DIR)/environd-worker@.service
	install -m 0644 dist/sysusers.d/environd.conf $(DESTDIR)$(SYSUSERS_DIR)/environd.conf
	@if [ -z "$(DESTDIR)" ] && command -v systemd-sysusers >/dev/null 2>&1; then \
	  systemd-sysusers $(SYSUSERS_DIR)/environd.conf; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/environd $(DESTDIR)$(SYSTEMD_UNIT_DIR)/environd.service \
	      $(DESTDIR)$(SYSTEMD_UNIT_DIR)/environd-worker@.service $(DESTDIR)$(SYSUSERS_DIR)/environd.conf

# `make install DESTDIR=…` into a temp dir, then the installed binary serves and the
# installed units pass systemd-analyze verify (part of `make test`).
install-check: $(BUILD)/environd
	tests/install/check $(BUILD)

# libFuzzer targets (clang): each links the pure modules it exercises.
FUZZ_CFLAGS := -g -O1 -fsanitize=fuzzer,address,undefined -std=c11 -D_GNU_SOURCE $(WARN) -Isrc \
	       $(shell pkg-config --cflags jansson)
FUZZ_COMMON := src/common/err.c src/common/buf.c src/common/clock.c src/common/secret.c src/common/ids.c \
	       src/common/jsonw.c
build-fuzz/fuzz_body: tests/fuzz/fuzz_body.c $(FUZZ_COMMON) src/model/environment.c src/model/metadata.c src/model/fields.c \
		      src/model/json_bound.c
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $^ $(shell pkg-config --libs jansson libcrypto) -o $@
build-fuzz/fuzz_cursor: tests/fuzz/fuzz_cursor.c $(FUZZ_COMMON) src/model/cursor.c
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $^ $(shell pkg-config --libs libcrypto) -o $@
build-fuzz/fuzz_route: tests/fuzz/fuzz_route.c src/http/router.c src/common/utf8.c
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $^ -o $@
build-fuzz/fuzz_sse: tests/fuzz/fuzz_sse.c src/client/sse.c src/common/buf.c
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $^ -o $@
# Whole raw requests through the real server, in process (tests/fuzz/fuzz_request.c):
# every module but main, built with the fuzzer's instrumentation.
build-fuzz/fuzz_request: tests/fuzz/fuzz_request.c $(SRCS) $(CONSOLE_GEN)
	@mkdir -p build-fuzz
	clang $(FUZZ_CFLAGS) $(PKG_CFLAGS) $^ $(LDLIBS) -o $@
FUZZERS := build-fuzz/fuzz_body build-fuzz/fuzz_cursor build-fuzz/fuzz_route build-fuzz/fuzz_sse build-fuzz/fuzz_request
fuzz: $(FUZZERS)

# A short, bounded run of every fuzzer over its corpus (part of `make test`).
fuzz-smoke: $(FUZZERS)
	@set -e; for f in body cursor route sse; do \
	  echo "== fuzz_$$f"; mkdir -p build-fuzz/corpus-$$f; \
	  build-fuzz/fuzz_$$f -runs=200000 -max_len=4096 -timeout=10 build-fuzz/corpus-$$f tests/fuzz/corpus/$$f \
	    > build-fuzz/fuzz_$$f.log 2>&1 || { tail -n 60 build-fuzz/fuzz_$$f.log; exit 1; }; \
	  tail -n 2 build-fuzz/fuzz_$$f.log; \
	done
	@echo "== fuzz_request"; mkdir -p build-fuzz/corpus-request; \
	build-fuzz/fuzz_request -runs=1000 -max_len=8192 -timeout=20 build-fuzz/corpus-request tests/fuzz/corpus/request \
	  > build-fuzz/fuzz_request.log 2>&1 || { tail -n 60 build-fuzz/fuzz_request.log; exit 1; }; \
	tail -n 2 build-fuzz/fuzz_request.log

deps:
	scripts/install-deps

clean:
	rm -rf build build-asan build-fuzz build-oom

-include $(OBJS:.o=.d)
