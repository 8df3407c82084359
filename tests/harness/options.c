/* mh-pppd-harness: pppd's options and plugin loader (options.c): the option
 * table a peers file commonly needs, pppd's word syntax, privileged and
 * unprivileged sources, and `plugin` with pppd's version check.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>

#include "pppd-harness.h"

#define PLUGIN_DIR      "/usr/lib/pppd/"

struct option_list {
	option_t *options;
	struct option_list *next;
};
static struct option_list *extra_options;

/* Accepted, no effect. */
bool hx_noipdefault;
static struct {
	bool usepeerdns;
	int  ignored_int;
	char *ignored_string;
	bool ignored_bool;
} o;

/* ---- options (options.c) ---- */

static void add_option_list(option_t *opt)
{
	struct option_list *list = malloc(sizeof *list);

	if (list == NULL)
		novm("option list entry");
	list->options = opt;
	list->next = extra_options;
	extra_options = list;
}

static int int_arg(char *str, int *valp)
{
	char *end;
	unsigned long v = strtoul(str, &end, 0);

	if (end == str) {
		hx_option_error("invalid numeric parameter '%s' for %s option", str, current_option);
		return 0;
	}
	*valp = (int)v;
	return 1;
}

#ifdef DATE
PPPD_API void add_options(option_t *opt) { add_option_list(opt); }
PPPD_API int int_option(char *str, int *valp) { return int_arg(str, valp); }
#else
PPPD_API void ppp_add_options(option_t *opt) { add_option_list(opt); }
PPPD_API int ppp_int_option(char *str, int *valp) { return int_arg(str, valp); }
#endif

static int loadplugin(char **argv);

/* `file`: as privileged as the option naming it; `call`: privileged. */
static int readfile(char **argv) { return hx_read_options_file(*argv, privileged_option); }

static int callfile(char **argv)
{
	char path[MAXPATHLEN];

	if (argv[0][0] == '/' || argv[0][0] == '\0' || strstr(argv[0], "..")) {
		hx_option_error("call option value may not contain .. or start with /");
		return 0;
	}
	snprintf(path, sizeof path, "/etc/ppp/peers/%s", argv[0]);
	return hx_read_options_file(path, 1);
}

/* "LOCAL:REMOTE" (either may be empty), as pppd's setipaddr: taken as the
 * default --local/--remote. */
static int wild_ipaddrs(char *arg, char **argv, int doit)
{
	char *colon = strchr(arg, ':'), buf[64];
	struct in_addr a;

	if (colon == NULL || strlen(arg) >= sizeof buf)
		return 0;
	memcpy(buf, arg, colon - arg);
	buf[colon - arg] = '\0';
	if ((buf[0] && inet_pton(AF_INET, buf, &a) != 1) ||
	    (colon[1] && inet_pton(AF_INET, colon + 1, &a) != 1))
		return 0;
	if (!doit)
		return 1;
	if (buf[0] && inet_pton(AF_INET, buf, &a) == 1)
		ipcp_wantoptions[0].ouraddr = a.s_addr;
	if (colon[1] && inet_pton(AF_INET, colon + 1, &a) == 1)
		ipcp_wantoptions[0].hisaddr = a.s_addr;
	return 1;
}

/* A device (/dev/..., or a skipped PPPoE plugin's "nic-ethX") or a speed:
 * accepted, no effect. */
static int wild_device(char *arg, char **argv, int doit)
{
	char *p = arg;

	if (strncmp(arg, "/dev/", 5) == 0 || (strncmp(arg, "nic-", 4) == 0 && arg[4]))
		return 1;
	while (isdigit((unsigned char)*p))
		++p;
	return p != arg && *p == '\0';
}

#if MH_PPPD_VERSION_CODE >= 20503
static int replacedefaultroute_removed(char **argv)
{
	hx_option_error("replacedefaultroute and noreplacedefaultroute route options no longer have any effect.");
	return 1;
}
#endif

#define BOOL(n, var, v)     { .name = n, .type = o_bool, .addr = &(var), .flags = (v) }
#define INT(n, var)         { .name = n, .type = o_int, .addr = &(var) }
#define INT_PRIV(n, var)    { .name = n, .type = o_int, .addr = &(var), .flags = OPT_PRIV }
#define STATIC_STR_F(n, var, fl) { .name = n, .type = o_string, .addr = (var), \
			      .flags = OPT_STATIC | (fl), .upper_limit = sizeof(var) }
#define STATIC_STR(n, var)  STATIC_STR_F(n, var, 0)
#define STR(n, var)         { .name = n, .type = o_string, .addr = &(var) }
#define SPECIAL(n, fn, fl)  { .name = n, .type = o_special, .addr = (void *)(fn), .flags = (fl) }
#define WILD(n, fn)         { .name = n, .type = o_wild, .addr = (void *)(fn), .flags = OPT_NOARG }
#define WANT(field)         ipcp_wantoptions[0].field

/* The pppd options a peers file commonly carries.  Those that matter to a
 * plugin set pppd's own globals; the rest are accepted and ignored.  The
 * ones pppd 2.4.9 and 2.5.2 mark OPT_PRIV are privileged here too. */
static option_t general_options[] = {
	SPECIAL("plugin", loadplugin, OPT_PRIV),
	SPECIAL("file", readfile, 0),
	SPECIAL("call", callfile, 0),
	STATIC_STR_F("ifname", req_ifname, OPT_PRIV),
	INT("unit", req_unit),
	STATIC_STR_F("linkname", linkname, OPT_PRIV),
	STR("ipparam", ipparam),
	BOOL("defaultroute", WANT(default_route), 1),
	BOOL("nodefaultroute", WANT(default_route), 0),
	BOOL("-defaultroute", WANT(default_route), 0),
#if MH_PPPD_VERSION_CODE < 20503
	BOOL("replacedefaultroute", WANT(replace_default_route), 1 | OPT_PRIV),
	BOOL("noreplacedefaultroute", WANT(replace_default_route), 0),
#else                                   /* 2.5.3 removed it, the words stay */
	{ .name = "replacedefaultroute", .type = o_special_noarg,
	  .addr = (void *)replacedefaultroute_removed, .flags = OPT_PRIV },
	{ .name = "noreplacedefaultroute", .type = o_special_noarg,
	  .addr = (void *)replacedefaultroute_removed },
#endif
	BOOL("proxyarp", WANT(proxy_arp), 1),
	BOOL("noproxyarp", WANT(proxy_arp), 0),
	BOOL("ipcp-accept-local", WANT(accept_local), 1),
	BOOL("ipcp-accept-remote", WANT(accept_remote), 1),
	BOOL("noipdefault", hx_noipdefault, 1),
	BOOL("usepeerdns", o.usepeerdns, 1),
	BOOL("persist", persist, 1),
	BOOL("nopersist", persist, 0),
	BOOL("demand", demand, 1),
	BOOL("nodetach", nodetach, 1),
	BOOL("-detach", nodetach, 1),
	BOOL("updetach", updetach, 1),
	BOOL("dryrun", dryrun, 1),
	BOOL("dump", dump_options, 1),
	{ .name = "debug", .type = o_int, .addr = &debug, .flags = OPT_INC | OPT_NOARG | 1 },
	INT("kdebug", kdebugflag),
	INT("maxfail", maxfail),
	INT("holdoff", holdoff),
	INT("idle", idle_time_limit),
	INT("maxconnect", maxconnect),
	INT("connect-delay", connect_delay),
	INT("child-timeout", child_wait),
	STATIC_STR("user", user),
	{ .name = "password", .type = o_string, .addr = passwd,
	  .flags = OPT_STATIC | OPT_HIDE, .upper_limit = sizeof passwd },
	STATIC_STR_F("name", our_name, OPT_PRIV),
	STATIC_STR("remotename", remote_name),
	STR("connect", o.ignored_string),
	STR("disconnect", o.ignored_string),
	STR("pty", o.ignored_string),
	STR("logfile", o.ignored_string),
	STR("set", o.ignored_string),
	STR("unset", o.ignored_string),
	STR("ms-dns", o.ignored_string),
	STR("ms-wins", o.ignored_string),
	STR("asyncmap", o.ignored_string),
	STR("remotenumber", o.ignored_string),
	STR("pppoe-service", o.ignored_string),         /* channel plugins' */
	INT("rp_pppoe_verbose", o.ignored_int),
	INT("pppoe-verbose", o.ignored_int),
	STR("pppoe-host-uniq", o.ignored_string),
	STR("pppoe-mac", o.ignored_string),
	STR("rp_pppoe_service", o.ignored_string),
	STR("rp_pppoe_ac", o.ignored_string),
	STR("rp_pppoe_sess", o.ignored_string),
	STR("rp_pppoe_mac", o.ignored_string),
	INT("pppoe-padi-timeout", o.ignored_int),
	INT("pppoe-padi-attempts", o.ignored_int),
	INT("logfd", o.ignored_int),
	INT("mtu", o.ignored_int),
	INT("mru", o.ignored_int),
	INT_PRIV("defaultroute-metric", o.ignored_int),
	INT("lcp-echo-interval", o.ignored_int),
	INT("lcp-echo-failure", o.ignored_int),
	INT("lcp-restart", o.ignored_int),
	INT("lcp-max-terminate", o.ignored_int),
	INT("lcp-max-configure", o.ignored_int),
	INT("lcp-max-failure", o.ignored_int),
	INT("ipcp-restart", o.ignored_int),
	INT("ipcp-max-terminate", o.ignored_int),
	INT("ipcp-max-configure", o.ignored_int),
	INT("ipcp-max-failure", o.ignored_int),
	INT("pap-restart", o.ignored_int),
	INT("pap-max-authreq", o.ignored_int),
	INT("pap-timeout", o.ignored_int),
	INT("chap-restart", o.ignored_int),
	INT("chap-max-challenge", o.ignored_int),
	INT("chap-interval", o.ignored_int),
#define IGNORED(n) BOOL(n, o.ignored_bool, 1)
	BOOL("noauth", o.ignored_bool, 1 | OPT_PRIV), IGNORED("auth"), IGNORED("noccp"), IGNORED("novj"),
	IGNORED("novjccomp"), IGNORED("noaccomp"), IGNORED("nopcomp"),
	IGNORED("nobsdcomp"), IGNORED("nodeflate"), IGNORED("nopredictor1"),
	IGNORED("nomagic"), IGNORED("noremoteip"), IGNORED("noipv6"), IGNORED("+ipv6"),
	IGNORED("-ipv6"), IGNORED("noip"), IGNORED("lock"), BOOL("nolock", o.ignored_bool, 1 | OPT_PRIV),
	IGNORED("crtscts"), IGNORED("nocrtscts"), IGNORED("modem"), IGNORED("local"),
	IGNORED("passive"), IGNORED("silent"), IGNORED("default-asyncmap"),
	IGNORED("default-mru"), IGNORED("hide-password"), IGNORED("show-password"),
	IGNORED("lcp-echo-adaptive"), IGNORED("ktune"), IGNORED("noktune"),
	IGNORED("multilink"), IGNORED("mp"), IGNORED("nomultilink"), IGNORED("nomp"),
	IGNORED("noendpoint"), IGNORED("refuse-pap"), IGNORED("refuse-chap"),
	IGNORED("refuse-mschap"), IGNORED("refuse-mschap-v2"), IGNORED("refuse-eap"),
	IGNORED("require-pap"), IGNORED("require-chap"), IGNORED("require-mschap"),
	IGNORED("require-mschap-v2"), IGNORED("require-eap"), IGNORED("require-mppe"),
	IGNORED("nomppe"), IGNORED("noipx"), IGNORED("receive-all"),
	IGNORED("usepeerwins"), IGNORED("master_detach"), IGNORED("nodefaultroute6"),
#undef IGNORED
	WILD("IP addresses", wild_ipaddrs),
	WILD("device or speed", wild_device),
	{ .name = NULL }
};

static int match_option(const char *name, option_t *opt, int dowild)
{
	if (dowild != (opt->type == o_wild))
		return 0;
	if (!dowild)
		return strcmp(name, opt->name) == 0;
	return ((int (*)(char *, char **, int))opt->addr)((char *)name, NULL, 0);
}

static option_t *find_option(const char *name)
{
	struct option_list *list;
	option_t *opt;

	/* Plugins first in the wild pass too, so e.g. pppoe's nic-X wins. */
	for (int dowild = 0; dowild <= 1; ++dowild) {
		for (list = extra_options; list != NULL; list = list->next)
			for (opt = list->options; opt->name != NULL; ++opt)
				if (match_option(name, opt, dowild))
					return opt;
		for (opt = general_options; opt->name != NULL; ++opt)
			if (match_option(name, opt, dowild))
				return opt;
	}
	return NULL;
}

static int n_arguments(option_t *opt)
{
	return (opt->type == o_bool || opt->type == o_special_noarg ||
		(opt->flags & OPT_NOARG)) ? 0 : 1;
}

/* pppd's process_option without the priority bookkeeping: a later value
 * wins.  OPT_PRIV options need a privileged source, as in pppd. */
static int process_option(option_t *opt, char *cmd, char **argv)
{
	int iv, a;
	uint32_t v;
	char *end;

	current_option = opt->name;
	if ((opt->flags & OPT_PRIV) && !privileged_option) {
		hx_option_error("using the %s%s requires root privilege", opt->name,
				opt->type == o_wild ? "" : " option");
		return 0;
	}
	switch (opt->type) {
	case o_bool:
		*(bool *)opt->addr = opt->flags & OPT_VALUE;
		if (opt->addr2 && (opt->flags & OPT_A2COPY))
			*(bool *)opt->addr2 = opt->flags & OPT_VALUE;
		else if (opt->addr2 && (opt->flags & OPT_A2CLR))
			*(bool *)opt->addr2 = 0;
		break;
	case o_int:
		iv = 0;
		if (!(opt->flags & OPT_NOARG)) {
			if (!int_arg(*argv, &iv))
				return 0;
			if ((((opt->flags & OPT_LLIMIT) && iv < opt->lower_limit) ||
			     ((opt->flags & OPT_ULIMIT) && iv > opt->upper_limit)) &&
			    !((opt->flags & OPT_ZEROOK) && iv == 0)) {
				hx_option_error("%s value must be between %d and %d",
					     opt->name, opt->lower_limit, opt->upper_limit);
				return 0;
			}
		}
		a = opt->flags & OPT_VALUE;
		iv += a >= 128 ? a - 256 : a;
		if (opt->flags & OPT_INC)
			iv += *(int *)opt->addr;
		*(int *)opt->addr = iv;
		if (opt->addr2 && (opt->flags & OPT_A2COPY))
			*(int *)opt->addr2 = iv;
		break;
	case o_uint32:
		if (opt->flags & OPT_NOARG) {
			v = opt->flags & OPT_VALUE;
		} else {
			v = strtoul(*argv, &end, 16);
			if (end == *argv) {
				hx_option_error("invalid numeric parameter '%s' for %s option",
					     *argv, opt->name);
				return 0;
			}
		}
		if (opt->flags & OPT_OR)
			v |= *(uint32_t *)opt->addr;
		*(uint32_t *)opt->addr = v;
		break;
	case o_string:
		if (opt->flags & OPT_STATIC) {
			strlcpy(opt->addr, *argv, opt->upper_limit);
		} else {
			char **p = opt->addr, *s = strdup(*argv);
			if (s == NULL)
				novm("option argument");
			free(*p);
			*p = s;
		}
		break;
	case o_special_noarg:
	case o_special:
		if (!((int (*)(char **))opt->addr)(argv))
			return 0;
		break;
	case o_wild:
		if (!((int (*)(char *, char **, int))opt->addr)(cmd, argv, 1))
			return 0;
		break;
	}
	if (opt->addr2 && !(opt->flags & (OPT_A2COPY | OPT_ENABLE | OPT_A2PRINTER |
					  OPT_A2STRVAL | OPT_A2LIST | OPT_A2OR)))
		*(bool *)opt->addr2 = !(opt->flags & OPT_A2CLR);
	return 1;
}

/* One word of an options file, with pppd's syntax: '#' comments to the end
 * of the line, "..." and '...' quoting, backslash escapes (\n \t \s \ooo
 * \xhh, backslash-newline joins lines).  Returns 0 at end of file. */
static int read_word(FILE *f, char *word, const char *filename)
{
	int c, len = 0, quoted = 0, escape = 0, got_word = 0;

	for (;;) {                      /* skip blanks and comments */
		c = getc(f);
		if (c == '#') {
			while (c != EOF && c != '\n')
				c = getc(f);
		}
		if (c == EOF)
			return 0;
		if (!isspace(c))
			break;
	}
	for (; c != EOF; c = getc(f)) {
		if (escape) {
			int value = c;
			escape = 0;
			if (c == '\n')
				continue;
			switch (c) {
			case 'a': value = '\a'; break;
			case 'b': value = '\b'; break;
			case 'f': value = '\f'; break;
			case 'n': value = '\n'; break;
			case 'r': value = '\r'; break;
			case 's': value = ' '; break;
			case 't': value = '\t'; break;
			case 'x':
				value = 0;
				for (int n = 0; n < 2 && isxdigit(c = getc(f)); ++n)
					value = value * 16 + (isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
				ungetc(c, f);
				break;
			default:
				if (c >= '0' && c <= '7') {
					value = 0;
					for (int n = 0; n < 3 && c >= '0' && c <= '7'; ++n, c = getc(f))
						value = value * 8 + (c - '0');
					ungetc(c, f);
				}
			}
			if (len < MAXWORDLEN - 1)
				word[len++] = value;
			got_word = 1;
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
			got_word = 1;           /* "" is an empty word */
			continue;
		} else if (isspace(c) || c == '#') {
			ungetc(c, f);
			break;
		}
		if (len < MAXWORDLEN - 1)
			word[len++] = c;
		got_word = 1;
	}
	if (quoted)
		hx_option_error("warning: quoted word runs to end of file %s", filename);
	word[len] = '\0';
	return got_word || len > 0;
}

/* One option and its argument (if it takes one) from NEXT_WORD; WHERE says
 * where, for the messages.  Returns 0 when parsing must stop. */
static int take_option(char *cmd, int (*next_word)(void *, char *), void *src,
		       const char *where)
{
	char arg[MAXWORDLEN], *argv[MAXARGS + 1] = { arg, NULL };
	option_t *opt = find_option(cmd);

	if (opt == NULL) {
		fprintf(stderr, "harness: %s: unrecognized option '%s'\n", where, cmd);
		return 0;
	}
	if (n_arguments(opt) && !next_word(src, arg)) {
		fprintf(stderr, "harness: %s: too few parameters for option '%s'\n", where, cmd);
		return 0;
	}
	if (process_option(opt, cmd, argv))
		return 1;
	if (n_arguments(opt))
		fprintf(stderr, "harness: %s: invalid value for option %s '%s'\n", where, cmd, arg);
	else
		fprintf(stderr, "harness: %s: option %s failed\n", where, cmd);
	return 0;
}

struct file_source {
	FILE *f;
	const char *name;
};

static int file_word(void *src, char *word)
{
	struct file_source *fs = src;

	return read_word(fs->f, word, fs->name);
}

/* pppd's options_from_file: PRIV says whether the file's options count as
 * root's (a `call` file, /etc/ppp/options) or the invoking user's. */
int hx_read_options_file(const char *filename, int priv)
{
	char cmd[MAXWORDLEN], where[MAXPATHLEN + 16];
	char *oldsource = option_source;
	int oldpriv = privileged_option, ok = 1;
	struct file_source fs = { fopen(filename, "r"), filename };

	if (fs.f == NULL) {
		hx_option_error("Can't open options file %s: %m", filename);
		return 0;
	}
	option_source = (char *)filename;
	privileged_option = priv;
	snprintf(where, sizeof where, "In file %s", filename);
	while (ok && read_word(fs.f, cmd, filename))
		ok = take_option(cmd, file_word, &fs, where);
	fclose(fs.f);
	option_source = oldsource;
	privileged_option = oldpriv;
	return ok;
}

struct args_source {
	int argc, i;
	char **argv;
};

static int args_word(void *src, char *word)
{
	struct args_source *as = src;

	if (as->i >= as->argc)
		return 0;
	strlcpy(word, as->argv[as->i++], MAXWORDLEN);
	return 1;
}

/* pppd's parse_args: the command line is as privileged as the user who
 * started pppd. */
int hx_parse_args(int argc, char **argv)
{
	char cmd[MAXWORDLEN];
	struct args_source as = { argc, 0, argv };
	int ok = 1;

	option_source = "command line";
	privileged_option = privileged;
	while (ok && args_word(&as, cmd))
		ok = take_option(cmd, args_word, &as, "command line");
	return ok;
}

/* ---- plugins (options.c loadplugin) ---- */

static const char *base_name(const char *path)
{
	const char *s = strrchr(path, '/');
	return s ? s + 1 : path;
}

/* Plugins that provide the link itself (PPPoE, PPPoA, L2TP) need a kernel
 * channel: they are skipped, and their usual options accepted (below), so a
 * real peers file runs unchanged. */
static int is_channel_plugin(const char *arg)
{
	static const char *const channels[] = {
		"rp-pppoe.so", "pppoe.so", "pppoatm.so", "pppol2tp.so", "openl2tp.so", NULL
	};

	for (const char *const *c = channels; *c; ++c)
		if (strcmp(base_name(arg), *c) == 0)
			return 1;
	return 0;
}

void hx_load_plugin_or_exit(const char *arg)
{
	char path[MAXPATHLEN];
	void *handle;
	const char *vers;
	void (*init)(void);

	if (is_channel_plugin(arg)) {
		notice("Plugin %s not loaded: the harness has no PPP channel", arg);
		return;
	}
	if (hx.plugin_path && strcmp(base_name(arg), base_name(hx.plugin_path)) == 0) {
		snprintf(path, sizeof path, "%s", hx.plugin_path);
	} else if (strchr(arg, '/') == NULL) {
		snprintf(path, sizeof path, PLUGIN_DIR "%s/%s", hx.version, arg);
	} else {
		snprintf(path, sizeof path, "%s", arg);
	}
	/* pppd's order: dlopen, plugin_init, then pppd_version. */
	handle = dlopen(path, RTLD_GLOBAL | RTLD_NOW);
	if (handle == NULL) {
		hx_option_error("%s", dlerror());
		hx_option_error("Couldn't load plugin %s", arg);
		exit(EXIT_FATAL);
	}
	init = (void (*)(void))dlsym(handle, "plugin_init");
	if (init == NULL) {
		hx_option_error("%s has no initialization entry point", arg);
		exit(EXIT_FATAL);
	}
	vers = dlsym(handle, "pppd_version");
	if (vers == NULL) {
		warn("Warning: plugin %s has no version information", arg);
	} else if (strcmp(vers, hx.version) != 0) {
		hx_option_error("Plugin %s is for pppd version %s, this is %s", arg, vers,
				hx.version);
		exit(EXIT_FATAL);
	}
	info("Plugin %s loaded.", arg);
	(*init)();
}

static int loadplugin(char **argv)
{
	hx_load_plugin_or_exit(*argv);
	return 1;
}

/* Does FILE name, at top level, a plugin with the base name of --plugin? */
int hx_file_names_plugin(const char *filename)
{
	char w[MAXWORDLEN], prev[MAXWORDLEN] = "";
	FILE *f = fopen(filename, "r");
	int found = 0;

	if (f == NULL)
		return 0;
	while (!found && read_word(f, w, filename)) {
		found = strcmp(prev, "plugin") == 0 &&
			strcmp(base_name(w), base_name(hx.plugin_path)) == 0;
		strcpy(prev, w);
	}
	fclose(f);
	return found;
}

