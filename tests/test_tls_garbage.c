/* SPDX-License-Identifier: MIT */
/* Garbage at a rill TLS server: random bytes, truncated and oversized records, plain HTTP, a refused renegotiation, bad records after the handshake; each connection fails alone with a clear error while a good client keeps being served. */
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "tests/tls_helpers.h"

#define HANDSHAKE_TIMEOUT (1000 * MS)

/* ---- the server ------------------------------------------------------ */

/* What the server said about the connections that failed. */
struct verdicts {
	int handshake_failures;
	int last_handshake;		/* RILL_ETLS* code of the last one */
	char last_reason[256];		/* its OpenSSL reason */
	int ended;			/* handlers that returned */
	ssize_t last_end;		/* how the last one's reading ended */
	char end_reason[256];
};

static struct verdicts v;

/* client_task logs "TLS handshake failed: <rill_strerror>" on the loop's
 * thread right after the failure: the code is found from the message and
 * OpenSSL's reason is still this thread's last TLS error. */
static void log_hook(int level, const char *msg, void *arg)
{
	static const int codes[] = { RILL_ETLS, RILL_ETLS_VERIFY, RILL_ETLS_HOSTNAME,
				     RILL_ETLS_ALERT, RILL_ETLS_EOF,
				     RILL_ETLS_HANDSHAKE_TIMEOUT, -ECONNRESET };
	const char *p = strstr(msg, "TLS handshake failed: ");

	(void)level;
	(void)arg;
	if (!p)
		return;
	p += strlen("TLS handshake failed: ");
	v.last_handshake = 1;
	for (size_t i = 0; i < sizeof(codes) / sizeof(*codes); i++)
		if (!strcmp(p, rill_strerror(codes[i])))
			v.last_handshake = codes[i];
	snprintf(v.last_reason, sizeof(v.last_reason), "%s", rill_tls_last_error());
	v.handshake_failures++;
}

/* Echoes lines; notes how the reading ended, and why, in v. */
static int echo_noted(rill_reader *r, rill_writer *w, void *arg)
{
	ssize_t n = echo_each_line(r, w);

	(void)arg;
	v.last_end = n;
	snprintf(v.end_reason, sizeof(v.end_reason), "%s", n < 0 ? rill_tls_last_error() : "");
	v.ended++;
	rill_writer_close(w);
	return 0;
}

/* ---- raw clients, on a thread of their own -------------------------- */

struct raw {
	int port;
	const void *data;
	size_t len;
	bool shut_wr;		/* half-close after sending */
	bool plain_tls;		/* handshake with OpenSSL first, then send data raw */
	/* results */
	unsigned char got[64];	/* the first bytes the server sent back */
	size_t ngot;
	bool closed;		/* the server ended the connection */
	char client_error[160];
	char client_saw[160];	/* after a handshake: how OpenSSL's reading ended */
	atomic_bool done;
};

/* tcp_connect, with reads that give up after 5 s. */
static int raw_connect(int port)
{
	struct timeval tv = { .tv_sec = 5 };
	int fd = tcp_connect(port);

	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

/* A real TLS 1.3 handshake and one echoed line, by OpenSSL on fd. */
static SSL *openssl_handshake(struct raw *rw, int fd, SSL_CTX **ctxp)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = ctx ? SSL_new(ctx) : NULL;
	char buf[16];

	*ctxp = ctx;
	if (!ssl || SSL_set_fd(ssl, fd) != 1 || SSL_connect(ssl) != 1 ||
	    SSL_write(ssl, "hello\n", 6) != 6 || SSL_read(ssl, buf, sizeof(buf)) != 6) {
		snprintf(rw->client_error, sizeof(rw->client_error), "handshake: %s",
			 ERR_reason_error_string(ERR_get_error()));
		SSL_free(ssl);
		return NULL;
	}
	return ssl;
}

static void *raw_thread(void *arg)
{
	struct raw *rw = arg;
	int fd = raw_connect(rw->port);
	SSL_CTX *ctx = NULL;
	SSL *ssl = NULL;
	ssize_t n;

	if (fd < 0)
		goto out;
	if (rw->plain_tls && !(ssl = openssl_handshake(rw, fd, &ctx)))
		goto out;
	if (rw->len && send(fd, rw->data, rw->len, MSG_NOSIGNAL) != (ssize_t)rw->len)
		goto out;
	if (rw->shut_wr)
		shutdown(fd, SHUT_WR);
	/* After a handshake, OpenSSL reads what comes back: the server's
	 * alert, if it sent one, is the reason it gives. */
	if (ssl) {
		char buf[256];

		ERR_clear_error();
		while (SSL_read(ssl, buf, sizeof(buf)) > 0)
			;
		snprintf(rw->client_saw, sizeof(rw->client_saw), "%s",
			 ERR_peek_last_error() ? ERR_reason_error_string(ERR_peek_last_error())
					       : "EOF");
	}
	/* Whatever comes back (an alert, for one), until the server closes. */
	while ((n = recv(fd, rw->got + rw->ngot, sizeof(rw->got) - rw->ngot, 0)) > 0)
		if ((rw->ngot += (size_t)n) == sizeof(rw->got))
			rw->ngot = sizeof(rw->got) / 2;	/* keep reading, keep the start */
	rw->closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
out:
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	if (fd >= 0)
		close(fd);
	atomic_store(&rw->done, true);
	return NULL;
}

/* Runs the raw client while the loop goes on serving. */
static void raw_run(struct raw *rw)
{
	pthread_t t;

	cr_assert_eq(pthread_create(&t, NULL, raw_thread, rw), 0);
	for (int i = 0; i < 1000 && !atomic_load(&rw->done); i++)
		rill_sleep_ms(10);
	cr_assert(atomic_load(&rw->done), "the raw client hangs");
	pthread_join(t, NULL);
}

/* A ClientHello as OpenSSL writes it, from a memory BIO. */
static size_t client_hello(unsigned char *buf, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	int n;

	SSL_set_bio(ssl, rb, wb);
	SSL_set_tlsext_host_name(ssl, "localhost");
	cr_assert_eq(SSL_connect(ssl), -1);
	n = BIO_read(wb, buf, (int)cap);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	cr_assert_gt(n, 100);
	return (size_t)n;
}

/* ---- the good client ------------------------------------------------- */

static void good_roundtrip(rill_reader *r, rill_writer *w, const char *after)
{
	rill_bytes line;
	char msg[64];
	int len = snprintf(msg, sizeof(msg), "still served after %s\n", after);
	ssize_t n;

	cr_assert_eq(rill_writer_write(w, msg, (size_t)len), 0);
	n = rill_reader_readline(r, &line);
	cr_assert_eq(n, len, "good client after %s: %s", after, rill_err_name((int)n));
	cr_assert_arr_eq(line.data, msg, (size_t)len);
}

/* ---- the cases ------------------------------------------------------- */

struct garbage {
	const char *name;
	struct raw raw;
	bool after_handshake;	/* fails in the handler, not the handshake */
	int want;		/* the code, or 0: any RILL_ETLS* */
	const char *reason;	/* a word OpenSSL's reason must have, or NULL */
	bool alert;		/* the server must answer with an alert record */
};

static bool is_tls_error(int code)
{
	return code <= RILL_ETLS && code >= RILL_ETLS_SHUTDOWN_TIMEOUT;
}

/* Waits until the server has given its verdict on the case's connection. */
static void await_verdict(struct garbage *g, int failures, int ended)
{
	for (int i = 0; i < 500; i++) {
		if (g->after_handshake ? v.ended > ended : v.handshake_failures > failures)
			return;
		rill_sleep_ms(10);
	}
	cr_assert_fail("%s: the server never failed the connection", g->name);
}

static void check_case(struct garbage *g)
{
	int code = g->after_handshake ? (int)v.last_end : v.last_handshake;
	const char *reason = g->after_handshake ? v.end_reason : v.last_reason;

	printf("tls garbage: %-29s -> %s (%s); the client saw %s\n", g->name,
	       rill_err_name(code), reason, g->raw.plain_tls ? g->raw.client_saw :
	       g->raw.ngot && g->raw.got[0] == 0x15 ? "an alert" :
	       g->raw.ngot ? "records" : "the connection close");
	cr_assert(is_tls_error(code) || (g->want && code == g->want), "%s: %s", g->name,
		  rill_err_name(code));
	if (g->want)
		cr_assert_eq(code, g->want, "%s: %s", g->name, rill_err_name(code));
	if (g->reason)
		cr_assert_not_null(strstr(reason, g->reason), "%s: reason %s", g->name, reason);
	if (g->alert && g->raw.plain_tls)
		cr_assert_not_null(strstr(g->raw.client_saw, "alert"),
				   "%s: the client saw %s", g->name, g->raw.client_saw);
	else if (g->alert)
		cr_assert(g->raw.ngot >= 7 && g->raw.got[0] == 0x15,
			  "%s: no alert record came back", g->name);
	cr_assert(g->raw.closed, "%s: the server kept the connection", g->name);
	cr_assert_str_empty(g->raw.client_error, "%s", g->raw.client_error);
}

TASK_TEST(tls_garbage, each_bad_connection_fails_alone, .timeout = 60)
{
	static unsigned char random_bytes[4096], hello[2048], oversized[64],
		bad_record[64];
	static const char http[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	struct tls_env e = { 0 };
	size_t nhello = client_hello(hello, sizeof(hello));
	uint32_t seed = 2463534242u;
	rill_reader *r;
	rill_writer *w;

	for (size_t i = 0; i < sizeof(random_bytes); i++)
		random_bytes[i] = (unsigned char)xorshift32(&seed);
	/* A handshake record claiming 20480 bytes: more than 2^14 + 2048. */
	memcpy(oversized, "\x16\x03\x01\x50\x00\x01\x00\x4f\xfc\x03\x03", 11);
	/* An application data record that decrypts to nothing good. */
	memcpy(bad_record, "\x17\x03\x03\x00\x30", 5);
	memcpy(bad_record + 5, random_bytes, 48);
	struct garbage cases[] = {
		{ .name = "random bytes", .raw = { .data = random_bytes,
			.len = sizeof(random_bytes) } },
		{ .name = "plain HTTP request", .raw = { .data = http, .len = sizeof(http) - 1 },
		  .reason = "http request" },
		{ .name = "oversized record", .raw = { .data = oversized,
			.len = sizeof(oversized) },
		  .alert = true },
		/* The peer hung up in the handshake: asyncio's ConnectionResetError. */
		{ .name = "truncated hello, then FIN", .raw = { .data = hello, .len = nhello / 2,
						 .shut_wr = true }, .want = -ECONNRESET },
		{ .name = "truncated hello, then silence", .raw = { .data = hello,
			.len = nhello - 1 },
		  .want = RILL_ETLS_HANDSHAKE_TIMEOUT },
		{ .name = "bad record after handshake", .raw = { .data = bad_record, .len = 53,
						  .plain_tls = true },
		  .after_handshake = true, .reason = "bad record mac", .alert = true },
		{ .name = "garbage after handshake", .raw = { .data = random_bytes, .len = 1000,
					       .plain_tls = true },
		  .after_handshake = true, .alert = true },
	};

	rill_set_log_handler(log_hook, NULL);
	tls_env_start(&e, echo_noted, NULL,
		      RILL_SERVER_OPTIONS(.ssl_handshake_timeout = HANDSHAKE_TIMEOUT));
	tls_env_connect(&e, &r, &w);
	good_roundtrip(r, w, "the start");
	for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
		struct garbage *g = &cases[i];
		int failures = v.handshake_failures, ended = v.ended;

		g->raw.port = e.port;
		raw_run(&g->raw);
		await_verdict(g, failures, ended);
		check_case(g);
		good_roundtrip(r, w, g->name);
	}
	close_and_free(w);
	tls_env_wait_stop(&e);
	return 0;
}

/* ---- renegotiation --------------------------------------------------
 *
 * rill's contexts refuse renegotiation (SSL_OP_NO_RENEGOTIATION). s_client
 * over TLS 1.2 asks for one with an "R" line: the server must refuse it
 * and either go on with the connection or fail it alone.
 */

struct reneg {
	char target[32];
	char out[16384];
	int code;
	atomic_bool done;
};

/* s_client takes a command letter only at the start of what one read()
 * of its stdin brings: each line goes on its own, after the last had its
 * effect. */
static void *reneg_thread(void *arg)
{
	struct reneg *rn = arg;
	char *argv[] = { "openssl", "s_client", "-connect", rn->target, "-tls1_2",
			 "-CAfile", (char *)tls_file("ca.pem"), "-servername", "localhost",
			 NULL };
	struct peer p;
	size_t n;

	peer_start(&p, argv, true);
	if (write(p.in, "before\n", 7) == 7) {
		n = peer_read(&p, rn->out, sizeof(rn->out), "before\n", 10000);
		if (write(p.in, "R\n", 2) == 2) {
			usleep(300 * 1000);
			if (write(p.in, "after\n", 6) < 0)
				fprintf(stderr, "s_client gone before the last line\n");
		}
		peer_read(&p, rn->out + n, sizeof(rn->out) - n, NULL, 5000);
	}
	rn->code = peer_wait(&p, 5000);
	atomic_store(&rn->done, true);
	return NULL;
}

TASK_TEST(tls_garbage, renegotiation_is_refused_and_fails_alone, .timeout = 60)
{
	struct tls_env e = { 0 };
	static struct reneg rn;
	rill_reader *r;
	rill_writer *w;
	pthread_t t;
	int ended = v.ended;

	signal(SIGPIPE, SIG_IGN);	/* s_client may be gone before "after" */
	rill_set_log_handler(log_hook, NULL);
	tls_env_start(&e, echo_noted, NULL, NULL);
	snprintf(rn.target, sizeof(rn.target), "127.0.0.1:%d", e.port);
	tls_env_connect(&e, &r, &w);
	cr_assert_eq(pthread_create(&t, NULL, reneg_thread, &rn), 0);
	for (int i = 0; i < 2500 && !atomic_load(&rn.done); i++)
		rill_sleep_ms(10);
	cr_assert(atomic_load(&rn.done), "s_client did not finish");
	pthread_join(t, NULL);
	for (int i = 0; i < 300 && v.ended == ended; i++)
		rill_sleep_ms(10);
	printf("tls garbage: %-29s -> %s (%s); s_client %s\n", "renegotiation (TLS 1.2)",
	       rill_err_name((int)v.last_end), v.end_reason,
	       strstr(rn.out, "no renegotiation") ? "was told no renegotiation"
						  : "saw no refusal");
	cr_assert_not_null(strstr(rn.out, "RENEGOTIATING"), "s_client said: %s", rn.out);
	cr_assert_not_null(strstr(rn.out, "no renegotiation"), "s_client said: %s", rn.out);
	cr_assert_null(strstr(rn.out, "after\n"), "the connection went on after R");
	cr_assert_gt(v.ended, ended, "the connection did not end");
	cr_assert(is_tls_error((int)v.last_end), "handler read ended with %s",
		  rill_err_name((int)v.last_end));
	good_roundtrip(r, w, "renegotiation");
	close_and_free(w);
	tls_env_wait_stop(&e);
	return 0;
}
