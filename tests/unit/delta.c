/* Unit tests of the event's plans of what it changes (no root, no kernel).
 *
 * An event plans only the links it changes (mh_plan_select): for events of
 * every kind, the netlink batch and the nftables batch built from those
 * plans must be byte for byte the batches built from the whole plans.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "unit.h"

#define NLINKS 6

static void set(struct mh_link *l, const char *key, const char *value)
{
	char err[MH_ERR_MAX];

	if (mh_config_set(&l->cfg, key, value, NULL, err, sizeof err) < 0)
		fprintf(stderr, "delta.c: %s %s: %s\n", key, value, err);
}

/* Six links: pins, weight 0, a strict one, one tracked, one down. */
static void links_init(struct mh_link *l)
{
	static const char *const weight[NLINKS] = { "2", "1", "0", "1", "1", "1" };
	unsigned i;

	memset(l, 0, NLINKS * sizeof *l);
	for (i = 0; i < NLINKS; i++) {
		char v[32];
		mh_config_init(&l[i].cfg);
		snprintf(v, sizeof v, "l%u", i);
		set(&l[i], "name", v);
		snprintf(v, sizeof v, "%u", 101 + i);
		set(&l[i], "table", v);
		set(&l[i], "priority", v);
		snprintf(v, sizeof v, "0x%x", 1u << i);
		set(&l[i], "mark", v);
		set(&l[i], "weight", weight[i]);
		snprintf(l[i].ifname, sizeof l[i].ifname, "ppp%u", i);
		l[i].ifindex = 10 + (int)i;
		l[i].local = htonl(0x64400002u + (i << 8));     /* 100.64.i.2 */
		l[i].slot = i;
		l[i].up = i != 5;
		l[i].online = 1;
	}
	set(&l[0], "pin", "tcp port 25");
	set(&l[3], "pin", "198.51.100.0/24");
	set(&l[3], "pin-fallback", "no");
	set(&l[4], "pin", "udp 203.0.113.9 port 53");
	set(&l[5], "nat", "snat");
}

struct event {
	const char *what;
	const char *touched;    /* the link coming up, or NULL */
	void (*change)(struct mh_link *l, unsigned *n);
};

static void up5(struct mh_link *l, unsigned *n) { l[5].up = 1; l[5].ifindex = 40; (void)n; }
static void down1(struct mh_link *l, unsigned *n) { l[1].up = 0; (void)n; }
static void offline4(struct mh_link *l, unsigned *n) { l[4].online = 0; (void)n; }
static void all_offline(struct mh_link *l, unsigned *n)
{
	l[0].online = l[1].online = l[3].online = l[4].online = 0;
	(void)n;
}
static void down3(struct mh_link *l, unsigned *n) { l[3].up = 0; (void)n; }
static void forget5(struct mh_link *l, unsigned *n) { (*n)--; (void)l; }
static void reconnect0(struct mh_link *l, unsigned *n) { (void)l; (void)n; }
static void reprio1(struct mh_link *l, unsigned *n) { l[1].cfg.priority = 150; (void)n; }
static void newaddr0(struct mh_link *l, unsigned *n) { l[0].local ^= htonl(0x70); (void)n; }
static void prune12(struct mh_link *l, unsigned *n) { l[1].up = l[2].up = 0; (void)n; }
static void newmask2(struct mh_link *l, unsigned *n) { l[2].cfg.mark = l[2].cfg.mask = 0x100; (void)n; }

static const struct event events[] = {
	{ "l5 up", "l5", up5 },
	{ "l1 down", NULL, down1 },
	{ "l4 offline", NULL, offline4 },
	{ "every weighted link offline", NULL, all_offline },
	{ "strict l3 down (its refusals stay)", NULL, down3 },
	{ "down l5 forgotten", NULL, forget5 },
	{ "l0 up again, nothing changed", "l0", reconnect0 },
	{ "l1 up again with another priority", "l1", reprio1 },
	{ "l0 up again with another address", "l0", newaddr0 },
	{ "l1 and l2 pruned", NULL, prune12 },
	{ "l2 with another mark (the mark union changes)", "l2", newmask2 },
};

static int plan(const struct mh_link *l, unsigned n, int nexthops, enum mh_fw_backend be,
		int whole, struct mh_plan *p)
{
	struct mh_plan_input in = { .links = l, .n = n, .nexthops = nexthops, .backend = be };

	return whole ? mh_plan_build(&in, p) : mh_plan_links(&in, p);
}

static int index_of(const struct mh_plan *p, const char *name)
{
	unsigned i;

	for (i = 0; name && i < p->nlinks; i++)
		if (!strcmp(p->links[i].name, name))
			return (int)i;
	return -1;
}

/* The netlink batch of the event from A to B (built dry). */
static void rt_batch(struct mh_plan *b, struct mh_plan *a, int touched, struct mh_nl_batch *out)
{
	struct mh_rt_diff_args args = { .delta = 1, .touched = touched };
	struct mh_rt_ops ops = { 0 };

	mh_rt_diff(&b->rt, &a->rt, &args, &ops);
	mh_nl_batch_init(out, NULL);
	mh_rt_build(out, &b->rt, &ops, 1);
	mh_rt_ops_free(&ops);
}

/* One line per firewall operation, for the cases the batch needs the kernel. */
static void fw_ops_text(struct mh_plan *b, struct mh_plan *a, char *out, size_t len)
{
	struct mh_fw_ops ops = { 0 };
	size_t o = 0;
	unsigned i;

	mh_fw_nft_diff(b, &a->fw, 0, &ops);
	out[0] = 0;
	for (i = 0; i < ops.n && o < len; i++) {
		const struct mh_fw_op *x = &ops.v[i];
		o += (size_t)snprintf(out + o, len - o, "%u %u %d %s %s %s %s|", x->action, x->kind,
				      x->owner, x->chain ? x->chain->name : "-",
				      x->elem ? x->elem->key : "-", x->rule ? x->rule->chain : "-",
				      x->rule ? x->rule->jump : "-");
	}
	mh_fw_ops_free(&ops);
}

/* The event E through whole plans and through plans of what it changes. */
static int same_batches(const struct event *e, int nexthops, enum mh_fw_backend be, char *why,
			size_t len)
{
	struct mh_link before[NLINKS], after[NLINKS];
	unsigned nb = NLINKS, na = NLINKS;
	struct mh_plan wa, wb, pa, pb;
	struct mh_nl_batch w, p;
	char *wn = NULL, *pn = NULL, wt[4096], pt[4096];
	size_t wl = 0, pl = 0;
	int ok, tw, tp, wrc, prc;

	links_init(before);
	memcpy(after, before, sizeof after);
	e->change(after, &na);
	plan(before, nb, nexthops, be, 1, &wa);
	plan(after, na, nexthops, be, 1, &wb);
	plan(before, nb, nexthops, be, 0, &pa);
	plan(after, na, nexthops, be, 0, &pb);
	tw = index_of(&wb, e->touched);
	tp = index_of(&pb, e->touched);
	mh_plan_select(&pa, &pb, tp);
	mh_plan_routing(&pa);
	mh_plan_routing(&pb);
	mh_plan_firewall(&pa);
	mh_plan_firewall(&pb);
	rt_batch(&wb, &wa, tw, &w);
	rt_batch(&pb, &pa, tp, &p);
	ok = w.used == p.used && !memcmp(w.buf, p.buf, w.used);
	if (!ok)
		snprintf(why, len, "netlink: %zu bytes (%u messages) whole, %zu (%u) planned in part",
			 w.used, w.n, p.used, p.n);
	if (ok && be == MH_FW_NFT) {
		wrc = mh_fw_nft_delta_batch(&wb, &wa, &wn, &wl);
		prc = mh_fw_nft_delta_batch(&pb, &pa, &pn, &pl);
		if (wrc < 0 || prc < 0) {       /* chain egress changes: compare the operations */
			fw_ops_text(&wb, &wa, wt, sizeof wt);
			fw_ops_text(&pb, &pa, pt, sizeof pt);
			ok = wrc == prc && !strcmp(wt, pt);
		} else {
			ok = wl == pl && !memcmp(wn, pn, wl);
		}
		if (!ok)
			snprintf(why, len, "nftables: %zu bytes whole, %zu planned in part", wl, pl);
	}
	free(wn);
	free(pn);
	mh_nl_batch_free(&w);
	mh_nl_batch_free(&p);
	mh_plan_free(&wa);
	mh_plan_free(&wb);
	mh_plan_free(&pa);
	mh_plan_free(&pb);
	return ok;
}

/* How much of the plan an event of one link holds (6 links, 5 in the plan). */
static void test_partial_size(void)
{
	struct mh_link before[NLINKS], after[NLINKS];
	unsigned na = NLINKS, own = 0, i;
	struct mh_plan a, b;

	links_init(before);
	memcpy(after, before, sizeof after);
	down1(after, &na);
	plan(before, NLINKS, 1, MH_FW_NFT, 0, &a);
	plan(after, na, 1, MH_FW_NFT, 0, &b);
	mh_plan_select(&a, &b, -1);
	for (i = 0; i < a.nlinks; i++)
		own += a.mine[i];
	mh_plan_routing(&a);
	mh_plan_firewall(&a);
	report(own == 1 && a.nlinks == 5 && a.rt.nnhs == 1 && a.rt.ngroup == 4 && a.fw.nelems == 3,
	       "plan of what l1's down event changes: l1's own objects only (%u of %u links, "
	       "%u nexthop, %u elements), the whole group (%u members: l2 has weight 0)", own, a.nlinks, a.rt.nnhs,
	       a.fw.nelems, a.rt.ngroup);
	mh_plan_free(&a);
	mh_plan_free(&b);
}

void test_delta(void)
{
	static const enum mh_fw_backend be[2] = { MH_FW_NFT, MH_FW_IPTABLES };
	unsigned i, k, nh;

	test_partial_size();
	for (i = 0; i < sizeof events / sizeof *events; i++)
		for (k = 0; k < 2; k++)
			for (nh = 0; nh < 2; nh++) {
				char why[160] = "";
				report(same_batches(&events[i], (int)nh, be[k], why, sizeof why),
				       "plans of what the event changes, %s (%s, %s): the same batches "
				       "as the whole plans%s%s", events[i].what, mh_fw_backend_name(be[k]),
				       nh ? "nexthop group" : "multipath route", why[0] ? ": " : "", why);
			}
}
