/* SPDX-License-Identifier: MIT */
/* streams/sendfile.c: rill_writer_sendfile(), asyncio's loop.sendfile().
 *
 * The file goes after what the writer has queued: the call first waits
 * for the queue to be sent, then owns the socket (writes made meanwhile
 * queue behind the file, and are flushed when it is through).
 *
 * Zero-copy where the connection is plain bytes on a socket: on io_uring
 * the file is spliced into a pipe and the pipe into the socket (two SPLICE
 * operations per pipe-full; the kernel runs them in its io-wq workers, as
 * splice cannot wait without blocking); on epoll sendfile(2) on the
 * non-blocking socket, waiting for EPOLLOUT when it is full. Elsewhere
 * (TLS, which must encrypt, a pipe connection) and where the kernel
 * refuses zero-copy for this file before a byte went, the file is read
 * with pread(2) and written through the writer with drain().
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include "streams/internal.h"

/* Bytes per splice round or sendfile(2) call, and the pipe size asked for:
 * 1 MiB is the unprivileged maximum of a pipe (fs.pipe-max-size), and
 * large enough that the per-round costs vanish beside the copy-free move. */
#define SENDFILE_CHUNK (1u << 20)
/* The fallback's read size: a few TLS records, and bounded memory. */
#define SENDFILE_READ (256u * 1024)

/* What ends a send early: the connection's error, or -ECONNRESET once it
 * was closed or lost. 0 while it is usable. */
static int conn_gone(struct rill__conn *c)
{
	if (c->reader.exception)
		return c->reader.exception;
	if (c->lost || c->fd_closed)
		return c->lost_err ? c->lost_err : -ECONNRESET;
	return 0;
}

/* Waits until what was written before is sent. */
static int wait_flushed(rill_writer *w)
{
	struct rill__conn *c = rill__writer_conn(w);
	int err;

	for (;;) {
		if ((err = conn_gone(c)) < 0)
			return err;
		if (!w->sending && !c->tp->pending(c) && !w->in_sendfile)
			return 0;
		if ((err = rill__waitq_park(&w->flushed)) < 0)
			return err;
	}
}

/* ---- zero-copy ------------------------------------------------------ */

/* Moves all n bytes in the pipe to the socket. */
static int splice_out(struct rill__conn *c, int pipe_r, size_t n)
{
	while (n) {
		int k;

		if (c->fd < 0)
			return conn_gone(c);
		k = rill__splice(pipe_r, -1, c->fd, (unsigned)n);
		if (k <= 0)
			return k == 0 ? -EPIPE : k;
		n -= (size_t)k;
	}
	return 0;
}

/* io_uring: file -> pipe -> socket. *sent counts what reached the socket.
 * -ENOSYS: zero-copy refused before a byte went (fall back). */
static int send_spliced(struct rill__conn *c, int fd, off_t off, size_t count,
			size_t *sent)
{
	int p[2], err = 0;

	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	fcntl(p[1], F_SETPIPE_SZ, SENDFILE_CHUNK);	/* else 64 KiB rounds */
	while (*sent < count || !count) {
		size_t left = count ? count - *sent : SENDFILE_CHUNK;
		int k = rill__splice(fd, (int64_t)off + (int64_t)*sent, p[1],
				     left < SENDFILE_CHUNK ? (unsigned)left : SENDFILE_CHUNK);

		if (k == 0)
			break;	/* end of file */
		if (k < 0) {
			err = (*sent == 0 && (k == -EINVAL || k == -EOPNOTSUPP)) ? -ENOSYS : k;
			break;
		}
		if ((err = splice_out(c, p[0], (size_t)k)) < 0)
			break;
		*sent += (size_t)k;
	}
	close(p[0]);
	close(p[1]);
	return err;
}

/* epoll: sendfile(2) on the non-blocking socket. */
static int send_sendfile(struct rill__conn *c, int fd, off_t off, size_t count,
			 size_t *sent)
{
	while (*sent < count || !count) {
		size_t left = count ? count - *sent : SENDFILE_CHUNK;
		off_t pos = off + (off_t)*sent;
		ssize_t k;
		int err;

		if ((err = conn_gone(c)) < 0)
			return err;
		k = sendfile(c->fd, fd, &pos, left < SENDFILE_CHUNK ? left : SENDFILE_CHUNK);
		if (k > 0) {
			*sent += (size_t)k;
			continue;
		}
		if (k == 0)
			return 0;	/* end of file */
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN) {
			if ((err = rill__wait_writable(c->fd)) < 0)
				return err;
			continue;
		}
		if (*sent == 0 && (errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
			return -ENOSYS;
		return -errno;
	}
	return 0;
}

static int send_zero_copy(rill_writer *w, int fd, off_t off, size_t count,
			  size_t *sent)
{
	struct rill__conn *c = rill__writer_conn(w);
	int err;

	w->in_sendfile = true;
	if (rill_loop_backend(c->loop) == RILL_BACKEND_EPOLL)
		err = send_sendfile(c, fd, off, count, sent);
	else
		err = send_spliced(c, fd, off, count, sent);
	w->in_sendfile = false;
	rill__waitq_wake_all(&w->flushed);
	rill__writer_kick(w);	/* what was written meanwhile */
	if (c->closing || c->lost)	/* held off while the socket was ours */
		rill__conn_maybe_close(c);
	return err;
}

/* ---- the fallback --------------------------------------------------- */

static int send_copied(rill_writer *w, int fd, off_t off, size_t count, size_t *sent)
{
	char *buf = malloc(SENDFILE_READ);
	int err = 0;

	if (!buf)
		return -ENOMEM;
	while (*sent < count || !count) {
		size_t left = count ? count - *sent : SENDFILE_READ;
		ssize_t k = pread(fd, buf, left < SENDFILE_READ ? left : SENDFILE_READ,
				  off + (off_t)*sent);

		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0) {
			err = k < 0 ? -errno : 0;
			break;
		}
		if ((err = rill_writer_write(w, buf, (size_t)k)) < 0 ||
		    (err = conn_gone(rill__writer_conn(w))) < 0)
			break;
		*sent += (size_t)k;
		if ((err = rill_writer_drain(w)) < 0)
			break;
	}
	free(buf);
	return err;
}

/* ---- the call --------------------------------------------------------- */

static int sendfile_check(rill_writer *w, int fd, off_t offset)
{
	struct stat st;
	int fl;

	if (!w)
		return rill__set_detail(-EINVAL, "rill_writer_sendfile: w is NULL");
	if (offset < 0)
		return rill__set_detail(-EINVAL, "rill_writer_sendfile: negative offset");
	if (fstat(fd, &st) < 0 || (fl = fcntl(fd, F_GETFL)) < 0)
		return rill__set_detail(-EBADF, "rill_writer_sendfile: fd %d is not open", fd);
	if (!S_ISREG(st.st_mode) || (fl & O_ACCMODE) == O_WRONLY)
		return rill__set_detail(-EINVAL, "rill_writer_sendfile: fd %d is not a regular "
					"file open for reading", fd);
	if (!rill_task_current())
		return rill__set_detail(-EPERM, "rill_writer_sendfile must run in a task");
	if (w->eof_requested)
		return RILL_ESTATE;
	return 0;
}

ssize_t rill_writer_sendfile(rill_writer *w, int fd, off_t offset, size_t count)
{
	struct rill__conn *c;
	size_t sent = 0;
	int err;

	rill__detail_clear();
	if ((err = sendfile_check(w, fd, offset)) < 0)
		return err;
	c = rill__writer_conn(w);
	if (c->closing)
		return -ECONNRESET;
	if ((err = wait_flushed(w)) < 0)
		return err;
	err = -ENOSYS;
	if (c->tp == &rill__plain_transport && !c->pipe)
		err = send_zero_copy(w, fd, offset, count, &sent);
	if (err == -ENOSYS)
		err = send_copied(w, fd, offset, count, &sent);
	if (err < 0 && conn_gone(c) < 0)
		err = conn_gone(c);	/* as drain() says it: abort is -ECONNRESET */
	if (err < 0)
		return err;
	return (ssize_t)sent;
}
