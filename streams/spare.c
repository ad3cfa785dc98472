/* SPDX-License-Identifier: MIT */
/* streams/spare.c: buffers kept for reuse, per thread.
 *
 * A writer's copy chunk is given back once sent and taken again by the next
 * write, so an echo server allocates nothing per message; a reader's small
 * buffer is given back while its task waits with nothing buffered and taken
 * again when bytes come. Each connection used to keep both, so every idle
 * connection held 1.5 KiB it did not use. The stacks are per thread (one
 * loop per thread), last in first out, so the next user gets the memory
 * touched last, and bounded in bytes: what does not fit goes back to
 * malloc.
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "streams/internal.h"

/* Every waiting reader gives its buffer back at once, and every connection
 * of a batch takes a chunk before the first send completes: a stack smaller
 * than the connections that are busy at once frees the surplus and mallocs
 * it again per message (a stack of 64 cost 140 instructions per message,
 * 13%, at 100 connections with one message in flight each). So the bound
 * is in bytes, 1 MiB a stack (1024 copy chunks, 2048 reader buffers): what
 * a thread keeps after a burst, and beyond which connections allocate as
 * before. */
#define RILL_SPARE_BYTES (1024 * 1024)

/* Written into the memory itself while it waits. */
struct spare {
	struct spare *next;
	size_t cap;
};

struct spare_stack {
	struct spare *top;
	size_t bytes;
};

struct spares {
	struct spare_stack chunks;	/* writers' copy chunks */
	struct spare_stack rbufs;	/* readers' buffers, RILL__RBUF_MIN_CAP */
	bool keyed;			/* spares_drop() runs at thread exit */
};

/* Reached on every message: initial-exec keeps it a plain %fs-relative
 * access in librill.so too (as engine/error.c's flag), not a call to
 * __tls_get_addr; 40 bytes of the static TLS surplus. */
static __thread struct spares spares __attribute__((tls_model("initial-exec")));
static pthread_key_t spares_key;
static pthread_once_t spares_once = PTHREAD_ONCE_INIT;

static void stack_drop(struct spare_stack *s)
{
	struct spare *p;

	while ((p = s->top)) {
		s->top = p->next;
		free(p);
	}
	s->bytes = 0;
}

/* A thread that ends frees what it kept. */
static void spares_drop(void *arg)
{
	struct spares *sp = arg;

	stack_drop(&sp->chunks);
	stack_drop(&sp->rbufs);
}

static void spares_key_init(void)
{
	(void)pthread_key_create(&spares_key, spares_drop);
}

static char *stack_take(struct spare_stack *s, size_t n, size_t *capp)
{
	struct spare *p = s->top;

	if (!p || p->cap < n)
		return NULL;
	s->top = p->next;
	s->bytes -= p->cap;
	*capp = p->cap;
	return (char *)p;
}

static void stack_give(struct spare_stack *s, char *mem, size_t cap)
{
	struct spare *p = (struct spare *)(void *)mem;

	if (cap > RILL_SPARE_MAX || s->bytes + cap > RILL_SPARE_BYTES) {
		free(mem);
		return;
	}
	if (!spares.keyed) {
		pthread_once(&spares_once, spares_key_init);
		spares.keyed = pthread_setspecific(spares_key, &spares) == 0;
	}
	p->cap = cap;
	p->next = s->top;
	s->top = p;
	s->bytes += cap;
}

char *rill__spare_take(size_t n, size_t *capp)
{
	return stack_take(&spares.chunks, n, capp);
}

void rill__spare_give(char *mem, size_t cap)
{
	stack_give(&spares.chunks, mem, cap);
}

char *rill__spare_rbuf_take(void)
{
	size_t cap;

	return stack_take(&spares.rbufs, RILL__RBUF_MIN_CAP, &cap);
}

void rill__spare_rbuf_give(char *mem)
{
	stack_give(&spares.rbufs, mem, RILL__RBUF_MIN_CAP);
}
