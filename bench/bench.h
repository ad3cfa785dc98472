/* SPDX-License-Identifier: MIT */
/* bench/bench.h: small pieces the benchmark programs share (the peer
 * servers in bench/peers/ too: nothing here needs rill). */
#ifndef RILL_BENCH_H
#define RILL_BENCH_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

/* Thousands of connections need thousands of fds: take the hard limit. */
static inline void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* A macro's value as a string literal, for usage texts. */
#define BENCH_STR(x) BENCH_STR_(x)
#define BENCH_STR_(x) #x

/*
 * The command line, the same in every program: options are parsed with
 * getopt_long ("+" first in the short options: no reordering, so an
 * option may take a second argument from argv[optind]); --help prints
 * "Usage: USAGE" and the option list on stdout and exits 0; a bad option,
 * a missing or bad argument, or a stray argument prints why and the usage
 * line on stderr and exits 2.
 */
static inline _Noreturn void bench_help(const char *usage, const char *options)
{
	printf("Usage: %s\n\n%s", usage, options);
	exit(0);
}

/* Bad usage: getopt_long, or the caller, has already said what is wrong. */
static inline _Noreturn void bench_usage_error(const char *usage)
{
	fprintf(stderr, "Usage: %s\nTry '%s --help' for more information.\n",
		usage, program_invocation_name);
	exit(2);
}

/* The argument of option opt as a decimal integer in [min, max]; anything
 * else is bad usage. */
static inline long long bench_int(const char *usage, const char *opt,
				  const char *arg, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(arg, &end, 10);
	if (end == arg || *end || errno || v < min || v > max) {
		fprintf(stderr, "%s: %s needs a whole number from %lld to %lld, "
			"not '%s'\n", program_invocation_name, opt, min,
			max, arg);
		bench_usage_error(usage);
	}
	return v;
}

/* Trailing arguments that are not options. */
static inline void bench_no_operands(const char *usage, int argc, char **argv,
				     int first)
{
	if (first < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n",
			program_invocation_name, argv[first]);
		bench_usage_error(usage);
	}
}

#endif
