/* child.c - run one work item's command as /bin/sh -c CMD in a process group of its own,
 * copy its output to the log line by line, and make sure that when it ends nothing it
 * started is left running.
 *
 * Each command runs in a new process group led by a small keeper process (keeper.c), so
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

/* Each piece of text the keeper's argv needs, built before the fork (snprintf is not
 * async-signal-safe, and the fork is of a threaded process). */
struct keeper_args {
	char worker[24], uid[24], gid[24];
	char groups[WORKER_MAX_GROUPS * 11 + 1];
	char *argv[KEEPER_ARGC + 2]; /* "environd", the words, NULL */
};

static void keeper_args_build(struct keeper_args *ka, const struct worker_config *cfg, const char *workdir)
{
	snprintf(ka->worker, sizeof(ka->worker), "%d", (int)getpid());
	const struct worker_run_as *ra = cfg->run_as;
	snprintf(ka->uid, sizeof(ka->uid), "-");
	snprintf(ka->gid, sizeof(ka->gid), "-");
	ka->groups[0] = '\0';
	if (ra) {
		snprintf(ka->uid, sizeof(ka->uid), "%lu", (unsigned long)ra->uid);
		snprintf(ka->gid, sizeof(ka->gid), "%lu", (unsigned long)ra->gid);
		size_t off = 0;
		for (int i = 0; i < ra->ngroups && off < sizeof(ka->groups); i++)
			off += (size_t)snprintf(ka->groups + off, sizeof(ka->groups) - off, "%s%lu", i ? "," : "",
						(unsigned long)ra->groups[i]);
	}
	char **v = ka->argv;
	*v++ = "environd";
	*v++ = KEEPER_SUBCOMMAND;
	*v++ = ka->worker;
	*v++ = (char *)(workdir ? workdir : "");
	*v++ = ka->uid;
	*v++ = ka->gid;
	*v++ = ka->groups;
	*v++ = (char *)cfg->on_work;
	*v = NULL;
}

/* In the forked child: descriptors in place (0 stdin, 1 stdout, 2 stderr, 3 the report
 * pipe), everything else closed, then exec a fresh keeper. Async-signal-safe calls only. */
static void __attribute__((noreturn)) exec_keeper(struct keeper_args *ka, char **envp, const int *fds)
{
	setpgid(0, 0);
	/* From here until the keeper sets its handler, the signal's default action ends it,
	 * which is right: nothing has started yet. */
	prctl(PR_SET_PDEATHSIG, KEEPER_DEATH_SIGNAL);
	int high[4], report_fd = fds[3];
	/* Out of the way first, so no dup2 below overwrites a descriptor still to be moved. */
	for (int i = 0; i < 4; i++)
		if ((high[i] = fcntl(fds[i], F_DUPFD_CLOEXEC, 10)) < 0)
			goto fail;
	for (int i = 0; i < 4; i++)
		if (dup2(high[i], i) < 0)
			goto fail;
	report_fd = KEEPER_REPORT_FD;
	/* Nothing of the worker's (its sockets, other slots' pipes) goes past the exec. */
	if (close_range(4, ~0U, 0) != 0) {
		for (int fd = 4; fd < 65536; fd++)
			close(fd);
	}
	execve("/proc/self/exe", ka->argv, envp);
fail:;
	struct keeper_report rep = {KEEPER_STAGE_EXEC, errno};
	ssize_t n = write(report_fd, &rep, sizeof(rep));
	(void)n;
	_exit(127);
}

static const char *stage_text(int stage)
{
	switch (stage) {
	case KEEPER_STAGE_EXEC: return "cannot start the keeper (/proc/self/exe)";
	case KEEPER_STAGE_ARGS: return "the keeper was started wrongly";
	case KEEPER_STAGE_WORKDIR: return "cannot enter the working directory";
	case KEEPER_STAGE_USER: return "cannot become the --run-as user";
	default: return "cannot start /bin/sh";
	}
}

int child_spawn(struct child *ch, const struct worker_config *cfg, const char *workdir, char **envp,
		const char *stdin_data, size_t stdin_len, const char *work_id, char *err, size_t errlen)
{
	memset(ch, 0, sizeof(*ch));
	ch->pid = -1;
	ch->pidfd = ch->out_fd = ch->err_fd = ch->in_fd = -1;
	ch->work_id = work_id;
	struct keeper_args *ka = malloc(sizeof(*ka));
	int in_p[2] = {-1, -1}, out_p[2] = {-1, -1}, err_p[2] = {-1, -1}, rep_p[2] = {-1, -1};
	/* Every descriptor is close-on-exec, so children of other slots never inherit them. */
	if (!ka || pipe2(in_p, O_CLOEXEC) || pipe2(out_p, O_CLOEXEC) || pipe2(err_p, O_CLOEXEC) ||
	    pipe2(rep_p, O_CLOEXEC)) {
		snprintf(err, errlen, "cannot create pipes: %s", strerror(errno));
		goto fail;
	}
	keeper_args_build(ka, cfg, workdir);
	int fds[4] = {in_p[0], out_p[1], err_p[1], rep_p[1]};
	pid_t pid = fork();
	if (pid < 0) {
		snprintf(err, errlen, "fork failed: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		exec_keeper(ka, envp, fds);
	/* Set the group from both sides, so a signal sent right after fork finds it. */
	setpgid(pid, pid);
	ch->pid = pid;
	close(in_p[0]);
	close(out_p[1]);
	close(err_p[1]);
	close(rep_p[1]);
	in_p[0] = out_p[1] = err_p[1] = rep_p[1] = -1;
	struct keeper_report rep = {0, 0};
	ssize_t n;
	do
		n = read(rep_p[0], &rep, sizeof(rep));
	while (n < 0 && errno == EINTR);
	close(rep_p[0]);
	rep_p[0] = -1;
	if (n == (ssize_t)sizeof(rep)) {
		snprintf(err, errlen, "%s%s%s: %s", stage_text(rep.stage),
			 rep.stage == KEEPER_STAGE_WORKDIR ? " " : "",
			 rep.stage == KEEPER_STAGE_WORKDIR && workdir ? workdir : "", strerror(rep.err));
		waitpid(pid, NULL, 0);
		ch->pid = -1;
		goto fail;
	}
	ch->out_fd = out_p[0];
	ch->err_fd = err_p[0];
	ch->in_fd = in_p[1];
	ch->in_data = stdin_data;
	ch->in_len = stdin_data ? stdin_len : 0;
	fcntl(ch->out_fd, F_SETFL, O_NONBLOCK);
	fcntl(ch->err_fd, F_SETFL, O_NONBLOCK);
	fcntl(ch->in_fd, F_SETFL, O_NONBLOCK);
	ch->pidfd = pidfd_open(pid, 0);
	free(ka);
	return 0;
fail:
	for (int i = 0; i < 2; i++) {
		if (in_p[i] >= 0)
			close(in_p[i]);
		if (out_p[i] >= 0)
			close(out_p[i]);
		if (err_p[i] >= 0)
			close(err_p[i]);
		if (rep_p[i] >= 0)
			close(rep_p[i]);
	}
	free(ka);
	return -1;
}

/* Feed the command's stdin as far as the pipe takes it; close it once all is written, or
 * when the command will read no more. */
static void write_stdin(struct child *ch)
{
	while (ch->in_fd >= 0 && ch->in_off < ch->in_len) {
		ssize_t n = write(ch->in_fd, ch->in_data + ch->in_off, ch->in_len - ch->in_off);
		if (n > 0) {
			ch->in_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		break; /* EPIPE: the command closed its stdin */
	}
	if (ch->in_fd >= 0) {
		close(ch->in_fd);
		ch->in_fd = -1;
	}
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

		write_stdin(ch);
		struct pollfd fds[5];
		int nfds = 0;
		if (ch->in_fd >= 0)
			fds[nfds++] = (struct pollfd){.fd = ch->in_fd, .events = POLLOUT};
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
	if (ch->in_fd >= 0)
		close(ch->in_fd);
	ch->out_fd = ch->err_fd = ch->pidfd = ch->in_fd = -1;
}
