/* SPDX-License-Identifier: MIT */
/* libFuzzer target: arbitrary bytes at a rill TLS server (tls/transport.c).
 *
 * The server end of a socketpair is adopted by rill and runs
 * rill_start_tls_server(); the fuzzer drives the other end. The first
 * input byte picks how:
 *   0  the rest goes in raw, as the client's first flight (ClientHello
 *      and whatever follows), then EOF;
 *   1  an OpenSSL client completes a TLS 1.3 handshake, then the rest goes
 *      in raw, as records after the handshake, then EOF;
 *   2  TLS 1.3 handshake, then the rest is sent as plaintext through
 *      OpenSSL, in records whose sizes the input picks, then close_notify;
 *   3  the same over TLS 1.2.
 * Nothing may crash or hang, and the connection must end the way the mode
 * says: in 0 and 1 with a RILL_ETLS* code (never a handshake timeout:
 * EOF always comes); in 2 and 3 with every plaintext byte read back in
 * order and a clean EOF. Anything else aborts.
 *
 * One loop, one server context and one certificate (made in memory at
 * start-up) serve every input; each input costs a socketpair and, in
 * modes 1 to 3, a handshake.
 */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rill.h>
#include <rill/tls.h>

/* Keeps one input inside the socket buffer: the raw writes never block. */
#define INPUT_MAX (32 * 1024)

#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "fuzz_tls_records: %s failed: ", #cond); \
			fprintf(stderr, __VA_ARGS__);                         \
			fputc('\n', stderr);                                  \
			abort();                                              \
		}                                                             \
	} while (0)

static rill_loop *loop;
static rill_tls_ctx *server_ctx;
static SSL_CTX *client13, *client12;

/* ---- set-up, once ---------------------------------------------------- */

/* A self-signed P-256 certificate for "localhost", written as PEM to
 * dir/cert.pem and dir/key.pem. */
static void make_cert(const char *dir)
{
	char path[256];
	EVP_PKEY *key = EVP_EC_gen("P-256");
	X509 *x = X509_new();
	X509_NAME *name;
	FILE *f;

	CHECK(key && x, "key and certificate");
	ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
	X509_gmtime_adj(X509_getm_notBefore(x), -3600);
	X509_gmtime_adj(X509_getm_notAfter(x), 3600L * 24 * 365);
	X509_set_pubkey(x, key);
	name = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				   (const unsigned char *)"localhost", -1, -1, 0);
	X509_set_issuer_name(x, name);
	CHECK(X509_sign(x, key, EVP_sha256()) > 0, "sign");
	snprintf(path, sizeof(path), "%s/cert.pem", dir);
	CHECK((f = fopen(path, "w")) && PEM_write_X509(f, x), "%s", path);
	fclose(f);
	snprintf(path, sizeof(path), "%s/key.pem", dir);
	CHECK((f = fopen(path, "w")) &&
	      PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL), "%s", path);
	fclose(f);
	X509_free(x);
	EVP_PKEY_free(key);
}

static SSL_CTX *client_ctx(int version)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	CHECK(ctx, "client context");
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_min_proto_version(ctx, version);
	SSL_CTX_set_max_proto_version(ctx, version);
	return ctx;
}

static void setup(void)
{
	char dir[] = "/tmp/rill-fuzz-tls-XXXXXX", cert[64], key[64];
	rill_tls_options o = { .size = sizeof(rill_tls_options), .cert_file = cert,
		.key_file = key };
	int err;

	CHECK(mkdtemp(dir), "mkdtemp");
	make_cert(dir);
	snprintf(cert, sizeof(cert), "%s/cert.pem", dir);
	snprintf(key, sizeof(key), "%s/key.pem", dir);
	err = rill_tls_ctx_new_server(&o, &server_ctx);
	CHECK(err == 0, "server context: %s %s", rill_strerror(err), rill_tls_last_error());
	unlink(cert);
	unlink(key);
	rmdir(dir);
	err = rill_loop_new(NULL, &loop);
	CHECK(err == 0, "loop: %s", rill_strerror(err));
	client13 = client_ctx(TLS1_3_VERSION);
	client12 = client_ctx(TLS1_2_VERSION);
}

/* ---- one input -------------------------------------------------------- */

struct run {
	int mode;
	const uint8_t *data;	/* the input after the mode byte */
	size_t len;
	int fd;			/* the fuzzer's end */
	int server_fd;		/* rill's end */
	bool client_ready;	/* handshake done, or mode 0 */
	/* the server's view */
	int handshake;
	ssize_t end;		/* how its reading ended */
	uint8_t *got;
	size_t ngot;
};

static bool is_tls_failure(int code)
{
	return code == RILL_ETLS || code == RILL_ETLS_ALERT || code == RILL_ETLS_EOF;
}

static void read_all(struct run *run, rill_reader *r)
{
	uint8_t buf[4096];
	ssize_t n;

	while ((n = rill_reader_read(r, buf, sizeof(buf))) > 0) {
		CHECK(run->ngot + (size_t)n <= run->len, "more plaintext than was sent");
		memcpy(run->got + run->ngot, buf, (size_t)n);
		run->ngot += (size_t)n;
	}
	run->end = n;
}

static int server_task(void *arg)
{
	struct run *run = arg;
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = run->server_fd };
	rill_tls_timeouts t = { .size = sizeof(rill_tls_timeouts),
		.handshake = 10 * RILL_NSEC_PER_SEC };
	rill_reader *r;
	rill_writer *w;
	int err = rill_open_connection(NULL, 0, &o, &r, &w);

	CHECK(err == 0, "adopt: %s", rill_strerror(err));
	run->handshake = rill_start_tls_server(w, server_ctx, &t);
	if (run->handshake == 0)
		read_all(run, r);
	rill_writer_abort(w);
	rill_writer_wait_closed(w);
	rill_writer_free(w);
	return 0;
}

/* Retries one OpenSSL call on the non-blocking socket while it wants I/O,
 * letting the loop (the server) run in between. */
static int ssl_retry(SSL *ssl, int ret)
{
	int e = SSL_get_error(ssl, ret);

	if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE)
		return -1;
	return rill_yield() == 0 ? 0 : -1;
}

static void client_handshake(struct run *run, SSL *ssl)
{
	int r;

	SSL_set_fd(ssl, run->fd);
	SSL_set_tlsext_host_name(ssl, "localhost");
	for (int i = 0; (r = SSL_connect(ssl)) != 1; i++)
		CHECK(i < 100000 && ssl_retry(ssl, r) == 0, "handshake: %s (server: %s)",
		      ERR_reason_error_string(ERR_peek_last_error()),
		      rill_err_name(run->handshake));
}

/* Plaintext in records of sizes the input picks, then close_notify. */
static void client_send_plain(struct run *run, SSL *ssl)
{
	size_t off = 0;
	uint8_t step = run->len ? run->data[0] : 1;

	while (off < run->len) {
		size_t n = 1 + (size_t)step * 64;
		int r;

		if (n > run->len - off)
			n = run->len - off;
		while ((r = SSL_write(ssl, run->data + off, (int)n)) <= 0)
			CHECK(ssl_retry(ssl, r) == 0, "SSL_write");
		off += (size_t)r;
		step = (uint8_t)(step * 31 + run->data[off - 1]);
	}
	while (SSL_shutdown(ssl) < 0)
		if (ssl_retry(ssl, -1) < 0)
			break;
}

static void send_raw(struct run *run)
{
	if (run->len)
		CHECK(send(run->fd, run->data, run->len, MSG_NOSIGNAL) == (ssize_t)run->len,
		      "raw send: %s", strerror(errno));
}

static int client_task(void *arg)
{
	struct run *run = arg;
	SSL *ssl = NULL;

	if (run->mode == 0) {
		send_raw(run);
	} else {
		ssl = SSL_new(run->mode == 3 ? client12 : client13);
		CHECK(ssl, "SSL_new");
		client_handshake(run, ssl);
		if (run->mode == 1)
			send_raw(run);
		else
			client_send_plain(run, ssl);
	}
	shutdown(run->fd, SHUT_WR);
	SSL_free(ssl);
	return 0;
}

static void check_end(const struct run *run)
{
	if (run->mode == 0) {
		/* A first flight OpenSSL takes as the start of a ClientHello
		 * ends with the client's EOF in the handshake: -ECONNRESET,
		 * as asyncio's ConnectionResetError. */
		CHECK(is_tls_failure(run->handshake) || run->handshake == -ECONNRESET,
		      "raw first flight gave %s", rill_err_name(run->handshake));
		return;
	}
	if (run->mode == 1) {
		/* Bad records right behind the client's Finished fail the
		 * connection before the server's handshake call returns. */
		int code = run->handshake ? run->handshake : (int)run->end;

		CHECK(is_tls_failure(code), "raw records gave %s", rill_err_name(code));
		return;
	}
	CHECK(run->handshake == 0, "handshake: %s", rill_err_name(run->handshake));
	CHECK(run->end == 0, "plaintext ended with %s", rill_err_name((int)run->end));
	CHECK(run->ngot == run->len && (!run->len || !memcmp(run->got, run->data, run->len)),
	      "plaintext came back wrong: %zu of %zu bytes", run->ngot, run->len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run run = { 0 };
	rill_task *server, *client;
	int sv[2];

	if (!loop)
		setup();
	if (size == 0)
		return 0;
	run.mode = data[0] % 4;
	run.data = data + 1;
	run.len = size - 1 < INPUT_MAX ? size - 1 : INPUT_MAX;
	CHECK((run.got = malloc(run.len + 1)), "malloc");
	CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0,
	      "socketpair: %s", strerror(errno));
	run.server_fd = sv[0];
	run.fd = sv[1];
	CHECK(rill_spawn(loop, server_task, &run, &server) == 0, "spawn");
	CHECK(rill_spawn(loop, client_task, &run, &client) == 0, "spawn");
	CHECK(rill_task_join(client, NULL) == 0, "join client");
	CHECK(rill_task_join(server, NULL) == 0, "join server");
	check_end(&run);
	close(sv[1]);
	free(run.got);
	ERR_clear_error();
	return 0;
}
