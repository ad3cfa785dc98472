/* SPDX-License-Identifier: MIT */
/* rill/sync.h: between loops: threads that run loops, events and queues
 * that tasks of different loops (threads) share.
 *
 * Everything else in rill belongs to one loop and one thread. The objects
 * here are the exception: their calls are safe from any thread, and a task
 * waiting on one is woken on its own loop, through
 * rill_loop_call_soon_threadsafe(). Running a function on another loop is
 * rill_loop_call_soon_threadsafe() itself.
 */
#ifndef RILL_SYNC_H
#define RILL_SYNC_H

#include <stdbool.h>

#include "rill/common.h"
#include "rill/loop.h"
#include "rill/task.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- threads with a loop each -------------------------------------- */

typedef struct rill_thread rill_thread;

/* Starts a thread with a loop of its own (opts may be NULL) running
 * fn(arg) in a task until it returns; cpu >= 0 pins the thread to that
 * CPU (-1: not pinned). The caller owns the handle: rill_thread_join().
 * arg is borrowed until fn returns. Returns 0, -EINVAL (a CPU the machine
 * does not have, or one the thread may not run on), -ENOMEM, or a
 * rill_loop_new() error of the new thread, whose rill_error_detail() is
 * carried to the caller's thread. */
RILL_API int rill_thread_start(const rill_loop_options *opts, int cpu,
			       rill_task_fn fn, void *arg, rill_thread **threadp);

/* The thread's loop: valid while the thread's fn runs (the thread frees
 * its loop as soon as fn returns), so post to it with
 * rill_loop_call_soon_threadsafe() only while fn is known to run. NULL
 * for a NULL thread. */
RILL_API rill_loop *rill_thread_loop(const rill_thread *t);

/* Waits for the thread's task to return and its loop to be freed, stores
 * the task's result in *resultp (may be NULL) and frees the handle. In a
 * task, only the task waits; outside tasks the calling thread blocks.
 * Returns 0, or -ECANCELED / -ETIMEDOUT (the handle stays valid). */
RILL_API int rill_thread_join(rill_thread *t, int *resultp);

/* Online CPUs, for one loop per core. */
RILL_API int rill_cpu_count(void);

/* ---- events -------------------------------------------------------- */

typedef struct rill_event rill_event;

/* asyncio.Event across threads. Caller owns: rill_event_free() once no
 * task waits on it. */
RILL_API int rill_event_new(rill_event **evp);
RILL_API void rill_event_free(rill_event *ev);
/* Sets the event and wakes every task waiting on it, on any loop. NULL is
 * ignored, by clear too. */
RILL_API void rill_event_set(rill_event *ev);
RILL_API void rill_event_clear(rill_event *ev);
/* false for NULL. */
RILL_API bool rill_event_is_set(const rill_event *ev);
/* Waits until the event is set. Returns 0, -ECANCELED or -ETIMEDOUT. */
RILL_API int rill_event_wait(rill_event *ev);

/* ---- queues -------------------------------------------------------- */

typedef struct rill_queue rill_queue;

/* A bounded FIFO of pointers between tasks of any loops, capacity 1 to
 * RILL_QUEUE_CAPACITY_MAX (else -EINVAL). The items are the callers': the
 * queue only moves the pointers. */
#define RILL_QUEUE_CAPACITY_MAX (1u << 24)
RILL_API int rill_queue_new(size_t capacity, rill_queue **qp);
RILL_API void rill_queue_free(rill_queue *q);
/* Task: waits while full. 0, RILL_ECLOSED, -ECANCELED, -ETIMEDOUT. */
RILL_API int rill_queue_put(rill_queue *q, void *item);
/* Any thread: 0, -EAGAIN when full, RILL_ECLOSED. */
RILL_API int rill_queue_try_put(rill_queue *q, void *item);
/* Task: waits while empty. 0, RILL_ECLOSED once closed and drained,
 * -ECANCELED, -ETIMEDOUT. */
RILL_API int rill_queue_get(rill_queue *q, void **itemp);
/* Any thread: 0, -EAGAIN when empty, RILL_ECLOSED when closed and empty. */
RILL_API int rill_queue_try_get(rill_queue *q, void **itemp);
/* No more puts; getters drain what is left, then get RILL_ECLOSED. NULL is
 * ignored. */
RILL_API void rill_queue_close(rill_queue *q);
/* Items queued (0 for NULL). */
RILL_API size_t rill_queue_len(const rill_queue *q);

#ifdef __cplusplus
}
#endif

#endif
