/* multihome.so: the pppd glue.  Options in the peers file become a struct
 * mh_config; ip-up registers the link with the core, ip-down and exit
 * withdraw it.  Everything else lives in the core (common/).
 *
 * Built against pppd 2.4.9.  The few names that differ in pppd 2.5 go
 * through the mh_* shims below (2.4.x patchlevel.h defines DATE, 2.5 does
 * not), so the same source builds for 2.5; one binary serves one version.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include <pppd/pppd.h>
#ifndef DATE
#  include <pppd/options.h>
#endif
#include <pppd/fsm.h>
#include <pppd/ipcp.h>

#include "mh.h"
#include "watch.h"

#define MH_EXPORT __attribute__((visibility("default")))

static int opt_name(char **argv);
static int opt_table(char **argv);
static int opt_mark(char **argv);
static int opt_priority(char **argv);
static int opt_weight(char **argv);
static int opt_nat(char **argv);
static int opt_reply_via_link(char **argv);
static int opt_pin(char **argv);

/* Every option is o_special: the core parses and validates the value. */
#define MH_OPTION(opt, parser, help, extra) \
	{ .name = opt, .type = o_special, .addr = (void *)parser, \
	  .description = help, .flags = OPT_PRIV | (extra) }

static option_t mh_options[] = {
	MH_OPTION("multihome-name", opt_name,
		  "Name of this uplink (default: linkname, ipparam, interface)", 0),
	MH_OPTION("multihome-table", opt_table,
		  "Routing table of this uplink (number or rt_tables name)", 0),
	MH_OPTION("multihome-mark", opt_mark,
		  "Firewall mark of this uplink: MARK[/MASK]", 0),
	MH_OPTION("multihome-priority", opt_priority,
		  "Priority of this uplink's fwmark rule", 0),
	MH_OPTION("multihome-weight", opt_weight,
		  "Share of new connections in the balanced default (0..256)", 0),
	MH_OPTION("multihome-nat", opt_nat,
		  "NAT out of this uplink: masquerade, snat or off", 0),
	MH_OPTION("multihome-reply-via-link", opt_reply_via_link,
		  "Answer incoming connections through this uplink (yes/no)", 0),
	MH_OPTION("multihome-pin", opt_pin,
		  "Send matching traffic by this uplink (repeatable): "
		  "[tcp|udp|icmp] [DST[/LEN]] [port N[-M]]", OPT_A2LIST),
	{ .name = NULL }
};

/* ---- pppd 2.4 / 2.5 shims ---- */
#ifdef DATE                                     /* pppd 2.4.x */
#  define MH_PPPD_VERSION VERSION
#  define mh_add_options add_options
#  define mh_option_error option_error
static const char *mh_ifname(void)   { return ifname; }
static const char *mh_ipparam(void)  { return ipparam; }
static const char *mh_linkname(void) { return linkname; }
enum { MH_NF_PHASE, MH_NF_IP_UP, MH_NF_IP_DOWN, MH_NF_EXIT };
static void mh_add_notify(int which, void (*fn)(void *, int))
{
	struct notifier **list[] = {
		[MH_NF_PHASE] = &phasechange, [MH_NF_IP_UP] = &ip_up_notifier,
		[MH_NF_IP_DOWN] = &ip_down_notifier, [MH_NF_EXIT] = &exitnotify,
	};
	add_notifier(list[which], fn, NULL);
}
#else                                           /* pppd 2.5.x */
#  define MH_PPPD_VERSION PPPD_VERSION
#  define mh_add_options ppp_add_options
#  define mh_option_error ppp_option_error
static const char *mh_ifname(void)   { return ppp_ifname(); }
static const char *mh_ipparam(void)  { return ppp_ipparam(); }
static const char *mh_linkname(void) { return NULL; }  /* no accessor in 2.5 */
#  define MH_NF_PHASE   NF_PHASE_CHANGE
#  define MH_NF_IP_UP   NF_IP_UP
#  define MH_NF_IP_DOWN NF_IP_DOWN
#  define MH_NF_EXIT    NF_EXIT
static void mh_add_notify(int which, void (*fn)(void *, int))
{
	ppp_add_notify(which, fn, NULL);
}
#endif

MH_EXPORT char pppd_version[] = MH_PPPD_VERSION;

/* This process's one link: pppd serves one link per process. */
static struct {
	struct mh_config cfg;
	int  checked;                   /* first phase change seen */
	int  registered;                /* mh_link_up succeeded at least once */
	char ifname[IF_NAMESIZE];       /* interface we registered on */
} mh;

/* ---- options ---- */

static int set_option(const char *key, const char *value)
{
	char optname[64], err[MH_ERR_MAX];

	snprintf(optname, sizeof optname, "multihome-%s", key);
	if (mh_config_set(&mh.cfg, key, value, optname, err, sizeof err) < 0) {
		mh_option_error("%s", err);
		return 0;
	}
	return 1;
}

static int opt_name(char **argv)           { return set_option("name", *argv); }
static int opt_table(char **argv)          { return set_option("table", *argv); }
static int opt_mark(char **argv)           { return set_option("mark", *argv); }
static int opt_priority(char **argv)       { return set_option("priority", *argv); }
static int opt_weight(char **argv)         { return set_option("weight", *argv); }
static int opt_nat(char **argv)            { return set_option("nat", *argv); }
static int opt_reply_via_link(char **argv) { return set_option("reply-via-link", *argv); }
static int opt_pin(char **argv)            { return set_option("pin", *argv); }

/* ---- logging ---- */

static void log_to_pppd(enum mh_log_level lvl, const char *msg)
{
	switch (lvl) {
	case MH_LOG_ERR:   error("%s", msg); break;
	case MH_LOG_WARN:  warn("%s", msg); break;
	case MH_LOG_INFO:  info("%s", msg); break;
	default:           dbglog("%s", msg); break;
	}
}

/* ---- events ---- */

/* The link's name, unless the user set one: pppd's linkname, then ipparam
 * (the interface name is the last resort, known only at ip-up).  It goes
 * through mh_config_set so the core validates it like the option. */
static int default_name(const char *source, const char *value, char *err, size_t errlen)
{
	if (mh.cfg.name_set || value == NULL || value[0] == '\0')
		return 0;
	return mh_config_set(&mh.cfg, "name", value, source, err, errlen);
}

/* The first phase change comes after all options are parsed: validate here,
 * and refuse options that would fight the balanced default route. */
static void on_phase(void *arg, int phase_now)
{
	char err[MH_ERR_MAX];

	if (mh.checked)
		return;
	mh.checked = 1;
	if (ipcp_wantoptions[0].default_route || ipcp_wantoptions[0].replace_default_route)
		fatal("multihome: option defaultroute conflicts with multihome's balanced "
		      "default route; remove defaultroute/replacedefaultroute from the peers file");
	if (default_name("linkname", mh_linkname(), err, sizeof err) < 0 ||
	    default_name("ipparam", mh_ipparam(), err, sizeof err) < 0)
		fatal("multihome: %s; set multihome-name", err);
	if (mh_config_check(&mh.cfg, err, sizeof err) < 0)
		fatal("multihome: %s", err);
}

static void on_ip_up(void *arg, int unused)
{
	struct mh_link link;
	char err[MH_ERR_MAX];

	if (default_name("ifname", mh_ifname(), err, sizeof err) < 0) {
		error("multihome: %s; set multihome-name", err);
		return;
	}
	memset(&link, 0, sizeof link);
	link.cfg = mh.cfg;
	snprintf(link.ifname, sizeof link.ifname, "%s", mh_ifname());
	link.local = ipcp_gotoptions[0].ouraddr;
	link.peer = ipcp_hisoptions[0].hisaddr;
	link.gateway = 0;                       /* ppp: device route */
	if (mh_link_up(&link, err, sizeof err) < 0) {
		error("multihome: %s", err);    /* the link stays up, unbalanced */
		return;
	}
	mh.registered = 1;
	memcpy(mh.ifname, link.ifname, sizeof mh.ifname);
	mh_watch(mh.cfg.name, mh.ifname);       /* withdrawn even if pppd is killed */
}

static void withdraw(const char *when)
{
	char err[MH_ERR_MAX];

	if (!mh.registered)
		return;
	if (mh_link_down(mh.cfg.name, mh.ifname, err, sizeof err) < 0)
		error("multihome: %s: %s", when, err);
	else
		mh_watch(mh.cfg.name, NULL);
}

static void on_ip_down(void *arg, int unused) { withdraw("ip-down"); }

/* After fatal() or a signal ip-down never ran; deleting again is harmless. */
static void on_pppd_exit(void *arg, int status) { withdraw("exit"); }

MH_EXPORT void plugin_init(void)
{
	mh_config_init(&mh.cfg);
	mh_set_logger(log_to_pppd);
	mh_add_options(mh_options);
	mh_add_notify(MH_NF_PHASE, on_phase);
	mh_add_notify(MH_NF_IP_UP, on_ip_up);
	mh_add_notify(MH_NF_IP_DOWN, on_ip_down);
	mh_add_notify(MH_NF_EXIT, on_pppd_exit);
	info("multihome plugin loaded (pppd %s)", MH_PPPD_VERSION);
}
