/* mh-pppd-harness: what its parts share.  Built against pppd 2.4.x headers
 * (patchlevel.h defines DATE) it exports pppd 2.4.x's plugin API: globals,
 * add_notifier, add_options, option_error, timeout...; built against 2.5.x
 * headers, 2.5.x's: ppp_* accessors, ppp_add_notify, ppp_add_options,
 * ppp_option_error, ppp_timeout... and the globals that pppd 2.5 keeps in its
 * uninstalled pppd-private.h but still exports.  The harness is compiled
 * with -fvisibility=hidden: PPPD_API marks what it exports (-rdynamic), and
 * nothing else is, so a plugin built for the other pppd fails here as it
 * fails in the real one.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef MH_PPPD_HARNESS_H
#define MH_PPPD_HARNESS_H

#include <net/if.h>
#include <stdio.h>
#include <sys/param.h>
#include <sys/time.h>

#include <pppd/pppd.h>
#ifdef DATE                             /* pppd 2.4.x */
#  define HX_VERSION    VERSION
#  define HX_FMT        char *          /* 2.4.x's loggers take char * */
#  define HX_IFNAMELEN  MAXIFNAMELEN
#  define hx_option_error option_error
#else                                   /* pppd 2.5.x */
#  include <pppd/options.h>
#  define HX_VERSION    PPPD_VERSION
#  define HX_FMT        const char *
#  define HX_IFNAMELEN  IFNAMSIZ
#  define hx_option_error ppp_option_error
/* From 2.5's uninstalled pppd-private.h. */
typedef ppp_notify_fn *notify_func;
struct notifier {
	struct notifier *next;
	notify_func func;
	void *arg;
};
#endif
#include <pppd/fsm.h>
#include <pppd/ipcp.h>

/* pppd-plugin/build.mk's pppd_defs set it (2.5.2 = 20502). */
#ifndef MH_PPPD_VERSION_CODE
#  ifdef DATE
#    define MH_PPPD_VERSION_CODE 20400
#  else
#    define MH_PPPD_VERSION_CODE 29999
#  endif
#endif

#define PPPD_API __attribute__((visibility("default")))

#define EXIT_FATAL      1
#define EXIT_OPTION     2
#define EXIT_STRICT     3

/* pppd's globals the harness itself uses (api.c defines them). */
extern int    phase, debug, privileged, privileged_option, error_count, got_sigterm;
extern int    ifunit, req_unit, option_priority;
extern char   *option_source, *current_option, *progname, *ipparam;
extern char   ifname[HX_IFNAMELEN], req_ifname[HX_IFNAMELEN], linkname[MAXPATHLEN];
extern char   hostname[MAXNAMELEN], user[MAXNAMELEN], passwd[MAXSECRETLEN];
extern char   our_name[MAXNAMELEN], remote_name[MAXNAMELEN];
extern bool   persist, demand, nodetach, updetach, dryrun, dump_options;
extern int    kdebugflag, maxfail, holdoff, idle_time_limit, maxconnect;
extern int    connect_delay, child_wait;
extern struct notifier *phasechange, *exitnotify, *ip_up_notifier, *ip_down_notifier;
extern void   (*ip_up_hook)(void), (*ip_down_hook)(void);

/* The harness's own (hidden) state and helpers. */
struct hx {
	const char *version;            /* the pppd version we claim to be */
	const char *plugin_path;        /* --plugin */
	int  dying;
};
extern struct hx hx;

void hx_notify(struct notifier *list, int val);
void hx_new_phase(int p);
void hx_die(int status);
long long hx_now_usec(void);
/* Run the timers that are due, as pppd's calltimeout(); return the usec
 * until the next one, or -1 if none is pending. */
long long hx_calltimeout(void);

/* options.c */
int  hx_read_options_file(const char *filename, int priv);
int  hx_parse_args(int argc, char **argv);
void hx_load_plugin_or_exit(const char *arg);
int  hx_file_names_plugin(const char *filename);
extern bool hx_noipdefault;

#endif
