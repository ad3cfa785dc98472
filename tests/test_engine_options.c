/* SPDX-License-Identifier: MIT */
/* Options structs whose size is garbage (an unset field): -EINVAL with a detail, nothing read past a page. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <sys/mman.h>

#include "tests/helpers.h"

TestSuite(engine_options, .timeout = 30);

/* The sizes an uninitialised size field is likely to hold. */
static const size_t garbage[] = { 4097, 1u << 20, (size_t)1 << 40, SIZE_MAX / 2, SIZE_MAX };
#define NGARBAGE (sizeof(garbage) / sizeof(garbage[0]))

/* A copy of the struct of n bytes at the very end of a mapping whose next
 * page is inaccessible: reading one byte past the struct faults. The
 * caller munmaps *map (2 pages). */
static void *at_the_edge(const void *src, size_t n, void **map)
{
	long page = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 2 * (size_t)page, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	cr_assert_neq(m, MAP_FAILED);
	cr_assert_eq(mprotect(m + page, (size_t)page, PROT_NONE), 0);
	*map = m;
	return memcpy(m + page - n, src, n);
}

static void expect_refused(int err, const char *type, size_t size)
{
	cr_assert_eq(err, -EINVAL, "%s.size %zu: %s", type, size, rill_err_name(err));
	cr_assert(strstr(rill_error_detail(), type), "%s.size %zu: detail \"%s\"", type,
		  size, rill_error_detail());
}

Test(engine_options, loop_options_of_garbage_size)
{
	for (size_t i = 0; i < NGARBAGE; i++) {
		rill_loop_options o = RILL_LOOP_OPTIONS_INIT, *p;
		rill_loop *l = NULL;
		void *map;

		o.size = garbage[i];
		p = at_the_edge(&o, sizeof(o), &map);
		expect_refused(rill_loop_new(p, &l), "rill_loop_options", garbage[i]);
		cr_assert_null(l);
		munmap(map, 2 * (size_t)sysconf(_SC_PAGESIZE));
	}
}

Test(engine_options, a_page_of_zeros_is_still_accepted)
{
	/* 4096 is the cap, not a refusal: a newer struct padded with zeros. */
	static union { rill_loop_options o; char page[4096]; } big;
	rill_loop *l = NULL;

	big.o = (rill_loop_options)RILL_LOOP_OPTIONS_INIT;
	big.o.size = sizeof(big);
	cr_assert_eq(rill_loop_new(&big.o, &l), 0, "%s", rill_error_detail());
	cr_assert_eq(rill_loop_free(l), 0);
}

Test(engine_options, loop_stats_of_garbage_size)
{
	rill_loop *l;

	cr_assert_eq(rill_loop_new(NULL, &l), 0);
	for (size_t i = 0; i < NGARBAGE; i++) {
		rill_loop_stats st = RILL_LOOP_STATS_INIT, *p;
		void *map;

		st.size = garbage[i];
		p = at_the_edge(&st, sizeof(st), &map);
		expect_refused(rill_loop_get_stats(l, p), "rill_loop_stats", garbage[i]);
		munmap(map, 2 * (size_t)sysconf(_SC_PAGESIZE));
	}
	rill_loop_free(l);
}

TASK_TEST(engine_options, open_and_server_options_of_garbage_size)
{
	for (size_t i = 0; i < NGARBAGE; i++) {
		rill_open_options oo = RILL_OPEN_OPTIONS_INIT, *op;
		rill_server_options so = RILL_SERVER_OPTIONS_INIT, *sp;
		rill_reader *r = NULL;
		rill_writer *w = NULL;
		rill_server *s = NULL;
		void *m1, *m2;

		oo.size = so.size = garbage[i];
		op = at_the_edge(&oo, sizeof(oo), &m1);
		sp = at_the_edge(&so, sizeof(so), &m2);
		expect_refused(rill_open_connection("127.0.0.1", 1, op, &r, &w),
			       "rill_open_options", garbage[i]);
		cr_assert_null(w);
		expect_refused(rill_open_unix_connection("/nonexistent", op, &r, &w),
			       "rill_open_options", garbage[i]);
		expect_refused(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, sp, &s),
			       "rill_server_options", garbage[i]);
		cr_assert_null(s);
		expect_refused(rill_start_unix_server(echo_lines, NULL, "/tmp/rill-never", sp, &s),
			       "rill_server_options", garbage[i]);
		munmap(m1, 2 * (size_t)sysconf(_SC_PAGESIZE));
		munmap(m2, 2 * (size_t)sysconf(_SC_PAGESIZE));
	}
	return 0;
}

/* ---- values the kernel would refuse ---------------------------------- */

Test(engine_options, cq_entries_below_sq_entries_is_einval_not_a_refusal)
{
	rill_loop *l = NULL;

	cr_assert_eq(rill_loop_new(RILL_LOOP_OPTIONS(.sq_entries = 64, .cq_entries = 32), &l),
		     -EINVAL, "%s", rill_error_detail());
	cr_assert(strstr(rill_error_detail(), "cq_entries"), "detail: %s", rill_error_detail());
	cr_assert_null(l);
	/* The default sq_entries (256) too, and the kernel's rounding up. */
	cr_assert_eq(rill_loop_new(RILL_LOOP_OPTIONS(.cq_entries = 8), &l), -EINVAL);
	cr_assert_eq(rill_loop_new(RILL_LOOP_OPTIONS(.sq_entries = 100, .cq_entries = 100), &l),
		     -EINVAL);
	cr_assert(strstr(rill_error_detail(), "128"), "detail: %s", rill_error_detail());
	/* Equal is fine. */
	cr_assert_eq(rill_loop_new(RILL_LOOP_OPTIONS(.sq_entries = 64, .cq_entries = 64), &l),
		     0, "%s", rill_error_detail());
	cr_assert_eq(rill_loop_free(l), 0);
}
