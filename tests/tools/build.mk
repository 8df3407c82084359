# Test tools: mh-probe, the bounded TCP/UDP prober of the namespace tests.
PROBE := $(B)/mh-probe
TESTBIN += $(PROBE)

$(PROBE): tests/tools/probe.c | $(B)
	$(CC) $(CFLAGS) -o $@ $<
