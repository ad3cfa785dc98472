/* SPDX-License-Identifier: MIT */
/* tls/transport.c: TLS as a transport under rill's streams.
 *
 * OpenSSL talks to BIOs instead of the socket. Ciphertext the recv brings
 * is read by OpenSSL straight out of the received bytes (a BIO that views
 * them, so the one copy is into OpenSSL's record buffer), and SSL_read()
 * decrypts it into the reader's buffer. Plaintext the writer queued goes
 * through SSL_write() one record (16 KiB) at a time into blocks of output
 * (tls/out.c), and the records are sent straight out of them, which never
 * move, so the payload is copied once (by the encryption) and nothing is
 * copied twice. The stream code calls this through struct rill__transport
 * and never asks whether it has TLS.
 *
 * Memory follows the traffic: output blocks go back once sent, the
 * ciphertext held between recvs once OpenSSL took it, and OpenSSL's own
 * record buffers (34 KiB) once the connection stayed idle a while (see
 * tls_release_if_idle and tls/idle.c), so an idle connection costs little
 * more than its SSL object.
 *
 * Close sends close_notify and waits for the peer's, as asyncio's
 * SSLProtocol does, at most ssl_shutdown_timeout (30 s); then it aborts and
 * wait_closed() says RILL_ETLS_SHUTDOWN_TIMEOUT. Application data that
 * arrives meanwhile is dropped; a TCP EOF ends the wait as well as the
 * close_notify (asyncio's eof_received in SHUTDOWN). The peer's
 * close_notify that comes first is answered at once, without the
 * application: the reader sees EOF and the connection closes as if
 * close() had been called, what was queued sent first (asyncio's
 * _start_shutdown from _do_read), so a peer waiting for our close_notify
 * is not held up by a handler still running.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "streams/internal.h"
#include "tls/tls.h"
#include "rill/tls.h"

/* Encryption runs ahead of a send in flight up to this much output,
 * several records, so that one sendmsg takes many of them. It also bounds
 * the ciphertext held back for OpenSSL (tls_hold). */
#define RILL_TLS_OUT_MAX (256 * 1024)
/* Plaintext per SSL_write: one full record. */
#define RILL_TLS_RECORD (16 * 1024)
#define RILL_TLS_HANDSHAKE_DEFAULT (60 * RILL_NSEC_PER_SEC)
/* asyncio's SSL_SHUTDOWN_TIMEOUT: how long a close waits for the peer's
 * close_notify before it aborts. */
#define RILL_TLS_SHUTDOWN_DEFAULT (30 * RILL_NSEC_PER_SEC)
/* asyncio's FLOW_CONTROL_HIGH_WATER_SSL_WRITE: a TLS writer's default
 * high-water mark (low: a quarter). Records are 16 KiB, so 64 KiB would
 * pause a writer after four of them. */
#define RILL_TLS_WRITE_HIGH (512 * 1024)

struct tls_conn {
	struct rill__conn *c;
	rill_tls_ctx *ctx;
	SSL *ssl;
	struct rill__tls_out out;	/* records not sent yet */
	bool done;		/* handshake finished */
	bool failed;
	bool close_notify;	/* the peer's arrived */
	bool peer_eof;		/* TCP EOF while closing */
	bool notify_sent;	/* our close_notify is queued */
	bool warm;		/* idle once since the handshake */
	int err;
	const char *in;		/* ciphertext OpenSSL reads next (the view) */
	size_t in_len;
	char *inbuf;		/* ciphertext kept: what OpenSSL left unread, */
	size_t held_len;	/* held_len bytes, then room lent to the recv */
	size_t in_cap;
	rill_time shutdown_timeout;
	rill_task *shutdown_timer;	/* running while we wait for the peer */
	struct rill__waitq waiters;	/* tasks waiting for the handshake */
	char *subject;		/* "peercert_subject", made on demand */
	char *alpn;		/* "alpn_protocol" */
	struct rill__tls_idle idle;	/* on the thread's idle list */
};

static struct tls_conn *tls_of(struct rill__conn *c)
{
	return c->tp_data;
}

/* The alert OpenSSL queued for a failure is the peer's only clue to it,
 * and the connection is about to be dropped with its queue: send it now,
 * once, without waiting (a few bytes the socket buffer takes). Never
 * behind a send in flight, which it could overtake. */
static void tls_last_words(struct tls_conn *t)
{
	struct rill__conn *c = t->c;
	struct iovec iov;
	ssize_t n;

	if (c->writer.sending || c->lost || c->fd < 0 ||
	    !rill__tls_out_iov(&t->out, &iov, 1))
		return;
	n = send(c->fd, iov.iov_base, iov.iov_len, MSG_DONTWAIT | MSG_NOSIGNAL);
	if (n > 0)
		rill__tls_out_sent(&t->out, (size_t)n);
}

/* This connection's TLS failed: it ends, alone; the reader gets the
 * error, as does a task waiting for the handshake. */
static void tls_fail(struct tls_conn *t, int err)
{
	if (t->failed)
		return;
	t->failed = true;
	t->err = err;
	tls_last_words(t);
	rill__waitq_wake_all(&t->waiters);
	rill__conn_lost(t->c, err);
}

/* The socket failed under us (a reset, a send error) or was aborted: a
 * task waiting for the handshake learns it now, not at its timeout. */
static void tls_lost(struct rill__conn *c, int err)
{
	struct tls_conn *t = tls_of(c);

	if (t->failed || t->done)
		return;
	t->failed = true;
	t->err = err < 0 ? err : -ECONNRESET;
	rill__waitq_wake_all(&t->waiters);
}

static void tls_kick_if_output(struct tls_conn *t)
{
	if (t->out.pending)
		rill__writer_kick(&t->c->writer);
}

/* Nothing in or out, nothing queued: OpenSSL's record buffers (16.7 KiB
 * each way) go back, as SSL_MODE_RELEASE_BUFFERS would give them, but
 * only here, so that a bulk stream does not free and allocate them for
 * every record. OpenSSL makes them again for the next record. (It refuses
 * while a record is partly read or written; no decrypted byte may be
 * waiting either, whose memory is the read buffer.) In a handshake, the
 * output on its way does not count: no bulk follows before it ends, and a
 * flood of handshakes must not hold 34 KiB each until their flights go. */
static bool tls_idle(const struct tls_conn *t)
{
	return !(t->failed || t->held_len || t->in_len || (t->done && t->out.pending) ||
		 t->c->writer.qlen || SSL_has_pending(t->ssl));
}

/* In the handshake, and the first time the connection is idle after it
 * (a client that connects and waits), the buffers go at once; once it has
 * carried traffic, when it stayed idle for a while (tls/idle.c), so that
 * request/response traffic keeps them. */
static void tls_release_if_idle(struct tls_conn *t)
{
	if (!tls_idle(t))
		return;
	if (t->warm) {
		rill__tls_idle_mark(&t->idle);
		return;
	}
	SSL_free_buffers(t->ssl);
	t->warm = t->done;
}

void rill__tls_idle_release(struct rill__tls_idle *e)
{
	struct tls_conn *t = (struct tls_conn *)((char *)e - offsetof(struct tls_conn, idle));

	if (tls_idle(t))
		SSL_free_buffers(t->ssl);
}

static void tls_handshake_step(struct tls_conn *t)
{
	int r = SSL_do_handshake(t->ssl);
	int e;

	if (r == 1) {
		t->done = true;
		rill__waitq_wake_all(&t->waiters);
		rill__writer_kick(&t->c->writer);	/* queued plaintext */
		return;
	}
	e = SSL_get_error(t->ssl, r);
	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
		tls_fail(t, rill__tls_conn_error(t->ssl, e));
}

/* How much plaintext the next SSL_read may give: what OpenSSL holds
 * decrypted, or the ciphertext it has yet to read, at most a record.
 * Asking the reader for more would grow a small-message reader's buffer
 * for nothing; less only splits a record over two reads. */
static size_t tls_read_size(struct tls_conn *t)
{
	size_t n = (size_t)SSL_pending(t->ssl);

	if (!n)
		n = t->in_len;
	if (n > RILL_TLS_RECORD)
		n = RILL_TLS_RECORD;
	return n ? n : 1;
}

/* Decrypts what the pair holds straight into the reader's buffer. */
static void tls_read(struct tls_conn *t)
{
	rill_reader *reader = &t->c->reader;

	while (!t->failed && !t->close_notify) {
		size_t room;
		char *p = rill__reader_reserve(reader, tls_read_size(t), &room);
		int r, e;

		if (!p) {
			tls_fail(t, -ENOMEM);
			return;
		}
		r = SSL_read(t->ssl, p, room > INT_MAX ? INT_MAX : (int)room);
		if (r > 0) {
			if (!t->c->closing)	/* closing: asyncio drops it too */
				rill__reader_commit(reader, (size_t)r);
			continue;
		}
		e = SSL_get_error(t->ssl, r);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
			return;
		if (e == SSL_ERROR_ZERO_RETURN) {
			t->close_notify = true;
			rill_reader_feed_eof(reader);
			if (t->c->closing)
				rill__conn_maybe_close(t->c);
			else	/* answered now: the close only defers its flush */
				rill_writer_close(&t->c->writer);
			return;
		}
		tls_fail(t, rill__tls_conn_error(t->ssl, e));
	}
}

/* Every entry into OpenSSL starts from an empty error queue: it is per
 * thread, and an error left there by anything else on this thread would
 * make SSL_get_error() report a failure that is not this connection's. */
static void tls_progress(struct tls_conn *t)
{
	ERR_clear_error();
	if (!t->done)
		tls_handshake_step(t);
	if (t->done)
		tls_read(t);
	if (!t->failed)
		tls_kick_if_output(t);	/* tickets, key updates, alerts */
}

/* Room for n more bytes after the held ones. */
static int tls_inbuf_reserve(struct tls_conn *t, size_t n)
{
	char *p;

	if (t->held_len + n <= t->in_cap)
		return 0;
	if (!(p = realloc(t->inbuf, t->held_len + n)))
		return -ENOMEM;
	t->inbuf = p;
	t->in_cap = t->held_len + n;
	return 0;
}

/* Ciphertext OpenSSL left unread is kept at the start of t->inbuf, bounded
 * like the pair it replaces: OpenSSL stops reading only to write first (a
 * full output pair), and a peer that makes it so for that long is not
 * reading. The buffer goes once empty, unless the recv lends it again. */
static int tls_hold(struct tls_conn *t, bool keep)
{
	size_t n = t->in_len;

	t->held_len = 0;
	if (!n || t->failed || t->close_notify) {
		if (!keep) {
			free(t->inbuf);
			t->inbuf = NULL;
			t->in_cap = 0;
		}
		return 0;
	}
	if (n > RILL_TLS_OUT_MAX)
		return rill__tls_error_str(RILL_ETLS, "TLS input stalled");
	if (tls_inbuf_reserve(t, n) < 0)
		return -ENOMEM;
	memmove(t->inbuf, t->in, n);
	t->held_len = n;
	return 0;
}

/* OpenSSL reads the n bytes at p (the view), then what it left is held. */
static void tls_take(struct tls_conn *t, const char *p, size_t n, bool keep)
{
	int err;

	t->in = p;
	t->in_len = n;
	tls_progress(t);
	err = tls_hold(t, keep);
	t->in = NULL;
	t->in_len = 0;
	if (err < 0)
		tls_fail(t, err);
	else
		tls_release_if_idle(t);
}

static void tls_on_data(struct rill__conn *c, const char *p, size_t n)
{
	struct tls_conn *t = tls_of(c);

	if (t->failed)
		return;
	if (!t->held_len) {
		tls_take(t, p, n, false);
		return;
	}
	/* rare: after the bytes held back */
	if (tls_inbuf_reserve(t, n) < 0) {
		tls_fail(t, -ENOMEM);
		return;
	}
	memcpy(t->inbuf + t->held_len, p, n);
	tls_take(t, t->inbuf, t->held_len + n, false);
}

/* A throttled recv (the reader fell behind: a bulk stream) lands in the
 * buffer after the held bytes: in memory that stays hot, a loan at a time,
 * instead of ring buffers walked in order and then copied. */
#define RILL_TLS_LOAN (64 * 1024)

static char *tls_lend(struct rill__conn *c, size_t *n)
{
	struct tls_conn *t = tls_of(c);

	if (t->failed || tls_inbuf_reserve(t, RILL_TLS_LOAN) < 0)
		return NULL;
	*n = RILL_TLS_LOAN;
	return t->inbuf + t->held_len;
}

static void tls_landed(struct rill__conn *c, char *p, size_t n)
{
	struct tls_conn *t = tls_of(c);

	(void)p;
	if (n && !t->failed)
		tls_take(t, t->inbuf, t->held_len + n, true);
}

static void tls_on_eof(struct rill__conn *c)
{
	struct tls_conn *t = tls_of(c);

	if (t->close_notify || t->failed)
		return;
	if (c->closing) {	/* we said goodbye: the peer's EOF will do */
		t->peer_eof = true;
		rill_reader_feed_eof(&c->reader);
		rill__conn_maybe_close(c);
		return;
	}
	/* The TCP stream ended without close_notify: a truncation the
	 * reader must not take for a clean end; in a handshake, the peer
	 * hung up on it (asyncio: ConnectionResetError). */
	if (t->done)
		tls_fail(t, rill__tls_error_str(RILL_ETLS_EOF,
						"the peer closed without close_notify"));
	else
		tls_fail(t, rill__tls_error_str(-ECONNRESET,
						"the peer closed during the TLS handshake"));
}

/* Encrypts queued plaintext while the output has room for a record
 * under RILL_TLS_OUT_MAX. */
static void tls_encrypt(struct tls_conn *t)
{
	rill_writer *w = &t->c->writer;
	const char *p;
	size_t n;

	ERR_clear_error();
	while (t->done && !t->failed && (n = rill__writer_peek(w, &p)) &&
	       t->out.pending + RILL_TLS_RECORD + 512 <= RILL_TLS_OUT_MAX) {
		int r = SSL_write(t->ssl, p, n > RILL_TLS_RECORD ? RILL_TLS_RECORD : (int)n);

		if (r <= 0) {
			int e = SSL_get_error(t->ssl, r);

			if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
				tls_fail(t, rill__tls_conn_error(t->ssl, e));
			return;
		}
		rill__writer_consume(w, (size_t)r);
	}
}

static size_t tls_prepare(struct rill__conn *c, struct iovec *iov, size_t max)
{
	struct tls_conn *t = tls_of(c);

	tls_encrypt(t);
	rill__writer_set_wire(&c->writer, t->out.pending);
	return rill__tls_out_iov(&t->out, iov, max);
}

static void tls_sent(struct rill__conn *c, size_t n)
{
	struct tls_conn *t = tls_of(c);

	rill__tls_out_sent(&t->out, n);
	rill__writer_set_wire(&c->writer, t->out.pending);
	tls_release_if_idle(t);
}

static bool tls_pending(struct rill__conn *c)
{
	struct tls_conn *t = tls_of(c);

	return t->out.pending ||
	       (t->done && !t->failed && c->writer.qlen);
}

/* Waiting for the peer's close_notify: the socket stays open and
 * receiving. */
static bool tls_linger(struct rill__conn *c)
{
	struct tls_conn *t = tls_of(c);

	return t->notify_sent && !t->close_notify && !t->peer_eof && !t->failed;
}

static int tls_shutdown_timer(void *arg)
{
	struct tls_conn *t = arg;

	if (rill_sleep_ns(t->shutdown_timeout) < 0)
		return 0;	/* cancelled: t may be gone */
	if (tls_linger(t->c))
		rill__conn_lost(t->c, rill__tls_error_str(RILL_ETLS_SHUTDOWN_TIMEOUT,
			"SSL shutdown timed out: no close_notify from the peer"));
	return 0;
}

static void tls_shutdown(struct rill__conn *c)
{
	struct tls_conn *t = tls_of(c);

	if (!t->done || t->failed)
		return;
	ERR_clear_error();
	SSL_shutdown(t->ssl);	/* queues close_notify */
	ERR_clear_error();
	t->notify_sent = true;
	if (!tls_linger(c))
		return;
	/* (A reader paused above 2 x limit stays paused: such a close
	 * waits for the timeout.) */
	if (rill_spawn(c->loop, tls_shutdown_timer, t, &t->shutdown_timer) < 0)
		t->peer_eof = true;	/* no timer: do not wait at all */
}

static bool tls_can_write_eof(struct rill__conn *c)
{
	(void)c;
	return false;
}

static const char *tls_subject(struct tls_conn *t)
{
	X509 *cert = SSL_get0_peer_certificate(t->ssl);

	if (!t->subject && cert)
		t->subject = X509_NAME_oneline(X509_get_subject_name(cert), NULL, 0);
	return t->subject;
}

static const char *tls_alpn(struct tls_conn *t)
{
	const unsigned char *p;
	unsigned len;

	SSL_get0_alpn_selected(t->ssl, &p, &len);
	if (!t->alpn && len && (t->alpn = malloc(len + 1))) {
		memcpy(t->alpn, p, len);
		t->alpn[len] = '\0';
	}
	return t->alpn;
}

static const void *tls_extra_info(struct rill__conn *c, const char *name, size_t *lenp)
{
	struct tls_conn *t = tls_of(c);
	const void *v = NULL;

	if (!strcmp(name, "ssl_object"))
		v = t->ssl;
	else if (!strcmp(name, "sslcontext"))
		v = t->ctx;
	else if (!strcmp(name, "peercert"))
		v = SSL_get0_peer_certificate(t->ssl);
	else if (!strcmp(name, "peercert_subject"))
		v = tls_subject(t);
	else if (!strcmp(name, "cipher"))
		v = SSL_get_cipher_name(t->ssl);
	else if (!strcmp(name, "version"))
		v = SSL_get_version(t->ssl);
	else if (!strcmp(name, "alpn_protocol"))
		v = tls_alpn(t);
	if (v && lenp)
		*lenp = 0;
	return v;
}

static void tls_destroy(struct rill__conn *c)
{
	struct tls_conn *t = tls_of(c);

	if (t->shutdown_timer) {
		rill_task_cancel(t->shutdown_timer);
		rill_task_detach(t->shutdown_timer);
	}
	rill__tls_idle_leave(&t->idle);
	SSL_free(t->ssl);	/* frees the view and the sink */
	rill__tls_out_free(&t->out);
	free(t->inbuf);
	rill__tls_ctx_unref(t->ctx);
	OPENSSL_free(t->subject);
	free(t->alpn);
	free(t);
}

static const struct rill__transport tls_transport = {
	.on_data = tls_on_data,
	.lend = tls_lend,
	.landed = tls_landed,
	.on_eof = tls_on_eof,
	.prepare = tls_prepare,
	.sent = tls_sent,
	.pending = tls_pending,
	.shutdown = tls_shutdown,
	.can_write_eof = tls_can_write_eof,
	.extra_info = tls_extra_info,
	.destroy = tls_destroy,
	.lost = tls_lost,
	.linger = tls_linger,
};

/* ---- the view: OpenSSL's input, read in place ---------------------- */

static BIO_METHOD *view_method;

static int view_read(BIO *b, char *out, int len)
{
	struct tls_conn *t = BIO_get_data(b);
	size_t n = t->in_len < (size_t)len ? t->in_len : (size_t)len;

	BIO_clear_retry_flags(b);
	if (len > 0 && !n) {
		BIO_set_retry_read(b);
		return -1;
	}
	memcpy(out, t->in, n);
	t->in += n;
	t->in_len -= n;
	return (int)n;
}

static long view_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_conn *t = BIO_get_data(b);

	(void)num;
	(void)ptr;
	if (cmd == BIO_CTRL_PENDING)
		return (long)t->in_len;
	return cmd == BIO_CTRL_FLUSH;
}

static void view_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "rill recv view");

	if (m && (BIO_meth_set_read(m, view_read) != 1 || BIO_meth_set_ctrl(m, view_ctrl) != 1)) {
		BIO_meth_free(m);
		m = NULL;
	}
	view_method = m;	/* process-wide, as OpenSSL's own methods */
}

static BIO *view_new(struct tls_conn *t)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	BIO *b;

	pthread_once(&once, view_method_init);
	if (!view_method || !(b = BIO_new(view_method)))
		return NULL;
	BIO_set_data(b, t);
	BIO_set_init(b, 1);
	return b;
}

/* ---- starting TLS on a connection --------------------------------- */

static struct tls_conn *tls_new(struct rill__conn *c, rill_tls_ctx *ctx)
{
	struct tls_conn *t = calloc(1, sizeof(*t));
	BIO *sink = NULL, *view = NULL;

	if (!t)
		return NULL;
	t->c = c;
	rill__waitq_init(&t->waiters);
	t->ssl = SSL_new(ctx->ssl_ctx);
	if (!t->ssl || !(view = view_new(t)) || !(sink = rill__tls_out_bio(&t->out))) {
		BIO_free(view);
		SSL_free(t->ssl);
		free(t);
		return NULL;
	}
	SSL_set_bio(t->ssl, view, sink);
	t->ctx = rill__tls_ctx_ref(ctx);
	return t;
}

/* Waits for the handshake, at most timeout (0: 60 s). Only that timeout
 * is RILL_ETLS_HANDSHAKE_TIMEOUT; the task's own deadline, passed first,
 * is -ETIMEDOUT as for any wait (asyncio: wait_for's TimeoutError). The
 * connection is over either way. */
static int tls_wait(struct tls_conn *t, rill_time timeout)
{
	rill_time saved = rill_deadline_push(timeout ? timeout : RILL_TLS_HANDSHAKE_DEFAULT);
	int err = 0;

	while (!t->done && !t->failed && err == 0)
		err = rill__waitq_park(&t->waiters);
	rill_deadline_pop(saved);
	if (t->failed)
		return t->err;
	if (err == -ETIMEDOUT && rill_deadline_expired())
		err = rill__set_detail(-ETIMEDOUT, "the task's deadline passed in the TLS handshake");
	else if (err == -ETIMEDOUT)
		err = rill__tls_error_str(RILL_ETLS_HANDSHAKE_TIMEOUT,
					  "no TLS handshake within the timeout");
	if (err == -ETIMEDOUT || err == RILL_ETLS_HANDSHAKE_TIMEOUT)
		tls_fail(t, err);
	return err;
}

static bool is_ip(const char *s)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1;
}

/* SNI, and the name the certificate must carry. */
static int tls_client_name(struct tls_conn *t, const char *name)
{
	X509_VERIFY_PARAM *vp = SSL_get0_param(t->ssl);

	if (!name || !*name)	/* "": asyncio's "no hostname check" */
		return 0;
	if (is_ip(name))
		return X509_VERIFY_PARAM_set1_ip_asc(vp, name) == 1 ? 0 : -EINVAL;
	if (SSL_set_tlsext_host_name(t->ssl, name) != 1 || SSL_set1_host(t->ssl, name) != 1)
		return -EINVAL;
	rill__tls_session_resume(t->ctx, t->ssl, name);
	return 0;
}

static rill_tls_ctx *default_client;

static void default_client_init(void)
{
	rill_tls_ctx_new_client(NULL, &default_client);
}

static int tls_client(struct rill__conn *c, rill_tls_ctx *ctx, const char *name,
		      rill_time handshake, rill_time shutdown)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct tls_conn *t;

	if (!ctx) {
		pthread_once(&once, default_client_init);
		if (!(ctx = default_client))
			return rill__tls_error(RILL_ETLS, "creating the default client context");
	}
	if (ctx->server)
		return rill__tls_error_str(-EINVAL, "a server context on a client connection");
	if (!(t = tls_new(c, ctx)))
		return -ENOMEM;
	t->shutdown_timeout = shutdown ? shutdown : RILL_TLS_SHUTDOWN_DEFAULT;
	if (tls_client_name(t, name) < 0) {
		c->tp_data = t;
		tls_destroy(c);
		c->tp_data = NULL;
		return rill__tls_error_str(-EINVAL, "bad server_hostname");
	}
	SSL_set_connect_state(t->ssl);
	rill__conn_set_transport(c, &tls_transport, t);
	rill__writer_default_limits(&c->writer, RILL_TLS_WRITE_HIGH);
	tls_progress(t);	/* the ClientHello */
	return tls_wait(t, handshake);
}

static int tls_server(struct rill__conn *c, rill_tls_ctx *ctx, rill_time handshake,
		      rill_time shutdown)
{
	struct tls_conn *t;

	if (!ctx->server)
		return rill__tls_error_str(-EINVAL, "a client context on a server");
	if (!(t = tls_new(c, ctx)))
		return -ENOMEM;
	t->shutdown_timeout = shutdown ? shutdown : RILL_TLS_SHUTDOWN_DEFAULT;
	SSL_set_accept_state(t->ssl);
	rill__conn_set_transport(c, &tls_transport, t);
	rill__writer_default_limits(&c->writer, RILL_TLS_WRITE_HIGH);
	if (!t->failed)
		tls_progress(t);	/* bytes that came early */
	return tls_wait(t, handshake);
}

/* ---- public entry points ------------------------------------------- */

static const struct rill__tls_hooks hooks = {
	.client = tls_client,
	.server = tls_server,
	.ctx_ref = rill__tls_ctx_ref,
	.ctx_unref = rill__tls_ctx_unref,
};

void rill_tls_init(void)
{
	rill__tls_register(&hooks);
}

/* Linking rill-tls is enough for ssl= to work. */
__attribute__((constructor)) static void tls_autoinit(void)
{
	rill_tls_init();
}

/* start_tls waits for what the writer queued in plain to go first: the
 * writer wakes its flushed queue once it has. */
static int start_check(rill_writer *w, struct rill__conn **cp)
{
	struct rill__conn *c;

	if (!w)
		return -EINVAL;
	c = rill__writer_conn(w);
	if (c->tp != &rill__plain_transport)
		return rill__tls_error_str(RILL_ESTATE, "the connection already runs TLS");
	if (c->closing || c->lost)
		return -ECONNRESET;
	while (w->qlen || w->sending) {
		int err = rill__waitq_park(&w->flushed);

		if (err < 0)
			return err;
	}
	*cp = c;
	return 0;
}

int rill_start_tls(rill_writer *w, rill_tls_ctx *ctx, const char *server_hostname,
		   const rill_tls_timeouts *timeouts)
{
	rill__detail_clear();
	rill_tls_timeouts t = RILL_TLS_TIMEOUTS_INIT;
	struct rill__conn *c = NULL;
	int err = rill__options_load(&t, sizeof(t), timeouts, "rill_tls_timeouts");

	if (err < 0)
		return err;
	/* asyncio: "check_hostname requires server_hostname". */
	if (!server_hostname && (!ctx || (ctx->verify && !ctx->server)))
		return rill__tls_error_str(-EINVAL, "server_hostname is required: the "
			"context checks host names (\"\" turns the check off)");
	if ((err = start_check(w, &c)) < 0)
		return err;
	return tls_client(c, ctx, server_hostname, t.handshake, t.shutdown);
}

int rill_start_tls_server(rill_writer *w, rill_tls_ctx *ctx,
			  const rill_tls_timeouts *timeouts)
{
	rill__detail_clear();
	rill_tls_timeouts t = RILL_TLS_TIMEOUTS_INIT;
	struct rill__conn *c = NULL;
	int err;

	if (!ctx)
		return -EINVAL;
	if ((err = rill__options_load(&t, sizeof(t), timeouts, "rill_tls_timeouts")) < 0 ||
	    (err = start_check(w, &c)) < 0)
		return err;
	return tls_server(c, ctx, t.handshake, t.shutdown);
}
