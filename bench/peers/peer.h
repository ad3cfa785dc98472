/* SPDX-License-Identifier: MIT */
/* bench/peers/peer.h: what the hand-written C peer servers share (epoll_echo,
 * tls_echo, uv_echo): the HTTP requests and replies of --mode http, the
 * listening socket, the bound port and the stop signals. Nothing here needs
 * rill. */
#ifndef RILL_BENCH_PEER_H
#define RILL_BENCH_PEER_H

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* Counts the HTTP requests that end in this chunk; *crlf, the bytes of
 * "\r\n\r\n" matched so far, spans reads. */
static inline size_t peer_http_count(int *crlf, const char *p, size_t n)
{
	static const char term[] = "\r\n\r\n";
	size_t count = 0;
	int s = *crlf;

	for (size_t i = 0; i < n; i++) {
		if (p[i] == term[s])
			s++;
		else
			s = p[i] == '\r';
		if (s == 4) {
			count++;
			s = 0;
		}
	}
	*crlf = s;
	return count;
}

/* count replies of --mode http back to back, their length in *lenp, in a
 * buffer of the process that grows on demand: the peer hands it to a send
 * that copies or finishes it before its next read. NULL without memory. */
static inline const char *peer_http_replies(size_t count, size_t *lenp)
{
	static const char one[] = "HTTP/1.1 200 OK\r\nContent-Length: 13\r\n"
				  "Content-Type: text/plain\r\n\r\nHello, world!";
	static char *buf;
	static size_t cap;
	size_t n = sizeof(one) - 1, len = count * n;

	if (len > cap) {
		char *b = realloc(buf, len);

		if (!b)
			return NULL;
		buf = b;
		cap = len;
	}
	for (size_t i = 0; i < count; i++)
		memcpy(buf + i * n, one, n);
	*lenp = len;
	return buf;
}

static inline int peer_bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return -1;
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

/* Returns a non-blocking listening fd, or -1 with a message printed. */
static inline int peer_listen(const char *host, const char *port, int backlog)
{
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM,
				  .ai_flags = AI_PASSIVE }, *ai;
	int fd, one = 1, err = getaddrinfo(host, port, &hints, &ai);

	if (err) {
		fprintf(stderr, "%s: %s\n", host, gai_strerror(err));
		return -1;
	}
	fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
	    listen(fd, backlog) < 0) {
		perror("listen");
		if (fd >= 0)
			close(fd);
		fd = -1;
	}
	freeaddrinfo(ai);
	return fd;
}

/* SIGINT/SIGTERM arrive through a signalfd, so they are just another event. */
static inline int peer_signal_fd(void)
{
	sigset_t set;

	signal(SIGPIPE, SIG_IGN);	/* a reset peer surfaces as EPIPE instead */
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
		return -1;
	return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

/* The options every peer's --help lists around the shared server ones. */
#define PEER_PORT_OPTION "  --port P          listen on port P (0: any free port)\n"
#define PEER_HELP_OPTION "  -h, --help        print this and exit\n"
#define PEER_OPTIONS PEER_PORT_OPTION BENCH_SERVER_OPTIONS PEER_HELP_OPTION

#endif
