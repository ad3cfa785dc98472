/* echo-client: the asyncio Streams documentation's TCP echo client.
 *
 *   echo-client [host] [port] [message]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rill.h>

struct args {
	const char *host;
	int port;
	const char *message;
};

static int tcp_echo_client(void *arg)
{
	struct args *a = arg;
	rill_reader *reader;
	rill_writer *writer;
	char data[100];
	ssize_t n;
	int err;

	err = rill_open_connection(a->host, a->port, NULL, &reader, &writer);
	if (err < 0) {
		fprintf(stderr, "open_connection: %s %s\n", rill_strerror(err),
			rill_error_detail());
		return 1;
	}
	printf("Send: '%s'\n", a->message);
	rill_writer_write(writer, a->message, strlen(a->message));
	rill_writer_drain(writer);

	n = rill_reader_read(reader, data, sizeof(data));
	if (n < 0)
		fprintf(stderr, "read: %s\n", rill_strerror((int)n));
	else
		printf("Received: '%.*s'\n", (int)n, data);

	printf("Close the connection\n");
	rill_writer_close(writer);
	rill_writer_wait_closed(writer);
	rill_writer_free(writer);
	return n < 0;
}

int main(int argc, char **argv)
{
	struct args a = {
		.host = argc > 1 ? argv[1] : "127.0.0.1",
		.port = argc > 2 ? atoi(argv[2]) : 8888,
		.message = argc > 3 ? argv[3] : "Hello World!",
	};
	int result = 1;

	if (rill_run(tcp_echo_client, &a, &result) < 0) {
		fprintf(stderr, "echo-client: %s\n", rill_error_detail());
		return 1;
	}
	return result;
}
