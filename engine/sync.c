/* SPDX-License-Identifier: MIT */
/* engine/sync.c: events, queues and loop threads shared between loops.
 *
 * A task waiting on a shared object parks on its own loop; the object
 * keeps a list of such waiters under its mutex. Whoever signals takes the
 * waiter off the list and asks the waiter's loop, through
 * rill_loop_call_soon_threadsafe(), to wake it. A cancellation racing with
 * that signal must not return early: the callback already posted points
 * at the waiter on the task's stack. So the waiter has three states, and
 * an interrupt only wakes a waiter that is still on the list.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/loop.h"
#include "rill/sync.h"

enum xstate { XW_WAITING, XW_SIGNALLED, XW_DONE };

struct xwaiter {
	struct rill__wait wait;
	struct rill__list link;	/* in the object's list, under its lock */
	pthread_mutex_t *lock;
	rill_loop *loop;
	enum xstate state;
};

static void xwake_cb(void *arg)
{
	struct xwaiter *w = arg;

	w->state = XW_DONE;
	rill__wake(w->wait.task, 0);
}

/* Under the object's lock. */
static void xsignal(struct xwaiter *w)
{
	rill__list_del(&w->link);
	w->state = XW_SIGNALLED;
	if (rill_loop_call_soon_threadsafe(w->loop, xwake_cb, w) < 0)
		abort();	/* a waiter that can never wake is worse */
}

static void xsignal_one(struct rill__list *list)
{
	if (!rill__list_empty(list))
		xsignal(rill__container_of(list->next, struct xwaiter, link));
}

static void xsignal_all(struct rill__list *list)
{
	while (!rill__list_empty(list))
		xsignal(rill__container_of(list->next, struct xwaiter, link));
}

static void xwait_interrupt(struct rill__wait *wait, int reason)
{
	struct xwaiter *w = rill__container_of(wait, struct xwaiter, wait);
	bool wake;

	pthread_mutex_lock(w->lock);
	wake = w->state == XW_WAITING;
	if (wake) {
		rill__list_del(&w->link);
		w->state = XW_DONE;
	}
	pthread_mutex_unlock(w->lock);
	if (wake)
		rill__wake(wait->task, reason);
}

/* Called with lock held, which it releases; returns with it released.
 * 0 once signalled, or -ECANCELED / -ETIMEDOUT. */
static int xwait(struct rill__list *list, pthread_mutex_t *lock)
{
	struct xwaiter w = {
		.wait = { .interrupt = xwait_interrupt, .until = RILL_TIME_NEVER },
		.lock = lock,
		.loop = rill_loop_current(),
		.state = XW_WAITING,
	};
	rill_task *t = rill__current();
	int err;

	if (!t) {
		pthread_mutex_unlock(lock);
		return -EPERM;
	}
	rill__list_add_tail(list, &w.link);
	pthread_mutex_unlock(lock);
	err = rill__park(&w.wait);
	if (err < 0 && w.state != XW_DONE) {
		/* Not parked at all (cancellation pending, deadline passed):
		 * unlist; if a signal got there first, its wake-up is posted
		 * and must land before this frame goes, so wait for it with
		 * the deadline lifted (a passed one would return at once). */
		rill_time saved = t->deadline;

		xwait_interrupt(&w.wait, err);
		t->deadline = RILL_TIME_NEVER;
		while (w.state == XW_SIGNALLED)
			rill__park(&w.wait);
		t->deadline = saved;
	}
	if (err == 0 && w.wait.interrupted == -ECANCELED)
		t->cancel_pending = true;	/* the signal won: cancel later */
	return err;
}

/* ---- events -------------------------------------------------------- */

struct rill_event {
	pthread_mutex_t lock;
	bool set;
	struct rill__list waiters;
};

int rill_event_new(rill_event **evp)
{
	rill__detail_clear();
	rill_event *ev;

	if (!evp)
		return -EINVAL;
	ev = calloc(1, sizeof(*ev));
	if (!ev)
		return -ENOMEM;
	pthread_mutex_init(&ev->lock, NULL);
	rill__list_init(&ev->waiters);
	*evp = ev;
	return 0;
}

void rill_event_free(rill_event *ev)
{
	if (!ev)
		return;
	pthread_mutex_destroy(&ev->lock);
	free(ev);
}

void rill_event_set(rill_event *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->lock);
	ev->set = true;
	xsignal_all(&ev->waiters);
	pthread_mutex_unlock(&ev->lock);
}

void rill_event_clear(rill_event *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->lock);
	ev->set = false;
	pthread_mutex_unlock(&ev->lock);
}

bool rill_event_is_set(const rill_event *ev)
{
	bool set;

	if (!ev)
		return false;
	pthread_mutex_lock((pthread_mutex_t *)&ev->lock);
	set = ev->set;
	pthread_mutex_unlock((pthread_mutex_t *)&ev->lock);
	return set;
}

int rill_event_wait(rill_event *ev)
{
	rill__detail_clear();
	int err;

	if (!ev)
		return -EINVAL;
	for (;;) {
		pthread_mutex_lock(&ev->lock);
		if (ev->set) {
			pthread_mutex_unlock(&ev->lock);
			return 0;
		}
		if ((err = xwait(&ev->waiters, &ev->lock)) < 0)
			return err;
	}
}

/* ---- queues -------------------------------------------------------- */

struct rill_queue {
	pthread_mutex_t lock;
	void **items;
	size_t cap, head, len;
	bool closed;
	struct rill__list getters, putters;
};

int rill_queue_new(size_t capacity, rill_queue **qp)
{
	rill__detail_clear();
	rill_queue *q;

	if (!qp || capacity == 0 || capacity > RILL_QUEUE_CAPACITY_MAX)
		return rill__set_detail(-EINVAL, "queue capacity must be 1 to %zu",
					(size_t)RILL_QUEUE_CAPACITY_MAX);
	q = calloc(1, sizeof(*q));
	if (!q || !(q->items = calloc(capacity, sizeof(void *)))) {
		free(q);
		return -ENOMEM;
	}
	q->cap = capacity;
	pthread_mutex_init(&q->lock, NULL);
	rill__list_init(&q->getters);
	rill__list_init(&q->putters);
	*qp = q;
	return 0;
}

void rill_queue_free(rill_queue *q)
{
	if (!q)
		return;
	pthread_mutex_destroy(&q->lock);
	free(q->items);
	free(q);
}

/* Under the lock: 0, -EAGAIN (full) or RILL_ECLOSED. */
static int queue_push(rill_queue *q, void *item)
{
	if (q->closed)
		return RILL_ECLOSED;
	if (q->len == q->cap)
		return -EAGAIN;
	q->items[(q->head + q->len++) % q->cap] = item;
	xsignal_one(&q->getters);
	return 0;
}

static int queue_pop(rill_queue *q, void **itemp)
{
	if (q->len == 0)
		return q->closed ? RILL_ECLOSED : -EAGAIN;
	*itemp = q->items[q->head];
	q->head = (q->head + 1) % q->cap;
	q->len--;
	xsignal_one(&q->putters);
	return 0;
}

/* A put (*itemp goes in) or a get (*itemp comes out). While the queue is
 * full for a put, or empty for a get, it waits (wait) or answers -EAGAIN. */
static int queue_op(rill_queue *q, bool put, void **itemp, bool wait)
{
	int err;

	for (;;) {
		pthread_mutex_lock(&q->lock);
		err = put ? queue_push(q, *itemp) : queue_pop(q, itemp);
		if (err != -EAGAIN || !wait) {
			pthread_mutex_unlock(&q->lock);
			return err;
		}
		if ((err = xwait(put ? &q->putters : &q->getters, &q->lock)) < 0)
			return err;
	}
}

int rill_queue_try_put(rill_queue *q, void *item)
{
	rill__detail_clear();
	return q ? queue_op(q, true, &item, false) : -EINVAL;
}

int rill_queue_try_get(rill_queue *q, void **itemp)
{
	rill__detail_clear();
	return q && itemp ? queue_op(q, false, itemp, false) : -EINVAL;
}

int rill_queue_put(rill_queue *q, void *item)
{
	rill__detail_clear();
	return q ? queue_op(q, true, &item, true) : -EINVAL;
}

int rill_queue_get(rill_queue *q, void **itemp)
{
	rill__detail_clear();
	return q && itemp ? queue_op(q, false, itemp, true) : -EINVAL;
}

void rill_queue_close(rill_queue *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->lock);
	q->closed = true;
	xsignal_all(&q->getters);
	xsignal_all(&q->putters);
	pthread_mutex_unlock(&q->lock);
}

size_t rill_queue_len(const rill_queue *q)
{
	size_t n;

	if (!q)
		return 0;
	pthread_mutex_lock((pthread_mutex_t *)&q->lock);
	n = q->len;
	pthread_mutex_unlock((pthread_mutex_t *)&q->lock);
	return n;
}

/* ---- threads ------------------------------------------------------- */

struct rill_thread {
	pthread_t th;
	rill_loop *loop;
	const rill_loop_options *opts;
	int cpu;
	rill_task_fn fn;
	void *arg;
	int result;
	int start_err;
	char start_detail[256];	/* rill_error_detail() of a failed start */
	bool started;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	rill_event *done;
};

int rill_cpu_count(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (int)n : 1;
}

static void thread_started(rill_thread *t, int err)
{
	pthread_mutex_lock(&t->lock);
	if (err < 0)	/* the detail is per thread: carry it to the starter */
		snprintf(t->start_detail, sizeof(t->start_detail), "%s",
			 rill_error_detail());
	t->start_err = err;
	t->started = true;
	pthread_cond_signal(&t->cond);
	pthread_mutex_unlock(&t->lock);
}

static void *thread_main(void *arg)
{
	rill_thread *t = arg;
	rill_task *task;
	int err = 0;

	if (t->cpu >= 0) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(t->cpu, &set);
		err = -pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
		if (err < 0)
			rill__set_detail(err, "cannot pin the thread to CPU %d: %s",
					 t->cpu, strerror(-err));
	}
	if (err == 0)
		err = rill_loop_new(t->opts, &t->loop);
	if (err == 0 && (err = rill_spawn(t->loop, t->fn, t->arg, &task)) < 0)
		rill_loop_free(t->loop);
	thread_started(t, err);	/* t->opts is the caller's no longer */
	if (err < 0)
		return NULL;
	rill_task_join(task, &t->result);
	rill_loop_free(t->loop);
	rill_event_set(t->done);
	return NULL;
}

int rill_thread_start(const rill_loop_options *opts, int cpu, rill_task_fn fn,
		      void *arg, rill_thread **threadp)
{
	rill__detail_clear();
	rill_thread *t;
	int err;

	if (!threadp || !fn)
		return rill__set_detail(-EINVAL, "rill_thread_start needs fn and threadp");
	if (cpu < -1 || cpu >= CPU_SETSIZE || cpu >= sysconf(_SC_NPROCESSORS_CONF))
		return rill__set_detail(-EINVAL, "CPU %d: this machine has CPUs 0 to %ld",
					cpu, sysconf(_SC_NPROCESSORS_CONF) - 1);
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if ((err = rill_event_new(&t->done)) < 0) {
		free(t);
		return err;
	}
	*t = (rill_thread){ .opts = opts, .cpu = cpu, .fn = fn, .arg = arg,
			    .done = t->done };
	pthread_mutex_init(&t->lock, NULL);
	pthread_cond_init(&t->cond, NULL);
	if ((err = pthread_create(&t->th, NULL, thread_main, t)) != 0) {
		err = -err;
		goto fail;
	}
	/* Wait for the loop: its creation error is the caller's to see. */
	pthread_mutex_lock(&t->lock);
	while (!t->started)
		pthread_cond_wait(&t->cond, &t->lock);
	pthread_mutex_unlock(&t->lock);
	if ((err = t->start_err) < 0) {
		pthread_join(t->th, NULL);
		rill__set_detail(err, "%s", t->start_detail);
		goto fail;
	}
	*threadp = t;
	return 0;
fail:
	rill_event_free(t->done);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return err;
}

rill_loop *rill_thread_loop(const rill_thread *t)
{
	return t ? t->loop : NULL;
}

int rill_thread_join(rill_thread *t, int *resultp)
{
	rill__detail_clear();
	int err;

	if (!t)
		return -EINVAL;
	if (rill__current() && (err = rill_event_wait(t->done)) < 0)
		return err;
	pthread_join(t->th, NULL);
	if (resultp)
		*resultp = t->result;
	rill_event_free(t->done);
	pthread_cond_destroy(&t->cond);
	pthread_mutex_destroy(&t->lock);
	free(t);
	return 0;
}
