/* multihomectl: what multihome did and why, and the few things an admin
 * does about it.
 *
 *   multihomectl status [--json]   links, balanced default route, warnings
 *   multihomectl reapply           make the kernel match the registry again
 *   multihomectl flush             withdraw everything multihome installed
 *   multihomectl check FILE        validate a peers file / OpenVPN config
 *
 * Kernel state is read over rtnetlink (libmnl), libiptc and nfnetlink
 * (libnftnl, fw_nft_read.c), never by forking ip, iptables or nft.  The
 * firewall checked is the backend in use (mh_fw_backend(): iptables or nft);
 * the other one is only looked at for leftovers.  The registry is read with
 * the core's own code, under its lock.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <libmnl/libmnl.h>
#include <libiptc/libiptc.h>
#include <linux/fib_rules.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/nexthop.h>
#include <linux/rtnetlink.h>
#include <linux/netfilter/xt_comment.h>
#include <net/if.h>

#include "internal.h"
#include "ctl.h"
#include "fw_nft_read.h"

#define CH_PRE  "MULTIHOME-PRE"
#define CH_MARK "MULTIHOME-MARK"
#define CH_NAT  "MULTIHOME-NAT"
#define MAX_IF    512
#define MAX_RULES 2048
#define MAX_ROUTES 2048
#define MAX_NH    1024
#define MAX_WARN  256

/* ---- kernel state ---- */

struct kif {
	int index;
	char name[IF_NAMESIZE];
	unsigned flags;
	int naddr;
	uint32_t addr[8];
	uint8_t plen[8];
};

struct krule {
	uint32_t prio, table, mark, mask, src;
	uint8_t src_len, suppress;
};

struct kmember {
	int oif;
	uint32_t id, gw;
	unsigned weight;
};

struct kroute {                 /* default routes of ours */
	uint32_t table, nhid, gw;
	int oif, multipath;
	unsigned nmp;
	struct kmember mp[MH_MAX_LINKS];
};

struct knh {
	uint32_t id, gw;
	int oif, is_group;
	unsigned ngrp;
	struct nexthop_grp grp[MH_MAX_LINKS];
};

struct kstate {
	struct kif ifs[MAX_IF];
	unsigned nifs;
	struct krule rules[MAX_RULES];
	unsigned nrules;
	struct kroute *routes;
	unsigned nroutes;
	struct knh *nhs;
	unsigned nnhs;
	int have_nexthops;
};

static struct kstate K;

static int nl_dump(struct mnl_socket *s, uint16_t type, const void *hdr, size_t hlen,
		   mnl_cb_t cb, void *data)
{
	char buf[MNL_SOCKET_BUFFER_SIZE * 4];
	struct nlmsghdr *h = mnl_nlmsg_put_header(buf);
	uint32_t seq = (uint32_t)time(NULL) ^ type, portid = mnl_socket_get_portid(s);
	ssize_t n;
	int rc;

	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	h->nlmsg_seq = seq;
	memcpy(mnl_nlmsg_put_extra_header(h, hlen), hdr, hlen);
	if (mnl_socket_sendto(s, h, h->nlmsg_len) < 0)
		return -1;
	do {
		n = mnl_socket_recvfrom(s, buf, sizeof buf);
		if (n < 0)
			return -1;
		rc = mnl_cb_run(buf, (size_t)n, seq, portid, cb, data);
	} while (rc > 0);
	return rc < 0 ? -1 : 0;
}

static int link_cb(const struct nlmsghdr *h, void *data)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(h);
	const struct nlattr *a;
	struct kif *k;

	if (K.nifs >= MAX_IF)
		return MNL_CB_OK;
	k = &K.ifs[K.nifs];
	memset(k, 0, sizeof *k);
	k->index = ifi->ifi_index;
	k->flags = ifi->ifi_flags;
	mnl_attr_for_each(a, h, sizeof *ifi)
		if (mnl_attr_get_type(a) == IFLA_IFNAME)
			snprintf(k->name, sizeof k->name, "%s", mnl_attr_get_str(a));
	K.nifs++;
	return MNL_CB_OK;
}

static struct kif *kif_by_index(int index)
{
	unsigned i;

	for (i = 0; i < K.nifs; i++)
		if (K.ifs[i].index == index)
			return &K.ifs[i];
	return NULL;
}

static struct kif *kif_by_name(const char *name)
{
	unsigned i;

	for (i = 0; i < K.nifs; i++)
		if (!strcmp(K.ifs[i].name, name))
			return &K.ifs[i];
	return NULL;
}

static int addr_cb(const struct nlmsghdr *h, void *data)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(h);
	const struct nlattr *a;
	struct kif *k = kif_by_index((int)ifa->ifa_index);
	uint32_t local = 0, address = 0;

	if (!k || ifa->ifa_family != AF_INET || k->naddr >= 8)
		return MNL_CB_OK;
	mnl_attr_for_each(a, h, sizeof *ifa) {
		if (mnl_attr_get_type(a) == IFA_LOCAL)
			local = mnl_attr_get_u32(a);
		else if (mnl_attr_get_type(a) == IFA_ADDRESS)
			address = mnl_attr_get_u32(a);
	}
	k->addr[k->naddr] = local ? local : address;
	k->plen[k->naddr] = ifa->ifa_prefixlen;
	k->naddr++;
	return MNL_CB_OK;
}

static int rule_cb(const struct nlmsghdr *h, void *data)
{
	const struct fib_rule_hdr *frh = mnl_nlmsg_get_payload(h);
	const struct nlattr *a;
	struct krule r = { 0 };
	int ours = 0, has_mark = 0, has_mask = 0;

	if (h->nlmsg_type != RTM_NEWRULE || frh->family != AF_INET || K.nrules >= MAX_RULES)
		return MNL_CB_OK;
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
		case FRA_SUPPRESS_PREFIXLEN: r.suppress = mnl_attr_get_u32(a) == 0; break;
		}
	}
	if (has_mark && !has_mask)
		r.mask = 0xffffffffu;
	if (ours)
		K.rules[K.nrules++] = r;
	return MNL_CB_OK;
}

static int route_cb(const struct nlmsghdr *h, void *data)
{
	const struct rtmsg *rtm = mnl_nlmsg_get_payload(h);
	const struct nlattr *a;
	struct kroute *r;

	if (h->nlmsg_type != RTM_NEWROUTE || rtm->rtm_family != AF_INET || rtm->rtm_dst_len ||
	    rtm->rtm_protocol != MH_RT_PROTO || K.nroutes >= MAX_ROUTES)
		return MNL_CB_OK;
	r = &K.routes[K.nroutes];
	memset(r, 0, sizeof *r);
	r->table = rtm->rtm_table;
	mnl_attr_for_each(a, h, sizeof *rtm) {
		switch (mnl_attr_get_type(a)) {
		case RTA_TABLE: r->table = mnl_attr_get_u32(a); break;
		case RTA_OIF: r->oif = (int)mnl_attr_get_u32(a); break;
		case RTA_GATEWAY: r->gw = mnl_attr_get_u32(a); break;
		case RTA_NH_ID: r->nhid = mnl_attr_get_u32(a); break;
		case RTA_MULTIPATH: {
			const struct rtnexthop *nh = mnl_attr_get_payload(a);
			int left = (int)mnl_attr_get_payload_len(a);
			r->multipath = 1;
			while (left >= (int)sizeof *nh && nh->rtnh_len >= sizeof *nh &&
			       nh->rtnh_len <= left && r->nmp < MH_MAX_LINKS) {
				struct kmember *m = &r->mp[r->nmp++];
				const struct nlattr *na;
				memset(m, 0, sizeof *m);
				m->oif = nh->rtnh_ifindex;
				m->weight = nh->rtnh_hops + 1u;
				for (na = (const struct nlattr *)RTNH_DATA(nh);
				     (const char *)na + sizeof *na <= (const char *)nh + nh->rtnh_len;
				     na = (const struct nlattr *)((const char *)na + NLA_ALIGN(na->nla_len))) {
					if (na->nla_len < sizeof *na)
						break;
					if ((na->nla_type & NLA_TYPE_MASK) == RTA_GATEWAY)
						memcpy(&m->gw, (const char *)na + NLA_HDRLEN, 4);
				}
				left -= RTNH_ALIGN(nh->rtnh_len);
				nh = RTNH_NEXT(nh);
			}
			break;
		}
		}
	}
	K.nroutes++;
	return MNL_CB_OK;
}

static int nh_cb(const struct nlmsghdr *h, void *data)
{
	const struct nhmsg *nhm = mnl_nlmsg_get_payload(h);
	const struct nlattr *a;
	struct knh *n;

	if (h->nlmsg_type != RTM_NEWNEXTHOP || nhm->nh_protocol != MH_RT_PROTO || K.nnhs >= MAX_NH)
		return MNL_CB_OK;
	n = &K.nhs[K.nnhs];
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
			memcpy(n->grp, mnl_attr_get_payload(a), len * sizeof(struct nexthop_grp));
			n->ngrp = (unsigned)len;
			n->is_group = 1;
			break;
		}
		}
	}
	K.nnhs++;
	return MNL_CB_OK;
}

static int read_kernel(char *err, size_t len)
{
	struct mnl_socket *s = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC };
	struct ifaddrmsg ifa = { .ifa_family = AF_INET };
	struct fib_rule_hdr frh = { .family = AF_INET };
	struct rtmsg rtm = { .rtm_family = AF_INET };
	struct nhmsg nhm = { .nh_family = AF_UNSPEC };
	const char *what = "socket";

	K.routes = calloc(MAX_ROUTES, sizeof *K.routes);
	K.nhs = calloc(MAX_NH, sizeof *K.nhs);
	if (!K.routes || !K.nhs) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	if (!s || mnl_socket_bind(s, 0, MNL_SOCKET_AUTOPID) < 0)
		goto fail;
	if ((what = "links", nl_dump(s, RTM_GETLINK, &ifi, sizeof ifi, link_cb, NULL)) < 0 ||
	    (what = "addresses", nl_dump(s, RTM_GETADDR, &ifa, sizeof ifa, addr_cb, NULL)) < 0 ||
	    (what = "rules", nl_dump(s, RTM_GETRULE, &frh, sizeof frh, rule_cb, NULL)) < 0 ||
	    (what = "routes", nl_dump(s, RTM_GETROUTE, &rtm, sizeof rtm, route_cb, NULL)) < 0)
		goto fail;
	K.have_nexthops = 1;
	if (nl_dump(s, RTM_GETNEXTHOP, &nhm, sizeof nhm, nh_cb, NULL) < 0) {
		if (errno != EOPNOTSUPP && errno != EINVAL && errno != ENOENT) {
			what = "nexthops";
			goto fail;
		}
		K.have_nexthops = 0;
	}
	mnl_socket_close(s);
	return 0;
fail:
	snprintf(err, len, "rtnetlink (%s): %s", what, strerror(errno));
	if (s)
		mnl_socket_close(s);
	return -1;
}

static const struct knh *knh_find(uint32_t id)
{
	unsigned i;

	for (i = 0; i < K.nnhs; i++)
		if (K.nhs[i].id == id)
			return &K.nhs[i];
	return NULL;
}

static int krule_find(const struct krule *want)
{
	unsigned i;

	for (i = 0; i < K.nrules; i++) {
		const struct krule *r = &K.rules[i];
		if (r->prio == want->prio && r->table == want->table && r->mark == want->mark &&
		    r->mask == want->mask && r->src == want->src && r->src_len == want->src_len &&
		    r->suppress == want->suppress)
			return 1;
	}
	return 0;
}

/* The balanced default route as the kernel has it. */
struct balanced {
	const char *kind;       /* "nexthop-group", "multipath", "single", "none" */
	uint32_t id;
	unsigned n;
	struct kmember m[MH_MAX_LINKS];
};

static void read_balanced(struct balanced *b)
{
	unsigned i, j;

	memset(b, 0, sizeof *b);
	b->kind = "none";
	for (i = 0; i < K.nroutes; i++) {
		const struct kroute *r = &K.routes[i];
		if (r->table != RT_TABLE_MAIN)
			continue;
		if (r->nhid) {
			const struct knh *g = knh_find(r->nhid);
			b->kind = "nexthop-group";
			b->id = r->nhid;
			if (g && g->is_group) {
				for (j = 0; j < g->ngrp; j++) {
					const struct knh *m = knh_find(g->grp[j].id);
					b->m[b->n].id = g->grp[j].id;
					b->m[b->n].weight = g->grp[j].weight + 1u;
					b->m[b->n].oif = m ? m->oif : 0;
					b->m[b->n].gw = m ? m->gw : 0;
					b->n++;
				}
			} else if (g) {
				b->kind = "nexthop";
				b->m[0].id = g->id;
				b->m[0].oif = g->oif;
				b->m[0].gw = g->gw;
				b->m[0].weight = 1;
				b->n = 1;
			}
		} else if (r->multipath) {
			b->kind = "multipath";
			b->n = r->nmp;
			memcpy(b->m, r->mp, r->nmp * sizeof r->mp[0]);
		} else {
			b->kind = "single";
			b->m[0].oif = r->oif;
			b->m[0].gw = r->gw;
			b->m[0].weight = 1;
			b->n = 1;
		}
		return;
	}
}

/* ---- firewall (legacy x_tables via libiptc) ---- */

struct fwlink {                 /* what the firewall holds for one link */
	int pre, pins, nat;
};

struct fwstate {
	int mangle_loaded, nat_loaded;
	int have_pre, have_mark, have_nat;              /* our chains exist */
	int hook_pre, hook_out, hook_nat;               /* built-ins jump to them */
	int ours;                                       /* any chain of ours exists */
	char err[MH_ERR_MAX];
};

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

static const char *entry_comment(const struct ipt_entry *e)
{
	unsigned off = sizeof(struct ipt_entry);

	while (off + sizeof(struct xt_entry_match) <= e->target_offset) {
		const struct xt_entry_match *m = (const void *)((const char *)e + off);
		if (m->u.match_size < sizeof *m)
			break;
		if (!strcmp(m->u.user.name, "comment")) {
			const struct xt_comment_info *c = (const void *)m->data;
			return c->comment;
		}
		off += m->u.match_size;
	}
	return NULL;
}

static int jumps_to(struct xtc_handle *h, const char *builtin, const char *chain)
{
	const struct ipt_entry *e;

	for (e = iptc_first_rule(builtin, h); e; e = iptc_next_rule(e, h))
		if (!strcmp(iptc_get_target(e, h), chain))
			return 1;
	return 0;
}

/* Count the rules of CHAIN that carry "multihome NAME" (and the interface). */
static int count_rules(struct xtc_handle *h, const char *chain, const char *name,
		       const char *ifname, int in, const char *target)
{
	const struct ipt_entry *e;
	char want[64];
	int n = 0;

	if (!iptc_is_chain(chain, h))
		return 0;
	snprintf(want, sizeof want, "multihome %s", name);
	for (e = iptc_first_rule(chain, h); e; e = iptc_next_rule(e, h)) {
		const char *c = entry_comment(e);
		if (!c || strcmp(c, want))
			continue;
		if (ifname && strcmp(in ? e->ip.iniface : e->ip.outiface, ifname))
			continue;
		if (target && strcmp(iptc_get_target(e, h), target))
			continue;
		n++;
	}
	return n;
}

static void read_fw(struct fwstate *fw, const struct mh_link *const *up, unsigned n,
		    struct fwlink *per)
{
	struct xtc_handle *h;
	unsigned i;

	memset(fw, 0, sizeof *fw);
	if (n)
		memset(per, 0, n * sizeof *per);
	fw->mangle_loaded = table_loaded("mangle");
	fw->nat_loaded = table_loaded("nat");
	if (fw->mangle_loaded) {
		h = iptc_init("mangle");
		if (!h) {
			snprintf(fw->err, sizeof fw->err, "iptables mangle table: %s",
				 iptc_strerror(errno));
		} else {
			fw->have_pre = iptc_is_chain(CH_PRE, h);
			fw->have_mark = iptc_is_chain(CH_MARK, h);
			fw->hook_pre = jumps_to(h, "PREROUTING", CH_PRE);
			fw->hook_out = jumps_to(h, "OUTPUT", CH_MARK);
			for (i = 0; i < n; i++) {
				per[i].pre = count_rules(h, CH_PRE, up[i]->cfg.name, up[i]->ifname, 1,
							 "RETURN");
				per[i].pins = count_rules(h, CH_MARK, up[i]->cfg.name, NULL, 0, "MARK");
			}
			iptc_free(h);
		}
	}
	if (fw->nat_loaded) {
		h = iptc_init("nat");
		if (!h) {
			if (!fw->err[0])
				snprintf(fw->err, sizeof fw->err, "iptables nat table: %s",
					 iptc_strerror(errno));
		} else {
			fw->have_nat = iptc_is_chain(CH_NAT, h);
			fw->hook_nat = jumps_to(h, "POSTROUTING", CH_NAT);
			for (i = 0; i < n; i++)
				per[i].nat = count_rules(h, CH_NAT, up[i]->cfg.name, up[i]->ifname, 0,
							 NULL);
			iptc_free(h);
		}
	}
	fw->ours = fw->have_pre || fw->have_mark || fw->have_nat;
}

/* Is `iptables` on this host the nft variant?  MULTIHOME_IPTABLES names the
 * command to look at (default /usr/sbin/iptables, via the alternatives). */
static int iptables_is_nft(char *target, size_t len)
{
	const char *cmd = getenv("MULTIHOME_IPTABLES");
	char real[PATH_MAX];
	const char *base;

	if (!cmd || !*cmd)
		cmd = "/usr/sbin/iptables";
	if (!realpath(cmd, real))
		return 0;
	snprintf(target, len, "%s", real);
	base = strrchr(real, '/');
	base = base ? base + 1 : real;
	return !strcmp(base, "xtables-nft-multi") || !strcmp(base, "iptables-nft");
}

/* The backend the last event used (RUNDIR/firewall, written by the core):
 * its name, or NULL when no event wrote it. */
static const char *last_backend(char *buf, size_t len)
{
	char path[PATH_MAX];
	ssize_t r;
	int fd;

	snprintf(path, sizeof path, "%s/firewall", mh_rundir());
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	r = read(fd, buf, len - 1);
	close(fd);
	if (r <= 0)
		return NULL;
	buf[r] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return buf[0] ? buf : NULL;
}

/* Does the backend not in use hold anything of multihome's? */
static int other_backend_holds(enum mh_fw_backend be)
{
	if (be == MH_FW_NFT) {
		struct fwstate fw;
		read_fw(&fw, NULL, 0, NULL);
		return fw.ours;
	} else {
		struct nftr t;
		int yes = nftr_read(&t) == 0 && t.table;
		nftr_free(&t);
		return yes;
	}
}

/* ---- sysctl ---- */

static int read_int(const char *path, int *v)
{
	FILE *f = fopen(path, "re");
	int ok;

	if (!f)
		return -1;
	ok = fscanf(f, "%d", v) == 1;
	fclose(f);
	return ok ? 0 : -1;
}

static int sysctl_if(const char *ifname, const char *key, int *v)
{
	char path[256];

	snprintf(path, sizeof path, "/proc/sys/net/ipv4/conf/%s/%s", ifname, key);
	return read_int(path, v);
}

/* ---- output helpers ---- */

struct warning {
	char code[24];
	char link[MH_NAME_MAX + 1];
	char msg[400];
};

static struct warning W[MAX_WARN];
static unsigned NW;

static void warn(const char *code, const char *link, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void warn(const char *code, const char *link, const char *fmt, ...)
{
	va_list ap;

	if (NW >= MAX_WARN)
		return;
	snprintf(W[NW].code, sizeof W[NW].code, "%s", code);
	snprintf(W[NW].link, sizeof W[NW].link, "%s", link ? link : "");
	va_start(ap, fmt);
	vsnprintf(W[NW].msg, sizeof W[NW].msg, fmt, ap);
	va_end(ap);
	NW++;
}

static void json_str(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static const char *ip(uint32_t a, char *buf)
{
	inet_ntop(AF_INET, &a, buf, INET_ADDRSTRLEN);
	return buf;
}

static const char *nat_name(enum mh_nat n)
{
	return n == MH_NAT_SNAT ? "snat" : n == MH_NAT_OFF ? "off" : "masquerade";
}

static const char *when(long long t, char *buf, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;

	if (!t || !localtime_r(&tt, &tm))
		return "-";
	strftime(buf, len, "%Y-%m-%d %H:%M:%S %z", &tm);
	return buf;
}

static const char *ago(long long t, char *buf, size_t len)
{
	long long d = (long long)time(NULL) - t;

	if (!t)
		return "";
	if (d < 0)
		d = 0;
	if (d < 120)
		snprintf(buf, len, "%llds ago", d);
	else if (d < 7200)
		snprintf(buf, len, "%lldmin ago", d / 60);
	else if (d < 172800)
		snprintf(buf, len, "%lldh ago", d / 3600);
	else
		snprintf(buf, len, "%lldd ago", d / 86400);
	return buf;
}

/* Which registered link does a balanced member belong to? */
static const struct mh_link *member_link(const struct mh_registry *r, const struct kmember *m)
{
	unsigned i;

	for (i = 0; i < r->n; i++) {
		const struct mh_link *l = &r->links[i];
		if (!l->up)
			continue;
		if (m->id && m->id == MH_NH_ID_BASE + 1 + l->slot)
			return l;
		if (!m->id && m->oif && m->oif == l->ifindex)
			return l;
	}
	return NULL;
}

/* ---- status ---- */

static int by_name(const void *a, const void *b)
{
	return strcmp(((const struct mh_link *)a)->cfg.name, ((const struct mh_link *)b)->cfg.name);
}

/* Routing objects of ours (protocol 109) that no up link wants: what an
 * interrupted event, or a registry removed by hand, left behind.  Ordinary
 * events do not read the kernel; reapply does and removes them. */
static void stale_state(const struct mh_link *const *up, unsigned nup)
{
	unsigned i, j, rules = 0, routes = 0, nhs = 0, weighted = 0;

	for (j = 0; j < nup; j++)
		weighted += up[j]->cfg.weight > 0;
	for (i = 0; i < K.nrules; i++) {
		const struct krule *r = &K.rules[i];
		int wanted = nup && r->prio == MH_PRIO_SUPPRESS && r->table == RT_TABLE_MAIN &&
			     r->suppress;
		for (j = 0; j < nup && !wanted; j++) {
			const struct mh_config *c = &up[j]->cfg;
			wanted = (r->prio == c->priority && r->table == c->table &&
				  r->mark == c->mark && r->mask == c->mask && !r->src_len) ||
				 (r->prio == MH_PRIO_SOURCE_BASE + c->priority && r->table == c->table &&
				  r->src == up[j]->local && r->src_len == 32 && !r->mask);
		}
		rules += !wanted;
	}
	for (i = 0; i < K.nroutes; i++) {
		const struct kroute *r = &K.routes[i];
		int wanted = r->table == RT_TABLE_MAIN && weighted;
		for (j = 0; j < nup && !wanted; j++)
			wanted = r->table == up[j]->cfg.table;
		routes += !wanted;
	}
	for (i = 0; i < K.nnhs; i++) {
		const struct knh *n = &K.nhs[i];
		int wanted = n->id == MH_NH_GROUP_ID && weighted;
		for (j = 0; j < nup && !wanted; j++)
			wanted = up[j]->cfg.weight && n->id == MH_NH_ID_BASE + 1 + up[j]->slot;
		nhs += !wanted;
	}
	if (rules || routes || nhs)
		warn("stale-state", NULL,
		     "the kernel holds %u rules, %u routes and %u nexthops of multihome's "
		     "(protocol 109) that no up link wants (left by an interrupted event?); "
		     "run 'multihomectl reapply'", rules, routes, nhs);
}

static int status(int json)
{
	static struct mh_registry reg;
	const struct mh_link *up[MH_MAX_LINKS];
	struct fwlink per[MH_MAX_LINKS];
	struct fwstate fw;
	struct balanced bal;
	char err[MH_ERR_MAX], a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], t1[64], t2[64], pin[128];
	char nftpath[PATH_MAX] = "", lastbuf[16];
	unsigned i, j, nup = 0, nalive = 0;
	int all_rp = 0, fwd = 1, any_nat = 0, is_nft, nft_ok, leftover, moving;
	enum mh_fw_backend be = mh_fw_backend();
	const char *fwname = mh_fw_backend_name(be), *last;
	struct nftr nt;
	struct stat st;

	memset(&reg, 0, sizeof reg);
	reg.lockfd = -1;
	if (stat(mh_rundir(), &st) == 0) {
		if (mh_reg_open(&reg, err, sizeof err) < 0) {
			fprintf(stderr, "multihomectl: registry: %s\n", err);
			return CTL_ERROR;
		}
	}
	if (read_kernel(err, sizeof err) < 0) {
		fprintf(stderr, "multihomectl: %s\n", err);
		mh_reg_close(&reg);
		return CTL_ERROR;
	}
	/* the lock is not needed to look; release it for the plugins */
	if (reg.lockfd >= 0) {
		close(reg.lockfd);
		reg.lockfd = -1;
	}
	if (reg.links) {
		qsort(reg.links, reg.n, sizeof *reg.links, by_name);
		nup = mh_up_links(&reg, up);
	}
	read_balanced(&bal);
	/* the backend in use, and the other one for leftovers; with nft the
	 * legacy tables are read only to see whether chains of ours remain */
	read_fw(&fw, up, be == MH_FW_IPTABLES ? nup : 0, per);
	nft_ok = nftr_read(&nt) == 0;
	if (be == MH_FW_NFT)
		fw.err[0] = 0;
	is_nft = iptables_is_nft(nftpath, sizeof nftpath);
	last = last_backend(lastbuf, sizeof lastbuf);
	leftover = be == MH_FW_NFT ? fw.ours : nft_ok && nt.table;
	/* the choice changed since the last event and the rules are still in the
	 * other backend: the one in use is empty as expected, and one warning
	 * (firewall-leftover) says so instead of every missing rule */
	moving = leftover && last && strcmp(last, fwname);

	/* ---- warnings ---- */
	read_int("/proc/sys/net/ipv4/conf/all/rp_filter", &all_rp);
	read_int("/proc/sys/net/ipv4/ip_forward", &fwd);
	for (i = 0; i < nup; i++) {
		const struct mh_link *l = up[i];
		const struct kif *k = kif_by_name(l->ifname);
		int rp = 0, eff;
		struct krule want;

		any_nat |= l->cfg.nat != MH_NAT_OFF;
		if (!k || k->index != l->ifindex) {
			if (!k)
				warn("interface-gone", l->cfg.name,
				     "link %s is registered up on %s, but %s is gone "
				     "(its pppd/OpenVPN died without ip-down?); run 'multihomectl reapply'",
				     l->cfg.name, l->ifname, l->ifname);
			else
				warn("interface-gone", l->cfg.name,
				     "link %s is registered up on %s (index %d), but %s is now another "
				     "interface (index %d); run 'multihomectl reapply'",
				     l->cfg.name, l->ifname, l->ifindex, l->ifname, k->index);
			continue;
		}
		nalive++;
		if (sysctl_if(l->ifname, "rp_filter", &rp) == 0) {
			eff = rp > all_rp ? rp : all_rp;
			if (eff == 1)
				warn("rp-filter-strict", l->cfg.name,
				     "strict rp_filter on uplink %s (link %s): replies arriving there for "
				     "flows routed by another link are dropped; set "
				     "net.ipv4.conf.%s.rp_filter=2 and net.ipv4.conf.all.rp_filter to 0 or 2",
				     l->ifname, l->cfg.name, l->ifname);
		}
		/* the link's routing state */
		{
			char missing[300] = "";
			int has_route = 0, in_bal = !l->cfg.weight;
			want = (struct krule){ .prio = l->cfg.priority, .table = l->cfg.table,
					       .mark = l->cfg.mark, .mask = l->cfg.mask };
			if (!krule_find(&want))
				snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
					 "%srule 'fwmark 0x%x/0x%x lookup %u' (priority %u)",
					 missing[0] ? ", " : "", l->cfg.mark, l->cfg.mask, l->cfg.table,
					 l->cfg.priority);
			want = (struct krule){ .prio = MH_PRIO_SOURCE_BASE + l->cfg.priority,
					       .table = l->cfg.table, .src = l->local, .src_len = 32 };
			if (!krule_find(&want))
				snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
					 "%srule 'from %s lookup %u' (priority %u)",
					 missing[0] ? ", " : "", ip(l->local, a), l->cfg.table,
					 MH_PRIO_SOURCE_BASE + l->cfg.priority);
			for (j = 0; j < K.nroutes; j++)
				if (K.routes[j].table == l->cfg.table && K.routes[j].oif == l->ifindex)
					has_route = 1;
			if (!has_route)
				snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
					 "%sdefault route in table %u", missing[0] ? ", " : "",
					 l->cfg.table);
			for (j = 0; j < bal.n; j++)
				if (member_link(&reg, &bal.m[j]) == l)
					in_bal = 1;
			if (!in_bal)
				snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
					 "%smember of the balanced default route", missing[0] ? ", " : "");
			if (moving) {
				/* said once, by firewall-leftover */
			} else if (be == MH_FW_NFT) {
				/* the table's own absence is said once, below */
				if (nft_ok)
					nftr_link_missing(&nt, l, missing, sizeof missing);
			} else {
				if (fw.mangle_loaded && !fw.err[0] && !per[i].pre)
					snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
						 "%sfirewall rules in %s", missing[0] ? ", " : "", CH_PRE);
				else if (!fw.mangle_loaded)
					snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
						 "%sfirewall rules (no mangle table)", missing[0] ? ", " : "");
				if (fw.mangle_loaded && !fw.err[0] && per[i].pins < (int)l->cfg.npins)
					snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
						 "%s%u of %u pins in %s", missing[0] ? ", " : "",
						 l->cfg.npins - per[i].pins, l->cfg.npins, CH_MARK);
				if (l->cfg.nat != MH_NAT_OFF && !fw.err[0] && !per[i].nat)
					snprintf(missing + strlen(missing), sizeof missing - strlen(missing),
						 "%sNAT rule in %s", missing[0] ? ", " : "", CH_NAT);
			}
			if (missing[0])
				warn("rules-missing", l->cfg.name,
				     "link %s is up on %s but the kernel lacks its %s; "
				     "run 'multihomectl reapply'", l->cfg.name, l->ifname, missing);
		}
	}
	if (nalive) {
		struct krule sup = { .prio = MH_PRIO_SUPPRESS, .table = RT_TABLE_MAIN, .suppress = 1 };
		if (!krule_find(&sup))
			warn("rules-missing", NULL,
			     "the shared rule 'lookup main suppress_prefixlength 0' (priority %d) is "
			     "missing; run 'multihomectl reapply'", MH_PRIO_SUPPRESS);
	}
	stale_state(up, nup);
	if (nalive && fwd == 0) {
		const struct kif *other = NULL;
		for (i = 0; i < K.nifs && !other; i++) {
			const struct kif *k = &K.ifs[i];
			int link_if = 0;
			if ((k->flags & IFF_LOOPBACK) || !(k->flags & IFF_UP))
				continue;       /* down: fallback tunnels (tunl0, sit0) and the like */
			for (j = 0; j < nup; j++)
				if (!strcmp(up[j]->ifname, k->name))
					link_if = 1;
			if (!link_if)
				other = k;
		}
		if (other)
			warn("ip-forward-off", NULL,
			     "net.ipv4.ip_forward is 0 while uplinks are up and %s exists: "
			     "traffic from the LAN is not routed; set net.ipv4.ip_forward=1",
			     other->name);
	}
	if (nalive && !moving && be == MH_FW_NFT && nft_ok) {
		char what[400] = "";
		if (!nt.table)
			warn("rules-missing", NULL,
			     "table ip multihome is gone (deleted by 'nft flush ruleset', or by a firewall "
			     "reload that replaces the whole ruleset?): no up link has its firewall marks, "
			     "pins or NAT; run 'multihomectl reapply'");
		else if (nftr_table_missing(&nt, mh_mark_union(up, nup), what, sizeof what))
			warn("rules-missing", NULL,
			     "table ip multihome lacks its %s; run 'multihomectl reapply'", what);
	}
	if (nalive && !moving && be == MH_FW_IPTABLES && !fw.err[0]) {
		char what[200] = "";
		if (!fw.hook_pre)
			strcat(what, "mangle PREROUTING -> " CH_PRE);
		if (!fw.hook_out)
			strcat(strcat(what, what[0] ? ", " : ""), "mangle OUTPUT -> " CH_MARK);
		if (any_nat && !fw.hook_nat)
			strcat(strcat(what, what[0] ? ", " : ""), "nat POSTROUTING -> " CH_NAT);
		if (what[0])
			warn("hooks-missing", NULL,
			     "the built-in chains no longer jump to multihome's (%s): a firewall "
			     "reload flushed them?; run 'multihomectl reapply'", what);
	}
	if (fw.err[0])
		warn("firewall-unreadable", NULL, "%s", fw.err);
	if (be == MH_FW_NFT && !nft_ok)
		warn("firewall-unreadable", NULL, "%s", nt.err);
	if (be == MH_FW_IPTABLES && is_nft && fw.ours)
		warn("legacy-on-nft", NULL,
		     "multihome's firewall rules are in the legacy iptables tables, but iptables on "
		     "this host is %s (nft): 'iptables -S' does not show them; use "
		     "'iptables-legacy -t mangle -S' and 'iptables-legacy -t nat -S', or put "
		     "'firewall nft' in %s (then 'multihomectl reapply') to move multihome's rules to "
		     "table ip multihome, where 'nft list ruleset' shows them", nftpath,
		     getenv("MULTIHOME_CONF") && *getenv("MULTIHOME_CONF") ? getenv("MULTIHOME_CONF")
									 : "/etc/multihome.conf");
	if (leftover)
		warn("firewall-leftover", NULL,
		     "the firewall backend in use is %s, but %s still there (the last event used %s): "
		     "%s; run 'multihomectl reapply' to %s", fwname,
		     be == MH_FW_NFT ? "multihome's legacy iptables chains (MULTIHOME-*) are"
				     : "table ip multihome (nft) is",
		     last ? last : "no record",
		     moving ? "multihome's rules have not moved yet"
			    : be == MH_FW_NFT ? "they still mark packets" : "it still marks packets",
		     moving ? "move them" : "remove the leftover");

	/* ---- output ---- */
	if (json) {
		printf("{\"rundir\":");
		json_str(mh_rundir());
		printf(",\"firewall\":\"%s\",\"firewall_last_event\":", fwname);
		if (last)
			json_str(last);
		else
			printf("null");
		printf(",\"links\":[");
		for (i = 0; i < reg.n; i++) {
			const struct mh_link *l = &reg.links[i];
			const struct kif *k = l->ifname[0] ? kif_by_name(l->ifname) : NULL;
			printf("%s{\"name\":", i ? "," : "");
			json_str(l->cfg.name);
			printf(",\"interface\":");
			if (l->ifname[0])
				json_str(l->ifname);
			else
				printf("null");
			printf(",\"state\":\"%s\",\"interface_present\":%s,\"ifindex\":%d",
			       l->up ? "up" : "down",
			       k && k->index == l->ifindex ? "true" : "false", l->ifindex);
			printf(",\"table\":%u,\"mark\":\"0x%x\",\"mask\":\"0x%x\",\"priority\":%u,"
			       "\"weight\":%u,\"nat\":\"%s\",\"reply_via_link\":%s",
			       l->cfg.table, l->cfg.mark, l->cfg.mask, l->cfg.priority, l->cfg.weight,
			       nat_name(l->cfg.nat), l->cfg.reply_via_link ? "true" : "false");
			printf(",\"local\":\"%s\",\"peer\":\"%s\",\"gateway\":\"%s\"",
			       ip(l->local, a), ip(l->peer, b), ip(l->gateway, t1));
			printf(",\"pins\":[");
			for (j = 0; j < l->cfg.npins; j++) {
				printf("%s", j ? "," : "");
				json_str(mh_pin_format(&l->cfg.pins[j], pin, sizeof pin));
			}
			printf("],\"since\":%lld,\"pid\":%d}", l->since, l->pid);
		}
		printf("],\"balanced\":{\"kind\":\"%s\"", bal.kind);
		if (bal.id)
			printf(",\"id\":\"0x%x\"", bal.id);
		printf(",\"members\":[");
		for (i = 0; i < bal.n; i++) {
			const struct mh_link *l = member_link(&reg, &bal.m[i]);
			const struct kif *k = kif_by_index(bal.m[i].oif);
			printf("%s{\"link\":", i ? "," : "");
			if (l)
				json_str(l->cfg.name);
			else
				printf("null");
			printf(",\"interface\":");
			if (k)
				json_str(k->name);
			else
				printf("null");
			printf(",\"weight\":%u}", bal.m[i].weight);
		}
		printf("]},\"warnings\":[");
		for (i = 0; i < NW; i++) {
			printf("%s{\"code\":\"%s\",\"link\":", i ? "," : "", W[i].code);
			if (W[i].link[0])
				json_str(W[i].link);
			else
				printf("null");
			printf(",\"message\":");
			json_str(W[i].msg);
			printf("}");
		}
		printf("]}\n");
	} else {
		if (!reg.n)
			printf("no links registered in %s\n", mh_rundir());
		for (i = 0; i < reg.n; i++) {
			const struct mh_link *l = &reg.links[i];
			const struct kif *k = l->ifname[0] ? kif_by_name(l->ifname) : NULL;
			printf("link %s: %s", l->cfg.name, l->up ? "up" : "down");
			if (l->ifname[0])
				printf(" %s %s%s", l->up ? "on" : "(last on", l->ifname, l->up ? "" : ")");
			if (l->up && !(k && k->index == l->ifindex))
				printf(" (interface gone)");
			if (l->since)
				printf(", since %s (%s)", when(l->since, t1, sizeof t1),
				       ago(l->since, t2, sizeof t2));
			if (l->pid)
				printf(", pid %d", l->pid);
			printf("\n  table %u, mark 0x%x/0x%x, priority %u, weight %u, nat %s, "
			       "reply-via-link %s\n", l->cfg.table, l->cfg.mark, l->cfg.mask,
			       l->cfg.priority, l->cfg.weight, nat_name(l->cfg.nat),
			       l->cfg.reply_via_link ? "yes" : "no");
			printf("  local %s", ip(l->local, a));
			if (l->peer)
				printf(", peer %s", ip(l->peer, a));
			if (l->gateway)
				printf(", gateway %s", ip(l->gateway, a));
			printf("\n");
			for (j = 0; j < l->cfg.npins; j++)
				printf("%s%s", j ? "; " : "  pins: ",
				       mh_pin_format(&l->cfg.pins[j], pin, sizeof pin));
			if (l->cfg.npins)
				printf("\n");
		}
		printf("balanced default route: ");
		if (!bal.n)
			printf("none\n");
		else {
			if (!strcmp(bal.kind, "nexthop-group"))
				printf("nexthop group 0x%x:", bal.id);
			else if (!strcmp(bal.kind, "multipath"))
				printf("multipath route:");
			else
				printf("single route:");
			for (i = 0; i < bal.n; i++) {
				const struct mh_link *l = member_link(&reg, &bal.m[i]);
				const struct kif *k = kif_by_index(bal.m[i].oif);
				printf("%s %s (%s) weight %u", i ? "," : "", l ? l->cfg.name : "?",
				       k ? k->name : "?", bal.m[i].weight);
			}
			printf("\n");
		}
		printf("firewall: %s (%s)", fwname,
		       be == MH_FW_NFT ? (nt.table ? "table ip multihome" : "no table ip multihome")
				       : "legacy x_tables, chains MULTIHOME-*");
		if (last && strcmp(last, fwname))
			printf(", the last event used %s", last);
		printf("\n");
		for (i = 0; i < NW; i++)
			printf("warning: %s\n", W[i].msg);
	}
	nftr_free(&nt);
	mh_reg_close(&reg);
	return NW ? CTL_WARN : CTL_OK;
}

/* ---- reapply, flush ---- */

/* Forget which backend the last event used: the core then empties the other
 * backend of anything of ours, as on a first event. */
static void forget_backend(void)
{
	char path[PATH_MAX];

	snprintf(path, sizeof path, "%s/firewall", mh_rundir());
	unlink(path);
}

/* After a reapply with nft: does table ip multihome still lack something
 * (an event reads only map ingress and chain egress, so a base chain, a
 * restore/masq/srcaddr element or a link chain's rules removed by hand stay
 * missing)?  Then WHAT says what. */
static int nft_still_missing(char *what, size_t len)
{
	static struct mh_registry reg;
	const struct mh_link *up[MH_MAX_LINKS];
	struct nftr t;
	char err[MH_ERR_MAX];
	unsigned i, nup = 0, n = 0;

	what[0] = 0;
	memset(&reg, 0, sizeof reg);
	reg.lockfd = -1;
	if (mh_reg_open(&reg, err, sizeof err) < 0)
		return 0;
	if (reg.links)
		nup = mh_up_links(&reg, up);
	if (nup && nftr_read(&t) == 0) {
		n = nftr_table_missing(&t, mh_mark_union(up, nup), what, len);
		for (i = 0; i < nup; i++)
			n += nftr_link_missing(&t, up[i], what, len);
		nftr_free(&t);
	}
	mh_reg_close(&reg);
	return n > 0;
}

static int reapply_or_flush(int flush)
{
	enum mh_fw_backend be = mh_fw_backend();
	char err[MH_ERR_MAX], what[600] = "";
	const char *cmd = flush ? "flush" : "reapply";
	int rebuilt = 0;

	/* flush withdraws from both backends; reapply empties the other one
	 * whenever it still holds something of ours */
	if (flush || other_backend_holds(be))
		forget_backend();
	if ((flush ? mh_flush : mh_reconcile)(err, sizeof err) < 0) {
		fprintf(stderr, "multihomectl %s: %s\n", cmd, err);
		return CTL_ERROR;
	}
	if (!flush && be == MH_FW_NFT && nft_still_missing(what, sizeof what)) {
		/* rebuilt whole by the next event once it is gone */
		if (nftr_delete_table(err, sizeof err) < 0 || mh_reconcile(err, sizeof err) < 0) {
			fprintf(stderr, "multihomectl %s: rebuilding table ip multihome: %s\n", cmd, err);
			return CTL_ERROR;
		}
		rebuilt = 1;
	}
	printf("multihomectl %s: %s (%u netlink messages, %u firewall commits, %lld us)\n",
	       cmd, flush ? "everything of multihome's withdrawn, registry emptied"
			  : "kernel matches the registry", mh_last_stats()->nl_msgs,
	       mh_last_stats()->fw_commits, mh_last_stats()->usec);
	if (rebuilt)
		printf("multihomectl %s: table ip multihome rebuilt: it lacked %s\n", cmd, what);
	return CTL_OK;
}

/* ---- main ---- */

static void usage(FILE *f)
{
	fprintf(f,
		"usage: multihomectl status [--json]\n"
		"       multihomectl reapply\n"
		"       multihomectl flush\n"
		"       multihomectl check [--type pppd|openvpn] FILE\n"
		"       multihomectl help\n"
		"Registry: $MULTIHOME_RUNDIR (default /run/multihome).  See multihomectl(8).\n");
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "status";

	if (!strcmp(cmd, "status")) {
		int json = 0, i;
		for (i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--json") || !strcmp(argv[i], "-j"))
				json = 1;
			else {
				usage(stderr);
				return CTL_ERROR;
			}
		}
		return status(json);
	}
	if (!strcmp(cmd, "reapply") || !strcmp(cmd, "flush")) {
		int flush = !strcmp(cmd, "flush");
		if (argc != 2) {
			usage(stderr);
			return CTL_ERROR;
		}
		return reapply_or_flush(flush);
	}
	if (!strcmp(cmd, "check")) {
		const char *type = NULL, *file = NULL;
		int i;
		for (i = 2; i < argc; i++) {
			if (!strcmp(argv[i], "--type") && i + 1 < argc)
				type = argv[++i];
			else if (!strncmp(argv[i], "--type=", 7))
				type = argv[i] + 7;
			else if (!file && argv[i][0] != '-')
				file = argv[i];
			else {
				usage(stderr);
				return CTL_ERROR;
			}
		}
		if (!file) {
			usage(stderr);
			return CTL_ERROR;
		}
		return ctl_check(file, type);
	}
	if (!strcmp(cmd, "help") || !strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
		usage(stdout);
		return CTL_OK;
	}
	fprintf(stderr, "multihomectl: unknown command '%s'\n", cmd);
	usage(stderr);
	return CTL_ERROR;
}
