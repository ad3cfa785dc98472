/* SPDX-License-Identifier: MIT */
/* start_server: binding, one task per connection, socket options, serving states, close/wait_closed, clients, serve_forever, EMFILE, free. */
#include <criterion/criterion.h>
#include <netinet/tcp.h>

#include "tests/helpers.h"

/* ---- helpers ------------------------------------------------------- */

static int sockopt(int fd, int level, int name)
{
	int v = -1;
	socklen_t len = sizeof(v);

	cr_assert_eq(getsockopt(fd, level, name, &v, &len), 0);
	return v;
}

static int writer_fd(rill_writer *w)
{
	const int *fd = rill_writer_get_extra_info(w, "socket", NULL);

	cr_assert_not_null(fd);
	return *fd;
}

static int port_of(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
	return ntohs(((const struct sockaddr_in *)sa)->sin_port);
}

/* ---- binding ------------------------------------------------------- */

static int every_interface(void *arg)
{
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	bool seen4 = false, seen6 = false;
	int port;

	(void)arg;
	cr_assert_eq(rill_start_server(echo_lines, NULL, NULL, 0, NULL, &s), 0);
	port = rill_server_port(s);
	cr_assert_gt(port, 0);
	cr_assert_eq(rill_server_nsockets(s), 2, "one socket per family");
	for (size_t i = 0; i < rill_server_nsockets(s); i++) {
		socklen_t len;
		const struct sockaddr *sa = rill_server_sockname(s, i, &len);
		int fd = rill_server_socket(s, i);

		cr_assert_eq(port_of(sa), port, "socket %zu has another port", i);
		if (sa->sa_family == AF_INET6) {
			seen6 = true;
			cr_assert_eq(sockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
		} else {
			seen4 = sa->sa_family == AF_INET;
		}
		cr_assert_eq(sockopt(fd, SOL_SOCKET, SO_REUSEADDR), 1);
		cr_assert_eq(sockopt(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
	}
	cr_assert(seen4 && seen6);
	connect_to("127.0.0.1", port, &r, &w);
	cr_assert_eq(echo_roundtrip(r, w, "v4\n"), 0);
	close_and_free(w);
	connect_to("::1", port, &r, &w);
	cr_assert_eq(echo_roundtrip(r, w, "v6\n"), 0);
	close_and_free(w);
	cr_assert_null(rill_server_sockname(s, 2, NULL));
	cr_assert_eq(rill_server_socket(s, 2), -EINVAL);
	rill_server_free(s);
	return 0;
}

Test(streams_server, every_interface_one_socket_per_family, .timeout = 30)
{
	run_task_with_ipv6(every_interface, NULL);
}

TASK_TEST(streams_server, list_of_hosts_share_the_port, .timeout = 30)
{
	static const char *const hosts[] = { "127.0.0.1", "127.0.0.2" };
	rill_server_options o = { .size = sizeof(rill_server_options), .sock = -1,
		.hosts = hosts, .nhosts = 2 };
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	int port;

	/* host is ignored when hosts is given */
	cr_assert_eq(rill_start_server(echo_lines, NULL, "ignored.invalid", 0, &o, &s), 0);
	cr_assert_eq(rill_server_nsockets(s), 2);
	port = rill_server_port(s);
	for (size_t i = 0; i < 2; i++) {
		const struct sockaddr_in *sa = (const void *)rill_server_sockname(s, i, NULL);
		char addr[INET_ADDRSTRLEN];

		inet_ntop(AF_INET, &sa->sin_addr, addr, sizeof(addr));
		cr_assert_str_eq(addr, hosts[i]);
		cr_assert_eq(ntohs(sa->sin_port), port);
		connect_to(hosts[i], port, &r, &w);
		cr_assert_eq(echo_roundtrip(r, w, "hi\n"), 0);
		close_and_free(w);
	}
	rill_server_free(s);
	return 0;
}

static int bad_server_args(void *arg)
{
	rill_server_options o = { .size = sizeof(rill_server_options), .sock = -1, .backlog = -1 };
	rill_server *s = NULL;
	int fd, busy, port;

	(void)arg;
	cr_assert_eq(rill_start_server(NULL, NULL, "127.0.0.1", 0, NULL, &s), -EINVAL);
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, NULL), -EINVAL);
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 70000, NULL, &s), -EINVAL);
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, &o, &s), -EINVAL);
	/* A port in use: the bind error, with the address in the detail. */
	busy = listen_loopback(&port, 1);
	cr_assert_geq(busy, 0);
	fd = count_fds();
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", port, NULL, &s),
		     -EADDRINUSE);
	cr_assert(strstr(rill_error_detail(), "127.0.0.1"), "detail: %s", rill_error_detail());
	cr_assert_eq(count_fds(), fd, "a failed start_server leaked its socket");
	close(busy);
	return 0;
}

Test(streams_server, invalid_arguments_and_bind_errors, .timeout = 30)
{
	rill_server *s;

	run_task(bad_server_args, NULL);
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &s), -EPERM,
		     "outside a task");
}

/* ---- one task per connection --------------------------------------- */

#define NCLIENTS 50
#define NLINES 20

struct many {
	rill_server *s;
	rill_task *main_task;
	int live, max_live, connected;
	bool own_task_ok;
	rill_task *tasks[NCLIENTS];
	int ntasks;
};

static int counting_echo(rill_reader *r, rill_writer *w, void *arg)
{
	struct many *m = arg;
	rill_task *self = rill_task_current();

	if (!self || self == m->main_task)
		m->own_task_ok = false;
	for (int i = 0; i < m->ntasks; i++)
		if (m->tasks[i] == self)
			m->own_task_ok = false;	/* shared with a live one */
	if (m->ntasks < NCLIENTS)
		m->tasks[m->ntasks++] = self;
	if (++m->live > m->max_live)
		m->max_live = m->live;
	echo_lines(r, w, NULL);
	m->live--;
	return 0;
}

struct one_client {
	struct many *m;
	int index;
	int result;
};

static int many_client(void *arg)
{
	struct one_client *c = arg;
	rill_reader *r;
	rill_writer *w;
	int err = rill_open_connection("127.0.0.1", rill_server_port(c->m->s), NULL, &r, &w);

	if (err < 0)
		return c->result = err;
	for (int i = 0; i < NLINES && err == 0; i++) {
		char msg[64];

		snprintf(msg, sizeof(msg), "client %d line %d\n", c->index, i);
		err = echo_roundtrip(r, w, msg);
		/* Hold every connection open until all are up. */
		if (i == 0 && ++c->m->connected < NCLIENTS)
			while (c->m->connected < NCLIENTS && rill_sleep_ms(1) == 0)
				;
	}
	writer_done(w);
	return c->result = err;
}

TASK_TEST(streams_server, fifty_concurrent_clients_each_echoed, .timeout = 30)
{
	struct many m = { .main_task = rill_task_current(), .own_task_ok = true };
	struct one_client c[NCLIENTS];
	rill_task *t[NCLIENTS];

	cr_assert_eq(rill_start_server(counting_echo, &m, "127.0.0.1", 0, NULL, &m.s), 0);
	for (int i = 0; i < NCLIENTS; i++) {
		c[i] = (struct one_client){ .m = &m, .index = i, .result = 1 };
		cr_assert_eq(rill_spawn(rill_loop_current(), many_client, &c[i], &t[i]), 0);
	}
	for (int i = 0; i < NCLIENTS; i++) {
		cr_assert_eq(rill_task_join(t[i], NULL), 0);
		cr_assert_eq(c[i].result, 0, "client %d: %s", i, rill_err_name(c[i].result));
	}
	rill_server_close(m.s);
	cr_assert_eq(rill_server_wait_closed(m.s), 0);
	cr_assert_eq(m.live, 0);
	cr_assert_eq(m.max_live, NCLIENTS, "callbacks did not run concurrently");
	cr_assert(m.own_task_ok, "a callback did not run in a task of its own");
	rill_server_free(m.s);
	return 0;
}

/* ---- socket options ------------------------------------------------ */

/* Reports the accepted socket's TCP_NODELAY and SO_KEEPALIVE as "N K\n". */
static int report_opts(rill_reader *r, rill_writer *w, void *arg)
{
	char line[32];
	rill_bytes b;
	int fd = writer_fd(w);

	(void)arg;
	snprintf(line, sizeof(line), "%d %d\n", sockopt(fd, IPPROTO_TCP, TCP_NODELAY) != 0,
		 sockopt(fd, SOL_SOCKET, SO_KEEPALIVE) != 0);
	rill_writer_write(w, line, strlen(line));
	rill_reader_read_all(r, &b);
	rill_writer_close(w);
	return 0;
}

TASK_TEST(streams_server, nodelay_keepalive_reuse_options, .timeout = 30)
{
	rill_server_options keep = { .size = sizeof(rill_server_options), .sock = -1,
		.keep_alive = RILL_ON, .reuse_port = RILL_ON };
	rill_server_options off = { .size = sizeof(rill_server_options), .sock = -1,
		.reuse_address = RILL_OFF };
	rill_server *s;
	rill_reader *r;
	rill_writer *w;

	/* defaults: nodelay on both ends, no keepalive, reuse_address only */
	cr_assert_eq(rill_start_server(report_opts, NULL, "127.0.0.1", 0, NULL, &s), 0);
	cr_assert_eq(sockopt(rill_server_socket(s, 0), SOL_SOCKET, SO_REUSEPORT), 0);
	cr_assert_eq(sockopt(rill_server_socket(s, 0), SOL_SOCKET, SO_REUSEADDR), 1);
	connect_to("127.0.0.1", rill_server_port(s), &r, &w);
	cr_assert_eq(sockopt(writer_fd(w), IPPROTO_TCP, TCP_NODELAY), 1);
	expect_line(r, "1 0\n");
	close_and_free(w);
	rill_server_free(s);

	cr_assert_eq(rill_start_server(report_opts, NULL, "127.0.0.1", 0, &keep, &s), 0);
	cr_assert_eq(sockopt(rill_server_socket(s, 0), SOL_SOCKET, SO_REUSEPORT), 1);
	connect_to("127.0.0.1", rill_server_port(s), &r, &w);
	expect_line(r, "1 1\n");
	close_and_free(w);
	rill_server_free(s);

	cr_assert_eq(rill_start_server(report_opts, NULL, "127.0.0.1", 0, &off, &s), 0);
	cr_assert_eq(sockopt(rill_server_socket(s, 0), SOL_SOCKET, SO_REUSEADDR), 0);
	rill_server_free(s);
	return 0;
}

/* ---- serving states ------------------------------------------------ */

TASK_TEST(streams_server, start_serving_off_until_asked, .timeout = 30)
{
	rill_server_options o = { .size = sizeof(rill_server_options), .sock = -1,
		.start_serving = RILL_OFF };
	rill_server *s;
	rill_reader *r;
	rill_writer *w;

	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, &o, &s), 0);
	cr_assert_not(rill_server_is_serving(s));
	/* The kernel completes the handshake into the backlog... */
	connect_to("127.0.0.1", rill_server_port(s), &r, &w);
	cr_assert_eq(rill_writer_write(w, "early\n", 6), 0);
	/* ...but nobody accepts, so nothing comes back. */
	cr_assert_eq(rill_sleep_ms(200), 0);
	cr_assert_eq(rill_reader_buffered(r), 0);
	cr_assert_eq(rill_server_start_serving(s), 0);
	cr_assert(rill_server_is_serving(s));
	cr_assert_eq(rill_server_start_serving(s), 0, "start_serving twice");
	expect_line(r, "early\n");
	close_and_free(w);
	rill_server_close(s);
	cr_assert_not(rill_server_is_serving(s));
	cr_assert_eq(rill_server_start_serving(s), RILL_ECLOSED);
	rill_server_free(s);
	return 0;
}

struct closer {
	rill_server *s;
	bool returned;
	int result;
};

static int wait_closed_task(void *arg)
{
	struct closer *c = arg;

	c->result = rill_server_wait_closed(c->s);
	c->returned = true;
	return 0;
}

TASK_TEST(streams_server, close_stops_listening_and_wait_closed_waits_for_clients, .timeout = 30)
{
	struct closer c = { 0 };
	rill_reader *r, *r2;
	rill_writer *w, *w2;
	rill_task *t;
	int port;

	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &c.s), 0);
	port = rill_server_port(c.s);
	connect_to("127.0.0.1", port, &r, &w);
	cr_assert_eq(echo_roundtrip(r, w, "before\n"), 0);
	cr_assert_eq(rill_spawn(rill_loop_current(), wait_closed_task, &c, &t), 0);
	cr_assert_eq(rill_sleep_ms(50), 0);
	cr_assert_not(c.returned, "wait_closed returned before close");

	rill_server_close(c.s);
	rill_server_close(c.s);		/* idempotent */
	cr_assert_not(rill_server_is_serving(c.s));
	cr_assert_eq(rill_server_nsockets(c.s), 0);
	/* Not listening any more, at once. */
	cr_assert_eq(rill_open_connection("127.0.0.1", port, NULL, &r2, &w2), -ECONNREFUSED);
	/* The open connection is served still. */
	cr_assert_eq(echo_roundtrip(r, w, "after close\n"), 0);
	cr_assert_eq(rill_sleep_ms(100), 0);
	cr_assert_not(c.returned, "wait_closed returned with a live connection");
	close_and_free(w);
	cr_assert_eq(rill_task_join(t, NULL), 0);
	cr_assert(c.returned);
	cr_assert_eq(c.result, 0);
	cr_assert_eq(rill_server_wait_closed(c.s), 0, "wait_closed is repeatable");
	rill_server_free(c.s);
	return 0;
}

/* Greets, then waits for the client's data (or the end). */
static int greet_then_read(rill_reader *r, rill_writer *w, void *arg)
{
	int *ended = arg;
	rill_bytes b;

	rill_writer_write(w, "welcome\n", 8);
	rill_reader_read_all(r, &b);
	rill_writer_close(w);
	(*ended)++;
	return 0;
}

static int close_or_abort(void *arg)
{
	bool abort = *(bool *)arg;
	rill_server *s;
	rill_reader *r[3];
	rill_writer *w[3];
	int ended = 0;

	cr_assert_eq(rill_start_server(greet_then_read, &ended, "127.0.0.1", 0, NULL, &s), 0);
	for (int i = 0; i < 3; i++) {
		connect_to("127.0.0.1", rill_server_port(s), &r[i], &w[i]);
		expect_line(r[i], "welcome\n");
	}
	rill_server_close(s);
	if (abort)
		rill_server_abort_clients(s);
	else
		rill_server_close_clients(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	cr_assert_eq(ended, 3, "callbacks still running after wait_closed");
	for (int i = 0; i < 3; i++) {
		rill_bytes line;
		ssize_t n = rill_reader_readline(r[i], &line);

		/* close: a clean EOF; abort may reset instead */
		if (abort)
			cr_assert(n == 0 || n == -ECONNRESET, "client %d: %zd", i, n);
		else
			cr_assert_eq(n, 0, "client %d: %zd", i, n);
		close_and_free(w[i]);
	}
	rill_server_free(s);
	return 0;
}

Test(streams_server, close_clients_ends_every_connection, .timeout = 30)
{
	bool abort = false;

	run_task(close_or_abort, &abort);
}

Test(streams_server, abort_clients_ends_every_connection, .timeout = 30)
{
	bool abort = true;

	run_task(close_or_abort, &abort);
}

/* ---- serve_forever ------------------------------------------------- */

struct forever {
	rill_server *s;
	int result;
};

static int forever_task(void *arg)
{
	struct forever *f = arg;

	f->result = rill_server_serve_forever(f->s);
	return 0;
}

TASK_TEST(streams_server, serve_forever_states_and_cancel, .timeout = 30)
{
	rill_server_options o = { .size = sizeof(rill_server_options), .sock = -1,
		.start_serving = RILL_OFF };
	struct forever f = { .result = 1 }, g = { .result = 1 };
	rill_reader *r, *r2;
	rill_writer *w, *w2;
	rill_task *t, *t2;
	int port;

	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, &o, &f.s), 0);
	g.s = f.s;
	port = rill_server_port(f.s);
	cr_assert_eq(rill_spawn(rill_loop_current(), forever_task, &f, &t), 0);
	cr_assert_eq(rill_yield(), 0);
	cr_assert(rill_server_is_serving(f.s), "serve_forever did not start serving");
	connect_to("127.0.0.1", port, &r, &w);
	cr_assert_eq(echo_roundtrip(r, w, "served\n"), 0);
	/* A second serve_forever fails at once. */
	cr_assert_eq(rill_spawn(rill_loop_current(), forever_task, &g, &t2), 0);
	cr_assert_eq(rill_task_join(t2, NULL), 0);
	cr_assert_eq(g.result, RILL_ESTATE);

	/* Cancelled: closes, then waits for the live connection. */
	cr_assert_eq(rill_task_cancel(t), 0);
	cr_assert_eq(rill_sleep_ms(100), 0);
	cr_assert_not(rill_task_done(t), "serve_forever did not wait for its client");
	cr_assert_not(rill_server_is_serving(f.s));
	cr_assert_eq(rill_open_connection("127.0.0.1", port, NULL, &r2, &w2), -ECONNREFUSED);
	cr_assert_eq(echo_roundtrip(r, w, "still here\n"), 0);
	close_and_free(w);
	cr_assert_eq(rill_task_join(t, NULL), 0);
	cr_assert_eq(f.result, -ECANCELED);
	cr_assert_eq(rill_server_serve_forever(f.s), RILL_ECLOSED);
	rill_server_free(f.s);

	/* Closed by someone else: serve_forever returns. */
	f.result = 1;
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &f.s), 0);
	cr_assert_eq(rill_spawn(rill_loop_current(), forever_task, &f, &t), 0);
	cr_assert_eq(rill_sleep_ms(10), 0);
	rill_server_close(f.s);
	cr_assert_eq(rill_task_join(t, NULL), 0);
	cr_assert_eq(f.result, 0);
	rill_server_free(f.s);
	return 0;
}

/* ---- sock= --------------------------------------------------------- */

TASK_TEST(streams_server, adopt_listening_socket, .timeout = 30)
{
	rill_server_options o = RILL_SERVER_OPTIONS_INIT;
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	int port, fd, dgram = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	o.sock = dgram;
	cr_assert_eq(rill_start_server(echo_lines, NULL, NULL, 0, &o, &s), -EINVAL);
	close(dgram);

	fd = listen_loopback(&port, 16);
	cr_assert_geq(fd, 0);
	o.sock = fd;
	cr_assert_eq(rill_start_server(echo_lines, NULL, NULL, 0, &o, &s), 0);
	cr_assert_eq(rill_server_nsockets(s), 1);
	cr_assert_eq(rill_server_socket(s, 0), fd);
	cr_assert_eq(rill_server_port(s), port);
	connect_to("127.0.0.1", port, &r, &w);
	cr_assert_eq(sockopt(writer_fd(w), IPPROTO_TCP, TCP_NODELAY), 1);
	cr_assert_eq(echo_roundtrip(r, w, "adopted listener\n"), 0);
	close_and_free(w);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	cr_assert_eq(fcntl(fd, F_GETFD), -1, "the adopted listener was not closed");
	rill_server_free(s);
	return 0;
}

/* asyncio's server calls listen(backlog) on every socket it serves, so a
 * bound socket that is not listening yet is taken as it is. */
TASK_TEST(streams_server, adopt_bound_socket_not_listening_yet, .timeout = 30)
{
	struct sockaddr_in a = loopback4(0);
	socklen_t len = sizeof(a);
	rill_server_options o = RILL_SERVER_OPTIONS_INIT;
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	o.sock = fd;
	o.backlog = 7;
	cr_assert_eq(rill_start_server(echo_lines, NULL, NULL, 0, &o, &s), 0,
		     "%s", rill_error_detail());
	cr_assert_eq(sockopt(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
	connect_to("127.0.0.1", ntohs(a.sin_port), &r, &w);
	cr_assert_eq(echo_roundtrip(r, w, "listened for us\n"), 0);
	close_and_free(w);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	return 0;
}

/* asyncio's ValueErrors: sock with host or port, and the TLS timeouts
 * without TLS. */
TASK_TEST(streams_server, sock_with_host_or_port_and_tls_timeouts_without_tls, .timeout = 30)
{
	rill_server_options o = RILL_SERVER_OPTIONS_INIT;
	rill_server *s = NULL;
	const char *hosts[] = { "127.0.0.1" };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fds;

	cr_assert_eq(listen(fd, 4), 0);
	fds = count_fds();
	o.sock = fd;
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, &o, &s), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "sock"), "%s", rill_error_detail());
	cr_assert_eq(rill_start_server(echo_lines, NULL, NULL, 8080, &o, &s), -EINVAL);
	o.hosts = hosts;
	o.nhosts = 1;
	cr_assert_eq(rill_start_server(echo_lines, NULL, NULL, 0, &o, &s), -EINVAL);
	o.hosts = NULL;
	o.nhosts = 0;
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, "/tmp/rill-x.sock", &o, &s),
		     -EINVAL);
	cr_assert_null(s);
	cr_assert_eq(count_fds(), fds, "a refused sock was closed or leaked");
	close(fd);

	o = (rill_server_options)RILL_SERVER_OPTIONS_INIT;
	o.ssl_handshake_timeout = 1000 * MS;
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, &o, &s), -EINVAL);
	cr_assert(strstr(rill_error_detail(), "only meaningful with ssl"), "%s",
		  rill_error_detail());
	o.ssl_handshake_timeout = 0;
	o.ssl_shutdown_timeout = 1000 * MS;
	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, &o, &s), -EINVAL);
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, "/tmp/rill-x.sock", &o, &s),
		     -EINVAL);
	return 0;
}

/* 3.13: close() from another task cancels serve_forever's future, and
 * serve_forever closes and waits as wait_closed() does before it ends. */
TASK_TEST(streams_server, serve_forever_ended_by_close_waits_for_the_clients, .timeout = 30)
{
	struct forever f = { .result = 1 };
	rill_reader *r;
	rill_writer *w;
	rill_task *t;

	cr_assert_eq(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &f.s), 0);
	cr_assert_eq(rill_spawn(rill_loop_current(), forever_task, &f, &t), 0);
	connect_to("127.0.0.1", rill_server_port(f.s), &r, &w);
	cr_assert_eq(echo_roundtrip(r, w, "connected\n"), 0);
	rill_server_close(f.s);
	cr_assert_eq(rill_sleep_ms(50), 0);
	cr_assert_eq(f.result, 1, "serve_forever returned with a client connected");
	cr_assert_eq(echo_roundtrip(r, w, "still served\n"), 0);
	close_and_free(w);
	cr_assert_eq(rill_task_join(t, NULL), 0);
	cr_assert_eq(f.result, 0);
	rill_server_free(f.s);
	return 0;
}

/* ---- a family the machine has disabled ------------------------------ */

/* In a network namespace of its own (lo up, from run_isolated), IPv6
 * turned off. false where that cannot be had. */
static bool ipv6_off(void)
{
	char mine[64] = "", parent[64] = "", where[64];
	FILE *f;

	/* Only in a namespace of our own: never turn the machine's off. */
	snprintf(where, sizeof(where), "/proc/%d/ns/net", (int)getppid());
	if (readlink("/proc/self/ns/net", mine, sizeof(mine) - 1) <= 0 ||
	    readlink(where, parent, sizeof(parent) - 1) <= 0 || !strcmp(mine, parent))
		return false;
	f = fopen("/proc/sys/net/ipv6/conf/all/disable_ipv6", "w");
	return f && fputs("1\n", f) >= 0 && fclose(f) == 0;
}

/* 3.13 (bpo-30945): an address that fails with EADDRNOTAVAIL is skipped;
 * an error only when none could be bound. */
ISOLATED_TEST(streams_server, disabled_family_is_skipped, .timeout = 30)
{
	const char *both[] = { "::1", "127.0.0.1" }, *v6[] = { "::1" };
	rill_server_options o = RILL_SERVER_OPTIONS_INIT;
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	int err;

	if (!ipv6_off()) {
		fprintf(stderr, "skipped: IPv6 cannot be turned off here (needs a "
			"network namespace: root)\n");
		return 0;
	}
	o.hosts = both;
	o.nhosts = 2;
	err = rill_start_server(echo_lines, NULL, NULL, 0, &o, &s);
	CHECK(err == 0, "hosts ::1 and 127.0.0.1: %s %s", rill_err_name(err), rill_error_detail());
	CHECK(rill_server_nsockets(s) == 1, "%zu sockets", rill_server_nsockets(s));
	CHECK(rill_open_connection("127.0.0.1", rill_server_port(s), NULL, &r, &w) == 0, "connect");
	CHECK(echo_roundtrip(r, w, "v4 only\n") == 0, "echo");
	CHECK(writer_done(w) == 0, "close");
	rill_server_close(s);
	rill_server_wait_closed(s);
	rill_server_free(s);
	/* None could be bound: the error. */
	o.hosts = v6;
	o.nhosts = 1;
	err = rill_start_server(echo_lines, NULL, NULL, 0, &o, &s);
	CHECK(err == -EADDRNOTAVAIL, "::1 alone: %s", rill_err_name(err));
	CHECK(strstr(rill_error_detail(), "could not bind"), "%s", rill_error_detail());
	err = rill_start_server(echo_lines, NULL, "::1", 0, NULL, &s);
	CHECK(err == -EADDRNOTAVAIL, "host ::1: %s", rill_err_name(err));
	/* Every interface: serves on what there is. */
	err = rill_start_server(echo_lines, NULL, NULL, 0, NULL, &s);
	CHECK(err == 0, "host NULL: %s %s", rill_err_name(err), rill_error_detail());
	CHECK(rill_open_connection("127.0.0.1", rill_server_port(s), NULL, &r, &w) == 0, "connect");
	CHECK(echo_roundtrip(r, w, "every interface\n") == 0, "echo");
	CHECK(writer_done(w) == 0, "close");
	rill_server_close(s);
	rill_server_wait_closed(s);
	rill_server_free(s);
	return 0;
}

/* ---- the callback leaves the writer open ---------------------------- */

struct logged {
	int warnings, errors;
	char last[256];
};

static void log_hook(int level, const char *msg, void *arg)
{
	struct logged *l = arg;

	if (level == RILL_LOG_WARNING)
		l->warnings++;
	else if (level == RILL_LOG_ERROR)
		l->errors++;
	snprintf(l->last, sizeof(l->last), "%s", msg);
}

static int leave_open(rill_reader *r, rill_writer *w, void *arg)
{
	rill_bytes line;

	(void)arg;
	if (rill_reader_readline(r, &line) > 0)
		rill_writer_write(w, line.data, line.len);
	return 0;		/* no close: rill closes, with a warning */
}

/* A server with callback cb: one round trip of msg, then the server must
 * have closed the connection. */
struct one_exchange {
	rill_client_connected_fn cb;
	const char *msg;
};

static int echo_then_closed(void *arg)
{
	const struct one_exchange *x = arg;
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;

	cr_assert_eq(rill_start_server(x->cb, NULL, "127.0.0.1", 0, NULL, &s), 0);
	connect_to("127.0.0.1", rill_server_port(s), &r, &w);
	cr_assert_eq(echo_roundtrip(r, w, x->msg), 0, "queued data lost");
	cr_assert_eq(rill_reader_readline(r, &line), 0, "connection not closed");
	close_and_free(w);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	return 0;
}

Test(streams_server, callback_leaving_writer_open_warns_and_closes, .timeout = 30)
{
	struct logged l = { 0 };
	struct one_exchange x = { leave_open, "last words\n" };

	rill_set_log_handler(log_hook, &l);
	run_task(echo_then_closed, &x);
	rill_set_log_handler(NULL, NULL);
	cr_assert_eq(l.warnings, 1, "warnings: %d (last: %s)", l.warnings, l.last);
	cr_assert(strstr(l.last, "unclosed"), "message: %s", l.last);
}

/* ---- the callback fails ---------------------------------------------- */

static int fail_after_line(rill_reader *r, rill_writer *w, void *arg)
{
	rill_bytes line;

	(void)arg;
	if (rill_reader_readline(r, &line) > 0)
		rill_writer_write(w, line.data, line.len);
	return -EPROTO;		/* an exception, left open */
}

/* asyncio: "Unhandled exception in client_connected_cb" through the
 * exception handler, then transport.close(). */
Test(streams_server, callback_error_is_logged_and_closes, .timeout = 30)
{
	struct logged l = { 0 };
	struct one_exchange x = { fail_after_line, "then fail\n" };

	rill_set_log_handler(log_hook, &l);
	run_task(echo_then_closed, &x);
	rill_set_log_handler(NULL, NULL);
	cr_assert_eq(l.errors, 1, "errors: %d (last: %s)", l.errors, l.last);
	cr_assert_eq(l.warnings, 0, "warnings: %d (last: %s)", l.warnings, l.last);
	cr_assert(strstr(l.last, "Unhandled exception in client_connected_cb"), "%s", l.last);
	cr_assert(strstr(l.last, rill_strerror(-EPROTO)), "%s", l.last);
}

/* ---- rill_server_free with live connections ------------------------- */

TASK_TEST(streams_server, free_with_live_connections_aborts_them, .timeout = 30)
{
	int ended = 0;
	rill_server *s;
	rill_reader *r[4];
	rill_writer *w[4];

	cr_assert_eq(rill_start_server(greet_then_read, &ended, "127.0.0.1", 0, NULL, &s), 0);
	for (int i = 0; i < 4; i++) {
		connect_to("127.0.0.1", rill_server_port(s), &r[i], &w[i]);
		expect_line(r[i], "welcome\n");
	}
	rill_server_free(s);	/* s is gone for the caller from here */
	for (int i = 0; i < 4; i++) {
		rill_bytes line;
		ssize_t n = rill_reader_readline(r[i], &line);

		cr_assert(n == 0 || n == -ECONNRESET, "client %d: %zd", i, n);
		close_and_free(w[i]);
	}
	for (int i = 0; i < 100 && ended < 4; i++)
		rill_sleep_ms(5);
	cr_assert_eq(ended, 4, "callbacks did not end");
	return 0;
}

/* ---- EMFILE ----------------------------------------------------------
 *
 * The server runs in a forked child (fd_limited_server) whose
 * RLIMIT_NOFILE leaves room for two accepted connections; the clients
 * run in the test process.
 */

/* Sends msg on a plain client and expects it back within 5 s. */
static void echo_check(int fd, const char *msg)
{
	send_str(fd, msg);
	expect_fd_line(fd, msg, 5000, "echo");
}

Test(streams_server, emfile_pauses_accepting_then_resumes, .timeout = 30)
{
	char buf[64];
	int ctl, port, c1, c2, c3, before, after, errors;
	struct pollfd p;
	pid_t pid = fd_limited_start(2, &ctl, &port);

	c1 = tcp_client(port);
	echo_check(c1, "one\n");
	c2 = tcp_client(port);
	echo_check(c2, "two\n");
	/* Out of fds: the third waits in the backlog, unserved. */
	c3 = tcp_client(port);
	cr_assert_eq(send(c3, "three\n", 6, 0), 6);
	p = (struct pollfd){ .fd = c3, .events = POLLIN };
	cr_assert_eq(poll(&p, 1, 300), 0, "served beyond the fd limit");
	cr_assert_geq(fd_limited_ask(ctl, "count\n"), 1, "EMFILE not reported");
	/* The open connections keep working. */
	echo_check(c1, "one again\n");
	echo_check(c2, "two again\n");
	/* An fd is freed: within the retry pause (1 s) c3 is served. */
	close(c1);
	cr_assert_geq(read_line(c3, buf, sizeof(buf), 5000), 0, "accepting did not resume");
	cr_assert_str_eq(buf, "three");
	echo_check(c3, "three again\n");
	close(c2);
	close(c3);
	fd_limited_finish(pid, ctl, &before, &after, &errors);
	cr_assert_eq(after, before, "fds leaked in the server: %d -> %d", before, after);
}
