/* SPDX-License-Identifier: MIT */
/* rill-load: a load generator written on rill itself.
 *
 *   rill-load http URL [options]      HTTP/1.1 against any server
 *   rill-load echo|bulk|connect|idle --port P [options]   rill's benchmarks
 *
 * http: keep-alive connections each send a request and wait for its
 * response (closed loop), or, with --rate, send on a fixed schedule and
 * time each response from when its request was due (open loop, corrected
 * for coordinated omission as wrk2 does). Responses are parsed with
 * libhttp-parser (the parser wrk uses): Content-Length, chunked and
 * read-until-close bodies. Each response is counted by status class;
 * errors by kind. A connection the server closes is opened again.
 *
 * echo: CONNS connections, SIZE-byte messages, DEPTH in flight on each;
 * every echoed byte is checked. bulk: one-way writes to a sink server.
 * connect: open, one echo, close, as fast as CONCURRENCY tasks can.
 * idle: CONNS connections each make one echo, then stay open, idle, until
 * the end (for measuring the server's memory per connection).
 *
 * A progress line each second on stderr; at the end a summary and one JSON
 * line on stdout ("{...}"), for scripts. Latencies go into a histogram
 * with 0.1% resolution (bench/hist.h). Every run stops by itself after its
 * duration. --threads N spreads the connections over N loops, one per
 * thread. `rill-load --help` lists every option.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include <rill.h>

#include "bench.h"
#include "hist.h"
#ifdef RILL_HAVE_TLS
#include <rill/tls.h>
#endif
#ifdef RILL_HAVE_HTTP_PARSER
#include <http_parser.h>
#endif

enum mode { MODE_ECHO, MODE_BULK, MODE_CONNECT, MODE_IDLE, MODE_HTTP };

static const char *const mode_names[] = { "echo", "bulk", "connect", "idle", "http" };

/* Latencies up to an hour, in nanoseconds, to 3 significant digits. */
#define LAT_HIGHEST (3600 * RILL_NSEC_PER_SEC)
#define LAT_DIGITS 3

/* The most header lines --header may add. */
#define MAX_HEADERS 64

struct config {
	enum mode mode;
	const char *host;	/* echo modes: --host; http: the URL's host */
	char addr[INET6_ADDRSTRLEN];	/* host, resolved once */
	int port;
	int conns, size, depth;
	double secs;
	int quiet;
	int threads;		/* loops, each on its own thread */
	const char *cafile;	/* --tls */
	bool insecure;
	rill_tls_ctx *tls;	/* shared by every loop */
	uint64_t max_errors;
	const char *latency_file;
	/* http */
	const char *url;
	char *url_host;		/* the URL's host, allocated */
	bool https, head;
	const char *method;
	const char *headers[MAX_HEADERS];
	int nheaders;
	const char *body;
	size_t body_len;
	bool body_file;		/* body was read from a file: ours to free */
	char *request;		/* the request's bytes, built once */
	size_t request_len;
	double rate;		/* --rate: requests per second in all; 0: closed loop */
	uint64_t requests;	/* --requests: in all; 0: no bound */
	rill_time timeout;	/* per response; 0: none */
};

enum err_kind { ERR_CONNECT, ERR_READ, ERR_WRITE, ERR_TIMEOUT, ERR_PROTOCOL, ERR_STATUS, ERR_KINDS };

static const char *const err_names[] = { "connect", "read", "write", "timeout", "protocol",
					  "non2xx" };

/* One loop's counters. The loop's thread alone writes them; the main
 * thread reads them for the progress line, hence the relaxed atomics
 * (plain loads and stores on x86 and arm64). */
struct stats {
	uint64_t msgs;		/* echo messages, http responses */
	uint64_t requests;	/* http requests sent */
	uint64_t bytes;
	uint64_t connects;
	uint64_t status[6];	/* by class: [2] is 2xx; [0] anything else */
	uint64_t errors[ERR_KINDS];
	struct hist lat;
};

#define STAT_ADD(field, n) __atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)
#define STAT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

static uint64_t errors_total(const struct stats *st)
{
	uint64_t n = 0;

	for (int k = 0; k < ERR_KINDS; k++)
		n += STAT_GET(st->errors[k]);
	return n;
}

struct run {
	struct config *cfg;
	int first_conn, nconns;	/* this loop's share */
	struct stats st;
	rill_time start, stop_at, end;
	int live;
	int pending;		/* http connections still making their first connect */
	rill_event *ready, *go;
	int done;		/* set (atomically) when the loop has finished */
};

static void count_error(struct run *run, enum err_kind kind, int err, const char *what)
{
	STAT_ADD(run->st.errors[kind], 1);
	if (!run->cfg->quiet && kind == ERR_CONNECT && run->st.errors[kind] <= 3)
		fprintf(stderr, "rill-load: %s: %s %s\n", what, rill_strerror(err),
			rill_error_detail());
}

/* ---- echo, bulk, connect, idle ----------------------------------------- */

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
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	int err;

	o.ssl_context = run->cfg->tls;
	o.server_hostname = run->cfg->tls ? "localhost" : NULL;
	err = rill_open_connection(run->cfg->addr, run->cfg->port, &o, r, w);

	if (err < 0)
		count_error(run, ERR_CONNECT, err, "connect");
	else
		STAT_ADD(run->st.connects, 1);
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

		if (n < 0) {
			count_error(run, ERR_READ, (int)n, "read");
			break;
		}
		if (check(in, size, seq_in, ca->id) < 0) {
			count_error(run, ERR_PROTOCOL, 0, "echo");
			break;
		}
		hist_record(&run->st.lat, now - sent[seq_in % (uint64_t)depth]);
		seq_in++;
		STAT_ADD(run->st.msgs, 1);
		STAT_ADD(run->st.bytes, size);
		fill(out, size, seq_out, ca->id);
		sent[seq_out % (uint64_t)depth] = now;
		seq_out++;
		rill_writer_write(w, out, size);
		if (rill_writer_drain(w) < 0) {
			count_error(run, ERR_WRITE, 0, "write");
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
			count_error(run, ERR_WRITE, 0, "write");
			break;
		}
		STAT_ADD(run->st.msgs, 1);
		STAT_ADD(run->st.bytes, size);
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
			count_error(run, ERR_READ, 0, "read");
		rill_writer_close(w);
		rill_writer_wait_closed(w);
		rill_writer_free(w);
		hist_record(&run->st.lat, rill_now() - t0);
		STAT_ADD(run->st.msgs, 1);
		STAT_ADD(run->st.bytes, size);
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
		    check(in, sizeof(in), 0, ca->id) == 0)
			STAT_ADD(run->st.msgs, 1);
		else
			count_error(run, ERR_READ, 0, "read");
		rill_sleep_ns(run->stop_at > rill_now() ? run->stop_at - rill_now() : 0);
		rill_writer_close(w);
		rill_writer_wait_closed(w);
		rill_writer_free(w);
	}
	run->live--;
	return 0;
}

/* ---- http ------------------------------------------------------------ */

#ifdef RILL_HAVE_HTTP_PARSER

/* One keep-alive connection of the http load and its requests in flight,
 * oldest first, in two rings of cfg->depth entries: when each was due
 * (latency starts there) and when it was written (timeouts start there).
 * In the closed loop the two are the same. Requests left unanswered by a
 * server that announced the end of the connection (Connection: close
 * while pipelining) stay in the ring and go again on the next one. */
struct hconn {
	struct run *run;
	int id;			/* across every loop: 0 .. conns - 1 */
	rill_reader *r;
	rill_writer *w;
	http_parser parser;
	rill_time *due, *wrote;
	unsigned head, count;
	unsigned unsent;	/* of those, the first ones still to write */
	uint64_t quota, nsent;	/* --requests share; UINT64_MAX: none */
	rill_time next_due, interval;	/* --rate schedule */
	rill_time now;		/* when the bytes being parsed were read */
	bool reopen;		/* the server ends the connection here */
};

/* What one read step ended with, beside a counted error (an err_kind). */
enum { READ_OK = -1, READ_WAKE = -2, READ_REOPEN = -3 };

static int on_headers_complete(http_parser *p)
{
	struct hconn *c = p->data;

	return c->run->cfg->head;	/* 1: a HEAD response has no body */
}

/* A whole response: its latency, its status class, and whether the server
 * keeps the connection (if not, parsing stops here and it is reopened). */
static int on_message_complete(http_parser *p)
{
	struct hconn *c = p->data;
	struct stats *st = &c->run->st;
	unsigned cls = p->status_code / 100;

	if (!c->count)
		return -1;	/* a response nobody asked for */
	hist_record(&st->lat, c->now - c->due[c->head]);
	c->head = (c->head + 1) % (unsigned)c->run->cfg->depth;
	c->count--;
	STAT_ADD(st->msgs, 1);
	STAT_ADD(st->status[cls <= 5 ? cls : 0], 1);
	if (cls != 2)
		STAT_ADD(st->errors[ERR_STATUS], 1);
	if (!http_should_keep_alive(p)) {
		c->reopen = true;
		http_parser_pause(p, 1);
	}
	return 0;
}

static const http_parser_settings http_settings = {
	.on_headers_complete = on_headers_complete,
	.on_message_complete = on_message_complete,
};

/* Connects, with TLS for https. Counts the connection or the error. */
static int http_open(struct hconn *c)
{
	struct config *cfg = c->run->cfg;
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	int err;

	o.connect_timeout = cfg->timeout;
	o.ssl_context = cfg->tls;
	if (cfg->tls) {		/* without TLS these are -EINVAL, as in asyncio */
		o.server_hostname = cfg->host;
		o.ssl_handshake_timeout = cfg->timeout;
		o.ssl_shutdown_timeout = RILL_NSEC_PER_SEC;
	}
	err = rill_open_connection(cfg->addr, cfg->port, &o, &c->r, &c->w);

	if (err < 0) {
		c->w = NULL;
		/* Cut short by the end of the run: not the server's fault. */
		if (!rill_deadline_expired())
			count_error(c->run, ERR_CONNECT, err, "connect");
		return err;
	}
	STAT_ADD(c->run->st.connects, 1);
	http_parser_init(&c->parser, HTTP_RESPONSE);
	c->parser.data = c;
	c->unsent = c->count;
	c->reopen = false;
	return 0;
}

/* Lets the connection go: after an error at once, and the requests in
 * flight are lost; else once what is queued has been sent, keeping the
 * requests in flight for the next connection. */
static void http_drop(struct hconn *c, bool abort)
{
	if (!c->w)
		return;
	if (abort) {
		rill_writer_abort(c->w);
		c->count = 0;
	}
	rill_writer_free(c->w);
	c->w = NULL;
}

/* Writes every request that may go now: up to depth in flight, and with
 * --rate only those already due. Returns 0, or -1 when the connection
 * is lost. */
static int http_send(struct hconn *c)
{
	struct config *cfg = c->run->cfg;
	unsigned depth = (unsigned)cfg->depth;
	rill_time now = rill_now();
	bool wrote = c->unsent > 0;

	for (; c->unsent; c->unsent--) {
		unsigned slot = (c->head + c->count - c->unsent) % depth;

		c->wrote[slot] = now;
		rill_writer_write_ref(c->w, cfg->request, cfg->request_len, NULL, NULL);
	}
	while (c->count < depth && c->nsent < c->quota) {
		unsigned slot = (c->head + c->count) % depth;
		rill_time due = now;

		if (c->interval) {
			if (c->next_due > now)
				break;
			due = c->next_due;
			c->next_due += c->interval;
		}
		c->due[slot] = due;
		c->wrote[slot] = now;
		c->count++;
		c->nsent++;
		/* The request never changes: sent from where it is. */
		rill_writer_write_ref(c->w, cfg->request, cfg->request_len, NULL, NULL);
		STAT_ADD(c->run->st.requests, 1);
		wrote = true;
	}
	return wrote && rill_writer_drain(c->w) < 0 ? -1 : 0;
}

/* When the read must give up waiting: the next request falls due, or the
 * oldest one in flight times out. */
static rill_time http_wake_time(const struct hconn *c)
{
	struct config *cfg = c->run->cfg;
	rill_time t = RILL_TIME_NEVER;

	if (c->interval && c->count < (unsigned)cfg->depth && c->nsent < c->quota)
		t = c->next_due;
	if (cfg->timeout && c->count && c->wrote[c->head] + cfg->timeout < t)
		t = c->wrote[c->head] + cfg->timeout;
	return t;
}

/* Waits (until `until` at most) for response bytes and parses them in
 * place. Returns READ_OK, READ_WAKE when `until` came first, READ_REOPEN
 * when the server ended the connection between responses, or the kind
 * of error to count. */
static int http_read(struct hconn *c, rill_time until)
{
	rill_time saved = RILL_TIME_NEVER, now;
	rill_bytes v;
	ssize_t n;
	size_t used;
	enum http_errno e;

	if (until != RILL_TIME_NEVER) {
		now = rill_now();
		saved = rill_deadline_push(until > now ? until - now : 0);
	}
	n = rill_reader_peek(c->r, &v);
	if (until != RILL_TIME_NEVER)
		rill_deadline_pop(saved);
	if (n == -ETIMEDOUT)
		return READ_WAKE;
	if (n < 0)
		return ERR_READ;
	c->now = rill_now();
	if (n == 0) {
		/* EOF ends a body that runs until close, and nothing else. */
		http_parser_execute(&c->parser, &http_settings, NULL, 0);
		return c->count ? ERR_READ : READ_REOPEN;
	}
	used = http_parser_execute(&c->parser, &http_settings, v.data, (size_t)n);
	rill_reader_consume(c->r, used);
	STAT_ADD(c->run->st.bytes, used);
	e = HTTP_PARSER_ERRNO(&c->parser);
	if (e == HPE_PAUSED || c->reopen)
		return READ_REOPEN;
	return e == HPE_OK ? READ_OK : ERR_PROTOCOL;
}

/* After the wait ended early: the end of the run (-1), a request timed
 * out (counted, the connection dropped), or time to send (0). */
static int http_woken(struct hconn *c)
{
	struct config *cfg = c->run->cfg;
	rill_time now = rill_now();

	if (now >= c->run->stop_at)
		return -1;
	if (cfg->timeout && c->count && now >= c->wrote[c->head] + cfg->timeout) {
		STAT_ADD(c->run->st.errors[ERR_TIMEOUT], 1);
		http_drop(c, true);
	}
	return 0;
}

/* The connection's life after the start: reconnect when needed, send what
 * may go, read and parse, until the run's end or its quota is done. */
static void http_loop(struct hconn *c)
{
	while (!rill_deadline_expired()) {
		int res;

		if (!c->w) {
			if (c->nsent >= c->quota && !c->count)
				break;
			/* A refused connect must not spin: 10 ms between tries. */
			if (http_open(c) < 0 && rill_sleep_ms(10) < 0)
				break;
			continue;
		}
		if (http_send(c) < 0) {
			count_error(c->run, ERR_WRITE, 0, "write");
			http_drop(c, true);
			continue;
		}
		if (!c->count && c->nsent >= c->quota)
			break;
		res = http_read(c, http_wake_time(c));
		if (res == READ_OK)
			continue;
		if (res == READ_WAKE) {
			if (http_woken(c) < 0)
				break;
		} else if (res == READ_REOPEN) {
			http_drop(c, false);
		} else {
			if (!rill_deadline_expired())
				count_error(c->run, (enum err_kind)res, 0, "read");
			http_drop(c, true);
		}
	}
}

/* One connection task: the first connect before the clock starts (every
 * connection of the loop, then the start together), the load, a clean
 * close. */
static int http_conn(void *arg)
{
	struct hconn *c = arg;
	struct run *run = c->run;
	rill_time saved, now;

	http_open(c);
	if (--run->pending == 0)
		rill_event_set(run->ready);
	rill_event_wait(run->go);
	if (c->interval)	/* spread: one request every 1 / rate overall */
		c->next_due = run->start + (rill_time)((double)c->id * 1e9 / run->cfg->rate);
	now = rill_now();
	saved = rill_deadline_push(run->stop_at > now ? run->stop_at - now : 0);
	http_loop(c);
	rill_deadline_pop(saved);
	if (c->w) {
		rill_writer_close(c->w);
		saved = rill_deadline_push(RILL_NSEC_PER_SEC);
		rill_writer_wait_closed(c->w);
		rill_deadline_pop(saved);
		http_drop(c, false);
	}
	run->live--;
	return 0;
}

static int http_conn_init(struct hconn *c, struct run *run, int id)
{
	struct config *cfg = run->cfg;
	uint64_t n = cfg->requests, conns = (uint64_t)cfg->conns;

	*c = (struct hconn){ .run = run, .id = id, .quota = UINT64_MAX };
	if (n)	/* an even share of --requests */
		c->quota = n * (uint64_t)(id + 1) / conns - n * (uint64_t)id / conns;
	if (cfg->rate > 0)
		c->interval = (rill_time)((double)cfg->conns * 1e9 / cfg->rate);
	c->due = calloc((size_t)cfg->depth, sizeof(*c->due));
	c->wrote = calloc((size_t)cfg->depth, sizeof(*c->wrote));
	return c->due && c->wrote ? 0 : -1;
}

/* The http load of one loop: connect everything, start the clock, wait
 * for every connection to finish. */
static int http_run(struct run *run)
{
	struct hconn *c = calloc((size_t)run->nconns, sizeof(*c));
	rill_task **tasks = calloc((size_t)run->nconns, sizeof(*tasks));
	int err = -ENOMEM;

	if (!c || !tasks || rill_event_new(&run->ready) < 0)
		goto out;
	if (rill_event_new(&run->go) < 0)
		goto out;
	run->pending = run->nconns;
	for (int i = 0; i < run->nconns; i++) {
		if (http_conn_init(&c[i], run, run->first_conn + i) < 0 ||
		    rill_spawn(rill_loop_current(), http_conn, &c[i], &tasks[i]) < 0)
			goto out;	/* tasks spawned so far are cancelled by the loop */
		run->live++;
	}
	rill_event_wait(run->ready);
	run->start = rill_now();
	run->stop_at = run->start + (rill_time)(run->cfg->secs * 1e9);
	rill_event_set(run->go);
	for (int i = 0; i < run->nconns; i++)
		rill_task_join(tasks[i], NULL);
	err = 0;
out:
	for (int i = 0; c && i < run->nconns; i++) {
		free(c[i].due);
		free(c[i].wrote);
	}
	free(c);
	free(tasks);
	if (run->ready)
		rill_event_free(run->ready);
	if (run->go)
		rill_event_free(run->go);
	return err;
}

#endif /* RILL_HAVE_HTTP_PARSER */

/* ---- running the loops ------------------------------------------------ */

static int run_echo_modes(struct run *run)
{
	static const rill_task_fn fns[] = { echo_conn, bulk_conn, connect_conn, idle_conn };
	struct conn_arg *ca = calloc((size_t)run->nconns, sizeof(*ca));
	rill_task **tasks = calloc((size_t)run->nconns, sizeof(*tasks));

	if (!ca || !tasks) {
		free(ca);
		free(tasks);
		return -ENOMEM;
	}
	run->start = rill_now();
	run->stop_at = run->start + (rill_time)(run->cfg->secs * 1e9);
	for (int i = 0; i < run->nconns; i++) {
		ca[i] = (struct conn_arg){ run, run->first_conn + i };
		if (rill_spawn(rill_loop_current(), fns[run->cfg->mode], &ca[i], &tasks[i]) == 0)
			run->live++;
	}
	for (int i = 0; i < run->nconns; i++)
		if (tasks[i])
			rill_task_join(tasks[i], NULL);
	free(ca);
	free(tasks);
	return 0;
}

static int run_load(void *arg)
{
	struct run *run = arg;
	int err;

#ifdef RILL_HAVE_HTTP_PARSER
	if (run->cfg->mode == MODE_HTTP)
		err = http_run(run);
	else
#endif
		err = run_echo_modes(run);
	run->end = rill_now();
	__atomic_store_n(&run->done, 1, __ATOMIC_RELEASE);
	return err < 0 ? 1 : 0;
}

static double rusage_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* The i-th CPU this process may run on (taskset is honoured). */
static int cpu_for(int i)
{
	cpu_set_t set;
	int n, k = 0;

	if (sched_getaffinity(0, sizeof(set), &set) < 0 || !(n = CPU_COUNT(&set)))
		return -1;
	i %= n;
	for (int cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set) && k++ == i)
			return cpu;
	return -1;
}

/* The live line, once a second from the main thread: the last second's
 * rate, summed over the loops. */
static void progress(struct run *runs, int n, const struct config *cfg)
{
	struct timespec tick = { 0, 50 * 1000 * 1000 };
	uint64_t last = 0;
	rill_time t0 = rill_now(), next = t0 + RILL_NSEC_PER_SEC;
	int done = 0;

	while (done < n) {
		nanosleep(&tick, NULL);
		done = 0;
		for (int i = 0; i < n; i++)
			done += __atomic_load_n(&runs[i].done, __ATOMIC_ACQUIRE);
		if (rill_now() < next || done == n)
			continue;
		uint64_t msgs = 0, errors = 0, bytes = 0;

		for (int i = 0; i < n; i++) {
			msgs += STAT_GET(runs[i].st.msgs);
			bytes += STAT_GET(runs[i].st.bytes);
			errors += errors_total(&runs[i].st);
		}
		if (!cfg->quiet)
			fprintf(stderr, "[%4.0fs] %10" PRIu64 " %s/s  %9.1f MB total  errors %" PRIu64 "\n",
				(double)(rill_now() - t0) / 1e9, msgs - last,
				cfg->mode == MODE_HTTP ? "req" : "msg", (double)bytes / 1e6, errors);
		last = msgs;
		next += RILL_NSEC_PER_SEC;
	}
}

/* ---- the report --------------------------------------------------------- */

static const double pcts[] = { 50, 90, 99, 99.9, 99.99 };
static const char *const pct_keys[] = { "p50", "p90", "p99", "p999", "p9999" };
static const char *const pct_labels[] = { "p50", "p90", "p99", "p99.9", "p99.99" };
#define NPCTS (sizeof(pcts) / sizeof(pcts[0]))

/* Microseconds, for people: 12.3 us, 4.56 ms, 1.20 s. */
static const char *human_us(double us, char *buf, size_t len)
{
	if (us < 1000)
		snprintf(buf, len, "%.1f us", us);
	else if (us < 1e6)
		snprintf(buf, len, "%.2f ms", us / 1e3);
	else
		snprintf(buf, len, "%.2f s", us / 1e6);
	return buf;
}

static void report_human(const struct config *c, const struct stats *st, double secs, double cpu)
{
	const char *unit = c->mode == MODE_HTTP ? "responses" : "messages";
	char b[32];

	if (c->mode == MODE_HTTP)
		printf("http: %s, %.1f s, %d connections, %d thread(s), %s, depth %d\n", c->url,
		       secs, c->conns, c->threads, c->rate > 0 ? "open loop" : "closed loop", c->depth);
	else
		printf("%s: %d conns, %d B, depth %d, %.1f s\n", mode_names[c->mode], c->conns,
		       c->size, c->depth, secs);
	if (c->rate > 0)
		printf("  target     %.0f req/s\n", c->rate);
	printf("  %-10s %" PRIu64 " (%.1f/s), %.1f MB/s\n", unit, st->msgs,
	       (double)st->msgs / secs, (double)st->bytes / secs / 1e6);
	printf("  latency   ");
	for (size_t i = 0; i < NPCTS; i++)
		printf(" %s %s,", pct_labels[i],
		       human_us((double)hist_percentile(&st->lat, pcts[i]) / 1e3, b, sizeof(b)));
	printf(" max %s\n", human_us((double)st->lat.max / 1e3, b, sizeof(b)));
	if (c->mode == MODE_HTTP)
		printf("  status     1xx %" PRIu64 ", 2xx %" PRIu64 ", 3xx %" PRIu64 ", 4xx %" PRIu64
		       ", 5xx %" PRIu64 ", other %" PRIu64 "\n", st->status[1], st->status[2],
		       st->status[3], st->status[4], st->status[5], st->status[0]);
	printf("  errors     %" PRIu64 " (", errors_total(st));
	for (int k = 0; k < ERR_KINDS; k++)
		printf("%s%s %" PRIu64, k ? ", " : "", err_names[k], st->errors[k]);
	printf(")\n  client CPU %.2f s, %.2f us per %s\n", cpu,
	       st->msgs ? cpu * 1e6 / (double)st->msgs : 0.0,
	       c->mode == MODE_HTTP ? "response" : "message");
}

/* s as a JSON string. */
static void json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* One line of JSON. The keys of the older rill-load (mode, conns, size,
 * depth, seconds, msgs, rate, mbps, p50_us, p99_us, p999_us, errors,
 * client_cpu_s) keep their meaning; msgs counts http responses. */
static void report_json(const struct config *c, const struct stats *st, double secs, double cpu)
{
	printf("{\"mode\":\"%s\",\"conns\":%d,\"threads\":%d,\"size\":%d,\"depth\":%d,"
	       "\"seconds\":%.3f,\"msgs\":%" PRIu64 ",\"rate\":%.1f,\"mbps\":%.2f,",
	       mode_names[c->mode], c->conns, c->threads, c->size, c->depth, secs, st->msgs,
	       (double)st->msgs / secs, (double)st->bytes / secs / 1e6);
	if (c->mode == MODE_HTTP) {
		printf("\"url\":");
		json_string(c->url);
		printf(",\"target_rate\":%.1f,\"requests\":%" PRIu64 ","
		       "\"responses\":%" PRIu64 ",\"connects\":%" PRIu64 ",\"bytes\":%" PRIu64 ","
		       "\"status\":{\"1xx\":%" PRIu64 ",\"2xx\":%" PRIu64 ",\"3xx\":%" PRIu64
		       ",\"4xx\":%" PRIu64 ",\"5xx\":%" PRIu64 ",\"other\":%" PRIu64 "},",
		       c->rate, st->requests, st->msgs, st->connects, st->bytes,
		       st->status[1], st->status[2], st->status[3], st->status[4], st->status[5],
		       st->status[0]);
	}
	for (size_t i = 0; i < NPCTS; i++)
		printf("\"%s_us\":%.1f,", pct_keys[i],
		       (double)hist_percentile(&st->lat, pcts[i]) / 1e3);
	printf("\"max_us\":%.1f,\"mean_us\":%.1f,\"latency_samples\":%" PRIu64 ",",
	       (double)st->lat.max / 1e3, hist_mean(&st->lat) / 1e3, st->lat.n);
	printf("\"errors\":%" PRIu64 ",\"error_kinds\":{", errors_total(st));
	for (int k = 0; k < ERR_KINDS; k++)
		printf("%s\"%s\":%" PRIu64, k ? "," : "", err_names[k], st->errors[k]);
	printf("},\"client_cpu_s\":%.3f,\"cpu_us_per_msg\":%.3f}\n", cpu,
	       st->msgs ? cpu * 1e6 / (double)st->msgs : 0.0);
	fflush(stdout);
}

static int write_latency_file(const struct config *c, const struct stats *st)
{
	FILE *f = fopen(c->latency_file, "w");
	int err;

	if (!f) {
		fprintf(stderr, "rill-load: %s: %s\n", c->latency_file, strerror(errno));
		return -1;
	}
	err = hist_write_distribution(&st->lat, f, 1e3);
	if (fclose(f) != 0 || err < 0) {
		fprintf(stderr, "rill-load: %s: write failed\n", c->latency_file);
		return -1;
	}
	return 0;
}

static void merge(struct stats *total, const struct stats *st)
{
	total->msgs += st->msgs;
	total->requests += st->requests;
	total->bytes += st->bytes;
	total->connects += st->connects;
	for (int i = 0; i < 6; i++)
		total->status[i] += st->status[i];
	for (int k = 0; k < ERR_KINDS; k++)
		total->errors[k] += st->errors[k];
	hist_add(&total->lat, &st->lat);
}

/* Splits the connections over cfg->threads loops, each on its own thread
 * (pinned to the CPUs this process may use, in turn, when there are
 * several), reports progress, merges the counters and reports. Returns
 * the exit status. */
static int run_threads(struct config *cfg)
{
	int n = cfg->threads, started = 0, status = 0, result;
	struct run *runs = calloc((size_t)n, sizeof(*runs));
	rill_thread **th = calloc((size_t)n, sizeof(*th));
	struct stats total = { 0 };
	rill_time start = RILL_TIME_NEVER, end = 0;
	double cpu0 = rusage_cpu(), secs;

	if (!runs || !th || hist_init(&total.lat, LAT_HIGHEST, LAT_DIGITS) < 0)
		return 1;
	for (int i = 0; i < n; i++) {
		runs[i].cfg = cfg;
		runs[i].first_conn = cfg->conns * i / n;
		runs[i].nconns = cfg->conns * (i + 1) / n - runs[i].first_conn;
		if (hist_init(&runs[i].st.lat, LAT_HIGHEST, LAT_DIGITS) < 0)
			return 1;
	}
	for (; started < n; started++) {
		int err = rill_thread_start(NULL, n > 1 ? cpu_for(started) : -1, run_load,
					    &runs[started], &th[started]);

		if (err < 0) {
			fprintf(stderr, "rill-load: %s\n", rill_error_detail());
			status = 1;
			break;
		}
	}
	progress(runs, started, cfg);
	for (int i = 0; i < started; i++) {
		rill_thread_join(th[i], &result);
		if (result)
			status = 1;
		merge(&total, &runs[i].st);
		if (runs[i].start < start)
			start = runs[i].start;
		if (runs[i].end > end)
			end = runs[i].end;
		hist_free(&runs[i].st.lat);
	}
	secs = started && end > start ? (double)(end - start) / 1e9 : 1e-9;
	if (started) {
		report_human(cfg, &total, secs, rusage_cpu() - cpu0);
		report_json(cfg, &total, secs, rusage_cpu() - cpu0);
		if (cfg->latency_file && write_latency_file(cfg, &total) < 0)
			status = 1;
	}
	if (!status && errors_total(&total) > cfg->max_errors)
		status = 3;
	hist_free(&total.lat);
	free(runs);
	free(th);
	return status;
}

/* ---- options ------------------------------------------------------------ */

#define USAGE "rill-load http URL [options]\n" \
	"       rill-load echo|bulk|connect|idle --port P [options]"
#define OPTIONS \
	"http: HTTP/1.1 load on an http:// or https:// URL. echo, bulk, connect,\n" \
	"idle: rill's own echo benchmarks (see bench/rill-load.c).\n" \
	"\n" \
	"Load:\n" \
	"  -c, --connections N   connections (http: 10; echo, idle: 100; bulk: 1;\n" \
	"                        connect: tasks opening connections, 10)\n" \
	"  -D, --duration T      how long to run: 10, 10s, 500ms, 2m (default 5s)\n" \
	"  -t SECS               the same, in seconds (older spelling)\n" \
	"      --threads N       loops, one per thread, connections split evenly (1)\n" \
	"  -d, --depth N         requests (messages) in flight per connection: HTTP\n" \
	"                        pipelining (default 1)\n" \
	"  -R, --rate R          open loop: R requests/s in all, on a fixed schedule;\n" \
	"                        latency counts from when each request was due\n" \
	"  -n, --requests N      stop after N requests in all (http)\n" \
	"  -T, --timeout T       a response slower than T is a timeout error and its\n" \
	"                        connection is reopened (http; default 2s, 0: none)\n" \
	"\n" \
	"HTTP requests:\n" \
	"  -m, --method M        request method (GET; HEAD expects no body)\n" \
	"  -H, --header 'K: V'   add a header line; repeatable\n" \
	"  -b, --body TEXT       request body (Content-Length is added)\n" \
	"      --body-file FILE  request body from FILE\n" \
	"  -k, --insecure        https: do not verify the server's certificate\n" \
	"      --tls CAFILE      https: trust CAFILE (default: the system store);\n" \
	"                        echo modes: speak TLS, trusting CAFILE\n" \
	"\n" \
	"Echo modes:\n" \
	"      --host H          server address (127.0.0.1)\n" \
	"  -p, --port P          server port\n" \
	"  -s, --size N          message (bulk: write) size in bytes\n" \
	"\n" \
	"Output:\n" \
	"  -q, --quiet           no progress line each second\n" \
	"  -e, --max-errors N    exit 3 when there were more than N errors (0)\n" \
	"      --latency-file F  write the latency percentile distribution to F\n" \
	"                        (HdrHistogram text format, microseconds)\n" \
	"  -h, --help            print this and exit\n" \
	"\n" \
	"Errors are counted by kind: connect, read (connection lost or closed with\n" \
	"requests unanswered), write, timeout, protocol (unparseable response),\n" \
	"non2xx (a response outside 200-299). The summary and one JSON line go to\n" \
	"stdout. Exit status: 0, 1 when the run could not start, 2 for bad usage,\n" \
	"3 when errors passed --max-errors.\n"

enum { OPT_THREADS = 256, OPT_TLS, OPT_HOST, OPT_BODY_FILE, OPT_LATENCY_FILE };

static const struct option long_options[] = {
	{ "connections", required_argument, NULL, 'c' },
	{ "duration", required_argument, NULL, 'D' },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "depth", required_argument, NULL, 'd' },
	{ "pipeline", required_argument, NULL, 'd' },
	{ "rate", required_argument, NULL, 'R' },
	{ "requests", required_argument, NULL, 'n' },
	{ "timeout", required_argument, NULL, 'T' },
	{ "method", required_argument, NULL, 'm' },
	{ "header", required_argument, NULL, 'H' },
	{ "body", required_argument, NULL, 'b' },
	{ "body-file", required_argument, NULL, OPT_BODY_FILE },
	{ "insecure", no_argument, NULL, 'k' },
	{ "tls", required_argument, NULL, OPT_TLS },
	{ "host", required_argument, NULL, OPT_HOST },
	{ "port", required_argument, NULL, 'p' },
	{ "size", required_argument, NULL, 's' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "max-errors", required_argument, NULL, 'e' },
	{ "latency-file", required_argument, NULL, OPT_LATENCY_FILE },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

/* Bad usage, with what is wrong. */
static _Noreturn void usage(const char *why)
{
	fprintf(stderr, "%s: %s\n", program_invocation_name, why);
	bench_usage_error(USAGE);
}

/* A duration in seconds: "10", "2.5s", "500ms", "100us", "2m", "1h". */
static double parse_duration(const char *s, const char *what)
{
	static const struct { const char *unit; double secs; } units[] = {
		{ "", 1 }, { "s", 1 }, { "ms", 1e-3 }, { "us", 1e-6 }, { "m", 60 }, { "h", 3600 },
	};
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (!errno && end != s && v >= 0)
		for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strcmp(end, units[i].unit))
				return v * units[i].secs;
	fprintf(stderr, "%s: %s: bad duration '%s'\n", program_invocation_name, what, s);
	bench_usage_error(USAGE);
}

static char *read_file(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, len = 0, got;

	if (!f)
		return NULL;
	do {
		if (len == cap) {
			char *nb = realloc(buf, cap = cap ? 2 * cap : 4096);

			if (!nb) {
				free(buf);
				fclose(f);
				return NULL;
			}
			buf = nb;
		}
		got = fread(buf + len, 1, cap - len, f);
		len += got;
	} while (got > 0);
	fclose(f);
	*lenp = len;
	return buf;
}

static enum mode parse_mode(const char *s)
{
	for (size_t i = 0; i < sizeof(mode_names) / sizeof(mode_names[0]); i++)
		if (!strcmp(s, mode_names[i]))
			return (enum mode)i;
	fprintf(stderr, "%s: unknown mode '%s'\n", program_invocation_name, s);
	bench_usage_error(USAGE);
}

static void parse_option(struct config *c, int opt, const char *v, bool *body_file)
{
	switch (opt) {
	case 'c': c->conns = (int)bench_int(USAGE, "--connections", v, 1, 1000000); break;
	case 'D': case 't': c->secs = parse_duration(v, "--duration"); break;
	case OPT_THREADS: c->threads = (int)bench_int(USAGE, "--threads", v, 1, 1024); break;
	case 'd': c->depth = (int)bench_int(USAGE, "--depth", v, 1, 1 << 20); break;
	case 'R': c->rate = (double)bench_int(USAGE, "--rate", v, 1, 100000000); break;
	case 'n': c->requests = (uint64_t)bench_int(USAGE, "--requests", v, 1, INT64_MAX); break;
	case 'T': c->timeout = (rill_time)(parse_duration(v, "--timeout") * 1e9); break;
	case 'm': c->method = v; break;
	case 'H':
		if (c->nheaders == MAX_HEADERS || !strchr(v, ':'))
			usage("--header: 'Name: value', at most 64 of them");
		c->headers[c->nheaders++] = v;
		break;
	case 'b': c->body = v, c->body_len = strlen(v), *body_file = false; break;
	case OPT_BODY_FILE: c->body = v, *body_file = true; break;
	case 'k': c->insecure = true; break;
	case OPT_TLS: c->cafile = v; break;
	case OPT_HOST: c->host = v; break;
	case 'p': c->port = (int)bench_int(USAGE, "--port", v, 1, 65535); break;
	case 's': c->size = (int)bench_int(USAGE, "--size", v, 1, 1 << 30); break;
	case 'q': c->quiet = 1; break;
	case 'e': c->max_errors = (uint64_t)bench_int(USAGE, "--max-errors", v, 0, INT64_MAX); break;
	case OPT_LATENCY_FILE: c->latency_file = v; break;
	case 'h': bench_help(USAGE, OPTIONS);
	default: bench_usage_error(USAGE);
	}
}

/* The options (anywhere: GNU getopt moves the operands to the end, and no
 * option here takes two arguments), the mode and URL, the mode's defaults
 * for what was not given, then the checks between them. */
static void parse_args(int argc, char **argv, struct config *c)
{
	bool body_file = false;
	int opt;

	while ((opt = getopt_long(argc, argv, "c:D:t:d:R:n:T:m:H:b:kp:s:qe:h",
				  long_options, NULL)) != -1)
		parse_option(c, opt, optarg, &body_file);
	if (optind >= argc)
		usage("which load: http, echo, bulk, connect or idle?");
	c->mode = parse_mode(argv[optind++]);
	if (c->mode == MODE_HTTP) {
		if (optind >= argc)
			usage("http needs a URL");
		c->url = argv[optind++];
	}
	bench_no_operands(USAGE, argc, argv, optind);
	if (!c->conns)
		c->conns = c->mode == MODE_BULK ? 1 : c->mode == MODE_CONNECT ||
			   c->mode == MODE_HTTP ? 10 : 100;
	if (!c->size)
		c->size = c->mode == MODE_BULK ? 65536 : 64;
	if (c->mode != MODE_HTTP && !c->port)
		usage("--port is needed");
	if (c->secs <= 0 || c->secs > 24 * 3600)
		usage("--duration: more than 0, at most a day");
	if (c->threads > c->conns)
		usage("--threads: at most one per connection");
	if (c->mode != MODE_HTTP && (c->rate > 0 || c->requests || c->nheaders || c->body))
		usage("--rate, --requests, --header and --body are for http");
	if (body_file && !(c->body = read_file(c->body, &c->body_len))) {
		fprintf(stderr, "%s: --body-file: %s\n", program_invocation_name, strerror(errno));
		exit(2);
	}
	c->body_file = body_file;
}

/* ---- the http request ----------------------------------------------------- */

#ifdef RILL_HAVE_HTTP_PARSER

static bool has_header(const struct config *c, const char *name)
{
	size_t n = strlen(name);

	for (int i = 0; i < c->nheaders; i++)
		if (!strncasecmp(c->headers[i], name, n) && c->headers[i][n] == ':')
			return true;
	return false;
}

/* Splits the URL into scheme, host, port and target, and builds the
 * request every connection sends. */
static int http_setup(struct config *c)
{
	struct http_parser_url u;
	const char *url = c->url, *target = "/";
	char *host, *req;
	size_t target_len = 1, cap;
	int len;

	http_parser_url_init(&u);
	if (http_parser_parse_url(url, strlen(url), 0, &u) || !(u.field_set & (1 << UF_HOST)) ||
	    !(u.field_set & (1 << UF_SCHEMA)))
		return fprintf(stderr, "rill-load: bad URL '%s'\n", url), -1;
	if (u.field_data[UF_SCHEMA].len == 5 && !strncasecmp(url, "https", 5))
		c->https = true;
	else if (u.field_data[UF_SCHEMA].len != 4 || strncasecmp(url, "http", 4))
		return fprintf(stderr, "rill-load: '%s': http:// or https:// only\n", url), -1;
	host = strndup(url + u.field_data[UF_HOST].off, u.field_data[UF_HOST].len);
	if (!host)
		return -1;
	c->host = c->url_host = host;
	c->port = u.field_set & (1 << UF_PORT) ? u.port : c->https ? 443 : 80;
	if (u.field_set & (1 << UF_PATH)) {
		target = url + u.field_data[UF_PATH].off;
		/* The path runs on through the query, not into the fragment. */
		target_len = u.field_set & (1 << UF_QUERY)
				     ? (size_t)(u.field_data[UF_QUERY].off + u.field_data[UF_QUERY].len -
						u.field_data[UF_PATH].off)
				     : u.field_data[UF_PATH].len;
	}
	c->head = !strcasecmp(c->method, "HEAD");
	cap = strlen(c->method) + target_len + strlen(host) + c->body_len + 128;
	for (int i = 0; i < c->nheaders; i++)
		cap += strlen(c->headers[i]) + 2;
	if (!(req = malloc(cap)))
		return -1;
	len = snprintf(req, cap, "%s %.*s HTTP/1.1\r\n", c->method, (int)target_len, target);
	if (!has_header(c, "Host")) {
		len += snprintf(req + len, cap - (size_t)len,
				strchr(host, ':') ? "Host: [%s]" : "Host: %s", host);
		if (u.field_set & (1 << UF_PORT))
			len += snprintf(req + len, cap - (size_t)len, ":%d", c->port);
		len += snprintf(req + len, cap - (size_t)len, "\r\n");
	}
	for (int i = 0; i < c->nheaders; i++)
		len += snprintf(req + len, cap - (size_t)len, "%s\r\n", c->headers[i]);
	/* A body, or a method that expects one, says how long it is. */
	if ((c->body || !strcasecmp(c->method, "POST") || !strcasecmp(c->method, "PUT") ||
	     !strcasecmp(c->method, "PATCH")) && !has_header(c, "Content-Length"))
		len += snprintf(req + len, cap - (size_t)len, "Content-Length: %zu\r\n", c->body_len);
	len += snprintf(req + len, cap - (size_t)len, "\r\n");
	if (c->body_len)
		memcpy(req + len, c->body, c->body_len);
	c->request = req;
	c->request_len = (size_t)len + c->body_len;
	return 0;
}

#else

static int http_setup(struct config *c)
{
	(void)c;
	fprintf(stderr, "rill-load: http: built without libhttp-parser (libhttp-parser-dev)\n");
	return -1;
}

#endif

/* Whether a blocking connect to ai succeeds within timeout_s. */
static bool reachable(const struct addrinfo *ai, double timeout_s)
{
	struct timeval tv = { (time_t)timeout_s, (long)((timeout_s - (double)(time_t)timeout_s) * 1e6) };
	int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok;

	if (fd < 0)
		return false;
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));	/* bounds connect */
	ok = connect(fd, ai->ai_addr, ai->ai_addrlen) == 0;
	close(fd);
	return ok;
}

/* Resolves the host once, as wrk does: the first address that accepts a
 * connection (localhost may be ::1 first with a server on 127.0.0.1 only),
 * else the first address. Every connection then goes to that address. */
static int resolve(struct config *c)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res, *ai, *pick;
	int err = getaddrinfo(c->host, NULL, &hints, &res);
	double timeout = c->timeout ? (double)c->timeout / 1e9 : 2;
	const void *a;

	if (err)
		return fprintf(stderr, "rill-load: %s: %s\n", c->host, gai_strerror(err)), -1;
	for (ai = res; ai; ai = ai->ai_next)	/* sin_port and sin6_port lie alike */
		((struct sockaddr_in *)ai->ai_addr)->sin_port = htons((uint16_t)c->port);
	for (pick = res; pick && res->ai_next && !reachable(pick, timeout);)
		pick = pick->ai_next;
	if (!pick)
		pick = res;
	if (pick->ai_family == AF_INET6)
		a = &((struct sockaddr_in6 *)pick->ai_addr)->sin6_addr;
	else
		a = &((struct sockaddr_in *)pick->ai_addr)->sin_addr;
	inet_ntop(pick->ai_family, a, c->addr, sizeof(c->addr));
	freeaddrinfo(res);
	return 0;
}

/* One client context for every connection of every loop: --tls CAFILE,
 * an https URL, or both. */
static int tls_context(struct config *c)
{
	if (c->mode == MODE_HTTP ? !c->https : !c->cafile)
		return 0;
#ifdef RILL_HAVE_TLS
	rill_tls_options o = RILL_TLS_OPTIONS_INIT;
	int err;

	o.ca_file = c->cafile;
	o.insecure = c->insecure;
	err = rill_tls_ctx_new_client(&o, &c->tls);

	if (err < 0)
		fprintf(stderr, "rill-load: TLS: %s (%s)\n", rill_strerror(err),
			rill_tls_last_error());
	return err;
#else
	fprintf(stderr, "rill-load: TLS is not available in this build\n");
	return RILL_ETLS_NOT_AVAILABLE;
#endif
}

static void config_free(struct config *c)
{
	free(c->request);
	free(c->url_host);
	if (c->body_file)
		free((char *)c->body);
}

int main(int argc, char **argv)
{
	struct config cfg = { .host = "127.0.0.1", .depth = 1,
			      .secs = 5, .threads = 1, .method = "GET",
			      .timeout = 2 * RILL_NSEC_PER_SEC };
	int result;

	parse_args(argc, argv, &cfg);
	if (cfg.mode == MODE_HTTP && http_setup(&cfg) < 0) {
		config_free(&cfg);
		return 2;
	}
	if (resolve(&cfg) < 0 || tls_context(&cfg) < 0) {
		config_free(&cfg);
		return 1;
	}
	raise_nofile();
	result = run_threads(&cfg);
#ifdef RILL_HAVE_TLS
	rill_tls_ctx_free(cfg.tls);
#endif
	config_free(&cfg);
	return result;
}
