/* SPDX-License-Identifier: MIT */
/* engine/call_later.c: callbacks at a time, as asyncio's call_later() and
 * call_at() with their TimerHandle. They share the loop's timer heap with
 * task sleeps and deadlines (engine/timer.c), so equal times fire in the
 * order scheduled and one heap bounds how long the loop blocks.
 */
#include <errno.h>
#include <stdlib.h>

#include "engine/loop.h"

#define HANDLE_LIVE 0x746d6872u	/* "tmhr" */
#define HANDLE_DEAD 0x64656164u	/* "dead" */

struct rill_timer_handle {
	struct rill__timer tm;
	rill_loop *loop;	/* NULL once the loop is freed */
	rill_callback fn;
	void *arg;
	uint32_t magic;
	bool owned;		/* the caller holds it: rill_timer_handle_free */
	bool cancelled;
};

static void handle_check(const rill_timer_handle *h, const char *call)
{
	if (h && h->magic != HANDLE_LIVE)
		rill__misuse("%s: the timer handle was already freed", call);
}

/* The callback is the last thing touched: it may free its own handle. */
static void handle_fire(struct rill__timer *tm, rill_time now)
{
	rill_timer_handle *h = rill__container_of(tm, rill_timer_handle, tm);
	rill_callback fn = h->fn;
	void *arg = h->arg;

	(void)now;
	if (!h->owned) {
		h->magic = HANDLE_DEAD;
		free(h);
	}
	fn(arg);
}

int rill_loop_call_at(rill_loop *loop, rill_time when, rill_callback fn,
		      void *arg, rill_timer_handle **hp)
{
	rill__detail_clear();
	rill_timer_handle *h;

	if (!loop || !fn)
		return rill__set_detail(-EINVAL, "rill_loop_call_at: %s is NULL",
					loop ? "fn" : "loop");
	if (!pthread_equal(loop->thread, pthread_self()))
		return rill__set_detail(-EPERM, "rill_loop_call_at from another thread "
					"than the loop's (use rill_loop_call_soon_threadsafe)");
	if (loop->freeing)
		return RILL_ECLOSED;
	h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	h->loop = loop;
	h->fn = fn;
	h->arg = arg;
	h->magic = HANDLE_LIVE;
	h->owned = hp != NULL;
	h->tm.index = SIZE_MAX;
	h->tm.fire = handle_fire;
	rill__timer_start(loop, &h->tm, when);
	if (hp)
		*hp = h;
	return 0;
}

int rill_loop_call_later(rill_loop *loop, rill_time delay_ns, rill_callback fn,
			 void *arg, rill_timer_handle **hp)
{
	rill_time now = rill_now();
	/* Saturate: a huge delay means never, not a wrapped time. */
	rill_time when = delay_ns >= RILL_TIME_NEVER - now ? RILL_TIME_NEVER - 1
							   : now + delay_ns;

	return rill_loop_call_at(loop, when, fn, arg, hp);
}

int rill_timer_handle_cancel(rill_timer_handle *h)
{
	rill__detail_clear();
	bool pending;

	handle_check(h, "rill_timer_handle_cancel");
	if (!h)
		return rill__set_detail(-EINVAL, "rill_timer_handle_cancel: NULL handle");
	pending = h->tm.index != SIZE_MAX;
	if (pending)
		rill__timer_stop(h->loop, &h->tm);
	h->cancelled = true;
	return pending;
}

bool rill_timer_handle_cancelled(const rill_timer_handle *h)
{
	handle_check(h, "rill_timer_handle_cancelled");
	return !h || h->cancelled;
}

rill_time rill_timer_handle_when(const rill_timer_handle *h)
{
	handle_check(h, "rill_timer_handle_when");
	return h ? h->tm.when : RILL_TIME_NEVER;
}

void rill_timer_handle_free(rill_timer_handle *h)
{
	handle_check(h, "rill_timer_handle_free");
	if (!h)
		return;
	if (h->tm.index != SIZE_MAX)
		rill__timer_stop(h->loop, &h->tm);
	h->magic = HANDLE_DEAD;
	free(h);
}

/* After the tasks have ended only callback timers are left in the heap.
 * A handle the caller holds stays valid (cancelled, loop-less) until it
 * is freed. */
void rill__call_later_drop(rill_loop *loop)
{
	while (loop->heap_len) {
		struct rill__timer *tm = loop->heap[loop->heap_len - 1];
		rill_timer_handle *h;

		rill__timer_stop(loop, tm);
		if (tm->fire != handle_fire)
			continue;
		h = rill__container_of(tm, rill_timer_handle, tm);
		h->cancelled = true;
		h->loop = NULL;
		if (!h->owned) {
			h->magic = HANDLE_DEAD;
			free(h);
		}
	}
}
