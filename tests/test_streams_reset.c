/* SPDX-License-Identifier: MIT */
/* rill_writer_abort_reset: the peer sees ECONNRESET, not an end of stream; queued bytes are dropped. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

TestSuite(streams_reset, .timeout = 30);

/* The peer's next recv: its error (-errno), or 0 at EOF, waiting 2 s at
 * most; fails the test if bytes come. */
static int peer_next(int fd)
{
	char b;
	int err = 0;
	size_t n = peer_recv_err(fd, &b, 1, &err);

	cr_assert_eq(n, 0, "bytes came");
	return err;
}

TASK_TEST(streams_reset, the_peer_sees_a_reset)
{
	struct conn c;

	open_tcp(&c, 0);
	cr_assert_eq(rill_writer_write(c.w, "dropped", 7), 0);
	cr_assert_eq(rill_writer_abort_reset(c.w), 0);
	cr_assert(rill_writer_is_closing(c.w));
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	cr_assert_eq(peer_next(c.peer), -ECONNRESET);
	cr_assert_eq(rill_writer_abort_reset(c.w), RILL_ECLOSED);
	rill_writer_free(c.w);
	close(c.peer);
	return 0;
}

TASK_TEST(streams_reset, abort_alone_ends_with_a_fin)
{
	struct conn c;

	open_tcp(&c, 0);
	rill_writer_abort(c.w);
	cr_assert_eq(rill_writer_wait_closed(c.w), 0);
	cr_assert_eq(peer_next(c.peer), 0, "EOF, not a reset");
	rill_writer_free(c.w);
	close(c.peer);
	return 0;
}

/* A server callback that resets its client at once. */
static int reset_client(rill_reader *r, rill_writer *w, void *arg)
{
	(void)r;
	(void)arg;
	cr_assert_eq(rill_writer_abort_reset(w), 0);
	return 0;
}

TASK_TEST(streams_reset, a_server_callback_resets_its_client)
{
	rill_server *s;
	int fd;

	cr_assert_eq(rill_start_server(reset_client, NULL, "127.0.0.1", 0, NULL, &s), 0);
	fd = tcp_client(rill_server_port(s));
	set_nonblock(fd);
	cr_assert_eq(peer_next(fd), -ECONNRESET);
	close(fd);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	return 0;
}

TASK_TEST(streams_reset, bad_arguments)
{
	cr_assert_eq(rill_writer_abort_reset(NULL), -EINVAL);
	return 0;
}
