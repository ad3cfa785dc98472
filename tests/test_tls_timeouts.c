/* SPDX-License-Identifier: MIT */
/* TLS timing: handshake timeouts on both sides against silent peers, a task deadline in a handshake (-ETIMEDOUT, not the handshake timeout's code), close ending at the peer's close_notify, and start_tls with the ClientHello already buffered behind the STARTTLS line. */
#include "tests/tls_helpers.h"

static rill_time elapsed_ms(rill_time since)
{
	return (rill_now() - since) / MS;
}

/* ---- the client's handshake timeout --------------------------------- */

TASK_TEST(tls_timeouts, client_handshake_timeout, .timeout = 30)
{
	rill_tls_ctx *ctx = tls_client_ctx("ca.pem");
	int port, lfd = listen_loopback(&port, 16), fd;
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1,
		.ssl_context = ctx, .server_hostname = "localhost",
		.ssl_handshake_timeout = 200 * MS };
	unsigned char hello[4096];
	rill_reader *r = NULL;
	rill_writer *w = NULL;
	rill_time t0 = rill_now(), ms;
	ssize_t n, total = 0;
	int err;

	cr_assert_geq(lfd, 0);
	/* The kernel completes the TCP handshake from the backlog; nobody
	 * ever answers the ClientHello. */
	err = rill_open_connection("127.0.0.1", port, &o, &r, &w);
	ms = elapsed_ms(t0);
	cr_assert_eq(err, RILL_ETLS_HANDSHAKE_TIMEOUT, "%s", rill_strerror(err));
	cr_assert_null(w);
	cr_assert_geq(ms, 190, "gave up after %lld ms", (long long)ms);
	cr_assert_lt(ms, 1500, "gave up after %lld ms", (long long)ms);
	cr_assert_neq(*rill_tls_last_error(), '\0');

	/* The silent peer got a ClientHello (a handshake record, 0x16), then
	 * the connection closed. */
	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(fd, 0);
	/* Not blocking: the loop must run to finish the close. */
	for (int i = 0; i < 400; i++) {
		n = recv(fd, hello + total, sizeof(hello) - (size_t)total, MSG_DONTWAIT);
		if (n > 0)
			total += n;
		else if (n == 0 || errno != EAGAIN)
			break;
		else
			rill_sleep_ms(5);
	}
	cr_assert_eq(n, 0, "EOF after the ClientHello");
	cr_assert_gt(total, 5);
	cr_assert_eq(hello[0], 0x16);
	close(fd);
	close(lfd);
	rill_tls_ctx_free(ctx);
	return 0;
}

/* ---- the task's deadline in a handshake ----------------------------- */

/* open_connection with TLS to a listener that never answers, under a task
 * deadline and a handshake timeout: the first to pass ends it with want,
 * after about want_ms. */
static void deadline_case(rill_time deadline, rill_time handshake, int want, rill_time want_ms)
{
	rill_tls_ctx *ctx = tls_client_ctx("ca.pem");
	int port, lfd = listen_loopback(&port, 16);
	rill_reader *r = NULL;
	rill_writer *w = NULL;
	rill_time saved, t0 = rill_now(), ms;
	int err;

	cr_assert_geq(lfd, 0);
	saved = rill_deadline_push(deadline);
	err = rill_open_connection("127.0.0.1", port, RILL_OPEN_OPTIONS(.ssl_context = ctx,
		.server_hostname = "localhost", .ssl_handshake_timeout = handshake), &r, &w);
	rill_deadline_pop(saved);
	ms = elapsed_ms(t0);
	cr_assert_eq(err, want, "%s, not %s", rill_err_name(err), rill_err_name(want));
	cr_assert_null(w);
	cr_assert_geq(ms, want_ms - 10, "gave up after %lld ms", (long long)ms);
	cr_assert_lt(ms, want_ms + 1300, "gave up after %lld ms", (long long)ms);
	close(lfd);
	rill_tls_ctx_free(ctx);
}

/* asyncio: wait_for(open_connection(ssl=...)) raises TimeoutError. */
TASK_TEST(tls_timeouts, task_deadline_in_the_handshake_is_etimedout, .timeout = 30)
{
	deadline_case(200 * MS, 0, -ETIMEDOUT, 200);
	return 0;
}

TASK_TEST(tls_timeouts, handshake_timeout_inside_a_later_deadline_keeps_its_code, .timeout = 30)
{
	deadline_case(5000 * MS, 200 * MS, RILL_ETLS_HANDSHAKE_TIMEOUT, 200);
	return 0;
}

/* start_tls under a task deadline, on a plain peer that never answers. */
TASK_TEST(tls_timeouts, task_deadline_in_start_tls_is_etimedout, .timeout = 30)
{
	rill_tls_ctx *cctx = tls_client_ctx("ca.pem");
	struct served seen = { 0 };
	rill_reader *r;
	rill_writer *w;
	rill_server *srv;
	rill_time t0, saved;
	int err;

	cr_assert_eq(rill_start_server(read_to_end, &seen, "127.0.0.1", 0, NULL, &srv), 0);
	cr_assert_eq(rill_open_connection("127.0.0.1", rill_server_port(srv), NULL, &r, &w), 0);
	t0 = rill_now();
	saved = rill_deadline_push(150 * MS);
	err = rill_start_tls(w, cctx, "localhost", NULL);
	rill_deadline_pop(saved);
	cr_assert_eq(err, -ETIMEDOUT, "%s", rill_err_name(err));
	cr_assert_geq(elapsed_ms(t0), 140);
	cr_assert_lt(elapsed_ms(t0), 1500);
	/* The half-made TLS connection is over. */
	cr_assert_eq(rill_reader_read(r, (char[1]){ 0 }, 1), -ETIMEDOUT);
	rill_writer_close(w);
	cr_assert_eq(rill_writer_wait_closed(w), -ETIMEDOUT);
	rill_writer_free(w);
	rill_server_free(srv);
	rill_tls_ctx_free(cctx);
	return 0;
}

/* ---- the server's handshake timeout --------------------------------- */

TASK_TEST(tls_timeouts, server_handshake_timeout, .timeout = 30)
{
	struct served seen = { 0 };
	struct tls_env e = { 0 };
	rill_reader *sr, *r;
	rill_writer *sw, *w;
	rill_time t0;
	char byte;
	ssize_t n;

	tls_env_start(&e, echo_served, &seen,
		      RILL_SERVER_OPTIONS(.ssl_handshake_timeout = 200 * MS));
	/* A plain TCP client that never says a word. */
	t0 = rill_now();
	cr_assert_eq(rill_open_connection("127.0.0.1", e.port, NULL, &sr, &sw), 0);
	/* Meanwhile the server serves a real client. */
	tls_env_connect(&e, &r, &w);
	expect_echo(r, w, "served while another stalls\n");
	/* The silent one is dropped once its handshake time is up. */
	n = rill_reader_read(sr, &byte, 1);
	cr_assert_leq(n, 0, "the server sent nothing but a close");
	cr_assert_geq(elapsed_ms(t0), 190);
	cr_assert_lt(elapsed_ms(t0), 2000);
	rill_writer_close(sw);
	rill_writer_free(sw);
	/* The good one is still fine, and the server accepts more. */
	expect_echo(r, w, "still fine\n");
	close_and_free(w);
	tls_env_connect(&e, &r, &w);
	expect_echo(r, w, "another\n");
	close_and_free(w);
	tls_env_wait_stop(&e);
	cr_assert_eq(seen.calls, 2, "the silent client never reached the callback");
	return 0;
}

/* ---- closing: close_notify, then the peer's ---------------------- */

/* asyncio's SSLProtocol: close sends close_notify and waits for the
 * peer's; it ends as soon as that comes. (The peer that never answers:
 * test_tls_close.) */
TASK_TEST(tls_timeouts, close_ends_when_the_peers_close_notify_arrives, .timeout = 30)
{
	struct served seen = { 0 };
	struct tls_env e = { 0 };
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	rill_time t0, ms;
	int err;

	tls_env_start(&e, echo_served, &seen, NULL);
	cr_assert_eq(rill_open_connection("127.0.0.1", e.port, RILL_OPEN_OPTIONS(
		.ssl_context = e.cctx, .server_hostname = "localhost",
		.ssl_shutdown_timeout = 300 * MS), &r, &w), 0);
	cr_assert_eq(rill_writer_write(w, "hi\n", 3), 0);
	cr_assert_eq(rill_reader_readline(r, &line), 3);
	t0 = rill_now();
	rill_writer_close(w);
	err = rill_writer_wait_closed(w);
	ms = elapsed_ms(t0);
	cr_assert_eq(err, 0, "%s", rill_strerror(err));
	cr_assert_lt(ms, 250, "wait_closed took %lld ms", (long long)ms);
	rill_writer_free(w);
	/* The server saw our close_notify: a clean EOF. */
	for (int i = 0; i < 200 && seen.last_read != 0; i++)
		rill_sleep_ms(5);
	cr_assert_eq(seen.last_read, 0, "server's last read: %s",
		     rill_strerror((int)seen.last_read));
	tls_env_wait_stop(&e);
	return 0;
}

/* ---- start_tls ------------------------------------------------------- */

struct upgrade {
	rill_tls_ctx *sctx;
	size_t buffered;	/* plain bytes behind the line at the upgrade */
	int err;
	char version[32];
	ssize_t last_read;
};

/* A plain line protocol: "STARTTLS\n" upgrades the connection (with the
 * client's first TLS bytes already waiting behind the line), after which
 * lines are echoed over TLS on the same reader and writer. */
static int starttls_server(rill_reader *r, rill_writer *w, void *arg)
{
	struct upgrade *u = arg;
	const char *v;
	rill_bytes line;
	ssize_t n;

	n = rill_reader_readline(r, &line);
	if (n != 9 || memcmp(line.data, "STARTTLS\n", 9) != 0) {
		u->err = -EBADMSG;
		rill_writer_close(w);
		return 0;
	}
	/* Let the ClientHello arrive in plain, behind the line. */
	for (int i = 0; i < 400 && rill_reader_buffered(r) == 0; i++)
		rill_sleep_ms(5);
	u->buffered = rill_reader_buffered(r);
	u->err = rill_start_tls_server(w, u->sctx, NULL);
	if (u->err == 0) {
		v = rill_writer_get_extra_info(w, "version", NULL);
		snprintf(u->version, sizeof(u->version), "%s", v ? v : "(none)");
		while ((n = rill_reader_readline(r, &line)) > 0)
			rill_writer_write(w, line.data, line.len);
		u->last_read = n;
	}
	rill_writer_close(w);
	return 0;
}

TASK_TEST(tls_timeouts, start_tls_with_the_client_hello_already_buffered, .timeout = 30)
{
	struct upgrade u = { .sctx = tls_server_ctx("server"), .last_read = -1 };
	rill_tls_ctx *cctx = tls_client_ctx("ca.pem");
	rill_reader *r;
	rill_writer *w;
	rill_server *srv;
	int err;

	cr_assert_eq(rill_start_server(starttls_server, &u, "127.0.0.1", 0, NULL, &srv), 0);
	cr_assert_eq(rill_open_connection("127.0.0.1", rill_server_port(srv), NULL, &r, &w), 0);
	cr_assert_null(rill_writer_get_extra_info(w, "ssl_object", NULL), "plain so far");
	cr_assert(rill_writer_can_write_eof(w));
	cr_assert_eq(rill_writer_write(w, "STARTTLS\n", 9), 0);
	/* The ClientHello follows the line at once, with no reply between. */
	err = rill_start_tls(w, cctx, "localhost", NULL);
	cr_assert_eq(err, 0, "start_tls: %s (%s)", rill_strerror(err), rill_tls_last_error());
	cr_assert_eq(u.err, 0, "server's start_tls: %s", rill_strerror(u.err));
	cr_assert_gt(u.buffered, 0, "the ClientHello was buffered before the upgrade");
	cr_assert_str_eq(rill_writer_get_extra_info(w, "version", NULL), "TLSv1.3");
	cr_assert_not(rill_writer_can_write_eof(w));
	/* The same objects, now over TLS, both ways. */
	expect_echo(r, w, "over TLS now\n");
	expect_echo(r, w, "and again\n");
	cr_assert_str_eq(u.version, "TLSv1.3");
	/* Upgrading twice is a state error. */
	cr_assert_eq(rill_start_tls(w, cctx, "localhost", NULL), RILL_ESTATE);
	close_and_free(w);
	for (int i = 0; i < 200 && u.last_read != 0; i++)
		rill_sleep_ms(5);
	cr_assert_eq(u.last_read, 0, "clean EOF after close_notify: %s",
		     rill_strerror((int)u.last_read));
	rill_server_free(srv);
	cr_assert_eq(rill_start_tls_server(NULL, u.sctx, NULL), -EINVAL);
	rill_tls_ctx_free(cctx);
	rill_tls_ctx_free(u.sctx);
	return 0;
}

/* start_tls's own handshake timeout, on a plain peer that never answers. */
TASK_TEST(tls_timeouts, start_tls_handshake_timeout, .timeout = 30)
{
	rill_tls_ctx *cctx = tls_client_ctx("ca.pem");
	rill_tls_timeouts to = { .size = sizeof(rill_tls_timeouts), .handshake = 150 * MS };
	struct served seen = { 0 };
	rill_reader *r;
	rill_writer *w;
	rill_server *srv;
	rill_time t0;
	int err;

	/* A plain peer that swallows the ClientHello and answers nothing. */
	cr_assert_eq(rill_start_server(read_to_end, &seen, "127.0.0.1", 0, NULL, &srv), 0);
	cr_assert_eq(rill_open_connection("127.0.0.1", rill_server_port(srv), NULL, &r, &w), 0);
	t0 = rill_now();
	err = rill_start_tls(w, cctx, "localhost", &to);
	cr_assert_eq(err, RILL_ETLS_HANDSHAKE_TIMEOUT, "%s", rill_strerror(err));
	cr_assert_geq(elapsed_ms(t0), 140);
	cr_assert_lt(elapsed_ms(t0), 1500);
	/* The connection is over: reads report the failure. */
	cr_assert_eq(rill_reader_read(r, (char[1]){ 0 }, 1), RILL_ETLS_HANDSHAKE_TIMEOUT);
	rill_writer_close(w);
	cr_assert_eq(rill_writer_wait_closed(w), RILL_ETLS_HANDSHAKE_TIMEOUT);
	rill_writer_free(w);
	rill_server_free(srv);
	rill_tls_ctx_free(cctx);
	return 0;
}
