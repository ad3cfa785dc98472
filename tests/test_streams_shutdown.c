/* SPDX-License-Identifier: MIT */
/* rill_server_shutdown: graceful within the grace period, a client that never reads aborted after it, callbacks that wait on something else cancelled. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

TestSuite(streams_shutdown, .timeout = 30);

/* A server callback that writes 8 MiB to a client that never reads, then
 * waits on something else than its connection until cancelled. */
static int flood_then_sleep(rill_reader *r, rill_writer *w, void *arg)
{
	static char big[8 << 20];
	int *state = arg;

	(void)r;
	__atomic_store_n(state, 1, __ATOMIC_SEQ_CST);
	rill_writer_write(w, big, sizeof(big));
	while (rill_sleep_ms(100) == 0)
		;
	__atomic_store_n(state, 2, __ATOMIC_SEQ_CST);
	return 0;
}

/* As above, waiting in drain: the abort ends it. */
static int flood_then_drain(rill_reader *r, rill_writer *w, void *arg)
{
	static char big[8 << 20];
	int *state = arg;

	(void)r;
	__atomic_store_n(state, 1, __ATOMIC_SEQ_CST);
	rill_writer_write(w, big, sizeof(big));
	while (rill_writer_drain(w) == 0)
		;
	__atomic_store_n(state, 2, __ATOMIC_SEQ_CST);
	return 0;
}

static void never_reads(rill_client_connected_fn cb, int threads)
{
	rill_server_options o = RILL_SERVER_OPTIONS_INIT;
	rill_server *s;
	int state = 0, fd, ret;
	rill_time t0;

	o.threads = threads;
	cr_assert_eq(rill_start_server(cb, &state, "127.0.0.1", 0, &o, &s), 0);
	fd = tcp_client(rill_server_port(s));
	small_buffer(fd, SO_RCVBUF);
	for (int i = 0; i < 1000 && __atomic_load_n(&state, __ATOMIC_SEQ_CST) != 1; i++)
		rill_sleep_ms(1);
	cr_assert_eq(__atomic_load_n(&state, __ATOMIC_SEQ_CST), 1);
	rill_sleep_ms(20);	/* the kernel buffers fill */
	t0 = rill_now();
	ret = rill_server_shutdown(s, 300 * MS);
	cr_assert_eq(ret, 1, "one client aborted: %d", ret);
	cr_assert_geq(rill_now() - t0, 300 * MS, "the grace period was given");
	cr_assert_lt(rill_now() - t0, 1300 * MS, "within grace + 1 s");
	cr_assert_eq(__atomic_load_n(&state, __ATOMIC_SEQ_CST), 2, "the callback returned");
	cr_assert_not(rill_server_is_serving(s));
	cr_assert_lt(tcp_connect(rill_server_port(s)), 0, "no longer listening");
	close(fd);
	rill_server_free(s);
}

TASK_TEST(streams_shutdown, a_client_that_never_reads_is_aborted_after_the_grace)
{
	never_reads(flood_then_sleep, 0);	/* the callback is cancelled */
	return 0;
}

TASK_TEST(streams_shutdown, a_callback_draining_to_a_client_that_never_reads)
{
	never_reads(flood_then_drain, 0);
	return 0;
}

TASK_TEST(streams_shutdown, a_server_with_threads_aborts_after_the_grace)
{
	never_reads(flood_then_drain, 2);	/* the callback runs on a worker */
	return 0;
}

TASK_TEST(streams_shutdown, clients_that_end_in_time_are_not_aborted)
{
	rill_server *s;
	struct served sv = { 0 };
	rill_time t0;
	char buf[8];
	int fd;

	cr_assert_eq(rill_start_server(echo_served, &sv, "127.0.0.1", 0, NULL, &s), 0);
	fd = tcp_client(rill_server_port(s));
	set_nonblock(fd);
	peer_sends(fd, "hi\n");
	cr_assert_eq(peer_recv_all(fd, buf, 3), 3);
	t0 = rill_now();
	cr_assert_eq(rill_server_shutdown(s, 5000 * MS), 0);
	cr_assert_lt(rill_now() - t0, 1000 * MS, "no need to wait out the grace");
	cr_assert_eq(sv.calls, 1);
	cr_assert_eq(peer_recv_all(fd, buf, 1), 0, "closed with a FIN");
	close(fd);
	/* Again: nothing left to do. */
	cr_assert_eq(rill_server_shutdown(s, 0), 0);
	rill_server_free(s);
	return 0;
}

TASK_TEST(streams_shutdown, bad_arguments)
{
	cr_assert_eq(rill_server_shutdown(NULL, 0), -EINVAL);
	cr_assert_str_neq(rill_error_detail(), "");
	return 0;
}
