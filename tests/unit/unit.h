/* mh-unit: shared by its source files.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_UNIT_H
#define MULTIHOME_UNIT_H

/* One "TEST: ... [ OK ]" line. */
void report(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One "TEST: ... [SKIP]" line, with WHY under it. */
void report_skip(const char *why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

void test_plan(void);
void test_registry_fd(void);
void test_ovpn_helper(void);
void test_health(void);
void test_delta(void);
void test_nlsock(void);

#endif
