# pppd plugin: build/multihome.so, for the pppd whose headers are found:
#   PPPD_INCLUDE=DIR   the headers in DIR/pppd/ (2.4.x or 2.5.x)
#   else pkg-config pppd (only pppd 2.5.x installs pppd.pc)
#   else /usr/include/pppd (2.4.x: Debian 12, Ubuntu 24.04)
# One binary serves one pppd version; `make pppd-info` says which.
#
#   make pppd25   also build/pppd25/: multihome.so (and the harness, see
#                 tests/harness/build.mk) against Debian 13's pppd 2.5.2
#                 headers (trixie's ppp-dev, fetched and cached in
#                 build/trixie by scripts/fetch-trixie.sh)
#
# Only pppd_version and plugin_init are exported; the core is linked in.
PPPD_PLUGIN := $(B)/multihome.so
ALL += $(PPPD_PLUGIN)

ifdef PPPD_INCLUDE
PPPD_CFLAGS := -I$(PPPD_INCLUDE)
PPPD_FOUND_BY := PPPD_INCLUDE=$(PPPD_INCLUDE)
else ifeq ($(shell pkg-config --exists pppd 2>/dev/null && echo yes),yes)
PPPD_CFLAGS := $(shell pkg-config --cflags pppd)
PPPD_PC_PLUGINDIR := $(shell pkg-config --variable=plugindir pppd)
PPPD_FOUND_BY := pkg-config pppd
else
PPPD_CFLAGS :=
PPPD_FOUND_BY := /usr/include/pppd
endif

# pppd_version_of FLAGS: the version of the <pppd/pppd.h> found with FLAGS
# (2.5.x: PPPD_VERSION of pppdconf.h; 2.4.x: VERSION of patchlevel.h).
pppd_version_of = $(shell $(CC) $(1) -E -dM -include pppd/pppd.h -x c /dev/null 2>/dev/null | \
	awk '$$2 == "PPPD_VERSION" { p = $$3 } $$2 == "VERSION" { v = $$3 } \
	     END { s = p != "" ? p : v; gsub(/"/, "", s); print s }')
# pppd_version_code VERSION: 2.5.2 -> 20502
pppd_version_code = $(shell echo '$(1)' | awk -F. '{ printf "%d", $$1 * 10000 + $$2 * 100 + $$3 }')
# pppd_defs FLAGS: what pppd-api.h wants to know about those headers
pppd_defs = -DMH_PPPD_VERSION_CODE=$(call pppd_version_code,$(call pppd_version_of,$(1)))

ifndef PPPD_VERSION
PPPD_VERSION := $(call pppd_version_of,$(PPPD_CFLAGS))
endif
PPPD_PLUGIN_DIR ?= $(if $(PPPD_PC_PLUGINDIR),$(PPPD_PC_PLUGINDIR),/usr/lib/pppd/$(PPPD_VERSION))

# pppd_plugin_rules DIR,PPPD-CFLAGS,PREREQ: DIR/multihome.so for those headers.
# The flags are expanded when the recipe runs, after PREREQ (the headers).
define pppd_plugin_rules
$(1)/pppd-plugin/multihome.o: pppd-plugin/multihome.c pppd-plugin/pppd-api.h common/mh.h $(3) | $(B)
	@mkdir -p $$(dir $$@)
	$$(CC) $$(CPPFLAGS) $(2) $$(call pppd_defs,$(2)) $$(CFLAGS) -fvisibility=hidden -c -o $$@ $$<

$(1)/multihome.so: $(1)/pppd-plugin/multihome.o $$(CORE_LIB)
	$$(CC) $$(CFLAGS) -shared -fvisibility=hidden -Wl,--exclude-libs,ALL -o $$@ $$< $$(CORE_LIB) $$(PKG_LIBS) $$(LDFLAGS)
endef

# Which headers build/ was built for: a change (PPPD_INCLUDE=, another
# pkg-config path) rebuilds what depends on them.
PPPD_FLAGS_STAMP := $(B)/pppd-plugin/pppd-headers
$(PPPD_FLAGS_STAMP): FORCE | $(B)
	@mkdir -p $(dir $@)
	@echo '$(PPPD_CFLAGS) $(PPPD_VERSION)' | cmp -s - $@ || echo '$(PPPD_CFLAGS) $(PPPD_VERSION)' >$@
.PHONY: FORCE
FORCE:

$(eval $(call pppd_plugin_rules,$(B),$(PPPD_CFLAGS),$(PPPD_FLAGS_STAMP)))

# Debian 13's pppd 2.5.2: headers from trixie's ppp-dev, unpacked in build/.
TRIXIE       := $(B)/trixie
TRIXIE_STAMP := $(TRIXIE)/root/.complete
PPPD25       := $(B)/pppd25
PPPD25_CFLAGS := -I$(TRIXIE)/root/usr/include

$(TRIXIE_STAMP): scripts/fetch-trixie.sh
	scripts/fetch-trixie.sh $(TRIXIE)
	@touch $@

$(eval $(call pppd_plugin_rules,$(PPPD25),$(PPPD25_CFLAGS),$(TRIXIE_STAMP)))

.PHONY: pppd25 pppd-info
pppd25: $(PPPD25)/multihome.so

pppd-info:
	@echo "pppd headers: $(PPPD_FOUND_BY)$(if $(PPPD_CFLAGS), ($(PPPD_CFLAGS)))"
	@echo "PPPD_VERSION=$(PPPD_VERSION)"
	@echo "PPPD_PLUGIN_DIR=$(PPPD_PLUGIN_DIR)"
