/* SPDX-License-Identifier: MIT */
/* The ABI rules of options structs: size set by the init macros, older and newer struct versions, sock = -1 for none, the run-time version. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <signal.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rill.h"

/* ---- versions ------------------------------------------------------ */

Test(api_abi, library_version_is_the_headers)
{
	cr_assert_eq(rill_version(), RILL_VERSION_HEX);
	cr_assert_str_eq(rill_version_string(), RILL_VERSION_STRING);
	cr_assert_eq(RILL_VERSION_HEX, (RILL_VERSION_MAJOR << 16) |
		     (RILL_VERSION_MINOR << 8) | RILL_VERSION_PATCH);
}

/* ---- the size member ----------------------------------------------- */

Test(api_abi, init_macros_set_size_and_sock)
{
	rill_loop_options lo = RILL_LOOP_OPTIONS_INIT;
	rill_open_options oo = RILL_OPEN_OPTIONS_INIT;
	rill_server_options so = RILL_SERVER_OPTIONS_INIT;
	rill_loop_stats st = RILL_LOOP_STATS_INIT;

	cr_assert_eq(lo.size, sizeof(lo));
	cr_assert_eq(oo.size, sizeof(oo));
	cr_assert_eq(so.size, sizeof(so));
	cr_assert_eq(st.size, sizeof(st));
	cr_assert_eq(oo.sock, -1);
	cr_assert_eq(so.sock, -1);
	cr_assert_eq(RILL_OPEN_OPTIONS(.limit = 7)->sock, -1);
	cr_assert_eq(RILL_OPEN_OPTIONS(.limit = 7)->limit, 7);
	cr_assert_eq(RILL_SERVER_OPTIONS(.backlog = 3)->size, sizeof(rill_server_options));
}

Test(api_abi, size_zero_is_einval_with_a_detail)
{
	rill_loop_options lo = { .buf_count = 4 };	/* no init macro */
	rill_loop *loop = NULL;

	cr_assert_eq(rill_loop_new(&lo, &loop), -EINVAL);
	cr_assert_null(loop);
	cr_assert(strstr(rill_error_detail(), "rill_loop_options.size"),
		  "detail: %s", rill_error_detail());
	cr_assert(strstr(rill_error_detail(), "INIT"), "detail: %s", rill_error_detail());
}

/* A program built against an older rill passes a shorter struct: the
 * fields it lacks take their defaults, whatever follows it in memory. */
Test(api_abi, older_shorter_struct_takes_defaults)
{
	struct {
		rill_loop_options o;
		unsigned char junk[64];
	} old;
	rill_loop *loop, *plain;

	/* Read as options, the 0xff bytes would be an invalid buf_count. */
	memset(&old, 0xff, sizeof(old));
	old.o.size = offsetof(rill_loop_options, sq_entries);	/* size only */
	cr_assert_eq(rill_loop_new(&old.o, &loop), 0, "%s", rill_error_detail());
	cr_assert_eq(rill_loop_new(NULL, &plain), 0);
	cr_assert_eq(rill_loop_features(loop), rill_loop_features(plain),
		     "junk read as disable bits");
	rill_loop_free(plain);
	rill_loop_free(loop);
}

/* A program built against a newer rill passes a longer struct: fine while
 * the fields this library does not know are zero, -E2BIG otherwise. */
Test(api_abi, newer_longer_struct_with_zero_tail_is_accepted)
{
	struct {
		rill_loop_options o;
		uint64_t newer[4];
	} nw = { .o = RILL_LOOP_OPTIONS_INIT };
	rill_loop *loop;

	nw.o.size = sizeof(nw);
	cr_assert_eq(rill_loop_new(&nw.o, &loop), 0, "%s", rill_error_detail());
	rill_loop_free(loop);
	nw.newer[3] = 1;
	cr_assert_eq(rill_loop_new(&nw.o, &loop), -E2BIG);
	cr_assert(strstr(rill_error_detail(), "rill_loop_options"), "%s", rill_error_detail());
}

Test(api_abi, stats_copy_only_what_the_caller_has_room_for)
{
	struct {
		rill_loop_stats st;
		uint64_t guard;
	} s;
	rill_loop *loop;

	cr_assert_eq(rill_loop_new(NULL, &loop), 0);
	memset(&s, 0xab, sizeof(s));
	s.st.size = offsetof(rill_loop_stats, enters);	/* size + iterations */
	cr_assert_eq(rill_loop_get_stats(loop, &s.st), 0);
	cr_assert_eq(s.st.size, offsetof(rill_loop_stats, enters));
	cr_assert_eq(s.st.iterations, 0);
	cr_assert_eq(s.st.enters, 0xababababababababull, "wrote past the caller's size");
	s.st.size = 0;
	cr_assert_eq(rill_loop_get_stats(loop, &s.st), -EINVAL);
	cr_assert_eq(rill_loop_get_stats(loop, NULL), -EINVAL);
	cr_assert_eq(rill_loop_get_stats(NULL, &s.st), -EINVAL);
	rill_loop_free(loop);
}

/* ---- the SIGSEGV handler ------------------------------------------- */

static void (*segv_handler(void))(int)
{
	struct sigaction sa;

	sigaction(SIGSEGV, NULL, &sa);
	return sa.sa_handler;
}

Test(api_abi, no_signal_handler_leaves_sigsegv_alone)
{
	void (*before)(int) = segv_handler();
	rill_loop *loop;

	cr_assert_eq(rill_loop_new(RILL_LOOP_OPTIONS(.no_signal_handler = true), &loop), 0);
	cr_assert_eq(segv_handler(), before, "SIGSEGV handler replaced");
	rill_loop_free(loop);
	cr_assert_eq(rill_loop_new(NULL, &loop), 0);
	cr_assert_neq(segv_handler(), before, "no stack-overflow handler installed");
	rill_loop_free(loop);
}

/* ---- sock = -1 means none; fd 0 can be adopted --------------------- */

struct adopt {
	int peer;
	ssize_t got;
	char buf[8];
};

static int adopt_fd0(void *arg)
{
	struct adopt *a = arg;
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;
	int err;

	o.sock = 0;
	if ((err = rill_open_connection(NULL, 0, &o, &r, &w)) < 0)
		return err;
	rill_writer_write(w, "ping", 4);
	if ((err = rill_writer_drain(w)) == 0)
		a->got = rill_reader_read(r, a->buf, sizeof(a->buf));
	rill_writer_free(w);
	return err;
}

Test(api_abi, fd_zero_can_be_adopted)
{
	struct adopt a = { 0 };
	char buf[4];
	int sv[2], result = -1;

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	cr_assert_eq(dup2(sv[0], 0), 0);	/* Criterion forks: fd 0 is ours */
	close(sv[0]);
	cr_assert_eq(write(sv[1], "pong", 4), 4);
	cr_assert_eq(rill_run(adopt_fd0, &a, &result), 0);
	cr_assert_eq(result, 0, "%s", rill_strerror(result));
	cr_assert_eq(a.got, 4);
	cr_assert_arr_eq(a.buf, "pong", 4);
	cr_assert_eq(read(sv[1], buf, 4), 4);
	cr_assert_arr_eq(buf, "ping", 4);
	close(sv[1]);
}

static int connect_without_host(void *arg)
{
	(void)arg;
	rill_reader *r;
	rill_writer *w;

	/* The default sock is -1: no socket to adopt, and no host either. */
	int err = rill_open_connection(NULL, 0, RILL_OPEN_OPTIONS(.limit = 10), &r, &w);

	return strstr(rill_error_detail(), "host is required") ? err : -EPROTO;
}

Test(api_abi, default_sock_adopts_nothing)
{
	int result = 0;

	cr_assert_eq(rill_run(connect_without_host, NULL, &result), 0);
	cr_assert_eq(result, -EINVAL, "%s", rill_strerror(result));
}
