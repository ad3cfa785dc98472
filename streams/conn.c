/* SPDX-License-Identifier: MIT */
/* streams/conn.c: a connection's life: created on a connected socket,
 * closed by close()/abort() or lost to the peer, freed when the user has
 * given it back and the kernel holds nothing of it any more.
 *
 * Order of a close: stop receiving (the recv in flight holds the file),
 * send what is queued, then close the fd once neither the recv nor a send
 * is in flight. Memory goes only after that, so no completion can land in
 * a freed connection.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "streams/internal.h"

/* ---- transports ---------------------------------------------------- */

const struct rill__tls_hooks *rill__tls;

void rill__tls_register(const struct rill__tls_hooks *hooks)
{
	rill__tls = hooks;
}

static void conn_on_data(void *ctx, const char *p, size_t n)
{
	struct rill__conn *c = ctx;

	c->tp->on_data(c, p, n);
}

static char *conn_lend(void *ctx, size_t *n)
{
	struct rill__conn *c = ctx;
	char *p = c->tp->lend ? c->tp->lend(c, n) : NULL;

	c->lender = p ? c->tp : NULL;
	return p;
}

static void conn_landed(void *ctx, char *p, size_t n)
{
	struct rill__conn *c = ctx;
	const struct rill__transport *lender = c->lender;
	char *late = NULL;

	c->lender = NULL;
	if (lender == c->tp || n == 0) {
		lender->landed(c, p, n);
		return;
	}
	/* start_tls installed a transport while the recv was in flight: the
	 * bytes are the new one's, taken out first as rill__conn_set_transport
	 * takes the ones held before. */
	if ((late = malloc(n)))
		memcpy(late, p, n);
	lender->landed(c, p, 0);
	if (late)
		c->tp->on_data(c, late, n);
	else
		rill__conn_lost(c, -ENOMEM);
	free(late);
}

static void conn_on_end(void *ctx, int err)
{
	struct rill__conn *c = ctx;

	if (err == 0)
		c->tp->on_eof(c);
	else
		rill__conn_lost(c, err);
}

void rill__conn_set_transport(struct rill__conn *c, const struct rill__transport *tp,
			      void *data)
{
	rill_reader *r = &c->reader;
	size_t n = rill__rbuf_len(&r->buf) - r->consume_later;
	char *early = NULL;

	/* Bytes already received belong to the new transport now. They are
	 * taken out first: tp->on_data feeds this very reader. */
	if (n && (early = malloc(n))) {
		memcpy(early, rill__rbuf_peek(&r->buf) + r->consume_later, n);
		rill__rbuf_consume(&r->buf, rill__rbuf_len(&r->buf));
		r->consume_later = 0;
	}
	c->tp = tp;
	c->tp_data = data;
	if (early) {
		tp->on_data(c, early, n);
		free(early);
	} else if (n) {
		rill__conn_lost(c, -ENOMEM);
	}
}

static void conn_detach(struct rill__conn *c);

static void conn_on_idle(void *ctx)
{
	rill__conn_maybe_close(ctx);
}

static void conn_task_ended(struct rill__resource *res)
{
	struct rill__conn *c = rill__container_of(res, struct rill__conn, res);

	rill__conn_release(c, true);
}

/* Asks the socket for n, which is c->peer or c->local. Both are asked
 * when the connection is made, as asyncio does: once the peer has reset
 * it, or it is closed, the socket cannot say. */
static void conn_get_name(struct rill__conn *c, struct rill__sockname *n)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int err;

	if (n == &c->peer)
		err = getpeername(c->fd, (struct sockaddr *)&ss, &len);
	else
		err = getsockname(c->fd, (struct sockaddr *)&ss, &len);
	if (err < 0 || len > sizeof(ss))
		return;
	if (len <= sizeof(n->small)) {
		memcpy(&n->small, &ss, len);
	} else {
		if (!n->big && !(n->big = malloc(sizeof(*n->big))))
			return;	/* unknown, as when the socket cannot say */
		memcpy(n->big, &ss, len);
	}
	n->len = len;
}

static void conn_free_names(struct rill__conn *c)
{
	free(c->peer.big);
	free(c->local.big);
	c->peer.big = c->local.big = NULL;
	c->peer.len = c->local.len = 0;
}

struct rill__conn *rill__conn_new(rill_loop *loop, int fd, size_t limit)
{
	return rill__conn_new_fd(loop, fd, limit, 0);
}

struct rill__conn *rill__conn_new_fd(rill_loop *loop, int fd, size_t limit,
				     unsigned flags)
{
	struct rill__conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->loop = loop;
	c->magic = RILL__CONN_LIVE;
	c->fd = fd;
	c->fd_info = fd;
	c->pipe = flags & RILL__CONN_PIPE;
	if (!c->pipe) {
		conn_get_name(c, &c->peer);
		conn_get_name(c, &c->local);
	}
	rill__reader_init(&c->reader, limit, c);
	rill__writer_init(&c->writer);
	rill__list_init(&c->server_link);
	if (rill__recv_init(&c->recv, loop, fd, c) < 0) {
		conn_free_names(c);
		free(c);
		return NULL;
	}
	c->tp = &rill__plain_transport;
	c->recv.on_data = conn_on_data;
	c->recv.lend = conn_lend;
	c->recv.landed = conn_landed;
	c->recv.on_end = conn_on_end;
	c->recv.on_idle = conn_on_idle;
	c->res.release = conn_task_ended;
	rill__resource_add(&c->res);
	c->recv.file = c->writer.send.file = c->pipe;
	c->recv.regular = flags & RILL__CONN_REGULAR;
	if (flags & RILL__CONN_NO_READ)
		rill_reader_feed_eof(&c->reader);	/* a write-only pipe */
	else
		rill__recv_start(&c->recv);
	return c;
}

static void conn_free(struct rill__conn *c)
{
	if (c->tp->destroy)
		c->tp->destroy(c);
	rill__resource_del(&c->res);
	if (c->server)
		rill__server_conn_gone(c->server, c);
	c->server = NULL;
	rill__recv_free(&c->recv);
	rill__reader_destroy(&c->reader);
	rill__writer_destroy(&c->writer);
	conn_free_names(c);
	c->magic = RILL__CONN_DEAD;
	rill__bury(c->loop, c);
}

static bool conn_busy(const struct rill__conn *c)
{
	return c->writer.sending || c->writer.in_sendfile || rill__recv_busy(&c->recv);
}

/* A close is through once the transport has nothing left to send, its
 * last words (TLS close_notify) included. */
static bool conn_close_ready(struct rill__conn *c)
{
	return c->closing && !c->tp->pending(c) && (c->shut_down || !c->tp->shutdown) &&
	       !(c->tp->linger && c->tp->linger(c));
}

void rill__conn_maybe_close(struct rill__conn *c)
{
	if (c->fd_closed) {
		if (c->released && !conn_busy(c))
			conn_free(c);
		return;
	}
	if (!c->lost && !conn_close_ready(c))
		return;
	if (rill__recv_busy(&c->recv)) {
		rill__recv_stop(&c->recv);
		return;		/* on_idle brings us back */
	}
	if (c->writer.sending || c->writer.in_sendfile)
		return;		/* send_done (or sendfile's end) brings us back */
	close(c->fd);
	c->fd = -1;
	c->fd_closed = true;
	c->lost = true;
	rill__writer_drop_queue(&c->writer);
	/* connection_lost(None): the reader sees EOF. */
	rill_reader_feed_eof(&c->reader);
	rill__writer_wake_all(&c->writer);
	if (c->released)
		conn_free(c);
	else
		conn_detach(c);
}

void rill__conn_lost(struct rill__conn *c, int err)
{
	if (c->lost)
		return;
	c->lost = true;
	if (err < 0) {
		c->lost_err = err;
		rill_reader_set_exception(&c->reader, err);
	}
	if (c->tp->lost)
		c->tp->lost(c, err);
	/* A sendfile blocked on a full socket (a splice in io_uring's worker,
	 * an EPOLLOUT wait) ends now, not when the peer reads. */
	if (c->writer.in_sendfile && !c->fd_closed)
		shutdown(c->fd, SHUT_RDWR);
	rill__writer_wake_all(&c->writer);
	if (c->writer.sending)
		rill__send_cancel(&c->writer.send);
	rill__conn_maybe_close(c);
}

void rill_writer_close(rill_writer *w)
{
	struct rill__conn *c = w ? rill__writer_conn(w) : NULL;

	if (!c || c->closing)
		return;
	c->closing = true;
	/* A transport that may wait for the peer's last words keeps
	 * receiving; rill__conn_maybe_close() stops the recv when through. */
	if (!c->tp->linger)
		rill__recv_stop(&c->recv);
	/* A transport with last words says them from the flush. */
	if (!w->sending && conn_close_ready(c))
		rill__conn_maybe_close(c);
	else if (!w->sending)
		rill__defer(c->loop, &w->flush);
}

void rill_writer_abort(rill_writer *w)
{
	if (w) {
		rill__writer_conn(w)->closing = true;
		rill__conn_lost(rill__writer_conn(w), 0);
	}
}

/* A server counts a connection until it is closed and its callback has
 * returned; a holder of rill_writer_keep() may keep the memory longer. */
static void conn_detach(struct rill__conn *c)
{
	struct rill_server *s = c->server;

	if (s && c->fd_closed && c->owner_released) {
		c->server = NULL;
		rill__server_conn_gone(s, c);
	}
}

/* The last holder is gone: close if still open, free once closed. */
static void conn_last_release(struct rill__conn *c, bool warn)
{
	if (warn && !c->closing && !c->warned) {
		c->warned = true;
		rill__log(RILL_LOG_WARNING,
			  "unclosed writer (fd %d) closed when its %s",
			  c->fd, c->keeps_seen ? "last holder released it"
					       : "task ended");
	}
	c->released = true;
	/* Either call may free c: with nothing in flight, at once. */
	if (!c->closing)
		rill_writer_close(&c->writer);
	else
		rill__conn_maybe_close(c);
}

int rill_writer_abort_reset(rill_writer *w)
{
	static const struct linger rst = { .l_onoff = 1, .l_linger = 0 };
	struct rill__conn *c;

	rill__detail_clear();
	if (!w)
		return -EINVAL;
	c = rill__writer_conn(w);
	if (c->fd_closed)
		return rill__set_detail(RILL_ECLOSED, "the socket is already closed");
	/* Linger 0: the close, once nothing is in flight on the fd, sends
	 * RST instead of FIN (uv_tcp_close_reset). */
	if (setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst)) < 0)
		return rill__set_detail(-errno, "SO_LINGER: %s", strerror(errno));
	rill_writer_abort(w);
	return 0;
}

void rill__conn_release(struct rill__conn *c, bool warn)
{
	if (c->owner_released)
		return;
	rill__resource_del(&c->res);
	c->owner_released = true;
	if (c->keeps) {
		conn_detach(c);		/* may be closed already */
		return;
	}
	conn_last_release(c, warn);
}

rill_writer *rill_writer_keep(rill_writer *w)
{
	struct rill__conn *c;

	if (!w)
		return NULL;
	c = rill__writer_conn(w);
	if (c->magic != RILL__CONN_LIVE || c->released)
		rill__misuse("rill_writer_keep: the writer was already freed");
	c->keeps++;
	c->keeps_seen = true;
	return w;
}

void rill_writer_release(rill_writer *w)
{
	struct rill__conn *c;

	if (!w)
		return;
	c = rill__writer_conn(w);
	if (c->magic != RILL__CONN_LIVE || c->released || !c->keeps)
		rill__misuse("rill_writer_release: more releases than keeps");
	/* A lost connection is closing in asyncio's terms: no warning. */
	if (--c->keeps == 0 && c->owner_released)
		conn_last_release(c, !c->lost);
}

void rill_writer_free(rill_writer *w)
{
	struct rill__conn *c;

	if (!w)
		return;
	c = rill__writer_conn(w);
	if (c->magic != RILL__CONN_LIVE || c->owner_released)
		rill__misuse("rill_writer_free: the writer was already freed");
	if (c->borrowed) {
		/* Freeing it here would pull it from under the server, which
		 * frees it when the callback returns: close it instead. */
		rill__log(RILL_LOG_WARNING, "rill_writer_free on the writer of a "
			  "server callback: it is borrowed; closed instead");
		rill_writer_close(w);
		return;
	}
	rill__conn_release(c, false);
}

/* ---- extra info ---------------------------------------------------- */

/* "peername" and "sockname": asked again if that failed at creation. */
static const void *conn_name_info(struct rill__conn *c, struct rill__sockname *n,
				  size_t *lenp)
{
	if (!n->len && !c->fd_closed)
		conn_get_name(c, n);
	if (lenp)
		*lenp = n->len;
	if (!n->len)
		return NULL;
	return n->big ? (const void *)n->big : (const void *)&n->small;
}

const void *rill_writer_get_extra_info(rill_writer *w, const char *name,
				       size_t *lenp)
{
	struct rill__conn *c;

	if (!w || !name)
		return NULL;
	c = rill__writer_conn(w);
	if (c->tp->extra_info) {
		const void *v = c->tp->extra_info(c, name, lenp);

		if (v)
			return v;
	}
	if (!strcmp(name, "socket")) {
		if (lenp)
			*lenp = sizeof(int);
		return &c->fd_info;
	}
	if (!strcmp(name, "peername"))
		return conn_name_info(c, &c->peer, lenp);
	if (!strcmp(name, "sockname"))
		return conn_name_info(c, &c->local, lenp);
	return NULL;
}
