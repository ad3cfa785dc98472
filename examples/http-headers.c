/* SPDX-License-Identifier: MIT */
/* http-headers: the asyncio Streams documentation's "get HTTP headers".
 *
 *   http-headers URL
 *
 * Sends a HEAD request over HTTP/1.0 to the URL's host, port (default 80,
 * 443 for https) and path, and prints every header line, the status line
 * first, as "HTTP header> LINE" until the blank line that ends them.
 * https:// uses rill-tls's default client context (ssl = true): the
 * system's trust store, or the CAs that SSL_CERT_FILE / SSL_CERT_DIR name,
 * and the URL's host checked against the certificate. Without rill-tls the
 * program says so and exits 2.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rill.h>
#ifdef RILL_HAVE_TLS
#include <rill/tls.h>
#endif

struct url {
	bool https;
	char host[256];
	int port;
	const char *path;	/* from the first '/' on, query included */
};

/* Splits scheme://host[:port][/path]; host may be a bracketed IPv6
 * address. Returns 0, or -1 for a URL it cannot use. */
static int parse_url(const char *s, struct url *u)
{
	const char *host, *end, *colon;
	size_t n;

	u->https = !strncmp(s, "https://", 8);
	if (u->https)
		host = s + 8;
	else if (!strncmp(s, "http://", 7))
		host = s + 7;
	else
		return -1;
	end = host + strcspn(host, "/?#");
	u->path = *end == '/' ? end : "/";
	if (*host == '[') {
		const char *close = memchr(host, ']', (size_t)(end - host));

		if (!close)
			return -1;
		n = (size_t)(close - host - 1);
		host++;
		colon = close[1] == ':' ? close + 1 : NULL;
	} else {
		colon = memchr(host, ':', (size_t)(end - host));
		n = (size_t)((colon ? colon : end) - host);
	}
	if (n == 0 || n >= sizeof(u->host))
		return -1;
	memcpy(u->host, host, n);
	u->host[n] = '\0';
	u->port = colon ? atoi(colon + 1) : u->https ? 443 : 80;
	return 0;
}

/* The line without its trailing whitespace (Python's rstrip()). */
static int rstrip_len(rill_bytes line)
{
	const char *p = line.data;
	size_t n = line.len;

	while (n && (p[n - 1] == '\n' || p[n - 1] == '\r' || p[n - 1] == ' ' ||
		     p[n - 1] == '\t'))
		n--;
	return (int)n;
}

static int print_http_headers(void *arg)
{
	const struct url *u = arg;
	rill_open_options opts = RILL_OPEN_OPTIONS_INIT;
	rill_reader *reader;
	rill_writer *writer;
	rill_bytes line;
	char query[1024];
	ssize_t n;
	int err;

	opts.ssl = u->https;
	err = rill_open_connection(u->host, u->port, &opts, &reader, &writer);
	if (err == RILL_ETLS_NOT_AVAILABLE) {
		fprintf(stderr, "http-headers: TLS not available in this build\n");
		return 2;
	}
	if (err < 0) {
		fprintf(stderr, "http-headers: %s:%d: %s %s\n", u->host, u->port,
			rill_strerror(err), rill_error_detail());
		return 1;
	}
	snprintf(query, sizeof(query), "HEAD %s HTTP/1.0\r\nHost: %s\r\n\r\n",
		 u->path, u->host);
	rill_writer_write(writer, query, strlen(query));

	while ((n = rill_reader_readline(reader, &line)) > 0) {
		int len = rstrip_len(line);

		if (len == 0)
			break;	/* the blank line: the headers are over */
		printf("HTTP header> %.*s\n", len, (const char *)line.data);
	}
	if (n < 0)
		fprintf(stderr, "http-headers: read: %s\n", rill_strerror((int)n));

	/* Ignore the body, close the socket. */
	rill_writer_close(writer);
	rill_writer_wait_closed(writer);
	rill_writer_free(writer);
	return n < 0;
}

int main(int argc, char **argv)
{
	struct url u;
	int result = 1;

	if (argc != 2 || parse_url(argv[1], &u) < 0) {
		fprintf(stderr, "usage: http-headers http[s]://HOST[:PORT][/PATH]\n");
		return 2;
	}
#ifdef RILL_HAVE_TLS
	/* Nothing else here calls rill-tls, so the linker might drop it. */
	rill_tls_init();
#endif
	if (rill_run(print_http_headers, &u, &result) < 0) {
		fprintf(stderr, "http-headers: %s\n", rill_error_detail());
		return 1;
	}
	return result;
}
