/* Conntrack: flows follow the links.
 *
 * An event changes the routes and the firewall, but a flow keeps the
 * conntrack entry it started with: its NAT binding and its connmark (which
 * the egress restores, so the flow keeps its link).  So after an event:
 *
 * - Links withdrawn (ip-down, a vanished interface): every outgoing flow that
 *   left by one (its replies come to that link's address) is deleted.  The
 *   next packet starts a new flow that leaves by a surviving link.  The kernel
 *   does this itself for MASQUERADE (when the device goes, or at the first
 *   packet routed out of another device, which it drops), never for SNAT.
 * - The link that came up: an outgoing UDP flow that matches one of its pins
 *   but left by another link is replaced, in one netlink send, by an entry with
 *   the same original tuple, NATed to the home link's address and carrying its
 *   mark.  Its packets go home at once, with the home address; a late packet of
 *   the far end to the old address cannot start an inbound entry that would
 *   hold the flow on the other link (its reply tuple clashes with ours, and the
 *   kernel drops it).  Other protocols (TCP) are deleted: the next packet leaves
 *   by the pin with another address and the far end resets the connection.
 *
 * Incoming connections (to one of the links' addresses) and flows that left
 * by no link of ours are never touched; nothing is flushed.  The work runs
 * after the event, in pppd's watcher or a detached grandchild (core.c).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "internal.h"
#include "netlink.h"

#define MAX_FLOWS   4096        /* bounded work per event */
#define MAX_RETRIES 4           /* replace attempts that meet a stray entry */

enum action { LET_GO, RESTART, BRING_HOME };

struct flow {
	char orig[128];         /* the CTA_TUPLE_ORIG attribute, as dumped */
	uint16_t orig_len;
	uint16_t zone;          /* network order, as dumped */
	int has_zone;
	uint32_t src, dst;      /* original direction, network order */
	uint16_t sport, dport;  /* network order */
	uint8_t proto;
	uint32_t reply_dst;
	uint32_t mark, status, timeout; /* host order */
	enum action action;
};

struct dump {
	const struct mh_ct_job *job;
	struct flow *f;
	unsigned n, over;       /* over: flows beyond MAX_FLOWS, left alone */
};

struct tuple {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint8_t proto;
};

static const enum mnl_attr_data_type tuple_policy[CTA_TUPLE_MAX + 1] = {
	[CTA_TUPLE_IP] = MNL_TYPE_NESTED, [CTA_TUPLE_PROTO] = MNL_TYPE_NESTED,
};
static const enum mnl_attr_data_type ip_policy[CTA_IP_MAX + 1] = {
	[CTA_IP_V4_SRC] = MNL_TYPE_U32, [CTA_IP_V4_DST] = MNL_TYPE_U32,
};
static const enum mnl_attr_data_type proto_policy[CTA_PROTO_MAX + 1] = {
	[CTA_PROTO_NUM] = MNL_TYPE_U8, [CTA_PROTO_SRC_PORT] = MNL_TYPE_U16,
	[CTA_PROTO_DST_PORT] = MNL_TYPE_U16,
};
static const enum mnl_attr_data_type ct_policy[CTA_MAX + 1] = {
	[CTA_TUPLE_ORIG] = MNL_TYPE_NESTED, [CTA_TUPLE_REPLY] = MNL_TYPE_NESTED,
	[CTA_STATUS] = MNL_TYPE_U32, [CTA_MARK] = MNL_TYPE_U32, [CTA_TIMEOUT] = MNL_TYPE_U32,
	[CTA_ZONE] = MNL_TYPE_U16,
};

/* An IPv4 tuple, every attribute validated: 0, or -1 (not one we know). */
static int parse_tuple(const struct nlattr *nest, struct tuple *t)
{
	const struct nlattr *tb[CTA_TUPLE_MAX + 1], *ip[CTA_IP_MAX + 1], *pr[CTA_PROTO_MAX + 1];

	if (mh_nl_nested(nest, tuple_policy, CTA_TUPLE_MAX, tb) < 0 || !tb[CTA_TUPLE_IP] ||
	    !tb[CTA_TUPLE_PROTO] || mh_nl_nested(tb[CTA_TUPLE_IP], ip_policy, CTA_IP_MAX, ip) < 0 ||
	    mh_nl_nested(tb[CTA_TUPLE_PROTO], proto_policy, CTA_PROTO_MAX, pr) < 0 ||
	    !ip[CTA_IP_V4_SRC] || !ip[CTA_IP_V4_DST] || !pr[CTA_PROTO_NUM])
		return -1;
	t->src = mnl_attr_get_u32(ip[CTA_IP_V4_SRC]);
	t->dst = mnl_attr_get_u32(ip[CTA_IP_V4_DST]);
	t->proto = mnl_attr_get_u8(pr[CTA_PROTO_NUM]);
	t->sport = pr[CTA_PROTO_SRC_PORT] ? mnl_attr_get_u16(pr[CTA_PROTO_SRC_PORT]) : 0;
	t->dport = pr[CTA_PROTO_DST_PORT] ? mnl_attr_get_u16(pr[CTA_PROTO_DST_PORT]) : 0;
	return 0;
}

static int among(uint32_t a, const uint32_t *set, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (set[i] == a)
			return 1;
	return 0;
}

/* What this event means for flow F, or -1: leave it alone. */
static int decide(const struct mh_ct_job *job, const struct flow *f)
{
	const struct mh_link *home = job->home;
	unsigned i;

	if (among(f->dst, job->up, job->nup) || among(f->dst, job->gone, job->ngone))
		return -1;              /* an incoming connection */
	if (among(f->reply_dst, job->gone, job->ngone))
		return LET_GO;          /* it left by a link that is gone */
	if (!home || f->reply_dst == home->local || !among(f->reply_dst, job->up, job->nup))
		return -1;              /* home already, or it left by no link of ours */
	for (i = 0; i < home->cfg.npins; i++)
		if (mh_pin_matches(&home->cfg.pins[i], f->proto, f->dst, ntohs(f->dport)))
			return f->proto == IPPROTO_UDP ? BRING_HOME : RESTART;
	return -1;
}

static int dump_cb(const struct nlmsghdr *h, void *data)
{
	struct dump *d = data;
	const struct nlattr *tb[CTA_MAX + 1], *orig;
	struct tuple o = { 0 }, r = { 0 };
	struct flow *f = &d->f[d->n];
	int action;

	if (d->n >= MAX_FLOWS) {
		d->over++;
		return MNL_CB_OK;
	}
	memset(f, 0, sizeof *f);
	/* an entry we cannot read whole is left alone */
	if (mh_nl_attrs(h, sizeof(struct nfgenmsg), ct_policy, CTA_MAX, tb) < 0 ||
	    !(orig = tb[CTA_TUPLE_ORIG]) || !tb[CTA_TUPLE_REPLY] || orig->nla_len > sizeof f->orig ||
	    parse_tuple(orig, &o) < 0 || parse_tuple(tb[CTA_TUPLE_REPLY], &r) < 0)
		return MNL_CB_OK;
	if (tb[CTA_STATUS])
		f->status = ntohl(mnl_attr_get_u32(tb[CTA_STATUS]));
	if (tb[CTA_MARK])
		f->mark = ntohl(mnl_attr_get_u32(tb[CTA_MARK]));
	if (tb[CTA_TIMEOUT])
		f->timeout = ntohl(mnl_attr_get_u32(tb[CTA_TIMEOUT]));
	if (tb[CTA_ZONE]) {
		f->zone = mnl_attr_get_u16(tb[CTA_ZONE]);
		f->has_zone = 1;
	}
	f->src = o.src;
	f->dst = o.dst;
	f->sport = o.sport;
	f->dport = o.dport;
	f->proto = o.proto;
	f->reply_dst = r.dst;
	action = decide(d->job, f);
	if (action < 0)
		return MNL_CB_OK;
	f->action = (enum action)action;
	memcpy(f->orig, orig, orig->nla_len);
	f->orig_len = orig->nla_len;
	d->n++;
	return MNL_CB_OK;
}

/* An interrupted dump is read again from the start. */
static void dump_reset(void *data)
{
	struct dump *d = data;

	d->n = d->over = 0;
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

/* The flow's original tuple and zone: what names it to the kernel. */
static void put_flow(struct nlmsghdr *h, const struct flow *f)
{
	memcpy(mnl_nlmsg_get_payload_tail(h), f->orig, f->orig_len);
	h->nlmsg_len += MNL_ALIGN(f->orig_len);
	if (f->has_zone)
		mnl_attr_put_u16(h, CTA_ZONE, f->zone);
}

/* The entry that replaces F: F's original tuple, replies (before NAT) as
 * F's would be, source NAT to the home link's address, the home link's mark
 * in our bits, F's timeout and reply state. */
static void put_home_entry(struct nlmsghdr *h, const struct flow *f, const struct mh_ct_job *job)
{
	struct nlattr *reply, *n;
	uint32_t mark = (f->mark & ~job->ours) | job->home->cfg.mark;

	put_flow(h, f);
	reply = mnl_attr_nest_start(h, CTA_TUPLE_REPLY);
	n = mnl_attr_nest_start(h, CTA_TUPLE_IP);
	mnl_attr_put_u32(h, CTA_IP_V4_SRC, f->dst);
	mnl_attr_put_u32(h, CTA_IP_V4_DST, f->src);
	mnl_attr_nest_end(h, n);
	n = mnl_attr_nest_start(h, CTA_TUPLE_PROTO);
	mnl_attr_put_u8(h, CTA_PROTO_NUM, f->proto);
	mnl_attr_put_u16(h, CTA_PROTO_SRC_PORT, f->dport);
	mnl_attr_put_u16(h, CTA_PROTO_DST_PORT, f->sport);
	mnl_attr_nest_end(h, n);
	mnl_attr_nest_end(h, reply);
	n = mnl_attr_nest_start(h, CTA_NAT_SRC);
	mnl_attr_put_u32(h, CTA_NAT_V4_MINIP, job->home->local);
	mnl_attr_put_u32(h, CTA_NAT_V4_MAXIP, job->home->local);
	mnl_attr_nest_end(h, n);
	mnl_attr_put_u32(h, CTA_TIMEOUT, htonl(f->timeout ? f->timeout : 1));
	mnl_attr_put_u32(h, CTA_MARK, htonl(mark));
	/* CONFIRMED: the kernel sets it on a created entry before our status, and
	 * refuses a status that would clear it (EBUSY) */
	mnl_attr_put_u32(h, CTA_STATUS,
			 htonl(IPS_CONFIRMED | (f->status & (IPS_SEEN_REPLY | IPS_ASSURED))));
}

/* Send the NMSG messages in BUF (consecutive seqs from SEQ, each with an
 * ACK) in one sendmsg and collect each one's error (0 = done) in ERRS. */
static int send_all(struct mh_nl *nl, const char *buf, size_t len, uint32_t seq,
		    unsigned nmsg, int *errs)
{
	char rbuf[8192];
	unsigned i, left = nmsg;
	ssize_t n;

	for (i = 0; i < nmsg; i++)
		errs[i] = EINPROGRESS;
	if (mnl_socket_sendto(nl->sock, buf, len) < 0)
		return -1;
	while (left && (n = mnl_socket_recvfrom(nl->sock, rbuf, sizeof rbuf)) > 0) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)rbuf;
		int size = (int)n;

		for (; mh_nlmsg_ok(h, size); h = mnl_nlmsg_next(h, &size)) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
			uint32_t k = h->nlmsg_seq - seq;

			if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_len < mnl_nlmsg_size(sizeof *e) ||
			    h->nlmsg_pid != nl->portid || k >= nmsg || errs[k] != EINPROGRESS)
				continue;
			errs[k] = -e->error;
			left--;
		}
	}
	return left ? -1 : 0;
}

static int delete_flow(struct mh_nl *nl, const struct flow *f, uint32_t *seq)
{
	char buf[512];
	int err;
	struct nlmsghdr *h = ct_msg(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, ++*seq);

	put_flow(h, f);
	if (send_all(nl, buf, h->nlmsg_len, *seq, 1, &err) < 0)
		return -1;
	return err == 0 || err == ENOENT ? 0 : (errno = err, -1);
}

/* Delete F and create its home entry in one send.  Whatever holds F's tuple
 * by then (F, or an entry the far end's packet started in the moment between
 * the two) is deleted, so the create can only meet one that arrived later. */
static int bring_home(struct mh_nl *nl, const struct flow *f, const struct mh_ct_job *job,
		      uint32_t *seq)
{
	char buf[1024];
	int errs[2], attempt;

	for (attempt = 0; attempt < MAX_RETRIES; attempt++) {
		struct nlmsghdr *del, *add;
		uint32_t first = *seq + 1;

		del = ct_msg(buf, IPCTNL_MSG_CT_DELETE, NLM_F_ACK, ++*seq);
		put_flow(del, f);
		add = ct_msg(buf + del->nlmsg_len, IPCTNL_MSG_CT_NEW,
			     NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, ++*seq);
		put_home_entry(add, f, job);
		if (send_all(nl, buf, del->nlmsg_len + add->nlmsg_len, first, 2, errs) < 0)
			return -1;
		if (errs[1] == 0)
			return 0;
		if (errs[1] != EEXIST && errs[1] != EAGAIN)
			break;
	}
	errno = errs[1];
	return -1;
}

static const char *addr_text(uint32_t a, char *buf)
{
	return inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
}

static void report(const struct mh_ct_job *job, const unsigned *done, const unsigned *failed,
		   int last_errno)
{
	char names[256] = "", a[INET_ADDRSTRLEN];
	size_t at = 0;
	unsigned i;

	for (i = 0; i < job->ngone && at < sizeof names; i++)
		at += (size_t)snprintf(names + at, sizeof names - at, "%s%s (%s)", i ? ", " : "",
				       job->gone_name[i], addr_text(job->gone[i], a));
	if (done[LET_GO])
		mh_log(MH_LOG_INFO, "%u flows that had left by %s deleted: they go on by the links "
		       "that are up", done[LET_GO], names);
	if (done[BRING_HOME] || done[RESTART])
		mh_log(MH_LOG_INFO, "%s: %u pinned UDP flows that had left by another link brought home, "
		       "%u other pinned flows restarted", job->home->cfg.name, done[BRING_HOME], done[RESTART]);
	if (failed[LET_GO] || failed[RESTART] || failed[BRING_HOME])
		mh_log(MH_LOG_WARN, "conntrack: %u flows could not be moved: %s",
		       failed[LET_GO] + failed[RESTART] + failed[BRING_HOME], strerror(last_errno));
}

static int act(struct mh_nl *nl, const struct flow *f, const struct mh_ct_job *job,
	       uint32_t *seq)
{
	if (f->action == BRING_HOME)
		return bring_home(nl, f, job, seq);
	return delete_flow(nl, f, seq);
}

/* No entry in this namespace's table: nothing to move, and no dump (which
 * walks every bucket of the host's table: about 12 ms for 262144 buckets). */
static int table_empty(void)
{
	char buf[32];
	ssize_t n;
	int fd = open("/proc/sys/net/netfilter/nf_conntrack_count", O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	return n == 2 && buf[0] == '0' && buf[1] == '\n';
}

int mh_ct_wanted(const struct mh_ct_job *job)
{
	const struct mh_link *home = job->home;

	/* only another up link can have carried the home link's pinned flows */
	if (!(home && home->cfg.npins && home->cfg.nat != MH_NAT_OFF && job->nup >= 2) && !job->ngone)
		return 0;
	return !table_empty();
}

void mh_ct_run(const struct mh_ct_job *job)
{
	struct dump d = { .job = job };
	struct mh_nl nl = { 0 };
	char buf[512];
	unsigned i, done[3] = { 0 }, failed[3] = { 0 };
	int last_errno = 0;

	d.f = malloc(MAX_FLOWS * sizeof *d.f);
	if (!d.f || mh_nl_open(&nl, NETLINK_NETFILTER) < 0) {
		mh_log(MH_LOG_WARN, "conntrack: %s", strerror(errno));
		goto out;
	}
	if (mh_nl_query(&nl, ct_msg(buf, IPCTNL_MSG_CT_GET, NLM_F_DUMP, 0), dump_cb, &d,
			dump_reset) < 0) {
		mh_log(MH_LOG_WARN, "conntrack dump: %s (no nf_conntrack_netlink?): flows are not moved",
		       strerror(errno));
		goto out;
	}
	for (i = 0; i < d.n; i++) {
		if (act(&nl, &d.f[i], job, &nl.seq) == 0) {
			done[d.f[i].action]++;
		} else {
			failed[d.f[i].action]++;
			last_errno = errno;
		}
	}
	report(job, done, failed, last_errno);
	if (d.over)
		mh_log(MH_LOG_WARN, "conntrack: more than %d flows to move; %u entries were not looked at",
		       MAX_FLOWS, d.over);
out:
	mh_nl_close(&nl);
	free(d.f);
}
