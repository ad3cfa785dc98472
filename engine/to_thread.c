/* SPDX-License-Identifier: MIT */
/* engine/to_thread.c: a blocking function run off the loop, as
 * asyncio.to_thread(): on the process's thread pool (engine/pool.c), the
 * waiting task resuming with its result.
 *
 * The job lives on the heap, not on the task's stack: a task that is
 * cancelled returns at once, and the thread still running the function
 * must have somewhere to write its result. Whoever is last frees it: the
 * loop when the result arrives (done), the pool when the task gave it up
 * (drop).
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/loop.h"

struct towait;

struct tojob {
	struct rill__work w;
	rill_task_fn fn;
	void *arg;
	int result;
	struct towait *waiter;
};

/* On the waiting task's stack. */
struct towait {
	struct rill__wait wait;
	struct tojob *job;	/* NULL once the result is in or given up */
	int result;
};

static void job_run(struct rill__work *w)
{
	struct tojob *j = rill__container_of(w, struct tojob, w);

	j->result = j->fn(j->arg);
}

static void job_done(struct rill__work *w)
{
	struct tojob *j = rill__container_of(w, struct tojob, w);
	struct towait *tw = j->waiter;

	tw->result = j->result;
	tw->job = NULL;
	free(j);
	rill__wake(tw->wait.task, 0);
}

static void job_drop(struct rill__work *w)
{
	free(rill__container_of(w, struct tojob, w));
}

/* Cancelled or timed out: the task returns now, the job is the pool's. */
static void towait_interrupt(struct rill__wait *wait, int reason)
{
	struct towait *tw = rill__container_of(wait, struct towait, wait);

	rill__work_abandon(&tw->job->w);
	tw->job = NULL;
	rill__wake(wait->task, reason);
}

int rill_to_thread(rill_task_fn fn, void *arg, int *resultp)
{
	rill__detail_clear();
	rill_task *t = rill__current();
	struct towait tw = {
		.wait = { .interrupt = towait_interrupt, .until = RILL_TIME_NEVER },
	};
	struct tojob *j;
	int ret;

	if (!t)
		return rill__set_detail(-EPERM, "rill_to_thread outside a task");
	if (!fn)
		return rill__set_detail(-EINVAL, "rill_to_thread: fn is NULL");
	j = calloc(1, sizeof(*j));
	if (!j)
		return -ENOMEM;
	*j = (struct tojob){
		.w = { .run = job_run, .done = job_done, .drop = job_drop },
		.fn = fn, .arg = arg, .waiter = &tw,
	};
	tw.job = j;
	if ((ret = rill__work_submit(t->loop, &j->w)) < 0) {
		free(j);
		return rill__set_detail(ret, "rill_to_thread: no pool thread could be started");
	}
	ret = rill__park(&tw.wait);
	if (tw.job)		/* returned without parking: cancelled already */
		rill__work_abandon(&tw.job->w);
	if (ret == 0 && resultp)
		*resultp = tw.result;
	return ret;
}
