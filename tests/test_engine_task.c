/* SPDX-License-Identifier: MIT */
/* Tasks: spawn, join, yield order, detach, cancellation, rill_run and stack overflow. */
#include <criterion/criterion.h>
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "engine/loop.h"
#include "rill/loop.h"
#include "rill/task.h"
#include "tests/helpers.h"

TestSuite(engine_task, .init = loop_setup, .fini = loop_teardown);

static int ret_arg(void *arg)
{
	return (int)(intptr_t)arg;
}

Test(engine_task, spawn_and_join_return_results)
{
	rill_task *t[3];
	int res;

	for (int i = 0; i < 3; i++)
		cr_assert_eq(rill_spawn(loop, ret_arg, (void *)(intptr_t)(i - 1), &t[i]), 0);
	for (int i = 2; i >= 0; i--) {
		res = 99;
		cr_assert_eq(rill_task_join(t[i], &res), 0);
		cr_assert_eq(res, i - 1);
	}
	cr_assert_eq(rill_spawn(NULL, ret_arg, NULL, NULL), -EINVAL);
	cr_assert_eq(rill_spawn(loop, NULL, NULL, NULL), -EINVAL);
}

static int square_in_task(void *arg)
{
	int *v = arg;

	cr_assert_not_null(rill_task_current());
	cr_assert_eq(rill_yield(), 0);
	*v = *v * *v;
	return *v;
}

/* One task spawns many and joins them all from inside a task. */
static int spawn_many(void *arg)
{
	int n = *(int *)arg;
	int *vals = malloc(n * sizeof(*vals));
	rill_task **ts = malloc(n * sizeof(*ts));
	long sum = 0;

	cr_assert(vals && ts);
	for (int i = 0; i < n; i++) {
		vals[i] = i % 1000;
		cr_assert_eq(rill_spawn(rill_loop_current(), square_in_task,
					&vals[i], &ts[i]), 0);
	}
	for (int i = 0; i < n; i++) {
		int res;

		cr_assert_eq(rill_task_join(ts[i], &res), 0);
		cr_assert_eq(res, (i % 1000) * (i % 1000));
		sum += res;
	}
	free(vals);
	free(ts);
	return sum == 10L * 332833500L ? 0 : -1;
}

Test(engine_task, ten_thousand_tasks)
{
	rill_loop_stats st = RILL_LOOP_STATS_INIT;
	rill_task *t;
	int n = 10000, res = 1;

	cr_assert_eq(rill_spawn(loop, spawn_many, &n, &t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, 0, "sum of results is wrong");
	rill_loop_get_stats(loop, &st);
	cr_assert_eq(st.tasks_spawned, 10001);
}

struct rr {
	int log[64];
	int len;
};

struct rr_arg {
	struct rr *rr;
	int id;
};

static int rr_body(void *arg)
{
	struct rr_arg *a = arg;

	for (int i = 0; i < 5; i++) {
		a->rr->log[a->rr->len++] = a->id;
		cr_assert_eq(rill_yield(), 0);
	}
	return 0;
}

Test(engine_task, yield_is_round_robin)
{
	struct rr rr = { .len = 0 };
	struct rr_arg a[3];

	for (int i = 0; i < 3; i++) {
		a[i] = (struct rr_arg){ &rr, i };
		cr_assert_eq(rill_spawn(loop, rr_body, &a[i], NULL), 0);
	}
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(rr.len, 15);
	for (int i = 0; i < 15; i++)
		cr_assert_eq(rr.log[i], i % 3, "log[%d] = %d", i, rr.log[i]);
}

Test(engine_task, wait_calls_outside_a_task_fail)
{
	cr_assert_null(rill_task_current());
	cr_assert_eq(rill_yield(), -EPERM);
	cr_assert_eq(rill_sleep_ms(1), -EPERM);
	cr_assert_eq(rill_deadline_push(RILL_NSEC_PER_MSEC), RILL_TIME_NEVER);
	cr_assert_not(rill_deadline_expired());
}

static int set_flag(void *arg)
{
	cr_assert_eq(rill_yield(), 0);
	*(int *)arg += 1;
	return 0;
}

Test(engine_task, detached_tasks_run_to_the_end)
{
	int flag = 0;
	rill_task *t;

	cr_assert_eq(rill_spawn(loop, set_flag, &flag, NULL), 0);
	cr_assert_eq(rill_spawn(loop, set_flag, &flag, &t), 0);
	rill_task_detach(t);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(flag, 2);
	/* Detaching a task that has already ended frees it. */
	cr_assert_eq(rill_spawn(loop, set_flag, &flag, &t), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert(rill_task_done(t));
	rill_task_detach(t);
	cr_assert_eq(flag, 3);
}

Test(engine_task, join_of_a_detached_task_is_einval)
{
	int flag = 0;
	rill_task *t;

	cr_assert_eq(rill_spawn(loop, set_flag, &flag, &t), 0);
	rill_task_detach(t);
	cr_assert_eq(rill_task_join(t, NULL), -EINVAL);	/* not started: still valid */
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(flag, 1);
}

static int join_self(void *arg)
{
	(void)arg;
	return rill_task_join(rill_task_current(), NULL);
}

Test(engine_task, join_self_is_einval)
{
	rill_task *t;
	int res = 0;

	cr_assert_eq(rill_spawn(loop, join_self, NULL, &t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, -EINVAL);
}

static int sleep_and_return(void *arg)
{
	cr_assert_eq(rill_sleep_ms(10), 0);
	return (int)(intptr_t)arg;
}

Test(engine_task, join_from_outside_runs_the_loop)
{
	rill_time t0 = rill_now();
	rill_task *t;
	int res = 0;

	cr_assert_eq(rill_spawn(loop, sleep_and_return, (void *)7, &t), 0);
	cr_assert_not(rill_task_done(t));
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, 7);
	cr_assert_geq(rill_now() - t0, 10 * RILL_NSEC_PER_MSEC);
}

static int never_runs(void *arg)
{
	*(int *)arg = 1;
	return 0;
}

Test(engine_task, cancel_before_start_skips_the_body)
{
	int ran = 0, res = 0;
	rill_task *t;

	cr_assert_eq(rill_spawn(loop, never_runs, &ran, &t), 0);
	cr_assert_eq(rill_task_cancel(t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, -ECANCELED);
	cr_assert_eq(ran, 0, "the body of a task cancelled before start ran");
	cr_assert_eq(rill_task_cancel(NULL), -EINVAL);
}

Test(engine_task, cancel_of_an_ended_task_is_esrch)
{
	rill_task *t;

	cr_assert_eq(rill_spawn(loop, ret_arg, NULL, &t), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert(rill_task_done(t));
	cr_assert_eq(rill_task_cancel(t), -ESRCH);
	cr_assert_eq(rill_task_join(t, NULL), 0);
}

struct sleeper {
	int first, second;
	rill_time woke;
};

static int long_sleeper(void *arg)
{
	struct sleeper *s = arg;

	s->first = rill_sleep_ms(10000);
	s->woke = rill_now();
	s->second = rill_sleep_ms(2);	/* delivered once: this one works */
	return 5;
}

static int cancel_after(void *arg)
{
	cr_assert_eq(rill_sleep_ms(5), 0);
	cr_assert_eq(rill_task_cancel(arg), 0);
	cr_assert_eq(rill_task_cancel(arg), 0, "second cancel: still alive");
	return 0;
}

/* Runs long_sleeper on s with canceller(its task) beside it; returns its
 * result. Its first sleep must end cancelled, within a second. */
static int sleeper_cancelled_by(rill_task_fn canceller, struct sleeper *s)
{
	rill_time t0 = rill_now();
	rill_task *t;
	int res = 0;

	cr_assert_eq(rill_spawn(loop, long_sleeper, s, &t), 0);
	cr_assert_eq(rill_spawn(loop, canceller, t, NULL), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(s->first, -ECANCELED);
	cr_assert_lt(s->woke - t0, 1000 * RILL_NSEC_PER_MSEC);
	return res;
}

Test(engine_task, cancel_a_sleeping_task_once)
{
	struct sleeper s = { 1, 1, 0 };

	cr_assert_eq(sleeper_cancelled_by(cancel_after, &s), 5);
	/* Two cancels while parked: the first is delivered by the sleep, the
	 * second stays pending and is delivered by the next wait. */
	cr_assert_eq(s.second, -ECANCELED);
}

static int cancel_once_after(void *arg)
{
	cr_assert_eq(rill_sleep_ms(5), 0);
	cr_assert_eq(rill_task_cancel(arg), 0);
	return 0;
}

Test(engine_task, cancellation_is_delivered_once)
{
	struct sleeper s = { 1, 1, 0 };

	cr_assert_eq(sleeper_cancelled_by(cancel_once_after, &s), 5);
	cr_assert_eq(s.second, 0, "the cancellation was delivered twice");
	cr_assert_geq(rill_now() - s.woke, 2 * RILL_NSEC_PER_MSEC);
}

static int self_cancel(void *arg)
{
	int *r = arg;

	cr_assert_eq(rill_task_cancel(rill_task_current()), 0);
	r[0] = 1;			/* cancel does not stop the running code */
	r[1] = rill_yield();		/* the next wait gets it */
	r[2] = rill_yield();		/* and only that one */
	return -ECANCELED;
}

Test(engine_task, self_cancel)
{
	int r[3] = { 0, 0, 1 };
	rill_task *t;
	int res = 0;

	cr_assert_eq(rill_spawn(loop, self_cancel, r, &t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(r[0], 1);
	cr_assert_eq(r[1], -ECANCELED);
	cr_assert_eq(r[2], 0);
	cr_assert_eq(res, -ECANCELED);
}

struct joiner {
	rill_task *target;
	int first, second, result;
};

static int join_twice(void *arg)
{
	struct joiner *j = arg;

	j->first = rill_task_join(j->target, &j->result);
	/* Cancelled while joining: the handle is still ours. */
	j->second = rill_task_join(j->target, &j->result);
	return 0;
}

Test(engine_task, cancelled_join_keeps_the_handle)
{
	struct joiner j = { .result = 0 };
	rill_task *jt;

	cr_assert_eq(rill_spawn(loop, sleep_and_return, (void *)3, &j.target), 0);
	cr_assert_eq(rill_spawn(loop, join_twice, &j, &jt), 0);
	cr_assert_eq(rill_spawn(loop, cancel_once_after, jt, NULL), 0);
	cr_assert_eq(rill_task_join(jt, NULL), 0);
	cr_assert_eq(j.first, -ECANCELED);
	cr_assert_eq(j.second, 0);
	cr_assert_eq(j.result, 3);
}

static int rill_run_body(void *arg)
{
	cr_assert_eq(rill_sleep_ms(1), 0);
	cr_assert_not_null(rill_loop_current());
	return *(int *)arg + 1;
}

Test(engine_task, rill_run_runs_one_task)
{
	int in = 41, res = 0;

	cr_assert_eq(rill_run(rill_run_body, &in, &res), 0);
	cr_assert_eq(res, 42);
	cr_assert_eq(rill_run(rill_run_body, &in, NULL), 0);
}

/* ---- stacks --------------------------------------------------------- */

/* Each frame holds 1 KiB the compiler cannot drop. */
static long recurse(int depth)
{
	volatile char pad[1024];

	pad[0] = (char)depth;
	pad[sizeof(pad) - 1] = (char)depth;
	if (depth == 0)
		return pad[0];
	return recurse(depth - 1) + pad[sizeof(pad) - 1];
}

static int recurse_task(void *arg)
{
	return (int)recurse(*(int *)arg);
}

Test(engine_task, deep_recursion_within_the_stack_size)
{
	rill_loop_options o = { .size = sizeof(rill_loop_options), .stack_size = 2 * 1024 * 1024 };
	rill_loop *big;
	rill_task *t;
	int depth = 1000, res = -1;	/* ~1 MiB of frames */

	cr_assert_eq(rill_loop_new(&o, &big), 0);
	cr_assert_eq(rill_spawn(big, recurse_task, &depth, &t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, (int)recurse(depth));	/* same sum on the main stack */
	rill_loop_free(big);
}

/* In a child whose stderr is the pipe: a task recursing without end. */
static void child_overflow(int wfd)
{
	rill_loop_options o = { .size = sizeof(rill_loop_options), .stack_size = 64 * 1024 };
	rill_loop *small;
	int depth = 1 << 20;

	dup2(wfd, STDERR_FILENO);
	if (rill_loop_new(&o, &small) < 0)
		_exit(2);
	rill_spawn(small, recurse_task, &depth, NULL);
	rill_loop_run(small);
	_exit(3);	/* survived: wrong */
}

Test(engine_task, stack_overflow_aborts_with_a_message)
{
	char err[4096] = { 0 };
	size_t len = 0;
	ssize_t n;
	int p[2], status;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	fflush(stderr);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		child_overflow(p[1]);
	}
	close(p[1]);
	while (len < sizeof(err) - 1 &&
	       (n = read(p[0], err + len, sizeof(err) - 1 - len)) > 0)
		len += (size_t)n;
	close(p[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status), "child did not die by a signal (status 0x%x): %s",
		  status, err);
	cr_assert_eq(WTERMSIG(status), SIGABRT, "signal %d: %s", WTERMSIG(status), err);
	cr_assert(strstr(err, "stack overflow"), "stderr: %s", err);
}

/* ---- handles that outlive their loop -------------------------------- */

/* Freed memory is overwritten (glibc's M_PERTURB), so that a handle still
 * reading its freed loop crashes in the plain build too, not only under
 * ASan. */
static void perturb_freed_memory(void)
{
	mallopt(M_PERTURB, 0xa5);
}

Test(engine_task, join_after_the_loop_was_freed_gives_the_result)
{
	rill_loop *l;
	rill_task *ran, *never, *left;
	int res = 99;

	perturb_freed_memory();
	cr_assert_eq(rill_loop_new(NULL, &l), 0);
	cr_assert_eq(rill_spawn(l, ret_arg, (void *)(intptr_t)7, &ran), 0);
	cr_assert_eq(rill_loop_run(l), 0);
	cr_assert(rill_task_done(ran));
	/* Never started: rill_loop_free cancels it. */
	cr_assert_eq(rill_spawn(l, ret_arg, (void *)(intptr_t)8, &never), 0);
	cr_assert_eq(rill_spawn(l, ret_arg, (void *)(intptr_t)9, &left), 0);
	cr_assert_eq(rill_loop_free(l), 0);

	cr_assert(rill_task_done(ran));
	cr_assert_eq(rill_task_cancel(ran), -ESRCH);
	cr_assert_eq(rill_task_join(ran, &res), 0);
	cr_assert_eq(res, 7);
	cr_assert_eq(rill_task_join(never, &res), 0);
	cr_assert_eq(res, -ECANCELED);
	rill_task_detach(left);	/* frees it: ASan's leak check sees to it */
}

static int join_orphan_in_task(void *arg)
{
	int res = 0;

	if (rill_task_join(arg, &res) != 0)
		return 1;
	return res == 7 ? 0 : 2;
}

Test(engine_task, join_from_another_loop_after_the_loop_was_freed)
{
	rill_loop *l;
	rill_task *t;
	int res = -1;

	perturb_freed_memory();
	cr_assert_eq(rill_loop_new(NULL, &l), 0);
	cr_assert_eq(rill_spawn(l, ret_arg, (void *)(intptr_t)7, &t), 0);
	cr_assert_eq(rill_loop_run(l), 0);
	cr_assert_eq(rill_loop_free(l), 0);
	cr_assert_eq(rill_run(join_orphan_in_task, t, &res), 0);
	cr_assert_eq(res, 0);
}
