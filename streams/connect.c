/* SPDX-License-Identifier: MIT */
/* streams/connect.c: open_connection and open_unix_connection.
 *
 * The host is resolved by rill__resolve() (streams/net.c). Its addresses
 * are tried one after the other, or, with a happy eyeballs
 * delay, staggered and raced (RFC 8305): each attempt is a task, the first
 * to connect wins and the others are cancelled and joined.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "streams/internal.h"
#include "streams/net.h"

/* ---- one attempt --------------------------------------------------- */

/* Connects a new socket to addr. Returns the fd or
 * -errno; the socket is closed on failure. */
static int connect_addr(const struct sockaddr *addr, socklen_t len,
			const rill_open_options *o)
{
	int fd, err;

	fd = socket(addr->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (addr->sa_family != AF_UNIX)
		rill__sock_nodelay(fd);
	if (o->local_addr && bind(fd, o->local_addr, o->local_addrlen) < 0) {
		err = -errno;
		goto fail;
	}
	err = rill__connect(fd, addr, len);
	if (err == 0)
		return fd;
fail:
	close(fd);
	return err;
}

/* ---- several attempts ---------------------------------------------- */

struct attempt {
	const struct addrinfo *ai;
	const rill_open_options *o;
	struct race *race;
	rill_task *task;
	int result;		/* fd or -errno */
	bool tried, done;
};

/* ---- the attempts, for rill_open_connection_attempts() ------------- */

struct attempts_record {
	rill_connect_attempt *v;
	size_t n;
};

static pthread_key_t record_key;
static pthread_once_t record_once = PTHREAD_ONCE_INIT;

static void record_free(void *p)
{
	struct attempts_record *rec = p;

	free(rec->v);
	free(rec);
}

static void record_key_init(void)
{
	pthread_key_create(&record_key, record_free);
}

/* This thread's record (NULL if it cannot have one: out of memory). */
static struct attempts_record *record_get(void)
{
	struct attempts_record *rec;

	pthread_once(&record_once, record_key_init);
	rec = pthread_getspecific(record_key);
	if (!rec && (rec = calloc(1, sizeof(*rec))) &&
	    pthread_setspecific(record_key, rec) != 0) {
		free(rec);
		rec = NULL;
	}
	return rec;
}

static void record_clear(void)
{
	struct attempts_record *rec = record_get();

	if (rec)
		rec->n = 0;
}

/* Replaces this thread's record with the attempts tried, in order. */
static void record_attempts(const struct attempt *a, size_t n)
{
	struct attempts_record *rec = record_get();
	rill_connect_attempt *v;
	size_t k = 0;

	if (!rec)
		return;
	rec->n = 0;
	if (!(v = realloc(rec->v, (n ? n : 1) * sizeof(*v))))
		return;
	rec->v = v;
	for (size_t i = 0; i < n; i++) {
		socklen_t len = a[i].ai->ai_addrlen;

		if (!a[i].tried)
			continue;
		memset(&v[k], 0, sizeof(v[k]));
		if (len > sizeof(v[k].addr))
			len = sizeof(v[k].addr);
		memcpy(&v[k].addr, a[i].ai->ai_addr, len);
		v[k].addrlen = len;
		/* Started and never finished: cancelled when another won. */
		v[k].error = !a[i].done ? -ECANCELED : a[i].result >= 0 ? 0 : a[i].result;
		k++;
	}
	rec->n = k;
}

const rill_connect_attempt *rill_open_connection_attempts(size_t *countp)
{
	struct attempts_record *rec = record_get();
	size_t n = rec ? rec->n : 0;

	if (countp)
		*countp = n;
	return n ? rec->v : NULL;
}

struct race {
	struct rill__wait *parent;	/* set while the parent waits on it */
	size_t finished;
};

static int attempt_run(void *arg)
{
	struct attempt *a = arg;
	struct race *rc = a->race;

	a->result = connect_addr(a->ai->ai_addr, a->ai->ai_addrlen, a->o);
	a->done = true;
	rc->finished++;
	/* Only while the parent waits on the race: it also parks in joins. */
	if (rc->parent)
		rill__wake(rc->parent->task, 0);
	return 0;
}

static void addr_string(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	snprintf(buf, len, sa->sa_family == AF_INET6 ? "[%s]:%d" : "%s:%d", host, port);
}

/* One error: that error. Several: RILL_EMULTI, each listed in the detail
 * ("Multiple exceptions: ..." in asyncio). As in asyncio, several that
 * read the same (one error from one address, tried twice) count as one. */
static int combine_errors(const struct attempt *a, size_t n)
{
	char detail[1024] = "multiple connect errors:";
	char first[128], cur[128];
	size_t used = strlen(detail);
	bool same = true;

	if (n == 1)
		return a[0].result;
	for (size_t i = 0; i < n; i++) {
		char addr[80];

		addr_string(a[i].ai->ai_addr, addr, sizeof(addr));
		snprintf(cur, sizeof(cur), "%s: %s", addr, rill_strerror(a[i].result));
		if (i == 0)
			memcpy(first, cur, sizeof(first));
		same &= strcmp(cur, first) == 0;
		used += (size_t)snprintf(detail + used, used < sizeof(detail) ? sizeof(detail) - used : 0,
					 " %s;", cur);
		if (used >= sizeof(detail))
			used = sizeof(detail) - 1;
	}
	if (same)
		return rill__set_detail(a[0].result, "%s", detail);
	return rill__set_detail(RILL_EMULTI, "%s", detail);
}

/* Reorders addresses as RFC 8305 says: the first family first, then
 * alternating, `first_count` of the first family before the switch. */
static size_t interleave(const struct addrinfo *list, int first_count,
			 const struct addrinfo **out, size_t max)
{
	const struct addrinfo *fam1[64], *fam2[64];
	size_t n1 = 0, n2 = 0, n = 0, i = 0, j = 0;
	int fam = list ? list->ai_family : 0;

	for (const struct addrinfo *ai = list; ai; ai = ai->ai_next) {
		if (ai->ai_family == fam && n1 < 64)
			fam1[n1++] = ai;
		else if (ai->ai_family != fam && n2 < 64)
			fam2[n2++] = ai;
	}
	if (first_count < 1)
		first_count = 1;
	while (n < max && (i < n1 || j < n2)) {
		int take = n ? 1 : first_count;	/* fixed before n moves */

		for (int k = 0; k < take && i < n1 && n < max; k++)
			out[n++] = fam1[i++];
		if (j < n2 && n < max)
			out[n++] = fam2[j++];
	}
	return n;
}

static size_t list_plain(const struct addrinfo *list, const struct addrinfo **out,
			 size_t max)
{
	size_t n = 0;

	for (const struct addrinfo *ai = list; ai && n < max; ai = ai->ai_next)
		out[n++] = ai;
	return n;
}

static int connect_sequential(struct attempt *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		a[i].tried = true;
		a[i].result = connect_addr(a[i].ai->ai_addr, a[i].ai->ai_addrlen, a[i].o);
		a[i].done = true;
		if (a[i].result >= 0)
			return a[i].result;
		if (a[i].result == -ECANCELED || a[i].result == -ETIMEDOUT)
			return a[i].result;
	}
	return combine_errors(a, n);
}

static int race_winner(struct attempt *a, size_t started)
{
	for (size_t i = 0; i < started; i++)
		if (a[i].done && a[i].result >= 0)
			return (int)i;
	return -1;
}

/* Cancels the attempts still running and joins all; a loser that also
 * connected closes its socket. The joins must finish whatever happens to
 * the caller meanwhile: its deadline is lifted for them (a passed one
 * would make every join fail at once, for ever), and a cancellation that
 * arrives is delivered again afterwards. */
static void race_finish(struct attempt *a, size_t started, int winner)
{
	rill_task *self = rill_task_current();
	rill_time saved = rill_deadline_push(RILL_TIME_NEVER);
	bool cancelled = false;

	rill_deadline_pop(RILL_TIME_NEVER);
	for (size_t i = 0; i < started; i++)
		if (!a[i].done)
			rill_task_cancel(a[i].task);
	for (size_t i = 0; i < started; i++) {
		int err;

		while ((err = rill_task_join(a[i].task, NULL)) < 0)
			cancelled |= err == -ECANCELED;
		/* Not done: cancelled before it ran, result holds no fd. */
		if ((int)i != winner && a[i].done && a[i].result >= 0)
			close(a[i].result);
	}
	rill_deadline_pop(saved);
	if (cancelled)
		rill_task_cancel(self);
}

/* asyncio's staggered_race: the next attempt starts when the delay has
 * passed or as soon as the one before it failed, whichever comes first. */
static int connect_race(struct attempt *a, size_t n, rill_time delay)
{
	struct race rc = { 0 };
	size_t started = 0;
	rill_time next = 0;
	int winner = -1, err = 0;

	while (winner < 0) {
		rill_time now = rill_now();
		bool all_failed = rc.finished == started;
		bool prev_failed = started && a[started - 1].done &&
				   a[started - 1].result < 0;

		if (started < n && (now >= next || prev_failed)) {
			a[started].race = &rc;
			err = rill_spawn(rill_loop_current(), attempt_run, &a[started],
					 &a[started].task);
			if (err < 0)
				break;
			a[started].tried = true;
			started++;
			next = now + delay;
			continue;
		}
		if (all_failed && started == n)
			break;
		{
			struct rill__wait w = { .until = started < n ? next : RILL_TIME_NEVER };

			rc.parent = &w;
			err = rill__park(&w);
			rc.parent = NULL;
			if (err < 0)
				break;
		}
		winner = race_winner(a, started);
	}
	race_finish(a, started, winner);
	if (winner >= 0)
		return a[winner].result;
	if (err < 0)
		return err;
	return combine_errors(a, n);
}

/* Tries the addresses of list in the order the options ask for. Returns
 * the connected fd or an error. */
static int connect_list(const struct addrinfo *list, const char *host,
			const rill_open_options *o)
{
	const struct addrinfo *order[64];
	struct attempt a[64];
	size_t n;
	int fd;

	if (o->happy_eyeballs_delay || o->interleave)
		n = interleave(list, o->interleave, order, 64);
	else
		n = list_plain(list, order, 64);
	memset(a, 0, sizeof(a));
	for (size_t i = 0; i < n; i++) {
		a[i].ai = order[i];
		a[i].o = o;
	}
	if (n == 0)
		return rill__set_detail(-EHOSTUNREACH, "no address for %s", host);
	if (o->happy_eyeballs_delay && n > 1)
		fd = connect_race(a, n, o->happy_eyeballs_delay);
	else
		fd = connect_sequential(a, n);
	record_attempts(a, n);
	return fd;
}

static int connect_tcp(const char *host, int port, const rill_open_options *o)
{
	struct addrinfo hints = { .ai_family = o->family, .ai_socktype = SOCK_STREAM,
				  .ai_protocol = o->proto, .ai_flags = o->flags };
	struct addrinfo *res = NULL;
	int ret;

	ret = rill__resolve(host, port, &hints, &res);
	if (ret < 0)
		return ret;
	ret = connect_list(res, host, o);
	freeaddrinfo(res);
	return ret;
}

int rill__connect_addrs(const struct sockaddr *const *addrs, const socklen_t *lens,
			size_t n, const rill_open_options *opts)
{
	static const rill_open_options defaults;
	const rill_open_options *o = opts ? opts : &defaults;
	struct addrinfo ai[64];
	rill_time saved;
	int fd;

	if (!rill_task_current())
		return -EPERM;
	record_clear();
	if (n == 0 || n > 64)
		return -EINVAL;
	memset(ai, 0, sizeof(ai));
	for (size_t i = 0; i < n; i++) {
		ai[i].ai_family = addrs[i]->sa_family;
		ai[i].ai_socktype = SOCK_STREAM;
		ai[i].ai_addr = (struct sockaddr *)addrs[i];
		ai[i].ai_addrlen = lens[i];
		ai[i].ai_next = i + 1 < n ? &ai[i + 1] : NULL;
	}
	saved = rill_deadline_push(o->connect_timeout ? o->connect_timeout : RILL_TIME_NEVER);
	fd = connect_list(ai, "(addresses)", o);
	rill_deadline_pop(saved);
	return fd;
}

/* ---- the public calls ---------------------------------------------- */

/* TLS on a new connection, when asked: the name to check is
 * server_hostname, else the host. */
static int conn_tls(struct rill__conn *c, const rill_open_options *o,
		    const char *host)
{
	const char *name = o->server_hostname ? o->server_hostname : host;
	int err;

	if (!o->ssl && !o->ssl_context)
		return 0;
	err = rill__tls->client(c, o->ssl_context, name, o->ssl_handshake_timeout,
				o->ssl_shutdown_timeout);
	if (err < 0) {
		rill_writer_abort(&c->writer);
		rill_writer_free(&c->writer);
	}
	return err;
}

static int conn_wrap(int fd, const rill_open_options *o, const char *host,
		     rill_reader **readerp, rill_writer **writerp)
{
	struct rill__conn *c = rill__conn_new(rill_loop_current(), fd, o->limit);
	int err;

	if (!c) {
		close(fd);
		return -ENOMEM;
	}
	if ((err = conn_tls(c, o, host)) < 0)
		return err;
	*readerp = &c->reader;
	*writerp = &c->writer;
	return 0;
}

static int open_check(const rill_open_options *o, rill_reader **readerp,
		      rill_writer **writerp)
{
	if (!readerp || !writerp)
		return -EINVAL;
	/* A child of fork() made in a task is in none: say why. */
	if (!rill_task_current() && rill__loop_check_fork(rill_loop_current(),
							  "open_connection"))
		return RILL_EFORKED;
	if (!rill_task_current())
		return rill__set_detail(-EPERM, "open_connection must run in a task");
	if (o->server_hostname && !o->ssl && !o->ssl_context)
		return rill__set_detail(-EINVAL, "server_hostname is only meaningful with ssl");
	if (o->ssl_handshake_timeout && !o->ssl && !o->ssl_context)
		return rill__set_detail(-EINVAL, "ssl_handshake_timeout is only meaningful with ssl");
	if (o->ssl_shutdown_timeout && !o->ssl && !o->ssl_context)
		return rill__set_detail(-EINVAL, "ssl_shutdown_timeout is only meaningful with ssl");
	if ((o->ssl || o->ssl_context) && !rill__tls)
		return rill__set_detail(RILL_ETLS_NOT_AVAILABLE,
					"ssl needs rill-tls: link it (pkg-config rill-tls, "
					"CMake rill::tls) and call rill_tls_init()");
	return 0;
}

/* asyncio: ssl without a host needs server_hostname. */
static int tls_name_check(const rill_open_options *o, const char *host)
{
	if ((o->ssl || o->ssl_context) && !host && !o->server_hostname)
		return rill__set_detail(-EINVAL, "ssl without a host needs server_hostname");
	return 0;
}

/* Checks and prepares an already-connected socket for adoption: TCP ones
 * get TCP_NODELAY, as every socket asyncio's transports take does. */
static int adopt_sock(int fd)
{
	int type = 0, listening = 0, flags, domain = 0, proto = 0;
	socklen_t len = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0)
		return rill__set_detail(-errno, "sock %d: %s", fd, strerror(errno));
	if (type != SOCK_STREAM)
		return rill__set_detail(-EINVAL, "sock must be a stream socket");
	len = sizeof(listening);
	if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) == 0 && listening)
		return rill__set_detail(-EINVAL, "sock is a listening socket: "
					"open_connection needs a connected one");
	/* io_uring waits on the socket itself; a non-blocking one would only
	 * make it return -EAGAIN. epoll needs it non-blocking. */
	flags = fcntl(fd, F_GETFL);
	if (flags >= 0 && rill_loop_backend(rill_loop_current()) == RILL_BACKEND_EPOLL)
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	else if (flags >= 0 && (flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
	len = sizeof(domain);
	getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &domain, &len);
	len = sizeof(proto);
	getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &proto, &len);
	if ((domain == AF_INET || domain == AF_INET6) && proto == IPPROTO_TCP)
		rill__sock_nodelay(fd);
	return 0;
}

/* sock=: a connection on the socket given, whose ownership passes to rill,
 * instead of connecting. peer is the host or path and port the port, which
 * must be NULL and 0 (asyncio's ValueError); what names them. */
static int open_sock(const rill_open_options *o, const char *peer, int port,
		     const char *what, rill_reader **readerp, rill_writer **writerp)
{
	int err;

	if (peer || port)
		return rill__set_detail(-EINVAL, "%s and sock can not be specified together",
					what);
	if ((err = adopt_sock(o->sock)) < 0)
		return err;
	return conn_wrap(o->sock, o, NULL, readerp, writerp);
}

int rill_open_connection(const char *host, int port, const rill_open_options *opts,
			 rill_reader **readerp, rill_writer **writerp)
{
	rill__detail_clear();
	rill_open_options copy = RILL_OPEN_OPTIONS_INIT;
	const rill_open_options *o = &copy;
	rill_time saved;
	int fd = rill__options_load(&copy, sizeof(copy), opts, "rill_open_options");

	record_clear();
	if (fd < 0 || (fd = open_check(o, readerp, writerp)) < 0)
		return fd;
	if ((fd = tls_name_check(o, host)) < 0)
		return fd;
	if (o->sock >= 0)
		return open_sock(o, host, port, "host/port", readerp, writerp);
	if (!host || !*host)
		return rill__set_detail(-EINVAL, "host is required without sock");
	saved = rill_deadline_push(o->connect_timeout ? o->connect_timeout : RILL_TIME_NEVER);
	fd = connect_tcp(host, port, o);
	rill_deadline_pop(saved);
	if (fd < 0)
		return fd;
	return conn_wrap(fd, o, host, readerp, writerp);
}

int rill_open_unix_connection(const char *path, const rill_open_options *opts,
			      rill_reader **readerp, rill_writer **writerp)
{
	rill__detail_clear();
	rill_open_options copy = RILL_OPEN_OPTIONS_INIT;
	const rill_open_options *o = &copy;
	struct sockaddr_un sun;
	socklen_t len = 0;
	rill_time saved;
	int fd = rill__options_load(&copy, sizeof(copy), opts, "rill_open_options");

	record_clear();
	if (fd < 0 || (fd = open_check(o, readerp, writerp)) < 0 ||
	    (fd = tls_name_check(o, NULL)) < 0)
		return fd;
	if (o->sock >= 0)
		return open_sock(o, path, 0, "path", readerp, writerp);
	if ((fd = rill__unix_addr(path, &sun, &len)) < 0)
		return fd;
	saved = rill_deadline_push(o->connect_timeout ? o->connect_timeout : RILL_TIME_NEVER);
	{
		struct addrinfo ai = { .ai_family = AF_UNIX, .ai_addr = (struct sockaddr *)&sun,
				       .ai_addrlen = len };
		struct attempt one = { .ai = &ai, .tried = true, .done = true };

		fd = one.result = connect_addr((struct sockaddr *)&sun, len, o);
		record_attempts(&one, 1);
	}
	rill_deadline_pop(saved);
	if (fd < 0)
		return fd;
	return conn_wrap(fd, o, NULL, readerp, writerp);
}
