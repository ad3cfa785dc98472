/* SPDX-License-Identifier: MIT */
/* tests/bench_path.h: where the tests of bench/ find the benchmark programs. */
#ifndef RILL_TESTS_BENCH_PATH_H
#define RILL_TESTS_BENCH_PATH_H

#include <criterion/criterion.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* The build puts the tests in ${build}/tests and the benchmarks in
 * ${build}/bench; RILL_BENCH_DIR overrides. Skips the test where the
 * program is not built. */
static inline void bench_path(const char *name, char *buf, size_t len)
{
	const char *env = getenv("RILL_BENCH_DIR");
	char exe[PATH_MAX];
	ssize_t n;

	if (env) {
		snprintf(buf, len, "%s/%s", env, name);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		cr_assert_gt(n, 0);
		exe[n] = '\0';
		snprintf(buf, len, "%s/bench/%s", dirname(dirname(exe)), name);
	}
	if (access(buf, X_OK) < 0)
		cr_skip_test("%s not built (RILL_BUILD_BENCH off?)", buf);
}

#endif
