/* multihomectl check FILE: validate a pppd peers file's multihome options or
 * an OpenVPN config's multihome-openvpn.so plugin line without bringing a
 * link up.  The values go through the core's parser (mh_config_set,
 * mh_config_check), so the messages are the plugins' own.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mh.h"
#include "ctl.h"

#define WORD_MAX 1024           /* pppd's MAXWORDLEN */
#define ARGS_MAX 64

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

static int errors, warnings;

static void say_err(const char *file, int line, const char *msg)
{
	if (line > 0)
		fprintf(stderr, "%s:%d: %s\n", file, line, msg);
	else
		fprintf(stderr, "%s: %s\n", file, msg);
	errors++;
}

static void say_warn(const char *file, int line, const char *msg)
{
	if (line > 0)
		fprintf(stderr, "%s:%d: warning: %s\n", file, line, msg);
	else
		fprintf(stderr, "%s: warning: %s\n", file, msg);
	warnings++;
}

/* ---- pppd: options file syntax (pppd's getword) ---- */

struct reader {
	FILE *f;
	int line;
};

static int rgetc(struct reader *r)
{
	int c = getc(r->f);
	if (c == '\n')
		r->line++;
	return c;
}

static void rungetc(struct reader *r, int c)
{
	if (c == EOF)
		return;
	if (c == '\n')
		r->line--;
	ungetc(c, r->f);
}

/* One word: '#' comments to the end of the line, "..." and '...' quoting,
 * backslash escapes (\n \t \s \ooo \xhh, backslash-newline joins lines).
 * *LINE is the line the word starts on.  Returns 0 at end of file. */
static int read_word(struct reader *r, char *word, int *line, int *unterminated)
{
	int c, len = 0, quoted = 0, escape = 0, got = 0;

	for (;;) {
		c = rgetc(r);
		if (c == '#')
			while (c != EOF && c != '\n')
				c = rgetc(r);
		if (c == EOF)
			return 0;
		if (!isspace(c))
			break;
	}
	*line = r->line;
	for (; c != EOF; c = rgetc(r)) {
		if (escape) {
			int v = c;
			escape = 0;
			if (c == '\n')
				continue;
			switch (c) {
			case 'a': v = '\a'; break;
			case 'b': v = '\b'; break;
			case 'f': v = '\f'; break;
			case 'n': v = '\n'; break;
			case 'r': v = '\r'; break;
			case 's': v = ' '; break;
			case 't': v = '\t'; break;
			case 'x':
				v = 0;
				for (int n = 0; n < 2 && isxdigit(c = rgetc(r)); ++n)
					v = v * 16 + (isdigit(c) ? c - '0' : tolower(c) - 'a' + 10);
				rungetc(r, c);
				break;
			default:
				if (c >= '0' && c <= '7') {
					v = 0;
					for (int n = 0; n < 3 && c >= '0' && c <= '7'; ++n, c = rgetc(r))
						v = v * 8 + (c - '0');
					rungetc(r, c);
				}
			}
			if (len < WORD_MAX - 1)
				word[len++] = (char)v;
			got = 1;
			continue;
		}
		if (c == '\\') {
			escape = 1;
			continue;
		}
		if (quoted) {
			if (c == quoted) {
				quoted = 0;
				continue;
			}
		} else if (c == '"' || c == '\'') {
			quoted = c;
			got = 1;
			continue;
		} else if (isspace(c) || c == '#') {
			rungetc(r, c);
			break;
		}
		if (len < WORD_MAX - 1)
			word[len++] = (char)c;
		got = 1;
	}
	if (quoted)
		*unterminated = 1;
	word[len] = 0;
	return got || len > 0;
}

/* pppd options (and those of the usual channel plugins) that take one
 * argument: their value must not be read as an option. */
static int takes_arg(const char *w)
{
	static const char *const one[] = {
		"file", "call", "user", "password", "remotename", "name", "linkname",
		"ipparam", "ifname", "unit", "mtu", "mru", "holdoff", "maxfail",
		"lcp-echo-interval", "lcp-echo-failure", "lcp-max-configure",
		"lcp-max-failure", "lcp-max-terminate", "lcp-restart", "connect",
		"disconnect", "init", "welcome", "pty", "socket", "record", "logfile",
		"logfd", "idle", "active-filter", "pass-filter", "connect-delay",
		"ms-dns", "ms-wins", "ipcp-accept-local", "netmask", "asyncmap",
		"escape", "demand", "ktune", "nic", "rp_pppoe_service", "rp_pppoe_ac",
		"pppoe-service", "pppoe-ac", "pppoe-mac", "ethernet", "eth", "speed",
		"ipcp-max-configure", "ipcp-max-failure", "ipcp-max-terminate",
		"ipcp-restart", "chap-interval", "chap-max-challenge", "chap-restart",
		"pap-max-authreq", "pap-restart", "pap-timeout", "maxconnect",
		"mp-endpoint", "endpoint", "mrru", "bsdcomp", "deflate", "remotenumber",
		"ipv6", "ip-up-script", "ip-down-script", "ipv6-up-script",
		"ipv6-down-script", "auth-up-script", "auth-down-script", "path",
		"kdebug", "txqueuelen", NULL };
	for (const char *const *p = one; *p; p++)
		if (!strcmp(w, *p))
			return 1;
	return 0;
}

static void print_config(const char *file, const char *what, const struct mh_config *c,
			 const char *name_note)
{
	char pin[128];
	unsigned i;

	printf("%s: valid %s: link %s", file, what, c->name_set ? c->name : name_note);
	if (c->table_set)
		printf(", table %u", c->table);
	else
		printf(", table allocated");
	if (c->mark_set)
		printf(", mark 0x%x/0x%x", c->mark, c->mask);
	else
		printf(", mark allocated");
	if (c->priority_set)
		printf(", priority %u", c->priority);
	else
		printf(", priority allocated");
	printf(", weight %u, nat %s, reply-via-link %s", c->weight,
	       c->nat == MH_NAT_SNAT ? "snat" : c->nat == MH_NAT_OFF ? "off" : "masquerade",
	       c->reply_via_link ? "yes" : "no");
	for (i = 0; i < c->npins; i++)
		printf("%s%s", i ? "; " : ", pins: ", mh_pin_format(&c->pins[i], pin, sizeof pin));
	if (!c->pin_fallback)
		printf("%s", c->npins ? " (refused while the link is down: pin-fallback no)"
				      : ", pin-fallback no (no pins: nothing to refuse)");
	printf("\n");
}

static int check_pppd(const char *file, FILE *f)
{
	struct reader r = { .f = f, .line = 1 };
	struct mh_config cfg;
	char word[WORD_MAX], val[WORD_MAX], err[MH_ERR_MAX], msg[WORD_MAX + MH_ERR_MAX];
	char linkname[WORD_MAX] = "", ipparam[WORD_MAX] = "";
	int line, vline, plugin = 0, defroute = 0, unterminated = 0, nopts = 0;

	mh_config_init(&cfg);
	while (read_word(&r, word, &line, &unterminated)) {
		if (!strncmp(word, "multihome-", 10)) {
			nopts++;
			if (!plugin) {
				snprintf(msg, sizeof msg, "unrecognized option '%s': "
					 "'plugin multihome.so' must come before the multihome-* options",
					 word);
				say_err(file, line, msg);
			}
			if (!read_word(&r, val, &vline, &unterminated)) {
				mh_config_set(&cfg, word + 10, NULL, word, err, sizeof err);
				say_err(file, line, err);
				break;
			}
			if (mh_config_set(&cfg, word + 10, val, word, err, sizeof err) < 0)
				say_err(file, line, err);
			continue;
		}
		if (!strcmp(word, "plugin")) {
			if (!read_word(&r, val, &vline, &unterminated))
				break;
			if (!strcmp(base_name(val), "multihome.so"))
				plugin = plugin ? plugin : line;
			else if (!strcmp(base_name(val), "multihome-openvpn.so"))
				say_err(file, line, "multihome-openvpn.so is OpenVPN's plugin; "
					"pppd loads multihome.so");
			continue;
		}
		if (!strcmp(word, "defaultroute") || !strcmp(word, "replacedefaultroute")) {
			defroute = line;
			continue;
		}
		if (!strcmp(word, "nodefaultroute") || !strcmp(word, "-defaultroute") ||
		    !strcmp(word, "noreplacedefaultroute")) {
			defroute = 0;
			continue;
		}
		if (!strcmp(word, "usepeerdns")) {
			say_warn(file, line, "usepeerdns rewrites /etc/resolv.conf every time "
				 "this link comes up");
			continue;
		}
		if (takes_arg(word)) {
			if (!read_word(&r, val, &vline, &unterminated))
				break;
			if (!strcmp(word, "linkname"))
				strcpy(linkname, val);
			else if (!strcmp(word, "ipparam"))
				strcpy(ipparam, val);
		}
	}
	if (unterminated)
		say_warn(file, 0, "quoted word runs to end of file");
	if (!plugin)
		say_err(file, 0, nopts ? "no 'plugin multihome.so' line: pppd rejects the multihome-* options"
				       : "no 'plugin multihome.so' line: multihome is not used by this file");
	if (defroute)
		say_err(file, defroute, "multihome: option defaultroute conflicts with multihome's "
			"balanced default route; remove defaultroute/replacedefaultroute from the peers file");
	/* The plugin's default name: linkname, then ipparam, then the interface. */
	if (!cfg.name_set) {
		const char *src = linkname[0] ? "linkname" : ipparam[0] ? "ipparam" : NULL;
		if (src && mh_config_set(&cfg, "name", linkname[0] ? linkname : ipparam, src,
					 err, sizeof err) < 0) {
			snprintf(msg, sizeof msg, "multihome: %s; set multihome-name", err);
			say_err(file, 0, msg);
		}
	}
	if (mh_config_check(&cfg, err, sizeof err) < 0)
		say_err(file, 0, err);
	if (!errors)
		print_config(file, "pppd peers file", &cfg, "(named after the interface at ip-up)");
	return errors ? CTL_WARN : CTL_OK;
}

/* ---- OpenVPN: config file syntax (one option per line) ---- */

/* Split LINE into words: whitespace separates, "..." (with backslash
 * escapes) and '...' quote, an unquoted # or ; at a word's start ends the
 * line.  Returns the number of words, -1 on an unterminated quote. */
static int split_line(char *line, char **argv, int max)
{
	char *in = line, *out;
	int n = 0;

	for (;;) {
		while (*in && isspace((unsigned char)*in))
			in++;
		if (!*in || *in == '#' || *in == ';')
			return n;
		if (n >= max)
			return n;
		argv[n++] = out = in;
		while (*in && !isspace((unsigned char)*in)) {
			if (*in == '"') {
				in++;
				while (*in && *in != '"') {
					if (*in == '\\' && in[1])
						in++;
					*out++ = *in++;
				}
				if (*in != '"')
					return -1;
				in++;
			} else if (*in == '\'') {
				in++;
				while (*in && *in != '\'')
					*out++ = *in++;
				if (*in != '\'')
					return -1;
				in++;
			} else if (*in == '\\' && in[1]) {
				in++;
				*out++ = *in++;
			} else {
				*out++ = *in++;
			}
		}
		if (*in)
			in++;
		*out = 0;
	}
}

static int check_openvpn(const char *file, FILE *f)
{
	char buf[4096], *argv[ARGS_MAX], err[MH_ERR_MAX];
	int line = 0, plugins = 0, redirect = 0, escape_hatch = 0;

	while (fgets(buf, sizeof buf, f)) {
		int n, bad = 0;
		struct mh_config cfg;
		const char *opt;

		line++;
		buf[strcspn(buf, "\r\n")] = 0;
		n = split_line(buf, argv, ARGS_MAX);
		if (n < 0) {
			say_err(file, line, "unterminated quote");
			continue;
		}
		if (n == 0)
			continue;
		opt = argv[0];
		if (!strncmp(opt, "--", 2))
			opt += 2;
		if (!strcmp(opt, "redirect-gateway") || !strcmp(opt, "redirect-private"))
			redirect = redirect ? redirect : line;
		if (!strcmp(opt, "route-noexec") ||
		    (!strcmp(opt, "pull-filter") && n >= 3 && !strcmp(argv[1], "ignore") &&
		     !strncmp(argv[2], "redirect-gateway", 16)))
			escape_hatch = 1;
		if (strcmp(opt, "plugin") || n < 2)
			continue;
		if (!strcmp(base_name(argv[1]), "multihome.so")) {
			say_err(file, line, "multihome.so is pppd's plugin; OpenVPN loads multihome-openvpn.so");
			continue;
		}
		if (strcmp(base_name(argv[1]), "multihome-openvpn.so"))
			continue;
		plugins++;
		/* the plugin's own argument parsing, message for message */
		if (mh_config_from_args(&cfg, (const char *const *)argv + 2, n - 2, NULL, 0, NULL, NULL,
					err, sizeof err) < 0) {
			say_err(file, line, err);
			bad = 1;
		}
		if (!bad) {
			char where[600];
			snprintf(where, sizeof where, "%s:%d", file, line);
			print_config(where, "OpenVPN plugin line", &cfg,
				     "(named after the tun device at route-up)");
		}
	}
	if (!plugins)
		say_err(file, 0, "no 'plugin .../multihome-openvpn.so' line: multihome is not used by this config");
	if (redirect && !escape_hatch)
		say_warn(file, redirect, "redirect-gateway: OpenVPN's 0.0.0.0/1 and 128.0.0.0/1 override "
			 "multihome's balanced default; use pins with 'pull-filter ignore redirect-gateway' "
			 "or route-noexec");
	return errors ? CTL_WARN : CTL_OK;
}

/* Is FILE an OpenVPN config?  Yes if it loads multihome-openvpn.so. */
static int looks_openvpn(FILE *f)
{
	char buf[4096], *argv[4];
	int n, yes = 0;

	while (!yes && fgets(buf, sizeof buf, f)) {
		buf[strcspn(buf, "\r\n")] = 0;
		n = split_line(buf, argv, 4);
		if (n >= 2 && (!strcmp(argv[0], "plugin") || !strcmp(argv[0], "--plugin")) &&
		    !strcmp(base_name(argv[1]), "multihome-openvpn.so"))
			yes = 1;
	}
	rewind(f);
	return yes;
}

int ctl_check(const char *file, const char *type)
{
	FILE *f = fopen(file, "re");
	int rc;

	if (!f) {
		fprintf(stderr, "multihomectl: cannot open %s: %s\n", file, strerror(errno));
		return CTL_ERROR;
	}
	if (!type)
		type = looks_openvpn(f) ? "openvpn" : "pppd";
	if (!strcmp(type, "pppd"))
		rc = check_pppd(file, f);
	else if (!strcmp(type, "openvpn"))
		rc = check_openvpn(file, f);
	else {
		fprintf(stderr, "multihomectl: --type must be pppd or openvpn, not '%s'\n", type);
		rc = CTL_ERROR;
	}
	fclose(f);
	return rc;
}

int ctl_check_cmd(int argc, char **argv)
{
	const char *type = NULL, *file = NULL;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--type") && i + 1 < argc)
			type = argv[++i];
		else if (!strncmp(argv[i], "--type=", 7))
			type = argv[i] + 7;
		else if (!file && argv[i][0] != '-')
			file = argv[i];
		else {
			ctl_usage(stderr);
			return CTL_ERROR;
		}
	}
	if (!file) {
		ctl_usage(stderr);
		return CTL_ERROR;
	}
	return ctl_check(file, type);
}
