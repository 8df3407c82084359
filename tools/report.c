/* What multihomectl status and metrics both report: the state as
 * mh_status() reads it, with its traffic, and the warnings it deserves, each
 * a warning or critical (a link that should be up and is not).  Everything a
 * warning calls missing or stale is an operation `multihomectl reapply`
 * would send (common/status.h): the two cannot disagree.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <net/if.h>

#include "ctl.h"

#define MAX_WARN 256

static struct ctl_warning W[MAX_WARN];
static unsigned NW;

/* A link that should be up is not: critical.  Everything else warns. */
static int severity_of(const char *code)
{
	return !strcmp(code, "interface-gone") || !strcmp(code, "link-down") ||
	       !strcmp(code, "link-offline") ? CTL_CRITICAL : CTL_WARN;
}

static void warn(const char *code, const char *link, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void warn(const char *code, const char *link, const char *fmt, ...)
{
	va_list ap;

	if (NW >= MAX_WARN)
		return;
	snprintf(W[NW].code, sizeof W[NW].code, "%s", code);
	snprintf(W[NW].link, sizeof W[NW].link, "%s", link ? link : "");
	W[NW].severity = severity_of(code);
	va_start(ap, fmt);
	vsnprintf(W[NW].msg, sizeof W[NW].msg, fmt, ap);
	va_end(ap);
	NW++;
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

const struct mh_status_if *ctl_if_by_name(const struct mh_status *st, const char *name)
{
	unsigned i;

	for (i = 0; i < st->nifs; i++)
		if (!strcmp(st->ifs[i].name, name))
			return &st->ifs[i];
	return NULL;
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
		const struct mh_status_if *k = ctl_if_by_name(st, l->ifname);
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

/* Does PID still run a process with multihome's plugin loaded: the pppd or
 * OpenVPN that registered the link, or OpenVPN's helper?  A pid taken since
 * by another program is not.  (Without /proc to read, kill() decides.) */
static int registrant_runs(int pid, char *comm, size_t len)
{
	char path[64], *line = NULL;
	size_t cap = 0;
	int found = 0;
	FILE *f;

	comm[0] = 0;
	if (pid <= 0 || (kill(pid, 0) < 0 && errno != EPERM))
		return 0;
	snprintf(path, sizeof path, "/proc/%d/comm", pid);
	if ((f = fopen(path, "re"))) {
		if (fgets(comm, (int)len, f))
			comm[strcspn(comm, "\n")] = 0;
		fclose(f);
	}
	snprintf(path, sizeof path, "/proc/%d/maps", pid);
	if (!(f = fopen(path, "re")))
		return 1;
	while (!found && getline(&line, &cap, f) > 0) {
		char *base = strrchr(line, '/');
		found = base && !strncmp(base + 1, "multihome", 9) && strstr(base, ".so");
	}
	free(line);
	fclose(f);
	return found;
}

/* A down link whose pppd or OpenVPN still runs is meant to be up: it is
 * redialing or reconnecting.  (One whose process is gone was stopped.) */
static void warn_down_links(const struct mh_status *st)
{
	char comm[32];
	unsigned i;

	for (i = 0; i < st->nlinks; i++) {
		const struct mh_link *l = &st->links[i];
		if (l->up || !registrant_runs(l->pid, comm, sizeof comm))
			continue;
		warn("link-down", l->cfg.name,
		     "link %s is down, but the process that registered it still runs (pid %d%s%s): "
		     "it is redialing or reconnecting; its traffic goes by the other links meanwhile",
		     l->cfg.name, l->pid, comm[0] ? ", " : "", comm);
	}
}

/* Upstream tracking says a link that is up cannot reach beyond its ISP. */
static void warn_offline(const struct mh_status *st)
{
	char t[64];
	unsigned i;

	for (i = 0; i < st->nlinks; i++) {
		const struct mh_link *l = &st->links[i];
		struct tm tm;
		time_t when = (time_t)l->health_since;
		if (!l->up || l->online || st->gone[i])
			continue;
		if (!l->health_since || !localtime_r(&when, &tm) ||
		    !strftime(t, sizeof t, " since %Y-%m-%d %H:%M:%S %z", &tm))
			t[0] = 0;
		warn("link-offline", l->cfg.name,
		     "link %s is up on %s but offline%s: its upstream does not answer (multihome-track); "
		     "it is out of the balanced route, and its pins %s", l->cfg.name, l->ifname, t,
		     l->cfg.pin_fallback ? "fall through to the other links" : "refuse (pin-fallback no)");
	}
}

/* ---- the report ---- */

int ctl_report_read(struct ctl_report *r, char *err, size_t len)
{
	struct mh_status *st = &r->st;
	unsigned i;
	int moving;

	memset(r, 0, sizeof *r);
	NW = 0;
	if (mh_status(st, err, len) < 0)
		return -1;
	if (mh_status_traffic(st) < 0) {
		snprintf(err, len, "out of memory");
		mh_status_free(st);
		return -1;
	}
	/* the choice changed since the last event and the rules are still in the
	 * other backend: one warning (firewall-leftover) says so, instead of
	 * every rule the backend in use lacks */
	moving = st->other_backend_holds && st->last_backend[0] &&
		 strcmp(st->last_backend, st->backend == MH_FW_NFT ? "nft" : "iptables");
	warn_interfaces(st);
	warn_down_links(st);
	warn_offline(st);
	warn_ops(st, moving);
	warn_host(st);
	warn_firewall(st, moving);
	r->warnings = W;
	r->nwarnings = NW;
	for (i = 0; i < NW; i++)
		if (W[i].severity > r->severity)
			r->severity = W[i].severity;
	return 0;
}

void ctl_report_free(struct ctl_report *r)
{
	mh_status_free(&r->st);
	r->warnings = NULL;
	r->nwarnings = 0;
}

int ctl_link_severity(const struct ctl_report *r, unsigned i)
{
	unsigned j;
	int s = CTL_OK;

	for (j = 0; j < r->nwarnings; j++)
		if (!strcmp(r->warnings[j].link, r->st.links[i].cfg.name) && r->warnings[j].severity > s)
			s = r->warnings[j].severity;
	return s;
}

const char *ctl_link_state(const struct mh_link *l)
{
	return !l->up ? "down" : l->online ? "up" : "offline";
}
