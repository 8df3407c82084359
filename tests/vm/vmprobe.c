/* vmprobe: the traffic tool of the VM tier (one static binary, no fork per
 * connection: under TCG every exec costs tens of milliseconds).
 *
 *   vmprobe serve PORT...            accept TCP on 0.0.0.0:PORT...; answer each
 *                                    connection "<peer address> <local address>\n"
 *   vmprobe connect [-s SRC] DST PORT
 *                                    print the address the far end saw; exit 1
 *                                    when it did not answer within 2 s
 *   vmprobe sweep A.B.C FIRST LAST PORT
 *                                    one connection to each of A.B.C.FIRST..LAST;
 *                                    print "<seen address> <count>" per address and
 *                                    "fail <count>" for connections that failed
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define TIMEOUT_MS 2000
#define MAX_PORTS 16

static int serve(int nports, char **ports)
{
	struct pollfd pfd[MAX_PORTS];
	int n = 0;

	signal(SIGPIPE, SIG_IGN);
	for (int i = 0; i < nports && n < MAX_PORTS; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET,
					 .sin_port = htons(atoi(ports[i])) };
		int one = 1, s = socket(AF_INET, SOCK_STREAM, 0);

		setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
		if (bind(s, (struct sockaddr *)&a, sizeof(a)) || listen(s, 64)) {
			fprintf(stderr, "vmprobe: port %s: %s\n", ports[i], strerror(errno));
			return 1;
		}
		pfd[n].fd = s;
		pfd[n++].events = POLLIN;
	}
	for (;;) {
		if (poll(pfd, n, -1) < 0 && errno != EINTR)
			return 1;
		for (int i = 0; i < n; i++) {
			struct sockaddr_in peer, local;
			socklen_t pl = sizeof(peer), ll = sizeof(local);
			char line[64], p[INET_ADDRSTRLEN], l[INET_ADDRSTRLEN];
			int c;

			if (!(pfd[i].revents & POLLIN))
				continue;
			c = accept(pfd[i].fd, (struct sockaddr *)&peer, &pl);
			if (c < 0)
				continue;
			getsockname(c, (struct sockaddr *)&local, &ll);
			inet_ntop(AF_INET, &peer.sin_addr, p, sizeof(p));
			inet_ntop(AF_INET, &local.sin_addr, l, sizeof(l));
			int len = snprintf(line, sizeof(line), "%s %s\n", p, l);
			if (write(c, line, len) < 0) { /* the client went away: nothing to do */ }
			close(c);
		}
	}
}

/* Connect to DST:PORT (from SRC if given); put what the far end saw in SEEN. */
static int probe(const char *src, const char *dst, int port, char *seen, size_t len)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	struct pollfd pfd;
	char buf[128];
	size_t got = 0;
	int s, rc = -1, err = 0;
	socklen_t el = sizeof(err);

	if (inet_pton(AF_INET, dst, &a.sin_addr) != 1)
		return -1;
	s = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (s < 0)
		return -1;
	if (src) {
		struct sockaddr_in b = { .sin_family = AF_INET };
		if (inet_pton(AF_INET, src, &b.sin_addr) != 1 ||
		    bind(s, (struct sockaddr *)&b, sizeof(b)))
			goto out;
	}
	if (connect(s, (struct sockaddr *)&a, sizeof(a)) && errno != EINPROGRESS)
		goto out;
	pfd.fd = s;
	pfd.events = POLLOUT;
	if (poll(&pfd, 1, TIMEOUT_MS) != 1 ||
	    getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &el) || err)
		goto out;
	pfd.events = POLLIN;
	while (got < sizeof(buf) - 1 && poll(&pfd, 1, TIMEOUT_MS) == 1) {
		ssize_t r = read(s, buf + got, sizeof(buf) - 1 - got);
		if (r <= 0)
			break;
		got += r;
	}
	buf[got] = 0;
	if (got && sscanf(buf, "%63s", seen) == 1 && strlen(seen) < len)
		rc = 0;
out:
	close(s);
	return rc;
}

static int sweep(const char *prefix, int first, int last, int port)
{
	struct { char addr[64]; int n; } seen[64];
	int nseen = 0, fails = 0;

	for (int i = first; i <= last; i++) {
		char dst[64], who[64];
		int j;

		snprintf(dst, sizeof(dst), "%s.%d", prefix, i);
		if (probe(NULL, dst, port, who, sizeof(who))) {
			fails++;
			continue;
		}
		for (j = 0; j < nseen && strcmp(seen[j].addr, who); j++)
			;
		if (j == nseen && nseen < 64) {
			snprintf(seen[nseen].addr, sizeof(seen[nseen].addr), "%s", who);
			seen[nseen++].n = 0;
		}
		if (j < nseen)
			seen[j].n++;
	}
	for (int j = 0; j < nseen; j++)
		printf("%s %d\n", seen[j].addr, seen[j].n);
	printf("fail %d\n", fails);
	return 0;
}

int main(int argc, char **argv)
{
	char who[64];

	if (argc >= 3 && !strcmp(argv[1], "serve"))
		return serve(argc - 2, argv + 2);
	if (argc == 4 && !strcmp(argv[1], "connect")) {
		if (probe(NULL, argv[2], atoi(argv[3]), who, sizeof(who)))
			return 1;
		puts(who);
		return 0;
	}
	if (argc == 6 && !strcmp(argv[1], "connect") && !strcmp(argv[2], "-s")) {
		if (probe(argv[3], argv[4], atoi(argv[5]), who, sizeof(who)))
			return 1;
		puts(who);
		return 0;
	}
	if (argc == 6 && !strcmp(argv[1], "sweep"))
		return sweep(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: vmprobe serve PORT... | connect [-s SRC] DST PORT |"
		" sweep A.B.C FIRST LAST PORT\n");
	return 2;
}
