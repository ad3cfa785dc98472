/* SPDX-License-Identifier: MIT */
/* TLS closing: the peer's close_notify is answered at once without the application (reader at EOF, writer closing), in both directions between rill peers and against Python's ssl unwrap(); a peer that never answers ends a close at ssl_shutdown_timeout. */
#include <openssl/ssl.h>

#include "tests/tls_helpers.h"

/* What the old behaviour took (a handler's 5 s, a 5 s shutdown timeout)
 * is far above this; an answer on a loaded machine is far below. */
#define AT_ONCE_MS 2000
#define HOLD_MS 5000

static rill_time elapsed_ms(rill_time since)
{
	return (rill_now() - since) / MS;
}

/* ---- the client closes; the server's handler goes on ---------------- */

struct holder {
	ssize_t last_read;	/* 1: not ended yet */
	bool closing_at_eof;	/* the writer's is_closing() once EOF was read */
	bool release;
	int calls;
};

/* Echoes a line, reads to EOF, then keeps running (HOLD_MS at most)
 * without closing: only rill's TLS layer can answer the close_notify. */
static int echo_then_hold(rill_reader *r, rill_writer *w, void *arg)
{
	struct holder *h = arg;
	rill_bytes line;
	char buf[64];
	ssize_t n;

	h->calls++;
	if (rill_reader_readline(r, &line) > 0)
		rill_writer_write(w, line.data, line.len);
	while ((n = rill_reader_read(r, buf, sizeof(buf))) > 0)
		;
	h->closing_at_eof = rill_writer_is_closing(w);
	h->last_read = n;
	for (int i = 0; i < HOLD_MS / 10 && !h->release; i++)
		rill_sleep_ms(10);
	rill_writer_close(w);
	return 0;
}

TASK_TEST(tls_close, client_wait_closed_returns_while_the_server_handler_runs, .timeout = 30)
{
	struct holder h = { .last_read = 1 };
	struct tls_env e = { 0 };
	rill_reader *r;
	rill_writer *w;
	rill_time t0, ms;
	int err;

	tls_env_start(&e, echo_then_hold, &h, NULL);
	tls_env_connect(&e, &r, &w);
	expect_echo(r, w, "hello\n");
	t0 = rill_now();
	rill_writer_close(w);
	err = rill_writer_wait_closed(w);
	ms = elapsed_ms(t0);
	cr_assert_eq(err, 0, "wait_closed: %s", rill_strerror(err));
	cr_assert_lt(ms, AT_ONCE_MS, "wait_closed took %lld ms", (long long)ms);
	rill_writer_free(w);
	/* The server read a clean EOF, its writer closing, the handler
	 * still running. */
	for (int i = 0; i < 200 && h.last_read != 0; i++)
		rill_sleep_ms(5);
	cr_assert_eq(h.last_read, 0, "server's last read: %s", rill_strerror((int)h.last_read));
	cr_assert(h.closing_at_eof, "the server's writer is closing after close_notify");
	h.release = true;
	tls_env_wait_stop(&e);
	cr_assert_eq(h.calls, 1);
	return 0;
}

/* ---- the server closes; the client is idle -------------------------- */

struct closer {
	int err;		/* 1: not waited yet */
	rill_time ms;
};

/* Says bye, closes, and times its wait_closed. */
static int bye_and_wait(rill_reader *r, rill_writer *w, void *arg)
{
	struct closer *cl = arg;
	rill_time t0;

	(void)r;
	rill_writer_write(w, "bye\n", 4);
	t0 = rill_now();
	rill_writer_close(w);
	cl->err = rill_writer_wait_closed(w);
	cl->ms = elapsed_ms(t0);
	return 0;
}

TASK_TEST(tls_close, server_wait_closed_returns_while_an_idle_client_holds_on, .timeout = 30)
{
	struct closer cl = { .err = 1 };
	struct tls_env e = { 0 };
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	bool closing = false;
	ssize_t n;

	tls_env_start(&e, bye_and_wait, &cl,
		      RILL_SERVER_OPTIONS(.ssl_shutdown_timeout = HOLD_MS * MS));
	tls_env_connect(&e, &r, &w);
	/* The client does nothing: no read, no close. */
	for (int i = 0; i < AT_ONCE_MS / 5 && cl.err == 1; i++)
		rill_sleep_ms(5);
	cr_assert_eq(cl.err, 0, "the server's wait_closed: %s", cl.err == 1 ? "still waiting" :
		     rill_strerror(cl.err));
	cr_assert_lt(cl.ms, AT_ONCE_MS, "the server's wait_closed took %lld ms",
		     (long long)cl.ms);
	/* The client answered on its own: closing, the line then EOF. */
	for (int i = 0; i < 200 && !(closing = rill_writer_is_closing(w)); i++)
		rill_sleep_ms(5);
	cr_assert(closing, "the client's writer is closing after the close_notify");
	cr_assert_eq(rill_reader_readline(r, &line), 4);
	cr_assert_arr_eq(line.data, "bye\n", 4);
	n = rill_reader_read(r, (char[1]){ 0 }, 1);
	cr_assert_eq(n, 0, "a clean EOF: %s", rill_strerror((int)n));
	/* Writes after it are dropped, as asyncio's are. */
	cr_assert_eq(rill_writer_write(w, "late\n", 5), 0);
	cr_assert_eq(rill_writer_wait_closed(w), 0);
	rill_writer_close(w);
	rill_writer_free(w);
	tls_env_wait_stop(&e);
	return 0;
}

/* ---- a real peer: Python's ssl, whose unwrap() waits for the answer ---- */

static const char py_client[] =
	"import socket, ssl, sys, time\n"
	"ctx = ssl.create_default_context(cafile=sys.argv[2])\n"
	"t = ctx.wrap_socket(socket.create_connection(('127.0.0.1', int(sys.argv[1]))),\n"
	"                    server_hostname='localhost')\n"
	"t.sendall(b'hello\\n')\n"
	"got = b''\n"
	"while not got.endswith(b'\\n'):\n"
	"    got += t.recv(100)\n"
	"t.settimeout(10)\n"
	"t0 = time.monotonic()\n"
	"t.unwrap()\n"
	"print('unwrapped %d ms' % ((time.monotonic() - t0) * 1000), flush=True)\n";

static const char py_server[] =
	"import socket, ssl, sys, time\n"
	"ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
	"ctx.load_cert_chain(sys.argv[1], sys.argv[2])\n"
	"ls = socket.socket()\n"
	"ls.bind(('127.0.0.1', 0))\n"
	"ls.listen(1)\n"
	"print('port %d' % ls.getsockname()[1], flush=True)\n"
	"t = ctx.wrap_socket(ls.accept()[0], server_side=True)\n"
	"t.sendall(b'bye\\n')\n"
	"t.settimeout(10)\n"
	"t0 = time.monotonic()\n"
	"t.unwrap()\n"
	"print('unwrapped %d ms' % ((time.monotonic() - t0) * 1000), flush=True)\n";

static void need_python_ssl(void)
{
	if (tls_system((char *[]){ "python3", "-c", "import ssl", NULL }) != 0)
		cr_skip_test("python3 with its ssl module is not available here");
}

/* The milliseconds Python's unwrap() took, from its output; -1 if it
 * failed. */
static long unwrap_ms(const char *out)
{
	const char *p = strstr(out, "unwrapped ");

	return p ? atol(p + strlen("unwrapped ")) : -1;
}

static int python_client_body(void *arg)
{
	struct holder h = { .last_read = 1 };
	struct tls_env e = { 0 };
	char port[16];
	struct peer_run run = { .merge_stderr = true };
	long ms;

	(void)arg;
	tls_env_start(&e, echo_then_hold, &h, NULL);
	snprintf(port, sizeof(port), "%d", e.port);
	run.argv = (char *[]){ "python3", "-c", (char *)py_client, port,
			       (char *)tls_file("ca.pem"), NULL };
	peer_run_in_task(&run);
	ms = unwrap_ms(run.out);
	cr_assert_eq(run.code, 0, "python: %s", run.out);
	cr_assert_geq(ms, 0, "python: %s", run.out);
	cr_assert_lt(ms, AT_ONCE_MS, "unwrap() took %ld ms", ms);
	cr_assert_eq(h.last_read, 0);
	cr_assert(h.closing_at_eof);
	h.release = true;
	tls_env_wait_stop(&e);
	return 0;
}

Test(tls_close, python_unwrap_gets_the_rill_servers_answer_at_once, .timeout = 30)
{
	need_python_ssl();
	run_task(python_client_body, NULL);
}

static int python_server_body(void *arg)
{
	rill_tls_ctx *cctx = tls_client_ctx("ca.pem");
	struct peer p;
	char out[512], *at;
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	bool closing = false;
	long ms;

	(void)arg;
	peer_start(&p, (char *[]){ "python3", "-c", (char *)py_server,
				   (char *)tls_file("server.pem"),
				   (char *)tls_file("server.key"), NULL }, true);
	peer_read(&p, out, sizeof(out), "\n", 10000);
	cr_assert_not_null(at = strstr(out, "port "), "python: %s", out);
	tls_connect_ok(atoi(at + 5), cctx, "localhost", &r, &w);
	/* Idle: the answer is rill's own. */
	for (int i = 0; i < AT_ONCE_MS / 5 && !(closing = rill_writer_is_closing(w)); i++)
		rill_sleep_ms(5);
	cr_assert(closing, "the client's writer is closing after the close_notify");
	cr_assert_eq(rill_reader_readline(r, &line), 4);
	cr_assert_eq(rill_reader_read(r, (char[1]){ 0 }, 1), 0);
	/* Our close_notify is out once the socket is closed; only then may
	 * the task block the loop reading Python's verdict. */
	cr_assert_eq(rill_writer_wait_closed(w), 0);
	rill_writer_free(w);
	peer_read(&p, out, sizeof(out), "\n", 10000);
	ms = unwrap_ms(out);
	cr_assert_geq(ms, 0, "python: %s", out);
	cr_assert_lt(ms, AT_ONCE_MS, "unwrap() took %ld ms", ms);
	cr_assert_eq(peer_wait(&p, 5000), 0);
	rill_tls_ctx_free(cctx);
	return 0;
}

Test(tls_close, an_idle_rill_client_answers_pythons_unwrap_at_once, .timeout = 30)
{
	need_python_ssl();
	run_task(python_server_body, NULL);
}

/* ---- a peer that never answers: ssl_shutdown_timeout ---------------- */

/* An OpenSSL server on a thread: it finishes the handshake, then either
 * reads nothing until let go (mute), or reads a byte, sends its
 * close_notify and goes on reading (half_close); then it says what it
 * found: how many bytes, and how its reading ended (our close_notify). */
struct mute {
	int lfd;
	char cert[PATH_MAX], key[PATH_MAX];
	bool half_close;
	atomic_bool release, done;
	uint64_t got;		/* bytes read, all the pattern */
	int last;		/* SSL_get_error of its final read */
};

/* Reads to the end, checking the pattern; SSL_get_error of the last read. */
static int mute_read_all(SSL *ssl, struct mute *m)
{
	static unsigned char buf[16384];
	int n;

	while ((n = SSL_read(ssl, buf, sizeof(buf))) > 0) {
		if (!pat_ok(buf, m->got, (size_t)n))
			return -1;
		m->got += (uint64_t)n;
	}
	return SSL_get_error(ssl, n);
}

static void *mute_thread(void *arg)
{
	struct mute *m = arg;
	SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
	int fd = accept4(m->lfd, NULL, NULL, SOCK_CLOEXEC);
	SSL *ssl = NULL;
	char buf[64];
	int n;

	if (SSL_CTX_use_certificate_chain_file(ctx, m->cert) == 1 &&
	    SSL_CTX_use_PrivateKey_file(ctx, m->key, SSL_FILETYPE_PEM) == 1)
		ssl = SSL_new(ctx);
	if (ssl && SSL_set_fd(ssl, fd) == 1 && SSL_accept(ssl) == 1) {
		if (m->half_close && (n = SSL_read(ssl, buf, 1)) == 1 && buf[0] == pat(0)) {
			m->got = 1;
			SSL_shutdown(ssl);
		}
		while (!m->half_close && !atomic_load(&m->release))
			usleep(5000);
		m->last = mute_read_all(ssl, m);
	}
	SSL_free(ssl);
	SSL_CTX_free(ctx);
	close(fd);
	atomic_store(&m->done, true);
	return NULL;
}

TASK_TEST(tls_close, close_ends_at_the_shutdown_timeout_when_the_peer_never_answers, .timeout = 30)
{
	rill_tls_ctx *cctx = tls_client_ctx("ca.pem");
	struct mute m = { .last = -1 };
	rill_reader *r;
	rill_writer *w;
	pthread_t th;
	rill_time t0, ms;
	int port, err;

	snprintf(m.cert, sizeof(m.cert), "%s", tls_file("server.pem"));
	snprintf(m.key, sizeof(m.key), "%s", tls_file("server.key"));
	m.lfd = listen_loopback(&port, 4);
	cr_assert_geq(m.lfd, 0);
	cr_assert_eq(pthread_create(&th, NULL, mute_thread, &m), 0);
	cr_assert_eq(rill_open_connection("127.0.0.1", port, RILL_OPEN_OPTIONS(
		.ssl_context = cctx, .server_hostname = "localhost",
		.ssl_shutdown_timeout = 300 * MS), &r, &w), 0);
	t0 = rill_now();
	rill_writer_close(w);
	err = rill_writer_wait_closed(w);
	ms = elapsed_ms(t0);
	cr_assert_eq(err, RILL_ETLS_SHUTDOWN_TIMEOUT, "%s", rill_strerror(err));
	cr_assert_geq(ms, 290, "wait_closed took %lld ms", (long long)ms);
	cr_assert_lt(ms, 1500, "wait_closed took %lld ms", (long long)ms);
	/* Repeatable, as the future's exception is. */
	cr_assert_eq(rill_writer_wait_closed(w), RILL_ETLS_SHUTDOWN_TIMEOUT);
	rill_writer_free(w);
	/* The peer finds our close_notify. */
	atomic_store(&m.release, true);
	for (int i = 0; i < 400 && !atomic_load(&m.done); i++)
		rill_sleep_ms(5);
	pthread_join(th, NULL);
	cr_assert_eq(m.last, SSL_ERROR_ZERO_RETURN, "the peer's last read: %d", m.last);
	close(m.lfd);
	rill_tls_ctx_free(cctx);
	return 0;
}

/* What was queued when the peer's close_notify came still goes out before
 * ours (asyncio's FLUSHING state): the peer, which said close_notify after
 * the first byte, reads every byte, then our close_notify. */
TASK_TEST(tls_close, the_answer_sends_what_was_queued_first, .timeout = 30)
{
	rill_tls_ctx *cctx = tls_client_ctx("ca.pem");
	struct mute m = { .last = -1, .half_close = true };
	static unsigned char data[8 << 20];	/* more than the socket buffers hold */
	rill_reader *r;
	rill_writer *w;
	pthread_t th;
	int port, err;

	fill_pat(data, 0, sizeof(data));
	snprintf(m.cert, sizeof(m.cert), "%s", tls_file("server.pem"));
	snprintf(m.key, sizeof(m.key), "%s", tls_file("server.key"));
	m.lfd = listen_loopback(&port, 4);
	cr_assert_geq(m.lfd, 0);
	cr_assert_eq(pthread_create(&th, NULL, mute_thread, &m), 0);
	tls_connect_ok(port, cctx, "localhost", &r, &w);
	cr_assert_eq(rill_writer_write(w, data, sizeof(data)), 0);
	/* No close: the peer's close_notify closes it, after the queue. */
	err = rill_writer_wait_closed(w);
	cr_assert_eq(err, 0, "wait_closed: %s", rill_strerror(err));
	cr_assert_eq(rill_reader_read(r, (char[1]){ 0 }, 1), 0);
	rill_writer_free(w);
	for (int i = 0; i < 2000 && !atomic_load(&m.done); i++)
		rill_sleep_ms(5);
	pthread_join(th, NULL);
	cr_assert_eq(m.got, sizeof(data), "the peer read %" PRIu64 " bytes", m.got);
	cr_assert_eq(m.last, SSL_ERROR_ZERO_RETURN, "the peer's last read: %d", m.last);
	close(m.lfd);
	rill_tls_ctx_free(cctx);
	return 0;
}
