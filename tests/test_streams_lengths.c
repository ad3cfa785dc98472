/* SPDX-License-Identifier: MIT */
/* Writer lengths no buffer can have (write, writelines, write_ref): -EINVAL with a detail, nothing sent. */
#include <criterion/criterion.h>
#include <limits.h>
#include <stdint.h>

#include "tests/helpers.h"

TestSuite(streams_lengths, .timeout = 30);

static void count_release(void *arg)
{
	(*(int *)arg)++;
}

/* Ends the test's writes with "ok" and asserts the peer gets exactly that:
 * none of the refused bytes went out before it. */
static void expect_only_ok(struct conn *c)
{
	char buf[64];
	size_t n;

	cr_assert_eq(rill_writer_write(c->w, "ok", 2), 0);
	cr_assert_eq(rill_writer_write_eof(c->w), 0);
	n = peer_recv_all(c->peer, buf, sizeof(buf));
	cr_assert_eq(n, 2, "the peer got %zu bytes, not 2", n);
	cr_assert_eq(memcmp(buf, "ok", 2), 0);
	conn_done(c);
}

static void expect_einval(int err, const char *call)
{
	cr_assert_eq(err, -EINVAL, "%s: %s", call, rill_err_name(err));
	cr_assert_neq(rill_error_detail()[0], '\0', "%s: no detail", call);
}

TASK_TEST(streams_lengths, write_ref_of_size_max_is_einval_and_sends_nothing)
{
	static const char small[16] = "0123456789abcdef";
	struct conn c;
	int released = 0;

	open_unix(&c, 0);
	expect_einval(rill_writer_write_ref(c.w, small, SIZE_MAX, count_release, &released),
		      "write_ref(SIZE_MAX)");
	expect_einval(rill_writer_write_ref(c.w, small, (size_t)SSIZE_MAX + 1,
					    count_release, &released),
		      "write_ref(SSIZE_MAX + 1)");
	cr_assert_eq(released, 0, "a refused write_ref released its buffer");
	expect_only_ok(&c);
	return 0;
}

TASK_TEST(streams_lengths, write_ref_past_what_is_queued_is_einval)
{
	static const char small[16] = "0123456789abcdef";
	struct conn c;
	char buf[16];

	open_unix(&c, 0);
	cr_assert_eq(rill_writer_write(c.w, "abc", 3), 0);
	/* SSIZE_MAX alone would fit; with 3 bytes queued it does not. */
	expect_einval(rill_writer_write_ref(c.w, small, SSIZE_MAX, NULL, NULL),
		      "write_ref(SSIZE_MAX) behind 3 bytes");
	cr_assert_eq(peer_recv_all(c.peer, buf, 3), 3);
	cr_assert_eq(memcmp(buf, "abc", 3), 0);
	expect_only_ok(&c);
	return 0;
}

TASK_TEST(streams_lengths, write_of_size_max_is_einval)
{
	static const char small[16] = "0123456789abcdef";
	struct conn c;

	open_unix(&c, 0);
	expect_einval(rill_writer_write(c.w, small, SIZE_MAX), "write(SIZE_MAX)");
	expect_only_ok(&c);
	return 0;
}

TASK_TEST(streams_lengths, writelines_whose_sum_overflows_queues_nothing)
{
	static const char small[16] = "0123456789abcdef";
	rill_bytes wrap[] = { { small, 4 }, { small, SIZE_MAX - 1 } };
	rill_bytes past[] = { { small, 4 }, { small, (size_t)SSIZE_MAX / 2 + 1 },
			      { small, (size_t)SSIZE_MAX / 2 + 1 } };
	rill_bytes huge[] = { { small, 4 }, { small, SIZE_MAX } };
	struct conn c;

	open_unix(&c, 0);
	expect_einval(rill_writer_writelines(c.w, wrap, 2), "writelines (sum wraps)");
	expect_einval(rill_writer_writelines(c.w, past, 3), "writelines (sum > SSIZE_MAX)");
	expect_einval(rill_writer_writelines(c.w, huge, 2), "writelines (SIZE_MAX chunk)");
	/* Not even the 4 bytes in front went out. */
	expect_only_ok(&c);
	return 0;
}

TASK_TEST(streams_lengths, refused_on_a_tcp_socket_too)
{
	static const char small[16] = "0123456789abcdef";
	struct conn c;
	int released = 0;

	open_tcp(&c, 0);
	expect_einval(rill_writer_write_ref(c.w, small, SIZE_MAX, count_release, &released),
		      "write_ref(SIZE_MAX)");
	cr_assert_eq(released, 0);
	expect_only_ok(&c);
	return 0;
}
