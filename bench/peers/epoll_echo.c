/* SPDX-License-Identifier: MIT */
/*
 * epoll_echo: the server a competent C programmer writes without a library,
 * used as the plain-epoll baseline beside rill's echo server.
 *
 * One thread, one epoll set, non-blocking sockets. Level-triggered, because
 * it measured faster: a read that stops on a short count is safe under LT
 * (epoll reports what is left), so a 64-byte echo costs epoll_wait + read +
 * write, where ET must read on until EAGAIN; on 50 connections x 64 bytes
 * the ET variant used about 10% more server CPU per message. LT also lets
 * EPOLLOUT be armed only while output is pending.
 *
 * Usage: epoll_echo --port P [--host H] [--mode echo|sink|http]
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
#include <unistd.h>

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
	int crlf;	/* bytes of "\r\n\r\n" matched so far (http), across reads */
	char *out;	/* unsent output (malloc'd), NULL when none is pending */
	size_t out_off;
	size_t out_len;
};

static enum bench_mode mode = BENCH_MODE_ECHO;
static int epfd = -1;

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

static void conn_close(struct conn *c)
{
	close(c->fd);	/* also removes it from the epoll set */
	free(c->out);
	free(c);
}

/*
 * Write len bytes, keeping whatever the socket did not take and switching
 * the connection to EPOLLOUT-only: no reads while output is pending, which is
 * the backpressure every peer applies. Returns 0, or -1 if c was closed.
 */
static int conn_send(struct conn *c, const char *data, size_t len)
{
	ssize_t n = write(c->fd, data, len);

	if (n < 0) {
		if (errno != EAGAIN) {
			conn_close(c);
			return -1;
		}
		n = 0;
	}
	if ((size_t)n == len)
		return 0;
	c->out_len = len - n;
	c->out_off = 0;
	c->out = malloc(c->out_len);
	if (!c->out) {
		conn_close(c);
		return -1;
	}
	memcpy(c->out, data + n, c->out_len);
	watch(c, EPOLL_CTL_MOD, EPOLLOUT);
	return 0;
}

/* EPOLLOUT: push pending output; once it is all gone, go back to reading. */
static void conn_flush(struct conn *c)
{
	while (c->out_off < c->out_len) {
		ssize_t n = write(c->fd, c->out + c->out_off,
				  c->out_len - c->out_off);
		if (n < 0) {
			if (errno != EAGAIN)
				conn_close(c);
			return;
		}
		c->out_off += n;
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
 * EPOLLIN: read until a short read (the socket is then empty; LT reports any
 * later data), pending output, EOF, or the per-event limit.
 */
static void conn_readable(struct conn *c)
{
	for (int i = 0; i < MAX_READS_PER_EVENT; i++) {
		ssize_t n = read(c->fd, rbuf, sizeof(rbuf));

		if (n < 0 && errno == EAGAIN)
			return;
		if (n <= 0) {	/* EOF, or ECONNRESET and friends */
			conn_close(c);
			return;
		}
		if (conn_consume(c, n) < 0 || c->out || n < READ_SIZE)
			return;
	}
}

static void conn_event(struct conn *c, uint32_t events)
{
	(void)events;	/* interest is EPOLLOUT xor EPOLLIN; errors show in the call */
	if (c->out)
		conn_flush(c);
	else
		conn_readable(c);
}

static void conn_open(int fd)
{
	struct conn *c = calloc(1, sizeof(*c));
	int one = 1;

	if (!c) {
		close(fd);
		return;
	}
	c->fd = fd;
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
		int n = epoll_wait(epfd, events, MAX_EVENTS, -1);

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
	}
}

#define USAGE "epoll_echo --port P [--host H] [--mode echo|sink|http]"
#define OPTIONS PEER_OPTIONS

int main(int argc, char **argv)
{
	struct bench_server_args a = { .host = "127.0.0.1", .port_num = -1 };
	int lfd, sfd;

	bench_server_parse(argc, argv, USAGE, OPTIONS, BENCH_SERVER_NEED_PORT, &a);
	mode = a.mode;
	sfd = peer_signal_fd();
	lfd = peer_listen(a.host, a.port, BACKLOG);
	epfd = epoll_create1(EPOLL_CLOEXEC);
	if (sfd < 0 || lfd < 0 || epfd < 0 || add_tagged(sfd, &signal_tag) < 0 ||
	    add_tagged(lfd, &listener_tag) < 0)
		return 1;
	printf("Serving on %s:%d\n", a.host, peer_bound_port(lfd));
	fflush(stdout);
	serve(lfd);
	close(lfd);
	close(epfd);
	close(sfd);
	return 0;
}
