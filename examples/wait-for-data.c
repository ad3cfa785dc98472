/* SPDX-License-Identifier: MIT */
/* wait-for-data: the asyncio Streams documentation's "register an open
 * socket to wait for data using streams".
 *
 *   wait-for-data
 *
 * Makes a pair of connected sockets, hands one to open_connection(sock=),
 * sends "abc" from the other one on the loop's next iteration, waits for
 * the data with read(), prints "Received: abc" and closes both.
 */
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

#include <rill.h>

/* Simulates the reception of data from the network. */
static void send_abc(void *arg)
{
	int *wsock = arg;

	if (send(*wsock, "abc", 3, MSG_NOSIGNAL) != 3)
		perror("wait-for-data: send");
}

static int wait_for_data(void *arg)
{
	rill_open_options opts = RILL_OPEN_OPTIONS_INIT;
	rill_reader *reader;
	rill_writer *writer;
	char data[100];
	ssize_t n;
	int sv[2], err;

	(void)arg;
	/* Create a pair of connected sockets. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("wait-for-data: socketpair");
		return 1;
	}
	/* Register the open socket to wait for data; rill now owns sv[0]. */
	opts.sock = sv[0];
	err = rill_open_connection(NULL, 0, &opts, &reader, &writer);
	if (err < 0) {
		fprintf(stderr, "wait-for-data: open_connection: %s\n", rill_strerror(err));
		close(sv[0]);
		close(sv[1]);
		return 1;
	}
	rill_loop_call_soon(rill_loop_current(), send_abc, &sv[1]);

	/* Wait for data. */
	n = rill_reader_read(reader, data, sizeof(data));
	if (n < 0)
		fprintf(stderr, "wait-for-data: read: %s\n", rill_strerror((int)n));
	else
		printf("Received: %.*s\n", (int)n, data);

	/* Got data, we are done: close the socket. */
	rill_writer_close(writer);
	rill_writer_wait_closed(writer);
	rill_writer_free(writer);

	/* Close the second socket. */
	close(sv[1]);
	return n < 0;
}

int main(void)
{
	int result = 1;

	if (rill_run(wait_for_data, NULL, &result) < 0) {
		fprintf(stderr, "wait-for-data: %s\n", rill_error_detail());
		return 1;
	}
	return result;
}
