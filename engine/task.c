/* SPDX-License-Identifier: MIT */
/* engine/task.c: tasks, parking, cancellation and deadlines.
 *
 * Tasks switch only to the loop's own stack and back, never to each other:
 * the loop decides who runs next, so there is one place that knows the
 * order and one place to annotate for the sanitizers.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/loop.h"
#include "rill/stream.h"	/* the log levels */

static __thread rill_task *current_task;

rill_task *rill__current(void)
{
	return current_task;
}

rill_task *rill_task_current(void)
{
	return current_task;
}

void rill__task_forget_current(void)
{
	current_task = NULL;
}

/* Leaves the task for the loop's stack; returns when the loop resumes it. */
static void task_suspend(rill_task *t)
{
	rill_loop *loop = t->loop;

	rill__asan_start_switch(&t->asan_fake_stack, loop->asan_main_bottom,
				loop->asan_main_size);
	rill__fiber_switch(&t->sp, loop->main_sp);
	rill__asan_finish_switch(t->asan_fake_stack, &loop->asan_main_bottom,
				 &loop->asan_main_size);
}

void rill__task_hook_add(rill_task *t, struct rill__task_hook *h)
{
	h->next = t->hooks;
	if (h->next)
		h->next->pprev = &h->next;
	h->pprev = &t->hooks;
	t->hooks = h;
}

void rill__task_hook_del(struct rill__task_hook *h)
{
	if (!h->pprev)
		return;
	*h->pprev = h->next;
	if (h->next)
		h->next->pprev = h->pprev;
	h->next = NULL;
	h->pprev = NULL;
}

static void hooks_run(rill_task *t)
{
	struct rill__task_hook *h;

	while ((h = t->hooks) != NULL) {
		rill__task_hook_del(h);
		h->done(h, t);
	}
}

static void task_finish(rill_task *t)
{
	rill_loop *loop = t->loop;

	t->state = RILL__TASK_DONE;
	rill__list_del(&t->all_link);
	if (!t->detached)	/* until joined or detached */
		rill__list_add_tail(&loop->finished, &t->all_link);
	loop->ntasks--;
	rill__waitq_wake_all(&t->joiners);
	if (rill__unlikely(t->hooks != NULL))
		hooks_run(t);
}

void rill__resource_add(struct rill__resource *res)
{
	rill__list_init(&res->link);
	if (current_task)
		rill__list_add_tail(&current_task->resources, &res->link);
}

void rill__resource_del(struct rill__resource *res)
{
	if (res->link.next && !rill__list_empty(&res->link))
		rill__list_del(&res->link);
}

static void resources_release(rill_task *t)
{
	while (!rill__list_empty(&t->resources)) {
		struct rill__resource *res = rill__container_of(t->resources.next,
					struct rill__resource, link);
		rill__list_del(&res->link);
		res->release(res);
	}
}

static void task_entry(void *arg)
{
	rill_task *t = arg;
	rill_loop *loop = t->loop;

	rill__asan_finish_switch(NULL, &loop->asan_main_bottom,
				 &loop->asan_main_size);
	if (t->cancel_pending) {
		t->cancel_pending = false;
		t->result = -ECANCELED;
	} else {
		t->result = t->fn(t->arg);
	}
	resources_release(t);
	task_finish(t);
	/* NULL: this stack is finished, its fake frames can go. */
	rill__asan_start_switch(NULL, loop->asan_main_bottom, loop->asan_main_size);
	rill__fiber_switch(&t->sp, loop->main_sp);
	__builtin_unreachable();
}

/* loop is NULL for a handle that outlived its loop (tasks_orphan). */
static void task_bury(rill_loop *loop, rill_task *t)
{
	t->magic = RILL__TASK_DEAD;
	rill__list_del(&t->all_link);	/* off loop->finished */
	if (loop)
		rill__bury(loop, t);
	else
		free(t);
}

void rill__task_run(rill_loop *loop, rill_task *t)
{
	if (rill__loop_forked(loop))
		rill__forked_misuse();
	loop->current = t;
	current_task = t;
	t->state = RILL__TASK_RUNNING;
	loop->stats.switches += 2;
	rill__asan_start_switch(&loop->asan_main_fake, t->stack->lo,
				t->stack->size);
	rill__fiber_switch(&loop->main_sp, t->sp);
	rill__asan_finish_switch(loop->asan_main_fake, NULL, NULL);
	if (rill__loop_forked(loop))	/* t forked, and its child came back */
		rill__forked_misuse();
	current_task = NULL;
	loop->current = NULL;
	if (t->state == RILL__TASK_DONE) {
		rill__stack_put(loop, t->stack);
		t->stack = NULL;
		if (t->detached)
			task_bury(loop, t);
	}
}

/* A handle given back (joined, or detached and ended) must not be used. */
static void task_check(const rill_task *t, const char *call)
{
	if (t && t->magic != RILL__TASK_LIVE)
		rill__misuse("%s: the task handle was already joined or detached", call);
}

bool rill_task_done(const rill_task *task)
{
	task_check(task, "rill_task_done");
	return !task || task->state == RILL__TASK_DONE;
}

int rill_spawn(rill_loop *loop, rill_task_fn fn, void *arg, rill_task **taskp)
{
	rill__detail_clear();
	rill_task *t;
	int err;

	if (!loop || !fn)
		return -EINVAL;
	if ((err = rill__loop_check_fork(loop, "rill_spawn")) < 0)
		return err;
	if (loop->freeing)
		return RILL_ECLOSED;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->stack = rill__stack_get(loop);
	if (!t->stack) {
		free(t);
		return -ENOMEM;
	}
	t->loop = loop;
	t->magic = RILL__TASK_LIVE;
	t->fn = fn;
	t->arg = arg;
	t->deadline = RILL_TIME_NEVER;
	t->timer.index = SIZE_MAX;
	t->detached = taskp == NULL;
	t->state = RILL__TASK_READY;
	rill__waitq_init(&t->joiners);
	rill__list_init(&t->resources);
	t->sp = rill__fiber_init(t->stack->lo + t->stack->size,
				 task_entry, t);
	rill__list_add_tail(&loop->tasks, &t->all_link);
	rill__list_add_tail(&loop->ready, &t->ready_link);
	loop->ntasks++;
	loop->stats.tasks_spawned++;
	if (taskp)
		*taskp = t;
	return 0;
}

void rill__wake(rill_task *t, int res)
{
	if (t->state != RILL__TASK_PARKED)
		return;
	rill__timer_del(t->loop, t);
	t->wake_res = res;
	t->wait = NULL;
	t->state = RILL__TASK_READY;
	rill__list_add_tail(&t->loop->ready, &t->ready_link);
}

/* Stops the wait t is parked in, early. */
static void task_interrupt(rill_task *t, int reason)
{
	struct rill__wait *w = t->wait;

	if (w->interrupted)
		return;
	w->interrupted = reason;
	if (reason == -ECANCELED)
		t->cancel_pending = false;	/* delivered by this wait */
	rill__timer_del(t->loop, t);
	if (w->interrupt)
		w->interrupt(w, reason);
	else
		rill__wake(t, reason);
}

void rill__task_timer_fired(rill_task *t, rill_time now)
{
	if (t->state != RILL__TASK_PARKED)
		return;
	if (t->deadline <= now)
		task_interrupt(t, -ETIMEDOUT);
	else
		rill__wake(t, 0);
}

/* What a wait must return at once, before parking: -EPERM outside a task
 * (t NULL), a pending cancellation or a deadline already passed. */
static int park_check(rill_task *t)
{
	if (!t)
		return -EPERM;
	if (t->cancel_pending) {
		t->cancel_pending = false;
		return -ECANCELED;
	}
	if (t->deadline != RILL_TIME_NEVER && t->deadline <= rill_now())
		return -ETIMEDOUT;
	return 0;
}

int rill__park(struct rill__wait *w)
{
	rill_task *t = current_task;
	rill_time when;
	int err = park_check(t);

	if (err)
		return err;
	w->task = t;
	w->interrupted = 0;
	t->wait = w;
	t->state = RILL__TASK_PARKED;
	when = t->deadline < w->until ? t->deadline : w->until;
	if (when != RILL_TIME_NEVER)
		rill__timer_add(t->loop, t, when);
	task_suspend(t);
	return t->wake_res;
}

int rill_task_cancel(rill_task *t)
{
	rill__detail_clear();
	task_check(t, "rill_task_cancel");
	if (!t)
		return -EINVAL;
	if (t->state == RILL__TASK_DONE)
		return -ESRCH;
	t->cancel_pending = true;
	if (t->state == RILL__TASK_PARKED)
		task_interrupt(t, -ECANCELED);
	return 0;
}

int rill_task_join(rill_task *t, int *resultp)
{
	rill__detail_clear();
	rill_task *self = current_task;
	int err = 0;

	task_check(t, "rill_task_join");
	if (!t || t->detached || t == self)
		return -EINVAL;
	if (t->in_group)
		return rill__set_detail(-EINVAL, "rill_task_join: the task belongs "
					"to a task group, which reaps it");
	if (t->joining)		/* the handle has one owner: one join */
		return -EBUSY;
	t->joining = true;
	while (self && t->state != RILL__TASK_DONE && err == 0)
		err = rill__waitq_park(&t->joiners);
	if (!self && t->state != RILL__TASK_DONE)
		err = rill__loop_run_until(t->loop, t);
	t->joining = false;
	if (err < 0)
		return err;
	if (resultp)
		*resultp = t->result;
	task_bury(t->loop, t);
	return 0;
}

void rill_task_detach(rill_task *t)
{
	task_check(t, "rill_task_detach");
	if (!t)
		return;
	if (t->in_group) {
		/* The group frees it: detaching too would free it twice. */
		rill__log(RILL_LOG_WARNING, "rill_task_detach: the task belongs "
			  "to a task group, which reaps it; ignored");
		return;
	}
	if (t->state == RILL__TASK_DONE)
		task_bury(t->loop, t);
	else
		t->detached = true;
}

int rill_yield(void)
{
	rill__detail_clear();
	rill_task *t = current_task;
	int err = park_check(t);

	if (err)
		return err;
	t->state = RILL__TASK_READY;
	rill__list_add_tail(&t->loop->ready, &t->ready_link);
	task_suspend(t);
	return 0;
}

/* now + ns, saturating at RILL_TIME_NEVER: a huge timeout means "never",
 * not a wrapped-around time in the past (the plain sum used to wrap, so
 * rill_sleep_ns(UINT64_MAX - 1) returned at once). */
static rill_time time_after(rill_time ns)
{
	rill_time now = rill_now();

	return ns >= RILL_TIME_NEVER - now ? RILL_TIME_NEVER : now + ns;
}

int rill_sleep_ns(rill_time ns)
{
	rill__detail_clear();
	struct rill__wait w = { 0 };

	if (!current_task)
		return -EPERM;
	if (ns == 0)
		return rill_yield();
	w.until = time_after(ns);
	return rill__park(&w);
}

int rill_sleep_ms(uint64_t ms)
{
	rill__detail_clear();
	/* Saturate: ms * 10^6 must not wrap either. */
	if (ms > RILL_TIME_NEVER / RILL_NSEC_PER_MSEC)
		return rill_sleep_ns(RILL_TIME_NEVER);
	return rill_sleep_ns(ms * RILL_NSEC_PER_MSEC);
}

rill_time rill_deadline_push(rill_time timeout_ns)
{
	rill_task *t = current_task;
	rill_time old, when;

	if (!t)
		return RILL_TIME_NEVER;
	old = t->deadline;
	when = time_after(timeout_ns);
	if (when < old)
		t->deadline = when;
	return old;
}

void rill_deadline_pop(rill_time saved)
{
	if (current_task)
		current_task->deadline = saved;
}

bool rill_deadline_expired(void)
{
	rill_task *t = current_task;

	return t && t->deadline != RILL_TIME_NEVER && t->deadline <= rill_now();
}

/* ---- waiting for one kernel operation ------------------------------ */

struct opwait {
	struct rill__op op;
	struct rill__op cancel;
	struct rill__wait wait;
	int res;
	unsigned flags;
	int pending;		/* CQEs still to come: the op's, the cancel's */
};

static void opwait_settle(struct opwait *ow)
{
	if (--ow->pending == 0)
		rill__wake(ow->wait.task, 0);
}

static void opwait_done(struct rill__op *op, int res, unsigned flags)
{
	struct opwait *ow = rill__container_of(op, struct opwait, op);

	ow->res = res;
	ow->flags = flags;
	opwait_settle(ow);
}

static void opwait_cancel_done(struct rill__op *op, int res, unsigned flags)
{
	(void)res;
	(void)flags;
	opwait_settle(rill__container_of(op, struct opwait, cancel));
}

/* The task stays parked until the op's CQE is in: the op writes into this
 * frame (its result, and for reads the buffer) until then. */
static void opwait_interrupt(struct rill__wait *w, int reason)
{
	struct opwait *ow = rill__container_of(w, struct opwait, wait);

	(void)reason;
	ow->pending++;
	rill__op_cancel(w->task->loop, &ow->op, &ow->cancel);
}

int rill__op_wait(struct io_uring_sqe *sqe, unsigned *flagsp)
{
	rill_task *t = current_task;
	struct opwait ow = {
		.op.complete = opwait_done,
		.cancel.complete = opwait_cancel_done,
		.wait = { .interrupt = opwait_interrupt, .until = RILL_TIME_NEVER },
		.pending = 1,
	};
	int err = park_check(t);

	if (err) {
		/* An SQE cannot be taken back: make it a no-op. */
		io_uring_prep_nop(sqe);
		io_uring_sqe_set_data64(sqe, 0);
		return err;
	}
	io_uring_sqe_set_data(sqe, &ow.op);
	rill__op_started(t->loop);
	rill__park(&ow.wait);
	rill__op_finished(t->loop);
	if (ow.wait.interrupted) {
		if (ow.res == -ECANCELED || ow.res == -EINTR)
			return ow.wait.interrupted;
		/* The op won the race: keep its result and deliver the
		 * cancellation at the next wait instead. */
		if (ow.wait.interrupted == -ECANCELED)
			t->cancel_pending = true;
	}
	if (flagsp)
		*flagsp = ow.flags;
	return ow.res;
}
