/* SPDX-License-Identifier: MIT */
/* rill_to_thread: results, a bounded pool, cancellation and deadlines while queued or running, the loop freed with calls in flight. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rill.h"
#include "tests/helpers.h"

TestSuite(engine_to_thread);

struct sq {
	int x;
	pthread_t thread;
	bool sigterm_blocked;
};

static int square(void *arg)
{
	struct sq *s = arg;
	sigset_t cur;

	s->thread = pthread_self();
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	s->sigterm_blocked = sigismember(&cur, SIGTERM);
	return s->x * s->x;
}

TASK_TEST(engine_to_thread, result_from_another_thread)
{
	struct sq s = { .x = 12 };
	int r = 0;

	cr_assert_eq(rill_to_thread(square, &s, &r), 0);
	cr_assert_eq(r, 144);
	cr_assert(!pthread_equal(s.thread, pthread_self()), "ran on the loop's thread");
	cr_assert(s.sigterm_blocked, "pool threads block asynchronous signals");
	s.x = -3;
	cr_assert_eq(rill_to_thread(square, &s, NULL), 0);
	return 0;
}

/* ---- a bounded pool ---------------------------------------------------- */

#define JOBS 24
#define POOL 3

static atomic_int running, most;

static int slow_square(void *arg)
{
	int i = (int)(intptr_t)arg, now = atomic_fetch_add(&running, 1) + 1;
	int seen = atomic_load(&most);

	while (now > seen && !atomic_compare_exchange_weak(&most, &seen, now))
		;
	usleep(20000);
	atomic_fetch_sub(&running, 1);
	return i * i;
}

static int one_job(void *arg)
{
	int r = -1, err = rill_to_thread(slow_square, arg, &r);

	return err < 0 ? err : r;
}

Test(engine_to_thread, jobs_beyond_the_pool_size_wait_their_turn)
{
	rill_task *t[JOBS];
	rill_loop *l;
	rill_time t0;

	/* Read at the pool's first use, which is in this test's process. */
	setenv("RILL_THREADPOOL_SIZE", "3", 1);
	cr_assert_eq(rill_loop_new(NULL, &l), 0);
	t0 = rill_now();
	for (int i = 0; i < JOBS; i++)
		cr_assert_eq(rill_spawn(l, one_job, (void *)(intptr_t)i, &t[i]), 0);
	for (int i = 0; i < JOBS; i++) {
		int r = -1;

		cr_assert_eq(rill_task_join(t[i], &r), 0);
		cr_assert_eq(r, i * i, "job %d: %d", i, r);
	}
	cr_assert_eq(atomic_load(&most), POOL, "at most %d at once, saw %d", POOL,
		     atomic_load(&most));
	cr_assert_geq(rill_now() - t0, (rill_time)(JOBS / POOL) * 20 * MS);
	rill_loop_free(l);
}

/* ---- cancellation ------------------------------------------------------ */

/* A call that runs until released, then says it finished. */
struct gate {
	atomic_int started, release, finished;
};

static int gated(void *arg)
{
	struct gate *g = arg;

	atomic_store(&g->started, 1);
	while (!atomic_load(&g->release))
		usleep(1000);
	atomic_store(&g->finished, 1);
	return 7;
}

static int gated_task(void *arg)
{
	int r = -1, err = rill_to_thread(gated, arg, &r);

	return err < 0 ? err : r;
}

/* Sleeps in the task until *flag or 5 s. */
static void await_flag(atomic_int *flag)
{
	for (int i = 0; i < 5000 && !atomic_load(flag); i++)
		rill_sleep_ms(1);
	cr_assert(atomic_load(flag));
}

TASK_TEST(engine_to_thread, cancel_while_running_returns_at_once)
{
	static struct gate g;	/* outlives the task: the thread finishes later */
	rill_task *t = spawn(gated_task, &g);
	rill_time t0;
	int r = 0;

	await_flag(&g.started);
	t0 = rill_now();
	cr_assert_eq(rill_task_cancel(t), 0);
	cr_assert_eq(rill_task_join(t, &r), 0);
	cr_assert_eq(r, -ECANCELED);
	cr_assert_lt(rill_now() - t0, 500 * MS, "waited for the thread");
	cr_assert(!atomic_load(&g.finished));
	atomic_store(&g.release, 1);
	await_flag(&g.finished);
	rill_sleep_ms(5);	/* the pool drops the job: ASan watches */
	return 0;
}

static int deadline_task(void *arg)
{
	rill_time saved = rill_deadline_push(20 * MS);
	int err = rill_to_thread(gated, arg, NULL);

	rill_deadline_pop(saved);
	return err;
}

TASK_TEST(engine_to_thread, deadline_while_running)
{
	static struct gate g;
	int r = 0;

	cr_assert_eq(rill_task_join(spawn(deadline_task, &g), &r), 0);
	cr_assert_eq(r, -ETIMEDOUT);
	atomic_store(&g.release, 1);
	await_flag(&g.finished);
	return 0;
}

static atomic_int never_ran;

static int must_not_run(void *arg)
{
	(void)arg;
	atomic_store(&never_ran, 1);
	return 0;
}

static int queued_task(void *arg)
{
	(void)arg;
	return rill_to_thread(must_not_run, NULL, NULL);
}

static void stop_cb(void *arg)
{
	rill_loop_stop(arg);
}

/* Runs the loop an iteration at a time until *flag (5 s at most). */
static void run_until(rill_loop *l, atomic_int *flag)
{
	for (int i = 0; i < 5000 && !atomic_load(flag); i++) {
		cr_assert_eq(rill_loop_call_later(l, 1 * MS, stop_cb, l, NULL), 0);
		rill_loop_run(l);
	}
	cr_assert(atomic_load(flag));
}

Test(engine_to_thread, cancel_while_queued_never_runs)
{
	static struct gate g;
	rill_task *blocker, *queued;
	rill_loop *l;
	int r = 0;

	setenv("RILL_THREADPOOL_SIZE", "1", 1);
	cr_assert_eq(rill_loop_new(NULL, &l), 0);
	cr_assert_eq(rill_spawn(l, gated_task, &g, &blocker), 0);
	cr_assert_eq(rill_spawn(l, queued_task, NULL, &queued), 0);
	run_until(l, &g.started);
	cr_assert_eq(rill_task_cancel(queued), 0);
	cr_assert_eq(rill_task_join(queued, &r), 0);
	cr_assert_eq(r, -ECANCELED);
	atomic_store(&g.release, 1);
	cr_assert_eq(rill_task_join(blocker, &r), 0);
	cr_assert_eq(r, 7);
	cr_assert(!atomic_load(&never_ran));
	rill_loop_free(l);
}

Test(engine_to_thread, loop_freed_with_a_call_in_flight)
{
	static struct gate g;
	rill_loop *l;
	rill_time t0;

	cr_assert_eq(rill_loop_new(NULL, &l), 0);
	cr_assert_eq(rill_spawn(l, gated_task, &g, NULL), 0);
	run_until(l, &g.started);
	t0 = rill_now();
	cr_assert_eq(rill_loop_free(l), 0);
	cr_assert_lt(rill_now() - t0, 500 * MS, "rill_loop_free waited for the call");
	cr_assert(!atomic_load(&g.finished));
	atomic_store(&g.release, 1);
	for (int i = 0; i < 5000 && !atomic_load(&g.finished); i++)
		usleep(1000);
	cr_assert(atomic_load(&g.finished));
	usleep(5000);	/* the pool frees the job after fn returns */
}

/* ---- invalid arguments ------------------------------------------------- */

Test(engine_to_thread, outside_a_task_and_null_fn)
{
	struct sq s = { .x = 2 };

	cr_assert_eq(rill_to_thread(square, &s, NULL), -EPERM);
	cr_assert_neq(strlen(rill_error_detail()), 0);
}

TASK_TEST(engine_to_thread, null_fn)
{
	cr_assert_eq(rill_to_thread(NULL, NULL, NULL), -EINVAL);
	cr_assert_neq(strlen(rill_error_detail()), 0);
	return 0;
}
