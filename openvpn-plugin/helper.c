/* The OpenVPN plugin's root helper (the pattern of OpenVPN's down-root plugin).
 *
 * Forked by the plugin at the first event, while OpenVPN is still root.  It
 * closes every other descriptor, leaves the terminal, keeps only
 * CAP_NET_ADMIN and CAP_NET_RAW (no new privileges, not dumpable), and
 * serves fixed-size requests from its parent over a SOCK_SEQPACKET
 * socketpair.  The parent runs as nobody afterwards and may be compromised:
 * a request is carried out only for the interface the helper was started
 * for (a tun/tap device) and with the very arguments it was started with,
 * parsed once at the start; anything else is refused, logged to syslog and
 * answered with the reason.  It never execs anything.  When the parent goes
 * (EOF on the socket, or PR_SET_PDEATHSIG), it withdraws the link it
 * registered, if any, and exits.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/capability.h>
#include <linux/ethtool.h>
#include <linux/sockios.h>

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

int mho_tunnel_device(const char *ifname, char *err, size_t errlen)
{
	static const char *const drivers[] = { "tun", "ovpn-dco", "ovpn" };
	struct ethtool_drvinfo di = { .cmd = ETHTOOL_GDRVINFO };
	struct ifreq ifr;
	int fd, r, e;

	memset(&ifr, 0, sizeof ifr);
	snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
	ifr.ifr_data = (void *)&di;
	/* the driver, asked of the device itself (no /sys: it may show another namespace) */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(err, errlen, "cannot check interface %s: socket: %s", ifname, strerror(errno));
	r = ioctl(fd, SIOCETHTOOL, &ifr);
	e = errno;
	close(fd);
	if (r < 0 && e == ENODEV)
		return fail(err, errlen, "interface %s does not exist", ifname);
	if (r < 0)
		return fail(err, errlen, "cannot ask interface %s for its driver: %s", ifname, strerror(e));
	di.driver[sizeof di.driver - 1] = 0;
	for (size_t i = 0; i < sizeof drivers / sizeof *drivers; i++)
		if (!strcmp(di.driver, drivers[i]))
			return 0;
	return fail(err, errlen, "interface %s is not a tun or tap device (its driver is '%s')",
		    ifname, di.driver);
}

int mho_subnet_check(uint32_t local, unsigned plen, uint32_t gateway, char *err, size_t errlen)
{
	uint32_t mask, g = ntohl(gateway), l = ntohl(local);

	if (plen == 0) {
		if (gateway)
			return fail(err, errlen, "a gateway needs the tunnel's subnet (point to point has none)");
		return 0;
	}
	if (plen < MHO_PLEN_MIN || plen > MHO_PLEN_MAX)
		return fail(err, errlen, "a tunnel subnet of /%u is not accepted (/%d../%d: OpenVPN's own --server "
			    "refuses wider ones, and the whole prefix is routed to the tunnel)",
			    plen, MHO_PLEN_MIN, MHO_PLEN_MAX);
	mask = 0xffffffffu << (32 - plen);
	if (gateway && ((g & mask) != (l & mask) || g == l || (g & ~mask) == 0 || (g | mask) == 0xffffffffu)) {
		char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &gateway, a, sizeof a);
		inet_ntop(AF_INET, &local, b, sizeof b);
		return fail(err, errlen, "gateway %s is not another host in %s/%u", a, b, plen);
	}
	return 0;
}

/* Everything about a request that can be checked without the kernel or a binding. */
static int request_check(const struct mho_request *rq, char *err, size_t errlen)
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
	if (rq->op != MHO_UP)
		return 0;
	if (mh_addr_check(rq->local, "local address", err, errlen))
		return -1;
	if (rq->peer && mh_addr_check(rq->peer, "peer address", err, errlen))
		return -1;
	if (rq->gateway && mh_addr_check(rq->gateway, "gateway", err, errlen))
		return -1;
	if (mho_subnet_check(rq->local, rq->local_plen, rq->gateway, why, sizeof why))
		return fail(err, errlen, "request: %s", why);
	return 0;
}

/* The I-th string of a NUL-separated list of N in BUF (NULL past the end). */
static const char *list_at(const char *buf, uint32_t n, uint32_t i)
{
	size_t at = 0;

	for (uint32_t k = 0; k < n && at < MHO_ARGS_MAX; k++) {
		size_t len = strnlen(buf + at, MHO_ARGS_MAX - at);
		if (at + len >= MHO_ARGS_MAX)
			return NULL;
		if (k == i)
			return buf + at;
		at += len + 1;
	}
	return NULL;
}

/* Say how REQ's arguments differ from BOUND's (the first difference). */
static void args_diff(const struct mho_request *rq, const struct mho_bound *b, char *out, size_t len)
{
	uint32_t n = rq->nargs > b->nargs ? rq->nargs : b->nargs;

	for (uint32_t i = 0; i < n; i++) {
		const char *have = list_at(b->args, b->nargs, i), *got = list_at(rq->args, rq->nargs, i);
		if (have && got && !strcmp(have, got))
			continue;
		if (have && got)
			snprintf(out, len, "'%.60s' instead of '%.60s'", got, have);
		else if (got)
			snprintf(out, len, "an added '%.60s'", got);
		else if (have)
			snprintf(out, len, "'%.60s' left out", have);
		else
			snprintf(out, len, "a malformed argument list");
		return;
	}
	snprintf(out, len, "bytes after the last argument");
}

/* Is REQ one the helper bound to B may carry out? */
static int bound_check(const struct mho_request *rq, const struct mho_bound *b,
		       char *err, size_t errlen)
{
	char why[MH_ERR_MAX];

	if (rq->nargs != b->nargs || memcmp(rq->args, b->args, sizeof b->args)) {
		args_diff(rq, b, why, sizeof why);
		return fail(err, errlen, "the root helper of link '%s' keeps the arguments OpenVPN started with, "
			    "and this request has %s: a configuration change needs an OpenVPN restart",
			    b->cfg.name, why);
	}
	if (strncmp(rq->ifname, b->ifname, sizeof b->ifname))
		return fail(err, errlen, "the root helper of link '%s' serves interface %s, not %.*s: "
			    "a new device needs an OpenVPN restart", b->cfg.name, b->ifname,
			    IF_NAMESIZE, rq->ifname);
	if (rq->op == MHO_UP && mho_tunnel_device(b->ifname, why, sizeof why))
		return fail(err, errlen, "the root helper of link '%s' refuses: %s", b->cfg.name, why);
	return 0;
}

int mho_bound_init(struct mho_bound *b, const struct mho_request *first, char *err, size_t errlen)
{
	char why[MH_ERR_MAX];

	memset(b, 0, sizeof *b);
	if (!mho_ifname_ok(first->ifname))
		return fail(err, errlen, "bad interface name");
	if (first->nargs > MHO_ARGS_MAX / 2 ||
	    mho_args_parse(first->args, sizeof first->args, first->nargs, &b->cfg, why, sizeof why))
		return fail(err, errlen, "%s", first->nargs > MHO_ARGS_MAX / 2 ? "too many arguments" : why);
	if (!b->cfg.name_set)
		return fail(err, errlen, "no link name");
	if (mho_tunnel_device(first->ifname, err, errlen))
		return -1;
	memcpy(b->ifname, first->ifname, sizeof b->ifname);
	memcpy(b->args, first->args, sizeof b->args);
	b->nargs = first->nargs;
	return 0;
}

/* Check RQ (against B, when bound) and fill LINK from it: 0, or -1 when
 * refused. */
static int request_accept(const struct mho_request *rq, const struct mho_bound *b,
			  struct mh_link *link, char *err, size_t errlen)
{
	memset(link, 0, sizeof *link);
	if (request_check(rq, err, errlen))
		return -1;
	if (b) {
		if (bound_check(rq, b, err, errlen))
			return -1;
		link->cfg = b->cfg;     /* what was parsed at the start, not the request */
	} else if (mho_args_parse(rq->args, sizeof rq->args, rq->nargs, &link->cfg, err, errlen)) {
		return -1;
	}
	if (!link->cfg.name_set)
		return fail(err, errlen, "request: no link name");
	memcpy(link->ifname, rq->ifname, sizeof link->ifname);
	link->ifname[IF_NAMESIZE - 1] = 0;
	if (rq->op == MHO_UP) {
		link->local = rq->local;
		link->peer = rq->peer;
		link->gateway = rq->gateway;
		link->local_plen = (uint8_t)rq->local_plen;
	}
	return 0;
}

static int carry_out(const struct mho_request *rq, struct mh_link *link, char *err, size_t errlen)
{
	if (rq->op == MHO_DOWN)
		return mh_link_down(link->cfg.name, link->ifname, err, errlen);
	return mh_link_up(link, err, errlen);
}

int mho_execute(const struct mho_request *rq, const struct mho_bound *b,
		char *err, size_t errlen)
{
	struct mh_link link;

	if (request_accept(rq, b, &link, err, errlen))
		return -1;
	return carry_out(rq, &link, err, errlen);
}

/* ---- the helper process ---- */

static struct mho_reply *reply_now;     /* where the core's log lines go */
static volatile sig_atomic_t parent_gone;

/* A line of the core outside any request (upstream tracking's): to syslog,
 * and to OpenVPN's own log (its stdout, kept as fd 1: a --log file, the
 * journal under systemd, or the terminal), with OpenVPN's timestamp form. */
static void log_unsolicited(enum mh_log_level lvl, const char *msg)
{
	static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG };
	char line[MH_ERR_MAX + 64], when[32];
	time_t now = time(NULL);
	struct tm tm;
	int n;

	syslog(prio[lvl], "%s", msg);
	if (lvl == MH_LOG_DEBUG || !localtime_r(&now, &tm) ||
	    !strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm))
		return;
	n = snprintf(line, sizeof line, "%s multihome: %s\n", when, msg);
	if (n > 0)
		(void)!write(1, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
}

static void helper_log(enum mh_log_level lvl, const char *msg)
{
	char *log, *p;
	size_t used, n;

	if (!reply_now) {
		log_unsolicited(lvl, msg);
		return;
	}
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

/* Close every descriptor from FIRST on. */
static void close_from(int first)
{
	long max;

	if (close_range((unsigned)first, ~0U, 0) == 0)
		return;
	max = sysconf(_SC_OPEN_MAX);    /* kernels before 5.9 */
	if (max < 0 || max > INT_MAX)
		max = INT_MAX;
	for (long fd = first; fd < max; fd++)
		close((int)fd);
}

/* Only the socket survives, as fd 3, and OpenVPN's log (its stdout) as
 * fd 1; stdin and stderr are /dev/null. */
static int helper_isolate(int sock)
{
	struct sigaction sa;
	sigset_t none;
	int null, sig;
	static const int ignored[] = { SIGINT, SIGHUP, SIGTERM, SIGUSR1, SIGPIPE, SIGALRM };

	closelog();             /* OpenVPN's syslog socket, if it had one: before fds move */
	if (sock != 3) {
		if (dup2(sock, 3) < 0)
			return -1;
		close(sock);
	}
	close_from(4);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0)
		return -1;
	for (int fd = 0; fd <= 2; fd++)
		if (null != fd && (fd != 1 || fcntl(1, F_GETFD) < 0))
			dup2(null, fd);
	if (null > 2)
		close(null);
	/* refusals are logged where the unprivileged OpenVPN cannot take them back */
	openlog("multihome-openvpn", LOG_PID | LOG_NDELAY, LOG_DAEMON);

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

/* What the core needs and nothing else: netlink and nftables
 * (CAP_NET_ADMIN), libiptc's raw socket and the ICMP probes of upstream
 * tracking (CAP_NET_RAW).  The registry and the xtables lock are files of
 * root's own (uid 0 stays): no DAC override is needed. */
static const int kept_caps[] = { CAP_NET_ADMIN, CAP_NET_RAW };

static int helper_harden(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct cap[_LINUX_CAPABILITY_U32S_3];
	uint64_t keep = 0, have;
	int bset_kept = 0;

	for (size_t i = 0; i < sizeof kept_caps / sizeof *kept_caps; i++)
		keep |= 1ULL << kept_caps[i];
	/* the bounding set first (it takes CAP_SETPCAP, which a systemd unit
	 * may withhold: then NO_NEW_PRIVS alone keeps an exec from gaining) */
	for (int c = 0; prctl(PR_CAPBSET_READ, c, 0, 0, 0) >= 0; c++)
		if (!(keep >> c & 1) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0) {
			if (errno != EPERM)
				return -1;
			bset_kept = 1;
		}
	if (bset_kept)
		syslog(LOG_WARNING, "root helper: no CAP_SETPCAP, the capability bounding set is kept");
	prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0);  /* EINVAL before 4.3: none */
	if (syscall(SYS_capget, &hdr, cap) < 0)
		return -1;
	have = cap[0].permitted | (uint64_t)cap[1].permitted << 32;
	keep &= have;
	memset(cap, 0, sizeof cap);
	cap[0].effective = cap[0].permitted = (uint32_t)keep;
	cap[1].effective = cap[1].permitted = (uint32_t)(keep >> 32);
	if (syscall(SYS_capset, &hdr, cap) < 0)
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	/* it holds a copy of OpenVPN's memory, keys included: no core, no ptrace by uid 0 alone */
	return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
}

/* One request: the reply in RP; refusals are logged here as well.  LINK:
 * the link as the event left it. */
static void serve_one(const struct mho_bound *b, const struct mho_request *rq, struct mho_reply *rp,
		      struct mh_link *link)
{
	rp->seq = rq->seq;
	if (request_accept(rq, b, link, rp->err, sizeof rp->err)) {
		syslog(LOG_WARNING, "link '%s': refused a request from OpenVPN (pid %d): %s",
		       b->cfg.name, (int)getppid(), rp->err);
		rp->status = -1;
		return;
	}
	rp->status = carry_out(rq, link, rp->err, sizeof rp->err) ? -1 : 0;
}

/* ---- upstream tracking: the helper is one process per link, its loop
 * drives the prober (OpenVPN gives plugins no event loop) ---- */

static struct mh_tracker *tracker;

static void track_stop(void)
{
	mh_track_stop(tracker);
	tracker = NULL;
}

/* After every UP (a SIGHUP's reconnect too): tracking starts afresh. */
static void track_start(const struct mh_link *link)
{
	char err[MH_ERR_MAX];

	track_stop();
	tracker = mh_track_start(link, err, sizeof err);
	if (!tracker && err[0])
		mh_log(MH_LOG_ERR, "%s; the link is not tracked", err);
}

/* Wait for a request, ticking the tracker meanwhile: 1 readable, 0 not
 * (parent gone or an error: stop). */
static int wait_request(void)
{
	for (;;) {
		struct pollfd pfd = { .fd = 3, .events = POLLIN };
		unsigned next_ms = 0;
		int r;

		if (parent_gone)
			return 0;
		if (tracker)
			mh_track_tick(tracker, &next_ms);
		r = poll(&pfd, 1, tracker ? (int)next_ms : -1);
		if (r > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			return 0;
	}
}

static void helper_serve(pid_t parent, const struct mho_bound *b) __attribute__((noreturn));

static void helper_serve(pid_t parent, const struct mho_bound *b)
{
	static struct mho_request rq;
	static struct mho_reply rp;
	char err[MH_ERR_MAX];
	int registered = 0;
	union { struct mho_request rq; char extra[sizeof(struct mho_request) + 1]; } buf;

	prctl(PR_SET_NAME, "mh-ovpn-root", 0, 0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGUSR2, 0, 0, 0) < 0 || getppid() != parent)
		parent_gone = 1;
	mh_set_logger(helper_log);

	while (wait_request()) {
		struct mh_link link;
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
			syslog(LOG_WARNING, "link '%s': refused a request from OpenVPN (pid %d): %s",
			       b->cfg.name, (int)getppid(), rp.err);
		} else {
			memcpy(&rq, &buf.rq, sizeof rq);
			serve_one(b, &rq, &rp, &link);
			if (rp.status == 0)
				registered = rq.op == MHO_UP;
			if (rp.status == 0 && rq.op == MHO_UP)
				track_start(&link);
			else if (rp.status == 0)
				track_stop();
		}
		reply_now = NULL;
		if (send(3, &rp, sizeof rp, MSG_NOSIGNAL) < 0 && errno != EINTR)
			break;
	}
	/* OpenVPN went without withdrawing (killed): do not leave the link behind.
	 * mh_link_down with the interface is a no-op if someone else owns it now. */
	track_stop();
	if (registered)
		mh_link_down(b->cfg.name, b->ifname, err, sizeof err);
	_exit(0);
}

int mho_helper_start(struct mho_helper *h, const struct mho_request *first, int daemonized,
		     char *err, size_t errlen)
{
	static struct mho_bound bound;
	char why[MH_ERR_MAX];
	int sv[2];
	pid_t parent = getpid(), pid;

	if (mho_bound_init(&bound, first, why, sizeof why))
		return fail(err, errlen, "root helper not started: %s", why);
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
		if (helper_harden() < 0) {
			syslog(LOG_ERR, "root helper: cannot drop its privileges: %m");
			_exit(1);
		}
		helper_serve(parent, &bound);
	}
	close(sv[1]);
	h->fd = sv[0];
	h->pid = pid;
	h->seq = 0;
	snprintf(h->name, sizeof h->name, "%s", bound.cfg.name);
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
