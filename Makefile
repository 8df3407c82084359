# multihome: policy routing for a multihomed Linux host, done by the links.
#   make            build everything into build/
#   make demo       (root) the reference scenario in network namespaces
#   make check      (root) all tests; ends with "N passed, N failed, N skipped"
#   make bench      (root) per-event cost against the shell and the floor; build/bench/
#   make fuzz       libFuzzer on the option/pin/argument parser (FUZZ_SECONDS)
#   make install    PREFIX=/usr DESTDIR=...
#   make deb        the Debian package, into build/deb/ (DEB_DIR=)
#   make pppd25     also build for Debian 13's pppd 2.5.2 (build/pppd25/)
# demo, check and bench install their own build dependencies (Debian 12) and
# need root; run as a user they re-run themselves through sudo.
# Every other target that compiles first checks that the build dependencies
# (debian/control's Build-Depends) are installed, and stops before compiling
# anything if not, naming them (DEPS_CHECK=no skips that).

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

.PHONY: all clean check demo bench fuzz install deps unit deb
all: build-all

IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo yes)

# The build dependencies, checked before anything compiles.  These goals
# compile nothing themselves (check, demo and bench install the dependencies
# first, then compile in a make of their own).
NO_DEPS_GOALS := clean deps check demo bench uninstall
DEPS_CHECK ?= yes
ifeq ($(DEPS_CHECK),yes)
ifneq ($(filter-out $(NO_DEPS_GOALS),$(or $(MAKECMDGOALS),all)),)
DEPS_MISSING := $(shell scripts/deps.sh --missing $(if $(filter deb,$(MAKECMDGOALS)),package,build))
ifneq ($(DEPS_MISSING),)
define DEPS_MESSAGE
missing build dependencies: $(DEPS_MISSING)
  install them:  $(if $(IS_ROOT),,sudo )make deps
            or:  $(if $(IS_ROOT),,sudo )apt-get install $(DEPS_MISSING)
nothing was compiled
endef
$(error $(DEPS_MESSAGE))
endif
endif
endif

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

# dpkg-buildpackage in a copy of the tree (its clean step would empty
# build/, and it writes into the parent directory), with a make of its own.
DEB_DIR ?= $(B)/deb
deb:
	rm -rf $(DEB_DIR)
	mkdir -p $(DEB_DIR)/src
	tar -cf - --exclude=./build --exclude=./.git --exclude=./$(B) --exclude=./$(DEB_DIR) . | tar -xf - -C $(DEB_DIR)/src
	cd $(DEB_DIR)/src && env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL dpkg-buildpackage -us -uc -b -Jauto
	rm -rf $(DEB_DIR)/src
	@ls $(DEB_DIR)/*.deb

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
	tests/bench/track.sh
	tests/bench/plot.sh
else
deps check demo bench:
	@command -v sudo >/dev/null || { echo "make $@ needs root: run it as root, or install sudo"; exit 1; }
	exec sudo $(MAKE) $@
endif
