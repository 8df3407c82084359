/* mh-probe: a small, bounded TCP/UDP prober for the namespace tests.
 *
 *   mh-probe serve [--tcp PORT]... [--udp PORT]... [--max-time SEC] [--max N]
 *       Answers every TCP connection and every UDP datagram with one line
 *           MHPROBE seen=PEER:PORT at=LOCAL:PORT
 *       (the address the client was seen from, the address it reached), then
 *       closes.  Prints "ready" once listening.  Exits after SEC seconds
 *       (default 600) or N answers (default 100000), or on SIGTERM/SIGINT.
 *
 *   mh-probe connect [--tcp|--udp] --port P [--bind SRC] [--timeout MS]
 *                    [--parallel N] [--repeat N] [--max-time MS] DEST...
 *       DEST: A.B.C.D, A.B.C.D-E (last octet range) or A.B.C.D-W.X.Y.Z.
 *       Prints one line per attempt, in order:
 *           DEST seen=A:P at=B:P src=C:P     the far end answered
 *           DEST timeout | DEST error=TEXT   it did not
 *       src is this socket's own address (before any NAT).  Exit 0 when every
 *       attempt was answered, 3 when some were not, 2 on usage errors.
 *
 * Hard limits: at most 4096 attempts, 256 in flight, 30 s per attempt, 120 s
 * in all; the server at most 3600 s.  A probe never runs unbounded.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#define MAX_ATTEMPTS   4096
#define MAX_PARALLEL   256
#define MAX_TIMEOUT_MS 30000
#define MAX_TOTAL_MS   120000
#define MAX_SERVE_SEC  3600
#define MAX_PORTS      16
#define LINE_MAX_LEN   160

static void usage(void)
{
	fprintf(stderr,
		"usage: mh-probe serve [--tcp PORT]... [--udp PORT]... [--max-time SEC] [--max N]\n"
		"       mh-probe connect [--tcp|--udp] --port P [--bind SRC] [--timeout MS]\n"
		"                        [--parallel N] [--repeat N] [--max-time MS] DEST...\n");
	exit(2);
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static long parse_num(const char *s, long lo, long hi, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || *s == '\0' || *end != '\0' || v < lo || v > hi) {
		fprintf(stderr, "mh-probe: bad %s '%s' (want %ld..%ld)\n", what, s, lo, hi);
		exit(2);
	}
	return v;
}

static const char *fmt_sin(const struct sockaddr_in *sin, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &sin->sin_addr, a, sizeof a);
	snprintf(buf, len, "%s:%u", a, ntohs(sin->sin_port));
	return buf;
}

/* ---------------- serve ---------------- */

static volatile sig_atomic_t stop_serving;

static void on_signal(int sig)
{
	(void)sig;
	stop_serving = 1;
}

static int listen_on(int type, int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(port) };
	int one = 1;
	int fd = socket(AF_INET, type | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("mh-probe: socket");
		exit(1);
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (type == SOCK_DGRAM)
		setsockopt(fd, IPPROTO_IP, IP_PKTINFO, &one, sizeof one);
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
		fprintf(stderr, "mh-probe: bind port %d: %s\n", port, strerror(errno));
		exit(1);
	}
	if (type == SOCK_STREAM && listen(fd, 1024) < 0) {
		perror("mh-probe: listen");
		exit(1);
	}
	return fd;
}

static void answer_tcp(int lfd)
{
	struct sockaddr_in peer, local;
	socklen_t plen = sizeof peer, llen = sizeof local;
	char p[32], l[32], line[LINE_MAX_LEN];
	struct timeval tv = { .tv_sec = 1 };
	int fd = accept4(lfd, (struct sockaddr *)&peer, &plen, SOCK_CLOEXEC);
	int n;

	if (fd < 0)
		return;
	getsockname(fd, (struct sockaddr *)&local, &llen);
	n = snprintf(line, sizeof line, "MHPROBE seen=%s at=%s\n",
		     fmt_sin(&peer, p, sizeof p), fmt_sin(&local, l, sizeof l));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	if (write(fd, line, n) < 0) { /* the client went away: nothing to do */ }
	close(fd);
}

static void answer_udp(int fd)
{
	struct sockaddr_in peer, local = { .sin_family = AF_INET };
	char buf[512], cbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
	char ocbuf[CMSG_SPACE(sizeof(struct in_pktinfo))];
	char p[32], l[32], line[LINE_MAX_LEN];
	struct iovec iov = { buf, sizeof buf };
	struct msghdr msg = {
		.msg_name = &peer, .msg_namelen = sizeof peer,
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = cbuf, .msg_controllen = sizeof cbuf,
	};
	struct in_pktinfo *pi = NULL;
	struct cmsghdr *c;
	socklen_t llen = sizeof local;
	int n;

	if (recvmsg(fd, &msg, MSG_DONTWAIT) < 0)
		return;
	getsockname(fd, (struct sockaddr *)&local, &llen);
	for (c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c))
		if (c->cmsg_level == IPPROTO_IP && c->cmsg_type == IP_PKTINFO)
			pi = (struct in_pktinfo *)CMSG_DATA(c);
	if (pi)
		local.sin_addr = pi->ipi_addr;
	n = snprintf(line, sizeof line, "MHPROBE seen=%s at=%s\n",
		     fmt_sin(&peer, p, sizeof p), fmt_sin(&local, l, sizeof l));

	/* Answer from the address the datagram was sent to. */
	iov.iov_base = line;
	iov.iov_len = n;
	msg.msg_namelen = sizeof peer;
	msg.msg_control = NULL;
	msg.msg_controllen = 0;
	if (pi) {
		struct in_pktinfo out = { .ipi_spec_dst = pi->ipi_addr };

		memset(ocbuf, 0, sizeof ocbuf);
		msg.msg_control = ocbuf;
		msg.msg_controllen = sizeof ocbuf;
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = IPPROTO_IP;
		c->cmsg_type = IP_PKTINFO;
		c->cmsg_len = CMSG_LEN(sizeof out);
		memcpy(CMSG_DATA(c), &out, sizeof out);
	}
	msg.msg_flags = 0;
	if (sendmsg(fd, &msg, MSG_DONTWAIT) < 0) { /* best effort, as UDP is */ }
}

static int serve(int argc, char **argv)
{
	struct pollfd pfd[2 * MAX_PORTS];
	int is_tcp[2 * MAX_PORTS];
	int nfd = 0, i;
	long max_sec = 600, max_answers = 100000, answered = 0;
	long long deadline;
	struct sigaction sa = { .sa_handler = on_signal };

	for (i = 0; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--tcp") || !strcmp(argv[i], "--udp")) {
			int tcp = argv[i][2] == 't';

			if (nfd >= 2 * MAX_PORTS)
				usage();
			is_tcp[nfd] = tcp;
			pfd[nfd].fd = listen_on(tcp ? SOCK_STREAM : SOCK_DGRAM,
						parse_num(argv[++i], 1, 65535, "port"));
			pfd[nfd].events = POLLIN;
			nfd++;
		} else if (!strcmp(argv[i], "--max-time")) {
			max_sec = parse_num(argv[++i], 1, MAX_SERVE_SEC, "--max-time");
		} else if (!strcmp(argv[i], "--max")) {
			max_answers = parse_num(argv[++i], 1, 10000000, "--max");
		} else {
			usage();
		}
	}
	if (nfd == 0)
		usage();
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	printf("ready\n");
	fflush(stdout);

	deadline = now_ms() + max_sec * 1000;
	while (!stop_serving && answered < max_answers) {
		long long left = deadline - now_ms();
		int r;

		if (left <= 0)
			break;
		r = poll(pfd, nfd, left > 1000 ? 1000 : (int)left);
		if (r < 0 && errno != EINTR)
			return 1;
		for (i = 0; r > 0 && i < nfd; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			if (is_tcp[i])
				answer_tcp(pfd[i].fd);
			else
				answer_udp(pfd[i].fd);
			answered++;
		}
	}
	return 0;
}

/* ---------------- connect ---------------- */

enum state { ST_IDLE, ST_CONNECTING, ST_READING, ST_DONE };

struct attempt {
	struct in_addr dst;
	enum state st;
	int fd;
	long long started, resend_at;
	char src[32];
	char reply[LINE_MAX_LEN];
	size_t got;
	char result[LINE_MAX_LEN + 64];
};

static int add_range(struct attempt *a, int n, const char *spec)
{
	char buf[64], *dash;
	struct in_addr lo, hi;
	uint32_t l, h, x;

	if (strlen(spec) >= sizeof buf)
		goto bad;
	strcpy(buf, spec);
	dash = strchr(buf, '-');
	if (dash)
		*dash++ = '\0';
	if (inet_pton(AF_INET, buf, &lo) != 1)
		goto bad;
	hi = lo;
	if (dash) {
		if (strchr(dash, '.')) {
			if (inet_pton(AF_INET, dash, &hi) != 1)
				goto bad;
		} else {
			long last = parse_num(dash, 0, 255, "range end");

			hi.s_addr = htonl((ntohl(lo.s_addr) & 0xffffff00u) | (uint32_t)last);
		}
	}
	l = ntohl(lo.s_addr);
	h = ntohl(hi.s_addr);
	if (h < l)
		goto bad;
	for (x = l; ; x++) {
		if (n >= MAX_ATTEMPTS) {
			fprintf(stderr, "mh-probe: more than %d attempts\n", MAX_ATTEMPTS);
			exit(2);
		}
		a[n].dst.s_addr = htonl(x);
		n++;
		if (x == h)
			break;
	}
	return n;
bad:
	fprintf(stderr, "mh-probe: bad destination '%s'\n", spec);
	exit(2);
}

struct conn_opts {
	int tcp, port, timeout_ms;
	struct in_addr bind;
	int bound;
};

static void finish(struct attempt *a, const char *fmt, const char *arg)
{
	if (a->fd >= 0)
		close(a->fd);
	a->fd = -1;
	snprintf(a->result, sizeof a->result, fmt, arg);
	a->st = ST_DONE;
}

static void start(struct attempt *a, const struct conn_opts *o)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(o->port),
				   .sin_addr = a->dst };
	int one = 1;

	a->started = now_ms();
	a->fd = socket(AF_INET, (o->tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (a->fd < 0) {
		finish(a, "error=%s", strerror(errno));
		return;
	}
	if (o->bound) {
		struct sockaddr_in b = { .sin_family = AF_INET, .sin_addr = o->bind };

		setsockopt(a->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		if (bind(a->fd, (struct sockaddr *)&b, sizeof b) < 0) {
			finish(a, "error=bind:%s", strerror(errno));
			return;
		}
	}
	if (connect(a->fd, (struct sockaddr *)&sin, sizeof sin) < 0 && errno != EINPROGRESS) {
		finish(a, "error=%s", strerror(errno));
		return;
	}
	a->st = o->tcp ? ST_CONNECTING : ST_READING;
	if (!o->tcp) {
		if (send(a->fd, "probe\n", 6, 0) < 0) {
			finish(a, "error=%s", strerror(errno));
			return;
		}
		a->resend_at = a->started + o->timeout_ms / 3;
	}
}

static void note_src(struct attempt *a)
{
	struct sockaddr_in s;
	socklen_t len = sizeof s;

	if (getsockname(a->fd, (struct sockaddr *)&s, &len) == 0)
		fmt_sin(&s, a->src, sizeof a->src);
}

static void progress(struct attempt *a, short revents, const struct conn_opts *o)
{
	int err = 0;
	socklen_t len = sizeof err;
	ssize_t n;
	char *nl;

	if (a->st == ST_CONNECTING) {
		if (!(revents & (POLLOUT | POLLERR | POLLHUP)))
			return;
		getsockopt(a->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err) {
			finish(a, "error=%s", strerror(err));
			return;
		}
		a->st = ST_READING;
		note_src(a);
		return;
	}
	if (!(revents & (POLLIN | POLLERR | POLLHUP)))
		return;
	if (!o->tcp && !a->src[0])
		note_src(a);
	n = recv(a->fd, a->reply + a->got, sizeof a->reply - 1 - a->got, 0);
	if (n < 0) {
		if (errno == EAGAIN || errno == EINTR)
			return;
		finish(a, "error=%s", strerror(errno));
		return;
	}
	a->got += n;
	a->reply[a->got] = '\0';
	nl = strchr(a->reply, '\n');
	if (nl || n == 0 || !o->tcp || a->got == sizeof a->reply - 1) {
		char line[LINE_MAX_LEN + 48];

		if (nl)
			*nl = '\0';
		if (strncmp(a->reply, "MHPROBE ", 8) != 0) {
			finish(a, "error=%s", n == 0 && a->got == 0 ? "closed" : "garbled");
			return;
		}
		snprintf(line, sizeof line, "%s src=%s", a->reply + 8, a->src);
		finish(a, "%s", line);
	}
}

static int do_connect(int argc, char **argv)
{
	static struct attempt att[MAX_ATTEMPTS];
	static struct pollfd pfd[MAX_PARALLEL];
	static int idx[MAX_PARALLEL];
	struct conn_opts o = { .tcp = 1, .timeout_ms = 1000 };
	int parallel = 32, repeat = 1, total_ms = 60000;
	int n = 0, i, next = 0, done = 0, failed = 0, printed = 0;
	long long deadline;
	int ndst;
	static struct attempt dsts[MAX_ATTEMPTS];

	for (i = 0; i < argc; i++) {
		const char *a = argv[i];

		if (!strcmp(a, "--tcp")) { o.tcp = 1; continue; }
		if (!strcmp(a, "--udp")) { o.tcp = 0; continue; }
		if (a[0] != '-' || a[1] != '-') {
			n = add_range(dsts, n, a);
			continue;
		}
		if (i + 1 >= argc)
			usage();
		if (!strcmp(a, "--port"))
			o.port = parse_num(argv[++i], 1, 65535, "--port");
		else if (!strcmp(a, "--timeout"))
			o.timeout_ms = parse_num(argv[++i], 10, MAX_TIMEOUT_MS, "--timeout");
		else if (!strcmp(a, "--parallel"))
			parallel = parse_num(argv[++i], 1, MAX_PARALLEL, "--parallel");
		else if (!strcmp(a, "--repeat"))
			repeat = parse_num(argv[++i], 1, MAX_ATTEMPTS, "--repeat");
		else if (!strcmp(a, "--max-time"))
			total_ms = parse_num(argv[++i], 100, MAX_TOTAL_MS, "--max-time");
		else if (!strcmp(a, "--bind")) {
			if (inet_pton(AF_INET, argv[++i], &o.bind) != 1) {
				fprintf(stderr, "mh-probe: bad --bind '%s'\n", argv[i]);
				return 2;
			}
			o.bound = 1;
		} else
			usage();
	}
	if (!o.port || n == 0)
		usage();
	if ((long)n * repeat > MAX_ATTEMPTS) {
		fprintf(stderr, "mh-probe: more than %d attempts\n", MAX_ATTEMPTS);
		return 2;
	}
	ndst = n;
	n = 0;
	for (i = 0; i < ndst; i++)
		for (int r = 0; r < repeat; r++) {
			att[n] = (struct attempt){ .dst = dsts[i].dst, .fd = -1 };
			n++;
		}
	signal(SIGPIPE, SIG_IGN);

	deadline = now_ms() + total_ms;
	while (done < n) {
		int np = 0, active = 0;
		long long t = now_ms(), wait_ms = 200;

		/* Start new attempts up to the parallel limit. */
		for (i = 0; i < n; i++)
			if (att[i].st == ST_CONNECTING || att[i].st == ST_READING)
				active++;
		while (next < n && active < parallel && t < deadline) {
			start(&att[next], &o);
			if (att[next].st != ST_DONE)
				active++;
			next++;
		}
		/* Time limits: per attempt, then for the whole run. */
		for (i = 0; i < next; i++) {
			struct attempt *a = &att[i];

			if (a->st == ST_DONE)
				continue;
			if (t - a->started >= o.timeout_ms || t >= deadline) {
				finish(a, "%s", "timeout");
				continue;
			}
			if (!o.tcp && a->resend_at && t >= a->resend_at) {
				if (send(a->fd, "probe\n", 6, 0) < 0) { /* answered below or times out */ }
				a->resend_at = 0;
			}
			if (np < MAX_PARALLEL) {
				pfd[np].fd = a->fd;
				pfd[np].events = a->st == ST_CONNECTING ? POLLOUT : POLLIN;
				idx[np++] = i;
			}
		}
		if (t >= deadline) {
			for (i = next; i < n; i++)
				finish(&att[i], "%s", "timeout");
			next = n;
		}
		if (np > 0 && poll(pfd, np, (int)wait_ms) > 0)
			for (i = 0; i < np; i++)
				if (pfd[i].revents)
					progress(&att[idx[i]], pfd[i].revents, &o);
		/* Print finished attempts in order. */
		done = 0;
		for (i = 0; i < n; i++)
			if (att[i].st == ST_DONE)
				done++;
		while (printed < n && att[printed].st == ST_DONE) {
			char d[INET_ADDRSTRLEN];

			inet_ntop(AF_INET, &att[printed].dst, d, sizeof d);
			printf("%s %s\n", d, att[printed].result);
			if (strncmp(att[printed].result, "seen=", 5) != 0)
				failed++;
			printed++;
		}
		fflush(stdout);
	}
	return failed ? 3 : 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "serve"))
		return serve(argc - 2, argv + 2);
	if (!strcmp(argv[1], "connect"))
		return do_connect(argc - 2, argv + 2);
	usage();
	return 2;
}
