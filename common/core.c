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

/* Would A's fwmark rule catch B's packets, or B's catch A's? */
static int marks_clash(const struct mh_config *a, const struct mh_config *b)
{
	return (b->mark & a->mask) == a->mark || (a->mark & b->mask) == b->mark;
}

/* The links of the plan of the registry as it is now (its objects are made
 * by apply, once it knows what the event changed).  BACKEND: chosen once per
 * event. */
static int plan_of(const struct mh_registry *r, enum mh_fw_backend backend, struct mh_plan *p,
		   char *err, size_t len)
{
	struct mh_plan_input in = { .links = r->links, .n = r->n,
				    .nexthops = mh_nexthops_supported(), .backend = backend };

	if (mh_plan_links(&in, p) < 0) {
		snprintf(err, len, "out of memory");
		return -1;
	}
	return 0;
}

static int plan_index(const struct mh_plan *p, const char *name)
{
	unsigned i;

	for (i = 0; p && name && i < p->nlinks; i++)
		if (!strcmp(p->links[i].name, name))
			return (int)i;
	return -1;
}

static unsigned prune(struct mh_registry *r, int every);

/* Make the kernel hold the registry's state.  BEFORE: the links of the plan
 * of what it holds now (NULL: unknown, read the kernel).  TOUCHED: the link
 * coming up.  The incremental path plans only the links the event changes;
 * the full path plans everything and looks up every link's interface first
 * (the kernel may hold anything after an interrupted event). */
static int apply(struct mh_registry *r, enum mh_fw_backend backend, struct mh_plan *before,
		 int unsure, const char *touched, char *err, size_t len)
{
	struct mh_plan after;
	int full = !before || unsure, rc, at;
	long long t;

	if (full)
		prune(r, 1);
	if (plan_of(r, backend, &after, err, len) < 0)
		return -1;
	at = plan_index(&after, touched);
	if (!full && mh_plan_select(before, &after, at) < 0)
		full = 1;
	if (full)
		before = NULL;
	rc = (before && mh_plan_routing(before) < 0) || mh_plan_routing(&after) < 0 ? -1 : 0;
	if (rc == 0)
		rc = mh_routing_apply(before, &after, at, full, err, len);
	else
		snprintf(err, len, "out of memory");
	t = mh_now_usec();
	if (rc == 0) {
		/* plans of the firewall: whole both if the routing fell back to the full path */
		if ((before && !after.mine && mh_plan_whole(before) < 0) ||
		    (before && mh_plan_firewall(before) < 0) || mh_plan_firewall(&after) < 0) {
			snprintf(err, len, "out of memory");
			rc = -1;
		}
	}
	if (rc == 0)
		rc = mh_fw_apply(before, &after, full, err, len);
	mh_stats_mut()->fw_usec += mh_now_usec() - t;
	mh_plan_free(&after);
	return rc;
}

/* Put the kernel back as the registry was before an event changed SLOT
 * (the saved entry, or a new one at the end). */
static void roll_back(struct mh_registry *r, enum mh_fw_backend backend, struct mh_link *slot,
		      const struct mh_link *saved, const char *name)
{
	char e2[MH_ERR_MAX];

	if (saved)
		*slot = *saved;
	else
		r->n--;
	if (apply(r, backend, NULL, 1, NULL, e2, sizeof e2) < 0)
		mh_log(MH_LOG_ERR, "%s: rollback failed too: %s", name, e2);
	else
		mh_reg_end(r);
}

/* The kernel is the truth: a link whose interface is gone (or is another
 * interface now, with another index) is down.  A link whose nexthop is a
 * member of the kernel's balanced group has its interface (the kernel
 * deletes a device's nexthops with it), so one read of the group tells for
 * all of them; the others (weight 0, offline, no nexthop objects) and with
 * EVERY all up links are looked up one by one (a hash lookup each). */
static unsigned prune(struct mh_registry *r, int every)
{
	unsigned char *member = NULL;
	unsigned i, pruned = 0;

	if (!every && (member = malloc(MH_MAX_LINKS)) && mh_rt_group_slots(member, MH_MAX_LINKS) < 0) {
		free(member);
		member = NULL;
	}
	for (i = 0; i < r->n; i++) {
		struct mh_link *l = &r->links[i];
		if (!l->up || (member && l->slot < MH_MAX_LINKS && member[l->slot]) ||
		    mh_ifindex(l->ifname) == l->ifindex)
			continue;
		mh_log(MH_LOG_INFO, "%s: interface %s (index %d) is gone; withdrawing the link",
		       l->cfg.name, l->ifname, l->ifindex);
		l->up = 0;
		l->dirty = 1;
		pruned++;
	}
	free(member);
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

/* ONLY_PRESENT: count only links in the kernel now (up, or strict and down). */
static int used_by_other(const struct mh_registry *r, const struct mh_link *self,
			 int only_present, int (*same)(const struct mh_config *, const struct mh_config *),
			 const struct mh_config *c)
{
	unsigned i;

	for (i = 0; i < r->n; i++) {
		const struct mh_link *o = &r->links[i];
		if (o == self || !strcmp(o->cfg.name, self->cfg.name) ||
		    (only_present && !mh_link_present(o)))
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
		/* a strict link holds its table, priority and mark also while down */
		if (!mh_link_present(o) || !strcmp(o->cfg.name, c->name))
			continue;
		if (o->cfg.table == c->table) {
			snprintf(err, len, "link %s: table %u is already used by link %s (%s)",
				 c->name, c->table, o->cfg.name, o->up ? o->ifname : "down, pin-fallback no");
			return -1;
		}
		if (o->cfg.priority == c->priority) {
			snprintf(err, len, "link %s: priority %u is already used by link %s (%s)",
				 c->name, c->priority, o->cfg.name, o->up ? o->ifname : "down, pin-fallback no");
			return -1;
		}
		if (marks_clash(&o->cfg, c)) {
			snprintf(err, len, "link %s: mark 0x%x/0x%x clashes with link %s's mark 0x%x/0x%x",
				 c->name, c->mark, c->mask, o->cfg.name, o->cfg.mark, o->cfg.mask);
			return -1;
		}
		if (!o->up || !l->up)
			continue;
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
		/* the far end of one link cannot be an end of another: its host
		 * route would take that link's traffic */
		if (l->peer && (l->peer == o->peer || l->peer == o->local)) {
			char a[INET_ADDRSTRLEN];
			inet_ntop(AF_INET, &l->peer, a, sizeof a);
			snprintf(err, len, "link %s refused: peer address %s is already %s of link %s (%s)",
				 c->name, a, l->peer == o->peer ? "the peer" : "the local address",
				 o->cfg.name, o->ifname);
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
	if (l->local_plen > 31) {
		snprintf(err, len, "link %s refused: bad prefix length /%u of its network",
			 l->cfg.name, l->local_plen);
		return -1;
	}
	l->ifindex = mh_ifindex(l->ifname);
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
	return 0;
}

/* None of the link's addresses may claim a network of the host (the LAN).
 * The FIB lookups carry the mark of the up link of the lowest priority:
 * right after main's suppress rule its table answers, so an address that
 * main holds no network for costs one rule and one route, not a walk over
 * every link's rules down to main's default with all its nexthops. */
static int check_networks(const struct mh_registry *r, const struct mh_link *l, char *err,
			  size_t len)
{
	static const char *const what[] = { "local address", "peer address", "gateway" };
	const uint32_t addrs[] = { l->local, l->peer, l->gateway };
	const struct mh_link *via = NULL;
	char a[INET_ADDRSTRLEN], why[128];
	unsigned i;
	int hit;

	for (i = 0; i < r->n; i++) {
		const struct mh_link *o = &r->links[i];
		if (o->up && strcmp(o->cfg.name, l->cfg.name) && (!via || o->cfg.priority < via->cfg.priority))
			via = o;
	}
	hit = mh_nl_addr_foreign_prefix(addrs, 3, l->local_plen, l->ifindex, via ? via->cfg.mark : 0,
					via ? via->cfg.table : 0, why, sizeof why);
	if (!hit)
		return 0;
	inet_ntop(AF_INET, &addrs[hit - 1], a, sizeof a);
	if (hit == 1 && l->local_plen)
		snprintf(err, len, "link %s refused: its network %s/%u overlaps %s, a "
			 "network of this host", l->cfg.name, a, l->local_plen, why);
	else
		snprintf(err, len, "link %s refused: %s %s lies in %s, a network of this host",
			 l->cfg.name, what[hit - 1], a, why);
	return -1;
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

/* The up links now (a set, in registry order): their addresses and the
 * union of their mark bits. */
static void ct_job_up(struct mh_ct_job *job, const struct mh_registry *r)
{
	unsigned i;

	job->ours = 0;
	job->nup = 0;
	for (i = 0; i < r->n; i++) {
		if (!r->links[i].up)
			continue;
		job->ours |= r->links[i].cfg.mask;
		job->up[job->nup++] = r->links[i].local;
	}
}

/* At its end: of those, the ones whose address no up link has now are gone;
 * HOME (or NULL) came up. */
static void ct_job_end(struct mh_ct_job *job, const struct mh_registry *r, const struct mh_link *home)
{
	unsigned i, k, was = job->ngone;

	job->home = NULL;
	if (home) {
		job->home_copy = *home;
		job->home = &job->home_copy;
	}
	ct_job_up(job, r);
	for (i = job->ngone = 0; i < was; i++) {
		for (k = 0; k < job->nup && job->up[k] != job->gone[i]; k++)
			;
		if (k < job->nup)
			continue;
		job->gone[job->ngone] = job->gone[i];
		memmove(job->gone_name[job->ngone++], job->gone_name[i], sizeof job->gone_name[0]);
	}
}

/* A health event: L went offline (its outgoing flows move on, as a dead
 * link's do, when another up link is online to take them) or online (its
 * pinned flows come home). */
static void ct_job_health(struct mh_ct_job *job, const struct mh_registry *r, const struct mh_link *l)
{
	unsigned i, others = 0;

	ct_job_up(job, r);
	job->home = NULL;
	job->ngone = 0;
	if (l->online) {
		job->home_copy = *l;
		job->home = &job->home_copy;
		return;
	}
	for (i = 0; i < r->n; i++)
		others += &r->links[i] != l && r->links[i].up && r->links[i].online;
	if (!others)
		return;         /* nowhere better to go */
	job->gone[0] = l->local;
	memcpy(job->gone_name[0], l->cfg.name, sizeof job->gone_name[0]);
	job->ngone = 1;
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

/* Put L into the registry (in OLD's place, or a slot of its own) and make
 * the kernel hold it (TOUCHED: the link coming up, or NULL); on failure the
 * kernel is put back as the registry (minus the pruned) was.  NULL, or the
 * entry. */
static struct mh_link *place(struct mh_registry *r, enum mh_fw_backend backend, struct mh_plan *before,
			     const struct mh_link *l, struct mh_link *old, const char *touched,
			     char *err, size_t len)
{
	struct mh_link saved, *slot;

	if (!old && r->n >= MH_MAX_LINKS) {
		snprintf(err, len, "registry full (%d links)", MH_MAX_LINKS);
		return NULL;
	}
	slot = old ? old : &r->links[r->n++];
	if (old)
		saved = *old;
	*slot = *l;
	slot->dirty = 1;
	if (apply(r, backend, before, mh_reg_begin(r), touched, err, len) < 0) {
		roll_back(r, backend, slot, old ? &saved : NULL, l->cfg.name);
		return NULL;
	}
	return slot;
}

int mh_link_up(struct mh_link *in, char *err, size_t len)
{
	struct mh_registry r;
	struct mh_link *slot, *old;
	struct mh_plan before;
	enum mh_fw_backend backend;
	static struct mh_ct_job job;
	char a[INET_ADDRSTRLEN];

	begin();
	if (check_link(in, err, len) < 0)
		return -1;
	if (mh_reg_open(&r, err, len) < 0)
		return -1;
	backend = mh_fw_backend();
	if (plan_of(&r, backend, &before, err, len) < 0)
		goto fail_open;
	ct_job_begin(&job, &r);
	prune(&r, 0);
	if (check_networks(&r, in, err, len) < 0)
		goto fail;
	old = mh_reg_find(&r, in->cfg.name);
	if (old && old->up && strcmp(old->ifname, in->ifname) && mh_ifindex(old->ifname) &&
	    old->pid != getpid() && pid_alive(old->pid)) {
		snprintf(err, len, "link %s is already up on %s (registered by pid %d)",
			 in->cfg.name, old->ifname, old->pid);
		goto fail;
	}
	in->up = 1;
	in->online = 1;         /* until its upstream tracking says otherwise */
	if (allocate(&r, in, old, err, len) < 0 || conflicts(&r, in, err, len) < 0)
		goto fail;
	in->since = time(NULL);
	in->health_since = in->since;
	in->pid = getpid();
	slot = place(&r, backend, &before, in, old, in->cfg.name, err, len);
	if (!slot)
		goto fail;
	mh_plan_free(&before);
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
	       "%u pins; %u netlink messages, %u firewall commits, %lld us (firewall %lld us)",
	       in->cfg.name, in->ifname, a, in->cfg.table, in->cfg.mark, in->cfg.mask,
	       in->cfg.priority, in->cfg.weight, in->cfg.npins, mh_last_stats()->nl_msgs,
	       mh_last_stats()->fw_commits, mh_last_stats()->usec, mh_last_stats()->fw_usec);
	return 0;
fail:
	mh_plan_free(&before);
fail_open:
	mh_reg_close(&r);
	end();
	return -1;
}

int mh_link_down(const char *name, const char *ifname, char *err, size_t len)
{
	static struct mh_ct_job job;
	struct mh_registry r;
	struct mh_plan before;
	enum mh_fw_backend backend;
	struct mh_link *l;
	unsigned pruned;
	int rc;

	begin();
	if (mh_reg_open(&r, err, len) < 0)
		return -1;
	backend = mh_fw_backend();
	if (plan_of(&r, backend, &before, err, len) < 0) {
		mh_reg_close(&r);
		end();
		return -1;
	}
	ct_job_begin(&job, &r);
	pruned = prune(&r, 0);
	l = mh_reg_find(&r, name);
	if (l && l->up && ifname && strcmp(l->ifname, ifname))
		l = NULL;               /* registered again on another interface since */
	if (l && l->up) {
		l->up = 0;
		l->dirty = 1;
	} else if (!pruned) {
		mh_plan_free(&before);
		mh_reg_close(&r);
		end();
		return 0;               /* nothing to do */
	}
	rc = apply(&r, backend, &before, mh_reg_begin(&r), NULL, err, len);
	mh_plan_free(&before);
	if (rc < 0) {
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
	mh_log(MH_LOG_INFO, "%s down%s%s: %u netlink messages, %u firewall commits, %lld us "
	       "(firewall %lld us)", name, ifname ? " on " : "", ifname ? ifname : "",
	       mh_last_stats()->nl_msgs, mh_last_stats()->fw_commits, mh_last_stats()->usec,
	       mh_last_stats()->fw_usec);
	return 0;
}

int mh_link_prepare(const struct mh_config *c, char *err, size_t len)
{
	struct mh_registry r;
	struct mh_plan before;
	struct mh_link l, *old, *slot;
	enum mh_fw_backend backend;
	char pins[MH_MAX_PINS * 48] = "", pin[64];
	unsigned i;

	if (c->pin_fallback || !c->npins)
		return 0;
	if (!c->name_set) {
		snprintf(err, len, "pin-fallback no needs the link's name (multihome-name; name= for "
			 "OpenVPN): its pins are refused from the start, before the link is up");
		return -1;
	}
	if (mh_config_check(c, err, len) < 0)
		return -1;
	begin();
	if (mh_reg_open(&r, err, len) < 0)
		return -1;
	backend = mh_fw_backend();
	if (plan_of(&r, backend, &before, err, len) < 0)
		goto fail_open;
	prune(&r, 0);
	old = mh_reg_find(&r, c->name);
	if (old && old->up)
		goto done;      /* up already: nothing to hold */
	memset(&l, 0, sizeof l);
	l.cfg = *c;
	l.pid = getpid();
	if (allocate(&r, &l, old, err, len) < 0 || conflicts(&r, &l, err, len) < 0)
		goto fail;
	slot = place(&r, backend, &before, &l, old, NULL, err, len);
	if (!slot)
		goto fail;
	store_all(&r);
	mh_reg_end(&r);
	for (i = 0; i < c->npins; i++)
		snprintf(pins + strlen(pins), sizeof pins - strlen(pins), "%s%s", i ? "; " : "",
			 mh_pin_format(&c->pins[i], pin, sizeof pin));
	mh_log(MH_LOG_INFO, "%s: pin-fallback no: while the link is down, its pins are refused "
	       "(%s); table %u, mark 0x%x/0x%x", c->name, pins, slot->cfg.table, slot->cfg.mark,
	       slot->cfg.mask);
done:
	mh_plan_free(&before);
	mh_reg_close(&r);
	end();
	return 0;
fail:
	mh_plan_free(&before);
fail_open:
	mh_reg_close(&r);
	end();
	return -1;
}

int mh_link_health(const char *name, const char *ifname, int online, const char *why,
		   char *err, size_t len)
{
	static struct mh_ct_job job;
	struct mh_registry r;
	struct mh_plan before;
	enum mh_fw_backend backend;
	struct mh_link *l;
	int rc = 0;

	begin();
	if (mh_reg_open(&r, err, len) < 0)
		return -1;
	backend = mh_fw_backend();
	if (plan_of(&r, backend, &before, err, len) < 0) {
		mh_reg_close(&r);
		return -1;
	}
	prune(&r, 0);
	l = mh_reg_find(&r, name);
	/* a tracker of a link that is no longer up here, or no change: nothing */
	if (!l || !l->up || (ifname && strcmp(l->ifname, ifname)) || l->online == online)
		goto out;
	l->online = online;
	l->health_since = time(NULL);
	l->dirty = 1;
	rc = apply(&r, backend, &before, mh_reg_begin(&r), NULL, err, len);
	if (rc < 0)
		goto out;       /* still marked under way: the next event reads the kernel */
	ct_job_health(&job, &r, l);
	store_all(&r);
	mh_reg_end(&r);
	mh_plan_free(&before);
	mh_reg_close(&r);
	end();
	mh_log(MH_LOG_INFO, "%s %s: %s; %u netlink messages, %u firewall commits, %lld us", name,
	       online ? "online" : "offline", why ? why : "", mh_last_stats()->nl_msgs,
	       mh_last_stats()->fw_commits, mh_last_stats()->usec);
	ct_start(&job);
	return 0;
out:
	mh_plan_free(&before);
	mh_reg_close(&r);
	end();
	return rc;
}

int mh_link_forget(const char *name, char *err, size_t len)
{
	struct mh_registry r;
	struct mh_plan before;
	enum mh_fw_backend backend;
	struct mh_link *l;
	int rc = -1;

	begin();
	if (mh_reg_open(&r, err, len) < 0)
		return -1;
	backend = mh_fw_backend();
	if (plan_of(&r, backend, &before, err, len) < 0)
		goto out_open;
	prune(&r, 0);
	l = mh_reg_find(&r, name);
	if (!l) {
		snprintf(err, len, "no link %s in %s", name, mh_rundir());
		goto out;
	}
	if (l->up) {
		snprintf(err, len, "link %s is up on %s: bring it down first", name, l->ifname);
		goto out;
	}
	memmove(l, l + 1, (size_t)(&r.links[r.n] - (l + 1)) * sizeof *l);
	r.n--;
	rc = apply(&r, backend, &before, mh_reg_begin(&r), NULL, err, len);
	if (rc == 0)
		rc = mh_reg_forget(name, err, len);
	if (rc == 0) {
		store_all(&r);
		mh_reg_end(&r);
	}
out:
	mh_plan_free(&before);
out_open:
	mh_reg_close(&r);
	end();
	return rc;
}

/* An event that only prunes: the links whose interface is gone are
 * withdrawn and their flows move on.  The watcher's, once its pppd and the
 * unit are gone; a link registered again on a new unit meanwhile is kept. */
int mh_prune(char *err, size_t len)
{
	static struct mh_ct_job job;
	struct mh_registry r;
	struct mh_plan before;
	enum mh_fw_backend backend;
	unsigned pruned;
	int rc = 0;

	begin();
	if (mh_reg_open(&r, err, len) < 0)
		return -1;
	backend = mh_fw_backend();
	if (plan_of(&r, backend, &before, err, len) < 0) {
		mh_reg_close(&r);
		end();
		return -1;
	}
	ct_job_begin(&job, &r);
	pruned = prune(&r, 0);
	if (pruned) {
		rc = apply(&r, backend, &before, mh_reg_begin(&r), NULL, err, len);
		if (!rc) {      /* else still marked under way: the next event reads the kernel */
			ct_job_end(&job, &r, NULL);
			store_all(&r);
			mh_reg_end(&r);
		}
	}
	mh_plan_free(&before);
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
	mh_reg_begin(&r);
	rc = apply(&r, mh_fw_backend(), NULL, 1, NULL, err, len); /* read the kernel, repair everything */
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
	rc = apply(&r, mh_fw_backend(), NULL, 1, NULL, err, len);
	if (!rc)
		mh_reg_end(&r);
	for (i = 0; !rc && i < r.n; i++)
		if (mh_reg_forget(r.links[i].cfg.name, err, len) < 0)
			rc = -1;
	mh_reg_close(&r);
	end();
	return rc;
}
