/* SPDX-License-Identifier: MIT */
/* engine/accept.c: a listening socket's stream of new connections.
 *
 * Multishot accept where the loop has it (one SQE, a CQE per connection),
 * else single-shot accept re-armed after each completion. Errors go to the
 * owner, which decides whether to go on (EMFILE: pause, retry later).
 * On an epoll loop, engine/epoll.c accepts on EPOLLIN instead.
 */
#include <errno.h>

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

/* Whether a's stop has still to settle: no longer, once it is disarmed
 * or started again. */
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
	if (a->armed && !a->settling) {
		a->settling = true;
		a->loop->settling++;
	}
	if (rill__epoll(a->loop))
		rill__ep_acceptor_stop(a);
	else if (a->armed)
		rill__op_cancel(a->loop, &a->op, NULL);
}
