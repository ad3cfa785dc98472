/* SPDX-License-Identifier: MIT */
/* rill/task.h: tasks, the stackful fibers user code runs in.
 *
 * A task runs on its own stack and switches out whenever it waits for I/O,
 * a timer or another task, so code reads like asyncio code with one call per
 * await. Tasks of one loop run one at a time on the loop's thread.
 *
 * Every call that waits returns -ECANCELED once the task has been cancelled
 * (the cancellation is delivered once, as asyncio's CancelledError is) and
 * -ETIMEDOUT once the task's deadline has passed; an operation in flight at
 * that moment is cancelled in the kernel and waited for, so its completion
 * never lands in a frame that has returned.
 */
#ifndef RILL_TASK_H
#define RILL_TASK_H

#include <stdbool.h>

#include "rill/common.h"
#include "rill/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_task rill_task;

/* A task's body. Its return value is what rill_task_join() hands back. */
typedef int (*rill_task_fn)(void *arg);

/* Creates a task on loop running fn(arg); it starts at the loop's next
 * iteration. With taskp non-NULL the caller owns the handle and must hand
 * it back with rill_task_join() or rill_task_detach(); with taskp NULL the
 * task is detached from the start. arg is borrowed: it must stay valid
 * while the task may use it. Returns 0, -EINVAL, -ENOMEM, or RILL_ECLOSED
 * when the loop is being freed. */
RILL_API int rill_spawn(rill_loop *loop, rill_task_fn fn, void *arg,
			rill_task **taskp);

/* Waits for the task to end, stores its return value in *resultp (may be
 * NULL) and frees the handle. Inside a task it suspends the caller; outside
 * any task, on the loop's thread, it runs the loop until the task ends.
 * Returns 0, or -ECANCELED / -ETIMEDOUT when the waiting task is cancelled
 * or times out (the handle then stays valid and owned by the caller),
 * -EINVAL for a detached task or a task joining itself, or -EBUSY while
 * another task is joining it. A handle already joined or detached must not
 * be used again: rill aborts with a message naming the misuse when it can
 * tell (soon after the hand-back), as it does for cancel, detach and
 * done. */
RILL_API int rill_task_join(rill_task *task, int *resultp);

/* Gives up the handle: the task runs on and frees itself when done. */
RILL_API void rill_task_detach(rill_task *task);

/* Asks the task to stop: the wait it is in, or its next one, returns
 * -ECANCELED. A task that has not started yet never runs its body and ends
 * with result -ECANCELED. Returns 0, or -ESRCH when it has already ended. */
RILL_API int rill_task_cancel(rill_task *task);

/* Whether the task has ended; true for NULL. */
RILL_API bool rill_task_done(const rill_task *task);

/* The task running now, or NULL outside tasks. */
RILL_API rill_task *rill_task_current(void);

/* Lets the other ready tasks run, then resumes. Returns 0, -ECANCELED,
 * -ETIMEDOUT (the task's deadline passed), or -EPERM outside a task. */
RILL_API int rill_yield(void);

/* Suspends the task for ns nanoseconds (ms milliseconds). Returns 0, or
 * -ECANCELED / -ETIMEDOUT, or -EPERM outside a task. */
RILL_API int rill_sleep_ns(rill_time ns);
RILL_API int rill_sleep_ms(uint64_t ms);

/* Task deadlines, like asyncio.timeout(): every wait of the current task
 * that has not finished by the deadline returns -ETIMEDOUT.
 * rill_deadline_push() sets the deadline to now + timeout_ns, unless an
 * earlier one is in force, and returns the previous one; pass that to
 * rill_deadline_pop() to end the scope. Scopes nest. Outside a task push
 * returns RILL_TIME_NEVER and does nothing. */
RILL_API rill_time rill_deadline_push(rill_time timeout_ns);
RILL_API void rill_deadline_pop(rill_time saved);

/* Whether the current task's deadline has passed: true after a wait
 * returned -ETIMEDOUT because of it. */
RILL_API bool rill_deadline_expired(void);

/* The asyncio.run() of rill: creates a loop with default options, runs
 * fn(arg) in a task until it ends, frees the loop. Stores the task's
 * result in *resultp (may be NULL). Returns 0 or a rill_loop_new() error. */
RILL_API int rill_run(rill_task_fn fn, void *arg, int *resultp);

/* ---- blocking work off the loop ------------------------------------ */

/* Runs fn(arg) on a thread of rill's pool, as asyncio.to_thread(), and
 * suspends the calling task until it returns; *resultp (may be NULL) gets
 * fn's return value. fn runs on another thread: it may block, and must not
 * use the loop's objects (rill_loop_call_soon_threadsafe() is the way
 * back). The pool is shared by the whole process (with name lookups) and
 * bounded: at most RILL_THREADPOOL_SIZE threads (environment, read once
 * at first use; default 4, at most 128), calls beyond that wait their
 * turn. Its threads block every asynchronous signal.
 *
 * Cancelling the task, or its deadline, returns -ECANCELED / -ETIMEDOUT at
 * once and gives up the result: a call not started yet never runs, one
 * running goes on to its end on its thread (rill owns its bookkeeping, so
 * nothing of the task is touched), and arg must stay valid until then.
 * rill_loop_free() cancels the waiting task and does not wait for such a
 * call. Returns 0, -ECANCELED, -ETIMEDOUT, -EPERM outside a task, -EINVAL
 * for a NULL fn, -ENOMEM, or -errno when no pool thread could start. */
RILL_API int rill_to_thread(rill_task_fn fn, void *arg, int *resultp);

#ifdef __cplusplus
}
#endif

#endif
