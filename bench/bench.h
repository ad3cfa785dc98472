/* SPDX-License-Identifier: MIT */
/* bench/bench.h: small pieces the benchmark programs share (the peer
 * servers in bench/peers/ too: nothing here needs rill). */
#ifndef RILL_BENCH_H
#define RILL_BENCH_H

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

/* ---- the servers' command line ---------------------------------------
 *
 * rill-echo-server and the peers in bench/peers/ take the same options, so
 * that compare.py starts each the same way: --port P --host H --mode M,
 * and where a program has them, --threads N and --tls CERT KEY.
 */
enum bench_mode { BENCH_MODE_ECHO, BENCH_MODE_SINK, BENCH_MODE_HTTP };

#define BENCH_SERVER_THREADS 1u	/* the program takes --threads N */
#define BENCH_SERVER_TLS 2u	/* the program takes --tls CERT KEY */
#define BENCH_SERVER_NEED_PORT 4u	/* --port must be given */
#define BENCH_SERVER_NEED_TLS 8u	/* --tls must be given */

struct bench_server_args {
	const char *host;	/* --host; the caller's default stays */
	const char *port;	/* --port, as given (for getaddrinfo) */
	int port_num;		/* the same as a number; -1 when not given */
	enum bench_mode mode;	/* --mode; echo by default */
	int threads;		/* --threads; the caller's default stays */
	const char *cert, *key;	/* --tls */
};

#define BENCH_SERVER_OPTIONS \
	"  --host H          listen on address H (default 127.0.0.1)\n" \
	"  --mode M          echo: write back what arrives (default);\n" \
	"                    sink: read and discard; http: HTTP/1.1 keep-alive\n"

static inline enum bench_mode bench_mode_parse(const char *usage, const char *s)
{
	if (!strcmp(s, "echo"))
		return BENCH_MODE_ECHO;
	if (!strcmp(s, "sink"))
		return BENCH_MODE_SINK;
	if (!strcmp(s, "http"))
		return BENCH_MODE_HTTP;
	fprintf(stderr, "%s: --mode is echo, sink or http, not '%s'\n",
		program_invocation_name, s);
	bench_usage_error(usage);
}

/* --tls takes two arguments: the second is the next word. */
static inline void bench_tls_args(const char *usage, int argc, char **argv,
				  struct bench_server_args *a)
{
	if (optind >= argc) {
		fprintf(stderr, "%s: --tls needs CERT and KEY\n", program_invocation_name);
		bench_usage_error(usage);
	}
	a->cert = optarg;
	a->key = argv[optind++];
}

/* Parses the servers' options into *a (its defaults filled in by the
 * caller); extra says which optional ones the program takes. */
static inline void bench_server_parse(int argc, char **argv, const char *usage,
				      const char *options, unsigned extra,
				      struct bench_server_args *a)
{
	static const struct option longopts[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "host", required_argument, NULL, 'H' },
		{ "mode", required_argument, NULL, 'm' },
		{ "threads", required_argument, NULL, 't' },
		{ "tls", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	int c;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		if (c == 'p') {
			a->port_num = (int)bench_int(usage, "--port", optarg, 0, 65535);
			a->port = optarg;
		} else if (c == 'H') {
			a->host = optarg;
		} else if (c == 'm') {
			a->mode = bench_mode_parse(usage, optarg);
		} else if (c == 't' && (extra & BENCH_SERVER_THREADS)) {
			a->threads = (int)bench_int(usage, "--threads", optarg, 1, 1024);
		} else if (c == 'T' && (extra & BENCH_SERVER_TLS)) {
			bench_tls_args(usage, argc, argv, a);
		} else if (c == 'h') {
			bench_help(usage, options);
		} else {
			if (c == 't' || c == 'T')
				fprintf(stderr, "%s: unrecognized option '%s'\n",
					program_invocation_name, argv[optind - 1]);
			bench_usage_error(usage);
		}
	}
	bench_no_operands(usage, argc, argv, optind);
	if (((extra & BENCH_SERVER_NEED_PORT) && !a->port) ||
	    ((extra & BENCH_SERVER_NEED_TLS) && !a->cert)) {
		fprintf(stderr, "%s: %s required\n", program_invocation_name,
			extra & BENCH_SERVER_NEED_TLS ? "--port and --tls are" : "--port is");
		bench_usage_error(usage);
	}
}

#endif
