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
 * end only this process has, and a pidfd of this process.  When this
 * process is gone (SIGKILL included) and IFNAME with it, as a ppp unit goes
 * with its pppd, the watcher runs the prune of an event at once (the link is
 * withdrawn, its flows move on) and exits.  Never blocks; failures are
 * logged (the link is then withdrawn only by the next event of another link). */
void mh_watch(const char *name, const char *ifname);

#endif
