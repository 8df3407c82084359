# mh-pppd-harness: a pppd stand-in that loads pppd plugins and drives their
# notifiers (namespace tests run the real multihome.so with it; no kernel
# PPP needed), and mh-timer-plugin.so, the plugin of its self-test
# (tests/ns/pppd-api.sh).  Built once for the system's pppd headers (as
# build/multihome.so) and, by `make pppd25`, once for Debian 13's pppd 2.5.2
# (build/pppd25/): each imitates that pppd's plugin API.
HARNESS_SRC := tests/harness/pppd-harness.c tests/harness/api.c tests/harness/options.c

# pppd_harness_rules DIR,PPPD-CFLAGS,PREREQ
define pppd_harness_rules
$(1)/mh-pppd-harness: $(HARNESS_SRC) tests/harness/pppd-harness.h $(3) | $(B)
	@mkdir -p $$(dir $$@)
	$$(CC) $(2) $$(call pppd_defs,$(2)) $$(CFLAGS) -fvisibility=hidden -o $$@ $(HARNESS_SRC) -rdynamic -ldl $$(LDFLAGS)

$(1)/mh-timer-plugin.so: tests/harness/timer-plugin.c pppd-plugin/pppd-api.h $(3) | $(B)
	@mkdir -p $$(dir $$@)
	$$(CC) -Ipppd-plugin $(2) $$(call pppd_defs,$(2)) $$(CFLAGS) -shared -fvisibility=hidden -o $$@ $$<
endef

$(eval $(call pppd_harness_rules,$(B),$(PPPD_CFLAGS),$(PPPD_FLAGS_STAMP)))
$(eval $(call pppd_harness_rules,$(PPPD25),$(PPPD25_CFLAGS),$(TRIXIE_STAMP)))

PPPD_HARNESS := $(B)/mh-pppd-harness
TESTBIN += $(PPPD_HARNESS) $(B)/mh-timer-plugin.so
pppd25: $(PPPD25)/mh-pppd-harness $(PPPD25)/mh-timer-plugin.so
