/* SPDX-License-Identifier: MIT */
/* What a first program writes with <rill.h> alone, built by
 * tests/check-doc-code.sh with -Wextra -Woverride-init -Werror: the errno
 * names rill returns come with the header, and a socket is adopted through
 * the _SOCK macros (or an INIT struct) without overriding an initialiser. */
#include <rill.h>

static int on_client(rill_reader *r, rill_writer *w, void *arg)
{
	(void)r;
	(void)w;
	(void)arg;
	return 0;
}

static int body(void *arg)
{
	int fd = *(int *)arg;
	rill_server *server;
	rill_reader *r;
	rill_writer *w;
	int err;

	err = rill_start_server(on_client, NULL, NULL, 0,
				RILL_SERVER_OPTIONS_SOCK(fd, .backlog = 16), &server);
	if (err == 0)
		rill_server_free(server);
	err = rill_open_connection(NULL, 0, RILL_OPEN_OPTIONS_SOCK(fd), &r, &w);
	if (err == 0)
		rill_writer_free(w);

	rill_open_options o = RILL_OPEN_OPTIONS_INIT;
	o.sock = fd;
	o.limit = 1024;
	err = rill_open_connection(NULL, 0, &o, &r, &w);
	if (err == -ECANCELED || err == -ETIMEDOUT || err == -ECONNRESET ||
	    err == -EINVAL || err == -EBADF)
		return 1;
	return 0;
}

int main(void)
{
	int fd = -1, result = 0;

	/* Only compiled and linked by the test: fd -1 makes every call fail
	 * with -EINVAL or -EBADF at once. */
	if (rill_run(body, &fd, &result) < 0)
		return 1;
	return result == 0 ? 0 : 2;
}
