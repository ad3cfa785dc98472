/* SPDX-License-Identifier: MIT */
/* echo-client: the asyncio Streams documentation's TCP echo client.
 *
 *   echo-client [--tls CAFILE] [host] [port] [message]
 *
 * --tls: speak TLS, trusting the CAs in CAFILE (PEM); the server's
 * certificate must name host.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rill.h>
#ifdef RILL_HAVE_TLS
#include <rill/tls.h>
#endif

struct args {
	const char *host;
	int port;
	const char *message;
	const char *cafile;	/* --tls */
};

/* The connection options for a: with --tls, a client context trusting
 * CAFILE (the caller frees it); the name checked is the host's. Returns 0,
 * or 1 after saying what went wrong. */
static int client_options(const struct args *a, rill_open_options *o)
{
	if (!a->cafile)
		return 0;
#ifdef RILL_HAVE_TLS
	rill_tls_options t = { .size = sizeof(rill_tls_options), .ca_file = a->cafile };
	int err = rill_tls_ctx_new_client(&t, &o->ssl_context);

	if (err < 0) {
		fprintf(stderr, "echo-client: --tls: %s (%s)\n", rill_strerror(err),
			rill_tls_last_error());
		return 1;
	}
	return 0;
#else
	(void)o;
	fprintf(stderr, "echo-client: --tls: TLS not available in this build\n");
	return 1;
#endif
}

static int tcp_echo_client(void *arg)
{
	struct args *a = arg;
	rill_open_options opts = RILL_OPEN_OPTIONS_INIT;
	rill_reader *reader;
	rill_writer *writer;
	char data[100];
	ssize_t n;
	int err;

	if (client_options(a, &opts))
		return 1;
	err = rill_open_connection(a->host, a->port, &opts, &reader, &writer);
#ifdef RILL_HAVE_TLS
	rill_tls_ctx_free(opts.ssl_context);	/* the connection keeps its own */
#endif
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
	struct args a = { .host = "127.0.0.1", .port = 8888, .message = "Hello World!" };
	int result = 1;

	if (argc > 1 && !strcmp(argv[1], "--tls")) {
		if (argc < 3) {
			fprintf(stderr,
				"usage: echo-client [--tls CAFILE] [host] [port] [message]\n");
			return 2;
		}
		a.cafile = argv[2];
		argc -= 2;
		argv += 2;
	}
	if (argc > 1)
		a.host = argv[1];
	if (argc > 2)
		a.port = atoi(argv[2]);
	if (argc > 3)
		a.message = argv[3];
	if (rill_run(tcp_echo_client, &a, &result) < 0) {
		fprintf(stderr, "echo-client: %s\n", rill_error_detail());
		return 1;
	}
	return result;
}
