# A pppd 2.4.9 stand-in that loads pppd plugins and drives their notifiers
# (namespace tests run the real multihome.so with it; no kernel PPP needed).
PPPD_HARNESS := $(B)/mh-pppd-harness
TESTBIN += $(PPPD_HARNESS)

$(PPPD_HARNESS): tests/harness/pppd-harness.c | $(B)
	$(CC) $(CFLAGS) -o $@ $< -rdynamic -ldl $(LDFLAGS)
