/* SPDX-License-Identifier: MIT */
/* Integrity soak, CI size: hundreds of connections of checksummed echo with random lengths, pauses, half-closes and resets; every byte of a cleanly ended connection arrives intact and in order. */
#include <criterion/criterion.h>
#include <criterion/logging.h>

#include "bench/soak.h"
#include "tests/helpers.h"

struct soak_case {
	struct soak_config cfg;
	struct soak_stats st;
	int fds_before, fds_after;
	double secs;
};

static int soak_task(void *arg)
{
	struct soak_case *sc = arg;
	rill_time t0 = rill_now();
	int err;

	sc->fds_before = count_fds();
	err = soak_run(&sc->cfg, &sc->st);
	sc->fds_after = settle_fds(sc->fds_before);
	sc->secs = (double)(rill_now() - t0) / 1e9;
	return err;
}

static void soak_check(struct soak_case *sc, const char *name)
{
	struct soak_stats *st = &sc->st;

	run_task(soak_task, sc);
	printf("%s: %.1f s, %" PRIuFAST64 " connections (%" PRIuFAST64 " clean, %" PRIuFAST64
	       " half-closed, %" PRIuFAST64 " reset by the client, %" PRIuFAST64
	       " reset by the server), %" PRIuFAST64 " messages / %" PRIuFAST64
	       " bytes echoed intact, server checked %" PRIuFAST64 " messages / %" PRIuFAST64
	       " bytes, %" PRIuFAST64 " failures\n", name, sc->secs,
	       atomic_load(&st->conns), atomic_load(&st->clean), atomic_load(&st->half),
	       atomic_load(&st->client_resets), atomic_load(&st->server_resets),
	       atomic_load(&st->msgs), atomic_load(&st->bytes),
	       atomic_load(&st->server_msgs), atomic_load(&st->server_bytes),
	       atomic_load(&st->failures));
	fflush(stdout);
	cr_assert_eq(atomic_load(&st->failures), 0, "first failure: %s", st->first);
	cr_assert_eq(atomic_load(&st->conns), sc->cfg.conns);
	cr_assert_eq(atomic_load(&st->clean) + atomic_load(&st->half) +
		     atomic_load(&st->client_resets) + atomic_load(&st->server_resets),
		     sc->cfg.conns, "every connection ended the way its mode says");
	/* Every mode happened, so every ending was exercised. */
	cr_assert(atomic_load(&st->clean) && atomic_load(&st->half) &&
		  atomic_load(&st->client_resets) && atomic_load(&st->server_resets));
	cr_assert_geq(atomic_load(&st->server_msgs), atomic_load(&st->msgs));
	cr_assert_eq(sc->fds_after, sc->fds_before, "fds leaked: %d -> %d",
		     sc->fds_before, sc->fds_after);
}

Test(reliability_integrity, two_hundred_connections_echo_intact, .timeout = 60)
{
	static struct soak_case sc = {
		.cfg = {
			.conns = 200, .concurrency = 200, .max_msgs = 400,
			.max_len = 8192, .big_len = 256 * 1024, .max_depth = 4,
			.pause_ms = 5, .pct_half = 20, .pct_client_reset = 15,
			.pct_server_reset = 15, .seed = 1,
		},
	};

	soak_check(&sc, "integrity");
}

/* The same with tiny messages and deep pipelining: many messages per
 * recv, messages split across recvs at every offset. */
Test(reliability_integrity, small_messages_deep_pipelining, .timeout = 60)
{
	static struct soak_case sc = {
		.cfg = {
			.conns = 200, .concurrency = 100, .max_msgs = 2000,
			.max_len = 64, .big_len = 0, .max_depth = 32,
			.pause_ms = 2, .pct_half = 25, .pct_client_reset = 15,
			.pct_server_reset = 10, .seed = 2,
		},
	};

	soak_check(&sc, "integrity-small");
}
