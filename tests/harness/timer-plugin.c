/* mh-timer-plugin.so: the plugin of the harness's self-test
 * (tests/ns/pppd-api.sh).  It drives pppd-plugin/pppd-api.h, the shims
 * multihome.so uses, under the pppd API it is built for:
 * mh_timer_set/mh_timer_cancel and mh_caller_privileged.
 *
 * plugin_init prints "caller privileged 0|1", "log format %lld: N" (pppd
 * 2.4.9's own vslprintf prints the format as is), and sets timers, in ms:
 *   tick       100, re-armed from its own callback, 3 times in all
 *   twice      150, set twice and cancelled once: fires once
 *   once       250
 *   cancelled  120, cancelled at once: never fires
 *   late       60000: does not fire within a test
 * Each callback prints "timer NAME fired at +N ms (due +D)", both counted
 * from plugin_init; D is read before the timer is set, so pppd's own due
 * time is no earlier (N >= D), and callbacks run in the order of D (ties
 * within 1 ms aside: the clock is read in ms).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <time.h>

#include "pppd-api.h"

#define MH_EXPORT __attribute__((visibility("default")))

MH_EXPORT char pppd_version[] = MH_PPPD_VERSION;

struct timer {
	const char *name;
	unsigned interval;              /* ms */
	int  left;                      /* times still to fire */
	long long due;                  /* ms since plugin_init */
};

static long long start_ms;
#define TIMER(n, ms, times) { .name = n, .interval = ms, .left = times }
static struct timer tick = TIMER("tick", 100, 3), twice = TIMER("twice", 150, 1);
static struct timer once = TIMER("once", 250, 1), cancelled = TIMER("cancelled", 120, 1);
static struct timer late = TIMER("late", 60000, 1);

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static void fired(void *arg);

static void arm(struct timer *t)
{
	t->due = now_ms() - start_ms + t->interval;
	mh_timer_set(fired, t, t->interval);
}

static void fired(void *arg)
{
	struct timer *t = arg;
	long long at = now_ms() - start_ms;

	info("timer %s fired at +%d ms (due +%d)", t->name, (int)at, (int)t->due);
	if (--t->left > 0)
		arm(t);
}

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
