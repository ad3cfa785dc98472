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

/* ---- subprocesses ------------------------------------------------------ */

typedef struct rill_process rill_process;

/* What a child's stdin, stdout or stderr is (asyncio's None, PIPE,
 * DEVNULL, STDOUT). */
enum rill_stdio {
	RILL_STDIO_INHERIT = 0,	/* the parent's own fd (None) */
	RILL_STDIO_PIPE = 1,	/* a pipe: rill_process_stdin/stdout/stderr */
	RILL_STDIO_DEVNULL = 2,	/* /dev/null */
	RILL_STDIO_STDOUT = 3,	/* stderr only: into wherever stdout goes */
};

typedef struct rill_process_options {
	size_t size;		/* set by RILL_PROCESS_OPTIONS_INIT */
	int stdin_mode;		/* enum rill_stdio; 0: inherit */
	int stdout_mode;
	int stderr_mode;
	/* The child's environment, "NAME=value" strings ending with NULL;
	 * NULL: this process's environ. The program is looked up in this
	 * process's PATH either way (posix_spawnp). Borrowed for the call. */
	const char *const *env;
	const char *cwd;	/* the child's working directory; NULL: ours */
	size_t limit;		/* limit of the stdout/stderr readers; 0: 64 KiB */
} rill_process_options;

#define RILL_PROCESS_OPTIONS_INIT RILL__INIT(rill_process_options)
#ifndef __cplusplus
#define RILL_PROCESS_OPTIONS(...) RILL__TEMP(rill_process_options, __VA_ARGS__)
#endif

/* create_subprocess_exec(): starts argv[0] (looked up in PATH when it has
 * no '/') with the arguments argv (NULL-terminated, borrowed for the
 * call). The child gets only its stdin, stdout and stderr: every other fd
 * is closed in it, its signal mask is empty and SIGPIPE and SIGXFSZ are
 * at their defaults. opts may be NULL (everything inherited). A program
 * that cannot be started is an error of this call: -ENOENT, -EACCES, ...
 * (with detail). Caller owns *procp: rill_process_free(). No SIGCHLD
 * handler is installed: the exit is watched through a pidfd (Linux 5.4+).
 * Task only (-EPERM). */
RILL_API int rill_create_subprocess_exec(const char *const argv[],
					 const rill_process_options *opts,
					 rill_process **procp);

/* create_subprocess_shell(): as above for /bin/sh -c cmd. */
RILL_API int rill_create_subprocess_shell(const char *cmd,
					  const rill_process_options *opts,
					  rill_process **procp);

/* The child's pid (0 for NULL). */
RILL_API pid_t rill_process_pid(const rill_process *p);

/* The pipes of RILL_STDIO_PIPE, NULL otherwise: borrowed, rill frees them
 * with the process (never rill_writer_free / rill_reader_free them;
 * rill_writer_close() and write_eof() on stdin are fine). */
RILL_API rill_writer *rill_process_stdin(rill_process *p);
RILL_API rill_reader *rill_process_stdout(rill_process *p);
RILL_API rill_reader *rill_process_stderr(rill_process *p);

/* returncode: false while the child has not been waited for; else true
 * and *rcp (may be NULL) the exit status, or -N after a death by signal
 * N, as asyncio's Process.returncode. */
RILL_API bool rill_process_returncode(const rill_process *p, int *rcp);

/* wait(): suspends the task until the child exits and stores its
 * returncode in *rcp (may be NULL). Returns 0, or -ECANCELED /
 * -ETIMEDOUT (the child runs on; wait again later), -EINVAL, -EPERM
 * outside a task. Any number of tasks may wait at once. As in asyncio,
 * wait() with stdout or stderr a pipe that nobody reads can deadlock
 * when the child fills the pipe: use communicate() then. */
RILL_API int rill_process_wait(rill_process *p, int *rcp);

/* communicate(input): writes the n bytes of input (may be NULL, n 0) to
 * stdin and closes it (when stdin is a pipe; input without one is
 * -EINVAL), reads stdout and stderr (those that are pipes) to EOF at the
 * same time, then waits for the child. *out and *err (each may be NULL)
 * get what was read, as views borrowed until the next call on that reader
 * or rill_process_free(); { NULL, 0 } for a stream that is not a pipe. The
 * output is held in memory whole, as asyncio's is. A child that stops
 * reading stdin early is not an error (EPIPE is ignored, as asyncio does).
 * Stores the returncode in *rcp (may be NULL) and returns 0; or returns
 * -ECANCELED / -ETIMEDOUT (the child runs on, and so do the reads and the
 * feed begun, until the pipes end; a later communicate() is -EBUSY until
 * then), a read's error, -EINVAL, -EPERM outside a task. */
RILL_API int rill_process_communicate(rill_process *p, const void *input,
				      size_t n, rill_bytes *out, rill_bytes *err,
				      int *rcp);

/* send_signal(sig), terminate() (SIGTERM), kill() (SIGKILL). Returns 0;
 * 0 without sending once the child has been waited for (its pid may be
 * another process's by then: the signal goes through the pidfd, which
 * cannot hit one); -EINVAL for NULL or a bad signal number. */
RILL_API int rill_process_send_signal(rill_process *p, int sig);
RILL_API int rill_process_terminate(rill_process *p);
RILL_API int rill_process_kill(rill_process *p);

/* Frees the process and its pipes (closing them). A child still running
 * is killed (SIGKILL), as asyncio's subprocess transport close() does,
 * and reaped in the background by a task of the loop, so that it leaves
 * no zombie. Must not be called while a task waits on p. NULL is a
 * no-op. */
RILL_API void rill_process_free(rill_process *p);

#ifdef __cplusplus
}
#endif

#endif
