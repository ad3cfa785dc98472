/* SPDX-License-Identifier: MIT */
/* engine/timer.c: when parked tasks must wake (sleeps and deadlines).
 *
 * A binary min-heap of tasks keyed by their wake time, each task knowing
 * its index so that a wake-up by I/O removes its timer in O(log n). The
 * earliest entry bounds how long the loop may block in io_uring_enter.
 */
#include <stdlib.h>

#include "engine/loop.h"

static rill_time wake_time(const rill_task *t)
{
	rill_time until = t->wait ? t->wait->until : RILL_TIME_NEVER;

	return t->deadline < until ? t->deadline : until;
}

static void heap_set(rill_loop *loop, size_t i, rill_task *t)
{
	loop->heap[i] = t;
	t->heap_index = i;
}

static void sift_up(rill_loop *loop, size_t i)
{
	rill_task *t = loop->heap[i];
	rill_time key = wake_time(t);

	while (i > 0) {
		size_t parent = (i - 1) / 2;

		if (wake_time(loop->heap[parent]) <= key)
			break;
		heap_set(loop, i, loop->heap[parent]);
		i = parent;
	}
	heap_set(loop, i, t);
}

static void sift_down(rill_loop *loop, size_t i)
{
	rill_task *t = loop->heap[i];
	rill_time key = wake_time(t);

	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= loop->heap_len)
			break;
		if (c + 1 < loop->heap_len &&
		    wake_time(loop->heap[c + 1]) < wake_time(loop->heap[c]))
			c++;
		if (key <= wake_time(loop->heap[c]))
			break;
		heap_set(loop, i, loop->heap[c]);
		i = c;
	}
	heap_set(loop, i, t);
}

/* The heap grows with the number of parked tasks that have a timer. A
 * failed realloc leaves the task without its timer; the only sound answer
 * is to stop, since a deadline silently dropped breaks every guarantee. */
void rill__timer_add(rill_loop *loop, rill_task *t, rill_time when)
{
	(void)when;	/* the key is recomputed from the task */
	if (loop->heap_len == loop->heap_cap) {
		size_t cap = loop->heap_cap ? loop->heap_cap * 2 : 64;
		rill_task **h = realloc(loop->heap, cap * sizeof(*h));

		if (!h)
			abort();
		loop->heap = h;
		loop->heap_cap = cap;
	}
	heap_set(loop, loop->heap_len++, t);
	sift_up(loop, t->heap_index);
}

void rill__timer_del(rill_loop *loop, rill_task *t)
{
	size_t i = t->heap_index;
	rill_task *last;

	if (i == SIZE_MAX)
		return;
	t->heap_index = SIZE_MAX;
	last = loop->heap[--loop->heap_len];
	if (last == t)
		return;
	heap_set(loop, i, last);
	if (i > 0 && wake_time(loop->heap[(i - 1) / 2]) > wake_time(last))
		sift_up(loop, i);
	else
		sift_down(loop, i);
}

rill_time rill__timer_next(const rill_loop *loop)
{
	return loop->heap_len ? wake_time(loop->heap[0]) : RILL_TIME_NEVER;
}

void rill__timers_run(rill_loop *loop, rill_time now)
{
	while (loop->heap_len && wake_time(loop->heap[0]) <= now) {
		rill_task *t = loop->heap[0];

		rill__timer_del(loop, t);
		rill__task_timer_fired(t, now);
	}
}
