/* SPDX-License-Identifier: MIT */
/* Timers: sleep accuracy, wake order of many sleepers, and task deadlines (push, pop, nesting, expiry). */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdlib.h>

#include "engine/loop.h"
#include "rill/loop.h"
#include "rill/task.h"
#include "tests/helpers.h"

/* How late a wake-up may be: the kernel's timer slack plus a busy machine
 * running tests in parallel. Early is never allowed. */
#define LATE_MARGIN (15 * MS)
/* Now and then a loaded machine (two cores, ctest -j2, sanitizers) keeps
 * the loop thread off the CPU for longer than that: a body that overslept
 * returns LATE and runs again, up to ATTEMPTS times in all. */
#define ATTEMPTS 3
#define LATE 1000

static rill_time overslept;

#define ON_TIME(dt, bound)					\
	do {							\
		if ((dt) >= (bound)) {				\
			overslept = (dt) - (bound);		\
			return LATE;				\
		}						\
	} while (0)

TestSuite(engine_timer, .init = loop_setup, .fini = loop_teardown);

/* Runs fn in a task on the suite's loop and returns its result. */
static int run_on_loop(rill_task_fn fn, void *arg)
{
	rill_task *t;
	int res = -1;

	cr_assert_eq(rill_spawn(loop, fn, arg, &t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	return res;
}

/* Sleeps until the task's deadline cuts the sleep short, at or after at
 * (ns since t0); returns the time since t0 (ON_TIME says if it is late). */
static rill_time sleep_until_deadline(rill_time t0, rill_time at)
{
	rill_time dt;

	cr_assert_eq(rill_sleep_ms(1000), -ETIMEDOUT);
	dt = rill_now() - t0;
	cr_assert_geq(dt, at);
	return dt;
}

/* Runs a timing body until it is on time once (see ATTEMPTS). */
static void run_timed(rill_task_fn fn, void *arg)
{
	int res = LATE;

	for (int i = 0; i < ATTEMPTS && res == LATE; i++)
		res = run_on_loop(fn, arg);
	cr_assert_neq(res, LATE, "late on all %d attempts, the last by %llu ns",
		      ATTEMPTS, (unsigned long long)overslept);
	cr_assert_eq(res, 0);
}

static int sleep_20ms(void *arg)
{
	rill_time t0 = rill_now(), dt;

	(void)arg;
	cr_assert_eq(rill_sleep_ms(20), 0);
	dt = rill_now() - t0;
	cr_assert_geq(dt, 20 * MS, "woke early: %llu ns", (unsigned long long)dt);
	ON_TIME(dt, 20 * MS + LATE_MARGIN);
	return 0;
}

Test(engine_timer, sleep_is_accurate)
{
	run_timed(sleep_20ms, NULL);
}

static int sleep_ns_checks(void *arg)
{
	rill_time t0 = rill_now();

	(void)arg;
	cr_assert_eq(rill_sleep_ns(0), 0, "sleep 0 is a yield");
	cr_assert_eq(rill_sleep_ns(3 * MS), 0);
	cr_assert_geq(rill_now() - t0, 3 * MS);
	return 0;
}

Test(engine_timer, sleep_ns_and_zero)
{
	cr_assert_eq(run_on_loop(sleep_ns_checks, NULL), 0);
}

#define NSLEEPERS 40

struct order {
	int woke[NSLEEPERS];
	int n;
};

struct sleeper {
	struct order *o;
	int id;
	rill_time ms;
	rill_task *task;
	rill_time until;	/* when rill will wake it, read while parked */
};

static int timed_sleeper(void *arg)
{
	struct sleeper *s = arg;
	rill_time t0 = rill_now();

	s->task = rill_task_current();
	cr_assert_eq(rill_sleep_ms(s->ms), 0);
	cr_assert_geq(rill_now() - t0, s->ms * MS, "sleeper %d woke early", s->id);
	s->o->woke[s->o->n++] = s->id;
	return 0;
}

/* Spawned last: runs once every sleeper has parked, and notes the wake
 * time each was given (start + duration: a sleeper that started late
 * because the machine was busy is due later than its duration says). */
static int note_wake_times(void *arg)
{
	struct sleeper *s = arg;

	for (int i = 0; i < NSLEEPERS; i++) {
		cr_assert_not_null(s[i].task);
		cr_assert_not_null(s[i].task->wait, "sleeper %d is not parked", i);
		s[i].until = s[i].task->wait->until;
	}
	return 0;
}

Test(engine_timer, concurrent_sleepers_wake_in_deadline_order)
{
	struct sleeper s[NSLEEPERS];
	struct order o = { .n = 0 };
	int sorted_by_duration = 1;

	/* Spawned in a shuffled order; sleeper i sleeps 2 + 2i ms. */
	for (int k = 0; k < NSLEEPERS; k++) {
		int i = (k * 17) % NSLEEPERS;

		s[i] = (struct sleeper){ &o, i, 2 + 2 * (rill_time)i, NULL, 0 };
		cr_assert_eq(rill_spawn(loop, timed_sleeper, &s[i], NULL), 0);
	}
	cr_assert_eq(rill_spawn(loop, note_wake_times, s, NULL), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(o.n, NSLEEPERS);
	for (int i = 1; i < NSLEEPERS; i++) {
		const struct sleeper *a = &s[o.woke[i - 1]], *b = &s[o.woke[i]];

		cr_assert_leq(a->until, b->until, "sleeper %d (due %llu) woke "
			      "before sleeper %d (due %llu)", b->id,
			      (unsigned long long)b->until, a->id,
			      (unsigned long long)a->until);
		sorted_by_duration &= o.woke[i] == i;
	}
	if (!sorted_by_duration)
		cr_log_warn("the machine was busy: start times skewed the order");
}

static int deadline_cuts_sleep(void *arg)
{
	rill_time t0 = rill_now(), saved, dt;

	(void)arg;
	cr_assert_not(rill_deadline_expired());
	saved = rill_deadline_push(10 * MS);
	cr_assert_eq(saved, RILL_TIME_NEVER);
	dt = sleep_until_deadline(t0, 10 * MS);
	ON_TIME(dt, 10 * MS + LATE_MARGIN);
	cr_assert(rill_deadline_expired());
	/* Every wait in the scope keeps failing. */
	cr_assert_eq(rill_sleep_ms(1), -ETIMEDOUT);
	cr_assert_eq(rill_yield(), -ETIMEDOUT);
	rill_deadline_pop(saved);
	cr_assert_not(rill_deadline_expired());
	cr_assert_eq(rill_sleep_ms(1), 0);
	cr_assert_eq(rill_yield(), 0);
	return 0;
}

Test(engine_timer, deadline_times_out_a_long_sleep)
{
	run_timed(deadline_cuts_sleep, NULL);
}

static int deadline_not_reached(void *arg)
{
	rill_time saved = rill_deadline_push(200 * MS);

	(void)arg;
	cr_assert_eq(rill_sleep_ms(5), 0);
	cr_assert_not(rill_deadline_expired());
	rill_deadline_pop(saved);
	/* A popped deadline no longer applies. */
	saved = rill_deadline_push(5 * MS);
	rill_deadline_pop(saved);
	cr_assert_eq(rill_sleep_ms(20), 0);
	return 0;
}

Test(engine_timer, deadline_not_reached_and_pop_restores)
{
	cr_assert_eq(run_on_loop(deadline_not_reached, NULL), 0);
}

static int nested_inner_shorter(void *arg)
{
	rill_time t0 = rill_now(), outer, inner, dt;

	(void)arg;
	outer = rill_deadline_push(60 * MS);
	inner = rill_deadline_push(10 * MS);
	cr_assert_neq(inner, RILL_TIME_NEVER, "push returns the outer deadline");
	dt = sleep_until_deadline(t0, 10 * MS);
	ON_TIME(dt, 10 * MS + LATE_MARGIN);
	rill_deadline_pop(inner);
	cr_assert_not(rill_deadline_expired(), "outer scope has time left");
	dt = sleep_until_deadline(t0, 60 * MS);
	ON_TIME(dt, 60 * MS + LATE_MARGIN);
	rill_deadline_pop(outer);
	cr_assert_eq(rill_sleep_ms(1), 0);
	return 0;
}

Test(engine_timer, nested_deadline_inner_shorter)
{
	run_timed(nested_inner_shorter, NULL);
}

static int nested_inner_longer(void *arg)
{
	rill_time t0 = rill_now(), outer, inner, dt;

	(void)arg;
	outer = rill_deadline_push(10 * MS);
	inner = rill_deadline_push(1000 * MS);	/* cannot extend the outer one */
	dt = sleep_until_deadline(t0, 10 * MS);
	ON_TIME(dt, 10 * MS + LATE_MARGIN);
	rill_deadline_pop(inner);
	cr_assert(rill_deadline_expired(), "outer deadline has passed too");
	rill_deadline_pop(outer);
	cr_assert_not(rill_deadline_expired());
	return 0;
}

Test(engine_timer, nested_deadline_inner_longer)
{
	run_timed(nested_inner_longer, NULL);
}

static int deadline_already_passed(void *arg)
{
	rill_time saved = rill_deadline_push(1 * MS), t0;

	(void)arg;
	while (!rill_deadline_expired())
		;	/* spin past it without waiting */
	t0 = rill_now();
	cr_assert_eq(rill_sleep_ms(1000), -ETIMEDOUT);
	rill_deadline_pop(saved);
	ON_TIME(rill_now() - t0, 5 * MS);	/* an expired deadline parks nobody */
	return 0;
}

Test(engine_timer, deadline_already_passed_fails_at_once)
{
	run_timed(deadline_already_passed, NULL);
}

static int never_deadline(void *arg)
{
	rill_time saved = rill_deadline_push(RILL_TIME_NEVER);

	(void)arg;
	cr_assert_eq(saved, RILL_TIME_NEVER);
	cr_assert_eq(rill_sleep_ms(2), 0);
	cr_assert_not(rill_deadline_expired());
	rill_deadline_pop(saved);
	return 0;
}

Test(engine_timer, push_of_never_changes_nothing)
{
	cr_assert_eq(run_on_loop(never_deadline, NULL), 0);
}

static int sleep_forever(void *arg)
{
	rill_time *r = arg;

	/* Timeouts near the end of time must not wrap around to "now". */
	r[0] = (rill_time)rill_sleep_ns(RILL_TIME_NEVER - 1);
	r[1] = rill_deadline_push(RILL_TIME_NEVER - 1);
	r[2] = (rill_time)rill_sleep_ms(UINT64_MAX / 2);
	return 0;
}

static int cancel_later(void *arg)
{
	rill_task *t = arg;

	cr_assert_eq(rill_sleep_ms(5), 0);
	rill_task_cancel(t);
	cr_assert_eq(rill_sleep_ms(5), 0);
	rill_task_cancel(t);
	return 0;
}

Test(engine_timer, huge_timeouts_do_not_wrap)
{
	rill_time r[3] = { 0 };
	rill_task *t;

	cr_assert_eq(rill_spawn(loop, sleep_forever, r, &t), 0);
	cr_assert_eq(rill_spawn(loop, cancel_later, t, NULL), 0);
	cr_assert_eq(rill_task_join(t, NULL), 0);
	cr_assert_eq((int)r[0], -ECANCELED, "sleep(NEVER - 1) returned %d", (int)r[0]);
	cr_assert_eq(r[1], RILL_TIME_NEVER);
	cr_assert_eq((int)r[2], -ECANCELED, "sleep_ms(huge) returned %d", (int)r[2]);
}

static int deadline_on_join(void *arg)
{
	rill_task *sleeper = arg;
	rill_time saved = rill_deadline_push(5 * MS);
	int err = rill_task_join(sleeper, NULL);

	rill_deadline_pop(saved);
	cr_assert_eq(err, -ETIMEDOUT);
	cr_assert_eq(rill_task_cancel(sleeper), 0);
	return rill_task_join(sleeper, NULL);	/* the handle is still ours */
}

static int sleep_long(void *arg)
{
	(void)arg;
	return rill_sleep_ms(10000);
}

Test(engine_timer, deadline_applies_to_join)
{
	rill_task *sleeper;

	cr_assert_eq(rill_spawn(loop, sleep_long, NULL, &sleeper), 0);
	cr_assert_eq(run_on_loop(deadline_on_join, sleeper), 0);
}
