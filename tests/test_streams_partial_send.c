/* SPDX-License-Identifier: MIT */
/* A send the socket takes only in part goes on by itself once the peer drains it, while every task of the loop waits (wait_closed) and nothing else happens on the loop. */
#include "tests/helpers.h"

#include <pthread.h>
#include <stdatomic.h>

#define TOTAL (8u << 20)	/* more than the socket buffers hold */

struct slow_reader {
	int lfd;
	uint64_t got;
	bool intact;
	atomic_bool done;
};

/* Accepts one connection and reads it to EOF, a little at a time. */
static void *slow_reader_thread(void *arg)
{
	struct slow_reader *s = arg;
	static unsigned char buf[64 * 1024];
	int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
	ssize_t n;

	s->intact = true;
	while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0) {
		s->intact = s->intact && pat_ok(buf, s->got, (size_t)n);
		s->got += (uint64_t)n;
		if (s->got < 256 * 1024)
			usleep(2000);	/* the writer's sends come back partial */
	}
	if (fd >= 0)
		close(fd);
	atomic_store(&s->done, true);
	return NULL;
}

TASK_TEST(streams_partial_send, close_of_a_large_queue_finishes_with_no_other_event, .timeout = 30)
{
	static unsigned char data[TOTAL];
	struct slow_reader s = { 0 };
	rill_reader *r;
	rill_writer *w;
	pthread_t th;
	int port, err;

	fill_pat(data, 0, sizeof(data));
	s.lfd = listen_loopback(&port, 4);
	cr_assert_geq(s.lfd, 0);
	cr_assert_eq(pthread_create(&th, NULL, slow_reader_thread, &s), 0);
	connect_to("127.0.0.1", port, &r, &w);
	cr_assert_eq(rill_writer_write(w, data, sizeof(data)), 0);
	rill_writer_close(w);
	err = rill_writer_wait_closed(w);
	cr_assert_eq(err, 0, "wait_closed: %s", rill_strerror(err));
	rill_writer_free(w);
	for (int i = 0; i < 2000 && !atomic_load(&s.done); i++)
		rill_sleep_ms(5);
	pthread_join(th, NULL);
	cr_assert_eq(s.got, TOTAL, "the peer read %" PRIu64 " bytes", s.got);
	cr_assert(s.intact, "the bytes came in order");
	close(s.lfd);
	return 0;
}
