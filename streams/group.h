/* SPDX-License-Identifier: MIT */
/* streams/group.h: a server spread over N loops on N threads. */
#ifndef RILL_STREAMS_GROUP_H
#define RILL_STREAMS_GROUP_H

#include "streams/internal.h"

struct rill__group;

/* Starts N worker threads (o->threads, or one per CPU), each serving on
 * its own loop with its own SO_REUSEPORT socket on the same port. */
int rill__group_start(rill_client_connected_fn cb, void *arg, const char *host,
		      int port, const rill_server_options *o,
		      struct rill__group **gp);
int rill__group_port(const struct rill__group *g);
void rill__group_close(struct rill__group *g);
void rill__group_close_clients(struct rill__group *g);
void rill__group_abort_clients(struct rill__group *g);
int rill__group_wait_closed(struct rill__group *g);
/* Closes, aborts the clients, joins the threads and frees. Blocks the
 * calling task (or thread) until the workers are gone. */
void rill__group_free(struct rill__group *g);

#endif
