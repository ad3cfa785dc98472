/* SPDX-License-Identifier: MIT */
/* TLS against other implementations: rill's client with openssl s_server (TLS 1.3 and 1.2, client certificates), openssl s_client and curl with rill's server, client-certificate verification with s_client. */
#include "tests/tls_helpers.h"

/* ---- rill's client, openssl s_server -------------------------------- */

/* Starts `openssl s_server -rev` (each line comes back reversed) on a
 * free port of 127.0.0.1 with extra arguments; returns the port. */
static int s_server_start(struct peer *p, const char *const *extra, size_t nextra)
{
	char *argv[32] = { "openssl", "s_server", "-accept", "127.0.0.1:0", "-rev",
			   "-naccept", "1", "-cert", (char *)tls_file("server.pem"),
			   "-key", (char *)tls_file("server.key") };
	size_t argc = 11;
	char line[4096], *at;
	int port = 0;

	for (size_t i = 0; i < nextra; i++)
		argv[argc++] = (char *)extra[i];
	argv[argc] = NULL;
	peer_start(p, argv, true);
	peer_read(p, line, sizeof(line), "\n", 10000);
	for (int i = 0; i < 5 && !strstr(line, "ACCEPT"); i++)
		peer_read(p, line, sizeof(line), "\n", 10000);
	at = strstr(line, "ACCEPT 127.0.0.1:");
	cr_assert_not_null(at, "s_server said: %s", line);
	port = atoi(at + strlen("ACCEPT 127.0.0.1:"));
	cr_assert_gt(port, 0);
	return port;
}

struct s_server_case {
	const char *const *extra;
	size_t nextra;
	const char *version;		/* what extra info must say */
	bool client_cert;
};

static int client_vs_s_server(void *arg)
{
	const struct s_server_case *sc = arg;
	rill_tls_ctx *ctx = sc->client_cert ? tls_client_ctx_with_cert() : tls_client_ctx("ca.pem");
	struct peer p;
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	static char big[12000];	/* s_server -rev turns 16 KiB at most */
	int port = s_server_start(&p, sc->extra, sc->nextra);
	ssize_t n;

	tls_connect_ok(port, ctx, "localhost", &r, &w);
	cr_assert_str_eq(rill_writer_get_extra_info(w, "version", NULL), sc->version);
	cr_assert_str_eq(rill_writer_get_extra_info(w, "peercert_subject", NULL), "/CN=localhost");
	cr_assert_eq(rill_writer_write(w, "hello, s_server\n", 16), 0);
	n = rill_reader_readline(r, &line);
	cr_assert_eq(n, 16, "readline: %s (%s)", rill_strerror((int)n), rill_tls_last_error());
	cr_assert_arr_eq(line.data, "revres_s ,olleh\n", 16);
	/* A line written in twelve pieces comes back whole. */
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		big[i] = (char)('a' + i % 26);
	big[sizeof(big) - 1] = '\n';
	for (size_t off = 0; off < sizeof(big); off += 1000)
		cr_assert_eq(rill_writer_write(w, big + off, 1000), 0);
	n = rill_reader_readline(r, &line);
	cr_assert_eq(n, (ssize_t)sizeof(big), "readline: %zd", n);
	for (size_t i = 0; i < sizeof(big) - 1; i++)
		cr_assert_eq(((const char *)line.data)[i], big[sizeof(big) - 2 - i], "byte %zu", i);
	cr_assert_eq(((const char *)line.data)[sizeof(big) - 1], '\n');
	close_and_free(w);
	/* -naccept 1: it ends after our connection. */
	cr_assert_eq(peer_wait(&p, 5000), 0);
	rill_tls_ctx_free(ctx);
	return 0;
}

/* Runs client_vs_s_server on the case given by its fields. */
static void with_s_server(const char *const *extra, size_t nextra, const char *version,
			  bool client_cert)
{
	struct s_server_case sc = { extra, nextra, version, client_cert };

	run_task(client_vs_s_server, &sc);
}

Test(tls_peers, rill_client_with_s_server_tls13, .timeout = 30)
{
	with_s_server(NULL, 0, "TLSv1.3", false);
}

Test(tls_peers, rill_client_with_s_server_tls12, .timeout = 30)
{
	static const char *const extra[] = { "-tls1_2" };

	with_s_server(extra, 1, "TLSv1.2", false);
}

Test(tls_peers, rill_client_certificate_with_s_server, .timeout = 30)
{
	char ca[PATH_MAX];
	const char *extra[] = { "-Verify", "1", "-verify_return_error", "-CAfile", ca };

	snprintf(ca, sizeof(ca), "%s", tls_file("ca.pem"));
	with_s_server(extra, 5, "TLSv1.3", true);
}

/* ---- openssl s_client, rill's server -------------------------------- */

struct seen {
	int calls;
	char subject[128], alpn[32], request[256];
};

/* Answers one line with "echo: LINE" and closes (close_notify). */
static int answer_once(rill_reader *r, rill_writer *w, void *arg)
{
	struct seen *s = arg;
	const char *subject = rill_writer_get_extra_info(w, "peercert_subject", NULL);
	rill_bytes line;

	s->calls++;
	snprintf(s->subject, sizeof(s->subject), "%s", subject ? subject : "(none)");
	if (rill_reader_readline(r, &line) > 0) {
		rill_writer_write(w, "echo: ", 6);
		rill_writer_write(w, line.data, line.len);
	}
	rill_writer_close(w);
	return 0;
}

struct s_client_case {
	const char *proto;	/* "-tls1_3", "-tls1_2" */
	bool verify_client;
	bool send_cert;
};

static void s_client_argv(char **argv, char *connect, int port, const struct s_client_case *sc)
{
	int i = 0;

	snprintf(connect, 64, "127.0.0.1:%d", port);
	argv[i++] = "openssl";
	argv[i++] = "s_client";
	argv[i++] = "-connect";
	argv[i++] = connect;
	argv[i++] = "-servername";
	argv[i++] = "localhost";
	argv[i++] = "-verify_hostname";
	argv[i++] = "localhost";
	argv[i++] = "-CAfile";
	argv[i++] = (char *)tls_file("ca.pem");
	argv[i++] = "-verify_return_error";
	argv[i++] = "-quiet";
	argv[i++] = (char *)sc->proto;
	if (sc->send_cert) {
		argv[i++] = "-cert";
		argv[i++] = (char *)tls_file("client.pem");
		argv[i++] = "-key";
		argv[i++] = (char *)tls_file("client.key");
	}
	argv[i] = NULL;
}

static int s_client_vs_server(void *arg)
{
	const struct s_client_case *sc = arg;
	rill_tls_ctx *sctx = sc->verify_client ? tls_server_ctx_verifying()
					       : tls_server_ctx("server");
	struct seen seen = { 0 };
	rill_server *srv = tls_serve(answer_once, &seen, sctx, NULL);
	char *argv[24], connect[64];
	struct peer_run run = { .argv = argv, .input = "hello from s_client\n" };
	bool refused = sc->verify_client && !sc->send_cert;

	s_client_argv(argv, connect, rill_server_port(srv), sc);
	peer_run_in_task(&run);
	if (refused) {
		/* The server refused the handshake: no echo, no callback. */
		cr_assert_null(strstr(run.out, "echo:"), "s_client got: %s", run.out);
		cr_assert_eq(seen.calls, 0);
	} else {
		cr_assert_str_eq(run.out, "echo: hello from s_client\n");
		cr_assert_eq(run.code, 0, "s_client exit code");
		cr_assert_eq(seen.calls, 1);
		cr_assert_str_eq(seen.subject, sc->send_cert ? "/CN=rill-test-client" : "(none)");
	}
	rill_server_free(srv);
	rill_tls_ctx_free(sctx);
	return 0;
}

/* Runs s_client_vs_server on the case given by its fields. */
static void with_s_client(const char *proto, bool verify_client, bool send_cert)
{
	struct s_client_case sc = { proto, verify_client, send_cert };

	run_task(s_client_vs_server, &sc);
}

Test(tls_peers, s_client_with_rill_server_tls13, .timeout = 30)
{
	with_s_client("-tls1_3", false, false);
}

Test(tls_peers, s_client_with_rill_server_tls12, .timeout = 30)
{
	with_s_client("-tls1_2", false, false);
}

Test(tls_peers, client_certificate_missing_is_refused, .timeout = 30)
{
	with_s_client("-tls1_3", true, false);
}

Test(tls_peers, client_certificate_missing_is_refused_tls12, .timeout = 30)
{
	with_s_client("-tls1_2", true, false);
}

Test(tls_peers, client_certificate_present_is_accepted, .timeout = 30)
{
	with_s_client("-tls1_3", true, true);
}

/* ---- curl, rill's server -------------------------------------------- */

static const char body[] = "hello from rill over https\n";

/* A tiny HTTP/1.1 responder: one request, one answer, close. */
static int http_once(rill_reader *r, rill_writer *w, void *arg)
{
	struct seen *s = arg;
	const char *alpn = rill_writer_get_extra_info(w, "alpn_protocol", NULL);
	char head[256];
	rill_bytes req;
	ssize_t n;

	s->calls++;
	snprintf(s->alpn, sizeof(s->alpn), "%s", alpn ? alpn : "(none)");
	n = rill_reader_readuntil(r, "\r\n\r\n", 4, &req);
	if (n > 0) {
		size_t eol = strcspn(req.data, "\r");

		snprintf(s->request, sizeof(s->request), "%.*s", (int)eol, (const char *)req.data);
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
			 "Content-Length: %zu\r\nConnection: close\r\n\r\n", sizeof(body) - 1);
		rill_writer_write(w, head, strlen(head));
		rill_writer_write(w, body, sizeof(body) - 1);
	}
	rill_writer_close(w);
	return 0;
}

static int curl_vs_server(void *arg)
{
	const char *ca = arg;
	static const char *const protos[] = { "http/1.1" };
	rill_tls_ctx *sctx = tls_server_ctx_opts("server",
		(rill_tls_options){ .size = sizeof(rill_tls_options), .alpn = protos, .nalpn = 1 });
	struct seen seen = { 0 };
	rill_server *srv = tls_serve(http_once, &seen, sctx, NULL);
	int port = rill_server_port(srv);
	char url[128], resolve[128];
	char *argv[] = { "curl", "-sS", "--max-time", "10", "--cacert", (char *)tls_file(ca),
			 "--resolve", resolve, url, NULL };
	struct peer_run run = { .argv = argv, .merge_stderr = true };

	snprintf(url, sizeof(url), "https://localhost:%d/hello?x=1", port);
	snprintf(resolve, sizeof(resolve), "localhost:%d:127.0.0.1", port);
	peer_run_in_task(&run);
	if (!strcmp(ca, "ca.pem")) {
		cr_assert_eq(run.code, 0, "curl: %s", run.out);
		cr_assert_str_eq(run.out, body);
		cr_assert_eq(seen.calls, 1);
		cr_assert_str_eq(seen.request, "GET /hello?x=1 HTTP/1.1");
		cr_assert_str_eq(seen.alpn, "http/1.1");
	} else {
		/* 60: the peer certificate cannot be authenticated. */
		cr_assert_eq(run.code, 60, "curl: %d %s", run.code, run.out);
		cr_assert_eq(seen.calls, 0);
	}
	rill_server_free(srv);
	rill_tls_ctx_free(sctx);
	return 0;
}

Test(tls_peers, curl_with_rill_https_server, .timeout = 30)
{
	run_task(curl_vs_server, "ca.pem");
}

Test(tls_peers, curl_refuses_an_untrusted_rill_server, .timeout = 30)
{
	run_task(curl_vs_server, "other-ca.pem");
}
