/* multihomectl reapply | flush: make the kernel match the registry again,
 * or withdraw everything multihome installed.  reapply says what it changes
 * (what `status` reports, the same diff) and checks afterwards that nothing
 * is left to change.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "status.h"
#include "ctl.h"

/* Forget which backend the last event used: the core then empties the other
 * backend of anything of ours, as on a first event. */
static const char *verb(char action)
{
	return action == '+' ? "adding" : action == '~' ? "changing" : "removing";
}

/* The operations ahead, printed; -1 when the state cannot be read. */
static int say_ops(const char *cmd, int *holds)
{
	static struct mh_status st;
	char err[MH_ERR_MAX];
	unsigned i;

	if (mh_status(&st, err, sizeof err) < 0) {
		fprintf(stderr, "multihomectl %s: %s\n", cmd, err);
		return -1;
	}
	for (i = 0; i < st.nops; i++)
		printf("multihomectl %s: %s %s%s%s (%s)\n", cmd, verb(st.ops[i].action),
		       st.ops[i].what, st.ops[i].owner >= 0 ? " of link " : "",
		       st.ops[i].owner >= 0 ? st.links[st.ops[i].owner].cfg.name : "", st.ops[i].area);
	*holds = st.other_backend_holds;
	i = st.nops;
	mh_status_free(&st);
	return (int)i;
}

int ctl_reapply(int argc, char **argv)
{
	char err[MH_ERR_MAX];
	int holds = 0, left;

	(void)argv;
	if (argc != 1) {
		ctl_usage(stderr);
		return CTL_ERROR;
	}
	if (say_ops("reapply", &holds) < 0)
		return CTL_ERROR;
	/* the other backend still holds something of ours: empty it too */
	if (holds)
		mh_fw_forget_backend();
	if (mh_reconcile(err, sizeof err) < 0) {
		fprintf(stderr, "multihomectl reapply: %s\n", err);
		return CTL_ERROR;
	}
	printf("multihomectl reapply: kernel matches the registry (%u netlink messages, "
	       "%u firewall commits, %lld us)\n", mh_last_stats()->nl_msgs,
	       mh_last_stats()->fw_commits, mh_last_stats()->usec);
	left = say_ops("reapply: still", &holds);
	if (left != 0) {
		fprintf(stderr, "multihomectl reapply: the kernel still differs from the registry "
			"(%d operations): another program changes it back?\n", left);
		return CTL_ERROR;
	}
	return CTL_OK;
}

int ctl_flush(int argc, char **argv)
{
	char err[MH_ERR_MAX];

	(void)argv;
	if (argc != 1) {
		ctl_usage(stderr);
		return CTL_ERROR;
	}
	mh_fw_forget_backend();       /* flush withdraws from both backends */
	if (mh_flush(err, sizeof err) < 0) {
		fprintf(stderr, "multihomectl flush: %s\n", err);
		return CTL_ERROR;
	}
	printf("multihomectl flush: everything of multihome's withdrawn, registry emptied "
	       "(%u netlink messages, %u firewall commits, %lld us)\n", mh_last_stats()->nl_msgs,
	       mh_last_stats()->fw_commits, mh_last_stats()->usec);
	return CTL_OK;
}

int ctl_forget(int argc, char **argv)
{
	char err[MH_ERR_MAX];

	if (argc != 2) {
		ctl_usage(stderr);
		return CTL_ERROR;
	}
	if (mh_link_forget(argv[1], err, sizeof err) < 0) {
		fprintf(stderr, "multihomectl forget: %s\n", err);
		return CTL_ERROR;
	}
	printf("multihomectl forget: link %s forgotten (its allocation; with pin-fallback no, "
	       "the refusal of its pins)\n", argv[1]);
	return CTL_OK;
}
