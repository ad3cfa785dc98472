/* streams/net.h: socket helpers shared by connect.c and server.c. */
#ifndef RILL_STREAMS_NET_H
#define RILL_STREAMS_NET_H

#include <netdb.h>
#include <sys/un.h>

/* Resolves host:port; numeric hosts at once, names on a thread while the
 * task waits. *resp is the caller's to freeaddrinfo(). Returns 0 or a
 * negative code with rill_error_detail() set. */
int rill__resolve(const char *host, int port, const struct addrinfo *hints,
		  struct addrinfo **resp);
/* Fills a Unix address from path ('@' first: abstract). */
int rill__unix_addr(const char *path, struct sockaddr_un *sun, socklen_t *lenp);
void rill__sock_nodelay(int fd);

#endif
