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
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"

#define MS RILL_NSEC_PER_MSEC

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	while (d && (e = readdir(d)))
		n += e->d_name[0] != '.';
	if (d)
		closedir(d);
	return n - 1;	/* the directory's own fd */
}

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
	return err == -EINVAL && !s ? 0 : 1;
}

Test(api_misuse, nhosts_without_hosts_is_einval, .timeout = 10)
{
	int before = count_fds(), result = -1;

	cr_assert_eq(rill_run(hosts_null, NULL, &result), 0);
	cr_assert_eq(result, 0);
	cr_assert(strstr(rill_error_detail(), "hosts"), "%s", rill_error_detail());
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
	return rill_open_connection(NULL, 0, &o, &r, &w);
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
	cr_assert(strstr(rill_error_detail(), "listening"), "%s", rill_error_detail());
	cr_assert_eq(fcntl(fd, F_GETFD), FD_CLOEXEC, "the caller's fd was closed");
	close(fd);
}
