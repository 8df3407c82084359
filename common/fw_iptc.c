/* Firewall backend: legacy x_tables through libiptc.
 *
 * multihome's rules live in chains of its own, hooked once (first) from the
 * built-in chains; the plan (common/plan.c) lists their rules in order:
 *
 *   mangle PREROUTING -> MULTIHOME-PRE:
 *       -i IF -j CONNMARK --set-xmark MARK/MASK   (new or not: ingress owns the flow)
 *       -i IF -j RETURN                           (uplink ingress needs no egress mark)
 *       -j MULTIHOME-MARK                         (LAN-forwarded traffic)
 *   mangle OUTPUT -> MULTIHOME-MARK:
 *       -m connmark ! --mark 0/OURBITS -j CONNMARK --restore-mark (our bits)
 *                                                 replies leave by the ingress link
 *       -m mark ! --mark 0/OURBITS -j RETURN      a marked packet is left alone
 *       PIN -j MARK --set-xmark MARK/MASK ; -m mark ! --mark 0/OURBITS -j RETURN  (by priority)
 *       PIN -j DROP                               (a strict link up but offline)
 *   nat POSTROUTING -> MULTIHOME-NAT:
 *       -o IF -j MASQUERADE | SNAT --to-source LOCAL
 *
 * A commit replaces the whole table (libiptc's way), so a table is only
 * touched when its part of the plan changed or differs from the kernel; it
 * is then rebuilt from the plan and committed once, under the xtables lock
 * iptables-legacy uses, retrying from iptc_init on EAGAIN.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <malloc.h>
#include <libiptc/libiptc.h>
#include <linux/netfilter/nf_nat.h>
#include <linux/netfilter/xt_comment.h>
#include <linux/netfilter/xt_connmark.h>
#include <linux/netfilter/xt_mark.h>
#include <linux/netfilter/xt_tcpudp.h>

#include "internal.h"

#define XT_LOCK_TIMEOUT_MS 20000
#define TRIM_ABOVE (256u << 10)         /* free heap worth returning after a commit */
#define COMMIT_TRIES 20

enum { T_MANGLE = 0, T_NAT };
static const char *const table_name[2] = { "mangle", "nat" };
/* the built-in chain that jumps to each of our chains, by table */
static const struct { int table; const char *chain, *builtin; } ours[3] = {
	{ T_MANGLE, MH_IPT_PRE, "PREROUTING" },
	{ T_MANGLE, MH_IPT_MARK, "OUTPUT" },
	{ T_NAT, MH_IPT_NAT, "POSTROUTING" },
};

/* ---- rendering a rule of the plan ---- */

struct rb {                     /* one rule being built */
	union {
		struct ipt_entry e;
		unsigned char raw[2048];
	} u;
	size_t len;
	char target[32];        /* a standard target or a chain, by name ("" otherwise) */
};

static void rb_start(struct rb *r, const char *in, const char *out)
{
	memset(r, 0, sizeof *r);
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

static void rb_comment(struct rb *r, const char *comment)
{
	struct xt_comment_info c;

	if (!comment[0])
		return;
	memset(&c, 0, sizeof c);
	snprintf(c.comment, sizeof c.comment, "%s", comment);
	rb_match(r, "comment", 0, &c, sizeof c);
}

static void rb_target(struct rb *r, const char *name, uint8_t rev, const void *data, size_t sz)
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
}

/* A standard target (RETURN) or a jump to a chain. */
static void rb_verdict(struct rb *r, const char *target)
{
	int verdict = 0;

	rb_target(r, target, 0, &verdict, sizeof verdict);
	snprintf(r->target, sizeof r->target, "%s", target);
}

/* Match and target data go to the kernel byte for byte, padding included
 * (and are compared so when read back): every struct is zeroed first. */
#define ZERO(x) memset(&(x), 0, sizeof(x))

static void rb_mark_test(struct rb *r, uint32_t mask) /* -m mark ! --mark 0/MASK */
{
	struct xt_mark_mtinfo1 m;

	ZERO(m);
	m.mask = mask;
	m.invert = 1;
	rb_match(r, "mark", 1, &m, sizeof m);
}

static void rb_pin(struct rb *r, const struct mh_pin *p)
{
	r->u.e.ip.proto = p->proto;
	if (p->dst_len) {
		r->u.e.ip.dst.s_addr = p->dst;
		r->u.e.ip.dmsk.s_addr = htonl(0xffffffffu << (32 - p->dst_len));
	}
	if (p->port_lo && p->proto == IPPROTO_TCP) {
		struct xt_tcp t;
		ZERO(t);
		t.spts[1] = 0xffff;
		t.dpts[0] = p->port_lo;
		t.dpts[1] = p->port_hi;
		rb_match(r, "tcp", 0, &t, sizeof t);
	} else if (p->port_lo && p->proto == IPPROTO_UDP) {
		struct xt_udp u;
		ZERO(u);
		u.spts[1] = 0xffff;
		u.dpts[0] = p->port_lo;
		u.dpts[1] = p->port_hi;
		rb_match(r, "udp", 0, &u, sizeof u);
	}
}

static void rb_nat(struct rb *r, const struct mh_plan_link *l)
{
	struct nf_nat_ipv4_multi_range_compat mr;

	memset(&mr, 0, sizeof mr);
	mr.rangesize = 1;
	if (l->nat == MH_NAT_SNAT) {
		mr.range[0].flags = NF_NAT_RANGE_MAP_IPS;
		mr.range[0].min_ip = mr.range[0].max_ip = l->local;
		rb_target(r, "SNAT", 0, &mr, sizeof mr);
	} else {
		rb_target(r, "MASQUERADE", 0, &mr, sizeof mr);
	}
}

static void render(const struct mh_plan *p, const struct mh_fw_rule *fr, struct rb *r)
{
	const struct mh_plan_link *l = fr->owner >= 0 ? &p->links[fr->owner] : NULL;

	switch (fr->kind) {
	case MH_FW_INGRESS_CTMARK: {
		struct xt_connmark_tginfo2 cm;
		ZERO(cm);
		cm.ctmark = l->mark;
		cm.ctmask = l->mask;
		cm.nfmask = 0xffffffffu;
		cm.mode = XT_CONNMARK_SET;
		rb_start(r, l->ifname, NULL);
		rb_comment(r, fr->comment);
		rb_target(r, "CONNMARK", 2, &cm, sizeof cm);
		break;
	}
	case MH_FW_INGRESS_END:
		rb_start(r, l->ifname, NULL);
		rb_comment(r, fr->comment);
		rb_verdict(r, "RETURN");
		break;
	case MH_FW_TO_EGRESS:
		rb_start(r, NULL, NULL);
		rb_verdict(r, fr->jump);
		break;
	case MH_FW_RESTORE: {
		/* only a flow with our bits: a new one (ct mark 0) keeps the mark
		 * its socket set (a probe's SO_MARK) */
		struct xt_connmark_tginfo2 cm;
		struct xt_connmark_mtinfo1 has;
		ZERO(cm);
		ZERO(has);
		cm.ctmask = fr->ours;
		cm.nfmask = fr->ours;
		cm.mode = XT_CONNMARK_RESTORE;
		has.mask = fr->ours;
		has.invert = 1;
		rb_start(r, NULL, NULL);
		rb_match(r, "connmark", 1, &has, sizeof has);
		rb_target(r, "CONNMARK", 2, &cm, sizeof cm);
		break;
	}
	case MH_FW_STOP_IF_MARKED:
		rb_start(r, NULL, NULL);
		rb_mark_test(r, fr->ours);
		rb_verdict(r, "RETURN");
		break;
	case MH_FW_PIN: {
		struct xt_mark_tginfo2 mk;
		ZERO(mk);
		mk.mark = l->mark;
		mk.mask = l->mask;
		rb_start(r, NULL, NULL);
		rb_pin(r, &l->pins[fr->pin]);
		rb_comment(r, fr->comment);
		rb_target(r, "MARK", 2, &mk, sizeof mk);
		break;
	}
	case MH_FW_PIN_DROP:
		rb_start(r, NULL, NULL);
		rb_pin(r, &l->pins[fr->pin]);
		rb_comment(r, fr->comment);
		rb_verdict(r, "DROP");
		break;
	default:        /* MH_FW_NAT */
		rb_start(r, NULL, l->ifname);
		rb_comment(r, fr->comment);
		rb_nat(r, l);
		break;
	}
}

/* ---- comparing ---- */

/* Does the kernel's entry K (in handle H) do what the rendered rule R does? */
/* A match or target header: the kernel writes back only the name's string,
 * not the rest of its field (that is whatever the reader's buffer held). */
static int header_same(const struct xt_entry_match *k, const struct xt_entry_match *r)
{
	return k->u.match_size == r->u.match_size &&
	       !strncmp(k->u.user.name, r->u.user.name, sizeof k->u.user.name) &&
	       k->u.user.revision == r->u.user.revision &&
	       !memcmp(k->data, r->data, r->u.match_size - sizeof *r);
}

/* Does the kernel's entry K (in handle H) do what the rendered rule R does? */
static int entry_same(struct xtc_handle *h, const struct ipt_entry *k, const struct rb *r)
{
	const struct ipt_entry *e = &r->u.e;
	unsigned off;

	if (memcmp(&k->ip, &e->ip, sizeof e->ip) || k->target_offset != e->target_offset ||
	    k->next_offset != e->next_offset)
		return 0;
	for (off = sizeof *e; off < e->target_offset;) {
		const struct xt_entry_match *km = (const void *)((const char *)k + off);
		const struct xt_entry_match *rm = (const void *)((const char *)e + off);
		if (rm->u.match_size < sizeof *rm || !header_same(km, rm))
			return 0;
		off += rm->u.match_size;
	}
	if (r->target[0])
		return !strcmp(iptc_get_target(k, h), r->target);
	/* a target has the same header layout as a match */
	return header_same((const void *)((const char *)k + k->target_offset),
			   (const void *)((const char *)e + e->target_offset));
}

static const char *entry_comment(const struct ipt_entry *e)
{
	unsigned off = sizeof(struct ipt_entry);

	while (off + sizeof(struct xt_entry_match) <= e->target_offset) {
		const struct xt_entry_match *m = (const void *)((const char *)e + off);
		if (m->u.match_size < sizeof *m)
			break;
		if (!strcmp(m->u.user.name, "comment"))
			return ((const struct xt_comment_info *)m->data)->comment;
		off += m->u.match_size;
	}
	return "";
}

/* ---- reading (the handles stay open while the entries are used) ---- */

struct iptc_state {
	struct xtc_handle *h[2];
	int exists[3];          /* our chains */
};

static int read_chain(struct xtc_handle *h, const char *chain, struct mh_firewall *f, unsigned *cap)
{
	const struct ipt_entry *e;

	if (!iptc_is_chain(chain, h))
		return 0;
	for (e = iptc_first_rule(chain, h); e; e = iptc_next_rule(e, h)) {
		struct mh_fw_rule *x;
		if (f->nrules == *cap) {
			unsigned c = *cap ? 2 * *cap : 32;
			struct mh_fw_rule *v = realloc(f->rules, c * sizeof *v);
			if (!v)
				return -1;
			f->rules = v;
			*cap = c;
		}
		x = &f->rules[f->nrules++];
		memset(x, 0, sizeof *x);
		x->kind = 0xff;
		x->owner = MH_NO_OWNER;
		snprintf(x->chain, sizeof x->chain, "%s", chain);
		snprintf(x->comment, sizeof x->comment, "%.*s", MH_COMMENT_MAX - 1, entry_comment(e));
		snprintf(x->jump, sizeof x->jump, "%s", iptc_get_target(e, h));
		x->entry = e;
	}
	return 0;
}

static int count_jumps(struct xtc_handle *h, const char *builtin, const char *chain)
{
	const struct ipt_entry *e;
	int n = 0;

	for (e = iptc_first_rule(builtin, h); e; e = iptc_next_rule(e, h))
		n += !strcmp(iptc_get_target(e, h), chain);
	return n;
}

static int table_loaded(const char *table)
{
	char line[64];
	int yes = 0;
	FILE *f = fopen("/proc/net/ip_tables_names", "re");

	if (!f)
		return 0;
	while (!yes && fgets(line, sizeof line, f)) {
		line[strcspn(line, "\n")] = 0;
		yes = !strcmp(line, table);
	}
	fclose(f);
	return yes;
}

/* Our chains of table T into F (unless !CHAINS: the handle only); the
 * handle stays in S.  A table that is not loaded holds nothing of ours: it
 * is only loaded (by iptc_init) when NEED. */
static int read_table(struct iptc_state *s, int t, int need, int chains, struct mh_firewall *f,
		      unsigned *cap, char *err, size_t len)
{
	unsigned i;

	/* wanted, iptc_init loads it anyway: no need to look (the file costs an event 5%) */
	f->loaded[t] = need || table_loaded(table_name[t]);
	if (!f->loaded[t])
		return 0;
	s->h[t] = iptc_init(table_name[t]);
	if (!s->h[t]) {
		if (errno == ENOENT || errno == ENOPROTOOPT) {
			f->loaded[t] = 0;
			return 0;
		}
		snprintf(err, len, "iptables %s table: %s", table_name[t], iptc_strerror(errno));
		return -1;
	}
	for (i = 0; chains && i < 3; i++) {
		if (ours[i].table != t)
			continue;
		s->exists[i] = iptc_is_chain(ours[i].chain, s->h[t]);
		f->table |= s->exists[i];
		if (read_chain(s->h[t], ours[i].chain, f, cap) < 0) {
			snprintf(err, len, "out of memory");
			return -1;
		}
		f->hooks[i] = count_jumps(s->h[t], ours[i].builtin, ours[i].chain);
	}
	return 0;
}

static void state_free(struct iptc_state *s)
{
	int t;

	for (t = 0; t < 2; t++)
		if (s->h[t])
			iptc_free(s->h[t]);
	memset(s, 0, sizeof *s);
}

/* ---- the diff ---- */

struct iptc_diff {
	const struct mh_plan *want;
	struct mh_firewall *have;
	struct iptc_state *s;
	struct mh_fw_ops *ops;
	int table_differs[2];
};

static struct mh_fw_op *op(struct iptc_diff *d, uint8_t action, uint8_t kind, int owner)
{
	return mh_fw_op_push(d->ops, action, kind, owner);
}

static int chain_table(const char *chain)
{
	return strcmp(chain, MH_IPT_NAT) ? T_MANGLE : T_NAT;
}

static unsigned rules_of(const struct mh_firewall *f, const char *chain, unsigned *out, unsigned max)
{
	unsigned i, n = 0;

	for (i = 0; i < f->nrules && n < max; i++)
		if (!strcmp(f->rules[i].chain, chain))
			out[n++] = i;
	return n;
}

/* One of our chains: the rules the kernel lacks (RULE adds, with their owners)
 * and those it has too many (RULE deletes), matched in order. */
static int diff_chain(struct iptc_diff *d, const char *chain)
{
	const struct mh_firewall *w = &d->want->fw;
	unsigned n = w->nrules + d->have->nrules + 1;
	unsigned *wr = malloc(n * sizeof *wr), *hr = malloc(n * sizeof *hr);
	unsigned char *used = calloc(n, 1);
	struct xtc_handle *h = d->s->h[chain_table(chain)];
	unsigned nw, nh, i, j = 0;
	int rc = -1;

	if (!wr || !hr || !used)
		goto out;
	nw = rules_of(w, chain, wr, n);
	nh = rules_of(d->have, chain, hr, n);
	for (i = 0; i < nw; i++) {
		struct rb r;
		struct mh_fw_op *o;
		unsigned k;
		render(d->want, &w->rules[wr[i]], &r);
		for (k = j; k < nh; k++)
			if (!used[k] && entry_same(h, d->have->rules[hr[k]].entry, &r))
				break;
		if (k < nh && k == j) {
			used[k] = 1;
			j = k + 1;
			continue;
		}
		if (k < nh) {
			used[k] = 1;    /* there, but out of order: the chain is rebuilt */
			j = k + 1;
			d->table_differs[chain_table(chain)] = 1;
			continue;
		}
		if (!(o = op(d, MH_OP_ADD, MH_FWOP_RULE, w->rules[wr[i]].owner)))
			goto out;
		o->rule = &w->rules[wr[i]];
		d->table_differs[chain_table(chain)] = 1;
	}
	for (i = 0; i < nh; i++) {
		struct mh_fw_op *o;
		if (used[i])
			continue;
		if (!(o = op(d, MH_OP_DELETE, MH_FWOP_RULE, MH_NO_OWNER)))
			goto out;
		o->rule = &d->have->rules[hr[i]];
		d->table_differs[chain_table(chain)] = 1;
	}
	rc = 0;
out:
	free(wr);
	free(hr);
	free(used);
	return rc;
}

static int diff_hooks(struct iptc_diff *d)
{
	unsigned i;

	for (i = 0; i < 3; i++) {
		int want = d->want->fw.wanted && (ours[i].table == T_MANGLE || d->want->fw.want_nat);
		struct mh_fw_op *o;
		if (!d->have->loaded[ours[i].table] && !want)
			continue;
		if (d->have->hooks[i] == want)
			continue;
		if (!(o = op(d, want && !d->have->hooks[i] ? MH_OP_ADD : MH_OP_DELETE, MH_FWOP_HOOK,
			     MH_NO_OWNER)))
			return -1;
		snprintf(o->detail, sizeof o->detail, "%s %s -> %s", table_name[ours[i].table],
			 ours[i].builtin, ours[i].chain);
		d->table_differs[ours[i].table] = 1;
	}
	return 0;
}

static int iptc_diff(struct iptc_diff *d)
{
	unsigned i;
	int t;

	d->ops->n = 0;
	for (i = 0; i < 3; i++) {
		int want = d->want->fw.wanted && (ours[i].table == T_MANGLE || d->want->fw.want_nat);
		if (diff_chain(d, ours[i].chain) < 0)
			return -1;
		if (d->s->exists[i] != want)    /* an empty chain of ours, or one to create */
			d->table_differs[ours[i].table] = 1;
	}
	if (diff_hooks(d) < 0)
		return -1;
	for (t = 0; t < 2; t++) {
		struct mh_fw_op *o;
		if (!d->table_differs[t])
			continue;
		if (!(o = op(d, MH_OP_REPLACE, MH_FWOP_IPT_TABLE, MH_NO_OWNER)))
			return -1;
		snprintf(o->detail, sizeof o->detail, "%s", table_name[t]);
	}
	return 0;
}

/* ---- writing: our chains of a table rebuilt from the plan ---- */

static int append(struct xtc_handle *h, const char *chain, struct rb *r)
{
	xt_chainlabel c;

	snprintf(c, sizeof c, "%s", chain);
	return iptc_append_entry(c, &r->u.e, h) ? 0 : -1;
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

static int fill(struct xtc_handle *h, const struct mh_plan *p, const char *chain)
{
	unsigned i;

	for (i = 0; i < p->fw.nrules; i++) {
		struct rb r;
		if (strcmp(p->fw.rules[i].chain, chain))
			continue;
		render(p, &p->fw.rules[i], &r);
		if (append(h, chain, &r) < 0)
			return -1;
	}
	return 0;
}

/* Rebuild table T's chains of ours in H (hooks go first on the way out, last
 * on the way in, so that jumps never point at deleted chains). */
static int rebuild(struct xtc_handle *h, const struct mh_plan *p, int t)
{
	int want = p->fw.wanted && (t == T_MANGLE || p->fw.want_nat);
	unsigned i;

	if (!want) {
		for (i = 0; i < 3; i++)
			if (ours[i].table == t && hook(h, ours[i].builtin, ours[i].chain, 0) < 0)
				return -1;
		for (i = 0; i < 3; i++)
			if (ours[i].table == t && chain_reset(h, ours[i].chain, 0) < 0)
				return -1;
		return 0;
	}
	for (i = 0; i < 3; i++)
		if (ours[i].table == t && chain_reset(h, ours[i].chain, 1) < 0)
			return -1;
	for (i = 0; i < 3; i++)
		if (ours[i].table == t && fill(h, p, ours[i].chain) < 0)
			return -1;
	for (i = 0; i < 3; i++)
		if (ours[i].table == t && hook(h, ours[i].builtin, ours[i].chain, 1) < 0)
			return -1;
	return 0;
}

static int xtables_lock(char *err, size_t len)
{
	const char *path = mh_getenv("XTABLES_LOCKFILE");
	struct stat st;
	int fd, waited = 0;

	if (!path || !*path)
		path = "/run/xtables.lock";
	/* never through a symlink, never anything but a regular file */
	fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (fd < 0) {
		snprintf(err, len, "cannot open %s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, len, "%s is not a regular file: refusing to lock it", path);
		close(fd);
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

/* Table T with our chains rebuilt from the plan, committed once; EAGAIN
 * (another writer changed it meanwhile) starts over.  FULL: read and diffed
 * first (nothing committed when the kernel holds the plan already); else
 * the plan before the event says it differs (plan_changes), as the floor
 * of `make bench` does it. */
static int apply_table(const struct mh_plan *p, int t, int full, char *err, size_t len)
{
	int tries;

	for (tries = 0; tries < COMMIT_TRIES; tries++) {
		struct mh_firewall have = { .backend = MH_FW_IPTABLES };
		struct iptc_state s;
		struct mh_fw_ops ops = { 0 };
		struct iptc_diff d = { .want = p, .have = &have, .s = &s, .ops = &ops };
		unsigned cap = 0;
		const char *step = "build";
		int rc = -1, e = 0, need = p->fw.wanted && (t == T_MANGLE || p->fw.want_nat);

		memset(&s, 0, sizeof s);
		if (read_table(&s, t, need, full, &have, &cap, err, len) < 0)
			goto done;
		if (!s.h[t]) {
			rc = 0;         /* not loaded, nothing of ours, nothing wanted */
			goto done;
		}
		if (full && iptc_diff(&d) < 0) {
			snprintf(err, len, "out of memory");
			goto done;
		}
		if (full && !d.table_differs[t]) {
			rc = 0;
			goto done;
		}
		if (rebuild(s.h[t], p, t) == 0) {
			step = "commit";
			mh_stats_mut()->fw_commits++;
			if (iptc_commit(s.h[t]))
				rc = 0;
		}
		e = errno;
		if (rc < 0 && !(e == EAGAIN && !strcmp(step, "commit")))
			snprintf(err, len, "iptables %s table (%s): %s", table_name[t], step, iptc_strerror(e));
done:
		mh_fw_ops_free(&ops);
		free(have.rules);
		state_free(&s);
		if (rc == 0 || !(e == EAGAIN && !strcmp(step, "commit")))
			return rc;
	}
	snprintf(err, len, "iptables %s table: still changing under us after %d tries",
		 table_name[t], tries);
	return -1;
}

/* Do rule A of plan PA and rule B of plan PB render the same?  Compared by
 * what render() uses: kind, comment, jump, our bits, the pin, the owner's
 * interface, mark, NAT and address (rendering costs an event at 256 links). */
static int same_rule(const struct mh_plan *pa, const struct mh_fw_rule *a, const struct mh_plan *pb,
		     const struct mh_fw_rule *b)
{
	const struct mh_plan_link *la, *lb;
	const struct mh_pin *x, *y;

	if (a->kind != b->kind || a->ours != b->ours || strcmp(a->comment, b->comment) ||
	    strcmp(a->jump, b->jump) || (a->owner < 0) != (b->owner < 0))
		return 0;
	if (a->owner < 0)
		return 1;
	la = &pa->links[a->owner];
	lb = &pb->links[b->owner];
	if (strcmp(la->ifname, lb->ifname) || la->mark != lb->mark || la->mask != lb->mask ||
	    la->nat != lb->nat || la->local != lb->local)
		return 0;
	if (a->kind != MH_FW_PIN && a->kind != MH_FW_PIN_DROP)
		return 1;
	x = &la->pins[a->pin];
	y = &lb->pins[b->pin];
	return x->proto == y->proto && x->dst_len == y->dst_len && x->dst == y->dst &&
	       x->port_lo == y->port_lo && x->port_hi == y->port_hi;
}

/* The index of the next rule of CHAIN in F from I on (F->nrules: none). */
static unsigned next_of(const struct mh_firewall *f, const char *chain, unsigned i)
{
	while (i < f->nrules && strcmp(f->rules[i].chain, chain))
		i++;
	return i;
}

/* Which tables does the plan change from BEFORE to AFTER?  Their rules
 * compared chain by chain, in order. */
static int plan_changes(const struct mh_plan *before, const struct mh_plan *after, int t)
{
	const struct mh_firewall *a, *b;
	unsigned i, x, y;

	if (!before || before->fw.backend != MH_FW_IPTABLES)
		return 1;
	if (before->fw.wanted != after->fw.wanted ||
	    (t == T_NAT && before->fw.want_nat != after->fw.want_nat))
		return 1;
	a = &before->fw;
	b = &after->fw;
	for (i = 0; i < 3; i++) {
		if (ours[i].table != t)
			continue;
		for (x = y = 0;; x++, y++) {
			x = next_of(a, ours[i].chain, x);
			y = next_of(b, ours[i].chain, y);
			if (x == a->nrules || y == b->nrules)
				break;
			if (!same_rule(before, &a->rules[x], after, &b->rules[y]))
				return 1;
		}
		if ((x == a->nrules) != (y == b->nrules))
			return 1;
	}
	return 0;
}

int mh_fw_iptc_apply(struct mh_plan *want, struct mh_plan *before, int full, char *err, size_t len)
{
	int fd, t, rc = 0;

	if (!full && before && !plan_changes(before, want, T_MANGLE) &&
	    !plan_changes(before, want, T_NAT))
		return 0;
	fd = xtables_lock(err, len);
	if (fd < 0)
		return -1;
	for (t = 0; t < 2 && !rc; t++)
		if (full || plan_changes(before, want, t))
			rc = apply_table(want, t, full || !before, err, len);
	close(fd);
	/* libiptc copied each table twice (read, and the commit's blob) and has
	 * freed it: give a large one back, not keep it in every pppd */
	if (mallinfo2().fordblks > TRIM_ABOVE)
		malloc_trim(0);
	return rc;
}

/* Status: the kernel's chains (HAVE, its rules' entries valid until
 * mh_fw_iptc_status_done) and the ops a reapply would send. */
static struct iptc_state status_state;

int mh_fw_iptc_status(struct mh_plan *want, struct mh_fw_ops *ops, struct mh_firewall *have,
		      char *err, size_t len)
{
	struct iptc_diff d = { .want = want, .have = have, .s = &status_state, .ops = ops };
	unsigned cap = 0;
	int t;

	memset(have, 0, sizeof *have);
	have->backend = MH_FW_IPTABLES;
	state_free(&status_state);
	for (t = 0; t < 2; t++)
		if (read_table(&status_state, t, 0, 1, have, &cap, err, len) < 0)
			return -1;
	if (iptc_diff(&d) < 0) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	return 0;
}

void mh_fw_iptc_status_done(void)
{
	state_free(&status_state);
}

unsigned mh_fw_iptc_changed_tables(const struct mh_plan *before, const struct mh_plan *want)
{
	unsigned t, mask = 0;

	for (t = 0; t < 2; t++)
		if (plan_changes(before, want, (int)t))
			mask |= 1u << t;
	return mask;
}

int mh_fw_iptc_commit_tables(const struct mh_plan *want, unsigned tables, char *err, size_t len)
{
	int t;

	for (t = 0; t < 2; t++) {
		struct xtc_handle *h;
		if (!(tables & (1u << t)))
			continue;
		h = iptc_init(table_name[t]);
		if (!h || rebuild(h, want, t) < 0 || !iptc_commit(h)) {
			snprintf(err, len, "iptables %s table: %s", table_name[t], iptc_strerror(errno));
			if (h)
				iptc_free(h);
			return -1;
		}
		iptc_free(h);
	}
	return 0;
}
