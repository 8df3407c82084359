/* multihomectl status [--json]: per link its state and traffic (flows,
 * bytes and packets out, its configured share of the balanced route beside
 * the share of the balanced flows it really got), its settings, the
 * balanced default route as the kernel has it, the firewall backend, and the
 * warnings (tools/report.c).  Text within 80 columns, colour only on a
 * terminal; --json the same as one object.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/rtnetlink.h>

#include "ctl.h"

#define COLS 80         /* the text fits a terminal of 80 columns */
#define CONT 4          /* a wrapped line goes on this much further in */

static int colour;      /* on a terminal, unless NO_COLOR or TERM=dumb */

/* ---- small helpers ---- */

static const char *ip(uint32_t a, char *buf)
{
	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
	return buf;
}

static const char *nat_name(enum mh_nat n)
{
	return n == MH_NAT_SNAT ? "snat" : n == MH_NAT_OFF ? "off" : "masquerade";
}

static const char *when(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !localtime_r(&tt, &tm))
		return "-";
	strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm);
	return buf;
}

static const char *ago(long long t, char *buf, size_t len)
{
	long long d = (long long)time(NULL) - t;

	if (!t)
		return "";
	if (d < 0)
		d = 0;
	if (d < 120)
		snprintf(buf, len, "%llds ago", d);
	else if (d < 7200)
		snprintf(buf, len, "%lldmin ago", d / 60);
	else if (d < 172800)
		snprintf(buf, len, "%lldh ago", d / 3600);
	else
		snprintf(buf, len, "%lldd ago", d / 86400);
	return buf;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static const struct mh_status_if *if_by_index(const struct mh_status *st, int index)
{
	unsigned i;

	for (i = 0; i < st->nifs; i++)
		if (st->ifs[i].index == index)
			return &st->ifs[i];
	return NULL;
}

/* ---- the balanced default route as the kernel has it ---- */

struct member {
	const struct mh_link *link;
	int oif;
	unsigned weight;
};

struct balanced {
	const char *kind;       /* "nexthop-group", "nexthop", "multipath", "single", "none" */
	uint32_t id;
	unsigned n;
	struct member m[MH_MAX_LINKS];
};

static const struct mh_nexthop *nh_find(const struct mh_routing *k, uint32_t id)
{
	unsigned i;

	for (i = 0; i < k->nnhs; i++)
		if (k->nhs[i].id == id)
			return &k->nhs[i];
	return NULL;
}

static void read_balanced(const struct mh_status *st, struct balanced *b)
{
	const struct mh_routing *k = &st->kernel;
	unsigned i, j;

	memset(b, 0, sizeof *b);
	b->kind = "none";
	for (i = 0; i < k->nroutes; i++) {
		const struct mh_route *r = &k->routes[i];
		if (r->table != RT_TABLE_MAIN || r->type != RTN_UNICAST)
			continue;
		if (r->nhid == MH_NH_GROUP_ID && k->has_group) {
			b->kind = "nexthop-group";
			b->id = r->nhid;
			for (j = 0; j < k->ngroup && b->n < MH_MAX_LINKS; j++) {
				const struct mh_nexthop *n = nh_find(k, k->group[j].id);
				b->m[b->n++] = (struct member){
					.link = mh_status_member_link(st, k->group[j].id, 0),
					.oif = n ? n->oif : 0, .weight = k->group[j].weight };
			}
		} else if (r->nhid) {
			const struct mh_nexthop *n = nh_find(k, r->nhid);
			b->kind = "nexthop";
			b->id = r->nhid;
			b->m[b->n++] = (struct member){ .link = mh_status_member_link(st, r->nhid, 0),
							.oif = n ? n->oif : 0, .weight = 1 };
		} else if (r->nhops) {
			b->kind = "multipath";
			for (j = 0; j < r->nhops && b->n < MH_MAX_LINKS; j++) {
				const struct mh_hop *h = &k->hops[r->hop0 + j];
				b->m[b->n++] = (struct member){ .link = mh_status_member_link(st, 0, h->oif),
								.oif = h->oif, .weight = h->weight };
			}
		} else {
			b->kind = "single";
			b->m[b->n++] = (struct member){ .link = mh_status_member_link(st, 0, r->oif),
							.oif = r->oif, .weight = 1 };
		}
		return;
	}
}

/* ---- text: colour, wrapping, numbers ---- */

static void paint(const char *sgr)
{
	if (colour)
		printf("\033[%sm", sgr);
}

static void unpaint(void)
{
	if (colour)
		fputs("\033[0m", stdout);
}

static const char *severity_sgr(int severity)
{
	return severity == CTL_CRITICAL ? "1;31" : severity == CTL_WARN ? "33" : "32";
}

/* Print TEXT after COL columns already on the line (their separator
 * included), wrapped at blanks into COLS columns; a continuation line starts
 * at column INDENT + CONT.  NBSP holds two words together. */
#define NBSP '\x1f'
static void wrap(unsigned col, unsigned indent, const char *text)
{
	int first = 1;          /* no blank before the first word of a line */
	size_t n, j;

	for (; *text; text += n) {
		while (*text == ' ')
			text++;
		n = strcspn(text, " ");
		if (!n)
			break;
		if (col > indent + CONT && col + !first + n > COLS) {
			printf("\n%*s", (int)(indent + CONT), "");
			col = indent + CONT;
			first = 1;
		}
		if (!first) {
			putchar(' ');
			col++;
		}
		for (j = 0; j < n; j++)
			putchar(text[j] == NBSP ? ' ' : text[j]);
		col += (unsigned)n;
		first = 0;
	}
	putchar('\n');
}

static const char *human_bytes(uint64_t v, char *buf, size_t len)
{
	static const char *const unit[] = { "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	unsigned u = 0;

	if (v < 1024) {
		snprintf(buf, len, "%llu B", (unsigned long long)v);
		return buf;
	}
	for (d /= 1024; d >= 1024 && u < 5; u++)
		d /= 1024;
	snprintf(buf, len, "%.1f %s", d, unit[u]);
	return buf;
}

/* Exact up to seven digits, then in millions or billions. */
static const char *count(long long v, char *buf, size_t len)
{
	if (v < 0)
		snprintf(buf, len, "-");
	else if (v < 10000000)
		snprintf(buf, len, "%lld", v);
	else if (v < 10000000000LL)
		snprintf(buf, len, "%.1fM", (double)v / 1e6);
	else
		snprintf(buf, len, "%.1fG", (double)v / 1e9);
	return buf;
}

/* A part 0..1 as a percentage, one decimal unless it is a whole number
 * (TENTHS: always one); "-" when unknown. */
static const char *percent(double part, int tenths, char *buf, size_t len)
{
	long t = (long)(part * 1000 + 0.5);

	if (part < 0)
		snprintf(buf, len, "-");
	else if (t % 10 || tenths)
		snprintf(buf, len, "%ld.%ld%%", t / 10, t % 10);
	else
		snprintf(buf, len, "%ld%%", t / 10);
	return buf;
}

/* ---- text: the traffic table, one line per link ---- */

enum { C_LINK, C_STATE, C_IFACE, C_FLOWS, C_BYTES, C_PACKETS, C_SHARE, C_GOT, NCOL };

static const char *const col_head[NCOL] = {
	"link", "state", "iface", "flows", "bytes out", "packets out", "share", "got" };

struct row {
	char cell[NCOL][40];
	int severity;
};

static void table_row(const struct ctl_report *r, unsigned i, struct row *w)
{
	const struct mh_link *l = &r->st.links[i];
	const struct mh_link_traffic *t = &r->st.traffic[i];
	const struct mh_status_if *k = t->counters;

	memset(w, 0, sizeof *w);
	w->severity = ctl_link_severity(r, i);
	snprintf(w->cell[C_LINK], sizeof w->cell[0], "%s", l->cfg.name);
	snprintf(w->cell[C_STATE], sizeof w->cell[0], "%s", ctl_link_state(l));
	/* in brackets: the interface it was last on, or one that is gone */
	snprintf(w->cell[C_IFACE], sizeof w->cell[0], k || !l->ifname[0] ? "%s" : "(%s)",
		 l->ifname[0] ? l->ifname : "-");
	count(t->flows, w->cell[C_FLOWS], sizeof w->cell[0]);
	if (k && k->has_stats) {
		human_bytes(k->tx_bytes, w->cell[C_BYTES], sizeof w->cell[0]);
		count((long long)k->tx_packets, w->cell[C_PACKETS], sizeof w->cell[0]);
	} else {
		strcpy(w->cell[C_BYTES], "-");
		strcpy(w->cell[C_PACKETS], "-");
	}
	percent(k ? t->share_configured : -1, 0, w->cell[C_SHARE], sizeof w->cell[0]);
	percent(t->share_balanced, 1, w->cell[C_GOT], sizeof w->cell[0]);
}

static void print_cell(const char *s, unsigned width, int left, const char *sgr)
{
	if (sgr)
		paint(sgr);
	printf(left ? "%-*s" : "%*s", (int)width, s);
	if (sgr)
		unpaint();
}

/* One line of the table from column C0 on (C_STATE when the name has a line
 * of its own). */
static void print_line(const char (*cell)[40], const unsigned *width, int c0, const char *state_sgr)
{
	int c;

	for (c = c0; c < NCOL; c++) {
		if (c > c0)
			fputs("  ", stdout);
		/* the last column unpadded: no blanks at the end of the line */
		print_cell(cell[c], c == NCOL - 1 ? 0 : width[c], c <= C_IFACE,
			   c == C_STATE ? state_sgr : NULL);
	}
	putchar('\n');
}

static void print_table(const struct ctl_report *r)
{
	struct row *rows = calloc(r->st.nlinks, sizeof *rows);
	char head[NCOL][40];
	unsigned width[NCOL], i, total = 0;
	int c, own_line;

	if (!rows)
		return;
	for (c = 0; c < NCOL; c++) {
		snprintf(head[c], sizeof head[c], "%s", col_head[c]);
		width[c] = (unsigned)strlen(col_head[c]);
	}
	for (i = 0; i < r->st.nlinks; i++) {
		table_row(r, i, &rows[i]);
		for (c = 0; c < NCOL; c++)
			if (strlen(rows[i].cell[c]) > width[c])
				width[c] = (unsigned)strlen(rows[i].cell[c]);
	}
	for (c = 0; c < NCOL; c++)
		total += width[c] + (c ? 2 : 0);
	own_line = total > COLS;        /* a long name: on a line of its own */
	if (own_line)
		printf("link\n  ");
	paint("1");
	print_line(head, width, own_line ? C_STATE : C_LINK, NULL);
	unpaint();
	for (i = 0; i < r->st.nlinks; i++) {
		if (own_line)
			printf("%s\n  ", rows[i].cell[C_LINK]);
		print_line(rows[i].cell, width, own_line ? C_STATE : C_LINK,
			   rows[i].severity || r->st.links[i].up ? severity_sgr(rows[i].severity) : NULL);
	}
	free(rows);
}

static void print_traffic_note(const struct mh_status *st)
{
	char buf[400];

	if (st->ct_err[0])
		snprintf(buf, sizeof buf, "flows: not counted (%s)", st->ct_err);
	else
		snprintf(buf, sizeof buf, "share: by weight; got: of the %lld outgoing, not pinned "
			 "flows tracked now",
			 st->balanced_total < 0 ? 0 : st->balanced_total);
	wrap(0, 0, buf);
}

/* ---- text: the rest ---- */

static size_t targets_text(const struct mh_link *l, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];
	size_t n = 0;
	unsigned j;

	buf[0] = 0;
	for (j = 0; j < l->cfg.ntrack && n < len; j++)
		n += (size_t)snprintf(buf + n, len - n, "%s%s", j ? ", " : "", ip(l->cfg.track[j], a));
	return n;
}

/* "tracking A, B every 1 s: online since T (ago), rtt 1.234 ms, loss 0%" */
static void print_tracking_text(const struct mh_status *st, unsigned i)
{
	const struct mh_link *l = &st->links[i];
	const struct mh_link_traffic *t = st->traffic ? &st->traffic[i] : NULL;
	char buf[512], t1[64], t2[64];
	size_t n = (size_t)snprintf(buf, sizeof buf, "tracking ");

	n += targets_text(l, buf + n, sizeof buf - n);
	n += (size_t)snprintf(buf + n, sizeof buf - n, " every %u.%03u s (down after %u lost rounds, "
			      "up after %u good): %s since %s (%s)", l->cfg.track_interval_ms / 1000,
			      l->cfg.track_interval_ms % 1000, l->cfg.track_down, l->cfg.track_up,
			      l->online ? "online" : "offline", when(l->health_since, t1, sizeof t1),
			      ago(l->health_since, t2, sizeof t2));
	if (t && t->has_health && t->health.rtt_us > 0)
		n += (size_t)snprintf(buf + n, sizeof buf - n, ", rtt %lld.%03lld ms",
				      t->health.rtt_us / 1000, t->health.rtt_us % 1000);
	if (t && t->has_health)
		snprintf(buf + n, sizeof buf - n, ", loss %u%% over the last %u rounds", t->health.loss_pct,
			 t->health.rounds < 10 ? t->health.rounds : 10);
	else if (t)
		snprintf(buf + n, sizeof buf - n, ", no figures from its host (pid %d) yet", l->pid);
	printf("  ");
	wrap(2, 2, buf);
}

static void print_link_text(const struct mh_status *st, unsigned i)
{
	const struct mh_link *l = &st->links[i];
	const struct mh_status_if *k = l->ifname[0] ? ctl_if_by_name(st, l->ifname) : NULL;
	char a[INET_ADDRSTRLEN], t1[64], t2[64], pin[128], buf[1600];
	size_t n;
	unsigned j;

	n = (size_t)snprintf(buf, sizeof buf, "link %s: %s", l->cfg.name, ctl_link_state(l));
	if (l->up && !l->online)
		n += (size_t)snprintf(buf + n, sizeof buf - n, ", up");  /* offline: since is the up's */
	if (l->ifname[0])
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s %s", l->up ? " on" : ", last up on",
				      l->ifname);
	if (l->up && !(k && k->index == l->ifindex))
		n += (size_t)snprintf(buf + n, sizeof buf - n, " (interface gone)");
	/* the registry knows when a link came up, not when it went down */
	if (l->since)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s %s (%s)", l->up ? ", since" : " at",
				      when(l->since, t1, sizeof t1), ago(l->since, t2, sizeof t2));
	if (l->pid)
		snprintf(buf + n, sizeof buf - n, ", pid\x1f%d", l->pid);
	wrap(0, 0, buf);
	snprintf(buf, sizeof buf, "table %u, mark 0x%x/0x%x, priority %u, weight %u", l->cfg.table,
		 l->cfg.mark, l->cfg.mask, l->cfg.priority, l->cfg.weight);
	printf("  ");
	wrap(2, 2, buf);
	n = (size_t)snprintf(buf, sizeof buf, "nat %s, reply-via-link %s%s; local %s",
			     nat_name(l->cfg.nat), l->cfg.reply_via_link ? "yes" : "no",
			     l->cfg.pin_fallback ? "" : ", pin-fallback no", ip(l->local, a));
	if (l->peer)
		n += (size_t)snprintf(buf + n, sizeof buf - n, ", peer %s", ip(l->peer, a));
	if (l->gateway)
		snprintf(buf + n, sizeof buf - n, ", gateway %s", ip(l->gateway, a));
	printf("  ");
	wrap(2, 2, buf);
	if (l->up && l->cfg.ntrack)
		print_tracking_text(st, i);
	if (!l->up && mh_link_strict(l))
		printf("  its pins are refused while it is down (pin-fallback no)\n");
	for (j = 0, n = 0; j < l->cfg.npins && n < sizeof buf; j++)
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s%s", j ? "; " : "pins: ",
				      mh_pin_format(&l->cfg.pins[j], pin, sizeof pin));
	if (l->cfg.npins) {
		printf("  ");
		wrap(2, 2, buf);
	}
}

static void print_balanced_text(const struct mh_status *st, const struct balanced *bal)
{
	char buf[MH_MAX_LINKS * 48 + 64];
	size_t n = 0;
	unsigned i;

	n += (size_t)snprintf(buf, sizeof buf, "balanced default route:");
	if (!bal->n)
		snprintf(buf + n, sizeof buf - n, " none");
	else if (!strcmp(bal->kind, "nexthop-group"))
		n += (size_t)snprintf(buf + n, sizeof buf - n, " nexthop group 0x%x:", bal->id);
	else if (!strcmp(bal->kind, "multipath"))
		n += (size_t)snprintf(buf + n, sizeof buf - n, " multipath route:");
	else
		n += (size_t)snprintf(buf + n, sizeof buf - n, " single route:");
	for (i = 0; i < bal->n && n < sizeof buf; i++) {
		const struct mh_status_if *k = if_by_index(st, bal->m[i].oif);
		n += (size_t)snprintf(buf + n, sizeof buf - n, "%s %s\x1f(%s)\x1fweight\x1f%u", i ? "," : "",
				      bal->m[i].link ? bal->m[i].link->cfg.name : "?",
				      k ? k->name : "?", bal->m[i].weight);
	}
	wrap(0, 0, buf);
}

static void print_text(const struct ctl_report *r, const struct balanced *bal)
{
	const struct mh_status *st = &r->st;
	const char *fwname = st->backend == MH_FW_NFT ? "nft" : "iptables";
	char buf[256];
	unsigned i;

	if (!st->nlinks)
		printf("no links registered in %s\n", mh_rundir());
	else {
		print_table(r);
		if (st->balanced_total >= 0 || st->ct_err[0])
			print_traffic_note(st);
	}
	for (i = 0; i < st->nlinks; i++)
		print_link_text(st, i);
	print_balanced_text(st, bal);
	snprintf(buf, sizeof buf, "firewall: %s (%s)%s%s", fwname,
		 st->backend == MH_FW_NFT ? (st->fw.table ? "table ip multihome" : "no table ip multihome")
					  : "legacy x_tables, chains MULTIHOME-*",
		 st->last_backend[0] && strcmp(st->last_backend, fwname) ? ", the last event used " : "",
		 st->last_backend[0] && strcmp(st->last_backend, fwname) ? st->last_backend : "");
	wrap(0, 0, buf);
	for (i = 0; i < r->nwarnings; i++) {
		const struct ctl_warning *w = &r->warnings[i];
		int n = snprintf(buf, sizeof buf, "%s (%s):",
				 w->severity == CTL_CRITICAL ? "critical" : "warning", w->code);
		paint(severity_sgr(w->severity));
		fputs(buf, stdout);
		unpaint();
		putchar(' ');
		wrap((unsigned)n + 1, 0, w->msg);
	}
}

/* ---- JSON ---- */

static const char *health_name(int severity)
{
	return severity == CTL_CRITICAL ? "critical" : severity == CTL_WARN ? "warning" : "ok";
}

static void json_count(const char *key, long long v)
{
	if (v < 0)
		printf(",\"%s\":null", key);
	else
		printf(",\"%s\":%lld", key, v);
}

static void json_part(const char *key, double v)
{
	if (v < 0)
		printf(",\"%s\":null", key);
	else
		printf(",\"%s\":%.4f", key, v);
}

static void print_traffic_json(const struct ctl_report *r, unsigned i)
{
	const struct mh_link_traffic *t = &r->st.traffic[i];
	const struct mh_status_if *k = t->counters && t->counters->has_stats ? t->counters : NULL;

	printf(",\"health\":\"%s\"", health_name(ctl_link_severity(r, i)));
	json_count("flows", t->flows);
	json_count("flows_balanced", t->balanced);
	json_part("share_configured", t->counters ? t->share_configured : -1);
	json_part("share_balanced", t->share_balanced);
	json_count("tx_bytes", k ? (long long)k->tx_bytes : -1);
	json_count("tx_packets", k ? (long long)k->tx_packets : -1);
	json_count("rx_bytes", k ? (long long)k->rx_bytes : -1);
	json_count("rx_packets", k ? (long long)k->rx_packets : -1);
}

/* "tracking": null (not tracked), or its configuration, state and figures */
static void print_tracking_json(const struct ctl_report *r, unsigned i)
{
	const struct mh_link *l = &r->st.links[i];
	const struct mh_link_traffic *t = &r->st.traffic[i];
	char a[INET_ADDRSTRLEN];
	unsigned j;

	if (!l->cfg.ntrack) {
		printf(",\"tracking\":null");
		return;
	}
	printf(",\"tracking\":{\"targets\":[");
	for (j = 0; j < l->cfg.ntrack; j++)
		printf("%s\"%s\"", j ? "," : "", ip(l->cfg.track[j], a));
	printf("],\"interval_ms\":%u,\"down\":%u,\"up\":%u", l->cfg.track_interval_ms,
	       l->cfg.track_down, l->cfg.track_up);
	if (l->up)
		printf(",\"state\":\"%s\",\"since\":%lld", l->online ? "online" : "offline",
		       l->health_since);
	else
		printf(",\"state\":null,\"since\":null");
	if (t->has_health) {
		if (t->health.rtt_us > 0)
			printf(",\"rtt_ms\":%.3f", (double)t->health.rtt_us / 1000.0);
		else
			printf(",\"rtt_ms\":null");
		printf(",\"loss_pct\":%u,\"rounds\":%u,\"probes\":%llu,\"replies\":%llu}",
		       t->health.loss_pct, t->health.rounds, t->health.probes, t->health.replies);
	} else {
		printf(",\"rtt_ms\":null,\"loss_pct\":null,\"rounds\":null,\"probes\":null,"
		       "\"replies\":null}");
	}
}

static void print_link_json(const struct ctl_report *r, unsigned i)
{
	const struct mh_status *st = &r->st;
	const struct mh_link *l = &st->links[i];
	const struct mh_status_if *k = l->ifname[0] ? ctl_if_by_name(st, l->ifname) : NULL;
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN], pin[128];
	unsigned j;

	printf("%s{\"name\":", i ? "," : "");
	json_str(l->cfg.name);
	printf(",\"interface\":");
	if (l->ifname[0])
		json_str(l->ifname);
	else
		printf("null");
	printf(",\"state\":\"%s\",\"interface_present\":%s,\"ifindex\":%d", ctl_link_state(l),
	       k && k->index == l->ifindex ? "true" : "false", l->ifindex);
	printf(",\"table\":%u,\"mark\":\"0x%x\",\"mask\":\"0x%x\",\"priority\":%u,"
	       "\"weight\":%u,\"nat\":\"%s\",\"reply_via_link\":%s,\"pin_fallback\":%s",
	       l->cfg.table, l->cfg.mark, l->cfg.mask, l->cfg.priority, l->cfg.weight,
	       nat_name(l->cfg.nat), l->cfg.reply_via_link ? "true" : "false",
	       l->cfg.pin_fallback ? "true" : "false");
	printf(",\"local\":\"%s\",\"peer\":\"%s\",\"gateway\":\"%s\"", ip(l->local, a),
	       ip(l->peer, b), ip(l->gateway, g));
	printf(",\"pins\":[");
	for (j = 0; j < l->cfg.npins; j++) {
		printf("%s", j ? "," : "");
		json_str(mh_pin_format(&l->cfg.pins[j], pin, sizeof pin));
	}
	printf("],\"since\":%lld,\"pid\":%d", l->since, l->pid);
	print_tracking_json(r, i);
	print_traffic_json(r, i);
	printf("}");
}

static void print_balanced_json(const struct mh_status *st, const struct balanced *bal)
{
	unsigned i;

	printf(",\"balanced\":{\"kind\":\"%s\"", bal->kind);
	if (bal->id)
		printf(",\"id\":\"0x%x\"", bal->id);
	printf(",\"members\":[");
	for (i = 0; i < bal->n; i++) {
		const struct mh_status_if *k = if_by_index(st, bal->m[i].oif);
		printf("%s{\"link\":", i ? "," : "");
		if (bal->m[i].link)
			json_str(bal->m[i].link->cfg.name);
		else
			printf("null");
		printf(",\"interface\":");
		if (k)
			json_str(k->name);
		else
			printf("null");
		printf(",\"weight\":%u}", bal->m[i].weight);
	}
	printf("]}");
	json_count("balanced_flows", st->balanced_total);
	printf(",\"conntrack_error\":");
	if (st->ct_err[0])
		json_str(st->ct_err);
	else
		printf("null");
}

static void print_ops_json(const struct mh_status *st)
{
	unsigned i;

	printf(",\"ops\":[");
	for (i = 0; i < st->nops; i++) {
		const struct mh_status_op *o = &st->ops[i];
		printf("%s{\"link\":", i ? "," : "");
		if (o->owner >= 0)
			json_str(st->links[o->owner].cfg.name);
		else
			printf("null");
		printf(",\"action\":\"%s\",\"area\":\"%s\",\"what\":",
		       o->action == '+' ? "add" : o->action == '~' ? "change" : "delete", o->area);
		json_str(o->what);
		printf("}");
	}
	printf("]");
}

static void print_json(const struct ctl_report *r, const struct balanced *bal)
{
	const struct mh_status *st = &r->st;
	unsigned i;

	printf("{\"rundir\":");
	json_str(mh_rundir());
	printf(",\"firewall\":\"%s\",\"firewall_last_event\":",
	       st->backend == MH_FW_NFT ? "nft" : "iptables");
	if (st->last_backend[0])
		json_str(st->last_backend);
	else
		printf("null");
	printf(",\"health\":\"%s\",\"links\":[", health_name(r->severity));
	for (i = 0; i < st->nlinks; i++)
		print_link_json(r, i);
	printf("]");
	print_balanced_json(st, bal);
	print_ops_json(st);
	printf(",\"warnings\":[");
	for (i = 0; i < r->nwarnings; i++) {
		const struct ctl_warning *w = &r->warnings[i];
		printf("%s{\"code\":\"%s\",\"severity\":\"%s\",\"link\":", i ? "," : "", w->code,
		       health_name(w->severity));
		if (w->link[0])
			json_str(w->link);
		else
			printf("null");
		printf(",\"message\":");
		json_str(w->msg);
		printf("}");
	}
	printf("]}\n");
}

/* Colour: only on a terminal, and not when NO_COLOR is set (no-color.org)
 * or the terminal is dumb. */
static int want_colour(void)
{
	const char *nc = getenv("NO_COLOR"), *term = getenv("TERM");

	return isatty(STDOUT_FILENO) && !(nc && *nc) && !(term && !strcmp(term, "dumb"));
}

int ctl_status(int argc, char **argv)
{
	static struct ctl_report r;
	static struct balanced bal;
	char err[MH_ERR_MAX];
	int json = 0, i, rc;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			json = 1;
		else {
			fprintf(stderr, "multihomectl status: unknown argument '%s'\n", argv[i]);
			ctl_usage(stderr);
			return CTL_ERROR;
		}
	}
	if (ctl_report_read(&r, err, sizeof err) < 0) {
		fprintf(stderr, "multihomectl: %s\n", err);
		return CTL_ERROR;
	}
	read_balanced(&r.st, &bal);
	colour = !json && want_colour();
	if (json)
		print_json(&r, &bal);
	else
		print_text(&r, &bal);
	rc = r.severity;
	ctl_report_free(&r);
	return rc;
}
