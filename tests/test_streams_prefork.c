/* SPDX-License-Identifier: MIT */
/* Pre-fork servers: forked workers share one listening socket; one worker closing its server stops only its own accepting. */
#include <criterion/criterion.h>

#include "tests/helpers.h"

TestSuite(streams_prefork, .timeout = 60);

struct worker {
	int lfd;	/* the shared listening socket */
	int ctl;	/* its end of the control socket */
};

/* A worker: serves echo on the shared socket and obeys its control
 * socket, a line at a time: "close" closes its server (then "closed"),
 * "exit" or EOF ends it. */
static int worker_main(void *arg)
{
	struct worker *wk = arg;
	rill_open_options oo = RILL_OPEN_OPTIONS_INIT;
	rill_server_options so = RILL_SERVER_OPTIONS_INIT;
	rill_server *s = NULL;
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	int err;

	oo.sock = wk->ctl;
	so.sock = wk->lfd;
	CHECK(rill_open_connection(NULL, 0, &oo, &r, &w) == 0);
	err = rill_start_server(echo_lines, NULL, NULL, 0, &so, &s);
	CHECK(err == 0, "start_server: %s %s", rill_err_name(err), rill_error_detail());
	CHECK(rill_writer_write(w, "ready\n", 6) == 0);
	while (rill_reader_readline(r, &line) > 0) {
		if (line.len == 6 && !memcmp(line.data, "close\n", 6) && s) {
			rill_server_close(s);
			CHECK(rill_server_wait_closed(s) == 0);
			rill_server_free(s);
			s = NULL;
			CHECK(rill_writer_write(w, "closed\n", 7) == 0);
		} else {
			break;
		}
	}
	if (s) {
		rill_server_close(s);
		rill_server_wait_closed(s);
		rill_server_free(s);
	}
	writer_done(w);
	return 0;
}

/* Echoes one line through 127.0.0.1:port on a fresh connection: whether
 * it came back (within 2 s). */
static bool echoed(int port, int i)
{
	char msg[32], buf[32];
	int fd = tcp_connect(port);
	bool ok;

	if (fd < 0)
		return false;
	snprintf(msg, sizeof(msg), "hello %d\n", i);
	ok = send(fd, msg, strlen(msg), MSG_NOSIGNAL) == (ssize_t)strlen(msg) &&
	     read_line(fd, buf, sizeof(buf), 2000) >= 0 && !strncmp(buf, msg, strlen(buf)) &&
	     strlen(buf) == strlen(msg) - 1;
	close(fd);
	return ok;
}

static void expect_line_from(int fd, const char *want)
{
	char buf[64];

	cr_assert_geq(read_line(fd, buf, sizeof(buf), 5000), 0, "no \"%s\" from a worker", want);
	cr_assert_str_eq(buf, want);
}

static void two_workers_one_closes(bool parent_keeps_socket)
{
	struct worker wk[2];
	int ctl[2], port, served = 0, status;
	pid_t pid[2];
	int lfd = listen_loopback(&port, 64);

	cr_assert_geq(lfd, 0);
	for (int i = 0; i < 2; i++) {
		wk[i].lfd = lfd;
		pid[i] = fork_task(worker_main, &wk[i], &wk[i].ctl, &ctl[i]);
		close(wk[i].ctl);
	}
	if (!parent_keeps_socket)
		close(lfd);
	for (int i = 0; i < 2; i++)
		expect_line_from(ctl[i], "ready");
	/* Worker 0 closes its server; worker 1 goes on serving. */
	send_str(ctl[0], "close\n");
	expect_line_from(ctl[0], "closed");
	for (int i = 0; i < 20; i++)
		served += echoed(port, i);
	cr_assert_eq(served, 20, "the other worker served %d of 20", served);
	for (int i = 0; i < 2; i++) {
		send_str(ctl[i], "exit\n");
		cr_assert_eq(waitpid(pid[i], &status, 0), pid[i]);
		cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
			  "worker %d status %#x", i, status);
		close(ctl[i]);
	}
	if (parent_keeps_socket)
		close(lfd);
}

Test(streams_prefork, one_worker_closing_leaves_the_other_serving)
{
	two_workers_one_closes(false);
}

Test(streams_prefork, parent_holding_the_socket_too)
{
	two_workers_one_closes(true);
}
