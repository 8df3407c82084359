/* Firewall backend: legacy x_tables through libiptc.
 *
 * multihome's rules live in chains of its own, hooked once from the built-in
 * chains.  Every event rebuilds those chains from the up links and commits
 * each table once (libiptc replaces whole tables anyway), under the xtables
 * lock iptables-legacy uses, retrying from iptc_init on EAGAIN.
 *
 *   mangle PREROUTING -> MULTIHOME-PRE:
 *       -i IF -j CONNMARK --set-xmark MARK/MASK   (new or not: ingress owns the flow)
 *       -i IF -j RETURN                           (uplink ingress needs no egress mark)
 *       -j MULTIHOME-MARK                         (LAN-forwarded traffic)
 *   mangle OUTPUT -> MULTIHOME-MARK:
 *       -j CONNMARK --restore-mark (our bits)     replies leave by the ingress link
 *       -m mark ! --mark 0/OURBITS -j RETURN      a marked packet is left alone
 *       PIN -j MARK --set-xmark MARK/MASK ; -m mark ! --mark 0/OURBITS -j RETURN  (by priority)
 *   nat POSTROUTING -> MULTIHOME-NAT:
 *       -o IF -j MASQUERADE | SNAT --to-source LOCAL
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include <libiptc/libiptc.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_connmark.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/xt_tcpudp.h>

#include "internal.h"

#define CH_PRE  "MULTIHOME-PRE"
#define CH_MARK "MULTIHOME-MARK"
#define CH_NAT  "MULTIHOME-NAT"
#define XT_LOCK_TIMEOUT_MS 20000
#define COMMIT_TRIES 20

struct rb {                     /* one rule being built */
	union {
		struct ipt_entry e;
		unsigned char raw[2048];
	} u;
	size_t len;
};

static void rb_start(struct rb *r, const char *in, const char *out)
{
	memset(&r->u, 0, sizeof r->u);
	r->len = XT_ALIGN(sizeof(struct ipt_entry));
	if (in) {
		strncpy(r->u.e.ip.iniface, in, IFNAMSIZ - 1);
		memset(r->u.e.ip.iniface_mask, 0xff, strlen(in) + 1);
	}
	if (out) {
		strncpy(r->u.e.ip.outiface, out, IFNAMSIZ - 1);
		memset(r->u.e.ip.outiface_mask, 0xff, strlen(out) + 1);
	}
}

static void rb_match(struct rb *r, const char *name, uint8_t rev, const void *data, size_t sz)
{
	size_t msz = XT_ALIGN(sizeof(struct xt_entry_match) + sz);
	struct xt_entry_match *m = (void *)(r->u.raw + r->len);

	m->u.user.match_size = (uint16_t)msz;
	snprintf(m->u.user.name, sizeof m->u.user.name, "%s", name);
	m->u.user.revision = rev;
	memcpy(m->data, data, sz);
	r->len += msz;
}

static void rb_comment(struct rb *r, const char *link)
{
	struct xt_comment_info c;

	memset(&c, 0, sizeof c);
	snprintf(c.comment, sizeof c.comment, "multihome %s", link);
	rb_match(r, "comment", 0, &c, sizeof c);
}

static struct ipt_entry *rb_target(struct rb *r, const char *name, uint8_t rev,
				   const void *data, size_t sz)
{
	size_t tsz = XT_ALIGN(sizeof(struct xt_entry_target) + sz);
	struct xt_entry_target *t = (void *)(r->u.raw + r->len);

	t->u.user.target_size = (uint16_t)tsz;
	snprintf(t->u.user.name, sizeof t->u.user.name, "%s", name);
	t->u.user.revision = rev;
	if (data)
		memcpy(t->data, data, sz);
	r->u.e.target_offset = (uint16_t)r->len;
	r->len += tsz;
	r->u.e.next_offset = (uint16_t)r->len;
	return &r->u.e;
}

/* A standard target (RETURN) or a jump to a chain. */
static struct ipt_entry *rb_verdict(struct rb *r, const char *target)
{
	int verdict = 0;

	return rb_target(r, target, 0, &verdict, sizeof verdict);
}

static int append(struct xtc_handle *h, const char *chain, struct rb *r)
{
	xt_chainlabel c;

	snprintf(c, sizeof c, "%s", chain);
	return iptc_append_entry(c, &r->u.e, h) ? 0 : -1;
}

static void mark_test(struct rb *r, uint32_t mask) /* -m mark ! --mark 0/MASK */
{
	struct xt_mark_mtinfo1 m = { .mark = 0, .mask = mask, .invert = 1 };

	rb_match(r, "mark", 1, &m, sizeof m);
}

static int rule_stop_if_marked(struct xtc_handle *h, uint32_t ours)
{
	struct rb r;

	rb_start(&r, NULL, NULL);
	mark_test(&r, ours);
	rb_verdict(&r, "RETURN");
	return append(h, CH_MARK, &r);
}

static int rule_pin(struct xtc_handle *h, const struct mh_link *l, const struct mh_pin *p)
{
	struct xt_mark_tginfo2 mk = { .mark = l->cfg.mark, .mask = l->cfg.mask };
	struct rb r;

	rb_start(&r, NULL, NULL);
	r.u.e.ip.proto = p->proto;
	if (p->dst_len) {
		r.u.e.ip.dst.s_addr = p->dst;
		r.u.e.ip.dmsk.s_addr = htonl(0xffffffffu << (32 - p->dst_len));
	}
	if (p->port_lo && p->proto == IPPROTO_TCP) {
		struct xt_tcp t = { .spts = { 0, 0xffff }, .dpts = { p->port_lo, p->port_hi } };
		rb_match(&r, "tcp", 0, &t, sizeof t);
	} else if (p->port_lo && p->proto == IPPROTO_UDP) {
		struct xt_udp u = { .spts = { 0, 0xffff }, .dpts = { p->port_lo, p->port_hi } };
		rb_match(&r, "udp", 0, &u, sizeof u);
	}
	rb_comment(&r, l->cfg.name);
	rb_target(&r, "MARK", 2, &mk, sizeof mk);
	return append(h, CH_MARK, &r);
}

static int fill_mangle(struct xtc_handle *h, const struct mh_link *const *links, unsigned n)
{
	uint32_t ours = mh_mark_union(links, n);
	struct rb r;
	unsigned i, j;

	for (i = 0; i < n; i++) {
		const struct mh_link *l = links[i];
		if (l->cfg.reply_via_link) {
			struct xt_connmark_tginfo2 cm = { .ctmark = l->cfg.mark, .ctmask = l->cfg.mask,
							  .nfmask = 0xffffffffu, .mode = XT_CONNMARK_SET };
			rb_start(&r, l->ifname, NULL);
			rb_comment(&r, l->cfg.name);
			rb_target(&r, "CONNMARK", 2, &cm, sizeof cm);
			if (append(h, CH_PRE, &r))
				return -1;
		}
		rb_start(&r, l->ifname, NULL);
		rb_comment(&r, l->cfg.name);
		rb_verdict(&r, "RETURN");
		if (append(h, CH_PRE, &r))
			return -1;
	}
	rb_start(&r, NULL, NULL);
	rb_verdict(&r, CH_MARK);
	if (append(h, CH_PRE, &r))
		return -1;

	{
		struct xt_connmark_tginfo2 cm = { .ctmask = ours, .nfmask = ours,
						  .mode = XT_CONNMARK_RESTORE };
		rb_start(&r, NULL, NULL);
		rb_target(&r, "CONNMARK", 2, &cm, sizeof cm);
		if (append(h, CH_MARK, &r) || rule_stop_if_marked(h, ours))
			return -1;
	}
	for (i = 0; i < n; i++)          /* links come in priority order */
		for (j = 0; j < links[i]->cfg.npins; j++)
			if (rule_pin(h, links[i], &links[i]->cfg.pins[j]) ||
			    rule_stop_if_marked(h, ours))
				return -1;
	return 0;
}

static int fill_nat(struct xtc_handle *h, const struct mh_link *const *links, unsigned n)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		const struct mh_link *l = links[i];
		struct nf_nat_ipv4_multi_range_compat mr;
		struct rb r;

		if (l->cfg.nat == MH_NAT_OFF)
			continue;
		memset(&mr, 0, sizeof mr);
		mr.rangesize = 1;
		rb_start(&r, NULL, l->ifname);
		rb_comment(&r, l->cfg.name);
		if (l->cfg.nat == MH_NAT_SNAT) {
			mr.range[0].flags = NF_NAT_RANGE_MAP_IPS;
			mr.range[0].min_ip = mr.range[0].max_ip = l->local;
			rb_target(&r, "SNAT", 0, &mr, sizeof mr);
		} else {
			rb_target(&r, "MASQUERADE", 0, &mr, sizeof mr);
		}
		if (append(h, CH_NAT, &r))
			return -1;
	}
	return 0;
}

/* Make BUILTIN jump to CHAIN exactly once (first), or not at all. */
static int hook(struct xtc_handle *h, const char *builtin, const char *chain, int want)
{
	xt_chainlabel b;
	const struct ipt_entry *e;
	unsigned num = 0, found = 0;
	unsigned del[64], ndel = 0;

	snprintf(b, sizeof b, "%s", builtin);
	for (e = iptc_first_rule(b, h); e; e = iptc_next_rule(e, h), num++) {
		if (strcmp(iptc_get_target(e, h), chain))
			continue;
		if (want && !found++)
			continue;
		if (ndel < 64)
			del[ndel++] = num;
	}
	while (ndel--)                   /* from the back: numbers stay valid */
		if (!iptc_delete_num_entry(b, del[ndel], h))
			return -1;
	if (want && !found) {
		struct rb r;
		rb_start(&r, NULL, NULL);
		rb_verdict(&r, chain);
		if (!iptc_insert_entry(b, &r.u.e, 0, h))
			return -1;
	}
	return 0;
}

static int chain_reset(struct xtc_handle *h, const char *chain, int want)
{
	xt_chainlabel c;

	snprintf(c, sizeof c, "%s", chain);
	if (iptc_is_chain(c, h)) {
		if (!iptc_flush_entries(c, h))
			return -1;
		if (!want)
			return iptc_delete_chain(c, h) ? 0 : -1;
		return 0;
	}
	if (!want)
		return 0;
	return iptc_create_chain(c, h) ? 0 : -1;
}

static int has_chain(struct xtc_handle *h, const char *chain)
{
	xt_chainlabel c;

	snprintf(c, sizeof c, "%s", chain);
	return iptc_is_chain(c, h);
}

/* One table: build our chains into a fresh snapshot and commit it once. */
static int apply_table(const char *table, const struct mh_link *const *links, unsigned n,
		       char *err, size_t len)
{
	int want_mangle = n > 0, want_nat = 0, tries;
	unsigned i;

	for (i = 0; i < n; i++)
		want_nat |= links[i]->cfg.nat != MH_NAT_OFF;
	for (tries = 0; tries < COMMIT_TRIES; tries++) {
		struct xtc_handle *h = iptc_init(table);
		const char *step = "build";
		int ok;

		if (!h) {
			if (n == 0 && (errno == ENOENT || errno == ENOPROTOOPT))
				return 0; /* table not even loaded: nothing of ours */
			snprintf(err, len, "iptables %s table: %s", table, iptc_strerror(errno));
			return -1;
		}
		if (!(strcmp(table, "mangle") ? want_nat : want_mangle) &&
		    !has_chain(h, strcmp(table, "mangle") ? CH_NAT : CH_PRE) &&
		    !has_chain(h, strcmp(table, "mangle") ? CH_NAT : CH_MARK)) {
			iptc_free(h); /* nothing of ours there, nothing wanted */
			return 0;
		}
		if (!strcmp(table, "mangle")) {
			/* hooks go first so that jumps never point at deleted chains */
			if (!want_mangle)
				ok = !hook(h, "PREROUTING", CH_PRE, 0) && !hook(h, "OUTPUT", CH_MARK, 0) &&
				     !chain_reset(h, CH_PRE, 0) && !chain_reset(h, CH_MARK, 0);
			else
				ok = !chain_reset(h, CH_PRE, 1) && !chain_reset(h, CH_MARK, 1) &&
				     !fill_mangle(h, links, n) &&
				     !hook(h, "PREROUTING", CH_PRE, 1) && !hook(h, "OUTPUT", CH_MARK, 1);
		} else {
			if (!want_nat)
				ok = !hook(h, "POSTROUTING", CH_NAT, 0) && !chain_reset(h, CH_NAT, 0);
			else
				ok = !chain_reset(h, CH_NAT, 1) && !fill_nat(h, links, n) &&
				     !hook(h, "POSTROUTING", CH_NAT, 1);
		}
		if (ok) {
			step = "commit";
			ok = iptc_commit(h);
			mh_stats_mut()->fw_commits++;
		}
		if (ok) {
			iptc_free(h);
			return 0;
		}
		{
			int e = errno;
			iptc_free(h);
			if (e == EAGAIN && !strcmp(step, "commit"))
				continue; /* another writer changed the table: start over */
			snprintf(err, len, "iptables %s table (%s): %s", table, step, iptc_strerror(e));
			return -1;
		}
	}
	snprintf(err, len, "iptables %s table: still changing under us after %d tries", table, tries);
	return -1;
}

static int xtables_lock(char *err, size_t len)
{
	const char *path = getenv("XTABLES_LOCKFILE");
	int fd, waited = 0;

	if (!path || !*path)
		path = "/run/xtables.lock";
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		snprintf(err, len, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if ((errno != EWOULDBLOCK && errno != EINTR) || waited >= XT_LOCK_TIMEOUT_MS) {
			snprintf(err, len, "cannot take %s: %s", path,
				 waited >= XT_LOCK_TIMEOUT_MS ? "timed out" : strerror(errno));
			close(fd);
			return -1;
		}
		usleep(1000);
		waited++;
	}
	return fd;
}

int mh_fw_iptc_apply(const struct mh_link *const *links, unsigned n, char *err, size_t len)
{
	int fd = xtables_lock(err, len), rc;

	if (fd < 0)
		return -1;
	rc = apply_table("mangle", links, n, err, len);
	if (!rc)
		rc = apply_table("nat", links, n, err, len);
	close(fd);
	return rc;
}
