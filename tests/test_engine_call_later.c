/* SPDX-License-Identifier: MIT */
/* Callback timers (call_later, call_at): order, equal times FIFO, cancel before and after firing, times in the past, many timers, handles after the loop. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rill.h"
#include "tests/helpers.h"

TestSuite(engine_call_later, .init = loop_setup, .fini = loop_teardown);

#define MAXLOG 16

struct log {
	int order[MAXLOG];
	rill_time at[MAXLOG];
	int n;
};

struct entry {
	struct log *log;
	int id;
	bool in_task;
};

static void record(void *arg)
{
	struct entry *e = arg;

	cr_assert_lt(e->log->n, MAXLOG);
	e->log->at[e->log->n] = rill_now();
	e->log->order[e->log->n++] = e->id;
	e->in_task = rill_task_current() != NULL;
}

Test(engine_call_later, fire_in_time_order_not_early)
{
	static const int delays_ms[] = { 30, 10, 20, 0 };
	struct log log = { 0 };
	struct entry e[4];
	rill_time t0 = rill_now();

	for (int i = 0; i < 4; i++) {
		e[i] = (struct entry){ .log = &log, .id = delays_ms[i] };
		cr_assert_eq(rill_loop_call_later(loop, (rill_time)delays_ms[i] * MS,
						  record, &e[i], NULL), 0);
	}
	cr_assert_eq(rill_loop_run(loop), 0);	/* returns once all fired */
	cr_assert_eq(log.n, 4);
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(log.order[i], i * 10, "position %d: %d ms", i, log.order[i]);
		cr_assert_geq(log.at[i] - t0, (rill_time)log.order[i] * MS, "early");
	}
	cr_assert(!e[0].in_task, "callbacks run outside tasks");
}

#define SAME 200

struct fifo {
	int next;
	int bad;
};

struct fifo_entry {
	struct fifo *f;
	int id;
};

static void in_order(void *arg)
{
	struct fifo_entry *e = arg;

	if (e->id != e->f->next)
		e->f->bad++;
	e->f->next++;
}

static void count(void *arg)
{
	(*(int *)arg)++;
}

Test(engine_call_later, equal_call_at_times_fifo_strict)
{
	struct fifo f = { 0 };
	struct fifo_entry e[SAME];
	rill_time when = rill_now() + 2 * MS;

	for (int i = 0; i < SAME; i++) {
		e[i] = (struct fifo_entry){ &f, i };
		cr_assert_eq(rill_loop_call_at(loop, when, in_order, &e[i], NULL), 0);
	}
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(f.next, SAME);
	cr_assert_eq(f.bad, 0, "%d callbacks out of order", f.bad);
}

Test(engine_call_later, cancel_before_and_after_firing)
{
	rill_timer_handle *a, *b;
	int ran_a = 0, ran_b = 0;
	rill_time t0 = rill_now();

	cr_assert_eq(rill_loop_call_later(loop, 1 * MS, count, &ran_a, &a), 0);
	cr_assert_eq(rill_loop_call_later(loop, 20 * MS, count, &ran_b, &b), 0);
	cr_assert_geq(rill_timer_handle_when(b), t0 + 20 * MS);
	cr_assert(!rill_timer_handle_cancelled(b));
	cr_assert_eq(rill_timer_handle_cancel(b), 1);
	cr_assert(rill_timer_handle_cancelled(b));
	cr_assert_eq(rill_timer_handle_cancel(b), 0, "cancelled twice");
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_lt(rill_now() - t0, 15 * MS + 500 * MS, "ran to the cancelled time?");
	cr_assert_eq(ran_a, 1);
	cr_assert_eq(ran_b, 0);
	/* a fired: still valid, not cancelled, cancelling is a no-op */
	cr_assert(!rill_timer_handle_cancelled(a));
	cr_assert_eq(rill_timer_handle_cancel(a), 0);
	cr_assert(rill_timer_handle_cancelled(a), "asyncio: cancelled() after cancel()");
	rill_timer_handle_free(a);
	rill_timer_handle_free(b);
}

Test(engine_call_later, cancelled_timer_does_not_keep_the_loop)
{
	rill_timer_handle *h;
	int ran = 0;
	rill_time t0 = rill_now();

	cr_assert_eq(rill_loop_call_later(loop, 3600 * RILL_NSEC_PER_SEC, count, &ran, &h), 0);
	cr_assert_eq(rill_timer_handle_cancel(h), 1);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_lt(rill_now() - t0, 1000 * MS);
	rill_timer_handle_free(h);
	cr_assert_eq(ran, 0);
}

Test(engine_call_later, a_time_in_the_past_runs_at_once)
{
	int ran = 0;
	rill_time t0 = rill_now();

	cr_assert_eq(rill_loop_call_at(loop, 0, count, &ran, NULL), 0);
	cr_assert_eq(rill_loop_call_at(loop, t0 - 1, count, &ran, NULL), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(ran, 2);
	cr_assert_lt(rill_now() - t0, 100 * MS);
}

/* A callback that frees its own handle, and one that schedules again. */
struct self {
	rill_timer_handle *h;
	int rounds;
};

static void free_self(void *arg)
{
	struct self *s = arg;

	rill_timer_handle_free(s->h);
	s->h = NULL;
	s->rounds++;
}

static void again(void *arg)
{
	struct self *s = arg;

	if (++s->rounds < 50)
		cr_assert_eq(rill_loop_call_later(rill_loop_current(), 0, again, s, NULL), 0);
}

Test(engine_call_later, callbacks_free_their_handle_and_reschedule)
{
	struct self a = { 0 }, b = { 0 };

	cr_assert_eq(rill_loop_call_later(loop, 1 * MS, free_self, &a, &a.h), 0);
	cr_assert_eq(rill_loop_call_later(loop, 0, again, &b, NULL), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(a.rounds, 1);
	cr_assert_null(a.h);
	cr_assert_eq(b.rounds, 50);
}

/* A sleeping task and callbacks share the heap: at equal times, the
 * order of scheduling. */
static int sleeper(void *arg)
{
	struct fifo_entry *e = arg;

	rill_sleep_ms(5);
	in_order(e);
	return 0;
}

Test(engine_call_later, timers_and_tasks_share_one_clock)
{
	struct fifo f = { 0 };
	struct fifo_entry e[3] = { { &f, 0 }, { &f, 1 }, { &f, 2 } };
	rill_task *t;

	cr_assert_eq(rill_loop_call_later(loop, 1 * MS, in_order, &e[0], NULL), 0);
	cr_assert_eq(rill_spawn(loop, sleeper, &e[1], &t), 0);
	cr_assert_eq(rill_loop_call_later(loop, 30 * MS, in_order, &e[2], NULL), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(rill_task_join(t, NULL), 0);
	cr_assert_eq(f.next, 3);
	cr_assert_eq(f.bad, 0);
}

#define MANY 10000

struct many {
	unsigned char fired[MANY];
	rill_time last_when;
	int out_of_order;
	int total;
	rill_timer_handle *h[MANY];
};

static struct many *many_state;

static void many_fire(void *arg)
{
	struct many *m = many_state;
	size_t i = (size_t)(uintptr_t)arg;
	rill_time when = rill_timer_handle_when(m->h[i]);

	m->fired[i]++;
	m->total++;
	if (when < m->last_when)
		m->out_of_order++;
	m->last_when = when;
	if (rill_now() < when)
		m->out_of_order++;
}

Test(engine_call_later, ten_thousand_timers_fire_once_each_in_order)
{
	struct many *m = calloc(1, sizeof(*m));
	unsigned seed = 12345;
	int cancelled = 0;

	cr_assert_not_null(m);
	many_state = m;
	for (size_t i = 0; i < MANY; i++) {
		rill_time d = (rill_time)((seed = seed * 1103515245u + 12345u) >> 8) % (30 * MS);

		cr_assert_eq(rill_loop_call_later(loop, d, many_fire, (void *)(uintptr_t)i,
						  &m->h[i]), 0);
	}
	for (size_t i = 0; i < MANY; i += 10)	/* every tenth: cancelled */
		cancelled += rill_timer_handle_cancel(m->h[i]);
	cr_assert_eq(cancelled, MANY / 10);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(m->total, MANY - MANY / 10);
	for (size_t i = 0; i < MANY; i++) {
		cr_assert_eq(m->fired[i], i % 10 ? 1 : 0, "timer %zu fired %d times",
			     i, m->fired[i]);
		rill_timer_handle_free(m->h[i]);
	}
	cr_assert_eq(m->out_of_order, 0);
	free(m);
}

Test(engine_call_later, loop_free_cancels_pending_timers)
{
	rill_loop *l;
	rill_timer_handle *h;
	int ran = 0;

	cr_assert_eq(rill_loop_new(NULL, &l), 0);
	cr_assert_eq(rill_loop_call_later(l, 3600 * RILL_NSEC_PER_SEC, count, &ran, &h), 0);
	cr_assert_eq(rill_loop_call_later(l, 3600 * RILL_NSEC_PER_SEC, count, &ran, NULL), 0);
	cr_assert_eq(rill_loop_free(l), 0);
	/* The handle outlives its loop until freed. */
	cr_assert(rill_timer_handle_cancelled(h));
	cr_assert_eq(rill_timer_handle_cancel(h), 0);
	rill_timer_handle_free(h);
	cr_assert_eq(ran, 0);
}

static void *call_from_thread(void *arg)
{
	static int ran;

	return (void *)(intptr_t)rill_loop_call_later(arg, 0, count, &ran, NULL);
}

Test(engine_call_later, invalid_arguments)
{
	int ran = 0;
	pthread_t th;
	void *res;

	cr_assert_eq(rill_loop_call_later(NULL, 0, count, &ran, NULL), -EINVAL);
	cr_assert_neq(strlen(rill_error_detail()), 0);
	cr_assert_eq(rill_loop_call_later(loop, 0, NULL, &ran, NULL), -EINVAL);
	cr_assert_eq(rill_loop_call_at(loop, 0, NULL, &ran, NULL), -EINVAL);
	cr_assert_eq(rill_timer_handle_cancel(NULL), -EINVAL);
	cr_assert(rill_timer_handle_cancelled(NULL));
	cr_assert_eq(rill_timer_handle_when(NULL), RILL_TIME_NEVER);
	rill_timer_handle_free(NULL);
	cr_assert_eq(pthread_create(&th, NULL, call_from_thread, loop), 0);
	pthread_join(th, &res);
	cr_assert_eq((int)(intptr_t)res, -EPERM);
	/* A huge delay saturates instead of wrapping into the past. */
	rill_timer_handle *h;

	cr_assert_eq(rill_loop_call_later(loop, RILL_TIME_NEVER, count, &ran, &h), 0);
	cr_assert_geq(rill_timer_handle_when(h), rill_now() + 3600 * RILL_NSEC_PER_SEC);
	rill_timer_handle_free(h);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(ran, 0);
}
