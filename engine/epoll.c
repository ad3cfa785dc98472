/* SPDX-License-Identifier: MIT */
/* engine/epoll.c: the epoll backend, for where io_uring is refused.
 *
 * The same operations as the io_uring loop (engine/io.h), with the same
 * completion contract: nothing completes inside the call that started it,
 * and completions are handed out where the io_uring loop reaps CQEs, in
 * the loop's poll step. One iteration's poll step:
 *
 *  1. submit: the sends queued since the last one are tried (sendmsg);
 *     one the socket cannot take waits for EPOLLOUT; those done complete;
 *  2. wait: epoll_wait, blocking only when the loop may still block after
 *     those completions, for at most the time to the next timer;
 *  3. complete: each readiness event
 *     becomes what io_uring would have completed: bytes for a recv
 *     (read into the loop's buffer and handed to on_data, which copies
 *     them out at once), connections for an acceptor, the rest of a send,
 *     a connect's end, the cross-thread wake-up (the loop's eventfd).
 *
 * Stops settle (on_idle) through the loop's deferred list, after the call
 * that stopped, as a cancelled io_uring operation's last CQE would.
 * Interest is level-triggered and registered per fd in a table indexed by
 * fd: EPOLLIN while a recv or acceptor wants data, EPOLLOUT while a send or
 * a connect waits. A socket with no interest left is removed from the set,
 * so an fd closed and reused starts afresh.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "engine/loop.h"
#include "rill/stream.h"	/* the log levels */

/* The loop's recv buffer: bytes are copied to the reader at once, so one
 * buffer serves every connection. */
#define EP_BUF_SIZE (64 * 1024)
/* A throttled recv reads this much per iteration (as io_uring's single
 * recv into one 16 KiB provided buffer). */
#define EP_THROTTLED_SIZE (16 * 1024)
/* Readiness events per epoll_wait, and reads / accepts per event, so that
 * one busy socket cannot hold the loop. */
#define EP_EVENTS 256
#define EP_READS_MAX 16
#define EP_ACCEPTS_MAX 64
/* epoll_event.data of the loop's eventfd; sockets carry their fd. */
#define EP_WAKE_TAG UINT64_MAX

/* ---- setup --------------------------------------------------------- */

int rill__ep_init(rill_loop *loop)
{
	struct rill__epoll *ep = &loop->ep;

	ep->fd = epoll_create1(EPOLL_CLOEXEC);
	if (ep->fd < 0)
		return rill__set_detail(-errno, "epoll_create1: %s", strerror(errno));
	ep->buf = malloc(EP_BUF_SIZE);
	if (!ep->buf) {
		close(ep->fd);
		return -ENOMEM;
	}
	ep->buf_size = EP_BUF_SIZE;
	rill__list_init(&ep->submit);
	rill__list_init(&ep->done);
	loop->features = 0;	/* io_uring's features: none here */
	return 0;
}

void rill__ep_exit(rill_loop *loop)
{
	close(loop->ep.fd);
	free(loop->ep.fds);
	free(loop->ep.buf);
}

void rill__ep_wake_add(rill_loop *loop)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = EP_WAKE_TAG };

	if (epoll_ctl(loop->ep.fd, EPOLL_CTL_ADD, loop->wake_fd, &ev) < 0)
		rill__log(RILL_LOG_ERROR, "epoll_ctl(eventfd): %s", strerror(errno));
}

/* ---- interest ------------------------------------------------------ */

/* The table entry of fd, grown as needed. Entries move when it grows:
 * callers index it again after anything that may register an fd. */
static struct rill__epfd *epfd(rill_loop *loop, int fd)
{
	struct rill__epoll *ep = &loop->ep;

	if ((size_t)fd >= ep->nfds) {
		size_t n = ep->nfds ? ep->nfds : 64;
		struct rill__epfd *v;

		while (n <= (size_t)fd)
			n *= 2;
		v = realloc(ep->fds, n * sizeof(*v));
		if (!v) {
			rill__log(RILL_LOG_ERROR, "epoll: out of memory for fd %d", fd);
			abort();
		}
		memset(v + ep->nfds, 0, (n - ep->nfds) * sizeof(*v));
		ep->fds = v;
		ep->nfds = n;
	}
	return &ep->fds[fd];
}

/* Turns bit (EPOLLIN or EPOLLOUT) of fd's registration on or off. */
static void interest(rill_loop *loop, int fd, uint32_t bit, bool on)
{
	struct rill__epfd *e = epfd(loop, fd);
	uint32_t mask = on ? e->mask | bit : e->mask & ~bit;
	struct epoll_event ev = { .events = mask, .data.u64 = (uint64_t)fd };
	int op = !e->mask ? EPOLL_CTL_ADD : mask ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;

	if (mask == e->mask)
		return;
	e->mask = mask;
	if (epoll_ctl(loop->ep.fd, op, fd, &ev) == 0)
		return;
	/* The fd was closed (its registration went with it) and reused, or
	 * registered behind our back: say it again the other way. */
	if (op == EPOLL_CTL_MOD && errno == ENOENT &&
	    epoll_ctl(loop->ep.fd, EPOLL_CTL_ADD, fd, &ev) == 0)
		return;
	if (op == EPOLL_CTL_ADD && errno == EEXIST &&
	    epoll_ctl(loop->ep.fd, EPOLL_CTL_MOD, fd, &ev) == 0)
		return;
	if (op == EPOLL_CTL_DEL && (errno == ENOENT || errno == EBADF))
		return;
	rill__log(RILL_LOG_ERROR, "epoll_ctl(%d): %s", fd, strerror(errno));
}

static void set_nonblock(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	if (flags >= 0 && !(flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

/* ---- recv ---------------------------------------------------------- */

/* The recv's operation is over (stopped or ended): on_idle, last. */
static void recv_settle(struct rill__recv *r)
{
	rill_loop *loop = r->loop;

	if (!rill__list_empty(&r->rearm.link))
		rill__list_del(&r->rearm.link);
	interest(loop, r->fd, EPOLLIN, false);
	epfd(loop, r->fd)->recv = NULL;
	r->armed = false;
	rill__op_finished(loop);
	if (r->on_idle)
		r->on_idle(r->ctx);	/* may free r */
}

void rill__ep_recv_start(struct rill__recv *r)
{
	if (!r->armed) {
		r->armed = true;
		rill__op_started(r->loop);
	}
	epfd(r->loop, r->fd)->recv = r;
	/* epoll refuses regular files (EPERM): they are always readable, so
	 * a read is made every iteration instead, from the deferred list. */
	if (r->regular)
		rill__defer(r->loop, &r->rearm);
	else
		interest(r->loop, r->fd, EPOLLIN, true);
}

void rill__ep_recv_stop(struct rill__recv *r)
{
	if (!r->armed)
		return;
	interest(r->loop, r->fd, EPOLLIN, false);
	rill__defer(r->loop, &r->rearm);
}

static bool recv_ready(rill_loop *loop, struct rill__recv *r);

void rill__ep_recv_settle(struct rill__deferred *d)
{
	struct rill__recv *r = rill__container_of(d, struct rill__recv, rearm);

	if (!r->armed)
		return;
	if (r->want && !r->ended && r->regular) {
		if (!recv_ready(r->loop, r) && r->want)	/* r may be gone */
			rill__defer(r->loop, &r->rearm);
	} else if (r->want && !r->ended) {	/* started again before it settled */
		interest(r->loop, r->fd, EPOLLIN, true);
	} else {
		recv_settle(r);
	}
}

/* The owner's memory for a throttled read, or NULL: see rill__recv.lend. */
static char *recv_lend(struct rill__recv *r, size_t *len)
{
	return r->throttled && r->lend ? r->lend(r->ctx, len) : NULL;
}

/* EPOLLIN: what a multishot recv would have delivered, in reads of the
 * loop's buffer while they come back full; a throttled recv reads once per
 * iteration (into the owner's memory where it lends some) until a short
 * read. Returns true when the recv ended and settled (r may be freed). */
static bool recv_ready(rill_loop *loop, struct rill__recv *r)
{
	for (int i = 0; i < EP_READS_MAX && r->want; i++) {
		size_t len = r->throttled ? EP_THROTTLED_SIZE : loop->ep.buf_size;
		char *lent = recv_lend(r, &len);
		char *p = lent ? lent : loop->ep.buf;
		ssize_t n = r->file ? read(r->fd, p, len) :
			    recv(r->fd, p, len, MSG_DONTWAIT);
		int err = n < 0 ? errno : 0;
		bool full = n > 0 && (size_t)n == len;

		if (n > 0)
			rill__recv_sized(r, (size_t)n, EP_THROTTLED_SIZE);
		if (lent)
			r->landed(r->ctx, lent, n > 0 ? (size_t)n : 0);
		else if (n > 0)
			r->on_data(r->ctx, loop->ep.buf, (size_t)n);
		if (n > 0) {
			if (!full || r->throttled)
				return false;
			continue;
		}
		if (n < 0 && (err == EAGAIN || err == EINTR))
			return false;
		r->ended = true;
		r->want = false;
		r->on_end(r->ctx, n == 0 ? 0 : -err);
		recv_settle(r);
		return true;	/* settled: r may be freed */
	}
	return false;
}

/* ---- accept -------------------------------------------------------- */

static void acceptor_settle(struct rill__acceptor *a)
{
	rill_loop *loop = a->loop;

	if (!rill__list_empty(&a->settle.link))
		rill__list_del(&a->settle.link);
	if (a->fd >= 0)		/* not closed by rill__acceptor_close() */
		rill__ep_acceptor_forget(a);
	a->armed = false;
	rill__op_finished(loop);
	rill__acceptor_settled(a);
	if (a->on_idle)
		a->on_idle(a->ctx);
}

static void acceptor_settle_deferred(struct rill__deferred *d)
{
	struct rill__acceptor *a = rill__container_of(d, struct rill__acceptor,
						      settle);

	if (!a->armed)
		return;
	if (a->want)
		interest(a->loop, a->fd, EPOLLIN, true);
	else
		acceptor_settle(a);
}

void rill__ep_acceptor_init(struct rill__acceptor *a)
{
	a->settle.fn = acceptor_settle_deferred;
	set_nonblock(a->fd);	/* loops sharing it must not block in accept */
}

void rill__ep_acceptor_start(struct rill__acceptor *a)
{
	if (!a->armed) {
		a->armed = true;
		rill__op_started(a->loop);
	}
	epfd(a->loop, a->fd)->acc = a;
	interest(a->loop, a->fd, EPOLLIN, true);
}

void rill__ep_acceptor_forget(struct rill__acceptor *a)
{
	interest(a->loop, a->fd, EPOLLIN, false);
	epfd(a->loop, a->fd)->acc = NULL;
}

void rill__ep_acceptor_stop(struct rill__acceptor *a)
{
	if (!a->armed)
		return;
	interest(a->loop, a->fd, EPOLLIN, false);
	rill__defer(a->loop, &a->settle);
}

/* EPOLLIN on a listening socket: the connections waiting, as multishot
 * accept would hand them out (errors too: the owner decides). */
static void accept_ready(struct rill__acceptor *a)
{
	for (int i = 0; i < EP_ACCEPTS_MAX && a->want; i++) {
		int fd = accept4(a->fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);

		int err;

		if (fd >= 0) {
			a->on_accept(a->ctx, fd);
			continue;
		}
		err = errno;

		if (err == EAGAIN || err == EINTR)
			return;
		a->on_accept(a->ctx, -err);	/* may stop a */
		if (err != ECONNABORTED)
			return;
	}
}

/* ---- send ---------------------------------------------------------- */

void rill__ep_send_start(struct rill__send *s)
{
	s->waiting = false;
	s->done = false;
	rill__list_add_tail(&s->loop->ep.submit, &s->link);
}

static void send_complete(struct rill__send *s, int res)
{
	s->res = res;
	s->done = true;
	rill__list_add_tail(&s->loop->ep.done, &s->link);
}

static void send_unwait(struct rill__send *s)
{
	if (!s->waiting)
		return;
	s->waiting = false;
	epfd(s->loop, s->fd)->send = NULL;
	interest(s->loop, s->fd, EPOLLOUT, false);
}

/* At the submit point, and on EPOLLOUT: as much as the socket takes now. */
static void send_try(struct rill__send *s)
{
	const struct iovec *iov = s->msg.msg_iov;
	ssize_t n;

	do	/* send() for one piece: no msghdr for the kernel to copy in */
		n = s->file ? pwritev2(s->fd, iov, (int)s->msg.msg_iovlen, -1,
				       rill__nosignal_off ? 0 : RWF_NOSIGNAL) :
		    s->msg.msg_iovlen == 1 ?
		    send(s->fd, iov->iov_base, iov->iov_len, MSG_NOSIGNAL | MSG_DONTWAIT) :
		    sendmsg(s->fd, &s->msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	while (n < 0 && errno == EINTR);
	if (n < 0 && errno == EAGAIN) {
		if (!s->waiting) {
			s->waiting = true;
			epfd(s->loop, s->fd)->send = s;
			interest(s->loop, s->fd, EPOLLOUT, true);
		}
		return;
	}
	send_unwait(s);
	send_complete(s, n < 0 ? -errno : (int)n);
}

void rill__ep_send_cancel(struct rill__send *s)
{
	if (s->done)		/* the result came first: it is kept */
		return;
	if (s->waiting)
		send_unwait(s);
	else
		rill__list_del(&s->link);	/* still queued for submit */
	send_complete(s, -ECANCELED);
}

static void sends_submit(rill_loop *loop)
{
	struct rill__list *q = &loop->ep.submit;

	while (!rill__list_empty(q)) {
		struct rill__send *s = rill__container_of(q->next,
						struct rill__send, link);
		rill__list_del(&s->link);
		send_try(s);
	}
}

/* Hands out the sends completed so far; sends their handlers start go to
 * the next submit point. */
static unsigned sends_complete(rill_loop *loop)
{
	struct rill__list list, *q = &loop->ep.done;
	unsigned n = 0;

	if (rill__list_empty(q))
		return 0;
	list = *q;
	list.next->prev = &list;
	list.prev->next = &list;
	rill__list_init(q);
	while (!rill__list_empty(&list)) {
		struct rill__send *s = rill__container_of(list.next,
						struct rill__send, link);
		rill__list_del(&s->link);
		s->done = false;
		n++;
		s->op.complete(&s->op, s->res, 0);
	}
	return n;
}

/* ---- connect ------------------------------------------------------- */

struct ep_connect {
	struct rill__wait wait;
	rill_loop *loop;
	int fd;
	uint32_t bit;		/* EPOLLOUT: a connect; EPOLLIN: a readable wait */
};

static void connect_unwait(struct ep_connect *c)
{
	struct rill__epfd *e = epfd(c->loop, c->fd);
	struct rill__wait **slot = c->bit == EPOLLIN ? &e->in : &e->out;

	if (*slot == &c->wait) {
		*slot = NULL;
		interest(c->loop, c->fd, c->bit, false);
	}
}

static void connect_interrupt(struct rill__wait *w, int reason)
{
	struct ep_connect *c = rill__container_of(w, struct ep_connect, wait);

	connect_unwait(c);
	rill__wake(w->task, reason);
}

/* A connect that is in progress: parked until the socket is writable,
 * then its SO_ERROR is the result. */
static int connect_wait(rill_loop *loop, int fd)
{
	struct ep_connect c = {
		.wait = { .interrupt = connect_interrupt, .until = RILL_TIME_NEVER },
		.loop = loop,
		.fd = fd,
		.bit = EPOLLOUT,
	};
	socklen_t len = sizeof(int);
	int err, soerr = 0;

	epfd(loop, fd)->out = &c.wait;
	interest(loop, fd, EPOLLOUT, true);
	rill__op_started(loop);
	err = rill__park(&c.wait);
	rill__op_finished(loop);
	connect_unwait(&c);	/* when park returned at once */
	if (err < 0)
		return err;
	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
		return -errno;
	return -soerr;
}

int rill__ep_wait_fd(rill_loop *loop, int fd, bool out)
{
	struct ep_connect c = {
		.wait = { .interrupt = connect_interrupt, .until = RILL_TIME_NEVER },
		.loop = loop,
		.fd = fd,
		.bit = out ? EPOLLOUT : EPOLLIN,
	};
	struct rill__wait **slot = out ? &epfd(loop, fd)->out : &epfd(loop, fd)->in;
	int err;

	if (*slot)
		return -EBUSY;	/* one waiter per fd and direction */
	*slot = &c.wait;
	interest(loop, fd, c.bit, true);
	rill__op_started(loop);
	err = rill__park(&c.wait);
	rill__op_finished(loop);
	connect_unwait(&c);
	return err;
}

int rill__ep_connect(rill_loop *loop, int fd, const struct sockaddr *addr,
		     socklen_t len)
{
	int err;

	set_nonblock(fd);
	for (;;) {
		if (connect(fd, addr, len) == 0)
			return 0;
		err = errno;
		if (err == EINPROGRESS)
			return connect_wait(loop, fd);
		if (err == EINTR)
			continue;
		/* A unix socket whose listener's backlog is full: io_uring's
		 * blocking connect would wait; poll for room. */
		if (err == EAGAIN && addr->sa_family == AF_UNIX) {
			if ((err = rill_sleep_ns(RILL_NSEC_PER_SEC / 1000)) < 0)
				return err;
			continue;
		}
		return -err;
	}
}

/* ---- the poll step ------------------------------------------------- */

static void wake_ready(rill_loop *loop)
{
	uint64_t v;

	while (read(loop->wake_fd, &v, sizeof(v)) < 0 && errno == EINTR)
		;
	rill__loop_ts_run(loop);
}

/* One readiness event: the fd's entry is looked up anew for each step, as
 * a handler may register fds (and move the table) or stop what waited. */
static void event(rill_loop *loop, const struct epoll_event *ev)
{
	int fd = (int)ev->data.u64;
	uint32_t in = EPOLLIN | EPOLLERR | EPOLLHUP | EPOLLRDHUP;
	uint32_t out = EPOLLOUT | EPOLLERR | EPOLLHUP;
	struct rill__epfd *e;

	if (ev->data.u64 == EP_WAKE_TAG) {
		wake_ready(loop);
		return;
	}
	if ((size_t)fd >= loop->ep.nfds)
		return;
	e = &loop->ep.fds[fd];
	if ((ev->events & in) && e->recv && e->recv->want)
		recv_ready(loop, e->recv);
	e = &loop->ep.fds[fd];
	if ((ev->events & in) && e->acc && e->acc->want)
		accept_ready(e->acc);
	e = &loop->ep.fds[fd];
	if ((ev->events & out) && e->send)
		send_try(e->send);
	e = &loop->ep.fds[fd];
	if ((ev->events & in) && e->in) {
		struct rill__wait *w = e->in;

		e->in = NULL;
		interest(loop, fd, EPOLLIN, false);
		rill__wake(w->task, 0);
	}
	e = &loop->ep.fds[fd];
	if ((ev->events & out) && e->out) {
		struct rill__wait *w = e->out;

		e->out = NULL;
		interest(loop, fd, EPOLLOUT, false);
		rill__wake(w->task, 0);
	}
}

/* Milliseconds epoll_wait may block: to the next timer, rounded up. */
static int wait_ms(rill_loop *loop, bool block)
{
	rill_time next, now, d;

	if (!block)
		return 0;
	next = rill__timer_next(loop);
	if (next == RILL_TIME_NEVER)
		return -1;
	now = rill_now();
	if (next <= now)
		return 0;
	d = (next - now + 999999) / 1000000;
	return d > 1000000 ? 1000000 : (int)d;
}

void rill__ep_poll(rill_loop *loop, bool block)
{
	struct epoll_event evs[EP_EVENTS];
	int n = 0;

	sends_submit(loop);
	/* The sends done at once complete first, as their CQEs would come
	 * first from io_uring's enter; if they leave nothing runnable the
	 * wait below may still block, so that a round of replies costs one
	 * epoll_wait, as it costs io_uring one enter. */
	if (!rill__list_empty(&loop->ep.done)) {
		loop->stats.cqes += sends_complete(loop);
		block = block && rill__loop_may_block(loop);
	}
	/* A send those handlers started (the rest of a partial one) waits
	 * for the next submit point, and nothing may wake this wait for it:
	 * no EPOLLOUT is asked for it yet. */
	if (!rill__list_empty(&loop->ep.submit))
		block = false;
	if (block || loop->ops_in_flight || atomic_load(&loop->ts_signalled)) {
		n = epoll_wait(loop->ep.fd, evs, EP_EVENTS, wait_ms(loop, block));
		loop->stats.enters++;
		if (n < 0)
			n = 0;	/* EINTR: the next iteration waits again */
	}
	for (int i = 0; i < n; i++)
		event(loop, &evs[i]);
	loop->stats.cqes += (unsigned)n;
}
