/* multihomectl: shared between its source files (one per subcommand).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_CTL_H
#define MULTIHOME_CTL_H

#include <stdio.h>

#include "status.h"

/* Exit statuses of multihomectl, the monitoring plugins' convention
 * (OK, WARNING, CRITICAL, UNKNOWN).  See multihomectl(8). */
#define CTL_OK       0  /* status: every link that should be up is up, no warning;
			 * check: the file is valid; reapply, flush, metrics: done */
#define CTL_WARN     1  /* status: a warning; check: the file has errors */
#define CTL_CRITICAL 2  /* status: a link that should be up is not */
#define CTL_ERROR    3  /* usage, cannot read the state or the file, operation failed */

/* Each subcommand: ARGV[0] is its name. */
int ctl_status(int argc, char **argv);
int ctl_metrics(int argc, char **argv);
int ctl_reapply(int argc, char **argv);
int ctl_flush(int argc, char **argv);
int ctl_forget(int argc, char **argv);
int ctl_check_cmd(int argc, char **argv);

/* check FILE [--type pppd|openvpn]: see multihomectl(8). */
int ctl_check(const char *file, const char *type);

void ctl_usage(FILE *f);

/* ---- what status and metrics both report (tools/status.c) ---- */

struct ctl_warning {
	char code[24];
	char link[MH_NAME_MAX + 1];     /* "" when it is no one link's */
	int  severity;                  /* CTL_WARN or CTL_CRITICAL */
	char msg[600];
};

struct ctl_report {
	struct mh_status st;            /* with its traffic (mh_status_traffic) */
	const struct ctl_warning *warnings;
	unsigned nwarnings;
	int severity;                   /* the worst: CTL_OK, CTL_WARN, CTL_CRITICAL */
};

/* Read everything and decide the warnings.  0, or -1 with ERR. */
int  ctl_report_read(struct ctl_report *r, char *err, size_t len);
void ctl_report_free(struct ctl_report *r);
/* Registry link I: the worst of its warnings (CTL_OK .. CTL_CRITICAL). */
int  ctl_link_severity(const struct ctl_report *r, unsigned i);
/* The interface called NAME, as read (or NULL). */
const struct mh_status_if *ctl_if_by_name(const struct mh_status *st, const char *name);
/* "up", "offline" (up, its upstream does not answer) or "down": the
 * registry's state (health is ctl_link_severity's). */
const char *ctl_link_state(const struct mh_link *l);

#endif
