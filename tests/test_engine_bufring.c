/* SPDX-License-Identifier: MIT */
/* Receiving through the buffer ring: bytes intact and in order, buffer recycling, ENOBUFS recovery, stop/start, EOF and reset. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "engine/loop.h"
#include "engine/io.h"
#include "rill/loop.h"
#include "rill/task.h"

#define KiB 1024u
#define MiB (1024u * 1024u)

/* ---- a reproducible byte stream per connection ----------------------- */

struct prng {
	uint64_t s;
	uint64_t word;
	unsigned left;		/* bytes of word not used yet */
};

static void prng_init(struct prng *g, unsigned seed)
{
	*g = (struct prng){ .s = 0x9e3779b97f4a7c15ull * (seed + 1) };
}

static void prng_fill(struct prng *g, char *p, size_t n)
{
	while (n--) {
		if (!g->left) {
			g->s ^= g->s << 13;
			g->s ^= g->s >> 7;
			g->s ^= g->s << 17;
			g->word = g->s;
			g->left = 8;
		}
		*p++ = (char)(g->word & 0xff);
		g->word >>= 8;
		g->left--;
	}
}

/* ---- the receiving side ---------------------------------------------- */

enum flow { RUNNING, STOPPING, IDLE };

struct conn {
	struct rill__recv r;
	rill_loop *loop;
	struct prng check;
	size_t got, expect;
	int ended, end_err, idle;
	/* flow control test */
	bool flow;
	enum flow state;
	size_t next_stop;
	size_t stopped_at;	/* got when stop was asked */
	size_t overrun;		/* most bytes received after a stop */
	int cycles;
};

static void on_data(void *ctx, const char *p, size_t n)
{
	struct conn *c = ctx;
	char want[4096];

	cr_assert_not(c->ended, "on_data after on_end");
	cr_assert_gt(n, 0);
	cr_assert_neq(c->state, IDLE, "on_data after on_idle, before a restart");
	cr_assert_leq(c->got + n, c->expect, "more bytes than were sent");
	for (size_t off = 0; off < n; off += sizeof(want)) {
		size_t k = n - off < sizeof(want) ? n - off : sizeof(want);

		prng_fill(&c->check, want, k);
		cr_assert(!memcmp(p + off, want, k),
			  "wrong bytes at stream offset %zu", c->got + off);
	}
	c->got += n;
	if (c->state == STOPPING && c->got - c->stopped_at > c->overrun)
		c->overrun = c->got - c->stopped_at;
	if (c->flow && c->state == RUNNING && c->got >= c->next_stop) {
		c->state = STOPPING;
		c->stopped_at = c->got;
		rill__recv_stop(&c->r);
	}
}

static void on_end(void *ctx, int err)
{
	struct conn *c = ctx;

	cr_assert_not(c->ended, "on_end twice");
	c->ended = 1;
	c->end_err = err;
	if (err == 0)
		cr_assert_eq(c->got, c->expect, "EOF after %zu of %zu bytes",
			     c->got, c->expect);
}

static int restart_later(void *arg)
{
	struct conn *c = arg;

	cr_assert_eq(rill_sleep_ms(1), 0);	/* the sender fills the socket */
	if (c->ended)
		return 0;
	cr_assert_eq(c->state, IDLE);
	c->state = RUNNING;
	c->next_stop = c->got + 32 * KiB;
	rill__recv_start(&c->r);
	return 0;
}

static void on_idle(void *ctx)
{
	struct conn *c = ctx;

	c->idle++;
	if (c->flow && c->state == STOPPING && !c->ended) {
		c->state = IDLE;
		c->cycles++;
		cr_assert_eq(rill_spawn(c->loop, restart_later, c, NULL), 0);
	}
}

static void conn_start(struct conn *c, rill_loop *loop, int fd, unsigned seed,
		       size_t expect)
{
	memset(c, 0, sizeof(*c));
	c->loop = loop;
	c->expect = expect;
	prng_init(&c->check, seed);
	cr_assert_eq(rill__recv_init(&c->r, loop, fd, c), 0);
	c->r.on_data = on_data;
	c->r.on_end = on_end;
	c->r.on_idle = on_idle;
	rill__recv_start(&c->r);
}

static void conn_finish(struct conn *c, int err)
{
	cr_assert(c->ended, "no on_end (%zu of %zu bytes)", c->got, c->expect);
	cr_assert_eq(c->end_err, err, "on_end(%s)", rill_err_name(c->end_err));
	cr_assert_eq(c->got, c->expect);
	cr_assert_eq(c->idle, 1 + c->cycles, "on_idle %d times", c->idle);
	cr_assert_not(rill__recv_busy(&c->r));
	rill__recv_free(&c->r);
}

/* ---- the sending side: one thread, plain blocking writes ------------- */

struct sender {
	int fds[16];
	unsigned seeds[16];
	int n;
	size_t total;		/* per connection */
	pthread_t th;
};

static void *send_all(void *arg)
{
	struct sender *s = arg;
	struct prng g[16];
	size_t sent[16] = { 0 };
	char buf[48 * KiB];
	size_t chunk = 1;
	bool more = true;

	for (int i = 0; i < s->n; i++)
		prng_init(&g[i], s->seeds[i]);
	/* Round robin, chunk sizes varying from 1 byte to 48 KiB. */
	while (more) {
		more = false;
		for (int i = 0; i < s->n; i++) {
			size_t k = s->total - sent[i];

			if (!k)
				continue;
			chunk = (chunk * 7 + 13) % sizeof(buf) + 1;
			k = k < chunk ? k : chunk;
			prng_fill(&g[i], buf, k);
			for (size_t off = 0; off < k;) {
				ssize_t w = send(s->fds[i], buf + off, k - off, MSG_NOSIGNAL);

				if (w <= 0)
					return (void *)1;
				off += (size_t)w;
			}
			sent[i] += k;
			more |= sent[i] < s->total;
		}
	}
	for (int i = 0; i < s->n; i++)
		shutdown(s->fds[i], SHUT_WR);
	return NULL;
}

static void sender_start(struct sender *s)
{
	cr_assert_eq(pthread_create(&s->th, NULL, send_all, s), 0);
}

static void sender_join(struct sender *s)
{
	void *ret;

	pthread_join(s->th, &ret);
	cr_assert_null(ret, "send failed");
	for (int i = 0; i < s->n; i++)
		close(s->fds[i]);
}

static void tcp_pair(int sv[2])
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	int l = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(l, 0);
	cr_assert_eq(bind(l, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(listen(l, 1), 0);
	cr_assert_eq(getsockname(l, (struct sockaddr *)&a, &len), 0);
	sv[1] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(connect(sv[1], (struct sockaddr *)&a, sizeof(a)), 0);
	sv[0] = accept4(l, NULL, NULL, SOCK_CLOEXEC);
	cr_assert_geq(sv[0], 0);
	close(l);
}

static void unix_pair(int sv[2])
{
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
}

static rill_loop *new_loop_disable(unsigned count, unsigned size,
				   unsigned disable)
{
	rill_loop_options o = { .size = sizeof(rill_loop_options), .buf_count = count,
		.buf_size = size,
				.disable = disable };
	rill_loop *loop;
	int ret = rill_loop_new(&o, &loop);

	cr_assert_eq(ret, 0, "rill_loop_new: %s", rill_err_name(ret));
	return loop;
}

static rill_loop *new_loop(unsigned count, unsigned size)
{
	return new_loop_disable(count, size, 0);
}

/* n connections, each receiving total bytes through one loop. */
static void stream(rill_loop *loop, int n, bool tcp, size_t total, bool flow)
{
	struct conn *c = calloc((size_t)n, sizeof(*c));
	struct sender s = { .n = n, .total = total };

	cr_assert_not_null(c);
	for (int i = 0; i < n; i++) {
		int sv[2];

		if (tcp)
			tcp_pair(sv);
		else
			unix_pair(sv);
		s.fds[i] = sv[1];
		s.seeds[i] = (unsigned)i * 31u + 7u;
		conn_start(&c[i], loop, sv[0], s.seeds[i], total);
		c[i].flow = flow;
		c[i].next_stop = 32 * KiB;
	}
	sender_start(&s);
	cr_assert_eq(rill_loop_run(loop), 0);
	sender_join(&s);
	for (int i = 0; i < n; i++) {
		conn_finish(&c[i], 0);
		close(c[i].r.fd);
	}
	if (flow)
		/* A multishot recv may drain the socket before its cancel
		 * lands, so the count varies; a few cycles must happen. */
		cr_assert_geq(c[0].cycles, 3, "only %d stop/start cycles", c[0].cycles);
	/* A stopped recv still delivers what the kernel took before the
	 * cancel landed; without DEFER_TASKRUN a busy multishot recv can
	 * dodge a few cancels (up to ~1 MiB seen), but never the stream. */
	for (int i = 0; flow && i < n; i++)
		cr_assert_lt(c[i].overrun, total / 2, "%zu bytes after a stop",
			     c[i].overrun);
	cr_log_info("overrun %zu", c[0].overrun);
	cr_assert_eq(loop->ops_in_flight, 0);
	free(c);
}

/* stream() on a loop of its own with a ring of count buffers of size
 * bytes (0, 0: the defaults). */
static void stream_on_new_loop(unsigned count, unsigned size, int n, bool tcp,
			       size_t total, bool flow)
{
	rill_loop *loop = new_loop(count, size);

	stream(loop, n, tcp, total, flow);
	rill_loop_free(loop);
}

Test(engine_bufring, eight_mib_socketpair)
{
	stream_on_new_loop(0, 0, 1, false, 8 * MiB, false);
}

Test(engine_bufring, eight_mib_tcp)
{
	stream_on_new_loop(0, 0, 1, true, 8 * MiB, false);
}

Test(engine_bufring, four_buffers_are_recycled)
{
	rill_loop *loop = new_loop(4, 4096);

	if (loop->has_bufs)
		cr_assert_eq(loop->bufs.count, 4);
	/* 2 MiB through 16 KiB of buffers: each is reused 128 times over. */
	stream(loop, 1, true, 2 * MiB, false);
	stream(loop, 2, false, 1 * MiB, false);
	rill_loop_free(loop);
}

Test(engine_bufring, tiny_ring_recovers_from_enobufs)
{
	rill_loop *loop = new_loop(2, 256);
	rill_loop_stats st = RILL_LOOP_STATS_INIT;

	stream(loop, 8, false, 256 * KiB, false);
	rill_loop_get_stats(loop, &st);
	if (rill_loop_features(loop) & RILL_FEAT_BUF_RING)
		cr_assert_gt(st.enobufs, 0, "the 2-buffer ring never ran dry");
	else
		cr_assert_eq(st.enobufs, 0);
	cr_log_info("enobufs %llu, rearms %llu", (unsigned long long)st.enobufs,
		    (unsigned long long)st.rearms);
	rill_loop_free(loop);
}

Test(engine_bufring, tiny_ring_tcp)
{
	stream_on_new_loop(1, 64, 4, true, 128 * KiB, false);
}

/* Incremental buffers rule out bundles: without them, bundles (where the
 * kernel has them) hand several buffers to one completion. */
Test(engine_bufring, bundles_without_incremental_buffers)
{
	rill_loop *loop = new_loop_disable(8, 1024, RILL_FEAT_BUF_INC);

	cr_assert_eq(rill_loop_features(loop) & RILL_FEAT_BUF_INC, 0);
	stream(loop, 3, true, 1 * MiB, false);
	stream(loop, 1, false, 4 * MiB, false);
	rill_loop_free(loop);
}

Test(engine_bufring, single_shot_recv_into_the_ring)
{
	rill_loop *loop = new_loop_disable(4, 1024, RILL_FEAT_MULTISHOT_RECV);

	cr_assert_eq(rill_loop_features(loop) & RILL_FEAT_MULTISHOT_RECV, 0);
	stream(loop, 4, false, 512 * KiB, false);
	rill_loop_free(loop);
}

Test(engine_bufring, stop_and_start_lose_nothing)
{
	stream_on_new_loop(0, 0, 1, false, 8 * MiB, true);
}

Test(engine_bufring, stop_and_start_tiny_ring)
{
	stream_on_new_loop(2, 1024, 2, true, 1 * MiB, true);
}

Test(engine_bufring, eof_after_data)
{
	rill_loop *loop = new_loop(0, 0);
	struct conn c;
	char msg[100];
	struct prng g;
	int sv[2];

	unix_pair(sv);
	prng_init(&g, 5);
	prng_fill(&g, msg, sizeof(msg));
	cr_assert_eq(write(sv[1], msg, sizeof(msg)), (ssize_t)sizeof(msg));
	close(sv[1]);
	conn_start(&c, loop, sv[0], 5, sizeof(msg));
	cr_assert_eq(rill_loop_run(loop), 0);
	conn_finish(&c, 0);
	close(sv[0]);
	rill_loop_free(loop);
}

Test(engine_bufring, eof_without_data)
{
	rill_loop *loop = new_loop(0, 0);
	struct conn c;
	int sv[2];

	tcp_pair(sv);
	conn_start(&c, loop, sv[0], 0, 0);
	shutdown(sv[1], SHUT_WR);
	cr_assert_eq(rill_loop_run(loop), 0);
	conn_finish(&c, 0);
	close(sv[0]);
	close(sv[1]);
	rill_loop_free(loop);
}

struct resetter {
	struct conn *c;
	int fd;
};

static int reset_peer(void *arg)
{
	struct resetter *x = arg;
	struct linger lg = { .l_onoff = 1, .l_linger = 0 };
	char msg[100];
	struct prng g;

	prng_init(&g, 9);
	prng_fill(&g, msg, sizeof(msg));
	cr_assert_eq(write(x->fd, msg, sizeof(msg)), (ssize_t)sizeof(msg));
	for (int i = 0; i < 1000 && x->c->got < sizeof(msg); i++)
		cr_assert_eq(rill_sleep_ms(1), 0);
	cr_assert_eq(x->c->got, sizeof(msg));
	cr_assert_eq(setsockopt(x->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)), 0);
	close(x->fd);	/* sends RST */
	return 0;
}

Test(engine_bufring, peer_reset)
{
	rill_loop *loop = new_loop(0, 0);
	struct conn c;
	struct resetter x = { .c = &c };
	int sv[2];

	tcp_pair(sv);
	x.fd = sv[1];
	conn_start(&c, loop, sv[0], 9, 100);
	cr_assert_eq(rill_spawn(loop, reset_peer, &x, NULL), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	conn_finish(&c, -ECONNRESET);
	close(sv[0]);
	rill_loop_free(loop);
}

Test(engine_bufring, stop_before_any_data)
{
	rill_loop *loop = new_loop(0, 0);
	struct conn c;
	int sv[2];

	unix_pair(sv);
	conn_start(&c, loop, sv[0], 0, 0);
	rill__recv_stop(&c.r);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(c.idle, 1);
	cr_assert_not(c.ended);
	cr_assert_eq(c.got, 0);
	cr_assert_not(rill__recv_busy(&c.r));
	/* The data written now stays in the socket. */
	cr_assert_eq(write(sv[1], "x", 1), 1);
	{
		char ch;

		cr_assert_eq(recv(sv[0], &ch, 1, MSG_DONTWAIT), 1);
		cr_assert_eq(ch, 'x');
	}
	rill__recv_free(&c.r);
	close(sv[0]);
	close(sv[1]);
	rill_loop_free(loop);
}
