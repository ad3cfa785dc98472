/* SPDX-License-Identifier: MIT */
/* Name resolution on the thread pool: a lookup abandoned by connect_timeout or cancellation holds neither the task nor the loop, and lookups never take more than the pool's threads. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/helpers.h"

/* ---- a DNS server that never answers, in a namespace of our own ---- */

/* In a new network and mount namespace: lo up, a UDP socket on
 * 127.0.0.1:53 that reads nothing, and /etc/resolv.conf pointing at it
 * with a 3 s timeout, so every lookup of a name hangs for 3 s. Returns
 * false (with the reason in *why) where the machine does not allow it. */
static bool silent_dns(const char **why)
{
	static const char conf[] = "nameserver 127.0.0.1\noptions timeout:3 attempts:1\n";
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(53) };
	char path[] = "/tmp/rill-resolv-XXXXXX";
	int fd, u;

	if (unshare(CLONE_NEWNET | CLONE_NEWNS) < 0)
		return *why = "unshare(CLONE_NEWNET | CLONE_NEWNS) refused (needs root)", false;
	lo_up();
	if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0)
		return *why = "cannot make / private in the mount namespace", false;
	if ((fd = mkstemp(path)) < 0 || write(fd, conf, sizeof(conf) - 1) < 0)
		return *why = "cannot write a resolv.conf", false;
	close(fd);
	if (mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL) < 0)
		return *why = "cannot bind-mount /etc/resolv.conf", false;
	unlink(path);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	u = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (bind(u, (struct sockaddr *)&a, sizeof(a)) < 0)
		return *why = "cannot bind 127.0.0.1:53 in the namespace", false;
	return true;	/* u stays open, unread, for the child's lifetime */
}

/* Runs fn in a forked child that has the silent DNS server: exit 0 pass,
 * 77 skip (reason on stderr), anything else fail. */
static void run_with_silent_dns(int (*fn)(void))
{
	int status = 0;
	pid_t pid = fork();

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		const char *why = NULL;

		if (!silent_dns(&why)) {
			fprintf(stderr, "skip: %s\n", why);
			_exit(77);
		}
		_exit(fn());
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status), "child died (status %#x)", status);
	if (WEXITSTATUS(status) == 77)
		cr_skip_test("no namespace for a silent DNS server");
	cr_assert_eq(WEXITSTATUS(status), 0, "child failed (exit %d)", WEXITSTATUS(status));
}

/* ---- abandoned lookups --------------------------------------------- */

struct lookup {
	rill_time timeout;	/* connect_timeout */
	int result;
};

static int connect_by_name(void *arg)
{
	struct lookup *l = arg;
	rill_reader *r;
	rill_writer *w;

	l->result = rill_open_connection("rill-test.example", 80,
					 RILL_OPEN_OPTIONS(.connect_timeout = l->timeout),
					 &r, &w);
	return 0;
}

/* The deadline ends the wait at 100 ms, and rill_run (which frees the
 * loop) returns at once, not when getaddrinfo gives up 3 s later. */
static int timeout_releases_the_loop(void)
{
	struct lookup l = { .timeout = 100 * MS };
	rill_time t0 = rill_now();

	if (rill_run(connect_by_name, &l, NULL) != 0)
		return 2;
	if (l.result != -ETIMEDOUT) {
		fprintf(stderr, "connect by name: %s\n", rill_strerror(l.result));
		return 3;
	}
	if (rill_now() - t0 > 1000 * MS) {
		fprintf(stderr, "rill_run took %llu ms\n",
			(unsigned long long)((rill_now() - t0) / MS));
		return 4;
	}
	return 0;
}

Test(streams_resolve, abandoned_lookup_holds_neither_task_nor_loop, .timeout = 30)
{
	run_with_silent_dns(timeout_releases_the_loop);
}

static int cancel_lookup(void *arg)
{
	rill_task *t;
	struct lookup l = { 0 };
	int err;

	(void)arg;
	if ((err = rill_spawn(rill_loop_current(), connect_by_name, &l, &t)) < 0)
		return err;
	rill_sleep_ms(50);
	rill_task_cancel(t);
	rill_task_join(t, NULL);
	return l.result == -ECANCELED ? 0 : 1;
}

static int cancel_releases_the_loop(void)
{
	rill_time t0 = rill_now();
	int result = -1;

	if (rill_run(cancel_lookup, NULL, &result) != 0 || result != 0)
		return 2;
	return rill_now() - t0 < 1000 * MS ? 0 : 4;
}

Test(streams_resolve, cancelled_lookup_holds_neither_task_nor_loop, .timeout = 30)
{
	run_with_silent_dns(cancel_releases_the_loop);
}

/* ---- the pool is bounded ------------------------------------------- */

#define LOOKUPS 32

struct many {
	struct lookup l[LOOKUPS];
	int peak_threads;
};

static int watch_threads(void *arg)
{
	struct many *m = arg;

	for (int i = 0; i < 20; i++) {
		int n = count_threads();

		if (n > m->peak_threads)
			m->peak_threads = n;
		rill_sleep_ms(10);
	}
	return 0;
}

static int many_lookups(void *arg)
{
	struct many *m = arg;
	rill_task *t[LOOKUPS + 1];

	for (int i = 0; i < LOOKUPS; i++) {
		m->l[i].timeout = 250 * MS;
		rill_spawn(rill_loop_current(), connect_by_name, &m->l[i], &t[i]);
	}
	rill_spawn(rill_loop_current(), watch_threads, m, &t[LOOKUPS]);
	for (int i = 0; i <= LOOKUPS; i++)
		rill_task_join(t[i], NULL);
	return 0;
}

static int lookups_share_four_threads(void)
{
	struct many m = { .peak_threads = 0 };
	int before = count_threads();

	if (rill_run(many_lookups, &m, NULL) != 0)
		return 2;
	for (int i = 0; i < LOOKUPS; i++)
		if (m.l[i].result != -ETIMEDOUT)
			return 3;
	/* The main thread plus at most four pool threads. */
	if (m.peak_threads - before > 4) {
		fprintf(stderr, "%d lookups used %d threads\n", LOOKUPS,
			m.peak_threads - before);
		return 5;
	}
	return 0;
}

Test(streams_resolve, lookups_use_at_most_four_threads, .timeout = 60)
{
	run_with_silent_dns(lookups_share_four_threads);
}

/* ---- a name that resolves ------------------------------------------ */

static int serve_one(rill_reader *r, rill_writer *w, void *arg)
{
	(void)r;
	(void)arg;
	rill_writer_write(w, "hi", 2);
	rill_writer_close(w);
	return rill_writer_wait_closed(w);
}

static int connect_localhost(void *arg)
{
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	char buf[2];
	int err;

	(void)arg;
	if ((err = rill_start_server(serve_one, NULL, "127.0.0.1", 0, NULL, &s)) < 0)
		return err;
	err = rill_open_connection("localhost", rill_server_port(s),
				   RILL_OPEN_OPTIONS(.family = AF_INET), &r, &w);
	if (err == 0) {
		err = (int)rill_reader_readexactly(r, buf, 2);
		err = err == 2 && memcmp(buf, "hi", 2) == 0 ? 0 : -EPROTO;
		rill_writer_free(w);
	}
	rill_server_free(s);
	return err;
}

Test(streams_resolve, a_name_resolves_through_the_pool)
{
	int result = -1;

	cr_assert_eq(rill_run(connect_localhost, NULL, &result), 0);
	cr_assert_eq(result, 0, "%s (%s)", rill_strerror(result), rill_error_detail());
}
