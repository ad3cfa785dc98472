/* SPDX-License-Identifier: MIT */
/* Subprocesses: create_subprocess_exec/shell with pipes, wait through a pidfd, communicate, signals, cat of 64 MiB, 200 children. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

TestSuite(streams_subprocess, .timeout = 120);

static rill_process *start_shell(const char *cmd, const rill_process_options *o)
{
	rill_process *p = NULL;
	int err = rill_create_subprocess_shell(cmd, o, &p);

	cr_assert_eq(err, 0, "shell '%s': %s %s", cmd, rill_strerror(err), rill_error_detail());
	return p;
}

static int wait_rc(rill_process *p)
{
	int rc = -1000, err = rill_process_wait(p, &rc);

	cr_assert_eq(err, 0, "wait: %s", rill_err_name(err));
	return rc;
}

/* ---- exit codes and signals ------------------------------------------ */

TASK_TEST(streams_subprocess, exit_codes_and_signals_as_returncode)
{
	static const struct { const char *cmd; int rc; } cases[] = {
		{ "exit 0", 0 }, { "exit 42", 42 }, { "exit 255", 255 },
		{ "kill -TERM $$", -SIGTERM }, { "kill -KILL $$", -SIGKILL },
		{ "kill -SEGV $$", -SIGSEGV },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		rill_process *p = start_shell(cases[i].cmd, NULL);
		int rc;

		cr_assert_gt(rill_process_pid(p), 0);
		cr_assert_not(rill_process_returncode(p, &rc), "returncode before wait");
		cr_assert_eq(wait_rc(p), cases[i].rc, "%s", cases[i].cmd);
		cr_assert(rill_process_returncode(p, &rc));
		cr_assert_eq(rc, cases[i].rc);
		/* Waiting again gives the same; a signal now is a no-op. */
		cr_assert_eq(wait_rc(p), cases[i].rc);
		cr_assert_eq(rill_process_kill(p), 0);
		rill_process_free(p);
	}
	return 0;
}

TASK_TEST(streams_subprocess, no_sigchld_handler_is_taken)
{
	struct sigaction sa;
	rill_process *p = start_shell("exit 3", NULL);

	cr_assert_eq(wait_rc(p), 3);
	rill_process_free(p);
	cr_assert_eq(sigaction(SIGCHLD, NULL, &sa), 0);
	cr_assert(sa.sa_handler == SIG_DFL, "rill changed SIGCHLD's disposition");
	return 0;
}

/* ---- pipes ----------------------------------------------------------------- */

TASK_TEST(streams_subprocess, communicate_stdout_stderr_and_exit_code)
{
	rill_process *p = start_shell("read x; echo \"out $x\"; echo err >&2; exit 7",
		RILL_PROCESS_OPTIONS(.stdin_mode = RILL_STDIO_PIPE,
				     .stdout_mode = RILL_STDIO_PIPE,
				     .stderr_mode = RILL_STDIO_PIPE));
	rill_bytes out, err;
	int rc = -1;

	cr_assert_eq(rill_process_communicate(p, "hi\n", 3, &out, &err, &rc), 0);
	cr_assert_eq(rc, 7);
	cr_assert_eq(out.len, 7);
	cr_assert_arr_eq(out.data, "out hi\n", 7);
	cr_assert_eq(err.len, 4);
	cr_assert_arr_eq(err.data, "err\n", 4);
	rill_process_free(p);
	return 0;
}

TASK_TEST(streams_subprocess, stderr_into_stdout_and_devnull)
{
	rill_process *p = start_shell("echo a; echo b >&2; cat",
		RILL_PROCESS_OPTIONS(.stdin_mode = RILL_STDIO_DEVNULL,
				     .stdout_mode = RILL_STDIO_PIPE,
				     .stderr_mode = RILL_STDIO_STDOUT));
	rill_bytes out, err = { "x", 1 };
	int rc = -1;

	cr_assert_null(rill_process_stdin(p));
	cr_assert_null(rill_process_stderr(p));
	cr_assert_not_null(rill_process_stdout(p));
	cr_assert_eq(rill_process_communicate(p, NULL, 0, &out, &err, &rc), 0);
	cr_assert_eq(rc, 0);
	cr_assert_eq(out.len, 4);
	cr_assert_arr_eq(out.data, "a\nb\n", 4);
	cr_assert_eq(err.len, 0, "stderr is not a pipe: empty");
	rill_process_free(p);
	return 0;
}

TASK_TEST(streams_subprocess, env_and_cwd)
{
	const char *env[] = { "RILL_TEST_VAR=from env", NULL };
	rill_process *p = start_shell("echo \"$RILL_TEST_VAR\"; pwd; echo \"${HOME:-unset}\"",
		RILL_PROCESS_OPTIONS(.stdout_mode = RILL_STDIO_PIPE, .env = env,
				     .cwd = "/proc"));
	const char *want = "from env\n/proc\nunset\n";
	rill_bytes out;
	int rc = -1;

	cr_assert_eq(rill_process_communicate(p, NULL, 0, &out, NULL, &rc), 0);
	cr_assert_eq(rc, 0);
	cr_assert_eq(out.len, strlen(want), "got '%.*s'", (int)out.len, (const char *)out.data);
	cr_assert_arr_eq(out.data, want, strlen(want));
	rill_process_free(p);
	return 0;
}

TASK_TEST(streams_subprocess, only_stdio_reaches_the_child)
{
	const char *argv[] = { "ls", "/proc/self/fd", NULL };
	int leak = open("/dev/null", O_RDONLY);	/* no O_CLOEXEC on purpose */
	rill_process *p;
	rill_bytes out;
	int rc = -1;

	cr_assert_geq(leak, 3);
	cr_assert_eq(rill_create_subprocess_exec(argv, RILL_PROCESS_OPTIONS(
		.stdout_mode = RILL_STDIO_PIPE), &p), 0);
	cr_assert_eq(rill_process_communicate(p, NULL, 0, &out, NULL, &rc), 0);
	cr_assert_eq(rc, 0);
	/* 0, 1, 2, and the directory ls reads. */
	cr_assert_eq(out.len, 8, "fds: %.*s", (int)out.len, (const char *)out.data);
	cr_assert_arr_eq(out.data, "0\n1\n2\n3\n", 8);
	rill_process_free(p);
	close(leak);
	return 0;
}

TASK_TEST(streams_subprocess, a_program_that_cannot_start)
{
	const char *missing[] = { "/nonexistent/rill-no-such-program", NULL };
	const char *inpath[] = { "rill-no-such-program-in-path", NULL };
	const char *sh[] = { "/bin/sh", "-c", "exit 0", NULL };
	rill_process *p = NULL;
	int before = count_fds();

	cr_assert_eq(rill_create_subprocess_exec(missing, NULL, &p), -ENOENT);
	cr_assert_str_neq(rill_error_detail(), "");
	cr_assert_eq(rill_create_subprocess_exec(inpath, RILL_PROCESS_OPTIONS(
		.stdout_mode = RILL_STDIO_PIPE), &p), -ENOENT);
	cr_assert_eq(rill_create_subprocess_exec(sh, RILL_PROCESS_OPTIONS(
		.cwd = "/nonexistent-dir"), &p), -ENOENT);
	cr_assert_null(p);
	cr_assert_eq(count_fds(), before, "a failed start leaked fds");
	cr_assert_eq(rill_create_subprocess_exec(NULL, NULL, &p), -EINVAL);
	cr_assert_eq(rill_create_subprocess_exec(sh, RILL_PROCESS_OPTIONS(
		.stdout_mode = RILL_STDIO_STDOUT), &p), -EINVAL);
	cr_assert_eq(rill_create_subprocess_exec(sh, RILL_PROCESS_OPTIONS(
		.stderr_mode = 9), &p), -EINVAL);
	cr_assert_eq(rill_create_subprocess_shell(NULL, NULL, &p), -EINVAL);
	cr_assert_eq(rill_process_wait(NULL, NULL), -EINVAL);
	cr_assert_eq(rill_process_send_signal(NULL, SIGTERM), -EINVAL);
	p = start_shell("exit 0", NULL);
	cr_assert_eq(rill_process_send_signal(p, 100000), -EINVAL);
	cr_assert_eq(rill_process_communicate(p, "x", 1, NULL, NULL, NULL), -EINVAL,
		     "input without a stdin pipe");
	cr_assert_eq(wait_rc(p), 0);
	rill_process_free(p);
	return 0;
}

Test(streams_subprocess, outside_a_task)
{
	const char *sh[] = { "/bin/sh", "-c", "exit 0", NULL };
	rill_process *p;

	cr_assert_eq(rill_create_subprocess_exec(sh, NULL, &p), -EPERM);
}

/* ---- 64 MiB through cat ------------------------------------------------------ */

#define BULK (64u << 20)

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

struct feed {
	rill_writer *w;
	uint64_t sum;
};

static int feed_bulk(void *arg)
{
	struct feed *f = arg;
	static unsigned char chunk[131071];
	uint64_t off = 0;

	f->sum = 0xcbf29ce484222325ull;
	while (off < BULK) {
		size_t n = BULK - off < sizeof(chunk) ? BULK - off : sizeof(chunk);

		fill_pat(chunk, off, n);
		f->sum = fnv(f->sum, chunk, n);
		cr_assert_eq(rill_writer_write(f->w, chunk, n), 0);
		cr_assert_eq(rill_writer_drain(f->w), 0);
		off += n;
	}
	cr_assert_eq(rill_writer_write_eof(f->w), 0);
	return 0;
}

TASK_TEST(streams_subprocess, cat_64mib_both_ways)
{
	static unsigned char buf[256 * 1024];
	const char *argv[] = { "cat", NULL };
	uint64_t off = 0, sum = 0xcbf29ce484222325ull;
	struct feed f;
	rill_process *p;
	rill_task *t;
	ssize_t k;

	cr_assert_eq(rill_create_subprocess_exec(argv, RILL_PROCESS_OPTIONS(
		.stdin_mode = RILL_STDIO_PIPE, .stdout_mode = RILL_STDIO_PIPE), &p), 0);
	f.w = rill_process_stdin(p);
	t = spawn(feed_bulk, &f);
	while ((k = rill_reader_read(rill_process_stdout(p), buf, sizeof(buf))) > 0) {
		check_pat(buf, off, (size_t)k);
		sum = fnv(sum, buf, (size_t)k);
		off += (uint64_t)k;
	}
	cr_assert_eq(k, 0, "read: %s", rill_err_name((int)k));
	join(t);
	cr_assert_eq(off, BULK);
	cr_assert_eq(sum, f.sum);
	cr_assert_eq(wait_rc(p), 0);
	rill_process_free(p);
	return 0;
}

TASK_TEST(streams_subprocess, communicate_16mib_through_cat_without_deadlock)
{
	const size_t n = 16u << 20;
	const char *argv[] = { "cat", NULL };
	unsigned char *in = malloc(n);
	rill_bytes out, err;
	rill_process *p;
	int rc = -1;

	fill_pat(in, 0, n);
	cr_assert_eq(rill_create_subprocess_exec(argv, RILL_PROCESS_OPTIONS(
		.stdin_mode = RILL_STDIO_PIPE, .stdout_mode = RILL_STDIO_PIPE,
		.stderr_mode = RILL_STDIO_PIPE), &p), 0);
	cr_assert_eq(rill_process_communicate(p, in, n, &out, &err, &rc), 0);
	free(in);	/* communicate is through with it */
	cr_assert_eq(rc, 0);
	cr_assert_eq(out.len, n);
	check_pat(out.data, 0, n);
	cr_assert_eq(err.len, 0);
	rill_process_free(p);
	return 0;
}

/* ---- early closes ------------------------------------------------------------- */

TASK_TEST(streams_subprocess, child_closes_stdout_early)
{
	rill_process *p = start_shell("echo early; exec 1>&-; sleep 0.3; exit 3",
		RILL_PROCESS_OPTIONS(.stdout_mode = RILL_STDIO_PIPE));
	rill_bytes all;
	ssize_t n = rill_reader_read_all(rill_process_stdout(p), &all);

	cr_assert_eq(n, 6);
	cr_assert_arr_eq(all.data, "early\n", 6);
	cr_assert_not(rill_process_returncode(p, NULL), "EOF came before the exit");
	cr_assert_eq(wait_rc(p), 3);
	rill_process_free(p);
	return 0;
}

TASK_TEST(streams_subprocess, child_stops_reading_stdin_epipe_not_sigpipe)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	static char big[1 << 20];
	rill_process *p;
	rill_writer *w;
	rill_bytes out;
	int err = 0, rc = -1;

	cr_assert_eq(sigaction(SIGPIPE, &dfl, NULL), 0);
	p = start_shell("head -c 10", RILL_PROCESS_OPTIONS(.stdin_mode = RILL_STDIO_PIPE,
							    .stdout_mode = RILL_STDIO_PIPE));
	w = rill_process_stdin(p);
	memset(big, 'x', sizeof(big));
	for (int i = 0; i < 64 && err == 0; i++) {
		cr_assert_eq(rill_writer_write(w, big, sizeof(big)), 0);
		err = rill_writer_drain(w);
	}
	cr_assert_eq(err, -EPIPE, "drain: %s", rill_err_name(err));
	cr_assert_eq(rill_writer_wait_closed(w), -EPIPE);
	cr_assert_eq(rill_reader_read_all(rill_process_stdout(p), &out), 10);
	cr_assert_eq(wait_rc(p), 0);
	rill_process_free(p);
	/* communicate() takes EPIPE on stdin in its stride. */
	p = start_shell("head -c 3", RILL_PROCESS_OPTIONS(.stdin_mode = RILL_STDIO_PIPE,
							   .stdout_mode = RILL_STDIO_PIPE));
	cr_assert_eq(rill_process_communicate(p, big, sizeof(big), &out, NULL, &rc), 0);
	cr_assert_eq(rc, 0);
	cr_assert_eq(out.len, 3);
	rill_process_free(p);
	return 0;
}

/* ---- never exits ----------------------------------------------------------------- */

TASK_TEST(streams_subprocess, a_child_that_never_exits_killed_at_a_deadline)
{
	const char *argv[] = { "sleep", "1000", NULL };
	rill_process *p;
	rill_time saved;
	int err;

	cr_assert_eq(rill_create_subprocess_exec(argv, NULL, &p), 0);
	saved = rill_deadline_push(100 * MS);
	err = rill_process_wait(p, NULL);
	rill_deadline_pop(saved);
	cr_assert_eq(err, -ETIMEDOUT);
	cr_assert_eq(kill(rill_process_pid(p), 0), 0, "the child runs on");
	cr_assert_eq(rill_process_kill(p), 0);
	cr_assert_eq(wait_rc(p), -SIGKILL);
	rill_process_free(p);
	return 0;
}

static int wait_task(void *arg)
{
	int rc;

	return rill_process_wait(arg, &rc) == 0 ? rc : -1000;
}

TASK_TEST(streams_subprocess, cancelling_a_waiting_task_leaves_the_child_running)
{
	const char *argv[] = { "sleep", "1000", NULL };
	rill_task *t1, *t2, *t3;
	rill_process *p;
	int res = 0;

	cr_assert_eq(rill_create_subprocess_exec(argv, NULL, &p), 0);
	t1 = spawn(wait_task, p);
	t2 = spawn(wait_task, p);
	rill_sleep_ms(20);
	cr_assert_eq(rill_task_cancel(t1), 0);
	cr_assert_eq(rill_task_join(t1, &res), 0);
	cr_assert_eq(res, -1000, "the cancelled wait returned a code");
	rill_sleep_ms(20);
	cr_assert_eq(kill(rill_process_pid(p), 0), 0, "the child runs on");
	t3 = spawn(wait_task, p);
	cr_assert_eq(rill_process_terminate(p), 0);
	cr_assert_eq(rill_task_join(t2, &res), 0);
	cr_assert_eq(res, -SIGTERM);
	cr_assert_eq(rill_task_join(t3, &res), 0);
	cr_assert_eq(res, -SIGTERM);
	rill_process_free(p);
	return 0;
}

TASK_TEST(streams_subprocess, freeing_a_running_child_kills_and_reaps_it)
{
	const char *argv[] = { "sleep", "1000", NULL };
	rill_process *p;
	siginfo_t si;
	pid_t pid;
	int i;

	cr_assert_eq(rill_create_subprocess_exec(argv, RILL_PROCESS_OPTIONS(
		.stdout_mode = RILL_STDIO_PIPE), &p), 0);
	pid = rill_process_pid(p);
	rill_process_free(p);
	/* Reaped by rill in the background: no zombie is left for us. */
	for (i = 0; i < 200 && kill(pid, 0) == 0; i++)
		rill_sleep_ms(5);
	cr_assert_eq(kill(pid, 0), -1, "child %d still there (a zombie?)", pid);
	cr_assert_eq(waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG), -1);
	cr_assert_eq(errno, ECHILD);
	return 0;
}

TASK_TEST(streams_subprocess, communicate_cut_short_then_free)
{
	rill_process *p = start_shell("echo partial; exec sleep 1000",
		RILL_PROCESS_OPTIONS(.stdin_mode = RILL_STDIO_PIPE,
				     .stdout_mode = RILL_STDIO_PIPE));
	rill_bytes out;
	rill_time saved = rill_deadline_push(100 * MS);
	int err = rill_process_communicate(p, "abc", 3, &out, NULL, NULL);
	pid_t pid = rill_process_pid(p);

	rill_deadline_pop(saved);
	cr_assert_eq(err, -ETIMEDOUT);
	cr_assert_eq(rill_process_communicate(p, NULL, 0, &out, NULL, NULL), -EBUSY);
	rill_process_free(p);	/* while its helpers still read */
	for (int i = 0; i < 200 && kill(pid, 0) == 0; i++)
		rill_sleep_ms(5);
	cr_assert_eq(kill(pid, 0), -1, "child %d still there", pid);
	return 0;
}

/* ---- many ---------------------------------------------------------------------------- */

#define MANY 200

TASK_TEST(streams_subprocess, two_hundred_children_at_once)
{
	static rill_process *p[MANY];
	static rill_task *t[MANY];
	char cmd[64];
	siginfo_t si;

	for (int i = 0; i < MANY; i++) {
		snprintf(cmd, sizeof(cmd), "echo %d; exit %d", i, i % 200);
		p[i] = start_shell(cmd, RILL_PROCESS_OPTIONS(.stdout_mode = RILL_STDIO_PIPE));
	}
	for (int i = 0; i < MANY; i++)
		t[i] = spawn(wait_task, p[i]);
	for (int i = 0; i < MANY; i++) {
		rill_bytes line;
		int res = -1;

		snprintf(cmd, sizeof(cmd), "%d\n", i);
		cr_assert_eq(rill_reader_readline(rill_process_stdout(p[i]), &line),
			     (ssize_t)strlen(cmd));
		cr_assert_arr_eq(line.data, cmd, strlen(cmd));
		cr_assert_eq(rill_task_join(t[i], &res), 0);
		cr_assert_eq(res, i % 200);
		rill_process_free(p[i]);
	}
	cr_assert_eq(waitid(P_ALL, 0, &si, WEXITED | WNOHANG), -1, "a child left");
	cr_assert_eq(errno, ECHILD);
	return 0;
}
