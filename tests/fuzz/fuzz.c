/* libFuzzer harness for multihome's parsers: every option (pppd's
 * multihome-* lines and OpenVPN's KEY=VALUE plugin arguments go through
 * mh_config_set), pins (with a format/parse round trip), the OpenVPN plugin
 * argument list (mho_args_parse), far-end address checks and registry
 * entries (with a parse/format/parse round trip).
 *
 * Input: the first byte picks the target, the rest is its text.
 *   0..7   mh_config_set(KEY[b], text), KEY = name table mark priority
 *          weight nat reply-via-link pin
 *   8      mh_pin_parse; if accepted, format and parse back: must be equal
 *   9      mh_reg_parse; if accepted, format, parse, format: must be stable
 *   10     a peers file: lines "multihome-KEY VALUE", then mh_config_check
 *   11     mho_args_parse: NUL-separated KEY=VALUE list (OpenVPN arguments)
 *   12     mh_addr_check of the first 4 bytes, and mh_table_lookup(text)
 * Crashes, sanitizer reports and leaks (LeakSanitizer) are failures; so is
 * a round trip that does not hold (abort()).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include "../../openvpn-plugin/helper.h"

static const char *const keys[] = { "name", "table", "mark", "priority", "weight",
				     "nat", "reply-via-link", "pin" };

static void quiet(enum mh_log_level lvl, const char *msg) { (void)lvl; (void)msg; }

static void peers(char *text)
{
	struct mh_config c;
	char err[MH_ERR_MAX], *save = NULL, *line;

	mh_config_init(&c);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *v = strchr(line, ' ');
		if (v)
			*v++ = 0;
		if (!strncmp(line, "multihome-", 10))
			mh_config_set(&c, line + 10, v, line, err, sizeof err);
		else
			mh_config_set(&c, line, v, line, err, sizeof err);
	}
	if (mh_config_check(&c, err, sizeof err) == 0) {
		/* what the parser accepted must pass the whole-config check's rules */
		if ((c.mark_set && (!c.mark || (c.mark & ~c.mask))) || c.weight > 256 ||
		    (c.table_set && (!c.table || (c.table >= 253 && c.table <= 255))))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[MH_ERR_MAX], *text;
	unsigned sel;

	mh_set_logger(quiet);
	if (size < 1)
		return 0;
	sel = data[0] % 13;
	text = malloc(size);
	memcpy(text, data + 1, size - 1);
	text[size - 1] = 0;

	if (sel < 8) {
		struct mh_config c;
		mh_config_init(&c);
		if (mh_config_set(&c, keys[sel], text, keys[sel], err, sizeof err) < 0) {
			if (!err[0] || !strstr(err, keys[sel]))
				abort();        /* every error names the option */
		} else if (mh_config_check(&c, err, sizeof err) < 0) {
			abort();                /* accepted one by one, refused as a whole */
		}
	} else if (sel == 8) {
		struct mh_pin p, q;
		char buf[128];
		if (mh_pin_parse(text, &p, err, sizeof err) == 0) {
			mh_pin_format(&p, buf, sizeof buf);
			if (mh_pin_parse(buf, &q, err, sizeof err) || memcmp(&p, &q, sizeof p))
				abort();
		}
	} else if (sel == 9) {
		struct mh_link *a = malloc(sizeof *a), *b = malloc(sizeof *b);
		char *t1 = malloc(8192), *t2 = malloc(8192);
		if (mh_reg_parse(text, a, err, sizeof err) == 0) {
			if (mh_reg_format(a, t1, 8192) || mh_reg_parse(t1, b, err, sizeof err) ||
			    mh_reg_format(b, t2, 8192) || strcmp(t1, t2))
				abort();
		}
		free(a);
		free(b);
		free(t1);
		free(t2);
	} else if (sel == 10) {
		peers(text);
	} else if (sel == 11) {
		struct mh_config c;
		uint32_t nargs = 0;
		size_t n = size - 1 > MHO_ARGS_MAX ? MHO_ARGS_MAX : size - 1, i;
		char *args = calloc(1, MHO_ARGS_MAX);
		memcpy(args, data + 1, n);
		for (i = 0; i < n; i++)
			nargs += args[i] == 0;
		mho_args_parse(args, MHO_ARGS_MAX, nargs + (size > 2 ? data[1] % 3 : 0), &c,
			       err, sizeof err);
		free(args);
	} else {
		uint32_t a = 0, t;
		memcpy(&a, data + 1, size - 1 < 4 ? size - 1 : 4);
		mh_addr_check(a, "peer address", err, sizeof err);
		mh_table_lookup(NULL, text, &t);
	}
	free(text);
	return 0;
}
