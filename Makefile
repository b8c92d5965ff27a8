# orch - build, test, bench. See README.md and docs/testing.md.
#
#   make run    install missing packages, build, run pipelines/detach.lua
#   make test   install missing packages (and chromium, best effort, for the
#               report's browser test), build, run the whole suite
#   make test-subconfigs  the suite once per BLIS sub-configuration the CPU runs
#   make asan   the suite under AddressSanitizer + UBSan (separate build dir)
#   make fuzz   every libFuzzer target for FUZZ_S seconds under ASan + UBSan
#               (clang; separate build dir; see docs/testing.md)
#   make bench  every bench program (ratios against raw BLIS sgemm and the FMA peak);
#               regenerates docs/performance.md, ends with "N met, M MISSED"
#   make bench-doc  only regenerate docs/performance.md from build/bench/out/*.txt
#   make bench-torch  step times against PyTorch (needs python3-torch)
#
# Every room (core/, lua/, kernels/, store/) is compiled into its own object
# list; tests link only the rooms they exercise, named by their prefix.
#
# CFLAGS, OPT, LDFLAGS and CC are the user's (make CFLAGS=-O3 test); the
# flags the build cannot do without are in ORCH_CFLAGS / ORCH_LDFLAGS and
# always apply.

BUILD    ?= build
CC       ?= gcc
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
LDFLAGS  ?=
SAN      ?=
VERSION   = 0.1.0
NPROC    := $(shell nproc 2>/dev/null || echo 2)

# Linked: what the sources include (Open MPI through core/mpi_comm.c only,
# libpng through core/image_png.c, libjpeg through core/image_jpeg.c,
# libarchive through store/archive_io.c).
PKGS      = sqlite3 lua5.4 jansson libxxhash libcrypto ompi-c libpng libjpeg libarchive

WARN      = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wwrite-strings -Wno-unknown-pragmas
# _GNU_SOURCE: blis.h needs more than POSIX 1993, and we use posix_spawn, mkdtemp.
ORCH_CFLAGS = -std=c11 -D_GNU_SOURCE -fopenmp $(WARN) -DORCH_VERSION=\"$(VERSION)\" -I.
ORCH_LDFLAGS = -fopenmp
DEPFLAGS  = -MMD -MP
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) cmocka 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# BLIS has no pkg-config entry on Debian 12; link it explicitly, never through libblas.
BLIS_LIBS  = -lblis
LIBS       = $(PKG_LIBS) $(BLIS_LIBS) -lm -lpthread
TEST_LIBS  = $(shell pkg-config --libs cmocka 2>/dev/null)

# The user's CFLAGS come after the build's, so they can override what the
# build sets (CFLAGS=-Wno-error after -Werror); SAN last.
ALL_CFLAGS  = $(ORCH_CFLAGS) $(PKG_CFLAGS) $(CFLAGS) $(SAN) $(DEPFLAGS)
ALL_LDFLAGS = $(ORCH_LDFLAGS) $(LDFLAGS) $(SAN)

CORE_SRC   = $(filter-out core/main.c,$(wildcard core/*.c))
LUA_SRC    = $(wildcard lua/*.c)
KERNEL_SRC = $(wildcard kernels/*.c)
STORE_SRC  = $(wildcard store/*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))
CORE_OBJ   = $(call obj,$(CORE_SRC))
LUA_OBJ    = $(call obj,$(LUA_SRC))
KERNEL_OBJ = $(call obj,$(KERNEL_SRC))
STORE_OBJ  = $(call obj,$(STORE_SRC))
ERR_OBJ    = $(call obj,core/err.c)
LIB_OBJ    = $(CORE_OBJ) $(LUA_OBJ) $(KERNEL_OBJ) $(STORE_OBJ)
TESTUTIL_OBJ = $(call obj,tests/testutil.c tests/testutil_sql.c tests/testutil_netns.c)
# the in-memory record sink calls into core/: library tests only
TESTLIB_OBJ = $(call obj,tests/testutil_sink.c)

TEST_SRC   = $(wildcard tests/test_*.c)
TEST_BIN   = $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
# One bench program per bench/*.c; bench/common/*.c are helpers every
# program links (the FMA peak, FIGURE lines, the gemm replay), not programs.
BENCH_SRC  = $(wildcard bench/*.c)
BENCH_BIN  = $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))
BENCH_COMMON_OBJ = $(call obj,$(wildcard bench/common/*.c))
FUZZ_SRC   = $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BIN   = $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(filter-out tests/fuzz/fuzz_file.c,$(FUZZ_SRC)))
FUZZ_FILE_OBJ = $(call obj,tests/fuzz/fuzz_file.c)

# Objects reached only through pattern rules (a test's own object,
# testutil.o, ...) would be intermediate: make deletes them after linking,
# and the next make, finding them missing and named in a .d file, rebuilds
# them and relinks every test. No target of this Makefile is a throwaway.
.SECONDARY:

ORCH = $(BUILD)/orch

.PHONY: all build run test test-subconfigs asan fuzz bench bench-torch clean format

all: build

# The package check: once per make invocation, before anything is built,
# by the top-level make only (sub-makes inherit MAKELEVEL > 0). Goals that
# build nothing skip it. make fuzz also needs clang and libFuzzer; make test,
# test-subconfigs and asan ask for chromium (--browser), which may fail.
BUILD_GOALS = $(filter-out clean format,$(or $(MAKECMDGOALS),all))
ifeq ($(MAKELEVEL),0)
ifneq ($(BUILD_GOALS),)
DEPS_STATUS := $(shell sh scripts/install-deps.sh $(if $(filter fuzz,$(MAKECMDGOALS)),--fuzz) \
                 $(if $(filter test test-subconfigs asan,$(MAKECMDGOALS)),--browser) >&2; echo $$?)
ifneq ($(DEPS_STATUS),0)
$(error scripts/install-deps.sh failed (exit $(DEPS_STATUS)))
endif
endif
endif

build:
	@$(MAKE) --no-print-directory -j$(NPROC) $(ORCH) ./orch

$(ORCH): $(call obj,core/main.c) $(LIB_OBJ)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# ./orch is what users type; it always points at the default build.
./orch: $(ORCH)
	@if [ "$(BUILD)" = build ]; then ln -sf $(BUILD)/orch orch; fi

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

# Tests link what they exercise: test_kernel_* the kernels alone (they
# stand on their own), test_cli_* nothing but the helpers (they run the orch
# binary), any other test the whole library.
$(BUILD)/tests/test_kernel_%: $(call obj,tests/test_kernel_%.c) $(KERNEL_OBJ) $(ERR_OBJ) $(TESTUTIL_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(TEST_LIBS)
$(BUILD)/tests/test_cli_%: $(call obj,tests/test_cli_%.c) $(TESTUTIL_OBJ) $(ERR_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(TEST_LIBS)
$(BUILD)/tests/test_%: $(call obj,tests/test_%.c) $(LIB_OBJ) $(TESTUTIL_OBJ) $(TESTLIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS) $(TEST_LIBS)

$(BUILD)/bench/%: $(call obj,bench/%.c) $(BENCH_COMMON_OBJ) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

# libFuzzer supplies main(); the library objects are built with
# -fsanitize=fuzzer-no-link (coverage only) through SAN, see fuzz below.
$(BUILD)/fuzz/%: $(call obj,tests/fuzz/%.c) $(FUZZ_FILE_OBJ) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LIBS)

run: build
	./orch run pipelines/detach.lua

test:
	@$(MAKE) --no-print-directory -j$(NPROC) $(ORCH) ./orch $(TEST_BIN)
	@sh tests/run.sh $(BUILD)

# The whole suite once per BLIS sub-configuration this CPU runs (~9x make test).
test-subconfigs:
	@$(MAKE) --no-print-directory -j$(NPROC) $(ORCH) ./orch $(TEST_BIN)
	@sh tests/subconfigs.sh $(BUILD)

asan:
	@$(MAKE) --no-print-directory test BUILD=build-asan OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

# Debian's clang (libFuzzer ships with it); FUZZ_S seconds per target.
# -Wno-pass-failed: clang reports the `omp simd` loops it cannot vectorise
# (as it builds kernels/ here) as warnings, which -Werror would make fatal.
FUZZ_CC ?= $(shell command -v clang-14 2>/dev/null || command -v clang 2>/dev/null || echo clang)
FUZZ_S  ?= 60
FUZZ_SAN = -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
           -fno-omit-frame-pointer -Wno-pass-failed
fuzz:
	@$(MAKE) --no-print-directory -j$(NPROC) BUILD=build-fuzz CC="$(FUZZ_CC)" OPT=-O1 \
	    SAN="$(FUZZ_SAN)" fuzz-bins
	@sh tests/fuzz/run.sh build-fuzz $(FUZZ_S)

.PHONY: fuzz-bins
fuzz-bins: $(FUZZ_BIN)

# make bench: every program built from bench/*.c (bench/machine first: the
# kernel choice and the FMA peak), each one's output teed to
# $(BUILD)/bench/out/NAME.txt, then docs/performance.md regenerated from
# every $(BUILD)/bench/out/*.txt (bench-torch's too, when it was run) and a
# "N met, M MISSED" summary. BENCH_QUICK=1 passes --quick (development).
BENCH_OUT = $(BUILD)/bench/out
bench:
	@$(MAKE) --no-print-directory -j$(NPROC) $(BENCH_BIN)
	@sh scripts/bench.sh $(BUILD) $(if $(BENCH_QUICK),--quick) $(BENCH_BIN)
	@$(MAKE) --no-print-directory bench-doc

# Only regenerates docs/performance.md from the outputs already there
# (docs/performance.md.in + $(BENCH_OUT)/*.txt + bench/why-missed.txt).
.PHONY: bench-doc
bench-doc:
	@sh scripts/gen_perf_doc.sh docs/performance.md.in bench/why-missed.txt docs/performance.md \
	    $(wildcard $(BENCH_OUT)/*.txt)

# orch against PyTorch on the same towers, BLAS and sub-configuration
# (optional: needs Debian's python3-torch); its FIGURE lines go to
# $(BENCH_OUT)/torch.txt and so into docs/performance.md.
bench-torch: build
	@mkdir -p $(BENCH_OUT)
	@(/usr/bin/python3 tests/oracle/bench_torch.py $(if $(BENCH_QUICK),--quick); \
	    echo $$? > $(BENCH_OUT)/torch.rc) | tee $(BENCH_OUT)/torch.txt.part
	@test "$$(cat $(BENCH_OUT)/torch.rc)" = 0 && mv $(BENCH_OUT)/torch.txt.part $(BENCH_OUT)/torch.txt
	@$(MAKE) --no-print-directory bench-doc

format:
	clang-format -i $(wildcard */*.c */*.h tests/fuzz/*.c tests/fuzz/*.h)

clean:
	rm -rf build build-asan build-fuzz orch

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# docs/pipelines.md's field tables, generated from the field table
# (core/pipeline_fields.c); test_pipeline_fields fails when they are stale.
.PHONY: docs
docs: $(BUILD)/scripts/gen_fields_doc
	$(BUILD)/scripts/gen_fields_doc docs/pipelines.md
$(BUILD)/scripts/gen_fields_doc: $(call obj,scripts/gen_fields_doc.c core/pipeline_fields.c core/err.c)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
