/* mh-ovpn-forge: plays a compromised OpenVPN towards multihome's root helper.
 *
 *   mh-ovpn-forge send PID [--op up|down] [--ifname IF] [--local A] [--peer A]
 *                          [--gateway A] [--plen N] [--size N] [ARG...]
 *       Takes the end of the root helper's socketpair out of OpenVPN process
 *       PID (pidfd_getfd: the one AF_UNIX SOCK_SEQPACKET socket it holds),
 *       sends one request built from the options (ARG...: the "key=value"
 *       arguments, NUL-separated as the plugin sends them; --size: send only
 *       N bytes) and prints the helper's answer:
 *           status=0|-1
 *           err=TEXT
 *           log=LINE            (one per log line the helper sent back)
 *       Exit 0 when an answer came, 2 on usage or socket errors, 3 on no answer
 *       within 20 s.
 *
 *   mh-ovpn-forge opens PID FILE
 *       Without CAP_SYS_PTRACE (dropped from this process), does /proc/PID/FILE
 *       open for reading?  For "mem" that is a ptrace access check: a process
 *       that is not dumpable refuses a uid 0 without CAP_SYS_PTRACE.  A forked
 *       child of this process, dumpable and with the same credentials, is
 *       tried first as the control.  Prints "opens" (exit 0) or "refused:
 *       ERROR" (exit 1); exit 3 if the control fails.
 *
 *   mh-ovpn-forge syslog PATH SECONDS
 *       Binds a datagram socket at PATH and prints every message it receives,
 *       one per line, for at most SECONDS (at most 600).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <linux/capability.h>

#include "../../openvpn-plugin/helper.h"

#define REPLY_WAIT_MS 20000

static int usage(void)
{
	fprintf(stderr, "usage: mh-ovpn-forge send PID [--op up|down] [--ifname IF] [--local A] [--peer A]\n"
			"                      [--gateway A] [--plen N] [--size N] [ARG...]\n"
			"       mh-ovpn-forge opens PID FILE\n"
			"       mh-ovpn-forge syslog PATH SECONDS\n");
	return 2;
}

/* ---- send ---- */

/* OpenVPN's end of the helper's socketpair, as a descriptor of ours. */
static int steal_socket(pid_t pid)
{
	char dir[64], path[600], link[64];
	int pidfd, found = -1, n = 0;
	struct dirent *de;
	DIR *d;

	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0) {
		fprintf(stderr, "pidfd_open %d: %s\n", (int)pid, strerror(errno));
		return -1;
	}
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	d = opendir(dir);
	if (!d) {
		fprintf(stderr, "%s: %s\n", dir, strerror(errno));
		close(pidfd);
		return -1;
	}
	while ((de = readdir(d))) {
		int type = 0, domain = 0, fd;
		socklen_t l = sizeof type;
		ssize_t r;

		snprintf(path, sizeof path, "%s/%s", dir, de->d_name);
		r = readlink(path, link, sizeof link - 1);
		if (r < 0)
			continue;
		link[r] = 0;
		if (strncmp(link, "socket:", 7))
			continue;
		fd = (int)syscall(SYS_pidfd_getfd, pidfd, atoi(de->d_name), 0);
		if (fd < 0)
			continue;
		getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &l);
		l = sizeof domain;
		getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &l);
		if (domain == AF_UNIX && type == SOCK_SEQPACKET) {
			if (found >= 0)
				close(found);
			found = fd;
			n++;
		} else {
			close(fd);
		}
	}
	closedir(d);
	close(pidfd);
	if (n != 1) {
		fprintf(stderr, "process %d holds %d AF_UNIX SOCK_SEQPACKET sockets (want exactly 1)\n",
			(int)pid, n);
		if (found >= 0)
			close(found);
		return -1;
	}
	return found;
}

static int addr_opt(const char *v, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, v, &a) != 1) {
		fprintf(stderr, "not an IPv4 address: %s\n", v);
		return -1;
	}
	*out = a.s_addr;
	return 0;
}

/* The request the options describe (ARGV from the first option on). */
static int build(int argc, char **argv, struct mho_request *rq, size_t *size)
{
	size_t at = 0;
	int i;

	memset(rq, 0, sizeof *rq);
	rq->magic = MHO_MAGIC;
	rq->seq = 0x70000000u + (uint32_t)getpid();
	rq->op = MHO_UP;
	strcpy(rq->ifname, "tun0");
	*size = sizeof *rq;
	for (i = 0; i < argc; i++) {
		const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strncmp(o, "--", 2) && !v)
			return usage();
		if (!strcmp(o, "--op")) {
			rq->op = !strcmp(v, "down") ? MHO_DOWN : MHO_UP;
		} else if (!strcmp(o, "--ifname")) {
			snprintf(rq->ifname, sizeof rq->ifname, "%s", v);
		} else if (!strcmp(o, "--local")) {
			if (addr_opt(v, &rq->local))
				return -1;
		} else if (!strcmp(o, "--peer")) {
			if (addr_opt(v, &rq->peer))
				return -1;
		} else if (!strcmp(o, "--gateway")) {
			if (addr_opt(v, &rq->gateway))
				return -1;
		} else if (!strcmp(o, "--plen")) {
			rq->local_plen = (uint32_t)atoi(v);
		} else if (!strcmp(o, "--size")) {
			*size = (size_t)atol(v);
			if (*size > sizeof *rq)
				*size = sizeof *rq;
		} else {
			size_t n = strlen(o) + 1;
			if (at + n > sizeof rq->args) {
				fprintf(stderr, "arguments too long\n");
				return -1;
			}
			memcpy(rq->args + at, o, n);
			at += n;
			rq->nargs++;
			continue;
		}
		i++;
	}
	return 0;
}

static void print_reply(const struct mho_reply *rp)
{
	char log[MHO_LOG_MAX + 1], *line, *save = NULL;

	printf("status=%d\nerr=%.*s\n", rp->status, (int)sizeof rp->err, rp->err);
	memcpy(log, rp->log, sizeof rp->log);
	log[sizeof rp->log] = 0;
	for (line = strtok_r(log, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		printf("log=%s\n", line + 1);
}

static int cmd_send(int argc, char **argv)
{
	static struct mho_request rq;
	static struct mho_reply rp;
	struct pollfd pfd = { .events = POLLIN };
	long long deadline;
	struct timespec ts;
	size_t size;
	int fd;

	if (argc < 1)
		return usage();
	if (build(argc - 1, argv + 1, &rq, &size))
		return 2;
	fd = steal_socket((pid_t)atoi(argv[0]));
	if (fd < 0)
		return 2;
	if (send(fd, &rq, size, MSG_NOSIGNAL) != (ssize_t)size) {
		fprintf(stderr, "send: %s\n", strerror(errno));
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + REPLY_WAIT_MS;
	pfd.fd = fd;
	for (;;) {
		long long now;
		ssize_t n;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) <= 0) {
			fprintf(stderr, "no answer from the helper in %d s\n", REPLY_WAIT_MS / 1000);
			return 3;
		}
		n = recv(fd, &rp, sizeof rp, 0);
		if (n <= 0) {
			fprintf(stderr, "recv: %s\n", n ? strerror(errno) : "connection closed");
			return 3;
		}
		if ((size_t)n == sizeof rp && rp.seq == rq.seq)
			break;
	}
	print_reply(&rp);
	return 0;
}

/* ---- readable ---- */

static int drop_ptrace(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct cap[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &hdr, cap) < 0)
		return -1;
	cap[CAP_TO_INDEX(CAP_SYS_PTRACE)].effective &= ~CAP_TO_MASK(CAP_SYS_PTRACE);
	cap[CAP_TO_INDEX(CAP_SYS_PTRACE)].permitted &= ~CAP_TO_MASK(CAP_SYS_PTRACE);
	cap[CAP_TO_INDEX(CAP_SYS_PTRACE)].inheritable &= ~CAP_TO_MASK(CAP_SYS_PTRACE);
	return (int)syscall(SYS_capset, &hdr, cap);
}

/* 0 when /proc/PID/FILE opens for reading (where "mem" checks ptrace access), else errno. */
static int try_open(pid_t pid, const char *file)
{
	char path[128];
	int fd;

	snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, file);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno;
	close(fd);
	return 0;
}

static int cmd_opens(int argc, char **argv)
{
	pid_t control;
	int e;

	if (argc != 2)
		return usage();
	if (drop_ptrace() < 0) {
		fprintf(stderr, "capset: %s\n", strerror(errno));
		return 2;
	}
	control = fork();
	if (control == 0) {
		pause();
		_exit(0);
	}
	e = control < 0 ? errno : try_open(control, argv[1]);
	if (control > 0) {
		kill(control, SIGKILL);
		waitpid(control, NULL, 0);
	}
	if (e) {
		printf("control failed: a dumpable process of ours refuses too: %s\n", strerror(e));
		return 3;
	}
	e = try_open((pid_t)atoi(argv[0]), argv[1]);
	if (!e) {
		printf("opens\n");
		return 0;
	}
	printf("refused: %s\n", strerror(e));
	return 1;
}

/* ---- syslog ---- */

static int cmd_syslog(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct pollfd pfd = { .events = POLLIN };
	char msg[2048];
	time_t end;
	int secs;

	if (argc != 2 || strlen(argv[0]) >= sizeof sa.sun_path)
		return usage();
	secs = atoi(argv[1]);
	if (secs <= 0 || secs > 600)
		secs = 600;
	strcpy(sa.sun_path, argv[0]);
	pfd.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	unlink(argv[0]);
	if (pfd.fd < 0 || bind(pfd.fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		fprintf(stderr, "bind %s: %s\n", argv[0], strerror(errno));
		return 2;
	}
	chmod(argv[0], 0666);
	setvbuf(stdout, NULL, _IOLBF, 0);
	printf("ready\n");
	end = time(NULL) + secs;
	while (time(NULL) < end) {
		ssize_t n;
		if (poll(&pfd, 1, 1000) <= 0)
			continue;
		n = recv(pfd.fd, msg, sizeof msg - 1, 0);
		if (n <= 0)
			continue;
		msg[n] = 0;
		msg[strcspn(msg, "\n")] = 0;
		printf("%s\n", msg);
	}
	unlink(argv[0]);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (!strcmp(argv[1], "send"))
		return cmd_send(argc - 2, argv + 2);
	if (!strcmp(argv[1], "opens"))
		return cmd_opens(argc - 2, argv + 2);
	if (!strcmp(argv[1], "syslog"))
		return cmd_syslog(argc - 2, argv + 2);
	return usage();
}
