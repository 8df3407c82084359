/* The OpenVPN plugin's root helper (the pattern of OpenVPN's down-root plugin).
 *
 * Forked by the plugin at the first event, while OpenVPN is still root.  It
 * closes every other descriptor, leaves the terminal, and serves fixed-size
 * requests from its parent over a SOCK_SEQPACKET socketpair: each one is
 * parsed again with the core's parser and carried out with the core.  It
 * never execs anything.  When the parent goes (EOF on the socket, or
 * PR_SET_PDEATHSIG), it withdraws the link it registered, if any, and exits.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "helper.h"

static int fail(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, len, fmt, ap);
	va_end(ap);
	return -1;
}

int mho_ifname_ok(const char *s)
{
	size_t n = strnlen(s, IF_NAMESIZE);

	if (n == 0 || n >= IF_NAMESIZE || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '_' || *s == '.' || *s == '-'))
			return 0;
	return 1;
}

int mho_args_parse(const char *args, size_t size, uint32_t nargs,
		   struct mh_config *c, char *err, size_t errlen)
{
	return mh_config_from_list(c, args, size, nargs, err, errlen);
}

/* Everything about a request that can be checked without the kernel. */
static int request_check(const struct mho_request *rq, struct mh_config *c,
			 char *err, size_t errlen)
{
	char why[MH_ERR_MAX];

	if (rq->magic != MHO_MAGIC)
		return fail(err, errlen, "request: bad magic");
	if (rq->op != MHO_UP && rq->op != MHO_DOWN)
		return fail(err, errlen, "request: unknown operation %u", rq->op);
	if (rq->nargs > MHO_ARGS_MAX / 2)
		return fail(err, errlen, "request: too many arguments");
	if (!mho_ifname_ok(rq->ifname))
		return fail(err, errlen, "request: bad interface name");
	if (mho_args_parse(rq->args, sizeof rq->args, rq->nargs, c, why, sizeof why))
		return fail(err, errlen, "%s", why);
	if (!c->name_set)
		return fail(err, errlen, "request: no link name");
	if (rq->op == MHO_UP) {
		if (mh_addr_check(rq->local, "local address", err, errlen))
			return -1;
		if (rq->peer && mh_addr_check(rq->peer, "peer address", err, errlen))
			return -1;
		if (rq->gateway && mh_addr_check(rq->gateway, "gateway", err, errlen))
			return -1;
	}
	return 0;
}

int mho_execute(const struct mho_request *rq, const char *bound,
		char *err, size_t errlen)
{
	struct mh_link link;

	memset(&link, 0, sizeof link);
	if (request_check(rq, &link.cfg, err, errlen))
		return -1;
	if (bound && strcmp(link.cfg.name, bound))
		return fail(err, errlen, "the root helper serves link '%s', not '%s' (restart OpenVPN to rename the link)",
			    bound, link.cfg.name);
	if (rq->op == MHO_DOWN)
		return mh_link_down(link.cfg.name, rq->ifname, err, errlen);
	memcpy(link.ifname, rq->ifname, sizeof link.ifname);
	link.local = rq->local;
	link.peer = rq->peer;
	link.gateway = rq->gateway;
	return mh_link_up(&link, err, errlen);
}

/* ---- the helper process ---- */

static struct mho_reply *reply_now;     /* where the core's log lines go */
static volatile sig_atomic_t parent_gone;

static void helper_log(enum mh_log_level lvl, const char *msg)
{
	char *log, *p;
	size_t used, n;

	if (!reply_now)
		return;
	log = reply_now->log;
	used = strnlen(log, sizeof reply_now->log);
	n = strlen(msg);
	if (used + n + 3 > sizeof reply_now->log)
		return;
	p = log + used;
	*p++ = (char)('0' + lvl);
	memcpy(p, msg, n);
	for (size_t i = 0; i < n; i++)
		if (p[i] == '\n')
			p[i] = ' ';
	p[n] = '\n';
	p[n + 1] = 0;
}

static void on_parent_death(int sig)
{
	(void)sig;
	parent_gone = 1;
}

/* Only the socket survives, as fd 3; stdio is /dev/null; no terminal. */
static int helper_isolate(int sock)
{
	struct sigaction sa;
	sigset_t none;
	int null, sig;
	static const int ignored[] = { SIGINT, SIGHUP, SIGTERM, SIGUSR1, SIGPIPE, SIGALRM };

	if (sock != 3) {
		if (dup2(sock, 3) < 0)
			return -1;
		close(sock);
	}
	if (close_range(4, ~0U, 0) < 0)
		for (int fd = 4; fd < 4096; fd++)
			close(fd);
	null = open("/dev/null", O_RDWR);
	if (null < 0)
		return -1;
	for (int fd = 0; fd <= 2; fd++)
		if (null != fd)
			dup2(null, fd);
	if (null > 2)
		close(null);

	/* OpenVPN's own handlers were inherited: the helper must outlive
	 * Ctrl-C, SIGHUP and a group SIGTERM, to serve the down events. */
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	for (size_t i = 0; i < sizeof ignored / sizeof *ignored; i++)
		sigaction(ignored[i], &sa, NULL);
	sa.sa_handler = on_parent_death;
	sigaction(SIGUSR2, &sa, NULL);
	for (sig = SIGRTMIN; sig <= SIGRTMAX; sig++)
		signal(sig, SIG_DFL);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	return 0;
}

static void helper_serve(pid_t parent, const char *name) __attribute__((noreturn));

static void helper_serve(pid_t parent, const char *name)
{
	static struct mho_request rq;
	static struct mho_reply rp;
	char up_ifname[IF_NAMESIZE] = "", err[MH_ERR_MAX];
	union { struct mho_request rq; char extra[sizeof(struct mho_request) + 1]; } buf;

	prctl(PR_SET_NAME, "mh-ovpn-root", 0, 0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0) < 0 || getppid() != parent)
		parent_gone = 1;
	mh_set_logger(helper_log);

	while (!parent_gone) {
		ssize_t n = recv(3, &buf, sizeof buf, 0);

		if (n == 0)
			break;                  /* the parent closed its end: it is gone */
		if (n < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		memset(&rp, 0, sizeof rp);
		rp.magic = MHO_MAGIC;
		reply_now = &rp;
		if ((size_t)n != sizeof rq) {
			/* a malformed request still gets an answer, so the parent never hangs */
			if ((size_t)n >= offsetof(struct mho_request, op))
				memcpy(&rp.seq, &buf.rq.seq, sizeof rp.seq);
			rp.status = -1;
			snprintf(rp.err, sizeof rp.err, "request: wrong size %zd (want %zu)", n, sizeof rq);
		} else {
			memcpy(&rq, &buf.rq, sizeof rq);
			rp.seq = rq.seq;
			rp.status = mho_execute(&rq, name, rp.err, sizeof rp.err) ? -1 : 0;
			if (rp.status == 0 && rq.op == MHO_UP)
				memcpy(up_ifname, rq.ifname, sizeof up_ifname);
			else if (rp.status == 0 && rq.op == MHO_DOWN)
				up_ifname[0] = 0;
		}
		reply_now = NULL;
		if (send(3, &rp, sizeof rp, MSG_NOSIGNAL) < 0 && errno != EINTR)
			break;
	}
	/* OpenVPN went without withdrawing (killed): do not leave the link behind.
	 * mh_link_down with the interface is a no-op if someone else owns it now. */
	if (up_ifname[0])
		mh_link_down(name, up_ifname, err, sizeof err);
	_exit(0);
}

int mho_helper_start(struct mho_helper *h, const char *name, int daemonized,
		     char *err, size_t errlen)
{
	int sv[2];
	pid_t parent = getpid(), pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
		return fail(err, errlen, "root helper: socketpair: %s", strerror(errno));
	pid = fork();
	if (pid < 0) {
		int e = errno;
		close(sv[0]);
		close(sv[1]);
		return fail(err, errlen, "root helper: fork: %s", strerror(e));
	}
	if (pid == 0) {
		int sock = sv[1];

		close(sv[0]);
		if (helper_isolate(sock) < 0)
			_exit(1);
		/* Always a session of its own: a terminal's signals and hangup
		 * (and, with daemon=1, the daemon's lack of one) do not reach it. */
		(void)daemonized;
		setsid();
		if (chdir("/") < 0)
			_exit(1);
		helper_serve(parent, name);
	}
	close(sv[1]);
	h->fd = sv[0];
	h->pid = pid;
	h->seq = 0;
	snprintf(h->name, sizeof h->name, "%s", name);
	return 0;
}

void mho_helper_drop(struct mho_helper *h)
{
	if (h->fd >= 0)
		close(h->fd);
	h->fd = -1;
	if (h->pid > 0)
		waitpid(h->pid, NULL, WNOHANG);
	h->pid = 0;
}

static void relay_log(const char *log, size_t size, mho_log_fn out)
{
	char line[MHO_LOG_MAX];
	size_t at = 0, n = strnlen(log, size);

	while (at < n) {
		const char *nl = memchr(log + at, '\n', n - at);
		size_t len = nl ? (size_t)(nl - (log + at)) : n - at;
		int lvl = log[at] - '0';

		if (len > 1 && lvl >= MH_LOG_ERR && lvl <= MH_LOG_DEBUG) {
			memcpy(line, log + at + 1, len - 1);
			line[len - 1] = 0;
			out((enum mh_log_level)lvl, line);
		}
		at += len + 1;
	}
}

int mho_helper_call(struct mho_helper *h, struct mho_request *req,
		    mho_log_fn log, int *dead, char *err, size_t errlen)
{
	static struct mho_reply rp;
	struct pollfd pfd = { .fd = h->fd, .events = POLLIN };
	ssize_t n;

	*dead = 0;
	req->magic = MHO_MAGIC;
	req->seq = ++h->seq;
	if (send(h->fd, req, sizeof *req, MSG_NOSIGNAL) != (ssize_t)sizeof *req)
		goto gone;
	for (;;) {
		int r = poll(&pfd, 1, MHO_TIMEOUT_MS);

		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return fail(err, errlen, "root helper (pid %d) did not answer in %d s",
				    (int)h->pid, MHO_TIMEOUT_MS / 1000);
		if (r < 0)
			goto gone;
		n = recv(h->fd, &rp, sizeof rp, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0)
			errno = 0;
		if (n <= 0)
			goto gone;
		if ((size_t)n != sizeof rp || rp.magic != MHO_MAGIC)
			return fail(err, errlen, "root helper: malformed reply");
		if (rp.seq == req->seq)
			break;
		/* an answer to a request that timed out earlier: skip it */
	}
	relay_log(rp.log, sizeof rp.log, log);
	if (rp.status) {
		rp.err[sizeof rp.err - 1] = 0;
		return fail(err, errlen, "%s", rp.err);
	}
	return 0;
gone:
	{
		int e = errno;
		*dead = 1;
		fail(err, errlen, "root helper (pid %d) is gone: %s", (int)h->pid,
		     e ? strerror(e) : "connection closed");
		mho_helper_drop(h);
		return -1;
	}
}
