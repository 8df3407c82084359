/* The plan: every object multihome must have in the kernel, as a pure
 * function of the registered links (no I/O, no allocation but its own).
 *
 * The same structs hold what a reader found in the kernel, so one diff per
 * backend compares "what must be" with "what is" (the kernel, or the plan of
 * the state before an event) and yields the operations that the writer sends
 * and that `multihomectl status` prints as a dry run.  Only the plan knows
 * the names of chains, the ids of nexthops and the comments of rules.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_PLAN_H
#define MULTIHOME_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <net/if.h>

#include "mh.h"

enum mh_fw_backend { MH_FW_IPTABLES = 0, MH_FW_NFT };

#define MH_NO_OWNER     (-1)    /* a shared object, or one read from the kernel */
#define MH_COMMENT_MAX  48      /* "multihome NAME", "multihome mask 0x........" */
#define MH_CHAIN_MAX    80      /* in_NAME_0xVVVVVVVV_0xMMMMMMMM_s255.255.255.255 fits */
#define MH_METRIC_LAST  0xffffffffu /* a strict link's "unreachable default": below its own */

/* ---- routing (rtnetlink) ---- */

/* A rule of ours (FRA_PROTOCOL MH_RT_PROTO), action "lookup TABLE". */
struct mh_rule {
	uint32_t prio, table, mark, mask, src, dst;
	uint8_t  src_len, dst_len;
	uint8_t  ipproto;       /* a pin's protocol (0: any) */
	uint16_t dport_lo, dport_hi;    /* a pin's ports (0: any) */
	uint8_t  suppress;      /* "lookup main suppress_prefixlength 0" */
	uint8_t  unreachable;   /* action unreachable instead of "lookup TABLE" */
	int      owner;         /* index into mh_plan.links, or MH_NO_OWNER */
};

/* One hop of main's RTA_MULTIPATH default (kernels without nexthop objects). */
struct mh_hop {
	int      oif;
	uint32_t gw;
	unsigned weight;        /* 1..256 */
};

/* A default route of ours: a link table's, or main's balanced one. */
struct mh_route {
	uint32_t table;
	uint32_t metric;
	uint8_t  type;          /* RTN_UNICAST or RTN_UNREACHABLE */
	int      oif;           /* 0: none (unreachable, nhid, multipath) */
	uint32_t gw;
	uint32_t nhid;          /* main's default over the nexthop group */
	unsigned hop0, nhops;   /* main's multipath default: routing.hops[hop0 ..] */
	int      owner;
};

struct mh_nexthop {
	uint32_t id, gw;
	int      oif;
	int      owner;
};

struct mh_member {              /* of the balanced nexthop group */
	uint32_t id;
	unsigned weight;        /* 1..256 */
};

struct mh_routing {
	struct mh_rule    *rules;    unsigned nrules;
	struct mh_route   *routes;   unsigned nroutes;
	struct mh_hop     *hops;     unsigned nhops;
	struct mh_nexthop *nhs;      unsigned nnhs;
	struct mh_member  *group;    unsigned ngroup;
	int has_group;          /* the group object exists (with ngroup members) */
	int nexthops;           /* nexthop objects in use; else RTA_MULTIPATH */
};

/* ---- firewall: the rules both backends install, in their order ---- */

enum mh_fw_kind {
	MH_FW_INGRESS_CTMARK,   /* -i IF: ct mark = ct mark & ~M | V */
	MH_FW_INGRESS_END,      /* -i IF: no egress marking for uplink ingress */
	MH_FW_TO_EGRESS,        /* the rest (LAN-forwarded) meets the egress rules */
	MH_FW_MASK_CLEAR,       /* nft: meta mark & ~OURS, when ct mark has our bits */
	MH_FW_RESTORE,          /* packet mark (our bits) from the connmark */
	MH_FW_STOP_IF_MARKED,   /* a packet with any of our bits is left alone */
	MH_FW_PIN,              /* MATCH: mark & ~M | V (and stop) */
	MH_FW_PIN_DROP,         /* MATCH: drop (a strict link that is up but offline) */
	MH_FW_STOP_IF_PKT_MARKED, /* nft: a packet already carrying our bits (a probe's
				   * SO_MARK) is left alone */
	MH_FW_PIN_JUMP,         /* nft: jump to a link's pin chain */
	MH_FW_INGRESS_VMAP,     /* nft prerouting: iifname vmap @ingress */
	MH_FW_MASQ_SET,         /* nft postrouting: oifname @masq masquerade */
	MH_FW_SNAT_MAP,         /* nft postrouting: snat to oifname map @srcaddr */
	MH_FW_RESTORE_CHAIN,    /* nft rs_ chain: meta mark & ~M | V accept */
	MH_FW_NAT,              /* iptables -o IF: MASQUERADE or SNAT --to LOCAL */
};

struct mh_fw_rule {
	uint8_t  kind;          /* enum mh_fw_kind */
	int      owner;         /* link index, or MH_NO_OWNER */
	int      pin;           /* MH_FW_PIN: index into the owner's pins */
	uint32_t ours;          /* mask kinds: the union of our marks */
	char     chain[MH_CHAIN_MAX];   /* where it lives */
	char     jump[MH_CHAIN_MAX];    /* MH_FW_PIN_JUMP, MH_FW_TO_EGRESS: the target */
	char     comment[MH_COMMENT_MAX];
	/* read from the kernel only */
	uint64_t handle;
	char    *text;          /* canonical expression text (nft), or NULL */
	const void *entry;      /* iptables: the kernel's entry (valid while its handle lives) */
};

/* nftables: a chain of table ip multihome. */
struct mh_nft_chain {
	char     name[MH_CHAIN_MAX];
	int      base;          /* a base chain: hook, priority, type */
	uint32_t hook;
	int32_t  prio;
	const char *type;       /* "filter", "route", "nat" */
	int      owner;
};

/* nftables: an element of one of the four maps/sets. */
enum mh_nft_set { MH_SET_INGRESS = 0, MH_SET_RESTORE, MH_SET_MASQ, MH_SET_SNAT, MH_NSETS };

struct mh_nft_elem {
	uint8_t  set;           /* enum mh_nft_set */
	char     key[IF_NAMESIZE];      /* ifname, or the mark (u32, host order) */
	uint8_t  klen;
	char     chain[MH_CHAIN_MAX];   /* verdict maps: goto CHAIN */
	uint32_t addr;          /* srcaddr: the address */
	char     comment[MH_COMMENT_MAX];
	int      owner;
};

struct mh_firewall {
	enum mh_fw_backend backend;
	uint32_t ours;          /* the union of the links' masks */
	int      wanted;        /* anything at all (iptables mangle chains / nft table) */
	int      want_nat;      /* iptables: chain MULTIHOME-NAT */
	struct mh_fw_rule   *rules;  unsigned nrules;   /* in chain order */
	struct mh_nft_chain *chains; unsigned nchains;  /* nft */
	struct mh_nft_elem  *elems;  unsigned nelems;   /* nft */
	/* read from the kernel only */
	int      table;         /* nft: table ip multihome exists */
	int      sets[MH_NSETS];/* nft: each set exists */
	int      hooks[3];      /* iptables: PREROUTING, OUTPUT, POSTROUTING jump to ours (count) */
	int      loaded[2];     /* iptables: mangle, nat tables are loaded */
};

/* iptables chain names and the built-in chains that jump to them. */
#define MH_IPT_PRE  "MULTIHOME-PRE"
#define MH_IPT_MARK "MULTIHOME-MARK"
#define MH_IPT_NAT  "MULTIHOME-NAT"
/* nftables names */
#define MH_NFT_TABLE  "multihome"
#define MH_NFT_MASK_RULES 4     /* the rules of chain egress that carry OURS */
#define MH_NFT_EGRESS "egress"
extern const char *const mh_nft_set_names[MH_NSETS];

/* ---- operations: what a diff yields, the writers send and status prints ---- */

enum mh_op_action { MH_OP_ADD = 0, MH_OP_REPLACE, MH_OP_DELETE };

enum mh_rt_kind { MH_RT_RULE = 0, MH_RT_ROUTE, MH_RT_NEXTHOP, MH_RT_GROUP };

struct mh_rt_op {
	uint8_t action, kind;
	const void *obj;        /* mh_rule/mh_route/mh_nexthop, or the mh_routing of the group */
	int owner;
	int exists_ok;          /* main's default: EEXIST means it is there */
};

struct mh_rt_ops { struct mh_rt_op *v; unsigned n, cap; };

struct mh_rt_diff_args {
	int delta;              /* HAVE is the plan before the event, not the kernel */
	int touched;            /* the link (plan index) coming up, or -1 */
};

enum mh_fw_op_kind {
	MH_FWOP_TABLE = 0,      /* nft: delete the table, or build it whole (DETAIL: what it lacks) */
	MH_FWOP_CHAIN,          /* nft: a link chain: add (with its rules), replace (refill), delete */
	MH_FWOP_ELEM,           /* nft: a map element: add, delete */
	MH_FWOP_RULE,           /* a rule: add (before HANDLE, or appended), replace, delete */
	MH_FWOP_HOOK,           /* iptables: a built-in chain's jump into ours: add, delete */
	MH_FWOP_IPT_TABLE,      /* iptables: our chains of a table rebuilt and committed */
};

struct mh_fw_op {
	uint8_t  action, kind;
	int      owner;
	const struct mh_nft_chain *chain;
	const struct mh_nft_elem  *elem;
	const struct mh_fw_rule   *rule;
	uint64_t handle;        /* rule: the kernel's (replace, delete); add: insert before it */
	int      at_head;       /* rule add: at the head of the chain */
	unsigned missing, total;/* chain replace: rules missing of total */
	char     detail[96];    /* table, hook, iptables table: what it is about */
};

struct mh_fw_ops { struct mh_fw_op *v; unsigned n, cap; };

/* ---- the plan ---- */

/* What the plan keeps of a link (a copy: a plan outlives the registry). */
struct mh_plan_link {
	int      up;            /* else a strict link, down: only its refusals */
	int      online;        /* its upstream answers (untracked: always) */
	int      strict;        /* pin-fallback no: its pins never fall through */
	char     name[MH_NAME_MAX + 1];
	char     ifname[IF_NAMESIZE];
	int      ifindex;
	uint32_t local, gateway;
	uint32_t table, mark, mask, priority;
	unsigned weight, slot;
	enum mh_nat nat;
	int      reply_via_link;
	unsigned npins;
	const struct mh_pin *pins;      /* points into the plan's own copy */
};

struct mh_plan {
	struct mh_plan_link *links;  unsigned nlinks;   /* up and strict links, priority order */
	struct mh_pin       *pins;   unsigned npins;
	struct mh_routing    rt;
	struct mh_firewall   fw;
	int any_online;         /* a weighted up link is online */
	unsigned char *mine;    /* NULL: every link's own objects are here; else only
				 * those of links I with mine[I] (what an event changes) */
};

struct mh_plan_input {
	const struct mh_link *links;    /* registry entries (up or down) */
	unsigned n;
	int nexthops;           /* the kernel has nexthop objects */
	enum mh_fw_backend backend;
};

/* Build the plan (allocates; mh_plan_free).  0, or -1 on out of memory. */
int  mh_plan_build(const struct mh_plan_input *in, struct mh_plan *p);
void mh_plan_free(struct mh_plan *p);

/* The same in steps, for an event: the links (and what is shared: the mark
 * union, whether anything is wanted) ...  */
int  mh_plan_links(const struct mh_plan_input *in, struct mh_plan *p);
/* ... then which links an event from BEFORE to AFTER changes (TOUCHED, a
 * link of AFTER, always counts as changed): a link's own objects depend only
 * on the link and on whether it is balanced, so the diff of two plans that
 * hold only the changed links' own objects (and all shared ones: the
 * suppress rule, the group, main's default, chain egress, the base chains)
 * yields the same operations as the diff of the whole plans.  0 / -1 ... */
int  mh_plan_select(struct mh_plan *before, struct mh_plan *after, int touched);
/* ... then the objects (again after a change of P->mine).  iptables rebuilds
 * a changed table whole, so its firewall part is always whole. */
int  mh_plan_routing(struct mh_plan *p);
int  mh_plan_firewall(struct mh_plan *p);
/* Every link's objects (for the full path), if P held only some.  0 / -1
 * (out of memory: P's objects are then unusable). */
int  mh_plan_whole(struct mh_plan *p);

/* Mask of all the bits multihome's up links use. */
uint32_t mh_mark_union(const struct mh_plan_link *links, unsigned n);

/* The up links of the registry in plan order (priority, then name). */
unsigned mh_plan_order(const struct mh_link *links, unsigned n, const struct mh_link **out);

/* A link whose pins never fall through (pin-fallback no, with pins): it is in
 * the plan also while it is down, refusing what its pins match. */
static inline int mh_link_strict(const struct mh_link *l)
{
	return !l->cfg.pin_fallback && l->cfg.npins > 0;
}
static inline int mh_link_present(const struct mh_link *l) { return l->up || mh_link_strict(l); }

/* Nexthop id of the link in SLOT, and of the balanced group. */
static inline uint32_t mh_nh_id(unsigned slot) { return MH_NH_ID_BASE + 1 + slot; }

/* Free what a reader allocated in R / F (kernel states). */
void mh_routing_free(struct mh_routing *r);
void mh_firewall_free(struct mh_firewall *f);

#endif
