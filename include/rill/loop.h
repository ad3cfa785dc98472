/* SPDX-License-Identifier: MIT */
/* rill/loop.h: the event loop, one io_uring (or, where io_uring is refused,
 * one epoll instance) per loop, one loop per thread.
 *
 * A loop is created, run and freed on one thread. Every rill object created
 * on a loop (tasks, readers, writers, servers) belongs to it and may only be
 * used from that thread; rill_loop_call_soon_threadsafe() is the one entry
 * point that other threads may call.
 */
#ifndef RILL_LOOP_H
#define RILL_LOOP_H

#include <stdbool.h>

#include "rill/common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_loop rill_loop;

/* Optional kernel features. The loop probes each at start and uses it where
 * the kernel has it; each can be switched off (rill_loop_options.disable or
 * the environment variable RILL_DISABLE, a comma-separated list of the names
 * rill_feature_name() returns, or "all") to run the fallback path. */
enum rill_feature {
	RILL_FEAT_MULTISHOT_ACCEPT = 1u << 0, /* "multishot_accept" */
	RILL_FEAT_MULTISHOT_RECV = 1u << 1,   /* "multishot_recv" */
	RILL_FEAT_BUF_RING = 1u << 2,	      /* "buf_ring": provided buffers */
	RILL_FEAT_BUNDLE = 1u << 3,	      /* "bundle": recv bundles */
	RILL_FEAT_BUF_INC = 1u << 4,	      /* "buf_inc": incremental buffers */
	RILL_FEAT_SEND_ZC = 1u << 5,	      /* "send_zc": zero-copy send */
	RILL_FEAT_DEFER_TASKRUN = 1u << 6,    /* "defer_taskrun" (+single issuer) */
	RILL_FEAT_COOP_TASKRUN = 1u << 7,     /* "coop_taskrun" */
	RILL_FEAT_RING_FD = 1u << 8,	      /* "ring_fd": registered ring fd */
	RILL_FEAT_EXT_ARG = 1u << 9,	      /* "ext_arg": timeout in one enter */
};
#define RILL_FEAT_ALL 0x3ffu
/* RILL_DISABLE=multishot switches off both multishot features. */
#define RILL_FEAT_MULTISHOT (RILL_FEAT_MULTISHOT_ACCEPT | RILL_FEAT_MULTISHOT_RECV)

typedef struct rill_loop_options {
	size_t size;		/* set by RILL_LOOP_OPTIONS_INIT (rill/common.h) */
	unsigned sq_entries;	/* submission queue size; 0: 256 */
	unsigned cq_entries;	/* completion queue size; 0: 8 x sq_entries;
				 * below sq_entries: -EINVAL */
	unsigned buf_count;	/* provided buffers, a power of two; 0: 512 */
	unsigned buf_size;	/* bytes per provided buffer; 0: 16 KiB */
	unsigned disable;	/* RILL_FEAT_* bits never to use */
	size_t stack_size;	/* task stack bytes, 16 KiB to 1 GiB; 0: 256 KiB */
	/* rill_loop_new() installs a process-wide SIGSEGV handler, on an
	 * alternate signal stack per loop thread, that names a task stack
	 * overflow before the process dies (other faults go on to the handler
	 * installed before it, or the default). true: leave signal handling
	 * alone, for programs that own their handlers. */
	bool no_signal_handler;
	/* Which backend runs the loop (enum rill_backend). RILL_BACKEND_AUTO:
	 * io_uring, else epoll where io_uring is refused (see
	 * rill_loop_backend()); RILL_BACKEND_IO_URING: io_uring or an error,
	 * never epoll; RILL_BACKEND_EPOLL: epoll. The environment variable
	 * RILL_BACKEND=io_uring|epoll overrides AUTO. */
	int backend;
} rill_loop_options;

/* The loop's kernel interface. */
enum rill_backend {
	RILL_BACKEND_AUTO = 0,		/* options: choose (io_uring first) */
	RILL_BACKEND_IO_URING = 1,	/* io_uring: completions */
	RILL_BACKEND_EPOLL = 2,		/* epoll: readiness, non-blocking sockets */
};

#define RILL_LOOP_OPTIONS_INIT RILL__INIT(rill_loop_options)
#ifndef __cplusplus
#define RILL_LOOP_OPTIONS(...) RILL__TEMP(rill_loop_options, __VA_ARGS__)
#endif

/* Creates a loop for the calling thread. opts may be NULL for defaults; it
 * is read during the call only. On success stores the loop in *loopp and
 * returns 0; the caller owns it and frees it with rill_loop_free() on this
 * thread. Fails with -EINVAL for bad options, -E2BIG (see rill/common.h),
 * -ENOMEM, or one of the RILL_EURING_* codes when io_uring cannot be used
 * here; then rill_error_detail() names the cause and the fix.
 *
 * fork(): a loop belongs to the process that made it. A child of fork()
 * shares its parent's ring or epoll instance and sockets, so every call on
 * an inherited loop there (run, spawn, join from outside a task, starting
 * a server or a connection on it, the server calls) is refused with
 * RILL_EFORKED and a detail naming fork; the void server calls say so
 * through the log hook. rill_loop_free() on it in the child closes only
 * the child's copies of the loop's fds (no cancel, no epoll_ctl) and
 * returns 0; its memory goes with the child's exit or exec. A child
 * forked inside a task is in no task: it may make and run loops of its
 * own, and must end with _exit() or exec rather than return from that
 * task (rill aborts it, naming the misuse, if it does). Only fork() is
 * seen (pthread_atfork), not a raw clone(). */
RILL_API int rill_loop_new(const rill_loop_options *opts, rill_loop **loopp);

/* Frees the loop. Tasks still alive are cancelled and run until they end,
 * so every completion lands before memory goes away. Returns 0 (also for
 * NULL), -EBUSY from inside a task or callback of the loop (it would free
 * the stack it runs on), -EPERM from another thread; then nothing is
 * freed. */
RILL_API int rill_loop_free(rill_loop *loop);

/* Runs the loop until rill_loop_stop() or until nothing is left that could
 * make progress (no task, no operation in flight, no timer). Returns 0, or
 * -EINVAL for NULL, -EBUSY when the loop is already running, -EPERM from
 * another thread. */
RILL_API int rill_loop_run(rill_loop *loop);

/* Makes rill_loop_run() return after the current iteration. Called before
 * rill_loop_run(), that run makes one iteration, which does not wait for
 * I/O, and returns (asyncio's stop() before run_forever()). Loop thread
 * only; NULL is ignored. */
RILL_API void rill_loop_stop(rill_loop *loop);

/* The loop running on this thread (or the last one created on it); NULL if
 * none. */
RILL_API rill_loop *rill_loop_current(void);

typedef void (*rill_callback)(void *arg);

/* Runs fn(arg) on the loop's thread at its next iteration, outside any task
 * (fn must not block; it may spawn tasks). Safe from any thread, tasks and
 * callbacks of other loops included; not from a signal handler: it takes
 * a lock and may allocate, so it is not async-signal-safe (to act on a
 * signal, see rill_loop_add_signal_handler()). Callbacks run in the order
 * queued. Returns 0, -EINVAL (NULL loop or fn), -ENOMEM, or -errno when
 * waking the loop failed (the callback stays queued and runs when the
 * loop next wakes). */
RILL_API int rill_loop_call_soon_threadsafe(rill_loop *loop, rill_callback fn,
					    void *arg);

/* As above, from the loop's own thread; cheaper (no wake-up). */
RILL_API int rill_loop_call_soon(rill_loop *loop, rill_callback fn, void *arg);

/* The features this loop uses: probed, minus the disabled ones (0 for
 * NULL). */
RILL_API unsigned rill_loop_features(const rill_loop *loop);

/* The backend the loop runs on: RILL_BACKEND_IO_URING or
 * RILL_BACKEND_EPOLL (RILL_BACKEND_AUTO for NULL). */
RILL_API int rill_loop_backend(const rill_loop *loop);

/* The features the running kernel has (probed once per process). */
RILL_API unsigned rill_features_probe(void);

/* Name of one RILL_FEAT_* bit ("multishot_recv"), or NULL. */
RILL_API const char *rill_feature_name(unsigned feature);

typedef struct rill_loop_stats {
	size_t size;		/* set by RILL_LOOP_STATS_INIT */
	uint64_t iterations;	/* loop iterations */
	uint64_t enters;	/* io_uring_enter (epoll: epoll_wait) calls */
	uint64_t sqes;		/* submission entries queued */
	uint64_t cqes;		/* completion entries handled */
	uint64_t cq_overflows;	/* times the CQ overflowed (nothing lost) */
	uint64_t enobufs;	/* recvs that found the buffer ring empty */
	uint64_t rearms;	/* multishot operations re-armed */
	uint64_t tasks_spawned;
	uint64_t switches;	/* task context switches */
} rill_loop_stats;

#define RILL_LOOP_STATS_INIT RILL__INIT(rill_loop_stats)

/* Copies the loop's counters into *stats, as many as stats->size holds
 * (start from RILL_LOOP_STATS_INIT). Returns 0, or -EINVAL for a NULL
 * argument or a size of 0 or above 4096 (an unset size). */
RILL_API int rill_loop_get_stats(const rill_loop *loop, rill_loop_stats *stats);

/* Monotonic clock, in nanoseconds. */
RILL_API rill_time rill_now(void);

/* ---- timers -------------------------------------------------------- */

/* A scheduled callback, as asyncio's TimerHandle. */
typedef struct rill_timer_handle rill_timer_handle;

/* Schedules fn(arg) to run on the loop's thread once rill_now() reaches
 * when (call_at), or delay_ns from now (call_later); a time already past
 * runs it at the loop's next timer step. Callbacks with equal times run
 * in the order scheduled. fn runs from the loop, outside any task: it
 * must not wait, and may call everything that does not (spawn tasks, set
 * events, schedule or cancel timers, free its own handle). A pending
 * timer keeps rill_loop_run() running. arg is borrowed until fn has run
 * or the timer is cancelled.
 *
 * With hp NULL rill frees the timer once it has fired or the loop is
 * freed. With hp non-NULL *hp gets a handle the caller owns: it stays
 * valid after the timer fired, was cancelled, or its loop was freed,
 * until rill_timer_handle_free(). Loop thread only. Returns 0, -EINVAL
 * (NULL loop or fn), -EPERM (another thread), -ENOMEM, or RILL_ECLOSED
 * while the loop is being freed; then fn is never called. */
RILL_API int rill_loop_call_at(rill_loop *loop, rill_time when,
			       rill_callback fn, void *arg,
			       rill_timer_handle **hp);
RILL_API int rill_loop_call_later(rill_loop *loop, rill_time delay_ns,
				  rill_callback fn, void *arg,
				  rill_timer_handle **hp);

/* Cancels the timer: its callback will not run. Returns 1 if it was
 * pending, 0 if it had already run or been cancelled, -EINVAL for NULL.
 * Afterwards rill_timer_handle_cancelled() is true, as in asyncio even
 * for a timer that had run. */
RILL_API int rill_timer_handle_cancel(rill_timer_handle *h);
/* Whether the timer was cancelled (or its loop freed before it ran); true
 * for NULL. */
RILL_API bool rill_timer_handle_cancelled(const rill_timer_handle *h);
/* The rill_now() time the timer was scheduled for (RILL_TIME_NEVER for
 * NULL). */
RILL_API rill_time rill_timer_handle_when(const rill_timer_handle *h);
/* Frees the handle, cancelling the timer if it is pending. NULL is
 * ignored. The handle must not be used afterwards. */
RILL_API void rill_timer_handle_free(rill_timer_handle *h);

/* ---- signals ------------------------------------------------------- */

/* Unix signals delivered to a loop, as asyncio's loop.add_signal_handler().
 *
 * rill catches a signal with a handler of its own (sigaction, SA_RESTART)
 * that only records it and wakes the loop; the callback, or the task
 * waiting in rill_signal_wait(), then runs on the loop's thread, outside
 * signal context, so it may call any rill function a callback may. The
 * signal mask is left alone but for one thing: the signal is unblocked in
 * the loop's thread while rill holds it (and blocked again afterwards if
 * it was before), so it works whichever thread the kernel picks.
 *
 * One loop per signal: a signal is held by at most one loop of the
 * process, the first to take it, and runs only that loop's handler and
 * waiters; another loop's add or wait gets -EBUSY until the first gives it
 * back. Several deliveries of one signal before the loop gets to them may
 * run the handler once (as the kernel merges standard signals).
 *
 * Not taken (-EINVAL): SIGKILL, SIGSTOP, the fault signals (SIGSEGV,
 * SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS), 32 and 33 (the C library's),
 * numbers outside 1..SIGRTMAX.
 *
 * From a plain signal handler (one installed with sigaction()) no rill
 * call is safe, rill_loop_call_soon_threadsafe() included (it takes a
 * mutex and may allocate): let rill catch the signal instead. */

/* Calls fn(arg) on the loop's thread, from the loop, each time signo
 * arrives; replaces the loop's earlier handler for signo. arg is borrowed
 * until the handler is removed or replaced. While the loop has a handler
 * rill_loop_run() does not return for lack of work (as libuv's active
 * handles): remove it, or call rill_loop_stop(). Loop thread only. Returns
 * 0, -EINVAL (NULL loop or fn, or a signal rill cannot take; the detail
 * says which), -EBUSY (another loop holds signo), -EPERM (another
 * thread), -ENOMEM. */
RILL_API int rill_loop_add_signal_handler(rill_loop *loop, int signo,
					  rill_callback fn, void *arg);

/* Removes the loop's handler for signo. Once no handler and no waiting
 * task holds the signal, its action is the default one again (SIG_DFL,
 * as asyncio restores it) and the loop's thread blocks it again if it did
 * before. Returns 1 if a handler was removed, 0 if there was none, or
 * -EINVAL / -EPERM as above. Loop thread only. */
RILL_API int rill_loop_remove_signal_handler(rill_loop *loop, int signo);

/* Suspends the current task until one of the n signals in signos arrives
 * and returns its number. A signal of the set that the loop does not yet
 * hold is taken for the time of the wait only and given back (default
 * action) when it returns: to catch it between two waits as well, add a
 * handler for it, which then runs beside the waits. Every task waiting
 * for a signal wakes when it arrives. Returns the signal number, or
 * -ECANCELED / -ETIMEDOUT (cancelled, or the task's deadline), -EPERM
 * outside a task, -EINVAL (signos NULL, n 0, a signal rill cannot take),
 * -EBUSY (another loop holds one of them; nothing is taken), -ENOMEM.
 * signos is read during the call only. */
RILL_API int rill_signal_wait(const int *signos, size_t n);

#ifdef __cplusplus
}
#endif

#endif
