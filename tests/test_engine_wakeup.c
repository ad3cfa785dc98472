/* SPDX-License-Identifier: MIT */
/* Callbacks: call_soon order and context, call_soon_threadsafe from many threads, waking a blocked loop. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#include "engine/loop.h"
#include "rill/loop.h"
#include "rill/task.h"
#include "tests/helpers.h"


TestSuite(engine_wakeup, .init = loop_setup, .fini = loop_teardown);

/* ---- call_soon ------------------------------------------------------ */

struct log {
	int v[64];
	int n;
};

static struct log cblog;

static void log_cb(void *arg)
{
	cr_assert_null(rill_task_current(), "callbacks run outside tasks");
	cblog.v[cblog.n++] = (int)(intptr_t)arg;
}

static void requeue_cb(void *arg)
{
	log_cb(arg);
	/* Queued by a callback: runs at the next iteration, after 3. */
	cr_assert_eq(rill_loop_call_soon(loop, log_cb, (void *)100), 0);
}

Test(engine_wakeup, call_soon_runs_in_order_outside_tasks)
{
	cblog.n = 0;
	cr_assert_eq(rill_loop_call_soon(loop, log_cb, (void *)1), 0);
	cr_assert_eq(rill_loop_call_soon(loop, requeue_cb, (void *)2), 0);
	cr_assert_eq(rill_loop_call_soon(loop, log_cb, (void *)3), 0);
	cr_assert_eq(cblog.n, 0, "ran before the loop did");
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(cblog.n, 4);
	cr_assert_eq(cblog.v[0], 1);
	cr_assert_eq(cblog.v[1], 2);
	cr_assert_eq(cblog.v[2], 3);
	cr_assert_eq(cblog.v[3], 100);
	cr_assert_eq(rill_loop_call_soon(NULL, log_cb, NULL), -EINVAL);
	cr_assert_eq(rill_loop_call_soon(loop, NULL, NULL), -EINVAL);
	cr_assert_eq(rill_loop_call_soon_threadsafe(NULL, log_cb, NULL), -EINVAL);
}

static int task_sets(void *arg)
{
	*(int *)arg = 1;
	return 0;
}

static void spawn_cb(void *arg)
{
	cr_assert_eq(rill_spawn(loop, task_sets, arg, NULL), 0);
}

static int call_soon_from_task(void *arg)
{
	cblog.n = 0;
	cr_assert_eq(rill_loop_call_soon(loop, log_cb, (void *)7), 0);
	cr_assert_eq(rill_loop_call_soon(loop, spawn_cb, arg), 0);
	cr_assert_eq(cblog.n, 0, "a callback ran inside the task");
	cr_assert_eq(rill_yield(), 0);
	cr_assert_eq(cblog.n, 1);
	return 0;
}

Test(engine_wakeup, call_soon_from_a_task_may_spawn)
{
	int spawned = 0;

	cr_assert_eq(rill_spawn(loop, call_soon_from_task, &spawned, NULL), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(cblog.v[0], 7);
	cr_assert_eq(spawned, 1);
}

/* ---- call_soon_threadsafe from many threads -------------------------- */

#define NTHREADS 4
#define PER_THREAD 10000

static struct {
	pthread_t loop_thread;
	int next[NTHREADS];	/* next sequence number expected per thread */
	atomic_int total;
	int wrong_thread, out_of_order;
} ts;

static void ts_cb(void *arg)
{
	uintptr_t v = (uintptr_t)arg;
	int th = (int)(v >> 20), seq = (int)(v & 0xfffff);

	if (!pthread_equal(pthread_self(), ts.loop_thread))
		ts.wrong_thread++;
	if (seq != ts.next[th])
		ts.out_of_order++;
	ts.next[th] = seq + 1;
	atomic_fetch_add(&ts.total, 1);
}

static void *producer(void *arg)
{
	uintptr_t th = (uintptr_t)arg;

	for (uintptr_t i = 0; i < PER_THREAD; i++) {
		if (rill_loop_call_soon_threadsafe(loop, ts_cb,
						   (void *)(th << 20 | i)) < 0)
			return (void *)1;
		if (i % 1000 == 0)
			sched_yield();
	}
	return NULL;
}

/* Keeps the loop alive until every callback has run (bounded: 10 s). */
static int wait_for_all(void *arg)
{
	(void)arg;
	for (int i = 0; i < 10000 && atomic_load(&ts.total) < NTHREADS * PER_THREAD; i++)
		cr_assert_eq(rill_sleep_ms(1), 0);
	return 0;
}

Test(engine_wakeup, threadsafe_from_four_threads)
{
	pthread_t th[NTHREADS];

	ts.loop_thread = pthread_self();
	cr_assert_eq(rill_spawn(loop, wait_for_all, NULL, NULL), 0);
	for (uintptr_t i = 0; i < NTHREADS; i++)
		cr_assert_eq(pthread_create(&th[i], NULL, producer, (void *)i), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	for (int i = 0; i < NTHREADS; i++) {
		void *ret;

		pthread_join(th[i], &ret);
		cr_assert_null(ret);
	}
	cr_assert_eq(atomic_load(&ts.total), NTHREADS * PER_THREAD);
	cr_assert_eq(ts.wrong_thread, 0);
	cr_assert_eq(ts.out_of_order, 0);
	for (int i = 0; i < NTHREADS; i++)
		cr_assert_eq(ts.next[i], PER_THREAD);
}

Test(engine_wakeup, threadsafe_before_run)
{
	cblog.n = 0;
	cr_assert_eq(rill_loop_call_soon_threadsafe(loop, log_cb, (void *)5), 0);
	cr_assert_eq(rill_loop_call_soon_threadsafe(loop, log_cb, (void *)6), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(cblog.n, 2);
	cr_assert_eq(cblog.v[0], 5);
	cr_assert_eq(cblog.v[1], 6);
}

/* ---- waking a loop blocked in io_uring_enter ------------------------- */

static struct {
	rill_task *sleeper;
	int sleep_res;
	rill_time t_cb;
	uint64_t iterations_at_cb;
} wk;

static int sleep_10s(void *arg)
{
	(void)arg;
	wk.sleep_res = rill_sleep_ms(10000);
	return 0;
}

static void cancel_sleeper(void *arg)
{
	rill_loop_stats st = RILL_LOOP_STATS_INIT;

	(void)arg;
	rill_loop_get_stats(loop, &st);
	wk.iterations_at_cb = st.iterations;
	wk.t_cb = rill_now();
	cr_assert_eq(rill_task_cancel(wk.sleeper), 0);
}

static void *wake_later(void *arg)
{
	(void)arg;
	usleep(50 * 1000);
	return (void *)(intptr_t)rill_loop_call_soon_threadsafe(loop,
							cancel_sleeper, NULL);
}

Test(engine_wakeup, threadsafe_wakes_a_blocked_loop)
{
	rill_time t0 = rill_now(), dt;
	pthread_t th;
	void *ret;

	cr_assert_eq(rill_spawn(loop, sleep_10s, NULL, &wk.sleeper), 0);
	cr_assert_eq(pthread_create(&th, NULL, wake_later, NULL), 0);
	cr_assert_eq(rill_task_join(wk.sleeper, NULL), 0);
	dt = rill_now() - t0;
	pthread_join(th, &ret);
	cr_assert_eq((int)(intptr_t)ret, 0);
	cr_assert_eq(wk.sleep_res, -ECANCELED);
	cr_assert_geq(dt, 50 * MS);
	cr_assert_lt(dt, 1000 * MS, "woken after %llu ms",
		     (unsigned long long)(dt / MS));
	/* It slept in the kernel meanwhile, rather than spinning. */
	cr_assert_lt(wk.iterations_at_cb, 20, "%llu iterations while blocked",
		     (unsigned long long)wk.iterations_at_cb);
}
