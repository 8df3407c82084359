/* mh-pppd-harness: the plugin API it exports, as pppd 2.4.x or 2.5.x does
 * (see pppd-harness.h): globals, logging, notifiers, phases, timers.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "pppd-harness.h"

struct hx hx = { .version = HX_VERSION };

/* ---- globals: both series export them (2.5 declares them only in its
 * uninstalled pppd-private.h) ---- */
PPPD_API char   *progname = "pppd";
PPPD_API int    phase;
PPPD_API int    debug;
PPPD_API int    kdebugflag;
PPPD_API int    privileged = 1;
PPPD_API int    privileged_option = 1;
PPPD_API char   *current_option;
PPPD_API char   *option_source = "command line";
PPPD_API int    option_priority;
PPPD_API int    error_count;
PPPD_API int    got_sigterm;
PPPD_API int    hungup;
PPPD_API int    ifunit;
PPPD_API char   ifname[HX_IFNAMELEN];
PPPD_API char   req_ifname[HX_IFNAMELEN];
PPPD_API int    req_unit = -1;
PPPD_API char   hostname[MAXNAMELEN];
PPPD_API char   devnam[MAXPATHLEN];
#ifdef DATE
PPPD_API char   ppp_devnam[MAXPATHLEN];     /* 2.5: the ppp_pppdevnam() accessor */
#else
static char     pppdevnam[MAXPATHLEN];
#endif
PPPD_API char   linkname[MAXPATHLEN];
PPPD_API char   *ipparam;
PPPD_API char   user[MAXNAMELEN];
PPPD_API char   passwd[MAXSECRETLEN];
PPPD_API char   our_name[MAXNAMELEN];
PPPD_API char   remote_name[MAXNAMELEN];
PPPD_API char   remote_number[MAXNAMELEN];
PPPD_API char   peer_authname[MAXNAMELEN];
PPPD_API int    ppp_session_number;
PPPD_API bool   persist;
PPPD_API bool   demand;
PPPD_API bool   nodetach;
PPPD_API bool   updetach;
PPPD_API bool   dryrun;
PPPD_API bool   dump_options;
PPPD_API bool   noendpoint;
PPPD_API bool   multilink;
PPPD_API int    maxfail = 10;
PPPD_API int    holdoff = 30;
PPPD_API bool   holdoff_specified;
PPPD_API int    idle_time_limit;
PPPD_API int    maxconnect;
PPPD_API int    connect_delay = 1000;
PPPD_API int    child_wait = 5;
PPPD_API int    log_to_fd = 2;
PPPD_API bool   log_default = 1;
PPPD_API int    baud_rate;
PPPD_API int    devfd = -1;
PPPD_API int    fd_ppp = -1;
PPPD_API int    detached;
PPPD_API int    using_pty;
PPPD_API unsigned link_connect_time;
PPPD_API int    link_stats_valid;
PPPD_API struct pppd_stats link_stats;
PPPD_API char   path_ipup[MAXPATHLEN] = "/etc/ppp/ip-up";
PPPD_API char   path_ipdown[MAXPATHLEN] = "/etc/ppp/ip-down";

PPPD_API struct notifier *pidchange, *phasechange, *exitnotify, *sigreceived;
PPPD_API struct notifier *ip_up_notifier, *ip_down_notifier;
PPPD_API struct notifier *ipv6_up_notifier, *ipv6_down_notifier;
PPPD_API struct notifier *auth_up_notifier, *link_down_notifier, *fork_notifier;

PPPD_API int  (*new_phase_hook)(int);
PPPD_API int  (*holdoff_hook)(void);
PPPD_API int  (*allowed_address_hook)(uint32_t addr);
PPPD_API void (*ip_up_hook)(void);
PPPD_API void (*ip_down_hook)(void);
PPPD_API void (*ip_choose_hook)(uint32_t *);
PPPD_API void (*ipv6_up_hook)(void);
PPPD_API void (*ipv6_down_hook)(void);
PPPD_API void (*multilink_join_hook)(void);

PPPD_API fsm          ipcp_fsm[NUM_PPP];
PPPD_API ipcp_options ipcp_wantoptions[NUM_PPP];
PPPD_API ipcp_options ipcp_gotoptions[NUM_PPP];
PPPD_API ipcp_options ipcp_allowoptions[NUM_PPP];
PPPD_API ipcp_options ipcp_hisoptions[NUM_PPP];
PPPD_API int          peer_mru[NUM_PPP];

#ifdef DATE
PPPD_API volatile int status;           /* 2.5: ppp_status() */
#else
static int status;
#endif

/* ---- logging (pppd's utils.c, to stderr) ---- */

PPPD_API int vslprintf(char *buf, int buflen, HX_FMT fmt, va_list args)
{
	int n = vsnprintf(buf, buflen, fmt, args);
	return n < 0 ? 0 : (n >= buflen ? buflen - 1 : n);
}

PPPD_API int slprintf(char *buf, int buflen, HX_FMT fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vslprintf(buf, buflen, fmt, ap);
	va_end(ap);
	return n;
}

PPPD_API size_t strlcpy(char *dest, const char *src, size_t len)
{
	size_t n = strlen(src);

	if (len) {
		size_t c = n < len - 1 ? n : len - 1;
		memcpy(dest, src, c);
		dest[c] = '\0';
	}
	return n;
}

PPPD_API size_t strlcat(char *dest, const char *src, size_t len)
{
	size_t d = strnlen(dest, len);

	return d == len ? len + strlen(src) : d + strlcpy(dest + d, src, len - d);
}

/* The first conversion of FMT that pppd's own vslprintf (utils.c) cannot
 * print, or NULL: it knows flag 0, width and precision (digits or *), and
 * d u o x X p s c m I t v q P B, with l before d/u (2.5 also ll). */
static const char *unprintable(const char *fmt)
{
	const char *p, *conv;

	for (p = strchr(fmt, '%'); p; p = strchr(p + 1, '%')) {
		conv = p++;
		if (*p == '%')
			continue;
		p += *p == '0';
		p += *p == '*' ? 1 : strspn(p, "0123456789");
		if (*p == '.')
			p += p[1] == '*' ? 2 : 1 + strspn(p + 1, "0123456789");
#ifndef DATE
		if (p[0] == 'l' && p[1] == 'l')
			++p;
#endif
		if (*p == 'l' && (p[1] == 'd' || p[1] == 'u'))
			++p;
		else if (*p == '\0' || !strchr("duoxXpscmItvqPB", *p))
			return conv;
	}
	return NULL;
}

static void vlog(int is_debug, const char *fmt, va_list ap)
{
	char buf[1024];
	int saved = errno;
	const char *bad = unprintable(fmt);

	if (bad) {                      /* real pppd would print it as is */
		fprintf(stderr, "harness: pppd %s's vslprintf cannot print '%.5s' of \"%s\"\n",
			HX_VERSION, bad, fmt);
		++error_count;
	}
	if (is_debug && !debug)
		return;
	errno = saved;                  /* for %m */
	vslprintf(buf, sizeof buf, (HX_FMT)fmt, ap);
	fprintf(stderr, "%s: %s\n", progname, buf);
	errno = saved;
}

#define LOGGER(fn, fmt_t, dbg, extra) \
	PPPD_API void fn(fmt_t fmt, ...) { va_list ap; extra; va_start(ap, fmt); \
		vlog(dbg, fmt, ap); va_end(ap); }
LOGGER(dbglog, HX_FMT, 1, )
LOGGER(info, HX_FMT, 0, )
LOGGER(notice, HX_FMT, 0, )
LOGGER(warn, HX_FMT, 0, )
LOGGER(error, HX_FMT, 0, ++error_count)
LOGGER(hx_option_error, char *, 0, )    /* option_error / ppp_option_error */

void hx_die(int exit_status)
{
	if (!hx.dying) {
		hx.dying = 1;
		hx_notify(exitnotify, exit_status);
	}
	fflush(stdout);
	exit(exit_status);
}

PPPD_API void die(int exit_status) { hx_die(exit_status); }

PPPD_API void fatal(HX_FMT fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(0, fmt, ap);
	va_end(ap);
	hx_die(EXIT_FATAL);
}

PPPD_API void novm(HX_FMT msg) { fatal("Virtual memory exhausted allocating %s\n", msg); }

PPPD_API char *ip_ntoa(uint32_t addr)
{
	static char buf[INET_ADDRSTRLEN];
	struct in_addr a = { .s_addr = addr };

	return (char *)inet_ntop(AF_INET, &a, buf, sizeof buf);
}

/* ---- notifiers and phases (main.c) ---- */

static void add_to_list(struct notifier **notif, notify_func func, void *arg)
{
	struct notifier *np = malloc(sizeof *np);

	if (np == NULL)
		novm("notifier struct");
	np->next = *notif;
	np->func = func;
	np->arg = arg;
	*notif = np;
}

static void remove_from_list(struct notifier **notif, notify_func func, void *arg)
{
	struct notifier *np;

	for (; (np = *notif) != NULL; notif = &np->next) {
		if (np->func == func && np->arg == arg) {
			*notif = np->next;
			free(np);
			break;
		}
	}
}

void hx_notify(struct notifier *notif, int val)
{
	struct notifier *np;

	while ((np = notif) != NULL) {
		notif = np->next;       /* the callee may remove itself */
		(*np->func)(np->arg, val);
	}
}

PPPD_API void notify(struct notifier *notif, int val) { hx_notify(notif, val); }

void hx_new_phase(int p)
{
	phase = p;
	if (new_phase_hook)
		(*new_phase_hook)(p);
	hx_notify(phasechange, p);
}

PPPD_API void new_phase(int p) { hx_new_phase(p); }

/* ---- timers (main.c's callout list, sorted by due time) ---- */

struct callout {
	long long due;                  /* hx_now_usec() */
	void (*func)(void *);
	void *arg;
	struct callout *next;
};
static struct callout *callouts;

long long hx_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

/* Equal due times keep the order they were set in, as in pppd. */
static void set_timeout(void (*func)(void *), void *arg, int secs, int usecs)
{
	struct callout *c = malloc(sizeof *c), *p, **pp;

	if (c == NULL)
		fatal("Out of memory in timeout()!");
	c->func = func;
	c->arg = arg;
	c->due = hx_now_usec() + secs * 1000000LL + usecs;
	for (pp = &callouts; (p = *pp) != NULL; pp = &p->next)
		if (c->due < p->due)
			break;
	c->next = p;
	*pp = c;
}

/* The first matching entry only, as pppd's untimeout. */
static void cancel_timeout(void (*func)(void *), void *arg)
{
	struct callout **pp, *p;

	for (pp = &callouts; (p = *pp) != NULL; pp = &p->next)
		if (p->func == func && p->arg == arg) {
			*pp = p->next;
			free(p);
			break;
		}
}

long long hx_calltimeout(void)
{
	struct callout *c;
	long long now;

	while ((c = callouts) != NULL) {
		now = hx_now_usec();
		if (c->due > now)
			return c->due - now;
		callouts = c->next;     /* unlinked first: the callback may re-arm */
		(*c->func)(c->arg);
		free(c);
	}
	return -1;
}

#ifdef DATE     /* ---- what only pppd 2.4.x exports ---- */

PPPD_API void add_notifier(struct notifier **notif, notify_func func, void *arg)
{
	add_to_list(notif, func, arg);
}

PPPD_API void remove_notifier(struct notifier **notif, notify_func func, void *arg)
{
	remove_from_list(notif, func, arg);
}

PPPD_API void timeout(void (*func)(void *), void *arg, int s, int us)
{
	set_timeout(func, arg, s, us);
}

PPPD_API void untimeout(void (*func)(void *), void *arg) { cancel_timeout(func, arg); }

/* Scripts never run here. */
PPPD_API void script_setenv(char *var, char *value, int iskey) { dbglog("setenv %s=%s", var, value); }
PPPD_API void script_unsetenv(char *var) { }

#else           /* ---- what only pppd 2.5.x exports ---- */

static struct notifier **notifier_list(ppp_notify_t type)
{
	struct notifier **list[NF_MAX_NOTIFY] = {
		[NF_PID_CHANGE] = &pidchange, [NF_PHASE_CHANGE] = &phasechange,
		[NF_EXIT] = &exitnotify, [NF_SIGNALED] = &sigreceived,
		[NF_IP_UP] = &ip_up_notifier, [NF_IP_DOWN] = &ip_down_notifier,
		[NF_IPV6_UP] = &ipv6_up_notifier, [NF_IPV6_DOWN] = &ipv6_down_notifier,
		[NF_AUTH_UP] = &auth_up_notifier, [NF_LINK_DOWN] = &link_down_notifier,
		[NF_FORK] = &fork_notifier,
	};

	return (unsigned)type < NF_MAX_NOTIFY ? list[type] : NULL;
}

PPPD_API void ppp_add_notify(ppp_notify_t type, ppp_notify_fn *func, void *arg)
{
	struct notifier **list = notifier_list(type);

	if (list)
		add_to_list(list, func, arg);
	else
		error("Could not find notifier function for: %d", type);
}

PPPD_API void ppp_del_notify(ppp_notify_t type, ppp_notify_fn *func, void *arg)
{
	struct notifier **list = notifier_list(type);

	if (list)
		remove_from_list(list, func, arg);
	else
		error("Could not find notifier function for: %d", type);
}

PPPD_API void ppp_timeout(ppp_timer_cb func, void *arg, int s, int us)
{
	set_timeout(func, arg, s, us);
}

PPPD_API void ppp_untimeout(void (*func)(void *), void *arg) { cancel_timeout(func, arg); }
PPPD_API int ppp_get_time(struct timeval *tv)
{
	long long now = hx_now_usec();

	tv->tv_sec = now / 1000000;
	tv->tv_usec = now % 1000000;
	return 0;
}

PPPD_API const char *ppp_ifname(void) { return ifname; }
PPPD_API const char *ppp_devnam(void) { return devnam; }
PPPD_API const char *ppp_pppdevnam(void) { return pppdevnam; }
PPPD_API int ppp_ifunit(void) { return ifunit; }
PPPD_API const char *ppp_ipparam(void) { return ipparam; }
PPPD_API const char *ppp_remote_name(void) { return remote_name; }
PPPD_API const char *ppp_hostname(void) { return hostname; }
PPPD_API bool ppp_persist(void) { return persist; }
PPPD_API bool debug_on(void) { return debug; }
PPPD_API ppp_exit_code_t ppp_status(void) { return status; }
PPPD_API void ppp_set_status(ppp_exit_code_t code) { status = code; }

PPPD_API int ppp_get_ifname(char *buf, size_t bufsz)
{
	return buf ? (int)strlcpy(buf, ifname, bufsz) : 0;
}

PPPD_API void ppp_set_ifname(const char *name)
{
	if (name)
		strlcpy(ifname, name, sizeof ifname);
}

PPPD_API void ppp_script_setenv(char *var, char *value, int iskey) { dbglog("setenv %s=%s", var, value); }
PPPD_API void ppp_script_unsetenv(char *var) { }

#endif
