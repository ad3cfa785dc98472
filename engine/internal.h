/* SPDX-License-Identifier: MIT */
/* engine/internal.h: what the engine shares with the layer above it.
 *
 * The stream layer talks to the engine through two things only:
 *  - operations (struct rill__op), started through engine/io.h: its
 *    complete() runs on the loop for every completion of that operation;
 *  - waits: a task parks on a struct rill__wait, or on an object's struct
 *    rill__waitq, and is woken by whoever owns the condition (or by its
 *    deadline, or by cancellation).
 * Neither says which backend (io_uring or epoll) runs the loop: that, and
 * the loop object itself, are engine/loop.h's, which streams never see.
 */
#ifndef RILL_ENGINE_INTERNAL_H
#define RILL_ENGINE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdbool.h>

#include "rill/error.h"
#include "rill/loop.h"
#include "rill/task.h"
#include "engine/compat.h"

/* Internal functions that rill-tls, a library of its own, calls: visible
 * in librill.so, but not part of the API. */
#define RILL_SPI __attribute__((visibility("default")))

#define rill__likely(x) __builtin_expect(!!(x), 1)
#define rill__unlikely(x) __builtin_expect(!!(x), 0)

#define rill__container_of(ptr, type, member) \
	((type *)((char *)(ptr) - offsetof(type, member)))

/* An intrusive doubly linked list, as in the kernel and libuv. */
struct rill__list {
	struct rill__list *next, *prev;
};

static inline void rill__list_init(struct rill__list *h)
{
	h->next = h->prev = h;
}

static inline bool rill__list_empty(const struct rill__list *h)
{
	return h->next == h;
}

static inline void rill__list_add_tail(struct rill__list *h, struct rill__list *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}

static inline void rill__list_del(struct rill__list *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->next = n->prev = n;
}

/* ---- operations ---------------------------------------------------- */

struct rill__op;
/* Runs on the loop thread, outside any task, for each completion of the
 * op (never inside the call that started it). flags are io_uring's CQE
 * flags (0 under epoll). The op may be freed by this call. */
typedef void (*rill__op_fn)(struct rill__op *op, int res, unsigned flags);

struct rill__op {
	rill__op_fn complete;
};

/* ---- tasks and waits ----------------------------------------------- */

struct rill__wait;
/* Called when a parked task must stop waiting early (reason is -ECANCELED
 * or -ETIMEDOUT). It must arrange for rill__wake() to be called, now or
 * once it is safe (a kernel operation must first complete). */
typedef void (*rill__interrupt_fn)(struct rill__wait *w, int reason);

struct rill__wait {
	rill_task *task;
	rill__interrupt_fn interrupt;
	rill_time until;	/* wake with 0 at this time; RILL_TIME_NEVER: no */
	int interrupted;	/* reason given to interrupt(), or 0 */
	struct rill__list link;	/* on a struct rill__waitq while parked */
};

/* Tasks waiting for a condition of an object (a drain, a close, a join, a
 * handshake). Whoever may have made the condition true wakes them, and
 * each checks it again, parking anew if it still does not hold. */
struct rill__waitq {
	struct rill__list waiters;	/* struct rill__wait, by link */
};

/* An entry of the loop's timer heap (engine/timer.c): a task's sleep or
 * deadline, or a callback timer (rill_loop_call_later). Entries fire in
 * the order of when, and of seq (the order they were started) for equal
 * whens, as asyncio runs call_later callbacks. */
struct rill__timer {
	rill_time when;
	uint64_t seq;
	size_t index;		/* in the heap, or SIZE_MAX */
	/* Loop thread, outside tasks: the time has come; the entry is out of
	 * the heap already and may be started again or freed. */
	void (*fire)(struct rill__timer *tm, rill_time now);
};

enum rill__task_state {
	RILL__TASK_NEW,
	RILL__TASK_READY,
	RILL__TASK_RUNNING,
	RILL__TASK_PARKED,
	RILL__TASK_DONE,
};

struct rill__stack {
	void *base;		/* mmap'd area, guard page included */
	char *lo;		/* lowest usable byte, above the guard page */
	size_t size;		/* usable bytes */
	struct rill__stack *next; /* pool link */
};

/* A handle's magic tells a live task from one already joined or detached
 * (kept in the loop's graveyard for a while, so that checking it reads
 * memory that is still the loop's). */
#define RILL__TASK_LIVE 0x7461736bu	/* "task" */
#define RILL__TASK_DEAD 0x64656164u	/* "dead" */

struct rill_task {
	void *sp;			/* saved stack pointer while switched out */
	rill_loop *loop;
	struct rill__stack *stack;
	rill_task_fn fn;
	void *arg;
	int result;
	enum rill__task_state state;
	uint32_t magic;			/* RILL__TASK_LIVE until handed back */
	bool detached;
	bool joining;			/* a task is in rill_task_join() on it */
	bool cancel_pending;		/* delivered at the next wait */
	bool in_group;			/* a rill_task_group owns the handle */
	int wake_res;			/* what park() returns */
	rill_time deadline;		/* RILL_TIME_NEVER: none */
	struct rill__wait *wait;	/* what it is parked on */
	struct rill__timer timer;	/* in the timer heap while it waits */
	struct rill__list ready_link;	/* ready queue */
	struct rill__list all_link;	/* every live task of the loop */
	struct rill__waitq joiners;	/* tasks joining it */
	void *asan_fake_stack;
	struct rill__list resources;	/* released when the task ends */
	struct rill__task_hook *hooks;	/* run when the task ends */
};

/* Called once when a task ends, on the ending task's stack, after its
 * result is set and its joiners are woken (engine/taskgroup.c, wait.c).
 * The hook is unlinked before done() runs, so done() may free it. A
 * singly linked list with a back pointer: zero from calloc, so spawning
 * costs nothing more, and a hook leaves in O(1). */
struct rill__task_hook {
	struct rill__task_hook *next, **pprev;
	void (*done)(struct rill__task_hook *h, rill_task *t);
};

/* Links h to t, which must not have ended. */
void rill__task_hook_add(rill_task *t, struct rill__task_hook *h);
/* Unlinks h; nothing if it is not linked (it has run, or never was). */
void rill__task_hook_del(struct rill__task_hook *h);

/* Something a task owns that must not outlive it (an unclosed writer):
 * release() runs on the task's stack when its body returns. */
struct rill__resource {
	struct rill__list link;
	void (*release)(struct rill__resource *res);
};

/* Ties res to the current task (no-op outside tasks); del unties it. */
void rill__resource_add(struct rill__resource *res);
void rill__resource_del(struct rill__resource *res);

/* Parks the current task on w until rill__wake(). Returns the value given
 * to rill__wake(), or -ECANCELED / -ETIMEDOUT when interrupted (after
 * w->interrupt has run). A cancellation already pending, or a deadline
 * already passed, returns at once without parking. */
RILL_SPI int rill__park(struct rill__wait *w);

/* Makes a parked task runnable; park() will return res. Loop thread only. */
RILL_SPI void rill__wake(rill_task *task, int res);

static inline void rill__waitq_init(struct rill__waitq *q)
{
	rill__list_init(&q->waiters);
}

/* Parks the current task on q until a wake-up (0), a cancellation or a
 * deadline (-ECANCELED / -ETIMEDOUT, as rill__park), or returns -EPERM
 * outside a task. On every return the task is off q again. */
RILL_SPI int rill__waitq_park(struct rill__waitq *q);
/* Wakes the longest waiting task of q; false if there was none. */
bool rill__waitq_wake_one(struct rill__waitq *q);
/* Wakes every task waiting on q. */
RILL_SPI void rill__waitq_wake_all(struct rill__waitq *q);

/* Counts an operation as in flight, so the loop keeps running for it. */
void rill__op_started(rill_loop *loop);
void rill__op_finished(rill_loop *loop);

/* The current task, or NULL on the loop's own stack. */
RILL_SPI rill_task *rill__current(void);

/* Runs t until it parks, yields or ends (loop.c's run queue; the loop's
 * own stack only). */
void rill__task_run(rill_loop *loop, rill_task *t);
/* t's wake time has come (timer.c): its deadline interrupts its wait with
 * -ETIMEDOUT, the end of a sleep wakes it with 0. */
void rill__task_timer_fired(rill_task *t, rill_time now);

/* ---- blocking calls on the thread pool ------------------------------ */

/* A call that blocks (getaddrinfo), run on a pool thread (engine/pool.c)
 * so that the loop never waits for it. The submitter owns the struct and
 * fills in the three functions. */
struct rill__work {
	void (*run)(struct rill__work *w);	/* on a pool thread */
	void (*done)(struct rill__work *w);	/* on the loop, after run */
	void (*drop)(struct rill__work *w);	/* frees abandoned work */
	rill_loop *loop;
	struct rill__list link;
	int state;			/* under the pool's lock */
};

/* Queues w for a pool thread; done(w) runs on loop's thread afterwards.
 * Returns 0, or -errno when no thread could be started. */
int rill__work_submit(rill_loop *loop, struct rill__work *w);
/* Loop thread: gives w up. done() will not run; drop(w) runs instead, now
 * if w had not started, else once its run() returns (on the pool thread:
 * drop must be safe there). The loop does not wait for it. */
void rill__work_abandon(struct rill__work *w);

/* ---- timers -------------------------------------------------------- */

void rill__timer_add(rill_loop *loop, rill_task *task, rill_time when);
void rill__timer_del(rill_loop *loop, rill_task *task);
/* Puts tm (fire set by the caller, index SIZE_MAX) in the heap to fire at
 * when; stop takes it out if it is in (no-op otherwise). */
void rill__timer_start(rill_loop *loop, struct rill__timer *tm, rill_time when);
void rill__timer_stop(rill_loop *loop, struct rill__timer *tm);
/* rill_loop_free(): cancels the callback timers still pending
 * (engine/call_later.c). */
void rill__call_later_drop(rill_loop *loop);
rill_time rill__timer_next(const rill_loop *loop);
void rill__timers_run(rill_loop *loop, rill_time now);

/* ---- the loop ------------------------------------------------------ */

/* Work to do once the current batch of completions is processed (re-arming
 * a multishot recv after ENOBUFS, when buffers are back). */
struct rill__deferred {
	struct rill__list link;
	void (*fn)(struct rill__deferred *d);
};

void rill__defer(rill_loop *loop, struct rill__deferred *d);
/* Runs the loop until t has ended: rill_task_join() outside a task.
 * Returns 0, or -EPERM / -EBUSY as rill_loop_run(). */
int rill__loop_run_until(rill_loop *loop, const rill_task *t);

/* ---- signals (engine/signal.c) -------------------------------------- */

struct rill__sigloop;
/* Loop thread, at each eventfd wake-up: wakes the tasks and queues the
 * handlers of the signals caught since the last call. */
void rill__signals_poll(rill_loop *loop);
/* rill_loop_free(): gives every signal of the loop back (default action). */
void rill__signals_free(rill_loop *loop);

/* ---- fibers -------------------------------------------------------- */

/* Switches stacks: saves the callee-saved registers and stack pointer into
 * *from_sp and resumes the context saved at to_sp. */
void rill__fiber_switch(void **from_sp, void *to_sp);
/* Prepares a new stack so that switching to the returned sp calls
 * entry(arg) on it. entry must never return. */
void *rill__fiber_init(void *stack_top, void (*entry)(void *), void *arg);

struct rill__stack *rill__stack_get(rill_loop *loop);
void rill__stack_put(rill_loop *loop, struct rill__stack *s);
void rill__stack_pool_free(rill_loop *loop);
void rill__stack_guard_install(void);

/* Sanitizer hooks around a switch from the current stack to another one. */
void rill__asan_start_switch(void **fake_save, const void *bottom, size_t size);
void rill__asan_finish_switch(void *fake, const void **bottom, size_t *size);

/* ---- features and errors ------------------------------------------- */

unsigned rill__disabled_from_env(void);

/* Reads the caller's options struct src (NULL: nothing to read), whose
 * first member is its size_t size, into dst (dst_size bytes, holding the
 * defaults): as much of it as both know; dst's size becomes dst_size.
 * Returns 0, or -EINVAL (size unset, or above RILL__OPTIONS_SIZE_MAX) /
 * -E2BIG (fields unknown here set) with the detail naming type. */
RILL_SPI int rill__options_load(void *dst, size_t dst_size, const void *src,
				const char *type);
/* The largest size an options or stats struct may claim: a page, as
 * clone3 and openat2 bound theirs. rill's structs are a few hundred bytes;
 * a size beyond this is an unset field (stack garbage), and reading that
 * far would run off the caller's memory. */
#define RILL__OPTIONS_SIZE_MAX 4096
RILL_SPI int rill__set_detail(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Every public call that can fail starts with this, so that
 * rill_error_detail() never shows an earlier call's text after a failure
 * that sets none: "set or cleared by every failing call". */
RILL_SPI void rill__detail_clear(void);

/* Reports what no caller can be told (a connection the server dropped, an
 * unclosed writer) to the rill_set_log_handler() handler, or stderr.
 * level is an enum rill_log_level. */
RILL_SPI void rill__log(int level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* A call that would corrupt memory if it went on (a handle used after it
 * was handed back): says so through the log hook and aborts. */
RILL_SPI void rill__misuse(const char *fmt, ...)
	__attribute__((format(printf, 1, 2), noreturn));

/* Frees p (malloc'd, its magic already set to dead) RILL__GRAVES burials
 * later, or when the loop is freed (engine/graves.c). */
RILL_SPI void rill__bury(rill_loop *loop, void *p);
void rill__graves_free(rill_loop *loop);

/* ---- loops inherited through fork() (engine/fork.c) ---------------- */

/* Bumped in every child of fork(); a loop remembers the value it was made
 * with, so that telling a loop of the parent costs one load. */
extern atomic_uint rill__fork_generation;
/* Registers the fork handler (once); returns the current generation. */
unsigned rill__fork_watch(void);
/* RILL_EFORKED, with the detail naming call. */
RILL_SPI int rill__forked_error(const char *call);
/* 0, or RILL_EFORKED (detail naming call) for a loop of a parent process. */
RILL_SPI int rill__loop_check_fork(const rill_loop *loop, const char *call);
/* In a child of fork(): the thread is in no task any more. */
void rill__task_forget_current(void);

#endif
