/* SPDX-License-Identifier: MIT */
/*
 * uring_echo: the io_uring server a competent C programmer writes with
 * liburing and no framework: the limit rill's io_uring engine is measured
 * against.
 *
 * One thread, one ring (SINGLE_ISSUER + DEFER_TASKRUN where the kernel has
 * them, COOP_TASKRUN otherwise, plain at worst), one multishot accept, one
 * multishot recv per connection into a ring of provided buffers. Echo sends
 * the provided buffer itself back and returns it to the ring when the send
 * completes: no copy, no allocation per message. Sends of one connection
 * go one at a time, in order; buffers that arrive meanwhile wait in the
 * connection's queue. Sink returns the buffer at once.
 *
 * Usage: uring_echo --port P [--host H] [--mode echo|sink|http]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <liburing.h>

#include "../bench.h"
#include "peer.h"

/* liburing 2.3's headers have these; older ones may not. Whether the kernel
 * takes them is probed at run time (ring_init). */
#ifndef IORING_SETUP_COOP_TASKRUN
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_RECV_MULTISHOT
#define IORING_RECV_MULTISHOT (1U << 1)
#endif

#define BACKLOG 1024
#define SQ_ENTRIES 4096
/* 64 KiB: the read size of every other peer. Pages of a buffer are touched
 * only as far as data lands in them. */
#define BUF_SIZE (64 * 1024)
#define BUF_COUNT 1024		/* a power of two */
#define BGID 0

enum op { OP_ACCEPT, OP_RECV, OP_SEND, OP_SIGNAL };

/* A buffer (or, in http mode, malloc'd replies) waiting to be sent. */
struct pending {
	char *data;
	unsigned len;
	int bid;		/* -1: data is malloc'd */
};

struct conn {
	int fd;
	int crlf;		/* http: bytes of "\r\n\r\n" matched so far */
	unsigned char recv_armed, sending, closing, starved;
	unsigned off;		/* bytes of q[head] already sent */
	unsigned head, count, cap;
	struct pending *q;	/* FIFO of cap entries, grown by doubling */
	struct conn *next_starved;
};

static enum bench_mode mode = BENCH_MODE_ECHO;
static struct io_uring ring;
static struct io_uring_buf_ring *br;
static char *bufs;
static struct conn *starved;	/* recv stopped by -ENOBUFS, re-armed on a return */
static int lfd, sfd, stop;
static struct signalfd_siginfo siginfo;

static inline uint64_t tag(void *p, enum op op)
{
	return (uint64_t)(uintptr_t)p | op;
}

static struct io_uring_sqe *sqe_get(void)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&ring);

	if (!sqe) {
		io_uring_submit(&ring);
		sqe = io_uring_get_sqe(&ring);
	}
	return sqe;	/* not NULL right after a submit */
}

static unsigned returned;	/* buffers given back since the last re-arm */

static void buf_return(int bid)
{
	returned++;
	io_uring_buf_ring_add(br, bufs + (size_t)bid * BUF_SIZE, BUF_SIZE, bid,
			      io_uring_buf_ring_mask(BUF_COUNT), 0);
	io_uring_buf_ring_advance(br, 1);
}

static void arm_recv(struct conn *c)
{
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_recv(sqe, c->fd, NULL, 0, 0);
	sqe->ioprio |= IORING_RECV_MULTISHOT;
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = BGID;
	io_uring_sqe_set_data64(sqe, tag(c, OP_RECV));
	c->recv_armed = 1;
}

static void arm_send(struct conn *c)
{
	struct pending *p = &c->q[c->head];
	struct io_uring_sqe *sqe = sqe_get();

	io_uring_prep_send(sqe, c->fd, p->data + c->off, p->len - c->off, 0);
	io_uring_sqe_set_data64(sqe, tag(c, OP_SEND));
	c->sending = 1;
}

static void conn_maybe_free(struct conn *c)
{
	if (c->recv_armed || c->sending || c->starved)
		return;
	for (unsigned i = 0; i < c->count; i++) {
		struct pending *p = &c->q[(c->head + i) & (c->cap - 1)];

		if (p->bid >= 0)
			buf_return(p->bid);
		else
			free(p->data);
	}
	close(c->fd);
	free(c->q);
	free(c);
}

/* Queues data for sending after what is queued; 0, or -1 without memory. */
static int conn_queue(struct conn *c, char *data, unsigned len, int bid)
{
	if (c->count == c->cap) {
		unsigned cap = c->cap ? c->cap * 2 : 8;
		struct pending *q = malloc(cap * sizeof(*q));

		if (!q)
			return -1;
		for (unsigned i = 0; i < c->count; i++)
			q[i] = c->q[(c->head + i) & (c->cap - 1)];
		free(c->q);
		c->q = q;
		c->cap = cap;
		c->head = 0;
	}
	c->q[(c->head + c->count++) & (c->cap - 1)] =
		(struct pending){ .data = data, .len = len, .bid = bid };
	if (!c->sending)
		arm_send(c);
	return 0;
}

static void conn_fail(struct conn *c)
{
	c->closing = 1;
	/* shutdown ends the multishot recv and any send in flight with an
	 * error or EOF: their CQEs come back, and the last one frees c. */
	shutdown(c->fd, SHUT_RDWR);
	conn_maybe_free(c);
}

static void on_recv(struct conn *c, struct io_uring_cqe *cqe)
{
	int res = cqe->res;
	int bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;

	if (!(cqe->flags & IORING_CQE_F_MORE))
		c->recv_armed = 0;
	if (res == -ENOBUFS && !c->closing) {
		/* The ring ran dry: armed again when a buffer comes back. */
		c->starved = 1;
		c->next_starved = starved;
		starved = c;
		return;
	}
	if (res <= 0) {
		conn_fail(c);
		return;
	}
	if (c->closing) {
		buf_return(bid);
		conn_maybe_free(c);
		return;
	}
	if (mode == BENCH_MODE_SINK) {
		buf_return(bid);
	} else if (mode == BENCH_MODE_ECHO) {
		if (conn_queue(c, bufs + (size_t)bid * BUF_SIZE, res, bid) < 0) {
			buf_return(bid);
			conn_fail(c);
			return;
		}
	} else {
		size_t n = peer_http_count(&c->crlf, bufs + (size_t)bid * BUF_SIZE, res), len;
		const char *r = n ? peer_http_replies(n, &len) : NULL;
		char *copy = r ? malloc(len) : NULL;

		buf_return(bid);
		if (n && (!copy || conn_queue(c, memcpy(copy, r, len), len, -1) < 0)) {
			free(copy);
			conn_fail(c);
			return;
		}
	}
	if (!c->recv_armed)
		arm_recv(c);
}

static void on_send(struct conn *c, int res)
{
	struct pending *p = &c->q[c->head];

	c->sending = 0;
	if (res <= 0 || c->closing) {
		conn_fail(c);
		return;
	}
	c->off += res;
	if (c->off < p->len) {
		arm_send(c);	/* a short send: the rest, before anything else */
		return;
	}
	if (p->bid >= 0)
		buf_return(p->bid);
	else
		free(p->data);
	c->off = 0;
	c->head = (c->head + 1) & (c->cap - 1);
	if (--c->count)
		arm_send(c);
}

static void on_accept(struct io_uring_cqe *cqe)
{
	struct conn *c;
	int one = 1;

	if (!(cqe->flags & IORING_CQE_F_MORE)) {
		/* The multishot accept ended (EMFILE and the like): again. */
		struct io_uring_sqe *sqe = sqe_get();

		io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
		io_uring_sqe_set_data64(sqe, tag(NULL, OP_ACCEPT));
	}
	if (cqe->res < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(cqe->res);
		return;
	}
	c->fd = cqe->res;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	arm_recv(c);
}

static void rearm_starved(void)
{
	while (starved) {
		struct conn *c = starved;

		starved = c->next_starved;
		c->starved = 0;
		if (c->closing)
			conn_maybe_free(c);
		else
			arm_recv(c);
	}
}

static void dispatch(struct io_uring_cqe *cqe)
{
	uint64_t ud = io_uring_cqe_get_data64(cqe);
	struct conn *c = (struct conn *)(uintptr_t)(ud & ~(uint64_t)7);

	switch ((enum op)(ud & 7)) {
	case OP_ACCEPT:
		on_accept(cqe);
		break;
	case OP_RECV:
		on_recv(c, cqe);
		break;
	case OP_SEND:
		on_send(c, cqe->res);
		break;
	case OP_SIGNAL:
		stop = 1;
		break;
	}
}

static void serve(void)
{
	while (!stop) {
		struct io_uring_cqe *cqe;
		unsigned head, seen = 0;
		int ret = io_uring_submit_and_wait(&ring, 1);

		if (ret < 0 && ret != -EINTR && ret != -EBUSY) {
			fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-ret));
			return;
		}
		io_uring_for_each_cqe(&ring, head, cqe) {
			dispatch(cqe);
			seen++;
		}
		io_uring_cq_advance(&ring, seen);
		if (starved && returned)
			rearm_starved();
		returned = 0;
	}
}

/* The fastest setup the kernel takes: each flag was added in a later
 * kernel, and an older one refuses an unknown flag with -EINVAL. */
static int ring_init(void)
{
	static const unsigned tries[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN,
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	int ret = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p = { .flags = tries[i] };

		ret = io_uring_queue_init_params(SQ_ENTRIES, &ring, &p);
		if (ret != -EINVAL)
			break;
	}
	return ret;
}

static int buffers_init(void)
{
	struct io_uring_buf_reg reg = { .ring_entries = BUF_COUNT, .bgid = BGID };
	size_t ring_size = BUF_COUNT * sizeof(struct io_uring_buf);
	int ret;

	br = mmap(NULL, ring_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	bufs = mmap(NULL, (size_t)BUF_COUNT * BUF_SIZE, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (br == MAP_FAILED || bufs == MAP_FAILED)
		return -ENOMEM;
	reg.ring_addr = (uintptr_t)br;
	ret = io_uring_register_buf_ring(&ring, &reg, 0);
	if (ret < 0)
		return ret;
	io_uring_buf_ring_init(br);
	for (int i = 0; i < BUF_COUNT; i++)
		io_uring_buf_ring_add(br, bufs + (size_t)i * BUF_SIZE, BUF_SIZE, i,
				      io_uring_buf_ring_mask(BUF_COUNT), i);
	io_uring_buf_ring_advance(br, BUF_COUNT);
	return 0;
}

#define USAGE "uring_echo --port P [--host H] [--mode echo|sink|http]"
#define OPTIONS PEER_OPTIONS

int main(int argc, char **argv)
{
	struct bench_server_args a = { .host = "127.0.0.1", .port_num = -1 };
	struct io_uring_sqe *sqe;
	int ret;

	bench_server_parse(argc, argv, USAGE, OPTIONS, BENCH_SERVER_NEED_PORT, &a);
	mode = a.mode;
	sfd = peer_signal_fd();
	lfd = peer_listen(a.host, a.port, BACKLOG);
	if (sfd < 0 || lfd < 0)
		return 1;
	if ((ret = ring_init()) < 0 || (ret = buffers_init()) < 0) {
		fprintf(stderr, "uring_echo: io_uring: %s\n", strerror(-ret));
		return 1;
	}
	sqe = sqe_get();
	io_uring_prep_multishot_accept(sqe, lfd, NULL, NULL, SOCK_CLOEXEC);
	io_uring_sqe_set_data64(sqe, tag(NULL, OP_ACCEPT));
	sqe = sqe_get();
	io_uring_prep_read(sqe, sfd, &siginfo, sizeof(siginfo), 0);
	io_uring_sqe_set_data64(sqe, tag(NULL, OP_SIGNAL));
	printf("Serving on %s:%d\n", a.host, peer_bound_port(lfd));
	fflush(stdout);
	serve();
	io_uring_queue_exit(&ring);
	close(lfd);
	close(sfd);
	return 0;
}
