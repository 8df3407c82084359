/* mh-ct: list this network namespace's IPv4 conntrack entries, one a line,
 * for the tests that prove which entries an event touched:
 *
 *   mh-ct list
 *       ct id=ID start=NS proto=P orig=A:P>B:P reply=C:P>D:P mark=0xM status=0xS
 *
 * START is the entry's creation time in ns (net.netfilter.nf_conntrack_timestamp
 * must be 1, else 0): an entry deleted and created again has a new one even
 * when the kernel hands out the same id.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

struct tuple {
	uint32_t src, dst;
	uint16_t sport, dport;
	uint8_t proto;
};

static void parse_tuple(const struct nlattr *nest, struct tuple *t)
{
	const struct nlattr *a, *b;

	mnl_attr_for_each_nested(a, nest) {
		mnl_attr_for_each_nested(b, a) {
			switch (mnl_attr_get_type(a) << 8 | mnl_attr_get_type(b)) {
			case CTA_TUPLE_IP << 8 | CTA_IP_V4_SRC: t->src = mnl_attr_get_u32(b); break;
			case CTA_TUPLE_IP << 8 | CTA_IP_V4_DST: t->dst = mnl_attr_get_u32(b); break;
			case CTA_TUPLE_PROTO << 8 | CTA_PROTO_NUM: t->proto = mnl_attr_get_u8(b); break;
			case CTA_TUPLE_PROTO << 8 | CTA_PROTO_SRC_PORT: t->sport = ntohs(mnl_attr_get_u16(b)); break;
			case CTA_TUPLE_PROTO << 8 | CTA_PROTO_DST_PORT: t->dport = ntohs(mnl_attr_get_u16(b)); break;
			}
		}
	}
}

static const char *ends(const struct tuple *t, char *buf, size_t len)
{
	char a[INET_ADDRSTRLEN], b[INET_ADDRSTRLEN];

	inet_ntop(AF_INET, &t->src, a, sizeof a);
	inet_ntop(AF_INET, &t->dst, b, sizeof b);
	snprintf(buf, len, "%s:%u>%s:%u", a, t->sport, b, t->dport);
	return buf;
}

static int entry(const struct nlmsghdr *h, void *data)
{
	const struct nlattr *a, *b;
	struct tuple o = { 0 }, r = { 0 };
	uint32_t id = 0, mark = 0, status = 0;
	unsigned long long start = 0;
	char os[64], rs[64];

	(void)data;
	mnl_attr_for_each(a, h, sizeof(struct nfgenmsg)) {
		switch (mnl_attr_get_type(a)) {
		case CTA_TUPLE_ORIG: parse_tuple(a, &o); break;
		case CTA_TUPLE_REPLY: parse_tuple(a, &r); break;
		case CTA_ID: id = ntohl(mnl_attr_get_u32(a)); break;
		case CTA_MARK: mark = ntohl(mnl_attr_get_u32(a)); break;
		case CTA_STATUS: status = ntohl(mnl_attr_get_u32(a)); break;
		case CTA_TIMESTAMP:
			mnl_attr_for_each_nested(b, a)
				if (mnl_attr_get_type(b) == CTA_TIMESTAMP_START)
					start = be64toh(mnl_attr_get_u64(b));
			break;
		}
	}
	printf("ct id=%u start=%llu proto=%u orig=%s reply=%s mark=0x%x status=0x%x\n", id, start,
	       o.proto, ends(&o, os, sizeof os), ends(&r, rs, sizeof rs), mark, status);
	return MNL_CB_OK;
}

int main(int argc, char **argv)
{
	static char buf[65536];
	struct mnl_socket *nl;
	struct nlmsghdr *h;
	struct nfgenmsg *g;
	uint32_t seq = (uint32_t)time(NULL), portid;
	ssize_t n;
	int rc = MNL_CB_OK;

	if (argc != 2 || strcmp(argv[1], "list")) {
		fprintf(stderr, "usage: mh-ct list\n");
		return 2;
	}
	nl = mnl_socket_open(NETLINK_NETFILTER);
	if (!nl || mnl_socket_bind(nl, 0, MNL_SOCKET_AUTOPID) < 0) {
		perror("mh-ct: netlink");
		return 1;
	}
	portid = mnl_socket_get_portid(nl);
	h = mnl_nlmsg_put_header(buf);
	h->nlmsg_type = (NFNL_SUBSYS_CTNETLINK << 8) | IPCTNL_MSG_CT_GET;
	h->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
	h->nlmsg_seq = seq;
	g = mnl_nlmsg_put_extra_header(h, sizeof *g);
	g->nfgen_family = AF_INET;
	g->version = NFNETLINK_V0;
	if (mnl_socket_sendto(nl, h, h->nlmsg_len) < 0) {
		perror("mh-ct: send");
		return 1;
	}
	while (rc > MNL_CB_STOP && (n = mnl_socket_recvfrom(nl, buf, sizeof buf)) > 0)
		rc = mnl_cb_run(buf, (size_t)n, seq, portid, entry, NULL);
	if (rc < 0) {
		perror("mh-ct: dump");
		return 1;
	}
	mnl_socket_close(nl);
	return 0;
}
