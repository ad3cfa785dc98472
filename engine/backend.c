/* SPDX-License-Identifier: MIT */
/* engine/backend.c: which backend a new loop runs on, and why.
 *
 * io_uring is tried once per process: a ring is set up and a no-op makes
 * one io_uring_enter round trip (a seccomp filter may refuse the enter
 * alone, and a loop that cannot enter would spin). If either step fails
 * with an errno that means "io_uring is refused or missing here" (ENOSYS,
 * EPERM, EACCES, EOPNOTSUPP, EINVAL), loops run on epoll, and one line
 * through the log hook names the cause. ENOMEM is a reason to fall back
 * only where RLIMIT_MEMLOCK binds (no CAP_IPC_LOCK, a finite limit): the
 * kernel charges rings to it, and a loop that cannot have one runs on
 * epoll (rill__uring_nomem). Other errors are reported by the loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "engine/loop.h"
#include "rill/stream.h"	/* the log levels */

static int uring_err;			/* 0: io_uring works here */
static const char *uring_step;		/* the call that failed */

static const char *errno_name(int err)
{
	switch (err) {
	case ENOSYS: return "ENOSYS";
	case EPERM: return "EPERM";
	case EACCES: return "EACCES";
	case EOPNOTSUPP: return "EOPNOTSUPP";
	case EINVAL: return "EINVAL";
	case ENOMEM: return "ENOMEM";
	default: return strerror(err);
	}
}

static int read_int_file(const char *path)
{
	char buf[16] = { 0 };
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoi(buf) : -1;
}

/* Whether a seccomp filter is installed on this thread ("Seccomp: 2"). */
static bool seccomp_filtered(void)
{
	char buf[4096];
	int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	ssize_t n;
	const char *p;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	p = strstr(buf, "\nSeccomp:");
	return p && atoi(p + 9) == 2;
}

/* The rill error code for a refused io_uring (err > 0), and in why a
 * sentence naming the cause. */
static int refusal(int err, char *why, size_t len)
{
	if (err == ENOSYS && seccomp_filtered()) {
		snprintf(why, len, "a seccomp filter refuses it (ENOSYS with "
			 "Seccomp: 2 in /proc/self/status: a container profile "
			 "such as podman's or gVisor's, not an old kernel)");
		return RILL_EURING_DENIED;
	}
	if (err == ENOSYS) {
		snprintf(why, len, "the kernel lacks it (ENOSYS): "
			 "CONFIG_IO_URING=y, 5.19 or later, has it");
		return RILL_EURING_NOSYS;
	}
	if (err == EPERM || err == EACCES) {
		switch (read_int_file("/proc/sys/kernel/io_uring_disabled")) {
		case 2:
			snprintf(why, len, "sysctl kernel.io_uring_disabled=2 (%s)",
				 errno_name(err));
			return RILL_EURING_DISABLED;
		case 1:
			snprintf(why, len, "sysctl kernel.io_uring_disabled=1 and "
				 "this user is not in kernel.io_uring_group (%s)",
				 errno_name(err));
			return RILL_EURING_GROUP;
		default:
			snprintf(why, len, "%s, most likely from a container's seccomp "
				 "profile (docker 25+, containerd) or an LSM",
				 errno_name(err));
			return RILL_EURING_DENIED;
		}
	}
	if (err == EOPNOTSUPP || err == EINVAL) {
		snprintf(why, len, "%s: the kernel or a sandbox (gVisor) does not "
			 "support what rill needs of io_uring (5.19 or later)",
			 errno_name(err));
		return RILL_EURING_DENIED;
	}
	snprintf(why, len, "%s", errno_name(err));
	return -err;
}

static bool refused(int err)
{
	return err == ENOSYS || err == EPERM || err == EACCES ||
	       err == EOPNOTSUPP || err == EINVAL;
}

/* One ring and one no-op round trip: what every loop will do. */
static void uring_check(void)
{
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	int ret = io_uring_queue_init(2, &ring, 0);

	if (ret < 0) {
		uring_err = -ret;
		uring_step = "io_uring_setup";
		return;
	}
	io_uring_prep_nop(io_uring_get_sqe(&ring));
	ret = io_uring_submit_and_wait(&ring, 1);
	if (ret < 0) {
		uring_err = -ret;
		uring_step = "io_uring_enter";
	} else if (io_uring_peek_cqe(&ring, &cqe) == 0) {
		io_uring_cqe_seen(&ring, cqe);
	}
	io_uring_queue_exit(&ring);
}

static void check_once(void)
{
	uring_check();
}

/* The one line saying loops fall back, logged by the first loop that
 * does: not at the check, since a loop that requires io_uring does not
 * fall back and must not say it does. */
static void log_fallback(void)
{
	static atomic_bool said;
	char why[256];

	if (atomic_exchange(&said, true))
		return;
	refusal(uring_err, why, sizeof(why));
	rill__log(RILL_LOG_INFO, "io_uring unavailable, %s failed: %s; "
		  "loops run on the epoll backend", uring_step, why);
}

/* The backend the environment asks for (RILL_BACKEND), or AUTO. */
static int backend_from_env(void)
{
	const char *s = getenv("RILL_BACKEND");

	if (s && !strcmp(s, "epoll"))
		return RILL_BACKEND_EPOLL;
	if (s && (!strcmp(s, "io_uring") || !strcmp(s, "uring")))
		return RILL_BACKEND_IO_URING;
	return RILL_BACKEND_AUTO;
}

/* io_uring was required (by the option, or by RILL_BACKEND when from_env)
 * and is refused: the error, with what refused it, how to allow it (the
 * code's message) and how to run without it. */
static int required_refused(bool from_env)
{
	char why[256];
	int code = refusal(uring_err, why, sizeof(why));

	return rill__set_detail(code, "rill_loop_new: io_uring is required (%s) "
				"and refused: %s failed: %s. To allow it: %s. Or "
				"run on epoll: %s", from_env ? "RILL_BACKEND=io_uring"
				: "rill_loop_options.backend = RILL_BACKEND_IO_URING",
				uring_step, why, rill_strerror(code),
				from_env ? "unset RILL_BACKEND or set it to epoll"
				: "leave backend at RILL_BACKEND_AUTO");
}

int rill__backend_choose(int want)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	bool from_env = false;

	if (want == RILL_BACKEND_AUTO) {
		want = backend_from_env();
		from_env = want != RILL_BACKEND_AUTO;
	}
	if (want == RILL_BACKEND_EPOLL)
		return RILL_BACKEND_EPOLL;
	pthread_once(&once, check_once);
	if (!uring_err)
		return RILL_BACKEND_IO_URING;
	if (!refused(uring_err) && !strcmp(uring_step, "io_uring_setup"))
		return RILL_BACKEND_IO_URING;	/* ENOMEM: the loop says why */
	if (want == RILL_BACKEND_IO_URING)
		return required_refused(from_env);
	if (!refused(uring_err)) {	/* a failing enter: no reason to fall back */
		char why[256];
		int code = refusal(uring_err, why, sizeof(why));

		return rill__set_detail(code, "rill_loop_new: %s failed: %s",
					uring_step, why);
	}
	log_fallback();
	return RILL_BACKEND_EPOLL;
}

/* Whether the kernel charges this process's rings to RLIMIT_MEMLOCK: it
 * does (6.x kernels included) unless the process has CAP_IPC_LOCK, and the
 * limit binds unless it is infinite. *limit gets the limit in bytes. */
static bool memlock_bound(rlim_t *limit)
{
	struct __user_cap_header_struct h = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct d[2] = { { 0 } };
	struct rlimit rl;

	if (getrlimit(RLIMIT_MEMLOCK, &rl) < 0 || rl.rlim_cur == RLIM_INFINITY)
		return false;
	*limit = rl.rlim_cur;
	if (syscall(SYS_capget, &h, d) < 0)
		return true;
	return !(d[CAP_IPC_LOCK / 32].effective & (1u << (CAP_IPC_LOCK % 32)));
}

/* The sentence naming RLIMIT_MEMLOCK, for the log and the detail. */
static void memlock_why(char *buf, size_t len, rlim_t limit)
{
	snprintf(buf, len, "io_uring_setup: out of memory: the ring counts against "
		 "RLIMIT_MEMLOCK (%llu KiB, shared by all of this user's processes; "
		 "CAP_IPC_LOCK lifts it); raise it (ulimit -l, systemd LimitMEMLOCK=, "
		 "docker --ulimit memlock=) or lower rill_loop_options.sq_entries",
		 (unsigned long long)limit / 1024);
}

int rill__uring_nomem(int want)
{
	static atomic_bool said;
	char why[400];
	rlim_t limit;

	if (!memlock_bound(&limit))
		return -ENOMEM;	/* out of memory indeed: the detail is set */
	memlock_why(why, sizeof(why), limit);
	if (want == RILL_BACKEND_AUTO)
		want = backend_from_env();
	if (want == RILL_BACKEND_IO_URING)
		return rill__set_detail(-ENOMEM, "rill_loop_new: io_uring is required "
					"and %s", why);
	if (!atomic_exchange(&said, true))
		rill__log(RILL_LOG_INFO, "%s; loops that cannot have a ring run on the "
			  "epoll backend", why);
	return RILL_BACKEND_EPOLL;
}

int rill__uring_setup_error(int err)
{
	char why[400];
	rlim_t limit;
	int code;

	if (err == -ENOMEM && memlock_bound(&limit)) {
		memlock_why(why, sizeof(why), limit);
		return rill__set_detail(err, "%s", why);
	}
	if (err == -ENOMEM)
		return rill__set_detail(err, "io_uring_setup: out of memory");
	code = refusal(-err, why, sizeof(why));
	return rill__set_detail(code, "rill_loop_new: io_uring_setup failed: %s",
				why);
}

int rill_loop_backend(const rill_loop *loop)
{
	return loop ? loop->backend : RILL_BACKEND_AUTO;
}
