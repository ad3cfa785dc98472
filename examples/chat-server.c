/* SPDX-License-Identifier: MIT */
/* chat-server: each line a client sends goes to every other client.
 *
 *   chat-server [--host HOST] [--port P] [--grace SECONDS]
 *
 * Prints "Serving on HOST:PORT" (port 0: a free one, printed). The room
 * keeps every client's writer (rill_writer_keep), so that any client's
 * task can write to all of them. A line is written to the others without
 * waiting for them: a client whose queue passes its writer's high-water
 * mark (CLIENT_HIGH) has stopped reading, and is dropped rather than
 * slowing the room down. SIGINT or SIGTERM stops it: no new connections,
 * the clients are closed, given --grace seconds (default 5) to finish
 * (a client that does not read never does), then aborted; exit status 0.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <rill.h>

/* A client may fall this far behind before it is dropped: room for the
 * lines another client's task sends in one go (up to two reader limits
 * of input it works through without waiting), and little more. */
#define CLIENT_HIGH (256 * 1024)
/* The kernel's send buffer of a client, capped: left to autotuning it
 * grows to megabytes, which would hide a client that stopped reading for
 * that long before its queue shows it. */
#define CLIENT_SNDBUF (64 * 1024)

struct client {
	rill_writer *w;		/* kept while in the room */
	struct client *prev, *next;
	bool in_room;
};

struct room {
	struct client head;	/* a circular list; head is no client */
	unsigned dropped;
};

static void room_add(struct room *room, struct client *c, rill_writer *w)
{
	c->w = rill_writer_keep(w);
	c->next = &room->head;
	c->prev = room->head.prev;
	room->head.prev->next = c;
	room->head.prev = c;
	c->in_room = true;
}

/* Takes c out of the room and gives back the room's reference. */
static void room_remove(struct client *c)
{
	if (!c->in_room)
		return;
	c->in_room = false;
	c->prev->next = c->next;
	c->next->prev = c->prev;
	rill_writer_release(c->w);
}

/* Writes the line to every client but from. Nothing here waits, so the
 * room cannot change under the loop but for what it does itself. */
static void broadcast(struct room *room, struct client *from, const rill_bytes *line)
{
	struct client *c, *next;

	for (c = room->head.next; c != &room->head; c = next) {
		next = c->next;
		if (c == from)
			continue;
		if (rill_writer_get_write_buffer_size(c->w) > CLIENT_HIGH) {
			/* Behind by more than its limit: it does not read. */
			room->dropped++;
			fprintf(stderr, "chat-server: dropping a client that does not read\n");
			rill_writer_abort(c->w);
			room_remove(c);
			continue;
		}
		rill_writer_write(c->w, line->data, line->len);
	}
}

static int client_connected(rill_reader *r, rill_writer *w, void *arg)
{
	struct room *room = arg;
	struct client me = { 0 };
	rill_bytes line;
	ssize_t n;

	const int *fd = rill_writer_get_extra_info(w, "socket", NULL);
	int sndbuf = CLIENT_SNDBUF;

	if (fd)
		setsockopt(*fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	rill_writer_set_write_buffer_limits(w, CLIENT_HIGH, -1);
	room_add(room, &me, w);
	while ((n = rill_reader_readline(r, &line)) > 0) {
		broadcast(room, &me, &line);
		/* Our own queue: a client that sends but does not read is not
		 * read from either until it catches up (or is dropped). */
		if (rill_writer_drain(w) < 0)
			break;
	}
	room_remove(&me);
	rill_writer_close(w);
	return 0;
}

struct args {
	const char *host;
	int port;
	double grace;
};

/* SIGINT and SIGTERM: rill catches them and runs this on the loop. */
static void on_stop_signal(void *arg)
{
	rill_event_set(arg);
}

/* Catches SIGINT and SIGTERM from now on: ev is set when one comes. */
static int catch_stop_signals(rill_event *ev)
{
	rill_loop *loop = rill_loop_current();
	int err = rill_loop_add_signal_handler(loop, SIGINT, on_stop_signal, ev);

	if (err == 0)
		err = rill_loop_add_signal_handler(loop, SIGTERM, on_stop_signal, ev);
	return err;
}

/* Serves until ev is set, then stops within the grace period. */
static int serve_until(rill_server *server, rill_event *ev, double grace)
{
	int err = rill_event_wait(ev), aborted;

	if (err < 0)
		return err;
	fprintf(stderr, "chat-server: stopping\n");
	aborted = rill_server_shutdown(server, (rill_time)(grace * 1e9));
	if (aborted > 0)
		fprintf(stderr, "chat-server: %d clients aborted after the grace period\n",
			aborted);
	return aborted < 0 ? aborted : 0;
}

static int main_task(void *arg)
{
	struct args *a = arg;
	struct room room = { 0 };
	rill_server *server = NULL;
	rill_event *stop = NULL;
	int err;

	room.head.next = room.head.prev = &room.head;
	if ((err = rill_event_new(&stop)) < 0 || (err = catch_stop_signals(stop)) < 0 ||
	    (err = rill_start_server(client_connected, &room, a->host, a->port, NULL,
				     &server)) < 0) {
		fprintf(stderr, "chat-server: %s %s\n", rill_strerror(err), rill_error_detail());
		rill_event_free(stop);
		return 1;
	}
	printf("Serving on %s:%d\n", a->host, rill_server_port(server));
	fflush(stdout);
	err = serve_until(server, stop, a->grace);
	rill_server_free(server);
	/* The default actions again, and nothing left to keep the loop. */
	rill_loop_remove_signal_handler(rill_loop_current(), SIGINT);
	rill_loop_remove_signal_handler(rill_loop_current(), SIGTERM);
	rill_event_free(stop);
	return err < 0;
}

static int usage(void)
{
	fprintf(stderr, "usage: chat-server [--host HOST] [--port P] [--grace SECONDS]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct args a = { .host = "127.0.0.1", .port = 8888, .grace = 5 };
	int result = 1, err;

	for (int i = 1; i < argc; i++) {
		if (i + 1 >= argc)
			return usage();
		if (!strcmp(argv[i], "--host"))
			a.host = argv[++i];
		else if (!strcmp(argv[i], "--port"))
			a.port = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--grace"))
			a.grace = atof(argv[++i]);
		else
			return usage();
	}
	if (a.port < 0 || a.port > 65535 || !(a.grace >= 0 && a.grace < 1e6))
		return usage();
	err = rill_run(main_task, &a, &result);
	if (err < 0) {
		fprintf(stderr, "chat-server: %s\n", rill_strerror(err));
		return 1;
	}
	return result;
}
