/* SPDX-License-Identifier: MIT */
/* Reader buffer and CPython StreamReader parsing decisions (streams/rbuf.c). */
/*
 * Every expectation about read, readline, readuntil and readexactly below was
 * taken from CPython's asyncio.StreamReader by tests/reader_reference.py: the
 * test name matches the script's case name, and the CPython line is quoted.
 * Tuple separators are Python 3.13's; on an older interpreter the script
 * emulates them and says so.
 *
 * The helpers step the parser the way the reader will: after each fed chunk,
 * keeping the scan offset for the duration of one readuntil call.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "streams/rbuf.h"

static struct rill__rbuf buf;
static int at_eof;

static void setup(void)
{
	rill__rbuf_init(&buf);
	at_eof = 0;
}

static void teardown(void)
{
	rill__rbuf_free(&buf);
}

TestSuite(streams_parse, .init = setup, .fini = teardown);

static void feed(const char *s)
{
	cr_assert_eq(rill__rbuf_append(&buf, s, strlen(s)), 0);
}

static void seps1(struct rill__seps *s, const char *sep)
{
	const void *p[] = { sep };
	size_t len[] = { strlen(sep) };

	cr_assert_eq(rill__seps_init(s, p, len, 1), 0);
}

static void seps2(struct rill__seps *s, const char *a, const char *b)
{
	const void *p[] = { a, b };
	size_t len[] = { strlen(a), strlen(b) };

	cr_assert_eq(rill__seps_init(s, p, len, 2), 0);
}

/* Asserts that the buffer holds exactly the string s. */
static void assert_buf(const char *s)
{
	size_t n = strlen(s);

	cr_assert_eq(rill__rbuf_len(&buf), n, "buffered %zu, want %zu",
		     rill__rbuf_len(&buf), n);
	if (n)
		cr_assert_arr_eq(rill__rbuf_peek(&buf), s, n);
}

/* Asserts the DONE result hands out the string s, then consumes it. */
static void assert_take(struct rill__parse r, const char *s)
{
	size_t n = strlen(s);

	cr_assert_eq(r.kind, RILL__PARSE_DONE, "kind %d", r.kind);
	cr_assert_eq(r.n, n, "n %zu, want %zu", r.n, n);
	if (n)
		cr_assert_arr_eq(rill__rbuf_peek(&buf), s, n);
	rill__rbuf_consume(&buf, n);
}

static void assert_kind(struct rill__parse r, enum rill__parse_kind k,
			size_t n)
{
	cr_assert_eq(r.kind, k, "kind %d, want %d", r.kind, k);
	cr_assert_eq(r.n, n, "n %zu, want %zu", r.n, n);
}

static struct rill__parse until(const struct rill__seps *s, size_t limit,
				size_t *off)
{
	return rill__parse_readuntil(&buf, s, limit, at_eof, off);
}

/* CPython: ok b'abcd\n' buffer=b'xyz' (limit 4: 4 bytes before "\n" fit) */
Test(streams_parse, readuntil_limit_found_at)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\n");
	feed("abcd\nxyz");
	assert_take(until(&s, 4, &off), "abcd\n");
	assert_buf("xyz");
}

/* CPython: LimitOverrunError consumed=5 buffer=b'abcde\nxyz' */
Test(streams_parse, readuntil_limit_found_past)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\n");
	feed("abcde\nxyz");
	assert_kind(until(&s, 4, &off), RILL__PARSE_LIMIT, 5);
	assert_buf("abcde\nxyz");
}

/* CPython: IncompleteReadError partial=b'abcd' expected=None: 4 bytes
 * without a separator are within limit 4, so the read waits for EOF. */
Test(streams_parse, readuntil_limit_notfound_at)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\n");
	feed("abcd");
	assert_kind(until(&s, 4, &off), RILL__PARSE_NEED_MORE, 0);
	cr_assert_eq(off, 4);
	at_eof = 1;
	assert_kind(until(&s, 4, &off), RILL__PARSE_INCOMPLETE, 4);
}

/* CPython: LimitOverrunError consumed=5 buffer=b'abcde' */
Test(streams_parse, readuntil_limit_notfound_past)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\n");
	feed("abcde");
	assert_kind(until(&s, 4, &off), RILL__PARSE_LIMIT, 5);
	assert_buf("abcde");
}

/* CPython: IncompleteReadError partial=b'abcdef': a 4-byte separator lets
 * 4 + 3 - 1 = 6 bytes wait without crossing limit 4 (offset 3). */
Test(streams_parse, readuntil_limit_notfound_long_sep_at)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\r\n\r\n");
	feed("abcdef");
	assert_kind(until(&s, 4, &off), RILL__PARSE_NEED_MORE, 0);
	cr_assert_eq(off, 3);
	at_eof = 1;
	assert_kind(until(&s, 4, &off), RILL__PARSE_INCOMPLETE, 6);
}

/* CPython: LimitOverrunError consumed=5 buffer=b'abcdefgh' */
Test(streams_parse, readuntil_limit_notfound_long_sep_past)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\r\n\r\n");
	feed("abcdefgh");
	assert_kind(until(&s, 4, &off), RILL__PARSE_LIMIT, 5);
}

/* CPython: LimitOverrunError consumed=5 buffer=b'abcde' for chunks "abc",
 * "de", "\n": the limit trips before the newline arrives. */
Test(streams_parse, readuntil_limit_across_chunks)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\n");
	assert_kind(until(&s, 4, &off), RILL__PARSE_NEED_MORE, 0);
	feed("abc");
	assert_kind(until(&s, 4, &off), RILL__PARSE_NEED_MORE, 0);
	feed("de");
	assert_kind(until(&s, 4, &off), RILL__PARSE_LIMIT, 5);
	assert_buf("abcde");
}

/* CPython: LimitOverrunError consumed=5 buffer=b'abcde\n': same bytes as
 * above in one chunk, and consumed is the separator's start. */
Test(streams_parse, readuntil_limit_one_chunk)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\n");
	assert_kind(until(&s, 4, &off), RILL__PARSE_NEED_MORE, 0);
	feed("abcde\n");
	assert_kind(until(&s, 4, &off), RILL__PARSE_LIMIT, 5);
	assert_buf("abcde\n");
}

/* CPython: ok b'GET / HTTP/1.1\r\n\r\n' with the separator split 3 + 1. */
Test(streams_parse, readuntil_split_sep)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\r\n\r\n");
	feed("GET / HTTP/1.1\r\n\r");
	assert_kind(until(&s, 64, &off), RILL__PARSE_NEED_MORE, 0);
	cr_assert_eq(off, 14); /* the last 3 bytes may start the separator */
	feed("\n");
	assert_take(until(&s, 64, &off), "GET / HTTP/1.1\r\n\r\n");
	feed("body");
	assert_buf("body");
}

/* CPython: ok b'xxENxEND' when fed one byte at a time. */
Test(streams_parse, readuntil_split_sep_each_byte)
{
	const char *in = "xxENxEND!";
	struct rill__seps s;
	struct rill__parse r = { 0 };
	size_t off = 0, i;

	seps1(&s, "END");
	for (i = 0; in[i]; i++) {
		char c[2] = { in[i], 0 };

		feed(c);
		r = until(&s, 64, &off);
		if (r.kind != RILL__PARSE_NEED_MORE)
			break;
	}
	cr_assert_eq(i, 7);
	assert_take(r, "xxENxEND");
}

/* CPython: IncompleteReadError partial=b'partial\r' expected=None */
Test(streams_parse, readuntil_incomplete)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\r\n");
	feed("partial\r");
	assert_kind(until(&s, 64, &off), RILL__PARSE_NEED_MORE, 0);
	at_eof = 1;
	assert_kind(until(&s, 64, &off), RILL__PARSE_INCOMPLETE, 8);
}

/* CPython: IncompleteReadError partial=b'' */
Test(streams_parse, readuntil_incomplete_empty)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\n");
	at_eof = 1;
	assert_kind(until(&s, 64, &off), RILL__PARSE_INCOMPLETE, 0);
}

/* CPython: ok b'a\n', then IncompleteReadError partial=b'b': a separator
 * already buffered wins over EOF. */
Test(streams_parse, readuntil_found_at_eof)
{
	struct rill__seps s;
	size_t off = 0;

	seps1(&s, "\n");
	feed("a\nb");
	at_eof = 1;
	assert_take(until(&s, 64, &off), "a\n");
	off = 0;
	assert_kind(until(&s, 64, &off), RILL__PARSE_INCOMPLETE, 1);
}

/* CPython: ValueError buffer=b'abc' for b"", () and (b"b", b"") alike. */
Test(streams_parse, readuntil_invalid_separators)
{
	const void *p[] = { "b", "" };
	size_t len[] = { 1, 0 };
	struct rill__seps s;
	size_t off = 0;

	feed("abc");
	cr_assert_eq(rill__seps_init(&s, p + 1, len + 1, 1), -EINVAL);
	assert_kind(until(&s, 64, &off), RILL__PARSE_INVALID, 0);
	rill__seps_free(&s);
	cr_assert_eq(rill__seps_init(&s, p, len, 0), -EINVAL);
	assert_kind(until(&s, 64, &off), RILL__PARSE_INVALID, 0);
	rill__seps_free(&s);
	cr_assert_eq(rill__seps_init(&s, p, len, 2), -EINVAL);
	assert_kind(until(&s, 64, &off), RILL__PARSE_INVALID, 0);
	rill__seps_free(&s);
	assert_buf("abc");
}

/* CPython: ok b'xx||' for (b"||", b";") on b"xx||yy;zz" */
Test(streams_parse, multi_earliest_end)
{
	struct rill__seps s;
	size_t off = 0;

	seps2(&s, "||", ";");
	feed("xx||yy;zz");
	assert_take(until(&s, 64, &off), "xx||");
	assert_buf("yy;zz");
}

/* CPython: ok b'a\r\n' for (b"\r\n", b"\n"): both end at 3. */
Test(streams_parse, multi_tie_shorter)
{
	struct rill__seps s;
	size_t off = 0;

	seps2(&s, "\r\n", "\n");
	feed("a\r\nb");
	assert_take(until(&s, 64, &off), "a\r\n");
}

/* CPython: LimitOverrunError consumed=2 with limit 1: on the tie the
 * shorter "\n" is the match, so its start (2), not "\r\n"'s (1), meets the
 * limit; with "\r\n" alone the same read succeeds. */
Test(streams_parse, multi_tie_limit)
{
	struct rill__seps s, one;
	size_t off = 0;

	seps2(&s, "\r\n", "\n");
	feed("a\r\nb");
	assert_kind(until(&s, 1, &off), RILL__PARSE_LIMIT, 2);
	seps1(&one, "\r\n");
	off = 0;
	assert_take(until(&one, 1, &off), "a\r\n");
}

/* CPython: ok b'xabc' for (b"abcd", b"bc"): "bc" ends first although
 * "abcd" starts first. */
Test(streams_parse, multi_overlap)
{
	struct rill__seps s;
	size_t off = 0;

	seps2(&s, "abcd", "bc");
	feed("xabcd");
	assert_take(until(&s, 64, &off), "xabc");
	assert_buf("d");
}

/* CPython: LimitOverrunError consumed=4 for (b"\n", b"ABCDEF"), limit 3,
 * chunks "12345678" then "9": the longest separator sets the offset. */
Test(streams_parse, multi_limit_notfound)
{
	struct rill__seps s;
	size_t off = 0;

	seps2(&s, "\n", "ABCDEF");
	feed("12345678");
	assert_kind(until(&s, 3, &off), RILL__PARSE_NEED_MORE, 0);
	cr_assert_eq(off, 3);
	feed("9");
	assert_kind(until(&s, 3, &off), RILL__PARSE_LIMIT, 4);
}

/* CPython: ok b'hdr\r\n\r\n' for (b"\r\n\r\n", b"\n\n"), split 6 + 1. */
Test(streams_parse, multi_split)
{
	struct rill__seps s;
	size_t off = 0;

	seps2(&s, "\r\n\r\n", "\n\n");
	feed("hdr\r\n\r");
	assert_kind(until(&s, 64, &off), RILL__PARSE_NEED_MORE, 0);
	feed("\n");
	assert_take(until(&s, 64, &off), "hdr\r\n\r\n");
}

/* CPython: ok b'xxxffff' buffer=b'g' (case multi_many). The set is sorted
 * by length, stably, and spills to the heap past RILL__SEPS_SMALL. */
Test(streams_parse, multi_many)
{
	const void *p[] = { "ccc", "b", "dd", "e", "ffff", "g" };
	size_t len[] = { 3, 1, 2, 1, 4, 1 };
	const char *want[] = { "b", "e", "g", "dd", "ccc", "ffff" };
	struct rill__seps s;
	size_t off = 0;

	cr_assert_eq(rill__seps_init(&s, p, len, 6), 0);
	cr_assert_eq(s.min_len, 1);
	cr_assert_eq(s.max_len, 4);
	for (size_t i = 0; i < 6; i++)
		cr_assert_eq(rill__seps_get(&s)[i].p, want[i]);
	feed("xxxffffg");
	assert_take(until(&s, 64, &off), "xxxffff");
	assert_buf("g");
	rill__seps_free(&s);
}

/* CPython: IncompleteReadError partial=b'abc' expected=5 */
Test(streams_parse, readexactly_eof)
{
	feed("abc");
	assert_kind(rill__parse_readexactly(&buf, 5, 0), RILL__PARSE_NEED_MORE, 0);
	assert_kind(rill__parse_readexactly(&buf, 5, 1), RILL__PARSE_INCOMPLETE, 3);
}

/* CPython: ok b'abcde' buffer=b'fg', limit 2 not applying. */
Test(streams_parse, readexactly_chunks)
{
	feed("ab");
	assert_kind(rill__parse_readexactly(&buf, 5, 0), RILL__PARSE_NEED_MORE, 0);
	feed("cd");
	assert_kind(rill__parse_readexactly(&buf, 5, 0), RILL__PARSE_NEED_MORE, 0);
	feed("efg");
	assert_take(rill__parse_readexactly(&buf, 5, 0), "abcde");
	assert_buf("fg");
}

/* CPython: ok b'' at EOF for 0; ValueError buffer=b'abc' for -1. */
Test(streams_parse, readexactly_zero_negative)
{
	assert_kind(rill__parse_readexactly(&buf, 0, 1), RILL__PARSE_DONE, 0);
	feed("abc");
	assert_kind(rill__parse_readexactly(&buf, -1, 0), RILL__PARSE_INVALID, 0);
	assert_buf("abc");
}

/* readline() as the reader runs it: readuntil(b"\n"), and on LIMIT drop
 * what CPython drops. Returns the parse result. */
static struct rill__parse readline_step(size_t limit, size_t *off)
{
	struct rill__seps s;
	struct rill__parse r;

	seps1(&s, "\n");
	r = until(&s, limit, off);
	if (r.kind == RILL__PARSE_LIMIT)
		rill__rbuf_consume(&buf, rill__readline_overrun_drop(&buf, r.n));
	return r;
}

/* CPython: ValueError buffer=b'rest\n', then ok b'rest\n' */
Test(streams_parse, readline_overrun_newline)
{
	size_t off = 0;

	feed("abcdefg\nrest\n");
	cr_assert_eq(rill__readline_overrun_drop(&buf, 7), 8);
	assert_kind(readline_step(4, &off), RILL__PARSE_LIMIT, 7);
	assert_buf("rest\n");
	off = 0;
	assert_take(readline_step(4, &off), "rest\n");
}

/* CPython: ValueError buffer=b'', then ok b'xy\n' */
Test(streams_parse, readline_overrun_no_newline)
{
	size_t off = 0;

	feed("abcdefg");
	assert_kind(readline_step(4, &off), RILL__PARSE_LIMIT, 7);
	assert_buf("");
	feed("xy\n");
	off = 0;
	assert_take(readline_step(4, &off), "xy\n");
}

/* CPython: ValueError buffer=b'z' for chunks "abc", "defg\nz" */
Test(streams_parse, readline_overrun_later_chunk)
{
	size_t off = 0;

	feed("abc");
	assert_kind(readline_step(4, &off), RILL__PARSE_NEED_MORE, 0);
	feed("defg\nz");
	assert_kind(readline_step(4, &off), RILL__PARSE_LIMIT, 7);
	assert_buf("z");
}

/* The drop never reads past the buffer: consumed == len clears it. */
Test(streams_parse, readline_overrun_drop_bounds)
{
	feed("abc\n");
	cr_assert_eq(rill__readline_overrun_drop(&buf, 3), 4);
	cr_assert_eq(rill__readline_overrun_drop(&buf, 2), 4);
	cr_assert_eq(rill__readline_overrun_drop(&buf, 4), 4);
	cr_assert_eq(rill__readline_overrun_drop(&buf, 9), 4);
}

/* CPython: ok b'abcd\n' with limit 4 */
Test(streams_parse, readline_at_limit)
{
	size_t off = 0;

	feed("abcd\n");
	assert_take(readline_step(4, &off), "abcd\n");
}

/* CPython: ok b'ab\n', ok b'cd' (the partial), ok b'' at clean EOF */
Test(streams_parse, readline_partial)
{
	size_t off = 0;

	feed("ab\ncd");
	at_eof = 1;
	assert_take(readline_step(64, &off), "ab\n");
	off = 0;
	assert_kind(readline_step(64, &off), RILL__PARSE_INCOMPLETE, 2);
	rill__rbuf_clear(&buf);
	off = 0;
	assert_kind(readline_step(64, &off), RILL__PARSE_INCOMPLETE, 0);
}

/* CPython: b'' for read(0), b'hel' for read(3), b'lo' for read(10), and
 * read(4) on an empty buffer waits. */
Test(streams_parse, read_variants)
{
	feed("hello");
	assert_take(rill__parse_read(&buf, 0, 0), "");
	assert_take(rill__parse_read(&buf, 3, 0), "hel");
	assert_take(rill__parse_read(&buf, 10, 0), "lo");
	assert_kind(rill__parse_read(&buf, 4, 0), RILL__PARSE_NEED_MORE, 0);
	assert_kind(rill__parse_read(&buf, 0, 0), RILL__PARSE_DONE, 0);
}

/* CPython: b'xy', then b'' for read(5) and read(-1) at EOF */
Test(streams_parse, read_eof)
{
	feed("xy");
	assert_take(rill__parse_read(&buf, 5, 1), "xy");
	assert_take(rill__parse_read(&buf, 5, 1), "");
	assert_take(rill__parse_read(&buf, -1, 1), "");
}

/* CPython: read(-1) with limit 2 returns b'abcdefgh' after EOF */
Test(streams_parse, read_all)
{
	assert_kind(rill__parse_read(&buf, -1, 0), RILL__PARSE_NEED_MORE, 0);
	feed("abc");
	assert_kind(rill__parse_read(&buf, -1, 0), RILL__PARSE_NEED_MORE, 0);
	feed("defgh");
	assert_take(rill__parse_read(&buf, -1, 1), "abcdefgh");
}

/* Consumed space is reused in place when the live bytes are no more than
 * the consumed ones. */
Test(streams_parse, rbuf_compacts)
{
	enum { CAP = RILL__RBUF_MIN_CAP, A = CAP * 3 / 4, GONE = CAP / 2, B = CAP / 2 };
	char a[A], b[B];

	memset(a, 'a', sizeof(a));
	memset(b, 'b', sizeof(b));
	cr_assert_eq(rill__rbuf_append(&buf, a, sizeof(a)), 0);
	cr_assert_eq(buf.cap, RILL__RBUF_MIN_CAP);
	rill__rbuf_consume(&buf, GONE);
	cr_assert_eq(rill__rbuf_append(&buf, b, sizeof(b)), 0);
	cr_assert_eq(buf.cap, RILL__RBUF_MIN_CAP);
	cr_assert_eq(buf.start, 0);
	cr_assert_eq(rill__rbuf_len(&buf), A - GONE + B);
	cr_assert_arr_eq(rill__rbuf_peek(&buf), a, A - GONE);
	cr_assert_arr_eq(rill__rbuf_peek(&buf) + A - GONE, b, B);
}

/* With more live than consumed bytes, the buffer doubles instead. */
Test(streams_parse, rbuf_grows)
{
	enum { A = RILL__RBUF_MIN_CAP - 96 };
	char a[A];

	memset(a, 'a', sizeof(a));
	cr_assert_eq(rill__rbuf_append(&buf, a, sizeof(a)), 0);
	rill__rbuf_consume(&buf, 10);
	cr_assert_eq(rill__rbuf_append(&buf, "0123456789", 10), 0);
	cr_assert_eq(rill__rbuf_append(&buf, a, 100), 0);
	cr_assert_eq(buf.cap, 2 * RILL__RBUF_MIN_CAP);
	cr_assert_eq(rill__rbuf_len(&buf), A + 100);
	cr_assert_arr_eq(rill__rbuf_peek(&buf) + A - 10, "0123456789", 10);
}

/* Emptying resets the offsets; reserve + commit appends in place. */
Test(streams_parse, rbuf_reserve_commit)
{
	char *p;

	cr_assert_null(rill__rbuf_peek(&buf));
	feed("abc");
	rill__rbuf_consume(&buf, 3);
	cr_assert_eq(buf.start, 0);
	cr_assert_eq(buf.end, 0);
	p = rill__rbuf_reserve(&buf, 5);
	cr_assert_not_null(p);
	cr_assert_geq(rill__rbuf_tailroom(&buf), 5);
	memcpy(p, "hello", 5);
	assert_buf("");
	rill__rbuf_commit(&buf, 5);
	assert_buf("hello");
	cr_assert_null(rill__rbuf_reserve(&buf, SIZE_MAX));
	assert_buf("hello");
}

/* A drained big buffer is given back; a small or still-full one is not. */
Test(streams_parse, rbuf_shrinks)
{
	size_t big = 1 << 20;
	char *p = calloc(1, big);

	cr_assert_eq(rill__rbuf_append(&buf, p, big), 0);
	cr_assert_geq(buf.cap, big);
	rill__rbuf_consume(&buf, big / 2);
	cr_assert_geq(buf.cap, big); /* half full: kept */
	rill__rbuf_consume(&buf, big / 2 - 100);
	cr_assert_eq(buf.cap, RILL__RBUF_SHRINK_FLOOR);
	cr_assert_eq(rill__rbuf_len(&buf), 100);
	rill__rbuf_clear(&buf);
	cr_assert_eq(buf.cap, RILL__RBUF_SHRINK_FLOOR); /* floor: kept */
	free(p);
}

static uint32_t rng_state = 12345;

static uint32_t rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* 10 MB through the buffer in random appends, reserves and consumes: every
 * byte comes out in order, and the capacity ends near the live size. */
Test(streams_parse, rbuf_10mb_random_chunks)
{
	size_t total = 10u << 20, in = 0, out = 0, peak = 0;
	char chunk[70000];

	while (out < total) {
		size_t n = rng() % sizeof(chunk), live = in - out;

		if (n > total - in)
			n = total - in;
		for (size_t i = 0; i < n; i++)
			chunk[i] = (char)((in + i) * 31 % 251);
		if (rng() & 1) {
			cr_assert_eq(rill__rbuf_append(&buf, chunk, n), 0);
		} else {
			char *p = rill__rbuf_reserve(&buf, n);

			cr_assert_not_null(p);
			memcpy(p, chunk, n);
			rill__rbuf_commit(&buf, n);
		}
		in += n;
		live = in - out;
		if (buf.cap > peak)
			peak = buf.cap;
		n = rng() % (live + 1);
		if (in == total || rng() % 4 == 0)
			n = live; /* drain sometimes */
		for (size_t i = 0; i < n; i++)
			if (rill__rbuf_peek(&buf)[i] != (char)((out + i) * 31 % 251))
				cr_assert_fail("byte %zu differs", out + i);
		rill__rbuf_consume(&buf, n);
		out += n;
	}
	cr_assert_eq(rill__rbuf_len(&buf), 0);
	cr_assert_leq(buf.cap, 4 * (size_t)RILL__RBUF_SHRINK_FLOOR);
	cr_assert_geq(peak, sizeof(chunk));
}
