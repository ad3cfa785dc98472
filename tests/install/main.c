/* SPDX-License-Identifier: MIT */
/* An outside program built against an installed rill: checks that the
 * library it runs against is the version its headers state, then creates
 * a loop and frees it. A loop that cannot be made because io_uring is
 * unavailable still passes: that says nothing about the packaging. */
#include <stdio.h>
#include <string.h>

#include <rill.h>

int main(void)
{
	rill_loop_options lo = RILL_LOOP_OPTIONS_INIT;
	rill_loop_stats st = RILL_LOOP_STATS_INIT;
	rill_loop *loop;
	int rc;

	printf("rill %s (headers %s)\n", rill_version_string(), RILL_VERSION_STRING);
	if (rill_version() != RILL_VERSION_HEX ||
	    strcmp(rill_version_string(), RILL_VERSION_STRING) != 0) {
		fprintf(stderr, "library version 0x%06x differs from the headers' 0x%06x\n",
			rill_version(), RILL_VERSION_HEX);
		return 1;
	}
	printf("RILL_ELIMIT: %s\n", rill_strerror(RILL_ELIMIT));
	lo.no_signal_handler = true;
	rc = rill_loop_new(&lo, &loop);
	if (rc < 0) {
		printf("rill_loop_new: %s (%s)\n", rill_strerror(rc),
		       rill_error_detail());
		return rc <= RILL_EURING_NOSYS && rc >= RILL_EURING_GROUP ? 0 : 1;
	}
	rc = rill_loop_get_stats(loop, &st);
	rill_loop_free(loop);
	printf("loop created and freed\n");
	return rc == 0 ? 0 : 1;
}
