/* Core internals shared between common/; not part of the plugin API.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_INTERNAL_H
#define MULTIHOME_INTERNAL_H

#include "mh.h"

/* The registry: every link ever registered under this rundir (up or down;
 * a down link keeps its allocation so it is stable per name). */
struct mh_registry {
	struct mh_link *links;  /* MH_MAX_LINKS entries */
	unsigned n;
	int lockfd;
	uint64_t gen;           /* bumped in the lock file by every change */
	int synced;             /* set by the caller: links[] is exactly what is on disk */
};

int  mh_reg_open(struct mh_registry *r, char *err, size_t len);  /* lock + load */
void mh_reg_close(struct mh_registry *r);                        /* unlock + free */
/* A process caches the registry between events, valid while the generation
 * in the lock file is unchanged; only writers that hold the lock bump it.
 * Whoever edits entries behind the core's back must drop the cache. */
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

/* The desired state is the list of up links, in priority order. */
unsigned mh_up_links(const struct mh_registry *r, const struct mh_link **out);

/* Mask of all the bits multihome's links use (for restore and the stop test). */
uint32_t mh_mark_union(const struct mh_link *const *links, unsigned n);

/* rtnetlink: make every object tagged MH_RT_PROTO match the desired state
 * (LINKS, the up links after this event) in one batch.  Unless FULL, only
 * the difference from BEFORE (the up links when the event began) is sent,
 * without reading the kernel; if that fails, or with FULL, the kernel's
 * objects are dumped and the whole state diffed.  TOUCHED (or NULL): the
 * link coming up, whose route and nexthop are sent even if unchanged.
 * Fills stats->nl_msgs. */
int mh_nl_apply(const struct mh_link *const *before, unsigned nb,
		const struct mh_link *const *links, unsigned n, const struct mh_link *touched,
		int full, char *err, size_t len);
/* Does one of ADDRS (0 = absent) lie inside a prefix configured on an
 * interface other than IFINDEX?  Returns its index + 1, or 0. */
int mh_nl_addr_foreign_prefix(const uint32_t *addrs, unsigned n, int ifindex, char *why, size_t len);

/* The firewall: the backend chosen by mh_fw_backend() gets the desired
 * state; the other one is emptied of anything of ours once, when the choice
 * changes (remembered in the run directory). */
enum mh_fw_backend { MH_FW_IPTABLES = 0, MH_FW_NFT };
enum mh_fw_backend mh_fw_backend(void);
const char *mh_fw_backend_name(enum mh_fw_backend b);
int mh_fw_apply(const struct mh_link *const *links, unsigned n, char *err, size_t len);
/* libiptc (legacy x_tables): rebuild multihome's chains, one commit per table */
int mh_fw_iptc_apply(const struct mh_link *const *links, unsigned n, char *err, size_t len);
/* nftables (libnftnl): table ip multihome, changed incrementally in one batch */
int mh_fw_nft_apply(const struct mh_link *const *links, unsigned n, char *err, size_t len);

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

/* Send REQ (its nlmsg_seq set) and run CB on each answer until the dump ends,
 * an ACK, an error, or the single answer of a plain GET: 0, or -1 with errno. */
struct mnl_socket;
struct nlmsghdr;
typedef int (*mh_nl_cb)(const struct nlmsghdr *h, void *data);
int mh_nl_request(struct mnl_socket *sock, const struct nlmsghdr *req, mh_nl_cb cb, void *data);

/* time and stats */
long long mh_now_usec(void);
struct mh_stats *mh_stats_mut(void);

#endif
