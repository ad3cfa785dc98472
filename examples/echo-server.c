/* SPDX-License-Identifier: MIT */
/* echo-server: the asyncio Streams documentation's TCP echo server.
 *
 *   echo-server [--tls CERT KEY] [host] [port]
 *
 * Prints "Serving on HOST:PORT", then for each connection reads up to 100
 * bytes, prints what it got and from whom, echoes it back and closes.
 * --tls: serve TLS with the certificate chain CERT and its key KEY (PEM).
 * SIGINT or SIGTERM stops it: no new connections, the open ones get
 * STOP_GRACE_MS to finish and are then aborted, exit status 0.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rill.h>
#ifdef RILL_HAVE_TLS
#include <rill/tls.h>
#endif

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
	const char *cert, *key;	/* --tls */
};

/* The server options for a: with --tls, a TLS context (the caller frees
 * it). Returns 0, or 1 after saying what went wrong. */
static int server_options(const struct args *a, rill_server_options *o)
{
	if (!a->cert)
		return 0;
#ifdef RILL_HAVE_TLS
	rill_tls_options t = { .size = sizeof(rill_tls_options), .cert_file = a->cert,
		.key_file = a->key };
	int err = rill_tls_ctx_new_server(&t, &o->ssl);

	if (err < 0) {
		fprintf(stderr, "echo-server: --tls: %s (%s)\n", rill_strerror(err),
			rill_tls_last_error());
		return 1;
	}
	return 0;
#else
	(void)o;
	fprintf(stderr, "echo-server: --tls: TLS not available in this build\n");
	return 1;
#endif
}

/* How long connections open at a stop signal may take to finish. */
#define STOP_GRACE_MS 2000

/* Serves (the server started serving already) until SIGINT or SIGTERM,
 * then stops gracefully: the listening sockets close at once, the
 * connections get STOP_GRACE_MS to end on their own, then are aborted. */
static int wait_for_stop(rill_server *server)
{
	static const int stop[] = { SIGINT, SIGTERM };
	int sig = rill_signal_wait(stop, 2);
	rill_time saved;

	if (sig < 0) {
		fprintf(stderr, "signal_wait: %s\n", rill_strerror(sig));
		return sig;
	}
	fprintf(stderr, "echo-server: %s, stopping\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
	rill_server_close(server);
	rill_server_close_clients(server);
	saved = rill_deadline_push(STOP_GRACE_MS * RILL_NSEC_PER_MSEC);
	if (rill_server_wait_closed(server) == -ETIMEDOUT)
		rill_server_abort_clients(server);
	rill_deadline_pop(saved);
	return 0;
}

static int main_task(void *arg)
{
	struct args *a = arg;
	rill_server_options opts = RILL_SERVER_OPTIONS_INIT;
	rill_server *server;
	char addr[80];
	int err;

	if (server_options(a, &opts))
		return 1;
	err = rill_start_server(handle_echo, NULL, a->host, a->port, &opts, &server);
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
	err = wait_for_stop(server);
	rill_server_free(server);
#ifdef RILL_HAVE_TLS
	rill_tls_ctx_free(opts.ssl);
#endif
	return err < 0;
}

int main(int argc, char **argv)
{
	struct args a = { .host = "127.0.0.1", .port = 8888 };
	int result = 1, err;

	if (argc > 1 && !strcmp(argv[1], "--tls")) {
		if (argc < 4) {
			fprintf(stderr, "usage: echo-server [--tls CERT KEY] [host] [port]\n");
			return 2;
		}
		a.cert = argv[2];
		a.key = argv[3];
		argc -= 3;
		argv += 3;
	}
	if (argc > 1)
		a.host = argv[1];
	if (argc > 2)
		a.port = atoi(argv[2]);
	err = rill_run(main_task, &a, &result);
	if (err < 0) {
		fprintf(stderr, "echo-server: %s\n", rill_error_detail());
		return 1;
	}
	return result;
}
