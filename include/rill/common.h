/* SPDX-License-Identifier: MIT */
/* rill/common.h: definitions every rill header shares. */
#ifndef RILL_COMMON_H
#define RILL_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(RILL_BUILDING) && defined(__GNUC__)
#define RILL_API __attribute__((visibility("default")))
#else
#define RILL_API
#endif

#define RILL_VERSION_MAJOR 0
#define RILL_VERSION_MINOR 1
#define RILL_VERSION_PATCH 0

/* Nanoseconds on the monotonic clock, the one every rill timeout uses. */
typedef uint64_t rill_time;

#define RILL_NSEC_PER_MSEC 1000000ull
#define RILL_NSEC_PER_SEC 1000000000ull
/* No deadline. */
#define RILL_TIME_NEVER UINT64_MAX

#endif
