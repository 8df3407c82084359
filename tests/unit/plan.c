/* Unit tests of the plan and the diffs (no root, no kernel).
 *
 * A model kernel takes the writer's netlink messages (built dry, never sent)
 * and applies them as the kernel would, reading each message with the core's
 * own parser: for planted kernel states, the operations the status diff
 * reports are exactly the messages reapply sends, and afterwards the diff
 * reports nothing.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fib_rules.h>
#include <linux/nexthop.h>
#include <linux/rtnetlink.h>

#include "internal.h"
#include "unit.h"

/* ---- the scenario's two links ---- */

static void scenario_links(struct mh_link *l)
{
	char err[MH_ERR_MAX];

	memset(l, 0, 2 * sizeof *l);
	mh_config_init(&l[0].cfg);
	mh_config_init(&l[1].cfg);
	mh_config_set(&l[0].cfg, "name", "isp1", NULL, err, sizeof err);
	mh_config_set(&l[0].cfg, "table", "101", NULL, err, sizeof err);
	mh_config_set(&l[0].cfg, "mark", "0x1", NULL, err, sizeof err);
	mh_config_set(&l[0].cfg, "priority", "101", NULL, err, sizeof err);
	mh_config_set(&l[0].cfg, "weight", "8", NULL, err, sizeof err);
	mh_config_set(&l[0].cfg, "pin", "tcp port 25", NULL, err, sizeof err);
	mh_config_set(&l[0].cfg, "pin", "udp 203.0.113.130 port 1130", NULL, err, sizeof err);
	mh_config_set(&l[1].cfg, "name", "isp2", NULL, err, sizeof err);
	mh_config_set(&l[1].cfg, "table", "102", NULL, err, sizeof err);
	mh_config_set(&l[1].cfg, "mark", "0x2", NULL, err, sizeof err);
	mh_config_set(&l[1].cfg, "priority", "102", NULL, err, sizeof err);
	mh_config_set(&l[1].cfg, "weight", "2", NULL, err, sizeof err);
	mh_config_set(&l[1].cfg, "pin", "198.51.100.192/26", NULL, err, sizeof err);
	strcpy(l[0].ifname, "ppp0");
	strcpy(l[1].ifname, "ppp1");
	l[0].ifindex = 3;
	l[1].ifindex = 4;
	inet_pton(AF_INET, "100.64.1.2", &l[0].local);
	inet_pton(AF_INET, "100.64.2.2", &l[1].local);
	l[0].slot = 0;
	l[1].slot = 1;
	l[0].up = l[1].up = 1;
	l[0].online = l[1].online = 1;
}

static int build(struct mh_link *links, unsigned n, int nexthops, enum mh_fw_backend be,
		 struct mh_plan *p)
{
	struct mh_plan_input in = { .links = links, .n = n, .nexthops = nexthops, .backend = be };

	return mh_plan_build(&in, p);
}

static unsigned count_rules(const struct mh_firewall *f, const char *chain, int kind)
{
	unsigned i, n = 0;

	for (i = 0; i < f->nrules; i++)
		n += !strcmp(f->rules[i].chain, chain) && (kind < 0 || f->rules[i].kind == kind);
	return n;
}

static int has_chain(const struct mh_firewall *f, const char *name)
{
	unsigned i;

	for (i = 0; i < f->nchains; i++)
		if (!strcmp(f->chains[i].name, name))
			return 1;
	return 0;
}

static unsigned pin_rules(const struct mh_plan *p, uint32_t table, int unreachable)
{
	unsigned i, n = 0;

	for (i = 0; i < p->rt.nrules; i++) {
		const struct mh_rule *r = &p->rt.rules[i];
		n += !r->mark && r->mask == 0xffffffffu && r->unreachable == unreachable &&
		     (unreachable || r->table == table);
	}
	return n;
}

static void test_plan_scenario(void)
{
	struct mh_link l[2];
	struct mh_plan p;
	unsigned i, pins = 0;
	char name[MH_CHAIN_MAX] = "";

	scenario_links(l);
	report(build(l, 2, 1, MH_FW_IPTABLES, &p) == 0 && p.nlinks == 2 &&
	       !strcmp(p.links[0].name, "isp1"), "plan: two up links, in priority order");
	report(p.rt.nrules == 5 && p.rt.rules[0].suppress && p.rt.rules[0].prio == 99 &&
	       p.rt.rules[1].prio == 101 && p.rt.rules[2].prio == 10101 &&
	       p.rt.rules[3].prio == 102 && p.rt.rules[4].prio == 10102 &&
	       p.rt.rules[4].src == l[1].local && pin_rules(&p, 101, 0) == 0 && pin_rules(&p, 102, 0) == 0,
	       "plan: suppress rule at 99, per link a fwmark and a source rule; pins that fall through "
	       "are no rules");
	report(p.rt.nroutes == 3 && p.rt.routes[2].table == RT_TABLE_MAIN &&
	       p.rt.routes[2].nhid == MH_NH_GROUP_ID && p.rt.nnhs == 2 && p.rt.ngroup == 2 &&
	       p.rt.group[0].id == MH_NH_ID_BASE + 1 && p.rt.group[0].weight == 8 &&
	       p.rt.group[1].weight == 2, "plan: table routes, nexthops, group 8:2, main's default over it");
	mh_plan_free(&p);
	l[0].cfg.pin_fallback = 0;
	build(l, 2, 1, MH_FW_IPTABLES, &p);
	report(p.rt.nrules == 7 && pin_rules(&p, 101, 0) == 2 && pin_rules(&p, 102, 0) == 0 &&
	       p.rt.rules[4].prio == 101 && p.rt.rules[4].ipproto == 17 && p.rt.rules[4].dport_lo == 1130 &&
	       p.rt.rules[4].dst_len == 32 && !p.rt.rules[4].mark && p.rt.rules[4].mask == 0xffffffffu,
	       "plan: a strict link's pins are rules too, for unmarked packets, at its priority");
	mh_plan_free(&p);
	l[0].cfg.pin_fallback = 1;
	build(l, 2, 1, MH_FW_IPTABLES, &p);
	report(p.fw.ours == 0x3 && count_rules(&p.fw, MH_IPT_PRE, -1) == 5 &&
	       count_rules(&p.fw, MH_IPT_MARK, MH_FW_PIN) == 3 &&
	       count_rules(&p.fw, MH_IPT_MARK, MH_FW_STOP_IF_MARKED) == 4 &&
	       count_rules(&p.fw, MH_IPT_NAT, MH_FW_NAT) == 2 && p.fw.want_nat,
	       "plan (iptables): PRE 5 rules, MARK restore + 3 pins each followed by a stop, NAT 2");
	mh_plan_free(&p);

	build(l, 2, 1, MH_FW_NFT, &p);
	for (i = 0; i < p.fw.nrules; i++)
		if (p.fw.rules[i].kind == MH_FW_PIN_JUMP) {
			pins++;
			if (!name[0])
				snprintf(name, sizeof name, "%s", p.fw.rules[i].jump);
		}
	report(p.fw.nchains == 10 && has_chain(&p.fw, "in_isp1_0x1_0x1_m") &&
	       has_chain(&p.fw, "rs_isp2_0x2_0x2") && !strncmp(name, "pin_isp1_", 9) &&
	       has_chain(&p.fw, name) && pins == 2 && p.fw.nelems == 6,
	       "plan (nft): chains in_/rs_/pin_ per link, 2 pin jumps, 6 map elements");
	report(count_rules(&p.fw, MH_NFT_EGRESS, -1) == 6 &&
	       !strcmp(p.fw.rules[0].comment, "multihome mask 0x00000003"),
	       "plan (nft): chain egress: 4 mask rules 'multihome mask 0x00000003', then the jumps");
	mh_plan_free(&p);

	l[1].up = 0;
	build(l, 2, 0, MH_FW_NFT, &p);
	report(p.nlinks == 1 && p.rt.nnhs == 0 && p.rt.nhops == 1 && p.rt.routes[1].nhops == 1 &&
	       p.fw.ours == 0x1, "plan: without nexthop objects, main's default is a multipath route");
	mh_plan_free(&p);
	l[0].up = 0;
	build(l, 2, 1, MH_FW_IPTABLES, &p);
	report(p.nlinks == 0 && p.rt.nrules == 0 && p.rt.nroutes == 0 && !p.fw.wanted &&
	       p.fw.nrules == 0, "plan: no link up, nothing at all");
	mh_plan_free(&p);
}

/* ---- a model kernel for routing ---- */

static void copy_routing(struct mh_routing *dst, const struct mh_routing *src)
{
	memset(dst, 0, sizeof *dst);
#define DUP(f, n) dst->f = malloc((src->n + 1) * sizeof *dst->f); \
	memcpy(dst->f, src->f, src->n * sizeof *dst->f); dst->n = src->n
	DUP(rules, nrules);
	DUP(routes, nroutes);
	DUP(hops, nhops);
	DUP(nhs, nnhs);
	DUP(group, ngroup);
#undef DUP
	dst->has_group = src->has_group;
	dst->nexthops = src->nexthops;
}

static void model_route(struct mh_routing *k, const struct mh_routing *one, const struct nlmsghdr *h)
{
	const struct mh_route *r = &one->routes[0];
	unsigned i;

	for (i = 0; i < k->nroutes; i++) {
		struct mh_route *x = &k->routes[i];
		if (x->table != r->table || x->metric != r->metric || x->type != r->type)
			continue;
		if (h->nlmsg_type == RTM_DELROUTE && r->oif && x->oif != r->oif)
			continue;
		if (h->nlmsg_type == RTM_NEWROUTE && (h->nlmsg_flags & NLM_F_EXCL))
			return;         /* EEXIST: the model keeps what it has */
		memmove(x, x + 1, (k->nroutes - i - 1) * sizeof *x);
		k->nroutes--;
		break;
	}
	if (h->nlmsg_type == RTM_DELROUTE)
		return;
	k->routes = realloc(k->routes, (k->nroutes + 1) * sizeof *k->routes);
	k->routes[k->nroutes] = *r;
	k->routes[k->nroutes].hop0 = k->nhops;
	k->hops = realloc(k->hops, (k->nhops + r->nhops + 1) * sizeof *k->hops);
	memcpy(k->hops + k->nhops, one->hops + r->hop0, r->nhops * sizeof *k->hops);
	k->nhops += r->nhops;
	k->nroutes++;
}

/* As the kernel: a deleted nexthop leaves the group; an emptied group is
 * deleted, and the routes over it with it. */
static void model_member_gone(struct mh_routing *k, uint32_t id)
{
	unsigned i;

	for (i = 0; i < k->ngroup; i++)
		if (k->group[i].id == id) {
			memmove(&k->group[i], &k->group[i + 1], (k->ngroup - i - 1) * sizeof k->group[i]);
			k->ngroup--;
			break;
		}
	if (k->has_group && !k->ngroup) {
		k->has_group = 0;
		for (i = 0; i < k->nroutes; i++)
			if (k->routes[i].nhid == MH_NH_GROUP_ID) {
				memmove(&k->routes[i], &k->routes[i + 1], (k->nroutes - i - 1) * sizeof k->routes[i]);
				k->nroutes--;
				i--;
			}
	}
}

static void model_nexthop(struct mh_routing *k, const struct mh_routing *one, const struct nlmsghdr *h)
{
	unsigned i;
	uint32_t id;

	if (h->nlmsg_type == RTM_NEWNEXTHOP && one->has_group) {
		free(k->group);
		k->group = malloc((one->ngroup + 1) * sizeof *k->group);
		memcpy(k->group, one->group, one->ngroup * sizeof *k->group);
		k->ngroup = one->ngroup;
		k->has_group = 1;
		return;
	}
	if (!one->nnhs)
		return;
	id = one->nhs[0].id;
	if (id == MH_NH_GROUP_ID) {         /* a delete of the group */
		k->has_group = 0;
		k->ngroup = 0;
		return;
	}
	for (i = 0; i < k->nnhs; i++)
		if (k->nhs[i].id == id) {
			memmove(&k->nhs[i], &k->nhs[i + 1], (k->nnhs - i - 1) * sizeof k->nhs[i]);
			k->nnhs--;
			break;
		}
	if (h->nlmsg_type == RTM_DELNEXTHOP) {
		model_member_gone(k, id);
		return;
	}
	k->nhs = realloc(k->nhs, (k->nnhs + 1) * sizeof *k->nhs);
	k->nhs[k->nnhs++] = one->nhs[0];
}

static void model_rule(struct mh_routing *k, const struct mh_routing *one, const struct nlmsghdr *h)
{
	const struct mh_rule *r = &one->rules[0];
	unsigned i;

	if (h->nlmsg_type == RTM_NEWRULE) {
		k->rules = realloc(k->rules, (k->nrules + 1) * sizeof *k->rules);
		k->rules[k->nrules++] = *r;
		return;
	}
	for (i = 0; i < k->nrules; i++) {
		const struct mh_rule *x = &k->rules[i];
		if (x->prio == r->prio && x->table == r->table && x->mark == r->mark &&
		    x->mask == r->mask && x->src == r->src && x->src_len == r->src_len &&
		    x->suppress == r->suppress && x->dst == r->dst && x->dst_len == r->dst_len &&
		    x->ipproto == r->ipproto && x->dport_lo == r->dport_lo && x->dport_hi == r->dport_hi) {
			memmove(&k->rules[i], &k->rules[i + 1], (k->nrules - i - 1) * sizeof k->rules[i]);
			k->nrules--;
			return;
		}
	}
}

/* Apply the batch's messages to K; returns how many there were (-1: one did not parse). */
static int model_apply(struct mh_routing *k, const struct mh_nl_batch *b)
{
	const struct nlmsghdr *h = (const struct nlmsghdr *)b->buf;
	int len = (int)b->used, n = 0;

	for (; mh_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len), n++) {
		struct mh_routing one = { 0 };
		if (mh_rt_parse(h, 1, &one) < 0)
			return -1;
		if (one.nrules)
			model_rule(k, &one, h);
		else if (one.nroutes)
			model_route(k, &one, h);
		else
			model_nexthop(k, &one, h);
		mh_routing_free(&one);
	}
	return n;
}

/* status's diff against K, the writer's messages for it applied to K, then
 * the diff again: it must be empty. */
static void converges(const char *what, struct mh_plan *want, struct mh_routing *k, unsigned min_ops)
{
	struct mh_rt_diff_args full = { .delta = 0, .touched = -1 };
	struct mh_rt_ops ops = { 0 }, again = { 0 };
	struct mh_nl_batch b;
	int sent;

	mh_rt_diff(&want->rt, k, &full, &ops);
	mh_nl_batch_init(&b, NULL);
	mh_rt_build(&b, &want->rt, &ops, 0);
	sent = model_apply(k, &b);
	mh_rt_diff(&want->rt, k, &full, &again);
	report(ops.n >= min_ops && sent == (int)ops.n && again.n == 0, "%s: %u operations (status), "
	       "%d messages (reapply), then %u", what, ops.n, sent, again.n);
	mh_nl_batch_free(&b);
	mh_rt_ops_free(&ops);
	mh_rt_ops_free(&again);
}

static void test_rt_converges(void)
{
	struct mh_link l[2];
	struct mh_plan want, none;
	struct mh_routing k;
	struct mh_rule stale = { .prio = 150, .table = 103, .mark = 0x4, .mask = 0x4 };
	struct mh_nexthop snh = { .id = MH_NH_ID_BASE + 9, .oif = 7 };

	scenario_links(l);
	build(l, 2, 1, MH_FW_IPTABLES, &want);

	memset(&k, 0, sizeof k);
	converges("routing, empty kernel", &want, &k, 11);
	mh_routing_free(&k);

	/* ours plus a duplicate, a stale rule, a stale route, a stale nexthop */
	copy_routing(&k, &want.rt);
	k.rules = realloc(k.rules, (k.nrules + 2) * sizeof *k.rules);
	k.rules[k.nrules++] = want.rt.rules[1];
	k.rules[k.nrules++] = stale;
	k.routes = realloc(k.routes, (k.nroutes + 1) * sizeof *k.routes);
	k.routes[k.nroutes++] = (struct mh_route){ .table = 103, .type = RTN_UNICAST, .oif = 9 };
	k.nhs = realloc(k.nhs, (k.nnhs + 1) * sizeof *k.nhs);
	k.nhs[k.nnhs++] = snh;
	converges("routing, a duplicate, a stale rule, route and nexthop", &want, &k, 4);
	mh_routing_free(&k);

	/* the group's weights wrong, a table route and main's default missing */
	copy_routing(&k, &want.rt);
	k.group[0].weight = 1;
	k.nroutes = 1;
	converges("routing, wrong group weights, routes missing", &want, &k, 3);
	mh_routing_free(&k);

	/* a stale member in the group, its nexthop ours: deleting the nexthop
	 * is enough (the kernel shrinks the group), no replace */
	copy_routing(&k, &want.rt);
	k.nhs = realloc(k.nhs, (k.nnhs + 1) * sizeof *k.nhs);
	k.nhs[k.nnhs++] = snh;
	k.group = realloc(k.group, (k.ngroup + 1) * sizeof *k.group);
	k.group[k.ngroup++] = (struct mh_member){ .id = snh.id, .weight = 1 };
	{
		struct mh_rt_diff_args full = { .delta = 0, .touched = -1 };
		struct mh_rt_ops ops = { 0 };
		mh_rt_diff(&want.rt, &k, &full, &ops);
		report(ops.n == 1 && ops.v[0].kind == MH_RT_NEXTHOP && ops.v[0].action == MH_OP_DELETE,
		       "routing, a stale member whose nexthop is ours: its nexthop deleted, the group "
		       "not replaced (%u ops)", ops.n);
		mh_rt_ops_free(&ops);
	}
	converges("routing, a stale member whose nexthop is ours", &want, &k, 1);
	mh_routing_free(&k);

	/* main's default of ours as a multipath route (the fallback), nexthops wanted */
	copy_routing(&k, &want.rt);
	k.routes[2].nhid = 0;
	k.routes[2].hop0 = 0;
	k.routes[2].nhops = 0;
	k.routes[2].oif = 3;
	converges("routing, main's default of ours in the fallback form", &want, &k, 1);
	mh_routing_free(&k);

	/* flush: nothing wanted, everything goes */
	l[0].up = l[1].up = 0;
	build(l, 2, 1, MH_FW_IPTABLES, &none);
	copy_routing(&k, &want.rt);
	converges("routing, nothing wanted (flush)", &none, &k, 11);
	mh_routing_free(&k);
	mh_plan_free(&none);
	mh_plan_free(&want);
}

/* The incremental path of isp2 coming up while isp1 is: the 6 messages of
 * DESIGN's "one up event". */
static void test_rt_delta(void)
{
	struct mh_link l[2];
	struct mh_plan before, after;
	struct mh_rt_ops ops = { 0 };
	struct mh_rt_diff_args a = { .delta = 1, .touched = 1 };
	unsigned adds = 0, i;

	scenario_links(l);
	l[1].up = 0;
	build(l, 2, 1, MH_FW_IPTABLES, &before);
	l[1].up = 1;
	build(l, 2, 1, MH_FW_IPTABLES, &after);
	mh_rt_diff(&after.rt, &before.rt, &a, &ops);
	for (i = 0; i < ops.n; i++)
		adds += ops.v[i].action != MH_OP_DELETE;
	report(ops.n == 6 && adds == 6 && ops.v[0].kind == MH_RT_ROUTE && ops.v[1].kind == MH_RT_NEXTHOP &&
	       ops.v[2].kind == MH_RT_GROUP && ops.v[3].kind == MH_RT_ROUTE && ops.v[3].exists_ok,
	       "delta: isp2 up: its route, nexthop, the group, main's default (sure), 2 rules: %u ops",
	       ops.n);
	mh_rt_ops_free(&ops);
	a.touched = -1;
	mh_rt_diff(&before.rt, &after.rt, &a, &ops);
	for (adds = 0, i = 0; i < ops.n; i++)
		adds += ops.v[i].kind == MH_RT_GROUP || (ops.v[i].kind == MH_RT_ROUTE &&
							 ((const struct mh_route *)ops.v[i].obj)->table == 254);
	report(ops.n == 4 && adds == 0 && ops.v[ops.n - 1].kind == MH_RT_NEXTHOP &&
	       ops.v[ops.n - 1].action == MH_OP_DELETE,
	       "delta: isp2 down: 2 rules (fwmark, source), its route, its nexthop (the kernel "
	       "shrinks the group: no replace, main's default untouched): %u ops", ops.n);
	mh_rt_ops_free(&ops);
	mh_rt_diff(&after.rt, &after.rt, &a, &ops);
	report(ops.n == 0, "delta: the same plan twice: no operation (%u)", ops.n);
	mh_rt_ops_free(&ops);
	mh_plan_free(&before);
	mh_plan_free(&after);
}

/* ---- nftables: the diff against a model table ---- */

static void fw_copy_chain(struct mh_firewall *k, struct mh_plan *w, const struct mh_nft_chain *c)
{
	unsigned i;

	k->chains = realloc(k->chains, (k->nchains + 1) * sizeof *k->chains);
	k->chains[k->nchains++] = *c;
	for (i = 0; i < w->fw.nrules; i++) {
		struct mh_fw_rule *r = &w->fw.rules[i];
		if (strcmp(r->chain, c->name))
			continue;
		k->rules = realloc(k->rules, (k->nrules + 1) * sizeof *k->rules);
		k->rules[k->nrules] = *r;
		k->rules[k->nrules].kind = 0xff;
		k->rules[k->nrules].text = strdup(mh_fw_nft_rule_text(w, r));
		k->rules[k->nrules].handle = 1000 + k->nrules;
		k->nrules++;
	}
}

/* The table as the plan would build it, read back. */
static void fw_table(struct mh_firewall *k, struct mh_plan *w)
{
	unsigned i;

	memset(k, 0, sizeof *k);
	k->backend = MH_FW_NFT;
	k->table = 1;
	for (i = 0; i < MH_NSETS; i++)
		k->sets[i] = 1;
	for (i = 0; i < w->fw.nchains; i++)
		fw_copy_chain(k, w, &w->fw.chains[i]);
	k->elems = malloc((w->fw.nelems + 1) * sizeof *k->elems);
	memcpy(k->elems, w->fw.elems, w->fw.nelems * sizeof *k->elems);
	k->nelems = w->fw.nelems;
}

static unsigned count_ops(const struct mh_fw_ops *o, int kind, int action)
{
	unsigned i, n = 0;

	for (i = 0; i < o->n; i++)
		n += o->v[i].kind == kind && o->v[i].action == action;
	return n;
}

static void test_nft_diff(void)
{
	struct mh_link l[2];
	struct mh_plan want;
	struct mh_firewall k;
	struct mh_fw_ops ops = { 0 };
	unsigned i;

	scenario_links(l);
	build(l, 2, 1, MH_FW_NFT, &want);
	fw_table(&k, &want);
	mh_fw_nft_diff(&want, &k, 1, &ops);
	report(ops.n == 0, "nft: the table as planned, read back: no operation (%u)", ops.n);

	/* an element gone, one pointing elsewhere, a stale chain, a pin rule gone */
	k.nelems--;                                     /* isp2's masq element */
	snprintf(k.elems[0].chain, sizeof k.elems[0].chain, "in_other");
	k.chains = realloc(k.chains, (k.nchains + 1) * sizeof *k.chains);
	k.chains[k.nchains++] = (struct mh_nft_chain){ .name = "rs_gone_0x8_0x8", .owner = -1 };
	for (i = 0; i < k.nrules; i++)
		if (!strncmp(k.rules[i].chain, "pin_isp1_", 9)) {
			k.rules[i].chain[0] = 0;        /* one of isp1's two pin rules */
			break;
		}
	mh_fw_nft_diff(&want, &k, 1, &ops);
	report(count_ops(&ops, MH_FWOP_ELEM, MH_OP_ADD) == 2 &&
	       count_ops(&ops, MH_FWOP_ELEM, MH_OP_DELETE) == 1 &&
	       count_ops(&ops, MH_FWOP_CHAIN, MH_OP_DELETE) == 1 &&
	       count_ops(&ops, MH_FWOP_CHAIN, MH_OP_REPLACE) == 1 && ops.n == 5,
	       "nft: 2 elements to add (1 replaces a wrong one), a stale chain to delete, "
	       "a pin chain to refill: %u ops", ops.n);
	mh_fw_ops_free(&ops);
	mh_firewall_free(&k);

	memset(&k, 0, sizeof k);
	mh_fw_nft_diff(&want, &k, 1, &ops);
	report(ops.n == 1 && ops.v[0].kind == MH_FWOP_TABLE && ops.v[0].action == MH_OP_ADD,
	       "nft: no table: one operation, the table built whole");
	mh_fw_ops_free(&ops);
	mh_plan_free(&want);
}

static unsigned group_has(const struct mh_plan *p, unsigned slot)
{
	unsigned i;

	for (i = 0; i < p->rt.ngroup; i++)
		if (p->rt.group[i].id == mh_nh_id(slot))
			return 1;
	return 0;
}

/* Upstream tracking: what an offline link keeps and loses (issue 15). */
static void test_plan_offline(void)
{
	struct mh_link l[2];
	struct mh_plan p;
	char err[MH_ERR_MAX];

	scenario_links(l);
	l[0].online = 0;
	build(l, 2, 1, MH_FW_IPTABLES, &p);
	report(p.rt.ngroup == 1 && group_has(&p, 1) && !group_has(&p, 0) && pin_rules(&p, 101, 0) == 0 &&
	       pin_rules(&p, 102, 0) == 0 && count_rules(&p.fw, MH_IPT_MARK, MH_FW_PIN) == 1 &&
	       count_rules(&p.fw, MH_IPT_PRE, MH_FW_INGRESS_CTMARK) == 2 && p.rt.nroutes == 3 &&
	       count_rules(&p.fw, MH_IPT_NAT, MH_FW_NAT) == 2,
	       "offline isp1: out of the group, its pins fall through; table, ingress, NAT stay");
	mh_plan_free(&p);

	l[1].online = 0;
	build(l, 2, 1, MH_FW_NFT, &p);
	report(p.rt.ngroup == 2 && pin_rules(&p, 101, 0) == 0 && pin_rules(&p, 102, 0) == 0,
	       "every weighted link offline: all stay in the group (never worse), no pins apply");
	mh_plan_free(&p);

	l[1].online = 1;
	mh_config_set(&l[0].cfg, "pin-fallback", "no", NULL, err, sizeof err);
	build(l, 2, 1, MH_FW_IPTABLES, &p);
	report(pin_rules(&p, 0, 1) == 2 && count_rules(&p.fw, MH_IPT_MARK, MH_FW_PIN_DROP) == 2 &&
	       !group_has(&p, 0),
	       "offline isp1 with pin-fallback no: its 2 pins refuse (unreachable rules, DROP)");
	mh_plan_free(&p);
	build(l, 2, 1, MH_FW_NFT, &p);
	{
		unsigned i, drops = 0, jump = 0;
		const char *chain = NULL;
		for (i = 0; i < p.fw.nchains; i++)
			if (!strncmp(p.fw.chains[i].name, "drop_isp1_", 10))
				chain = p.fw.chains[i].name;
		for (i = 0; chain && i < p.fw.nrules; i++)
			drops += p.fw.rules[i].kind == MH_FW_PIN_DROP && !strcmp(p.fw.rules[i].chain, chain);
		while (jump < p.fw.nrules && p.fw.rules[jump].kind != MH_FW_PIN_JUMP)
			jump++;
		report(chain && drops == 2 && !has_chain(&p.fw, "pin_isp1_4f5ba1c4") &&
		       jump < p.fw.nrules && !strcmp(p.fw.rules[jump].jump, chain),
		       "offline strict isp1 (nft): its 2 pins drop in chain %s, jumped to first",
		       chain ? chain : "(none)");
	}
	mh_plan_free(&p);
}

void test_plan(void)
{
	test_plan_scenario();
	test_plan_offline();
	test_rt_converges();
	test_rt_delta();
	test_nft_diff();
}
