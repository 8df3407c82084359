/* Traffic counters: see counters.h.
 *
 * Every packet that arrives on an up link stamps the link's bits into its
 * flow's connmark (the ingress rules), so "the flows a link carries" are the
 * conntrack entries whose mark matches the link's mark/mask.  The kernel has
 * no per-mark count, but it filters a dump by mark: only that link's entries
 * cross into user space, which counts them.  An entry is outgoing when its
 * original destination is not an address of this host (an incoming
 * connection's is), and balanced when it is outgoing and matches no pin of
 * an up link: those are the flows whose link the balanced default route
 * chose, the ones whose split is compared with the configured weights.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/if_addr.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <linux/rtnetlink.h>

#include "counters.h"

struct ct_tuple {
	uint32_t src, dst;      /* network order */
	uint16_t dport;         /* host order; 0 without ports */
	uint8_t proto;
	int v4;                 /* an IPv4 destination was there */
};

static const enum mnl_attr_data_type ct_policy[CTA_MAX + 1] = {
	[CTA_TUPLE_ORIG] = MNL_TYPE_NESTED,
	[CTA_MARK]       = MNL_TYPE_U32,
};

static const enum mnl_attr_data_type tuple_policy[CTA_TUPLE_MAX + 1] = {
	[CTA_TUPLE_IP]    = MNL_TYPE_NESTED,
	[CTA_TUPLE_PROTO] = MNL_TYPE_NESTED,
};

static const enum mnl_attr_data_type ip_policy[CTA_IP_MAX + 1] = {
	[CTA_IP_V4_SRC] = MNL_TYPE_U32,
	[CTA_IP_V4_DST] = MNL_TYPE_U32,
};

static const enum mnl_attr_data_type proto_policy[CTA_PROTO_MAX + 1] = {
	[CTA_PROTO_NUM]      = MNL_TYPE_U8,
	[CTA_PROTO_DST_PORT] = MNL_TYPE_U16,
};

static int parse_tuple(const struct nlattr *nest, struct ct_tuple *t)
{
	const struct nlattr *tb[CTA_TUPLE_MAX + 1], *ip[CTA_IP_MAX + 1], *pr[CTA_PROTO_MAX + 1];

	memset(t, 0, sizeof *t);
	if (mh_nl_nested(nest, tuple_policy, CTA_TUPLE_MAX, tb) < 0)
		return -1;
	if (tb[CTA_TUPLE_IP]) {
		if (mh_nl_nested(tb[CTA_TUPLE_IP], ip_policy, CTA_IP_MAX, ip) < 0)
			return -1;
		if (ip[CTA_IP_V4_SRC])
			t->src = mnl_attr_get_u32(ip[CTA_IP_V4_SRC]);
		if (ip[CTA_IP_V4_DST]) {
			t->dst = mnl_attr_get_u32(ip[CTA_IP_V4_DST]);
			t->v4 = 1;
		}
	}
	if (tb[CTA_TUPLE_PROTO]) {
		if (mh_nl_nested(tb[CTA_TUPLE_PROTO], proto_policy, CTA_PROTO_MAX, pr) < 0)
			return -1;
		if (pr[CTA_PROTO_NUM])
			t->proto = mnl_attr_get_u8(pr[CTA_PROTO_NUM]);
		if (pr[CTA_PROTO_DST_PORT])
			t->dport = ntohs(mnl_attr_get_u16(pr[CTA_PROTO_DST_PORT]));
	}
	return 0;
}

/* As the firewall matches a pin: on the flow's first packet, before NAT. */
static int balanced(const struct mh_ct_class *c, const struct ct_tuple *t)
{
	unsigned i;

	for (i = 0; i < c->nlocals; i++)
		if (t->dst == c->locals[i])
			return 0;       /* incoming: to an address of this host */
	for (i = 0; i < c->npins; i++)
		if (mh_pin_matches(&c->pins[i], t->proto, t->dst, t->dport))
			return 0;
	return 1;
}

/* The link's own upstream probe (ICMP from its address to a target) is
 * not the user's traffic. */
static int probe(const struct mh_ct_class *c, const struct ct_tuple *t)
{
	unsigned i;

	if (t->proto != IPPROTO_ICMP || !c->probe_src || t->src != c->probe_src)
		return 0;
	for (i = 0; i < c->nprobe_dst; i++)
		if (t->dst == c->probe_dst[i])
			return 1;
	return 0;
}

int mh_ct_tally_msg(const struct nlmsghdr *h, const struct mh_ct_class *c, struct mh_ct_tally *t)
{
	const struct nlattr *tb[CTA_MAX + 1];
	struct ct_tuple orig;

	if (h->nlmsg_type != ((NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_NEW))
		return 0;
	if (mh_nl_attrs(h, sizeof(struct nfgenmsg), ct_policy, CTA_MAX, tb) < 0)
		return -1;
	/* the kernel filtered by mark; a kernel that did not is caught here */
	if (!tb[CTA_MARK] || (ntohl(mnl_attr_get_u32(tb[CTA_MARK])) & c->mask) != c->mark ||
	    !tb[CTA_TUPLE_ORIG])
		return 0;
	if (parse_tuple(tb[CTA_TUPLE_ORIG], &orig) < 0) {
		errno = EINVAL;
		return -1;
	}
	if (!orig.v4 || probe(c, &orig))
		return 0;
	t->flows++;
	t->balanced += (unsigned long long)balanced(c, &orig);
	return 0;
}

struct tally_run {
	const struct mh_ct_class *c;
	struct mh_ct_tally *t;
};

static int tally_cb(const struct nlmsghdr *h, void *data)
{
	struct tally_run *r = data;

	return mh_ct_tally_msg(h, r->c, r->t) < 0 ? MNL_CB_ERROR : MNL_CB_OK;
}

static void tally_reset(void *data)
{
	memset(((struct tally_run *)data)->t, 0, sizeof(struct mh_ct_tally));
}

int mh_ct_tally(struct mh_nl *nl, const struct mh_ct_class *c, struct mh_ct_tally *t)
{
	char buf[128];
	struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;
	struct tally_run run = { c, t };

	memset(t, 0, sizeof *t);
	h->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	g = mnl_nlmsg_put_extra_header(h, sizeof *g);
	g->nfgen_family = AF_INET;
	g->version = NFNETLINK_V0;
	g->res_id = 0;
	mnl_attr_put_u32(h, CTA_MARK, htonl(c->mark));
	mnl_attr_put_u32(h, CTA_MARK_MASK, htonl(c->mask));
	return mh_nl_query(nl, h, tally_cb, &run, tally_reset);
}

/* ---- the host's addresses ---- */

struct addr_run {
	uint32_t *v;
	unsigned n, cap;
};

static const enum mnl_attr_data_type addr_policy[IFA_MAX + 1] = {
	[IFA_LOCAL]   = MNL_TYPE_U32,
	[IFA_ADDRESS] = MNL_TYPE_U32,
};

static int addr_cb(const struct nlmsghdr *h, void *data)
{
	struct addr_run *r = data;
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(h);
	const struct nlattr *tb[IFA_MAX + 1];
	const struct nlattr *a;

	if (h->nlmsg_type != RTM_NEWADDR)
		return MNL_CB_OK;
	if (mh_nl_attrs(h, sizeof *ifa, addr_policy, IFA_MAX, tb) < 0)
		return MNL_CB_ERROR;
	if (ifa->ifa_family != AF_INET)
		return MNL_CB_OK;
	a = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS]; /* IFA_LOCAL: ours on a p-t-p link */
	if (!a)
		return MNL_CB_OK;
	if (r->n == r->cap) {
		unsigned cap = r->cap ? 2 * r->cap : 16;
		uint32_t *v = realloc(r->v, cap * sizeof *v);
		if (!v)
			return MNL_CB_ERROR;
		r->v = v;
		r->cap = cap;
	}
	r->v[r->n++] = mnl_attr_get_u32(a);
	return MNL_CB_OK;
}

static void addr_reset(void *data)
{
	((struct addr_run *)data)->n = 0;
}

int mh_host_addrs(struct mh_nl *nl, uint32_t **addrs, unsigned *n)
{
	struct addr_run run = { 0 };
	struct ifaddrmsg ifa = { .ifa_family = AF_INET };

	if (mh_nl_dump(nl, RTM_GETADDR, &ifa, sizeof ifa, addr_cb, &run, addr_reset) < 0) {
		int e = errno;
		free(run.v);
		errno = e;
		return -1;
	}
	*addrs = run.v;
	*n = run.n;
	return 0;
}
