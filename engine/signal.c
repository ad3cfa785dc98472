/* SPDX-License-Identifier: MIT */
/* engine/signal.c: signals delivered to a loop, as asyncio's
 * loop.add_signal_handler() delivers them: a callback, or a task waiting
 * in rill_signal_wait(), runs on the loop's thread, never in signal
 * context.
 *
 * How: a sigaction handler, as libuv and CPython use, not signalfd.
 * signalfd sees a signal only while every thread of the process blocks
 * it (else the kernel hands it to a thread that does not, whose default
 * action ends the process), threads started before the call cannot be
 * made to block it, and the blocked mask is inherited across exec, so
 * every child would start with SIGTERM blocked. The handler needs none of
 * that: whichever thread the kernel picks, it sets the signal's bit in
 * the owning loop's word and writes the loop's eventfd, which both
 * backends already watch (the rill_loop_call_soon_threadsafe wake-up);
 * the loop then dispatches from rill__loop_ts_run(). Atomics and write()
 * are all it uses: async-signal-safe.
 *
 * Each signal has at most one owner loop in the process (reg_owner), so
 * a signal runs exactly one loop's handlers. A loop lets go of a signal
 * only after no handler can still be looking at it (reg_busy), so the
 * loop's memory may go right after.
 */
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "engine/loop.h"

/* Signals 1..64, one bit each (Linux has 64: SIGRTMAX is 64). */
#define SIG_MAX 64

/* What a loop holds of one signal: a handler, waiting tasks, or both. */
struct sighold {
	rill_callback fn;
	void *arg;
	unsigned waits;		/* tasks in rill_signal_wait() for it */
	bool held;		/* this loop owns the signal */
	bool was_blocked;	/* in the loop's thread, before it was taken */
};

struct rill__sigloop {
	rill_loop *loop;
	int wake_fd;
	atomic_uint_least64_t caught;	/* set by the handler, any thread */
	uint64_t due;			/* callbacks to run (loop thread) */
	unsigned nheld;
	struct sighold h[SIG_MAX + 1];
	struct rill__list waiters;	/* struct sigwaiter, by link */
	struct rill__deferred run;	/* runs the due callbacks */
};

/* A task in rill_signal_wait(), on its stack. */
struct sigwaiter {
	struct rill__wait wait;
	struct rill__list link;
	uint64_t set;
};

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct rill__sigloop *_Atomic reg_owner[SIG_MAX + 1];
static atomic_int reg_busy;	/* handlers running now, in any thread */

static uint64_t bit(int signo)
{
	return (uint64_t)1 << (signo - 1);
}

static void on_signal(int signo)
{
	int saved = errno;
	struct rill__sigloop *sl;
	uint64_t one = 1;

	atomic_fetch_add(&reg_busy, 1);
	sl = atomic_load(&reg_owner[signo]);
	if (sl) {
		atomic_fetch_or(&sl->caught, bit(signo));
		/* EAGAIN (counter full) still wakes the loop: nothing lost. */
		if (write(sl->wake_fd, &one, sizeof(one)) < 0)
			(void)0;
	}
	atomic_fetch_sub(&reg_busy, 1);
	errno = saved;
}

static const char *sig_name(int signo)
{
	const char *name = sigabbrev_np(signo);

	return name ? name : "?";
}

/* -EINVAL with a detail for a signal rill cannot deliver to a loop. */
static int signo_check(int signo)
{
	if (signo < 1 || signo > SIG_MAX || signo > SIGRTMAX)
		return rill__set_detail(-EINVAL, "%d is not a signal number", signo);
	switch (signo) {
	case SIGKILL:
	case SIGSTOP:
		return rill__set_detail(-EINVAL, "SIG%s cannot be caught", sig_name(signo));
	case SIGSEGV:
	case SIGBUS:
	case SIGFPE:
	case SIGILL:
	case SIGTRAP:
	case SIGSYS:
		return rill__set_detail(-EINVAL, "SIG%s reports a fault of the thread "
					"that caused it; a loop can only take "
					"asynchronous signals", sig_name(signo));
	}
	if (signo > 31 && signo < SIGRTMIN)
		return rill__set_detail(-EINVAL, "signal %d is reserved by the C library "
					"(real-time signals start at SIGRTMIN, %d)",
					signo, SIGRTMIN);
	return 0;
}

static void run_due(struct rill__deferred *d);

static struct rill__sigloop *sigloop(rill_loop *loop)
{
	struct rill__sigloop *sl = loop->sig;

	if (sl)
		return sl;
	sl = calloc(1, sizeof(*sl));
	if (!sl)
		return NULL;
	sl->loop = loop;
	sl->wake_fd = loop->wake_fd;
	rill__list_init(&sl->waiters);
	rill__list_init(&sl->run.link);
	sl->run.fn = run_due;
	loop->sig = sl;
	return sl;
}

/* Makes sl the owner of signo: rill's handler installed, the signal
 * unblocked in the loop's thread. -EBUSY when another loop owns it. */
static int take(struct rill__sigloop *sl, int signo)
{
	struct sighold *h = &sl->h[signo];
	struct sigaction sa = { .sa_handler = on_signal, .sa_flags = SA_RESTART };
	sigset_t one, old;
	int err = 0;

	if (h->held)
		return 0;
	sigfillset(&sa.sa_mask);	/* one handler at a time per thread */
	pthread_mutex_lock(&reg_lock);
	if (atomic_load(&reg_owner[signo]))
		err = rill__set_detail(-EBUSY, "SIG%s is handled by another loop; "
				       "remove it there first", sig_name(signo));
	else
		atomic_store(&reg_owner[signo], sl);
	if (!err && sigaction(signo, &sa, NULL) < 0) {
		err = rill__set_detail(-errno, "sigaction(SIG%s): %s",
				       sig_name(signo), strerror(errno));
		atomic_store(&reg_owner[signo], NULL);
	}
	pthread_mutex_unlock(&reg_lock);
	if (err)
		return err;
	sigemptyset(&one);
	sigaddset(&one, signo);
	pthread_sigmask(SIG_UNBLOCK, &one, &old);
	h->was_blocked = sigismember(&old, signo);
	h->held = true;
	if (sl->nheld++ == 0)
		rill__op_started(sl->loop);	/* the loop runs on for it */
	return 0;
}

/* Gives signo back once neither a handler nor a wait holds it: the
 * default action, and the loop thread's mask as it was. */
static void give_back(struct rill__sigloop *sl, int signo)
{
	struct sighold *h = &sl->h[signo];
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	sigset_t one;

	if (!h->held || h->fn || h->waits)
		return;
	pthread_mutex_lock(&reg_lock);
	sigaction(signo, &dfl, NULL);
	atomic_store(&reg_owner[signo], NULL);
	/* A handler that loaded sl before the store may still use it. */
	while (atomic_load(&reg_busy))
		sched_yield();
	pthread_mutex_unlock(&reg_lock);
	if (h->was_blocked) {
		sigemptyset(&one);
		sigaddset(&one, signo);
		pthread_sigmask(SIG_BLOCK, &one, NULL);
	}
	atomic_fetch_and(&sl->caught, ~bit(signo));
	sl->due &= ~bit(signo);
	h->held = false;
	if (--sl->nheld == 0)
		rill__op_finished(sl->loop);
}

/* ---- delivery on the loop ------------------------------------------ */

static void waiters_wake(struct rill__sigloop *sl, int signo)
{
	struct rill__list *pos, *next;

	for (pos = sl->waiters.next; pos != &sl->waiters; pos = next) {
		struct sigwaiter *w = rill__container_of(pos, struct sigwaiter, link);

		next = pos->next;
		if (!(w->set & bit(signo)))
			continue;
		rill__list_del(&w->link);
		rill__wake(w->wait.task, signo);
	}
}

/* The callbacks run from the loop's deferred step, not from here, so
 * that one may add or remove handlers while this walks the signals. */
void rill__signals_poll(rill_loop *loop)
{
	struct rill__sigloop *sl = loop->sig;
	uint64_t caught;

	if (!sl || !(caught = atomic_exchange(&sl->caught, 0)))
		return;
	for (int s = 1; s <= SIG_MAX; s++) {
		if (!(caught & bit(s)) || !sl->h[s].held)
			continue;
		waiters_wake(sl, s);
		if (sl->h[s].fn)
			sl->due |= bit(s);
	}
	if (sl->due)
		rill__defer(loop, &sl->run);
}

static void run_due(struct rill__deferred *d)
{
	struct rill__sigloop *sl = rill__container_of(d, struct rill__sigloop, run);

	for (int s = 1; s <= SIG_MAX && sl->due; s++) {
		if (!(sl->due & bit(s)))
			continue;
		sl->due &= ~bit(s);
		if (sl->h[s].fn)
			sl->h[s].fn(sl->h[s].arg);
	}
}

void rill__signals_free(rill_loop *loop)
{
	struct rill__sigloop *sl = loop->sig;

	if (!sl)
		return;
	for (int s = 1; s <= SIG_MAX; s++) {
		sl->h[s].fn = NULL;
		sl->h[s].waits = 0;	/* the waiting tasks have ended */
		give_back(sl, s);
	}
	if (!rill__list_empty(&sl->run.link))
		rill__list_del(&sl->run.link);
	loop->sig = NULL;
	free(sl);
}

/* ---- the public calls ---------------------------------------------- */

static int loop_check(rill_loop *loop, const char *call)
{
	if (!loop)
		return rill__set_detail(-EINVAL, "%s: loop is NULL", call);
	if (!pthread_equal(loop->thread, pthread_self()))
		return rill__set_detail(-EPERM, "%s from another thread than the loop's",
					call);
	return 0;
}

int rill_loop_add_signal_handler(rill_loop *loop, int signo, rill_callback fn,
				 void *arg)
{
	rill__detail_clear();
	struct rill__sigloop *sl;
	int err;

	if ((err = loop_check(loop, "rill_loop_add_signal_handler")) < 0)
		return err;
	if (!fn)
		return rill__set_detail(-EINVAL, "rill_loop_add_signal_handler: fn is NULL");
	if ((err = signo_check(signo)) < 0)
		return err;
	if (!(sl = sigloop(loop)))
		return -ENOMEM;
	if ((err = take(sl, signo)) < 0)
		return err;
	sl->h[signo].fn = fn;
	sl->h[signo].arg = arg;
	return 0;
}

int rill_loop_remove_signal_handler(rill_loop *loop, int signo)
{
	rill__detail_clear();
	struct rill__sigloop *sl;
	int err;

	if ((err = loop_check(loop, "rill_loop_remove_signal_handler")) < 0 ||
	    (err = signo_check(signo)) < 0)
		return err;
	sl = loop->sig;
	if (!sl || !sl->h[signo].fn)
		return 0;
	sl->h[signo].fn = NULL;
	sl->due &= ~bit(signo);
	give_back(sl, signo);
	return 1;
}

static void sigwait_interrupt(struct rill__wait *wait, int reason)
{
	struct sigwaiter *w = rill__container_of(wait, struct sigwaiter, wait);

	rill__list_del(&w->link);
	rill__wake(wait->task, reason);
}

/* Checks the set and takes each signal for the wait: *taken gets the
 * bits it took (to give back), w->set every bit of the set. */
static int sigwait_take(struct rill__sigloop *sl, struct sigwaiter *w,
			const int *signos, size_t n, uint64_t *taken)
{
	int err;

	for (size_t i = 0; i < n; i++)
		if ((err = signo_check(signos[i])) < 0)
			return err;
	for (size_t i = 0; i < n; i++)
		w->set |= bit(signos[i]);
	for (int s = 1; s <= SIG_MAX; s++) {
		if (!(w->set & bit(s)))
			continue;
		if ((err = take(sl, s)) < 0)
			return err;
		sl->h[s].waits++;
		*taken |= bit(s);
	}
	return 0;
}

int rill_signal_wait(const int *signos, size_t n)
{
	rill__detail_clear();
	rill_task *t = rill__current();
	struct sigwaiter w = {
		.wait = { .interrupt = sigwait_interrupt, .until = RILL_TIME_NEVER },
	};
	struct rill__sigloop *sl;
	uint64_t taken = 0;
	int ret;

	if (!t)
		return rill__set_detail(-EPERM, "rill_signal_wait outside a task");
	if (!signos || n == 0)
		return rill__set_detail(-EINVAL, "rill_signal_wait: no signal given");
	if (!(sl = sigloop(t->loop)))
		return -ENOMEM;
	ret = sigwait_take(sl, &w, signos, n, &taken);
	if (ret == 0) {
		rill__list_add_tail(&sl->waiters, &w.link);
		ret = rill__park(&w.wait);
		rill__list_del(&w.link);	/* if it returned without parking */
	}
	for (int s = 1; s <= SIG_MAX; s++) {
		if (!(taken & bit(s)))
			continue;
		sl->h[s].waits--;
		give_back(sl, s);
	}
	return ret;
}
