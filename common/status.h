/* What multihome has in the kernel against what it should have: the API of
 * multihomectl (and of anything else that wants to look).
 *
 * mh_status() builds the plan a `reapply` would install (the registry with
 * links whose interface is gone taken as down, as reapply prunes them),
 * reads the kernel with the same readers the writer uses, and diffs with the
 * same diff: its operations are exactly what a `reapply` would send.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_STATUS_H
#define MULTIHOME_STATUS_H

#include "plan.h"

/* One operation a reapply would send, in words. */
struct mh_status_op {
	int  owner;             /* the link it belongs to (index into mh_status.links), or -1 */
	char action;            /* '+' add, '~' change, '-' delete */
	const char *code;       /* "rules-missing", "stale-state", "hooks-missing" */
	const char *area;       /* "routing" or "firewall" */
	char what[200];
};

struct mh_status_if {
	int index;
	char name[IF_NAMESIZE];
	unsigned flags;
	int has_stats;          /* IFLA_STATS64 was there */
	uint64_t tx_bytes, tx_packets, rx_bytes, rx_packets; /* since it was created */
};

/* The traffic of one registry link (mh_status_traffic()).  Unknown counts
 * are -1: flows of a link that is not up, or when conntrack could not be
 * read (ct_err says why). */
struct mh_link_traffic {
	long long flows;        /* conntrack entries carrying the link's connmark */
	long long balanced;     /* of them: outgoing (not to an address of this host)
				 * and matching no pin of an up link */
	double share_configured; /* its weight's part of the balanced route, 0..1 */
	double share_balanced;  /* its part of the up links' balanced flows, 0..1; -1: none */
	const struct mh_status_if *counters; /* its interface (up, present), or NULL */
	int has_health;         /* tracked, and its host's figures were read: */
	struct mh_health health;
};

struct mh_status {
	struct mh_link *links;          /* the registry, sorted by name */
	unsigned nlinks;
	unsigned char *gone;            /* per link: up, but its interface is gone */
	struct mh_plan plan;            /* what a reapply would install */
	struct mh_routing kernel;       /* routing objects of ours the kernel holds */
	struct mh_firewall fw;          /* the backend in use, as read */
	enum mh_fw_backend backend;
	char last_backend[16];          /* of the last event ("" unknown) */
	int other_backend_holds;        /* the backend not in use holds something of ours */
	struct mh_status_op *ops;
	unsigned nops;
	struct mh_status_if *ifs;
	unsigned nifs;
	char fw_err[MH_ERR_MAX];        /* the firewall could not be read */
	/* filled by mh_status_traffic() only: */
	struct mh_link_traffic *traffic; /* per registry link */
	long long balanced_total;       /* the up links' balanced flows; -1: none counted */
	char ct_err[MH_ERR_MAX];        /* conntrack could not be read */
};

/* 0, or -1 with ERR (the registry or rtnetlink could not be read). */
int  mh_status(struct mh_status *st, char *err, size_t len);
void mh_status_free(struct mh_status *st);

/* After mh_status(): the traffic of every link (st->traffic): its flows and
 * balanced flows from conntrack (one dump per up link, filtered by the
 * link's mark in the kernel), its configured and its real share, its
 * interface's counters.  0, or -1 out of memory; a conntrack that cannot be
 * read leaves the counts unknown and says why in ct_err. */
int  mh_status_traffic(struct mh_status *st);

/* The registry link a kernel object of the balanced route belongs to:
 * a group member's nexthop id, or a multipath hop's interface. */
const struct mh_link *mh_status_member_link(const struct mh_status *st, uint32_t nh_id, int oif);

#endif
