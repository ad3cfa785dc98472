/* SPDX-License-Identifier: MIT */
/* Cross-loop primitives: loop threads, events and queues between tasks of different loops. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>

#include "rill.h"

#define PRODUCERS 4
#define ITEMS 20000

/* ---- threads ------------------------------------------------------- */

static int return_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

Test(engine_sync, thread_runs_task_and_returns_result, .timeout = 30)
{
	rill_thread *t;
	int result = 0;

	cr_assert_eq(rill_thread_start(NULL, -1, return_arg, (void *)(intptr_t)42, &t), 0);
	cr_assert_not_null(rill_thread_loop(t));
	cr_assert_eq(rill_thread_join(t, &result), 0);
	cr_assert_eq(result, 42);
}

Test(engine_sync, thread_start_rejects_bad_arguments)
{
	rill_thread *t;

	cr_assert_eq(rill_thread_start(NULL, -1, return_arg, NULL, NULL), -EINVAL);
	cr_assert_eq(rill_thread_start(NULL, -1, NULL, NULL, &t), -EINVAL);
	cr_assert_eq(rill_thread_start(RILL_LOOP_OPTIONS(.buf_count = 3), -1, return_arg,
				       NULL, &t), -EINVAL);
	cr_assert_gt(rill_cpu_count(), 0);
}

/* ---- events -------------------------------------------------------- */

struct ev_pair {
	rill_event *go, *done;
	atomic_int woken;
};

static int event_waiter(void *arg)
{
	struct ev_pair *p = arg;
	int err = rill_event_wait(p->go);

	if (err == 0)
		atomic_fetch_add(&p->woken, 1);
	return err;
}

static int waiter_thread(void *arg)
{
	struct ev_pair *p = arg;
	rill_task *t[10];
	int result, bad = 0;

	for (int i = 0; i < 10; i++)
		rill_spawn(rill_loop_current(), event_waiter, p, &t[i]);
	rill_event_set(p->done);	/* the tasks are about to wait */
	for (int i = 0; i < 10; i++) {
		rill_task_join(t[i], &result);
		bad += result != 0;
	}
	return bad;
}

Test(engine_sync, event_set_on_one_thread_wakes_tasks_on_others, .timeout = 30)
{
	struct ev_pair p = { 0 };
	rill_thread *th[3];
	int result;

	cr_assert_eq(rill_event_new(&p.go), 0);
	cr_assert_eq(rill_event_new(&p.done), 0);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(rill_thread_start(NULL, -1, waiter_thread, &p, &th[i]), 0);
	rill_sleep_ns(0);	/* outside a task: a no-op, returns -EPERM */
	cr_assert(!rill_event_is_set(p.go));
	rill_event_set(p.go);
	for (int i = 0; i < 3; i++) {
		cr_assert_eq(rill_thread_join(th[i], &result), 0);
		cr_assert_eq(result, 0);
	}
	cr_assert_eq(atomic_load(&p.woken), 30);
	rill_event_clear(p.go);
	cr_assert(!rill_event_is_set(p.go));
	rill_event_free(p.go);
	rill_event_free(p.done);
}

static int wait_with_deadline(void *arg)
{
	rill_time saved = rill_deadline_push(20 * RILL_NSEC_PER_MSEC);
	int err = rill_event_wait(arg);

	rill_deadline_pop(saved);
	return err;
}

static int wait_plain(void *arg)
{
	return rill_event_wait(arg);
}

static int yield_once(void *arg)
{
	(void)arg;
	return rill_yield();
}

Test(engine_sync, event_wait_times_out_and_is_cancellable, .timeout = 30)
{
	rill_event *ev;
	rill_loop *loop;
	rill_task *t;
	int result;

	cr_assert_eq(rill_event_new(&ev), 0);
	cr_assert_eq(rill_loop_new(NULL, &loop), 0);
	rill_spawn(loop, wait_with_deadline, ev, &t);
	rill_task_join(t, &result);
	cr_assert_eq(result, -ETIMEDOUT);

	rill_spawn(loop, wait_plain, ev, &t);
	rill_spawn(loop, yield_once, NULL, NULL);
	cr_assert_eq(rill_task_cancel(t), 0);
	rill_task_join(t, &result);
	cr_assert_eq(result, -ECANCELED);
	rill_loop_free(loop);
	rill_event_free(ev);
}

/* ---- queues -------------------------------------------------------- */

struct qtest {
	rill_queue *q;
	int id;
	uint64_t sum;
	int count;
	int last[PRODUCERS];
	int order_errors;
};

static int producer(void *arg)
{
	struct qtest *p = arg;

	for (int i = 0; i < ITEMS; i++) {
		uintptr_t item = ((uintptr_t)p->id << 32) | (uintptr_t)(i + 1);
		int err = rill_queue_put(p->q, (void *)item);

		if (err < 0)
			return err;
	}
	return 0;
}

static int consumer(void *arg)
{
	struct qtest *c = arg;
	void *item;
	int err;

	for (int i = 0; i < PRODUCERS; i++)
		c->last[i] = 0;
	while ((err = rill_queue_get(c->q, &item)) == 0) {
		int id = (int)((uintptr_t)item >> 32);
		int seq = (int)((uintptr_t)item & 0xffffffff);

		/* One consumer: each producer's items come out in order. */
		if (seq != c->last[id] + 1)
			c->order_errors++;
		c->last[id] = seq;
		c->sum += (uint64_t)seq;
		c->count++;
	}
	return err == RILL_ECLOSED ? 0 : err;
}

Test(engine_sync, queue_between_loops_keeps_every_item_in_order, .timeout = 60)
{
	struct qtest prod[PRODUCERS], cons = { 0 };
	rill_thread *pt[PRODUCERS], *ct;
	int result;

	cr_assert_eq(rill_queue_new(64, &cons.q), 0);
	cr_assert_eq(rill_thread_start(NULL, -1, consumer, &cons, &ct), 0);
	for (int i = 0; i < PRODUCERS; i++) {
		prod[i] = (struct qtest){ .q = cons.q, .id = i };
		cr_assert_eq(rill_thread_start(NULL, -1, producer, &prod[i], &pt[i]), 0);
	}
	for (int i = 0; i < PRODUCERS; i++) {
		cr_assert_eq(rill_thread_join(pt[i], &result), 0);
		cr_assert_eq(result, 0);
	}
	rill_queue_close(cons.q);
	cr_assert_eq(rill_thread_join(ct, &result), 0);
	cr_assert_eq(result, 0);
	cr_assert_eq(cons.count, PRODUCERS * ITEMS);
	cr_assert_eq(cons.order_errors, 0);
	cr_assert_eq(cons.sum, (uint64_t)PRODUCERS * ITEMS * (ITEMS + 1) / 2);
	cr_assert_eq(rill_queue_len(cons.q), 0);
	rill_queue_free(cons.q);
}

Test(engine_sync, queue_try_calls_and_close)
{
	rill_queue *q;
	void *item;

	cr_assert_eq(rill_queue_new(0, &q), -EINVAL);
	cr_assert_eq(rill_queue_new(2, &q), 0);
	cr_assert_eq(rill_queue_try_get(q, &item), -EAGAIN);
	cr_assert_eq(rill_queue_try_put(q, (void *)1), 0);
	cr_assert_eq(rill_queue_try_put(q, (void *)2), 0);
	cr_assert_eq(rill_queue_try_put(q, (void *)3), -EAGAIN);
	cr_assert_eq(rill_queue_len(q), 2);
	rill_queue_close(q);
	cr_assert_eq(rill_queue_try_put(q, (void *)4), RILL_ECLOSED);
	cr_assert_eq(rill_queue_try_get(q, &item), 0);
	cr_assert_eq(item, (void *)1);
	cr_assert_eq(rill_queue_try_get(q, &item), 0);
	cr_assert_eq(item, (void *)2);
	cr_assert_eq(rill_queue_try_get(q, &item), RILL_ECLOSED);
	rill_queue_free(q);
}

/* A blocked put is released by a get on another thread. */
static int put_three(void *arg)
{
	rill_queue *q = arg;

	for (intptr_t i = 1; i <= 3; i++)
		if (rill_queue_put(q, (void *)i) < 0)
			return -1;
	return 0;
}

Test(engine_sync, full_queue_blocks_put_until_a_get, .timeout = 30)
{
	rill_queue *q;
	rill_thread *t;
	void *item;
	int result;

	cr_assert_eq(rill_queue_new(1, &q), 0);
	cr_assert_eq(rill_thread_start(NULL, -1, put_three, q, &t), 0);
	for (intptr_t want = 1; want <= 3; want++) {
		while (rill_queue_try_get(q, &item) == -EAGAIN)
			;
		cr_assert_eq(item, (void *)want);
	}
	cr_assert_eq(rill_thread_join(t, &result), 0);
	cr_assert_eq(result, 0);
	rill_queue_free(q);
}
