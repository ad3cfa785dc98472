/* SPDX-License-Identifier: MIT */
/* tls/idle.c: OpenSSL's record buffers given back by connections that stay
 * idle.
 *
 * Each TLS connection holds two record buffers (about 17 KiB each way)
 * while it works. Freeing them whenever it has nothing in or out, as
 * SSL_MODE_RELEASE_BUFFERS does, costs a request/response server two
 * free/malloc pairs of that size per message (about 0.4 us). Instead a
 * connection that goes idle joins its thread's idle list, and a sweep
 * every RILL_TLS_IDLE_SWEEP frees the buffers of those that did not go
 * idle again (that is, had no traffic) since the sweep before: an idle
 * connection gives them back within two periods, a busy one pays a flag
 * store per message.
 */
#include <pthread.h>
#include <stddef.h>

#include "rill/loop.h"
#include "tls/tls.h"

/* Short enough that a crowd of idle connections costs little for long,
 * long enough that the timer is nothing next to the traffic. */
#define RILL_TLS_IDLE_SWEEP (250 * RILL_NSEC_PER_MSEC)

/* One loop per thread, so one list and one timer per thread. The timer is
 * the thread's loop's; a loop freed with it pending cancels it, which
 * arm() sees. */
static __thread struct rill__tls_idle head;	/* zeroed: not made yet */
static __thread rill_timer_handle *timer;
static pthread_key_t timer_key;
static pthread_once_t timer_once = PTHREAD_ONCE_INIT;

/* A thread that ends (a loop's thread) frees its handle. */
static void timer_drop(void *unused)
{
	(void)unused;
	rill_timer_handle_free(timer);
	timer = NULL;
}

static void timer_key_init(void)
{
	(void)pthread_key_create(&timer_key, timer_drop);
}

static void sweep(void *arg);

/* false: no timer could be had (no loop, ENOMEM). */
static bool arm(void)
{
	rill_loop *loop;

	if (timer && !rill_timer_handle_cancelled(timer))
		return true;
	rill_timer_handle_free(timer);
	timer = NULL;
	if (!(loop = rill_loop_current()))
		return false;
	pthread_once(&timer_once, timer_key_init);
	(void)pthread_setspecific(timer_key, &timer);
	return rill_loop_call_later(loop, RILL_TLS_IDLE_SWEEP, sweep, NULL, &timer) == 0;
}

static void unlink_entry(struct rill__tls_idle *e)
{
	e->prev->next = e->next;
	e->next->prev = e->prev;
	e->prev = e->next = NULL;
}

static void sweep(void *arg)
{
	struct rill__tls_idle *e, *next;

	(void)arg;
	rill_timer_handle_free(timer);
	timer = NULL;
	for (e = head.next; e && e != &head; e = next) {
		next = e->next;
		if (e->touched) {
			e->touched = false;
			continue;
		}
		unlink_entry(e);
		rill__tls_idle_release(e);
	}
	if (head.next && head.next != &head && !arm()) {
		while ((e = head.next) != &head) {
			unlink_entry(e);
			rill__tls_idle_release(e);
		}
	}
}

void rill__tls_idle_mark(struct rill__tls_idle *e)
{
	e->touched = true;
	if (e->next)
		return;
	if (!head.next)
		head.prev = head.next = &head;
	if (!arm()) {
		rill__tls_idle_release(e);	/* no sweep to wait for */
		return;
	}
	e->next = &head;
	e->prev = head.prev;
	head.prev->next = e;
	head.prev = e;
}

void rill__tls_idle_leave(struct rill__tls_idle *e)
{
	if (e->next)
		unlink_entry(e);
}
