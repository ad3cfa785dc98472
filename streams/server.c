/* SPDX-License-Identifier: MIT */
/* streams/server.c: start_server, start_unix_server and the server object.
 *
 * Each listening socket has a multishot accept (engine/accept.c). Every
 * accepted connection runs the user's callback in a task of its own; when
 * the callback returns the connection is released (and closed, with a
 * warning, if the callback left it open).
 *
 * Accept failing for lack of resources (EMFILE, ENFILE, ENOBUFS, ENOMEM)
 * is reported, accepting pauses for a second and then resumes: the
 * connections already open keep being served meanwhile.
 */
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "streams/internal.h"
#include "streams/net.h"
#include "streams/group.h"

/* How long accepting pauses after running out of fds or memory: long
 * enough for connections to end and free some, short enough that a
 * transient spike costs little (asyncio uses the same second). */
#define RILL_ACCEPT_RETRY_NS (1000 * RILL_NSEC_PER_MSEC)

struct listener {
	int fd;
	struct rill__acceptor acc;
	struct sockaddr_storage addr;
	socklen_t addrlen;
	rill_server *server;
};

struct rill_server {
	rill_loop *loop;
	rill_client_connected_fn cb;
	void *arg;
	struct listener *ls;
	size_t nls;
	size_t limit;
	bool keep_alive, is_tcp;
	bool serving, closed, freed, forever;
	unsigned waiting;	/* tasks in serve_forever() or wait_closed() */
	char *unix_path;
	dev_t unix_dev;
	ino_t unix_ino;
	struct rill__list conns;
	size_t nconns;
	size_t armed;		/* acceptors not yet settled after stop */
	struct rill__waitq waiters;	/* wait_closed, serve_forever */
	rill_task *retry;	/* the pause after EMFILE */
	bool exhausted;		/* said so once; quiet until an accept works */
	struct rill__group *group;	/* threads: the loops doing the work */
	rill_tls_ctx *tls;		/* a reference, for ssl= */
	rill_time tls_handshake, tls_shutdown;
};

static void server_maybe_free(rill_server *s);

/* ---- waking wait_closed -------------------------------------------- */

static bool server_done(const rill_server *s)
{
	return s->closed && s->nconns == 0 && s->armed == 0;
}

static void server_progress(rill_server *s)
{
	if (server_done(s)) {
		rill__waitq_wake_all(&s->waiters);
		server_maybe_free(s);
	}
}

/* ---- connections --------------------------------------------------- */

static int client_task(void *arg)
{
	struct rill__conn *c = arg;
	rill_server *s = c->server;
	int err;

	/* TLS: the handshake runs in the connection's own task, so a slow
	 * or hostile client holds up nobody else; a failure ends only it. */
	if (s->tls && (err = rill__tls->server(c, s->tls, s->tls_handshake,
					      s->tls_shutdown)) < 0) {
		rill__log(RILL_LOG_INFO, "TLS handshake failed: %s",
			  rill_strerror(err));
		rill_writer_abort(&c->writer);
		rill__conn_release(c, false);
		return 0;
	}
	c->borrowed = true;
	c->handler = rill_task_current();
	err = s->cb(&c->reader, &c->writer, s->arg);
	c->handler = NULL;
	c->borrowed = false;
	if (err < 0 && err != -ECANCELED) {
		/* asyncio: the callback's task raised; it says so and closes
		 * the transport (a cancelled one is closed quietly). */
		rill__log(RILL_LOG_ERROR, "Unhandled exception in client_connected_cb: %s (%s)",
			  rill_strerror(err), rill_err_name(err));
	}
	if (err < 0)
		rill_writer_close(&c->writer);
	rill__conn_release(c, true);
	return 0;
}

void rill__server_conn_gone(rill_server *s, struct rill__conn *c)
{
	rill__list_del(&c->server_link);
	s->nconns--;
	server_progress(s);
}

static void server_new_conn(rill_server *s, int fd)
{
	struct rill__conn *c;

	if (s->is_tcp)
		rill__sock_nodelay(fd);
	if (s->keep_alive) {
		int one = 1;
		setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	}
	/* Created outside any task: it belongs to the callback's task, which
	 * releases it explicitly. */
	c = rill__conn_new(s->loop, fd, s->limit);
	if (!c) {
		close(fd);
		rill__log(RILL_LOG_ERROR, "out of memory for a new connection");
		return;
	}
	c->server = s;
	rill__list_add_tail(&s->conns, &c->server_link);
	s->nconns++;
	if (rill_spawn(s->loop, client_task, c, NULL) < 0) {
		rill__log(RILL_LOG_ERROR, "cannot start a task for a new connection");
		rill_writer_abort(&c->writer);
		rill__conn_release(c, false);
	}
}

/* ---- accepting ----------------------------------------------------- */

static void server_stop_accepting(rill_server *s)
{
	for (size_t i = 0; i < s->nls; i++)
		rill__acceptor_stop(&s->ls[i].acc);
}

static void server_start_accepting(rill_server *s)
{
	for (size_t i = 0; i < s->nls; i++) {
		if (!s->ls[i].acc.armed)
			s->armed++;
		rill__acceptor_start(&s->ls[i].acc);
	}
}

static int accept_retry_task(void *arg)
{
	rill_server *s = arg;
	int err = rill_sleep_ns(RILL_ACCEPT_RETRY_NS);

	s->retry = NULL;
	if (err == 0 && s->serving && !s->closed)
		server_start_accepting(s);
	server_progress(s);
	return 0;
}

static bool accept_resource_error(int err)
{
	return err == -EMFILE || err == -ENFILE || err == -ENOBUFS || err == -ENOMEM;
}

static void on_accept(void *ctx, int fd)
{
	struct listener *l = ctx;
	rill_server *s = l->server;

	if (fd >= 0) {
		if (s->exhausted) {
			s->exhausted = false;
			rill__log(RILL_LOG_INFO, "accepting again");
		}
		if (s->closed)
			close(fd);
		else
			server_new_conn(s, fd);
		return;
	}
	if (!accept_resource_error(fd) || s->retry)
		return;		/* ECONNABORTED and the like: the next one */
	/* One line per exhaustion, not one per retry: a server held at its
	 * fd limit would otherwise log every second for as long as it lasts. */
	if (!s->exhausted)
		rill__log(RILL_LOG_ERROR, "accept failed: %s; pausing accepting, "
			  "retrying every second", rill_strerror(fd));
	s->exhausted = true;
	server_stop_accepting(s);
	if (rill_spawn(s->loop, accept_retry_task, s, &s->retry) == 0)
		rill_task_detach(s->retry);
}

static void on_accept_idle(void *ctx)
{
	struct listener *l = ctx;
	rill_server *s = l->server;

	s->armed--;
	if (s->closed && l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
	server_progress(s);
}

/* ---- binding ------------------------------------------------------- */

static void sock_opt(int fd, int level, int name, int on)
{
	setsockopt(fd, level, name, &on, sizeof(on));
}

static int listen_on(rill_server *s, const struct sockaddr *addr, socklen_t len,
		     const rill_server_options *o)
{
	struct listener *l = &s->ls[s->nls];
	int fd, err;

	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (addr->sa_family != AF_UNIX) {
		sock_opt(fd, SOL_SOCKET, SO_REUSEADDR, o->reuse_address != RILL_OFF);
		if (o->reuse_port == RILL_ON)
			sock_opt(fd, SOL_SOCKET, SO_REUSEPORT, 1);
		if (addr->sa_family == AF_INET6)
			sock_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	}
	if (bind(fd, addr, len) < 0 || listen(fd, o->backlog ? o->backlog : 100) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	l->fd = fd;
	l->server = s;
	l->addrlen = sizeof(l->addr);
	getsockname(fd, (struct sockaddr *)&l->addr, &l->addrlen);
	s->nls++;
	return 0;
}

static int sockaddr_port(const struct sockaddr_storage *ss)
{
	if (ss->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)ss)->sin_port);
	if (ss->ss_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)ss)->sin6_port);
	return 0;
}

static void set_port(struct sockaddr *sa, int port)
{
	if (sa->sa_family == AF_INET)
		((struct sockaddr_in *)sa)->sin_port = htons((uint16_t)port);
	else if (sa->sa_family == AF_INET6)
		((struct sockaddr_in6 *)sa)->sin6_port = htons((uint16_t)port);
}

/* Binds every address of one host. With port 0 the first socket picks a
 * free port and the others use the same one, so "every interface, port 0"
 * gives one port, not one per family. */
static int bind_host(rill_server *s, const char *host, int port,
		     const rill_server_options *o)
{
	struct addrinfo hints = { .ai_family = o->family, .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE | o->flags };
	struct addrinfo *res = NULL;
	struct listener *ls;
	size_t cap;
	int err;

	err = rill__resolve(host && *host ? host : NULL, port, &hints, &res);
	if (err < 0)
		return err;
	cap = s->nls;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
		cap++;
	/* The array may move: acceptors point into it only once it is final
	 * (server_finish). */
	ls = realloc(s->ls, cap * sizeof(*s->ls));
	if (!ls) {
		freeaddrinfo(res);
		return -ENOMEM;
	}
	s->ls = ls;
	for (struct addrinfo *ai = res; ai && err == 0; ai = ai->ai_next) {
		if (port == 0 && s->nls)
			set_port(ai->ai_addr, sockaddr_port(&s->ls[0].addr));
		err = listen_on(s, ai->ai_addr, ai->ai_addrlen, o);
		/* 3.13 (bpo-30945): an address that cannot be assigned is
		 * taken for a family the machine has disabled, and skipped
		 * (silently, as asyncio outside debug mode). */
		if (err == -EADDRNOTAVAIL || err == -EAFNOSUPPORT) {
			err = 0;
		} else if (err < 0) {
			rill__set_detail(err, "cannot listen on %s port %d: %s",
					 host && *host ? host : "*", port, rill_strerror(err));
		}
	}
	freeaddrinfo(res);
	return err;
}

/* After every host: an error only when no address could be bound. */
static int bind_none(rill_server *s, const char *host, const rill_server_options *o,
		     int err)
{
	if (err < 0 || s->nls)
		return err;
	return rill__set_detail(-EADDRNOTAVAIL, "could not bind on any address of %s",
				o->nhosts ? "the hosts given" : host && *host ? host : "*");
}

static int adopt_listener(rill_server *s, int fd, int backlog)
{
	int type = 0, acc = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return -errno;
	len = sizeof(acc);
	if (type != SOCK_STREAM || getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) < 0)
		return rill__set_detail(-EINVAL, "sock must be a stream socket");
	/* Bound but not listening yet: asyncio's server listens on it. */
	if (!acc && listen(fd, backlog) < 0)
		return rill__set_detail(-errno, "listen on sock: %s", strerror(errno));
	s->ls = calloc(1, sizeof(*s->ls));
	if (!s->ls)
		return -ENOMEM;
	s->ls[0].fd = fd;
	s->ls[0].server = s;
	s->ls[0].addrlen = sizeof(s->ls[0].addr);
	getsockname(fd, (struct sockaddr *)&s->ls[0].addr, &s->ls[0].addrlen);
	s->is_tcp = s->ls[0].addr.ss_family != AF_UNIX;
	s->nls = 1;
	return 0;
}

/* ---- creation ------------------------------------------------------ */

/* Loads the caller's options (opts, may be NULL) into *o, which holds the
 * defaults, checks them and makes the server object: 0 with *sp set, or an
 * error with nothing to free. */
static int server_alloc(rill_client_connected_fn cb, void *arg,
			const rill_server_options *opts, rill_server_options *o,
			rill_server **sp)
{
	rill_server *s;
	int err = rill__options_load(o, sizeof(*o), opts, "rill_server_options");

	if (err < 0)
		return err;
	if (!cb || !sp)
		return -EINVAL;
	if (o->ssl && !rill__tls)
		return rill__set_detail(RILL_ETLS_NOT_AVAILABLE,
					"ssl needs rill-tls: link it (pkg-config rill-tls, "
					"CMake rill::tls) and call rill_tls_init()");
	if (o->backlog < 0)
		return rill__set_detail(-EINVAL, "backlog must not be negative");
	if (o->ssl_handshake_timeout && !o->ssl)
		return rill__set_detail(-EINVAL, "ssl_handshake_timeout is only meaningful with ssl");
	if (o->ssl_shutdown_timeout && !o->ssl)
		return rill__set_detail(-EINVAL, "ssl_shutdown_timeout is only meaningful with ssl");
	if (!rill_loop_current())
		return -EPERM;
	if ((err = rill__loop_check_fork(rill_loop_current(), "rill_start_server")) < 0)
		return err;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->loop = rill_loop_current();
	s->cb = cb;
	s->arg = arg;
	s->limit = o->limit;
	s->keep_alive = o->keep_alive == RILL_ON;
	if (o->ssl) {
		s->tls = rill__tls->ctx_ref(o->ssl);
		s->tls_handshake = o->ssl_handshake_timeout;
		s->tls_shutdown = o->ssl_shutdown_timeout;
	}
	rill__list_init(&s->conns);
	rill__waitq_init(&s->waiters);
	*sp = s;
	return 0;
}

static void server_discard(rill_server *s)
{
	for (size_t i = 0; i < s->nls; i++)
		if (s->ls[i].fd >= 0)
			close(s->ls[i].fd);
	free(s->ls);
	free(s->unix_path);
	if (s->tls)
		rill__tls->ctx_unref(s->tls);
	free(s);
}

static int server_finish(rill_server *s, const rill_server_options *o,
			 rill_server **serverp, int err)
{
	if (err < 0) {
		server_discard(s);
		return err;
	}
	for (size_t i = 0; i < s->nls; i++) {
		struct listener *l = &s->ls[i];

		rill__acceptor_init(&l->acc, s->loop, l->fd, l);
		l->acc.on_accept = on_accept;
		l->acc.on_idle = on_accept_idle;
	}
	if (o->start_serving != RILL_OFF)
		rill_server_start_serving(s);
	*serverp = s;
	return 0;
}

/* threads = N: this server object fronts N loops (streams/group.c). */
static int start_group(rill_server *s, const char *host, int port,
		       const rill_server_options *o, rill_server **serverp)
{
	int err;

	if (o->sock >= 0 || o->threads < RILL_THREADS_PER_CPU)
		err = rill__set_detail(-EINVAL, "threads must be >= 1 or "
				       "RILL_THREADS_PER_CPU, without sock");
	else
		err = rill__group_start(s->cb, s->arg, host, port, o, &s->group);
	if (err < 0) {
		server_discard(s);
		return err;
	}
	s->serving = true;
	*serverp = s;
	return 0;
}

int rill_start_server(rill_client_connected_fn cb, void *arg, const char *host,
		      int port, const rill_server_options *opts,
		      rill_server **serverp)
{
	rill__detail_clear();
	rill_server_options copy = RILL_SERVER_OPTIONS_INIT;
	const rill_server_options *o = &copy;
	rill_server *s;
	int err = server_alloc(cb, arg, opts, &copy, serverp ? &s : NULL);

	if (err < 0)
		return err;
	if (o->nhosts && !o->hosts)
		return server_finish(s, o, serverp,
				     rill__set_detail(-EINVAL, "nhosts is %zu but hosts is NULL",
						      o->nhosts));
	if (o->sock >= 0 && (host || port || o->nhosts))
		return server_finish(s, o, serverp,
				     rill__set_detail(-EINVAL, "host/port and sock can not "
						      "be specified together"));
	if (o->threads)
		return start_group(s, host, port, o, serverp);
	s->is_tcp = true;
	if (o->sock >= 0) {
		err = adopt_listener(s, o->sock, o->backlog ? o->backlog : 100);
	} else {
		if (o->nhosts)
			for (size_t i = 0; i < o->nhosts && err == 0; i++)
				err = bind_host(s, o->hosts[i], port, o);
		else
			err = bind_host(s, host, port, o);
		err = bind_none(s, host, o, err);
	}
	return server_finish(s, o, serverp, err);
}

/* A socket file left by a dead server would make bind fail: remove it,
 * but only if it is a socket. */
static void unix_remove_stale(const char *path)
{
	struct stat st;

	if (path[0] != '@' && stat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
}

/* cleanup_socket: the path is unlinked on close if it is still the socket
 * file this server listens on (same device and inode). */
static void unix_remember(rill_server *s, const char *path)
{
	struct stat st;

	if (path && stat(path, &st) == 0 && S_ISSOCK(st.st_mode)) {
		s->unix_path = strdup(path);
		s->unix_dev = st.st_dev;
		s->unix_ino = st.st_ino;
	}
}

/* The file system path an adopted Unix socket is bound to, in sun; NULL
 * for an abstract or unbound one, or another family. */
static const char *unix_sock_path(rill_server *s, struct sockaddr_un *sun)
{
	const struct sockaddr_un *a = (const struct sockaddr_un *)&s->ls[0].addr;
	size_t n = s->ls[0].addrlen;

	if (a->sun_family != AF_UNIX || n <= offsetof(struct sockaddr_un, sun_path) ||
	    a->sun_path[0] == '\0')
		return NULL;
	n -= offsetof(struct sockaddr_un, sun_path);
	memset(sun, 0, sizeof(*sun));
	memcpy(sun->sun_path, a->sun_path, n < sizeof(sun->sun_path) ? n : sizeof(sun->sun_path) - 1);
	return sun->sun_path;
}

int rill_start_unix_server(rill_client_connected_fn cb, void *arg,
			   const char *path, const rill_server_options *opts,
			   rill_server **serverp)
{
	rill__detail_clear();
	rill_server_options copy = RILL_SERVER_OPTIONS_INIT;
	const rill_server_options *o = &copy;
	struct sockaddr_un sun;
	socklen_t len = 0;
	rill_server *s;
	int err = server_alloc(cb, arg, opts, &copy, serverp ? &s : NULL);

	if (err < 0)
		return err;
	if (o->sock >= 0 && path)
		return server_finish(s, o, serverp,
				     rill__set_detail(-EINVAL, "path and sock can not be "
						      "specified together"));
	if (o->sock >= 0) {
		err = adopt_listener(s, o->sock, o->backlog ? o->backlog : 100);
		if (err == 0 && o->cleanup_socket != RILL_OFF)
			unix_remember(s, unix_sock_path(s, &sun));
		return server_finish(s, o, serverp, err);
	}
	if ((err = rill__unix_addr(path, &sun, &len)) < 0)
		return server_finish(s, o, serverp, err);
	unix_remove_stale(path);
	s->ls = calloc(1, sizeof(*s->ls));
	err = s->ls ? listen_on(s, (struct sockaddr *)&sun, len, o) : -ENOMEM;
	if (err == 0 && path[0] != '@' && o->cleanup_socket != RILL_OFF)
		unix_remember(s, path);
	return server_finish(s, o, serverp, err);
}

/* ---- the server object --------------------------------------------- */

size_t rill_server_nsockets(const rill_server *s)
{
	if (s && s->group)	/* one socket per loop, on their threads */
		return 0;
	return s && !s->closed ? s->nls : 0;
}

int rill_server_socket(const rill_server *s, size_t i)
{
	return s && i < s->nls ? s->ls[i].fd : -EINVAL;
}

const struct sockaddr *rill_server_sockname(const rill_server *s, size_t i,
					    socklen_t *lenp)
{
	if (!s || i >= s->nls)
		return NULL;
	if (lenp)
		*lenp = s->ls[i].addrlen;
	return (const struct sockaddr *)&s->ls[i].addr;
}

int rill_server_port(const rill_server *s)
{
	if (s && s->group)
		return rill__group_port(s->group);
	return s && s->nls ? sockaddr_port(&s->ls[0].addr) : 0;
}

bool rill_server_is_serving(const rill_server *s)
{
	return s && s->serving && !s->closed;
}

int rill_server_start_serving(rill_server *s)
{
	rill__detail_clear();
	int err;

	if (!s)
		return -EINVAL;
	if ((err = rill__loop_check_fork(s->loop, "rill_server_start_serving")) < 0)
		return err;
	if (s->closed)
		return RILL_ECLOSED;
	if (s->serving)
		return 0;
	s->serving = true;
	server_start_accepting(s);
	return 0;
}

static void unix_unlink_if_ours(rill_server *s)
{
	struct stat st;

	if (s->unix_path && stat(s->unix_path, &st) == 0 &&
	    st.st_dev == s->unix_dev && st.st_ino == s->unix_ino)
		unlink(s->unix_path);
	free(s->unix_path);
	s->unix_path = NULL;
}

/* Whether s belongs to a parent of fork() (its loop does): the call is
 * refused, said through the log hook where it returns nothing. */
static bool server_forked(const rill_server *s, const char *call)
{
	if (!rill__loop_check_fork(s->loop, call))
		return false;
	rill__log(RILL_LOG_ERROR, "%s", rill_error_detail());
	return true;
}

void rill_server_close(rill_server *s)
{
	if (!s || s->closed || server_forked(s, "rill_server_close"))
		return;
	s->closed = true;
	if (s->group) {
		s->serving = false;
		rill__group_close(s->group);
		rill__waitq_wake_all(&s->waiters);
		return;
	}
	s->serving = false;
	if (s->retry)
		rill_task_cancel(s->retry);
	for (size_t i = 0; i < s->nls; i++) {
		struct listener *l = &s->ls[i];

		/* Closing our fd is all: the socket may be shared with other
		 * processes (a pre-fork server), and shutdown() would stop
		 * their accepting too. Alone, it stops listening now. Where
		 * the accept in flight cannot be cancelled at once, the fd is
		 * closed in on_idle, once it has let go. */
		if (l->fd >= 0 && rill__acceptor_close(&l->acc))
			l->fd = -1;
	}
	unix_unlink_if_ours(s);
	rill__waitq_wake_all(&s->waiters);	/* serve_forever returns */
	server_progress(s);
}

static void server_each_conn(rill_server *s, void (*fn)(rill_writer *w))
{
	struct rill__list *pos, *next;

	for (pos = s->conns.next; pos != &s->conns; pos = next) {
		struct rill__conn *c = rill__container_of(pos, struct rill__conn,
							  server_link);
		next = pos->next;
		fn(&c->writer);
	}
}

void rill_server_close_clients(rill_server *s)
{
	if (s && server_forked(s, "rill_server_close_clients"))
		return;
	if (s && s->group)
		rill__group_close_clients(s->group);
	else if (s)
		server_each_conn(s, rill_writer_close);
}

void rill_server_abort_clients(rill_server *s)
{
	if (s && server_forked(s, "rill_server_abort_clients"))
		return;
	if (s && s->group)
		rill__group_abort_clients(s->group);
	else if (s)
		server_each_conn(s, rill_writer_abort);
}

/* A task waiting in serve_forever() or wait_closed() holds the server:
 * rill_server_free() from another task then frees it only once that
 * call has returned, which leave_wait() does as its last act. */
static void enter_wait(rill_server *s)
{
	s->waiting++;
}

static int leave_wait(rill_server *s, int err)
{
	s->waiting--;
	server_maybe_free(s);
	return err;
}

static int wait_closed(rill_server *s)
{
	int err;

	if (s->group) {
		while (!s->closed)
			if ((err = rill__waitq_park(&s->waiters)) < 0)
				return err;
		return rill__group_wait_closed(s->group);
	}
	while (!server_done(s))
		if ((err = rill__waitq_park(&s->waiters)) < 0)
			return err;
	return 0;
}

int rill_server_wait_closed(rill_server *s)
{
	rill__detail_clear();
	if (!s)
		return -EINVAL;
	enter_wait(s);
	return leave_wait(s, wait_closed(s));
}

int rill_server_serve_forever(rill_server *s)
{
	rill__detail_clear();
	int err = 0;

	if (!s)
		return -EINVAL;
	if (s->forever)
		return RILL_ESTATE;
	if (s->closed)
		return RILL_ECLOSED;
	rill_server_start_serving(s);
	s->forever = true;
	enter_wait(s);
	while (!s->closed && err == 0)
		err = rill__waitq_park(&s->waiters);
	s->forever = false;
	/* Ended by rill_server_close() (asyncio cancels the future, which
	 * lands here too) or cancelled: close and wait for the clients, so
	 * that the code after serve_forever runs once they are all gone. */
	if (err == 0 || err == -ECANCELED) {
		rill_server_close(s);
		wait_closed(s);
	}
	return leave_wait(s, err);
}

static void server_maybe_free(rill_server *s)
{
	if (!s->freed || s->waiting)
		return;
	if (s->group) {
		rill__group_free(s->group);
		server_discard(s);
	} else if (server_done(s) && !s->retry) {
		server_discard(s);
	}
}

void rill_server_free(rill_server *s)
{
	if (!s || server_forked(s, "rill_server_free"))
		return;
	rill_server_close(s);
	if (!s->group)
		rill_server_abort_clients(s);
	s->freed = true;
	server_maybe_free(s);
}

/* ---- shutdown with a grace period ---------------------------------- */

/* Waits for the server to be done, for grace_ns at most (the task's own
 * deadline, if earlier, still counts). */
static int wait_closed_within(rill_server *s, rill_time grace_ns)
{
	rill_time saved = rill_deadline_push(grace_ns);
	int err = wait_closed(s);

	rill_deadline_pop(saved);
	return err;
}

/* Aborts every connection still open and cancels the callbacks still
 * running on them, which may be waiting on something else than their
 * connection; returns how many connections there were. */
static int abort_the_rest(rill_server *s)
{
	struct rill__list *pos;
	int n = 0;

	if (s->group) {
		rill__group_abort_clients(s->group);
		return 1;	/* the count lives on the worker threads */
	}
	for (pos = s->conns.next; pos != &s->conns; pos = pos->next) {
		struct rill__conn *c = rill__container_of(pos, struct rill__conn,
							  server_link);

		if (c->handler)
			rill_task_cancel(c->handler);
		n++;
	}
	rill_server_abort_clients(s);
	return n;
}

int rill_server_shutdown(rill_server *s, rill_time grace_ns)
{
	rill__detail_clear();
	int err, aborted = 0;

	if (!s)
		return rill__set_detail(-EINVAL, "rill_server_shutdown: s is NULL");
	if (!rill_task_current())
		return -EPERM;
	rill_server_close(s);
	rill_server_close_clients(s);
	enter_wait(s);
	err = wait_closed_within(s, grace_ns);
	if (err < 0) {
		aborted = abort_the_rest(s);
		/* Cancelled: out now, the aborted connections end on their
		 * own; otherwise wait for the callbacks to return. */
		if (err != -ECANCELED)
			err = wait_closed(s);
	}
	return leave_wait(s, err < 0 ? err : aborted);
}
