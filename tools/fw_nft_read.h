/* multihomectl: table ip multihome as the nftables backend (common/fw_nft.c)
 * leaves it, read over nfnetlink (libmnl, libnftnl), and what of it an up
 * link or the table itself lacks.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#ifndef MULTIHOME_FW_NFT_READ_H
#define MULTIHOME_FW_NFT_READ_H

#include <stddef.h>
#include <stdint.h>

#include "mh.h"

struct nftr_elem {
	char key[16];           /* ifname, or the mark (u32, host order) */
	uint32_t verdict;
	char chain[128];
	uint32_t addr;          /* srcaddr: the address (network order) */
};

struct nftr_chain {
	char name[128];
	int base;               /* has a hook */
	uint32_t hooknum;
	unsigned nrules;        /* rules whose comment starts with "multihome" */
};

struct nftr_rule {
	char chain[128];
	char comment[64];
	char jump[128];         /* target of a jump/goto, "" if none */
	char lookup[32];        /* set of a lookup, "" if none */
};

struct nftr {
	int table;              /* table ip multihome exists */
	struct nftr_chain *chains;
	unsigned nchains;
	struct nftr_rule *rules;
	unsigned nrules;
	int has_set[4];         /* ingress, restore, masq, srcaddr */
	struct nftr_elem *elems[4];
	unsigned nelems[4];
	char err[MH_ERR_MAX];
};

/* Read the table: 0, or -1 with T->err.  No nf_tables in the kernel reads
 * as no table. */
int nftr_read(struct nftr *t);
void nftr_free(struct nftr *t);

/* What the table as a whole lacks (base chains and their rules, maps, the
 * mask rules of chain egress for OURS, the union of the up links' masks),
 * appended to OUT as ", "-separated items.  Returns the number of items. */
unsigned nftr_table_missing(const struct nftr *t, uint32_t ours, char *out, size_t len);
/* What the table lacks for up link L (its ingress element and chain, its
 * restore element and chain, its NAT element, its pin chain and the jump to
 * it), appended to OUT the same way.  Returns the number of items. */
unsigned nftr_link_missing(const struct nftr *t, const struct mh_link *l, char *out, size_t len);

/* Delete table ip multihome (one batch): 0, or -1 with ERR. */
int nftr_delete_table(char *err, size_t len);

#endif
