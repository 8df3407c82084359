/* multihomectl: shared between its source files.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_CTL_H
#define MULTIHOME_CTL_H

/* Exit statuses of multihomectl. */
#define CTL_OK      0   /* nothing wrong / file valid */
#define CTL_WARN    1   /* status found warnings / check found errors */
#define CTL_ERROR   2   /* usage, cannot read state or file, operation failed */

/* check FILE [--type pppd|openvpn]: see multihomectl(8). */
int ctl_check(const char *file, const char *type);

#endif
