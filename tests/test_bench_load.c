/* SPDX-License-Identifier: MIT */
/* rill-load http against real servers (nginx over http and https, Python's http.server, rill-echo-server --mode http) and against a test server that stalls, cuts responses, chunks bodies and answers 404; options and exit statuses. Every load is bounded in count and time, on loopback. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "tests/bench_path.h"

/* ---- processes ------------------------------------------------------- */

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Starts argv with stdout and stderr on pipes, or on /dev/null where
 * outfd and errfd are NULL (a closed pipe would kill it with SIGPIPE). */
static pid_t spawn(char *const argv[], int *outfd, int *errfd)
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 };
	pid_t pid;

	if (outfd)
		cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	if (errfd)
		cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* no server outlives a failed test */
		dup2(outfd ? out[1] : null, 1);
		dup2(errfd ? err[1] : null, 2);
		execv(argv[0], argv);
		_exit(127);
	}
	if (outfd) {
		close(out[1]);
		*outfd = out[0];
	}
	if (errfd) {
		close(err[1]);
		*errfd = err[0];
	}
	return pid;
}

struct result {
	int status;
	long long ms;		/* how long it ran */
	char out[16384], err[8192];
};

static int exit_code(const struct result *r)
{
	return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128 + WTERMSIG(r->status);
}

/* Runs argv to its end, killing it after limit_ms, and collects stdout and
 * stderr (both read together, so neither pipe fills up). */
static void run(char *const argv[], int limit_ms, struct result *r)
{
	int fds[2];
	size_t len[2] = { 0, 0 }, cap[2] = { sizeof(r->out) - 1, sizeof(r->err) - 1 };
	char *buf[2] = { r->out, r->err };
	long long start = now_ms(), end = start + limit_ms;
	pid_t pid = spawn(argv, &fds[0], &fds[1]);
	int open = 2;

	while (open && now_ms() < end) {
		struct pollfd p[2] = { { fds[0], POLLIN, 0 }, { fds[1], POLLIN, 0 } };

		if (poll(p, 2, (int)(end - now_ms())) <= 0)
			continue;
		for (int i = 0; i < 2; i++) {
			char tmp[4096];
			ssize_t got;

			if (!(p[i].revents & (POLLIN | POLLHUP)) || fds[i] < 0)
				continue;
			got = read(fds[i], tmp, sizeof(tmp));
			if (got <= 0) {
				close(fds[i]);
				fds[i] = -1;
				p[i].fd = -1;
				open--;
				continue;
			}
			if ((size_t)got > cap[i] - len[i])
				got = (ssize_t)(cap[i] - len[i]);
			memcpy(buf[i] + len[i], tmp, (size_t)got);
			len[i] += (size_t)got;
		}
	}
	kill(pid, SIGKILL);	/* no-op once it has exited */
	cr_assert_eq(waitpid(pid, &r->status, 0), pid);
	r->ms = now_ms() - start;
	for (int i = 0; i < 2; i++) {
		buf[i][len[i]] = '\0';
		if (fds[i] >= 0)
			close(fds[i]);
	}
}

/* The number after "key": in rill-load's JSON line (keys are unique). */
static double json_num(const struct result *r, const char *key)
{
	char pat[64];
	const char *json = strstr(r->out, "\n{"), *p;

	cr_assert_not_null(json, "no JSON line in: %s\nstderr: %s", r->out, r->err);
	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(json, pat);
	cr_assert_not_null(p, "no %s in %s", key, json);
	return strtod(p + strlen(pat), NULL);
}

/* rill-load with the given arguments (NULL-terminated list), run to its
 * end within limit_ms. Skips when this rill-load has no http mode. */
static void load(struct result *r, int limit_ms, ...)
{
	char prog[PATH_MAX], *argv[64];
	va_list ap;
	int n = 0;

	bench_path("rill-load", prog, sizeof(prog));
	argv[n++] = prog;
	va_start(ap, limit_ms);
	while (n < 63 && (argv[n] = va_arg(ap, char *)))
		n++;
	va_end(ap);
	argv[n] = NULL;
	run(argv, limit_ms, r);
	if (strstr(r->err, "built without libhttp-parser"))
		cr_skip_test("rill-load built without libhttp-parser (libhttp-parser-dev)");
}

static int free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

/* Waits until something accepts on 127.0.0.1:port (5 s at most). */
static bool wait_listening(int port, pid_t pid)
{
	for (int i = 0; i < 250; i++) {
		struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
					 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		bool ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

		close(fd);
		if (ok)
			return true;
		if (pid > 0 && waitpid(pid, NULL, WNOHANG) == pid)
			return false;
		usleep(20000);
	}
	return false;
}

static void stop(pid_t pid)
{
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
}

static void url(char *buf, size_t len, const char *scheme, const char *host, int port,
		const char *path)
{
	snprintf(buf, len, "%s://%s:%d%s", scheme, host, port, path);
}

/* ---- a test server with bad habits ----------------------------------- */

enum behaviour {
	SERVE_OK,		/* 200 with Content-Length */
	SERVE_CHUNKED,		/* 200 with a chunked body, in pieces */
	SERVE_CUT,		/* every 3rd response on a connection cut in half, then closed */
	SERVE_UNTIL_CLOSE,	/* 200, no length, body ends at close */
	SERVE_404,		/* 404 Not Found */
	SERVE_STALL,		/* stalls 200 ms once a second, whole server */
	SERVE_SILENT,		/* reads, never answers */
	SERVE_GARBAGE,		/* answers with something that is not HTTP */
};

#define TS_MAX_CONNS 64

struct tserver {
	enum behaviour how;
	int lfd, port;
	pthread_t th;
	volatile bool stop;
	long long t0;
	pthread_mutex_t lock;
	char first_request[2048];	/* the first request head and body seen */
	unsigned long requests;
	struct tconn {
		int fd;
		size_t len;
		unsigned long served;
		char buf[8192];
	} c[TS_MAX_CONNS];
};

static void ts_send(int fd, const char *s)
{
	send(fd, s, strlen(s), MSG_NOSIGNAL);
}

static void ts_close(struct tconn *c)
{
	close(c->fd);
	c->fd = -1;
	c->len = 0;
	c->served = 0;
}

/* Answers one request on c as the server's behaviour says. Returns false
 * when the connection was closed. */
static bool ts_answer(struct tserver *s, struct tconn *c)
{
	static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";

	c->served++;
	switch (s->how) {
	case SERVE_OK:
	case SERVE_STALL:
		ts_send(c->fd, ok);
		return true;
	case SERVE_CHUNKED:
		ts_send(c->fd, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
		usleep(200);
		ts_send(c->fd, "lo\r\n7\r\n, world\r\n");
		usleep(200);
		ts_send(c->fd, "0\r\n\r\n");
		return true;
	case SERVE_CUT:
		if (c->served % 3) {
			ts_send(c->fd, ok);
			return true;
		}
		ts_send(c->fd, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part of it");
		ts_close(c);
		return false;
	case SERVE_UNTIL_CLOSE:
		ts_send(c->fd, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nthe body runs to the close");
		ts_close(c);
		return false;
	case SERVE_404:
		ts_send(c->fd, "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
		return true;
	case SERVE_GARBAGE:
		ts_send(c->fd, "HTTX/9.9 what is this\r\n\r\n");
		return true;
	case SERVE_SILENT:
		return true;
	}
	return true;
}

/* Takes every whole request (head, and a body of Content-Length) off the
 * front of c's buffer and answers it. */
static void ts_requests(struct tserver *s, struct tconn *c)
{
	for (;;) {
		char *end = memmem(c->buf, c->len, "\r\n\r\n", 4), *cl;
		size_t head, body = 0, whole;

		if (!end)
			return;
		head = (size_t)(end - c->buf) + 4;
		c->buf[head - 1] = '\0';	/* the last \n: strcasestr stays in the head */
		cl = strcasestr(c->buf, "\r\nContent-Length:");
		if (cl)
			body = strtoul(cl + 17, NULL, 10);
		c->buf[head - 1] = '\n';
		whole = head + body;
		if (whole > c->len)
			return;
		pthread_mutex_lock(&s->lock);
		if (!s->requests++)
			snprintf(s->first_request, sizeof(s->first_request), "%.*s", (int)whole, c->buf);
		pthread_mutex_unlock(&s->lock);
		memmove(c->buf, c->buf + whole, c->len - whole);
		c->len -= whole;
		if (!ts_answer(s, c))
			return;
	}
}

static void ts_accept(struct tserver *s)
{
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC), one = 1;

	if (fd < 0)
		return;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	for (int i = 0; i < TS_MAX_CONNS; i++) {
		if (s->c[i].fd < 0) {
			s->c[i].fd = fd;
			return;
		}
	}
	close(fd);
}

/* The stall: for the first 200 ms of every second the whole server sleeps,
 * as a server in a garbage-collection pause would. */
static void ts_maybe_stall(struct tserver *s)
{
	long long phase = (now_ms() - s->t0) % 1000;

	if (s->how == SERVE_STALL && phase < 200)
		usleep((useconds_t)(200 - phase) * 1000);
}

static void *ts_main(void *arg)
{
	struct tserver *s = arg;

	while (!s->stop) {
		struct pollfd p[TS_MAX_CONNS + 1];
		int n = 0, map[TS_MAX_CONNS + 1];

		ts_maybe_stall(s);
		p[n++] = (struct pollfd){ s->lfd, POLLIN, 0 };
		for (int i = 0; i < TS_MAX_CONNS; i++) {
			if (s->c[i].fd >= 0) {
				map[n] = i;
				p[n++] = (struct pollfd){ s->c[i].fd, POLLIN, 0 };
			}
		}
		if (poll(p, (nfds_t)n, 20) <= 0)
			continue;
		ts_maybe_stall(s);
		if (p[0].revents & POLLIN)
			ts_accept(s);
		for (int k = 1; k < n; k++) {
			struct tconn *c = &s->c[map[k]];
			ssize_t got;

			if (!(p[k].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			got = recv(c->fd, c->buf + c->len, sizeof(c->buf) - c->len, 0);
			if (got <= 0) {
				ts_close(c);
				continue;
			}
			c->len += (size_t)got;
			ts_requests(s, c);
			if (c->fd >= 0 && c->len == sizeof(c->buf))
				ts_close(c);	/* a request too big for this server */
		}
	}
	for (int i = 0; i < TS_MAX_CONNS; i++)
		if (s->c[i].fd >= 0)
			close(s->c[i].fd);
	return NULL;
}

static struct tserver *ts_start(enum behaviour how)
{
	struct tserver *s = calloc(1, sizeof(*s));
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	cr_assert_not_null(s);
	s->how = how;
	s->t0 = now_ms();
	pthread_mutex_init(&s->lock, NULL);
	for (int i = 0; i < TS_MAX_CONNS; i++)
		s->c[i].fd = -1;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(bind(s->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(s->lfd, 128), 0);
	cr_assert_eq(getsockname(s->lfd, (struct sockaddr *)&a, &len), 0);
	s->port = ntohs(a.sin_port);
	cr_assert_eq(pthread_create(&s->th, NULL, ts_main, s), 0);
	return s;
}

static void ts_stop(struct tserver *s)
{
	s->stop = true;
	pthread_join(s->th, NULL);
	close(s->lfd);
	free(s);
}

/* ---- nginx -------------------------------------------------------------- */

static void remove_dir(const char *dir)
{
	struct result r;

	run((char *[]){ "/bin/rm", "-rf", (char *)dir, NULL }, 10000, &r);
}

/* Throwaway certificates (tests/tls_certs.sh) in a new temporary dir. */
static void make_certs(char *dir, size_t len)
{
	char tmpl[] = "/tmp/rill-load-test-XXXXXX", script[PATH_MAX], src[PATH_MAX];
	struct result r;

	cr_assert_not_null(mkdtemp(tmpl));
	snprintf(dir, len, "%s", tmpl);
	snprintf(src, sizeof(src), "%s", __FILE__);
	snprintf(script, sizeof(script), "%s/tls_certs.sh", dirname(src));
	run((char *[]){ "/bin/bash", script, dir, NULL }, 30000, &r);
	cr_assert_eq(exit_code(&r), 0, "tls_certs.sh: %s", r.err);
}

/* nginx in the foreground, one process, everything it writes in dir:
 * plain http on `port`, https on `tls_port` with the test certificate.
 * "/" answers 200; any other path is a 404 (no such file). After 100
 * requests nginx closes a keep-alive connection (Connection: close). */
static pid_t nginx_start(const char *dir, int port, int tls_port)
{
	char conf[PATH_MAX + 16], errlog[PATH_MAX + 16], prefix[PATH_MAX + 1];
	pid_t pid;
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
	snprintf(errlog, sizeof(errlog), "%s/error.log", dir);
	snprintf(prefix, sizeof(prefix), "%s/", dir);
	f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "daemon off;\nmaster_process off;\npid %s/nginx.pid;\n"
		"error_log %s;\nevents { worker_connections 256; }\n"
		"http {\n access_log off;\n keepalive_requests 100;\n"
		" client_body_temp_path %s/body;\n proxy_temp_path %s/proxy;\n"
		" fastcgi_temp_path %s/fastcgi;\n uwsgi_temp_path %s/uwsgi;\n"
		" scgi_temp_path %s/scgi;\n"
		" server {\n  listen 127.0.0.1:%d;\n  listen 127.0.0.1:%d ssl;\n"
		"  server_name localhost;\n  root %s/www;\n"
		"  ssl_certificate %s/server.pem;\n  ssl_certificate_key %s/server.key;\n"
		"  location = / { default_type text/plain; return 200 \"hello from nginx\\n\"; }\n"
		" }\n}\n", dir, errlog, dir, dir, dir, dir, dir, port, tls_port, dir, dir, dir);
	fclose(f);
	pid = spawn((char *[]){ "/usr/sbin/nginx", "-e", errlog, "-c", conf, "-p", prefix, NULL },
		    NULL, NULL);
	if (!wait_listening(port, pid) || !wait_listening(tls_port, pid)) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		cr_assert_fail("nginx did not start (see %s)", errlog);
	}
	return pid;
}

struct nginx {
	char dir[PATH_MAX];
	int port, tls_port;
	pid_t pid;
};

static void nginx_up(struct nginx *n)
{
	if (access("/usr/sbin/nginx", X_OK) < 0)
		cr_skip_test("nginx is not installed");
	make_certs(n->dir, sizeof(n->dir));
	n->port = free_port();
	n->tls_port = free_port();
	n->pid = nginx_start(n->dir, n->port, n->tls_port);
}

static void nginx_down(struct nginx *n)
{
	stop(n->pid);
	remove_dir(n->dir);
}

/* ---- against nginx ------------------------------------------------------ */

Test(bench_load, nginx_http_keep_alive_and_reopen, .timeout = 60)
{
	struct nginx n;
	struct result r;
	char u[128];

	nginx_up(&n);
	url(u, sizeof(u), "http", "127.0.0.1", n.port, "/");
	load(&r, 30000, "http", u, "-c", "4", "-n", "1000", "-D", "20s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "responses"), 1000);
	cr_assert_eq(json_num(&r, "2xx"), 1000);
	cr_assert_eq(json_num(&r, "errors"), 0);
	/* 250 requests a connection, nginx closes after 100: reopened. */
	cr_assert_geq(json_num(&r, "connects"), 4 * 3, "%s", r.out);

	/* Pipelined, 8 deep: the requests nginx leaves unanswered when it
	 * closes go again on the next connection, so none is lost. */
	load(&r, 30000, "http", u, "-c", "2", "-d", "8", "-n", "1000", "-D", "20s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "responses"), 1000);
	cr_assert_eq(json_num(&r, "errors"), 0);
	cr_assert_geq(json_num(&r, "connects"), 10);
	nginx_down(&n);
}

Test(bench_load, nginx_https_with_test_ca, .timeout = 60)
{
	struct nginx n;
	struct result r;
	char u[128], ca[PATH_MAX + 16];

	nginx_up(&n);
	snprintf(ca, sizeof(ca), "%s/ca.pem", n.dir);
	url(u, sizeof(u), "https", "localhost", n.tls_port, "/");
	load(&r, 30000, "http", u, "--tls", ca, "-c", "4", "-n", "600", "-D", "20s", "-q", NULL);
	if (exit_code(&r) == 1 && strstr(r.err, "TLS is not available"))
		cr_skip_test("rill-load built without rill-tls");
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "responses"), 600);
	cr_assert_eq(json_num(&r, "2xx"), 600);
	cr_assert_eq(json_num(&r, "errors"), 0);

	/* Without the test CA the server is not trusted: connect errors. */
	setenv("SSL_CERT_FILE", "/dev/null", 1);
	load(&r, 10000, "http", u, "-c", "1", "-n", "5", "-D", "1s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 3, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_gt(json_num(&r, "connect"), 0);
	cr_assert_eq(json_num(&r, "responses"), 0);
	/* --insecure: no verification at all. */
	load(&r, 10000, "http", u, "-k", "-c", "1", "-n", "5", "-D", "5s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "responses"), 5);
	unsetenv("SSL_CERT_FILE");
	nginx_down(&n);
}

Test(bench_load, nginx_404_counted_as_non_2xx, .timeout = 60)
{
	struct nginx n;
	struct result r;
	char u[128];

	nginx_up(&n);
	url(u, sizeof(u), "http", "127.0.0.1", n.port, "/no/such/file");
	load(&r, 30000, "http", u, "-c", "2", "-n", "200", "-D", "20s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 3, "errors past --max-errors 0: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "responses"), 200);
	cr_assert_eq(json_num(&r, "4xx"), 200);
	cr_assert_eq(json_num(&r, "2xx"), 0);
	cr_assert_eq(json_num(&r, "non2xx"), 200);
	cr_assert_eq(json_num(&r, "errors"), 200);
	cr_assert(strstr(r.out, "4xx 200"), "the summary: %s", r.out);

	load(&r, 30000, "http", u, "-c", "2", "-n", "200", "--max-errors", "200", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "200 errors allowed: %s", r.err);
	nginx_down(&n);
}

/* ---- against Python's http.server and rill-echo-server ------------------- */

Test(bench_load, python_http_server_closes_every_connection, .timeout = 60)
{
	char port[16], dir[] = "/tmp/rill-load-py-XXXXXX", file[64], u[128];
	struct result r;
	pid_t pid;
	FILE *f;
	int p;

	if (access("/usr/bin/python3", X_OK) < 0)
		cr_skip_test("python3 is not installed");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(file, sizeof(file), "%s/index.html", dir);
	f = fopen(file, "w");
	cr_assert_not_null(f);
	fputs("hello from python\n", f);
	fclose(f);
	p = free_port();
	snprintf(port, sizeof(port), "%d", p);
	pid = spawn((char *[]){ "/usr/bin/python3", "-m", "http.server", "--bind", "127.0.0.1",
				"--directory", dir, port, NULL }, NULL, NULL);
	cr_assert(wait_listening(p, pid), "python3 -m http.server did not start");
	/* HTTP/1.0: every response ends its connection; each is reopened. */
	url(u, sizeof(u), "http", "127.0.0.1", p, "/index.html");
	load(&r, 30000, "http", u, "-c", "2", "-n", "100", "-D", "20s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "responses"), 100);
	cr_assert_eq(json_num(&r, "2xx"), 100);
	cr_assert_eq(json_num(&r, "connects"), 100);
	cr_assert_eq(json_num(&r, "errors"), 0);

	url(u, sizeof(u), "http", "127.0.0.1", p, "/missing");
	load(&r, 30000, "http", u, "-c", "1", "-n", "10", "-q", NULL);
	cr_assert_eq(exit_code(&r), 3);
	cr_assert_eq(json_num(&r, "4xx"), 10);
	stop(pid);
	remove_dir(dir);
}

static pid_t echo_server_start(const char *mode, int *portp)
{
	char prog[PATH_MAX], port[16];
	pid_t pid;

	bench_path("rill-echo-server", prog, sizeof(prog));
	*portp = free_port();
	snprintf(port, sizeof(port), "%d", *portp);
	pid = spawn((char *[]){ prog, "--port", port, "--mode", (char *)mode, NULL }, NULL, NULL);
	cr_assert(wait_listening(*portp, pid), "rill-echo-server did not start");
	return pid;
}

Test(bench_load, rill_echo_server_http_closed_and_open_loop, .timeout = 60)
{
	struct result r;
	char u[128], file[] = "/tmp/rill-load-latency-XXXXXX", text[4096];
	int port, fd;
	pid_t pid = echo_server_start("http", &port);
	ssize_t n;

	url(u, sizeof(u), "http", "localhost", port, "/");
	load(&r, 30000, "http", u, "-c", "8", "--threads", "2", "-n", "2000", "-D", "20s", "-q",
	     NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "responses"), 2000);
	cr_assert_eq(json_num(&r, "threads"), 2);
	cr_assert_eq(json_num(&r, "latency_samples"), 2000);
	cr_assert_gt(json_num(&r, "p99_us"), 0);

	/* Open loop: 400 requests/s for 2 s is about 800 requests. */
	fd = mkstemp(file);
	cr_assert_geq(fd, 0);
	load(&r, 30000, "http", u, "-c", "4", "--rate", "400", "--duration", "2s",
	     "--latency-file", file, "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_geq(json_num(&r, "responses"), 700, "%s", r.out);
	cr_assert_leq(json_num(&r, "requests"), 801, "%s", r.out);
	cr_assert_eq(json_num(&r, "target_rate"), 400);
	cr_assert(strstr(r.out, "open loop"), "%s", r.out);
	n = read(fd, text, sizeof(text) - 1);
	cr_assert_gt(n, 0);
	text[n] = '\0';
	cr_assert(strstr(text, "Value     Percentile TotalCount 1/(1-Percentile)"), "%s", text);
	cr_assert(strstr(text, " 1.000000000000 "), "ends at the 100th percentile: %s", text);
	close(fd);
	unlink(file);
	stop(pid);
}

Test(bench_load, echo_modes_keep_their_options, .timeout = 60)
{
	struct result r;
	char port[16];
	int p;
	pid_t pid = echo_server_start("echo", &p);

	snprintf(port, sizeof(port), "%d", p);
	/* compare.py's spelling: mode, -c, -s, -d, -t SECS, --port, -q. */
	load(&r, 30000, "echo", "-c", "4", "-s", "64", "-d", "2", "-t", "1", "--port", port, "-q",
	     NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_gt(json_num(&r, "msgs"), 0);
	cr_assert_gt(json_num(&r, "rate"), 0);
	cr_assert_gt(json_num(&r, "p99_us"), 0);
	cr_assert_eq(json_num(&r, "errors"), 0);
	load(&r, 30000, "connect", "-c", "2", "-s", "64", "-t", "1", "--port", port, "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_gt(json_num(&r, "msgs"), 0);
	stop(pid);
}

/* ---- against the test server ------------------------------------------- */

Test(bench_load, chunked_bodies, .timeout = 60)
{
	struct tserver *s = ts_start(SERVE_CHUNKED);
	struct result r;
	char u[128];

	url(u, sizeof(u), "http", "127.0.0.1", s->port, "/");
	load(&r, 30000, "http", u, "-c", "3", "-n", "300", "-D", "20s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "responses"), 300);
	cr_assert_eq(json_num(&r, "errors"), 0);
	cr_assert_eq(json_num(&r, "connects"), 3);
	ts_stop(s);
}

Test(bench_load, body_until_close, .timeout = 60)
{
	struct tserver *s = ts_start(SERVE_UNTIL_CLOSE);
	struct result r;
	char u[128];

	url(u, sizeof(u), "http", "127.0.0.1", s->port, "/");
	load(&r, 30000, "http", u, "-c", "2", "-n", "50", "-D", "20s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "responses"), 50);
	cr_assert_eq(json_num(&r, "connects"), 50);
	cr_assert_eq(json_num(&r, "errors"), 0);
	ts_stop(s);
}

Test(bench_load, server_closing_mid_response, .timeout = 60)
{
	struct tserver *s = ts_start(SERVE_CUT);
	struct result r;
	char u[128];

	url(u, sizeof(u), "http", "127.0.0.1", s->port, "/");
	load(&r, 30000, "http", u, "-c", "2", "-n", "90", "-D", "20s", "-q", NULL);
	/* Every third response is cut: 60 whole, 30 read errors, and each
	 * cut connection is reopened. */
	cr_assert_eq(exit_code(&r), 3, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "responses"), 60, "%s", r.out);
	cr_assert_eq(json_num(&r, "read"), 30, "%s", r.out);
	cr_assert_eq(json_num(&r, "errors"), 30);
	cr_assert_geq(json_num(&r, "connects"), 30);
	ts_stop(s);
}

Test(bench_load, garbage_is_a_protocol_error, .timeout = 60)
{
	struct tserver *s = ts_start(SERVE_GARBAGE);
	struct result r;
	char u[128];

	url(u, sizeof(u), "http", "127.0.0.1", s->port, "/");
	load(&r, 30000, "http", u, "-c", "1", "-n", "5", "-D", "10s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 3, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "protocol"), 5, "%s", r.out);
	cr_assert_eq(json_num(&r, "responses"), 0);
	ts_stop(s);
}

Test(bench_load, test_server_404_is_non_2xx, .timeout = 60)
{
	struct tserver *s = ts_start(SERVE_404);
	struct result r;
	char u[128];

	url(u, sizeof(u), "http", "127.0.0.1", s->port, "/");
	load(&r, 30000, "http", u, "-c", "2", "-n", "40", "-e", "40", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "4xx"), 40);
	cr_assert_eq(json_num(&r, "non2xx"), 40);
	ts_stop(s);
}

Test(bench_load, method_headers_and_body_are_sent, .timeout = 60)
{
	struct tserver *s = ts_start(SERVE_OK);
	struct result r;
	char u[128], host[64];

	url(u, sizeof(u), "http", "127.0.0.1", s->port, "/submit?x=1#frag");
	load(&r, 30000, "http", u, "-c", "1", "-n", "3", "-m", "POST", "-H", "X-Test: yes",
	     "--header", "Accept: */*", "--body", "hello", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_eq(json_num(&r, "responses"), 3);
	snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", s->port);
	cr_assert_eq(strncmp(s->first_request, "POST /submit?x=1 HTTP/1.1\r\n", 27), 0, "%s",
		     s->first_request);
	cr_assert(strstr(s->first_request, host), "%s", s->first_request);
	cr_assert(strstr(s->first_request, "\r\nX-Test: yes\r\n"), "%s", s->first_request);
	cr_assert(strstr(s->first_request, "\r\nAccept: */*\r\n"), "%s", s->first_request);
	cr_assert(strstr(s->first_request, "\r\nContent-Length: 5\r\n\r\nhello"), "%s",
		  s->first_request);
	cr_assert_eq(s->requests, 3);
	ts_stop(s);
}

/* The stall: 200 ms once a second, at 200 requests/s, which the server
 * otherwise answers at once. Open loop times each request from when it was
 * due, so the requests that queued behind the stall show it: about a
 * fifth of them waited up to 200 ms, and p99 is well past 100 ms. */
Test(bench_load, open_loop_latency_shows_a_stall, .timeout = 60)
{
	struct tserver *s = ts_start(SERVE_STALL);
	struct result r;
	char u[128];

	url(u, sizeof(u), "http", "127.0.0.1", s->port, "/");
	load(&r, 30000, "http", u, "-c", "4", "-R", "200", "-D", "3s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_geq(json_num(&r, "responses"), 500, "kept up outside the stalls: %s", r.out);
	cr_assert_geq(json_num(&r, "p99_us"), 100000, "%s", r.out);
	cr_assert_geq(json_num(&r, "max_us"), 150000, "%s", r.out);
	cr_assert_lt(json_num(&r, "p50_us"), 100000, "%s", r.out);
	ts_stop(s);
}

/* The closed loop waits through each stall and ends on time. */
Test(bench_load, closed_loop_does_not_hang_on_a_stall, .timeout = 60)
{
	struct tserver *s = ts_start(SERVE_STALL);
	struct result r;
	char u[128];

	url(u, sizeof(u), "http", "127.0.0.1", s->port, "/");
	load(&r, 20000, "http", u, "-c", "4", "-D", "2s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_gt(json_num(&r, "responses"), 0);
	cr_assert_lt(r.ms, 6000, "ran %lld ms for a 2 s load", r.ms);
	ts_stop(s);
}

/* A server that never answers: every request times out, the connection
 * is reopened, the run still ends on time. */
Test(bench_load, silent_server_times_out, .timeout = 60)
{
	struct tserver *s = ts_start(SERVE_SILENT);
	struct result r;
	char u[128];

	url(u, sizeof(u), "http", "127.0.0.1", s->port, "/");
	load(&r, 20000, "http", u, "-c", "2", "--timeout", "200ms", "-D", "1s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 3, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_geq(json_num(&r, "timeout"), 4, "%s", r.out);
	cr_assert_eq(json_num(&r, "responses"), 0);
	cr_assert_gt(json_num(&r, "connects"), 2);
	cr_assert_lt(r.ms, 5000, "ran %lld ms for a 1 s load", r.ms);

	/* Without --timeout the wait ends with the run. */
	load(&r, 20000, "http", u, "-c", "2", "--timeout", "0", "-D", "1s", "-q", NULL);
	cr_assert_eq(exit_code(&r), 0, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_lt(r.ms, 5000, "ran %lld ms for a 1 s load", r.ms);
	ts_stop(s);
}

Test(bench_load, nobody_listening_is_a_connect_error, .timeout = 60)
{
	struct result r;
	char u[128];

	url(u, sizeof(u), "http", "127.0.0.1", free_port(), "/");
	load(&r, 20000, "http", u, "-c", "2", "-D", "500ms", NULL);
	cr_assert_eq(exit_code(&r), 3, "rill-load: %s\n%s", r.out, r.err);
	cr_assert_gt(json_num(&r, "connect"), 0);
	cr_assert(strstr(r.err, "connect: Connection refused"), "%s", r.err);
	cr_assert_lt(r.ms, 5000);
}

/* ---- options ------------------------------------------------------------- */

Test(bench_load, help_usage_and_bad_options, .timeout = 60)
{
	struct result r;

	load(&r, 10000, "--help", NULL);
	cr_assert_eq(exit_code(&r), 0);
	cr_assert_eq(strncmp(r.out, "Usage: rill-load http URL", 25), 0, "%s", r.out);
	cr_assert(strstr(r.out, "--rate"), "%s", r.out);
	cr_assert(strstr(r.out, "--connections"), "%s", r.out);
	cr_assert_str_eq(r.err, "");

	load(&r, 10000, "http", "http://127.0.0.1:1/", "--no-such-option", NULL);
	cr_assert_eq(exit_code(&r), 2);
	cr_assert(strstr(r.err, "Usage: rill-load"), "%s", r.err);
	cr_assert_str_eq(r.out, "");

	load(&r, 10000, "http", NULL);
	cr_assert_eq(exit_code(&r), 2);
	cr_assert(strstr(r.err, "Usage: rill-load"), "%s", r.err);

	load(&r, 10000, "http", "ftp://127.0.0.1/", NULL);
	cr_assert_eq(exit_code(&r), 2, "%s", r.err);

	load(&r, 10000, "http", "http://127.0.0.1:1/", "--duration", "soon", NULL);
	cr_assert_eq(exit_code(&r), 2);
	cr_assert(strstr(r.err, "bad duration"), "%s", r.err);

	load(&r, 10000, "http", "http://127.0.0.1:1/", "-c", "0", NULL);
	cr_assert_eq(exit_code(&r), 2);

	load(&r, 10000, "nosuchmode", NULL);
	cr_assert_eq(exit_code(&r), 2);

	load(&r, 10000, "http", "http://127.0.0.1:1/", "stray", NULL);
	cr_assert_eq(exit_code(&r), 2);
	cr_assert(strstr(r.err, "unexpected argument 'stray'"), "%s", r.err);

	load(&r, 10000, "echo", "-c", "2", NULL);
	cr_assert_eq(exit_code(&r), 2, "echo needs --port");
}
