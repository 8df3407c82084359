/* multihome.so: the pppd glue.  Options in the peers file become a struct
 * mh_config; ip-up registers the link with the core, ip-down and exit
 * withdraw it.  Everything else lives in the core (common/).
 *
 * One source for pppd 2.4.x and 2.5.x: the names that differ go through
 * pppd-api.h; one binary serves one pppd version (pppd-plugin/build.mk
 * builds for the pppd whose headers it finds).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <stdio.h>
#include <string.h>

#include "pppd-api.h"
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
static int opt_pin_fallback(char **argv);
static int opt_track(char **argv);
static int opt_track_interval(char **argv);
static int opt_track_down(char **argv);
static int opt_track_up(char **argv);

/* Every option is o_special: the core parses and validates the value. */
#define MH_OPTION(opt, parser, help, extra) \
	{ .name = opt, .type = o_special, .addr = (void *)parser, \
	  .description = help, .flags = OPT_PRIV | (extra) }

static option_t mh_options[] = {
	MH_OPTION("multihome-name", opt_name,
		  "Name of this uplink (default: linkname, ipparam or the interface; see multihome(8))", 0),
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
	MH_OPTION("multihome-pin-fallback", opt_pin_fallback,
		  "While this uplink is down its pins fall through to other links (yes) or are refused (no)", 0),
	MH_OPTION("multihome-track", opt_track,
		  "Probe these addresses through this uplink (A.B.C.D[,...]): upstream tracking", 0),
	MH_OPTION("multihome-track-interval", opt_track_interval,
		  "Seconds between tracking rounds (0.2 .. 60)", 0),
	MH_OPTION("multihome-track-down", opt_track_down,
		  "Failed rounds in a row before the uplink is taken out", 0),
	MH_OPTION("multihome-track-up", opt_track_up,
		  "Good rounds in a row before it is put back", 0),
	{ .name = NULL }
};

MH_EXPORT char pppd_version[] = MH_PPPD_VERSION;

/* This process's one link: pppd serves one link per process. */
static struct {
	struct mh_config cfg;
	int  checked;                   /* first phase change seen */
	int  registered;                /* mh_link_up succeeded at least once */
	char ifname[IF_NAMESIZE];       /* interface we registered on */
	struct mh_tracker *tracker;     /* upstream tracking, while registered */
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
static int opt_pin_fallback(char **argv)   { return set_option("pin-fallback", *argv); }
static int opt_track(char **argv)          { return set_option("track", *argv); }
static int opt_track_interval(char **argv) { return set_option("track-interval", *argv); }
static int opt_track_down(char **argv)     { return set_option("track-down", *argv); }
static int opt_track_up(char **argv)       { return set_option("track-up", *argv); }

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

/* ---- the link's name ---- */

/* VALUE, from pppd's option SOURCE, becomes the link's name unless one is
 * set; mh_config_set validates it like multihome-name. */
static int default_name(const char *source, const char *value, char *err, size_t errlen)
{
	if (mh.cfg.name_set || value == NULL || value[0] == '\0')
		return 0;
	return mh_config_set(&mh.cfg, "name", value, source, err, errlen);
}

static int ifname_fixed(void)
{
	const char *req = mh_req_ifname();

	return req != NULL && req[0] != '\0';
}

/* Without multihome-name, the name comes only from what root chose.
 * linkname and ifname need privilege (OPT_PRIV in 2.4.9 and 2.5.x); ipparam
 * and unit do not (`pon isp2 ipparam isp1` would take isp1's registry
 * entry), so they name the link only when pppd trusts its caller (root, or
 * privgroup).  The interface name itself is known at ip-up. */
static int choose_name(char *err, size_t errlen)
{
	const char *ipparam = mh_ipparam();

	if (default_name("linkname", mh_linkname(), err, errlen) < 0)
		return -1;
	if (mh.cfg.name_set)
		return 0;
	if (mh_caller_privileged())
		return default_name("ipparam", ipparam, err, errlen);
	if (ifname_fixed())
		return 0;
	if (ipparam && ipparam[0])
		snprintf(err, errlen, "no link name: ipparam '%s' cannot name the link, since "
			 "any user may give it and pppd was started by uid %u", ipparam,
			 (unsigned)getuid());
	else
		snprintf(err, errlen, "no link name: the interface name cannot name the link, "
			 "since any user may choose it (unit) and pppd was started by uid %u",
			 (unsigned)getuid());
	return -1;
}

/* ---- upstream tracking, driven by pppd's timer ---- */

/* pppd has no descriptor callback for plugins: the prober's socket is
 * non-blocking and read from the timer, when the tracker wants it. */
static void track_tick(void *arg)
{
	unsigned next_ms;

	(void)arg;
	if (!mh.tracker)
		return;
	mh_track_tick(mh.tracker, &next_ms);
	mh_timer_set(track_tick, NULL, next_ms);
}

static void track_stop(void)
{
	if (!mh.tracker)
		return;
	mh_timer_cancel(track_tick, NULL);
	mh_track_stop(mh.tracker);
	mh.tracker = NULL;
}

/* After every ip-up (a redial of persist too): tracking starts afresh. */
static void track_start(const struct mh_link *link)
{
	char err[MH_ERR_MAX];

	track_stop();
	mh.tracker = mh_track_start(link, err, sizeof err);
	if (!mh.tracker) {
		if (err[0])
			error("multihome: %s; the link is not tracked", err);
		return;
	}
	track_tick(NULL);
}

/* ---- events ---- */

/* The first phase change comes after all options are parsed: validate here,
 * and refuse options that would fight the balanced default route. */
static void on_phase(void *arg, int phase_now)
{
	char err[MH_ERR_MAX];

	if (mh.checked)
		return;
	mh.checked = 1;
	/* the environment of a caller pppd does not trust (a user of group dip
	 * running setuid pppd) says nothing: no MULTIHOME_* variable, no
	 * XTABLES_LOCKFILE */
	mh_set_env_trusted(mh_caller_privileged());
	if (ipcp_wantoptions[0].default_route)
		fatal("multihome: option defaultroute conflicts with multihome's balanced "
		      "default route; remove defaultroute from the peers file and /etc/ppp/options");
	if (mh_replacedefaultroute())
		fatal("multihome: option replacedefaultroute conflicts with multihome's balanced "
		      "default route; remove replacedefaultroute from the peers file and "
		      "/etc/ppp/options");
	if (choose_name(err, sizeof err) < 0)
		fatal("multihome: %s; set multihome-name (or linkname, or ifname) in the peers "
		      "file", err);
	if (mh_config_check(&mh.cfg, err, sizeof err) < 0)
		fatal("multihome: %s", err);
	/* pin-fallback no: refused from now on, until the link is up */
	if (mh_link_prepare(&mh.cfg, err, sizeof err) < 0)
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
	track_start(&link);
}

static void withdraw(const char *when)
{
	char err[MH_ERR_MAX];

	track_stop();
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
	const char *missing = mh_pppd_missing();

	if (missing)                    /* a pppd that skipped the version check */
		fatal("multihome: this pppd has no %s(); multihome.so is built for pppd %s",
		      missing, MH_PPPD_VERSION);
	mh_config_init(&mh.cfg);
	mh_set_env_trusted(0);          /* until pppd says whom it trusts (on_phase) */
	mh_set_logger(log_to_pppd);
	mh_add_options(mh_options);
	mh_add_notify(MH_NF_PHASE, on_phase, NULL);
	mh_add_notify(MH_NF_IP_UP, on_ip_up, NULL);
	mh_add_notify(MH_NF_IP_DOWN, on_ip_down, NULL);
	mh_add_notify(MH_NF_EXIT, on_pppd_exit, NULL);
	info("multihome plugin loaded (pppd %s)", MH_PPPD_VERSION);
}
