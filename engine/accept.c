/* SPDX-License-Identifier: MIT */
/* engine/accept.c: a listening socket's stream of new connections.
 *
 * Multishot accept where the loop has it (one SQE, a CQE per connection),
 * else single-shot accept re-armed after each completion. Errors go to the
 * owner, which decides whether to go on (EMFILE: pause, retry later).
 * On an epoll loop, engine/epoll.c accepts on EPOLLIN instead.
 */
#include <errno.h>
#include <stdint.h>
#include <unistd.h>

#include "engine/loop.h"
#include "engine/io.h"

static void accept_arm(struct rill__acceptor *a)
{
	struct io_uring_sqe *sqe = rill__sqe(a->loop);

	if (a->loop->features & RILL_FEAT_MULTISHOT_ACCEPT)
		io_uring_prep_multishot_accept(sqe, a->fd, NULL, NULL,
					       SOCK_CLOEXEC);
	else
		io_uring_prep_accept(sqe, a->fd, NULL, NULL,
				     SOCK_CLOEXEC);
	io_uring_sqe_set_data(sqe, &a->op);
	a->armed = true;
	rill__op_started(a->loop);
}

static void accept_done(struct rill__op *op, int res, unsigned flags)
{
	struct rill__acceptor *a = rill__container_of(op, struct rill__acceptor, op);

	if (res >= 0 || (res != -ECANCELED && res != -EINTR && res != -EAGAIN))
		a->on_accept(a->ctx, res);	/* may stop the acceptor */
	if (flags & IORING_CQE_F_MORE)
		return;
	a->armed = false;
	rill__op_finished(a->loop);
	rill__acceptor_settled(a);
	if (a->want) {
		a->loop->stats.rearms++;
		accept_arm(a);
	} else if (a->on_idle) {
		a->on_idle(a->ctx);
	}
}

void rill__acceptor_init(struct rill__acceptor *a, rill_loop *loop, int fd,
			 void *ctx)
{
	a->op.complete = accept_done;
	a->loop = loop;
	a->fd = fd;
	a->ctx = ctx;
	a->armed = a->want = a->settling = false;
	rill__list_init(&a->settle.link);
	if (rill__epoll(loop))
		rill__ep_acceptor_init(a);
}

/* a is stopped while armed: its stop has to settle (loop->settling). */
static void settling_begin(struct rill__acceptor *a)
{
	if (a->armed && !a->settling) {
		a->settling = true;
		a->loop->settling++;
	}
}

/* a's stop has settled: it is disarmed, or started again. */
void rill__acceptor_settled(struct rill__acceptor *a)
{
	if (a->settling) {
		a->settling = false;
		a->loop->settling--;
	}
}

void rill__acceptor_start(struct rill__acceptor *a)
{
	rill__acceptor_settled(a);
	a->want = true;
	if (rill__epoll(a->loop))
		rill__ep_acceptor_start(a);
	else if (!a->armed)
		accept_arm(a);
}

void rill__acceptor_stop(struct rill__acceptor *a)
{
	a->want = false;
	settling_begin(a);
	if (rill__epoll(a->loop))
		rill__ep_acceptor_stop(a);
	else if (a->armed)
		rill__op_cancel(a->loop, &a->op, NULL);
}

/* io_uring: cancels a's accept and waits until the kernel has let go of
 * it (IORING_REGISTER_SYNC_CANCEL, 6.0): the request's reference to the
 * socket is gone, so closing our fd then stops listening at once when
 * this process alone holds the socket. Its completion still comes, with
 * -ECANCELED, and settles a as a stop does. */
static bool accept_cancel_now(struct rill__acceptor *a)
{
	struct io_uring_sync_cancel_reg reg = {
		.addr = (uint64_t)(uintptr_t)&a->op,
		.fd = -1,
		.timeout = { .tv_sec = -1, .tv_nsec = -1 },
	};
	int ret;

	/* An accept not yet submitted is in the SQ: submit it first, or
	 * the cancel would not find it and it would start after. */
	io_uring_submit(&a->loop->ring);
	ret = io_uring_register_sync_cancel(&a->loop->ring, &reg);
	if (ret < 0 && ret != -ENOENT && ret != -EALREADY)
		return false;
	/* With DEFER_TASKRUN the cancelled request is freed, and its file
	 * reference put, by task work that runs at the next enter: run it
	 * now. Its CQE waits in the ring for the loop. */
	io_uring_get_events(&a->loop->ring);
	return true;
}

bool rill__acceptor_close(struct rill__acceptor *a)
{
	int fd = a->fd;

	if (rill__epoll(a->loop)) {
		rill__acceptor_stop(a);		/* EPOLL_CTL_DEL: our epoll only */
		rill__ep_acceptor_forget(a);
	} else if (a->armed) {
		if (!accept_cancel_now(a)) {
			rill__acceptor_stop(a);
			return false;
		}
		settling_begin(a);	/* its -ECANCELED completion is to come */
	}
	a->want = false;
	a->fd = -1;
	close(fd);
	return true;
}
