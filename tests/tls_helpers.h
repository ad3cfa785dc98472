/* SPDX-License-Identifier: MIT */
/* Shared by the test_tls_* programs: throwaway certificates (tls_certs.sh,
 * made once per test program), contexts made from them, peer processes
 * (openssl, curl, nginx) on pipes, TLS servers and connections. The
 * helpers of every test program come with it, from tests/helpers.h.
 *
 * Include it once per test program: it defines Criterion's PRE_ALL and
 * POST_ALL hooks. The certificates are made in the runner process before
 * any test and found by the tests through RILL_TLS_CERTS; every test runs
 * in a process of its own, so nothing else is shared.
 */
#ifndef RILL_TESTS_TLS_HELPERS_H
#define RILL_TESTS_TLS_HELPERS_H

#include "tests/helpers.h"

#include <criterion/hooks.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <time.h>

#include "rill/tls.h"

/* ---- certificates --------------------------------------------------- */

static char tls_made[PATH_MAX];	/* runner process: the directory it made */

/* Runs argv to its end with stdout and stderr on /dev/null; exit code. */
static inline int tls_system(char *const argv[])
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		int null = open("/dev/null", O_RDWR);

		dup2(null, 1);
		dup2(null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128;
}

ReportHook(PRE_ALL)(struct criterion_test_set *set)
{
	char script[PATH_MAX], tmpl[] = "/tmp/rill-tls-test-XXXXXX";
	const char *slash = strrchr(__FILE__, '/');

	(void)set;
	if (getenv("RILL_TLS_CERTS") || !mkdtemp(tmpl))
		return;
	/* tls_certs.sh lies next to this header. */
	snprintf(script, sizeof(script), "%.*s/tls_certs.sh",
		 slash ? (int)(slash - __FILE__) : 1, slash ? __FILE__ : ".");
	if (tls_system((char *[]){ "bash", script, tmpl, NULL }) != 0) {
		fprintf(stderr, "tls_certs.sh %s failed\n", tmpl);
		tls_system((char *[]){ "rm", "-rf", tmpl, NULL });
		return;
	}
	snprintf(tls_made, sizeof(tls_made), "%s", tmpl);
	setenv("RILL_TLS_CERTS", tls_made, 1);
}

ReportHook(POST_ALL)(struct criterion_global_stats *stats)
{
	(void)stats;
	if (*tls_made)
		tls_system((char *[]){ "rm", "-rf", tls_made, NULL });
}

/* The path of one of tls_certs.sh's files ("ca.pem"). Eight rotating
 * buffers: enough for one call's arguments. */
static inline const char *tls_file(const char *name)
{
	static char bufs[8][PATH_MAX];
	static unsigned next;
	const char *dir = getenv("RILL_TLS_CERTS");
	char *b = bufs[next++ % 8];

	cr_assert_not_null(dir, "no test certificates (tls_certs.sh failed?)");
	snprintf(b, PATH_MAX, "%s/%s", dir, name);
	return b;
}

/* A server context for NAME.pem and NAME.key ("server", "expired", ...). */
static inline rill_tls_ctx *tls_server_ctx_opts(const char *name, rill_tls_options o)
{
	char cert[64], key[64];
	rill_tls_ctx *ctx = NULL;
	int err;

	snprintf(cert, sizeof(cert), "%s.pem", name);
	snprintf(key, sizeof(key), "%s.key", name);
	o.cert_file = tls_file(cert);
	o.key_file = tls_file(key);
	err = rill_tls_ctx_new_server(&o, &ctx);
	cr_assert_eq(err, 0, "server context %s: %s %s", name, rill_strerror(err),
		     rill_tls_last_error());
	return ctx;
}

/* A server context for NAME.pem and NAME.key with the default options. */
static inline rill_tls_ctx *tls_server_ctx(const char *name)
{
	return tls_server_ctx_opts(name, (rill_tls_options){ .size = sizeof(rill_tls_options) });
}

/* A server context for server.pem that asks for a client certificate and
 * requires one signed by ca.pem. */
static inline rill_tls_ctx *tls_server_ctx_verifying(void)
{
	return tls_server_ctx_opts("server", (rill_tls_options){
		.size = sizeof(rill_tls_options), .ca_file = tls_file("ca.pem"),
		.verify_client = true });
}

/* A client context trusting ca.pem that shows client.pem as its
 * certificate. */
static inline rill_tls_ctx *tls_client_ctx_with_cert(void)
{
	rill_tls_options o = { .size = sizeof(rill_tls_options), .ca_file = tls_file("ca.pem"),
			       .cert_file = tls_file("client.pem"),
			       .key_file = tls_file("client.key") };
	rill_tls_ctx *ctx = NULL;
	int err = rill_tls_ctx_new_client(&o, &ctx);

	cr_assert_eq(err, 0, "client context: %s %s", rill_strerror(err),
		     rill_tls_last_error());
	return ctx;
}

/* A client context trusting CA file ca ("ca.pem", "other-ca.pem"). */
static inline rill_tls_ctx *tls_client_ctx(const char *ca)
{
	rill_tls_options o = { .size = sizeof(rill_tls_options), .ca_file = tls_file(ca) };
	rill_tls_ctx *ctx = NULL;
	int err = rill_tls_ctx_new_client(&o, &ctx);

	cr_assert_eq(err, 0, "client context: %s %s", rill_strerror(err),
		     rill_tls_last_error());
	return ctx;
}

/* ---- peer processes ------------------------------------------------- */

struct peer {
	pid_t pid;
	int in;		/* its stdin; -1 once closed */
	int out;	/* its stdout (and stderr if merged) */
};

/* CLOCK_MONOTONIC in milliseconds. */
static inline long long tls_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Starts argv (searched in PATH) with stdin and stdout on pipes; stderr
 * joins stdout if merge_stderr, else goes to /dev/null. The child dies
 * with the test (PR_SET_PDEATHSIG), so a failed assertion leaves no
 * server behind. */
static inline void peer_start(struct peer *p, char *const argv[], bool merge_stderr)
{
	int in[2], out[2];

	cr_assert_eq(pipe2(in, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	p->pid = fork();
	cr_assert_geq(p->pid, 0);
	if (p->pid == 0) {
		int null = open("/dev/null", O_WRONLY);

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(in[0], 0);
		dup2(out[1], 1);
		dup2(merge_stderr ? out[1] : null, 2);
		execvp(argv[0], argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	p->in = in[1];
	p->out = out[0];
}

/* Reads the peer's output into buf (NUL-terminated) until it holds until
 * (NULL: until EOF), EOF, or timeout_ms. Returns the length. */
static inline size_t peer_read(struct peer *p, char *buf, size_t cap,
			       const char *until, int timeout_ms)
{
	long long end = tls_now_ms() + timeout_ms;
	size_t n = 0;

	buf[0] = '\0';
	while (n + 1 < cap && !(until && strstr(buf, until))) {
		struct pollfd pf = { .fd = p->out, .events = POLLIN };
		long long left = end - tls_now_ms();
		ssize_t got;

		if (left <= 0 || poll(&pf, 1, (int)left) != 1)
			break;
		got = read(p->out, buf + n, until ? 1 : cap - 1 - n);
		if (got <= 0)
			break;
		n += (size_t)got;
		buf[n] = '\0';
	}
	return n;
}

/* Closes the peer's stdin (once): EOF for it. */
static inline void peer_close_stdin(struct peer *p)
{
	if (p->in >= 0)
		close(p->in);
	p->in = -1;
}

/* Waits up to timeout_ms for the peer to exit (then SIGKILL). Returns its
 * exit code, 128 + signal if killed. */
static inline int peer_wait(struct peer *p, int timeout_ms)
{
	long long end = tls_now_ms() + timeout_ms;
	int status = 0;
	pid_t got;

	while ((got = waitpid(p->pid, &status, WNOHANG)) == 0 && tls_now_ms() < end)
		usleep(5000);
	if (got == 0) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &status, 0);
	}
	peer_close_stdin(p);
	close(p->out);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Asks the peer to end (SIGTERM) and waits for it, 5 s at most. */
static inline void peer_stop(struct peer *p)
{
	kill(p->pid, SIGTERM);
	peer_wait(p, 5000);
}

/* A peer client run to its end on a thread of its own, so that the loop
 * (serving it) goes on in the meantime: argv, fed input then EOF on its
 * stdin, its output and exit code collected. */
struct peer_run {
	char *const *argv;
	const char *input;
	bool merge_stderr;
	char out[16384];
	int code;
	atomic_bool done;
};

/* The thread of peer_run_in_task (arg: struct peer_run). */
static inline void *peer_run_thread(void *arg)
{
	struct peer_run *r = arg;
	struct peer p;

	peer_start(&p, r->argv, r->merge_stderr);
	if (r->input && write(p.in, r->input, strlen(r->input)) < 0)
		fprintf(stderr, "%s: no input written\n", r->argv[0]);
	peer_read(&p, r->out, sizeof(r->out), NULL, 20000);
	r->code = peer_wait(&p, 5000);
	atomic_store(&r->done, true);
	return NULL;
}

/* Runs r in a thread and waits for it from a task (the loop keeps
 * running). The peer's stdin stays open until it exits: s_client and
 * curl end when the server closes, not when their input ends. */
static inline void peer_run_in_task(struct peer_run *r)
{
	pthread_t th;

	cr_assert_eq(pthread_create(&th, NULL, peer_run_thread, r), 0);
	for (int i = 0; i < 3000 && !atomic_load(&r->done); i++)
		rill_sleep_ms(10);
	cr_assert(atomic_load(&r->done), "%s did not finish", r->argv[0]);
	pthread_join(th, NULL);
}

/* ---- servers and connections --------------------------------------- */

/* A TLS server on 127.0.0.1 with context ctx and the options o (NULL: the
 * defaults), port chosen by the kernel, calling cb(arg) per connection.
 * The caller frees it. */
static inline rill_server *tls_serve(rill_client_connected_fn cb, void *arg, rill_tls_ctx *ctx,
				     const rill_server_options *o)
{
	rill_server_options so = o ? *o : (rill_server_options)RILL_SERVER_OPTIONS_INIT;
	rill_server *s;
	int err;

	so.ssl = ctx;
	err = rill_start_server(cb, arg, "127.0.0.1", 0, &so, &s);
	cr_assert_eq(err, 0, "start_server: %s", rill_strerror(err));
	return s;
}

/* open_connection to 127.0.0.1:port with TLS: ctx, name. */
static inline int tls_connect(int port, rill_tls_ctx *ctx, const char *name,
			      rill_reader **r, rill_writer **w)
{
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1,
		.ssl_context = ctx, .server_hostname = name };

	return rill_open_connection("127.0.0.1", port, &o, r, w);
}

/* tls_connect; fails the test, with OpenSSL's reason, if it fails. */
static inline void tls_connect_ok(int port, rill_tls_ctx *ctx, const char *name,
				  rill_reader **r, rill_writer **w)
{
	int err = tls_connect(port, ctx, name, r, w);

	cr_assert_eq(err, 0, "connect: %s (%s)", rill_strerror(err), rill_tls_last_error());
}

/* A TLS server for a test, and a client context to reach it. */
struct tls_env {
	rill_tls_ctx *sctx;	/* NULL before tls_env_start: server.pem's */
	rill_tls_ctx *cctx;	/* NULL before tls_env_start: trusting ca.pem */
	rill_server *srv;
	int port;
};

/* Starts e's server on 127.0.0.1 with the options o (NULL: the defaults)
 * and e->sctx, calling cb(arg) per connection; makes the contexts the test
 * has not set. */
static inline void tls_env_start(struct tls_env *e, rill_client_connected_fn cb, void *arg,
				 const rill_server_options *o)
{
	if (!e->sctx)
		e->sctx = tls_server_ctx("server");
	if (!e->cctx)
		e->cctx = tls_client_ctx("ca.pem");
	e->srv = tls_serve(cb, arg, e->sctx, o);
	e->port = rill_server_port(e->srv);
}

/* tls_connect_ok to e's server with e->cctx, for the name "localhost". */
static inline void tls_env_connect(const struct tls_env *e, rill_reader **r, rill_writer **w)
{
	tls_connect_ok(e->port, e->cctx, "localhost", r, w);
}

/* Frees e's server (aborting what it still serves), then its contexts. */
static inline void tls_env_stop(struct tls_env *e)
{
	rill_server_free(e->srv);
	rill_tls_ctx_free(e->cctx);
	rill_tls_ctx_free(e->sctx);
}

/* Closes e's server, waits until its callbacks have all returned (failing
 * the test if wait_closed fails), then tls_env_stop. */
static inline void tls_env_wait_stop(struct tls_env *e)
{
	rill_server_close(e->srv);
	cr_assert_eq(rill_server_wait_closed(e->srv), 0);
	tls_env_stop(e);
}

/* Writes msg, a line, and fails the test unless the same line comes back. */
static inline void expect_echo(rill_reader *r, rill_writer *w, const char *msg)
{
	rill_bytes line;
	ssize_t n;

	cr_assert_eq(rill_writer_write(w, msg, strlen(msg)), 0);
	n = rill_reader_readline(r, &line);
	cr_assert_eq(n, (ssize_t)strlen(msg), "readline: %s (%s)", rill_strerror((int)n),
		     rill_tls_last_error());
	cr_assert_arr_eq(line.data, msg, strlen(msg));
}

#endif
