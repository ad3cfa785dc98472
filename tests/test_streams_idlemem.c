/* SPDX-License-Identifier: MIT */
/* What an idle connection does not keep (streams/spare.c and friends): the
 * writer's iovecs beyond its few, its sent copy chunk, its queue ring, the
 * reader's empty buffer and long socket names. Each test checks that the
 * bytes and names stay right where that memory is shared or taken later. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <sys/un.h>

#include "tests/helpers.h"

TestSuite(streams_idlemem, .timeout = 30);

/* Zero-copy pieces are one chunk each: a queue of many of them needs sends
 * gathering more iovecs than the writer holds (and more than one sendmsg
 * takes), with copied writes, which share chunks, in between. */
TASK_TEST(streams_idlemem, many_chunks_gathered_in_order)
{
	enum { PIECES = 150 };
	static char want[PIECES * 8], got[sizeof(want)];
	static const char digits[] = "0123456789";
	struct conn c;
	size_t len = 0;

	open_unix(&c, 0);
	for (int i = 0; i < PIECES; i++) {
		char rec[8];
		int k = snprintf(rec, sizeof(rec), "<%d>", i);

		cr_assert_eq(rill_writer_write_ref(c.w, &digits[i % 10], 1, NULL, NULL), 0);
		want[len++] = digits[i % 10];
		if (i % 7 == 0) {
			cr_assert_eq(rill_writer_write(c.w, rec, (size_t)k), 0);
			memcpy(want + len, rec, (size_t)k);
			len += (size_t)k;
		}
	}
	cr_assert_eq(rill_writer_drain(c.w), 0);
	cr_assert_eq(peer_recv_all(c.peer, got, len), len);
	cr_assert_arr_eq(got, want, len, "bytes differ or out of order");
	/* And again on the same writer: its queue grew once and stays. */
	for (int i = 0; i < PIECES; i++)
		cr_assert_eq(rill_writer_write_ref(c.w, &digits[i % 10], 1, NULL, NULL), 0);
	cr_assert_eq(rill_writer_drain(c.w), 0);
	cr_assert_eq(peer_recv_all(c.peer, got, PIECES), PIECES);
	for (int i = 0; i < PIECES; i++)
		cr_assert_eq(got[i], digits[i % 10], "byte %d", i);
	conn_done(&c);
	return 0;
}

struct sender {
	int fd[2];
	int rounds;
};

/* Sends "a<i>;" to the first peer and "b<i>;" to the second, each after
 * the readers had time to wait with nothing buffered. */
static int send_rounds(void *arg)
{
	struct sender *s = arg;
	char m[16];

	for (int i = 0; i < s->rounds; i++) {
		int k;

		if (rill_sleep_ms(1) < 0)
			return -1;
		k = snprintf(m, sizeof(m), "a%d;", i);
		if (send(s->fd[0], m, (size_t)k, MSG_NOSIGNAL) != k)
			return -1;
		k = snprintf(m, sizeof(m), "b%d;", i);
		if (send(s->fd[1], m, (size_t)k, MSG_NOSIGNAL) != k)
			return -1;
	}
	return 0;
}

/* Two readers on one thread, each waiting with an empty buffer every
 * round: the buffer one gives back while it waits is the one the other
 * takes when its bytes come, and neither sees the other's bytes. */
TASK_TEST(streams_idlemem, readers_waiting_empty_keep_their_bytes)
{
	struct conn a, b;
	struct sender s = { .rounds = 40 };
	rill_task *t;
	int res = -1;

	open_unix(&a, 0);
	open_unix(&b, 0);
	s.fd[0] = a.peer;
	s.fd[1] = b.peer;
	cr_assert_eq(rill_spawn(rill_loop_current(), send_rounds, &s, &t), 0);
	for (int i = 0; i < s.rounds; i++) {
		char want[16];
		rill_bytes line;
		int k;

		k = snprintf(want, sizeof(want), "a%d;", i);
		cr_assert_eq(rill_reader_readuntil(a.r, ";", 1, &line), k, "round %d", i);
		cr_assert_arr_eq(line.data, want, (size_t)k);
		k = snprintf(want, sizeof(want), "b%d;", i);
		cr_assert_eq(rill_reader_readuntil(b.r, ";", 1, &line), k, "round %d", i);
		cr_assert_arr_eq(line.data, want, (size_t)k);
	}
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, 0);
	conn_done(&a);
	conn_done(&b);
	return 0;
}

static socklen_t unix_addr(struct sockaddr_un *sun, const char *tag)
{
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	snprintf(sun->sun_path, sizeof(sun->sun_path), "/tmp/rill-idlemem-%d-%s.sock",
		 (int)getpid(), tag);
	unlink(sun->sun_path);
	return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(sun->sun_path) + 1);
}

/* Names longer than an IPv6 address (Unix paths) are kept as the socket
 * gave them, on both ends, and stay after the peer has gone. */
TASK_TEST(streams_idlemem, long_socket_names_kept)
{
	struct sockaddr_un srv, cli;
	socklen_t slen = unix_addr(&srv, "srv"), clen = unix_addr(&cli, "cli"), n;
	rill_open_options o = { .size = sizeof(rill_open_options) };
	rill_reader *r;
	rill_writer *w;
	const struct sockaddr_un *got;
	size_t len;
	int ls = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0), peer;

	cr_assert_geq(ls, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(ls, (struct sockaddr *)&srv, slen), 0);
	cr_assert_eq(listen(ls, 1), 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&cli, clen), 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&srv, slen), 0);
	peer = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(peer, 0);
	o.sock = fd;
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &r, &w), 0);
	close(peer);	/* gone: the names were asked when it was made */
	close(ls);
	for (int i = 0; i < 2; i++) {
		const struct sockaddr_un *want = i ? &cli : &srv;

		n = i ? clen : slen;
		got = rill_writer_get_extra_info(w, i ? "sockname" : "peername", &len);
		cr_assert_not_null(got);
		cr_assert_gt(n, 28, "not longer than an IPv6 address");
		cr_assert_eq(len, n);
		cr_assert_eq(got->sun_family, AF_UNIX);
		cr_assert_str_eq(got->sun_path, want->sun_path);
	}
	(void)writer_done(w);	/* the peer is gone: an error is fine here */
	unlink(srv.sun_path);
	unlink(cli.sun_path);
	return 0;
}
