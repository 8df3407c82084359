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
 *   13     netlink answers (a buffer of messages, as recvfrom returns them) to
 *          the readers: rules, routes, nexthops, nft elements, extended ACKs
 *   14     registry entries (separated by a blank line) -> the plan for both
 *          backends -> the diffs: a plan against itself yields nothing, the
 *          writer's messages read back by the readers
 * Crashes, sanitizer reports and leaks (LeakSanitizer) are failures; so is
 * a round trip that does not hold (abort()).
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libmnl/libmnl.h>

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

/* 13: whole netlink answers; every length is the sender's, none is trusted */
static void replies(const uint8_t *data, size_t size)
{
	struct mh_routing rt = { 0 };
	struct mh_firewall fw = { 0 };
	void *buf = malloc(size ? size : 1);      /* aligned, as a receive buffer is */
	const struct nlmsghdr *h = buf;
	int len = (int)size;

	memcpy(buf, data, size);
	for (; mh_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
		if (h->nlmsg_type == NLMSG_ERROR &&
		    mnl_nlmsg_get_payload_len(h) >= sizeof(struct nlmsgerr)) {
			const char *m = mh_nl_ext_ack(h);
			if (m && strlen(m) > mnl_nlmsg_get_payload_len(h))
				abort();
		}
		mh_rt_parse(h, h->nlmsg_flags & 1, &rt);
		mh_fw_nft_parse_elems(h, h->nlmsg_seq % MH_NSETS, &fw);
	}
	mh_routing_free(&rt);
	mh_firewall_free(&fw);
	free(buf);
}

/* What mh_link_up's checks guarantee between links of one registry. */
static int consistent(const struct mh_link *links, unsigned n, const struct mh_link *l)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		const struct mh_link *o = &links[i];
		if (!strcmp(o->cfg.name, l->cfg.name) || o->slot == l->slot)
			return 0;
		if (o->up && l->up && (o->cfg.table == l->cfg.table || o->cfg.priority == l->cfg.priority ||
				       !strcmp(o->ifname, l->ifname) || o->local == l->local ||
				       (o->cfg.mark & l->cfg.mask) == l->cfg.mark ||
				       (l->cfg.mark & o->cfg.mask) == o->cfg.mark))
			return 0;
	}
	return 1;
}

/* 14: the plan and the diffs, from registry entries */
static void plans(char *text, unsigned variant)
{
	struct mh_link *links = calloc(8, sizeof *links);
	struct mh_plan p, q;
	struct mh_rt_diff_args full = { .delta = 0, .touched = -1 };
	struct mh_rt_ops ops = { 0 };
	struct mh_fw_ops fops = { 0 };
	char err[MH_ERR_MAX], *entry = text, *next;
	unsigned n = 0;

	while (entry && n < 8) {
		next = strstr(entry, "\n\n");
		if (next)
			*next = 0;
		if (mh_reg_parse(entry, &links[n], err, sizeof err) == 0 && consistent(links, n, &links[n]))
			n++;
		entry = next ? next + 2 : NULL;
	}
	{
		struct mh_plan_input in = { .links = links, .n = n, .nexthops = variant & 1,
					    .backend = variant & 2 ? MH_FW_NFT : MH_FW_IPTABLES };
		if (mh_plan_build(&in, &p) < 0 || mh_plan_build(&in, &q) < 0)
			abort();
	}
	/* a plan against itself: nothing to do */
	if (mh_rt_diff(&p.rt, &q.rt, &full, &ops) < 0 || ops.n)
		abort();
	if (p.fw.backend == MH_FW_NFT && (mh_fw_nft_diff(&p, &q.fw, 0, &fops) < 0 || fops.n))
		abort();
	/* against nothing: the writer's messages parse back */
	{
		struct mh_routing none = { .nexthops = p.rt.nexthops };
		struct mh_routing back = { 0 };
		struct mh_nl_batch b;
		const struct nlmsghdr *h;
		int len;
		mh_rt_diff(&p.rt, &none, &full, &ops);
		mh_nl_batch_init(&b, NULL);
		mh_rt_build(&b, &p.rt, &ops, variant & 4);
		h = (const struct nlmsghdr *)b.buf;
		len = (int)b.used;
		for (; b.buf && mh_nlmsg_ok(h, len); h = mnl_nlmsg_next(h, &len))
			if (mh_rt_parse(h, 1, &back) < 0)
				abort();
		mh_nl_batch_free(&b);
		mh_routing_free(&back);
	}
	mh_rt_ops_free(&ops);
	mh_fw_ops_free(&fops);
	mh_plan_free(&p);
	mh_plan_free(&q);
	free(links);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[MH_ERR_MAX], *text;
	unsigned sel;

	mh_set_logger(quiet);
	if (size < 1)
		return 0;
	sel = data[0] % 15;
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
	} else if (sel == 13) {
		replies(data + 1, size - 1);
	} else if (sel == 14) {
		plans(text, data[0] / 15);
	} else {
		uint32_t a = 0, t;
		memcpy(&a, data + 1, size - 1 < 4 ? size - 1 : 4);
		mh_addr_check(a, "peer address", err, sizeof err);
		mh_table_lookup(NULL, text, &t);
	}
	free(text);
	return 0;
}
