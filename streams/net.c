/* SPDX-License-Identifier: MIT */
/* streams/net.c: socket helpers that connect.c and server.c share: name
 * resolution, Unix socket addresses, TCP_NODELAY.
 *
 * Numeric addresses are parsed in place; host names are resolved with
 * getaddrinfo on the engine's thread pool (engine/pool.c), so the loop
 * never blocks on DNS.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "streams/net.h"

/* ---- name resolution ----------------------------------------------- */

/* A lookup on the engine's thread pool. A task that stops waiting
 * (cancelled, or its deadline passed) abandons it: the pool frees it when
 * getaddrinfo returns, and neither the task nor its loop waits for that. */
struct resolve {
	struct rill__work work;
	char *host;
	char port[16];
	struct addrinfo hints;
	struct addrinfo *res;
	int err;
	rill_task *task;
	bool done;
};

static void resolve_free(struct rill__work *w)
{
	struct resolve *rq = rill__container_of(w, struct resolve, work);

	if (rq->res)
		freeaddrinfo(rq->res);
	free(rq->host);
	free(rq);
}

static void resolve_run(struct rill__work *w)
{
	struct resolve *rq = rill__container_of(w, struct resolve, work);

	rq->err = getaddrinfo(rq->host, rq->port, &rq->hints, &rq->res);
}

static void resolve_done(struct rill__work *w)
{
	struct resolve *rq = rill__container_of(w, struct resolve, work);

	rq->done = true;
	rill__wake(rq->task, 0);
}

static void resolve_interrupt(struct rill__wait *w, int reason)
{
	rill__wake(w->task, reason);
}

static int resolve_error(int err, const char *host)
{
	return rill__set_detail(err == EAI_NONAME ? -ENOENT : -EHOSTUNREACH,
				"getaddrinfo(%s): %s", host, gai_strerror(err));
}

/* Waits for the lookup. An answer that arrives after the cancellation but
 * before the task resumes does not undo it. */
static int resolve_wait(struct resolve *rq, struct addrinfo **resp)
{
	struct rill__wait w = { .interrupt = resolve_interrupt,
				.until = RILL_TIME_NEVER };
	int err = 0;

	while (!rq->done && err == 0)
		err = rill__park(&w);
	if (!rq->done) {
		rill__work_abandon(&rq->work);
		return err;
	}
	if (err == 0 && rq->err)
		err = resolve_error(rq->err, rq->host);
	if (err == 0) {
		*resp = rq->res;
		rq->res = NULL;
	}
	resolve_free(&rq->work);
	return err;
}

int rill__resolve(const char *host, int port, const struct addrinfo *hints,
		  struct addrinfo **resp)
{
	struct addrinfo h = *hints;
	struct resolve *rq;
	char portbuf[16];
	int err;

	if (port < 0 || port > 65535)
		return rill__set_detail(-EINVAL, "port %d out of range", port);
	snprintf(portbuf, sizeof(portbuf), "%d", port);
	h.ai_flags |= AI_NUMERICHOST | AI_NUMERICSERV;
	err = getaddrinfo(host, portbuf, &h, resp);
	if (err != EAI_NONAME)
		return err ? resolve_error(err, host ? host : "") : 0;
	if (!rill_task_current())
		return -EPERM;
	rq = calloc(1, sizeof(*rq));
	if (!rq || !(rq->host = strdup(host))) {
		free(rq);
		return -ENOMEM;
	}
	memcpy(rq->port, portbuf, sizeof(portbuf));
	rq->hints = *hints;
	rq->hints.ai_flags |= AI_NUMERICSERV;
	rq->task = rill_task_current();
	rq->work = (struct rill__work){ .run = resolve_run, .done = resolve_done,
					.drop = resolve_free };
	if ((err = rill__work_submit(rill_loop_current(), &rq->work)) < 0) {
		resolve_free(&rq->work);
		return err;
	}
	return resolve_wait(rq, resp);
}

/* ---- sockets ------------------------------------------------------- */

void rill__sock_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int rill__unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *lenp)
{
	size_t n = path ? strlen(path) : 0;

	if (n == 0 || n >= sizeof(sun->sun_path))
		return rill__set_detail(-EINVAL, "unix socket path empty or too long");
	memset(sun, 0, sizeof(*sun));
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n);
	if (path[0] == '@') {	/* abstract: no file, leading NUL */
		sun->sun_path[0] = '\0';
		*lenp = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
	} else {
		*lenp = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	}
	return 0;
}
