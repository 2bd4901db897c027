# Megaphone in C: one non-recursive Makefile.
#
#   make [all]            library (static + shared), tests, benchmarks
#   make test             install missing packages, build, run every TAP test under prove
#   make run              install missing packages, build, run the headline demo
#   make bench            build the benchmark programs
#   make valgrind         memcheck a small keycount and NEXMark run: no error, no leak
#   make deps             install the Debian packages the build needs (root), or print how
#   make install          PREFIX=/usr/local DESTDIR= : headers, libraries, megaphone.pc
#   make format-check     clang-format --dry-run over the sources
#
# Variants never share objects: SAN=address,undefined and DEBUG=1 build into
# build/<variant>/; the default variant builds into build/.  WERROR=1 makes
# warnings errors (CI sets it).  V=1 shows the commands.

SAN     ?=
DEBUG   ?= 0
WERROR  ?= 0
V       ?= 0
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
CFLAGS  ?= -O2 -g
TEST_TIMEOUT ?= 600

comma := ,
variant := $(if $(SAN),san-$(subst $(comma),-,$(SAN)))$(if $(filter 1,$(DEBUG)),$(if $(SAN),-)debug)
B := build$(if $(variant),/$(variant))

ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-6s %s\n' $(1) $(2)
endif

PKGS      := ck liburcu-qsbr liburcu-cds numa
TEST_PKGS := cmocka
DEB_PKGS  := build-essential pkg-config libck-dev liburcu-dev libnuma-dev numactl \
             libcmocka-dev gnuplot-nox jq

WARN := -Wall -Wextra -Wpedantic -Wshadow -Wundef -Wstrict-prototypes \
        -Wmissing-prototypes -Wcast-align -Wwrite-strings -Wformat=2 -Wvla \
        -Wimplicit-fallthrough -fno-common
ifeq ($(WERROR),1)
WARN += -Werror
endif

override CFLAGS += -std=c11 -D_GNU_SOURCE -pthread -fPIC -I. $(WARN) -MMD -MP
ifeq ($(DEBUG),1)
override CFLAGS += -O0 -DMG_DEBUG=1 -DMG_DEBUG_EXPENSIVE=1
endif
ifneq ($(SAN),)
override CFLAGS += -fsanitize=$(SAN) -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=$(SAN)
endif

# pkg-config is consulted lazily so that `make deps` works on a bare machine.
pc_cflags = $(shell pkg-config --cflags $(1) 2>/dev/null)
pc_libs   = $(shell pkg-config --libs $(1) 2>/dev/null)
override CFLAGS += $(call pc_cflags,$(PKGS))
LIBS      = $(call pc_libs,$(PKGS)) -pthread -lm
TEST_LIBS = $(call pc_libs,$(TEST_PKGS))

LIB_SRC   := $(sort $(wildcard numa/*.c queues/*.c migration/*.c engine/*.c))
LIB_OBJ   := $(LIB_SRC:%.c=$(B)/obj/%.o)
HEADERS   := $(filter-out %_pvt.h,$(sort $(wildcard numa/*.h queues/*.h migration/*.h engine/*.h)))
TEST_SRC  := $(sort $(wildcard tests/t-*.c tests/stress/s-*.c))
TEST_BIN  := $(TEST_SRC:%.c=$(B)/%)
TEST_COMMON_SRC := $(sort $(wildcard tests/mg_test*.c))
TEST_COMMON_OBJ := $(TEST_COMMON_SRC:%.c=$(B)/obj/%.o)
BENCH_COMMON_SRC := $(sort $(wildcard bench/bench_*.c))
BENCH_COMMON_OBJ := $(BENCH_COMMON_SRC:%.c=$(B)/obj/%.o)
BENCH_SRC := $(filter-out $(BENCH_COMMON_SRC),$(sort $(wildcard bench/*.c)))
BENCH_BIN := $(BENCH_SRC:%.c=$(B)/%)
# NEXMark's generator and queries: linked into bench/nexmark and the
# tests of bench code (tests/t-bench-*).
NEXMARK_SRC := $(sort $(wildcard bench/nexmark/*.c))
NEXMARK_OBJ := $(NEXMARK_SRC:%.c=$(B)/obj/%.o)
NEXMARK_USERS := $(B)/bench/nexmark $(filter $(B)/tests/t-bench-%,$(TEST_BIN))
STATIC    := $(B)/libmegaphone.a
SHARED    := $(B)/libmegaphone.so

.PHONY: all lib tests bench test valgrind run deps install uninstall clean format format-check
.DEFAULT_GOAL := all
# Objects are intermediate files of the pattern rules: keep them.
.SECONDARY:

all: lib tests bench
lib: $(STATIC) $(SHARED)
tests: $(TEST_BIN)
bench: $(BENCH_BIN)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(call msg,LD,$@)
	$(Q)$(CC) -shared $(LDFLAGS) -o $@ $^ $(LIBS)

$(NEXMARK_USERS): EXTRA_OBJ = $(NEXMARK_OBJ)
$(NEXMARK_USERS): $(NEXMARK_OBJ)

# t-migration-routing checks who calls liburcu's call_rcu: it interposes.
$(B)/tests/t-migration-routing: TEST_LDFLAGS = -Wl,--wrap=urcu_qsbr_call_rcu

$(B)/tests/%: $(B)/obj/tests/%.o $(TEST_COMMON_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $(TEST_LDFLAGS) -o $@ $< $(EXTRA_OBJ) $(TEST_COMMON_OBJ) $(STATIC) $(TEST_LIBS) $(LIBS)

$(B)/bench/%: $(B)/obj/bench/%.o $(BENCH_COMMON_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $< $(EXTRA_OBJ) $(BENCH_COMMON_OBJ) $(STATIC) $(LIBS)

# --- set-up -----------------------------------------------------------------
# Installs only what is missing; as non-root prints the command and fails.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" != 0 ]; then \
	  echo "make deps: missing packages:$$missing"; \
	  echo "run as root:  apt-get update && apt-get install -y$$missing"; exit 1; \
	fi; \
	echo "make deps: installing$$missing"; \
	apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq$$missing >/dev/null

# --- tests --------------------------------------------------------------------
# Each test binary prints TAP; prove runs them with a per-test timeout.
test: deps
	$(Q)$(MAKE) --no-print-directory tests
	$(Q)prove --exec 'timeout $(TEST_TIMEOUT)' $(PROVE_FLAGS) $(TEST_BIN)

# --- valgrind -----------------------------------------------------------------
# Memcheck over small runs of the benchmarks, with a migration and --validate
# (the reference operators run too): any error or leak fails (exit 1).  Only
# a build without sanitizers (SAN=) works under valgrind.  `ulimit -v`
# (VALGRIND_AS, KiB) makes the pools and the operators' buffers size their
# reservations to fit it (numa/mg_numa.h), as valgrind gives a program about
# 126 GiB of address space whatever the machine's memory.  Suppressions:
# tests/valgrind.supp, for what is not the project's, each with its reason.
VALGRIND_AS    ?= 67108864
VALGRIND_FLAGS ?= -q --error-exitcode=1 --leak-check=full \
                  --suppressions=tests/valgrind.supp
VALGRIND_RUNS   = "keycount --workers 2 --rate 20000 --duration 2 --domain 10000 \
                     --warmup 0 --migration all-at-once --migrate-at 0.5 --validate" \
                  "keycount --workers 2 --rate 20000 --duration 2 --domain 10000 \
                     --warmup 0 --migration all-at-once --migrate-at 0.5 --validate --mode copy" \
                  "nexmark --query q5 --rate 20000 --duration 2 --warmup 0 \
                     --migration all-at-once --migrate-at 0.5 --validate"
valgrind: deps
	@if [ -n "$(SAN)" ]; then echo "make valgrind: build without SAN=" >&2; exit 1; fi
	@command -v valgrind >/dev/null || { echo "make valgrind: run apt-get install valgrind" >&2; exit 1; }
	$(Q)$(MAKE) --no-print-directory bench
	$(Q)for r in $(VALGRIND_RUNS); do \
	  echo "valgrind $(B)/bench/$$r"; start=$$(date +%s%N); \
	  ( ulimit -v $(VALGRIND_AS) && valgrind $(VALGRIND_FLAGS) $(B)/bench/$$r >/dev/null ) || exit 1; \
	  echo "  clean: $$(( ($$(date +%s%N) - start) / 1000000 )) ms"; \
	done

# --- demo ---------------------------------------------------------------------
RUN_OUT ?= build/run
run: deps
	$(Q)$(MAKE) --no-print-directory all
	$(Q)./bench/run-demo $(B) $(RUN_OUT)

# --- install ------------------------------------------------------------------
install: lib
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include/megaphone
	install -m 644 $(STATIC) $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 engine/megaphone.h $(DESTDIR)$(PREFIX)/include/megaphone/
	for h in $(filter-out engine/megaphone.h,$(HEADERS)); do \
	  install -d $(DESTDIR)$(PREFIX)/include/megaphone/$$(dirname $$h); \
	  install -m 644 $$h $(DESTDIR)$(PREFIX)/include/megaphone/$$h; done
	sed -e 's|@PREFIX@|$(PREFIX)|' megaphone.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/megaphone.pc

uninstall:
	rm -rf $(DESTDIR)$(PREFIX)/include/megaphone $(DESTDIR)$(PREFIX)/lib/pkgconfig/megaphone.pc \
	       $(DESTDIR)$(PREFIX)/lib/libmegaphone.a $(DESTDIR)$(PREFIX)/lib/libmegaphone.so

clean:
	rm -rf build

FORMAT_SRC = $(LIB_SRC) $(HEADERS) $(wildcard numa/*_pvt.h queues/*_pvt.h migration/*_pvt.h engine/*_pvt.h) \
             $(TEST_SRC) $(TEST_COMMON_SRC) $(wildcard tests/*.h) $(BENCH_SRC) $(BENCH_COMMON_SRC) $(wildcard bench/*.h) \
             $(NEXMARK_SRC) $(wildcard bench/nexmark/*.h)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

-include $(wildcard $(B)/obj/*/*.d $(B)/obj/*/*/*.d)
