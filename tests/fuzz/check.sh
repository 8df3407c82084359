#!/bin/bash
# make check: the parser fuzzer for a short time (FUZZ_CHECK_SECONDS, 20 s);
# one result line.  `make fuzz` runs it for FUZZ_SECONDS.
top=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=tests/lib/check.sh
. "$top/tests/lib/check.sh"
secs=${FUZZ_CHECK_SECONDS:-20}
seed=${FUZZ_SEED:-1}     # the same inputs on every run: a failure can be reproduced
desc="fuzz: option, pin, argument, registry, netlink-answer parsers, plan and diffs ${secs}s (seed $seed), no crash or leak"
if ! command -v clang-14 >/dev/null && ! command -v clang >/dev/null; then
	skip "$desc" "clang not installed"
	exit 0
fi
if ! make -s -C "$top" build/mh-fuzz >/tmp/mh-fuzz-build.$$ 2>&1; then
	not_ok "$desc" "build failed: $(tail -n 3 /tmp/mh-fuzz-build.$$)"
	rm -f /tmp/mh-fuzz-build.$$
	exit 0
fi
rm -f /tmp/mh-fuzz-build.$$
if out=$(FUZZ_SECONDS=$secs FUZZ_SEED=$seed "$top/tests/fuzz/run.sh" 2>&1); then
	ok "$desc"
	printf '%s\n' "$out" | grep -m1 executed_units | sed 's/^/      /'
else
	not_ok "$desc" "$(printf '%s' "$out" | grep -E 'ERROR|SUMMARY|abort|reproducer' | head -n 4)"
fi
