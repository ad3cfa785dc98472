/* SPDX-License-Identifier: MIT */
/* rill-tls misuse: a context freed twice is named and aborts instead of corrupting the heap; one freed by the caller lives on for its connections. */
#include <criterion/criterion.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill.h"
#include "rill/tls.h"

static int log_pipe = -1;

static void log_to_pipe(int level, const char *msg, void *arg)
{
	(void)level, (void)arg;
	if (write(log_pipe, msg, strlen(msg)) < 0)
		_exit(3);
}

Test(tls_misuse, ctx_freed_twice_is_named_and_aborts, .timeout = 10)
{
	char buf[512] = { 0 };
	int p[2], status = 0;
	pid_t pid;

	cr_assert_eq(pipe(p), 0);
	pid = fork();
	cr_assert_geq(pid, 0);
	if (pid == 0) {
		rill_tls_ctx *ctx;

		close(p[0]);
		log_pipe = p[1];
		rill_set_log_handler(log_to_pipe, NULL);
		if (rill_tls_ctx_new_client(NULL, &ctx) != 0)
			_exit(2);
		rill_tls_ctx_free(ctx);
		rill_tls_ctx_free(ctx);
		_exit(0);
	}
	close(p[1]);
	cr_assert_geq(read(p[0], buf, sizeof(buf) - 1), 0);
	close(p[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT,
		  "no abort (status %#x)", status);
	cr_assert(strstr(buf, "rill_tls_ctx_free: the context was already freed"), "%s", buf);
}

Test(tls_misuse, null_ctx_free_is_ignored)
{
	rill_tls_ctx_free(NULL);
}
