/* SPDX-License-Identifier: MIT */
/* engine/probe.c: which optional io_uring features the running kernel has.
 *
 * Each feature is tried for real on a scratch ring, once per process: an
 * opcode table says little about flags such as multishot, and the kernel
 * answers an unknown flag with -EINVAL at prepare time, before any I/O.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "engine/loop.h"

static const char *const feature_names[] = {
	"multishot_accept", "multishot_recv", "buf_ring", "bundle",
	"buf_inc", "send_zc", "defer_taskrun", "coop_taskrun",
	"ring_fd", "ext_arg",
};

const char *rill_feature_name(unsigned feature)
{
	for (unsigned i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		if (feature == 1u << i)
			return feature_names[i];
	return NULL;
}

static unsigned feature_by_name(const char *s, size_t n)
{
	if (n == 3 && !strncmp(s, "all", 3))
		return RILL_FEAT_ALL;
	if (n == 9 && !strncmp(s, "multishot", 9))
		return RILL_FEAT_MULTISHOT;
	for (unsigned i = 0; i < sizeof(feature_names) / sizeof(feature_names[0]); i++)
		if (strlen(feature_names[i]) == n && !strncmp(s, feature_names[i], n))
			return 1u << i;
	return 0;
}

/* RILL_DISABLE=multishot,bundle,... : the features tests switch off to run
 * the fallback paths on a kernel that has everything. Unknown names are
 * ignored so that an old binary runs under a newer test script. */
unsigned rill__disabled_from_env(void)
{
	const char *s = getenv("RILL_DISABLE");
	unsigned mask = 0;

	while (s && *s) {
		size_t n = strcspn(s, ", ");
		mask |= feature_by_name(s, n);
		s += n;
		s += strspn(s, ", ");
	}
	return mask;
}

/* Submits one prepared SQE plus a cancel of it, and returns the first
 * op's result: -EINVAL means the kernel rejected the flags. */
static int try_and_cancel(struct io_uring *ring, struct io_uring_sqe *sqe)
{
	struct io_uring_cqe *cqe;
	int res = -EINVAL, seen = 0;

	io_uring_sqe_set_data64(sqe, 1);
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_cancel64(sqe, 1, 0);
	io_uring_sqe_set_data64(sqe, 2);
	io_uring_submit(ring);
	while (seen < 2 && io_uring_wait_cqe(ring, &cqe) == 0) {
		if (cqe->user_data == 1)
			res = cqe->res;
		seen++;
		io_uring_cqe_seen(ring, cqe);
	}
	return res;
}

static bool probe_multishot_accept(struct io_uring *ring)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	struct io_uring_sqe *sqe;
	int fd, res;

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	/* Autobind to an abstract address: no file left behind. */
	if (bind(fd, (struct sockaddr *)&addr, sizeof(sa_family_t)) < 0 ||
	    listen(fd, 1) < 0) {
		close(fd);
		return false;
	}
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_multishot_accept(sqe, fd, NULL, NULL, 0);
	res = try_and_cancel(ring, sqe);
	close(fd);
	return res != -EINVAL;
}

static bool probe_multishot_recv(struct io_uring *ring, uint16_t bgid)
{
	struct io_uring_sqe *sqe;
	int sv[2], res;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return false;
	sqe = io_uring_get_sqe(ring);
	io_uring_prep_recv_multishot(sqe, sv[0], NULL, 0, 0);
	sqe->flags |= IOSQE_BUFFER_SELECT;
	sqe->buf_group = bgid;
	res = try_and_cancel(ring, sqe);
	close(sv[0]);
	close(sv[1]);
	return res != -EINVAL;
}

/* Registers a one-entry buffer ring with the given flags. With keep, a
 * ring that registered stays registered (for the recv probe) and its
 * memory is handed back in *keep, to unmap once the ring is gone; without,
 * it is unregistered and unmapped at once. */
static bool probe_buf_ring(struct io_uring *ring, uint16_t bgid, uint16_t flags,
			   void **keep)
{
	size_t len = (size_t)sysconf(_SC_PAGESIZE);
	struct io_uring_buf_reg reg = { 0 };
	void *mem;
	int ret;

	mem = mmap(NULL, len, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED)
		return false;
	reg.ring_addr = (uintptr_t)mem;
	reg.ring_entries = 1;
	reg.bgid = bgid;
	reg.pad = flags;	/* "flags" in newer UAPI headers */
	ret = io_uring_register_buf_ring(ring, &reg, 0);
	if (ret == 0 && keep) {
		*keep = mem;
		return true;
	}
	if (ret == 0)
		io_uring_unregister_buf_ring(ring, bgid);
	munmap(mem, len);
	return ret == 0;
}

static unsigned probe_ops(struct io_uring *ring)
{
	struct io_uring_probe *p = io_uring_get_probe_ring(ring);
	unsigned f = 0;

	if (!p)
		return 0;
	if (io_uring_opcode_supported(p, IORING_OP_SEND_ZC))
		f |= RILL_FEAT_SEND_ZC;
	io_uring_free_probe(p);
	return f;
}

static unsigned probe_setup_flags(void)
{
	struct io_uring ring;
	unsigned f = 0;

	if (io_uring_queue_init(4, &ring, IORING_SETUP_SINGLE_ISSUER |
				IORING_SETUP_DEFER_TASKRUN) == 0) {
		f |= RILL_FEAT_DEFER_TASKRUN;
		io_uring_queue_exit(&ring);
	}
	if (io_uring_queue_init(4, &ring, IORING_SETUP_COOP_TASKRUN) == 0) {
		f |= RILL_FEAT_COOP_TASKRUN;
		io_uring_queue_exit(&ring);
	}
	return f;
}

static unsigned probed;

static void probe_once(void)
{
	void *ring_mem = NULL;
	struct io_uring_params p = { 0 };
	struct io_uring ring;
	unsigned f;

	if (io_uring_queue_init_params(8, &ring, &p) < 0)
		return;
	f = probe_ops(&ring) | probe_setup_flags();
	if (p.features & IORING_FEAT_EXT_ARG)
		f |= RILL_FEAT_EXT_ARG;
	if (p.features & IORING_FEAT_RECVSEND_BUNDLE)
		f |= RILL_FEAT_BUNDLE;
	if (io_uring_register_ring_fd(&ring) == 1)
		f |= RILL_FEAT_RING_FD;
	if (probe_multishot_accept(&ring))
		f |= RILL_FEAT_MULTISHOT_ACCEPT;
	if (probe_buf_ring(&ring, 1, IOU_PBUF_RING_INC, NULL))
		f |= RILL_FEAT_BUF_INC;
	if (probe_buf_ring(&ring, 0, 0, &ring_mem)) {
		f |= RILL_FEAT_BUF_RING;
		if (probe_multishot_recv(&ring, 0))
			f |= RILL_FEAT_MULTISHOT_RECV;
	}
	io_uring_queue_exit(&ring);
	if (ring_mem)
		munmap(ring_mem, (size_t)sysconf(_SC_PAGESIZE));
	probed = f;
}

unsigned rill_features_probe(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, probe_once);
	return probed;
}
