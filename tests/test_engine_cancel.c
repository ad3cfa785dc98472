/* SPDX-License-Identifier: MIT */
/* Cancellation and deadlines of a task with a kernel operation in flight: no byte lost, no late write. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/loop.h"
#include "rill/loop.h"
#include "rill/task.h"
#include "tests/helpers.h"

#define POISON 0xa5

/* These cases wait on raw io_uring operations (rill__op_wait); the epoll
 * backend's cancellations are covered by the streams and reliability
 * tests. */
static void cancel_setup(void)
{
	loop_setup();
	if (rill_loop_backend(loop) == RILL_BACKEND_EPOLL)
		cr_skip_test("rill__op_wait is io_uring's: this loop runs on epoll");
}

TestSuite(engine_cancel, .init = cancel_setup, .fini = loop_teardown);

static void pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

/* Reads exactly n bytes with plain blocking recv, outside rill. */
static void read_all(int fd, char *p, size_t n)
{
	while (n) {
		ssize_t r = recv(fd, p, n, 0);

		cr_assert_gt(r, 0, "recv: %zd", r);
		p += r;
		n -= (size_t)r;
	}
}

static void write_all(int fd, const char *p, size_t n)
{
	cr_assert_eq(send(fd, p, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* Nothing is queued on fd. */
static void assert_drained(int fd)
{
	char c;

	cr_assert_eq(recv(fd, &c, 1, MSG_DONTWAIT), -1);
	cr_assert_eq(errno, EAGAIN);
}

/* A recv through io_uring into buf; the wait result goes to res. */
struct recver {
	int fd;
	char *buf;		/* the op writes here: must outlive it */
	size_t len;
	int res;		/* result of the op wait */
	int next;		/* result of the wait after it */
	rill_time deadline;	/* 0: none */
	rill_time took;
};

static int recv_task(void *arg)
{
	struct recver *r = arg;
	struct io_uring_sqe *sqe = rill__sqe(rill_loop_current());
	rill_time saved = RILL_TIME_NEVER, t0 = rill_now();

	if (r->deadline)
		saved = rill_deadline_push(r->deadline);
	io_uring_prep_recv(sqe, r->fd, r->buf, r->len, 0);
	r->res = rill__op_wait(sqe, NULL);
	r->took = rill_now() - t0;
	if (r->deadline)
		rill_deadline_pop(saved);
	r->next = rill_yield();
	return 0;
}

/* The same, with the buffer on the task's own stack: a completion after
 * the frame is gone would be a use after return (ASan flags it). */
static int recv_on_stack(void *arg)
{
	struct recver *r = arg;
	char buf[256];
	struct io_uring_sqe *sqe = rill__sqe(rill_loop_current());

	memset(buf, POISON, sizeof(buf));
	io_uring_prep_recv(sqe, r->fd, buf, sizeof(buf), 0);
	r->res = rill__op_wait(sqe, NULL);
	if (r->res > 0)
		memcpy(r->buf, buf, (size_t)r->res);
	return r->res;
}

static int cancel_after_ms(void *arg)
{
	cr_assert_eq(rill_sleep_ms(5), 0);
	cr_assert_eq(rill_task_cancel(arg), 0);
	return 0;
}

static void assert_poisoned(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		cr_assert_eq((unsigned char)p[i], POISON, "byte %zu written", i);
}

Test(engine_cancel, cancel_a_parked_recv)
{
	static const char msg[] = "every byte must still be in the socket";
	char got[sizeof(msg)];
	char *buf = malloc(256);
	struct recver r = { .buf = buf, .len = 256, .res = 1 };
	int sv[2], res = 1;
	rill_task *t;

	pair(sv);
	r.fd = sv[0];
	memset(buf, POISON, 256);
	cr_assert_eq(rill_spawn(loop, recv_task, &r, &t), 0);
	cr_assert_eq(rill_spawn(loop, cancel_after_ms, t, NULL), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(r.res, -ECANCELED);
	cr_assert_eq(r.next, 0, "cancellation delivered twice");
	cr_assert_geq(r.took, 5 * MS);
	/* The cancelled recv consumed nothing and writes nothing now. */
	write_all(sv[1], msg, sizeof(msg));
	read_all(sv[0], got, sizeof(got));
	cr_assert_arr_eq(got, msg, sizeof(msg));
	assert_drained(sv[0]);
	cr_assert_eq(rill_loop_run(loop), 0);
	assert_poisoned(buf, 256);
	free(buf);
	close(sv[0]);
	close(sv[1]);
}

Test(engine_cancel, cancel_a_recv_into_the_task_stack)
{
	static const char msg[] = "0123456789";
	char out[256];
	struct recver r = { .buf = out, .res = 1 };
	int sv[2], res = 1;
	rill_task *t;

	pair(sv);
	r.fd = sv[0];
	cr_assert_eq(rill_spawn(loop, recv_on_stack, &r, &t), 0);
	cr_assert_eq(rill_spawn(loop, cancel_after_ms, t, NULL), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, -ECANCELED);
	cr_assert_eq(loop->ops_in_flight, 0);
	write_all(sv[1], msg, sizeof(msg));
	/* A fresh recv, on the same stack from the pool, gets every byte. */
	r.res = 0;
	cr_assert_eq(rill_spawn(loop, recv_on_stack, &r, &t), 0);
	cr_assert_eq(rill_task_join(t, &res), 0);
	cr_assert_eq(res, (int)sizeof(msg));
	cr_assert_arr_eq(out, msg, sizeof(msg));
	assert_drained(sv[0]);
	close(sv[0]);
	close(sv[1]);
}

Test(engine_cancel, deadline_on_a_parked_recv)
{
	static const char msg[] = "late but whole";
	char got[sizeof(msg)];
	char *buf = malloc(256);
	struct recver r = { .buf = buf, .len = 256, .res = 1,
			    .deadline = 10 * MS };
	int sv[2];
	rill_task *t;

	pair(sv);
	r.fd = sv[0];
	memset(buf, POISON, 256);
	cr_assert_eq(rill_spawn(loop, recv_task, &r, &t), 0);
	cr_assert_eq(rill_task_join(t, NULL), 0);
	cr_assert_eq(r.res, -ETIMEDOUT);
	cr_assert_geq(r.took, 10 * MS);
	cr_assert_lt(r.took, 10 * MS + 100 * MS);
	cr_assert_eq(r.next, 0, "the popped deadline still applies");
	write_all(sv[1], msg, sizeof(msg));
	read_all(sv[0], got, sizeof(got));
	cr_assert_arr_eq(got, msg, sizeof(msg));
	assert_poisoned(buf, 256);
	free(buf);
	close(sv[0]);
	close(sv[1]);
}

static int cancel_now(void *arg)
{
	return rill_task_cancel(arg);
}

/* The recv completes in the same io_uring_enter that carries its cancel:
 * the data is already queued, so the kernel finishes the recv at submit
 * and the cancel that follows it in the SQ finds nothing. */
Test(engine_cancel, result_that_races_the_cancel_is_kept)
{
	static const char msg[] = "raced";
	char buf[64];
	struct recver r = { .buf = buf, .len = sizeof(buf), .res = 1, .next = 1 };
	int sv[2];
	rill_task *t;

	pair(sv);
	r.fd = sv[0];
	write_all(sv[1], msg, sizeof(msg));
	/* Both start in one iteration: the recv parks, then the cancel. */
	cr_assert_eq(rill_spawn(loop, recv_task, &r, &t), 0);
	cr_assert_eq(rill_spawn(loop, cancel_now, t, NULL), 0);
	cr_assert_eq(rill_task_join(t, NULL), 0);
	cr_assert_eq(r.res, (int)sizeof(msg), "res %d", r.res);
	cr_assert_arr_eq(buf, msg, sizeof(msg));
	cr_assert_eq(r.next, -ECANCELED, "cancellation lost: next wait gave %d",
		     r.next);
	assert_drained(sv[0]);
	close(sv[0]);
	close(sv[1]);
}

struct racer {
	rill_task *target;
	int fd;
	const char *msg;
	size_t len;
};

static int send_then_cancel(void *arg)
{
	struct racer *x = arg;

	cr_assert_eq(rill_yield(), 0);	/* the recv is in the kernel now */
	write_all(x->fd, x->msg, x->len);
	cr_assert_eq(rill_task_cancel(x->target), 0);
	return 0;
}

/* Data arrives while the recv is parked, in the iteration of the cancel:
 * whichever wins, the bytes are either returned or still queued. */
Test(engine_cancel, data_and_cancel_in_one_iteration_lose_nothing)
{
	static const char msg[] = "no byte may go missing in this race";
	int won = 0, lost = 0;
	int sv[2];

	pair(sv);
	for (int i = 0; i < 50; i++) {
		char buf[64], got[sizeof(msg)];
		struct recver r = { .fd = sv[0], .buf = buf, .len = sizeof(buf) };
		struct racer x = { .fd = sv[1], .msg = msg, .len = sizeof(msg) };
		size_t have = 0;

		cr_assert_eq(rill_spawn(loop, recv_task, &r, &x.target), 0);
		cr_assert_eq(rill_spawn(loop, send_then_cancel, &x, NULL), 0);
		cr_assert_eq(rill_task_join(x.target, NULL), 0);
		if (r.res > 0) {
			won++;
			cr_assert_eq(r.next, -ECANCELED);
			memcpy(got, buf, (size_t)r.res);
			have = (size_t)r.res;
		} else {
			lost++;
			cr_assert_eq(r.res, -ECANCELED);
			cr_assert_eq(r.next, 0);
		}
		read_all(sv[0], got + have, sizeof(msg) - have);
		cr_assert_arr_eq(got, msg, sizeof(msg));
		assert_drained(sv[0]);
	}
	cr_log_info("recv won %d times, cancel won %d times", won, lost);
	cr_assert_eq(loop->ops_in_flight, 0);
	close(sv[0]);
	close(sv[1]);
}

static int cancelled_before_submit(void *arg)
{
	struct recver *r = arg;

	cr_assert_eq(rill_task_cancel(rill_task_current()), 0);
	recv_task(r);
	return 0;
}

Test(engine_cancel, pending_cancel_never_submits_the_op)
{
	static const char msg[] = "untouched";
	char got[sizeof(msg)];
	char *buf = malloc(64);
	struct recver r = { .buf = buf, .len = 64, .res = 1, .next = 1 };
	int sv[2];
	rill_task *t;

	pair(sv);
	r.fd = sv[0];
	memset(buf, POISON, 64);
	write_all(sv[1], msg, sizeof(msg));
	cr_assert_eq(rill_spawn(loop, cancelled_before_submit, &r, &t), 0);
	cr_assert_eq(rill_task_join(t, NULL), 0);
	cr_assert_eq(r.res, -ECANCELED);
	cr_assert_eq(r.next, 0);
	assert_poisoned(buf, 64);
	read_all(sv[0], got, sizeof(got));
	cr_assert_arr_eq(got, msg, sizeof(msg));
	free(buf);
	close(sv[0]);
	close(sv[1]);
}

#define NTASKS 64

static int stop_soon(void *arg)
{
	cr_assert_eq(rill_sleep_ms(5), 0);
	rill_loop_stop(arg);
	return 0;
}

static int sleep_forever(void *arg)
{
	*(int *)arg = rill_sleep_ms(100000);
	return 0;
}

/* rill_loop_free with tasks parked on kernel operations: it cancels them
 * and waits for every completion, so none lands in a freed stack. */
Test(engine_cancel, loop_free_with_ops_in_flight)
{
	struct recver r[NTASKS];
	char out[NTASKS][256];
	int sv[NTASKS][2], slept = 1;
	rill_loop *l2;

	cr_assert_eq(rill_loop_new(NULL, &l2), 0);
	for (int i = 0; i < NTASKS; i++) {
		pair(sv[i]);
		r[i] = (struct recver){ .fd = sv[i][0], .buf = out[i], .res = 1 };
		cr_assert_eq(rill_spawn(l2, recv_on_stack, &r[i], NULL), 0);
	}
	cr_assert_eq(rill_spawn(l2, sleep_forever, &slept, NULL), 0);
	cr_assert_eq(rill_spawn(l2, stop_soon, l2, NULL), 0);
	cr_assert_eq(rill_loop_run(l2), 0);
	cr_assert_eq(l2->ops_in_flight, NTASKS);
	rill_loop_free(l2);
	cr_assert_eq(slept, -ECANCELED);
	for (int i = 0; i < NTASKS; i++) {
		char msg[32], got[32];
		int n = snprintf(msg, sizeof(msg), "conn %d", i);

		cr_assert_eq(r[i].res, -ECANCELED, "task %d: %d", i, r[i].res);
		write_all(sv[i][1], msg, (size_t)n);
		read_all(sv[i][0], got, (size_t)n);
		cr_assert_arr_eq(got, msg, (size_t)n);
		close(sv[i][0]);
		close(sv[i][1]);
	}
	cr_assert_eq(rill_spawn(loop, stop_soon, loop, NULL), 0, "the other loop lives on");
	cr_assert_eq(rill_loop_run(loop), 0);
}
