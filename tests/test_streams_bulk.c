/* SPDX-License-Identifier: MIT */
/* Bulk streams: a reader that fell behind has its recv land straight in its buffer; every byte arrives once and in order through every kind of read, the buffer keeps its bound, and nothing else writes into a buffer the recv is filling. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

TestSuite(streams_bulk, .timeout = 60);

#define KIB 1024ul
#define MIB (1024ul * KIB)
#define FLOOD (16 * MIB)

struct flood {
	int fd;
	size_t total;
	bool keep_open;		/* no EOF after the bytes */
};

/* The plain peer sends total pattern bytes in uneven writes, then EOF. */
static int flood_task(void *arg)
{
	struct flood *f = arg;
	unsigned char *buf = malloc(100 * KIB);
	uint32_t seed = 7;

	cr_assert_not_null(buf);
	for (size_t off = 0; off < f->total;) {
		size_t n = 1 + xorshift32(&seed) % (100 * KIB);

		if (n > f->total - off)
			n = f->total - off;
		fill_pat(buf, off, n);
		peer_send(f->fd, buf, n);
		off += n;
	}
	free(buf);
	if (!f->keep_open)
		cr_assert_eq(shutdown(f->fd, SHUT_WR), 0);
	return 0;
}

/* Reads the flood to EOF with a consumer that keeps falling behind. */
static int slow_then_fast(bool unix_socket, size_t limit)
{
	struct conn conn, *c = &conn;
	struct flood f = { .total = FLOOD };
	unsigned char *buf = malloc(READ_PAT_MAX);
	rill_task *sender;
	uint32_t seed = 11;
	uint64_t off = 0;
	size_t k;

	if (unix_socket)
		open_unix(c, limit);
	else
		open_tcp(c, limit);
	f.fd = c->peer;
	sender = spawn(flood_task, &f);
	cr_assert_not_null(buf);
	/* Behind from the start: the reader pauses, then is throttled. */
	cr_assert_eq(rill_sleep_ms(30), 0);
	while ((k = read_pat_some(c->r, off, &seed, buf)) > 0) {
		off += k;
		if (xorshift32(&seed) % 64 == 0)
			cr_assert_eq(rill_sleep_ms(2), 0);	/* behind again */
	}
	cr_assert(rill_reader_at_eof(c->r));
	cr_assert_eq(off, FLOOD, "every byte once: %" PRIu64 " of %zu", off, (size_t)FLOOD);
	join(sender);
	free(buf);
	conn_done(c);
	return 0;
}

TASK_TEST(streams_bulk, tcp_flood_arrives_whole_through_every_read)
{
	return slow_then_fast(false, 0);
}

/* A limit below the smallest loan (16 KiB). */
TASK_TEST(streams_bulk, small_limit_flood_arrives_whole)
{
	return slow_then_fast(false, 4 * KIB);
}

TASK_TEST(streams_bulk, unix_flood_arrives_whole)
{
	return slow_then_fast(true, 0);
}

/* Once a reader has fallen behind and caught up, io_uring keeps a recv in
 * flight into its buffer (epoll reads only when there is something to
 * read): feeding that reader by hand then is refused, not interleaved. */
TASK_TEST(streams_bulk, feed_data_into_a_reader_being_filled)
{
	struct flood f = { .total = 1 * MIB, .keep_open = true };
	unsigned char *buf = malloc(f.total);
	bool uring = rill_loop_backend(rill_loop_current()) == RILL_BACKEND_IO_URING;
	struct conn c;
	rill_task *sender;
	int err;

	cr_assert_not_null(buf);
	open_tcp(&c, 0);
	f.fd = c.peer;
	sender = spawn(flood_task, &f);
	cr_assert_eq(rill_sleep_ms(30), 0);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, f.total), (ssize_t)f.total);
	check_pat(buf, 0, f.total);
	join(sender);
	cr_assert_eq(rill_sleep_ms(5), 0);	/* the next recv is armed */
	err = rill_reader_feed_data(c.r, "x", 1);
	if (uring) {
		cr_assert_eq(err, -EBUSY, "feed_data: %s", rill_err_name(err));
		cr_assert(strstr(rill_error_detail(), "filling"), "%s", rill_error_detail());
		cr_assert_eq(rill_reader_buffered(c.r), 0);
	} else {
		cr_assert_eq(err, 0, "feed_data: %s", rill_err_name(err));
		cr_assert_eq(rill_reader_readexactly(c.r, buf, 1), 1);
		cr_assert_eq(buf[0], 'x');
	}
	/* Then the peer's next bytes, and its EOF. */
	peer_sends(c.peer, "tail");
	peer_close(&c.peer);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 4), 4);
	cr_assert_arr_eq(buf, "tail", 4);
	cr_assert_eq(rill_reader_read(c.r, buf, 16), 0);
	free(buf);
	conn_done(&c);
	return 0;
}
