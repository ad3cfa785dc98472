/* SPDX-License-Identifier: MIT */
/* rill/common.h: definitions every rill header shares. */
#ifndef RILL_COMMON_H
#define RILL_COMMON_H

/* errno.h: rill returns -errno codes (-ECANCELED, -ETIMEDOUT, ...), so
 * every rill header gives the program their names. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(RILL_BUILDING) && defined(__GNUC__)
#define RILL_API __attribute__((visibility("default")))
#else
#define RILL_API
#endif

/* The version of these headers. rill_version() gives the library's, which
 * differs when a program runs against another build than it was compiled
 * with. 0x00MMmmpp: major, minor, patch. */
#define RILL_VERSION_MAJOR 0
#define RILL_VERSION_MINOR 2
#define RILL_VERSION_PATCH 0
#define RILL_VERSION_HEX \
	((RILL_VERSION_MAJOR << 16) | (RILL_VERSION_MINOR << 8) | RILL_VERSION_PATCH)
#define RILL_VERSION_STRING "0.2.0"

/* Nanoseconds on the monotonic clock, the one every rill timeout uses. */
typedef uint64_t rill_time;

#define RILL_NSEC_PER_MSEC 1000000ull
#define RILL_NSEC_PER_SEC 1000000000ull
/* No deadline. */
#define RILL_TIME_NEVER UINT64_MAX

/* The library's version, as RILL_VERSION_HEX and RILL_VERSION_STRING
 * give the headers'. The string is static: rill owns it. */
RILL_API unsigned rill_version(void);
RILL_API const char *rill_version_string(void);

/* Options structs and ABI stability. Every struct a caller fills in for
 * rill starts with `size_t size`, which the struct's init macro sets to
 * the size the program was compiled with:
 *
 *	rill_open_options o = RILL_OPEN_OPTIONS_INIT;	(C and C++)
 *	o.limit = 1024;
 *
 * or in C, as a pointer to a temporary that lives to the end of the
 * enclosing block (the defaults, then the fields given):
 *
 *	rill_open_connection(host, port, RILL_OPEN_OPTIONS(.limit = 1024), ...);
 *
 * A later minor version adds fields only at the end, so a program built
 * against an older version keeps working: rill reads the first `size`
 * bytes and takes defaults for the rest. A size of 0 (the struct was not
 * started from its init macro) is -EINVAL, and so is a size above 4096
 * (no version of a struct is that big: it is an unset field, and rill
 * reads none of it); a size larger than this
 * library knows is accepted only if the bytes it does not know are all
 * zero, else -E2BIG. An options pointer may always be NULL: every
 * default. */
/* The init macros' two shapes: every field zero but size, and the same
 * with sock = -1. C++ gets a value-initialised struct with the same
 * fields set, which no -Wextra warning objects to. */
#ifdef __cplusplus
#define RILL__INIT(type) ([] { type o_{}; o_.size = sizeof(type); return o_; }())
#define RILL__INIT_SOCK(type) \
	([] { type o_{}; o_.size = sizeof(type); o_.sock = -1; return o_; }())
#else
#define RILL__INIT(type) { .size = sizeof(type) }
#define RILL__INIT_SOCK(type) { .size = sizeof(type), .sock = -1 }
#endif
#ifndef __cplusplus
#define RILL__TEMP(type, ...) (&(type){ .size = sizeof(type), __VA_ARGS__ })
#endif

#ifdef __cplusplus
}
#endif

#endif
