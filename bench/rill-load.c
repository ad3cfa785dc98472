/* SPDX-License-Identifier: MIT */
/* rill-load: a load generator written on rill itself.
 *
 *   rill-load echo    [--host H] --port P [-c CONNS] [-s SIZE] [-d DEPTH] [-t SECS]
 *   rill-load bulk    [--host H] --port P [-c CONNS] [-s WRITE_SIZE] [-t SECS]
 *   rill-load connect [--host H] --port P [-c CONCURRENCY] [-s SIZE] [-t SECS]
 *   rill-load idle    [--host H] --port P [-c CONNS] [-t SECS]
 *
 * echo: CONNS connections, SIZE-byte messages, DEPTH in flight on each;
 * every echoed byte is checked. bulk: one-way writes to a sink server.
 * connect: open, one echo, close, as fast as CONCURRENCY tasks can.
 * idle: CONNS connections each make one echo, then stay open, idle, until
 * the end (for measuring the server's memory per connection).
 * A progress line each second on stderr; at the end a summary and one JSON
 * line on stdout ("{...}"), for scripts. Every run stops by itself after
 * SECS seconds (default 5). --threads N spreads the connections over N
 * loops, one per thread, each pinned to a CPU in turn. --tls CAFILE: every
 * connection speaks TLS, trusting CAFILE, checking the name "localhost";
 * connections share one context, so connect mode resumes sessions.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <rill.h>

#include "bench.h"
#ifdef RILL_HAVE_TLS
#include <rill/tls.h>
#endif

enum mode { MODE_ECHO, MODE_BULK, MODE_CONNECT, MODE_IDLE };

struct config {
	enum mode mode;
	const char *host;
	int port;
	int conns, size, depth;
	double secs;
	int quiet;
	int threads;	/* loops, each on its own thread with conns / threads */
	const char *cafile;	/* --tls */
	rill_tls_ctx *tls;	/* shared by every loop */
};

/* Latency histogram: 64 powers of two, each split in 16 linear buckets,
 * in nanoseconds: ~6% resolution from 1 ns to centuries, fixed memory. */
#define HIST_SUB 16
struct hist {
	uint64_t b[64 * HIST_SUB];
	uint64_t n;
};

static void hist_add(struct hist *h, uint64_t v)
{
	unsigned e = v ? 63 - (unsigned)__builtin_clzll(v) : 0;
	unsigned sub = e < 4 ? (unsigned)(v & 15) : (unsigned)((v >> (e - 4)) & 15);

	h->b[e * HIST_SUB + sub]++;
	h->n++;
}

static uint64_t hist_pct(const struct hist *h, double p)
{
	uint64_t want = (uint64_t)(p * (double)h->n), seen = 0;

	for (unsigned i = 0; i < 64 * HIST_SUB; i++) {
		seen += h->b[i];
		if (seen > want && h->b[i]) {
			unsigned e = i / HIST_SUB, sub = i % HIST_SUB;
			return e < 4 ? sub : ((uint64_t)(16 + sub) << (e - 4));
		}
	}
	return 0;
}

struct stats {
	uint64_t msgs, bytes, errors, conns_done;
	struct hist lat;
};

struct run {
	struct config *cfg;
	int first_conn, nconns;	/* this loop's share */
	struct stats st;
	rill_time start, stop_at;
	int live;
};

static void fill(char *p, size_t n, uint64_t seq, int conn)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (char)(seq * 131 + (uint64_t)conn * 7 + i);
}

static int check(const char *p, size_t n, uint64_t seq, int conn)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (char)(seq * 131 + (uint64_t)conn * 7 + i))
			return -1;
	return 0;
}

struct conn_arg {
	struct run *run;
	int id;
};

static int open_conn(struct run *run, rill_reader **r, rill_writer **w)
{
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1,
		.ssl_context = run->cfg->tls,
				.server_hostname = run->cfg->tls ? "localhost" : NULL };
	int err = rill_open_connection(run->cfg->host, run->cfg->port, &o, r, w);

	if (err < 0) {
		run->st.errors++;
		if (!run->cfg->quiet)
			fprintf(stderr, "connect: %s %s\n", rill_strerror(err),
				rill_error_detail());
	}
	return err;
}

/* One connection of the echo load: DEPTH messages in flight, each reply
 * checked byte for byte and timed from its send. */
static int echo_conn(void *arg)
{
	struct conn_arg *ca = arg;
	struct run *run = ca->run;
	size_t size = (size_t)run->cfg->size;
	int depth = run->cfg->depth;
	rill_time *sent = calloc((size_t)depth, sizeof(*sent));
	char *out = malloc(size), *in = malloc(size);
	uint64_t seq_out = 0, seq_in = 0;
	rill_reader *r;
	rill_writer *w;

	if (!sent || !out || !in || open_conn(run, &r, &w) < 0)
		goto out;
	for (; seq_out < (uint64_t)depth; seq_out++) {
		fill(out, size, seq_out, ca->id);
		sent[seq_out % (uint64_t)depth] = rill_now();
		rill_writer_write(w, out, size);
	}
	while (rill_now() < run->stop_at) {
		ssize_t n = rill_reader_readexactly(r, in, size);
		rill_time now = rill_now();

		if (n < 0 || check(in, size, seq_in, ca->id) < 0) {
			run->st.errors++;
			break;
		}
		hist_add(&run->st.lat, now - sent[seq_in % (uint64_t)depth]);
		seq_in++;
		run->st.msgs++;
		run->st.bytes += size;
		fill(out, size, seq_out, ca->id);
		sent[seq_out % (uint64_t)depth] = now;
		seq_out++;
		rill_writer_write(w, out, size);
		if (rill_writer_drain(w) < 0) {
			run->st.errors++;
			break;
		}
	}
	rill_writer_close(w);
	rill_writer_wait_closed(w);
	rill_writer_free(w);
out:
	free(sent);
	free(out);
	free(in);
	run->live--;
	return 0;
}

static int bulk_conn(void *arg)
{
	struct conn_arg *ca = arg;
	struct run *run = ca->run;
	size_t size = (size_t)run->cfg->size;
	char *buf = malloc(size);
	rill_reader *r;
	rill_writer *w;

	if (!buf || open_conn(run, &r, &w) < 0)
		goto out;
	fill(buf, size, 0, ca->id);
	/* Keep the socket fed: a 64 KiB high-water mark lets the queue run
	 * dry between a drain and the next write. */
	rill_writer_set_write_buffer_limits(w, 1024 * 1024, -1);
	while (rill_now() < run->stop_at) {
		/* The buffer never changes: send it by reference, one copy
		 * (into the kernel) per byte, as iperf3 does. */
		rill_writer_write_ref(w, buf, size, NULL, NULL);
		if (rill_writer_drain(w) < 0) {
			run->st.errors++;
			break;
		}
		run->st.msgs++;
		run->st.bytes += size;
	}
	rill_writer_close(w);
	rill_writer_wait_closed(w);
	rill_writer_free(w);
out:
	free(buf);
	run->live--;
	return 0;
}

static int connect_conn(void *arg)
{
	struct conn_arg *ca = arg;
	struct run *run = ca->run;
	size_t size = (size_t)run->cfg->size;
	char out[4096], in[4096];
	uint64_t seq = 0;

	if (size > sizeof(out))
		size = sizeof(out);
	while (rill_now() < run->stop_at) {
		rill_time t0 = rill_now();
		rill_reader *r;
		rill_writer *w;

		if (open_conn(run, &r, &w) < 0)
			break;
		fill(out, size, seq, ca->id);
		rill_writer_write(w, out, size);
		if (rill_reader_readexactly(r, in, size) != (ssize_t)size ||
		    check(in, size, seq, ca->id) < 0)
			run->st.errors++;
		rill_writer_close(w);
		rill_writer_wait_closed(w);
		rill_writer_free(w);
		hist_add(&run->st.lat, rill_now() - t0);
		run->st.msgs++;
		run->st.conns_done++;
		seq++;
	}
	run->live--;
	return 0;
}

static int idle_conn(void *arg)
{
	struct conn_arg *ca = arg;
	struct run *run = ca->run;
	char out[64], in[64];
	rill_reader *r;
	rill_writer *w;

	if (open_conn(run, &r, &w) == 0) {
		fill(out, sizeof(out), 0, ca->id);
		rill_writer_write(w, out, sizeof(out));
		if (rill_reader_readexactly(r, in, sizeof(in)) == sizeof(in) &&
		    check(in, sizeof(in), 0, ca->id) == 0) {
			run->st.msgs++;
			run->st.conns_done++;
		} else {
			run->st.errors++;
		}
		rill_sleep_ns(run->stop_at > rill_now() ? run->stop_at - rill_now() : 0);
		rill_writer_close(w);
		rill_writer_wait_closed(w);
		rill_writer_free(w);
	}
	run->live--;
	return 0;
}

static double rusage_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The live line: rate over the last second. */
static int progress(void *arg)
{
	struct run *run = arg;
	uint64_t last = 0;

	while (run->live > 0 && rill_sleep_ms(1000) == 0) {
		uint64_t m = run->st.msgs;

		if (!run->cfg->quiet)
			fprintf(stderr, "[%4.0fs] %10" PRIu64 " msg/s %9.1f MB/s  errors %" PRIu64 "\n",
				(double)(rill_now() - run->start) / 1e9, m - last,
				(double)(m - last) * run->cfg->size / 1e6, run->st.errors);
		last = m;
	}
	return 0;
}

static const char *const mode_names[] = { "echo", "bulk", "connect", "idle" };

static void report(struct run *run, double secs, double cpu)
{
	struct config *c = run->cfg;
	double rate = (double)run->st.msgs / secs;
	double mbs = (double)run->st.bytes / secs / 1e6;
	double p50 = (double)hist_pct(&run->st.lat, 0.50) / 1e3;
	double p99 = (double)hist_pct(&run->st.lat, 0.99) / 1e3;
	double p999 = (double)hist_pct(&run->st.lat, 0.999) / 1e3;

	printf("%s: %d conns, %d B, depth %d: %.0f msg/s, %.1f MB/s, "
	       "p50 %.1f us, p99 %.1f us, p99.9 %.1f us, errors %" PRIu64 "\n",
	       mode_names[c->mode], c->conns, c->size, c->depth, rate, mbs,
	       p50, p99, p999, run->st.errors);
	printf("{\"mode\":\"%s\",\"conns\":%d,\"size\":%d,\"depth\":%d,"
	       "\"seconds\":%.3f,\"msgs\":%" PRIu64 ",\"rate\":%.1f,\"mbps\":%.2f,"
	       "\"p50_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,"
	       "\"errors\":%" PRIu64 ",\"client_cpu_s\":%.3f}\n",
	       mode_names[c->mode], c->conns, c->size, c->depth, secs,
	       run->st.msgs, rate, mbs, p50, p99, p999, run->st.errors, cpu);
	fflush(stdout);
}

static int run_load(void *arg)
{
	struct run *run = arg;
	static const rill_task_fn fns[] = { echo_conn, bulk_conn, connect_conn, idle_conn };
	struct conn_arg *ca = calloc((size_t)run->nconns, sizeof(*ca));
	rill_task **tasks = calloc((size_t)run->nconns, sizeof(*tasks));
	rill_task *prog = NULL;

	if (!ca || !tasks)
		return 1;
	run->start = rill_now();
	run->stop_at = run->start + (rill_time)(run->cfg->secs * 1e9);
	for (int i = 0; i < run->nconns; i++) {
		ca[i] = (struct conn_arg){ run, run->first_conn + i };
		if (rill_spawn(rill_loop_current(), fns[run->cfg->mode], &ca[i], &tasks[i]) == 0)
			run->live++;
	}
	if (run->first_conn == 0)	/* one progress line, from the first loop */
		rill_spawn(rill_loop_current(), progress, run, &prog);
	for (int i = 0; i < run->nconns; i++)
		if (tasks[i])
			rill_task_join(tasks[i], NULL);
	if (prog) {
		rill_task_cancel(prog);
		rill_task_join(prog, NULL);
	}
	free(ca);
	free(tasks);
	return run->st.errors ? 3 : 0;
}

/* Splits the connections over cfg->threads loops, each on its own thread
 * (pinned to a CPU in turn), and merges their counters. */
static int run_threads(struct config *cfg)
{
	int n = cfg->threads > 0 ? cfg->threads : 1;
	struct run *runs = calloc((size_t)n, sizeof(*runs));
	rill_thread **th = calloc((size_t)n, sizeof(*th));
	struct run total = { .cfg = cfg };
	double cpu0 = rusage_cpu();
	rill_time t0 = rill_now();
	int err = 0, result;

	if (!runs || !th)
		return 1;
	for (int i = 0; i < n; i++) {
		runs[i].cfg = cfg;
		runs[i].first_conn = cfg->conns * i / n;
		runs[i].nconns = cfg->conns * (i + 1) / n - runs[i].first_conn;
		err = rill_thread_start(NULL, n > 1 ? i % rill_cpu_count() : -1, run_load,
					&runs[i], &th[i]);
		if (err < 0) {
			fprintf(stderr, "rill-load: %s\n", rill_error_detail());
			n = i;
			break;
		}
	}
	for (int i = 0; i < n; i++) {
		rill_thread_join(th[i], &result);
		total.st.msgs += runs[i].st.msgs;
		total.st.bytes += runs[i].st.bytes;
		total.st.errors += runs[i].st.errors;
		for (size_t b = 0; b < sizeof(total.st.lat.b) / sizeof(total.st.lat.b[0]); b++)
			total.st.lat.b[b] += runs[i].st.lat.b[b];
		total.st.lat.n += runs[i].st.lat.n;
	}
	report(&total, (double)(rill_now() - t0) / 1e9, rusage_cpu() - cpu0);
	free(runs);
	free(th);
	return err < 0 ? 1 : total.st.errors ? 3 : 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: rill-load echo|bulk|connect|idle [--host H] --port P "
		"[-c CONNS] [-s SIZE] [-d DEPTH] [-t SECS] [--threads N] [--tls CAFILE] [-q]\n");
	exit(2);
}

static void parse_args(int argc, char **argv, struct config *c)
{
	if (argc < 2)
		usage();
	if (!strcmp(argv[1], "echo"))
		c->mode = MODE_ECHO;
	else if (!strcmp(argv[1], "bulk"))
		c->mode = MODE_BULK, c->size = 65536, c->conns = 1;
	else if (!strcmp(argv[1], "connect"))
		c->mode = MODE_CONNECT, c->conns = 10;
	else if (!strcmp(argv[1], "idle"))
		c->mode = MODE_IDLE;
	else
		usage();
	for (int i = 2; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(a, "-q"))
			c->quiet = 1;
		else if (!v)
			usage();
		else if (!strcmp(a, "--host"))
			c->host = v, i++;
		else if (!strcmp(a, "--port"))
			c->port = atoi(v), i++;
		else if (!strcmp(a, "-c"))
			c->conns = atoi(v), i++;
		else if (!strcmp(a, "-s"))
			c->size = atoi(v), i++;
		else if (!strcmp(a, "-d"))
			c->depth = atoi(v), i++;
		else if (!strcmp(a, "-t"))
			c->secs = atof(v), i++;
		else if (!strcmp(a, "--threads"))
			c->threads = atoi(v), i++;
		else if (!strcmp(a, "--tls"))
			c->cafile = v, i++;
		else
			usage();
	}
	if (c->port <= 0 || c->conns <= 0 || c->size <= 0 || c->depth <= 0 ||
	    c->secs <= 0 || c->secs > 3600 || c->threads < 0 || c->threads > 1024 ||
	    c->threads > c->conns)
		usage();
}

/* --tls: one client context for every connection of every loop. */
static int tls_context(struct config *c)
{
	if (!c->cafile)
		return 0;
#ifdef RILL_HAVE_TLS
	rill_tls_options o = { .size = sizeof(rill_tls_options), .ca_file = c->cafile };
	int err = rill_tls_ctx_new_client(&o, &c->tls);

	if (err < 0)
		fprintf(stderr, "rill-load: --tls: %s (%s)\n", rill_strerror(err),
			rill_tls_last_error());
	return err;
#else
	fprintf(stderr, "rill-load: --tls: TLS is not available in this build\n");
	return RILL_ETLS_NOT_AVAILABLE;
#endif
}

int main(int argc, char **argv)
{
	struct config cfg = { .host = "127.0.0.1", .conns = 100, .size = 64,
			      .depth = 1, .secs = 5 };
	int result;

	parse_args(argc, argv, &cfg);
	raise_nofile();
	if (tls_context(&cfg) < 0)
		return 2;
	result = run_threads(&cfg);
#ifdef RILL_HAVE_TLS
	rill_tls_ctx_free(cfg.tls);
#endif
	return result;
}
