/* SPDX-License-Identifier: MIT */
/* no-io-uring: runs a command under a seccomp filter that refuses the
 * io_uring syscalls, as container runtimes do (docker 25+ and containerd:
 * EPERM; podman and gVisor: ENOSYS). Usage:
 *
 *   no-io-uring [--errno=EPERM|EACCES|ENOSYS|EINVAL|EOPNOTSUPP]
 *               [--enter-only] command [args...]
 *
 * --enter-only refuses io_uring_enter alone (setup and register pass).
 * Children inherit the filter: `no-io-uring ctest` runs the whole suite
 * without io_uring. No libseccomp: a classic BPF program, as
 * tests/test_engine_backend.c installs.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define THIS_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define THIS_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

static int errno_by_name(const char *s)
{
	static const struct { const char *name; int err; } t[] = {
		{ "EPERM", EPERM }, { "EACCES", EACCES }, { "ENOSYS", ENOSYS },
		{ "EINVAL", EINVAL }, { "EOPNOTSUPP", EOPNOTSUPP },
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
		if (!strcmp(s, t[i].name))
			return t[i].err;
	return -1;
}

int main(int argc, char **argv)
{
	unsigned setup = __NR_io_uring_setup, enter = __NR_io_uring_enter,
		 reg = __NR_io_uring_register;
	int err = EPERM, i = 1;

	for (; i < argc && !strncmp(argv[i], "--", 2); i++) {
		if (!strncmp(argv[i], "--errno=", 8) && errno_by_name(argv[i] + 8) > 0) {
			err = errno_by_name(argv[i] + 8);
		} else if (!strcmp(argv[i], "--enter-only")) {
			setup = reg = enter;
		} else {
			fprintf(stderr, "no-io-uring: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (i == argc) {
		fprintf(stderr, "usage: no-io-uring [--errno=EPERM|EACCES|ENOSYS|"
			"EINVAL|EOPNOTSUPP] [--enter-only] command [args...]\n");
		return 2;
	}
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, THIS_AUDIT_ARCH, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, setup, 3, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, enter, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, reg, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (unsigned)err),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog) < 0) {
		perror("no-io-uring: seccomp");
		return 2;
	}
	execvp(argv[i], argv + i);
	perror(argv[i]);
	return 127;
}
