/* SPDX-License-Identifier: MIT */
/* engine/io.h: the engine's socket operations, for streams: receive,
 * accept, send, connect and their cancellation. The same contract on both
 * backends (io_uring, epoll): a completion never runs inside the call that
 * started the operation, and a stopped operation says when it has let go
 * of its socket. */
#ifndef RILL_ENGINE_IO_H
#define RILL_ENGINE_IO_H

#include <sys/socket.h>
#include <sys/uio.h>

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
	/* Optional (may be NULL): while throttled, receive straight into the
	 * owner's memory instead of a ring buffer that is then copied. lend
	 * returns where, and how much (*n), or NULL for "use the ring"; the
	 * memory must stay put until landed(ctx, p, n) hands it back, with n
	 * bytes received there (0 after an error, EOF or a cancel, which
	 * on_end or on_idle then report as usual). */
	char *(*lend)(void *ctx, size_t *n);
	void (*landed)(void *ctx, char *p, size_t n);
	struct rill__deferred rearm;
	char *plain;		/* own buffer when the loop has no ring */
	char *lent;		/* the owner's memory a recv in flight fills */
	bool armed, want, ended;
	bool throttled;		/* one recv at a time, see rill__recv_throttle */
	uint8_t calm;		/* short throttled reads in a row */
	/* Not a socket (a pipe, FIFO, terminal or file): read(2) instead of
	 * recv(2), single-shot; set by the owner before the first start. */
	bool file;
	bool regular;		/* a regular file: epoll cannot wait on it */
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
/* The owner could not keep up (its buffer overflowed): receive once per
 * loop iteration instead of multishot (into lent memory where the owner
 * lends it), until short reads show the sender is no longer ahead. */
void rill__recv_throttle(struct rill__recv *r);
/* A throttled read took n bytes where a full one takes `small` or more:
 * enough short ones in a row end the throttle (backends call it). */
void rill__recv_sized(struct rill__recv *r, size_t n, size_t small);
/* Frees what init allocated. Only once !rill__recv_busy(r). */
void rill__recv_free(struct rill__recv *r);

/* New connections of one listening socket. */
struct rill__acceptor {
	struct rill__op op;
	rill_loop *loop;
	int fd;
	void *ctx;
	/* A new connection's fd (close-on-exec; blocking under io_uring,
	 * which never blocks on it, non-blocking under epoll; the callee owns
	 * it) or -errno. */
	void (*on_accept)(void *ctx, int fd_or_err);
	void (*on_idle)(void *ctx);
	struct rill__deferred settle;	/* epoll: on_idle after a stop */
	bool armed, want;
	bool settling;	/* stopped while armed: counted in loop->settling */
};

void rill__acceptor_init(struct rill__acceptor *a, rill_loop *loop, int fd,
			 void *ctx);
void rill__acceptor_start(struct rill__acceptor *a);
void rill__acceptor_stop(struct rill__acceptor *a);
/* Ends the count of a stop still to settle (a disarmed or restarted
 * acceptor); for the backends. */
void rill__acceptor_settled(struct rill__acceptor *a);
/* Stops a and closes its listening fd now, touching nothing this process
 * shares with others (no shutdown(): a pre-fork worker's close must not
 * stop its siblings' accepting). Returns true when the fd is closed (a->fd
 * is then -1); false where the kernel cannot cancel the accept at once
 * (before 6.0): a is stopped, and the owner closes the fd at on_idle. */
bool rill__acceptor_close(struct rill__acceptor *a);

/* One send of a socket at a time (two could reorder bytes). The owner
 * embeds it and keeps it, and the iovecs, until the completion. */
struct rill__send {
	struct rill__op op;	/* complete(op, bytes sent or -errno, 0) */
	rill_loop *loop;
	int fd;
	int res;		/* epoll: the result, while on the done queue */
	struct msghdr msg;
	struct rill__list link;	/* epoll: on the submit or done queue */
	bool waiting;		/* epoll: waits for EPOLLOUT */
	bool done;		/* epoll: on the done queue, res set */
	/* Not a socket: write(2) with RWF_NOSIGNAL instead of send(2) with
	 * MSG_NOSIGNAL; set by the owner before the first send. */
	bool file;
};

/* RWF_NOSIGNAL (recent kernels): a write to a pipe whose reader is gone fails
 * with EPIPE without raising SIGPIPE, through pwritev2 and io_uring. */
#ifndef RWF_NOSIGNAL
#define RWF_NOSIGNAL 0x00000100
#endif
/* Asks the kernel once per process whether it takes RWF_NOSIGNAL; where
 * it does not, SIGPIPE is ignored from then on if the program left it at
 * its default (as CPython does at startup), and writes go without it. */
void rill__nosignal_probe(void);
void rill__nosignal_refused(void);
extern bool rill__nosignal_off;

/* Sends iov[0..n) on fd with MSG_NOSIGNAL; op.complete() (filled in by
 * the caller) runs at the loop's next completion point, never inside this
 * call, with the bytes sent (maybe fewer than asked) or -errno. The
 * caller counts it in flight (rill__op_started/finished) if the loop must
 * run for it. */
void rill__send_start(rill_loop *loop, struct rill__send *s, int fd,
		      struct iovec *iov, size_t n);
/* Cancels the send in flight: it completes with -ECANCELED, or with its
 * result if that came first. */
void rill__send_cancel(struct rill__send *s);

/* Task: connects fd to addr, parked until it is done. Returns 0 or
 * -errno, -ECANCELED / -ETIMEDOUT when interrupted (as rill__park). */
int rill__connect(int fd, const struct sockaddr *addr, socklen_t len);

/* Task: parked until fd is readable (a pidfd: its process has exited).
 * Returns 0, or -ECANCELED / -ETIMEDOUT as rill__park, -EBUSY on epoll
 * when another task waits on the same fd, -EPERM outside a task. */
int rill__wait_readable(int fd);
int rill__wait_writable(int fd);

/* Task, io_uring only (-EOPNOTSUPP on epoll): one SPLICE of up to n bytes
 * from in (at off_in, or its position for -1) to out, which must be a pipe
 * if in is not. Returns the bytes moved (0: EOF of in) or -errno,
 * -ECANCELED / -ETIMEDOUT as rill__op_wait. */
int rill__splice(int in, int64_t off_in, int out, unsigned n);

#endif
