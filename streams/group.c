/* SPDX-License-Identifier: MIT */
/* streams/group.c: a server on N loops, one per thread (thread per core).
 *
 * Each worker thread runs its own loop with its own listening socket on
 * the same port (SO_REUSEPORT): the kernel spreads new connections over
 * the sockets, and a connection lives its whole life on the loop that
 * accepted it, with its ring, buffers and tasks, sharing nothing with the
 * other loops on the hot path. The other design, one acceptor handing
 * connections to loops with IORING_OP_MSG_RING, costs a cross-ring message
 * per connection and makes the acceptor a bottleneck; SO_REUSEPORT costs
 * nothing per connection (README: multi-core).
 *
 * The server object the caller holds is a front for the workers: its calls
 * are carried to each worker's loop with rill_loop_call_soon_threadsafe().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "streams/group.h"
#include "rill/sync.h"

struct worker {
	struct rill__group *g;
	size_t index;
	rill_thread *thread;
	rill_server *server;	/* owned by the worker's task */
	bool alive;		/* its loop may still be posted to */
};

struct rill__group {
	rill_client_connected_fn cb;
	void *arg;
	char *host;
	int port;
	rill_server_options opts;
	size_t n;
	struct worker *w;
	pthread_mutex_t lock;	/* alive flags, start bookkeeping */
	rill_event *started;	/* worker 0 bound: the port is known */
	rill_event *stop;	/* close(): every worker closes its server */
	rill_event *all_closed;
	size_t running;
	int start_err;
	/* The first failing worker's rill_error_detail(): the detail is per
	 * thread, and the calls that clean up after a failed start clear the
	 * caller's, so it is carried here and set again at the end. */
	char start_detail[256];
};

/* Records err, the first start failure, with this thread's detail;
 * called with g->lock held. */
static void start_failed(struct rill__group *g, size_t i, int err)
{
	if (g->start_err)
		return;
	g->start_err = err;
	snprintf(g->start_detail, sizeof(g->start_detail), "thread %zu: %s", i,
		 rill_error_detail()[0] ? rill_error_detail() : rill_strerror(err));
}

/* One worker: start the server on this loop, serve until told to stop,
 * then close and wait for its connections. */
static int worker_main(void *arg)
{
	struct worker *w = arg;
	struct rill__group *g = w->g;
	int err;

	err = rill_start_server(g->cb, g->arg, g->host, g->port, &g->opts, &w->server);
	pthread_mutex_lock(&g->lock);
	if (err < 0)
		start_failed(g, w->index, err);
	if (err == 0 && g->port == 0)
		g->port = rill_server_port(w->server);
	pthread_mutex_unlock(&g->lock);
	if (w->index == 0)
		rill_event_set(g->started);
	if (err == 0) {
		while (rill_event_wait(g->stop) < 0)
			;	/* only the group stops a worker */
		rill_server_close(w->server);
		while (rill_server_wait_closed(w->server) < 0)
			;
		rill_server_free(w->server);
	}
	pthread_mutex_lock(&g->lock);
	w->server = NULL;
	w->alive = false;
	if (--g->running == 0)
		rill_event_set(g->all_closed);
	pthread_mutex_unlock(&g->lock);
	return err;
}

static void group_free(struct rill__group *g)
{
	rill_event_free(g->started);
	rill_event_free(g->stop);
	rill_event_free(g->all_closed);
	pthread_mutex_destroy(&g->lock);
	free(g->host);
	free(g->w);
	free(g);
}

static int group_alloc(struct rill__group **gp, size_t n)
{
	struct rill__group *g = calloc(1, sizeof(*g));

	if (!g)
		return -ENOMEM;
	pthread_mutex_init(&g->lock, NULL);
	g->n = n;
	g->w = calloc(n, sizeof(*g->w));
	if (!g->w || rill_event_new(&g->started) < 0 || rill_event_new(&g->stop) < 0 ||
	    rill_event_new(&g->all_closed) < 0) {
		group_free(g);
		return -ENOMEM;
	}
	*gp = g;
	return 0;
}

static int worker_start(struct rill__group *g, size_t i)
{
	struct worker *w = &g->w[i];
	int err;

	w->g = g;
	w->index = i;
	w->alive = true;
	pthread_mutex_lock(&g->lock);
	g->running++;
	pthread_mutex_unlock(&g->lock);
	err = rill_thread_start(NULL, (int)(i % (size_t)rill_cpu_count()), worker_main,
				w, &w->thread);
	if (err < 0) {
		w->alive = false;
		pthread_mutex_lock(&g->lock);
		g->running--;
		start_failed(g, i, err);
		pthread_mutex_unlock(&g->lock);
	}
	return err;
}

static void group_join(struct rill__group *g)
{
	for (size_t i = 0; i < g->n; i++)
		if (g->w[i].thread)
			while (rill_thread_join(g->w[i].thread, NULL) < 0)
				;
}

/* Worker 0 starts alone and picks the port (port 0); the others bind the
 * same one. */
static int group_start(struct rill__group *g)
{
	int err = worker_start(g, 0);

	if (err < 0)
		return err;
	while (rill_event_wait(g->started) < 0)
		;
	for (size_t i = 1; i < g->n && err == 0 && !g->start_err; i++)
		err = worker_start(g, i);
	if (err == 0)
		err = g->start_err;
	return err;
}

int rill__group_start(rill_client_connected_fn cb, void *arg, const char *host,
		      int port, const rill_server_options *o, struct rill__group **gp)
{
	struct rill__group *g;
	size_t n = o->threads == RILL_THREADS_PER_CPU ? (size_t)rill_cpu_count()
						      : (size_t)o->threads;
	int err;

	if (o->sock >= 0 || o->threads < RILL_THREADS_PER_CPU || o->threads == 0)
		return -EINVAL;
	if ((err = group_alloc(&g, n)) < 0)
		return err;
	g->cb = cb;
	g->arg = arg;
	g->port = port;
	g->opts = *o;
	g->opts.threads = 0;
	g->opts.reuse_port = RILL_ON;
	if (host && !(g->host = strdup(host))) {
		group_free(g);
		return -ENOMEM;
	}
	err = group_start(g);
	if (err < 0) {
		char detail[sizeof(g->start_detail)];

		memcpy(detail, g->start_detail, sizeof(detail));
		rill_event_set(g->stop);
		group_join(g);
		group_free(g);
		return rill__set_detail(err, "%s", detail);
	}
	*gp = g;
	return 0;
}

int rill__group_port(const struct rill__group *g)
{
	return g->port;
}

/* Runs fn(server) on every worker's loop. */
static void group_post(struct rill__group *g, rill_callback fn)
{
	pthread_mutex_lock(&g->lock);
	for (size_t i = 0; i < g->n; i++)
		if (g->w[i].alive)
			rill_loop_call_soon_threadsafe(rill_thread_loop(g->w[i].thread),
						       fn, &g->w[i]);
	pthread_mutex_unlock(&g->lock);
}

static void on_worker_close_clients(void *arg)
{
	struct worker *w = arg;

	if (w->server)
		rill_server_close_clients(w->server);
}

static void on_worker_abort_clients(void *arg)
{
	struct worker *w = arg;

	if (w->server)
		rill_server_abort_clients(w->server);
}

void rill__group_close(struct rill__group *g)
{
	rill_event_set(g->stop);
}

void rill__group_close_clients(struct rill__group *g)
{
	group_post(g, on_worker_close_clients);
}

void rill__group_abort_clients(struct rill__group *g)
{
	group_post(g, on_worker_abort_clients);
}

int rill__group_wait_closed(struct rill__group *g)
{
	if (!rill_task_current())
		return -EPERM;
	return rill_event_wait(g->all_closed);
}

void rill__group_free(struct rill__group *g)
{
	rill__group_close(g);
	rill__group_abort_clients(g);
	group_join(g);
	group_free(g);
}
