/* Which firewall backend carries multihome's rules.
 *
 * iptables (legacy x_tables through libiptc) is the default, as the rules
 * then show in `iptables-legacy -S`; nftables (table `ip multihome`) is
 * chosen by `firewall nft` in /etc/multihome.conf or by the environment
 * variable MULTIHOME_FIREWALL=nft (which wins; honoured only where the
 * environment is trusted, see mh_getenv).  When the choice changes,
 * the next event empties the other backend of anything of ours.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "internal.h"

#define CONF_FILE "/etc/multihome.conf"

static int parse_backend(const char *v, enum mh_fw_backend *b)
{
	if (!strcmp(v, "nft") || !strcmp(v, "nftables"))
		*b = MH_FW_NFT;
	else if (!strcmp(v, "iptables") || !strcmp(v, "iptables-legacy") || !strcmp(v, "legacy"))
		*b = MH_FW_IPTABLES;
	else
		return -1;
	return 0;
}

/* The configuration file: a regular file of root's, read without blocking
 * (a FIFO named as the file must not hang every link's events). */
static FILE *conf_open(const char *path)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	FILE *f;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 022) ||
	    (st.st_uid != 0 && st.st_uid != geteuid())) {
		mh_log(MH_LOG_WARN, "%s: not a regular file of root's, not writable by others: ignored",
		       path);
		close(fd);
		return NULL;
	}
	f = fdopen(fd, "r");
	if (!f)
		close(fd);
	return f;
}

enum mh_fw_backend mh_fw_backend(void)
{
	enum mh_fw_backend b = MH_FW_IPTABLES;
	const char *env = mh_getenv("MULTIHOME_FIREWALL");
	const char *conf = mh_getenv("MULTIHOME_CONF");
	char line[256], key[64], val[64];
	FILE *f;

	if (env && *env) {
		if (parse_backend(env, &b) < 0)
			mh_log(MH_LOG_WARN, "MULTIHOME_FIREWALL=%.32s: expected iptables or nft; using iptables", env);
		return b;
	}
	f = conf_open(conf && *conf ? conf : CONF_FILE);
	if (!f)
		return b;
	while (fgets(line, sizeof line, f))
		if (sscanf(line, " %63s %63s", key, val) == 2 && key[0] != '#' &&
		    !strcmp(key, "firewall") && parse_backend(val, &b) < 0)
			mh_log(MH_LOG_WARN, "%s: firewall %.32s: expected iptables or nft; using iptables",
			       conf && *conf ? conf : CONF_FILE, val);
	fclose(f);
	return b;
}

const char *mh_fw_backend_name(enum mh_fw_backend b)
{
	return b == MH_FW_NFT ? "nft" : "iptables";
}

/* The backend the last event used, kept in RUNDIR/firewall (relative to
 * the open registry's directory; anything but a regular file of ours there
 * is ignored, and replaced by the next write). */
static int last_backend(enum mh_fw_backend *b)
{
	char buf[16], err[MH_ERR_MAX];

	if (mh_rundir_read(-1, "firewall", buf, sizeof buf, err, sizeof err) < 0) {
		if (err[0])
			mh_log(MH_LOG_WARN, "%s: %s; ignored", mh_rundir(), err);
		return -1;
	}
	buf[strcspn(buf, "\n")] = 0;
	return parse_backend(buf, b);
}

static void remember_backend(enum mh_fw_backend b)
{
	char err[MH_ERR_MAX];

	if (mh_rundir_write(-1, "firewall", "firewall.tmp", mh_fw_backend_name(b), err, sizeof err) < 0)
		mh_log(MH_LOG_WARN, "cannot record the firewall backend in %s: %s", mh_rundir(), err);
}

void mh_fw_forget_backend(void)
{
	char err[MH_ERR_MAX];
	int dfd = mh_rundir_open(0, err, sizeof err);

	if (dfd < 0)
		return;         /* no run directory: nothing remembered */
	unlinkat(dfd, "firewall", 0);
	close(dfd);
}

static int apply_with(enum mh_fw_backend b, struct mh_plan *want, struct mh_plan *before, int full,
		      char *err, size_t len)
{
	return b == MH_FW_NFT ? mh_fw_nft_apply(want, before, full, err, len)
			      : mh_fw_iptc_apply(want, before, full, err, len);
}

int mh_fw_apply(struct mh_plan *before, struct mh_plan *after, int full, char *err, size_t len)
{
	enum mh_fw_backend want = after->fw.backend, last;
	int changed = last_backend(&last) < 0 || last != want;

	if (before && before->fw.backend != want)
		before = NULL;
	if (apply_with(want, after, before, full || changed, err, len) < 0)
		return -1;
	if (changed) {
		/* a first event, or a changed choice: nothing of ours in the other one */
		enum mh_fw_backend other = want == MH_FW_NFT ? MH_FW_IPTABLES : MH_FW_NFT;
		struct mh_plan_input in = { .links = NULL, .n = 0, .backend = other };
		struct mh_plan none;
		char e2[MH_ERR_MAX];
		if (mh_plan_build(&in, &none) == 0) {
			if (apply_with(other, &none, NULL, 1, e2, sizeof e2) < 0)
				mh_log(MH_LOG_WARN, "emptying the %s backend: %s",
				       mh_fw_backend_name(other), e2);
			mh_plan_free(&none);
		}
		remember_backend(want);
	}
	return 0;
}

struct mh_fw_op *mh_fw_op_push(struct mh_fw_ops *ops, uint8_t action, uint8_t kind, int owner)
{
	struct mh_fw_op *o;

	if (ops->n == ops->cap) {
		unsigned cap = ops->cap ? 2 * ops->cap : 32;
		struct mh_fw_op *v = realloc(ops->v, cap * sizeof *v);
		if (!v)
			return NULL;
		ops->v = v;
		ops->cap = cap;
	}
	o = &ops->v[ops->n++];
	memset(o, 0, sizeof *o);
	o->action = action;
	o->kind = kind;
	o->owner = owner;
	return o;
}

void mh_fw_ops_free(struct mh_fw_ops *ops)
{
	free(ops->v);
	memset(ops, 0, sizeof *ops);
}
