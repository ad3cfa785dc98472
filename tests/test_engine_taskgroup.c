/* SPDX-License-Identifier: MIT */
/* Task groups (asyncio.TaskGroup): all done, first failure cancels the siblings, counts, nesting, a cancelled waiter, misuse. */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "rill.h"
#include "tests/helpers.h"

/* A member: sleeps sleep_ms, then returns ret; after a failed sleep it
 * returns on_cancel if set, else what the sleep returned. */
struct job {
	int sleep_ms;
	int ret;
	int on_cancel;
	bool ran;
	int slept;		/* what the sleep returned */
};

static int job_fn(void *arg)
{
	struct job *j = arg;

	j->ran = true;
	j->slept = j->sleep_ms ? rill_sleep_ms(j->sleep_ms) : 0;
	if (j->slept < 0)
		return j->on_cancel ? j->on_cancel : j->slept;
	return j->ret;
}

static rill_task_group *group_new(void)
{
	rill_task_group *g;

	cr_assert_eq(rill_task_group_new(rill_loop_current(), &g), 0);
	return g;
}

static uint64_t ms_since(rill_time t0)
{
	return (rill_now() - t0) / MS;
}

TASK_TEST(engine_taskgroup, all_done)
{
	struct job j[5] = {
		{ .sleep_ms = 30 }, { .sleep_ms = 10, .ret = 7 }, { 0 },
		{ .sleep_ms = 20, .ret = 1 },
		{ .ret = -ECANCELED },	/* a cancelled member is no failure */
	};
	rill_task_group *g = group_new();
	rill_task *kept[5];

	for (int i = 0; i < 5; i++)
		cr_assert_eq(rill_task_group_spawn(g, job_fn, &j[i],
						   i % 2 ? &kept[i] : NULL), 0);
	cr_assert_not(rill_task_done(kept[1]));
	cr_assert_eq(rill_task_group_wait(g), 0);
	cr_assert_eq(rill_task_group_failed(g), 0);
	for (int i = 0; i < 5; i++) {
		cr_assert(j[i].ran);
		cr_assert_eq(j[i].slept, 0);
	}
	cr_assert(rill_task_done(kept[1]) && rill_task_done(kept[3]));
	/* Finished: waits return at once, spawns are refused. */
	cr_assert_eq(rill_task_group_wait(g), 0);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &j[0], NULL), RILL_ESTATE);
	cr_assert(strstr(rill_error_detail(), "finished"));
	rill_task_group_free(g);
	return 0;
}

TASK_TEST(engine_taskgroup, first_failure_cancels_siblings)
{
	struct job fail = { .sleep_ms = 20, .ret = -EIO };
	/* Would fail later, but is cancelled first (1 s apart: a loaded
	 * machine must not run both in one iteration). */
	struct job late = { .sleep_ms = 1000, .ret = -EPIPE };
	struct job s1 = { .sleep_ms = 5000 }, s2 = { .sleep_ms = 5000 };
	rill_task_group *g = group_new();
	rill_time t0 = rill_now();
	rill_task *t;

	cr_assert_eq(rill_task_group_spawn(g, job_fn, &s1, &t), 0);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &fail, NULL), 0);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &late, NULL), 0);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &s2, NULL), 0);
	cr_assert_eq(rill_task_group_wait(g), -EIO);
	cr_assert_lt(ms_since(t0), 2000);
	cr_assert_eq(rill_task_group_failed(g), 1);
	cr_assert_eq(s1.slept, -ECANCELED);
	cr_assert_eq(s2.slept, -ECANCELED);
	cr_assert_eq(late.slept, -ECANCELED);
	cr_assert(rill_task_done(t));
	rill_task_group_free(g);
	return 0;
}

/* A member that fails while it handles the cancellation counts too; the
 * first error is the one reported. */
TASK_TEST(engine_taskgroup, failures_counted_first_reported)
{
	struct job now = { .ret = -EIO };
	struct job cleanup = { .sleep_ms = 5000, .on_cancel = -EPIPE };
	struct job quiet = { .sleep_ms = 5000 };
	rill_task_group *g = group_new();

	cr_assert_eq(rill_task_group_spawn(g, job_fn, &cleanup, NULL), 0);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &quiet, NULL), 0);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &now, NULL), 0);
	cr_assert_eq(rill_task_group_wait(g), -EIO);
	cr_assert_eq(rill_task_group_failed(g), 2);
	cr_assert_eq(cleanup.slept, -ECANCELED);
	cr_assert_eq(quiet.slept, -ECANCELED);
	rill_task_group_free(g);
	return 0;
}

/* The siblings are cancelled when the failure happens, not when someone
 * waits; a shutting-down group refuses new members. */
TASK_TEST(engine_taskgroup, failure_cancels_without_a_waiter)
{
	struct job fail = { .ret = -ENOENT }, s = { .sleep_ms = 5000 };
	rill_task_group *g = group_new();

	cr_assert_eq(rill_task_group_spawn(g, job_fn, &s, NULL), 0);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &fail, NULL), 0);
	cr_assert_eq(rill_sleep_ms(50), 0);
	cr_assert_eq(s.slept, -ECANCELED);
	cr_assert_eq(rill_task_group_failed(g), 1);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &s, NULL), RILL_ESTATE);
	cr_assert(strstr(rill_error_detail(), "shutting down"));
	cr_assert_eq(rill_task_group_wait(g), -ENOENT);
	rill_task_group_free(g);
	return 0;
}

/* A member with a group of its own. */
struct nest {
	struct job inner[2];
	int inner_wait;
	size_t inner_failed;
};

static int nest_fn(void *arg)
{
	struct nest *n = arg;
	rill_task_group *g = group_new();

	for (int i = 0; i < 2; i++)
		cr_assert_eq(rill_task_group_spawn(g, job_fn, &n->inner[i], NULL), 0);
	n->inner_wait = rill_task_group_wait(g);
	n->inner_failed = rill_task_group_failed(g);
	rill_task_group_free(g);
	return n->inner_wait;
}

TASK_TEST(engine_taskgroup, nested_groups)
{
	/* a: its inner group fails; b: its inner group is cancelled by the
	 * outer group's failure. */
	struct nest a = { .inner = { { .sleep_ms = 5000 },
				     { .sleep_ms = 20, .ret = -EIO } } };
	struct nest b = { .inner = { { .sleep_ms = 5000 }, { .sleep_ms = 5000 } } };
	struct job s = { .sleep_ms = 5000 };
	rill_task_group *g = group_new();

	cr_assert_eq(rill_task_group_spawn(g, nest_fn, &a, NULL), 0);
	cr_assert_eq(rill_task_group_spawn(g, nest_fn, &b, NULL), 0);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &s, NULL), 0);
	cr_assert_eq(rill_task_group_wait(g), -EIO);
	cr_assert_eq(rill_task_group_failed(g), 1);
	cr_assert_eq(a.inner_wait, -EIO);
	cr_assert_eq(a.inner_failed, 1);
	cr_assert_eq(a.inner[0].slept, -ECANCELED);
	cr_assert_eq(b.inner_wait, -ECANCELED);
	cr_assert_eq(b.inner_failed, 0);
	cr_assert_eq(b.inner[0].slept, -ECANCELED);
	cr_assert_eq(b.inner[1].slept, -ECANCELED);
	cr_assert_eq(s.slept, -ECANCELED);
	rill_task_group_free(g);
	return 0;
}

/* The owner of a group: waits on it, with an optional deadline; what the
 * wait returned and what the next wait returns are kept. */
struct owner {
	struct job jobs[2];
	rill_time deadline_ms;
	int waited;
	int next_wait;
	size_t failed;
};

static int owner_fn(void *arg)
{
	struct owner *o = arg;
	rill_task_group *g = group_new();
	rill_time saved = RILL_TIME_NEVER;

	for (int i = 0; i < 2; i++)
		cr_assert_eq(rill_task_group_spawn(g, job_fn, &o->jobs[i], NULL), 0);
	if (o->deadline_ms)
		saved = rill_deadline_push(o->deadline_ms * MS);
	o->waited = rill_task_group_wait(g);
	if (o->deadline_ms)
		rill_deadline_pop(saved);
	o->next_wait = rill_yield();
	o->failed = rill_task_group_failed(g);
	rill_task_group_free(g);
	return o->waited;
}

TASK_TEST(engine_taskgroup, cancelled_waiter_cancels_members)
{
	struct owner o = { .jobs = { { .sleep_ms = 5000 }, { .sleep_ms = 5000 } } };
	rill_task *t = spawn(owner_fn, &o);
	rill_time t0 = rill_now();
	int res;

	cr_assert_eq(rill_sleep_ms(20), 0);
	cr_assert_eq(rill_task_cancel(t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_lt(ms_since(t0), 2000);
	cr_assert_eq(res, -ECANCELED);
	cr_assert_eq(o.waited, -ECANCELED);
	cr_assert_eq(o.next_wait, 0);		/* delivered once */
	cr_assert_eq(o.jobs[0].slept, -ECANCELED);
	cr_assert_eq(o.jobs[1].slept, -ECANCELED);
	cr_assert_eq(o.failed, 0);
	return 0;
}

/* A member failing as it is cancelled: its error wins over the waiter's
 * cancellation, which is delivered again at the next wait. */
TASK_TEST(engine_taskgroup, member_error_wins_over_cancellation)
{
	struct owner o = { .jobs = { { .sleep_ms = 5000, .on_cancel = -EPIPE },
				     { .sleep_ms = 5000 } } };
	rill_task *t = spawn(owner_fn, &o);
	int res;

	cr_assert_eq(rill_sleep_ms(20), 0);
	cr_assert_eq(rill_task_cancel(t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(o.waited, -EPIPE);
	cr_assert_eq(o.next_wait, -ECANCELED);
	cr_assert_eq(o.failed, 1);
	cr_assert_eq(o.jobs[1].slept, -ECANCELED);
	return 0;
}

TASK_TEST(engine_taskgroup, waiter_deadline_cancels_members)
{
	struct owner o = { .jobs = { { .sleep_ms = 5000 }, { .sleep_ms = 5000 } },
			   .deadline_ms = 30 };
	rill_time t0 = rill_now();
	rill_task *t = spawn(owner_fn, &o);
	int res;

	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_geq(ms_since(t0), 25);
	cr_assert_lt(ms_since(t0), 2000);
	cr_assert_eq(o.waited, -ETIMEDOUT);
	cr_assert_eq(o.jobs[0].slept, -ECANCELED);
	cr_assert_eq(o.jobs[1].slept, -ECANCELED);
	return 0;
}

/* The owner gives up: its members are cancelled, none counts as failed,
 * and the group takes no new ones. */
TASK_TEST(engine_taskgroup, owner_cancels_the_group)
{
	struct job s[2] = { { .sleep_ms = 5000 }, { .sleep_ms = 5000, .ret = -EIO } };
	rill_task_group *g = group_new();
	rill_time t0 = rill_now();

	for (int i = 0; i < 2; i++)
		cr_assert_eq(rill_task_group_spawn(g, job_fn, &s[i], NULL), 0);
	cr_assert_eq(rill_yield(), 0);
	cr_assert_eq(rill_task_group_cancel(g), 0);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &s[0], NULL), RILL_ESTATE);
	cr_assert_eq(rill_task_group_wait(g), 0);
	cr_assert_lt(ms_since(t0), 2000);
	cr_assert_eq(rill_task_group_failed(g), 0);
	cr_assert_eq(s[0].slept, -ECANCELED);
	cr_assert_eq(s[1].slept, -ECANCELED);
	cr_assert_eq(rill_task_group_cancel(NULL), -EINVAL);
	rill_task_group_free(g);
	return 0;
}

/* Members spawned by a member while the owner waits are waited for too. */
struct spawner {
	rill_task_group *g;
	struct job child;
};

static int spawner_fn(void *arg)
{
	struct spawner *s = arg;

	cr_assert_eq(rill_sleep_ms(10), 0);
	return rill_task_group_spawn(s->g, job_fn, &s->child, NULL);
}

TASK_TEST(engine_taskgroup, members_spawned_while_waiting)
{
	struct spawner s = { .g = group_new(), .child = { .sleep_ms = 40, .ret = 3 } };
	rill_time t0 = rill_now();

	cr_assert_eq(rill_task_group_spawn(s.g, spawner_fn, &s, NULL), 0);
	cr_assert_eq(rill_task_group_wait(s.g), 0);
	cr_assert_geq(ms_since(t0), 45);
	cr_assert(s.child.ran);
	cr_assert_eq(s.child.slept, 0);
	rill_task_group_free(s.g);
	return 0;
}

/* Freeing a group with members running cancels them; they end and free
 * themselves (ASan checks nothing leaks or is used after free). */
TASK_TEST(engine_taskgroup, free_with_running_members)
{
	static struct job s[3] = { { .sleep_ms = 5000 }, { .sleep_ms = 5000 },
				   { .sleep_ms = 5000 } };
	rill_task_group *g = group_new();
	rill_task *t;

	cr_assert_eq(rill_task_group_spawn(g, job_fn, &s[0], &t), 0);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &s[1], NULL), 0);
	cr_assert_eq(rill_yield(), 0);		/* both parked in their sleep */
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &s[2], NULL), 0);
	rill_task_group_free(g);
	cr_assert_eq(rill_sleep_ms(20), 0);
	cr_assert_eq(s[0].slept, -ECANCELED);
	cr_assert_eq(s[1].slept, -ECANCELED);
	cr_assert_not(s[2].ran);		/* cancelled before it started */
	return 0;
}

/* Handles a group gives out work with rill_wait and rill_gather; they
 * cannot be joined, and detaching them is ignored. */
TASK_TEST(engine_taskgroup, kept_handles)
{
	/* Far apart, so that only the first has ended when the wait returns,
	 * even on a loaded machine. */
	struct job j[2] = { { .sleep_ms = 10, .ret = 4 }, { .sleep_ms = 300, .ret = 5 } };
	rill_task_group *g = group_new();
	rill_task *t[2];
	int res[2] = { 0, 0 };
	size_t ndone = 9;

	for (int i = 0; i < 2; i++)
		cr_assert_eq(rill_task_group_spawn(g, job_fn, &j[i], &t[i]), 0);
	cr_assert_eq(rill_wait(t, 2, RILL_FIRST_COMPLETED, RILL_TIME_NEVER, &ndone), 0);
	cr_assert_eq(ndone, 1);
	cr_assert(rill_task_done(t[0]));
	cr_assert_eq(rill_task_join(t[0], NULL), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "task group"));
	rill_task_detach(t[0]);			/* ignored, with a warning */
	cr_assert_eq(rill_gather(t, 2, res, false), 0);
	cr_assert_eq(res[0], 4);
	cr_assert_eq(res[1], 5);
	cr_assert_eq(rill_task_group_wait(g), 0);
	rill_task_group_free(g);
	return 0;
}

static int wait_group_fn(void *arg)
{
	return rill_task_group_wait(arg);
}

TASK_TEST(engine_taskgroup, invalid_arguments)
{
	struct job s = { .sleep_ms = 5000 };
	rill_task_group *g = group_new();
	rill_task *other;
	int res;

	cr_assert_eq(rill_task_group_new(NULL, &g), -EINVAL);
	cr_assert_neq(rill_error_detail()[0], '\0');
	cr_assert_eq(rill_task_group_new(rill_loop_current(), NULL), -EINVAL);
	cr_assert_eq(rill_task_group_spawn(NULL, job_fn, &s, NULL), -EINVAL);
	cr_assert_neq(rill_error_detail()[0], '\0');
	cr_assert_eq(rill_task_group_spawn(g, NULL, &s, NULL), -EINVAL);
	cr_assert_eq(rill_task_group_wait(NULL), -EINVAL);
	cr_assert_eq(rill_task_group_failed(NULL), 0);
	rill_task_group_free(NULL);

	cr_assert_eq(rill_task_group_spawn(g, job_fn, &s, NULL), 0);
	/* One waiter at a time. */
	other = spawn(wait_group_fn, g);
	cr_assert_eq(rill_yield(), 0);
	cr_assert_eq(rill_task_group_wait(g), -EBUSY);
	cr_assert_neq(rill_error_detail()[0], '\0');
	/* A member waiting on its own group would wait for itself: its
	 * -EINVAL fails the group, which cancels the sleeper. */
	cr_assert_eq(rill_task_group_spawn(g, wait_group_fn, g, NULL), 0);
	cr_assert_eq(rill_task_join(other, &res), 0);
	cr_assert_eq(res, -EINVAL);
	cr_assert_eq(rill_task_group_failed(g), 1);
	cr_assert_eq(s.slept, -ECANCELED);
	rill_task_group_free(g);
	return 0;
}

TestSuite(engine_taskgroup_loop, .init = loop_setup, .fini = loop_teardown);

/* Outside any task there is nothing to suspend. */
Test(engine_taskgroup_loop, wait_outside_a_task)
{
	struct job j = { .ret = 0 };
	rill_task_group *g;

	cr_assert_eq(rill_task_group_new(loop, &g), 0);
	cr_assert_eq(rill_task_group_spawn(g, job_fn, &j, NULL), 0);
	cr_assert_eq(rill_task_group_wait(g), -EPERM);
	cr_assert_neq(rill_error_detail()[0], '\0');
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert(j.ran);
	rill_task_group_free(g);
}
