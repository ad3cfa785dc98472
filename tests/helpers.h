/* SPDX-License-Identifier: MIT */
/* Helpers shared by the test programs: fd counts, loopback sockets, a dead
 * address, echo servers and clients, byte patterns, an echo server short
 * of fds; tests whose body is a task (TASK_TEST), isolated children, a
 * loop per test, and connections whose far end is a plain socket.
 *
 * The first part does not use Criterion: its functions return codes, so
 * that forked children (where Criterion's asserts do not reach) and the
 * plain programs of tests/tsan/ can use them. Define
 * RILL_TEST_NO_CRITERION before including this header to leave out the
 * second part, which asserts with Criterion. Everything is static inline:
 * a program compiles only what it uses.
 */
#ifndef RILL_TESTS_HELPERS_H
#define RILL_TESTS_HELPERS_H

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"

#define MS RILL_NSEC_PER_MSEC

/* Fails the enclosing int function with 1 and a message on stderr (an
 * optional printf format and its arguments): the check for forked
 * children, where Criterion's asserts do not reach, and plain programs. */
#define CHECK(cond, ...)                                                      \
	do {                                                                  \
		if (!(cond)) {                                                \
			fprintf(stderr, "%s:%d: CHECK(%s) failed:", __FILE__,  \
				__LINE__, #cond);                             \
			fprintf(stderr, " " __VA_ARGS__);                     \
			fputc('\n', stderr);                                  \
			return 1;                                             \
		}                                                             \
	} while (0)

/* ---- file descriptors ---------------------------------------------- */

/* The number of entries in the directory path, but . and ..; -1 if it
 * cannot be read. */
static inline int count_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* The number of fds this process has open; -1 if /proc cannot tell. */
static inline int count_fds(void)
{
	return count_entries("/proc/self/fd");
}

/* The number of threads of this process; -1 if /proc cannot tell. */
static inline int count_threads(void)
{
	return count_entries("/proc/self/task");
}

/* Sockets leave the fd table once their last operation has settled: waits
 * (in a task, yielding to the loop; 1 s at most) until count_fds() is
 * want. Returns the last count. */
static inline int settle_fds(int want)
{
	int n = count_fds();

	for (int i = 0; i < 200 && n != want; i++) {
		rill_sleep_ms(5);
		n = count_fds();
	}
	return n;
}

/* ---- loopback sockets ---------------------------------------------- */

/* Brings up "lo", which a new network namespace starts with down. */
static inline void lo_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
}

/* 127.0.0.1:port (0: any port). */
static inline struct sockaddr_in loopback4(int port)
{
	return (struct sockaddr_in){ .sin_family = AF_INET,
				     .sin_port = htons((uint16_t)port),
				     .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
}

/* The local port fd is bound to; -1 if it is not an IPv4 socket. */
static inline int sock_port(int fd)
{
	struct sockaddr_in a;
	socklen_t len = sizeof(a);

	if (getsockname(fd, (struct sockaddr *)&a, &len) < 0 || a.sin_family != AF_INET)
		return -1;
	return ntohs(a.sin_port);
}

/* Whether a socket can be bound to ::1 here. */
static inline bool ipv6_loopback_works(void)
{
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/* A listening socket on 127.0.0.1, the port chosen by the kernel and put
 * in *portp; -1 on failure. The caller closes it. */
static inline int listen_loopback(int *portp, int backlog)
{
	struct sockaddr_in a = loopback4(0);
	int ls = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	*portp = -1;
	if (ls >= 0 && bind(ls, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    listen(ls, backlog) == 0 && (*portp = sock_port(ls)) >= 0)
		return ls;
	if (ls >= 0)
		close(ls);
	return -1;
}

/* A blocking socket connected to 127.0.0.1:port; -1 on failure. The
 * caller closes it. */
static inline int tcp_connect(int port)
{
	struct sockaddr_in a = loopback4(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One line from a blocking fd within timeout_ms per byte, NUL-terminated
 * in buf without its newline; its length, or -1 on timeout or EOF. */
static inline int read_line(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t n = 0;

	while (n + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, timeout_ms) != 1 || recv(fd, buf + n, 1, 0) != 1)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return (int)n;
}

/* A dead address: a listening socket with backlog 0 whose one queue slot
 * is taken, so that the kernel drops every further SYN and a connect to
 * addr hangs (for minutes, in SYN retransmits). Open it in a network
 * namespace of its own (run_isolated), where the stuck SYNs disturb
 * nothing else. */
struct blackhole {
	int lfd, filler;
	struct sockaddr_in addr;
};

/* 0, or -errno with whatever was opened left for blackhole_close(). */
static inline int blackhole_open(struct blackhole *b)
{
	socklen_t len = sizeof(b->addr);
	struct pollfd p;

	b->addr = loopback4(0);
	b->filler = -1;
	b->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (b->lfd < 0 || bind(b->lfd, (struct sockaddr *)&b->addr, len) < 0 ||
	    listen(b->lfd, 0) < 0 ||
	    getsockname(b->lfd, (struct sockaddr *)&b->addr, &len) < 0)
		return -errno;
	b->filler = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (connect(b->filler, (struct sockaddr *)&b->addr, len) < 0)
		return -errno;
	/* The queue slot is taken once the listener reads as ready. */
	p = (struct pollfd){ .fd = b->lfd, .events = POLLIN };
	return poll(&p, 1, 2000) == 1 ? 0 : -ETIMEDOUT;
}

/* The dead address's port. */
static inline int blackhole_port(const struct blackhole *b)
{
	return ntohs(b->addr.sin_port);
}

/* Closes both sockets of b. */
static inline void blackhole_close(struct blackhole *b)
{
	close(b->filler);
	close(b->lfd);
}

/* ---- rill connections ------------------------------------------------ */

/* Closes w, waits for its socket to close and frees it (and its reader):
 * the end of a client. Returns wait_closed's result; w is freed either
 * way. */
static inline int writer_done(rill_writer *w)
{
	int err;

	rill_writer_close(w);
	err = rill_writer_wait_closed(w);
	rill_writer_free(w);
	return err;
}

/* ---- echo ------------------------------------------------------------ */

/* Echoes line after line until EOF, an error or a failed drain; returns
 * the readline result that ended it (0 at EOF, > 0 after a failed drain).
 * The writer stays open. */
static inline ssize_t echo_each_line(rill_reader *r, rill_writer *w)
{
	rill_bytes line;
	ssize_t n;

	while ((n = rill_reader_readline(r, &line)) > 0) {
		rill_writer_write(w, line.data, line.len);
		if (rill_writer_drain(w) < 0)
			break;
	}
	return n;
}

/* A server callback: echoes lines until EOF, then closes. */
static inline int echo_lines(rill_reader *r, rill_writer *w, void *arg)
{
	(void)arg;
	echo_each_line(r, w);
	rill_writer_close(w);
	return 0;
}

/* What a server callback saw, for the test to check afterwards. */
struct served {
	int calls;		/* connections it was called for */
	ssize_t last_read;	/* the read that ended the last one: 0 at EOF */
};

/* A server callback (arg: struct served): echoes lines until EOF, then
 * closes. */
static inline int echo_served(rill_reader *r, rill_writer *w, void *arg)
{
	struct served *s = arg;

	s->calls++;
	s->last_read = echo_each_line(r, w);
	rill_writer_close(w);
	return 0;
}

/* A server callback (arg: struct served): reads and drops everything
 * until the connection ends, answering nothing, then closes. */
static inline int read_to_end(rill_reader *r, rill_writer *w, void *arg)
{
	struct served *s = arg;
	char buf[4096];
	ssize_t n;

	s->calls++;
	while ((n = rill_reader_read(r, buf, sizeof(buf))) > 0)
		;
	s->last_read = n;
	rill_writer_close(w);
	return 0;
}

/* Writes msg, a line, and reads one line back: 0 if it is msg, -EIO if the
 * write failed, -EBADMSG if another line came, else readline's error. */
static inline int echo_roundtrip(rill_reader *r, rill_writer *w, const char *msg)
{
	rill_bytes line;
	ssize_t n;

	if (rill_writer_write(w, msg, strlen(msg)) < 0)
		return -EIO;
	n = rill_reader_readline(r, &line);
	if (n < 0)
		return (int)n;
	if ((size_t)n != strlen(msg) || memcmp(line.data, msg, (size_t)n))
		return -EBADMSG;
	return 0;
}

/* One line through the echo server at 127.0.0.1:port on a connection of
 * its own, closed again: the loop and the stack still work. 0 or the
 * error. */
static inline int echo_once(int port)
{
	rill_reader *r;
	rill_writer *w;
	int err = rill_open_connection("127.0.0.1", port, NULL, &r, &w);

	if (err < 0)
		return err;
	err = echo_roundtrip(r, w, "still here\n");
	writer_done(w);
	return err;
}

/* ---- byte patterns ----------------------------------------------------- */

/* Byte i of a pattern that shows any loss, duplication or reordering. */
static inline unsigned char pat(uint64_t i)
{
	return (unsigned char)(((uint32_t)i * 2654435761u) >> 24);
}

/* Fills p with the n pattern bytes from offset off. */
static inline void fill_pat(unsigned char *p, uint64_t off, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = pat(off + i);
}

/* The first of p's n bytes that is not the pattern's from offset off, as
 * an index into p; n if all are. */
static inline size_t pat_mismatch(const unsigned char *p, uint64_t off, size_t n)
{
	size_t i = 0;

	while (i < n && p[i] == pat(off + i))
		i++;
	return i;
}

/* Whether p holds the pattern's n bytes from offset off. */
static inline bool pat_ok(const unsigned char *p, uint64_t off, size_t n)
{
	return pat_mismatch(p, off, n) == n;
}

/* xorshift32: the next number of a reproducible sequence; *s starts at
 * anything but 0. */
static inline uint32_t xorshift32(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

/* ---- an echo server short of fds --------------------------------------
 *
 * fd_limited_server() runs in a forked child (fd_limited_start) whose
 * RLIMIT_NOFILE leaves room for `room` more fds once its server listens.
 * The control socket carries the port first; then "count\n" is answered
 * with the accept failures logged so far, and any other line closes the
 * server and is answered with "before after failures": the fd counts
 * before it started and after it closed.
 */

struct fd_limited {
	int ctl;		/* the child's end of the control socket */
	int room;
	int accept_errors;
};

/* The child's log handler: counts the accept failures in *(int *)arg. */
static inline void fd_limited_log(int level, const char *msg, void *arg)
{
	if (level == RILL_LOG_ERROR && strstr(msg, "accept failed"))
		(*(int *)arg)++;
}

/* A soft limit with exactly `room` free descriptors below it. */
static inline rlim_t limit_with_room(int room)
{
	int fd = 0;

	for (; room > 0; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			room--;
	return (rlim_t)fd;
}

/* Writes the answer fmt (up to three ints) on the control connection. */
static inline void fd_limited_answer(rill_writer *w, const char *fmt, int a, int b, int c)
{
	char msg[64];
	int n = snprintf(msg, sizeof(msg), fmt, a, b, c);

	rill_writer_write(w, msg, (size_t)n);
}

/* The child's main task (arg: struct fd_limited); 0, or 1 or 2 if the
 * server or the limit could not be set up. */
static inline int fd_limited_server(void *arg)
{
	struct fd_limited *fl = arg;
	rill_open_options co = { .size = sizeof(rill_open_options), .sock = fl->ctl };
	rill_server_options so = { .size = sizeof(rill_server_options), .sock = -1,
		.start_serving = RILL_OFF };
	struct rlimit old, lim;
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	int before = count_fds();

	rill_set_log_handler(fd_limited_log, &fl->accept_errors);
	if (rill_open_connection(NULL, 0, &co, &r, &w) < 0 ||
	    rill_start_server(echo_lines, NULL, "127.0.0.1", 0, &so, &s) < 0)
		return 1;
	getrlimit(RLIMIT_NOFILE, &old);
	lim = old;
	lim.rlim_cur = limit_with_room(fl->room);
	if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
		return 2;
	rill_server_start_serving(s);
	fd_limited_answer(w, "%d\n", rill_server_port(s), 0, 0);
	while (rill_reader_readline(r, &line) > 0) {
		if (!strncmp(line.data, "count\n", 6)) {
			fd_limited_answer(w, "%d\n", fl->accept_errors, 0, 0);
			continue;
		}
		rill_server_close(s);
		rill_server_wait_closed(s);
		rill_server_free(s);
		setrlimit(RLIMIT_NOFILE, &old);
		fd_limited_answer(w, "%d %d %d\n", before, count_fds(), fl->accept_errors);
	}
	writer_done(w);
	return 0;
}

#ifndef RILL_TEST_NO_CRITERION
#include <criterion/criterion.h>

/* ---- tasks ----------------------------------------------------------- */

/* The loop of a suite whose tests each run on a fresh one: declare it
 * with TestSuite(name, .init = loop_setup, .fini = loop_teardown). */
static rill_loop *loop __attribute__((unused));

/* Makes loop; fails the test if it cannot. */
static inline void loop_setup(void)
{
	int ret = rill_loop_new(NULL, &loop);

	cr_assert_eq(ret, 0, "rill_loop_new: %s", rill_err_name(ret));
}

/* Frees loop. */
static inline void loop_teardown(void)
{
	rill_loop_free(loop);
}

/* Runs fn(arg) as the main task of a loop of its own (rill_run); fails
 * the test unless the loop ran and fn returned 0. */
static inline void run_task(rill_task_fn fn, void *arg)
{
	int result = -1, err = rill_run(fn, arg, &result);

	cr_assert_eq(err, 0, "rill_run: %s", rill_err_name(err));
	cr_assert_eq(result, 0, "task failed: %d (%s)", result, rill_err_name(result));
}

/* run_task(fn, arg), or skips the test where ::1 cannot be bound. */
static inline void run_task_with_ipv6(rill_task_fn fn, void *arg)
{
	if (!ipv6_loopback_works())
		cr_skip_test("IPv6 loopback (::1) is not available here");
	run_task(fn, arg);
}

/* Runs fn(arg) with rill_run in a forked child, in a network namespace of
 * its own where unshare is allowed (with "lo" up), so that its stuck SYNs
 * disturb nothing else. The child dies with the test and after 100 s at
 * most; fn checks with CHECK. Fails the test unless fn returned 0. */
static inline void run_isolated(rill_task_fn fn, void *arg)
{
	int status = 0;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int result = -1;

		/* Never outlive the test: not if it is killed, not if we hang. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		alarm(100);
		if (unshare(CLONE_NEWNET) == 0)
			lo_up();
		if (rill_run(fn, arg, &result) < 0)
			result = 2;
		fflush(stdout);
		fflush(stderr);
		_exit(result == 0 ? 0 : 1);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "isolated child failed (status %#x)", status);
}

/* Test(suite, name, options...) whose body, written after it, runs as
 * the main task of a loop of its own (run_task) and returns 0 when all
 * went well; its argument, arg, is NULL:
 *
 *	TASK_TEST(streams_reader, peek_then_consume)
 *	{
 *		...
 *		return 0;
 *	}
 */
#define TASK_TEST(suite, name, ...) TEST_RUN_BY_(run_task, suite, name, ##__VA_ARGS__)

/* As TASK_TEST, with the body run by run_isolated: in a forked child, in a
 * network namespace of its own, checking with CHECK. */
#define ISOLATED_TEST(suite, name, ...) \
	TEST_RUN_BY_(run_isolated, suite, name, ##__VA_ARGS__)

/* TASK_TEST and ISOLATED_TEST with the runner (run_task, run_isolated). */
#define TEST_RUN_BY_(runner, suite, name, ...)                                \
	static int suite##_##name##_body(void *arg);                          \
	Test(suite, name, ##__VA_ARGS__)                                      \
	{                                                                     \
		runner(suite##_##name##_body, NULL);                          \
	}                                                                     \
	static int suite##_##name##_body(void *arg __attribute__((unused)))

/* A task running fn(arg) on the current loop; join it. Call from a task. */
static inline rill_task *spawn(rill_task_fn fn, void *arg)
{
	rill_task *t;

	cr_assert_eq(rill_spawn(rill_loop_current(), fn, arg, &t), 0);
	return t;
}

/* Waits for t to end; fails the test unless it returned 0. */
static inline void join(rill_task *t)
{
	int res = -1;

	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, 0);
}

/* ---- rill connections: asserting ------------------------------------ */

/* open_connection to host:port with the default options; fails the test,
 * with the error's detail, if it fails. */
static inline void connect_to(const char *host, int port, rill_reader **r, rill_writer **w)
{
	int err = rill_open_connection(host, port, NULL, r, w);

	cr_assert_eq(err, 0, "connect %s:%d: %s %s", host, port, rill_strerror(err),
		     rill_error_detail());
}

/* writer_done(w); fails the test unless the socket closed cleanly. */
static inline void close_and_free(rill_writer *w)
{
	cr_assert_eq(writer_done(w), 0);
}

/* A readline waiting in a task of its own: readline_task(arg) sets
 * started, then got (readline's result) and line (its view) from r. */
struct pending_line {
	rill_reader *r;
	bool started;
	ssize_t got;
	rill_bytes line;
};

/* The task of a struct pending_line (arg). */
static inline int readline_task(void *arg)
{
	struct pending_line *pl = arg;

	pl->started = true;
	pl->got = rill_reader_readline(pl->r, &pl->line);
	return 0;
}

/* Reads one line; fails the test unless it is want. */
static inline void expect_line(rill_reader *r, const char *want)
{
	rill_bytes line;
	ssize_t n = rill_reader_readline(r, &line);

	cr_assert_eq(n, (ssize_t)strlen(want), "readline: %zd", n);
	cr_assert_arr_eq(line.data, want, strlen(want), "got '%.*s', want '%s'",
			 (int)n, (const char *)line.data, want);
}

/* ---- plain sockets ----------------------------------------------------- */

/* Makes fd non-blocking. */
static inline void set_nonblock(int fd)
{
	cr_assert_eq(fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK), 0);
}

/* The kernel's buffer opt (SO_SNDBUF, SO_RCVBUF) as small as it goes, so
 * that a few KiB fill it. */
static inline void small_buffer(int fd, int opt)
{
	int v = 4096;

	cr_assert_eq(setsockopt(fd, SOL_SOCKET, opt, &v, sizeof(v)), 0);
}

/* Sends all of s on a blocking fd. */
static inline void send_str(int fd, const char *s)
{
	cr_assert_eq(send(fd, s, strlen(s), MSG_NOSIGNAL), (ssize_t)strlen(s));
}

/* tcp_connect(port); fails the test if it cannot connect. */
static inline int tcp_client(int port)
{
	int fd = tcp_connect(port);

	cr_assert_geq(fd, 0, "connect to port %d: %s", port, strerror(errno));
	return fd;
}

/* Reads a line from a blocking fd within timeout_ms; fails the test (what
 * says who) unless it came and want starts with it. */
static inline void expect_fd_line(int fd, const char *want, int timeout_ms, const char *what)
{
	char buf[64];

	cr_assert_geq(read_line(fd, buf, sizeof(buf), timeout_ms), 0, "%s: no answer", what);
	cr_assert_eq(strncmp(buf, want, strlen(buf)), 0, "%s: got %s", what, buf);
}

/* Fails the test unless p holds the pattern's n bytes from offset off. */
static inline void check_pat(const unsigned char *p, uint64_t off, size_t n)
{
	size_t i = pat_mismatch(p, off, n);

	if (i < n)
		cr_assert_fail("byte %" PRIu64 ": got %u, want %u", off + i, p[i],
			       pat(off + i));
}

/* One read of pattern bytes from offset off, of a random kind (read,
 * readexactly, peek + consume) and size (at most READ_PAT_MAX, the size of
 * buf); returns the bytes it took, 0 at EOF. Every byte is checked. */
#define READ_PAT_MAX (96 * 1024)

static inline size_t read_pat_some(rill_reader *r, uint64_t off, uint32_t *seed, unsigned char *buf)
{
	size_t n = 1 + xorshift32(seed) % READ_PAT_MAX;
	rill_bytes v;
	ssize_t k;

	switch (xorshift32(seed) % 3) {
	case 0:
		k = rill_reader_read(r, buf, n);
		cr_assert_geq(k, 0, "read: %s", rill_err_name((int)k));
		check_pat(buf, off, (size_t)k);
		return (size_t)k;
	case 1:
		k = rill_reader_readexactly(r, buf, n);
		if (k == RILL_EINCOMPLETE) {
			const rill_read_error *e = rill_reader_error_info(r);

			check_pat(buf, off, e->partial_len);
			return e->partial_len;
		}
		cr_assert_eq(k, (ssize_t)n, "readexactly: %s", rill_err_name((int)k));
		check_pat(buf, off, n);
		return n;
	default:
		k = rill_reader_peek(r, &v);
		cr_assert_geq(k, 0, "peek: %s", rill_err_name((int)k));
		if (n > v.len)
			n = v.len;
		check_pat((const unsigned char *)v.data, off, v.len);
		rill_reader_consume(r, n);
		return n;
	}
}

/* ---- an echo server short of fds: the test's side --------------------- */

/* Forks a child that runs fn(arg) with rill_run and exits with its result
 * (1 if the loop did not run). A socketpair joins the two: the child's end
 * is put in *child_end before the fork, the test's in *test_end. Returns
 * the child. */
static inline pid_t fork_task(rill_task_fn fn, void *arg, int *child_end, int *test_end)
{
	int sv[2];
	pid_t pid;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	*child_end = sv[1];
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int result = 1;

		close(sv[0]);
		rill_run(fn, arg, &result);
		_exit(result);
	}
	close(sv[1]);
	*test_end = sv[0];
	return pid;
}

/* Forks a child running fd_limited_server(room) and waits for its port;
 * *ctlp is the test's end of the control socket. Returns the child. */
static inline pid_t fd_limited_start(int room, int *ctlp, int *portp)
{
	struct fd_limited fl = { .room = room };
	pid_t pid = fork_task(fd_limited_server, &fl, &fl.ctl, ctlp);
	char buf[64];

	cr_assert_gt(read_line(*ctlp, buf, sizeof(buf), 5000), 0, "no port from the child");
	*portp = atoi(buf);
	return pid;
}

/* Sends q on the control socket; the number the child answers. */
static inline int fd_limited_ask(int ctl, const char *q)
{
	char buf[64];

	send_str(ctl, q);
	cr_assert_gt(read_line(ctl, buf, sizeof(buf), 5000), 0, "no answer from the server");
	return atoi(buf);
}

/* Closes the child's server and gives its fd counts and accept failures;
 * fails the test unless the child then exits with 0. */
static inline void fd_limited_finish(pid_t pid, int ctl, int *before, int *after, int *errors)
{
	char buf[64];
	int status;

	send_str(ctl, "done\n");
	cr_assert_gt(read_line(ctl, buf, sizeof(buf), 5000), 0);
	cr_assert_eq(sscanf(buf, "%d %d %d", before, after, errors), 3);
	close(ctl);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}

/* ---- a rill connection whose far end is a plain socket ---------------- */

/* The test drives the far end, peer (non-blocking), by hand from tasks. */
struct conn {
	rill_reader *r;
	rill_writer *w;
	int peer;
};

/* A Unix socketpair, one end adopted by rill with the reader limit limit
 * (0: the default). */
static inline void open_unix(struct conn *c, size_t limit)
{
	int sv[2];
	rill_open_options o = { .size = sizeof(rill_open_options), .limit = limit };

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	o.sock = sv[0];
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &c->r, &c->w), 0);
	c->peer = sv[1];
	set_nonblock(c->peer);
}

/* Loopback TCP: rill connects, with the reader limit limit (0: the
 * default); the test accepts the far end. */
static inline void open_tcp(struct conn *c, size_t limit)
{
	rill_open_options o = { .size = sizeof(rill_open_options), .sock = -1, .limit = limit };
	int port, ls = listen_loopback(&port, 4);

	cr_assert_geq(ls, 0);
	cr_assert_eq(rill_open_connection("127.0.0.1", port, &o, &c->r, &c->w), 0);
	c->peer = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	cr_assert_geq(c->peer, 0);
	close(ls);
}

/* Loopback TCP on a socket of the test's, its kernel buffer opt made
 * small (small_buffer) before it connects, then adopted by rill with the
 * reader limit limit; the test accepts the far end. */
static inline void open_tcp_small(struct conn *c, size_t limit, int opt)
{
	rill_open_options o = { .size = sizeof(rill_open_options), .limit = limit };
	int port, ls = listen_loopback(&port, 4);
	struct sockaddr_in a = loopback4(port);

	cr_assert_geq(ls, 0);
	o.sock = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	small_buffer(o.sock, opt);
	cr_assert_eq(connect(o.sock, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(rill_open_connection(NULL, 0, &o, &c->r, &c->w), 0);
	c->peer = accept4(ls, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
	cr_assert_geq(c->peer, 0);
	close(ls);
}

/* Closes our side, waits for the socket to go and frees the pair; closes
 * the peer unless it is -1. wait_closed() must give 0, or the error the
 * connection was lost with (which the reader holds too). */
static inline void conn_done(struct conn *c)
{
	int lost = rill_reader_exception(c->r), err = writer_done(c->w);

	cr_assert(err == 0 || err == lost, "wait_closed: %s", rill_err_name(err));
	if (c->peer >= 0)
		close(c->peer);
}

/* Closes the plain peer *peerp and marks it closed (-1) for conn_done. */
static inline void peer_close(int *peerp)
{
	close(*peerp);
	*peerp = -1;
}

/* Closes the plain peer *peerp with a reset (SO_LINGER 0) instead of a
 * FIN, and marks it closed (-1) for conn_done. */
static inline void peer_reset(int *peerp)
{
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };

	cr_assert_eq(setsockopt(*peerp, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(*peerp);
	*peerp = -1;
}

/* Sends all of p from the plain peer, sleeping while its socket is full. */
static inline void peer_send(int fd, const void *p, size_t n)
{
	while (n) {
		ssize_t k = send(fd, p, n, MSG_NOSIGNAL);

		if (k < 0 && errno == EAGAIN) {
			cr_assert_eq(rill_sleep_ms(1), 0);
			continue;
		}
		cr_assert_gt(k, 0, "peer send: %s", strerror(errno));
		p = (const char *)p + k;
		n -= (size_t)k;
	}
}

/* peer_send of the string s. */
static inline void peer_sends(int fd, const char *s)
{
	peer_send(fd, s, strlen(s));
}

/* Receives on the plain peer until n bytes, EOF or an error; returns the
 * count, and the error (or 0) in *errp; with errp NULL an error fails the
 * test. */
static inline size_t peer_recv_err(int fd, void *p, size_t n, int *errp)
{
	size_t got = 0;
	int err = 0;

	while (got < n) {
		ssize_t k = recv(fd, (char *)p + got, n - got, 0);

		if (k == 0)
			break;
		if (k < 0 && errno == EAGAIN) {
			cr_assert_eq(rill_sleep_ms(1), 0);
			continue;
		}
		if (k < 0) {
			err = -errno;
			break;
		}
		got += (size_t)k;
	}
	if (errp)
		*errp = err;
	else
		cr_assert_eq(err, 0, "peer recv: %s", strerror(-err));
	return got;
}

/* Receives until n bytes or EOF; returns the count. */
static inline size_t peer_recv_all(int fd, void *p, size_t n)
{
	return peer_recv_err(fd, p, n, NULL);
}

#endif /* RILL_TEST_NO_CRITERION */

#endif
