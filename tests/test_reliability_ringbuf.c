/* SPDX-License-Identifier: MIT */
/* A provided-buffer ring of 2 to 4 tiny buffers under many full-duplex connections: ENOBUFS recovered, no connection ended early, no byte lost or reordered. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "tests/helpers.h"

#define CONNS 48
#define BYTES_PER_CONN (128 * 1024)
#define MAX_CHUNK 8192

struct ring_run {
	int port;
	unsigned done_ok;		/* clients that got every byte back */
	unsigned server_eofs;		/* server sides that ended with EOF */
	uint64_t bytes;
	int first_err;
	char first[160];
};

static void ring_fail(struct ring_run *run, int err, const char *what, unsigned id)
{
	if (run->first_err)
		return;
	run->first_err = err ? err : -EBADMSG;
	snprintf(run->first, sizeof(run->first), "connection %u: %s: %s", id, what,
		 rill_err_name(run->first_err));
}

static unsigned char conn_pat(unsigned id, uint64_t i)
{
	uint64_t x = (i + 1) * 0x9e3779b97f4a7c15ull ^ id;

	return (unsigned char)(x >> 29);
}

/* ---- the echo server ----------------------------------------------- */

static int echo(rill_reader *r, rill_writer *w, void *arg)
{
	struct ring_run *run = arg;
	char buf[4096];
	ssize_t n;

	while ((n = rill_reader_read(r, buf, sizeof(buf))) > 0) {
		rill_writer_write(w, buf, (size_t)n);
		if ((n = rill_writer_drain(w)) < 0)
			break;
	}
	if (n == 0)
		run->server_eofs++;
	else
		ring_fail(run, (int)n, "server read", 0);
	rill_writer_close(w);
	return 0;
}

/* ---- a client: one task writes, one reads, at once ------------------ */

struct client {
	struct ring_run *run;
	unsigned id;
	rill_reader *r;
	rill_writer *w;
};

static int client_writer(void *arg)
{
	struct client *c = arg;
	unsigned char chunk[MAX_CHUNK];
	uint32_t seed = c->id * 2654435761u + 1;
	uint64_t off = 0;
	int err;

	while (off < BYTES_PER_CONN) {
		size_t n = 1 + xorshift32(&seed) % MAX_CHUNK;

		if (n > BYTES_PER_CONN - off)
			n = BYTES_PER_CONN - off;
		for (size_t i = 0; i < n; i++)
			chunk[i] = conn_pat(c->id, off + i);
		if ((err = rill_writer_write(c->w, chunk, n)) < 0 ||
		    (err = rill_writer_drain(c->w)) < 0) {
			ring_fail(c->run, err, "write", c->id);
			return 0;
		}
		off += n;
		if (xorshift32(&seed) % 16 == 0)
			rill_yield();
	}
	return rill_writer_write_eof(c->w);
}

/* Reads until EOF; every byte must be the next of the pattern. */
static void client_read(struct client *c)
{
	unsigned char buf[MAX_CHUNK];
	uint32_t seed = c->id + 7;
	uint64_t got = 0;
	ssize_t n;

	while ((n = rill_reader_read(c->r, buf, 1 + xorshift32(&seed) % sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			if (buf[i] != conn_pat(c->id, got + (uint64_t)i))
				return ring_fail(c->run, 0, "wrong byte", c->id);
		got += (uint64_t)n;
	}
	if (n < 0)
		return ring_fail(c->run, (int)n, "read", c->id);
	if (got != BYTES_PER_CONN)
		return ring_fail(c->run, RILL_EINCOMPLETE, "early EOF", c->id);
	c->run->bytes += got;
	c->run->done_ok++;
}

static int client(void *arg)
{
	struct client *c = arg;
	rill_task *wt;
	int err, res = 0;

	err = rill_open_connection("127.0.0.1", c->run->port, NULL, &c->r, &c->w);
	if (err < 0) {
		ring_fail(c->run, err, "connect", c->id);
		return 0;
	}
	if ((err = rill_spawn(rill_loop_current(), client_writer, c, &wt)) == 0) {
		client_read(c);
		rill_task_join(wt, &res);
	}
	if (err < 0 || res < 0)
		ring_fail(c->run, err < 0 ? err : res, "writer task", c->id);
	writer_done(c->w);
	return 0;
}

static int main_task(void *arg)
{
	struct ring_run *run = arg;
	static struct client c[CONNS];
	rill_task *t[CONNS];
	rill_server *s;
	int err;

	if ((err = rill_start_server(echo, run, "127.0.0.1", 0, NULL, &s)) < 0)
		return err;
	run->port = rill_server_port(s);
	for (unsigned i = 0; i < CONNS; i++) {
		c[i] = (struct client){ .run = run, .id = i };
		if ((err = rill_spawn(rill_loop_current(), client, &c[i], &t[i])) < 0)
			return err;
	}
	for (unsigned i = 0; i < CONNS; i++)
		rill_task_join(t[i], NULL);
	rill_server_close(s);
	err = rill_server_wait_closed(s);
	rill_server_free(s);
	return err;
}

/* ---- the cases ------------------------------------------------------ */

static void ring_case(unsigned count, unsigned size, unsigned disable, const char *name)
{
	rill_loop_options o = { .size = sizeof(rill_loop_options), .buf_count = count,
		.buf_size = size, .disable = disable };
	struct ring_run run = { 0 };
	rill_loop_stats st = RILL_LOOP_STATS_INIT;
	rill_loop *loop;
	rill_task *t;
	rill_time t0 = rill_now();
	unsigned features;
	int result = -1;

	cr_assert_eq(rill_loop_new(&o, &loop), 0, "%s", rill_error_detail());
	features = rill_loop_features(loop);
	cr_assert_eq(rill_spawn(loop, main_task, &run, &t), 0);
	cr_assert_eq(rill_task_join(t, &result), 0);
	rill_loop_get_stats(loop, &st);
	rill_loop_free(loop);
	printf("ring %s (%u x %u bytes%s): %u connections, %.1f MiB echoed intact, "
	       "%" PRIu64 " ENOBUFS recovered, %" PRIu64 " recvs re-armed, %.2f s\n", name,
	       count, size, features & RILL_FEAT_BUF_RING ? "" : ", no buffer ring here",
	       run.done_ok, (double)run.bytes / (1 << 20), st.enobufs, st.rearms,
	       (double)(rill_now() - t0) / 1e9);
	fflush(stdout);
	cr_assert_eq(result, 0, "main task: %s", rill_strerror(result));
	cr_assert_eq(run.first_err, 0, "%s", run.first);
	cr_assert_eq(run.done_ok, CONNS);
	cr_assert_eq(run.server_eofs, CONNS, "a server side ended other than by EOF");
	if (features & RILL_FEAT_BUF_RING)
		cr_assert_gt(st.enobufs, 0, "the ring never ran dry: the test tests nothing");
}

Test(reliability_ringbuf, two_buffers_of_256_bytes, .timeout = 60)
{
	ring_case(2, 256, 0, "default");
}

Test(reliability_ringbuf, four_buffers_of_64_bytes, .timeout = 60)
{
	ring_case(4, 64, 0, "smallest");
}

Test(reliability_ringbuf, without_bundles_or_incremental_buffers, .timeout = 60)
{
	ring_case(4, 256, RILL_FEAT_BUNDLE | RILL_FEAT_BUF_INC, "no-bundle");
}

Test(reliability_ringbuf, single_shot_recv, .timeout = 60)
{
	ring_case(2, 256, RILL_FEAT_MULTISHOT_RECV, "single-shot");
}
