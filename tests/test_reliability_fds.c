/* SPDX-License-Identifier: MIT */
/* fd exhaustion, cycle after cycle: accept failures reported through the log hook, accepting paused and resumed, open connections unaffected, no fd leaked. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"

/* Connections the server has fds for, and clients beyond them. */
#define ROOM 4
#define EXTRA 4
#define CYCLES 3

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

/* ---- the server, in a forked child with few fds --------------------
 *
 * A socketpair carries the port and the answers: "count" gives the accept
 * errors logged so far, "done" closes the server and gives the fd counts
 * before and after.
 */

static int accept_errors;

static void log_hook(int level, const char *msg, void *arg)
{
	(void)arg;
	if (level == RILL_LOG_ERROR && strstr(msg, "accept failed"))
		accept_errors++;
}

/* A soft limit with exactly `room` free descriptors below it. */
static rlim_t limit_with_room(int room)
{
	int fd = 0;

	for (; room > 0; fd++)
		if (fcntl(fd, F_GETFD) < 0 && errno == EBADF)
			room--;
	return (rlim_t)fd;
}

static int echo_lines(rill_reader *r, rill_writer *w, void *arg)
{
	rill_bytes line;

	(void)arg;
	while (rill_reader_readline(r, &line) > 0) {
		rill_writer_write(w, line.data, line.len);
		if (rill_writer_drain(w) < 0)
			break;
	}
	rill_writer_close(w);
	return 0;
}

static void answer(rill_writer *w, const char *fmt, int a, int b, int c)
{
	char msg[64];
	int n = snprintf(msg, sizeof(msg), fmt, a, b, c);

	rill_writer_write(w, msg, (size_t)n);
}

static int server_child(void *arg)
{
	rill_open_options co = { .size = sizeof(rill_open_options), .sock = *(int *)arg };
	rill_server_options so = { .size = sizeof(rill_server_options), .sock = -1,
		.start_serving = RILL_OFF };
	struct rlimit old, lim;
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	int before = count_fds();

	rill_set_log_handler(log_hook, NULL);
	if (rill_open_connection(NULL, 0, &co, &r, &w) < 0 ||
	    rill_start_server(echo_lines, NULL, "127.0.0.1", 0, &so, &s) < 0)
		return 1;
	getrlimit(RLIMIT_NOFILE, &old);
	lim = old;
	lim.rlim_cur = limit_with_room(ROOM);
	if (setrlimit(RLIMIT_NOFILE, &lim) < 0)
		return 2;
	rill_server_start_serving(s);
	answer(w, "%d\n", rill_server_port(s), 0, 0);
	while (rill_reader_readline(r, &line) > 0) {
		if (!strncmp(line.data, "count\n", 6)) {
			answer(w, "%d\n", accept_errors, 0, 0);
			continue;
		}
		rill_server_close(s);
		rill_server_wait_closed(s);
		rill_server_free(s);
		setrlimit(RLIMIT_NOFILE, &old);
		answer(w, "%d %d %d\n", before, count_fds(), accept_errors);
	}
	rill_writer_close(w);
	rill_writer_wait_closed(w);
	rill_writer_free(w);
	return 0;
}

/* ---- the clients: plain blocking sockets in the test process -------- */

/* A line without its newline, within timeout_ms; -1 on timeout or EOF. */
static int read_line(int fd, char *buf, size_t cap, int timeout_ms)
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

static int tcp_client(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

static void send_line(int fd, const char *msg)
{
	cr_assert_eq(send(fd, msg, strlen(msg), MSG_NOSIGNAL), (ssize_t)strlen(msg));
}

static void expect_line(int fd, const char *want, int timeout_ms, const char *what)
{
	char buf[64];

	cr_assert_geq(read_line(fd, buf, sizeof(buf), timeout_ms), 0, "%s: no answer", what);
	cr_assert_eq(strncmp(buf, want, strlen(buf)), 0, "%s: got %s", what, buf);
}

static int ask(int ctl, const char *q)
{
	char buf[64];

	send_line(ctl, q);
	cr_assert_gt(read_line(ctl, buf, sizeof(buf), 5000), 0, "no answer from the server");
	return atoi(buf);
}

/* One exhaustion: ROOM served, EXTRA waiting (one of them gives up before
 * it is accepted), the ROOM leave, the rest are served. */
static void cycle(int port, int n, rill_time *resume_ns)
{
	int served[ROOM], waiting[EXTRA + 1];
	char msg[32];
	rill_time t0;

	for (int i = 0; i < ROOM; i++) {
		served[i] = tcp_client(port);
		snprintf(msg, sizeof(msg), "c%d s%d\n", n, i);
		send_line(served[i], msg);
		expect_line(served[i], msg, 5000, "a client within the limit");
	}
	for (int i = 0; i <= EXTRA; i++) {
		waiting[i] = tcp_client(port);
		snprintf(msg, sizeof(msg), "c%d w%d\n", n, i);
		send_line(waiting[i], msg);
	}
	for (int i = 0; i <= EXTRA; i++) {
		struct pollfd p = { .fd = waiting[i], .events = POLLIN };

		cr_assert_eq(poll(&p, 1, i ? 0 : 300), 0, "served beyond the fd limit");
	}
	close(waiting[EXTRA]);	/* gives up while in the backlog */
	/* The connections already open keep working meanwhile. */
	for (int i = 0; i < ROOM; i++) {
		snprintf(msg, sizeof(msg), "c%d s%d again\n", n, i);
		send_line(served[i], msg);
		expect_line(served[i], msg, 5000, "an open connection during the exhaustion");
		close(served[i]);
	}
	/* Within the retry pause (1 s) accepting resumes. */
	t0 = rill_now();
	for (int i = 0; i < EXTRA; i++) {
		snprintf(msg, sizeof(msg), "c%d w%d\n", n, i);
		expect_line(waiting[i], msg, 5000, "a client held in the backlog");
		if (i == 0)
			*resume_ns = rill_now() - t0;
		close(waiting[i]);
	}
}

Test(reliability_fds, repeated_exhaustion_pauses_and_resumes_accepting, .timeout = 60)
{
	char buf[64];
	int sv[2], port, status, before, after, errors, last = 0;
	rill_time resume[CYCLES];
	pid_t pid;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		int result = 1;

		close(sv[0]);
		rill_run(server_child, &sv[1], &result);
		_exit(result);
	}
	close(sv[1]);
	cr_assert_gt(read_line(sv[0], buf, sizeof(buf), 5000), 0, "no port from the child");
	port = atoi(buf);
	for (int n = 0; n < CYCLES; n++) {
		cycle(port, n, &resume[n]);
		errors = ask(sv[0], "count\n");
		/* Reported each time, but not once per retry in a busy loop:
		 * accepting pauses for a second after each failure. */
		cr_assert_gt(errors, last, "cycle %d: EMFILE not reported", n);
		cr_assert_leq(errors - last, 4, "cycle %d: %d accept errors", n, errors - last);
		last = errors;
	}
	send_line(sv[0], "done\n");
	cr_assert_gt(read_line(sv[0], buf, sizeof(buf), 5000), 0);
	cr_assert_eq(sscanf(buf, "%d %d %d", &before, &after, &errors), 3);
	printf("fds: %d exhaustion cycles, %d connections served (%d within the limit, %d "
	       "after accepting resumed, %d gave up in the backlog); %d accept failures "
	       "logged; accepting resumed %.0f / %.0f / %.0f ms after fds were freed; "
	       "server fds %d before, %d after\n", CYCLES, CYCLES * (ROOM + EXTRA),
	       CYCLES * ROOM, CYCLES * EXTRA, CYCLES, errors, (double)resume[0] / 1e6,
	       (double)resume[1] / 1e6, (double)resume[2] / 1e6, before, after);
	fflush(stdout);
	cr_assert_eq(after, before, "fds leaked in the server: %d -> %d", before, after);
	close(sv[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
}
