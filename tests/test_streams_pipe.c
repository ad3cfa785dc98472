/* SPDX-License-Identifier: MIT */
/* Pipes, FIFOs, terminals and regular files as streams: connect_read_pipe / connect_write_pipe, EOF, 64 MiB both ways, EPIPE without SIGPIPE. */
#include <criterion/criterion.h>
#include <pty.h>
#include <sys/stat.h>
#include <termios.h>

#include "tests/helpers.h"

TestSuite(streams_pipe, .timeout = 60);

static void make_pipe(int p[2])
{
	cr_assert_eq(pipe2(p, O_CLOEXEC), 0);
}

static void open_pair(int rfd, int wfd, rill_reader **r, rill_writer **w)
{
	int err = rill_connect_read_pipe(rfd, NULL, r);

	cr_assert_eq(err, 0, "read pipe: %s %s", rill_strerror(err), rill_error_detail());
	err = rill_connect_write_pipe(wfd, NULL, w);
	cr_assert_eq(err, 0, "write pipe: %s %s", rill_strerror(err), rill_error_detail());
}

TASK_TEST(streams_pipe, lines_then_eof_from_write_eof)
{
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	int p[2];

	make_pipe(p);
	open_pair(p[0], p[1], &r, &w);
	cr_assert(rill_writer_can_write_eof(w));
	cr_assert(rill_reader_at_eof(rill_writer_reader(w)), "a write pipe's reader is at EOF");
	cr_assert_eq(rill_writer_write(w, "one\ntwo\n", 8), 0);
	cr_assert_eq(rill_writer_write(w, "three", 5), 0);
	cr_assert_eq(rill_writer_drain(w), 0);
	expect_line(r, "one\n");
	expect_line(r, "two\n");
	cr_assert_eq(rill_writer_write_eof(w), 0);
	/* write_eof closes the pipe: the partial line, then EOF. */
	expect_line(r, "three");
	cr_assert_eq(rill_reader_readline(r, &line), 0);
	cr_assert(rill_reader_at_eof(r));
	cr_assert_eq(rill_writer_wait_closed(w), 0);
	cr_assert_eq(rill_writer_write(w, "x", 1), RILL_ESTATE);
	rill_writer_free(w);
	rill_reader_free(r);
	return 0;
}

TASK_TEST(streams_pipe, rill_closes_both_fds)
{
	int before, p[2];
	rill_reader *r;
	rill_writer *w;

	make_pipe(p);
	before = count_fds();
	open_pair(p[0], p[1], &r, &w);
	cr_assert_eq(writer_done(w), 0);
	rill_reader_free(r);
	cr_assert_eq(settle_fds(before - 2), before - 2, "both pipe ends closed");
	return 0;
}

/* ---- 64 MiB both ways ------------------------------------------------ */

#define BULK (64u << 20)

struct bulk {
	rill_reader *r;
	rill_writer *w;
	uint64_t sum;		/* FNV-1a of what went through */
	size_t n;
};

static uint64_t fnv(uint64_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h;
}

/* Writes BULK pattern bytes in odd-sized pieces with drain, then EOF. */
static int bulk_send(void *arg)
{
	struct bulk *b = arg;
	static unsigned char chunk[200003];
	uint64_t off = 0;

	b->sum = 0xcbf29ce484222325ull;
	while (off < BULK) {
		size_t n = BULK - off < sizeof(chunk) ? BULK - off : sizeof(chunk);

		fill_pat(chunk, off, n);
		b->sum = fnv(b->sum, chunk, n);
		cr_assert_eq(rill_writer_write(b->w, chunk, n), 0);
		cr_assert_eq(rill_writer_drain(b->w), 0);
		off += n;
	}
	cr_assert_eq(rill_writer_write_eof(b->w), 0);
	cr_assert_eq(rill_writer_wait_closed(b->w), 0);
	return 0;
}

/* Copies everything from r to w (the echo end), then closes w. */
static int bulk_relay(void *arg)
{
	struct bulk *b = arg;
	rill_bytes v;
	ssize_t n;

	while ((n = rill_reader_peek(b->r, &v)) > 0) {
		cr_assert_eq(rill_writer_write(b->w, v.data, v.len), 0);
		rill_reader_consume(b->r, v.len);
		cr_assert_eq(rill_writer_drain(b->w), 0);
		b->n += (size_t)n;
	}
	cr_assert_eq(n, 0);
	cr_assert_eq(rill_writer_write_eof(b->w), 0);
	cr_assert_eq(rill_writer_wait_closed(b->w), 0);
	return 0;
}

TASK_TEST(streams_pipe, bulk_64mib_both_ways_checksummed)
{
	static unsigned char buf[READ_PAT_MAX];
	struct bulk there = { 0 }, back = { 0 };
	uint64_t off = 0, sum = 0xcbf29ce484222325ull;
	rill_task *ts, *tr;
	rill_reader *r;
	int a[2], b[2];
	ssize_t k;

	make_pipe(a);
	make_pipe(b);
	open_pair(a[0], a[1], &back.r, &there.w);	/* test -> relay */
	open_pair(b[0], b[1], &r, &back.w);		/* relay -> test */
	ts = spawn(bulk_send, &there);
	tr = spawn(bulk_relay, &back);
	while ((k = rill_reader_read(r, buf, sizeof(buf))) > 0) {
		check_pat(buf, off, (size_t)k);
		sum = fnv(sum, buf, (size_t)k);
		off += (uint64_t)k;
	}
	cr_assert_eq(k, 0, "read: %s", rill_err_name((int)k));
	join(ts);
	join(tr);
	cr_assert_eq(off, BULK, "got %" PRIu64 " of %u bytes", off, BULK);
	cr_assert_eq(back.n, BULK, "relayed %zu", back.n);
	cr_assert_eq(sum, there.sum, "checksums differ");
	rill_writer_free(there.w);
	rill_writer_free(back.w);
	rill_reader_free(back.r);
	rill_reader_free(r);
	return 0;
}

/* ---- EPIPE ------------------------------------------------------------ */

TASK_TEST(streams_pipe, epipe_not_sigpipe_after_the_reader_closes)
{
	static char big[256 * 1024];
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	rill_writer *w;
	int p[2], err;

	/* Left at its default, a SIGPIPE would kill this test. */
	cr_assert_eq(sigaction(SIGPIPE, &dfl, NULL), 0);
	make_pipe(p);
	cr_assert_eq(rill_connect_write_pipe(p[1], NULL, &w), 0);
	close(p[0]);
	cr_assert_eq(rill_writer_write(w, big, sizeof(big)), 0);
	err = rill_writer_drain(w);
	cr_assert_eq(err, -EPIPE, "drain: %s", rill_err_name(err));
	cr_assert(rill_writer_is_closing(w));
	cr_assert_eq(rill_writer_wait_closed(w), -EPIPE);
	/* Writes after the loss are dropped, as asyncio does. */
	cr_assert_eq(rill_writer_write(w, "x", 1), 0);
	rill_writer_free(w);
	return 0;
}

TASK_TEST(streams_pipe, epipe_on_a_small_write_too)
{
	struct sigaction dfl = { .sa_handler = SIG_DFL };
	rill_writer *w;
	int p[2];

	cr_assert_eq(sigaction(SIGPIPE, &dfl, NULL), 0);
	make_pipe(p);
	close(p[0]);
	cr_assert_eq(rill_connect_write_pipe(p[1], NULL, &w), 0);
	cr_assert_eq(rill_writer_write(w, "x\n", 2), 0);
	cr_assert_eq(rill_writer_wait_closed(w), -EPIPE);
	rill_writer_free(w);
	return 0;
}

/* ---- FIFO, terminal ----------------------------------------------------- */

TASK_TEST(streams_pipe, fifo)
{
	char dir[] = "/tmp/rill-fifo-XXXXXX", path[64];
	rill_reader *r;
	rill_writer *w;
	rill_bytes v;
	int rfd, wfd;

	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/f", dir);
	cr_assert_eq(mkfifo(path, 0600), 0);
	/* O_NONBLOCK so the read end opens without a writer yet. */
	rfd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
	cr_assert_geq(rfd, 0);
	wfd = open(path, O_WRONLY | O_CLOEXEC);
	cr_assert_geq(wfd, 0);
	unlink(path);
	rmdir(dir);
	open_pair(rfd, wfd, &r, &w);
	cr_assert_eq(rill_writer_write(w, "through a fifo\n", 15), 0);
	expect_line(r, "through a fifo\n");
	cr_assert_eq(writer_done(w), 0);
	cr_assert_eq(rill_reader_read_all(r, &v), 0);
	cr_assert(rill_reader_at_eof(r));
	rill_reader_free(r);
	return 0;
}

TASK_TEST(streams_pipe, pty_both_directions)
{
	rill_reader *mr, *sr;
	rill_writer *mw, *sw;
	struct termios raw;
	int m, s;

	if (openpty(&m, &s, NULL, NULL, NULL) < 0)
		cr_skip_test("no pty here: %s", strerror(errno));
	fcntl(m, F_SETFD, FD_CLOEXEC);
	fcntl(s, F_SETFD, FD_CLOEXEC);
	cr_assert_eq(tcgetattr(s, &raw), 0);
	cfmakeraw(&raw);	/* no echo, no line discipline rewriting */
	cr_assert_eq(tcsetattr(s, TCSANOW, &raw), 0);
	open_pair(m, dup(s), &mr, &sw);
	open_pair(s, dup(m), &sr, &mw);
	cr_assert_eq(rill_writer_write(sw, "from the slave\n", 15), 0);
	expect_line(mr, "from the slave\n");
	cr_assert_eq(rill_writer_write(mw, "from the master\n", 16), 0);
	expect_line(sr, "from the master\n");
	cr_assert_eq(writer_done(sw), 0);
	cr_assert_eq(writer_done(mw), 0);
	rill_reader_free(mr);
	rill_reader_free(sr);
	return 0;
}

/* ---- regular files ------------------------------------------------------ */

static int temp_file(size_t n)
{
	char path[] = "/tmp/rill-pipe-file-XXXXXX";
	unsigned char *p = malloc(n);
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	fill_pat(p, 0, n);
	cr_assert_eq(write(fd, p, n), (ssize_t)n);
	free(p);
	return fd;
}

TASK_TEST(streams_pipe, stdin_redirected_from_a_regular_file)
{
	const size_t n = 3 * 1024 * 1024 + 17, skip = 100;
	int fd = temp_file(n), saved = dup(0);
	rill_reader *r;
	rill_bytes v;
	ssize_t k;

	/* As `prog < file` after the program read 100 bytes: the reader goes
	 * on from the file position. */
	cr_assert_eq(lseek(fd, (off_t)skip, SEEK_SET), (off_t)skip);
	cr_assert_eq(dup2(fd, 0), 0);
	close(fd);
	cr_assert_eq(rill_connect_read_pipe(0, RILL_OPEN_OPTIONS(.limit = 8 << 20), &r), 0);
	k = rill_reader_read_all(r, &v);
	cr_assert_eq(k, (ssize_t)(n - skip), "read_all: %zd", k);
	check_pat(v.data, skip, (size_t)k);
	cr_assert(rill_reader_at_eof(r));
	rill_reader_free(r);	/* closes fd 0 */
	cr_assert_eq(dup2(saved, 0), 0);
	close(saved);
	return 0;
}

TASK_TEST(streams_pipe, writer_on_a_regular_file)
{
	char path[] = "/tmp/rill-pipe-out-XXXXXX", buf[64];
	int fd = mkstemp(path), rfd;
	rill_writer *w;

	cr_assert_geq(fd, 0);
	rfd = open(path, O_RDONLY | O_CLOEXEC);
	unlink(path);
	cr_assert_eq(rill_connect_write_pipe(fd, NULL, &w), 0);
	cr_assert_eq(rill_writer_write(w, "abc", 3), 0);
	cr_assert_eq(rill_writer_drain(w), 0);
	cr_assert_eq(rill_writer_write(w, "def\n", 4), 0);
	cr_assert_eq(writer_done(w), 0);
	cr_assert_eq(read(rfd, buf, sizeof(buf)), 7);
	cr_assert_arr_eq(buf, "abcdef\n", 7);
	close(rfd);
	return 0;
}

/* ---- the engine ----------------------------------------------------------- */

static int read_one(void *arg)
{
	char c;

	cr_assert_eq(rill_reader_read(arg, &c, 1), 1);
	cr_assert_eq(c, 'z');
	return 0;
}

TASK_TEST(streams_pipe, a_waiting_pipe_read_takes_no_thread)
{
	int before = count_threads(), p[2];
	rill_reader *r;
	rill_task *t;

	make_pipe(p);
	cr_assert_eq(rill_connect_read_pipe(p[0], NULL, &r), 0);
	t = spawn(read_one, r);
	rill_sleep_ms(50);
	/* io_uring would show an iou-wrk thread if the READ blocked in one. */
	cr_assert_eq(count_threads(), before, "a thread appeared for the read");
	cr_assert_eq(write(p[1], "z", 1), 1);
	join(t);
	close(p[1]);
	rill_reader_free(r);
	return 0;
}

TASK_TEST(streams_pipe, reader_limit_applies)
{
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	int p[2];

	make_pipe(p);
	cr_assert_eq(rill_connect_read_pipe(p[0], RILL_OPEN_OPTIONS(.limit = 16), &r), 0);
	cr_assert_eq(rill_connect_write_pipe(p[1], NULL, &w), 0);
	cr_assert_eq(rill_writer_write(w, "a line longer than sixteen\nok\n", 30), 0);
	cr_assert_eq(rill_reader_readline(r, &line), RILL_ELIMIT);
	expect_line(r, "ok\n");
	cr_assert_eq(writer_done(w), 0);
	rill_reader_free(r);
	return 0;
}

static int outside_a_task(void)
{
	rill_reader *r;
	int p[2], err;

	make_pipe(p);
	err = rill_connect_read_pipe(p[0], NULL, &r);
	close(p[0]);
	close(p[1]);
	return err;
}

Test(streams_pipe, invalid_arguments)
{
	cr_assert_eq(outside_a_task(), -EPERM);
}

TASK_TEST(streams_pipe, invalid_arguments_in_a_task)
{
	rill_reader *r;
	rill_writer *w;
	int p[2], dir = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	make_pipe(p);
	cr_assert_eq(rill_connect_read_pipe(-1, NULL, &r), -EINVAL);
	cr_assert_eq(rill_connect_read_pipe(dir, NULL, &r), -EINVAL);
	cr_assert_str_neq(rill_error_detail(), "");
	cr_assert_eq(rill_connect_read_pipe(p[0], NULL, NULL), -EINVAL);
	cr_assert_eq(rill_connect_write_pipe(p[1], NULL, NULL), -EINVAL);
	cr_assert_eq(rill_connect_write_pipe(p[1], RILL_OPEN_OPTIONS(.ssl = true), &w), -EINVAL);
	cr_assert_eq(rill_connect_read_pipe(999999, NULL, &r), -EBADF);
	/* Refused: the fds are still the caller's. */
	cr_assert_eq(fcntl(p[0], F_GETFD) >= 0 && fcntl(p[1], F_GETFD) >= 0, true);
	close(p[0]);
	close(p[1]);
	close(dir);
	return 0;
}
