/* Firewall backend: nftables through libnftnl, over one libmnl socket.
 *
 * Everything lives in table `ip multihome` (the plan, common/plan.c, names
 * every part of it):
 *
 *   map ingress { type ifname : verdict }   "ppp0" : goto in_isp1_0x1_0x1_m
 *   map restore { type mark : verdict }     0x1 : goto rs_isp1_0x1_0x1
 *   set masq    { type ifname }             "ppp0"
 *   map srcaddr { type ifname : ipv4_addr } "ppp1" : 100.64.2.2   (nat snat)
 *   chain in_NAME_V_M_NAT  ct mark set ct mark & ~M | V       (ingress)
 *   chain rs_NAME_V_M   meta mark set meta mark & ~M | V accept (restore)
 *   chain pin_NAME_HASH one rule per pin: MATCH meta mark set meta mark & ~M | V accept
 *   chain egress  ct mark & OURS != 0 meta mark set meta mark & ~OURS } "multihome
 *                 ct mark & OURS vmap @restore           }  mask OURS"
 *                 ct mark & OURS != 0 accept             }
 *                 meta mark & OURS != 0 accept           }  (a probe's SO_MARK)
 *                 jump pin_NAME_HASH ...                 one per link with pins, by priority
 *   chain prerouting  filter, hook prerouting, priority mangle: iifname vmap @ingress; jump egress
 *   chain output      route, hook output, priority mangle: jump egress
 *   chain postrouting nat, hook postrouting, priority srcnat:
 *                     oifname @masq masquerade; snat to oifname map @srcaddr
 *
 * A per-link chain's name carries everything its content depends on, so
 * the incremental path (the plan after an event against the plan before)
 * needs no read of the kernel but chain egress's handles, and only when
 * egress changes.  The full path reads the whole table and compares rules by
 * their expressions.  A batch is atomic: when it fails, nothing changed and
 * the full path runs.  With no link up the table is deleted.  Needs only
 * CAP_NET_ADMIN.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/nfnetlink.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <libnftnl/udata.h>

#include "internal.h"

#define FAMILY  NFPROTO_IPV4
#define TYPE_MARK   19          /* nft datatypes */
#define TYPE_IFNAME 41
#define TYPE_IPADDR 7
#define TEXT_MAX    1024
#define MASKS       MH_NFT_MASK_RULES

/* ---- the socket: kept open between events of a process ----
 * Closing a netfilter socket waits for the kernel to free what the last
 * batch deleted (an RCU grace period, 10-20 ms). */

static struct mh_nl kept;
static pid_t kept_pid;

static void sock_drop(void)
{
	if (kept.sock && kept_pid == getpid())
		mh_nl_close(&kept);
	else if (kept.sock)
		close(mnl_socket_get_fd(kept.sock)); /* a forked child: not ours to keep */
	kept.sock = NULL;
}

static struct mh_nl *sock_get(void)
{
	int sz = 4 << 20, fd;

	if (kept.sock && kept_pid != getpid())
		sock_drop();
	if (!kept.sock) {
		if (mh_nl_open(&kept, NETLINK_NETFILTER) < 0)
			return NULL;
		kept_pid = getpid();
		fd = mnl_socket_get_fd(kept.sock);
		/* a big batch (the first event with many links) must fit in one sendmsg */
		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &sz, sizeof sz) < 0)
			setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof sz);
		if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &sz, sizeof sz) < 0)
			setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
	}
	{       /* anything left from an interrupted event is stale */
		char junk[4096];
		while (recv(mnl_socket_get_fd(kept.sock), junk, sizeof junk, MSG_DONTWAIT) > 0)
			;
	}
	return &kept;
}

/* ---- the batch ---- */

/* What a message does, put in words only if it fails: WHAT NAME (NUM). */
struct what {
	const char *what, *name;
	unsigned long long num;
};

struct batch {
	struct mh_nl *nl;
	char *buf;
	size_t used, cap;
	uint32_t first_seq;
	unsigned nmsg;
	struct what *what;      /* of each message, for an error */
	unsigned what_cap;
	int nomem;
};

static char *room(struct batch *b)
{
	if (b->cap - b->used < 8192) {         /* the largest message: ELEMS_MAX elements */
		size_t cap = b->cap ? b->cap * 2 : 16384;
		char *p = realloc(b->buf, cap);
		if (!p) {
			b->nomem = 1;
			return NULL;
		}
		memset(p + b->cap, 0, cap - b->cap);    /* libmnl leaves padding as it finds it */
		b->buf = p;
		b->cap = cap;
	}
	return b->buf + b->used;
}

static void batch_start(struct batch *b, struct mh_nl *nl)
{
	memset(b, 0, sizeof *b);
	b->nl = nl;
	if (!room(b))
		return;
	nftnl_batch_begin(b->buf, nl->seq++);
	b->used = NLMSG_ALIGN(((struct nlmsghdr *)b->buf)->nlmsg_len);
	b->first_seq = nl->seq;
}

static void batch_free(struct batch *b)
{
	free(b->buf);
	free(b->what);
}

/* NAME must live until the batch is committed (the plan's, a state's, a literal). */
static struct nlmsghdr *msg(struct batch *b, uint16_t type, uint16_t flags, const char *what,
			    const char *name, unsigned long long num)
{
	char *p = room(b);

	if (!p)
		return NULL;
	if (b->nmsg >= b->what_cap) {
		unsigned cap = b->what_cap ? b->what_cap * 2 : 64;
		struct what *w = realloc(b->what, cap * sizeof *w);
		if (!w) {
			b->nomem = 1;
			return NULL;
		}
		b->what = w;
		b->what_cap = cap;
	}
	b->what[b->nmsg++] = (struct what){ what, name, num };
	return nftnl_nlmsg_build_hdr(p, type, FAMILY, flags, b->nl->seq++);
}

static void msg_done(struct batch *b, struct nlmsghdr *h)
{
	b->used += NLMSG_ALIGN(h->nlmsg_len);
}

/* Close the batch: 0, or -1 when building it ran out of memory. */
static int batch_end(struct batch *b)
{
	char *p = room(b);

	if (!p || b->nomem)
		return -1;
	nftnl_batch_end(p, b->nl->seq++);
	b->used += NLMSG_ALIGN(((struct nlmsghdr *)p)->nlmsg_len);
	return 0;
}

/* The kernel handles a batch inside sendmsg: by the time it returns, any
 * error is queued; read without waiting. */
static int batch_commit(struct batch *b, char *err, size_t len)
{
	static char rbuf[65536];
	ssize_t r;
	int rc = 0;

	if (batch_end(b) < 0) {
		snprintf(err, len, "nftables: out of memory");
		return -1;
	}
	mh_stats_mut()->fw_commits++;
	if (mnl_socket_sendto(b->nl->sock, b->buf, b->used) < 0) {
		snprintf(err, len, "nftables: sending the batch (%zu bytes): %s", b->used, strerror(errno));
		return -1;
	}
	while ((r = recv(mnl_socket_get_fd(b->nl->sock), rbuf, sizeof rbuf, MSG_DONTWAIT)) > 0) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)rbuf;
		int left = (int)r;
		for (; mh_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
			const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
			const char *ext;
			unsigned idx = h->nlmsg_seq - b->first_seq;
			if (h->nlmsg_type != NLMSG_ERROR || mnl_nlmsg_get_payload_len(h) < sizeof *e ||
			    !e->error || rc)
				continue;
			ext = mh_nl_ext_ack(h);
			if (idx < b->nmsg) {
				const struct what *w = &b->what[idx];
				char n[32] = "";
				if (w->num)
					snprintf(n, sizeof n, " (%llu)", w->num);
				snprintf(err, len, "nftables: %s%s%s%s: %s%s%s%s", w->what,
					 w->name ? " " : "", w->name ? w->name : "", n,
					 strerror(-e->error), ext ? " (" : "", ext ? ext : "", ext ? ")" : "");
			} else {
				snprintf(err, len, "nftables: batch: %s%s%s%s", strerror(-e->error),
					 ext ? " (" : "", ext ? ext : "", ext ? ")" : "");
			}
			rc = -1;
		}
	}
	return rc;
}

/* ---- expressions ---- */

static void x_meta_load(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
}

static void x_meta_set(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("meta");
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_META_SREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
}

static void x_ct_load(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_DREG, NFT_REG_1);
	nftnl_rule_add_expr(r, e);
}

static void x_ct_set(struct nftnl_rule *r, uint32_t key)
{
	struct nftnl_expr *e = nftnl_expr_alloc("ct");
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_KEY, key);
	nftnl_expr_set_u32(e, NFTNL_EXPR_CT_SREG, NFT_REG_1);
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
static void x_lookup(struct nftnl_rule *r, unsigned set, int dreg)
{
	struct nftnl_expr *e = nftnl_expr_alloc("lookup");
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1);
	if (dreg >= 0)
		nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_DREG, (uint32_t)dreg);
	nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, mh_nft_set_names[set]);
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_SET_ID, set + 1);
	/* the kernel stores and dumps these even when not sent: say them, so
	 * that a rule read back compares equal to the plan's */
	nftnl_expr_set_u32(e, NFTNL_EXPR_LOOKUP_FLAGS, 0);
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

/* meta mark set meta mark & ~M | V */
static void x_set_mark(struct nftnl_rule *r, uint32_t mark, uint32_t mask)
{
	x_meta_load(r, NFT_META_MARK);
	x_bitwise(r, ~mask, mark);
	x_meta_set(r, NFT_META_MARK);
}

static void x_pin_match(struct nftnl_rule *r, const struct mh_pin *p)
{
	if (p->dst_len) {
		uint32_t m = htonl(p->dst_len == 32 ? 0xffffffffu : ~(0xffffffffu >> p->dst_len));
		x_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 16, 4);
		if (p->dst_len < 32)
			x_bitwise(r, m, 0);
		x_cmp(r, NFT_CMP_EQ, &p->dst, 4);
	}
	if (p->proto) {
		x_meta_load(r, NFT_META_L4PROTO);
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
}

static void x_snat_map(struct nftnl_rule *r)
{
	struct nftnl_expr *e;

	x_meta_load(r, NFT_META_OIFNAME);
	x_lookup(r, MH_SET_SNAT, NFT_REG_1);
	e = nftnl_expr_alloc("nat");
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_TYPE, NFT_NAT_SNAT);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1);
	/* what the kernel sets itself for an address register (and dumps) */
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_REG_ADDR_MAX, NFT_REG_1);
	nftnl_expr_set_u32(e, NFTNL_EXPR_NAT_FLAGS, NF_NAT_RANGE_MAP_IPS);
	nftnl_rule_add_expr(r, e);
}

static void x_comment(struct nftnl_rule *r, const char *comment)
{
	struct nftnl_udata_buf *u;

	if (!comment[0])
		return;
	u = nftnl_udata_buf_alloc(MH_COMMENT_MAX + 8);
	nftnl_udata_put_strz(u, NFTNL_UDATA_RULE_COMMENT, comment);
	nftnl_rule_set_data(r, NFTNL_RULE_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
	nftnl_udata_buf_free(u);
}

/* The plan's rule R as an nftnl_rule (NULL: out of memory). */
static struct nftnl_rule *render(const struct mh_plan *p, const struct mh_fw_rule *fr)
{
	const struct mh_plan_link *l = fr->owner >= 0 ? &p->links[fr->owner] : NULL;
	struct nftnl_rule *r = nftnl_rule_alloc();
	uint32_t zero = 0;

	if (!r)
		return NULL;
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, FAMILY);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, MH_NFT_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, fr->chain);
	x_comment(r, fr->comment);
	switch (fr->kind) {
	case MH_FW_INGRESS_CTMARK:      /* ct mark set ct mark & ~M | V */
		x_ct_load(r, NFT_CT_MARK);
		x_bitwise(r, ~l->mask, l->mark);
		x_ct_set(r, NFT_CT_MARK);
		break;
	case MH_FW_RESTORE_CHAIN:
		x_set_mark(r, l->mark, l->mask);
		x_verdict(r, NF_ACCEPT, NULL);
		break;
	case MH_FW_PIN:
		x_pin_match(r, &l->pins[fr->pin]);
		x_set_mark(r, l->mark, l->mask);
		x_verdict(r, NF_ACCEPT, NULL);
		break;
	case MH_FW_MASK_CLEAR:  /* ct mark & OURS != 0 meta mark set meta mark & ~OURS */
		x_ct_load(r, NFT_CT_MARK);
		x_bitwise(r, fr->ours, 0);
		x_cmp(r, NFT_CMP_NEQ, &zero, 4);
		x_meta_load(r, NFT_META_MARK);
		x_bitwise(r, ~fr->ours, 0);
		x_meta_set(r, NFT_META_MARK);
		break;
	case MH_FW_RESTORE:             /* ct mark & OURS vmap @restore */
		x_ct_load(r, NFT_CT_MARK);
		x_bitwise(r, fr->ours, 0);
		x_lookup(r, MH_SET_RESTORE, NFT_REG_VERDICT);
		break;
	case MH_FW_STOP_IF_MARKED:      /* ct mark & OURS != 0 accept */
		x_ct_load(r, NFT_CT_MARK);
		x_bitwise(r, fr->ours, 0);
		x_cmp(r, NFT_CMP_NEQ, &zero, 4);
		x_verdict(r, NF_ACCEPT, NULL);
		break;
	case MH_FW_STOP_IF_PKT_MARKED:  /* meta mark & OURS != 0 accept */
		x_meta_load(r, NFT_META_MARK);
		x_bitwise(r, fr->ours, 0);
		x_cmp(r, NFT_CMP_NEQ, &zero, 4);
		x_verdict(r, NF_ACCEPT, NULL);
		break;
	case MH_FW_PIN_DROP:
		x_pin_match(r, &l->pins[fr->pin]);
		x_verdict(r, NF_DROP, NULL);
		break;
	case MH_FW_PIN_JUMP:
	case MH_FW_TO_EGRESS:
		x_verdict(r, NFT_JUMP, fr->jump);
		break;
	case MH_FW_INGRESS_VMAP:
		x_meta_load(r, NFT_META_IIFNAME);
		x_lookup(r, MH_SET_INGRESS, NFT_REG_VERDICT);
		break;
	case MH_FW_MASQ_SET:
		x_meta_load(r, NFT_META_OIFNAME);
		x_lookup(r, MH_SET_MASQ, -1);
		nftnl_rule_add_expr(r, nftnl_expr_alloc("masq"));
		break;
	case MH_FW_SNAT_MAP:
		x_snat_map(r);
		break;
	}
	return r;
}

/* Expressions as libnftnl prints them: equal texts, equal rules. */
static char *rule_text(const struct nftnl_rule *r)
{
	char buf[TEXT_MAX], one[256];
	struct nftnl_expr_iter *it = nftnl_expr_iter_create(r);
	struct nftnl_expr *e;
	size_t o = 0;

	buf[0] = 0;
	for (e = it ? nftnl_expr_iter_next(it) : NULL; e; e = nftnl_expr_iter_next(it)) {
		int n = nftnl_expr_snprintf(one, sizeof one, e, NFTNL_OUTPUT_DEFAULT, 0);
		if (n > 0 && o + (size_t)n + 4 < sizeof buf)
			o += (size_t)snprintf(buf + o, sizeof buf - o, "[ %s %s ]",
					      nftnl_expr_get_str(e, NFTNL_EXPR_NAME), one);
	}
	if (it)
		nftnl_expr_iter_destroy(it);
	return strdup(buf);
}

/* The text of the plan's rule FR, computed once. */
static const char *want_text(const struct mh_plan *p, struct mh_fw_rule *fr)
{
	struct nftnl_rule *r;

	if (fr->text)
		return fr->text;
	r = render(p, fr);
	if (r) {
		fr->text = rule_text(r);
		nftnl_rule_free(r);
	}
	return fr->text ? fr->text : "";
}

/* ---- reading table ip multihome ---- */

struct nft_read {
	struct mh_firewall *f;
	unsigned cap_rules, cap_chains, cap_elems;
	int set;                /* the set being dumped */
	int nomem;
};

static int grow(void **arr, unsigned *cap, unsigned n, size_t size)
{
	unsigned c;
	void *p;

	if (n < *cap)
		return 0;
	c = *cap ? 2 * *cap : 32;
	p = realloc(*arr, c * size);
	if (!p)
		return -1;
	*arr = p;
	*cap = c;
	return 0;
}

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

static int rule_cb(const struct nlmsghdr *h, void *data)
{
	struct nft_read *rd = data;
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;
	struct mh_fw_rule *x;
	const void *u;
	uint32_t l;

	if (!r || nftnl_rule_nlmsg_parse(h, r) < 0 ||
	    grow((void **)&rd->f->rules, &rd->cap_rules, rd->f->nrules, sizeof *rd->f->rules) < 0) {
		nftnl_rule_free(r);
		return MNL_CB_ERROR;
	}
	x = &rd->f->rules[rd->f->nrules++];
	memset(x, 0, sizeof *x);
	x->kind = 0xff;
	x->owner = MH_NO_OWNER;
	snprintf(x->chain, sizeof x->chain, "%s", nftnl_rule_get_str(r, NFTNL_RULE_CHAIN));
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
	x->text = rule_text(r);
	nftnl_rule_free(r);
	if (!x->text)
		rd->nomem = 1;
	return MNL_CB_OK;
}

static int chain_cb(const struct nlmsghdr *h, void *data)
{
	struct nft_read *rd = data;
	struct nftnl_chain *c = nftnl_chain_alloc();
	struct mh_nft_chain *x;

	if (!c || nftnl_chain_nlmsg_parse(h, c) < 0 ||
	    grow((void **)&rd->f->chains, &rd->cap_chains, rd->f->nchains, sizeof *rd->f->chains) < 0) {
		nftnl_chain_free(c);
		return MNL_CB_ERROR;
	}
	if (strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TABLE), MH_NFT_TABLE)) {
		nftnl_chain_free(c);
		return MNL_CB_OK;
	}
	x = &rd->f->chains[rd->f->nchains++];
	memset(x, 0, sizeof *x);
	x->owner = MH_NO_OWNER;
	snprintf(x->name, sizeof x->name, "%s", nftnl_chain_get_str(c, NFTNL_CHAIN_NAME));
	if (nftnl_chain_is_set(c, NFTNL_CHAIN_HOOKNUM)) {
		x->base = 1;
		x->hook = nftnl_chain_get_u32(c, NFTNL_CHAIN_HOOKNUM);
		x->prio = nftnl_chain_get_s32(c, NFTNL_CHAIN_PRIO);
		x->type = !strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE), "nat") ? "nat" :
			  !strcmp(nftnl_chain_get_str(c, NFTNL_CHAIN_TYPE), "route") ? "route" : "filter";
	}
	nftnl_chain_free(c);
	return MNL_CB_OK;
}

static int set_cb(const struct nlmsghdr *h, void *data)
{
	struct nft_read *rd = data;
	struct nftnl_set *s = nftnl_set_alloc();
	unsigned i;

	if (!s || nftnl_set_nlmsg_parse(h, s) < 0) {
		nftnl_set_free(s);
		return MNL_CB_ERROR;
	}
	for (i = 0; i < MH_NSETS; i++)
		if (!strcmp(nftnl_set_get_str(s, NFTNL_SET_NAME), mh_nft_set_names[i]))
			rd->f->sets[i] = 1;
	nftnl_set_free(s);
	return MNL_CB_OK;
}

/* Element dumps are parsed by hand: libnftnl's objects cost ~1 us an element. */
static void elem_parse(struct mh_nft_elem *x, const struct nlattr *el)
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
				mnl_attr_for_each_nested(c, b)
					if (mnl_attr_get_type(c) == NFTA_VERDICT_CHAIN &&
					    mnl_attr_validate(c, MNL_TYPE_NUL_STRING) == 0)
						snprintf(x->chain, sizeof x->chain, "%s", mnl_attr_get_str(c));
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
	struct nft_read *rd = data;
	const struct nlattr *a, *el;

	mnl_attr_for_each(a, h, sizeof(struct nfgenmsg)) {
		if (mnl_attr_get_type(a) != NFTA_SET_ELEM_LIST_ELEMENTS)
			continue;
		mnl_attr_for_each_nested(el, a) {
			struct mh_nft_elem *x;
			if (mnl_attr_get_type(el) != NFTA_LIST_ELEM)
				continue;
			if (grow((void **)&rd->f->elems, &rd->cap_elems, rd->f->nelems,
				 sizeof *rd->f->elems) < 0)
				return MNL_CB_ERROR;
			x = &rd->f->elems[rd->f->nelems++];
			memset(x, 0, sizeof *x);
			x->set = (uint8_t)rd->set;
			x->klen = rd->set == MH_SET_RESTORE ? 4 : IF_NAMESIZE;
			x->owner = MH_NO_OWNER;
			elem_parse(x, el);
		}
	}
	return MNL_CB_OK;
}

static int get(struct mh_nl *nl, uint16_t type, uint16_t flags, void (*payload)(struct nlmsghdr *, const char *),
	       const char *arg, mnl_cb_t cb, void *data)
{
	char buf[512] = "";     /* padding is sent too */
	struct nlmsghdr *h = nftnl_nlmsg_build_hdr(buf, type, FAMILY, flags, 0);

	payload(h, arg);
	return mh_nl_query(nl, h, cb, data, NULL);
}

static void pl_table(struct nlmsghdr *h, const char *arg)
{
	struct nftnl_table *t = nftnl_table_alloc();

	nftnl_table_set_str(t, NFTNL_TABLE_NAME, MH_NFT_TABLE);
	nftnl_table_nlmsg_build_payload(h, t);
	nftnl_table_free(t);
	(void)arg;
}

static void pl_rules(struct nlmsghdr *h, const char *chain)
{
	struct nftnl_rule *r = nftnl_rule_alloc();

	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, MH_NFT_TABLE);
	if (chain)
		nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	nftnl_rule_nlmsg_build_payload(h, r);
	nftnl_rule_free(r);
}

static void pl_chains(struct nlmsghdr *h, const char *arg)
{
	struct nftnl_chain *c = nftnl_chain_alloc();

	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, MH_NFT_TABLE);
	nftnl_chain_nlmsg_build_payload(h, c);
	nftnl_chain_free(c);
	(void)arg;
}

static void pl_sets(struct nlmsghdr *h, const char *arg)
{
	struct nftnl_set *s = nftnl_set_alloc();

	nftnl_set_set_str(s, NFTNL_SET_TABLE, MH_NFT_TABLE);
	nftnl_set_nlmsg_build_payload(h, s);
	nftnl_set_free(s);
	(void)arg;
}

static void pl_elems(struct nlmsghdr *h, const char *set)
{
	struct nftnl_set *s = nftnl_set_alloc();

	nftnl_set_set_str(s, NFTNL_SET_TABLE, MH_NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, set);
	nftnl_set_elems_nlmsg_build_payload(h, s);
	nftnl_set_free(s);
}

static int table_cb(const struct nlmsghdr *h, void *data)
{
	(void)h;
	((struct nft_read *)data)->f->table = 1;
	return MNL_CB_OK;
}

/* Read chain egress's rules only (the incremental path needs their handles). */
static int read_egress(struct mh_nl *nl, struct mh_firewall *f)
{
	struct nft_read rd = { .f = f };

	return get(nl, NFT_MSG_GETRULE, NLM_F_DUMP, pl_rules, MH_NFT_EGRESS, rule_cb, &rd) < 0 ||
	       rd.nomem ? -1 : 0;
}

/* The whole table into F.  No nf_tables in the kernel reads as no table. */
static int read_all(struct mh_nl *nl, struct mh_firewall *f, char *err, size_t len)
{
	struct nft_read rd = { .f = f };
	unsigned i;

	memset(f, 0, sizeof *f);
	f->backend = MH_FW_NFT;
	/* a plain GET (no ACK flag): one answer, the table or an error */
	if (get(nl, NFT_MSG_GETTABLE, 0, pl_table, NULL, table_cb, &rd) < 0) {
		if (errno == ENOENT || errno == EOPNOTSUPP || errno == EAFNOSUPPORT)
			return 0;
		goto fail;
	}
	if (get(nl, NFT_MSG_GETSET, NLM_F_DUMP, pl_sets, NULL, set_cb, &rd) < 0 ||
	    get(nl, NFT_MSG_GETCHAIN, NLM_F_DUMP, pl_chains, NULL, chain_cb, &rd) < 0 ||
	    get(nl, NFT_MSG_GETRULE, NLM_F_DUMP, pl_rules, NULL, rule_cb, &rd) < 0)
		goto fail;
	for (i = 0; i < MH_NSETS; i++) {
		rd.set = (int)i;
		if (f->sets[i] && get(nl, NFT_MSG_GETSETELEM, NLM_F_DUMP, pl_elems,
				      mh_nft_set_names[i], elems_cb, &rd) < 0)
			goto fail;
	}
	if (rd.nomem) {
		errno = ENOMEM;
		goto fail;
	}
	return 0;
fail:
	snprintf(err, len, "nftables: reading table ip " MH_NFT_TABLE ": %s", strerror(errno));
	mh_firewall_free(f);
	return -1;
}

/* ---- the diff ---- */

static uint32_t mh_hash(const void *p, size_t len)
{
	const unsigned char *c = p;
	uint32_t h = 2166136261u;

	while (len--) {
		h ^= *c++;
		h *= 16777619u;
	}
	return h;
}

/* A firewall's chains by name and its rules by chain, built once per diff
 * (a chain's name is looked up in a hash, not compared with every other). */
struct fw_index {
	const struct mh_firewall *f;
	const char **name;      /* distinct chain names: of the chains, then of the rules */
	int *chain;             /* name K: its index in f->chains, or -1 (rules only) */
	unsigned nnames;
	unsigned *slot, mask;   /* name index + 1 by hash, 0 = empty */
	unsigned *start;        /* the rules of name K: order[start[K] .. start[K + 1]) */
	unsigned *order;
};

static uint32_t name_hash(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 16777619u;
	}
	return h;
}

/* The index of NAME, added when ADD and not there yet; -1 if absent. */
static int index_name(struct fw_index *x, const char *name, int add)
{
	uint32_t k = name_hash(name) & x->mask;

	for (; x->slot[k]; k = (k + 1) & x->mask)
		if (!strcmp(x->name[x->slot[k] - 1], name))
			return (int)x->slot[k] - 1;
	if (!add)
		return -1;
	x->name[x->nnames] = name;
	x->chain[x->nnames] = -1;
	x->slot[k] = ++x->nnames;
	return (int)x->nnames - 1;
}

static void index_free(struct fw_index *x)
{
	free(x->name);
	free(x->chain);
	free(x->slot);
	free(x->start);
	free(x->order);
	memset(x, 0, sizeof *x);
}

static int index_build(struct fw_index *x, const struct mh_firewall *f)
{
	unsigned cap = f->nchains + f->nrules + 1, size = 16, i, *of = NULL;

	memset(x, 0, sizeof *x);
	x->f = f;
	while (size < 2 * cap)
		size <<= 1;
	x->mask = size - 1;
	x->name = malloc(cap * sizeof *x->name);
	x->chain = malloc(cap * sizeof *x->chain);
	x->slot = calloc(size, sizeof *x->slot);
	x->start = calloc(cap + 1, sizeof *x->start);
	x->order = malloc((f->nrules + 1) * sizeof *x->order);
	of = malloc((f->nrules + 1) * sizeof *of);
	if (!x->name || !x->chain || !x->slot || !x->start || !x->order || !of) {
		free(of);
		index_free(x);
		return -1;
	}
	for (i = 0; i < f->nchains; i++) {
		int k = index_name(x, f->chains[i].name, 1);
		if (x->chain[k] < 0)
			x->chain[k] = (int)i;
	}
	for (i = 0; i < f->nrules; i++) {
		of[i] = (unsigned)index_name(x, f->rules[i].chain, 1);
		x->start[of[i] + 1]++;
	}
	for (i = 0; i < x->nnames; i++)         /* counting sort: rules keep their order */
		x->start[i + 1] += x->start[i];
	for (i = 0; i < f->nrules; i++)
		x->order[x->start[of[i]]++] = i;
	for (i = x->nnames; i > 0; i--)
		x->start[i] = x->start[i - 1];
	x->start[0] = 0;
	free(of);
	return 0;
}

static const struct mh_nft_chain *index_chain(struct fw_index *x, const char *name)
{
	int k = index_name(x, name, 0);

	return k < 0 || x->chain[k] < 0 ? NULL : &x->f->chains[x->chain[k]];
}

/* The rules of chain NAME, in order: *N indexes into f->rules. */
static const unsigned *index_rules(struct fw_index *x, const char *name, unsigned *n)
{
	int k = index_name(x, name, 0);

	*n = k < 0 ? 0 : x->start[k + 1] - x->start[k];
	return k < 0 ? x->order : x->order + x->start[k];
}

struct nft_diff {
	struct mh_plan *want;
	struct mh_firewall *have;
	int full;               /* HAVE is the kernel (else the plan before the event) */
	struct mh_fw_ops *ops;
	int egress_differs;     /* the incremental path: chain egress must be read */
	struct fw_index wx, hx; /* of WANT's firewall and of HAVE */
};

static struct mh_fw_op *op(struct nft_diff *d, uint8_t action, uint8_t kind, int owner)
{
	return mh_fw_op_push(d->ops, action, kind, owner);
}

static int table_part(struct nft_diff *d, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int table_part(struct nft_diff *d, const char *fmt, ...)
{
	struct mh_fw_op *o = op(d, MH_OP_ADD, MH_FWOP_TABLE, MH_NO_OWNER);
	va_list ap;

	if (!o)
		return -1;
	va_start(ap, fmt);
	vsnprintf(o->detail, sizeof o->detail, fmt, ap);
	va_end(ap);
	return 0;
}

/* Two rules are the same: from two plans, by what they are; else by their
 * expressions (and comments). */
static int rule_same(struct nft_diff *d, struct mh_fw_rule *w, const struct mh_fw_rule *h)
{
	if (strcmp(w->comment, h->comment) || strcmp(w->jump, h->jump))
		return 0;
	if (!d->full)
		return w->kind == h->kind && w->ours == h->ours && w->pin == h->pin;
	return !strcmp(want_text(d->want, w), h->text ? h->text : "");
}

/* The fixed part: sets, base chains and their rules, chain egress. */
static int diff_skeleton(struct nft_diff *d)
{
	static const char *const base[] = { "prerouting", "output", "postrouting" };
	struct mh_firewall *w = &d->want->fw, *h = d->have;
	unsigned i;

	for (i = 0; i < MH_NSETS; i++)
		if (!h->sets[i] && table_part(d, "%s %s", i == MH_SET_MASQ ? "set" : "map",
					      mh_nft_set_names[i]) < 0)
			return -1;
	if (!index_chain(&d->hx, MH_NFT_EGRESS) && table_part(d, "chain " MH_NFT_EGRESS) < 0)
		return -1;
	for (i = 0; i < 3; i++) {
		const struct mh_nft_chain *wc = index_chain(&d->wx, base[i]);
		const struct mh_nft_chain *hc = index_chain(&d->hx, base[i]);
		const unsigned *wr, *hr;
		unsigned nw, nh, k, same = 0;
		if (!hc || !hc->base || hc->hook != wc->hook || hc->prio != wc->prio ||
		    strcmp(hc->type, wc->type)) {
			if (table_part(d, "base chain %s", base[i]) < 0)
				return -1;
			continue;
		}
		wr = index_rules(&d->wx, base[i], &nw);
		hr = index_rules(&d->hx, base[i], &nh);
		for (k = 0; k < nw && k < nh; k++)
			same += rule_same(d, &w->rules[wr[k]], &h->rules[hr[k]]);
		if ((same < nw || nh != nw) &&
		    table_part(d, "%u of the %u rules of chain %s", nw - same, nw, base[i]) < 0)
			return -1;
	}
	return 0;
}

/* The link chains: added when missing, refilled when their rules differ. */
static int diff_link_chains(struct nft_diff *d)
{
	struct mh_firewall *w = &d->want->fw, *h = d->have;
	unsigned i;

	for (i = 0; i < w->nchains; i++) {
		const struct mh_nft_chain *c = &w->chains[i];
		const unsigned *wr, *hr;
		unsigned nw, nh, k, same = 0;
		struct mh_fw_op *o;
		if (c->owner < 0)
			continue;
		if (!index_chain(&d->hx, c->name)) {
			if (!(o = op(d, MH_OP_ADD, MH_FWOP_CHAIN, c->owner)))
				return -1;
			o->chain = c;
			continue;
		}
		if (!d->full)
			continue;       /* the name says what it holds */
		wr = index_rules(&d->wx, c->name, &nw);
		hr = index_rules(&d->hx, c->name, &nh);
		for (k = 0; k < nw && k < nh; k++)
			same += rule_same(d, &w->rules[wr[k]], &h->rules[hr[k]]);
		if (same == nw && nh == nw)
			continue;
		if (!(o = op(d, MH_OP_REPLACE, MH_FWOP_CHAIN, c->owner)))
			return -1;
		o->chain = c;
		o->missing = nw - same;
		o->total = nw;
	}
	return 0;
}

static int elem_same(const struct mh_nft_elem *a, const struct mh_nft_elem *b)
{
	return !strcmp(a->chain, b->chain) && a->addr == b->addr && !strcmp(a->comment, b->comment);
}

static int elem_key_eq(const struct mh_nft_elem *a, const struct mh_nft_elem *b)
{
	return a->set == b->set && !memcmp(a->key, b->key, a->klen);
}

/* Map elements: kept when right, else deleted and added.  Few links have
 * more than a few elements each; hashing pays off from hundreds. */
static int diff_elems(struct nft_diff *d)
{
	struct mh_firewall *w = &d->want->fw, *h = d->have;
	unsigned char *kept = calloc(h->nelems ? h->nelems : 1, 1);
	unsigned *by_key = NULL, i, j, hsz = 16;
	int rc = -1;

	if (!kept)
		return -1;
	while (hsz < 2 * h->nelems + 2)
		hsz <<= 1;
	by_key = malloc(hsz * sizeof *by_key);
	if (!by_key)
		goto out;
	memset(by_key, 0xff, hsz * sizeof *by_key);
	for (j = 0; j < h->nelems; j++) {
		uint32_t k = (mh_hash(h->elems[j].key, h->elems[j].klen) + h->elems[j].set) & (hsz - 1);
		while (by_key[k] != ~0u)
			k = (k + 1) & (hsz - 1);
		by_key[k] = j;
	}
	for (i = 0; i < w->nelems; i++) {
		const struct mh_nft_elem *e = &w->elems[i];
		uint32_t k = (mh_hash(e->key, e->klen) + e->set) & (hsz - 1);
		const struct mh_nft_elem *found = NULL;
		struct mh_fw_op *o;
		for (; by_key[k] != ~0u; k = (k + 1) & (hsz - 1))
			if (elem_key_eq(e, &h->elems[by_key[k]])) {
				found = &h->elems[by_key[k]];
				break;
			}
		if (found && elem_same(e, found)) {
			kept[by_key[k]] = 1;
			continue;
		}
		if (!(o = op(d, MH_OP_ADD, MH_FWOP_ELEM, e->owner)))
			goto out;
		o->elem = e;
	}
	for (j = 0; j < h->nelems; j++) {
		struct mh_fw_op *o;
		if (kept[j])
			continue;
		if (!(o = op(d, MH_OP_DELETE, MH_FWOP_ELEM, MH_NO_OWNER)))
			goto out;
		o->elem = &h->elems[j];
	}
	rc = 0;
out:
	free(kept);
	free(by_key);
	return rc;
}

static int is_mask_rule(const struct mh_fw_rule *r)
{
	return !strncmp(r->comment, "multihome mask ", 15) && !r->jump[0];
}

/* Chain egress against a copy of it with handles (the kernel's): the three
 * mask rules first (replaced in place), then the pin jumps by priority
 * (kept where in order, deleted otherwise, the missing ones inserted before
 * the next kept one). */
static int diff_egress_rules(struct nft_diff *d, struct fw_index *hx)
{
	const struct mh_firewall *w = &d->want->fw, *h = hx->f;
	const unsigned *wr, *hr;
	unsigned nw, nh, i, j, nmask = 0;
	uint64_t *handle;
	int last = -1, rc = -1;
	struct mh_fw_op *o;

	wr = index_rules(&d->wx, MH_NFT_EGRESS, &nw);
	hr = index_rules(hx, MH_NFT_EGRESS, &nh);
	if (nw < MASKS || !(handle = calloc(nw, sizeof *handle)))
		return -1;
	for (i = 0; i < MASKS && i < nh; i++)
		nmask += is_mask_rule(&h->rules[hr[i]]);
	if (nmask == MASKS) {
		for (i = 0; i < MASKS; i++)
			if (!rule_same(d, &w->rules[wr[i]], &h->rules[hr[i]])) {
				if (!(o = op(d, MH_OP_REPLACE, MH_FWOP_RULE, MH_NO_OWNER)))
					goto out;
				o->rule = &w->rules[wr[i]];
				o->handle = h->rules[hr[i]].handle;
			}
	} else {
		nmask = 0;      /* damaged: put them back at the head; strays go below */
		for (i = MASKS; i-- > 0;) {
			if (!(o = op(d, MH_OP_ADD, MH_FWOP_RULE, MH_NO_OWNER)))
				goto out;
			o->rule = &w->rules[wr[i]];
			o->at_head = 1;
		}
	}
	for (j = nmask; j < nh; j++) {
		const struct mh_fw_rule *k = &h->rules[hr[j]];
		int idx = -1;
		for (i = MASKS; i < nw && idx < 0; i++)
			if (!handle[i] && rule_same(d, &w->rules[wr[i]], k))
				idx = (int)i;
		if (idx > last) {
			handle[idx] = k->handle ? k->handle : 1;
			last = idx;
			continue;
		}
		if (!(o = op(d, MH_OP_DELETE, MH_FWOP_RULE, MH_NO_OWNER)))
			goto out;
		o->rule = k;
		o->handle = k->handle;
	}
	for (i = MASKS; i < nw; i++) {
		if (handle[i])
			continue;
		if (!(o = op(d, MH_OP_ADD, MH_FWOP_RULE, w->rules[wr[i]].owner)))
			goto out;
		o->rule = &w->rules[wr[i]];
		for (j = i + 1; j < nw && !o->handle; j++)
			o->handle = handle[j];
	}
	rc = 0;
out:
	free(handle);
	return rc;
}

/* The incremental path: does egress differ between the two plans? */
static int egress_differs(struct nft_diff *d)
{
	struct mh_firewall *w = &d->want->fw, *h = d->have;
	const unsigned *wr, *hr;
	unsigned nw, nh, i;

	wr = index_rules(&d->wx, MH_NFT_EGRESS, &nw);
	hr = index_rules(&d->hx, MH_NFT_EGRESS, &nh);
	if (nw != nh)
		return 1;
	for (i = 0; i < nw; i++)
		if (!rule_same(d, &w->rules[wr[i]], &h->rules[hr[i]]))
			return 1;
	return 0;
}

static int is_link_chain(const struct mh_nft_chain *c)
{
	return !c->base && strcmp(c->name, MH_NFT_EGRESS);
}

static int diff_chain_deletes(struct nft_diff *d)
{
	unsigned i;

	for (i = 0; i < d->have->nchains; i++) {
		const struct mh_nft_chain *c = &d->have->chains[i];
		struct mh_fw_op *o;
		if (!is_link_chain(c) || index_chain(&d->wx, c->name))
			continue;
		if (!(o = op(d, MH_OP_DELETE, MH_FWOP_CHAIN, MH_NO_OWNER)))
			return -1;
		o->chain = c;
	}
	return 0;
}

static int diff_parts(struct nft_diff *d)
{
	/* the plan before the event has the whole skeleton by construction */
	if ((d->full && diff_skeleton(d) < 0) || diff_link_chains(d) < 0 || diff_elems(d) < 0)
		return -1;
	if (d->full) {
		if (index_chain(&d->hx, MH_NFT_EGRESS) && diff_egress_rules(d, &d->hx) < 0)
			return -1;
	} else {
		d->egress_differs = egress_differs(d);
	}
	return diff_chain_deletes(d);
}

/* The diff.  D's indexes stay built (diff_egress_rules needs WANT's) until
 * nft_diff_done. */
static int nft_diff(struct nft_diff *d)
{
	d->ops->n = 0;
	if (!d->want->fw.wanted) {
		if (d->have->table && !op(d, MH_OP_DELETE, MH_FWOP_TABLE, MH_NO_OWNER))
			return -1;
		return 0;
	}
	if (!d->have->table)
		return table_part(d, "table ip " MH_NFT_TABLE);
	if (index_build(&d->wx, &d->want->fw) < 0 || index_build(&d->hx, d->have) < 0)
		return -1;
	return diff_parts(d);
}

static void nft_diff_done(struct nft_diff *d)
{
	index_free(&d->wx);
	index_free(&d->hx);
}

/* ---- the writer ---- */

static int rule_send(struct batch *b, const struct mh_plan *p, const struct mh_fw_rule *fr,
		     uint16_t flags, uint64_t pos)
{
	struct nftnl_rule *r = render(p, fr);
	struct nlmsghdr *h;

	if (!r)
		return -1;
	if (pos && (flags & NLM_F_REPLACE))
		nftnl_rule_set_u64(r, NFTNL_RULE_HANDLE, pos);
	else if (pos)
		nftnl_rule_set_u64(r, NFTNL_RULE_POSITION, pos);
	h = msg(b, NFT_MSG_NEWRULE, (uint16_t)(NLM_F_CREATE | flags), "adding a rule in chain",
		fr->chain, 0);
	if (h) {
		nftnl_rule_nlmsg_build_payload(h, r);
		msg_done(b, h);
	}
	nftnl_rule_free(r);
	return h ? 0 : -1;
}

/* HANDLE 0: flush the chain */
static int rule_del(struct batch *b, const char *chain, uint64_t handle)
{
	struct nftnl_rule *r = nftnl_rule_alloc();
	struct nlmsghdr *h = msg(b, NFT_MSG_DELRULE, 0, handle ? "deleting a rule (handle) of chain" :
				 "flushing chain", chain, handle);

	if (!r || !h) {
		nftnl_rule_free(r);
		return -1;
	}
	nftnl_rule_set_u32(r, NFTNL_RULE_FAMILY, FAMILY);
	nftnl_rule_set_str(r, NFTNL_RULE_TABLE, MH_NFT_TABLE);
	nftnl_rule_set_str(r, NFTNL_RULE_CHAIN, chain);
	if (handle)
		nftnl_rule_set_u64(r, NFTNL_RULE_HANDLE, handle);
	nftnl_rule_nlmsg_build_payload(h, r);
	msg_done(b, h);
	nftnl_rule_free(r);
	return 0;
}

static int chain_send(struct batch *b, uint16_t type, const struct mh_nft_chain *ch)
{
	struct nftnl_chain *c = nftnl_chain_alloc();
	/* EXCL: a chain of that name that the diff did not see fails the batch
	 * (then the full path compares its rules) instead of being filled twice */
	struct nlmsghdr *h = msg(b, type, type == NFT_MSG_NEWCHAIN ? NLM_F_CREATE | NLM_F_EXCL : 0,
				 type == NFT_MSG_NEWCHAIN ? "adding chain" : "deleting chain", ch->name, 0);

	if (!h || !c) {
		nftnl_chain_free(c);
		return -1;
	}
	nftnl_chain_set_u32(c, NFTNL_CHAIN_FAMILY, FAMILY);
	nftnl_chain_set_str(c, NFTNL_CHAIN_TABLE, MH_NFT_TABLE);
	nftnl_chain_set_str(c, NFTNL_CHAIN_NAME, ch->name);
	if (ch->base && type == NFT_MSG_NEWCHAIN) {
		nftnl_chain_set_str(c, NFTNL_CHAIN_TYPE, ch->type);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_HOOKNUM, ch->hook);
		nftnl_chain_set_s32(c, NFTNL_CHAIN_PRIO, ch->prio);
		nftnl_chain_set_u32(c, NFTNL_CHAIN_POLICY, NF_ACCEPT);
	}
	nftnl_chain_nlmsg_build_payload(h, c);
	msg_done(b, h);
	nftnl_chain_free(c);
	return 0;
}

static int table_send(struct batch *b, uint16_t type)
{
	struct nftnl_table *t = nftnl_table_alloc();
	struct nlmsghdr *h = msg(b, type, type == NFT_MSG_NEWTABLE ? NLM_F_CREATE : 0,
				 type == NFT_MSG_NEWTABLE ? "adding table ip " MH_NFT_TABLE :
				 "deleting table ip " MH_NFT_TABLE, NULL, 0);

	if (!h || !t) {
		nftnl_table_free(t);
		return -1;
	}
	nftnl_table_set_u32(t, NFTNL_TABLE_FAMILY, FAMILY);
	nftnl_table_set_str(t, NFTNL_TABLE_NAME, MH_NFT_TABLE);
	nftnl_table_nlmsg_build_payload(h, t);
	msg_done(b, h);
	nftnl_table_free(t);
	return 0;
}

/* udata as nft writes it: key byte order, data byte order, no interval */
static int set_send(struct batch *b, unsigned set)
{
	static const struct { uint32_t ktype, klen, dtype, dlen; } shape[MH_NSETS] = {
		[MH_SET_INGRESS] = { TYPE_IFNAME, IF_NAMESIZE, NFT_DATA_VERDICT, 16 },
		[MH_SET_RESTORE] = { TYPE_MARK, 4, NFT_DATA_VERDICT, 16 },
		[MH_SET_MASQ]    = { TYPE_IFNAME, IF_NAMESIZE, 0, 0 },
		[MH_SET_SNAT]    = { TYPE_IFNAME, IF_NAMESIZE, TYPE_IPADDR, 4 },
	};
	struct nftnl_set *s = nftnl_set_alloc();
	struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(64);
	struct nlmsghdr *h = msg(b, NFT_MSG_NEWSET, NLM_F_CREATE, "adding set", mh_nft_set_names[set], 0);

	if (!h || !s || !u) {
		nftnl_set_free(s);
		if (u)
			nftnl_udata_buf_free(u);
		return -1;
	}
	nftnl_set_set_u32(s, NFTNL_SET_FAMILY, FAMILY);
	nftnl_set_set_str(s, NFTNL_SET_TABLE, MH_NFT_TABLE);
	nftnl_set_set_str(s, NFTNL_SET_NAME, mh_nft_set_names[set]);
	nftnl_set_set_u32(s, NFTNL_SET_ID, set + 1);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_TYPE, shape[set].ktype);
	nftnl_set_set_u32(s, NFTNL_SET_KEY_LEN, shape[set].klen);
	nftnl_udata_put_u32(u, NFTNL_UDATA_SET_KEYBYTEORDER, 1);
	if (shape[set].dtype) {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, NFT_SET_MAP);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_TYPE, shape[set].dtype);
		nftnl_set_set_u32(s, NFTNL_SET_DATA_LEN, shape[set].dlen);
		nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATABYTEORDER, shape[set].dtype == TYPE_IPADDR ? 2 : 0);
		nftnl_udata_put_u32(u, NFTNL_UDATA_SET_DATA_INTERVAL, 0);
	} else {
		nftnl_set_set_u32(s, NFTNL_SET_FLAGS, 0);
	}
	nftnl_set_set_data(s, NFTNL_SET_USERDATA, nftnl_udata_buf_data(u), nftnl_udata_buf_len(u));
	nftnl_set_nlmsg_build_payload(h, s);
	msg_done(b, h);
	nftnl_udata_buf_free(u);
	nftnl_set_free(s);
	return 0;
}

#define ELEMS_MAX 32     /* elements per message (190 bytes each at most): room() keeps 8 KiB */

/* One element's attributes (an add: its verdict, address, comment). */
static struct nftnl_set_elem *elem_of(const struct mh_nft_elem *e, int add)
{
	struct nftnl_set_elem *x = nftnl_set_elem_alloc();

	if (!x)
		return NULL;
	nftnl_set_elem_set(x, NFTNL_SET_ELEM_KEY, e->key, e->klen);
	if (add && e->chain[0]) {
		nftnl_set_elem_set_u32(x, NFTNL_SET_ELEM_VERDICT, (uint32_t)NFT_GOTO);
		nftnl_set_elem_set_str(x, NFTNL_SET_ELEM_CHAIN, e->chain);
	}
	if (add && e->set == MH_SET_SNAT)
		nftnl_set_elem_set(x, NFTNL_SET_ELEM_DATA, &e->addr, 4);
	if (add && e->comment[0]) {
		struct nftnl_udata_buf *u = nftnl_udata_buf_alloc(MH_COMMENT_MAX + 8);
		nftnl_udata_put_strz(u, NFTNL_UDATA_SET_ELEM_COMMENT, e->comment);
		nftnl_set_elem_set(x, NFTNL_SET_ELEM_USERDATA, nftnl_udata_buf_data(u),
				   nftnl_udata_buf_len(u));
		nftnl_udata_buf_free(u);
	}
	return x;
}

/* One message of set SET's elements among ES[FROM..N): at most ELEMS_MAX;
 * *NEXT: where the next message starts. */
static int elems_chunk(struct batch *b, const struct mh_nft_elem *const *es, unsigned n, int add,
		       unsigned set, unsigned from, unsigned *next)
{
	struct nftnl_set *s = NULL;
	struct nlmsghdr *h;
	unsigned i, k = 0;

	for (i = from; i < n && k < ELEMS_MAX; i++) {
		struct nftnl_set_elem *x;
		if (es[i]->set != set)
			continue;
		if (!s) {
			s = nftnl_set_alloc();
			if (!s)
				return -1;
			nftnl_set_set_u32(s, NFTNL_SET_FAMILY, FAMILY);
			nftnl_set_set_str(s, NFTNL_SET_TABLE, MH_NFT_TABLE);
			nftnl_set_set_str(s, NFTNL_SET_NAME, mh_nft_set_names[set]);
		}
		if (!(x = elem_of(es[i], add))) {
			nftnl_set_free(s);
			return -1;
		}
		nftnl_set_elem_add(s, x);
		k++;
	}
	*next = i;
	if (!s)
		return 0;
	h = msg(b, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, add ? NLM_F_CREATE | NLM_F_EXCL : 0,
		add ? "adding elements of set" : "deleting elements of set", mh_nft_set_names[set], k);
	if (h) {
		nftnl_set_elems_nlmsg_build_payload(h, s);
		msg_done(b, h);
	}
	nftnl_set_free(s);
	return h ? 0 : -1;
}

/* Elements: per set and direction, ELEMS_MAX a message. */
static int elems_send(struct batch *b, const struct mh_nft_elem *const *es, unsigned n, int add)
{
	unsigned set, i, from;

	for (set = 0; set < MH_NSETS; set++)
		for (from = 0; from < n; from = i)
			if (elems_chunk(b, es, n, add, set, from, &i) < 0)
				return -1;
	return 0;
}

/* A link chain: created (or flushed), then filled with the plan's rules. */
static int chain_fill(struct batch *b, const struct mh_plan *p, const struct mh_nft_chain *c, int create)
{
	unsigned i;

	if (create ? chain_send(b, NFT_MSG_NEWCHAIN, c) < 0 : rule_del(b, c->name, 0) < 0)
		return -1;
	for (i = 0; i < p->fw.nrules; i++)     /* a link's rules are in its own chains */
		if (p->fw.rules[i].owner == c->owner && !strcmp(p->fw.rules[i].chain, c->name) &&
		    rule_send(b, p, &p->fw.rules[i], NLM_F_APPEND, 0) < 0)
			return -1;
	return 0;
}

/* The whole table from the plan, atomically replacing whatever is there
 * (NEWTABLE does not fail on an existing table: then delete it first). */
static int build_table(struct batch *b, const struct mh_plan *p)
{
	const struct mh_firewall *w = &p->fw;
	const struct mh_nft_elem **es;
	unsigned i;
	int rc = -1;

	if (table_send(b, NFT_MSG_NEWTABLE) < 0 || table_send(b, NFT_MSG_DELTABLE) < 0 ||
	    table_send(b, NFT_MSG_NEWTABLE) < 0)
		return -1;
	for (i = 0; i < MH_NSETS; i++)
		if (set_send(b, i) < 0)
			return -1;
	for (i = 0; i < w->nchains; i++)
		if (w->chains[i].owner < 0 && chain_send(b, NFT_MSG_NEWCHAIN, &w->chains[i]) < 0)
			return -1;
	/* the fixed rules, in order, before the link chains and the jumps to them */
	for (i = 0; i < w->nrules; i++) {
		const struct mh_fw_rule *r = &w->rules[i];
		if (r->owner < 0 && rule_send(b, p, r, NLM_F_APPEND, 0) < 0)
			return -1;
	}
	for (i = 0; i < w->nchains; i++)
		if (w->chains[i].owner >= 0 && chain_fill(b, p, &w->chains[i], 1) < 0)
			return -1;
	es = malloc((w->nelems ? w->nelems : 1) * sizeof *es);
	if (!es)
		return -1;
	for (i = 0; i < w->nelems; i++)
		es[i] = &w->elems[i];
	if (elems_send(b, es, w->nelems, 1) < 0)
		goto out;
	for (i = 0; i < w->nrules; i++)
		if (w->rules[i].kind == MH_FW_PIN_JUMP && rule_send(b, p, &w->rules[i], NLM_F_APPEND, 0) < 0)
			goto out;
	rc = 0;
out:
	free(es);
	return rc;
}

static int ops_send(struct batch *b, const struct mh_plan *p, const struct mh_fw_ops *ops)
{
	const struct mh_nft_elem **es = malloc((ops->n ? ops->n : 1) * sizeof *es);
	unsigned i, n;
	int rc = -1;

	if (!es)
		return -1;
	for (i = 0; i < ops->n; i++) {
		const struct mh_fw_op *o = &ops->v[i];
		if (o->kind == MH_FWOP_TABLE) {
			rc = o->action == MH_OP_DELETE ? table_send(b, NFT_MSG_DELTABLE) : build_table(b, p);
			goto out;
		}
	}
	/* 1. chains before anything points at them */
	for (i = 0; i < ops->n; i++) {
		const struct mh_fw_op *o = &ops->v[i];
		if (o->kind == MH_FWOP_CHAIN && o->action != MH_OP_DELETE &&
		    chain_fill(b, p, o->chain, o->action == MH_OP_ADD) < 0)
			goto out;
	}
	/* 2. elements: deletions, then additions */
	for (n = 0, i = 0; i < ops->n; i++)
		if (ops->v[i].kind == MH_FWOP_ELEM && ops->v[i].action == MH_OP_DELETE)
			es[n++] = ops->v[i].elem;
	if (elems_send(b, es, n, 0) < 0)
		goto out;
	for (n = 0, i = 0; i < ops->n; i++)
		if (ops->v[i].kind == MH_FWOP_ELEM && ops->v[i].action == MH_OP_ADD)
			es[n++] = ops->v[i].elem;
	if (elems_send(b, es, n, 1) < 0)
		goto out;
	/* 3. chain egress */
	for (i = 0; i < ops->n; i++) {
		const struct mh_fw_op *o = &ops->v[i];
		int r = 0;
		if (o->kind != MH_FWOP_RULE)
			continue;
		if (o->action == MH_OP_DELETE)
			r = rule_del(b, o->rule->chain, o->handle);
		else if (o->action == MH_OP_REPLACE)
			r = rule_send(b, p, o->rule, NLM_F_REPLACE, o->handle);
		else
			r = rule_send(b, p, o->rule, o->at_head || o->handle ? 0 : NLM_F_APPEND,
				      o->at_head ? 0 : o->handle);
		if (r < 0)
			goto out;
	}
	/* 4. chains nothing points at any more */
	for (i = 0; i < ops->n; i++) {
		const struct mh_fw_op *o = &ops->v[i];
		if (o->kind == MH_FWOP_CHAIN && o->action == MH_OP_DELETE &&
		    chain_send(b, NFT_MSG_DELCHAIN, o->chain) < 0)
			goto out;
	}
	rc = 0;
out:
	free(es);
	return rc;
}

static int send_ops(struct mh_nl *nl, const struct mh_plan *p, const struct mh_fw_ops *ops,
		    char *err, size_t len)
{
	struct batch b;
	int rc;

	if (!ops->n)
		return 0;
	batch_start(&b, nl);
	rc = ops_send(&b, p, ops);
	if (rc < 0)
		snprintf(err, len, "nftables: building the batch: out of memory");
	else
		rc = batch_commit(&b, err, len);
	batch_free(&b);
	return rc;
}

/* ---- entry points ---- */

/* The incremental path: no read but chain egress, and only when it changes. */
static int apply_delta(struct mh_nl *nl, struct mh_plan *want, struct mh_plan *before,
		       char *err, size_t len)
{
	struct mh_fw_ops ops = { 0 };
	struct nft_diff d = { .want = want, .have = &before->fw, .full = 0, .ops = &ops };
	int rc = -1;

	if (nft_diff(&d) < 0)
		goto out;
	if (d.egress_differs) {
		struct mh_firewall eg = { .backend = MH_FW_NFT };
		struct fw_index ex = { 0 };
		d.full = 1;     /* the kernel's rules now: compare their expressions */
		rc = read_egress(nl, &eg);
		if (rc == 0)
			rc = index_build(&ex, &eg);
		if (rc == 0)
			rc = diff_egress_rules(&d, &ex);
		if (rc == 0)
			rc = send_ops(nl, want, &ops, err, len);
		index_free(&ex);
		mh_firewall_free(&eg);
		goto out;
	}
	rc = send_ops(nl, want, &ops, err, len);
out:
	nft_diff_done(&d);
	mh_fw_ops_free(&ops);
	return rc;
}

static int apply_full(struct mh_nl *nl, struct mh_plan *want, char *err, size_t len)
{
	struct mh_firewall have;
	struct mh_fw_ops ops = { 0 };
	struct nft_diff d = { .want = want, .have = &have, .full = 1, .ops = &ops };
	int rc;

	if (read_all(nl, &have, err, len) < 0)
		return -1;
	rc = nft_diff(&d);
	if (rc < 0)
		snprintf(err, len, "nftables: out of memory");
	else
		rc = send_ops(nl, want, &ops, err, len);
	nft_diff_done(&d);
	mh_fw_ops_free(&ops);
	mh_firewall_free(&have);
	return rc;
}

int mh_fw_nft_apply(struct mh_plan *want, struct mh_plan *before, int full, char *err, size_t len)
{
	struct mh_nl *nl = sock_get();
	int rc;

	if (!nl) {
		if (!want->fw.wanted && (errno == EPROTONOSUPPORT || errno == EAFNOSUPPORT))
			return 0;       /* no nfnetlink in this kernel: nothing of ours */
		snprintf(err, len, "nftables: netlink socket: %s", strerror(errno));
		return -1;
	}
	/* a first link: the table may be there from before, look */
	if (!full && before && before->fw.wanted) {
		err[0] = 0;
		if (apply_delta(nl, want, before, err, len) == 0)
			return 0;
		mh_log(MH_LOG_DEBUG, "%s; reading table ip " MH_NFT_TABLE " whole", err);
	}
	if (mh_plan_whole(want) < 0) {
		snprintf(err, len, "nftables: out of memory");
		return -1;
	}
	rc = apply_full(nl, want, err, len);
	if (rc < 0)
		sock_drop();    /* it may be out of step */
	return rc;
}

int mh_fw_nft_status(struct mh_plan *want, struct mh_fw_ops *ops, struct mh_firewall *have,
		     char *err, size_t len)
{
	struct mh_nl nl = { 0 };
	struct nft_diff d = { .want = want, .have = have, .full = 1, .ops = ops };
	int rc;

	memset(have, 0, sizeof *have);
	if (mh_nl_open(&nl, NETLINK_NETFILTER) < 0) {
		if (errno != EPROTONOSUPPORT && errno != EAFNOSUPPORT) {
			snprintf(err, len, "nftables: netlink socket: %s", strerror(errno));
			return -1;
		}
		rc = nft_diff(&d);      /* no nf_tables: nothing there */
		nft_diff_done(&d);
		return rc;
	}
	rc = read_all(&nl, have, err, len);
	mh_nl_close(&nl);
	if (rc == 0 && nft_diff(&d) < 0) {
		snprintf(err, len, "nftables: out of memory");
		rc = -1;
	}
	nft_diff_done(&d);
	return rc;
}

int mh_fw_nft_diff(struct mh_plan *want, struct mh_firewall *have, int full, struct mh_fw_ops *ops)
{
	struct nft_diff d = { .want = want, .have = have, .full = full, .ops = ops };
	int rc = nft_diff(&d);

	nft_diff_done(&d);
	return rc < 0 ? -1 : d.egress_differs;
}

const char *mh_fw_nft_rule_text(struct mh_plan *p, struct mh_fw_rule *r)
{
	return r->kind == 0xff ? (r->text ? r->text : "") : want_text(p, r);
}

int mh_fw_nft_parse_elems(const struct nlmsghdr *h, unsigned set, struct mh_firewall *f)
{
	struct nft_read rd = { .f = f, .cap_elems = f->nelems, .set = (int)set };

	return elems_cb(h, &rd) == MNL_CB_ERROR ? -1 : 0;
}

int mh_fw_nft_delta_batch(struct mh_plan *want, struct mh_plan *before, char **buf, size_t *len)
{
	struct mh_fw_ops ops = { 0 };
	struct nft_diff d = { .want = want, .have = &before->fw, .full = 0, .ops = &ops };
	struct mh_nl dry = { .seq = 1 };
	struct batch b;
	int rc = -1;

	memset(&b, 0, sizeof b);
	errno = ENOMEM;
	if (!want->fw.wanted || !before->fw.wanted || nft_diff(&d) < 0)
		goto out;
	errno = EAGAIN;         /* the delta needs chain egress's handles */
	if (d.egress_differs)
		goto out;
	errno = ENOMEM;
	batch_start(&b, &dry);
	if (ops_send(&b, want, &ops) < 0 || batch_end(&b) < 0)
		goto out;
	*buf = b.buf;
	*len = b.used;
	b.buf = NULL;
	rc = 0;
out:
	nft_diff_done(&d);
	batch_free(&b);
	mh_fw_ops_free(&ops);
	return rc;
}
