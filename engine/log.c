/* SPDX-License-Identifier: MIT */
/* engine/log.c: the log hook. Every layer reports through rill__log()
 * what it cannot return to a caller; the application picks where it goes
 * with rill_set_log_handler(), declared in rill/stream.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "engine/internal.h"
#include "rill/stream.h"

static rill_log_fn log_fn;
static void *log_arg;

void rill_set_log_handler(rill_log_fn fn, void *arg)
{
	log_fn = fn;
	log_arg = arg;
}

void rill__log(int level, const char *fmt, ...)
{
	static const char *const names[] = { "error", "warning", "info" };
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (log_fn)
		log_fn(level, msg, log_arg);
	else
		fprintf(stderr, "rill: %s: %s\n", names[level], msg);
}

void rill__misuse(const char *fmt, ...)
{
	char msg[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	rill__log(RILL_LOG_ERROR, "API misuse: %s; aborting", msg);
	abort();
}
