/* SPDX-License-Identifier: MIT */
/* rill-soak: the long integrity soak (tests/test_reliability_integrity.c
 * runs the same code for seconds in CI).
 *
 *   rill-soak [-t SECS] [-c CONCURRENCY] [-m MAX_MSGS] [-s MAX_LEN]
 *             [-b BIG_LEN] [-d DEPTH] [-p PAUSE_MS] [--seed N] [--threads N]
 *
 * Runs for SECS seconds (default 300), starting new connections as old
 * ones end, CONCURRENCY (default 200) open at a time, and lets the open
 * ones finish; see bench/soak.h for what each connection does. A progress
 * line every 10 s on stderr, the figures at the end on stdout; the exit
 * status is 1 if any byte arrived wrong or any connection ended other
 * than its mode says. Small messages make millions a minute:
 *
 *   rill-soak -t 600 -s 256 -b 0 -m 2000 -d 16
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/soak.h"

static struct soak_config cfg = {
	.concurrency = 200, .max_msgs = 400, .max_len = 8192,
	.big_len = 256 * 1024, .max_depth = 4, .pause_ms = 5,
	.pct_half = 20, .pct_client_reset = 15, .pct_server_reset = 15,
	.seed = 1, .progress = true,
};
static struct soak_stats stats;

static int usage(void)
{
	fprintf(stderr, "usage: rill-soak [-t SECS] [-c CONCURRENCY] [-m MAX_MSGS] "
		"[-s MAX_LEN] [-b BIG_LEN] [-d DEPTH] [-p PAUSE_MS] [--seed N] "
		"[--threads N]\n");
	return 2;
}

static int parse(int argc, char **argv)
{
	double secs = 300;

	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		unsigned long long v;

		if (i + 1 >= argc)
			return -1;
		v = strtoull(argv[++i], NULL, 0);
		if (!strcmp(o, "-t"))
			secs = atof(argv[i]);
		else if (!strcmp(o, "-c"))
			cfg.concurrency = (unsigned)v;
		else if (!strcmp(o, "-m"))
			cfg.max_msgs = (unsigned)v;
		else if (!strcmp(o, "-s"))
			cfg.max_len = v;
		else if (!strcmp(o, "-b"))
			cfg.big_len = v;
		else if (!strcmp(o, "-d"))
			cfg.max_depth = (unsigned)v;
		else if (!strcmp(o, "-p"))
			cfg.pause_ms = (unsigned)v;
		else if (!strcmp(o, "--seed"))
			cfg.seed = v;
		else if (!strcmp(o, "--threads"))
			cfg.server_threads = (int)v;
		else
			return -1;
	}
	if (secs <= 0 || !cfg.concurrency || !cfg.max_msgs || !cfg.max_depth)
		return -1;
	cfg.duration = (rill_time)(secs * 1e9);
	return 0;
}

static int main_task(void *arg)
{
	rill_time t0 = rill_now();
	int err = soak_run(&cfg, &stats);
	double secs = (double)(rill_now() - t0) / 1e9;

	(void)arg;
	if (err < 0) {
		fprintf(stderr, "rill-soak: %s %s\n", rill_strerror(err), rill_error_detail());
		return 1;
	}
	printf("rill-soak: %.1f s, %" PRIuFAST64 " connections (%" PRIuFAST64 " clean, %"
	       PRIuFAST64 " half-closed, %" PRIuFAST64 " reset by the client, %" PRIuFAST64
	       " reset by the server), %" PRIuFAST64 " messages / %" PRIuFAST64
	       " bytes echoed intact (%.0f msg/s), %" PRIuFAST64 " failures\n", secs,
	       atomic_load(&stats.conns), atomic_load(&stats.clean), atomic_load(&stats.half),
	       atomic_load(&stats.client_resets), atomic_load(&stats.server_resets),
	       atomic_load(&stats.msgs), atomic_load(&stats.bytes),
	       (double)atomic_load(&stats.msgs) / secs, atomic_load(&stats.failures));
	if (atomic_load(&stats.failures)) {
		printf("rill-soak: first failure: %s\n", stats.first);
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int result = 1, err;

	if (parse(argc, argv) < 0)
		return usage();
	err = rill_run(main_task, NULL, &result);
	if (err < 0) {
		fprintf(stderr, "rill-soak: %s\n%s\n", rill_strerror(err), rill_error_detail());
		return 1;
	}
	return result;
}
