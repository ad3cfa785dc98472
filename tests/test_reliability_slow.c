/* SPDX-License-Identifier: MIT */
/* Slow peers: a flood into a handler that does not read, a peer that does not read our writes, a 100 MB line without a newline; memory stays bounded and other connections keep going. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>

#include "tests/helpers.h"

TestSuite(reliability_slow, .timeout = 60);

#define KIB 1024ul
#define MIB (1024ul * 1024ul)
#define LIMIT RILL_STREAM_LIMIT_DEFAULT

/* What lands in a reader after it decided to pause. A multishot recv
 * delivers a whole batch of completions at once: at most the loop's buffer
 * ring (512 x 16 KiB by default), in practice the socket's queue (about
 * 1.5 MiB from a loopback flood). After the first pause the reader is held
 * to one recv at a time until it catches up, so a slow consumer overshoots
 * by one ring buffer (16 KiB); ONE_RECV leaves room for a bundle. */
#define BATCH (512 * 16 * KIB)
#define ONE_RECV (64 * KIB)
/* RSS: the ring's memory is touched once per loop (BATCH), the reader
 * holds its buffer, plus a few MiB of malloc and thread slack. */
#define RSS_BOUND (BATCH + 2 * LIMIT + BATCH + 4 * MIB)
/* AddressSanitizer keeps freed memory in quarantine (256 MiB) and adds
 * shadow memory: RSS says nothing about rill there. */
#if defined(__SANITIZE_ADDRESS__)
#define RSS_CHECKED 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RSS_CHECKED 0
#endif
#endif
#ifndef RSS_CHECKED
#define RSS_CHECKED 1
#endif

/* ---- helpers ------------------------------------------------------- */

static long vm_rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

/* Sends n bytes (blocking), within deadline; returns what went out. */
static size_t send_until(int fd, const void *p, size_t n, rill_time deadline)
{
	size_t done = 0;

	while (done < n && rill_now() < deadline) {
		struct pollfd pf = { .fd = fd, .events = POLLOUT };
		ssize_t k;

		if (poll(&pf, 1, 20) != 1)
			continue;
		k = send(fd, (const char *)p + done, n - done, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (k < 0 && (errno == EAGAIN || errno == EINTR))
			continue;
		if (k <= 0)
			break;
		done += (size_t)k;
	}
	return done;
}

/* ---- (a) a flood into a handler that does not read ------------------
 *
 * A peer thread sends a byte pattern, up to 1 GiB, for FLOOD_SECS. The
 * handler does not read at all for the first second, then reads slowly
 * for a second, then reads everything until EOF and checks the pattern.
 * Meanwhile a second connection makes echo round trips on the same loop.
 */

#define FLOOD_MAX (1024 * MIB)
#define FLOOD_NS (3000 * MS)
#define IDLE_NS (1000 * MS)
#define SLOW_NS (1000 * MS)

struct flood {
	int port;
	rill_time start;
	atomic_uint_fast64_t sent;	/* by the peer thread */
	atomic_bool sender_done;
	/* seen by the handler */
	size_t most_idle, most_slow, most_fast;
	bool settled;
	long rss_before, rss_most;
	uint64_t got;
	bool pattern_ok, ended;
	/* the echo connection */
	unsigned round_trips;
	rill_time worst_rtt;
	int echo_err;
};

static void *flood_peer(void *arg)
{
	struct flood *f = arg;
	static unsigned char buf[256 * KIB];
	rill_time deadline = f->start + FLOOD_NS;
	uint64_t off = 0;
	int fd = tcp_connect(f->port);

	if (fd < 0 || send(fd, "flood\n", 6, MSG_NOSIGNAL) != 6)
		return (void *)1;
	while (off < FLOOD_MAX && rill_now() < deadline) {
		size_t k;

		fill_pat(buf, off, sizeof(buf));
		k = send_until(fd, buf, sizeof(buf), deadline);
		off += k;
		atomic_store(&f->sent, off);
		if (k < sizeof(buf))
			break;
	}
	close(fd);
	atomic_store(&f->sender_done, true);
	return NULL;
}

/* The most the reader held; in the reading phases, counted from the first
 * time it was back under 2 x limit (what the idle phase left is read off
 * first). */
static void flood_sample(struct flood *f, rill_reader *r, size_t *most)
{
	size_t b = rill_reader_buffered(r);
	long rss = vm_rss_kib();

	if (b <= 2 * LIMIT)
		f->settled = true;
	if (b > *most && (f->settled || most == &f->most_idle))
		*most = b;
	if (rss > f->rss_most)
		f->rss_most = rss;
}

/* Reads n bytes (or to EOF) and checks them against the pattern. */
static ssize_t flood_read(struct flood *f, rill_reader *r, size_t n)
{
	static unsigned char buf[64 * KIB];
	ssize_t k = rill_reader_read(r, buf, n < sizeof(buf) ? n : sizeof(buf));

	if (k > 0) {
		f->pattern_ok &= pat_ok(buf, f->got, (size_t)k);
		f->got += (uint64_t)k;
	}
	return k;
}

static void flood_handle(struct flood *f, rill_reader *r)
{
	ssize_t k;

	f->pattern_ok = true;
	f->settled = false;
	while (rill_now() < f->start + IDLE_NS) {
		flood_sample(f, r, &f->most_idle);
		rill_sleep_ms(1);
	}
	/* 16 KiB a millisecond at most: slower than the peer can send. */
	f->settled = false;
	while (rill_now() < f->start + IDLE_NS + SLOW_NS) {
		flood_sample(f, r, &f->most_slow);
		if (flood_read(f, r, 16 * KIB) <= 0)
			return;
		rill_sleep_ms(1);
	}
	do {
		flood_sample(f, r, &f->most_fast);
	} while ((k = flood_read(f, r, SIZE_MAX)) > 0);
	f->ended = k == 0;
}

static int flood_or_echo(rill_reader *r, rill_writer *w, void *arg)
{
	struct flood *f = arg;
	rill_bytes line;
	ssize_t n = rill_reader_readline(r, &line);

	if (n == 6 && !memcmp(line.data, "flood\n", 6))
		flood_handle(f, r);
	else if (n > 0)
		do
			rill_writer_write(w, line.data, line.len);
		while (rill_writer_drain(w) == 0 && rill_reader_readline(r, &line) > 0);
	rill_writer_close(w);
	return 0;
}

/* Round trips of a 1 KiB line for as long as the flood lasts. */
static int echo_client(void *arg)
{
	struct flood *f = arg;
	char msg[1024];
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	int err;

	memset(msg, 'e', sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\n';
	if ((err = rill_open_connection("127.0.0.1", f->port, NULL, &r, &w)) < 0)
		return f->echo_err = err;
	while (rill_now() < f->start + IDLE_NS + SLOW_NS) {
		rill_time t0 = rill_now();
		ssize_t n;

		rill_writer_write(w, msg, sizeof(msg));
		n = rill_reader_readline(r, &line);
		if (n != (ssize_t)sizeof(msg) || memcmp(line.data, msg, sizeof(msg))) {
			f->echo_err = n < 0 ? (int)n : -EBADMSG;
			break;
		}
		f->round_trips++;
		if (rill_now() - t0 > f->worst_rtt)
			f->worst_rtt = rill_now() - t0;
	}
	writer_done(w);
	return 0;
}

static int flood_body(void *arg)
{
	struct flood *f = arg;
	rill_server *s;
	rill_task *echo;
	pthread_t peer;
	void *pres;

	cr_assert_eq(rill_start_server(flood_or_echo, f, "127.0.0.1", 0, NULL, &s), 0);
	f->port = rill_server_port(s);
	f->rss_before = f->rss_most = vm_rss_kib();
	f->start = rill_now();
	cr_assert_eq(pthread_create(&peer, NULL, flood_peer, f), 0);
	cr_assert_eq(rill_spawn(rill_loop_current(), echo_client, f, &echo), 0);
	cr_assert_eq(rill_task_join(echo, NULL), 0);
	/* The peer thread blocks in poll(), not in the loop: wait for it. */
	while (!atomic_load(&f->sender_done))
		rill_sleep_ms(10);
	cr_assert_eq(pthread_join(peer, &pres), 0);
	cr_assert_null(pres, "the flooding peer could not connect");
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	return 0;
}

Test(reliability_slow, flood_into_a_handler_that_does_not_read)
{
	static struct flood f;
	uint64_t sent;
	long growth;

	run_task(flood_body, &f);
	sent = atomic_load(&f.sent);
	growth = f.rss_most - f.rss_before;
	printf("slow reader: peer sent %.1f MiB in %.1f s; reader held at most %zu KiB "
	       "not reading, %zu KiB reading slowly, %zu KiB reading fast (limit %lu KiB); "
	       "RSS grew %ld KiB; %.1f MiB arrived intact; other connection: %u round "
	       "trips, worst %.1f ms\n", (double)sent / MIB, (double)FLOOD_NS / 1e9,
	       f.most_idle / KIB, f.most_slow / KIB, f.most_fast / KIB, LIMIT / KIB,
	       growth, (double)f.got / MIB, f.round_trips, (double)f.worst_rtt / 1e6);
	fflush(stdout);
	cr_assert_eq(f.echo_err, 0, "echo connection: %s", rill_strerror(f.echo_err));
	cr_assert(f.ended, "the flooded connection did not end with EOF");
	cr_assert(f.pattern_ok, "flooded bytes arrived wrong");
	cr_assert_eq(f.got, sent, "%" PRIu64 " bytes arrived of %" PRIu64, f.got, sent);
	cr_assert_gt(f.most_idle, 2 * LIMIT, "reading never paused");
	cr_assert_leq(f.most_idle, 2 * LIMIT + BATCH);
	cr_assert_leq(f.most_slow, 2 * LIMIT + ONE_RECV, "a slow reader took a batch");
	cr_assert_leq(f.most_fast, 2 * LIMIT + BATCH);
	if (RSS_CHECKED)
		cr_assert_lt(growth, (long)(RSS_BOUND / KIB), "RSS grew by %ld KiB", growth);
	/* The echo connection was served all along: at least one round trip
	 * per 10 ms on average, none slower than 500 ms. */
	cr_assert_geq(f.round_trips, (IDLE_NS + SLOW_NS) / (10 * MS));
	cr_assert_lt(f.worst_rtt, 500 * MS);
}

/* ---- (b) a peer that does not read our writes ---------------------- */

#define CHUNK (16 * KIB)
#define DRAIN_DEADLINE (200 * MS)

struct stuck {
	unsigned writes;
	size_t most_after_write, most_after_drain, at_timeout, high, low;
	rill_time waited;
	int drain_err;
	uint64_t written;
	bool intact;
};

/* Writes CHUNK after CHUNK, each after drain returned, until a drain
 * under a deadline gives up. */
static void stuck_write(struct stuck *st, rill_writer *w, unsigned char *buf)
{
	for (;;) {
		size_t q;
		rill_time saved, t0;

		fill_pat(buf, st->written, CHUNK);
		cr_assert_eq(rill_writer_write(w, buf, CHUNK), 0);
		st->written += CHUNK;
		st->writes++;
		q = rill_writer_get_write_buffer_size(w);
		st->most_after_write = q > st->most_after_write ? q : st->most_after_write;
		t0 = rill_now();
		saved = rill_deadline_push(DRAIN_DEADLINE);
		st->drain_err = rill_writer_drain(w);
		rill_deadline_pop(saved);
		q = rill_writer_get_write_buffer_size(w);
		if (st->drain_err < 0) {
			st->waited = rill_now() - t0;
			st->at_timeout = q;
			return;
		}
		st->most_after_drain = q > st->most_after_drain ? q : st->most_after_drain;
		cr_assert_lt(st->written, 64 * MIB, "drain never blocked");
	}
}

/* The peer reads it all, and it must be the pattern. */
static void stuck_read_all(struct stuck *st, int peer)
{
	static unsigned char buf[64 * KIB];
	uint64_t got = 0;

	st->intact = true;
	while (got < st->written) {
		ssize_t k = recv(peer, buf, sizeof(buf), MSG_DONTWAIT);

		if (k < 0 && errno == EAGAIN) {
			cr_assert_eq(rill_sleep_ms(1), 0);
			continue;
		}
		cr_assert_gt(k, 0);
		st->intact &= pat_ok(buf, got, (size_t)k);
		got += (uint64_t)k;
	}
}

static int stuck_body(void *arg)
{
	struct stuck *st = arg;
	unsigned char *buf = malloc(CHUNK);
	struct conn c;

	cr_assert_not_null(buf);
	/* Our send buffer as small as it goes, so that rill's queue, not the
	 * kernel's, takes the backlog soon. */
	open_tcp_small(&c, 0, SO_SNDBUF);
	rill_writer_get_write_buffer_limits(c.w, &st->high, &st->low);
	stuck_write(st, c.w, buf);
	stuck_read_all(st, c.peer);
	/* Once the peer has read, drain goes through at once. */
	cr_assert_eq(rill_writer_drain(c.w), 0);
	cr_assert_eq(rill_writer_get_write_buffer_size(c.w), 0);
	conn_done(&c);
	free(buf);
	return 0;
}

Test(reliability_slow, peer_that_does_not_read_blocks_drain_until_the_deadline)
{
	static struct stuck st;

	run_task(stuck_body, &st);
	printf("slow consumer: %u writes of %lu KiB (%.1f MiB) before drain blocked; "
	       "queue at most %zu KiB after a write, %zu KiB after drain (high-water %zu KiB), "
	       "%zu KiB when the %.0f ms deadline fired after %.1f ms\n", st.writes,
	       CHUNK / KIB, (double)st.written / MIB, st.most_after_write / KIB,
	       st.most_after_drain / KIB, st.high / KIB, st.at_timeout / KIB,
	       (double)DRAIN_DEADLINE / 1e6, (double)st.waited / 1e6);
	fflush(stdout);
	cr_assert_eq(st.drain_err, -ETIMEDOUT);
	cr_assert_geq(st.waited, DRAIN_DEADLINE - MS);
	cr_assert_lt(st.waited, DRAIN_DEADLINE + 500 * MS);
	/* The queue stays around the high-water mark: never more than one
	 * write above it, and drain returns only once it is back under. */
	cr_assert_leq(st.most_after_write, st.high + CHUNK);
	cr_assert_leq(st.most_after_drain, st.high);
	cr_assert_gt(st.at_timeout, st.low);
	cr_assert_leq(st.at_timeout, st.high + CHUNK);
	cr_assert(st.intact, "the peer read wrong bytes");
}

/* ---- (c) a 100 MB line --------------------------------------------- */

#define LINE_FLOOD (100ul * 1000 * 1000)

struct line_flood {
	int port;
	unsigned overruns, other_lines;
	size_t most_buffered;
	long rss_before, rss_most;
	bool got_final, bad_line;
	int end;
	bool handled;
	char reply[8];
	uint64_t sent;
};

static int line_handler(rill_reader *r, rill_writer *w, void *arg)
{
	struct line_flood *lf = arg;
	rill_bytes line;
	ssize_t n;

	for (;;) {
		long rss;

		n = rill_reader_readline(r, &line);
		if ((lf->overruns & 63) == 0 && (rss = vm_rss_kib()) > lf->rss_most)
			lf->rss_most = rss;
		if (n == RILL_ELIMIT) {
			/* What the reader held when it gave up on the line. */
			size_t held = rill_reader_error_info(r)->consumed;

			lf->most_buffered = held > lf->most_buffered ? held : lf->most_buffered;
			lf->overruns++;
			continue;
		}
		if (n <= 0)
			break;
		if (n == 6 && !memcmp(line.data, "final\n", 6)) {
			lf->got_final = true;
			rill_writer_write(w, "ok\n", 3);
			break;
		}
		/* The tail of the flood, if shorter than the limit. */
		lf->other_lines++;
		for (ssize_t i = 0; i < n - 1; i++)
			lf->bad_line |= ((const char *)line.data)[i] != 'x';
	}
	lf->end = (int)n;
	lf->handled = true;
	rill_writer_close(w);
	return 0;
}

static void *line_peer(void *arg)
{
	struct line_flood *lf = arg;
	static char xs[256 * KIB];
	rill_time deadline = rill_now() + 30 * RILL_NSEC_PER_SEC;
	int fd = tcp_connect(lf->port);

	if (fd < 0)
		return (void *)1;
	memset(xs, 'x', sizeof(xs));
	while (lf->sent < LINE_FLOOD) {
		size_t k = LINE_FLOOD - lf->sent < sizeof(xs) ? LINE_FLOOD - lf->sent : sizeof(xs);

		if (send_until(fd, xs, k, deadline) != k)
			return (void *)2;
		lf->sent += k;
	}
	if (send_until(fd, "\nfinal\n", 7, deadline) != 7)
		return (void *)3;
	/* The reply to the last line. */
	for (size_t got = 0; got < 3;) {
		ssize_t k = recv(fd, lf->reply + got, 3 - got, 0);

		if (k <= 0)
			break;
		got += (size_t)k;
	}
	close(fd);
	return NULL;
}

static int line_body(void *arg)
{
	struct line_flood *lf = arg;
	rill_server *s;
	pthread_t peer;
	void *pres;

	cr_assert_eq(rill_start_server(line_handler, lf, "127.0.0.1", 0, NULL, &s), 0);
	lf->port = rill_server_port(s);
	lf->rss_before = lf->rss_most = vm_rss_kib();
	cr_assert_eq(pthread_create(&peer, NULL, line_peer, lf), 0);
	for (int i = 0; i < 3000 && !lf->handled; i++)
		rill_sleep_ms(10);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	cr_assert_eq(pthread_join(peer, &pres), 0);
	cr_assert_null(pres, "line peer failed at step %ld", (long)pres);
	return 0;
}

Test(reliability_slow, hundred_megabyte_line_gives_repeated_limit_errors)
{
	static struct line_flood lf;
	long growth;

	run_task(line_body, &lf);
	growth = lf.rss_most - lf.rss_before;
	printf("line flood: %.0f MB without a newline gave %u RILL_ELIMIT errors; reader "
	       "held at most %zu KiB, %.0f KiB on average (limit %lu KiB); RSS grew %ld KiB; "
	       "final line %s\n", (double)lf.sent / 1e6, lf.overruns, lf.most_buffered / KIB,
	       lf.overruns ? (double)lf.sent / lf.overruns / KIB : 0.0, LIMIT / KIB, growth,
	       lf.got_final ? "answered" : "lost");
	fflush(stdout);
	cr_assert_eq(lf.sent, LINE_FLOOD);
	cr_assert(lf.got_final, "the last line did not arrive (end %s)", rill_err_name(lf.end));
	cr_assert_str_eq(lf.reply, "ok\n");
	/* One error per limit's worth of the line, roughly. */
	cr_assert_geq(lf.overruns, LINE_FLOOD / (2 * LIMIT + BATCH));
	cr_assert_not(lf.bad_line);
	cr_assert_leq(lf.other_lines, 1);
	cr_assert_leq(lf.most_buffered, 2 * LIMIT + BATCH);
	if (RSS_CHECKED)
		cr_assert_lt(growth, (long)(RSS_BOUND / KIB), "RSS grew by %ld KiB", growth);
}
