/* SPDX-License-Identifier: MIT */
/* rill.h: the public API of rill's core library in one include.
 *
 * TLS lives in its own library, rill-tls, with its own header rill/tls.h,
 * so that programs without TLS never pull OpenSSL.
 */
#ifndef RILL_H
#define RILL_H

#include "rill/common.h"
#include "rill/error.h"
#include "rill/loop.h"
#include "rill/task.h"
#include "rill/stream.h"
#include "rill/sync.h"
#include "rill/process.h"

#endif
