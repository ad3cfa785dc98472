/* SPDX-License-Identifier: MIT */
/* engine/error.c: names and messages for every code rill returns. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "engine/internal.h"

struct rill__errdesc {
	int code;
	const char *name;
	const char *msg;
};

static const struct rill__errdesc rill_errors[] = {
	{ RILL_EINCOMPLETE, "RILL_EINCOMPLETE",
	  "incomplete read: end of stream before the expected bytes" },
	{ RILL_ELIMIT, "RILL_ELIMIT",
	  "limit overrun: separator not found within the buffer limit" },
	{ RILL_EMULTI, "RILL_EMULTI",
	  "multiple exceptions: every connection attempt failed" },
	{ RILL_ECLOSED, "RILL_ECLOSED", "object is closed" },
	{ RILL_ESTATE, "RILL_ESTATE", "call not valid in the current state" },
	{ RILL_EFORKED, "RILL_EFORKED",
	  "the loop was inherited through fork(): it belongs to the parent "
	  "process; create a new loop in the child" },
	{ RILL_EURING_NOSYS, "RILL_EURING_NOSYS",
	  "io_uring is not available: the kernel lacks it (ENOSYS); use a "
	  "kernel built with CONFIG_IO_URING=y, 5.19 or later" },
	{ RILL_EURING_DISABLED, "RILL_EURING_DISABLED",
	  "io_uring is disabled by sysctl kernel.io_uring_disabled=2; set it "
	  "to 0 (sysctl -w kernel.io_uring_disabled=0)" },
	{ RILL_EURING_DENIED, "RILL_EURING_DENIED",
	  "io_uring_setup was refused (EPERM), most likely by a container's "
	  "seccomp profile or an LSM; allow io_uring_setup, io_uring_enter "
	  "and io_uring_register (docker: --security-opt seccomp=<profile>)" },
	{ RILL_EURING_GROUP, "RILL_EURING_GROUP",
	  "io_uring is limited to kernel.io_uring_group "
	  "(kernel.io_uring_disabled=1); add the user to that group or set "
	  "the sysctl to 0" },
	{ RILL_ETLS, "RILL_ETLS", "TLS failure" },
	{ RILL_ETLS_VERIFY, "RILL_ETLS_VERIFY",
	  "TLS: peer certificate verification failed" },
	{ RILL_ETLS_HOSTNAME, "RILL_ETLS_HOSTNAME",
	  "TLS: peer certificate does not match the host name" },
	{ RILL_ETLS_ALERT, "RILL_ETLS_ALERT", "TLS: the peer sent a fatal alert" },
	{ RILL_ETLS_EOF, "RILL_ETLS_EOF",
	  "TLS: unexpected end of stream without close_notify" },
	{ RILL_ETLS_HANDSHAKE_TIMEOUT, "RILL_ETLS_HANDSHAKE_TIMEOUT",
	  "TLS: handshake did not finish within ssl_handshake_timeout" },
	{ RILL_ETLS_SHUTDOWN_TIMEOUT, "RILL_ETLS_SHUTDOWN_TIMEOUT",
	  "TLS: shutdown did not finish within ssl_shutdown_timeout" },
	{ RILL_ETLS_NOT_AVAILABLE, "RILL_ETLS_NOT_AVAILABLE",
	  "TLS requested but rill-tls is not linked or no context was given" },
};

static const struct rill__errdesc *rill_errdesc(int code)
{
	for (size_t i = 0; i < sizeof(rill_errors) / sizeof(rill_errors[0]); i++)
		if (rill_errors[i].code == code)
			return &rill_errors[i];
	return NULL;
}

/* code's name (name true) or message: rill's own codes from the table,
 * -errno from the C library. */
static const char *describe(int code, bool name)
{
	const struct rill__errdesc *d = rill_errdesc(code);
	const char *s = NULL;

	if (code == 0)
		return name ? "OK" : "success";
	if (d)
		return name ? d->name : d->msg;
	/* strerror() of glibc returns static strings for known codes;
	 * strerrordesc_np() is the thread-safe form. */
	if (code < 0 && code > -4096)
		s = name ? strerrorname_np(-code) : strerrordesc_np(-code);
	if (s)
		return s;
	return name ? "UNKNOWN" : "unknown error";
}

const char *rill_strerror(int code)
{
	return describe(code, false);
}

const char *rill_err_name(int code)
{
	return describe(code, true);
}

static __thread char rill_detail[1024];
/* Whether rill_detail holds this thread's last detail. Every public call
 * clears it, reads and writes included, so it is one byte in static TLS
 * (initial-exec): a plain %fs-relative store, where the 1 KiB text in a
 * shared library is reached through __tls_get_addr. */
static __thread bool detail_set __attribute__((tls_model("initial-exec")));

const char *rill_error_detail(void)
{
	return detail_set ? rill_detail : "";
}

void rill__detail_clear(void)
{
	detail_set = false;
}

/* Records the long message behind code for rill_error_detail(); returns
 * code so callers can write "return rill__set_detail(err, ...)". */
int rill__set_detail(int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rill_detail, sizeof(rill_detail), fmt, ap);
	va_end(ap);
	detail_set = true;
	return code;
}
