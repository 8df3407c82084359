/* mh-unit: the OpenVPN root helper's request checks, without a helper:
 * a request is refused unless it is for the interface and with the very
 * arguments the helper was started with; the tunnel subnet's limits.
 * Every request here is refused before the core is reached (the interface
 * the binding names cannot exist), so nothing is registered anywhere.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mh.h"
#include "unit.h"
#include "../../openvpn-plugin/helper.h"

#define NOWHERE "mh-unit-none0"   /* an interface name no host has */

static const char *const article[] = { "name=vpn", "table=103", "mark=0x4", "priority=100",
				       "weight=0", "pin=tcp", "198.51.100.0/24", "port", "22" };

static uint32_t ip(const char *s)
{
	struct in_addr a;

	inet_pton(AF_INET, s, &a);
	return a.s_addr;
}

/* A request as the plugin builds it from WORDS (OpenVPN's split arguments). */
static int request_of(struct mho_request *rq, int op, const char *ifname,
		      const char *const *words, int n)
{
	struct mh_config c;
	char err[MH_ERR_MAX];
	size_t used;
	unsigned nargs;

	memset(rq, 0, sizeof *rq);
	rq->magic = MHO_MAGIC;
	rq->op = (uint32_t)op;
	snprintf(rq->ifname, sizeof rq->ifname, "%s", ifname);
	rq->local = ip("100.64.100.2");
	rq->peer = ip("100.64.100.1");
	if (mh_config_from_args(&c, words, n, rq->args, sizeof rq->args, &used, &nargs, err, sizeof err))
		return -1;
	rq->nargs = nargs;
	return 0;
}

/* The helper's binding, as mho_bound_init makes it (without its tun check). */
static void bound_of(struct mho_bound *b, const struct mho_request *first)
{
	char err[MH_ERR_MAX];

	memset(b, 0, sizeof *b);
	memcpy(b->ifname, first->ifname, sizeof b->ifname);
	memcpy(b->args, first->args, sizeof b->args);
	b->nargs = first->nargs;
	mho_args_parse(first->args, sizeof first->args, first->nargs, &b->cfg, err, sizeof err);
}

/* REQ is refused by B, with WANT in the error. */
static void refused(const struct mho_request *rq, const struct mho_bound *b, const char *want,
		    const char *what)
{
	char err[MH_ERR_MAX] = "";
	int rc = mho_execute(rq, b, err, sizeof err);

	report(rc < 0 && strstr(err, want), "helper refuses %s", what);
	if (rc >= 0 || !strstr(err, want))
		printf("      rc %d, error: %s\n", rc, err);
}

static void test_binding(void)
{
	struct mho_request first, rq;
	struct mho_bound b;
	char err[MH_ERR_MAX] = "";
	const char *words[16];
	int n = (int)(sizeof article / sizeof *article);

	if (request_of(&first, MHO_UP, NOWHERE, article, n)) {
		report(0, "helper: the article's arguments build a request");
		return;
	}
	bound_of(&b, &first);
	report(b.cfg.name_set && !strcmp(b.cfg.name, "vpn") && b.cfg.weight == 0 && b.cfg.npins == 1,
	       "helper binding parses the arguments it was started with");

	rq = first;
	snprintf(rq.ifname, sizeof rq.ifname, "eth0");
	refused(&rq, &b, "serves interface " NOWHERE ", not eth0", "an UP for another interface");
	rq.op = MHO_DOWN;
	refused(&rq, &b, "serves interface " NOWHERE ", not eth0", "a DOWN for another interface");

	memcpy(words, article, sizeof article);
	words[n] = "pin=udp";
	request_of(&rq, MHO_UP, NOWHERE, words, n + 1);
	refused(&rq, &b, "an added 'pin=udp'", "an added argument");
	words[4] = "weight=256";
	request_of(&rq, MHO_UP, NOWHERE, words, n);
	refused(&rq, &b, "'weight=256' instead of 'weight=0'", "a changed argument");
	request_of(&rq, MHO_UP, NOWHERE, article, 4);
	refused(&rq, &b, "'weight=0' left out", "an argument left out");
	rq = first;
	rq.args[sizeof rq.args - 1] = 'x';
	refused(&rq, &b, "bytes after the last argument", "bytes hidden after the argument list");
	rq = first;
	rq.op = MHO_DOWN;
	rq.args[sizeof rq.args - 1] = 'x';
	refused(&rq, &b, "configuration change needs an OpenVPN restart", "a DOWN with other arguments");

	/* the right interface and arguments: an UP still needs a tunnel device */
	refused(&first, &b, "interface " NOWHERE " does not exist", "an UP when its tunnel is gone");
	rq = first;
	rq.local_plen = 1;
	refused(&rq, &b, "a tunnel subnet of /1 is not accepted", "an UP with a /1 subnet");
	rq = first;
	rq.magic = 0x6d686f31u;
	refused(&rq, &b, "bad magic", "a request of the previous protocol");

	request_of(&rq, MHO_UP, "lo", article, n);
	report(mho_bound_init(&b, &rq, err, sizeof err) < 0 && strstr(err, "interface lo "),
	       "helper is not started for a device that is no tun/tap (lo)");
}

static void test_subnet(void)
{
	static const struct { const char *local, *gw; unsigned plen; int ok; const char *what; } c[] = {
		{ "100.64.100.2", NULL, 0, 1, "point to point, no gateway" },
		{ "100.64.100.2", "100.64.100.1", 0, 0, "point to point with a gateway" },
		{ "100.64.100.2", NULL, 1, 0, "/1 (the issue's pushed netmask)" },
		{ "100.64.100.2", NULL, 15, 0, "/15 (wider than OpenVPN's --server allows)" },
		{ "100.64.100.2", "100.64.0.1", 16, 1, "/16 with a gateway inside" },
		{ "100.64.100.2", "100.64.100.1", 24, 1, "/24 with a gateway inside" },
		{ "100.64.100.2", "100.64.100.1", 30, 1, "/30 with a gateway inside" },
		{ "100.64.100.2", NULL, 31, 0, "/31" },
		{ "100.64.100.2", "100.64.101.1", 24, 0, "a gateway outside the subnet" },
		{ "100.64.100.2", "100.64.100.0", 24, 0, "the subnet's network address as gateway" },
		{ "100.64.100.2", "100.64.100.255", 24, 0, "the subnet's broadcast address as gateway" },
		{ "100.64.100.2", "100.64.100.2", 24, 0, "the local address as gateway" },
	};
	char err[MH_ERR_MAX];

	for (size_t i = 0; i < sizeof c / sizeof *c; i++) {
		int rc = mho_subnet_check(ip(c[i].local), c[i].plen, c[i].gw ? ip(c[i].gw) : 0,
					  err, sizeof err);
		report((rc == 0) == c[i].ok, "tunnel subnet %s: %s", c[i].what, c[i].ok ? "accepted" : "refused");
	}
}

void test_ovpn_helper(void)
{
	/* a refused request never gets this far, but should one: not the host's registry */
	setenv("MULTIHOME_RUNDIR", "/tmp/mh-unit-ovpn-helper-nonexistent/run", 1);
	test_binding();
	test_subnet();
	unsetenv("MULTIHOME_RUNDIR");
}
