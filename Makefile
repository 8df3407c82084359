# multihome: policy routing for a multihomed Linux host, done by the links.
#   make            build everything into build/
#   make demo       (root) the reference scenario in network namespaces
#   make check      (root) all tests; ends with "N passed, N failed, N skipped"
#   make bench      (root) per-event cost against the shell baseline
#   make fuzz       libFuzzer on the option/pin/argument parser (FUZZ_SECONDS)
#   make install    PREFIX=/usr DESTDIR=...
#   make pppd25     also build for Debian 13's pppd 2.5.2 (build/pppd25/)
# demo, check and bench install their own build dependencies (Debian 12) and
# need root; run as a user they re-run themselves through sudo.

CC       ?= cc
CFLAGS   ?= -O2 -g
override CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -fPIC -D_GNU_SOURCE
override CPPFLAGS += -Icommon
B        := build

PKG_LIBS := $(shell pkg-config --libs libmnl libnftnl 2>/dev/null || echo -lmnl -lnftnl) -lip4tc
MNL_CFLAGS := $(shell pkg-config --cflags libmnl 2>/dev/null)
override CPPFLAGS += $(MNL_CFLAGS)

ALL :=
TESTBIN :=

.PHONY: all clean check demo bench fuzz install deps unit
all: build-all

include common/build.mk
-include pppd-plugin/build.mk
-include openvpn-plugin/build.mk
-include tests/harness/build.mk
-include tests/helpers/build.mk
-include tests/unit/build.mk
-include tools/build.mk
-include tests/fuzz/build.mk
-include tests/bench/build.mk

build-all: $(ALL) $(TESTBIN)

$(B):
	mkdir -p $@

clean:
	rm -rf $(B)

IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo yes)

ifeq ($(IS_ROOT),yes)
deps:
	@scripts/deps.sh

check: deps
	$(MAKE) build-all
	-$(MAKE) pppd25
	tests/run

demo: deps
	$(MAKE) build-all
	tests/demo.sh

bench: deps
	$(MAKE) build-all
	tests/bench/run.sh
	MULTIHOME_FIREWALL=nft tests/bench/run.sh
else
deps check demo bench:
	@command -v sudo >/dev/null || { echo "make $@ needs root: run it as root, or install sudo"; exit 1; }
	exec sudo $(MAKE) $@
endif
