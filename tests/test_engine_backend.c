/* SPDX-License-Identifier: MIT */
/* The backend choice: io_uring refused by a seccomp filter (EPERM, EACCES,
 * ENOSYS, the enter alone) makes loops run on epoll, with one log line
 * naming the cause, and a server with its clients serves there; a loop
 * that requires io_uring gets a clear error instead; ENOMEM is no reason
 * to fall back. Each case runs in a forked child that installs the filter
 * (no libseccomp), as a container runtime would. */
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"

#if defined(__x86_64__)
#define THIS_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

/* Which io_uring syscalls the filter refuses. */
enum { ALL_THREE, SETUP_ONLY, ENTER_ONLY };

/* What the child reports down the pipe. */
struct report {
	int code;		/* rill_loop_new's result */
	int backend;		/* rill_loop_backend(), or -1 */
	int served;		/* echo round trips that came back right */
	char detail[600];	/* rill_error_detail() */
	char log[600];		/* the log lines, joined */
};

static struct report rep;

static void log_capture(int level, const char *msg, void *arg)
{
	size_t n = strlen(rep.log);

	(void)level;
	(void)arg;
	snprintf(rep.log + n, sizeof(rep.log) - n, "%s\n", msg);
}

static int install_filter(int which, int err)
{
	long a = __NR_io_uring_setup, b = __NR_io_uring_enter,
	     c = __NR_io_uring_register;
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)a, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)b, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)c, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (which == SETUP_ONLY)	/* enter and register jump past */
		f[5].k = f[6].k = (unsigned)a;
	if (which == ENTER_ONLY)
		f[4].k = f[6].k = (unsigned)b;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return -1;
	return (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

/* ---- an echo server and its clients ------------------------------- */

#define CLIENTS 8
#define ROUNDS 50

static int echo(rill_reader *r, rill_writer *w, void *arg)
{
	char buf[256];
	ssize_t n;

	(void)arg;
	while ((n = rill_reader_read(r, buf, sizeof(buf))) > 0) {
		rill_writer_write(w, buf, (size_t)n);
		if (rill_writer_drain(w) < 0)
			break;
	}
	rill_writer_close(w);
	return 0;
}

static int client(void *arg)
{
	int port = *(int *)arg, ok = 0;
	rill_reader *r;
	rill_writer *w;

	if (rill_open_connection("127.0.0.1", port, NULL, &r, &w) < 0)
		return 0;
	for (int i = 0; i < ROUNDS; i++) {
		char out[32], in[32];
		int len = snprintf(out, sizeof(out), "ping %d\n", i);

		rill_writer_write(w, out, (size_t)len);
		if (rill_reader_readexactly(r, in, (size_t)len) != len ||
		    memcmp(in, out, (size_t)len))
			break;
		ok++;
	}
	rill_writer_close(w);
	rill_writer_wait_closed(w);
	rill_writer_free(w);
	return ok;
}

/* A server on threads loops, CLIENTS clients on this one. */
static int serve(void *arg)
{
	rill_server_options o = RILL_SERVER_OPTIONS_INIT;
	rill_task *t[CLIENTS];
	rill_server *s;
	int port, res;

	o.threads = *(int *)arg;
	if (rill_start_server(echo, NULL, "127.0.0.1", 0, &o, &s) < 0)
		return 0;
	port = rill_server_port(s);
	for (int i = 0; i < CLIENTS; i++)
		if (rill_spawn(rill_loop_current(), client, &port, &t[i]) < 0)
			return 0;
	for (int i = 0; i < CLIENTS; i++)
		if (rill_task_join(t[i], &res) == 0)
			rep.served += res;
	rill_server_close(s);
	rill_server_wait_closed(s);
	rill_server_free(s);
	return 0;
}

/* A backend argument for child(): RILL_BACKEND=io_uring in the
 * environment, the option left at AUTO. */
#define IO_URING_BY_ENV 100

/* In the child: filter, then a loop with the given backend option; with
 * threads >= 0, a server and clients on it. */
static void child(int which, int err, int backend, int threads, int wfd)
{
	rill_loop_options o = RILL_LOOP_OPTIONS_INIT;
	rill_loop *loop = NULL;

	if (install_filter(which, err) < 0)
		_exit(2);
	unsetenv("RILL_BACKEND");
	if (backend == IO_URING_BY_ENV) {
		setenv("RILL_BACKEND", "io_uring", 1);
		backend = RILL_BACKEND_AUTO;
	}
	rill_set_log_handler(log_capture, NULL);
	o.backend = backend;
	rep.backend = -1;
	rep.code = rill_loop_new(&o, &loop);
	snprintf(rep.detail, sizeof(rep.detail), "%s", rill_error_detail());
	if (loop) {
		rep.backend = rill_loop_backend(loop);
		if (threads >= 0) {
			rill_task *t;

			if (rill_spawn(loop, serve, &threads, &t) == 0)
				rill_task_join(t, NULL);
		}
		rill_loop_free(loop);
	}
	if (write(wfd, &rep, sizeof(rep)) != (ssize_t)sizeof(rep))
		_exit(3);
	_exit(0);
}

/* The cases add their filter to what the process has: under an outer one
 * (tests/no-io-uring) they would see its errno, not theirs. */
static void need_io_uring(void)
{
	char params[120] = { 0 };	/* struct io_uring_params */
	long fd = syscall(__NR_io_uring_setup, 1, params);

	if (fd < 0)
		cr_skip_test("io_uring is refused here already (%s)", strerror(errno));
	close((int)fd);
}

static struct report run(int which, int err, int backend, int threads)
{
	struct report r;
	int p[2], status;
	pid_t pid;

	need_io_uring();
	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(p[0]);
		child(which, err, backend, threads, p[1]);
	}
	close(p[1]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child died (status 0x%x)", status);
	if (WEXITSTATUS(status) == 2) {
		close(p[0]);
		cr_skip_test("seccomp filters cannot be installed here");
	}
	cr_assert_eq(WEXITSTATUS(status), 0, "child exit %d", WEXITSTATUS(status));
	cr_assert_eq(read(p[0], &r, sizeof(r)), (ssize_t)sizeof(r));
	close(p[0]);
	return r;
}

static bool sysctl_disabled(void)
{
	FILE *f = fopen("/proc/sys/kernel/io_uring_disabled", "r");
	int v = 0;

	if (f) {
		if (fscanf(f, "%d", &v) != 1)
			v = 0;
		fclose(f);
	}
	return v != 0;
}

/* ---- falling back -------------------------------------------------- */

static struct report falls_back_and_serves(int which, int err,
					    const char *cause, int threads)
{
	struct report r = run(which, err, RILL_BACKEND_AUTO, threads);

	cr_assert_eq(r.code, 0, "rill_loop_new: %s (%s)", rill_err_name(r.code),
		     r.detail);
	cr_assert_eq(r.backend, RILL_BACKEND_EPOLL);
	cr_assert_eq(r.served, CLIENTS * ROUNDS, "served %d", r.served);
	cr_assert(strstr(r.log, cause), "log: %s", r.log);
	cr_assert(strstr(r.log, "epoll"), "log: %s", r.log);
	return r;
}

Test(engine_backend, eperm_falls_back_to_epoll_and_serves)
{
	falls_back_and_serves(ALL_THREE, EPERM, "EPERM", 0);
}

Test(engine_backend, enosys_falls_back_to_epoll_and_serves)
{
	struct report r = falls_back_and_serves(ALL_THREE, ENOSYS, "ENOSYS", 0);

	cr_assert(strstr(r.log, "seccomp filter"), "log: %s", r.log);
}

Test(engine_backend, multi_loop_server_on_epoll)
{
	falls_back_and_serves(ALL_THREE, EPERM, "EPERM", 2);
}

Test(engine_backend, eacces_is_named_as_eacces)
{
	if (sysctl_disabled())
		cr_skip_test("kernel.io_uring_disabled is set here");
	falls_back_and_serves(SETUP_ONLY, EACCES, "EACCES", 0);
}

Test(engine_backend, einval_and_eopnotsupp_fall_back)
{
	falls_back_and_serves(SETUP_ONLY, EINVAL, "EINVAL", 0);
	falls_back_and_serves(SETUP_ONLY, EOPNOTSUPP, "EOPNOTSUPP", 0);
}

/* A filter that lets the ring be set up but refuses io_uring_enter: the
 * loop used to spin at 100% CPU on the failing enter. */
Test(engine_backend, enter_refused_falls_back)
{
	falls_back_and_serves(ENTER_ONLY, EPERM, "io_uring_enter", 0);
}

Test(engine_backend, enomem_is_no_reason_to_fall_back)
{
	struct report r = run(SETUP_ONLY, ENOMEM, RILL_BACKEND_AUTO, -1);

	cr_assert_eq(r.code, -ENOMEM, "got %s", rill_err_name(r.code));
	cr_assert(strstr(r.detail, "out of memory"), "detail: %s", r.detail);
	cr_assert_eq(r.log[0], '\0', "log: %s", r.log);
}

/* ---- io_uring required --------------------------------------------- */

Test(engine_backend, required_io_uring_denied_by_seccomp)
{
	struct report r = run(ALL_THREE, EPERM, RILL_BACKEND_IO_URING, -1);

	cr_assert(r.code == RILL_EURING_DENIED || r.code == RILL_EURING_DISABLED ||
		  r.code == RILL_EURING_GROUP, "got %s", rill_err_name(r.code));
	if (r.code == RILL_EURING_DENIED)
		cr_assert(strstr(r.detail, "seccomp"), "detail: %s", r.detail);
	else
		cr_assert(strstr(r.detail, "io_uring_disabled"), "detail: %s", r.detail);
}

/* ENOSYS under a seccomp filter is the filter, not an old kernel. */
Test(engine_backend, required_io_uring_enosys_from_a_filter)
{
	struct report r = run(ALL_THREE, ENOSYS, RILL_BACKEND_IO_URING, -1);

	cr_assert_eq(r.code, RILL_EURING_DENIED, "got %s", rill_err_name(r.code));
	cr_assert(strstr(r.detail, "seccomp filter"), "detail: %s", r.detail);
	cr_assert(strstr(r.detail, "ENOSYS"), "detail: %s", r.detail);
	cr_assert_null(strstr(r.detail, "CONFIG_IO_URING"), "detail: %s", r.detail);
}

Test(engine_backend, required_io_uring_enter_refused)
{
	struct report r = run(ENTER_ONLY, EPERM, RILL_BACKEND_IO_URING, -1);

	cr_assert_eq(r.code, RILL_EURING_DENIED, "got %s", rill_err_name(r.code));
	cr_assert(strstr(r.detail, "io_uring_enter"), "detail: %s", r.detail);
}

/* Required and refused: no line saying loops fall back to epoll (they do
 * not), and a detail that says it is required, by what, and how to allow
 * it or run without it. */
static void required_says_so(int backend, const char *by, const char *instead)
{
	struct report r = run(ALL_THREE, EPERM, backend, -1);

	cr_assert_lt(r.code, 0, "got %s", rill_err_name(r.code));
	cr_assert_null(strstr(r.log, "epoll backend"), "log: %s", r.log);
	cr_assert(strstr(r.detail, "required"), "detail: %s", r.detail);
	cr_assert(strstr(r.detail, by), "detail: %s", r.detail);
	cr_assert(strstr(r.detail, "To allow it"), "detail: %s", r.detail);
	cr_assert(strstr(r.detail, instead), "detail: %s", r.detail);
}

Test(engine_backend, required_by_env_logs_no_fallback_and_says_how_to_allow)
{
	required_says_so(IO_URING_BY_ENV, "RILL_BACKEND=io_uring", "unset RILL_BACKEND");
}

Test(engine_backend, required_by_option_logs_no_fallback_and_says_how_to_allow)
{
	required_says_so(RILL_BACKEND_IO_URING, "RILL_BACKEND_IO_URING", "RILL_BACKEND_AUTO");
}

Test(engine_backend, required_einval_gets_a_hint)
{
	struct report r = run(SETUP_ONLY, EINVAL, RILL_BACKEND_IO_URING, -1);

	cr_assert_eq(r.code, RILL_EURING_DENIED, "got %s", rill_err_name(r.code));
	cr_assert(strstr(r.detail, "EINVAL"), "detail: %s", r.detail);
	cr_assert(strstr(r.detail, "5.19"), "detail: %s", r.detail);
}

/* ---- forcing one --------------------------------------------------- */

Test(engine_backend, epoll_forced_by_option)
{
	rill_loop_options o = RILL_LOOP_OPTIONS_INIT;
	rill_loop *loop;

	o.backend = RILL_BACKEND_EPOLL;
	cr_assert_eq(rill_loop_new(&o, &loop), 0);
	cr_assert_eq(rill_loop_backend(loop), RILL_BACKEND_EPOLL);
	cr_assert_eq(rill_loop_features(loop), 0);
	rill_loop_free(loop);
	cr_assert_eq(rill_loop_backend(NULL), RILL_BACKEND_AUTO);
}

Test(engine_backend, epoll_serves_without_a_filter)
{
	struct report r;
	int threads = 0;

	memset(&rep, 0, sizeof(rep));
	setenv("RILL_BACKEND", "epoll", 1);
	cr_assert_eq(rill_run(serve, &threads, NULL), 0);
	r = rep;
	cr_assert_eq(r.served, CLIENTS * ROUNDS, "served %d", r.served);
}
