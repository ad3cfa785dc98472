/* SPDX-License-Identifier: MIT */
/* libFuzzer target: streams/rbuf.c against a naive model of CPython's StreamReader.
 *
 * The input is decoded into a limit, a set of separators, a list of reads and
 * a list of chunks that "arrive from the network". Each read runs twice: once
 * as the reader will run it, stepping the rill__parse_* decisions and feeding
 * the next chunk (or EOF, once they run out) on every NEED_MORE; once on the
 * model below, which follows CPython's loops line by line but searches byte by
 * byte, defining "the match" directly as the one that ends first, the shortest
 * on a tie. Outcomes, handed-out bytes, LimitOverrunError.consumed and the
 * buffer left behind must agree after every read, or the target aborts.
 *
 * Arrivals take turns: reserve + commit, append, and reserve + commit that
 * then lends the tail room for the next chunk, so that the reads before it
 * lands consume while the buffer is lent (and must not move it).
 *
 * Input layout (missing bytes read as 0):
 *   limit byte, separator count byte, per separator a length byte and bytes,
 *   an alphabet byte, an op count byte, two bytes per op, then chunks: a
 *   length byte and the bytes, or, with the length's top bit set, a short
 *   pattern repeated into a chunk of up to 64 KiB.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "streams/rbuf.h"

#define MAX_SEPS 6
#define MAX_OPS 24
#define MAX_CHUNKS 256
/* Enough to push the buffer past 4 x RILL__RBUF_SHRINK_FLOOR and back, while
 * keeping an execution in the milliseconds. */
#define MAX_BYTES (640 << 10)

/* A fuzzer input, consumed front to back. */
struct input {
	const uint8_t *p;
	size_t n;
};

static uint8_t take(struct input *in)
{
	if (in->n == 0)
		return 0;
	in->n--;
	return *in->p++;
}

struct chunk {
	const uint8_t *pat;	/* pattern bytes, repeated to len */
	size_t patlen, len;
};

enum op_kind { OP_UNTIL, OP_UNTIL_ONE, OP_LINE, OP_READ, OP_EXACT, OP_FEED,
	       OP_EOF, OP_KINDS };

struct op {
	enum op_kind kind;
	ssize_t n;		/* read, readexactly */
	size_t sep;		/* OP_UNTIL_ONE: which separator */
};

struct spec {
	size_t limit;
	int alpha;		/* map bytes to "ab\r\n" so separators match */
	size_t nseps, nops, nchunks;
	uint8_t sep[MAX_SEPS][4];
	size_t seplen[MAX_SEPS];
	struct op ops[MAX_OPS];
	struct chunk chunks[MAX_CHUNKS];
};

static uint8_t alpha_map(const struct spec *s, uint8_t c)
{
	return s->alpha ? (uint8_t)"ab\r\n"[c & 3] : c;
}

/* A small limit mostly, so both LIMIT paths trigger; sometimes a big one. */
static size_t decode_limit(uint8_t x)
{
	return x & 0x80 ? 1 + (size_t)(x & 0x7f) * 1024 : 1 + (size_t)(x % 24);
}

static ssize_t decode_count(uint8_t x)
{
	return x & 0x80 ? (ssize_t)(x & 0x7f) * 2048 : (ssize_t)(x % 24) - 2;
}

/* 1-3 separators of 1-4 bytes; an empty one now and then (ValueError); a
 * set of 4-6 now and then, so the heap path of rill__seps runs. */
static void decode_seps(struct spec *s, struct input *in)
{
	uint8_t x = take(in);

	s->nseps = 1 + x % 3 + ((x & 0xf0) == 0xf0 ? 3 : 0);
	for (size_t i = 0; i < s->nseps; i++) {
		uint8_t l = take(in);

		s->seplen[i] = l % 16 == 15 ? 0 : 1 + l % 4;
		for (size_t j = 0; j < s->seplen[i]; j++)
			s->sep[i][j] = take(in);
	}
}

static void decode_ops(struct spec *s, struct input *in)
{
	s->nops = 1 + take(in) % MAX_OPS;
	for (size_t i = 0; i < s->nops; i++) {
		uint8_t k = take(in), a = take(in);

		s->ops[i].kind = (enum op_kind)(k % OP_KINDS);
		s->ops[i].n = decode_count(a);
		s->ops[i].sep = a % s->nseps;
	}
}

static void decode_chunks(struct spec *s, struct input *in)
{
	size_t total = 0;

	s->nchunks = 0;
	while (in->n && s->nchunks < MAX_CHUNKS && total < MAX_BYTES) {
		struct chunk *c = &s->chunks[s->nchunks++];
		uint8_t x = take(in);

		c->patlen = x & 0x80 ? 1 + (x & 7) : 1 + x % 32;
		c->len = x & 0x80 ? (size_t)(1 + ((x >> 3) & 15)) * 4096 : c->patlen;
		if (c->patlen > in->n)
			c->patlen = in->n;
		if (c->patlen == 0)
			c->patlen = 0, c->len = 0; /* input ran out */
		c->pat = in->p;
		total += c->len;
		in->p += c->patlen;
		in->n -= c->patlen;
	}
}

static void decode(struct spec *s, const uint8_t *data, size_t size)
{
	struct input in = { data, size };

	s->limit = decode_limit(take(&in));
	decode_seps(s, &in);
	s->alpha = take(&in) & 1;
	for (size_t i = 0; i < s->nseps; i++)
		for (size_t j = 0; j < s->seplen[i]; j++)
			s->sep[i][j] = alpha_map(s, s->sep[i][j]);
	decode_ops(s, &in);
	decode_chunks(s, &in);
}

/* Byte i of chunk c, as both sides see it. */
static uint8_t chunk_byte(const struct spec *s, const struct chunk *c, size_t i)
{
	return alpha_map(s, c->pat[i % c->patlen]);
}

/* ---- What one read produced, on either side. ---- */

enum outcome { OUT_OK, OUT_LIMIT, OUT_INCOMPLETE, OUT_VALUE };

struct result {
	enum outcome out;
	size_t consumed;	/* OUT_LIMIT */
	uint8_t *data;		/* OUT_OK, OUT_INCOMPLETE: malloc'd copy */
	size_t len;
};

static void result_set(struct result *r, enum outcome out, const void *p,
		       size_t len)
{
	r->out = out;
	r->len = len;
	r->data = malloc(len ? len : 1);
	if (!r->data)
		abort();
	if (len)
		memcpy(r->data, p, len);
}

/* ---- The model: a plain array and CPython's loops, searched naively. ---- */

struct model {
	uint8_t *d;
	size_t len, cap;
	int eof;
	size_t next;	/* next chunk to arrive */
};

static void model_room(struct model *m, size_t n)
{
	while (m->cap - m->len < n) {
		m->cap = m->cap ? 2 * m->cap : 64;
		m->d = realloc(m->d, m->cap);
		if (!m->d)
			abort();
	}
}

static void model_drop(struct model *m, size_t n)
{
	if (n == 0)
		return; /* d may still be NULL */
	memmove(m->d, m->d + n, m->len - n);
	m->len -= n;
}

/* _wait_for_data(): the next chunk arrives, or EOF once none is left. */
static void model_wait(struct model *m, const struct spec *s)
{
	const struct chunk *c;

	if (m->next == s->nchunks) {
		m->eof = 1;
		return;
	}
	c = &s->chunks[m->next++];
	model_room(m, c->len);
	for (size_t i = 0; i < c->len; i++)
		m->d[m->len++] = chunk_byte(s, c, i);
	if (c->len == 0)
		model_wait(m, s); /* feed_data(b"") wakes nobody */
}

static int model_match_at(const struct model *m, const uint8_t *sep,
			  size_t len, size_t end, size_t offset)
{
	if (len > end || end - len < offset)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (m->d[end - len + i] != sep[i])
			return 0;
	return 1;
}

/* The match in d[offset, len) that ends first; the shortest on a tie. */
static int model_find(const struct model *m, const uint8_t (*sep)[4],
		      const size_t *seplen, size_t nseps, size_t offset,
		      size_t *start, size_t *end)
{
	for (size_t e = offset + 1; e <= m->len; e++) {
		size_t best = SIZE_MAX;

		for (size_t i = 0; i < nseps; i++)
			if (seplen[i] < best &&
			    model_match_at(m, sep[i], seplen[i], e, offset))
				best = seplen[i];
		if (best != SIZE_MAX) {
			*start = e - best;
			*end = e;
			return 1;
		}
	}
	return 0;
}

static void model_readuntil(struct model *m, const struct spec *s,
			    const uint8_t (*sep)[4], const size_t *seplen,
			    size_t nseps, struct result *r)
{
	size_t lo = SIZE_MAX, hi = 0, offset = 0, start, end;

	for (size_t i = 0; i < nseps; i++) {
		lo = seplen[i] < lo ? seplen[i] : lo;
		hi = seplen[i] > hi ? seplen[i] : hi;
	}
	if (nseps == 0 || lo == 0)
		return result_set(r, OUT_VALUE, NULL, 0);
	for (;;) {
		if (m->len - offset >= lo) {
			if (model_find(m, sep, seplen, nseps, offset, &start, &end))
				break;
			offset = m->len + 1 > hi ? m->len + 1 - hi : 0;
			if (offset > s->limit) {
				result_set(r, OUT_LIMIT, NULL, 0);
				r->consumed = offset;
				return;
			}
		}
		if (m->eof) {
			result_set(r, OUT_INCOMPLETE, m->d, m->len);
			return model_drop(m, m->len);
		}
		model_wait(m, s);
	}
	if (start > s->limit) {
		result_set(r, OUT_LIMIT, NULL, 0);
		r->consumed = start;
		return;
	}
	result_set(r, OUT_OK, m->d, end);
	model_drop(m, end);
}

static void model_readline(struct model *m, const struct spec *s,
			   struct result *r)
{
	static const uint8_t nl[1][4] = { { '\n' } };
	static const size_t one = 1;

	model_readuntil(m, s, nl, &one, 1, r);
	if (r->out == OUT_INCOMPLETE) {
		r->out = OUT_OK; /* the partial line is the answer */
	} else if (r->out == OUT_LIMIT) {
		size_t c = r->consumed;

		model_drop(m, c < m->len && m->d[c] == '\n' ? c + 1 : m->len);
		r->out = OUT_VALUE;
	}
}

/* read(n) for n > 0, CPython's way. */
static void model_read_some(struct model *m, const struct spec *s, size_t n,
			    struct result *r)
{
	if (m->len == 0 && !m->eof)
		model_wait(m, s);
	if (n > m->len)
		n = m->len;
	result_set(r, OUT_OK, m->d, n);
	model_drop(m, n);
}

/* read(-1): CPython reads limit-sized blocks until one comes back empty.
 * The blocks are dropped once at the end rather than one by one, which would
 * be quadratic for a megabyte read with a limit of a few bytes. */
static void model_read_all(struct model *m, const struct spec *s,
			   struct result *r)
{
	size_t pos = 0, blk;

	for (;;) {
		if (pos == m->len && !m->eof)
			model_wait(m, s);
		blk = m->len - pos < s->limit ? m->len - pos : s->limit;
		if (blk == 0)
			break;
		pos += blk;
	}
	result_set(r, OUT_OK, m->d, pos);
	model_drop(m, pos);
}

static void model_read(struct model *m, const struct spec *s, ssize_t n,
		       struct result *r)
{
	if (n == 0)
		return result_set(r, OUT_OK, NULL, 0);
	if (n < 0)
		return model_read_all(m, s, r);
	model_read_some(m, s, (size_t)n, r);
}

static void model_readexactly(struct model *m, const struct spec *s,
			      ssize_t n, struct result *r)
{
	if (n < 0)
		return result_set(r, OUT_VALUE, NULL, 0);
	while (m->len < (size_t)n) {
		if (m->eof) {
			result_set(r, OUT_INCOMPLETE, m->d, m->len);
			return model_drop(m, m->len);
		}
		model_wait(m, s);
	}
	result_set(r, OUT_OK, m->d, (size_t)n);
	model_drop(m, (size_t)n);
}

/* ---- The reader as rill runs it: rbuf and the parse decisions. ---- */

struct real {
	struct rill__rbuf b;
	int eof;
	size_t next;
	uint8_t *loan;		/* tail room lent for chunk next (b.lent) */
};

static void fill_chunk(uint8_t *p, const struct spec *s, const struct chunk *c)
{
	for (size_t i = 0; i < c->len; i++)
		p[i] = chunk_byte(s, c, i);
}

/* A loan for the next chunk, as a throttled recv takes one: the reads
 * until the next arrival consume while it is out (streams/reader.c). */
static void real_lend(struct real *x, const struct spec *s)
{
	if (x->next == s->nchunks || s->chunks[x->next].len == 0)
		return;
	x->loan = (uint8_t *)rill__rbuf_reserve(&x->b, s->chunks[x->next].len);
	if (!x->loan)
		abort();
	x->b.lent = true;
}

/* One arrival, through reserve + commit, append, and a loan landing in
 * turn, as the engine may do any of them. */
static void real_wait(struct real *x, const struct spec *s)
{
	const struct chunk *c;
	uint8_t *p;

	if (x->next == s->nchunks) {
		x->eof = 1;
		return;
	}
	c = &s->chunks[x->next++];
	if (x->loan) {
		fill_chunk(x->loan, s, c);
		x->loan = NULL;
		x->b.lent = false;
		rill__rbuf_commit(&x->b, c->len);
		return;
	}
	if (c->len == 0)
		return real_wait(x, s);
	p = x->next % 3 ? (uint8_t *)rill__rbuf_reserve(&x->b, c->len)
			: malloc(c->len);
	if (!p)
		abort();
	fill_chunk(p, s, c);
	if (x->next % 3) {
		rill__rbuf_commit(&x->b, c->len);
		if (x->next % 3 == 2)
			real_lend(x, s);
		return;
	}
	if (rill__rbuf_append(&x->b, p, c->len) < 0)
		abort();
	free(p);
}

/* Steps one parse until it stops asking for data. */
static struct rill__parse real_step(struct real *x, const struct spec *s,
				    const struct op *op,
				    const struct rill__seps *seps)
{
	size_t off = 0;

	for (;;) {
		struct rill__parse r;

		if (op->kind == OP_READ)
			r = rill__parse_read(&x->b, op->n, x->eof);
		else if (op->kind == OP_EXACT)
			r = rill__parse_readexactly(&x->b, op->n, x->eof);
		else
			r = rill__parse_readuntil(&x->b, seps, s->limit, x->eof,
						  &off);
		if (r.kind != RILL__PARSE_NEED_MORE)
			return r;
		if (x->eof)
			abort(); /* NEED_MORE at EOF would hang the reader */
		real_wait(x, s);
	}
}

/* Turns a decision into what the reader hands out and drops. */
static void real_apply(struct real *x, const struct op *op,
		       struct rill__parse p, struct result *r)
{
	const char *d = rill__rbuf_peek(&x->b);

	switch (p.kind) {
	case RILL__PARSE_DONE:
		result_set(r, OUT_OK, d, p.n);
		return rill__rbuf_consume(&x->b, p.n);
	case RILL__PARSE_LIMIT:
		result_set(r, op->kind == OP_LINE ? OUT_VALUE : OUT_LIMIT, NULL, 0);
		r->consumed = p.n;
		if (op->kind == OP_LINE)
			rill__rbuf_consume(&x->b,
				rill__readline_overrun_drop(&x->b, p.n));
		return;
	case RILL__PARSE_INCOMPLETE:
		if (p.n != rill__rbuf_len(&x->b))
			abort();
		result_set(r, op->kind == OP_LINE ? OUT_OK : OUT_INCOMPLETE, d, p.n);
		return rill__rbuf_clear(&x->b);
	default:
		return result_set(r, OUT_VALUE, NULL, 0);
	}
}

static void real_run(struct real *x, const struct spec *s, const struct op *op,
		     struct result *r)
{
	static const char nl = '\n';
	const void *p[MAX_SEPS];
	size_t first = op->kind == OP_UNTIL_ONE ? op->sep : 0;
	size_t n = op->kind == OP_UNTIL ? s->nseps : 1;
	struct rill__seps seps;

	for (size_t i = 0; i < n; i++)
		p[i] = s->sep[first + i];
	if (op->kind == OP_LINE)
		rill__seps_init(&seps, (const void *[]){ &nl }, &(size_t){ 1 }, 1);
	else
		rill__seps_init(&seps, p, s->seplen + first, n);
	real_apply(x, op, real_step(x, s, op, &seps), r);
	rill__seps_free(&seps);
}

/* ---- Checks. ---- */

static void check_same(const struct result *a, const struct result *b)
{
	if (a->out != b->out)
		abort();
	if (a->out == OUT_LIMIT && a->consumed != b->consumed)
		abort();
	if (a->len != b->len || memcmp(a->data, b->data, a->len) != 0)
		abort();
}

static void check_state(const struct real *x, const struct model *m)
{
	const struct rill__rbuf *b = &x->b;
	size_t len = rill__rbuf_len(b);

	/* An empty buffer starts over at 0, except while lent (it must not
	 * move then). */
	if (b->start > b->end || b->end > b->cap || (len == 0 && b->start && !b->lent))
		abort();
	if (len != m->len || x->eof != m->eof || x->next != m->next)
		abort();
	if (len && memcmp(rill__rbuf_peek(b), m->d, len) != 0)
		abort();
}

static void model_run(struct model *m, const struct spec *s,
		      const struct op *op, struct result *r)
{
	size_t first = op->kind == OP_UNTIL_ONE ? op->sep : 0;
	size_t n = op->kind == OP_UNTIL ? s->nseps : 1;

	switch (op->kind) {
	case OP_LINE:
		return model_readline(m, s, r);
	case OP_READ:
		return model_read(m, s, op->n, r);
	case OP_EXACT:
		return model_readexactly(m, s, op->n, r);
	default:
		return model_readuntil(m, s, s->sep + first, s->seplen + first,
				       n, r);
	}
}

/* OP_FEED: a chunk arrives before anyone reads; OP_EOF: the peer closes. */
static void run_arrival(struct real *x, struct model *m, const struct spec *s,
			enum op_kind k)
{
	if (x->eof)
		return;
	if (k == OP_EOF) {
		x->eof = m->eof = 1;
		return;
	}
	real_wait(x, s);
	model_wait(m, s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct spec s;
	struct real x = { .eof = 0, .next = 0 };
	struct model m = { 0 };

	decode(&s, data, size);
	rill__rbuf_init(&x.b);
	for (size_t i = 0; i < s.nops; i++) {
		const struct op *op = &s.ops[i];
		struct result a = { 0 }, b = { 0 };

		if (op->kind == OP_FEED || op->kind == OP_EOF) {
			run_arrival(&x, &m, &s, op->kind);
		} else {
			real_run(&x, &s, op, &a);
			model_run(&m, &s, op, &b);
			check_same(&a, &b);
			free(a.data);
			free(b.data);
		}
		check_state(&x, &m);
	}
	rill__rbuf_free(&x.b);
	free(m.d);
	return 0;
}
