/* multihomectl: read table ip multihome (the nftables backend,
 * common/fw_nft.c) over nfnetlink with libmnl and libnftnl, never by
 * running nft, and say what of it is missing.
 *
 * The names are the backend's (see the header comment of common/fw_nft.c
 * and docs/design-notes.md, "The nftables backend"): per up link an element
 * of map ingress (ifname : goto in_|up_NAME_0xV_0xM_NAT), its chain, an
 * element of map restore (mark : goto rs_NAME_0xV_0xM), its chain, its NAT
 * element (set masq, or map srcaddr ifname : address), and with pins a chain
 * pin_NAME_HASH reached by a jump from chain egress.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
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

#include "fw_nft_read.h"
#include "internal.h"

#define TABLE "multihome"
#define FAMILY NFPROTO_IPV4

static const char *const SETS[4] = { "ingress", "restore", "masq", "srcaddr" };
enum { S_INGRESS, S_RESTORE, S_MASQ, S_SNAT };

/* ---- dumps ---- */

struct conn {
	struct mnl_socket *sock;
	uint32_t portid, seq;
};

typedef int (*cb_t)(const struct nlmsghdr *h, struct nftr *t, void *arg);

struct dump_ctx {
	cb_t cb;
	struct nftr *t;
	void *arg;
};

static int dump_one(const struct nlmsghdr *h, void *data)
{
	struct dump_ctx *d = data;

	return d->cb(h, d->t, d->arg);
}

/* Send a dump request and run CB on every answer: 0, or -1 with errno. */
static int dump(struct conn *c, struct nlmsghdr *req, cb_t cb, struct nftr *t, void *arg)
{
	struct dump_ctx d = { cb, t, arg };

	return mh_nl_request(c->sock, req, dump_one, &d);
}

/* Room for entry N of V: 16 entries, then doubled at each power of two. */
static void *grow(void *v, unsigned n, size_t size)
{
	if ((n && n < 16) || (n > 16 && (n & (n - 1))))
		return v;
	return realloc(v, (n < 16 ? 16 : n * 2) * size);
}

static int table_cb(const struct nlmsghdr *h, struct nftr *t, void *arg)
{
	struct nftnl_table *x = nftnl_table_alloc();

	if (!x)
		return -1;
	if (nftnl_table_nlmsg_parse(h, x) == 0 &&
	    !strcmp(nftnl_table_get_str(x, NFTNL_TABLE_NAME), TABLE))
		t->table = 1;
	nftnl_table_free(x);
	return 0;
}

static int chain_cb(const struct nlmsghdr *h, struct nftr *t, void *arg)
{
	struct nftnl_chain *x = nftnl_chain_alloc();
	struct nftr_chain *c;
	void *v;

	if (!x)
		return -1;
	if (nftnl_chain_nlmsg_parse(h, x) < 0 ||
	    strcmp(nftnl_chain_get_str(x, NFTNL_CHAIN_TABLE), TABLE)) {
		nftnl_chain_free(x);
		return 0;
	}
	v = grow(t->chains, t->nchains, sizeof *t->chains);
	if (!v) {
		nftnl_chain_free(x);
		return -1;
	}
	t->chains = v;
	c = &t->chains[t->nchains++];
	memset(c, 0, sizeof *c);
	snprintf(c->name, sizeof c->name, "%s", nftnl_chain_get_str(x, NFTNL_CHAIN_NAME));
	if (nftnl_chain_is_set(x, NFTNL_CHAIN_HOOKNUM)) {
		c->base = 1;
		c->hooknum = nftnl_chain_get_u32(x, NFTNL_CHAIN_HOOKNUM);
	}
	nftnl_chain_free(x);
	return 0;
}

static void udata_comment(const void *u, uint32_t len, char *out, size_t outlen)
{
	const unsigned char *p = u;

	out[0] = 0;
	while (len >= 2 && (uint32_t)p[1] + 2 <= len) {
		if (p[0] == 0 && p[1]) {        /* NFTNL_UDATA_RULE_COMMENT */
			size_t l = p[1] < outlen ? p[1] : outlen;
			memcpy(out, p + 2, l);
			out[l - 1] = 0;
			return;
		}
		len -= (uint32_t)p[1] + 2;
		p += p[1] + 2;
	}
}

static int rule_cb(const struct nlmsghdr *h, struct nftr *t, void *arg)
{
	struct nftnl_rule *x = nftnl_rule_alloc();
	struct nftnl_expr_iter *it;
	struct nftnl_expr *e;
	struct nftr_rule *r;
	const void *u;
	uint32_t l = 0;
	void *v;

	if (!x)
		return -1;
	if (nftnl_rule_nlmsg_parse(h, x) < 0 ||
	    strcmp(nftnl_rule_get_str(x, NFTNL_RULE_TABLE), TABLE)) {
		nftnl_rule_free(x);
		return 0;
	}
	v = grow(t->rules, t->nrules, sizeof *t->rules);
	if (!v) {
		nftnl_rule_free(x);
		return -1;
	}
	t->rules = v;
	r = &t->rules[t->nrules++];
	memset(r, 0, sizeof *r);
	snprintf(r->chain, sizeof r->chain, "%s", nftnl_rule_get_str(x, NFTNL_RULE_CHAIN));
	u = nftnl_rule_get_data(x, NFTNL_RULE_USERDATA, &l);
	if (u)
		udata_comment(u, l, r->comment, sizeof r->comment);
	it = nftnl_expr_iter_create(x);
	for (e = it ? nftnl_expr_iter_next(it) : NULL; e; e = nftnl_expr_iter_next(it)) {
		const char *name = nftnl_expr_get_str(e, NFTNL_EXPR_NAME);
		if (!strcmp(name, "immediate") && nftnl_expr_is_set(e, NFTNL_EXPR_IMM_CHAIN))
			snprintf(r->jump, sizeof r->jump, "%s", nftnl_expr_get_str(e, NFTNL_EXPR_IMM_CHAIN));
		else if (!strcmp(name, "lookup") && nftnl_expr_is_set(e, NFTNL_EXPR_LOOKUP_SET))
			snprintf(r->lookup, sizeof r->lookup, "%s",
				 nftnl_expr_get_str(e, NFTNL_EXPR_LOOKUP_SET));
	}
	if (it)
		nftnl_expr_iter_destroy(it);
	nftnl_rule_free(x);
	return 0;
}

static int set_cb(const struct nlmsghdr *h, struct nftr *t, void *arg)
{
	struct nftnl_set *x = nftnl_set_alloc();
	int i;

	if (!x)
		return -1;
	if (nftnl_set_nlmsg_parse(h, x) == 0 && !strcmp(nftnl_set_get_str(x, NFTNL_SET_TABLE), TABLE))
		for (i = 0; i < 4; i++)
			if (!strcmp(nftnl_set_get_str(x, NFTNL_SET_NAME), SETS[i]))
				t->has_set[i] = 1;
	nftnl_set_free(x);
	return 0;
}

static int elem_cb(const struct nlmsghdr *h, struct nftr *t, void *arg)
{
	int i = *(int *)arg;
	struct nftnl_set *x = nftnl_set_alloc();
	struct nftnl_set_elems_iter *it;
	struct nftnl_set_elem *e;
	int rc = 0;

	if (!x)
		return -1;
	if (nftnl_set_elems_nlmsg_parse(h, x) < 0) {
		nftnl_set_free(x);
		return 0;
	}
	it = nftnl_set_elems_iter_create(x);
	for (e = it ? nftnl_set_elems_iter_next(it) : NULL; e; e = nftnl_set_elems_iter_next(it)) {
		struct nftr_elem *y;
		const void *d;
		uint32_t l = 0;
		void *v = grow(t->elems[i], t->nelems[i], sizeof *t->elems[i]);

		if (!v) {
			rc = -1;
			break;
		}
		t->elems[i] = v;
		y = &t->elems[i][t->nelems[i]++];
		memset(y, 0, sizeof *y);
		d = nftnl_set_elem_get(e, NFTNL_SET_ELEM_KEY, &l);
		if (d)
			memcpy(y->key, d, l < sizeof y->key ? l : sizeof y->key);
		if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_VERDICT))
			y->verdict = nftnl_set_elem_get_u32(e, NFTNL_SET_ELEM_VERDICT);
		if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_CHAIN))
			snprintf(y->chain, sizeof y->chain, "%s",
				 nftnl_set_elem_get_str(e, NFTNL_SET_ELEM_CHAIN));
		if (nftnl_set_elem_is_set(e, NFTNL_SET_ELEM_DATA)) {
			d = nftnl_set_elem_get(e, NFTNL_SET_ELEM_DATA, &l);
			if (d && l == 4)
				memcpy(&y->addr, d, 4);
		}
	}
	if (it)
		nftnl_set_elems_iter_destroy(it);
	nftnl_set_free(x);
	return rc;
}

static int conn_open(struct conn *c)
{
	memset(c, 0, sizeof *c);
	c->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
	if (!c->sock)
		return -1;
	if (mnl_socket_bind(c->sock, 0, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(c->sock);
		c->sock = NULL;
		return -1;
	}
	c->portid = mnl_socket_get_portid(c->sock);
	c->seq = (uint32_t)time(NULL) << 8;
	return 0;
}

static int nf_absent(int e)
{
	return e == EPROTONOSUPPORT || e == EAFNOSUPPORT || e == EOPNOTSUPP;
}

int nftr_read(struct nftr *t)
{
	char buf[1024];
	struct nlmsghdr *h;
	struct conn c;
	const char *what = "socket";
	int i;

	memset(t, 0, sizeof *t);
	if (conn_open(&c) < 0) {
		if (nf_absent(errno))
			return 0;       /* no nfnetlink: no table */
		goto fail;
	}
	what = "tables";
	h = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETTABLE, FAMILY, NLM_F_DUMP, c.seq++);
	if (dump(&c, h, table_cb, t, NULL) < 0) {
		if (nf_absent(errno) || errno == ENOENT) {
			mnl_socket_close(c.sock);
			return 0;
		}
		goto fail;
	}
	if (!t->table) {
		mnl_socket_close(c.sock);
		return 0;
	}
	{
		struct nftnl_chain *x = nftnl_chain_alloc();
		what = "chains";
		if (!x)
			goto fail;
		nftnl_chain_set_str(x, NFTNL_CHAIN_TABLE, TABLE);
		h = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETCHAIN, FAMILY, NLM_F_DUMP, c.seq++);
		nftnl_chain_nlmsg_build_payload(h, x);
		nftnl_chain_free(x);
		if (dump(&c, h, chain_cb, t, NULL) < 0)
			goto fail;
	}
	{
		struct nftnl_rule *x = nftnl_rule_alloc();
		what = "rules";
		if (!x)
			goto fail;
		nftnl_rule_set_str(x, NFTNL_RULE_TABLE, TABLE);
		h = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETRULE, FAMILY, NLM_F_DUMP, c.seq++);
		nftnl_rule_nlmsg_build_payload(h, x);
		nftnl_rule_free(x);
		if (dump(&c, h, rule_cb, t, NULL) < 0)
			goto fail;
	}
	{
		struct nftnl_set *x = nftnl_set_alloc();
		what = "sets";
		if (!x)
			goto fail;
		nftnl_set_set_str(x, NFTNL_SET_TABLE, TABLE);
		h = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSET, FAMILY, NLM_F_DUMP, c.seq++);
		nftnl_set_nlmsg_build_payload(h, x);
		nftnl_set_free(x);
		if (dump(&c, h, set_cb, t, NULL) < 0)
			goto fail;
	}
	for (i = 0; i < 4; i++) {
		struct nftnl_set *x;
		if (!t->has_set[i])
			continue;
		x = nftnl_set_alloc();
		what = SETS[i];
		if (!x)
			goto fail;
		nftnl_set_set_str(x, NFTNL_SET_TABLE, TABLE);
		nftnl_set_set_str(x, NFTNL_SET_NAME, SETS[i]);
		h = nftnl_nlmsg_build_hdr(buf, NFT_MSG_GETSETELEM, FAMILY, NLM_F_DUMP, c.seq++);
		nftnl_set_elems_nlmsg_build_payload(h, x);
		nftnl_set_free(x);
		if (dump(&c, h, elem_cb, t, &i) < 0) {
			if (errno == ENOENT) {  /* deleted between the two dumps */
				t->has_set[i] = 0;
				continue;
			}
			goto fail;
		}
	}
	/* the rules' chains: count the ones that are ours */
	{
		unsigned r, k;
		for (r = 0; r < t->nrules; r++)
			for (k = 0; k < t->nchains; k++)
				if (!strcmp(t->chains[k].name, t->rules[r].chain) &&
				    !strncmp(t->rules[r].comment, "multihome", 9))
					t->chains[k].nrules++;
	}
	mnl_socket_close(c.sock);
	return 0;
fail:
	snprintf(t->err, sizeof t->err, "nftables: reading table ip " TABLE " (%s): %s", what,
		 strerror(errno));
	if (c.sock)
		mnl_socket_close(c.sock);
	return -1;
}

void nftr_free(struct nftr *t)
{
	int i;

	free(t->chains);
	free(t->rules);
	for (i = 0; i < 4; i++)
		free(t->elems[i]);
	memset(t, 0, sizeof *t);
}

/* ---- what is missing ---- */

static const struct nftr_chain *chain_find(const struct nftr *t, const char *name)
{
	unsigned i;

	for (i = 0; i < t->nchains; i++)
		if (!strcmp(t->chains[i].name, name))
			return &t->chains[i];
	return NULL;
}

static const struct nftr_elem *elem_find(const struct nftr *t, int set, const void *key, size_t klen)
{
	char k[16] = { 0 };
	unsigned i;

	memcpy(k, key, klen < sizeof k ? klen : sizeof k);
	for (i = 0; i < t->nelems[set]; i++)
		if (!memcmp(t->elems[set][i].key, k, sizeof k))
			return &t->elems[set][i];
	return NULL;
}

static unsigned add(char *out, size_t len, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static unsigned add(char *out, size_t len, const char *fmt, ...)
{
	size_t l = strlen(out);
	va_list ap;

	if (l + 3 >= len)
		return 1;
	if (l)
		l += (size_t)snprintf(out + l, len - l, ", ");
	va_start(ap, fmt);
	vsnprintf(out + l, len - l, fmt, ap);
	va_end(ap);
	return 1;
}

/* The rules of CHAIN carrying COMMENT (NULL: any of ours) that jump to JUMP
 * or look up LOOKUP (NULL: whatever). */
static unsigned count(const struct nftr *t, const char *chain, const char *comment,
		      const char *jump, const char *lookup)
{
	unsigned i, n = 0;

	for (i = 0; i < t->nrules; i++) {
		const struct nftr_rule *r = &t->rules[i];
		if (strcmp(r->chain, chain) || strncmp(r->comment, "multihome", 9))
			continue;
		if (comment && strcmp(r->comment, comment))
			continue;
		if (jump && strcmp(r->jump, jump))
			continue;
		if (lookup && strcmp(r->lookup, lookup))
			continue;
		n++;
	}
	return n;
}

unsigned nftr_table_missing(const struct nftr *t, uint32_t ours, char *out, size_t len)
{
	static const struct { const char *name; uint32_t hook; unsigned rules; } base[] = {
		{ "prerouting", NF_INET_PRE_ROUTING, 2 },
		{ "output", NF_INET_LOCAL_OUT, 1 },
		{ "postrouting", NF_INET_POST_ROUTING, 2 },
	};
	char mask[64];
	unsigned i, n = 0;

	if (!t->table)
		return add(out, len, "table ip " TABLE);
	for (i = 0; i < 3; i++) {
		const struct nftr_chain *c = chain_find(t, base[i].name);
		if (!c || !c->base || c->hooknum != base[i].hook)
			n += add(out, len, "base chain %s", base[i].name);
		else if (c->nrules < base[i].rules)
			n += add(out, len, "%u of the %u rules of chain %s", base[i].rules - c->nrules,
				 base[i].rules, base[i].name);
		else if (i == 0 && !count(t, "prerouting", NULL, NULL, SETS[S_INGRESS]))
			n += add(out, len, "rule 'iifname vmap @ingress' in chain prerouting");
	}
	if (!chain_find(t, "egress"))
		n += add(out, len, "chain egress");
	else {
		unsigned k;
		snprintf(mask, sizeof mask, "multihome mask 0x%08x", ours);
		k = count(t, "egress", mask, NULL, NULL);
		if (k < 3)
			n += add(out, len, "%u of the 3 rules '%s' in chain egress", 3 - k, mask);
	}
	for (i = 0; i < 4; i++)
		if (!t->has_set[i])
			n += add(out, len, "%s %s", i == S_MASQ ? "set" : "map", SETS[i]);
	return n;
}

/* The backend's chain names (want_fill() in common/fw_nft.c). */
static uint32_t pins_hash(const struct mh_link *l)
{
	uint32_t h = 2166136261u;
	unsigned i;
#define MIX(x) do { uint32_t _v = (uint32_t)(x); int _b; \
	for (_b = 0; _b < 4; _b++) { h ^= (_v >> (8 * _b)) & 0xff; h *= 16777619u; } } while (0)
	MIX(l->cfg.mark);
	MIX(l->cfg.mask);
	MIX(l->cfg.npins);
	for (i = 0; i < l->cfg.npins; i++) {
		const struct mh_pin *p = &l->cfg.pins[i];
		MIX(p->proto);
		MIX(p->dst_len);
		MIX(p->port_lo);
		MIX(p->port_hi);
		MIX(p->dst);
	}
#undef MIX
	return h;
}

unsigned nftr_link_missing(const struct nftr *t, const struct mh_link *l, char *out, size_t len)
{
	char in[128], rs[128], pin[128], a[INET_ADDRSTRLEN] = "";
	const struct nftr_chain *c;
	const struct nftr_elem *e;
	uint32_t mark = l->cfg.mark;
	unsigned n = 0;

	if (!t->table)
		return 0;       /* said once, for the table */
	inet_ntop(AF_INET, &l->local, a, sizeof a);
	snprintf(in, sizeof in, "%s%s_0x%x_0x%x_%s%s", l->cfg.reply_via_link ? "in_" : "up_",
		 l->cfg.name, l->cfg.mark, l->cfg.mask,
		 l->cfg.nat == MH_NAT_SNAT ? "s" : l->cfg.nat == MH_NAT_MASQUERADE ? "m" : "n",
		 l->cfg.nat == MH_NAT_SNAT ? a : "");
	snprintf(rs, sizeof rs, "rs_%s_0x%x_0x%x", l->cfg.name, l->cfg.mark, l->cfg.mask);
	snprintf(pin, sizeof pin, "pin_%s_%08x", l->cfg.name, pins_hash(l));

	/* ingress: "ppp0" : goto in_... */
	e = t->has_set[S_INGRESS] ? elem_find(t, S_INGRESS, l->ifname, strlen(l->ifname)) : NULL;
	if (t->has_set[S_INGRESS] && !e)
		n += add(out, len, "element \"%s\" : goto %s in map ingress", l->ifname, in);
	else if (e && (e->verdict != (uint32_t)NFT_GOTO || strcmp(e->chain, in)))
		n += add(out, len, "element \"%s\" in map ingress going to %s, not %s", l->ifname,
			 e->chain[0] ? e->chain : "a plain verdict", in);
	c = chain_find(t, in);
	if (!c)
		n += add(out, len, "chain %s", in);
	else if (l->cfg.reply_via_link && !c->nrules)
		n += add(out, len, "the rule of chain %s", in);

	/* restore: mark : goto rs_... */
	e = t->has_set[S_RESTORE] ? elem_find(t, S_RESTORE, &mark, sizeof mark) : NULL;
	if (t->has_set[S_RESTORE] && !e)
		n += add(out, len, "element 0x%x : goto %s in map restore", mark, rs);
	else if (e && (e->verdict != (uint32_t)NFT_GOTO || strcmp(e->chain, rs)))
		n += add(out, len, "element 0x%x in map restore going to %s, not %s", mark,
			 e->chain[0] ? e->chain : "a plain verdict", rs);
	c = chain_find(t, rs);
	if (!c)
		n += add(out, len, "chain %s", rs);
	else if (!c->nrules)
		n += add(out, len, "the rule of chain %s", rs);

	/* NAT */
	if (l->cfg.nat == MH_NAT_MASQUERADE && t->has_set[S_MASQ] &&
	    !elem_find(t, S_MASQ, l->ifname, strlen(l->ifname)))
		n += add(out, len, "element \"%s\" in set masq (masquerade)", l->ifname);
	if (l->cfg.nat == MH_NAT_SNAT && t->has_set[S_SNAT]) {
		e = elem_find(t, S_SNAT, l->ifname, strlen(l->ifname));
		if (!e || e->addr != l->local)
			n += add(out, len, "element \"%s\" : %s in map srcaddr (snat)", l->ifname, a);
	}

	/* pins */
	if (l->cfg.npins) {
		c = chain_find(t, pin);
		if (!c)
			n += add(out, len, "chain %s (its %u pins)", pin, l->cfg.npins);
		else if (c->nrules < l->cfg.npins)
			n += add(out, len, "%u of the %u pin rules in chain %s", l->cfg.npins - c->nrules,
				 l->cfg.npins, pin);
		if (chain_find(t, "egress") && !count(t, "egress", NULL, pin, NULL))
			n += add(out, len, "the jump to %s in chain egress", pin);
	}
	return n;
}

int nftr_delete_table(char *err, size_t len)
{
	char buf[4096], rbuf[8192];
	struct mnl_nlmsg_batch *b;
	struct nftnl_table *x;
	struct nlmsghdr *h;
	struct conn c;
	ssize_t r;
	int rc = 0;

	if (conn_open(&c) < 0) {
		snprintf(err, len, "nftables: netlink socket: %s", strerror(errno));
		return -1;
	}
	b = mnl_nlmsg_batch_start(buf, sizeof buf);
	nftnl_batch_begin(mnl_nlmsg_batch_current(b), c.seq++);
	mnl_nlmsg_batch_next(b);
	x = nftnl_table_alloc();
	if (!x) {
		mnl_socket_close(c.sock);
		snprintf(err, len, "out of memory");
		return -1;
	}
	nftnl_table_set_str(x, NFTNL_TABLE_NAME, TABLE);
	h = nftnl_nlmsg_build_hdr(mnl_nlmsg_batch_current(b), NFT_MSG_DELTABLE, FAMILY, NLM_F_ACK,
				  c.seq++);
	nftnl_table_nlmsg_build_payload(h, x);
	nftnl_table_free(x);
	mnl_nlmsg_batch_next(b);
	nftnl_batch_end(mnl_nlmsg_batch_current(b), c.seq++);
	mnl_nlmsg_batch_next(b);
	if (mnl_socket_sendto(c.sock, mnl_nlmsg_batch_head(b), mnl_nlmsg_batch_size(b)) < 0) {
		snprintf(err, len, "nftables: deleting table ip " TABLE ": %s", strerror(errno));
		rc = -1;
	}
	/* one ACK (or error) for the DELTABLE message */
	while (!rc && (r = mnl_socket_recvfrom(c.sock, rbuf, sizeof rbuf)) > 0) {
		int ret = mnl_cb_run(rbuf, (size_t)r, 0, c.portid, NULL, NULL);
		if (ret < 0 && errno != ENOENT) {
			snprintf(err, len, "nftables: deleting table ip " TABLE ": %s", strerror(errno));
			rc = -1;
		}
		if (ret <= 0)
			break;
	}
	mnl_nlmsg_batch_stop(b);
	mnl_socket_close(c.sock);
	return rc;
}
