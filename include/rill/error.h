/* SPDX-License-Identifier: MIT */
/* rill/error.h: error codes and their names.
 *
 * Every rill function that can fail returns a negative code: -errno for
 * failures the kernel reports (-ECONNRESET, -ETIMEDOUT, -ECANCELED, ...) and
 * one of the RILL_E* codes below for conditions of rill's own. The RILL_E*
 * codes lie below -4095, outside the range the kernel uses for errno, so the
 * two never collide. Callers never read the global errno.
 */
#ifndef RILL_ERROR_H
#define RILL_ERROR_H

#include "rill/common.h"

#ifdef __cplusplus
extern "C" {
#endif

enum rill_error {
	/* Streams: asyncio.IncompleteReadError and LimitOverrunError. */
	RILL_EINCOMPLETE = -5001,	/* EOF before the read could finish */
	RILL_ELIMIT = -5002,		/* separator not found within the limit */
	RILL_EMULTI = -5003,		/* several connect attempts all failed */
	RILL_ECLOSED = -5004,		/* the object was closed */
	RILL_ESTATE = -5005,		/* call not valid in the object's state */
	RILL_EFORKED = -5006,		/* the loop belongs to a parent of fork() */

	/* Engine: io_uring cannot be used in this process. */
	RILL_EURING_NOSYS = -5101,	/* kernel built without io_uring */
	RILL_EURING_DISABLED = -5102,	/* sysctl kernel.io_uring_disabled */
	RILL_EURING_DENIED = -5103,	/* seccomp or LSM refused the syscall */
	RILL_EURING_GROUP = -5104,	/* io_uring limited to io_uring_group */

	/* TLS. */
	RILL_ETLS = -5201,		/* other TLS failure (see the detail) */
	RILL_ETLS_VERIFY = -5202,	/* peer certificate not trusted */
	RILL_ETLS_HOSTNAME = -5203,	/* certificate does not match the host */
	RILL_ETLS_ALERT = -5204,	/* the peer sent a fatal alert */
	RILL_ETLS_EOF = -5205,		/* EOF without close_notify */
	RILL_ETLS_HANDSHAKE_TIMEOUT = -5206, /* ssl_handshake_timeout ran out */
	RILL_ETLS_SHUTDOWN_TIMEOUT = -5207,  /* ssl_shutdown_timeout ran out */
	RILL_ETLS_NOT_AVAILABLE = -5208,	/* TLS requested, none configured */
};

/* Returns a static, human-readable message for any code rill returns:
 * RILL_E* codes, -errno values and 0. Never NULL; unknown codes give
 * "unknown error". The string is static: rill owns it. */
RILL_API const char *rill_strerror(int code);

/* Returns the symbolic name of a code ("ECONNRESET", "RILL_ELIMIT"). Static
 * string, never NULL. */
RILL_API const char *rill_err_name(int code);

/* A longer message for the last error this thread got from rill, where the
 * code alone does not say enough: the io_uring setup failure with its fix,
 * the list of connect attempts behind RILL_EMULTI, the OpenSSL reason behind
 * a RILL_ETLS* code. Empty string when there is none. Every rill call that
 * can fail sets it or clears it when it starts, so it never shows an
 * earlier call's text. Borrowed: valid until the next rill call on this
 * thread. */
RILL_API const char *rill_error_detail(void);

#ifdef __cplusplus
}
#endif

#endif
