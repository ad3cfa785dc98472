/* SPDX-License-Identifier: MIT */
/* streams/spare.c: copy chunks kept for reuse, one stack per thread.
 *
 * A writer's copy chunk is given back once sent and taken again by the next
 * write, so an echo server allocates nothing per message. Each writer used to
 * keep its own sent chunk, so every idle connection held 1 KiB it did not
 * use. The stack is per thread (one loop per thread), last in first out,
 * so the next write gets the chunk the cache saw last, and bounded in count
 * and bytes: what does not fit goes back to malloc.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "streams/internal.h"

/* Enough for every connection of a loop to have a send in flight at once
 * in an echo benchmark of a few hundred; the bytes bound keeps a thread
 * that once wrote large chunks from holding much. */
#define RILL_SPARE_COUNT 64
#define RILL_SPARE_BYTES (1024 * 1024)

/* Written into the chunk itself while it waits. */
struct spare {
	struct spare *next;
	size_t cap;
};

struct spare_stack {
	struct spare *top;
	size_t count, bytes;
	bool keyed;		/* stack_drop() runs at thread exit */
};

static __thread struct spare_stack stack;
static pthread_key_t stack_key;
static pthread_once_t stack_once = PTHREAD_ONCE_INIT;

/* A thread that ends frees what it kept. */
static void stack_drop(void *arg)
{
	struct spare_stack *s = arg;
	struct spare *p;

	while ((p = s->top)) {
		s->top = p->next;
		free(p);
	}
	s->count = s->bytes = 0;
}

static void stack_key_init(void)
{
	(void)pthread_key_create(&stack_key, stack_drop);
}

char *rill__spare_take(size_t n, size_t *capp)
{
	struct spare *p = stack.top;

	if (!p || p->cap < n)
		return NULL;
	stack.top = p->next;
	stack.count--;
	stack.bytes -= p->cap;
	*capp = p->cap;
	return (char *)p;
}

void rill__spare_give(char *mem, size_t cap)
{
	struct spare *p = (struct spare *)(void *)mem;

	if (cap > RILL_SPARE_MAX || stack.count >= RILL_SPARE_COUNT ||
	    stack.bytes + cap > RILL_SPARE_BYTES) {
		free(mem);
		return;
	}
	if (!stack.keyed) {
		pthread_once(&stack_once, stack_key_init);
		stack.keyed = pthread_setspecific(stack_key, &stack) == 0;
	}
	p->cap = cap;
	p->next = stack.top;
	stack.top = p;
	stack.count++;
	stack.bytes += cap;
}
