/* SPDX-License-Identifier: MIT */
/* A server held at its fd limit logs the exhaustion once, not once per retry, and says when it accepts again. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"

/* How long the server stays at its limit: three retries at one a second. */
#define HELD_MS 3500
#define CLIENTS 8

static int failures, resumed;

static void count_lines(int level, const char *msg, void *arg)
{
	(void)arg;
	if (level == RILL_LOG_ERROR && strstr(msg, "accept failed"))
		failures++;
	if (strstr(msg, "accepting again"))
		resumed++;
}

static int hold(rill_reader *r, rill_writer *w, void *arg)
{
	char buf[16];

	(void)w, (void)arg;
	while (rill_reader_read(r, buf, sizeof(buf)) > 0)
		;
	return 0;
}

struct child {
	int report;	/* socket to the parent */
};

static int server_child(void *arg)
{
	struct child *c = arg;
	struct rlimit rl;
	rill_server *s;
	char line[64];
	int fd, n;

	if (rill_start_server(hold, NULL, "127.0.0.1", 0, NULL, &s) < 0)
		return 1;
	/* Room for two connections, then EMFILE. */
	fd = dup(c->report);
	close(fd);
	getrlimit(RLIMIT_NOFILE, &rl);
	rl.rlim_cur = (rlim_t)fd + 2;
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		return 2;
	n = snprintf(line, sizeof(line), "%d\n", rill_server_port(s));
	if (write(c->report, line, (size_t)n) != n)
		return 3;
	rill_sleep_ms(HELD_MS);
	n = snprintf(line, sizeof(line), "%d %d\n", failures, resumed);
	if (write(c->report, line, (size_t)n) != n)
		return 4;
	/* The parent closes its clients: fds come back, accepting resumes. */
	rill_sleep_ms(1500);
	n = snprintf(line, sizeof(line), "%d %d\n", failures, resumed);
	if (write(c->report, line, (size_t)n) != n)
		return 5;
	rill_server_free(s);
	return 0;
}

static int read_line(int fd, char *buf, size_t size)
{
	size_t n = 0;

	while (n + 1 < size && read(fd, buf + n, 1) == 1)
		if (buf[n++] == '\n')
			break;
	buf[n] = '\0';
	return (int)n;
}

static int connect_to(int port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	return fd;
}

Test(reliability_fdlog, one_line_per_exhaustion_not_per_retry, .timeout = 30)
{
	int sv[2], fds[CLIENTS], status, port, f, r;
	char buf[64];
	pid_t pid;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		struct child c = { .report = sv[1] };
		int result = 1;

		close(sv[0]);
		rill_set_log_handler(count_lines, NULL);
		rill_run(server_child, &c, &result);
		_exit(result);
	}
	close(sv[1]);
	cr_assert_gt(read_line(sv[0], buf, sizeof(buf)), 0, "no port from the child");
	port = atoi(buf);
	for (int i = 0; i < CLIENTS; i++)	/* the rest wait in the backlog */
		fds[i] = connect_to(port);
	cr_assert_gt(read_line(sv[0], buf, sizeof(buf)), 0);
	cr_assert_eq(sscanf(buf, "%d %d", &f, &r), 2);
	printf("fd limit held %d ms with %d clients: %d accept failure line(s), %d resumed\n",
	       HELD_MS, CLIENTS, f, r);
	cr_assert_eq(f, 1, "held at the limit for %d ms: %d lines, one expected", HELD_MS, f);
	cr_assert_eq(r, 0);
	for (int i = 0; i < CLIENTS; i++)
		close(fds[i]);
	cr_assert_gt(read_line(sv[0], buf, sizeof(buf)), 0);
	cr_assert_eq(sscanf(buf, "%d %d", &f, &r), 2);
	/* Accepting resumed and was said so; any line after the first
	 * follows a resume (the backlog can exhaust the two fds again). */
	cr_assert_geq(r, 1, "accepting again is not said");
	cr_assert_leq(f, 1 + r, "%d failure lines for %d resumes", f, r);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	close(sv[0]);
}
