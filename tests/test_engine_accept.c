/* SPDX-License-Identifier: MIT */
/* The acceptor: every loopback connection accepted once, multishot and single-shot, stop and on_idle, errors. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
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

#define NCLIENTS 100

static int listener(struct sockaddr_in *addr)
{
	socklen_t len = sizeof(*addr);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	*addr = (struct sockaddr_in){ .sin_family = AF_INET,
				      .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	cr_assert_eq(bind(fd, (struct sockaddr *)addr, sizeof(*addr)), 0);
	cr_assert_eq(listen(fd, 256), 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)addr, &len), 0);
	return fd;
}

struct server {
	struct rill__acceptor a;
	int fds[NCLIENTS + 16];
	int naccepted;
	int errors;
	int last_error;
	int idle;
	int stop_at;		/* stop after this many connections */
};

static void on_accept(void *ctx, int fd)
{
	struct server *s = ctx;

	cr_assert_eq(s->idle, 0, "on_accept after on_idle");
	if (fd < 0) {
		s->errors++;
		s->last_error = fd;
		rill__acceptor_stop(&s->a);
		return;
	}
	cr_assert_lt(s->naccepted, NCLIENTS + 16);
	s->fds[s->naccepted++] = fd;
	if (s->naccepted == s->stop_at)
		rill__acceptor_stop(&s->a);
}

static void on_idle(void *ctx)
{
	struct server *s = ctx;

	s->idle++;
}

/* A loop with the options o (NULL: the defaults), and s's acceptor on the
 * listening fd, started on it. The caller frees the loop. */
static rill_loop *serve_on_new_loop(struct server *s, const rill_loop_options *o, int fd)
{
	rill_loop *loop;

	cr_assert_eq(rill_loop_new(o, &loop), 0);
	rill__acceptor_init(&s->a, loop, fd, s);
	s->a.on_accept = on_accept;
	s->a.on_idle = on_idle;
	rill__acceptor_start(&s->a);
	return loop;
}

struct clients {
	struct sockaddr_in addr;
	int fds[NCLIENTS];
};

/* Connects the clients one by one; each sends its index, so the server
 * side can tell which connection each accepted fd is. */
static void *connect_clients(void *arg)
{
	struct clients *c = arg;

	for (int i = 0; i < NCLIENTS; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0 || connect(fd, (struct sockaddr *)&c->addr,
				      sizeof(c->addr)) < 0 ||
		    send(fd, &i, sizeof(i), 0) != sizeof(i))
			return (void *)1;
		c->fds[i] = fd;
	}
	return NULL;
}

static void accept_all(unsigned disable)
{
	rill_loop_options o = { .size = sizeof(rill_loop_options), .disable = disable };
	struct server s = { .stop_at = NCLIENTS };
	struct clients c;
	bool seen[NCLIENTS] = { false };
	pthread_t th;
	void *thret;
	int lfd = listener(&c.addr);
	rill_loop *loop = serve_on_new_loop(&s, &o, lfd);

	cr_assert_eq(pthread_create(&th, NULL, connect_clients, &c), 0);
	cr_assert_eq(rill_loop_run(loop), 0);	/* returns once the acceptor settles */
	pthread_join(th, &thret);
	cr_assert_null(thret, "a client failed to connect");
	cr_assert_eq(s.idle, 1);
	cr_assert_eq(s.errors, 0, "accept error %d", s.last_error);
	cr_assert_eq(s.naccepted, NCLIENTS);
	cr_assert_not(s.a.armed);
	for (int i = 0; i < s.naccepted; i++) {
		int fd = s.fds[i], idx = -1;

		cr_assert_geq(fcntl(fd, F_GETFD), FD_CLOEXEC, "fd %d", fd);
		for (int j = 0; j < i; j++)
			cr_assert_neq(s.fds[j], fd);
		cr_assert_eq(recv(fd, &idx, sizeof(idx), MSG_WAITALL), sizeof(idx));
		cr_assert(idx >= 0 && idx < NCLIENTS && !seen[idx], "index %d", idx);
		seen[idx] = true;
		close(fd);
	}
	for (int i = 0; i < NCLIENTS; i++)
		close(c.fds[i]);
	rill_loop_free(loop);
	close(lfd);
}

Test(engine_accept, hundred_clients)
{
	accept_all(0);
}

Test(engine_accept, hundred_clients_single_shot)
{
	accept_all(RILL_FEAT_MULTISHOT_ACCEPT);
}

Test(engine_accept, multishot_is_used_where_the_kernel_has_it)
{
	rill_loop *loop;
	bool env_off = getenv("RILL_DISABLE") != NULL;

	cr_assert_eq(rill_loop_new(NULL, &loop), 0);
	if (!env_off && rill_loop_backend(loop) == RILL_BACKEND_IO_URING &&
	    (rill_features_probe() & RILL_FEAT_MULTISHOT_ACCEPT))
		cr_assert(rill_loop_features(loop) & RILL_FEAT_MULTISHOT_ACCEPT);
	rill_loop_free(loop);
}

/* Connections queued before the acceptor starts are all taken. */
Test(engine_accept, backlog_before_start)
{
	struct sockaddr_in addr;
	struct server s = { .stop_at = 20 };
	int lfd = listener(&addr), cfd[20];
	rill_loop *loop;

	for (int i = 0; i < 20; i++) {
		cfd[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		cr_assert_eq(connect(cfd[i], (struct sockaddr *)&addr, sizeof(addr)), 0);
	}
	loop = serve_on_new_loop(&s, NULL, lfd);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(s.naccepted, 20);
	cr_assert_eq(s.idle, 1);
	for (int i = 0; i < 20; i++) {
		close(s.fds[i]);
		close(cfd[i]);
	}
	rill_loop_free(loop);
	close(lfd);
}

static int stop_later(void *arg)
{
	struct server *s = arg;

	cr_assert_eq(rill_sleep_ms(5), 0);
	cr_assert_eq(s->idle, 0);
	rill__acceptor_stop(&s->a);
	return 0;
}

Test(engine_accept, stop_without_connections_settles)
{
	struct sockaddr_in addr;
	struct server s = { .stop_at = -1 };
	int lfd = listener(&addr);
	rill_loop *loop = serve_on_new_loop(&s, NULL, lfd);

	cr_assert(s.a.armed);
	cr_assert_eq(rill_spawn(loop, stop_later, &s, NULL), 0);
	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(s.idle, 1);
	cr_assert_eq(s.naccepted, 0);
	cr_assert_eq(s.errors, 0, "the cancellation reached on_accept");
	cr_assert_not(s.a.armed);
	cr_assert_eq(loop->ops_in_flight, 0);

	/* And it starts again. */
	{
		int cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		s.stop_at = 1;
		s.idle = 0;
		rill__acceptor_start(&s.a);
		cr_assert_eq(connect(cfd, (struct sockaddr *)&addr, sizeof(addr)), 0);
		cr_assert_eq(rill_loop_run(loop), 0);
		cr_assert_eq(s.naccepted, 1);
		cr_assert_eq(s.idle, 1);
		close(s.fds[0]);
		close(cfd);
	}
	rill_loop_free(loop);
	close(lfd);
}

Test(engine_accept, error_reaches_on_accept)
{
	struct server s = { .stop_at = -1 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);	/* not listening */
	rill_loop *loop = serve_on_new_loop(&s, NULL, fd);

	cr_assert_eq(rill_loop_run(loop), 0);
	cr_assert_eq(s.errors, 1);
	cr_assert_eq(s.last_error, -EINVAL, "got %s", rill_err_name(s.last_error));
	cr_assert_eq(s.idle, 1);
	rill_loop_free(loop);
	close(fd);
}
