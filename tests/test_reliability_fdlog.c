/* SPDX-License-Identifier: MIT */
/* A server held at its fd limit logs the exhaustion once, not once per retry, and says when it accepts again. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

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

	rill_set_log_handler(count_lines, NULL);
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

/* How long the test waits for each report of the child's. */
#define REPORT_MS (HELD_MS + 10000)

Test(reliability_fdlog, one_line_per_exhaustion_not_per_retry, .timeout = 30)
{
	int ctl, fds[CLIENTS], status, port, f, r;
	struct child c;
	char buf[64];
	pid_t pid = fork_task(server_child, &c, &c.report, &ctl);

	cr_assert_gt(read_line(ctl, buf, sizeof(buf), REPORT_MS), 0, "no port from the child");
	port = atoi(buf);
	for (int i = 0; i < CLIENTS; i++)	/* the rest wait in the backlog */
		fds[i] = tcp_client(port);
	cr_assert_gt(read_line(ctl, buf, sizeof(buf), REPORT_MS), 0);
	cr_assert_eq(sscanf(buf, "%d %d", &f, &r), 2);
	printf("fd limit held %d ms with %d clients: %d accept failure line(s), %d resumed\n",
	       HELD_MS, CLIENTS, f, r);
	cr_assert_eq(f, 1, "held at the limit for %d ms: %d lines, one expected", HELD_MS, f);
	cr_assert_eq(r, 0);
	for (int i = 0; i < CLIENTS; i++)
		close(fds[i]);
	cr_assert_gt(read_line(ctl, buf, sizeof(buf), REPORT_MS), 0);
	cr_assert_eq(sscanf(buf, "%d %d", &f, &r), 2);
	/* Accepting resumed and was said so; any line after the first
	 * follows a resume (the backlog can exhaust the two fds again). */
	cr_assert_geq(r, 1, "accepting again is not said");
	cr_assert_leq(f, 1 + r, "%d failure lines for %d resumes", f, r);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child status %#x", status);
	close(ctl);
}
