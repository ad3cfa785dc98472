/* SPDX-License-Identifier: MIT */
/* fd exhaustion, cycle after cycle: accept failures reported through the log hook, accepting paused and resumed, open connections unaffected, no fd leaked. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "tests/helpers.h"

/* Connections the server has fds for, and clients beyond them. The server
 * is fd_limited_server, in a forked child. */
#define ROOM 4
#define EXTRA 4
#define CYCLES 3

/* ---- the clients: plain blocking sockets in the test process -------- */

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
		send_str(served[i], msg);
		expect_fd_line(served[i], msg, 5000, "a client within the limit");
	}
	for (int i = 0; i <= EXTRA; i++) {
		waiting[i] = tcp_client(port);
		snprintf(msg, sizeof(msg), "c%d w%d\n", n, i);
		send_str(waiting[i], msg);
	}
	for (int i = 0; i <= EXTRA; i++) {
		struct pollfd p = { .fd = waiting[i], .events = POLLIN };

		cr_assert_eq(poll(&p, 1, i ? 0 : 300), 0, "served beyond the fd limit");
	}
	close(waiting[EXTRA]);	/* gives up while in the backlog */
	/* The connections already open keep working meanwhile. */
	for (int i = 0; i < ROOM; i++) {
		snprintf(msg, sizeof(msg), "c%d s%d again\n", n, i);
		send_str(served[i], msg);
		expect_fd_line(served[i], msg, 5000, "an open connection during the exhaustion");
		close(served[i]);
	}
	/* Within the retry pause (1 s) accepting resumes. */
	t0 = rill_now();
	for (int i = 0; i < EXTRA; i++) {
		snprintf(msg, sizeof(msg), "c%d w%d\n", n, i);
		expect_fd_line(waiting[i], msg, 5000, "a client held in the backlog");
		if (i == 0)
			*resume_ns = rill_now() - t0;
		close(waiting[i]);
	}
}

Test(reliability_fds, repeated_exhaustion_pauses_and_resumes_accepting, .timeout = 60)
{
	int ctl, port, before, after, errors, last = 0;
	rill_time resume[CYCLES];
	pid_t pid = fd_limited_start(ROOM, &ctl, &port);

	for (int n = 0; n < CYCLES; n++) {
		cycle(port, n, &resume[n]);
		errors = fd_limited_ask(ctl, "count\n");
		/* Reported each time, but not once per retry in a busy loop:
		 * accepting pauses for a second after each failure. */
		cr_assert_gt(errors, last, "cycle %d: EMFILE not reported", n);
		cr_assert_leq(errors - last, 4, "cycle %d: %d accept errors", n, errors - last);
		last = errors;
	}
	fd_limited_finish(pid, ctl, &before, &after, &errors);
	printf("fds: %d exhaustion cycles, %d connections served (%d within the limit, %d "
	       "after accepting resumed, %d gave up in the backlog); %d accept failures "
	       "logged; accepting resumed %.0f / %.0f / %.0f ms after fds were freed; "
	       "server fds %d before, %d after\n", CYCLES, CYCLES * (ROOM + EXTRA),
	       CYCLES * ROOM, CYCLES * EXTRA, CYCLES, errors, (double)resume[0] / 1e6,
	       (double)resume[1] / 1e6, (double)resume[2] / 1e6, before, after);
	fflush(stdout);
	cr_assert_eq(after, before, "fds leaked in the server: %d -> %d", before, after);
}
