/* mh-bench-flow: the failover probe of `make bench`.
 *
 *   mh-bench-flow reflect --port P [--max-time SEC]
 *       UDP echo: answers every datagram with its payload followed by the
 *       source address it was seen from (4 bytes), so the sender learns which
 *       uplink (which NAT address) each packet left by.  Prints "ready".
 *
 *   mh-bench-flow send --port P [--interval-us US] [--duration-ms MS]
 *                      [--at-ms MS --exec CMD] [--gone ADDR] DEST...
 *       Every US microseconds (default 1000) sends one numbered datagram to
 *       each DEST from one unconnected socket (a fresh route lookup per
 *       packet), for MS milliseconds (default 1500, at most 10000).  At
 *       --at-ms it forks `sh -c CMD` (e.g. "ip link del u1") without
 *       pausing the sender.  After a 300 ms drain it prints per DEST
 *           flow DEST before=A after=B answered=N/M gap_ms=G lost=L class=C
 *                send_errors=E [last_error=TEXT]
 *       where A/B are the addresses the far end saw last before CMD / last
 *       of all (B "none" when the flow never recovered), G the longest run of unanswered packets after CMD (in ms,
 *       run x interval; "-1" when the flow was still unanswered at the end
 *       of the window: never recovered), C is
 *       "moved" when A is --gone, else "surviving".  Then one summary line
 *           summary surviving_flows=N surviving_gap_ms=G moved_flows=N
 *                   moved_gap_ms=G recovered=yes|no exec_ms=T
 *       (gap -1 / recovered=no: some flow never answered again).
 *
 * Bounded: at most 64 destinations, 10 s of sending, 12000 packets each.
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_DEST   64
#define MAX_PKTS   12000
#define MAX_DUR_MS 10000
#define MAGIC      0x6d68626eu

struct pkt { uint32_t magic, dest, seq, pad; };

struct dest {
	struct sockaddr_in sa;
	unsigned char *got;     /* got[seq]: answered */
	uint32_t *seen;         /* seen[seq]: the address the far end saw */
	unsigned senderr;       /* sendto failed (e.g. ENETUNREACH: no route) */
	int lasterr;
};

static long long now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void usage(void)
{
	fprintf(stderr, "usage: mh-bench-flow reflect --port P [--max-time SEC]\n"
		"       mh-bench-flow send --port P [--interval-us US] [--duration-ms MS]\n"
		"                          [--at-ms MS --exec CMD] [--gone ADDR] DEST...\n");
	exit(2);
}

/* A busy machine must not turn scheduling delays into "outage": big socket
 * buffers (SO_RCVBUFFORCE, root) and a real-time priority for the probe. */
static void robust(int fd)
{
	int big = 8 << 20;
	struct sched_param sp = { .sched_priority = 10 };

	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof big) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof big);
	sched_setscheduler(0, SCHED_FIFO, &sp);
}

static int reflect(int port, int max_sec)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(port) };
	long long end = now_us() + (long long)max_sec * 1000000;
	unsigned char buf[256];
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	if (fd < 0 || bind(fd, (void *)&sa, sizeof sa) < 0) {
		perror("reflect: bind");
		return 1;
	}
	robust(fd);
	printf("ready\n");
	fflush(stdout);
	/* answer from the address the datagram was sent to (IP_PKTINFO), as a
	 * real server does: a reply from another address would be another flow */
	setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &(int){ 1 }, sizeof(int));
	while (now_us() < end) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		struct sockaddr_in from;
		char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
		struct iovec iov = { .iov_base = buf, .iov_len = sizeof buf - 4 };
		struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
				     .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
		struct cmsghdr *c;
		ssize_t n;

		if (poll(&p, 1, 200) <= 0)
			continue;
		n = recvmsg(fd, &mh, 0);
		if (n < (ssize_t)sizeof(struct pkt))
			continue;
		memcpy(buf + n, &from.sin_addr.s_addr, 4);
		iov.iov_len = (size_t)n + 4;
		for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
			if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO) {
				struct in_pktinfo *pi = (void *)CMSG_DATA(c);
				pi->ipi_ifindex = 0;
				pi->ipi_spec_dst = pi->ipi_addr;
			}
		sendmsg(fd, &mh, 0);
	}
	return 0;
}

static void drain(int fd, struct dest *d, unsigned nd, unsigned npk)
{
	unsigned char buf[256];
	ssize_t n;

	while ((n = recv(fd, buf, sizeof buf, MSG_DONTWAIT)) >= (ssize_t)sizeof(struct pkt) + 4) {
		struct pkt p;
		uint32_t seen;

		memcpy(&p, buf, sizeof p);
		memcpy(&seen, buf + sizeof p, 4);
		if (p.magic != MAGIC || p.dest >= nd || p.seq >= npk)
			continue;
		d[p.dest].got[p.seq] = 1;
		d[p.dest].seen[p.seq] = seen;
	}
}

static const char *ip(uint32_t a, char *buf)
{
	struct in_addr in = { a };

	if (!a)
		return "none";
	return inet_ntop(AF_INET, &in, buf, INET_ADDRSTRLEN);
}

int main(int argc, char **argv)
{
	int port = 0, max_sec = 60, interval = 1000, dur = 1500, at = -1, i;
	const char *cmd = NULL, *mode;
	uint32_t gone = 0;
	struct dest d[MAX_DEST];
	unsigned nd = 0, npk, k, seq;
	long long t0, texec = 0, tdone = 0;
	pid_t child = 0;
	int fd, worst_s = 0, worst_m = 0, ns = 0, nm = 0, recovered = 1;

	if (argc < 2)
		usage();
	mode = argv[1];
	for (i = 2; i < argc; i++) {
		const char *o = argv[i];
		if (!strcmp(o, "--port") && i + 1 < argc) port = atoi(argv[++i]);
		else if (!strcmp(o, "--max-time") && i + 1 < argc) max_sec = atoi(argv[++i]);
		else if (!strcmp(o, "--interval-us") && i + 1 < argc) interval = atoi(argv[++i]);
		else if (!strcmp(o, "--duration-ms") && i + 1 < argc) dur = atoi(argv[++i]);
		else if (!strcmp(o, "--at-ms") && i + 1 < argc) at = atoi(argv[++i]);
		else if (!strcmp(o, "--exec") && i + 1 < argc) cmd = argv[++i];
		else if (!strcmp(o, "--gone") && i + 1 < argc) {
			if (inet_pton(AF_INET, argv[++i], &gone) != 1) usage();
		} else if (o[0] == '-')
			usage();
		else if (nd < MAX_DEST) {
			memset(&d[nd], 0, sizeof d[nd]);
			d[nd].sa.sin_family = AF_INET;
			d[nd].sa.sin_port = htons(port);
			if (inet_pton(AF_INET, o, &d[nd].sa.sin_addr) != 1)
				usage();
			nd++;
		} else
			usage();
	}
	if (port <= 0 || port > 65535)
		usage();
	if (!strcmp(mode, "reflect"))
		return reflect(port, max_sec > 3600 ? 3600 : max_sec);
	if (strcmp(mode, "send") || !nd || interval < 100 || dur <= 0 || dur > MAX_DUR_MS)
		usage();
	npk = (unsigned)((long long)dur * 1000 / interval);
	if (npk > MAX_PKTS)
		npk = MAX_PKTS;
	for (k = 0; k < nd; k++) {
		d[k].sa.sin_port = htons(port);
		d[k].got = calloc(npk, 1);
		d[k].seen = calloc(npk, sizeof *d[k].seen);
		if (!d[k].got || !d[k].seen)
			return 1;
		/* port fixed: one flow per destination for the L3 hash */
		d[k].sa.sin_port = htons(port);
	}
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	if (fd < 0) {
		perror("socket");
		return 1;
	}
	robust(fd);
	t0 = now_us();
	unsigned exec_seq = npk;
	for (seq = 0; seq < npk; seq++) {
		long long due = t0 + (long long)seq * interval;
		struct timespec ts;

		if (cmd && at >= 0 && !child && now_us() - t0 >= (long long)at * 1000) {
			texec = now_us();
			exec_seq = seq;
			child = fork();
			if (child == 0) {
				struct sched_param sp0 = { .sched_priority = 0 };
				sched_setscheduler(0, SCHED_OTHER, &sp0);
				execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
				_exit(127);
			}
		}
		for (k = 0; k < nd; k++) {
			struct pkt p = { MAGIC, k, seq, 0 };
			if (sendto(fd, &p, sizeof p, MSG_DONTWAIT, (void *)&d[k].sa, sizeof d[k].sa) < 0) {
				d[k].senderr++;
				d[k].lasterr = errno;
			}
		}
		drain(fd, d, nd, npk);
		if (child > 0 && !tdone && waitpid(child, NULL, WNOHANG) == child)
			tdone = now_us();
		due += interval;
		ts.tv_sec = due / 1000000;
		ts.tv_nsec = (due % 1000000) * 1000;
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	}
	{
		long long stop = now_us() + 300000;
		while (now_us() < stop) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			poll(&p, 1, 20);
			drain(fd, d, nd, npk);
		}
	}
	if (child > 0 && !tdone) {
		waitpid(child, NULL, 0);
		tdone = now_us();
	}
	if (exec_seq >= npk)
		exec_seq = 0;
	for (k = 0; k < nd; k++) {
		uint32_t before = 0, after = 0;
		unsigned answered = 0, lost = 0, run = 0, worst = 0, s, last_ok = 0, any_after = 0;
		char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN], c[INET_ADDRSTRLEN];
		int gap, moved;

		for (s = 0; s < npk; s++) {
			if (d[k].got[s]) {
				answered++;
				if (s < exec_seq)
					before = d[k].seen[s];
				else
					after = d[k].seen[s];     /* the last one answered */
			}
			if (s < exec_seq)
				continue;
			if (d[k].got[s]) {
				any_after = 1;
				last_ok = s;
				if (run > worst)
					worst = run;
				run = 0;
			} else {
				lost++;
				run++;
			}
		}
		(void)last_ok;
		/* a flow still unanswered at the end (beyond a few packets lost in
		 * flight) never recovered within the window: gap -1 */
		if (run > 2)
			any_after = 0;
		else if (run > worst)
			worst = run;
		gap = any_after ? (int)((long long)worst * interval / 1000) : -1;
		if (gap < 0)
			after = 0;              /* "none": it never recovered */
		moved = gone && before == gone;
		if (moved) {
			nm++;
			if (gap < 0 || (worst_m >= 0 && gap > worst_m))
				worst_m = gap;
		} else {
			ns++;
			if (gap < 0 || (worst_s >= 0 && gap > worst_s))
				worst_s = gap;
		}
		if (gap < 0)
			recovered = 0;
		printf("flow %s before=%s after=%s answered=%u/%u gap_ms=%d lost=%u class=%s "
		       "send_errors=%u%s%s\n",
		       ip(d[k].sa.sin_addr.s_addr, c), ip(before, a), ip(after, b), answered, npk,
		       gap, lost, moved ? "moved" : "surviving", d[k].senderr,
		       d[k].senderr ? " last_error=" : "", d[k].senderr ? strerror(d[k].lasterr) : "");
	}
	printf("summary surviving_flows=%d surviving_gap_ms=%d moved_flows=%d moved_gap_ms=%d "
	       "recovered=%s exec_ms=%.1f window_after_ms=%lld\n",
	       ns, worst_s, nm, worst_m, recovered ? "yes" : "no",
	       child > 0 ? (tdone - texec) / 1000.0 : 0.0,
	       (long long)(npk - exec_seq) * interval / 1000);
	return 0;
}
