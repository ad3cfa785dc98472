/* SPDX-License-Identifier: MIT */
/* Cancellation storms: tasks cancelled or timed out in reads, drains, connects and serve_forever, round after round; no byte lost to a cancelled read, no fd leaked, the loop stays usable. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "tests/helpers.h"

#define ROUNDS 40
#define TASKS 40

/* ---- helpers ------------------------------------------------------- */

static unsigned warnings;

static void count_warnings(int level, const char *msg, void *arg)
{
	(void)arg;
	(void)msg;
	warnings += level == RILL_LOG_WARNING;
}

/* ---- the servers ---------------------------------------------------- */

/* Never reads, never writes: reads and drains against it wait forever.
 * Its connections end when the test aborts them. */
static int silent(rill_reader *r, rill_writer *w, void *arg)
{
	(void)r;
	(void)arg;
	rill_writer_wait_closed(w);
	return 0;
}

/* ---- the victims ---------------------------------------------------- */

enum kind { READ_SILENT, READ_RACE, DRAIN, CONNECT, SERVE, KINDS };
static const char *const kind_names[] = { "read", "read-race", "drain", "connect",
					  "serve_forever" };

struct victim {
	enum kind kind;
	int port;		/* silent, echo or blackhole, by kind */
	rill_time deadline;	/* 0: cancelled from outside instead */
	bool cleanup;		/* close and free after the interruption */
	int result;		/* the interrupted call's return */
	unsigned lines;		/* read-race: lines echoed before it */
	bool lost;		/* read-race: the line in flight went missing */
	rill_task *task;
};

static bool interrupted(int err)
{
	return err == -ECANCELED || err == -ETIMEDOUT;
}

/* Ping after ping: each readline may be interrupted as its echo arrives.
 * The line in flight must still come, whole, to the next readline. */
static int read_race(struct victim *v, rill_reader *r, rill_writer *w)
{
	char msg[32];
	rill_bytes line;
	ssize_t n;
	int len;

	for (;;) {
		len = snprintf(msg, sizeof(msg), "ping %u\n", v->lines);
		rill_writer_write(w, msg, (size_t)len);
		n = rill_reader_readline(r, &line);
		if (n < 0)
			break;
		if (n != len || memcmp(line.data, msg, (size_t)len))
			return -EBADMSG;
		v->lines++;
	}
	if (interrupted((int)n) && v->cleanup) {
		rill_time saved;

		rill_deadline_pop(RILL_TIME_NEVER);
		saved = rill_deadline_push(2000 * MS);
		n = rill_reader_readline(r, &line);
		rill_deadline_pop(saved);
		v->lost = n != len || memcmp(line.data, msg, (size_t)len);
	}
	return (int)n;
}

/* Writes until drain blocks: the kernel's buffers take a few MiB first. */
static int drain_forever(rill_writer *w)
{
	static char blob[1 << 20];
	int err = 0;

	for (int i = 0; i < 256 && err == 0; i++)
		if ((err = rill_writer_write(w, blob, sizeof(blob))) == 0)
			err = rill_writer_drain(w);
	return err;
}

static int with_connection(struct victim *v)
{
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	int err = rill_open_connection("127.0.0.1", v->port, NULL, &r, &w);

	if (err < 0)
		return err;
	if (v->kind == READ_SILENT)
		err = (int)rill_reader_readline(r, &line);
	else if (v->kind == READ_RACE)
		err = read_race(v, r, w);
	else
		err = drain_forever(w);
	if (v->cleanup) {
		rill_writer_abort(w);
		rill_writer_wait_closed(w);
		rill_writer_free(w);
	}
	/* Otherwise the task ends with the writer open: rill closes it. */
	return err;
}

static int serve(void)
{
	rill_server *s;
	int err = rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &s);

	if (err < 0)
		return err;
	err = rill_server_serve_forever(s);
	rill_server_free(s);
	return err;
}

static int victim(void *arg)
{
	struct victim *v = arg;
	rill_time saved = v->deadline ? rill_deadline_push(v->deadline) : 0;

	v->result = v->kind == SERVE ? serve() : with_connection(v);
	if (v->deadline)
		rill_deadline_pop(saved);
	return 0;
}

struct canceller {
	rill_task *target;
	rill_time after;
};

static int canceller(void *arg)
{
	struct canceller *c = arg;

	if (c->after)
		rill_sleep_ns(c->after);
	rill_task_cancel(c->target);
	return 0;
}

/* ---- the storm ------------------------------------------------------ */

struct storm {
	int echo_port, silent_port, dead_port;
	unsigned by_kind[KINDS], cancelled, timed_out, lines_raced;
};

static int one_round(struct storm *st, uint32_t *seed)
{
	static struct victim v[TASKS];
	static struct canceller c[TASKS];
	rill_task *ct[TASKS];
	const int ports[KINDS] = { st->silent_port, st->echo_port, st->silent_port,
				   st->dead_port, 0 };

	for (int i = 0; i < TASKS; i++) {
		enum kind k = (enum kind)(xorshift32(seed) % KINDS);
		rill_time when = (xorshift32(seed) % 20000) * RILL_NSEC_PER_MSEC / 1000;

		/* A racing read needs its connection first, to race at all. */
		if (k == READ_RACE)
			when += 10 * MS;

		v[i] = (struct victim){ .kind = k, .port = ports[k], .result = 1,
					.cleanup = xorshift32(seed) % 2 };
		if (xorshift32(seed) % 2)
			v[i].deadline = when + 1;
		CHECK(rill_spawn(rill_loop_current(), victim, &v[i], &v[i].task) == 0, "spawn");
		ct[i] = NULL;
		if (!v[i].deadline) {
			c[i] = (struct canceller){ .target = v[i].task, .after = when };
			CHECK(rill_spawn(rill_loop_current(), canceller, &c[i], &ct[i]) == 0,
			      "spawn");
		}
	}
	for (int i = 0; i < TASKS; i++)
		if (ct[i])
			CHECK(rill_task_join(ct[i], NULL) == 0, "join canceller");
	for (int i = 0; i < TASKS; i++) {
		int res = 0;

		CHECK(rill_task_join(v[i].task, &res) == 0, "join");
		/* Cancelled before it ran: the body never ran at all. */
		if (res == -ECANCELED)
			v[i].result = -ECANCELED;
		CHECK(interrupted(v[i].result) || (v[i].kind == READ_RACE && v[i].cleanup &&
						   v[i].result > 0),
		      "%s task %d: %s", kind_names[v[i].kind], i, rill_err_name(v[i].result));
		CHECK(!v[i].lost, "read-race task %d: the line in flight was lost", i);
		st->by_kind[v[i].kind]++;
		st->cancelled += v[i].result == -ECANCELED;
		st->timed_out += v[i].result == -ETIMEDOUT;
		st->lines_raced += v[i].lines;
	}
	return 0;
}

/* In a forked child with a network namespace of its own where unshare is
 * allowed: the blackholed SYNs disturb nothing else. */
ISOLATED_TEST(reliability_cancel, storm_of_cancellations_and_timeouts, .timeout = 120)
{
	struct storm st = { 0 };
	rill_server *echo, *quiet;
	struct blackhole dead;
	uint32_t seed = 12345;
	int before, after;
	rill_time t0 = rill_now();

	rill_set_log_handler(count_warnings, NULL);
	before = count_fds();
	CHECK(blackhole_open(&dead) == 0, "blackhole");
	st.dead_port = blackhole_port(&dead);
	CHECK(rill_start_server(echo_lines, NULL, "127.0.0.1", 0, NULL, &echo) == 0, "echo");
	CHECK(rill_start_server(silent, NULL, "127.0.0.1", 0, NULL, &quiet) == 0, "silent");
	st.echo_port = rill_server_port(echo);
	st.silent_port = rill_server_port(quiet);
	for (int round = 0; round < ROUNDS; round++)
		if (one_round(&st, &seed))
			return 1;
	CHECK(echo_once(st.echo_port) == 0, "the loop is not usable after the storm");
	rill_server_free(quiet);	/* aborts the connections it kept */
	rill_server_free(echo);
	blackhole_close(&dead);
	after = settle_fds(before);
	printf("cancel storm: %d rounds of %d tasks in %.1f s: %u reads, %u racing reads "
	       "(%u lines echoed, none lost to a cancellation), %u drains, %u connects, "
	       "%u serve_forever; %u cancelled, %u timed out; %u unclosed writers closed "
	       "by rill; fds %d before, %d after\n", ROUNDS, TASKS,
	       (double)(rill_now() - t0) / 1e9, st.by_kind[READ_SILENT],
	       st.by_kind[READ_RACE], st.lines_raced, st.by_kind[DRAIN], st.by_kind[CONNECT],
	       st.by_kind[SERVE], st.cancelled, st.timed_out, warnings, before, after);
	fflush(stdout);
	CHECK(after == before, "fds leaked: %d -> %d", before, after);
	CHECK(st.cancelled && st.timed_out, "both ways of interrupting happened");
	return 0;
}

/* ---- freeing a loop with operations no task waits for ---------------
 *
 * A server left open keeps its accept in flight; a task cancelled by
 * rill_loop_free() ends. The loop must then stop waiting for completions
 * that no one will ever cause.
 */

static int ignore(rill_reader *r, rill_writer *w, void *arg)
{
	(void)r;
	(void)w;
	(void)arg;
	return 0;
}

static int sleeper(void *arg)
{
	(void)arg;
	return rill_sleep_ms(1000 * 1000);
}

/* Never freed, on purpose; a global, so that LeakSanitizer sees it kept. */
static rill_server *left_open;

static int leave_things_running(void *arg)
{
	(void)arg;
	cr_assert_eq(rill_start_server(ignore, NULL, "127.0.0.1", 0, NULL, &left_open), 0);
	cr_assert_eq(rill_spawn(rill_loop_current(), sleeper, NULL, NULL), 0);
	return 0;
}

Test(reliability_cancel, loop_free_does_not_wait_for_operations_of_no_task, .timeout = 10)
{
	rill_time t0 = rill_now();
	int result = -1;

	cr_assert_eq(rill_run(leave_things_running, NULL, &result), 0);
	cr_assert_eq(result, 0);
	cr_assert_lt(rill_now() - t0, 2 * RILL_NSEC_PER_SEC);
}
