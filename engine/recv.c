/* SPDX-License-Identifier: MIT */
/* engine/recv.c: a socket's stream of received bytes.
 *
 * One recv operation per socket, in the best form the loop has: multishot
 * into the provided-buffer ring, else single-shot into the ring, else
 * single-shot into a buffer of the connection's own. The owner sees only
 * on_data (bytes, in order) and on_end (EOF or an error).
 *
 * Multishot has no backpressure of its own: one io_uring_enter can move a
 * whole socket buffer into the reader. A connection whose reader overflows
 * (a bulk stream) is throttled to one recv per iteration instead, and that
 * recv lands straight in the owner's memory where it lends some: a bulk
 * stream then costs one kernel copy into memory that stays hot, rather
 * than a copy into the ring (walked in order, so cold) and another out.
 *
 * A multishot recv ends whenever a CQE comes without IORING_CQE_F_MORE:
 * rill re-arms it while the owner still wants data. -ENOBUFS (the ring
 * was empty for a moment) is not the end of the stream: the recv is
 * re-armed after the current batch of completions, once their buffers
 * have been handed back.
 *
 * On an epoll loop, start and stop hand over to engine/epoll.c, which
 * delivers through the same on_data / on_end / on_idle.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/loop.h"
#include "engine/io.h"

/* Receive buffer of a connection when the loop has no buffer ring. */
#define RILL_PLAIN_RECV_SIZE (16 * 1024)

static void recv_arm(struct rill__recv *r);

static void recv_settled(struct rill__recv *r)
{
	/* A re-cancel still deferred has nothing left to cancel, and must
	 * not run (and call on_idle again) after the owner freed r. */
	if (!rill__list_empty(&r->rearm.link))
		rill__list_del(&r->rearm.link);
	r->armed = false;
	rill__op_finished(r->loop);
	if (r->want && !r->ended)
		return;
	if (r->on_idle)
		r->on_idle(r->ctx);
}

static void recv_end(struct rill__recv *r, int err)
{
	r->ended = true;
	r->want = false;
	r->on_end(r->ctx, err);
}

static void recv_rearm_deferred(struct rill__deferred *d)
{
	struct rill__recv *r = rill__container_of(d, struct rill__recv, rearm);

	if (r->armed) {		/* deferred by recv_done: cancel again */
		if (!r->want)
			rill__op_cancel(r->loop, &r->op, NULL);
		return;
	}
	if (r->want && !r->ended && !r->armed)
		recv_arm(r);
	else if (!r->armed && r->on_idle)
		r->on_idle(r->ctx);
}

void rill__recv_throttle(struct rill__recv *r)
{
	r->throttled = true;
	r->calm = 0;
}

/* Throttled reads smaller than a ring buffer, in a row, before multishot
 * is trusted again. One short read in a bulk stream is common (the reader
 * caught up for a moment), and every return to multishot there costs a
 * batch above the reader's limit and a pause. */
#define RECV_CALM_READS 8

void rill__recv_sized(struct rill__recv *r, size_t n, size_t small)
{
	if (!r->throttled)
		return;
	if (n >= small)
		r->calm = 0;
	else if (++r->calm >= RECV_CALM_READS)
		r->throttled = false;
}

/* What one throttled recv takes from the ring (or the own buffer). */
static size_t recv_buf_size(const struct rill__recv *r)
{
	return r->plain ? RILL_PLAIN_RECV_SIZE : r->loop->bufs.size;
}

/* Hands lent memory back: res bytes landed in it (none when res <= 0).
 * Reads of less than a ring buffer's worth count toward the throttle's
 * end, as in recv_data; a bigger read that did not fill the loan is still
 * a bulk stream, and landing in place is the cheaper way to take one. */
static void recv_landed(struct rill__recv *r, int res)
{
	char *p = r->lent;
	size_t n = res > 0 ? (size_t)res : 0;

	if (n)
		rill__recv_sized(r, n, recv_buf_size(r));
	r->lent = NULL;
	r->landed(r->ctx, p, n);
}

static void recv_data(struct rill__recv *r, int res, unsigned flags)
{
	/* Single recvs that do not fill their buffer drain the socket: the
	 * peer is no longer ahead of us, multishot is safe again. */
	if (!(flags & IORING_CQE_F_MORE))
		rill__recv_sized(r, (size_t)res, recv_buf_size(r));
	if (r->plain)
		r->on_data(r->ctx, r->plain, (size_t)res);
	else
		rill__bufring_take(&r->loop->bufs, res, flags, r->on_data, r->ctx);
}

static void recv_done(struct rill__op *op, int res, unsigned flags)
{
	struct rill__recv *r = rill__container_of(op, struct rill__recv, op);
	bool more = flags & IORING_CQE_F_MORE;
	/* The next loan waits for this iteration's tasks: by then the
	 * reader has usually taken these bytes, and lends the same memory. */
	bool later = r->lent != NULL;

	if (r->lent)
		recv_landed(r, res);	/* single-shot: the only completion */
	else if (res > 0)
		recv_data(r, res, flags);
	if (res == 0) {
		if (flags & IORING_CQE_F_BUFFER)
			recv_data(r, 0, flags);	/* hand the buffer back */
		if (!r->ended)
			recv_end(r, 0);
	} else if (res == -ENOBUFS) {
		r->loop->stats.enobufs++;
		later = true;
	} else if (res < 0 && res != -ECANCELED && res != -EINTR && res != -EAGAIN) {
		if (!r->ended)
			recv_end(r, res);
	}
	if (more) {
		/* Still producing after a stop. The kernel can answer a cancel
		 * with -ENOENT while a multishot recv is between two issues
		 * (seen without DEFER_TASKRUN under load), and the recv then
		 * runs on: stop never settled. Cancel again after this batch,
		 * at most once per iteration, until the final CQE comes. */
		if (!r->want)
			rill__defer(r->loop, &r->rearm);
		return;
	}
	if (later && r->want && !r->ended) {
		/* Keep counting it as in flight until it is re-armed. */
		r->armed = false;
		rill__op_finished(r->loop);
		rill__defer(r->loop, &r->rearm);
		return;
	}
	if (r->want && !r->ended) {
		r->loop->stats.rearms++;
		r->armed = false;
		rill__op_finished(r->loop);
		recv_arm(r);
		return;
	}
	recv_settled(r);
}

/* A throttled recv into the owner's memory, if it lends some. */
static bool recv_arm_lent(struct rill__recv *r, struct io_uring_sqe *sqe)
{
	size_t len;

	if (!r->throttled || !r->lend)
		return false;
	r->lent = r->lend(r->ctx, &len);
	if (!r->lent)
		return false;
	if (r->file)
		io_uring_prep_read(sqe, r->fd, r->lent, (unsigned)len, -1);
	else
		io_uring_prep_recv(sqe, r->fd, r->lent, len, 0);
	return true;
}

/* A pipe, terminal or file: multishot recv is for sockets only, so one
 * READ at a time (offset -1: the file position, which a regular file given
 * as standard input advances). A pipe's READ waits through the ring's
 * internal poll, not in an io-wq thread. */
static void recv_arm_file(struct rill__recv *r, struct io_uring_sqe *sqe)
{
	if (r->plain) {
		io_uring_prep_read(sqe, r->fd, r->plain, RILL_PLAIN_RECV_SIZE, -1);
		return;
	}
	io_uring_prep_read(sqe, r->fd, NULL, r->loop->bufs.size, -1);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = r->loop->bufs.bgid;
}

static void recv_arm(struct rill__recv *r)
{
	rill_loop *loop = r->loop;
	struct io_uring_sqe *sqe = rill__sqe(loop);

	if (recv_arm_lent(r, sqe)) {
		/* lands in the owner's memory */
	} else if (r->file) {
		recv_arm_file(r, sqe);
	} else if (r->plain) {
		io_uring_prep_recv(sqe, r->fd, r->plain, RILL_PLAIN_RECV_SIZE, 0);
	} else {
		if ((loop->features & RILL_FEAT_MULTISHOT_RECV) && !r->throttled)
			io_uring_prep_recv_multishot(sqe, r->fd, NULL, 0, 0);
		else
			io_uring_prep_recv(sqe, r->fd, NULL, 0, 0);
		if (loop->features & RILL_FEAT_BUNDLE)
			sqe->ioprio |= IORING_RECVSEND_BUNDLE;
		sqe->flags |= IOSQE_BUFFER_SELECT;
		sqe->buf_group = loop->bufs.bgid;
	}
	io_uring_sqe_set_data(sqe, &r->op);
	r->armed = true;
	rill__op_started(loop);
}

int rill__recv_init(struct rill__recv *r, rill_loop *loop, int fd, void *ctx)
{
	r->op.complete = recv_done;
	r->loop = loop;
	r->fd = fd;
	r->ctx = ctx;
	r->armed = r->want = r->ended = r->throttled = false;
	r->file = r->regular = false;
	r->calm = 0;
	r->plain = r->lent = NULL;
	r->lend = NULL;
	r->landed = NULL;
	rill__list_init(&r->rearm.link);
	r->rearm.fn = recv_rearm_deferred;
	if (rill__epoll(loop)) {	/* the loop's buffer, copied out at once */
		r->rearm.fn = rill__ep_recv_settle;
		return 0;
	}
	if (!loop->has_bufs) {
		r->plain = malloc(RILL_PLAIN_RECV_SIZE);
		if (!r->plain)
			return -ENOMEM;
	}
	return 0;
}

void rill__recv_start(struct rill__recv *r)
{
	if (r->ended)
		return;
	r->want = true;
	if (rill__epoll(r->loop))
		rill__ep_recv_start(r);
	else if (!r->armed && rill__list_empty(&r->rearm.link))
		recv_arm(r);
}

void rill__recv_stop(struct rill__recv *r)
{
	r->want = false;
	if (rill__epoll(r->loop))
		rill__ep_recv_stop(r);
	else if (r->armed)
		rill__op_cancel(r->loop, &r->op, NULL);
}

bool rill__recv_busy(const struct rill__recv *r)
{
	return r->armed || !rill__list_empty(&r->rearm.link);
}

void rill__recv_free(struct rill__recv *r)
{
	if (!rill__list_empty(&r->rearm.link))
		rill__list_del(&r->rearm.link);
	free(r->plain);
	r->plain = NULL;
}
