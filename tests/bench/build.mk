# Benchmark tools: mh-bench-flow, the failover probe of `make bench`
# (tests/bench/run.sh drives it with the pppd harness and the shell baseline).
BENCH_FLOW := $(B)/mh-bench-flow
TESTBIN += $(BENCH_FLOW)

$(BENCH_FLOW): tests/bench/flow.c | $(B)
	$(CC) $(CFLAGS) -o $@ $<
