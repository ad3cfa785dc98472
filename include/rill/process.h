/* SPDX-License-Identifier: MIT */
/* rill/process.h: pipes, terminals and child processes as streams.
 *
 * asyncio's loop.connect_read_pipe() / connect_write_pipe() with a
 * StreamReader / StreamWriter on top, and create_subprocess_exec() /
 * create_subprocess_shell(). The calls that wait must run inside a task.
 */
#ifndef RILL_PROCESS_H
#define RILL_PROCESS_H

#include <sys/types.h>

#include "rill/common.h"
#include "rill/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- pipes ----------------------------------------------------------- */

/* A reader on fd: a pipe, FIFO, terminal, socket, or a regular file
 * (standard input redirected from one: read from its file position to its
 * end, then EOF; on io_uring with READ, on epoll with read(2) once per
 * loop iteration, since epoll cannot wait on a regular file). opts may be
 * NULL; only its limit applies (-EINVAL for other fields set). Ownership of
 * fd passes to rill, which closes it when the reader is freed (pass dup(0)
 * to keep standard input); on failure the caller still owns it. The
 * caller owns the reader: rill_reader_free() closes and frees it. EOF when
 * every writer of the pipe has closed it. The fd's O_NONBLOCK is set on
 * the epoll backend and cleared on io_uring, in the open file description
 * that other holders of it share, as asyncio sets it. Task only: -EPERM
 * outside one. */
RILL_API int rill_connect_read_pipe(int fd, const rill_open_options *opts,
				    rill_reader **readerp);

/* A writer on fd: a pipe, FIFO, terminal, socket or regular file (written
 * at its file position). Ownership of fd passes to rill (closed on
 * rill_writer_close(), write_eof() or free); on failure the caller keeps
 * it. The caller owns the writer: rill_writer_free(). The writer's reader
 * (rill_writer_reader) is at EOF from the start. write_eof() closes the
 * pipe once the queue is sent (a pipe has no half-close). When the read
 * side is gone the connection is lost with -EPIPE (drain() and
 * wait_closed() return it), never with SIGPIPE: writes carry RWF_NOSIGNAL;
 * on a kernel that lacks it rill sets SIGPIPE to ignored
 * if the program left it at its default. Task only. */
RILL_API int rill_connect_write_pipe(int fd, const rill_open_options *opts,
				     rill_writer **writerp);

#ifdef __cplusplus
}
#endif

#endif
