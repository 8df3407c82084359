/* multihomectl: what multihome did and why, and the few things an admin
 * does about it.  One file per subcommand; this one dispatches.
 *
 *   multihomectl status [--json]   links and their traffic, the balanced route, warnings
 *   multihomectl metrics           the same numbers for Prometheus
 *   multihomectl reapply           make the kernel match the registry again
 *   multihomectl flush             withdraw everything multihome installed
 *   multihomectl forget NAME       forget a down link
 *   multihomectl check FILE        validate a peers file / OpenVPN config
 *
 * Kernel state is read with the core's own readers (common/status.h), never
 * by forking ip, iptables or nft.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

static int ctl_help(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	ctl_usage(stdout);
	return CTL_OK;
}

static const struct {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *help;
} commands[] = {
	{ "status",  ctl_status,    "status [--json]                 links, their traffic, warnings" },
	{ "metrics", ctl_metrics,   "metrics                         status's numbers, for Prometheus" },
	{ "reapply", ctl_reapply,   "reapply                         make the kernel match the registry" },
	{ "flush",   ctl_flush,     "flush                           withdraw everything multihome installed" },
	{ "forget",  ctl_forget,    "forget NAME                     forget a down link (and the refusal of its pins)" },
	{ "check",   ctl_check_cmd, "check [--type pppd|openvpn] FILE  validate a peers file or OpenVPN config" },
	{ "help",    ctl_help,      "help                            this text" },
};

void ctl_usage(FILE *f)
{
	size_t i;

	for (i = 0; i < sizeof commands / sizeof *commands; i++)
		fprintf(f, "%s multihomectl %s\n", i ? "      " : "usage:", commands[i].help);
	fprintf(f, "Registry: $MULTIHOME_RUNDIR (default /run/multihome).  See multihomectl(8).\n");
}

int main(int argc, char **argv)
{
	const char *cmd = argc > 1 ? argv[1] : "status";
	size_t i;

	if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h"))
		cmd = "help";
	for (i = 0; i < sizeof commands / sizeof *commands; i++)
		if (!strcmp(cmd, commands[i].name))
			return commands[i].run(argc > 1 ? argc - 1 : 1, argc > 1 ? argv + 1 : (char *[]){ "status", NULL });
	fprintf(stderr, "multihomectl: unknown command '%s'\n", cmd);
	ctl_usage(stderr);
	return CTL_ERROR;
}
