/* The registry: what the kernel cannot hold about a link (its name, options,
 * allocation), one file per link in the run directory, read and written
 * under one flock.  The kernel stays the truth for everything else.
 *
 * The directory is created 0700, files 0600.  An event opens the directory
 * once (O_DIRECTORY|O_NOFOLLOW, checked to be ours and not writable by
 * others) and every later open, rename and unlink is relative to that
 * descriptor; nothing is opened through a symlink, a FIFO or another
 * user's file; an entry that does not parse is reported and not trusted.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

#define ENTRY_PREFIX "link."
#define ENTRY_MAX 8192
#define LOCK_TIMEOUT_MS 20000
#define LOCK_WARN_MS    2000       /* then say who holds it */

static int fail(char *err, size_t len, const char *fmt, const char *a, int e)
{
	snprintf(err, len, fmt, a, strerror(e));
	return -1;
}

/* The descriptor of the run directory while a registry is open in this
 * process: every file of the event is opened, renamed and removed relative
 * to it, so a directory swapped for a symlink halfway is never followed. */
static int reg_dirfd = -1;

/* Split an absolute PATH into its parent (in PARENT) and its last component. */
static const char *path_split(const char *path, char *parent, size_t size)
{
	const char *slash = strrchr(path, '/');
	size_t n;

	if (!slash || path[0] != '/' || !slash[1] || !strcmp(slash + 1, ".") ||
	    !strcmp(slash + 1, ".."))
		return NULL;
	n = slash == path ? 1 : (size_t)(slash - path);
	if (n >= size)
		return NULL;
	memcpy(parent, path, n);
	parent[n] = 0;
	return slash + 1;
}

/* The directory DFD (named D) must be a real directory of ours, not writable by others. */
static int rundir_check(int dfd, const char *d, char *err, size_t len)
{
	struct stat st;

	if (fstat(dfd, &st) < 0)
		return fail(err, len, "cannot stat %s: %s", d, errno);
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, len, "%s is not a directory: refusing to use it", d);
		return -1;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 022)) {
		snprintf(err, len, "%s must be owned by uid %u and not writable by others (mode %o)",
			 d, (unsigned)geteuid(), (unsigned)(st.st_mode & 07777));
		return -1;
	}
	return 0;
}

int mh_rundir_open(int create, char *err, size_t len)
{
	const char *d = mh_rundir(), *base;
	char parent[512];
	int pfd, dfd;

	base = path_split(d, parent, sizeof parent);
	if (!base) {
		snprintf(err, len, "run directory '%.200s' is not an absolute path to a directory", d);
		return -1;
	}
	pfd = open(parent, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (pfd < 0)
		return fail(err, len, "cannot open %s: %s", parent, errno);
	if (create && mkdirat(pfd, base, 0700) < 0 && errno != EEXIST) {
		close(pfd);
		return fail(err, len, "cannot create %s: %s", d, errno);
	}
	dfd = openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 && (errno == ELOOP || errno == ENOTDIR)) {
		struct stat st;
		int link = fstatat(pfd, base, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode);
		close(pfd);
		snprintf(err, len, "%s is %s: refusing to use it", d, link ? "a symlink" : "not a directory");
		return -1;
	}
	close(pfd);
	if (dfd < 0)
		return fail(err, len, "cannot open %s: %s", d, errno);
	if (rundir_check(dfd, d, err, len) < 0) {
		close(dfd);
		return -1;
	}
	return dfd;
}

/* Is the open file FD a regular file of ours of at most MAX bytes? */
static int file_ours(int fd, const char *file, off_t max, char *err, size_t len)
{
	struct stat st;

	if (fstat(fd, &st) < 0)
		return fail(err, len, "cannot stat %s: %s", file, errno);
	if (!S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
		snprintf(err, len, "%s is not a regular file of uid %u", file,
			 (unsigned)geteuid());
		return -1;
	}
	if (st.st_size > max) {
		snprintf(err, len, "%s is too large (%lld bytes, at most %lld)", file,
			 (long long)st.st_size, (long long)max);
		return -1;
	}
	return 0;
}

ssize_t mh_rundir_read(int dfd, const char *file, char *buf, size_t size, char *err, size_t len)
{
	ssize_t r;
	int fd;

	err[0] = 0;
	if (dfd < 0)
		dfd = reg_dirfd;
	if (dfd < 0) {
		snprintf(err, len, "%s: the registry is not open", file);
		return -1;
	}
	/* non-blocking: a FIFO named as the file must not hang every link's events */
	fd = openat(dfd, file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT)
		return -1;
	if (fd < 0 && errno == ELOOP) {
		snprintf(err, len, "%s is a symlink", file);
		return -1;
	}
	if (fd < 0)
		return fail(err, len, "cannot open %s: %s", file, errno);
	if (file_ours(fd, file, (off_t)size - 1, err, len) < 0) {
		close(fd);
		return -1;
	}
	r = read(fd, buf, size - 1);
	close(fd);
	if (r < 0)
		return fail(err, len, "cannot read %s: %s", file, errno);
	buf[r] = 0;
	return r;
}

int mh_rundir_write(int dfd, const char *file, const char *tmp, const char *text,
		    char *err, size_t len)
{
	size_t n = strlen(text);
	int fd, e;

	if (dfd < 0)
		dfd = reg_dirfd;
	if (dfd < 0) {
		snprintf(err, len, "%s: the registry is not open", file);
		return -1;
	}
	unlinkat(dfd, tmp, 0);
	fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(err, len, "cannot write %s: %s", tmp, errno);
	if (write(fd, text, n) != (ssize_t)n) { /* /run is tmpfs: no fsync */
		e = errno;
		close(fd);
		unlinkat(dfd, tmp, 0);
		return fail(err, len, "cannot write %s: %s", tmp, e);
	}
	close(fd);
	if (renameat(dfd, tmp, dfd, file) < 0) {
		e = errno;
		unlinkat(dfd, tmp, 0);
		return fail(err, len, "cannot rename to %s: %s", file, e);
	}
	return 0;
}

/* Who holds the flock of FD, from /proc/locks: "pid N (comm), state" or "". */
static void lock_holder(int fd, char *out, size_t len)
{
	char line[256], comm[32] = "?", path[64], st[512];
	struct stat me;
	FILE *f;
	int pid = 0;

	out[0] = 0;
	if (fstat(fd, &me) < 0 || !(f = fopen("/proc/locks", "re")))
		return;
	while (!pid && fgets(line, sizeof line, f)) {
		unsigned maj, min;
		unsigned long ino;
		int p;
		if (sscanf(line, "%*d: FLOCK %*s %*s %d %x:%x:%lu", &p, &maj, &min, &ino) == 4 &&
		    ino == me.st_ino && makedev(maj, min) == (dev_t)me.st_dev && p != getpid())
			pid = p;
	}
	fclose(f);
	if (!pid)
		return;
	snprintf(path, sizeof path, "/proc/%d/stat", pid);
	f = fopen(path, "re");
	if (f) {
		char state = '?';
		if (fgets(st, sizeof st, f)) {
			char *open = strchr(st, '('), *close = strrchr(st, ')');
			if (open && close && close > open && close[1] == ' ') {
				snprintf(comm, sizeof comm, "%.*s", (int)(close - open - 1), open + 1);
				state = close[2];
			}
		}
		fclose(f);
		snprintf(out, len, "pid %d (%s)%s", pid, comm,
			 state == 'T' || state == 't' ? ", which is stopped" : "");
		return;
	}
	snprintf(out, len, "pid %d", pid);
}

static int lock_open(int dfd, char *err, size_t len)
{
	int fd, waited = 0;

	fd = openat(dfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return fail(err, len, "cannot open lock %s/lock: %s", mh_rundir(), errno);
	if (file_ours(fd, "lock", 4096, err, len) < 0) {
		close(fd);
		return -1;
	}
	/* poll: no alarm() inside pppd */
	while (flock(fd, LOCK_EX | LOCK_NB) < 0) {
		if (errno != EWOULDBLOCK && errno != EINTR) {
			close(fd);
			return fail(err, len, "cannot lock %s/lock: %s", mh_rundir(), errno);
		}
		if (waited == LOCK_WARN_MS || waited >= LOCK_TIMEOUT_MS) {
			char who[128];
			lock_holder(fd, who, sizeof who);
			if (waited < LOCK_TIMEOUT_MS) {
				mh_log(MH_LOG_WARN, "waiting for %s/lock, held by %s", mh_rundir(),
				       who[0] ? who : "another process");
			} else {
				close(fd);
				snprintf(err, len, "timed out after %d s waiting for %s/lock, held by %s",
					 LOCK_TIMEOUT_MS / 1000, mh_rundir(), who[0] ? who : "another process");
				return -1;
			}
		}
		usleep(1000);
		waited++;
	}
	return fd;
}

static const char *nat_name(enum mh_nat n)
{
	return n == MH_NAT_SNAT ? "snat" : n == MH_NAT_OFF ? "off" : "masquerade";
}

int mh_reg_format(const struct mh_link *l, char *buf, size_t len)
{
	char loc[INET_ADDRSTRLEN], peer[INET_ADDRSTRLEN], gw[INET_ADDRSTRLEN], pin[128];
	const struct mh_config *c = &l->cfg;
	size_t o;
	unsigned i;

	inet_ntop(AF_INET, &l->local, loc, sizeof loc);
	inet_ntop(AF_INET, &l->peer, peer, sizeof peer);
	inet_ntop(AF_INET, &l->gateway, gw, sizeof gw);
	o = (size_t)snprintf(buf, len,
		"multihome-registry 1\nname %s\nslot %u\nstate %s\nifname %s\nifindex %d\n"
		"local %s\npeer %s\ngateway %s\ntable %u\ntable_set %d\nmark 0x%x/0x%x\nmark_set %d\n"
		"priority %u\npriority_set %d\nweight %u\nnat %s\nreply_via_link %d\npin_fallback %d\n"
		"since %lld\npid %d\n",
		c->name, l->slot, l->up ? "up" : "down", l->ifname[0] ? l->ifname : "-", l->ifindex,
		loc, peer, gw, c->table, c->table_set, c->mark, c->mask, c->mark_set,
		c->priority, c->priority_set, c->weight, nat_name(c->nat), c->reply_via_link,
		c->pin_fallback, l->since, l->pid);
	for (i = 0; i < c->npins && o < len; i++)
		o += (size_t)snprintf(buf + o, len - o, "pin %s\n",
				      mh_pin_format(&c->pins[i], pin, sizeof pin));
	for (i = 0; i < c->ntrack && o < len; i++) {
		char t[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &c->track[i], t, sizeof t);
		o += (size_t)snprintf(buf + o, len - o, "%s%s%s", i ? "," : "track ", t,
				      i + 1 == c->ntrack ? "\n" : "");
	}
	if (o < len)
		o += (size_t)snprintf(buf + o, len - o, "track_interval_ms %u\ntrack_down %u\n"
				      "track_up %u\nonline %d\nhealth_since %lld\n", c->track_interval_ms,
				      c->track_down, c->track_up, l->online, l->health_since);
	return o < len ? 0 : -1;
}

static int num(const char *v, long long lo, long long hi, long long *out)
{
	char *e;
	long long x;

	errno = 0;
	x = strtoll(v, &e, 0);
	if (errno || e == v || *e || x < lo || x > hi)
		return -1;
	*out = x;
	return 0;
}

static int addr(const char *v, uint32_t *out)
{
	struct in_addr a;

	if (inet_pton(AF_INET, v, &a) != 1)
		return -1;
	*out = a.s_addr;
	return 0;
}

int mh_reg_parse(const char *text, struct mh_link *l, char *err, size_t len)
{
	char buf[ENTRY_MAX + 1], *line, *save = NULL, e2[MH_ERR_MAX];
	int lineno = 0, seen_header = 0;
	long long x;

	memset(l, 0, sizeof *l);
	mh_config_init(&l->cfg);
	l->online = 1;
	if (strlen(text) > ENTRY_MAX) {
		snprintf(err, len, "entry too large");
		return -1;
	}
	strcpy(buf, text);
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, ' ');
		int bad = 0;
		lineno++;
		if (!v) {
			snprintf(err, len, "line %d: no value", lineno);
			return -1;
		}
		*v++ = 0;
		if (!seen_header) {
			if (strcmp(line, "multihome-registry") || strcmp(v, "1")) {
				snprintf(err, len, "not a multihome registry entry (version 1)");
				return -1;
			}
			seen_header = 1;
			continue;
		}
		if (!strcmp(line, "name"))
			bad = mh_config_set(&l->cfg, "name", v, "name", e2, sizeof e2);
		else if (!strcmp(line, "slot"))
			bad = num(v, 0, MH_MAX_LINKS - 1, &x) || ((l->slot = (unsigned)x), 0);
		else if (!strcmp(line, "state"))
			bad = strcmp(v, "up") && strcmp(v, "down") ? -1 : ((l->up = !strcmp(v, "up")), 0);
		else if (!strcmp(line, "ifname")) {
			if (!strcmp(v, "-"))
				l->ifname[0] = 0;
			else if (strlen(v) >= IF_NAMESIZE || strchr(v, '/'))
				bad = -1;
			else
				strcpy(l->ifname, v);
		} else if (!strcmp(line, "ifindex"))
			bad = num(v, 0, 0x7fffffff, &x) || ((l->ifindex = (int)x), 0);
		else if (!strcmp(line, "local"))
			bad = addr(v, &l->local);
		else if (!strcmp(line, "peer"))
			bad = addr(v, &l->peer);
		else if (!strcmp(line, "gateway"))
			bad = addr(v, &l->gateway);
		else if (!strcmp(line, "table"))
			bad = mh_config_set(&l->cfg, "table", v, "table", e2, sizeof e2);
		else if (!strcmp(line, "table_set"))
			bad = num(v, 0, 1, &x) || ((l->cfg.table_set = (int)x), 0);
		else if (!strcmp(line, "mark"))
			bad = mh_config_set(&l->cfg, "mark", v, "mark", e2, sizeof e2);
		else if (!strcmp(line, "mark_set"))
			bad = num(v, 0, 1, &x) || ((l->cfg.mark_set = (int)x), 0);
		else if (!strcmp(line, "priority"))
			bad = mh_config_set(&l->cfg, "priority", v, "priority", e2, sizeof e2);
		else if (!strcmp(line, "priority_set"))
			bad = num(v, 0, 1, &x) || ((l->cfg.priority_set = (int)x), 0);
		else if (!strcmp(line, "weight"))
			bad = mh_config_set(&l->cfg, "weight", v, "weight", e2, sizeof e2);
		else if (!strcmp(line, "nat"))
			bad = mh_config_set(&l->cfg, "nat", v, "nat", e2, sizeof e2);
		else if (!strcmp(line, "reply_via_link"))
			bad = mh_config_set(&l->cfg, "reply-via-link", v, "reply_via_link", e2, sizeof e2);
		else if (!strcmp(line, "pin_fallback"))
			bad = mh_config_set(&l->cfg, "pin-fallback", v, "pin_fallback", e2, sizeof e2);
		else if (!strcmp(line, "since"))
			bad = num(v, 0, 0x7fffffffffffLL, &l->since);
		else if (!strcmp(line, "pid"))
			bad = num(v, 0, 0x7fffffff, &x) || ((l->pid = (int)x), 0);
		else if (!strcmp(line, "pin"))
			bad = mh_config_set(&l->cfg, "pin", v, "pin", e2, sizeof e2);
		else if (!strcmp(line, "track"))
			bad = mh_config_set(&l->cfg, "track", v, "track", e2, sizeof e2);
		else if (!strcmp(line, "track_interval_ms"))
			bad = num(v, 200, 60000, &x) || ((l->cfg.track_interval_ms = (unsigned)x), 0);
		else if (!strcmp(line, "track_down"))
			bad = mh_config_set(&l->cfg, "track-down", v, "track_down", e2, sizeof e2);
		else if (!strcmp(line, "track_up"))
			bad = mh_config_set(&l->cfg, "track-up", v, "track_up", e2, sizeof e2);
		else if (!strcmp(line, "online"))
			bad = num(v, 0, 1, &x) || ((l->online = (int)x), 0);
		else if (!strcmp(line, "health_since"))
			bad = num(v, 0, 0x7fffffffffffLL, &l->health_since);
		else {
			snprintf(err, len, "line %d: unknown key '%.32s'", lineno, line);
			return -1;
		}
		if (bad) {
			snprintf(err, len, "line %d: bad value for %.32s", lineno, line);
			return -1;
		}
	}
	if (!seen_header || !l->cfg.name[0] || !l->cfg.table || !l->cfg.mark || !l->cfg.priority ||
	    (l->up && (!l->ifname[0] || !l->local))) {
		snprintf(err, len, "incomplete entry");
		return -1;
	}
	/* the allocation is part of the entry, whether the user set it or not */
	l->cfg.name_set = 1;
	return 0;
}

static int read_entry(int dfd, const char *file, struct mh_link *l, char *err, size_t len)
{
	char buf[ENTRY_MAX + 1];
	ssize_t r = mh_rundir_read(dfd, file, buf, sizeof buf, err, len);

	if (r < 0 && !err[0])
		snprintf(err, len, "it vanished while being read");
	if (r < 0)
		return -1;
	if (memchr(buf, 0, (size_t)r)) {
		snprintf(err, len, "binary data");
		return -1;
	}
	return mh_reg_parse(buf, l, err, len);
}

/* A process keeps the registry it last saw, tagged with the generation
 * number every writer bumps in the lock file (under the lock).  An event
 * re-reads the entries only when another process changed them since. */
static struct {
	struct mh_link *links;
	unsigned n, cap;        /* allocated to need, not for MH_MAX_LINKS */
	uint64_t gen;
	int valid;
	char rundir[256];
	dev_t dev;              /* the lock file itself: a new directory is a new registry */
	ino_t ino;
} cache;
static int reg_changed, reg_cache_bad;
static int cache_lent;  /* the event holds the cache's array (R->links) */

static uint64_t read_gen(int fd)
{
	uint64_t g = 0;

	if (pread(fd, &g, sizeof g, 0) != (ssize_t)sizeof g)
		return 0;
	return g;
}

static void lock_id(int fd, dev_t *dev, ino_t *ino)
{
	struct stat st;

	*dev = 0;
	*ino = 0;
	if (fstat(fd, &st) == 0) {
		*dev = st.st_dev;
		*ino = st.st_ino;
	}
}

/* Room for N entries and one that an event adds (R->cap, or the cache's);
 * GROW: while reading, in steps that keep the copying linear. */
static int room(struct mh_link **links, unsigned *cap, unsigned n, int grow)
{
	unsigned want = n + 1;
	struct mh_link *p;

	if (want <= *cap)
		return 0;
	if (grow && want < 2 * *cap)
		want = 2 * *cap;
	p = realloc(*links, want * sizeof *p);
	if (!p)
		return -1;
	*links = p;
	*cap = want;
	return 0;
}

/* The cache holds R's entries at generation GEN (its array copied from R's
 * by cache_put, or R's own, taken over at close).  0, or -1: no cache. */
static int cache_mark(const struct mh_registry *r, uint64_t gen)
{
	if (strlen(mh_rundir()) >= sizeof cache.rundir) {
		cache.valid = 0;
		return -1;
	}
	cache.n = r->n;
	cache.gen = gen;
	lock_id(r->lockfd, &cache.dev, &cache.ino);
	strcpy(cache.rundir, mh_rundir());
	cache.valid = 1;
	return 0;
}

static void cache_put(const struct mh_registry *r, uint64_t gen)
{
	if (room(&cache.links, &cache.cap, r->n, 0) < 0) {
		cache.valid = 0;
		return;
	}
	memcpy(cache.links, r->links, r->n * sizeof *r->links);
	cache_mark(r, gen);
}

static int cache_get(struct mh_registry *r, uint64_t gen)
{
	dev_t dev;
	ino_t ino;

	lock_id(r->lockfd, &dev, &ino);
	if (!cache.valid || cache.gen != gen || strcmp(cache.rundir, mh_rundir()) ||
	    cache.dev != dev || cache.ino != ino || room(&cache.links, &cache.cap, cache.n, 0) < 0)
		return 0;
	/* lent, not copied: mh_reg_close gives it back if the event left it as it is */
	free(r->links);
	r->links = cache.links;
	r->cap = cache.cap;
	r->n = cache.n;
	cache.links = NULL;
	cache.cap = 0;
	cache.valid = 0;
	cache_lent = 1;
	return 1;
}

/* Did the event leave the entries it was lent as they were (and as on disk)? */
static int untouched(const struct mh_registry *r)
{
	unsigned i;

	if (!cache_lent || reg_changed || r->n != cache.n)
		return 0;
	for (i = 0; i < r->n; i++)
		if (r->links[i].dirty)
			return 0;
	return 1;
}

/* Byte 8 of the lock file says an event is under way.  An event that finds
 * it set knows the previous one was interrupted (a SIGKILLed pppd), so the
 * kernel may hold anything between two states: it must read the kernel. */
int mh_reg_begin(struct mh_registry *r)
{
	unsigned char busy = 0, one = 1;
	int unsure = pread(r->lockfd, &busy, 1, 8) != 1 || busy || r->gen == 0;

	if (pwrite(r->lockfd, &one, 1, 8) != 1)
		unsure = 1;
	return unsure;
}

void mh_reg_end(struct mh_registry *r)
{
	unsigned char zero = 0;

	if (pwrite(r->lockfd, &zero, 1, 8) != 1)
		mh_log(MH_LOG_WARN, "cannot write %s/lock: %s", mh_rundir(), strerror(errno));
}

void mh_reg_forget_cache(void)
{
	cache.valid = 0;
}

/* Every entry of the directory DFD into R. */
static int read_entries(struct mh_registry *r, int dfd, char *err, size_t len)
{
	struct dirent *de;
	DIR *dir;
	int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	dir = fd < 0 ? NULL : fdopendir(fd);
	if (!dir) {
		if (fd >= 0)
			close(fd);
		return fail(err, len, "cannot read %s: %s", mh_rundir(), errno);
	}
	while ((de = readdir(dir))) {
		char e[MH_ERR_MAX];
		struct mh_link *l;
		if (strncmp(de->d_name, ENTRY_PREFIX, strlen(ENTRY_PREFIX)))
			continue;
		if (r->n >= MH_MAX_LINKS) {
			mh_log(MH_LOG_WARN, "registry %s holds more than %d links; ignoring %s",
			       mh_rundir(), MH_MAX_LINKS, de->d_name);
			continue;
		}
		if (room(&r->links, &r->cap, r->n, 1) < 0) {
			closedir(dir);
			mh_reg_close(r);
			snprintf(err, len, "out of memory");
			return -1;
		}
		l = &r->links[r->n];
		if (read_entry(dfd, de->d_name, l, e, sizeof e) < 0) {
			mh_log(MH_LOG_WARN, "registry entry %s/%s rejected: %s", mh_rundir(),
			       de->d_name, e);
			continue;
		}
		if (strcmp(de->d_name + strlen(ENTRY_PREFIX), l->cfg.name)) {
			mh_log(MH_LOG_WARN, "registry entry %s/%s rejected: it names link '%s'",
			       mh_rundir(), de->d_name, l->cfg.name);
			continue;
		}
		r->n++;
	}
	closedir(dir);
	return 0;
}

int mh_reg_open(struct mh_registry *r, char *err, size_t len)
{
	memset(r, 0, sizeof *r);
	r->lockfd = -1;
	r->dirfd = -1;
	if (reg_dirfd >= 0) {
		snprintf(err, len, "the registry is already open in this process");
		return -1;
	}
	r->dirfd = mh_rundir_open(1, err, len);
	if (r->dirfd < 0)
		goto fail;
	r->lockfd = lock_open(r->dirfd, err, len);
	if (r->lockfd < 0)
		goto fail;
	reg_dirfd = r->dirfd;
	reg_changed = reg_cache_bad = 0;
	r->synced = 0;
	r->gen = read_gen(r->lockfd);
	if (cache_get(r, r->gen))
		return 0;
	if (read_entries(r, r->dirfd, err, len) < 0) {
		mh_reg_close(r);
		return -1;
	}
	if (room(&r->links, &r->cap, r->n, 0) < 0) {
		mh_reg_close(r);
		snprintf(err, len, "out of memory");
		return -1;
	}
	cache_put(r, r->gen);
	return 0;
fail:
	if (r->dirfd >= 0)
		close(r->dirfd);
	r->dirfd = -1;
	free(r->links);
	r->links = NULL;
	return -1;
}

void mh_reg_close(struct mh_registry *r)
{
	if (untouched(r)) {
		cache.links = r->links;
		cache.cap = r->cap;
		cache.valid = 1;
		r->links = NULL;
	} else if (r->lockfd >= 0 && reg_changed) {
		uint64_t gen = r->gen + 1;
		if (pwrite(r->lockfd, &gen, sizeof gen, 0) != (ssize_t)sizeof gen)
			reg_cache_bad = 1;
		if (!reg_cache_bad && r->synced && cache_mark(r, gen) == 0) {
			/* the caller says its list is what is on disk: the cache
			 * takes it over (no copy), the old cache goes below */
			struct mh_link *l = cache.links;
			unsigned c = cache.cap;
			cache.links = r->links;
			cache.cap = r->cap;
			r->links = l;
			r->cap = c;
		}
	}
	reg_changed = 0;
	cache_lent = 0;
	if (r->lockfd >= 0)
		close(r->lockfd); /* releases the flock */
	r->lockfd = -1;
	if (r->dirfd >= 0) {
		if (reg_dirfd == r->dirfd)
			reg_dirfd = -1;
		close(r->dirfd);
	}
	r->dirfd = -1;
	free(r->links);
	r->links = NULL;
	r->n = r->cap = 0;
}

struct mh_link *mh_reg_find(struct mh_registry *r, const char *name)
{
	unsigned i;

	for (i = 0; i < r->n; i++)
		if (!strcmp(r->links[i].cfg.name, name))
			return &r->links[i];
	return NULL;
}

int mh_reg_store(const struct mh_link *l, char *err, size_t len)
{
	char text[ENTRY_MAX], tmp[64], file[64];

	reg_changed = 1;
	cache.valid = 0;
	reg_cache_bad++;        /* until the entry is on disk */
	if (mh_reg_format(l, text, sizeof text) < 0) {
		snprintf(err, len, "registry entry for %s too large", l->cfg.name);
		return -1;
	}
	snprintf(tmp, sizeof tmp, ".tmp.%s", l->cfg.name);
	snprintf(file, sizeof file, "%s%s", ENTRY_PREFIX, l->cfg.name);
	if (mh_rundir_write(-1, file, tmp, text, err, len) < 0)
		return -1;
	reg_cache_bad--;
	return 0;
}

int mh_reg_forget(const char *name, char *err, size_t len)
{
	char file[64];

	snprintf(file, sizeof file, "%s%s", ENTRY_PREFIX, name);
	reg_changed = 1;
	cache.valid = 0;
	reg_cache_bad = 1;      /* the caller's list still holds the entry */
	if (reg_dirfd < 0) {
		snprintf(err, len, "%s: the registry is not open", file);
		return -1;
	}
	if (unlinkat(reg_dirfd, file, 0) < 0 && errno != ENOENT)
		return fail(err, len, "cannot remove %s: %s", file, errno);
	return 0;
}
