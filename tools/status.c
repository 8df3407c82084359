/* multihomectl status [--json]: the links, the balanced default route as
 * the kernel has it, the firewall backend, and warnings.  Everything it says
 * is missing or stale is an operation that `multihomectl reapply` would
 * send (mh_status(), common/status.h): the two cannot disagree.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <net/if.h>
#include <linux/rtnetlink.h>

#include "status.h"
#include "ctl.h"

#define MAX_WARN 256

struct warning {
	char code[24];
	char link[MH_NAME_MAX + 1];
	char msg[600];
};

static struct warning W[MAX_WARN];
static unsigned NW;

static void warn(const char *code, const char *link, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void warn(const char *code, const char *link, const char *fmt, ...)
{
	va_list ap;

	if (NW >= MAX_WARN)
		return;
	snprintf(W[NW].code, sizeof W[NW].code, "%s", code);
	snprintf(W[NW].link, sizeof W[NW].link, "%s", link ? link : "");
	va_start(ap, fmt);
	vsnprintf(W[NW].msg, sizeof W[NW].msg, fmt, ap);
	va_end(ap);
	NW++;
}

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

static int read_int(const char *path, int *v)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%d", v) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

static const struct mh_status_if *if_by_name(const struct mh_status *st, const char *name)
{
	unsigned i;

	for (i = 0; i < st->nifs; i++)
		if (!strcmp(st->ifs[i].name, name))
			return &st->ifs[i];
	return NULL;
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

/* ---- warnings ---- */

static void warn_interfaces(const struct mh_status *st)
{
	unsigned i;
	int all_rp = 0, rp, eff;
	char path[256];

	read_int("/proc/sys/net/ipv4/conf/all/rp_filter", &all_rp);
	for (i = 0; i < st->nlinks; i++) {
		const struct mh_link *l = &st->links[i];
		const struct mh_status_if *k = if_by_name(st, l->ifname);
		if (!l->up)
			continue;
		if (st->gone[i]) {
			if (!k)
				warn("interface-gone", l->cfg.name,
				     "link %s is registered up on %s, but %s is gone "
				     "(its pppd/OpenVPN died without ip-down?); run 'multihomectl reapply'",
				     l->cfg.name, l->ifname, l->ifname);
			else
				warn("interface-gone", l->cfg.name,
				     "link %s is registered up on %s (index %d), but %s is now another "
				     "interface (index %d); run 'multihomectl reapply'",
				     l->cfg.name, l->ifname, l->ifindex, l->ifname, k->index);
			continue;
		}
		snprintf(path, sizeof path, "/proc/sys/net/ipv4/conf/%s/rp_filter", l->ifname);
		if (read_int(path, &rp) == 0) {
			eff = rp > all_rp ? rp : all_rp;
			if (eff == 1)
				warn("rp-filter-strict", l->cfg.name,
				     "strict rp_filter on uplink %s (link %s): replies arriving there for "
				     "flows routed by another link are dropped; set "
				     "net.ipv4.conf.%s.rp_filter=2 and net.ipv4.conf.all.rp_filter to 0 or 2",
				     l->ifname, l->cfg.name, l->ifname);
		}
	}
}

/* The operations a reapply would send, as the admin reads them: per link,
 * then the shared ones, then what is stale.  MOVING: the firewall backend
 * changed and the rules have not moved yet (said once, elsewhere). */
static void warn_ops(const struct mh_status *st, int moving)
{
	char buf[600], stale_fw[600] = "";
	unsigned i, j, stale_n = 0;
	int table_gone = 0;

	for (i = 0; i < st->nops; i++)
		if (st->ops[i].owner < 0 && !strcmp(st->ops[i].area, "firewall") &&
		    !strcmp(st->ops[i].what, "table ip " MH_NFT_TABLE))
			table_gone = 1;
	for (j = 0; j < st->nlinks; j++) {
		buf[0] = 0;
		for (i = 0; i < st->nops; i++) {
			const struct mh_status_op *o = &st->ops[i];
			if (o->owner != (int)j || strcmp(o->code, "rules-missing") ||
			    (moving && !strcmp(o->area, "firewall")))
				continue;
			snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? ", " : "",
				 o->what);
		}
		if (buf[0])
			warn("rules-missing", st->links[j].cfg.name,
			     "link %s is up on %s but the kernel lacks its %s; run 'multihomectl reapply'",
			     st->links[j].cfg.name, st->links[j].ifname, buf);
	}
	buf[0] = 0;
	for (i = 0; i < st->nops; i++) {
		const struct mh_status_op *o = &st->ops[i];
		if (o->owner >= 0 || strcmp(o->code, "rules-missing") || table_gone ||
		    (moving && !strcmp(o->area, "firewall")))
			continue;
		if (!strcmp(o->area, "routing"))
			warn("rules-missing", NULL, "the kernel lacks the shared %s; run "
			     "'multihomectl reapply'", o->what);
		else
			snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? ", " : "",
				 o->what);
	}
	if (buf[0])
		warn("rules-missing", NULL, "table ip " MH_NFT_TABLE " lacks its %s; run "
		     "'multihomectl reapply'", buf);
	if (table_gone && !moving)
		warn("rules-missing", NULL,
		     "table ip " MH_NFT_TABLE " is gone (deleted by 'nft flush ruleset', or by a firewall "
		     "reload that replaces the whole ruleset?): no up link has its firewall marks, "
		     "pins or NAT; run 'multihomectl reapply'");
	buf[0] = 0;
	for (i = 0; i < st->nops; i++) {
		const struct mh_status_op *o = &st->ops[i];
		if (!strcmp(o->code, "hooks-missing") && !moving)
			snprintf(buf + strlen(buf), sizeof buf - strlen(buf), "%s%s", buf[0] ? ", " : "",
				 o->what);
		if (!strcmp(o->code, "stale-state") && !strcmp(o->area, "routing"))
			warn("stale-state", NULL,
			     "the kernel holds %s of multihome's (protocol 109) that no up link wants "
			     "(left by an interrupted event?); run 'multihomectl reapply'", o->what);
		if (!strcmp(o->code, "stale-state") && !strcmp(o->area, "firewall") && !moving) {
			if (stale_n++ < 4)
				snprintf(stale_fw + strlen(stale_fw), sizeof stale_fw - strlen(stale_fw),
					 "%s%s", stale_fw[0] ? ", " : "", o->what);
		}
	}
	if (buf[0])
		warn("hooks-missing", NULL,
		     "the built-in chains no longer jump to multihome's (%s): a firewall reload "
		     "flushed them?; run 'multihomectl reapply'", buf);
	if (stale_n)
		warn("stale-state", NULL,
		     "the firewall holds %u objects of multihome's that no up link wants (%s%s); "
		     "run 'multihomectl reapply'", stale_n, stale_fw, stale_n > 4 ? ", ..." : "");
}

/* Is `iptables` on this host the nft variant?  MULTIHOME_IPTABLES names the
 * command to look at (default /usr/sbin/iptables, via the alternatives). */
static int iptables_is_nft(char *target, size_t len)
{
	const char *cmd = getenv("MULTIHOME_IPTABLES");
	char real[PATH_MAX];
	const char *base;

	if (!cmd || !*cmd)
		cmd = "/usr/sbin/iptables";
	if (!realpath(cmd, real))
		return 0;
	snprintf(target, len, "%s", real);
	base = strrchr(real, '/');
	base = base ? base + 1 : real;
	return !strcmp(base, "xtables-nft-multi") || !strcmp(base, "iptables-nft");
}

static void warn_host(const struct mh_status *st)
{
	unsigned i, j, nalive = 0;
	int fwd = 1;

	for (i = 0; i < st->nlinks; i++)
		nalive += st->links[i].up && !st->gone[i];
	read_int("/proc/sys/net/ipv4/ip_forward", &fwd);
	if (nalive && fwd == 0) {
		const struct mh_status_if *other = NULL;
		for (i = 0; i < st->nifs && !other; i++) {
			const struct mh_status_if *k = &st->ifs[i];
			int link_if = 0;
			if ((k->flags & IFF_LOOPBACK) || !(k->flags & IFF_UP))
				continue;       /* down: fallback tunnels (tunl0, sit0) and the like */
			for (j = 0; j < st->nlinks; j++)
				if (st->links[j].up && !strcmp(st->links[j].ifname, k->name))
					link_if = 1;
			if (!link_if)
				other = k;
		}
		if (other)
			warn("ip-forward-off", NULL,
			     "net.ipv4.ip_forward is 0 while uplinks are up and %s exists: "
			     "traffic from the LAN is not routed; set net.ipv4.ip_forward=1",
			     other->name);
	}
}

static void warn_firewall(const struct mh_status *st, int moving)
{
	const char *fwname = st->backend == MH_FW_NFT ? "nft" : "iptables";
	const char *conf = getenv("MULTIHOME_CONF");
	char nftpath[PATH_MAX] = "";

	if (st->fw_err[0])
		warn("firewall-unreadable", NULL, "%s", st->fw_err);
	if (st->backend == MH_FW_IPTABLES && iptables_is_nft(nftpath, sizeof nftpath) && st->fw.table)
		warn("legacy-on-nft", NULL,
		     "multihome's firewall rules are in the legacy iptables tables, but iptables on "
		     "this host is %s (nft): 'iptables -S' does not show them; use "
		     "'iptables-legacy -t mangle -S' and 'iptables-legacy -t nat -S', or put "
		     "'firewall nft' in %s (then 'multihomectl reapply') to move multihome's rules to "
		     "table ip multihome, where 'nft list ruleset' shows them", nftpath,
		     conf && *conf ? conf : "/etc/multihome.conf");
	if (st->other_backend_holds)
		warn("firewall-leftover", NULL,
		     "the firewall backend in use is %s, but %s still there (the last event used %s): "
		     "%s; run 'multihomectl reapply' to %s", fwname,
		     st->backend == MH_FW_NFT ? "multihome's legacy iptables chains (MULTIHOME-*) are"
					      : "table ip multihome (nft) is",
		     st->last_backend[0] ? st->last_backend : "no record",
		     moving ? "multihome's rules have not moved yet"
			    : st->backend == MH_FW_NFT ? "they still mark packets" : "it still marks packets",
		     moving ? "move them" : "remove the leftover");
}

/* ---- output ---- */

static void print_link_json(const struct mh_status *st, unsigned i)
{
	const struct mh_link *l = &st->links[i];
	const struct mh_status_if *k = l->ifname[0] ? if_by_name(st, l->ifname) : NULL;
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], g[INET_ADDRSTRLEN], pin[128];
	unsigned j;

	printf("%s{\"name\":", i ? "," : "");
	json_str(l->cfg.name);
	printf(",\"interface\":");
	if (l->ifname[0])
		json_str(l->ifname);
	else
		printf("null");
	printf(",\"state\":\"%s\",\"interface_present\":%s,\"ifindex\":%d", l->up ? "up" : "down",
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
	printf("],\"since\":%lld,\"pid\":%d}", l->since, l->pid);
}

static void print_json(const struct mh_status *st, const struct balanced *bal)
{
	unsigned i;

	printf("{\"rundir\":");
	json_str(mh_rundir());
	printf(",\"firewall\":\"%s\",\"firewall_last_event\":",
	       st->backend == MH_FW_NFT ? "nft" : "iptables");
	if (st->last_backend[0])
		json_str(st->last_backend);
	else
		printf("null");
	printf(",\"links\":[");
	for (i = 0; i < st->nlinks; i++)
		print_link_json(st, i);
	printf("],\"balanced\":{\"kind\":\"%s\"", bal->kind);
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
	printf("]},\"ops\":[");
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
	printf("],\"warnings\":[");
	for (i = 0; i < NW; i++) {
		printf("%s{\"code\":\"%s\",\"link\":", i ? "," : "", W[i].code);
		if (W[i].link[0])
			json_str(W[i].link);
		else
			printf("null");
		printf(",\"message\":");
		json_str(W[i].msg);
		printf("}");
	}
	printf("]}\n");
}

static void print_link_text(const struct mh_status *st, unsigned i)
{
	const struct mh_link *l = &st->links[i];
	const struct mh_status_if *k = l->ifname[0] ? if_by_name(st, l->ifname) : NULL;
	char a[INET_ADDRSTRLEN], t1[64], t2[64], pin[128];
	unsigned j;

	printf("link %s: %s", l->cfg.name, l->up ? "up" : "down");
	if (l->ifname[0])
		printf(" %s %s%s", l->up ? "on" : "(last on", l->ifname, l->up ? "" : ")");
	if (l->up && !(k && k->index == l->ifindex))
		printf(" (interface gone)");
	if (l->since)
		printf(", since %s (%s)", when(l->since, t1, sizeof t1), ago(l->since, t2, sizeof t2));
	if (l->pid)
		printf(", pid %d", l->pid);
	printf("\n  table %u, mark 0x%x/0x%x, priority %u, weight %u, nat %s, reply-via-link %s%s\n",
	       l->cfg.table, l->cfg.mark, l->cfg.mask, l->cfg.priority, l->cfg.weight,
	       nat_name(l->cfg.nat), l->cfg.reply_via_link ? "yes" : "no",
	       l->cfg.pin_fallback ? "" : ", pin-fallback no");
	if (!l->up && mh_link_strict(l))
		printf("  its pins are refused while it is down (pin-fallback no)\n");
	printf("  local %s", ip(l->local, a));
	if (l->peer)
		printf(", peer %s", ip(l->peer, a));
	if (l->gateway)
		printf(", gateway %s", ip(l->gateway, a));
	printf("\n");
	for (j = 0; j < l->cfg.npins; j++)
		printf("%s%s", j ? "; " : "  pins: ", mh_pin_format(&l->cfg.pins[j], pin, sizeof pin));
	if (l->cfg.npins)
		printf("\n");
}

static void print_text(const struct mh_status *st, const struct balanced *bal)
{
	const char *fwname = st->backend == MH_FW_NFT ? "nft" : "iptables";
	unsigned i;

	if (!st->nlinks)
		printf("no links registered in %s\n", mh_rundir());
	for (i = 0; i < st->nlinks; i++)
		print_link_text(st, i);
	printf("balanced default route: ");
	if (!bal->n) {
		printf("none\n");
	} else {
		if (!strcmp(bal->kind, "nexthop-group"))
			printf("nexthop group 0x%x:", bal->id);
		else if (!strcmp(bal->kind, "multipath"))
			printf("multipath route:");
		else
			printf("single route:");
		for (i = 0; i < bal->n; i++) {
			const struct mh_status_if *k = if_by_index(st, bal->m[i].oif);
			printf("%s %s (%s) weight %u", i ? "," : "",
			       bal->m[i].link ? bal->m[i].link->cfg.name : "?", k ? k->name : "?",
			       bal->m[i].weight);
		}
		printf("\n");
	}
	printf("firewall: %s (%s)", fwname,
	       st->backend == MH_FW_NFT ? (st->fw.table ? "table ip multihome" : "no table ip multihome")
					: "legacy x_tables, chains MULTIHOME-*");
	if (st->last_backend[0] && strcmp(st->last_backend, fwname))
		printf(", the last event used %s", st->last_backend);
	printf("\n");
	for (i = 0; i < NW; i++)
		printf("warning: %s\n", W[i].msg);
}

int ctl_status(int argc, char **argv)
{
	static struct mh_status st;
	static struct balanced bal;
	char err[MH_ERR_MAX];
	int json = 0, i, moving;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
			json = 1;
		else {
			ctl_usage(stderr);
			return CTL_ERROR;
		}
	}
	if (mh_status(&st, err, sizeof err) < 0) {
		fprintf(stderr, "multihomectl: %s\n", err);
		return CTL_ERROR;
	}
	read_balanced(&st, &bal);
	/* the choice changed since the last event and the rules are still in the
	 * other backend: one warning (firewall-leftover) says so, instead of
	 * every rule the backend in use lacks */
	moving = st.other_backend_holds && st.last_backend[0] &&
		 strcmp(st.last_backend, st.backend == MH_FW_NFT ? "nft" : "iptables");
	warn_interfaces(&st);
	warn_ops(&st, moving);
	warn_host(&st);
	warn_firewall(&st, moving);
	if (json)
		print_json(&st, &bal);
	else
		print_text(&st, &bal);
	mh_status_free(&st);
	return NW ? CTL_WARN : CTL_OK;
}
