/* Routing (rtnetlink): read what of ours the kernel holds, diff it against
 * the plan, send the difference as one batch.
 *
 * Everything multihome installs carries MH_RT_PROTO, so the readers keep
 * only that; the same struct mh_routing holds the plan and what was read,
 * and one diff serves the full path (the plan against the kernel), the
 * incremental path (the plan after an event against the plan before it)
 * and `multihomectl status` (the full path, not sent).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <net/if.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/nexthop.h>
#include <linux/rtnetlink.h>

#include "internal.h"

/* ---- readers ---- */

struct rt_read {
	struct mh_routing *rt;
	unsigned cap_rules, cap_routes, cap_hops, cap_nhs, cap_group;
	int nomem;
	int requests;           /* requests too (RTM_DEL*), not only answers */
};

/* An answer of TYPE, or (reading requests) its delete. */
static int wanted_type(const struct rt_read *rd, uint16_t got, uint16_t type)
{
	return got == type || (rd->requests && got == type + 1);
}

#define GROW(rd, arr, n, cap) \
	((n) < (cap) || grow((void **)&(arr), &(cap), sizeof *(arr)) == 0 ? 0 : ((rd)->nomem = 1, -1))

static int grow(void **arr, unsigned *cap, size_t size)
{
	unsigned c = *cap ? 2 * *cap : 16;
	void *p = realloc(*arr, c * size);

	if (!p)
		return -1;
	*arr = p;
	*cap = c;
	return 0;
}

static const enum mnl_attr_data_type rule_policy[FRA_MAX + 1] = {
	[FRA_PROTOCOL] = MNL_TYPE_U8, [FRA_PRIORITY] = MNL_TYPE_U32, [FRA_TABLE] = MNL_TYPE_U32,
	[FRA_FWMARK] = MNL_TYPE_U32, [FRA_FWMASK] = MNL_TYPE_U32, [FRA_SRC] = MNL_TYPE_U32,
	[FRA_DST] = MNL_TYPE_U32, [FRA_SUPPRESS_PREFIXLEN] = MNL_TYPE_U32,
	[FRA_IP_PROTO] = MNL_TYPE_U8, [FRA_DPORT_RANGE] = MNL_TYPE_BINARY,
};

static int rule_cb(const struct nlmsghdr *h, void *data)
{
	struct rt_read *rd = data;
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(h);
	const struct nlattr *tb[FRA_MAX + 1];
	struct mh_rule r = { .owner = MH_NO_OWNER };

	if (!wanted_type(rd, h->nlmsg_type, RTM_NEWRULE))
		return MNL_CB_OK;
	if (mh_nl_attrs(h, sizeof *frh, rule_policy, FRA_MAX, tb) < 0)
		return MNL_CB_ERROR;
	if (frh->family != AF_INET || !tb[FRA_PROTOCOL] ||
	    mnl_attr_get_u8(tb[FRA_PROTOCOL]) != MH_RT_PROTO)
		return MNL_CB_OK;
	r.table = tb[FRA_TABLE] ? mnl_attr_get_u32(tb[FRA_TABLE]) : frh->table;
	r.prio = tb[FRA_PRIORITY] ? mnl_attr_get_u32(tb[FRA_PRIORITY]) : 0;
	r.unreachable = frh->action == FR_ACT_UNREACHABLE;
	if (r.unreachable)
		r.table = 0;
	r.src_len = frh->src_len;
	r.dst_len = frh->dst_len;
	if (tb[FRA_SRC])
		r.src = mnl_attr_get_u32(tb[FRA_SRC]);
	if (tb[FRA_DST])
		r.dst = mnl_attr_get_u32(tb[FRA_DST]);
	/* the kernel omits a zero mark, and an all-ones mask with a mark */
	if (tb[FRA_FWMARK])
		r.mark = mnl_attr_get_u32(tb[FRA_FWMARK]);
	if (tb[FRA_FWMASK])
		r.mask = mnl_attr_get_u32(tb[FRA_FWMASK]);
	else if (tb[FRA_FWMARK])
		r.mask = 0xffffffffu;
	if (tb[FRA_IP_PROTO])
		r.ipproto = mnl_attr_get_u8(tb[FRA_IP_PROTO]);
	if (tb[FRA_DPORT_RANGE]) {
		struct fib_rule_port_range pr;
		if (mnl_attr_get_payload_len(tb[FRA_DPORT_RANGE]) != sizeof pr)
			return MNL_CB_ERROR;
		memcpy(&pr, mnl_attr_get_payload(tb[FRA_DPORT_RANGE]), sizeof pr);
		r.dport_lo = pr.start;
		r.dport_hi = pr.end;
	}
	r.suppress = tb[FRA_SUPPRESS_PREFIXLEN] && mnl_attr_get_u32(tb[FRA_SUPPRESS_PREFIXLEN]) == 0;
	if (GROW(rd, rd->rt->rules, rd->rt->nrules, rd->cap_rules) < 0)
		return MNL_CB_ERROR;
	rd->rt->rules[rd->rt->nrules++] = r;
	return MNL_CB_OK;
}

/* The hops of an RTA_MULTIPATH attribute, each length checked. */
static int read_hops(struct rt_read *rd, const struct nlattr *mp, struct mh_route *r)
{
	const struct rtnexthop *nh = mnl_attr_get_payload(mp);
	int left = (int)mnl_attr_get_payload_len(mp);

	r->hop0 = rd->rt->nhops;
	while (left >= (int)sizeof *nh && nh->rtnh_len >= sizeof *nh && nh->rtnh_len <= left) {
		const struct nlattr *a = (const struct nlattr *)RTNH_DATA(nh);
		int alen = nh->rtnh_len - (int)RTNH_ALIGN(sizeof *nh);
		struct mh_hop hop = { .oif = nh->rtnh_ifindex, .weight = nh->rtnh_hops + 1u };

		for (; mnl_attr_ok(a, alen); alen -= (int)MNL_ALIGN(a->nla_len), a = mnl_attr_next(a))
			if (mnl_attr_get_type(a) == RTA_GATEWAY &&
			    mnl_attr_validate(a, MNL_TYPE_U32) == 0)
				hop.gw = mnl_attr_get_u32(a);
		if (GROW(rd, rd->rt->hops, rd->rt->nhops, rd->cap_hops) < 0)
			return -1;
		rd->rt->hops[rd->rt->nhops++] = hop;
		r->nhops++;
		left -= (int)RTNH_ALIGN(nh->rtnh_len);
		nh = RTNH_NEXT(nh);
	}
	return 0;
}

static const enum mnl_attr_data_type route_policy[RTA_MAX + 1] = {
	[RTA_TABLE] = MNL_TYPE_U32, [RTA_OIF] = MNL_TYPE_U32, [RTA_GATEWAY] = MNL_TYPE_U32,
	[RTA_NH_ID] = MNL_TYPE_U32, [RTA_PRIORITY] = MNL_TYPE_U32, [RTA_MULTIPATH] = MNL_TYPE_BINARY,
};

static int route_cb(const struct nlmsghdr *h, void *data)
{
	struct rt_read *rd = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(h);
	const struct nlattr *tb[RTA_MAX + 1];
	struct mh_route r = { .owner = MH_NO_OWNER };

	if (!wanted_type(rd, h->nlmsg_type, RTM_NEWROUTE))
		return MNL_CB_OK;
	if (mh_nl_attrs(h, sizeof *rtm, route_policy, RTA_MAX, tb) < 0)
		return MNL_CB_ERROR;
	if (rtm->rtm_family != AF_INET || rtm->rtm_dst_len || rtm->rtm_protocol != MH_RT_PROTO)
		return MNL_CB_OK;
	r.table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	r.type = rtm->rtm_type;
	r.metric = tb[RTA_PRIORITY] ? mnl_attr_get_u32(tb[RTA_PRIORITY]) : 0;
	r.nhid = tb[RTA_NH_ID] ? mnl_attr_get_u32(tb[RTA_NH_ID]) : 0;
	/* a route over a nexthop object is dumped with the object's hops too:
	 * the object is the truth, read on its own */
	if (!r.nhid) {
		r.oif = tb[RTA_OIF] ? (int)mnl_attr_get_u32(tb[RTA_OIF]) : 0;
		r.gw = tb[RTA_GATEWAY] ? mnl_attr_get_u32(tb[RTA_GATEWAY]) : 0;
		if (tb[RTA_MULTIPATH] && read_hops(rd, tb[RTA_MULTIPATH], &r) < 0)
			return MNL_CB_ERROR;
	}
	if (GROW(rd, rd->rt->routes, rd->rt->nroutes, rd->cap_routes) < 0)
		return MNL_CB_ERROR;
	rd->rt->routes[rd->rt->nroutes++] = r;
	return MNL_CB_OK;
}

static int read_group(struct rt_read *rd, const struct nlattr *a)
{
	const struct nexthop_grp *g = mnl_attr_get_payload(a);
	size_t len = mnl_attr_get_payload_len(a), i;

	if (len % sizeof *g)
		return -1;      /* not an array of struct nexthop_grp */
	rd->rt->ngroup = 0;
	for (i = 0; i < len / sizeof *g; i++) {
		if (GROW(rd, rd->rt->group, rd->rt->ngroup, rd->cap_group) < 0)
			return -1;
		rd->rt->group[rd->rt->ngroup++] = (struct mh_member){ .id = g[i].id,
								      .weight = g[i].weight + 1u };
	}
	rd->rt->has_group = 1;
	return 0;
}

static const enum mnl_attr_data_type nh_policy[NHA_MAX + 1] = {
	[NHA_ID] = MNL_TYPE_U32, [NHA_OIF] = MNL_TYPE_U32, [NHA_GATEWAY] = MNL_TYPE_BINARY,
	[NHA_GROUP] = MNL_TYPE_BINARY,
};

static int nh_cb(const struct nlmsghdr *h, void *data)
{
	struct rt_read *rd = data;
	const struct nhmsg *nhm = mnl_nlmsg_get_payload(h);
	const struct nlattr *tb[NHA_MAX + 1];
	struct mh_nexthop n = { .owner = MH_NO_OWNER };

	if (!wanted_type(rd, h->nlmsg_type, RTM_NEWNEXTHOP))
		return MNL_CB_OK;
	if (mh_nl_attrs(h, sizeof *nhm, nh_policy, NHA_MAX, tb) < 0 || !tb[NHA_ID])
		return MNL_CB_ERROR;
	/* a delete request names the id only */
	if (nhm->nh_protocol != MH_RT_PROTO && h->nlmsg_type == RTM_NEWNEXTHOP)
		return MNL_CB_OK;
	n.id = mnl_attr_get_u32(tb[NHA_ID]);
	n.oif = tb[NHA_OIF] ? (int)mnl_attr_get_u32(tb[NHA_OIF]) : 0;
	if (tb[NHA_GATEWAY] && mnl_attr_get_payload_len(tb[NHA_GATEWAY]) == 4)
		memcpy(&n.gw, mnl_attr_get_payload(tb[NHA_GATEWAY]), 4);
	if (n.id == MH_NH_GROUP_ID && tb[NHA_GROUP])
		return read_group(rd, tb[NHA_GROUP]) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
	if (GROW(rd, rd->rt->nhs, rd->rt->nnhs, rd->cap_nhs) < 0)
		return MNL_CB_ERROR;
	rd->rt->nhs[rd->rt->nnhs++] = n;
	return MNL_CB_OK;
}

static void reset_rules(void *d) { ((struct rt_read *)d)->rt->nrules = 0; }
static void reset_routes(void *d)
{
	((struct rt_read *)d)->rt->nroutes = 0;
	((struct rt_read *)d)->rt->nhops = 0;
}
static void reset_nhs(void *d)
{
	struct rt_read *rd = d;

	rd->rt->nnhs = 0;
	rd->rt->ngroup = 0;
	rd->rt->has_group = 0;
}

static int any_cb(const struct nlmsghdr *h, void *data)
{
	switch (h->nlmsg_type) {
	case RTM_NEWRULE: case RTM_DELRULE: return rule_cb(h, data);
	case RTM_NEWROUTE: case RTM_DELROUTE: return route_cb(h, data);
	case RTM_NEWNEXTHOP: case RTM_DELNEXTHOP: return nh_cb(h, data);
	default: return MNL_CB_OK;
	}
}

int mh_rt_parse(const struct nlmsghdr *h, int requests, struct mh_routing *rt)
{
	struct rt_read rd = { .rt = rt, .cap_rules = rt->nrules, .cap_routes = rt->nroutes,
			      .cap_hops = rt->nhops, .cap_nhs = rt->nnhs, .cap_group = rt->ngroup,
			      .requests = requests };
	int rc = any_cb(h, &rd);

	return rc == MNL_CB_ERROR || rd.nomem ? -1 : 0;
}

static int dump(struct mh_nl *nl, uint16_t type, const void *hdr, size_t hlen, mnl_cb_t cb,
		struct rt_read *rd, void (*reset)(void *))
{
	if (mh_nl_dump(nl, type, hdr, hlen, cb, rd, reset) < 0)
		return -1;
	if (rd->nomem) {
		errno = ENOMEM;
		return -1;
	}
	return 0;
}

int mh_rt_read(struct mh_nl *nl, int no_nexthops, struct mh_routing *rt, char *err, size_t len)
{
	struct rt_read rd = { .rt = rt };
	struct fib_rule_hdr frh = { .family = AF_INET };
	/* strict checking lets the kernel filter by protocol (route_cb filters again) */
	struct rtmsg rtm = { .rtm_family = AF_INET, .rtm_protocol = MH_RT_PROTO };
	struct nhmsg nhm = { .nh_family = AF_UNSPEC };
	const char *what;

	memset(rt, 0, sizeof *rt);
	if ((what = "rules", dump(nl, RTM_GETRULE, &frh, sizeof frh, rule_cb, &rd, reset_rules)) < 0 ||
	    (what = "routes", dump(nl, RTM_GETROUTE, &rtm, sizeof rtm, route_cb, &rd, reset_routes)) < 0)
		goto fail;
	rt->nexthops = !no_nexthops;
	if (no_nexthops)
		return 0;
	if (dump(nl, RTM_GETNEXTHOP, &nhm, sizeof nhm, nh_cb, &rd, reset_nhs) < 0) {
		if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOENT) {
			what = "nexthops";
			goto fail;
		}
		rt->nexthops = 0;       /* a kernel before 5.3 */
	}
	return 0;
fail:
	snprintf(err, len, "reading %s: %s", what, strerror(errno));
	mh_routing_free(rt);
	return -1;
}

/* ---- the diff ---- */

#define CMP(f) if (a->f != b->f) return a->f < b->f ? -1 : 1
static int rule_cmp(const void *x, const void *y)
{
	const struct mh_rule *a = x, *b = y;

	CMP(prio); CMP(table); CMP(mark); CMP(mask); CMP(src); CMP(src_len); CMP(suppress);
	CMP(dst); CMP(dst_len); CMP(ipproto); CMP(dport_lo); CMP(dport_hi); CMP(unreachable);
	return 0;
}

/* routes are one per (table, metric, type): that is what a replace replaces */
static int route_key_cmp(const void *x, const void *y)
{
	const struct mh_route *a = x, *b = y;

	CMP(table); CMP(metric); CMP(type);
	return 0;
}

static int nh_cmp(const void *x, const void *y)
{
	const struct mh_nexthop *a = x, *b = y;

	CMP(id);
	return 0;
}
#undef CMP

static int route_same(const struct mh_routing *wa, const struct mh_route *a,
		      const struct mh_routing *wb, const struct mh_route *b)
{
	unsigned i;

	if (a->oif != b->oif || a->gw != b->gw || a->nhid != b->nhid || a->nhops != b->nhops)
		return 0;
	for (i = 0; i < a->nhops; i++) {
		const struct mh_hop *x = &wa->hops[a->hop0 + i], *y = &wb->hops[b->hop0 + i];
		if (x->oif != y->oif || x->gw != y->gw || x->weight != y->weight)
			return 0;
	}
	return 1;
}

/* The routes of HAVE (sorted) with R's key: [*lo, return). */
static unsigned key_range(const struct mh_routing *have, const struct mh_route *r, unsigned *lo)
{
	unsigned l = 0, h = have->nroutes;

	while (l < h) {
		unsigned m = (l + h) / 2;
		if (route_key_cmp(&have->routes[m], r) < 0)
			l = m + 1;
		else
			h = m;
	}
	*lo = l;
	while (h < have->nroutes && !route_key_cmp(&have->routes[h], r))
		h++;
	return h < l ? l : h;
}

/* The first route of HAVE with R's key that equals R, or NULL; *ANY: one with the key. */
static const struct mh_route *route_find(const struct mh_routing *want, const struct mh_route *r,
					 const struct mh_routing *have, int *any)
{
	unsigned lo, hi = key_range(have, r, &lo), i;

	*any = hi > lo;
	for (i = lo; i < hi; i++)
		if (route_same(want, r, have, &have->routes[i]))
			return &have->routes[i];
	return NULL;
}

static int group_same(const struct mh_routing *a, const struct mh_routing *b)
{
	unsigned i;

	if (!a->has_group || !b->has_group || a->ngroup != b->ngroup)
		return 0;
	for (i = 0; i < a->ngroup; i++)
		if (a->group[i].id != b->group[i].id || a->group[i].weight != b->group[i].weight)
			return 0;
	return 1;
}

static int op_add(struct mh_rt_ops *ops, uint8_t action, uint8_t kind, const void *obj,
		  int owner)
{
	if (ops->n == ops->cap) {
		unsigned cap = ops->cap ? 2 * ops->cap : 32;
		struct mh_rt_op *v = realloc(ops->v, cap * sizeof *v);
		if (!v)
			return -1;
		ops->v = v;
		ops->cap = cap;
	}
	ops->v[ops->n++] = (struct mh_rt_op){ .action = action, .kind = kind, .obj = obj,
					      .owner = owner };
	return 0;
}

static int member_cmp(const void *a, const void *b)
{
	const struct mh_member *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* qsort and bsearch want a base even for no elements; what is in order
 * already (a plan's group, the kernel's answer to it) is only looked at */
static void sort(void *base, size_t n, size_t size, int (*cmp)(const void *, const void *))
{
	const char *p = base;
	size_t i;

	for (i = 1; i < n && cmp(p + (i - 1) * size, p + i * size) <= 0; i++)
		;
	if (i < n)
		qsort(base, n, size, cmp);
}

static void *find(const void *key, const void *base, size_t n, size_t size,
		  int (*cmp)(const void *, const void *))
{
	return n ? bsearch(key, base, n, size, cmp) : NULL;
}

static void sort_routing(struct mh_routing *r)
{
	sort(r->rules, r->nrules, sizeof *r->rules, rule_cmp);
	sort(r->routes, r->nroutes, sizeof *r->routes, route_key_cmp);
	sort(r->nhs, r->nnhs, sizeof *r->nhs, nh_cmp);
	sort(r->group, r->ngroup, sizeof *r->group, member_cmp);
}

static int is_main_default(const struct mh_route *r)
{
	return r->table == RT_TABLE_MAIN && r->type == RTN_UNICAST && r->metric == 0;
}

/* 1. the links' tables: what is missing or different (the link coming up:
 * always, the kernel flushes a device's routes when it loses its address) */
static int diff_tables(const struct mh_routing *want, const struct mh_routing *have,
		       const struct mh_rt_diff_args *a, struct mh_rt_ops *ops)
{
	unsigned i;

	for (i = 0; i < want->nroutes; i++) {
		const struct mh_route *w = &want->routes[i];
		int any;
		if (is_main_default(w))
			continue;
		if (route_find(want, w, have, &any) && !(a->touched >= 0 && w->owner == a->touched))
			continue;
		if (op_add(ops, any ? MH_OP_REPLACE : MH_OP_ADD, MH_RT_ROUTE, w, w->owner) < 0)
			return -1;
	}
	return 0;
}

/* The kernel takes a deleted nexthop out of its group by itself, without
 * building the group anew as a replace does (that costs about 1.5 us per
 * member, kernel 6.18): is WANT's group HAVE's but for members whose
 * nexthops this diff deletes? */
static int group_shrinks_to(const struct mh_routing *want, const struct mh_routing *have)
{
	unsigned i, k = 0;

	if (!want->ngroup || !have->has_group)
		return 0;
	for (i = 0; i < have->ngroup; i++) {
		const struct mh_member *m = &have->group[i];
		struct mh_nexthop key = { .id = m->id };
		if (find(&key, have->nhs, have->nnhs, sizeof key, nh_cmp) &&
		    !find(&key, want->nhs, want->nnhs, sizeof key, nh_cmp))
			continue;       /* its nexthop is deleted below: the member goes with it */
		if (k >= want->ngroup || want->group[k].id != m->id || want->group[k].weight != m->weight)
			return 0;
		k++;
	}
	return k == want->ngroup;
}

/* 2. nexthops and the group; *CHANGED: the group was (re)sent */
static int diff_nexthops(const struct mh_routing *want, const struct mh_routing *have,
			 const struct mh_rt_diff_args *a, struct mh_rt_ops *ops, int *changed)
{
	unsigned i;
	int members = 0;

	for (i = 0; i < want->nnhs; i++) {
		const struct mh_nexthop *w = &want->nhs[i];
		const struct mh_nexthop *h = find(w, have->nhs, have->nnhs, sizeof *w, nh_cmp);
		if (h && h->oif == w->oif && h->gw == w->gw && !(a->touched >= 0 && w->owner == a->touched))
			continue;
		if (op_add(ops, h ? MH_OP_REPLACE : MH_OP_ADD, MH_RT_NEXTHOP, w, w->owner) < 0)
			return -1;
		members = 1;
	}
	*changed = want->ngroup && (members || (!group_same(want, have) &&
						  !group_shrinks_to(want, have)));
	if (*changed)
		return op_add(ops, have->has_group ? MH_OP_REPLACE : MH_OP_ADD, MH_RT_GROUP, want,
			      MH_NO_OWNER);
	return 0;
}

/* 3. main's default, after what it uses.  With the group it is created once
 * (refusing a foreign default route of the same metric) and then left alone;
 * on the incremental path it is made sure of whenever the group changed (the
 * kernel drops it with an emptied group).  Without nexthop objects it is the
 * multipath route itself. */
static int diff_main(const struct mh_routing *want, const struct mh_routing *have,
		     const struct mh_rt_diff_args *a, int group_changed, struct mh_rt_ops *ops)
{
	unsigned i;

	for (i = 0; i < want->nroutes; i++) {
		const struct mh_route *w = &want->routes[i];
		const struct mh_route *same;
		int any;
		if (!is_main_default(w))
			continue;
		same = route_find(want, w, have, &any);
		if (same && !(a->delta && group_changed && w->nhid))
			continue;
		if (op_add(ops, any && !same ? MH_OP_REPLACE : MH_OP_ADD, MH_RT_ROUTE, w,
			   MH_NO_OWNER) < 0)
			return -1;
		ops->v[ops->n - 1].exists_ok = same != NULL;
	}
	return 0;
}

static int diff_rules(const struct mh_routing *want, const struct mh_routing *have,
		      struct mh_rt_ops *ops)
{
	unsigned i, j;

	for (i = 0, j = 0; i < want->nrules; i++) {
		while (j < have->nrules && rule_cmp(&have->rules[j], &want->rules[i]) < 0)
			j++;
		if ((j >= have->nrules || rule_cmp(&have->rules[j], &want->rules[i])) &&
		    op_add(ops, MH_OP_ADD, MH_RT_RULE, &want->rules[i], want->rules[i].owner) < 0)
			return -1;
	}
	for (j = 0, i = 0; j < have->nrules; j++) {
		int keep;
		while (i < want->nrules && rule_cmp(&want->rules[i], &have->rules[j]) < 0)
			i++;
		/* a duplicate of a wanted rule goes too */
		keep = i < want->nrules && !rule_cmp(&want->rules[i], &have->rules[j]) &&
		       !(j > 0 && !rule_cmp(&have->rules[j - 1], &have->rules[j]));
		if (!keep && op_add(ops, MH_OP_DELETE, MH_RT_RULE, &have->rules[j], MH_NO_OWNER) < 0)
			return -1;
	}
	return 0;
}

/* Of the routes of HAVE with a wanted route's key, the first that equals it
 * stays (or, when none does, the first: the replace in 1. rewrites it). */
static int route_unwanted(const struct mh_routing *want, const struct mh_routing *have, unsigned i)
{
	const struct mh_route *w = find(&have->routes[i], want->routes, want->nroutes,
					   sizeof *w, route_key_cmp);
	unsigned lo, hi, k;

	if (!w)
		return 1;
	hi = key_range(have, w, &lo);
	for (k = lo; k < hi; k++)
		if (route_same(want, w, have, &have->routes[k]))
			return k != i;
	return i != lo;
}

/* 4. what is ours and not wanted: routes, the group, nexthops */
static int diff_deletes(const struct mh_routing *want, const struct mh_routing *have,
			struct mh_rt_ops *ops)
{
	unsigned i;

	for (i = 0; i < have->nroutes; i++)
		if (route_unwanted(want, have, i) &&
		    op_add(ops, MH_OP_DELETE, MH_RT_ROUTE, &have->routes[i], MH_NO_OWNER) < 0)
			return -1;
	if (!want->ngroup && have->has_group &&
	    op_add(ops, MH_OP_DELETE, MH_RT_GROUP, have, MH_NO_OWNER) < 0)
		return -1;
	for (i = 0; i < have->nnhs; i++) {
		const struct mh_nexthop *h = &have->nhs[i];
		if (!find(h, want->nhs, want->nnhs, sizeof *h, nh_cmp) &&
		    op_add(ops, MH_OP_DELETE, MH_RT_NEXTHOP, h, MH_NO_OWNER) < 0)
			return -1;
	}
	return 0;
}

int mh_rt_diff(struct mh_routing *want, struct mh_routing *have, const struct mh_rt_diff_args *a,
	       struct mh_rt_ops *ops)
{
	int changed = 0;

	sort_routing(want);
	sort_routing(have);
	ops->n = 0;
	/* the order of the batch: nothing may point at what is not there yet,
	 * nothing is deleted while something still points at it */
	if (diff_tables(want, have, a, ops) < 0 || diff_nexthops(want, have, a, ops, &changed) < 0 ||
	    diff_main(want, have, a, changed, ops) < 0 || diff_rules(want, have, ops) < 0 ||
	    diff_deletes(want, have, ops) < 0)
		return -1;
	return 0;
}

void mh_rt_ops_free(struct mh_rt_ops *ops)
{
	free(ops->v);
	memset(ops, 0, sizeof *ops);
}

/* ---- describing an operation (logs, status) ---- */

static const char *ip(uint32_t a, char *buf)
{
	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
	return buf;
}

/* a pin's rule: "rule 'fwmark 0 to 198.51.100.0/24 ipproto tcp dport 22 lookup 103'" */
static void pin_rule_words(const struct mh_rule *r, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];
	size_t o = (size_t)snprintf(buf, len, "rule 'fwmark 0");

	if (r->dst_len && o < len)
		o += (size_t)snprintf(buf + o, len - o, " to %s/%u", ip(r->dst, a), r->dst_len);
	if (r->ipproto && o < len)
		o += (size_t)snprintf(buf + o, len - o, " ipproto %s", r->ipproto == 6 ? "tcp" :
				      r->ipproto == 17 ? "udp" : r->ipproto == 1 ? "icmp" : "?");
	if (r->dport_lo && o < len)
		o += (size_t)snprintf(buf + o, len - o, r->dport_lo == r->dport_hi ? " dport %u" :
				      " dport %u-%u", r->dport_lo, r->dport_hi);
	if (o < len && r->unreachable)
		snprintf(buf + o, len - o, " unreachable' (priority %u, a strict pin, offline)", r->prio);
	else if (o < len)
		snprintf(buf + o, len - o, " lookup %u' (priority %u, a pin)", r->table, r->prio);
}

void mh_rt_describe(const struct mh_rt_op *o, const struct mh_routing *want, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];

	switch (o->kind) {
	case MH_RT_RULE: {
		const struct mh_rule *r = o->obj;
		if (r->suppress)
			snprintf(buf, len, "rule 'lookup main suppress_prefixlength 0' (priority %u)",
				 r->prio);
		else if (!r->mark && r->mask == 0xffffffffu)
			pin_rule_words(r, buf, len);
		else if (r->src_len)
			snprintf(buf, len, "rule 'from %s lookup %u' (priority %u)", ip(r->src, a),
				 r->table, r->prio);
		else
			snprintf(buf, len, "rule 'fwmark 0x%x/0x%x lookup %u' (priority %u)", r->mark,
				 r->mask, r->table, r->prio);
		break;
	}
	case MH_RT_ROUTE: {
		const struct mh_route *r = o->obj;
		if (r->table == RT_TABLE_MAIN)
			snprintf(buf, len, "balanced default route in table main");
		else if (r->type == RTN_UNREACHABLE)
			snprintf(buf, len, "unreachable default route in table %u", r->table);
		else
			snprintf(buf, len, "default route in table %u", r->table);
		break;
	}
	case MH_RT_NEXTHOP: {
		const struct mh_nexthop *n = o->obj;
		snprintf(buf, len, "nexthop 0x%x", n->id);
		break;
	}
	default: {
		const struct mh_routing *g = o->obj;
		snprintf(buf, len, "balanced nexthop group 0x%x (%u members)", MH_NH_GROUP_ID,
			 g->ngroup);
		break;
	}
	}
	(void)want;
}

/* ---- sending ---- */

static const char foreign_default[] =
	"add balanced default route: table main already holds a default route that multihome "
	"did not install (metric 0); give it a higher metric to keep it as a fallback "
	"(e.g. 'metric 100') or remove it (pppd: no 'defaultroute')";

static void put_rule(struct mh_nl_batch *b, const struct mh_rule *r, int add)
{
	struct nlmsghdr *h = mh_nl_batch_msg(b, add ? RTM_NEWRULE : RTM_DELRULE,
					     add ? NLM_F_CREATE | NLM_F_EXCL : 0, add ? 0 : ENOENT,
					     add ? "add rule" : "delete rule");
	struct fib_rule_hdr *frh;

	if (!h)
		return;
	frh = mnl_nlmsg_put_extra_header(h, sizeof *frh);
	frh->family = AF_INET;
	frh->action = r->unreachable ? FR_ACT_UNREACHABLE : FR_ACT_TO_TBL;
	frh->table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
	frh->src_len = r->src_len;
	frh->dst_len = r->dst_len;
	mnl_attr_put_u32(h, FRA_PRIORITY, r->prio);
	if (!r->unreachable)
		mnl_attr_put_u32(h, FRA_TABLE, r->table);
	if (r->mask) {
		mnl_attr_put_u32(h, FRA_FWMARK, r->mark);
		mnl_attr_put_u32(h, FRA_FWMASK, r->mask);
	}
	if (r->src_len)
		mnl_attr_put_u32(h, FRA_SRC, r->src);
	if (r->dst_len)
		mnl_attr_put_u32(h, FRA_DST, r->dst);
	if (r->ipproto)
		mnl_attr_put_u8(h, FRA_IP_PROTO, r->ipproto);
	if (r->dport_lo) {
		struct fib_rule_port_range pr = { .start = r->dport_lo, .end = r->dport_hi };
		mnl_attr_put(h, FRA_DPORT_RANGE, sizeof pr, &pr);
	}
	if (r->suppress)
		mnl_attr_put_u32(h, FRA_SUPPRESS_PREFIXLEN, 0);
	mnl_attr_put_u8(h, FRA_PROTOCOL, MH_RT_PROTO);
	mh_nl_batch_done(b, h);
}

static void route_hdr(struct nlmsghdr *h, const struct mh_route *r)
{
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(h, sizeof *rtm);

	rtm->rtm_family = AF_INET;
	rtm->rtm_table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = MH_RT_PROTO;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = r->type ? r->type : RTN_UNICAST;
	mnl_attr_put_u32(h, RTA_TABLE, r->table);
	if (r->metric)
		mnl_attr_put_u32(h, RTA_PRIORITY, r->metric);
}

static void put_multipath(struct nlmsghdr *h, const struct mh_routing *rt, const struct mh_route *r)
{
	struct nlattr *mp = mnl_attr_nest_start(h, RTA_MULTIPATH);
	unsigned i;

	for (i = 0; i < r->nhops; i++) {
		const struct mh_hop *hop = &rt->hops[r->hop0 + i];
		struct rtnexthop *nh = mnl_nlmsg_get_payload_tail(h);
		uint32_t at = h->nlmsg_len;

		h->nlmsg_len += RTNH_ALIGN(sizeof *nh);
		memset(nh, 0, sizeof *nh);
		nh->rtnh_ifindex = hop->oif;
		nh->rtnh_hops = (unsigned char)(hop->weight - 1);
		if (hop->gw)
			mnl_attr_put_u32(h, RTA_GATEWAY, hop->gw);
		nh->rtnh_len = (unsigned short)(h->nlmsg_len - at);
	}
	mnl_attr_nest_end(h, mp);
}

static void put_route(struct mh_nl_batch *b, const struct mh_routing *rt, const struct mh_rt_op *o)
{
	const struct mh_route *r = o->obj;
	int main_default = is_main_default(r);
	/* main's default is added exclusively: a foreign one of the same metric is refused */
	uint16_t flags = NLM_F_CREATE | (main_default && o->action == MH_OP_ADD
					? NLM_F_EXCL : NLM_F_REPLACE);
	struct nlmsghdr *h = mh_nl_batch_msg(b, RTM_NEWROUTE, flags, o->exists_ok ? EEXIST : 0,
					     main_default ? "add balanced default route"
							  : "add link table route");

	if (!h)
		return;
	if (main_default && !o->exists_ok)
		b->info[b->n].exists_means = 1;
	route_hdr(h, r);
	if (r->oif && r->type == RTN_UNICAST && !r->gw)
		((struct rtmsg *)mnl_nlmsg_get_payload(h))->rtm_scope = RT_SCOPE_LINK;
	if (r->oif)
		mnl_attr_put_u32(h, RTA_OIF, (uint32_t)r->oif);
	if (r->gw)
		mnl_attr_put_u32(h, RTA_GATEWAY, r->gw);
	if (r->nhid)
		mnl_attr_put_u32(h, RTA_NH_ID, r->nhid);
	if (r->nhops)
		put_multipath(h, rt, r);
	mh_nl_batch_done(b, h);
}

static void del_route(struct mh_nl_batch *b, const struct mh_route *r, int by_table)
{
	struct nlmsghdr *h = mh_nl_batch_msg(b, RTM_DELROUTE, 0, ESRCH, "delete route");

	if (!h)
		return;
	route_hdr(h, r);
	((struct rtmsg *)mnl_nlmsg_get_payload(h))->rtm_scope = RT_SCOPE_NOWHERE;
	/* the device may be gone: table + dst + metric + protocol is enough */
	if (r->oif && !by_table)
		mnl_attr_put_u32(h, RTA_OIF, (uint32_t)r->oif);
	mh_nl_batch_done(b, h);
}

static void put_nexthop(struct mh_nl_batch *b, const struct mh_nexthop *n)
{
	struct nlmsghdr *h = mh_nl_batch_msg(b, RTM_NEWNEXTHOP, NLM_F_CREATE | NLM_F_REPLACE, 0,
					     "add nexthop");
	struct nhmsg *nhm;

	if (!h)
		return;
	nhm = mnl_nlmsg_put_extra_header(h, sizeof *nhm);
	nhm->nh_family = AF_INET;
	nhm->nh_protocol = MH_RT_PROTO;
	mnl_attr_put_u32(h, NHA_ID, n->id);
	mnl_attr_put_u32(h, NHA_OIF, (uint32_t)n->oif);
	if (n->gw)
		mnl_attr_put_u32(h, NHA_GATEWAY, n->gw);
	mh_nl_batch_done(b, h);
}

static void put_group(struct mh_nl_batch *b, const struct mh_routing *rt)
{
	struct nlmsghdr *h = mh_nl_batch_msg(b, RTM_NEWNEXTHOP, NLM_F_CREATE | NLM_F_REPLACE, 0,
					     "replace balanced nexthop group");
	struct nexthop_grp g[MH_MAX_LINKS];
	struct nhmsg *nhm;
	unsigned i;

	if (!h)
		return;
	nhm = mnl_nlmsg_put_extra_header(h, sizeof *nhm);
	nhm->nh_family = AF_UNSPEC;
	nhm->nh_protocol = MH_RT_PROTO;
	mnl_attr_put_u32(h, NHA_ID, MH_NH_GROUP_ID);
	for (i = 0; i < rt->ngroup && i < MH_MAX_LINKS; i++)
		g[i] = (struct nexthop_grp){ .id = rt->group[i].id,
					     .weight = (uint8_t)(rt->group[i].weight - 1) };
	mnl_attr_put(h, NHA_GROUP, rt->ngroup * sizeof *g, g);
	mh_nl_batch_done(b, h);
}

static void del_nexthop(struct mh_nl_batch *b, uint32_t id)
{
	struct nlmsghdr *h = mh_nl_batch_msg(b, RTM_DELNEXTHOP, 0, ENOENT, "delete nexthop");
	struct nhmsg *nhm;

	if (!h)
		return;
	nhm = mnl_nlmsg_put_extra_header(h, sizeof *nhm);
	nhm->nh_family = AF_UNSPEC;
	mnl_attr_put_u32(h, NHA_ID, id);
	mh_nl_batch_done(b, h);
}

/* The messages of OPS, in order, into batch B.  BY_TABLE: route deletes
 * name no device (the incremental path: it may be gone). */
void mh_rt_build(struct mh_nl_batch *b, const struct mh_routing *want, const struct mh_rt_ops *ops,
		 int by_table)
{
	unsigned i;

	b->exists_msg = foreign_default;
	for (i = 0; i < ops->n; i++) {
		const struct mh_rt_op *o = &ops->v[i];
		switch (o->kind) {
		case MH_RT_RULE:
			put_rule(b, o->obj, o->action != MH_OP_DELETE);
			break;
		case MH_RT_ROUTE:
			if (o->action == MH_OP_DELETE)
				del_route(b, o->obj, by_table);
			else
				put_route(b, want, o);
			break;
		case MH_RT_NEXTHOP:
			if (o->action == MH_OP_DELETE)
				del_nexthop(b, ((const struct mh_nexthop *)o->obj)->id);
			else
				put_nexthop(b, o->obj);
			break;
		default:
			if (o->action == MH_OP_DELETE)
				del_nexthop(b, MH_NH_GROUP_ID);
			else
				put_group(b, want);
			break;
		}
	}
}

/* Send OPS as one batch (split into sendto-sized chunks). */
int mh_rt_send(struct mh_nl *nl, const struct mh_routing *want, const struct mh_rt_ops *ops,
	       int by_table, unsigned *sent, char *err, size_t len)
{
	struct mh_nl_batch b;
	int rc;

	mh_nl_batch_init(&b, nl);
	mh_rt_build(&b, want, ops, by_table);
	rc = mh_nl_batch_flush(&b);
	*sent = b.sent;
	if (rc < 0)
		snprintf(err, len, "%s", b.errmsg);
	mh_nl_batch_free(&b);
	return rc;
}

/* ---- the socket: kept open between the events of a process ----
 * (opening one costs seven system calls).  A forked child opens its own;
 * after a failure it is closed, so that nothing left queued is read as the
 * answer to the next request. */

static struct mh_nl kept;
static pid_t kept_pid;

static struct mh_nl *sock_get(void)
{
	if (kept.sock && kept_pid != getpid())
		mh_nl_close(&kept);
	if (!kept.sock) {
		if (mh_nl_open(&kept, NETLINK_ROUTE) < 0)
			return NULL;
		kept_pid = getpid();
	}
	return &kept;
}

static void sock_drop(void)
{
	mh_nl_close(&kept);
}

int mh_ifindex(const char *ifname)
{
	struct mh_nl *nl = sock_get();
	struct ifreq ifr;

	if (!nl)
		return (int)if_nametoindex(ifname);
	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	/* a hash lookup in the kernel, on any socket */
	return ioctl(mnl_socket_get_fd(nl->sock), SIOCGIFINDEX, &ifr) == 0 ? ifr.ifr_ifindex : 0;
}

/* ---- entry points ---- */

static int nh_support = -1;     /* nexthop objects in this kernel, probed once */

static int nh_probe_cb(const struct nlmsghdr *h, void *data)
{
	(void)h;
	(void)data;
	return MNL_CB_OK;
}

int mh_nexthops_supported(void)
{
	const char *v = mh_getenv("MULTIHOME_NO_NEXTHOPS");
	char buf[256];
	struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
	struct nhmsg *nhm;
	struct mh_nl *nl;

	/* MULTIHOME_NO_NEXTHOPS=1: a kernel with nexthop objects treated as one
	 * without (< 5.3), so that the RTA_MULTIPATH fallback is testable */
	if (v && *v && strcmp(v, "0"))
		return 0;
	if (nh_support >= 0)
		return nh_support;
	if (!(nl = sock_get()))
		return 1;       /* the event will say why */
	h->nlmsg_type = RTM_GETNEXTHOP;
	h->nlmsg_flags = NLM_F_REQUEST;
	nhm = mnl_nlmsg_put_extra_header(h, sizeof *nhm);
	nhm->nh_family = AF_UNSPEC;
	mnl_attr_put_u32(h, NHA_ID, MH_NH_GROUP_ID);
	if (mh_nl_query(nl, h, nh_probe_cb, NULL, NULL) == 0 || errno == ENOENT)
		nh_support = 1;
	else if (errno == EOPNOTSUPP || errno == EINVAL)
		nh_support = 0;
	else
		sock_drop();
	return nh_support < 0 ? 1 : nh_support;
}

static void add_stats(unsigned sent)
{
	mh_stats_mut()->nl_msgs += sent;
}

static int apply_full(struct mh_nl *nl, struct mh_plan *after, char *err, size_t len)
{
	struct mh_rt_diff_args args = { .delta = 0, .touched = -1 };
	struct mh_routing have;
	struct mh_rt_ops ops = { 0 };
	unsigned sent = 0;
	int rc;

	if (mh_rt_read(nl, !after->rt.nexthops, &have, err, len) < 0)
		return -1;
	rc = mh_rt_diff(&after->rt, &have, &args, &ops);
	if (rc < 0)
		snprintf(err, len, "out of memory");
	else
		rc = mh_rt_send(nl, &after->rt, &ops, 0, &sent, err, len);
	add_stats(sent);
	mh_rt_ops_free(&ops);
	mh_routing_free(&have);
	return rc;
}

int mh_routing_apply(struct mh_plan *before, struct mh_plan *after, int touched, int full,
		     char *err, size_t len)
{
	struct mh_nl *nl = sock_get();
	int rc;

	if (!nl) {
		snprintf(err, len, "rtnetlink socket: %s", strerror(errno));
		return -1;
	}
	/* the incremental path needs nexthop objects: a vanished device takes
	 * only its own member, so "before" minus the kernel's own deletions is
	 * what the kernel holds */
	if (!full && before && after->rt.nexthops) {
		struct mh_rt_diff_args args = { .delta = 1, .touched = touched };
		struct mh_rt_ops ops = { 0 };
		unsigned sent = 0;
		rc = mh_rt_diff(&after->rt, &before->rt, &args, &ops);
		if (rc == 0)
			rc = mh_rt_send(nl, &after->rt, &ops, 1, &sent, err, len);
		add_stats(sent);
		mh_rt_ops_free(&ops);
		if (rc == 0)
			return 0;
		/* the kernel was not as the registry said: read it, repair it */
		mh_log(MH_LOG_DEBUG, "incremental update failed (%s); diffing against the kernel", err);
	}
	if (mh_plan_whole(after) < 0) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	rc = apply_full(nl, after, err, len);
	if (rc < 0)
		sock_drop();
	return rc;
}

/* ---- the balanced group as the kernel holds it ---- */

struct group_q {
	unsigned char *slots;
	unsigned max;
};

static int group_cb(const struct nlmsghdr *h, void *data)
{
	struct group_q *q = data;
	const struct nlattr *tb[NHA_MAX + 1];
	const struct nexthop_grp *g;
	size_t n, i;

	if (h->nlmsg_type != RTM_NEWNEXTHOP)
		return MNL_CB_OK;
	if (mh_nl_attrs(h, sizeof(struct nhmsg), nh_policy, NHA_MAX, tb) < 0 || !tb[NHA_GROUP] ||
	    mnl_attr_get_payload_len(tb[NHA_GROUP]) % sizeof *g)
		return MNL_CB_ERROR;
	g = mnl_attr_get_payload(tb[NHA_GROUP]);
	n = mnl_attr_get_payload_len(tb[NHA_GROUP]) / sizeof *g;
	for (i = 0; i < n; i++)
		if (g[i].id > MH_NH_ID_BASE && g[i].id - MH_NH_ID_BASE - 1 < q->max)
			q->slots[g[i].id - MH_NH_ID_BASE - 1] = 1;
	return MNL_CB_OK;
}

int mh_rt_group_slots(unsigned char *slots, unsigned max)
{
	char buf[256];
	struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
	struct nhmsg *nhm;
	struct group_q q = { slots, max };
	struct mh_nl *nl;

	memset(slots, 0, max);
	if (!mh_nexthops_supported() || !(nl = sock_get()))
		return -1;
	h->nlmsg_type = RTM_GETNEXTHOP;
	h->nlmsg_flags = NLM_F_REQUEST;
	nhm = mnl_nlmsg_put_extra_header(h, sizeof *nhm);
	nhm->nh_family = AF_UNSPEC;
	mnl_attr_put_u32(h, NHA_ID, MH_NH_GROUP_ID);
	if (mh_nl_query(nl, h, group_cb, &q, NULL) == 0)
		return 0;
	if (errno == ENOENT)
		return 0;       /* no group: no member */
	sock_drop();
	memset(slots, 0, max);
	return -1;
}

/* ---- addresses: is a far-end address inside one of the host's networks? ---- */

struct addr_q {
	const uint32_t *addrs;
	unsigned n;
	uint8_t plen;           /* of addrs[0]: its network must not overlap */
	int ifindex;
	uint32_t via_mark, via_table;   /* lookups end at this link's rule and table */
	int hit;                /* index + 1 of the first address found in a foreign prefix */
	char why[96];
};

static const enum mnl_attr_data_type addr_policy[IFA_MAX + 1] = {
	[IFA_LOCAL] = MNL_TYPE_U32,
};

static int addr_cb(const struct nlmsghdr *h, void *data)
{
	struct addr_q *q = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(h);
	const struct nlattr *tb[IFA_MAX + 1];
	uint32_t local, mask, net;
	unsigned i;

	if (h->nlmsg_type != RTM_NEWADDR)
		return MNL_CB_OK;
	if (mh_nl_attrs(h, sizeof *ifa, addr_policy, IFA_MAX, tb) < 0)
		return MNL_CB_ERROR;
	if (ifa->ifa_family != AF_INET || (int)ifa->ifa_index == q->ifindex || q->hit || !tb[IFA_LOCAL])
		return MNL_CB_OK;
	local = mnl_attr_get_u32(tb[IFA_LOCAL]);
	if (!local || ifa->ifa_prefixlen == 0 || ifa->ifa_prefixlen >= 32)
		return MNL_CB_OK;
	mask = htonl(0xffffffffu << (32 - ifa->ifa_prefixlen));
	net = local & mask;
	for (i = 0; i < q->n && !q->hit; i++) {
		char ifn[IF_NAMESIZE] = "?", p[INET_ADDRSTRLEN];
		uint32_t m = mask;
		if (i == 0 && q->plen && q->plen < ifa->ifa_prefixlen)
			m = htonl(0xffffffffu << (32 - q->plen));       /* the wider of the two */
		if (!q->addrs[i] || (q->addrs[i] & m) != (local & m))
			continue;
		if_indextoname(ifa->ifa_index, ifn);
		inet_ntop(AF_INET, &net, p, sizeof p);
		snprintf(q->why, sizeof q->why, "%s/%u on %s", p, ifa->ifa_prefixlen, ifn);
		q->hit = (int)i + 1;
	}
	return MNL_CB_OK;
}

static void addr_reset(void *data)
{
	((struct addr_q *)data)->hit = 0;
}

/* Every address of the host, dumped: exact, and O(addresses). */
static int prefix_by_dump(struct mh_nl *nl, struct addr_q *q)
{
	struct ifaddrmsg ifa = { .ifa_family = AF_INET };

	if (mh_nl_dump(nl, RTM_GETADDR, &ifa, sizeof ifa, addr_cb, q, addr_reset) < 0)
		sock_drop();
	return q->hit;
}

static const enum mnl_attr_data_type fib_policy[RTA_MAX + 1] = {
	[RTA_TABLE] = MNL_TYPE_U32, [RTA_OIF] = MNL_TYPE_U32, [RTA_DST] = MNL_TYPE_U32,
};

/* What the FIB's answer H about address I says: 1 a connected network of
 * another interface holds it (WHY says which), 0 no network of the host
 * does, -1 the answer does not tell. */
static int fib_verdict(const struct nlmsghdr *h, struct addr_q *q)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(h);
	const struct nlattr *tb[RTA_MAX + 1];
	char ifn[IF_NAMESIZE] = "?", p[INET_ADDRSTRLEN];
	uint32_t table, dst;
	int oif;

	if (h->nlmsg_type != RTM_NEWROUTE || mh_nl_attrs(h, sizeof *rtm, fib_policy, RTA_MAX, tb) < 0)
		return -1;
	table = tb[RTA_TABLE] ? mnl_attr_get_u32(tb[RTA_TABLE]) : rtm->rtm_table;
	if (q->via_table && table == q->via_table)
		return 0;       /* past main's suppress rule: main holds no network with it */
	if (table != RT_TABLE_MAIN || rtm->rtm_type != RTN_UNICAST)
		return -1;      /* table local (an address of the host), a rule's table */
	if (rtm->rtm_dst_len == 0)
		return 0;       /* main's best match is its default: no network holds it */
	oif = tb[RTA_OIF] ? (int)mnl_attr_get_u32(tb[RTA_OIF]) : 0;
	if (rtm->rtm_protocol != RTPROT_KERNEL || rtm->rtm_scope != RT_SCOPE_LINK ||
	    rtm->rtm_dst_len >= 32 || !oif || oif == q->ifindex)
		return -1;      /* not another interface's network, or one inside a wider one */
	dst = tb[RTA_DST] ? mnl_attr_get_u32(tb[RTA_DST]) : 0;
	if_indextoname((unsigned)oif, ifn);
	inet_ntop(AF_INET, &dst, p, sizeof p);
	snprintf(q->why, sizeof q->why, "%s/%u on %s", p, rtm->rtm_dst_len, ifn);
	return 1;
}

/* One FIB lookup per address, sent together (RTM_F_FIB_MATCH: the route
 * that matched, with the table it is in).  Each asks for the address next
 * to it (A ^ 1): the networks that count are of /31 or wider and hold both,
 * while A itself is often a local address, which table local would answer.
 * 1 / 0 decided (Q->hit set), -1 some answer did not tell. */
static int prefix_by_lookup(struct mh_nl *nl, struct addr_q *q)
{
	static char rbuf[8192];
	char buf[4 * 64];
	uint32_t seq = nl->seq + 1;
	unsigned i, sent = 0, answered = 0;
	int verdict = 0;
	size_t used = 0;

	for (i = 0; i < q->n; i++) {
		struct nlmsghdr *h = mnl_nlmsg_put_header(buf + used);
		struct rtmsg *rtm;
		if (!q->addrs[i])
			continue;
		h->nlmsg_type = RTM_GETROUTE;
		h->nlmsg_flags = NLM_F_REQUEST;
		h->nlmsg_seq = seq + i;
		rtm = mnl_nlmsg_put_extra_header(h, sizeof *rtm);
		rtm->rtm_family = AF_INET;
		rtm->rtm_dst_len = 32;
		rtm->rtm_flags = RTM_F_FIB_MATCH | RTM_F_LOOKUP_TABLE;
		mnl_attr_put_u32(h, RTA_DST, q->addrs[i] ^ htonl(1));
		if (q->via_mark)
			mnl_attr_put_u32(h, RTA_MARK, q->via_mark);
		used += NLMSG_ALIGN(h->nlmsg_len);
		sent++;
	}
	nl->seq += q->n + 1;
	if (mnl_socket_sendto(nl->sock, buf, used) < 0)
		return -1;
	while (answered < sent) {
		ssize_t r = mnl_socket_recvfrom(nl->sock, rbuf, sizeof rbuf);
		const struct nlmsghdr *h = (const struct nlmsghdr *)rbuf;
		int left = (int)r;
		if (r < 0) {
			sock_drop();
			return -1;
		}
		for (; mh_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
			unsigned idx = h->nlmsg_seq - seq;
			int v;
			if (idx >= q->n || h->nlmsg_pid != nl->portid)
				continue;
			answered++;
			v = fib_verdict(h, q);
			if (v == 1 && !q->hit)
				q->hit = (int)idx + 1;
			else if (v < 0)
				verdict = -1;
		}
	}
	return q->hit ? 1 : verdict;
}

int mh_nl_addr_foreign_prefix(const uint32_t *addrs, unsigned n, uint8_t plen, int ifindex,
			      uint32_t via_mark, uint32_t via_table, char *why, size_t len)
{
	struct addr_q q = { .addrs = addrs, .n = n, .plen = plen, .ifindex = ifindex,
			    .via_mark = via_mark, .via_table = via_table };
	struct mh_nl *nl = sock_get();

	if (!nl)
		return 0;
	/* a network of the link's own (PLEN) may overlap a narrower one that
	 * holds none of the addresses: only the dump sees that */
	if (plen || n > 4 || prefix_by_lookup(nl, &q) < 0) {
		q.hit = 0;
		if ((nl = sock_get()))
			prefix_by_dump(nl, &q);
	}
	if (q.hit)
		snprintf(why, len, "%s", q.why);
	return q.hit;
}
