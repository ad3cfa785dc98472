/* SPDX-License-Identifier: MIT */
/* TLS verification: unknown CA, expired, wrong host, "" server_hostname, the default context with SSL_CERT_FILE, client certificates, argument errors, the peer's alert, and one bad connection beside a good one. */
#include "tests/tls_helpers.h"

/* ---- a server, and what it saw -------------------------------------- */

struct seen {
	int calls;
	char subject[128];
};

static char logged[2048];

static void capture_log(int level, const char *msg, void *arg)
{
	size_t n = strlen(logged);

	(void)level;
	(void)arg;
	snprintf(logged + n, sizeof(logged) - n, "%s\n", msg);
}

/* Echoes lines until EOF; counts the calls in seen (if not NULL) and
 * notes the client certificate's subject there. */
static int echo_seen(rill_reader *r, rill_writer *w, void *arg)
{
	struct seen *s = arg;
	const char *subject = rill_writer_get_extra_info(w, "peercert_subject", NULL);

	if (s) {
		s->calls++;
		snprintf(s->subject, sizeof(s->subject), "%s", subject ? subject : "(none)");
	}
	return echo_lines(r, w, NULL);
}

/* ---- one failing connection ------------------------------------------ */

struct bad_case {
	const char *server_cert;	/* the server's NAME.pem */
	const char *ca;			/* what the client trusts */
	const char *name;		/* server_hostname */
	int want;			/* open_connection's result */
	const char *reason;		/* in rill_tls_last_error() */
};

static int bad_connection(void *arg)
{
	const struct bad_case *bc = arg;
	struct tls_env e = { .sctx = tls_server_ctx(bc->server_cert),
			     .cctx = tls_client_ctx(bc->ca) };
	struct seen seen = { 0 };
	rill_reader *r = NULL;
	rill_writer *w = NULL;
	int err;

	tls_env_start(&e, echo_seen, &seen, NULL);
	rill_set_log_handler(capture_log, NULL);
	err = tls_connect(e.port, e.cctx, bc->name, &r, &w);
	cr_assert_eq(err, bc->want, "got %s, want %s (%s)", rill_strerror(err),
		     rill_strerror(bc->want), rill_tls_last_error());
	cr_assert_null(w, "no writer on failure");
	cr_assert_neq(*rill_tls_last_error(), '\0');
	cr_assert(strstr(rill_tls_last_error(), bc->reason), "last error: %s",
		  rill_tls_last_error());
	cr_assert(strstr(rill_error_detail(), bc->reason), "detail: %s", rill_error_detail());
	/* The server got our alert, not a bare EOF, and never ran the
	 * callback. */
	for (int i = 0; i < 200 && !strstr(logged, "TLS handshake failed"); i++)
		rill_sleep_ms(5);
	cr_assert(strstr(logged, rill_strerror(RILL_ETLS_ALERT)), "server logged: %s", logged);
	cr_assert_eq(seen.calls, 0);
	rill_set_log_handler(NULL, NULL);
	tls_env_stop(&e);
	return 0;
}

/* Runs bad_connection on the case given by its fields. */
static void expect_failure(const char *server_cert, const char *ca, const char *name,
			   int want, const char *reason)
{
	struct bad_case bc = { server_cert, ca, name, want, reason };

	run_task(bad_connection, &bc);
}

Test(tls_verify, unknown_ca, .timeout = 30)
{
	expect_failure("server", "other-ca.pem", "localhost", RILL_ETLS_VERIFY,
		       "unable to get local issuer certificate");
}

Test(tls_verify, expired_certificate, .timeout = 30)
{
	expect_failure("expired", "ca.pem", "localhost", RILL_ETLS_VERIFY,
		       "certificate has expired");
}

Test(tls_verify, wrong_host, .timeout = 30)
{
	expect_failure("wronghost", "ca.pem", "localhost", RILL_ETLS_HOSTNAME,
		       "hostname mismatch");
}

Test(tls_verify, wrong_ip_address, .timeout = 30)
{
	/* NULL: the host itself, 127.0.0.1, is the name to check. */
	expect_failure("wronghost", "ca.pem", NULL, RILL_ETLS_HOSTNAME,
		       "IP address mismatch");
}

Test(tls_verify, empty_server_hostname_still_checks_the_chain, .timeout = 30)
{
	expect_failure("wronghost", "other-ca.pem", "", RILL_ETLS_VERIFY,
		       "unable to get local issuer certificate");
}

/* ---- connections that succeed --------------------------------------- */

struct good_case {
	const char *server_cert;
	const char *name;
};

static int good_connection(void *arg)
{
	const struct good_case *gc = arg;
	struct tls_env e = { .sctx = tls_server_ctx(gc->server_cert) };
	rill_reader *r;
	rill_writer *w;

	tls_env_start(&e, echo_seen, NULL, NULL);
	tls_connect_ok(e.port, e.cctx, gc->name, &r, &w);
	expect_echo(r, w, "verified\n");
	close_and_free(w);
	tls_env_stop(&e);
	return 0;
}

/* Runs good_connection on the case given by its fields. */
static void expect_success(const char *server_cert, const char *name)
{
	struct good_case gc = { server_cert, name };

	run_task(good_connection, &gc);
}

Test(tls_verify, empty_server_hostname_skips_the_name_check, .timeout = 30)
{
	expect_success("wronghost", "");
}

Test(tls_verify, ip_address_in_the_certificate, .timeout = 30)
{
	/* No server_hostname: 127.0.0.1 is checked against the IP SAN. */
	expect_success("server", NULL);
}

Test(tls_verify, matching_host_name, .timeout = 30)
{
	expect_success("server", "localhost");
}

/* ---- the default context (ssl = true) -------------------------------- */

/* ssl = true against our server: want is the result. The default context
 * is made once per process, on first use; every test runs in a process of
 * its own, so each one sets the environment first. */
static int default_context(void *arg)
{
	int want = *(int *)arg;
	rill_tls_ctx *sctx = tls_server_ctx("server");
	rill_server *srv = tls_serve(echo_seen, NULL, sctx, NULL);
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1, .ssl = true,
		.family = AF_INET };
	rill_reader *r;
	rill_writer *w;
	int err = rill_open_connection("localhost", rill_server_port(srv), &o, &r, &w);

	cr_assert_eq(err, want, "got %s, want %s (%s)", rill_strerror(err),
		     rill_strerror(want), rill_tls_last_error());
	if (err == 0) {
		cr_assert_not_null(rill_writer_get_extra_info(w, "sslcontext", NULL));
		expect_echo(r, w, "default context\n");
		close_and_free(w);
	}
	rill_server_free(srv);
	rill_tls_ctx_free(sctx);
	return 0;
}

Test(tls_verify, default_context_honours_ssl_cert_file, .timeout = 30)
{
	int want = 0;

	cr_assert_eq(setenv("SSL_CERT_FILE", tls_file("ca.pem"), 1), 0);
	unsetenv("SSL_CERT_DIR");
	run_task(default_context, &want);
}

Test(tls_verify, default_context_does_not_trust_the_test_ca, .timeout = 30)
{
	int want = RILL_ETLS_VERIFY;

	/* The system store, which has never heard of our throwaway CA. */
	unsetenv("SSL_CERT_FILE");
	unsetenv("SSL_CERT_DIR");
	run_task(default_context, &want);
}

/* ---- client certificates --------------------------------------------- */

TASK_TEST(tls_verify, client_certificate_required, .timeout = 30)
{
	struct tls_env e = { .sctx = tls_server_ctx_verifying(),
			     .cctx = tls_client_ctx_with_cert() };
	rill_tls_ctx *anon = tls_client_ctx("ca.pem");
	struct seen seen = { 0 };
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	ssize_t n;
	int err;

	tls_env_start(&e, echo_seen, &seen, NULL);
	/* Without a certificate: TLS 1.3 finishes the client's handshake
	 * first, so the server's refusal (an alert) comes with the first
	 * read. */
	err = tls_connect(e.port, anon, "localhost", &r, &w);
	if (err == 0) {
		rill_writer_write(w, "let me in\n", 10);
		n = rill_reader_readline(r, &line);
		cr_assert_eq(n, RILL_ETLS_ALERT, "read: %s", rill_strerror((int)n));
		rill_writer_abort(w);
		rill_writer_free(w);
	} else {
		cr_assert_eq(err, RILL_ETLS_ALERT, "%s", rill_strerror(err));
	}
	cr_assert_eq(seen.calls, 0, "the callback never ran");
	/* With one: served, and the server sees who we are. */
	tls_env_connect(&e, &r, &w);
	expect_echo(r, w, "certified\n");
	close_and_free(w);
	cr_assert_eq(seen.calls, 1);
	cr_assert_str_eq(seen.subject, "/CN=rill-test-client");
	tls_env_stop(&e);
	rill_tls_ctx_free(anon);
	return 0;
}

/* ---- argument errors ------------------------------------------------- */

TASK_TEST(tls_verify, argument_errors, .timeout = 30)
{
	rill_tls_ctx *sctx = tls_server_ctx("server");
	rill_server *srv = tls_serve(echo_seen, NULL, sctx, NULL);
	int port = rill_server_port(srv);
	rill_reader *r;
	rill_writer *w;
	rill_open_options o;

	/* server_hostname means nothing without ssl. */
	o = (rill_open_options){ .size = sizeof(rill_open_options), .sock = -1,
		.server_hostname = "localhost" };
	cr_assert_eq(rill_open_connection("127.0.0.1", port, &o, &r, &w), -EINVAL);
	/* A server context cannot make a client connection. */
	o = (rill_open_options){ .size = sizeof(rill_open_options), .sock = -1,
		.ssl_context = sctx };
	cr_assert_eq(rill_open_connection("127.0.0.1", port, &o, &r, &w), -EINVAL);
	cr_assert_neq(*rill_tls_last_error(), '\0');

	/* sock= with ssl: no host to check, so server_hostname is needed. */
	o = (rill_open_options){ .size = sizeof(rill_open_options), .sock = tcp_client(port),
		.ssl = true };
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &r, &w), -EINVAL);
	o.ssl = false;
	o.ssl_context = tls_client_ctx("ca.pem");
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &r, &w), -EINVAL);
	/* ...and with it, TLS runs over the adopted socket. */
	o.server_hostname = "localhost";
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &r, &w), 0, "%s", rill_tls_last_error());
	expect_echo(r, w, "adopted\n");
	close_and_free(w);
	rill_tls_ctx_free(o.ssl_context);
	rill_server_free(srv);
	rill_tls_ctx_free(sctx);
	return 0;
}

Test(tls_verify, context_errors, .timeout = 30)
{
	rill_tls_options o = { .size = sizeof(rill_tls_options), .ca_file = "/nonexistent/ca.pem" };
	rill_tls_ctx *ctx = NULL;

	cr_assert_eq(rill_tls_ctx_new_client(&o, &ctx), RILL_ETLS);
	cr_assert_null(ctx);
	cr_assert_neq(*rill_tls_last_error(), '\0');
	o = (rill_tls_options){ .size = sizeof(rill_tls_options),
		.cert_file = tls_file("server.pem") };
	cr_assert_eq(rill_tls_ctx_new_server(&o, &ctx), -EINVAL, "no key");
	cr_assert_eq(rill_tls_ctx_new_server(NULL, &ctx), -EINVAL);
	/* A key that is not the certificate's. */
	o = (rill_tls_options){ .size = sizeof(rill_tls_options),
		.cert_file = tls_file("server.pem"),
				.key_file = tls_file("client.key") };
	cr_assert_eq(rill_tls_ctx_new_server(&o, &ctx), RILL_ETLS);
	cr_assert_neq(*rill_tls_last_error(), '\0');
	cr_assert_null(ctx);
}

/* ---- isolation ------------------------------------------------------- */

/* A client that trusts another CA; what its connect gave. */
struct bad_client {
	int port;
	rill_tls_ctx *ctx;
	int err;
};

static int bad_client(void *arg)
{
	struct bad_client *b = arg;
	rill_reader *r;
	rill_writer *w;

	b->err = tls_connect(b->port, b->ctx, "localhost", &r, &w);
	return 0;
}

TASK_TEST(tls_verify, one_failure_leaves_other_connections_alone, .timeout = 30)
{
	struct tls_env e = { 0 };
	struct seen seen = { 0 };
	struct bad_client b = { .ctx = tls_client_ctx("other-ca.pem") };
	rill_reader *r;
	rill_writer *w;
	rill_task *t;

	tls_env_start(&e, echo_seen, &seen, NULL);
	b.port = e.port;
	tls_env_connect(&e, &r, &w);
	/* The bad one fails while the good one is mid-conversation. */
	cr_assert_eq(rill_spawn(rill_loop_current(), bad_client, &b, &t), 0);
	for (int i = 0; i < 50 && !rill_task_done(t); i++) {
		char msg[32];

		snprintf(msg, sizeof(msg), "still here %d\n", i);
		expect_echo(r, w, msg);
	}
	cr_assert_eq(rill_task_join(t, NULL), 0);
	cr_assert_eq(b.err, RILL_ETLS_VERIFY, "%s", rill_strerror(b.err));
	expect_echo(r, w, "after the failure\n");
	close_and_free(w);
	/* And the server goes on accepting. */
	tls_env_connect(&e, &r, &w);
	expect_echo(r, w, "next\n");
	close_and_free(w);
	cr_assert_eq(seen.calls, 2);
	tls_env_stop(&e);
	rill_tls_ctx_free(b.ctx);
	return 0;
}
