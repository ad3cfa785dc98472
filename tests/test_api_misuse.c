/* SPDX-License-Identifier: MIT */
/* API misuse: NULLs, zero, negative and extreme sizes, calls from the wrong context: each a defined answer, never a crash, hang or leak (each case runs in its own process under Criterion, and under ASan/UBSan in CI). */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <signal.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers.h"

/* ---- functions without an error return, given NULL ------------------ */

Test(api_misuse, null_objects_get_neutral_answers, .timeout = 10)
{
	rill_loop_stats st = RILL_LOOP_STATS_INIT;
	size_t high = 1, low = 1;

	cr_assert_eq(rill_loop_features(NULL), 0);
	cr_assert_eq(rill_loop_get_stats(NULL, &st), -EINVAL);
	cr_assert(rill_task_done(NULL));
	cr_assert_not_null(rill_reader_error_info(NULL));
	cr_assert_eq(rill_reader_error_info(NULL)->partial_len, 0);
	cr_assert(rill_reader_at_eof(NULL));
	cr_assert_eq(rill_reader_exception(NULL), -EINVAL);
	cr_assert_eq(rill_reader_buffered(NULL), 0);
	rill_writer_get_write_buffer_limits(NULL, &high, &low);
	cr_assert_eq(high, 0);
	cr_assert_eq(low, 0);
	cr_assert_eq(rill_writer_get_write_buffer_size(NULL), 0);
	cr_assert(rill_writer_is_closing(NULL));
	cr_assert_null(rill_thread_loop(NULL));
	rill_event_set(NULL);
	rill_event_clear(NULL);
	cr_assert_not(rill_event_is_set(NULL));
	cr_assert_eq(rill_queue_len(NULL), 0);
	rill_queue_close(NULL);
	rill_loop_stop(NULL);
}

/* ---- reader arguments ---------------------------------------------- */

Test(api_misuse, readuntil_any_refuses_bad_separators, .timeout = 10)
{
	rill_reader *r;
	rill_bytes out;
	rill_bytes seps[2] = { { "\n", 1 }, { NULL, 3 } };

	cr_assert_eq(rill_reader_new(0, &r), 0);
	cr_assert_eq(rill_reader_feed_data(r, "abc\n", 4), 0);
	/* A NULL separator with a length: memcmp on NULL before. */
	cr_assert_eq(rill_reader_readuntil_any(r, seps, 2, &out), -EINVAL);
	/* nseps * sizeof wraps around. */
	cr_assert_eq(rill_reader_readuntil_any(r, seps, SIZE_MAX / 4, &out), -EINVAL);
	cr_assert_eq(rill_reader_readuntil_any(r, seps, SIZE_MAX, &out), -EINVAL);
	cr_assert_eq(rill_reader_readuntil_any(r, NULL, 1, &out), -EINVAL);
	cr_assert_eq(rill_reader_readuntil(r, NULL, 1, &out), -EINVAL);
	/* The data is still there for a good call. */
	cr_assert_eq(rill_reader_readuntil_any(r, seps, 1, &out), 4);
	rill_reader_free(r);
}

/* ---- loop options -------------------------------------------------- */

Test(api_misuse, huge_stack_size_is_refused, .timeout = 10)
{
	rill_loop *loop = NULL;

	cr_assert_eq(rill_loop_new(RILL_LOOP_OPTIONS(.stack_size = SIZE_MAX), &loop), -EINVAL);
	cr_assert_eq(rill_loop_new(RILL_LOOP_OPTIONS(.stack_size = SIZE_MAX - 4095), &loop),
		     -EINVAL);
	cr_assert_eq(rill_loop_new(RILL_LOOP_OPTIONS(.stack_size = (size_t)1 << 31), &loop),
		     -EINVAL);
	cr_assert(strstr(rill_error_detail(), "stack_size"), "%s", rill_error_detail());
	cr_assert_null(loop);
}

/* ---- writer limits ------------------------------------------------- */

struct pair {
	int sv[2];
	int (*body)(rill_writer *w);
	int result;
};

static int with_writer(void *arg)
{
	struct pair *p = arg;
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;
	int err;

	o.sock = p->sv[0];
	if ((err = rill_open_connection(NULL, 0, &o, &r, &w)) < 0)
		return err;
	p->result = p->body(w);
	rill_writer_free(w);
	return 0;
}

static void run_with_writer(int (*body)(rill_writer *w))
{
	struct pair p = { .body = body, .result = -1 };
	int result = -1;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p.sv), 0);
	cr_assert_eq(rill_run(with_writer, &p, &result), 0);
	cr_assert_eq(result, 0, "%s", rill_strerror(result));
	cr_assert_eq(p.result, 0, "case failed at step %d", p.result);
	close(p.sv[1]);
}

static int limits_body(rill_writer *w)
{
	size_t high, low;

	if (rill_writer_set_write_buffer_limits(w, -1, SSIZE_MAX) != -EINVAL)
		return 1;	/* 4 x low overflowed before */
	if (rill_writer_set_write_buffer_limits(w, -1, SSIZE_MAX / 4 + 1) != -EINVAL)
		return 2;
	if (rill_writer_set_write_buffer_limits(w, -2, -1) != -EINVAL)
		return 3;	/* taken as the default before */
	if (rill_writer_set_write_buffer_limits(w, 100, -7) != -EINVAL)
		return 4;
	rill_writer_get_write_buffer_limits(w, &high, &low);
	if (high != 64 * 1024 || low != 16 * 1024)
		return 5;	/* untouched by the refused calls */
	if (rill_writer_set_write_buffer_limits(w, -1, 1000) != 0)
		return 6;
	rill_writer_get_write_buffer_limits(w, &high, &low);
	return high == 4000 && low == 1000 ? 0 : 7;
}

Test(api_misuse, write_buffer_limits_refuse_overflow_and_stray_negatives, .timeout = 10)
{
	run_with_writer(limits_body);
}

/* ---- servers ------------------------------------------------------- */

static int serve_nothing(rill_reader *r, rill_writer *w, void *arg)
{
	(void)r, (void)w, (void)arg;
	return 0;
}

static int hosts_null(void *arg)
{
	rill_server *s = NULL;
	int err;

	(void)arg;
	err = rill_start_server(serve_nothing, NULL, NULL, 0,
				RILL_SERVER_OPTIONS(.nhosts = 2), &s);
	if (!strstr(rill_error_detail(), "hosts"))
		return 2;
	return err == -EINVAL && !s ? 0 : 1;
}

Test(api_misuse, nhosts_without_hosts_is_einval, .timeout = 10)
{
	int before = count_fds(), result = -1;

	cr_assert_eq(rill_run(hosts_null, NULL, &result), 0);
	cr_assert_eq(result, 0, "case %d", result);
	cr_assert_eq(count_fds(), before, "fd leaked");
}

/* ---- small ones ---------------------------------------------------- */

static int never_ends(void *arg)
{
	(void)arg;
	return rill_sleep_ms(60 * 1000);
}

/* asyncio: stop() before run_forever() makes it one iteration. */
Test(api_misuse, stop_before_run_makes_one_iteration, .timeout = 10)
{
	rill_loop *loop;
	rill_task *t;
	rill_time t0;

	cr_assert_eq(rill_loop_new(NULL, &loop), 0);
	cr_assert_eq(rill_spawn(loop, never_ends, NULL, &t), 0);
	rill_loop_stop(loop);
	t0 = rill_now();
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_lt(rill_now() - t0, 1000 * MS, "the run went on after the stop");
	cr_assert_not(rill_task_done(t));
	rill_task_cancel(t);
	cr_assert_eq(rill_task_join(t, NULL), 0);
	rill_loop_free(loop);
}

static int nothing(void *arg)
{
	(void)arg;
	return 0;
}

Test(api_misuse, thread_on_a_cpu_the_machine_lacks_is_einval, .timeout = 10)
{
	rill_thread *t = NULL;

	cr_assert_eq(rill_thread_start(NULL, 4096, nothing, NULL, &t), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "CPU 4096"), "%s", rill_error_detail());
	cr_assert_eq(rill_thread_start(NULL, -2, nothing, NULL, &t), -EINVAL);
	cr_assert_eq(rill_thread_start(NULL, 1 << 30, nothing, NULL, &t), -EINVAL);
	cr_assert_null(t);
	cr_assert_eq(rill_thread_start(NULL, 0, nothing, NULL, &t), 0);
	cr_assert_eq(rill_thread_join(t, NULL), 0);
}

/* The loop's error text is per thread: it must reach the starter. */
Test(api_misuse, thread_start_carries_the_loop_error_detail, .timeout = 10)
{
	rill_thread *t = NULL;

	cr_assert_eq(rill_thread_start(RILL_LOOP_OPTIONS(.buf_count = 3), -1, nothing,
				       NULL, &t), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "buf_count"), "detail: '%s'",
		  rill_error_detail());
}

static int adopt_listener(void *arg)
{
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;

	o.sock = *(int *)arg;
	int err = rill_open_connection(NULL, 0, &o, &r, &w);

	return strstr(rill_error_detail(), "listening") ? err : -EPROTO;
}

Test(api_misuse, open_connection_refuses_a_listening_socket, .timeout = 10)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), result = 0;

	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(fd, 1), 0);
	cr_assert_eq(rill_run(adopt_listener, &fd, &result), 0);
	cr_assert_eq(result, -EINVAL, "%s", rill_strerror(result));
	cr_assert_eq(fcntl(fd, F_GETFD), FD_CLOEXEC, "the caller's fd was closed");
	close(fd);
}

/* ---- misuse that would corrupt memory: named, then abort ------------ */

static int log_pipe = -1;

static void log_to_pipe(int level, const char *msg, void *arg)
{
	(void)level, (void)arg;
	if (write(log_pipe, msg, strlen(msg)) < 0 || write(log_pipe, "\n", 1) < 0)
		_exit(3);
}

/* Runs fn in a child that logs into a pipe; the child must die of SIGABRT
 * after logging a line that contains what. */
static void expect_abort(void (*fn)(void), const char *what)
{
	char buf[1024] = { 0 };
	int p[2], status = 0;
	ssize_t n, got = 0;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		log_pipe = p[1];
		rill_set_log_handler(log_to_pipe, NULL);
		fn();
		_exit(0);	/* went on: the misuse was not caught */
	}
	close(p[1]);
	while ((n = read(p[0], buf + got, sizeof(buf) - 1 - (size_t)got)) > 0)
		got += n;
	close(p[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		  "no abort (status %#x), log: %s", status, buf);
	cr_assert(strstr(buf, what), "log does not name the misuse: %s", buf);
}

static int ret_seven(void *arg)
{
	(void)arg;
	return 7;
}

static void join_twice(void)
{
	rill_loop *loop;
	rill_task *t;

	rill_loop_new(NULL, &loop);
	rill_spawn(loop, ret_seven, NULL, &t);
	rill_task_join(t, NULL);
	rill_task_join(t, NULL);
}

Test(api_misuse, join_twice_is_named_and_aborts, .timeout = 10)
{
	expect_abort(join_twice, "rill_task_join: the task handle was already joined");
}

static void cancel_after_join(void)
{
	rill_loop *loop;
	rill_task *t;

	rill_loop_new(NULL, &loop);
	rill_spawn(loop, ret_seven, NULL, &t);
	rill_task_join(t, NULL);
	rill_task_cancel(t);
}

Test(api_misuse, cancel_after_join_is_named_and_aborts, .timeout = 10)
{
	expect_abort(cancel_after_join, "rill_task_cancel: the task handle");
}

static int group_wait_fn(void *arg)
{
	return rill_task_group_wait(arg);
}

static int group_sleep_fn(void *arg)
{
	(void)arg;
	return rill_sleep_ms(1000);
}

static int group_free_main(void *arg)
{
	rill_task_group *g;

	(void)arg;
	rill_task_group_new(rill_loop_current(), &g);
	rill_task_group_spawn(g, group_sleep_fn, NULL, NULL);
	rill_spawn(rill_loop_current(), group_wait_fn, g, NULL);
	rill_yield();
	rill_task_group_free(g);	/* its waiter would wake in freed memory */
	return 0;
}

static void group_free_while_waited(void)
{
	rill_run(group_free_main, NULL, NULL);
}

Test(api_misuse, group_free_while_waited_is_named_and_aborts, .timeout = 10)
{
	expect_abort(group_free_while_waited,
		     "rill_task_group_free: a task is waiting on the group");
}

/* Two tasks joining one: the second is refused, the first gets the result. */
struct joiners {
	rill_task *target;
	int first, second, result;
};

static int sleeper(void *arg)
{
	(void)arg;
	rill_sleep_ms(20);
	return 42;
}

static int first_joiner(void *arg)
{
	struct joiners *j = arg;

	j->first = rill_task_join(j->target, &j->result);
	return 0;
}

static int second_joiner(void *arg)
{
	struct joiners *j = arg;

	rill_yield();		/* the first is parked in join by now */
	j->second = rill_task_join(j->target, NULL);
	return 0;
}

Test(api_misuse, two_joiners_second_gets_ebusy, .timeout = 10)
{
	struct joiners j = { .first = 1, .second = 1 };
	rill_loop *loop;

	cr_assert_eq(rill_loop_new(NULL, &loop), 0);
	cr_assert_eq(rill_spawn(loop, sleeper, NULL, &j.target), 0);
	cr_assert_eq(rill_spawn(loop, first_joiner, &j, NULL), 0);
	cr_assert_eq(rill_spawn(loop, second_joiner, &j, NULL), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(j.first, 0);
	cr_assert_eq(j.result, 42);
	cr_assert_eq(j.second, -EBUSY);
	cr_assert_eq(rill_loop_free(loop), 0);
}

/* rill_loop_free from inside a task of the loop: refused, loop intact. */
static int free_my_loop(void *arg)
{
	int *res = arg;

	*res = rill_loop_free(rill_loop_current());
	return rill_sleep_ms(1);	/* the loop must still work */
}

Test(api_misuse, loop_free_inside_a_task_is_ebusy, .timeout = 10)
{
	rill_loop *loop;
	rill_task *t;
	int res = 0, result = -1;

	cr_assert_eq(rill_loop_new(NULL, &loop), 0);
	cr_assert_eq(rill_spawn(loop, free_my_loop, &res, &t), 0);
	cr_assert_eq(rill_task_join(t, &result), 0);
	cr_assert_eq(res, -EBUSY);
	cr_assert_eq(result, 0);
	cr_assert_eq(rill_loop_free(loop), 0);
}

/* ---- writers -------------------------------------------------------- */

static int free_twice_task(void *arg)
{
	int *sv = arg;
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;

	o.sock = sv[0];
	if (rill_open_connection(NULL, 0, &o, &r, &w) < 0)
		return 1;
	rill_writer_free(w);
	rill_writer_free(w);
	return 0;
}

static void writer_free_twice(void)
{
	int sv[2];

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	rill_run(free_twice_task, sv, NULL);
}

Test(api_misuse, writer_free_twice_is_named_and_aborts, .timeout = 10)
{
	expect_abort(writer_free_twice, "rill_writer_free: the writer was already freed");
}

/* One keep, two releases: the second is named and aborts. */
static int release_twice_task(void *arg)
{
	int *sv = arg;
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;

	o.sock = sv[0];
	if (rill_open_connection(NULL, 0, &o, &r, &w) < 0)
		return 1;
	rill_writer_keep(w);
	rill_writer_release(w);
	rill_writer_release(w);
	return 0;
}

static void writer_release_twice(void)
{
	int sv[2];

	socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv);
	rill_run(release_twice_task, sv, NULL);
}

Test(api_misuse, writer_released_more_than_kept_is_named_and_aborts, .timeout = 10)
{
	expect_abort(writer_release_twice, "rill_writer_release: more releases than keeps");
}

/* The server callback's writer is borrowed: freeing it closes it instead. */
static int free_borrowed(rill_reader *r, rill_writer *w, void *arg)
{
	(void)r, (void)arg;
	rill_writer_write(w, "bye", 3);
	rill_writer_free(w);
	return 0;
}

static int borrowed_client(void *arg)
{
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	char buf[8];
	ssize_t n;
	int *got = arg;

	if (rill_start_server(free_borrowed, NULL, "127.0.0.1", 0, NULL, &s) < 0)
		return 1;
	for (int i = 0; i < 3; i++) {	/* the server goes on serving */
		if (rill_open_connection("127.0.0.1", rill_server_port(s), NULL, &r, &w) < 0)
			return 2;
		n = rill_reader_read(r, buf, sizeof(buf));
		if (n == 3 && memcmp(buf, "bye", 3) == 0 &&
		    rill_reader_read(r, buf, sizeof(buf)) == 0)
			(*got)++;
		rill_writer_free(w);
	}
	rill_server_free(s);
	return 0;
}

static char last_log[512];

static void keep_log(int level, const char *msg, void *arg)
{
	(void)level, (void)arg;
	snprintf(last_log, sizeof(last_log), "%s", msg);
}

Test(api_misuse, freeing_a_borrowed_writer_closes_it, .timeout = 10)
{
	int got = 0, result = -1;

	rill_set_log_handler(keep_log, NULL);
	cr_assert_eq(rill_run(borrowed_client, &got, &result), 0);
	cr_assert_eq(result, 0);
	cr_assert_eq(got, 3, "bytes then EOF on each connection");
	cr_assert(strstr(last_log, "borrowed"), "log: %s", last_log);
	rill_set_log_handler(NULL, NULL);
}

/* ---- servers freed under a waiting task ----------------------------- */

struct under {
	rill_server *s;
	int forever, closed;
};

static int in_forever(void *arg)
{
	struct under *u = arg;

	u->forever = rill_server_serve_forever(u->s);
	return 0;
}

static int in_wait_closed(void *arg)
{
	struct under *u = arg;

	u->closed = rill_server_wait_closed(u->s);
	return 0;
}

static int free_under_waiters(void *arg)
{
	struct under *u = arg;
	rill_task *a, *b;

	if (rill_start_server(serve_nothing, NULL, "127.0.0.1", 0, NULL, &u->s) < 0)
		return 1;
	rill_spawn(rill_loop_current(), in_forever, u, &a);
	rill_spawn(rill_loop_current(), in_wait_closed, u, &b);
	rill_sleep_ms(10);
	rill_server_free(u->s);	/* both are parked on it */
	rill_task_join(a, NULL);
	rill_task_join(b, NULL);
	return 0;
}

Test(api_misuse, server_free_while_serve_forever_waits, .timeout = 10)
{
	struct under u = { .forever = 1, .closed = 1 };
	int before = count_fds(), result = -1;

	cr_assert_eq(rill_run(free_under_waiters, &u, &result), 0);
	cr_assert_eq(result, 0);
	cr_assert_eq(u.forever, 0, "serve_forever: %s", rill_strerror(u.forever));
	cr_assert_eq(u.closed, 0, "wait_closed: %s", rill_strerror(u.closed));
	cr_assert_eq(count_fds(), before, "fd leaked");
}

/* ---- waiting outside a task touches nothing ------------------------ */

struct outside {
	rill_writer *w;
	rill_server *s;
	int drain, closed, sclosed, forever;
};

static void wait_from_callback(void *arg)
{
	struct outside *o = arg;

	/* Above the high-water mark, so that drain would have to wait. */
	rill_writer_set_write_buffer_limits(o->w, 1, 0);
	rill_writer_write(o->w, "ping", 4);
	o->drain = rill_writer_drain(o->w);
	rill_writer_set_write_buffer_limits(o->w, -1, -1);
	o->closed = rill_writer_wait_closed(o->w);
	o->sclosed = rill_server_wait_closed(o->s);
	o->forever = rill_server_serve_forever(o->s);
}

static int echo_one(rill_reader *r, rill_writer *w, void *arg)
{
	char buf[16];
	ssize_t n = rill_reader_read(r, buf, sizeof(buf));

	(void)arg;
	if (n > 0)
		rill_writer_write(w, buf, (size_t)n);
	rill_writer_close(w);
	return rill_writer_wait_closed(w);
}

static int outside_task(void *arg)
{
	struct outside *o = arg;
	rill_reader *r;
	char buf[4];

	if (rill_start_server(echo_one, NULL, "127.0.0.1", 0, NULL, &o->s) < 0)
		return 1;
	if (rill_open_connection("127.0.0.1", rill_server_port(o->s), NULL, &r, &o->w) < 0)
		return 2;
	rill_loop_call_soon(rill_loop_current(), wait_from_callback, o);
	rill_sleep_ms(5);	/* the callback has run */
	/* The objects are intact: a wait entry left linked into a dead
	 * frame would crash these. */
	if (rill_writer_drain(o->w) != 0 || rill_reader_readexactly(r, buf, 4) != 4 ||
	    memcmp(buf, "ping", 4) != 0)
		return 3;
	rill_writer_close(o->w);
	if (rill_writer_wait_closed(o->w) != 0)
		return 4;
	rill_writer_free(o->w);
	rill_server_close(o->s);
	if (rill_server_wait_closed(o->s) != 0)
		return 5;
	rill_server_free(o->s);
	return 0;
}

Test(api_misuse, waiting_outside_a_task_is_eperm_and_touches_nothing, .timeout = 10)
{
	struct outside o = { 0 };
	int result = -1;

	cr_assert_eq(rill_run(outside_task, &o, &result), 0);
	cr_assert_eq(result, 0, "step %d", result);
	cr_assert_eq(o.drain, -EPERM);
	cr_assert_eq(o.closed, -EPERM);
	cr_assert_eq(o.sclosed, -EPERM);
	cr_assert_eq(o.forever, -EPERM);
}

/* ---- the error detail belongs to the last failing call -------------- */

static int stale_detail(void *arg)
{
	rill_server *s;
	rill_reader *r;
	char buf[4];
	int *steps = arg;

	/* A failure with a detail... */
	if (rill_start_unix_server(serve_nothing, NULL, NULL, NULL, &s) != -EINVAL ||
	    !*rill_error_detail())
		return 1;
	(*steps)++;
	/* ...then failures that set none must not show it. */
	if (rill_task_join(NULL, NULL) != -EINVAL || *rill_error_detail())
		return 2;
	(*steps)++;
	if (rill_reader_new(0, &r) != 0)
		return 3;
	rill_reader_set_exception(r, -ECONNRESET);
	if (rill_reader_read(r, buf, sizeof(buf)) != -ECONNRESET || *rill_error_detail())
		return 4;
	rill_reader_free(r);
	(*steps)++;
	return 0;
}

Test(api_misuse, error_detail_is_set_or_cleared_by_every_failing_call, .timeout = 10)
{
	int steps = 0, result = -1;

	cr_assert_eq(rill_run(stale_detail, &steps, &result), 0);
	cr_assert_eq(result, 0, "step %d failed; detail: '%s'", result, rill_error_detail());
	cr_assert_eq(steps, 3);
}
