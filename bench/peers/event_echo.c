/* SPDX-License-Identifier: MIT */
/*
 * event_echo: the same server as epoll_echo, written the idiomatic libevent
 * way: an evconnlistener and one bufferevent per connection.
 *
 * Echo moves the input evbuffer into the output one (evbuffer_add_buffer
 * moves chains, no copy); reading stops while more than WRITE_HIGH_WATER
 * bytes wait to be written and restarts from the write callback once they
 * are gone. Reads are up to READ_SIZE, as every other peer's.
 *
 * Usage: event_echo --port P [--host H] [--mode echo|sink|http]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "../bench.h"
#include "peer.h"

#define READ_SIZE (64 * 1024)
#define BACKLOG 1024
/* 64 KiB: asyncio's default high-water mark, as uv_echo. */
#define WRITE_HIGH_WATER (64 * 1024)

struct conn {
	struct bufferevent *bev;
	int crlf;	/* http: bytes of "\r\n\r\n" matched so far */
};

static enum bench_mode mode = BENCH_MODE_ECHO;

static void conn_close(struct conn *c)
{
	bufferevent_free(c->bev);	/* BEV_OPT_CLOSE_ON_FREE closes the fd */
	free(c);
}

/* http: count the requests completed by the input, answer them in one add. */
static int http_consume(struct conn *c, struct evbuffer *in, struct evbuffer *out)
{
	size_t count = 0, len;
	const char *replies;
	struct evbuffer_iovec v[16];
	int n = evbuffer_peek(in, -1, NULL, v, 16);

	for (int i = 0; i < n && i < 16; i++)
		count += peer_http_count(&c->crlf, v[i].iov_base, v[i].iov_len);
	evbuffer_drain(in, evbuffer_get_length(in));
	if (!count)
		return 0;
	replies = peer_http_replies(count, &len);
	return replies ? evbuffer_add(out, replies, len) : -1;
}

static void on_read(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	int err = 0;

	switch (mode) {
	case BENCH_MODE_ECHO:
		err = evbuffer_add_buffer(out, in);
		break;
	case BENCH_MODE_SINK:
		evbuffer_drain(in, evbuffer_get_length(in));
		break;
	default:
		err = http_consume(c, in, out);
		break;
	}
	if (err) {
		conn_close(c);
		return;
	}
	if (evbuffer_get_length(out) > WRITE_HIGH_WATER)
		bufferevent_disable(bev, EV_READ);
}

/* The output is empty (the default low watermark, 0): reading again. */
static void on_write(struct bufferevent *bev, void *arg)
{
	(void)arg;
	bufferevent_enable(bev, EV_READ);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
	(void)bev;
	if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR))
		conn_close(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd,
		      struct sockaddr *sa, int salen, void *arg)
{
	struct event_base *base = arg;
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	(void)l, (void)sa, (void)salen;
	if (!c || !(c->bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE))) {
		free(c);
		evutil_closesocket(fd);
		return;
	}
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
	bufferevent_set_max_single_read(c->bev, READ_SIZE);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
	(void)sig, (void)what;
	event_base_loopbreak(arg);
}

#define USAGE "event_echo --port P [--host H] [--mode echo|sink|http]"
#define OPTIONS PEER_OPTIONS

int main(int argc, char **argv)
{
	struct bench_server_args a = { .host = "127.0.0.1", .port_num = -1 };
	struct event_base *base;
	struct evconnlistener *l;
	struct event *sigint, *sigterm;
	int lfd;

	bench_server_parse(argc, argv, USAGE, OPTIONS, BENCH_SERVER_NEED_PORT, &a);
	mode = a.mode;
	signal(SIGPIPE, SIG_IGN);
	lfd = peer_listen(a.host, a.port, BACKLOG);
	base = event_base_new();
	if (lfd < 0 || !base)
		return 1;
	l = evconnlistener_new(base, on_accept, base, LEV_OPT_CLOSE_ON_FREE, -1, lfd);
	sigint = evsignal_new(base, SIGINT, on_signal, base);
	sigterm = evsignal_new(base, SIGTERM, on_signal, base);
	if (!l || !sigint || !sigterm || evsignal_add(sigint, NULL) < 0 ||
	    evsignal_add(sigterm, NULL) < 0)
		return 1;
	printf("Serving on %s:%d\n", a.host, peer_bound_port(lfd));
	fflush(stdout);
	event_base_dispatch(base);
	evconnlistener_free(l);
	event_free(sigint);
	event_free(sigterm);
	event_base_free(base);
	return 0;
}
