/* SPDX-License-Identifier: MIT */
/* Unix sockets: start_unix_server/open_unix_connection on a path and an abstract name, stale files, unlink on close. */
#include <criterion/criterion.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "tests/helpers.h"

static char dir[64];
static char path[128];

static void make_dir(void)
{
	snprintf(dir, sizeof(dir), "/tmp/rill-unix-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
}

static void remove_dir(void)
{
	unlink(path);
	rmdir(dir);
}

TestSuite(streams_unix, .init = make_dir, .fini = remove_dir, .timeout = 30);

/* One line through the echo server at where, on a connection of its own. */
static void roundtrip(const char *where, const char *msg)
{
	rill_reader *r;
	rill_writer *w;
	int err = rill_open_unix_connection(where, NULL, &r, &w);

	cr_assert_eq(err, 0, "connect %s: %s %s", where, rill_strerror(err), rill_error_detail());
	cr_assert_eq(echo_roundtrip(r, w, msg), 0);
	close_and_free(w);
}

static bool is_socket_file(const char *p)
{
	struct stat st;

	return stat(p, &st) == 0 && S_ISSOCK(st.st_mode);
}

TASK_TEST(streams_unix, echo_over_a_path_and_unlink_on_close)
{
	const struct sockaddr_un *sun;
	rill_server *s;
	socklen_t len;

	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, path, NULL, &s), 0);
	cr_assert(is_socket_file(path));
	cr_assert_eq(rill_server_nsockets(s), 1);
	cr_assert_eq(rill_server_port(s), 0);
	sun = (const void *)rill_server_sockname(s, 0, &len);
	cr_assert_eq(sun->sun_family, AF_UNIX);
	cr_assert_str_eq(sun->sun_path, path);
	roundtrip(path, "over a path\n");
	roundtrip(path, "and again\n");
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	cr_assert_eq(access(path, F_OK), -1, "socket file left behind");
	cr_assert_eq(errno, ENOENT);
	rill_server_free(s);
	return 0;
}

TASK_TEST(streams_unix, stale_socket_file_is_replaced)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	rill_server *s;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	/* A socket file whose server is gone. */
	strcpy(sun.sun_path, path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	close(fd);
	cr_assert(is_socket_file(path));
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, path, NULL, &s), 0,
		     "stale socket file not removed: %s", rill_error_detail());
	roundtrip(path, "fresh\n");
	rill_server_free(s);
	return 0;
}

TASK_TEST(streams_unix, regular_file_is_never_removed)
{
	rill_server *s;
	int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);

	cr_assert_geq(fd, 0);
	close(fd);
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, path, NULL, &s), -EADDRINUSE);
	cr_assert_eq(access(path, F_OK), 0, "a regular file was removed");
	return 0;
}

TASK_TEST(streams_unix, replaced_path_is_not_unlinked)
{
	char other[160], buf[16] = { 0 };
	rill_server *s;
	int fd;

	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, path, NULL, &s), 0);
	/* Someone else puts a file of theirs at the path. */
	snprintf(other, sizeof(other), "%s/other", dir);
	fd = open(other, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	cr_assert_eq(write(fd, "theirs", 6), 6);
	close(fd);
	cr_assert_eq(rename(other, path), 0);
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	cr_assert_geq(fd, 0, "a file that is not ours was unlinked");
	cr_assert_eq(read(fd, buf, sizeof(buf)), 6);
	cr_assert_str_eq(buf, "theirs");
	close(fd);
	rill_server_free(s);
	return 0;
}

TASK_TEST(streams_unix, abstract_name_leaves_no_file)
{
	char name[64];
	rill_server *s, *s2;

	snprintf(name, sizeof(name), "@rill-test-%d-%ld", getpid(), random());
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, name, NULL, &s), 0);
	roundtrip(name, "abstract\n");
	/* The name is taken while the server lives. */
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, name, NULL, &s2), -EADDRINUSE);
	/* No file, neither under the name nor under its '@' spelling. */
	cr_assert_eq(access(name, F_OK), -1, "a file was created for an abstract name");
	cr_assert_eq(access(name + 1, F_OK), -1, "a file was created for an abstract name");
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
	/* Free again once closed. */
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, name, NULL, &s), 0);
	roundtrip(name, "reused\n");
	rill_server_free(s);
	return 0;
}

TASK_TEST(streams_unix, errors)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	char longpath[200];
	rill_server *s;
	rill_reader *r;
	rill_writer *w;
	int fd;

	cr_assert_eq(rill_open_unix_connection(path, NULL, &r, &w), -ENOENT);
	/* A socket file nobody listens on. */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	strcpy(sun.sun_path, path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	cr_assert_eq(rill_open_unix_connection(path, NULL, &r, &w), -ECONNREFUSED);
	close(fd);
	memset(longpath, 'x', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = '\0';
	cr_assert_eq(rill_open_unix_connection(longpath, NULL, &r, &w), -EINVAL);
	cr_assert_eq(rill_open_unix_connection("", NULL, &r, &w), -EINVAL);
	cr_assert_eq(rill_open_unix_connection(NULL, NULL, &r, &w), -EINVAL);
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, longpath, NULL, &s), -EINVAL);
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, NULL, NULL, &s), -EINVAL);
	/* path and sock together */
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_eq(rill_open_unix_connection(path,
		&(rill_open_options){ .size = sizeof(rill_open_options), .sock = fd }, &r, &w),
		     -EINVAL);
	close(fd);
	return 0;
}

TASK_TEST(streams_unix, adopt_connected_unix_socket)
{
	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	rill_reader *r;
	rill_writer *w;
	rill_bytes line;
	char buf[16];
	int sv[2];

	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	o.sock = sv[0];
	cr_assert_eq(rill_open_unix_connection(NULL, &o, &r, &w), 0);
	cr_assert_eq(send(sv[1], "ping\n", 5, 0), 5);
	cr_assert_eq(rill_reader_readline(r, &line), 5);
	cr_assert_arr_eq(line.data, "ping\n", 5);
	cr_assert_eq(rill_writer_write(w, "pong\n", 5), 0);
	rill_writer_close(w);
	cr_assert_eq(rill_writer_wait_closed(w), 0);
	cr_assert_eq(recv(sv[1], buf, sizeof(buf), 0), 5);
	cr_assert_arr_eq(buf, "pong\n", 5);
	cr_assert_eq(fcntl(sv[0], F_GETFD), -1, "rill left the adopted fd open");
	rill_writer_free(w);
	close(sv[1]);
	return 0;
}

/* Closes the server, waits until it is closed, frees it. */
static void server_done(rill_server *s)
{
	rill_server_close(s);
	cr_assert_eq(rill_server_wait_closed(s), 0);
	rill_server_free(s);
}

/* A Unix socket of the test's bound to path; listening if listens. */
static int bound_unix(bool listens)
{
	struct sockaddr_un sun = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	strcpy(sun.sun_path, path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&sun, sizeof(sun)), 0);
	if (listens)
		cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

/* 3.13: a server started with sock= unlinks its socket file on close too,
 * if that is still the same inode; a file that replaced it is left. */
TASK_TEST(streams_unix, sock_socket_file_is_unlinked_on_close)
{
	rill_server_options o = RILL_SERVER_OPTIONS_INIT;
	rill_server *s;
	int fd;

	o.sock = bound_unix(true);
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, NULL, &o, &s), 0);
	roundtrip(path, "adopted\n");
	server_done(s);
	cr_assert_eq(access(path, F_OK), -1, "socket file of sock= left behind");

	/* Replaced meanwhile: not ours any more, left alone. */
	o.sock = bound_unix(true);
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, NULL, &o, &s), 0);
	cr_assert_eq(unlink(path), 0);
	fd = bound_unix(false);
	server_done(s);
	cr_assert(is_socket_file(path), "someone else's socket file was removed");
	close(fd);
	unlink(path);
	return 0;
}

/* start_unix_server(cleanup_socket=False): the file stays, for a path and
 * for a sock=. */
TASK_TEST(streams_unix, cleanup_socket_off_leaves_the_file)
{
	rill_server_options o = RILL_SERVER_OPTIONS_INIT;
	rill_server *s;

	o.cleanup_socket = RILL_OFF;
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, path, &o, &s), 0);
	roundtrip(path, "kept\n");
	server_done(s);
	cr_assert(is_socket_file(path), "cleanup_socket off, but the file went");
	/* A stale file is still replaced at start. */
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, path, &o, &s), 0);
	server_done(s);
	cr_assert(is_socket_file(path));
	cr_assert_eq(unlink(path), 0);

	o.sock = bound_unix(false);
	cr_assert_eq(rill_start_unix_server(echo_lines, NULL, NULL, &o, &s), 0);
	server_done(s);
	cr_assert(is_socket_file(path));
	unlink(path);
	return 0;
}
