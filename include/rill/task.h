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
 * -EINVAL for a detached task, a task group's member or a task joining
 * itself, -EBUSY while another task is joining it, or -EPERM outside any
 * task from a thread other than the loop's. A handle already joined or
 * detached must not be used again: rill aborts with a message naming the
 * misuse when it can tell (soon after the hand-back), as it does for
 * cancel, detach and done. A handle outlives its loop: after
 * rill_loop_free() (which cancels the tasks still running) join gives 0
 * and the task's result, and frees the handle without touching the loop. */
RILL_API int rill_task_join(rill_task *task, int *resultp);

/* Gives up the handle: the task runs on and frees itself when done. A
 * task group's member is its group's to free: ignored, with a warning. */
RILL_API void rill_task_detach(rill_task *task);

/* Asks the task to stop: the wait it is in, or its next one, returns
 * -ECANCELED. A task that has not started yet never runs its body and ends
 * with result -ECANCELED. Returns 0, -ESRCH when it has already ended, or
 * -EINVAL for NULL. */
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
 * result in *resultp (may be NULL). Returns 0 once the task has ended
 * (its own result, an error code or not, is in *resultp), or an error of
 * rill_loop_new() (the RILL_EURING_* codes among them), rill_spawn() or
 * rill_task_join(). main() should not return either as its exit status:
 * test them and return EXIT_SUCCESS or EXIT_FAILURE. */
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

/* ---- waiting on several tasks: task groups, wait, gather ------------ */

/* A task group, as asyncio.TaskGroup: tasks spawned into it are waited for
 * together, and the first one to fail cancels the others.
 *
 * A member fails when it ends with a negative result other than
 * -ECANCELED: as asyncio ignores a child that was cancelled, a member
 * ending with -ECANCELED (cancelled by the group, by anyone, or before it
 * started) is not a failure. The group owns its members: it frees each
 * once it has ended and the group no longer needs it. Unlike asyncio,
 * the task that owns the group is not cancelled by a failure; it learns of
 * it from rill_task_group_wait() or rill_task_group_failed(). */
typedef struct rill_task_group rill_task_group;

/* Creates an empty group whose members run on loop; caller owns *gp and
 * frees it with rill_task_group_free() before freeing the loop. Returns 0,
 * -EINVAL or -ENOMEM. */
RILL_API int rill_task_group_new(rill_loop *loop, rill_task_group **gp);

/* rill_spawn() into the group: fn(arg) starts at the loop's next
 * iteration. With taskp non-NULL *taskp gets a borrowed handle, valid
 * until rill_task_group_free(): it may be cancelled, tested with
 * rill_task_done() and given to rill_wait() or rill_gather(), but not
 * joined (-EINVAL) or detached (ignored, with a warning). With taskp NULL
 * the member's memory goes as soon as it ends. Returns 0, -EINVAL,
 * -ENOMEM, RILL_ECLOSED (loop being freed), or RILL_ESTATE once a member
 * has failed or the waiter was interrupted (the group is shutting down)
 * or once rill_task_group_wait() has returned (the group is finished). */
RILL_API int rill_task_group_spawn(rill_task_group *g, rill_task_fn fn,
				   void *arg, rill_task **taskp);

/* Waits, from a task, until every member has ended, members spawned while
 * it waits included; the group is finished afterwards. Returns 0 when no
 * member failed, or the first failure's result (the failure had already
 * cancelled the other members). When the waiting task is cancelled or its
 * deadline passes, the members are cancelled and still waited for, then
 * -ECANCELED / -ETIMEDOUT is returned; a member failure takes precedence
 * (asyncio's rule), and a cancellation it hid is delivered again at the
 * task's next wait. -EPERM outside a task, -EINVAL for NULL, a group of
 * another loop or a member waiting on its own group, -EBUSY while another
 * task waits on it. Calling it again returns the first failure or 0 at
 * once. */
RILL_API int rill_task_group_wait(rill_task_group *g);

/* Cancels every member still running and shuts the group down (no new
 * members), as asyncio's TaskGroup does when the body of its async with
 * raises: for an owner that must give up, then wait for the members with
 * rill_task_group_wait(). Cancelled members are no failures. Returns 0, or
 * -EINVAL for NULL. */
RILL_API int rill_task_group_cancel(rill_task_group *g);

/* How many members have failed so far (0 for NULL). */
RILL_API size_t rill_task_group_failed(const rill_task_group *g);

/* Frees the group and every handle it gave out. Members still running are
 * cancelled and left to end on their own (they then free themselves);
 * their results are lost. Must not be called while a task waits on the
 * group (rill aborts, naming the misuse). g may be NULL. */
RILL_API void rill_task_group_free(rill_task_group *g);

/* What rill_wait() waits for, as asyncio.wait's return_when. */
enum rill_wait_when {
	RILL_FIRST_COMPLETED = 1,	/* any task has ended */
	RILL_FIRST_EXCEPTION = 2,	/* any has failed, or all have ended */
	RILL_ALL_COMPLETED = 3,		/* all have ended */
};

/* Waits, from a task, until the condition when holds for tasks[0..n-1],
 * or timeout_ns has passed (RILL_TIME_NEVER: no timeout), as asyncio.wait.
 * A task has failed when it ended with a negative result other than
 * -ECANCELED. The tasks are borrowed, never cancelled and never freed: the
 * caller still owns each handle (joinable, not detached, not the caller;
 * a group's borrowed handles qualify) and must not hand one back while
 * this waits. Stores the number of tasks that have ended in *ndonep (may
 * be NULL); which ones, rill_task_done() tells. Returns 0 when the
 * condition holds or the timeout passed (as asyncio.wait, a timeout is no
 * error), -ECANCELED / -ETIMEDOUT when the waiting task is cancelled or
 * its own deadline passes, -EINVAL (the detail says why), -EPERM outside
 * a task, -ENOMEM. A condition that already holds returns at once. */
RILL_API int rill_wait(rill_task *const *tasks, size_t n, int when,
		       rill_time timeout_ns, size_t *ndonep);

/* Waits, from a task, for tasks[0..n-1] as asyncio.gather, storing each
 * ended task's result in results[i] (results may be NULL). The handles
 * are borrowed as by rill_wait(): gather never frees them, so the caller
 * joins (which hands the result back again) or detaches each afterwards.
 * With return_exceptions every task is waited for and 0 returned, errors
 * being results like any other. Without it the first task to end with a
 * negative result (-ECANCELED included, as asyncio propagates a child's
 * CancelledError) makes gather return that result at once; the other
 * tasks are not cancelled and run on, and the results of those still
 * running are not written. When the waiting task is cancelled or its
 * deadline passes, the tasks still running are cancelled (asyncio cancels
 * a cancelled gather's children); with return_exceptions they are waited
 * for and every result written before -ECANCELED / -ETIMEDOUT is
 * returned, without it gather returns at once. -EINVAL, -EPERM and
 * -ENOMEM as rill_wait(). */
RILL_API int rill_gather(rill_task *const *tasks, size_t n, int *results,
			 bool return_exceptions);

#ifdef __cplusplus
}
#endif

#endif
