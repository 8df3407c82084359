#!/bin/bash
# The plot of `make bench`: one link event's cost against the number of
# links, both firewall backends, the shell baseline and the floor, up and
# down events side by side, from the data tests/bench/run.sh leaves in
# BENCH_OUT (default build/bench/): iptables.dat, nft.dat.
#
#   tests/bench/plot.sh [OUT.png]     (default BENCH_OUT/bench.png)
#
# gnuplot (Debian's gnuplot-nox) is a test dependency (debian/tests/control),
# not a build one: only the bench draws.  Without it, or without the data,
# this says so and exits 1: the tables of run.sh are the bench's figures.
# SPDX-License-Identifier: GPL-2.0-or-later
set -u
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
OUT=${BENCH_OUT:-${MH_BUILD:-$TOP/build}/bench}
PNG=${1:-$OUT/bench.png}

command -v gnuplot >/dev/null || { echo "bench plot: gnuplot is not installed (apt-get install gnuplot-nox): no $PNG" >&2; exit 1; }
for b in iptables nft; do
	[ -s "$OUT/$b.dat" ] || { echo "bench plot: no $OUT/$b.dat (run tests/bench/run.sh with that backend first): no $PNG" >&2; exit 1; }
done
stamp=$(sed -n 's/^multihome bench: \([^,]*\),.*/\1/p' "$OUT/nft.txt" 2>/dev/null | head -n 1)

gnuplot <<EOF || { echo "bench plot: gnuplot failed" >&2; exit 1; }
set terminal pngcairo size 1200,520 font "DejaVu Sans,10"
set output "$PNG"
set multiplot layout 1,2 title "multihome: one link event against the number of links (medians, one make bench, ${stamp:-?})"
set logscale xy
set xrange [1.6:320]
set xtics (2, 16, 64, 256)
set ylabel "event cost (us)"
set xlabel "links registered"
set grid
set key top left font ",9" box opaque
set yrange [1:2000000]    # a fast machine's floor is under 10 us
do for [ev = 0:1] {
	col = ev == 0 ? 2 : 3
	set title (ev == 0 ? "up" : "down")
	plot "$OUT/nft.dat" using 1:col with linespoints lw 2 pt 7 lc rgb "#1f77b4" title "multihome, nftables", \
	     "$OUT/nft.dat" using 1:(column(col + 2)) with linespoints lw 1 dt 2 pt 6 lc rgb "#1f77b4" title "floor, nftables", \
	     "$OUT/iptables.dat" using 1:col with linespoints lw 2 pt 5 lc rgb "#d62728" title "multihome, iptables (libiptc)", \
	     "$OUT/iptables.dat" using 1:(column(col + 6)) with linespoints lw 1 dt 3 pt 4 lc rgb "#d62728" title "its netlink half (all but libiptc)", \
	     "$OUT/iptables.dat" using 1:(column(col + 2)) with linespoints lw 1 dt 2 pt 4 lc rgb "#ff9896" title "floor, iptables", \
	     "$OUT/nft.dat" using 1:(column(col + 4)) with linespoints lw 2 pt 9 lc rgb "#555555" title "shell (ip, iptables-legacy)"
}
unset multiplot
EOF
echo "bench plot: $PNG"
