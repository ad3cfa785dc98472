/* SPDX-License-Identifier: MIT */
/* tls/tls.h: rill-tls internals. */
#ifndef RILL_TLS_INTERNAL_H
#define RILL_TLS_INTERNAL_H

#include <openssl/ssl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/uio.h>

#include "rill/error.h"
#include "rill/tls.h"

struct rill__tls_session {
	char name[256];
	SSL_SESSION *sess;
};

#define RILL__TLS_CTX_LIVE 0x746c7363u	/* "tlsc" */
#define RILL__TLS_CTX_DEAD 0x64656164u	/* "dead" */

struct rill_tls_ctx {
	SSL_CTX *ssl_ctx;
	uint32_t magic;		/* RILL__TLS_CTX_LIVE until freed */
	atomic_bool caller_freed;	/* rill_tls_ctx_free() has run */
	atomic_int refs;
	bool server, verify;
	unsigned char *alpn;	/* wire form */
	size_t alpn_len;
	pthread_mutex_t lock;	/* sessions: contexts are shared by loops */
	struct rill__tls_session sessions[32];
	size_t nsessions, next_evict;
};

rill_tls_ctx *rill__tls_ctx_ref(rill_tls_ctx *ctx);
/* Drops a connection's reference. */
void rill__tls_ctx_unref(rill_tls_ctx *ctx);
rill_tls_ctx *rill__tls_ctx_of(SSL_CTX *sctx);
void rill__tls_session_resume(rill_tls_ctx *ctx, SSL *ssl, const char *name);

/* ---- output (tls/out.c) ---------------------------------------------- */

/* The records of one connection not sent yet, in blocks that never move;
 * zeroed is empty. */
struct rill__tls_block;
struct rill__tls_out {
	struct rill__tls_block *head, *tail;
	size_t pending;		/* bytes not sent yet */
};

/* A write BIO that appends to o (o must outlive it); NULL on ENOMEM. */
BIO *rill__tls_out_bio(struct rill__tls_out *o);
/* The unsent bytes, in order, as up to max iovecs; returns how many. They
 * stay valid until rill__tls_out_sent() says they went. */
size_t rill__tls_out_iov(const struct rill__tls_out *o, struct iovec *iov, size_t max);
/* The first n unsent bytes went out: their blocks go back. */
void rill__tls_out_sent(struct rill__tls_out *o, size_t n);
/* Drops what is unsent and gives all its memory back. */
void rill__tls_out_free(struct rill__tls_out *o);

/* ---- idle connections give OpenSSL's buffers back (tls/idle.c) ----- */

/* A connection's place on its thread's idle list; zeroed is off it. */
struct rill__tls_idle {
	struct rill__tls_idle *prev, *next;
	bool touched;		/* went idle again since the last sweep */
};

/* The connection has nothing in or out: it joins its thread's idle list,
 * and rill__tls_idle_release() is called for it once it stayed so through
 * a whole sweep period. Called on the loop's thread. */
void rill__tls_idle_mark(struct rill__tls_idle *e);
/* Off the list (the connection is going away). */
void rill__tls_idle_leave(struct rill__tls_idle *e);
/* Defined by the transport: frees OpenSSL's buffers if still idle. */
void rill__tls_idle_release(struct rill__tls_idle *e);

/* Set rill_tls_last_error() and return code. */
int rill__tls_error(int code, const char *what);
int rill__tls_error_str(int code, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* The rill code for a failed SSL call on ssl. */
int rill__tls_conn_error(SSL *ssl, int ssl_err);

#endif
