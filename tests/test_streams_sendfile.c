/* SPDX-License-Identifier: MIT */
/* rill_writer_sendfile: in order with writes, offset and count, EOF before count, zero-copy on TCP and Unix sockets, the copy path on a pipe. */
#include <criterion/criterion.h>
#include <sys/un.h>

#include "tests/helpers.h"
#include "tests/sendfile_helpers.h"

TestSuite(streams_sendfile, .timeout = 60);

#define CAP (40u << 20)

struct env {
	struct received rc;
	rill_server *srv;
	rill_reader *r;
	rill_writer *w;
};

static void env_start(struct env *e)
{
	e->rc = (struct received){ .data = malloc(CAP), .cap = CAP };
	cr_assert_eq(rill_start_server(receive_all, &e->rc, "127.0.0.1", 0, NULL, &e->srv), 0);
	connect_to("127.0.0.1", rill_server_port(e->srv), &e->r, &e->w);
}

/* Closes the client, waits for the server to see all, and stops it. */
static void env_finish(struct env *e)
{
	cr_assert_eq(writer_done(e->w), 0);
	received_wait(&e->rc);
	cr_assert_eq(e->rc.last, 0);
	rill_server_free(e->srv);
}

static void env_free(struct env *e)
{
	free(e->rc.data);
}

TASK_TEST(streams_sendfile, between_writes_in_order)
{
	const size_t n = 24u << 20;
	int fd = pattern_file(n);
	struct env e;

	env_start(&e);
	cr_assert_eq(rill_writer_write(e.w, "HEAD", 4), 0);
	cr_assert_eq(rill_writer_sendfile(e.w, fd, 0, n), (ssize_t)n);
	cr_assert_eq(lseek(fd, 0, SEEK_CUR), (off_t)n, "the file position moved");
	cr_assert_eq(rill_writer_write(e.w, "TAIL", 4), 0);
	env_finish(&e);
	cr_assert_eq(e.rc.len, n + 8);
	cr_assert_arr_eq(e.rc.data, "HEAD", 4);
	check_pat(e.rc.data + 4, 0, n);
	cr_assert_arr_eq(e.rc.data + 4 + n, "TAIL", 4);
	env_free(&e);
	close(fd);
	return 0;
}

TASK_TEST(streams_sendfile, offset_count_and_eof_before_count)
{
	const size_t n = 3u << 20;
	int fd = pattern_file(n);
	size_t want = 0;
	struct env e;

	env_start(&e);
	cr_assert_eq(rill_writer_sendfile(e.w, fd, 1000, 5000), 5000);	/* [1000, 6000) */
	want += 5000;
	cr_assert_eq(rill_writer_sendfile(e.w, fd, (off_t)n - 700, 1u << 20), 700,
		     "the file ends first: what it had");
	want += 700;
	cr_assert_eq(rill_writer_sendfile(e.w, fd, (off_t)n - 300, 0), 300, "count 0: to the end");
	want += 300;
	cr_assert_eq(rill_writer_sendfile(e.w, fd, (off_t)n + 10, 100), 0, "past the end");
	{ ssize_t got = rill_writer_sendfile(e.w, fd, 6000, 0);
	cr_assert_eq(got, (ssize_t)(n - 6000), "got %zd (%s)", got, rill_err_name((int)got)); }
	want += n - 6000;
	env_finish(&e);
	cr_assert_eq(e.rc.len, want);
	check_pat(e.rc.data, 1000, 5000);
	check_pat(e.rc.data + 5000, n - 700, 700);
	check_pat(e.rc.data + 5700, n - 300, 300);
	check_pat(e.rc.data + 6000, 6000, n - 6000);
	env_free(&e);
	close(fd);
	return 0;
}

struct later {
	rill_writer *w;
	bool wrote;
};

static int write_later(void *arg)
{
	struct later *l = arg;

	cr_assert_eq(rill_writer_write(l->w, "AFTER", 5), 0);
	l->wrote = true;
	return 0;
}

TASK_TEST(streams_sendfile, writes_made_meanwhile_go_after_the_file)
{
	const size_t n = 16u << 20;
	int fd = pattern_file(n);
	struct later l = { 0 };
	struct env e;
	rill_task *t;

	env_start(&e);
	l.w = e.w;
	t = spawn(write_later, &l);	/* runs once sendfile waits */
	cr_assert_eq(rill_writer_sendfile(e.w, fd, 0, n), (ssize_t)n);
	join(t);
	cr_assert(l.wrote);
	env_finish(&e);
	cr_assert_eq(e.rc.len, n + 5);
	check_pat(e.rc.data, 0, n);
	cr_assert_arr_eq(e.rc.data + n, "AFTER", 5);
	env_free(&e);
	close(fd);
	return 0;
}

struct sender {
	rill_writer *w;
	int fd;
	size_t n;
	ssize_t got;
};

static int send_it(void *arg)
{
	struct sender *s = arg;

	s->got = rill_writer_sendfile(s->w, s->fd, 0, s->n);
	return 0;
}

TASK_TEST(streams_sendfile, close_while_it_sends_waits_for_the_file)
{
	struct sender s = { .n = 16u << 20 };
	struct env e;
	rill_task *t;

	s.fd = pattern_file(s.n);
	env_start(&e);
	s.w = e.w;
	t = spawn(send_it, &s);
	rill_sleep_ms(1);	/* the sendfile is under way */
	rill_writer_close(e.w);	/* as with queued writes: sent, then closed */
	join(t);
	cr_assert_eq(s.got, (ssize_t)s.n, "sendfile: %zd", s.got);
	env_finish(&e);
	cr_assert_eq(e.rc.len, s.n);
	check_pat(e.rc.data, 0, s.n);
	env_free(&e);
	close(s.fd);
	return 0;
}

TASK_TEST(streams_sendfile, over_a_unix_socket)
{
	const size_t n = 5u << 20;
	char path[64];
	int fd = pattern_file(n);
	struct received rc = { .data = malloc(n + 16), .cap = n + 16 };
	rill_server *s;
	rill_reader *r;
	rill_writer *w;

	snprintf(path, sizeof(path), "@rill-sendfile-%d", getpid());
	cr_assert_eq(rill_start_unix_server(receive_all, &rc, path, NULL, &s), 0);
	cr_assert_eq(rill_open_unix_connection(path, NULL, &r, &w), 0);
	cr_assert_eq(rill_writer_sendfile(w, fd, 0, n), (ssize_t)n);
	cr_assert_eq(writer_done(w), 0);
	received_wait(&rc);
	cr_assert_eq(rc.len, n);
	check_pat(rc.data, 0, n);
	rill_server_free(s);
	free(rc.data);
	close(fd);
	return 0;
}

TASK_TEST(streams_sendfile, to_a_pipe_by_copy)
{
	const size_t n = 2u << 20;
	int fd = pattern_file(n), p[2];
	rill_reader *r;
	rill_writer *w;
	rill_bytes v;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	cr_assert_eq(rill_connect_read_pipe(p[0], RILL_OPEN_OPTIONS(.limit = 4u << 20), &r), 0);
	cr_assert_eq(rill_connect_write_pipe(p[1], NULL, &w), 0);
	cr_assert_eq(rill_writer_write(w, "<", 1), 0);
	cr_assert_eq(rill_writer_sendfile(w, fd, 10, n - 10), (ssize_t)(n - 10));
	cr_assert_eq(rill_writer_write_eof(w), 0);
	cr_assert_eq(rill_reader_read_all(r, &v), (ssize_t)(n - 9));
	cr_assert_eq(((const char *)v.data)[0], '<');
	check_pat((const unsigned char *)v.data + 1, 10, n - 10);
	rill_writer_free(w);
	rill_reader_free(r);
	close(fd);
	return 0;
}

TASK_TEST(streams_sendfile, a_peer_that_goes_away)
{
	const size_t n = 32u << 20;
	int fd = pattern_file(n), lfd, port, peer;
	rill_reader *r;
	rill_writer *w;
	ssize_t k;

	lfd = listen_loopback(&port, 1);
	connect_to("127.0.0.1", port, &r, &w);
	peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(peer, 0);
	/* Reset on close: unread data in its buffer. */
	cr_assert_eq(setsockopt(peer, SOL_SOCKET, SO_LINGER,
				&(struct linger){ .l_onoff = 1, .l_linger = 0 },
				sizeof(struct linger)), 0);
	close(peer);
	close(lfd);
	k = rill_writer_sendfile(w, fd, 0, n);
	cr_assert(k == -ECONNRESET || k == -EPIPE, "sendfile: %zd (%s)", k, rill_err_name((int)k));
	rill_writer_free(w);
	close(fd);
	return 0;
}

TASK_TEST(streams_sendfile, abort_ends_a_sendfile_blocked_on_a_full_socket)
{
	struct sender s = { .n = 64u << 20 };
	int lfd, port, peer;
	rill_reader *r;
	rill_task *t;
	rill_time t0;

	s.fd = pattern_file(s.n);
	lfd = listen_loopback(&port, 1);
	connect_to("127.0.0.1", port, &r, &s.w);
	peer = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);	/* never reads */
	cr_assert_geq(peer, 0);
	t = spawn(send_it, &s);
	rill_sleep_ms(50);	/* the socket is full by now */
	cr_assert_eq(s.got, 0, "sendfile ended early: %zd", s.got);
	t0 = rill_now();
	rill_writer_abort(s.w);
	join(t);
	cr_assert_eq(s.got, -ECONNRESET, "sendfile: %zd (%s)", s.got, rill_err_name((int)s.got));
	cr_assert_lt(rill_now() - t0, 2000 * MS, "abort took too long");
	cr_assert_eq(rill_writer_wait_closed(s.w), 0);
	rill_writer_free(s.w);
	close(peer);
	close(lfd);
	close(s.fd);
	return 0;
}

static ssize_t outside_a_task(void)
{
	return rill_writer_sendfile((rill_writer *)NULL, 0, 0, 1);
}

Test(streams_sendfile, null_writer)
{
	cr_assert_eq(outside_a_task(), -EINVAL);
}

TASK_TEST(streams_sendfile, invalid_arguments)
{
	int fd = pattern_file(100), p[2];
	struct env e;

	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
	env_start(&e);
	cr_assert_eq(rill_writer_sendfile(e.w, fd, -1, 10), -EINVAL);
	cr_assert_eq(rill_writer_sendfile(e.w, p[0], 0, 10), -EINVAL, "a pipe is no file");
	cr_assert_str_neq(rill_error_detail(), "");
	cr_assert_eq(rill_writer_sendfile(e.w, 999999, 0, 10), -EBADF);
	cr_assert_eq(rill_writer_write_eof(e.w), 0);
	cr_assert_eq(rill_writer_sendfile(e.w, fd, 0, 10), RILL_ESTATE);
	env_finish(&e);
	cr_assert_eq(e.rc.len, 0);
	env_free(&e);
	close(fd);
	close(p[0]);
	close(p[1]);
	return 0;
}
