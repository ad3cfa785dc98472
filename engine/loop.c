/* SPDX-License-Identifier: MIT */
/* engine/loop.c: the loop: ring setup, one io_uring_enter per iteration,
 * completion dispatch, callbacks from this and other threads. An epoll
 * loop (engine/epoll.c) shares all of it but the ring: its poll step
 * takes poll_io's place. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "engine/loop.h"
#include "rill/stream.h"	/* the log levels */

/* Defaults. The SQ holds one iteration's submissions; at 1024 a loop can
 * start that many operations before a forced flush. The CQ is sized 16x:
 * multishot recvs post many CQEs per SQE, and with thousands of
 * connections a burst of completions must fit without overflowing (an
 * overflow loses nothing with IORING_FEAT_NODROP, but costs a slow path). */
/* Ring sizes. The kernel charges a ring's memory to RLIMIT_MEMLOCK (6.x
 * too, where the process lacks CAP_IPC_LOCK), 8 MiB per user by default:
 * 1024 SQEs and 16384 CQEs took 340 KiB a loop, and 24 loops filled it.
 * 256 SQEs (16 KiB) and 2048 CQEs (32 KiB) take about 60 KiB with the
 * buffer ring, so a 64-thread server fits with room to spare. 256 SQEs is
 * more than an iteration of a busy loop submits (rill__sqe() submits
 * early if not), and 8 CQEs per SQE leave room for multishot bursts; the
 * kernel keeps what overflows (IORING_FEAT_NODROP). */
#define RILL_SQ_DEFAULT 256
#define RILL_CQ_FACTOR 8
/* 512 x 16 KiB = 8 MiB of receive buffers per loop: enough for hundreds of
 * connections receiving at once, and 16 KiB lets a bulk stream move a
 * TCP segment train per completion. */
#define RILL_BUF_COUNT_DEFAULT 512
#define RILL_BUF_SIZE_DEFAULT (16 * 1024)
/* Task stacks are mapped, not committed: only touched pages cost memory.
 * 256 KiB leaves room for sanitizer builds and deep user code. */
#define RILL_STACK_DEFAULT (256 * 1024)
#define RILL_STACK_MAX ((size_t)1 << 30)

static __thread rill_loop *thread_loop;

rill_time rill_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (rill_time)ts.tv_sec * RILL_NSEC_PER_SEC + (rill_time)ts.tv_nsec;
}

rill_loop *rill_loop_current(void)
{
	return thread_loop;
}

unsigned rill_loop_features(const rill_loop *loop)
{
	return loop ? loop->features : 0;
}

int rill_loop_get_stats(const rill_loop *loop, rill_loop_stats *stats)
{
	rill__detail_clear();
	rill_loop_stats all = loop ? loop->stats : (rill_loop_stats){ 0 };
	size_t n;

	if (!loop || !stats)
		return -EINVAL;
	if (stats->size < sizeof(stats->size) || stats->size > RILL__OPTIONS_SIZE_MAX)
		return rill__set_detail(-EINVAL, "rill_loop_stats.size is %zu: start "
					"the struct from RILL_LOOP_STATS_INIT", stats->size);
	n = stats->size < sizeof(all) ? stats->size : sizeof(all);
	all.size = stats->size;
	memcpy(stats, &all, n);
	return 0;
}

/* ---- setup --------------------------------------------------------- */

/* Tries the best setup flags first and falls back one step at a time:
 * DEFER_TASKRUN (completions run only when we ask, no IPIs), then
 * COOP_TASKRUN, then plain. -EINVAL means "flag unknown": try the next. */
static int ring_setup(rill_loop *loop, unsigned sq, unsigned cq, unsigned *feat)
{
	static const struct { unsigned feature, flags; } tries[] = {
		{ RILL_FEAT_DEFER_TASKRUN,
		  IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN },
		{ RILL_FEAT_COOP_TASKRUN,
		  IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG },
		{ 0, 0 },
	};
	int ret = -EINVAL;

	for (size_t i = 0; i < sizeof(tries) / sizeof(tries[0]); i++) {
		struct io_uring_params p = { 0 };

		if (tries[i].feature && !(*feat & tries[i].feature))
			continue;
		p.flags = tries[i].flags | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
		p.cq_entries = cq;
		ret = io_uring_queue_init_params(sq, &loop->ring, &p);
		if (ret == 0) {
			*feat &= ~(RILL_FEAT_DEFER_TASKRUN | RILL_FEAT_COOP_TASKRUN);
			*feat |= tries[i].feature;
			return 0;
		}
		if (ret != -EINVAL)
			break;
	}
	return rill__uring_setup_error(ret);
}

/* The kernel rounds sq_entries up to a power of two and refuses a
 * completion queue smaller than that with EINVAL, which would otherwise
 * read as "io_uring refused here". Checked on epoll too: the same options
 * must mean the same on both backends. */
static int cq_check(const rill_loop_options *o)
{
	unsigned sq = o->sq_entries ? o->sq_entries : RILL_SQ_DEFAULT, pow2 = 1;

	while (pow2 < sq)
		pow2 <<= 1;
	if (o->cq_entries && o->cq_entries < pow2)
		return rill__set_detail(-EINVAL, "cq_entries (%u) must be at least "
					"sq_entries (%u, rounded up to a power of "
					"two: %u)", o->cq_entries, sq, pow2);
	return 0;
}

static int options_check(const rill_loop_options *o)
{
	if (o->buf_count && (o->buf_count & (o->buf_count - 1)))
		return rill__set_detail(-EINVAL, "buf_count must be a power of two");
	if (o->buf_count > 32768)
		return rill__set_detail(-EINVAL, "buf_count must be at most 32768");
	if (o->buf_size && o->buf_size < 64)
		return rill__set_detail(-EINVAL, "buf_size must be at least 64");
	if (o->stack_size && o->stack_size < 16 * 1024)
		return rill__set_detail(-EINVAL, "stack_size must be at least 16 KiB");
	/* Beyond this a stack is a mistake, and rounding it up to pages would
	 * overflow near SIZE_MAX. */
	if (o->stack_size > RILL_STACK_MAX)
		return rill__set_detail(-EINVAL, "stack_size must be at most 1 GiB");
	if (o->sq_entries > 32768)
		return rill__set_detail(-EINVAL, "sq_entries must be at most 32768");
	return cq_check(o);
}

static void wake_arm(rill_loop *loop);

/* Provided buffers; without them recv falls back to per-connection buffers
 * and multishot recv (which needs them) is off. */
static void bufs_setup(rill_loop *loop, const rill_loop_options *o)
{
	unsigned count = o->buf_count ? o->buf_count : RILL_BUF_COUNT_DEFAULT;
	unsigned size = o->buf_size ? o->buf_size : RILL_BUF_SIZE_DEFAULT;
	bool inc = loop->features & RILL_FEAT_BUF_INC;

	if (loop->features & RILL_FEAT_BUF_RING &&
	    rill__bufring_init(loop, &loop->bufs, count, size, 0, inc) == 0) {
		loop->has_bufs = true;
		/* Incremental mode hands out parts of one buffer; bundles hand
		 * out several buffers: rill uses one or the other. */
		if (inc)
			loop->features &= ~RILL_FEAT_BUNDLE;
		return;
	}
	loop->features &= ~(RILL_FEAT_BUF_RING | RILL_FEAT_MULTISHOT_RECV |
			    RILL_FEAT_BUNDLE | RILL_FEAT_BUF_INC);
}

static void loop_init_fields(rill_loop *loop, const rill_loop_options *o)
{
	loop->thread = pthread_self();
	loop->fork_gen = rill__fork_watch();
	loop->stack_size = o->stack_size ? o->stack_size : RILL_STACK_DEFAULT;
	loop->stack_size = (loop->stack_size + 4095) & ~(size_t)4095;
	rill__list_init(&loop->ready);
	rill__list_init(&loop->tasks);
	rill__list_init(&loop->finished);
	rill__list_init(&loop->deferred);
	pthread_mutex_init(&loop->ts_lock, NULL);
	loop->wake_fd = -1;
}

/* io_uring: the ring, its features and the buffer ring. */
static int uring_setup(rill_loop *loop, const rill_loop_options *o)
{
	unsigned sq, feat;
	int ret;

	feat = rill_features_probe() & ~(o->disable | rill__disabled_from_env());
	sq = o->sq_entries ? o->sq_entries : RILL_SQ_DEFAULT;
	ret = ring_setup(loop, sq, o->cq_entries ? o->cq_entries : sq * RILL_CQ_FACTOR, &feat);
	if (ret < 0)
		return ret;
	loop->features = feat;
	if (!(feat & RILL_FEAT_EXT_ARG))	/* liburing then uses a timeout SQE */
		loop->ring.features &= ~IORING_FEAT_EXT_ARG;
	if (!(feat & RILL_FEAT_RING_FD) || io_uring_register_ring_fd(&loop->ring) != 1)
		loop->features &= ~RILL_FEAT_RING_FD;
	bufs_setup(loop, o);
	return 0;
}

int rill_loop_new(const rill_loop_options *opts, rill_loop **loopp)
{
	rill__detail_clear();
	rill_loop_options copy = RILL_LOOP_OPTIONS_INIT;
	const rill_loop_options *o = &copy;
	rill_loop *loop;
	int ret;

	if (!loopp)
		return -EINVAL;
	if ((ret = rill__options_load(&copy, sizeof(copy), opts, "rill_loop_options")) < 0 ||
	    (ret = options_check(o)) < 0)
		return ret;
	if ((ret = rill__backend_choose(o->backend)) < 0)
		return ret;
	loop = calloc(1, sizeof(*loop));
	if (!loop)
		return -ENOMEM;
	loop_init_fields(loop, o);
	loop->backend = ret;
	ret = rill__epoll(loop) ? rill__ep_init(loop) : uring_setup(loop, o);
	if (ret == -ENOMEM && !rill__epoll(loop) &&
	    (ret = rill__uring_nomem(o->backend)) == RILL_BACKEND_EPOLL) {
		loop->backend = RILL_BACKEND_EPOLL;
		ret = rill__ep_init(loop);
	}
	if (ret < 0) {
		free(loop);
		return ret;
	}
	loop->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (loop->wake_fd < 0) {
		ret = -errno;
		rill_loop_free(loop);
		return ret;
	}
	if (!o->no_signal_handler)
		rill__stack_guard_install();
	wake_arm(loop);
	thread_loop = loop;
	*loopp = loop;
	return 0;
}

/* ---- submission and completion ------------------------------------- */

struct io_uring_sqe *rill__sqe(rill_loop *loop)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&loop->ring);

	if (rill__unlikely(!sqe)) {
		/* SQ full: flush it. This is the only place outside the
		 * loop's poll that enters the kernel. */
		io_uring_submit(&loop->ring);
		loop->stats.enters++;
		sqe = io_uring_get_sqe(&loop->ring);
		if (!sqe) {
			rill__log(RILL_LOG_ERROR, "no submission queue entry");
			abort();
		}
	}
	loop->stats.sqes++;
	return sqe;
}

void rill__op_started(rill_loop *loop)
{
	loop->ops_in_flight++;
}

void rill__op_finished(rill_loop *loop)
{
	loop->ops_in_flight--;
}

void rill__op_cancel(rill_loop *loop, struct rill__op *target,
		     struct rill__op *done)
{
	struct io_uring_sqe *sqe = rill__sqe(loop);

	io_uring_prep_cancel64(sqe, (uint64_t)(uintptr_t)target, 0);
	io_uring_sqe_set_data(sqe, done);
}

void rill__defer(rill_loop *loop, struct rill__deferred *d)
{
	if (rill__list_empty(&d->link))
		rill__list_add_tail(&loop->deferred, &d->link);
}

static void dispatch(struct io_uring_cqe *cqe)
{
	struct rill__op *op = io_uring_cqe_get_data(cqe);

	/* 0: a CQE nobody waits for (an ignored cancel, a no-op);
	 * LIBURING_UDATA_TIMEOUT: liburing's own wait timeout. */
	if (!op || cqe->user_data == LIBURING_UDATA_TIMEOUT)
		return;
	op->complete(op, cqe->res, cqe->flags);
}

/* Dispatches the completions that are there when it starts, not those
 * that arrive meanwhile: without DEFER_TASKRUN the kernel goes on posting
 * while we dispatch (a multishot recv fed by a fast peer), and a batch that
 * never ends would keep what the handlers queued (the cancel that pauses
 * that very recv, the tasks they woke, the timers) from ever running. */
static unsigned reap(rill_loop *loop)
{
	struct io_uring *ring = &loop->ring;
	unsigned head = *ring->cq.khead;
	unsigned n = io_uring_smp_load_acquire(ring->cq.ktail) - head;

	for (unsigned i = 0; i < n; i++)
		dispatch(&ring->cq.cqes[io_uring_cqe_index(ring, head + i,
							   ring->cq.ring_mask)]);
	io_uring_cq_advance(ring, n);
	loop->stats.cqes += n;
	return n;
}

static void run_deferred(rill_loop *loop)
{
	struct rill__list list;

	if (rill__list_empty(&loop->deferred))
		return;
	/* Take the list: an entry may defer itself again for the next round. */
	list = loop->deferred;
	list.next->prev = &list;
	list.prev->next = &list;
	rill__list_init(&loop->deferred);
	while (!rill__list_empty(&list)) {
		struct rill__deferred *d = rill__container_of(list.next,
					struct rill__deferred, link);
		rill__list_del(&d->link);
		d->fn(d);
	}
}

static void ignore_cqe(struct rill__op *op, int res, unsigned flags)
{
	(void)op;
	(void)res;
	(void)flags;
}

static struct rill__op wait_timeout_op = { ignore_cqe };

/* Waits for a CQE or ts, without IORING_FEAT_EXT_ARG. Not liburing's own
 * emulation: it queues a timeout with count = wait_nr, and under
 * DEFER_TASKRUN the late CQE of one count-completed timeout satisfies the
 * count of the next, so the loop ended up waiting with no timeout at all
 * (a hang with RILL_DISABLE=ext_arg). A pure timeout (count 0) cannot be
 * completed by other CQEs; it is removed once the wait is over so that
 * stale ones do not pile up. */
static void wait_timeout_sqe(rill_loop *loop, struct __kernel_timespec *ts)
{
	struct io_uring_sqe *sqe = rill__sqe(loop);

	io_uring_prep_timeout(sqe, ts, 0, 0);
	io_uring_sqe_set_data(sqe, &wait_timeout_op);
	io_uring_submit_and_wait(&loop->ring, 1);
	sqe = rill__sqe(loop);
	io_uring_prep_timeout_remove(sqe, (uint64_t)(uintptr_t)&wait_timeout_op, 0);
	io_uring_sqe_set_data64(sqe, 0);
}

/* An enter that failed for good (a seccomp filter installed after the
 * loop started refuses io_uring_enter): the loop cannot make progress,
 * and retrying would spin at 100% CPU, so it stops the process with the
 * cause. Transient failures (a signal, a full CQ, a timeout) are retried
 * by the next iteration. The backend choice (engine/backend.c) makes one
 * enter before any loop exists, so this is only reached in that case. */
static void enter_check(int ret)
{
	if (rill__likely(ret >= 0) || ret == -EINTR || ret == -ETIME ||
	    ret == -EAGAIN || ret == -EBUSY || ret == -ENOMEM)
		return;
	rill__log(RILL_LOG_ERROR, "io_uring_enter failed: %s; the loop cannot "
		  "go on (was io_uring refused after the loop started?)",
		  strerror(-ret));
	abort();
}

/* The one io_uring_enter of an iteration: submit what the tasks queued and
 * collect completions, waiting for one when nothing else is runnable. */
static void poll_io(rill_loop *loop, bool block)
{
	struct __kernel_timespec ts, *tsp = NULL;
	struct io_uring_cqe *cqe;
	rill_time next;

	if (block) {
		next = rill__timer_next(loop);
		if (next != RILL_TIME_NEVER) {
			rill_time now = rill_now();
			rill_time d = next > now ? next - now : 0;

			ts.tv_sec = (long long)(d / RILL_NSEC_PER_SEC);
			ts.tv_nsec = (long long)(d % RILL_NSEC_PER_SEC);
			tsp = &ts;
			block = d > 0;
		}
	}
	if (block && tsp && !(loop->ring.features & IORING_FEAT_EXT_ARG)) {
		wait_timeout_sqe(loop, tsp);
		loop->stats.enters++;
	} else if (block) {
		enter_check(io_uring_submit_and_wait_timeout(&loop->ring, &cqe,
							     1, tsp, NULL));
		loop->stats.enters++;
	} else if (io_uring_sq_ready(&loop->ring) || loop->ops_in_flight ||
		   io_uring_cq_ready(&loop->ring)) {
		enter_check(io_uring_submit_and_get_events(&loop->ring));
		loop->stats.enters++;
	}
	if (IO_URING_READ_ONCE(*loop->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
		loop->stats.cq_overflows++;
	reap(loop);
	if (loop->has_bufs)
		rill__bufring_flush(&loop->bufs);
}

/* ---- callbacks ----------------------------------------------------- */

static int cbqueue_push(struct rill__cbqueue *q, rill_callback fn, void *arg)
{
	if (q->len == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct rill__callback *v = realloc(q->v, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		q->v = v;
		q->cap = cap;
	}
	q->v[q->len++] = (struct rill__callback){ fn, arg };
	return 0;
}

/* Runs the callbacks queued so far; those they queue run next time. */
static void cbqueue_run(struct rill__cbqueue *q)
{
	struct rill__cbqueue run = *q;

	*q = (struct rill__cbqueue){ 0 };
	for (size_t i = 0; i < run.len; i++)
		run.v[i].fn(run.v[i].arg);
	if (!q->v) {
		run.len = 0;
		*q = run;	/* keep the allocation */
	} else {
		free(run.v);
	}
}

int rill_loop_call_soon(rill_loop *loop, rill_callback fn, void *arg)
{
	rill__detail_clear();
	if (!loop || !fn)
		return -EINVAL;
	return cbqueue_push(&loop->soon, fn, arg);
}

int rill_loop_call_soon_threadsafe(rill_loop *loop, rill_callback fn, void *arg)
{
	rill__detail_clear();
	uint64_t one = 1;
	int ret;

	if (!loop || !fn)
		return -EINVAL;
	pthread_mutex_lock(&loop->ts_lock);
	ret = cbqueue_push(&loop->ts_queue, fn, arg);
	/* One eventfd write per batch: the loop clears the flag before it
	 * takes the queue, so a callback queued after that writes again.
	 * Under the lock: once the loop takes the queue, a caller no longer
	 * touches the loop, which rill_loop_free() may then free (the pool's
	 * answers keep it alive only until their callback ran). */
	if (ret == 0 && !atomic_exchange(&loop->ts_signalled, 1) &&
	    write(loop->wake_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		ret = -errno;
	pthread_mutex_unlock(&loop->ts_lock);
	return ret;
}

void rill__loop_ts_run(rill_loop *loop)
{
	struct rill__cbqueue q;

	atomic_store(&loop->ts_signalled, 0);
	pthread_mutex_lock(&loop->ts_lock);
	q = loop->ts_queue;
	loop->ts_queue = (struct rill__cbqueue){ 0 };
	pthread_mutex_unlock(&loop->ts_lock);
	for (size_t i = 0; i < q.len; i++)
		q.v[i].fn(q.v[i].arg);
	free(q.v);
	rill__signals_poll(loop);
}

static void wake_done(struct rill__op *op, int res, unsigned flags)
{
	rill_loop *loop = rill__container_of(op, rill_loop, wake_op);

	(void)flags;
	loop->wake_armed = false;
	if (res == -ECANCELED)
		return;
	rill__loop_ts_run(loop);
	wake_arm(loop);
}

/* The eventfd read is not counted as in flight: a loop with nothing else
 * to do returns from rill_loop_run() even though it could be woken. */
static void wake_arm(rill_loop *loop)
{
	struct io_uring_sqe *sqe;

	if (rill__epoll(loop)) {	/* the eventfd joins the epoll set */
		rill__ep_wake_add(loop);
		return;
	}
	sqe = rill__sqe(loop);

	loop->wake_op.complete = wake_done;
	io_uring_prep_read(sqe, loop->wake_fd, &loop->wake_buf,
			   sizeof(loop->wake_buf), 0);
	io_uring_sqe_set_data(sqe, &loop->wake_op);
	loop->wake_armed = true;
}

/* ---- running ------------------------------------------------------- */

/* Runs the tasks that are ready now; tasks they wake run next iteration,
 * after I/O, so a chatty pair of tasks cannot starve the network. */
static void run_ready(rill_loop *loop)
{
	struct rill__list *end = loop->ready.prev;
	bool last = rill__list_empty(&loop->ready);

	while (!last) {
		rill_task *t = rill__container_of(loop->ready.next, rill_task,
						  ready_link);
		last = &t->ready_link == end;
		rill__list_del(&t->ready_link);
		rill__task_run(loop, t);
	}
}

static bool has_work(const rill_loop *loop)
{
	return loop->ntasks || loop->ops_in_flight || loop->heap_len ||
	       loop->soon.len || atomic_load(&((rill_loop *)loop)->ts_signalled) ||
	       !rill__list_empty(&loop->deferred);
}

/* Block only if nothing is runnable and something can still wake us: a
 * task that just ended may have been the last piece of work, or the one
 * being joined, or the last one rill_loop_free() waits for (operations of
 * no task, like a send to a peer that never reads, may never complete). */
bool rill__loop_may_block(const rill_loop *loop)
{
	return rill__list_empty(&loop->ready) && !loop->soon.len &&
	       rill__list_empty(&loop->deferred) && !loop->stopping &&
	       !(loop->until && loop->until->state == RILL__TASK_DONE) &&
	       !(loop->freeing && !loop->ntasks) && has_work(loop);
}

static void iterate(rill_loop *loop)
{
	bool block;

	/* A child of fork() made in a task, whose task returned (or waited)
	 * into the parent's loop: going on would take the parent's events. */
	if (rill__loop_forked(loop))
		rill__forked_misuse();
	loop->stats.iterations++;
	if (loop->soon.len)
		cbqueue_run(&loop->soon);
	run_ready(loop);
	/* Deferred work (write flushes, re-arms after ENOBUFS) queues SQEs
	 * that the enter below submits. */
	run_deferred(loop);
	block = rill__loop_may_block(loop);
	if (rill__epoll(loop))
		rill__ep_poll(loop, block);
	else
		poll_io(loop, block);
	if (loop->heap_len)
		rill__timers_run(loop, rill_now());
}

int rill__loop_check_fork(const rill_loop *loop, const char *call)
{
	return loop && rill__loop_forked(loop) ? rill__forked_error(call) : 0;
}

static int run_check(rill_loop *loop)
{
	if (!loop)
		return -EINVAL;
	if (rill__loop_forked(loop))
		return rill__forked_error("rill_loop_run");
	if (!pthread_equal(loop->thread, pthread_self()))
		return -EPERM;
	if (loop->running || rill__current())
		return -EBUSY;
	return 0;
}

int rill_loop_run(rill_loop *loop)
{
	rill__detail_clear();
	int err = run_check(loop);

	if (err)
		return err;
	thread_loop = loop;
	loop->running = true;
	/* A stop that came before the run makes it one iteration that does
	 * not wait, as asyncio's run_forever() after stop(). */
	do
		iterate(loop);
	while (!loop->stopping && has_work(loop));
	loop->running = false;
	loop->stopping = false;
	return 0;
}

int rill__loop_run_until(rill_loop *loop, const rill_task *t)
{
	int err = run_check(loop);

	if (err)
		return err;
	thread_loop = loop;
	loop->running = true;
	loop->until = t;
	while (t->state != RILL__TASK_DONE)
		iterate(loop);
	loop->until = NULL;
	loop->running = false;
	return 0;
}

void rill_loop_stop(rill_loop *loop)
{
	if (loop)
		loop->stopping = true;
}

/* Cancels every live task and runs the loop until all have ended, so that
 * no operation still references a task's stack when the ring goes. */
static void tasks_drain(rill_loop *loop)
{
	while (loop->ntasks) {
		struct rill__list *pos;

		for (pos = loop->tasks.next; pos != &loop->tasks; pos = pos->next) {
			rill_task *t = rill__container_of(pos, rill_task, all_link);
			if (!t->cancel_pending)
				rill_task_cancel(t);
		}
		iterate(loop);
	}
}

/* rill_loop_free() in a child of fork() on its parent's loop: closes the
 * child's copies of the loop's own fds and nothing else. No task is run,
 * no operation cancelled, no epoll_ctl made: the ring, the epoll instance
 * and the sockets are the parent's too (an EPOLL_CTL_DEL here would remove
 * the parent's registration). The memory stays: it holds the inherited
 * tasks and connections, which nothing may touch, and goes with the
 * child's exit or exec. */
static int loop_free_forked(rill_loop *loop)
{
	if (rill__epoll(loop))
		close(loop->ep.fd);
	else
		close(loop->ring.ring_fd);
	if (loop->wake_fd >= 0)
		close(loop->wake_fd);
	loop->wake_fd = -1;
	if (thread_loop == loop)
		thread_loop = NULL;
	return 0;
}

/* A server freed outside a task has stopped its acceptors, and only the
 * loop can see the stops through (a cancel's completion on io_uring, a
 * deferred call on epoll); then the listening socket is closed and the
 * server freed. Both come within a few iterations; a second at most. */
static void acceptors_settle(rill_loop *loop)
{
	rill_time until = rill_now() + RILL_NSEC_PER_SEC;

	while (loop->settling && rill_now() < until)
		iterate(loop);
}

/* The handles of ended tasks the caller still owns outlive the loop:
 * each forgets it (a join then only frees the handle). */
static void tasks_orphan(rill_loop *loop)
{
	while (!rill__list_empty(&loop->finished)) {
		rill_task *t = rill__container_of(loop->finished.next,
						  rill_task, all_link);
		rill__list_del(&t->all_link);
		t->loop = NULL;
	}
}

int rill_loop_free(rill_loop *loop)
{
	rill__detail_clear();
	if (!loop)
		return 0;
	if (!pthread_equal(loop->thread, pthread_self()))
		return rill__set_detail(-EPERM, "rill_loop_free from another thread");
	/* From a task or callback of the loop it would free the stack or
	 * the queue it runs on. */
	if (rill__loop_forked(loop))
		return loop_free_forked(loop);
	if (loop->running || rill__current())
		return rill__set_detail(-EBUSY, "rill_loop_free inside the loop's own "
					"task or callback");
	loop->freeing = true;
	tasks_drain(loop);
	rill__call_later_drop(loop);
	tasks_orphan(loop);
	acceptors_settle(loop);
	/* A resolver thread still running will call back into the loop. */
	while (atomic_load(&loop->foreign) > 0) {
		usleep(1000);
		rill__loop_ts_run(loop);
	}
	rill__signals_free(loop);
	if (loop->soon.len)
		cbqueue_run(&loop->soon);
	/* Ring first: once it is gone no recv can pick a buffer, then the
	 * buffer memory can go. */
	if (rill__epoll(loop))
		rill__ep_exit(loop);
	else
		io_uring_queue_exit(&loop->ring);
	if (loop->has_bufs)
		rill__bufring_exit(NULL, &loop->bufs);
	if (loop->wake_fd >= 0)
		close(loop->wake_fd);
	rill__stack_pool_free(loop);
	rill__graves_free(loop);
	free(loop->heap);
	free(loop->soon.v);
	free(loop->ts_queue.v);
	pthread_mutex_destroy(&loop->ts_lock);
	if (thread_loop == loop)
		thread_loop = NULL;
	free(loop);
	return 0;
}

int rill_run(rill_task_fn fn, void *arg, int *resultp)
{
	rill__detail_clear();
	rill_loop *loop;
	rill_task *t;
	int ret = rill_loop_new(NULL, &loop);

	if (ret < 0)
		return ret;
	ret = rill_spawn(loop, fn, arg, &t);
	if (ret == 0)
		ret = rill_task_join(t, resultp);
	rill_loop_free(loop);
	return ret;
}
