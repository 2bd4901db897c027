# Megaphone in C: one non-recursive Makefile.
#
#   make [all]            library (static + shared), tests, benchmarks, examples
#   make test             install missing packages, build, run every TAP test under prove
#                         (with the fault tests of the DEBUG=1 build: see "tests")
#   make run              install missing packages, build, run the headline demo
#   make bench            build the benchmark programs
#   make valgrind         memcheck a small keycount and NEXMark run: no error, no leak
#   make deps             install the Debian packages the build needs (root), or print how
#   make install          PREFIX=/usr/local DESTDIR= : megaphone.h, libraries, megaphone.pc
#   make format-check     clang-format --dry-run over the sources
#   make fuzz             build the libFuzzer harnesses of tests/fuzz/ with
#                         clang into build/fuzz/, run each FUZZ_SECONDS (60)
#   make check-model      spin: verify the handoff and elastic models, and that it
#                         catches every seeded bug (tests/model/*.pml)
#   make check-long       10^4 random migration plans against the reference
#                         (CHECK_LONG_PLANS; tests/long/l-migration.c); not in CI,
#                         which runs the first plans in `make test`
#
# Variants never share objects: SAN=address,undefined, SAN=thread and DEBUG=1
# build into build/<variant>/; the default variant builds into build/.
# SAN=thread (ThreadSanitizer; not combinable with address) runs the tests
# with tests/tsan.supp and TSAN_OPTIONS below.  WERROR=1 makes
# warnings errors (CI sets it).  V=1 shows the commands.  FUZZ=1 is the
# variant `make fuzz` builds: clang, libFuzzer's coverage, ASan and UBSan,
# in build/fuzz/.

SAN     ?=
DEBUG   ?= 0
WERROR  ?= 0
V       ?= 0
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
CFLAGS  ?= -O2 -g
TEST_TIMEOUT ?= 600

FUZZ    ?= 0
FUZZ_SECONDS ?= 60

comma := ,
variant := $(if $(SAN),san-$(subst $(comma),-,$(SAN)))$(if $(filter 1,$(DEBUG)),$(if $(SAN),-)debug)
ifeq ($(FUZZ),1)
variant := fuzz
CC      := clang
SAN     :=
endif
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
             libcmocka-dev gnuplot-nox jq spin

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
# ThreadSanitizer does not model standalone fences; gcc says so at every
# atomic_thread_fence (-Wtsan).  The fences that hand data over (the
# channels' ring.R1..A2) are annotated for it instead (MG_TSAN_*,
# numa/mg_base.h); the seq_cst ones only keep wake-ups from being lost.  So
# the warning is off where the compiler has it (clang has no -Wtsan).
ifneq ($(filter thread,$(subst $(comma), ,$(SAN))),)
override CFLAGS += $(shell $(CC) -Werror -Wtsan -E -x c /dev/null >/dev/null 2>&1 && echo -Wno-tsan)
endif
ifeq ($(FUZZ),1)
override CFLAGS += -fsanitize=fuzzer-no-link,address,undefined \
                   -fno-omit-frame-pointer -fno-sanitize-recover=all
override LDFLAGS += -fsanitize=address,undefined
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
# The one installed header: engine/megaphone.h with the public fragments it
# includes (numa/mg_api.h, migration/mg_containers.h, migration/mg_plan.h,
# migration/mg_balance.h)
# inlined, so an application compiles against it alone.
PUBLIC_H  := $(B)/include/megaphone.h
PUBLIC_FRAGMENTS := engine/megaphone.h numa/mg_api.h migration/mg_containers.h migration/mg_plan.h \
                    migration/mg_balance.h
VERSION   := $(shell sed -n 's/^\#define MG_VERSION[ \t]*"\(.*\)"/\1/p' engine/megaphone.h)
SOVERSION := $(firstword $(subst ., ,$(VERSION)))
EXAMPLE_SRC := $(sort $(wildcard examples/*.c))
EXAMPLE_BIN := $(EXAMPLE_SRC:%.c=$(B)/%)
TEST_SRC  := $(sort $(wildcard tests/t-*.c tests/stress/s-*.c))
TEST_BIN  := $(TEST_SRC:%.c=$(B)/%)
TEST_SH   := $(sort $(wildcard tests/t-*.sh))
# Long campaigns (tests/long/l-*.c): built with the tests, run by `make
# check-long` only.
LONG_SRC  := $(sort $(wildcard tests/long/l-*.c))
LONG_BIN  := $(LONG_SRC:%.c=$(B)/%)
TEST_COMMON_SRC := $(sort $(wildcard tests/mg_test*.c))
TEST_COMMON_OBJ := $(TEST_COMMON_SRC:%.c=$(B)/obj/%.o)
BENCH_COMMON_SRC := $(sort $(wildcard bench/bench_*.c))
BENCH_COMMON_OBJ := $(BENCH_COMMON_SRC:%.c=$(B)/obj/%.o)
BENCH_SRC := $(filter-out $(BENCH_COMMON_SRC),$(sort $(wildcard bench/*.c)))
BENCH_BIN := $(BENCH_SRC:%.c=$(B)/%)
# NEXMark's generator and queries: linked into bench/nexmark and the
# tests of bench code (tests/t-bench-*), which also get the benchmarks'
# shared code; t-bench-cli runs the built programs.
NEXMARK_SRC := $(sort $(wildcard bench/nexmark/*.c))
NEXMARK_OBJ := $(NEXMARK_SRC:%.c=$(B)/obj/%.o)
BENCH_TESTS := $(filter $(B)/tests/t-bench-%,$(TEST_BIN))
NEXMARK_USERS := $(B)/bench/nexmark $(BENCH_TESTS)
# Fuzz harnesses (tests/fuzz/fuzz-<name>.c, seeds and a dictionary in
# tests/fuzz/<name>/): linked with libFuzzer by `make fuzz`, and with
# tests/fuzz/replay.c into the TAP test t-fuzz-<name>, which replays the
# corpus under `make test`.
FUZZ_SRC   := $(sort $(wildcard tests/fuzz/fuzz-*.c))
FUZZ_NAMES := $(FUZZ_SRC:tests/fuzz/fuzz-%.c=%)
FUZZ_BIN   := $(FUZZ_NAMES:%=$(B)/fuzz-%)
REPLAY_BIN := $(FUZZ_NAMES:%=$(B)/tests/fuzz/t-fuzz-%)
TEST_BIN   += $(REPLAY_BIN)
STATIC    := $(B)/libmegaphone.a
SHARED    := $(B)/libmegaphone.so.$(VERSION)
SONAME    := libmegaphone.so.$(SOVERSION)

.PHONY: all lib tests bench examples test valgrind run deps install uninstall clean format \
        format-check fuzz fuzz-build check-model check-long
.DEFAULT_GOAL := all
# Objects are intermediate files of the pattern rules: keep them.
.SECONDARY:

all: lib tests bench examples
lib: $(STATIC) $(SHARED) $(PUBLIC_H)
tests: $(TEST_BIN) $(LONG_BIN)
bench: $(BENCH_BIN)
examples: $(EXAMPLE_BIN)

# Only what megaphone.h declares (MG_API) is exported from the shared
# library: everything else is compiled hidden.
$(LIB_OBJ): override CFLAGS += -fvisibility=hidden

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(call msg,CC,$<)
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(STATIC): $(LIB_OBJ)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(SHARED): $(LIB_OBJ)
	$(call msg,LD,$@)
	$(Q)$(CC) -shared -Wl,-soname,$(SONAME) $(LDFLAGS) -o $@ $^ $(LIBS)
	$(Q)ln -sf $(notdir $@) $(B)/$(SONAME) && ln -sf $(SONAME) $(B)/libmegaphone.so

$(PUBLIC_H): $(PUBLIC_FRAGMENTS)
	$(call msg,GEN,$@)
	@mkdir -p $(dir $@)
	$(Q)awk 'function emit(f,  line, inc) { \
		while ((getline line < f) > 0) { \
			if (match(line, /^#include "[a-z]+\/[a-z_]+\.h"/)) { \
				inc = substr(line, 11, RLENGTH - 11); \
				if (!(inc in seen)) { seen[inc] = 1; emit(inc) } \
			} else print line; \
		} close(f) } \
		BEGIN { print "/* Generated from engine/megaphone.h and the fragments it includes. */"; \
			emit("engine/megaphone.h") }' > $@.tmp && mv $@.tmp $@

# Examples compile against the generated header alone, as users do.
$(B)/examples/%: examples/%.c $(PUBLIC_H) $(STATIC)
	@mkdir -p $(dir $@)
	$(call msg,CC,$@)
	$(Q)$(CC) $(filter-out -I.,$(CFLAGS)) -I$(B)/include $(LDFLAGS) -o $@ $< $(STATIC) $(LIBS)

$(NEXMARK_USERS): EXTRA_OBJ = $(NEXMARK_OBJ)
$(NEXMARK_USERS): $(NEXMARK_OBJ)
$(BENCH_TESTS): EXTRA_OBJ += $(BENCH_COMMON_OBJ)
$(BENCH_TESTS): $(BENCH_COMMON_OBJ)

# t-migration-routing checks who calls liburcu's call_rcu: it interposes.
$(B)/tests/t-migration-routing: TEST_LDFLAGS = -Wl,--wrap=urcu_qsbr_call_rcu

$(B)/tests/%: $(B)/obj/tests/%.o $(TEST_COMMON_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) $(TEST_LDFLAGS) -o $@ $< $(EXTRA_OBJ) $(TEST_COMMON_OBJ) $(STATIC) $(TEST_LIBS) $(LIBS)

$(REPLAY_BIN): $(B)/tests/fuzz/t-fuzz-%: $(B)/obj/tests/fuzz/fuzz-%.o $(B)/obj/tests/fuzz/replay.o \
               $(BENCH_COMMON_OBJ) $(STATIC)
	@mkdir -p $(dir $@)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(STATIC) $(LIBS)

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
# Allocation failure injection and the knob that shrinks the operators'
# buffers exist in debug builds only (numa/mg_fault.h), and the tests that
# use them skip elsewhere: so the tests of any other variant include these
# tests from the debug build with the same sanitizers.
FAULT_TESTS := tests/t-numa-fault tests/t-engine-fault tests/t-engine-limits
FAULT_BIN   :=
ifneq ($(DEBUG),1)
ifneq ($(FUZZ),1)
FAULT_BIN   := $(FAULT_TESTS:%=build/$(if $(SAN),san-$(subst $(comma),-,$(SAN))-)debug/%)
endif
endif

# MG_BUILD tells the shell tests which variant's programs to drive.  Under
# SAN=thread a report fails the test at once (halt_on_error); the only
# suppressions are tests/tsan.supp's, each with its reason.
TSAN_OPTIONS ?= halt_on_error=1 second_deadlock_stack=1 \
                suppressions=$(CURDIR)/tests/tsan.supp
test: deps
	$(Q)$(MAKE) --no-print-directory tests bench examples
ifneq ($(FAULT_BIN),)
	$(Q)$(MAKE) --no-print-directory DEBUG=1 $(FAULT_BIN)
endif
	$(Q)MG_BUILD=$(CURDIR)/$(B) TSAN_OPTIONS='$(TSAN_OPTIONS)' \
	  prove --exec 'timeout $(TEST_TIMEOUT)' $(PROVE_FLAGS) $(TEST_BIN) $(TEST_SH) $(FAULT_BIN)

# --- the long campaign -------------------------------------------------------
# CHECK_LONG_PLANS random migration plans (tests/mg_test_drive.h: run_plan),
# each in a child process, against the reference; a progress line every
# 100 plans, each failure with the seed and plan that replay it, the time
# taken at the end.  MG_SEED, MG_JOBS, MG_MAX_FAILS: see the file.  No
# timeout: the runs' own watchdogs judge progress, not time.
CHECK_LONG_PLANS ?= 10000
check-long: deps
	$(Q)$(MAKE) --no-print-directory $(LONG_BIN)
	$(Q)for t in $(LONG_BIN); do \
	  MG_PLANS=$(CHECK_LONG_PLANS) $$t || exit 1; \
	done

# --- fuzzing -------------------------------------------------------------------
# Each harness runs FUZZ_SECONDS on its seeds (tests/fuzz/<name>/corpus,
# read only) and what it found before (build/fuzz/corpus/<name>, where new
# inputs go), with its dictionary.  A crash leaves build/fuzz/crash-<name>-*
# and fails the target after every harness ran; the figures of each run are
# in build/fuzz/<name>.log and summed up at the end.
fuzz: deps
	$(Q)command -v clang >/dev/null || { echo "make fuzz: needs clang (apt-get install clang)"; exit 1; }
	$(Q)$(MAKE) --no-print-directory FUZZ=1 fuzz-build
	$(Q)rc=0; for n in $(FUZZ_NAMES); do \
	  mkdir -p build/fuzz/corpus/$$n; \
	  echo "  FUZZ   $$n for $(FUZZ_SECONDS) s"; \
	  ./build/fuzz/fuzz-$$n -max_total_time=$(FUZZ_SECONDS) -timeout=10 \
	    -print_final_stats=1 -dict=tests/fuzz/$$n/$$n.dict \
	    -artifact_prefix=build/fuzz/crash-$$n- \
	    build/fuzz/corpus/$$n tests/fuzz/$$n/corpus > build/fuzz/$$n.log 2>&1 || rc=1; \
	done; \
	for n in $(FUZZ_NAMES); do \
	  printf '%-6s %s, corpus %s files, crashes %s\n' $$n \
	    "$$(grep -E '^Done [0-9]+ runs' build/fuzz/$$n.log || echo 'did not finish')" \
	    "$$(ls build/fuzz/corpus/$$n | wc -l)" \
	    "$$(ls build/fuzz/ | grep -c "^crash-$$n-" || true)"; \
	done; exit $$rc

fuzz-build: $(FUZZ_BIN)

$(FUZZ_BIN): $(B)/fuzz-%: $(B)/obj/tests/fuzz/fuzz-%.o $(BENCH_COMMON_OBJ) $(STATIC)
	$(call msg,LD,$@)
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $(filter %.o,$^) $(STATIC) $(LIBS)

# --- model check --------------------------------------------------------------
# tests/model/handoff.pml (the per-bin handoff), elastic.pml (parking and
# waking a worker) and migwait.pml (mg_migration_wait() and its wake-ups),
# verified exhaustively by spin.  Each run is
# name:expect:defines[:model] (defines comma-separated, for spin -D; the
# model's file name without .pml, handoff if none).  A "pass" run must
# verify with 0 errors; a "fail" run has a seeded bug and must report one
# (an assertion or an invalid end state).  Each run builds its verifier in
# build/model/<name>/, where a counterexample can be replayed:
#   cd build/model/<name> && spin -t -p -D<define> ... handoff.pml
# Runs are independent targets: `make -j2 check-model` runs two at a time.
# Like `make test`, it first installs what is missing (spin) with `make deps`.
MODEL_DIR  := build/model
MODEL_PAN  ?= -m10000 -w22
MODEL_RUNS := basic:pass:CFG_BASIC \
              basic-fifo:pass:CFG_BASIC,FIFO \
              chain:pass:CFG_CHAIN \
              chain-copy:pass:CFG_CHAIN,COPY \
              fold:pass:CFG_FOLD \
              early-release:fail:CFG_BASIC,BUG_EARLY_RELEASE \
              late-release:fail:CFG_CHAIN,BUG_LATE_RELEASE \
              no-defer:fail:CFG_CHAIN,BUG_NO_DEFER \
              no-hold:fail:CFG_BASIC,BUG_NO_HOLD \
              frontier-first:fail:CFG_BASIC,BUG_FRONTIER_FIRST \
              learn-first:fail:CFG_BASIC,BUG_LEARN_FIRST \
              copy-drop-timers:fail:CFG_CHAIN,COPY,BUG_COPY_DROP_TIMERS \
              fold-any-order:fail:CFG_FOLD,BUG_FOLD_ANY_ORDER \
              elastic:pass:NOPS=6:elastic \
              elastic-sleep-on:fail:BUG_SLEEP_ON_PARK_REQ:elastic \
              elastic-hint-late:fail:BUG_HINT_AFTER_CAS:elastic \
              migwait:pass:NWAIT=2:migwait \
              migwait-halt:pass:HALT:migwait \
              migwait-count-late:fail:BUG_COUNT_LATE:migwait \
              migwait-seq-late:fail:BUG_SEQ_LATE:migwait \
              migwait-no-exit:fail:BUG_NO_EXIT_WAKE:migwait

model_part = $(word $(2),$(subst :, ,$(1)))
model_defs = $(addprefix -D,$(subst $(comma), ,$(call model_part,$(1),3)))
model_file = $(or $(call model_part,$(1),4),handoff).pml

# $(1): one entry of MODEL_RUNS
define model_rules
$(MODEL_DIR)/$(call model_part,$(1),1)/pan: tests/model/$(call model_file,$(1)) Makefile | deps
	@rm -rf $$(@D) && mkdir -p $$(@D) && cp $$< $$(@D)/
	$$(call msg,SPIN,$$(@D))
	$(Q)cd $$(@D) && spin -a $(call model_defs,$(1)) $(call model_file,$(1)) >spin.log 2>&1 || { cat spin.log; exit 1; }
	$(Q)cd $$(@D) && $$(CC) -O2 -DSAFETY -o pan pan.c >cc.log 2>&1 || { cat cc.log; exit 1; }

.PHONY: model-$(call model_part,$(1),1)
model-$(call model_part,$(1),1): $(MODEL_DIR)/$(call model_part,$(1),1)/pan
	$(Q)tests/model/check.sh $$(<D) $(call model_part,$(1),1) $(call model_part,$(1),2) $$(MODEL_PAN)
endef
$(foreach r,$(MODEL_RUNS),$(eval $(call model_rules,$(r))))

check-model: $(foreach r,$(MODEL_RUNS),model-$(call model_part,$(r),1))

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
                     --migration all-at-once --migrate-at 0.5 --validate" \
                  "keycount --workers 2 --rate 20000 --duration 2 --domain 10000 \
                     --warmup 0 --keys zipf:1 --skew-start --balance on \
                     --balance-interval 50 --validate --mode copy"
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
	install -d $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/include
	install -m 644 $(STATIC) $(SHARED) $(DESTDIR)$(PREFIX)/lib/
	ln -sf $(notdir $(SHARED)) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libmegaphone.so
	install -m 644 $(PUBLIC_H) $(DESTDIR)$(PREFIX)/include/megaphone.h
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' megaphone.pc.in \
	  > $(DESTDIR)$(PREFIX)/lib/pkgconfig/megaphone.pc
	@# the loader's cache, so programs find libmegaphone.so.0 (root, real install)
	$(Q)if [ -z "$(DESTDIR)" ] && [ "$$(id -u)" = 0 ] && command -v ldconfig >/dev/null; then ldconfig; fi

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/include/megaphone.h $(DESTDIR)$(PREFIX)/lib/pkgconfig/megaphone.pc \
	      $(DESTDIR)$(PREFIX)/lib/libmegaphone.a $(DESTDIR)$(PREFIX)/lib/libmegaphone.so \
	      $(DESTDIR)$(PREFIX)/lib/$(SONAME) $(DESTDIR)$(PREFIX)/lib/$(notdir $(SHARED))

clean:
	rm -rf build

FORMAT_SRC = $(LIB_SRC) $(HEADERS) $(wildcard numa/*_pvt.h queues/*_pvt.h migration/*_pvt.h engine/*_pvt.h) \
             $(TEST_SRC) $(LONG_SRC) $(TEST_COMMON_SRC) $(wildcard tests/*.h) $(BENCH_SRC) $(BENCH_COMMON_SRC) $(wildcard bench/*.h) \
             $(NEXMARK_SRC) $(wildcard bench/nexmark/*.h) $(wildcard tests/fuzz/*.[ch]) $(EXAMPLE_SRC)
format:
	clang-format -i $(FORMAT_SRC)
format-check:
	clang-format --dry-run --Werror $(FORMAT_SRC)

-include $(wildcard $(B)/obj/*/*.d $(B)/obj/*/*/*.d)
