/* SPDX-License-Identifier: MIT */
/*
 * tls_echo: the TLS server a competent C programmer writes by hand with
 * OpenSSL and epoll, the baseline beside rill's echo server with --tls.
 *
 * epoll_echo.c with OpenSSL on each socket (SSL_set_fd, non-blocking):
 * one thread, level-triggered, the handshake driven by SSL_accept as the
 * socket becomes ready, SSL_read into one shared 64 KiB buffer and
 * SSL_write straight back. Read-ahead is on, so a record costs one read(2)
 * rather than two (header, then body); the plaintext OpenSSL then holds
 * is invisible to epoll, so a connection stopped by the per-event limit
 * with plaintext pending goes on a list served before the next wait.
 * Cipher and version are OpenSSL's defaults (OPENSSL_CONF may narrow them).
 *
 * Usage: tls_echo --port P --tls CERT KEY [--host H] [--mode echo|sink|http]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <getopt.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <stdbool.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "../bench.h"
#include "peer.h"

/* 64 KiB: the read size every peer and rill use, so all make the same syscalls. */
#define READ_SIZE (64 * 1024)

/* The load test opens up to 1000 connections at once; a short queue drops SYNs. */
#define BACKLOG 1024

/*
 * Reads per readiness event while each read fills the buffer: 32 (as libuv)
 * gives a flooding client 2 MiB per turn and then lets the others run.
 */
#define MAX_READS_PER_EVENT 32

#define MAX_EVENTS 256


struct conn {
	int fd;
	SSL *ssl;
	bool ready;	/* handshake done */
	bool queued;	/* on the pending list */
	int crlf;	/* bytes of "\r\n\r\n" matched so far (http), across reads */
	char *out;	/* unsent plaintext (malloc'd), NULL when none is pending */
	size_t out_off;
	size_t out_len;
	struct conn *next;	/* pending list */
};

static enum bench_mode mode = BENCH_MODE_ECHO;
static int epfd = -1;
static SSL_CTX *ssl_ctx;

/* Connections that stopped at the read limit with plaintext still inside
 * OpenSSL, where epoll cannot see it. */
static struct conn *pending;

/* Tags for the two non-connection fds in the epoll set. */
static char listener_tag, signal_tag;

/* One read buffer for all connections: data is consumed before the next read. */
static char rbuf[READ_SIZE];

/* Replies for one read's worth of pipelined requests; grows on demand. */

static int watch(struct conn *c, int op, uint32_t events)
{
	struct epoll_event ev = { .events = events, .data.ptr = c };

	return epoll_ctl(epfd, op, c->fd, &ev);
}

/* A closed connection still on the pending list is dropped from it by
 * marking it dead; the list owns it until then. */
static void conn_close(struct conn *c)
{
	close(c->fd);	/* also removes it from the epoll set */
	c->fd = -1;
	SSL_free(c->ssl);
	c->ssl = NULL;
	free(c->out);
	c->out = NULL;
	if (!c->queued)
		free(c);
}

/* Waits for whichever direction OpenSSL asked for. */
static void want(struct conn *c, int err)
{
	watch(c, EPOLL_CTL_MOD, err == SSL_ERROR_WANT_WRITE ? EPOLLOUT : EPOLLIN);
}

/*
 * Write len bytes, keeping whatever OpenSSL did not take (partial writes
 * and a moving buffer are allowed, so the rest may be retried from a copy)
 * and waiting for the socket before reading again: the backpressure every
 * peer applies. Returns 0, or -1 if c was closed.
 */
static int conn_send(struct conn *c, const char *data, size_t len)
{
	size_t done = 0;

	while (done < len) {
		int n = SSL_write(c->ssl, data + done, (int)(len - done));
		int e;

		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		e = SSL_get_error(c->ssl, n);
		if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) {
			conn_close(c);
			return -1;
		}
		c->out_len = len - done;
		c->out_off = 0;
		c->out = malloc(c->out_len);
		if (!c->out) {
			conn_close(c);
			return -1;
		}
		memcpy(c->out, data + done, c->out_len);
		want(c, e);
		return 0;
	}
	return 0;
}

/* Push pending output; once it is all gone, go back to reading. */
static void conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		int n = SSL_write(c->ssl, c->out + c->out_off,
				  (int)(c->out_len - c->out_off));
		int e;

		if (n > 0) {
			c->out_off += (size_t)n;
			continue;
		}
		e = SSL_get_error(c->ssl, n);
		if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ)
			want(c, e);
		else
			conn_close(c);
		return;
	}
	free(c->out);
	c->out = NULL;
	watch(c, EPOLL_CTL_MOD, EPOLLIN);
}


/* One write carries the replies to every request completed by this read. */
static int http_handle(struct conn *c, const char *p, size_t n)
{
	size_t count = peer_http_count(&c->crlf, p, n);
	const char *replies;
	size_t len;

	if (!count)
		return 0;
	if (!(replies = peer_http_replies(count, &len))) {
		conn_close(c);
		return -1;
	}
	return conn_send(c, replies, len);
}

/* Returns 0, or -1 if c was closed. */
static int conn_consume(struct conn *c, size_t n)
{
	switch (mode) {
	case BENCH_MODE_ECHO:
		return conn_send(c, rbuf, n);
	case BENCH_MODE_HTTP:
		return http_handle(c, rbuf, n);
	default:
		return 0;
	}
}

/*
 * Read until OpenSSL wants the socket again, output is pending, the peer
 * closed, or the per-event limit; stopped by the limit with plaintext
 * inside OpenSSL, the connection is served again before the next wait.
 */
static void conn_readable(struct conn *c)
{
	for (int i = 0; i < MAX_READS_PER_EVENT; i++) {
		int n = SSL_read(c->ssl, rbuf, sizeof(rbuf));
		int e;

		if (n <= 0) {
			e = SSL_get_error(c->ssl, n);
			if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
				want(c, e);
			else	/* close_notify, EOF, a reset, a bad record */
				conn_close(c);
			return;
		}
		if (conn_consume(c, (size_t)n) < 0 || c->out)
			return;
	}
	if (SSL_has_pending(c->ssl) && !c->queued) {
		c->queued = true;
		c->next = pending;
		pending = c;
	}
}

static void conn_handshake(struct conn *c)
{
	int r = SSL_accept(c->ssl);
	int e;

	if (r == 1) {
		c->ready = true;
		watch(c, EPOLL_CTL_MOD, EPOLLIN);
		conn_readable(c);	/* data may have come with the Finished */
		return;
	}
	e = SSL_get_error(c->ssl, r);
	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		want(c, e);
	else
		conn_close(c);
}

static void conn_event(struct conn *c, uint32_t events)
{
	(void)events;	/* one interest at a time; errors show in the call */
	if (!c->ssl)
		return;	/* closed while queued, earlier in this batch */
	if (!c->ready)
		conn_handshake(c);
	else if (c->out)
		conn_flush(c);
	else
		conn_readable(c);
}

/* Serves the connections the read limit left with plaintext pending. */
static void serve_pending(void)
{
	struct conn *list = pending;

	pending = NULL;
	while (list) {
		struct conn *c = list;

		list = c->next;
		c->queued = false;
		if (!c->ssl)
			free(c);
		else if (!c->out)
			conn_readable(c);
	}
}

static void conn_open(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c || !(c->ssl = SSL_new(ssl_ctx)) || !SSL_set_fd(c->ssl, fd)) {
		if (c)
			SSL_free(c->ssl);
		free(c);
		close(fd);
		return;
	}
	c->fd = fd;
	SSL_set_accept_state(c->ssl);
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (watch(c, EPOLL_CTL_ADD, EPOLLIN) < 0)
		conn_close(c);
}

/* Accept until the queue is empty, so a burst of connects costs one wakeup. */
static void accept_all(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			conn_open(fd);
			continue;
		}
		if (errno == EINTR || errno == ECONNABORTED)
			continue;
		if (errno != EAGAIN)
			perror("accept4");	/* EMFILE: retried on the next wakeup */
		return;
	}
}




static int add_tagged(int fd, void *tag)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = tag };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

/* Runs until SIGINT/SIGTERM. Open connections are left to exit() to close. */
static void serve(int lfd)
{
	struct epoll_event events[MAX_EVENTS];

	for (;;) {
		int n = epoll_wait(epfd, events, MAX_EVENTS, pending ? 0 : -1);

		if (n < 0 && errno != EINTR) {
			perror("epoll_wait");
			return;
		}
		for (int i = 0; i < n; i++) {
			void *p = events[i].data.ptr;

			if (p == &signal_tag)
				return;
			if (p == &listener_tag)
				accept_all(lfd);
			else
				conn_event(p, events[i].events);
		}
		serve_pending();
	}
}

#define USAGE "tls_echo --port P --tls CERT KEY [--host H] [--mode echo|sink|http]"
#define OPTIONS \
	PEER_PORT_OPTION \
	"  --tls CERT KEY    the certificate chain CERT and its key KEY (PEM)\n" \
	BENCH_SERVER_OPTIONS \
	PEER_HELP_OPTION

static SSL_CTX *tls_context(const char *cert, const char *key)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());

	if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, cert) != 1 ||
	    SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
		ERR_print_errors_fp(stderr);
		SSL_CTX_free(ctx);
		return NULL;
	}
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_read_ahead(ctx, 1);
	return ctx;
}

int main(int argc, char **argv)
{
	struct bench_server_args a = { .host = "127.0.0.1", .port_num = -1 };
	int lfd, sfd;

	bench_server_parse(argc, argv, USAGE, OPTIONS,
			   BENCH_SERVER_TLS | BENCH_SERVER_NEED_PORT | BENCH_SERVER_NEED_TLS, &a);
	mode = a.mode;
	ssl_ctx = tls_context(a.cert, a.key);
	sfd = peer_signal_fd();
	lfd = peer_listen(a.host, a.port, BACKLOG);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!ssl_ctx || sfd < 0 || lfd < 0 || epfd < 0 ||
	    add_tagged(sfd, &signal_tag) < 0 || add_tagged(lfd, &listener_tag) < 0)
		return 1;
	printf("Serving on %s:%d\n", a.host, peer_bound_port(lfd));
	fflush(stdout);
	serve(lfd);
	close(lfd);
	close(epfd);
	close(sfd);
	SSL_CTX_free(ssl_ctx);
	return 0;
}
