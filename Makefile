# descent - a distributed parameter server. Plain Makefile; see `make help`.

VARIANT ?= release
B       := build/$(VARIANT)
Q       := $(if $(V),,@)

DEB_PKGS := build-essential pkg-config libzmq3-dev libprotobuf-c-dev \
            protobuf-c-compiler libuv1-dev check libopenblas-dev zlib1g-dev \
            libinih-dev libmicrohttpd-dev dataset-fashion-mnist \
            clang-format gnuplot-nox
PKGS     := libzmq libuv libprotobuf-c inih check openblas zlib

# gcc 12 vectorizes at -O2 only loops of known length; the dynamic cost model
# lets it vectorize the update kernels over arrays of any length.
OPT_release := -O2 -fvect-cost-model=dynamic
OPT_asan    := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# -fno-math-errno lets sqrtf in the update kernels vectorize; descent never
# reads errno after a math call.
CFLAGS  = -std=c11 -D_GNU_SOURCE -g -fno-math-errno $(WARN) $(OPT_$(VARIANT)) \
          -I. -I$(B) \
          $(PKG_CFLAGS) $(EXTRA_CFLAGS)
LDFLAGS = $(filter -fsanitize=%,$(OPT_$(VARIANT)))
LDLIBS  = $(filter-out -lcheck_pic -lsubunit,$(PKG_LIBS)) -lm -lpthread
TLIBS   = $(shell pkg-config --libs check 2>/dev/null)

PB      := $(B)/proto/descent.pb-c.c
LIBSRCS := $(wildcard common/*.c server/*.c worker/*.c) $(filter-out cli/main.c,$(wildcard cli/*.c))
LIBOBJS := $(LIBSRCS:%.c=$(B)/%.o) $(PB:.c=.o)
UNITSRC := $(wildcard tests/unit/*.c)
UNITOBJ := $(UNITSRC:%.c=$(B)/%.o)
INTSRC  := $(wildcard tests/integration/*.c)
INTOBJ  := $(INTSRC:%.c=$(B)/%.o)
BENCHSRC:= $(wildcard bench/*.c)
BENCHBIN:= $(BENCHSRC:%.c=$(B)/%)

.PHONY: all deps test unit integration asan run bench compare lint format docs clean help

all: $(B)/descent

help:
	@echo "make deps         install the Debian packages the build, tests and run need"
	@echo "make / make all   build $(B)/descent"
	@echo "make test         unit tests (Check) then integration tests"
	@echo "make unit         unit tests only"
	@echo "make integration  integration tests only (real processes on loopback)"
	@echo "make asan         the test suite under ASan+UBSan (build/asan)"
	@echo "make run          train the embedded default job: a local cluster on Fashion-MNIST"
	@echo "make bench        benchmarks, printed as ratios against raw ZeroMQ"
	@echo "make compare      every algorithm on the full job: table and picture in runs/compare"
	@echo "make lint         check formatting with clang-format (.clang-format)"
	@echo "make format       reformat the sources in place"
	@echo "make docs         regenerate the option reference in docs/configuration.md"
	@echo "make clean        remove build/"

# Installs whatever of DEB_PKGS is missing: with apt-get when root, otherwise
# prints the exact command to run.
deps:
	@missing=""; for p in $(DEB_PKGS); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then echo "deps: all installed"; \
	elif [ "$$(id -u)" = 0 ]; then \
	  echo "deps: installing$$missing"; \
	  ( [ -n "$$(ls /var/lib/apt/lists/ 2>/dev/null | grep -v -e lock -e partial)" ] || apt-get update -qq ) && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else echo "deps: missing packages; run: sudo apt-get install -y$$missing"; exit 1; fi

$(B)/descent: $(B)/cli/main.o $(B)/libdescent.a
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)
	@echo "  LD  $@"

$(B)/libdescent.a: $(LIBOBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

$(PB): proto/descent.proto
	@mkdir -p $(@D)
	$(Q)protoc-c --c_out=$(B)/proto -Iproto $<

$(B)/%.o: %.c | $(PB)
	@mkdir -p $(@D)
	@echo "  CC  $<"
	$(Q)$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(B)/proto/%.o: $(B)/proto/%.c
	$(Q)$(CC) $(CFLAGS) -Wno-missing-prototypes -MMD -MP -c $< -o $@

$(B)/tests/unit/run_unit: $(UNITOBJ) $(B)/libdescent.a
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TLIBS)

$(B)/tests/integration/run_integration: $(INTOBJ) $(B)/libdescent.a
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(TLIBS)

$(B)/bench/%: $(B)/bench/%.o $(B)/libdescent.a
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

unit: $(B)/tests/unit/run_unit $(B)/descent
	$(Q)DESCENT_BIN=$(abspath $(B)/descent) $(B)/tests/unit/run_unit

integration: $(B)/tests/integration/run_integration $(B)/descent
	$(Q)DESCENT_BIN=$(abspath $(B)/descent) $(B)/tests/integration/run_integration

test: deps
	$(Q)$(MAKE) --no-print-directory unit integration

asan:
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 $(MAKE) --no-print-directory VARIANT=asan unit integration

run: deps $(B)/descent
	$(Q)$(B)/descent run $(ARGS)

bench: deps $(BENCHBIN) $(B)/descent
	$(Q)for b in $(BENCHBIN); do $$b || exit 1; done

compare: deps $(B)/descent
	$(Q)DESCENT_BIN=$(B)/descent bash bench/compare.sh

SOURCES = $(shell git ls-files '*.c' '*.h' 2>/dev/null || find . -name '*.[ch]' -not -path './build/*')

lint:
	$(Q)clang-format --dry-run -Werror $(SOURCES)

format:
	$(Q)clang-format -i $(SOURCES)

# The option reference in docs/configuration.md is printed by the option
# table itself; a unit test fails when the two disagree.
docs: $(B)/descent
	$(Q)$(B)/descent config --markdown > $(B)/config-ref.md
	$(Q)awk -v ref=$(B)/config-ref.md \
	  '/^### \[job\]/ { while ((getline l < ref) > 0) print l; print ""; skip = 1; next } \
	   /^The options are defined/ { skip = 0 } !skip' \
	  docs/configuration.md > $(B)/configuration.md
	$(Q)mv $(B)/configuration.md docs/configuration.md

clean:
	rm -rf build/

-include $(shell find $(B) -name '*.d' 2>/dev/null)
