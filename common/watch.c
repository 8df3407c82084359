/* Detached helpers of the core: the conntrack work of an event and the
 * watcher that withdraws a link when its pppd is gone.
 *
 * Both are grandchildren of the host process (pppd, OpenVPN's root helper,
 * multihomectl): the intermediate child is reaped at once, so the host never
 * sees a child of ours.  Nothing is exec'd, so a grandchild holds a copy of
 * the host's memory; what it must not hold is the host's world: its
 * descriptors (pppd's /dev/ppp and tty keep the unit alive, its log file),
 * its signal handlers and mask, its session (a terminal's Ctrl-C), and the
 * real uid of the user who started a setuid pppd (who could signal it).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <libmnl/libmnl.h>
#include <linux/rtnetlink.h>

#include "internal.h"
#include "watch.h"

#define MAX_INHERITED 4096      /* descriptors replaced from /proc/self/fd */

static void log_syslog(enum mh_log_level lvl, const char *msg)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };

	syslog(prio[lvl], "%s", msg);
}

static void reset_signals(void)
{
	struct sigaction dfl;
	sigset_t none;
	int sig;

	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &dfl, NULL);     /* SIGKILL, SIGSTOP: EINVAL, harmless */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
}

static int open_fds(int *fds, int max)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) && n < max) {
		char *end;
		long fd = strtol(e->d_name, &end, 10);
		if (e->d_name[0] != '.' && !*end && fd != dirfd(d))
			fds[n++] = (int)fd;
	}
	closedir(d);
	return n;
}

static int kept(int fd, const int *keep, int nkeep)
{
	int i;

	for (i = 0; i < nkeep; i++)
		if (keep[i] == fd)
			return 1;
	return 0;
}

/* Every inherited descriptor but KEEP now refers to /dev/null: the files are
 * released, and a number the host's code still holds in memory (a kept
 * socket, syslog's, pppd's log file) can never alias a descriptor opened
 * here.  Without /proc: every number up to the limit is tried. */
static void replace_descriptors(const int *keep, int nkeep)
{
	static int fds[MAX_INHERITED];
	int null = open("/dev/null", O_RDWR | O_CLOEXEC), n, i;
	long max;

	if (null < 0)
		_exit(1);
	n = open_fds(fds, MAX_INHERITED);
	if (n >= 0) {
		for (i = 0; i < n; i++)
			if (fds[i] != null && !kept(fds[i], keep, nkeep))
				dup2(null, fds[i]);
	} else {
		max = sysconf(_SC_OPEN_MAX);
		for (i = 0; i < (max > 0 ? max : 65536); i++)
			if (i != null && !kept(i, keep, nkeep) && fcntl(i, F_GETFD) >= 0)
				dup2(null, i);
	}
	for (i = 0; i <= 2; i++)
		if (!kept(i, keep, nkeep))
			dup2(null, i);
	if (null > 2 && !kept(null, keep, nkeep))
		close(null);
}

static void detach(const int *keep, int nkeep)
{
	reset_signals();
	setsid();
	/* the real and saved uid of a setuid pppd are the user's: a signal of
	 * theirs must not stop the withdrawal (fails harmlessly when not root) */
	if (setresgid(0, 0, 0) < 0 || setresuid(0, 0, 0) < 0)
		errno = 0;
	replace_descriptors(keep, nkeep);
	if (chdir("/") < 0)
		errno = 0;
	closelog();
	openlog("multihome", LOG_PID, LOG_DAEMON);
	mh_set_logger(log_syslog);
}

int mh_run_detached(void (*fn)(void *arg), void *arg, const int *keep, int nkeep)
{
	pid_t pid = fork();

	if (pid < 0)
		return -1;
	if (pid == 0) {
		if (fork() == 0) {
			detach(keep, nkeep);
			fn(arg);
		}
		_exit(0);
	}
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	return 0;
}

/* ---- the watcher ---- */

#define UNIT_WAIT_MS 2000        /* a ppp unit dies with its pppd: wait this long */
#define UNIT_POLL_MS 20

struct watch_link {
	char name[MH_NAME_MAX + 1];
	char ifname[IF_NAMESIZE];       /* "": nothing registered */
	int ifindex;
};

/* One message from the host: the link's interface now, or the conntrack
 * work of an event (run by the watcher, so pppd forks nothing per event). */
struct watch_msg {
	enum { WATCH_LINK = 1, WATCH_CT } kind;
	union {
		struct watch_link link;
		struct mh_ct_job ct;
	} u;
};

struct watch_arg {
	struct watch_link now;
	int sock;                       /* the watcher's end of the pair */
	int pidfd;                      /* the host process, or -1 */
};

static int watch_fd = -1;       /* our end; the watcher holds the other */

static void watch_take(struct watch_arg *w, struct watch_msg *m)
{
	if (m->kind == WATCH_LINK) {
		w->now = m->u.link;
		w->now.name[sizeof w->now.name - 1] = 0;
		w->now.ifname[sizeof w->now.ifname - 1] = 0;
	} else if (m->kind == WATCH_CT) {
		m->u.ct.home = m->u.ct.home ? &m->u.ct.home_copy : NULL;
		if (m->u.ct.nup <= MH_MAX_LINKS && m->u.ct.ngone <= MH_MAX_LINKS)
			mh_ct_run(&m->u.ct);
	}
}

/* Take the messages waiting (all of them once the host is gone); 0 at the
 * end of the stream. */
static int watch_read(struct watch_arg *w, int flags)
{
	static struct watch_msg m;
	ssize_t n;

	for (;;) {
		n = recv(w->sock, &m, sizeof m, flags);
		if (n == (ssize_t)sizeof m) {
			watch_take(w, &m);
			if (!(flags & MSG_DONTWAIT))
				return 1;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		return n < 0 && errno == EAGAIN ? 1 : 0;
	}
}

static int unit_index(const char *ifname)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), index = -1;

	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	if (fd >= 0 && ioctl(fd, SIOCGIFINDEX, &ifr) == 0)
		index = ifr.ifr_ifindex;
	else if (fd >= 0 && errno == ENODEV)
		index = 0;
	if (fd >= 0)
		close(fd);
	return index;
}

/* Milliseconds left until DEADLINE (CLOCK_MONOTONIC, us), at least 0. */
static int ms_left(long long deadline)
{
	long long left = deadline - mh_now_usec();

	return left > 0 ? (int)(left / 1000) : 0;
}

/* Does LINK's unit go (or become another) within UNIT_WAIT_MS? */
static int unit_goes(const struct watch_link *link)
{
	long long deadline = mh_now_usec() + UNIT_WAIT_MS * 1000LL;
	struct mnl_socket *nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
	char buf[8192];
	int index, gone = 0;

	/* subscribed before the first look: a removal in between is not missed */
	if (nl && mnl_socket_bind(nl, RTMGRP_LINK, MNL_SOCKET_AUTOPID) < 0) {
		mnl_socket_close(nl);
		nl = NULL;
	}
	while (!gone && ms_left(deadline)) {
		struct pollfd p = { .fd = nl ? mnl_socket_get_fd(nl) : -1, .events = POLLIN };
		index = unit_index(link->ifname);
		gone = index >= 0 && index != link->ifindex;
		if (!gone && poll(&p, 1, nl ? ms_left(deadline) : UNIT_POLL_MS) > 0 &&
		    recv(p.fd, buf, sizeof buf, MSG_DONTWAIT) < 0 && errno != EAGAIN && errno != ENOBUFS) {
			mnl_socket_close(nl);   /* the socket failed: look every UNIT_POLL_MS */
			nl = NULL;
		}
	}
	if (nl)
		mnl_socket_close(nl);
	return gone;
}

/* The host is gone and LINK was registered on its unit: once the unit is
 * gone too (the kernel removes it as the host's descriptors close), an event
 * prunes the link at once instead of whenever another link's next event
 * comes.  The prune, not a withdrawal by name, so a pppd that registered the
 * link again on a new unit in the meantime keeps it.  A unit that outlives
 * its host is left to the next event, as before. */
static void withdraw_when_unit_gone(const struct watch_link *link)
{
	char err[MH_ERR_MAX];

	if (!unit_goes(link))
		mh_log(MH_LOG_INFO, "%s: %s outlived the process that registered it; the link stays "
		       "registered until an event finds the interface gone", link->name, link->ifname);
	else if (mh_prune(err, sizeof err) < 0)
		mh_log(MH_LOG_ERR, "%s: its process and %s are gone; withdrawing: %s",
		       link->name, link->ifname, err);
}

/* Until the host is gone: its exit (the pidfd; also when a child that did
 * not exec still holds the host's end) or the end of the stream. */
static void watch_loop(void *arg)
{
	struct watch_arg *w = arg;
	struct pollfd p[2] = { { .fd = w->sock, .events = POLLIN }, { .fd = w->pidfd, .events = POLLIN } };

	prctl(PR_SET_NAME, "mh-watch", 0, 0, 0);
	for (;;) {
		if (poll(p, w->pidfd >= 0 ? 2 : 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (w->pidfd >= 0 && p[1].revents) {
			watch_read(w, MSG_DONTWAIT);    /* what it said before it went */
			break;
		}
		if (!watch_read(w, 0))
			break;
	}
	if (w->now.ifname[0])
		withdraw_when_unit_gone(&w->now);
	_exit(0);
}

static int pidfd_self(void)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, getpid(), 0);      /* close-on-exec */
#else
	return -1;
#endif
}

static void watch_start(const struct watch_link *m)
{
	struct watch_arg w = { .now = *m, .pidfd = pidfd_self() };
	int sv[2], keep[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0) {
		mh_log(MH_LOG_WARN, "%s: no watcher (socketpair: %s); if this process is killed, "
		       "the link stays registered until the next event", m->name, strerror(errno));
		goto out;
	}
	w.sock = keep[0] = sv[1];
	keep[1] = w.pidfd;
	if (mh_run_detached(watch_loop, &w, keep, w.pidfd >= 0 ? 2 : 1) < 0) {
		mh_log(MH_LOG_WARN, "%s: no watcher (fork: %s); if this process is killed, "
		       "the link stays registered until the next event", m->name, strerror(errno));
		close(sv[0]);
		close(sv[1]);
		goto out;
	}
	close(sv[1]);
	watch_fd = sv[0];
out:
	if (w.pidfd >= 0)
		close(w.pidfd);
}

static int watch_send(const struct watch_msg *m)
{
	return send(watch_fd, m, sizeof *m, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)sizeof *m ? 0 : -1;
}

void mh_watch(const char *name, const char *ifname)
{
	static struct watch_msg m;

	memset(&m, 0, sizeof m);
	m.kind = WATCH_LINK;
	snprintf(m.u.link.name, sizeof m.u.link.name, "%s", name);
	snprintf(m.u.link.ifname, sizeof m.u.link.ifname, "%s", ifname ? ifname : "");
	m.u.link.ifindex = m.u.link.ifname[0] ? (int)if_nametoindex(m.u.link.ifname) : 0;
	if (watch_fd >= 0) {
		if (watch_send(&m) == 0)
			return;
		if (errno == EAGAIN) {
			mh_log(MH_LOG_WARN, "%s: the watcher is not reading; it keeps watching %s",
			       name, ifname && *ifname ? "the old interface" : "the link");
			return;
		}
		close(watch_fd);        /* the watcher is gone (killed): start another */
		watch_fd = -1;
	}
	if (m.u.link.ifname[0])
		watch_start(&m.u.link);
}

int mh_watch_ct(const struct mh_ct_job *job)
{
	static struct watch_msg m;

	if (watch_fd < 0)
		return -1;
	m.kind = WATCH_CT;
	m.u.ct = *job;
	return watch_send(&m);
}
