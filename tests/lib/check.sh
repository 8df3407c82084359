# Shared result reporting for every test tier.  Source it; then use
#   ok DESC | not_ok DESC [DETAIL] | skip DESC REASON | check DESC CMD...
# Each prints one "TEST: DESC [ OK ]" line and appends to $MH_RESULTS
# (tests/run sets it; a script run alone gets its own and a summary at exit).
# shellcheck shell=bash

if [ -z "${MH_RESULTS:-}" ]; then
	MH_RESULTS=$(mktemp /tmp/mh-results.XXXXXX)
	export MH_RESULTS
	_mh_own_results=1
fi

_mh_record() { # STATUS DESC
	printf '%s\t%s\n' "$1" "$2" >>"$MH_RESULTS"
}

# MH_TEST_PREFIX (e.g. "nft: ") names a second run of the same checks.
ok() {
	printf 'TEST: %-66s [ OK ]\n' "${MH_TEST_PREFIX:-}$1"
	_mh_record pass "${MH_TEST_PREFIX:-}$1"
}

not_ok() {
	printf 'TEST: %-66s [FAIL]\n' "${MH_TEST_PREFIX:-}$1"
	[ -n "${2:-}" ] && printf '      %s\n' "$2"
	_mh_record fail "${MH_TEST_PREFIX:-}$1"
	return 0
}

skip() {
	printf 'TEST: %-66s [SKIP] %s\n' "${MH_TEST_PREFIX:-}$1" "${2:-}"
	_mh_record skip "${MH_TEST_PREFIX:-}$1"
}

# check DESC CMD... : OK when CMD exits 0; its output is shown on failure.
check() {
	local desc=$1 out
	shift
	if out=$("$@" 2>&1); then
		ok "$desc"
	else
		not_ok "$desc" "$(printf '%s' "$out" | tail -n 5)"
	fi
}

# Print "N passed, N failed, N skipped" for the results file.
mh_summary() {
	local p f s
	p=$(grep -c '^pass' "$MH_RESULTS" || true)
	f=$(grep -c '^fail' "$MH_RESULTS" || true)
	s=$(grep -c '^skip' "$MH_RESULTS" || true)
	echo "$p passed, $f failed, $s skipped"
	[ "$f" = 0 ]
}

if [ -n "${_mh_own_results:-}" ]; then
	trap 'mh_summary; rm -f "$MH_RESULTS"' EXIT
fi
