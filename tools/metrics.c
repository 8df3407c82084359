/* multihomectl metrics: what status reports, in the Prometheus text
 * exposition format (version 0.0.4): metric names multihome_*, one label,
 * link; HELP and TYPE before each family's samples; no timestamps.  For
 * node_exporter's textfile collector:
 *
 *   multihomectl metrics > DIR/multihome.prom.$$ && mv DIR/multihome.prom.$$ DIR/multihome.prom
 *
 * It exits 0 whenever it printed the metrics, whatever the state (that is
 * multihome_status), so such a line only fails when the state cannot be read.
 * SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

/* A per-link family: VALUE gives registry link I's sample, or 0 for none. */
struct family {
	const char *name, *type, *help;
	int (*value)(const struct ctl_report *r, unsigned i, double *v);
};

static const struct mh_link_traffic *traffic(const struct ctl_report *r, unsigned i)
{
	return &r->st.traffic[i];
}

static int v_up(const struct ctl_report *r, unsigned i, double *v)
{
	*v = traffic(r, i)->counters != NULL;
	return 1;
}

static int v_status(const struct ctl_report *r, unsigned i, double *v)
{
	*v = ctl_link_severity(r, i);
	return 1;
}

static int v_weight(const struct ctl_report *r, unsigned i, double *v)
{
	*v = r->st.links[i].cfg.weight;
	return 1;
}

static int v_share_configured(const struct ctl_report *r, unsigned i, double *v)
{
	*v = traffic(r, i)->share_configured;
	return traffic(r, i)->counters != NULL;
}

static int v_flows(const struct ctl_report *r, unsigned i, double *v)
{
	*v = (double)traffic(r, i)->flows;
	return traffic(r, i)->flows >= 0;
}

static int v_balanced(const struct ctl_report *r, unsigned i, double *v)
{
	*v = (double)traffic(r, i)->balanced;
	return traffic(r, i)->balanced >= 0;
}

static int v_share_balanced(const struct ctl_report *r, unsigned i, double *v)
{
	*v = traffic(r, i)->share_balanced;
	return *v >= 0;
}

/* The interface's counters, when the link is up on it. */
static const struct mh_status_if *counters(const struct ctl_report *r, unsigned i)
{
	const struct mh_status_if *k = traffic(r, i)->counters;

	return k && k->has_stats ? k : NULL;
}

static int v_tx_bytes(const struct ctl_report *r, unsigned i, double *v)
{
	return counters(r, i) ? (*v = (double)counters(r, i)->tx_bytes, 1) : 0;
}

static int v_tx_packets(const struct ctl_report *r, unsigned i, double *v)
{
	return counters(r, i) ? (*v = (double)counters(r, i)->tx_packets, 1) : 0;
}

static int v_rx_bytes(const struct ctl_report *r, unsigned i, double *v)
{
	return counters(r, i) ? (*v = (double)counters(r, i)->rx_bytes, 1) : 0;
}

static int v_rx_packets(const struct ctl_report *r, unsigned i, double *v)
{
	return counters(r, i) ? (*v = (double)counters(r, i)->rx_packets, 1) : 0;
}

static int v_since(const struct ctl_report *r, unsigned i, double *v)
{
	const struct mh_link *l = &r->st.links[i];

	*v = (double)l->since;
	return l->up && l->since > 0;
}

/* Upstream tracking's figures, of a tracked link that is up. */
static const struct mh_health *health(const struct ctl_report *r, unsigned i)
{
	return traffic(r, i)->has_health ? &traffic(r, i)->health : NULL;
}

static int v_online(const struct ctl_report *r, unsigned i, double *v)
{
	const struct mh_link *l = &r->st.links[i];

	*v = l->online;
	return l->up && l->cfg.ntrack;
}

static int v_rtt(const struct ctl_report *r, unsigned i, double *v)
{
	return health(r, i) && health(r, i)->rtt_us > 0 ? (*v = (double)health(r, i)->rtt_us / 1e6, 1) : 0;
}

static int v_loss(const struct ctl_report *r, unsigned i, double *v)
{
	return health(r, i) ? (*v = health(r, i)->loss_pct / 100.0, 1) : 0;
}

static int v_probes(const struct ctl_report *r, unsigned i, double *v)
{
	return health(r, i) ? (*v = (double)health(r, i)->probes, 1) : 0;
}

static int v_replies(const struct ctl_report *r, unsigned i, double *v)
{
	return health(r, i) ? (*v = (double)health(r, i)->replies, 1) : 0;
}

static const struct family families[] = {
	{ "multihome_link_up", "gauge",
	  "1 while the link is registered up (online or offline) on an interface that exists, else 0.", v_up },
	{ "multihome_link_status", "gauge",
	  "The link's health as multihomectl status judges it: 0 ok, 1 a warning, "
	  "2 it should be up and is not.", v_status },
	{ "multihome_link_weight", "gauge",
	  "The link's configured weight in the balanced default route (0: only pinned traffic).",
	  v_weight },
	{ "multihome_link_share_configured_ratio", "gauge",
	  "The link's weight as a part of all up links' weights.", v_share_configured },
	{ "multihome_link_flows", "gauge",
	  "Conntrack entries carrying the link's connmark (the kernel filters by mark).", v_flows },
	{ "multihome_link_balanced_flows", "gauge",
	  "Of the link's flows, the outgoing ones that match no pin: placed by the balanced "
	  "default route.", v_balanced },
	{ "multihome_link_share_balanced_ratio", "gauge",
	  "The link's part of the up links' balanced flows.", v_share_balanced },
	{ "multihome_link_transmit_bytes_total", "counter",
	  "Bytes sent by the link's interface since the interface was created.", v_tx_bytes },
	{ "multihome_link_transmit_packets_total", "counter",
	  "Packets sent by the link's interface since the interface was created.", v_tx_packets },
	{ "multihome_link_receive_bytes_total", "counter",
	  "Bytes received by the link's interface since the interface was created.", v_rx_bytes },
	{ "multihome_link_receive_packets_total", "counter",
	  "Packets received by the link's interface since the interface was created.", v_rx_packets },
	{ "multihome_link_up_since_timestamp_seconds", "gauge",
	  "When the link came up, in seconds since the epoch.", v_since },
	{ "multihome_link_online", "gauge",
	  "Upstream tracking: 1 while the tracked link's targets answer, 0 while it is offline.",
	  v_online },
	{ "multihome_track_rtt_seconds", "gauge",
	  "Upstream tracking: the fastest answer of the last good round.", v_rtt },
	{ "multihome_track_loss_ratio", "gauge",
	  "Upstream tracking: probes unanswered over the recent rounds (up to 10).", v_loss },
	{ "multihome_track_probes_total", "counter",
	  "Upstream tracking: probes sent since the link came up.", v_probes },
	{ "multihome_track_replies_total", "counter",
	  "Upstream tracking: answers counted since the link came up.", v_replies },
};

/* A label value as the format wants it: backslash, quote and newline escaped. */
static void label_value(const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			printf("\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", stdout);
		else
			putchar(*s);
	}
}

static void head(const char *name, const char *type, const char *help)
{
	printf("# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Whole numbers as such (counters, counts), parts with six digits. */
static void value(double v)
{
	if (v == (double)(long long)v && v < 9e15 && v > -9e15)
		printf("%lld\n", (long long)v);
	else
		printf("%.6g\n", v);
}

static void print_family(const struct ctl_report *r, const struct family *f)
{
	unsigned i, n = 0;
	double v;

	for (i = 0; i < r->st.nlinks; i++) {
		if (!f->value(r, i, &v))
			continue;
		if (!n++)
			head(f->name, f->type, f->help);
		printf("%s{link=\"", f->name);
		label_value(r->st.links[i].cfg.name);
		printf("\"} ");
		value(v);
	}
}

static void print_metrics(const struct ctl_report *r)
{
	size_t i;

	head("multihome_status", "gauge",
	     "multihomectl status's exit status: 0 every link that should be up is up, "
	     "1 a warning, 2 a link that should be up is not.");
	printf("multihome_status %d\n", r->severity);
	head("multihome_warnings", "gauge", "Warnings multihomectl status reports (critical ones too).");
	printf("multihome_warnings %u\n", r->nwarnings);
	head("multihome_links", "gauge", "Links in the registry, up or down.");
	printf("multihome_links %u\n", r->st.nlinks);
	if (r->st.balanced_total >= 0) {
		head("multihome_balanced_flows", "gauge",
		     "The up links' balanced flows: outgoing, matching no pin, tracked by conntrack now.");
		printf("multihome_balanced_flows %lld\n", r->st.balanced_total);
	}
	for (i = 0; i < sizeof families / sizeof *families; i++)
		print_family(r, &families[i]);
}

int ctl_metrics(int argc, char **argv)
{
	static struct ctl_report r;
	char err[MH_ERR_MAX];

	if (argc != 1) {
		fprintf(stderr, "multihomectl metrics: unknown argument '%s'\n", argv[1]);
		ctl_usage(stderr);
		return CTL_ERROR;
	}
	if (ctl_report_read(&r, err, sizeof err) < 0) {
		fprintf(stderr, "multihomectl metrics: %s\n", err);
		return CTL_ERROR;
	}
	print_metrics(&r);
	ctl_report_free(&r);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("multihomectl metrics: writing");
		return CTL_ERROR;
	}
	return CTL_OK;
}
