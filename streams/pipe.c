/* SPDX-License-Identifier: MIT */
/* streams/pipe.c: pipes, FIFOs, terminals (and regular files) as streams,
 * asyncio's loop.connect_read_pipe() and connect_write_pipe() with a
 * StreamReader or StreamWriter on top.
 *
 * Such an fd becomes a connection like a socket's, flagged as a pipe: the
 * engine reads and writes it with read(2) and write(2) (io_uring READ and
 * WRITEV, one at a time) instead of recv and send, and every write carries
 * RWF_NOSIGNAL, so a reader gone is -EPIPE, never SIGPIPE. A pipe has no
 * half-close: write_eof() closes it once the queue is sent, as asyncio's
 * pipe transport does.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rill/process.h"
#include "streams/internal.h"

/* What kind of fd it is: RILL__CONN_* flags, or -EINVAL with detail. */
static int pipe_kind(int fd, const char *call)
{
	struct stat st;

	if (fd < 0)
		return rill__set_detail(-EINVAL, "%s: fd %d is not a file descriptor",
					call, fd);
	if (fstat(fd, &st) < 0)
		return rill__set_detail(-errno, "%s: fd %d: %s", call, fd,
					strerror(errno));
	if (S_ISREG(st.st_mode))
		return (int)(RILL__CONN_PIPE | RILL__CONN_REGULAR);
	if (S_ISFIFO(st.st_mode) || S_ISCHR(st.st_mode) || S_ISSOCK(st.st_mode))
		return RILL__CONN_PIPE;
	return rill__set_detail(-EINVAL, "%s: fd %d is not a pipe, FIFO, socket, "
				"character device or regular file", call, fd);
}

/* epoll waits for readiness, so the fd must not block; io_uring waits on
 * the fd itself, where O_NONBLOCK would only turn waits into -EAGAIN on a
 * terminal. Both change the open file description, which a shell may
 * share (asyncio sets O_NONBLOCK the same way). */
static void pipe_blocking(int fd, unsigned kind)
{
	int flags = fcntl(fd, F_GETFL);
	bool epoll = rill_loop_backend(rill_loop_current()) == RILL_BACKEND_EPOLL;

	if (flags < 0 || (kind & RILL__CONN_REGULAR))
		return;
	if (epoll && !(flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	else if (!epoll && (flags & O_NONBLOCK))
		fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
}

/* Only limit means anything for a pipe: the other fields must be left as
 * RILL_OPEN_OPTIONS_INIT has them. */
static int pipe_options(const rill_open_options *opts, rill_open_options *o,
			const char *call)
{
	int err = rill__options_load(o, sizeof(*o), opts, "rill_open_options");

	if (err < 0)
		return err;
	if (o->ssl || o->ssl_context || o->server_hostname || o->sock != -1 ||
	    o->local_addr || o->local_addrlen || o->family || o->proto || o->flags ||
	    o->connect_timeout || o->happy_eyeballs_delay || o->interleave ||
	    o->ssl_handshake_timeout || o->ssl_shutdown_timeout)
		return rill__set_detail(-EINVAL, "%s: only limit applies to a pipe",
					call);
	if (!rill_task_current())
		return rill__set_detail(-EPERM, "%s must run in a task", call);
	return 0;
}

static int pipe_make(int fd, size_t limit, bool write_only, const char *call,
		     struct rill__conn **cp)
{
	int kind = pipe_kind(fd, call);

	if (kind < 0)
		return kind;
	if (write_only) {
		kind |= RILL__CONN_NO_READ;
		rill__nosignal_probe();
	}
	pipe_blocking(fd, (unsigned)kind);
	*cp = rill__conn_new_fd(rill_loop_current(), fd, limit, (unsigned)kind);
	return *cp ? 0 : -ENOMEM;
}

struct rill__conn *rill__pipe_conn(int fd, size_t limit, bool write_only)
{
	struct rill__conn *c = NULL;

	if (pipe_make(fd, limit, write_only, "pipe", &c) < 0)
		return NULL;
	rill__resource_del(&c->res);	/* its owner frees it */
	return c;
}

static int pipe_open(int fd, const rill_open_options *opts, bool write_only,
		     const char *call, struct rill__conn **cp)
{
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	int err;

	rill__detail_clear();
	if ((err = pipe_options(opts, &o, call)) < 0)
		return err;
	return pipe_make(fd, o.limit, write_only, call, cp);
}

int rill_connect_read_pipe(int fd, const rill_open_options *opts,
			   rill_reader **readerp)
{
	struct rill__conn *c;
	int err;

	if (!readerp)
		return rill__set_detail(-EINVAL, "rill_connect_read_pipe: readerp is NULL");
	if ((err = pipe_open(fd, opts, false, "rill_connect_read_pipe", &c)) < 0)
		return err;
	c->reader_owns = true;
	*readerp = &c->reader;
	return 0;
}

int rill_connect_write_pipe(int fd, const rill_open_options *opts,
			    rill_writer **writerp)
{
	struct rill__conn *c;
	int err;

	if (!writerp)
		return rill__set_detail(-EINVAL, "rill_connect_write_pipe: writerp is NULL");
	if ((err = pipe_open(fd, opts, true, "rill_connect_write_pipe", &c)) < 0)
		return err;
	*writerp = &c->writer;
	return 0;
}
