/* SPDX-License-Identifier: MIT */
/* open_connection: loopback v4/v6/by name, refusal, bad arguments, sock= adoption, local_addr, connect_timeout, happy eyeballs, cancellation. */
#include <criterion/criterion.h>
#include <netinet/tcp.h>

#include "tests/helpers.h"
#include "streams/net.h"

/* ---- helpers ------------------------------------------------------- */

/* A bound, not listening socket: connecting to its port is refused, and
 * nobody else can take the port meanwhile. */
static int refusing_port(int *fdp)
{
	struct sockaddr_in a = loopback4(0);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	*fdp = fd;
	return sock_port(fd);
}

static rill_server *echo_server(const char *host)
{
	rill_server *s = NULL;
	int err = rill_start_server(echo_lines, NULL, host, 0, NULL, &s);

	cr_assert_eq(err, 0, "start_server(%s): %s %s", host, rill_strerror(err),
		     rill_error_detail());
	cr_assert_gt(rill_server_port(s), 0);
	return s;
}

/* ---- plain connections --------------------------------------------- */

TASK_TEST(streams_connect, ipv4_loopback, .timeout = 30)
{
	rill_server *s = echo_server("127.0.0.1");
	const struct sockaddr_in *peer, *local;
	rill_reader *r;
	rill_writer *w;
	int one = 0, fd;
	socklen_t len = sizeof(one);

	cr_assert_eq(rill_open_connection("127.0.0.1", rill_server_port(s), NULL, &r, &w), 0);
	cr_assert_eq(echo_roundtrip(r, w, "hello v4\n"), 0);
	peer = rill_writer_get_extra_info(w, "peername", NULL);
	local = rill_writer_get_extra_info(w, "sockname", NULL);
	cr_assert(peer && local);
	cr_assert_eq(peer->sin_family, AF_INET);
	cr_assert_eq(ntohs(peer->sin_port), rill_server_port(s));
	cr_assert_eq(ntohl(local->sin_addr.s_addr), INADDR_LOOPBACK);
	fd = *(const int *)rill_writer_get_extra_info(w, "socket", NULL);
	cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
	cr_assert_neq(one, 0, "TCP_NODELAY not set on a connected socket");
	close_and_free(w);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	return 0;
}

static int ticker(void *arg)
{
	int *ticks = arg;

	while (rill_sleep_ms(1) == 0)
		(*ticks)++;
	return 0;
}

TASK_TEST(streams_connect, localhost_by_name, .timeout = 30)
{
	rill_server *s = echo_server("127.0.0.1");
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1, .family = AF_INET };
	rill_task *tick;
	int ticks = 0;
	rill_reader *r;
	rill_writer *w;
	int err;

	cr_assert_eq(rill_spawn(rill_loop_current(), ticker, &ticks, &tick), 0);
	err = rill_open_connection("localhost", rill_server_port(s), &o, &r, &w);
	cr_assert_eq(err, 0, "localhost: %s %s", rill_strerror(err), rill_error_detail());
	cr_assert_eq(echo_roundtrip(r, w, "hello by name\n"), 0);
	close_and_free(w);
	rill_task_cancel(tick);
	cr_assert_eq(rill_task_join(tick, NULL), 0);
	rill_server_free(s);
	return 0;
}

TASK_TEST(streams_connect, unknown_name_fails_with_detail, .timeout = 30)
{
	rill_reader *r;
	rill_writer *w;
	int err;

	err = rill_open_connection("no-such-host.invalid", 80, NULL, &r, &w);
	cr_assert_lt(err, 0);
	cr_assert_neq(rill_error_detail()[0], '\0', "no detail for a failed lookup");
	return 0;
}

static int connect_v6(void *arg)
{
	rill_server *s = echo_server("::1");
	const struct sockaddr_in6 *peer;
	rill_reader *r;
	rill_writer *w;

	(void)arg;
	cr_assert_eq(rill_open_connection("::1", rill_server_port(s), NULL, &r, &w), 0);
	cr_assert_eq(echo_roundtrip(r, w, "hello v6\n"), 0);
	peer = rill_writer_get_extra_info(w, "peername", NULL);
	cr_assert_eq(peer->sin6_family, AF_INET6);
	cr_assert(IN6_IS_ADDR_LOOPBACK(&peer->sin6_addr));
	close_and_free(w);
	rill_server_free(s);
	return 0;
}

Test(streams_connect, ipv6_loopback, .timeout = 30)
{
	run_task_with_ipv6(connect_v6, NULL);
}

TASK_TEST(streams_connect, closed_port_is_refused, .timeout = 30)
{
	rill_reader *r = NULL;
	rill_writer *w = NULL;
	int fd, port = refusing_port(&fd);

	cr_assert_eq(rill_open_connection("127.0.0.1", port, NULL, &r, &w), -ECONNREFUSED);
	cr_assert_null(w);
	close(fd);
	return 0;
}

static int bad_args(void *arg)
{
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;

	(void)arg;
	cr_assert_eq(rill_open_connection(NULL, 80, NULL, &r, &w), -EINVAL);
	cr_assert_eq(rill_open_connection("", 80, NULL, &r, &w), -EINVAL);
	cr_assert_eq(rill_open_connection("127.0.0.1", 65536, NULL, &r, &w), -EINVAL);
	cr_assert_eq(rill_open_connection("127.0.0.1", -1, NULL, &r, &w), -EINVAL);
	cr_assert_eq(rill_open_connection("127.0.0.1", 80, NULL, NULL, &w), -EINVAL);
	cr_assert_eq(rill_open_connection("127.0.0.1", 80, NULL, &r, NULL), -EINVAL);
	o.server_hostname = "example.com";
	cr_assert_eq(rill_open_connection("127.0.0.1", 80, &o, &r, &w), -EINVAL);
	cr_assert_neq(rill_error_detail()[0], '\0');
	o = (rill_open_options){ .size = sizeof(rill_open_options), .sock = -1, .ssl = true };
	cr_assert_eq(rill_open_connection("127.0.0.1", 80, &o, &r, &w),
		     RILL_ETLS_NOT_AVAILABLE);
	o = (rill_open_options){ .size = sizeof(rill_open_options), .sock = socket(AF_INET,
		SOCK_STREAM | SOCK_CLOEXEC, 0) };
	cr_assert_eq(rill_open_connection("127.0.0.1", 80, &o, &r, &w), -EINVAL,
		     "host and sock together");
	close(o.sock);
	return 0;
}

Test(streams_connect, invalid_arguments, .timeout = 30)
{
	rill_reader *r;
	rill_writer *w;

	run_task(bad_args, NULL);
	cr_assert_eq(rill_open_connection("127.0.0.1", 80, NULL, &r, &w), -EPERM,
		     "outside a task");
}

/* ---- sock= --------------------------------------------------------- */

TASK_TEST(streams_connect, adopt_connected_tcp_socket, .timeout = 30)
{
	rill_server *s = echo_server("127.0.0.1");
	struct sockaddr_in a = loopback4(rill_server_port(s));
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	o.sock = fd;
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &r, &w), 0);
	cr_assert_eq(*(const int *)rill_writer_get_extra_info(w, "socket", NULL), fd);
	cr_assert_eq(echo_roundtrip(r, w, "hello adopted\n"), 0);
	cr_assert_eq(echo_roundtrip(r, w, "hello again\n"), 0);
	rill_writer_close(w);
	cr_assert_eq(rill_writer_wait_closed(w), 0);
	cr_assert_eq(fcntl(fd, F_GETFD), -1, "rill left the adopted fd open");
	cr_assert_eq(errno, EBADF);
	rill_writer_free(w);
	rill_server_free(s);
	return 0;
}

/* Reads what the peer end of a socketpair got, waiting up to 2 s. */
static ssize_t raw_recv(int fd, char *buf, size_t n)
{
	for (int i = 0; i < 2000; i++) {
		ssize_t got = recv(fd, buf, n, MSG_DONTWAIT);

		if (got >= 0 || errno != EAGAIN)
			return got;
		rill_sleep_ms(1);
	}
	return -1;
}

static int adopt_pair(void *arg)
{
	int *type_flags = arg;
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;
	char buf[64];
	rill_bytes line;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | *type_flags, 0, sv), 0);
	o.sock = sv[0];
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &r, &w), 0);
	/* peer -> rill */
	cr_assert_eq(send(sv[1], "from peer\n", 10, 0), 10);
	cr_assert_eq(rill_reader_readline(r, &line), 10);
	cr_assert_arr_eq(line.data, "from peer\n", 10);
	/* rill -> peer */
	cr_assert_eq(rill_writer_write(w, "from rill\n", 10), 0);
	cr_assert_eq(rill_writer_drain(w), 0);
	cr_assert_eq(raw_recv(sv[1], buf, sizeof(buf)), 10);
	cr_assert_arr_eq(buf, "from rill\n", 10);
	/* peer half-closes: EOF, and the writer still works */
	cr_assert_eq(shutdown(sv[1], SHUT_WR), 0);
	cr_assert_eq(rill_reader_readline(r, &line), 0);
	cr_assert(rill_reader_at_eof(r));
	cr_assert_eq(rill_writer_write(w, "bye\n", 4), 0);
	rill_writer_close(w);
	cr_assert_eq(rill_writer_wait_closed(w), 0);
	cr_assert_eq(raw_recv(sv[1], buf, sizeof(buf)), 4, "queued data lost on close");
	cr_assert_eq(raw_recv(sv[1], buf, sizeof(buf)), 0, "no EOF after close");
	cr_assert_eq(fcntl(sv[0], F_GETFD), -1, "rill left the adopted fd open");
	cr_assert_eq(errno, EBADF);
	rill_writer_free(w);
	close(sv[1]);
	return 0;
}

Test(streams_connect, adopt_socketpair_end, .timeout = 30)
{
	int flags = 0;

	run_task(adopt_pair, &flags);
}

Test(streams_connect, adopt_nonblocking_socketpair_end, .timeout = 30)
{
	int flags = SOCK_NONBLOCK;

	run_task(adopt_pair, &flags);
}

TASK_TEST(streams_connect, adopt_rejects_datagram_socket, .timeout = 30)
{
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	o.sock = fd;
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &r, &w), -EINVAL, "a datagram socket");
	close(fd);
	return 0;
}

/* ---- local_addr ---------------------------------------------------- */

/* Tells the client the port it connected from, as the server sees it. */
static int say_peer_port(rill_reader *r, rill_writer *w, void *arg)
{
	const struct sockaddr_in *peer = rill_writer_get_extra_info(w, "peername", NULL);
	char line[32];
	rill_bytes b;

	(void)arg;
	snprintf(line, sizeof(line), "%d\n", peer ? ntohs(peer->sin_port) : -1);
	rill_writer_write(w, line, strlen(line));
	rill_reader_read_all(r, &b);
	rill_writer_close(w);
	return 0;
}

TASK_TEST(streams_connect, local_addr_is_bound, .timeout = 30)
{
	rill_server *s;
	struct sockaddr_in local = loopback4(0);
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1,
		.local_addr = (struct sockaddr *)&local,
				.local_addrlen = sizeof(local) };
	const struct sockaddr_in *name;
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	char want[32];
	int hold, port;

	cr_assert_eq(rill_start_server(say_peer_port, NULL, "127.0.0.1", 0, NULL, &s), 0);
	/* A free port: bound by hold, released just before use. */
	port = refusing_port(&hold);
	close(hold);
	local.sin_port = htons((uint16_t)port);
	cr_assert_eq(rill_open_connection("127.0.0.1", rill_server_port(s), &o, &r, &w), 0);
	name = rill_writer_get_extra_info(w, "sockname", NULL);
	cr_assert_eq(ntohs(name->sin_port), port);
	snprintf(want, sizeof(want), "%d\n", port);
	cr_assert_eq(rill_reader_readline(r, &line), (ssize_t)strlen(want));
	cr_assert_arr_eq(line.data, want, strlen(want), "server saw another port");
	close_and_free(w);

	/* The local address is taken: bind fails, and that is the error. */
	port = refusing_port(&hold);
	local.sin_port = htons((uint16_t)port);
	cr_assert_eq(rill_open_connection("127.0.0.1", rill_server_port(s), &o, &r, &w),
		     -EADDRINUSE);
	close(hold);
	rill_server_free(s);
	return 0;
}

/* ---- connect_timeout ----------------------------------------------- */

ISOLATED_TEST(streams_connect, connect_timeout_on_dead_address, .timeout = 30)
{
	struct blackhole bh;
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1,
		.connect_timeout = 300 * MS };
	rill_reader *r;
	rill_writer *w;
	rill_time t0;
	int err, before;

	CHECK((err = blackhole_open(&bh)) == 0, "blackhole: %s", strerror(-err));
	before = count_fds();
	t0 = rill_now();
	err = rill_open_connection("127.0.0.1", ntohs(bh.addr.sin_port), &o, &r, &w);
	t0 = rill_now() - t0;
	CHECK(err == -ETIMEDOUT, "got %s", rill_err_name(err));
	CHECK(t0 >= 250 * MS && t0 < 2000 * MS, "took %llu ms", (unsigned long long)(t0 / MS));
	CHECK(count_fds() == before, "fd leaked: %d -> %d", before, count_fds());
	/* The task's own deadline is back to none. */
	CHECK(rill_sleep_ms(1) == 0, "deadline still in force");
	blackhole_close(&bh);
	return 0;
}

/* ---- happy eyeballs ------------------------------------------------ */

ISOLATED_TEST(streams_connect, happy_eyeballs_second_address_wins, .timeout = 30)
{
	struct blackhole bh;
	rill_server *s;
	struct sockaddr_in live;
	const struct sockaddr *addrs[2];
	socklen_t lens[2] = { sizeof(struct sockaddr_in), sizeof(struct sockaddr_in) };
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1,
		.happy_eyeballs_delay = 200 * MS };
	rill_reader *r;
	rill_writer *w;
	rill_time t0;
	int err, fd, before;

	CHECK((err = blackhole_open(&bh)) == 0, "blackhole: %s", strerror(-err));
	CHECK(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &s) == 0, "server");
	live = loopback4(rill_server_port(s));
	addrs[0] = (struct sockaddr *)&bh.addr;
	addrs[1] = (struct sockaddr *)&live;
	before = count_fds();
	t0 = rill_now();
	fd = rill__connect_addrs(addrs, lens, 2, &o);
	t0 = rill_now() - t0;
	CHECK(fd >= 0, "race: %s %s", rill_err_name(fd), rill_error_detail());
	CHECK(t0 >= 150 * MS && t0 < 1500 * MS, "took %llu ms", (unsigned long long)(t0 / MS));
	CHECK(sock_port(fd) > 0, "not a socket");
	{
		struct sockaddr_in peer;
		socklen_t len = sizeof(peer);

		CHECK(getpeername(fd, (struct sockaddr *)&peer, &len) == 0, "not connected");
		CHECK(peer.sin_port == live.sin_port, "connected to the dead address");
	}
	o = (rill_open_options){ .size = sizeof(rill_open_options), .sock = fd };
	CHECK(rill_open_connection(NULL, 0, &o, &r, &w) == 0, "adopt");
	CHECK(echo_roundtrip(r, w, "hello eyeballs\n") == 0, "echo");
	rill_writer_close(w);
	CHECK(rill_writer_wait_closed(w) == 0, "wait_closed");
	rill_writer_free(w);
	/* The dead attempt's socket is gone too, and the server's side. */
	CHECK(settle_fds(before) == before, "fd leaked: %d -> %d", before, count_fds());

	/* Without the delay the dead address blocks: sequential and stuck
	 * until connect_timeout. */
	o = (rill_open_options){ .size = sizeof(rill_open_options), .sock = -1,
		.connect_timeout = 300 * MS };
	t0 = rill_now();
	fd = rill__connect_addrs(addrs, lens, 2, &o);
	CHECK(fd == -ETIMEDOUT, "sequential: %s", rill_err_name(fd));
	CHECK(count_fds() == before, "fd leaked");

	rill_server_free(s);
	blackhole_close(&bh);
	return 0;
}

/* Every address dead and a connect_timeout: the race is given up at the
 * timeout, its attempts cancelled and joined. */
ISOLATED_TEST(streams_connect, happy_eyeballs_all_dead_times_out, .timeout = 30)
{
	struct blackhole bh1, bh2;
	const struct sockaddr *addrs[3];
	socklen_t lens[3] = { sizeof(struct sockaddr_in), sizeof(struct sockaddr_in),
			      sizeof(struct sockaddr_in) };
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1,
		.happy_eyeballs_delay = 50 * MS,
				.connect_timeout = 300 * MS };
	rill_time t0;
	int err, before;

	CHECK(blackhole_open(&bh1) == 0 && blackhole_open(&bh2) == 0, "blackholes");
	addrs[0] = (struct sockaddr *)&bh1.addr;
	addrs[1] = (struct sockaddr *)&bh2.addr;
	addrs[2] = (struct sockaddr *)&bh1.addr;
	before = count_fds();
	t0 = rill_now();
	err = rill__connect_addrs(addrs, lens, 3, &o);
	t0 = rill_now() - t0;
	CHECK(err == -ETIMEDOUT, "got %s", rill_err_name(err));
	CHECK(t0 >= 250 * MS && t0 < 2000 * MS, "took %llu ms", (unsigned long long)(t0 / MS));
	CHECK(count_fds() == before, "fd leaked: %d -> %d", before, count_fds());
	CHECK(rill_sleep_ms(1) == 0, "deadline still in force");
	/* A delay longer than the timeout: timed out before the second
	 * attempt even starts. */
	o.happy_eyeballs_delay = 1000 * MS;
	err = rill__connect_addrs(addrs, lens, 3, &o);
	CHECK(err == -ETIMEDOUT, "got %s", rill_err_name(err));
	CHECK(count_fds() == before, "fd leaked: %d -> %d", before, count_fds());
	blackhole_close(&bh1);
	blackhole_close(&bh2);
	return 0;
}

TASK_TEST(streams_connect, every_address_refused_gives_emulti, .timeout = 30)
{
	int f1, f2, p1 = refusing_port(&f1), p2 = refusing_port(&f2);
	struct sockaddr_in a1 = loopback4(p1), a2 = loopback4(p2);
	const struct sockaddr *addrs[2] = { (struct sockaddr *)&a1, (struct sockaddr *)&a2 };
	socklen_t lens[2] = { sizeof(a1), sizeof(a2) };
	rill_open_options seq = RILL_OPEN_OPTIONS_INIT, race = { .happy_eyeballs_delay = 500 * MS };
	const rill_open_options *opts[2] = { &seq, &race };
	char want1[64], want2[64];

	snprintf(want1, sizeof(want1), "127.0.0.1:%d", p1);
	snprintf(want2, sizeof(want2), "127.0.0.1:%d", p2);
	for (int i = 0; i < 2; i++) {
		const char *detail;
		rill_time t0 = rill_now();
		int err = rill__connect_addrs(addrs, lens, 2, opts[i]);

		cr_assert_eq(err, RILL_EMULTI, "%s: got %s", i ? "race" : "sequential",
			     rill_err_name(err));
		detail = rill_error_detail();
		cr_assert(strstr(detail, want1) && strstr(detail, want2),
			  "detail lacks an address: %s", detail);
		cr_assert(strstr(detail, rill_strerror(-ECONNREFUSED)), "detail: %s", detail);
		/* A refusal starts the next attempt at once, not after the delay. */
		cr_assert_lt(rill_now() - t0, 400 * MS);
	}
	/* One address, tried once: its own error. */
	cr_assert_eq(rill__connect_addrs(addrs, lens, 1, &race), -ECONNREFUSED);
	/* The same address twice fails the same way twice: one error. */
	addrs[1] = addrs[0];
	cr_assert_eq(rill__connect_addrs(addrs, lens, 2, &seq), -ECONNREFUSED);
	close(f1);
	close(f2);
	return 0;
}

/* ---- cancellation storm -------------------------------------------- */

#define STORM 48

struct storm {
	struct blackhole *bh;
	int kind;
	int result;
};

static int storm_connect(void *arg)
{
	struct storm *st = arg;
	const struct sockaddr *addrs[2] = { (struct sockaddr *)&st->bh[0].addr,
					    (struct sockaddr *)&st->bh[1].addr };
	socklen_t lens[2] = { sizeof(struct sockaddr_in), sizeof(struct sockaddr_in) };
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1,
		.happy_eyeballs_delay = 10 * MS };
	rill_reader *r;
	rill_writer *w;

	switch (st->kind) {
	case 0:
		st->result = rill_open_connection("127.0.0.1", ntohs(st->bh[0].addr.sin_port),
						  NULL, &r, &w);
		break;
	case 1:
		st->result = rill__connect_addrs(addrs, lens, 2, &o);
		break;
	default:
		o.connect_timeout = 60000 * MS;
		st->result = rill_open_connection("localhost", ntohs(st->bh[1].addr.sin_port),
						  &o, &r, &w);
		break;
	}
	return 0;
}

ISOLATED_TEST(streams_connect, cancellation_storm_leaks_nothing, .timeout = 30)
{
	struct blackhole bh[2];
	struct storm st[STORM];
	rill_task *t[STORM];
	int before;

	CHECK(blackhole_open(&bh[0]) == 0 && blackhole_open(&bh[1]) == 0, "blackholes");
	before = count_fds();
	for (int round = 0; round < 3; round++) {
		for (int i = 0; i < STORM; i++) {
			st[i] = (struct storm){ .bh = bh, .kind = i % 3, .result = 1 };
			CHECK(rill_spawn(rill_loop_current(), storm_connect, &st[i], &t[i]) == 0,
			      "spawn");
		}
		/* Round 0: cancelled before they run; then mid-connect. */
		if (round)
			rill_sleep_ms(round * 30);
		for (int i = 0; i < STORM; i++)
			rill_task_cancel(t[i]);
		for (int i = 0; i < STORM; i++) {
			int res = 0;

			CHECK(rill_task_join(t[i], &res) == 0, "join");
			if (round == 0)
				CHECK(res == -ECANCELED, "task %d ran", i);
			else
				CHECK(st[i].result == -ECANCELED, "round %d task %d (kind %d): %s",
				      round, i, i % 3, rill_err_name(st[i].result));
		}
		CHECK(count_fds() == before, "round %d: fd leaked: %d -> %d", round,
		      before, count_fds());
	}
	blackhole_close(&bh[0]);
	blackhole_close(&bh[1]);
	return 0;
}

/* A cancellation that lands just as the resolver's answer arrives must
 * still win: the connect must not go on (and hang on the dead address). */
static int resolve_race_connect(void *arg)
{
	struct storm *st = arg;
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1,
		.connect_timeout = 2000 * MS };
	rill_reader *r;
	rill_writer *w;

	st->result = rill_open_connection("localhost", ntohs(st->bh->addr.sin_port), &o, &r, &w);
	return 0;
}

ISOLATED_TEST(streams_connect, cancel_racing_name_resolution, .timeout = 30)
{
	struct blackhole bh;
	struct storm st[8];
	rill_task *t[8];
	int before;

	CHECK(blackhole_open(&bh) == 0, "blackhole");
	before = count_fds();
	for (int round = 0; round < 400; round++) {
		for (int i = 0; i < 8; i++) {
			st[i] = (struct storm){ .bh = &bh, .result = 1 };
			CHECK(rill_spawn(rill_loop_current(), resolve_race_connect, &st[i],
					 &t[i]) == 0, "spawn");
		}
		rill_sleep_ns((rill_time)(round % 20) * 75000);
		for (int i = 0; i < 8; i++)
			rill_task_cancel(t[i]);
		for (int i = 0; i < 8; i++) {
			int res = 0;

			CHECK(rill_task_join(t[i], &res) == 0, "join");
			CHECK(res == -ECANCELED || st[i].result == -ECANCELED,
			      "round %d task %d: %s", round, i, rill_err_name(st[i].result));
		}
	}
	CHECK(settle_fds(before) == before, "fd leaked: %d -> %d", before, count_fds());
	blackhole_close(&bh);
	return 0;
}

/* ---- asyncio conformance -------------------------------------------- */

/* asyncio's transports set TCP_NODELAY on every TCP socket they take,
 * adopted ones included. */
TASK_TEST(streams_connect, adopted_tcp_socket_gets_nodelay, .timeout = 30)
{
	rill_server *s = echo_server("127.0.0.1");
	struct sockaddr_in a = loopback4(rill_server_port(s));
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = -1;
	socklen_t len = sizeof(one);

	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
	cr_assert_eq(one, 0);
	o.sock = fd;
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &r, &w), 0);
	cr_assert_eq(getsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, &len), 0);
	cr_assert_neq(one, 0, "TCP_NODELAY not set on an adopted socket");
	cr_assert_eq(echo_roundtrip(r, w, "nodelay\n"), 0);
	close_and_free(w);
	rill_server_free(s);
	return 0;
}

/* asyncio's ValueErrors: sock with host or port; the TLS timeouts without
 * TLS. */
TASK_TEST(streams_connect, sock_with_port_and_tls_timeouts_without_tls, .timeout = 30)
{
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	o.sock = sv[0];
	cr_assert_eq(rill_open_connection(NULL, 8080, &o, &r, &w), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "sock"), "%s", rill_error_detail());
	cr_assert_eq(rill_open_unix_connection("/tmp/x.sock", &o, &r, &w), -EINVAL);
	cr_assert_eq(fcntl(sv[0], F_GETFD) >= 0, 1, "a refused sock was closed");
	close(sv[0]);
	close(sv[1]);
	o = (rill_open_options)RILL_OPEN_OPTIONS_INIT;
	o.ssl_handshake_timeout = 1000 * MS;
	cr_assert_eq(rill_open_connection("127.0.0.1", 80, &o, &r, &w), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "only meaningful with ssl"), "%s",
		  rill_error_detail());
	o.ssl_handshake_timeout = 0;
	o.ssl_shutdown_timeout = 1000 * MS;
	cr_assert_eq(rill_open_connection("127.0.0.1", 80, &o, &r, &w), -EINVAL);
	cr_assert_eq(rill_open_unix_connection("/tmp/x.sock", &o, &r, &w), -EINVAL);
	return 0;
}

/* staggered_race: an attempt that fails starts the next one at once. The
 * first address hangs, the second refuses, the third answers: connected
 * after about one delay (the second's), not two. */
ISOLATED_TEST(streams_connect, happy_eyeballs_failure_starts_the_next_at_once, .timeout = 30)
{
	struct blackhole bh;
	rill_server *s;
	struct sockaddr_in live, refused;
	const struct sockaddr *addrs[3];
	socklen_t lens[3] = { sizeof(struct sockaddr_in), sizeof(struct sockaddr_in),
			      sizeof(struct sockaddr_in) };
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1,
		.happy_eyeballs_delay = 400 * MS };
	const rill_connect_attempt *at;
	size_t n;
	rill_time t0;
	int err, fd, rfd;

	CHECK((err = blackhole_open(&bh)) == 0, "blackhole: %s", strerror(-err));
	CHECK(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &s) == 0, "server");
	live = loopback4(rill_server_port(s));
	refused = loopback4(refusing_port(&rfd));
	addrs[0] = (struct sockaddr *)&bh.addr;
	addrs[1] = (struct sockaddr *)&refused;
	addrs[2] = (struct sockaddr *)&live;
	t0 = rill_now();
	fd = rill__connect_addrs(addrs, lens, 3, &o);
	t0 = rill_now() - t0;
	CHECK(fd >= 0, "race: %s %s", rill_err_name(fd), rill_error_detail());
	CHECK(t0 >= 350 * MS && t0 < 700 * MS, "took %llu ms, want about 400",
	      (unsigned long long)(t0 / MS));
	/* The attempts, as records: hung (cancelled), refused, connected. */
	at = rill_open_connection_attempts(&n);
	CHECK(n == 3, "%zu attempts", n);
	CHECK(at[0].error == -ECANCELED, "first: %s", rill_err_name(at[0].error));
	CHECK(at[1].error == -ECONNREFUSED, "second: %s", rill_err_name(at[1].error));
	CHECK(at[2].error == 0, "third: %s", rill_err_name(at[2].error));
	CHECK(at[1].addrlen == sizeof(refused) &&
	      !memcmp(&at[1].addr, &refused, sizeof(refused)), "second's address");
	CHECK(((const struct sockaddr_in *)&at[2].addr)->sin_port == live.sin_port,
	      "third's address");
	close(fd);
	close(rfd);
	rill_server_free(s);
	blackhole_close(&bh);
	return 0;
}

/* _interleave_addrinfos(first_address_family_count=N): N of the first
 * family, then alternating. Every address refuses; the detail and the
 * attempts say the order. */
ISOLATED_TEST(streams_connect, interleave_n_puts_n_of_the_first_family_first, .timeout = 30)
{
	struct sockaddr_in a4 = loopback4(1), b4 = loopback4(2);
	struct sockaddr_in6 a6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT,
				   .sin6_port = htons(3) };
	const struct sockaddr *addrs[3] = { (struct sockaddr *)&a4, (struct sockaddr *)&b4,
					    (struct sockaddr *)&a6 };
	socklen_t lens[3] = { sizeof(a4), sizeof(b4), sizeof(a6) };
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1 };
	const int want[2][3] = { { AF_INET, AF_INET6, AF_INET }, { AF_INET, AF_INET, AF_INET6 } };

	for (int k = 2; k >= 1; k--) {
		const rill_connect_attempt *at;
		const char *detail;
		size_t n;
		int err;

		o.interleave = k;
		err = rill__connect_addrs(addrs, lens, 3, &o);
		CHECK(err < 0, "connected");
		/* The detail lists the attempts in order: the v6 one second
		 * with interleave 1, last with 2. */
		detail = rill_error_detail();
		CHECK((strstr(detail, "127.0.0.1:2") < strstr(detail, "[::1]:3")) == (k == 2),
		      "interleave %d: %s", k, detail);
		at = rill_open_connection_attempts(&n);
		CHECK(n == 3, "%zu attempts", n);
		for (int i = 0; i < 3; i++)
			CHECK(at[i].addr.ss_family == want[k - 1][i],
			      "interleave %d: attempt %d has family %d", k, i,
			      at[i].addr.ss_family);
	}
	return 0;
}

/* Every attempt comes back, also when the call fails; a call that makes
 * none leaves none. */
TASK_TEST(streams_connect, every_attempt_can_be_read_back, .timeout = 30)
{
	int f1, f2, p1 = refusing_port(&f1), p2 = refusing_port(&f2);
	struct sockaddr_in a1 = loopback4(p1), a2 = loopback4(p2);
	const struct sockaddr *addrs[2] = { (struct sockaddr *)&a1, (struct sockaddr *)&a2 };
	socklen_t lens[2] = { sizeof(a1), sizeof(a2) };
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	const rill_connect_attempt *at;
	rill_reader *r;
	rill_writer *w;
	size_t n = 99;

	cr_assert_eq(rill__connect_addrs(addrs, lens, 2, &o), RILL_EMULTI);
	at = rill_open_connection_attempts(&n);
	cr_assert_eq(n, 2);
	cr_assert_eq(at[0].error, -ECONNREFUSED);
	cr_assert_eq(at[1].error, -ECONNREFUSED);
	cr_assert_eq(((const struct sockaddr_in *)&at[0].addr)->sin_port, a1.sin_port);
	cr_assert_eq(((const struct sockaddr_in *)&at[1].addr)->sin_port, a2.sin_port);
	cr_assert_eq(rill_open_connection("127.0.0.1", p1, NULL, &r, &w), -ECONNREFUSED);
	at = rill_open_connection_attempts(&n);
	cr_assert_eq(n, 1);
	cr_assert_eq(at[0].error, -ECONNREFUSED);
	cr_assert_eq(rill_open_connection(NULL, 80, NULL, &r, &w), -EINVAL);
	cr_assert_null(rill_open_connection_attempts(&n));
	cr_assert_eq(n, 0);
	cr_assert_null(rill_open_connection_attempts(NULL));
	close(f1);
	close(f2);
	return 0;
}
