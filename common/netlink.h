/* Netlink plumbing shared by every reader and writer of the core.
 *
 * One socket opener (connected to the kernel, so no other process can send
 * us a reply), one request/dump loop on mnl_cb_run (seq and portid checked;
 * an interrupted dump is retried, never taken as the kernel's whole state),
 * one attribute validator, one extended-ACK decoder, and a batch of
 * requests: every failed one is answered, the last one is ACKed.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_NETLINK_H
#define MULTIHOME_NETLINK_H

#include <stddef.h>
#include <stdint.h>
#include <libmnl/libmnl.h>

#include "mh.h"

struct mh_nl {
	struct mnl_socket *sock;
	uint32_t portid;
	uint32_t seq;
};

/* Open a socket on BUS (NETLINK_ROUTE, NETLINK_NETFILTER): close-on-exec,
 * extended ACKs, capped ACKs, bound, connected to the kernel.  0 / -1. */
int  mh_nl_open(struct mh_nl *nl, int bus);
void mh_nl_close(struct mh_nl *nl);

/* Send REQ (its seq is set here) and run CB on every answer until the dump
 * ends (or the one answer of a plain GET).  RESET (may be NULL) forgets what
 * CB collected when an interrupted dump is started again.  0, or -1 with
 * errno (an NLMSG_ERROR's error, EINTR when the dump kept being
 * interrupted, EBADMSG for a malformed answer). */
int mh_nl_query(struct mh_nl *nl, struct nlmsghdr *req, mnl_cb_t cb, void *data,
		void (*reset)(void *data));

/* A dump of TYPE (RTM_GETADDR ...) with the family header HDR of HLEN
 * bytes, through mh_nl_query. */
int mh_nl_dump(struct mh_nl *nl, uint16_t type, const void *hdr, size_t hlen, mnl_cb_t cb,
	       void *data, void (*reset)(void *data));

/* mnl_nlmsg_ok, with the length compared unsigned: use it to walk anything
 * received. */
int mh_nlmsg_ok(const struct nlmsghdr *h, int len);

/* Validated attributes: TB[type] for every attribute of H after HDRLEN bytes
 * whose type is at most MAX and has a type in POLICY (MNL_TYPE_UNSPEC: not
 * wanted, skipped).  -1 (errno EINVAL) when a wanted one is malformed. */
int mh_nl_attrs(const struct nlmsghdr *h, size_t hdrlen, const enum mnl_attr_data_type *policy,
		unsigned max, const struct nlattr **tb);
int mh_nl_nested(const struct nlattr *nest, const enum mnl_attr_data_type *policy,
		 unsigned max, const struct nlattr **tb);

/* The text of an NLMSG_ERROR's extended ACK (NLMSGERR_ATTR_MSG), or NULL;
 * every length is checked against the message.  H must be an NLMSG_ERROR of
 * at least sizeof(struct nlmsgerr) payload. */
const char *mh_nl_ext_ack(const struct nlmsghdr *h);

/* ---- a batch of requests; every error is answered, the last one ACKed ---- */

struct mh_nl_msg_info {
	int ok_errno;           /* an error that is fine (a delete of what is gone) */
	int exists_means;       /* EEXIST of this message has a message of its own */
	const char *what;       /* what the message does, for the error (a literal) */
};

struct mh_nl_batch {
	struct mh_nl *nl;
	char *buf;
	size_t used, cap, last; /* LAST: where the last message starts */
	unsigned n, sent;       /* messages in buf / sent in all */
	uint32_t first_seq;
	struct mh_nl_msg_info *info;
	unsigned info_cap;
	int err;                /* first error */
	char errmsg[MH_ERR_MAX];
	const char *exists_msg; /* the message for exists_means */
};

/* NL NULL: a dry batch, built and never sent (tests, the fuzzer). */
void mh_nl_batch_init(struct mh_nl_batch *b, struct mh_nl *nl);
void mh_nl_batch_free(struct mh_nl_batch *b);
/* Start a message (NLM_F_REQUEST | FLAGS); NULL on out of memory. */
struct nlmsghdr *mh_nl_batch_msg(struct mh_nl_batch *b, uint16_t type, uint16_t flags,
				 int ok_errno, const char *what);
void mh_nl_batch_done(struct mh_nl_batch *b, struct nlmsghdr *h);
/* Send what is queued (its last message asking for an ACK) and read the
 * answers up to that ACK; the first error goes to errmsg.  0 / -1. */
int mh_nl_batch_flush(struct mh_nl_batch *b);

#endif
