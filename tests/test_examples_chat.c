/* SPDX-License-Identifier: MIT */
/* examples/chat-server: lines broadcast to the other clients, a client that does not read dropped while another receives all 5000 lines, SIGTERM ends it with 0 within the grace + 1 s. */
#include <criterion/criterion.h>
#include <libgen.h>
#include <limits.h>
#include <time.h>

#include "tests/helpers.h"

#define NLINES 5000
#define LINE_LEN 200	/* "L%05d " and padding, "\n" included */
#define GRACE_S 1

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* ${build}/examples/chat-server, or RILL_EXAMPLES_DIR's; skips if absent. */
static void chat_path(char *buf, size_t len)
{
	const char *env = getenv("RILL_EXAMPLES_DIR");
	char exe[PATH_MAX];
	ssize_t n;

	if (env) {
		snprintf(buf, len, "%s/chat-server", env);
	} else {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		cr_assert_gt(n, 0);
		exe[n] = '\0';
		snprintf(buf, len, "%s/examples/chat-server", dirname(dirname(exe)));
	}
	if (access(buf, X_OK) < 0)
		cr_skip_test("%s not built (RILL_BUILD_EXAMPLES off?)", buf);
}

/* One line from a pipe within timeout_ms per byte, NUL-terminated
 * without its newline; -1 on timeout or EOF. */
static int pipe_line(int fd, char *buf, size_t cap, int timeout_ms)
{
	size_t n = 0;

	while (n + 1 < cap) {
		struct pollfd p = { .fd = fd, .events = POLLIN };

		if (poll(&p, 1, timeout_ms) != 1 || read(fd, buf + n, 1) != 1)
			return -1;
		if (buf[n] == '\n')
			break;
		n++;
	}
	buf[n] = '\0';
	return (int)n;
}

struct chat {
	pid_t pid;
	int out, err;	/* its stdout and stderr */
	int port;
};

static void chat_start(struct chat *ch)
{
	char path[PATH_MAX], grace[16], line[128];
	int out[2], err[2];

	chat_path(path, sizeof(path));
	snprintf(grace, sizeof(grace), "%d", GRACE_S);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(err, O_CLOEXEC), 0);
	ch->pid = fork();
	cr_assert_geq(ch->pid, 0);
	if (ch->pid == 0) {
		char *argv[] = { path, "--port", "0", "--grace", grace, NULL };

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(out[1], 1);
		dup2(err[1], 2);
		execv(path, argv);
		_exit(127);
	}
	close(out[1]);
	close(err[1]);
	ch->out = out[0];
	ch->err = err[0];
	cr_assert_gt(pipe_line(ch->out, line, sizeof(line), 5000), 0, "no 'Serving on'");
	cr_assert_eq(sscanf(line, "Serving on 127.0.0.1:%d", &ch->port), 1, "%s", line);
}

/* A client; rcvbuf > 0: its receive buffer that small, set before the
 * connect so that the window is small too. Non-blocking. */
static int chat_client(int port, int rcvbuf)
{
	struct sockaddr_in a = loopback4(port);
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert_geq(fd, 0);
	if (rcvbuf)
		cr_assert_eq(setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	cr_assert_eq(fcntl(fd, F_SETFL, O_NONBLOCK), 0);
	return fd;
}

static void line_at(char *buf, int i)
{
	int n = snprintf(buf, LINE_LEN + 1, "L%05d ", i);

	memset(buf + n, 'x', (size_t)(LINE_LEN - 1 - n));
	buf[LINE_LEN - 1] = '\n';
	buf[LINE_LEN] = '\0';
}

/* Reads what fd has into the line assembler; returns false at EOF or an
 * error. Every complete line starting with 'L' must be the next one. */
struct lines {
	char buf[64 * LINE_LEN];
	size_t len;
	int next;	/* the number of the next line expected */
	int pings;
};

/* One line of l->buf (n bytes, its newline included) checked. */
static void line_check(struct lines *l, size_t n)
{
	char want[LINE_LEN + 1];

	if (l->buf[0] == 'L') {
		line_at(want, l->next);
		cr_assert(n == LINE_LEN && !memcmp(l->buf, want, LINE_LEN),
			  "line %d lost or out of order", l->next);
		l->next++;
	} else {
		cr_assert(n == 5 && !memcmp(l->buf, "ping\n", 5), "unexpected line");
		l->pings++;
	}
}

/* Reads everything fd has now; false at EOF or an error. */
static bool lines_take(int fd, struct lines *l)
{
	for (;;) {
		ssize_t k = recv(fd, l->buf + l->len, sizeof(l->buf) - l->len, 0);
		char *nl;

		if (k < 0 && errno == EAGAIN)
			return true;
		if (k <= 0)
			return false;
		l->len += (size_t)k;
		while ((nl = memchr(l->buf, '\n', l->len))) {
			size_t n = (size_t)(nl - l->buf) + 1;

			line_check(l, n);
			memmove(l->buf, l->buf + n, l->len - n);
			l->len -= n;
		}
	}
}

/* Sends what fd takes of [*off, total) of the lines; returns *off. */
static size_t lines_give(int fd, size_t *off, size_t total)
{
	static char all[NLINES * LINE_LEN];
	static bool made;

	if (!made) {
		char line[LINE_LEN + 1];

		for (int i = 0; i < NLINES; i++) {
			line_at(line, i);
			memcpy(all + (size_t)i * LINE_LEN, line, LINE_LEN);
		}
		made = true;
	}
	while (*off < total) {
		ssize_t k = send(fd, all + *off, total - *off, MSG_NOSIGNAL);

		if (k <= 0)
			break;
		*off += (size_t)k;
	}
	return *off;
}

static int queued(int fd)
{
	int n = 0;

	ioctl(fd, FIONREAD, &n);
	return n;
}

/* Stops the server with sig; fails unless it exits 0 within ms. */
static void stop_within(struct chat *ch, int sig, long long ms)
{
	long long t0 = now_ms();
	int status = 0;
	pid_t got = 0;

	cr_assert_eq(kill(ch->pid, sig), 0);
	while (now_ms() - t0 < ms + 2000 && (got = waitpid(ch->pid, &status, WNOHANG)) == 0)
		usleep(5000);
	if (got == 0) {
		kill(ch->pid, SIGKILL);
		waitpid(ch->pid, &status, 0);
		cr_assert_fail("still running %lld ms after the signal", ms + 2000);
	}
	cr_assert_lt(now_ms() - t0, ms, "took %lld ms", now_ms() - t0);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "status %#x", status);
}

Test(examples_chat, broadcast_drop_and_stop, .timeout = 60)
{
	struct chat ch;
	struct lines lb = { 0 }, lc = { 0 };
	size_t off = 0, total = (size_t)NLINES * LINE_LEN;
	long long t0;
	char err[4096];
	ssize_t n;
	int a, b, c, d;

	signal(SIGPIPE, SIG_IGN);
	chat_start(&ch);
	b = chat_client(ch.port, 0);
	c = chat_client(ch.port, 4096);		/* never reads */
	a = chat_client(ch.port, 0);
	/* In the room: b hears a's ping (c joined before a, so c is in too). */
	for (t0 = now_ms(); lb.pings == 0 && now_ms() - t0 < 5000; usleep(10000)) {
		cr_assert_eq(send(a, "ping\n", 5, MSG_NOSIGNAL), 5);
		usleep(10000);
		cr_assert(lines_take(b, &lb));
	}
	cr_assert_gt(lb.pings, 0, "the line did not go round");
	for (t0 = now_ms(); queued(c) == 0 && now_ms() - t0 < 2000;)
		usleep(1000);
	cr_assert_gt(queued(c), 0, "c did not get the ping");
	/* a sends 5000 lines, at most 64 KiB ahead of b, which reads them:
	 * c, which reads nothing, must not hold them up. */
	for (t0 = now_ms(); lb.next < NLINES && now_ms() - t0 < 20000;) {
		size_t ahead = off - (size_t)lb.next * LINE_LEN;
		struct pollfd p[2] = { { .fd = a, .events = off < total && ahead < 65536 ? POLLOUT : 0 },
				       { .fd = b, .events = POLLIN } };

		poll(p, 2, 100);
		if (p[0].revents & POLLOUT)
			lines_give(a, &off, off + 65536 - ahead < total ? off + 65536 - ahead : total);
		cr_assert(lines_take(b, &lb), "b lost its connection");
	}
	cr_assert_eq(lb.next, NLINES, "b got %d of %d lines", lb.next, NLINES);
	/* c was dropped: what it gets ends short of the 5000 lines. */
	for (t0 = now_ms(); now_ms() - t0 < 5000 && lines_take(c, &lc);)
		usleep(1000);
	cr_assert_lt(lc.next, NLINES, "c, which did not read, got every line");
	n = read(ch.err, err, sizeof(err) - 1);
	err[n > 0 ? n : 0] = '\0';
	cr_assert(strstr(err, "dropping a client"), "stderr: %s", err);
	/* A client that does not read, with lines queued for it at the stop:
	 * 200 KB, more than the kernel buffers hold (the server caps its send
	 * buffer at 64 KiB), less than the 256 KiB that drops a client. */
	d = chat_client(ch.port, 4096);
	usleep(50000);
	off = 0;
	for (t0 = now_ms(); off < 1000 * LINE_LEN && now_ms() - t0 < 5000; usleep(1000))
		lines_give(a, &off, 1000 * LINE_LEN);
	usleep(100000);
	stop_within(&ch, SIGTERM, (GRACE_S + 1) * 1000);
	n = read(ch.err, err, sizeof(err) - 1);
	err[n > 0 ? n : 0] = '\0';
	cr_log_info("chat-server said at the stop: %s", err);
	/* d's lines were still queued: the grace ran out and it was aborted. */
	cr_assert(strstr(err, "1 clients aborted"), "stderr: %s", err);
	close(a);
	close(b);
	close(c);
	close(d);
	close(ch.out);
	close(ch.err);
}
