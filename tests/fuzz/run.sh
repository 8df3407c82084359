#!/bin/bash
# Run the parser fuzzer for FUZZ_SECONDS (default 60) on a copy of the seed
# corpus (tests/fuzz/corpus/ is never written).  Exit 0 = no crash, no leak,
# no broken round trip.  Crashing inputs are kept in build/fuzz-artifacts/.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
bin=${FUZZ_BIN:-$top/build/mh-fuzz}
secs=${FUZZ_SECONDS:-60}
work=$(mktemp -d /tmp/mh-fuzz.XXXXXX)
trap 'rm -rf "$work"' EXIT
art=$top/build/fuzz-artifacts
mkdir -p "$art" "$work/corpus"
cp "$top"/tests/fuzz/corpus/* "$work/corpus/"
# FUZZ_SEED: libFuzzer's -seed (0, the default, is a new random one each run)
ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
	"$bin" -max_total_time="$secs" -seed="${FUZZ_SEED:-0}" -timeout=10 -rss_limit_mb=1024 -max_len=9000 \
	-print_final_stats=1 -artifact_prefix="$art/" \
	"$work/corpus" >"$work/log" 2>&1
rc=$?
grep -E '^#[0-9]+.*(DONE|pulse)|stat::number_of_executed_units|ERROR|SUMMARY|leak' "$work/log" | tail -n 8
if [ $rc != 0 ]; then
	tail -n 40 "$work/log"
	echo "fuzz: failure (exit $rc); reproducer(s) in $art" >&2
fi
exit $rc
