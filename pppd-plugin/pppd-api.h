/* pppd-api.h: pppd's plugin API, 2.4.x and 2.5.x, behind one set of mh_*
 * names.  multihome.c and the harness's test plugin include it instead of
 * <pppd/pppd.h>.
 *
 * 2.4.x's patchlevel.h defines DATE, 2.5.x does not (NetworkManager's
 * nm-pppd-compat.c tells them apart the same way).  One binary serves one
 * pppd version: pppd compares pppd_version by strcmp.  To let pppd say so
 * itself, every pppd symbol that the other series does not declare is
 * referenced weakly: loaded by the other pppd, dlopen(RTLD_NOW) succeeds
 * and pppd refuses the plugin with "Plugin multihome.so is for pppd version
 * X, this is Y" instead of "undefined symbol: option_error".
 *
 * pppd-plugin/build.mk sets MH_PPPD_VERSION_CODE (2.5.2 = 20502) from the
 * headers: 2.5.3 removed ipcp_options.replace_default_route.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef MULTIHOME_PPPD_API_H
#define MULTIHOME_PPPD_API_H

#include <unistd.h>

#include <pppd/pppd.h>
#ifndef DATE
#  include <pppd/options.h>
#endif
#include <pppd/fsm.h>
#include <pppd/ipcp.h>

#ifndef MH_PPPD_VERSION_CODE
#  ifdef DATE
#    define MH_PPPD_VERSION_CODE 20400
#  else
#    define MH_PPPD_VERSION_CODE 29999  /* a 2.5.x of unknown patch level: the newest API */
#  endif
#endif

/* Which pppd notifier lists the plugin uses. */
enum mh_pppd_event { MH_NF_PHASE, MH_NF_IP_UP, MH_NF_IP_DOWN, MH_NF_EXIT };

#ifdef DATE     /* ------------------------------------------- pppd 2.4.x */
#  define MH_PPPD_VERSION VERSION

/* Absent from 2.5, or only in its uninstalled pppd-private.h. */
#pragma weak add_options
#pragma weak option_error
#pragma weak add_notifier
#pragma weak timeout
#pragma weak untimeout
#pragma weak phasechange
#pragma weak ip_up_notifier
#pragma weak ip_down_notifier
#pragma weak exitnotify
#pragma weak ifname
#pragma weak ipparam
#pragma weak linkname
#pragma weak req_ifname
#pragma weak privileged

#  define mh_add_options  add_options
#  define mh_option_error option_error

static inline const char *mh_ifname(void)     { return ifname; }
static inline const char *mh_ipparam(void)    { return ipparam; }
static inline const char *mh_linkname(void)   { return linkname; }
static inline const char *mh_req_ifname(void) { return req_ifname; }

/* pppd's own answer: "We were run by real-uid root", or by a member of the
 * group named by privgroup in /etc/ppp/options. */
static inline int mh_caller_privileged(void) { return privileged; }

static inline void mh_add_notify(enum mh_pppd_event which, void (*fn)(void *, int), void *arg)
{
	struct notifier **list[] = {
		[MH_NF_PHASE] = &phasechange, [MH_NF_IP_UP] = &ip_up_notifier,
		[MH_NF_IP_DOWN] = &ip_down_notifier, [MH_NF_EXIT] = &exitnotify,
	};

	add_notifier(list[which], fn, arg);
}

static inline void mh_pppd_timeout(void (*fn)(void *), void *arg, int s, int us)
{
	timeout(fn, arg, s, us);
}

static inline void mh_pppd_untimeout(void (*fn)(void *), void *arg)
{
	untimeout(fn, arg);
}

/* The functions a 2.4.x plugin cannot run without (weak: may be NULL). */
#  define MH_PPPD_REQUIRED(X) X(add_options) X(option_error) X(add_notifier) \
	X(timeout) X(untimeout)

#else           /* ------------------------------------------- pppd 2.5.x */
#  define MH_PPPD_VERSION PPPD_VERSION

/* Absent from 2.4.x. */
#pragma weak ppp_add_options
#pragma weak ppp_option_error
#pragma weak ppp_add_notify
#pragma weak ppp_ifname
#pragma weak ppp_ipparam
#pragma weak ppp_timeout
#pragma weak ppp_untimeout

/* 2.5 has no accessor for these; they are declared only in pppd-private.h
 * but exported by every pppd (linked with -Wl,-E for its plugins).  Weak:
 * NULL where a pppd does not. */
extern char linkname[] __attribute__((weak));
extern char req_ifname[] __attribute__((weak));
extern int privileged __attribute__((weak));

#  define mh_add_options  ppp_add_options
#  define mh_option_error ppp_option_error

static inline const char *mh_ifname(void)     { return ppp_ifname(); }
static inline const char *mh_ipparam(void)    { return ppp_ipparam(); }
static inline const char *mh_linkname(void)   { return linkname; }
static inline const char *mh_req_ifname(void) { return req_ifname; }

/* pppd's "We were run by real-uid root", or a member of its privgroup.
 * Without the symbol: getuid() == 0, which is how pppd starts it (main.c;
 * its main process keeps its real uid, only forked children change it). */
static inline int mh_caller_privileged(void)
{
	return &privileged != NULL ? privileged : getuid() == 0;
}

static inline void mh_add_notify(enum mh_pppd_event which, void (*fn)(void *, int), void *arg)
{
	static const ppp_notify_t type[] = {
		[MH_NF_PHASE] = NF_PHASE_CHANGE, [MH_NF_IP_UP] = NF_IP_UP,
		[MH_NF_IP_DOWN] = NF_IP_DOWN, [MH_NF_EXIT] = NF_EXIT,
	};

	ppp_add_notify(type[which], fn, arg);
}

static inline void mh_pppd_timeout(void (*fn)(void *), void *arg, int s, int us)
{
	ppp_timeout(fn, arg, s, us);
}

static inline void mh_pppd_untimeout(void (*fn)(void *), void *arg)
{
	ppp_untimeout(fn, arg);
}

#  define MH_PPPD_REQUIRED(X) X(ppp_add_options) X(ppp_option_error) X(ppp_add_notify) \
	X(ppp_ifname) X(ppp_ipparam) X(ppp_timeout) X(ppp_untimeout)
#endif          /* ------------------------------------------------------- */

/* pppd's replacedefaultroute, where it exists (2.4.x, 2.5.0-2.5.2); 2.5.3
 * removed it (the option is still accepted and does nothing). */
static inline int mh_replacedefaultroute(void)
{
#if MH_PPPD_VERSION_CODE < 20503
	return ipcp_wantoptions[0].replace_default_route;
#else
	return 0;
#endif
}

/* The name of a pppd function this plugin needs and this pppd lacks (a
 * binary loaded by a pppd that skipped the version check), or NULL. */
static inline const char *mh_pppd_missing(void)
{
#define MH_CHECK_PRESENT(fn) if (&fn == NULL) return #fn;
	MH_PPPD_REQUIRED(MH_CHECK_PRESENT)
#undef MH_CHECK_PRESENT
	return NULL;
}

/* Run FN(ARG) once, MS milliseconds from now, from pppd's main loop (never
 * from a signal handler).  Several may be pending. */
static inline void mh_timer_set(void (*fn)(void *), void *arg, unsigned ms)
{
	mh_pppd_timeout(fn, arg, (int)(ms / 1000), (int)(ms % 1000) * 1000);
}

/* Cancel the earliest pending FN(ARG), if any (pppd's untimeout removes
 * one entry). */
static inline void mh_timer_cancel(void (*fn)(void *), void *arg)
{
	mh_pppd_untimeout(fn, arg);
}

#endif
