/* SPDX-License-Identifier: MIT */
/* TLS server memory: bytes per idle TLS connection, and heap growth over rounds of clients that send a ClientHello and reset, measured with mallinfo2 and RSS against OpenSSL clients in a forked child. */
#include "tests/tls_helpers.h"

#include <malloc.h>
#include <openssl/ssl.h>

/* Idle connections per measurement: enough that per-connection costs
 * dwarf the noise of one-off allocations (OpenSSL's lazy tables, the
 * loop's pools). RILL_TLS_MEM_N overrides, for a larger measurement. */
#define IDLE_CONNS 200
/* One round of clients that reset after the ClientHello, in batches that
 * are in the server at the same time (a batch waits for the last to be
 * gone). */
#define HELLO_ROUND 1000
#define HELLO_BATCH 100

/* The bounds. Targets: an idle connection at or below 24 KiB of server
 * memory (nginx: 14 KiB); a round of 1000 ClientHello+RST clients grows
 * the server by less than 8 MiB. The heap figure is what malloc holds for
 * rill and OpenSSL; RSS adds the task's stack pages and is noisier. */
#define IDLE_HEAP_MAX (24 * 1024)
#define IDLE_RSS_MAX (32 * 1024)
#define HELLO_GROWTH_MAX (8 * 1024 * 1024)
/* A handshake waiting for the client's Finished: OpenSSL's handshake
 * buffer (16 KiB) and state, the connection, its task. */
#define PENDING_HEAP_MAX (64 * 1024)

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static int conns_wanted(void)
{
	const char *s = getenv("RILL_TLS_MEM_N");
	int n = s ? atoi(s) : 0;

	return n > 0 && n <= 10000 ? n : IDLE_CONNS;
}

/* ---- the server's memory -------------------------------------------- */

struct mem {
	size_t in_use;		/* malloc: bytes handed out */
	size_t heap;		/* malloc: bytes it holds from the kernel */
	size_t rss;
};

static struct mem mem_now(void)
{
	struct mallinfo2 mi = mallinfo2();
	struct mem m = { .in_use = mi.uordblks + mi.hblkhd, .heap = mi.arena + mi.hblkhd };
	unsigned long size = 0, res = 0;
	FILE *f = fopen("/proc/self/statm", "r");

	if (f) {
		if (fscanf(f, "%lu %lu", &size, &res) != 2)
			res = 0;
		fclose(f);
	}
	m.rss = res * (size_t)sysconf(_SC_PAGESIZE);
	return m;
}

/* ---- OpenSSL clients, in a child that never touches rill ------------ */

static SSL_CTX *client_ctx(void)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

	if (ctx)
		SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	return ctx;
}

/* n clients finish their handshake (and, with echo, have one byte
 * echoed) and sit idle until told to go. */
static int idle_clients(int port, int n, int ctl, bool echo)
{
	SSL_CTX *ctx = client_ctx();
	char c = 'r';

	CHECK(ctx);
	for (int i = 0; i < n; i++) {
		int fd = tcp_connect(port);
		SSL *ssl = fd >= 0 ? SSL_new(ctx) : NULL;

		CHECK(ssl && SSL_set_fd(ssl, fd) == 1, "client %d", i);
		CHECK(SSL_connect(ssl) == 1, "handshake %d", i);
		if (echo) {
			CHECK(SSL_write(ssl, "e", 1) == 1, "write %d", i);
			CHECK(SSL_read(ssl, &c, 1) == 1 && c == 'e', "echo %d", i);
		}
		/* Kept: never freed, never closed until the child exits. */
	}
	CHECK(write(ctl, &c, 1) == 1);
	CHECK(read(ctl, &c, 1) >= 0);
	return 0;
}

/* Sends a ClientHello on a fresh connection; the socket, or -1. */
static int hello(SSL_CTX *ctx, int port, SSL **sslp)
{
	int fd = tcp_connect(port);
	SSL *ssl = fd >= 0 ? SSL_new(ctx) : NULL;
	int r;

	if (!ssl) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	set_nonblock(fd);
	SSL_set_fd(ssl, fd);
	/* Done at once (1) where the server answers before the client reads. */
	r = SSL_connect(ssl);
	if (r != 1 && (r != -1 || SSL_get_error(ssl, r) != SSL_ERROR_WANT_READ)) {
		SSL_free(ssl);
		close(fd);
		return -1;
	}
	*sslp = ssl;
	return fd;
}

/* Closes fd with a reset (SO_LINGER 0). */
static void reset(int fd)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
	close(fd);
}

/* One batch: n ClientHellos, each held until the server's reply starts
 * to arrive (the server has made its output by then), then all reset;
 * with ctl >= 0, the test is told and the resets wait for its word. */
static int hello_batch(SSL_CTX *ctx, int port, int n, int ctl)
{
	int fds[HELLO_BATCH];
	SSL *ssls[HELLO_BATCH];
	char c = 'h';

	for (int i = 0; i < n; i++)
		CHECK((fds[i] = hello(ctx, port, &ssls[i])) >= 0, "ClientHello %d", i);
	for (int i = 0; i < n; i++) {
		struct pollfd pf = { .fd = fds[i], .events = POLLIN };

		CHECK(poll(&pf, 1, 10000) == 1, "no ServerHello on %d", i);
	}
	if (ctl >= 0) {
		CHECK(write(ctl, &c, 1) == 1);
		CHECK(read(ctl, &c, 1) >= 0);
	}
	for (int i = 0; i < n; i++) {
		reset(fds[i]);
		SSL_free(ssls[i]);
	}
	return 0;
}

/* Batches of HELLO_BATCH ClientHello+RST clients, one per byte the test
 * sends on ctl; each answered with a byte. (The test paces them, so that
 * no more than a batch is in the server at once, however slow it is.) */
static int hello_batches(int port, int ctl)
{
	SSL_CTX *ctx = client_ctx();
	char c;

	CHECK(ctx);
	while (read(ctl, &c, 1) == 1) {
		if (hello_batch(ctx, port, HELLO_BATCH, -1))
			return 1;
		CHECK(write(ctl, &c, 1) == 1);
	}
	return 0;
}

/* Forks the clients: fn(port, arg, ctl) in a child that only uses
 * OpenSSL and exits; *ctlp is the test's end of the control socket. */
static pid_t clients_start(int (*fn)(int, int, int), int port, int arg, int *ctlp)
{
	int sv[2];
	pid_t pid;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(sv[0]);
		alarm(100);
		_exit(fn(port, arg, sv[1]));
	}
	close(sv[1]);
	*ctlp = sv[0];
	return pid;
}

/* One batch of HELLO_BATCH handshakes left waiting for the client's
 * Finished while the test measures, then reset. */
static int pending_handshakes_fn(int port, int unused, int ctl)
{
	SSL_CTX *ctx = client_ctx();

	(void)unused;
	CHECK(ctx);
	return hello_batch(ctx, port, HELLO_BATCH, ctl);
}

static int idle_clients_fn(int port, int n, int ctl)
{
	return idle_clients(port, n, ctl, false);
}

static int idle_echo_clients_fn(int port, int n, int ctl)
{
	return idle_clients(port, n, ctl, true);
}

static int hello_batches_fn(int port, int unused, int ctl)
{
	(void)unused;
	return hello_batches(port, ctl);
}

/* Waits (from a task, the loop serving meanwhile) for a byte on ctl. */
static bool ctl_wait(int ctl, int timeout_ms)
{
	char c;

	set_nonblock(ctl);
	for (int i = 0; i < timeout_ms / 5; i++) {
		ssize_t n = read(ctl, &c, 1);

		if (n >= 0)
			return n == 1;	/* 0: the child is gone */
		rill_sleep_ms(5);
	}
	return false;
}

static void clients_finish(pid_t pid, int ctl)
{
	int status;

	close(ctl);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "the client process failed (status %#x)", status);
}

/* ---- the server ----------------------------------------------------- */

struct idle_server {
	int served;		/* handshakes done: the callback ran */
	int ended;
};

/* Waits for a byte that never comes: an idle connection. */
static int wait_idle(rill_reader *r, rill_writer *w, void *arg)
{
	struct idle_server *s = arg;
	char c;

	s->served++;
	(void)rill_reader_read(r, &c, 1);
	s->ended++;
	rill_writer_close(w);
	return 0;
}

/* Echoes the first byte, then waits for one that never comes: a
 * connection that carried traffic, then went idle. */
static int echo_then_idle(rill_reader *r, rill_writer *w, void *arg)
{
	struct idle_server *s = arg;
	char c;

	s->served++;
	if (rill_reader_readexactly(r, &c, 1) == 1) {
		rill_writer_write(w, &c, 1);
		(void)rill_writer_drain(w);
		(void)rill_reader_read(r, &c, 1);
	}
	s->ended++;
	rill_writer_close(w);
	return 0;
}

/* One connection through the whole path first: OpenSSL's and the loop's
 * one-off allocations are made before the measurement starts. */
static void warm_up(struct tls_env *e)
{
	rill_reader *r;
	rill_writer *w;

	tls_env_connect(e, &r, &w);
	close_and_free(w);
	rill_sleep_ms(50);
}

/* Starts a server with handler, warms it up, takes the "before" figures
 * and starts the clients of fn; returns their pid once they are ready. */
static pid_t measure_start(struct tls_env *e, rill_client_connected_fn handler,
			   struct idle_server *s, int (*fn)(int, int, int), int n,
			   int *ctlp, struct mem *before)
{
	pid_t pid;

	tls_env_start(e, handler, s, NULL);
	warm_up(e);
	*before = mem_now();
	pid = clients_start(fn, e->port, n, ctlp);
	cr_assert(ctl_wait(*ctlp, 60000), "the clients did not get ready");
	return pid;
}

TASK_TEST(tls_memory, idle_connection_costs_the_server_little, .timeout = 60)
{
	struct idle_server s = { 0 };
	struct tls_env e = { 0 };
	int n = conns_wanted(), ctl;
	struct mem before, after;
	double heap, rss;
	pid_t pid;

#ifdef UNDER_ASAN
	cr_skip_test("AddressSanitizer's allocator hides malloc's figures");
#endif
	pid = measure_start(&e, wait_idle, &s, idle_clients_fn, n, &ctl, &before);
	for (int i = 0; i < 400 && s.served - s.ended < n + 1; i++)
		rill_sleep_ms(5);
	cr_assert_eq(s.served - s.ended, n, "idle connections in the server");
	rill_sleep_ms(50);	/* the session tickets sent */
	after = mem_now();
	heap = ((double)after.in_use - (double)before.in_use) / n;
	rss = ((double)after.rss - (double)before.rss) / n;
	fprintf(stderr, "tls_memory: %d idle TLS connections: %.0f B heap in use, "
		"%.0f B RSS per connection\n", n, heap, rss);
	clients_finish(pid, ctl);
	tls_env_stop(&e);
	cr_assert_leq(heap, IDLE_HEAP_MAX, "%.0f B of heap per idle connection", heap);
	cr_assert_leq(rss, IDLE_RSS_MAX, "%.0f B of RSS per idle connection", rss);
	return 0;
}

/* A connection that carried traffic keeps OpenSSL's buffers while it may
 * go on (request/response traffic does not free and make them per
 * message), and gives them back once it stayed idle (tls/idle.c sweeps
 * every 250 ms). */
TASK_TEST(tls_memory, connection_idle_after_traffic_gives_buffers_back, .timeout = 60)
{
	struct idle_server s = { 0 };
	struct tls_env e = { 0 };
	int n = conns_wanted(), ctl;
	struct mem before, busy, after;
	double heap_busy, heap;
	pid_t pid;

#ifdef UNDER_ASAN
	cr_skip_test("AddressSanitizer's allocator hides malloc's figures");
#endif
	pid = measure_start(&e, echo_then_idle, &s, idle_echo_clients_fn, n, &ctl, &before);
	busy = mem_now();
	rill_sleep_ms(700);	/* two sweep periods and more */
	after = mem_now();
	heap_busy = ((double)busy.in_use - (double)before.in_use) / n;
	heap = ((double)after.in_use - (double)before.in_use) / n;
	fprintf(stderr, "tls_memory: %d TLS connections idle after one echo: %.0f B heap "
		"in use at once, %.0f B after 700 ms\n", n, heap_busy, heap);
	clients_finish(pid, ctl);
	tls_env_stop(&e);
	cr_assert_eq(s.served - 1, n, "connections served (and the warm-up)");
	cr_assert_leq(heap, IDLE_HEAP_MAX, "%.0f B of heap per idle connection", heap);
	return 0;
}

TASK_TEST(tls_memory, client_hello_and_reset_rounds_do_not_grow_the_server, .timeout = 90)
{
	struct idle_server s = { 0 };
	struct tls_env e = { 0 };
	struct mem before, after;
	size_t growth[2];
	int ctl, fds0;
	pid_t pid;

#ifdef UNDER_ASAN
	cr_skip_test("AddressSanitizer's allocator hides malloc's figures");
#endif
	tls_env_start(&e, wait_idle, &s, NULL);
	warm_up(&e);
	pid = clients_start(hello_batches_fn, e.port, 0, &ctl);
	fds0 = count_fds();
	for (int round = 0; round < 2; round++) {
		before = mem_now();
		for (int done = 0; done < HELLO_ROUND; done += HELLO_BATCH) {
			cr_assert_eq(write(ctl, "g", 1), 1);
			cr_assert(ctl_wait(ctl, 60000), "round %d did not finish", round);
			/* The server has seen the resets: its sockets are gone. */
			cr_assert_leq(settle_fds(fds0), fds0, "the reset connections linger");
		}
		after = mem_now();
		growth[round] = after.heap > before.heap ? after.heap - before.heap : 0;
		fprintf(stderr, "tls_memory: round %d of %d ClientHello+RST: heap %+.2f MiB "
			"(%.2f MiB held, %.2f MiB in use), RSS %+.2f MiB\n", round,
			HELLO_ROUND, ((double)after.heap - (double)before.heap) / 1048576.0,
			after.heap / 1048576.0, after.in_use / 1048576.0,
			((double)after.rss - (double)before.rss) / 1048576.0);
	}
	clients_finish(pid, ctl);
	tls_env_stop(&e);
	for (int round = 0; round < 2; round++)
		cr_assert_lt(growth[round], HELLO_GROWTH_MAX, "round %d grew the heap by %zu B",
			     round, growth[round]);
	return 0;
}

/* A handshake in progress (the server's flight sent, the client's Finished
 * not come): what a slowloris TLS client or a ClientHello flood holds. */
TASK_TEST(tls_memory, pending_handshake_costs_the_server_little, .timeout = 60)
{
	struct idle_server s = { 0 };
	struct tls_env e = { 0 };
	struct mem before, after;
	double heap, rss;
	int ctl;
	pid_t pid;

#ifdef UNDER_ASAN
	cr_skip_test("AddressSanitizer's allocator hides malloc's figures");
#endif
	pid = measure_start(&e, wait_idle, &s, pending_handshakes_fn, 0, &ctl, &before);
	rill_sleep_ms(50);	/* the flights sent */
	after = mem_now();
	heap = ((double)after.in_use - (double)before.in_use) / HELLO_BATCH;
	rss = ((double)after.rss - (double)before.rss) / HELLO_BATCH;
	fprintf(stderr, "tls_memory: %d handshakes waiting for the client: %.0f B heap in use, "
		"%.0f B RSS per connection\n", HELLO_BATCH, heap, rss);
	cr_assert_eq(write(ctl, "g", 1), 1);
	clients_finish(pid, ctl);
	tls_env_stop(&e);
	cr_assert_leq(heap, PENDING_HEAP_MAX, "%.0f B of heap per pending handshake", heap);
	return 0;
}

/* ---- output blocks of loop threads ---------------------------------- */

/* Echoes every byte until EOF. */
static int echo_bytes(rill_reader *r, rill_writer *w, void *arg)
{
	char buf[16384];
	ssize_t n;

	(void)arg;
	while ((n = rill_reader_read(r, buf, sizeof(buf))) > 0)
		if (rill_writer_write(w, buf, (size_t)n) < 0 || rill_writer_drain(w) < 0)
			break;
	rill_writer_close(w);
	return 0;
}

#define THREAD_ECHO (1 << 20)

/* A megabyte there and back over one connection. */
static int echo_megabyte(void *arg)
{
	struct tls_env *e = arg;
	unsigned char *data = malloc(THREAD_ECHO), *back = malloc(THREAD_ECHO);
	rill_reader *r;
	rill_writer *w;

	cr_assert(data && back);
	fill_pat(data, 0, THREAD_ECHO);
	tls_env_connect(e, &r, &w);
	cr_assert_eq(rill_writer_write(w, data, THREAD_ECHO), 0);
	cr_assert_eq(rill_reader_readexactly(r, back, THREAD_ECHO), THREAD_ECHO);
	cr_assert(pat_ok(back, 0, THREAD_ECHO), "the echo came back whole");
	close_and_free(w);
	free(data);
	free(back);
	return 0;
}

/* Four megabyte echoes at once through e's server. */
static void echo_four(struct tls_env *e)
{
	rill_task *t[4];

	for (int i = 0; i < 4; i++)
		t[i] = spawn(echo_megabyte, e);
	for (int i = 0; i < 4; i++)
		join(t[i]);
}

/* Closes e's server and waits for it, keeping the contexts. */
static void server_end(struct tls_env *e)
{
	rill_server_close(e->srv);
	cr_assert_eq(rill_server_wait_closed(e->srv), 0);
	rill_server_free(e->srv);
}

/* A server on two loop threads moves megabytes (its threads fill their
 * pools of output blocks), then ends: the threads' pools go with them. */
TASK_TEST(tls_memory, loop_threads_give_their_output_blocks_back, .timeout = 60)
{
	struct tls_env e = { 0 };
	struct mem before, after;

	/* First on this thread alone: its own pool (the clients') fills. */
	tls_env_start(&e, echo_bytes, NULL, NULL);
	echo_four(&e);
	server_end(&e);
	before = mem_now();
	tls_env_start(&e, echo_bytes, NULL, RILL_SERVER_OPTIONS(.threads = 2));
	echo_four(&e);
	server_end(&e);
	after = mem_now();
	fprintf(stderr, "tls_memory: a two-thread TLS server, 4 MiB echoed, then freed: "
		"heap in use %+.0f KiB\n", ((double)after.in_use - (double)before.in_use) / 1024);
#ifndef UNDER_ASAN
	/* Two pools left behind would be over 1 MiB. */
	cr_assert_lt(after.in_use, before.in_use + 512 * 1024, "heap in use grew by %zu B",
		     after.in_use - before.in_use);
#endif
	rill_tls_ctx_free(e.cctx);
	rill_tls_ctx_free(e.sctx);
	return 0;
}
