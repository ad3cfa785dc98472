/* SPDX-License-Identifier: MIT */
/* engine/loop.h: the loop object and the io_uring backend's internals, for
 * engine/ only. The stream layer sees engine/internal.h and engine/io.h,
 * which say nothing of io_uring: a loop runs either on io_uring or, where
 * io_uring is refused, on epoll (engine/epoll.c), under the same
 * operations and the same completion contract.
 */
#ifndef RILL_ENGINE_LOOP_H
#define RILL_ENGINE_LOOP_H

#include <liburing.h>

#include "engine/internal.h"
#include "engine/io.h"

/* ---- provided buffers ---------------------------------------------- */

struct rill__bufring {
	struct io_uring_buf_ring *br;
	char *mem;
	unsigned count, size, mask;
	unsigned pending;	/* recycled since the last advance */
	unsigned head;		/* next slot the kernel takes (non-inc) */
	uint16_t bgid;
	bool inc;		/* IOU_PBUF_RING_INC: buffers consumed in parts */
	uint32_t *offset;	/* with inc: bytes of each buffer consumed */
};

/* Returns the bytes of buffer bid, at its current offset (inc mode). */
static inline char *rill__buf_addr(struct rill__bufring *r, unsigned bid)
{
	return r->mem + (size_t)bid * r->size + (r->inc ? r->offset[bid] : 0);
}

int rill__bufring_init(rill_loop *loop, struct rill__bufring *r,
		       unsigned count, unsigned size, uint16_t bgid, bool inc);
void rill__bufring_exit(rill_loop *loop, struct rill__bufring *r);
/* Hands buffer bid back to the kernel (made visible at the next flush). */
void rill__bufring_recycle(struct rill__bufring *r, unsigned bid);
void rill__bufring_flush(struct rill__bufring *r);

/* Consumes the data of one recv CQE that used the ring: calls fn for each
 * piece of received bytes (several with bundles) and recycles buffers that
 * are used up. Returns the number of bytes. */
typedef void (*rill__data_fn)(void *ctx, const char *p, size_t n);
void rill__bufring_take(struct rill__bufring *r, int res, unsigned flags,
			rill__data_fn fn, void *ctx);

/* ---- the epoll backend (engine/epoll.c) ---------------------------- */

/* What the loop waits for on one fd, indexed by fd: whose readiness it is
 * (a recv or an acceptor for EPOLLIN, a send or a connect for EPOLLOUT). */
struct rill__epfd {
	struct rill__recv *recv;
	struct rill__acceptor *acc;
	struct rill__send *send;
	struct rill__wait *out;		/* a task waiting for EPOLLOUT */
	struct rill__wait *in;		/* a task waiting for EPOLLIN */
	uint32_t mask;			/* events registered with the kernel */
};

struct rill__epoll {
	int fd;				/* the epoll instance; -1: io_uring loop */
	struct rill__epfd *fds;
	size_t nfds;
	struct rill__list submit;	/* sends to try at the submit point */
	struct rill__list done;		/* sends completed, to dispatch */
	char *buf;			/* recv buffer, copied out at once */
	size_t buf_size;
};

/* Whether the loop may wait for I/O now (nothing runnable, something
 * that can still wake it). */
bool rill__loop_may_block(const rill_loop *loop);
/* Runs the callbacks other threads queued (the eventfd was written). */
void rill__loop_ts_run(rill_loop *loop);

int rill__ep_init(rill_loop *loop);
void rill__ep_exit(rill_loop *loop);
/* Adds the loop's eventfd to the epoll set (rill__loop_ts_run on it). */
void rill__ep_wake_add(rill_loop *loop);
/* The epoll loop's poll_io: sends, then readiness, then completions. */
void rill__ep_poll(rill_loop *loop, bool block);
/* recv.c and accept.c hand these over on an epoll loop. */
void rill__ep_recv_start(struct rill__recv *r);
/* r->rearm's function on epoll: the stopped recv settles (on_idle). */
void rill__ep_recv_settle(struct rill__deferred *d);
void rill__ep_acceptor_init(struct rill__acceptor *a);
void rill__ep_recv_stop(struct rill__recv *r);
void rill__ep_acceptor_start(struct rill__acceptor *a);
void rill__ep_acceptor_stop(struct rill__acceptor *a);
/* Drops a's fd from the epoll set and the fd table, before it is closed. */
void rill__ep_acceptor_forget(struct rill__acceptor *a);
void rill__ep_send_start(struct rill__send *s);
void rill__ep_send_cancel(struct rill__send *s);
/* Task: parked until fd is readable, or writable with out (epoll's side
 * of rill__wait_readable / rill__wait_writable). */
int rill__ep_wait_fd(rill_loop *loop, int fd, bool out);
int rill__ep_connect(rill_loop *loop, int fd, const struct sockaddr *addr,
		     socklen_t len);

/* ---- the loop ------------------------------------------------------ */

struct rill__callback {
	rill_callback fn;
	void *arg;
};

struct rill__cbqueue {
	struct rill__callback *v;
	size_t len, cap;
};

struct rill_loop {
	struct io_uring ring;
	int backend;			/* enum rill_backend: IO_URING or EPOLL */
	struct rill__epoll ep;		/* the epoll backend's state */
	pthread_t thread;
	unsigned features;		/* in use: probed & ~disabled */
	size_t stack_size;
	bool running, stopping, freeing;
	const rill_task *until;		/* task rill_task_join() runs the loop for */

	/* tasks */
	rill_task *current;
	void *main_sp;			/* the loop's own stack while a task runs */
	void *asan_main_fake;
	const void *asan_main_bottom;
	size_t asan_main_size;
	struct rill__list ready;
	struct rill__list tasks;	/* all live tasks */
	/* Ended tasks whose handle is still the caller's (not joined nor
	 * detached): rill_loop_free() cuts them loose, so that a join after
	 * the loop is gone frees the handle without touching the loop. */
	struct rill__list finished;
	/* Acceptors stopped whose accept has not let go yet: a server freed
	 * outside a task leaves them for rill_loop_free() to settle, which
	 * closes the listening socket and frees the server. */
	unsigned settling;
	unsigned fork_gen;	/* rill__fork_generation when it was made */
	size_t ntasks;
	struct rill__stack *stack_pool;
	size_t stack_pool_len;

	/* timers: a binary min-heap ordered by (when, seq) */
	struct rill__timer **heap;
	size_t heap_len, heap_cap;

	uint64_t ops_in_flight;

	/* callbacks */
	struct rill__cbqueue soon;
	pthread_mutex_t ts_lock;
	struct rill__cbqueue ts_queue;	/* from other threads */
	atomic_int ts_signalled;
	int wake_fd;			/* eventfd */
	uint64_t wake_buf;
	struct rill__op wake_op;
	bool wake_armed;

	struct rill__list deferred;
	/* Threads (name resolution) that will call back into this loop:
	 * rill_loop_free() waits for them. */
	atomic_int foreign;

	/* Handed-back task and connection structs, freed RILL__GRAVES
	 * burials later: a handle used again soon after join, detach or
	 * free still points at memory of ours, marked dead, and the misuse
	 * is named instead of corrupting the heap. */
#define RILL__GRAVES 64
	void *graves[RILL__GRAVES];
	unsigned grave_next;

	/* provided buffers for recv */
	struct rill__bufring bufs;
	bool has_bufs;

	rill_loop_stats stats;

	/* signals this loop handles (engine/signal.c); NULL until the first */
	struct rill__sigloop *sig;
	uint64_t timer_seq;		/* the next rill__timer.seq */
};


/* The backend for a new loop whose options ask for want (an enum
 * rill_backend): RILL_BACKEND_IO_URING or _EPOLL, or a rill error code
 * (io_uring required but refused) with the detail set. */
int rill__backend_choose(int want);
/* Names the cause of a failed io_uring_setup (err < 0) for the caller. */
int rill__uring_setup_error(int err);
/* A loop's io_uring_setup failed with ENOMEM (want: its backend option).
 * RILL_BACKEND_EPOLL where RLIMIT_MEMLOCK binds and io_uring is not
 * required (said once through the log hook, naming RLIMIT_MEMLOCK), else
 * -ENOMEM with the detail set. */
int rill__uring_nomem(int want);

/* The loop runs on epoll: a well-predicted branch where the two differ. */
static inline bool rill__epoll(const rill_loop *loop)
{
	return rill__unlikely(loop->backend == RILL_BACKEND_EPOLL);
}

/* Whether loop was made in a parent of this process (engine/fork.c). */
static inline bool rill__loop_forked(const rill_loop *loop)
{
	return rill__unlikely(loop->fork_gen !=
		atomic_load_explicit(&rill__fork_generation, memory_order_relaxed));
}
/* Aborts, naming the misuse: a child of fork() made in a task went back
 * into its parent's loop (the task returned or waited). */
_Noreturn void rill__forked_misuse(void);

/* ---- io_uring operations ------------------------------------------- */

/* Submits op's SQE (already prepared, user_data set to op) and parks until
 * its final CQE. On cancellation or deadline the operation is cancelled in
 * the kernel and both CQEs are awaited before returning. Returns the CQE's
 * res (a result that raced the cancellation is kept: bytes are never
 * lost), or -ECANCELED / -ETIMEDOUT. *flagsp gets the CQE flags if
 * non-NULL. The sqe must come from rill__sqe() on the current loop. */
int rill__op_wait(struct io_uring_sqe *sqe, unsigned *flagsp);

/* Gets an SQE for the loop, flushing the SQ to the kernel if it is full.
 * Never returns NULL. The caller must fill it in before yielding. */
struct io_uring_sqe *rill__sqe(rill_loop *loop);

/* Submits a cancel for the op whose user_data is target. The cancel's own
 * CQE goes to done (may be NULL: then it is ignored). */
void rill__op_cancel(rill_loop *loop, struct rill__op *target,
		     struct rill__op *done);

#endif
