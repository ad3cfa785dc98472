/* SPDX-License-Identifier: MIT */
/* Every public function given NULLs, zero and extreme sizes, in a task and outside one: each case in its own process, a defined answer (mostly -EINVAL), never a crash, a hang or a leaked fd. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <errno.h>
#include <stdint.h>

#include "rill.h"
#include "tests/helpers.h"

/* One case: returns 0 when every call in it answered as documented, else
 * the number of the check that did not. */
typedef int (*nulls_case)(void);

#define EXPECT(n, cond) do { if (!(cond)) return (n); } while (0)

static int loop_calls(void)
{
	rill_loop *loop = NULL;

	EXPECT(1, rill_loop_new(NULL, NULL) == -EINVAL);
	EXPECT(2, rill_loop_run(NULL) == -EINVAL);
	EXPECT(3, rill_loop_free(NULL) == 0);
	EXPECT(4, rill_loop_call_soon(NULL, NULL, NULL) == -EINVAL);
	EXPECT(5, rill_loop_call_soon_threadsafe(NULL, NULL, NULL) == -EINVAL);
	EXPECT(6, rill_loop_new(NULL, &loop) == 0);
	EXPECT(7, rill_loop_call_soon(loop, NULL, NULL) == -EINVAL);
	EXPECT(8, rill_loop_call_soon_threadsafe(loop, NULL, NULL) == -EINVAL);
	EXPECT(9, rill_feature_name(0) == NULL && rill_feature_name(1u << 31) == NULL);
	EXPECT(10, rill_strerror(INT32_MIN) && rill_err_name(INT32_MAX));
	EXPECT(11, rill_loop_free(loop) == 0);
	return 0;
}

static int task_calls(void)
{
	rill_loop *loop;
	rill_task *t = NULL;

	EXPECT(1, rill_spawn(NULL, NULL, NULL, &t) == -EINVAL && !t);
	EXPECT(2, rill_task_join(NULL, NULL) == -EINVAL);
	EXPECT(3, rill_task_cancel(NULL) == -EINVAL);
	rill_task_detach(NULL);
	EXPECT(4, rill_run(NULL, NULL, NULL) == -EINVAL);
	EXPECT(5, rill_yield() == -EPERM);	/* outside a task */
	EXPECT(6, rill_sleep_ms(1) == -EPERM);
	EXPECT(7, rill_deadline_push(1) == RILL_TIME_NEVER);
	rill_deadline_pop(RILL_TIME_NEVER);
	EXPECT(8, !rill_deadline_expired());
	EXPECT(9, rill_task_current() == NULL);
	EXPECT(10, rill_loop_new(NULL, &loop) == 0);
	EXPECT(11, rill_spawn(loop, NULL, NULL, &t) == -EINVAL);
	EXPECT(12, rill_loop_free(loop) == 0);
	return 0;
}

/* Task groups, rill_wait and rill_gather (waiting on several tasks). */
static int group_calls(void)
{
	rill_task_group *g = NULL;
	rill_task *t = NULL;
	int res;

	EXPECT(1, rill_task_group_new(NULL, &g) == -EINVAL && !g);
	EXPECT(2, rill_task_group_spawn(NULL, NULL, NULL, &t) == -EINVAL && !t);
	EXPECT(3, rill_task_group_wait(NULL) == -EINVAL);
	EXPECT(4, rill_task_group_failed(NULL) == 0 &&
		  rill_task_group_cancel(NULL) == -EINVAL);
	rill_task_group_free(NULL);
	EXPECT(5, rill_wait(NULL, 0, 0, 0, NULL) == -EINVAL);
	EXPECT(6, rill_wait(&t, SIZE_MAX, RILL_ALL_COMPLETED, 0, NULL) == -EPERM);
	EXPECT(7, rill_gather(NULL, 0, NULL, false) == -EINVAL);
	EXPECT(8, rill_gather(&t, 1, &res, true) == -EPERM);	/* would wait outside a task */
	return 0;
}

static int sync_calls(void)
{
	rill_queue *q = NULL;
	void *item;

	EXPECT(1, rill_thread_start(NULL, -1, NULL, NULL, NULL) == -EINVAL);
	EXPECT(2, rill_thread_join(NULL, NULL) == -EINVAL);
	EXPECT(3, rill_event_new(NULL) == -EINVAL);
	rill_event_free(NULL);
	EXPECT(4, rill_event_wait(NULL) == -EINVAL);
	EXPECT(5, rill_queue_new(0, &q) == -EINVAL && !q);
	EXPECT(6, rill_queue_new(SIZE_MAX, &q) < 0 && !q);
	EXPECT(7, rill_queue_new(1, NULL) == -EINVAL);
	rill_queue_free(NULL);
	EXPECT(8, rill_queue_put(NULL, NULL) == -EINVAL);
	EXPECT(9, rill_queue_try_put(NULL, NULL) == -EINVAL);
	EXPECT(10, rill_queue_get(NULL, &item) == -EINVAL);
	EXPECT(11, rill_queue_try_get(NULL, &item) == -EINVAL);
	EXPECT(12, rill_queue_new(1, &q) == 0);
	EXPECT(13, rill_queue_try_get(q, NULL) == -EINVAL);
	EXPECT(14, rill_queue_get(q, &item) == -EPERM);	/* would wait outside a task */
	rill_queue_free(q);
	return 0;
}

static int reader_calls(void)
{
	rill_reader *r;
	rill_bytes out;
	char buf[4];

	EXPECT(1, rill_reader_new(0, NULL) == -EINVAL);
	EXPECT(2, rill_reader_read(NULL, buf, 4) == -EINVAL);
	EXPECT(3, rill_reader_read_all(NULL, &out) == -EINVAL);
	EXPECT(4, rill_reader_readexactly(NULL, buf, 4) == -EINVAL);
	EXPECT(5, rill_reader_readuntil(NULL, "\n", 1, &out) == -EINVAL);
	EXPECT(6, rill_reader_readuntil_any(NULL, NULL, 0, &out) == -EINVAL);
	EXPECT(7, rill_reader_readline(NULL, &out) == -EINVAL);
	EXPECT(8, rill_reader_peek(NULL, &out) == -EINVAL);
	rill_reader_consume(NULL, 1);
	rill_reader_set_exception(NULL, -EIO);
	EXPECT(9, rill_reader_feed_data(NULL, "x", 1) == -EINVAL);
	rill_reader_feed_eof(NULL);
	rill_reader_free(NULL);
	EXPECT(10, rill_reader_new(0, &r) == 0);
	EXPECT(11, rill_reader_feed_data(r, NULL, 1) == -EINVAL);
	EXPECT(12, rill_reader_feed_data(r, "abc", 3) == 0);
	EXPECT(13, rill_reader_read(r, NULL, 1) == -EINVAL);
	EXPECT(14, rill_reader_read_all(r, NULL) == -EINVAL);
	EXPECT(15, rill_reader_readexactly(r, NULL, 2) == -EINVAL);
	EXPECT(16, rill_reader_readline(r, NULL) == -EINVAL);
	EXPECT(17, rill_reader_readuntil(r, "", 0, &out) == -EINVAL);
	EXPECT(18, rill_reader_peek(r, NULL) == -EINVAL);
	rill_reader_consume(r, SIZE_MAX);	/* more than buffered: clamped */
	EXPECT(19, rill_reader_buffered(r) == 0);
	rill_reader_free(r);
	return 0;
}

static int writer_calls(void)
{
	rill_bytes chunk = { "x", 1 };

	EXPECT(1, rill_writer_write(NULL, "x", 1) == -EINVAL);
	EXPECT(2, rill_writer_writelines(NULL, &chunk, 1) == -EINVAL);
	EXPECT(3, rill_writer_write_ref(NULL, "x", 1, NULL, NULL) == -EINVAL);
	EXPECT(4, rill_writer_drain(NULL) == -EINVAL);
	EXPECT(5, rill_writer_set_write_buffer_limits(NULL, -1, -1) == -EINVAL);
	EXPECT(6, rill_writer_write_eof(NULL) == -EINVAL);
	EXPECT(7, !rill_writer_can_write_eof(NULL));
	rill_writer_close(NULL);
	EXPECT(8, rill_writer_wait_closed(NULL) == -EINVAL);
	rill_writer_abort(NULL);
	EXPECT(9, rill_writer_get_extra_info(NULL, "peername", NULL) == NULL);
	EXPECT(10, rill_writer_reader(NULL) == NULL);
	rill_writer_free(NULL);
	EXPECT(11, rill_writer_keep(NULL) == NULL);
	rill_writer_release(NULL);
	EXPECT(12, rill_writer_abort_reset(NULL) == -EINVAL);
	return 0;
}

static int stream_calls_in_task(void *arg)
{
	rill_reader *r;
	rill_writer *w;
	rill_server *s;

	(void)arg;
	EXPECT(1, rill_open_connection(NULL, 0, NULL, &r, &w) == -EINVAL);
	EXPECT(2, rill_open_connection("127.0.0.1", 1, NULL, NULL, &w) == -EINVAL);
	EXPECT(3, rill_open_connection("127.0.0.1", -1, NULL, &r, &w) == -EINVAL);
	EXPECT(4, rill_open_connection("127.0.0.1", 65536, NULL, &r, &w) == -EINVAL);
	EXPECT(5, rill_open_unix_connection(NULL, NULL, &r, &w) == -EINVAL);
	EXPECT(6, rill_open_unix_connection("", NULL, &r, &w) == -EINVAL);
	EXPECT(7, rill_start_server(NULL, NULL, "127.0.0.1", 0, NULL, &s) == -EINVAL);
	EXPECT(8, rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, NULL) == -EINVAL);
	EXPECT(9, rill_start_server(echo_lines, NULL, "127.0.0.1", 70000, NULL, &s) == -EINVAL);
	EXPECT(10, rill_start_unix_server(echo_lines, NULL, NULL, NULL, &s) == -EINVAL);
	EXPECT(11, rill_server_nsockets(NULL) == 0);
	EXPECT(12, rill_server_socket(NULL, 0) < 0);
	EXPECT(13, rill_server_sockname(NULL, 0, NULL) == NULL);
	EXPECT(14, rill_server_port(NULL) == 0);
	EXPECT(15, !rill_server_is_serving(NULL));
	EXPECT(16, rill_server_start_serving(NULL) == -EINVAL);
	EXPECT(17, rill_server_serve_forever(NULL) == -EINVAL);
	rill_server_close(NULL);
	rill_server_close_clients(NULL);
	rill_server_abort_clients(NULL);
	EXPECT(18, rill_server_wait_closed(NULL) == -EINVAL);
	rill_server_free(NULL);
	EXPECT(19, rill_open_connection_attempts(NULL) == NULL);
	EXPECT(20, rill_server_shutdown(NULL, 0) == -EINVAL);
	return 0;
}

static int stream_calls(void)
{
	int before = count_fds(), result = -1;

	EXPECT(100, rill_run(stream_calls_in_task, NULL, &result) == 0);
	EXPECT(101, count_fds() == before);
	return result;
}

static int server_socket_out_of_range(void *arg)
{
	rill_server *s;
	socklen_t len = 0;
	int err;

	(void)arg;
	if ((err = rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &s)) < 0)
		return err;
	err = rill_server_socket(s, SIZE_MAX) < 0 && !rill_server_sockname(s, 99, &len) ? 0 : 1;
	rill_server_free(s);
	return err;
}

static int server_indexes(void)
{
	int result = -1;

	EXPECT(100, rill_run(server_socket_out_of_range, NULL, &result) == 0);
	return result;
}

static const nulls_case cases[] = {
	loop_calls, task_calls, group_calls, sync_calls, reader_calls, writer_calls,
	stream_calls, server_indexes,
};

/* Indexes, not function pointers: Criterion may run each case in a new
 * image of the program, where the pointers would differ. */
ParameterizedTestParameters(api_nulls, every_call)
{
	static int index[sizeof(cases) / sizeof(cases[0])];

	for (size_t i = 0; i < sizeof(index) / sizeof(index[0]); i++)
		index[i] = (int)i;
	return cr_make_param_array(int, index, sizeof(index) / sizeof(index[0]));
}

ParameterizedTest(int *i, api_nulls, every_call, .timeout = 20)
{
	int failed = cases[*i]();

	cr_assert_eq(failed, 0, "case %d: check %d gave the wrong answer", *i, failed);
}
