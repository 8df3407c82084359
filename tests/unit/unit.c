/* mh-unit: unit tests of the core that need neither root nor the kernel:
 * option and pin parsing with their errors, whole-config checks, table
 * names, far-end address checks, the registry entry format (round trip and
 * corrupt entries), the registry directory and lock (modes, symlinks,
 * corrupt files rejected with a message), link order and mark union.
 *
 * One line per check: "TEST: <desc> [ OK ]" or "[FAIL]"; ends with
 * "N passed, N failed"; exits 1 if anything failed.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "internal.h"
#include "unit.h"

static int passed, failed;

void report(int ok, const char *fmt, ...)
{
	char d[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d, sizeof d, fmt, ap);
	va_end(ap);
	printf("TEST: %-66s [%s]\n", d, ok ? " OK " : "FAIL");
	if (ok)
		passed++;
	else
		failed++;
}

static int skipped;

void report_skip(const char *why, const char *fmt, ...)
{
	char d[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d, sizeof d, fmt, ap);
	va_end(ap);
	printf("TEST: %-66s [SKIP]\n      %s\n", d, why);
	skipped++;
}

/* ---- options ---- */

static const char *const keys[] = { "name", "table", "mark", "priority", "weight",
				     "nat", "reply-via-link", "pin", "pin-fallback", "track",
				     "track-interval", "track-down", "track-up" };
#define NKEYS (sizeof keys / sizeof keys[0])

/* Expect KEY=VALUE to be refused, with an error naming the option and
 * (when SHOWN is non-NULL) containing SHOWN; the config must be unchanged. */
static void expect_bad(const char *key, const char *value, const char *shown, const char *why)
{
	struct mh_config c, before;
	char err[MH_ERR_MAX] = "", opt[64];
	int rc;

	mh_config_init(&c);
	before = c;
	snprintf(opt, sizeof opt, "multihome-%s", key);
	rc = mh_config_set(&c, key, value, opt, err, sizeof err);
	if (rc == 0) {
		report(0, "%s %s refused", opt, why);
		printf("      accepted '%s'\n", value ? value : "(null)");
		return;
	}
	if (!strstr(err, opt) || (shown && !strstr(err, shown))) {
		report(0, "%s %s refused, error names option and value", opt, why);
		printf("      error was: %s\n", err);
		return;
	}
	if (memcmp(&c, &before, sizeof c)) {
		report(0, "%s %s refused, config untouched", opt, why);
		return;
	}
	report(1, "%s %s refused", opt, why);
}

static int set_ok(struct mh_config *c, const char *key, const char *value)
{
	char err[MH_ERR_MAX] = "";
	int rc = mh_config_set(c, key, value, key, err, sizeof err);

	if (rc)
		printf("      %s '%s': %s\n", key, value, err);
	return rc == 0;
}

static void test_options(void)
{
	struct mh_config c;
	char big[400], err[MH_ERR_MAX];
	unsigned i;

	memset(big, '7', sizeof big - 1);
	big[sizeof big - 1] = 0;

	/* empty, overlong, missing for every option */
	for (i = 0; i < NKEYS; i++) {
		expect_bad(keys[i], "", NULL, "(empty)");
		expect_bad(keys[i], big, NULL, "(400 characters)");
		expect_bad(keys[i], NULL, NULL, "(no value)");
	}
	/* overlong yet within the general limit (200): each option's own limit */
	{
		char n32[33];
		memset(n32, 'a', 32);
		n32[32] = 0;
		expect_bad("name", n32, NULL, "(32 characters)");
		n32[31] = 0;
		mh_config_init(&c);
		report(set_ok(&c, "name", n32) && !strcmp(c.name, n32), "multihome-name of 31 characters accepted");
	}
	mh_config_init(&c);
	report(mh_config_set(&c, "frobnicate", "1", "multihome-frobnicate", err, sizeof err) < 0 &&
	       strstr(err, "multihome-frobnicate"), "unknown option refused, named");

	/* defaults */
	mh_config_init(&c);
	report(c.weight == 1 && c.nat == MH_NAT_MASQUERADE && c.reply_via_link == 1 &&
	       !c.table_set && !c.mark_set && !c.priority_set && !c.name_set && c.npins == 0,
	       "defaults: weight 1, masquerade, reply-via-link yes, nothing set");

	/* upstream tracking (issue 15) */
	mh_config_init(&c);
	report(c.ntrack == 0 && c.track_interval_ms == 1000 && c.track_down == 3 && c.track_up == 5,
	       "track defaults: not tracked, every 1 s, down after 3, up after 5");
	report(set_ok(&c, "track", "203.0.113.254,198.51.100.1") && c.ntrack == 2 &&
	       c.track[1] == htonl(0xc6336401u), "multihome-track of two targets accepted");
	report(set_ok(&c, "track-interval", "0.2") && c.track_interval_ms == 200 &&
	       set_ok(&c, "track-interval", "1.5") && c.track_interval_ms == 1500 &&
	       set_ok(&c, "track-interval", "60") && c.track_interval_ms == 60000 &&
	       set_ok(&c, "track-down", "1") && c.track_down == 1 && set_ok(&c, "track-up", "100") &&
	       c.track_up == 100, "track-interval 0.2, 1.5, 60 and track-down 1, track-up 100 accepted");
	expect_bad("track", "127.0.0.1", "127.0.0.1", "'127.0.0.1' (loopback)");
	expect_bad("track", "203.0.113.1,nowhere", "nowhere", "'203.0.113.1,nowhere' (not an address)");
	expect_bad("track", "203.0.113.1,203.0.113.1", "twice", "(the same target twice)");
	expect_bad("track", "203.0.113.1,203.0.113.2,203.0.113.3,203.0.113.4,203.0.113.5,203.0.113.6,"
		   "203.0.113.7,203.0.113.8,203.0.113.9", "more than 8", "(9 targets)");
	expect_bad("track", ",", NULL, "',' (no target)");
	expect_bad("track-interval", "0.1", "0.1", "0.1 (below 0.2 s)");
	expect_bad("track-interval", "61", "61", "61 (above 60 s)");
	expect_bad("track-interval", "1.", "1.", "'1.' (no decimals after the point)");
	expect_bad("track-interval", "-1", "-1", "-1");
	expect_bad("track-down", "0", "0", "0 (at least one round)");
	expect_bad("track-up", "101", "101", "101 (at most 100)");
	expect_bad("pin-fallback", "maybe", "maybe", "'maybe' (yes or no)");
	mh_config_init(&c);
	report(set_ok(&c, "pin", "tcp port 25") && mh_config_set(&c, "pin", "tcp  port 25", "multihome-pin",
	       err, sizeof err) < 0 && strstr(err, "twice") && c.npins == 1,
	       "multihome-pin: the same pin twice refused (the rules would clash)");

	/* name */
	expect_bad("name", "a b", "a b", "'a b' (space)");
	expect_bad("name", "../etc", "../etc", "'../etc' (slash)");
	expect_bad("name", "isp\n1", "isp", "(newline)");
	expect_bad("name", "isp\001", "\\x01", "(control char shown escaped)");
	mh_config_init(&c);
	report(set_ok(&c, "name", "isp1") && c.name_set && !strcmp(c.name, "isp1"), "multihome-name isp1 accepted");

	/* table */
	expect_bad("table", "0", "0", "table 0");
	expect_bad("table", "253", "253", "table 253");
	expect_bad("table", "254", "254", "table 254");
	expect_bad("table", "255", "255", "table 255");
	expect_bad("table", "4294967296", "4294967296", "table 2^32");
	expect_bad("table", "18446744073709551616", NULL, "table 2^64");
	expect_bad("table", "-1", "-1", "table -1");
	expect_bad("table", "+5", "+5", "table +5");
	expect_bad("table", " 5", NULL, "table ' 5'");
	expect_bad("table", "5 ", NULL, "table '5 '");
	expect_bad("table", "1.5", "1.5", "table 1.5 (wrong type)");
	expect_bad("table", "nosuchtable", "nosuchtable", "unknown table name");
	expect_bad("table", "0x", "0x", "table '0x'");
	mh_config_init(&c);
	report(set_ok(&c, "table", "101") && c.table == 101 && c.table_set, "multihome-table 101 accepted");
	mh_config_init(&c);
	report(set_ok(&c, "table", "4294967295") && c.table == 4294967295u, "multihome-table 4294967295 accepted");
	mh_config_init(&c);
	report(set_ok(&c, "table", "0x65") && c.table == 101, "multihome-table 0x65 = 101");
	mh_config_init(&c);
	report(set_ok(&c, "table", "252") && set_ok(&c, "table", "256"), "multihome-table 252 and 256 accepted");

	/* mark */
	expect_bad("mark", "0", "0", "mark 0");
	expect_bad("mark", "0x0", "0x0", "mark 0x0");
	expect_bad("mark", "0/0xff", "0/0xff", "mark 0/0xff");
	expect_bad("mark", "0x3/0x1", "0x3/0x1", "mask 0x1 not covering 0x3");
	expect_bad("mark", "0x100/0xff", "0x100/0xff", "mask 0xff not covering 0x100");
	expect_bad("mark", "0x1/0", "0x1/0", "mask 0");
	expect_bad("mark", "0x1/", "0x1/", "'0x1/' (empty mask)");
	expect_bad("mark", "/0x1", "/0x1", "'/0x1' (empty value)");
	expect_bad("mark", "1/2/3", "1/2/3", "'1/2/3'");
	expect_bad("mark", "0x100000000", "0x100000000", "mark > 2^32-1");
	expect_bad("mark", "0x1/0x100000000", NULL, "mask > 2^32-1");
	expect_bad("mark", "one", "one", "'one' (wrong type)");
	expect_bad("mark", "-1", "-1", "mark -1");
	mh_config_init(&c);
	report(set_ok(&c, "mark", "0x1") && c.mark == 1 && c.mask == 1 && c.mark_set,
	       "multihome-mark 0x1: mask defaults to the value");
	mh_config_init(&c);
	report(set_ok(&c, "mark", "0x100/0xff00") && c.mark == 0x100 && c.mask == 0xff00,
	       "multihome-mark 0x100/0xff00 accepted");
	mh_config_init(&c);
	report(set_ok(&c, "mark", "0xffffffff/0xffffffff") && c.mark == 0xffffffffu,
	       "multihome-mark 0xffffffff/0xffffffff accepted");

	/* priority */
	expect_bad("priority", "99", "99", "priority 99 (< 100)");
	expect_bad("priority", "0", "0", "priority 0");
	expect_bad("priority", "10000", "10000", "priority 10000 (> 9999)");
	expect_bad("priority", "4294967296", NULL, "priority 2^32");
	expect_bad("priority", "high", "high", "priority 'high'");
	mh_config_init(&c);
	report(set_ok(&c, "priority", "100") && set_ok(&c, "priority", "9999") && c.priority == 9999,
	       "multihome-priority 100 and 9999 accepted");

	/* weight */
	expect_bad("weight", "257", "257", "weight 257 (> 256)");
	expect_bad("weight", "4294967297", NULL, "weight 2^32+1 (no wrap)");
	expect_bad("weight", "-1", "-1", "weight -1");
	expect_bad("weight", "8x", "8x", "weight '8x'");
	expect_bad("weight", "0.5", "0.5", "weight 0.5");
	mh_config_init(&c);
	report(set_ok(&c, "weight", "0") && c.weight == 0 && set_ok(&c, "weight", "256") && c.weight == 256,
	       "multihome-weight 0 and 256 accepted");

	/* nat, reply-via-link */
	expect_bad("nat", "MASQUERADE", "MASQUERADE", "'MASQUERADE' (case)");
	expect_bad("nat", "yes", "yes", "'yes'");
	expect_bad("nat", "1", "1", "'1' (wrong type)");
	mh_config_init(&c);
	report(set_ok(&c, "nat", "snat") && c.nat == MH_NAT_SNAT && set_ok(&c, "nat", "off") &&
	       c.nat == MH_NAT_OFF && set_ok(&c, "nat", "masquerade") && c.nat == MH_NAT_MASQUERADE,
	       "multihome-nat masquerade|snat|off accepted");
	expect_bad("reply-via-link", "maybe", "maybe", "'maybe'");
	expect_bad("reply-via-link", "2", "2", "'2'");
	mh_config_init(&c);
	report(set_ok(&c, "reply-via-link", "no") && c.reply_via_link == 0 &&
	       set_ok(&c, "reply-via-link", "yes") && c.reply_via_link == 1,
	       "multihome-reply-via-link yes|no accepted");
}

/* ---- pins ---- */

static void pin_good(const char *text, uint8_t proto, const char *dst, uint8_t len,
		     uint16_t lo, uint16_t hi, const char *formatted)
{
	struct mh_pin p, q;
	char err[MH_ERR_MAX] = "", buf[128];
	struct in_addr a = { 0 };
	int ok;

	if (dst)
		inet_pton(AF_INET, dst, &a);
	ok = mh_pin_parse(text, &p, err, sizeof err) == 0 && p.proto == proto &&
	     p.dst == a.s_addr && p.dst_len == len && p.port_lo == lo && p.port_hi == hi;
	report(ok, "pin '%s' parsed", text);
	if (!ok)
		printf("      %s\n", err);
	mh_pin_format(&p, buf, sizeof buf);
	ok = !strcmp(buf, formatted) && mh_pin_parse(buf, &q, err, sizeof err) == 0 &&
	     !memcmp(&p, &q, sizeof p);
	report(ok, "pin '%s' formats as '%s' and parses back", text, formatted);
	if (!ok)
		printf("      got '%s'\n", buf);
}

static void pin_bad(const char *text, const char *why)
{
	struct mh_config c;
	char err[MH_ERR_MAX] = "";

	mh_config_init(&c);
	if (mh_config_set(&c, "pin", text, "multihome-pin", err, sizeof err) == 0) {
		report(0, "pin %s refused", why);
		printf("      accepted '%s'\n", text);
		return;
	}
	report(strstr(err, "multihome-pin") && c.npins == 0 && err[0], "pin %s refused", why);
}

static void test_pins(void)
{
	struct mh_config c;
	char err[MH_ERR_MAX], long_pin[300];
	unsigned i;
	int ok = 1;

	pin_good("tcp port 25", IPPROTO_TCP, NULL, 0, 25, 25, "tcp port 25");
	pin_good("udp 203.0.113.130 port 1130", IPPROTO_UDP, "203.0.113.130", 32, 1130, 1130,
		 "udp 203.0.113.130/32 port 1130");
	pin_good("198.51.100.192/26", 0, "198.51.100.192", 26, 0, 0, "198.51.100.192/26");
	pin_good("icmp", IPPROTO_ICMP, NULL, 0, 0, 0, "icmp");
	pin_good("tcp 0.0.0.0/0 port 1-65535", IPPROTO_TCP, NULL, 0, 1, 65535, "tcp port 1-65535");
	pin_good("  udp\tport  5000-5010 ", IPPROTO_UDP, NULL, 0, 5000, 5010, "udp port 5000-5010");

	pin_bad("'port 25' (no protocol)", "port 25");
	pin_bad("port 25", "'port 25' (no protocol)");
	pin_bad("icmp port 1", "'icmp port 1'");
	pin_bad("tcp port 0", "'tcp port 0'");
	pin_bad("tcp port 65536", "'tcp port 65536'");
	pin_bad("tcp port 30-20", "'tcp port 30-20' (reversed range)");
	pin_bad("tcp port 25-", "'tcp port 25-'");
	pin_bad("tcp port -25", "'tcp port -25'");
	pin_bad("tcp port", "'tcp port' (missing number)");
	pin_bad("tcp port 25 port 26", "'port' twice");
	pin_bad("tcp udp", "two protocols");
	pin_bad("tcp tcp", "'tcp tcp'");
	pin_bad("192.0.2.0/24 tcp", "protocol after destination");
	pin_bad("tcp port 25 192.0.2.1", "destination after port");
	pin_bad("192.0.2.1 192.0.2.2", "two destinations");
	pin_bad("192.0.2.1/33", "prefix /33");
	pin_bad("192.0.2.1/24", "host bits set (192.0.2.1/24)");
	pin_bad("192.0.2.0/", "empty prefix length");
	pin_bad("192.0.2.0/-1", "negative prefix length");
	pin_bad("192.0.2", "short address 192.0.2");
	pin_bad("192.0.2.256", "octet 256");
	pin_bad("1e3", "'1e3'");
	pin_bad("sctp", "unknown protocol 'sctp'");
	pin_bad("TCP port 25", "uppercase 'TCP'");
	pin_bad(" \t ", "of blanks only");
	pin_bad("tcp port 25\n", "with a newline");
	pin_bad("tcp port 99999999999999999999", "port 10^20");
	memset(long_pin, ' ', sizeof long_pin - 5);
	strcpy(long_pin + sizeof long_pin - 5, "icmp");
	pin_bad(long_pin, "of 299 characters");

	mh_config_init(&c);
	for (i = 0; i < MH_MAX_PINS; i++) {
		char pin[32];
		snprintf(pin, sizeof pin, "tcp port %u", 25 + i);
		ok &= mh_config_set(&c, "pin", pin, "multihome-pin", err, sizeof err) == 0;
	}
	report(ok && c.npins == MH_MAX_PINS, "%d pins accepted", MH_MAX_PINS);
	report(mh_config_set(&c, "pin", "tcp port 1", "multihome-pin", err, sizeof err) < 0 &&
	       strstr(err, "multihome-pin") && strstr(err, "too many") && c.npins == MH_MAX_PINS,
	       "pin number %d refused", MH_MAX_PINS + 1);
}

/* ---- whole config, tables by name ---- */

static void test_config_check(void)
{
	struct mh_config c;
	char err[MH_ERR_MAX], dir[] = "/tmp/mh-unit-rt.XXXXXX", path[256];
	uint32_t t = 0;
	FILE *f;

	mh_config_init(&c);
	report(mh_config_check(&c, err, sizeof err) == 0, "config check: defaults pass");
	mh_config_init(&c);
	c.mark_set = 1;
	report(mh_config_check(&c, err, sizeof err) < 0, "config check: mark set to 0 refused");
	mh_config_init(&c);
	c.mark_set = 1, c.mark = 3, c.mask = 1;
	report(mh_config_check(&c, err, sizeof err) < 0, "config check: mask not covering mark refused");
	mh_config_init(&c);
	c.weight = 257;
	report(mh_config_check(&c, err, sizeof err) < 0, "config check: weight 257 refused");
	mh_config_init(&c);
	c.table_set = 1, c.table = 254;
	report(mh_config_check(&c, err, sizeof err) < 0, "config check: table 254 refused");
	mh_config_init(&c);
	c.table_set = 1, c.table = 0;
	report(mh_config_check(&c, err, sizeof err) < 0, "config check: table 0 refused");
	mh_config_init(&c);
	c.priority_set = 1, c.priority = 42;
	report(mh_config_check(&c, err, sizeof err) < 0, "config check: priority 42 refused");
	mh_config_init(&c);
	c.name_set = 1;
	strcpy(c.name, "a/b");
	report(mh_config_check(&c, err, sizeof err) < 0, "config check: name 'a/b' refused");

	/* table names from ROOT/etc/iproute2/rt_tables and rt_tables.d */
	if (!mkdtemp(dir)) {
		report(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof path, "%s/etc", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/etc/iproute2", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/etc/iproute2/rt_tables.d", dir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/etc/iproute2/rt_tables", dir);
	f = fopen(path, "w");
	if (f) {
		fputs("# comment\n255 local\n254 main\n101\tisp1\n4294967295 huge\n", f);
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/etc/iproute2/rt_tables.d/multihome.conf", dir);
	f = fopen(path, "w");
	if (f) {
		fputs("102 isp2\n", f);
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/etc/iproute2/rt_tables.d/vpn.conf", dir);
	f = fopen(path, "w");
	if (f) {
		fputs("103 vpn\n", f);
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/etc/iproute2/rt_tables.d/old.conf.disabled", dir);
	f = fopen(path, "w");
	if (f) {
		fputs("104 old\n", f);
		fclose(f);
	}
	report(mh_table_lookup(dir, "isp1", &t) == 0 && t == 101, "table name isp1 -> 101 (rt_tables)");
	report(mh_table_lookup(dir, "vpn", &t) == 0 && t == 103, "table name vpn -> 103 (any rt_tables.d/*.conf)");
	report(mh_table_lookup(dir, "old", &t) < 0, "rt_tables.d files not named *.conf are ignored");
	report(mh_table_lookup(dir, "isp2", &t) == 0 && t == 102, "table name isp2 -> 102 (rt_tables.d)");
	report(mh_table_lookup(dir, "huge", &t) == 0 && t == 4294967295u, "table name huge -> 4294967295");
	report(mh_table_lookup(dir, "isp3", &t) < 0, "unknown table name isp3 refused");
	report(mh_table_lookup(dir, "../isp1", &t) < 0, "table name '../isp1' refused");
	report(mh_table_lookup(dir, "77", &t) == 0 && t == 77, "table number 77 needs no file");
	snprintf(path, sizeof path, "rm -rf '%s'", dir);
	if (system(path)) { /* cleanup only */ }
}

/* ---- far-end addresses ---- */

static void test_addr_check(void)
{
	static const char *const bad[] = { "0.0.0.0", "0.1.2.3", "127.0.0.1", "127.255.255.254",
					   "127.1.2.3", "224.0.0.1", "239.255.255.255",
					   "255.255.255.255", "240.0.0.1" };
	static const char *const good[] = { "100.64.1.2", "192.0.2.1", "198.51.100.200",
					    "203.0.113.254", "1.1.1.1", "223.255.255.254" };
	char err[MH_ERR_MAX];
	struct in_addr a;
	unsigned i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		inet_pton(AF_INET, bad[i], &a);
		err[0] = 0;
		report(mh_addr_check(a.s_addr, "peer address", err, sizeof err) < 0 &&
		       strstr(err, "peer address") && strstr(err, bad[i]),
		       "mh_addr_check refuses %s, naming it", bad[i]);
	}
	for (i = 0; i < sizeof good / sizeof good[0]; i++) {
		inet_pton(AF_INET, good[i], &a);
		report(mh_addr_check(a.s_addr, "local address", err, sizeof err) == 0,
		       "mh_addr_check accepts %s", good[i]);
	}
}

/* ---- registry entries ---- */

static void sample_link(struct mh_link *l)
{
	char err[MH_ERR_MAX];

	memset(l, 0, sizeof *l);
	mh_config_init(&l->cfg);
	mh_config_set(&l->cfg, "name", "isp1", "name", err, sizeof err);
	mh_config_set(&l->cfg, "table", "101", "table", err, sizeof err);
	mh_config_set(&l->cfg, "mark", "0x100/0xff00", "mark", err, sizeof err);
	mh_config_set(&l->cfg, "priority", "101", "priority", err, sizeof err);
	mh_config_set(&l->cfg, "weight", "8", "weight", err, sizeof err);
	mh_config_set(&l->cfg, "nat", "snat", "nat", err, sizeof err);
	mh_config_set(&l->cfg, "reply-via-link", "no", "reply-via-link", err, sizeof err);
	mh_config_set(&l->cfg, "pin", "tcp port 25", "pin", err, sizeof err);
	mh_config_set(&l->cfg, "pin", "udp 203.0.113.130 port 1130-1131", "pin", err, sizeof err);
	mh_config_set(&l->cfg, "pin", "198.51.100.192/26", "pin", err, sizeof err);
	strcpy(l->ifname, "ppp0");
	l->ifindex = 7;
	inet_pton(AF_INET, "100.64.1.2", &l->local);
	inet_pton(AF_INET, "100.64.1.1", &l->peer);
	l->slot = 3;
	l->up = 1;
	l->since = 1700000000;
	l->pid = 4242;
}

static int links_equal(const struct mh_link *a, const struct mh_link *b)
{
	return !strcmp(a->cfg.name, b->cfg.name) && a->cfg.table == b->cfg.table &&
	       a->cfg.table_set == b->cfg.table_set && a->cfg.mark == b->cfg.mark &&
	       a->cfg.mask == b->cfg.mask && a->cfg.mark_set == b->cfg.mark_set &&
	       a->cfg.priority == b->cfg.priority && a->cfg.priority_set == b->cfg.priority_set &&
	       a->cfg.weight == b->cfg.weight && a->cfg.nat == b->cfg.nat &&
	       a->cfg.reply_via_link == b->cfg.reply_via_link && a->cfg.npins == b->cfg.npins &&
	       !memcmp(a->cfg.pins, b->cfg.pins, sizeof a->cfg.pins[0] * a->cfg.npins) &&
	       !strcmp(a->ifname, b->ifname) && a->ifindex == b->ifindex && a->local == b->local &&
	       a->peer == b->peer && a->gateway == b->gateway && a->slot == b->slot &&
	       a->up == b->up && a->since == b->since && a->pid == b->pid;
}

/* Replace the line starting with KEY in TEXT by LINE (NULL: drop it). */
static void edit(const char *text, const char *key, const char *line, char *out, size_t len)
{
	const char *p = text;
	size_t o = 0, kl = strlen(key);

	out[0] = 0;
	while (*p) {
		const char *nl = strchr(p, '\n');
		size_t ll = nl ? (size_t)(nl - p + 1) : strlen(p);
		if (!strncmp(p, key, kl) && p[kl] == ' ') {
			if (line)
				o += (size_t)snprintf(out + o, len - o, "%s\n", line);
		} else {
			o += (size_t)snprintf(out + o, len - o, "%.*s", (int)ll, p);
		}
		p += ll;
	}
}

static void reg_bad(const char *text, const char *why)
{
	struct mh_link l;
	char err[MH_ERR_MAX] = "";

	report(mh_reg_parse(text, &l, err, sizeof err) < 0 && err[0],
	       "registry entry %s rejected with a message", why);
}

static void test_registry_format(void)
{
	struct mh_link a, b;
	char text[8192], t2[8192 + 64], err[MH_ERR_MAX] = "", *big;
	static const struct { const char *key, *line, *why; } bad[] = {
		{ "multihome-registry", "multihome-registry 2", "of version 2" },
		{ "multihome-registry", NULL, "without header" },
		{ "name", NULL, "without name" },
		{ "name", "name ../../etc/x", "named ../../etc/x" },
		{ "slot", "slot 256", "with slot 256" },
		{ "slot", "slot -1", "with slot -1" },
		{ "slot", "slot x", "with slot x" },
		{ "state", "state sideways", "with state sideways" },
		{ "ifname", "ifname a/b", "with ifname a/b" },
		{ "ifname", "ifname abcdefghijklmnopq", "with ifname of 17 chars" },
		{ "ifindex", "ifindex -3", "with ifindex -3" },
		{ "local", "local 999.1.1.1", "with local 999.1.1.1" },
		{ "local", NULL, "up without local" },
		{ "peer", "peer ::1", "with peer ::1" },
		{ "table", "table 254", "with table 254" },
		{ "table", "table 0", "with table 0" },
		{ "table", NULL, "without table" },
		{ "table_set", "table_set 2", "with table_set 2" },
		{ "mark", "mark 0x0/0x0", "with mark 0" },
		{ "mark", "mark 0x3/0x1", "with mask not covering mark" },
		{ "mark", NULL, "without mark" },
		{ "priority", "priority 5", "with priority 5" },
		{ "weight", "weight 999", "with weight 999" },
		{ "nat", "nat maybe", "with nat maybe" },
		{ "reply_via_link", "reply_via_link 7", "with reply_via_link 7" },
		{ "since", "since yesterday", "with since yesterday" },
		{ "pid", "pid -1", "with pid -1" },
		{ "pin", "pin tcp port 0", "with pin 'tcp port 0'" },
		{ "weight", "colour blue", "with unknown key" },
		{ "weight", "weight", "with a key without value" },
	};
	unsigned i;

	sample_link(&a);
	report(mh_reg_format(&a, text, sizeof text) == 0, "registry entry formats");
	report(mh_reg_parse(text, &b, err, sizeof err) == 0 && links_equal(&a, &b),
	       "registry entry parse(format(x)) == x (3 pins, snat, mark/mask)");
	if (err[0])
		printf("      %s\n", err);
	{
		char t3[8192];
		mh_reg_format(&b, t3, sizeof t3);
		report(!strcmp(text, t3), "registry entry format is stable over a round trip");
	}
	/* a down link needs no interface or address */
	sample_link(&a);
	a.up = 0;
	a.ifname[0] = 0;
	a.ifindex = 0;
	a.local = a.peer = 0;
	a.cfg.npins = 0;
	mh_reg_format(&a, t2, sizeof t2);
	report(mh_reg_parse(t2, &b, err, sizeof err) == 0 && links_equal(&a, &b),
	       "registry entry of a down link round-trips");
	/* a config of all-defaults fields, allocated values */
	memset(&a, 0, sizeof a);
	mh_config_init(&a.cfg);
	strcpy(a.cfg.name, "tun0");
	a.cfg.name_set = 1;
	a.cfg.table = 1000;
	a.cfg.mark = a.cfg.mask = 1u << 24;
	a.cfg.priority = 200;
	a.cfg.weight = 0;
	a.cfg.nat = MH_NAT_OFF;
	strcpy(a.ifname, "tun0");
	a.ifindex = 12;
	inet_pton(AF_INET, "198.51.100.7", &a.local);
	a.up = 1;
	mh_reg_format(&a, t2, sizeof t2);
	report(mh_reg_parse(t2, &b, err, sizeof err) == 0 && links_equal(&a, &b),
	       "registry entry with allocated values, weight 0, nat off round-trips");

	sample_link(&a);
	mh_reg_format(&a, text, sizeof text);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		edit(text, bad[i].key, bad[i].line, t2, sizeof t2);
		reg_bad(t2, bad[i].why);
	}
	reg_bad("", "that is empty");
	reg_bad("multihome-registry 1\n", "with only a header");
	reg_bad("garbage\n", "of garbage");
	big = malloc(20000);
	if (big) {
		snprintf(big, 20000, "%s", text);
		memset(big + strlen(big), '#', 20000 - strlen(big) - 1);
		big[19999] = 0;
		reg_bad(big, "of 20000 bytes");
		free(big);
	}
}

/* ---- the registry on disk ---- */

static char logged[4096];
static void capture(enum mh_log_level lvl, const char *msg)
{
	size_t o = strlen(logged);
	snprintf(logged + o, sizeof logged - o, "%s\n", msg);
}

static void test_registry_dir(void)
{
	char base[] = "/tmp/mh-unit-reg.XXXXXX", run[64], link[400], path[400], err[MH_ERR_MAX];
	struct mh_registry r;
	struct mh_link a, *f;
	struct stat st;
	int fd;

	if (!mkdtemp(base)) {
		report(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(run, sizeof run, "%s/run", base);
	setenv("MULTIHOME_RUNDIR", run, 1);
	mh_set_logger(capture);
	umask(0);               /* the core must not rely on the caller's umask */

	report(mh_reg_open(&r, err, sizeof err) == 0, "registry opens in a new rundir");
	report(stat(run, &st) == 0 && S_ISDIR(st.st_mode) && (st.st_mode & 07777) == 0700,
	       "rundir created 0700 (umask 0)");
	snprintf(path, sizeof path, "%s/lock", run);
	report(lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600,
	       "lock file created 0600 (umask 0)");
	/* the lock is held: a second open from another process must wait */
	{
		pid_t pid = fork();
		if (pid == 0) {
			int lfd = open(path, O_RDWR);
			_exit(flock(lfd, LOCK_EX | LOCK_NB) == 0 ? 1 : 0);
		}
		int status = 1;
		waitpid(pid, &status, 0);
		report(WIFEXITED(status) && WEXITSTATUS(status) == 0, "registry lock is held while open");
	}
	sample_link(&a);
	report(mh_reg_store(&a, err, sizeof err) == 0, "registry entry stored");
	mh_reg_close(&r);
	snprintf(path, sizeof path, "%s/link.isp1", run);
	report(lstat(path, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 07777) == 0600,
	       "registry entry file is 0600");
	logged[0] = 0;
	report(mh_reg_open(&r, err, sizeof err) == 0 && r.n == 1 && (f = mh_reg_find(&r, "isp1")) &&
	       links_equal(f, &a), "stored entry read back equal");
	mh_reg_close(&r);

	/* corrupt entries: rejected with a message, the good one kept */
	snprintf(path, sizeof path, "%s/link.bad", run);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0) {
		if (write(fd, "multihome-registry 1\nname bad\ntable 254\n", 40) < 0) { /* checked below */ }
		close(fd);
	}
	snprintf(path, sizeof path, "%s/link.other", run);
	{
		char text[8192];
		sample_link(&a);
		strcpy(a.cfg.name, "isp9");
		mh_reg_format(&a, text, sizeof text);
		fd = open(path, O_WRONLY | O_CREAT, 0600);
		if (fd >= 0) {
			if (write(fd, text, strlen(text)) < 0) { /* checked below */ }
			close(fd);
		}
	}
	snprintf(path, sizeof path, "%s/link.bin", run);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	if (fd >= 0) {
		if (write(fd, "multihome-registry 1\n\0\0\0", 24) < 0) { /* checked below */ }
		close(fd);
	}
	snprintf(path, sizeof path, "%s/link.sym", run);
	snprintf(link, sizeof link, "%s/link.isp1", run);
	if (symlink(link, path)) { /* checked below */ }
	snprintf(path, sizeof path, "%s/link.wide", run);
	sample_link(&a);
	strcpy(a.cfg.name, "wide");
	{
		char text[8192];
		mh_reg_format(&a, text, sizeof text);
		fd = open(path, O_WRONLY | O_CREAT, 0666);
		if (fd >= 0) {
			if (write(fd, text, strlen(text)) < 0) { /* checked below */ }
			close(fd);
		}
	}
	logged[0] = 0;
	mh_reg_forget_cache();  /* the files above were edited behind the core's back */
	report(mh_reg_open(&r, err, sizeof err) == 0, "registry with corrupt entries still opens");
	report(mh_reg_find(&r, "isp1") != NULL, "good entry kept beside corrupt ones");
	report(mh_reg_find(&r, "bad") == NULL && strstr(logged, "link.bad"),
	       "entry with table 254 rejected with a message");
	report(mh_reg_find(&r, "isp9") == NULL && strstr(logged, "link.other"),
	       "entry whose file name and link name differ rejected with a message");
	report(!mh_reg_find(&r, "bin") && strstr(logged, "link.bin"),
	       "entry with binary data rejected with a message");
	report(strstr(logged, "link.sym") != NULL && r.n <= 2,
	       "entry that is a symlink rejected with a message");
	mh_reg_close(&r);
	if (failed)
		printf("      log: %s", logged);

	/* a symlinked rundir is refused */
	snprintf(link, sizeof link, "%s/symrun", base);
	if (symlink(run, link)) { /* checked below */ }
	setenv("MULTIHOME_RUNDIR", link, 1);
	err[0] = 0;
	report(mh_reg_open(&r, err, sizeof err) < 0 && strstr(err, "symlink"),
	       "symlinked rundir refused with a message");
	/* a rundir writable by others is refused */
	snprintf(path, sizeof path, "%s/wide", base);
	mkdir(path, 0777);
	chmod(path, 0777);
	setenv("MULTIHOME_RUNDIR", path, 1);
	err[0] = 0;
	report(mh_reg_open(&r, err, sizeof err) < 0 && err[0],
	       "world-writable rundir refused with a message");
	/* a lock that is a symlink is not followed */
	snprintf(path, sizeof path, "%s/run2", base);
	mkdir(path, 0700);
	setenv("MULTIHOME_RUNDIR", path, 1);
	snprintf(path, sizeof path, "%s/run2/lock", base);
	snprintf(link, sizeof link, "%s/victim", base);
	if (symlink(link, path)) { /* checked below */ }
	err[0] = 0;
	report(mh_reg_open(&r, err, sizeof err) < 0 && access(link, F_OK) < 0,
	       "symlinked lock file refused, its target not created");

	umask(022);
	mh_set_logger(NULL);
	unsetenv("MULTIHOME_RUNDIR");
	snprintf(path, sizeof path, "rm -rf '%s'", base);
	if (system(path)) { /* cleanup only */ }
}

/* ---- link order, mark union ---- */

static void test_order(void)
{
	struct mh_link links[4];
	const struct mh_link *up[4];
	struct mh_plan_input in = { .links = links, .n = 4, .nexthops = 1 };
	struct mh_plan p;
	unsigned n, i;
	static const char *const names[] = { "b", "c", "a", "d" };
	static const unsigned prio[] = { 200, 101, 200, 50 };

	for (i = 0; i < 4; i++) {
		memset(&links[i], 0, sizeof links[i]);
		mh_config_init(&links[i].cfg);
		strcpy(links[i].cfg.name, names[i]);
		links[i].cfg.priority = prio[i];
		links[i].cfg.mark = links[i].cfg.mask = 1u << i;
		links[i].up = i != 3;
	}
	n = mh_plan_order(links, 4, up);
	report(n == 3 && !strcmp(up[0]->cfg.name, "c") && !strcmp(up[1]->cfg.name, "a") &&
	       !strcmp(up[2]->cfg.name, "b"), "up links in priority order, ties by name, down left out");
	report(mh_plan_build(&in, &p) == 0 && p.nlinks == 3 && p.fw.ours == 0x7,
	       "mark union covers the up links' masks only");
	mh_plan_free(&p);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	test_options();
	test_pins();
	test_config_check();
	test_addr_check();
	test_registry_format();
	test_registry_dir();
	test_registry_fd();
	test_ovpn_helper();
	test_health();
	test_order();
	test_plan();
	test_delta();
	test_nlsock();
	printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
	return failed ? 1 : 0;
}
