/* SPDX-License-Identifier: MIT */
/* engine/send.c: a socket's sends and its connect, for streams.
 *
 * On io_uring a send is one SEND (one iovec) or SENDMSG SQE, submitted at
 * the loop's next enter; a connect is a CONNECT SQE the task waits on. On
 * epoll (engine/epoll.c) both are tried at the loop's submit point and
 * wait for EPOLLOUT when the socket is not ready. Either way the send's
 * completion comes from the loop, never from inside rill__send_start().
 */
#include <errno.h>

#include "engine/loop.h"

void rill__send_start(rill_loop *loop, struct rill__send *s, int fd,
		      struct iovec *iov, size_t n)
{
	struct io_uring_sqe *sqe;

	s->loop = loop;
	s->fd = fd;
	if (rill__epoll(loop)) {
		s->msg = (struct msghdr){ .msg_iov = iov, .msg_iovlen = n };
		rill__ep_send_start(s);
		return;
	}
	sqe = rill__sqe(loop);
	if (n == 1) {
		io_uring_prep_send(sqe, fd, iov[0].iov_base, iov[0].iov_len,
				   MSG_NOSIGNAL);
		io_uring_sqe_set_data(sqe, &s->op);
		return;
	}
	s->msg = (struct msghdr){ .msg_iov = iov, .msg_iovlen = n };
	io_uring_prep_sendmsg(sqe, fd, &s->msg, MSG_NOSIGNAL);
	io_uring_sqe_set_data(sqe, &s->op);
}

void rill__send_cancel(struct rill__send *s)
{
	if (rill__epoll(s->loop))
		rill__ep_send_cancel(s);
	else
		rill__op_cancel(s->loop, &s->op, NULL);
}

int rill__connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	rill_task *t = rill__current();
	rill_loop *loop = t ? t->loop : NULL;
	struct io_uring_sqe *sqe;

	if (!t)
		return -EPERM;
	if (rill__epoll(loop))
		return rill__ep_connect(loop, fd, addr, len);
	sqe = rill__sqe(loop);
	io_uring_prep_connect(sqe, fd, addr, len);
	return rill__op_wait(sqe, NULL);
}
