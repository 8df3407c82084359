/* multihome core: the link model and the two events a link has.
 *
 * A plugin (pppd, OpenVPN) fills a struct mh_config from its options with
 * mh_config_set(), then at link-up fills a struct mh_link and calls
 * mh_link_up(); at link-down it calls mh_link_down().  The core never knows
 * which plugin called it.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef MULTIHOME_MH_H
#define MULTIHOME_MH_H

#include <stddef.h>
#include <stdint.h>
#include <net/if.h>

#define MH_NAME_MAX     31      /* link name: [A-Za-z0-9_.-], 1..31 chars */
#define MH_MAX_PINS     32      /* pins per link */
#define MH_MAX_LINKS    256     /* links in one registry */
#define MH_MAX_TARGETS  8       /* upstream tracking targets per link */
#define MH_ERR_MAX      256     /* size of an error buffer */

/* Everything multihome installs carries this tag. */
#define MH_RT_PROTO     0x6d    /* rtm_protocol / FRA_PROTOCOL / nhm_protocol: "multihome" (109) */
#define MH_PRIO_SUPPRESS 99     /* the shared "lookup main suppress_prefixlength 0" rule */
#define MH_PRIO_MIN     100     /* link fwmark rules live in [MH_PRIO_MIN, MH_PRIO_MAX] */
#define MH_PRIO_MAX     9999
#define MH_PRIO_SOURCE_BASE 10000 /* a link's "from LOCAL" rule: MH_PRIO_SOURCE_BASE + its priority */
#define MH_NH_ID_BASE   0x6d680000u /* nexthop object of slot s: MH_NH_ID_BASE + 1 + s */
#define MH_NH_GROUP_ID  0x6d68ffffu /* the balanced group */

enum mh_nat { MH_NAT_MASQUERADE = 0, MH_NAT_SNAT, MH_NAT_OFF };

/* "[tcp|udp|icmp] [DST[/LEN]] [port N[-M]]" */
struct mh_pin {
	uint8_t  proto;         /* 0 = any, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_ICMP */
	uint8_t  dst_len;       /* 0..32; 0 with dst 0 = any destination */
	uint16_t port_lo, port_hi; /* 0,0 = any port; needs tcp or udp */
	uint32_t dst;           /* network byte order, masked to dst_len */
};

/* What the user configured for one link.  *_set says the user gave it;
 * otherwise the core allocates it (stable per link name). */
struct mh_config {
	char     name[MH_NAME_MAX + 1];
	int      name_set;
	uint32_t table;         /* 1..0xffffffff except 253,254,255 */
	int      table_set;
	uint32_t mark, mask;    /* mark != 0, (mark & ~mask) == 0 */
	int      mark_set;
	uint32_t priority;      /* MH_PRIO_MIN..MH_PRIO_MAX */
	int      priority_set;
	unsigned weight;        /* 0..256, default 1 */
	enum mh_nat nat;        /* default masquerade */
	int      reply_via_link; /* default 1 */
	int      pin_fallback;  /* default 1: a down link's pins fall through to the next
				 * choice; 0: they are refused while it is down (a kill switch) */
	/* upstream tracking: ICMP echo to these through the link, every
	 * track_interval_ms; offline after track_down failed rounds in a row,
	 * online again after track_up good ones */
	unsigned ntrack;
	uint32_t track[MH_MAX_TARGETS]; /* network byte order */
	unsigned track_interval_ms;     /* default 1000 (200..60000) */
	unsigned track_down, track_up;  /* default 3, 5 (1..100) */
	unsigned npins;
	struct mh_pin pins[MH_MAX_PINS];
};

/* One link as it is up: its configuration plus what its host told us.
 * Addresses are network byte order; 0 = not known. */
struct mh_link {
	struct mh_config cfg;
	char     ifname[IF_NAMESIZE];
	int      ifindex;       /* filled by the core from ifname */
	uint32_t local;         /* our address on the link (required) */
	uint32_t peer;          /* the far end (point-to-point), may be 0 */
	uint32_t gateway;       /* next hop for the link's default; 0 = device route */
	uint8_t  local_plen;    /* the link's network around LOCAL (an OpenVPN subnet),
				 * 1..31; 0 = point to point */
	/* filled by the core: */
	unsigned slot;          /* allocation slot, stable per name */
	int      up;
	int      online;        /* its upstream answers (always, untracked) */
	long long since;        /* time(NULL) when it came up */
	long long health_since; /* time(NULL) of the last online/offline change */
	int      pid;           /* process that registered it */
	int      dirty;         /* changed by this event, to be written back */
};

/* ---- options (common/options.c): one parser serves both plugins ---- */

/* Defaults: weight 1, masquerade, reply_via_link 1, pin_fallback 1, nothing else set. */
void mh_config_init(struct mh_config *c);

/* Apply one option.  KEY is without the "multihome-" prefix: name, table,
 * mark, priority, weight, nat, reply-via-link, pin (repeatable), pin-fallback,
 * track, track-interval, track-down, track-up.  OPTNAME is
 * how the user spelled the option ("multihome-table" or "table"), used in
 * the error.  Returns 0, or -1 with ERR set to a message that names the
 * option and the value. */
int mh_config_set(struct mh_config *c, const char *key, const char *value,
		  const char *optname, char *err, size_t errlen);

/* Parse "[tcp|udp|icmp] [DST[/LEN]] [port N[-M]]". */
int mh_pin_parse(const char *text, struct mh_pin *pin, char *err, size_t errlen);
/* Format a pin back to that syntax; returns BUF. */
char *mh_pin_format(const struct mh_pin *pin, char *buf, size_t len);
/* Does a flow's first packet (PROTO, DST in network order, DPORT in host
 * order, 0 without ports) match the pin, as the firewall's pin rule does? */
int mh_pin_matches(const struct mh_pin *p, uint8_t proto, uint32_t dst, uint16_t dport);

/* Checks that need the whole config (after all options are read). */
int mh_config_check(const struct mh_config *c, char *err, size_t errlen);

/* OpenVPN plugin arguments.  WORDS (as OpenVPN hands them over, after the
 * plugin's path) are joined into KEY=VALUE arguments (a word without '='
 * continues the previous one: OpenVPN splits an unquoted "pin=tcp port 25"
 * at its blanks), each applied with mh_config_set, then mh_config_check.
 * LIST (may be NULL) receives them as NUL-terminated "key=value" strings
 * (LISTLEN bytes at most; *USED bytes, *NLIST strings): the form the root
 * helper is sent, read back by mh_config_from_list.  0, or -1 with ERR
 * naming the argument. */
#define MH_ARG_MAX 2048         /* one KEY=VALUE argument */
int mh_config_from_args(struct mh_config *c, const char *const *words, int nwords, char *list,
			size_t listlen, size_t *used, unsigned *nlist, char *err, size_t errlen);
int mh_config_from_list(struct mh_config *c, const char *list, size_t size, unsigned nlist,
			char *err, size_t errlen);

/* Resolve a table name from /etc/iproute2/rt_tables and rt_tables.d/ (or a
 * number).  ROOT prefixes the path (NULL = "").  Returns 0 / -1. */
int mh_table_lookup(const char *root, const char *text, uint32_t *table);

/* Addresses from the far end are untrusted: refuse 0.0.0.0, 127/8,
 * multicast, 240/4 and broadcast.  WHAT names it in the error. */
int mh_addr_check(uint32_t addr_be, const char *what, char *err, size_t errlen);

/* ---- events (common/core.c) ---- */

/* Register LINK (ifname, local, peer, gateway, cfg filled).  Under the
 * registry lock: prune, allocate, check conflicts, apply the whole desired
 * state (one netlink batch, one commit per firewall table), record.  On any
 * failure the previous state is restored and -1 returned with ERR set. */
int mh_link_up(struct mh_link *link, char *err, size_t errlen);

/* A link whose pins must hold while it is down (pin-fallback no, with pins)
 * is registered, down, as soon as its host starts: from then on its pinned
 * traffic is refused until it is up, and again whenever it goes down (also
 * after SIGKILL).  No-op for other links.  C must name the link.  0 / -1. */
int mh_link_prepare(const struct mh_config *c, char *err, size_t errlen);

/* Upstream tracking found link NAME on IFNAME offline (ONLINE 0) or online
 * again: the event that takes it out of (or puts it back into) the balanced
 * route and its pins; WHY goes into the log line.  0 / -1. */
int mh_link_health(const char *name, const char *ifname, int online, const char *why,
		   char *err, size_t errlen);

/* Forget the down link NAME (its allocation, and the refusal of its pins). */
int mh_link_forget(const char *name, char *err, size_t errlen);

/* Withdraw the link NAME (if IFNAME is non-NULL, only while it is still
 * registered on that interface).  Idempotent: unknown or already-down is
 * success.  Returns 0 / -1 with ERR set. */
int mh_link_down(const char *name, const char *ifname, char *err, size_t errlen);

/* Bring the kernel in line with the registry (prunes links whose interface
 * is gone).  Used by multihomectl and after faults. */
int mh_reconcile(char *err, size_t errlen);

/* Withdraw everything multihome installed and forget every link. */
int mh_flush(char *err, size_t errlen);

/* Forget which firewall backend the last event used: the next event (a
 * reconcile) then empties the one not in use of anything of ours. */
void mh_fw_forget_backend(void);

/* ---- upstream tracking (common/track.c) ----
 * Started once the link is registered (LINK as mh_link_up left it), driven
 * by the host's own loop: call mh_track_tick() again at the latest *NEXT_MS
 * later; it never blocks.  A change online/offline is an event of its own
 * (mh_link_health).  NULL with ERR empty: the link is not tracked. */
struct mh_tracker;
struct mh_tracker *mh_track_start(const struct mh_link *link, char *err, size_t errlen);
void mh_track_tick(struct mh_tracker *t, unsigned *next_ms);
void mh_track_stop(struct mh_tracker *t);

/* ---- upstream tracking's figures (track.c writes them, status reads) ---- */
struct mh_health {
	int       pid;                  /* the tracking host process */
	int       online;
	long long since;                /* realtime seconds of the last change */
	long long rtt_us;               /* the last good round's; <= 0 none yet */
	unsigned  loss_pct;             /* probes lost over the recent rounds */
	unsigned  rounds;               /* rounds done since tracking started */
	unsigned  interval_ms;
	unsigned long long probes, replies;
};
/* RUNDIR/health.NAME of the run directory DFD into H: 0, or -1 (absent,
 * refused or malformed). */
int mh_health_read(int dfd, const char *name, struct mh_health *h);

/* ---- logging: the host plugin routes these to its own log ---- */
enum mh_log_level { MH_LOG_ERR = 0, MH_LOG_WARN, MH_LOG_INFO, MH_LOG_DEBUG };
typedef void (*mh_log_fn)(enum mh_log_level lvl, const char *msg);
void mh_set_logger(mh_log_fn fn);
void mh_log(enum mh_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- registry location ----
 * Default /run/multihome; the environment variable MULTIHOME_RUNDIR
 * overrides it (tests give every namespace its own). */
const char *mh_rundir(void);

/* Whether the environment (MULTIHOME_*, XTABLES_LOCKFILE) may be honoured at
 * all; it is read with secure_getenv() in any case.  The pppd plugin turns
 * it off unless pppd's caller is privileged.  Default: trusted. */
void mh_set_env_trusted(int trusted);

/* Counters of the last event, for the benchmark and the logs. */
struct mh_stats {
	unsigned nl_msgs;       /* netlink messages sent in the batch */
	unsigned fw_commits;    /* firewall table commits */
	long long usec;         /* wall time of the event */
	long long fw_usec;      /* of it, in the firewall backend */
};
const struct mh_stats *mh_last_stats(void);

#endif
