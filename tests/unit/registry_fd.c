/* mh-unit: the run directory is opened once per event and every file of the
 * registry is reached relative to that descriptor (issue 10, finding 1).
 *
 * A directory swapped for a symlink in the middle of an event, or between
 * two events; a new directory put in its place; symlinked entries, lock, tmp
 * and firewall files; a FIFO as `firewall` or `lock`: each is refused or
 * ignored with a message, and nothing outside the directory is touched.
 * No root, no kernel: temporary directories only.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

static char base[64];           /* this test's temporary directory */
static char seen[4096];         /* the core's log lines */

static void path_of(char *buf, size_t len, const char *rel)
{
	snprintf(buf, len, "%s/%s", base, rel);
}

static void log_capture(enum mh_log_level lvl, const char *msg)
{
	size_t o = strlen(seen);

	(void)lvl;
	snprintf(seen + o, sizeof seen - o, "%s\n", msg);
}

static void put_file(const char *rel, const char *text)
{
	char p[256];
	int fd;

	path_of(p, sizeof p, rel);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0)
		return;
	if (write(fd, text, strlen(text)) < 0) { /* the checks read it back */ }
	close(fd);
}

/* Does REL hold exactly TEXT (a regular file)? */
static int file_is(const char *rel, const char *text)
{
	char p[256], buf[512];
	struct stat st;
	ssize_t n;
	int fd;

	path_of(p, sizeof p, rel);
	if (lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
		return 0;
	fd = open(p, O_RDONLY);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	buf[n > 0 ? n : 0] = 0;
	return !strcmp(buf, text);
}

/* How many entries does the directory REL hold? (-1: not a directory) */
static int entries(const char *rel)
{
	char cmd[600], p[256];
	FILE *f;
	int n = -1;

	path_of(p, sizeof p, rel);
	snprintf(cmd, sizeof cmd, "[ -d '%s' ] && ls -A '%s' | wc -l", p, p);
	f = popen(cmd, "r");
	if (f) {
		if (fscanf(f, "%d", &n) != 1)
			n = -1;
		pclose(f);
	}
	return n;
}

static void one_link(struct mh_link *l, const char *name)
{
	char err[MH_ERR_MAX];

	memset(l, 0, sizeof *l);
	mh_config_init(&l->cfg);
	mh_config_set(&l->cfg, "name", name, "name", err, sizeof err);
	mh_config_set(&l->cfg, "table", "101", "table", err, sizeof err);
	mh_config_set(&l->cfg, "mark", "0x1", "mark", err, sizeof err);
	mh_config_set(&l->cfg, "priority", "101", "priority", err, sizeof err);
	strcpy(l->ifname, "ppp0");
	l->ifindex = 7;
	l->local = htonl(0x64400102);  /* 100.64.1.2 */
	l->up = 1;
	l->online = 1;
}

static void use_rundir(const char *rel)
{
	char p[256];

	path_of(p, sizeof p, rel);
	setenv("MULTIHOME_RUNDIR", p, 1);
	mh_reg_forget_cache();
}

/* ---- the directory swapped for a symlink in the middle of an event ---- */

static int swap_armed;

/* Called from the core's log while mh_reg_open reads the entries. */
static void swap_on_log(enum mh_log_level lvl, const char *msg)
{
	char run[256], moved[256], victim[256];

	log_capture(lvl, msg);
	if (!swap_armed)
		return;
	swap_armed = 0;
	path_of(run, sizeof run, "mid");
	path_of(moved, sizeof moved, "mid.moved");
	path_of(victim, sizeof victim, "victim");
	if (rename(run, moved) || symlink(victim, run)) { /* checked by the reports */ }
}

static void test_swap_mid_event(void)
{
	char p[256], err[MH_ERR_MAX] = "";
	struct mh_registry r;
	struct mh_link a;
	int opened, stored;

	path_of(p, sizeof p, "mid");
	mkdir(p, 0700);
	path_of(p, sizeof p, "victim");
	mkdir(p, 0700);
	put_file("mid/link.bad", "not an entry\n");     /* its warning swaps the directory */
	use_rundir("mid");
	mh_set_logger(swap_on_log);
	swap_armed = 1;
	opened = mh_reg_open(&r, err, sizeof err) == 0;
	one_link(&a, "isp1");
	stored = opened && mh_reg_store(&a, err, sizeof err) == 0;
	if (opened)
		mh_reg_close(&r);
	mh_set_logger(log_capture);
	report(opened && !swap_armed, "rundir swapped for a symlink while an event reads it: the event goes on");
	report(entries("victim") == 0,
	       "rundir swapped for a symlink mid-event: nothing written through the symlink");
	path_of(p, sizeof p, "mid.moved/link.isp1");
	report(stored && access(p, F_OK) == 0,
	       "rundir swapped mid-event: the entry lands in the directory the event opened");
	seen[0] = 0;
	err[0] = 0;
	report(mh_reg_open(&r, err, sizeof err) < 0 && strstr(err, "symlink") && entries("victim") == 0,
	       "the next event refuses the symlinked rundir with a message, victim untouched");
}

/* ---- between two events ---- */

static void test_between_events(void)
{
	char p[256], q[256], err[MH_ERR_MAX] = "";
	struct mh_registry r;
	struct mh_link a;
	int ok;

	path_of(p, sizeof p, "run");
	mkdir(p, 0700);
	use_rundir("run");
	one_link(&a, "isp1");
	ok = mh_reg_open(&r, err, sizeof err) == 0 && mh_reg_store(&a, err, sizeof err) == 0;
	if (ok) {
		r.synced = 0;
		mh_reg_close(&r);
	}
	ok = ok && mh_reg_open(&r, err, sizeof err) == 0 && r.n == 1;
	if (ok) {
		r.synced = 1;           /* cache what was read */
		mh_reg_close(&r);
	}
	report(ok, "registry written and read back (the cache now holds isp1)");

	/* a new directory of ours at the same path, its lock at the same generation */
	path_of(q, sizeof q, "run.old");
	rename(p, q);
	mkdir(p, 0700);
	{
		char cmd[600];
		snprintf(cmd, sizeof cmd, "cp '%s/lock' '%s/lock'", q, p);
		if (system(cmd)) { /* checked below */ }
	}
	err[0] = 0;
	ok = mh_reg_open(&r, err, sizeof err) == 0;
	report(ok && r.n == 0 && !mh_reg_find(&r, "isp1"),
	       "rundir replaced by a new directory (same generation): read anew, not the cache");
	if (ok)
		mh_reg_close(&r);

	/* the directory replaced by a symlink to another directory of ours */
	path_of(q, sizeof q, "run.new");
	rename(p, q);
	path_of(q, sizeof q, "victim2");
	mkdir(q, 0700);
	if (symlink(q, p)) { /* checked below */ }
	seen[0] = 0;
	err[0] = 0;
	report(mh_reg_open(&r, err, sizeof err) < 0 && strstr(err, "is a symlink") &&
	       entries("victim2") == 0,
	       "rundir replaced by a symlink between events: refused with a message, target untouched");
	err[0] = 0;
	report(mh_rundir_open(0, err, sizeof err) < 0 && strstr(err, "is a symlink"),
	       "status's opener refuses the symlinked rundir too");
	unlink(p);
	put_file("run", "a file\n");
	err[0] = 0;
	report(mh_reg_open(&r, err, sizeof err) < 0 && strstr(err, "not a directory") &&
	       file_is("run", "a file\n"), "a regular file as rundir: refused with a message, untouched");
	unlink(p);
	err[0] = 0;
	report(mh_rundir_open(0, err, sizeof err) < 0 && access(p, F_OK) < 0,
	       "opening without create leaves a missing rundir missing");
}

/* ---- the files inside ---- */

/* mh_rundir_read of FILE in a child that a blocking open would hang: 1 when
 * it returned at once, refusing with a message that names FILE. */
static int read_refused_quickly(int dfd, const char *file)
{
	int status = 0;
	pid_t pid = fork();

	if (pid == 0) {
		char buf[64], err[MH_ERR_MAX] = "";
		alarm(5);
		_exit(mh_rundir_read(dfd, file, buf, sizeof buf, err, sizeof err) < 0 &&
		      strstr(err, file) ? 0 : 1);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return 0;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static void test_files(void)
{
	char p[256], v[256], err[MH_ERR_MAX] = "", buf[64];
	struct mh_registry r;
	struct mh_link a;
	int ok, dfd;

	path_of(p, sizeof p, "files");
	mkdir(p, 0700);
	use_rundir("files");
	put_file("outside", "nft\n");
	path_of(v, sizeof v, "outside");

	/* a FIFO as firewall: not opened blocking, ignored with a message, replaced by a write */
	path_of(p, sizeof p, "files/firewall");
	mkfifo(p, 0600);
	dfd = mh_rundir_open(0, err, sizeof err);
	report(dfd >= 0 && read_refused_quickly(dfd, "firewall"),
	       "a FIFO as firewall: read returns at once, refused with a message");
	ok = mh_reg_open(&r, err, sizeof err) == 0;
	report(ok && mh_rundir_write(-1, "firewall", "firewall.tmp", "nft", err, sizeof err) == 0 &&
	       file_is("files/firewall", "nft"), "a FIFO as firewall is replaced by the next write");
	if (ok)
		mh_reg_close(&r);

	/* firewall a symlink to a file outside: not followed either way */
	unlink(p);
	if (symlink(v, p)) { /* checked below */ }
	err[0] = 0;
	report(mh_rundir_read(dfd, "firewall", buf, sizeof buf, err, sizeof err) < 0 &&
	       strstr(err, "symlink"), "firewall a symlink: refused with a message");
	ok = mh_reg_open(&r, err, sizeof err) == 0;
	report(ok && mh_rundir_write(-1, "firewall", "firewall.tmp", "iptables", err, sizeof err) == 0 &&
	       file_is("files/firewall", "iptables") && file_is("outside", "nft\n"),
	       "firewall a symlink: the write replaces the link, its target untouched");

	/* a tmp file planted as a symlink to outside: the entry is written in place */
	path_of(p, sizeof p, "files/.tmp.isp1");
	if (symlink(v, p)) { /* checked below */ }
	one_link(&a, "isp1");
	report(ok && mh_reg_store(&a, err, sizeof err) == 0 && file_is("outside", "nft\n") &&
	       access(p, F_OK) < 0, "a symlinked .tmp.NAME: entry stored, the symlink's target untouched");
	if (ok)
		mh_reg_close(&r);

	/* an entry that is a symlink to a valid entry outside: rejected with a message */
	{
		char text[8192];
		one_link(&a, "isp2");
		mh_reg_format(&a, text, sizeof text);
		put_file("outside2", text);
		path_of(v, sizeof v, "outside2");
		path_of(p, sizeof p, "files/link.isp2");
		if (symlink(v, p)) { /* checked below */ }
	}
	seen[0] = 0;
	mh_reg_forget_cache();
	ok = mh_reg_open(&r, err, sizeof err) == 0;
	report(ok && !mh_reg_find(&r, "isp2") && mh_reg_find(&r, "isp1") &&
	       strstr(seen, "link.isp2") && strstr(seen, "symlink"),
	       "an entry symlinked to a valid one outside: rejected with a message, the others kept");
	report(ok && mh_reg_forget("isp2", err, sizeof err) == 0 && access(v, F_OK) == 0 &&
	       access(p, F_OK) < 0, "forgetting it removes the symlink, not its target");
	if (ok)
		mh_reg_close(&r);
	if (dfd >= 0)
		close(dfd);

	/* a FIFO as lock: refused, not used */
	path_of(p, sizeof p, "fifolock");
	mkdir(p, 0700);
	use_rundir("fifolock");
	path_of(p, sizeof p, "fifolock/lock");
	mkfifo(p, 0600);
	err[0] = 0;
	report(mh_reg_open(&r, err, sizeof err) < 0 && strstr(err, "lock"),
	       "a FIFO as lock: refused with a message");
	/* one registry at a time: a nested open would wait for its own lock */
	use_rundir("files");
	ok = mh_reg_open(&r, err, sizeof err) == 0;
	{
		struct mh_registry r2;
		err[0] = 0;
		report(ok && mh_reg_open(&r2, err, sizeof err) < 0 && strstr(err, "already open"),
		       "a second registry open in the same process is refused, not deadlocked");
	}
	if (ok)
		mh_reg_close(&r);
}

void test_registry_fd(void)
{
	char cmd[128];

	snprintf(base, sizeof base, "/tmp/mh-unit-regfd.XXXXXX");
	if (!mkdtemp(base)) {
		report(0, "registry_fd: mkdtemp: %s", strerror(errno));
		return;
	}
	mh_set_logger(log_capture);
	test_swap_mid_event();
	test_between_events();
	test_files();
	mh_set_logger(NULL);
	unsetenv("MULTIHOME_RUNDIR");
	mh_reg_forget_cache();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
	if (system(cmd)) { /* cleanup only */ }
}
