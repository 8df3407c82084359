/* mh-udpflow: long-lived UDP flows with keepalives both ways, for the tests
 * of flows that follow the links.
 *
 *   mh-udpflow far --port P [--keepalive-ms MS] [--burst-ms MS] [--max-time SEC]
 *       The far end (a VPN server, say).  Answers every datagram with the
 *       address and port it was seen from, and like OpenVPN's --float keeps
 *       sending a keepalive every MS (default 100) to the address each flow
 *       was last seen from.  SIGUSR1: a burst, one keepalive per flow every
 *       millisecond for MS (default 600) -- the far end racing the client at
 *       the moment a link returns.  Prints "ready".  Exits after SEC seconds
 *       (default 120) or on SIGTERM.
 *
 *   mh-udpflow client --port P [--id N] [--bind ADDR] [--connect]
 *                     [--interval-ms MS] [--duration-ms MS] DEST
 *       One socket (unbound, or bound to ADDR; connected with --connect, else
 *       every datagram is a sendto) sends a numbered datagram every MS
 *       (default 100) for --duration-ms (default 10000).  Prints, with the
 *       wall clock in milliseconds (to compare with the caller's marks):
 *           start at=T src=A:P               the socket's own address
 *           ans at=T seq=N seen=A:P          an answer: the far end saw A:P
 *           err at=T seq=N error=TEXT        a send failed
 *           end at=T sent=N answered=N keepalives=N errors=N
 *
 * Bounded: 64 flows at the far end, 600 s; a client 60 s, 10 ms at least
 * between datagrams.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAGIC      0x6d68666cu
#define MAX_FLOWS  64
#define MAX_FAR_S  600
#define MAX_DUR_MS 60000

enum kind { DATA = 1, ANSWER, KEEPALIVE };

struct msg {
	uint32_t magic, kind, id, seq;
	uint32_t seen_addr;     /* network order */
	uint16_t seen_port, pad;
};

static volatile sig_atomic_t stop, burst;

static void on_stop(int sig) { (void)sig; stop = 1; }
static void on_burst(int sig) { (void)sig; burst = 1; }

static long long now_ms(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void usage(void)
{
	fprintf(stderr,
		"usage: mh-udpflow far --port P [--keepalive-ms MS] [--burst-ms MS] [--max-time SEC]\n"
		"       mh-udpflow client --port P [--id N] [--bind ADDR] [--connect]\n"
		"                         [--interval-ms MS] [--duration-ms MS] DEST\n");
	exit(2);
}

static long num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || !*s || *end || v < lo || v > hi) {
		fprintf(stderr, "mh-udpflow: bad %s '%s' (want %ld..%ld)\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

static void addr(const char *s, struct in_addr *a, const char *what)
{
	if (inet_pton(AF_INET, s, a) != 1) {
		fprintf(stderr, "mh-udpflow: bad %s '%s' (want an IPv4 address)\n", what, s);
		exit(2);
	}
}

static const char *fmt(const struct sockaddr_in *sin, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &sin->sin_addr, a, sizeof a);
	snprintf(buf, len, "%s:%u", a, ntohs(sin->sin_port));
	return buf;
}

/* ---------------- the far end ---------------- */

struct peer {
	int used;
	uint32_t id;
	struct sockaddr_in sa;  /* where the flow was seen last */
	struct in_addr local;   /* the address it talks to: keepalives come from it */
};

static void send_from(int fd, const struct msg *m, const struct sockaddr_in *to, struct in_addr from)
{
	char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
	struct iovec iov = { .iov_base = (void *)m, .iov_len = sizeof *m };
	struct msghdr mh = { .msg_name = (void *)to, .msg_namelen = sizeof *to,
			     .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	struct cmsghdr *c;
	struct in_pktinfo pi = { .ipi_spec_dst = from };

	memset(cbuf, 0, sizeof cbuf);
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = IPPROTO_IP;
	c->cmsg_type = IP_PKTINFO;
	c->cmsg_len = CMSG_LEN(sizeof pi);
	memcpy(CMSG_DATA(c), &pi, sizeof pi);
	if (sendmsg(fd, &mh, MSG_DONTWAIT) < 0) { /* UDP: best effort */ }
}

static struct peer *peer_for(struct peer *p, uint32_t id)
{
	int i, free_slot = -1;

	for (i = 0; i < MAX_FLOWS; i++) {
		if (p[i].used && p[i].id == id)
			return &p[i];
		if (!p[i].used && free_slot < 0)
			free_slot = i;
	}
	if (free_slot < 0)
		return NULL;
	p[free_slot].used = 1;
	p[free_slot].id = id;
	return &p[free_slot];
}

static void far_receive(int fd, struct peer *peers)
{
	char cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
	struct sockaddr_in from;
	struct msg m;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof m };
	struct msghdr mh = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
			     .msg_iovlen = 1, .msg_control = cbuf, .msg_controllen = sizeof cbuf };
	struct in_addr local = { 0 };
	struct cmsghdr *c;
	struct peer *p;

	if (recvmsg(fd, &mh, MSG_DONTWAIT) != (ssize_t)sizeof m || m.magic != MAGIC || m.kind != DATA)
		return;
	for (c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO)
			local = ((struct in_pktinfo *)CMSG_DATA(c))->ipi_addr;
	p = peer_for(peers, m.id);
	if (p) {
		p->sa = from;
		p->local = local;
	}
	m.kind = ANSWER;
	m.seen_addr = from.sin_addr.s_addr;
	m.seen_port = from.sin_port;
	send_from(fd, &m, &from, local);
}

static void far_keepalive(int fd, const struct peer *peers, uint32_t seq)
{
	int i;

	for (i = 0; i < MAX_FLOWS; i++) {
		struct msg m = { .magic = MAGIC, .kind = KEEPALIVE, .id = peers[i].id, .seq = seq };
		if (!peers[i].used)
			continue;
		m.seen_addr = peers[i].sa.sin_addr.s_addr;
		m.seen_port = peers[i].sa.sin_port;
		send_from(fd, &m, &peers[i].sa, peers[i].local);
	}
}

static int far(int argc, char **argv)
{
	static struct peer peers[MAX_FLOWS];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	long keep_ms = 100, burst_ms = 600, max_s = 120;
	long long end, next_keep, burst_end = 0;
	uint32_t seq = 0;
	int i, fd, one = 1;

	for (i = 0; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--port"))
			sa.sin_port = htons((uint16_t)num(argv[++i], 1, 65535, "--port"));
		else if (!strcmp(argv[i], "--keepalive-ms"))
			keep_ms = num(argv[++i], 10, 10000, "--keepalive-ms");
		else if (!strcmp(argv[i], "--burst-ms"))
			burst_ms = num(argv[++i], 1, 5000, "--burst-ms");
		else if (!strcmp(argv[i], "--max-time"))
			max_s = num(argv[++i], 1, MAX_FAR_S, "--max-time");
		else
			usage();
	}
	if (!sa.sin_port)
		usage();
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0 || setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one) < 0 ||
	    bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		perror("mh-udpflow far");
		return 1;
	}
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	signal(SIGUSR1, on_burst);
	printf("ready\n");
	fflush(stdout);
	end = now_ms(CLOCK_MONOTONIC) + max_s * 1000;
	next_keep = now_ms(CLOCK_MONOTONIC) + keep_ms;
	while (!stop) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long t = now_ms(CLOCK_MONOTONIC);

		if (t >= end)
			break;
		if (burst) {
			burst = 0;
			burst_end = t + burst_ms;
		}
		if (t >= next_keep || t < burst_end) {
			far_keepalive(fd, peers, ++seq);
			next_keep = t + keep_ms;
		}
		if (poll(&p, 1, t < burst_end ? 1 : (int)(next_keep - t)) > 0)
			far_receive(fd, peers);
	}
	return 0;
}

/* ---------------- a client flow ---------------- */

struct client {
	int fd, connected;
	struct sockaddr_in dst;
	uint32_t id;
	unsigned sent, answered, keepalives, errors;
	int last_err;
};

static void client_send(struct client *c, uint32_t seq)
{
	struct msg m = { .magic = MAGIC, .kind = DATA, .id = c->id, .seq = seq };
	ssize_t n;

	if (c->connected)
		n = send(c->fd, &m, sizeof m, MSG_DONTWAIT);
	else
		n = sendto(c->fd, &m, sizeof m, MSG_DONTWAIT, (struct sockaddr *)&c->dst, sizeof c->dst);
	c->sent++;
	if (n == (ssize_t)sizeof m)
		return;
	c->errors++;
	c->last_err = errno;
	printf("err at=%lld seq=%u error=%s\n", now_ms(CLOCK_REALTIME), seq, strerror(errno));
}

static void client_receive(struct client *c)
{
	struct msg m;
	struct sockaddr_in seen = { .sin_family = AF_INET };
	char s[32];
	ssize_t n;

	while ((n = recv(c->fd, &m, sizeof m, MSG_DONTWAIT)) >= 0 || errno == EINTR) {
		if (n != (ssize_t)sizeof m || m.magic != MAGIC || m.id != c->id)
			continue;
		if (m.kind == KEEPALIVE) {
			c->keepalives++;
			continue;
		}
		if (m.kind != ANSWER)
			continue;
		c->answered++;
		seen.sin_addr.s_addr = m.seen_addr;
		seen.sin_port = m.seen_port;
		printf("ans at=%lld seq=%u seen=%s\n", now_ms(CLOCK_REALTIME), m.seq, fmt(&seen, s, sizeof s));
	}
}

static void client_open(struct client *c, const struct in_addr *bind_addr, int do_connect)
{
	struct sockaddr_in b = { .sin_family = AF_INET }, me;
	socklen_t len = sizeof me;
	char s[32];

	c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0) {
		perror("mh-udpflow client: socket");
		exit(1);
	}
	if (bind_addr) {
		b.sin_addr = *bind_addr;
		if (bind(c->fd, (struct sockaddr *)&b, sizeof b) < 0) {
			perror("mh-udpflow client: bind");
			exit(1);
		}
	}
	if (do_connect && connect(c->fd, (struct sockaddr *)&c->dst, sizeof c->dst) < 0) {
		perror("mh-udpflow client: connect");
		exit(1);
	}
	c->connected = do_connect;
	client_send(c, 0);
	getsockname(c->fd, (struct sockaddr *)&me, &len);
	printf("start at=%lld src=%s\n", now_ms(CLOCK_REALTIME), fmt(&me, s, sizeof s));
	fflush(stdout);
}

static int client(int argc, char **argv)
{
	struct client c = { .dst = { .sin_family = AF_INET } };
	struct in_addr bind_addr;
	long interval = 100, duration = 10000;
	long long end, next;
	int i, bound = 0, do_connect = 0, have_dst = 0;
	uint32_t seq = 0;

	for (i = 0; i < argc; i++) {
		if (!strcmp(argv[i], "--connect")) {
			do_connect = 1;
			continue;
		}
		if (argv[i][0] != '-') {
			addr(argv[i], &c.dst.sin_addr, "destination");
			have_dst = 1;
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--port"))
			c.dst.sin_port = htons((uint16_t)num(argv[++i], 1, 65535, "--port"));
		else if (!strcmp(argv[i], "--id"))
			c.id = (uint32_t)num(argv[++i], 0, 1000000, "--id");
		else if (!strcmp(argv[i], "--bind")) {
			addr(argv[++i], &bind_addr, "--bind");
			bound = 1;
		} else if (!strcmp(argv[i], "--interval-ms"))
			interval = num(argv[++i], 10, 10000, "--interval-ms");
		else if (!strcmp(argv[i], "--duration-ms"))
			duration = num(argv[++i], 1, MAX_DUR_MS, "--duration-ms");
		else
			usage();
	}
	if (!have_dst || !c.dst.sin_port)
		usage();
	signal(SIGTERM, on_stop);
	signal(SIGINT, on_stop);
	setvbuf(stdout, NULL, _IOLBF, 0);
	client_open(&c, bound ? &bind_addr : NULL, do_connect);
	end = now_ms(CLOCK_MONOTONIC) + duration;
	next = now_ms(CLOCK_MONOTONIC) + interval;
	while (!stop) {
		struct pollfd p = { .fd = c.fd, .events = POLLIN };
		long long t = now_ms(CLOCK_MONOTONIC);

		if (t >= end)
			break;
		if (t >= next) {
			client_send(&c, ++seq);
			next += interval;
			continue;
		}
		if (poll(&p, 1, (int)(next - t)) > 0)
			client_receive(&c);
	}
	usleep(200000);         /* the last answers */
	client_receive(&c);
	printf("end at=%lld sent=%u answered=%u keepalives=%u errors=%u\n", now_ms(CLOCK_REALTIME),
	       c.sent, c.answered, c.keepalives, c.errors);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "far"))
		return far(argc - 2, argv + 2);
	if (!strcmp(argv[1], "client"))
		return client(argc - 2, argv + 2);
	usage();
	return 2;
}
