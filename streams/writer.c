/* SPDX-License-Identifier: MIT */
/* streams/writer.c: StreamWriter.
 *
 * Writes queue chunks and never block. A flush is deferred to the end of
 * the loop iteration, so every write a task makes before it next waits is
 * gathered into one sendmsg; one send is in flight per socket at a time
 * (two could be reordered by the kernel). A task that keeps writing
 * without waiting does not hold its bytes back: past a number of bytes or
 * a time, the write itself sends (writer_push). Small copied writes share one
 * chunk, and a sent chunk's memory is kept (streams/spare.c, per thread)
 * for the next writes, so an echo server allocates nothing per message.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "streams/internal.h"

#define RILL_WRITE_HIGH_DEFAULT (64 * 1024)
/* Copy chunks start at this size: many small writes fill one chunk (16
 * messages of 64 bytes); a bigger write gets a chunk of its own size. Kept
 * small: an idle connection's queue may still hold one. */
#define RILL_CHUNK_MIN 1024

/* A write sends at once, rather than at the end of the loop iteration,
 * once this many bytes wait or the queue has waited this long (from its
 * second write): a task that works through input already buffered
 * (readline returning at once) never lets the iteration end, and
 * asyncio's write() sends when it can.
 * The gathered flush stays the rule below both, so a pipelined batch is
 * still one send; 16 KiB keeps the queue a small part of the 64 KiB
 * high-water mark, 1 ms is far beyond one batch's work. */
#define RILL_WRITE_PUSH_BYTES (16 * 1024)
#define RILL_WRITE_PUSH_NS (1000 * 1000)

static void writer_flush(struct rill__deferred *d);
static void send_done(struct rill__op *op, int res, unsigned flags);

void rill__writer_init(rill_writer *w)
{
	memset(w, 0, sizeof(*w));
	w->q = w->q_inline;
	w->qcap = RILL_WRITE_Q_INLINE;
	rill__writer_default_limits(w, RILL_WRITE_HIGH_DEFAULT);
	w->send.op.complete = send_done;
	w->flush.fn = writer_flush;
	rill__list_init(&w->flush.link);
	rill__waitq_init(&w->drainers);
	rill__waitq_init(&w->closers);
	rill__waitq_init(&w->flushed);
}

static struct rill__chunk *chunk_at(rill_writer *w, size_t i)
{
	return &w->q[(w->qhead + i) % w->qcap];
}

static void chunk_done(struct rill__chunk *ch)
{
	if (ch->owned) {
		rill__spare_give(ch->owned, ch->cap);
	} else if (ch->release) {
		ch->release(ch->arg);
	}
}

/* Never called with a send in flight, which still points into the queue. */
void rill__writer_drop_queue(rill_writer *w)
{
	while (w->qlen) {
		chunk_done(chunk_at(w, 0));
		w->qhead = (w->qhead + 1) % w->qcap;
		w->qlen--;
	}
	w->buffered = 0;
	rill__waitq_wake_all(&w->flushed);
}

void rill__writer_destroy(rill_writer *w)
{
	rill__writer_drop_queue(w);
	if (!rill__list_empty(&w->flush.link))
		rill__list_del(&w->flush.link);
	if (w->q != w->q_inline)
		free(w->q);
	free(w->iov_big);
	w->iov_big = NULL;
	w->q = w->q_inline;	/* empty, as after init */
	w->qcap = RILL_WRITE_Q_INLINE;
	w->qhead = 0;
}

static int queue_reserve(rill_writer *w)
{
	struct rill__chunk *q;
	size_t cap;

	if (w->qlen < w->qcap)
		return 0;
	cap = w->q == w->q_inline ? 8 : w->qcap * 2;
	q = malloc(cap * sizeof(*q));
	if (!q)
		return -ENOMEM;
	for (size_t i = 0; i < w->qlen; i++)
		q[i] = *chunk_at(w, i);
	if (w->q != w->q_inline)
		free(w->q);
	w->q = q;
	w->qcap = cap;
	w->qhead = 0;
	return 0;
}

/* ---- flow control -------------------------------------------------- */

void rill__writer_wake_all(rill_writer *w)
{
	rill__waitq_wake_all(&w->drainers);
	rill__waitq_wake_all(&w->closers);
	rill__waitq_wake_all(&w->flushed);
}

static void writer_check_pause(rill_writer *w)
{
	size_t queued = w->buffered + w->wire;

	if (!w->paused && queued > w->high)
		w->paused = true;
	else if (w->paused && queued <= w->low) {
		w->paused = false;
		rill__waitq_wake_all(&w->drainers);
	}
}

int rill_writer_set_write_buffer_limits(rill_writer *w, ssize_t high,
					ssize_t low)
{
	rill__detail_clear();
	if (!w || high < -1 || low < -1 || low > SSIZE_MAX / 4)
		return -EINVAL;
	if (high < 0)
		high = low < 0 ? (ssize_t)w->high_default : 4 * low;
	if (low < 0)
		low = high / 4;
	if (!(high >= low && low >= 0))
		return -EINVAL;
	w->high = (size_t)high;
	w->low = (size_t)low;
	writer_check_pause(w);
	return 0;
}

void rill__writer_default_limits(rill_writer *w, size_t high)
{
	w->high_default = high;
	w->high = high;
	w->low = high / 4;
	writer_check_pause(w);
}

void rill_writer_get_write_buffer_limits(const rill_writer *w, size_t *high,
					 size_t *low)
{
	if (low)
		*low = w ? w->low : 0;
	if (high)
		*high = w ? w->high : 0;
}

size_t rill_writer_get_write_buffer_size(const rill_writer *w)
{
	return w ? w->buffered + w->wire : 0;
}

/* ---- sending ------------------------------------------------------- */

static void writer_schedule(rill_writer *w)
{
	if (!w->sending)
		rill__defer(rill__writer_conn(w)->loop, &w->flush);
}

static void writer_idle(rill_writer *w);

/* The iovecs of the next send into *iovp: the writer's own few, or, when
 * they fill up, an array of RILL_WRITE_IOV_MAX that lives until the send
 * completes (io_uring reads it at submission, epoll at every retry).
 * Without memory for it the send gathers fewer. */
static size_t writer_prepare(rill_writer *w, struct iovec **iovp)
{
	struct rill__conn *c = rill__writer_conn(w);
	size_t n = c->tp->prepare(c, w->iov, RILL_WRITE_IOV_INLINE);
	struct iovec *big;

	*iovp = w->iov;
	if (n < RILL_WRITE_IOV_INLINE)
		return n;
	big = malloc(RILL_WRITE_IOV_MAX * sizeof(*big));
	if (!big)
		return n;
	w->iov_big = *iovp = big;
	return c->tp->prepare(c, big, RILL_WRITE_IOV_MAX);
}

static void writer_send(rill_writer *w)
{
	struct rill__conn *c = rill__writer_conn(w);
	struct iovec *iov;
	size_t n = writer_prepare(w, &iov);

	if (n == 0) {
		free(w->iov_big);
		w->iov_big = NULL;
		writer_idle(w);
		return;
	}
	w->sending = true;
	rill__op_started(c->loop);
	rill__send_start(c->loop, &w->send, c->fd, iov, n);
}

/* After the queue is empty: a requested EOF, then a requested close,
 * after the transport's last words (which are sent first). */
static void writer_idle(rill_writer *w)
{
	struct rill__conn *c = rill__writer_conn(w);

	rill__waitq_wake_all(&w->flushed);
	if (w->eof_requested && !w->eof_done && !c->lost) {
		w->eof_done = true;
		if (c->pipe)	/* no half-close: asyncio's pipe closes */
			c->closing = true;
		else
			shutdown(c->fd, SHUT_WR);
	}
	if (c->closing && !c->shut_down && !c->lost && c->tp->shutdown) {
		c->shut_down = true;
		c->tp->shutdown(c);
		if (c->tp->pending(c)) {
			writer_send(w);
			return;
		}
	}
	if (c->closing)
		rill__conn_maybe_close(c);
}

static void writer_flush(struct rill__deferred *d)
{
	rill_writer *w = rill__container_of(d, rill_writer, flush);

	struct rill__conn *c = rill__writer_conn(w);

	if (w->sending || c->lost || w->in_sendfile)	/* sendfile kicks after */
		return;
	if (c->tp->pending(c))
		writer_send(w);
	else
		writer_idle(w);
}

/* Drops the bytes the kernel took from the front of the queue. */
static void writer_advance(rill_writer *w, size_t n)
{
	w->buffered -= n;
	while (n) {
		struct rill__chunk *ch = chunk_at(w, 0);
		size_t left = ch->len - ch->off;

		if (n < left) {
			ch->off += n;
			return;
		}
		n -= left;
		chunk_done(ch);
		w->qhead = (w->qhead + 1) % w->qcap;
		w->qlen--;
	}
}

static void send_done(struct rill__op *op, int res, unsigned flags)
{
	rill_writer *w = rill__container_of(op, rill_writer, send.op);
	struct rill__conn *c = rill__writer_conn(w);

	(void)flags;
	w->sending = false;
	if (w->iov_big) {
		free(w->iov_big);
		w->iov_big = NULL;
	}
	rill__op_finished(c->loop);
	if (res < 0 && res != -EAGAIN && res != -EINTR) {
		/* Drop first: both calls below may free the connection. */
		rill__writer_drop_queue(w);
		if (res != -ECANCELED && !c->lost)
			rill__conn_lost(c, res);
		else
			rill__conn_maybe_close(c);
		return;
	}
	if (res > 0)
		c->tp->sent(c, (size_t)res);
	writer_check_pause(w);
	if (c->lost) {
		rill__writer_drop_queue(w);
		rill__conn_maybe_close(c);
	} else if (c->tp->pending(c)) {
		writer_send(w);
	} else {
		writer_idle(w);
	}
}

/* ---- write --------------------------------------------------------- */

/* asyncio's LOG_THRESHOLD_FOR_CONNLOST_WRITES: the first writes after a
 * loss are the application finding out; from this one on it is ignoring
 * it, and each dropped write says so. */
#define RILL_LOST_WRITES_LOG 5

/* -EINVAL, with the detail, if adding n bytes would take the writer's
 * queue past SSIZE_MAX: what a send can report and an iovec can carry. A
 * longer length is always a caller's mistake (no buffer is that big); the
 * kernel's send() would clamp it and send whatever memory follows. */
static int length_check(const rill_writer *w, size_t n)
{
	size_t queued = w->buffered + w->wire;

	if (n > (size_t)SSIZE_MAX - queued)
		return rill__set_detail(-EINVAL, "write of %zu bytes: the writer "
					"holds at most SSIZE_MAX bytes (%zu queued)",
					n, queued);
	return 0;
}

/* 0: accept the data; 1: drop it (connection lost or closing); < 0: error. */
static int write_check(rill_writer *w, const void *data, size_t n)
{
	struct rill__conn *c;
	int err;

	if (!w || (!data && n))
		return -EINVAL;
	if ((err = length_check(w, n)) < 0)
		return err;
	c = rill__writer_conn(w);
	if (w->eof_requested)
		return RILL_ESTATE;
	if (c->lost || c->closing) {
		if (++c->lost_writes >= RILL_LOST_WRITES_LOG)
			rill__log(RILL_LOG_WARNING, "socket.send() raised exception.");
		return 1;
	}
	return n == 0;
}

static int write_copy(rill_writer *w, const void *data, size_t n)
{
	struct rill__chunk *last = w->qlen ? chunk_at(w, w->qlen - 1) : NULL;
	struct rill__chunk *ch;
	size_t cap;
	int err;

	/* Appending behind bytes in flight is safe: the kernel reads only the
	 * iovec range it was given, and the chunk memory never moves. */
	if (last && last->owned && last->cap - last->len >= n) {
		memcpy(last->owned + last->len, data, n);
		last->len += n;
		return 0;
	}
	if ((err = queue_reserve(w)) < 0)
		return err;
	ch = chunk_at(w, w->qlen);
	cap = n > RILL_CHUNK_MIN ? n : RILL_CHUNK_MIN;
	if (!(ch->owned = rill__spare_take(n, &cap)) &&
	    !(ch->owned = malloc(cap))) {
		return -ENOMEM;
	}
	memcpy(ch->owned, data, n);
	ch->data = ch->owned;
	ch->len = n;
	ch->off = 0;
	ch->cap = cap;
	ch->release = NULL;
	w->qlen++;
	return 0;
}

/* A clock read on every write must cost next to nothing: the coarse clock
 * is a vDSO read of the last tick, precise enough for RILL_WRITE_PUSH_NS. */
static uint64_t push_clock(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Sends what the socket takes now, from the writing thread, without
 * waiting. Only with no send in flight: two could reorder. An error is
 * left to the flush already scheduled, which reports it as any send's. */
static void writer_push(rill_writer *w)
{
	/* The sendmsg is done when it returns: one array per thread serves
	 * every writer's push. */
	static __thread struct iovec iov[RILL_WRITE_IOV_MAX];
	struct rill__conn *c = rill__writer_conn(w);
	struct msghdr msg = { .msg_iov = iov };
	ssize_t k;

	msg.msg_iovlen = c->tp->prepare(c, iov, RILL_WRITE_IOV_MAX);
	if (msg.msg_iovlen == 0 || c->lost)
		return;
	k = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (k > 0) {
		c->tp->sent(c, (size_t)k);
		writer_check_pause(w);
	}
	/* Whatever stays (a full socket) waits for the flush: the next push
	 * only after as many bytes or as much time again, so a peer that
	 * does not read costs no syscall per write. */
	w->push_bytes = w->buffered + RILL_WRITE_PUSH_BYTES;
	w->push_at = push_clock() + RILL_WRITE_PUSH_NS;
}

static void write_queued(rill_writer *w, size_t n)
{
	bool was_empty = w->buffered == 0;

	w->buffered += n;
	writer_check_pause(w);
	writer_schedule(w);
	/* A pipe may be a blocking fd (stdout): it waits for the flush. */
	if (w->sending || w->in_sendfile || rill__writer_conn(w)->pipe)
		return;
	/* The first write into an empty queue only starts the count: it may
	 * be the first of a batch, and a write_ref's release must not run
	 * inside its own call. The clock starts at the second write, so that
	 * a server writing once per batch (an echo) never reads it. */
	if (was_empty) {
		w->push_bytes = RILL_WRITE_PUSH_BYTES;
		w->push_at = 0;
	} else if (w->buffered >= w->push_bytes) {
		writer_push(w);
	} else if (!w->push_at) {
		w->push_at = push_clock() + RILL_WRITE_PUSH_NS;
	} else if (push_clock() >= w->push_at) {
		writer_push(w);
	}
}

int rill_writer_write(rill_writer *w, const void *data, size_t n)
{
	rill__detail_clear();
	int err = write_check(w, data, n);

	if (err)
		return err < 0 ? err : 0;
	if ((err = write_copy(w, data, n)) < 0)
		return err;
	write_queued(w, n);
	return 0;
}

int rill_writer_writelines(rill_writer *w, const rill_bytes *chunks, size_t n)
{
	size_t total = 0;
	int err;

	rill__detail_clear();
	if (!w || (n && !chunks))
		return -EINVAL;
	/* All or nothing: a bad chunk or a sum that overflows queues none. */
	for (size_t i = 0; i < n; i++) {
		if (!chunks[i].data && chunks[i].len)
			return -EINVAL;
		if (chunks[i].len > SIZE_MAX - total)
			return rill__set_detail(-EINVAL, "writelines: the "
						"lengths' sum overflows size_t");
		total += chunks[i].len;
	}
	if ((err = length_check(w, total)) < 0)
		return err;
	for (size_t i = 0; i < n; i++)
		if ((err = rill_writer_write(w, chunks[i].data, chunks[i].len)) < 0)
			return err;
	return 0;
}

int rill_writer_write_ref(rill_writer *w, const void *data, size_t n,
			  void (*release)(void *arg), void *arg)
{
	rill__detail_clear();
	struct rill__chunk *ch;
	int err = write_check(w, data, n);

	if (err < 0)
		return err;
	if (err) {
		if (release)
			release(arg);	/* accepted, and dropped at once */
		return 0;
	}
	if ((err = queue_reserve(w)) < 0)
		return err;
	ch = chunk_at(w, w->qlen++);
	*ch = (struct rill__chunk){ .data = data, .len = n,
				    .release = release, .arg = arg };
	write_queued(w, n);
	return 0;
}

/* ---- drain, eof, close --------------------------------------------- */

/* The connection behind w for a call that waits; NULL for NULL. */
static struct rill__conn *waiting_call(rill_writer *w)
{
	rill__detail_clear();
	return w ? rill__writer_conn(w) : NULL;
}

int rill_writer_drain(rill_writer *w)
{
	struct rill__conn *c = waiting_call(w);
	int err;

	if (!c)
		return -EINVAL;
	for (;;) {
		if (c->reader.exception)
			return c->reader.exception;
		if (c->lost || c->closing)
			return -ECONNRESET;
		if (!w->paused)
			return 0;
		if ((err = rill__waitq_park(&w->drainers)) < 0)
			return err;
	}
}

int rill_writer_write_eof(rill_writer *w)
{
	rill__detail_clear();
	if (!w)
		return -EINVAL;
	if (!rill_writer_can_write_eof(w))
		return -ENOTSUP;
	if (w->eof_requested || rill__writer_conn(w)->closing)
		return 0;
	w->eof_requested = true;
	writer_schedule(w);
	return 0;
}

bool rill_writer_can_write_eof(const rill_writer *w)
{
	struct rill__conn *c;

	if (!w)
		return false;
	c = rill__writer_conn((rill_writer *)w);
	return c->tp->can_write_eof(c);
}

/* ---- for transports ------------------------------------------------ */

size_t rill__writer_iov(rill_writer *w, struct iovec *iov, size_t max)
{
	size_t n = w->qlen < max ? w->qlen : max;

	for (size_t i = 0; i < n; i++) {
		struct rill__chunk *ch = chunk_at(w, i);

		iov[i].iov_base = (void *)(ch->data + ch->off);
		iov[i].iov_len = ch->len - ch->off;
	}
	return n;
}

size_t rill__writer_peek(rill_writer *w, const char **p)
{
	struct rill__chunk *ch;

	if (!w->qlen)
		return 0;
	ch = chunk_at(w, 0);
	*p = ch->data + ch->off;
	return ch->len - ch->off;
}

void rill__writer_consume(rill_writer *w, size_t n)
{
	writer_advance(w, n);
}

void rill__writer_set_wire(rill_writer *w, size_t n)
{
	w->wire = n;
	writer_check_pause(w);
}

void rill__writer_kick(rill_writer *w)
{
	writer_schedule(w);
}

int rill_writer_wait_closed(rill_writer *w)
{
	struct rill__conn *c = waiting_call(w);
	int err;

	if (!c)
		return -EINVAL;
	while (!c->fd_closed)
		if ((err = rill__waitq_park(&w->closers)) < 0)
			return err;
	return c->lost_err;	/* asyncio raises connection_lost's exc */
}

bool rill_writer_is_closing(const rill_writer *w)
{
	const struct rill__conn *c;

	if (!w)
		return true;
	c = rill__writer_conn((rill_writer *)w);
	return c->closing || c->lost;
}

rill_reader *rill_writer_reader(rill_writer *w)
{
	return w ? &rill__writer_conn(w)->reader : NULL;
}
