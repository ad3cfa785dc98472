/* SPDX-License-Identifier: MIT */
/* Signals: handlers run on the loop's thread, tasks wait for signals, removal gives the default action back, one loop per signal, kill from a child process. */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"
#include "tests/helpers.h"

TestSuite(engine_signal, .init = loop_setup, .fini = loop_teardown);

struct caught {
	rill_loop *loop;
	int count;
	pthread_t thread;
	bool in_task;
	bool stop;		/* stop the loop after the first */
};

static void on_sig(void *arg)
{
	struct caught *c = arg;

	c->count++;
	c->thread = pthread_self();
	c->in_task = rill_task_current() != NULL;
	if (c->stop)
		rill_loop_stop(c->loop);
}

/* Stops the loop after arg ms: no test waits forever for a signal lost. */
static int guard(void *arg)
{
	rill_sleep_ms((uint64_t)(uintptr_t)arg);
	rill_loop_stop(rill_loop_current());
	return 0;
}

static void run_guarded(rill_loop *l, uint64_t ms)
{
	rill_task *g;

	cr_assert_eq(rill_spawn(l, guard, (void *)(uintptr_t)ms, &g), 0);
	cr_assert_eq(rill_loop_run(l), 0);
	rill_task_cancel(g);
	rill_task_join(g, NULL);
}

static bool action_is_default(int signo)
{
	struct sigaction sa;

	cr_assert_eq(sigaction(signo, NULL, &sa), 0);
	return sa.sa_handler == SIG_DFL;
}

static void one_signal(int signo)
{
	struct caught c = { .loop = loop, .stop = true };

	cr_assert_eq(rill_loop_add_signal_handler(loop, signo, on_sig, &c), 0);
	cr_assert(!action_is_default(signo));
	cr_assert_eq(kill(getpid(), signo), 0);
	run_guarded(loop, 5000);
	cr_assert_eq(c.count, 1, "SIG%s: handler ran %d times", sigabbrev_np(signo), c.count);
	cr_assert(pthread_equal(c.thread, pthread_self()), "not on the loop's thread");
	cr_assert(!c.in_task, "the handler runs from the loop, not in a task");
	cr_assert_eq(rill_loop_remove_signal_handler(loop, signo), 1);
	cr_assert(action_is_default(signo));
}

Test(engine_signal, usr1_term_hup_run_the_handler_on_the_loop)
{
	one_signal(SIGUSR1);
	one_signal(SIGTERM);
	one_signal(SIGHUP);
	one_signal(SIGRTMIN + 2);
}

static void on_first(void *arg)
{
	((struct caught *)arg)->count += 100;
}

Test(engine_signal, a_second_add_replaces_the_handler)
{
	struct caught c = { .loop = loop, .stop = true };

	cr_assert_eq(rill_loop_add_signal_handler(loop, SIGUSR2, on_first, &c), 0);
	cr_assert_eq(rill_loop_add_signal_handler(loop, SIGUSR2, on_sig, &c), 0);
	cr_assert_eq(kill(getpid(), SIGUSR2), 0);
	run_guarded(loop, 5000);
	cr_assert_eq(c.count, 1);
	cr_assert_eq(rill_loop_remove_signal_handler(loop, SIGUSR2), 1);
	cr_assert_eq(rill_loop_remove_signal_handler(loop, SIGUSR2), 0);
}

/* The handler of a signal sent while the loop runs (from a task). */
static int send_later(void *arg)
{
	rill_sleep_ms(10);
	kill(getpid(), (int)(uintptr_t)arg);
	return 0;
}

Test(engine_signal, signal_while_the_loop_waits)
{
	struct caught c = { .loop = loop, .stop = true };

	cr_assert_eq(rill_loop_add_signal_handler(loop, SIGUSR1, on_sig, &c), 0);
	cr_assert_eq(rill_spawn(loop, send_later, (void *)(uintptr_t)SIGUSR1, NULL), 0);
	run_guarded(loop, 5000);
	cr_assert_eq(c.count, 1);
}

/* ---- tasks waiting ---------------------------------------------------- */

TASK_TEST(engine_signal, a_task_waits_for_sigint)
{
	static const int set[] = { SIGINT, SIGTERM };
	rill_time saved;
	int ret;

	rill_spawn(rill_loop_current(), send_later, (void *)(uintptr_t)SIGINT, NULL);
	saved = rill_deadline_push(5000 * MS);
	ret = rill_signal_wait(set, 2);
	rill_deadline_pop(saved);
	cr_assert_eq(ret, SIGINT, "%d (%s)", ret, rill_err_name(ret));
	/* Taken for the wait only. */
	cr_assert(action_is_default(SIGINT));
	cr_assert(action_is_default(SIGTERM));
	return 0;
}

static int wait_one(void *arg)
{
	int signo = (int)(uintptr_t)arg;

	return rill_signal_wait(&signo, 1);
}

TASK_TEST(engine_signal, every_waiter_wakes_and_the_handler_runs_too)
{
	struct caught c = { .loop = rill_loop_current() };
	rill_task *a, *b;
	int ra = 0, rb = 0;

	cr_assert_eq(rill_loop_add_signal_handler(c.loop, SIGUSR1, on_sig, &c), 0);
	a = spawn(wait_one, (void *)(uintptr_t)SIGUSR1);
	b = spawn(wait_one, (void *)(uintptr_t)SIGUSR1);
	rill_sleep_ms(5);
	kill(getpid(), SIGUSR1);
	cr_assert_eq(rill_task_join(a, &ra), 0);
	cr_assert_eq(rill_task_join(b, &rb), 0);
	cr_assert_eq(ra, SIGUSR1);
	cr_assert_eq(rb, SIGUSR1);
	rill_sleep_ms(1);
	cr_assert_eq(c.count, 1);
	/* The waits are over; the handler still holds the signal. */
	cr_assert(!action_is_default(SIGUSR1));
	cr_assert_eq(rill_loop_remove_signal_handler(c.loop, SIGUSR1), 1);
	cr_assert(action_is_default(SIGUSR1));
	return 0;
}

TASK_TEST(engine_signal, wait_honours_deadline_and_cancel)
{
	int signo = SIGHUP;
	rill_time saved = rill_deadline_push(20 * MS);
	rill_task *t;
	int ret = 0;

	cr_assert_eq(rill_signal_wait(&signo, 1), -ETIMEDOUT);
	rill_deadline_pop(saved);
	cr_assert(action_is_default(SIGHUP));
	t = spawn(wait_one, (void *)(uintptr_t)SIGHUP);
	rill_sleep_ms(5);
	cr_assert_eq(rill_task_cancel(t), 0);
	cr_assert_eq(rill_task_join(t, &ret), 0);
	cr_assert_eq(ret, -ECANCELED);
	cr_assert(action_is_default(SIGHUP));
	return 0;
}

/* ---- giving the signal back ------------------------------------------- */

static bool blocked_here(int signo)
{
	sigset_t cur;

	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	return sigismember(&cur, signo);
}

Test(engine_signal, remove_restores_default_action_and_mask)
{
	struct caught c = { .loop = loop };
	sigset_t one;

	sigemptyset(&one);
	sigaddset(&one, SIGUSR2);
	pthread_sigmask(SIG_BLOCK, &one, NULL);
	cr_assert_eq(rill_loop_add_signal_handler(loop, SIGUSR2, on_sig, &c), 0);
	cr_assert(!blocked_here(SIGUSR2), "held: unblocked in the loop's thread");
	cr_assert_eq(rill_loop_remove_signal_handler(loop, SIGUSR2), 1);
	cr_assert(blocked_here(SIGUSR2), "given back: blocked again, as before");
	cr_assert(action_is_default(SIGUSR2));
	pthread_sigmask(SIG_UNBLOCK, &one, NULL);

	cr_assert_eq(rill_loop_add_signal_handler(loop, SIGUSR2, on_sig, &c), 0);
	cr_assert(!blocked_here(SIGUSR2));
	cr_assert_eq(rill_loop_remove_signal_handler(loop, SIGUSR2), 1);
	cr_assert(!blocked_here(SIGUSR2), "was not blocked: stays so");
}

/* In a child: a handler added and removed, then the signal: it must die
 * of it. */
Test(engine_signal, after_remove_the_signal_kills)
{
	int status = 0;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct caught c = { 0 };
		rill_loop *l;

		alarm(20);
		if (rill_loop_new(NULL, &l) < 0 ||
		    rill_loop_add_signal_handler(l, SIGTERM, on_sig, &c) < 0 ||
		    rill_loop_remove_signal_handler(l, SIGTERM) != 1)
			_exit(2);
		kill(getpid(), SIGTERM);
		sleep(5);
		_exit(3);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM,
		  "status %#x", status);
}

Test(engine_signal, loop_free_gives_signals_back)
{
	struct caught c = { .loop = loop };
	rill_loop *l;

	cr_assert_eq(rill_loop_new(NULL, &l), 0);
	cr_assert_eq(rill_loop_add_signal_handler(l, SIGUSR1, on_sig, &c), 0);
	cr_assert_eq(rill_loop_add_signal_handler(loop, SIGUSR1, on_sig, &c), -EBUSY);
	cr_assert_neq(strlen(rill_error_detail()), 0);
	cr_assert_eq(rill_loop_free(l), 0);
	cr_assert(action_is_default(SIGUSR1));
	cr_assert_eq(rill_loop_add_signal_handler(loop, SIGUSR1, on_sig, &c), 0);
}

/* ---- several loops ---------------------------------------------------- */

#define LOOPS 3
#define ROUNDS 3

struct looper {
	int signo;
	int count;
	pthread_barrier_t *ready;
	int err;
};

static void count_sig(void *arg)
{
	struct looper *lp = arg;

	if (++lp->count == ROUNDS)
		rill_loop_stop(rill_loop_current());
}

static void *looper_main(void *arg)
{
	struct looper *lp = arg;
	rill_loop *l;
	rill_task *g;

	if ((lp->err = rill_loop_new(NULL, &l)) < 0)
		return NULL;
	lp->err = rill_loop_add_signal_handler(l, lp->signo, count_sig, lp);
	pthread_barrier_wait(lp->ready);
	if (lp->err == 0 && rill_spawn(l, guard, (void *)(uintptr_t)10000, &g) == 0) {
		rill_loop_run(l);
		rill_task_cancel(g);
		rill_task_join(g, NULL);
	}
	rill_loop_free(l);
	return NULL;
}

Test(engine_signal, loops_on_threads_each_get_theirs_once)
{
	int signos[LOOPS] = { SIGUSR1, SIGUSR2, SIGRTMIN + 1 };
	struct looper lp[LOOPS];
	pthread_t th[LOOPS];
	pthread_barrier_t ready;

	pthread_barrier_init(&ready, NULL, LOOPS + 1);
	for (int i = 0; i < LOOPS; i++) {
		lp[i] = (struct looper){ .signo = signos[i], .ready = &ready };
		cr_assert_eq(pthread_create(&th[i], NULL, looper_main, &lp[i]), 0);
	}
	pthread_barrier_wait(&ready);
	for (int i = 0; i < LOOPS; i++)
		cr_assert_eq(lp[i].err, 0, "loop %d: %s", i, rill_err_name(lp[i].err));
	/* The main thread blocks none of them: the kernel may run the
	 * handler here, and the signal must still reach its loop. A round
	 * waits for the last one so that the kernel cannot merge two. */
	for (int r = 0; r < ROUNDS; r++) {
		for (int i = 0; i < LOOPS; i++) {
			rill_time t0 = rill_now();

			cr_assert_eq(kill(getpid(), signos[i]), 0);
			while (__atomic_load_n(&lp[i].count, __ATOMIC_SEQ_CST) <= r &&
			       rill_now() - t0 < 5000 * MS)
				usleep(200);
		}
	}
	for (int i = 0; i < LOOPS; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < LOOPS; i++)
		cr_assert_eq(lp[i].count, ROUNDS, "loop %d got %d", i, lp[i].count);
	pthread_barrier_destroy(&ready);
}

/* ---- invalid arguments ------------------------------------------------ */

static void *add_from_thread(void *arg)
{
	static struct caught c;

	return (void *)(intptr_t)rill_loop_add_signal_handler(arg, SIGUSR1, on_sig, &c);
}

static void expect_einval(int signo)
{
	struct caught c = { 0 };

	cr_assert_eq(rill_loop_add_signal_handler(loop, signo, on_sig, &c), -EINVAL,
		     "signal %d", signo);
	cr_assert_neq(strlen(rill_error_detail()), 0);
	cr_assert_eq(rill_loop_remove_signal_handler(loop, signo), -EINVAL);
}

Test(engine_signal, invalid_arguments)
{
	static const int bad[] = { 0, -1, 65, 1000, SIGKILL, SIGSTOP, SIGSEGV, SIGBUS,
				   SIGFPE, SIGILL, SIGTRAP, SIGSYS, 32, 33 };
	struct caught c = { 0 };
	pthread_t th;
	void *res;
	int signo = SIGUSR1;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_einval(bad[i]);
	cr_assert_eq(rill_loop_add_signal_handler(NULL, SIGUSR1, on_sig, &c), -EINVAL);
	cr_assert_eq(rill_loop_add_signal_handler(loop, SIGUSR1, NULL, &c), -EINVAL);
	cr_assert_eq(rill_loop_remove_signal_handler(NULL, SIGUSR1), -EINVAL);
	cr_assert_eq(rill_signal_wait(&signo, 1), -EPERM);
	cr_assert_eq(pthread_create(&th, NULL, add_from_thread, loop), 0);
	pthread_join(th, &res);
	cr_assert_eq((int)(intptr_t)res, -EPERM);
	cr_assert(action_is_default(SIGUSR1));
}

TASK_TEST(engine_signal, wait_invalid_arguments)
{
	int ok[] = { SIGUSR1 }, bad[] = { SIGUSR1, SIGKILL };

	cr_assert_eq(rill_signal_wait(NULL, 1), -EINVAL);
	cr_assert_eq(rill_signal_wait(ok, 0), -EINVAL);
	cr_assert_eq(rill_signal_wait(bad, 2), -EINVAL);
	cr_assert(action_is_default(SIGUSR1));
	return 0;
}

/* ---- a real process sending signals with kill(1) ---------------------- */

struct child_state {
	rill_loop *loop;
	int hups;
	int report;	/* pipe to the test: one byte per SIGHUP */
};

static void child_hup(void *arg)
{
	struct child_state *cs = arg;
	char b = 'h';

	cs->hups++;
	if (write(cs->report, &b, 1) != 1)
		_exit(4);
}

static void child_term(void *arg)
{
	rill_loop_stop(((struct child_state *)arg)->loop);
}

static int child_main(int report)
{
	struct child_state cs = { .report = report };
	char b = 'r';

	alarm(20);
	if (rill_loop_new(NULL, &cs.loop) < 0 ||
	    rill_loop_add_signal_handler(cs.loop, SIGHUP, child_hup, &cs) < 0 ||
	    rill_loop_add_signal_handler(cs.loop, SIGTERM, child_term, &cs) < 0)
		return 2;
	if (write(report, &b, 1) != 1)
		return 2;
	rill_loop_run(cs.loop);
	rill_loop_free(cs.loop);
	return cs.hups == 2 ? 0 : 10 + cs.hups;
}

static void shell_kill(const char *sig, pid_t pid)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "kill -%s %d", sig, (int)pid);
	cr_assert_eq(system(cmd), 0, "%s", cmd);
}

static void read_byte(int fd, char want)
{
	struct pollfd p = { .fd = fd, .events = POLLIN };
	char b = 0;

	cr_assert_eq(poll(&p, 1, 5000), 1, "child did not answer");
	cr_assert_eq(read(fd, &b, 1), 1);
	cr_assert_eq(b, want);
}

Test(engine_signal, kill_command_from_another_process)
{
	int fds[2], status = 0;
	pid_t pid;

	cr_assert_eq(pipe(fds), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		close(fds[0]);
		_exit(child_main(fds[1]));
	}
	close(fds[1]);
	read_byte(fds[0], 'r');
	shell_kill("HUP", pid);
	read_byte(fds[0], 'h');
	shell_kill("HUP", pid);
	read_byte(fds[0], 'h');
	shell_kill("TERM", pid);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
	close(fds[0]);
}

/* The other way round: a kill(1) process signals this one, whose loop
 * runs the handler. */
Test(engine_signal, kill_command_to_this_process)
{
	struct caught c = { .loop = loop, .stop = true };
	char cmd[64];

	cr_assert_eq(rill_loop_add_signal_handler(loop, SIGUSR2, on_sig, &c), 0);
	snprintf(cmd, sizeof(cmd), "kill -USR2 %d", (int)getpid());
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	run_guarded(loop, 5000);
	cr_assert_eq(c.count, 1);
	cr_assert(pthread_equal(c.thread, pthread_self()));
}
