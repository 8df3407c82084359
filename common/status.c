/* mh_status(): the plan a reapply would install, the kernel as the writer
 * reads it, and the operations between them, in words (status.h).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/rtnetlink.h>

#include "counters.h"
#include "internal.h"
#include "status.h"

/* ---- words for operations ---- */

static struct mh_status_op *sop(struct mh_status *st, unsigned *cap, int owner, char action,
				const char *code, const char *area, const char *fmt, ...)
	__attribute__((format(printf, 7, 8)));
static struct mh_status_op *sop(struct mh_status *st, unsigned *cap, int owner, char action,
				const char *code, const char *area, const char *fmt, ...)
{
	struct mh_status_op *o;
	va_list ap;

	if (st->nops == *cap) {
		unsigned c = *cap ? 2 * *cap : 32;
		struct mh_status_op *v = realloc(st->ops, c * sizeof *v);
		if (!v)
			return NULL;
		st->ops = v;
		*cap = c;
	}
	o = &st->ops[st->nops++];
	o->owner = owner;
	o->action = action;
	o->code = code;
	o->area = area;
	va_start(ap, fmt);
	vsnprintf(o->what, sizeof o->what, fmt, ap);
	va_end(ap);
	return o;
}

/* plan link index -> registry index */
static int reg_index(const struct mh_status *st, int plan_owner)
{
	unsigned i;

	if (plan_owner < 0)
		return -1;
	for (i = 0; i < st->nlinks; i++)
		if (!strcmp(st->links[i].cfg.name, st->plan.links[plan_owner].name))
			return (int)i;
	return -1;
}

static int slot_owner(const struct mh_status *st, uint32_t id)
{
	unsigned i;

	for (i = 0; i < st->plan.nlinks; i++)
		if (mh_nh_id(st->plan.links[i].slot) == id)
			return (int)i;
	return -1;
}

static int has_member(const struct mh_routing *r, uint32_t id)
{
	unsigned i;

	for (i = 0; r->has_group && i < r->ngroup; i++)
		if (r->group[i].id == id)
			return 1;
	return 0;
}

static int words_rt(struct mh_status *st, const struct mh_rt_ops *ops, unsigned *cap)
{
	unsigned i, j, stale[4] = { 0 };
	char what[200];

	for (i = 0; i < ops->n; i++) {
		const struct mh_rt_op *o = &ops->v[i];
		if (o->action == MH_OP_DELETE) {
			stale[o->kind]++;
			continue;
		}
		if (o->kind == MH_RT_GROUP) {
			/* a member per link, as the admin thinks of it */
			for (j = 0; j < st->plan.rt.ngroup; j++) {
				uint32_t id = st->plan.rt.group[j].id;
				if (!has_member(&st->kernel, id) &&
				    !sop(st, cap, reg_index(st, slot_owner(st, id)), '+', "rules-missing",
					 "routing", "member of the balanced default route"))
					return -1;
			}
			for (j = 0; st->kernel.has_group && j < st->kernel.ngroup; j++)
				if (!has_member(&st->plan.rt, st->kernel.group[j].id))
					stale[MH_RT_GROUP]++;
			continue;
		}
		if (o->kind == MH_RT_NEXTHOP)
			continue;       /* a missing nexthop is a missing member (said above) */
		mh_rt_describe(o, &st->plan.rt, what, sizeof what);
		if (!sop(st, cap, reg_index(st, o->owner), o->action == MH_OP_ADD ? '+' : '~',
			 "rules-missing", "routing", "%s", what))
			return -1;
	}
	if (stale[MH_RT_RULE] + stale[MH_RT_ROUTE] + stale[MH_RT_NEXTHOP] + stale[MH_RT_GROUP] &&
	    !sop(st, cap, -1, '-', "stale-state", "routing",
		 "%u rules, %u routes and %u nexthops", stale[MH_RT_RULE], stale[MH_RT_ROUTE],
		 stale[MH_RT_NEXTHOP] + stale[MH_RT_GROUP]))
		return -1;
	return 0;
}

static void elem_words(const struct mh_nft_elem *e, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN] = "";
	uint32_t mark;

	switch (e->set) {
	case MH_SET_INGRESS:
		snprintf(buf, len, "element \"%.16s\" : goto %s in map ingress", e->key, e->chain);
		break;
	case MH_SET_RESTORE:
		memcpy(&mark, e->key, 4);
		snprintf(buf, len, "element 0x%x : goto %s in map restore", mark, e->chain);
		break;
	case MH_SET_MASQ:
		snprintf(buf, len, "element \"%.16s\" in set masq (masquerade)", e->key);
		break;
	default:
		inet_ntop(AF_INET, &e->addr, a, sizeof a);
		snprintf(buf, len, "element \"%.16s\" : %s in map srcaddr (snat)", e->key, a);
		break;
	}
}

static unsigned chain_rule_count(const struct mh_plan *p, const char *chain)
{
	unsigned i, n = 0;

	for (i = 0; i < p->fw.nrules; i++)
		n += !strcmp(p->fw.rules[i].chain, chain);
	return n;
}

static int words_nft_op(struct mh_status *st, const struct mh_fw_op *o, unsigned *cap, unsigned *masks)
{
	int owner = reg_index(st, o->owner);
	char what[200] = "";

	switch (o->kind) {
	case MH_FWOP_TABLE:
		snprintf(what, sizeof what, "%s", o->detail[0] ? o->detail : "table ip " MH_NFT_TABLE);
		break;
	case MH_FWOP_ELEM:
		elem_words(o->elem, what, sizeof what);
		break;
	case MH_FWOP_CHAIN:
		if (o->action == MH_OP_REPLACE && !strncmp(o->chain->name, "pin_", 4))
			snprintf(what, sizeof what, "%u of the %u pin rules in chain %s", o->missing,
				 o->total, o->chain->name);
		else if (o->action == MH_OP_REPLACE)
			snprintf(what, sizeof what, "the rule of chain %s", o->chain->name);
		else if (o->action == MH_OP_ADD && !strncmp(o->chain->name, "pin_", 4))
			snprintf(what, sizeof what, "chain %s (its %u pins)", o->chain->name,
				 chain_rule_count(&st->plan, o->chain->name));
		else
			snprintf(what, sizeof what, "chain %s", o->chain->name);
		break;
	default:        /* a rule of chain egress */
		if (o->action != MH_OP_DELETE && !o->rule->jump[0]) {
			(*masks)++;
			return 0;
		}
		snprintf(what, sizeof what, "%s to %s in chain " MH_NFT_EGRESS,
			 o->action == MH_OP_DELETE ? "a jump" : "the jump", o->rule->jump);
		break;
	}
	return sop(st, cap, o->action == MH_OP_DELETE ? -1 : owner,
		   o->action == MH_OP_ADD ? '+' : o->action == MH_OP_REPLACE ? '~' : '-',
		   o->action == MH_OP_DELETE ? "stale-state" : "rules-missing", "firewall", "%s",
		   what) ? 0 : -1;
}

static int words_nft(struct mh_status *st, const struct mh_fw_ops *ops, unsigned *cap)
{
	unsigned i, masks = 0;
	char mc[MH_COMMENT_MAX];

	for (i = 0; i < ops->n; i++)
		if (words_nft_op(st, &ops->v[i], cap, &masks) < 0)
			return -1;
	snprintf(mc, sizeof mc, "multihome mask 0x%08x", st->plan.fw.ours);
	if (masks && !sop(st, cap, -1, '+', "rules-missing", "firewall",
			  "%u of the %d rules '%s' in chain egress", masks, MH_NFT_MASK_RULES, mc))
		return -1;
	return 0;
}

static int words_iptc(struct mh_status *st, const struct mh_fw_ops *ops, unsigned *cap)
{
	unsigned i, pins_missing[MH_MAX_LINKS] = { 0 };
	unsigned char pre[MH_MAX_LINKS] = { 0 }, nat[MH_MAX_LINKS] = { 0 };

	for (i = 0; i < ops->n; i++) {
		const struct mh_fw_op *o = &ops->v[i];
		const struct mh_fw_rule *r = o->rule;
		if (o->kind == MH_FWOP_HOOK) {
			if (!sop(st, cap, -1, o->action == MH_OP_ADD ? '+' : '-',
				 o->action == MH_OP_ADD ? "hooks-missing" : "stale-state", "firewall",
				 "%s", o->detail))
				return -1;
		} else if (o->kind == MH_FWOP_RULE && o->action == MH_OP_DELETE) {
			if (!sop(st, cap, -1, '-', "stale-state", "firewall", "rule%s%s%s in %s",
				 r->comment[0] ? " '" : "", r->comment, r->comment[0] ? "'" : "", r->chain))
				return -1;
		} else if (o->kind == MH_FWOP_RULE && r->owner >= 0 && r->owner < MH_MAX_LINKS) {
			if (r->kind == MH_FW_PIN || r->kind == MH_FW_PIN_DROP)
				pins_missing[r->owner]++;
			else if (r->kind == MH_FW_NAT)
				nat[r->owner] = 1;
			else
				pre[r->owner] = 1;
		} else if (o->kind == MH_FWOP_RULE) {
			if (!sop(st, cap, -1, '+', "rules-missing", "firewall", "a rule of %s", r->chain))
				return -1;
		}
	}
	for (i = 0; i < st->plan.nlinks && i < MH_MAX_LINKS; i++) {
		int owner = reg_index(st, (int)i);
		if (pre[i] && !sop(st, cap, owner, '+', "rules-missing", "firewall",
				   "firewall rules in " MH_IPT_PRE))
			return -1;
		if (pins_missing[i] && !sop(st, cap, owner, '+', "rules-missing", "firewall",
					    "%u of %u pins in " MH_IPT_MARK, pins_missing[i],
					    st->plan.links[i].npins))
			return -1;
		if (nat[i] && !sop(st, cap, owner, '+', "rules-missing", "firewall",
				   "NAT rule in " MH_IPT_NAT))
			return -1;
	}
	return 0;
}

/* ---- reading ---- */

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct mh_link *)a)->cfg.name, ((const struct mh_link *)b)->cfg.name);
}

/* The registry, under its lock, then the lock released for the plugins. */
static int read_registry(struct mh_status *st, char *err, size_t len)
{
	struct mh_registry reg;
	struct stat sb;

	if (stat(mh_rundir(), &sb) < 0)
		return 0;       /* no registry yet: no links */
	if (mh_reg_open(&reg, err, len) < 0)
		return -1;
	st->links = malloc((reg.n ? reg.n : 1) * sizeof *st->links);
	st->gone = calloc(reg.n ? reg.n : 1, 1);
	if (!st->links || !st->gone) {
		mh_reg_close(&reg);
		snprintf(err, len, "out of memory");
		return -1;
	}
	memcpy(st->links, reg.links, reg.n * sizeof *reg.links);
	st->nlinks = reg.n;
	mh_reg_close(&reg);
	if (st->nlinks)
		qsort(st->links, st->nlinks, sizeof *st->links, by_name);
	return 0;
}

/* As reapply prunes: an up link whose interface (name and index) is gone. */
static void mark_gone(struct mh_status *st, struct mh_link *as_planned)
{
	unsigned i;

	for (i = 0; i < st->nlinks; i++) {
		const struct mh_link *l = &st->links[i];
		as_planned[i] = *l;
		if (l->up && (int)if_nametoindex(l->ifname) != l->ifindex) {
			st->gone[i] = 1;
			as_planned[i].up = 0;
		}
	}
}

struct if_read {
	struct mh_status *st;
	unsigned cap;
};

static const enum mnl_attr_data_type link_policy[IFLA_MAX + 1] = {
	[IFLA_IFNAME]  = MNL_TYPE_NUL_STRING,
	[IFLA_STATS64] = MNL_TYPE_BINARY,
};

/* The counters of IFLA_STATS64 (the struct grew over time: its head is enough). */
static void link_stats(const struct nlattr *a, struct mh_status_if *k)
{
	struct rtnl_link_stats64 s;
	size_t len = mnl_attr_get_payload_len(a);

	if (len < 4 * sizeof(uint64_t))
		return;
	memset(&s, 0, sizeof s);
	memcpy(&s, mnl_attr_get_payload(a), len < sizeof s ? len : sizeof s);
	k->has_stats = 1;
	k->tx_bytes = s.tx_bytes;
	k->tx_packets = s.tx_packets;
	k->rx_bytes = s.rx_bytes;
	k->rx_packets = s.rx_packets;
}

static int link_cb(const struct nlmsghdr *h, void *data)
{
	struct if_read *rd = data;
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(h);
	const struct nlattr *tb[IFLA_MAX + 1];
	struct mh_status_if *k;

	if (h->nlmsg_type != RTM_NEWLINK)
		return MNL_CB_OK;
	if (mh_nl_attrs(h, sizeof *ifi, link_policy, IFLA_MAX, tb) < 0)
		return MNL_CB_ERROR;
	if (rd->st->nifs == rd->cap) {
		unsigned c = rd->cap ? 2 * rd->cap : 32;
		struct mh_status_if *v = realloc(rd->st->ifs, c * sizeof *v);
		if (!v)
			return MNL_CB_ERROR;
		rd->st->ifs = v;
		rd->cap = c;
	}
	k = &rd->st->ifs[rd->st->nifs++];
	memset(k, 0, sizeof *k);
	k->index = ifi->ifi_index;
	k->flags = ifi->ifi_flags;
	if (tb[IFLA_IFNAME])
		snprintf(k->name, sizeof k->name, "%s", mnl_attr_get_str(tb[IFLA_IFNAME]));
	if (tb[IFLA_STATS64])
		link_stats(tb[IFLA_STATS64], k);
	return MNL_CB_OK;
}

static void link_reset(void *data)
{
	((struct if_read *)data)->st->nifs = 0;
}

static int read_interfaces(struct mh_nl *nl, struct mh_status *st)
{
	struct if_read rd = { .st = st };
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };

	return mh_nl_dump(nl, RTM_GETLINK, &ifi, sizeof ifi, link_cb, &rd, link_reset);
}

/* RUNDIR/firewall, read as the events read it (relative to the checked
 * directory, no symlink, no FIFO): empty when absent or refused. */
static void read_last_backend(struct mh_status *st)
{
	char err[MH_ERR_MAX];
	int dfd = mh_rundir_open(0, err, sizeof err);

	st->last_backend[0] = 0;
	if (dfd < 0)
		return;
	if (mh_rundir_read(dfd, "firewall", st->last_backend, sizeof st->last_backend, err,
			   sizeof err) < 0)
		st->last_backend[0] = 0;
	close(dfd);
	st->last_backend[strcspn(st->last_backend, "\n")] = 0;
}

/* Does the backend B (not in use) hold anything of ours? */
static int backend_holds(enum mh_fw_backend b)
{
	struct mh_plan_input in = { .n = 0, .backend = b };
	struct mh_plan none;
	struct mh_firewall have;
	struct mh_fw_ops ops = { 0 };
	char err[MH_ERR_MAX];
	int yes = 0;

	if (mh_plan_build(&in, &none) < 0)
		return 0;
	if ((b == MH_FW_NFT ? mh_fw_nft_status : mh_fw_iptc_status)(&none, &ops, &have, err,
								    sizeof err) == 0)
		yes = have.table || ops.n > 0;
	if (b == MH_FW_IPTABLES) {
		free(have.rules);
		have.rules = NULL;
		mh_fw_iptc_status_done();
	}
	mh_firewall_free(&have);
	mh_fw_ops_free(&ops);
	mh_plan_free(&none);
	return yes;
}

static int status_firewall(struct mh_status *st, unsigned *cap)
{
	struct mh_fw_ops ops = { 0 };
	int rc;

	st->other_backend_holds = backend_holds(st->backend == MH_FW_NFT ? MH_FW_IPTABLES : MH_FW_NFT);
	rc = (st->backend == MH_FW_NFT ? mh_fw_nft_status : mh_fw_iptc_status)(
		&st->plan, &ops, &st->fw, st->fw_err, sizeof st->fw_err);
	if (rc == 0)
		rc = (st->backend == MH_FW_NFT ? words_nft : words_iptc)(st, &ops, cap);
	mh_fw_ops_free(&ops);
	if (st->backend == MH_FW_IPTABLES) {
		/* the rules' entries pointed into libiptc's handles */
		unsigned i;
		for (i = 0; i < st->fw.nrules; i++)
			st->fw.rules[i].entry = NULL;
		mh_fw_iptc_status_done();
	}
	return rc < 0 && !st->fw_err[0] ? -1 : 0;
}

int mh_status(struct mh_status *st, char *err, size_t len)
{
	struct mh_rt_diff_args args = { .delta = 0, .touched = -1 };
	struct mh_plan_input in = { 0 };
	struct mh_rt_ops rops = { 0 };
	struct mh_link *planned = NULL;
	struct mh_nl nl = { 0 };
	unsigned cap = 0;
	int rc = -1;

	memset(st, 0, sizeof *st);
	if (read_registry(st, err, len) < 0)
		return -1;
	planned = malloc((st->nlinks ? st->nlinks : 1) * sizeof *planned);
	if (!planned) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	mark_gone(st, planned);
	st->backend = mh_fw_backend();
	read_last_backend(st);
	in = (struct mh_plan_input){ .links = planned, .n = st->nlinks,
				     .nexthops = mh_nexthops_supported(), .backend = st->backend };
	if (mh_plan_build(&in, &st->plan) < 0) {
		snprintf(err, len, "out of memory");
		goto out;
	}
	if (mh_nl_open(&nl, NETLINK_ROUTE) < 0) {
		snprintf(err, len, "rtnetlink socket: %s", strerror(errno));
		goto out;
	}
	if (read_interfaces(&nl, st) < 0) {
		snprintf(err, len, "reading interfaces: %s", strerror(errno));
		goto out;
	}
	if (mh_rt_read(&nl, !st->plan.rt.nexthops, &st->kernel, err, len) < 0)
		goto out;
	if (mh_rt_diff(&st->plan.rt, &st->kernel, &args, &rops) < 0 ||
	    words_rt(st, &rops, &cap) < 0 || status_firewall(st, &cap) < 0) {
		snprintf(err, len, "out of memory");
		goto out;
	}
	rc = 0;
out:
	mh_rt_ops_free(&rops);
	mh_nl_close(&nl);
	free(planned);
	if (rc < 0)
		mh_status_free(st);
	return rc;
}

void mh_status_free(struct mh_status *st)
{
	free(st->links);
	free(st->gone);
	mh_plan_free(&st->plan);
	mh_routing_free(&st->kernel);
	mh_firewall_free(&st->fw);
	free(st->ops);
	free(st->ifs);
	free(st->traffic);
	memset(st, 0, sizeof *st);
}

const struct mh_link *mh_status_member_link(const struct mh_status *st, uint32_t nh_id, int oif)
{
	unsigned i;

	for (i = 0; i < st->nlinks; i++) {
		const struct mh_link *l = &st->links[i];
		if (!l->up)
			continue;
		if (nh_id && nh_id == mh_nh_id(l->slot))
			return l;
		if (!nh_id && oif && oif == l->ifindex)
			return l;
	}
	return NULL;
}

/* ---- traffic ---- */

/* The plan's link of registry link I when it is up (its interface there),
 * or NULL (the plan also holds strict links while they are down). */
static const struct mh_plan_link *planned_link(const struct mh_status *st, unsigned i)
{
	unsigned j;

	for (j = 0; j < st->plan.nlinks; j++)
		if (st->plan.links[j].up && !strcmp(st->plan.links[j].name, st->links[i].cfg.name))
			return &st->plan.links[j];
	return NULL;
}

static const struct mh_status_if *if_of(const struct mh_status *st, const struct mh_plan_link *p)
{
	unsigned j;

	for (j = 0; p && j < st->nifs; j++)
		if (st->ifs[j].index == p->ifindex && !strcmp(st->ifs[j].name, p->ifname))
			return &st->ifs[j];
	return NULL;
}

/* Link P's weight in the balanced route the plan has (0: not in it). */
static unsigned planned_weight(const struct mh_plan *p, const struct mh_plan_link *l)
{
	unsigned i;

	for (i = 0; i < p->rt.ngroup; i++)
		if (p->rt.group[i].id == mh_nh_id(l->slot))
			return p->rt.group[i].weight;
	for (i = 0; !p->rt.nexthops && i < p->rt.nhops; i++)
		if (p->rt.hops[i].oif == l->ifindex)
			return p->rt.hops[i].weight;
	return 0;
}

/* Each link's weight as a part of the weights in the balanced route (an
 * offline link is out of it, unless every weighted one is). */
static void configured_shares(struct mh_status *st)
{
	unsigned i, sum = 0;

	for (i = 0; i < st->plan.rt.ngroup; i++)
		sum += st->plan.rt.group[i].weight;
	for (i = 0; !st->plan.rt.nexthops && i < st->plan.rt.nhops; i++)
		sum += st->plan.rt.hops[i].weight;
	for (i = 0; i < st->nlinks; i++) {
		const struct mh_plan_link *p = planned_link(st, i);
		st->traffic[i].share_configured = p && sum ? (double)planned_weight(&st->plan, p) / sum : 0;
	}
}

/* The pins that hold now: an offline link's fall through to the balanced
 * route (unless it is strict: then they refuse).  Malloc'd. */
static struct mh_pin *holding_pins(const struct mh_plan *p, unsigned *n)
{
	struct mh_pin *v = malloc((p->npins ? p->npins : 1) * sizeof *v);
	unsigned i;

	*n = 0;
	for (i = 0; v && i < p->nlinks; i++)
		if (p->links[i].online || p->links[i].strict) {
			memcpy(v + *n, p->links[i].pins, p->links[i].npins * sizeof *v);
			*n += p->links[i].npins;
		}
	return v;
}

/* Flows per up link, one dump each with the kernel filtering by its mark. */
static int count_flows(struct mh_status *st)
{
	struct mh_nl rt = { 0 }, ct = { 0 };
	struct mh_ct_class c = { 0 };
	struct mh_pin *pins = holding_pins(&st->plan, &c.npins);
	uint32_t *locals = NULL;
	unsigned i;
	int rc = -1;

	c.pins = pins;
	if (!pins) {
		snprintf(st->ct_err, sizeof st->ct_err, "out of memory");
		return -1;
	}
	if (mh_nl_open(&rt, NETLINK_ROUTE) < 0 || mh_host_addrs(&rt, &locals, &c.nlocals) < 0) {
		snprintf(st->ct_err, sizeof st->ct_err, "reading the host's addresses: %s", strerror(errno));
		goto out;
	}
	c.locals = locals;
	if (mh_nl_open(&ct, NETLINK_NETFILTER) < 0) {
		snprintf(st->ct_err, sizeof st->ct_err, "conntrack socket: %s", strerror(errno));
		goto out;
	}
	for (i = 0; i < st->nlinks; i++) {
		const struct mh_plan_link *p = planned_link(st, i);
		struct mh_ct_tally t;
		if (!p)
			continue;
		c.mark = p->mark;
		c.mask = p->mask;
		c.probe_src = st->links[i].local;
		c.probe_dst = st->links[i].cfg.track;
		c.nprobe_dst = st->links[i].cfg.ntrack;
		if (mh_ct_tally(&ct, &c, &t) < 0) {
			snprintf(st->ct_err, sizeof st->ct_err, "conntrack dump: %s", strerror(errno));
			goto out;
		}
		st->traffic[i].flows = (long long)t.flows;
		st->traffic[i].balanced = (long long)t.balanced;
	}
	rc = 0;
out:
	mh_nl_close(&ct);
	mh_nl_close(&rt);
	free(locals);
	free(pins);
	return rc;
}

static void real_shares(struct mh_status *st)
{
	unsigned i;

	/* unknown when no link was counted (none up, or conntrack unreadable) */
	st->balanced_total = -1;
	for (i = 0; i < st->nlinks; i++)
		if (st->traffic[i].balanced >= 0)
			st->balanced_total = (st->balanced_total < 0 ? 0 : st->balanced_total) +
					     st->traffic[i].balanced;
	for (i = 0; i < st->nlinks; i++) {
		struct mh_link_traffic *t = &st->traffic[i];
		t->share_balanced = st->balanced_total > 0 && t->balanced >= 0
				    ? (double)t->balanced / (double)st->balanced_total : -1;
	}
}

/* Upstream tracking's figures of every tracked up link, from the process
 * that registered it (a SIGKILLed host's file is stale). */
static void read_health(struct mh_status *st)
{
	char err[MH_ERR_MAX];
	unsigned i;
	int dfd = mh_rundir_open(0, err, sizeof err);

	if (dfd < 0)
		return;
	for (i = 0; i < st->nlinks; i++) {
		const struct mh_link *l = &st->links[i];
		struct mh_link_traffic *t = &st->traffic[i];
		t->has_health = l->up && l->cfg.ntrack && mh_health_read(dfd, l->cfg.name, &t->health) == 0 &&
				t->health.pid == l->pid;
	}
	close(dfd);
}

int mh_status_traffic(struct mh_status *st)
{
	unsigned i;

	free(st->traffic);
	st->traffic = calloc(st->nlinks ? st->nlinks : 1, sizeof *st->traffic);
	if (!st->traffic)
		return -1;
	st->ct_err[0] = 0;
	for (i = 0; i < st->nlinks; i++) {
		st->traffic[i].flows = st->traffic[i].balanced = -1;
		st->traffic[i].counters = if_of(st, planned_link(st, i));
	}
	configured_shares(st);
	read_health(st);
	if (st->plan.nlinks && count_flows(st) < 0)
		for (i = 0; i < st->nlinks; i++)
			st->traffic[i].flows = st->traffic[i].balanced = -1;
	real_shares(st);
	return 0;
}
