# orch - build, test, bench. See README.md.
#
#   make run    install missing packages, build, run pipelines/detach.lua
#   make test   install missing packages, build, run the whole suite
#   make asan   the suite under AddressSanitizer + UBSan (separate build dir)
#   make bench  kernel and step benchmarks (ratios against raw BLIS sgemm)
#   make bench-torch  step times against PyTorch (needs python3-torch)
#
# Every room (core/, lua/, kernels/, store/) is compiled into its own object
# list; tests link only the rooms they exercise, named by their prefix.

BUILD    ?= build
CC       ?= gcc
OPT      ?= -O2
SAN      ?=
PKGS      = sqlite3 lua5.4 libarchive jansson libxxhash libcrypto
VERSION   = 0.1.0
NPROC    := $(shell nproc 2>/dev/null || echo 2)

WARN      = -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wwrite-strings -Wno-unknown-pragmas
# _GNU_SOURCE: blis.h needs more than POSIX 1993, and we use posix_spawn, mkdtemp.
CFLAGS   ?= -std=c11 $(OPT) -g $(WARN) -D_GNU_SOURCE -fopenmp -DORCH_VERSION=\"$(VERSION)\"
DEPFLAGS  = -MMD -MP
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) cmocka 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# BLIS has no pkg-config entry on Debian 12; link it explicitly, never through libblas.
BLIS_LIBS  = -lblis
LIBS       = $(PKG_LIBS) $(BLIS_LIBS) -lgomp -lm -lpthread
TEST_LIBS  = $(shell pkg-config --libs cmocka 2>/dev/null)

ALL_CFLAGS = $(CFLAGS) $(SAN) $(PKG_CFLAGS) -I. $(DEPFLAGS)
ALL_LDFLAGS = $(SAN) -fopenmp

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
TESTUTIL_OBJ = $(call obj,tests/testutil.c tests/testutil_sql.c)
# the in-memory record sink calls into core/: library tests only
TESTLIB_OBJ = $(call obj,tests/testutil_sink.c)

TEST_SRC   = $(wildcard tests/test_*.c)
TEST_BIN   = $(patsubst tests/%.c,$(BUILD)/tests/%,$(TEST_SRC))
BENCH_SRC  = $(wildcard bench/*.c)
BENCH_BIN  = $(patsubst bench/%.c,$(BUILD)/bench/%,$(BENCH_SRC))

ORCH = $(BUILD)/orch

.PHONY: all deps build run test asan bench bench-torch clean format

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
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

$(BUILD)/bench/%: $(call obj,bench/%.c) $(LIB_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)

run: build
	./orch run pipelines/detach.lua

test: deps
	@$(MAKE) --no-print-directory -j$(NPROC) $(ORCH) ./orch $(TEST_BIN)
	@sh tests/run.sh $(BUILD)

asan:
	@$(MAKE) --no-print-directory test BUILD=build-asan OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined"

bench: deps
	@$(MAKE) --no-print-directory -j$(NPROC) $(BENCH_BIN)
	@for b in $(BENCH_BIN); do echo "== $$b"; $$b || exit 1; done

# orch against PyTorch on the same tower (optional: needs Debian's python3-torch).
bench-torch: build
	/usr/bin/python3 tests/oracle/bench_torch.py

format:
	clang-format -i $(wildcard */*.c */*.h)

clean:
	rm -rf build build-asan orch

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# docs/pipelines.md's field tables, generated from the field table
# (core/pipeline_fields.c); test_pipeline_fields fails when they are stale.
.PHONY: docs
docs: $(BUILD)/scripts/gen_fields_doc
	$(BUILD)/scripts/gen_fields_doc docs/pipelines.md
$(BUILD)/scripts/gen_fields_doc: $(call obj,scripts/gen_fields_doc.c core/pipeline_fields.c core/err.c)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_LDFLAGS) -o $@ $^ $(LIBS)
