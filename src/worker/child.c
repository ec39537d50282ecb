/* child.c - run one work item's command as /bin/sh -c CMD in a process group of its own,
 * copy its output to the log line by line, and make sure that when it ends nothing it
 * started is left running.
 *
 * Each command runs in a new process group led by a small keeper process (below), so
 * SIGTERM/SIGKILL reach everything it started (unless a process leaves the group on
 * purpose), and the keeper kills the whole group if the worker dies without cleaning up
 * (kill -9). The leader is not reaped until the group has been killed: while it is a
 * zombie its pid, and so the group id, cannot be reused by an unrelated process. */
#include "worker/worker_int.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/log.h"

/* ---- output lines (the line buffer itself is in child_data.c) ---- */

struct emit_ctx {
	const char *work_id;
	const char *stream;
};

static void emit_line(const char *line, void *arg)
{
	struct emit_ctx *ctx = arg;
	log_event(LOG_INFO, "output", "work_id", ctx->work_id, "stream", ctx->stream, "line", line, NULL);
}

/* ---- spawning ---- */

static void close_fds_except(int keep)
{
	/* close_range is one syscall; the loop is for kernels without it. */
	if (keep > 3 && close_range(3, (unsigned)keep - 1, 0) == 0 &&
	    close_range((unsigned)keep + 1, ~0U, 0) == 0)
		return;
	if (keep == 3 && close_range(4, ~0U, 0) == 0)
		return;
	long max = sysconf(_SC_OPEN_MAX);
	if (max < 0 || max > 65536)
		max = 65536;
	for (int fd = 3; fd < max; fd++)
		if (fd != keep)
			close(fd);
}

/* ---- the keeper ----
 *
 * The process the worker forks is not the shell but a keeper: it leads the new process
 * group, starts /bin/sh -c CMD in it, waits, and exits the way the shell did. Its one job
 * is the backstop: it asks the kernel for KEEPER_DEATH_SIGNAL when the worker dies
 * (PR_SET_PDEATHSIG), and answers it by SIGKILLing its whole group. Setting that on the
 * shell alone would not do, as the shell's own children would live on.
 *
 * It is a fork of a threaded process, so it uses async-signal-safe calls only. */

#define KEEPER_DEATH_SIGNAL SIGRTMAX

static void keeper_on_worker_death(int sig)
{
	(void)sig;
	kill(0, SIGKILL);
}

static void keeper_on_child(int sig) { (void)sig; }

static void __attribute__((noreturn)) keeper_fail(int report_fd)
{
	int e = errno;
	ssize_t n = write(report_fd, &e, sizeof(e));
	(void)n;
	_exit(127);
}

/* Exit as the shell did: the same code, or death by the same signal. */
static void __attribute__((noreturn)) keeper_mirror(int status)
{
	if (WIFEXITED(status))
		_exit(WEXITSTATUS(status));
	int sig = WTERMSIG(status);
	/* No core file of the keeper for a shell that dumped one. */
	struct rlimit no_core = {0, 0};
	setrlimit(RLIMIT_CORE, &no_core);
	struct sigaction dfl;
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigaction(sig, &dfl, NULL);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, sig);
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	kill(getpid(), sig);
	_exit(128 + sig);
}

static void __attribute__((noreturn))
keeper(const char *cmd, const char *workdir, char **envp, int devnull, int out_w, int err_w, int report_fd,
       pid_t worker)
{
	setpgid(0, 0);
	prctl(PR_SET_NAME, "environd-keeper");
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = keeper_on_worker_death;
	sigaction(KEEPER_DEATH_SIGNAL, &sa, NULL);
	sa.sa_handler = keeper_on_child;
	sigaction(SIGCHLD, &sa, NULL);
	/* The stop signals are for the command; the keeper stays to report how it ended. */
	sa.sa_handler = SIG_IGN;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGQUIT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGPIPE, &sa, NULL);
	/* SIGCHLD is taken only inside sigsuspend below, so the shell's exit cannot slip in
	 * between a waitpid that found nothing and the wait that follows it. */
	sigset_t chld, waiting;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &waiting);
	sigdelset(&waiting, SIGCHLD);
	sigdelset(&waiting, KEEPER_DEATH_SIGNAL);
	prctl(PR_SET_PDEATHSIG, KEEPER_DEATH_SIGNAL);
	/* The worker may have died before the prctl took hold. */
	if (getppid() != worker)
		_exit(127);
	if (workdir && chdir(workdir) != 0)
		keeper_fail(report_fd);
	if (dup2(devnull, 0) < 0 || dup2(out_w, 1) < 0 || dup2(err_w, 2) < 0)
		keeper_fail(report_fd);
	close_fds_except(report_fd);
	pid_t shell = fork();
	if (shell < 0)
		keeper_fail(report_fd);
	if (shell == 0) {
		/* The command gets default signal handling and an empty mask. */
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				sigaction(sig, &dfl, NULL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		char *argv[] = {"sh", "-c", (char *)cmd, NULL};
		execve("/bin/sh", argv, envp);
		keeper_fail(report_fd);
	}
	/* Only the shell holds the output pipes now, so they close when it is done. The
	 * devnull descriptor went with close_fds_except, so open it again. */
	close(report_fd);
	int null_fd = open("/dev/null", O_RDWR);
	if (null_fd >= 0) {
		dup2(null_fd, 1);
		dup2(null_fd, 2);
		if (null_fd > 2)
			close(null_fd);
	} else {
		close(1);
		close(2);
	}
	for (;;) {
		int status;
		pid_t got = waitpid(shell, &status, WNOHANG);
		if (got == shell)
			keeper_mirror(status);
		if (got < 0 && errno != EINTR)
			_exit(127);
		sigsuspend(&waiting);
	}
}

int child_spawn(struct child *ch, const struct worker_config *cfg, char **envp, const char *work_id,
		char *err, size_t errlen)
{
	memset(ch, 0, sizeof(*ch));
	ch->pid = -1;
	ch->pidfd = ch->out_fd = ch->err_fd = -1;
	ch->work_id = work_id;
	int out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, rep_p[2] = {-1, -1};
	int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	/* Every descriptor is close-on-exec, so children of other slots never inherit them. */
	if (devnull < 0 || pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) || pipe2(rep_p, O_CLOEXEC)) {
		snprintf(err, errlen, "cannot create pipes: %s", strerror(errno));
		goto fail;
	}
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork failed: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		keeper(cfg->on_work, cfg->workdir, envp, devnull, out_p[1], err_p[1], rep_p[1], parent);
	/* Set the group from both sides, so a signal sent right after fork finds it. */
	setpgid(pid, pid);
	ch->pid = pid;
	close(out_p[1]);
	close(err_p[1]);
	close(rep_p[1]);
	out_p[1] = err_p[1] = rep_p[1] = -1;
	int child_errno = 0;
	ssize_t n;
	do
		n = read(rep_p[0], &child_errno, sizeof(child_errno));
	while (n < 0 && errno == EINTR);
	close(rep_p[0]);
	rep_p[0] = -1;
	if (n == (ssize_t)sizeof(child_errno)) {
		snprintf(err, errlen, "cannot start /bin/sh%s%s: %s", cfg->workdir ? " in " : "",
			 cfg->workdir ? cfg->workdir : "", strerror(child_errno));
		waitpid(pid, NULL, 0);
		ch->pid = -1;
		goto fail;
	}
	ch->out_fd = out_p[0];
	ch->err_fd = err_p[0];
	fcntl(ch->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(ch->err_fd, F_SETFL, O_NONBLOCK);
	ch->pidfd = pidfd_open(pid, 0);
	close(devnull);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (out_p[i] >= 0)
			close(out_p[i]);
		if (err_p[i] >= 0)
			close(err_p[i]);
		if (rep_p[i] >= 0)
			close(rep_p[i]);
	}
	if (devnull >= 0)
		close(devnull);
	return -1;
}

/* ---- supervising ---- */

void child_describe_status(int status, char *out, size_t len)
{
	if (WIFEXITED(status))
		snprintf(out, len, "exit %d", WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		snprintf(out, len, "signal %s", sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
	else
		snprintf(out, len, "status %d", status);
}

/* Has the keeper (and so the shell) exited? Looks without reaping (WNOWAIT), so the zombie
 * keeps the pgid. */
static void check_leader(struct child *ch)
{
	if (ch->leader_exited)
		return;
	siginfo_t info;
	memset(&info, 0, sizeof(info));
	if (waitid(P_PID, (id_t)ch->pid, &info, WEXITED | WNOHANG | WNOWAIT) != 0 || info.si_pid == 0)
		return;
	ch->leader_exited = 1;
	if (info.si_code == CLD_EXITED)
		ch->status = (info.si_status & 0xff) << 8;
	else
		ch->status = info.si_status & 0x7f;
}

static void read_stream(struct child *ch, int *fd, struct line_buf *lb, const char *stream)
{
	struct emit_ctx ctx = {ch->work_id, stream};
	char chunk[4096];
	/* Bounded, so one chatty child cannot starve the rest of the loop. */
	for (int i = 0; i < 16 && *fd >= 0; i++) {
		ssize_t n = read(*fd, chunk, sizeof(chunk));
		if (n > 0) {
			line_buf_feed(lb, chunk, (size_t)n, emit_line, &ctx);
			continue;
		}
		if (n < 0 && (errno == EINTR))
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		line_buf_flush(lb, emit_line, &ctx);
		close(*fd);
		*fd = -1;
	}
}

static void signal_group(struct child *ch, int sig, const char *why)
{
	if (killpg(ch->pid, sig) != 0 && errno != ESRCH)
		log_event(LOG_WARN, "signal_failed", "work_id", ch->work_id, "error", strerror(errno), NULL);
	if (why)
		log_event(LOG_INFO, "child_signal", "work_id", ch->work_id, "signal", sigabbrev_np(sig), "reason",
			  why, NULL);
}

void child_supervise(struct child *ch, int grace_s, int wake_fd, child_stop_check should_stop, void *arg)
{
	int64_t grace_us = (int64_t)grace_s * 1000000;
	int64_t term_at = 0, kill_at = 0, exited_at = 0;
	for (;;) {
		int64_t now = clock_mono_us();
		check_leader(ch);
		struct child_order order = {NULL, 0, 0};
		should_stop(arg, &order);
		if (order.why && order.kill_now && !kill_at) {
			/* Someone else may run this item already: no grace, whatever stage we are at. */
			signal_group(ch, SIGKILL, order.why);
			kill_at = now;
		} else if (!term_at && !kill_at && !ch->leader_exited && order.why) {
			signal_group(ch, SIGTERM, order.why);
			term_at = now;
		}
		if (ch->leader_exited && !exited_at) {
			exited_at = now;
			char how[48];
			child_describe_status(ch->status, how, sizeof(how));
			log_event(LOG_INFO, "child_exit", "work_id", ch->work_id, "status", how, NULL);
			/* Whatever the shell left behind in its group goes with it. */
			signal_group(ch, SIGTERM, NULL);
		}
		/* grace_s runs from our SIGTERM, or from the shell's exit for what it left
		 * behind. The shell may exit at once on SIGTERM while a command it started
		 * traps it, so the grace period does not restart when the shell goes. */
		int64_t since = term_at ? term_at : exited_at;
		if (since && !kill_at && now - since >= grace_us) {
			/* Open pipes mean some process of the group is still there to kill. */
			int lingering = !ch->leader_exited || ch->out_fd >= 0 || ch->err_fd >= 0;
			signal_group(ch, SIGKILL, lingering ? "grace period over" : NULL);
			kill_at = now;
		}
		/* Done: the shell is gone and its output closed (or leftovers were killed and may
		 * have handed the pipe to something outside the group). */
		if (ch->leader_exited && ((ch->out_fd < 0 && ch->err_fd < 0) || kill_at))
			break;

		struct pollfd fds[4];
		int nfds = 0;
		if (ch->out_fd >= 0)
			fds[nfds++] = (struct pollfd){.fd = ch->out_fd, .events = POLLIN};
		if (ch->err_fd >= 0)
			fds[nfds++] = (struct pollfd){.fd = ch->err_fd, .events = POLLIN};
		if (ch->pidfd >= 0 && !ch->leader_exited)
			fds[nfds++] = (struct pollfd){.fd = ch->pidfd, .events = POLLIN};
		int wake_index = nfds;
		fds[nfds++] = (struct pollfd){.fd = wake_fd, .events = POLLIN};
		/* Without a pidfd the shell's exit is only seen by looking, so look often. */
		int64_t timeout_us = ch->pidfd >= 0 ? 1000000 : 100000;
		if (since && !kill_at && since + grace_us - now < timeout_us)
			timeout_us = since + grace_us - now;
		if (order.check_by_us && !kill_at && order.check_by_us - now < timeout_us)
			timeout_us = order.check_by_us - now;
		if (timeout_us < 0)
			timeout_us = 0;
		int rc = poll(fds, (nfds_t)nfds, (int)((timeout_us + 999) / 1000));
		if (rc < 0 && errno != EINTR)
			break;
		read_stream(ch, &ch->out_fd, &ch->out, "stdout");
		read_stream(ch, &ch->err_fd, &ch->err, "stderr");
		/* One read empties the pipe of any burst of wake-ups; it is never read when it
		 * is empty, so a blocking pipe cannot hang the loop. */
		if (rc > 0 && (fds[wake_index].revents & POLLIN)) {
			char drain[64];
			ssize_t n = read(wake_fd, drain, sizeof(drain));
			(void)n;
		}
	}
	/* The zombie leader still holds the group id, so this cannot hit a stranger. */
	if (!kill_at)
		signal_group(ch, SIGKILL, NULL);
	/* Whatever is already in the pipes still belongs in the log. */
	read_stream(ch, &ch->out_fd, &ch->out, "stdout");
	read_stream(ch, &ch->err_fd, &ch->err, "stderr");
	struct emit_ctx out_ctx = {ch->work_id, "stdout"}, err_ctx = {ch->work_id, "stderr"};
	line_buf_flush(&ch->out, emit_line, &out_ctx);
	line_buf_flush(&ch->err, emit_line, &err_ctx);
	int status;
	while (waitpid(ch->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (ch->out_fd >= 0)
		close(ch->out_fd);
	if (ch->err_fd >= 0)
		close(ch->err_fd);
	if (ch->pidfd >= 0)
		close(ch->pidfd);
	ch->out_fd = ch->err_fd = ch->pidfd = -1;
}
