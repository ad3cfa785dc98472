/* SPDX-License-Identifier: MIT */
/* streams/reader.c: StreamReader.
 *
 * The parsing decisions are rbuf.c's; this file waits for data between
 * them, hands results out as views, and runs read-side flow control.
 *
 * Views: readline() and friends return a view into the buffer instead of a
 * copy. The bytes are consumed at the reader's next call, and until then
 * the buffer is "pinned": data that arrives meanwhile is appended in place
 * if it fits, else into a new buffer while the old one is kept (retired)
 * until that next call, so a view is never left dangling.
 */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "streams/internal.h"

void rill__reader_init(rill_reader *r, size_t limit, struct rill__conn *c)
{
	memset(r, 0, sizeof(*r));
	rill__rbuf_init(&r->buf);
	r->limit = limit ? limit : RILL_STREAM_LIMIT_DEFAULT;
	/* Flow control works in multiples of the limit: beyond this one is
	 * as good as none, and 2 x limit cannot overflow. */
	if (r->limit > SIZE_MAX / 4)
		r->limit = SIZE_MAX / 4;
	r->conn = c;
}

void rill__reader_destroy(rill_reader *r)
{
	rill__rbuf_free(&r->buf);
	free(r->retired);
	r->retired = NULL;
}

int rill_reader_new(size_t limit, rill_reader **readerp)
{
	rill__detail_clear();
	rill_reader *r;

	if (!readerp)
		return -EINVAL;
	r = malloc(sizeof(*r));
	if (!r)
		return -ENOMEM;
	rill__reader_init(r, limit, NULL);
	*readerp = r;
	return 0;
}

void rill_reader_free(rill_reader *r)
{
	if (r && r->conn && r->conn->reader_owns) {	/* a read pipe's */
		rill_writer_free(&r->conn->writer);
		return;
	}
	if (!r || r->conn)	/* a connection's reader goes with its writer */
		return;
	rill__reader_destroy(r);
	free(r);
}

/* ---- flow control --------------------------------------------------
 *
 * A multishot recv hands over, in one batch, whatever the socket queue
 * holds (a megabyte and more from a fast peer): that can land above the
 * 2 x limit pause. A reader that has paused is "behind": until its buffer
 * is read empty, every recv is throttled (single-shot, one per loop
 * iteration, landing in place: see below), so a slow consumer stays within
 * 2 x limit plus 16 KiB instead of taking a batch after every resume. The
 * engine keeps the throttle after that until reads come back short
 * (engine/recv.c): a bulk stream stays on the in-place path.
 */

static void reader_pause(rill_reader *r)
{
	if (r->paused || !r->conn)
		return;
	r->paused = true;
	r->behind = true;
	rill__recv_throttle(&r->conn->recv);
	rill__recv_stop(&r->conn->recv);
}

static void reader_resume(rill_reader *r)
{
	if (!r->paused)
		return;
	r->paused = false;
	if (r->conn && !r->conn->closing && !r->conn->lost)
		rill__recv_start(&r->conn->recv);
}

/* asyncio resumes reading once the buffer is back at or below the limit. */
static void reader_maybe_resume(rill_reader *r)
{
	if (rill__rbuf_len(&r->buf) == 0)
		r->behind = false;
	if (r->paused && rill__rbuf_len(&r->buf) <= r->limit)
		reader_resume(r);
}

/* ---- views --------------------------------------------------------- */

/* Consumes what the last view showed and frees retired memory: the first
 * thing every call on the reader does. */
static void reader_settle(rill_reader *r)
{
	if (r->consume_later) {
		rill__rbuf_consume(&r->buf, r->consume_later);
		r->consume_later = 0;
	}
	free(r->retired);
	r->retired = NULL;
	r->pinned = false;
	reader_maybe_resume(r);
}

static void reader_view(rill_reader *r, size_t n, size_t consume,
			rill_bytes *out)
{
	out->data = rill__rbuf_peek(&r->buf);
	out->len = n;
	r->consume_later = consume;
	r->pinned = true;
}

/* Moves the buffered bytes into fresh memory, keeping the old memory alive
 * for a view that points into it. */
static int reader_unpin(rill_reader *r, size_t extra)
{
	struct rill__rbuf nb;
	const char *p = rill__rbuf_peek(&r->buf) + r->consume_later;
	size_t len = rill__rbuf_len(&r->buf) - r->consume_later;

	rill__rbuf_init(&nb);
	if (!rill__rbuf_reserve(&nb, len + extra))
		return -ENOMEM;
	if (len)
		memcpy(nb.data, p, len);
	rill__rbuf_commit(&nb, len);
	free(r->retired);
	r->retired = r->buf.data;
	r->buf = nb;
	r->consume_later = 0;
	r->pinned = false;
	return 0;
}

char *rill__reader_reserve(rill_reader *r, size_t n, size_t *room)
{
	char *p;

	/* A buffer given back by reader_give_buffer(), or none yet. */
	if (!r->buf.data && n <= RILL__RBUF_MIN_CAP &&
	    (r->buf.data = rill__spare_rbuf_take()))
		r->buf.cap = RILL__RBUF_MIN_CAP;
	if (r->pinned && rill__rbuf_tailroom(&r->buf) < n && reader_unpin(r, n) < 0)
		return NULL;
	p = rill__rbuf_reserve(&r->buf, n);
	if (p)
		*room = rill__rbuf_tailroom(&r->buf);
	return p;
}

void rill__reader_commit(rill_reader *r, size_t n)
{
	if (n == 0)
		return;
	rill__rbuf_commit(&r->buf, n);
	rill__reader_wake(r);
	if (r->behind && r->conn)
		rill__recv_throttle(&r->conn->recv);
	if (rill__rbuf_len(&r->buf) - r->consume_later > 2 * r->limit)
		reader_pause(r);
}

/* ---- receiving in place --------------------------------------------
 *
 * A throttled recv (a bulk stream, see flow control) lands straight in the
 * buffer's tail room rather than in a ring buffer that is then copied. The
 * room is lent until the recv lands: the buffer must not move meanwhile,
 * so consuming only advances start and feed_data is refused. A loan is
 * all the room up to the bound, 2 x limit, at most 128 KiB and at least
 * 16 KiB past the buffered bytes (what one ring buffer would have added).
 * A reader that keeps up (its buffer empty when the recv is armed) so
 * takes 2 x limit at a time. With the default limit, loans of the limit's
 * worth (64 KiB) over 4 bulk connections shut the sender's window about
 * five times as often (zero-window advertisements per GB, medians 1200
 * against 240), and each reopening ran the sender's transmit path in the
 * server's own softirqs: 1.05-1.45x raw liburing's CPU per GB (which
 * drains a socket at once), where 2 x limit measured 0.84-1.10x.
 */
#define READER_LEND_MIN (16 * 1024)
#define READER_LEND_MAX (128 * 1024)

char *rill__reader_lend(rill_reader *r, size_t *n)
{
	size_t len = rill__rbuf_len(&r->buf) - r->consume_later;
	size_t want = len < 2 * r->limit ? 2 * r->limit - len : 0;
	size_t room;
	char *p;

	if (want > READER_LEND_MAX)
		want = READER_LEND_MAX;
	if (want < READER_LEND_MIN)
		want = READER_LEND_MIN;
	p = rill__reader_reserve(r, want, &room);
	if (!p)
		return NULL;	/* the ring then, as without a loan */
	r->buf.lent = true;
	*n = want;
	return p;
}

void rill__reader_landed(rill_reader *r, size_t n)
{
	r->buf.lent = false;
	rill__reader_commit(r, n);
}

int rill_reader_feed_data(rill_reader *r, const void *p, size_t n)
{
	size_t room;
	char *dst;

	rill__detail_clear();
	if (!r || (!p && n))
		return -EINVAL;
	if (n == 0)
		return 0;
	if (r->buf.lent)
		return rill__set_detail(-EBUSY, "rill_reader_feed_data: the connection's "
					"recv is filling this reader");
	dst = rill__reader_reserve(r, n, &room);
	if (!dst)
		return -ENOMEM;
	memcpy(dst, p, n);
	rill__reader_commit(r, n);
	return 0;
}

/* on_data of the connection's recv: bytes in arrival order. */
void rill__reader_on_data(void *ctx, const char *p, size_t n)
{
	struct rill__conn *c = ctx;

	if (rill_reader_feed_data(&c->reader, p, n) < 0) {
		/* Out of memory for a reader: this connection cannot go on
		 * without losing bytes, so it fails, alone. */
		rill__conn_lost(c, -ENOMEM);
	}
}

void rill__reader_wake(rill_reader *r)
{
	if (r->waiter)
		rill__wake(r->waiter->task, 0);
}

void rill_reader_feed_eof(rill_reader *r)
{
	if (!r)
		return;
	r->eof = true;
	rill__reader_wake(r);
}

void rill_reader_set_exception(rill_reader *r, int err)
{
	if (!r || err >= 0)
		return;
	r->exception = err;
	rill__reader_wake(r);
}

int rill_reader_exception(const rill_reader *r)
{
	return r ? r->exception : -EINVAL;
}

bool rill_reader_at_eof(const rill_reader *r)
{
	return !r || (r->eof && rill__rbuf_len(&r->buf) == r->consume_later);
}

size_t rill_reader_buffered(const rill_reader *r)
{
	return r ? rill__rbuf_len(&r->buf) - r->consume_later : 0;
}

const rill_read_error *rill_reader_error_info(const rill_reader *r)
{
	static const rill_read_error none;

	return r ? &r->info : &none;
}

/* ---- waiting ------------------------------------------------------- */

struct reader_wait {
	struct rill__wait wait;
	rill_reader *reader;
};

static void reader_wait_interrupt(struct rill__wait *w, int reason)
{
	struct reader_wait *rw = rill__container_of(w, struct reader_wait, wait);

	rw->reader->waiter = NULL;
	rill__wake(w->task, reason);
}

/* A task about to wait with nothing buffered gives its small buffer to the
 * thread's spares (streams/spare.c), and rill__reader_reserve() takes one
 * back when bytes come: an idle connection holds no receive buffer, and a
 * busy one pays two pointer moves per wait. Bigger buffers stay: they are
 * a peak's, shrunk by the rbuf itself. */
static void reader_give_buffer(rill_reader *r)
{
	struct rill__rbuf *b = &r->buf;

	if (!b->data || b->cap != RILL__RBUF_MIN_CAP || rill__rbuf_len(b) ||
	    b->lent || r->pinned || r->consume_later)
		return;
	rill__spare_rbuf_give(b->data);
	rill__rbuf_init(b);
}

/* Waits for data, EOF or an exception: 0, or 1 when another task read
 * in between. Only one task may wait: a second gets -EBUSY (asyncio's
 * RuntimeError). Reading resumes first if paused,
 * so a reader waiting for more than 2 x limit bytes cannot deadlock. */
static int reader_wait(rill_reader *r)
{
	struct reader_wait rw = {
		.wait = { .interrupt = reader_wait_interrupt,
			  .until = RILL_TIME_NEVER },
		.reader = r,
	};
	int err;

	if (r->waiter)
		return -EBUSY;
	if (r->eof)
		return 0;
	reader_resume(r);
	reader_give_buffer(r);
	r->waiter = &rw.wait;
	r->raced = false;
	err = rill__park(&rw.wait);
	r->waiter = NULL;
	if (err < 0 || !r->raced)
		return err;
	/* Another task read meanwhile. A view it holds is consumed from
	 * here on but stays readable (retired) until the next call. */
	r->raced = false;
	if (r->consume_later && (err = reader_unpin(r, 1)) < 0)
		return err;
	return 1;
}

/* ---- the reads ----------------------------------------------------- */

/* A second task may read while one waits, as in asyncio: it gets what is
 * buffered, and -EBUSY only if it would have to wait too (reader_wait).
 * The waiter then finds the buffer changed under it. */
static int reader_begin(rill_reader *r)
{
	if (!r)
		return -EINVAL;
	if (r->waiter)
		r->raced = true;
	reader_settle(r);
	return 0;
}

ssize_t rill_reader_read(rill_reader *r, void *buf, size_t n)
{
	rill__detail_clear();
	int err = reader_begin(r);

	if (err)
		return err;
	if (!buf && n)
		return -EINVAL;
	for (;;) {
		struct rill__parse p;

		if (r->exception)
			return r->exception;
		p = rill__parse_read(&r->buf, (ssize_t)(n > SSIZE_MAX ? SSIZE_MAX : n), r->eof);
		if (p.kind == RILL__PARSE_DONE) {
			if (p.n)
				memcpy(buf, rill__rbuf_peek(&r->buf), p.n);
			rill__rbuf_consume(&r->buf, p.n);
			reader_maybe_resume(r);
			return (ssize_t)p.n;
		}
		if ((err = reader_wait(r)) < 0)
			return err;
	}
}

/* A view of everything buffered: read_all's at EOF, consumed at the next
 * call; peek's as soon as there is a byte (or EOF), consumed by nothing. */
static ssize_t reader_view_all(rill_reader *r, rill_bytes *out, bool peek)
{
	int err = reader_begin(r);

	if (err)
		return err;
	if (!out)
		return -EINVAL;
	for (;;) {
		size_t n = rill__rbuf_len(&r->buf);

		if (r->exception)
			return r->exception;
		if (r->eof || (peek && n)) {
			reader_view(r, n, peek ? 0 : n, out);
			return (ssize_t)n;
		}
		if ((err = reader_wait(r)) < 0)
			return err;
	}
}

ssize_t rill_reader_read_all(rill_reader *r, rill_bytes *out)
{
	rill__detail_clear();
	return reader_view_all(r, out, false);
}

ssize_t rill_reader_readexactly(rill_reader *r, void *buf, size_t n)
{
	rill__detail_clear();
	int err = reader_begin(r);

	if (err)
		return err;
	if (n > SSIZE_MAX)	/* a negative count, cast */
		return rill__set_detail(-EINVAL, "readexactly size can not be "
					"less than zero");
	if (!buf && n)
		return -EINVAL;
	for (;;) {
		struct rill__parse p;

		if (r->exception)
			return r->exception;
		p = rill__parse_readexactly(&r->buf, (ssize_t)n, r->eof);
		if (p.kind == RILL__PARSE_DONE || p.kind == RILL__PARSE_INCOMPLETE) {
			if (p.n)
				memcpy(buf, rill__rbuf_peek(&r->buf), p.n);
			rill__rbuf_consume(&r->buf, p.n);
			reader_maybe_resume(r);
			if (p.kind == RILL__PARSE_DONE)
				return (ssize_t)p.n;
			r->info.partial_len = p.n;
			r->info.expected = n;
			return rill__set_detail(RILL_EINCOMPLETE, "%zu bytes read on a total "
						"of %zu expected bytes", p.n, n);
		}
		if ((err = reader_wait(r)) < 0)
			return err;
	}
}

static ssize_t reader_until(rill_reader *r, const struct rill__seps *s,
			    rill_bytes *out)
{
	size_t offset = 0;
	int err;

	if (!s->n || !s->min_len)
		return -EINVAL;
	for (;;) {
		struct rill__parse p;

		if (r->exception)
			return r->exception;
		p = rill__parse_readuntil(&r->buf, s, r->limit, r->eof, &offset);
		switch (p.kind) {
		case RILL__PARSE_DONE:
			reader_view(r, p.n, p.n, out);
			return (ssize_t)p.n;
		case RILL__PARSE_LIMIT:
			r->info.consumed = p.n;
			/* Not found: the parse moved offset to p.n; found, the
			 * match starts past the limit, and so past offset. */
			return rill__set_detail(RILL_ELIMIT, p.n == offset
				? "Separator is not found, and chunk exceed the limit"
				: "Separator is found, but chunk is longer than limit");
		case RILL__PARSE_INCOMPLETE:
			r->info.partial_len = p.n;
			r->info.expected = SIZE_MAX;
			reader_view(r, p.n, p.n, out);
			return rill__set_detail(RILL_EINCOMPLETE, "%zu bytes read on a total "
						"of undefined expected bytes", p.n);
		case RILL__PARSE_INVALID:
			return -EINVAL;
		case RILL__PARSE_NEED_MORE:
			break;
		}
		if ((err = reader_wait(r)) < 0)
			return err;
		if (err == 1)	/* another task consumed: search again */
			offset = 0;
	}
}

ssize_t rill_reader_readuntil_any(rill_reader *r, const rill_bytes *seps,
				  size_t nseps, rill_bytes *out)
{
	rill__detail_clear();
	const void *small_p[RILL__SEPS_SMALL];
	size_t small_len[RILL__SEPS_SMALL];
	const void **pv = small_p;
	size_t *lv = small_len;
	struct rill__seps s;
	ssize_t ret = reader_begin(r);

	if (ret)
		return ret;
	if (!out || (nseps && !seps) || nseps > SIZE_MAX / sizeof(*pv))
		return -EINVAL;
	/* asyncio's ValueError texts, word for word. */
	if (!nseps)
		return rill__set_detail(-EINVAL, "Separator should contain at "
					"least one element");
	for (size_t i = 0; i < nseps; i++)
		if (!seps[i].data && seps[i].len)
			return -EINVAL;
	for (size_t i = 0; i < nseps; i++)
		if (!seps[i].len)
			return rill__set_detail(-EINVAL, "Separator should be at "
						"least one-byte string");
	if (nseps > RILL__SEPS_SMALL) {
		pv = malloc(nseps * sizeof(*pv));
		lv = malloc(nseps * sizeof(*lv));
		if (!pv || !lv) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (size_t i = 0; i < nseps; i++) {
		pv[i] = seps[i].data;
		lv[i] = seps[i].len;
	}
	ret = rill__seps_init(&s, pv, lv, nseps);
	if (ret == 0)
		ret = reader_until(r, &s, out);
	rill__seps_free(&s);
out:
	if (pv != small_p) {
		free(pv);
		free(lv);
	}
	return ret;
}

ssize_t rill_reader_readuntil(rill_reader *r, const void *sep, size_t seplen,
			      rill_bytes *out)
{
	rill__detail_clear();
	rill_bytes one = { sep, seplen };

	if (!sep && seplen)
		return -EINVAL;
	return rill_reader_readuntil_any(r, &one, 1, out);
}

ssize_t rill_reader_readline(rill_reader *r, rill_bytes *out)
{
	rill__detail_clear();
	static const char nl = '\n';
	ssize_t n = rill_reader_readuntil(r, &nl, 1, out);

	if (n == RILL_EINCOMPLETE)
		return (ssize_t)r->info.partial_len;
	if (n == RILL_ELIMIT) {
		rill__rbuf_consume(&r->buf,
			rill__readline_overrun_drop(&r->buf, r->info.consumed));
		reader_maybe_resume(r);
	}
	return n;
}

ssize_t rill_reader_peek(rill_reader *r, rill_bytes *out)
{
	rill__detail_clear();
	return reader_view_all(r, out, true);
}

void rill_reader_consume(rill_reader *r, size_t n)
{
	if (!r || r->waiter)
		return;
	reader_settle(r);
	if (n > rill__rbuf_len(&r->buf))
		n = rill__rbuf_len(&r->buf);
	rill__rbuf_consume(&r->buf, n);
	reader_maybe_resume(r);
}
