# Benchmark tools of `make bench` (tests/bench/run.sh drives them with the
# pppd harness and the shell baseline):
#   mh-bench-flow   the failover probe
#   mh-bench-floor  the kernel's cost of the messages one event sends (the
#                   floor column); it builds them with the core, so it links it
#   mh-bench-rss    a command's peak resident size (real pppd, for memory)
BENCH_FLOW := $(B)/mh-bench-flow
BENCH_FLOOR := $(B)/mh-bench-floor
BENCH_RSS := $(B)/mh-bench-rss
TESTBIN += $(BENCH_FLOW) $(BENCH_FLOOR) $(BENCH_RSS)

$(BENCH_FLOW): tests/bench/flow.c | $(B)
	$(CC) $(CFLAGS) -o $@ $<

$(BENCH_FLOOR): tests/bench/floor.c $(CORE_LIB) common/*.h | $(B)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(CORE_LIB) $(PKG_LIBS) $(LDFLAGS)

$(BENCH_RSS): tests/bench/rss.c | $(B)
	$(CC) $(CFLAGS) -o $@ $<
