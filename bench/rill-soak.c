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
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench/bench.h"
#include "bench/soak.h"

static struct soak_config cfg = {
	.concurrency = 200, .max_msgs = 400, .max_len = 8192,
	.big_len = 256 * 1024, .max_depth = 4, .pause_ms = 5,
	.pct_half = 20, .pct_client_reset = 15, .pct_server_reset = 15,
	.seed = 1, .progress = true,
};
static struct soak_stats stats;

#define USAGE "rill-soak [-t SECS] [-c CONCURRENCY] [-m MAX_MSGS] [-s MAX_LEN]\n" \
	"                 [-b BIG_LEN] [-d DEPTH] [-p PAUSE_MS] [--seed N] [--threads N]"
#define OPTIONS \
	"  -t SECS           run for SECS seconds (default 300)\n" \
	"  -c CONCURRENCY    connections open at a time (default 200)\n" \
	"  -m MAX_MSGS       messages per connection: 1..MAX_MSGS (default 400)\n" \
	"  -s MAX_LEN        message body length: 0..MAX_LEN (default 8192)\n" \
	"  -b BIG_LEN        one message in 32 up to BIG_LEN (default 262144)\n" \
	"  -d DEPTH          messages in flight before reading an echo (default 4)\n" \
	"  -p PAUSE_MS       one step in 8 sleeps 0..PAUSE_MS ms (default 5)\n" \
	"  --seed N          random seed (default 1)\n" \
	"  --threads N       server loops: N threads, 0 this loop (default),\n" \
	"                    -1 one per CPU\n" \
	"  -h, --help        print this and exit\n"

static double seconds(const char *arg)
{
	char *end;
	double v = strtod(arg, &end);

	if (end == arg || *end || !isfinite(v) || v <= 0) {
		fprintf(stderr, "%s: -t needs a number of seconds above 0, "
			"not '%s'\n", program_invocation_name, arg);
		bench_usage_error(USAGE);
	}
	return v;
}

static void parse(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "seed", required_argument, NULL, 'S' },
		{ "threads", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	double secs = 300;
	int c;

	while ((c = getopt_long(argc, argv, "+t:c:m:s:b:d:p:h", longopts, NULL)) != -1) {
		switch (c) {
		case 't':
			secs = seconds(optarg);
			break;
		case 'c':
			cfg.concurrency = (unsigned)bench_int(USAGE, "-c", optarg, 1, INT_MAX);
			break;
		case 'm':
			cfg.max_msgs = (unsigned)bench_int(USAGE, "-m", optarg, 1, INT_MAX);
			break;
		case 's':
			cfg.max_len = (size_t)bench_int(USAGE, "-s", optarg, 0, INT_MAX);
			break;
		case 'b':
			cfg.big_len = (size_t)bench_int(USAGE, "-b", optarg, 0, INT_MAX);
			break;
		case 'd':
			cfg.max_depth = (unsigned)bench_int(USAGE, "-d", optarg, 1, INT_MAX);
			break;
		case 'p':
			cfg.pause_ms = (unsigned)bench_int(USAGE, "-p", optarg, 0, INT_MAX);
			break;
		case 'S':
			cfg.seed = (uint64_t)bench_int(USAGE, "--seed", optarg, 0, LLONG_MAX);
			break;
		case 'T':
			cfg.server_threads = (int)bench_int(USAGE, "--threads", optarg,
							    RILL_THREADS_PER_CPU, 1024);
			break;
		case 'h':
			bench_help(USAGE, OPTIONS);
		default:
			bench_usage_error(USAGE);
		}
	}
	bench_no_operands(USAGE, argc, argv, optind);
	cfg.duration = (rill_time)(secs * 1e9);
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

	parse(argc, argv);
	err = rill_run(main_task, NULL, &result);
	if (err < 0) {
		fprintf(stderr, "rill-soak: %s\n%s\n", rill_strerror(err), rill_error_detail());
		return 1;
	}
	return result;
}
