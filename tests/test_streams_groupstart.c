/* SPDX-License-Identifier: MIT */
/* A multi-loop server (threads = N) that fails to start says why: the worker's error detail reaches the caller. */
#include <criterion/criterion.h>
#include <sys/resource.h>

#include "tests/helpers.h"

TestSuite(streams_groupstart, .timeout = 30);

TASK_TEST(streams_groupstart, port_in_use_gives_the_bind_detail)
{
	int port, ls = listen_loopback(&port, 4);	/* no SO_REUSEPORT */
	rill_server *s = NULL;
	int err;

	cr_assert_geq(ls, 0);
	err = rill_start_server(echo_lines, NULL, "127.0.0.1", port,
				RILL_SERVER_OPTIONS(.threads = 2), &s);
	cr_assert_eq(err, -EADDRINUSE, "%s", rill_err_name(err));
	cr_assert_null(s);
	cr_assert(strstr(rill_error_detail(), "thread 0"), "detail: \"%s\"", rill_error_detail());
	cr_assert(strstr(rill_error_detail(), "127.0.0.1"), "detail: \"%s\"", rill_error_detail());
	close(ls);
	return 0;
}

/* In a child: with no fd to spare, the first worker's loop cannot be made. */
static int no_fds_for_a_worker(void *arg)
{
	struct rlimit rl;
	rill_server *s = NULL;
	int err, n = count_fds();

	(void)arg;
	CHECK(n > 0);
	rl.rlim_cur = rl.rlim_max = (rlim_t)n;
	CHECK(setrlimit(RLIMIT_NOFILE, &rl) == 0, "%s", strerror(errno));
	err = rill_start_server(echo_lines, NULL, "127.0.0.1", 0,
				RILL_SERVER_OPTIONS(.threads = 2), &s);
	CHECK(err < 0, "started with no fds");
	CHECK(s == NULL);
	CHECK(strstr(rill_error_detail(), "thread 0"), "detail: \"%s\" for %s",
	      rill_error_detail(), rill_err_name(err));
	return 0;
}

Test(streams_groupstart, worker_loop_failure_gives_a_detail)
{
	int child_end, test_end, status;
	pid_t pid = fork_task(no_fds_for_a_worker, NULL, &child_end, &test_end);

	close(test_end);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}
