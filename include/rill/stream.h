/* SPDX-License-Identifier: MIT */
/* rill/stream.h: asyncio Streams in C.
 *
 * open_connection() gives a (reader, writer) pair, start_server() runs a
 * callback in its own task for every accepted connection. The calls that
 * wait (read*, drain, wait_closed, connect) must run inside a task; they
 * suspend the task, not the thread. Where Python raises, rill returns a
 * negative code (see rill/error.h); the data Python attaches to
 * IncompleteReadError and LimitOverrunError is in rill_reader_error_info().
 *
 * A reader and its writer are two faces of one connection. The writer
 * owns it: rill_writer_free() releases both. A connection opened in a task
 * and not freed when that task ends is closed and freed then, with a
 * warning through the log hook (asyncio's ResourceWarning).
 */
#ifndef RILL_STREAM_H
#define RILL_STREAM_H

#include <stdbool.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "rill/common.h"
#include "rill/loop.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_reader rill_reader;
typedef struct rill_writer rill_writer;
typedef struct rill_server rill_server;
typedef struct rill_tls_ctx rill_tls_ctx;

/* A view of bytes owned by someone else; who, and for how long, is said
 * by the call that hands it out. */
typedef struct rill_bytes {
	const void *data;
	size_t len;
} rill_bytes;

/* asyncio's default limit: 64 KiB. */
#define RILL_STREAM_LIMIT_DEFAULT (64 * 1024)

/* ---- open_connection ----------------------------------------------- */

typedef struct rill_open_options {
	size_t size;		/* set by RILL_OPEN_OPTIONS_INIT */
	size_t limit;		/* reader buffer limit; 0: 64 KiB */
	int family;		/* AF_INET, AF_INET6; 0: any */
	int proto;		/* getaddrinfo proto; 0: any */
	int flags;		/* getaddrinfo flags */
	int sock;		/* adopt this connected socket (rill closes
				 * it); -1: none */
	const struct sockaddr *local_addr; /* bind before connecting */
	socklen_t local_addrlen;
	rill_time happy_eyeballs_delay;	/* RFC 8305 stagger; 0: one by one */
	int interleave;		/* families interleaved after this many of
				 * the first; 0: 1 with happy eyeballs */
	rill_time connect_timeout;	/* whole connect; 0: none */
	/* TLS (rill-tls): */
	bool ssl;		/* true: TLS with the default client context */
	rill_tls_ctx *ssl_context;	/* TLS with this context */
	const char *server_hostname;	/* SNI and name check; "": no check */
	/* TLS only (-EINVAL without): */
	rill_time ssl_handshake_timeout;	/* 0: 60 s */
	rill_time ssl_shutdown_timeout;	/* wait for the peer's close_notify
					 * after ours, then abort; 0: 30 s */
} rill_open_options;

#define RILL_OPEN_OPTIONS_INIT RILL__INIT_SOCK(rill_open_options)
#ifndef __cplusplus
/* RILL_OPEN_OPTIONS(.limit = 1024): never with .sock, which would override
 * the macro's own .sock = -1 (gcc's -Wextra warns: -Woverride-init). To
 * adopt a socket: RILL_OPEN_OPTIONS_SOCK(fd, .limit = 1024), or assign
 * .sock in a struct started from RILL_OPEN_OPTIONS_INIT. */
#define RILL_OPEN_OPTIONS(...) RILL__TEMP(rill_open_options, .sock = -1, __VA_ARGS__)
#define RILL_OPEN_OPTIONS_SOCK(...) RILL__TEMP(rill_open_options, .sock = __VA_ARGS__)
#endif

/* Connects to host:port (names resolved off the loop thread; numeric
 * addresses are not resolved) and stores the new reader and writer. opts
 * may be NULL. The caller owns the pair and frees it with
 * rill_writer_free(). Every attempt failing: that error if one attempt was
 * made, else RILL_EMULTI with rill_error_detail() listing each (and
 * rill_open_connection_attempts() giving each as a record). With a
 * happy_eyeballs_delay the next attempt starts when the delay has passed
 * or the one before it failed, whichever is first. Other
 * errors: -EINVAL, -ETIMEDOUT (connect_timeout), -ECANCELED, a name that
 * does not resolve as -ENOENT and other EAI errors as -EHOSTUNREACH, with
 * detail. Task only. */
RILL_API int rill_open_connection(const char *host, int port,
				  const rill_open_options *opts,
				  rill_reader **readerp, rill_writer **writerp);

/* As above for a Unix socket path; a path starting with '@' names an
 * abstract socket. */
RILL_API int rill_open_unix_connection(const char *path,
				       const rill_open_options *opts,
				       rill_reader **readerp,
				       rill_writer **writerp);

/* One connect attempt of an open_connection: the address tried and how
 * it ended (0: connected; -errno; -ECANCELED: stopped because another
 * attempt won, or the call was cancelled or timed out). Handed out as an
 * array, so frozen for the life of the SONAME: it gains no fields (more
 * per attempt would come through a new function). */
typedef struct rill_connect_attempt {
	struct sockaddr_storage addr;
	socklen_t addrlen;
	int error;
} rill_connect_attempt;

/* asyncio's all_errors=True: every attempt of this thread's last
 * rill_open_connection() or rill_open_unix_connection(), in the order they
 * were started, and their count in *countp (may be NULL). Empty (NULL, 0)
 * when that call made none: a sock= adoption, an argument refused, a name
 * that did not resolve. Borrowed until the next open_connection on this
 * thread: another task of the same loop may make one as soon as this task
 * waits, so read it before then (a TLS handshake is such a wait: with ssl,
 * read it after the call, knowing another task may have connected during
 * the handshake). */
RILL_API const rill_connect_attempt *rill_open_connection_attempts(size_t *countp);

/* ---- StreamReader -------------------------------------------------- */

typedef struct rill_read_error {
	size_t expected;	/* IncompleteReadError.expected; SIZE_MAX: None */
	size_t partial_len;	/* IncompleteReadError.partial length */
	size_t consumed;	/* LimitOverrunError.consumed */
} rill_read_error;

/* Every read below also returns -EINVAL for a NULL argument, and when it
 * has to wait: -ECANCELED / -ETIMEDOUT (rill/task.h) and -EPERM outside a
 * task.
 *
 * One task at a time may wait on a reader: a read from another task that
 * what is buffered answers gets it (a waiting readuntil then searches
 * again); one that would have to wait too returns -EBUSY at once
 * (asyncio's RuntimeError from _wait_for_data). */

/* read(n), n > 0: waits for at least one byte and copies up to n into buf.
 * Returns the count, 0 at EOF, or the reader's exception. Not capped by the
 * limit. n == 0 returns 0 at once. */
RILL_API ssize_t rill_reader_read(rill_reader *r, void *buf, size_t n);

/* read(-1): everything until EOF. *out is a view into the reader's buffer,
 * borrowed until the next call on this reader. Returns the length. */
RILL_API ssize_t rill_reader_read_all(rill_reader *r, rill_bytes *out);

/* readexactly(n) into buf. Returns n. EOF first: RILL_EINCOMPLETE, the
 * partial bytes copied to buf, their count in partial_len, expected = n,
 * and the buffer cleared. */
RILL_API ssize_t rill_reader_readexactly(rill_reader *r, void *buf, size_t n);

/* readuntil(separator): the data up to and including the separator, as a
 * view borrowed until the next call on this reader; returns its length.
 * RILL_ELIMIT: consumed is set and the data stays buffered.
 * RILL_EINCOMPLETE: *out is the partial (expected = SIZE_MAX), the buffer
 * is cleared. -EINVAL for an empty separator. */
RILL_API ssize_t rill_reader_readuntil(rill_reader *r, const void *sep,
				       size_t seplen, rill_bytes *out);

/* readuntil((sep1, sep2, ...)): the match that ends first wins, the
 * shorter on a tie. -EINVAL for no separator or an empty one. */
RILL_API ssize_t rill_reader_readuntil_any(rill_reader *r,
					   const rill_bytes *seps, size_t nseps,
					   rill_bytes *out);

/* readline(): a line with its "\n", as a view borrowed until the next call
 * on this reader. At EOF the partial line (0 at a clean EOF). A line
 * longer than the limit: RILL_ELIMIT, and the line is dropped (up to its
 * newline, or the whole buffer if there is none). Also the body of
 * `async for line in reader`: loop while it returns > 0. */
RILL_API ssize_t rill_reader_readline(rill_reader *r, rill_bytes *out);

/* Zero-copy: waits until at least one byte is buffered (or EOF) and shows
 * every buffered byte without consuming any. Borrowed until the next call
 * on this reader. Returns the length (0 at EOF) or the exception. */
RILL_API ssize_t rill_reader_peek(rill_reader *r, rill_bytes *out);
/* Drops n buffered bytes (n <= what peek showed). */
RILL_API void rill_reader_consume(rill_reader *r, size_t n);

/* Details of the last RILL_EINCOMPLETE / RILL_ELIMIT; borrowed. For a NULL
 * reader, a static all-zero record. */
RILL_API const rill_read_error *rill_reader_error_info(const rill_reader *r);

/* true once EOF was seen and the buffer is empty; true for NULL too. */
RILL_API bool rill_reader_at_eof(const rill_reader *r);
/* The exception set on the reader, or 0; -EINVAL for NULL. */
RILL_API int rill_reader_exception(const rill_reader *r);
/* Every later read returns err (negative), even with data buffered. */
RILL_API void rill_reader_set_exception(rill_reader *r, int err);
/* Adds bytes to the buffer as if received. Returns 0, -ENOMEM, or -EBUSY
 * on a connection's reader while its recv fills the buffer in place. */
RILL_API int rill_reader_feed_data(rill_reader *r, const void *p, size_t n);
RILL_API void rill_reader_feed_eof(rill_reader *r);
/* Buffered bytes (0 for NULL). */
RILL_API size_t rill_reader_buffered(const rill_reader *r);

/* A reader with no connection (asyncio's StreamReader()): fed by the
 * caller. limit 0: 64 KiB. Caller owns; free with rill_reader_free(). */
RILL_API int rill_reader_new(size_t limit, rill_reader **readerp);
RILL_API void rill_reader_free(rill_reader *r);

/* ---- StreamWriter -------------------------------------------------- */

/* Queues a copy of data; never blocks. The writes made before the task
 * waits leave together at the end of the loop iteration; a write finding
 * 16 KiB queued, or bytes queued for about 1 ms, sends at once what the
 * socket takes (asyncio's write() sends when it can), so a task that never
 * waits still gets its bytes out. Returns 0, -EINVAL (NULL w, or NULL data
 * with n > 0), -ENOMEM, or RILL_ESTATE after write_eof. After the
 * connection is lost (or closed) data is dropped and
 * 0 returned, as asyncio does; from the fifth such write on, each one is
 * reported through the log hook ("socket.send() raised exception."). */
RILL_API int rill_writer_write(rill_writer *w, const void *data, size_t n);
RILL_API int rill_writer_writelines(rill_writer *w, const rill_bytes *chunks,
				    size_t n);

/* Zero-copy write: data is sent from where it is and must stay valid and
 * unchanged until release(arg) is called (on the loop thread, once the
 * bytes are sent or dropped). release may be NULL. If the call fails,
 * release is never called. */
RILL_API int rill_writer_write_ref(rill_writer *w, const void *data, size_t n,
				   void (*release)(void *arg), void *arg);

/* drain(): returns at once below the high-water mark, else waits until the
 * queue is at or below the low-water mark. Returns 0, the reader's
 * exception, -ECONNRESET after the connection was lost or closed,
 * -ECANCELED, -ETIMEDOUT, -EINVAL for NULL, -EPERM when it must wait
 * outside a task. Many tasks may wait at once. */
RILL_API int rill_writer_drain(rill_writer *w);

/* set_write_buffer_limits(high, low), -1 for None: with only low, high =
 * 4 x low; with only high, low = high / 4; neither: the transport's
 * defaults, 64 KiB and 16 KiB (TLS: 512 KiB and 128 KiB, asyncio's SSL
 * watermarks, which a TLS writer also starts with).
 * -EINVAL unless high >= low >= 0, for other negative values, and for a
 * low whose 4 x low would not fit. */
RILL_API int rill_writer_set_write_buffer_limits(rill_writer *w, ssize_t high,
						 ssize_t low);
/* get_write_buffer_limits(): the marks in force, high first as for set
 * (0 and 0 for a NULL writer). */
RILL_API void rill_writer_get_write_buffer_limits(const rill_writer *w,
						  size_t *high, size_t *low);
/* Bytes queued and not yet sent (0 for NULL). */
RILL_API size_t rill_writer_get_write_buffer_size(const rill_writer *w);

/* write_eof(): shuts the write side down once the queue is sent. Returns
 * 0, or -ENOTSUP where the transport cannot (TLS). */
RILL_API int rill_writer_write_eof(rill_writer *w);
RILL_API bool rill_writer_can_write_eof(const rill_writer *w);

/* close(): idempotent, never blocks. Stops reading, sends what is queued,
 * then closes the socket. */
RILL_API void rill_writer_close(rill_writer *w);
/* Whether close() or a lost connection has begun closing; true for NULL. */
RILL_API bool rill_writer_is_closing(const rill_writer *w);
/* Waits until the socket is really closed. Repeatable. Returns 0, or the
 * error the connection was lost with (-ECONNRESET, -EPIPE, a RILL_ETLS*
 * code; RILL_ETLS_SHUTDOWN_TIMEOUT when a TLS peer did not answer our
 * close_notify within ssl_shutdown_timeout) on every call, as asyncio's
 * wait_closed() raises it; or -ECANCELED / -ETIMEDOUT, -EINVAL for NULL,
 * -EPERM when it must wait outside a task. */
RILL_API int rill_writer_wait_closed(rill_writer *w);
/* abort(): drops the queue and closes now. */
RILL_API void rill_writer_abort(rill_writer *w);

/* get_extra_info(name): "peername" and "sockname" (const struct
 * sockaddr *), "socket" (const int *), and the TLS keys of rill/tls.h.
 * Borrowed for the writer's lifetime; NULL for an unknown name. lenp, if
 * not NULL, gets the length of the value. */
RILL_API const void *rill_writer_get_extra_info(rill_writer *w, const char *name,
						size_t *lenp);

/* The reader of the same connection. */
RILL_API rill_reader *rill_writer_reader(rill_writer *w);

/* Releases the connection, reader and writer both: closes it if still
 * open (queued data is still sent), and frees it once the socket is
 * closed. w and its reader are invalid after the call.
 * Called on the writer a server callback borrows, it closes the
 * connection instead and says so through the log hook. Called again on a
 * freed writer, rill aborts with a message naming the misuse. */
RILL_API void rill_writer_free(rill_writer *w);

/* ---- sendfile ------------------------------------------------------- */

/* loop.sendfile(transport, file, offset, count): sends count bytes of the
 * regular file fd (borrowed; its file position is neither used nor moved)
 * from offset, or up to its end for count 0 or a file that ends first,
 * after what was written before the call; writes made while it runs (by
 * other tasks) go after the file. Returns when every byte has been handed
 * to the kernel, with the count sent. Zero-copy on a plain socket
 * (io_uring: SPLICE through a pipe; epoll: sendfile(2)); TLS, pipes, and
 * files the kernel will not splice are read with pread(2) and written as
 * by rill_writer_write() + drain() (do not write from other tasks then).
 * close() meanwhile lets it finish first; abort() ends it (-ECONNRESET).
 * Errors: -EINVAL (w NULL, negative offset, fd not a regular file open
 * for reading), -EBADF, RILL_ESTATE after write_eof, the connection's
 * error or -ECONNRESET, -ECANCELED / -ETIMEDOUT (with some unknown part
 * sent: close the connection), -EPERM outside a task. */
RILL_API ssize_t rill_writer_sendfile(rill_writer *w, int fd, off_t offset,
				      size_t count);

/* ---- kept writers (libevent's bufferevent_incref / decref) ----------- */

/* Takes a reference to the connection behind w, so that it outlives its
 * owner (the task that opened it, or the server callback that was handed
 * it): w and rill_writer_reader(w) stay valid until the matching
 * rill_writer_release(), and another task of the same loop may write to,
 * drain, close and read from them meanwhile. The owner's release (the
 * callback returning, rill_writer_free, the opening task ending) then
 * leaves the connection open; it is closed (with the "unclosed writer"
 * warning if nobody closed it) and freed when the last holder lets go.
 * Once the connection is lost or closed, calls on a kept writer behave
 * as on any closed one: writes are dropped, drain returns -ECONNRESET (or
 * the reader's exception), reads return EOF or the loss error. Returns w
 * (NULL for NULL). Loop thread only; keeping a freed writer aborts with a
 * message naming the misuse. */
RILL_API rill_writer *rill_writer_keep(rill_writer *w);
/* Gives back one rill_writer_keep() reference; the last holder's release
 * may free w at once: w and its reader are invalid for this holder after
 * the call. More releases than keeps abort with a message. NULL: no-op. */
RILL_API void rill_writer_release(rill_writer *w);

/* ---- start_server -------------------------------------------------- */

/* Runs in a task of its own for each connection. The reader and writer
 * are borrowed: rill frees both when the callback returns, and closes the
 * connection first if the callback left it open, saying so once through
 * the log hook (asyncio's ResourceWarning). With rill_writer_keep()
 * references out, the connection stays open and is freed when the last
 * is released instead. Return 0; a negative value is
 * the callback's exception: it is logged as an error ("Unhandled
 * exception in client_connected_cb", except -ECANCELED, which is quiet)
 * and the connection is closed. Other values are ignored. */
typedef int (*rill_client_connected_fn)(rill_reader *r, rill_writer *w,
					void *arg);

/* Tri-state options: 0 is the default, RILL_ON / RILL_OFF say otherwise. */
#define RILL_ON 1
#define RILL_OFF (-1)

typedef struct rill_server_options {
	size_t size;		/* set by RILL_SERVER_OPTIONS_INIT */
	size_t limit;		/* reader limit per connection; 0: 64 KiB */
	int family;		/* 0: every family of the host */
	int flags;		/* getaddrinfo flags */
	int sock;		/* adopt this listening socket; -1: none */
	int backlog;		/* 0: 100 */
	int reuse_address;	/* default on */
	int reuse_port;		/* default off */
	int keep_alive;		/* default off */
	int start_serving;	/* default on */
	const char *const *hosts; /* several hosts: bind each */
	size_t nhosts;
	rill_tls_ctx *ssl;	/* TLS server context (rill-tls) */
	/* TLS only (-EINVAL without), as in rill_open_options: */
	rill_time ssl_handshake_timeout;	/* 0: 60 s */
	rill_time ssl_shutdown_timeout;		/* 0: 30 s */
	/* Thread per core: N >= 1 serves on N loops, each on its own thread
	 * pinned to a CPU, each with its own SO_REUSEPORT socket on the same
	 * port; a connection's callback runs on the loop that accepted it.
	 * RILL_THREADS_PER_CPU: one loop per online CPU. 0: this loop only. */
	int threads;
	/* Unix servers (3.13's cleanup_socket): default on: close unlinks
	 * the socket file, a sock='s too, if it is still the one the server
	 * listens on (same inode); RILL_OFF leaves it. */
	int cleanup_socket;
} rill_server_options;

#define RILL_THREADS_PER_CPU (-1)

#define RILL_SERVER_OPTIONS_INIT RILL__INIT_SOCK(rill_server_options)
#ifndef __cplusplus
/* As RILL_OPEN_OPTIONS(): never with .sock; to adopt a listening socket,
 * RILL_SERVER_OPTIONS_SOCK(fd, .backlog = 511), or assign .sock in a
 * struct started from RILL_SERVER_OPTIONS_INIT. */
#define RILL_SERVER_OPTIONS(...) RILL__TEMP(rill_server_options, .sock = -1, __VA_ARGS__)
#define RILL_SERVER_OPTIONS_SOCK(...) RILL__TEMP(rill_server_options, .sock = __VA_ARGS__)
#endif

/* Listens on host:port (NULL or "": every interface, one socket per
 * family; port 0: a free port, the same one for every socket; an address
 * that fails with EADDRNOTAVAIL, a disabled family, is skipped, and
 * -EADDRNOTAVAIL comes only when none could be bound; host or port with
 * sock: -EINVAL) and calls
 * cb(reader, writer, arg) in a new task per connection. arg is borrowed
 * for the server's lifetime. The caller owns the server: rill_server_free().
 * Task only (host names are resolved off the loop thread). */
RILL_API int rill_start_server(rill_client_connected_fn cb, void *arg,
			       const char *host, int port,
			       const rill_server_options *opts,
			       rill_server **serverp);

/* As above on a Unix socket path ('@' first: abstract). A stale socket
 * file is removed first; the path is unlinked on close if still ours
 * (cleanup_socket). path and sock together: -EINVAL. */
RILL_API int rill_start_unix_server(rill_client_connected_fn cb, void *arg,
				    const char *path,
				    const rill_server_options *opts,
				    rill_server **serverp);

RILL_API size_t rill_server_nsockets(const rill_server *s);
/* The i-th listening socket's fd and bound address (borrowed). */
RILL_API int rill_server_socket(const rill_server *s, size_t i);
RILL_API const struct sockaddr *rill_server_sockname(const rill_server *s,
						     size_t i, socklen_t *lenp);
/* The port of the first socket (TCP), or 0. */
RILL_API int rill_server_port(const rill_server *s);

RILL_API bool rill_server_is_serving(const rill_server *s);
RILL_API int rill_server_start_serving(rill_server *s);
/* Serves until the server is closed by another task or callback
 * (rill_server_close(), rill_server_free()): then waits until its
 * connections have ended and returns 0. Cancelled: closes, waits the same
 * way and returns -ECANCELED. -ETIMEDOUT (the task's deadline) leaves the
 * server open. RILL_ESTATE if another task already serves forever,
 * RILL_ECLOSED if closed, -EPERM outside a task, -EINVAL for NULL. */
RILL_API int rill_server_serve_forever(rill_server *s);
/* Stops listening; open connections stay. Idempotent. Closes only this
 * process's fds: a listening socket shared with other processes (pre-fork
 * workers) goes on listening for them. */
RILL_API void rill_server_close(rill_server *s);
/* Closes (close_clients) or aborts (abort_clients) every connection. */
RILL_API void rill_server_close_clients(rill_server *s);
RILL_API void rill_server_abort_clients(rill_server *s);
/* Waits until the server is closed and every connection has ended (its
 * socket closed, its callback returned), as asyncio 3.12+; closes nothing
 * itself: after close_clients() a client that never reads keeps its
 * connection open, and this waiting, for as long as that lasts; see
 * rill_server_shutdown() for a bounded stop. Returns 0, -ECANCELED,
 * -ETIMEDOUT, or -EPERM when it must wait outside a task. */
RILL_API int rill_server_wait_closed(rill_server *s);
/* Closes, aborts the clients and frees the server once they are gone.
 * A task waiting in serve_forever() or wait_closed() on it returns first
 * (as after rill_server_close()); the server goes after that. */
RILL_API void rill_server_free(rill_server *s);

/* ---- close with a reset (libuv's uv_tcp_close_reset) ---------------- */

/* abort() that the peer sees as a reset: sets SO_LINGER to 0, so that
 * closing the socket sends RST instead of FIN (the peer's reads and
 * writes fail with ECONNRESET), then aborts as rill_writer_abort(): the
 * queue is dropped, reading stops. Meaningful on TCP; on a Unix socket it
 * aborts. Returns 0, -EINVAL for NULL, RILL_ECLOSED once the socket is
 * closed (nothing done), or setsockopt's error (then nothing is done).
 * w stays valid: free it as after rill_writer_abort(). */
RILL_API int rill_writer_abort_reset(rill_writer *w);

/* ---- shutdown with a grace period ----------------------------------- */

/* A shutdown that cannot hang on a client that stopped reading: stops
 * listening (rill_server_close), closes every connection gracefully
 * (rill_server_close_clients: queued bytes are sent first), waits up to
 * grace_ns for all of them to end, then aborts those still open
 * (rill_server_abort_clients), cancels their callbacks that are still
 * running, and waits for those callbacks to return. Returns 0 when every
 * connection ended within the grace period, else the number of
 * connections aborted (> 0; on a server with threads 1, the count being
 * the worker threads', whose callbacks see the abort but are not
 * cancelled); -EINVAL (NULL s), -EPERM
 * outside a task; -ECANCELED if the calling task was cancelled (the rest
 * is aborted then, without waiting), -ETIMEDOUT if its own deadline
 * passed. Connections kept with rill_writer_keep() are closed and
 * aborted as the others. The server is still the caller's to free. Task
 * only. */
RILL_API int rill_server_shutdown(rill_server *s, rill_time grace_ns);

/* ---- logging ------------------------------------------------------- */

enum rill_log_level { RILL_LOG_ERROR, RILL_LOG_WARNING, RILL_LOG_INFO };
typedef void (*rill_log_fn)(int level, const char *msg, void *arg);
/* Replaces the log hook (default: "rill: warning: ..." on stderr); NULL
 * restores the default. Process-wide. */
RILL_API void rill_set_log_handler(rill_log_fn fn, void *arg);

#ifdef __cplusplus
}
#endif

#endif
