/* SPDX-License-Identifier: MIT */
/* engine/taskgroup.c: task groups, asyncio.TaskGroup in C.
 *
 * Each member carries a completion hook (struct rill__task_hook) that runs
 * on its own stack as it ends: it counts the member out, records a failure
 * and cancels the siblings at once (asyncio does it in the done callback,
 * not when the group is waited for), and wakes the waiter when the last
 * member is gone. So a failure stops the others even while nobody waits.
 *
 * Ownership: the group owns every member's handle. A member spawned
 * without taskp is marked detached as it ends, so the loop frees it right
 * after (as a detached task); one whose handle was given out is kept on
 * g->ended until rill_task_group_free(), so that handle stays valid.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/loop.h"

struct member {
	struct rill__task_hook hook;
	struct rill__list link;		/* g->running, or g->ended if kept */
	rill_task *task;
	rill_task_group *group;
	bool kept;			/* the spawner holds the handle */
};

struct rill_task_group {
	rill_loop *loop;
	struct rill__list running;	/* members not ended */
	struct rill__list ended;	/* ended members with a handle out */
	size_t nrunning;
	size_t nfailed;
	int error;			/* the first failure, or 0 */
	bool aborting;			/* members cancelled: no new ones */
	bool finished;			/* rill_task_group_wait() returned */
	bool waiting;			/* a task is in rill_task_group_wait() */
	struct rill__waitq waiters;
};

/* asyncio's _abort(): cancel every member still running. */
static void group_abort(rill_task_group *g)
{
	struct rill__list *pos;

	g->aborting = true;
	/* Cancelling only makes tasks runnable: none ends, and none leaves
	 * the list, during this walk. */
	for (pos = g->running.next; pos != &g->running; pos = pos->next) {
		struct member *m = rill__container_of(pos, struct member, link);

		if (!m->task->cancel_pending)
			rill_task_cancel(m->task);
	}
}

static void member_done(struct rill__task_hook *h, rill_task *t)
{
	struct member *m = rill__container_of(h, struct member, hook);
	rill_task_group *g = m->group;

	rill__list_del(&m->link);
	g->nrunning--;
	if (t->result < 0 && t->result != -ECANCELED) {
		if (g->nfailed++ == 0)
			g->error = t->result;
		group_abort(g);
	}
	if (m->kept) {
		rill__list_add_tail(&g->ended, &m->link);
	} else {
		/* We are on t's stack: the loop frees it once it is off. */
		t->in_group = false;
		t->detached = true;
		free(m);
	}
	if (g->nrunning == 0)
		rill__waitq_wake_all(&g->waiters);
}

int rill_task_group_new(rill_loop *loop, rill_task_group **gp)
{
	rill__detail_clear();
	rill_task_group *g;

	if (!loop || !gp)
		return rill__set_detail(-EINVAL, "rill_task_group_new: %s is NULL",
					loop ? "gp" : "loop");
	g = calloc(1, sizeof(*g));
	if (!g)
		return -ENOMEM;
	g->loop = loop;
	rill__list_init(&g->running);
	rill__list_init(&g->ended);
	rill__waitq_init(&g->waiters);
	*gp = g;
	return 0;
}

int rill_task_group_spawn(rill_task_group *g, rill_task_fn fn, void *arg,
			  rill_task **taskp)
{
	rill__detail_clear();
	struct member *m;
	int err;

	if (!g || !fn)
		return rill__set_detail(-EINVAL, "rill_task_group_spawn: %s is NULL",
					g ? "fn" : "the group");
	if (g->finished)
		return rill__set_detail(RILL_ESTATE, "rill_task_group_spawn: the "
					"group is finished (rill_task_group_wait "
					"returned)");
	if (g->aborting)
		return rill__set_detail(RILL_ESTATE, "rill_task_group_spawn: the "
					"group is shutting down (a member failed "
					"or its waiter was interrupted)");
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	err = rill_spawn(g->loop, fn, arg, &m->task);
	if (err < 0) {
		free(m);
		return err;
	}
	m->group = g;
	m->kept = taskp != NULL;
	m->hook.done = member_done;
	m->task->in_group = true;
	rill__task_hook_add(m->task, &m->hook);
	rill__list_add_tail(&g->running, &m->link);
	g->nrunning++;
	if (taskp)
		*taskp = m->task;
	return 0;
}

static bool group_has(const rill_task_group *g, const rill_task *t)
{
	const struct rill__list *pos;

	for (pos = g->running.next; pos != &g->running; pos = pos->next)
		if (rill__container_of(pos, struct member, link)->task == t)
			return true;
	return false;
}

/* The waiter was interrupted: as asyncio's __aexit__, cancel the members
 * and still wait for every one (they may use the waiter's frame). The
 * deadline has passed, so it is lifted meanwhile; a further cancellation
 * only makes the result -ECANCELED. */
static int group_drain(rill_task_group *g, rill_task *self, int err)
{
	rill_time saved = self->deadline;

	group_abort(g);
	self->deadline = RILL_TIME_NEVER;
	while (g->nrunning)
		if (rill__waitq_park(&g->waiters) == -ECANCELED)
			err = -ECANCELED;
	self->deadline = saved;
	return err;
}

static int wait_check(const rill_task_group *g, const rill_task *self)
{
	if (!g)
		return rill__set_detail(-EINVAL, "rill_task_group_wait: the group is NULL");
	if (!self)
		return rill__set_detail(-EPERM, "rill_task_group_wait outside a task");
	if (self->loop != g->loop)
		return rill__set_detail(-EINVAL, "rill_task_group_wait: the group "
					"belongs to another loop");
	if (group_has(g, self))
		return rill__set_detail(-EINVAL, "rill_task_group_wait: a member "
					"cannot wait for its own group");
	if (g->waiting)
		return rill__set_detail(-EBUSY, "rill_task_group_wait: another "
					"task is waiting on the group");
	return 0;
}

int rill_task_group_wait(rill_task_group *g)
{
	rill__detail_clear();
	rill_task *self = rill__current();
	int err = wait_check(g, self);

	if (err)
		return err;
	g->waiting = true;
	while (g->nrunning && err == 0)
		err = rill__waitq_park(&g->waiters);
	if (err)
		err = group_drain(g, self, err);
	g->waiting = false;
	g->finished = true;
	if (g->error) {
		/* The failure wins; the cancellation is not lost. */
		if (err == -ECANCELED)
			self->cancel_pending = true;
		return g->error;
	}
	return err;
}

int rill_task_group_cancel(rill_task_group *g)
{
	rill__detail_clear();
	if (!g)
		return rill__set_detail(-EINVAL, "rill_task_group_cancel: the group is NULL");
	group_abort(g);
	return 0;
}

size_t rill_task_group_failed(const rill_task_group *g)
{
	return g ? g->nfailed : 0;
}

void rill_task_group_free(rill_task_group *g)
{
	if (!g)
		return;
	if (g->waiting)
		rill__misuse("rill_task_group_free: a task is waiting on the group");
	while (!rill__list_empty(&g->running)) {
		struct member *m = rill__container_of(g->running.next,
						      struct member, link);
		rill_task *t = m->task;

		rill__list_del(&m->link);
		rill__task_hook_del(&m->hook);
		t->in_group = false;
		rill_task_cancel(t);
		rill_task_detach(t);
		free(m);
	}
	while (!rill__list_empty(&g->ended)) {
		struct member *m = rill__container_of(g->ended.next,
						      struct member, link);

		rill__list_del(&m->link);
		m->task->in_group = false;
		rill_task_detach(m->task);	/* ended: freed now */
		free(m);
	}
	free(g);
}
