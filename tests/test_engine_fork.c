/* SPDX-License-Identifier: MIT */
/* fork(): a child refuses every call on its parent's loop (RILL_EFORKED, a detail naming fork), frees it without harming the parent, and runs loops of its own. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

TestSuite(engine_fork, .timeout = 60);

static int noop(void *arg)
{
	(void)arg;
	return 0;
}

static bool names_fork(void)
{
	return strstr(rill_error_detail(), "fork()") != NULL;
}

/* In the child: a loop of its own, a client of the parent's server. */
static int child_client(void *arg)
{
	int port = *(int *)arg;

	CHECK(rill_task_current() != NULL);
	for (int i = 0; i < 5; i++)
		CHECK(echo_once(port) == 0, "round %d", i);
	return 0;
}

/* The child's side of inherited_loop_refused_in_the_child: every call on
 * the parent's loop and server is refused; then a loop of its own works. */
static int child_main(rill_loop *parent, rill_server *s, int port)
{
	rill_server *s2 = NULL;
	rill_task *t = NULL;
	int err, result = -1;

	CHECK(rill_loop_current() == parent);
	CHECK((err = rill_loop_run(parent)) == RILL_EFORKED, "run: %s", rill_err_name(err));
	CHECK(names_fork(), "detail: %s", rill_error_detail());
	CHECK((err = rill_spawn(parent, noop, NULL, &t)) == RILL_EFORKED, "spawn: %s",
	      rill_err_name(err));
	CHECK(t == NULL);
	CHECK(names_fork(), "detail: %s", rill_error_detail());
	err = rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &s2);
	CHECK(err == RILL_EFORKED, "start_server: %s", rill_err_name(err));
	CHECK(s2 == NULL);
	CHECK(rill_server_start_serving(s) == RILL_EFORKED);
	rill_server_close(s);		/* refused: logged, nothing done */
	rill_server_free(s);
	CHECK(strcmp(rill_strerror(RILL_EFORKED), "unknown error") != 0);
	/* Frees only the child's copies of the loop's fds. */
	CHECK(rill_loop_free(parent) == 0);
	CHECK(rill_loop_current() == NULL);
	/* A loop of its own, as a client of the parent. */
	CHECK((err = rill_run(child_client, &port, &result)) == 0, "%s", rill_err_name(err));
	CHECK(result == 0);
	return 0;
}

struct reap {
	pid_t pid;
	int status;
};

/* A task of the parent: serves (the loop runs) until the child ends. */
static int reap_child(void *arg)
{
	struct reap *r = arg;

	for (int i = 0; i < 4000; i++) {
		if (waitpid(r->pid, &r->status, WNOHANG) == r->pid)
			return 0;
		if (rill_sleep_ms(5) < 0)
			break;
	}
	kill(r->pid, SIGKILL);
	waitpid(r->pid, &r->status, 0);
	return 1;
}

static int parent_serves_on(void *arg)
{
	int port = *(int *)arg;

	for (int i = 0; i < 10; i++)
		if (echo_once(port) != 0)
			return 1;
	return 0;
}

/* A task: the fd count once the closed connections have settled. */
static int fds_settled(void *arg)
{
	return settle_fds(*(int *)arg);
}

Test(engine_fork, inherited_loop_refused_in_the_child)
{
	rill_loop *l;
	rill_server *s;
	rill_task *t;
	struct reap r = { 0 };
	int port, res = -1, before;

	cr_assert_eq(rill_loop_new(NULL, &l), 0);
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &s), 0);
	port = rill_server_port(s);
	before = count_fds();
	fflush(NULL);
	r.pid = fork();
	cr_assert_geq(r.pid, 0);
	if (r.pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(50);
		_exit(child_main(l, s, port));
	}
	/* The parent serves the child meanwhile, and after it. */
	cr_assert_eq(rill_spawn(l, reap_child, &r, &t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, 0, "the child did not end");
	cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
		  "child status %#x", r.status);
	cr_assert_eq(rill_spawn(l, parent_serves_on, &port, &t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, 0, "the parent's server stopped serving after the child");
	cr_assert_eq(rill_spawn(l, fds_settled, &before, &t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, before, "fds: %d before the fork, %d after", before, res);
	rill_server_free(s);
	cr_assert_eq(rill_loop_free(l), 0);
}

/* fork() inside a task: the child is in no task; its waits are refused,
 * and it runs a loop of its own. */
TASK_TEST(engine_fork, fork_inside_a_task_child_runs_its_own_loop)
{
	rill_server *s;
	struct reap r = { 0 };
	rill_task *t;
	int port, res = -1;

	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &s), 0);
	port = rill_server_port(s);
	fflush(NULL);
	r.pid = fork();
	cr_assert_geq(r.pid, 0);
	if (r.pid == 0) {
		rill_reader *cr;
		rill_writer *cw;
		int err, result = -1;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(50);
		if (rill_task_current() != NULL)
			_exit(10);
		if (rill_sleep_ms(1) != -EPERM)
			_exit(11);
		if ((err = rill_open_connection("127.0.0.1", port, NULL, &cr, &cw)) != RILL_EFORKED)
			_exit(12);
		if (!names_fork())
			_exit(13);
		if (rill_run(child_client, &port, &result) != 0 || result != 0)
			_exit(14);
		_exit(0);
	}
	cr_assert_eq(rill_spawn(rill_loop_current(), reap_child, &r, &t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, 0, "the child did not end");
	cr_assert(WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0,
		  "child status %#x", r.status);
	cr_assert_eq(parent_serves_on(&port), 0);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	return 0;
}

/* A child whose task returns into the parent's loop is stopped with a
 * message, before it can take the parent's events. */
static int fork_and_return(void *arg)
{
	int status;
	pid_t pid;

	(void)arg;
	fflush(NULL);
	pid = fork();
	if (pid == 0)
		return 0;	/* the child: back into the parent's loop */
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return 1;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT ? 0 : 2;
}

Test(engine_fork, child_returning_into_the_parents_loop_aborts)
{
	int p[2], status;
	pid_t pid;
	char buf[512] = { 0 };

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		/* A process of its own, so that its fork below returns
		 * into a task of a loop it runs. */
		int result;

		close(p[0]);
		dup2(p[1], 2);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(50);
		if (rill_run(fork_and_return, NULL, &result) < 0)
			_exit(3);
		_exit(result);
	}
	close(p[1]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	cr_assert_gt(read(p[0], buf, sizeof(buf) - 1), 0);
	close(p[0]);
	cr_assert(strstr(buf, "fork()"), "stderr: %s", buf);
}
