/* mh-unit: the core's netlink sockets take answers from the kernel only
 * (issue 10, finding 3).  Any local process can send a netlink unicast to any
 * port of its namespace; a socket connect()ed to the kernel (nl_pid 0) makes
 * the kernel refuse every other sender (ECONNREFUSED), so a forged reply
 * (here an NLMSG_ERROR with the socket's own portid and sequence number, and
 * the nlmsg_len of 0xfffffff0 that once made libmnl read 4 GiB) never
 * arrives.  A bound socket that is not connected is the control: the same
 * forgery reaches it, so the refusal is the connect's doing.
 * Sockets only: nothing is sent to the kernel.  Sending a unicast to another
 * socket takes CAP_NET_ADMIN: without it, these checks are skipped.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/netlink.h>

#include "netlink.h"
#include "unit.h"

/* A forged answer to a request of PORTID with SEQ, sent from a socket of
 * our own.  0 when the kernel took it, else errno. */
static int forge(int bus, uint32_t portid, uint32_t seq)
{
	struct {
		struct nlmsghdr h;
		struct nlmsgerr e;
	} msg;
	struct sockaddr_nl to = { .nl_family = AF_NETLINK, .nl_pid = portid };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, bus), rc = 0;

	if (fd < 0)
		return errno;
	memset(&msg, 0, sizeof msg);
	msg.h.nlmsg_len = sizeof msg;
	msg.h.nlmsg_type = NLMSG_ERROR;
	msg.h.nlmsg_seq = seq;
	msg.h.nlmsg_pid = portid;
	msg.e.error = 0;
	msg.e.msg.nlmsg_len = 0xfffffff0u;      /* the echoed request: the crash of finding 3 */
	msg.e.msg.nlmsg_seq = seq;
	msg.e.msg.nlmsg_pid = portid;
	if (sendto(fd, &msg, sizeof msg, 0, (struct sockaddr *)&to, sizeof to) < 0)
		rc = errno;
	close(fd);
	return rc;
}

/* Bytes waiting on FD (0: none), without blocking. */
static ssize_t waiting(int fd)
{
	char buf[256];
	ssize_t n = recv(fd, buf, sizeof buf, MSG_DONTWAIT);

	return n < 0 ? 0 : n;
}

static void one_bus(int bus, const char *what)
{
	struct mh_nl nl = { 0 };
	struct sockaddr_nl me = { .nl_family = AF_NETLINK };
	socklen_t len = sizeof me;
	int ctl, rc;

	/* a sender needs CAP_NET_ADMIN (as the compromised OpenVPN of the
	 * finding has): without it the kernel refuses every forgery alike */
	int probe = forge(bus, 0x7fffffff, 1);  /* a port nobody holds: ECONNREFUSED */

	if (probe != ECONNREFUSED) {
		char why[160];

		snprintf(why, sizeof why, "a forgery cannot be sent here (%s)%s", strerror(probe),
			 probe == EPERM ? ": it takes CAP_NET_ADMIN; make check runs this as root" : "");
		report_skip(why, "%s: a forged reply to the core's socket is refused", what);
		return;
	}
	if (mh_nl_open(&nl, bus) < 0) {
		report(0, "%s: mh_nl_open: %s", what, strerror(errno));
		return;
	}
	rc = forge(bus, nl.portid, nl.seq + 1);
	report(rc == ECONNREFUSED && waiting(mnl_socket_get_fd(nl.sock)) == 0,
	       "%s: a forged reply from another socket to the core's (portid %u) is refused by the kernel "
	       "(sendto: %s), nothing received", what, (unsigned)nl.portid, rc ? strerror(rc) : "accepted");
	mh_nl_close(&nl);

	/* the control: bound, not connected */
	ctl = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, bus);
	if (ctl < 0 || bind(ctl, (struct sockaddr *)&me, sizeof me) < 0 ||
	    getsockname(ctl, (struct sockaddr *)&me, &len) < 0) {
		report(0, "%s: control socket: %s", what, strerror(errno));
	} else {
		rc = forge(bus, me.nl_pid, 1);
		report(rc == 0 && waiting(ctl) > 0,
		       "%s: control: the same forgery reaches a socket that is not connected (sendto: %s)",
		       what, rc ? strerror(rc) : "accepted");
	}
	if (ctl >= 0)
		close(ctl);
}

void test_nlsock(void)
{
	one_bus(NETLINK_ROUTE, "netlink (rtnetlink)");
	one_bus(NETLINK_NETFILTER, "netlink (nfnetlink)");
}
