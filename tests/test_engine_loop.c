/* SPDX-License-Identifier: MIT */
/* The loop: lifetime, run/stop, options, feature reporting, error names, stats (io_uring refusal: test_engine_backend.c). */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/loop.h"
#include "rill/error.h"
#include "rill/loop.h"
#include "rill/task.h"

static rill_loop *new_loop(const rill_loop_options *o)
{
	rill_loop *loop = NULL;
	int ret = rill_loop_new(o, &loop);

	cr_assert_eq(ret, 0, "rill_loop_new: %s (%s)", rill_err_name(ret),
		     rill_error_detail());
	return loop;
}

/* ---- lifetime, run and stop ----------------------------------------- */

Test(engine_loop, new_and_free)
{
	rill_loop *loop = new_loop(NULL);

	cr_assert_eq(rill_loop_current(), loop);
	rill_loop_free(loop);
	cr_assert_null(rill_loop_current());
	rill_loop_free(NULL);	/* no-op */
	cr_assert_eq(rill_loop_new(NULL, NULL), -EINVAL);
}

Test(engine_loop, run_with_nothing_returns_at_once)
{
	rill_loop *loop = new_loop(NULL);
	rill_time t0 = rill_now();

	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(rill_loop_run(loop), 0, "a second run is fine too");
	cr_assert_lt(rill_now() - t0, 100 * RILL_NSEC_PER_MSEC);
	rill_loop_free(loop);
}

static int sleep_then_count(void *arg)
{
	int *n = arg;

	cr_assert_eq(rill_sleep_ms(5), 0);
	(*n)++;
	return 0;
}

Test(engine_loop, run_returns_when_the_last_task_ends)
{
	rill_loop *loop = new_loop(NULL);
	int n = 0;

	for (int i = 0; i < 3; i++)
		cr_assert_eq(rill_spawn(loop, sleep_then_count, &n, NULL), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(n, 3, "run returned before every task ended");
	rill_loop_free(loop);
}

struct stopper {
	rill_loop *loop;
	int phase;
};

static int stop_midway(void *arg)
{
	struct stopper *s = arg;

	s->phase = 1;
	rill_loop_stop(s->loop);
	cr_assert_eq(rill_sleep_ms(1), 0);
	s->phase = 2;
	return 0;
}

Test(engine_loop, stop_returns_early_and_run_resumes)
{
	struct stopper s = { .loop = new_loop(NULL) };
	rill_task *t;
	int res = -1;

	cr_assert_eq(rill_spawn(s.loop, stop_midway, &s, &t), 0);
	cr_assert_eq(rill_loop_run(s.loop), 0);
	cr_assert_eq(s.phase, 1, "stop did not end the run with the task parked");
	cr_assert_not(rill_task_done(t));
	cr_assert_eq(rill_loop_run(s.loop), 0);
	cr_assert_eq(s.phase, 2);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, 0);
	rill_loop_free(s.loop);
}

static int run_inside_task(void *arg)
{
	return rill_loop_run(arg);
}

static void *run_from_thread(void *arg)
{
	return (void *)(intptr_t)rill_loop_run(arg);
}

Test(engine_loop, run_refuses_nesting_and_other_threads)
{
	rill_loop *loop = new_loop(NULL);
	pthread_t th;
	void *ret;
	rill_task *t;
	int res = 0;

	cr_assert_eq(rill_spawn(loop, run_inside_task, loop, &t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, -EBUSY);
	cr_assert_eq(pthread_create(&th, NULL, run_from_thread, loop), 0);
	pthread_join(th, &ret);
	cr_assert_eq((int)(intptr_t)ret, -EPERM);
	cr_assert_eq(rill_loop_run(NULL), -EINVAL);
	rill_loop_free(loop);
}

/* ---- options -------------------------------------------------------- */

static void expect_einval(rill_loop_options o, const char *what)
{
	rill_loop *loop = NULL;

	rill__set_detail(0, "%s", "");
	cr_assert_eq(rill_loop_new(&o, &loop), -EINVAL, "%s accepted", what);
	cr_assert_null(loop);
	cr_assert_neq(rill_error_detail()[0], '\0', "%s: no detail", what);
}

Test(engine_loop, options_are_validated)
{
	expect_einval((rill_loop_options){ .size = sizeof(rill_loop_options), .buf_count = 3 },
		"buf_count 3");
	expect_einval((rill_loop_options){ .size = sizeof(rill_loop_options),
		.buf_count = 100 }, "buf_count 100");
	expect_einval((rill_loop_options){ .size = sizeof(rill_loop_options),
		.buf_count = 65536 }, "buf_count 65536");
	expect_einval((rill_loop_options){ .size = sizeof(rill_loop_options), .buf_size = 10 },
		"buf_size 10");
	expect_einval((rill_loop_options){ .size = sizeof(rill_loop_options),
		.stack_size = 4096 }, "stack_size 4096");
	expect_einval((rill_loop_options){ .size = sizeof(rill_loop_options),
		.sq_entries = 65536 }, "sq_entries 65536");
	cr_assert(strstr(rill_error_detail(), "sq_entries"),
		  "detail does not name the option: %s", rill_error_detail());
}

Test(engine_loop, valid_options_work)
{
	rill_loop_options o = { .size = sizeof(rill_loop_options), .sq_entries = 64,
		.cq_entries = 256,
				.buf_count = 8, .buf_size = 1024,
				.stack_size = 64 * 1024 };
	rill_loop *loop = new_loop(&o);
	int n = 0;

	cr_assert_eq(rill_spawn(loop, sleep_then_count, &n, NULL), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(n, 1);
	rill_loop_free(loop);
}

/* ---- features ------------------------------------------------------- */

static const char *const names[] = {
	"multishot_accept", "multishot_recv", "buf_ring", "bundle", "buf_inc",
	"send_zc", "defer_taskrun", "coop_taskrun", "ring_fd", "ext_arg",
};

/* RILL_DISABLE as the test matrix sets it, parsed independently of rill. */
static unsigned env_disabled(void)
{
	const char *env = getenv("RILL_DISABLE");
	char buf[256], *save = NULL;
	unsigned mask = 0;

	if (!env)
		return 0;
	snprintf(buf, sizeof(buf), "%s", env);
	for (char *tok = strtok_r(buf, ", ", &save); tok;
	     tok = strtok_r(NULL, ", ", &save)) {
		if (!strcmp(tok, "all"))
			mask |= RILL_FEAT_ALL;
		else if (!strcmp(tok, "multishot"))
			mask |= RILL_FEAT_MULTISHOT;
		for (unsigned i = 0; i < 10; i++)
			if (!strcmp(tok, names[i]))
				mask |= 1u << i;
	}
	return mask;
}

Test(engine_loop, feature_names)
{
	for (unsigned i = 0; i < 10; i++) {
		const char *n = rill_feature_name(1u << i);

		cr_assert_not_null(n);
		cr_assert_str_eq(n, names[i]);
	}
	cr_assert_null(rill_feature_name(0));
	cr_assert_null(rill_feature_name(3));
	cr_assert_null(rill_feature_name(1u << 10));
	cr_assert_eq(RILL_FEAT_ALL, (1u << 10) - 1);
}

Test(engine_loop, features_respect_rill_disable)
{
	unsigned off = env_disabled();
	rill_loop *loop = new_loop(NULL);
	unsigned f = rill_loop_features(loop);

	cr_assert_eq(f & off, 0, "RILL_DISABLE=%s but features 0x%x",
		     getenv("RILL_DISABLE"), f);
	cr_assert_eq(f & ~rill_features_probe(), 0,
		     "uses features the kernel lacks: 0x%x", f);
	cr_assert_eq(rill_features_probe() & ~RILL_FEAT_ALL, 0);
	rill_loop_free(loop);
}

Test(engine_loop, features_respect_options_disable)
{
	unsigned off = env_disabled();

	for (unsigned i = 0; i < 10; i++) {
		rill_loop_options o = { .size = sizeof(rill_loop_options), .disable = 1u << i };
		rill_loop *loop = new_loop(&o);
		unsigned f = rill_loop_features(loop);

		cr_assert_eq(f & (o.disable | off), 0, "disable %s: features 0x%x",
			     names[i], f);
		rill_loop_free(loop);
	}
	{
		rill_loop_options o = { .size = sizeof(rill_loop_options),
			.disable = RILL_FEAT_ALL };
		rill_loop *loop = new_loop(&o);

		cr_assert_eq(rill_loop_features(loop), 0);
		rill_loop_free(loop);
	}
}

/* ---- error codes ---------------------------------------------------- */

static const int rill_codes[] = {
	RILL_EINCOMPLETE, RILL_ELIMIT, RILL_EMULTI, RILL_ECLOSED, RILL_ESTATE,
	RILL_EURING_NOSYS, RILL_EURING_DISABLED, RILL_EURING_DENIED,
	RILL_EURING_GROUP, RILL_ETLS, RILL_ETLS_VERIFY, RILL_ETLS_HOSTNAME,
	RILL_ETLS_ALERT, RILL_ETLS_EOF, RILL_ETLS_HANDSHAKE_TIMEOUT,
	RILL_ETLS_SHUTDOWN_TIMEOUT, RILL_ETLS_NOT_AVAILABLE,
};
#define NCODES (sizeof(rill_codes) / sizeof(rill_codes[0]))

Test(engine_loop, every_rill_code_has_a_distinct_name_and_message)
{
	for (size_t i = 0; i < NCODES; i++) {
		const char *name = rill_err_name(rill_codes[i]);
		const char *msg = rill_strerror(rill_codes[i]);

		cr_assert_lt(rill_codes[i], -4095, "collides with errno");
		cr_assert_not_null(name);
		cr_assert_not_null(msg);
		cr_assert_eq(strncmp(name, "RILL_E", 6), 0, "name %s", name);
		cr_assert_str_neq(msg, "unknown error", "%s has no message", name);
		cr_assert_gt(strlen(msg), 5);
		for (size_t j = 0; j < i; j++) {
			cr_assert_str_neq(name, rill_err_name(rill_codes[j]));
			cr_assert_str_neq(msg, rill_strerror(rill_codes[j]));
		}
	}
}

Test(engine_loop, errno_codes_have_names_and_messages)
{
	static const struct { int code; const char *name; } e[] = {
		{ -ECONNRESET, "ECONNRESET" }, { -ETIMEDOUT, "ETIMEDOUT" },
		{ -ECANCELED, "ECANCELED" }, { -EINVAL, "EINVAL" },
		{ -ENOMEM, "ENOMEM" }, { -EPIPE, "EPIPE" },
		{ -ENOBUFS, "ENOBUFS" }, { -EAGAIN, "EAGAIN" },
	};

	for (size_t i = 0; i < sizeof(e) / sizeof(e[0]); i++) {
		cr_assert_str_eq(rill_err_name(e[i].code), e[i].name);
		cr_assert_str_neq(rill_strerror(e[i].code), "unknown error");
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(rill_strerror(e[i].code),
					  rill_strerror(e[j].code));
	}
	cr_assert_str_eq(rill_err_name(0), "OK");
	cr_assert_str_eq(rill_strerror(0), "success");
	cr_assert_str_eq(rill_strerror(-4999), "unknown error");
	cr_assert_str_eq(rill_strerror(12345), "unknown error");
	cr_assert_not_null(rill_err_name(-4999));
}

/* ---- stats ---------------------------------------------------------- */

/* n waited operations: io_uring no-ops, or on epoll (which has no no-op)
 * short sleeps, each one a blocking epoll_wait. */
static int nops(void *arg)
{
	int n = *(int *)arg;

	for (int i = 0; i < n; i++) {
		struct io_uring_sqe *sqe;

		if (rill_loop_backend(rill_loop_current()) == RILL_BACKEND_EPOLL) {
			cr_assert_eq(rill_sleep_ns(1000), 0);
			continue;
		}
		sqe = rill__sqe(rill_loop_current());
		io_uring_prep_nop(sqe);
		cr_assert_eq(rill__op_wait(sqe, NULL), 0);
	}
	return 0;
}

Test(engine_loop, stats_count_enters_and_cqes)
{
	rill_loop *loop = new_loop(NULL);
	rill_loop_stats before = RILL_LOOP_STATS_INIT, after = RILL_LOOP_STATS_INIT;
	int n = 20;

	cr_assert_eq(rill_loop_get_stats(loop, &before), 0);
	cr_assert_eq(rill_spawn(loop, nops, &n, NULL), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(rill_loop_get_stats(loop, &after), 0);
	cr_assert_geq(after.enters - before.enters, (uint64_t)n,
		      "one enter per waited op at least");
	if (rill_loop_backend(loop) == RILL_BACKEND_IO_URING) {
		cr_assert_geq(after.cqes - before.cqes, (uint64_t)n);
		cr_assert_geq(after.sqes - before.sqes, (uint64_t)n);
	}
	cr_assert_geq(after.iterations - before.iterations, (uint64_t)n);
	cr_assert_eq(after.tasks_spawned - before.tasks_spawned, 1);
	cr_assert_geq(after.switches - before.switches, 2 * (uint64_t)n);
	cr_assert_eq(after.cq_overflows, 0);
	rill_loop_free(loop);
}
