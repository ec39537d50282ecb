/* keeper.c - the process that leads each command's process group (`environd __keeper`).
 *
 * The worker forks and at once execs its own binary (/proc/self/exe) with this hidden
 * subcommand, so the keeper is a fresh program: it holds no copy of the worker's memory,
 * and its environment is the command's, never the worker's. It makes itself non-dumpable,
 * so a command running as the same user cannot read its memory or environment through
 * /proc or ptrace either.
 *
 * It leads the group, starts /bin/sh -c CMD in it (as the --run-as user when one is
 * given), waits, and exits the way the shell did. Its other job is the backstop: it asks
 * the kernel for KEEPER_DEATH_SIGNAL when the worker dies (PR_SET_PDEATHSIG), and answers
 * it by SIGKILLing its whole group. Setting that on the shell alone would not do, as the
 * shell's own children would live on.
 *
 * Descriptors on entry: 0 the command's stdin, 1 and 2 its stdout and stderr, 3 the report
 * pipe, on which a failure to start is written as a struct keeper_report; it is
 * close-on-exec, so the worker reads EOF once /bin/sh is running. */
#include "worker/worker_int.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void keeper_on_worker_death(int sig)
{
	(void)sig;
	kill(0, SIGKILL);
}

static void keeper_on_child(int sig) { (void)sig; }

static void __attribute__((noreturn)) keeper_fail(int stage)
{
	struct keeper_report rep = {stage, errno};
	ssize_t n = write(KEEPER_REPORT_FD, &rep, sizeof(rep));
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

static int parse_id(const char *s, long long max, long long *out)
{
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < 0 || v > max)
		return -1;
	*out = v;
	return 0;
}

/* "g1,g2,..." into groups; returns the count, or -1. */
static int parse_groups(const char *s, gid_t *groups, int cap)
{
	int n = 0;
	while (*s) {
		char *end;
		errno = 0;
		long long v = strtoll(s, &end, 10);
		if (errno || end == s || v < 0 || v > (long long)UINT32_MAX - 1 || n == cap)
			return -1;
		groups[n++] = (gid_t)v;
		if (*end == ',')
			end++;
		else if (*end)
			return -1;
		s = end;
	}
	return n;
}

/* In the shell's process: the user's groups, then its gid, then its uid; setuid last, as
 * it gives up the right to do the others. */
static void become(long long uid, long long gid, const gid_t *groups, int ngroups)
{
	if (setgroups((size_t)ngroups, groups) != 0 || setgid((gid_t)gid) != 0 || setuid((uid_t)uid) != 0)
		keeper_fail(KEEPER_STAGE_USER);
	/* A uid that could be taken back would make the drop pointless. */
	if (setuid(0) == 0 && uid != 0) {
		errno = EPERM;
		keeper_fail(KEEPER_STAGE_USER);
	}
}

int keeper_main(int argc, char **argv)
{
	/* Before anything else: nothing of this process is for the command to read. */
	prctl(PR_SET_DUMPABLE, 0);
	if (argc != KEEPER_ARGC || fcntl(KEEPER_REPORT_FD, F_SETFD, FD_CLOEXEC) != 0)
		_exit(127);
	long long worker, uid = -1, gid = -1;
	gid_t groups[WORKER_MAX_GROUPS];
	int ngroups = 0;
	const char *workdir = argv[2], *cmd = argv[6];
	if (parse_id(argv[1], INT_MAX, &worker) ||
	    (strcmp(argv[3], "-") != 0 &&
	     (parse_id(argv[3], (long long)UINT32_MAX - 1, &uid) || parse_id(argv[4], (long long)UINT32_MAX - 1, &gid) ||
	      (ngroups = parse_groups(argv[5], groups, WORKER_MAX_GROUPS)) < 0))) {
		errno = EINVAL;
		keeper_fail(KEEPER_STAGE_ARGS);
	}
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
	/* The worker may have died before the handler was in place. */
	if (getppid() != (pid_t)worker)
		_exit(127);
	if (*workdir && chdir(workdir) != 0)
		keeper_fail(KEEPER_STAGE_WORKDIR);
	pid_t shell = fork();
	if (shell < 0)
		keeper_fail(KEEPER_STAGE_SHELL);
	if (shell == 0) {
		/* The command gets default signal handling, an empty mask and no parent-death
		 * signal of ours. */
		struct sigaction dfl;
		memset(&dfl, 0, sizeof(dfl));
		dfl.sa_handler = SIG_DFL;
		for (int sig = 1; sig < NSIG; sig++)
			if (sig != SIGKILL && sig != SIGSTOP)
				sigaction(sig, &dfl, NULL);
		sigset_t none;
		sigemptyset(&none);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (uid >= 0)
			become(uid, gid, groups, ngroups);
		char *sh_argv[] = {"sh", "-c", (char *)cmd, NULL};
		execve("/bin/sh", sh_argv, environ);
		keeper_fail(KEEPER_STAGE_SHELL);
	}
	/* Only the shell holds the command's descriptors now, so its output pipes close when
	 * it is done. */
	close(KEEPER_REPORT_FD);
	int null_fd = open("/dev/null", O_RDWR);
	for (int fd = 0; fd < 3; fd++) {
		if (null_fd >= 0)
			dup2(null_fd, fd);
		else
			close(fd);
	}
	if (null_fd > 2)
		close(null_fd);
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
