/* nftables backend: not written yet.  SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>

#include "internal.h"

int mh_fw_nft_apply(const struct mh_link *const *links, unsigned n, char *err, size_t len)
{
	if (n == 0)
		return 0;       /* nothing of ours can be there */
	snprintf(err, len, "the nftables backend is not built in yet");
	return -1;
}
