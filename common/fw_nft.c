/* Firewall backend: nftables through libnftnl, over one libmnl socket.
 *
 * Everything lives in table `ip multihome`; per-link state is map elements
 * and small chains whose names say what they hold, so that an event reads
 * one element dump (ingress) and one short chain (egress), derives the other
 * maps from the ingress chain names, and sends only the difference as one
 * atomic batch (NFNL_MSG_BATCH_BEGIN ... END); nothing outside the table is
 * read.  A failed batch changed nothing: the whole table is read and the
 * batch built again, once.  Needs only CAP_NET_ADMIN.
 *
 *   map ingress { type ifname : verdict }   "ppp0" : goto in_isp1_0x1_0x1_m
 *                                           (up_... with reply-via-link off: an empty
 *                                           chain; NAT suffix _m, _n or _sADDR)
 *   map restore { type mark : verdict }     0x1 : goto rs_isp1_0x1_0x1
 *   set masq    { type ifname }             "ppp0"
 *   map srcaddr { type ifname : ipv4_addr } "ppp1" : 100.64.2.2   (nat snat)
 *   chain in_NAME_V_M_NAT  ct mark set ct mark & ~M | V       (ingress)
 *   chain rs_NAME_V_M   meta mark set meta mark & ~M | V accept (restore)
 *   chain pin_NAME_HASH one rule per pin: MATCH meta mark set meta mark & ~M | V accept
 *   chain egress  (the legacy MULTIHOME-MARK)
 *       meta mark set meta mark & ~OURS        } "multihome mask OURS":
 *       ct mark & OURS vmap @restore           } replaced by handle when
 *       ct mark & OURS != 0 accept             } OURS changes (O(1))
 *       jump pin_NAME_HASH ...                 one per link with pins, by priority
 *   chain prerouting  filter, hook prerouting, priority mangle
 *       iifname vmap @ingress ; jump egress
 *   chain output      route, hook output, priority mangle:  jump egress
 *   chain postrouting nat, hook postrouting, priority srcnat
 *       oifname @masq masquerade ; snat to oifname map @srcaddr
 *
 * A per-link chain's name carries everything its content depends on (link
 * name, mark value and mask, a hash of the pins), so a chain referenced by
 * the kernel's maps or jumps is right by its name: it is created when first
 * referenced and deleted in the batch that drops its last reference.
 * With no link up the table is deleted.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "internal.h"

#define TABLE   "multihome"
#define FAMILY  NFPROTO_IPV4
#define CH_EGRESS "egress"
#define SET_INGRESS "ingress"
#define SET_RESTORE "restore"
#define SET_MASQ    "masq"
#define SET_SNAT    "srcaddr"
#define ID_INGRESS 1
#define ID_RESTORE 2
#define ID_MASQ    3
#define ID_SNAT    4
#define TYPE_MARK   19          /* nft datatypes */
#define TYPE_IFNAME 41
#define TYPE_IPADDR 7
#define CHAIN_MAX 128
#define COMMENT_MAX 64

#ifndef NETLINK_EXT_ACK
#define NETLINK_EXT_ACK 11
#endif

/* ---- the socket and the batch ---- */

struct what { char s[96]; };

struct nft {
	struct mnl_socket *sock;
	uint32_t portid, seq;
	char *buf;
	size_t used, cap;
	uint32_t first_seq;     /* of the first message after BEGIN */
	unsigned nmsg;
	struct what *what;      /* per message, for the error */
	unsigned what_cap;
};

/* The socket stays open between events of a process: closing a netfilter
 * socket waits for the kernel to free what the last batch deleted (an RCU
 * grace period, 10-20 ms), which would otherwise be paid by every event. */
static struct mnl_socket *kept_sock;
static pid_t kept_pid;
static uint32_t kept_seq;

static void drop_sock(void)
{
	if (kept_sock && kept_pid == getpid())
		mnl_socket_close(kept_sock);
	else if (kept_sock)
		close(mnl_socket_get_fd(kept_sock)); /* a forked child: not ours to keep */
	kept_sock = NULL;
}

static int nft_open(struct nft *n)
{
	int one = 1, sz = 4 << 20;

	memset(n, 0, sizeof *n);
	if (kept_sock && kept_pid != getpid())
		drop_sock();
	if (kept_sock) {
		n->sock = kept_sock;
		goto ready;
	}
	n->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!n->sock)
		return -1;
	mnl_socket_setsockopt(n->sock, NETLINK_EXT_ACK, &one, sizeof one);
	if (mnl_socket_bind(n->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(n->sock);
		n->sock = NULL;
		return -1;
	}
	/* a big batch (first event with many links) must fit in one sendmsg */
	if (setsockopt(mnl_socket_get_fd(n->sock), SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
		setsockopt(mnl_socket_get_fd(n->sock), SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
	if (setsockopt(mnl_socket_get_fd(n->sock), SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
		setsockopt(mnl_socket_get_fd(n->sock), SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	kept_sock = n->sock;
	kept_pid = getpid();
ready:
	n->portid = mnl_socket_get_portid(n->sock);
	if (!kept_seq)
		kept_seq = (uint32_t)time(NULL) << 8;
	n->seq = kept_seq;
	{
		/* anything left from an interrupted event is stale */
		char junk[4096];
		while (recv(mnl_socket_get_fd(n->sock), junk, sizeof junk, MSG_DONTWAIT) > 0)
			;
	}
	return 0;
}

/* FAILED: drop the socket too (it may be out of step). */
static void nft_close(struct nft *n, int failed)
{
	kept_seq = n->seq;
	if (failed && n->sock == kept_sock)
		drop_sock();
	free(n->buf);
	free(n->what);
}

/* Room for one more message (at most 16 KiB) in the batch. */
static char *room(struct nft *n)
{
	if (n->cap - n->used < 16384) {
		size_t cap = n->cap ? n->cap * 2 : 65536;
		char *b = realloc(n->buf, cap);
		if (!b)
			return NULL;
		n->buf = b;
		n->cap = cap;
	}
	return n->buf + n->used;
}

static void batch_start(struct nft *n)
{
	n->used = 0;
	n->nmsg = 0;
	room(n);
	nftnl_batch_begin(n->buf, n->seq++);
	n->used += NLMSG_ALIGN(((struct nlmsghdr *)n->buf)->nlmsg_len);
	n->first_seq = n->seq;
}

/* Start a message of the batch; WHAT describes it for errors. */
static struct nlmsghdr *msg(struct nft *n, uint16_t type, uint16_t flags, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static struct nlmsghdr *msg(struct nft *n, uint16_t type, uint16_t flags, const char *fmt, ...)
{
	char *p = room(n);
	va_list ap;

	if (!p)
		return NULL;
	if (n->nmsg >= n->what_cap) {
		unsigned cap = n->what_cap ? n->what_cap * 2 : 64;
		struct what *w = realloc(n->what, cap * sizeof *w);
		if (!w)
			return NULL;
		n->what = w;
		n->what_cap = cap;
	}
	va_start(ap, fmt);
	vsnprintf(n->what[n->nmsg].s, sizeof n->what[n->nmsg].s, fmt, ap);
	va_end(ap);
	n->nmsg++;
	return nftnl_nlmsg_build_hdr(p, type, FAMILY, flags, n->seq++);
}

static void msg_done(struct nft *n, struct nlmsghdr *h)
{
	n->used += NLMSG_ALIGN(h->nlmsg_len);
}

/* Send the batch; the kernel handles it inside sendmsg, so by the time it
 * returns any error is queued: read without waiting. */
static int batch_commit(struct nft *n, char *err, size_t len)
{
	static char rbuf[65536];
	char *p = room(n);
	ssize_t r;
	int rc = 0;

	if (!p) {
		snprintf(err, len, "nftables: out of memory");
		return -1;
	}
	nftnl_batch_end(p, n->seq++);
	n->used += NLMSG_ALIGN(((struct nlmsghdr *)p)->nlmsg_len);
	mh_stats_mut()->fw_commits++;
	if (mnl_socket_sendto(n->sock, n->buf, n->used) < 0) {
		snprintf(err, len, "nftables: sending the batch (%zu bytes): %s", n->used, strerror(errno));
		return -1;
	}
	while ((r = recv(mnl_socket_get_fd(n->sock), rbuf, sizeof rbuf, MSG_DONTWAIT)) > 0) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)rbuf;
		int left = (int)r;
		for (; mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
			const struct nlmsgerr *e;
			const struct nlattr *a;
			const char *ext = NULL;
			unsigned idx;
			size_t off;

			if (h->nlmsg_type != NLMSG_ERROR)
				continue;
			e = mnl_nlmsg_get_payload(h);
			if (!e->error || rc)
				continue;
			idx = h->nlmsg_seq - n->first_seq;
			off = sizeof(*e);
			if (h->nlmsg_flags & NLM_F_ACK_TLVS) {
				if (!(h->nlmsg_flags & NLM_F_CAPPED))
					off += e->msg.nlmsg_len - sizeof(struct nlmsghdr);
				mnl_attr_for_each(a, h, off)
					if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
						ext = mnl_attr_get_str(a);
			}
			snprintf(err, len, "nftables: %s: %s%s%s%s",
				 idx < n->nmsg ? n->what[idx].s : "batch", strerror(-e->error),
				 ext ? " (" : "", ext ? ext : "", ext ? ")" : "");
			rc = -1;
		}
	}
	return rc;
}

/* ---- dumps ---- */

typedef int (*dump_cb)(const struct nlmsghdr *h, void *data);

/* Send REQ (a GET message) and run CB on every answer.  0, or -1 with errno
 * (ENOENT: the table, set or chain is not there). */
static int nft_get(struct nft *n, struct nlmsghdr *req, dump_cb cb, void *data)
{
	return mh_nl_request(n->sock, req, cb, data);
}

/* ---- what the kernel holds ---- */

struct elem {
	char key[IF_NAMESIZE];  /* ifname, or the mark (u32, host order) */
	uint32_t verdict;
	char chain[CHAIN_MAX];
	uint32_t addr;
	char comment[COMMENT_MAX];
	int keep;
};

struct elems {
	struct elem *v;
	unsigned n, cap;
	struct elem **by_key;   /* hash of the keys (elems_index) */
	unsigned hmask;
};

struct krule {
	uint64_t handle;
	char comment[COMMENT_MAX];
	char jump[CHAIN_MAX];   /* target of a jump, "" if none */
};

struct krules {
	struct krule *v;
	unsigned n, cap;
};

static void udata_comment(const void *u, uint32_t len, char *out, size_t outlen)
{
	const unsigned char *p = u;

	out[0] = 0;
	while (len >= 2 && (uint32_t)p[1] + 2 <= len) {
		if (p[0] == 0 && p[1]) {        /* the comment: type 0 in rules and elements */
			size_t l = p[1] < outlen ? p[1] : outlen;
			memcpy(out, p + 2, l);
			out[l - 1] = 0;
			return;
		}
		len -= (uint32_t)p[1] + 2;
		p += p[1] + 2;
	}
}

/* Element dumps are parsed by hand: libnftnl's objects cost ~1 us an element. */
static void elem_parse(struct elem *x, const struct nlattr *el)
{
	const struct nlattr *a, *b, *c;

	mnl_attr_for_each_nested(a, el) {
		switch (mnl_attr_get_type(a)) {
		case NFTA_SET_ELEM_KEY:
			mnl_attr_for_each_nested(b, a)
				if (mnl_attr_get_type(b) == NFTA_DATA_VALUE) {
					uint16_t l = mnl_attr_get_payload_len(b);
					memcpy(x->key, mnl_attr_get_payload(b), l < sizeof x->key ? l : sizeof x->key);
				}
			break;
		case NFTA_SET_ELEM_DATA:
			mnl_attr_for_each_nested(b, a) {
				if (mnl_attr_get_type(b) == NFTA_DATA_VALUE && mnl_attr_get_payload_len(b) == 4)
					memcpy(&x->addr, mnl_attr_get_payload(b), 4);
				if (mnl_attr_get_type(b) != NFTA_DATA_VERDICT)
					continue;
				mnl_attr_for_each_nested(c, b) {
					if (mnl_attr_get_type(c) == NFTA_VERDICT_CODE)
						x->verdict = ntohl(mnl_attr_get_u32(c));
					else if (mnl_attr_get_type(c) == NFTA_VERDICT_CHAIN) {
						uint16_t l = mnl_attr_get_payload_len(c);
						if (l >= sizeof x->chain)
							l = sizeof x->chain - 1;
						memcpy(x->chain, mnl_attr_get_payload(c), l);
						x->chain[l] = 0;
					}
				}
			}
			break;
		case NFTA_SET_ELEM_USERDATA:
			udata_comment(mnl_attr_get_payload(a), mnl_attr_get_payload_len(a), x->comment,
				      sizeof x->comment);
			break;
		}
	}
}

static int elems_cb(const struct nlmsghdr *h, void *data)
{
	struct elems *es = data;
	const struct nlattr *a, *el;

	mnl_attr_for_each(a, h, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(el, a) {
			struct elem *x;
			if (mnl_attr_get_type(el) != NFTA_LIST_ELEM)
				continue;
			if (es->n == es->cap) {
				unsigned cap = es->cap ? es->cap * 2 : 64;
				struct elem *v = realloc(es->v, cap * sizeof *v);
				if (!v)
					return -1;
				es->v = v;
				es->cap = cap;
			}
			x = &es->v[es->n++];
			memset(x->key, 0, sizeof x->key);
			x->verdict = 0;
			x->chain[0] = 0;
			x->addr = 0;
			x->comment[0] = 0;
			x->keep = 0;
			elem_parse(x, el);
		}
	}
	return 0;
}

static int read_elems(struct nft *n, const char *set, struct elems *es)
{
	char buf[512];
	struct nftnl_set *s = nftnl_set_alloc();
	struct nlmsghdr *h;
	int rc;

	if (!s)
		return -1;
	nftnl_set_set_str(s, NFTNL_SET_TABLE, TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set);
	h = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, FAMILY, NLM_F_DUMP, n->seq++);
	nftnl_set_elems_nlmsg_build_payload(h, s);
	nftnl_set_free(s);
	rc = nft_get(n, h, elems_cb, es);
	return rc;
}

static int rules_cb(const struct nlmsghdr *h, void *data)
{
	struct krules *rs = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;
	struct krule *x;
	const void *u;
	uint32_t l;

	if (!r)
		return -1;
	if (nftnl_rule_nlmsg_parse(h, r) < 0) {
		nftnl_rule_free(r);
		return -1;
	}
	if (rs->n == rs->cap) {
		unsigned cap = rs->cap ? rs->cap * 2 : 32;
		struct krule *v = realloc(rs->v, cap * sizeof *v);
		if (!v) {
			nftnl_rule_free(r);
			return -1;
		}
		rs->v = v;
		rs->cap = cap;
	}
	x = &rs->v[rs->n++];
	memset(x, 0, sizeof *x);
	x->handle = nftnl_rule_get_u64(r, NFTNL_RULE_HANDLE);
	u = nftnl_rule_get_data(r, NFTNL_RULE_USERDATA, &l);
	if (u)
		udata_comment(u, l, x->comment, sizeof x->comment);
	it = nftnl_expr_iter_create(r);
	for (e = it ? nftnl_expr_iter_next(it) : NULL; e; e = nftnl_expr_iter_next(it))
		if (!strcmp(nftnl_expr_get_str(e, NFTNL_EXPR_NAME), "immediate") &&
		    nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN))
			snprintf(x->jump, sizeof x->jump, "%s", nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN));
	if (it)
		nftnl_expr_iter_destroy(it);
	nftnl_rule_free(r);
	return 0;
}

static int read_rules(struct nft *n, const char *chain, struct krules *rs)
{
	char buf[512];
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *h;

	if (!r)
		return -1;
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	h = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, FAMILY, NLM_F_DUMP, n->seq++);
	nftnl_rule_nlmsg_build_payload(h, r);
	nftnl_rule_free(r);
	return nft_get(n, h, rules_cb, rs);
}

static int table_cb(const struct nlmsghdr *h, void *data)
{
	*(int *)data = 1;
	return 0;
}

/* 1: table multihome exists, 0: it doesn't, -1: error */
static int table_exists(struct nft *n)
{
	char buf[512];
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *h;
	int found = 0;

	if (!t)
		return -1;
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, TABLE);
	h = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, FAMILY, NLM_F_ACK, n->seq++);
	nftnl_table_nlmsg_build_payload(h, t);
	nftnl_table_free(t);
	if (nft_get(n, h, table_cb, &found) < 0)   /* no nf_tables at all: nothing either */
		return errno == ENOENT || errno == EOPNOTSUPP || errno == EAFNOSUPPORT ? 0 : -1;
	return found;
}

/* ---- building rules ---- */

static void x_meta_load(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

static void x_meta_set(struct nftnl_rule *r, uint32_t key, uint32_t sreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, sreg);
	nftnl_rule_add_expr(r, e);
}

static void x_ct_load(struct nftnl_rule *r, uint32_t key, uint32_t dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, dreg);
	nftnl_rule_add_expr(r, e);
}

static void x_ct_set(struct nftnl_rule *r, uint32_t key, uint32_t sreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_SREG, sreg);
	nftnl_rule_add_expr(r, e);
}

/* reg1 = (reg1 & MASK) ^ XOR, 32 bits */
static void x_bitwise(struct nftnl_rule *r, uint32_t mask, uint32_t xor)
{
	struct nftnl_expr *e = nftnl_expr_alloc("bitwise");
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_DREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_BITWISE_LEN, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_MASK, &mask, 4);
	nftnl_expr_set(e, NFTNL_EXPR_BITWISE_XOR, &xor, 4);
	nftnl_rule_add_expr(r, e);
}

static void x_cmp(struct nftnl_rule *r, uint32_t op, const void *data, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("cmp");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_SREG, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CMP_OP, op);
	nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
	nftnl_rule_add_expr(r, e);
}

static void x_payload(struct nftnl_rule *r, uint32_t base, uint32_t off, uint32_t len)
{
	struct nftnl_expr *e = nftnl_expr_alloc("payload");
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_BASE, base);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_OFFSET, off);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_LEN, len);
	nftnl_expr_set_u32(e, NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
}

/* lookup reg1 in SET; DREG < 0: a plain set membership test */
static void x_lookup(struct nftnl_rule *r, const char *set, uint32_t set_id, int dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	if (dreg >= 0)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, (uint32_t)dreg);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, set);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set_id);
	nftnl_rule_add_expr(r, e);
}

static void x_verdict(struct nftnl_rule *r, int verdict, const char *chain)
{
	struct nftnl_expr *e = nftnl_expr_alloc("immediate");
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, (uint32_t)verdict);
	if (chain)
		nftnl_expr_set_str(e, NFTNL_EXPR_IMM_CHAIN, chain);
	nftnl_rule_add_expr(r, e);
}

static struct nftnl_rule *rule_new(const char *chain, const char *comment)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, FAMILY);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	if (comment) {
		struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(COMMENT_MAX + 8);
		nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, comment);
		nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
		nftnl_udata_buf_free(u);
	}
	return r;
}

/* FLAGS: NLM_F_APPEND (after POS, or at the end), 0 (before POS, or at the
 * head), NLM_F_REPLACE (the rule with handle POS). */
static int rule_send(struct nft *n, struct nftnl_rule *r, uint16_t flags, uint64_t pos, const char *what)
{
	struct nlmsghdr *h;

	if (pos && (flags & NLM_F_REPLACE))
		nftnl_rule_set_u64(r, NFTNL_RULE_HANDLE, pos);
	else if (pos)
		nftnl_rule_set_u64(r, NFTNL_RULE_POSITION, pos);
	h = msg(n, NFT_MSG_NEWRULE, (uint16_t)(NLM_F_CREATE | flags), "adding %s rule in chain %s",
		what, nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
	if (!h) {
		nftnl_rule_free(r);
		return -1;
	}
	nftnl_rule_nlmsg_build_payload(h, r);
	msg_done(n, h);
	nftnl_rule_free(r);
	return 0;
}

static int rule_del(struct nft *n, const char *chain, uint64_t handle)
{
	struct nftnl_rule *r = rule_new(chain, NULL);
	struct nlmsghdr *h = msg(n, NFT_MSG_DELRULE, 0, "deleting rule %llu of chain %s",
				 (unsigned long long)handle, chain);

	if (!h) {
		nftnl_rule_free(r);
		return -1;
	}
	if (handle)
		nftnl_rule_set_u64(r, NFTNL_RULE_HANDLE, handle);
	nftnl_rule_nlmsg_build_payload(h, r);      /* no handle: flush the chain */
	msg_done(n, h);
	nftnl_rule_free(r);
	return 0;
}

static int chain_send(struct nft *n, uint16_t type, const char *name, const char *ctype,
		      int hook, int prio)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct nlmsghdr *h = msg(n, type, type == NFT_MSG_NEWCHAIN ? NLM_F_CREATE : 0, "%s chain %s",
				 type == NFT_MSG_NEWCHAIN ? "adding" : "deleting", name);

	if (!h || !c) {
		nftnl_chain_free(c);
		return -1;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, FAMILY);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, name);
	if (ctype) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, ctype);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, (uint32_t)hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, prio);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nftnl_chain_nlmsg_build_payload(h, c);
	msg_done(n, h);
	nftnl_chain_free(c);
	return 0;
}

static int table_send(struct nft *n, uint16_t type)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *h = msg(n, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0,
				 "%s table ip " TABLE, type == NFT_MSG_NEWTABLE ? "adding" : "deleting");

	if (!h || !t) {
		nftnl_table_free(t);
		return -1;
	}
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, FAMILY);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, TABLE);
	nftnl_table_nlmsg_build_payload(h, t);
	msg_done(n, h);
	nftnl_table_free(t);
	return 0;
}

/* udata as nft writes it: key byte order, data byte order, no interval */
static int set_send(struct nft *n, const char *name, uint32_t id, uint32_t ktype, uint32_t klen,
		    uint32_t dtype, uint32_t dlen)
{
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(64);
	struct nlmsghdr *h = msg(n, NFT_MSG_NEWSET, NLM_F_CREATE, "adding set %s", name);

	if (!h || !s || !u) {
		nftnl_set_free(s);
		if (u)
			nftnl_udata_buf_free(u);
		return -1;
	}
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, FAMILY);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, name);
	nftnl_set_set_u32(s, NFTNL_SET_ID, id);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, ktype);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, klen);
	nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 1);
	if (dtype) {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, dtype);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, dlen);
		nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATABYTEORDER, dtype == TYPE_IPADDR ? 2 : 0);
		nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATA_INTERVAL, 0);
	} else {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, 0);
	}
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
	nftnl_set_nlmsg_build_payload(h, s);
	msg_done(n, h);
	nftnl_udata_buf_free(u);
	nftnl_set_free(s);
	return 0;
}

/* ---- the desired state ---- */

struct want {
	const struct mh_link *l;
	char comment[COMMENT_MAX];
	char in_chain[CHAIN_MAX];       /* "" when reply-via-link is off */
	char rs_chain[CHAIN_MAX];
	char pin_chain[CHAIN_MAX];      /* "" without pins */
	int pin_present;
	uint64_t pin_handle;
};

static uint32_t pins_hash(const struct mh_link *l)
{
	uint32_t h = 2166136261u;
	unsigned i;
	const struct mh_pin *p;
#define MIX(x) do { uint32_t _v = (uint32_t)(x); int _b; \
	for (_b = 0; _b < 4; _b++) { h ^= (_v >> (8 * _b)) & 0xff; h *= 16777619u; } } while (0)
	MIX(l->cfg.mark);
	MIX(l->cfg.mask);
	MIX(l->cfg.npins);
	for (i = 0; i < l->cfg.npins; i++) {
		p = &l->cfg.pins[i];
		MIX(p->proto);
		MIX(p->dst_len);
		MIX(p->port_lo);
		MIX(p->port_hi);
		MIX(p->dst);
	}
#undef MIX
	return h;
}

/* snprintf costs ~0.3 us a call, three names a link: build them by hand */
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

static void want_fill(struct want *w, const struct mh_link *l)
{
	char *p;

	w->l = l;
	w->pin_present = 0;
	w->pin_handle = 0;
	p = put_str(w->comment, w->comment + sizeof w->comment - 1, "multihome ");
	p = put_str(p, w->comment + sizeof w->comment - 1, l->cfg.name);
	*p = 0;
	chain_name(w->in_chain, sizeof w->in_chain, l->cfg.reply_via_link ? "in_" : "up_", l->cfg.name,
		   l->cfg.mark, l->cfg.mask, 0);
	/* the NAT of the link, so that the ingress map alone tells everything */
	p = w->in_chain + strlen(w->in_chain);
	if (l->cfg.nat == MH_NAT_SNAT) {
		char a[INET_ADDRSTRLEN] = "";
		inet_ntop(AF_INET, &l->local, a, sizeof a);
		p = put_str(p, w->in_chain + sizeof w->in_chain - 1, "_s");
		p = put_str(p, w->in_chain + sizeof w->in_chain - 1, a);
	} else {
		p = put_str(p, w->in_chain + sizeof w->in_chain - 1,
			    l->cfg.nat == MH_NAT_MASQUERADE ? "_m" : "_n");
	}
	*p = 0;
	chain_name(w->rs_chain, sizeof w->rs_chain, "rs_", l->cfg.name, l->cfg.mark, l->cfg.mask, 0);
	w->pin_chain[0] = 0;
	if (l->cfg.npins)
		chain_name(w->pin_chain, sizeof w->pin_chain, "pin_", l->cfg.name, pins_hash(l), 0, 1);
}

/* meta mark set meta mark & ~M | V (reg 1 -> mark) */
static void x_set_mark(struct nftnl_rule *r, const struct mh_link *l)
{
	x_meta_load(r, NFT_META_MARK, NFT_REG_1);
	x_bitwise(r, ~l->cfg.mask, l->cfg.mark);
	x_meta_set(r, NFT_META_MARK, NFT_REG_1);
}

static int add_link_chain_rules(struct nft *n, const struct want *w, const char *chain)
{
	const struct mh_link *l = w->l;
	struct nftnl_rule *r;
	unsigned i;

	if (chain_send(n, NFT_MSG_NEWCHAIN, chain, NULL, 0, 0) || rule_del(n, chain, 0))
		return -1;
	if (chain == w->in_chain) {
		if (!l->cfg.reply_via_link)
			return 0;       /* up_...: an empty chain, its end accepts */
		r = rule_new(chain, w->comment);
		x_ct_load(r, NFT_CT_MARK, NFT_REG_1);
		x_bitwise(r, ~l->cfg.mask, l->cfg.mark);
		x_ct_set(r, NFT_CT_MARK, NFT_REG_1);
		return rule_send(n, r, NLM_F_APPEND, 0, "ingress");
	}
	if (chain == w->rs_chain) {
		r = rule_new(chain, w->comment);
		x_set_mark(r, l);
		x_verdict(r, NF_ACCEPT, NULL);
		return rule_send(n, r, NLM_F_APPEND, 0, "restore");
	}
	for (i = 0; i < l->cfg.npins; i++) {
		const struct mh_pin *p = &l->cfg.pins[i];
		r = rule_new(chain, w->comment);
		if (p->dst_len) {
			uint32_t m = htonl(p->dst_len == 32 ? 0xffffffffu : ~(0xffffffffu >> p->dst_len));
			x_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
			if (p->dst_len < 32)
				x_bitwise(r, m, 0);
			x_cmp(r, NFT_CMP_EQ, &p->dst, 4);
		}
		if (p->proto) {
			x_meta_load(r, NFT_META_L4PROTO, NFT_REG_1);
			x_cmp(r, NFT_CMP_EQ, &p->proto, 1);
		}
		if (p->port_lo && (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP)) {
			uint16_t lo = htons(p->port_lo), hi = htons(p->port_hi ? p->port_hi : p->port_lo);
			x_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2);
			if (lo == hi) {
				x_cmp(r, NFT_CMP_EQ, &lo, 2);
			} else {
				x_cmp(r, NFT_CMP_GTE, &lo, 2);
				x_cmp(r, NFT_CMP_LTE, &hi, 2);
			}
		}
		x_set_mark(r, l);
		x_verdict(r, NF_ACCEPT, NULL);
		if (rule_send(n, r, NLM_F_APPEND, 0, "pin"))
			return -1;
	}
	return 0;
}

static void mask_comment(char *buf, size_t len, uint32_t ours)
{
	snprintf(buf, len, "multihome mask 0x%08x", ours);
}

/* The three rules of chain egress that carry OURS, in order. */
static struct nftnl_rule *egress_rule(int which, uint32_t ours)
{
	char c[COMMENT_MAX];
	struct nftnl_rule *r;
	uint32_t zero = 0;

	mask_comment(c, sizeof c, ours);
	r = rule_new(CH_EGRESS, c);
	switch (which) {
	case 0:         /* meta mark set meta mark & ~OURS */
		x_meta_load(r, NFT_META_MARK, NFT_REG_1);
		x_bitwise(r, ~ours, 0);
		x_meta_set(r, NFT_META_MARK, NFT_REG_1);
		break;
	case 1:         /* ct mark & OURS vmap @restore */
		x_ct_load(r, NFT_CT_MARK, NFT_REG_1);
		x_bitwise(r, ours, 0);
		x_lookup(r, SET_RESTORE, ID_RESTORE, NFT_REG_VERDICT);
		break;
	default:        /* ct mark & OURS != 0 accept */
		x_ct_load(r, NFT_CT_MARK, NFT_REG_1);
		x_bitwise(r, ours, 0);
		x_cmp(r, NFT_CMP_NEQ, &zero, 4);
		x_verdict(r, NF_ACCEPT, NULL);
		break;
	}
	return r;
}

/* The table and its fixed part, empty maps. */
static int create_skeleton(struct nft *n, uint32_t ours)
{
	struct nftnl_rule *r;
	int i;

	if (table_send(n, NFT_MSG_NEWTABLE) ||
	    set_send(n, SET_INGRESS, ID_INGRESS, TYPE_IFNAME, IF_NAMESIZE, NFT_DATA_VERDICT, 16) ||
	    set_send(n, SET_RESTORE, ID_RESTORE, TYPE_MARK, 4, NFT_DATA_VERDICT, 16) ||
	    set_send(n, SET_MASQ, ID_MASQ, TYPE_IFNAME, IF_NAMESIZE, 0, 0) ||
	    set_send(n, SET_SNAT, ID_SNAT, TYPE_IFNAME, IF_NAMESIZE, TYPE_IPADDR, 4) ||
	    chain_send(n, NFT_MSG_NEWCHAIN, CH_EGRESS, NULL, 0, 0) ||
	    chain_send(n, NFT_MSG_NEWCHAIN, "prerouting", "filter", NF_INET_PRE_ROUTING, -150) ||
	    chain_send(n, NFT_MSG_NEWCHAIN, "output", "route", NF_INET_LOCAL_OUT, -150) ||
	    chain_send(n, NFT_MSG_NEWCHAIN, "postrouting", "nat", NF_INET_POST_ROUTING, 100))
		return -1;
	for (i = 0; i < 3; i++)
		if (rule_send(n, egress_rule(i, ours), NLM_F_APPEND, 0, "mask"))
			return -1;
	r = rule_new("prerouting", "multihome");
	x_meta_load(r, NFT_META_IIFNAME, NFT_REG_1);
	x_lookup(r, SET_INGRESS, ID_INGRESS, NFT_REG_VERDICT);
	if (rule_send(n, r, NLM_F_APPEND, 0, "ingress"))
		return -1;
	r = rule_new("prerouting", "multihome");
	x_verdict(r, NFT_JUMP, CH_EGRESS);
	if (rule_send(n, r, NLM_F_APPEND, 0, "egress"))
		return -1;
	r = rule_new("output", "multihome");
	x_verdict(r, NFT_JUMP, CH_EGRESS);
	if (rule_send(n, r, NLM_F_APPEND, 0, "egress"))
		return -1;
	r = rule_new("postrouting", "multihome");
	x_meta_load(r, NFT_META_OIFNAME, NFT_REG_1);
	x_lookup(r, SET_MASQ, ID_MASQ, -1);
	nftnl_rule_add_expr(r, nftnl_expr_alloc("masq"));
	if (rule_send(n, r, NLM_F_APPEND, 0, "masquerade"))
		return -1;
	r = rule_new("postrouting", "multihome");
	x_meta_load(r, NFT_META_OIFNAME, NFT_REG_1);
	x_lookup(r, SET_SNAT, ID_SNAT, NFT_REG_1);
	{
		struct nftnl_expr *e = nftnl_expr_alloc("nat");
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_SNAT);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
		nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
		nftnl_rule_add_expr(r, e);
	}
	return rule_send(n, r, NLM_F_APPEND, 0, "snat");
}

/* ---- element batches: one message per set for adds, one for deletes ---- */

struct eb {
	struct nftnl_set *s;
	unsigned n;
};

static void eb_init(struct eb *b, const char *set)
{
	b->s = nftnl_set_alloc();
	nftnl_set_set_u32(b->s, NFTNL_SET_FAMILY, FAMILY);
	nftnl_set_set_str(b->s, NFTNL_SET_TABLE, TABLE);
	nftnl_set_set_str(b->s, NFTNL_SET_NAME, set);
	b->n = 0;
}

static void eb_add(struct eb *b, const void *key, uint32_t klen, uint32_t verdict, const char *chain,
		   const uint32_t *addr, const char *comment)
{
	struct nftnl_set_elem *e = nftnl_set_elem_alloc();

	nftnl_set_elem_set(e, NFTNL_SET_ELEM_KEY, key, klen);
	if (chain || verdict) {
		nftnl_set_elem_set_u32(e, NFTNL_SET_ELEM_VERDICT, verdict);
		if (chain)
			nftnl_set_elem_set_str(e, NFTNL_SET_ELEM_CHAIN, chain);
	}
	if (addr)
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_DATA, addr, 4);
	if (comment && *comment) {
		struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(COMMENT_MAX + 8);
		nftnl_udata_put_strz(u, NFTNL_UDATA_SET_ELEM_COMMENT, comment);
		nftnl_set_elem_set(e, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
		nftnl_udata_buf_free(u);
	}
	nftnl_set_elem_add(b->s, e);
	b->n++;
}

static int eb_send(struct nft *n, struct eb *b, uint16_t type)
{
	struct nlmsghdr *h;
	int rc = 0;

	if (b->n) {
		h = msg(n, type, type == NFT_MSG_NEWSETELEM ? NLM_F_CREATE | NLM_F_EXCL : 0,
			"%s %u element(s) of set %s", type == NFT_MSG_NEWSETELEM ? "adding" : "deleting",
			b->n, nftnl_set_get_str(b->s, NFTNL_SET_NAME));
		if (!h)
			rc = -1;
		else {
			nftnl_set_elems_nlmsg_build_payload(h, b->s);
			msg_done(n, h);
		}
	}
	nftnl_set_free(b->s);
	b->s = NULL;
	return rc;
}

/* ---- sorted lookups ---- */

/* Hash sets (open addressing, FNV-1a): the diff is O(n), no sorting. */
static uint32_t fnv(const void *p, size_t len)
{
	const unsigned char *c = p;
	uint32_t h = 2166136261u;

	while (len--) {
		h ^= *c++;
		h *= 16777619u;
	}
	return h;
}

static unsigned hsize(unsigned n)
{
	unsigned sz = 16;

	while (sz < 2 * n + 2)
		sz <<= 1;
	return sz;
}

static int elems_index(struct elems *es)
{
	unsigned i, sz = hsize(es->n);

	es->by_key = calloc(sz, sizeof *es->by_key);
	if (!es->by_key)
		return -1;
	es->hmask = sz - 1;
	for (i = 0; i < es->n; i++) {
		uint32_t h = fnv(es->v[i].key, IF_NAMESIZE) & es->hmask;
		while (es->by_key[h])
			h = (h + 1) & es->hmask;
		es->by_key[h] = &es->v[i];
	}
	return 0;
}

static struct elem *elem_find(struct elems *es, const void *key, size_t klen)
{
	char k[IF_NAMESIZE];
	uint32_t h;

	if (!es->n)
		return NULL;
	memcpy(k, key, klen);
	memset(k + klen, 0, sizeof k - klen);
	for (h = fnv(k, sizeof k) & es->hmask; es->by_key[h]; h = (h + 1) & es->hmask)
		if (!memcmp(es->by_key[h]->key, k, sizeof k))
			return es->by_key[h];
	return NULL;
}

struct names {
	const char **slot;
	unsigned mask;
};

static int names_init(struct names *s, unsigned n)
{
	unsigned sz = hsize(n);

	s->slot = calloc(sz, sizeof *s->slot);
	s->mask = sz - 1;
	return s->slot ? 0 : -1;
}

static void names_add(struct names *s, const char *name)
{
	uint32_t h;

	if (!*name)
		return;
	for (h = fnv(name, strlen(name)) & s->mask; s->slot[h]; h = (h + 1) & s->mask)
		if (!strcmp(s->slot[h], name))
			return;
	s->slot[h] = name;
}

static const char *names_find(const struct names *s, const char *name)
{
	uint32_t h;

	for (h = fnv(name, strlen(name)) & s->mask; s->slot[h]; h = (h + 1) & s->mask)
		if (!strcmp(s->slot[h], name))
			return s->slot[h];
	return NULL;
}

static int names_has(const struct names *s, const char *name)
{
	return names_find(s, name) != NULL;
}

static int is_link_chain(const char *c)
{
	return !strncmp(c, "in_", 3) || !strncmp(c, "up_", 3) || !strncmp(c, "rs_", 3) ||
	       !strncmp(c, "pin_", 4);
}

/* ---- the event ---- */

struct state {
	struct elems ingress, restore, masq, snat;
	struct krules egress;
	struct want *w;
	struct names kchains, wchains, wpins;  /* wpins: pin chain -> index */
};

static void state_free(struct state *s)
{
	free(s->ingress.v);
	free(s->restore.v);
	free(s->masq.v);
	free(s->snat.v);
	free(s->ingress.by_key);
	free(s->restore.by_key);
	free(s->masq.by_key);
	free(s->snat.by_key);
	free(s->egress.v);
	free(s->w);
	free(s->kchains.slot);
	free(s->wchains.slot);
	free(s->wpins.slot);
}

static struct elem *elems_push(struct elems *es)
{
	struct elem *x;

	if (es->n == es->cap) {
		unsigned cap = es->cap ? es->cap * 2 : 64;
		struct elem *v = realloc(es->v, cap * sizeof *v);
		if (!v)
			return NULL;
		es->v = v;
		es->cap = cap;
	}
	x = &es->v[es->n++];
	memset(x, 0, sizeof *x);
	return x;
}

/* What the restore map, masq set and srcaddr map hold follows from the
 * ingress map: each element's chain is in_|up_NAME_0xV_0xM_(m|n|sADDR), and
 * the four are only ever changed together, in one batch.  -1 when a name
 * does not parse (then they are read). */
static int derive(struct state *s)
{
	unsigned i;

	for (i = 0; i < s->ingress.n; i++) {
		const struct elem *e = &s->ingress.v[i];
		const char *c = e->chain, *nat, *pm, *pv;
		char name[MH_NAME_MAX + 1], *endp;
		unsigned long v, m;
		struct elem *x;
		size_t nl;

		if (e->verdict != (uint32_t)NFT_GOTO || (strncmp(c, "in_", 3) && strncmp(c, "up_", 3)))
			return -1;
		nat = strrchr(c, '_');
		if (!nat || nat - c < 4)
			return -1;
		for (pm = nat - 1; pm > c && *pm != '_'; pm--)
			;
		for (pv = pm - 1; pv > c && *pv != '_'; pv--)
			;
		if (pv <= c + 2 || strncmp(pv, "_0x", 3) || strncmp(pm, "_0x", 3))
			return -1;
		v = strtoul(pv + 3, &endp, 16);
		if (endp != pm)
			return -1;
		m = strtoul(pm + 3, &endp, 16);
		if (endp != nat)
			return -1;
		nl = (size_t)(pv - (c + 3));
		if (nl == 0 || nl > MH_NAME_MAX)
			return -1;
		memcpy(name, c + 3, nl);
		name[nl] = 0;
		x = elems_push(&s->restore);
		if (!x)
			return -1;
		memcpy(x->key, &(uint32_t){ (uint32_t)v }, 4);
		x->verdict = (uint32_t)NFT_GOTO;
		chain_name(x->chain, sizeof x->chain, "rs_", name, (uint32_t)v, (uint32_t)m, 0);
		memcpy(x->comment, e->comment, sizeof x->comment);
		if (!strcmp(nat, "_m") || (nat[1] == 's' && nat[2])) {
			x = elems_push(nat[1] == 'm' ? &s->masq : &s->snat);
			if (!x)
				return -1;
			memcpy(x->key, e->key, sizeof x->key);
			memcpy(x->comment, e->comment, sizeof x->comment);
			if (nat[1] == 's' && inet_pton(AF_INET, nat + 2, &x->addr) != 1)
				return -1;
		} else if (strcmp(nat, "_n")) {
			return -1;
		}
	}
	return 0;
}

/* FAST: read the ingress map and chain egress only, derive the rest;
 * returns 1 when that was not possible (read everything then). */
static int read_state_fast(struct nft *n, struct state *s)
{
	if (read_elems(n, SET_INGRESS, &s->ingress) || read_rules(n, CH_EGRESS, &s->egress))
		return -1;
	return derive(s) < 0 ? 1 : 0;
}

static int read_state(struct nft *n, struct state *s)
{
	if (read_elems(n, SET_INGRESS, &s->ingress) || read_elems(n, SET_RESTORE, &s->restore) ||
	    read_elems(n, SET_MASQ, &s->masq) || read_elems(n, SET_SNAT, &s->snat) ||
	    read_rules(n, CH_EGRESS, &s->egress))
		return -1;
	return 0;
}

/* The wanted link whose pin chain is CHAIN, or -1 (wpins holds pointers
 * into s->w[].pin_chain). */
static int pin_index(const struct state *s, const char *chain)
{
	const char *p = names_find(&s->wpins, chain);

	if (!p)
		return -1;
	return (int)(((const char *)p - offsetof(struct want, pin_chain) - (const char *)s->w) /
		     (ptrdiff_t)sizeof *s->w);
}

static int diff(struct nft *n, struct state *s, const struct mh_link *const *links, unsigned nl,
		int fresh)
{
	uint32_t ours = mh_mark_union(links, nl);
	struct eb add_in, add_rs, add_mq, add_sn, del_in, del_rs, del_mq, del_sn;
	char mc[COMMENT_MAX];
	unsigned i;
	int last, rc = 0;

	if (names_init(&s->kchains, s->ingress.n + s->restore.n + s->egress.n) ||
	    names_init(&s->wchains, 3 * nl) || names_init(&s->wpins, nl))
		return -1;
	/* chains the kernel's maps and jumps reference now */
	for (i = 0; i < s->ingress.n; i++)
		names_add(&s->kchains, s->ingress.v[i].chain);
	for (i = 0; i < s->restore.n; i++)
		names_add(&s->kchains, s->restore.v[i].chain);
	for (i = 0; i < s->egress.n; i++)
		if (is_link_chain(s->egress.v[i].jump))
			names_add(&s->kchains, s->egress.v[i].jump);
	for (i = 0; i < nl; i++) {
		names_add(&s->wchains, s->w[i].in_chain);
		names_add(&s->wchains, s->w[i].rs_chain);
		names_add(&s->wchains, s->w[i].pin_chain);
	}
	for (i = 0; i < nl; i++)
		names_add(&s->wpins, s->w[i].pin_chain);

	/* 1. new chains, with their rules, before anything points at them */
	for (i = 0; i < nl; i++) {
		const struct want *w = &s->w[i];
		if (!names_has(&s->kchains, w->in_chain) &&
		    add_link_chain_rules(n, w, w->in_chain))
			return -1;
		if (!names_has(&s->kchains, w->rs_chain) && add_link_chain_rules(n, w, w->rs_chain))
			return -1;
		if (w->pin_chain[0] && !names_has(&s->kchains, w->pin_chain) &&
		    add_link_chain_rules(n, w, w->pin_chain))
			return -1;
	}

	/* 2. map elements: keep what is right, delete the rest, add what is missing */
	if (elems_index(&s->ingress) || elems_index(&s->restore) || elems_index(&s->masq) ||
	    elems_index(&s->snat))
		return -1;
	eb_init(&add_in, SET_INGRESS);
	eb_init(&add_rs, SET_RESTORE);
	eb_init(&add_mq, SET_MASQ);
	eb_init(&add_sn, SET_SNAT);
	eb_init(&del_in, SET_INGRESS);
	eb_init(&del_rs, SET_RESTORE);
	eb_init(&del_mq, SET_MASQ);
	eb_init(&del_sn, SET_SNAT);
	for (i = 0; i < nl; i++) {
		const struct want *w = &s->w[i];
		const struct mh_link *l = w->l;
		char key[IF_NAMESIZE] = "";
		struct elem *e;
		uint32_t verdict = (uint32_t)NFT_GOTO;

		memcpy(key, l->ifname, strnlen(l->ifname, sizeof key - 1));
		e = elem_find(&s->ingress, key, sizeof key);
		if (e && !e->keep && e->verdict == verdict && !strcmp(e->chain, w->in_chain) &&
		    !strcmp(e->comment, w->comment))
			e->keep = 1;
		else if (!e || !e->keep)
			eb_add(&add_in, key, sizeof key, verdict, w->in_chain, NULL, w->comment);

		e = elem_find(&s->restore, &l->cfg.mark, 4);
		if (e && !e->keep && e->verdict == (uint32_t)NFT_GOTO && !strcmp(e->chain, w->rs_chain) &&
		    !strcmp(e->comment, w->comment))
			e->keep = 1;
		else if (!e || !e->keep)
			eb_add(&add_rs, &l->cfg.mark, 4, (uint32_t)NFT_GOTO, w->rs_chain, NULL, w->comment);

		if (l->cfg.nat == MH_NAT_MASQUERADE) {
			e = elem_find(&s->masq, key, sizeof key);
			if (e && !e->keep && !strcmp(e->comment, w->comment))
				e->keep = 1;
			else if (!e || !e->keep)
				eb_add(&add_mq, key, sizeof key, 0, NULL, NULL, w->comment);
		} else if (l->cfg.nat == MH_NAT_SNAT) {
			e = elem_find(&s->snat, key, sizeof key);
			if (e && !e->keep && e->addr == l->local && !strcmp(e->comment, w->comment))
				e->keep = 1;
			else if (!e || !e->keep)
				eb_add(&add_sn, key, sizeof key, 0, NULL, &l->local, w->comment);
		}
	}
	for (i = 0; i < s->ingress.n; i++)
		if (!s->ingress.v[i].keep)
			eb_add(&del_in, s->ingress.v[i].key, IF_NAMESIZE, 0, NULL, NULL, NULL);
	for (i = 0; i < s->restore.n; i++)
		if (!s->restore.v[i].keep)
			eb_add(&del_rs, s->restore.v[i].key, 4, 0, NULL, NULL, NULL);
	for (i = 0; i < s->masq.n; i++)
		if (!s->masq.v[i].keep)
			eb_add(&del_mq, s->masq.v[i].key, IF_NAMESIZE, 0, NULL, NULL, NULL);
	for (i = 0; i < s->snat.n; i++)
		if (!s->snat.v[i].keep)
			eb_add(&del_sn, s->snat.v[i].key, IF_NAMESIZE, 0, NULL, NULL, NULL);
	rc |= eb_send(n, &del_in, NFT_MSG_DELSETELEM);
	rc |= eb_send(n, &del_rs, NFT_MSG_DELSETELEM);
	rc |= eb_send(n, &del_mq, NFT_MSG_DELSETELEM);
	rc |= eb_send(n, &del_sn, NFT_MSG_DELSETELEM);
	rc |= eb_send(n, &add_in, NFT_MSG_NEWSETELEM);
	rc |= eb_send(n, &add_rs, NFT_MSG_NEWSETELEM);
	rc |= eb_send(n, &add_mq, NFT_MSG_NEWSETELEM);
	rc |= eb_send(n, &add_sn, NFT_MSG_NEWSETELEM);
	if (rc)
		return -1;

	/* 3. chain egress: the three mask rules first, then the pin jumps by priority */
	mask_comment(mc, sizeof mc, ours);
	if (!fresh) {
		unsigned nmask = 0;
		for (i = 0; i < s->egress.n && i < 3; i++)
			if (!strncmp(s->egress.v[i].comment, "multihome mask ", 15) && !s->egress.v[i].jump[0])
				nmask++;
		if (nmask == 3) {
			for (i = 0; i < 3; i++)
				if (strcmp(s->egress.v[i].comment, mc) &&
				    rule_send(n, egress_rule((int)i, ours), NLM_F_REPLACE, s->egress.v[i].handle, "mask"))
					return -1;
		} else {
			/* damaged: put them back at the head; strays go below */
			for (i = 3; i-- > 0;)
				if (rule_send(n, egress_rule((int)i, ours), 0, 0, "mask"))
					return -1;
			nmask = 0;
		}
		last = -1;
		for (i = nmask; i < s->egress.n; i++) {
			const struct krule *k = &s->egress.v[i];
			int idx = k->jump[0] ? pin_index(s, k->jump) : -1;
			if (idx > last && !s->w[idx].pin_present && !strcmp(k->comment, s->w[idx].comment)) {
				s->w[idx].pin_present = 1;
				s->w[idx].pin_handle = k->handle;
				last = idx;
			} else if (rule_del(n, CH_EGRESS, k->handle)) {
				return -1;
			}
		}
	}
	for (i = 0; i < nl; i++) {
		struct want *w = &s->w[i];
		unsigned j;
		uint64_t before = 0;
		struct nftnl_rule *r;

		if (!w->pin_chain[0] || w->pin_present)
			continue;
		for (j = i + 1; j < nl && !before; j++)
			if (s->w[j].pin_present)
				before = s->w[j].pin_handle;
		r = rule_new(CH_EGRESS, w->comment);
		x_verdict(r, NFT_JUMP, w->pin_chain);
		if (rule_send(n, r, before ? 0 : NLM_F_APPEND, before, "pin jump"))
			return -1;
	}

	/* 4. chains nothing points at any more */
	for (i = 0; i <= s->kchains.mask; i++)
		if (s->kchains.slot[i] && !names_has(&s->wchains, s->kchains.slot[i]) &&
		    chain_send(n, NFT_MSG_DELCHAIN, s->kchains.slot[i], NULL, 0, 0))
			return -1;
	return 0;
}

int mh_fw_nft_apply(const struct mh_link *const *links, unsigned n, char *err, size_t len)
{
	struct nft nft;
	struct state s;
	unsigned i;
	int rc = -1, fresh = 0, attempt;

	if (nft_open(&nft) < 0) {
		if (n == 0 && (errno == EPROTONOSUPPORT || errno == EAFNOSUPPORT))
			return 0;       /* no nfnetlink in this kernel: nothing of ours */
		snprintf(err, len, "nftables: netlink socket: %s", strerror(errno));
		return -1;
	}
	memset(&s, 0, sizeof s);
	if (n == 0) {
		int ex = table_exists(&nft);
		if (ex < 0) {
			snprintf(err, len, "nftables: reading table ip " TABLE ": %s", strerror(errno));
		} else if (ex == 0) {
			rc = 0;         /* nothing of ours: no batch */
		} else {
			batch_start(&nft);
			rc = table_send(&nft, NFT_MSG_DELTABLE) ? -1 : batch_commit(&nft, err, len);
		}
		goto out;
	}

	for (attempt = 0; attempt < 2; attempt++) {
		int r;

		state_free(&s);
		memset(&s, 0, sizeof s);
		fresh = 0;
		r = attempt == 0 ? read_state_fast(&nft, &s) : -2;
		if (r == 1 || r == -2) {    /* names that do not parse, or the retry */
			state_free(&s);
			memset(&s, 0, sizeof s);
			r = read_state(&nft, &s);
		}
		if (r < 0) {
			if (errno != ENOENT) {
				snprintf(err, len, "nftables: reading table ip " TABLE ": %s", strerror(errno));
				goto out;
			}
			/* no table, or a part of it is missing: build it anew, atomically */
			fresh = 1;
			state_free(&s);
			memset(&s, 0, sizeof s);
		}
		s.w = malloc(n * sizeof *s.w);
		if (!s.w) {
			snprintf(err, len, "nftables: out of memory");
			goto out;
		}
		for (i = 0; i < n; i++)
			want_fill(&s.w[i], links[i]);

		batch_start(&nft);
		if (fresh) {
			/* NEWTABLE does not fail on an existing table: then delete it */
			if (table_send(&nft, NFT_MSG_NEWTABLE) || table_send(&nft, NFT_MSG_DELTABLE) ||
			    create_skeleton(&nft, mh_mark_union(links, n))) {
				snprintf(err, len, "nftables: building the batch: out of memory");
				goto out;
			}
		}
		if (diff(&nft, &s, links, n, fresh) < 0) {
			snprintf(err, len, "nftables: building the batch: out of memory");
			goto out;
		}
		if (nft.nmsg == 0) {
			rc = 0;         /* nothing to change */
			goto out;
		}
		rc = batch_commit(&nft, err, len);
		if (rc == 0 || fresh)
			break;
		/* the maps were not what the ingress map said (someone else
		 * edited our table): nothing was changed; read it all, once more */
		mh_log(MH_LOG_DEBUG, "%s; reading table ip " TABLE " whole", err);
	}
out:
	state_free(&s);
	nft_close(&nft, rc < 0);
	return rc;
}
