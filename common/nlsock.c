/* One request/answer loop for every netlink reader of the project
 * (rtnetlink dumps, nftables gets and dumps).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <libmnl/libmnl.h>

#include "internal.h"

int mh_nl_request(struct mnl_socket *sock, const struct nlmsghdr *req, mh_nl_cb cb, void *data)
{
	static char buf[131072];
	uint32_t seq = req->nlmsg_seq;
	ssize_t r;

	if (mnl_socket_sendto(sock, req, req->nlmsg_len) < 0)
		return -1;
	for (;;) {
		const struct nlmsghdr *h = (const struct nlmsghdr *)buf;
		int left;

		r = mnl_socket_recvfrom(sock, buf, sizeof buf);
		if (r < 0)
			return -1;
		left = (int)r;
		for (; mnl_nlmsg_ok(h, left); h = mnl_nlmsg_next(h, &left)) {
			if (h->nlmsg_seq != seq)
				continue;
			if (h->nlmsg_type == NLMSG_DONE)
				return 0;
			if (h->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = mnl_nlmsg_get_payload(h);
				if (!e->error)
					return 0;
				errno = -e->error;
				return -1;
			}
			if (cb(h, data) < 0)
				return -1;
			if (!(h->nlmsg_flags & NLM_F_MULTI))
				return 0;       /* the one answer of a plain GET */
		}
	}
}
