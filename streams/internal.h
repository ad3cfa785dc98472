/* SPDX-License-Identifier: MIT */
/* streams/internal.h: the connection object behind a reader and a writer. */
#ifndef RILL_STREAMS_INTERNAL_H
#define RILL_STREAMS_INTERNAL_H

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include "engine/internal.h"
#include "engine/io.h"
#include "rill/stream.h"
#include "streams/rbuf.h"

/* Chunks gathered into one sendmsg. 64 covers a writelines of many small
 * pieces. The writer holds room for RILL_WRITE_IOV_INLINE of them, which
 * covers the usual queue (small writes share one chunk); a send that
 * gathers more takes an array of RILL_WRITE_IOV_MAX from malloc for its
 * flight, so an idle connection does not carry 1 KiB of iovecs. */
#define RILL_WRITE_IOV_MAX 64
#define RILL_WRITE_IOV_INLINE 4

struct rill_reader {
	struct rill__rbuf buf;
	size_t limit;
	bool eof;
	bool paused;		/* recv stopped: buffer above 2 x limit */
	bool behind;		/* paused since the buffer was last empty */
	bool pinned;		/* a view into buf is out: do not move buf */
	bool raced;		/* another task read while one waited */
	int exception;
	size_t consume_later;	/* bytes of the view handed out last */
	char *retired;		/* old buffer memory a view may point into */
	struct rill__wait *waiter;
	rill_read_error info;
	struct rill__conn *conn; /* NULL: a standalone reader */
};

/* One piece of queued output: [off, len) of data is still to be sent. */
struct rill__chunk {
	const char *data;
	size_t len, off;
	char *owned;		/* copy chunk: rill's memory, capacity cap */
	size_t cap;
	void (*release)(void *arg);	/* reference chunk */
	void *arg;
};

/* Queue slots in the writer itself: small writes share one chunk, so an
 * echo's queue holds one or two; a longer queue moves to malloc'ed slots
 * (8, then doubling) and keeps them. */
#define RILL_WRITE_Q_INLINE 2

struct rill_writer {
	struct rill__chunk *q;	/* ring of chunks: q_inline or malloc'ed */
	struct rill__chunk q_inline[RILL_WRITE_Q_INLINE];
	size_t qhead, qlen, qcap;
	size_t buffered;	/* bytes queued, not yet sent */
	size_t wire;		/* bytes the transport holds unsent (TLS records) */
	size_t high, low;
	size_t high_default;	/* the transport's: 64 KiB plain, 512 KiB TLS */
	bool paused;		/* above high, not yet back to low */
	bool eof_requested, eof_done;
	bool sending;		/* one send in flight: two could reorder */
	struct iovec iov[RILL_WRITE_IOV_INLINE];
	struct iovec *iov_big;	/* the send in flight's, when it has more */
	struct rill__send send;
	struct rill__deferred flush;
	struct rill__waitq drainers;
	struct rill__waitq closers;	/* wait_closed() waiters */
	/* Woken when the queue is empty with no send in flight (sent, or
	 * dropped with the connection): start_tls waits for that. */
	struct rill__waitq flushed;
	/* writer_push(): the next write sends at once from this many bytes
	 * queued, or from this coarse-clock time (0: not started). */
	size_t push_bytes;
	uint64_t push_at;
	/* rill_writer_sendfile() owns the socket (streams/sendfile.c):
	 * writes queue behind the file and are flushed after it. */
	bool in_sendfile;
};

struct rill__conn;

/* A socket's address as getpeername() or getsockname() gives it: in place
 * up to an IPv6 address, in big (malloc'ed) when longer (a Unix path), so
 * a TCP connection does not carry two 128-byte sockaddr_storage. */
struct rill__sockname {
	union {
		struct sockaddr sa;
		struct sockaddr_in6 in6;
	} small;
	struct sockaddr_storage *big;
	socklen_t len;		/* 0: unknown */
};

/* What lies between the socket and the reader and writer: plain bytes, or
 * TLS (installed by rill-tls). The stream code calls these and never asks
 * which transport it has. */
struct rill__transport {
	/* Bytes from the socket, in order. */
	void (*on_data)(struct rill__conn *c, const char *p, size_t n);
	/* Memory a throttled recv may fill in place (*n bytes at most), or
	 * NULL; landed() then gets it back with the n bytes that came, which
	 * count as on_data's (0: none came). See rill__recv.lend. Both may be
	 * NULL. The plain transport lends the reader's tail room. */
	char *(*lend)(struct rill__conn *c, size_t *n);
	void (*landed)(struct rill__conn *c, char *p, size_t n);
	/* The peer closed its side. */
	void (*on_eof)(struct rill__conn *c);
	/* Fills up to max iovecs with the bytes to send next; returns how
	 * many (0: nothing to send). They stay valid until sent(). */
	size_t (*prepare)(struct rill__conn *c, struct iovec *iov, size_t max);
	/* n bytes of what prepare() gave went out. */
	void (*sent)(struct rill__conn *c, size_t n);
	bool (*pending)(struct rill__conn *c);
	/* close() with the queue sent: last words (TLS close_notify); may be
	 * NULL. Whatever it queues is sent before the socket closes. */
	void (*shutdown)(struct rill__conn *c);
	bool (*can_write_eof)(struct rill__conn *c);
	/* get_extra_info() keys of the transport, or NULL. */
	const void *(*extra_info)(struct rill__conn *c, const char *name, size_t *lenp);
	/* The connection is being freed. */
	void (*destroy)(struct rill__conn *c);
	/* The connection was lost (err < 0: a recv or send error, 0: an
	 * abort) before the transport saw an end of its own: a TLS handshake
	 * in progress ends with it. May be NULL. */
	void (*lost)(struct rill__conn *c, int err);
	/* After shutdown: true while the transport waits for the peer's last
	 * words (TLS close_notify); the socket stays open and receiving until
	 * then, or until the connection is lost. May be NULL. */
	bool (*linger)(struct rill__conn *c);
};

/* Bytes as they are (streams/plain.c): what every connection starts with. */
RILL_SPI extern const struct rill__transport rill__plain_transport;

#define RILL__CONN_LIVE 0x636f6e6eu	/* "conn" */
#define RILL__CONN_DEAD 0x64656164u	/* "dead" */

struct rill__conn {
	rill_loop *loop;
	uint32_t magic;		/* RILL__CONN_LIVE until freed */
	int fd;
	const struct rill__transport *tp;
	void *tp_data;
	const struct rill__transport *lender;	/* its memory is lent to recv */
	bool shut_down;		/* tp->shutdown() has run */
	struct rill_reader reader;
	struct rill_writer writer;
	struct rill__recv recv;
	bool closing;		/* close() or abort() called */
	bool lost;		/* connection_lost: no more I/O */
	bool fd_closed;
	bool released;		/* every holder gave the handles back */
	bool borrowed;		/* a server callback holds the handles */
	bool warned;
	int lost_err;		/* the error the connection was lost with */
	unsigned lost_writes;	/* writes dropped since it was lost */
	struct rill__resource res;	/* owned by the task that opened it */
	struct rill__sockname peer, local;
	int fd_info;		/* "socket" extra info */
	struct rill_server *server;
	struct rill__list server_link;
	/* rill_writer_keep(): holders besides the owner (the task that opened
	 * it, or the server callback); memory goes when both are done. */
	unsigned keeps;
	bool owner_released;	/* the owner gave its reference back */
	bool keeps_seen;	/* kept once: the warning names the holder */
	rill_task *handler;	/* a server callback running on it, or NULL */
	/* Pipes, terminals, files (streams/pipe.c): */
	bool pipe;		/* read/write, not recv/send; write_eof closes */
	bool reader_owns;	/* rill_reader_free() releases it */
};

/* Creates a connection for a connected socket (ownership passes to it) and
 * starts receiving. Returns NULL on ENOMEM (fd untouched then). */
struct rill__conn *rill__conn_new(rill_loop *loop, int fd, size_t limit);
/* As rill__conn_new for any fd, with RILL__CONN_* flags. */
#define RILL__CONN_PIPE 1u	/* not a socket: read(2)/write(2) */
#define RILL__CONN_REGULAR 2u	/* a regular file (epoll: always ready) */
#define RILL__CONN_NO_READ 4u	/* write only: no recv, reader at EOF */
struct rill__conn *rill__conn_new_fd(rill_loop *loop, int fd, size_t limit,
				     unsigned flags);
/* A pipe's connection for fd (streams/pipe.c), owned by the caller and
 * tracked by no task; NULL on error (fd left open). */
struct rill__conn *rill__pipe_conn(int fd, size_t limit, bool write_only);
/* The user hands the connection back; warn: say so if it was unclosed. */
void rill__conn_release(struct rill__conn *c, bool warn);
/* The connection is gone (err < 0: fatal error, 0: closed). */
RILL_SPI void rill__conn_lost(struct rill__conn *c, int err);
/* Closes the fd once nothing is in flight on it. */
RILL_SPI void rill__conn_maybe_close(struct rill__conn *c);

/* Reader side, fed by the connection. */
void rill__reader_init(rill_reader *r, size_t limit, struct rill__conn *c);
void rill__reader_destroy(rill_reader *r);
void rill__reader_on_data(void *ctx, const char *p, size_t n);
void rill__reader_wake(rill_reader *r);

/* Writer side. */
void rill__writer_init(rill_writer *w);
void rill__writer_destroy(rill_writer *w);
void rill__writer_drop_queue(rill_writer *w);
void rill__writer_wake_all(rill_writer *w);

static inline struct rill__conn *rill__writer_conn(rill_writer *w)
{
	return rill__container_of(w, struct rill__conn, writer);
}

/* ---- for transports (rill-tls is a separate library) -------------- */

/* The bytes of the writer's first queued chunk (0: queue empty), and
 * dropping n of them once a transport took them. */
RILL_SPI size_t rill__writer_peek(rill_writer *w, const char **p);
RILL_SPI void rill__writer_consume(rill_writer *w, size_t n);
/* The queued chunks, up to max of them, as iovecs (what the plain
 * transport sends); returns how many. They stay valid until consumed. */
size_t rill__writer_iov(rill_writer *w, struct iovec *iov, size_t max);
/* A new transport's default watermarks: high, and low = high / 4, as
 * asyncio's transports set them (start_tls gets a fresh transport). */
RILL_SPI void rill__writer_default_limits(rill_writer *w, size_t high);
/* The transport holds n bytes not yet sent: they count for drain(). */
RILL_SPI void rill__writer_set_wire(rill_writer *w, size_t n);
/* Something to send (handshake records): flush at the end of the
 * iteration. */
RILL_SPI void rill__writer_kick(rill_writer *w);
/* Room for at least n more bytes at the end of the reader's buffer, for a
 * transport that produces them in place (TLS decrypts into it): *room says
 * how many fit. NULL on ENOMEM. Nothing is buffered until
 * rill__reader_commit(), which then acts as rill_reader_feed_data() of
 * those bytes (wakes the reader, pauses reading above 2 x limit). The
 * pointer is valid until that commit or the next call on the reader. */
RILL_SPI char *rill__reader_reserve(rill_reader *r, size_t n, size_t *room);
RILL_SPI void rill__reader_commit(rill_reader *r, size_t n);
/* The reader's tail room for a recv in flight to fill (*n bytes at most),
 * NULL when none can be had; until rill__reader_landed() says how many
 * bytes landed there (0: none), the buffer stays put. */
char *rill__reader_lend(rill_reader *r, size_t *n);
void rill__reader_landed(rill_reader *r, size_t n);
/* Installs tp on c; the bytes the reader still holds are handed to
 * tp->on_data (start_tls: they were the peer's first TLS bytes). */
RILL_SPI void rill__conn_set_transport(struct rill__conn *c,
				       const struct rill__transport *tp, void *data);

/* Set by rill-tls when it is linked: how open_connection, start_server
 * and start_tls reach it. */
struct rill__tls_hooks {
	/* Runs TLS on c as a client and waits for the handshake (task). */
	int (*client)(struct rill__conn *c, rill_tls_ctx *ctx,
		      const char *server_hostname, rill_time handshake_timeout,
		      rill_time shutdown_timeout);
	int (*server)(struct rill__conn *c, rill_tls_ctx *ctx,
		      rill_time handshake_timeout, rill_time shutdown_timeout);
	rill_tls_ctx *(*ctx_ref)(rill_tls_ctx *ctx);
	void (*ctx_unref)(rill_tls_ctx *ctx);
};
RILL_SPI void rill__tls_register(const struct rill__tls_hooks *hooks);
extern const struct rill__tls_hooks *rill__tls;

/* Server bookkeeping when one of its connections is freed. */
void rill__server_conn_gone(struct rill_server *s, struct rill__conn *c);

/* ---- copy chunks kept for reuse (streams/spare.c) ------------------ */

/* Chunks up to this size are kept after they are sent; bigger ones go back
 * to malloc so that one large write does not pin memory. */
#define RILL_SPARE_MAX (64 * 1024)
/* A kept chunk of at least n bytes (its capacity into *cap), or NULL. */
char *rill__spare_take(size_t n, size_t *cap);
/* Keeps mem (cap bytes, from malloc) for a later take, or frees it. */
void rill__spare_give(char *mem, size_t cap);
/* The same for readers' buffers of RILL__RBUF_MIN_CAP bytes. */
char *rill__spare_rbuf_take(void);
void rill__spare_rbuf_give(char *mem);

#endif
