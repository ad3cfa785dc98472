/* echo-server: the asyncio Streams documentation's TCP echo server.
 *
 *   echo-server [host] [port]
 *
 * Prints "Serving on HOST:PORT", then for each connection reads up to 100
 * bytes, prints what it got and from whom, echoes it back and closes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <rill.h>

static void addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	int port = 0;

	if (sa && sa->sa_family == AF_INET) {
		const struct sockaddr_in *in = (const void *)sa;
		inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
		port = ntohs(in->sin_port);
	} else if (sa && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *in6 = (const void *)sa;
		inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
		port = ntohs(in6->sin6_port);
	}
	snprintf(buf, len, "('%s', %d)", host, port);
}

static int handle_echo(rill_reader *reader, rill_writer *writer, void *arg)
{
	char data[100], peer[80];
	ssize_t n;

	(void)arg;
	n = rill_reader_read(reader, data, sizeof(data));
	if (n < 0) {
		fprintf(stderr, "read: %s\n", rill_strerror((int)n));
		n = 0;
	}
	addr_str(rill_writer_get_extra_info(writer, "peername", NULL), peer, sizeof(peer));
	printf("Received '%.*s' from %s\n", (int)n, data, peer);
	printf("Send: '%.*s'\n", (int)n, data);
	fflush(stdout);
	rill_writer_write(writer, data, (size_t)n);
	rill_writer_drain(writer);
	printf("Close the connection\n");
	fflush(stdout);
	rill_writer_close(writer);
	rill_writer_wait_closed(writer);
	return 0;
}

struct args {
	const char *host;
	int port;
};

static int main_task(void *arg)
{
	struct args *a = arg;
	rill_server *server;
	char addr[80];
	int err;

	err = rill_start_server(handle_echo, NULL, a->host, a->port, NULL, &server);
	if (err < 0) {
		fprintf(stderr, "start_server: %s (%s)\n", rill_strerror(err),
			rill_error_detail());
		return 1;
	}
	for (size_t i = 0; i < rill_server_nsockets(server); i++) {
		addr_str(rill_server_sockname(server, i, NULL), addr, sizeof(addr));
		printf("Serving on %s\n", addr);
	}
	fflush(stdout);
	err = rill_server_serve_forever(server);
	rill_server_free(server);
	return err < 0 && err != -ECANCELED;
}

int main(int argc, char **argv)
{
	struct args a = {
		.host = argc > 1 ? argv[1] : "127.0.0.1",
		.port = argc > 2 ? atoi(argv[2]) : 8888,
	};
	int result = 1;
	int err = rill_run(main_task, &a, &result);

	if (err < 0) {
		fprintf(stderr, "echo-server: %s\n", rill_error_detail());
		return 1;
	}
	return result;
}
