/* SPDX-License-Identifier: MIT */
/* tls/ctx.c: TLS contexts (OpenSSL SSL_CTX) and OpenSSL errors as rill codes. */
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/internal.h"
#include "tls/tls.h"

/* Client sessions kept for resumption, one per server name: enough for a
 * client talking to a handful of services, small enough to scan. */
#define RILL_TLS_SESSIONS 32

static __thread char last_error[512];

const char *rill_tls_last_error(void)
{
	return last_error;
}

/* Records OpenSSL's reason (its error queue, drained) behind code, for
 * rill_tls_last_error() and rill_error_detail() both. */
int rill__tls_error(int code, const char *what)
{
	unsigned long e = ERR_get_error();
	char reason[256] = "";

	if (e)
		ERR_error_string_n(e, reason, sizeof(reason));
	while (ERR_get_error())
		;
	snprintf(last_error, sizeof(last_error), "%s%s%s", what,
		 *reason ? ": " : "", reason);
	return rill__set_detail(code, "%s", last_error);
}

int rill__tls_error_str(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return rill__set_detail(code, "%s", last_error);
}

/* ---- ALPN ---------------------------------------------------------- */

/* The wire form: each protocol as a length byte and its name. */
static int alpn_encode(const rill_tls_options *o, unsigned char **out, size_t *lenp)
{
	size_t len = 0;
	unsigned char *p;

	for (size_t i = 0; i < o->nalpn; i++) {
		size_t n = o->alpn[i] ? strlen(o->alpn[i]) : 0;

		if (n == 0 || n > 255)
			return -EINVAL;
		len += 1 + n;
	}
	p = malloc(len ? len : 1);
	if (!p)
		return -ENOMEM;
	*out = p;
	*lenp = len;
	for (size_t i = 0; i < o->nalpn; i++) {
		size_t n = strlen(o->alpn[i]);

		*p++ = (unsigned char)n;
		memcpy(p, o->alpn[i], n);
		p += n;
	}
	return 0;
}

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
		       const unsigned char *in, unsigned int inlen, void *arg)
{
	rill_tls_ctx *ctx = arg;
	unsigned char *sel;

	(void)ssl;
	/* Our preference order wins, as in most servers. */
	if (SSL_select_next_proto(&sel, outlen, ctx->alpn, (unsigned)ctx->alpn_len,
				  in, inlen) != OPENSSL_NPN_NEGOTIATED)
		return SSL_TLSEXT_ERR_NOACK;
	*out = sel;
	return SSL_TLSEXT_ERR_OK;
}

/* ---- client sessions ----------------------------------------------- */

static int ctx_index = -1;
static pthread_once_t ctx_index_once = PTHREAD_ONCE_INIT;

/* Once per process: contexts may be made on several threads at once. */
static void ctx_index_init(void)
{
	ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
}

rill_tls_ctx *rill__tls_ctx_of(SSL_CTX *sctx)
{
	return SSL_CTX_get_ex_data(sctx, ctx_index);
}

/* OpenSSL hands over each new session: keep the latest per server name. */
static int session_new(SSL *ssl, SSL_SESSION *sess)
{
	rill_tls_ctx *ctx = rill__tls_ctx_of(SSL_get_SSL_CTX(ssl));
	const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
	size_t slot;

	if (!ctx || !name)
		return 0;
	pthread_mutex_lock(&ctx->lock);
	for (slot = 0; slot < ctx->nsessions; slot++)
		if (!strcmp(ctx->sessions[slot].name, name))
			break;
	if (slot == ctx->nsessions) {
		if (ctx->nsessions < RILL_TLS_SESSIONS)
			ctx->nsessions++;
		else
			slot = ctx->next_evict++ % RILL_TLS_SESSIONS;
	}
	if (ctx->sessions[slot].sess)
		SSL_SESSION_free(ctx->sessions[slot].sess);
	snprintf(ctx->sessions[slot].name, sizeof(ctx->sessions[slot].name), "%s", name);
	ctx->sessions[slot].sess = sess;
	pthread_mutex_unlock(&ctx->lock);
	return 1;	/* we keep the reference */
}

void rill__tls_session_resume(rill_tls_ctx *ctx, SSL *ssl, const char *name)
{
	if (!name || !*name)
		return;
	pthread_mutex_lock(&ctx->lock);
	for (size_t i = 0; i < ctx->nsessions; i++)
		if (!strcmp(ctx->sessions[i].name, name)) {
			SSL_set_session(ssl, ctx->sessions[i].sess);
			break;
		}
	pthread_mutex_unlock(&ctx->lock);
}

/* ---- contexts ------------------------------------------------------ */

static int ctx_alloc(const SSL_METHOD *method, bool server, rill_tls_ctx **ctxp)
{
	rill_tls_ctx *ctx = calloc(1, sizeof(*ctx));

	/* A static link may leave out the object with the constructor that
	 * hooks TLS into the streams: whoever makes a context gets it. */
	rill_tls_init();
	if (!ctx)
		return -ENOMEM;
	pthread_once(&ctx_index_once, ctx_index_init);
	ctx->ssl_ctx = SSL_CTX_new(method);
	if (!ctx->ssl_ctx) {
		free(ctx);
		return rill__tls_error(RILL_ETLS, "SSL_CTX_new");
	}
	atomic_init(&ctx->refs, 1);
	ctx->magic = RILL__TLS_CTX_LIVE;
	pthread_mutex_init(&ctx->lock, NULL);
	ctx->server = server;
	SSL_CTX_set_ex_data(ctx->ssl_ctx, ctx_index, ctx);
	SSL_CTX_set_min_proto_version(ctx->ssl_ctx, TLS1_2_VERSION);
	/* Partial writes and moving buffers: rill encrypts from its own
	 * queue, whose pieces are freed once taken. */
	SSL_CTX_set_mode(ctx->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
			 SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	/* No SSL_MODE_RELEASE_BUFFERS: it frees and makes the record
	 * buffers for every record of a bulk stream; the transport gives
	 * them back itself when the connection is idle (tls/idle.c). */
	/* Renegotiation is a classic DoS lever and TLS 1.3 has none. */
	SSL_CTX_set_options(ctx->ssl_ctx, SSL_OP_NO_RENEGOTIATION);
	*ctxp = ctx;
	return 0;
}

static int ctx_trust(rill_tls_ctx *ctx, const rill_tls_options *o)
{
	if (o->ca_file || o->ca_dir) {
		if (SSL_CTX_load_verify_locations(ctx->ssl_ctx, o->ca_file, o->ca_dir) != 1)
			return rill__tls_error(RILL_ETLS, "loading the CA file or directory");
	} else if (SSL_CTX_set_default_verify_paths(ctx->ssl_ctx) != 1) {
		return rill__tls_error(RILL_ETLS, "loading the system trust store");
	}
	return 0;
}

static int ctx_cert(rill_tls_ctx *ctx, const rill_tls_options *o)
{
	if (!o->cert_file && !o->key_file)
		return 0;
	if (!o->cert_file || !o->key_file)
		return rill__tls_error_str(-EINVAL, "cert_file and key_file go together");
	if (SSL_CTX_use_certificate_chain_file(ctx->ssl_ctx, o->cert_file) != 1)
		return rill__tls_error(RILL_ETLS, "loading the certificate chain");
	if (SSL_CTX_use_PrivateKey_file(ctx->ssl_ctx, o->key_file, SSL_FILETYPE_PEM) != 1)
		return rill__tls_error(RILL_ETLS, "loading the private key");
	if (SSL_CTX_check_private_key(ctx->ssl_ctx) != 1)
		return rill__tls_error(RILL_ETLS, "the key does not match the certificate");
	return 0;
}

static int ctx_alpn(rill_tls_ctx *ctx, const rill_tls_options *o)
{
	int err;

	if (!o->nalpn)
		return 0;
	if (!o->alpn)
		return rill__tls_error_str(-EINVAL, "alpn is NULL with nalpn > 0");
	if ((err = alpn_encode(o, &ctx->alpn, &ctx->alpn_len)) < 0)
		return rill__tls_error_str(err, "bad ALPN protocol name");
	if (ctx->server)
		SSL_CTX_set_alpn_select_cb(ctx->ssl_ctx, alpn_select, ctx);
	else if (SSL_CTX_set_alpn_protos(ctx->ssl_ctx, ctx->alpn, (unsigned)ctx->alpn_len))
		return rill__tls_error(RILL_ETLS, "setting ALPN");
	return 0;
}

/* The caller's options over the defaults (opts may be NULL). */
static int ctx_options(const rill_tls_options *opts, rill_tls_options *o)
{
	*o = (rill_tls_options)RILL_TLS_OPTIONS_INIT;
	return rill__options_load(o, sizeof(*o), opts, "rill_tls_options");
}

int rill_tls_ctx_new_client(const rill_tls_options *opts, rill_tls_ctx **ctxp)
{
	rill__detail_clear();
	rill_tls_options copy;
	const rill_tls_options *o = &copy;
	rill_tls_ctx *ctx;
	int err = ctxp ? ctx_options(opts, &copy) : -EINVAL;

	if (err < 0 || (err = ctx_alloc(TLS_client_method(), false, &ctx)) < 0)
		return err;
	ctx->verify = !o->insecure;
	SSL_CTX_set_verify(ctx->ssl_ctx, ctx->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_session_cache_mode(ctx->ssl_ctx, SSL_SESS_CACHE_CLIENT |
				       SSL_SESS_CACHE_NO_INTERNAL_STORE);
	SSL_CTX_sess_set_new_cb(ctx->ssl_ctx, session_new);
	if ((err = ctx_trust(ctx, o)) < 0 || (err = ctx_cert(ctx, o)) < 0 ||
	    (err = ctx_alpn(ctx, o)) < 0) {
		rill_tls_ctx_free(ctx);
		return err;
	}
	*ctxp = ctx;
	return 0;
}

int rill_tls_ctx_new_server(const rill_tls_options *opts, rill_tls_ctx **ctxp)
{
	rill__detail_clear();
	rill_tls_options copy;
	const rill_tls_options *o = &copy;
	rill_tls_ctx *ctx;
	int err = ctx_options(opts, &copy);

	if (err < 0)
		return err;
	if (!ctxp || !opts || !o->cert_file || !o->key_file)
		return rill__tls_error_str(-EINVAL,
			"a server context needs cert_file and key_file");
	if ((err = ctx_alloc(TLS_server_method(), true, &ctx)) < 0)
		return err;
	/* Without a session id context OpenSSL refuses to resume a session
	 * whose client certificate it verified. */
	SSL_CTX_set_session_id_context(ctx->ssl_ctx, (const unsigned char *)"rill", 4);
	if (o->verify_client) {
		SSL_CTX_set_verify(ctx->ssl_ctx, SSL_VERIFY_PEER |
				   SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
		err = ctx_trust(ctx, o);
	}
	if (err < 0 || (err = ctx_cert(ctx, o)) < 0 || (err = ctx_alpn(ctx, o)) < 0) {
		rill_tls_ctx_free(ctx);
		return err;
	}
	*ctxp = ctx;
	return 0;
}

rill_tls_ctx *rill__tls_ctx_ref(rill_tls_ctx *ctx)
{
	atomic_fetch_add(&ctx->refs, 1);
	return ctx;
}

/* Freed contexts are kept a while, as the engine keeps handles (see
 * engine/graves.c), so that a second rill_tls_ctx_free() is named rather
 * than corrupting the heap. Contexts are few and shared by loops: one
 * small process-wide graveyard. */
static void ctx_bury(rill_tls_ctx *ctx)
{
	static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	static rill_tls_ctx *graves[8];
	static unsigned next;

	ctx->magic = RILL__TLS_CTX_DEAD;
	pthread_mutex_lock(&lock);
	free(graves[next]);
	graves[next] = ctx;
	next = (next + 1) % 8;
	pthread_mutex_unlock(&lock);
}

void rill__tls_ctx_unref(rill_tls_ctx *ctx)
{
	if (atomic_fetch_sub(&ctx->refs, 1) != 1)
		return;
	for (size_t i = 0; i < ctx->nsessions; i++)
		SSL_SESSION_free(ctx->sessions[i].sess);
	SSL_CTX_free(ctx->ssl_ctx);
	pthread_mutex_destroy(&ctx->lock);
	free(ctx->alpn);
	ctx_bury(ctx);
}

void rill_tls_ctx_free(rill_tls_ctx *ctx)
{
	if (!ctx)
		return;
	if (ctx->magic != RILL__TLS_CTX_LIVE || atomic_exchange(&ctx->caller_freed, true))
		rill__misuse("rill_tls_ctx_free: the context was already freed");
	rill__tls_ctx_unref(ctx);
}

/* ---- errors of a connection ---------------------------------------- */

/* What an SSL_ERROR_SSL (or SYSCALL) of ssl means, as a rill code, with
 * the reason kept for rill_tls_last_error(). OpenSSL's error queue is
 * emptied: it is per thread, and an error left there would make the next
 * SSL call of another connection on this thread look failed. */
int rill__tls_conn_error(SSL *ssl, int ssl_err)
{
	long vr = SSL_get_verify_result(ssl);
	unsigned long e = ERR_peek_error();
	int code;

	if (vr == X509_V_ERR_HOSTNAME_MISMATCH || vr == X509_V_ERR_IP_ADDRESS_MISMATCH)
		code = rill__tls_error_str(RILL_ETLS_HOSTNAME,
			"certificate verify failed: %s", X509_verify_cert_error_string(vr));
	else if (vr != X509_V_OK)
		code = rill__tls_error_str(RILL_ETLS_VERIFY,
			"certificate verify failed: %s", X509_verify_cert_error_string(vr));
	else if (ssl_err == SSL_ERROR_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL &&
		 ERR_GET_REASON(e) == SSL_R_UNEXPECTED_EOF_WHILE_READING)
		code = rill__tls_error(RILL_ETLS_EOF, "unexpected EOF");
	else if (ssl_err == SSL_ERROR_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL &&
		 ERR_GET_REASON(e) >= SSL_AD_REASON_OFFSET)
		code = rill__tls_error(RILL_ETLS_ALERT, "alert from the peer");
	else
		code = rill__tls_error(RILL_ETLS, "TLS error");
	ERR_clear_error();
	return code;
}
