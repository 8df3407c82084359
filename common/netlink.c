/* Netlink plumbing: see netlink.h.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <linux/netlink.h>

#include "netlink.h"

#ifndef NETLINK_GET_STRICT_CHK
#define NETLINK_GET_STRICT_CHK 12
#endif

#define DUMP_TRIES   8          /* an interrupted dump is started again this often */
#define BATCH_CHUNK  32768      /* bytes of requests per sendto */
#define RECV_BUF     65536

int mh_nl_open(struct mh_nl *nl, int bus)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK, .nl_pid = 0 };
	int one = 1, fd;

	nl->sock = mnl_socket_open2(bus, SOCK_CLOEXEC);
	if (!nl->sock)
		return -1;
	fd = mnl_socket_get_fd(nl->sock);
	mnl_socket_setsockopt(nl->sock, NETLINK_EXT_ACK, &one, sizeof one);
	mnl_socket_setsockopt(nl->sock, NETLINK_CAP_ACK, &one, sizeof one);
	if (bus == NETLINK_ROUTE)
		mnl_socket_setsockopt(nl->sock, NETLINK_GET_STRICT_CHK, &one, sizeof one);
	/* connected to the kernel: unicasts from any other sender are refused */
	if (mnl_socket_bind(nl->sock, 0, MNL_SOCKET_AUTOPID) < 0 ||
	    connect(fd, (struct sockaddr *)&kernel, sizeof kernel) < 0) {
		int e = errno;
		mnl_socket_close(nl->sock);
		nl->sock = NULL;
		errno = e;
		return -1;
	}
	nl->portid = mnl_socket_get_portid(nl->sock);
	if (!nl->seq)
		nl->seq = (uint32_t)time(NULL) << 8;
	return 0;
}

void mh_nl_close(struct mh_nl *nl)
{
	if (nl->sock)
		mnl_socket_close(nl->sock);
	nl->sock = NULL;
}

int mh_nlmsg_ok(const struct nlmsghdr *h, int len)
{
	/* libmnl 1.0.4 compares the length as an int: 0xfffffff0 passes */
	return len >= (int)sizeof(struct nlmsghdr) && h->nlmsg_len >= sizeof(struct nlmsghdr) &&
	       h->nlmsg_len <= (unsigned)len;
}

/* Every message of BUF whole and in bounds (before libmnl walks it). */
static int buffer_ok(const void *buf, size_t size)
{
	const struct nlmsghdr *h = buf;
	int len = (int)size;

	while (len > 0) {
		if (!mh_nlmsg_ok(h, len))
			return 0;
		len -= (int)MNL_ALIGN(h->nlmsg_len);
		h = (const struct nlmsghdr *)((const char *)h + MNL_ALIGN(h->nlmsg_len));
	}
	return 1;
}

/* One attempt: -1 with errno EINTR when the dump was interrupted. */
static int query_once(struct mh_nl *nl, struct nlmsghdr *req, mnl_cb_t cb, void *data)
{
	static char buf[RECV_BUF];
	int rc;

	req->nlmsg_seq = ++nl->seq;
	if (mnl_socket_sendto(nl->sock, req, req->nlmsg_len) < 0)
		return -1;
	do {
		ssize_t r = mnl_socket_recvfrom(nl->sock, buf, sizeof buf);
		if (r < 0)
			return -1;
		if (!buffer_ok(buf, (size_t)r)) {
			errno = EBADMSG;
			return -1;
		}
		rc = mnl_cb_run(buf, (size_t)r, req->nlmsg_seq, nl->portid, cb, data);
	} while (rc == MNL_CB_OK && (req->nlmsg_flags & NLM_F_DUMP));
	return rc < 0 ? -1 : 0;
}

int mh_nl_dump(struct mh_nl *nl, uint16_t type, const void *hdr, size_t hlen, mnl_cb_t cb,
	       void *data, void (*reset)(void *data))
{
	char buf[256];
	struct nlmsghdr *h = mnl_nlmsg_put_header(buf);

	if (hlen > sizeof buf - MNL_NLMSG_HDRLEN) {
		errno = EINVAL;
		return -1;
	}
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	memcpy(mnl_nlmsg_put_extra_header(h, hlen), hdr, hlen);
	return mh_nl_query(nl, h, cb, data, reset);
}

/* Answers of an interrupted dump may still be queued: drop them. */
static void drain(struct mh_nl *nl)
{
	char junk[4096];

	while (recv(mnl_socket_get_fd(nl->sock), junk, sizeof junk, MSG_DONTWAIT) > 0)
		;
}

int mh_nl_query(struct mh_nl *nl, struct nlmsghdr *req, mnl_cb_t cb, void *data,
		void (*reset)(void *data))
{
	int tries;

	for (tries = 0; tries < DUMP_TRIES; tries++) {
		if (query_once(nl, req, cb, data) == 0)
			return 0;
		if (errno != EINTR)
			return -1;
		drain(nl);
		if (reset)
			reset(data);
	}
	errno = EINTR;
	return -1;
}

struct attr_walk {
	const enum mnl_attr_data_type *policy;
	unsigned max;
	const struct nlattr **tb;
};

static int attr_cb(const struct nlattr *a, void *data)
{
	const struct attr_walk *w = data;
	uint16_t type = mnl_attr_get_type(a);

	if (type > w->max || w->policy[type] == MNL_TYPE_UNSPEC)
		return MNL_CB_OK;
	if (mnl_attr_validate(a, w->policy[type]) < 0)
		return MNL_CB_ERROR;
	w->tb[type] = a;
	return MNL_CB_OK;
}

int mh_nl_attrs(const struct nlmsghdr *h, size_t hdrlen, const enum mnl_attr_data_type *policy,
		unsigned max, const struct nlattr **tb)
{
	struct attr_walk w = { policy, max, tb };

	memset(tb, 0, (max + 1) * sizeof *tb);
	if (h->nlmsg_len < mnl_nlmsg_size(hdrlen) ||
	    mnl_attr_parse(h, (unsigned)hdrlen, attr_cb, &w) < 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

int mh_nl_nested(const struct nlattr *nest, const enum mnl_attr_data_type *policy,
		 unsigned max, const struct nlattr **tb)
{
	struct attr_walk w = { policy, max, tb };

	memset(tb, 0, (max + 1) * sizeof *tb);
	if (mnl_attr_parse_nested(nest, attr_cb, &w) < 0) {
		errno = EINVAL;
		return -1;
	}
	return 0;
}

const char *mh_nl_ext_ack(const struct nlmsghdr *h)
{
	const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
	size_t payload = mnl_nlmsg_get_payload_len(h), off = sizeof *e;
	const struct nlattr *a;
	const char *msg = NULL;
	int left;

	if (payload < sizeof *e || !(h->nlmsg_flags & NLM_F_ACK_TLVS))
		return NULL;
	if (!(h->nlmsg_flags & NLM_F_CAPPED)) {
		/* the request is echoed: its length comes from the sender's header */
		size_t inner = e->msg.nlmsg_len;

		if (inner < sizeof(struct nlmsghdr) || inner > payload)
			return NULL;
		off += ((inner + 3) & ~(size_t)3) - sizeof(struct nlmsghdr);
	}
	if (off >= payload)
		return NULL;
	left = (int)(payload - off);
	a = (const struct nlattr *)((const char *)e + off);
	while (mnl_attr_ok(a, left)) {
		if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG &&
		    mnl_attr_validate(a, MNL_TYPE_NUL_STRING) == 0)
			msg = mnl_attr_get_str(a);
		left -= (int)MNL_ALIGN(a->nla_len);
		a = mnl_attr_next(a);
	}
	return msg;
}

/* ---- batches ---- */

void mh_nl_batch_init(struct mh_nl_batch *b, struct mh_nl *nl)
{
	memset(b, 0, sizeof *b);
	b->nl = nl;
}

void mh_nl_batch_free(struct mh_nl_batch *b)
{
	free(b->buf);
	free(b->info);
	b->buf = NULL;
	b->info = NULL;
}

static int batch_room(struct mh_nl_batch *b)
{
	if (!b->buf || b->cap - b->used < 8192) {
		size_t cap = b->cap ? 2 * b->cap : 16384;
		char *p = realloc(b->buf, cap);
		if (!p)
			return -1;
		/* zeroed: libmnl leaves an attribute's padding as it finds it,
		 * and every byte sent is to be ours (one event, one batch) */
		memset(p + b->cap, 0, cap - b->cap);
		b->buf = p;
		b->cap = cap;
	}
	if (b->n >= b->info_cap) {
		unsigned cap = b->info_cap ? 2 * b->info_cap : 64;
		struct mh_nl_msg_info *i = realloc(b->info, cap * sizeof *i);
		if (!i)
			return -1;
		b->info = i;
		b->info_cap = cap;
	}
	return 0;
}

struct nlmsghdr *mh_nl_batch_msg(struct mh_nl_batch *b, uint16_t type, uint16_t flags,
				 int ok_errno, const char *what)
{
	struct nlmsghdr *h;

	if (b->nl && b->used > BATCH_CHUNK - 4096)
		mh_nl_batch_flush(b);   /* no socket (a dry run): the batch just grows */
	if (batch_room(b) < 0) {
		if (!b->err) {
			b->err = ENOMEM;
			snprintf(b->errmsg, sizeof b->errmsg, "out of memory");
		}
		return NULL;
	}
	h = mnl_nlmsg_put_header(b->buf + b->used);
	h->nlmsg_type = type;
	h->nlmsg_flags = NLM_F_REQUEST | flags;       /* NLM_F_ACK: the last one, at flush */
	b->last = b->used;
	h->nlmsg_seq = b->nl ? ++b->nl->seq : b->n + 1;
	if (!b->n)
		b->first_seq = h->nlmsg_seq;
	b->info[b->n].ok_errno = ok_errno;
	b->info[b->n].exists_means = 0;
	b->info[b->n].what = what;
	return h;
}

void mh_nl_batch_done(struct mh_nl_batch *b, struct nlmsghdr *h)
{
	b->used += NLMSG_ALIGN(h->nlmsg_len);
	b->n++;
}

static void batch_error(struct mh_nl_batch *b, const char *what, int error, const char *ext)
{
	if (b->err)
		return;
	b->err = error;
	snprintf(b->errmsg, sizeof b->errmsg, "%s: %s%s%s%s", what, strerror(error),
		 ext ? " (" : "", ext ? ext : "", ext ? ")" : "");
}

/* One ACK: 1 if it was one of ours. */
static int batch_ack(struct mh_nl_batch *b, const struct nlmsghdr *h)
{
	const struct nlmsgerr *e;
	unsigned idx = h->nlmsg_seq - b->first_seq;
	const struct mh_nl_msg_info *in;
	int error;

	if (h->nlmsg_type != NLMSG_ERROR || idx >= b->n || h->nlmsg_pid != b->nl->portid ||
	    mnl_nlmsg_get_payload_len(h) < sizeof *e)
		return 0;
	e = mnl_nlmsg_get_payload(h);
	in = &b->info[idx];
	error = -e->error;
	if (error == 0 || error == in->ok_errno)
		return 1;
	if (error == EEXIST && in->exists_means && b->exists_msg)
		batch_error(b, b->exists_msg, error, mh_nl_ext_ack(h));
	else
		batch_error(b, in->what, error, mh_nl_ext_ack(h));
	return 1;
}

/* Only the last message asks for an ACK: the kernel answers every failed
 * one anyway, in order, so when the last ACK is read every message before it
 * is known to have succeeded or to have said why not. */
int mh_nl_batch_flush(struct mh_nl_batch *b)
{
	static char rbuf[RECV_BUF];
	struct nlmsghdr *last;
	int done = 0;

	if (!b->n)
		return b->err ? -1 : 0;
	last = (struct nlmsghdr *)(b->buf + b->last);
	last->nlmsg_flags |= NLM_F_ACK;
	if (mnl_socket_sendto(b->nl->sock, b->buf, b->used) < 0) {
		batch_error(b, "netlink send", errno, NULL);
		goto out;
	}
	while (!done) {
		ssize_t r = mnl_socket_recvfrom(b->nl->sock, rbuf, sizeof rbuf);
		const struct nlmsghdr *h = (const struct nlmsghdr *)rbuf;
		int len = (int)r;

		if (r < 0) {
			batch_error(b, "netlink receive", errno, NULL);
			break;
		}
		for (; mh_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len))
			if (batch_ack(b, h) && h->nlmsg_seq == last->nlmsg_seq)
				done = 1;
	}
out:
	memset(b->buf, 0, b->used);     /* clean for the next chunk */
	b->sent += b->n;
	b->used = 0;
	b->n = 0;
	return b->err ? -1 : 0;
}
