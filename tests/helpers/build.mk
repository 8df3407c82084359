# Test helpers: mh-probe, the bounded TCP/UDP prober of the namespace tests.
PROBE := $(B)/mh-probe
TESTBIN += $(PROBE)

$(PROBE): tests/helpers/probe.c | $(B)
	$(CC) $(CFLAGS) -o $@ $<
