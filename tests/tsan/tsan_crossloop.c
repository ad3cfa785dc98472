/* SPDX-License-Identifier: MIT */
/* Cross-thread wake-ups and multi-loop use under ThreadSanitizer.
 *
 * A plain program, not a Criterion one: Criterion's sandbox maps its arena
 * at addresses ThreadSanitizer reserves, so it cannot start under TSan. It
 * prints one line per case and "N passed, N failed" at the end. */
#include <pthread.h>
#include <stdatomic.h>

/* The helpers that do not need Criterion: CHECK, writer_done. */
#define RILL_TEST_NO_CRITERION
#include "tests/helpers.h"

static int passed, failed;

static void run_case(const char *name, int (*fn)(void))
{
	int ok = fn() == 0;

	printf("[%s] %s\n", ok ? "PASS" : "FAIL", name);
	if (ok)
		passed++;
	else
		failed++;
}

/* ---- call_soon_threadsafe from plain threads ------------------------ */

#define POSTERS 4
#define POSTS 10000

struct posts {
	rill_loop *loop;
	int count;		/* touched on the loop thread only */
	int last[POSTERS];
	int order_errors;
};

struct post {
	struct posts *p;
	int thread, seq;
};

static void on_post(void *arg)
{
	struct post *po = arg;

	if (po->seq != po->p->last[po->thread] + 1)
		po->p->order_errors++;
	po->p->last[po->thread] = po->seq;
	po->p->count++;
	free(po);
}

struct poster {
	struct posts *p;
	int thread;
};

static void *poster_main(void *arg)
{
	struct poster *ps = arg;

	for (int i = 1; i <= POSTS; i++) {
		struct post *po = malloc(sizeof(*po));

		*po = (struct post){ ps->p, ps->thread, i };
		rill_loop_call_soon_threadsafe(ps->p->loop, on_post, po);
	}
	return NULL;
}

static int wait_posts(void *arg)
{
	struct posts *p = arg;

	while (p->count < POSTERS * POSTS)
		rill_sleep_ms(1);
	return 0;
}

static int case_threadsafe_calls(void)
{
	struct posts p = { 0 };
	struct poster ps[POSTERS];
	pthread_t th[POSTERS];
	rill_task *t;

	CHECK(rill_loop_new(NULL, &p.loop) == 0);
	CHECK(rill_spawn(p.loop, wait_posts, &p, &t) == 0);
	for (int i = 0; i < POSTERS; i++) {
		ps[i] = (struct poster){ &p, i };
		pthread_create(&th[i], NULL, poster_main, &ps[i]);
	}
	CHECK(rill_task_join(t, NULL) == 0);
	for (int i = 0; i < POSTERS; i++)
		pthread_join(th[i], NULL);
	rill_loop_free(p.loop);
	CHECK(p.count == POSTERS * POSTS);
	CHECK(p.order_errors == 0);
	return 0;
}

/* ---- queue between loops -------------------------------------------- */

#define ITEMS 5000

struct qcase {
	rill_queue *q;
	int id;
	long sum;
};

static int q_producer(void *arg)
{
	struct qcase *c = arg;

	for (intptr_t i = 1; i <= ITEMS; i++)
		if (rill_queue_put(c->q, (void *)i) < 0)
			return -1;
	return 0;
}

static int q_consumer(void *arg)
{
	struct qcase *c = arg;
	void *item;

	while (rill_queue_get(c->q, &item) == 0)
		c->sum += (long)(intptr_t)item;
	return 0;
}

static int case_queue(void)
{
	struct qcase prod[3], cons[2] = { 0 };
	rill_thread *pt[3], *ct[2];
	rill_queue *q;
	int result;

	CHECK(rill_queue_new(16, &q) == 0);
	for (int i = 0; i < 2; i++) {
		cons[i].q = q;
		CHECK(rill_thread_start(NULL, -1, q_consumer, &cons[i], &ct[i]) == 0);
	}
	for (int i = 0; i < 3; i++) {
		prod[i] = (struct qcase){ .q = q, .id = i };
		CHECK(rill_thread_start(NULL, -1, q_producer, &prod[i], &pt[i]) == 0);
	}
	for (int i = 0; i < 3; i++) {
		CHECK(rill_thread_join(pt[i], &result) == 0);
		CHECK(result == 0);
	}
	rill_queue_close(q);
	for (int i = 0; i < 2; i++)
		CHECK(rill_thread_join(ct[i], &result) == 0);
	CHECK(cons[0].sum + cons[1].sum == 3L * ITEMS * (ITEMS + 1) / 2);
	rill_queue_free(q);
	return 0;
}

/* ---- events and cancellation racing ---------------------------------- */

static int ev_wait(void *arg)
{
	return rill_event_wait(arg);
}

/* Tasks on one loop wait on an event another thread sets while their own
 * loop cancels half of them: every task ends, with 0 or -ECANCELED. */
static int ev_loop(void *arg)
{
	rill_event *ev = arg;
	rill_task *t[20];
	int result, bad = 0;

	for (int i = 0; i < 20; i++)
		rill_spawn(rill_loop_current(), ev_wait, ev, &t[i]);
	rill_sleep_ms(1);
	for (int i = 0; i < 20; i += 2)
		rill_task_cancel(t[i]);
	for (int i = 0; i < 20; i++) {
		rill_task_join(t[i], &result);
		bad += result != 0 && result != -ECANCELED;
	}
	return bad;
}

static int case_event_cancel_race(void)
{
	for (int round = 0; round < 20; round++) {
		rill_thread *th[2];
		rill_event *ev;
		int result;

		CHECK(rill_event_new(&ev) == 0);
		for (int i = 0; i < 2; i++)
			CHECK(rill_thread_start(NULL, -1, ev_loop, ev, &th[i]) == 0);
		rill_event_set(ev);
		for (int i = 0; i < 2; i++) {
			CHECK(rill_thread_join(th[i], &result) == 0);
			CHECK(result == 0);
		}
		rill_event_free(ev);
	}
	return 0;
}

/* ---- a server on two loops ------------------------------------------- */

static int echo_cb(rill_reader *r, rill_writer *w, void *arg)
{
	char buf[256];
	ssize_t n;

	(void)arg;
	while ((n = rill_reader_read(r, buf, sizeof(buf))) > 0)
		rill_writer_write(w, buf, (size_t)n);
	rill_writer_close(w);
	return 0;
}

static int one_client(void *arg)
{
	int port = (int)(intptr_t)arg;
	rill_reader *r;
	rill_writer *w;
	char in[64];

	if (rill_open_connection("127.0.0.1", port, NULL, &r, &w) < 0)
		return -1;
	rill_writer_write(w, "hello, loops", 12);
	if (rill_reader_readexactly(r, in, 12) != 12 || memcmp(in, "hello, loops", 12))
		return -1;
	writer_done(w);
	return 0;
}

static int group_main(void *arg)
{
	rill_server *s;
	rill_task *t[40];
	int bad = 0, result;

	(void)arg;
	if (rill_start_server(echo_cb, NULL, "127.0.0.1", 0,
			      RILL_SERVER_OPTIONS(.threads = 2), &s) < 0)
		return -1;
	for (int i = 0; i < 40; i++)
		rill_spawn(rill_loop_current(), one_client,
			   (void *)(intptr_t)rill_server_port(s), &t[i]);
	for (int i = 0; i < 40; i++) {
		rill_task_join(t[i], &result);
		bad += result != 0;
	}
	rill_server_close(s);
	if (rill_server_wait_closed(s) < 0)
		bad++;
	rill_server_free(s);
	return bad;
}

static int case_server_threads(void)
{
	int result = -1;

	CHECK(rill_run(group_main, NULL, &result) == 0);
	CHECK(result == 0);
	return 0;
}

int main(void)
{
	run_case("call_soon_threadsafe from 4 threads, per-thread order", case_threadsafe_calls);
	run_case("queue: 3 producer loops, 2 consumer loops", case_queue);
	run_case("event set racing cancellation on 2 loops", case_event_cancel_race);
	run_case("server on 2 loops (threads=2), 40 echo clients", case_server_threads);
	printf("%d passed, %d failed\n", passed, failed);
	return failed != 0;
}
