/* SPDX-License-Identifier: MIT */
/* engine/pool.c: a small process-wide pool of threads for calls that
 * block and have no io_uring form (getaddrinfo), as libuv's threadpool and
 * asyncio's default executor run them. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>

#include "engine/loop.h"

/* At most this many calls block at once (lookups, rill_to_thread()),
 * whatever the number of loops or tasks asking: a flood of connects to
 * names cannot become a flood of threads. libuv uses 4 by default for the
 * same reason, and its UV_THREADPOOL_SIZE is RILL_THREADPOOL_SIZE here,
 * read once at the pool's first use and clamped to 1..POOL_MAX. */
#define POOL_DEFAULT 4
#define POOL_MAX 128

enum { WORK_QUEUED, WORK_RUNNING, WORK_POSTED, WORK_ABANDONED };

static struct {
	pthread_mutex_t lock;
	pthread_cond_t more;
	struct rill__list queue;
	int threads, idle, max;
	bool ready;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER, .more = PTHREAD_COND_INITIALIZER };

/* On the loop thread: the answer of work that was not given up. */
static void work_done(void *arg)
{
	struct rill__work *w = arg;
	bool abandoned;

	atomic_fetch_sub(&w->loop->foreign, 1);
	pthread_mutex_lock(&pool.lock);
	abandoned = w->state == WORK_ABANDONED;
	pthread_mutex_unlock(&pool.lock);
	if (abandoned)
		w->drop(w);
	else
		w->done(w);
}

/* Hands finished work back to its loop, which stays alive for it: the loop
 * counts it as foreign until work_done runs, and rill_loop_free() waits
 * for that (it runs at the loop's next iteration). */
static void work_post(struct rill__work *w)
{
	static const struct timespec pause = { .tv_nsec = 1000000 };

	pthread_mutex_lock(&pool.lock);
	if (w->state == WORK_ABANDONED) {
		pthread_mutex_unlock(&pool.lock);
		w->drop(w);
		return;
	}
	w->state = WORK_POSTED;
	atomic_fetch_add(&w->loop->foreign, 1);
	pthread_mutex_unlock(&pool.lock);
	while (rill_loop_call_soon_threadsafe(w->loop, work_done, w) < 0)
		nanosleep(&pause, NULL);	/* -ENOMEM: the answer must arrive */
}

/* A pool thread takes no asynchronous signal: the loops' handlers
 * (engine/signal.c) run on other threads, and the blocking calls run here
 * are not cut short by EINTR. Faults stay deliverable. */
static void signals_block(void)
{
	static const int faults[] = { SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS };
	sigset_t set;

	sigfillset(&set);
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		sigdelset(&set, faults[i]);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static void *pool_thread(void *arg)
{
	struct rill__work *w;

	(void)arg;
	signals_block();
	pthread_mutex_lock(&pool.lock);
	for (;;) {
		pool.idle++;
		while (rill__list_empty(&pool.queue))
			pthread_cond_wait(&pool.more, &pool.lock);
		pool.idle--;
		w = rill__container_of(pool.queue.next, struct rill__work, link);
		rill__list_del(&w->link);
		w->state = WORK_RUNNING;
		pthread_mutex_unlock(&pool.lock);
		w->run(w);
		work_post(w);
		pthread_mutex_lock(&pool.lock);
	}
	return NULL;
}

/* Called with the lock held: one more thread if every one is busy. */
static int pool_grow(void)
{
	pthread_attr_t attr;
	pthread_t th;
	int err;

	if (pool.idle > 0 || pool.threads >= pool.max)
		return 0;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	err = pthread_create(&th, &attr, pool_thread, NULL);
	pthread_attr_destroy(&attr);
	if (err)
		return pool.threads ? 0 : -err;	/* the others will get to it */
	pool.threads++;
	return 0;
}

static int pool_size(void)
{
	const char *env = getenv("RILL_THREADPOOL_SIZE");
	long n = env ? strtol(env, NULL, 10) : 0;

	if (n <= 0)
		return POOL_DEFAULT;
	return n > POOL_MAX ? POOL_MAX : (int)n;
}

int rill__work_submit(rill_loop *loop, struct rill__work *w)
{
	int err;

	w->loop = loop;
	pthread_mutex_lock(&pool.lock);
	if (!pool.ready) {
		rill__list_init(&pool.queue);
		pool.max = pool_size();
		pool.ready = true;
	}
	err = pool_grow();
	if (err == 0) {
		w->state = WORK_QUEUED;
		rill__list_add_tail(&pool.queue, &w->link);
		pthread_cond_signal(&pool.more);
	}
	pthread_mutex_unlock(&pool.lock);
	return err;
}

void rill__work_abandon(struct rill__work *w)
{
	bool queued;

	pthread_mutex_lock(&pool.lock);
	queued = w->state == WORK_QUEUED;
	if (queued)
		rill__list_del(&w->link);
	w->state = WORK_ABANDONED;
	pthread_mutex_unlock(&pool.lock);
	if (queued)
		w->drop(w);
}
