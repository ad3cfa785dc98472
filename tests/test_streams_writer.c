/* SPDX-License-Identifier: MIT */
/* StreamWriter on real sockets: order, zero-copy, drain, limits, EOF, close, abort, extra info. */
#include <criterion/criterion.h>
#include <sys/ioctl.h>

#include "tests/helpers.h"

TestSuite(streams_writer, .timeout = 30);

/* ---- helpers ------------------------------------------------------- */

/* As open_unix, with the kernel buffers small: a few KiB fill them. */
static void open_unix_small(struct conn *c)
{
	open_unix(c, 0);
	small_buffer(c->peer, SO_RCVBUF);
	small_buffer(*(const int *)rill_writer_get_extra_info(c->w, "socket", NULL),
		     SO_SNDBUF);
}

/* Asserts that the peer sees EOF next. */
static void peer_expect_eof(int fd)
{
	char b;

	cr_assert_eq(peer_recv_all(fd, &b, 1), 0, "peer got more than expected");
}

/* Reads and drops everything until EOF or an error; returns the count. */
static size_t peer_drain(int fd)
{
	static char sink[64 * 1024];
	size_t total = 0, k;
	int err = 0;

	while ((k = peer_recv_err(fd, sink, sizeof(sink), &err)) > 0)
		total += k;
	return total;
}

/* Reads and drops n bytes (fewer at EOF); returns the count. */
static size_t peer_drain_n(int fd, size_t n)
{
	static char sink[64 * 1024];
	size_t total = 0;

	while (total < n) {
		size_t want = n - total < sizeof(sink) ? n - total : sizeof(sink);
		size_t k = peer_recv_all(fd, sink, want);

		total += k;
		if (k < want)
			break;
	}
	return total;
}

/* ---- write and writelines ------------------------------------------ */

TASK_TEST(streams_writer, write_and_writelines_keep_order)
{
	const rill_bytes lines[] = { { "b", 1 }, { "cd", 2 }, { "", 0 }, { "e", 1 } };
	struct conn c;
	char buf[8];

	open_unix(&c, 0);
	cr_assert_eq(rill_writer_write(c.w, "a", 1), 0);
	cr_assert_eq(rill_writer_writelines(c.w, lines, 4), 0);
	cr_assert_eq(rill_writer_write(c.w, "", 0), 0);
	cr_assert_eq(rill_writer_writelines(c.w, NULL, 0), 0);
	cr_assert_eq(rill_writer_writelines(c.w, NULL, 1), -EINVAL);
	cr_assert_eq(rill_writer_write(c.w, NULL, 1), -EINVAL);
	cr_assert_eq(rill_writer_write(c.w, "f", 1), 0);
	cr_assert_eq(rill_writer_drain(c.w), 0);
	cr_assert_eq(peer_recv_all(c.peer, buf, 6), 6);
	cr_assert_arr_eq(buf, "abcdef", 6);
	conn_done(&c);
	return 0;
}

#define BIG (64u << 20)

struct big_send {
	rill_writer *w;
	unsigned char *src;
};

/* Half of it in one write, the rest in 1 MiB writes with a drain each. */
static int big_writer_task(void *arg)
{
	struct big_send *b = arg;
	const size_t half = BIG / 2, step = 1u << 20;

	cr_assert_eq(rill_writer_write(b->w, b->src, half), 0);
	cr_assert_eq(rill_writer_drain(b->w), 0);
	for (size_t off = half; off < BIG; off += step) {
		cr_assert_eq(rill_writer_write(b->w, b->src + off, step), 0);
		cr_assert_eq(rill_writer_drain(b->w), 0);
	}
	rill_writer_close(b->w);
	cr_assert_eq(rill_writer_wait_closed(b->w), 0);
	return 0;
}

TASK_TEST(streams_writer, sixty_four_mib_arrive_intact)
{
	struct big_send b = { .src = malloc(BIG) };
	unsigned char *buf = malloc(256 * 1024);
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r2;
	rill_writer *w2;
	struct conn c;
	size_t got = 0;
	ssize_t n;
	rill_task *t;

	cr_assert(b.src && buf);
	fill_pat(b.src, 0, BIG);
	/* Both ends are rill's: our writer, a reader task on the other end. */
	open_tcp(&c, 0);
	o.sock = c.peer;
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &r2, &w2), 0);
	b.w = c.w;
	t = spawn(big_writer_task, &b);
	while ((n = rill_reader_read(r2, buf, 256 * 1024)) > 0) {
		check_pat(buf, got, (size_t)n);
		got += (size_t)n;
	}
	cr_assert_eq(n, 0);
	cr_assert_eq(got, BIG);
	join(t);
	rill_writer_free(c.w);
	close_and_free(w2);
	free(b.src);
	free(buf);
	return 0;
}

/* ---- gathered writes ----------------------------------------------- */

TASK_TEST(streams_writer, many_small_writes_before_a_drain_arrive_intact)
{
	static const char ref[] = "<ref>";
	const int nwrites = 10000;
	size_t len = 0;
	char *want = malloc((size_t)nwrites * 16), *got;
	char rec[16];
	struct conn c;

	cr_assert_not_null(want);
	open_unix(&c, 0);
	/* Many small copies, with zero-copy pieces in between: more chunks
	 * than one sendmsg takes. */
	for (int i = 0; i < nwrites; i++) {
		int k = snprintf(rec, sizeof(rec), "%05d,", i);

		cr_assert_eq(rill_writer_write(c.w, rec, (size_t)k), 0);
		memcpy(want + len, rec, (size_t)k);
		len += (size_t)k;
		if (i % 50 == 0) {
			cr_assert_eq(rill_writer_write_ref(c.w, ref, 5, NULL, NULL), 0);
			memcpy(want + len, ref, 5);
			len += 5;
		}
	}
	/* More than RILL_WRITE_PUSH_BYTES: some left before the task waited. */
	cr_assert_lt(rill_writer_get_write_buffer_size(c.w), len);
	got = malloc(len);
	cr_assert_not_null(got);
	cr_assert_eq(peer_recv_all(c.peer, got, len), len);
	cr_assert_eq(memcmp(got, want, len), 0, "bytes differ");
	conn_done(&c);
	free(want);
	free(got);
	return 0;
}

/* ---- write_ref ----------------------------------------------------- */

struct released {
	int calls;
	int peer;
	int queued_at_release;	/* bytes waiting at the peer then */
};

static void on_release(void *arg)
{
	struct released *rel = arg;
	int n = -1;

	rel->calls++;
	if (rel->peer >= 0 && ioctl(rel->peer, FIONREAD, &n) == 0)
		rel->queued_at_release = n;
}

TASK_TEST(streams_writer, write_ref_released_once_after_sending)
{
	static unsigned char data[64 * 1024];
	struct conn c;
	struct released rel = { .queued_at_release = -1 };
	static unsigned char buf[sizeof(data)];

	open_unix(&c, 0);
	rel.peer = c.peer;
	fill_pat(data, 0, sizeof(data));
	cr_assert_eq(rill_writer_write_ref(c.w, data, sizeof(data), on_release, &rel), 0);
	cr_assert_eq(rel.calls, 0, "released before it was sent");
	/* Released once the bytes are in the kernel, all of them. */
	for (int i = 0; i < 5000 && !rel.calls; i++)
		cr_assert_eq(rill_sleep_ms(1), 0);
	cr_assert_eq(rel.calls, 1);
	cr_assert_eq(rel.queued_at_release, (int)sizeof(data));
	cr_assert_eq(peer_recv_all(c.peer, buf, sizeof(buf)), sizeof(buf));
	check_pat(buf, 0, sizeof(buf));
	conn_done(&c);
	cr_assert_eq(rel.calls, 1);
	return 0;
}

TASK_TEST(streams_writer, write_ref_released_once_on_abort)
{
	const size_t n = 4u << 20;
	unsigned char *data = malloc(n);
	struct released rel = { .peer = -1 }, late = { .peer = -1 };
	struct conn c;

	cr_assert_not_null(data);
	open_unix_small(&c);
	/* The peer never reads: most of it stays queued. */
	cr_assert_eq(rill_writer_write_ref(c.w, data, n, on_release, &rel), 0);
	cr_assert_eq(rill_sleep_ms(20), 0);
	cr_assert_eq(rel.calls, 0);
	rill_writer_abort(c.w);
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	cr_assert_eq(rel.calls, 1);
	/* After the connection is gone: accepted, dropped, released at once. */
	cr_assert_eq(rill_writer_write_ref(c.w, data, n, on_release, &late), 0);
	cr_assert_eq(late.calls, 1);
	rill_writer_free(c.w);
	close(c.peer);
	cr_assert_eq(rel.calls, 1);
	free(data);
	return 0;
}

/* ---- drain and the write buffer limits ----------------------------- */

TASK_TEST(streams_writer, drain_returns_at_once_below_high_water)
{
	static char data[1000];
	struct conn c;

	open_unix(&c, 0);
	cr_assert_eq(rill_writer_write(c.w, data, sizeof(data)), 0);
	cr_assert_eq(rill_writer_drain(c.w), 0);
	/* It did not wait for the send: the bytes are still queued. */
	cr_assert_eq(rill_writer_get_write_buffer_size(c.w), sizeof(data));
	conn_done(&c);
	return 0;
}

struct drainer {
	rill_writer *w;
	int ret;
	bool done;
	size_t left;	/* write buffer size when drain returned */
};

static int drainer_task(void *arg)
{
	struct drainer *d = arg;

	d->ret = rill_writer_drain(d->w);
	d->left = rill_writer_get_write_buffer_size(d->w);
	d->done = true;
	return 0;
}

#define NDRAINERS 10

TASK_TEST(streams_writer, drain_blocks_until_the_peer_reads_and_releases_every_waiter)
{
	const size_t n = 1u << 20;
	unsigned char *data = malloc(n), *buf = malloc(n);
	struct drainer d[NDRAINERS];
	rill_task *t[NDRAINERS];
	size_t low, high;
	struct conn c;

	cr_assert(data && buf);
	open_unix_small(&c);
	fill_pat(data, 0, n);
	cr_assert_eq(rill_writer_write(c.w, data, n), 0);
	for (int i = 0; i < NDRAINERS; i++) {
		d[i] = (struct drainer){ .w = c.w, .ret = 1 };
		t[i] = spawn(drainer_task, &d[i]);
	}
	/* The peer does not read: every drainer waits. */
	cr_assert_eq(rill_sleep_ms(50), 0);
	rill_writer_get_write_buffer_limits(c.w, &high, &low);
	cr_assert_gt(rill_writer_get_write_buffer_size(c.w), high);
	for (int i = 0; i < NDRAINERS; i++)
		cr_assert_not(d[i].done, "drainer %d returned while the peer did not read", i);
	/* The peer reads: the queue falls to the low-water mark and all go. */
	cr_assert_eq(peer_recv_all(c.peer, buf, n), n);
	check_pat(buf, 0, n);
	for (int i = 0; i < NDRAINERS; i++) {
		join(t[i]);
		cr_assert_eq(d[i].ret, 0);
		cr_assert_leq(d[i].left, low);
	}
	conn_done(&c);
	free(data);
	free(buf);
	return 0;
}

TASK_TEST(streams_writer, cancelled_drain_leaves_the_other_drainers)
{
	const size_t n = 1u << 20;
	unsigned char *data = calloc(1, n);
	struct drainer d[2] = { { .ret = 1 }, { .ret = 1 } };
	rill_task *t[2];
	struct conn c;

	cr_assert_not_null(data);
	open_unix_small(&c);
	cr_assert_eq(rill_writer_write(c.w, data, n), 0);
	for (int i = 0; i < 2; i++) {
		d[i].w = c.w;
		t[i] = spawn(drainer_task, &d[i]);
	}
	cr_assert_eq(rill_sleep_ms(20), 0);
	cr_assert_eq(rill_task_cancel(t[0]), 0);
	join(t[0]);
	cr_assert_eq(d[0].ret, -ECANCELED);
	cr_assert_not(d[1].done);
	/* The other one still waits, and goes once the peer reads. */
	cr_assert_eq(peer_drain_n(c.peer, n), n);
	join(t[1]);
	cr_assert_eq(d[1].ret, 0);
	conn_done(&c);
	free(data);
	return 0;
}

TASK_TEST(streams_writer, set_write_buffer_limits_rules)
{
	static char buf[1000];
	struct conn c;
	size_t low, high;

	open_unix(&c, 0);
	rill_writer_get_write_buffer_limits(c.w, &high, &low);
	cr_assert_eq(high, 64 * 1024);
	cr_assert_eq(low, 16 * 1024);
	/* Only low: high = 4 x low. */
	cr_assert_eq(rill_writer_set_write_buffer_limits(c.w, -1, 1000), 0);
	rill_writer_get_write_buffer_limits(c.w, &high, &low);
	cr_assert_eq(low, 1000);
	cr_assert_eq(high, 4000);
	/* Only high: low = high / 4. */
	cr_assert_eq(rill_writer_set_write_buffer_limits(c.w, 8001, -1), 0);
	rill_writer_get_write_buffer_limits(c.w, &high, &low);
	cr_assert_eq(low, 2000);
	cr_assert_eq(high, 8001);
	/* high < low: refused, limits unchanged. */
	cr_assert_eq(rill_writer_set_write_buffer_limits(c.w, 100, 200), -EINVAL);
	rill_writer_get_write_buffer_limits(c.w, &high, &low);
	cr_assert_eq(low, 2000);
	cr_assert_eq(high, 8001);
	/* Paused only above high: a queue of exactly high does not wait. */
	cr_assert_eq(rill_writer_set_write_buffer_limits(c.w, 1000, 100), 0);
	cr_assert_eq(rill_writer_write(c.w, buf, 1000), 0);
	cr_assert_eq(rill_writer_drain(c.w), 0);
	cr_assert_eq(rill_writer_get_write_buffer_size(c.w), 1000);
	cr_assert_eq(rill_writer_write(c.w, buf, 1), 0);
	cr_assert_eq(rill_writer_drain(c.w), 0);
	cr_assert_leq(rill_writer_get_write_buffer_size(c.w), 100);
	cr_assert_eq(peer_drain_n(c.peer, 1001), 1001);
	cr_assert_eq(rill_writer_set_write_buffer_limits(c.w, 10, 10), 0);
	cr_assert_eq(rill_writer_set_write_buffer_limits(c.w, 0, 0), 0);
	rill_writer_get_write_buffer_limits(c.w, &high, &low);
	cr_assert_eq(low, 0);
	cr_assert_eq(high, 0);
	/* Neither: the defaults. */
	cr_assert_eq(rill_writer_set_write_buffer_limits(c.w, -1, -1), 0);
	rill_writer_get_write_buffer_limits(c.w, &high, &low);
	cr_assert_eq(high, 64 * 1024);
	cr_assert_eq(low, 16 * 1024);
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_writer, get_write_buffer_size_counts_unsent_bytes)
{
	struct conn c;
	char buf[32];

	open_unix(&c, 0);
	cr_assert_eq(rill_writer_get_write_buffer_size(c.w), 0);
	cr_assert_eq(rill_writer_write(c.w, "0123456789", 10), 0);
	cr_assert_eq(rill_writer_write_ref(c.w, "abcdefghijklmnopqrst", 20, NULL, NULL), 0);
	cr_assert_eq(rill_writer_get_write_buffer_size(c.w), 30);
	/* high = low = 0: drain waits until everything is sent. */
	cr_assert_eq(rill_writer_set_write_buffer_limits(c.w, 0, 0), 0);
	cr_assert_eq(rill_writer_drain(c.w), 0);
	cr_assert_eq(rill_writer_get_write_buffer_size(c.w), 0);
	cr_assert_eq(peer_recv_all(c.peer, buf, 30), 30);
	cr_assert_arr_eq(buf, "0123456789abcdefghijklmnopqrst", 30);
	conn_done(&c);
	return 0;
}

/* Resets the plain peer *arg 50 ms from now. */
static int reset_later_task(void *arg)
{
	cr_assert_eq(rill_sleep_ms(50), 0);
	peer_reset(arg);
	return 0;
}

TASK_TEST(streams_writer, peer_reset_during_drain_fails_the_drain)
{
	const size_t n = 16u << 20;
	unsigned char *data = calloc(1, n);
	struct conn c;
	rill_task *t;
	int ret, exc;

	cr_assert_not_null(data);
	open_tcp(&c, 0);
	small_buffer(c.peer, SO_RCVBUF);
	cr_assert_eq(rill_writer_write(c.w, data, n), 0);
	t = spawn(reset_later_task, &c.peer);
	ret = rill_writer_drain(c.w);
	join(t);
	cr_assert(ret == -ECONNRESET || ret == -EPIPE, "drain: %s", rill_err_name(ret));
	/* The reader's stored error comes first, and stays. */
	exc = rill_reader_exception(c.r);
	if (exc)
		cr_assert_eq(ret, exc);
	ret = rill_writer_drain(c.w);
	cr_assert(ret == -ECONNRESET || ret == -EPIPE, "drain again: %s", rill_err_name(ret));
	cr_assert(rill_writer_is_closing(c.w));
	conn_done(&c);
	free(data);
	return 0;
}

TASK_TEST(streams_writer, drain_returns_the_reader_exception_first)
{
	struct conn c;

	open_unix(&c, 0);
	rill_reader_set_exception(c.r, -EPROTO);
	cr_assert_eq(rill_writer_drain(c.w), -EPROTO);
	rill_writer_close(c.w);
	cr_assert_eq(rill_writer_drain(c.w), -EPROTO);
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	cr_assert_eq(rill_writer_drain(c.w), -EPROTO);
	rill_writer_free(c.w);
	close(c.peer);
	return 0;
}

TASK_TEST(streams_writer, drain_after_close_is_econnreset)
{
	struct conn c;
	char buf[8];

	open_unix(&c, 0);
	cr_assert_eq(rill_writer_write(c.w, "tail", 4), 0);
	rill_writer_close(c.w);
	cr_assert_eq(rill_writer_drain(c.w), -ECONNRESET);
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	cr_assert_eq(rill_writer_drain(c.w), -ECONNRESET);
	cr_assert_eq(peer_recv_all(c.peer, buf, sizeof(buf)), 4);
	cr_assert_arr_eq(buf, "tail", 4);
	rill_writer_free(c.w);
	close(c.peer);
	return 0;
}

TASK_TEST(streams_writer, drain_with_a_deadline_times_out)
{
	const size_t n = 4u << 20;
	unsigned char *data = calloc(1, n);
	struct conn c;
	rill_time saved, t0, took;
	int ret;

	cr_assert_not_null(data);
	open_unix_small(&c);
	cr_assert_eq(rill_writer_write(c.w, data, n), 0);
	t0 = rill_now();
	saved = rill_deadline_push(50 * RILL_NSEC_PER_MSEC);
	ret = rill_writer_drain(c.w);
	cr_assert(rill_deadline_expired());
	rill_deadline_pop(saved);
	took = rill_now() - t0;
	cr_assert_eq(ret, -ETIMEDOUT, "drain: %s", rill_err_name(ret));
	cr_assert_geq(took, 45 * RILL_NSEC_PER_MSEC);
	cr_assert_lt(took, 5 * RILL_NSEC_PER_SEC);
	/* The writer is untouched: the peer still gets every byte. */
	cr_assert_not(rill_writer_is_closing(c.w));
	cr_assert_eq(peer_drain_n(c.peer, n), n);
	conn_done(&c);
	free(data);
	return 0;
}

/* ---- write_eof ----------------------------------------------------- */

TASK_TEST(streams_writer, write_eof_half_closes_and_refuses_later_writes)
{
	struct conn c;
	struct released rel = { .peer = -1 };
	const rill_bytes one = { "x", 1 };
	char buf[16];

	open_unix(&c, 0);
	cr_assert(rill_writer_can_write_eof(c.w));
	cr_assert_eq(rill_writer_write(c.w, "request", 7), 0);
	cr_assert_eq(rill_writer_write_eof(c.w), 0);
	cr_assert_eq(rill_writer_write_eof(c.w), 0);
	cr_assert_eq(rill_writer_write(c.w, "late", 4), RILL_ESTATE);
	cr_assert_eq(rill_writer_writelines(c.w, &one, 1), RILL_ESTATE);
	cr_assert_eq(rill_writer_write_ref(c.w, "late", 4, on_release, &rel), RILL_ESTATE);
	cr_assert_eq(rel.calls, 0, "release called for a write that failed");
	/* The peer sees the request, then EOF... */
	cr_assert_eq(peer_recv_all(c.peer, buf, sizeof(buf)), 7);
	cr_assert_arr_eq(buf, "request", 7);
	/* ...and can still answer. */
	peer_send(c.peer, "response", 8);
	shutdown(c.peer, SHUT_WR);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 8), 8);
	cr_assert_arr_eq(buf, "response", 8);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 0);
	conn_done(&c);
	cr_assert_eq(rel.calls, 0);
	return 0;
}

/* ---- close and abort ----------------------------------------------- */

struct closer {
	rill_writer *w;
	int ret;
};

static int wait_closed_task(void *arg)
{
	struct closer *cl = arg;

	cl->ret = rill_writer_wait_closed(cl->w);
	return 0;
}

TASK_TEST(streams_writer, close_is_idempotent_and_delivers_the_queue)
{
	const size_t n = 1u << 20;
	unsigned char *data = malloc(n), *buf = malloc(n);
	struct closer cl = { .ret = 1 };
	struct conn c;
	rill_task *t;

	cr_assert(data && buf);
	open_unix(&c, 0);
	fill_pat(data, 0, n);
	cl.w = c.w;
	t = spawn(wait_closed_task, &cl);
	cr_assert_eq(rill_writer_write(c.w, data, n), 0);
	cr_assert_not(rill_writer_is_closing(c.w));
	rill_writer_close(c.w);
	cr_assert(rill_writer_is_closing(c.w));
	rill_writer_close(c.w);
	/* Queued bytes still go out, all of them, then EOF. */
	cr_assert_eq(peer_recv_all(c.peer, buf, n), n);
	check_pat(buf, 0, n);
	peer_expect_eof(c.peer);
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	join(t);
	cr_assert_eq(cl.ret, 0);
	rill_writer_close(c.w);
	cr_assert(rill_writer_is_closing(c.w));
	cr_assert_eq(rill_writer_write(c.w, "x", 1), 0);	/* dropped */
	rill_writer_free(c.w);
	close(c.peer);
	free(data);
	free(buf);
	return 0;
}

TASK_TEST(streams_writer, close_with_unread_data_in_our_reader)
{
	struct conn c;
	char buf[32];
	int err;

	open_tcp(&c, 0);
	peer_send(c.peer, "unread data", 11);
	while (rill_reader_buffered(c.r) < 11)
		cr_assert_eq(rill_sleep_ms(1), 0);
	cr_assert_eq(rill_writer_write(c.w, "bye", 3), 0);
	rill_writer_close(c.w);
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	/* The peer gets the data and a clean EOF, not a reset. */
	cr_assert_eq(peer_recv_err(c.peer, buf, sizeof(buf), &err), 3);
	cr_assert_eq(err, 0, "peer: %s", strerror(-err));
	cr_assert_arr_eq(buf, "bye", 3);
	/* What was buffered can still be read, then EOF. */
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 11);
	cr_assert_arr_eq(buf, "unread data", 11);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 0);
	rill_writer_free(c.w);
	close(c.peer);
	return 0;
}

/* close() and abort() end a pending read with EOF: the partial line. */
static void check_close_wakes_reader(bool abort)
{
	struct pending_line lr = { .got = -1 };
	struct conn c;
	rill_task *t;

	open_unix(&c, 0);
	lr.r = c.r;
	peer_send(c.peer, "partial", 7);
	t = spawn(readline_task, &lr);
	for (int i = 0; i < 5000 && rill_reader_buffered(c.r) < 7; i++)
		cr_assert_eq(rill_sleep_ms(1), 0);
	cr_assert_eq(rill_sleep_ms(5), 0);
	if (abort)
		rill_writer_abort(c.w);
	else
		rill_writer_close(c.w);
	join(t);
	cr_assert_eq(lr.got, 7);
	cr_assert_arr_eq(lr.line.data, "partial", 7);
	cr_assert_eq(rill_reader_exception(c.r), 0);
	cr_assert(rill_reader_at_eof(c.r));
	conn_done(&c);
}

TASK_TEST(streams_writer, close_and_abort_end_a_pending_read_with_eof)
{
	check_close_wakes_reader(false);
	check_close_wakes_reader(true);
	return 0;
}

TASK_TEST(streams_writer, abort_drops_the_queue)
{
	const size_t n = 4u << 20;
	unsigned char *data = calloc(1, n);
	struct conn c;
	size_t got;

	cr_assert_not_null(data);
	open_unix_small(&c);
	cr_assert_eq(rill_writer_write(c.w, data, n), 0);
	cr_assert_eq(rill_sleep_ms(20), 0);
	cr_assert_gt(rill_writer_get_write_buffer_size(c.w), 0);
	rill_writer_abort(c.w);
	cr_assert(rill_writer_is_closing(c.w));
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	cr_assert_eq(rill_writer_get_write_buffer_size(c.w), 0);
	/* The peer gets what was sent before, then the end: the rest is gone. */
	got = peer_drain(c.peer);
	cr_assert_lt(got, n);
	cr_assert_eq(rill_writer_write(c.w, data, 10), 0);
	cr_assert_eq(rill_writer_get_write_buffer_size(c.w), 0);
	rill_writer_free(c.w);
	close(c.peer);
	free(data);
	return 0;
}

TASK_TEST(streams_writer, write_after_the_connection_is_lost_is_dropped)
{
	const rill_bytes one = { "y", 1 };
	struct released rel = { .peer = -1 };
	struct conn c;
	char buf[8];

	open_tcp(&c, 0);
	peer_reset(&c.peer);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), -ECONNRESET);
	cr_assert(rill_writer_is_closing(c.w));
	/* Accepted and dropped, as asyncio does. */
	cr_assert_eq(rill_writer_write(c.w, "x", 1), 0);
	cr_assert_eq(rill_writer_writelines(c.w, &one, 1), 0);
	cr_assert_eq(rill_writer_write_ref(c.w, "z", 1, on_release, &rel), 0);
	cr_assert_eq(rel.calls, 1);
	cr_assert_eq(rill_writer_get_write_buffer_size(c.w), 0);
	cr_assert_eq(rill_writer_drain(c.w), -ECONNRESET);
	conn_done(&c);
	cr_assert_eq(rel.calls, 1);
	return 0;
}

/* rill_writer_free() without a close first, once the peer has gone:
 * nothing is in flight, so the connection is freed within the call. */
TASK_TEST(streams_writer, free_without_close_after_the_peer_is_gone)
{
	struct conn c;
	char buf[4];

	open_unix(&c, 0);
	close(c.peer);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 0);
	rill_writer_free(c.w);

	open_tcp(&c, 0);
	peer_reset(&c.peer);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), -ECONNRESET);
	rill_writer_free(c.w);
	return 0;
}

/* Freed with a large queue still flushing; the peer then resets: the
 * failed send is the last thing the connection does. */
TASK_TEST(streams_writer, freed_writer_flushing_when_the_peer_resets)
{
	const size_t n = 16u << 20;
	unsigned char *data = calloc(1, n);
	struct released rel = { .peer = -1 };
	struct conn c;

	cr_assert_not_null(data);
	open_tcp(&c, 0);
	small_buffer(c.peer, SO_RCVBUF);
	cr_assert_eq(rill_writer_write_ref(c.w, data, n, on_release, &rel), 0);
	rill_writer_free(c.w);
	cr_assert_eq(rill_sleep_ms(30), 0);
	cr_assert_eq(rel.calls, 0, "released while still queued");
	peer_reset(&c.peer);
	for (int i = 0; i < 5000 && !rel.calls; i++)
		cr_assert_eq(rill_sleep_ms(1), 0);
	cr_assert_eq(rel.calls, 1);
	free(data);
	return 0;
}

/* ---- get_extra_info ------------------------------------------------ */

static void assert_same_inet(const struct sockaddr *a, const struct sockaddr_in *b)
{
	const struct sockaddr_in *ai = (const struct sockaddr_in *)a;

	cr_assert_not_null(a);
	cr_assert_eq(a->sa_family, AF_INET);
	cr_assert_eq(ai->sin_port, b->sin_port);
	cr_assert_eq(ai->sin_addr.s_addr, b->sin_addr.s_addr);
}

TASK_TEST(streams_writer, get_extra_info_names_both_ends_and_the_socket)
{
	struct sockaddr_in peer_local, peer_remote, mine;
	socklen_t len = sizeof(peer_local);
	const struct sockaddr *sa;
	const int *fd;
	struct conn c;
	size_t n = 0;

	open_tcp(&c, 0);
	cr_assert_eq(getsockname(c.peer, (struct sockaddr *)&peer_local, &len), 0);
	len = sizeof(peer_remote);
	cr_assert_eq(getpeername(c.peer, (struct sockaddr *)&peer_remote, &len), 0);

	sa = rill_writer_get_extra_info(c.w, "peername", &n);
	assert_same_inet(sa, &peer_local);
	cr_assert_eq(n, sizeof(struct sockaddr_in));
	sa = rill_writer_get_extra_info(c.w, "sockname", &n);
	assert_same_inet(sa, &peer_remote);
	cr_assert_eq(n, sizeof(struct sockaddr_in));
	fd = rill_writer_get_extra_info(c.w, "socket", &n);
	cr_assert_not_null(fd);
	cr_assert_eq(n, sizeof(int));
	len = sizeof(mine);
	cr_assert_eq(getsockname(*fd, (struct sockaddr *)&mine, &len), 0);
	assert_same_inet((struct sockaddr *)&mine, &peer_remote);

	cr_assert_null(rill_writer_get_extra_info(c.w, "no such key", &n));
	cr_assert_null(rill_writer_get_extra_info(c.w, "", NULL));
	cr_assert_null(rill_writer_get_extra_info(c.w, NULL, NULL));
	cr_assert_eq(rill_writer_reader(c.w), c.r);
	/* Borrowed for the writer's lifetime: still there after close. */
	rill_writer_close(c.w);
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	assert_same_inet(rill_writer_get_extra_info(c.w, "peername", NULL), &peer_local);
	assert_same_inet(rill_writer_get_extra_info(c.w, "sockname", NULL), &peer_remote);
	rill_writer_free(c.w);
	close(c.peer);
	return 0;
}

/* As in asyncio, the addresses are those of the connection as it was
 * made: still there after the peer reset it and after close. */
TASK_TEST(streams_writer, get_extra_info_survives_a_reset_and_close)
{
	struct sockaddr_in peer_local, peer_remote;
	socklen_t len = sizeof(peer_local);
	struct conn c;
	char buf[4];

	open_tcp(&c, 0);
	cr_assert_eq(getsockname(c.peer, (struct sockaddr *)&peer_local, &len), 0);
	len = sizeof(peer_remote);
	cr_assert_eq(getpeername(c.peer, (struct sockaddr *)&peer_remote, &len), 0);
	peer_reset(&c.peer);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), -ECONNRESET);
	assert_same_inet(rill_writer_get_extra_info(c.w, "peername", NULL), &peer_local);
	rill_writer_close(c.w);
	cr_assert_eq(rill_writer_wait_closed(c.w), -ECONNRESET);
	assert_same_inet(rill_writer_get_extra_info(c.w, "sockname", NULL), &peer_remote);
	assert_same_inet(rill_writer_get_extra_info(c.w, "peername", NULL), &peer_local);
	rill_writer_free(c.w);
	return 0;
}

/* ---- unclosed writers ---------------------------------------------- */

struct log_count {
	int warnings, others;
};

static void count_log(int level, const char *msg, void *arg)
{
	struct log_count *lc = arg;

	if (level == RILL_LOG_INFO && strstr(msg, "io_uring unavailable"))
		return;		/* the backend fallback's note (tests/no-io-uring) */
	if (level == RILL_LOG_WARNING)
		lc->warnings++;
	else
		lc->others++;
}

/* Opens a connection, writes, and ends without closing it. */
static int leaky_task(void *arg)
{
	struct conn *c = arg;

	open_unix(c, 0);
	cr_assert_eq(rill_writer_write(c->w, "left", 4), 0);
	return 0;
}

/* Opens a connection and closes it, but never frees it. */
static int closed_task(void *arg)
{
	struct conn *c = arg;

	open_unix(c, 0);
	cr_assert_eq(rill_writer_write(c->w, "shut", 4), 0);
	rill_writer_close(c->w);
	return 0;
}

/* Opens a connection, sees the peer go, and ends without closing it:
 * nothing is in flight, so it is freed at once when the task ends. */
static int leaky_after_eof_task(void *arg)
{
	struct conn *c = arg;
	char b;

	open_unix(c, 0);
	close(c->peer);
	c->peer = -1;
	cr_assert_eq(rill_reader_read(c->r, &b, 1), 0);
	return 0;
}

static int unclosed_body(void *arg)
{
	struct log_count *lc = arg;
	struct conn c;
	char buf[8];

	join(spawn(leaky_task, &c));
	cr_assert_eq(lc->warnings, 1);
	cr_assert_eq(lc->others, 0);
	/* Closed for us: the queued bytes went out, then EOF. */
	cr_assert_eq(peer_recv_all(c.peer, buf, sizeof(buf)), 4);
	cr_assert_arr_eq(buf, "left", 4);
	close(c.peer);

	/* Closed by the task: no warning. */
	join(spawn(closed_task, &c));
	cr_assert_eq(peer_recv_all(c.peer, buf, sizeof(buf)), 4);
	cr_assert_arr_eq(buf, "shut", 4);
	close(c.peer);
	cr_assert_eq(rill_sleep_ms(10), 0);
	cr_assert_eq(lc->warnings, 1);
	cr_assert_eq(lc->others, 0);

	join(spawn(leaky_after_eof_task, &c));
	cr_assert_eq(lc->warnings, 2);
	cr_assert_eq(lc->others, 0);
	return 0;
}

Test(streams_writer, unclosed_writer_is_closed_with_one_warning)
{
	struct log_count lc = { 0 };

	rill_set_log_handler(count_log, &lc);
	run_task(unclosed_body, &lc);
	rill_set_log_handler(NULL, NULL);
	cr_assert_eq(lc.warnings, 2);
}

/* ---- after the connection is lost (asyncio conformance) ------------ */

/* asyncio: connection_lost(exc) sets exc on the close waiter, so every
 * wait_closed() raises it; rill returns it. */
TASK_TEST(streams_writer, wait_closed_after_a_reset_returns_the_error)
{
	struct conn c;
	char buf[8];

	open_tcp(&c, 0);
	peer_reset(&c.peer);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), -ECONNRESET);
	cr_assert_eq(rill_writer_wait_closed(c.w), -ECONNRESET);
	rill_writer_close(c.w);
	cr_assert_eq(rill_writer_wait_closed(c.w), -ECONNRESET);
	cr_assert_eq(rill_writer_wait_closed(c.w), -ECONNRESET);
	rill_writer_free(c.w);
	return 0;
}

/* A clean close still gives 0. */
TASK_TEST(streams_writer, wait_closed_after_a_clean_close_returns_0)
{
	struct conn c;

	open_tcp(&c, 0);
	rill_writer_close(c.w);
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	rill_writer_free(c.w);
	close(c.peer);
	return 0;
}

struct lost_log {
	int send_warnings, others;
};

static void lost_log_hook(int level, const char *msg, void *arg)
{
	struct lost_log *l = arg;

	if (level == RILL_LOG_INFO && strstr(msg, "io_uring unavailable"))
		return;		/* the backend fallback's note (tests/no-io-uring) */
	if (level == RILL_LOG_WARNING && !strcmp(msg, "socket.send() raised exception."))
		l->send_warnings++;
	else
		l->others++;
}

/* asyncio's transport counts writes after the loss and, from the fifth
 * (LOG_THRESHOLD_FOR_CONNLOST_WRITES), logs each one it drops. */
static int lost_writes_logged_body(void *arg)
{
	struct lost_log *l = arg;
	struct conn c;
	char buf[8];

	open_tcp(&c, 0);
	peer_reset(&c.peer);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), -ECONNRESET);
	for (int i = 1; i <= 4; i++)
		cr_assert_eq(rill_writer_write(c.w, "x", 1), 0);
	cr_assert_eq(l->send_warnings, 0);
	cr_assert_eq(rill_writer_write(c.w, "x", 1), 0);
	cr_assert_eq(l->send_warnings, 1);
	cr_assert_eq(rill_writer_write_ref(c.w, "z", 1, NULL, NULL), 0);
	cr_assert_eq(rill_writer_write(c.w, "x", 1), 0);
	cr_assert_eq(l->send_warnings, 3);
	cr_assert_eq(rill_writer_get_write_buffer_size(c.w), 0);
	rill_writer_free(c.w);
	return 0;
}

Test(streams_writer, writes_after_the_loss_are_logged_from_the_fifth)
{
	struct lost_log l = { 0 };

	rill_set_log_handler(lost_log_hook, &l);
	run_task(lost_writes_logged_body, &l);
	rill_set_log_handler(NULL, NULL);
	cr_assert_eq(l.send_warnings, 3);
	cr_assert_eq(l.others, 0);
}
