/* SPDX-License-Identifier: MIT */
/* engine/waitq.c: waiter queues, the one way a task waits for a condition
 * of an object (a writer draining, a connection closing, a task ending).
 *
 * The wait entry lives in the parked task's frame, so it must be off the
 * queue before that frame goes: rill__waitq_park() links it and unlinks it
 * itself on every path, and its owner only ever wakes.
 */
#include <errno.h>

#include "engine/internal.h"

/* Cancelled or timed out: leave the queue, then return. */
static void waitq_interrupt(struct rill__wait *w, int reason)
{
	rill__list_del(&w->link);
	rill__wake(w->task, reason);
}

int rill__waitq_park(struct rill__waitq *q)
{
	struct rill__wait w = { .interrupt = waitq_interrupt,
				.until = RILL_TIME_NEVER };
	int err;

	/* Checked before linking: an entry left here would outlive us. */
	if (!rill__current())
		return -EPERM;
	rill__list_add_tail(&q->waiters, &w.link);
	err = rill__park(&w);
	/* Still linked if park refused at once (a cancellation pending, a
	 * deadline passed); a wake-up or an interrupt has unlinked it, and
	 * deleting an unlinked entry changes nothing. */
	rill__list_del(&w.link);
	return err;
}

bool rill__waitq_wake_one(struct rill__waitq *q)
{
	struct rill__wait *w;

	if (rill__list_empty(&q->waiters))
		return false;
	w = rill__container_of(q->waiters.next, struct rill__wait, link);
	rill__list_del(&w->link);
	rill__wake(w->task, 0);
	return true;
}

void rill__waitq_wake_all(struct rill__waitq *q)
{
	/* A woken task runs later, so it cannot join q again meanwhile. */
	while (rill__waitq_wake_one(q))
		;
}
