/* multihomectl: shared between its source files (one per subcommand).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_CTL_H
#define MULTIHOME_CTL_H

/* Exit statuses of multihomectl. */
#define CTL_OK      0   /* nothing wrong / file valid */
#define CTL_WARN    1   /* status found warnings / check found errors */
#define CTL_ERROR   2   /* usage, cannot read state or file, operation failed */

/* Each subcommand: ARGV[0] is its name. */
int ctl_status(int argc, char **argv);
int ctl_reapply(int argc, char **argv);
int ctl_flush(int argc, char **argv);
int ctl_forget(int argc, char **argv);
int ctl_check_cmd(int argc, char **argv);

/* check FILE [--type pppd|openvpn]: see multihomectl(8). */
int ctl_check(const char *file, const char *type);

void ctl_usage(FILE *f);

#endif
