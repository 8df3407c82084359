/* The plan: what multihome must have in the kernel, from the links alone.
 *
 * Pure: no I/O, no global state.  Routing (rules, the links' tables, the
 * nexthops and the balanced group or multipath route) is the same for both
 * firewall backends; the firewall part is the chosen backend's objects, with
 * their names and comments.  DESIGN.md's "kernel state for one link" table,
 * as code.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <linux/netfilter.h>
#include <linux/rtnetlink.h>

#include "plan.h"

const char *const mh_nft_set_names[MH_NSETS] = { "ingress", "restore", "masq", "srcaddr" };

static int link_order(const void *a, const void *b)
{
	const struct mh_link *x = *(const struct mh_link *const *)a;
	const struct mh_link *y = *(const struct mh_link *const *)b;

	if (x->cfg.priority != y->cfg.priority)
		return x->cfg.priority < y->cfg.priority ? -1 : 1;
	return strcmp(x->cfg.name, y->cfg.name);
}

/* One byte of the priorities, stably: OUT through TMP. */
static void radix_pass(const struct mh_link **out, const struct mh_link **tmp, unsigned k,
		       unsigned shift)
{
	unsigned count[257] = { 0 }, i;

	for (i = 0; i < k; i++)
		count[((out[i]->cfg.priority >> shift) & 0xff) + 1]++;
	for (i = 0; i < 256; i++)
		count[i + 1] += count[i];
	for (i = 0; i < k; i++)
		tmp[count[(out[i]->cfg.priority >> shift) & 0xff]++] = out[i];
	memcpy(out, tmp, k * sizeof *out);
}

/* OUT[0..K) by priority, then name: a radix sort of the priorities (two
 * bytes; link priorities are at most MH_PRIO_MAX), then each run of equal
 * ones by name.  At 256 links qsort's comparisons cost an event more. */
static void sort_links(const struct mh_link **out, unsigned k)
{
	const struct mh_link **tmp = NULL;
	unsigned i, run;

	for (i = 0; i < k && out[i]->cfg.priority <= 0xffff; i++)
		;
	if (i < k || !(tmp = malloc(k * sizeof *tmp))) {
		qsort(out, k, sizeof *out, link_order);
		return;
	}
	radix_pass(out, tmp, k, 0);
	radix_pass(out, tmp, k, 8);
	free(tmp);
	for (i = 0; i < k; i = run) {
		for (run = i + 1; run < k && out[run]->cfg.priority == out[i]->cfg.priority; run++)
			;
		if (run - i > 1)
			qsort(out + i, run - i, sizeof *out, link_order);
	}
}

static unsigned order(const struct mh_link *links, unsigned n, const struct mh_link **out,
		      int (*which)(const struct mh_link *))
{
	unsigned i, k = 0;

	for (i = 0; i < n; i++)
		if (which(&links[i]))
			out[k++] = &links[i];
	if (k)
		sort_links(out, k);
	return k;
}

static int is_up(const struct mh_link *l) { return l->up; }

unsigned mh_plan_order(const struct mh_link *links, unsigned n, const struct mh_link **out)
{
	return order(links, n, out, is_up);
}

/* every link in the plan marks packets: up ones, and strict ones refusing */
uint32_t mh_mark_union(const struct mh_plan_link *links, unsigned n)
{
	uint32_t u = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		u |= links[i].mask;
	return u;
}

/* ---- small string builders (snprintf costs ~0.3 us a call; names are per link) ---- */

static char *put_str(char *p, const char *end, const char *s)
{
	while (*s && p < end)
		*p++ = *s++;
	return p;
}

static char *put_hex(char *p, const char *end, uint32_t v, int prefix)
{
	static const char hex[] = "0123456789abcdef";
	char t[8];
	int k = 0;

	if (prefix)
		p = put_str(p, end, "0x");
	do
		t[k++] = hex[v & 0xf];
	while ((v >>= 4) && k < 8);
	if (!prefix)
		while (k < 8)
			t[k++] = '0';
	while (k && p < end)
		*p++ = t[--k];
	return p;
}

/* KIND NAME _0xA _0xB   or, with HASH, KIND NAME _AAAAAAAA */
static void chain_name(char *buf, size_t len, const char *kind, const char *name, uint32_t a,
		       uint32_t b, int hash)
{
	char *p = buf, *end = buf + len - 1;

	p = put_str(p, end, kind);
	p = put_str(p, end, name);
	p = put_str(p, end, "_");
	p = put_hex(p, end, a, !hash);
	if (!hash) {
		p = put_str(p, end, "_");
		p = put_hex(p, end, b, 1);
	}
	*p = 0;
}

static void link_comment(char *buf, const char *name)
{
	char *p = put_str(buf, buf + MH_COMMENT_MAX - 1, "multihome ");

	p = put_str(p, buf + MH_COMMENT_MAX - 1, name);
	*p = 0;
}

static void mask_comment(char *buf, uint32_t ours)
{
	char *p = put_str(buf, buf + MH_COMMENT_MAX - 1, "multihome mask 0x");

	p = put_hex(p, buf + MH_COMMENT_MAX - 1, ours, 0);
	*p = 0;
}

/* FNV-1a over what a link's pin chain holds: its mark and its pins. */
static uint32_t pins_hash(const struct mh_plan_link *l)
{
	uint32_t h = 2166136261u;
	unsigned i;
#define MIX(x) do { uint32_t v_ = (uint32_t)(x); int b_; \
	for (b_ = 0; b_ < 4; b_++) { h ^= (v_ >> (8 * b_)) & 0xff; h *= 16777619u; } } while (0)
	MIX(l->mark);
	MIX(l->mask);
	MIX(l->npins);
	for (i = 0; i < l->npins; i++) {
		const struct mh_pin *p = &l->pins[i];
		MIX(p->proto);
		MIX(p->dst_len);
		MIX(p->port_lo);
		MIX(p->port_hi);
		MIX(p->dst);
	}
#undef MIX
	return h;
}

/* ---- routing ---- */

/* A strict link's pin as a rule too, for packets that carry no mark yet:
 * the route a socket gets (and its source address) is then already the
 * pin's, and the refusal ("no route to host") reaches the host's own sockets
 * at once.  The firewall's pins still mark the packets (and the flows) the
 * same way.  Pins that fall through have no rule: a host socket then keeps
 * the balanced route's address (NATed to the pin's link), which stays valid
 * when that link dies and its flows move on. */
static void plan_pin_rules(struct mh_plan *p, unsigned i)
{
	const struct mh_plan_link *l = &p->links[i];
	struct mh_routing *rt = &p->rt;
	int refuse = l->up && !l->online;       /* a strict link's, offline */
	unsigned j;

	for (j = 0; j < l->npins; j++) {
		const struct mh_pin *pin = &l->pins[j];
		rt->rules[rt->nrules++] = (struct mh_rule){
			.prio = l->priority, .table = refuse ? 0 : l->table, .mark = 0,
			.mask = 0xffffffffu, .dst = pin->dst, .dst_len = pin->dst_len,
			.ipproto = pin->proto, .dport_lo = pin->port_lo, .dport_hi = pin->port_hi,
			.unreachable = (uint8_t)refuse, .owner = (int)i };
	}
}

/* Do the link's pins apply?  An offline link's fall through, unless strict
 * (then they refuse); a down link is in the plan only when strict. */
static int pins_apply(const struct mh_plan_link *l)
{
	return l->online || l->strict;
}

/* Is any weighted up link online?  (Computed once per plan.) */
static int any_online(const struct mh_plan *p)
{
	unsigned i;

	for (i = 0; i < p->nlinks; i++)
		if (p->links[i].up && p->links[i].weight && p->links[i].online)
			return 1;
	return 0;
}

/* In the balanced route: weighted, up and online; if every weighted up link
 * is offline, all of them (never make it worse). */
static int balanced(const struct mh_plan *p, const struct mh_plan_link *l)
{
	return l->up && l->weight && (l->online || !p->any_online);
}

/* Are link I's own objects (its rules, routes, nexthop, chains, elements)
 * in the plan?  All, unless the plan holds only what an event changes. */
static int mine(const struct mh_plan *p, unsigned i)
{
	return !p->mine || p->mine[i];
}

static void plan_rules(struct mh_plan *p)
{
	struct mh_routing *rt = &p->rt;
	unsigned i;

	if (!p->nlinks)
		return;
	rt->rules[rt->nrules++] = (struct mh_rule){ .prio = MH_PRIO_SUPPRESS, .table = RT_TABLE_MAIN,
						    .suppress = 1, .owner = MH_NO_OWNER };
	for (i = 0; i < p->nlinks; i++) {
		const struct mh_plan_link *l = &p->links[i];
		if (!mine(p, i))
			continue;
		rt->rules[rt->nrules++] = (struct mh_rule){ .prio = l->priority, .table = l->table,
							    .mark = l->mark, .mask = l->mask,
							    .owner = (int)i };
		if (l->up)
			rt->rules[rt->nrules++] = (struct mh_rule){
				.prio = MH_PRIO_SOURCE_BASE + l->priority, .table = l->table,
				.src = l->local, .src_len = 32, .owner = (int)i };
		if (l->strict && pins_apply(l))
			plan_pin_rules(p, i);
	}
}

static int member_cmp(const void *a, const void *b)
{
	const struct mh_member *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* The group by nexthop id, i.e. by slot: placed, not compared (qsort's
 * comparisons cost an event at 256 links more than the rest of the plan). */
static void sort_members(struct mh_routing *rt)
{
	struct mh_member by_slot[MH_MAX_LINKS];
	unsigned char there[MH_MAX_LINKS] = { 0 };
	unsigned i, k = 0;

	for (i = 0; i < rt->ngroup; i++) {
		uint32_t s = rt->group[i].id - MH_NH_ID_BASE - 1;
		if (s >= MH_MAX_LINKS || there[s]) {
			qsort(rt->group, rt->ngroup, sizeof *rt->group, member_cmp);
			return;
		}
		there[s] = 1;
		by_slot[s] = rt->group[i];
	}
	for (i = 0; i < MH_MAX_LINKS && k < rt->ngroup; i++)
		if (there[i])
			rt->group[k++] = by_slot[i];
}

static void plan_routes(struct mh_plan *p)
{
	struct mh_routing *rt = &p->rt;
	unsigned i;

	for (i = 0; i < p->nlinks; i++) {
		const struct mh_plan_link *l = &p->links[i];
		int own = mine(p, i);
		/* a strict link's table refuses once its own route is gone (ip-down,
		 * or the kernel's flush of a vanished device): the kill switch holds
		 * even when no process of ours runs any more */
		if (l->strict && own)
			rt->routes[rt->nroutes++] = (struct mh_route){ .table = l->table,
				.type = RTN_UNREACHABLE, .metric = MH_METRIC_LAST, .owner = (int)i };
		if (!l->up)
			continue;
		if (own)
			rt->routes[rt->nroutes++] = (struct mh_route){
				.table = l->table, .type = RTN_UNICAST, .oif = l->ifindex,
				.gw = l->gateway, .owner = (int)i };
		if (!balanced(p, l))
			continue;
		if (rt->nexthops) {
			if (own)
				rt->nhs[rt->nnhs++] = (struct mh_nexthop){ .id = mh_nh_id(l->slot),
					.oif = l->ifindex, .gw = l->gateway, .owner = (int)i };
			rt->group[rt->ngroup++] = (struct mh_member){ .id = mh_nh_id(l->slot),
								      .weight = l->weight };
		} else {
			rt->hops[rt->nhops++] = (struct mh_hop){ .oif = l->ifindex, .gw = l->gateway,
								 .weight = l->weight };
		}
	}
	sort_members(rt);
	rt->has_group = rt->ngroup > 0;
	if (rt->ngroup)
		rt->routes[rt->nroutes++] = (struct mh_route){ .table = RT_TABLE_MAIN,
			.type = RTN_UNICAST, .nhid = MH_NH_GROUP_ID, .owner = MH_NO_OWNER };
	else if (rt->nhops)
		rt->routes[rt->nroutes++] = (struct mh_route){ .table = RT_TABLE_MAIN,
			.type = RTN_UNICAST, .hop0 = 0, .nhops = rt->nhops, .owner = MH_NO_OWNER };
}

/* ---- firewall ---- */

static struct mh_fw_rule *fw_rule(struct mh_plan *p, uint8_t kind, int owner, const char *chain)
{
	struct mh_fw_rule *r = &p->fw.rules[p->fw.nrules++];

	memset(r, 0, sizeof *r);
	r->kind = kind;
	r->owner = owner;
	r->ours = p->fw.ours;
	put_str(r->chain, r->chain + sizeof r->chain - 1, chain)[0] = 0;
	if (owner >= 0)
		link_comment(r->comment, p->links[owner].name);
	else
		put_str(r->comment, r->comment + MH_COMMENT_MAX - 1, "multihome")[0] = 0;
	return r;
}

static void set_jump(struct mh_fw_rule *r, const char *target)
{
	put_str(r->jump, r->jump + sizeof r->jump - 1, target)[0] = 0;
}

/* iptables: chains MULTIHOME-PRE, -MARK (mangle) and -NAT (nat); see fw_iptc.c. */
static void plan_iptc(struct mh_plan *p)
{
	unsigned i, j;

	for (i = 0; i < p->nlinks; i++) {
		if (!p->links[i].up)
			continue;
		if (p->links[i].reply_via_link)
			fw_rule(p, MH_FW_INGRESS_CTMARK, (int)i, MH_IPT_PRE);
		fw_rule(p, MH_FW_INGRESS_END, (int)i, MH_IPT_PRE);
	}
	set_jump(fw_rule(p, MH_FW_TO_EGRESS, MH_NO_OWNER, MH_IPT_PRE), MH_IPT_MARK);
	fw_rule(p, MH_FW_RESTORE, MH_NO_OWNER, MH_IPT_MARK)->comment[0] = 0;
	fw_rule(p, MH_FW_STOP_IF_MARKED, MH_NO_OWNER, MH_IPT_MARK)->comment[0] = 0;
	for (i = 0; i < p->nlinks; i++) {
		const struct mh_plan_link *l = &p->links[i];
		if (!pins_apply(l))
			continue;
		for (j = 0; j < l->npins; j++) {
			fw_rule(p, l->up && !l->online ? MH_FW_PIN_DROP : MH_FW_PIN, (int)i,
				MH_IPT_MARK)->pin = (int)j;
			fw_rule(p, MH_FW_STOP_IF_MARKED, MH_NO_OWNER, MH_IPT_MARK)->comment[0] = 0;
		}
	}
	for (i = 0; i < p->nlinks; i++)
		if (p->links[i].up && p->links[i].nat != MH_NAT_OFF) {
			fw_rule(p, MH_FW_NAT, (int)i, MH_IPT_NAT);
			p->fw.want_nat = 1;
		}
	/* the jump into MULTIHOME-MARK carries no comment, as before */
	for (i = 0; i < p->fw.nrules; i++)
		if (p->fw.rules[i].kind == MH_FW_TO_EGRESS)
			p->fw.rules[i].comment[0] = 0;
}

static struct mh_nft_chain *nft_chain(struct mh_plan *p, const char *name, int owner)
{
	struct mh_nft_chain *c = &p->fw.chains[p->fw.nchains++];

	memset(c, 0, sizeof *c);
	put_str(c->name, c->name + sizeof c->name - 1, name)[0] = 0;
	c->owner = owner;
	return c;
}

static void nft_base(struct mh_plan *p, const char *name, const char *type, uint32_t hook,
		     int32_t prio)
{
	struct mh_nft_chain *c = nft_chain(p, name, MH_NO_OWNER);

	c->base = 1;
	c->type = type;
	c->hook = hook;
	c->prio = prio;
}

static struct mh_nft_elem *nft_elem(struct mh_plan *p, uint8_t set, const void *key, uint8_t klen,
				    int owner)
{
	struct mh_nft_elem *e = &p->fw.elems[p->fw.nelems++];

	memset(e, 0, sizeof *e);
	e->set = set;
	memcpy(e->key, key, klen);
	e->klen = klen;
	e->owner = owner;
	link_comment(e->comment, p->links[owner].name);
	return e;
}

/* in_|up_NAME_0xV_0xM_NAT: the NAT of the link too, so that the name alone
 * says everything the link's four map elements hold */
static void ingress_chain_name(const struct mh_plan_link *l, char *buf)
{
	char *p, *end = buf + MH_CHAIN_MAX - 1;

	chain_name(buf, MH_CHAIN_MAX, l->reply_via_link ? "in_" : "up_", l->name, l->mark,
		   l->mask, 0);
	p = buf + strlen(buf);
	if (l->nat == MH_NAT_SNAT) {
		char a[INET_ADDRSTRLEN] = "";
		inet_ntop(AF_INET, &l->local, a, sizeof a);
		p = put_str(p, end, "_s");
		p = put_str(p, end, a);
	} else {
		p = put_str(p, end, l->nat == MH_NAT_MASQUERADE ? "_m" : "_n");
	}
	*p = 0;
}

/* pin_NAME_HASH, or drop_NAME_HASH while a strict link is up but offline */
static void pin_chain_name(const struct mh_plan_link *l, char *buf)
{
	chain_name(buf, MH_CHAIN_MAX, l->up && !l->online ? "drop_" : "pin_", l->name, pins_hash(l),
		   0, 1);
}

static void plan_nft_link(struct mh_plan *p, unsigned i)
{
	const struct mh_plan_link *l = &p->links[i];
	char in[MH_CHAIN_MAX], rs[MH_CHAIN_MAX], pin[MH_CHAIN_MAX], key[IF_NAMESIZE] = "";
	struct mh_nft_elem *e;
	unsigned j;

	if (l->up) {
		ingress_chain_name(l, in);
		chain_name(rs, sizeof rs, "rs_", l->name, l->mark, l->mask, 0);
		memcpy(key, l->ifname, strnlen(l->ifname, sizeof key - 1));
		nft_chain(p, in, (int)i);
		if (l->reply_via_link)
			fw_rule(p, MH_FW_INGRESS_CTMARK, (int)i, in);
		nft_chain(p, rs, (int)i);
		fw_rule(p, MH_FW_RESTORE_CHAIN, (int)i, rs);
	}
	if (l->npins && pins_apply(l)) {
		int drop = l->up && !l->online;
		pin_chain_name(l, pin);
		nft_chain(p, pin, (int)i);
		for (j = 0; j < l->npins; j++)
			fw_rule(p, drop ? MH_FW_PIN_DROP : MH_FW_PIN, (int)i, pin)->pin = (int)j;
	}
	if (!l->up)
		return;         /* a strict link, down: its pins only */
	e = nft_elem(p, MH_SET_INGRESS, key, IF_NAMESIZE, (int)i);
	memcpy(e->chain, in, sizeof in);
	e = nft_elem(p, MH_SET_RESTORE, &l->mark, 4, (int)i);
	memcpy(e->chain, rs, sizeof rs);
	if (l->nat == MH_NAT_MASQUERADE)
		nft_elem(p, MH_SET_MASQ, key, IF_NAMESIZE, (int)i);
	else if (l->nat == MH_NAT_SNAT)
		nft_elem(p, MH_SET_SNAT, key, IF_NAMESIZE, (int)i)->addr = l->local;
}

/* nftables: table ip multihome; see fw_nft.c for the shape and why. */
static void plan_nft(struct mh_plan *p)
{
	unsigned i;
	char mc[MH_COMMENT_MAX];

	nft_chain(p, MH_NFT_EGRESS, MH_NO_OWNER);
	nft_base(p, "prerouting", "filter", NF_INET_PRE_ROUTING, -150);
	nft_base(p, "output", "route", NF_INET_LOCAL_OUT, -150);
	nft_base(p, "postrouting", "nat", NF_INET_POST_ROUTING, 100);
	mask_comment(mc, p->fw.ours);
	memcpy(fw_rule(p, MH_FW_MASK_CLEAR, MH_NO_OWNER, MH_NFT_EGRESS)->comment, mc, sizeof mc);
	memcpy(fw_rule(p, MH_FW_RESTORE, MH_NO_OWNER, MH_NFT_EGRESS)->comment, mc, sizeof mc);
	memcpy(fw_rule(p, MH_FW_STOP_IF_MARKED, MH_NO_OWNER, MH_NFT_EGRESS)->comment, mc, sizeof mc);
	memcpy(fw_rule(p, MH_FW_STOP_IF_PKT_MARKED, MH_NO_OWNER, MH_NFT_EGRESS)->comment, mc, sizeof mc);
	fw_rule(p, MH_FW_INGRESS_VMAP, MH_NO_OWNER, "prerouting");
	set_jump(fw_rule(p, MH_FW_TO_EGRESS, MH_NO_OWNER, "prerouting"), MH_NFT_EGRESS);
	set_jump(fw_rule(p, MH_FW_TO_EGRESS, MH_NO_OWNER, "output"), MH_NFT_EGRESS);
	fw_rule(p, MH_FW_MASQ_SET, MH_NO_OWNER, "postrouting");
	fw_rule(p, MH_FW_SNAT_MAP, MH_NO_OWNER, "postrouting");
	for (i = 0; i < p->nlinks; i++)
		if (mine(p, i))
			plan_nft_link(p, i);
	/* the pin jumps of chain egress, by link priority */
	for (i = 0; i < p->nlinks; i++) {
		const struct mh_plan_link *l = &p->links[i];
		char pin[MH_CHAIN_MAX];
		if (l->npins && pins_apply(l)) {
			pin_chain_name(l, pin);
			set_jump(fw_rule(p, MH_FW_PIN_JUMP, (int)i, MH_NFT_EGRESS), pin);
		}
	}
}

/* ---- the whole plan ---- */

/* The links' own objects in the plan: *K links with *PINS pins; *JUMPS
 * links (of all) whose pins apply. */
static void count_mine(const struct mh_plan *p, unsigned *k, unsigned *pins, unsigned *jumps)
{
	unsigned i;

	*k = *pins = *jumps = 0;
	for (i = 0; i < p->nlinks; i++) {
		const struct mh_plan_link *l = &p->links[i];
		*jumps += l->npins && pins_apply(l);
		if (!mine(p, i))
			continue;
		(*k)++;
		*pins += l->npins;
	}
}

/* Room for the routing objects, to need: malloc, not calloc (every element
 * is written whole before it is used). */
static int routing_alloc(struct mh_plan *p)
{
	struct mh_routing *rt = &p->rt;
	unsigned k, pins, jumps, n = p->nlinks + 1;

	count_mine(p, &k, &pins, &jumps);
	free(rt->rules);
	free(rt->routes);
	free(rt->hops);
	free(rt->nhs);
	free(rt->group);
	rt->rules = malloc((2 * k + pins + 1) * sizeof *rt->rules);
	rt->routes = malloc((2 * k + 1) * sizeof *rt->routes);
	rt->nhs = malloc((k + 1) * sizeof *rt->nhs);
	rt->hops = malloc(n * sizeof *rt->hops);        /* shared: every balanced link */
	rt->group = malloc(n * sizeof *rt->group);
	return rt->rules && rt->routes && rt->nhs && rt->hops && rt->group ? 0 : -1;
}

/* iptables: 2 per link + 3 + 2 per pin + 1 per link (always all links);
 * nft: 9 + 2 per own link + its pins + a jump per link with pins */
static int firewall_alloc(struct mh_plan *p)
{
	struct mh_firewall *f = &p->fw;
	unsigned k, pins, jumps, nrules;

	count_mine(p, &k, &pins, &jumps);
	nrules = f->backend == MH_FW_NFT ? 9 + 2 * k + pins + jumps
					 : 3 * p->nlinks + 13 + 2 * p->npins;
	free(f->rules);
	free(f->chains);
	free(f->elems);
	f->rules = malloc(nrules * sizeof *f->rules);
	f->chains = malloc((3 * k + 4) * sizeof *f->chains);
	f->elems = malloc((4 * k + 1) * sizeof *f->elems);
	return f->rules && f->chains && f->elems ? 0 : -1;
}

static void plan_link(struct mh_plan_link *pl, const struct mh_link *l, struct mh_pin *pins)
{
	const struct mh_config *c = &l->cfg;

	pl->up = l->up;
	pl->online = !l->up || l->online;
	pl->strict = mh_link_strict(l);
	memcpy(pl->name, c->name, sizeof pl->name);
	memcpy(pl->ifname, l->ifname, sizeof pl->ifname);
	pl->ifindex = l->ifindex;
	pl->local = l->local;
	pl->gateway = l->gateway;
	pl->table = c->table;
	pl->mark = c->mark;
	pl->mask = c->mask;
	pl->priority = c->priority;
	pl->weight = c->weight;
	pl->slot = l->slot;
	pl->nat = c->nat;
	pl->reply_via_link = c->reply_via_link;
	pl->npins = c->npins;
	memcpy(pins, c->pins, c->npins * sizeof *pins);
	pl->pins = pins;
}

int mh_plan_links(const struct mh_plan_input *in, struct mh_plan *p)
{
	const struct mh_link **up;
	unsigned i, n, npins = 0;

	memset(p, 0, sizeof *p);
	up = malloc((in->n ? in->n : 1) * sizeof *up);
	if (!up)
		return -1;
	n = order(in->links, in->n, up, mh_link_present);
	for (i = 0; i < n; i++)
		npins += up[i]->cfg.npins;
	p->links = malloc((n ? n : 1) * sizeof *p->links);
	p->pins = malloc((npins ? npins : 1) * sizeof *p->pins);
	if (!p->links || !p->pins) {
		free(up);
		mh_plan_free(p);
		return -1;
	}
	for (i = 0; i < n; i++) {
		plan_link(&p->links[i], up[i], p->pins + p->npins);
		p->npins += up[i]->cfg.npins;
	}
	p->nlinks = n;
	free(up);
	p->any_online = any_online(p);
	p->rt.nexthops = in->nexthops;
	p->fw.backend = in->backend;
	p->fw.ours = mh_mark_union(p->links, n);
	p->fw.wanted = n > 0;
	if (n && in->backend == MH_FW_NFT) {
		unsigned k;
		/* what the plan says is there, as a reader would say it */
		p->fw.table = 1;
		for (k = 0; k < MH_NSETS; k++)
			p->fw.sets[k] = 1;
	}
	return 0;
}

int mh_plan_routing(struct mh_plan *p)
{
	p->rt.nrules = p->rt.nroutes = p->rt.nhops = p->rt.nnhs = p->rt.ngroup = 0;
	p->rt.has_group = 0;
	if (routing_alloc(p) < 0)
		return -1;
	plan_rules(p);
	plan_routes(p);
	return 0;
}

int mh_plan_firewall(struct mh_plan *p)
{
	unsigned i;

	for (i = 0; i < p->fw.nrules; i++)
		free(p->fw.rules[i].text);      /* texts of an earlier round */
	p->fw.nrules = p->fw.nchains = p->fw.nelems = 0;
	p->fw.want_nat = 0;
	if (firewall_alloc(p) < 0)
		return -1;
	if (!p->nlinks)
		return 0;
	if (p->fw.backend == MH_FW_NFT)
		plan_nft(p);
	else
		plan_iptc(p);   /* iptables rebuilds a changed table whole: all of it, always */
	return 0;
}

int mh_plan_build(const struct mh_plan_input *in, struct mh_plan *p)
{
	if (mh_plan_links(in, p) < 0)
		return -1;
	if (mh_plan_routing(p) < 0 || mh_plan_firewall(p) < 0) {
		mh_plan_free(p);
		return -1;
	}
	return 0;
}

/* Do A (of plan PA) and B (of PB) have the same own objects? */
static int link_same(const struct mh_plan *pa, const struct mh_plan_link *a,
		     const struct mh_plan *pb, const struct mh_plan_link *b)
{
	return a->up == b->up && a->online == b->online && a->strict == b->strict &&
	       !strcmp(a->name, b->name) && !strcmp(a->ifname, b->ifname) &&
	       a->ifindex == b->ifindex && a->local == b->local && a->gateway == b->gateway &&
	       a->table == b->table && a->mark == b->mark && a->mask == b->mask &&
	       a->priority == b->priority && a->weight == b->weight && a->slot == b->slot &&
	       a->nat == b->nat && a->reply_via_link == b->reply_via_link && a->npins == b->npins &&
	       !memcmp(a->pins, b->pins, a->npins * sizeof *a->pins) &&
	       balanced(pa, a) == balanced(pb, b);
}

static int plan_link_order(const struct mh_plan_link *a, const struct mh_plan_link *b)
{
	if (a->priority != b->priority)
		return a->priority < b->priority ? -1 : 1;
	return strcmp(a->name, b->name);
}

int mh_plan_select(struct mh_plan *before, struct mh_plan *after, int touched)
{
	unsigned i = 0, j = 0;

	free(before->mine);
	free(after->mine);
	before->mine = calloc(before->nlinks + 1, 1);
	after->mine = calloc(after->nlinks + 1, 1);
	if (!before->mine || !after->mine)
		return -1;
	/* both in (priority, name) order: a merge pairs the links of one name */
	while (i < before->nlinks || j < after->nlinks) {
		int c = i == before->nlinks ? 1 : j == after->nlinks ? -1 :
			plan_link_order(&before->links[i], &after->links[j]);
		if (c < 0) {
			before->mine[i++] = 1;
		} else if (c > 0) {
			after->mine[j++] = 1;
		} else {
			if ((int)j == touched ||
			    !link_same(before, &before->links[i], after, &after->links[j]))
				before->mine[i] = after->mine[j] = 1;
			i++;
			j++;
		}
	}
	return 0;
}

int mh_plan_whole(struct mh_plan *p)
{
	if (!p->mine)
		return 0;
	free(p->mine);
	p->mine = NULL;
	return mh_plan_routing(p) < 0 || mh_plan_firewall(p) < 0 ? -1 : 0;
}

void mh_routing_free(struct mh_routing *r)
{
	free(r->rules);
	free(r->routes);
	free(r->hops);
	free(r->nhs);
	free(r->group);
	memset(r, 0, sizeof *r);
}

void mh_firewall_free(struct mh_firewall *f)
{
	unsigned i;

	for (i = 0; f->rules && i < f->nrules; i++)
		free(f->rules[i].text);
	free(f->rules);
	free(f->chains);
	free(f->elems);
	memset(f, 0, sizeof *f);
}

void mh_plan_free(struct mh_plan *p)
{
	free(p->mine);
	free(p->links);
	free(p->pins);
	mh_routing_free(&p->rt);
	mh_firewall_free(&p->fw);
	memset(p, 0, sizeof *p);
}
