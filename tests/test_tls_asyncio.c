/* SPDX-License-Identifier: MIT */
/* TLS where asyncio says how: a reset during the handshake ends it at once on both sides, and a FIN or a reset right after the ClientHello is -ECONNRESET on both sides, SSL write watermarks, start_tls without a server name, start_tls on a connection whose reader fell behind, a TLS flood into a reader that keeps falling behind. */
#include <openssl/ssl.h>

#include "tests/tls_helpers.h"

static rill_time elapsed_ms(rill_time since)
{
	return (rill_now() - since) / MS;
}

/* A real ClientHello, from an OpenSSL client talking to memory BIOs. */
static size_t client_hello(unsigned char *buf, size_t cap)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	SSL *ssl = SSL_new(ctx);
	BIO *rb = BIO_new(BIO_s_mem()), *wb = BIO_new(BIO_s_mem());
	int n;

	SSL_set_bio(ssl, rb, wb);
	SSL_set_connect_state(ssl);
	cr_assert_leq(SSL_do_handshake(ssl), 0);
	n = BIO_read(wb, buf, (int)cap);
	cr_assert_gt(n, 5);
	cr_assert_eq(buf[0], 0x16);
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	return (size_t)n;
}

static void reset_close(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* ---- a reset during the handshake: the server side ------------------ */

static atomic_int failed_handshakes, reset_handshakes;

static void handshake_log(int level, const char *msg, void *arg)
{
	(void)level;
	(void)arg;
	if (strstr(msg, "TLS handshake failed")) {
		atomic_fetch_add(&failed_handshakes, 1);
		if (strstr(msg, rill_strerror(-ECONNRESET)) ||
		    strstr(msg, rill_strerror(-EPIPE)))
			atomic_fetch_add(&reset_handshakes, 1);
	}
}

static int never_called(rill_reader *r, rill_writer *w, void *arg)
{
	(void)r;
	(void)w;
	++*(int *)arg;
	return 0;
}

#define WAVE 200

/* WAVE clients on a thread: connect, send a ClientHello, reset. */
struct wave {
	int port;
	atomic_bool done;
};

static void *wave_thread(void *arg)
{
	struct wave *wv = arg;
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				 .sin_port = htons((uint16_t)wv->port) };
	unsigned char hello[2048];
	size_t n = client_hello(hello, sizeof(hello));
	static int fds[WAVE];

	for (int i = 0; i < WAVE; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_geq(fds[i], 0);
		cr_assert_eq(connect(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
		cr_assert_eq(send(fds[i], hello, n, MSG_NOSIGNAL), (ssize_t)n);
	}
	/* Long enough for the server to answer with its ServerHello. */
	usleep(300 * 1000);
	for (int i = 0; i < WAVE; i++)
		reset_close(fds[i]);
	atomic_store(&wv->done, true);
	return NULL;
}

/* Runs a wave and returns how long after its resets the server's
 * handshakes had all ended (ms). */
static long long run_wave(int port, int expect_failed)
{
	struct wave wv = { .port = port };
	pthread_t th;
	rill_time t0;

	cr_assert_eq(pthread_create(&th, NULL, wave_thread, &wv), 0);
	while (!atomic_load(&wv.done))
		rill_sleep_ms(2);
	t0 = rill_now();
	pthread_join(th, NULL);
	for (int i = 0; i < 3000 && atomic_load(&failed_handshakes) < expect_failed; i++)
		rill_sleep_ms(1);
	cr_assert_eq(atomic_load(&failed_handshakes), expect_failed);
	return elapsed_ms(t0);
}

static int server_reset_body(void *arg)
{
	rill_tls_ctx *sctx = tls_server_ctx("server");
	rill_server_options so = { .size = sizeof(rill_server_options), .sock = -1,
				   .ssl = sctx };	/* handshake timeout: 60 s */
	rill_server *srv;
	int calls = 0, fds0;
	long long ms;

	(void)arg;
	cr_assert_eq(rill_start_server(never_called, &calls, "127.0.0.1", 0, &so, &srv), 0);
	fds0 = count_fds();
	ms = run_wave(rill_server_port(srv), WAVE);
	cr_assert_lt(ms, 1000, "the handshakes ended %lld ms after the resets", ms);
	cr_assert_eq(atomic_load(&reset_handshakes), WAVE);
	rill_sleep_ms(50);
	cr_assert_leq(count_fds(), fds0, "fds: %d, before the wave %d", count_fds(), fds0);
	/* A second wave: the first left nothing behind. */
	ms = run_wave(rill_server_port(srv), 2 * WAVE);
	cr_assert_lt(ms, 1000, "the handshakes ended %lld ms after the resets", ms);
	rill_sleep_ms(50);
	cr_assert_leq(count_fds(), fds0);
	cr_assert_eq(calls, 0);
	rill_server_close(srv);
	cr_assert_eq(rill_server_wait_closed(srv), 0);
	rill_server_free(srv);
	rill_tls_ctx_free(sctx);
	return 0;
}

Test(tls_asyncio, reset_during_the_handshake_ends_server_handshakes_at_once, .timeout = 60)
{
	rill_set_log_handler(handshake_log, NULL);
	run_task(server_reset_body, NULL);
	rill_set_log_handler(NULL, NULL);
}

/* ---- a reset during the handshake: the client side ------------------ */

struct raw_server {
	int lfd;
	atomic_bool done;
};

/* Reads the ClientHello, then resets. */
static void *raw_reset_thread(void *arg)
{
	struct raw_server *rs = arg;
	unsigned char buf[4096];
	int fd = accept4(rs->lfd, NULL, NULL, SOCK_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_gt(recv(fd, buf, sizeof(buf), 0), 5);
	cr_assert_eq(buf[0], 0x16);
	reset_close(fd);
	atomic_store(&rs->done, true);
	return NULL;
}

static int client_reset_body(void *arg)
{
	rill_tls_ctx *cctx = tls_client_ctx("ca.pem");
	struct raw_server rs = { 0 };
	int port;
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1,
				.ssl_context = cctx, .server_hostname = "localhost" };
	rill_reader *r = NULL;
	rill_writer *w = NULL;
	pthread_t th;
	rill_time t0;
	int err;

	(void)arg;
	rs.lfd = listen_loopback(&port, 16);
	cr_assert_eq(pthread_create(&th, NULL, raw_reset_thread, &rs), 0);
	t0 = rill_now();
	err = rill_open_connection("127.0.0.1", port, &o, &r, &w);
	cr_assert_eq(err, -ECONNRESET, "%s", rill_strerror(err));
	cr_assert_lt(elapsed_ms(t0), 1000, "took %lld ms", (long long)elapsed_ms(t0));
	cr_assert_null(w);
	pthread_join(th, NULL);
	close(rs.lfd);
	rill_tls_ctx_free(cctx);
	return 0;
}

Test(tls_asyncio, reset_during_the_handshake_fails_open_connection_at_once, .timeout = 30)
{
	run_task(client_reset_body, NULL);
}

/* ---- a peer that hangs up right after the ClientHello --------------- */

/* How the raw peer ends: a FIN after its last bytes, or a reset. */
enum hang_up { HANG_UP_EOF, HANG_UP_RESET };

static void hang_up(int fd, enum hang_up how)
{
	if (how == HANG_UP_EOF) {
		shutdown(fd, SHUT_WR);
		return;
	}
	reset_close(fd);
}

struct upgrade_result {
	rill_tls_ctx *sctx;
	int err;		/* 1: not yet */
};

/* A plain server that upgrades at once and keeps start_tls_server's code. */
static int upgrade_at_once(rill_reader *r, rill_writer *w, void *arg)
{
	struct upgrade_result *u = arg;

	(void)r;
	u->err = rill_start_tls_server(w, u->sctx, NULL);
	rill_writer_close(w);
	return 0;
}

/* asyncio (SSLProtocol.eof_received in DO_HANDSHAKE): the server's
 * handshake ends with ConnectionResetError, whether the client's side
 * ended with a FIN or a reset. */
static void server_hang_up_case(enum hang_up how)
{
	struct upgrade_result u = { .sctx = tls_server_ctx("server"), .err = 1 };
	unsigned char hello[2048];
	size_t n = client_hello(hello, sizeof(hello));
	rill_server *srv;
	rill_time t0;
	int fd;

	cr_assert_eq(rill_start_server(upgrade_at_once, &u, "127.0.0.1", 0, NULL, &srv), 0);
	fd = tcp_client(rill_server_port(srv));
	cr_assert_eq(send(fd, hello, n, MSG_NOSIGNAL), (ssize_t)n);
	t0 = rill_now();
	hang_up(fd, how);
	for (int i = 0; i < 400 && u.err == 1; i++)
		rill_sleep_ms(5);
	cr_assert_eq(u.err, -ECONNRESET, "start_tls_server: %s", rill_err_name(u.err));
	cr_assert_lt(elapsed_ms(t0), 1000);
	if (how == HANG_UP_EOF)
		close(fd);
	rill_server_close(srv);
	cr_assert_eq(rill_server_wait_closed(srv), 0);
	rill_server_free(srv);
	rill_tls_ctx_free(u.sctx);
}

TASK_TEST(tls_asyncio, eof_after_the_client_hello_is_a_reset_for_the_server, .timeout = 30)
{
	server_hang_up_case(HANG_UP_EOF);
	return 0;
}

TASK_TEST(tls_asyncio, reset_after_the_client_hello_is_a_reset_for_the_server, .timeout = 30)
{
	server_hang_up_case(HANG_UP_RESET);
	return 0;
}

struct hang_up_server {
	int lfd;
	enum hang_up how;
	atomic_bool done;
};

/* Reads the ClientHello, then hangs up as told. */
static void *hang_up_thread(void *arg)
{
	struct hang_up_server *hs = arg;
	unsigned char buf[4096];
	int fd = accept4(hs->lfd, NULL, NULL, SOCK_CLOEXEC);

	cr_assert_geq(fd, 0);
	cr_assert_gt(recv(fd, buf, sizeof(buf), 0), 5);
	cr_assert_eq(buf[0], 0x16);
	hang_up(fd, hs->how);
	/* After a FIN, hold the socket until the client has given up. */
	for (int i = 0; i < 400 && hs->how == HANG_UP_EOF && !atomic_load(&hs->done); i++)
		usleep(5000);
	if (hs->how == HANG_UP_EOF)
		close(fd);
	return NULL;
}

/* The client side: open_connection fails with -ECONNRESET, at once. */
TASK_TEST(tls_asyncio, eof_after_the_client_hello_fails_open_connection_with_a_reset, .timeout = 30)
{
	rill_tls_ctx *cctx = tls_client_ctx("ca.pem");
	struct hang_up_server hs = { .how = HANG_UP_EOF };
	rill_reader *r = NULL;
	rill_writer *w = NULL;
	pthread_t th;
	rill_time t0;
	int port, err;

	hs.lfd = listen_loopback(&port, 16);
	cr_assert_geq(hs.lfd, 0);
	cr_assert_eq(pthread_create(&th, NULL, hang_up_thread, &hs), 0);
	t0 = rill_now();
	err = tls_connect(port, cctx, "localhost", &r, &w);
	atomic_store(&hs.done, true);
	cr_assert_eq(err, -ECONNRESET, "%s", rill_err_name(err));
	cr_assert_lt(elapsed_ms(t0), 1000, "took %lld ms", (long long)elapsed_ms(t0));
	cr_assert_null(w);
	pthread_join(th, NULL);
	close(hs.lfd);
	rill_tls_ctx_free(cctx);
	return 0;
}

/* ---- write watermarks ----------------------------------------------- */

struct marks {
	size_t high, low;
	bool seen;
};

static int record_marks(rill_reader *r, rill_writer *w, void *arg)
{
	struct marks *m = arg;

	(void)r;
	rill_writer_get_write_buffer_limits(w, &m->high, &m->low);
	m->seen = true;
	rill_writer_close(w);
	return 0;
}

/* asyncio's SSL transports default to FLOW_CONTROL_HIGH_WATER_SSL_WRITE:
 * 512 KiB high, 128 KiB low; plain ones to 64 and 16 KiB. */
static int marks_body(void *arg)
{
	rill_tls_ctx *sctx = tls_server_ctx("server"), *cctx = tls_client_ctx("ca.pem");
	rill_server_options so = { .size = sizeof(rill_server_options), .sock = -1, .ssl = sctx };
	struct marks m = { 0 };
	rill_server *srv;
	rill_reader *r;
	rill_writer *w;
	size_t high, low;

	(void)arg;
	cr_assert_eq(rill_start_server(record_marks, &m, "127.0.0.1", 0, &so, &srv), 0);
	cr_assert_eq(tls_connect(rill_server_port(srv), cctx, "localhost", &r, &w), 0);
	rill_writer_get_write_buffer_limits(w, &high, &low);
	cr_assert_eq(high, 512 * 1024);
	cr_assert_eq(low, 128 * 1024);
	/* None, None: the transport's defaults again. */
	cr_assert_eq(rill_writer_set_write_buffer_limits(w, 1000, 10), 0);
	cr_assert_eq(rill_writer_set_write_buffer_limits(w, -1, -1), 0);
	rill_writer_get_write_buffer_limits(w, &high, &low);
	cr_assert_eq(high, 512 * 1024);
	cr_assert_eq(low, 128 * 1024);
	for (int i = 0; i < 200 && !m.seen; i++)
		rill_sleep_ms(5);
	cr_assert(m.seen);
	cr_assert_eq(m.high, 512 * 1024);
	cr_assert_eq(m.low, 128 * 1024);
	close_and_free(w);
	rill_server_close(srv);
	rill_server_wait_closed(srv);
	rill_server_free(srv);
	rill_tls_ctx_free(cctx);
	rill_tls_ctx_free(sctx);
	return 0;
}

Test(tls_asyncio, tls_writers_default_to_the_ssl_watermarks, .timeout = 30)
{
	run_task(marks_body, NULL);
}

/* ---- start_tls without a server name -------------------------------- */

/* asyncio: "check_hostname requires server_hostname" (ValueError). */
static int no_name_body(void *arg)
{
	rill_tls_ctx *cctx = tls_client_ctx("ca.pem");
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;
	int sv[2], err;

	(void)arg;
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	o.sock = sv[0];
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &r, &w), 0);
	err = rill_start_tls(w, cctx, NULL, NULL);
	cr_assert_eq(err, -EINVAL, "%s", rill_strerror(err));
	cr_assert(strstr(rill_error_detail(), "server_hostname"), "%s", rill_error_detail());
	err = rill_start_tls(w, NULL, NULL, NULL);
	cr_assert_eq(err, -EINVAL, "%s", rill_strerror(err));
	/* Refused before anything was sent: still a plain connection. */
	cr_assert_eq(rill_writer_write(w, "plain", 5), 0);
	cr_assert_eq(rill_writer_drain(w), 0);
	rill_sleep_ms(10);
	{
		char buf[8];

		cr_assert_eq(recv(sv[1], buf, sizeof(buf), MSG_DONTWAIT), 5);
		cr_assert_arr_eq(buf, "plain", 5);
	}
	rill_writer_close(w);
	rill_writer_wait_closed(w);
	rill_writer_free(w);
	close(sv[1]);
	rill_tls_ctx_free(cctx);
	return 0;
}

Test(tls_asyncio, start_tls_with_a_verifying_context_needs_a_name, .timeout = 30)
{
	run_task(no_name_body, NULL);
}

/* ---- start_tls on a connection whose reader fell behind --------------- */

#define BEHIND_BULK (1024 * 1024)

/* The server's end: falls behind a plain flood, reads all of it, says so
 * and upgrades. On io_uring its next recv is then in flight into the
 * reader's own buffer (see tests/test_streams_bulk.c), so the ClientHello
 * lands there and must go to TLS, not to the reader. */
static int behind_then_tls(rill_reader *r, rill_writer *w, void *arg)
{
	unsigned char *buf = malloc(BEHIND_BULK);
	rill_bytes line;
	int err;

	cr_assert_not_null(buf);
	cr_assert_eq(rill_sleep_ms(30), 0);
	cr_assert_eq(rill_reader_readexactly(r, buf, BEHIND_BULK), BEHIND_BULK);
	check_pat(buf, 0, BEHIND_BULK);
	free(buf);
	cr_assert_eq(rill_writer_write(w, "ok\n", 3), 0);
	cr_assert_eq(rill_writer_drain(w), 0);
	err = rill_start_tls_server(w, arg, NULL);
	cr_assert_eq(err, 0, "start_tls_server: %s (%s)", rill_strerror(err),
		     rill_tls_last_error());
	cr_assert_eq(rill_reader_readline(r, &line), 6);
	cr_assert_arr_eq(line.data, "hello\n", 6);
	cr_assert_eq(rill_writer_write(w, line.data, line.len), 0);
	cr_assert_eq(rill_writer_drain(w), 0);
	rill_writer_close(w);
	return 0;
}

static int behind_body(void *arg)
{
	struct tls_env e = { .sctx = tls_server_ctx("server"), .cctx = tls_client_ctx("ca.pem") };
	unsigned char *buf = malloc(BEHIND_BULK);
	rill_reader *r;
	rill_writer *w;
	int err;

	(void)arg;
	cr_assert_not_null(buf);
	/* A plain server: the handler upgrades. */
	cr_assert_eq(rill_start_server(behind_then_tls, e.sctx, "127.0.0.1", 0, NULL, &e.srv), 0);
	connect_to("127.0.0.1", rill_server_port(e.srv), &r, &w);
	fill_pat(buf, 0, BEHIND_BULK);
	cr_assert_eq(rill_writer_write(w, buf, BEHIND_BULK), 0);
	cr_assert_eq(rill_writer_drain(w), 0);
	free(buf);
	expect_line(r, "ok\n");
	err = rill_start_tls(w, e.cctx, "localhost", NULL);
	cr_assert_eq(err, 0, "start_tls: %s (%s)", rill_strerror(err), rill_tls_last_error());
	expect_echo(r, w, "hello\n");
	close_and_free(w);
	tls_env_wait_stop(&e);
	return 0;
}

Test(tls_asyncio, start_tls_after_the_reader_fell_behind, .timeout = 30)
{
	run_task(behind_body, NULL);
}

/* ---- a TLS flood into a reader that keeps falling behind -------------- */

#define FLOOD_BYTES (8 * 1024 * 1024)

/* Reads the flood with every kind of read, falling behind now and then:
 * its ciphertext then lands in the transport's own buffer (a loan), with
 * partial records carried over from one landing to the next. */
static int slow_tls_reader(rill_reader *r, rill_writer *w, void *arg)
{
	unsigned char *buf = malloc(READ_PAT_MAX);
	uint64_t *got = arg, off = 0;
	uint32_t seed = 5;
	size_t k;

	cr_assert_not_null(buf);
	cr_assert_eq(rill_sleep_ms(30), 0);
	while ((k = read_pat_some(r, off, &seed, buf)) > 0) {
		off += k;
		if (xorshift32(&seed) % 64 == 0)
			cr_assert_eq(rill_sleep_ms(2), 0);
	}
	free(buf);
	*got = off;
	rill_writer_close(w);
	return 0;
}

static int tls_flood_body(void *arg)
{
	struct tls_env e = { 0 };
	unsigned char *buf = malloc(64 * 1024);
	uint64_t got = 0;
	rill_reader *r;
	rill_writer *w;

	(void)arg;
	cr_assert_not_null(buf);
	tls_env_start(&e, slow_tls_reader, &got, NULL);
	tls_env_connect(&e, &r, &w);
	for (uint64_t off = 0; off < FLOOD_BYTES; off += 64 * 1024) {
		fill_pat(buf, off, 64 * 1024);
		cr_assert_eq(rill_writer_write(w, buf, 64 * 1024), 0);
		cr_assert_eq(rill_writer_drain(w), 0);
	}
	free(buf);
	close_and_free(w);	/* close_notify: the reader's EOF */
	tls_env_wait_stop(&e);
	cr_assert_eq(got, FLOOD_BYTES, "every byte once: %" PRIu64, got);
	return 0;
}

Test(tls_asyncio, tls_flood_arrives_whole_through_a_reader_that_falls_behind, .timeout = 30)
{
	run_task(tls_flood_body, NULL);
}
