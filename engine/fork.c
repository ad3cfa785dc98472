/* SPDX-License-Identifier: MIT */
/* engine/fork.c: loops inherited through fork().
 *
 * A child of fork() shares its parent's io_uring instance, epoll instance
 * and sockets: a completion, readiness event or connection the child takes
 * is one the parent loses, and a cancel, epoll_ctl or shutdown() from the
 * child changes the parent's. So a loop refuses every call made from a
 * process other than the one that created it (RILL_EFORKED), and freeing
 * it there only closes the child's copies of its fds.
 *
 * Telling costs no syscall: a pthread_atfork child handler bumps a
 * generation, and each loop compares the one it was made in.
 */
#include <pthread.h>
#include <stdlib.h>

#include "engine/loop.h"

atomic_uint rill__fork_generation;

static void fork_child(void)
{
	atomic_fetch_add_explicit(&rill__fork_generation, 1, memory_order_relaxed);
	/* The child of a fork() made inside a task runs on, on that task's
	 * stack, but outside any task of its own: it may run loops of its
	 * own from here. */
	rill__task_forget_current();
}

static void watch_register(void)
{
	pthread_atfork(NULL, NULL, fork_child);
}

unsigned rill__fork_watch(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, watch_register);
	return atomic_load_explicit(&rill__fork_generation, memory_order_relaxed);
}

int rill__forked_error(const char *call)
{
	return rill__set_detail(RILL_EFORKED, "%s: this loop was inherited through "
				"fork() and belongs to the parent process (it shares "
				"the parent's %s and sockets); create a new loop in "
				"the child", call, "ring or epoll instance");
}

void rill__forked_misuse(void)
{
	rill__misuse("a child of fork() went back into its parent's loop (the "
		     "task that forked returned or waited); end the child with "
		     "_exit() or exec, or run a loop of its own");
	abort();	/* not reached */
}
