/* SPDX-License-Identifier: MIT */
/* engine/wait.c: rill_wait() and rill_gather(), asyncio.wait and gather.
 *
 * The waiter hangs one completion hook (struct rill__task_hook) on each
 * task that has not ended, all pointing at one struct waitset in its own
 * frame, and parks once. Each hook records its task's result as it ends
 * and wakes the waiter only when the condition holds, so a wait for all of
 * n tasks costs one wake-up, not n. The hooks are unlinked on every way
 * out, before the frame goes. A result is read in the hook, at the end of
 * its task: the handles are not touched after parking, so one joined by
 * its owner meanwhile is no danger.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/loop.h"

/* rill_gather() without return_exceptions: the first negative result. */
#define WAIT_ANY_ERROR 4

struct waitset;

struct waitentry {
	struct rill__task_hook hook;
	struct waitset *set;
	int result;
	bool done;
};

struct waitset {
	rill_task *self;
	int when;			/* enum rill_wait_when, or WAIT_ANY_ERROR */
	size_t n, ndone;
	int error;			/* first counted failure, or 0 */
	bool failed;
	struct waitentry *e;
};

/* A failure for FIRST_EXCEPTION (asyncio ignores cancelled tasks there);
 * any negative result for gather (it propagates a CancelledError). */
static bool is_failure(const struct waitset *ws, int result)
{
	if (ws->when == WAIT_ANY_ERROR)
		return result < 0;
	return result < 0 && result != -ECANCELED;
}

static bool waitset_met(const struct waitset *ws)
{
	switch (ws->when) {
	case RILL_FIRST_COMPLETED:
		return ws->ndone > 0;
	case RILL_FIRST_EXCEPTION:
	case WAIT_ANY_ERROR:
		return ws->failed || ws->ndone == ws->n;
	default:
		return ws->ndone == ws->n;
	}
}

static void entry_done(struct waitentry *e, int result)
{
	struct waitset *ws = e->set;

	e->done = true;
	e->result = result;
	ws->ndone++;
	if (is_failure(ws, result) && !ws->failed) {
		ws->failed = true;
		ws->error = result;
	}
}

/* Runs on the ending task's stack; the waiter is parked (it hooks only
 * before parking and unhooks before returning), so waking it is safe. */
static void entry_hook(struct rill__task_hook *h, rill_task *t)
{
	struct waitentry *e = rill__container_of(h, struct waitentry, hook);

	entry_done(e, t->result);
	if (waitset_met(e->set))
		rill__wake(e->set->self, 0);
}

/* The arguments rill_wait() and rill_gather() share: -EINVAL with the
 * detail naming the bad one, -EPERM outside a task. */
static int tasks_check(const char *call, rill_task *const *tasks, size_t n,
		       const rill_task *self)
{
	if (!tasks || n == 0)
		return rill__set_detail(-EINVAL, "%s: no tasks (%s)", call,
					tasks ? "n is 0" : "tasks is NULL");
	if (!self)
		return rill__set_detail(-EPERM, "%s outside a task", call);
	for (size_t i = 0; i < n; i++) {
		const rill_task *t = tasks[i];

		if (!t)
			return rill__set_detail(-EINVAL, "%s: tasks[%zu] is NULL",
						call, i);
		if (t->magic != RILL__TASK_LIVE)
			rill__misuse("%s: tasks[%zu] was already joined or detached",
				     call, i);
		if (t == self || t->detached || t->loop != self->loop)
			return rill__set_detail(-EINVAL, "%s: tasks[%zu] is %s",
						call, i, t == self ? "the caller" :
						t->detached ? "detached" :
						"of another loop");
	}
	return 0;
}

/* Records the tasks already ended and hooks the others. */
static int waitset_init(struct waitset *ws, rill_task *const *tasks)
{
	ws->e = calloc(ws->n, sizeof(*ws->e));
	if (!ws->e)
		return -ENOMEM;
	for (size_t i = 0; i < ws->n; i++) {
		ws->e[i].set = ws;
		if (tasks[i]->state == RILL__TASK_DONE) {
			entry_done(&ws->e[i], tasks[i]->result);
		} else {
			ws->e[i].hook.done = entry_hook;
			rill__task_hook_add(tasks[i], &ws->e[i].hook);
		}
	}
	return 0;
}

static void waitset_exit(struct waitset *ws)
{
	for (size_t i = 0; i < ws->n; i++)
		rill__task_hook_del(&ws->e[i].hook);
	free(ws->e);
}

/* Parks until the condition holds or until passes (both 0), or the task
 * is cancelled or its deadline passes. */
static int waitset_park(struct waitset *ws, rill_time until)
{
	struct rill__wait w = { .until = until };
	int err = 0;

	while (err == 0 && !waitset_met(ws)) {
		if (until != RILL_TIME_NEVER && rill_now() >= until)
			break;
		err = rill__park(&w);
	}
	return err;
}

/* now + ns, saturating at RILL_TIME_NEVER. */
static rill_time time_after(rill_time ns)
{
	rill_time now = rill_now();

	return ns >= RILL_TIME_NEVER - now ? RILL_TIME_NEVER : now + ns;
}

int rill_wait(rill_task *const *tasks, size_t n, int when,
	      rill_time timeout_ns, size_t *ndonep)
{
	rill__detail_clear();
	struct waitset ws = { .self = rill__current(), .when = when, .n = n };
	int err = tasks_check("rill_wait", tasks, n, ws.self);

	if (err)
		return err;
	if (when != RILL_FIRST_COMPLETED && when != RILL_FIRST_EXCEPTION &&
	    when != RILL_ALL_COMPLETED)
		return rill__set_detail(-EINVAL, "rill_wait: when is %d, not "
					"RILL_FIRST_COMPLETED, _FIRST_EXCEPTION "
					"or _ALL_COMPLETED", when);
	err = waitset_init(&ws, tasks);
	if (err)
		return err;
	if (!waitset_met(&ws))
		err = waitset_park(&ws, time_after(timeout_ns));
	if (ndonep)
		*ndonep = ws.ndone;
	waitset_exit(&ws);
	return err;
}

/* The gatherer was interrupted: cancel what still runs (asyncio cancels
 * a cancelled gather's children) and, with return_exceptions, wait for
 * all of it with the deadline lifted (it has passed). */
static int gather_interrupted(struct waitset *ws, rill_task *const *tasks,
			      bool wait_all, int err)
{
	rill_task *self = ws->self;
	rill_time saved = self->deadline;

	for (size_t i = 0; i < ws->n; i++)
		if (!ws->e[i].done)
			rill_task_cancel(tasks[i]);
	if (!wait_all)
		return err;
	ws->when = RILL_ALL_COMPLETED;
	self->deadline = RILL_TIME_NEVER;
	while (waitset_park(ws, RILL_TIME_NEVER) == -ECANCELED)
		err = -ECANCELED;
	self->deadline = saved;
	return err;
}

int rill_gather(rill_task *const *tasks, size_t n, int *results,
		bool return_exceptions)
{
	rill__detail_clear();
	struct waitset ws = {
		.self = rill__current(), .n = n,
		.when = return_exceptions ? RILL_ALL_COMPLETED : WAIT_ANY_ERROR,
	};
	int err = tasks_check("rill_gather", tasks, n, ws.self);

	if (err)
		return err;
	err = waitset_init(&ws, tasks);
	if (err)
		return err;
	if (!waitset_met(&ws))
		err = waitset_park(&ws, RILL_TIME_NEVER);
	if (err)
		err = gather_interrupted(&ws, tasks, return_exceptions, err);
	for (size_t i = 0; results && i < n; i++)
		if (ws.e[i].done)
			results[i] = ws.e[i].result;
	if (!err && !return_exceptions && ws.failed)
		err = ws.error;
	waitset_exit(&ws);
	return err;
}
