/* SPDX-License-Identifier: MIT */
/* The example programs: echo-server with echo-client (plain and --tls), http-headers against a local server and an HTTPS nginx, wait-for-data; exact output. */
#include <criterion/criterion.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sys/time.h>
#include <time.h>

#include "tests/helpers.h"

/* The build puts the tests in ${build}/tests and the examples in
 * ${build}/examples; RILL_EXAMPLES_DIR overrides. */
static const char *examples_dir(void)
{
	static char dir[PATH_MAX];
	char exe[PATH_MAX];
	const char *env = getenv("RILL_EXAMPLES_DIR");
	ssize_t n;

	if (env)
		return env;
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	cr_assert_gt(n, 0);
	exe[n] = '\0';
	snprintf(dir, sizeof(dir), "%s/examples", dirname(dirname(exe)));
	return dir;
}

static void example_path(const char *name, char *buf, size_t len)
{
	snprintf(buf, len, "%s/%s", examples_dir(), name);
	if (access(buf, X_OK) < 0)
		cr_skip_test("%s not built (RILL_BUILD_EXAMPLES off?)", buf);
}

/* Starts argv with stdout and stderr on pipes. */
static pid_t start_program(char *const argv[], int *outfd, int *errfd)
{
	int out[2], err[2];
	pid_t pid;

	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);	/* no server outlives a failed test */
		dup2(out[1], 1);
		dup2(err[1], 2);
		execv(argv[0], argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	*outfd = out[0];
	*errfd = err[0];
	return pid;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Reads fd until EOF (or until a line if one_line) or the timeout. */
static size_t slurp(int fd, char *buf, size_t cap, int timeout_ms, bool one_line)
{
	long long end = now_ms() + timeout_ms;
	size_t n = 0;

	while (n + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };
		long long left = end - now_ms();
		ssize_t got;

		if (left <= 0 || poll(&p, 1, (int)left) != 1)
			break;
		got = read(fd, buf + n, one_line ? 1 : cap - 1 - n);
		if (got <= 0)
			break;
		n += (size_t)got;
		if (one_line && buf[n - 1] == '\n')
			break;
	}
	buf[n] = '\0';
	return n;
}

struct result {
	int status;
	char out[4096], err[4096];
};

/* Removes the line that says the loop fell back to epoll (where io_uring
 * is refused, as under tests/no-io-uring): it is the one expected note. */
static void drop_backend_note(char *err)
{
	static const char note[] = "rill: info: io_uring unavailable";
	char *p = strstr(err, note), *end;

	if (!p || (p != err && p[-1] != '\n'))
		return;
	end = strchr(p, '\n');
	end = end ? end + 1 : p + strlen(p);
	memmove(p, end, strlen(end) + 1);
}

/* Runs argv to its end (10 s at most) and collects its output. */
static void run(char *const argv[], struct result *r)
{
	int outfd, errfd;
	pid_t pid = start_program(argv, &outfd, &errfd);

	slurp(outfd, r->out, sizeof(r->out), 10000, false);
	slurp(errfd, r->err, sizeof(r->err), 1000, false);
	drop_backend_note(r->err);
	kill(pid, SIGKILL);	/* no-op once it has exited */
	cr_assert_eq(waitpid(pid, &r->status, 0), pid);
	close(outfd);
	close(errfd);
}

static int exit_code(const struct result *r)
{
	return WIFEXITED(r->status) ? WEXITSTATUS(r->status) : 128 + WTERMSIG(r->status);
}

/* Runs argv, a client that must refuse the peer's certificate: exit code
 * 1, nothing on stdout, the failed verification on stderr. */
static void expect_verify_failure(char *const argv[])
{
	struct result r;

	run(argv, &r);
	cr_assert_eq(exit_code(&r), 1);
	cr_assert_str_eq(r.out, "");
	cr_assert(strstr(r.err, "verif"), "%s: %s", argv[0], r.err);
}

/* Stops a program start_program started (SIGTERM) and reaps it. */
static void stop_program(pid_t pid)
{
	int status;

	kill(pid, SIGTERM);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
}

/* ---- echo-server and echo-client ------------------------------------ */

/* Sends sig to a server that stops gracefully on it and checks that it
 * exits with status 0 within ms. */
static void stop_gracefully(pid_t pid, int sig, long long ms)
{
	long long t0 = now_ms();
	int status = 0;
	pid_t got = 0;

	cr_assert_eq(kill(pid, sig), 0);
	while (now_ms() - t0 < ms && (got = waitpid(pid, &status, WNOHANG)) == 0)
		usleep(2000);
	if (got == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		cr_assert_fail("no exit within %lld ms of signal %d", ms, sig);
	}
	cr_assert_eq(got, pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "signal %d: status %#x", sig, status);
}

/* Runs echo-client (argv, whose last argument is msg) against the running
 * echo-server whose stdout is outfd; both must print what the asyncio
 * documentation's pair prints. */
static void check_echo_exchange(char *const argv[], const char *msg, int outfd)
{
	char want[512], line[256];
	struct result r;
	int cport = 0;

	run(argv, &r);
	cr_assert_eq(exit_code(&r), 0, "client: %s", r.err);
	snprintf(want, sizeof(want), "Send: '%s'\nReceived: '%s'\nClose the connection\n",
		 msg, msg);
	cr_assert_str_eq(r.out, want);
	slurp(outfd, line, sizeof(line), 5000, true);
	snprintf(want, sizeof(want), "Received '%s' from ('127.0.0.1', %%d)", msg);
	cr_assert_eq(sscanf(line, want, &cport), 1, "server said: %s", line);
	cr_assert_gt(cport, 0);
	snprintf(want, sizeof(want), "Received '%s' from ('127.0.0.1', %d)\n", msg, cport);
	cr_assert_str_eq(line, want);
	slurp(outfd, line, sizeof(line), 5000, true);
	snprintf(want, sizeof(want), "Send: '%s'\n", msg);
	cr_assert_str_eq(line, want);
	slurp(outfd, line, sizeof(line), 5000, true);
	cr_assert_str_eq(line, "Close the connection\n");
}

Test(examples, echo_server_and_client, .timeout = 30)
{
	char server[PATH_MAX], client[PATH_MAX], line[256], port[16];
	int outfd, errfd, p = 0;
	pid_t pid;

	example_path("echo-server", server, sizeof(server));
	example_path("echo-client", client, sizeof(client));
	pid = start_program((char *[]){ server, "127.0.0.1", "0", NULL }, &outfd, &errfd);
	slurp(outfd, line, sizeof(line), 5000, true);
	cr_assert_eq(sscanf(line, "Serving on ('127.0.0.1', %d)", &p), 1, "server said: %s", line);
	cr_assert_gt(p, 0);
	snprintf(port, sizeof(port), "%d", p);

	check_echo_exchange((char *[]){ client, "127.0.0.1", port, "Hello World!", NULL },
			    "Hello World!", outfd);

	stop_gracefully(pid, SIGTERM, 2000);
	close(outfd);
	close(errfd);
}

/* A client that connects and sends nothing keeps its handler in read:
 * SIGINT still stops the server, within its grace period (2 s) and a
 * margin, with status 0; a new connection is refused meanwhile. */
Test(examples, echo_server_stops_on_signal_with_an_idle_client, .timeout = 30)
{
	char server[PATH_MAX], line[256];
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int outfd, errfd, p = 0, c;
	pid_t pid;

	example_path("echo-server", server, sizeof(server));
	pid = start_program((char *[]){ server, "127.0.0.1", "0", NULL }, &outfd, &errfd);
	slurp(outfd, line, sizeof(line), 5000, true);
	cr_assert_eq(sscanf(line, "Serving on ('127.0.0.1', %d)", &p), 1, "server said: %s", line);
	sa.sin_port = htons((uint16_t)p);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
	usleep(50000);	/* the server has accepted it */
	stop_gracefully(pid, SIGINT, 2000 + 1500);
	close(c);
	c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_neq(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0, "still listening");
	close(c);
	close(outfd);
	close(errfd);
}

/* Throwaway certificates (tests/tls_certs.sh) in a new temporary dir. */
static void make_certs(char *dir, size_t len)
{
	char tmpl[] = "/tmp/rill-examples-XXXXXX", script[PATH_MAX], src[PATH_MAX];
	struct result r;

	cr_assert_not_null(mkdtemp(tmpl));
	snprintf(dir, len, "%s", tmpl);
	snprintf(src, sizeof(src), "%s", __FILE__);
	snprintf(script, sizeof(script), "%s/tls_certs.sh", dirname(src));
	run((char *[]){ "/bin/bash", script, dir, NULL }, &r);
	cr_assert_eq(exit_code(&r), 0, "tls_certs.sh: %s", r.err);
}

static void remove_dir(const char *dir)
{
	struct result r;

	run((char *[]){ "/bin/rm", "-rf", (char *)dir, NULL }, &r);
}

Test(examples, echo_server_and_client_over_tls, .timeout = 30)
{
	char server[PATH_MAX], client[PATH_MAX], line[256], port[16], dir[PATH_MAX];
	char cert[PATH_MAX + 16], key[PATH_MAX + 16], ca[PATH_MAX + 16], other[PATH_MAX + 16];
	char err[1024];
	int outfd, errfd, p = 0, status;
	pid_t pid;

	example_path("echo-server", server, sizeof(server));
	example_path("echo-client", client, sizeof(client));
	make_certs(dir, sizeof(dir));
	snprintf(cert, sizeof(cert), "%s/server.pem", dir);
	snprintf(key, sizeof(key), "%s/server.key", dir);
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	snprintf(other, sizeof(other), "%s/other-ca.pem", dir);
	pid = start_program((char *[]){ server, "--tls", cert, key, "127.0.0.1", "0", NULL },
		    &outfd, &errfd);
	slurp(outfd, line, sizeof(line), 5000, true);
	if (!*line) {
		slurp(errfd, err, sizeof(err), 1000, false);
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		remove_dir(dir);
		if (strstr(err, "TLS not available"))
			cr_skip_test("examples built without rill-tls");
		cr_assert_fail("echo-server --tls: %s", err);
	}
	cr_assert_eq(sscanf(line, "Serving on ('127.0.0.1', %d)", &p), 1, "server said: %s", line);
	snprintf(port, sizeof(port), "%d", p);

	/* The name checked is the host's: 127.0.0.1 is in the certificate. */
	check_echo_exchange((char *[]){ client, "--tls", ca, "127.0.0.1", port, "Hello TLS!",
					 NULL }, "Hello TLS!", outfd);

	/* A CA that did not sign the server's certificate: refused. */
	expect_verify_failure((char *[]){ client, "--tls", other, "127.0.0.1", port, "nope",
					  NULL });
	stop_gracefully(pid, SIGINT, 2000);
	close(outfd);
	close(errfd);
	remove_dir(dir);
}

/* ---- http-headers --------------------------------------------------- */

struct http {
	int lfd, port;
	char request[1024];
};

/* Serves one HEAD request as an HTTP/1.0 server would. It gives up after
 * 10 s without a client (a client that failed to start never comes) or
 * without a request, so that no test waits for it forever. */
static void *http_serve(void *arg)
{
	static const char reply[] = "HTTP/1.0 200 OK\r\n"
				    "Server: tiny/1.0\r\n"
				    "Content-Type: text/html\r\n"
				    "Content-Length: 5\r\n"
				    "\r\n";
	struct timeval tv = { .tv_sec = 10 };
	struct http *h = arg;
	struct pollfd p = { .fd = h->lfd, .events = POLLIN };
	size_t n = 0;
	int fd;

	if (poll(&p, 1, 10000) != 1)
		return NULL;
	fd = accept4(h->lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0)
		return NULL;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	while (n + 1 < sizeof(h->request) && !strstr(h->request, "\r\n\r\n")) {
		ssize_t got = recv(fd, h->request + n, sizeof(h->request) - 1 - n, 0);

		if (got <= 0)
			break;
		n += (size_t)got;
		h->request[n] = '\0';
	}
	send(fd, reply, sizeof(reply) - 1, MSG_NOSIGNAL);
	close(fd);
	return NULL;
}

/* Runs prog on http://host:PORT<path> with a one-request server
 * (http_serve) on a thread listening at PORT: h gets its port, its
 * listening socket (still open) and the request it got. */
static void run_with_tiny_server(char *prog, struct http *h, const char *host, const char *path,
				 struct result *r)
{
	char url[128];
	pthread_t th;

	h->lfd = listen_loopback(&h->port, 4);
	cr_assert_geq(h->lfd, 0);
	cr_assert_eq(pthread_create(&th, NULL, http_serve, h), 0);
	snprintf(url, sizeof(url), "http://%s:%d%s", host, h->port, path);
	run((char *[]){ prog, url, NULL }, r);
	pthread_join(th, NULL);
}

Test(examples, http_headers_head_request, .timeout = 30)
{
	char prog[PATH_MAX];
	struct http h = { 0 };
	struct result r;

	example_path("http-headers", prog, sizeof(prog));
	run_with_tiny_server(prog, &h, "127.0.0.1", "/index.html", &r);
	close(h.lfd);
	cr_assert_eq(exit_code(&r), 0, "http-headers: %s", r.err);
	cr_assert_str_eq(h.request, "HEAD /index.html HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n");
	cr_assert_str_eq(r.out, "HTTP header> HTTP/1.0 200 OK\n"
				"HTTP header> Server: tiny/1.0\n"
				"HTTP header> Content-Type: text/html\n"
				"HTTP header> Content-Length: 5\n");
}

Test(examples, http_headers_default_path_and_errors, .timeout = 30)
{
	char prog[PATH_MAX], url[128];
	struct http h = { 0 };
	struct result r;

	example_path("http-headers", prog, sizeof(prog));
	run_with_tiny_server(prog, &h, "localhost", "", &r);
	cr_assert_eq(exit_code(&r), 0, "http-headers: %s", r.err);
	cr_assert_str_eq(h.request, "HEAD / HTTP/1.0\r\nHost: localhost\r\n\r\n");

	/* Nobody listening any more: an error, exit 1. */
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", h.port);
	close(h.lfd);
	run((char *[]){ prog, url, NULL }, &r);
	cr_assert_eq(exit_code(&r), 1);
	cr_assert_str_eq(r.out, "");

	run((char *[]){ prog, "ftp://example.com/", NULL }, &r);
	cr_assert_eq(exit_code(&r), 2, "a bad URL");

	/* https needs rill-tls: without it, a clear message and exit 2. */
	snprintf(url, sizeof(url), "https://127.0.0.1:1/");
	run((char *[]){ prog, url, NULL }, &r);
	if (exit_code(&r) == 2)
		cr_assert(strstr(r.err, "TLS not available in this build"), "stderr: %s", r.err);
	else
		cr_assert_null(strstr(r.err, "TLS not available"), "stderr: %s", r.err);
}

/* An HTTPS nginx on 127.0.0.1:port serving the test certificate from dir,
 * in the foreground, one process, everything it writes kept in dir. */
static pid_t nginx_start(const char *dir, int port)
{
	char conf[PATH_MAX + 16], errlog[PATH_MAX + 16], prefix[PATH_MAX + 1];
	char buf[256];
	int outfd, errfd;
	pid_t pid;
	FILE *f;

	snprintf(conf, sizeof(conf), "%s/nginx.conf", dir);
	snprintf(errlog, sizeof(errlog), "%s/error.log", dir);
	snprintf(prefix, sizeof(prefix), "%s/", dir);
	f = fopen(conf, "w");
	cr_assert_not_null(f);
	fprintf(f, "daemon off;\nmaster_process off;\npid %s/nginx.pid;\n"
		"error_log %s;\nevents { worker_connections 16; }\n"
		"http {\n access_log off;\n"
		" client_body_temp_path %s/body;\n proxy_temp_path %s/proxy;\n"
		" fastcgi_temp_path %s/fastcgi;\n uwsgi_temp_path %s/uwsgi;\n"
		" scgi_temp_path %s/scgi;\n"
		" server {\n  listen 127.0.0.1:%d ssl;\n  server_name localhost;\n"
		"  ssl_certificate %s/server.pem;\n  ssl_certificate_key %s/server.key;\n"
		"  location / { default_type text/plain; return 200 \"hello from nginx\\n\"; }\n"
		" }\n}\n", dir, errlog, dir, dir, dir, dir, dir, port, dir, dir);
	fclose(f);
	pid = start_program((char *[]){ "/usr/sbin/nginx", "-e", errlog, "-c", conf, "-p", prefix, NULL },
		    &outfd, &errfd);
	close(outfd);
	close(errfd);
	/* Up once it accepts: 5 s at most. */
	for (int i = 0; i < 250; i++) {
		int fd = tcp_connect(port);

		if (fd >= 0) {
			close(fd);
			return pid;
		}
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
		usleep(20000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	f = fopen(errlog, "r");
	buf[0] = '\0';
	if (f) {
		buf[fread(buf, 1, sizeof(buf) - 1, f)] = '\0';
		fclose(f);
	}
	cr_assert_fail("nginx did not start: %s", buf);
	return -1;
}

Test(examples, http_headers_https_against_nginx, .timeout = 30)
{
	char prog[PATH_MAX], dir[PATH_MAX], url[128], ca[PATH_MAX + 16];
	struct result r;
	int lfd, port, status;
	pid_t pid;

	example_path("http-headers", prog, sizeof(prog));
	if (access("/usr/sbin/nginx", X_OK) < 0)
		cr_skip_test("nginx is not installed");
	make_certs(dir, sizeof(dir));
	lfd = listen_loopback(&port, 4);	/* a free port, given to nginx */
	cr_assert_geq(lfd, 0);
	close(lfd);
	pid = nginx_start(dir, port);
	snprintf(url, sizeof(url), "https://localhost:%d/", port);

	/* The default context trusts what SSL_CERT_FILE names. */
	snprintf(ca, sizeof(ca), "%s/ca.pem", dir);
	setenv("SSL_CERT_FILE", ca, 1);
	unsetenv("SSL_CERT_DIR");
	run((char *[]){ prog, url, NULL }, &r);
	if (exit_code(&r) == 2 && strstr(r.err, "TLS not available")) {
		kill(pid, SIGTERM);
		waitpid(pid, &status, 0);
		remove_dir(dir);
		cr_skip_test("examples built without rill-tls");
	}
	cr_assert_eq(exit_code(&r), 0, "http-headers: %s", r.err);
	cr_assert_eq(strncmp(r.out, "HTTP header> HTTP/1.1 200 OK\n", 29), 0, "got: %s", r.out);
	cr_assert(strstr(r.out, "\nHTTP header> Server: nginx"), "got: %s", r.out);
	cr_assert(strstr(r.out, "\nHTTP header> Content-Type: text/plain\n"), "got: %s", r.out);
	cr_assert(strstr(r.out, "\nHTTP header> Content-Length: 17\n"), "got: %s", r.out);
	cr_assert_null(strstr(r.out, "hello from nginx"), "HEAD: no body");

	/* Without it the system store knows nothing of the test CA. */
	unsetenv("SSL_CERT_FILE");
	expect_verify_failure((char *[]){ prog, url, NULL });
	stop_program(pid);
	remove_dir(dir);
}

/* ---- wait-for-data -------------------------------------------------- */

Test(examples, wait_for_data, .timeout = 30)
{
	char prog[PATH_MAX];
	struct result r;

	example_path("wait-for-data", prog, sizeof(prog));
	run((char *[]){ prog, NULL }, &r);
	cr_assert_eq(exit_code(&r), 0, "wait-for-data: %s", r.err);
	cr_assert_str_eq(r.out, "Received: abc\n");
	cr_assert_str_eq(r.err, "");
}
