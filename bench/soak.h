/* SPDX-License-Identifier: MIT */
/* bench/soak.h: the integrity soak, shared by tests/test_reliability_integrity.c
 * (CI: a few hundred connections, seconds) and bench/rill-soak.c (minutes,
 * millions of messages).
 *
 * Clients on a loop of their own (a second thread) talk to a rill echo
 * server. Every message carries a sequence number and a checksum of its
 * body; the server checks both and echoes the message, the client compares
 * the echo with what it sent. Each connection picks a way to end:
 *   clean         reads every echo, then closes;
 *   half-close    write_eof() with echoes outstanding, reads them, then EOF;
 *   client reset  pipelines some messages and resets (SO_LINGER 0 + abort);
 *   server reset  asks the server to reset it and expects -ECONNRESET.
 * Random lengths (sometimes far past the reader limit), random pipelining
 * depth and random pauses vary the timing. Each side checks that its end
 * of every connection ended the way the mode says, and nothing else.
 */
#ifndef RILL_BENCH_SOAK_H
#define RILL_BENCH_SOAK_H

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <rill.h>

struct soak_config {
	unsigned conns;		/* connections to run (at least) */
	unsigned concurrency;	/* at most this many open at once */
	rill_time duration;	/* 0: stop after conns; else start new ones until then */
	unsigned max_msgs;	/* messages per connection: 1..max_msgs */
	size_t max_len;		/* body length: 0..max_len ... */
	size_t big_len;		/* ... and one message in 32 up to big_len */
	unsigned max_depth;	/* messages in flight before reading an echo */
	unsigned pause_ms;	/* one step in 8 sleeps 0..pause_ms */
	unsigned pct_half, pct_client_reset, pct_server_reset; /* rest: clean */
	uint64_t seed;
	int server_threads;	/* rill_server_options.threads */
	bool progress;		/* a line on stderr every 10 s */
};

/* Figures of a run; the counters are bumped from both loops. */
struct soak_stats {
	atomic_uint_fast64_t conns, clean, half, client_resets, server_resets;
	atomic_uint_fast64_t msgs, bytes;	/* sent by clients, echoed back */
	atomic_uint_fast64_t server_msgs, server_bytes;
	atomic_uint_fast64_t failures;	/* anything not as expected */
	atomic_uint_fast64_t connect_errors;
	atomic_flag have_first;
	char first[256];	/* the first failure, in words */
};

enum soak_mode { SOAK_CLEAN, SOAK_HALF, SOAK_CLIENT_RESET, SOAK_SERVER_RESET };

#define SOAK_MAGIC 0x5e11a5e1u
#define SOAK_RESET_ME 1u

struct soak_hdr {
	uint32_t len, seq, flags, sum;
};

struct soak_hello {
	uint32_t magic, mode;
};

/* ---- helpers ------------------------------------------------------- */

static uint64_t soak_rand(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint32_t soak_sum(const void *p, size_t n)
{
	const unsigned char *b = p;
	uint32_t h = 2166136261u;

	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

static void soak_fail(struct soak_stats *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void soak_fail(struct soak_stats *st, const char *fmt, ...)
{
	va_list ap;

	atomic_fetch_add(&st->failures, 1);
	if (atomic_flag_test_and_set(&st->have_first))
		return;
	va_start(ap, fmt);
	vsnprintf(st->first, sizeof(st->first), fmt, ap);
	va_end(ap);
}

static bool soak_is_reset(int err)
{
	return err == -ECONNRESET || err == -EPIPE;
}

/* SO_LINGER 0: the close that follows sends RST instead of FIN. */
static void soak_linger0(rill_writer *w)
{
	const int *fd = rill_writer_get_extra_info(w, "socket", NULL);
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	if (fd && *fd >= 0)
		setsockopt(*fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* ---- the server ---------------------------------------------------- */

struct soak_server_conn {
	struct soak_stats *st;
	rill_reader *r;
	rill_writer *w;
	size_t max;
	char *body;
	uint32_t mode, seq;
};

/* One message: 1 echoed, 0 reset as asked, < 0 the connection ended
 * (RILL_EINCOMPLETE with nothing read: EOF at a message boundary). */
static int soak_server_msg(struct soak_server_conn *sc)
{
	struct soak_hdr h;
	ssize_t n = rill_reader_readexactly(sc->r, &h, sizeof(h));

	if (n < 0)
		return n == RILL_EINCOMPLETE && rill_reader_error_info(sc->r)->partial_len == 0
			? 0x7fff : (int)n;
	if (h.seq != sc->seq || h.len > sc->max) {
		soak_fail(sc->st, "server: message %u of %u bytes, expected seq %u",
			  h.seq, h.len, sc->seq);
		return -EBADMSG;
	}
	if ((n = rill_reader_readexactly(sc->r, sc->body, h.len)) < 0)
		return (int)n;
	if (soak_sum(sc->body, h.len) != h.sum) {
		soak_fail(sc->st, "server: checksum of message %u (%u bytes)", h.seq, h.len);
		return -EBADMSG;
	}
	sc->seq++;
	atomic_fetch_add(&sc->st->server_msgs, 1);
	atomic_fetch_add(&sc->st->server_bytes, h.len);
	if (h.flags & SOAK_RESET_ME)
		return 0;
	rill_writer_write(sc->w, &h, sizeof(h));
	rill_writer_write(sc->w, sc->body, h.len);
	n = rill_writer_drain(sc->w);
	return n < 0 ? (int)n : 1;
}

/* How the server's side of a connection ended, against its mode. */
static void soak_server_end(struct soak_server_conn *sc, int end)
{
	bool ok;

	switch (sc->mode) {
	case SOAK_CLEAN:
	case SOAK_HALF:
		ok = end == 0x7fff;
		break;
	case SOAK_CLIENT_RESET:
		ok = soak_is_reset(end);
		break;
	default:
		ok = end == 0;
		break;
	}
	if (!ok)
		soak_fail(sc->st, "server: mode %u connection ended with %s after %u messages",
			  sc->mode, end == 0x7fff ? "EOF" : rill_err_name(end), sc->seq);
}

static int soak_serve(rill_reader *r, rill_writer *w, void *arg)
{
	const struct soak_config *cfg = ((void **)arg)[0];
	struct soak_server_conn sc = { .st = ((void **)arg)[1], .r = r, .w = w,
				       .max = cfg->big_len > cfg->max_len ?
					      cfg->big_len : cfg->max_len };
	struct soak_hello hello;
	int end;

	ssize_t n = rill_reader_readexactly(r, &hello, sizeof(hello));

	if (n < 0 || hello.magic != SOAK_MAGIC) {
		/* A client that resets at once may do so before its hello is
		 * read: the reset wins over buffered bytes. Nothing else. */
		if (!soak_is_reset((int)n))
			soak_fail(sc.st, "server: no hello: %s", rill_err_name((int)n));
		rill_writer_close(w);
		return 0;
	}
	sc.mode = hello.mode;
	if (!(sc.body = malloc(sc.max ? sc.max : 1))) {
		soak_fail(sc.st, "server: out of memory");
		return 0;
	}
	while ((end = soak_server_msg(&sc)) == 1)
		;
	soak_server_end(&sc, end);
	if (end == 0) {
		soak_linger0(w);
		rill_writer_abort(w);
	} else {
		rill_writer_close(w);
	}
	free(sc.body);
	return 0;
}

/* ---- a client ------------------------------------------------------ */

struct soak_sent {
	char *msg;		/* header and body, as sent */
	size_t len;
};

struct soak_client {
	const struct soak_config *cfg;
	struct soak_stats *st;
	int port;
	uint64_t rng;
	rill_reader *r;
	rill_writer *w;
	struct soak_sent *out;	/* messages not yet echoed, oldest first */
	unsigned nout;
	char *echo;
	uint32_t seq;
	enum soak_mode mode;
};

static size_t soak_pick_len(struct soak_client *c)
{
	const struct soak_config *cfg = c->cfg;

	if (cfg->big_len > cfg->max_len && soak_rand(&c->rng) % 32 == 0)
		return (size_t)(soak_rand(&c->rng) % (cfg->big_len + 1));
	return (size_t)(soak_rand(&c->rng) % (cfg->max_len + 1));
}

/* Queues one message (flags: SOAK_RESET_ME) and remembers it. */
static int soak_send(struct soak_client *c, uint32_t flags)
{
	size_t len = soak_pick_len(c);
	struct soak_hdr h = { .len = (uint32_t)len, .seq = c->seq++, .flags = flags };
	char *m = malloc(sizeof(h) + len);

	if (!m)
		return -ENOMEM;
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = soak_rand(&c->rng);

		memcpy(m + sizeof(h) + i, &v, len - i < 8 ? len - i : 8);
	}
	h.sum = soak_sum(m + sizeof(h), len);
	memcpy(m, &h, sizeof(h));
	c->out[c->nout++] = (struct soak_sent){ m, sizeof(h) + len };
	return rill_writer_write(c->w, m, sizeof(h) + len);
}

/* Reads the echo of the oldest message and compares it. */
static int soak_check_echo(struct soak_client *c)
{
	struct soak_sent s = c->out[0];
	ssize_t n = rill_reader_readexactly(c->r, c->echo, s.len);

	if (n < 0) {
		soak_fail(c->st, "client mode %d: echo of message %u: %s", c->mode,
			  c->seq - c->nout, rill_err_name((int)n));
		return (int)n;
	}
	if (memcmp(c->echo, s.msg, s.len)) {
		soak_fail(c->st, "client: echo of message %u differs", c->seq - c->nout);
		return -EBADMSG;
	}
	free(s.msg);
	memmove(c->out, c->out + 1, --c->nout * sizeof(*c->out));
	atomic_fetch_add(&c->st->msgs, 1);
	atomic_fetch_add(&c->st->bytes, s.len - sizeof(struct soak_hdr));
	return 0;
}

static int soak_drain_echoes(struct soak_client *c)
{
	int err = 0;

	while (c->nout && err == 0)
		err = soak_check_echo(c);
	return err;
}

static void soak_maybe_pause(struct soak_client *c)
{
	if (c->cfg->pause_ms && soak_rand(&c->rng) % 8 == 0)
		rill_sleep_ms(soak_rand(&c->rng) % (c->cfg->pause_ms + 1));
}

/* The body of a connection: nmsgs messages, at most depth in flight. */
static int soak_exchange(struct soak_client *c, unsigned nmsgs, unsigned depth)
{
	int err;

	for (unsigned i = 0; i < nmsgs; i++) {
		if ((err = soak_send(c, 0)) < 0)
			return err;
		if (c->nout >= depth) {
			if ((err = rill_writer_drain(c->w)) < 0 ||
			    (err = soak_check_echo(c)) < 0)
				return err;
		}
		soak_maybe_pause(c);
	}
	return rill_writer_drain(c->w);
}

static void soak_expect(struct soak_client *c, bool ok, const char *what, int got)
{
	if (!ok)
		soak_fail(c->st, "client mode %d: %s, got %s", c->mode, what,
			  rill_err_name(got));
}

/* The ending the mode asks for; err is how the exchange went. */
static void soak_client_end(struct soak_client *c, int err)
{
	char byte;
	ssize_t n;

	if (err < 0) {
		soak_expect(c, false, "exchange failed", err);
		rill_writer_abort(c->w);
		return;
	}
	switch (c->mode) {
	case SOAK_CLEAN:
		err = soak_drain_echoes(c);
		rill_writer_close(c->w);
		atomic_fetch_add(&c->st->clean, err == 0);
		break;
	case SOAK_HALF:
		rill_writer_write_eof(c->w);
		if ((err = soak_drain_echoes(c)) == 0) {
			n = rill_reader_read(c->r, &byte, 1);
			soak_expect(c, n == 0, "EOF after the last echo", (int)n);
		}
		rill_writer_close(c->w);
		atomic_fetch_add(&c->st->half, err == 0);
		break;
	case SOAK_CLIENT_RESET:
		soak_linger0(c->w);
		rill_writer_abort(c->w);
		atomic_fetch_add(&c->st->client_resets, 1);
		break;
	case SOAK_SERVER_RESET:
		if ((err = soak_drain_echoes(c)) < 0)
			break;
		soak_send(c, SOAK_RESET_ME);
		n = rill_reader_read(c->r, &byte, 1);
		soak_expect(c, n == -ECONNRESET, "a reset from the server", (int)n);
		free(c->out[--c->nout].msg);
		atomic_fetch_add(&c->st->server_resets, 1);
		break;
	}
}

static enum soak_mode soak_pick_mode(struct soak_client *c)
{
	unsigned p = (unsigned)(soak_rand(&c->rng) % 100);
	const struct soak_config *cfg = c->cfg;

	if (p < cfg->pct_half)
		return SOAK_HALF;
	if ((p -= cfg->pct_half) < cfg->pct_client_reset)
		return SOAK_CLIENT_RESET;
	if ((p -= cfg->pct_client_reset) < cfg->pct_server_reset)
		return SOAK_SERVER_RESET;
	return SOAK_CLEAN;
}

static void soak_one(struct soak_client *c)
{
	unsigned nmsgs = 1 + (unsigned)(soak_rand(&c->rng) % c->cfg->max_msgs);
	unsigned depth = 1 + (unsigned)(soak_rand(&c->rng) % c->cfg->max_depth);
	struct soak_hello hello = { SOAK_MAGIC, 0 };
	int err;

	c->mode = soak_pick_mode(c);
	hello.mode = c->mode;
	c->seq = 0;
	err = rill_open_connection("127.0.0.1", c->port, NULL, &c->r, &c->w);
	if (err < 0) {
		atomic_fetch_add(&c->st->connect_errors, 1);
		soak_fail(c->st, "client: connect: %s", rill_strerror(err));
		return;
	}
	atomic_fetch_add(&c->st->conns, 1);
	rill_writer_write(c->w, &hello, sizeof(hello));
	err = soak_exchange(c, nmsgs, depth);
	soak_client_end(c, err);
	while (c->nout)
		free(c->out[--c->nout].msg);
	rill_writer_wait_closed(c->w);
	rill_writer_free(c->w);
}

/* ---- running it ---------------------------------------------------- */

struct soak_run {
	const struct soak_config *cfg;
	struct soak_stats *st;
	int port;
	unsigned started;
	rill_time start, end;
};

static bool soak_more(struct soak_run *run)
{
	if (run->cfg->duration)
		return rill_now() < run->end;
	return run->started < run->cfg->conns;
}

/* One of cfg->concurrency workers: connection after connection. */
static int soak_worker(void *arg)
{
	struct soak_run *run = arg;
	size_t big = run->cfg->big_len > run->cfg->max_len ? run->cfg->big_len
							   : run->cfg->max_len;
	struct soak_client c = { .cfg = run->cfg, .st = run->st, .port = run->port };
	int err = -ENOMEM;

	c.out = calloc(run->cfg->max_depth + 1, sizeof(*c.out));
	c.echo = malloc(sizeof(struct soak_hdr) + big);
	if (c.out && c.echo) {
		err = 0;
		while (soak_more(run)) {
			c.rng = run->cfg->seed * 1000003u + run->started++;
			soak_one(&c);
		}
	}
	free(c.out);
	free(c.echo);
	return err;
}

static void soak_report(FILE *f, const struct soak_run *run)
{
	struct soak_stats *st = run->st;
	double secs = (double)(rill_now() - run->start) / 1e9;

	fprintf(f, "soak: %.1f s: %" PRIuFAST64 " connections (%" PRIuFAST64 " clean, %"
		PRIuFAST64 " half-closed, %" PRIuFAST64 " reset by the client, %" PRIuFAST64
		" reset by the server), %" PRIuFAST64 " messages and %" PRIuFAST64
		" bytes echoed intact, %" PRIuFAST64 " failures\n", secs,
		atomic_load(&st->conns), atomic_load(&st->clean), atomic_load(&st->half),
		atomic_load(&st->client_resets), atomic_load(&st->server_resets),
		atomic_load(&st->msgs), atomic_load(&st->bytes), atomic_load(&st->failures));
	fflush(f);
}

static int soak_progress(void *arg)
{
	struct soak_run *run = arg;

	while (rill_sleep_ms(10000) == 0)
		soak_report(stderr, run);
	return 0;
}

/* The client loop's task: the workers, then the end. */
static int soak_clients(void *arg)
{
	struct soak_run *run = arg;
	rill_task **t = calloc(run->cfg->concurrency, sizeof(*t));
	rill_task *progress = NULL;
	int err = 0, res;

	if (!t)
		return -ENOMEM;
	if (run->cfg->progress)
		rill_spawn(rill_loop_current(), soak_progress, run, &progress);
	for (unsigned i = 0; i < run->cfg->concurrency && err == 0; i++)
		err = rill_spawn(rill_loop_current(), soak_worker, run, &t[i]);
	for (unsigned i = 0; i < run->cfg->concurrency; i++)
		if (t[i] && rill_task_join(t[i], &res) == 0 && res < 0)
			err = res;
	if (progress) {
		rill_task_cancel(progress);
		rill_task_join(progress, NULL);
	}
	free(t);
	return err;
}

/* Runs the soak from inside a task: an echo server on this loop, the
 * clients on a loop of their own. Returns 0 or the first setup error;
 * integrity failures are counted in st (st->first says the first). */
static int soak_run(const struct soak_config *cfg, struct soak_stats *st)
{
	void *sarg[2] = { (void *)cfg, st };
	rill_server_options so = { .size = sizeof(rill_server_options), .sock = -1,
		.backlog = 4096, .threads = cfg->server_threads };
	struct soak_run run = { .cfg = cfg, .st = st, .start = rill_now() };
	rill_thread *clients;
	rill_server *s;
	rill_time saved;
	int err, res = 0;

	run.end = run.start + cfg->duration;
	if ((err = rill_start_server(soak_serve, sarg, "127.0.0.1", 0, &so, &s)) < 0)
		return err;
	run.port = rill_server_port(s);
	if ((err = rill_thread_start(NULL, -1, soak_clients, &run, &clients)) == 0)
		err = rill_thread_join(clients, &res);
	if (err == 0)
		err = res;
	/* Every client has ended; so must every server side, soon. */
	rill_server_close(s);
	saved = rill_deadline_push(10 * RILL_NSEC_PER_SEC);
	if (rill_server_wait_closed(s) < 0)
		soak_fail(st, "server: connections still open 10 s after the clients ended");
	rill_deadline_pop(saved);
	rill_server_free(s);
	return err;
}

#endif
