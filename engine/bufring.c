/* SPDX-License-Identifier: MIT */
/* engine/bufring.c: provided-buffer rings for recv.
 *
 * The kernel picks a buffer from the ring for each recv; rill copies the
 * bytes into the reader's own buffer as soon as the completion arrives and
 * hands the ring buffer straight back. So no connection ever holds a ring
 * buffer between completions, and a slow reader cannot starve the others:
 * its backlog lives in its own reader buffer, bounded by flow control.
 *
 * liburing 2.3 has no io_uring_setup_buf_ring(): the ring memory is mapped
 * here and registered with io_uring_register_buf_ring().
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>

#include "engine/loop.h"

int rill__bufring_init(rill_loop *loop, struct rill__bufring *r,
		       unsigned count, unsigned size, uint16_t bgid, bool inc)
{
	struct io_uring_buf_reg reg = { 0 };
	size_t ring_len = count * sizeof(struct io_uring_buf);
	int ret;

	*r = (struct rill__bufring){ .count = count, .size = size,
				     .mask = count - 1, .bgid = bgid, .inc = inc };
	r->br = mmap(NULL, ring_len, PROT_READ | PROT_WRITE,
		     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (r->br == MAP_FAILED)
		return -ENOMEM;
	r->mem = mmap(NULL, (size_t)count * size, PROT_READ | PROT_WRITE,
		      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (r->mem == MAP_FAILED) {
		ret = -ENOMEM;
		goto err_ring;
	}
	if (inc && !(r->offset = calloc(count, sizeof(*r->offset)))) {
		ret = -ENOMEM;
		goto err_mem;
	}
	reg.ring_addr = (uintptr_t)r->br;
	reg.ring_entries = count;
	reg.bgid = bgid;
	reg.pad = inc ? IOU_PBUF_RING_INC : 0;
	ret = io_uring_register_buf_ring(&loop->ring, &reg, 0);
	if (ret < 0)
		goto err_off;
	io_uring_buf_ring_init(r->br);
	for (unsigned i = 0; i < count; i++)
		io_uring_buf_ring_add(r->br, r->mem + (size_t)i * size, size, i,
				      r->mask, i);
	io_uring_buf_ring_advance(r->br, count);
	return 0;
err_off:
	free(r->offset);
err_mem:
	munmap(r->mem, (size_t)count * size);
err_ring:
	munmap(r->br, ring_len);
	r->br = NULL;
	return ret;
}

void rill__bufring_exit(rill_loop *loop, struct rill__bufring *r)
{
	if (!r->br)
		return;
	if (loop)	/* NULL: the ring is already gone */
		io_uring_unregister_buf_ring(&loop->ring, r->bgid);
	munmap(r->mem, (size_t)r->count * r->size);
	munmap(r->br, r->count * sizeof(struct io_uring_buf));
	free(r->offset);
	r->br = NULL;
}

void rill__bufring_recycle(struct rill__bufring *r, unsigned bid)
{
	if (r->inc)
		r->offset[bid] = 0;
	io_uring_buf_ring_add(r->br, r->mem + (size_t)bid * r->size, r->size,
			      (unsigned short)bid, r->mask, (int)r->pending);
	r->pending++;
}

/* Publishes recycled buffers to the kernel: one store-release per batch of
 * completions rather than one per buffer. */
void rill__bufring_flush(struct rill__bufring *r)
{
	if (r->pending) {
		io_uring_buf_ring_advance(r->br, (int)r->pending);
		r->pending = 0;
	}
}

/* Incremental consumption: the kernel keeps filling the same buffer at a
 * growing offset and says so with IORING_CQE_F_BUF_MORE; only a CQE
 * without it ends the buffer. */
static void take_inc(struct rill__bufring *r, unsigned bid, int res,
		     unsigned flags, rill__data_fn fn, void *ctx)
{
	if (res)
		fn(ctx, rill__buf_addr(r, bid), (size_t)res);
	if (flags & IORING_CQE_F_BUF_MORE)
		r->offset[bid] += (uint32_t)res;
	else
		rill__bufring_recycle(r, bid);
}

/* The kernel takes buffers from the ring strictly in ring order, and
 * completions are handled in the order they were posted, so r->head (our
 * view of the kernel's head) says which slots a completion used. Every
 * recycled buffer goes in at the tail; since buffers are only recycled
 * after their completion was handled, the slots the tail overwrites are
 * always ones already read. A bundle fills several buffers from consecutive
 * slots, whose ids are read back from the ring entries. */
static unsigned slot_bid(const struct rill__bufring *r, unsigned pos)
{
	return r->br->bufs[pos & r->mask].bid;
}

static void take_slots(struct rill__bufring *r, unsigned bid, int res,
		       rill__data_fn fn, void *ctx)
{
	size_t left = (size_t)res;
	unsigned nbufs = res > (int)r->size ? (unsigned)((left + r->size - 1) / r->size) : 1;
	unsigned ids[64];

	if (rill__unlikely(slot_bid(r, r->head) != bid)) {
		/* Not at the head we expected: resynchronise on the slot
		 * that holds bid, so one surprise cannot corrupt the rest. */
		for (unsigned i = 1; i < r->count; i++)
			if (slot_bid(r, r->head + i) == bid) {
				r->head += i;
				break;
			}
	}
	while (nbufs) {
		unsigned k = nbufs < 64 ? nbufs : 64;

		/* Read the ids first: recycling writes ring slots. */
		for (unsigned i = 0; i < k; i++)
			ids[i] = slot_bid(r, r->head + i);
		r->head += k;
		nbufs -= k;
		for (unsigned i = 0; i < k; i++) {
			size_t n = left < r->size ? left : r->size;

			if (n)
				fn(ctx, r->mem + (size_t)ids[i] * r->size, n);
			rill__bufring_recycle(r, ids[i]);
			left -= n;
		}
	}
}

void rill__bufring_take(struct rill__bufring *r, int res, unsigned flags,
			rill__data_fn fn, void *ctx)
{
	unsigned bid;

	if (!(flags & IORING_CQE_F_BUFFER))
		return;
	bid = flags >> IORING_CQE_BUFFER_SHIFT;
	if (r->inc)
		take_inc(r, bid, res < 0 ? 0 : res, flags, fn, ctx);
	else
		take_slots(r, bid, res < 0 ? 0 : res, fn, ctx);
}
