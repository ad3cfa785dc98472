/* SPDX-License-Identifier: MIT */
/* Shared by test_streams_sendfile.c and test_tls_sendfile.c: a file of
 * pattern bytes, and a server callback that takes everything until EOF
 * and checks it against what was sent. */
#ifndef RILL_TESTS_SENDFILE_HELPERS_H
#define RILL_TESTS_SENDFILE_HELPERS_H

/* An unlinked temporary file of the pattern's first n bytes. */
static inline int pattern_file(size_t n)
{
	char path[] = "/tmp/rill-sendfile-XXXXXX";
	static unsigned char chunk[1 << 16];
	int fd = mkstemp(path);

	cr_assert_geq(fd, 0);
	unlink(path);
	for (size_t off = 0; off < n; off += sizeof(chunk)) {
		size_t k = n - off < sizeof(chunk) ? n - off : sizeof(chunk);

		fill_pat(chunk, off, k);
		cr_assert_eq(write(fd, chunk, k), (ssize_t)k);
	}
	return fd;
}

/* What the receiving server got: all of it (bounded by cap). */
struct received {
	unsigned char *data;
	size_t len, cap;
	ssize_t last;		/* the read that ended it: 0 at EOF */
	bool done;
};

/* A server callback (arg: struct received): reads to EOF, then closes. */
static inline int receive_all(rill_reader *r, rill_writer *w, void *arg)
{
	struct received *rc = arg;
	ssize_t n;

	while (rc->len < rc->cap &&
	       (n = rill_reader_read(r, rc->data + rc->len, rc->cap - rc->len)) > 0)
		rc->len += (size_t)n;
	rc->last = rill_reader_read(r, &(char){ 0 }, 1);
	rc->done = true;
	rill_writer_close(w);
	return 0;
}

/* Waits (10 s at most) until rc is done. */
static inline void received_wait(struct received *rc)
{
	for (int i = 0; i < 2000 && !rc->done; i++)
		rill_sleep_ms(5);
	cr_assert(rc->done, "the server did not see EOF");
}

#endif
