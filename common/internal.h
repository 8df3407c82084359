/* Core internals shared between common/; not part of any API.
 * (tools/ use status.h; the plugins mh.h.)
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_INTERNAL_H
#define MULTIHOME_INTERNAL_H

#include <sys/types.h>

#include "mh.h"
#include "netlink.h"
#include "plan.h"

/* ---- the registry (registry.c) ----
 * Every link ever registered under this rundir (up or down; a down link
 * keeps its allocation so it is stable per name). */
struct mh_registry {
	struct mh_link *links;  /* room for n + 1: an event adds at most one entry */
	unsigned n, cap;
	int lockfd;
	int dirfd;              /* the run directory, opened once per event */
	uint64_t gen;           /* bumped in the lock file by every change */
	int synced;             /* set by the caller: links[] is exactly what is on disk */
};

int  mh_reg_open(struct mh_registry *r, char *err, size_t len);  /* lock + load */
/* One registry at a time per process; its directory serves the calls below. */
void mh_reg_close(struct mh_registry *r);                        /* unlock + free */
/* A process caches the registry between events, valid while the generation
 * in the lock file is unchanged; only writers that hold the lock bump it. */
void mh_reg_forget_cache(void);
/* Mark an event under way; returns 1 when the kernel cannot be trusted to
 * hold the registry's state (the last event did not finish, or none ever
 * did here).  mh_reg_end() marks it finished. */
int  mh_reg_begin(struct mh_registry *r);
void mh_reg_end(struct mh_registry *r);
int  mh_reg_store(const struct mh_link *l, char *err, size_t len);
int  mh_reg_forget(const char *name, char *err, size_t len);
int  mh_reg_parse(const char *text, struct mh_link *l, char *err, size_t len);
int  mh_reg_format(const struct mh_link *l, char *buf, size_t len);
struct mh_link *mh_reg_find(struct mh_registry *r, const char *name);

/* The run directory, opened (O_DIRECTORY|O_NOFOLLOW; CREATE: made 0700 first)
 * and checked: a directory of ours, not writable by others.  Returns the
 * descriptor, or -1 with ERR set. */
int  mh_rundir_open(int create, char *err, size_t len);
/* FILE of the run directory DFD (-1: the open registry's), read whole into
 * BUF and NUL-terminated, if it is a regular file of ours shorter than SIZE
 * (opened without following a symlink or blocking on a FIFO).  Returns its
 * length, or -1: absent (ERR empty) or refused (ERR says why). */
ssize_t mh_rundir_read(int dfd, const char *file, char *buf, size_t size, char *err, size_t len);
/* Replace FILE of the run directory DFD (-1: the open registry's) by TEXT,
 * written to TMP (created 0600, never through a symlink) and renamed. */
int  mh_rundir_write(int dfd, const char *file, const char *tmp, const char *text,
		     char *err, size_t len);

/* ---- routing (rtnl.c) ---- */

/* Everything of ours (MH_RT_PROTO) the kernel holds.  NO_NEXTHOPS: do not
 * use nexthop objects (rt->nexthops says what the kernel can do). */
int  mh_rt_read(struct mh_nl *nl, int no_nexthops, struct mh_routing *rt, char *err, size_t len);
/* WANT and HAVE are sorted in place. */
int  mh_rt_diff(struct mh_routing *want, struct mh_routing *have, const struct mh_rt_diff_args *a,
		struct mh_rt_ops *ops);
/* One rule, route or nexthop message of ours (an answer, or with REQUESTS
 * a request, delete included) added to RT: 0 / -1 malformed or no memory. */
int  mh_rt_parse(const struct nlmsghdr *h, int requests, struct mh_routing *rt);
void mh_rt_build(struct mh_nl_batch *b, const struct mh_routing *want, const struct mh_rt_ops *ops,
		 int by_table);
int  mh_rt_send(struct mh_nl *nl, const struct mh_routing *want, const struct mh_rt_ops *ops,
		int by_table, unsigned *sent, char *err, size_t len);
void mh_rt_ops_free(struct mh_rt_ops *ops);
/* An operation in words ("rule 'fwmark 0x1/0x1 lookup 101' (priority 101)"). */
void mh_rt_describe(const struct mh_rt_op *o, const struct mh_routing *want, char *buf, size_t len);

/* Make the kernel's routing match AFTER: unless FULL, only the difference
 * from BEFORE (what the kernel holds if the last event finished) is sent;
 * if that fails, or with FULL, the kernel is read and diffed.  TOUCHED: the
 * plan index of the link coming up (its route and nexthop are re-sent), or
 * -1.  Fills stats->nl_msgs. */
int mh_routing_apply(struct mh_plan *before, struct mh_plan *after, int touched, int full,
		     char *err, size_t len);
/* Does one of ADDRS (0 = absent) lie inside a prefix configured on an
 * interface other than IFINDEX (with PLEN, ADDRS[0]/PLEN overlap one)?
 * Returns its index + 1, or 0; WHY says which prefix.  VIA_MARK, VIA_TABLE:
 * an up link's mark and table (or 0), for the lookups to end at its rule. */
int mh_nl_addr_foreign_prefix(const uint32_t *addrs, unsigned n, uint8_t plen, int ifindex,
			      uint32_t via_mark, uint32_t via_table, char *why, size_t len);
/* Nexthop objects in this kernel (and wanted): 1 / 0 (probed once). */
int mh_nexthops_supported(void);
/* The slots whose nexthop is a member of the kernel's balanced group now
 * (SLOTS[s] = 1, s < MAX); 0, or -1 when it cannot tell (no nexthop
 * objects, an error).  The kernel deletes a nexthop whose device goes: a
 * member is a link whose interface is still there. */
int mh_rt_group_slots(unsigned char *slots, unsigned max);
/* if_nametoindex() without a socket of its own: 0 if there is none. */
int mh_ifindex(const char *ifname);

/* ---- the firewall (fw.c, fw_iptc.c, fw_nft.c) ---- */

enum mh_fw_backend mh_fw_backend(void);
const char *mh_fw_backend_name(enum mh_fw_backend b);
/* Make the chosen backend hold AFTER's firewall (the difference from
 * BEFORE's unless FULL or the kernel disagrees); empty the other backend of
 * anything of ours when the choice changed. */
int mh_fw_apply(struct mh_plan *before, struct mh_plan *after, int full, char *err, size_t len);

/* iptables (libiptc): a table is read, diffed and rebuilt only when its
 * part of the plan changed from BEFORE (or FULL). */
int mh_fw_iptc_apply(struct mh_plan *want, struct mh_plan *before, int full, char *err, size_t len);
/* nftables (libnftnl): table ip multihome, one batch per event. */
int mh_fw_nft_apply(struct mh_plan *want, struct mh_plan *before, int full, char *err, size_t len);
/* Status: read the backend's state into HAVE and diff the plan against it.
 * iptables: HAVE's rules point into libiptc handles kept until _done(). */
int mh_fw_iptc_status(struct mh_plan *want, struct mh_fw_ops *ops, struct mh_firewall *have,
		      char *err, size_t len);
void mh_fw_iptc_status_done(void);
/* The diff alone (pure: tests, the fuzzer); FULL: HAVE was read from the kernel. */
int mh_fw_nft_diff(struct mh_plan *want, struct mh_firewall *have, int full, struct mh_fw_ops *ops);
/* A rule's expressions as compared (the plan's rendered, or the kernel's). */
const char *mh_fw_nft_rule_text(struct mh_plan *p, struct mh_fw_rule *r);
/* An element dump answer (NFT_MSG_NEWSETELEM) of set SET into F. */
int mh_fw_nft_parse_elems(const struct nlmsghdr *h, unsigned set, struct mh_firewall *f);
/* The floor of `make bench` (tests/bench/floor.c): the firewall half of an
 * event without its checks.  nft: the incremental batch an event from
 * BEFORE to WANT sends, its bytes in *BUF (malloc'ed); -1 with errno ENOMEM,
 * or EAGAIN when that event would have to read chain egress first.
 * iptables: the tables (bit 0 mangle, bit 1 nat) whose part of the plan
 * changed, and each of them initialised, rebuilt and committed (no lock,
 * no read of our chains, no diff). */
int mh_fw_nft_delta_batch(struct mh_plan *want, struct mh_plan *before, char **buf, size_t *len);
unsigned mh_fw_iptc_changed_tables(const struct mh_plan *before, const struct mh_plan *want);
int mh_fw_iptc_commit_tables(const struct mh_plan *want, unsigned tables, char *err, size_t len);
int mh_fw_nft_status(struct mh_plan *want, struct mh_fw_ops *ops, struct mh_firewall *have,
		     char *err, size_t len);
void mh_fw_ops_free(struct mh_fw_ops *ops);
/* A new operation at the end of OPS (NULL: out of memory). */
struct mh_fw_op *mh_fw_op_push(struct mh_fw_ops *ops, uint8_t action, uint8_t kind, int owner);

/* The environment, as far as it may be trusted (secure_getenv; nothing when
 * the host process said its caller is not privileged). */
const char *mh_getenv(const char *name);

/* conntrack (common/ct.c): after an event, outgoing flows that left by a
 * link the event withdrew are deleted, and pinned flows of the link that
 * came up (HOME) that left by another link are brought home. */
struct mh_ct_job {
	const struct mh_link *home;     /* the link that came up (&home_copy), or NULL */
	struct mh_link home_copy;       /* so the job can be sent whole to the watcher */
	uint32_t ours;                  /* multihome's mark bits (the up links' masks) */
	uint32_t up[MH_MAX_LINKS];      /* local addresses of the up links, HOME's too */
	unsigned nup;
	uint32_t gone[MH_MAX_LINKS];    /* local addresses of the links withdrawn */
	char gone_name[MH_MAX_LINKS][MH_NAME_MAX + 1];
	unsigned ngone;
};
int  mh_ct_wanted(const struct mh_ct_job *job);
void mh_ct_run(const struct mh_ct_job *job);
/* Hand JOB to this process's watcher (common/watch.c), if it has one that
 * takes it at once: 0, else -1 (then the caller runs it itself). */
int  mh_watch_ct(const struct mh_ct_job *job);

/* An event that only prunes links whose interface is gone (common/core.c). */
int mh_prune(char *err, size_t len);

/* Run FN(ARG) in a grandchild detached from this process (common/watch.c):
 * default signals, a session of its own, root's ids, every descriptor but
 * KEEP replaced by /dev/null, logging to syslog.  -1 if fork failed. */
int mh_run_detached(void (*fn)(void *arg), void *arg, const int *keep, int nkeep);

/* ---- time and stats (log.c) ---- */
long long mh_now_usec(void);
struct mh_stats *mh_stats_mut(void);

#endif
