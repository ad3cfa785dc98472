/* SPDX-License-Identifier: MIT */
/* engine/timer.c: when parked tasks must wake (sleeps and deadlines) and
 * when callback timers fire (engine/call_later.c).
 *
 * A binary min-heap of struct rill__timer keyed by (when, seq), each
 * entry knowing its index so that a wake-up by I/O removes its timer in
 * O(log n); seq keeps equal times in the order they were started. The
 * earliest entry bounds how long the loop may block in the kernel.
 */
#include <stdlib.h>

#include "engine/loop.h"

static bool earlier(const struct rill__timer *a, const struct rill__timer *b)
{
	return a->when < b->when || (a->when == b->when && a->seq < b->seq);
}

static void heap_set(rill_loop *loop, size_t i, struct rill__timer *tm)
{
	loop->heap[i] = tm;
	tm->index = i;
}

static void sift_up(rill_loop *loop, size_t i)
{
	struct rill__timer *tm = loop->heap[i];

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (!earlier(tm, loop->heap[parent]))
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, tm);
}

static void sift_down(rill_loop *loop, size_t i)
{
	struct rill__timer *tm = loop->heap[i];

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= loop->heap_len)
			break;
		if (c + 1 < loop->heap_len && earlier(loop->heap[c + 1], loop->heap[c]))
			c++;
		if (!earlier(loop->heap[c], tm))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, tm);
}

/* The heap grows with the number of pending timers. A failed realloc
 * leaves a timer out; the only sound answer is to stop, since a deadline
 * silently dropped breaks every guarantee. */
void rill__timer_start(rill_loop *loop, struct rill__timer *tm, rill_time when)
{
	if (loop->heap_len == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		struct rill__timer **h = realloc(loop->heap, cap * sizeof(*h));

		if (!h)
			abort();
		loop->heap = h;
		loop->heap_cap = cap;
	}
	tm->when = when;
	tm->seq = loop->timer_seq++;
	heap_set(loop, loop->heap_len++, tm);
	sift_up(loop, tm->index);
}

void rill__timer_stop(rill_loop *loop, struct rill__timer *tm)
{
	size_t i = tm->index;
	struct rill__timer *last;

	if (i == SIZE_MAX)
		return;
	tm->index = SIZE_MAX;
	last = loop->heap[--loop->heap_len];
	if (last == tm)
		return;
	heap_set(loop, i, last);
	if (i > 0 && earlier(last, loop->heap[(i - 1) / 2]))
		sift_up(loop, i);
	else
		sift_down(loop, i);
}

static void task_fire(struct rill__timer *tm, rill_time now)
{
	rill__task_timer_fired(rill__container_of(tm, rill_task, timer), now);
}

void rill__timer_add(rill_loop *loop, rill_task *t, rill_time when)
{
	t->timer.fire = task_fire;
	rill__timer_start(loop, &t->timer, when);
}

void rill__timer_del(rill_loop *loop, rill_task *t)
{
	rill__timer_stop(loop, &t->timer);
}

rill_time rill__timer_next(const rill_loop *loop)
{
	return loop->heap_len ? loop->heap[0]->when : RILL_TIME_NEVER;
}

/* Fires what is due, but not the timers started meanwhile (by a callback
 * that schedules itself again at once): they wait for the next
 * iteration, so that I/O and tasks get their turn. */
void rill__timers_run(rill_loop *loop, rill_time now)
{
	uint64_t limit = loop->timer_seq;

	while (loop->heap_len) {
		struct rill__timer *tm = loop->heap[0];

		if (tm->when > now || tm->seq >= limit)
			break;
		rill__timer_stop(loop, tm);
		tm->fire(tm, now);
	}
}
