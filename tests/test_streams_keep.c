/* SPDX-License-Identifier: MIT */
/* Kept writers (rill_writer_keep/release): a server connection used by other tasks after its callback returned, after it was lost, released in either order. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

TestSuite(streams_keep, .timeout = 30);

/* What the server callback hands over: the kept writer, and whether the
 * callback has returned. */
struct handoff {
	rill_writer *w;
	bool returned;
	bool close_first;	/* the callback closes before returning */
	const char *say;	/* written by the callback after the keeper's */
	bool keeper_done;	/* the keeper released before we say */
};

static int keep_and_return(rill_reader *r, rill_writer *w, void *arg)
{
	struct handoff *h = arg;

	(void)r;
	h->w = rill_writer_keep(w);
	cr_assert_eq(h->w, w);
	for (int i = 0; i < 2000 && h->say && !h->keeper_done; i++)
		rill_sleep_ms(1);
	if (h->say)
		rill_writer_write(w, h->say, strlen(h->say));
	if (h->close_first)
		rill_writer_close(w);
	h->returned = true;
	return 0;
}

/* Waits (1 s at most) until flag is set. */
static void wait_flag(const bool *flag)
{
	for (int i = 0; i < 1000 && !*flag; i++)
		rill_sleep_ms(1);
	cr_assert(*flag, "timed out");
}

/* A server with the callback above and a plain, non-blocking client. */
static rill_server *serve(struct handoff *h, int *peerp)
{
	rill_server *s;

	cr_assert_eq(rill_start_server(keep_and_return, h, "127.0.0.1", 0, NULL, &s), 0);
	*peerp = tcp_client(rill_server_port(s));
	set_nonblock(*peerp);
	return s;
}

/* Writes 1 MiB and drains from a task of its own (arg: the writer). */
static int write_and_drain(void *arg)
{
	static unsigned char big[1 << 20];
	rill_writer *w = arg;

	fill_pat(big, 0, sizeof(big));
	cr_assert_eq(rill_writer_write(w, big, sizeof(big)), 0);
	cr_assert_eq(rill_writer_drain(w), 0);
	return 0;
}

TASK_TEST(streams_keep, kept_writer_outlives_its_callback)
{
	static unsigned char got[1 << 20];
	struct handoff h = { 0 };
	rill_task *drainer;
	rill_reader *r;
	char line[8];
	int peer;
	rill_server *s = serve(&h, &peer);

	wait_flag(&h.returned);
	/* The callback has returned and the connection stays open: its writer
	 * and reader are ours now, from other tasks. */
	cr_assert_not(rill_writer_is_closing(h.w));
	drainer = spawn(write_and_drain, h.w);
	rill_sleep_ms(20);
	cr_assert_eq(peer_recv_all(peer, got, sizeof(got)), sizeof(got));
	check_pat(got, 0, sizeof(got));
	join(drainer);
	r = rill_writer_reader(h.w);
	peer_sends(peer, "in\n");
	expect_line(r, "in\n");
	cr_assert_eq(rill_writer_write(h.w, "late\n", 5), 0);
	cr_assert_eq(peer_recv_all(peer, line, 5), 5);
	cr_assert_arr_eq(line, "late\n", 5);
	rill_writer_close(h.w);
	cr_assert_eq(rill_writer_wait_closed(h.w), 0);
	rill_writer_release(h.w);
	cr_assert_eq(peer_recv_all(peer, line, 1), 0, "EOF after the close");
	close(peer);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	return 0;
}

TASK_TEST(streams_keep, kept_writer_after_the_peer_reset)
{
	struct handoff h = { 0 };
	rill_bytes line;
	int peer;
	rill_server *s = serve(&h, &peer);

	wait_flag(&h.returned);
	peer_reset(&peer);
	/* The loss reaches the kept reader and writer. */
	cr_assert_eq(rill_reader_readline(rill_writer_reader(h.w), &line), -ECONNRESET);
	cr_assert_eq(rill_writer_write(h.w, "gone\n", 5), 0, "dropped, as asyncio");
	cr_assert_eq(rill_writer_drain(h.w), -ECONNRESET);
	cr_assert(rill_writer_is_closing(h.w));
	cr_assert_eq(rill_writer_wait_closed(h.w), -ECONNRESET);
	/* The server does not wait for a kept connection that is closed. */
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_writer_release(h.w);
	rill_server_free(s);
	return 0;
}

/* The keeper (arg: struct handoff) writes, then releases. */
static int keeper(void *arg)
{
	struct handoff *h = arg;

	for (int i = 0; i < 1000 && !h->w; i++)
		rill_sleep_ms(1);
	cr_assert_not_null(h->w);
	cr_assert_eq(rill_writer_write(h->w, "x\n", 2), 0);
	rill_writer_release(h->w);
	h->keeper_done = true;
	return 0;
}

TASK_TEST(streams_keep, released_before_the_callback_returns)
{
	struct handoff h = { .say = "y\n", .close_first = true };
	rill_task *t = spawn(keeper, &h);
	char buf[8];
	int peer;
	rill_server *s = serve(&h, &peer);

	join(t);
	wait_flag(&h.returned);
	cr_assert_eq(peer_recv_all(peer, buf, sizeof(buf)), 4, "then EOF");
	cr_assert_arr_eq(buf, "x\ny\n", 4);
	close(peer);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	return 0;
}

static void count_log(int level, const char *msg, void *arg)
{
	(void)level;
	if (strstr(msg, "unclosed writer") && strstr(msg, "last holder"))
		++*(int *)arg;
}

TASK_TEST(streams_keep, last_release_closes_an_unclosed_writer)
{
	struct handoff h = { 0 };
	int warned = 0, peer;
	char buf[8];
	rill_server *s = serve(&h, &peer);

	rill_set_log_handler(count_log, &warned);
	wait_flag(&h.returned);
	cr_assert_eq(rill_writer_write(h.w, "bye\n", 4), 0);
	rill_writer_release(h.w);	/* the last holder: closes, sends first */
	cr_assert_eq(peer_recv_all(peer, buf, sizeof(buf)), 4, "then EOF");
	cr_assert_arr_eq(buf, "bye\n", 4);
	cr_assert_eq(warned, 1);
	rill_set_log_handler(NULL, NULL);
	close(peer);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	return 0;
}

static int server_wait(void *arg)
{
	return rill_server_wait_closed(arg);
}

TASK_TEST(streams_keep, server_waits_for_a_kept_open_connection)
{
	struct handoff h = { 0 };
	rill_task *t;
	int peer;
	char b;
	rill_server *s = serve(&h, &peer);

	wait_flag(&h.returned);
	rill_server_close(s);
	/* Still open: wait_closed waits; close_clients closes it. */
	t = spawn(server_wait, s);
	rill_sleep_ms(20);
	cr_assert_not(rill_task_done(t));
	rill_server_close_clients(s);
	join(t);
	cr_assert_eq(peer_recv_all(peer, &b, 1), 0);
	cr_assert(rill_writer_is_closing(h.w));
	rill_writer_release(h.w);
	close(peer);
	rill_server_free(s);
	return 0;
}

TASK_TEST(streams_keep, client_writer_kept_past_free)
{
	struct conn c;
	char buf[4];
	rill_writer *w;

	open_unix(&c, 0);
	cr_assert_null(rill_writer_keep(NULL));
	rill_writer_release(NULL);
	w = rill_writer_keep(rill_writer_keep(c.w));
	rill_writer_free(c.w);		/* the owner lets go; two keeps remain */
	cr_assert_eq(rill_writer_write(w, "ok", 2), 0);
	cr_assert_eq(rill_writer_drain(w), 0);
	cr_assert_eq(peer_recv_all(c.peer, buf, 2), 2);
	cr_assert_arr_eq(buf, "ok", 2);
	rill_writer_release(w);
	rill_writer_close(w);
	cr_assert_eq(rill_writer_wait_closed(w), 0);
	rill_writer_release(w);
	cr_assert_eq(peer_recv_all(c.peer, buf, 1), 0);
	close(c.peer);
	return 0;
}
