/* The watcher: a link is withdrawn when the process that registered it is
 * gone, however it died (SIGKILL included).  For hosts without a helper
 * process of their own (pppd).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_WATCH_H
#define MULTIHOME_WATCH_H

/* Tell the watcher that link NAME is registered on IFNAME now (NULL or "":
 * nothing of this process is registered).  The first call with an IFNAME
 * starts the watcher: a detached grandchild, root, in a session of its own,
 * holding nothing of this process but one end of a socket pair whose other
 * end only this process has.  When this process is gone the watcher calls
 * mh_link_down(NAME, IFNAME) and exits.  Never blocks; failures are logged
 * (the link is then withdrawn only by the next event of another link). */
void mh_watch(const char *name, const char *ifname);

#endif
