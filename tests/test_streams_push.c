/* SPDX-License-Identifier: MIT */
/* Writes leave without the writing task waiting: past a number of bytes, or a time, a write sends at once. */
#include <criterion/criterion.h>
#include <sys/ioctl.h>

#include "tests/helpers.h"

TestSuite(streams_push, .timeout = 30);

/* Bytes waiting at the plain peer. */
static int peer_queued(int fd)
{
	int n = -1;

	cr_assert_eq(ioctl(fd, FIONREAD, &n), 0);
	return n;
}

/* Spins for ns without waiting: a task computing. */
static void busy(rill_time ns)
{
	rill_time end = rill_now() + ns;

	while (rill_now() < end)
		;
}

/* Line i of the stream: 39 bytes and "\n". */
static void line_at(char *buf, int i)
{
	snprintf(buf, 41, "line %05d of a task that never waits..\n", i);
}

/* Writes n lines, computing between them, and never waits; then reads
 * them all at the peer and checks them. Returns what the peer had before
 * the task first waited. */
static int write_without_waiting(struct conn *c, int n, rill_time work_ns)
{
	char line[41], got[41];
	int before;

	for (int i = 0; i < n; i++) {
		line_at(line, i);
		cr_assert_eq(rill_writer_write(c->w, line, 40), 0);
		busy(work_ns);
		/* bounded: 16 KiB, and what one write adds */
		cr_assert_leq(rill_writer_get_write_buffer_size(c->w), 16 * 1024 + 40);
	}
	/* Loopback delivery may lag the send (softirq): give it up to 1 s,
	 * blocking the thread, which is no wait of the task's. */
	for (int i = 0; i < 1000 && (before = peer_queued(c->peer)) == 0; i++)
		usleep(1000);
	for (int i = 0; i < n; i++) {
		line_at(line, i);
		cr_assert_eq(peer_recv_all(c->peer, got, 40), 40);
		cr_assert_arr_eq(got, line, 40, "line %d", i);
	}
	return before;
}

TASK_TEST(streams_push, a_task_that_never_waits_sends_past_16_kib)
{
	struct conn c;
	int before;

	open_tcp(&c, 0);
	before = write_without_waiting(&c, 1000, 2000);
	cr_assert_gt(before, 0, "nothing left before the task waited");
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_push, a_task_that_never_waits_sends_within_a_time)
{
	struct conn c;
	int before;

	/* 50 lines, 2 KB in all, 2 ms of work after each: the time bound
	 * (1 ms, read from a clock that ticks every few ms) sends them. */
	open_unix(&c, 0);
	before = write_without_waiting(&c, 50, 2 * MS);
	cr_assert_gt(before, 0, "nothing left before the task waited");
	conn_done(&c);
	return 0;
}

TASK_TEST(streams_push, a_batch_written_at_once_is_one_send)
{
	struct conn c;
	char line[41];

	/* Below both bounds nothing leaves before the task waits: the
	 * writes of a pipelined batch still go out together. */
	open_unix(&c, 0);
	for (int i = 0; i < 16; i++) {
		line_at(line, i);
		cr_assert_eq(rill_writer_write(c.w, line, 40), 0);
	}
	cr_assert_eq(peer_queued(c.peer), 0);
	cr_assert_eq(rill_writer_get_write_buffer_size(c.w), 16 * 40);
	cr_assert_eq(rill_writer_drain(c.w), 0);
	cr_assert_eq(rill_sleep_ms(5), 0);
	cr_assert_eq(peer_queued(c.peer), 16 * 40);
	conn_done(&c);
	return 0;
}
