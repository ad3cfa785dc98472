/* SPDX-License-Identifier: MIT */
/* streams/rbuf.h: the reader's byte buffer and its parsing decisions.
 *
 * This is the part of rill_reader that does no I/O: a growable buffer the
 * engine appends received bytes to, and pure functions that look at the
 * buffer, the EOF flag and the limit and say what the reader must do next,
 * exactly as CPython's asyncio.StreamReader (3.13) decides it: hand out n
 * bytes, wait for more data, fail with LimitOverrunError (keeping the data) or
 * with IncompleteReadError (the caller drops the data). Nothing here waits,
 * consumes or allocates on the reader's behalf: the caller acts on the answer.
 *
 * Not thread-safe; a buffer belongs to one reader on one loop thread.
 */
#ifndef RILL_STREAMS_RBUF_H
#define RILL_STREAMS_RBUF_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The first allocation. Small, because a connection keeps its buffer while
 * it works: 10,000 connections at 4 KiB each would be 40 MiB. (A reader that
 * waits with nothing buffered gives a buffer of this size to its thread's
 * spares, streams/reader.c, so an idle one holds none.) Doubling from here
 * reaches a page-sized message in three steps, once. */
#define RILL__RBUF_MIN_CAP 512

/* A buffer larger than 4 x this size that drains to a quarter of its capacity
 * or less is shrunk (to twice what it holds, at least this size): one peak,
 * say a 10 MB body, must not pin its memory for the rest of the connection,
 * while a buffer at or below this size is never given back, so a busy reader
 * of small messages does not reallocate. */
#define RILL__RBUF_SHRINK_FLOOR (64 * 1024)

/* A contiguous growable byte buffer: bytes [start, end) of data are buffered;
 * [end, cap) is free tail room; [0, start) was consumed and is reclaimed by
 * compaction. Initialise with rill__rbuf_init(); the struct owns data. */
struct rill__rbuf {
	char *data;
	size_t start, end, cap;
	/* The tail room is lent to a recv in flight (streams/reader.c): data
	 * must not move, so consuming only advances start. */
	bool lent;
};

/* Makes b an empty buffer. Allocates nothing. */
void rill__rbuf_init(struct rill__rbuf *b);

/* Frees the memory b owns and leaves it empty, as after rill__rbuf_init(). */
void rill__rbuf_free(struct rill__rbuf *b);

/* The number of buffered bytes. */
static inline size_t rill__rbuf_len(const struct rill__rbuf *b)
{
	return b->end - b->start;
}

/* The buffered bytes, rill__rbuf_len() of them; NULL when nothing was ever
 * allocated (the length is 0 then). Borrowed: valid until the next append,
 * reserve, consume, clear or free on b. */
static inline const char *rill__rbuf_peek(const struct rill__rbuf *b)
{
	return b->data ? b->data + b->start : NULL;
}

/* Free bytes after the buffered ones: how much a caller may write through the
 * pointer rill__rbuf_reserve() returns and then commit. */
static inline size_t rill__rbuf_tailroom(const struct rill__rbuf *b)
{
	return b->cap - b->end;
}

/* Appends n bytes copied from p. Returns 0, or -ENOMEM with b unchanged.
 * Amortised O(1) per byte: see rill__rbuf_reserve(). */
int rill__rbuf_append(struct rill__rbuf *b, const void *p, size_t n);

/* Makes room for at least n more bytes at the end and returns where they go
 * (rill__rbuf_tailroom() says how many fit), or NULL on ENOMEM with b
 * unchanged. Nothing is buffered until rill__rbuf_commit(). The pointer is
 * borrowed like rill__rbuf_peek()'s, and any earlier peek pointer is stale.
 * Consumed space is reclaimed by moving the buffered bytes to the front only
 * when they are no more than the consumed ones, else the buffer doubles, so
 * the bytes moved or copied stay proportional to the bytes appended. */
char *rill__rbuf_reserve(struct rill__rbuf *b, size_t n);

/* Adds the n bytes written after rill__rbuf_reserve() to the buffered ones.
 * n must not exceed rill__rbuf_tailroom(). */
void rill__rbuf_commit(struct rill__rbuf *b, size_t n);

/* Drops n bytes (n <= rill__rbuf_len()) from the front. An emptied buffer
 * starts again at offset 0; a big buffer that drained is shrunk (see
 * RILL__RBUF_SHRINK_FLOOR), best effort: a failed realloc keeps the old one.
 * Peek and reserve pointers are stale afterwards. */
void rill__rbuf_consume(struct rill__rbuf *b, size_t n);

/* Drops every buffered byte, as rill__rbuf_consume(b, rill__rbuf_len(b)). */
void rill__rbuf_clear(struct rill__rbuf *b);

/* One separator: len bytes at p. */
struct rill__sep {
	const char *p;
	size_t len;
};

/* Separator sets up to this size live inside struct rill__seps, so that
 * readline and the common readuntil calls never allocate. */
#define RILL__SEPS_SMALL 4

/* The separators of one readuntil call, sorted by length, shortest first
 * (stable), which is how CPython makes the shorter one win a tie. The bytes
 * are borrowed from the caller and must stay valid until the readuntil call
 * completes; the set itself owns only its array. Read it via
 * rill__seps_get(). A set may be copied by value (it holds no self-pointer). */
struct rill__seps {
	struct rill__sep small[RILL__SEPS_SMALL];
	struct rill__sep *heap;	/* used instead of small when n > SMALL */
	size_t n, min_len, max_len;
};

/* The n separators of s, shortest first. */
static inline const struct rill__sep *rill__seps_get(const struct rill__seps *s)
{
	return s->heap ? s->heap : s->small;
}

/* Builds s from n separators (sep[i] of len[i] bytes, borrowed). Returns 0;
 * -EINVAL when n is 0 or a separator is empty (CPython's ValueError), s then
 * being a set that rill__parse_readuntil() answers INVALID to; or -ENOMEM.
 * In every case s must be released with rill__seps_free(). */
int rill__seps_init(struct rill__seps *s, const void *const *sep,
		    const size_t *len, size_t n);

/* Frees what rill__seps_init() allocated. The separator bytes stay the
 * caller's. */
void rill__seps_free(struct rill__seps *s);

enum rill__parse_kind {
	RILL__PARSE_DONE,	/* hand out n bytes from the front */
	RILL__PARSE_NEED_MORE,	/* wait for data or EOF, then ask again */
	RILL__PARSE_LIMIT,	/* LimitOverrunError; data stays buffered */
	RILL__PARSE_INCOMPLETE,	/* IncompleteReadError; caller clears */
	RILL__PARSE_INVALID,	/* ValueError: bad argument */
};

/* What a reader must do next. n is, for DONE: the bytes to hand out and
 * consume; for LIMIT: LimitOverrunError.consumed; for INCOMPLETE: the length
 * of IncompleteReadError.partial, which is the whole buffer; otherwise 0. */
struct rill__parse {
	enum rill__parse_kind kind;
	size_t n;
};

/* readuntil(separators): one step of CPython's loop. *offset is the count of
 * leading bytes known to hold no separator; the caller sets it to 0 when the
 * readuntil call starts and keeps it, with the buffer unconsumed, across the
 * NEED_MORE answers of that call, so no byte is searched twice. For a result
 * identical to CPython's, ask again after each received chunk, not after
 * several: where the limit is crossed depends on where CPython woke up.
 * DONE: n = end of the match (data plus separator). Among the separators the
 * one whose first match ends first wins, the shorter one on a tie.
 * LIMIT: a separator starts past limit (n = its start), or none was found and
 * the bytes that can hold none exceed limit (n = that count).
 * INCOMPLETE: EOF and no separator. INVALID: s is empty or has an empty
 * separator; decided before any pending stream exception, as CPython does. */
struct rill__parse rill__parse_readuntil(const struct rill__rbuf *b,
					 const struct rill__seps *s,
					 size_t limit, int eof, size_t *offset);

/* readexactly(n). INVALID for n < 0, which CPython decides before a pending
 * stream exception; every other answer comes after it: DONE with n = 0 for
 * n == 0; DONE with n once n bytes are buffered; INCOMPLETE at EOF with fewer
 * (the caller reports expected = n); NEED_MORE otherwise. The limit does not
 * apply. */
struct rill__parse rill__parse_readexactly(const struct rill__rbuf *b,
					   ssize_t n, int eof);

/* read(n). A pending stream exception comes first, even for n == 0, as in
 * CPython. n == 0: DONE 0. n < 0: NEED_MORE until EOF, then DONE with the
 * whole buffer. CPython returns the same bytes but drains the buffer in
 * limit-sized blocks as they come, so its buffer never holds more than a
 * chunk and reading is never paused; here the bytes stay buffered until EOF,
 * so the caller must not pause reading for a full buffer during read(-1).
 * n > 0: NEED_MORE while empty and not at EOF, else DONE with
 * min(n, buffered), 0 at EOF. The limit does not apply. */
struct rill__parse rill__parse_read(const struct rill__rbuf *b, ssize_t n,
				    int eof);

/* readline() after readuntil(b"\n") gave LIMIT with `consumed`: how many
 * bytes CPython drops before raising ValueError. The line and its newline
 * when the newline sits at consumed, else the whole buffer. */
size_t rill__readline_overrun_drop(const struct rill__rbuf *b,
				   size_t consumed);

#endif
