/* SPDX-License-Identifier: MIT */
/* A server freed outside any task, then its loop: the listening socket and the server's memory go with them. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

TestSuite(streams_serverfree, .timeout = 30);

/* Whether 127.0.0.1:port refuses connections (nobody listens). */
static bool refused(int port)
{
	int fd = tcp_connect(port);

	if (fd >= 0)
		close(fd);
	return fd < 0 && errno == ECONNREFUSED;
}

static void free_outside_a_task(bool run_first)
{
	int before = count_fds(), port;
	rill_loop *l;
	rill_server *s;

	cr_assert_eq(rill_loop_new(NULL, &l), 0);
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &s), 0,
		     "%s", rill_error_detail());
	port = rill_server_port(s);
	cr_assert_gt(port, 0);
	if (run_first) {	/* the accept armed and in the kernel */
		rill_loop_stop(l);	/* one iteration */
		cr_assert_eq(rill_loop_run(l), 0);
	}
	rill_server_free(s);
	cr_assert_eq(rill_loop_free(l), 0);
	cr_assert_eq(count_fds(), before, "fds: %d before, %d after", before, count_fds());
	cr_assert(refused(port), "port %d still accepts", port);
	/* The server's memory: ASan's leak check at exit. */
}

Test(streams_serverfree, free_before_the_loop_ran)
{
	free_outside_a_task(false);
}

Test(streams_serverfree, free_after_the_loop_ran)
{
	free_outside_a_task(true);
}
