/* SPDX-License-Identifier: MIT */
/* streams/net.h: socket helpers (streams/net.c) shared by connect.c and
 * server.c, and connect.c's test hook. */
#ifndef RILL_STREAMS_NET_H
#define RILL_STREAMS_NET_H

#include <netdb.h>
#include <sys/un.h>

#include "rill/stream.h"

/* Resolves host:port; numeric hosts at once, names on a thread while the
 * task waits. *resp is the caller's to freeaddrinfo(). Returns 0 or a
 * negative code with rill_error_detail() set. */
int rill__resolve(const char *host, int port, const struct addrinfo *hints,
		  struct addrinfo **resp);
/* Fills a Unix address from path ('@' first: abstract). */
int rill__unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *lenp);
void rill__sock_nodelay(int fd);

/* Test hook, in connect.c: open_connection's connect logic (sequential,
 * or raced with happy_eyeballs_delay; connect_timeout; local_addr) on n
 * given addresses, in that order, instead of a resolved name. Returns the
 * connected fd (caller owns) or the error open_connection would return.
 * Task only. */
int rill__connect_addrs(const struct sockaddr *const *addrs, const socklen_t *lens,
			size_t n, const rill_open_options *opts);

#endif
