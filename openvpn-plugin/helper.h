/* The OpenVPN plugin's root helper: requests, and the two sides that use them.
 *
 * After `user`/`group`, OpenVPN keeps only CAP_NET_ADMIN; libiptc, the
 * xtables lock and the registry need root.  At the first event (still root)
 * the plugin forks a helper, down-root style, and every later event becomes
 * one fixed-size request over a SOCK_SEQPACKET socketpair.
 *
 * The unprivileged OpenVPN may be compromised: the helper serves only the
 * link, the configuration and the interface it was started with (struct
 * mho_bound), and refuses anything else.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#ifndef MULTIHOME_OVPN_HELPER_H
#define MULTIHOME_OVPN_HELPER_H

#include <stdint.h>
#include <sys/types.h>
#include <net/if.h>

#include "mh.h"

#define MHO_MAGIC       0x6d686f32u     /* "mho2" */
#define MHO_ARGS_MAX    4096            /* the plugin's "key=value" arguments */
#define MHO_LOG_MAX     3072            /* log lines the helper sends back */
#define MHO_TIMEOUT_MS  60000           /* an event waits this long for the helper */
/* The widest tunnel subnet accepted from the server: OpenVPN's own --server
 * refuses wider ones (IFCONFIG_POOL_MIN_NETBITS), and the kernel routes the
 * whole prefix to the tunnel. */
#define MHO_PLEN_MIN    16
#define MHO_PLEN_MAX    30

enum mho_op { MHO_UP = 1, MHO_DOWN = 2 };

/* One event.  ARGS holds NARGS NUL-terminated "key=value" strings (the
 * plugin's arguments, plus name=DEV when the user gave no name), the rest
 * of the buffer zero. */
struct mho_request {
	uint32_t magic;
	uint32_t seq;
	uint32_t op;
	uint32_t nargs;
	char     ifname[IF_NAMESIZE];
	uint32_t local, peer, gateway;  /* network byte order; MHO_UP only */
	uint32_t local_plen;            /* the tunnel's subnet; 0 = point to point */
	char     args[MHO_ARGS_MAX];
};

struct mho_reply {
	uint32_t magic;
	uint32_t seq;
	int32_t  status;                /* 0 ok, -1 failed (see err) */
	char     err[MH_ERR_MAX];
	char     log[MHO_LOG_MAX];      /* lines "<level digit><text>\n" */
};

/* What a helper was started with: the first request's interface and
 * arguments (byte for byte), and the configuration they parse into. */
struct mho_bound {
	char     ifname[IF_NAMESIZE];
	uint32_t nargs;
	char     args[MHO_ARGS_MAX];
	struct mh_config cfg;
};

/* Where the plugin's log lines go (the helper sends them back instead). */
typedef void (*mho_log_fn)(enum mh_log_level lvl, const char *msg);

/* Check REQ and carry it out with the core.  BOUND (NULL: none, the plugin
 * acting in-process) is what the caller may act on; a request for another
 * interface or with other arguments is refused.  Used by the helper and,
 * without a helper, by the plugin itself. */
int mho_execute(const struct mho_request *req, const struct mho_bound *bound,
		char *err, size_t errlen);

/* BOUND from FIRST (the event the helper is forked at); checks that FIRST's
 * arguments parse, name a link, and that its interface is a tunnel. */
int mho_bound_init(struct mho_bound *bound, const struct mho_request *first,
		   char *err, size_t errlen);

/* Parse NARGS strings in ARGS into C (defaults first) and check the result. */
int mho_args_parse(const char *args, size_t size, uint32_t nargs,
		   struct mh_config *c, char *err, size_t errlen);

/* Is S a plausible interface name: 1..15 of [A-Za-z0-9_.-], not "." / ".."? */
int mho_ifname_ok(const char *s);

/* Is IFNAME a tunnel OpenVPN can drive: a tun or tap device (driver "tun"),
 * or a data channel offload device ("ovpn-dco", "ovpn")?  0, or -1 with ERR. */
int mho_tunnel_device(const char *ifname, char *err, size_t errlen);

/* The tunnel's subnet: PLEN 0 (point to point, no GATEWAY) or
 * MHO_PLEN_MIN..MHO_PLEN_MAX, with GATEWAY (if set) another host of
 * LOCAL/PLEN.  0, or -1 with ERR. */
int mho_subnet_check(uint32_t local, unsigned plen, uint32_t gateway, char *err, size_t errlen);

/* A running helper, as the plugin sees it. */
struct mho_helper {
	int      fd;                    /* -1: none */
	pid_t    pid;
	uint32_t seq;
	char     name[MH_NAME_MAX + 1]; /* the link it serves */
};

/* Fork the helper for FIRST's link and interface (the caller is root).
 * DAEMONIZED: OpenVPN runs as a daemon (env daemon=1).  Returns 0 / -1
 * with ERR set. */
int mho_helper_start(struct mho_helper *h, const struct mho_request *first, int daemonized,
		     char *err, size_t errlen);

/* Send REQ, wait for the reply; log lines in the reply go to LOG.  Returns
 * the helper's status, or -1 with ERR set when the helper is unreachable
 * (then *DEAD is set and the helper is reaped). */
int mho_helper_call(struct mho_helper *h, struct mho_request *req,
		    mho_log_fn log, int *dead, char *err, size_t errlen);

/* Forget a helper whose socket failed (close, reap if it has exited). */
void mho_helper_drop(struct mho_helper *h);

#endif
