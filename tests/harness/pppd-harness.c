/* mh-pppd-harness: a stand-in for pppd 2.4.x or 2.5.x (whichever headers it
 * is built against; see pppd-harness.h) that loads pppd plugins the way
 * pppd does and drives their notifiers from a script, so namespace tests can
 * run the real multihome.so without kernel PPP.
 *
 *   mh-pppd-harness --file PEERS [--plugin PATH] [--ifname IF]
 *                   [--local A] [--remote A] [--linkname N] [--ipparam S]
 *                   [--version V] [--uid N] [--opt WORD]... [--time]
 *                   [--strict] WORD...
 *
 * It exports the globals and functions a plugin links against, reads PEERS
 * with pppd's word syntax as a privileged file (as `pppd call` reads a peers
 * file), then the --opt words as pppd's command line, loads `plugin NAME`
 * with dlopen(RTLD_GLOBAL|RTLD_NOW) from /usr/lib/pppd/VERSION/ when the
 * name is bare, checks plugin_init and pppd_version as pppd does, calls
 * plugin_init, and hands plugin options to their parsers.  Options marked
 * OPT_PRIV are refused from unprivileged sources, with pppd's message.
 * --plugin PATH replaces a `plugin` line of the same base name (or, if the
 * file has none, is loaded before the file is read).
 *
 * --uid N plays a setuid-root pppd started by user N: real uid N, effective
 * uid 0 (so `privileged` is 0 and the --opt words are unprivileged), in a
 * mount namespace of its own with a tmpfs on /run (the plugin ignores such a
 * caller's MULTIHOME_RUNDIR and uses /run/multihome).
 * --linkname, --ipparam and --ifname set pppd's variables directly, as
 * root's options would.
 *
 * The script (WORDs, in order):
 *   up          set ouraddr/hisaddr from --local/--remote, phases up to
 *               RUNNING, then ip_up_notifier and ip_up_hook (as ipcp_up)
 *   down        ip_down_notifier and ip_down_hook (as ipcp_down), then
 *               phases TERMINATE, DISCONNECT, DEAD
 *   exit        exitnotify with 0, then exit 0 (as die(0)); ends the script
 *   wait        pppd's main loop until SIGTERM, SIGINT or SIGHUP (one that
 *               arrived earlier counts), then go on
 *   sleep MS    pppd's main loop for MS milliseconds (a signal cuts it short)
 *   repeat N W...  run the remaining words N times
 *   addr A      use A as the local address from the next `up` on
 * Phases INITIALIZE, ESTABLISH, AUTHENTICATE fire before the first word, as
 * pppd's start_link does; a reconnect (`up` after `down`) fires ESTABLISH
 * and AUTHENTICATE again.  Plugin timers (timeout() on 2.4, ppp_timeout()
 * on 2.5) fire only in that main loop, during wait and sleep, called from
 * the loop as pppd's calltimeout() does, never from a signal handler.
 * --time prints "event up|down|exit usec N" per notifier call (stdout).
 *
 * Exit status: 0; 1 on fatal() or a refused/unloadable plugin; 2 on option
 * and usage errors (as pppd's EXIT_OPTION_ERROR); 3 with --strict when
 * error() was called (e.g. a failed link-up).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mount.h>

#include "pppd-harness.h"

/* ---- the script's own state ---- */
static struct {
	uint32_t local, remote;         /* network byte order */
	int  timed, strict;
	int  link_was_down;
} h;

static volatile sig_atomic_t got_signal;

static void timed_notify(const char *event, struct notifier *list, int val)
{
	long long t0 = hx_now_usec();

	hx_notify(list, val);
	if (h.timed)
		printf("event %s usec %lld\n", event, hx_now_usec() - t0);
}

static void script_up(void)
{
	if (h.link_was_down) {          /* a reconnect */
		hx_new_phase(PHASE_ESTABLISH);
		hx_new_phase(PHASE_AUTHENTICATE);
		h.link_was_down = 0;
	}
	hx_new_phase(PHASE_NETWORK);
	ipcp_gotoptions[0].ouraddr = h.local;
	ipcp_hisoptions[0].hisaddr = h.remote;
	hx_new_phase(PHASE_RUNNING);    /* np_up, before the notifier */
	timed_notify("up", ip_up_notifier, 0);
	if (ip_up_hook)
		(*ip_up_hook)();
}

static void script_down(void)
{
	timed_notify("down", ip_down_notifier, 0);
	if (ip_down_hook)
		(*ip_down_hook)();
	hx_new_phase(PHASE_TERMINATE);
	hx_new_phase(PHASE_DISCONNECT);
	hx_new_phase(PHASE_DEAD);
	h.link_was_down = 1;
}

/* ---- pppd's main loop: timers and signals ---- */

static void on_signal(int sig) { got_signal = sig; }

static void block_signals(sigset_t *old)
{
	sigset_t block;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, old);
}

/* Until a signal arrives or DEADLINE (hx_now_usec(); -1: none) passes, run
 * the due timers and sleep until the next one.  Signals are blocked except
 * inside ppoll, so one cannot slip in between the check and the sleep; the
 * handler only sets a flag, as pppd's do. */
static void main_loop(long long deadline)
{
	sigset_t old;
	long long next, left;
	struct timespec ts;

	block_signals(&old);
	for (;;) {
		next = hx_calltimeout();
		if (got_signal)
			break;
		left = deadline < 0 ? -1 : deadline - hx_now_usec();
		if (deadline >= 0 && left <= 0)
			break;
		if (next >= 0 && (left < 0 || next < left))
			left = next;
		ts.tv_sec = left / 1000000;
		ts.tv_nsec = left % 1000000 * 1000;
		if (ppoll(NULL, 0, left < 0 ? NULL : &ts, &old) < 0 && errno != EINTR)
			fatal("ppoll: %m");
	}
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void wait_for_signal(void)
{
	fprintf(stderr, "harness: waiting for a signal (pid %d)\n", (int)getpid());
	main_loop(-1);
	info("Received signal %d", (int)got_signal);
	got_sigterm = got_signal != SIGHUP;
	got_signal = 0;
}

static void sleep_ms(long ms) { main_loop(hx_now_usec() + ms * 1000LL); }

/* ---- the script ---- */

static int parse_addr(const char *text, uint32_t *addr)
{
	struct in_addr a;

	if (inet_pton(AF_INET, text, &a) != 1)
		return -1;
	*addr = a.s_addr;
	return 0;
}

static int parse_count(const char *text, long *n)
{
	char *end;

	errno = 0;
	*n = strtol(text, &end, 10);
	return (errno || end == text || *end || *n < 0) ? -1 : 0;
}

static void script_error(const char *fmt, const char *word)
{
	fprintf(stderr, "harness: ");
	fprintf(stderr, fmt, word);
	fputc('\n', stderr);
	exit(EXIT_OPTION);
}

/* Check the script before running anything. */
static void check_script(int n, char **w)
{
	long v;
	uint32_t a;

	for (int i = 0; i < n; ++i) {
		if (!strcmp(w[i], "up") || !strcmp(w[i], "down") || !strcmp(w[i], "exit") ||
		    !strcmp(w[i], "wait"))
			continue;
		if (!strcmp(w[i], "sleep") || !strcmp(w[i], "repeat")) {
			if (i + 1 >= n || parse_count(w[i + 1], &v) < 0)
				script_error("'%s' needs a non-negative number", w[i]);
			++i;
		} else if (!strcmp(w[i], "addr")) {
			if (i + 1 >= n || parse_addr(w[i + 1], &a) < 0)
				script_error("'addr' needs an IPv4 address, not '%s'",
					     i + 1 < n ? w[i + 1] : "");
			++i;
		} else {
			script_error("unknown script word '%s' (up down exit wait sleep "
				     "repeat addr)", w[i]);
		}
	}
}

static void run_script(int n, char **w)
{
	long v;

	for (int i = 0; i < n; ++i) {
		if (!strcmp(w[i], "up")) {
			script_up();
		} else if (!strcmp(w[i], "down")) {
			script_down();
		} else if (!strcmp(w[i], "exit")) {
			if (i + 1 < n)
				fprintf(stderr, "harness: words after 'exit' ignored\n");
			hx.dying = 1;
			timed_notify("exit", exitnotify, 0);
			fflush(stdout);
			exit(h.strict && error_count ? EXIT_STRICT : 0);
		} else if (!strcmp(w[i], "wait")) {
			wait_for_signal();
		} else if (!strcmp(w[i], "sleep")) {
			parse_count(w[++i], &v);
			sleep_ms(v);
		} else if (!strcmp(w[i], "addr")) {
			parse_addr(w[++i], &h.local);
		} else if (!strcmp(w[i], "repeat")) {
			parse_count(w[++i], &v);
			for (long k = 0; k < v; ++k)
				run_script(n - i - 1, w + i + 1);
			return;
		}
	}
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: mh-pppd-harness --file PEERS [--plugin PATH] [--ifname IF]\n"
		"         [--local A] [--remote A] [--linkname N] [--ipparam S]\n"
		"         [--version V] [--uid N] [--opt WORD]... [--time] [--strict] WORD...\n"
		"words: up | down | exit | wait | sleep MS | repeat N WORD... | addr A\n"
		"pppd %s API\n", HX_VERSION);
	exit(EXIT_OPTION);
}

struct cli {
	const char *file, *ifname, *linkname, *ipparam, *local, *remote, *uid;
	char **opts;
	int nopts;
};

/* The harness's own options; returns the index of the first script word. */
static int parse_cli(int argc, char **argv, struct cli *c)
{
	int i;

	c->opts = calloc(argc, sizeof *c->opts);
	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; ++i) {
		const char *o = argv[i];
		if (!strcmp(o, "--time")) { h.timed = 1; continue; }
		if (!strcmp(o, "--strict")) { h.strict = 1; continue; }
		if (!strcmp(o, "--help")) usage();
		if (!strcmp(o, "--")) { ++i; break; }
		if (i + 1 >= argc)
			usage();
		if (!strcmp(o, "--file")) c->file = argv[++i];
		else if (!strcmp(o, "--plugin")) hx.plugin_path = argv[++i];
		else if (!strcmp(o, "--ifname")) c->ifname = argv[++i];
		else if (!strcmp(o, "--local")) c->local = argv[++i];
		else if (!strcmp(o, "--remote")) c->remote = argv[++i];
		else if (!strcmp(o, "--linkname")) c->linkname = argv[++i];
		else if (!strcmp(o, "--ipparam")) c->ipparam = argv[++i];
		else if (!strcmp(o, "--version")) hx.version = argv[++i];
		else if (!strcmp(o, "--uid")) c->uid = argv[++i];
		else if (!strcmp(o, "--opt")) c->opts[c->nopts++] = argv[++i];
		else {
			fprintf(stderr, "harness: unknown option '%s'\n", o);
			usage();
		}
	}
	if (c->file == NULL)
		usage();
	if (c->local && parse_addr(c->local, &h.local) < 0)
		script_error("--local: not an IPv4 address: '%s'", c->local);
	if (c->remote && parse_addr(c->remote, &h.remote) < 0)
		script_error("--remote: not an IPv4 address: '%s'", c->remote);
	return i;
}

/* An unprivileged caller's MULTIHOME_RUNDIR is ignored (issue 10), so the
 * plugin uses /run/multihome: give this process a /run of its own (a
 * private mount namespace with a tmpfs there) so that the host's is never
 * touched. */
static void private_run(void)
{
	if (unshare(CLONE_NEWNS) < 0 || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0 ||
	    mount("mh-harness", "/run", "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755") < 0) {
		fprintf(stderr, "harness: --uid: a private /run: %s\n", strerror(errno));
		exit(EXIT_OPTION);
	}
}

/* pppd's main() before parsing: uid = getuid(); privileged = uid == 0. */
static void become_invoker(const char *uid_text)
{
	long uid;

	if (uid_text) {
		if (parse_count(uid_text, &uid) < 0)
			script_error("--uid: not a user id: '%s'", uid_text);
		private_run();
		if (setresuid((uid_t)uid, 0, 0) < 0) {
			fprintf(stderr, "harness: --uid %ld: setresuid: %s\n", uid, strerror(errno));
			exit(EXIT_OPTION);
		}
	}
	privileged = getuid() == 0;
}

/* What pppd knows once the options are read and the ppp unit exists. */
static void settle(const struct cli *c)
{
	if (c->ifname)
		strlcpy(req_ifname, c->ifname, sizeof req_ifname);
	ifunit = req_unit >= 0 ? req_unit : 0;
	if (req_ifname[0])
		strlcpy(ifname, req_ifname, sizeof ifname);
	else
		slprintf(ifname, sizeof ifname, "ppp%d", ifunit);
	if (c->linkname)
		strlcpy(linkname, c->linkname, sizeof linkname);
	if (c->ipparam)
		ipparam = strdup(c->ipparam);
	if (!c->local)
		h.local = ipcp_wantoptions[0].ouraddr;
	if (!c->remote)
		h.remote = ipcp_wantoptions[0].hisaddr;
}

int main(int argc, char **argv)
{
	struct sigaction sa = { .sa_handler = on_signal };
	struct cli c = { 0 };
	int i = parse_cli(argc, argv, &c);

	check_script(argc - i, argv + i);
	become_invoker(c.uid);
	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	gethostname(hostname, sizeof hostname);

	hx_new_phase(PHASE_INITIALIZE); /* as pppd: before any option is read */
	if (hx.plugin_path && !hx_file_names_plugin(c.file))
		hx_load_plugin_or_exit(hx.plugin_path);
	if (!hx_read_options_file(c.file, 1) || !hx_parse_args(c.nopts, c.opts))
		exit(EXIT_OPTION);
	settle(&c);

	/* start_link: the first phase changes a plugin sees. */
	hx_new_phase(PHASE_INITIALIZE);
	hx_new_phase(PHASE_ESTABLISH);
	hx_new_phase(PHASE_AUTHENTICATE);

	run_script(argc - i, argv + i);
	fflush(stdout);
	return h.strict && error_count ? EXIT_STRICT : 0;
}
