/* Option parsing and validation: one parser for pppd options and OpenVPN
 * plugin arguments.  Every error names the option and the value.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mh.h"

#define MH_VALUE_MAX 200        /* longest option value we accept */

static int fail(char *err, size_t len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t len, const char *fmt, ...)
{
	va_list ap;

	if (err && len) {
		va_start(ap, fmt);
		vsnprintf(err, len, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Quote a user value for an error message: printable, bounded. */
static const char *shown(const char *v, char *buf, size_t len)
{
	size_t i, o = 0;

	for (i = 0; v[i] && o + 5 < len; i++) {
		unsigned char ch = (unsigned char)v[i];
		if (isprint(ch))
			buf[o++] = (char)ch;
		else
			o += (size_t)snprintf(buf + o, len - o, "\\x%02x", ch);
	}
	if (v[i] && o + 4 < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = 0;
	return buf;
}

void mh_config_init(struct mh_config *c)
{
	memset(c, 0, sizeof *c);
	c->weight = 1;
	c->nat = MH_NAT_MASQUERADE;
	c->reply_via_link = 1;
	c->pin_fallback = 1;
	c->track_interval_ms = 1000;
	c->track_down = 3;
	c->track_up = 5;
}

/* "A.B.C.D,A.B.C.D,..." -> targets; -1 with what was wrong in WHY */
static int parse_targets(const char *v, uint32_t *out, unsigned *n, char *why, size_t len)
{
	char buf[MH_VALUE_MAX + 1], *save = NULL, *tok, e[MH_ERR_MAX];

	snprintf(buf, sizeof buf, "%s", v);
	*n = 0;
	for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct in_addr a;
		if (*n >= MH_MAX_TARGETS)
			return fail(why, len, "more than %d targets", MH_MAX_TARGETS);
		if (inet_pton(AF_INET, tok, &a) != 1)
			return fail(why, len, "'%.32s' is not an IPv4 address", tok);
		if (mh_addr_check(a.s_addr, "target", e, sizeof e) < 0)
			return fail(why, len, "%s", e);
		for (unsigned i = 0; i < *n; i++)
			if (out[i] == a.s_addr)
				return fail(why, len, "%.32s twice", tok);
		out[(*n)++] = a.s_addr;
	}
	if (!*n)
		return fail(why, len, "no target");
	return 0;
}

/* seconds, decimals allowed (ms precision): "1", "0.2", "2.5" */
static int parse_seconds_ms(const char *v, unsigned *ms)
{
	unsigned whole = 0, frac = 0, digits = 0;
	const char *p = v;

	if (!isdigit((unsigned char)*p))
		return -1;
	for (; isdigit((unsigned char)*p); p++) {
		whole = whole * 10 + (unsigned)(*p - '0');
		if (whole > 100000)
			return -1;
	}
	if (*p == '.') {
		for (p++; isdigit((unsigned char)*p); p++)
			if (digits++ < 3)
				frac = frac * 10 + (unsigned)(*p - '0');
		if (!digits)
			return -1;
		for (; digits < 3; digits++)    /* "0.2" is 200 ms */
			frac *= 10;
	}
	if (*p)
		return -1;
	*ms = whole * 1000 + frac;
	return 0;
}

/* Strict unsigned parse: decimal or 0x hex, the whole string, <= MAX. */
static int parse_u32(const char *s, unsigned long long max, uint32_t *out)
{
	char *end;
	unsigned long long v;

	if (!*s || *s == '-' || *s == '+' || isspace((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || *end || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > MH_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
			return 0;
	return 1;
}

/* Look NAME up in one rt_tables-style file. */
static int table_in_file(const char *path, const char *name, uint32_t *table)
{
	char line[512], n[256];
	unsigned long long id;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, " %llu %255s", &id, n) == 2 && id <= 0xffffffffULL &&
		    strcmp(n, name) == 0) {
			fclose(f);
			*table = (uint32_t)id;
			return 0;
		}
	fclose(f);
	return -1;
}

static int conf_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	return d->d_name[0] != '.' && n > 5 && !strcmp(d->d_name + n - 5, ".conf");
}

int mh_table_lookup(const char *root, const char *text, uint32_t *table)
{
	/* iproute2 reads the file in /etc, else the distribution's default,
	 * then every *.conf of the .d directories */
	static const char *const files[] = { "/etc/iproute2/rt_tables",
					     "/usr/share/iproute2/rt_tables",
					     "/usr/lib/iproute2/rt_tables" };
	static const char *const dirs[] = { "/etc/iproute2/rt_tables.d",
					    "/usr/share/iproute2/rt_tables.d",
					    "/usr/lib/iproute2/rt_tables.d" };
	char path[512];
	size_t i;

	if (parse_u32(text, 0xffffffffULL, table) == 0)
		return 0;
	if (!valid_name(text))
		return -1;
	if (!root)
		root = "";
	for (i = 0; i < sizeof files / sizeof files[0]; i++) {
		snprintf(path, sizeof path, "%s%s", root, files[i]);
		if (table_in_file(path, text, table) == 0)
			return 0;
	}
	for (i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
		struct dirent **list;
		int n, j, found = -1;
		snprintf(path, sizeof path, "%s%s", root, dirs[i]);
		n = scandir(path, &list, conf_file, alphasort);
		for (j = 0; j < n; j++) {
			char file[1024];
			snprintf(file, sizeof file, "%s/%s", path, list[j]->d_name);
			if (found < 0)
				found = table_in_file(file, text, table);
			free(list[j]);
		}
		if (n >= 0)
			free(list);
		if (found == 0)
			return 0;
	}
	return -1;
}

int mh_addr_check(uint32_t addr_be, const char *what, char *err, size_t errlen)
{
	uint32_t a = ntohl(addr_be);
	char buf[INET_ADDRSTRLEN];
	const char *why = NULL;

	inet_ntop(AF_INET, &addr_be, buf, sizeof buf);
	if (a == 0)
		why = "unspecified";
	else if ((a >> 24) == 127)
		why = "loopback";
	else if ((a >> 28) == 0xe)
		why = "multicast";
	else if (a == 0xffffffffu)
		why = "broadcast";
	else if ((a >> 28) == 0xf)
		why = "reserved (240.0.0.0/4)";
	else if ((a >> 24) == 0)
		why = "in 0.0.0.0/8";
	if (why)
		return fail(err, errlen, "%s %s is not usable: %s address", what, buf, why);
	return 0;
}

/* "A.B.C.D[/LEN]" -> dst, len (network order, masked; host bits refused). */
static int parse_prefix(const char *s, uint32_t *dst, uint8_t *len)
{
	char buf[32];
	const char *slash = strchr(s, '/');
	uint32_t l = 32, mask;
	struct in_addr a;

	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	if (slash) {
		buf[slash - s] = 0;
		if (!isdigit((unsigned char)slash[1]) || parse_u32(slash + 1, 32, &l))
			return -1;
	}
	if (inet_pton(AF_INET, buf, &a) != 1)
		return -1;
	mask = l ? htonl(0xffffffffu << (32 - l)) : 0;
	if (a.s_addr & ~mask)
		return -1;
	*dst = a.s_addr;
	*len = (uint8_t)l;
	return 0;
}

static int parse_ports(const char *s, uint16_t *lo, uint16_t *hi)
{
	char buf[16];
	char *dash;
	uint32_t a, b;

	if (strlen(s) >= sizeof buf)
		return -1;
	strcpy(buf, s);
	dash = strchr(buf, '-');
	if (dash)
		*dash++ = 0;
	if (!isdigit((unsigned char)buf[0]) || parse_u32(buf, 65535, &a) || a == 0)
		return -1;
	b = a;
	if (dash && (!isdigit((unsigned char)*dash) || parse_u32(dash, 65535, &b) || b < a))
		return -1;
	*lo = (uint16_t)a;
	*hi = (uint16_t)b;
	return 0;
}

int mh_pin_matches(const struct mh_pin *p, uint8_t proto, uint32_t dst, uint16_t dport)
{
	if (p->proto && p->proto != proto)
		return 0;
	if (p->dst_len && (dst & htonl(0xffffffffu << (32 - p->dst_len))) != p->dst)
		return 0;
	if (p->port_lo && (dport < p->port_lo || dport > p->port_hi))
		return 0;
	return 1;
}

static int pin_equal(const struct mh_pin *a, const struct mh_pin *b)
{
	return a->proto == b->proto && a->dst_len == b->dst_len && a->dst == b->dst &&
	       a->port_lo == b->port_lo && a->port_hi == b->port_hi;
}

int mh_pin_parse(const char *text, struct mh_pin *pin, char *err, size_t errlen)
{
	char buf[MH_VALUE_MAX + 1], sv[64];
	char *save = NULL, *tok;
	int seen_proto = 0, seen_dst = 0, seen_port = 0, any = 0;

	memset(pin, 0, sizeof *pin);
	if (strlen(text) > MH_VALUE_MAX)
		return fail(err, errlen, "pin too long (%zu characters, at most %d)",
			    strlen(text), MH_VALUE_MAX);
	strcpy(buf, text);
	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		any = 1;
		if (!strcmp(tok, "tcp") || !strcmp(tok, "udp") || !strcmp(tok, "icmp")) {
			if (seen_proto || seen_dst || seen_port)
				return fail(err, errlen, "protocol '%s' must come first, once", tok);
			seen_proto = 1;
			pin->proto = tok[0] == 't' ? IPPROTO_TCP :
				     tok[0] == 'u' ? IPPROTO_UDP : IPPROTO_ICMP;
		} else if (!strcmp(tok, "port")) {
			char *p = strtok_r(NULL, " \t", &save);
			if (seen_port)
				return fail(err, errlen, "'port' given twice");
			if (!p)
				return fail(err, errlen, "'port' needs a number or a range N-M");
			if (parse_ports(p, &pin->port_lo, &pin->port_hi))
				return fail(err, errlen, "bad port '%s' (1..65535, or N-M with N <= M)",
					    shown(p, sv, sizeof sv));
			seen_port = 1;
		} else if (isdigit((unsigned char)tok[0])) {
			if (seen_dst || seen_port)
				return fail(err, errlen, "unexpected '%s' (order: [tcp|udp|icmp] [DST[/LEN]] [port N[-M]])",
					    shown(tok, sv, sizeof sv));
			if (parse_prefix(tok, &pin->dst, &pin->dst_len))
				return fail(err, errlen, "bad destination '%s' (A.B.C.D or A.B.C.D/LEN, no host bits)",
					    shown(tok, sv, sizeof sv));
			seen_dst = 1;
		} else {
			return fail(err, errlen, "unknown word '%s' (expected tcp, udp, icmp, an address or 'port')",
				    shown(tok, sv, sizeof sv));
		}
	}
	if (!any)
		return fail(err, errlen, "empty pin (expected [tcp|udp|icmp] [DST[/LEN]] [port N[-M]])");
	if (seen_port && pin->proto != IPPROTO_TCP && pin->proto != IPPROTO_UDP)
		return fail(err, errlen, "'port' needs tcp or udp first");
	if (!seen_dst && !seen_port && !seen_proto)
		return fail(err, errlen, "pin matches nothing");
	return 0;
}

char *mh_pin_format(const struct mh_pin *pin, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN];
	size_t o = 0;

	buf[0] = 0;
	if (pin->proto)
		o += (size_t)snprintf(buf + o, len - o, "%s",
				      pin->proto == IPPROTO_TCP ? "tcp" :
				      pin->proto == IPPROTO_UDP ? "udp" : "icmp");
	if (pin->dst_len && o < len) {
		inet_ntop(AF_INET, &pin->dst, a, sizeof a);
		o += (size_t)snprintf(buf + o, len - o, "%s%s/%u", o ? " " : "", a, pin->dst_len);
	}
	if (pin->port_lo && o < len) {
		if (pin->port_lo == pin->port_hi)
			o += (size_t)snprintf(buf + o, len - o, "%sport %u", o ? " " : "", pin->port_lo);
		else
			o += (size_t)snprintf(buf + o, len - o, "%sport %u-%u", o ? " " : "",
					      pin->port_lo, pin->port_hi);
	}
	return buf;
}

static int parse_bool(const char *v, int *out)
{
	if (!strcmp(v, "yes") || !strcmp(v, "on") || !strcmp(v, "1") || !strcmp(v, "true"))
		*out = 1;
	else if (!strcmp(v, "no") || !strcmp(v, "off") || !strcmp(v, "0") || !strcmp(v, "false"))
		*out = 0;
	else
		return -1;
	return 0;
}

int mh_config_set(struct mh_config *c, const char *key, const char *value,
		  const char *optname, char *err, size_t errlen)
{
	char sv[MH_VALUE_MAX + 16], pe[MH_ERR_MAX];
	uint32_t u;

	if (!optname)
		optname = key;
	if (!value)
		return fail(err, errlen, "option %s needs a value", optname);
	shown(value, sv, sizeof sv);
	if (strlen(value) > MH_VALUE_MAX)
		return fail(err, errlen, "option %s: value too long (%zu characters, at most %d)",
			    optname, strlen(value), MH_VALUE_MAX);
	if (!*value)
		return fail(err, errlen, "option %s: empty value", optname);

	if (!strcmp(key, "name")) {
		if (!valid_name(value))
			return fail(err, errlen, "option %s: bad link name '%s' (1-%d characters of A-Z a-z 0-9 _ . -)",
				    optname, sv, MH_NAME_MAX);
		strcpy(c->name, value);
		c->name_set = 1;
	} else if (!strcmp(key, "table")) {
		if (mh_table_lookup(NULL, value, &u))
			return fail(err, errlen, "option %s: bad table '%s' (a number 1..4294967295 or a name from /etc/iproute2/rt_tables)",
				    optname, sv);
		if (u == 0 || u == 253 || u == 254 || u == 255)
			return fail(err, errlen, "option %s: table %s is reserved (0 unspec, 253 default, 254 main, 255 local)",
				    optname, sv);
		c->table = u;
		c->table_set = 1;
	} else if (!strcmp(key, "mark")) {
		char buf[64], *slash;
		uint32_t mark, mask;
		if (strlen(value) >= sizeof buf)
			return fail(err, errlen, "option %s: bad mark '%s'", optname, sv);
		strcpy(buf, value);
		slash = strchr(buf, '/');
		if (slash)
			*slash++ = 0;
		if (parse_u32(buf, 0xffffffffULL, &mark) ||
		    (slash && parse_u32(slash, 0xffffffffULL, &mask)))
			return fail(err, errlen, "option %s: bad mark '%s' (VALUE[/MASK], numbers up to 0xffffffff)",
				    optname, sv);
		if (!slash)
			mask = mark;
		if (mark == 0)
			return fail(err, errlen, "option %s: mark '%s' is zero (zero means unmarked)", optname, sv);
		if (mark & ~mask)
			return fail(err, errlen, "option %s: mask does not cover the value in '%s'", optname, sv);
		c->mark = mark;
		c->mask = mask;
		c->mark_set = 1;
	} else if (!strcmp(key, "priority")) {
		if (parse_u32(value, 0xffffffffULL, &u) || u < MH_PRIO_MIN || u > MH_PRIO_MAX)
			return fail(err, errlen, "option %s: bad priority '%s' (%d..%d)",
				    optname, sv, MH_PRIO_MIN, MH_PRIO_MAX);
		c->priority = u;
		c->priority_set = 1;
	} else if (!strcmp(key, "weight")) {
		if (parse_u32(value, 0xffffffffULL, &u) || u > 256)
			return fail(err, errlen, "option %s: bad weight '%s' (0..256; 0 = only marked or pinned traffic)",
				    optname, sv);
		c->weight = u;
	} else if (!strcmp(key, "nat")) {
		if (!strcmp(value, "masquerade"))
			c->nat = MH_NAT_MASQUERADE;
		else if (!strcmp(value, "snat"))
			c->nat = MH_NAT_SNAT;
		else if (!strcmp(value, "off"))
			c->nat = MH_NAT_OFF;
		else
			return fail(err, errlen, "option %s: bad value '%s' (masquerade, snat or off)",
				    optname, sv);
	} else if (!strcmp(key, "reply-via-link")) {
		if (parse_bool(value, &c->reply_via_link))
			return fail(err, errlen, "option %s: bad value '%s' (yes or no)", optname, sv);
	} else if (!strcmp(key, "pin-fallback")) {
		if (parse_bool(value, &c->pin_fallback))
			return fail(err, errlen, "option %s: bad value '%s' (yes: a down link's pins fall "
				    "through to other links; no: they are refused)", optname, sv);
	} else if (!strcmp(key, "track")) {
		uint32_t t[MH_MAX_TARGETS];
		unsigned nt;
		if (parse_targets(value, t, &nt, pe, sizeof pe))
			return fail(err, errlen, "option %s: bad targets '%s': %s (A.B.C.D[,A.B.C.D...])",
				    optname, sv, pe);
		memcpy(c->track, t, sizeof t);
		c->ntrack = nt;
	} else if (!strcmp(key, "track-interval")) {
		if (parse_seconds_ms(value, &u) || u < 200 || u > 60000)
			return fail(err, errlen, "option %s: bad interval '%s' (seconds between rounds, "
				    "0.2 .. 60, decimals allowed)", optname, sv);
		c->track_interval_ms = u;
	} else if (!strcmp(key, "track-down") || !strcmp(key, "track-up")) {
		if (parse_u32(value, 100, &u) || u < 1)
			return fail(err, errlen, "option %s: bad count '%s' (1 .. 100 rounds in a row)",
				    optname, sv);
		if (key[6] == 'd')
			c->track_down = u;
		else
			c->track_up = u;
	} else if (!strcmp(key, "pin")) {
		if (c->npins >= MH_MAX_PINS)
			return fail(err, errlen, "option %s: too many pins (at most %d per link)",
				    optname, MH_MAX_PINS);
		if (mh_pin_parse(value, &c->pins[c->npins], pe, sizeof pe))
			return fail(err, errlen, "option %s: bad pin '%s': %s", optname, sv, pe);
		for (unsigned i = 0; i < c->npins; i++)
			if (pin_equal(&c->pins[i], &c->pins[c->npins]))
				return fail(err, errlen, "option %s: pin '%s' given twice", optname, sv);
		c->npins++;
	} else {
		return fail(err, errlen, "unknown option %s", optname);
	}
	return 0;
}

int mh_config_check(const struct mh_config *c, char *err, size_t errlen)
{
	if (c->name_set && !valid_name(c->name))
		return fail(err, errlen, "bad link name '%s'", c->name);
	if (c->mark_set && (c->mark == 0 || (c->mark & ~c->mask)))
		return fail(err, errlen, "bad mark 0x%x/0x%x", c->mark, c->mask);
	if (c->weight > 256)
		return fail(err, errlen, "bad weight %u", c->weight);
	if (c->table_set && (c->table == 0 || (c->table >= 253 && c->table <= 255)))
		return fail(err, errlen, "table %u is reserved", c->table);
	if (c->priority_set && (c->priority < MH_PRIO_MIN || c->priority > MH_PRIO_MAX))
		return fail(err, errlen, "bad priority %u", c->priority);
	if (!c->pin_fallback && c->npins && !c->name_set)
		return fail(err, errlen, "pin-fallback no needs the link's name (multihome-name for pppd, "
			    "name= for OpenVPN): its pins are refused from the start, before the link "
			    "is up and has an interface");
	return 0;
}

/* ---- OpenVPN plugin arguments ---- */

static const char args_keys[] = "keys: name table mark priority weight nat reply-via-link pin pin-fallback track track-interval track-down track-up";

/* One KEY=VALUE argument applied to C. */
static int apply_arg(struct mh_config *c, const char *arg, char *err, size_t errlen)
{
	char key[64], pe[MH_ERR_MAX];
	const char *eq = strchr(arg, '=');

	if (!eq || eq == arg || (size_t)(eq - arg) >= sizeof key)
		return fail(err, errlen, "plugin argument '%.80s': expected KEY=VALUE (e.g. table=103); %s",
			    arg, args_keys);
	memcpy(key, arg, (size_t)(eq - arg));
	key[eq - arg] = 0;
	if (mh_config_set(c, key, eq + 1, key, pe, sizeof pe))
		return fail(err, errlen, "plugin argument '%.80s': %s", arg, pe);
	return 0;
}

int mh_config_from_args(struct mh_config *c, const char *const *words, int nwords, char *list,
			size_t listlen, size_t *used, unsigned *nlist, char *err, size_t errlen)
{
	char arg[MH_ARG_MAX], pe[MH_ERR_MAX];
	int i = 0;

	mh_config_init(c);
	if (used)
		*used = 0;
	if (nlist)
		*nlist = 0;
	while (i < nwords && words[i]) {
		size_t n = (size_t)snprintf(arg, sizeof arg, "%s", words[i++]);
		/* OpenVPN re-splits a lone plugin argument at blanks: a word without
		 * '=' continues the previous KEY=VALUE */
		if (strchr(arg, '='))
			while (i < nwords && words[i] && !strchr(words[i], '=') && n < sizeof arg)
				n += (size_t)snprintf(arg + n, sizeof arg - n, " %s", words[i++]);
		if (n >= sizeof arg)
			return fail(err, errlen, "plugin argument '%.80s': too long (%d bytes at most)",
				    arg, MH_ARG_MAX - 1);
		if (apply_arg(c, arg, err, errlen) < 0)
			return -1;
		if (list) {
			if (*used + n + 1 > listlen)
				return fail(err, errlen, "plugin argument '%.80s': the arguments are too long "
					    "(%zu bytes at most)", arg, listlen);
			memcpy(list + *used, arg, n + 1);
			*used += n + 1;
			(*nlist)++;
		}
	}
	if (mh_config_check(c, pe, sizeof pe))
		return fail(err, errlen, "plugin arguments: %s", pe);
	return 0;
}

int mh_config_from_list(struct mh_config *c, const char *list, size_t size, unsigned nlist,
			char *err, size_t errlen)
{
	size_t at = 0;
	unsigned i;

	mh_config_init(c);
	for (i = 0; i < nlist; i++) {
		size_t n = at < size ? strnlen(list + at, size - at) : 0;
		if (at >= size || at + n >= size)
			return fail(err, errlen, "malformed argument list");
		if (apply_arg(c, list + at, err, errlen) < 0)
			return -1;
		at += n + 1;
	}
	return mh_config_check(c, err, errlen);
}
