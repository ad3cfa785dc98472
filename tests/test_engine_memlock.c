/* SPDX-License-Identifier: MIT */
/* RLIMIT_MEMLOCK without CAP_IPC_LOCK: loops that cannot have a ring run on epoll (a log line names the limit), a 64-thread server fits in 8 MiB, a required io_uring gets a detail naming the limit. Run as a user of its own. */
#include <criterion/criterion.h>
#include <grp.h>
#include <sys/syscall.h>

#include "tests/helpers.h"

TestSuite(engine_memlock, .timeout = 120);

/* What the unprivileged child reports. */
struct report {
	int code;		/* the case's result: 0 or a CHECK line's number */
	int backend;		/* the first loop's */
	int served;		/* echo round trips that came back right */
	char detail[600];
	char log[2048];
};

static struct report rep;

static void log_capture(int level, const char *msg, void *arg)
{
	size_t n = strlen(rep.log);

	(void)level;
	(void)arg;
	snprintf(rep.log + n, sizeof(rep.log) - n, "%s\n", msg);
}

/* The kernel charges rings to the user, across processes, and frees them
 * a while after they close: each case runs as a uid of its own, unused
 * by anything else. */
static uid_t fresh_uid(int k)
{
	return (uid_t)(40000 + (getpid() % 5000) * 4 + k);
}

/* Runs fn in a child as uid (no capabilities) with RLIMIT_MEMLOCK at
 * memlock bytes; returns its report. Skips where the test cannot switch
 * user or io_uring is refused here anyway. */
static struct report as_user(int k, rlim_t memlock, int (*fn)(void))
{
	struct rlimit rl = { memlock, memlock };
	struct report r;
	int p[2], status;
	pid_t pid;
	long fd = syscall(__NR_io_uring_setup, 1, (char[120]){ 0 });

	if (fd < 0)
		cr_skip_test("io_uring is refused here (%s): nothing to fall back from",
			     strerror(errno));
	close((int)fd);
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		uid_t uid = fresh_uid(k);

		close(p[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(100);
		if (setrlimit(RLIMIT_MEMLOCK, &rl) < 0 || setgroups(0, NULL) < 0 ||
		    setgid(uid) < 0 || setuid(uid) < 0)
			_exit(77);
		unsetenv("RILL_BACKEND");
		memset(&rep, 0, sizeof(rep));
		rep.backend = -1;
		rill_set_log_handler(log_capture, NULL);
		rep.code = fn();
		if (write(p[1], &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
			_exit(3);
		_exit(0);
	}
	close(p[1]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	if (WIFEXITED(status) && WEXITSTATUS(status) == 77) {
		close(p[0]);
		cr_skip_test("cannot switch to an unprivileged user here (setuid: "
			     "needs CAP_SETUID)");
	}
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	cr_assert_eq(read(p[0], &r, sizeof(r)), (ssize_t)sizeof(r));
	close(p[0]);
	return r;
}

/* ---- the cases, in the child --------------------------------------- */

#define CLIENTS 4
#define ROUNDS 20

static int client(void *arg)
{
	int port = *(int *)arg, ok = 0;

	for (int i = 0; i < ROUNDS; i++)
		ok += echo_once(port) == 0;
	return ok;
}

/* A server of threads loops (0: this one) and CLIENTS clients on this
 * loop; the round trips that worked go to rep.served. */
static int serve(void *arg)
{
	rill_server_options o = RILL_SERVER_OPTIONS_INIT;
	rill_task *t[CLIENTS];
	rill_server *s;
	int port, res, err;

	o.threads = *(int *)arg;
	rep.backend = rill_loop_backend(rill_loop_current());
	if ((err = rill_start_server(echo_lines, NULL, "127.0.0.1", 0, &o, &s)) < 0) {
		snprintf(rep.detail, sizeof(rep.detail), "start_server: %s: %s",
			 rill_err_name(err), rill_error_detail());
		return 1;
	}
	port = rill_server_port(s);
	for (int i = 0; i < CLIENTS; i++)
		if (rill_spawn(rill_loop_current(), client, &port, &t[i]) < 0)
			return 2;
	for (int i = 0; i < CLIENTS; i++)
		if (rill_task_join(t[i], &res) == 0)
			rep.served += res;
	rill_server_close(s);
	rill_server_wait_closed(s);
	rill_server_free(s);
	return 0;
}

static int serve_with(int threads)
{
	int result = -1, err = rill_run(serve, &threads, &result);

	if (err < 0) {
		snprintf(rep.detail, sizeof(rep.detail), "rill_run: %s: %s",
			 rill_err_name(err), rill_error_detail());
		return 10;
	}
	return result;
}

static int one_loop(void)
{
	return serve_with(0);
}

static int eight_loops(void)
{
	return serve_with(8);
}

static int sixty_four_loops(void)
{
	return serve_with(64);
}

static int required(void)
{
	rill_loop *l = NULL;
	int err = rill_loop_new(RILL_LOOP_OPTIONS(.backend = RILL_BACKEND_IO_URING), &l);

	snprintf(rep.detail, sizeof(rep.detail), "%s", rill_error_detail());
	if (l) {
		rep.backend = rill_loop_backend(l);
		rill_loop_free(l);
	}
	return err;
}

/* ---- the tests ------------------------------------------------------ */

static void expect_served(const struct report *r)
{
	cr_assert_eq(r->code, 0, "case failed (%d): %s\nlog: %s", r->code, r->detail, r->log);
	cr_assert_eq(r->served, CLIENTS * ROUNDS, "served %d", r->served);
	cr_assert_null(strstr(r->detail, "older kernels"), "%s", r->detail);
}

Test(engine_memlock, memlock_64k_falls_back_to_epoll_and_serves)
{
	struct report r = as_user(0, 64 * 1024, one_loop);

	expect_served(&r);
	cr_assert_eq(r.backend, RILL_BACKEND_EPOLL, "log: %s", r.log);
	cr_assert(strstr(r.log, "RLIMIT_MEMLOCK"), "log: %s", r.log);
	cr_assert(strstr(r.log, "epoll"), "log: %s", r.log);
}

Test(engine_memlock, memlock_256k_a_multi_loop_server_serves)
{
	struct report r = as_user(1, 256 * 1024, eight_loops);

	expect_served(&r);
	/* Not all of the nine loops fit: the rest run on epoll. */
	cr_assert(strstr(r.log, "RLIMIT_MEMLOCK"), "log: %s", r.log);
}

Test(engine_memlock, memlock_8m_holds_a_64_thread_server_on_io_uring)
{
	struct report r = as_user(2, 8 * 1024 * 1024, sixty_four_loops);

	expect_served(&r);
	cr_assert_eq(r.backend, RILL_BACKEND_IO_URING);
	/* 65 loops, every one with its ring. */
	cr_assert_null(strstr(r.log, "RLIMIT_MEMLOCK"), "log: %s", r.log);
}

Test(engine_memlock, required_io_uring_names_the_limit)
{
	struct report r = as_user(3, 64 * 1024, required);

	cr_assert_eq(r.code, -ENOMEM, "got %s (backend %d)", rill_err_name(r.code), r.backend);
	cr_assert(strstr(r.detail, "RLIMIT_MEMLOCK"), "detail: %s", r.detail);
	cr_assert(strstr(r.detail, "required"), "detail: %s", r.detail);
	cr_assert_null(strstr(r.detail, "older kernels"), "detail: %s", r.detail);
	cr_assert_null(strstr(r.log, "epoll"), "log: %s", r.log);
}
