/* SPDX-License-Identifier: MIT */
/* engine/fiber.c: task stacks and the pieces of a switch that are not
 * assembly: new-stack layout, the stack pool, the guard page that turns a
 * stack overflow into a clear message, and the sanitizer annotations. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "engine/loop.h"

#if defined(__SANITIZE_ADDRESS__)
#define RILL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define RILL_ASAN 1
#endif
#endif

#ifdef RILL_ASAN
#include <sanitizer/common_interface_defs.h>
#endif


/* Stacks kept for reuse per loop. A server that accepts bursts of
 * connections reuses stacks instead of paying mmap + munmap + page faults
 * per connection; past this many, stacks go back to the kernel so that an
 * idle loop does not keep a peak's worth of memory. */
#define RILL_STACK_POOL_MAX 256

extern void rill__fiber_start(void);

void *rill__fiber_init(void *stack_top, void (*entry)(void *), void *arg)
{
	uintptr_t top = (uintptr_t)stack_top & ~(uintptr_t)15;
	void **sp;

#if defined(__x86_64__)
	/* After the six pops and ret of rill__fiber_switch, rsp must be
	 * 16-byte aligned so that rill__fiber_start's call leaves the callee
	 * with the ABI's rsp % 16 == 8 at entry. */
	sp = (void **)(top - 16);
	*--sp = (void *)rill__fiber_start;	/* return address */
	*--sp = NULL;				/* rbp */
	*--sp = NULL;				/* rbx */
	*--sp = arg;				/* r12 */
	*--sp = (void *)entry;			/* r13 */
	*--sp = NULL;				/* r14 */
	*--sp = NULL;				/* r15 */
#elif defined(__aarch64__)
	sp = (void **)(top - 160);
	memset(sp, 0, 160);
	sp[0] = arg;				/* x19 */
	sp[1] = (void *)entry;			/* x20 */
	sp[11] = (void *)rill__fiber_start;	/* x30 */
#endif
	return sp;
}

static size_t page_size(void)
{
	static size_t ps;

	if (!ps)
		ps = (size_t)sysconf(_SC_PAGESIZE);
	return ps;
}

/* The guard pages of this thread's loop, checked by the SIGSEGV handler. */
static __thread rill_loop *guard_loop;

static struct rill__stack *stack_alloc(size_t size)
{
	size_t guard = page_size();
	struct rill__stack *s = malloc(sizeof(*s));
	void *p;

	if (!s)
		return NULL;
	p = mmap(NULL, size + guard, PROT_READ | PROT_WRITE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
	if (p == MAP_FAILED) {
		free(s);
		return NULL;
	}
	/* The lowest page stays inaccessible: a task that runs past its
	 * stack faults there instead of overwriting another task's stack. */
	if (mprotect(p, guard, PROT_NONE) < 0) {
		munmap(p, size + guard);
		free(s);
		return NULL;
	}
	s->base = p;
	s->lo = (char *)p + guard;
	s->size = size;
	s->next = NULL;
	return s;
}

static void stack_release(struct rill__stack *s)
{
	munmap(s->base, s->size + page_size());
	free(s);
}

struct rill__stack *rill__stack_get(rill_loop *loop)
{
	struct rill__stack *s = loop->stack_pool;

	guard_loop = loop;
	if (s) {
		loop->stack_pool = s->next;
		loop->stack_pool_len--;
		return s;
	}
	return stack_alloc(loop->stack_size);
}

void rill__stack_put(rill_loop *loop, struct rill__stack *s)
{
	if (loop->stack_pool_len >= RILL_STACK_POOL_MAX) {
		stack_release(s);
		return;
	}
	s->next = loop->stack_pool;
	loop->stack_pool = s;
	loop->stack_pool_len++;
}

void rill__stack_pool_free(rill_loop *loop)
{
	struct rill__stack *s;

	while ((s = loop->stack_pool)) {
		loop->stack_pool = s->next;
		stack_release(s);
	}
	loop->stack_pool_len = 0;
}

static bool in_guard_page(const rill_task *t, const char *addr)
{
	const char *lo;

	if (!t || !t->stack)
		return false;
	lo = t->stack->base;
	/* A frame bigger than the guard page skips over it: count faults a
	 * little below the stack as overflows too. */
	return addr >= lo - 64 * 1024 && addr < lo + page_size();
}

static struct sigaction old_segv;

static void segv_handler(int sig, siginfo_t *si, void *uc)
{
	static const char msg[] =
		"rill: task stack overflow: a task ran past the end of its "
		"stack; raise rill_loop_options.stack_size\n";
	rill_loop *loop = guard_loop;

	if (loop && in_guard_page(loop->current, si->si_addr)) {
		ssize_t r = write(STDERR_FILENO, msg, sizeof(msg) - 1);
		(void)r;
		signal(SIGSEGV, SIG_DFL);
		abort();
	}
	/* Not ours: hand the fault to whoever was there before. */
	if (old_segv.sa_flags & SA_SIGINFO && old_segv.sa_sigaction) {
		old_segv.sa_sigaction(sig, si, uc);
		return;
	}
	if (old_segv.sa_handler != SIG_IGN && old_segv.sa_handler != SIG_DFL) {
		old_segv.sa_handler(sig);
		return;
	}
	signal(SIGSEGV, SIG_DFL);
	raise(SIGSEGV);
}

/* The handler needs a stack of its own: the faulting one is exhausted. */
static void altstack_install(void)
{
	static __thread bool done;
	stack_t ss = { 0 };
	stack_t old;

	if (done)
		return;
	done = true;
	if (sigaltstack(NULL, &old) == 0 && !(old.ss_flags & SS_DISABLE))
		return;
	ss.ss_size = 64 * 1024;
	ss.ss_sp = malloc(ss.ss_size);
	if (ss.ss_sp && sigaltstack(&ss, NULL) < 0)
		free(ss.ss_sp);
}

static void segv_handler_install(void)
{
	struct sigaction sa = { 0 };

	sa.sa_sigaction = segv_handler;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGSEGV, &sa, &old_segv);
}

void rill__stack_guard_install(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	altstack_install();
	pthread_once(&once, segv_handler_install);
}

#ifdef RILL_ASAN
void rill__asan_start_switch(void **fake_save, const void *bottom, size_t size)
{
	__sanitizer_start_switch_fiber(fake_save, bottom, size);
}

void rill__asan_finish_switch(void *fake, const void **bottom, size_t *size)
{
	__sanitizer_finish_switch_fiber(fake, bottom, size);
}
#else
void rill__asan_start_switch(void **fake_save, const void *bottom, size_t size)
{
	(void)fake_save;
	(void)bottom;
	(void)size;
}

void rill__asan_finish_switch(void *fake, const void **bottom, size_t *size)
{
	(void)fake;
	(void)bottom;
	(void)size;
}
#endif
