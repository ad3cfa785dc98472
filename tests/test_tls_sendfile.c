/* SPDX-License-Identifier: MIT */
/* rill_writer_sendfile over TLS: the read-and-write path, in order with writes, offset and count. */
#include "tests/tls_helpers.h"
#include "tests/sendfile_helpers.h"

TestSuite(tls_sendfile, .timeout = 60);

TASK_TEST(tls_sendfile, between_writes_by_copy)
{
	const size_t n = (8u << 20) + 123;
	struct received rc = { .data = malloc(n + 64), .cap = n + 64 };
	struct tls_env e = { 0 };
	int fd = pattern_file(n);
	rill_reader *r;
	rill_writer *w;

	tls_env_start(&e, receive_all, &rc, NULL);
	tls_env_connect(&e, &r, &w);
	cr_assert_eq(rill_writer_write(w, "HEAD", 4), 0);
	cr_assert_eq(rill_writer_sendfile(w, fd, 0, n), (ssize_t)n);
	cr_assert_eq(rill_writer_sendfile(w, fd, 7, 9), 9);
	cr_assert_eq(rill_writer_sendfile(w, fd, (off_t)n - 5, 100), 5);
	cr_assert_eq(rill_writer_write(w, "TAIL", 4), 0);
	close_and_free(w);
	received_wait(&rc);
	cr_assert_eq(rc.last, 0);
	cr_assert_eq(rc.len, 4 + n + 9 + 5 + 4);
	cr_assert_arr_eq(rc.data, "HEAD", 4);
	check_pat(rc.data + 4, 0, n);
	check_pat(rc.data + 4 + n, 7, 9);
	check_pat(rc.data + 4 + n + 9, n - 5, 5);
	cr_assert_arr_eq(rc.data + 4 + n + 14, "TAIL", 4);
	tls_env_wait_stop(&e);
	free(rc.data);
	close(fd);
	return 0;
}
