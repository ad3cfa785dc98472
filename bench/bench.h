/* SPDX-License-Identifier: MIT */
/* bench/bench.h: small pieces the benchmark programs share. */
#ifndef RILL_BENCH_H
#define RILL_BENCH_H

#include <sys/resource.h>

/* Thousands of connections need thousands of fds: take the hard limit. */
static inline void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

#endif
