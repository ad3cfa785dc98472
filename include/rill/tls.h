/* SPDX-License-Identifier: MIT */
/* rill/tls.h: TLS for streams (library rill-tls, OpenSSL 3).
 *
 * A context says how to speak TLS; connections made with it (ssl_context
 * in rill_open_options, ssl in rill_server_options, or rill_start_tls())
 * run TLS over the same io_uring recv and send path as plain streams: the
 * reader and writer calls do not change. Link rill-tls (pkg-config
 * rill-tls, CMake rill::tls) to use any of it; rill_open_options.ssl =
 * true then means "a default client context".
 *
 * Over TLS, rill_writer_can_write_eof() is false and write_eof() returns
 * -ENOTSUP; rill_writer_get_extra_info() adds "ssl_object" (SSL *),
 * "sslcontext" (rill_tls_ctx *), "peercert" (X509 *, NULL without one),
 * "peercert_subject" (const char *), "cipher" (const char *), "version"
 * (const char *, "TLSv1.3") and "alpn_protocol" (const char *, NULL if
 * none was agreed).
 *
 * The peer's close_notify is answered at once, as asyncio's SSL transport
 * does: the reader sees EOF, and the connection closes as if
 * rill_writer_close() had been called (queued data first), whether or not
 * the application ever closes it.
 */
#ifndef RILL_TLS_H
#define RILL_TLS_H

#include <stdbool.h>

#include "rill/common.h"
#include "rill/stream.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct rill_tls_options {
	size_t size;		/* set by RILL_TLS_OPTIONS_INIT */
	/* Certificate chain and key (PEM): a server's, or a client's for
	 * client-certificate authentication. */
	const char *cert_file;
	const char *key_file;
	/* Trust these instead of the system store (which honours
	 * SSL_CERT_FILE and SSL_CERT_DIR). */
	const char *ca_file;
	const char *ca_dir;
	/* Server: require a client certificate signed by ca_file/ca_dir. */
	bool verify_client;
	/* Client: do not verify the server at all. For tests only. */
	bool insecure;
	/* ALPN protocols in preference order ("h2", "http/1.1"). */
	const char *const *alpn;
	size_t nalpn;
} rill_tls_options;

#define RILL_TLS_OPTIONS_INIT RILL__INIT(rill_tls_options)
#ifndef __cplusplus
#define RILL_TLS_OPTIONS(...) RILL__TEMP(rill_tls_options, __VA_ARGS__)
#endif

typedef struct rill_tls_ctx rill_tls_ctx;

/* Makes ssl= work in the core library. Linking rill-tls does it already
 * (a constructor); call it where a linker might drop an unused rill-tls. */
RILL_API void rill_tls_init(void);

/* A client context: TLS 1.2 or later, the peer verified against the
 * system trust store (or ca_file/ca_dir) and its name checked, sessions
 * resumed per server name. opts may be NULL for the default. The caller
 * owns it (rill_tls_ctx_free); connections keep it alive as they need.
 * Returns 0, -EINVAL, -E2BIG (see rill/common.h), -ENOMEM or RILL_ETLS
 * (rill_tls_last_error() says what OpenSSL refused, e.g. an unreadable CA
 * file). */
RILL_API int rill_tls_ctx_new_client(const rill_tls_options *opts,
				     rill_tls_ctx **ctxp);

/* A server context from cert_file and key_file (both required). */
RILL_API int rill_tls_ctx_new_server(const rill_tls_options *opts,
				     rill_tls_ctx **ctxp);

/* Drops the caller's reference; the context lives on while connections
 * use it. A second call for the same context is a misuse: rill aborts
 * with a message naming it. NULL is ignored. */
RILL_API void rill_tls_ctx_free(rill_tls_ctx *ctx);

/* The OpenSSL reason behind this thread's last RILL_ETLS* code, or "". */
RILL_API const char *rill_tls_last_error(void);

typedef struct rill_tls_timeouts {
	size_t size;		/* set by RILL_TLS_TIMEOUTS_INIT */
	rill_time handshake;	/* 0: 60 s; RILL_ETLS_HANDSHAKE_TIMEOUT
				 * (the task's deadline: -ETIMEDOUT) */
	rill_time shutdown;	/* close: wait this long for the peer's
				 * close_notify, then abort; 0: 30 s */
} rill_tls_timeouts;

#define RILL_TLS_TIMEOUTS_INIT RILL__INIT(rill_tls_timeouts)
#ifndef __cplusplus
#define RILL_TLS_TIMEOUTS(...) RILL__TEMP(rill_tls_timeouts, __VA_ARGS__)
#endif

/* asyncio's start_tls: upgrades the connection of w in place to TLS as
 * the client side with ctx (NULL: a default client context), and waits
 * for the handshake. The same reader and writer go on working, now over
 * TLS; bytes the peer sent before the upgrade and still buffered in the
 * reader are handed to TLS, not lost. server_hostname: SNI and name check;
 * "": no name check. NULL with a context that verifies the peer (ctx NULL
 * included): -EINVAL at once, with a detail, as asyncio raises ValueError
 * ("check_hostname requires server_hostname"); with an insecure context
 * NULL is allowed. Returns 0 or a RILL_ETLS* code, -ECONNRESET (the
 * connection is closing or closed, or the peer reset or closed it during
 * the handshake), RILL_ESTATE (it already runs TLS), -EINVAL, -ENOMEM,
 * -ECANCELED, -ETIMEDOUT (the task's deadline; only the handshake timeout
 * above gives RILL_ETLS_HANDSHAKE_TIMEOUT), or -EPERM outside a task. */
RILL_API int rill_start_tls(rill_writer *w, rill_tls_ctx *ctx,
			    const char *server_hostname,
			    const rill_tls_timeouts *timeouts);

/* As rill_start_tls() for the server side, with a server context. */
RILL_API int rill_start_tls_server(rill_writer *w, rill_tls_ctx *ctx,
				   const rill_tls_timeouts *timeouts);

#ifdef __cplusplus
}
#endif

#endif
