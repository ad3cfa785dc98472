/* SPDX-License-Identifier: MIT */
/* rill-micro: the engine's fixed costs, measured in isolation.
 *
 *   task switch      one task calling rill_yield(): each yield is two
 *                    switches (task -> loop -> task) plus one pass of the
 *                    loop with nothing to do; reported per switch
 *   two tasks        the same with two tasks taking turns
 *   spawn + join     a task spawning an empty task and joining it
 *   submit batched   a task queueing BATCH no-op SQEs, then waiting for
 *                    all: one io_uring_enter per batch; reported per op
 *   submit single    one no-op per rill__op_wait(): one enter per op
 *
 * Each figure is the median of RUNS runs. Targets are the issue's; a MISS
 * is reported, never fatal: the exit status is 0 whenever it ran. The
 * submission rows measure io_uring's submission queue: on the epoll
 * backend (RILL_BACKEND=epoll, or io_uring refused), which has none, they
 * say so instead of running.
 *
 * Usage: rill-micro [--iterations N]
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"
#include "engine/loop.h"
#include "rill/loop.h"
#include "rill/task.h"

#define RUNS 5
/* A batch as an iteration of a busy server might submit: well under the
 * default SQ size (1024), so rill__sqe() never has to flush early. */
#define BATCH 64
#define DEFAULT_ITERATIONS 200000

static rill_loop *loop;

static rill_loop *loop_new(void)
{
	rill_loop *l;
	int ret = rill_loop_new(NULL, &l);

	if (ret < 0) {
		fprintf(stderr, "rill-micro: %s\n%s\n", rill_strerror(ret),
			rill_error_detail());
		exit(0);	/* nothing to measure here; not a failure */
	}
	return l;
}

/* Runs fn(arg) in a task of a fresh loop; returns the task's run time. */
static rill_time timed_task(rill_task_fn fn, void *arg)
{
	rill_task *t;
	rill_time t0, dt;

	loop = loop_new();
	if (rill_spawn(loop, fn, arg, &t) < 0)
		abort();
	t0 = rill_now();
	rill_task_join(t, NULL);
	dt = rill_now() - t0;
	rill_loop_free(loop);
	return dt;
}

/* ---- switches ------------------------------------------------------- */

static int yielder(void *arg)
{
	uint64_t n = *(uint64_t *)arg;

	for (uint64_t i = 0; i < n; i++)
		rill_yield();
	return 0;
}

static double run_switch(uint64_t n)
{
	return (double)timed_task(yielder, &n) / (2.0 * (double)n);
}

static int two_yielders(void *arg)
{
	uint64_t half = *(uint64_t *)arg / 2;
	rill_task *other;

	if (rill_spawn(loop, yielder, &half, &other) < 0)
		abort();
	yielder(&half);
	return rill_task_join(other, NULL);
}

static double run_switch2(uint64_t n)
{
	return (double)timed_task(two_yielders, &n) / (2.0 * (double)n);
}

/* ---- spawn + join --------------------------------------------------- */

static int empty(void *arg)
{
	(void)arg;
	return 0;
}

static int spawner(void *arg)
{
	uint64_t n = *(uint64_t *)arg;

	for (uint64_t i = 0; i < n; i++) {
		rill_task *t;

		if (rill_spawn(loop, empty, NULL, &t) < 0)
			abort();
		rill_task_join(t, NULL);
	}
	return 0;
}

static double run_spawn(uint64_t n)
{
	return (double)timed_task(spawner, &n) / (double)n;
}

/* ---- submission ----------------------------------------------------- */

struct batch {
	struct rill__op op;
	rill_task *task;
	unsigned left;
};

static void nop_done(struct rill__op *op, int res, unsigned flags)
{
	struct batch *b = rill__container_of(op, struct batch, op);

	(void)res;
	(void)flags;
	rill__op_finished(loop);
	if (--b->left == 0)
		rill__wake(b->task, 0);
}

static int batched_nops(void *arg)
{
	uint64_t batches = *(uint64_t *)arg / BATCH;
	struct batch b = { .op.complete = nop_done, .task = rill_task_current() };

	for (uint64_t i = 0; i < batches; i++) {
		struct rill__wait w = { .until = RILL_TIME_NEVER };

		for (unsigned j = 0; j < BATCH; j++) {
			struct io_uring_sqe *sqe = rill__sqe(loop);

			io_uring_prep_nop(sqe);
			io_uring_sqe_set_data(sqe, &b.op);
			rill__op_started(loop);
		}
		b.left = BATCH;
		rill__park(&w);
	}
	return 0;
}

static double run_batched(uint64_t n)
{
	uint64_t ops = n / BATCH * BATCH;

	return (double)timed_task(batched_nops, &ops) / (double)ops;
}

static int single_nops(void *arg)
{
	uint64_t n = *(uint64_t *)arg;

	for (uint64_t i = 0; i < n; i++) {
		struct io_uring_sqe *sqe = rill__sqe(loop);

		io_uring_prep_nop(sqe);
		rill__op_wait(sqe, NULL);
	}
	return 0;
}

static double run_single(uint64_t n)
{
	return (double)timed_task(single_nops, &n) / (double)n;
}

/* ---- reporting ------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static double median(double (*fn)(uint64_t), uint64_t n)
{
	double v[RUNS];

	fn(n / 10 + 1);		/* warm up: stacks, pages, caches */
	for (int i = 0; i < RUNS; i++)
		v[i] = fn(n);
	qsort(v, RUNS, sizeof(v[0]), cmp_double);
	return v[RUNS / 2];
}

static void row(const char *name, double ns, double target)
{
	if (target > 0)
		printf("%-34s %9.1f   < %-5.0f %s\n", name, ns, target,
		       ns < target ? "PASS" : "MISS");
	else
		printf("%-34s %9.1f   %-7s %s\n", name, ns, "-", "-");
}

/* Prints the backend and its features; whether loops run on io_uring. */
static bool features(void)
{
	rill_loop *l = loop_new();
	unsigned f = rill_loop_features(l);
	bool uring = rill_loop_backend(l) == RILL_BACKEND_IO_URING;

	printf("backend: %s\nfeatures:", uring ? "io_uring" : "epoll");
	for (unsigned i = 0; i < 10; i++)
		if (f & (1u << i))
			printf(" %s", rill_feature_name(1u << i));
	printf("\n");
	rill_loop_free(l);
	return uring;
}

/* A row that needs io_uring, on the epoll backend. */
static void row_needs_io_uring(const char *name)
{
	printf("%-34s %9s   %-7s %s\n", name, "-", "-",
	       "skipped: needs the io_uring backend (no SQ on epoll)");
}

#define USAGE "rill-micro [--iterations N]"

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "iterations", required_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	uint64_t n = DEFAULT_ITERATIONS;
	bool uring;
	int c;

	while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
		switch (c) {
		case 'n':
			n = (uint64_t)bench_int(USAGE, "--iterations", optarg,
						BATCH, LLONG_MAX);
			break;
		case 'h':
			bench_help(USAGE, "  --iterations N    operations per run "
				   "(default " BENCH_STR(DEFAULT_ITERATIONS) ", at least "
				   BENCH_STR(BATCH) ")\n"
				   "  -h, --help        print this and exit\n");
		default:
			bench_usage_error(USAGE);
		}
	}
	bench_no_operands(USAGE, argc, argv, optind);
	printf("rill-micro: %llu iterations, median of %d runs\n",
	       (unsigned long long)n, RUNS);
	uring = features();
	printf("%-34s %9s   %-7s %s\n", "benchmark", "ns/op", "target", "result");
	row("task switch (1 task yielding)", median(run_switch, n), 20);
	row("task switch (2 tasks yielding)", median(run_switch2, n), 20);
	row("spawn + join", median(run_spawn, n), 0);
	if (uring) {
		row("submit, batched x64 NOPs", median(run_batched, n), 60);
		row("submit, 1 NOP per enter", median(run_single, n), 0);
	} else {
		row_needs_io_uring("submit, batched x64 NOPs");
		row_needs_io_uring("submit, 1 NOP per enter");
	}
	return 0;
}
