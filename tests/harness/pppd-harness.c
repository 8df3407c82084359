/* mh-pppd-harness: a stand-in for pppd 2.4.9 that loads pppd plugins the way
 * pppd does and drives their notifiers from a script, so namespace tests can
 * run the real multihome.so without kernel PPP.
 *
 *   mh-pppd-harness --file PEERS [--plugin PATH] [--ifname IF]
 *                   [--local A] [--remote A] [--linkname N] [--ipparam S]
 *                   [--version V] [--time] [--strict] WORD...
 *
 * It defines the globals and functions a plugin links against (with the
 * types of <pppd/pppd.h>, exported by -rdynamic), reads PEERS with pppd's
 * word syntax, loads `plugin NAME` with dlopen(RTLD_GLOBAL|RTLD_NOW) from
 * /usr/lib/pppd/VERSION/ when the name is bare, checks pppd_version, calls
 * plugin_init, and hands plugin options to their parsers as pppd does.
 * --plugin PATH replaces a `plugin` line of the same base name (or, if the
 * file has none, is loaded before the file is read).
 *
 * The script (WORDs, in order):
 *   up          set ouraddr/hisaddr from --local/--remote, phases up to
 *               RUNNING, then ip_up_notifier and ip_up_hook (as ipcp_up)
 *   down        ip_down_notifier and ip_down_hook (as ipcp_down), then
 *               phases TERMINATE, DISCONNECT, DEAD
 *   exit        exitnotify with 0, then exit 0 (as die(0)); ends the script
 *   wait        block until SIGTERM, SIGINT or SIGHUP (one that arrived
 *               earlier counts), then go on
 *   sleep MS    pause (a signal cuts it short)
 *   repeat N W...  run the remaining words N times
 *   addr A      use A as the local address from the next `up` on
 * Phases INITIALIZE, ESTABLISH, AUTHENTICATE fire before the first word, as
 * pppd's start_link does; a reconnect (`up` after `down`) fires ESTABLISH
 * and AUTHENTICATE again.
 * --time prints "event up|down|exit usec N" per notifier call (stdout).
 *
 * Exit status: 0; 1 on fatal() or a refused/unloadable plugin; 2 on option
 * and usage errors (as pppd's EXIT_OPTION_ERROR); 3 with --strict when
 * error() was called (e.g. a failed link-up).
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include <pppd/pppd.h>
#include <pppd/fsm.h>
#include <pppd/ipcp.h>

#define EXIT_FATAL      1
#define EXIT_OPTION     2
#define EXIT_STRICT     3
#define PLUGIN_DIR      "/usr/lib/pppd/"

/* ---- pppd's globals, as a plugin sees them ---- */
char    *progname = "pppd";
int     phase;
int     debug;
int     kdebugflag;
int     privileged = 1;
int     privileged_option = 1;
char    *current_option;
char    *option_source = "command line";
int     option_priority;
int     error_count;
int     got_sigterm;
int     hungup;
volatile int status;
int     ifunit;
char    ifname[MAXIFNAMELEN];
char    req_ifname[MAXIFNAMELEN];
int     req_unit = -1;
char    hostname[MAXNAMELEN];
char    devnam[MAXPATHLEN];
char    ppp_devnam[MAXPATHLEN];
char    linkname[MAXPATHLEN];
char    *ipparam;
char    user[MAXNAMELEN];
char    passwd[MAXSECRETLEN];
char    our_name[MAXNAMELEN];
char    remote_name[MAXNAMELEN];
char    remote_number[MAXNAMELEN];
char    peer_authname[MAXNAMELEN];
int     ppp_session_number;
bool    persist;
bool    demand;
bool    nodetach;
bool    updetach;
bool    dryrun;
bool    dump_options;
bool    noendpoint;
bool    multilink;
int     maxfail = 10;
int     holdoff = 30;
bool    holdoff_specified;
int     idle_time_limit;
int     maxconnect;
int     connect_delay = 1000;
int     child_wait = 5;
int     log_to_fd = 2;
bool    log_default = 1;
int     baud_rate;
int     devfd = -1;
int     fd_ppp = -1;
int     detached;
int     using_pty;
unsigned link_connect_time;
int     link_stats_valid;
struct pppd_stats link_stats;
char    path_ipup[MAXPATHLEN] = "/etc/ppp/ip-up";
char    path_ipdown[MAXPATHLEN] = "/etc/ppp/ip-down";

struct notifier *pidchange, *phasechange, *exitnotify, *sigreceived;
struct notifier *ip_up_notifier, *ip_down_notifier;
struct notifier *ipv6_up_notifier, *ipv6_down_notifier;
struct notifier *auth_up_notifier, *link_down_notifier, *fork_notifier;

int  (*new_phase_hook)(int);
int  (*holdoff_hook)(void);
int  (*allowed_address_hook)(u_int32_t addr);
void (*ip_up_hook)(void);
void (*ip_down_hook)(void);
void (*ip_choose_hook)(u_int32_t *);
void (*ipv6_up_hook)(void);
void (*ipv6_down_hook)(void);
void (*multilink_join_hook)(void);

fsm          ipcp_fsm[NUM_PPP];
ipcp_options ipcp_wantoptions[NUM_PPP];
ipcp_options ipcp_gotoptions[NUM_PPP];
ipcp_options ipcp_allowoptions[NUM_PPP];
ipcp_options ipcp_hisoptions[NUM_PPP];
int          peer_mru[NUM_PPP];

/* ---- the harness's own state ---- */
static struct {
	const char *version;            /* the pppd version we claim to be */
	const char *plugin_path;        /* --plugin */
	int  plugin_path_used;
	uint32_t local, remote;         /* network byte order */
	int  timed, strict;
	int  dying;
	int  link_was_down;
	bool usepeerdns, noipdefault;   /* accepted, no effect */
	int  ignored_int;
	char *ignored_string;
	bool ignored_bool;
} h = { .version = VERSION };

struct option_list {
	option_t *options;
	struct option_list *next;
};
static struct option_list *extra_options;

static volatile sig_atomic_t got_signal;

/* ---- logging (pppd's utils.c, to stderr) ---- */

int vslprintf(char *buf, int buflen, char *fmt, va_list args)
{
	int n = vsnprintf(buf, buflen, fmt, args);
	return n < 0 ? 0 : (n >= buflen ? buflen - 1 : n);
}

int slprintf(char *buf, int buflen, char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vslprintf(buf, buflen, fmt, ap);
	va_end(ap);
	return n;
}

size_t strlcpy(char *dest, const char *src, size_t len)
{
	size_t n = strlen(src);

	if (len) {
		size_t c = n < len - 1 ? n : len - 1;
		memcpy(dest, src, c);
		dest[c] = '\0';
	}
	return n;
}

size_t strlcat(char *dest, const char *src, size_t len)
{
	size_t d = strnlen(dest, len);

	return d == len ? len + strlen(src) : d + strlcpy(dest + d, src, len - d);
}

static void vlog(int is_debug, char *fmt, va_list ap)
{
	char buf[1024];
	int saved = errno;

	if (is_debug && !debug)
		return;
	errno = saved;                  /* for %m */
	vslprintf(buf, sizeof buf, fmt, ap);
	fprintf(stderr, "%s: %s\n", progname, buf);
	errno = saved;
}

#define LOGGER(fn, dbg, extra) \
	void fn(char *fmt, ...) { va_list ap; extra; va_start(ap, fmt); \
		vlog(dbg, fmt, ap); va_end(ap); }
LOGGER(dbglog, 1, )
LOGGER(info, 0, )
LOGGER(notice, 0, )
LOGGER(warn, 0, )
LOGGER(error, 0, ++error_count)
LOGGER(option_error, 0, )

void die(int exit_status)
{
	if (!h.dying) {
		h.dying = 1;
		notify(exitnotify, exit_status);
	}
	fflush(stdout);
	exit(exit_status);
}

void quit(void) { die(EXIT_FATAL); }

void fatal(char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(0, fmt, ap);
	va_end(ap);
	die(EXIT_FATAL);
}

void novm(char *msg) { fatal("Virtual memory exhausted allocating %s\n", msg); }

char *ip_ntoa(u_int32_t addr)
{
	static char buf[INET_ADDRSTRLEN];
	struct in_addr a = { .s_addr = addr };

	return (char *)inet_ntop(AF_INET, &a, buf, sizeof buf);
}

/* Scripts never run here. */
void script_setenv(char *var, char *value, int iskey) { dbglog("setenv %s=%s", var, value); }
void script_unsetenv(char *var) { }

/* ---- notifiers and phases (main.c) ---- */

void add_notifier(struct notifier **notif, notify_func func, void *arg)
{
	struct notifier *np = malloc(sizeof *np);

	if (np == NULL)
		novm("notifier struct");
	np->next = *notif;
	np->func = func;
	np->arg = arg;
	*notif = np;
}

void remove_notifier(struct notifier **notif, notify_func func, void *arg)
{
	struct notifier *np;

	for (; (np = *notif) != NULL; notif = &np->next) {
		if (np->func == func && np->arg == arg) {
			*notif = np->next;
			free(np);
			break;
		}
	}
}

void notify(struct notifier *notif, int val)
{
	struct notifier *np;

	while ((np = notif) != NULL) {
		notif = np->next;       /* the callee may remove itself */
		(*np->func)(np->arg, val);
	}
}

void new_phase(int p)
{
	phase = p;
	if (new_phase_hook)
		(*new_phase_hook)(p);
	notify(phasechange, p);
}

/* ---- options (options.c) ---- */

void add_options(option_t *opt)
{
	struct option_list *list = malloc(sizeof *list);

	if (list == NULL)
		novm("option list entry");
	list->options = opt;
	list->next = extra_options;
	extra_options = list;
}

int int_option(char *str, int *valp)
{
	char *end;
	unsigned long v = strtoul(str, &end, 0);

	if (end == str) {
		option_error("invalid numeric parameter '%s' for %s option", str, current_option);
		return 0;
	}
	*valp = (int)v;
	return 1;
}

static int read_options_file(char *filename);
static int loadplugin(char **argv);

static int readfile(char **argv) { return read_options_file(*argv); }

static int callfile(char **argv)
{
	char path[MAXPATHLEN];

	if (argv[0][0] == '/' || argv[0][0] == '\0' || strstr(argv[0], "..")) {
		option_error("call option value may not contain .. or start with /");
		return 0;
	}
	snprintf(path, sizeof path, "/etc/ppp/peers/%s", argv[0]);
	return read_options_file(path);
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

#define BOOL(n, var, v)     { .name = n, .type = o_bool, .addr = &(var), .flags = (v) }
#define INT(n, var)         { .name = n, .type = o_int, .addr = &(var) }
#define STATIC_STR(n, var)  { .name = n, .type = o_string, .addr = (var), \
			      .flags = OPT_STATIC, .upper_limit = sizeof(var) }
#define STR(n, var)         { .name = n, .type = o_string, .addr = &(var) }
#define SPECIAL(n, fn, fl)  { .name = n, .type = o_special, .addr = (void *)(fn), .flags = (fl) }
#define WILD(n, fn)         { .name = n, .type = o_wild, .addr = (void *)(fn), .flags = OPT_NOARG }
#define WANT(field)         ipcp_wantoptions[0].field

/* The pppd options a peers file commonly carries.  Those that matter to a
 * plugin set pppd's own globals; the rest are accepted and ignored. */
static option_t general_options[] = {
	SPECIAL("plugin", loadplugin, OPT_PRIV),
	SPECIAL("file", readfile, 0),
	SPECIAL("call", callfile, 0),
	STATIC_STR("ifname", req_ifname),
	INT("unit", req_unit),
	STATIC_STR("linkname", linkname),
	STR("ipparam", ipparam),
	BOOL("defaultroute", WANT(default_route), 1),
	BOOL("nodefaultroute", WANT(default_route), 0),
	BOOL("-defaultroute", WANT(default_route), 0),
	BOOL("replacedefaultroute", WANT(replace_default_route), 1),
	BOOL("noreplacedefaultroute", WANT(replace_default_route), 0),
	BOOL("proxyarp", WANT(proxy_arp), 1),
	BOOL("noproxyarp", WANT(proxy_arp), 0),
	BOOL("ipcp-accept-local", WANT(accept_local), 1),
	BOOL("ipcp-accept-remote", WANT(accept_remote), 1),
	BOOL("noipdefault", h.noipdefault, 1),
	BOOL("usepeerdns", h.usepeerdns, 1),
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
	STATIC_STR("name", our_name),
	STATIC_STR("remotename", remote_name),
	STR("connect", h.ignored_string),
	STR("disconnect", h.ignored_string),
	STR("pty", h.ignored_string),
	STR("logfile", h.ignored_string),
	STR("set", h.ignored_string),
	STR("unset", h.ignored_string),
	STR("ms-dns", h.ignored_string),
	STR("ms-wins", h.ignored_string),
	STR("asyncmap", h.ignored_string),
	STR("remotenumber", h.ignored_string),
	STR("pppoe-service", h.ignored_string),         /* channel plugins' */
	INT("rp_pppoe_verbose", h.ignored_int),
	INT("pppoe-verbose", h.ignored_int),
	STR("pppoe-host-uniq", h.ignored_string),
	STR("pppoe-mac", h.ignored_string),
	STR("rp_pppoe_service", h.ignored_string),
	STR("rp_pppoe_ac", h.ignored_string),
	STR("rp_pppoe_sess", h.ignored_string),
	STR("rp_pppoe_mac", h.ignored_string),
	INT("pppoe-padi-timeout", h.ignored_int),
	INT("pppoe-padi-attempts", h.ignored_int),
	INT("logfd", h.ignored_int),
	INT("mtu", h.ignored_int),
	INT("mru", h.ignored_int),
	INT("defaultroute-metric", h.ignored_int),
	INT("lcp-echo-interval", h.ignored_int),
	INT("lcp-echo-failure", h.ignored_int),
	INT("lcp-restart", h.ignored_int),
	INT("lcp-max-terminate", h.ignored_int),
	INT("lcp-max-configure", h.ignored_int),
	INT("lcp-max-failure", h.ignored_int),
	INT("ipcp-restart", h.ignored_int),
	INT("ipcp-max-terminate", h.ignored_int),
	INT("ipcp-max-configure", h.ignored_int),
	INT("ipcp-max-failure", h.ignored_int),
	INT("pap-restart", h.ignored_int),
	INT("pap-max-authreq", h.ignored_int),
	INT("pap-timeout", h.ignored_int),
	INT("chap-restart", h.ignored_int),
	INT("chap-max-challenge", h.ignored_int),
	INT("chap-interval", h.ignored_int),
#define IGNORED(n) BOOL(n, h.ignored_bool, 1)
	IGNORED("noauth"), IGNORED("auth"), IGNORED("noccp"), IGNORED("novj"),
	IGNORED("novjccomp"), IGNORED("noaccomp"), IGNORED("nopcomp"),
	IGNORED("nobsdcomp"), IGNORED("nodeflate"), IGNORED("nopredictor1"),
	IGNORED("nomagic"), IGNORED("noremoteip"), IGNORED("noipv6"), IGNORED("+ipv6"),
	IGNORED("-ipv6"), IGNORED("noip"), IGNORED("lock"), IGNORED("nolock"),
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

/* pppd's process_option without the priority bookkeeping (every source
 * here is privileged, as a `call` file is). */
static int process_option(option_t *opt, char *cmd, char **argv)
{
	int iv, a;
	u_int32_t v;
	char *end;

	current_option = opt->name;
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
			if (!int_option(*argv, &iv))
				return 0;
			if ((((opt->flags & OPT_LLIMIT) && iv < opt->lower_limit) ||
			     ((opt->flags & OPT_ULIMIT) && iv > opt->upper_limit)) &&
			    !((opt->flags & OPT_ZEROOK) && iv == 0)) {
				option_error("%s value must be between %d and %d",
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
				option_error("invalid numeric parameter '%s' for %s option",
					     *argv, opt->name);
				return 0;
			}
		}
		if (opt->flags & OPT_OR)
			v |= *(u_int32_t *)opt->addr;
		*(u_int32_t *)opt->addr = v;
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
		option_error("warning: quoted word runs to end of file %s", filename);
	word[len] = '\0';
	return got_word || len > 0;
}

static int read_options_file(char *filename)
{
	char cmd[MAXWORDLEN], arg[MAXWORDLEN], *argv[MAXARGS + 1] = { arg, NULL };
	char *oldsource = option_source;
	option_t *opt;
	FILE *f = fopen(filename, "r");
	int ok = 0;

	if (f == NULL) {
		option_error("Can't open options file %s: %m", filename);
		return 0;
	}
	option_source = filename;
	while (read_word(f, cmd, filename)) {
		opt = find_option(cmd);
		if (opt == NULL) {
			fprintf(stderr, "harness: In file %s: unrecognized option '%s'\n",
				filename, cmd);
			goto out;
		}
		if (n_arguments(opt) && !read_word(f, arg, filename)) {
			fprintf(stderr, "harness: In file %s: too few parameters for option '%s'\n",
				filename, cmd);
			goto out;
		}
		if (!process_option(opt, cmd, argv)) {
			if (n_arguments(opt))
				fprintf(stderr, "harness: In file %s: invalid value for option %s '%s'\n",
					filename, cmd, arg);
			else
				fprintf(stderr, "harness: In file %s: option %s failed\n",
					filename, cmd);
			goto out;
		}
	}
	ok = 1;
out:
	fclose(f);
	option_source = oldsource;
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

static void load_plugin_or_exit(const char *arg)
{
	char path[MAXPATHLEN];
	void *handle;
	const char *vers;
	void (*init)(void);

	if (is_channel_plugin(arg)) {
		notice("Plugin %s not loaded: the harness has no PPP channel", arg);
		return;
	}
	if (h.plugin_path && strcmp(base_name(arg), base_name(h.plugin_path)) == 0) {
		snprintf(path, sizeof path, "%s", h.plugin_path);
		h.plugin_path_used = 1;
	} else if (strchr(arg, '/') == NULL) {
		snprintf(path, sizeof path, PLUGIN_DIR "%s/%s", h.version, arg);
	} else {
		snprintf(path, sizeof path, "%s", arg);
	}
	handle = dlopen(path, RTLD_GLOBAL | RTLD_NOW);
	if (handle == NULL) {
		option_error("%s", dlerror());
		option_error("Couldn't load plugin %s", arg);
		exit(EXIT_FATAL);
	}
	vers = dlsym(handle, "pppd_version");
	if (vers == NULL) {
		warn("Warning: plugin %s has no version information", arg);
	} else if (strcmp(vers, h.version) != 0) {
		option_error("Plugin %s is for pppd version %s, this is %s", arg, vers, h.version);
		exit(EXIT_FATAL);
	}
	init = (void (*)(void))dlsym(handle, "plugin_init");
	if (init == NULL) {
		option_error("%s has no initialization entry point", arg);
		exit(EXIT_FATAL);
	}
	info("Plugin %s loaded.", arg);
	(*init)();
}

static int loadplugin(char **argv)
{
	load_plugin_or_exit(*argv);
	return 1;
}

/* Does FILE name, at top level, a plugin with the base name of --plugin? */
static int file_names_plugin(char *filename)
{
	char w[MAXWORDLEN], prev[MAXWORDLEN] = "";
	FILE *f = fopen(filename, "r");
	int found = 0;

	if (f == NULL)
		return 0;
	while (!found && read_word(f, w, filename)) {
		found = strcmp(prev, "plugin") == 0 &&
			strcmp(base_name(w), base_name(h.plugin_path)) == 0;
		strcpy(prev, w);
	}
	fclose(f);
	return found;
}

/* ---- the script ---- */

static long long now_usec(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static void timed_notify(const char *event, struct notifier *list, int val)
{
	long long t0 = now_usec();

	notify(list, val);
	if (h.timed)
		printf("event %s usec %lld\n", event, now_usec() - t0);
}

static void script_up(void)
{
	if (h.link_was_down) {          /* a reconnect */
		new_phase(PHASE_ESTABLISH);
		new_phase(PHASE_AUTHENTICATE);
		h.link_was_down = 0;
	}
	new_phase(PHASE_NETWORK);
	ipcp_gotoptions[0].ouraddr = h.local;
	ipcp_hisoptions[0].hisaddr = h.remote;
	new_phase(PHASE_RUNNING);       /* np_up, before the notifier */
	timed_notify("up", ip_up_notifier, 0);
	if (ip_up_hook)
		(*ip_up_hook)();
}

static void script_down(void)
{
	timed_notify("down", ip_down_notifier, 0);
	if (ip_down_hook)
		(*ip_down_hook)();
	new_phase(PHASE_TERMINATE);
	new_phase(PHASE_DISCONNECT);
	new_phase(PHASE_DEAD);
	h.link_was_down = 1;
}

static void on_signal(int sig) { got_signal = sig; }

static void wait_for_signal(void)
{
	sigset_t block, old;

	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGHUP);
	sigprocmask(SIG_BLOCK, &block, &old);
	fprintf(stderr, "harness: waiting for a signal (pid %d)\n", (int)getpid());
	while (!got_signal)
		sigsuspend(&old);
	info("Received signal %d", (int)got_signal);
	got_sigterm = got_signal != SIGHUP;
	got_signal = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (!got_signal && nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int parse_addr(const char *text, uint32_t *addr)
{
	struct in_addr a;

	if (inet_pton(AF_INET, text, &a) != 1)
		return -1;
	*addr = a.s_addr;
	return 0;
}

static int parse_count(const char *text, long *n)
{
	char *end;

	errno = 0;
	*n = strtol(text, &end, 10);
	return (errno || end == text || *end || *n < 0) ? -1 : 0;
}

static void script_error(const char *fmt, const char *word)
{
	fprintf(stderr, "harness: ");
	fprintf(stderr, fmt, word);
	fputc('\n', stderr);
	exit(EXIT_OPTION);
}

/* Check the script before running anything. */
static void check_script(int n, char **w)
{
	long v;
	uint32_t a;

	for (int i = 0; i < n; ++i) {
		if (!strcmp(w[i], "up") || !strcmp(w[i], "down") || !strcmp(w[i], "exit") ||
		    !strcmp(w[i], "wait"))
			continue;
		if (!strcmp(w[i], "sleep") || !strcmp(w[i], "repeat")) {
			if (i + 1 >= n || parse_count(w[i + 1], &v) < 0)
				script_error("'%s' needs a non-negative number", w[i]);
			++i;
		} else if (!strcmp(w[i], "addr")) {
			if (i + 1 >= n || parse_addr(w[i + 1], &a) < 0)
				script_error("'addr' needs an IPv4 address, not '%s'",
					     i + 1 < n ? w[i + 1] : "");
			++i;
		} else {
			script_error("unknown script word '%s' (up down exit wait sleep "
				     "repeat addr)", w[i]);
		}
	}
}

static void run_script(int n, char **w)
{
	long v;

	for (int i = 0; i < n; ++i) {
		if (!strcmp(w[i], "up")) {
			script_up();
		} else if (!strcmp(w[i], "down")) {
			script_down();
		} else if (!strcmp(w[i], "exit")) {
			if (i + 1 < n)
				fprintf(stderr, "harness: words after 'exit' ignored\n");
			h.dying = 1;
			timed_notify("exit", exitnotify, 0);
			fflush(stdout);
			exit(h.strict && error_count ? EXIT_STRICT : 0);
		} else if (!strcmp(w[i], "wait")) {
			wait_for_signal();
		} else if (!strcmp(w[i], "sleep")) {
			parse_count(w[++i], &v);
			sleep_ms(v);
		} else if (!strcmp(w[i], "addr")) {
			parse_addr(w[++i], &h.local);
		} else if (!strcmp(w[i], "repeat")) {
			parse_count(w[++i], &v);
			for (long k = 0; k < v; ++k)
				run_script(n - i - 1, w + i + 1);
			return;
		}
	}
}

/* ---- main ---- */

static void usage(void)
{
	fprintf(stderr,
		"usage: mh-pppd-harness --file PEERS [--plugin PATH] [--ifname IF]\n"
		"         [--local A] [--remote A] [--linkname N] [--ipparam S]\n"
		"         [--version V] [--time] [--strict] WORD...\n"
		"words: up | down | exit | wait | sleep MS | repeat N WORD... | addr A\n");
	exit(EXIT_OPTION);
}

int main(int argc, char **argv)
{
	const char *file = NULL, *cli_ifname = NULL, *cli_linkname = NULL;
	const char *cli_ipparam = NULL, *local = NULL, *remote = NULL;
	struct sigaction sa = { .sa_handler = on_signal };
	int i;

	for (i = 1; i < argc && strncmp(argv[i], "--", 2) == 0; ++i) {
		const char *o = argv[i];
		if (!strcmp(o, "--time")) { h.timed = 1; continue; }
		if (!strcmp(o, "--strict")) { h.strict = 1; continue; }
		if (!strcmp(o, "--help")) usage();
		if (!strcmp(o, "--")) { ++i; break; }
		if (i + 1 >= argc)
			usage();
		if (!strcmp(o, "--file")) file = argv[++i];
		else if (!strcmp(o, "--plugin")) h.plugin_path = argv[++i];
		else if (!strcmp(o, "--ifname")) cli_ifname = argv[++i];
		else if (!strcmp(o, "--local")) local = argv[++i];
		else if (!strcmp(o, "--remote")) remote = argv[++i];
		else if (!strcmp(o, "--linkname")) cli_linkname = argv[++i];
		else if (!strcmp(o, "--ipparam")) cli_ipparam = argv[++i];
		else if (!strcmp(o, "--version")) h.version = argv[++i];
		else {
			fprintf(stderr, "harness: unknown option '%s'\n", o);
			usage();
		}
	}
	if (file == NULL)
		usage();
	if (local && parse_addr(local, &h.local) < 0)
		script_error("--local: not an IPv4 address: '%s'", local);
	if (remote && parse_addr(remote, &h.remote) < 0)
		script_error("--remote: not an IPv4 address: '%s'", remote);
	check_script(argc - i, argv + i);

	setvbuf(stdout, NULL, _IOLBF, 0);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	gethostname(hostname, sizeof hostname);

	new_phase(PHASE_INITIALIZE);    /* as pppd: before any option is read */
	if (h.plugin_path && !file_names_plugin((char *)file))
		load_plugin_or_exit(h.plugin_path);
	if (!read_options_file((char *)file))
		exit(EXIT_OPTION);

	/* What pppd knows once the ppp unit exists. */
	if (cli_ifname)
		strlcpy(req_ifname, cli_ifname, sizeof req_ifname);
	ifunit = req_unit >= 0 ? req_unit : 0;
	if (req_ifname[0])
		strlcpy(ifname, req_ifname, sizeof ifname);
	else
		slprintf(ifname, sizeof ifname, "ppp%d", ifunit);
	if (cli_linkname)
		strlcpy(linkname, cli_linkname, sizeof linkname);
	if (cli_ipparam)
		ipparam = strdup(cli_ipparam);
	if (!local)
		h.local = ipcp_wantoptions[0].ouraddr;
	if (!remote)
		h.remote = ipcp_wantoptions[0].hisaddr;

	/* start_link: the first phase changes a plugin sees. */
	new_phase(PHASE_INITIALIZE);
	new_phase(PHASE_ESTABLISH);
	new_phase(PHASE_AUTHENTICATE);

	run_script(argc - i, argv + i);
	fflush(stdout);
	return h.strict && error_count ? EXIT_STRICT : 0;
}
