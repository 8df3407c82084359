/* Logging, the registry location and event counters.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "internal.h"

static void log_stderr(enum mh_log_level lvl, const char *msg)
{
	static const char *const tag[] = { "error", "warning", "info", "debug" };

	if (lvl == MH_LOG_DEBUG && !mh_getenv("MULTIHOME_DEBUG"))
		return;
	fprintf(stderr, "multihome: %s: %s\n", tag[lvl], msg);
}

static mh_log_fn logger = log_stderr;
static struct mh_stats stats;

void mh_set_logger(mh_log_fn fn)
{
	logger = fn ? fn : log_stderr;
}

void mh_log(enum mh_log_level lvl, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	logger(lvl, buf);
}

/* A setuid host (pppd is 4754 root:dip) runs us with its caller's
 * environment: secure_getenv() hides it from a setuid process, and a host
 * that knows its caller is not privileged turns it off altogether. */
static int env_trusted = 1;

void mh_set_env_trusted(int trusted)
{
	env_trusted = trusted;
}

const char *mh_getenv(const char *name)
{
	return env_trusted ? secure_getenv(name) : NULL;
}

const char *mh_rundir(void)
{
	const char *d = mh_getenv("MULTIHOME_RUNDIR");

	return d && *d == '/' ? d : "/run/multihome";
}

long long mh_now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

struct mh_stats *mh_stats_mut(void)
{
	return &stats;
}

const struct mh_stats *mh_last_stats(void)
{
	return &stats;
}
