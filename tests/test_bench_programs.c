/* SPDX-License-Identifier: MIT */
/* The benchmark programs where things are missing: rill-micro on the epoll backend, rill-echo-server when its signal thread cannot start. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/bench_path.h"

TestSuite(bench_programs, .timeout = 60);

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

struct proc {
	pid_t pid;
	int out;		/* stdout and stderr, together */
	char text[16384];
	size_t len;
	int status;
	bool exited;
};

/* Starts argv with stdout and stderr on one pipe; stack, if not 0, is its
 * RLIMIT_STACK soft limit (the default size of its threads' stacks). */
static void start(struct proc *p, char *const argv[], rlim_t stack)
{
	int fds[2];

	memset(p, 0, sizeof(*p));
	cr_assert_eq(pipe2(fds, O_CLOEXEC), 0);
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		struct rlimit rl;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (stack && getrlimit(RLIMIT_STACK, &rl) == 0) {
			rl.rlim_cur = stack;
			if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < stack)
				rl.rlim_max = stack;
			if (setrlimit(RLIMIT_STACK, &rl) < 0)
				_exit(126);
		}
		dup2(fds[1], 1);
		dup2(fds[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(fds[1]);
	p->out = fds[0];
}

/* Collects output until the process exits or ms pass; whether it exited. */
static bool wait_exit(struct proc *p, int ms)
{
	long long end = now_ms() + ms;

	while (!p->exited && now_ms() < end) {
		struct pollfd pf = { p->out, POLLIN, 0 };
		ssize_t n;

		if (p->out >= 0 && poll(&pf, 1, 20) > 0) {
			n = read(p->out, p->text + p->len, sizeof(p->text) - 1 - p->len);
			if (n > 0)
				p->len += (size_t)n;
			else {
				close(p->out);
				p->out = -1;
			}
			p->text[p->len] = '\0';
		} else if (p->out < 0) {
			usleep(20000);
		}
		if (waitpid(p->pid, &p->status, WNOHANG) == p->pid)
			p->exited = true;
	}
	return p->exited;
}

static void finish(struct proc *p)
{
	if (!p->exited) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->status, 0);
	}
	if (p->out >= 0)
		close(p->out);
}

/* ---- rill-micro ---------------------------------------------------- */

Test(bench_programs, micro_runs_on_the_epoll_backend)
{
	char prog[PATH_MAX];
	struct proc p;
	bool done;

	bench_path("rill-micro", prog, sizeof(prog));
	setenv("RILL_BACKEND", "epoll", 1);
	start(&p, (char *[]){ prog, "--iterations", "2000", NULL }, 0);
	done = wait_exit(&p, 30000);
	finish(&p);
	cr_assert(done, "rill-micro still running: %s", p.text);
	cr_assert(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0,
		  "rill-micro status %#x: %s", p.status, p.text);
	cr_assert(strstr(p.text, "backend: epoll"), "%s", p.text);
	cr_assert(strstr(p.text, "spawn + join"), "%s", p.text);
	cr_assert(strstr(p.text, "needs the io_uring backend"), "%s", p.text);
}

/* ---- rill-echo-server ---------------------------------------------- */

/* A thread stack no address space holds (RLIMIT_STACK of 200 TiB, the
 * size glibc gives new threads): pthread_create fails. The server must
 * say so and exit, not serve on with SIGTERM blocked for good. */
Test(bench_programs, echo_server_without_its_signal_thread_exits)
{
	char prog[PATH_MAX];
	struct proc p;
	bool done;

	bench_path("rill-echo-server", prog, sizeof(prog));
	start(&p, (char *[]){ prog, "--port", "0", NULL }, (rlim_t)200 << 40);
	done = wait_exit(&p, 5000);
	if (!done) {	/* serving: SIGTERM must still stop it */
		kill(p.pid, SIGTERM);
		done = wait_exit(&p, 3000);
	}
	finish(&p);
	cr_assert_neq(WIFEXITED(p.status) ? WEXITSTATUS(p.status) : 0, 126,
		      "cannot raise RLIMIT_STACK here");
	cr_assert(done, "rill-echo-server ignored SIGTERM: %s", p.text);
	cr_assert(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 1,
		  "status %#x: %s", p.status, p.text);
	cr_assert(strstr(p.text, "signal thread"), "output: %s", p.text);
	cr_assert_null(strstr(p.text, "Serving on"), "output: %s", p.text);
}

Test(bench_programs, echo_server_stops_on_sigterm)
{
	char prog[PATH_MAX];
	struct proc p;
	bool done;

	bench_path("rill-echo-server", prog, sizeof(prog));
	start(&p, (char *[]){ prog, "--port", "0", NULL }, 0);
	for (int i = 0; i < 250 && !strstr(p.text, "Serving on") && !p.exited; i++)
		wait_exit(&p, 20);
	cr_assert(strstr(p.text, "Serving on"), "output: %s", p.text);
	kill(p.pid, SIGTERM);
	done = wait_exit(&p, 5000);
	finish(&p);
	cr_assert(done, "rill-echo-server ignored SIGTERM");
	cr_assert(WIFEXITED(p.status) && WEXITSTATUS(p.status) == 0, "status %#x", p.status);
}
