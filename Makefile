# descent - a distributed parameter server. Plain Makefile; see `make help`.

VARIANT ?= release
B       := build/$(VARIANT)
Q       := $(if $(V),,@)

DEB_PKGS := build-essential pkg-config libzmq3-dev libprotobuf-c-dev \
            protobuf-c-compiler libuv1-dev check libopenblas-dev zlib1g-dev \
            libinih-dev libmicrohttpd-dev dataset-fashion-mnist \
            clang-format gnuplot-nox jq iproute2
PKGS     := libzmq libuv libprotobuf-c inih check openblas zlib
# Only make fuzz needs these (libFuzzer ships with clang, not gcc); make deps
# and make test do not.
FUZZ_PKGS := clang libclang-rt-14-dev

# gcc 12 vectorizes at -O2 only loops of known length; the dynamic cost model
# lets it vectorize the update kernels over arrays of any length.
OPT_release := -O2 -fvect-cost-model=dynamic
OPT_asan    := -O1 -fsanitize=address,undefined -fno-sanitize-recover=all \
               -fno-omit-frame-pointer
# VARIANT=fuzz is the library as make fuzz links it: clang, ASan+UBSan and
# libFuzzer's coverage instrumentation, in build/fuzz so objects never mix.
OPT_fuzz    := -O1 -fsanitize=address,undefined -fsanitize=fuzzer-no-link \
               -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_CC ?= clang
ifeq ($(VARIANT),fuzz)
CC := $(FUZZ_CC)
endif
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
# One fuzz target per parser: tests/fuzz/fuzz_<name>.c. make test links each
# with tests/fuzz/replay.c (gcc) to replay its corpus; make fuzz links it with
# libFuzzer into build/fuzz/fuzz_<name>.
FUZZNAMES := $(notdir $(basename $(wildcard tests/fuzz/fuzz_*.c)))
FUZZREPLAY:= $(FUZZNAMES:%=$(B)/tests/fuzz/%)
FUZZHELP  := $(B)/tests/fuzz/scratch.o
FZ        := build/fuzz
FUZZ_SECONDS ?= 60
FUZZ_TARGETS ?= $(FUZZNAMES)
FUZZ_FLAGS ?=

.PHONY: all deps test unit integration asan run bench compare lint format docs clean help
.PHONY: fuzz fuzz-deps fuzz-replay fuzz-run test-faults failover-times
.PHONY: image image-size image-data check-deploy test-compose test-swarm test-multihost
.PHONY: up down

all: $(B)/descent

help:
	@echo "make deps         install the Debian packages the build, tests and run need"
	@echo "make / make all   build $(B)/descent"
	@echo "make test         unit tests (Check), integration tests, fuzz-corpus replay"
	@echo "make unit         unit tests only"
	@echo "make integration  integration tests only (real processes on loopback)"
	@echo "make fuzz-replay  replay tests/fuzz/corpus through every fuzz target (gcc)"
	@echo "make asan         the test suite under ASan+UBSan (build/asan)"
	@echo "make test-faults  fault injection: kill -9 / SIGSTOP nodes, lossy transport;"
	@echo "                  invariants (no acknowledged push lost, replicas identical)"
	@echo "make failover-times  N (20) kills of a primary: failover time p50/p99"
	@echo "make fuzz         libFuzzer (clang, ASan+UBSan, build/fuzz): each target"
	@echo "                  FUZZ_SECONDS (60) on build/fuzz/corpus/<target>, seeded"
	@echo "                  from tests/fuzz/corpus; FUZZ_TARGETS=fuzz_msg picks one"
	@echo "make fuzz-deps    install clang and libclang-rt-14-dev, which make fuzz needs"
	@echo "make run          train the embedded default job: a local cluster on Fashion-MNIST"
	@echo "make bench        benchmarks, printed as ratios against raw ZeroMQ"
	@echo "make compare      every algorithm on its defaults, accuracy floors checked:"
	@echo "                  table and picture in runs/compare"
	@echo "make lint         check formatting with clang-format (.clang-format)"
	@echo "make format       reformat the sources in place"
	@echo "make docs         regenerate the option reference in docs/configuration.md"
	@echo "make image        the Docker image $(IMAGE) (deploy/Dockerfile); bootstraps"
	@echo "                  $(BASE_IMAGE) with debootstrap when it cannot be pulled"
	@echo "make image-size   the size of $(IMAGE) and of its base"
	@echo "make image-data   $(IMAGE_DATA): the image with Fashion-MNIST copied in"
	@echo "make up / down    docker-compose.yml: $(COMPOSE) up [ARGS] / down -v (COMPOSE"
	@echo "                  = docker-compose or \"docker compose\", whichever exists)"
	@echo "make check-deploy offline checks of docker-compose.yml, deploy/k8s and the scripts"
	@echo "make test-compose docker-compose.yml: train, check summary.json, down -v; then"
	@echo "                  docker kill/pause/network disconnect during training, invariants"
	@echo "make test-swarm   the same file (+ deploy/swarm.yml) with docker stack deploy"
	@echo "                  on a one-node swarm"
	@echo "make test-multihost  bare processes in network namespaces, one IP each (root)"
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
	$(Q)CK_DEFAULT_TIMEOUT=$${CK_DEFAULT_TIMEOUT:-60} DESCENT_BIN=$(abspath $(B)/descent) $(B)/tests/unit/run_unit

integration: $(B)/tests/integration/run_integration $(B)/descent
	$(Q)DESCENT_BIN=$(abspath $(B)/descent) $(B)/tests/integration/run_integration

test: deps
	$(Q)$(MAKE) --no-print-directory unit integration fuzz-replay

asan:
	$(Q)ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	 $(MAKE) --no-print-directory VARIANT=asan unit integration fuzz-replay

# Each fuzz target, built with the variant's compiler and a plain main, runs
# every committed corpus input once.
$(FUZZREPLAY): $(B)/tests/fuzz/%: $(B)/tests/fuzz/%.o $(B)/tests/fuzz/replay.o \
               $(FUZZHELP) $(B)/libdescent.a
	$(Q)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

fuzz-replay: $(FUZZREPLAY)
	$(Q)for t in $(FUZZNAMES); do $(B)/tests/fuzz/$$t tests/fuzz/corpus/$$t || exit 1; done

fuzz-deps:
	$(Q)$(MAKE) --no-print-directory deps DEB_PKGS="$(FUZZ_PKGS)"

fuzz: deps fuzz-deps
	$(Q)$(MAKE) --no-print-directory VARIANT=fuzz fuzz-run

# The libFuzzer binaries; only VARIANT=fuzz (where B is build/fuzz) can build
# their objects.
$(FUZZNAMES:%=$(FZ)/%): $(FZ)/%: $(FZ)/tests/fuzz/%.o $(FZ)/tests/fuzz/scratch.o \
                        $(FZ)/libdescent.a
	$(Q)$(CC) $(LDFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS)
	@echo "  LD  $@"

# New inputs go to build/fuzz/corpus/<target>, never into the source tree;
# crashes to build/fuzz/crashes/<target>/, the full output to
# build/fuzz/<target>.log.
fuzz-run: $(FUZZ_TARGETS:%=$(FZ)/%)
	$(Q)failed=""; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FZ)/corpus/$$t $(FZ)/crashes/$$t; \
	  cp -n tests/fuzz/corpus/$$t/* $(FZ)/corpus/$$t/ 2>/dev/null || true; \
	  echo "  FUZZ $$t for $(FUZZ_SECONDS) s"; \
	  if UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 $(FZ)/$$t \
	       -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	       -artifact_prefix=$(FZ)/crashes/$$t/ $(FUZZ_FLAGS) \
	       $(FZ)/corpus/$$t > $(FZ)/$$t.log 2>&1; then \
	    grep -E '^#[0-9]+.*(DONE|pulse|NEW|REDUCE)' $(FZ)/$$t.log | tail -n 1; \
	    grep -E '^stat::(number_of_executed_units|average_exec_per_sec|new_units_added)' $(FZ)/$$t.log; \
	  else \
	    failed="$$failed $$t"; tail -n 60 $(FZ)/$$t.log; \
	  fi; \
	done; \
	if [ -n "$$failed" ]; then \
	  echo "fuzz: findings in$$failed; inputs in $(FZ)/crashes/"; exit 1; fi

# The fault-injection suite: real local clusters, one fault each (kill -9 a
# primary, a backup, a worker; SIGSTOP a primary; a lossy transport; netem
# where the kernel has it), invariants checked at the end (tests/faults).
test-faults: deps $(B)/descent
	$(Q)bash tests/faults/run.sh $(B)/descent

# Failover time over repeated kills of a primary (docs/operations.md).
failover-times: deps $(B)/descent
	$(Q)bash tests/faults/failover-times.sh $(B)/descent $(or $(N),20)

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

# Deployment (docs/deploy.md). None of these is part of make test; each
# skips with a message where Docker, root or network namespaces are missing.
IMAGE      ?= descent:latest
IMAGE_DATA ?= descent:data
BASE_IMAGE ?= debian:bookworm-slim
DATA_DIR   ?= /usr/share/datasets/fashion-mnist
DOCKER     ?= docker
NO_DOCKER   = ! $(DOCKER) info >/dev/null 2>&1 && echo "$@: skipped: no Docker engine reachable" && exit 0
# The compose tool: the v2 plugin where it works, else docker-compose (v1,
# Debian's package). Only the targets that use it run the probe.
COMPOSE    ?= $(shell $(DOCKER) compose version >/dev/null 2>&1 && \
                echo "$(DOCKER) compose" || echo docker-compose)
NO_COMPOSE  = $(COMPOSE) version >/dev/null 2>&1 || { echo "$@: no compose tool: \
              install docker-compose or the docker compose plugin"; exit 1; }

image:
	$(Q)$(NO_DOCKER); sh deploy/bootstrap-base.sh $(BASE_IMAGE) && \
	 DOCKER_BUILDKIT=$${DOCKER_BUILDKIT:-0} $(DOCKER) build -f deploy/Dockerfile \
	   --build-arg BASE=$(BASE_IMAGE) -t $(IMAGE) . && \
	 $(DOCKER) image inspect -f '{{.Size}}' $(IMAGE) | \
	   awk '{ printf "image: $(IMAGE), %.1f MB\n", $$1 / 1e6 }'

image-size:
	$(Q)$(NO_DOCKER); for i in $(IMAGE) $(BASE_IMAGE); do \
	  $(DOCKER) image inspect -f '{{.Size}}' $$i 2>/dev/null | \
	    awk -v i=$$i '{ printf "  %-24s %6.1f MB\n", i, $$1 / 1e6 }'; done

# The data set comes from the host's dataset-fashion-mnist package, never
# from the network: the folder is the build context.
image-data: image
	$(Q)$(NO_DOCKER); test -d $(DATA_DIR) || { echo "$@: no $(DATA_DIR): make deps"; exit 1; }; \
	 printf 'FROM %s\nCOPY . /usr/share/datasets/fashion-mnist/\n' $(IMAGE) | \
	   DOCKER_BUILDKIT=$${DOCKER_BUILDKIT:-0} $(DOCKER) build -t $(IMAGE_DATA) -f - $(DATA_DIR) && \
	 $(DOCKER) image inspect -f '{{.Size}}' $(IMAGE_DATA) | \
	   awk '{ printf "image-data: $(IMAGE_DATA), %.1f MB\n", $$1 / 1e6 }'

# docker-compose.yml on this machine, with whichever compose tool exists:
# make up [ARGS="--scale worker=8"], then make down (down -v).
up:
	$(Q)$(NO_COMPOSE); $(COMPOSE) up $(ARGS)

down:
	$(Q)$(NO_COMPOSE); $(COMPOSE) down -v $(ARGS)

# No engine or cluster needed: the manifests parse and agree with each other
# and with descent's options; the scripts pass shellcheck where it exists.
check-deploy: $(B)/descent
	$(Q)DESCENT_BIN=$(abspath $(B)/descent) python3 tests/deploy/check_manifests.py
	$(Q)if command -v shellcheck >/dev/null; then \
	  shellcheck -x deploy/*.sh tests/deploy/*.sh && echo "check-deploy: shellcheck clean"; \
	else echo "check-deploy: shellcheck not installed; scripts not linted"; fi
	$(Q)if $(COMPOSE) version >/dev/null 2>&1; then \
	  $(COMPOSE) -f docker-compose.yml config -q && echo "check-deploy: $(COMPOSE) config: valid"; \
	else echo "check-deploy: no compose tool; docker-compose.yml not validated by one"; fi
	$(Q)if $(DOCKER) stack config --help >/dev/null 2>&1; then \
	  $(DOCKER) stack config -c docker-compose.yml -c deploy/swarm.yml | \
	    grep -q 'endpoint_mode: dnsrr' && \
	  echo "check-deploy: docker stack config: docker-compose.yml + deploy/swarm.yml merge"; \
	else echo "check-deploy: no 'docker stack config'; the swarm merge not checked"; fi

# The plain run, then the container-level faults (kill a server, pause a
# worker, cut a server off the network) with the fault suite's invariants.
test-compose: image
	$(Q)$(NO_DOCKER); COMPOSE="$(COMPOSE)" DS_IMAGE=$(IMAGE) sh tests/deploy/compose.sh && \
	  COMPOSE="$(COMPOSE)" DS_IMAGE=$(IMAGE) sh tests/deploy/compose-faults.sh

test-swarm: image
	$(Q)$(NO_DOCKER); DS_IMAGE=$(IMAGE) sh tests/deploy/swarm.sh

test-multihost: $(B)/descent
	$(Q)DESCENT_BIN=$(abspath $(B)/descent) sh tests/deploy/multihost.sh

clean:
	rm -rf build/

-include $(shell find $(B) -name '*.d' 2>/dev/null)
