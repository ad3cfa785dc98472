/* SPDX-License-Identifier: MIT */
/* Peer behaviour: RST in the middle of a write, FIN in the middle of readexactly, refused and blackholed connects, half-close in both directions; each failure stays on its connection. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <inttypes.h>

#include "tests/helpers.h"

TestSuite(reliability_peers, .timeout = 60);

#define KIB 1024u

/* ---- RST in the middle of a write ----------------------------------- */

/* The peer takes a little of a long write, then resets. */
TASK_TEST(reliability_peers, reset_in_the_middle_of_a_write)
{
	static unsigned char chunk[64 * KIB];
	rill_server *echo;
	rill_reader *r;
	rill_writer *w;
	unsigned writes = 0;
	int port, ls = listen_loopback(&port, 4), peer, fds, err = 0;
	char got[4096];
	ssize_t n;

	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &echo), 0);
	fds = count_fds();
	cr_assert_eq(rill_open_connection("127.0.0.1", port, NULL, &r, &w), 0);
	peer = accept4(ls, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(peer, 0);
	memset(chunk, 'r', sizeof(chunk));
	while (err == 0 && writes < 4096) {
		err = rill_writer_write(w, chunk, sizeof(chunk));
		if (err == 0)
			err = rill_writer_drain(w);
		if (++writes == 8) {
			cr_assert_gt(recv(peer, got, sizeof(got), MSG_DONTWAIT), 0);
			peer_reset(&peer);
		}
	}
	printf("peers: RST after %u writes of 64 KiB: drain returned %s\n", writes,
	       rill_err_name(err));
	cr_assert(err == -ECONNRESET || err == -EPIPE, "drain: %s", rill_err_name(err));
	/* The connection says so everywhere, and only it. */
	n = rill_reader_read(r, got, sizeof(got));
	cr_assert(n == -ECONNRESET || n == -EPIPE, "read: %s", rill_err_name((int)n));
	cr_assert(rill_writer_is_closing(w));
	cr_assert_eq(rill_writer_write(w, "x", 1), 0, "writes after the loss are dropped");
	cr_assert_lt(rill_writer_drain(w), 0);
	rill_writer_close(w);
	cr_assert_eq(rill_writer_wait_closed(w), (int)n, "wait_closed: the loss's error");
	rill_writer_free(w);
	cr_assert_eq(settle_fds(fds), fds, "fds: %d, want %d", count_fds(), fds);
	close(ls);
	cr_assert_eq(echo_once(rill_server_port(echo)), 0);
	rill_server_free(echo);
	return 0;
}

/* ---- FIN in the middle of readexactly -------------------------------- */

#define EXACT 100

struct fin_case {
	size_t sent;		/* bytes before the FIN */
	ssize_t ret;
	rill_read_error info;
	char got[EXACT];
	bool replied;
};

/* readexactly(EXACT) against a peer that sends less and half-closes;
 * the writer still answers afterwards. */
static int fin_handler(rill_reader *r, rill_writer *w, void *arg)
{
	struct fin_case *fc = arg;

	fc->ret = rill_reader_readexactly(r, fc->got, EXACT);
	fc->info = *rill_reader_error_info(r);
	fc->replied = rill_writer_write(w, "late reply\n", 11) == 0 &&
		      rill_writer_drain(w) == 0;
	rill_writer_close(w);
	return 0;
}

TASK_TEST(reliability_peers, fin_in_the_middle_of_readexactly)
{
	static const size_t sizes[] = { 0, 1, EXACT / 2, EXACT - 1 };
	char msg[EXACT], reply[32];

	for (size_t i = 0; i < EXACT; i++)
		msg[i] = (char)('a' + i % 26);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(*sizes); k++) {
		struct fin_case fc = { .sent = sizes[k], .ret = 1 };
		struct sockaddr_in a;
		rill_server *s;
		ssize_t n = 0, got = 0;
		int fd;

		cr_assert_eq(rill_start_server(fin_handler, &fc, "127.0.0.1", 0, NULL, &s), 0);
		a = loopback4(rill_server_port(s));
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
		connect(fd, (struct sockaddr *)&a, sizeof(a));
		cr_assert_eq(rill_sleep_ms(5), 0);
		cr_assert_eq(send(fd, msg, fc.sent, MSG_NOSIGNAL), (ssize_t)fc.sent);
		cr_assert_eq(shutdown(fd, SHUT_WR), 0);
		/* The reply comes after the handler's readexactly failed. */
		for (int i = 0; i < 2000 && got < 11 && n >= 0; i++) {
			n = recv(fd, reply + got, sizeof(reply) - (size_t)got, 0);
			if (n > 0)
				got += n;
			else if (n == 0 || errno != EAGAIN)
				break;
			else
				n = rill_sleep_ms(1);
		}
		close(fd);
		rill_server_close(s);
		cr_assert_eq(rill_server_wait_closed(s), 0);
		rill_server_free(s);
		printf("peers: FIN after %zu of %d bytes: readexactly gave %s, partial %zu, "
		       "expected %zu\n", fc.sent, EXACT, rill_err_name((int)fc.ret),
		       fc.info.partial_len, fc.info.expected);
		cr_assert_eq(fc.ret, RILL_EINCOMPLETE);
		cr_assert_eq(fc.info.partial_len, fc.sent);
		cr_assert_eq(fc.info.expected, EXACT);
		cr_assert_arr_eq(fc.got, msg, fc.sent);
		cr_assert(fc.replied, "the writer failed after the peer's FIN");
		cr_assert_eq(got, 11, "no reply after the half-close");
		cr_assert_arr_eq(reply, "late reply\n", 11);
	}
	return 0;
}

/* ---- refused connects ---------------------------------------------- */

#define REFUSED 200

TASK_TEST(reliability_peers, closed_port_refuses_every_time_and_leaks_nothing)
{
	rill_server *echo;
	rill_reader *r;
	rill_writer *w;
	int port, ls = listen_loopback(&port, 1), fds, refused = 0, err = 0;

	cr_assert_geq(ls, 0);
	close(ls);	/* nobody listens on port now */
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &echo), 0);
	fds = count_fds();
	for (int i = 0; i < REFUSED; i++) {
		err = rill_open_connection("127.0.0.1", port, NULL, &r, &w);
		refused += err == -ECONNREFUSED;
		if (err == 0)
			rill_writer_free(w);
	}
	printf("peers: %d connects to a closed port: %d refused\n", REFUSED, refused);
	cr_assert_eq(refused, REFUSED, "last: %s", rill_err_name(err));
	cr_assert_eq(count_fds(), fds, "refused connects leaked fds");
	cr_assert_eq(echo_once(rill_server_port(echo)), 0);
	rill_server_free(echo);
	return 0;
}

/* ---- connect timeout to a blackholed address ------------------------
 *
 * In a forked child with a network namespace of its own (where unshare is
 * allowed): a listening socket with backlog 0 whose one queue slot is
 * taken drops every further SYN, so a connect to it hangs.
 */

#define DEAD_CONNECTS 16
#define DEAD_DEADLINE (200 * MS)

struct dead {
	int port, err;
	rill_time took;
};

static int dead_connect(void *arg)
{
	struct dead *d = arg;
	rill_time t0 = rill_now(), saved = rill_deadline_push(DEAD_DEADLINE);
	rill_reader *r;
	rill_writer *w;

	d->err = rill_open_connection("127.0.0.1", d->port, NULL, &r, &w);
	rill_deadline_pop(saved);
	d->took = rill_now() - t0;
	if (d->err == 0)
		rill_writer_free(w);
	return 0;
}

ISOLATED_TEST(reliability_peers, connect_to_a_blackholed_address_times_out)
{
	struct dead d[DEAD_CONNECTS];
	rill_task *t[DEAD_CONNECTS];
	rill_time worst = 0;
	struct blackhole bh;
	int fds;

	CHECK(blackhole_open(&bh) == 0, "blackhole");
	fds = count_fds();
	for (int i = 0; i < DEAD_CONNECTS; i++) {
		d[i] = (struct dead){ .port = blackhole_port(&bh), .err = 1 };
		CHECK(rill_spawn(rill_loop_current(), dead_connect, &d[i], &t[i]) == 0, "spawn");
	}
	for (int i = 0; i < DEAD_CONNECTS; i++) {
		CHECK(rill_task_join(t[i], NULL) == 0, "join");
		CHECK(d[i].err == -ETIMEDOUT, "connect %d: %s", i, rill_err_name(d[i].err));
		CHECK(d[i].took >= DEAD_DEADLINE - MS && d[i].took < DEAD_DEADLINE + 500 * MS,
		      "connect %d took %.1f ms", i, (double)d[i].took / 1e6);
		worst = d[i].took > worst ? d[i].took : worst;
	}
	CHECK(settle_fds(fds) == fds, "fds leaked: %d -> %d", fds, count_fds());
	printf("peers: %d connects to a blackholed address timed out (deadline %.0f ms, "
	       "slowest %.1f ms)\n", DEAD_CONNECTS, (double)DEAD_DEADLINE / 1e6,
	       (double)worst / 1e6);
	blackhole_close(&bh);
	return 0;
}

/* ---- half-close in both directions ---------------------------------- */

#define HALF_BYTES (1024 * KIB)

struct half {
	bool server_first;	/* who sends and half-closes first */
	uint64_t server_got, client_got;
	int server_err;
};

static unsigned char hpat(uint64_t i, int side)
{
	return (unsigned char)((i * 31 + (uint64_t)side * 17) >> 3);
}

/* Sends HALF_BYTES of side's pattern, then write_eof. */
static int send_then_eof(rill_writer *w, int side)
{
	static unsigned char buf[2][64 * KIB];
	int err = 0;

	for (uint64_t off = 0; off < HALF_BYTES && err == 0; off += sizeof(buf[side])) {
		for (size_t i = 0; i < sizeof(buf[side]); i++)
			buf[side][i] = hpat(off + i, side);
		if ((err = rill_writer_write(w, buf[side], sizeof(buf[side]))) == 0)
			err = rill_writer_drain(w);
	}
	return err < 0 ? err : rill_writer_write_eof(w);
}

/* Reads to EOF, checking the other side's pattern; the count, or < 0. */
static int64_t read_to_eof(rill_reader *r, int side)
{
	unsigned char buf[16 * KIB];
	uint64_t got = 0;
	ssize_t n;

	while ((n = rill_reader_read(r, buf, sizeof(buf))) > 0)
		for (ssize_t i = 0; i < n; i++, got++)
			if (buf[i] != hpat(got, side))
				return -EBADMSG;
	return n < 0 ? n : (int64_t)got;
}

static int half_handler(rill_reader *r, rill_writer *w, void *arg)
{
	struct half *h = arg;
	int64_t got = 0;
	int err = 0;

	if (h->server_first) {
		err = send_then_eof(w, 1);
		if (err == 0)
			got = read_to_eof(r, 0);
	} else {
		got = read_to_eof(r, 0);
		if (got >= 0)
			err = send_then_eof(w, 1);
	}
	h->server_got = got > 0 ? (uint64_t)got : 0;
	h->server_err = err < 0 ? err : got < 0 ? (int)got : 0;
	rill_writer_close(w);
	return 0;
}

static int half_body(void *arg)
{
	struct half *h = arg;
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	int64_t got = 0;

	cr_assert_eq(rill_start_server(half_handler, h, "127.0.0.1", 0, NULL, &s), 0);
	cr_assert_eq(rill_open_connection("127.0.0.1", rill_server_port(s), NULL, &r, &w), 0);
	if (h->server_first) {
		got = read_to_eof(r, 1);
		/* Our read side is at EOF; the write side still works. */
		cr_assert_eq(send_then_eof(w, 0), 0);
	} else {
		cr_assert_eq(send_then_eof(w, 0), 0);
		got = read_to_eof(r, 1);
	}
	cr_assert_geq(got, 0, "client read: %s", rill_err_name((int)got));
	h->client_got = (uint64_t)got;
	rill_writer_close(w);
	cr_assert_eq(rill_writer_wait_closed(w), 0);
	rill_writer_free(w);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	return 0;
}

static void half_case(bool server_first)
{
	struct half h = { .server_first = server_first };

	run_task(half_body, &h);
	printf("peers: half-close, %s first: server read %" PRIu64 " bytes after its own "
	       "EOF went out, client read %" PRIu64 "\n", server_first ? "server" : "client",
	       h.server_got, h.client_got);
	cr_assert_eq(h.server_err, 0, "server: %s", rill_err_name(h.server_err));
	cr_assert_eq(h.server_got, HALF_BYTES);
	cr_assert_eq(h.client_got, HALF_BYTES);
}

Test(reliability_peers, half_close_client_first_server_still_sends)
{
	half_case(false);
}

Test(reliability_peers, half_close_server_first_client_still_sends)
{
	half_case(true);
}
