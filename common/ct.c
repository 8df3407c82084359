/* Conntrack: let pinned flows come home.
 *
 * While a pinned link is down its traffic leaves by another link, NATed to
 * that link's address, and the first reply stamps that link's connmark on
 * the flow.  Without help such a flow (OpenVPN's UDP transport with its
 * keepalive, say) would stay on the fallback forever after the pinned link
 * returns.  So when a link comes up, conntrack entries of outgoing flows
 * that match one of its pins but whose replies come to another address are
 * deleted; the next packet starts a new flow that the pin routes home.
 * Incoming connections (to one of the links' addresses) are never touched.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "internal.h"

#define MAX_DELETE 4096         /* bounded work per event */

struct tuple {
	uint32_t src, dst;
	uint16_t dport;         /* host order */
	uint8_t proto;
};

struct victim {
	char orig[128];         /* the CTA_TUPLE_ORIG attribute, as dumped */
	uint16_t orig_len;
	uint16_t zone;
	int has_zone;
};

struct ct_q {
	const struct mh_link *link;
	const uint32_t *locals;
	unsigned nlocals;
	struct victim *v;
	unsigned n;
};

static void parse_tuple(const struct nlattr *nest, struct tuple *t)
{
	const struct nlattr *a, *b;

	mnl_attr_for_each_nested(a, nest) {
		if (mnl_attr_get_type(a) == CTA_TUPLE_IP) {
			mnl_attr_for_each_nested(b, a) {
				if (mnl_attr_get_type(b) == CTA_IP_V4_SRC)
					t->src = mnl_attr_get_u32(b);
				else if (mnl_attr_get_type(b) == CTA_IP_V4_DST)
					t->dst = mnl_attr_get_u32(b);
			}
		} else if (mnl_attr_get_type(a) == CTA_TUPLE_PROTO) {
			mnl_attr_for_each_nested(b, a) {
				if (mnl_attr_get_type(b) == CTA_PROTO_NUM)
					t->proto = mnl_attr_get_u8(b);
				else if (mnl_attr_get_type(b) == CTA_PROTO_DST_PORT)
					t->dport = ntohs(mnl_attr_get_u16(b));
			}
		}
	}
}

static int pin_matches(const struct mh_pin *p, const struct tuple *t)
{
	if (p->proto && p->proto != t->proto)
		return 0;
	if (p->dst_len && (t->dst & htonl(0xffffffffu << (32 - p->dst_len))) != p->dst)
		return 0;
	if (p->port_lo && (t->dport < p->port_lo || t->dport > p->port_hi))
		return 0;
	return 1;
}

static int ct_cb(const struct nlmsghdr *h, void *data)
{
	struct ct_q *q = data;
	const struct nlattr *a, *orig = NULL;
	struct tuple o = { 0 }, r = { 0 };
	uint32_t status = 0;
	uint16_t zone = 0;
	int has_zone = 0;
	unsigned i;

	mnl_attr_for_each(a, h, sizeof(struct nfgenmsg)) {
		switch (mnl_attr_get_type(a)) {
		case CTA_TUPLE_ORIG: orig = a; parse_tuple(a, &o); break;
		case CTA_TUPLE_REPLY: parse_tuple(a, &r); break;
		case CTA_STATUS: status = ntohl(mnl_attr_get_u32(a)); break;
		case CTA_ZONE: zone = mnl_attr_get_u16(a); has_zone = 1; break;
		}
	}
	/* an outgoing flow (not to one of our link addresses) whose replies come
	 * to an address that is not this link's: it left by another link */
	(void)status;
	if (!orig || r.dst == q->link->local || q->n >= MAX_DELETE ||
	    orig->nla_len > sizeof q->v[0].orig)
		return 0;
	for (i = 0; i < q->nlocals; i++)
		if (o.dst == q->locals[i])
			return 0;
	for (i = 0; i < q->link->cfg.npins; i++)
		if (pin_matches(&q->link->cfg.pins[i], &o))
			break;
	if (i == q->link->cfg.npins)
		return 0;
	memcpy(q->v[q->n].orig, orig, orig->nla_len);
	q->v[q->n].orig_len = orig->nla_len;
	q->v[q->n].zone = zone;
	q->v[q->n].has_zone = has_zone;
	q->n++;
	return 0;
}

static int run(struct mnl_socket *nl, struct nlmsghdr *h, struct ct_q *q)
{
	char buf[32768];
	uint32_t portid = mnl_socket_get_portid(nl);
	ssize_t n;
	int rc;

	if (mnl_socket_sendto(nl, h, h->nlmsg_len) < 0)
		return -1;
	while ((n = mnl_socket_recvfrom(nl, buf, sizeof buf)) > 0) {
		rc = mnl_cb_run(buf, (size_t)n, h->nlmsg_seq, portid, q ? ct_cb : NULL, q);
		if (rc <= MNL_CB_STOP)
			return rc;
	}
	return n < 0 ? -1 : 0;
}

static struct nlmsghdr *ct_msg(char *buf, uint16_t type, uint16_t flags, uint32_t seq)
{
	struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
	struct nfgenmsg *g;

	h->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;
	h->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(h, sizeof *g);
	g->nfgen_family = AF_INET;
	g->version = NFNETLINK_V0;
	g->res_id = 0;
	return h;
}

int mh_ct_wanted(const struct mh_link *link, unsigned nlocals)
{
	/* only another up link can have carried this link's pinned flows (a
	 * down link's NATed flows die with its device) */
	return link->cfg.npins && link->cfg.nat != MH_NAT_OFF && nlocals >= 2;
}

int mh_ct_bring_home(const struct mh_link *link, const uint32_t *locals, unsigned nlocals)
{
	struct ct_q q = { .link = link, .locals = locals, .nlocals = nlocals };
	struct mnl_socket *nl;
	char buf[512];
	uint32_t seq = (uint32_t)time(NULL);
	unsigned i, gone = 0;

	if (!mh_ct_wanted(link, nlocals))
		return 0;
	q.v = malloc(MAX_DELETE * sizeof *q.v);
	nl = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!q.v || !nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		mh_log(MH_LOG_WARN, "%s: conntrack: %s", link->cfg.name, strerror(errno));
		goto out;
	}
	if (run(nl, ct_msg(buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, ++seq), &q) < 0) {
		if (errno != ENOENT && errno != EOPNOTSUPP) /* no conntrack: nothing to do */
			mh_log(MH_LOG_WARN, "%s: conntrack dump: %s", link->cfg.name, strerror(errno));
		goto out;
	}
	for (i = 0; i < q.n; i++) {
		struct nlmsghdr *h = ct_msg(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, ++seq);
		memcpy(mnl_nlmsg_get_payload_tail(h), q.v[i].orig, q.v[i].orig_len);
		h->nlmsg_len += MNL_ALIGN(q.v[i].orig_len);
		if (q.v[i].has_zone)
			mnl_attr_put_u16(h, CTA_ZONE, q.v[i].zone);
		if (run(nl, h, NULL) == 0)
			gone++;
	}
	if (gone)
		mh_log(MH_LOG_INFO, "%s: %u pinned flows that had left by another link restarted",
		       link->cfg.name, gone);
out:
	if (nl)
		mnl_socket_close(nl);
	free(q.v);
	return 0;
}
