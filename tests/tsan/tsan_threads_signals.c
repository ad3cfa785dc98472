/* SPDX-License-Identifier: MIT */
/* rill_to_thread, signals and timers under ThreadSanitizer: results
 * handed from pool threads to tasks, calls cancelled while they run,
 * signals caught on any thread reaching loops on two threads.
 *
 * A plain program, not a Criterion one (see tsan_crossloop.c). */
#include <pthread.h>
#include <stdatomic.h>

#define RILL_TEST_NO_CRITERION
#include "tests/helpers.h"

static int passed, failed;

static void run_case(const char *name, int (*fn)(void))
{
	int ok = fn() == 0;

	printf("[%s] %s\n", ok ? "PASS" : "FAIL", name);
	if (ok)
		passed++;
	else
		failed++;
}

/* ---- to_thread: results and cancellation ----------------------------- */

#define TASKS 8
#define CALLS 50

struct cell {
	int in, out;		/* plain ints: the hand-over must order them */
};

static int work(void *arg)
{
	struct cell *c = arg;

	c->out = c->in * 3;
	return c->in;
}

static int caller(void *arg)
{
	int base = (int)(intptr_t)arg;

	for (int i = 0; i < CALLS; i++) {
		struct cell c = { .in = base * CALLS + i };
		int r = -1;

		CHECK(rill_to_thread(work, &c, &r) == 0);
		CHECK(r == c.in && c.out == 3 * c.in, "%d %d", r, c.out);
	}
	return 0;
}

/* A call cancelled while still queued never runs: only the calls that
 * started are waited for. */
static atomic_int slow_started, slow_done;

static int slow(void *arg)
{
	(void)arg;
	atomic_fetch_add(&slow_started, 1);
	usleep(2000);
	atomic_fetch_add(&slow_done, 1);
	return 0;
}

static int canceller(void *arg)
{
	(void)arg;
	for (int i = 0; i < 20; i++) {
		rill_time saved = rill_deadline_push(500000);	/* 0.5 ms */
		int err = rill_to_thread(slow, NULL, NULL);

		rill_deadline_pop(saved);
		CHECK(err == -ETIMEDOUT || err == 0, "%d", err);
	}
	return 0;
}

static int to_thread_main(void *arg)
{
	rill_task *t[TASKS + 1];
	int bad = 0;

	(void)arg;
	for (int i = 0; i < TASKS; i++)
		CHECK(rill_spawn(rill_loop_current(), caller, (void *)(intptr_t)i, &t[i]) == 0);
	CHECK(rill_spawn(rill_loop_current(), canceller, NULL, &t[TASKS]) == 0);
	for (int i = 0; i <= TASKS; i++) {
		int r = -1;

		CHECK(rill_task_join(t[i], &r) == 0);
		bad += r != 0;
	}
	for (int i = 0; i < 5000 && atomic_load(&slow_done) < atomic_load(&slow_started); i++)
		rill_sleep_ms(1);
	CHECK(atomic_load(&slow_done) == atomic_load(&slow_started), "%d of %d slow calls ended",
	      atomic_load(&slow_done), atomic_load(&slow_started));
	return bad;
}

static int case_to_thread(void)
{
	int result = -1;

	CHECK(rill_run(to_thread_main, NULL, &result) == 0);
	return result;
}

/* ---- signals to loops on two threads ---------------------------------- */

struct sigloop {
	int signo;
	int count;		/* loop thread only */
	atomic_int seen;	/* for the sender */
	atomic_int ready;
};

static void on_sig(void *arg)
{
	struct sigloop *s = arg;

	s->count++;
	atomic_store(&s->seen, s->count);
	if (s->count == 5)
		rill_loop_stop(rill_loop_current());
}

static void *sig_thread(void *arg)
{
	struct sigloop *s = arg;
	rill_loop *l;

	if (rill_loop_new(NULL, &l) < 0 ||
	    rill_loop_add_signal_handler(l, s->signo, on_sig, s) < 0)
		return NULL;
	atomic_store(&s->ready, 1);
	rill_loop_run(l);
	rill_loop_free(l);
	return NULL;
}

static int case_signals(void)
{
	struct sigloop s[2] = { { .signo = SIGUSR1 }, { .signo = SIGUSR2 } };
	pthread_t th[2];

	for (int i = 0; i < 2; i++)
		CHECK(pthread_create(&th[i], NULL, sig_thread, &s[i]) == 0);
	for (int i = 0; i < 2; i++)
		while (!atomic_load(&s[i].ready))
			usleep(100);
	for (int r = 1; r <= 5; r++) {
		for (int i = 0; i < 2; i++) {
			kill(getpid(), s[i].signo);
			for (int w = 0; w < 5000 && atomic_load(&s[i].seen) < r; w++)
				usleep(200);
		}
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	for (int i = 0; i < 2; i++)
		CHECK(s[i].count == 5, "loop %d got %d", i, s[i].count);
	return 0;
}

int main(void)
{
	run_case("to_thread: 8 tasks x 50 calls, deadlines while running", case_to_thread);
	run_case("signals: SIGUSR1/SIGUSR2 to loops on 2 threads", case_signals);
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
