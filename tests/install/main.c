/* SPDX-License-Identifier: MIT */
/* An outside program built against an installed rill: creates a loop and
 * frees it. Exits 0 also where io_uring is unavailable, since that says
 * nothing about the packaging under test. */
#include <stdio.h>

#include <rill.h>

int main(void)
{
	rill_loop *loop;
	int rc;

	printf("RILL_ELIMIT: %s\n", rill_strerror(RILL_ELIMIT));
	rc = rill_loop_new(&loop, NULL);
	if (rc < 0) {
		printf("rill_loop_new: %s (%s)\n", rill_strerror(rc),
		       rill_error_detail());
		return rc <= RILL_EURING_NOSYS && rc >= RILL_EURING_GROUP ? 0 : 1;
	}
	rill_loop_free(loop);
	printf("loop created and freed\n");
	return 0;
}
