/* SPDX-License-Identifier: MIT */
/* engine/io.h: the engine's long-lived socket operations, for streams. */
#ifndef RILL_ENGINE_IO_H
#define RILL_ENGINE_IO_H

#include "engine/internal.h"

/* Received bytes of one socket. The owner embeds it and must not free it
 * while rill__recv_busy(): after rill__recv_stop() the cancelled operation
 * still completes, and on_idle() says when it has. */
struct rill__recv {
	struct rill__op op;
	rill_loop *loop;
	int fd;
	void *ctx;
	/* Bytes in order; p is only valid during the call. */
	void (*on_data)(void *ctx, const char *p, size_t n);
	/* 0 at EOF, -errno on error; no on_data after it. */
	void (*on_end)(void *ctx, int err);
	/* The operation has settled after a stop or an end (may be NULL). */
	void (*on_idle)(void *ctx);
	struct rill__deferred rearm;
	char *plain;		/* own buffer when the loop has no ring */
	bool armed, want, ended;
	bool throttled;		/* one recv at a time, see rill__recv_throttle */
};

/* Sets r up for fd; the callbacks are filled in by the caller. Returns 0
 * or -ENOMEM. */
int rill__recv_init(struct rill__recv *r, rill_loop *loop, int fd, void *ctx);
/* Starts (or resumes) receiving. */
void rill__recv_start(struct rill__recv *r);
/* Stops receiving: cancels the operation in flight. Data it had already
 * taken from the socket is still delivered through on_data. */
void rill__recv_stop(struct rill__recv *r);
bool rill__recv_busy(const struct rill__recv *r);
/* The owner could not keep up (its buffer overflowed): receive one buffer
 * per loop iteration instead of multishot, until a short read shows the
 * sender is no longer ahead. */
void rill__recv_throttle(struct rill__recv *r);
/* Frees what init allocated. Only once !rill__recv_busy(r). */
void rill__recv_free(struct rill__recv *r);

/* New connections of one listening socket. */
struct rill__acceptor {
	struct rill__op op;
	rill_loop *loop;
	int fd;
	void *ctx;
	/* A new connection's fd (blocking: io_uring never blocks on it;
	 * close-on-exec; the callee owns
	 * it) or -errno. */
	void (*on_accept)(void *ctx, int fd_or_err);
	void (*on_idle)(void *ctx);
	bool armed, want;
};

void rill__acceptor_init(struct rill__acceptor *a, rill_loop *loop, int fd,
			 void *ctx);
void rill__acceptor_start(struct rill__acceptor *a);
void rill__acceptor_stop(struct rill__acceptor *a);

#endif
