/* The two events of a link, applied whole under the registry lock.
 *
 * The desired state is a function of the up links in the registry; an event
 * changes the registry in memory, makes the kernel match (one netlink batch,
 * one commit per firewall table), and only then records the change.  On a
 * failure the kernel is brought back to the state of the unchanged
 * registry, so a link is registered whole or not at all.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <net/if.h>

#include "internal.h"

#define DEFAULT_TABLE_BASE 1000u        /* allocated tables: 1000 + slot */
#define DEFAULT_PRIO_BASE  200u         /* allocated priorities: 200 + slot */
#define DEFAULT_MARK_SHIFT 24           /* allocated marks: one of bits 24..31 */
#define DEFAULT_MARK_BITS  8

static int link_order(const void *a, const void *b)
{
	const struct mh_link *x = *(const struct mh_link *const *)a;
	const struct mh_link *y = *(const struct mh_link *const *)b;

	if (x->cfg.priority != y->cfg.priority)
		return x->cfg.priority < y->cfg.priority ? -1 : 1;
	return strcmp(x->cfg.name, y->cfg.name);
}

unsigned mh_up_links(const struct mh_registry *r, const struct mh_link **out)
{
	unsigned i, n = 0;

	for (i = 0; i < r->n; i++)
		if (r->links[i].up)
			out[n++] = &r->links[i];
	qsort(out, n, sizeof *out, link_order);
	return n;
}

uint32_t mh_mark_union(const struct mh_link *const *links, unsigned n)
{
	uint32_t u = 0;
	unsigned i;

	for (i = 0; i < n; i++)
		u |= links[i]->cfg.mask;
	return u;
}

/* Would A's fwmark rule catch B's packets, or B's catch A's? */
static int marks_clash(const struct mh_config *a, const struct mh_config *b)
{
	return (b->mark & a->mask) == a->mark || (a->mark & b->mask) == b->mark;
}

/* The up links as the event found them: what the kernel holds if the last
 * event finished. */
struct before {
	struct mh_link links[MH_MAX_LINKS];
	const struct mh_link *up[MH_MAX_LINKS];
	unsigned n;
	int unsure;             /* the kernel may hold anything: read it */
};

static void snapshot(const struct mh_registry *r, struct before *b)
{
	const struct mh_link *up[MH_MAX_LINKS];
	unsigned i;

	b->n = mh_up_links(r, up);
	for (i = 0; i < b->n; i++) {
		b->links[i] = *up[i];
		b->up[i] = &b->links[i];
	}
	b->unsure = 0;
}

/* Make the kernel hold the registry's state.  B: the state it holds now
 * (NULL: unknown, read the kernel). */
static int apply(struct mh_registry *r, const struct before *b, const struct mh_link *touched,
		 char *err, size_t len)
{
	const struct mh_link *up[MH_MAX_LINKS];
	unsigned n = mh_up_links(r, up);
	int full = !b || b->unsure;

	if (mh_nl_apply(b ? b->up : NULL, b ? b->n : 0, up, n, touched, full, err, len) < 0)
		return -1;
	return mh_fw_apply(up, n, err, len);
}

/* The kernel is the truth: a link whose interface is gone (or is another
 * interface now, with another index) is down.  One ioctl per up link on one
 * socket: a hash lookup in the kernel, cheaper than dumping every link. */
static unsigned prune(struct mh_registry *r)
{
	unsigned i, pruned = 0;
	int fd = -1;

	for (i = 0; i < r->n; i++) {
		struct mh_link *l = &r->links[i];
		struct ifreq ifr;
		int index = 0;
		if (!l->up)
			continue;
		if (fd < 0)
			fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		memset(&ifr, 0, sizeof ifr);
		snprintf(ifr.ifr_name, sizeof ifr.ifr_name, "%s", l->ifname);
		if (fd >= 0 && ioctl(fd, SIOCGIFINDEX, &ifr) == 0)
			index = ifr.ifr_ifindex;
		else if (fd < 0)
			index = (int)if_nametoindex(l->ifname);
		if (index == l->ifindex)
			continue;
		mh_log(MH_LOG_INFO, "%s: interface %s (index %d) is gone; withdrawing the link",
		       l->cfg.name, l->ifname, l->ifindex);
		l->up = 0;
		l->dirty = 1;
		pruned++;
	}
	if (fd >= 0)
		close(fd);
	return pruned;
}

/* Write back the entries an event changed (flagged by ->dirty). */
static void store_all(struct mh_registry *r)
{
	char e[MH_ERR_MAX];
	unsigned i;

	r->synced = 1;

	for (i = 0; i < r->n; i++) {
		if (!r->links[i].dirty)
			continue;
		r->links[i].dirty = 0;
		if (mh_reg_store(&r->links[i], e, sizeof e) < 0)
			mh_log(MH_LOG_ERR, "%s", e);
	}
}

static int used_by_other(const struct mh_registry *r, const struct mh_link *self,
			 int only_up, int (*same)(const struct mh_config *, const struct mh_config *),
			 const struct mh_config *c)
{
	unsigned i;

	for (i = 0; i < r->n; i++) {
		const struct mh_link *o = &r->links[i];
		if (o == self || !strcmp(o->cfg.name, self->cfg.name) || (only_up && !o->up))
			continue;
		if (same(&o->cfg, c))
			return 1;
	}
	return 0;
}

static int same_table(const struct mh_config *a, const struct mh_config *b) { return a->table == b->table; }
static int same_prio(const struct mh_config *a, const struct mh_config *b) { return a->priority == b->priority; }

static unsigned free_slot(const struct mh_registry *r)
{
	unsigned s, i;

	for (s = 0; s < MH_MAX_LINKS; s++) {
		for (i = 0; i < r->n && r->links[i].slot != s; i++)
			;
		if (i == r->n)
			return s;
	}
	return MH_MAX_LINKS;
}

/* Fill what the user left unset; prefer what this link had before, then
 * values no other entry (up or down) holds, then values no up link holds. */
static int allocate(struct mh_registry *r, struct mh_link *l, const struct mh_link *old,
		    char *err, size_t len)
{
	struct mh_config *c = &l->cfg;
	int pass;

	l->slot = old ? old->slot : free_slot(r);
	if (l->slot >= MH_MAX_LINKS) {
		snprintf(err, len, "no free slot: %d links are registered", MH_MAX_LINKS);
		return -1;
	}
	if (!c->table_set) {
		struct mh_config t = *c;
		t.table = old ? old->cfg.table : DEFAULT_TABLE_BASE + l->slot;
		for (pass = 0; pass < 2; pass++)
			while (used_by_other(r, l, pass, same_table, &t))
				t.table++;
		c->table = t.table;
	}
	if (!c->priority_set) {
		struct mh_config t = *c;
		t.priority = old ? old->cfg.priority : DEFAULT_PRIO_BASE + l->slot;
		for (pass = 0; pass < 2; pass++)
			while (used_by_other(r, l, pass, same_prio, &t) && t.priority < MH_PRIO_MAX)
				t.priority++;
		c->priority = t.priority;
	}
	if (!c->mark_set) {
		struct mh_config t = *c;
		int bit, found = 0;
		if (old && old->cfg.mark && !used_by_other(r, l, 1, marks_clash, &old->cfg)) {
			c->mark = old->cfg.mark;
			c->mask = old->cfg.mask;
			return 0;
		}
		for (pass = 0; pass < 2 && !found; pass++)
			for (bit = 0; bit < DEFAULT_MARK_BITS && !found; bit++) {
				t.mark = t.mask = 1u << (DEFAULT_MARK_SHIFT + bit);
				if (!used_by_other(r, l, pass, marks_clash, &t))
					found = 1;
			}
		if (!found) {
			snprintf(err, len, "link %s: no free default mark (bits 24-31 are all in use); "
				 "set multihome-mark (mark=) explicitly", c->name);
			return -1;
		}
		c->mark = t.mark;
		c->mask = t.mask;
	}
	return 0;
}

static int conflicts(const struct mh_registry *r, const struct mh_link *l, char *err, size_t len)
{
	const struct mh_config *c = &l->cfg;
	unsigned i;

	for (i = 0; i < r->n; i++) {
		const struct mh_link *o = &r->links[i];
		if (!o->up || !strcmp(o->cfg.name, c->name))
			continue;
		if (o->cfg.table == c->table) {
			snprintf(err, len, "link %s: table %u is already used by link %s (%s)",
				 c->name, c->table, o->cfg.name, o->ifname);
			return -1;
		}
		if (o->cfg.priority == c->priority) {
			snprintf(err, len, "link %s: priority %u is already used by link %s (%s)",
				 c->name, c->priority, o->cfg.name, o->ifname);
			return -1;
		}
		if (marks_clash(&o->cfg, c)) {
			snprintf(err, len, "link %s: mark 0x%x/0x%x clashes with link %s's mark 0x%x/0x%x",
				 c->name, c->mark, c->mask, o->cfg.name, o->cfg.mark, o->cfg.mask);
			return -1;
		}
		if (!strcmp(o->ifname, l->ifname)) {
			snprintf(err, len, "link %s: interface %s is already registered by link %s",
				 c->name, l->ifname, o->cfg.name);
			return -1;
		}
		if (o->local == l->local) {
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &l->local, a, sizeof a);
			snprintf(err, len, "link %s: local address %s is already used by link %s",
				 c->name, a, o->cfg.name);
			return -1;
		}
	}
	return 0;
}

static int valid_ifname(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n >= IF_NAMESIZE)
		return 0;
	for (; *s; s++)
		if (!isgraph((unsigned char)*s) || *s == '/' || *s == ':')
			return 0;
	return 1;
}

/* Check what the host (and through it the far end) told us. */
static int check_link(struct mh_link *l, char *err, size_t len)
{
	char why[128];

	if (!valid_ifname(l->ifname)) {
		snprintf(err, len, "bad interface name '%.*s'", IF_NAMESIZE, l->ifname);
		return -1;
	}
	if (!l->cfg.name_set) {
		snprintf(l->cfg.name, sizeof l->cfg.name, "%s", l->ifname);
		l->cfg.name_set = 1;
	}
	if (mh_config_check(&l->cfg, err, len) < 0)
		return -1;
	l->ifindex = (int)if_nametoindex(l->ifname);
	if (!l->ifindex) {
		snprintf(err, len, "link %s: interface %s does not exist", l->cfg.name, l->ifname);
		return -1;
	}
	if (mh_addr_check(l->local, "local address", why, sizeof why) < 0 ||
	    (l->peer && mh_addr_check(l->peer, "peer address", why, sizeof why) < 0) ||
	    (l->gateway && mh_addr_check(l->gateway, "gateway", why, sizeof why) < 0)) {
		snprintf(err, len, "link %s refused: %s", l->cfg.name, why);
		return -1;
	}
	{       /* none of them may claim a network of the host (the LAN) */
		static const char *const what[] = { "local address", "peer address", "gateway" };
		const uint32_t addrs[] = { l->local, l->peer, l->gateway };
		char a[INET_ADDRSTRLEN];
		int hit = mh_nl_addr_foreign_prefix(addrs, 3, l->ifindex, why, sizeof why);
		if (hit) {
			inet_ntop(AF_INET, &addrs[hit - 1], a, sizeof a);
			snprintf(err, len, "link %s refused: %s %s lies in %s, a network of this host",
				 l->cfg.name, what[hit - 1], a, why);
			return -1;
		}
	}
	return 0;
}

static void set_rp_filter(const char *ifname)
{
	char path[128];
	int fd;

	snprintf(path, sizeof path, "/proc/sys/net/ipv4/conf/%s/rp_filter", ifname);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, "2", 1) != 1)
		mh_log(MH_LOG_WARN, "cannot set %s to 2 (loose): %s", path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

/* What an event means for conntrack (common/ct.c).  At its start: the up
 * links (before any prune). */
static void ct_job_begin(struct mh_ct_job *job, const struct mh_registry *r)
{
	unsigned i;

	job->ngone = 0;
	for (i = 0; i < r->n; i++) {
		if (!r->links[i].up)
			continue;
		job->gone[job->ngone] = r->links[i].local;
		memcpy(job->gone_name[job->ngone++], r->links[i].cfg.name, sizeof job->gone_name[0]);
	}
}

/* At its end: of those, the ones whose address no up link has now are gone;
 * HOME (or NULL) came up. */
static void ct_job_end(struct mh_ct_job *job, const struct mh_registry *r, const struct mh_link *home)
{
	const struct mh_link *up[MH_MAX_LINKS];
	unsigned i, k, n = mh_up_links(r, up), was = job->ngone;

	job->home = NULL;
	if (home) {
		job->home_copy = *home;
		job->home = &job->home_copy;
	}
	job->ours = mh_mark_union(up, n);
	for (job->nup = 0; job->nup < n; job->nup++)
		job->up[job->nup] = up[job->nup]->local;
	for (i = job->ngone = 0; i < was; i++) {
		for (k = 0; k < n && up[k]->local != job->gone[i]; k++)
			;
		if (k < n)
			continue;
		job->gone[job->ngone] = job->gone[i];
		memmove(job->gone_name[job->ngone++], job->gone_name[i], sizeof job->gone_name[0]);
	}
}

static void ct_job_main(void *job)
{
	mh_ct_run(job);
	_exit(0);
}

/* The conntrack dump walks the whole hash table (tens of ms on a big host),
 * so the event does not wait for it: pppd's watcher runs it, else a detached
 * grandchild (the host never sees a child of ours, nothing is exec'd). */
static void ct_start(const struct mh_ct_job *job)
{
	if (!mh_ct_wanted(job) || mh_watch_ct(job) == 0)
		return;
	if (mh_run_detached(ct_job_main, (void *)job, NULL, 0) < 0)
		mh_ct_run(job);
}

static int pid_alive(int pid)
{
	return pid > 0 && (kill(pid, 0) == 0 || errno == EPERM);
}

static void begin(void)
{
	struct mh_stats *s = mh_stats_mut();

	memset(s, 0, sizeof *s);
	s->usec = mh_now_usec();
}

static long long end(void)
{
	struct mh_stats *s = mh_stats_mut();

	s->usec = mh_now_usec() - s->usec;
	return s->usec;
}

int mh_link_up(struct mh_link *in, char *err, size_t len)
{
	static struct before before;
	struct mh_registry r;
	struct mh_link *slot, saved, *old;
	static struct mh_ct_job job;
	char a[INET_ADDRSTRLEN], e2[MH_ERR_MAX];
	int had;

	begin();
	if (check_link(in, err, len) < 0)
		return -1;
	if (mh_reg_open(&r, err, len) < 0)
		return -1;
	snapshot(&r, &before);
	ct_job_begin(&job, &r);
	prune(&r);
	old = mh_reg_find(&r, in->cfg.name);
	if (old && old->up && strcmp(old->ifname, in->ifname) && if_nametoindex(old->ifname) &&
	    old->pid != getpid() && pid_alive(old->pid)) {
		snprintf(err, len, "link %s is already up on %s (registered by pid %d)",
			 in->cfg.name, old->ifname, old->pid);
		goto fail;
	}
	if (allocate(&r, in, old, err, len) < 0 || conflicts(&r, in, err, len) < 0)
		goto fail;
	in->up = 1;
	in->since = time(NULL);
	in->pid = getpid();

	had = old != NULL;
	if (!had && r.n >= MH_MAX_LINKS) {
		snprintf(err, len, "registry full (%d links)", MH_MAX_LINKS);
		goto fail;
	}
	slot = had ? old : &r.links[r.n++];
	if (had)
		saved = *old;
	*slot = *in;
	slot->dirty = 1;
	before.unsure = mh_reg_begin(&r);
	if (apply(&r, &before, slot, err, len) < 0) {
		/* put the kernel back as the registry (minus the pruned) was */
		if (had)
			*slot = saved;
		else
			r.n--;
		if (apply(&r, NULL, NULL, e2, sizeof e2) < 0)
			mh_log(MH_LOG_ERR, "%s: rollback failed too: %s", in->cfg.name, e2);
		else
			mh_reg_end(&r);
		goto fail;
	}
	set_rp_filter(in->ifname);
	*in = *slot;
	ct_job_end(&job, &r, in);
	store_all(&r);
	mh_reg_end(&r);
	mh_reg_close(&r);
	end();
	ct_start(&job);
	inet_ntop(AF_INET, &in->local, a, sizeof a);
	mh_log(MH_LOG_INFO, "%s up on %s: local %s, table %u, mark 0x%x/0x%x, priority %u, weight %u, "
	       "%u pins; %u netlink messages, %u firewall commits, %lld us",
	       in->cfg.name, in->ifname, a, in->cfg.table, in->cfg.mark, in->cfg.mask,
	       in->cfg.priority, in->cfg.weight, in->cfg.npins, mh_last_stats()->nl_msgs,
	       mh_last_stats()->fw_commits, mh_last_stats()->usec);
	return 0;
fail:
	mh_reg_close(&r);
	end();
	return -1;
}

int mh_link_down(const char *name, const char *ifname, char *err, size_t len)
{
	static struct before before;
	static struct mh_ct_job job;
	struct mh_registry r;
	struct mh_link *l;
	unsigned pruned;

	begin();
	if (mh_reg_open(&r, err, len) < 0)
		return -1;
	snapshot(&r, &before);
	ct_job_begin(&job, &r);
	pruned = prune(&r);
	l = mh_reg_find(&r, name);
	if (l && l->up && ifname && strcmp(l->ifname, ifname))
		l = NULL;               /* registered again on another interface since */
	if (l && l->up) {
		l->up = 0;
		l->dirty = 1;
	} else if (!pruned) {
		mh_reg_close(&r);
		end();
		return 0;               /* nothing to do */
	}
	before.unsure = mh_reg_begin(&r);
	if (apply(&r, &before, NULL, err, len) < 0) {
		mh_reg_close(&r);       /* still marked under way: the next event reads the kernel */
		end();
		return -1;
	}
	ct_job_end(&job, &r, NULL);
	store_all(&r);
	mh_reg_end(&r);
	mh_reg_close(&r);
	end();
	ct_start(&job);
	mh_log(MH_LOG_INFO, "%s down%s%s: %u netlink messages, %u firewall commits, %lld us",
	       name, ifname ? " on " : "", ifname ? ifname : "", mh_last_stats()->nl_msgs,
	       mh_last_stats()->fw_commits, mh_last_stats()->usec);
	return 0;
}

/* An event that only prunes: the links whose interface is gone are
 * withdrawn and their flows move on.  The watcher's, once its pppd and the
 * unit are gone; a link registered again on a new unit meanwhile is kept. */
int mh_prune(char *err, size_t len)
{
	static struct before before;
	static struct mh_ct_job job;
	struct mh_registry r;
	unsigned pruned;
	int rc = 0;

	begin();
	if (mh_reg_open(&r, err, len) < 0)
		return -1;
	snapshot(&r, &before);
	ct_job_begin(&job, &r);
	pruned = prune(&r);
	if (pruned) {
		before.unsure = mh_reg_begin(&r);
		rc = apply(&r, &before, NULL, err, len);
		if (!rc) {      /* else still marked under way: the next event reads the kernel */
			ct_job_end(&job, &r, NULL);
			store_all(&r);
			mh_reg_end(&r);
		}
	}
	mh_reg_close(&r);
	end();
	if (pruned && !rc)
		ct_start(&job);
	return rc;
}

int mh_reconcile(char *err, size_t len)
{
	static struct mh_ct_job job;
	struct mh_registry r;
	int rc;

	begin();
	if (mh_reg_open(&r, err, len) < 0)
		return -1;
	ct_job_begin(&job, &r);
	prune(&r);
	mh_reg_begin(&r);
	rc = apply(&r, NULL, NULL, err, len);        /* read the kernel, repair everything */
	if (!rc) {
		ct_job_end(&job, &r, NULL);
		store_all(&r);
		mh_reg_end(&r);
	}
	mh_reg_close(&r);
	end();
	if (!rc)
		ct_start(&job);
	return rc;
}

int mh_flush(char *err, size_t len)
{
	struct mh_registry r;
	unsigned i;
	int rc;

	begin();
	if (mh_reg_open(&r, err, len) < 0)
		return -1;
	for (i = 0; i < r.n; i++)
		r.links[i].up = 0;      /* entries are removed below, not rewritten */
	mh_reg_begin(&r);
	rc = apply(&r, NULL, NULL, err, len);
	if (!rc)
		mh_reg_end(&r);
	for (i = 0; !rc && i < r.n; i++)
		if (mh_reg_forget(r.links[i].cfg.name, err, len) < 0)
			rc = -1;
	mh_reg_close(&r);
	end();
	return rc;
}
