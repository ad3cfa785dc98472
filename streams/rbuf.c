/* SPDX-License-Identifier: MIT */
/* streams/rbuf.c: the reader's byte buffer and CPython's parsing decisions. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "streams/rbuf.h"

#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

void rill__rbuf_init(struct rill__rbuf *b)
{
	b->data = NULL;
	b->start = b->end = b->cap = 0;
	b->lent = false;
}

void rill__rbuf_free(struct rill__rbuf *b)
{
	free(b->data);
	rill__rbuf_init(b);
}

/* Moves the buffered bytes to offset 0. */
static void rbuf_compact(struct rill__rbuf *b)
{
	size_t len = rill__rbuf_len(b);

	if (b->start == 0)
		return;
	memmove(b->data, b->data + b->start, len);
	b->start = 0;
	b->end = len;
}

/* The capacity to grow to for `need` bytes: doubling keeps the total copy
 * cost linear in the bytes appended. 0 when need cannot be met. */
static size_t rbuf_grown_cap(size_t cap, size_t need)
{
	size_t c = cap < RILL__RBUF_MIN_CAP ? RILL__RBUF_MIN_CAP : cap;

	while (c < need) {
		if (c > SIZE_MAX / 2)
			return need;
		c *= 2;
	}
	return c;
}

/* Moves the buffered bytes into a new allocation of at least `need` bytes.
 * Only the live bytes are copied, not the consumed prefix. */
static int rbuf_grow(struct rill__rbuf *b, size_t need)
{
	size_t len = rill__rbuf_len(b);
	size_t cap = rbuf_grown_cap(b->cap, need);
	char *p = malloc(cap);

	if (!p)
		return -ENOMEM;
	if (len)
		memcpy(p, b->data + b->start, len);
	free(b->data);
	b->data = p;
	b->start = 0;
	b->end = len;
	b->cap = cap;
	return 0;
}

char *rill__rbuf_reserve(struct rill__rbuf *b, size_t n)
{
	size_t len = rill__rbuf_len(b);

	assert(!b->lent);
	if (b->data && b->cap - b->end >= n)
		return b->data + b->end;
	if (n > SIZE_MAX - len)
		return NULL;
	/* Compact only when the move costs no more than the space it wins. */
	if (b->data && b->start >= len && b->cap - len >= n) {
		rbuf_compact(b);
		return b->data + b->end;
	}
	if (rbuf_grow(b, len + n) < 0)
		return NULL;
	return b->data + b->end;
}

void rill__rbuf_commit(struct rill__rbuf *b, size_t n)
{
	assert(n <= rill__rbuf_tailroom(b));
	b->end += n;
}

int rill__rbuf_append(struct rill__rbuf *b, const void *p, size_t n)
{
	char *dst;

	if (n == 0)
		return 0;
	dst = rill__rbuf_reserve(b, n);
	if (!dst)
		return -ENOMEM;
	memcpy(dst, p, n);
	rill__rbuf_commit(b, n);
	return 0;
}

/* Gives back most of a big buffer that drained: see RILL__RBUF_SHRINK_FLOOR.
 * The new capacity is at least twice the content, so the next append does not
 * immediately grow it again. */
static void rbuf_maybe_shrink(struct rill__rbuf *b)
{
	size_t len = rill__rbuf_len(b), cap = RILL__RBUF_SHRINK_FLOOR;
	char *p;

	if (b->cap <= 4 * (size_t)RILL__RBUF_SHRINK_FLOOR || len > b->cap / 4)
		return;
	while (cap < 2 * len)
		cap *= 2;
	rbuf_compact(b);
	p = realloc(b->data, cap);
	if (!p)
		return; /* keep the big one; nothing is lost */
	b->data = p;
	b->cap = cap;
}

void rill__rbuf_consume(struct rill__rbuf *b, size_t n)
{
	assert(n <= rill__rbuf_len(b));
	b->start += n;
	if (b->lent)
		return;
	if (b->start == b->end)
		b->start = b->end = 0;
	rbuf_maybe_shrink(b);
}

void rill__rbuf_clear(struct rill__rbuf *b)
{
	rill__rbuf_consume(b, rill__rbuf_len(b));
}

/* Insertion sort by length: stable like Python's sorted(), and sets are a
 * handful of separators, so the quadratic worst case never matters. */
static void seps_sort(struct rill__sep *v, size_t n)
{
	for (size_t i = 1; i < n; i++) {
		struct rill__sep x = v[i];
		size_t j = i;

		for (; j > 0 && v[j - 1].len > x.len; j--)
			v[j] = v[j - 1];
		v[j] = x;
	}
}

int rill__seps_init(struct rill__seps *s, const void *const *sep,
		    const size_t *len, size_t n)
{
	struct rill__sep *v = s->small;

	s->heap = NULL;
	s->n = s->min_len = s->max_len = 0;
	if (n == 0)
		return -EINVAL;
	if (n > RILL__SEPS_SMALL) {
		v = s->heap = calloc(n, sizeof(*v));
		if (!v)
			return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++)
		v[i] = (struct rill__sep){ .p = sep[i], .len = len[i] };
	seps_sort(v, n);
	s->n = n;
	s->min_len = v[0].len;
	s->max_len = v[n - 1].len;
	return s->min_len == 0 ? -EINVAL : 0;
}

void rill__seps_free(struct rill__seps *s)
{
	free(s->heap);
	s->heap = NULL;
	s->n = s->min_len = s->max_len = 0;
}

static struct rill__parse parse_result(enum rill__parse_kind kind, size_t n)
{
	return (struct rill__parse){ .kind = kind, .n = n };
}

/* Finds, in buf[offset, len), the match that ends first; on a tie the earlier
 * (shorter) separator wins, since only a strictly earlier end replaces the
 * best. Once a match is known, later separators are only searched for an end
 * before it, so a found match bounds the remaining scans. Returns 0 when no
 * separator occurs. */
static int seps_find(const char *buf, size_t len, size_t offset,
		     const struct rill__seps *s, size_t *start, size_t *end)
{
	const struct rill__sep *v = rill__seps_get(s);
	size_t stop = len; /* matches must end at or before stop */
	int found = 0;

	for (size_t i = 0; i < s->n; i++) {
		const char *p;

		if (stop - offset < v[i].len)
			continue;
		p = memmem(buf + offset, stop - offset, v[i].p, v[i].len);
		if (!p)
			continue;
		*start = (size_t)(p - buf);
		*end = *start + v[i].len;
		stop = *end - 1; /* >= offset: a match ends past offset */
		found = 1;
	}
	return found;
}

struct rill__parse rill__parse_readuntil(const struct rill__rbuf *b,
					 const struct rill__seps *s,
					 size_t limit, int eof, size_t *offset)
{
	size_t len = rill__rbuf_len(b), start, end;

	if (s->n == 0 || s->min_len == 0)
		return parse_result(RILL__PARSE_INVALID, 0);
	assert(*offset <= len);
	if (len - *offset >= s->min_len) {
		if (seps_find(rill__rbuf_peek(b), len, *offset, s, &start, &end)) {
			if (start > limit)
				return parse_result(RILL__PARSE_LIMIT, start);
			return parse_result(RILL__PARSE_DONE, end);
		}
		/* The last max_len - 1 bytes may begin a separator. */
		*offset = len + 1 > s->max_len ? len + 1 - s->max_len : 0;
		if (*offset > limit)
			return parse_result(RILL__PARSE_LIMIT, *offset);
	}
	if (eof)
		return parse_result(RILL__PARSE_INCOMPLETE, len);
	return parse_result(RILL__PARSE_NEED_MORE, 0);
}

struct rill__parse rill__parse_readexactly(const struct rill__rbuf *b,
					   ssize_t n, int eof)
{
	size_t len = rill__rbuf_len(b);

	if (n < 0)
		return parse_result(RILL__PARSE_INVALID, 0);
	if (len >= (size_t)n)
		return parse_result(RILL__PARSE_DONE, (size_t)n);
	if (eof)
		return parse_result(RILL__PARSE_INCOMPLETE, len);
	return parse_result(RILL__PARSE_NEED_MORE, 0);
}

struct rill__parse rill__parse_read(const struct rill__rbuf *b, ssize_t n,
				    int eof)
{
	size_t len = rill__rbuf_len(b);

	if (n == 0)
		return parse_result(RILL__PARSE_DONE, 0);
	if (n < 0)
		return eof ? parse_result(RILL__PARSE_DONE, len)
			   : parse_result(RILL__PARSE_NEED_MORE, 0);
	if (len == 0 && !eof)
		return parse_result(RILL__PARSE_NEED_MORE, 0);
	return parse_result(RILL__PARSE_DONE, len < (size_t)n ? len : (size_t)n);
}

size_t rill__readline_overrun_drop(const struct rill__rbuf *b,
				   size_t consumed)
{
	size_t len = rill__rbuf_len(b);

	if (consumed < len && rill__rbuf_peek(b)[consumed] == '\n')
		return consumed + 1;
	return len;
}
