#!/usr/bin/env bash
# The man pages are kept true by the code (issue 7):
#   - every option the core accepts (the keys of mh_config_set in
#     common/options.c) is documented in multihome(8) as an OpenVPN argument
#     KEY=..., and every entry of the pppd option table (pppd-plugin/multihome.c)
#     as a multihome-KEY tag, each with its default;
#   - no option is documented that the code does not accept;
#   - every multihomectl subcommand and flag (tools/multihomectl.c) is in the
#     SYNOPSIS and COMMANDS of multihomectl(8), every warning code of status
#     under WARNINGS;
#   - both pages render without groff warnings.
# Needs no root and no namespace; lives with the ns tests so tests/run runs it.

set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../.." && pwd)
# shellcheck source=tests/lib/check.sh
. "$HERE/../lib/check.sh"

MAN1=$TOP/man/multihome.8
MAN2=$TOP/man/multihomectl.8

# plain PAGE: the page's source with roff's escapes for - " ' and fonts undone.
plain() {
	sed -e 's/\\-/-/g' -e 's/\\f[BIRP]//g' -e 's/\\(dq/"/g' -e "s/\\\\(aq/'/g" \
		-e 's/\\&//g' -e 's/\\c$//' "$1"
}

# entries PAGE SECTION: one line per .TP entry of SECTION: "TAG<TAB>BODY".
entries() {
	plain "$1" | awk -v sec="$2" '
		/^\.SH/ { flush(); insec = ($0 ~ "^\\.SH \"?" sec "\"?$"); next }
		!insec { next }
		/^\.TP/ { flush(); want_tag = 1; next }
		/^\.(PP|P|LP)$/ { flush(); next }
		want_tag { tag = $0; sub(/^\.[BIR]+ /, "", tag); gsub(/"/, "", tag); want_tag = 0; have = 1; body = ""; next }
		have { body = body " " $0 }
		function flush() { if (have) printf "%s\t%s\n", tag, body; have = 0 }
		END { flush() }'
}

for f in "$MAN1" "$MAN2"; do
	if [ ! -f "$f" ]; then
		not_ok "man page ${f#"$TOP"/} exists"
		exit 0
	fi
done

# ---- what the code accepts
KEYS=$(sed -n '/^int mh_config_set(/,/^}/p' "$TOP/common/options.c" |
	grep -o '!strcmp(key, "[a-z-]*")' | sed 's/.*"\(.*\)".*/\1/' | sort -u)
PPPD_OPTS=$(grep -o '^[[:space:]]*MH_OPTION("[a-z-]*"\|\.name = "[a-z-]*"' \
	"$TOP/pppd-plugin/multihome.c" | sed 's/.*"\(.*\)".*/\1/' | sort -u)
# the subcommand table of tools/multihomectl.c, the flags and warning codes of tools/*.c
CMDS=$(sed -n '/^} commands\[\] = {/,/^};/p;/ commands\[\] = {/,/^};/p' "$TOP/tools/multihomectl.c" |
	grep -o '{ "[a-z]*",' | sed 's/.*"\(.*\)".*/\1/' | grep -vx help | sort -u)
FLAGS=$(grep -ho 'strcmp(argv\[i\], "--[a-z]*"' "$TOP"/tools/*.c | grep -o -- '--[a-z]*' |
	grep -vx -- '--help' | sort -u)
CODES=$(grep -ho '\bwarn("[a-z-]*"' "$TOP"/tools/*.c | sed 's/.*"\(.*\)"/\1/' | sort -u)

if [ -z "$KEYS" ] || [ -z "$PPPD_OPTS" ] || [ -z "$CMDS" ]; then
	not_ok "docs: the option keys, pppd options and subcommands are found in the code" \
		"keys: $KEYS; pppd: $PPPD_OPTS; commands: $CMDS"
	exit 0
fi
ok "docs: found $(wc -w <<<"$KEYS") option keys, $(wc -w <<<"$PPPD_OPTS") pppd options, $(wc -w <<<"$CMDS") subcommands, $(wc -w <<<"$CODES") warning codes in the code"

OPTS=$(entries "$MAN1" OPTIONS)

# ---- multihome(8): pppd options and OpenVPN arguments, with defaults
for o in $PPPD_OPTS; do
	line=$(awk -F'\t' -v o="$o" '{ split($1, w, /[ ,]+/) } w[1] == o' <<<"$OPTS")
	if [ -z "$line" ]; then
		not_ok "multihome.8 documents pppd option $o" "no OPTIONS entry tagged $o"
	elif ! grep -q 'Default' <<<"$line"; then
		not_ok "multihome.8 documents pppd option $o" "its entry names no default"
	else
		ok "multihome.8 documents pppd option $o, with its default"
	fi
done
for k in $KEYS; do
	if awk -F'\t' '{ print $1 }' <<<"$OPTS" | grep -q "\(^\|[ ,]\)$k=" &&
		grep -qx "multihome-$k" <<<"$PPPD_OPTS"; then
		ok "multihome.8 documents $k= (OpenVPN) and the pppd table has multihome-$k"
	else
		not_ok "multihome.8 documents $k= (OpenVPN) and the pppd table has multihome-$k"
	fi
done
# nothing documented that the code refuses
stale=
for t in $(awk -F'\t' '{ split($1, w, /[ ,]+/); print w[1] }' <<<"$OPTS"); do
	grep -qx -- "$t" <<<"$PPPD_OPTS" || stale="$stale $t"
done
if [ -z "$stale" ]; then
	ok "multihome.8 documents no option the code does not accept"
else
	not_ok "multihome.8 documents no option the code does not accept" "stale:$stale"
fi

# ---- multihomectl(8): subcommands, flags, warning codes
SYN=$(plain "$MAN2" | sed -n '/^\.SH SYNOPSIS/,/^\.SH/p')
COMMANDS=$(entries "$MAN2" COMMANDS)
for c in $CMDS; do
	if grep -q "^\.B multihomectl $c\b" <<<"$SYN" &&
		awk -F'\t' '{ split($1, w, / /) } { print w[1] }' <<<"$COMMANDS" | grep -qx "$c"; then
		ok "multihomectl.8 documents subcommand $c (SYNOPSIS and COMMANDS)"
	else
		not_ok "multihomectl.8 documents subcommand $c (SYNOPSIS and COMMANDS)"
	fi
done
for fl in $FLAGS; do
	if grep -q -- "$fl" <<<"$SYN" && grep -q -- "$fl" <<<"$COMMANDS"; then
		ok "multihomectl.8 documents flag $fl"
	else
		not_ok "multihomectl.8 documents flag $fl"
	fi
done
WARN=$(entries "$MAN2" WARNINGS | cut -f1)
for code in $CODES; do
	if grep -qx -- "$code" <<<"$WARN"; then
		ok "multihomectl.8 documents warning $code"
	else
		not_ok "multihomectl.8 documents warning $code"
	fi
done

# ---- both pages render cleanly
if command -v groff >/dev/null; then
	for f in "$MAN1" "$MAN2"; do
		out=$(LC_ALL=C groff -man -Tutf8 -ww -z "$f" 2>&1)
		if [ -z "$out" ]; then
			ok "${f#"$TOP"/} renders without groff warnings"
		else
			not_ok "${f#"$TOP"/} renders without groff warnings" "$(head -n 3 <<<"$out")"
		fi
	done
else
	skip "man pages render without groff warnings" "no groff"
fi
