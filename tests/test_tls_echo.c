/* SPDX-License-Identifier: MIT */
/* TLS between a rill client and a rill server: echo of 0 B to 64 MiB byte for byte, clean close_notify EOFs, abort as truncation, back-pressure, 100 concurrent connections, TLS extra info, no write_eof, session resumption. */
#include <openssl/ssl.h>
#include <stdint.h>

#include "tests/tls_helpers.h"

/* ---- servers -------------------------------------------------------- */

/* What record_info saw, for the test to check afterwards. */
struct seen {
	int calls;
	char version[32], alpn[32], subject[128];
	bool peercert, reused;
};

/* Echoes everything until EOF, then closes (arg: struct served). */
static int echo_all(rill_reader *r, rill_writer *w, void *arg)
{
	struct served *s = arg;
	static char buf[64 * 1024];
	ssize_t n;

	s->calls++;
	while ((n = rill_reader_read(r, buf, sizeof(buf))) > 0) {
		rill_writer_write(w, buf, (size_t)n);
		if (rill_writer_drain(w) < 0)
			break;
	}
	s->last_read = n;
	rill_writer_close(w);
	return 0;
}

/* ---- echo of N bytes ------------------------------------------------ */

struct sender {
	rill_writer *w;
	size_t total;
	int err;
};

/* Writes the pattern in 64 KiB pieces, draining between them, while the
 * reading task takes the echo: neither side's buffers ever fill. */
static int send_pattern(void *arg)
{
	struct sender *s = arg;
	static uint8_t buf[64 * 1024];

	for (size_t off = 0; off < s->total; off += sizeof(buf)) {
		size_t n = s->total - off < sizeof(buf) ? s->total - off : sizeof(buf);

		fill_pat(buf, off, n);
		if ((s->err = rill_writer_write(s->w, buf, n)) < 0 ||
		    (s->err = rill_writer_drain(s->w)) < 0)
			return 1;
	}
	return 0;
}

static int echo_n(void *arg)
{
	size_t total = *(size_t *)arg, got = 0;
	struct served seen = { 0 };
	struct tls_env e = { 0 };
	struct sender snd = { .total = total };
	static uint8_t buf[256 * 1024];
	rill_task *task;
	rill_reader *r;
	int result = -1;

	tls_env_start(&e, echo_all, &seen, NULL);
	tls_env_connect(&e, &r, &snd.w);
	cr_assert_eq(rill_spawn(rill_loop_current(), send_pattern, &snd, &task), 0);
	while (got < total) {
		ssize_t n = rill_reader_read(r, buf, sizeof(buf));

		cr_assert_gt(n, 0, "read at %zu of %zu: %s", got, total,
			     rill_strerror((int)n));
		check_pat(buf, got, (size_t)n);
		got += (size_t)n;
	}
	cr_assert_eq(rill_task_join(task, &result), 0);
	cr_assert_eq(result, 0, "sender: %s", rill_strerror(snd.err));
	close_and_free(snd.w);
	tls_env_wait_stop(&e);
	/* The server read a clean EOF: our close_notify came first. */
	cr_assert_eq(seen.calls, 1);
	cr_assert_eq(seen.last_read, 0, "server's last read: %s",
		     rill_strerror((int)seen.last_read));
	return 0;
}

static void run_echo(size_t n)
{
	run_task(echo_n, &n);
}

Test(tls_echo, zero_bytes_connect_and_close, .timeout = 30)
{
	run_echo(0);
}

Test(tls_echo, one_byte, .timeout = 30)
{
	run_echo(1);
}

Test(tls_echo, sixteen_kib, .timeout = 30)
{
	run_echo(16 * 1024);
}

Test(tls_echo, one_mib, .timeout = 30)
{
	run_echo(1024 * 1024);
}

Test(tls_echo, sixty_four_mib, .timeout = 30)
{
	run_echo(64 * 1024 * 1024);
}

/* ---- the server's close -------------------------------------------- */

/* Closes at once, having written what arg says (NULL: nothing). */
static int say_and_close(rill_reader *r, rill_writer *w, void *arg)
{
	(void)r;
	if (arg)
		rill_writer_write(w, arg, strlen(arg));
	rill_writer_close(w);
	return 0;
}

static int server_close_case(void *arg)
{
	const char *msg = arg;
	struct tls_env e = { 0 };
	rill_reader *r;
	rill_writer *w;
	rill_bytes all;
	ssize_t n;

	tls_env_start(&e, say_and_close, arg, NULL);
	tls_env_connect(&e, &r, &w);
	/* Everything, then a clean EOF: close_notify, not a bare TCP FIN
	 * (which read_all reports as RILL_ETLS_EOF). */
	n = rill_reader_read_all(r, &all);
	cr_assert_geq(n, 0, "read_all: %s (%s)", rill_strerror((int)n), rill_tls_last_error());
	cr_assert_eq((size_t)n, msg ? strlen(msg) : 0);
	if (msg)
		cr_assert_arr_eq(all.data, msg, strlen(msg));
	cr_assert(rill_reader_at_eof(r));
	close_and_free(w);
	tls_env_stop(&e);
	return 0;
}

Test(tls_echo, server_close_with_data_sends_close_notify, .timeout = 30)
{
	run_task(server_close_case, "bye\n");
}

Test(tls_echo, server_close_with_nothing_queued_sends_close_notify, .timeout = 30)
{
	run_task(server_close_case, NULL);
}

/* ---- many connections ---------------------------------------------- */

#define NCONNS 100

struct one {
	struct tls_env *e;
	int id, *ok;
};

/* Three lines through the echo server, on a connection of its own. */
static int one_client(void *arg)
{
	struct one *o = arg;
	char msg[64];
	rill_reader *r;
	rill_writer *w;
	int err = tls_connect(o->e->port, o->e->cctx, "localhost", &r, &w);

	if (err < 0)
		return err;
	snprintf(msg, sizeof(msg), "connection %d says hello\n", o->id);
	for (int i = 0; i < 3; i++) {
		if (echo_roundtrip(r, w, msg) != 0) {
			rill_writer_abort(w);
			rill_writer_free(w);
			return -EBADMSG;
		}
	}
	err = writer_done(w);
	if (err == 0)
		(*o->ok)++;
	return err;
}

TASK_TEST(tls_echo, hundred_concurrent_connections, .timeout = 30)
{
	struct tls_env e = { 0 };
	struct one ones[NCONNS];
	rill_task *tasks[NCONNS];
	int ok = 0;

	tls_env_start(&e, echo_lines, NULL, NULL);
	for (int i = 0; i < NCONNS; i++) {
		ones[i] = (struct one){ &e, i, &ok };
		cr_assert_eq(rill_spawn(rill_loop_current(), one_client, &ones[i], &tasks[i]), 0);
	}
	for (int i = 0; i < NCONNS; i++) {
		int result = -1;

		cr_assert_eq(rill_task_join(tasks[i], &result), 0);
		cr_assert_eq(result, 0, "connection %d: %s (%s)", i, rill_strerror(result),
			     rill_tls_last_error());
	}
	cr_assert_eq(ok, NCONNS);
	tls_env_stop(&e);
	return 0;
}

/* ---- extra info, write_eof ------------------------------------------ */

static void copy_str(char *dst, size_t cap, const void *src)
{
	snprintf(dst, cap, "%s", src ? (const char *)src : "(null)");
}

/* Records the server side's TLS facts, answers one line, closes. */
static int record_info(rill_reader *r, rill_writer *w, void *arg)
{
	struct seen *s = arg;
	rill_bytes line;
	SSL *ssl = (SSL *)rill_writer_get_extra_info(w, "ssl_object", NULL);

	s->calls++;
	copy_str(s->version, sizeof(s->version), rill_writer_get_extra_info(w, "version", NULL));
	copy_str(s->alpn, sizeof(s->alpn), rill_writer_get_extra_info(w, "alpn_protocol", NULL));
	copy_str(s->subject, sizeof(s->subject),
		 rill_writer_get_extra_info(w, "peercert_subject", NULL));
	s->peercert = rill_writer_get_extra_info(w, "peercert", NULL) != NULL;
	s->reused = ssl && SSL_session_reused(ssl);
	if (rill_reader_readline(r, &line) > 0)
		rill_writer_write(w, line.data, line.len);
	rill_writer_close(w);
	return 0;
}

static rill_tls_ctx *alpn_client(const char *const *protos, size_t n)
{
	rill_tls_options o = { .size = sizeof(rill_tls_options), .ca_file = tls_file("ca.pem"),
		.alpn = protos, .nalpn = n };
	rill_tls_ctx *ctx;

	cr_assert_eq(rill_tls_ctx_new_client(&o, &ctx), 0, "%s", rill_tls_last_error());
	return ctx;
}

TASK_TEST(tls_echo, extra_info_keys, .timeout = 30)
{
	static const char *const server_protos[] = { "h2", "http/1.1" };
	static const char *const client_protos[] = { "http/1.1", "spdy/1" };
	struct tls_env e = {
		.sctx = tls_server_ctx_opts("server", (rill_tls_options){
			.size = sizeof(rill_tls_options), .alpn = server_protos, .nalpn = 2 }),
		.cctx = alpn_client(client_protos, 2),
	};
	struct seen seen = { 0 };
	const struct sockaddr_in *peer;
	const char *cipher;
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	SSL *ssl;

	tls_env_start(&e, record_info, &seen, NULL);
	tls_env_connect(&e, &r, &w);
	cr_assert_str_eq(rill_writer_get_extra_info(w, "version", NULL), "TLSv1.3");
	cipher = rill_writer_get_extra_info(w, "cipher", NULL);
	cr_assert_not_null(cipher);
	cr_assert_eq(strncmp(cipher, "TLS_", 4), 0, "a TLS 1.3 suite: %s", cipher);
	cr_assert_str_eq(rill_writer_get_extra_info(w, "peercert_subject", NULL), "/CN=localhost");
	cr_assert_not_null(rill_writer_get_extra_info(w, "peercert", NULL));
	/* Both sides speak http/1.1, the only protocol in common. */
	cr_assert_str_eq(rill_writer_get_extra_info(w, "alpn_protocol", NULL), "http/1.1");
	cr_assert_eq(rill_writer_get_extra_info(w, "sslcontext", NULL), (const void *)e.cctx);
	ssl = (SSL *)rill_writer_get_extra_info(w, "ssl_object", NULL);
	cr_assert_not_null(ssl);
	cr_assert_str_eq(SSL_get_version(ssl), "TLSv1.3");
	cr_assert_str_eq(SSL_get_cipher_name(ssl), cipher);
	/* The transport's keys do not hide the socket's. */
	peer = rill_writer_get_extra_info(w, "peername", NULL);
	cr_assert_not_null(peer);
	cr_assert_eq(ntohs(peer->sin_port), e.port);
	cr_assert_null(rill_writer_get_extra_info(w, "no such key", NULL));
	/* TLS cannot half-close. */
	cr_assert_not(rill_writer_can_write_eof(w));
	cr_assert_eq(rill_writer_write_eof(w), -ENOTSUP);
	/* ...and the connection goes on working after that refusal. */
	cr_assert_eq(rill_writer_write(w, "info\n", 5), 0);
	cr_assert_eq(rill_reader_readline(r, &line), 5);
	cr_assert_arr_eq(line.data, "info\n", 5);
	close_and_free(w);
	tls_env_stop(&e);

	cr_assert_eq(seen.calls, 1);
	cr_assert_str_eq(seen.version, "TLSv1.3");
	cr_assert_str_eq(seen.alpn, "http/1.1");
	cr_assert_str_eq(seen.subject, "(null)", "no client certificate");
	cr_assert_not(seen.peercert);
	return 0;
}

TASK_TEST(tls_echo, alpn_without_agreement_is_null, .timeout = 30)
{
	static const char *const server_protos[] = { "h2" };
	static const char *const client_protos[] = { "http/1.1" };
	struct tls_env e = {
		.sctx = tls_server_ctx_opts("server", (rill_tls_options){
			.size = sizeof(rill_tls_options), .alpn = server_protos, .nalpn = 1 }),
		.cctx = alpn_client(client_protos, 1),
	};
	rill_tls_ctx *plain = tls_client_ctx("ca.pem");
	struct seen seen = { 0 };
	rill_reader *r;
	rill_writer *w;

	tls_env_start(&e, record_info, &seen, NULL);
	/* Nothing in common: the server does not answer ALPN at all. */
	tls_env_connect(&e, &r, &w);
	cr_assert_null(rill_writer_get_extra_info(w, "alpn_protocol", NULL));
	close_and_free(w);
	/* A client that offers nothing. */
	tls_connect_ok(e.port, plain, "localhost", &r, &w);
	cr_assert_null(rill_writer_get_extra_info(w, "alpn_protocol", NULL));
	close_and_free(w);
	tls_env_stop(&e);
	cr_assert_eq(seen.calls, 2);
	cr_assert_str_eq(seen.alpn, "(null)");
	rill_tls_ctx_free(plain);
	return 0;
}

/* ---- session resumption --------------------------------------------- */

/* One round trip on a new connection; whether the session was resumed.
 * The round trip matters: TLS 1.3 tickets come after the handshake. */
static bool round_trip(int port, rill_tls_ctx *ctx, const char *name)
{
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	SSL *ssl;
	bool reused;

	tls_connect_ok(port, ctx, name, &r, &w);
	ssl = (SSL *)rill_writer_get_extra_info(w, "ssl_object", NULL);
	reused = SSL_session_reused(ssl) == 1;
	cr_assert_eq(rill_writer_write(w, "ticket?\n", 8), 0);
	cr_assert_eq(rill_reader_readline(r, &line), 8);
	close_and_free(w);
	return reused;
}

TASK_TEST(tls_echo, client_session_resumption, .timeout = 30)
{
	struct tls_env e = { 0 };
	rill_tls_ctx *other = tls_client_ctx("ca.pem");
	struct seen seen = { 0 };

	tls_env_start(&e, record_info, &seen, NULL);
	cr_assert_not(round_trip(e.port, e.cctx, "localhost"), "a first connection is full");
	cr_assert_not(seen.reused);
	cr_assert(round_trip(e.port, e.cctx, "localhost"), "the same context and name resume");
	cr_assert(seen.reused, "the server agrees");
	cr_assert(round_trip(e.port, e.cctx, "localhost"), "and again");
	/* Sessions belong to a context: another one starts afresh. */
	cr_assert_not(round_trip(e.port, other, "localhost"));
	cr_assert_not(seen.reused);
	tls_env_stop(&e);
	cr_assert_eq(seen.calls, 4);
	rill_tls_ctx_free(other);
	return 0;
}

/* A server that verifies client certificates resumes sessions too (it
 * needs a session id context for that, or the resumption fails). */
TASK_TEST(tls_echo, resumption_with_client_certificates, .timeout = 30)
{
	struct tls_env e = { .sctx = tls_server_ctx_verifying(),
			     .cctx = tls_client_ctx_with_cert() };
	struct seen seen = { 0 };

	tls_env_start(&e, record_info, &seen, NULL);
	cr_assert_not(round_trip(e.port, e.cctx, "localhost"));
	cr_assert_str_eq(seen.subject, "/CN=rill-test-client");
	cr_assert(round_trip(e.port, e.cctx, "localhost"), "resumed (%s)", rill_tls_last_error());
	cr_assert(seen.reused);
	cr_assert_eq(seen.calls, 2);
	tls_env_stop(&e);
	return 0;
}

/* ---- truncation and back-pressure ----------------------------------- */

TASK_TEST(tls_echo, abort_is_a_truncation_not_an_eof, .timeout = 30)
{
	struct served seen = { .last_read = 1 };
	struct tls_env e = { 0 };
	rill_reader *r;
	rill_writer *w;

	/* The server reads until the connection ends: how it ends is what
	 * the test checks. */
	tls_env_start(&e, read_to_end, &seen, NULL);
	tls_env_connect(&e, &r, &w);
	cr_assert_eq(rill_writer_write(w, "some data", 9), 0);
	cr_assert_eq(rill_writer_drain(w), 0);
	rill_sleep_ms(20);
	/* abort(): no close_notify, a bare TCP close. */
	rill_writer_abort(w);
	rill_writer_free(w);
	for (int i = 0; i < 200 && seen.last_read > 0; i++)
		rill_sleep_ms(5);
	cr_assert_eq(seen.last_read, RILL_ETLS_EOF, "the server read %s",
		     rill_strerror((int)seen.last_read));
	tls_env_stop(&e);
	return 0;
}

/* Well above what loopback sockets buffer (a few MiB). */
#define FLOOD (32 * 1024 * 1024)

struct flood {
	size_t drained;		/* bytes written and drained so far */
	int err;
};

/* Writes FLOOD bytes of the pattern, draining after each 64 KiB. */
static int flood_writer(rill_reader *r, rill_writer *w, void *arg)
{
	struct flood *f = arg;
	static uint8_t buf[64 * 1024];

	(void)r;
	for (size_t off = 0; off < FLOOD; off += sizeof(buf)) {
		fill_pat(buf, off, sizeof(buf));
		if ((f->err = rill_writer_write(w, buf, sizeof(buf))) < 0 ||
		    (f->err = rill_writer_drain(w)) < 0)
			break;
		f->drained = off + sizeof(buf);
	}
	rill_writer_close(w);
	return 0;
}

TASK_TEST(tls_echo, a_reader_that_does_not_read_holds_the_writer, .timeout = 30)
{
	struct flood f = { 0 };
	struct tls_env e = { 0 };
	static uint8_t buf[256 * 1024];
	size_t got = 0;
	rill_reader *r;
	rill_writer *w;

	tls_env_start(&e, flood_writer, &f, NULL);
	tls_env_connect(&e, &r, &w);
	/* Not reading: the reader stops receiving past twice its limit, the
	 * sockets fill, and the server waits in drain(). */
	rill_sleep_ms(300);
	cr_assert_lt(rill_reader_buffered(r), 1024 * 1024, "buffered %zu",
		     rill_reader_buffered(r));
	cr_assert_lt(f.drained, FLOOD / 2, "the server got %zu bytes out", f.drained);
	/* Reading lets everything through, in order, then a clean EOF. */
	for (;;) {
		ssize_t n = rill_reader_read(r, buf, sizeof(buf));

		cr_assert_geq(n, 0, "read at %zu: %s", got, rill_strerror((int)n));
		if (n == 0)
			break;
		check_pat(buf, got, (size_t)n);
		got += (size_t)n;
	}
	cr_assert_eq(got, FLOOD);
	cr_assert_eq(f.err, 0, "%s", rill_strerror(f.err));
	close_and_free(w);
	tls_env_stop(&e);
	return 0;
}
