/* multihome-openvpn.so: an OpenVPN tunnel registers itself as a multihome link.
 *
 *   plugin multihome-openvpn.so name=vpn table=103 mark=0x4 priority=100 weight=0 "pin=tcp 198.51.100.0/24 port 22"
 *
 * Arguments are the pppd plugin's options without the "multihome-" prefix,
 * parsed once in open by the core's parser; a bad one stops OpenVPN.
 *
 *   UP             fork the root helper (first time, still root)
 *   ROUTE_UP       register the link from the (untrusted) environment
 *   ROUTE_PREDOWN  withdraw it while the tun still exists
 *   DOWN           withdraw whatever is left (the tun is gone)
 *
 * Down paths log their failures and return success: OpenVPN treats a failed
 * DOWN or ROUTE_PREDOWN as fatal.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openvpn/openvpn-plugin.h>

#include "helper.h"

#define MODULE "multihome"
#define MAX_HELPERS 4

struct plugin {
	struct mh_config cfg;           /* the arguments as parsed in open */
	char     args[MHO_ARGS_MAX];    /* the same, as "key=value\0" strings */
	size_t   args_len;
	uint32_t nargs;
};

/* What OpenVPN's environment says about the tunnel, checked. */
struct tunnel {
	char     ifname[IF_NAMESIZE];
	uint32_t local, peer, gateway;
	unsigned plen;                  /* subnet topology / tap; 0 = point to point */
};

static plugin_log_t ovpn_log;

/* Helpers survive a SIGHUP reload: the library pins itself in memory
 * (RTLD_NODELETE), so the reopened plugin finds the helper it forked as root. */
static struct mho_helper helpers[MAX_HELPERS];

static void log_to_openvpn(enum mh_log_level lvl, const char *msg)
{
	static const openvpn_plugin_log_flags_t flag[] = {
		[MH_LOG_ERR] = PLOG_ERR, [MH_LOG_WARN] = PLOG_WARN,
		[MH_LOG_INFO] = PLOG_NOTE, [MH_LOG_DEBUG] = PLOG_DEBUG,
	};

	if (ovpn_log)
		ovpn_log(flag[lvl], MODULE, "%s", msg);
}

#define say(lvl, ...) mh_log(lvl, __VA_ARGS__)

static const char *env_get(const char *envp[], const char *name)
{
	size_t n = strlen(name);

	for (; envp && *envp; envp++)
		if (!strncmp(*envp, name, n) && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* ---- open: the arguments ---- */

static int args_parse(struct plugin *p, const char **argv)
{
	char err[MH_ERR_MAX];
	int n = 0;

	while (argv && argv[0] && argv[n + 1])
		n++;
	if (mh_config_from_args(&p->cfg, argv ? argv + 1 : NULL, n, p->args, sizeof p->args,
				&p->args_len, &p->nargs, err, sizeof err) < 0) {
		say(MH_LOG_ERR, "%s", err);
		return -1;
	}
	return 0;
}

/* A SIGHUP dlclose()s and dlopen()s the plugin: stay loaded, keep the helpers. */
static void pin_in_memory(void)
{
	Dl_info di;

	if (dladdr((void *)pin_in_memory, &di) && di.dli_fname)
		dlopen(di.dli_fname, RTLD_NOW | RTLD_NOLOAD | RTLD_NODELETE);
}

__attribute__((visibility("default")))
int openvpn_plugin_open_v3(const int version,
			   struct openvpn_plugin_args_open_in const *in,
			   struct openvpn_plugin_args_open_return *out)
{
	struct plugin *p;

	if (version < 1 || !in->callbacks)
		return OPENVPN_PLUGIN_FUNC_ERROR;
	ovpn_log = in->callbacks->plugin_log;
	mh_set_logger(log_to_openvpn);

	p = calloc(1, sizeof *p);
	if (!p) {
		say(MH_LOG_ERR, "out of memory");
		return OPENVPN_PLUGIN_FUNC_ERROR;
	}
	if (args_parse(p, in->argv)) {
		free(p);
		return OPENVPN_PLUGIN_FUNC_ERROR;
	}
	/* pin-fallback=no: the pins are refused from now on, before the tunnel
	 * exists (only as root: a SIGHUP's reopen finds them registered) */
	if (geteuid() == 0) {
		char err[MH_ERR_MAX];
		if (mh_link_prepare(&p->cfg, err, sizeof err) < 0) {
			say(MH_LOG_ERR, "%s", err);
			free(p);
			return OPENVPN_PLUGIN_FUNC_ERROR;
		}
	}
	pin_in_memory();
	out->type_mask = OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_UP) |
			 OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_ROUTE_UP) |
			 OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_ROUTE_PREDOWN) |
			 OPENVPN_PLUGIN_MASK(OPENVPN_PLUGIN_DOWN);
	out->handle = p;
	return OPENVPN_PLUGIN_FUNC_SUCCESS;
}

/* ---- the environment: values pushed by the server are untrusted ---- */

static int env_addr(const char *envp[], const char *name, uint32_t *addr,
		    char *err, size_t len)
{
	const char *v = env_get(envp, name);
	struct in_addr a;

	if (!v) {
		snprintf(err, len, "%s is not set", name);
		return -1;
	}
	if (strnlen(v, INET_ADDRSTRLEN) >= INET_ADDRSTRLEN || inet_pton(AF_INET, v, &a) != 1) {
		snprintf(err, len, "%s='%.20s' is not an IPv4 address", name, v);
		return -1;
	}
	*addr = a.s_addr;
	return 0;
}

static int netmask_len(uint32_t mask_be)
{
	uint32_t m = ntohl(mask_be);

	if (m == 0 || (~m & (~m + 1)) != 0)
		return -1;              /* not contiguous */
	return __builtin_popcount(m);
}

static int tunnel_from_env(const char *envp[], int need_addrs, struct tunnel *t,
			   char *err, size_t len)
{
	const char *dev = env_get(envp, "dev");
	char why[MH_ERR_MAX];
	uint32_t mask;
	int plen;

	memset(t, 0, sizeof *t);
	if (!dev || !mho_ifname_ok(dev)) {
		snprintf(err, len, "dev='%.20s' is not an interface name", dev ? dev : "");
		return -1;
	}
	strcpy(t->ifname, dev);
	if (!need_addrs)
		return 0;

	if (env_addr(envp, "ifconfig_local", &t->local, err, len) ||
	    mh_addr_check(t->local, "ifconfig_local", err, len))
		return -1;
	if (env_get(envp, "ifconfig_remote")) {
		/* p2p/net30 topology: the far end is on the wire, a device route will do */
		if (env_addr(envp, "ifconfig_remote", &t->peer, err, len) ||
		    mh_addr_check(t->peer, "ifconfig_remote", err, len))
			return -1;
		if (t->peer == t->local) {
			snprintf(err, len, "ifconfig_remote equals ifconfig_local");
			return -1;
		}
		return 0;
	}
	/* subnet topology (or tap): route by the gateway the server named */
	if (env_addr(envp, "ifconfig_netmask", &mask, err, len))
		return -1;
	plen = netmask_len(mask);
	if (plen < MHO_PLEN_MIN || plen > MHO_PLEN_MAX) {
		snprintf(err, len, "ifconfig_netmask='%.20s' is not a netmask of /%d../%d (OpenVPN's own "
			 "--server refuses wider subnets; the whole prefix would be routed to the tunnel)",
			 env_get(envp, "ifconfig_netmask"), MHO_PLEN_MIN, MHO_PLEN_MAX);
		return -1;
	}
	t->plen = (unsigned)plen;
	if (!env_get(envp, "route_vpn_gateway")) {
		/* OpenVPN sets it only when it has routes of its own to install
		 * (none here with route-noexec-like setups).  A tun device is
		 * layer 3: a device route works; a tap needs the gateway. */
		const char *type = env_get(envp, "dev_type");
		if (type && !strcmp(type, "tun"))
			return 0;
		snprintf(err, len, "route_vpn_gateway is not set (a tap link needs the server's route-gateway)");
		return -1;
	}
	if (env_addr(envp, "route_vpn_gateway", &t->gateway, err, len) ||
	    mh_addr_check(t->gateway, "route_vpn_gateway", err, len))
		return -1;
	if (mho_subnet_check(t->local, t->plen, t->gateway, why, sizeof why)) {
		snprintf(err, len, "route_vpn_gateway='%.20s' is not another host in %.20s/%d",
			 env_get(envp, "route_vpn_gateway"), env_get(envp, "ifconfig_local"), plen);
		return -1;
	}
	return 0;
}

/* ---- carrying out an event: through the root helper, or in-process ---- */

static const char *link_name(const struct plugin *p, const struct tunnel *t)
{
	return p->cfg.name_set ? p->cfg.name : t->ifname;
}

static struct mho_helper *helper_find(const char *name)
{
	for (int i = 0; i < MAX_HELPERS; i++)
		if (helpers[i].pid > 0 && !strcmp(helpers[i].name, name))
			return &helpers[i];
	return NULL;
}

static int request_build(const struct plugin *p, int op, const struct tunnel *t,
			 struct mho_request *rq)
{
	size_t at = p->args_len;

	memset(rq, 0, sizeof *rq);
	rq->op = (uint32_t)op;
	memcpy(rq->ifname, t->ifname, sizeof rq->ifname);
	rq->local = t->local;
	rq->peer = t->peer;
	rq->gateway = t->gateway;
	rq->local_plen = t->plen;
	memcpy(rq->args, p->args, p->args_len);
	rq->nargs = p->nargs;
	if (!p->cfg.name_set) {
		int n = snprintf(rq->args + at, sizeof rq->args - at, "name=%s", t->ifname);
		if (n < 0 || (size_t)n >= sizeof rq->args - at)
			return -1;
		rq->nargs++;
	}
	return 0;
}

/* The first event runs as root: fork the helper then, bound to this
 * tunnel and these arguments.  Later (after user/group) there is no way
 * back to root: reuse what exists. */
static struct mho_helper *helper_ensure(const struct plugin *p, const struct tunnel *t,
					const char *envp[])
{
	static struct mho_request first;
	const char *name = link_name(p, t), *d;
	struct mho_helper *h = helper_find(name);
	char err[MH_ERR_MAX];

	if (h || geteuid() != 0)
		return h;
	for (int i = 0; i < MAX_HELPERS && !h; i++)
		if (helpers[i].pid <= 0)
			h = &helpers[i];
	if (!h) {
		say(MH_LOG_WARN, "too many links in one OpenVPN process; '%s' runs without a root helper", name);
		return NULL;
	}
	if (request_build(p, MHO_UP, t, &first)) {
		say(MH_LOG_WARN, "plugin arguments too long; link '%s' runs without a root helper", name);
		return NULL;
	}
	d = env_get(envp, "daemon");
	if (mho_helper_start(h, &first, d && d[0] == '1', err, sizeof err)) {
		say(MH_LOG_WARN, "%s; link '%s' runs in-process (fails after a privilege drop)", err, name);
		h->pid = 0;
		return NULL;
	}
	say(MH_LOG_INFO, "root helper for link '%s' started (pid %d), serving %s", name, (int)h->pid, t->ifname);
	return h;
}

static int event_run(const struct plugin *p, int op, const struct tunnel *t,
		     const char *envp[], char *err, size_t len)
{
	static struct mho_request rq;
	struct mho_helper *h;
	int dead;

	if (request_build(p, op, t, &rq)) {
		snprintf(err, len, "plugin arguments too long");
		return -1;
	}
	h = helper_ensure(p, t, envp);
	if (h) {
		int r = mho_helper_call(h, &rq, log_to_openvpn, &dead, err, len);
		if (!dead)
			return r;
		say(MH_LOG_WARN, "%s", err);
		h = helper_ensure(p, t, envp);  /* root can start a new one */
		if (h)
			return mho_helper_call(h, &rq, log_to_openvpn, &dead, err, len);
	}
	rq.magic = MHO_MAGIC;
	return mho_execute(&rq, NULL, err, len);
}

static int on_up(struct plugin *p, const char *envp[])
{
	struct tunnel t;
	char err[MH_ERR_MAX];

	/* nothing to register yet (ROUTE_UP does); only the helper, while root */
	if (tunnel_from_env(envp, 0, &t, err, sizeof err))
		say(MH_LOG_WARN, "up: %s", err);
	else
		helper_ensure(p, &t, envp);
	return OPENVPN_PLUGIN_FUNC_SUCCESS;
}

static int on_route_up(struct plugin *p, const char *envp[])
{
	struct tunnel t;
	char err[MH_ERR_MAX];
	const char *rg = env_get(envp, "redirect_gateway");

	if (tunnel_from_env(envp, 1, &t, err, sizeof err)) {
		say(MH_LOG_ERR, "route-up: refusing the tunnel's environment: %s", err);
		return OPENVPN_PLUGIN_FUNC_ERROR;
	}
	if (rg && strcmp(rg, "0"))
		say(MH_LOG_WARN, "redirect-gateway is active: OpenVPN's 0.0.0.0/1 and 128.0.0.0/1 override multihome's balanced default; "
		    "use 'pull-filter ignore redirect-gateway' (or route-noexec) and pins instead");
	if (event_run(p, MHO_UP, &t, envp, err, sizeof err)) {
		say(MH_LOG_ERR, "link '%s' on %s: not registered: %s", link_name(p, &t), t.ifname, err);
		return OPENVPN_PLUGIN_FUNC_ERROR;
	}
	say(MH_LOG_INFO, "link '%s' up on %s", link_name(p, &t), t.ifname);
	return OPENVPN_PLUGIN_FUNC_SUCCESS;
}

static int on_down(struct plugin *p, const char *envp[], const char *event)
{
	struct tunnel t;
	char err[MH_ERR_MAX];

	if (tunnel_from_env(envp, 0, &t, err, sizeof err))
		say(MH_LOG_ERR, "%s: %s", event, err);
	else if (event_run(p, MHO_DOWN, &t, envp, err, sizeof err))
		say(MH_LOG_ERR, "%s: link '%s' on %s: %s", event, link_name(p, &t), t.ifname, err);
	else
		say(MH_LOG_INFO, "%s: link '%s' on %s withdrawn", event, link_name(p, &t), t.ifname);
	return OPENVPN_PLUGIN_FUNC_SUCCESS;  /* a failed down event would stop OpenVPN */
}

__attribute__((visibility("default")))
int openvpn_plugin_func_v3(const int version,
			   struct openvpn_plugin_args_func_in const *in,
			   struct openvpn_plugin_args_func_return *ret)
{
	struct plugin *p = in->handle;

	(void)version;
	(void)ret;
	switch (in->type) {
	case OPENVPN_PLUGIN_UP:
		return on_up(p, (const char **)in->envp);
	case OPENVPN_PLUGIN_ROUTE_UP:
		return on_route_up(p, (const char **)in->envp);
	case OPENVPN_PLUGIN_ROUTE_PREDOWN:
		return on_down(p, (const char **)in->envp, "route-predown");
	case OPENVPN_PLUGIN_DOWN:
		return on_down(p, (const char **)in->envp, "down");
	default:
		return OPENVPN_PLUGIN_FUNC_SUCCESS;
	}
}

/* The helper is not stopped here: after a SIGHUP the reopened plugin (no
 * longer root) needs it.  It exits when OpenVPN does (EOF on its socket). */
__attribute__((visibility("default")))
void openvpn_plugin_close_v1(openvpn_plugin_handle_t handle)
{
	free(handle);
}
