/* SPDX-License-Identifier: MIT */
/* engine/graves.c: handles given back are freed a while later, so that a
 * use after the hand-back (a second join, a second free) reads memory that
 * is still the loop's and says which misuse it is. */
#include <stdlib.h>

#include "engine/loop.h"

void rill__bury(rill_loop *loop, void *p)
{
	void **slot = &loop->graves[loop->grave_next];

	free(*slot);
	*slot = p;
	loop->grave_next = (loop->grave_next + 1) % RILL__GRAVES;
}

void rill__graves_free(rill_loop *loop)
{
	for (unsigned i = 0; i < RILL__GRAVES; i++) {
		free(loop->graves[i]);
		loop->graves[i] = NULL;
	}
}
