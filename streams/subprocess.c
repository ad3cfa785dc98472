/* SPDX-License-Identifier: MIT */
/* streams/subprocess.c: child processes, asyncio's create_subprocess_exec()
 * and create_subprocess_shell() with their Process.
 *
 * A child is started with posix_spawnp (glibc's is clone(CLONE_VM |
 * CLONE_VFORK) + exec, and reports an exec failure as its result), with
 * every fd but 0, 1 and 2 closed in it. Its pipes are pipe connections
 * (streams/pipe.c) the process owns. Its exit is watched through a pidfd:
 * readable once the child has exited, polled by the loop (io_uring
 * POLL_ADD, epoll EPOLLIN), then reaped with waitid(P_PIDFD). rill takes
 * no SIGCHLD handler and reaps no child but its own.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rill/process.h"
#include "streams/internal.h"

extern char **environ;

struct rill_process {
	rill_loop *loop;
	pid_t pid;
	int pidfd;
	bool reaped;
	bool polling;		/* a task waits on the pidfd */
	int returncode;
	struct rill__conn *in, *out, *err;
	struct rill__waitq waiters;	/* wait()s behind the polling one */
	/* communicate(): its helper tasks still running (they outlive a
	 * cancelled call), whether free waits for them, what they read. */
	unsigned helpers;
	bool free_pending;
	rill_bytes got[3];	/* [1] stdout, [2] stderr */
	ssize_t got_res[3];
};

/* ---- starting ------------------------------------------------------------ */

/* The parent's and the child's ends of one stdio stream: parent -1 when
 * it is not a pipe. */
struct stdio_ends {
	int parent, child;
};

static void ends_close(struct stdio_ends *e)
{
	if (e->parent >= 0)
		close(e->parent);
	if (e->child >= 0)
		close(e->child);
	e->parent = e->child = -1;
}

/* A pipe for child fd `target` (0: the child reads it). */
static int ends_pipe(struct stdio_ends *e, int target)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC) < 0)
		return rill__set_detail(-errno, "pipe2: %s", strerror(errno));
	e->parent = target == 0 ? p[1] : p[0];
	e->child = target == 0 ? p[0] : p[1];
	return 0;
}

/* The file actions that make child fd `target` what mode says. */
static int stdio_action(posix_spawn_file_actions_t *fa, int mode, int target,
			const struct stdio_ends *e)
{
	switch (mode) {
	case RILL_STDIO_INHERIT:
		return 0;
	case RILL_STDIO_PIPE:
		return posix_spawn_file_actions_adddup2(fa, e->child, target);
	case RILL_STDIO_DEVNULL:
		return posix_spawn_file_actions_addopen(fa, target, "/dev/null",
				target == 0 ? O_RDONLY : O_WRONLY, 0);
	default:		/* RILL_STDIO_STDOUT, checked for stderr only */
		return posix_spawn_file_actions_adddup2(fa, 1, 2);
	}
}

static int options_check(const rill_process_options *o)
{
	if (o->stdin_mode < 0 || o->stdin_mode > RILL_STDIO_DEVNULL ||
	    o->stdout_mode < 0 || o->stdout_mode > RILL_STDIO_DEVNULL)
		return rill__set_detail(-EINVAL, "stdin_mode and stdout_mode: "
					"RILL_STDIO_INHERIT, _PIPE or _DEVNULL");
	if (o->stderr_mode < 0 || o->stderr_mode > RILL_STDIO_STDOUT)
		return rill__set_detail(-EINVAL, "stderr_mode: RILL_STDIO_INHERIT, "
					"_PIPE, _DEVNULL or _STDOUT");
	if (!rill_task_current())
		return rill__set_detail(-EPERM, "create_subprocess must run in a task");
	return 0;
}

/* The child's signal state: an empty mask (the loop's thread may block
 * some), and SIGPIPE and SIGXFSZ at their defaults, which a parent that
 * ignores them would pass on (CPython's restore_signals does the same). */
static int spawn_attr(posix_spawnattr_t *attr)
{
	sigset_t none, dfl;

	sigemptyset(&none);
	sigemptyset(&dfl);
	sigaddset(&dfl, SIGPIPE);
	sigaddset(&dfl, SIGXFSZ);
	if (posix_spawnattr_init(attr))
		return -ENOMEM;
	posix_spawnattr_setsigmask(attr, &none);
	posix_spawnattr_setsigdefault(attr, &dfl);
	posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	return 0;
}

static int spawn_actions(posix_spawn_file_actions_t *fa, const rill_process_options *o,
			 const struct stdio_ends ends[3])
{
	int mode[3] = { o->stdin_mode, o->stdout_mode, o->stderr_mode };
	int err = posix_spawn_file_actions_init(fa);

	for (int i = 0; i < 3 && !err; i++)
		err = stdio_action(fa, mode[i], i, &ends[i]);
	if (!err && o->cwd)
		err = posix_spawn_file_actions_addchdir_np(fa, o->cwd);
	if (!err)	/* what was not O_CLOEXEC in this process stays here */
		err = posix_spawn_file_actions_addclosefrom_np(fa, 3);
	return -err;
}

static int spawn_child(const char *const argv[], const rill_process_options *o,
		       const struct stdio_ends ends[3], pid_t *pidp)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char *const *envp = o->env ? (char *const *)o->env : environ;
	int err;

	if ((err = spawn_attr(&attr)) < 0)
		return err;
	if ((err = spawn_actions(&fa, o, ends)) == 0)
		err = -posix_spawnp(pidp, argv[0], &fa, &attr, (char *const *)argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (err < 0)
		return rill__set_detail(err, "cannot start %s: %s", argv[0], strerror(-err));
	return 0;
}

/* The parent's pipe ends become the process's reader and writer. */
static int process_pipes(struct rill_process *p, const rill_process_options *o,
			 struct stdio_ends ends[3])
{
	struct rill__conn **slot[3] = { &p->in, &p->out, &p->err };

	for (int i = 0; i < 3; i++) {
		if (ends[i].parent < 0)
			continue;
		*slot[i] = rill__pipe_conn(ends[i].parent, o->limit, i == 0);
		if (!*slot[i])
			return -ENOMEM;
		ends[i].parent = -1;	/* the connection owns it now */
	}
	return 0;
}

static void conn_drop(struct rill__conn *c)
{
	if (c)
		rill_writer_free(&c->writer);
}

static void process_destroy(struct rill_process *p)
{
	conn_drop(p->in);
	conn_drop(p->out);
	conn_drop(p->err);
	if (p->pidfd >= 0)
		close(p->pidfd);
	free(p);
}

static int process_start(const char *const argv[], const rill_process_options *o,
			 struct rill_process *p)
{
	int mode[3] = { o->stdin_mode, o->stdout_mode, o->stderr_mode };
	struct stdio_ends ends[3] = { { -1, -1 }, { -1, -1 }, { -1, -1 } };
	int err = 0;

	for (int i = 0; i < 3 && !err; i++)
		if (mode[i] == RILL_STDIO_PIPE)
			err = ends_pipe(&ends[i], i);
	if (!err)
		err = spawn_child(argv, o, ends, &p->pid);
	for (int i = 0; i < 3; i++) {	/* the child's ends are the child's */
		if (ends[i].child >= 0)
			close(ends[i].child);
		ends[i].child = -1;
	}
	if (!err) {
		/* The child cannot be reaped before we wait: the pid is ours. */
		p->pidfd = (int)syscall(SYS_pidfd_open, p->pid, 0);
		if (p->pidfd < 0) {
			err = rill__set_detail(-errno, "pidfd_open: %s", strerror(errno));
			kill(p->pid, SIGKILL);
			waitpid(p->pid, NULL, 0);
		}
	}
	if (!err)
		err = process_pipes(p, o, ends);
	for (int i = 0; i < 3; i++)
		ends_close(&ends[i]);
	return err;
}

int rill_create_subprocess_exec(const char *const argv[],
				const rill_process_options *opts,
				rill_process **procp)
{
	rill_process_options o = RILL_PROCESS_OPTIONS_INIT;
	struct rill_process *p;
	int err;

	rill__detail_clear();
	if (!argv || !argv[0] || !procp)
		return rill__set_detail(-EINVAL, "create_subprocess_exec: argv[0] and procp are required");
	if ((err = rill__options_load(&o, sizeof(o), opts, "rill_process_options")) < 0 ||
	    (err = options_check(&o)) < 0)
		return err;
	if (!(p = calloc(1, sizeof(*p))))
		return -ENOMEM;
	p->loop = rill_loop_current();
	p->pidfd = -1;
	rill__waitq_init(&p->waiters);
	if ((err = process_start(argv, &o, p)) < 0) {
		if (p->pidfd >= 0)	/* started, pipes failed: no orphan */
			rill_process_free(p);
		else
			process_destroy(p);
		return err;
	}
	*procp = p;
	return 0;
}

int rill_create_subprocess_shell(const char *cmd, const rill_process_options *opts,
				 rill_process **procp)
{
	const char *argv[] = { "/bin/sh", "-c", cmd, NULL };

	if (!cmd) {
		rill__detail_clear();
		return rill__set_detail(-EINVAL, "create_subprocess_shell: cmd is NULL");
	}
	return rill_create_subprocess_exec(argv, opts, procp);
}

/* ---- the handle ---------------------------------------------------------- */

pid_t rill_process_pid(const rill_process *p)
{
	return p ? p->pid : 0;
}

rill_writer *rill_process_stdin(rill_process *p)
{
	return p && p->in ? &p->in->writer : NULL;
}

rill_reader *rill_process_stdout(rill_process *p)
{
	return p && p->out ? &p->out->reader : NULL;
}

rill_reader *rill_process_stderr(rill_process *p)
{
	return p && p->err ? &p->err->reader : NULL;
}

bool rill_process_returncode(const rill_process *p, int *rcp)
{
	if (!p || !p->reaped)
		return false;
	if (rcp)
		*rcp = p->returncode;
	return true;
}

/* Reaps the child if it has exited; true once it is reaped. */
static bool process_reap(struct rill_process *p)
{
	siginfo_t si;

	if (p->reaped)
		return true;
	memset(&si, 0, sizeof(si));
	if (waitid(P_PIDFD, (id_t)p->pidfd, &si, WEXITED | WNOHANG) < 0) {
		/* ECHILD: reaped behind our back (SIGCHLD set to SIG_IGN,
		 * or a waitpid(-1) of the program): the status is lost. */
		if (errno == EINTR)
			return false;
		si.si_pid = p->pid;
		si.si_code = CLD_EXITED;
		si.si_status = 255;
	}
	if (si.si_pid == 0)
		return false;	/* still running */
	p->reaped = true;
	p->returncode = si.si_code == CLD_EXITED ? si.si_status : -si.si_status;
	return true;
}

int rill_process_wait(rill_process *p, int *rcp)
{
	int err;

	rill__detail_clear();
	if (!p)
		return -EINVAL;
	if (!rill_task_current())
		return rill__set_detail(-EPERM, "rill_process_wait must run in a task");
	while (!process_reap(p)) {
		if (p->polling) {	/* another task polls: wait for its word */
			if ((err = rill__waitq_park(&p->waiters)) < 0)
				return err;
			continue;
		}
		p->polling = true;
		err = rill__wait_readable(p->pidfd);
		p->polling = false;
		if (err < 0) {
			rill__waitq_wake_one(&p->waiters);	/* takes over */
			return err;
		}
		rill__waitq_wake_all(&p->waiters);
	}
	if (rcp)
		*rcp = p->returncode;
	return 0;
}

int rill_process_send_signal(rill_process *p, int sig)
{
	rill__detail_clear();
	if (!p || sig < 0 || sig >= NSIG)
		return rill__set_detail(-EINVAL, "send_signal: no process or a bad signal number");
	if (p->reaped)
		return 0;	/* asyncio: a no-op once returncode is set */
	if (syscall(SYS_pidfd_send_signal, p->pidfd, sig, NULL, 0) < 0 && errno != ESRCH)
		return -errno;
	return 0;
}

int rill_process_terminate(rill_process *p)
{
	return rill_process_send_signal(p, SIGTERM);
}

int rill_process_kill(rill_process *p)
{
	return rill_process_send_signal(p, SIGKILL);
}

/* ---- communicate ------------------------------------------------------- */

static void process_destroy_late(struct rill_process *p);

/* A helper of communicate() is through; the last one frees the process if
 * rill_process_free() came while they ran. */
static void helper_done(struct rill_process *p)
{
	if (--p->helpers == 0 && p->free_pending)
		process_destroy_late(p);
}

/* Sends what is queued on stdin, then closes it. EPIPE and ECONNRESET (the
 * child stopped reading) are not errors, as in asyncio's _feed_stdin. */
static int helper_feed(void *arg)
{
	struct rill_process *p = arg;

	rill_writer_drain(&p->in->writer);
	rill_writer_close(&p->in->writer);
	helper_done(p);
	return 0;
}

static int helper_read(struct rill_process *p, int i, struct rill__conn *c)
{
	p->got_res[i] = rill_reader_read_all(&c->reader, &p->got[i]);
	helper_done(p);
	return 0;
}

static int helper_stdout(void *arg)
{
	struct rill_process *p = arg;

	return helper_read(p, 1, p->out);
}

static int helper_stderr(void *arg)
{
	struct rill_process *p = arg;

	return helper_read(p, 2, p->err);
}

/* Starts the helpers of the pipes there are; *nt of them in t[]. */
static int helpers_start(struct rill_process *p, rill_task *t[3], int *nt)
{
	rill_task_fn fn[3] = { helper_feed, helper_stdout, helper_stderr };
	struct rill__conn *c[3] = { p->in, p->out, p->err };
	int err = 0;

	*nt = 0;
	for (int i = 0; i < 3 && !err; i++) {
		p->got[i] = (rill_bytes){ NULL, 0 };
		p->got_res[i] = 0;
		if (!c[i])
			continue;
		if ((err = rill_spawn(p->loop, fn[i], p, &t[*nt])) == 0) {
			p->helpers++;
			(*nt)++;
		}
	}
	return err;
}

/* Joins the helpers; when the caller is cancelled or times out, those not
 * joined yet run on, detached (they end with the pipes). */
static int helpers_join(rill_task *t[3], int nt)
{
	int err = 0;

	for (int i = 0; i < nt; i++) {
		if (!err && (err = rill_task_join(t[i], NULL)) == 0)
			continue;
		rill_task_detach(t[i]);
	}
	return err;
}

int rill_process_communicate(rill_process *p, const void *input, size_t n,
			     rill_bytes *out, rill_bytes *errout, int *rcp)
{
	rill_task *t[3];
	int nt, err, jerr;

	rill__detail_clear();
	if (!p || (n && !input))
		return rill__set_detail(-EINVAL, "communicate: no process, or input NULL");
	if (n && !p->in)
		return rill__set_detail(-EINVAL, "communicate: input needs stdin_mode RILL_STDIO_PIPE");
	if (!rill_task_current())
		return rill__set_detail(-EPERM, "communicate must run in a task");
	if (p->helpers)
		return rill__set_detail(-EBUSY, "communicate: an earlier call's pipes are still busy");
	/* Queued (copied) now: the helper may start after this call ends. */
	if (n && (err = rill_writer_write(&p->in->writer, input, n)) < 0)
		return err;
	err = helpers_start(p, t, &nt);
	jerr = helpers_join(t, nt);
	if (err < 0 || jerr < 0)
		return err < 0 ? err : jerr;
	if ((err = rill_process_wait(p, rcp)) < 0)
		return err;
	for (int i = 1; i < 3; i++)
		if (p->got_res[i] < 0)
			return (int)p->got_res[i];
	if (out)
		*out = p->got[1];
	if (errout)
		*errout = p->got[2];
	return 0;
}

/* ---- free ------------------------------------------------------------------ */

/* Waits (blocking the thread) for a child that was sent SIGKILL. */
static void process_reap_killed(struct rill_process *p)
{
	while (!process_reap(p) && waitid(P_PIDFD, (id_t)p->pidfd, &(siginfo_t){ 0 },
					  WEXITED | WNOWAIT) < 0 && errno == EINTR)
		;
	process_reap(p);
}

/* The background reaper of a child killed by rill_process_free(). */
static int process_reaper(void *arg)
{
	struct rill_process *p = arg;

	/* Cancelled (the loop is being freed): SIGKILL is sure and quick. */
	if (rill__wait_readable(p->pidfd) < 0 || !process_reap(p))
		process_reap_killed(p);
	close(p->pidfd);
	free(p);
	return 0;
}

/* Ends the pipes for the helpers of a cancelled communicate(): they see
 * EOF and a closed stdin at once, and the last one frees p. */
static void process_free_later(struct rill_process *p)
{
	struct rill__conn *c[3] = { p->in, p->out, p->err };

	p->free_pending = true;
	rill_process_kill(p);
	for (int i = 0; i < 3; i++)
		if (c[i])
			rill_writer_abort(&c[i]->writer);
}

void rill_process_free(rill_process *p)
{
	if (!p)
		return;
	if (p->helpers) {
		process_free_later(p);
		return;
	}
	process_destroy_late(p);
}

static void process_destroy_late(struct rill_process *p)
{
	conn_drop(p->in);
	conn_drop(p->out);
	conn_drop(p->err);
	p->in = p->out = p->err = NULL;
	if (!process_reap(p)) {
		rill_process_kill(p);
		if (!process_reap(p) &&
		    rill_spawn(p->loop, process_reaper, p, NULL) == 0)
			return;
		process_reap_killed(p);	/* no task to be had */
	}
	process_destroy(p);
}
