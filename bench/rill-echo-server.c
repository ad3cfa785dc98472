/* SPDX-License-Identifier: MIT */
/* rill-echo-server: the benchmark server, written with the public streams
 * API exactly as a user would write it.
 *
 *   rill-echo-server [--port P] [--host H] [--mode echo|sink|http]
 *                    [--threads N] [--tls CERT KEY] [--root DIR]
 *
 * echo: write back what was read (peek, write, consume), drain. sink: read and discard.
 * http: a minimal HTTP/1.1 keep-alive responder (readuntil "\r\n\r\n");
 * with --root DIR, GET of a file under DIR answered with its bytes through
 * rill_writer_sendfile (Content-Length, keep-alive), for measuring beside
 * nginx with sendfile on.
 * --tls: the same over TLS, with the certificate chain CERT and its key.
 * Prints "Serving on HOST:PORT" when ready; SIGINT/SIGTERM stop it cleanly.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <rill.h>

#include "bench.h"
#ifdef RILL_HAVE_TLS
#include <rill/tls.h>
#endif

struct config {
	const char *host;
	int port;
	enum bench_mode mode;
	int threads;
	const char *cert, *key;	/* --tls */
	int root;		/* --root DIR, opened; -1: none */
};

/* Writes back what the reader holds, straight from its buffer (peek and
 * consume): one copy per message, into the writer's queue, and no buffer
 * of the handler's own. A 64 KiB array on the task's stack would reach a
 * second stack page under the read's frames, 4 KiB more per idle
 * connection. */
static int handle_echo(rill_reader *r, rill_writer *w, void *arg)
{
	rill_bytes v;

	(void)arg;
	while (rill_reader_peek(r, &v) > 0) {
		rill_writer_write(w, v.data, v.len);
		rill_reader_consume(r, v.len);
		if (rill_writer_drain(w) < 0)
			break;
	}
	rill_writer_close(w);
	return 0;
}

static int handle_sink(rill_reader *r, rill_writer *w, void *arg)
{
	rill_bytes v;

	(void)arg;
	/* Zero-copy: look at the bytes and let them go. */
	while (rill_reader_peek(r, &v) > 0)
		rill_reader_consume(r, v.len);
	rill_writer_close(w);
	return 0;
}

static const char http_response[] =
	"HTTP/1.1 200 OK\r\nContent-Length: 13\r\nContent-Type: text/plain\r\n\r\n"
	"Hello, world!";

static int handle_http(rill_reader *r, rill_writer *w, void *arg)
{
	rill_bytes req;

	(void)arg;
	while (rill_reader_readuntil(r, "\r\n\r\n", 4, &req) > 0) {
		rill_writer_write(w, http_response, sizeof(http_response) - 1);
		if (rill_writer_drain(w) < 0)
			break;
	}
	rill_writer_close(w);
	return 0;
}

/* ---- --mode http --root DIR: files through sendfile ----------------- */

/* The file the request line names, opened beneath the root (openat2
 * RESOLVE_BENEATH: no "..", no absolute symlink escapes); -errno. */
static int http_open(int root, const char *req, size_t len)
{
	struct open_how how = { .flags = O_RDONLY | O_CLOEXEC,
				.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS };
	char path[1024];
	const char *p = req + 4, *end;
	int fd;

	if (len < 5 || memcmp(req, "GET /", 5) != 0)
		return -EINVAL;
	end = memchr(p, ' ', len - 4);
	if (!end || (size_t)(end - p) >= sizeof(path))
		return -ENOENT;
	memcpy(path, p + 1, (size_t)(end - p) - 1);	/* relative to the root */
	path[end - p - 1] = '\0';
	path[strcspn(path, "?")] = '\0';
	fd = (int)syscall(SYS_openat2, root, path[0] ? path : ".", &how, sizeof(how));
	return fd < 0 ? -errno : fd;
}

/* One response: the file's bytes after a header, or a 404 / 405. */
static int http_file_response(rill_writer *w, int root, const rill_bytes *req)
{
	char head[160];
	struct stat st;
	int fd = http_open(root, req->data, req->len), n;
	ssize_t sent;

	if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		static const char nf[] = "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
		static const char na[] = "HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n";

		if (fd >= 0)
			close(fd);
		return fd == -EINVAL ? rill_writer_write(w, na, sizeof(na) - 1) :
				       rill_writer_write(w, nf, sizeof(nf) - 1);
	}
	n = snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %lld\r\n"
		     "Content-Type: application/octet-stream\r\n\r\n", (long long)st.st_size);
	rill_writer_write(w, head, (size_t)n);
	sent = rill_writer_sendfile(w, fd, 0, (size_t)st.st_size);
	close(fd);
	return sent == st.st_size ? 0 : -EIO;
}

static int handle_http_files(rill_reader *r, rill_writer *w, void *arg)
{
	const struct config *cfg = arg;
	rill_bytes req;

	while (rill_reader_readuntil(r, "\r\n\r\n", 4, &req) > 0) {
		if (http_file_response(w, cfg->root, &req) < 0 || rill_writer_drain(w) < 0)
			break;
	}
	rill_writer_close(w);
	return 0;
}

/* Takes "--root DIR" out of argv (the shared option parser does not know
 * it) and opens DIR; exits 2 on a missing or unopenable DIR. */
static int take_root(int *argc, char **argv)
{
	int root = -1;

	for (int i = 1; i < *argc; i++) {
		if (strcmp(argv[i], "--root") != 0)
			continue;
		if (i + 1 >= *argc || (root = open(argv[i + 1], O_RDONLY | O_DIRECTORY |
						   O_CLOEXEC)) < 0) {
			fprintf(stderr, "rill-echo-server: --root needs a directory\n");
			exit(2);
		}
		memmove(&argv[i], &argv[i + 2], (size_t)(*argc - i - 1) * sizeof(*argv));
		*argc -= 2;
		break;
	}
	return root;
}

static const rill_client_connected_fn handlers[] = {
	[BENCH_MODE_ECHO] = handle_echo,
	[BENCH_MODE_SINK] = handle_sink,
	[BENCH_MODE_HTTP] = handle_http,
};

/* Signals arrive on a thread of their own, which asks the loop to cancel
 * the serving task: the one call rill allows from another thread. */
struct stopper {
	rill_loop *loop;
	rill_task *task;
	sigset_t set;
};

static void stop_serving(void *arg)
{
	struct stopper *st = arg;

	rill_task_cancel(st->task);
}

static void *signal_thread(void *arg)
{
	struct stopper *st = arg;
	int sig;

	sigwait(&st->set, &sig);
	rill_loop_call_soon_threadsafe(st->loop, stop_serving, st);
	return NULL;
}

/* --tls: a server context for every loop the server runs on (contexts
 * are shared between threads). */
static int tls_context(const struct config *cfg, rill_tls_ctx **ctxp)
{
	*ctxp = NULL;
	if (!cfg->cert)
		return 0;
#ifdef RILL_HAVE_TLS
	rill_tls_options o = { .size = sizeof(rill_tls_options), .cert_file = cfg->cert,
		.key_file = cfg->key };
	int err = rill_tls_ctx_new_server(&o, ctxp);

	if (err < 0)
		fprintf(stderr, "rill-echo-server: --tls: %s (%s)\n", rill_strerror(err),
			rill_tls_last_error());
	return err;
#else
	fprintf(stderr, "rill-echo-server: --tls: TLS is not available in this build\n");
	return RILL_ETLS_NOT_AVAILABLE;
#endif
}

static int serve(void *arg)
{
	struct config *cfg = arg;
	rill_server *server;
	rill_tls_ctx *tls;
	int err;

	if (tls_context(cfg, &tls) < 0)
		return 1;
	err = rill_start_server(cfg->mode == BENCH_MODE_HTTP && cfg->root >= 0 ?
				handle_http_files : handlers[cfg->mode], cfg,
				cfg->host, cfg->port,
				RILL_SERVER_OPTIONS(.backlog = 4096, .ssl = tls,
							.threads = cfg->threads > 1 ? cfg->threads : 0),
				&server);
	if (err < 0) {
		fprintf(stderr, "rill-echo-server: %s: %s\n", rill_strerror(err),
			rill_error_detail());
		return 1;
	}
	printf("Serving on %s:%d\n", cfg->host, rill_server_port(server));
	fflush(stdout);
	err = rill_server_serve_forever(server);
	rill_server_free(server);
#ifdef RILL_HAVE_TLS
	rill_tls_ctx_free(tls);
#endif
	return err == -ECANCELED ? 0 : 1;
}

#define USAGE "rill-echo-server [--port P] [--host H] [--mode echo|sink|http]\n" \
	"                        [--threads N] [--tls CERT KEY] [--root DIR]"
#define OPTIONS \
	"  --port P          listen on port P (default 8888; 0: any free port)\n" \
	BENCH_SERVER_OPTIONS \
	"  --threads N       serve on N loops, a thread each (default 1)\n" \
	"  --tls CERT KEY    serve TLS with this certificate chain and key\n" \
	"  --root DIR        --mode http: serve GET of the files under DIR\n" \
	"  -h, --help        print this and exit\n"

static void parse_args(int argc, char **argv, struct config *cfg)
{
	struct bench_server_args a = { .host = cfg->host, .port_num = -1, .threads = 1 };

	bench_server_parse(argc, argv, USAGE, OPTIONS,
			   BENCH_SERVER_THREADS | BENCH_SERVER_TLS, &a);
	cfg->host = a.host;
	if (a.port_num >= 0)
		cfg->port = a.port_num;
	cfg->mode = a.mode;
	cfg->threads = a.threads;
	cfg->cert = a.cert;
	cfg->key = a.key;
}

int main(int argc, char **argv)
{
	struct config cfg = { .host = "127.0.0.1", .port = 8888, .threads = 1, .root = -1 };
	struct stopper st;
	pthread_t th;
	int result = 1, err;

	cfg.root = take_root(&argc, argv);
	parse_args(argc, argv, &cfg);
	raise_nofile();
	/* Blocked in every thread, so only sigwait() sees them. */
	sigemptyset(&st.set);
	sigaddset(&st.set, SIGINT);
	sigaddset(&st.set, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &st.set, NULL);
	err = rill_loop_new(NULL, &st.loop);
	if (err < 0) {
		fprintf(stderr, "rill-echo-server: %s\n", rill_error_detail());
		return 1;
	}
	/* The signal thread first: without it SIGINT and SIGTERM, blocked
	 * above, could never stop the server. */
	if ((err = pthread_create(&th, NULL, signal_thread, &st)) != 0) {
		fprintf(stderr, "rill-echo-server: cannot start the signal thread: %s\n",
			strerror(err));
		rill_loop_free(st.loop);
		return 1;
	}
	pthread_detach(th);
	if ((err = rill_spawn(st.loop, serve, &cfg, &st.task)) < 0) {
		fprintf(stderr, "rill-echo-server: %s\n", rill_strerror(err));
		rill_loop_free(st.loop);
		return 1;
	}
	rill_task_join(st.task, &result);
	rill_loop_free(st.loop);
	return result;
}
