/* rtnetlink: the routing half of a link's state.
 *
 * Every object multihome installs carries MH_RT_PROTO.  An event dumps what
 * of ours the kernel holds (rules, routes, nexthops), compares it with the
 * desired state computed from the up links, and sends only the difference
 * as one batch.  Every message asks for an ACK; errors are read per message.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/nexthop.h>
#include <linux/rtnetlink.h>

#include "internal.h"

#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

#define CHUNK 32768             /* bytes of requests per sendto */
#define MAX_OBJ (3 * MH_MAX_LINKS + 8)

struct rule {
	uint32_t prio, table, mark, mask, src;
	uint8_t src_len, suppress;  /* suppress: suppress_prefixlength 0 */
};

struct route {
	uint32_t table, gw, nhid;
	int oif;
	int multipath;
};

struct nh {
	uint32_t id, gw;
	int oif;
};

struct kstate {
	struct rule rules[MAX_OBJ];
	unsigned nrules;
	struct route routes[MAX_OBJ];
	unsigned nroutes;
	struct nh nhs[MAX_OBJ];
	unsigned nnhs;
	struct nexthop_grp grp[MH_MAX_LINKS]; /* members of our balanced group */
	unsigned ngrp;
	int have_group;
	int have_nexthops;
};

struct nl {
	struct mnl_socket *sock;
	uint32_t portid, seq;
	char *buf;              /* CHUNK + slack */
	size_t used;
	unsigned pending;       /* messages in buf awaiting ACK */
	uint32_t first_seq;
	unsigned sent;
	int err;                /* first error */
	char errmsg[MH_ERR_MAX];
	/* per message: errnos that are fine (a delete of what is already gone) */
	int ok_errno[CHUNK / 16];
	const char *what[CHUNK / 16];   /* string literals */
};

static int nl_open(struct nl *nl)
{
	int one = 1;

	nl->sock = NULL;
	nl->used = 0;
	nl->pending = 0;
	nl->sent = 0;
	nl->err = 0;
	nl->errmsg[0] = 0;
	nl->sock = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	if (!nl->sock)
		return -1;
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof one);
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof one);
	mnl_socket_setsockopt(nl->sock, NETLINK_GET_STRICT_CHK, &one, sizeof one);
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(nl->sock);
		return -1;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	nl->seq = (uint32_t)time(NULL) << 8;
	nl->buf = malloc(CHUNK + 8192);
	if (!nl->buf) {
		mnl_socket_close(nl->sock);
		return -1;
	}
	return 0;
}

static void nl_close(struct nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	free(nl->buf);
}

/* ---- dumps ---- */

typedef int (*dump_cb)(const struct nlmsghdr *nlh, void *data);

static int nl_dump(struct nl *nl, struct nlmsghdr *req, dump_cb cb, void *data)
{
	req->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	req->nlmsg_seq = ++nl->seq;
	return mh_nl_request(nl->sock, req, cb, data);
}

/* Nexthop objects in this kernel: 1 yes, 0 no, -1 not known yet. */
static int nh_support = -1;

/* MULTIHOME_NO_NEXTHOPS=1 makes a kernel with nexthop objects be treated as
 * one without (< 5.3): the RTA_MULTIPATH fallback, testable on any kernel. */
static int no_nexthops_wanted(void)
{
	const char *v = getenv("MULTIHOME_NO_NEXTHOPS");

	return v && *v && strcmp(v, "0");
}

static int rule_cb(const struct nlmsghdr *h, void *data)
{
	struct kstate *k = data;
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(h);
	const struct nlattr *a;
	struct rule r = { 0 };
	int ours = 0, has_mark = 0, has_mask = 0;

	if (h->nlmsg_type != RTM_NEWRULE || frh->family != AF_INET)
		return 0;
	r.table = frh->table;
	r.src_len = frh->src_len;
	mnl_attr_for_each(a, h, sizeof *frh) {
		switch (mnl_attr_get_type(a)) {
		case FRA_PROTOCOL: ours = mnl_attr_get_u8(a) == MH_RT_PROTO; break;
		case FRA_PRIORITY: r.prio = mnl_attr_get_u32(a); break;
		case FRA_TABLE: r.table = mnl_attr_get_u32(a); break;
		case FRA_FWMARK: r.mark = mnl_attr_get_u32(a); has_mark = 1; break;
		case FRA_FWMASK: r.mask = mnl_attr_get_u32(a); has_mask = 1; break;
		case FRA_SRC: r.src = mnl_attr_get_u32(a); break;
		case FRA_SUPPRESS_PREFIXLEN:
			r.suppress = mnl_attr_get_u32(a) == 0;
			break;
		}
	}
	if (has_mark && !has_mask)      /* the kernel omits an all-ones mask */
		r.mask = 0xffffffffu;
	if (ours && k->nrules < MAX_OBJ)
		k->rules[k->nrules++] = r;
	return 0;
}

static int route_cb(const struct nlmsghdr *h, void *data)
{
	struct kstate *k = data;
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(h);
	const struct nlattr *a;
	struct route r = { 0 };
	if (h->nlmsg_type != RTM_NEWROUTE || rtm->rtm_family != AF_INET || rtm->rtm_dst_len)
		return 0;
	r.table = rtm->rtm_table;
	mnl_attr_for_each(a, h, sizeof *rtm) {
		switch (mnl_attr_get_type(a)) {
		case RTA_TABLE: r.table = mnl_attr_get_u32(a); break;
		case RTA_OIF: r.oif = (int)mnl_attr_get_u32(a); break;
		case RTA_GATEWAY: r.gw = mnl_attr_get_u32(a); break;
		case RTA_NH_ID: r.nhid = mnl_attr_get_u32(a); break;
		case RTA_MULTIPATH: r.multipath = 1; break;
		}
	}
	if (rtm->rtm_protocol != MH_RT_PROTO)
		return 0;
	if (k->nroutes < MAX_OBJ)
		k->routes[k->nroutes++] = r;
	return 0;
}

static int nh_cb(const struct nlmsghdr *h, void *data)
{
	struct kstate *k = data;
	const struct nhmsg *nhm = mnl_nlmsg_get_payload(h);
	const struct nlattr *a;
	struct nh *n;

	if (h->nlmsg_type != RTM_NEWNEXTHOP || nhm->nh_protocol != MH_RT_PROTO ||
	    k->nnhs >= MAX_OBJ)
		return 0;
	n = &k->nhs[k->nnhs];
	memset(n, 0, sizeof *n);
	mnl_attr_for_each(a, h, sizeof *nhm) {
		switch (mnl_attr_get_type(a)) {
		case NHA_ID: n->id = mnl_attr_get_u32(a); break;
		case NHA_OIF: n->oif = (int)mnl_attr_get_u32(a); break;
		case NHA_GATEWAY:
			if (mnl_attr_get_payload_len(a) == 4)
				n->gw = mnl_attr_get_u32(a);
			break;
		case NHA_GROUP: {
			size_t len = mnl_attr_get_payload_len(a) / sizeof(struct nexthop_grp);
			if (len > MH_MAX_LINKS)
				len = MH_MAX_LINKS;
			memcpy(k->grp, mnl_attr_get_payload(a), len * sizeof(struct nexthop_grp));
			k->ngrp = (unsigned)len;
			k->have_group = 1;
			break;
		}
		}
	}
	k->nnhs++;
	return 0;
}

static int read_kernel(struct nl *nl, struct kstate *k)
{
	char buf[256];
	struct nlmsghdr *h;

	h = mnl_nlmsg_put_header(buf);
	h->nlmsg_type = RTM_GETRULE;
	struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(h, sizeof *frh);
	frh->family = AF_INET;
	if (nl_dump(nl, h, rule_cb, k) < 0)
		return -1;

	/* strict checking lets the kernel filter by protocol: only ours come back
	 * (route_cb filters again for kernels that ignore it) */
	h = mnl_nlmsg_put_header(buf);
	h->nlmsg_type = RTM_GETROUTE;
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(h, sizeof *rtm);
	rtm->rtm_family = AF_INET;
	rtm->rtm_protocol = MH_RT_PROTO;
	if (nl_dump(nl, h, route_cb, k) < 0)
		return -1;

	h = mnl_nlmsg_put_header(buf);
	h->nlmsg_type = RTM_GETNEXTHOP;
	struct nhmsg *nhm = mnl_nlmsg_put_extra_header(h, sizeof *nhm);
	nhm->nh_family = AF_UNSPEC;
	k->have_nexthops = 1;
	if (no_nexthops_wanted()) {
		k->have_nexthops = 0;
		return 0;
	}
	if (nl_dump(nl, h, nh_cb, k) < 0) {
		if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOENT)
			return -1;
		k->have_nexthops = 0;
	}
	return 0;
}

/* ---- the batch ---- */

static const char add_default[] = "add balanced default route";
static const char foreign_default[] =
	"add balanced default route: table main already holds a default route that multihome "
	"did not install (metric 0); give it a higher metric to keep it as a fallback "
	"(e.g. 'metric 100') or remove it (pppd: no 'defaultroute')";

static int ack_cb_one(struct nl *nl, const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
	unsigned idx = h->nlmsg_seq - nl->first_seq;
	const char *ext = NULL;

	if (idx >= nl->pending)
		return 0;
	if (e->error == 0 || -e->error == nl->ok_errno[idx])
		return 1;
	if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
		const struct nlattr *a;
		size_t off = sizeof(*e);
		if (!(h->nlmsg_flags & NLM_F_CAPPED))
			off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
		mnl_attr_for_each(a, h, off)
			if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
				ext = mnl_attr_get_str(a);
	}
	if (!nl->err) {
		const char *what = nl->what[idx];
		if (what == add_default && -e->error == EEXIST)
			what = foreign_default;
		nl->err = -e->error;
		snprintf(nl->errmsg, sizeof nl->errmsg, "%s: %s%s%s", what,
			 strerror(-e->error), ext ? " (" : "", ext ? ext : "");
		if (ext)
			strncat(nl->errmsg, ")", sizeof nl->errmsg - strlen(nl->errmsg) - 1);
	}
	return 1;
}

static int nl_flush(struct nl *nl)
{
	char rbuf[16384];
	unsigned acked = 0;

	if (!nl->pending)
		return 0;
	if (mnl_socket_sendto(nl->sock, nl->buf, nl->used) < 0) {
		if (!nl->err) {
			nl->err = errno;
			snprintf(nl->errmsg, sizeof nl->errmsg, "netlink send: %s", strerror(errno));
		}
		goto out;
	}
	while (acked < nl->pending) {
		ssize_t r = mnl_socket_recvfrom(nl->sock, rbuf, sizeof rbuf);
		if (r < 0) {
			if (!nl->err) {
				nl->err = errno;
				snprintf(nl->errmsg, sizeof nl->errmsg, "netlink receive: %s",
					 strerror(errno));
			}
			break;
		}
		const struct nlmsghdr *h = (const struct nlmsghdr *)rbuf;
		int len = (int)r;
		for (; mnl_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len))
			if (h->nlmsg_type == NLMSG_ERROR)
				acked += (unsigned)ack_cb_one(nl, h);
	}
out:
	nl->sent += nl->pending;
	nl->used = 0;
	nl->pending = 0;
	return nl->err ? -1 : 0;
}

/* Start a message; flushes first when the chunk is nearly full. */
static struct nlmsghdr *nl_msg(struct nl *nl, uint16_t type, uint16_t flags, int ok_errno,
			       const char *what)
{
	struct nlmsghdr *h;

	if (nl->used > CHUNK - 4096 || nl->pending >= CHUNK / 16)
		nl_flush(nl);
	h = mnl_nlmsg_put_header(nl->buf + nl->used);
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
	h->nlmsg_seq = ++nl->seq;
	if (!nl->pending)
		nl->first_seq = h->nlmsg_seq;
	nl->ok_errno[nl->pending] = ok_errno;
	nl->what[nl->pending] = what;
	return h;
}

static void nl_done(struct nl *nl, struct nlmsghdr *h)
{
	nl->used += NLMSG_ALIGN(h->nlmsg_len);
	nl->pending++;
}

static void put_rule(struct nl *nl, const struct rule *r, int add)
{
	struct nlmsghdr *h = nl_msg(nl, add ? RTM_NEWRULE : RTM_DELRULE,
				    add ? NLM_F_CREATE | NLM_F_EXCL : 0, add ? 0 : ENOENT,
				    add ? "add rule" : "delete rule");
	struct fib_rule_hdr *frh = mnl_nlmsg_put_extra_header(h, sizeof *frh);

	frh->family = AF_INET;
	frh->action = FR_ACT_TO_TBL;
	frh->table = r->table < 256 ? (uint8_t)r->table : RT_TABLE_UNSPEC;
	frh->src_len = r->src_len;
	mnl_attr_put_u32(h, FRA_PRIORITY, r->prio);
	mnl_attr_put_u32(h, FRA_TABLE, r->table);
	if (r->mask) {
		mnl_attr_put_u32(h, FRA_FWMARK, r->mark);
		mnl_attr_put_u32(h, FRA_FWMASK, r->mask);
	}
	if (r->src_len)
		mnl_attr_put_u32(h, FRA_SRC, r->src);
	if (r->suppress)
		mnl_attr_put_u32(h, FRA_SUPPRESS_PREFIXLEN, 0);
	mnl_attr_put_u8(h, FRA_PROTOCOL, MH_RT_PROTO);
	nl_done(nl, h);
}

static struct rtmsg *route_hdr(struct nlmsghdr *h, uint32_t table)
{
	struct rtmsg *rtm = mnl_nlmsg_put_extra_header(h, sizeof *rtm);

	rtm->rtm_family = AF_INET;
	rtm->rtm_table = table < 256 ? (uint8_t)table : RT_TABLE_UNSPEC;
	rtm->rtm_protocol = MH_RT_PROTO;
	rtm->rtm_scope = RT_SCOPE_UNIVERSE;
	rtm->rtm_type = RTN_UNICAST;
	mnl_attr_put_u32(h, RTA_TABLE, table);
	return rtm;
}

/* default route of one link's own table */
static void put_link_route(struct nl *nl, const struct mh_link *l)
{
	struct nlmsghdr *h = nl_msg(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, 0,
				    "add link table route");
	struct rtmsg *rtm = route_hdr(h, l->cfg.table);

	if (!l->gateway)
		rtm->rtm_scope = RT_SCOPE_LINK;
	mnl_attr_put_u32(h, RTA_OIF, (uint32_t)l->ifindex);
	if (l->gateway)
		mnl_attr_put_u32(h, RTA_GATEWAY, l->gateway);
	nl_done(nl, h);
}

static void del_route(struct nl *nl, const struct route *r)
{
	struct nlmsghdr *h = nl_msg(nl, RTM_DELROUTE, 0, ESRCH, "delete route");
	struct rtmsg *rtm = route_hdr(h, r->table);

	rtm->rtm_scope = RT_SCOPE_NOWHERE;
	if (r->oif)
		mnl_attr_put_u32(h, RTA_OIF, (uint32_t)r->oif);
	nl_done(nl, h);
}

static void put_nh(struct nl *nl, const struct mh_link *l)
{
	struct nlmsghdr *h = nl_msg(nl, RTM_NEWNEXTHOP, NLM_F_CREATE | NLM_F_REPLACE, 0,
				    "add nexthop");
	struct nhmsg *nhm = mnl_nlmsg_put_extra_header(h, sizeof *nhm);

	nhm->nh_family = AF_INET;
	nhm->nh_protocol = MH_RT_PROTO;
	mnl_attr_put_u32(h, NHA_ID, MH_NH_ID_BASE + 1 + l->slot);
	mnl_attr_put_u32(h, NHA_OIF, (uint32_t)l->ifindex);
	if (l->gateway)
		mnl_attr_put_u32(h, NHA_GATEWAY, l->gateway);
	nl_done(nl, h);
}

static void put_group(struct nl *nl, const struct nexthop_grp *g, unsigned n)
{
	struct nlmsghdr *h = nl_msg(nl, RTM_NEWNEXTHOP, NLM_F_CREATE | NLM_F_REPLACE, 0,
				    "replace balanced nexthop group");
	struct nhmsg *nhm = mnl_nlmsg_put_extra_header(h, sizeof *nhm);

	nhm->nh_family = AF_UNSPEC;
	nhm->nh_protocol = MH_RT_PROTO;
	mnl_attr_put_u32(h, NHA_ID, MH_NH_GROUP_ID);
	mnl_attr_put(h, NHA_GROUP, n * sizeof *g, g);
	nl_done(nl, h);
}

static void del_nh(struct nl *nl, uint32_t id)
{
	struct nlmsghdr *h = nl_msg(nl, RTM_DELNEXTHOP, 0, ENOENT, "delete nexthop");
	struct nhmsg *nhm = mnl_nlmsg_put_extra_header(h, sizeof *nhm);

	nhm->nh_family = AF_UNSPEC;
	mnl_attr_put_u32(h, NHA_ID, id);
	nl_done(nl, h);
}


/* Ours is not there (the dump said so): create it, never replacing a
 * foreign default route of the same metric. */
static void put_default_nhid(struct nl *nl, int exists_ok)
{
	struct nlmsghdr *h = nl_msg(nl, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL,
				    exists_ok ? EEXIST : 0, add_default);

	route_hdr(h, RT_TABLE_MAIN);
	mnl_attr_put_u32(h, RTA_NH_ID, MH_NH_GROUP_ID);
	nl_done(nl, h);
}

/* Kernels without nexthop objects: one RTA_MULTIPATH route. */
static void put_default_multipath(struct nl *nl, const struct mh_link *const *links, unsigned n,
				  int ours_there)
{
	struct nlmsghdr *h = nl_msg(nl, RTM_NEWROUTE,
				    NLM_F_CREATE | (ours_there ? NLM_F_REPLACE : NLM_F_EXCL), 0,
				    add_default);
	struct nlattr *mp;
	unsigned i;

	route_hdr(h, RT_TABLE_MAIN);
	mp = mnl_attr_nest_start(h, RTA_MULTIPATH);
	for (i = 0; i < n; i++) {
		if (!links[i]->cfg.weight)
			continue;
		struct rtnexthop *nh = mnl_nlmsg_get_payload_tail(h);
		uint32_t at = h->nlmsg_len;
		h->nlmsg_len += RTNH_ALIGN(sizeof *nh);
		memset(nh, 0, sizeof *nh);
		nh->rtnh_ifindex = links[i]->ifindex;
		nh->rtnh_hops = (unsigned char)(links[i]->cfg.weight - 1);
		if (links[i]->gateway)
			mnl_attr_put_u32(h, RTA_GATEWAY, links[i]->gateway);
		nh->rtnh_len = (unsigned short)(h->nlmsg_len - at);
	}
	mnl_attr_nest_end(h, mp);
	nl_done(nl, h);
}

/* ---- desired state ---- */

static unsigned desired_rules(const struct mh_link *const *links, unsigned n, struct rule *out)
{
	unsigned i, k = 0;

	if (!n)
		return 0;
	out[k++] = (struct rule){ .prio = MH_PRIO_SUPPRESS, .table = RT_TABLE_MAIN, .suppress = 1 };
	for (i = 0; i < n; i++) {
		const struct mh_link *l = links[i];
		out[k++] = (struct rule){ .prio = l->cfg.priority, .table = l->cfg.table,
					  .mark = l->cfg.mark, .mask = l->cfg.mask };
		out[k++] = (struct rule){ .prio = MH_PRIO_SOURCE_BASE + l->cfg.priority,
					  .table = l->cfg.table, .src = l->local, .src_len = 32 };
	}
	return k;
}

#define CMP(f) if (a->f != b->f) return a->f < b->f ? -1 : 1
static int rule_cmp(const void *x, const void *y)
{
	const struct rule *a = x, *b = y;

	CMP(prio); CMP(table); CMP(mark); CMP(mask); CMP(src); CMP(src_len); CMP(suppress);
	return 0;
}
#undef CMP

static int nh_cmp(const void *x, const void *y)
{
	const struct nh *a = x, *b = y;

	return a->id < b->id ? -1 : a->id > b->id;
}

static const struct nh *find_nh(const struct kstate *k, uint32_t id)
{
	struct nh key = { .id = id };

	return bsearch(&key, k->nhs, k->nnhs, sizeof key, nh_cmp);
}

static int route_cmp(const void *x, const void *y)
{
	const struct route *a = x, *b = y;

	if (a->table != b->table)
		return a->table < b->table ? -1 : 1;
	if (a->oif != b->oif)
		return a->oif < b->oif ? -1 : 1;
	if (a->gw != b->gw)
		return a->gw < b->gw ? -1 : 1;
	return a->nhid < b->nhid ? -1 : a->nhid > b->nhid;
}

static int link_table_cmp(const void *x, const void *y)
{
	const struct mh_link *a = *(const struct mh_link *const *)x;
	const struct mh_link *b = *(const struct mh_link *const *)y;

	return a->cfg.table < b->cfg.table ? -1 : a->cfg.table > b->cfg.table;
}

/* The route a link's own table should hold. */
static struct route link_route(const struct mh_link *l)
{
	return (struct route){ .table = l->cfg.table, .oif = l->ifindex, .gw = l->gateway };
}

static int cmp_grp(const void *a, const void *b)
{
	const struct nexthop_grp *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

/* The full path: dump what of ours the kernel holds, diff the whole desired
 * state against it.  Repairs anything: duplicates, leftovers of an
 * interrupted event, objects deleted by hand. */
static int nl_full(struct nl *nl_, const struct mh_link *const *links, unsigned n)
{
#define nl (*nl_)
	static struct rule want[MAX_OBJ];
	static const struct mh_link *bytable[MH_MAX_LINKS];
	struct kstate *k;
	struct nexthop_grp grp[MH_MAX_LINKS];
	unsigned i, j, nwant, ngrp = 0;
	int rc = -1;

	k = malloc(sizeof *k);
	if (k) {
		k->nrules = k->nroutes = k->nnhs = k->ngrp = 0;
		k->have_group = 0;
	}
	if (!k) {
		nl.err = ENOMEM;
		snprintf(nl.errmsg, sizeof nl.errmsg, "out of memory");
		return -1;
	}
	if (read_kernel(&nl, k) < 0) {
		nl.err = errno;
		snprintf(nl.errmsg, sizeof nl.errmsg, "reading routes and rules: %s", strerror(errno));
		goto out;
	}
	nh_support = k->have_nexthops;

	for (i = 0; i < n; i++)
		if (links[i]->cfg.weight) {
			grp[ngrp].id = MH_NH_ID_BASE + 1 + links[i]->slot;
			grp[ngrp].weight = (uint8_t)(links[i]->cfg.weight - 1);
			grp[ngrp].resvd1 = 0;
			grp[ngrp].resvd2 = 0;
			ngrp++;
		}
	qsort(grp, ngrp, sizeof grp[0], cmp_grp);

	qsort(k->routes, k->nroutes, sizeof k->routes[0], route_cmp);
	qsort(k->nhs, k->nnhs, sizeof k->nhs[0], nh_cmp);
	memcpy(bytable, links, n * sizeof *links);
	qsort(bytable, n, sizeof *bytable, link_table_cmp);

	/* 1. each link's own table */
	for (i = 0; i < n; i++) {
		struct route want_r = link_route(links[i]);
		if (!bsearch(&want_r, k->routes, k->nroutes, sizeof want_r, route_cmp))
			put_link_route(&nl, links[i]);
	}
	/* 2. nexthops and the balanced group, then main's default */
	if (k->have_nexthops) {
		int same = k->have_group && k->ngrp == ngrp;
		for (i = 0; i < n; i++) {
			const struct mh_link *l = links[i];
			const struct nh *x;
			if (!l->cfg.weight)
				continue;
			x = find_nh(k, MH_NH_ID_BASE + 1 + l->slot);
			if (!x || x->oif != l->ifindex || x->gw != l->gateway) {
				put_nh(&nl, l);
				same = 0;
			}
		}
		if (same) {
			struct nexthop_grp cur[MH_MAX_LINKS];
			memcpy(cur, k->grp, ngrp * sizeof cur[0]);
			qsort(cur, ngrp, sizeof cur[0], cmp_grp);
			for (i = 0; i < ngrp; i++)
				if (cur[i].id != grp[i].id || cur[i].weight != grp[i].weight)
					same = 0;
		}
		if (ngrp && !same)
			put_group(&nl, grp, ngrp);
		if (ngrp) {
			int have = 0;
			for (j = 0; j < k->nroutes; j++)
				if (k->routes[j].table == RT_TABLE_MAIN &&
				    k->routes[j].nhid == MH_NH_GROUP_ID)
					have = 1;
			if (!have)
				put_default_nhid(&nl, 0);
		}
	} else if (ngrp) {
		int ours = 0;
		for (j = 0; j < k->nroutes; j++)
			ours |= k->routes[j].table == RT_TABLE_MAIN;
		put_default_multipath(&nl, links, n, ours);
	}
	/* 3. rules: sorted by priority, merged; add what is missing, then
	 * withdraw what is ours and no longer wanted (duplicates too) */
	nwant = desired_rules(links, n, want);
	qsort(want, nwant, sizeof want[0], rule_cmp);
	qsort(k->rules, k->nrules, sizeof k->rules[0], rule_cmp);
	for (i = 0, j = 0; i < nwant; i++) {
		while (j < k->nrules && rule_cmp(&k->rules[j], &want[i]) < 0)
			j++;
		if (j >= k->nrules || rule_cmp(&k->rules[j], &want[i]))
			put_rule(&nl, &want[i], 1);
	}
	for (j = 0, i = 0; j < k->nrules; j++) {
		int keep;
		while (i < nwant && rule_cmp(&want[i], &k->rules[j]) < 0)
			i++;
		keep = i < nwant && !rule_cmp(&want[i], &k->rules[j]) &&
		       !(j > 0 && !rule_cmp(&k->rules[j - 1], &k->rules[j]));
		if (!keep)
			put_rule(&nl, &k->rules[j], 0);
	}
	/* routes and nexthops */
	for (j = 0; j < k->nroutes; j++) {
		const struct route *r = &k->routes[j];
		int keep = 0;
		if (r->table == RT_TABLE_MAIN)
			/* without nexthop objects our main default was just replaced in 2.
			 * (one hop shows as a plain route, more as RTA_MULTIPATH) */
			keep = ngrp && (k->have_nexthops ? r->nhid == MH_NH_GROUP_ID : 1);
		else {
			struct mh_link key;
			const struct mh_link *kp = &key, *const *owner;
			key.cfg.table = r->table;
			owner = bsearch(&kp, bytable, n, sizeof *bytable, link_table_cmp);
			if (owner) {
				struct route want_r = link_route(*owner);
				keep = !route_cmp(&want_r, r);
			}
		}
		if (!keep)
			del_route(&nl, r);
	}
	for (j = 0; j < k->nnhs; j++) {
		uint32_t id = k->nhs[j].id;
		int keep = 0;
		struct nexthop_grp key = { .id = id };
		if (id == MH_NH_GROUP_ID)
			keep = ngrp > 0;
		else
			keep = bsearch(&key, grp, ngrp, sizeof key, cmp_grp) != NULL;
		if (!keep)
			del_nh(&nl, id);
	}
	nl_flush(&nl);
	rc = nl.err ? -1 : 0;
out:
	free(k);
	return rc;
#undef nl
}


/* ---- the incremental path ---- */

/* One link's table route, with the link it belongs to. */
struct lroute {
	struct route r;
	const struct mh_link *l;
};

static int lroute_cmp(const void *x, const void *y)
{
	return route_cmp(&((const struct lroute *)x)->r, &((const struct lroute *)y)->r);
}

static unsigned link_routes(const struct mh_link *const *links, unsigned n, struct lroute *out)
{
	unsigned i;

	for (i = 0; i < n; i++)
		out[i] = (struct lroute){ .r = link_route(links[i]), .l = links[i] };
	qsort(out, n, sizeof *out, lroute_cmp);
	return n;
}

/* The nexthop objects of the weighted links, sorted by id. */
struct lnh {
	struct nh nh;
	uint8_t weight;
	const struct mh_link *l;
};

static int lnh_cmp(const void *x, const void *y)
{
	return nh_cmp(&((const struct lnh *)x)->nh, &((const struct lnh *)y)->nh);
}

static unsigned link_nhs(const struct mh_link *const *links, unsigned n, struct lnh *out)
{
	unsigned i, k = 0;

	for (i = 0; i < n; i++)
		if (links[i]->cfg.weight)
			out[k++] = (struct lnh){ .nh = { .id = MH_NH_ID_BASE + 1 + links[i]->slot,
							 .oif = links[i]->ifindex,
							 .gw = links[i]->gateway },
						 .weight = (uint8_t)(links[i]->cfg.weight - 1),
						 .l = links[i] };
	qsort(out, k, sizeof *out, lnh_cmp);
	return k;
}

/* The incremental path: the difference between two desired states (the up
 * links before and after this event), sent without reading the kernel.  It
 * relies on the kernel holding the "before" state, which the caller vouches
 * for (the previous event finished); deletes of what the kernel removed by
 * itself (a vanished device's routes and nexthops) are tolerated, anything
 * else unexpected fails the batch and the caller takes the full path. */
static int nl_delta(struct nl *nl, const struct mh_link *const *before, unsigned nb,
		    const struct mh_link *const *after, unsigned na, const struct mh_link *touched)
{
	static struct rule wb[MAX_OBJ], wa[MAX_OBJ];
	static struct lroute rb[MH_MAX_LINKS], ra[MH_MAX_LINKS];
	static struct lnh hb[MH_MAX_LINKS], ha[MH_MAX_LINKS];
	unsigned i, j, nwb, nwa, nrb, nra, nhb, nha;
	int group_changed;

	nwb = desired_rules(before, nb, wb);
	nwa = desired_rules(after, na, wa);
	qsort(wb, nwb, sizeof wb[0], rule_cmp);
	qsort(wa, nwa, sizeof wa[0], rule_cmp);
	nrb = link_routes(before, nb, rb);
	nra = link_routes(after, na, ra);
	nhb = link_nhs(before, nb, hb);
	nha = link_nhs(after, na, ha);

	/* 1. tables: new or changed routes; the link coming up always gets its
	 * own (the kernel flushes a device's routes and nexthops when it loses
	 * its address, as on a reconnect: they may be gone though unchanged) */
	for (i = 0, j = 0; i < nra; i++) {
		while (j < nrb && route_cmp(&rb[j].r, &ra[i].r) < 0)
			j++;
		if (j >= nrb || route_cmp(&rb[j].r, &ra[i].r) || ra[i].l == touched)
			put_link_route(nl, ra[i].l);
	}
	/* 2. nexthops, the group, main's default */
	group_changed = nha != nhb;
	for (i = 0, j = 0; i < nha; i++) {
		while (j < nhb && hb[j].nh.id < ha[i].nh.id)
			j++;
		if (j >= nhb || hb[j].nh.id != ha[i].nh.id || hb[j].nh.oif != ha[i].nh.oif ||
		    hb[j].nh.gw != ha[i].nh.gw || ha[i].l == touched) {
			put_nh(nl, ha[i].l);
			group_changed = 1;
		} else if (hb[j].weight != ha[i].weight) {
			group_changed = 1;
		}
	}
	if (nha && group_changed) {
		struct nexthop_grp g[MH_MAX_LINKS];
		for (i = 0; i < nha; i++)
			g[i] = (struct nexthop_grp){ .id = ha[i].nh.id, .weight = ha[i].weight };
		put_group(nl, g, nha);
	}
	if (nha && !nhb)
		put_default_nhid(nl, 0);        /* a foreign default route: fail, explain */
	else if (nha && group_changed)
		put_default_nhid(nl, 1);        /* ours, or the kernel dropped it with the group */
	/* 3. rules */
	for (i = 0, j = 0; i < nwa; i++) {
		while (j < nwb && rule_cmp(&wb[j], &wa[i]) < 0)
			j++;
		if (j >= nwb || rule_cmp(&wb[j], &wa[i]))
			put_rule(nl, &wa[i], 1);
	}
	for (j = 0, i = 0; j < nwb; j++) {
		while (i < nwa && rule_cmp(&wa[i], &wb[j]) < 0)
			i++;
		if (i >= nwa || rule_cmp(&wa[i], &wb[j]))
			put_rule(nl, &wb[j], 0);
	}
	/* 4. what went: routes, main's default with the group, members */
	for (j = 0, i = 0; j < nrb; j++) {
		while (i < nra && route_cmp(&ra[i].r, &rb[j].r) < 0)
			i++;
		if (i >= nra || route_cmp(&ra[i].r, &rb[j].r)) {
			struct route r = rb[j].r;
			r.oif = 0;      /* the device may be gone: table + dst + protocol */
			if (i < nra && ra[i].r.table == r.table)
				continue; /* replaced in 1. (same table, other device) */
			del_route(nl, &r);
		}
	}
	if (!nha && nhb) {
		struct route def = { .table = RT_TABLE_MAIN };
		del_route(nl, &def);
		del_nh(nl, MH_NH_GROUP_ID);
	}
	for (j = 0, i = 0; j < nhb; j++) {
		while (i < nha && ha[i].nh.id < hb[j].nh.id)
			i++;
		if (i >= nha || ha[i].nh.id != hb[j].nh.id)
			del_nh(nl, hb[j].nh.id);
	}
	nl_flush(nl);
	return nl->err ? -1 : 0;
}

/* Are nexthop objects there?  One GET of our group's id (-1 unknown). */
static int probe_nexthops(struct nl *nl)
{
	char buf[256], rbuf[8192];
	struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
	struct nhmsg *nhm;
	ssize_t r;

	h->nlmsg_type = RTM_GETNEXTHOP;
	h->nlmsg_flags = NLM_F_REQUEST;
	h->nlmsg_seq = ++nl->seq;
	nhm = mnl_nlmsg_put_extra_header(h, sizeof *nhm);
	nhm->nh_family = AF_UNSPEC;
	mnl_attr_put_u32(h, NHA_ID, MH_NH_GROUP_ID);
	if (mnl_socket_sendto(nl->sock, h, h->nlmsg_len) < 0)
		return -1;
	r = mnl_socket_recvfrom(nl->sock, rbuf, sizeof rbuf);
	if (r < (ssize_t)sizeof(struct nlmsghdr))
		return -1;
	h = (struct nlmsghdr *)rbuf;
	if (h->nlmsg_type == RTM_NEWNEXTHOP)
		return 1;
	if (h->nlmsg_type == NLMSG_ERROR) {
		const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
		if (e->error == -ENOENT)
			return 1;
		if (e->error == -EOPNOTSUPP || e->error == -EINVAL)
			return 0;
	}
	return -1;
}

int mh_nl_apply(const struct mh_link *const *before, unsigned nb,
		const struct mh_link *const *links, unsigned n, const struct mh_link *touched,
		int full, char *err, size_t len)
{
	struct nl nl;
	int rc;

	if (nl_open(&nl) < 0) {
		snprintf(err, len, "rtnetlink socket: %s", strerror(errno));
		return -1;
	}
	if (nh_support < 0)
		nh_support = no_nexthops_wanted() ? 0 : probe_nexthops(&nl);
	if (!full && nh_support == 1) {
		if (nl_delta(&nl, before, nb, links, n, touched) == 0)
			goto done;
		/* the kernel was not as the registry said: read it, repair it */
		mh_log(MH_LOG_DEBUG, "incremental update failed (%s); diffing against the kernel",
		       nl.errmsg);
		nl.err = 0;
		nl.errmsg[0] = 0;
		mh_stats_mut()->nl_msgs += nl.sent;
		nl.sent = 0;
	}
	if (nl_full(&nl, links, n) < 0) {
		snprintf(err, len, "%s", nl.errmsg);
		mh_stats_mut()->nl_msgs += nl.sent;
		nl_close(&nl);
		return -1;
	}
done:
	mh_stats_mut()->nl_msgs += nl.sent;
	rc = 0;
	nl_close(&nl);
	return rc;
}

/* ---- addresses ---- */

struct addr_q {
	const uint32_t *addrs;
	unsigned n;
	int ifindex;
	int hit;                /* index + 1 of the first address found in a foreign prefix */
	char why[96];
};

static int addr_cb(const struct nlmsghdr *h, void *data)
{
	struct addr_q *q = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(h);
	const struct nlattr *a;
	uint32_t local = 0, mask;
	unsigned i;

	if (h->nlmsg_type != RTM_NEWADDR || ifa->ifa_family != AF_INET ||
	    (int)ifa->ifa_index == q->ifindex || q->hit)
		return 0;
	mnl_attr_for_each(a, h, sizeof *ifa)
		if (mnl_attr_get_type(a) == IFA_LOCAL)
			local = mnl_attr_get_u32(a);
	if (!local || ifa->ifa_prefixlen == 0 || ifa->ifa_prefixlen >= 32)
		return 0;
	mask = htonl(0xffffffffu << (32 - ifa->ifa_prefixlen));
	for (i = 0; i < q->n && !q->hit; i++) {
		char ifn[IF_NAMESIZE] = "?", p[INET_ADDRSTRLEN];
		uint32_t net = local & mask;
		if (!q->addrs[i] || (q->addrs[i] & mask) != net)
			continue;
		if_indextoname(ifa->ifa_index, ifn);
		inet_ntop(AF_INET, &net, p, sizeof p);
		snprintf(q->why, sizeof q->why, "%s/%u on %s", p, ifa->ifa_prefixlen, ifn);
		q->hit = (int)i + 1;
	}
	return 0;
}

int mh_nl_addr_foreign_prefix(const uint32_t *addrs, unsigned n, int ifindex, char *why, size_t len)
{
	struct addr_q q = { .addrs = addrs, .n = n, .ifindex = ifindex };
	char buf[128];
	struct nl nl;
	struct nlmsghdr *h;

	if (nl_open(&nl) < 0)
		return 0;
	h = mnl_nlmsg_put_header(buf);
	h->nlmsg_type = RTM_GETADDR;
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(h, sizeof *ifa);
	ifa->ifa_family = AF_INET;
	nl_dump(&nl, h, addr_cb, &q);
	nl_close(&nl);
	if (q.hit)
		snprintf(why, len, "%s", q.why);
	return q.hit;
}
