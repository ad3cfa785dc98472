/* SPDX-License-Identifier: MIT */
/* streams/plain.c: the plain transport, what a connection runs until TLS
 * (tls/transport.c) replaces it: received bytes go to the reader as they
 * are, and the writer's queued chunks are sent as they are, without a
 * copy. The stream code reaches it through struct rill__transport only.
 */
#include "streams/internal.h"

static void plain_on_data(struct rill__conn *c, const char *p, size_t n)
{
	rill__reader_on_data(c, p, n);
}

static char *plain_lend(struct rill__conn *c, size_t *n)
{
	return rill__reader_lend(&c->reader, n);
}

static void plain_landed(struct rill__conn *c, char *p, size_t n)
{
	(void)p;
	rill__reader_landed(&c->reader, n);
}

static void plain_on_eof(struct rill__conn *c)
{
	rill_reader_feed_eof(&c->reader);	/* half-close: writer stays */
}

static size_t plain_prepare(struct rill__conn *c, struct iovec *iov, size_t max)
{
	return rill__writer_iov(&c->writer, iov, max);
}

static void plain_sent(struct rill__conn *c, size_t n)
{
	rill__writer_consume(&c->writer, n);
}

static bool plain_pending(struct rill__conn *c)
{
	return c->writer.qlen != 0;
}

static bool plain_can_write_eof(struct rill__conn *c)
{
	(void)c;
	return true;
}

const struct rill__transport rill__plain_transport = {
	.on_data = plain_on_data,
	.lend = plain_lend,
	.landed = plain_landed,
	.on_eof = plain_on_eof,
	.prepare = plain_prepare,
	.sent = plain_sent,
	.pending = plain_pending,
	.can_write_eof = plain_can_write_eof,
};
