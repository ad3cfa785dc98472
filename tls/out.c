/* SPDX-License-Identifier: MIT */
/* tls/out.c: a TLS connection's output: the records OpenSSL writes, kept
 * in blocks until the kernel has taken them.
 *
 * OpenSSL writes into a BIO (the sink) that appends to a list of blocks;
 * the writer sends straight out of them, and a block whose bytes are all
 * sent goes back at once. A block never moves, so a send in flight can
 * point into it while records are appended behind. An idle connection
 * thus holds no output memory at all, where a BIO pair keeps its whole
 * buffer (256 KiB) from the first handshake message on.
 *
 * An output that starts empty starts with a small block: a handshake
 * flight or a short answer fits, and a thousand handshakes in progress do
 * not hold 32 KiB each. Blocks after it are large. Sent blocks go to a
 * small pool per thread and size (connections live on their loop's
 * thread) instead of free(): a bulk stream takes its blocks back from
 * there, so the steady state allocates nothing per record.
 */
#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "tls/tls.h"

/* The two sizes of block (one allocation each). Large: two records (16 KiB
 * and their overhead) fit, and a full output (RILL_TLS_OUT_MAX) is a
 * handful of iovecs. Small: a server's handshake flight with an EC or an
 * RSA-2048 certificate, a ticket, an alert, a short answer. */
#define RILL_TLS_BLOCK_LARGE (32 * 1024)
#define RILL_TLS_BLOCK_SMALL (4 * 1024)
/* Blocks a thread keeps for reuse, per size: 512 KiB of large ones, two
 * bulk streams' worth of output in flight, and 64 KiB of small ones. More
 * than that goes back to malloc. */
#define RILL_TLS_POOL_MAX 16

enum { SMALL, LARGE };

struct rill__tls_block {
	struct rill__tls_block *next;
	size_t head, tail;	/* [head, tail) not sent yet */
	size_t cap;		/* bytes of data */
	char data[];
};

static const size_t block_size[2] = { RILL_TLS_BLOCK_SMALL, RILL_TLS_BLOCK_LARGE };

/* ---- the pool of free blocks, per thread ---------------------------- */

static __thread struct rill__tls_block *pool[2];
static __thread unsigned pool_len[2];
static pthread_key_t pool_key;
static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static bool pool_key_ok;

/* A thread that ends (a loop's thread) frees its pool. */
static void pool_drain(void *unused)
{
	(void)unused;
	for (int k = SMALL; k <= LARGE; k++) {
		while (pool[k]) {
			struct rill__tls_block *b = pool[k];

			pool[k] = b->next;
			free(b);
		}
		pool_len[k] = 0;
	}
}

static void pool_key_init(void)
{
	pool_key_ok = pthread_key_create(&pool_key, pool_drain) == 0;
}

static struct rill__tls_block *block_get(int k)
{
	struct rill__tls_block *b = pool[k];

	if (b) {
		pool[k] = b->next;
		pool_len[k]--;
	} else if ((b = malloc(block_size[k]))) {
		b->cap = block_size[k] - offsetof(struct rill__tls_block, data);
	} else {
		return NULL;
	}
	b->next = NULL;
	b->head = b->tail = 0;
	return b;
}

static void block_put(struct rill__tls_block *b)
{
	int k = b->cap > RILL_TLS_BLOCK_SMALL ? LARGE : SMALL;

	if (pool_len[k] >= RILL_TLS_POOL_MAX) {
		free(b);
		return;
	}
	if (!pool[SMALL] && !pool[LARGE]) {
		/* The destructor must run at this thread's end. */
		pthread_once(&pool_once, pool_key_init);
		if (!pool_key_ok || pthread_setspecific(pool_key, pool) != 0) {
			free(b);
			return;
		}
	}
	b->next = pool[k];
	pool[k] = b;
	pool_len[k]++;
}

/* ---- the output ----------------------------------------------------- */

static int out_append(struct rill__tls_out *o, const char *p, size_t n)
{
	while (n) {
		struct rill__tls_block *b = o->tail;
		size_t k;

		if (!b || b->tail == b->cap) {
			if (!(b = block_get(b ? LARGE : SMALL)))
				return -ENOMEM;
			if (o->tail)
				o->tail->next = b;
			else
				o->head = b;
			o->tail = b;
		}
		k = b->cap - b->tail;
		if (k > n)
			k = n;
		memcpy(b->data + b->tail, p, k);
		b->tail += k;
		o->pending += k;
		p += k;
		n -= k;
	}
	return 0;
}

size_t rill__tls_out_iov(const struct rill__tls_out *o, struct iovec *iov, size_t max)
{
	size_t n = 0;

	for (struct rill__tls_block *b = o->head; b && n < max; b = b->next) {
		if (b->tail == b->head)
			continue;
		iov[n].iov_base = b->data + b->head;
		iov[n].iov_len = b->tail - b->head;
		n++;
	}
	return n;
}

void rill__tls_out_sent(struct rill__tls_out *o, size_t n)
{
	o->pending -= n;
	while (o->head) {
		struct rill__tls_block *b = o->head;
		size_t k = b->tail - b->head;

		if (n < k) {
			b->head += n;
			return;
		}
		n -= k;
		o->head = b->next;
		if (!o->head)
			o->tail = NULL;
		block_put(b);
	}
}

void rill__tls_out_free(struct rill__tls_out *o)
{
	rill__tls_out_sent(o, o->pending);
}

/* ---- the sink: OpenSSL's write BIO ---------------------------------- */

static BIO_METHOD *sink_method;

static int sink_write(BIO *b, const char *p, int len)
{
	struct rill__tls_out *o = BIO_get_data(b);

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return 0;
	/* Never a retry: OpenSSL's records are kept whole (the encryption
	 * loop stops at RILL_TLS_OUT_MAX); only memory can run out. */
	if (out_append(o, p, (size_t)len) < 0)
		return -1;
	return len;
}

static long sink_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct rill__tls_out *o = BIO_get_data(b);

	(void)num;
	(void)ptr;
	if (cmd == BIO_CTRL_WPENDING || cmd == BIO_CTRL_PENDING)
		return (long)o->pending;
	return cmd == BIO_CTRL_FLUSH;
}

static void sink_method_init(void)
{
	BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
				     "rill send blocks");

	if (m && (BIO_meth_set_write(m, sink_write) != 1 ||
		  BIO_meth_set_ctrl(m, sink_ctrl) != 1)) {
		BIO_meth_free(m);
		m = NULL;
	}
	sink_method = m;	/* process-wide, as OpenSSL's own methods */
}

BIO *rill__tls_out_bio(struct rill__tls_out *o)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	BIO *b;

	pthread_once(&once, sink_method_init);
	if (!sink_method || !(b = BIO_new(sink_method)))
		return NULL;
	BIO_set_data(b, o);
	BIO_set_init(b, 1);
	return b;
}
