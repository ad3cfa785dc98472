/* SPDX-License-Identifier: MIT */
/* engine/compat.h: io_uring constants newer than Debian 12's liburing 2.3.
 *
 * The values are the kernel's UAPI ones. Whether the running kernel
 * understands them is decided at run time by the probe, never here.
 */
#ifndef RILL_ENGINE_COMPAT_H
#define RILL_ENGINE_COMPAT_H

#include <liburing.h>

#ifndef IORING_RECVSEND_BUNDLE
#define IORING_RECVSEND_BUNDLE (1U << 4)	/* 6.10 */
#endif
#ifndef IORING_FEAT_RECVSEND_BUNDLE
#define IORING_FEAT_RECVSEND_BUNDLE (1U << 14)	/* 6.10 */
#endif
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2			/* 6.12 */
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)		/* 6.12 */
#endif
#ifndef IORING_CQE_BUFFER_SHIFT
#define IORING_CQE_BUFFER_SHIFT 16
#endif
#ifndef IORING_SQ_CQ_OVERFLOW
#define IORING_SQ_CQ_OVERFLOW (1U << 1)
#endif

#endif
