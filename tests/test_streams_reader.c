/* SPDX-License-Identifier: MIT */
/* StreamReader on real sockets: reads, limits, views, flow control, EOF and resets. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <limits.h>
#include <time.h>

#include "tests/helpers.h"

TestSuite(streams_reader, .timeout = 30);

/* ---- helpers ------------------------------------------------------- */

/* Waits (5 s at most) until the reader holds n bytes. */
static void wait_buffered(rill_reader *r, size_t n)
{
	for (int i = 0; i < 5000 && rill_reader_buffered(r) < n; i++)
		cr_assert_eq(rill_sleep_ms(1), 0);
	cr_assert_eq(rill_reader_buffered(r), n);
}

static void assert_view(rill_bytes v, const char *s)
{
	size_t n = strlen(s);

	cr_assert_eq(v.len, n, "view of %zu bytes, want %zu (\"%s\")", v.len, n, s);
	if (n)
		cr_assert_arr_eq(v.data, s, n, "view is \"%.*s\", want \"%s\"",
				 (int)v.len, (const char *)v.data, s);
}

/* A peer script: each part is sent from *peer after delay_ms; then the
 * peer's socket is closed (close_after: *peer becomes -1) or shut down
 * for writing (shut_after). */
struct script {
	int *peer;
	const char *parts[8];
	int delay_ms;
	bool close_after, shut_after;
};

static int script_task(void *arg)
{
	struct script *s = arg;

	for (size_t i = 0; i < 8 && s->parts[i]; i++) {
		cr_assert_eq(rill_sleep_ms((uint64_t)s->delay_ms), 0);
		peer_sends(*s->peer, s->parts[i]);
	}
	if (s->close_after)
		peer_close(s->peer);
	else if (s->shut_after)
		shutdown(*s->peer, SHUT_WR);
	return 0;
}

/* ---- read(n) ------------------------------------------------------- */

TASK_TEST(streams_reader, read_n_up_to_n_zero_at_once_zero_at_eof)
{
	struct conn c;
	struct script s = { .parts = { "hello world", "!!" }, .delay_ms = 30,
			    .close_after = true };
	char buf[64];
	rill_time saved;
	rill_task *t;

	open_unix(&c, 0);
	/* n == 0 returns 0 at once, though nothing is buffered. */
	saved = rill_deadline_push(1000 * RILL_NSEC_PER_MSEC);
	cr_assert_eq(rill_reader_read(c.r, buf, 0), 0);
	rill_deadline_pop(saved);
	s.peer = &c.peer;
	t = spawn(script_task, &s);
	/* Up to n: what is buffered, without waiting for the rest. */
	cr_assert_eq(rill_reader_read(c.r, buf, 5), 5);
	cr_assert_arr_eq(buf, "hello", 5);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 6);
	cr_assert_arr_eq(buf, " world", 6);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 2);
	cr_assert_arr_eq(buf, "!!", 2);
	/* EOF: 0, and 0 again. */
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 0);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 0);
	cr_assert(rill_reader_at_eof(c.r));
	cr_assert_eq(rill_reader_exception(c.r), 0);
	join(t);
	conn_done(&c);
	return 0;
}

/* ---- read_all ------------------------------------------------------ */

TASK_TEST(streams_reader, read_all_collects_every_part_until_eof)
{
	struct conn c;
	struct script s = { .parts = { "one ", "two ", "three" }, .delay_ms = 20,
			    .close_after = true };
	rill_bytes v;
	rill_task *t;

	open_unix(&c, 0);
	s.peer = &c.peer;
	t = spawn(script_task, &s);
	cr_assert_eq(rill_reader_read_all(c.r, &v), 13);
	assert_view(v, "one two three");
	cr_assert_eq(rill_reader_read_all(c.r, &v), 0);
	cr_assert_eq(v.len, 0);
	join(t);
	conn_done(&c);
	return 0;
}

struct bulk {
	int *peer;
	size_t off, n;		/* pattern bytes [off, off + n) */
	bool close_after;
};

/* Sends n pattern bytes from *peer in 7 KiB pieces, then closes it if
 * asked (*peer becomes -1). */
static int bulk_task(void *arg)
{
	struct bulk *b = arg;
	unsigned char piece[7 * 1024];

	for (size_t i = 0; i < b->n; i += sizeof(piece)) {
		size_t k = b->n - i < sizeof(piece) ? b->n - i : sizeof(piece);

		fill_pat(piece, b->off + i, k);
		peer_send(*b->peer, piece, k);
	}
	if (b->close_after)
		peer_close(b->peer);
	return 0;
}

TASK_TEST(streams_reader, read_all_far_beyond_twice_the_limit)
{
	struct conn c;
	struct bulk b = { .n = 1 << 20, .close_after = true };
	rill_bytes v;
	rill_task *t;

	open_unix(&c, 4096);	/* 1 MiB is 256 x the limit */
	b.peer = &c.peer;
	t = spawn(bulk_task, &b);
	cr_assert_eq(rill_reader_read_all(c.r, &v), (ssize_t)b.n);
	check_pat(v.data, 0, v.len);
	join(t);
	conn_done(&c);
	return 0;
}

/* ---- readexactly --------------------------------------------------- */

TASK_TEST(streams_reader, readexactly_of_a_negative_count_is_asyncio_valueerror)
{
	struct conn c;
	char buf[4];

	open_unix(&c, 0);
	peer_sends(c.peer, "abcd");
	cr_assert_eq(rill_reader_readexactly(c.r, buf, (size_t)-1), -EINVAL);
	cr_assert_str_eq(rill_error_detail(), "readexactly size can not be less than zero");
	cr_assert_eq(rill_reader_readexactly(c.r, buf, (size_t)SSIZE_MAX + 1), -EINVAL);
	cr_assert_str_eq(rill_error_detail(), "readexactly size can not be less than zero");
	/* Nothing was consumed. */
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 4), 4);
	cr_assert_arr_eq(buf, "abcd", 4);
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_reader, readexactly_waits_for_exactly_n)
{
	struct conn c;
	struct script s = { .parts = { "hel", "lo wor", "ld" }, .delay_ms = 20 };
	char buf[16];
	rill_task *t;

	open_unix(&c, 0);
	s.peer = &c.peer;
	t = spawn(script_task, &s);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 5), 5);
	cr_assert_arr_eq(buf, "hello", 5);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 6), 6);
	cr_assert_arr_eq(buf, " world", 6);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 0), 0);
	cr_assert_eq(rill_reader_buffered(c.r), 0);
	join(t);
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_reader, readexactly_eof_gives_incomplete_with_partial)
{
	struct conn c;
	struct script s = { .parts = { "abc" }, .close_after = true };
	const rill_read_error *info;
	char buf[16];
	rill_task *t;

	open_unix(&c, 0);
	s.peer = &c.peer;
	t = spawn(script_task, &s);
	memset(buf, 0, sizeof(buf));
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 10), RILL_EINCOMPLETE);
	cr_assert_arr_eq(buf, "abc", 3);
	info = rill_reader_error_info(c.r);
	cr_assert_eq(info->partial_len, 3);
	cr_assert_eq(info->expected, 10);
	/* The partial bytes were handed out: nothing is left. */
	cr_assert_eq(rill_reader_buffered(c.r), 0);
	cr_assert(rill_reader_at_eof(c.r));
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 0);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 1), RILL_EINCOMPLETE);
	cr_assert_eq(rill_reader_error_info(c.r)->partial_len, 0);
	cr_assert_eq(rill_reader_error_info(c.r)->expected, 1);
	join(t);
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_reader, readexactly_of_five_limits_does_not_deadlock)
{
	const size_t limit = 16 * 1024, n = 5 * limit;
	struct conn c;
	struct bulk b = { .n = n };
	unsigned char *buf = malloc(n);
	rill_task *t;

	cr_assert_not_null(buf);
	open_unix(&c, limit);
	b.peer = &c.peer;
	t = spawn(bulk_task, &b);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, n), (ssize_t)n);
	check_pat(buf, 0, n);
	join(t);
	free(buf);
	conn_done(&c);
	return 0;
}

/* ---- readuntil ----------------------------------------------------- */

TASK_TEST(streams_reader, readuntil_separator_split_across_receives)
{
	struct conn c;
	struct script s = { .parts = { "ab", "c\r", "\nrest" }, .delay_ms = 20,
			    .close_after = true };
	rill_bytes v;
	rill_task *t;

	open_unix(&c, 0);
	s.peer = &c.peer;
	t = spawn(script_task, &s);
	cr_assert_eq(rill_reader_readuntil(c.r, "\r\n", 2, &v), 5);
	assert_view(v, "abc\r\n");
	cr_assert_eq(rill_reader_read_all(c.r, &v), 4);
	assert_view(v, "rest");
	join(t);
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_reader, readuntil_several_separators)
{
	static const rill_bytes seps[] = {
		{ "END", 3 }, { "\r\n", 2 }, { "\n", 1 }, { ";", 1 },
		{ "xyz", 3 }, { "y", 1 },
	};
	const rill_bytes empty[] = { { "\n", 1 }, { "", 0 } };
	struct conn c;
	struct script s = { .parts = { "a;bEND", "two\r", "\nthree\naxyzb", "tail" },
			    .delay_ms = 10, .close_after = true };
	rill_bytes v;
	rill_task *t;

	open_unix(&c, 0);
	cr_assert_eq(rill_reader_readuntil_any(c.r, seps, 0, &v), -EINVAL);
	cr_assert_str_eq(rill_error_detail(), "Separator should contain at least one element");
	cr_assert_eq(rill_reader_readuntil_any(c.r, empty, 2, &v), -EINVAL);
	cr_assert_str_eq(rill_error_detail(), "Separator should be at least one-byte string");
	cr_assert_eq(rill_reader_readuntil(c.r, "", 0, &v), -EINVAL);
	cr_assert_str_eq(rill_error_detail(), "Separator should be at least one-byte string");
	cr_assert_eq(rill_reader_readuntil(c.r, "x", 0, &v), -EINVAL);
	cr_assert_str_eq(rill_error_detail(), "Separator should be at least one-byte string");
	s.peer = &c.peer;
	t = spawn(script_task, &s);
	/* The match that ends first wins. */
	cr_assert_eq(rill_reader_readuntil_any(c.r, seps, 6, &v), 2);
	assert_view(v, "a;");
	cr_assert_eq(rill_reader_readuntil_any(c.r, seps, 6, &v), 4);
	assert_view(v, "bEND");
	cr_assert_eq(rill_reader_readuntil_any(c.r, seps, 6, &v), 5);
	assert_view(v, "two\r\n");
	cr_assert_eq(rill_reader_readuntil_any(c.r, seps, 6, &v), 6);
	assert_view(v, "three\n");
	cr_assert_eq(rill_reader_readuntil_any(c.r, seps, 6, &v), 3);
	assert_view(v, "axy");
	/* EOF without a separator: the partial, and the buffer cleared. */
	cr_assert_eq(rill_reader_readuntil_any(c.r, seps, 6, &v), RILL_EINCOMPLETE);
	assert_view(v, "zbtail");
	cr_assert_eq(rill_reader_error_info(c.r)->partial_len, 6);
	cr_assert_eq(rill_reader_error_info(c.r)->expected, SIZE_MAX);
	cr_assert_eq(rill_reader_buffered(c.r), 0);
	cr_assert_eq(rill_reader_readuntil(c.r, "\n", 1, &v), RILL_EINCOMPLETE);
	cr_assert_eq(v.len, 0);
	join(t);
	conn_done(&c);
	return 0;
}

/* ---- limits at the boundary ---------------------------------------- */

#define SMALL_LIMIT 16

static char *repeat(char ch, size_t n)
{
	static char s[256];

	cr_assert_lt(n, sizeof(s));
	memset(s, ch, n);
	s[n] = '\0';
	return s;
}

/* With limit L: L bytes and no separator keep waiting; the separator then
 * ending at L + 1 is accepted; L + 1 bytes without one, or a separator
 * starting at L + 1, give RILL_ELIMIT with the data kept. */
static void check_limit_boundary(rill_reader *r, int peer)
{
	const size_t L = SMALL_LIMIT;
	rill_time saved;
	char buf[64];
	rill_bytes v;

	/* L bytes and no separator: it waits (here until a deadline). */
	peer_sends(peer, repeat('x', L));
	wait_buffered(r, L);
	saved = rill_deadline_push(30 * RILL_NSEC_PER_MSEC);
	cr_assert_eq(rill_reader_readuntil(r, "\n", 1, &v), -ETIMEDOUT);
	rill_deadline_pop(saved);
	cr_assert_eq(rill_reader_buffered(r), L);
	peer_sends(peer, "\n");
	cr_assert_eq(rill_reader_readuntil(r, "\n", 1, &v), (ssize_t)L + 1);
	cr_assert_arr_eq(v.data, repeat('x', L), L);

	peer_sends(peer, repeat('y', L + 1));
	cr_assert_eq(rill_reader_readuntil(r, "\n", 1, &v), RILL_ELIMIT);
	cr_assert_eq(rill_reader_error_info(r)->consumed, L + 1);
	cr_assert_eq(rill_reader_buffered(r), L + 1);
	peer_sends(peer, "\n");
	cr_assert_eq(rill_sleep_ms(30), 0);
	cr_assert_eq(rill_reader_readuntil(r, "\n", 1, &v), RILL_ELIMIT);
	cr_assert_eq(rill_reader_error_info(r)->consumed, L + 1);
	/* The data stayed: it reads out whole. */
	cr_assert_eq(rill_reader_readexactly(r, buf, L + 2), (ssize_t)L + 2);
	cr_assert_arr_eq(buf, repeat('y', L + 1), L + 1);
	cr_assert_eq(buf[L + 1], '\n');
}

TASK_TEST(streams_reader, limit_at_and_one_past_the_boundary_unix)
{
	struct conn c;

	open_unix(&c, SMALL_LIMIT);
	check_limit_boundary(c.r, c.peer);
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_reader, limit_at_and_one_past_the_boundary_tcp)
{
	struct conn c;

	open_tcp(&c, SMALL_LIMIT);
	check_limit_boundary(c.r, c.peer);
	conn_done(&c);
	return 0;
}

struct limit_srv {
	int peer;
	bool done;
};

static int limit_client_cb(rill_reader *r, rill_writer *w, void *arg)
{
	struct limit_srv *ls = arg;

	while (ls->peer < 0)
		cr_assert_eq(rill_sleep_ms(1), 0);
	check_limit_boundary(r, ls->peer);
	rill_writer_close(w);
	ls->done = true;
	return 0;
}

TASK_TEST(streams_reader, limit_from_server_option)
{
	rill_server_options so = { .size = sizeof(rill_server_options), .sock = -1,
		.limit = SMALL_LIMIT };
	struct limit_srv ls = { .peer = -1 };
	rill_server *srv;
	int fd;

	cr_assert_eq(rill_start_server(limit_client_cb, &ls, "127.0.0.1", 0, &so, &srv), 0);
	fd = tcp_client(rill_server_port(srv));
	set_nonblock(fd);
	ls.peer = fd;
	/* Close only once the connection was accepted and served. */
	while (!ls.done)
		cr_assert_eq(rill_sleep_ms(1), 0);
	rill_server_close(srv);
	cr_assert_eq(rill_server_wait_closed(srv), 0);
	cr_assert(ls.done);
	rill_server_free(srv);
	close(fd);
	return 0;
}

/* ---- readline ------------------------------------------------------ */

TASK_TEST(streams_reader, readline_overrun_drops_the_line_and_its_newline)
{
	struct conn c;
	char line[64];
	rill_bytes v;

	open_unix(&c, SMALL_LIMIT);
	/* One send: the long line, its newline and the next line arrive
	 * together, so the overrun sees the newline and drops up to it. */
	snprintf(line, sizeof(line), "%s\nnext\n", repeat('x', 40));
	peer_sends(c.peer, line);
	cr_assert_eq(rill_reader_readline(c.r, &v), RILL_ELIMIT);
	cr_assert_eq(rill_reader_buffered(c.r), 5);
	cr_assert_eq(rill_reader_readline(c.r, &v), 5);
	assert_view(v, "next\n");
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_reader, readline_overrun_without_newline_drops_the_buffer)
{
	struct conn c;
	struct script s = { .parts = { "tail\nnext\n" }, .delay_ms = 50,
			    .close_after = true };
	rill_bytes v;
	rill_task *t;

	open_unix(&c, SMALL_LIMIT);
	peer_sends(c.peer, repeat('x', 40));
	cr_assert_eq(rill_reader_readline(c.r, &v), RILL_ELIMIT);
	cr_assert_eq(rill_reader_error_info(c.r)->consumed, 40);
	/* No newline in the buffer: all of it was dropped. */
	cr_assert_eq(rill_reader_buffered(c.r), 0);
	s.peer = &c.peer;
	t = spawn(script_task, &s);
	cr_assert_eq(rill_reader_readline(c.r, &v), 5);
	assert_view(v, "tail\n");
	cr_assert_eq(rill_reader_readline(c.r, &v), 5);
	assert_view(v, "next\n");
	cr_assert_eq(rill_reader_readline(c.r, &v), 0);
	join(t);
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_reader, readline_partial_at_eof_then_zero)
{
	struct conn c;
	struct script s = { .parts = { "a\nb" }, .close_after = true };
	rill_bytes v;
	rill_task *t;

	open_unix(&c, 0);
	s.peer = &c.peer;
	t = spawn(script_task, &s);
	cr_assert_eq(rill_reader_readline(c.r, &v), 2);
	assert_view(v, "a\n");
	cr_assert_eq(rill_reader_readline(c.r, &v), 1);
	assert_view(v, "b");
	cr_assert_eq(rill_reader_readline(c.r, &v), 0);
	cr_assert_eq(v.len, 0);
	cr_assert_eq(rill_reader_readline(c.r, &v), 0);
	join(t);
	conn_done(&c);
	return 0;
}

#define NLINES 2000

/* Sends NLINES numbered lines from *arg, the peer, in pieces of changing
 * size; then closes it (*arg becomes -1). */
static int lines_task(void *arg)
{
	int *peer = arg;
	char *all = malloc(NLINES * 32);
	size_t len = 0, off = 0, step = 1;

	cr_assert_not_null(all);
	for (int i = 0; i < NLINES; i++)
		len += (size_t)sprintf(all + len, "line %d%s\n", i,
				       i % 7 ? "" : " with a longer tail");
	while (off < len) {
		size_t k = len - off < step ? len - off : step;

		peer_send(*peer, all + off, k);
		off += k;
		step = step * 3 % 997 + 1;
		if (off % 5 == 0)
			cr_assert_eq(rill_yield(), 0);
	}
	peer_close(peer);
	free(all);
	return 0;
}

TASK_TEST(streams_reader, line_iteration_until_zero)
{
	struct conn c;
	char want[64];
	rill_bytes v;
	ssize_t n;
	rill_task *t;
	int i = 0;

	open_unix(&c, 0);
	t = spawn(lines_task, &c.peer);
	while ((n = rill_reader_readline(c.r, &v)) > 0) {
		cr_assert_lt(i, NLINES);
		snprintf(want, sizeof(want), "line %d%s\n", i,
			 i % 7 ? "" : " with a longer tail");
		assert_view(v, want);
		i++;
	}
	cr_assert_eq(n, 0);
	cr_assert_eq(i, NLINES);
	join(t);
	conn_done(&c);
	return 0;
}

/* ---- exception ----------------------------------------------------- */

TASK_TEST(streams_reader, set_exception_beats_buffered_data)
{
	struct conn c;
	struct pending_line e = { 0 };
	char buf[16];
	rill_bytes v;
	rill_task *t;

	open_unix(&c, 0);
	/* A waiting reader is woken with the exception. */
	e.r = c.r;
	t = spawn(readline_task, &e);
	cr_assert_eq(rill_sleep_ms(10), 0);
	cr_assert(e.started);
	rill_reader_set_exception(c.r, -EPROTO);
	join(t);
	cr_assert_eq(e.got, -EPROTO);

	/* Data buffered: every read still returns the exception. */
	peer_sends(c.peer, "data\nmore\n");
	wait_buffered(c.r, 10);
	cr_assert_eq(rill_reader_exception(c.r), -EPROTO);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), -EPROTO);
	cr_assert_eq(rill_reader_read(c.r, buf, 0), -EPROTO);
	cr_assert_eq(rill_reader_readline(c.r, &v), -EPROTO);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 2), -EPROTO);
	cr_assert_eq(rill_reader_readuntil(c.r, "\n", 1, &v), -EPROTO);
	cr_assert_eq(rill_reader_read_all(c.r, &v), -EPROTO);
	cr_assert_eq(rill_reader_peek(c.r, &v), -EPROTO);
	cr_assert_eq(rill_reader_buffered(c.r), 10);
	conn_done(&c);
	return 0;
}

/* ---- one waiter at a time ------------------------------------------ */

TASK_TEST(streams_reader, second_waiter_gets_ebusy_at_once)
{
	struct conn c;
	struct pending_line e = { 0 };
	char buf[8];
	rill_bytes v;
	rill_task *t;
	rill_time t0;

	open_unix(&c, 0);
	e.r = c.r;
	t = spawn(readline_task, &e);
	cr_assert_eq(rill_sleep_ms(10), 0);
	cr_assert(e.started);
	t0 = rill_now();
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), -EBUSY);
	cr_assert_eq(rill_reader_readline(c.r, &v), -EBUSY);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 1), -EBUSY);
	cr_assert_eq(rill_reader_peek(c.r, &v), -EBUSY);
	cr_assert_eq(rill_reader_read_all(c.r, &v), -EBUSY);
	cr_assert_lt(rill_now() - t0, 2 * RILL_NSEC_PER_SEC);
	/* The first reader is unharmed and gets the line. */
	peer_sends(c.peer, "x\n");
	join(t);
	cr_assert_eq(e.got, 2);
	cr_assert_eq(rill_reader_buffered(c.r), 0);
	conn_done(&c);
	return 0;
}

/* asyncio raises the RuntimeError in _wait_for_data only: a second task
 * whose read is answered by what is buffered gets the data. */
TASK_TEST(streams_reader, second_reader_gets_buffered_data)
{
	struct conn c;
	struct pending_line e = { 0 };
	char buf[8];
	rill_task *t;

	open_unix(&c, 0);
	e.r = c.r;
	t = spawn(readline_task, &e);
	cr_assert_eq(rill_sleep_ms(10), 0);
	cr_assert(e.started);
	peer_sends(c.peer, "abc");
	cr_assert_eq(rill_sleep_ms(10), 0);
	cr_assert_eq(rill_reader_buffered(c.r), 3);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 3);
	cr_assert_arr_eq(buf, "abc", 3);
	/* Nothing buffered: this one would wait, and cannot. */
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), -EBUSY);
	peer_sends(c.peer, "de\nf");
	cr_assert_eq(rill_sleep_ms(10), 0);
	join(t);
	cr_assert_eq(e.got, 3);	/* "de\n": the first reader's line */
	cr_assert_eq(rill_reader_buffered(c.r), 1);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 1), 1);
	conn_done(&c);
	return 0;
}

struct exact10 {
	rill_reader *r;
	char buf[10];
	ssize_t got;
};

static int exact10_task(void *arg)
{
	struct exact10 *x = arg;

	x->got = rill_reader_readexactly(x->r, x->buf, 10);
	return 0;
}

/* A view handed to the second reader stays readable while the first goes
 * on, and its bytes are not handed out twice. */
TASK_TEST(streams_reader, second_reader_view_is_not_read_twice)
{
	struct conn c;
	struct exact10 x = { 0 };
	rill_bytes v;
	rill_task *t;

	open_unix(&c, 0);
	x.r = c.r;
	peer_sends(c.peer, "l1\nrest");
	cr_assert_eq(rill_sleep_ms(10), 0);
	t = spawn(exact10_task, &x);
	cr_assert_eq(rill_sleep_ms(10), 0);
	cr_assert_eq(rill_reader_readline(c.r, &v), 3);
	cr_assert_arr_eq(v.data, "l1\n", 3);
	peer_sends(c.peer, "0123456789");
	cr_assert_eq(rill_sleep_ms(10), 0);
	cr_assert_arr_eq(v.data, "l1\n", 3);
	join(t);
	cr_assert_eq(x.got, 10);
	cr_assert_arr_eq(x.buf, "rest012345", 10);
	cr_assert_eq(rill_reader_buffered(c.r), 4);
	conn_done(&c);
	return 0;
}

/* ---- cancellation and deadlines ----------------------------------- */

struct exact_reader {
	rill_reader *r;
	char buf[16];
	ssize_t got;
};

static int exact_reader_task(void *arg)
{
	struct exact_reader *er = arg;

	er->got = rill_reader_readexactly(er->r, er->buf, 10);
	return 0;
}

TASK_TEST(streams_reader, cancelled_or_timed_out_read_keeps_the_data)
{
	struct exact_reader er = { .got = 1 };
	struct conn c;
	char buf[16];
	rill_bytes v;
	rill_task *t;
	rill_time saved;

	open_unix(&c, 0);
	peer_sends(c.peer, "12345");
	er.r = c.r;
	t = spawn(exact_reader_task, &er);
	wait_buffered(c.r, 5);
	cr_assert_eq(rill_sleep_ms(5), 0);
	cr_assert_eq(rill_task_cancel(t), 0);
	join(t);
	cr_assert_eq(er.got, -ECANCELED);
	/* Nothing was taken: the next reader gets every byte. */
	cr_assert_eq(rill_reader_buffered(c.r), 5);
	peer_sends(c.peer, "67890");
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 10), 10);
	cr_assert_arr_eq(buf, "1234567890", 10);

	peer_sends(c.peer, "no newline yet");
	wait_buffered(c.r, 14);
	saved = rill_deadline_push(30 * RILL_NSEC_PER_MSEC);
	cr_assert_eq(rill_reader_readline(c.r, &v), -ETIMEDOUT);
	rill_deadline_pop(saved);
	cr_assert_eq(rill_reader_buffered(c.r), 14);
	peer_sends(c.peer, "\n");
	cr_assert_eq(rill_reader_readline(c.r, &v), 15);
	assert_view(v, "no newline yet\n");
	conn_done(&c);
	return 0;
}

/* ---- views --------------------------------------------------------- */

TASK_TEST(streams_reader, views_stay_valid_while_more_data_arrives)
{
	const size_t part = 256 * 1024;
	struct conn c;
	struct bulk b = { .n = part };
	unsigned char *buf = malloc(2 * part), *copy = malloc(part);
	rill_bytes line, peek;
	rill_task *t;

	cr_assert(buf && copy);
	open_unix(&c, 1 << 20);	/* nothing pauses: every byte comes in */
	peer_sends(c.peer, "first line\nsecond");
	cr_assert_eq(rill_reader_readline(c.r, &line), 11);
	assert_view(line, "first line\n");
	/* 256 KiB arrive before the next call: the view must not change. */
	b.peer = &c.peer;
	t = spawn(bulk_task, &b);
	join(t);
	wait_buffered(c.r, 6 + part);
	assert_view(line, "first line\n");

	cr_assert_eq(rill_reader_readexactly(c.r, buf, 6), 6);
	cr_assert_arr_eq(buf, "second", 6);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, part / 2), (ssize_t)part / 2);
	check_pat(buf, 0, part / 2);
	/* A peek view survives more data too, and consumes nothing. */
	cr_assert_eq(rill_reader_peek(c.r, &peek), (ssize_t)part / 2);
	memcpy(copy, peek.data, peek.len);
	b.off = part;
	t = spawn(bulk_task, &b);
	join(t);
	wait_buffered(c.r, part / 2 + part);
	cr_assert_eq(peek.len, part / 2);
	cr_assert_eq(memcmp(peek.data, copy, peek.len), 0);
	check_pat(peek.data, part / 2, peek.len);

	/* Every byte is still there, in order. */
	cr_assert_eq(rill_reader_readexactly(c.r, buf, part + part / 2),
		     (ssize_t)(part + part / 2));
	check_pat(buf, part / 2, part + part / 2);
	cr_assert_eq(rill_reader_buffered(c.r), 0);
	free(buf);
	free(copy);
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_reader, peek_then_consume)
{
	struct conn c;
	struct script s = { .parts = { "hello world" }, .close_after = true };
	char buf[16];
	rill_bytes v;
	rill_task *t;

	open_unix(&c, 0);
	s.peer = &c.peer;
	t = spawn(script_task, &s);
	cr_assert_eq(rill_reader_peek(c.r, &v), 11);
	assert_view(v, "hello world");
	cr_assert_eq(rill_reader_peek(c.r, &v), 11);
	assert_view(v, "hello world");
	rill_reader_consume(c.r, 6);
	cr_assert_eq(rill_reader_buffered(c.r), 5);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 5);
	cr_assert_arr_eq(buf, "world", 5);
	cr_assert_eq(rill_reader_peek(c.r, &v), 0);
	cr_assert(rill_reader_at_eof(c.r));
	join(t);
	conn_done(&c);
	return 0;
}

/* ---- standalone reader --------------------------------------------- */

static int feeder_task(void *arg)
{
	rill_reader *r = arg;

	cr_assert_eq(rill_sleep_ms(10), 0);
	cr_assert_eq(rill_reader_feed_data(r, "hel", 3), 0);
	cr_assert_eq(rill_sleep_ms(10), 0);
	cr_assert_eq(rill_reader_feed_data(r, "lo\nwor", 6), 0);
	cr_assert_eq(rill_sleep_ms(10), 0);
	cr_assert_eq(rill_reader_feed_data(r, "ld\n", 3), 0);
	cr_assert_eq(rill_reader_feed_data(r, NULL, 0), 0);
	rill_reader_feed_eof(r);
	return 0;
}

TASK_TEST(streams_reader, standalone_reader_fed_by_another_task)
{
	static char big[200 * 1024];
	rill_reader *r;
	char buf[8];
	rill_bytes v;
	rill_task *t;

	cr_assert_eq(rill_reader_new(0, NULL), -EINVAL);
	cr_assert_eq(rill_reader_new(0, &r), 0);
	t = spawn(feeder_task, r);
	cr_assert_eq(rill_reader_readline(r, &v), 6);
	assert_view(v, "hello\n");
	cr_assert_eq(rill_reader_readexactly(r, buf, 3), 3);
	cr_assert_arr_eq(buf, "wor", 3);
	cr_assert_eq(rill_reader_readline(r, &v), 3);
	assert_view(v, "ld\n");
	cr_assert_eq(rill_reader_readline(r, &v), 0);
	cr_assert(rill_reader_at_eof(r));
	join(t);
	rill_reader_free(r);

	/* Fed beyond 2 x limit: nothing to pause, nothing lost. */
	cr_assert_eq(rill_reader_new(4096, &r), 0);
	fill_pat((unsigned char *)big, 0, sizeof(big));
	cr_assert_eq(rill_reader_feed_data(r, big, sizeof(big)), 0);
	rill_reader_feed_eof(r);
	cr_assert_eq(rill_reader_buffered(r), sizeof(big));
	cr_assert_eq(rill_reader_read_all(r, &v), (ssize_t)sizeof(big));
	check_pat(v.data, 0, v.len);
	rill_reader_free(r);
	return 0;
}

/* ---- read-side flow control ---------------------------------------- */

#define FLOW_LIMIT (16 * 1024)
/* What may land after the pause: the rest of one recv's data. */
#define FLOW_SLACK (64 * 1024)

/* The flow-control peer is a thread with a blocking socket, as a peer in
 * another process would be (a peer task on the loop's own thread would
 * run the kernel's receive work inside its own send() calls). A paced
 * peer sleeps between pieces, as data from a network would come. */
struct flow_peer {
	int fd;
	size_t n;
	bool paced;
};

static void *flow_peer_thread(void *arg)
{
	struct flow_peer *p = arg;
	unsigned char piece[8 * 1024];
	const struct timespec gap = { .tv_nsec = 1000 * 1000 };

	for (size_t i = 0; i < p->n; i += sizeof(piece)) {
		size_t k = p->n - i < sizeof(piece) ? p->n - i : sizeof(piece);

		fill_pat(piece, i, k);
		for (size_t done = 0; done < k;) {
			ssize_t w = send(p->fd, piece + done, k - done, MSG_NOSIGNAL);

			if (w <= 0)
				return (void *)-1;
			done += (size_t)w;
		}
		if (p->paced)
			nanosleep(&gap, NULL);
	}
	close(p->fd);
	return NULL;
}

/* Reads n bytes of the pattern that starts at offset off; returns the
 * offset after them. */
static size_t consume_checked(rill_reader *r, size_t off, size_t n)
{
	unsigned char buf[8192];

	while (n) {
		size_t k = n < sizeof(buf) ? n : sizeof(buf);

		cr_assert_eq(rill_reader_readexactly(r, buf, k), (ssize_t)k);
		check_pat(buf, off, k);
		off += k;
		n -= k;
	}
	return off;
}

/* The peer sends total bytes while nobody reads for 200 ms: the buffer
 * must stop near 2 x limit. Then every byte must arrive, in order. */
static void check_flow_control(struct conn *c, size_t total, bool paced,
			       size_t slack)
{
	struct flow_peer p = { .fd = c->peer, .n = total, .paced = paced };
	unsigned char buf[8192];
	size_t most = 0, got = 0;
	void *tres;
	ssize_t n;
	pthread_t t;

	cr_assert_eq(fcntl(c->peer, F_SETFL, 0), 0);	/* blocking */
	cr_assert_eq(pthread_create(&t, NULL, flow_peer_thread, &p), 0);
	/* 200 ms at least, and until reading stopped (5 s at most). */
	for (int i = 0; i < 1000 && (i < 40 || most <= 2 * FLOW_LIMIT); i++) {
		size_t now = rill_reader_buffered(c->r);

		most = now > most ? now : most;
		cr_assert_eq(rill_sleep_ms(5), 0);
	}
	cr_assert_gt(most, 2 * FLOW_LIMIT, "reading stopped early at %zu", most);
	cr_assert_leq(most, 2 * FLOW_LIMIT + slack,
		      "buffered %zu with limit %d", most, FLOW_LIMIT);
	/* Reading resumes at the limit, not above it. */
	got = consume_checked(c->r, got,
			      rill_reader_buffered(c->r) - (FLOW_LIMIT + 1));
	cr_assert_eq(rill_sleep_ms(20), 0);
	cr_assert_eq(rill_reader_buffered(c->r), FLOW_LIMIT + 1);
	got = consume_checked(c->r, got, 1);
	for (int i = 0; i < 5000 && rill_reader_buffered(c->r) <= FLOW_LIMIT; i++)
		cr_assert_eq(rill_sleep_ms(1), 0);
	cr_assert_gt(rill_reader_buffered(c->r), FLOW_LIMIT, "reading did not resume");
	while ((n = rill_reader_read(c->r, buf, sizeof(buf))) > 0) {
		check_pat(buf, got, (size_t)n);
		got += (size_t)n;
		cr_assert_leq(rill_reader_buffered(c->r), 2 * FLOW_LIMIT + slack);
	}
	cr_assert_eq(n, 0);
	cr_assert_eq(got, total);
	cr_assert_eq(pthread_join(t, &tres), 0);
	cr_assert_null(tres);
	c->peer = -1;
}

TASK_TEST(streams_reader, flow_control_pauses_reading_above_twice_the_limit_unix)
{
	struct conn c;

	open_unix(&c, FLOW_LIMIT);
	/* Kernel buffers as small as they go: what rill holds, not what the
	 * kernel queues, decides how much the peer gets to send. */
	small_buffer(c.peer, SO_SNDBUF);
	check_flow_control(&c, 20 * FLOW_LIMIT, true, FLOW_SLACK);
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_reader, flow_control_pauses_reading_above_twice_the_limit_tcp)
{
	struct conn c;

	open_tcp_small(&c, FLOW_LIMIT, SO_RCVBUF);
	small_buffer(c.peer, SO_SNDBUF);
	check_flow_control(&c, 20 * FLOW_LIMIT, true, FLOW_SLACK);
	conn_done(&c);
	return 0;
}

/* A peer sending 64 MiB as fast as loopback goes. Without DEFER_TASKRUN
 * the kernel fills provided buffers while the loop works, so what lands
 * after the pause is bounded by the loop's buffer ring (512 x 16 KiB by
 * default) and the socket's queue, not by one recv; but reading must
 * still stop, not take in whatever the peer sends. */
#define RING_BYTES (512u * 16 * 1024)

TASK_TEST(streams_reader, flow_control_holds_against_a_fast_peer)
{
	struct conn c;

	open_unix(&c, FLOW_LIMIT);
	check_flow_control(&c, 64u << 20, false, RING_BYTES + (1u << 20));
	conn_done(&c);
	return 0;
}

/* ---- end of stream ------------------------------------------------- */

TASK_TEST(streams_reader, peer_close_is_eof)
{
	struct conn c;
	struct script s = { .parts = { "bye" }, .close_after = true };
	char buf[8];
	rill_task *t;

	open_tcp(&c, 0);
	s.peer = &c.peer;
	t = spawn(script_task, &s);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 3);
	cr_assert_arr_eq(buf, "bye", 3);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 0);
	cr_assert(rill_reader_at_eof(c.r));
	cr_assert_eq(rill_reader_exception(c.r), 0);
	join(t);
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_reader, peer_reset_is_econnreset)
{
	struct conn c;
	char buf[8];

	open_tcp(&c, 0);
	peer_reset(&c.peer);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), -ECONNRESET);
	cr_assert_eq(rill_reader_exception(c.r), -ECONNRESET);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), -ECONNRESET);
	cr_assert_eq(writer_done(c.w), -ECONNRESET);
	return 0;
}

TASK_TEST(streams_reader, eof_keeps_the_writer_usable)
{
	struct conn c;
	struct script s = { .parts = { "question" }, .shut_after = true };
	char buf[16];
	rill_task *t;

	open_tcp(&c, 0);
	s.peer = &c.peer;
	t = spawn(script_task, &s);
	cr_assert_eq(rill_reader_readexactly(c.r, buf, 8), 8);
	cr_assert_eq(rill_reader_read(c.r, buf, sizeof(buf)), 0);
	join(t);
	/* Our read side is at EOF; the write side still works. */
	cr_assert_not(rill_writer_is_closing(c.w));
	cr_assert_eq(rill_writer_write(c.w, "answer", 6), 0);
	cr_assert_eq(rill_writer_drain(c.w), 0);
	cr_assert_eq(peer_recv_all(c.peer, buf, 6), 6);
	cr_assert_arr_eq(buf, "answer", 6);
	rill_writer_close(c.w);
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	cr_assert_eq(peer_recv_all(c.peer, buf, sizeof(buf)), 0);
	rill_writer_free(c.w);
	close(c.peer);
	return 0;
}

/* ---- the messages of the exceptions --------------------------------- */

/* rill_error_detail() after RILL_EINCOMPLETE and RILL_ELIMIT reads as the
 * message of asyncio's exception. */
TASK_TEST(streams_reader, exception_messages_read_as_asyncio)
{
	rill_reader *r;
	rill_bytes v;
	char buf[64];

	cr_assert_eq(rill_reader_new(16, &r), 0);
	cr_assert_eq(rill_reader_feed_data(r, "abcdefghijklmnopqrstuvwxyz", 26), 0);
	cr_assert_eq(rill_reader_readuntil(r, "\n", 1, &v), RILL_ELIMIT);
	cr_assert_str_eq(rill_error_detail(),
			 "Separator is not found, and chunk exceed the limit");
	cr_assert_eq(rill_reader_readline(r, &v), RILL_ELIMIT);
	cr_assert_str_eq(rill_error_detail(),
			 "Separator is not found, and chunk exceed the limit");
	cr_assert_eq(rill_reader_feed_data(r, "0123456789abcdefghij\n", 21), 0);
	cr_assert_eq(rill_reader_readuntil(r, "\n", 1, &v), RILL_ELIMIT);
	cr_assert_str_eq(rill_error_detail(),
			 "Separator is found, but chunk is longer than limit");
	cr_assert_eq(rill_reader_readline(r, &v), RILL_ELIMIT);
	cr_assert_str_eq(rill_error_detail(),
			 "Separator is found, but chunk is longer than limit");
	cr_assert_eq(rill_reader_feed_data(r, "0123456789abcdefgh", 18), 0);
	rill_reader_feed_eof(r);
	cr_assert_eq(rill_reader_readexactly(r, buf, 36), RILL_EINCOMPLETE);
	cr_assert_str_eq(rill_error_detail(), "18 bytes read on a total of 36 expected bytes");
	cr_assert_eq(rill_reader_feed_data(r, "tail", 4), 0);
	cr_assert_eq(rill_reader_readuntil(r, "\n", 1, &v), RILL_EINCOMPLETE);
	cr_assert_str_eq(rill_error_detail(),
			 "4 bytes read on a total of undefined expected bytes");
	rill_reader_free(r);
	return 0;
}
