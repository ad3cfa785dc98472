/* SPDX-License-Identifier: MIT */
/* Slowloris: two thousand connections each sending a byte a second against readline under a per-connection deadline; all are served or time out on time, and a fresh client is answered promptly meanwhile. */
#include <criterion/criterion.h>
#include <criterion/logging.h>
#include <pthread.h>
#include <stdatomic.h>

#include "tests/helpers.h"

#define CONNS 2000
/* Every other connection is patient: "a" now, "\n" a second later, well
 * within the deadline. The others send "abcd\n" a byte a second and run
 * out of time after two. */
#define DEADLINE (2000 * MS)
#define TICK (1000 * MS)
/* The whole attack stops by itself after this long. */
#define ATTACK_MAX (6000 * MS)
/* How late a close may come after the deadline, with thousands of timers
 * firing in the same millisecond (more under sanitizers). */
#define LATE (1500 * MS)

static const char patient_line[] = "a\n";
static const char slow_line[] = "abcd\n";

/* ---- the server ------------------------------------------------------ */

struct counts {
	atomic_uint served, timed_out, other;
	atomic_int other_err;
};

static int guarded_readline(rill_reader *r, rill_writer *w, void *arg)
{
	struct counts *c = arg;
	rill_time saved = rill_deadline_push(DEADLINE);
	rill_bytes line;
	ssize_t n = rill_reader_readline(r, &line);

	rill_deadline_pop(saved);
	if (n > 0) {
		rill_writer_write(w, "ok\n", 3);
		atomic_fetch_add(&c->served, 1);
	} else if (n == -ETIMEDOUT) {
		atomic_fetch_add(&c->timed_out, 1);
	} else {
		atomic_fetch_add(&c->other, 1);
		atomic_store(&c->other_err, (int)n);
	}
	rill_writer_close(w);
	return 0;
}

/* ---- the attackers: one thread, plain non-blocking sockets ---------- */

struct attacker {
	int fd;
	bool slow;
	unsigned sent;		/* bytes of its line sent */
	rill_time start, ended;	/* ended: 0 while open */
	bool got_ok;
};

struct attack {
	int port;
	struct attacker a[CONNS];
	int connect_errors;
	rill_time began;
	atomic_bool done;
};

static int nb_connect(int port)
{
	struct sockaddr_in sa = loopback4(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Sends the next byte of each open attacker's line. */
static void attack_tick(struct attack *at)
{
	for (int i = 0; i < CONNS; i++) {
		struct attacker *a = &at->a[i];
		const char *line = a->slow ? slow_line : patient_line;

		if (a->fd < 0 || a->ended || a->sent >= strlen(line))
			continue;
		if (send(a->fd, line + a->sent, 1, MSG_NOSIGNAL) == 1)
			a->sent++;
	}
}

/* Reads what came: "ok\n", EOF or a reset end the attacker. */
static void attack_poll(struct attack *at, struct pollfd *p)
{
	char buf[16];

	for (int i = 0; i < CONNS; i++)
		p[i] = (struct pollfd){ .fd = at->a[i].ended ? -1 : at->a[i].fd,
					.events = POLLIN };
	if (poll(p, CONNS, 10) <= 0)
		return;
	for (int i = 0; i < CONNS; i++) {
		struct attacker *a = &at->a[i];
		ssize_t n;

		if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		while ((n = recv(a->fd, buf, sizeof(buf), 0)) > 0)
			a->got_ok |= n >= 2 && !memcmp(buf, "ok", 2);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			a->ended = rill_now();
	}
}

static bool attack_over(const struct attack *at)
{
	for (int i = 0; i < CONNS; i++)
		if (at->a[i].fd >= 0 && !at->a[i].ended)
			return false;
	return true;
}

static void *attack_thread(void *arg)
{
	struct attack *at = arg;
	struct pollfd *p = calloc(CONNS, sizeof(*p));
	rill_time next_tick;

	at->began = rill_now();
	for (int i = 0; i < CONNS; i++) {
		/* Stamped before the connect: the server's deadline starts
		 * after it, so no close may come sooner than DEADLINE. */
		at->a[i] = (struct attacker){ .slow = i % 2, .start = rill_now() };
		at->a[i].fd = nb_connect(at->port);
		at->connect_errors += at->a[i].fd < 0;
	}
	attack_tick(at);
	next_tick = rill_now() + TICK;
	while (p && !attack_over(at) && rill_now() - at->began < ATTACK_MAX) {
		attack_poll(at, p);
		if (rill_now() >= next_tick) {
			attack_tick(at);
			next_tick += TICK;
		}
	}
	free(p);
	atomic_store(&at->done, true);
	return NULL;
}

/* ---- a fresh client during the attack ------------------------------ */

struct fresh {
	int port, ok, tries;
	rill_time worst;
};

static int fresh_once(struct fresh *f)
{
	rill_time t0 = rill_now();
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	ssize_t n;
	int err = rill_open_connection("127.0.0.1", f->port, NULL, &r, &w);

	if (err < 0)
		return err;
	rill_writer_write(w, "fresh\n", 6);
	n = rill_reader_readline(r, &line);
	if (n == 3 && !memcmp(line.data, "ok\n", 3)) {
		f->ok++;
		if (rill_now() - t0 > f->worst)
			f->worst = rill_now() - t0;
	}
	writer_done(w);
	return 0;
}

/* ---- the test ------------------------------------------------------- */

struct slowloris {
	struct counts counts;
	struct attack attack;
	struct fresh fresh;
};

static int slowloris_body(void *arg)
{
	struct slowloris *sl = arg;
	rill_server_options so = { .size = sizeof(rill_server_options), .sock = -1,
		.backlog = 4096 };
	rill_server *s;
	pthread_t t;

	cr_assert_eq(rill_start_server(guarded_readline, &sl->counts, "127.0.0.1", 0, &so, &s), 0);
	sl->attack.port = sl->fresh.port = rill_server_port(s);
	cr_assert_eq(pthread_create(&t, NULL, attack_thread, &sl->attack), 0);
	/* Every half second, a fresh client: connect, one line, answer. */
	while (!atomic_load(&sl->attack.done)) {
		cr_assert_eq(rill_sleep_ms(500), 0);
		if (atomic_load(&sl->attack.done))
			break;
		sl->fresh.tries++;
		cr_assert_eq(fresh_once(&sl->fresh), 0);
	}
	cr_assert_eq(pthread_join(t, NULL), 0);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	return 0;
}

/* Fds for both ends of every connection, and some to spare. */
static void raise_fd_limit(void)
{
	struct rlimit lim;
	rlim_t need = 2 * CONNS + 256;

	cr_assert_eq(getrlimit(RLIMIT_NOFILE, &lim), 0);
	if (lim.rlim_cur < need) {
		lim.rlim_cur = lim.rlim_max < need ? lim.rlim_max : need;
		cr_assert_eq(setrlimit(RLIMIT_NOFILE, &lim), 0);
	}
	if (lim.rlim_cur < need)
		cr_skip_test("RLIMIT_NOFILE hard limit %llu is below the %llu fds this "
			     "test needs", (unsigned long long)lim.rlim_max,
			     (unsigned long long)need);
}

Test(reliability_slowloris, thousands_of_byte_a_second_clients, .timeout = 60)
{
	static struct slowloris sl;
	rill_time served_worst = 0, early = RILL_TIME_NEVER, late = 0;
	unsigned patient_ok = 0, slow_closed = 0;

	raise_fd_limit();
	run_task(slowloris_body, &sl);
	for (int i = 0; i < CONNS; i++) {
		struct attacker *a = &sl.attack.a[i];
		rill_time took = a->ended ? a->ended - a->start : RILL_TIME_NEVER;

		if (!a->slow && a->got_ok) {
			patient_ok++;
			served_worst = took > served_worst ? took : served_worst;
		} else if (a->slow && a->ended && !a->got_ok) {
			slow_closed++;
			early = took < early ? took : early;
			late = took > late ? took : late;
		}
	}
	printf("slowloris: %d connections at a byte a second, deadline %.0f ms: %u patient "
	       "ones served (slowest %.0f ms), %u slow ones closed %.0f to %.0f ms after "
	       "connecting; server: %u served, %u timed out, %u other; fresh client: %d/%d "
	       "answered, worst %.1f ms\n", CONNS, (double)DEADLINE / 1e6, patient_ok,
	       (double)served_worst / 1e6, slow_closed,
	       early == RILL_TIME_NEVER ? 0.0 : (double)early / 1e6, (double)late / 1e6,
	       atomic_load(&sl.counts.served), atomic_load(&sl.counts.timed_out),
	       atomic_load(&sl.counts.other), sl.fresh.ok, sl.fresh.tries,
	       (double)sl.fresh.worst / 1e6);
	fflush(stdout);
	cr_assert_eq(sl.attack.connect_errors, 0);
	cr_assert_eq(patient_ok, CONNS / 2, "patient clients not served");
	cr_assert_eq(slow_closed, CONNS / 2, "slow clients not closed");
	cr_assert_lt(served_worst, DEADLINE);
	cr_assert_geq(early, DEADLINE, "closed before the deadline");
	cr_assert_lt(late, DEADLINE + LATE, "closed late");
	cr_assert_eq(atomic_load(&sl.counts.other), 0, "a handler got %s",
		     rill_err_name(atomic_load(&sl.counts.other_err)));
	cr_assert_eq(atomic_load(&sl.counts.timed_out), CONNS / 2);
	cr_assert_eq(atomic_load(&sl.counts.served), CONNS / 2 + (unsigned)sl.fresh.ok);
	cr_assert_geq(sl.fresh.tries, 3);
	cr_assert_eq(sl.fresh.ok, sl.fresh.tries, "a fresh client was not answered");
	cr_assert_lt(sl.fresh.worst, 500 * MS, "a fresh client waited %.0f ms",
		     (double)sl.fresh.worst / 1e6);
}
