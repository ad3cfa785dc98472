/* SPDX-License-Identifier: MIT */
/*
 * uv_echo: the same server as epoll_echo, written the idiomatic libuv way,
 * as the event-library peer beside rill's echo server.
 *
 * Writes go through uv_try_write first (as Node does) and only the part the
 * socket did not take is copied into a uv_write request; reading stops while
 * more than WRITE_HIGH_WATER bytes are queued and restarts from the write
 * callback once the queue is back under it.
 *
 * Usage: uv_echo --port P [--host H] [--mode echo|sink|http]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "../bench.h"
#include "peer.h"

/* 64 KiB: the read size every peer and rill use, so all make the same syscalls. */
#define READ_SIZE (64 * 1024)

/* The load test opens up to 1000 connections at once; a short queue drops SYNs. */
#define BACKLOG 1024

/* 64 KiB: asyncio's default high-water mark, so both peers pause at the same depth. */
#define WRITE_HIGH_WATER (64 * 1024)



struct conn {
	uv_tcp_t tcp;	/* first, so a handle pointer is a conn pointer */
	int crlf;	/* bytes of "\r\n\r\n" matched so far (http), across reads */
	int paused;	/* reading stopped for backpressure */
};

struct write_req {
	uv_write_t req;
	struct conn *conn;
	char data[];
};

static enum bench_mode mode = BENCH_MODE_ECHO;
static uv_tcp_t listener;
static uv_signal_t sigint, sigterm;

/*
 * One read buffer for all connections: libuv calls alloc, read and read_cb
 * back to back, and read_cb consumes or copies the data before returning.
 */
static char rbuf[READ_SIZE];

/* Replies for one read's worth of pipelined requests; grows on demand. */

static void conn_free(uv_handle_t *h)
{
	free(h);
}

static void conn_close(struct conn *c)
{
	if (!uv_is_closing((uv_handle_t *)&c->tcp))
		uv_close((uv_handle_t *)&c->tcp, conn_free);
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);

/* A write failing after close is UV_ECANCELED; c stays valid until then. */
static void write_cb(uv_write_t *req, int status)
{
	struct conn *c = ((struct write_req *)req)->conn;
	uv_stream_t *s = (uv_stream_t *)&c->tcp;

	free(req);
	if (status < 0) {
		conn_close(c);
		return;
	}
	if (c->paused && uv_stream_get_write_queue_size(s) <= WRITE_HIGH_WATER) {
		c->paused = 0;
		uv_read_start(s, NULL, read_cb);
	}
}

/* Queue what the socket did not take; may stop reading. Returns 0 or -1. */
static int conn_queue(struct conn *c, const char *data, size_t len)
{
	uv_stream_t *s = (uv_stream_t *)&c->tcp;
	struct write_req *w = malloc(sizeof(*w) + len);
	uv_buf_t b;

	if (!w)
		return -1;
	w->conn = c;
	memcpy(w->data, data, len);
	b = uv_buf_init(w->data, len);
	if (uv_write(&w->req, s, &b, 1, write_cb) < 0) {
		free(w);	/* the callback is never called on failure */
		return -1;
	}
	if (uv_stream_get_write_queue_size(s) > WRITE_HIGH_WATER) {
		c->paused = 1;
		uv_read_stop(s);
	}
	return 0;
}

/* Returns 0, or -1 after closing c (c stays valid until its close callback). */
static int conn_send(struct conn *c, const char *data, size_t len)
{
	uv_buf_t b = uv_buf_init((char *)data, len);
	int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);

	if (n == UV_EAGAIN)
		n = 0;
	if (n >= 0 && (size_t)n == len)
		return 0;
	if (n < 0 || conn_queue(c, data + n, len - n) < 0) {
		conn_close(c);
		return -1;
	}
	return 0;
}


/* One write carries the replies to every request completed by this read. */
static void http_handle(struct conn *c, const char *p, size_t n)
{
	size_t count = peer_http_count(&c->crlf, p, n);
	const char *replies;
	size_t len;

	if (!count)
		return;
	if (!(replies = peer_http_replies(count, &len))) {
		conn_close(c);
		return;
	}
	conn_send(c, replies, len);
}

static void shutdown_cb(uv_shutdown_t *req, int status)
{
	(void)status;	/* closing either way */
	conn_close((struct conn *)req->handle);
	free(req);
}

/* EOF: let queued echoes go out (uv_shutdown waits for them), then close. */
static void conn_eof(struct conn *c)
{
	uv_shutdown_t *req = malloc(sizeof(*req));

	if (!req || uv_shutdown(req, (uv_stream_t *)&c->tcp, shutdown_cb) < 0) {
		free(req);
		conn_close(c);
	}
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	(void)h;
	(void)suggested;
	*buf = uv_buf_init(rbuf, sizeof(rbuf));
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = (struct conn *)s;

	if (nread == UV_EOF)
		conn_eof(c);
	else if (nread < 0)	/* ECONNRESET and friends */
		conn_close(c);
	else if (mode == BENCH_MODE_ECHO && nread > 0)
		conn_send(c, buf->base, nread);
	else if (mode == BENCH_MODE_HTTP)
		http_handle(c, buf->base, nread);
}

static void connection_cb(uv_stream_t *server, int status)
{
	struct conn *c;

	if (status < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c)
		return;
	uv_tcp_init(server->loop, &c->tcp);
	if (uv_accept(server, (uv_stream_t *)&c->tcp) < 0) {
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
}

static void close_walk_cb(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (uv_is_closing(h))
		return;
	if (h->type == UV_TCP && h != (uv_handle_t *)&listener)
		uv_close(h, conn_free);
	else
		uv_close(h, NULL);
}

/*
 * Close every handle; uv_run then returns once their callbacks have run.
 * Closing the watchers restores SIG_DFL, so ignore a second signal (timeout(1)
 * also signals the process group) rather than die in the middle of shutdown.
 */
static void signal_cb(uv_signal_t *sig, int signum)
{
	(void)signum;
	uv_walk(sig->loop, close_walk_cb, NULL);
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
}

/* uv_tcp_bind sets SO_REUSEADDR itself on Unix. Returns the port or -1. */
static int listen_on(uv_loop_t *loop, const char *host, const char *port)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE };
	struct sockaddr_storage ss;
	int len = sizeof(ss), err;
	uv_getaddrinfo_t gai;

	err = uv_getaddrinfo(loop, &gai, NULL, host, port, &hints);
	if (err < 0) {
		fprintf(stderr, "%s: %s\n", host, uv_strerror(err));
		return -1;
	}
	uv_tcp_init(loop, &listener);
	err = uv_tcp_bind(&listener, gai.addrinfo->ai_addr, 0);
	uv_freeaddrinfo(gai.addrinfo);
	if (!err)
		err = uv_listen((uv_stream_t *)&listener, BACKLOG, connection_cb);
	if (!err)
		err = uv_tcp_getsockname(&listener, (struct sockaddr *)&ss, &len);
	if (err < 0) {
		fprintf(stderr, "listen: %s\n", uv_strerror(err));
		return -1;
	}
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

#define USAGE "uv_echo --port P [--host H] [--mode echo|sink|http]"
#define OPTIONS PEER_OPTIONS

int main(int argc, char **argv)
{
	struct bench_server_args a = { .host = "127.0.0.1", .port_num = -1 };
	uv_loop_t *loop = uv_default_loop();
	int bound;

	bench_server_parse(argc, argv, USAGE, OPTIONS, BENCH_SERVER_NEED_PORT, &a);
	mode = a.mode;
	signal(SIGPIPE, SIG_IGN);	/* libuv writes with write(2): EPIPE, not death */
	bound = listen_on(loop, a.host, a.port);
	if (bound < 0)
		return 1;
	uv_signal_init(loop, &sigint);
	uv_signal_init(loop, &sigterm);
	uv_signal_start(&sigint, signal_cb, SIGINT);
	uv_signal_start(&sigterm, signal_cb, SIGTERM);
	printf("Serving on %s:%d\n", a.host, bound);
	fflush(stdout);
	uv_run(loop, UV_RUN_DEFAULT);
	return uv_loop_close(loop) ? 1 : 0;
}
