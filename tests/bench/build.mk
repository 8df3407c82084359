# Benchmark tools: mh-bench-flow, the failover probe of `make bench`
# (tests/bench/run.sh drives it with the pppd harness and the shell baseline).
BENCH_FLOW := $(B)/mh-bench-flow
TESTBIN += $(BENCH_FLOW)

$(BENCH_FLOW): tests/bench/flow.c | $(B)
	$(CC) $(CFLAGS) -o $@ $<

# mh-bench-floor: the kernel's cost of the messages one event sends (the
# floor column); it builds them with the core, so it links the core.
BENCH_FLOOR := $(B)/mh-bench-floor
TESTBIN += $(BENCH_FLOOR)

$(BENCH_FLOOR): tests/bench/floor.c $(CORE_LIB) common/*.h | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(CORE_LIB) $(PKG_LIBS) $(LDFLAGS)
