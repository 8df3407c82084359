/* mh-bench-floor: the floor column of `make bench` -- what the kernel alone
 * costs for the messages one link event of multihome sends.
 *
 *   mh-bench-floor --link NAME --ifname IF --local A [--remote A] [--repeat N]
 *                  [--groups N]
 *
 * Run where multihome left the link NAME registered but down (the bench's
 * case namespace after the harness's `repeat N up down`), with the same
 * MULTIHOME_RUNDIR and MULTIHOME_FIREWALL.  Untimed, it reads the registry
 * once, makes the plans before and after NAME comes up, and builds with the
 * core's own diff and writers the very messages an up and a down event send
 * (the netlink batch, and the nftables batch or the libiptc tables).  Timed,
 * N times, it sends only those: one netlink batch with its ACKs, then one
 * nftables batch (or per changed table: iptc_init, rebuild, iptc_commit) --
 * no registry, no lock, no checks, no diff, sockets opened once.  Every
 * answer is checked: a refused message ends the run (exit 1).
 *
 * Prints "event up|down usec N netlink N1 firewall N2" per event (the
 * harness's --time format, then the two halves) and on stderr what one event
 * sends.
 *
 * --groups N then measures what replacing the balanced group costs with the
 * kernel's two kinds of group, on two groups of its own (ids no link uses,
 * no route over them, deleted after) with the other links as members:
 * "group mpath usec T" / "group resilient usec T", N replaces of each.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <net/if.h>
#include <linux/nexthop.h>
#include <linux/rtnetlink.h>

#include "internal.h"

#define CHUNK 32768             /* bytes per sendto, as the core's batches */

struct rt_batch {               /* a built netlink batch, ready to send */
	char *buf;
	size_t len;
	unsigned n;
	int *ok_errno;
};

struct event {
	struct rt_batch rt;
	char *nft;              /* nftables batch (nft backend) */
	size_t nft_len;
	unsigned tables;        /* iptables tables to commit (iptables backend) */
	const struct mh_plan *want;
};

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "mh-bench-floor: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static long long now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* The links of the registry, NAME's entry marked up (UP) on IF. */
static void links_of(const struct mh_registry *r, const char *name, int up, const char *ifname,
		     uint32_t local, uint32_t peer, struct mh_link *out)
{
	unsigned i;
	int found = 0;

	memcpy(out, r->links, r->n * sizeof *out);
	for (i = 0; i < r->n; i++) {
		struct mh_link *l = &out[i];
		if (strcmp(l->cfg.name, name))
			continue;
		found = 1;
		l->up = up;
		l->online = 1;
		snprintf(l->ifname, sizeof l->ifname, "%s", ifname);
		l->ifindex = (int)if_nametoindex(ifname);
		l->local = local;
		l->peer = peer;
		if (up && !l->ifindex)
			die("interface %s does not exist", ifname);
	}
	if (!found)
		die("no link %s in the registry", name);
}

static void plan(const struct mh_link *links, unsigned n, struct mh_plan *p)
{
	struct mh_plan_input in = { .links = links, .n = n, .nexthops = mh_nexthops_supported(),
				    .backend = mh_fw_backend() };

	if (mh_plan_build(&in, p) < 0)
		die("out of memory");
}

static int plan_index(const struct mh_plan *p, const char *name)
{
	unsigned i;

	for (i = 0; i < p->nlinks; i++)
		if (!strcmp(p->links[i].name, name))
			return (int)i;
	return -1;
}

/* The netlink messages of the event from HAVE to WANT, as the incremental
 * path of mh_routing_apply builds them. */
static void build_rt(struct mh_plan *want, struct mh_plan *have, int touched, struct rt_batch *out)
{
	struct mh_rt_diff_args args = { .delta = 1, .touched = touched };
	struct mh_rt_ops ops = { 0 };
	struct mh_nl_batch b;
	unsigned i;

	if (mh_rt_diff(&want->rt, &have->rt, &args, &ops) < 0)
		die("out of memory");
	mh_nl_batch_init(&b, NULL);
	mh_rt_build(&b, &want->rt, &ops, 1);
	if (b.err)
		die("building the netlink batch: %s", b.errmsg);
	out->buf = b.buf;
	out->len = b.used;
	out->n = b.n;
	out->ok_errno = calloc(b.n ? b.n : 1, sizeof *out->ok_errno);
	if (!out->ok_errno)
		die("out of memory");
	for (i = 0; i < b.n; i++)
		out->ok_errno[i] = b.info[i].ok_errno;
	b.buf = NULL;
	mh_nl_batch_free(&b);
	mh_rt_ops_free(&ops);
}

/* Number the messages SEQ, SEQ+1, ... so that each ACK names its message. */
static void number(struct rt_batch *rb, uint32_t seq)
{
	struct nlmsghdr *h = (struct nlmsghdr *)rb->buf;
	int left = (int)rb->len;

	for (; mh_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left))
		h->nlmsg_seq = seq++;
}

static void build_fw(struct mh_plan *want, struct mh_plan *have, struct event *ev)
{
	ev->want = want;
	if (want->fw.backend == MH_FW_NFT) {
		if (mh_fw_nft_delta_batch(want, have, &ev->nft, &ev->nft_len) < 0)
			die("building the nftables batch: %s", errno == EAGAIN ?
			    "the event would read chain egress (pins): not a floor case" : strerror(errno));
	} else {
		ev->tables = mh_fw_iptc_changed_tables(have, want);
	}
}

/* Mark the last message of every chunk (CHUNK bytes at most, cut at message
 * boundaries, as the core sends them) for an ACK: the kernel answers every
 * failed message anyway.  Returns the number of chunks. */
static unsigned chunk(struct rt_batch *rb, size_t *ends, unsigned max)
{
	size_t off = 0;
	unsigned n = 0;

	while (off < rb->len && n < max) {
		size_t end = off, last = off;
		while (end < rb->len) {
			const struct nlmsghdr *h = (const struct nlmsghdr *)(rb->buf + end);
			if (end > off && end - off + h->nlmsg_len > CHUNK)
				break;
			last = end;
			end += NLMSG_ALIGN(h->nlmsg_len);
		}
		((struct nlmsghdr *)(rb->buf + last))->nlmsg_flags |= NLM_F_ACK;
		ends[n++] = end;
		off = end;
	}
	return n;
}

/* Send each chunk and read its answers up to its last message's ACK. */
static void send_rt(struct mh_nl *nl, const struct rt_batch *rb, uint32_t seq)
{
	static char rbuf[65536];
	size_t ends[64], off = 0;
	unsigned nchunks = chunk((struct rt_batch *)rb, ends, 64), c;

	for (c = 0; c < nchunks; off = ends[c++]) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)(rb->buf + off), *last = h;
		int done = 0, left = (int)(ends[c] - off);
		for (; mh_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left))
			last = h;
		if (mnl_socket_sendto(nl->sock, rb->buf + off, ends[c] - off) < 0)
			die("netlink send: %s", strerror(errno));
		while (!done) {
			ssize_t r = mnl_socket_recvfrom(nl->sock, rbuf, sizeof rbuf);
			const struct nlmsghdr *a = (const struct nlmsghdr *)rbuf;
			int len = (int)r;
			if (r < 0)
				die("netlink receive: %s", strerror(errno));
			for (; mh_nlmsg_ok(a, len); a = mnl_nlmsg_next(a, &len)) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(a);
				unsigned idx = a->nlmsg_seq - seq;
				if (a->nlmsg_type != NLMSG_ERROR || idx >= rb->n)
					continue;
				if (e->error && -e->error != rb->ok_errno[idx])
					die("netlink message %u of the batch refused: %s", idx + 1,
					    strerror(-e->error));
				done |= a->nlmsg_seq == last->nlmsg_seq;
			}
		}
	}
}

static void send_nft(struct mh_nl *nl, const struct event *ev)
{
	static char rbuf[65536];
	ssize_t r;

	if (mnl_socket_sendto(nl->sock, ev->nft, ev->nft_len) < 0)
		die("nftables send: %s", strerror(errno));
	/* the kernel runs the batch inside sendmsg: an error is queued by now */
	while ((r = recv(mnl_socket_get_fd(nl->sock), rbuf, sizeof rbuf, MSG_DONTWAIT)) > 0) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)rbuf;
		int len = (int)r;
		for (; mh_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
			if (h->nlmsg_type == NLMSG_ERROR && e->error)
				die("nftables batch refused: %s", strerror(-e->error));
		}
	}
}

/* ---- --groups: replacing a group, multipath or resilient ---- */

#define GROUP_MPATH (MH_NH_ID_BASE + 0xfff0)    /* no slot's, not the balanced group's */
#define GROUP_RES   (MH_NH_ID_BASE + 0xfff1)

/* One RTM_NEWNEXTHOP (create or replace) of group ID with N of MEMBERS, or
 * its delete (N < 0); answered with an ACK.  Its time in us. */
static long long group_msg(struct mh_nl *nl, uint32_t id, int resilient, const struct mh_member *m,
			   int n)
{
	static char buf[16384], rbuf[4096];
	struct nlmsghdr *h = mnl_nlmsg_put_header(memset(buf, 0, sizeof buf));
	struct nhmsg *nhm;
	long long t;
	int i;

	h->nlmsg_type = n < 0 ? RTM_DELNEXTHOP : RTM_NEWNEXTHOP;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | (n < 0 ? 0 : NLM_F_CREATE | NLM_F_REPLACE);
	h->nlmsg_seq = ++nl->seq;
	nhm = mnl_nlmsg_put_extra_header(h, sizeof *nhm);
	nhm->nh_family = AF_UNSPEC;
	mnl_attr_put_u32(h, NHA_ID, id);
	if (n >= 0) {
		struct nexthop_grp g[MH_MAX_LINKS];
		for (i = 0; i < n && i < MH_MAX_LINKS; i++)
			g[i] = (struct nexthop_grp){ .id = m[i].id, .weight = (uint8_t)(m[i].weight - 1) };
		mnl_attr_put(h, NHA_GROUP, (size_t)i * sizeof *g, g);
		if (resilient) {
			struct nlattr *a;
			mnl_attr_put_u16(h, NHA_GROUP_TYPE, NEXTHOP_GRP_TYPE_RES);
			a = mnl_attr_nest_start(h, NHA_RES_GROUP);
			mnl_attr_put_u16(h, NHA_RES_GROUP_BUCKETS, 512);
			mnl_attr_nest_end(h, a);
		}
	}
	t = now_usec();
	if (mnl_socket_sendto(nl->sock, h, h->nlmsg_len) < 0 ||
	    mnl_socket_recvfrom(nl->sock, rbuf, sizeof rbuf) < (ssize_t)sizeof(struct nlmsghdr))
		die("group %s: %s", resilient ? "resilient" : "mpath", strerror(errno));
	t = now_usec() - t;
	h = (struct nlmsghdr *)rbuf;
	if (h->nlmsg_type == NLMSG_ERROR && ((struct nlmsgerr *)mnl_nlmsg_get_payload(h))->error)
		die("group %s of %d members refused: %s", resilient ? "resilient" : "mpath", n,
		    strerror(-((struct nlmsgerr *)mnl_nlmsg_get_payload(h))->error));
	return t;
}

/* Replacing a group of G's members (the other links: the measured one is
 * down), REPEAT times each kind: what a group replace costs at this size. */
static void groups(struct mh_nl *nl, const struct mh_routing *g, long repeat)
{
	static const char *const kind[2] = { "mpath", "resilient" };
	int n = (int)g->ngroup, r;
	long i;

	if (n < 1)
		return;
	for (r = 0; r < 2; r++) {
		uint32_t id = r ? GROUP_RES : GROUP_MPATH;
		group_msg(nl, id, r, g->group, n);
		for (i = 0; i < repeat; i++)
			printf("group %s usec %lld\n", kind[r], group_msg(nl, id, r, g->group, n));
		group_msg(nl, id, r, NULL, -1);
	}
}

/* One event: "event up|down usec TOTAL netlink NL firewall FW". */
static void run(const char *what, struct mh_nl *rt, struct mh_nl *nft, const struct event *ev,
		uint32_t seq)
{
	char err[MH_ERR_MAX];
	long long t0 = now_usec(), t1;

	if (ev->rt.n)
		send_rt(rt, &ev->rt, seq);
	t1 = now_usec();
	if (ev->nft)
		send_nft(nft, ev);
	if (ev->tables && mh_fw_iptc_commit_tables(ev->want, ev->tables, err, sizeof err) < 0)
		die("%s", err);
	printf("event %s usec %lld netlink %lld firewall %lld\n", what, now_usec() - t0, t1 - t0,
	       now_usec() - t1);
}

static void describe(const char *what, const struct event *ev)
{
	fprintf(stderr, "mh-bench-floor: %s: %u netlink messages (%zu bytes)", what, ev->rt.n, ev->rt.len);
	if (ev->nft)
		fprintf(stderr, ", one nftables batch (%zu bytes)", ev->nft_len);
	else
		fprintf(stderr, ", libiptc tables committed:%s%s%s", ev->tables & 1 ? " mangle" : "",
			ev->tables & 2 ? " nat" : "", ev->tables ? "" : " none");
	fputc('\n', stderr);
}

static uint32_t addr_arg(const char *s)
{
	struct in_addr a;

	if (inet_pton(AF_INET, s, &a) != 1)
		die("bad address '%s'", s);
	return a.s_addr;
}

int main(int argc, char **argv)
{
	const char *name = NULL, *ifname = NULL;
	uint32_t local = 0, peer = 0;
	long repeat = 100, group_repeat = 0, i;
	struct mh_registry r;
	struct mh_link *down, *up;
	struct mh_plan before, after;
	struct event ev_up = { 0 }, ev_down = { 0 };
	struct mh_nl rt = { 0 }, nft = { 0 };
	char err[MH_ERR_MAX];
	int k, sz = 4 << 20;

	for (k = 1; k + 1 < argc; k += 2) {
		if (!strcmp(argv[k], "--link")) name = argv[k + 1];
		else if (!strcmp(argv[k], "--ifname")) ifname = argv[k + 1];
		else if (!strcmp(argv[k], "--local")) local = addr_arg(argv[k + 1]);
		else if (!strcmp(argv[k], "--remote")) peer = addr_arg(argv[k + 1]);
		else if (!strcmp(argv[k], "--repeat")) repeat = strtol(argv[k + 1], NULL, 10);
		else if (!strcmp(argv[k], "--groups")) group_repeat = strtol(argv[k + 1], NULL, 10);
		else die("unknown option '%s'", argv[k]);
	}
	if (k != argc || !name || !ifname || !local || repeat < 1)
		die("usage: mh-bench-floor --link NAME --ifname IF --local A [--remote A] [--repeat N] "
		    "[--groups N]");

	if (mh_reg_open(&r, err, sizeof err) < 0)
		die("registry: %s", err);
	down = malloc((r.n ? r.n : 1) * sizeof *down);
	up = malloc((r.n ? r.n : 1) * sizeof *up);
	if (!down || !up)
		die("out of memory");
	links_of(&r, name, 0, ifname, local, peer, down);
	links_of(&r, name, 1, ifname, local, peer, up);
	plan(down, r.n, &before);
	plan(up, r.n, &after);
	build_rt(&after, &before, plan_index(&after, name), &ev_up.rt);
	build_rt(&before, &after, -1, &ev_down.rt);
	build_fw(&after, &before, &ev_up);
	build_fw(&before, &after, &ev_down);
	mh_reg_close(&r);
	describe("up", &ev_up);
	describe("down", &ev_down);

	if (mh_nl_open(&rt, NETLINK_ROUTE) < 0 || mh_nl_open(&nft, NETLINK_NETFILTER) < 0)
		die("netlink socket: %s", strerror(errno));
	setsockopt(mnl_socket_get_fd(nft.sock), SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz);
	setsockopt(mnl_socket_get_fd(nft.sock), SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz);
	number(&ev_up.rt, 1);
	number(&ev_down.rt, 100001);
	for (i = 0; i < repeat; i++) {
		run("up", &rt, &nft, &ev_up, 1);
		run("down", &rt, &nft, &ev_down, 100001);
	}
	if (group_repeat > 0 && before.rt.nexthops)
		groups(&rt, &before.rt, group_repeat);
	mh_nl_close(&rt);
	mh_nl_close(&nft);
	return 0;
}
