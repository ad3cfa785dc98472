/* SPDX-License-Identifier: MIT */
/* Waiting on several tasks: rill_wait (first completed, first exception, all, timeout) and rill_gather, with cancellation and misuse. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "rill.h"
#include "tests/helpers.h"

/* Sleeps sleep_ms, then returns ret; a failed sleep's error is returned
 * and kept in slept. */
struct job {
	int sleep_ms;
	int ret;
	int slept;
};

#define J(ms, r) { .sleep_ms = (ms), .ret = (r) }

static int job_fn(void *arg)
{
	struct job *j = arg;

	j->slept = j->sleep_ms ? rill_sleep_ms(j->sleep_ms) : 0;
	return j->slept < 0 ? j->slept : j->ret;
}

static void spawn_jobs(rill_task **t, struct job *j, size_t n)
{
	for (size_t i = 0; i < n; i++)
		t[i] = spawn(job_fn, &j[i]);
}

/* Joins t, which must have returned want. */
static void join_expect(rill_task *t, int want)
{
	int res = 12345;

	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, want, "result %d, want %d", res, want);
}

static uint64_t ms_since(rill_time t0)
{
	return (rill_now() - t0) / MS;
}

TASK_TEST(engine_wait, first_completed)
{
	struct job j[3] = { J(200, 1), J(10, 2), J(300, 3) };
	rill_task *t[3];
	rill_time t0 = rill_now();
	size_t ndone = 0;

	spawn_jobs(t, j, 3);
	cr_assert_eq(rill_wait(t, 3, RILL_FIRST_COMPLETED, RILL_TIME_NEVER, &ndone), 0);
	cr_assert_lt(ms_since(t0), 150);
	cr_assert_eq(ndone, 1);
	cr_assert(rill_task_done(t[1]));
	cr_assert_not(rill_task_done(t[0]));
	cr_assert_not(rill_task_done(t[2]));
	/* Already holds: returns at once, as often as asked. */
	cr_assert_eq(rill_wait(t, 3, RILL_FIRST_COMPLETED, 0, &ndone), 0);
	cr_assert_eq(ndone, 1);
	for (int i = 0; i < 3; i++)
		join_expect(t[i], i + 1);
	return 0;
}

TASK_TEST(engine_wait, first_exception)
{
	/* A cancelled task is no exception; the second one is. */
	struct job j[3] = { J(10, -ECANCELED), J(40, -EIO), J(5000, 0) };
	rill_task *t[3];
	rill_time t0 = rill_now();
	size_t ndone = 0;

	spawn_jobs(t, j, 3);
	cr_assert_eq(rill_wait(t, 3, RILL_FIRST_EXCEPTION, RILL_TIME_NEVER, &ndone), 0);
	cr_assert_geq(ms_since(t0), 35);
	cr_assert_lt(ms_since(t0), 2000);
	cr_assert_eq(ndone, 2);
	cr_assert(rill_task_done(t[0]) && rill_task_done(t[1]));
	/* Not cancelled by the wait: still sleeping. */
	cr_assert_not(rill_task_done(t[2]));
	cr_assert_eq(rill_yield(), 0);
	cr_assert_eq(j[2].slept, 0);
	cr_assert_eq(rill_task_cancel(t[2]), 0);
	join_expect(t[0], -ECANCELED);
	join_expect(t[1], -EIO);
	join_expect(t[2], -ECANCELED);
	return 0;
}

/* FIRST_EXCEPTION with no failure waits for all. */
TASK_TEST(engine_wait, first_exception_without_one_is_all)
{
	struct job j[2] = { J(10, 0), J(30, 5) };
	rill_task *t[2];
	size_t ndone = 0;

	spawn_jobs(t, j, 2);
	cr_assert_eq(rill_wait(t, 2, RILL_FIRST_EXCEPTION, RILL_TIME_NEVER, &ndone), 0);
	cr_assert_eq(ndone, 2);
	join_expect(t[0], 0);
	join_expect(t[1], 5);
	return 0;
}

TASK_TEST(engine_wait, all_completed_with_timeout)
{
	struct job j[3] = { J(10, 1), J(5000, 2), J(0, 3) };
	rill_task *t[3];
	rill_time t0 = rill_now();
	size_t ndone = 0;

	spawn_jobs(t, j, 3);
	/* A timeout is no error, and cancels nothing (asyncio.wait). */
	cr_assert_eq(rill_wait(t, 3, RILL_ALL_COMPLETED, 50 * MS, &ndone), 0);
	cr_assert_geq(ms_since(t0), 45);
	cr_assert_lt(ms_since(t0), 2000);
	cr_assert_eq(ndone, 2);
	cr_assert_not(rill_task_done(t[1]));
	/* Timeout 0 polls. */
	t0 = rill_now();
	cr_assert_eq(rill_wait(t, 3, RILL_ALL_COMPLETED, 0, &ndone), 0);
	cr_assert_lt(ms_since(t0), 20);
	cr_assert_eq(ndone, 2);
	cr_assert_eq(rill_task_cancel(t[1]), 0);
	cr_assert_eq(rill_wait(t, 3, RILL_ALL_COMPLETED, RILL_TIME_NEVER, NULL), 0);
	cr_assert(rill_task_done(t[1]));
	join_expect(t[0], 1);
	join_expect(t[1], -ECANCELED);
	join_expect(t[2], 3);
	return 0;
}

/* FIRST_COMPLETED and FIRST_EXCEPTION time out the same way: 0, with
 * what has ended counted. */
TASK_TEST(engine_wait, first_completed_and_exception_time_out)
{
	struct job j[2] = { J(5000, 0), J(10, 1) };
	rill_task *t[2];
	rill_time t0 = rill_now();
	size_t ndone = 9;

	spawn_jobs(t, j, 2);
	cr_assert_eq(rill_wait(t, 1, RILL_FIRST_COMPLETED, 30 * MS, &ndone), 0);
	cr_assert_geq(ms_since(t0), 25);
	cr_assert_lt(ms_since(t0), 2000);
	cr_assert_eq(ndone, 0);
	t0 = rill_now();
	cr_assert_eq(rill_wait(t, 2, RILL_FIRST_EXCEPTION, 30 * MS, &ndone), 0);
	cr_assert_geq(ms_since(t0), 25);
	cr_assert_eq(ndone, 1);		/* t[1] ended well: no exception */
	cr_assert(rill_task_done(t[1]));
	cr_assert_not(rill_task_done(t[0]));
	cr_assert_eq(rill_task_cancel(t[0]), 0);
	join_expect(t[0], -ECANCELED);
	join_expect(t[1], 1);
	return 0;
}

/* A task that waits on others, its result and rill_wait's kept. */
struct waiter {
	rill_task **tasks;
	size_t n;
	int when;
	rill_time deadline_ms;
	int ret;
	size_t ndone;
};

static int waiter_fn(void *arg)
{
	struct waiter *w = arg;
	rill_time saved = RILL_TIME_NEVER;

	if (w->deadline_ms)
		saved = rill_deadline_push(w->deadline_ms * MS);
	w->ret = rill_wait(w->tasks, w->n, w->when, RILL_TIME_NEVER, &w->ndone);
	if (w->deadline_ms)
		rill_deadline_pop(saved);
	return w->ret;
}

/* Cancelling the waiter ends its wait, not the tasks it waits on. */
TASK_TEST(engine_wait, cancelled_waiter)
{
	struct job j[2] = { J(5000, 0), J(5000, 0) };
	rill_task *t[2], *wt;
	struct waiter w = { .tasks = t, .n = 2, .when = RILL_FIRST_COMPLETED };
	rill_time t0 = rill_now();

	spawn_jobs(t, j, 2);
	wt = spawn(waiter_fn, &w);
	cr_assert_eq(rill_sleep_ms(20), 0);
	cr_assert_eq(rill_task_cancel(wt), 0);
	join_expect(wt, -ECANCELED);
	cr_assert_lt(ms_since(t0), 2000);
	cr_assert_eq(w.ndone, 0);
	cr_assert_not(rill_task_done(t[0]) || rill_task_done(t[1]));
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(rill_task_cancel(t[i]), 0);
		join_expect(t[i], -ECANCELED);
	}
	return 0;
}

TASK_TEST(engine_wait, waiter_deadline)
{
	struct job j[1] = { J(5000, 0) };
	rill_task *t[1], *wt;
	struct waiter w = { .tasks = t, .n = 1, .when = RILL_ALL_COMPLETED,
			    .deadline_ms = 30 };
	rill_time t0 = rill_now();

	spawn_jobs(t, j, 1);
	wt = spawn(waiter_fn, &w);
	join_expect(wt, -ETIMEDOUT);
	cr_assert_geq(ms_since(t0), 25);
	cr_assert_lt(ms_since(t0), 2000);
	cr_assert_not(rill_task_done(t[0]));
	cr_assert_eq(rill_task_cancel(t[0]), 0);
	join_expect(t[0], -ECANCELED);
	return 0;
}

TASK_TEST(engine_wait, wait_invalid_arguments)
{
	struct job j[1] = { J(0, 0) };
	rill_task *t[2] = { NULL, NULL }, *self[1] = { rill_task_current() };
	rill_task *detached;
	size_t ndone = 77;

	cr_assert_eq(rill_wait(NULL, 1, RILL_ALL_COMPLETED, 0, &ndone), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "NULL"));
	cr_assert_eq(ndone, 77);
	spawn_jobs(t, j, 1);
	cr_assert_eq(rill_wait(t, 0, RILL_ALL_COMPLETED, 0, NULL), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "n is 0"));
	cr_assert_eq(rill_wait(t, 2, RILL_ALL_COMPLETED, 0, NULL), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "tasks[1] is NULL"));
	cr_assert_eq(rill_wait(t, 1, 0, 0, NULL), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "when"));
	cr_assert_eq(rill_wait(t, 1, 42, 0, NULL), -EINVAL);
	cr_assert_eq(rill_wait(self, 1, RILL_FIRST_COMPLETED, 0, NULL), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "the caller"));
	cr_assert_eq(rill_gather(self, 1, NULL, true), -EINVAL);
	cr_assert_eq(rill_gather(NULL, 1, NULL, true), -EINVAL);
	cr_assert_eq(rill_gather(t, 0, NULL, false), -EINVAL);
	cr_assert_neq(rill_error_detail()[0], '\0');
	cr_assert_eq(rill_spawn(rill_loop_current(), job_fn, &j[0], &detached), 0);
	rill_task_detach(detached);	/* still running: the handle is valid */
	cr_assert_eq(rill_wait(&detached, 1, RILL_FIRST_COMPLETED, 0, NULL), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "detached"));
	join_expect(t[0], 0);
	return 0;
}

TASK_TEST(engine_gather, results_in_order)
{
	/* They end in the reverse order of the array. */
	struct job j[4] = { J(40, 1), J(30, 2), J(20, 3), J(0, 0) };
	rill_task *t[4];
	int res[4] = { -1, -1, -1, -1 };

	spawn_jobs(t, j, 4);
	cr_assert_eq(rill_gather(t, 4, res, false), 0);
	for (int i = 0; i < 4; i++)
		cr_assert_eq(res[i], (i + 1) % 4);
	/* gather consumes nothing: the handles are joined afterwards. */
	for (int i = 0; i < 4; i++)
		join_expect(t[i], (i + 1) % 4);
	return 0;
}

TASK_TEST(engine_gather, return_exceptions)
{
	struct job j[4] = { J(30, 1), J(10, -EIO), J(20, 3), J(5000, 4) };
	rill_task *t[4];
	int res[4] = { 0 };

	spawn_jobs(t, j, 4);
	cr_assert_eq(rill_task_cancel(t[3]), 0);	/* before it starts */
	cr_assert_eq(rill_gather(t, 4, res, true), 0);
	cr_assert_eq(res[0], 1);
	cr_assert_eq(res[1], -EIO);
	cr_assert_eq(res[2], 3);
	cr_assert_eq(res[3], -ECANCELED);
	/* All ended: again at once, results NULL allowed. */
	cr_assert_eq(rill_gather(t, 4, NULL, true), 0);
	for (int i = 0; i < 4; i++)
		rill_task_detach(t[i]);
	return 0;
}

/* Without return_exceptions the first error comes back at once, and the
 * other tasks are not cancelled. */
TASK_TEST(engine_gather, first_error_returns_at_once)
{
	struct job j[3] = { J(20, -EIO), J(5000, 2), J(0, 7) };
	rill_task *t[3];
	int res[3] = { 111, 222, 333 };
	rill_time t0 = rill_now();

	spawn_jobs(t, j, 3);
	cr_assert_eq(rill_gather(t, 3, res, false), -EIO);
	cr_assert_lt(ms_since(t0), 2000);
	cr_assert_eq(res[0], -EIO);
	cr_assert_eq(res[1], 222);		/* still running: not written */
	cr_assert_eq(res[2], 7);
	cr_assert_not(rill_task_done(t[1]));
	cr_assert_eq(rill_yield(), 0);
	cr_assert_eq(j[1].slept, 0);
	/* A task that ended cancelled is an error here, as in asyncio. */
	cr_assert_eq(rill_task_cancel(t[1]), 0);
	cr_assert_eq(rill_gather(&t[1], 1, &res[1], false), -ECANCELED);
	cr_assert_eq(res[1], -ECANCELED);
	join_expect(t[0], -EIO);
	join_expect(t[1], -ECANCELED);
	join_expect(t[2], 7);
	return 0;
}

struct gatherer {
	rill_task **tasks;
	size_t n;
	bool return_exceptions;
	int res[2];
	int ret;
};

static int gatherer_fn(void *arg)
{
	struct gatherer *g = arg;

	g->ret = rill_gather(g->tasks, g->n, g->res, g->return_exceptions);
	return g->ret;
}

/* A cancelled gather cancels its tasks (asyncio does); with
 * return_exceptions it waits for them and writes every result. */
static void cancel_gatherer(bool return_exceptions)
{
	struct job j[2] = { J(5000, 0), J(5000, 0) };
	rill_task *t[2], *gt;
	struct gatherer g = { .tasks = t, .n = 2, .res = { 1, 1 },
			      .return_exceptions = return_exceptions };
	rill_time t0 = rill_now();

	spawn_jobs(t, j, 2);
	gt = spawn(gatherer_fn, &g);
	cr_assert_eq(rill_sleep_ms(20), 0);
	cr_assert_eq(rill_task_cancel(gt), 0);
	join_expect(gt, -ECANCELED);
	cr_assert_lt(ms_since(t0), 2000);
	if (return_exceptions) {
		cr_assert(rill_task_done(t[0]) && rill_task_done(t[1]));
		cr_assert_eq(g.res[0], -ECANCELED);
		cr_assert_eq(g.res[1], -ECANCELED);
	} else {
		cr_assert_eq(g.res[0], 1);	/* returned before they ended */
	}
	join_expect(t[0], -ECANCELED);
	join_expect(t[1], -ECANCELED);
	cr_assert_eq(j[0].slept, -ECANCELED);
	cr_assert_eq(j[1].slept, -ECANCELED);
}

TASK_TEST(engine_gather, cancelled_gather_with_return_exceptions)
{
	cancel_gatherer(true);
	return 0;
}

TASK_TEST(engine_gather, cancelled_gather_without_return_exceptions)
{
	cancel_gatherer(false);
	return 0;
}

/* A task joined by its owner while another task gathers it: gather reads
 * the result as the task ends, and frees nothing. */
struct joiner {
	rill_task *t;
	int res;
};

static int joiner_fn(void *arg)
{
	struct joiner *jn = arg;

	return rill_task_join(jn->t, &jn->res);
}

TASK_TEST(engine_gather, composes_with_join)
{
	struct job j[1] = { J(20, 9) };
	rill_task *t[1], *jt;
	struct joiner jn = { .res = 0 };
	int res[1] = { 0 };

	spawn_jobs(t, j, 1);
	jn.t = t[0];
	jt = spawn(joiner_fn, &jn);
	cr_assert_eq(rill_gather(t, 1, res, false), 0);
	cr_assert_eq(res[0], 9);
	join_expect(jt, 0);
	cr_assert_eq(jn.res, 9);
	return 0;
}

TestSuite(engine_wait_loop, .init = loop_setup, .fini = loop_teardown);

Test(engine_wait_loop, outside_a_task)
{
	struct job j = J(0, 0);
	rill_task *t;
	int res;

	cr_assert_eq(rill_spawn(loop, job_fn, &j, &t), 0);
	cr_assert_eq(rill_wait(&t, 1, RILL_ALL_COMPLETED, 0, NULL), -EPERM);
	cr_assert_neq(rill_error_detail()[0], '\0');
	cr_assert_eq(rill_gather(&t, 1, &res, true), -EPERM);
	cr_assert_eq(rill_task_join(t, &res), 0);
}
