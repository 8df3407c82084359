/* What the traffic of a link is, for multihomectl status and metrics: the
 * flows conntrack tracks with the link's connmark, counted with the kernel
 * filtering its dump by that mark, and of them the outgoing, not pinned
 * ones (the flows the balanced default route placed); the host's own
 * addresses, against which "outgoing" is measured.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_COUNTERS_H
#define MULTIHOME_COUNTERS_H

#include <stdint.h>

#include "netlink.h"

/* How the entries of one link are told apart. */
struct mh_ct_class {
	uint32_t mark, mask;            /* the link's: (ct mark & mask) == mark */
	const uint32_t *locals;         /* the host's IPv4 addresses (network order) */
	unsigned nlocals;
	const struct mh_pin *pins;      /* the pins of every up link */
	unsigned npins;
	uint32_t probe_src;             /* the link's address: its tracking probes ... */
	const uint32_t *probe_dst;      /* ... to these targets are not counted */
	unsigned nprobe_dst;
};

struct mh_ct_tally {
	unsigned long long flows;       /* entries carrying the link's mark */
	unsigned long long balanced;    /* of them: outgoing and matching no pin */
};

/* One answer of a conntrack dump counted into T when it carries C's mark
 * (pure: unit tests and the fuzzer).  0, or -1 (errno EINVAL) malformed. */
int mh_ct_tally_msg(const struct nlmsghdr *h, const struct mh_ct_class *c, struct mh_ct_tally *t);

/* Dump conntrack (IPv4) over NL (NETLINK_NETFILTER) with the kernel keeping
 * only the entries whose mark matches C's (CTA_MARK, CTA_MARK_MASK), and
 * tally them.  0, or -1 with errno. */
int mh_ct_tally(struct mh_nl *nl, const struct mh_ct_class *c, struct mh_ct_tally *t);

/* The host's IPv4 addresses over NL (NETLINK_ROUTE): *ADDRS is malloc'd
 * (free it), *N of them.  0, or -1 with errno. */
int mh_host_addrs(struct mh_nl *nl, uint32_t **addrs, unsigned *n);

#endif
