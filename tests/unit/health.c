/* mh-unit: upstream tracking's figures as status reads them
 * (RUNDIR/health.NAME, common/track.c): a well-formed file parses, and
 * anything else (a missing field, a state that is neither online nor
 * offline, a loss over 100%, a symlink, a file too big) is refused.
 * No root, no kernel: a temporary directory.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

static const char good[] =
	"pid 4242\nstate offline\nsince 1796160000\nrtt_us 1234\nloss_pct 50\nrounds 17\n"
	"probes 34\nreplies 17\ninterval_ms 1000\ntargets 203.0.113.254, 198.51.100.1\n";

static int put(int dfd, const char *name, const char *text)
{
	int fd = openat(dfd, name, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = write(fd, text, strlen(text));
	close(fd);
	return n == (ssize_t)strlen(text) ? 0 : -1;
}

/* TEXT with FIELD's line replaced by LINE ("" drops it) */
static void edited(char *out, size_t len, const char *field, const char *line)
{
	const char *at = strstr(good, field), *end = strchr(at, '\n') + 1;

	snprintf(out, len, "%.*s%s%s", (int)(at - good), good, line, end);
}

void test_health(void)
{
	char dir[] = "/tmp/mh-unit-health.XXXXXX", err[MH_ERR_MAX], text[600], big[700];
	struct mh_health h;
	int dfd, ok;

	if (!mkdtemp(dir)) {
		report(0, "health: a temporary directory");
		return;
	}
	setenv("MULTIHOME_RUNDIR", dir, 1);
	dfd = mh_rundir_open(0, err, sizeof err);
	put(dfd, "health.isp1", good);
	ok = mh_health_read(dfd, "isp1", &h) == 0 && h.pid == 4242 && !h.online && h.since == 1796160000 &&
	     h.rtt_us == 1234 && h.loss_pct == 50 && h.rounds == 17 && h.probes == 34 && h.replies == 17 &&
	     h.interval_ms == 1000;
	report(ok, "health: a well-formed health.isp1 parses (pid, offline, since, rtt, loss, rounds, probes)");
	report(mh_health_read(dfd, "isp2", &h) < 0, "health: no file, no figures");
	edited(text, sizeof text, "rounds ", "");
	put(dfd, "health.a", text);
	edited(text, sizeof text, "state ", "state sideways\n");
	put(dfd, "health.b", text);
	edited(text, sizeof text, "loss_pct ", "loss_pct 101\n");
	put(dfd, "health.c", text);
	report(mh_health_read(dfd, "a", &h) < 0 && mh_health_read(dfd, "b", &h) < 0 &&
	       mh_health_read(dfd, "c", &h) < 0,
	       "health: a missing field, a state neither online nor offline, a loss over 100%% are refused");
	symlinkat("health.isp1", dfd, "health.link");
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = 0;
	put(dfd, "health.big", big);
	report(mh_health_read(dfd, "link", &h) < 0 && mh_health_read(dfd, "big", &h) < 0,
	       "health: a symlink and a file too big are refused");
	close(dfd);
	unsetenv("MULTIHOME_RUNDIR");
	for (const char *const *f = (const char *const[]){ "health.isp1", "health.a", "health.b", "health.c",
							    "health.link", "health.big", NULL }; *f; f++) {
		char p[128];
		snprintf(p, sizeof p, "%s/%s", dir, *f);
		unlink(p);
	}
	rmdir(dir);
}
