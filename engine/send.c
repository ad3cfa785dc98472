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
#include <fcntl.h>
#include <pthread.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

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
	if (s->file) {
		/* offset -1: the file position (a regular file as stdout). */
		io_uring_prep_writev(sqe, fd, iov, (unsigned)n, -1);
		if (!rill__nosignal_off)
			sqe->rw_flags = RWF_NOSIGNAL;
		io_uring_sqe_set_data(sqe, &s->op);
		return;
	}
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

bool rill__nosignal_off;

static void nosignal_probe_once(void)
{
	struct iovec v = { .iov_base = "", .iov_len = 1 };
	int p[2];

	if (pipe2(p, O_CLOEXEC | O_NONBLOCK) < 0)
		return;
	if (pwritev2(p[1], &v, 1, -1, RWF_NOSIGNAL) < 0 &&
	    (errno == EOPNOTSUPP || errno == EINVAL))
		rill__nosignal_refused();
	close(p[0]);
	close(p[1]);
}

void rill__nosignal_probe(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, nosignal_probe_once);
}

void rill__nosignal_refused(void)
{
	struct sigaction sa;

	/* Without RWF_NOSIGNAL a write on a pipe with no reader raises
	 * SIGPIPE in the thread that issues it (io_uring's inline issue
	 * included), which by default kills the process: ignore it unless
	 * the program chose a disposition of its own. */
	rill__nosignal_off = true;
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) {
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, NULL);
	}
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

static int wait_fd(int fd, bool out)
{
	rill_task *t = rill__current();
	struct io_uring_sqe *sqe;
	int res;

	if (!t)
		return -EPERM;
	if (rill__epoll(t->loop))
		return rill__ep_wait_fd(t->loop, fd, out);
	sqe = rill__sqe(t->loop);
	io_uring_prep_poll_add(sqe, fd, out ? POLLOUT : POLLIN);
	res = rill__op_wait(sqe, NULL);
	return res < 0 ? res : 0;
}

int rill__wait_readable(int fd)
{
	return wait_fd(fd, false);
}

int rill__wait_writable(int fd)
{
	return wait_fd(fd, true);
}

int rill__splice(int in, int64_t off_in, int out, unsigned n)
{
	rill_task *t = rill__current();
	struct io_uring_sqe *sqe;

	if (!t)
		return -EPERM;
	if (rill__epoll(t->loop))
		return -EOPNOTSUPP;
	sqe = rill__sqe(t->loop);
	io_uring_prep_splice(sqe, in, off_in, out, -1, n, 0);
	return rill__op_wait(sqe, NULL);
}
