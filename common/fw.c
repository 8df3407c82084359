/* Which firewall backend carries multihome's rules.
 *
 * iptables (legacy x_tables through libiptc) is the default, as the rules
 * then show in `iptables-legacy -S`; nftables (table `ip multihome`) is
 * chosen by `firewall nft` in /etc/multihome.conf or by the environment
 * variable MULTIHOME_FIREWALL=nft (which wins).  When the choice changes,
 * the next event empties the other backend of anything of ours.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

enum mh_fw_backend mh_fw_backend(void)
{
	enum mh_fw_backend b = MH_FW_IPTABLES;
	const char *env = getenv("MULTIHOME_FIREWALL");
	const char *conf = getenv("MULTIHOME_CONF");
	char line[256], key[64], val[64];
	FILE *f;

	if (env && *env) {
		if (parse_backend(env, &b) < 0)
			mh_log(MH_LOG_WARN, "MULTIHOME_FIREWALL=%.32s: expected iptables or nft; using iptables", env);
		return b;
	}
	f = fopen(conf && *conf ? conf : CONF_FILE, "re");
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

/* The backend the last event used, kept in RUNDIR/firewall. */
static int last_backend(enum mh_fw_backend *b)
{
	char path[512], buf[16] = "";
	ssize_t r;
	int fd;

	snprintf(path, sizeof path, "%s/firewall", mh_rundir());
	fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return -1;
	r = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (r <= 0)
		return -1;
	buf[r] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return parse_backend(buf, b);
}

static void remember_backend(enum mh_fw_backend b)
{
	char path[512], tmp[520];
	const char *name = mh_fw_backend_name(b);
	int fd;

	snprintf(path, sizeof path, "%s/firewall", mh_rundir());
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	unlink(tmp);
	fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	if (write(fd, name, strlen(name)) != (ssize_t)strlen(name) || rename(tmp, path) < 0)
		unlink(tmp);
	close(fd);
}

static int apply_with(enum mh_fw_backend b, const struct mh_link *const *links, unsigned n,
		      char *err, size_t len)
{
	return b == MH_FW_NFT ? mh_fw_nft_apply(links, n, err, len)
			      : mh_fw_iptc_apply(links, n, err, len);
}

int mh_fw_apply(const struct mh_link *const *links, unsigned n, char *err, size_t len)
{
	enum mh_fw_backend want = mh_fw_backend(), last;
	int known = last_backend(&last) == 0;

	if (apply_with(want, links, n, err, len) < 0)
		return -1;
	if (!known || last != want) {
		char e2[MH_ERR_MAX];
		enum mh_fw_backend other = want == MH_FW_NFT ? MH_FW_IPTABLES : MH_FW_NFT;
		/* a first event, or a changed choice: nothing of ours in the other one */
		if (apply_with(other, links, 0, e2, sizeof e2) < 0)
			mh_log(MH_LOG_WARN, "emptying the %s backend: %s", mh_fw_backend_name(other), e2);
		remember_backend(want);
	}
	return 0;
}
