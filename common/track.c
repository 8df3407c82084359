/* Upstream tracking: does the link's ISP carry traffic beyond itself?
 *
 * Every interval a round of ICMP echo requests goes to the link's targets,
 * from the link's own address, bound to its interface and carrying its mark
 * (SO_MARK), so that it leaves by the link whatever the balanced route and
 * the pins say.  A round succeeds when one target answers before the
 * round's deadline, half the interval: the link is then offline at most
 * (track_down + 1/2) intervals after its upstream died.  After track_down failed rounds in
 * a row the link is offline, after track_up good ones online again: each
 * change is an event of its own (mh_link_health).
 *
 * The host drives it from its own loop (pppd's timer, the OpenVPN helper's
 * poll): mh_track_tick() never blocks; it says when it wants to run next.
 * Each round also rewrites RUNDIR/health.NAME for multihomectl status.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/ip_icmp.h>
#include <sys/socket.h>
#ifndef ICMP_FILTER
#define ICMP_FILTER 1           /* <linux/icmp.h>: raw ICMP sockets hear only these types */
#endif

#include "internal.h"

#define HISTORY 16              /* rounds kept for the loss figure */

struct mh_tracker {
	char     name[MH_NAME_MAX + 1];
	char     ifname[IF_NAMESIZE];
	uint32_t local;
	unsigned ntargets;
	uint32_t targets[MH_MAX_TARGETS];
	unsigned interval_us, deadline_us, down, up;
	int      fd;
	int      dirfd;                 /* the run directory, for health.NAME */
	int      write_failed;          /* said once */
	uint16_t ident;
	uint16_t round;
	long long next_send, deadline;  /* monotonic µs */
	int      in_flight;
	struct timespec sent_at;        /* realtime, for the kernel's receive stamp */
	unsigned char answered[MH_MAX_TARGETS];
	long long rtt_us;               /* the last good round's (its fastest answer) */
	long long round_rtt;            /* the round in flight's fastest answer, or -1 */
	unsigned fails, goods;          /* in a row */
	int      online;                /* as the registry has it */
	int      want_online;           /* as the rounds say (an event may have failed) */
	long long since;                /* realtime seconds of the last change */
	unsigned hist_sent[HISTORY], hist_got[HISTORY];
	unsigned rounds;
	unsigned long long probes, replies;
};

static long long mono_us(void)
{
	return mh_now_usec();
}

static uint16_t checksum(const void *data, size_t len)
{
	const uint16_t *w = data;
	uint32_t sum = 0;

	for (; len > 1; len -= 2)
		sum += *w++;
	if (len)
		sum += *(const uint8_t *)w;
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)~sum;
}

/* A raw ICMP socket that leaves by the link: bound to its interface and
 * address, with its mark; it only hears echo replies. */
static int probe_socket(const struct mh_link *l, char *err, size_t len)
{
	struct sockaddr_in me = { .sin_family = AF_INET, .sin_addr.s_addr = l->local };
	uint32_t filter = ~(1u << ICMP_ECHOREPLY);
	int fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_ICMP);
	int one = 1;
	const char *what = "socket";

	if (fd < 0)
		goto fail;
	if ((what = "SO_MARK", setsockopt(fd, SOL_SOCKET, SO_MARK, &l->cfg.mark, sizeof l->cfg.mark)) < 0 ||
	    (what = "SO_BINDTODEVICE", setsockopt(fd, SOL_SOCKET, SO_BINDTODEVICE, l->ifname,
						  (socklen_t)strlen(l->ifname) + 1)) < 0 ||
	    (what = "bind", bind(fd, (struct sockaddr *)&me, sizeof me)) < 0 ||
	    (what = "ICMP_FILTER", setsockopt(fd, SOL_RAW, ICMP_FILTER, &filter, sizeof filter)) < 0 ||
	    (what = "SO_TIMESTAMPNS", setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one)) < 0)
		goto fail;
	return fd;
fail:
	snprintf(err, len, "%s: upstream tracking: %s: %s", l->cfg.name, what, strerror(errno));
	if (fd >= 0)
		close(fd);
	return -1;
}

struct mh_tracker *mh_track_start(const struct mh_link *l, char *err, size_t len)
{
	struct mh_tracker *t;

	err[0] = 0;
	if (!l->cfg.ntrack)
		return NULL;
	t = calloc(1, sizeof *t);
	if (!t) {
		snprintf(err, len, "%s: upstream tracking: out of memory", l->cfg.name);
		return NULL;
	}
	t->fd = probe_socket(l, err, len);
	if (t->fd < 0) {
		free(t);
		return NULL;
	}
	t->dirfd = mh_rundir_open(1, err, len);
	if (t->dirfd < 0) {
		close(t->fd);
		free(t);
		return NULL;
	}
	snprintf(t->name, sizeof t->name, "%s", l->cfg.name);
	snprintf(t->ifname, sizeof t->ifname, "%s", l->ifname);
	t->local = l->local;
	t->ntargets = l->cfg.ntrack;
	memcpy(t->targets, l->cfg.track, sizeof t->targets);
	t->interval_us = l->cfg.track_interval_ms * 1000u;
	/* a target answers within half the interval */
	t->deadline_us = t->interval_us / 2;
	t->down = l->cfg.track_down;
	t->up = l->cfg.track_up;
	t->ident = (uint16_t)((unsigned)getpid() ^ (l->slot << 8));
	t->online = t->want_online = l->online;
	t->since = time(NULL);
	t->next_send = mono_us();
	mh_log(MH_LOG_INFO, "%s: upstream tracking of %u target(s) every %u ms from %s on %s "
	       "(offline after %u lost rounds, online after %u good ones)", t->name, t->ntargets,
	       l->cfg.track_interval_ms, inet_ntoa(*(const struct in_addr *)&l->local), t->ifname,
	       t->down, t->up);
	return t;
}

static void send_round(struct mh_tracker *t)
{
	unsigned i;

	t->round++;
	t->round_rtt = -1;
	memset(t->answered, 0, sizeof t->answered);
	clock_gettime(CLOCK_REALTIME, &t->sent_at);
	for (i = 0; i < t->ntargets; i++) {
		struct { struct icmphdr h; uint32_t pad[2]; } pkt;
		struct sockaddr_in to = { .sin_family = AF_INET, .sin_addr.s_addr = t->targets[i] };
		memset(&pkt, 0, sizeof pkt);
		pkt.h.type = ICMP_ECHO;
		pkt.h.un.echo.id = htons(t->ident);
		pkt.h.un.echo.sequence = htons((uint16_t)((t->round << 3) | i));
		pkt.h.checksum = checksum(&pkt, sizeof pkt);
		/* a failed send (no route, no buffer) is a lost probe */
		sendto(t->fd, &pkt, sizeof pkt, MSG_DONTWAIT, (struct sockaddr *)&to, sizeof to);
		t->probes++;
	}
	t->hist_sent[t->rounds % HISTORY] = t->ntargets;
	t->hist_got[t->rounds % HISTORY] = 0;
}

/* The kernel's receive time minus the round's send time, in µs. */
static long long rtt_of(const struct mh_tracker *t, struct msghdr *m)
{
	struct cmsghdr *c;

	for (c = CMSG_FIRSTHDR(m); c; c = CMSG_NXTHDR(m, c))
		if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS) {
			struct timespec ts;
			memcpy(&ts, CMSG_DATA(c), sizeof ts);
			return (ts.tv_sec - t->sent_at.tv_sec) * 1000000LL +
			       (ts.tv_nsec - t->sent_at.tv_nsec) / 1000;
		}
	return -1;
}

/* Read every queued echo reply; count those of the round in flight. */
static void drain(struct mh_tracker *t)
{
	for (;;) {
		unsigned char buf[256], ctl[256];
		struct sockaddr_in from;
		struct iovec iov = { buf, sizeof buf };
		struct msghdr m = { .msg_name = &from, .msg_namelen = sizeof from, .msg_iov = &iov,
				    .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl };
		const struct iphdr *ip = (const void *)buf;
		const struct icmphdr *h;
		ssize_t n = recvmsg(t->fd, &m, MSG_DONTWAIT);
		unsigned hl, idx;
		uint16_t seq;

		if (n < 0)
			return;
		if ((size_t)n < sizeof *ip || (hl = ip->ihl * 4u) < sizeof *ip ||
		    (size_t)n < hl + sizeof *h)
			continue;
		h = (const void *)(buf + hl);
		seq = ntohs(h->un.echo.sequence);
		idx = seq & 7u;
		if (h->type != ICMP_ECHOREPLY || ntohs(h->un.echo.id) != t->ident || !t->in_flight ||
		    (uint16_t)(seq >> 3) != (uint16_t)(t->round & 0x1fff) || idx >= t->ntargets ||
		    from.sin_addr.s_addr != t->targets[idx] || t->answered[idx])
			continue;
		t->answered[idx] = 1;
		t->replies++;
		t->hist_got[t->rounds % HISTORY]++;
		{
			long long rtt = rtt_of(t, &m);
			if (rtt >= 0 && (t->round_rtt < 0 || rtt < t->round_rtt))
				t->round_rtt = rtt;
		}
	}
}

static void targets_text(const struct mh_tracker *t, char *buf, size_t len)
{
	unsigned i;
	size_t o = 0;

	buf[0] = 0;
	for (i = 0; i < t->ntargets && o < len; i++) {
		char a[INET_ADDRSTRLEN];
		inet_ntop(AF_INET, &t->targets[i], a, sizeof a);
		o += (size_t)snprintf(buf + o, len - o, "%s%s", i ? ", " : "", a);
	}
}

static unsigned loss_pct(const struct mh_tracker *t)
{
	unsigned i, sent = 0, got = 0, n = t->rounds < HISTORY ? t->rounds : HISTORY;

	for (i = 0; i < n; i++) {
		sent += t->hist_sent[i];
		got += t->hist_got[i];
	}
	return sent ? 100 * (sent - got) / sent : 0;
}

/* RUNDIR/health.NAME: what status shows (written whole, then renamed),
 * with our pid: a SIGKILLed host's file is told apart by it. */
static void write_health(struct mh_tracker *t)
{
	char file[MH_NAME_MAX + 16], tmp[MH_NAME_MAX + 16], text[512], tg[200], err[MH_ERR_MAX];

	targets_text(t, tg, sizeof tg);
	snprintf(text, sizeof text, "pid %d\nstate %s\nsince %lld\nrtt_us %lld\nloss_pct %u\n"
		 "rounds %u\nprobes %llu\nreplies %llu\ninterval_ms %u\ntargets %s\n", (int)getpid(),
		 t->online ? "online" : "offline", t->since, t->rtt_us, loss_pct(t), t->rounds,
		 t->probes, t->replies, t->interval_us / 1000, tg);
	snprintf(file, sizeof file, "health.%s", t->name);
	snprintf(tmp, sizeof tmp, ".health.%s", t->name);
	if (mh_rundir_write(t->dirfd, file, tmp, text, err, sizeof err) < 0 && !t->write_failed) {
		mh_log(MH_LOG_WARN, "%s: upstream tracking: %s", t->name, err);
		t->write_failed = 1;
	}
}

/* The round in flight is over: count it, maybe change the link's state. */
static void end_round(struct mh_tracker *t)
{
	char why[300], tg[200], err[MH_ERR_MAX];
	unsigned i, got = 0;

	drain(t);
	t->in_flight = 0;
	for (i = 0; i < t->ntargets; i++)
		got += t->answered[i];
	t->rounds++;
	if (got) {
		if (t->round_rtt >= 0)
			t->rtt_us = t->round_rtt;
		t->goods++;
		t->fails = 0;
	} else {
		t->fails++;
		t->goods = 0;
	}
	if (t->want_online && t->fails >= t->down)
		t->want_online = 0;
	else if (!t->want_online && t->goods >= t->up)
		t->want_online = 1;
	if (t->want_online != t->online) {
		targets_text(t, tg, sizeof tg);
		if (t->want_online)
			snprintf(why, sizeof why, "%u rounds answered (%s; rtt %lld.%03lld ms)", t->goods, tg,
				 t->rtt_us / 1000, t->rtt_us % 1000);
		else
			snprintf(why, sizeof why, "%u rounds lost (%s)", t->fails, tg);
		if (mh_link_health(t->name, t->ifname, t->want_online, why, err, sizeof err) == 0) {
			t->online = t->want_online;
			t->since = time(NULL);
		} else {
			mh_log(MH_LOG_ERR, "%s: going %s: %s (tried again next round)", t->name,
			       t->want_online ? "online" : "offline", err);
		}
	}
	write_health(t);
}

void mh_track_tick(struct mh_tracker *t, unsigned *next_ms)
{
	long long now = mono_us(), next;

	if (t->in_flight && now >= t->deadline)
		end_round(t);
	else
		drain(t);
	if (!t->in_flight && now >= t->next_send) {
		send_round(t);
		t->in_flight = 1;
		t->deadline = now + t->deadline_us;
		/* rounds keep their rhythm; a late tick does not pile them up */
		t->next_send += t->interval_us;
		if (t->next_send <= now)
			t->next_send = now + t->interval_us;
	}
	next = t->in_flight ? t->deadline : t->next_send;
	*next_ms = next > now ? (unsigned)((next - now + 999) / 1000) : 1;
}

void mh_track_stop(struct mh_tracker *t)
{
	char file[MH_NAME_MAX + 16];

	if (!t)
		return;
	close(t->fd);
	snprintf(file, sizeof file, "health.%s", t->name);
	unlinkat(t->dirfd, file, 0);
	close(t->dirfd);
	free(t);
}

int mh_health_read(int dfd, const char *name, struct mh_health *h)
{
	char file[MH_NAME_MAX + 16], text[600], err[MH_ERR_MAX], state[16] = "";
	int got = 0;

	memset(h, 0, sizeof *h);
	snprintf(file, sizeof file, "health.%s", name);
	if (mh_rundir_read(dfd, file, text, sizeof text, err, sizeof err) < 0)
		return -1;
	got += sscanf(text, "pid %d", &h->pid) == 1;
	{
		const char *at;
#define FIELD(key, fmt, dst) \
		if ((at = strstr(text, "\n" key " ")) && sscanf(at + sizeof key + 1, fmt, dst) == 1) \
			got++;
		FIELD("state", "%15s", state)
		FIELD("since", "%lld", &h->since)
		FIELD("rtt_us", "%lld", &h->rtt_us)
		FIELD("loss_pct", "%u", &h->loss_pct)
		FIELD("rounds", "%u", &h->rounds)
		FIELD("probes", "%llu", &h->probes)
		FIELD("replies", "%llu", &h->replies)
		FIELD("interval_ms", "%u", &h->interval_ms)
#undef FIELD
	}
	if (got != 9 || (strcmp(state, "online") && strcmp(state, "offline")) || h->loss_pct > 100)
		return -1;
	h->online = !strcmp(state, "online");
	return 0;
}
