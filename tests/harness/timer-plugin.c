/* mh-timer-plugin.so: the plugin of the harness's self-test
 * (tests/ns/pppd-api.sh).  It drives pppd-plugin/pppd-api.h, the shims
 * multihome.so uses, under the pppd API it is built for:
 * mh_timer_set/mh_timer_cancel and mh_caller_privileged.
 *
 * plugin_init prints "caller privileged 0|1", "log format %lld: N" (pppd
 * 2.4.9's own vslprintf prints the format as is), and sets, in ms from then:
 *   tick       100, re-armed from its own callback, 3 times in all
 *   once       250
 *   twice      set twice at 200, cancelled once: fires once
 *   cancelled  150, cancelled at once: never fires
 *   late       60000: does not fire within a test
 * Each callback prints "timer NAME fired at +N ms (due +D)".
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <time.h>

#include "pppd-api.h"

#define MH_EXPORT __attribute__((visibility("default")))

MH_EXPORT char pppd_version[] = MH_PPPD_VERSION;

struct timer {
	const char *name;
	long long due;                  /* ms since plugin_init */
	int  left;                      /* times still to fire */
};

static long long start_ms;
static struct timer tick = { "tick", 100, 3 }, once = { "once", 250, 1 };
static struct timer twice = { "twice", 200, 1 }, cancelled = { "cancelled", 150, 1 };
static struct timer late = { "late", 60000, 1 };

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void fired(void *arg)
{
	struct timer *t = arg;
	long long at = now_ms() - start_ms;

	info("timer %s fired at +%d ms (due +%d)", t->name, (int)at, (int)t->due);
	if (--t->left > 0) {
		t->due = at + 100;
		mh_timer_set(fired, t, 100);
	}
}

static void arm(struct timer *t) { mh_timer_set(fired, t, (unsigned)t->due); }

MH_EXPORT void plugin_init(void)
{
	start_ms = now_ms();
	info("caller privileged %d", mh_caller_privileged());
	info("log format %%lld: %lld", 12345678901LL);   /* 2.5's vslprintf only */
	arm(&tick);
	arm(&once);
	arm(&twice);
	arm(&twice);
	mh_timer_cancel(fired, &twice);
	arm(&cancelled);
	mh_timer_cancel(fired, &cancelled);
	arm(&late);
}
